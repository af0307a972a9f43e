/* Unit tests for async_socket's data path: send, receive and notify on the real library (linked
 * with the fault-injecting sys seam) over socketpair(AF_UNIX, SOCK_STREAM) and loopback TCP pairs.
 * Slow paths are forced for real (a small SO_SNDBUF, a peer that does not read, a reset) or with
 * a custom transport that does real I/O on the fd and can be told to fail a given call. The tests
 * check the results, the callbacks (result, bytes, context, count, thread), the bytes on the other
 * end (a position-dependent pattern), and that nothing leaks. */
#include "async_socket_ut_util.h"

#include "test_main.h"

/* ---- send: the inline path ---- */

/* A send the kernel takes whole completes inside send_async: SEND_OK with the context, on the
 * calling thread, before SYNC_OK is returned; the buffers go out in order, contiguous. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_061 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_062 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_004 */
static void async_socket_send_async_completes_inline_when_the_kernel_takes_all(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    uint8_t data[3000];
    test_fill_pattern(data, sizeof(data), 100);
    ASYNC_SOCKET_BUFFER buffers[3] = {
        {.buffer = data, .length = 1000}, {.buffer = data + 1000, .length = 1}, {.buffer = data + 1001, .length = 1999}};
    CB sent;
    cb_init(&sent);
    log_capture_start();
    ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(s, buffers, 3, on_send_cb, &sent);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_OK);
    assert_int_equal(atomic_load(&sent.calls), 1);
    assert_int_equal(atomic_load(&sent.inline_calls), 1);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
    peer_read_pattern(fds[1], 100, sizeof(data));
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&sent.calls), 1);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&sent.calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

/* The custom transport's send hook gets the bytes, with the socket's own handle; when it takes
 * only part of them, it is called again until the whole payload is sent. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_004 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_061 */
static void async_socket_send_async_calls_the_transport_until_all_is_sent(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    t.max_send = 7;
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    uint8_t data[1000];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffers[3] = {
        {.buffer = data, .length = 300}, {.buffer = data + 300, .length = 3}, {.buffer = data + 303, .length = 697}};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, buffers, 3, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    assert_int_equal(atomic_load(&sent.inline_calls), 1);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
    /* 300/7 -> 43 calls, 3 -> 1, 697/7 -> 100 */
    assert_int_equal(atomic_load(&t.send_calls), 144);
    assert_int_equal(atomic_load(&t.wrong_handle), 0);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* With the default transport, a send that the kernel takes in small pieces (the seam caps each
 * sendmsg at 100 bytes) goes on until the payload is sent, still inline. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
static void async_socket_send_async_goes_on_after_short_sends(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    sys_fault_set_send_limit(100);
    uint8_t data[10000];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = data, .length = 4321}, {.buffer = data + 4321, .length = 10000 - 4321}};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, buffers, 2, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 0, sizeof(data));
    TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&sent.inline_calls), 1);
    sys_fault_set_send_limit(0);
    env_end_with_socket(s, fds[1], env);
}

/* ---- send: waiting for room ---- */

/* A send that meets a full socket is accepted (SYNC_OK) and kept with its payload, callback and
 * context (the caller's descriptor array is overwritten right after the call); it completes from
 * the completion port, on a worker, when the peer reads, with every byte in order. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_054 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_055 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_056 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_057 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_094 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_062 */
static void async_socket_send_async_that_meets_a_full_socket_completes_when_the_peer_reads(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 4096);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    const uint32_t size = 1024 * 1024;
    uint8_t* data = malloc(size);
    assert_non_null(data);
    test_fill_pattern(data, size, 0);
    ASYNC_SOCKET_BUFFER buffers[3] = {
        {.buffer = data, .length = 1000}, {.buffer = data + 1000, .length = 500000}, {.buffer = data + 501000, .length = size - 501000}};
    CB sent;
    cb_init(&sent);
    log_capture_start();
    ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(s, buffers, 3, on_send_cb, &sent);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_OK);
    memset(buffers, 0, sizeof(buffers));
    test_sleep_ms(50);
    assert_int_equal(atomic_load(&sent.calls), 0);

    peer_read_pattern(fds[1], 0, size);
    TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&sent.test_thread_calls), 0);
    assert_true(nothing_to_read(fds[1]));
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&sent.calls), 1);
    free(data);
    (void)close(fds[1]);
    env_end(env);
}

/* A custom transport that says EAGAIN (here for real: it sends on a full socket) makes the send
 * wait for room; the rest of the data is then handed to the transport from a worker, in pieces,
 * until all of it is sent. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_055 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_096 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_014 */
static void async_socket_send_async_with_a_custom_transport_waits_for_room(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 4096);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    t.max_send = 3000;
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    const uint32_t size = 256 * 1024;
    uint8_t* data = malloc(size);
    assert_non_null(data);
    test_fill_pattern(data, size, 0);
    ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = data, .length = 100000}, {.buffer = data + 100000, .length = size - 100000}};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, buffers, 2, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    test_sleep_ms(30);
    /* still waiting for room (a worker may have tried the transport on some readiness event and
     * been told EAGAIN again: a custom transport is retried on any readiness, devdoc D21) */
    assert_int_equal(atomic_load(&sent.calls), 0);

    peer_read_pattern(fds[1], 0, size);
    TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
    assert_true(atomic_load(&t.worker_send_calls) > 0);
    assert_int_equal(atomic_load(&t.wrong_handle), 0);
    async_socket_destroy(s);
    free(data);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* ---- send: failures ---- */

