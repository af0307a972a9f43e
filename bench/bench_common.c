/* Shared harness of the benchmark programs; see bench_common.h. */
#include "bench_common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Allocation counting. Each benchmark binary is linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free
 * so every call to these from the program's objects and from statically linked archives (the
 * async_socket library, whose src/sys_linux.c calls malloc/calloc) lands here. libuv is a shared
 * library; bench_libuv counts its allocations with uv_replace_allocator(bench_counted_*).
 * ------------------------------------------------------------------------------------------- */

void* __real_malloc(size_t size);
void* __real_calloc(size_t count, size_t size);
void* __real_realloc(void* ptr, size_t size);
void __real_free(void* ptr);

void* __wrap_malloc(size_t size);
void* __wrap_calloc(size_t count, size_t size);
void* __wrap_realloc(void* ptr, size_t size);
void __wrap_free(void* ptr);

static atomic_uint_fast64_t bench_allocations;
static atomic_uint_fast64_t bench_allocated_bytes;

static void count_allocation(size_t bytes)
{
    (void)atomic_fetch_add_explicit(&bench_allocations, 1, memory_order_relaxed);
    (void)atomic_fetch_add_explicit(&bench_allocated_bytes, bytes, memory_order_relaxed);
}

void* __wrap_malloc(size_t size)
{
    count_allocation(size);
    return __real_malloc(size);
}

void* __wrap_calloc(size_t count, size_t size)
{
    count_allocation(count * size);
    return __real_calloc(count, size);
}

void* __wrap_realloc(void* ptr, size_t size)
{
    count_allocation(size);
    return __real_realloc(ptr, size);
}

void __wrap_free(void* ptr)
{
    __real_free(ptr);
}

uint64_t bench_alloc_count(void)
{
    return (uint64_t)atomic_load_explicit(&bench_allocations, memory_order_relaxed);
}

uint64_t bench_alloc_bytes(void)
{
    return (uint64_t)atomic_load_explicit(&bench_allocated_bytes, memory_order_relaxed);
}

/* These call malloc & co. from this object, so they go through the counting wrappers. */
void* bench_counted_malloc(size_t size)
{
    return malloc(size);
}

void* bench_counted_realloc(void* ptr, size_t size)
{
    return realloc(ptr, size);
}

void* bench_counted_calloc(size_t count, size_t size)
{
    return calloc(count, size);
}

void bench_counted_free(void* ptr)
{
    free(ptr);
}

/* ---------------------------------------------------------------------------------------------
 * Arguments
 * ------------------------------------------------------------------------------------------- */

static void usage(const char* program)
{
    (void)fprintf(stderr,
        "usage: %s <pp1|pp100|pp16k|stream|idle|tls> [--duration-ms N] [--warmup-ms N] [--roundtrips N]"
        " [--pairs N] [--wakes N]\n"
        "  pp1: ping-pong 1 connection x 64 B; pp100: 100 connections x 64 B; pp16k: 1 connection x 16 KiB\n"
        "  stream: one connection, 4 x 64 KiB sends outstanding; idle: N connected pairs, one byte each way\n"
        "  tls: one TLS 1.3 connection, 4 x 64 KiB sends outstanding each way, full duplex (bench_tls_* programs)\n"
        "  --roundtrips N: ping-pong exactly N round trips (no timing; for strace -c)\n",
        program);
    exit(2);
}

static uint64_t parse_number(const char* program, const char* text)
{
    char* end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
    {
        usage(program);
    }
    return (uint64_t)value;
}

