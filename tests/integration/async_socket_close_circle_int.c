/* Integration test: the circle case of close (99_009) still waits for a thread that is in a
 * syscall on the socket's fd, so that close never releases an fd number under a running
 * recv/send (which could then hit another connection that reused the number).
 *
 * Threads: worker D is Y's dispatcher, inside Y's receive hook (a syscall section); the test
 * thread B is inside Y (an inline send callback) and closes X; worker A is in X's receive
 * callback and closes Y. B waits for A, so A's close of Y would close a circle and does not wait
 * for B; it must still wait for D. */
#include "async_socket_data_helpers.h"
#include "c_pal/platform_linux.h"
#include "test_main.h"

typedef struct CIRCLE_TAG
{
    int y_fd;
    ASYNC_SOCKET_HANDLE x;
    ASYNC_SOCKET_HANDLE y;
    atomic_int d_inside;
    atomic_int d_returned;
    atomic_int d_errno;
    atomic_int a_inside;
    atomic_int b_closing;
    atomic_int a_closed_y;
    atomic_int d_done_when_a_closed;
    atomic_int y_receive_calls;
} CIRCLE;

static CIRCLE circle;

static int y_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)context;
    (void)async_socket;
    return (int)send(circle.y_fd, buf, len, MSG_NOSIGNAL);
}

/* D: the first call stays in the hook until B is closing X, then a while longer, as a slow
 * syscall would; it never waits for anything A does after its close. */
static int y_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)context;
    (void)async_socket;
    if (atomic_exchange(&circle.d_inside, 1) == 0)
    {
        /* bounded: a worker thread must not fail the cmocka test itself */
        for (int i = 0; i < 5000 && atomic_load(&circle.b_closing) == 0; i++)
        {
            test_sleep_ms(1);
        }
        test_sleep_ms(300);
    }
    int result = (int)recv(circle.y_fd, buf, len, MSG_DONTWAIT);
    int error = errno;
    if (result < 0 && error == EBADF)
    {
        atomic_store(&circle.d_errno, EBADF);
    }
    atomic_store(&circle.d_returned, 1);
    errno = error;
    return result;
}

static void on_y_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)context;
    (void)result;
    (void)bytes;
    (void)atomic_fetch_add(&circle.y_receive_calls, 1);
}

/* A: waits until B is blocked closing X, then closes Y. */
static void on_x_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)context;
    (void)result;
    (void)bytes;
    atomic_store(&circle.a_inside, 1);
    while (atomic_load(&circle.b_closing) == 0)
    {
        test_sleep_ms(1);
    }
    test_sleep_ms(100); /* B is now blocked in close(X), waiting for this callback */
    async_socket_close(circle.y);
    atomic_store(&circle.d_done_when_a_closed, atomic_load(&circle.d_returned));
    atomic_store(&circle.a_closed_y, 1);
}

/* B: inside Y (its inline send callback), closes X. */
static void on_y_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    (void)context;
    (void)result;
    atomic_store(&circle.b_closing, 1);
    async_socket_close(circle.x);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void circle_close_still_waits_for_a_syscall_on_the_fd(void** state)
{
    (void)state;
    assert_int_equal(platform_linux_set_worker_count(2), 0);
    LEAK_MARK mark;
    env_begin(&mark);
    int x_fds[2];
    int y_fds[2];
    make_pair(x_fds, 0, 0);
    make_pair(y_fds, 0, 0);
    circle.y_fd = y_fds[0];
    circle.x = open_socket(x_fds[0]);
    circle.y = open_socket_with(y_fds[0], y_on_send, NULL, y_on_recv, NULL);

    uint8_t y_buffer[16];
    uint8_t x_buffer[16];
    ASYNC_SOCKET_BUFFER y_payload = {.buffer = y_buffer, .length = sizeof(y_buffer)};
    ASYNC_SOCKET_BUFFER x_payload = {.buffer = x_buffer, .length = sizeof(x_buffer)};
    /* a custom transport tries its hooks on any readiness: D enters Y's receive hook */
    assert_int_equal(async_socket_receive_async(circle.y, &y_payload, 1, on_y_receive, NULL), 0);
    TEST_WAIT_UNTIL(atomic_load(&circle.d_inside) != 0, 3000);
    assert_int_equal(async_socket_receive_async(circle.x, &x_payload, 1, on_x_receive, NULL), 0);
    uint8_t byte = 1;
    assert_int_equal(send(x_fds[1], &byte, 1, 0), 1);
    TEST_WAIT_UNTIL(atomic_load(&circle.a_inside) != 0, 3000);

    ASYNC_SOCKET_BUFFER send_payload = {.buffer = &byte, .length = 1};
    assert_int_equal(async_socket_send_async(circle.y, &send_payload, 1, on_y_sent, NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    TEST_WAIT_UNTIL(atomic_load(&circle.a_closed_y) != 0, 5000);

    /* A's close of Y returned only after D had left its syscall, and D's fd was still open */
    assert_int_equal(atomic_load(&circle.d_done_when_a_closed), 1);
    assert_int_equal(atomic_load(&circle.d_errno), 0);
    TEST_WAIT_UNTIL(atomic_load(&circle.y_receive_calls) == 1, 3000);

    async_socket_destroy(circle.x);
    async_socket_destroy(circle.y);
    assert_int_equal(close(x_fds[1]), 0);
    assert_int_equal(close(y_fds[1]), 0);
    env_end(&mark);
    assert_int_equal(platform_linux_set_worker_count(0), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(circle_close_still_waits_for_a_syscall_on_the_fd),
};

TEST_MAIN(tests)
