/* The scenarios written with libuv, idiomatically: uv_tcp_open on the harness's connected fds,
 * uv_read_start with an alloc callback handing out the connection's 64 KiB buffer, uv_write with
 * request objects owned by the connection, uv_timer for the measurement phases. One loop, one
 * thread. libuv's own allocations are counted through uv_replace_allocator. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "bench_common.h"

#define IMPL "libuv"
#define WRITES_PER_ENDPOINT 2

static BENCH_CONFIG config;
static uv_loop_t loop;
static int phase = BENCH_PHASE_WARMUP;
static bool tearing_down;
static BENCH_RESULT result;

_Noreturn static void fail(const char* what)
{
    bench_fail(IMPL, &config, what);
}

_Noreturn static void fail_uv(const char* what, int error)
{
    char text[160];
    (void)snprintf(text, sizeof(text), "%s: %s", what, uv_strerror(error));
    fail(text);
}

static void on_handle_closed(uv_handle_t* handle)
{
    (void)handle;
}

/* Wraps a connected fd (uv_tcp_open makes it non-blocking). */
static void open_tcp(uv_tcp_t* tcp, int fd, void* data)
{
    int error = uv_tcp_init(&loop, tcp);
    if (error == 0)
    {
        error = uv_tcp_open(tcp, fd);
    }
    if (error != 0)
    {
        fail_uv("uv_tcp_open", error);
    }
    tcp->data = data;
}

/* Measurement phases driven by timers: warm-up, then the measured window. */
static uv_timer_t phase_timer;
static void (*on_stop_phase)(void);

static void on_measure_end(uv_timer_t* timer)
{
    (void)timer;
    phase = BENCH_PHASE_STOP;
    bench_snapshot(&result.end);
    uv_close((uv_handle_t*)&phase_timer, on_handle_closed);
    if (on_stop_phase != NULL)
    {
        on_stop_phase();
    }
}

static void on_warmup_end(uv_timer_t* timer)
{
    bench_snapshot(&result.start);
    phase = BENCH_PHASE_MEASURE;
    (void)uv_timer_start(timer, on_measure_end, (config.duration_ns + 999999u) / 1000000u, 0);
}

