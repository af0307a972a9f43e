/* The scenarios written with this library's public API (platform_init, async_socket_create,
 * async_socket_open_async, async_socket_send_async, async_socket_receive_async, ...), the way
 * users write them: an execution engine from execution_engine_create(NULL) passed to every
 * async_socket_create, ping-pong receives sized to the bytes still expected, the server posting
 * its next receive from the callback of its echo's send, the client posting its next receive
 * inside its receive callback before it sends the next ping.
 *
 * Callbacks run on the completion port's worker threads (default: completion_port_default_worker_count(), half the CPUs), and a send the
 * kernel takes whole completes inside async_socket_send_async. A connection's traffic is driven
 * entirely from its callbacks: a receive callback reposts its receive and sends the next message;
 * the main thread only starts the run, switches the measurement phases and waits at the end. Each
 * socket's receives complete one at a time, so per-connection state needs no lock. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/execution_engine.h"
#include "c_pal/platform.h"

#include "bench_common.h"

#define IMPL "async_socket"
#define WAIT_LIMIT_NS (20ull * 1000000000ull)

static BENCH_CONFIG config;
static EXECUTION_ENGINE_HANDLE engine; /* passed to every async_socket_create, as c-pal code does */
static atomic_int phase;
static atomic_bool tearing_down;

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static bool done_flag;

_Noreturn static void fail(const char* what)
{
    bench_fail(IMPL, &config, what);
}

static void signal_done(void)
{
    (void)pthread_mutex_lock(&done_lock);
    done_flag = true;
    (void)pthread_cond_broadcast(&done_cond);
    (void)pthread_mutex_unlock(&done_lock);
}

/* Waits until signal_done() (or fails after WAIT_LIMIT_NS), then re-arms the flag. */
static void wait_done(const char* what)
{
    struct timespec deadline;
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(WAIT_LIMIT_NS / 1000000000ull);
    (void)pthread_mutex_lock(&done_lock);
    while (!done_flag)
    {
        if (pthread_cond_timedwait(&done_cond, &done_lock, &deadline) == ETIMEDOUT)
        {
            (void)pthread_mutex_unlock(&done_lock);
            fail(what);
        }
    }
    done_flag = false;
    (void)pthread_mutex_unlock(&done_lock);
}

static void on_open_complete(void* context, ASYNC_SOCKET_OPEN_RESULT open_result)
{
    *(ASYNC_SOCKET_OPEN_RESULT*)context = open_result;
}

/* Wraps a connected fd: create + open (open completes inline). */
static ASYNC_SOCKET_HANDLE wrap(int fd)
{
    ASYNC_SOCKET_OPEN_RESULT open_result = ASYNC_SOCKET_OPEN_ERROR;
    ASYNC_SOCKET_HANDLE socket = async_socket_create(engine, fd);
    if (socket == NULL)
    {
        fail("async_socket_create failed");
    }
    if (async_socket_open_async(socket, on_open_complete, &open_result) != 0 || open_result != ASYNC_SOCKET_OPEN_OK)
    {
        fail("async_socket_open_async failed");
    }
    return socket;
}

static void on_send_complete(void* context, ASYNC_SOCKET_SEND_RESULT send_result)
{
    (void)context;
    if (send_result != ASYNC_SOCKET_SEND_OK && !atomic_load_explicit(&tearing_down, memory_order_relaxed))
    {
        fail("a send failed");
    }
}

static void send_or_fail(ASYNC_SOCKET_HANDLE socket, void* data, uint32_t length)
{
    ASYNC_SOCKET_BUFFER buffer = { .buffer = data, .length = length };
    if (async_socket_send_async(socket, &buffer, 1, on_send_complete, NULL) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        fail("async_socket_send_async failed");
    }
}

