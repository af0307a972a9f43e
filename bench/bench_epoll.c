/* The reference: a tight single-threaded epoll loop written by hand, no library.
 *
 * Both ends of every connection live in one thread. Every fd is registered once, level-
 * triggered; a receiver reads once per event in ping-pong (a short read means the socket is
 * drained). A ping-pong send is a plain write(); only a write the kernel does not take whole arms
 * EPOLLOUT, so the steady state has no epoll_ctl at all. In streaming the sender writes its queued
 * chunks (at most 4 x 64 KiB) once per loop iteration, which keeps the data in flight small and in
 * cache: writing until EAGAIN instead fills the socket buffers and measured ~3 GB/s here against
 * ~8-11 GB/s for this loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench_common.h"

#define IMPL "epoll"
#define MAX_EVENTS 1024
#define STALL_NS (10ull * 1000000000ull)

static BENCH_CONFIG config;

_Noreturn static void fail(const char* what)
{
    bench_fail(IMPL, &config, what);
}

/* ---------------------------------------------------------------------------------------------
 * Ping-pong
 * ------------------------------------------------------------------------------------------- */

struct CONN_TAG;

typedef struct ENDPOINT_TAG
{
    int fd;
    bool server;
    struct CONN_TAG* conn;
    uint8_t* buffer; /* 64 KiB receive buffer */
    uint32_t have;
    const uint8_t* out; /* output the kernel has not taken yet */
    uint32_t out_length;
} ENDPOINT;

typedef struct CONN_TAG
{
    ENDPOINT client;
    ENDPOINT server;
    uint8_t* message; /* the client's ping */
    uint64_t seq;
    uint64_t sent_ns;
    uint64_t round_trips;
    uint64_t measured;
    uint64_t target; /* fixed-count mode */
    bool finished;
} CONN;

static int epoll_fd = -1;
static int phase = BENCH_PHASE_WARMUP;
static bool fixed_count;

static void set_interest(ENDPOINT* endpoint, uint32_t events)
{
    struct epoll_event event = { .events = events, .data.ptr = endpoint };
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, endpoint->fd, &event) != 0)
    {
        fail("epoll_ctl(MOD) failed");
    }
}

static void write_out(ENDPOINT* endpoint)
{
    while (endpoint->out_length > 0)
    {
        ssize_t written = write(endpoint->fd, endpoint->out, endpoint->out_length);
        if (written < 0)
        {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
                return;
            }
            fail("write failed");
        }
        endpoint->out += written;
        endpoint->out_length -= (uint32_t)written;
    }
}

static void send_message(ENDPOINT* endpoint, const uint8_t* data, uint32_t length)
{
    endpoint->out = data;
    endpoint->out_length = length;
    write_out(endpoint);
    if (endpoint->out_length > 0)
    {
        set_interest(endpoint, EPOLLIN | EPOLLOUT);
    }
}

static void on_client_message(CONN* conn, uint32_t* active)
{
    uint64_t now;
    if (!bench_message_check(conn->client.buffer, config.message_size, conn->seq))
    {
        fail("ping-pong message corrupted");
    }
    now = bench_now_ns();
    conn->round_trips++;
    if (phase == BENCH_PHASE_MEASURE)
    {
        conn->measured++;
    }
    if (fixed_count ? (conn->round_trips >= conn->target) : (phase == BENCH_PHASE_STOP))
    {
        conn->finished = true;
        (*active)--;
        return;
    }
    conn->seq++;
    bench_message_stamp(conn->message, conn->seq);
    conn->sent_ns = now;
    send_message(&conn->client, conn->message, config.message_size);
}

