/* Stress: sockets closed (or destroyed) from inside their own callbacks while a peer pump keeps
 * every connection busy in both directions and four workers run callbacks at once.
 *
 * Per round a batch of connections each keep a receive, a notify and a send posted; depending on
 * its mode a connection closes itself from its receive, send or notify callback, destroys itself
 * from a receive callback, is closed by the test thread while its callbacks run, or closes a
 * partner connection and then itself from a receive callback (pairs of partners closing each
 * other at the same time on two workers, the circle case of close). Afterwards
 * every accepted operation has been called back exactly once and no callback of a socket came
 * after the close (or destroy) of that socket returned. */
#include "stress_util.h"
#include "c_pal/logger.h"
#include "c_pal/platform_linux.h"
#include "test_main.h"

#define CB_FULL_CONNECTIONS 10000u
#define CB_BATCH 1000u
#define CB_WORKERS 4u
#define CB_BIG_SEND (256u * 1024u)
#define CB_SMALL_SEND 4096u

typedef enum CB_MODE_TAG
{
    CB_CLOSE_IN_RECEIVE,
    CB_CLOSE_IN_SEND,
    CB_CLOSE_IN_NOTIFY,
    CB_DESTROY_IN_RECEIVE,
    CB_CLOSE_FROM_TEST_THREAD,
    CB_CLOSE_PARTNER_IN_RECEIVE, /* closes its partner's socket, then its own: pairs close each other */
    CB_MODE_COUNT
} CB_MODE;

typedef struct CB_RUN_TAG CB_RUN;

typedef struct CB_CONN_TAG CB_CONN;

struct CB_CONN_TAG
{
    CB_RUN* run;
    CB_CONN* partner;       /* CB_CLOSE_PARTNER_IN_RECEIVE: the connection it closes first */
    ASYNC_SOCKET_HANDLE socket;
    int peer_fd;
    CB_MODE mode;
    uint32_t close_at;      /* callbacks of the mode's kind before the close */
    atomic_uint posted;     /* accepted operations */
    atomic_uint called;     /* callbacks */
    atomic_uint late;       /* callbacks after the close returned */
    atomic_uint events;     /* callbacks of the mode's kind */
    atomic_int closing;     /* someone started the close */
    atomic_int closed;      /* the close (or destroy) returned */
    atomic_int at_rendezvous; /* CB_CLOSE_PARTNER_IN_RECEIVE: in the callback that closes the pair */
    uint8_t rx[2048];
};

struct CB_RUN_TAG
{
    const uint8_t* payload;
    atomic_uint closed_count;
    atomic_uint closes_in_callbacks;
    atomic_uint destroys_in_callbacks;
    atomic_uint bad_results;
};

static void cb_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);
static void cb_on_send(void* context, ASYNC_SOCKET_SEND_RESULT result);
static void cb_on_notify(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result);

static void cb_post_receive(CB_CONN* conn)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = conn->rx, .length = sizeof(conn->rx)};
    (void)atomic_fetch_add(&conn->posted, 1);
    if (async_socket_receive_async(conn->socket, &buffer, 1, cb_on_receive, conn) != 0)
    {
        (void)atomic_fetch_sub(&conn->posted, 1); /* refused: the socket is closing */
    }
}

static void cb_post_send(CB_CONN* conn, uint32_t length)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = (void*)conn->run->payload, .length = length};
    (void)atomic_fetch_add(&conn->posted, 1);
    if (async_socket_send_async(conn->socket, &buffer, 1, cb_on_send, conn) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        (void)atomic_fetch_sub(&conn->posted, 1);
    }
}

static void cb_post_notify(CB_CONN* conn, ASYNC_SOCKET_NOTIFY_IO_TYPE type)
{
    (void)atomic_fetch_add(&conn->posted, 1);
    if (async_socket_notify_io_async(conn->socket, type, cb_on_notify, conn) != 0)
    {
        (void)atomic_fetch_sub(&conn->posted, 1);
    }
}