/* The connection is gone (ECONNRESET, ENOTCONN, EPIPE from the transport): NOT_OPEN, no
 * callback, and nothing of that payload reaches the peer. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_059 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_054 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_when_the_connection_is_gone_returns_not_open(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    atomic_store(&unexpected_callbacks, 0);
    const int gone[] = {ECONNRESET, ENOTCONN, EPIPE};
    uint8_t data[20];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
    {
        script_add(&t, &t.send_script, gone[i]);
        assert_int_equal(send_marked(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
        assert_int_equal(script_left(&t, &t.send_script), 0);
    }
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    assert_true(nothing_to_read(fds[1]));
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);

    /* the default transport, for real: the peer has closed (EPIPE) */
    make_unix_pair(fds, 0);
    s = open_socket(fds[0]);
    (void)close(fds[1]);
    struct sigaction previous = catch_sigpipe();
    assert_int_equal(send_marked(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    restore_sigpipe(previous);
    assert_int_equal(sigpipe_count, 0);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    env_end(env);
}

/* Any other transport error: ERROR with one error line and no callback; the socket stays open
 * and the next send goes through. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_060 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_063 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_another_transport_error_returns_error(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    atomic_store(&unexpected_callbacks, 0);
    const int errors[] = {EIO, EINVAL, ENOBUFS, EFAULT};
    uint8_t data[20];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
    {
        script_add(&t, &t.send_script, errors[i]);
        log_capture_start();
        assert_int_equal(send_marked(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_ERROR);
        ASSERT_ERROR_LINES(log_capture_stop(), 1);
    }
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    assert_true(nothing_to_read(fds[1]));

    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    assert_int_equal(atomic_load(&sent.inline_calls), 1);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* The default transport never raises SIGPIPE: not for a send made after the peer closed, and not
 * for a send waiting for room when the peer closes (that one is ABANDONED). */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_052 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_012 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
static void async_socket_send_async_never_raises_sigpipe(void** state)
{
    (void)state;
    ENV env = env_begin();
    struct sigaction previous = catch_sigpipe();
    int fds[2];
    make_unix_pair(fds, 4096);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    CB waiting;
    cb_init(&waiting);
    uint8_t* big = send_until_queued(s, 0, 1024 * 1024, &waiting);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&waiting.calls), 0);
    (void)close(fds[1]);
    TEST_WAIT_UNTIL(atomic_load(&waiting.calls) == 1, 2000);
    assert_int_equal(atomic_load(&waiting.result), ASYNC_SOCKET_SEND_ABANDONED);

    uint8_t data[10] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    atomic_store(&unexpected_callbacks, 0);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    async_socket_destroy(s);
    restore_sigpipe(previous);
    assert_int_equal(sigpipe_count, 0);
    assert_int_equal(atomic_load(&waiting.calls), 1);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    free(big);
    env_end(env);
}

/* A waiting send whose retry fails: ECONNRESET (and EPIPE, ENOTCONN: the connection is gone)
 * give SEND_ABANDONED, anything else SEND_ERROR; once, from a worker. */
static void check_waiting_send_failure(int error, ASYNC_SOCKET_SEND_RESULT expected)
{
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    script_add(&t, &t.send_script, EAGAIN);
    script_add(&t, &t.send_script, error);
    uint8_t data[20];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    assert_int_equal(atomic_load(&sent.inline_calls), 0);
    KICK_UNTIL(fds[1], atomic_load(&sent.calls) == 1);
    assert_int_equal(atomic_load(&sent.result), expected);
    assert_int_equal(atomic_load(&sent.test_thread_calls), 0);
    assert_int_equal(script_left(&t, &t.send_script), 0);

    /* the socket is still open: a new send goes through */
    CB next;
    cb_init(&next);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &next), ASYNC_SOCKET_SEND_SYNC_OK);
    TEST_WAIT_UNTIL(atomic_load(&next.calls) == 1, 2000);
    assert_int_equal(atomic_load(&next.result), ASYNC_SOCKET_SEND_OK);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&sent.calls), 1);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_097 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_096 */
static void async_socket_waiting_send_that_fails_with_econnreset_is_abandoned(void** state)
{
    (void)state;
    check_waiting_send_failure(ECONNRESET, ASYNC_SOCKET_SEND_ABANDONED);
    check_waiting_send_failure(EPIPE, ASYNC_SOCKET_SEND_ABANDONED);
    check_waiting_send_failure(ENOTCONN, ASYNC_SOCKET_SEND_ABANDONED);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_097 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_099 */
static void async_socket_waiting_send_that_fails_otherwise_completes_with_error(void** state)
{
    (void)state;
    check_waiting_send_failure(EIO, ASYNC_SOCKET_SEND_ERROR);
    check_waiting_send_failure(EINVAL, ASYNC_SOCKET_SEND_ERROR);
}

/* For real: a send waiting on a full TCP socket when the peer resets the connection. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_085 */
static void async_socket_waiting_send_is_abandoned_when_the_peer_resets(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_tcp_pair(fds, 16384);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    CB waiting;
    cb_init(&waiting);
    uint8_t* big = send_until_queued(s, 0, 4 * 1024 * 1024, &waiting);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&waiting.calls), 0);
    close_with_reset(fds[1]);
    TEST_WAIT_UNTIL(atomic_load(&waiting.calls) == 1, 2000);
    assert_int_equal(atomic_load(&waiting.result), ASYNC_SOCKET_SEND_ABANDONED);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&waiting.calls), 1);
    free(big);
    env_end(env);
}


/* ---- receive: completions ---- */

/* A receive posted before any data returns 0 and stays pending; when data arrives it completes
 * on a worker with OK, the byte count and its context, the bytes in its buffer. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_073 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_077 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_102 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_082 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_018 */