static void on_readable(ENDPOINT* endpoint, uint32_t* active, BENCH_SAMPLES* samples)
{
    CONN* conn = endpoint->conn;
    ssize_t got = read(endpoint->fd, endpoint->buffer + endpoint->have, BENCH_RECV_BUFFER_SIZE - endpoint->have);
    if (got <= 0)
    {
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
            return;
        }
        fail("read failed or end of stream");
    }
    endpoint->have += (uint32_t)got;
    if (endpoint->have < config.message_size)
    {
        return;
    }
    if (endpoint->have > config.message_size)
    {
        fail("more than one message in flight");
    }
    endpoint->have = 0;
    if (endpoint->server)
    {
        send_message(endpoint, endpoint->buffer, config.message_size);
    }
    else
    {
        uint64_t rtt = bench_now_ns() - conn->sent_ns;
        if (phase == BENCH_PHASE_MEASURE)
        {
            bench_samples_add(samples, rtt);
        }
        on_client_message(conn, active);
    }
}

static void add_endpoint(ENDPOINT* endpoint)
{
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = endpoint };
    if (bench_set_nonblocking(endpoint->fd) != 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, endpoint->fd, &event) != 0)
    {
        fail("registering a socket failed");
    }
}

static void run_ping_pong(void)
{
    uint32_t count = config.connections;
    CONN* conns = calloc(count, sizeof(CONN));
    BENCH_SAMPLES* samples = bench_samples_create(count);
    BENCH_RESULT result;
    struct epoll_event events[MAX_EVENTS];
    int listen_fd = bench_listen();
    uint32_t active = count;
    uint64_t warm_end;
    uint64_t measure_end = 0;
    uint64_t last_event;

    memset(&result, 0, sizeof(result));
    fixed_count = config.roundtrips >= 0;
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || samples == NULL || listen_fd < 0 || epoll_fd < 0)
    {
        fail("setup failed");
    }
    for (uint32_t i = 0; i < count; i++)
    {
        CONN* conn = &conns[i];
        if (bench_connect_pair(listen_fd, &conn->client.fd, &conn->server.fd) != 0)
        {
            fail("connecting a pair failed");
        }
        conn->client.conn = conn;
        conn->server.conn = conn;
        conn->server.server = true;
        conn->client.buffer = malloc(BENCH_RECV_BUFFER_SIZE);
        conn->server.buffer = malloc(BENCH_RECV_BUFFER_SIZE);
        conn->message = malloc(config.message_size);
        if (conn->client.buffer == NULL || conn->server.buffer == NULL || conn->message == NULL)
        {
            fail("out of memory");
        }
        bench_message_fill(conn->message, config.message_size, 0);
        conn->target = fixed_count ? ((uint64_t)config.roundtrips + count - 1) / count : 0;
        add_endpoint(&conn->client);
        add_endpoint(&conn->server);
    }

    /* start: one ping in flight per connection */
    active = 0;
    for (uint32_t i = 0; i < count; i++)
    {
        CONN* conn = &conns[i];
        if (fixed_count && conn->target == 0)
        {
            conn->finished = true;
            continue;
        }
        active++;
        conn->sent_ns = bench_now_ns();
        send_message(&conn->client, conn->message, config.message_size);
    }
    warm_end = bench_now_ns() + config.warmup_ns;
    if (fixed_count)
    {
        phase = BENCH_PHASE_MEASURE;
        bench_snapshot(&result.start);
    }
    last_event = bench_now_ns();

    while (active > 0)
    {
        int n = epoll_wait(epoll_fd, events, MAX_EVENTS, fixed_count ? 1000 : 100);
        if (n < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            fail("epoll_wait failed");
        }
        for (int i = 0; i < n; i++)
        {
            ENDPOINT* endpoint = events[i].data.ptr;
            if ((events[i].events & EPOLLOUT) != 0 && endpoint->out_length > 0)
            {
                write_out(endpoint);
                if (endpoint->out_length == 0)
                {
                    set_interest(endpoint, EPOLLIN);
                }
            }
            if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0)
            {
                on_readable(endpoint, &active, &samples[endpoint->conn - conns]);
            }
        }
        if (!fixed_count)
        {
            uint64_t now = bench_now_ns();
            if (phase == BENCH_PHASE_WARMUP && now >= warm_end)
            {
                bench_snapshot(&result.start);
                measure_end = result.start.wall_ns + config.duration_ns;
                phase = BENCH_PHASE_MEASURE;
            }
            else if (phase == BENCH_PHASE_MEASURE && now >= measure_end)
            {
                bench_snapshot(&result.end);
                phase = BENCH_PHASE_STOP;
            }
            if (n > 0)
            {
                last_event = now;
            }
            else if (now - last_event > STALL_NS)
            {
                fail("ping-pong stalled");
            }
        }
        else if (n == 0)
        {
            fail("ping-pong stalled");
        }
    }
    if (fixed_count)
    {
        bench_snapshot(&result.end);
    }

    result.ok = true;
    for (uint32_t i = 0; i < count; i++)
    {
        result.operations += conns[i].measured;
    }
    result.bytes = result.operations * 2u * config.message_size;
    result.samples = samples;
    result.sample_sets = count;
    bench_report(IMPL, &config, &result, NULL);

    for (uint32_t i = 0; i < count; i++)
    {
        (void)close(conns[i].client.fd);
        (void)close(conns[i].server.fd);
        free(conns[i].client.buffer);
        free(conns[i].server.buffer);
        free(conns[i].message);
    }
    free(conns);
    bench_samples_destroy(samples, count);
    (void)close(listen_fd);
    (void)close(epoll_fd);
}