static void report_workers(char* extra, size_t size, const char* more)
{
    const char* workers = getenv(PLATFORM_WORKER_COUNT_ENV);
    if (workers != NULL && workers[0] != '\0')
    {
        (void)snprintf(extra, size, "workers=%s%s", workers, more);
    }
    else
    {
        (void)snprintf(extra, size, "workers=%u%s", completion_port_default_worker_count(), more);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Ping-pong: the client's receive callback checks the pong, records the round trip, posts its
 * next receive and then sends the next ping; the server's receive callback echoes the message
 * from the buffer it arrived in, and the echo's send callback posts the server's next receive
 * (the buffer is free again then). Every receive asks for exactly the bytes of the message still
 * missing, as a framed protocol does; a message may arrive in several pieces.
 *
 * A ping's buffer must stay untouched until its send completes, and a send that completes inline
 * calls back only after its sendmsg returned, by which time the thread may have been preempted
 * for several round trips. So the client cycles through TX_RING ping buffers, and when the next
 * one is still in use, sending the ping is handed to that buffer's send completion.
 * ------------------------------------------------------------------------------------------- */

#define TX_RING 4u

enum
{
    TX_FREE,
    TX_BUSY,       /* a send from the buffer has not completed */
    TX_BUSY_WANTED /* ... and the next use of the buffer waits for its completion */
};

struct CONN_TAG;

typedef struct TX_BUFFER_TAG
{
    uint8_t* data;
    atomic_int state;
    struct CONN_TAG* conn;
    void (*resume)(struct CONN_TAG* conn); /* runs the action that waited for the buffer */
} TX_BUFFER;

typedef struct CONN_TAG
{
    ASYNC_SOCKET_HANDLE client;
    ASYNC_SOCKET_HANDLE server;
    uint8_t* client_buffer;            /* the client's receive buffer */
    TX_BUFFER pings[TX_RING];          /* the client's messages */
    uint8_t* server_buffer;            /* the server receives into it and echoes from it */
    uint32_t client_have;
    uint32_t server_have;
    ASYNC_SOCKET_BUFFER client_receive;
    ASYNC_SOCKET_BUFFER server_receive;
    uint64_t seq;
    uint64_t sent_ns;
    uint64_t round_trips;
    uint64_t measured;
    uint64_t target;
    BENCH_SAMPLES* samples;
} CONN;

static bool fixed_count;
static atomic_uint active_conns;
static atomic_uint_fast64_t buffer_waits;

static void on_client_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received);
static void on_server_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received);

static void on_message_sent(void* context, ASYNC_SOCKET_SEND_RESULT send_result)
{
    TX_BUFFER* tx = context;
    if (send_result != ASYNC_SOCKET_SEND_OK && !atomic_load_explicit(&tearing_down, memory_order_relaxed))
    {
        fail("a send failed");
    }
    if (atomic_exchange(&tx->state, TX_FREE) == TX_BUSY_WANTED && !atomic_load(&tearing_down))
    {
        tx->resume(tx->conn);
    }
}

/* True when tx is free now; otherwise its completion will call tx->resume. */
static bool free_or_wait(TX_BUFFER* tx)
{
    int expected = TX_BUSY;
    if (atomic_load(&tx->state) == TX_FREE)
    {
        return true;
    }
    if (atomic_compare_exchange_strong(&tx->state, &expected, TX_BUSY_WANTED))
    {
        (void)atomic_fetch_add_explicit(&buffer_waits, 1, memory_order_relaxed);
        return false;
    }
    return true; /* completed meanwhile */
}

static void send_message(ASYNC_SOCKET_HANDLE socket, TX_BUFFER* tx)
{
    ASYNC_SOCKET_BUFFER buffer = { .buffer = tx->data, .length = config.message_size };
    atomic_store(&tx->state, TX_BUSY);
    if (async_socket_send_async(socket, &buffer, 1, on_message_sent, tx) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        fail("async_socket_send_async failed");
    }
}

static void post_client_receive(CONN* conn)
{
    conn->client_receive.buffer = conn->client_buffer + conn->client_have;
    conn->client_receive.length = config.message_size - conn->client_have;
    if (async_socket_receive_async(conn->client, &conn->client_receive, 1, on_client_received, conn) != 0)
    {
        fail("async_socket_receive_async failed");
    }
}

static void post_server_receive(CONN* conn)
{
    conn->server_receive.buffer = conn->server_buffer + conn->server_have;
    conn->server_receive.length = config.message_size - conn->server_have;
    if (async_socket_receive_async(conn->server, &conn->server_receive, 1, on_server_received, conn) != 0)
    {
        fail("async_socket_receive_async failed");
    }
}

/* Sends ping conn->seq (its buffer is free). */
static void send_ping(CONN* conn)
{
    TX_BUFFER* ping = &conn->pings[conn->seq % TX_RING];
    bench_message_stamp(ping->data, conn->seq);
    send_message(conn->client, ping);
}

static void finish_conn(void)
{
    if (atomic_fetch_sub(&active_conns, 1) == 1)
    {
        signal_done();
    }
}

