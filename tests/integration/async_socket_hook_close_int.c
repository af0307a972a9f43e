/* Integration tests: async_socket_close called from inside a custom transport hook, as a TLS
 * layer that meets a fatal alert would do. The I/O that called the hook must then leave the
 * operation alone (close took it) and call the transport no more. */
#include "async_socket_data_helpers.h"
#include "test_main.h"

typedef struct HOOK_TAG
{
    int fd;
    atomic_int calls_after_close;
    atomic_int closed;
} HOOK;

static HOOK hook;

typedef struct CALLS_TAG
{
    atomic_int count;
    atomic_int last_result;
} CALLS;

static CALLS calls;

static void count_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)context;
    (void)bytes;
    atomic_store(&calls.last_result, (int)result);
    (void)atomic_fetch_add(&calls.count, 1);
}

static void count_send(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    (void)context;
    atomic_store(&calls.last_result, (int)result);
    (void)atomic_fetch_add(&calls.count, 1);
}

static int plain_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)context;
    (void)async_socket;
    return (int)send(hook.fd, buf, len, MSG_NOSIGNAL);
}

static int plain_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)context;
    (void)async_socket;
    return (int)recv(hook.fd, buf, len, 0);
}

/* Once the test's byte has arrived, reads it, then closes the socket from inside the hook and
 * reports a reset. Before that it says "no data": for a custom transport any readiness (the fd is
 * writable at once) lets receives try, so a worker may call the hook before the test has posted
 * its second receive, and closing then would refuse that post. */
static int closing_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)context;
    if (atomic_load(&hook.closed) != 0)
    {
        (void)atomic_fetch_add(&hook.calls_after_close, 1);
    }
    if (recv(hook.fd, buf, len, MSG_DONTWAIT) <= 0)
    {
        errno = EAGAIN;
        return -1;
    }
    atomic_store(&hook.closed, 1);
    async_socket_close(async_socket);
    errno = ECONNRESET;
    return -1;
}

/* Closes the socket from inside the hook, then says the fd is full. */
static int closing_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)context;
    (void)buf;
    (void)len;
    if (atomic_load(&hook.closed) != 0)
    {
        (void)atomic_fetch_add(&hook.calls_after_close, 1);
    }
    atomic_store(&hook.closed, 1);
    async_socket_close(async_socket);
    errno = EAGAIN;
    return -1;
}

static void reset_state(int fd)
{
    hook.fd = fd;
    atomic_store(&hook.calls_after_close, 0);
    atomic_store(&hook.closed, 0);
    atomic_store(&calls.count, 0);
    atomic_store(&calls.last_result, -1);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void close_inside_the_receive_hook_abandons_the_receive_once(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    reset_state(fds[0]);
    ASYNC_SOCKET_HANDLE socket = open_socket_with(fds[0], plain_send, NULL, closing_recv, NULL);
    uint8_t buffers[2][16];
    ASYNC_SOCKET_BUFFER first = {.buffer = buffers[0], .length = sizeof(buffers[0])};
    ASYNC_SOCKET_BUFFER second = {.buffer = buffers[1], .length = sizeof(buffers[1])};
    assert_int_equal(async_socket_receive_async(socket, &first, 1, count_receive, NULL), 0);
    assert_int_equal(async_socket_receive_async(socket, &second, 1, count_receive, NULL), 0);

    uint8_t byte = 1;
    assert_int_equal(send(fds[1], &byte, 1, 0), 1);
    TEST_WAIT_UNTIL(atomic_load(&calls.count) == 2, 3000);
    test_sleep_ms(50);
    /* each receive called back once, ABANDONED by the close; the hook was not called again */
    assert_int_equal(atomic_load(&calls.count), 2);
    assert_int_equal(atomic_load(&calls.last_result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&hook.calls_after_close), 0);

    env_end_with_socket(socket, fds[1], &mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void close_inside_the_send_hook_fails_the_send_without_a_callback(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    reset_state(fds[0]);
    ASYNC_SOCKET_HANDLE socket = open_socket_with(fds[0], closing_send, NULL, plain_recv, NULL);
    uint8_t payload_bytes[2][8] = {{0}};
    ASYNC_SOCKET_BUFFER payload[2] = {
        {.buffer = payload_bytes[0], .length = sizeof(payload_bytes[0])},
        {.buffer = payload_bytes[1], .length = sizeof(payload_bytes[1])},
    };
    /* close has returned inside the hook: the send must not be kept, nor called back later */
    assert_int_equal(async_socket_send_async(socket, payload, 2, count_send, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    test_sleep_ms(50);
    assert_int_equal(atomic_load(&calls.count), 0);
    assert_int_equal(atomic_load(&hook.calls_after_close), 0);

    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    /* the record reserved for the send went back: nothing leaked */
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(close_inside_the_receive_hook_abandons_the_receive_once),
    cmocka_unit_test(close_inside_the_send_hook_fails_the_send_without_a_callback),
};

TEST_MAIN(tests)