/* ---------------------------------------------------------------------------------------------
 * Streaming: the sender always has BENCH_STREAM_OUTSTANDING chunks of 64 KiB queued (a chunk the
 * kernel has taken whole is complete, and the next is queued at once) and, when EPOLLOUT reports
 * room, writes what is queued in one write(). The receiver reads 64 KiB at a time until a short
 * read and checks every byte against the stream pattern.
 * ------------------------------------------------------------------------------------------- */

typedef struct STREAM_TAG
{
    int sender;
    int receiver;
    uint64_t written;
    uint64_t queued_end; /* end of the queued chunks */
    uint64_t completed_chunks;
    uint64_t measured_chunks;
    uint64_t received;
    uint64_t measured_bytes;
    uint64_t mismatches;
    uint8_t* buffer;
    bool sender_quiet;
} STREAM;

static void stream_write(STREAM* stream)
{
    if (stream->written == stream->queued_end && phase == BENCH_PHASE_STOP && !stream->sender_quiet)
    {
        /* nothing more will be queued: stop the level-triggered EPOLLOUT from spinning */
        struct epoll_event event = { .events = 0, .data.u32 = 0 };
        stream->sender_quiet = true;
        if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, stream->sender, &event) != 0)
        {
            fail("epoll_ctl(MOD) failed");
        }
    }
    if (stream->written < stream->queued_end)
    {
        ssize_t written = write(stream->sender, bench_pattern_at(stream->written), (size_t)(stream->queued_end - stream->written));
        if (written < 0)
        {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
                return;
            }
            fail("stream write failed");
        }
        stream->written += (uint64_t)written;
        while (stream->completed_chunks < stream->written / BENCH_STREAM_CHUNK)
        {
            stream->completed_chunks++;
            if (phase == BENCH_PHASE_MEASURE)
            {
                stream->measured_chunks++;
            }
            if (phase != BENCH_PHASE_STOP)
            {
                stream->queued_end += BENCH_STREAM_CHUNK;
            }
        }
    }
}

static void stream_read(STREAM* stream)
{
    for (;;)
    {
        ssize_t got = read(stream->receiver, stream->buffer, BENCH_RECV_BUFFER_SIZE);
        if (got <= 0)
        {
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            {
                return;
            }
            fail("stream read failed or end of stream");
        }
        stream->mismatches += bench_pattern_mismatches(stream->buffer, (size_t)got, stream->received);
        stream->received += (uint64_t)got;
        if (phase == BENCH_PHASE_MEASURE)
        {
            stream->measured_bytes += (uint64_t)got;
        }
        if ((size_t)got < BENCH_RECV_BUFFER_SIZE)
        {
            return;
        }
    }
}