void bench_parse_args(int argc, char** argv, BENCH_CONFIG* config)
{
    memset(config, 0, sizeof(*config));
    if (argc < 2)
    {
        usage(argv[0]);
    }
    config->scenario = argv[1];
    config->connections = 1;
    config->message_size = 64;
    config->kind = BENCH_PING_PONG;
    if (strcmp(argv[1], "pp1") == 0)
    {
    }
    else if (strcmp(argv[1], "pp100") == 0)
    {
        config->connections = 100;
    }
    else if (strcmp(argv[1], "pp16k") == 0)
    {
        config->message_size = 16 * 1024;
    }
    else if (strcmp(argv[1], "stream") == 0)
    {
        config->kind = BENCH_STREAM;
        config->message_size = BENCH_STREAM_CHUNK;
    }
    else if (strcmp(argv[1], "idle") == 0)
    {
        config->kind = BENCH_IDLE;
    }
    else if (strcmp(argv[1], "tls") == 0)
    {
        config->kind = BENCH_TLS;
        config->message_size = BENCH_STREAM_CHUNK;
    }
    else
    {
        usage(argv[0]);
    }
    config->warmup_ns = 300ull * 1000000ull;
    config->duration_ns = 2000ull * 1000000ull;
    config->roundtrips = -1;
    config->idle_pairs = BENCH_IDLE_PAIRS_DEFAULT;
    config->idle_wakes = BENCH_IDLE_WAKES_DEFAULT;

    for (int i = 2; i < argc; i += 2)
    {
        if (i + 1 >= argc)
        {
            usage(argv[0]);
        }
        uint64_t value = parse_number(argv[0], argv[i + 1]);
        if (strcmp(argv[i], "--duration-ms") == 0 && value > 0)
        {
            config->duration_ns = value * 1000000ull;
        }
        else if (strcmp(argv[i], "--warmup-ms") == 0)
        {
            config->warmup_ns = value * 1000000ull;
        }
        else if (strcmp(argv[i], "--roundtrips") == 0 && config->kind == BENCH_PING_PONG && value < (1ull << 40))
        {
            config->roundtrips = (int64_t)value;
        }
        else if (strcmp(argv[i], "--pairs") == 0 && value > 0 && value <= 1000000)
        {
            config->idle_pairs = (uint32_t)value;
        }
        else if (strcmp(argv[i], "--wakes") == 0 && value > 0 && value <= 1000)
        {
            config->idle_wakes = (uint32_t)value;
        }
        else
        {
            usage(argv[0]);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Time, CPU, memory
 * ------------------------------------------------------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec now;
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

void bench_sleep_ns(uint64_t ns)
{
    struct timespec request = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
    while (nanosleep(&request, &request) != 0 && errno == EINTR)
    {
    }
}

uint64_t bench_cpu_ns(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
    {
        return 0;
    }
    return (uint64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000000ull +
        (uint64_t)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000ull;
}

uint64_t bench_rss_bytes(void)
{
    unsigned long long size = 0;
    unsigned long long resident = 0;
    FILE* statm = fopen("/proc/self/statm", "r");
    if (statm == NULL)
    {
        return 0;
    }
    if (fscanf(statm, "%llu %llu", &size, &resident) != 2)
    {
        resident = 0;
    }
    (void)fclose(statm);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void bench_snapshot(BENCH_SNAPSHOT* snapshot)
{
    snapshot->allocs = bench_alloc_count();
    snapshot->cpu_ns = bench_cpu_ns();
    snapshot->wall_ns = bench_now_ns();
}

void bench_fail(const char* impl, const BENCH_CONFIG* config, const char* what)
{
    int error = errno;
    (void)fflush(stdout);
    (void)printf("BENCH impl=%s scenario=%s ok=0 error=\"%s\"\n", impl, config->scenario, what);
    (void)fflush(stdout);
    (void)fprintf(stderr, "%s %s: %s (errno %d: %s)\n", impl, config->scenario, what, error, strerror(error));
    /* may run on a worker thread while others still use the process: leave at once */
    _exit(1);
}

/* ---------------------------------------------------------------------------------------------
 * Loopback pairs
 * ------------------------------------------------------------------------------------------- */

int bench_listen(void)
{
    struct sockaddr_in address;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
    {
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (bind(fd, (struct sockaddr*)&address, sizeof(address)) != 0 || listen(fd, 4096) != 0)
    {
        (void)close(fd);
        return -1;
    }
    return fd;
}

/* The congestion control every benchmark connection uses: BENCH_TCP_CONGESTION, default cubic;
 * "system" keeps the machine's default. Pinned because BBR (the default on some machines, this
 * one among them) paces even on loopback: its bandwidth estimate then decides, per connection and
 * by chance, whether a stream runs at full speed or at a third of it, whatever program drives the
 * socket (see docs/benchmarks.md). */
static int set_congestion_control(int fd)
{
    const char* name = getenv("BENCH_TCP_CONGESTION");
    if (name == NULL)
    {
        name = "cubic";
    }
    if (strcmp(name, "system") == 0)
    {
        return 0;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) != 0)
    {
        (void)fprintf(stderr, "BENCH_TCP_CONGESTION=%s: setsockopt(TCP_CONGESTION) failed: %s (see /proc/sys/net/ipv4/tcp_available_congestion_control, or use \"system\")\n",
            name, strerror(errno));
        return -1;
    }
    return 0;
}

static int tune(int fd)
{
    int one = 1;
    struct linger linger = { .l_onoff = 1, .l_linger = 0 };
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)) != 0 ||
        set_congestion_control(fd) != 0)
    {
        return -1;
    }
    return 0;
}

int bench_connect_pair(int listen_fd, int* client_fd, int* server_fd)
{
    struct sockaddr_in address;
    socklen_t length = sizeof(address);
    int client;
    int server;

    if (getsockname(listen_fd, (struct sockaddr*)&address, &length) != 0)
    {
        return -1;
    }
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0)
    {
        return -1;
    }
    if (connect(client, (struct sockaddr*)&address, length) != 0)
    {
        (void)close(client);
        return -1;
    }
    do
    {
        server = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    } while (server < 0 && errno == EINTR);
    if (server < 0)
    {
        (void)close(client);
        return -1;
    }
    if (tune(client) != 0 || tune(server) != 0)
    {
        (void)close(client);
        (void)close(server);
        return -1;
    }
    *client_fd = client;
    *server_fd = server;
    return 0;
}

int bench_set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    {
        return -1;
    }
    return 0;
}