static void async_socket_receive_async_completes_when_data_arrives(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    uint8_t in[500];
    memset(in, 0, sizeof(in));
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    log_capture_start();
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    test_sleep_ms(50);
    assert_int_equal(atomic_load(&received.calls), 0);

    peer_write_pattern(fds[1], 1000, 123);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.bytes), 123);
    assert_int_equal(atomic_load(&received.test_thread_calls), 0);
    assert_int_equal(test_check_pattern(in, 123, 1000), 123);
    assert_int_equal(in[123], 0);

    /* data already waiting: still completed on a worker, never inside receive_async */
    peer_write_pattern(fds[1], 2000, 77);
    test_sleep_ms(20);
    CB second;
    cb_init(&second);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &second), 0);
    TEST_WAIT_UNTIL(atomic_load(&second.calls) == 1, 2000);
    assert_int_equal(atomic_load(&second.test_thread_calls), 0);
    assert_int_equal(atomic_load(&second.bytes), 77);
    assert_int_equal(test_check_pattern(in, 77, 2000), 77);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&received.calls), 1);
    assert_int_equal(atomic_load(&second.calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

/* A receive with ten buffers (more than fit in a record: the descriptor array is its own
 * allocation) scatters the data over them in order; the caller's descriptor array may be
 * overwritten as soon as the call returns. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_073 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_074 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
static void async_socket_receive_async_scatters_over_many_buffers(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    uint8_t in[10][10];
    memset(in, 0, sizeof(in));
    ASYNC_SOCKET_BUFFER buffers[10];
    for (int i = 0; i < 10; i++)
    {
        buffers[i].buffer = in[9 - i]; /* reversed in memory: the order must follow the array */
        buffers[i].length = 10;
    }
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, buffers, 10, on_receive_cb, &received), 0);
    memset(buffers, 0, sizeof(buffers));
    peer_write_pattern(fds[1], 0, 95);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.bytes), 95);
    for (int i = 0; i < 9; i++)
    {
        assert_int_equal(test_check_pattern(in[9 - i], 10, (uint64_t)i * 10), 10);
    }
    assert_int_equal(test_check_pattern(in[0], 5, 90), 5);
    assert_int_equal(in[0][5], 0);
    env_end_with_socket(s, fds[1], env);
}

/* Several receives posted on the default transport are filled by one recvmsg, oldest first:
 * each gets bytes in order and is called back in order; the last one reached may be partly
 * filled, and the ones the data did not reach stay pending. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_027 */
static void async_socket_receives_posted_together_are_filled_by_one_recvmsg(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    uint8_t in[4][16];
    memset(in, 0, sizeof(in));
    CB received[4];
    for (int i = 0; i < 4; i++)
    {
        cb_init(&received[i]);
        ASYNC_SOCKET_BUFFER buffer = {.buffer = in[i], .length = sizeof(in[i])};
        assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received[i]), 0);
    }
    test_sleep_ms(20);
    uint64_t calls_before = sys_fault_recvmsg_calls();

    /* 40 bytes: the first two receives full, the third with 8, the fourth untouched */
    peer_write_pattern(fds[1], 0, 40);
    TEST_WAIT_UNTIL(atomic_load(&received[2].calls) == 1, 2000);
    test_sleep_ms(20);
    assert_int_equal(sys_fault_recvmsg_calls() - calls_before, 1);
    assert_int_equal(atomic_load(&received[0].bytes), 16);
    assert_int_equal(atomic_load(&received[1].bytes), 16);
    assert_int_equal(atomic_load(&received[2].bytes), 8);
    assert_int_equal(atomic_load(&received[3].calls), 0);
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(atomic_load(&received[i].result), ASYNC_SOCKET_RECEIVE_OK);
        assert_int_equal(atomic_load(&received[i].test_thread_calls), 0);
        assert_int_equal(test_check_pattern(in[i], atomic_load(&received[i].bytes), (uint64_t)i * 16), atomic_load(&received[i].bytes));
    }
    assert_int_equal(in[2][8], 0);

    /* the next bytes go to the receive still pending */
    peer_write_pattern(fds[1], 40, 5);
    TEST_WAIT_UNTIL(atomic_load(&received[3].calls) == 1, 2000);
    assert_int_equal(atomic_load(&received[3].bytes), 5);
    assert_int_equal(test_check_pattern(in[3], 5, 40), 5);
    async_socket_destroy(s);
    for (int i = 0; i < 4; i++)
    {
        assert_int_equal(atomic_load(&received[i].calls), 1);
    }
    (void)close(fds[1]);
    env_end(env);
}

/* A custom transport's receive hook is called with the socket's handle, for one buffer at a
 * time; when a buffer is filled and more are left, it is called again for the next one. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_083 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
static void async_socket_receive_async_calls_the_transport_for_each_buffer(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    uint8_t in[3][8];
    memset(in, 0, sizeof(in));
    ASYNC_SOCKET_BUFFER buffers[3] = {{.buffer = in[0], .length = 8}, {.buffer = in[1], .length = 8}, {.buffer = in[2], .length = 8}};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, buffers, 3, on_receive_cb, &received), 0);
    peer_write_pattern(fds[1], 0, 20);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.bytes), 20);
    assert_int_equal(test_check_pattern(in[0], 8, 0), 8);
    assert_int_equal(test_check_pattern(in[1], 8, 8), 8);
    assert_int_equal(test_check_pattern(in[2], 4, 16), 4);
    assert_true(atomic_load(&t.recv_calls) >= 3);
    assert_int_equal(atomic_load(&t.test_thread_recv_calls), 0);
    assert_int_equal(atomic_load(&t.wrong_handle), 0);
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* EAGAIN from the transport (even with data waiting) means "no data yet": the receive stays
 * pending without a callback, and the next input event completes it with all the data. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_088 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_089 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_014 */
