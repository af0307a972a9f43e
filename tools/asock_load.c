/* asock-load: a ping-pong load generator for an echo server, built on async_socket.
 *
 * Each of C connections sends an S-byte message, receives it back, checks every byte, and sends
 * the next, until the time is up. The bytes of a message depend on the connection and on its
 * position in the connection's stream, so a byte lost, duplicated, reordered or crossed between
 * connections is a mismatch. A round trip needs two completions, the send's and the last
 * receive's; whichever comes second starts the next one. */
#include <errno.h>
#include <netdb.h>
#include <sys/resource.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "c_pal/socket_transport.h"
#include "latency_histogram.h"
#include "tool_common.h"
#include "tool_socket.h"
#include "tool_tls.h"

#define TOOL "asock-load"
/* the flag's range; the fd limit decides what a run gets (fit_to_fd_limit) */
#define MAX_CONNS 1000000
/* fds a run needs besides one per connection: stdio, the port's epoll and eventfd, TLS files */
#define FD_RESERVE 32
#define MAX_SIZE (16u * 1024u * 1024u)
#define MAX_SECONDS 86400.0
#define MAX_BUFFER_BYTES (1024ull * 1024u * 1024u) /* all connections' buffers together */
#define CONNECT_TIMEOUT_MS 5000
#define SETTLE_TIMEOUT_NS (5ull * 1000000000ull)

typedef struct LOAD_OPTIONS_TAG
{
    const char* host;
    uint16_t port;
    uint32_t conns;
    uint32_t size;
    double seconds;
    bool json;
    bool tls;              /* --tls (also set by --tls-insecure and --tls-ca) */
    bool tls_insecure;     /* --tls-insecure: do not verify the server's certificate */
    const char* tls_ca;    /* --tls-ca FILE: trust this instead of the system store */
    TOOL_TLS* tls_context; /* made from the flags above before connecting; NULL: plain TCP */
} LOAD_OPTIONS;

typedef struct LOAD_RUN_TAG LOAD_RUN;

typedef struct CONNECTION_TAG
{
    LOAD_RUN* run;
    uint32_t index;
    ASYNC_SOCKET_HANDLE socket;
    ASYNC_SOCKET_TLS_HANDLE tls; /* NULL for plain TCP */
    uint8_t* out;
    uint8_t* in;
    uint64_t offset;           /* stream offset of the current message */
    uint32_t received;         /* bytes of the current message back so far */
    uint64_t started_ns;       /* when the current message was sent */
    atomic_int completions_left; /* of the current round trip: the send and the receive */
    atomic_bool finished;      /* set once, by whoever ends the connection */
} CONNECTION;

struct LOAD_RUN_TAG
{
    LOAD_OPTIONS options;
    CONNECTION* connections;
    atomic_bool stop;
    atomic_uint_fast64_t round_trips;
    atomic_uint_fast64_t errors;     /* I/O errors and mismatches */
    atomic_uint_fast64_t mismatches;
    atomic_uint active;              /* connections not finished */
    atomic_bool error_reported;      /* the first error is explained on stderr, the rest counted */
    pthread_mutex_t lock;
    pthread_cond_t settled;          /* signalled when active drops to 0 */
    LATENCY_HISTOGRAM latency;
};

static void round_trip_start(CONNECTION* connection);

static int usage(FILE* out)
{
    (void)fprintf(out,
        "usage: " TOOL " --port P [--host H] [--conns C] [--size S] [--seconds T] [--tls [--tls-insecure]\n"
        "                  [--tls-ca FILE]] [--json]\n"
        "\n"
        "Ping-pong load against an echo server (such as asock-echo): each connection sends an\n"
        "S-byte message, waits for it to come back, checks every byte, and sends the next.\n"
        "\n"
        "  --host H      server host name or numeric address (default 127.0.0.1)\n"
        "  --port P      server port, 1..65535 (required)\n"
        "  --conns C     connections, 1..%d (default 1); the fd limit is raised as far as the\n"
        "                hard limit allows, and caps C (with a line saying so) beyond that\n"
        "  --size S      message size in bytes, 1..%u (default 64); the buffers of all\n"
        "                connections, 2 x C x S bytes, may take at most 1 GiB\n"
        "  --seconds T   duration, e.g. 3 or 0.5, up to %g (default 3)\n"
        "  --tls         connect over TLS; the server's certificate must chain to the system's CAs\n"
        "                and carry the --host name or address\n"
        "  --tls-insecure  TLS without checking the server's certificate (implies --tls)\n"
        "  --tls-ca FILE   trust the PEM certificates in FILE instead of the system's (implies --tls)\n"
        "  --json        print the result as one JSON object instead of a table\n"
        "  --help        this text\n"
        "\n"
        "A progress line is printed once a second when stdout is a terminal (to stderr with --json).\n"
        "SIGINT or SIGTERM ends the run early; the result is printed as usual.\n"
        "\n"
        "exit codes: 0 every byte came back right and no error; 1 a connection failed, an I/O\n"
        "error, a mismatch, or no round trip completed; 2 bad flags\n",
        MAX_CONNS, MAX_SIZE, MAX_SECONDS);
    return out == stdout ? TOOL_EXIT_OK : TOOL_EXIT_USAGE;
}

