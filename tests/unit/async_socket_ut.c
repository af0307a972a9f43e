/* Unit tests for async_socket's lifecycle (create, open, close, destroy), with the argument checks
 * of these four: the real library (linked with the fault-injecting sys seam) on
 * socketpair(AF_UNIX, SOCK_STREAM) and loopback TCP pairs. The tests check what a user sees:
 * return values, the callbacks (result, byte count, context, how many, on which thread), the
 * bytes on the other end, the ERROR log lines, and that no allocation, fd or thread is left
 * behind. The argument checks of send, receive and notify are in async_socket_args_ut.c, the
 * data path in async_socket_io_ut.c, the fault sweeps in async_socket_faults_ut.c. */
#include "async_socket_ut_util.h"

#include "test_main.h"

/* ---- create ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_103 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
static void async_socket_create_returns_a_socket_that_owns_the_fd(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    int64_t before = sys_fault_live_allocations();

    log_capture_start();
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_int_equal(log_capture_stop(), 0);
    assert_non_null(s);
    /* the socket is new memory, and create only wraps the fd */
    assert_true(sys_fault_live_allocations() > before);
    assert_true(fd_is_open(fds[0]));
    assert_true(nothing_to_read(fds[1]));

    /* never opened, so close has nothing to do: destroy releases the transport, which closes
     * the fd */
    async_socket_destroy(s);
    assert_false(fd_is_open(fds[0]));
    assert_true(peer_sees_eof(fds[1]));
    assert_int_equal(sys_fault_live_allocations(), before);
    (void)close(fds[1]);
    env_end(env);
}

/* Two sockets are two distinct handles, each with its own fd. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_001 */
static void async_socket_create_twice_gives_two_independent_sockets(void** state)
{
    (void)state;
    ENV env = env_begin();
    int a[2];
    int b[2];
    make_unix_pair(a, 0);
    make_unix_pair(b, 0);
    ASYNC_SOCKET_HANDLE sa = open_socket(a[0]);
    ASYNC_SOCKET_HANDLE sb = open_socket(b[0]);
    assert_ptr_not_equal(sa, sb);

    uint8_t data[64];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB cb;
    cb_init(&cb);
    assert_int_equal(send_marked(sb, &buffer, 1, on_send_cb, &cb), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(b[1], 0, sizeof(data));
    assert_true(nothing_to_read(a[1]));

    async_socket_destroy(sa);
    assert_true(peer_sees_eof(a[1]));
    assert_true(fd_is_open(b[0]));
    async_socket_destroy(sb);
    (void)close(a[1]);
    (void)close(b[1]);
    env_end(env);
}

/* async_socket_create moves the bytes with the system socket calls: what it sends arrives on the
 * peer, what the peer writes is received. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_007 */
static void async_socket_create_uses_the_system_socket_calls(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);

    uint8_t out[1000];
    test_fill_pattern(out, sizeof(out), 0);
    ASYNC_SOCKET_BUFFER out_buffer = {.buffer = out, .length = sizeof(out)};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, &out_buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 0, sizeof(out));
    TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);

    uint8_t in[1000];
    memset(in, 0, sizeof(in));
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received), 0);
    peer_write_pattern(fds[1], 5000, 300);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.bytes), 300);
    assert_int_equal(test_check_pattern(in, 300, 5000), 300);

    env_end_with_socket(s, fds[1], env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_002 */
static void async_socket_create_accepts_a_null_or_a_real_execution_engine(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);

    /* NULL: a working socket */
    log_capture_start();
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_int_equal(log_capture_stop(), 0);
    (void)open_socket_with(s);
    uint8_t data[16];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB cb;
    cb_init(&cb);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &cb), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    (void)close(fds[1]);

    /* a real engine: the socket keeps it alive after the caller let go of it, and lets go of it
     * at destroy (the engine's memory comes back) */
    int64_t before_engine = sys_fault_live_allocations();
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(NULL);
    assert_non_null(engine);
    make_unix_pair(fds, 0);
    log_capture_start();
    s = async_socket_create(engine, fds[0]);
    assert_int_equal(log_capture_stop(), 0);
    assert_non_null(s);
    int64_t with_socket = sys_fault_live_allocations();
    execution_engine_dec_ref(engine);
    /* the engine is still there: the socket holds a reference */
    assert_int_equal(sys_fault_live_allocations(), with_socket);
    (void)open_socket_with(s);
    cb_init(&cb);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &cb), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    assert_int_equal(sys_fault_live_allocations(), before_engine);
    (void)close(fds[1]);
    env_end(env);
}

