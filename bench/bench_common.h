/* Shared harness of the three benchmark programs (bench_async_socket, bench_epoll, bench_libuv).
 *
 * Every program runs one scenario per invocation and prints one line starting with "BENCH " of
 * key=value pairs, which bench/run_bench.py collects. The harness owns what must be identical in
 * all three: the scenario table, argument parsing, the loopback pair setup (listen/connect/accept
 * on 127.0.0.1, TCP_NODELAY, blocking fds handed to the implementation), the ping-pong message
 * and the stream pattern, the latency store and percentiles, RSS, CPU time and the heap allocation
 * counter (the programs are linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free;
 * see bench_common.c). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_RECV_BUFFER_SIZE (64u * 1024u) /* read size of every ping-pong and stream receive */
#define BENCH_STREAM_CHUNK (64u * 1024u)     /* one streaming send */
#define BENCH_STREAM_OUTSTANDING 4u          /* streaming sends kept outstanding */
#define BENCH_STREAM_RECEIVES 4u             /* streaming receives kept posted (where the API posts them) */
#define BENCH_PATTERN_PERIOD 65521u          /* a prime, so stream offsets never line up with chunks */
#define BENCH_IDLE_READ_SIZE 64u            /* receive size of an idle socket (it gets 1 byte) */
#define BENCH_IDLE_PAIRS_DEFAULT 10000u
#define BENCH_IDLE_WAKES_DEFAULT 5u

typedef enum BENCH_KIND_TAG
{
    BENCH_PING_PONG,
    BENCH_STREAM,
    BENCH_IDLE,
    BENCH_TLS   /* full duplex over TLS: only the bench_tls_* programs run it */
} BENCH_KIND;

typedef struct BENCH_CONFIG_TAG
{
    const char* scenario;   /* pp1, pp100, pp16k, stream, idle, tls */
    BENCH_KIND kind;
    uint32_t connections;   /* ping-pong: connections; stream: 1 */
    uint32_t message_size;  /* ping-pong message size */
    uint64_t warmup_ns;
    uint64_t duration_ns;
    /* Fixed-count mode (for strace): when >= 0, the ping-pong runs exactly this many round trips
     * in total (no warm-up, no timing phases) and then stops; 0 means set up and tear down only. */
    int64_t roundtrips;
    uint32_t idle_pairs;    /* requested pairs for the idle scenario */
    uint32_t idle_wakes;    /* wake rounds for the idle scenario (the first is not steady state) */
} BENCH_CONFIG;

/* Parses "<scenario> [--duration-ms N] [--warmup-ms N] [--roundtrips N] [--pairs N] [--wakes N]";
 * prints usage and exits on error. */
void bench_parse_args(int argc, char** argv, BENCH_CONFIG* config);

/* Measurement phases of a timed run. */
enum
{
    BENCH_PHASE_WARMUP = 0,
    BENCH_PHASE_MEASURE = 1,
    BENCH_PHASE_STOP = 2
};

uint64_t bench_now_ns(void);
void bench_sleep_ns(uint64_t ns);
/* Process CPU time (user + system, all threads) in ns. */
uint64_t bench_cpu_ns(void);
/* Resident set size in bytes (/proc/self/statm). */
uint64_t bench_rss_bytes(void);
/* malloc + calloc + realloc calls so far, by the program and the statically linked library. */
uint64_t bench_alloc_count(void);
/* Bytes requested by those calls so far. */
uint64_t bench_alloc_bytes(void);
/* Counting allocator functions (for uv_replace_allocator). */
void* bench_counted_malloc(size_t size);
void* bench_counted_realloc(void* ptr, size_t size);
void* bench_counted_calloc(size_t count, size_t size);
void bench_counted_free(void* ptr);

/* A snapshot of time, CPU and allocations at a phase boundary. */
typedef struct BENCH_SNAPSHOT_TAG
{
    uint64_t wall_ns;
    uint64_t cpu_ns;
    uint64_t allocs;
} BENCH_SNAPSHOT;