static void async_socket_receive_async_stays_pending_when_the_transport_says_eagain(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    script_add(&t, &t.recv_script, EAGAIN);
    script_add(&t, &t.recv_script, EWOULDBLOCK);
    /* After the script the transport keeps saying EAGAIN until the test lets it read. Without
     * this, a call made for some other event (the output edge of the registration at open) could
     * take an EAGAIN meant for a write, and the event of that write then read the data before the
     * check below: a loaded machine did that once. */
    atomic_store(&t.recv_would_block, true);
    uint8_t in[256];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    /* each write is an input event, and each event makes the receive call the transport: write
     * until both scripted errors were handed out (an event that only says "writable" may take one
     * too) */
    uint64_t written = 0;
    const uint64_t start = test_now_ms();
    while (script_left(&t, &t.recv_script) > 0)
    {
        assert_true(test_now_ms() - start < 2000 * (uint64_t)test_wait_scale());
        int calls = atomic_load(&t.recv_calls);
        peer_write_pattern(fds[1], written, 10);
        written += 10;
        TEST_WAIT_UNTIL(atomic_load(&t.recv_calls) > calls, 2000);
    }
    /* data is waiting, yet the receive stays pending: the transport said EAGAIN */
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&received.calls), 0);

    atomic_store(&t.recv_would_block, false);
    peer_write_pattern(fds[1], written, 10);
    written += 10;
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.bytes), written);
    assert_int_equal(test_check_pattern(in, written, 0), written);
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* The peer resets the connection (a real RST over TCP): the pending receive is ABANDONED with
 * 0 bytes. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_088 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_090 */
static void async_socket_receive_async_is_abandoned_on_connection_reset(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_tcp_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    uint8_t in[64];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    test_sleep_ms(20);
    close_with_reset(fds[1]);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&received.bytes), 0);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&received.calls), 1);

    /* the same through a custom transport reporting ECONNRESET */
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    s = open_socket_with(create_with_test_transport(&t));
    script_add(&t, &t.recv_script, ECONNRESET);
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    peer_write_pattern(fds[1], 0, 10);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&received.bytes), 0);
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* Any other transport error completes the receive with ERROR; the socket stays usable. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_088 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_095 */
static void async_socket_receive_async_completes_with_error_on_other_errors(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    const int errors[] = {EIO, ENOMEM, EINVAL};
    uint8_t in[64];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
    {
        script_add(&t, &t.recv_script, errors[i]);
        CB received;
        cb_init(&received);
        assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
        peer_write_pattern(fds[1], i, 1);
        TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
        assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_ERROR);
        assert_int_equal(atomic_load(&received.bytes), 0);
    }
    /* the bytes written meanwhile are still there */
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.bytes), 3);
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* The peer closes its side (read hang-up): the data sent before it is delivered first, then
 * the pending receives are ABANDONED with 0 bytes (end of stream). */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_091 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_080 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_019 */
static void async_socket_receive_async_is_abandoned_at_end_of_stream(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    uint8_t in[3][64];
    CB received[3];
    for (int i = 0; i < 3; i++)
    {
        cb_init(&received[i]);
        ASYNC_SOCKET_BUFFER buffer = {.buffer = in[i], .length = sizeof(in[i])};
        assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received[i]), 0);
    }
    peer_write_pattern(fds[1], 0, 40);
    assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
    TEST_WAIT_UNTIL(atomic_load(&received[2].calls) == 1, 2000);
    assert_int_equal(atomic_load(&received[0].result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received[0].bytes), 40);
    assert_int_equal(test_check_pattern(in[0], 40, 0), 40);
    for (int i = 1; i < 3; i++)
    {
        assert_int_equal(atomic_load(&received[i].calls), 1);
        assert_int_equal(atomic_load(&received[i].result), ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_int_equal(atomic_load(&received[i].bytes), 0);
    }
    async_socket_destroy(s);
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(atomic_load(&received[i].calls), 1);
    }
    (void)close(fds[1]);
    env_end(env);
}


/* ---- notify ---- */

/* A notify for input on an idle socket returns 0 and waits; when data arrives it completes IN
 * once, on a worker, with its context, and the data is left for a receive. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_017 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_082 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_181 (the type is kept apart: an IN notify on a writable
 * socket waits, an OUT one completes OUT) */
static void async_socket_notify_io_async_in_completes_when_data_arrives(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    CB notified;
    cb_init(&notified);
    log_capture_start();
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &notified), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    test_sleep_ms(50);
    assert_int_equal(atomic_load(&notified.calls), 0);

    peer_write_pattern(fds[1], 0, 25);
    TEST_WAIT_UNTIL(atomic_load(&notified.calls) == 1, 2000);
    assert_int_equal(atomic_load(&notified.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
    assert_int_equal(atomic_load(&notified.test_thread_calls), 0);

    uint8_t in[64];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.bytes), 25);
    assert_int_equal(test_check_pattern(in, 25, 0), 25);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&notified.calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

/* A notify for input on a socket whose data arrived before the notify (its edge is long gone)
 * completes at once. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_023 */