static uint32_t count_open_fds(void)
{
    uint32_t count = 0;
    DIR* directory = opendir("/proc/self/fd");
    if (directory == NULL)
    {
        return 16;
    }
    for (struct dirent* entry = readdir(directory); entry != NULL; entry = readdir(directory))
    {
        if (entry->d_name[0] != '.')
        {
            count++;
        }
    }
    (void)closedir(directory);
    return count;
}

uint32_t bench_idle_pairs_allowed(uint32_t requested)
{
    /* The same count for every implementation: a fixed reserve for the epoll fd, eventfds,
     * pipes, the listener and whatever the runtime opens (more only if more are open already). */
    const uint64_t reserve = 64;
    struct rlimit limit;
    uint64_t open_fds;
    uint64_t extra;
    uint64_t room;

    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
    {
        return 0;
    }
    if (limit.rlim_cur < limit.rlim_max)
    {
        limit.rlim_cur = limit.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &limit);
        (void)getrlimit(RLIMIT_NOFILE, &limit);
    }
    open_fds = count_open_fds();
    if (limit.rlim_cur == RLIM_INFINITY)
    {
        return requested;
    }
    /* unusually many open already: keep 32 spare beyond them */
    extra = (open_fds + 32 > reserve) ? open_fds + 32 - reserve : 0;
    room = ((uint64_t)limit.rlim_cur > extra + reserve) ? (uint64_t)limit.rlim_cur - extra - reserve : 0;
    return (room / 2 < requested) ? (uint32_t)(room / 2) : requested;
}

/* ---------------------------------------------------------------------------------------------
 * Data
 * ------------------------------------------------------------------------------------------- */

#define PATTERN_TABLE_SIZE (BENCH_PATTERN_PERIOD + (BENCH_STREAM_OUTSTANDING + 2u) * BENCH_STREAM_CHUNK)

static uint8_t pattern_table[PATTERN_TABLE_SIZE];

void bench_pattern_init(void)
{
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < BENCH_PATTERN_PERIOD; i++)
    {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        pattern_table[i] = (uint8_t)(state >> 24);
    }
    for (uint32_t i = BENCH_PATTERN_PERIOD; i < PATTERN_TABLE_SIZE; i++)
    {
        pattern_table[i] = pattern_table[i - BENCH_PATTERN_PERIOD];
    }
}

const uint8_t* bench_pattern_at(uint64_t offset)
{
    return &pattern_table[offset % BENCH_PATTERN_PERIOD];
}

uint64_t bench_pattern_mismatches(const uint8_t* data, size_t length, uint64_t offset)
{
    const uint8_t* expected = bench_pattern_at(offset);
    uint64_t mismatches = 0;
    if (length > PATTERN_TABLE_SIZE - BENCH_PATTERN_PERIOD)
    {
        /* longer than the table can compare in one piece: split */
        size_t half = length / 2;
        return bench_pattern_mismatches(data, half, offset) + bench_pattern_mismatches(data + half, length - half, offset + half);
    }
    if (memcmp(data, expected, length) == 0)
    {
        return 0;
    }
    for (size_t i = 0; i < length; i++)
    {
        mismatches += (data[i] != expected[i]) ? 1u : 0u;
    }
    return mismatches;
}

void bench_message_fill(uint8_t* message, uint32_t size, uint64_t seq)
{
    memcpy(message, bench_pattern_at(0), size);
    bench_message_stamp(message, seq);
}

void bench_message_stamp(uint8_t* message, uint64_t seq)
{
    memcpy(message, &seq, sizeof(seq));
}