/* Closes (or destroys) the connection's socket once; `inside` says whether from a callback. */
static void cb_close(CB_CONN* conn, bool destroy, bool inside)
{
    if (atomic_exchange(&conn->closing, 1) != 0)
    {
        return;
    }
    if (destroy)
    {
        async_socket_destroy(conn->socket);
        (void)atomic_fetch_add(&conn->run->destroys_in_callbacks, 1);
    }
    else
    {
        async_socket_close(conn->socket);
        (void)atomic_fetch_add(&conn->run->closes_in_callbacks, inside ? 1u : 0u);
    }
    atomic_store(&conn->closed, 1);
    (void)atomic_fetch_add(&conn->run->closed_count, 1);
}

static void cb_enter(CB_CONN* conn)
{
    if (atomic_load(&conn->closed) != 0)
    {
        (void)atomic_fetch_add(&conn->late, 1);
    }
    (void)atomic_fetch_add(&conn->called, 1);
}

static bool cb_mode_fires(CB_CONN* conn, CB_MODE mode)
{
    return conn->mode == mode && atomic_fetch_add(&conn->events, 1) + 1 >= conn->close_at;
}

static void cb_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    CB_CONN* conn = context;
    (void)bytes;
    cb_enter(conn);
    if (result != ASYNC_SOCKET_RECEIVE_OK)
    {
        (void)atomic_fetch_add(&conn->run->bad_results, (result == ASYNC_SOCKET_RECEIVE_ABANDONED) ? 0u : 1u);
        return;
    }
    if (cb_mode_fires(conn, CB_CLOSE_IN_RECEIVE))
    {
        cb_close(conn, false, true);
    }
    else if (cb_mode_fires(conn, CB_DESTROY_IN_RECEIVE))
    {
        cb_close(conn, true, true);
    }
    else if (cb_mode_fires(conn, CB_CLOSE_PARTNER_IN_RECEIVE))
    {
        /* Both partners meet here (bounded wait) and close each other at once: the circle of
         * 99_009, where one of the two closes must return without waiting. */
        atomic_store(&conn->at_rendezvous, 1);
        for (int spin = 0; conn->partner != NULL && spin < 300 && atomic_load(&conn->partner->at_rendezvous) == 0; spin++)
        {
            (void)usleep(1);
        }
        if (conn->partner != NULL)
        {
            cb_close(conn->partner, false, true);
        }
        cb_close(conn, false, true);
    }
    else if (atomic_load(&conn->closing) == 0)
    {
        cb_post_receive(conn);
    }
}

static void cb_on_send(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    CB_CONN* conn = context;
    cb_enter(conn);
    if (result != ASYNC_SOCKET_SEND_OK)
    {
        (void)atomic_fetch_add(&conn->run->bad_results, (result == ASYNC_SOCKET_SEND_ABANDONED) ? 0u : 1u);
        return;
    }
    if (cb_mode_fires(conn, CB_CLOSE_IN_SEND))
    {
        cb_close(conn, false, true);
    }
    else if (conn->mode == CB_CLOSE_IN_SEND && atomic_load(&conn->closing) == 0)
    {
        cb_post_send(conn, CB_SMALL_SEND);
    }
}

static void cb_on_notify(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    CB_CONN* conn = context;
    cb_enter(conn);
    if (result == ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR)
    {
        (void)atomic_fetch_add(&conn->run->bad_results, 1);
        return;
    }
    if (result != ASYNC_SOCKET_NOTIFY_IO_RESULT_IN || conn->mode != CB_CLOSE_IN_NOTIFY)
    {
        return;
    }
    if (cb_mode_fires(conn, CB_CLOSE_IN_NOTIFY))
    {
        cb_close(conn, false, true);
    }
    else if (atomic_load(&conn->closing) == 0)
    {
        cb_post_notify(conn, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN);
    }
}