static bool parse_number_flag(const char* flag, const char* value, LOAD_OPTIONS* options)
{
    uint64_t number = 0;
    if (strcmp(flag, "--seconds") == 0)
    {
        return tool_parse_seconds(TOOL, flag, value, MAX_SECONDS, &options->seconds);
    }
    if (strcmp(flag, "--port") == 0)
    {
        bool ok = tool_parse_uint(TOOL, flag, value, 1, 65535, &number);
        options->port = (uint16_t)number;
        return ok;
    }
    if (strcmp(flag, "--conns") == 0)
    {
        bool ok = tool_parse_uint(TOOL, flag, value, 1, MAX_CONNS, &number);
        options->conns = (uint32_t)number;
        return ok;
    }
    bool ok = tool_parse_uint(TOOL, flag, value, 1, MAX_SIZE, &number);
    options->size = (uint32_t)number;
    return ok;
}

/* TOOL_EXIT_OK with *run set when the run should go ahead; otherwise the exit code (0 for --help). */
static int parse_options(int argc, char** argv, LOAD_OPTIONS* options, bool* run)
{
    /* Codes_SRS_ASOCK_TOOLS_01_021 */
    *run = false;
    *options = (LOAD_OPTIONS){.host = "127.0.0.1", .conns = 1, .size = 64, .seconds = 3.0};
    for (int i = 1; i < argc; i++)
    {
        const char* flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0)
        {
            /* Codes_SRS_ASOCK_TOOLS_01_020 */
            return usage(stdout);
        }
        if (strcmp(flag, "--json") == 0)
        {
            options->json = true;
            continue;
        }
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_019 */
        if (strcmp(flag, "--tls") == 0 || strcmp(flag, "--tls-insecure") == 0)
        {
            options->tls = true;
            options->tls_insecure = options->tls_insecure || strcmp(flag, "--tls-insecure") == 0;
            continue;
        }
        bool known = strcmp(flag, "--host") == 0 || strcmp(flag, "--port") == 0 || strcmp(flag, "--conns") == 0 ||
            strcmp(flag, "--size") == 0 || strcmp(flag, "--seconds") == 0 || strcmp(flag, "--tls-ca") == 0;
        if (!known)
        {
            return tool_unknown_flag(TOOL, flag);
        }
        const char* value = tool_flag_value(TOOL, argc, argv, &i);
        if (value == NULL)
        {
            return TOOL_EXIT_USAGE;
        }
        if (strcmp(flag, "--host") == 0)
        {
            options->host = value;
        }
        else if (strcmp(flag, "--tls-ca") == 0)
        {
            options->tls_ca = value;
            options->tls = true;
        }
        else if (!parse_number_flag(flag, value, options))
        {
            return TOOL_EXIT_USAGE;
        }
    }
    if (options->port == 0)
    {
        (void)fprintf(stderr, TOOL ": --port is required (see --help)\n");
        return TOOL_EXIT_USAGE;
    }
    /* Each connection holds a message to send and one to receive. */
    if ((uint64_t)options->conns * options->size * 2u > MAX_BUFFER_BYTES)
    {
        (void)fprintf(stderr, TOOL ": --conns %u with --size %u needs %llu bytes of buffers, more than %llu\n",
            options->conns, options->size, (unsigned long long)options->conns * options->size * 2u,
            (unsigned long long)MAX_BUFFER_BYTES);
        return TOOL_EXIT_USAGE;
    }
    *run = true;
    return TOOL_EXIT_OK;
}

/* ---- the bytes of a message ---- */

/* The byte at stream offset `offset` of connection `index`: a mix of both, so that any byte out
 * of place, or from another connection, differs from what was expected. */