static void start_phases(void (*stop_callback)(void))
{
    on_stop_phase = stop_callback;
    (void)uv_timer_init(&loop, &phase_timer);
    (void)uv_timer_start(&phase_timer, on_warmup_end, config.warmup_ns / 1000000u, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Ping-pong
 * ------------------------------------------------------------------------------------------- */

struct CONN_TAG;

/* A write's buffer must stay untouched until its callback, so each side alternates between two
 * buffers: the client's pings, the server's receive buffers (it echoes from the buffer the message
 * arrived in). Write request k sends from buffer k. libuv runs a write callback on the loop
 * iteration after the write, before the reply can be read, so two always suffice (claim checks). */
typedef struct ENDPOINT_TAG
{
    uv_tcp_t tcp;
    struct CONN_TAG* conn;
    bool server;
    uint8_t* buffers[2]; /* receive buffers: the server uses both, the client the first */
    uint32_t current;
    uint32_t have;
    uv_write_t writes[WRITES_PER_ENDPOINT];
    bool write_busy[WRITES_PER_ENDPOINT];
} ENDPOINT;

typedef struct CONN_TAG
{
    ENDPOINT client;
    ENDPOINT server;
    uint8_t* pings[2];
    uint64_t seq;
    uint64_t sent_ns;
    uint64_t round_trips;
    uint64_t measured;
    uint64_t target;
    BENCH_SAMPLES* samples;
} CONN;

static CONN* conns;
static uint32_t active_conns;
static bool fixed_count;

static void on_written(uv_write_t* request, int status)
{
    bool* busy = request->data;
    *busy = false;
    if (status != 0 && !tearing_down)
    {
        fail_uv("uv_write completion", status);
    }
}

static void claim(ENDPOINT* endpoint, uint32_t index)
{
    if (endpoint->write_busy[index])
    {
        fail("a message buffer is reused before its write completed");
    }
}

/* Sends `data` with write request `index` (the one tied to that buffer). */
static void send_message(ENDPOINT* endpoint, uint32_t index, uint8_t* data, uint32_t length)
{
    uv_buf_t buffer = uv_buf_init((char*)data, length);
    int error;
    claim(endpoint, index);
    endpoint->write_busy[index] = true;
    endpoint->writes[index].data = &endpoint->write_busy[index];
    error = uv_write(&endpoint->writes[index], (uv_stream_t*)&endpoint->tcp, &buffer, 1, on_written);
    if (error != 0)
    {
        fail_uv("uv_write", error);
    }
}

static void close_all_conns(void)
{
    tearing_down = true;
    for (uint32_t i = 0; i < config.connections; i++)
    {
        uv_close((uv_handle_t*)&conns[i].client.tcp, on_handle_closed);
        uv_close((uv_handle_t*)&conns[i].server.tcp, on_handle_closed);
    }
}

static void on_alloc(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buffer)
{
    ENDPOINT* endpoint = handle->data;
    (void)suggested_size;
    buffer->base = (char*)endpoint->buffers[endpoint->current] + endpoint->have;
    buffer->len = BENCH_RECV_BUFFER_SIZE - endpoint->have;
}

static void on_client_message(CONN* conn)
{
    uint64_t now;
    if (!bench_message_check(conn->client.buffers[0], config.message_size, conn->seq))
    {
        fail("ping-pong message corrupted");
    }
    now = bench_now_ns();
    conn->round_trips++;
    if (phase == BENCH_PHASE_MEASURE)
    {
        conn->measured++;
        bench_samples_add(conn->samples, now - conn->sent_ns);
    }
    if (fixed_count ? (conn->round_trips >= conn->target) : (phase == BENCH_PHASE_STOP))
    {
        if (--active_conns == 0)
        {
            if (fixed_count)
            {
                bench_snapshot(&result.end);
            }
            close_all_conns();
        }
        return;
    }
    conn->seq++;
    claim(&conn->client, (uint32_t)(conn->seq & 1u));
    bench_message_stamp(conn->pings[conn->seq & 1u], conn->seq);
    conn->sent_ns = now;
    send_message(&conn->client, (uint32_t)(conn->seq & 1u), conn->pings[conn->seq & 1u], config.message_size);
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer)
{
    ENDPOINT* endpoint = stream->data;
    (void)buffer;
    if (nread <= 0)
    {
        if (nread == 0 || tearing_down)
        {
            return;
        }
        fail_uv("read", (int)nread);
    }
    endpoint->have += (uint32_t)nread;
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
        uint32_t index = endpoint->current;
        endpoint->current ^= 1u;
        claim(endpoint, endpoint->current); /* the next message lands there */
        send_message(endpoint, index, endpoint->buffers[index], config.message_size);
    }
    else
    {
        on_client_message(endpoint->conn);
    }
}

static void run_ping_pong(void)
{
    uint32_t count = config.connections;
    BENCH_SAMPLES* samples = bench_samples_create(count);
    int listen_fd = bench_listen();

    conns = calloc(count, sizeof(CONN));
    fixed_count = config.roundtrips >= 0;
    if (conns == NULL || samples == NULL || listen_fd < 0)
    {
        fail("setup failed");
    }
    for (uint32_t i = 0; i < count; i++)
    {
        CONN* conn = &conns[i];
        int client_fd;
        int server_fd;
        if (bench_connect_pair(listen_fd, &client_fd, &server_fd) != 0)
        {
            fail("connecting a pair failed");
        }
        conn->client.conn = conn;
        conn->server.conn = conn;
        conn->server.server = true;
        open_tcp(&conn->client.tcp, client_fd, &conn->client);
        open_tcp(&conn->server.tcp, server_fd, &conn->server);
        for (uint32_t k = 0; k < 2; k++)
        {
            conn->client.buffers[k] = (k == 0) ? malloc(BENCH_RECV_BUFFER_SIZE) : NULL;
            conn->server.buffers[k] = malloc(BENCH_RECV_BUFFER_SIZE);
            conn->pings[k] = malloc(config.message_size);
            if ((k == 0 && conn->client.buffers[k] == NULL) || conn->server.buffers[k] == NULL || conn->pings[k] == NULL)
            {
                fail("out of memory");
            }
            bench_message_fill(conn->pings[k], config.message_size, 0);
        }
        conn->samples = &samples[i];
        conn->target = fixed_count ? ((uint64_t)config.roundtrips + count - 1) / count : 0;
        if (uv_read_start((uv_stream_t*)&conn->client.tcp, on_alloc, on_read) != 0 ||
            uv_read_start((uv_stream_t*)&conn->server.tcp, on_alloc, on_read) != 0)
        {
            fail("uv_read_start failed");
        }
    }

    active_conns = 0;
    if (fixed_count)
    {
        phase = BENCH_PHASE_MEASURE;
        bench_snapshot(&result.start);
    }
    else
    {
        start_phases(NULL);
    }
    for (uint32_t i = 0; i < count; i++)
    {
        CONN* conn = &conns[i];
        if (fixed_count && conn->target == 0)
        {
            continue;
        }
        active_conns++;
        conn->sent_ns = bench_now_ns();
        send_message(&conn->client, 0, conn->pings[0], config.message_size);
    }
    if (active_conns == 0)
    {
        bench_snapshot(&result.end);
        close_all_conns();
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);

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
        for (uint32_t k = 0; k < 2; k++)
        {
            free(conns[i].client.buffers[k]);
            free(conns[i].server.buffers[k]);
            free(conns[i].pings[k]);
        }
    }
    free(conns);
    bench_samples_destroy(samples, count);
    (void)close(listen_fd);
}