static void on_client_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received)
{
    CONN* conn = context;
    uint64_t now;
    int current_phase;

    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes_received == 0)
    {
        if (atomic_load(&tearing_down))
        {
            return;
        }
        fail("client receive failed");
    }
    conn->client_have += bytes_received;
    if (conn->client_have < config.message_size)
    {
        post_client_receive(conn);
        return;
    }
    if (conn->client_have > config.message_size || !bench_message_check(conn->client_buffer, config.message_size, conn->seq))
    {
        fail("ping-pong message corrupted");
    }
    conn->client_have = 0;
    now = bench_now_ns();
    conn->round_trips++;
    current_phase = atomic_load_explicit(&phase, memory_order_relaxed);
    if (current_phase == BENCH_PHASE_MEASURE)
    {
        conn->measured++;
        bench_samples_add(conn->samples, now - conn->sent_ns);
    }
    if (fixed_count ? (conn->round_trips >= conn->target) : (current_phase == BENCH_PHASE_STOP))
    {
        finish_conn();
        return;
    }
    conn->seq++;
    conn->sent_ns = now;
    post_client_receive(conn);
    if (free_or_wait(&conn->pings[conn->seq % TX_RING]))
    {
        send_ping(conn);
    }
}

/* The echo went out: its buffer is free for the next message. */
static void on_echo_sent(void* context, ASYNC_SOCKET_SEND_RESULT send_result)
{
    CONN* conn = context;
    if (atomic_load_explicit(&tearing_down, memory_order_relaxed))
    {
        return;
    }
    if (send_result != ASYNC_SOCKET_SEND_OK)
    {
        fail("an echo send failed");
    }
    post_server_receive(conn);
}

static void on_server_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received)
{
    CONN* conn = context;

    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes_received == 0)
    {
        if (atomic_load(&tearing_down))
        {
            return;
        }
        fail("server receive failed");
    }
    conn->server_have += bytes_received;
    if (conn->server_have < config.message_size)
    {
        post_server_receive(conn);
        return;
    }
    conn->server_have = 0;
    ASYNC_SOCKET_BUFFER buffer = { .buffer = conn->server_buffer, .length = config.message_size };
    if (async_socket_send_async(conn->server, &buffer, 1, on_echo_sent, conn) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        fail("async_socket_send_async failed");
    }
}

static void run_ping_pong(void)
{
    uint32_t count = config.connections;
    CONN* conns = calloc(count, sizeof(CONN));
    BENCH_SAMPLES* samples = bench_samples_create(count);
    int listen_fd = bench_listen();
    BENCH_RESULT result;
    uint32_t started = 0;

    memset(&result, 0, sizeof(result));
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
        conn->client = wrap(client_fd);
        conn->server = wrap(server_fd);
        conn->client_buffer = malloc(config.message_size);
        conn->server_buffer = malloc(config.message_size);
        for (uint32_t k = 0; k < TX_RING; k++)
        {
            conn->pings[k].data = malloc(config.message_size);
            if (conn->pings[k].data == NULL)
            {
                fail("out of memory");
            }
            bench_message_fill(conn->pings[k].data, config.message_size, 0);
            atomic_init(&conn->pings[k].state, TX_FREE);
            conn->pings[k].conn = conn;
            conn->pings[k].resume = send_ping;
        }
        if (conn->client_buffer == NULL || conn->server_buffer == NULL)
        {
            fail("out of memory");
        }
        conn->samples = &samples[i];
        conn->target = fixed_count ? ((uint64_t)config.roundtrips + count - 1) / count : 0;
        if (!fixed_count || conn->target > 0)
        {
            started++;
        }
    }

    atomic_store(&phase, fixed_count ? BENCH_PHASE_MEASURE : BENCH_PHASE_WARMUP);
    atomic_store(&active_conns, started);
    if (fixed_count)
    {
        bench_snapshot(&result.start);
    }
    for (uint32_t i = 0; i < count; i++)
    {
        CONN* conn = &conns[i];
        if (fixed_count && conn->target == 0)
        {
            continue;
        }
        post_server_receive(conn);
        post_client_receive(conn);
        conn->sent_ns = bench_now_ns();
        send_message(conn->client, &conn->pings[0]);
    }

    if (!fixed_count)
    {
        bench_sleep_ns(config.warmup_ns);
        bench_snapshot(&result.start);
        atomic_store(&phase, BENCH_PHASE_MEASURE);
        bench_sleep_ns(config.duration_ns);
        atomic_store(&phase, BENCH_PHASE_STOP);
        bench_snapshot(&result.end);
    }
    if (started > 0)
    {
        wait_done("ping-pong did not finish");
    }
    if (fixed_count)
    {
        bench_snapshot(&result.end);
    }

    atomic_store(&tearing_down, true);
    for (uint32_t i = 0; i < count; i++)
    {
        async_socket_destroy(conns[i].client);
        async_socket_destroy(conns[i].server);
        result.operations += conns[i].measured;
    }

    result.ok = true;
    result.bytes = result.operations * 2u * config.message_size;
    result.samples = samples;
    result.sample_sets = count;
    {
        char extra[96];
        char more[64];
        (void)snprintf(more, sizeof(more), " buffer_waits=%llu", (unsigned long long)atomic_load(&buffer_waits));
        report_workers(extra, sizeof(extra), more);
        bench_report(IMPL, &config, &result, extra);
    }

    for (uint32_t i = 0; i < count; i++)
    {
        free(conns[i].client_buffer);
        free(conns[i].server_buffer);
        for (uint32_t k = 0; k < TX_RING; k++)
        {
            free(conns[i].pings[k].data);
        }
    }
    free(conns);
    bench_samples_destroy(samples, count);
    (void)close(listen_fd);
}