static void check_create_with_transport_rejected(ON_ASYNC_SOCKET_SEND on_send, ON_ASYNC_SOCKET_RECV on_recv)
{
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    int64_t before = sys_fault_live_allocations();

    log_capture_start();
    ASYNC_SOCKET_HANDLE s = async_socket_create_with_transport(NULL, fds[0], on_send, &t, on_recv, &t);
    assert_int_equal(log_capture_stop(), 1);
    assert_null(s);
    assert_int_equal(sys_fault_live_allocations(), before);
    /* the fd stays with the caller, untouched */
    assert_true(fd_is_open(fds[0]));
    assert_true(nothing_to_read(fds[1]));
    assert_int_equal(atomic_load(&t.send_calls) + atomic_load(&t.recv_calls), 0);

    (void)close(fds[0]);
    (void)close(fds[1]);
    transport_deinit(&t);
    env_end(env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_002 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_006 */
static void async_socket_create_with_transport_with_null_on_send_fails(void** state)
{
    (void)state;
    check_create_with_transport_rejected(NULL, transport_on_recv);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_003 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_006 */
static void async_socket_create_with_transport_with_null_on_recv_fails(void** state)
{
    (void)state;
    check_create_with_transport_rejected(transport_on_send, NULL);
}

/* Without platform_init there is no completion port to take: create fails with one error line
 * and leaves the fd with the caller. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_005 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_create_without_platform_init_fails_with_one_error_line(void** state)
{
    (void)state;
    int64_t allocations = sys_fault_live_allocations();
    int open_fds = test_count_open_fds();
    int fds[2];
    make_unix_pair(fds, 0);

    log_capture_start();
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    int errors = log_capture_stop();
    assert_null(s);
    assert_true(fd_is_open(fds[0]));
    assert_true(nothing_to_read(fds[1]));
    assert_int_equal(sys_fault_live_allocations(), allocations);

    TRANSPORT t;
    transport_init(&t, fds[0]);
    log_capture_start();
    s = async_socket_create_with_transport(NULL, fds[0], transport_on_send, &t, transport_on_recv, &t);
    int errors_with_transport = log_capture_stop();
    assert_null(s);
    assert_true(fd_is_open(fds[0]));
    assert_int_equal(sys_fault_live_allocations(), allocations);
    transport_deinit(&t);

    (void)close(fds[0]);
    (void)close(fds[1]);
    assert_int_equal(test_count_open_fds(), open_fds);
    /* checked last, so that a failure here still leaves nothing open */
    ASSERT_ERROR_LINES(errors_with_transport, 1);
    ASSERT_ERROR_LINES(errors, 1);
}

/* The socket holds its own reference on the completion port: it keeps working after the last
 * platform_deinit, and its destroy lets the port (its threads and fds) go. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_005 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_022 */
static void async_socket_keeps_the_completion_port_until_destroy(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    int threads_with_port = test_count_threads();
    assert_true(threads_with_port > env.threads);

    platform_deinit();
    /* the port is still there: its workers deliver the receive */
    assert_int_equal(test_count_threads(), threads_with_port);
    uint8_t in[64];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received), 0);
    peer_write_pattern(fds[1], 0, 40);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(test_check_pattern(in, 40, 0), 40);

    /* the socket's reference was the last one */
    async_socket_destroy(s);
    (void)close(fds[1]);
    TEST_WAIT_UNTIL(test_count_threads() == env.threads, 1000);
    assert_int_equal(test_count_open_fds(), env.fds);
    assert_int_equal(sys_fault_live_allocations(), env.allocations);
    assert_int_equal(platform_init(), 0); /* for env_end's deinit */
    env_end(env);
}

/* ---- destroy ---- */

/* Destroying NULL does nothing: no error line (like free(NULL)), nothing allocated or freed. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_019 */
static void async_socket_destroy_with_null_returns(void** state)
{
    (void)state;
    ENV env = env_begin();
    int64_t before = sys_fault_live_allocations();
    log_capture_start();
    async_socket_destroy(NULL);
    assert_int_equal(log_capture_stop(), 0);
    assert_int_equal(sys_fault_live_allocations(), before);
    env_end(env);
}