static inline uint8_t pattern_byte(uint32_t index, uint64_t offset)
{
    uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)index << 40);
    return (uint8_t)(x >> 56 ^ x >> 24);
}

static void pattern_fill(uint8_t* buffer, uint32_t length, uint32_t index, uint64_t offset)
{
    for (uint32_t i = 0; i < length; i++)
    {
        buffer[i] = pattern_byte(index, offset + i);
    }
}

/* ---- one connection's async socket: the only place that creates and destroys it ---- */

/* Wraps a connected fd in an opened async socket, over TLS when the options ask for it, which
 * owns the fd from then on. NULL on failure (the fd is closed). */
static ASYNC_SOCKET_HANDLE connection_socket_create(const LOAD_OPTIONS* options, SOCKET_HANDLE fd, ASYNC_SOCKET_TLS_HANDLE* tls)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_019 */
    return tool_connection_open(options->tls_context, fd, tls);
}

static void connection_socket_destroy(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_TLS_HANDLE tls)
{
    tool_tls_socket_destroy(socket, tls);
}

/* ---- a connection's round trips ---- */

/* Ends the connection's part in the run, once. A non-NULL `error` counts an error; the first of
 * the run is printed (a mismatch prints its own line). */
static void connection_finish(CONNECTION* connection, const char* error)
{
    if (atomic_exchange(&connection->finished, true))
    {
        return;
    }
    LOAD_RUN* run = connection->run;
    if (error != NULL)
    {
        (void)atomic_fetch_add(&run->errors, 1);
        if (*error != '\0' && !atomic_exchange(&run->error_reported, true))
        {
            (void)fprintf(stderr, TOOL ": connection %u: %s (further errors are only counted)\n", connection->index, error);
        }
    }
    (void)pthread_mutex_lock(&run->lock);
    if (atomic_fetch_sub(&run->active, 1) == 1)
    {
        (void)pthread_cond_broadcast(&run->settled);
    }
    (void)pthread_mutex_unlock(&run->lock);
}

/* One of the two completions of a round trip is in; the second one completes it. */
static void round_trip_step(CONNECTION* connection)
{
    if (atomic_fetch_sub(&connection->completions_left, 1) != 1)
    {
        return;
    }
    LOAD_RUN* run = connection->run;
    latency_histogram_add(&run->latency, tool_now_ns() - connection->started_ns);
    (void)atomic_fetch_add_explicit(&run->round_trips, 1, memory_order_relaxed);
    connection->offset += run->options.size;
    if (atomic_load(&run->stop))
    {
        connection_finish(connection, NULL);
        return;
    }
    round_trip_start(connection);
}

static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    CONNECTION* connection = context;
    if (result != ASYNC_SOCKET_SEND_OK)
    {
        connection_finish(connection, "a send failed"); /* a no-op for a connection already finished */
        return;
    }
    round_trip_step(connection);
}

static void receive_rest(CONNECTION* connection);

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    CONNECTION* connection = context;
    LOAD_RUN* run = connection->run;
    if (result != ASYNC_SOCKET_RECEIVE_OK)
    {
        /* The server closed or reset the connection. (The ABANDONED results of the final close
         * come to connections already finished, where this does nothing.) */
        connection_finish(connection, "the server closed or reset the connection");
        return;
    }
    /* Codes_SRS_ASOCK_TOOLS_01_011 */
    const uint8_t* got = connection->in + connection->received;
    uint64_t offset = connection->offset + connection->received;
    for (uint32_t i = 0; i < bytes; i++)
    {
        if (got[i] != pattern_byte(connection->index, offset + i))
        {
            (void)atomic_fetch_add(&run->mismatches, 1);
            if (!atomic_exchange(&run->error_reported, true))
            {
                (void)fprintf(stderr, TOOL ": connection %u: byte %llu of the stream is 0x%02x, expected 0x%02x\n",
                    connection->index, (unsigned long long)(offset + i), got[i], pattern_byte(connection->index, offset + i));
            }
            connection_finish(connection, "");
            return;
        }
    }
    connection->received += bytes;
    if (connection->received < run->options.size)
    {
        receive_rest(connection);
        return;
    }
    round_trip_step(connection);
}

static void receive_rest(CONNECTION* connection)
{
    ASYNC_SOCKET_BUFFER buffer = {
        .buffer = connection->in + connection->received,
        .length = connection->run->options.size - connection->received};
    if (async_socket_receive_async(connection->socket, &buffer, 1, on_received, connection) != 0)
    {
        connection_finish(connection, "a receive could not be started");
    }
}

