/* Unit tests for the argument checks of async_socket_send_async, async_socket_receive_async and
 * async_socket_notify_io_async, on the real library (linked with the fault-injecting sys seam) over
 * socketpair(AF_UNIX, SOCK_STREAM): each bad argument gives the documented error with exactly one
 * ERROR line, no callback, nothing allocated and nothing on the wire, and the socket keeps working;
 * a NULL context is accepted. */
#include "async_socket_ut_util.h"

#include "test_main.h"

/* ---- send: bad arguments ---- */

static uint8_t some_bytes[64];

/* A send with bad arguments returns ERROR with one error line and no callback; nothing reaches
 * the peer, nothing is allocated, and the socket keeps working. */
static void check_send_rejected(bool null_socket, const ASYNC_SOCKET_BUFFER* payload, uint32_t count, bool null_callback)
{
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    atomic_store(&unexpected_callbacks, 0);
    int64_t before = sys_fault_live_allocations();

    log_capture_start();
    ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(null_socket ? NULL : s, payload, count, null_callback ? NULL : on_send_unexpected, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_ERROR);
    assert_int_equal(sys_fault_live_allocations(), before);
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    assert_true(nothing_to_read(fds[1]));

    uint8_t data[32];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER good = {.buffer = data, .length = sizeof(data)};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, &good, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    (void)close(fds[1]);
    env_end(env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_043 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_null_socket_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = some_bytes, .length = sizeof(some_bytes)};
    check_send_rejected(true, &buffer, 1, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_044 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_null_payload_fails(void** state)
{
    (void)state;
    check_send_rejected(false, NULL, 1, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_045 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_zero_buffer_count_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = some_bytes, .length = sizeof(some_bytes)};
    check_send_rejected(false, &buffer, 0, false);
}

/* The bad buffer is the last of three: the first ones must not have been sent. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_046 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_a_null_buffer_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffers[3] = {
        {.buffer = some_bytes, .length = 10}, {.buffer = some_bytes, .length = 10}, {.buffer = NULL, .length = 10}};
    check_send_rejected(false, buffers, 3, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_047 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_a_zero_length_buffer_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffers[3] = {
        {.buffer = some_bytes, .length = 10}, {.buffer = some_bytes, .length = 0}, {.buffer = some_bytes, .length = 10}};
    check_send_rejected(false, buffers, 3, false);
}

/* The lengths are never used to touch memory when the total is refused. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_048 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_lengths_over_uint32_max_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER two[2] = {{.buffer = some_bytes, .length = 0x80000000u}, {.buffer = some_bytes, .length = 0x80000000u}};
    check_send_rejected(false, two, 2, false);
    ASYNC_SOCKET_BUFFER three[3] = {{.buffer = some_bytes, .length = 1}, {.buffer = some_bytes, .length = UINT32_MAX - 1}, {.buffer = some_bytes, .length = 1}};
    check_send_rejected(false, three, 3, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_049 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_with_null_callback_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = some_bytes, .length = sizeof(some_bytes)};
    check_send_rejected(false, &buffer, 1, true);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_050 */
static void async_socket_send_async_with_null_context_succeeds(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    atomic_store(&null_context_calls, 0);
    atomic_store(&null_context_result, -1);
    uint8_t data[40];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    log_capture_start();
    assert_int_equal(async_socket_send_async(s, &buffer, 1, on_send_expect_null_context, NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    peer_read_pattern(fds[1], 0, sizeof(data));
    TEST_WAIT_UNTIL(atomic_load(&null_context_calls) == 1, 2000);
    assert_int_equal(atomic_load(&null_context_result), ASYNC_SOCKET_SEND_OK);
    env_end_with_socket(s, fds[1], env);
}

/* A socket that was never opened (with an fd, or without) refuses sends with NOT_OPEN, logged
 * once (as a warning), without a callback; the fd is untouched. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_051 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_on_a_socket_that_is_not_open_returns_not_open(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE sockets[2] = {async_socket_create(NULL, fds[0]), async_socket_create(NULL, INVALID_SOCKET)};
    atomic_store(&unexpected_callbacks, 0);
    uint8_t data[8] = {0};
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    for (int i = 0; i < 2; i++)
    {
        assert_non_null(sockets[i]);
        int warnings = 0;
        log_capture_start();
        assert_int_equal(send_marked(sockets[i], &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
        int errors = log_capture_stop_counting(&warnings);
        assert_int_equal(errors + warnings, 1);
    }
    assert_true(nothing_to_read(fds[1]));
    async_socket_destroy(sockets[0]);
    async_socket_destroy(sockets[1]);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    (void)close(fds[1]);
    env_end(env);
}

/* ---- receive: bad arguments ---- */

/* A receive with bad arguments fails (non-zero) with one error line and no callback; nothing is
 * allocated, the data the peer sends stays for the next receive. */
static void check_receive_rejected(bool null_socket, ASYNC_SOCKET_BUFFER* payload, uint32_t count, bool null_callback)
{
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    atomic_store(&unexpected_callbacks, 0);
    int64_t before = sys_fault_live_allocations();

    log_capture_start();
    int result = receive_marked(null_socket ? NULL : s, payload, count, null_callback ? NULL : on_receive_unexpected, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_int_equal(sys_fault_live_allocations(), before);
    peer_write_pattern(fds[1], 0, 32);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);

    uint8_t in[32];
    ASYNC_SOCKET_BUFFER good = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &good, 1, on_receive_cb, &received), 0);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.bytes), 32);
    assert_int_equal(test_check_pattern(in, 32, 0), 32);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    (void)close(fds[1]);
    env_end(env);
}