/* Destroy of an open socket closes it first: pending operations are abandoned before destroy
 * returns, the peer sees the end of the stream, and everything is released. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_103 */
static void async_socket_destroy_of_an_open_socket_closes_it(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    uint8_t in[16];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    CB notified;
    cb_init(&received);
    cb_init(&notified);
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received), 0);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &notified), 0);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&received.calls) + atomic_load(&notified.calls), 0);

    log_capture_start();
    async_socket_destroy(s);
    assert_int_equal(log_capture_stop(), 0);
    assert_int_equal(atomic_load(&received.calls), 1);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&received.bytes), 0);
    assert_int_equal(atomic_load(&notified.calls), 1);
    assert_int_equal(atomic_load(&notified.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    assert_false(fd_is_open(fds[0]));
    assert_true(peer_sees_eof(fds[1]));
    (void)close(fds[1]);
    env_end(env);
}

typedef struct CLOSER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    atomic_int started;
    atomic_int returned;
} CLOSER;

static void* close_on_thread(void* arg)
{
    CLOSER* closer = arg;
    atomic_store(&closer->started, 1);
    async_socket_close(closer->socket);
    atomic_store(&closer->returned, 1);
    return NULL;
}

typedef struct GATED_RECEIVE_TAG
{
    GATE gate;
    CB cb;
    atomic_int finished; /* the callback has returned from the gate */
} GATED_RECEIVE;

static void on_receive_gated(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    GATED_RECEIVE* g = context;
    cb_note(&g->cb, (int)result, bytes);
    gate_wait(&g->gate);
    test_sleep_ms(50); /* still inside the callback a little after the gate opens */
    atomic_store(&g->finished, 1);
}

static void* open_gate_later(void* arg)
{
    test_sleep_ms(100);
    gate_open(arg);
    return NULL;
}

/* A receive callback blocks on a worker; another thread closes (and waits for the callback);
 * destroy, called meanwhile, waits for that close to finish before it goes on. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_020 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_037 */
static void async_socket_destroy_waits_for_a_close_running_on_another_thread(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    GATED_RECEIVE g;
    gate_init(&g.gate);
    cb_init(&g.cb);
    atomic_init(&g.finished, 0);
    uint8_t in[16];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_gated, &g), 0);
    peer_write_pattern(fds[1], 0, 8);
    TEST_WAIT_UNTIL(atomic_load(&g.gate.entered) == 1, 2000);

    CLOSER closer = {.socket = s};
    atomic_init(&closer.started, 0);
    atomic_init(&closer.returned, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, close_on_thread, &closer), 0);
    TEST_WAIT_UNTIL(atomic_load(&closer.started) == 1, 2000);
    test_sleep_ms(50);
    /* close waits for the callback that is still running */
    assert_int_equal(atomic_load(&closer.returned), 0);

    /* open the gate a little after destroy has started waiting */
    pthread_t opener;
    assert_int_equal(pthread_create(&opener, NULL, open_gate_later, &g.gate), 0);
    async_socket_destroy(s);
    /* destroy waited for the close, which waited for the callback (the closing thread may still
     * be on its way out of async_socket_close, holding its own reference) */
    assert_int_equal(atomic_load(&g.finished), 1);
    assert_int_equal(atomic_load(&g.cb.calls), 1);
    assert_int_equal(atomic_load(&g.cb.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(pthread_join(opener, NULL), 0);
    assert_true(peer_sees_eof(fds[1]));
    gate_deinit(&g.gate);
    (void)close(fds[1]);
    env_end(env);
}



/* A log sink that holds the threads which ask for it inside the library, at their first ERROR
 * line, until the gate opens. */
static _Thread_local int hold_my_error_lines;
static GATE log_gate;

static void holding_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    log_capture_sink(context, level, file, line, function, message);
    if (hold_my_error_lines && level == ASYNC_SOCKET_LOG_LEVEL_ERROR)
    {
        hold_my_error_lines = 0;
        gate_wait(&log_gate);
    }
}

typedef struct OPENER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    CB cb;
    atomic_int result;
    atomic_int returned;
} OPENER;

/* An open whose fcntl fails: the failure is logged while the socket is still OPENING, and the
 * sink holds the thread there. */