/* Posts the receive for the next message, then sends it. */
static void round_trip_start(CONNECTION* connection)
{
    LOAD_RUN* run = connection->run;
    uint32_t size = run->options.size;
    pattern_fill(connection->out, size, connection->index, connection->offset);
    connection->received = 0;
    atomic_store(&connection->completions_left, 2);
    connection->started_ns = tool_now_ns();
    receive_rest(connection);
    if (atomic_load(&connection->finished))
    {
        return;
    }
    ASYNC_SOCKET_BUFFER buffer = {.buffer = connection->out, .length = size};
    if (async_socket_send_async(connection->socket, &buffer, 1, on_sent, connection) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        connection_finish(connection, "a send could not be started (the connection is gone)");
    }
}

/* ---- the run ---- */

/* Codes_SRS_ASOCK_TOOLS_01_016: raises the soft fd limit as far as the connections need and the
 * hard limit allows; when that is not enough, the run gets fewer connections and says so. */
static void fit_to_fd_limit(LOAD_OPTIONS* options)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
    {
        return;
    }
    rlim_t need = (rlim_t)options->conns + FD_RESERVE;
    if (limit.rlim_cur < need)
    {
        struct rlimit raised = {.rlim_cur = (limit.rlim_max < need) ? limit.rlim_max : need, .rlim_max = limit.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
        {
            limit = raised;
        }
    }
    if (limit.rlim_cur < need)
    {
        uint32_t fit = (limit.rlim_cur > FD_RESERVE) ? (uint32_t)(limit.rlim_cur - FD_RESERVE) : 1;
        (void)fprintf(stderr, TOOL ": the fd limit (%llu, hard limit %llu) caps --conns %u at %u; raise the hard limit "
            "(ulimit -Hn, or LimitNOFILE= for a service) for more\n", (unsigned long long)limit.rlim_cur,
            (unsigned long long)limit.rlim_max, options->conns, fit);
        options->conns = fit;
    }
}

/* Codes_SRS_ASOCK_TOOLS_01_017: a host that does not resolve is named as such, not as a failed
 * connect (whose errno would read "No route to host"). */
static bool host_resolves(const LOAD_OPTIONS* options)
{
    struct addrinfo hints;
    (void)memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo* found = NULL;
    int status = getaddrinfo(options->host, NULL, &hints, &found);
    if (status != 0)
    {
        (void)fprintf(stderr, TOOL ": cannot resolve host '%s': %s\n", options->host,
            (status == EAI_SYSTEM) ? strerror(errno) : gai_strerror(status));
        return false;
    }
    freeaddrinfo(found);
    return true;
}

/* What a failed connect says: a refusal or an unreachable network is immediate, only ETIMEDOUT
 * is about the time allowed. */
static void report_connect_failure(const LOAD_OPTIONS* options, int error)
{
    if (error == ETIMEDOUT)
    {
        (void)fprintf(stderr, TOOL ": cannot connect to %s port %u: no answer within %d ms\n", options->host,
            (unsigned)options->port, CONNECT_TIMEOUT_MS);
        return;
    }
    (void)fprintf(stderr, TOOL ": cannot connect to %s port %u: %s%s\n", options->host, (unsigned)options->port,
        strerror(error), (error == ECONNREFUSED) ? " (nothing listens there)" : "");
}

/* Connects every connection; false (after one line naming the failure) when one cannot. */
static bool connections_open(LOAD_RUN* run)
{
    const LOAD_OPTIONS* options = &run->options;
    if (!host_resolves(options))
    {
        return false;
    }
    for (uint32_t i = 0; i < options->conns; i++)
    {
        CONNECTION* connection = &run->connections[i];
        connection->run = run;
        connection->index = i;
        connection->out = malloc(options->size);
        connection->in = malloc(options->size);
        SOCKET_TRANSPORT_HANDLE transport = socket_transport_create_client();
        if (connection->out == NULL || connection->in == NULL || transport == NULL)
        {
            (void)fprintf(stderr, TOOL ": out of memory for connection %u\n", i);
            socket_transport_destroy(transport);
            return false;
        }
        if (socket_transport_connect(transport, options->host, options->port, CONNECT_TIMEOUT_MS) != 0)
        {
            /* Codes_SRS_ASOCK_TOOLS_01_017 */
            report_connect_failure(options, errno);
            socket_transport_destroy(transport);
            return false;
        }
        connection->socket = connection_socket_create(options, socket_transport_release_socket(transport), &connection->tls);
        if (connection->socket == NULL)
        {
            (void)fprintf(stderr, TOOL ": cannot set up connection %u\n", i);
            return false;
        }
    }
    return true;
}