static void async_socket_notify_io_async_in_on_a_socket_with_data_completes(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    peer_write_pattern(fds[1], 0, 10);
    test_sleep_ms(30);
    CB notified;
    cb_init(&notified);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &notified), 0);
    TEST_WAIT_UNTIL(atomic_load(&notified.calls) == 1, 2000);
    assert_int_equal(atomic_load(&notified.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
    /* and again: readiness, not a change, is what a notify reports */
    CB again;
    cb_init(&again);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &again), 0);
    TEST_WAIT_UNTIL(atomic_load(&again.calls) == 1, 2000);
    assert_int_equal(atomic_load(&again.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&notified.calls), 1);
    assert_int_equal(atomic_load(&again.calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

/* A notify for output on a writable socket completes OUT; an input notify posted with it on the
 * same idle socket keeps waiting. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_010 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_094 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_181 (the type is kept apart: an IN notify on a writable
 * socket waits, an OUT one completes OUT) */
static void async_socket_notify_io_async_out_on_a_writable_socket_completes(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    test_sleep_ms(20); /* the first output edge (at open) is long gone */
    CB in;
    CB out;
    cb_init(&in);
    cb_init(&out);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &in), 0);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_cb, &out), 0);
    TEST_WAIT_UNTIL(atomic_load(&out.calls) == 1, 2000);
    assert_int_equal(atomic_load(&out.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    assert_int_equal(atomic_load(&out.test_thread_calls), 0);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&in.calls), 0);
    async_socket_close(s);
    assert_int_equal(atomic_load(&in.calls), 1);
    assert_int_equal(atomic_load(&in.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&out.calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

/* A notify for output on a full socket waits until the peer makes room. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_010 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_094 */
static void async_socket_notify_io_async_out_on_a_full_socket_waits_for_room(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 4096);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    CB sent;
    cb_init(&sent);
    const uint32_t size = 256 * 1024;
    uint8_t* big = send_until_queued(s, 0, size, &sent);
    CB out;
    cb_init(&out);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_cb, &out), 0);
    test_sleep_ms(50);
    assert_int_equal(atomic_load(&out.calls), 0);
    peer_read_pattern(fds[1], 0, size);
    TEST_WAIT_UNTIL(atomic_load(&out.calls) == 1 && atomic_load(&sent.calls) == 1, 2000);
    assert_int_equal(atomic_load(&out.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&out.calls), 1);
    free(big);
    (void)close(fds[1]);
    env_end(env);
}

/* An error on the socket (the peer resets a TCP connection) completes pending notifies with
 * ERROR, whatever direction they wait for. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_085 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_011 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_087 */
static void async_socket_notify_io_async_completes_with_error_on_a_socket_error(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_tcp_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    CB in;
    cb_init(&in);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &in), 0);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&in.calls), 0);
    close_with_reset(fds[1]);
    TEST_WAIT_UNTIL(atomic_load(&in.calls) == 1, 2000);
    assert_int_equal(atomic_load(&in.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&in.calls), 1);
    env_end(env);
}

/* On a socket error the pending receive gets what the transport reports: a transport that
 * reports the reset as EIO makes it complete with ERROR. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_085 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_086 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_087 */
static void async_socket_receive_async_completes_with_error_on_a_socket_error(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_tcp_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    t.reset_errno = EIO;
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    uint8_t in[64];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    test_sleep_ms(20);
    close_with_reset(fds[1]);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_ERROR);
    assert_int_equal(atomic_load(&received.bytes), 0);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&received.calls), 1);
    transport_deinit(&t);
    env_end(env);
}

/* ---- a dead link ---- */

#define DEAD_LINK_OPS 2

typedef struct DEAD_LINK_TAG
{
    int fds[2];
    TRANSPORT t;
    ASYNC_SOCKET_HANDLE s;
    CB sent[DEAD_LINK_OPS];
    CB received[DEAD_LINK_OPS];
    CB notified; /* an OUT notify: the socket is full, so it waits */
    uint8_t* payload[DEAD_LINK_OPS];
    uint8_t in[DEAD_LINK_OPS][64];
} DEAD_LINK;

/* A socket with a custom transport, two sends waiting for room (the peer does not read), two
 * receives and an OUT notify pending. */