/* ---------------------------------------------------------------------------------------------
 * Streaming: 4 uv_write requests of 64 KiB kept outstanding (each completion issues the next);
 * reading into one 64 KiB buffer, every byte checked.
 * ------------------------------------------------------------------------------------------- */

typedef struct STREAM_TAG
{
    uv_tcp_t sender;
    uv_tcp_t receiver;
    uv_write_t writes[BENCH_STREAM_OUTSTANDING];
    uint32_t outstanding;
    uint64_t next_offset;
    uint64_t measured_chunks;
    uint8_t* buffer;
    uint64_t received;
    uint64_t measured_bytes;
    uint64_t mismatches;
    bool closed;
} STREAM;

static STREAM stream;

static void stream_maybe_finish(void)
{
    if (phase == BENCH_PHASE_STOP && stream.outstanding == 0 && stream.received >= stream.next_offset && !stream.closed)
    {
        stream.closed = true;
        tearing_down = true;
        uv_close((uv_handle_t*)&stream.sender, on_handle_closed);
        uv_close((uv_handle_t*)&stream.receiver, on_handle_closed);
    }
}

static void on_stream_written(uv_write_t* request, int status);

static void stream_write(uv_write_t* request)
{
    uv_buf_t buffer = uv_buf_init((char*)bench_pattern_at(stream.next_offset), BENCH_STREAM_CHUNK);
    int error = uv_write(request, (uv_stream_t*)&stream.sender, &buffer, 1, on_stream_written);
    if (error != 0)
    {
        fail_uv("uv_write", error);
    }
    stream.next_offset += BENCH_STREAM_CHUNK;
    stream.outstanding++;
}

static void on_stream_written(uv_write_t* request, int status)
{
    if (status != 0)
    {
        fail_uv("stream write completion", status);
    }
    stream.outstanding--;
    if (phase == BENCH_PHASE_MEASURE)
    {
        stream.measured_chunks++;
    }
    if (phase != BENCH_PHASE_STOP)
    {
        stream_write(request);
    }
    else
    {
        stream_maybe_finish();
    }
}

static void on_stream_alloc(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buffer)
{
    (void)handle;
    (void)suggested_size;
    buffer->base = (char*)stream.buffer;
    buffer->len = BENCH_RECV_BUFFER_SIZE;
}