/* The peer side of every connection of the batch: writes and drains without blocking, round
 * robin, until told to stop. */
typedef struct CB_PUMP_TAG
{
    CB_CONN* conns;
    uint32_t count;
    atomic_int stop;
    uint64_t bytes_in;
    uint64_t bytes_out;
    pthread_t thread;
} CB_PUMP;

static void* cb_pump_run(void* arg)
{
    CB_PUMP* pump = arg;
    uint8_t chunk[1024];
    memset(chunk, 0x5a, sizeof(chunk));
    while (atomic_load(&pump->stop) == 0)
    {
        for (uint32_t i = 0; i < pump->count; i++)
        {
            int fd = pump->conns[i].peer_fd;
            ssize_t sent = send(fd, chunk, 512, MSG_DONTWAIT | MSG_NOSIGNAL);
            pump->bytes_out += (sent > 0) ? (uint64_t)sent : 0u;
            ssize_t got = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
            pump->bytes_in += (got > 0) ? (uint64_t)got : 0u;
        }
    }
    return NULL;
}

static void cb_start(CB_RUN* run, CB_CONN* conn, const STRESS_LISTENER* listener, uint32_t index)
{
    int fds[2] = {-1, -1};
    assert_int_equal(stress_connect(listener, fds, 4096), 0);
    stress_set_linger_zero(fds[1]);
    memset(conn, 0, sizeof(*conn));
    conn->run = run;
    conn->peer_fd = fds[1];
    conn->mode = (CB_MODE)(index % CB_MODE_COUNT);
    /* partners (CB_MODE_COUNT apart) get the same count, so that they often fire together */
    conn->close_at = 1u + (index / (2u * CB_MODE_COUNT)) % 7u;
    conn->socket = open_socket(fds[0]);
}

static void cb_post_initial(CB_CONN* conn)
{
    cb_post_receive(conn);
    cb_post_notify(conn, (conn->mode == CB_CLOSE_IN_NOTIFY) ? ASYNC_SOCKET_NOTIFY_IO_TYPE_IN : ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT);
    cb_post_send(conn, (conn->mode == CB_CLOSE_IN_SEND) ? CB_SMALL_SEND : CB_BIG_SEND);
}

/* Operations posted by a callback that races with the close of its socket are refused with one
 * log line each; they are expected here, so the lines are counted instead of printed. */
static atomic_uint log_lines;
static atomic_uint circles;

static void cb_count_log_line(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)context;
    (void)level;
    (void)file;
    (void)line;
    (void)function;
    if (strstr(message, "while another callback that closes a socket this thread is in") != NULL)
    {
        (void)atomic_fetch_add(&circles, 1); /* the one line a circle close logs */
        return;
    }
    (void)atomic_fetch_add(&log_lines, 1);
}

static void cb_check_conn(CB_CONN* conn, uint32_t index)
{
    if (atomic_load(&conn->called) != atomic_load(&conn->posted) || atomic_load(&conn->late) != 0)
    {
        fail_msg("connection %u (mode %d): %u operations accepted, %u callbacks, %u after the close returned",
                 index, (int)conn->mode, atomic_load(&conn->posted), atomic_load(&conn->called), atomic_load(&conn->late));
    }
}