static void dead_link_begin(DEAD_LINK* d)
{
    make_unix_pair(d->fds, 4096);
    transport_init(&d->t, d->fds[0]);
    d->s = open_socket_with(create_with_test_transport(&d->t));
    for (int i = 0; i < DEAD_LINK_OPS; i++)
    {
        cb_init(&d->sent[i]);
        cb_init(&d->received[i]);
        d->payload[i] = send_until_queued(d->s, 0, 256 * 1024, &d->sent[i]);
        ASYNC_SOCKET_BUFFER buffer = {.buffer = d->in[i], .length = sizeof(d->in[i])};
        assert_int_equal(receive_marked(d->s, &buffer, 1, on_receive_cb, &d->received[i]), 0);
    }
    /* The registration at open reports the empty socket writable: one OUT edge. A worker that took
     * it from epoll before the sends above filled the socket can, on a loaded machine, deliver it
     * only after the notify is armed; the notify then completes OUT with an edge older than itself
     * (1 run in ~300 under load). It is the only OUT edge there is: epoll re-checks readiness when
     * it hands out an edge, and a full socket whose peer never reads is not writable. So a notify
     * answered OUT is replaced once, and the second one must stay pending. */
    for (int attempt = 0; attempt < 2; attempt++)
    {
        cb_init(&d->notified);
        assert_int_equal(notify_marked(d->s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_cb, &d->notified), 0);
        test_sleep_ms(20);
        if (atomic_load(&d->notified.calls) == 0)
        {
            break;
        }
        assert_int_equal(atomic_load(&d->notified.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    }
    assert_int_equal(atomic_load(&d->notified.calls), 0);
    for (int i = 0; i < DEAD_LINK_OPS; i++)
    {
        assert_int_equal(atomic_load(&d->sent[i].calls), 0);
        assert_int_equal(atomic_load(&d->received[i].calls), 0);
    }
}

/* Every op completed once with ERROR; a new send, receive or notify fails at once with one
 * ERROR line and no callback; the socket closes cleanly. */
static void dead_link_check_and_end(DEAD_LINK* d)
{
    for (int i = 0; i < DEAD_LINK_OPS; i++)
    {
        TEST_WAIT_UNTIL(atomic_load(&d->sent[i].calls) == 1 && atomic_load(&d->received[i].calls) == 1, 2000);
    }
    TEST_WAIT_UNTIL(atomic_load(&d->notified.calls) == 1, 2000);
    assert_int_equal(atomic_load(&d->notified.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR);
    for (int i = 0; i < DEAD_LINK_OPS; i++)
    {
        assert_int_equal(atomic_load(&d->sent[i].result), ASYNC_SOCKET_SEND_ERROR);
        assert_int_equal(atomic_load(&d->received[i].result), ASYNC_SOCKET_RECEIVE_ERROR);
        assert_int_equal(atomic_load(&d->received[i].bytes), 0);
    }
    uint8_t data[8] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB late;
    cb_init(&late);
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_133: the first refusal is one WARNING naming the fd, the
     * later ones are VERBOSE */
    int warnings = 0;
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    assert_int_equal(send_marked(d->s, &buffer, 1, on_send_cb, &late), ASYNC_SOCKET_SEND_SYNC_ERROR);
    ASSERT_ERROR_LINES(log_capture_stop_counting(&warnings), 0);
    assert_int_equal(warnings, 1);
    assert_non_null(strstr(log_capture.last_warning, "failed earlier"));
    assert_non_null(strstr(log_capture.last_warning, "fd="));
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    assert_int_not_equal(receive_marked(d->s, &buffer, 1, on_receive_cb, &late), 0);
    ASSERT_ERROR_LINES(log_capture_stop_counting(&warnings), 0);
    assert_int_equal(warnings, 0);
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    assert_int_not_equal(notify_marked(d->s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_cb, &late), 0);
    ASSERT_ERROR_LINES(log_capture_stop_counting(&warnings), 0);
    assert_int_equal(warnings, 0);
    async_socket_destroy(d->s);
    assert_int_equal(atomic_load(&late.calls), 0);
    assert_int_equal(atomic_load(&d->notified.calls), 1);
    for (int i = 0; i < DEAD_LINK_OPS; i++)
    {
        assert_int_equal(atomic_load(&d->sent[i].calls), 1);
        assert_int_equal(atomic_load(&d->received[i].calls), 1);
        free(d->payload[i]);
    }
    transport_deinit(&d->t);
    (void)close(d->fds[1]);
}

/* The transport reports a dead link (ETIMEDOUT) to one send only, then EPIPE to the next send and
 * an end of stream to the receives, as the kernel does after TCP_USER_TIMEOUT: every pending op
 * completes with ERROR, none ABANDONED (which would read as a clean close). */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_036 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_037 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_038 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_039 */
static void async_socket_dead_link_seen_by_a_send_fails_every_pending_op(void** state)
{
    (void)state;
    ENV env = env_begin();
    DEAD_LINK d;
    dead_link_begin(&d);
    script_add(&d.t, &d.t.send_script, ETIMEDOUT);
    for (int i = 0; i < 4; i++)
    {
        script_add(&d.t, &d.t.send_script, EPIPE);
    }
    /* the peer's end of stream is the event; a receive now reads 0 */
    assert_int_equal(shutdown(d.fds[1], SHUT_WR), 0);
    dead_link_check_and_end(&d);
    env_end(env);
}

/* The log sink is user code: a refused operation logs with no socket lock held, so a sink that
 * calls back into the same socket (here: a call that takes its lock) does not deadlock. */
static ASYNC_SOCKET_HANDLE reentrant_sink_socket;
static atomic_int reentrant_sink_lines;

static void reentrant_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)async_socket_get_queued_send_bytes(reentrant_sink_socket);
    (void)atomic_fetch_add(&reentrant_sink_lines, 1);
    log_capture_sink(context, level, file, line, function, message);
}

static atomic_int refused_send_returned;

static void* refused_send_main(void* arg)
{
    uint8_t data[8] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB late;
    cb_init(&late);
    (void)async_socket_send_async((ASYNC_SOCKET_HANDLE)arg, &buffer, 1, on_send_cb, &late);
    atomic_store(&refused_send_returned, 1);
    return NULL;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_171 */
static void async_socket_logs_a_refused_operation_with_no_lock_held(void** state)
{
    (void)state;
    ENV env = env_begin();
    DEAD_LINK d;
    dead_link_begin(&d);
    script_add(&d.t, &d.t.send_script, ETIMEDOUT);
    for (int i = 0; i < 4; i++)
    {
        script_add(&d.t, &d.t.send_script, EPIPE);
    }
    assert_int_equal(shutdown(d.fds[1], SHUT_WR), 0);
    for (int i = 0; i < DEAD_LINK_OPS; i++)
    {
        TEST_WAIT_UNTIL(atomic_load(&d.sent[i].calls) == 1 && atomic_load(&d.received[i].calls) == 1, 2000);
    }
    reentrant_sink_socket = d.s;
    atomic_store(&reentrant_sink_lines, 0);
    atomic_store(&refused_send_returned, 0);
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    async_socket_log_set_sink(reentrant_sink, &log_capture);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, refused_send_main, d.s), 0);
    TEST_WAIT_UNTIL(atomic_load(&refused_send_returned) == 1, 2000); /* a deadlock never returns */
    assert_int_equal(pthread_join(thread, NULL), 0);
    /* the first refusal of the socket is one WARNING (99_133) */
    int warnings = 0;
    ASSERT_ERROR_LINES(log_capture_stop_counting(&warnings), 0);
    assert_int_equal(warnings, 1);
    assert_int_equal(atomic_load(&reentrant_sink_lines), 1);
    /* not dead_link_check_and_end: it expects the socket's first refusal, made above already */
    async_socket_destroy(d.s);
    for (int i = 0; i < DEAD_LINK_OPS; i++)
    {
        assert_int_equal(atomic_load(&d.sent[i].calls), 1);
        assert_int_equal(atomic_load(&d.received[i].calls), 1);
        free(d.payload[i]);
    }
    transport_deinit(&d.t);
    (void)close(d.fds[1]);
    env_end(env);
}