/* ---------------------------------------------------------------------------------------------
 * Streaming: the sender keeps 4 sends of 64 KiB outstanding (each completion queues the next);
 * the receiver keeps 4 receives of 64 KiB posted and checks every byte (the library fills the
 * posted receives with one recvmsg: up to 256 KiB per call, where the epoll loop and libuv read
 * 64 KiB per call). Sends are issued by one thread at a time (the "pump"); a send that completes
 * inline only returns its credit, and the pump running on that thread issues the next, so
 * completions never recurse.
 * ------------------------------------------------------------------------------------------- */

typedef struct STREAM_TAG STREAM;

typedef struct RECEIVE_SLOT_TAG
{
    STREAM* stream;
    uint8_t* buffer;
    ASYNC_SOCKET_BUFFER descriptor;
} RECEIVE_SLOT;

struct STREAM_TAG
{
    ASYNC_SOCKET_HANDLE sender;
    ASYNC_SOCKET_HANDLE receiver;
    /* sender */
    atomic_uint credits;
    atomic_uint outstanding;
    atomic_bool pumping;
    uint64_t next_offset; /* owned by the pump */
    atomic_uint_fast64_t measured_chunks;
    /* receiver: its receives complete one at a time */
    RECEIVE_SLOT slots[BENCH_STREAM_RECEIVES];
    atomic_uint_fast64_t received;
    uint64_t measured_bytes;
    uint64_t mismatches;
};

static _Thread_local bool inside_send;

static void pump(STREAM* stream);

static void on_stream_sent(void* context, ASYNC_SOCKET_SEND_RESULT send_result)
{
    STREAM* stream = context;
    if (send_result != ASYNC_SOCKET_SEND_OK)
    {
        fail("a stream send failed");
    }
    if (atomic_load_explicit(&phase, memory_order_relaxed) == BENCH_PHASE_MEASURE)
    {
        (void)atomic_fetch_add_explicit(&stream->measured_chunks, 1, memory_order_relaxed);
    }
    (void)atomic_fetch_add(&stream->credits, 1);
    (void)atomic_fetch_sub(&stream->outstanding, 1);
    if (!inside_send)
    {
        pump(stream);
    }
}

static void pump(STREAM* stream)
{
    for (;;)
    {
        if (atomic_exchange(&stream->pumping, true))
        {
            return; /* another thread pumps; it re-checks the credits before it leaves */
        }
        while (atomic_load(&stream->credits) > 0 && atomic_load(&phase) != BENCH_PHASE_STOP)
        {
            ASYNC_SOCKET_BUFFER buffer = { .buffer = (void*)bench_pattern_at(stream->next_offset), .length = BENCH_STREAM_CHUNK };
            ASYNC_SOCKET_SEND_SYNC_RESULT sync_result;
            (void)atomic_fetch_sub(&stream->credits, 1);
            (void)atomic_fetch_add(&stream->outstanding, 1);
            stream->next_offset += BENCH_STREAM_CHUNK;
            inside_send = true;
            sync_result = async_socket_send_async(stream->sender, &buffer, 1, on_stream_sent, stream);
            inside_send = false;
            if (sync_result != ASYNC_SOCKET_SEND_SYNC_OK)
            {
                fail("async_socket_send_async failed");
            }
        }
        atomic_store(&stream->pumping, false);
        if (atomic_load(&stream->credits) == 0 || atomic_load(&phase) == BENCH_PHASE_STOP)
        {
            return;
        }
    }
}