static void on_stream_read(uv_stream_t* handle, ssize_t nread, const uv_buf_t* buffer)
{
    (void)handle;
    (void)buffer;
    if (nread <= 0)
    {
        if (nread == 0 || tearing_down)
        {
            return;
        }
        fail_uv("stream read", (int)nread);
    }
    stream.mismatches += bench_pattern_mismatches(stream.buffer, (size_t)nread, stream.received);
    stream.received += (uint64_t)nread;
    if (phase == BENCH_PHASE_MEASURE)
    {
        stream.measured_bytes += (uint64_t)nread;
    }
    stream_maybe_finish();
}

static void run_stream(void)
{
    int listen_fd = bench_listen();
    int sender_fd = -1;
    int receiver_fd = -1;

    stream.buffer = malloc(BENCH_RECV_BUFFER_SIZE);
    if (stream.buffer == NULL || listen_fd < 0 || bench_connect_pair(listen_fd, &sender_fd, &receiver_fd) != 0)
    {
        fail("setup failed");
    }
    open_tcp(&stream.sender, sender_fd, NULL);
    open_tcp(&stream.receiver, receiver_fd, NULL);
    if (uv_read_start((uv_stream_t*)&stream.receiver, on_stream_alloc, on_stream_read) != 0)
    {
        fail("uv_read_start failed");
    }
    start_phases(stream_maybe_finish);
    for (uint32_t i = 0; i < BENCH_STREAM_OUTSTANDING; i++)
    {
        stream_write(&stream.writes[i]);
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);

    result.operations = stream.measured_chunks;
    result.bytes = stream.measured_bytes;
    result.mismatches = stream.mismatches;
    result.ok = stream.mismatches == 0 && stream.received == stream.next_offset;
    if (!result.ok)
    {
        result.error = "stream data not intact";
    }
    {
        char extra[64];
        (void)snprintf(extra, sizeof(extra), "stream_total=%llu", (unsigned long long)stream.received);
        bench_report(IMPL, &config, &result, extra);
    }
    free(stream.buffer);
    (void)close(listen_fd);
}

/* ---------------------------------------------------------------------------------------------
 * Idle: every socket reading (uv_read_start); then one byte each way on every pair.
 * ------------------------------------------------------------------------------------------- */

typedef struct IDLE_SOCKET_TAG
{
    uv_tcp_t* tcp; /* libuv's per-socket state: allocated after the plain-fd RSS is taken */
    int fd;
    uint8_t out;
    uint8_t in[BENCH_IDLE_READ_SIZE];
} IDLE_SOCKET;

static uint32_t idle_woken;
static uint32_t idle_written;
static uint32_t idle_target;
static uint64_t idle_woken_ns;

static void on_idle_alloc(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buffer)
{
    IDLE_SOCKET* idle = handle->data;
    (void)suggested_size;
    buffer->base = (char*)idle->in;
    buffer->len = BENCH_IDLE_READ_SIZE;
}

static void idle_check_done(void)
{
    if (idle_woken == idle_target && idle_written == idle_target)
    {
        uv_stop(&loop);
    }
}

static void on_idle_read(uv_stream_t* handle, ssize_t nread, const uv_buf_t* buffer)
{
    IDLE_SOCKET* idle = handle->data;
    (void)buffer;
    if (nread == 0 || (nread < 0 && tearing_down))
    {
        return;
    }
    if (nread != 1 || idle->in[0] != idle->out)
    {
        fail("idle read failed");
    }
    if (++idle_woken == idle_target)
    {
        idle_woken_ns = bench_now_ns();
    }
    idle_check_done();
}

static void on_idle_written(uv_write_t* request, int status)
{
    (void)request;
    if (status != 0)
    {
        fail_uv("idle write completion", status);
    }
    idle_written++;
    idle_check_done();
}