/* The same when a receive is the one told ETIMEDOUT: the sends waiting for room fail with it. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_036 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_037 */
static void async_socket_dead_link_seen_by_a_receive_fails_every_pending_op(void** state)
{
    (void)state;
    ENV env = env_begin();
    DEAD_LINK d;
    dead_link_begin(&d);
    script_add(&d.t, &d.t.recv_script, ETIMEDOUT);
    /* the byte is the event; without the fix the second receive would take it */
    kick(d.fds[1]);
    dead_link_check_and_end(&d);
    env_end(env);
}

/* A peer that closed first (ECONNRESET) is not a dead link: an ETIMEDOUT after it does not
 * turn the socket's later operations into failures. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_036 */
static void async_socket_error_after_a_reset_does_not_fail_later_ops(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    script_add(&t, &t.recv_script, ECONNRESET);
    script_add(&t, &t.recv_script, ETIMEDOUT);
    uint8_t in[64];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    const int expected[2] = {ASYNC_SOCKET_RECEIVE_ABANDONED, ASYNC_SOCKET_RECEIVE_ERROR};
    for (int i = 0; i < 2; i++)
    {
        CB received;
        cb_init(&received);
        assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
        peer_write_pattern(fds[1], (uint64_t)i, 1);
        TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
        assert_int_equal(atomic_load(&received.result), expected[i]);
    }
    /* still usable: the two bytes written meanwhile arrive */
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&received.bytes), 2);
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

/* ---- events with nothing to complete ---- */

/* Readiness that no operation waits for is ignored: data arriving with nothing posted calls
 * nothing back and is kept, whole and in order, for the receive posted later. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_079 */
static void async_socket_events_with_nothing_pending_are_ignored(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    CB done;
    cb_init(&done);
    uint8_t out[10];
    test_fill_pattern(out, sizeof(out), 0);
    ASYNC_SOCKET_BUFFER out_buffer = {.buffer = out, .length = sizeof(out)};
    assert_int_equal(send_marked(s, &out_buffer, 1, on_send_cb, &done), ASYNC_SOCKET_SEND_SYNC_OK);
    assert_int_equal(atomic_load(&done.calls), 1);
    for (int i = 0; i < 5; i++)
    {
        peer_write_pattern(fds[1], (uint64_t)i * 30, 30);
        test_sleep_ms(5);
    }
    peer_read_pattern(fds[1], 0, sizeof(out));
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&done.calls), 1);

    uint8_t in[200];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.bytes), 150);
    assert_int_equal(test_check_pattern(in, 150, 0), 150);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&done.calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

/* ---- steady state ---- */

#define STEADY_ROUNDS 100
#define STEADY_SEND (64 * 1024)

/* One round on the default transport: a send that waits for room, a receive posted before its
 * data, and an output notify. Every record is given back after its callback. */