static void on_stream_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received);

static void post_stream_receive(RECEIVE_SLOT* slot)
{
    slot->descriptor.buffer = slot->buffer;
    slot->descriptor.length = BENCH_RECV_BUFFER_SIZE;
    if (async_socket_receive_async(slot->stream->receiver, &slot->descriptor, 1, on_stream_received, slot) != 0 &&
        !atomic_load(&tearing_down))
    {
        fail("async_socket_receive_async failed");
    }
}

static void on_stream_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received)
{
    RECEIVE_SLOT* slot = context;
    STREAM* stream = slot->stream;
    uint64_t received;

    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes_received == 0)
    {
        if (atomic_load(&tearing_down))
        {
            return;
        }
        fail("stream receive failed");
    }
    received = atomic_load_explicit(&stream->received, memory_order_relaxed);
    stream->mismatches += bench_pattern_mismatches(slot->buffer, bytes_received, received);
    if (atomic_load_explicit(&phase, memory_order_relaxed) == BENCH_PHASE_MEASURE)
    {
        stream->measured_bytes += bytes_received;
    }
    atomic_store_explicit(&stream->received, received + bytes_received, memory_order_release);
    post_stream_receive(slot);
}

static bool wait_until(bool (*condition)(STREAM*), STREAM* stream)
{
    uint64_t deadline = bench_now_ns() + WAIT_LIMIT_NS;
    while (!condition(stream))
    {
        if (bench_now_ns() > deadline)
        {
            return false;
        }
        bench_sleep_ns(1000000);
    }
    return true;
}

static bool sends_finished(STREAM* stream)
{
    return atomic_load(&stream->outstanding) == 0 && !atomic_load(&stream->pumping);
}

static bool all_received(STREAM* stream)
{
    return atomic_load_explicit(&stream->received, memory_order_acquire) >= stream->next_offset;
}

static void run_stream(void)
{
    STREAM* stream = calloc(1, sizeof(STREAM));
    int listen_fd = bench_listen();
    BENCH_RESULT result;
    int sender_fd = -1;
    int receiver_fd = -1;
    uint64_t received;

    memset(&result, 0, sizeof(result));
    if (stream == NULL || listen_fd < 0 || bench_connect_pair(listen_fd, &sender_fd, &receiver_fd) != 0)
    {
        fail("setup failed");
    }
    stream->sender = wrap(sender_fd);
    stream->receiver = wrap(receiver_fd);
    for (uint32_t i = 0; i < BENCH_STREAM_RECEIVES; i++)
    {
        stream->slots[i].stream = stream;
        stream->slots[i].buffer = malloc(BENCH_RECV_BUFFER_SIZE);
        if (stream->slots[i].buffer == NULL)
        {
            fail("out of memory");
        }
    }
    atomic_store(&phase, BENCH_PHASE_WARMUP);
    for (uint32_t i = 0; i < BENCH_STREAM_RECEIVES; i++)
    {
        post_stream_receive(&stream->slots[i]);
    }
    atomic_store(&stream->credits, BENCH_STREAM_OUTSTANDING);
    pump(stream);

    bench_sleep_ns(config.warmup_ns);
    bench_snapshot(&result.start);
    atomic_store(&phase, BENCH_PHASE_MEASURE);
    bench_sleep_ns(config.duration_ns);
    atomic_store(&phase, BENCH_PHASE_STOP);
    bench_snapshot(&result.end);

    if (!wait_until(sends_finished, stream) || !wait_until(all_received, stream))
    {
        fail("stream did not drain");
    }
    received = atomic_load(&stream->received);

    atomic_store(&tearing_down, true);
    async_socket_destroy(stream->sender);
    async_socket_destroy(stream->receiver);

    result.operations = atomic_load(&stream->measured_chunks);
    result.bytes = stream->measured_bytes;
    result.mismatches = stream->mismatches;
    result.ok = stream->mismatches == 0 && received == stream->next_offset;
    if (!result.ok)
    {
        result.error = "stream data not intact";
    }
    {
        char extra[128];
        char more[64];
        (void)snprintf(more, sizeof(more), " stream_total=%llu", (unsigned long long)received);
        report_workers(extra, sizeof(extra), more);
        bench_report(IMPL, &config, &result, extra);
    }
    for (uint32_t i = 0; i < BENCH_STREAM_RECEIVES; i++)
    {
        free(stream->slots[i].buffer);
    }
    free(stream);
    (void)close(listen_fd);
}