static void connections_close(LOAD_RUN* run)
{
    for (uint32_t i = 0; i < run->options.conns; i++)
    {
        CONNECTION* connection = &run->connections[i];
        if (connection->socket != NULL)
        {
            connection_socket_destroy(connection->socket, connection->tls);
        }
        free(connection->out);
        free(connection->in);
    }
}

static void progress_line(LOAD_RUN* run, FILE* out, double elapsed_s, uint64_t* last_round_trips)
{
    uint64_t round_trips = atomic_load(&run->round_trips);
    uint64_t delta = round_trips - *last_round_trips;
    *last_round_trips = round_trips;
    (void)fprintf(out, "%6.1f s  %10llu round trips/s  %9.2f MB/s  errors %llu\n", elapsed_s,
        (unsigned long long)delta, (double)delta * run->options.size / 1e6, (unsigned long long)atomic_load(&run->errors));
    (void)fflush(out);
}

/* Lets the connections run for the requested time (or until a stop signal, or until every
 * connection has failed), printing progress once a second when asked to. */
static void run_for(LOAD_RUN* run, const sigset_t* stop_signals, FILE* progress, uint64_t start_ns)
{
    uint64_t end_ns = start_ns + (uint64_t)(run->options.seconds * 1e9);
    uint64_t next_tick_ns = start_ns + 1000000000ull;
    uint64_t last_round_trips = 0;
    for (;;)
    {
        uint64_t now = tool_now_ns();
        if (now >= end_ns || atomic_load(&run->active) == 0)
        {
            return;
        }
        uint64_t wake = next_tick_ns < end_ns ? next_tick_ns : end_ns;
        if (tool_wait_for_stop(stop_signals, tool_ms_until(now, wake, 100)) != 0)
        {
            return;
        }
        /* The tick moves on whether or not a progress line is printed: a tick left behind would
         * make every later wait end at once. */
        if (tool_now_ns() >= next_tick_ns)
        {
            if (progress != NULL)
            {
                progress_line(run, progress, (double)(next_tick_ns - start_ns) / 1e9, &last_round_trips);
            }
            next_tick_ns += 1000000000ull;
        }
    }
}

/* Waits until every connection has finished its last round trip; those still waiting after
 * SETTLE_TIMEOUT_NS are finished as errors (their close comes after). */
static void run_settle(LOAD_RUN* run)
{
    atomic_store(&run->stop, true);
    struct timespec deadline;
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(SETTLE_TIMEOUT_NS / 1000000000ull);
    (void)pthread_mutex_lock(&run->lock);
    int wait_result = 0;
    while (atomic_load(&run->active) != 0 && wait_result == 0)
    {
        wait_result = pthread_cond_timedwait(&run->settled, &run->lock, &deadline);
    }
    (void)pthread_mutex_unlock(&run->lock);
    for (uint32_t i = 0; i < run->options.conns; i++)
    {
        if (!atomic_load(&run->connections[i].finished))
        {
            connection_finish(&run->connections[i], "a round trip did not complete within 5 s of the end");
        }
    }
}

/* Prints text as the inside of a JSON string: quotes, backslashes and control bytes escaped. */
static void print_json_text(const char* text)
{
    for (const unsigned char* c = (const unsigned char*)text; *c != '\0'; c++)
    {
        if (*c == '"' || *c == '\\')
        {
            (void)printf("\\%c", *c);
        }
        else if (*c < 0x20)
        {
            (void)printf("\\u%04x", *c);
        }
        else
        {
            (void)putchar(*c);
        }
    }
}