void bench_snapshot(BENCH_SNAPSHOT* snapshot);

/* Fatal error: prints "BENCH ... ok=0 error=..." so the runner sees the failure, and exits 1. */
_Noreturn void bench_fail(const char* impl, const BENCH_CONFIG* config, const char* what);

/* ---- loopback pairs ---- */

/* A listening socket on 127.0.0.1 (ephemeral port), blocking. */
int bench_listen(void);
/* Connects a new client to the listener and accepts it: both blocking, TCP_NODELAY, SO_LINGER 0
 * (closing sends RST, so repeated runs leave no TIME_WAIT behind). Returns 0 on success. */
int bench_connect_pair(int listen_fd, int* client_fd, int* server_fd);
/* Makes an fd non-blocking. */
int bench_set_nonblocking(int fd);
/* Raises RLIMIT_NOFILE's soft limit to its hard limit and returns how many pairs (at most
 * requested) fit under it besides the fds already open and a small reserve. */
uint32_t bench_idle_pairs_allowed(uint32_t requested);

/* ---- data ---- */

/* The stream pattern: byte at stream offset o is bench_pattern()[o % BENCH_PATTERN_PERIOD]; the
 * table is long enough that bench_pattern_at(o) can be read for 4 * 64 KiB + 64 KiB bytes. */
void bench_pattern_init(void);
const uint8_t* bench_pattern_at(uint64_t offset);
/* Counts bytes of data[0..length) that differ from the pattern at stream offset `offset`. */
uint64_t bench_pattern_mismatches(const uint8_t* data, size_t length, uint64_t offset);

/* Ping-pong messages: the pattern with the sequence number in the first 8 bytes. */
void bench_message_fill(uint8_t* message, uint32_t size, uint64_t seq);
void bench_message_stamp(uint8_t* message, uint64_t seq);
bool bench_message_check(const uint8_t* message, uint32_t size, uint64_t seq);

/* ---- latency ---- */

/* Per-connection latency samples (ns); a connection's samples are written by one thread at a time. */
typedef struct BENCH_SAMPLES_TAG
{
    uint32_t* ns;
    size_t count;
    size_t capacity;
    uint64_t dropped;
} BENCH_SAMPLES;

/* Allocates `connections` sample stores sharing a total capacity; call before the measured phase. */
BENCH_SAMPLES* bench_samples_create(uint32_t connections);
void bench_samples_destroy(BENCH_SAMPLES* samples, uint32_t connections);
static inline void bench_samples_add(BENCH_SAMPLES* samples, uint64_t ns)
{
    if (samples->count < samples->capacity)
    {
        samples->ns[samples->count++] = (ns > UINT32_MAX) ? UINT32_MAX : (uint32_t)ns;
    }
    else
    {
        samples->dropped++;
    }
}

/* ---- the result line ---- */

typedef struct BENCH_RESULT_TAG
{
    bool ok;
    const char* error;
    /* ping-pong / stream */
    uint64_t operations;   /* round trips (ping-pong) or 64 KiB sends (stream) in the measured phase */
    uint64_t bytes;        /* payload bytes received by the application in the measured phase */
    BENCH_SNAPSHOT start;
    BENCH_SNAPSHOT end;
    BENCH_SAMPLES* samples; /* ping-pong latency, may be NULL */
    uint32_t sample_sets;
    uint64_t mismatches;
    /* idle */
    uint32_t idle_sockets;
    double idle_bytes_per_socket;       /* RSS growth per socket */
    double idle_allocs_per_socket;      /* heap allocations per socket while arming */
    double idle_heap_bytes_per_socket;  /* bytes those allocations requested, per socket */
    double wake_ms;          /* median over the wake rounds */
    double wake_allocs_per_socket;
} BENCH_RESULT;

/* Prints "BENCH impl=... scenario=... key=value ...". */
void bench_report(const char* impl, const BENCH_CONFIG* config, const BENCH_RESULT* result, const char* extra);

/* Median of n doubles (sorts them). */
double bench_median(double* values, size_t n);

#endif /* BENCH_COMMON_H */