bool bench_message_check(const uint8_t* message, uint32_t size, uint64_t seq)
{
    uint64_t got;
    memcpy(&got, message, sizeof(got));
    return got == seq && memcmp(message + sizeof(seq), bench_pattern_at(sizeof(seq)), size - sizeof(seq)) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Latency samples
 * ------------------------------------------------------------------------------------------- */

#define SAMPLES_TOTAL (8u * 1024u * 1024u)

BENCH_SAMPLES* bench_samples_create(uint32_t connections)
{
    BENCH_SAMPLES* samples = calloc(connections, sizeof(BENCH_SAMPLES));
    if (samples == NULL)
    {
        return NULL;
    }
    for (uint32_t i = 0; i < connections; i++)
    {
        samples[i].capacity = SAMPLES_TOTAL / connections;
        samples[i].ns = malloc(samples[i].capacity * sizeof(uint32_t));
        if (samples[i].ns == NULL)
        {
            bench_samples_destroy(samples, i);
            return NULL;
        }
        /* touch the pages now, not during the measured phase */
        memset(samples[i].ns, 0, samples[i].capacity * sizeof(uint32_t));
    }
    return samples;
}

void bench_samples_destroy(BENCH_SAMPLES* samples, uint32_t connections)
{
    if (samples != NULL)
    {
        for (uint32_t i = 0; i < connections; i++)
        {
            free(samples[i].ns);
        }
        free(samples);
    }
}

static int compare_u32(const void* a, const void* b)
{
    uint32_t x = *(const uint32_t*)a;
    uint32_t y = *(const uint32_t*)b;
    return (x > y) - (x < y);
}

static int compare_double(const void* a, const void* b)
{
    double x = *(const double*)a;
    double y = *(const double*)b;
    return (x > y) - (x < y);
}

double bench_median(double* values, size_t n)
{
    if (n == 0)
    {
        return 0.0;
    }
    qsort(values, n, sizeof(double), compare_double);
    return (n % 2 == 1) ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

/* ---------------------------------------------------------------------------------------------
 * Report
 * ------------------------------------------------------------------------------------------- */

void bench_report(const char* impl, const BENCH_CONFIG* config, const BENCH_RESULT* result, const char* extra)
{
    double window_s = (double)(result->end.wall_ns - result->start.wall_ns) / 1e9;
    double cpu_pct = (window_s > 0.0) ? (double)(result->end.cpu_ns - result->start.cpu_ns) / 1e9 / window_s * 100.0 : 0.0;
    uint64_t allocs = result->end.allocs - result->start.allocs;

    (void)printf("BENCH impl=%s scenario=%s ok=%d", impl, config->scenario, result->ok ? 1 : 0);
    if (config->kind == BENCH_IDLE)
    {
        (void)printf(" sockets=%u bytes_per_socket=%.1f heap_allocs_per_socket=%.2f heap_bytes_per_socket=%.1f wake_ms=%.3f allocs_per_op=%.4f",
            result->idle_sockets, result->idle_bytes_per_socket, result->idle_allocs_per_socket, result->idle_heap_bytes_per_socket,
            result->wake_ms, result->wake_allocs_per_socket);
    }
    else
    {
        size_t total = 0;
        double p50 = 0.0;
        double p99 = 0.0;
        for (uint32_t i = 0; i < result->sample_sets; i++)
        {
            total += result->samples[i].count;
        }
        if (total > 0)
        {
            uint32_t* all = malloc(total * sizeof(uint32_t));
            if (all != NULL)
            {
                size_t at = 0;
                for (uint32_t i = 0; i < result->sample_sets; i++)
                {
                    memcpy(all + at, result->samples[i].ns, result->samples[i].count * sizeof(uint32_t));
                    at += result->samples[i].count;
                }
                qsort(all, total, sizeof(uint32_t), compare_u32);
                p50 = (double)all[(total - 1) * 50 / 100] / 1000.0;
                p99 = (double)all[(total - 1) * 99 / 100] / 1000.0;
                free(all);
            }
        }
        (void)printf(" conns=%u msg=%u seconds=%.3f ops=%llu ops_per_s=%.1f mb_per_s=%.2f cpu_pct=%.1f allocs=%llu allocs_per_op=%.4f mismatches=%llu",
            config->connections, config->message_size, window_s, (unsigned long long)result->operations,
            (window_s > 0.0) ? (double)result->operations / window_s : 0.0,
            (window_s > 0.0) ? (double)result->bytes / window_s / 1e6 : 0.0,
            cpu_pct, (unsigned long long)allocs,
            (result->operations > 0) ? (double)allocs / (double)result->operations : 0.0,
            (unsigned long long)result->mismatches);
        if (config->kind == BENCH_PING_PONG)
        {
            (void)printf(" samples=%zu p50_us=%.2f p99_us=%.2f", total, p50, p99);
        }
    }
    if (extra != NULL && extra[0] != '\0')
    {
        (void)printf(" %s", extra);
    }
    if (!result->ok && result->error != NULL)
    {
        (void)printf(" error=\"%s\"", result->error);
    }
    (void)printf("\n");
    (void)fflush(stdout);
}