/* ---------------------------------------------------------------------------------------------
 * Idle: every socket has one small receive pending; then one byte each way on every pair.
 * ------------------------------------------------------------------------------------------- */

typedef struct IDLE_SOCKET_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    ASYNC_SOCKET_BUFFER receive;
    int fd;
    uint8_t out;
    uint8_t in[BENCH_IDLE_READ_SIZE];
} IDLE_SOCKET;

static atomic_uint woken;
static atomic_uint wake_target;

static void on_idle_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received);

static void post_idle_receive(IDLE_SOCKET* idle)
{
    idle->receive.buffer = idle->in;
    idle->receive.length = BENCH_IDLE_READ_SIZE;
    if (async_socket_receive_async(idle->socket, &idle->receive, 1, on_idle_received, idle) != 0)
    {
        fail("async_socket_receive_async failed");
    }
}

static void on_idle_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received)
{
    IDLE_SOCKET* idle = context;
    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes_received != 1 || idle->in[0] != idle->out)
    {
        if (atomic_load(&tearing_down))
        {
            return;
        }
        fail("idle receive failed");
    }
    post_idle_receive(idle);
    if (atomic_fetch_add(&woken, 1) + 1 == atomic_load(&wake_target))
    {
        signal_done();
    }
}

static void run_idle(void)
{
    uint32_t pairs = bench_idle_pairs_allowed(config.idle_pairs);
    uint32_t sockets = pairs * 2;
    IDLE_SOCKET* idle = calloc(sockets, sizeof(IDLE_SOCKET));
    double* wake_ms = calloc(config.idle_wakes, sizeof(double));
    int listen_fd = bench_listen();
    BENCH_RESULT result;
    uint64_t rss_plain;
    uint64_t rss_armed;
    uint64_t allocs_plain;
    uint64_t bytes_plain;
    uint64_t steady_allocs = 0;

    memset(&result, 0, sizeof(result));
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
    for (uint32_t i = 0; i < sockets; i++)
    {
        idle[i].socket = wrap(idle[i].fd);
        post_idle_receive(&idle[i]);
    }
    rss_armed = bench_rss_bytes();
    result.idle_allocs_per_socket = (double)(bench_alloc_count() - allocs_plain) / (double)sockets;
    result.idle_heap_bytes_per_socket = (double)(bench_alloc_bytes() - bytes_plain) / (double)sockets;

    atomic_store(&phase, BENCH_PHASE_MEASURE);
    for (uint32_t round = 0; round < config.idle_wakes; round++)
    {
        uint64_t allocs_before = bench_alloc_count();
        uint64_t start = bench_now_ns();
        atomic_store(&wake_target, sockets * (round + 1));
        for (uint32_t i = 0; i < sockets; i++)
        {
            /* the peer of 2k is 2k+1: each sends the byte its peer expects */
            send_or_fail(idle[i].socket, &idle[i ^ 1u].out, 1);
        }
        wait_done("idle wake did not finish");
        wake_ms[round] = (double)(bench_now_ns() - start) / 1e6;
        if (round > 0)
        {
            steady_allocs += bench_alloc_count() - allocs_before;
        }
    }

    atomic_store(&tearing_down, true);
    for (uint32_t i = 0; i < sockets; i++)
    {
        async_socket_destroy(idle[i].socket);
    }

    result.ok = true;
    result.idle_sockets = sockets;
    result.idle_bytes_per_socket = ((double)rss_armed - (double)rss_plain) / (double)sockets;
    result.wake_ms = bench_median(wake_ms, config.idle_wakes);
    result.wake_allocs_per_socket = (config.idle_wakes > 1) ? (double)steady_allocs / ((double)sockets * (config.idle_wakes - 1)) : 0.0;
    {
        char extra[64];
        char more[32];
        (void)snprintf(more, sizeof(more), " pairs=%u", pairs);
        report_workers(extra, sizeof(extra), more);
        bench_report(IMPL, &config, &result, extra);
    }
    free(idle);
    free(wake_ms);
    (void)close(listen_fd);
}

int main(int argc, char** argv)
{
    bench_parse_args(argc, argv, &config);
    bench_pattern_init();
    if (platform_init() != 0)
    {
        fail("platform_init failed");
    }
    engine = execution_engine_create(NULL);
    if (engine == NULL)
    {
        fail("execution_engine_create failed");
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
    execution_engine_dec_ref(engine);
    platform_deinit();
    return 0;
}