static void run_stream(void)
{
    STREAM stream;
    BENCH_RESULT result;
    struct epoll_event events[8];
    struct epoll_event event;
    int listen_fd = bench_listen();
    uint64_t warm_end;
    uint64_t measure_end = 0;
    uint64_t last_progress;
    uint64_t last_received = 0;

    memset(&stream, 0, sizeof(stream));
    memset(&result, 0, sizeof(result));
    stream.buffer = malloc(BENCH_RECV_BUFFER_SIZE);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (stream.buffer == NULL || listen_fd < 0 || epoll_fd < 0 ||
        bench_connect_pair(listen_fd, &stream.sender, &stream.receiver) != 0 ||
        bench_set_nonblocking(stream.sender) != 0 || bench_set_nonblocking(stream.receiver) != 0)
    {
        fail("setup failed");
    }
    event.events = EPOLLOUT;
    event.data.u32 = 0;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, stream.sender, &event) != 0)
    {
        fail("epoll_ctl failed");
    }
    event.events = EPOLLIN;
    event.data.u32 = 1;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, stream.receiver, &event) != 0)
    {
        fail("epoll_ctl failed");
    }

    stream.queued_end = (uint64_t)BENCH_STREAM_OUTSTANDING * BENCH_STREAM_CHUNK;
    warm_end = bench_now_ns() + config.warmup_ns;
    last_progress = bench_now_ns();
    stream_write(&stream);
    while (phase != BENCH_PHASE_STOP || stream.received < stream.queued_end)
    {
        int n = epoll_wait(epoll_fd, events, 8, 100);
        uint64_t now;
        if (n < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            fail("epoll_wait failed");
        }
        for (int i = 0; i < n; i++)
        {
            if (events[i].data.u32 == 0)
            {
                stream_write(&stream);
            }
            else
            {
                stream_read(&stream);
            }
        }
        now = bench_now_ns();
        if (phase == BENCH_PHASE_WARMUP && now >= warm_end)
        {
            bench_snapshot(&result.start);
            measure_end = result.start.wall_ns + config.duration_ns;
            phase = BENCH_PHASE_MEASURE;
        }
        else if (phase == BENCH_PHASE_MEASURE && now >= measure_end)
        {
            bench_snapshot(&result.end);
            phase = BENCH_PHASE_STOP;
            /* no more chunks: the queue ends where the sender has queued so far */
        }
        if (stream.received != last_received)
        {
            last_received = stream.received;
            last_progress = now;
        }
        else if (now - last_progress > STALL_NS)
        {
            fail("stream stalled");
        }
    }

    result.operations = stream.measured_chunks;
    result.bytes = stream.measured_bytes;
    result.mismatches = stream.mismatches;
    result.ok = stream.mismatches == 0 && stream.received == stream.queued_end && stream.written == stream.queued_end;
    if (!result.ok)
    {
        result.error = "stream data not intact";
    }
    {
        char extra[128];
        (void)snprintf(extra, sizeof(extra), "stream_total=%llu", (unsigned long long)stream.received);
        bench_report(IMPL, &config, &result, extra);
    }
    (void)close(stream.sender);
    (void)close(stream.receiver);
    (void)close(listen_fd);
    (void)close(epoll_fd);
    free(stream.buffer);
}

/* ---------------------------------------------------------------------------------------------
 * Idle: every socket registered for input (its "pending receive"); then one byte each way on
 * every pair, and the loop reads every one of them.
 * ------------------------------------------------------------------------------------------- */