static void* failing_open_on_thread(void* arg)
{
    OPENER* opener = arg;
    hold_my_error_lines = 1;
    sys_fault_arm(SYS_FAULT_FCNTL, 1, EIO);
    atomic_store(&opener->result, async_socket_open_async(opener->socket, on_open_cb, &opener->cb));
    sys_fault_disarm();
    atomic_store(&opener->returned, 1);
    return NULL;
}

static void* destroy_on_thread(void* arg)
{
    CLOSER* destroyer = arg;
    atomic_store(&destroyer->started, 1);
    async_socket_destroy(destroyer->socket);
    atomic_store(&destroyer->returned, 1);
    return NULL;
}

/* While another thread is inside open (OPENING: held in the log sink as its open fails), the
 * socket is not open (send: NOT_OPEN), a second open fails, and destroy waits until that open has
 * finished before it tears the socket down. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_020 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_027 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_029 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_034 */
static void async_socket_destroy_waits_for_an_open_running_on_another_thread(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    gate_init(&log_gate);
    log_capture_start();
    async_socket_log_set_sink(holding_sink, &log_capture);
    OPENER opener = {.socket = s};
    cb_init(&opener.cb);
    atomic_init(&opener.result, 0);
    atomic_init(&opener.returned, 0);
    pthread_t open_thread;
    assert_int_equal(pthread_create(&open_thread, NULL, failing_open_on_thread, &opener), 0);
    TEST_WAIT_UNTIL(atomic_load(&log_gate.entered) == 1, 2000);

    /* OPENING */
    uint8_t data[4] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    atomic_store(&unexpected_callbacks, 0);
    assert_int_equal(async_socket_send_async(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    assert_int_not_equal(async_socket_open_async(s, on_open_unexpected, NULL), 0);

    CLOSER destroyer = {.socket = s};
    atomic_init(&destroyer.started, 0);
    atomic_init(&destroyer.returned, 0);
    pthread_t destroy_thread;
    assert_int_equal(pthread_create(&destroy_thread, NULL, destroy_on_thread, &destroyer), 0);
    TEST_WAIT_UNTIL(atomic_load(&destroyer.started) == 1, 2000);
    test_sleep_ms(100);
    bool destroy_waited = (atomic_load(&destroyer.returned) == 0);
    gate_open(&log_gate);
    assert_int_equal(pthread_join(open_thread, NULL), 0);
    assert_int_equal(pthread_join(destroy_thread, NULL), 0);
    (void)log_capture_stop();
    assert_true(destroy_waited);
    assert_int_not_equal(atomic_load(&opener.result), 0);
    assert_int_equal(atomic_load(&opener.cb.calls), 0);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    assert_false(fd_is_open(fds[0]));
    assert_true(peer_sees_eof(fds[1]));
    gate_deinit(&log_gate);
    (void)close(fds[1]);
    env_end(env);
}

/* ---- open ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_024 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_open_async_with_null_socket_fails(void** state)
{
    (void)state;
    ENV env = env_begin();
    atomic_store(&unexpected_callbacks, 0);
    log_capture_start();
    int result = open_marked(NULL, on_open_unexpected, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    env_end(env);
}

/* The failed open leaves the socket as it was: a later open succeeds. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_025 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_open_async_with_null_callback_fails(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    int flags = fcntl(fds[0], F_GETFL);

    log_capture_start();
    int result = async_socket_open_async(s, NULL, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    /* nothing happened to the fd, and sends are refused */
    assert_int_equal(fcntl(fds[0], F_GETFL), flags);
    uint8_t data[4] = {1, 2, 3, 4};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    atomic_store(&unexpected_callbacks, 0);
    assert_int_equal(async_socket_send_async(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);

    (void)open_socket_with(s);
    env_end_with_socket(s, fds[1], env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_026 */
static void async_socket_open_async_with_null_context_succeeds(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    atomic_store(&null_context_calls, 0);
    atomic_store(&null_context_result, -1);
    log_capture_start();
    assert_int_equal(async_socket_open_async(s, on_open_expect_null_context, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(atomic_load(&null_context_calls), 1);
    assert_int_equal(atomic_load(&null_context_result), ASYNC_SOCKET_OPEN_OK);
    env_end_with_socket(s, fds[1], env);
}

/* create(INVALID_SOCKET) succeeds; its open fails with one error line and no callback. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_003 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_020 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_open_async_of_a_socket_without_fd_fails(void** state)
{
    (void)state;
    ENV env = env_begin();
    log_capture_start();
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, INVALID_SOCKET);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_non_null(s);
    atomic_store(&unexpected_callbacks, 0);
    log_capture_start();
    int result = open_marked(s, on_open_unexpected, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    /* still not open */
    uint8_t data[4] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    assert_int_equal(async_socket_send_async(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    log_capture_start();
    async_socket_destroy(s);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    env_end(env);
}

/* A successful open returns 0 after calling back OPEN_OK inline with the context; the socket is
 * then open (operations are accepted), registered with epoll (a receive completes when data
 * arrives, on a worker) and its fd is non-blocking and close-on-exec. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_028 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_031 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_032 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_033 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_016 */
static void async_socket_open_async_opens_and_calls_back_inline(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    assert_true(fcntl(fds[0], F_SETFD, 0) == 0);
    assert_int_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    CB opened;
    cb_init(&opened);
    log_capture_start();
    int result = open_marked(s, on_open_cb, &opened);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(result, 0);
    assert_int_equal(atomic_load(&opened.calls), 1);
    assert_int_equal(atomic_load(&opened.inline_calls), 1);
    assert_int_equal(atomic_load(&opened.result), ASYNC_SOCKET_OPEN_OK);
    assert_int_not_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);

    uint8_t in[32];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received), 0);
    peer_write_pattern(fds[1], 0, 32);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.test_thread_calls), 0);
    assert_int_equal(atomic_load(&opened.calls), 1);

    env_end_with_socket(s, fds[1], env);
}

/* A second open fails with one error line and no callback; the socket keeps working. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_029 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_open_async_of_an_open_socket_fails(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    CB second;
    cb_init(&second);
    log_capture_start();
    int result = open_marked(s, on_open_cb, &second);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_int_equal(atomic_load(&second.calls), 0);

    uint8_t data[100];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&second.calls), 0);
    (void)close(fds[1]);
    env_end(env);
}

#define RACE_SOCKETS 40
#define RACE_THREADS 4

typedef struct OPEN_RACE_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    atomic_int go;
    atomic_int ready;
    atomic_int successes;
    CB cb;
} OPEN_RACE;

static void* open_racer(void* arg)
{
    OPEN_RACE* race = arg;
    (void)atomic_fetch_add(&race->ready, 1);
    while (atomic_load(&race->go) == 0)
    {
    }
    if (async_socket_open_async(race->socket, on_open_cb, &race->cb) == 0)
    {
        (void)atomic_fetch_add(&race->successes, 1);
    }
    return NULL;
}

/* Opens racing on one socket: the first one moves the socket to OPENING, so exactly one open
 * succeeds and calls back once; the others fail (already OPEN or OPENING). */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_027 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_029 */
static void async_socket_open_async_racing_opens_exactly_one_wins(void** state)
{
    (void)state;
    ENV env = env_begin();
    log_capture_start();
    for (int i = 0; i < RACE_SOCKETS; i++)
    {
        int fds[2];
        make_unix_pair(fds, 0);
        OPEN_RACE race;
        race.socket = async_socket_create(NULL, fds[0]);
        assert_non_null(race.socket);
        atomic_init(&race.go, 0);
        atomic_init(&race.ready, 0);
        atomic_init(&race.successes, 0);
        cb_init(&race.cb);
        pthread_t threads[RACE_THREADS];
        for (int t = 0; t < RACE_THREADS; t++)
        {
            assert_int_equal(pthread_create(&threads[t], NULL, open_racer, &race), 0);
        }
        TEST_WAIT_UNTIL(atomic_load(&race.ready) == RACE_THREADS, 2000);
        atomic_store(&race.go, 1);
        for (int t = 0; t < RACE_THREADS; t++)
        {
            assert_int_equal(pthread_join(threads[t], NULL), 0);
        }
        assert_int_equal(atomic_load(&race.successes), 1);
        assert_int_equal(atomic_load(&race.cb.calls), 1);
        assert_int_equal(atomic_load(&race.cb.result), ASYNC_SOCKET_OPEN_OK);
        async_socket_destroy(race.socket);
        (void)close(fds[1]);
    }
    ASSERT_ERROR_LINES(log_capture_stop(), RACE_SOCKETS * (RACE_THREADS - 1));
    env_end(env);
}

/* ---- close ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_035 */
static void async_socket_close_with_null_returns(void** state)
{
    (void)state;
    ENV env = env_begin();
    int64_t before = sys_fault_live_allocations();
    log_capture_start();
    async_socket_close(NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(sys_fault_live_allocations(), before);
    env_end(env);
}

/* Close calls every pending send, receive and notify back with ABANDONED (a receive with 0 bytes)
 * exactly once, on the closing thread, before it returns; the records go back (nothing leaks). */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_080 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_008 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_084 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void async_socket_close_abandons_every_pending_operation(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 4096);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    CB sent;
    CB queued;
    CB received[3];
    CB notified_in;
    cb_init(&sent);
    cb_init(&queued);
    cb_init(&notified_in);
    /* a send that waits for room, and one queued behind it (6 buffers: a heap record) */
    uint8_t* big = send_until_queued(s, 0, 1024 * 1024, &sent);
    uint8_t small[6][10];
    ASYNC_SOCKET_BUFFER six[6];
    for (int i = 0; i < 6; i++)
    {
        six[i].buffer = small[i];
        six[i].length = sizeof(small[i]);
    }
    assert_int_equal(send_marked(s, six, 6, on_send_cb, &queued), ASYNC_SOCKET_SEND_SYNC_OK);
    uint8_t in[3][16];
    for (int i = 0; i < 3; i++)
    {
        cb_init(&received[i]);
        ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in[i], .length = sizeof(in[i])};
        assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received[i]), 0);
    }
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &notified_in), 0);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&sent.calls) + atomic_load(&queued.calls) + atomic_load(&notified_in.calls), 0);

    log_capture_start();
    async_socket_close(s);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    CB* all[] = {&sent, &queued, &received[0], &received[1], &received[2], &notified_in};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    {
        assert_int_equal(atomic_load(&all[i]->calls), 1);
        assert_int_equal(atomic_load(&all[i]->test_thread_calls), 1);
    }
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_ABANDONED);
    assert_int_equal(atomic_load(&queued.result), ASYNC_SOCKET_SEND_ABANDONED);
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(atomic_load(&received[i].result), ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_int_equal(atomic_load(&received[i].bytes), 0);
    }
    assert_int_equal(atomic_load(&notified_in.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);

    /* nothing more, ever */
    test_sleep_ms(30);
    async_socket_destroy(s);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    {
        assert_int_equal(atomic_load(&all[i]->calls), 1);
    }
    free(big);
    (void)close(fds[1]);
    env_end(env);
}