static void print_result(const LOAD_RUN* run, double elapsed_s)
{
    const LOAD_OPTIONS* o = &run->options;
    uint64_t round_trips = atomic_load(&run->round_trips);
    double rate = elapsed_s > 0 ? (double)round_trips / elapsed_s : 0.0;
    double mb_per_s = rate * o->size / 1e6;
    double p50 = (double)latency_histogram_quantile(&run->latency, 0.50) / 1e3;
    double p99 = (double)latency_histogram_quantile(&run->latency, 0.99) / 1e3;
    double p999 = (double)latency_histogram_quantile(&run->latency, 0.999) / 1e3;
    unsigned long long errors = (unsigned long long)atomic_load(&run->errors);
    unsigned long long mismatches = (unsigned long long)atomic_load(&run->mismatches);
    if (o->json)
    {
        /* Codes_SRS_ASOCK_TOOLS_01_013 */
        (void)printf("{\"host\": \"");
        print_json_text(o->host);
        (void)printf("\", \"port\": %u, \"conns\": %u, \"size\": %u, \"seconds\": %.3f, "
            "\"round_trips\": %llu, \"round_trips_per_s\": %.1f, \"mb_per_s\": %.3f, "
            "\"latency_us\": {\"p50\": %.1f, \"p99\": %.1f, \"p999\": %.1f}, \"errors\": %llu, \"mismatches\": %llu}\n",
            (unsigned)o->port, o->conns, o->size, elapsed_s, (unsigned long long)round_trips, rate, mb_per_s,
            p50, p99, p999, errors, mismatches);
        return;
    }
    /* Codes_SRS_ASOCK_TOOLS_01_012 */
    (void)printf("asock-load: %s port %u, %u connection(s), %u-byte messages, %.2f s\n",
        o->host, (unsigned)o->port, o->conns, o->size, elapsed_s);
    (void)printf("  %-16s %14llu\n", "round trips", (unsigned long long)round_trips);
    (void)printf("  %-16s %14.0f\n", "round trips/s", rate);
    (void)printf("  %-16s %14.2f\n", "MB/s", mb_per_s);
    (void)printf("  %-16s %11.1f us\n", "latency p50", p50);
    (void)printf("  %-16s %11.1f us\n", "latency p99", p99);
    (void)printf("  %-16s %11.1f us\n", "latency p999", p999);
    (void)printf("  %-16s %14llu\n", "errors", errors);
    (void)printf("  %-16s %14llu\n", "mismatches", mismatches);
}

/* Runs the load and prints the result; returns the exit code. */
static int load_run(LOAD_RUN* run, const sigset_t* stop_signals)
{
    run->connections = calloc(run->options.conns, sizeof(CONNECTION));
    if (run->connections == NULL)
    {
        (void)fprintf(stderr, TOOL ": out of memory for %u connections\n", run->options.conns);
        return TOOL_EXIT_FAILURE;
    }
    bool opened = connections_open(run);
    int exit_code = TOOL_EXIT_FAILURE;
    if (opened)
    {
        /* Codes_SRS_ASOCK_TOOLS_01_010 */
        atomic_store(&run->active, run->options.conns);
        uint64_t start_ns = tool_now_ns();
        for (uint32_t i = 0; i < run->options.conns; i++)
        {
            round_trip_start(&run->connections[i]);
        }
        /* Codes_SRS_ASOCK_TOOLS_01_014 */
        FILE* progress = isatty(STDOUT_FILENO) ? (run->options.json ? stderr : stdout) : NULL;
        run_for(run, stop_signals, progress, start_ns);
        run_settle(run);
        double elapsed_s = (double)(tool_now_ns() - start_ns) / 1e9;
        print_result(run, elapsed_s);
        /* Codes_SRS_ASOCK_TOOLS_01_015 */
        bool clean = atomic_load(&run->errors) == 0 && atomic_load(&run->round_trips) > 0;
        exit_code = clean ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
    }
    connections_close(run);
    free(run->connections);
    return exit_code;
}

int main(int argc, char** argv)
{
    static LOAD_RUN run = {.lock = PTHREAD_MUTEX_INITIALIZER, .settled = PTHREAD_COND_INITIALIZER};
    bool go = false;
    int parsed = parse_options(argc, argv, &run.options, &go);
    if (!go)
    {
        return parsed;
    }
    sigset_t stop_signals;
    tool_block_stop_signals(&stop_signals);
    LOAD_OPTIONS* options = &run.options;
    if (options->tls && (options->tls_context = tool_tls_client(TOOL, options->host, options->tls_ca, !options->tls_insecure)) == NULL)
    {
        return TOOL_EXIT_FAILURE;
    }
    if (platform_init() != 0)
    {
        (void)fprintf(stderr, TOOL ": platform_init failed\n");
        tool_tls_destroy(options->tls_context);
        return TOOL_EXIT_FAILURE;
    }
    fit_to_fd_limit(options);
    int exit_code = load_run(&run, &stop_signals);
    platform_deinit();
    tool_tls_destroy(options->tls_context);
    (void)fflush(stdout);
    return exit_code;
}