static void run_idle(void)
{
    uint32_t pairs = bench_idle_pairs_allowed(config.idle_pairs);
    uint32_t sockets = pairs * 2;
    int* fds = calloc(sockets, sizeof(int));
    double* wake_ms = calloc(config.idle_wakes, sizeof(double));
    struct epoll_event* events = calloc(MAX_EVENTS, sizeof(struct epoll_event));
    int listen_fd = bench_listen();
    BENCH_RESULT result;
    uint64_t rss_plain;
    uint64_t rss_armed;
    uint64_t allocs_plain;
    uint64_t bytes_plain;
    uint64_t steady_allocs = 0;
    uint8_t byte = 0x5A;

    memset(&result, 0, sizeof(result));
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (pairs == 0 || fds == NULL || wake_ms == NULL || events == NULL || listen_fd < 0 || epoll_fd < 0)
    {
        fail("setup failed");
    }
    for (uint32_t i = 0; i < pairs; i++)
    {
        if (bench_connect_pair(listen_fd, &fds[2 * i], &fds[2 * i + 1]) != 0 ||
            bench_set_nonblocking(fds[2 * i]) != 0 || bench_set_nonblocking(fds[2 * i + 1]) != 0)
        {
            fail("connecting a pair failed");
        }
    }

    rss_plain = bench_rss_bytes();
    allocs_plain = bench_alloc_count();
    bytes_plain = bench_alloc_bytes();
    for (uint32_t i = 0; i < sockets; i++)
    {
        struct epoll_event event = { .events = EPOLLIN, .data.u32 = i };
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fds[i], &event) != 0)
        {
            fail("epoll_ctl(ADD) failed");
        }
    }
    rss_armed = bench_rss_bytes();
    result.idle_allocs_per_socket = (double)(bench_alloc_count() - allocs_plain) / (double)sockets;
    result.idle_heap_bytes_per_socket = (double)(bench_alloc_bytes() - bytes_plain) / (double)sockets;

    for (uint32_t round = 0; round < config.idle_wakes; round++)
    {
        uint64_t allocs_before = bench_alloc_count();
        uint64_t start = bench_now_ns();
        uint32_t woken = 0;
        for (uint32_t i = 0; i < sockets; i++)
        {
            if (write(fds[i], &byte, 1) != 1)
            {
                fail("idle write failed");
            }
        }
        while (woken < sockets)
        {
            int n = epoll_wait(epoll_fd, events, MAX_EVENTS, 10000);
            if (n <= 0)
            {
                if (n < 0 && errno == EINTR)
                {
                    continue;
                }
                fail("idle wake stalled");
            }
            for (int e = 0; e < n; e++)
            {
                uint8_t got[BENCH_IDLE_READ_SIZE];
                if (read(fds[events[e].data.u32], got, sizeof(got)) != 1 || got[0] != byte)
                {
                    fail("idle read failed");
                }
                woken++;
            }
        }
        wake_ms[round] = (double)(bench_now_ns() - start) / 1e6;
        if (round > 0)
        {
            steady_allocs += bench_alloc_count() - allocs_before;
        }
    }

    result.ok = true;
    result.idle_sockets = sockets;
    result.idle_bytes_per_socket = ((double)rss_armed - (double)rss_plain) / (double)sockets;
    result.wake_ms = bench_median(wake_ms, config.idle_wakes);
    result.wake_allocs_per_socket = (config.idle_wakes > 1) ? (double)steady_allocs / ((double)sockets * (config.idle_wakes - 1)) : 0.0;
    {
        char extra[64];
        (void)snprintf(extra, sizeof(extra), "pairs=%u", pairs);
        bench_report(IMPL, &config, &result, extra);
    }

    for (uint32_t i = 0; i < sockets; i++)
    {
        (void)close(fds[i]);
    }
    (void)close(listen_fd);
    (void)close(epoll_fd);
    free(fds);
    free(wake_ms);
    free(events);
}

int main(int argc, char** argv)
{
    bench_parse_args(argc, argv, &config);
    bench_pattern_init();
    switch (config.kind)
    {
    case BENCH_PING_PONG:
        run_ping_pong();
        break;
    case BENCH_STREAM:
        run_stream();
        break;
    case BENCH_IDLE:
        run_idle();
        break;
    case BENCH_TLS:
        fail("the tls scenario is run by bench_tls_async_socket and bench_tls_epoll");
    }
    return 0;
}