typedef struct INSIDE_CLOSE_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    atomic_int calls;
    atomic_int send_result;
    atomic_int receive_result;
    atomic_int notify_result;
    atomic_int open_result;
} INSIDE_CLOSE;

/* Runs from an ABANDONED callback, while close is still running: the socket is no longer OPEN. */
static void on_receive_try_everything(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)result; (void)bytes;
    INSIDE_CLOSE* inside = context;
    uint8_t data[8] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    atomic_store(&inside->send_result, (int)async_socket_send_async(inside->socket, &buffer, 1, on_send_unexpected, NULL));
    atomic_store(&inside->receive_result, async_socket_receive_async(inside->socket, &buffer, 1, on_receive_unexpected, NULL));
    atomic_store(&inside->notify_result, async_socket_notify_io_async(inside->socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_unexpected, NULL));
    atomic_store(&inside->open_result, async_socket_open_async(inside->socket, on_open_unexpected, NULL));
    (void)atomic_fetch_add(&inside->calls, 1);
}

/* While close runs (it is CLOSING), new operations are refused: from inside the ABANDONED
 * callback a send gets NOT_OPEN, receive, notify and open fail, and none of them calls back. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_036 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_051 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_072 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_015 */
static void async_socket_close_refuses_new_operations_while_closing(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    INSIDE_CLOSE inside = {.socket = s};
    atomic_init(&inside.calls, 0);
    atomic_init(&inside.send_result, -1);
    atomic_init(&inside.receive_result, 0);
    atomic_init(&inside.notify_result, 0);
    atomic_init(&inside.open_result, 0);
    atomic_store(&unexpected_callbacks, 0);
    uint8_t in[8];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    assert_int_equal(async_socket_receive_async(s, &in_buffer, 1, on_receive_try_everything, &inside), 0);

    async_socket_close(s);
    assert_int_equal(atomic_load(&inside.calls), 1);
    assert_int_equal(atomic_load(&inside.send_result), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    assert_int_not_equal(atomic_load(&inside.receive_result), 0);
    assert_int_not_equal(atomic_load(&inside.notify_result), 0);
    assert_int_not_equal(atomic_load(&inside.open_result), 0);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    (void)close(fds[1]);
    env_end(env);
}

/* Close shuts the connection down and closes the fd; the socket is CLOSED for good: operations
 * are refused and it cannot be opened again. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_104 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_041 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_051 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_042 */
static void async_socket_close_disconnects_and_the_socket_stays_closed(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    int duplicate = dup(fds[0]); /* keeps the socket alive: only a shutdown makes the peer see EOF */
    assert_true(duplicate >= 0);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    log_capture_start();
    async_socket_close(s);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_false(fd_is_open(fds[0]));
    assert_true(peer_sees_eof(fds[1]));

    atomic_store(&unexpected_callbacks, 0);
    uint8_t data[8] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    int warnings = 0;
    log_capture_start();
    assert_int_equal(send_marked(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    int errors = log_capture_stop_counting(&warnings);
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_133: the first call refused on the closed socket is one
     * WARNING, naming the fd the socket had; the later refusals are VERBOSE */
    assert_int_equal(errors, 0);
    assert_int_equal(warnings, 1);
    char expected[64];
    (void)snprintf(expected, sizeof(expected), "async socket fd=%d: send refused", fds[0]);
    assert_non_null(strstr(log_capture.last_warning, expected));
    log_capture_start();
    assert_int_not_equal(receive_marked(s, &buffer, 1, on_receive_unexpected, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop_counting(&warnings), 0);
    assert_int_equal(warnings, 0);
    log_capture_start();
    assert_int_not_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_unexpected, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop_counting(&warnings), 0);
    assert_int_equal(warnings, 0);
    log_capture_start();
    assert_int_not_equal(open_marked(s, on_open_unexpected, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    /* a second close does nothing, on this thread or another (which would wait while the
     * socket were still CLOSING) */
    log_capture_start();
    async_socket_close(s);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    CLOSER closer = {.socket = s};
    atomic_init(&closer.started, 0);
    atomic_init(&closer.returned, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, close_on_thread, &closer), 0);
    TEST_WAIT_UNTIL(atomic_load(&closer.returned) == 1, 2000);
    assert_int_equal(pthread_join(thread, NULL), 0);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    (void)close(duplicate);
    (void)close(fds[1]);
    env_end(env);
}

/* Closing a socket that was never opened does nothing: the fd is still open and connected, and
 * the socket can still be opened and used. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_042 */
static void async_socket_close_of_a_socket_that_is_not_open_does_nothing(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    log_capture_start();
    async_socket_close(s);
    async_socket_close(s);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_true(fd_is_open(fds[0]));
    assert_true(nothing_to_read(fds[1]));

    (void)open_socket_with(s);
    uint8_t data[50];
    test_fill_pattern(data, sizeof(data), 7);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 7, sizeof(data));
    env_end_with_socket(s, fds[1], env);
}

/* Close waits for a receive callback that is running on a worker. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_037 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
static void async_socket_close_waits_for_a_receive_callback_on_a_worker(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    GATED_RECEIVE g;
    gate_init(&g.gate);
    cb_init(&g.cb);
    atomic_init(&g.finished, 0);
    uint8_t in[16];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_gated, &g), 0);
    peer_write_pattern(fds[1], 0, 8);
    TEST_WAIT_UNTIL(atomic_load(&g.gate.entered) == 1, 2000);

    pthread_t opener;
    assert_int_equal(pthread_create(&opener, NULL, open_gate_later, &g.gate), 0);
    async_socket_close(s);
    assert_int_equal(atomic_load(&g.finished), 1);
    assert_int_equal(atomic_load(&g.cb.calls), 1);
    assert_int_equal(pthread_join(opener, NULL), 0);
    async_socket_destroy(s);
    gate_deinit(&g.gate);
    (void)close(fds[1]);
    env_end(env);
}

typedef struct SENDER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    CB cb;
    atomic_int result;
    atomic_int returned;
} SENDER;

static uint8_t sender_data[256];

static void* send_on_thread(void* arg)
{
    SENDER* sender = arg;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = sender_data, .length = sizeof(sender_data)};
    atomic_store(&sender->result, (int)async_socket_send_async(sender->socket, &buffer, 1, on_send_cb, &sender->cb));
    atomic_store(&sender->returned, 1);
    return NULL;
}

/* A send running inline on another thread (its transport call blocks) is waited for by close:
 * close returns only after that send and its inline callback have finished. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_037 */
static void async_socket_close_waits_for_a_send_in_progress_on_another_thread(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    GATE gate;
    gate_init(&gate);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    t.send_gate = &gate;
    test_fill_pattern(sender_data, sizeof(sender_data), 0);
    SENDER sender = {.socket = s};
    cb_init(&sender.cb);
    atomic_init(&sender.result, -1);
    atomic_init(&sender.returned, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, send_on_thread, &sender), 0);
    TEST_WAIT_UNTIL(atomic_load(&gate.entered) == 1, 2000);

    pthread_t opener;
    assert_int_equal(pthread_create(&opener, NULL, open_gate_later, &gate), 0);
    async_socket_close(s);
    /* the send was let through before close went on */
    assert_int_equal(atomic_load(&sender.cb.calls), 1);
    assert_int_equal(atomic_load(&sender.cb.result), ASYNC_SOCKET_SEND_OK);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(atomic_load(&sender.result), ASYNC_SOCKET_SEND_SYNC_OK);
    assert_int_equal(pthread_join(opener, NULL), 0);
    peer_read_pattern(fds[1], 0, sizeof(sender_data));
    assert_true(peer_sees_eof(fds[1]));
    async_socket_destroy(s);
    gate_deinit(&gate);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}


static const struct CMUnitTest tests[] = {
    cmocka_unit_test(async_socket_create_returns_a_socket_that_owns_the_fd),
    cmocka_unit_test(async_socket_create_twice_gives_two_independent_sockets),
    cmocka_unit_test(async_socket_create_uses_the_system_socket_calls),
    cmocka_unit_test(async_socket_create_accepts_a_null_or_a_real_execution_engine),
    cmocka_unit_test(async_socket_create_with_transport_with_null_on_send_fails),
    cmocka_unit_test(async_socket_create_with_transport_with_null_on_recv_fails),
    cmocka_unit_test(async_socket_create_without_platform_init_fails_with_one_error_line),
    cmocka_unit_test(async_socket_keeps_the_completion_port_until_destroy),
    cmocka_unit_test(async_socket_destroy_with_null_returns),
    cmocka_unit_test(async_socket_destroy_of_an_open_socket_closes_it),
    cmocka_unit_test(async_socket_destroy_waits_for_a_close_running_on_another_thread),
    cmocka_unit_test(async_socket_destroy_waits_for_an_open_running_on_another_thread),
    cmocka_unit_test(async_socket_open_async_with_null_socket_fails),
    cmocka_unit_test(async_socket_open_async_with_null_callback_fails),
    cmocka_unit_test(async_socket_open_async_with_null_context_succeeds),
    cmocka_unit_test(async_socket_open_async_of_a_socket_without_fd_fails),
    cmocka_unit_test(async_socket_open_async_opens_and_calls_back_inline),
    cmocka_unit_test(async_socket_open_async_of_an_open_socket_fails),
    cmocka_unit_test(async_socket_open_async_racing_opens_exactly_one_wins),
    cmocka_unit_test(async_socket_close_with_null_returns),
    cmocka_unit_test(async_socket_close_abandons_every_pending_operation),
    cmocka_unit_test(async_socket_close_refuses_new_operations_while_closing),
    cmocka_unit_test(async_socket_close_disconnects_and_the_socket_stays_closed),
    cmocka_unit_test(async_socket_close_of_a_socket_that_is_not_open_does_nothing),
    cmocka_unit_test(async_socket_close_waits_for_a_receive_callback_on_a_worker),
    cmocka_unit_test(async_socket_close_waits_for_a_send_in_progress_on_another_thread),
};

TEST_MAIN(tests)