static void run_idle(void)
{
    uint32_t pairs = bench_idle_pairs_allowed(config.idle_pairs);
    uint32_t sockets = pairs * 2;
    IDLE_SOCKET* idle = calloc(sockets, sizeof(IDLE_SOCKET));
    double* wake_ms = calloc(config.idle_wakes, sizeof(double));
    int listen_fd = bench_listen();
    uv_tcp_t* tcps;
    uv_write_t* writes;
    uint64_t rss_plain;
    uint64_t rss_armed;
    uint64_t allocs_plain;
    uint64_t bytes_plain;
    uint64_t steady_allocs = 0;

    if (pairs == 0 || idle == NULL || wake_ms == NULL || listen_fd < 0)
    {
        fail("setup failed");
    }
    for (uint32_t i = 0; i < pairs; i++)
    {
        if (bench_connect_pair(listen_fd, &idle[2 * i].fd, &idle[2 * i + 1].fd) != 0)
        {
            fail("connecting a pair failed");
        }
    }
    for (uint32_t i = 0; i < sockets; i++)
    {
        idle[i].out = (uint8_t)(i * 7u + 1u);
    }

    rss_plain = bench_rss_bytes();
    allocs_plain = bench_alloc_count();
    bytes_plain = bench_alloc_bytes();
    tcps = malloc((size_t)sockets * sizeof(uv_tcp_t));
    if (tcps == NULL)
    {
        fail("out of memory");
    }
    for (uint32_t i = 0; i < sockets; i++)
    {
        idle[i].tcp = &tcps[i];
        open_tcp(idle[i].tcp, idle[i].fd, &idle[i]);
        if (uv_read_start((uv_stream_t*)idle[i].tcp, on_idle_alloc, on_idle_read) != 0)
        {
            fail("uv_read_start failed");
        }
    }
    /* libuv registers with epoll lazily, on the next loop iteration: run it once */
    (void)uv_run(&loop, UV_RUN_NOWAIT);
    rss_armed = bench_rss_bytes();
    result.idle_allocs_per_socket = (double)(bench_alloc_count() - allocs_plain) / (double)sockets;
    result.idle_heap_bytes_per_socket = (double)(bench_alloc_bytes() - bytes_plain) / (double)sockets;

    writes = calloc(sockets, sizeof(uv_write_t));
    if (writes == NULL)
    {
        fail("out of memory");
    }
    phase = BENCH_PHASE_MEASURE;
    for (uint32_t round = 0; round < config.idle_wakes; round++)
    {
        uint64_t allocs_before = bench_alloc_count();
        uint64_t start = bench_now_ns();
        idle_target = sockets * (round + 1);
        for (uint32_t i = 0; i < sockets; i++)
        {
            uv_buf_t buffer = uv_buf_init((char*)&idle[i ^ 1u].out, 1);
            int error = uv_write(&writes[i], (uv_stream_t*)idle[i].tcp, &buffer, 1, on_idle_written);
            if (error != 0)
            {
                fail_uv("uv_write", error);
            }
        }
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        if (idle_woken != idle_target || idle_written != idle_target)
        {
            fail("idle wake did not finish");
        }
        wake_ms[round] = (double)(idle_woken_ns - start) / 1e6;
        if (round > 0)
        {
            steady_allocs += bench_alloc_count() - allocs_before;
        }
    }

    tearing_down = true;
    for (uint32_t i = 0; i < sockets; i++)
    {
        uv_close((uv_handle_t*)idle[i].tcp, on_handle_closed);
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);

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
    free(writes);
    free(tcps);
    free(idle);
    free(wake_ms);
    (void)close(listen_fd);
}

int main(int argc, char** argv)
{
    /* before any other libuv call */
    if (uv_replace_allocator(bench_counted_malloc, bench_counted_realloc, bench_counted_calloc, bench_counted_free) != 0)
    {
        (void)fprintf(stderr, "uv_replace_allocator failed\n");
        return 1;
    }
    bench_parse_args(argc, argv, &config);
    bench_pattern_init();
    if (uv_loop_init(&loop) != 0)
    {
        fail("uv_loop_init failed");
    }
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
    (void)uv_loop_close(&loop);
    return 0;
}