static void steady_round(ASYNC_SOCKET_HANDLE s, int peer, uint8_t* data, uint8_t* in, uint64_t* offset)
{
    CB sent;
    CB received;
    CB notified;
    cb_init(&sent);
    cb_init(&received);
    cb_init(&notified);
    test_fill_pattern(data, STEADY_SEND, *offset);
    ASYNC_SOCKET_BUFFER out = {.buffer = data, .length = STEADY_SEND};
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = 100};
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received), 0);
    assert_int_equal(send_marked(s, &out, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(peer, *offset, STEADY_SEND);
    *offset += STEADY_SEND;
    peer_write_pattern(peer, 0, 100);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_cb, &notified), 0);
    TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1 && atomic_load(&received.calls) == 1 && atomic_load(&notified.calls) == 1, 2000);
    assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&received.bytes), 100);
    assert_int_equal(atomic_load(&notified.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
}

/* After a warm-up, 100 more rounds of sends (waiting for room), receives and notifies allocate
 * nothing more: every record is released after its callback (records are recycled, so a leak of
 * one per operation would show as hundreds). The bound of 2 allows for a record still on its way
 * back to the free list when the test posts the next operation. Destroy gives everything back. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_093 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_100 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
static void async_socket_steady_state_does_not_allocate(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 4096);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    uint8_t* data = malloc(STEADY_SEND);
    assert_non_null(data);
    uint8_t in[100];
    uint64_t offset = 0;
    for (int i = 0; i < 10; i++)
    {
        steady_round(s, fds[1], data, in, &offset);
    }
    int64_t warm = sys_fault_live_allocations();
    for (int i = 0; i < STEADY_ROUNDS; i++)
    {
        steady_round(s, fds[1], data, in, &offset);
    }
    int64_t after = sys_fault_live_allocations();
    (void)printf("steady state: %lld allocations after the warm-up\n", (long long)(after - warm));
    assert_true(after - warm <= 2);
    assert_true(after - warm >= 0);
    async_socket_destroy(s);
    free(data);
    (void)close(fds[1]);
    env_end(env);
}

/* The same with operations that end in errors: receives that fail (ERROR) and sends whose retry
 * fails (ERROR): nothing is kept after the callbacks. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_087 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_100 */
static void async_socket_steady_state_with_errors_does_not_allocate(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    TRANSPORT t;
    transport_init(&t, fds[0]);
    ASYNC_SOCKET_HANDLE s = open_socket_with(create_with_test_transport(&t));
    uint8_t in[16];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    uint8_t out[16] = {0};
    ASYNC_SOCKET_BUFFER out_buffer = {.buffer = out, .length = sizeof(out)};
    int64_t warm = 0;
    for (int i = 0; i < 10 + STEADY_ROUNDS; i++)
    {
        if (i == 10)
        {
            warm = sys_fault_live_allocations();
        }
        CB received;
        CB sent;
        cb_init(&received);
        cb_init(&sent);
        script_add(&t, &t.recv_script, EIO);
        assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received), 0);
        peer_write_pattern(fds[1], 0, 1);
        TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
        assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_ERROR);
        script_add(&t, &t.send_script, EAGAIN);
        script_add(&t, &t.send_script, EIO);
        assert_int_equal(send_marked(s, &out_buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
        KICK_UNTIL(fds[1], atomic_load(&sent.calls) == 1);
        assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_ERROR);
        /* drain what the peer wrote (the byte and the kicks) so the transport has no data left */
        CB drained;
        cb_init(&drained);
        uint8_t sink[4096];
        ASYNC_SOCKET_BUFFER sink_buffer = {.buffer = sink, .length = sizeof(sink)};
        assert_int_equal(receive_marked(s, &sink_buffer, 1, on_receive_cb, &drained), 0);
        TEST_WAIT_UNTIL(atomic_load(&drained.calls) == 1, 2000);
    }
    int64_t after = sys_fault_live_allocations();
    (void)printf("steady state: %lld allocations after the warm-up\n", (long long)(after - warm));
    assert_true(after - warm <= 2);
    assert_true(after - warm >= 0);
    async_socket_destroy(s);
    transport_deinit(&t);
    (void)close(fds[1]);
    env_end(env);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(async_socket_send_async_completes_inline_when_the_kernel_takes_all),
    cmocka_unit_test(async_socket_send_async_calls_the_transport_until_all_is_sent),
    cmocka_unit_test(async_socket_send_async_goes_on_after_short_sends),
    cmocka_unit_test(async_socket_send_async_that_meets_a_full_socket_completes_when_the_peer_reads),
    cmocka_unit_test(async_socket_send_async_with_a_custom_transport_waits_for_room),
    cmocka_unit_test(async_socket_send_async_when_the_connection_is_gone_returns_not_open),
    cmocka_unit_test(async_socket_send_async_with_another_transport_error_returns_error),
    cmocka_unit_test(async_socket_send_async_never_raises_sigpipe),
    cmocka_unit_test(async_socket_waiting_send_that_fails_with_econnreset_is_abandoned),
    cmocka_unit_test(async_socket_waiting_send_that_fails_otherwise_completes_with_error),
    cmocka_unit_test(async_socket_waiting_send_is_abandoned_when_the_peer_resets),
    cmocka_unit_test(async_socket_receive_async_completes_when_data_arrives),
    cmocka_unit_test(async_socket_receive_async_scatters_over_many_buffers),
    cmocka_unit_test(async_socket_receives_posted_together_are_filled_by_one_recvmsg),
    cmocka_unit_test(async_socket_receive_async_calls_the_transport_for_each_buffer),
    cmocka_unit_test(async_socket_receive_async_stays_pending_when_the_transport_says_eagain),
    cmocka_unit_test(async_socket_receive_async_is_abandoned_on_connection_reset),
    cmocka_unit_test(async_socket_receive_async_completes_with_error_on_other_errors),
    cmocka_unit_test(async_socket_receive_async_is_abandoned_at_end_of_stream),
    cmocka_unit_test(async_socket_notify_io_async_in_completes_when_data_arrives),
    cmocka_unit_test(async_socket_notify_io_async_in_on_a_socket_with_data_completes),
    cmocka_unit_test(async_socket_notify_io_async_out_on_a_writable_socket_completes),
    cmocka_unit_test(async_socket_notify_io_async_out_on_a_full_socket_waits_for_room),
    cmocka_unit_test(async_socket_notify_io_async_completes_with_error_on_a_socket_error),
    cmocka_unit_test(async_socket_receive_async_completes_with_error_on_a_socket_error),
    cmocka_unit_test(async_socket_dead_link_seen_by_a_send_fails_every_pending_op),
    cmocka_unit_test(async_socket_logs_a_refused_operation_with_no_lock_held),
    cmocka_unit_test(async_socket_dead_link_seen_by_a_receive_fails_every_pending_op),
    cmocka_unit_test(async_socket_error_after_a_reset_does_not_fail_later_ops),
    cmocka_unit_test(async_socket_events_with_nothing_pending_are_ignored),
    cmocka_unit_test(async_socket_steady_state_does_not_allocate),
    cmocka_unit_test(async_socket_steady_state_with_errors_does_not_allocate),
};

TEST_MAIN(tests)