static void one_batch(CB_RUN* run, CB_CONN* conns, uint32_t count, const STRESS_LISTENER* listener, uint64_t* pump_bytes)
{
    for (uint32_t i = 0; i < count; i++)
    {
        cb_start(run, &conns[i], listener, i);
    }
    /* Partners are CB_MODE_COUNT apart, so both have the same mode. */
    for (uint32_t i = 0; i < count; i++)
    {
        uint32_t partner = ((i / CB_MODE_COUNT) % 2u == 0u) ? i + CB_MODE_COUNT : i - CB_MODE_COUNT;
        bool paired = conns[i].mode == CB_CLOSE_PARTNER_IN_RECEIVE && partner < count;
        conns[i].partner = paired ? &conns[partner] : NULL;
    }
    atomic_store(&run->closed_count, 0);
    /* Posted before the peer sends anything: once data flows, a socket may destroy itself in a
     * callback and its handle must not be used by this thread any more. */
    for (uint32_t i = 0; i < count; i++)
    {
        cb_post_initial(&conns[i]);
    }
    CB_PUMP pump = {.conns = conns, .count = count};
    assert_int_equal(pthread_create(&pump.thread, NULL, cb_pump_run, &pump), 0);
    /* The test thread's own closes race with the callbacks of those sockets. */
    for (uint32_t i = 0; i < count; i++)
    {
        if (conns[i].mode == CB_CLOSE_FROM_TEST_THREAD)
        {
            cb_close(&conns[i], false, false);
        }
    }
    TEST_WAIT_UNTIL(atomic_load(&run->closed_count) == count, 60000);
    atomic_store(&pump.stop, 1);
    assert_int_equal(pthread_join(pump.thread, NULL), 0);
    *pump_bytes += pump.bytes_in + pump.bytes_out;
    test_sleep_ms(20); /* room for a late callback to show */
    for (uint32_t i = 0; i < count; i++)
    {
        cb_check_conn(&conns[i], i);
        if (conns[i].mode != CB_DESTROY_IN_RECEIVE)
        {
            async_socket_destroy(conns[i].socket);
        }
        assert_int_equal(close(conns[i].peer_fd), 0);
    }
}

static void close_and_destroy_from_callbacks_under_load(void** state)
{
    (void)state;
    uint32_t total = stress_scaled(CB_FULL_CONNECTIONS, 50);
    uint32_t batch = (total < CB_BATCH) ? total : CB_BATCH;
    uint8_t* payload = make_pattern(0, CB_BIG_SEND);
    CB_CONN* conns = calloc(batch, sizeof(CB_CONN));
    assert_non_null(conns);
    assert_int_equal(platform_linux_set_worker_count(CB_WORKERS), 0);
    async_socket_log_set_sink(cb_count_log_line, NULL);
    LEAK_MARK mark;
    env_begin(&mark);
    STRESS_LISTENER listener;
    stress_listener_open(&listener, 4096);
    CB_RUN run;
    memset(&run, 0, sizeof(run));
    run.payload = payload;
    uint64_t operations = 0;
    uint64_t pump_bytes = 0;
    uint64_t start = test_now_ms();
    uint32_t done = 0;
    while (done < total)
    {
        uint32_t count = (total - done < batch) ? total - done : batch;
        one_batch(&run, conns, count, &listener, &pump_bytes);
        for (uint32_t i = 0; i < count; i++)
        {
            operations += atomic_load(&conns[i].posted);
        }
        done += count;
    }
    double seconds = stress_seconds_since(start);
    stress_listener_close(&listener);
    env_end(&mark);
    async_socket_log_set_sink(NULL, NULL);
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    stress_report("close_from_callbacks connections=%u workers=%u operations=%llu closes_in_callbacks=%u "
                  "destroys_in_callbacks=%u peer_bytes=%llu refused_posts_logged=%u circle_closes=%u callbacks_exactly_once=yes "
                  "late_callbacks=0 bad_results=%u seconds=%.2f",
                  total, CB_WORKERS, (unsigned long long)operations, atomic_load(&run.closes_in_callbacks),
                  atomic_load(&run.destroys_in_callbacks), (unsigned long long)pump_bytes, atomic_load(&log_lines),
                  atomic_load(&circles), atomic_load(&run.bad_results), seconds);
    assert_int_equal(atomic_load(&run.bad_results), 0);
    free(conns);
    free(payload);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(close_and_destroy_from_callbacks_under_load),
};

TEST_MAIN(tests)