static uint8_t receive_area[64];

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_064 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_with_null_socket_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = receive_area, .length = sizeof(receive_area)};
    check_receive_rejected(true, &buffer, 1, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_065 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_with_null_payload_fails(void** state)
{
    (void)state;
    check_receive_rejected(false, NULL, 1, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_066 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_with_zero_buffer_count_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = receive_area, .length = sizeof(receive_area)};
    check_receive_rejected(false, &buffer, 0, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_067 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_with_a_null_buffer_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = receive_area, .length = 8}, {.buffer = NULL, .length = 8}};
    check_receive_rejected(false, buffers, 2, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_068 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_with_a_zero_length_buffer_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = receive_area, .length = 0}, {.buffer = receive_area + 8, .length = 8}};
    check_receive_rejected(false, buffers, 2, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_069 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_with_lengths_over_uint32_max_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = receive_area, .length = UINT32_MAX}, {.buffer = receive_area, .length = 1}};
    check_receive_rejected(false, buffers, 2, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_070 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_with_null_callback_fails(void** state)
{
    (void)state;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = receive_area, .length = sizeof(receive_area)};
    check_receive_rejected(false, &buffer, 1, true);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_071 */
static void async_socket_receive_async_with_null_context_succeeds(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    atomic_store(&null_context_calls, 0);
    atomic_store(&null_context_result, -1);
    uint8_t in[16];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    log_capture_start();
    assert_int_equal(async_socket_receive_async(s, &buffer, 1, on_receive_expect_null_context, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    peer_write_pattern(fds[1], 0, 16);
    TEST_WAIT_UNTIL(atomic_load(&null_context_calls) == 1, 2000);
    assert_int_equal(atomic_load(&null_context_result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&null_context_bytes), 16);
    env_end_with_socket(s, fds[1], env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_072 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_on_a_socket_that_is_not_open_fails(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    atomic_store(&unexpected_callbacks, 0);
    uint8_t in[16];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    log_capture_start();
    assert_int_not_equal(receive_marked(s, &buffer, 1, on_receive_unexpected, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    /* the refused receive does not take data that arrives once the socket is open */
    peer_write_pattern(fds[1], 0, 16);
    (void)open_socket_with(s);
    test_sleep_ms(20);
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &buffer, 1, on_receive_cb, &received), 0);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.bytes), 16);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    (void)close(fds[1]);
    env_end(env);
}


/* ---- notify: bad arguments ---- */

/* A notify with bad arguments fails (non-zero) with one error line and no callback, and nothing
 * is allocated. */
static void check_notify_rejected(bool null_socket, ASYNC_SOCKET_NOTIFY_IO_TYPE io_type, bool null_callback, bool open)
{
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = open ? open_socket(fds[0]) : async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    atomic_store(&unexpected_callbacks, 0);
    int64_t before = sys_fault_live_allocations();

    log_capture_start();
    int result = notify_marked(null_socket ? NULL : s, io_type, null_callback ? NULL : on_notify_unexpected, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    if (open)
    {
        /* argument errors are found before anything is allocated; a socket that is not open is
         * found with a record already reserved, which goes back to the socket's free list (and
         * is freed by destroy: env_end checks that) */
        assert_int_equal(sys_fault_live_allocations(), before);
    }
    /* the socket is writable and gets data: a notify that was accepted would complete */
    peer_write_pattern(fds[1], 0, 8);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    (void)close(fds[1]);
    env_end(env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_012 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_notify_io_async_with_null_socket_fails(void** state)
{
    (void)state;
    check_notify_rejected(true, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, false, true);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_013 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_notify_io_async_with_null_callback_fails(void** state)
{
    (void)state;
    check_notify_rejected(false, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, true, true);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_014 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_notify_io_async_with_an_invalid_io_type_fails(void** state)
{
    (void)state;
    check_notify_rejected(false, ASYNC_SOCKET_NOTIFY_IO_TYPE_INVALID, false, true);
    check_notify_rejected(false, (ASYNC_SOCKET_NOTIFY_IO_TYPE)(ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT + 1), false, true);
    check_notify_rejected(false, (ASYNC_SOCKET_NOTIFY_IO_TYPE)0x7FFFFFFF, false, true);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_015 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_notify_io_async_on_a_socket_that_is_not_open_fails(void** state)
{
    (void)state;
    check_notify_rejected(false, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, false, false);
    check_notify_rejected(false, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, false, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_016 */
static void async_socket_notify_io_async_with_null_context_succeeds(void** state)
{
    (void)state;
    ENV env;
    int fds[2];
    ASYNC_SOCKET_HANDLE s = env_begin_with_unix_socket(&env, fds);
    atomic_store(&null_context_calls, 0);
    atomic_store(&null_context_result, -1);
    log_capture_start();
    assert_int_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_expect_null_context, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    TEST_WAIT_UNTIL(atomic_load(&null_context_calls) == 1, 2000);
    assert_int_equal(atomic_load(&null_context_result), ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&null_context_calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(async_socket_send_async_with_null_socket_fails),
    cmocka_unit_test(async_socket_send_async_with_null_payload_fails),
    cmocka_unit_test(async_socket_send_async_with_zero_buffer_count_fails),
    cmocka_unit_test(async_socket_send_async_with_a_null_buffer_fails),
    cmocka_unit_test(async_socket_send_async_with_a_zero_length_buffer_fails),
    cmocka_unit_test(async_socket_send_async_with_lengths_over_uint32_max_fails),
    cmocka_unit_test(async_socket_send_async_with_null_callback_fails),
    cmocka_unit_test(async_socket_send_async_with_null_context_succeeds),
    cmocka_unit_test(async_socket_send_async_on_a_socket_that_is_not_open_returns_not_open),
    cmocka_unit_test(async_socket_receive_async_with_null_socket_fails),
    cmocka_unit_test(async_socket_receive_async_with_null_payload_fails),
    cmocka_unit_test(async_socket_receive_async_with_zero_buffer_count_fails),
    cmocka_unit_test(async_socket_receive_async_with_a_null_buffer_fails),
    cmocka_unit_test(async_socket_receive_async_with_a_zero_length_buffer_fails),
    cmocka_unit_test(async_socket_receive_async_with_lengths_over_uint32_max_fails),
    cmocka_unit_test(async_socket_receive_async_with_null_callback_fails),
    cmocka_unit_test(async_socket_receive_async_with_null_context_succeeds),
    cmocka_unit_test(async_socket_receive_async_on_a_socket_that_is_not_open_fails),
    cmocka_unit_test(async_socket_notify_io_async_with_null_socket_fails),
    cmocka_unit_test(async_socket_notify_io_async_with_null_callback_fails),
    cmocka_unit_test(async_socket_notify_io_async_with_an_invalid_io_type_fails),
    cmocka_unit_test(async_socket_notify_io_async_on_a_socket_that_is_not_open_fails),
    cmocka_unit_test(async_socket_notify_io_async_with_null_context_succeeds),
};

TEST_MAIN(tests)
