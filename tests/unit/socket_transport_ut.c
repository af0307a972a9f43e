/* Unit tests for socket_transport: the real transport on socketpair(AF_UNIX, SOCK_STREAM) pairs and
 * loopback TCP pairs, with the fault-injecting sys seam for the error paths.
 *
 * Every test checks what a user sees: the result codes, the bytes on the other end (a pattern that
 * depends on the stream offset), errno where the header promises it, the log lines at ERROR level,
 * and that no allocation or fd is left behind. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/logger.h"
#include "c_pal/socket_transport.h"
#include "log_capture.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"

/* ---- helpers ---- */

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static void make_pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
}

static void set_nonblocking_raw(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    assert_true(flags >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
}

/* Whether fd has no data waiting. */
static bool nothing_to_read(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

static SOCKET_TRANSPORT_HANDLE create_transport(int fd)
{
    SOCKET_TRANSPORT_HANDLE transport = socket_transport_create_from_socket(fd);
    assert_non_null(transport);
    return transport;
}

static volatile sig_atomic_t sigpipe_count;

static void count_sigpipe(int signal_number)
{
    (void)signal_number;
    sigpipe_count++;
}

/* ---- create / destroy / disconnect ---- */

static void socket_transport_create_from_socket_with_invalid_socket_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_002 */
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start();
    SOCKET_TRANSPORT_HANDLE transport = socket_transport_create_from_socket(INVALID_SOCKET);
    assert_int_equal(log_capture_stop(), 1);
    assert_null(transport);
    assert_non_null(strstr(log_capture.last_error, "INVALID_SOCKET"));
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_create_from_socket_wraps_the_fd(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_002 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    log_capture_start();
    SOCKET_TRANSPORT_HANDLE transport = socket_transport_create_from_socket(fds[0]);
    assert_int_equal(log_capture_stop(), 0);
    assert_non_null(transport);
    assert_int_equal(socket_transport_get_underlying_socket(transport), fds[0]);
    assert_true(socket_transport_is_valid_socket(transport));
    /* create only wraps the fd: it does not change its flags */
    assert_int_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    socket_transport_destroy(transport);
    assert_false(fd_is_open(fds[0]));
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

/* A failed create leaves the fd with the caller: it is neither closed nor wrapped. */
static void socket_transport_create_from_socket_fails_cleanly_when_allocation_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_002 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    int64_t live = sys_fault_live_allocations();
    uint32_t nth;
    for (nth = 1; nth < 16; nth++)
    {
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, nth, ENOMEM);
        SOCKET_TRANSPORT_HANDLE transport = socket_transport_create_from_socket(fds[0]);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_non_null(transport);
            assert_int_equal(errors, 0);
            socket_transport_destroy(transport);
            break;
        }
        assert_null(transport);
        assert_int_equal(errors, 1);
        assert_true(fd_is_open(fds[0]));
        assert_int_equal(sys_fault_live_allocations(), live);
    }
    (void)printf("socket_transport_create_from_socket sweep: %u failure points\n", nth - 1);
    assert_true(nth >= 2);
    assert_false(fd_is_open(fds[0]));
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_destroy_closes_the_fd_and_the_peer_sees_the_end(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_003 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    log_capture_start();
    socket_transport_destroy(transport);
    assert_int_equal(log_capture_stop(), 0);
    assert_false(fd_is_open(fds[0]));
    uint8_t byte;
    assert_int_equal(recv(fds[1], &byte, 1, MSG_DONTWAIT), 0);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_destroy_with_null_logs_one_error(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_003 */
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start();
    socket_transport_destroy(NULL);
    assert_int_equal(log_capture_stop(), 1);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_disconnect_with_null_logs_one_error(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_003 */
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start();
    socket_transport_disconnect(NULL);
    assert_int_equal(log_capture_stop(), 1);
    test_baseline_assert_back_to(baseline);
}

/* Disconnect shuts down (the peer sees the end of the stream even when the fd was duplicated) and
 * closes the fd; a second disconnect and the final destroy do nothing more, so an fd number that
 * was reused meanwhile by somebody else is not closed. */
static void socket_transport_disconnect_is_idempotent(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_003 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    int duplicate = dup(fds[0]);
    assert_true(duplicate >= 0);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);

    log_capture_start();
    socket_transport_disconnect(transport);
    assert_int_equal(log_capture_stop(), 0);
    assert_false(fd_is_open(fds[0]));
    assert_false(socket_transport_is_valid_socket(transport));
    assert_int_equal(socket_transport_get_underlying_socket(transport), INVALID_SOCKET);
    /* shutdown, not only close: the duplicate keeps the socket alive, yet the peer sees EOF */
    uint8_t byte;
    assert_int_equal(recv(fds[1], &byte, 1, MSG_DONTWAIT), 0);

    /* the fd number is reused by an unrelated fd */
    int reused = dup(fds[1]);
    assert_int_equal(reused, fds[0]);

    log_capture_start();
    socket_transport_disconnect(transport);
    socket_transport_disconnect(transport);
    socket_transport_destroy(transport);
    assert_int_equal(log_capture_stop(), 0);
    assert_true(fd_is_open(reused));

    (void)close(reused);
    (void)close(duplicate);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

/* ---- is_valid_socket / get_underlying_socket ---- */

/* is_valid_socket is a query: NULL is simply "no socket", without an error line (async_socket asks
 * it about sockets created with INVALID_SOCKET and logs its own line). */
static void socket_transport_is_valid_socket_tracks_the_fd(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_004 */
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start();
    assert_false(socket_transport_is_valid_socket(NULL));
    assert_int_equal(log_capture_stop(), 0);

    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    assert_true(socket_transport_is_valid_socket(transport));
    socket_transport_disconnect(transport);
    assert_false(socket_transport_is_valid_socket(transport));
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_get_underlying_socket_returns_the_fd(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_004 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[1]);
    assert_int_equal(socket_transport_get_underlying_socket(transport), fds[1]);
    socket_transport_destroy(transport);
    (void)close(fds[0]);

    log_capture_start();
    assert_int_equal(socket_transport_get_underlying_socket(NULL), INVALID_SOCKET);
    assert_int_equal(log_capture_stop(), 1);
    test_baseline_assert_back_to(baseline);
}

/* ---- set_nonblocking ---- */

static void socket_transport_set_nonblocking_sets_o_nonblock_and_fd_cloexec(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_044 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds); /* blocking, not close-on-exec */
    assert_int_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    assert_int_equal(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);
    int other_flags = fcntl(fds[0], F_GETFL);

    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    log_capture_start();
    assert_int_equal(socket_transport_set_nonblocking(transport), 0);
    assert_int_equal(log_capture_stop(), 0);
    assert_int_not_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);
    /* the other status flags are kept */
    assert_int_equal(fcntl(fds[0], F_GETFL) & ~O_NONBLOCK, other_flags);
    /* a second call changes nothing and still succeeds */
    assert_int_equal(socket_transport_set_nonblocking(transport), 0);

    /* non-blocking for real: a read with nothing queued does not wait */
    uint8_t byte;
    uint32_t bytes = 99;
    SOCKET_BUFFER buffer = {.length = 1, .buffer = &byte};
    assert_int_equal(socket_transport_receive(transport, &buffer, 1, &bytes, 0, NULL), SOCKET_RECEIVE_WOULD_BLOCK);

    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_set_nonblocking_without_a_socket_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_044 */
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start();
    assert_int_not_equal(socket_transport_set_nonblocking(NULL), 0);
    assert_int_equal(log_capture_stop(), 1);

    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    socket_transport_disconnect(transport);
    log_capture_start();
    assert_int_not_equal(socket_transport_set_nonblocking(transport), 0);
    assert_int_equal(log_capture_stop(), 1);
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_set_nonblocking_fails_cleanly_when_fcntl_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_044 */
    TEST_BASELINE baseline = test_baseline_take();
    int errors_to_try[] = {EIO, ENOMEM};
    for (size_t e = 0; e < sizeof(errors_to_try) / sizeof(errors_to_try[0]); e++)
    {
        uint32_t nth;
        for (nth = 1; nth < 32; nth++)
        {
            int fds[2];
            make_pair(fds);
            SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
            log_capture_start();
            sys_fault_arm(SYS_FAULT_ALL, nth, errors_to_try[e]);
            int result = socket_transport_set_nonblocking(transport);
            bool fired = sys_fault_fired();
            sys_fault_disarm();
            int errors = log_capture_stop();
            if (fired)
            {
                assert_int_not_equal(result, 0);
                assert_int_equal(errors, 1);
                assert_true(socket_transport_is_valid_socket(transport));
                /* a later call without the fault finishes the job */
                assert_int_equal(socket_transport_set_nonblocking(transport), 0);
            }
            else
            {
                assert_int_equal(result, 0);
                assert_int_equal(errors, 0);
            }
            assert_int_not_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
            assert_int_not_equal(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);
            socket_transport_destroy(transport);
            (void)close(fds[1]);
            test_baseline_assert_back_to(baseline);
            if (!fired)
            {
                break;
            }
        }
        (void)printf("socket_transport_set_nonblocking sweep (errno %d): %u failure points\n", errors_to_try[e], nth - 1);
        assert_true(nth >= 3); /* at least one fallible step for each of the two flags */
    }
}

/* ---- send ---- */

static void socket_transport_send_gathers_several_buffers_in_order(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_040 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);

    uint8_t data[3000];
    test_fill_pattern(data, sizeof(data), 0);
    SOCKET_BUFFER buffers[3] = {
        {.length = 1000, .buffer = data},
        {.length = 1, .buffer = data + 1000},
        {.length = 1999, .buffer = data + 1001},
    };
    uint32_t written = 0;
    log_capture_start();
    assert_int_equal(socket_transport_send(transport, buffers, 3, &written, 0, NULL), SOCKET_SEND_OK);
    assert_int_equal(log_capture_stop(), 0);
    assert_int_equal(written, sizeof(data));

    uint8_t received[3000];
    test_read_exact(fds[1], received, sizeof(received));
    assert_int_equal(test_check_pattern(received, sizeof(received), 0), sizeof(received));
    assert_true(nothing_to_read(fds[1]));

    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

/* 64 buffers, the most one call takes. */
static void socket_transport_send_takes_64_buffers(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_040 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t data[64 * 10];
    test_fill_pattern(data, sizeof(data), 0);
    SOCKET_BUFFER buffers[64];
    for (int i = 0; i < 64; i++)
    {
        buffers[i].length = 10;
        buffers[i].buffer = data + i * 10;
    }
    uint32_t written = 0;
    assert_int_equal(socket_transport_send(transport, buffers, 64, &written, 0, NULL), SOCKET_SEND_OK);
    assert_int_equal(written, sizeof(data));
    uint8_t received[sizeof(data)];
    test_read_exact(fds[1], received, sizeof(received));
    assert_int_equal(test_check_pattern(received, sizeof(received), 0), sizeof(received));
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_send_reports_a_partial_write(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_040 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t data[500];
    test_fill_pattern(data, sizeof(data), 0);
    SOCKET_BUFFER buffers[2] = {{.length = 300, .buffer = data}, {.length = 200, .buffer = data + 300}};
    sys_fault_set_send_limit(350);
    uint32_t written = 0;
    SOCKET_SEND_RESULT result = socket_transport_send(transport, buffers, 2, &written, 0, NULL);
    sys_fault_set_send_limit(0);
    assert_int_equal(result, SOCKET_SEND_OK);
    assert_int_equal(written, 350);
    uint8_t received[350];
    test_read_exact(fds[1], received, sizeof(received));
    assert_int_equal(test_check_pattern(received, sizeof(received), 0), sizeof(received));
    assert_true(nothing_to_read(fds[1]));
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_send_would_block_on_a_full_socket(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_041 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    assert_int_equal(socket_transport_set_nonblocking(transport), 0);

    static uint8_t chunk[65536];
    test_fill_pattern(chunk, sizeof(chunk), 0);
    SOCKET_BUFFER buffer = {.length = sizeof(chunk), .buffer = chunk};
    uint64_t total = 0;
    SOCKET_SEND_RESULT result;
    uint32_t written;
    int rounds = 0;
    for (;;)
    {
        written = 12345;
        result = socket_transport_send(transport, &buffer, 1, &written, 0, NULL);
        if (result != SOCKET_SEND_OK)
        {
            break;
        }
        total += written;
        assert_true(++rounds < 10000);
    }
    assert_int_equal(result, SOCKET_SEND_WOULD_BLOCK);
    assert_int_equal(written, 0);
    assert_true(total > 0);

    /* the peer drains; then there is room again */
    static uint8_t sink[65536];
    uint64_t drained = 0;
    while (drained < total)
    {
        size_t want = (total - drained > sizeof(sink)) ? sizeof(sink) : (size_t)(total - drained);
        test_read_exact(fds[1], sink, want);
        drained += want;
    }
    assert_int_equal(socket_transport_send(transport, &buffer, 1, &written, 0, NULL), SOCKET_SEND_OK);
    assert_true(written > 0);

    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_send_after_the_peer_closed_reports_shutdown_without_sigpipe(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_040 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_041 */
    TEST_BASELINE baseline = test_baseline_take();
    struct sigaction action = {.sa_handler = count_sigpipe};
    struct sigaction previous;
    (void)sigemptyset(&action.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &action, &previous), 0);
    sigpipe_count = 0;

    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    (void)close(fds[1]);
    uint8_t data[10] = {0};
    SOCKET_BUFFER buffer = {.length = sizeof(data), .buffer = data};
    uint32_t written = 77;
    log_capture_start();
    errno = 0;
    SOCKET_SEND_RESULT result = socket_transport_send(transport, &buffer, 1, &written, 0, NULL);
    int error = errno;
    assert_int_equal(log_capture_stop(), 0);
    assert_int_equal(result, SOCKET_SEND_SHUTDOWN);
    /* errno is kept for SHUTDOWN */
    assert_int_equal(error, EPIPE);
    assert_int_equal(sigpipe_count, 0);

    socket_transport_destroy(transport);
    assert_int_equal(sigaction(SIGPIPE, &previous, NULL), 0);
    test_baseline_assert_back_to(baseline);
}

/* The result each injected sendmsg errno maps to; EINTR is retried and the send goes through. */
static void socket_transport_send_maps_errors(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_041 */
    TEST_BASELINE baseline = test_baseline_take();
    struct
    {
        int error;
        SOCKET_SEND_RESULT result;
    } cases[] = {
        {EAGAIN, SOCKET_SEND_WOULD_BLOCK},
        {EWOULDBLOCK, SOCKET_SEND_WOULD_BLOCK},
        {ECONNRESET, SOCKET_SEND_SHUTDOWN},
        {EPIPE, SOCKET_SEND_SHUTDOWN},
        {ENOTCONN, SOCKET_SEND_SHUTDOWN},
        {EIO, SOCKET_SEND_FAILED},
        {ENOMEM, SOCKET_SEND_FAILED},
        {ENOBUFS, SOCKET_SEND_FAILED},
        {EINTR, SOCKET_SEND_OK},
    };
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t data[16];
    test_fill_pattern(data, sizeof(data), 0);
    SOCKET_BUFFER buffer = {.length = sizeof(data), .buffer = data};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
        uint32_t written = 99;
        sys_fault_arm(SYS_FAULT_SEND, 1, cases[i].error);
        SOCKET_SEND_RESULT result = socket_transport_send(transport, &buffer, 1, &written, 0, NULL);
        int error = errno;
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        assert_true(fired);
        assert_int_equal(result, cases[i].result);
        if (result == SOCKET_SEND_SHUTDOWN || result == SOCKET_SEND_FAILED)
        {
            assert_int_equal(error, cases[i].error);
        }
        if (result == SOCKET_SEND_WOULD_BLOCK)
        {
            assert_int_equal(written, 0);
        }
        if (result == SOCKET_SEND_OK)
        {
            assert_int_equal(written, sizeof(data));
            uint8_t received[sizeof(data)];
            test_read_exact(fds[1], received, sizeof(received));
            assert_int_equal(test_check_pattern(received, sizeof(received), 0), sizeof(received));
        }
    }
    assert_true(nothing_to_read(fds[1]));
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_send_fault_sweep(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    int errors_to_try[] = {EIO, ENOMEM};
    for (size_t e = 0; e < 2; e++)
    {
        int fds[2];
        make_pair(fds);
        SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
        uint8_t data[100];
        test_fill_pattern(data, sizeof(data), 0);
        SOCKET_BUFFER buffers[2] = {{.length = 60, .buffer = data}, {.length = 40, .buffer = data + 60}};
        uint32_t nth;
        for (nth = 1; nth < 16; nth++)
        {
            uint32_t written = 0;
            sys_fault_arm(SYS_FAULT_ALL, nth, errors_to_try[e]);
            SOCKET_SEND_RESULT result = socket_transport_send(transport, buffers, 2, &written, 0, NULL);
            bool fired = sys_fault_fired();
            sys_fault_disarm();
            if (!fired)
            {
                assert_int_equal(result, SOCKET_SEND_OK);
                assert_int_equal(written, 100);
                break;
            }
            assert_int_equal(result, SOCKET_SEND_FAILED);
            assert_true(nothing_to_read(fds[1]));
            assert_int_equal(sys_fault_live_allocations(), baseline.allocations + 1);
        }
        (void)printf("socket_transport_send sweep (errno %d): %u failure points\n", errors_to_try[e], nth - 1);
        assert_true(nth >= 2);
        uint8_t received[100];
        test_read_exact(fds[1], received, sizeof(received));
        assert_int_equal(test_check_pattern(received, sizeof(received), 0), sizeof(received));
        socket_transport_destroy(transport);
        (void)close(fds[1]);
        test_baseline_assert_back_to(baseline);
    }
}

/* Bad input: SOCKET_SEND_INVALID_ARG, one error line, nothing sent. */
static void socket_transport_send_with_bad_arguments_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_043 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t data[10] = {1, 2, 3};
    uint32_t written = 0;
    SOCKET_BUFFER good = {.length = sizeof(data), .buffer = data};
    SOCKET_BUFFER null_buffer[2] = {good, {.length = 5, .buffer = NULL}};
    SOCKET_BUFFER empty_buffer[2] = {good, {.length = 0, .buffer = data}};
    SOCKET_BUFFER huge[2] = {{.length = UINT32_MAX, .buffer = data}, {.length = 1, .buffer = data}};
    SOCKET_BUFFER many[65];
    for (int i = 0; i < 65; i++)
    {
        many[i] = good;
    }
    struct
    {
        SOCKET_TRANSPORT_HANDLE transport;
        const SOCKET_BUFFER* payload;
        uint32_t count;
        uint32_t* written;
    } cases[] = {
        {NULL, &good, 1, &written},
        {transport, NULL, 1, &written},
        {transport, &good, 0, &written},
        {transport, many, 65, &written},
        {transport, &good, 1, NULL},
        {transport, null_buffer, 2, &written},
        {transport, empty_buffer, 2, &written},
        {transport, huge, 2, &written},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
        log_capture_start();
        SOCKET_SEND_RESULT result = socket_transport_send(cases[i].transport, cases[i].payload, cases[i].count, cases[i].written, 0, NULL);
        int errors = log_capture_stop();
        assert_int_equal(result, SOCKET_SEND_INVALID_ARG);
        assert_int_equal(errors, 1);
    }
    assert_true(nothing_to_read(fds[1]));
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

/* ---- receive ---- */

static void socket_transport_receive_scatters_over_several_buffers_in_order(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_042 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t data[1000];
    test_fill_pattern(data, sizeof(data), 0);
    assert_int_equal(write(fds[1], data, sizeof(data)), (ssize_t)sizeof(data));

    uint8_t a[300], b[1], c[800];
    memset(a, 0, sizeof(a));
    memset(c, 0, sizeof(c));
    SOCKET_BUFFER buffers[3] = {{.length = sizeof(a), .buffer = a}, {.length = sizeof(b), .buffer = b}, {.length = sizeof(c), .buffer = c}};
    uint32_t received = 0;
    log_capture_start();
    assert_int_equal(socket_transport_receive(transport, buffers, 3, &received, 0, NULL), SOCKET_RECEIVE_OK);
    assert_int_equal(log_capture_stop(), 0);
    assert_int_equal(received, 1000);
    assert_int_equal(test_check_pattern(a, sizeof(a), 0), sizeof(a));
    assert_int_equal(test_check_pattern(b, sizeof(b), 300), sizeof(b));
    assert_int_equal(test_check_pattern(c, 699, 301), 699);
    for (size_t i = 699; i < sizeof(c); i++)
    {
        assert_int_equal(c[i], 0);
    }
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_receive_would_block_on_an_empty_socket(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_042 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    set_nonblocking_raw(fds[0]);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t buffer_bytes[10];
    SOCKET_BUFFER buffer = {.length = sizeof(buffer_bytes), .buffer = buffer_bytes};
    uint32_t received = 55;
    log_capture_start();
    assert_int_equal(socket_transport_receive(transport, &buffer, 1, &received, 0, NULL), SOCKET_RECEIVE_WOULD_BLOCK);
    assert_int_equal(log_capture_stop(), 0);
    assert_int_equal(received, 0);
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_receive_after_the_peer_closed_reports_shutdown(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_042 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t data[5] = {1, 2, 3, 4, 5};
    assert_int_equal(write(fds[1], data, sizeof(data)), 5);
    (void)close(fds[1]);

    uint8_t got[10];
    SOCKET_BUFFER buffer = {.length = sizeof(got), .buffer = got};
    uint32_t received = 0;
    /* the bytes queued before the close come first */
    assert_int_equal(socket_transport_receive(transport, &buffer, 1, &received, 0, NULL), SOCKET_RECEIVE_OK);
    assert_int_equal(received, 5);
    assert_memory_equal(got, data, 5);
    received = 9;
    assert_int_equal(socket_transport_receive(transport, &buffer, 1, &received, 0, NULL), SOCKET_RECEIVE_SHUTDOWN);
    assert_int_equal(received, 0);
    socket_transport_destroy(transport);
    test_baseline_assert_back_to(baseline);
}

/* A reset connection (the peer closed with unread data) is SHUTDOWN too. */
static void socket_transport_receive_after_a_reset_reports_shutdown(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_042 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    assert_int_equal(test_tcp_pair(fds, 0, 0), 0);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
    (void)close(fds[1]); /* RST */

    uint8_t got[10];
    SOCKET_BUFFER buffer = {.length = sizeof(got), .buffer = got};
    uint32_t received = 9;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    errno = 0;
    assert_int_equal(socket_transport_receive(transport, &buffer, 1, &received, 0, NULL), SOCKET_RECEIVE_SHUTDOWN);
    assert_int_equal(errno, ECONNRESET);
    assert_int_equal(received, 0);
    socket_transport_destroy(transport);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_receive_maps_errors(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_042 */
    TEST_BASELINE baseline = test_baseline_take();
    struct
    {
        int error;
        SOCKET_RECEIVE_RESULT result;
    } cases[] = {
        {EAGAIN, SOCKET_RECEIVE_WOULD_BLOCK},
        {EWOULDBLOCK, SOCKET_RECEIVE_WOULD_BLOCK},
        {ECONNRESET, SOCKET_RECEIVE_SHUTDOWN},
        {EIO, SOCKET_RECEIVE_ERROR},
        {ENOMEM, SOCKET_RECEIVE_ERROR},
        {EINTR, SOCKET_RECEIVE_OK},
    };
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t got[8];
    SOCKET_BUFFER buffer = {.length = sizeof(got), .buffer = got};
    uint64_t offset = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
        uint8_t data[8];
        test_fill_pattern(data, sizeof(data), offset);
        assert_int_equal(write(fds[1], data, sizeof(data)), (ssize_t)sizeof(data));
        uint32_t received = 99;
        sys_fault_arm(SYS_FAULT_RECV, 1, cases[i].error);
        SOCKET_RECEIVE_RESULT result = socket_transport_receive(transport, &buffer, 1, &received, 0, NULL);
        int error = errno;
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        assert_true(fired);
        assert_int_equal(result, cases[i].result);
        if (result == SOCKET_RECEIVE_OK)
        {
            /* EINTR was retried */
            assert_int_equal(received, sizeof(data));
            assert_int_equal(test_check_pattern(got, sizeof(got), offset), sizeof(got));
        }
        else
        {
            assert_int_equal(received, 0);
            assert_int_equal(error, cases[i].error);
            /* nothing was consumed: the bytes are still there */
            assert_int_equal(socket_transport_receive(transport, &buffer, 1, &received, 0, NULL), SOCKET_RECEIVE_OK);
            assert_int_equal(received, sizeof(data));
            assert_int_equal(test_check_pattern(got, sizeof(got), offset), sizeof(got));
        }
        offset += sizeof(data);
    }
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_receive_fault_sweep(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    int errors_to_try[] = {EIO, ENOMEM};
    for (size_t e = 0; e < 2; e++)
    {
        int fds[2];
        make_pair(fds);
        SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
        uint8_t data[100];
        test_fill_pattern(data, sizeof(data), 0);
        assert_int_equal(write(fds[1], data, sizeof(data)), (ssize_t)sizeof(data));
        uint8_t a[30], b[70];
        SOCKET_BUFFER buffers[2] = {{.length = 30, .buffer = a}, {.length = 70, .buffer = b}};
        uint32_t nth;
        for (nth = 1; nth < 16; nth++)
        {
            uint32_t received = 0;
            sys_fault_arm(SYS_FAULT_ALL, nth, errors_to_try[e]);
            SOCKET_RECEIVE_RESULT result = socket_transport_receive(transport, buffers, 2, &received, 0, NULL);
            bool fired = sys_fault_fired();
            sys_fault_disarm();
            if (!fired)
            {
                assert_int_equal(result, SOCKET_RECEIVE_OK);
                assert_int_equal(received, 100);
                break;
            }
            assert_int_equal(result, SOCKET_RECEIVE_ERROR);
            assert_int_equal(received, 0);
            assert_int_equal(sys_fault_live_allocations(), baseline.allocations + 1);
        }
        (void)printf("socket_transport_receive sweep (errno %d): %u failure points\n", errors_to_try[e], nth - 1);
        assert_true(nth >= 2);
        assert_int_equal(test_check_pattern(a, 30, 0), 30);
        assert_int_equal(test_check_pattern(b, 70, 30), 70);
        socket_transport_destroy(transport);
        (void)close(fds[1]);
        test_baseline_assert_back_to(baseline);
    }
}

static void socket_transport_receive_with_bad_arguments_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_043 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    uint8_t data[4] = {9, 8, 7, 6};
    assert_int_equal(write(fds[1], data, sizeof(data)), 4);

    uint8_t got[10];
    uint32_t received = 0;
    SOCKET_BUFFER good = {.length = sizeof(got), .buffer = got};
    SOCKET_BUFFER null_buffer[2] = {good, {.length = 5, .buffer = NULL}};
    SOCKET_BUFFER empty_buffer[2] = {good, {.length = 0, .buffer = got}};
    SOCKET_BUFFER huge[2] = {{.length = UINT32_MAX, .buffer = got}, {.length = 1, .buffer = got}};
    SOCKET_BUFFER many[65];
    for (int i = 0; i < 65; i++)
    {
        many[i] = good;
    }
    struct
    {
        SOCKET_TRANSPORT_HANDLE transport;
        SOCKET_BUFFER* payload;
        uint32_t count;
        uint32_t* received;
    } cases[] = {
        {NULL, &good, 1, &received},
        {transport, NULL, 1, &received},
        {transport, &good, 0, &received},
        {transport, many, 65, &received},
        {transport, &good, 1, NULL},
        {transport, null_buffer, 2, &received},
        {transport, empty_buffer, 2, &received},
        {transport, huge, 2, &received},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    {
        log_capture_start();
        SOCKET_RECEIVE_RESULT result = socket_transport_receive(cases[i].transport, cases[i].payload, cases[i].count, cases[i].received, 0, NULL);
        int errors = log_capture_stop();
        assert_int_equal(result, SOCKET_RECEIVE_INVALID_ARG);
        assert_int_equal(errors, 1);
    }
    /* nothing was consumed */
    assert_int_equal(socket_transport_receive(transport, &good, 1, &received, 0, NULL), SOCKET_RECEIVE_OK);
    assert_int_equal(received, 4);
    assert_memory_equal(got, data, 4);
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

/* Send and receive after disconnect fail without touching a (possibly reused) fd number: c-pal's
 * ERROR results, one ERROR line each. */
static void socket_transport_send_and_receive_after_disconnect_fail(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_053 */
    TEST_BASELINE baseline = test_baseline_take();
    int fds[2];
    make_pair(fds);
    SOCKET_TRANSPORT_HANDLE transport = create_transport(fds[0]);
    socket_transport_disconnect(transport);
    uint8_t data[4] = {0};
    SOCKET_BUFFER buffer = {.length = sizeof(data), .buffer = data};
    uint32_t bytes = 0;
    log_capture_start();
    SOCKET_SEND_RESULT send_result = socket_transport_send(transport, &buffer, 1, &bytes, 0, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_equal(send_result, SOCKET_SEND_ERROR);
    log_capture_start();
    SOCKET_RECEIVE_RESULT receive_result = socket_transport_receive(transport, &buffer, 1, &bytes, 0, NULL);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_equal(receive_result, SOCKET_RECEIVE_ERROR);
    /* a transport that never had a socket is the same */
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    log_capture_start();
    assert_int_equal(socket_transport_send(client, &buffer, 1, &bytes, 0, NULL), SOCKET_SEND_ERROR);
    assert_int_equal(socket_transport_receive(client, &buffer, 1, &bytes, 0, NULL), SOCKET_RECEIVE_ERROR);
    ASSERT_ERROR_LINES(log_capture_stop(), 2);
    socket_transport_destroy(client);
    socket_transport_destroy(transport);
    (void)close(fds[1]);
    test_baseline_assert_back_to(baseline);
}

/* c-pal's socket_transport.h, as constants: a program compiled against c-pal's header passes and
 * reads these values, so each must be the same here. */
static void socket_transport_enums_have_c_pal_values(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_054 */
    assert_int_equal(SOCKET_SEND_INVALID_ARG, 1);
    assert_int_equal(SOCKET_SEND_OK, 2);
    assert_int_equal(SOCKET_SEND_ERROR, 3);
    assert_int_equal(SOCKET_SEND_FAILED, 4);
    assert_int_equal(SOCKET_SEND_SHUTDOWN, 5);
    assert_int_equal(SOCKET_RECEIVE_INVALID_ARG, 1);
    assert_int_equal(SOCKET_RECEIVE_OK, 2);
    assert_int_equal(SOCKET_RECEIVE_WOULD_BLOCK, 3);
    assert_int_equal(SOCKET_RECEIVE_ERROR, 4);
    assert_int_equal(SOCKET_RECEIVE_SHUTDOWN, 5);
    assert_int_equal(SOCKET_ACCEPT_OK, 1);
    assert_int_equal(SOCKET_ACCEPT_ERROR, 2);
    assert_int_equal(SOCKET_ACCEPT_PORT_EXHAUSTION, 3);
    assert_int_equal(SOCKET_ACCEPT_INPROGRESS, 4);
    assert_int_equal(SOCKET_ACCEPT_NO_CONNECTION, 5);
    assert_int_equal(SOCKET_BINDING, 1);
    assert_int_equal(SOCKET_CLIENT, 2);
    assert_int_equal(ADDRESS_INET, 1);
    assert_int_equal(ADDRESS_INET_6, 2);
    assert_int_equal(ADDRESS_NETBIOS, 3);
    assert_int_equal(MAX_GET_HOST_NAME_LEN, 256);
    assert_int_equal(MAX_LOCAL_ADDRESS_LEN, 22);
    /* the addition comes after c-pal's values */
    assert_int_equal(SOCKET_SEND_WOULD_BLOCK, 6);
    /* the structs c-pal's callers fill in */
    SOCKET_BUFFER buffer = {.length = 7, .buffer = NULL};
    assert_int_equal(offsetof(SOCKET_BUFFER, length), 0);
    assert_int_equal(sizeof(buffer.buffer), sizeof(unsigned char*));
    assert_int_equal(offsetof(LOCAL_ADDRESS, address), sizeof(ADDRESS_TYPE));
    assert_int_equal(sizeof(((LOCAL_ADDRESS*)NULL)->address), MAX_LOCAL_ADDRESS_LEN);
    /* and the to-string functions macro-utils' MU_ENUM_TO_STRING calls */
    assert_string_equal(MU_SOCKET_SEND_RESULT_ToString(SOCKET_SEND_FAILED), "SOCKET_SEND_FAILED");
    assert_string_equal(MU_SOCKET_RECEIVE_RESULT_ToString(SOCKET_RECEIVE_SHUTDOWN), "SOCKET_RECEIVE_SHUTDOWN");
    assert_string_equal(MU_SOCKET_ACCEPT_RESULT_ToString(SOCKET_ACCEPT_NO_CONNECTION), "SOCKET_ACCEPT_NO_CONNECTION");
    assert_string_equal(MU_SOCKET_TYPE_ToString(SOCKET_BINDING), "SOCKET_BINDING");
    assert_string_equal(MU_ADDRESS_TYPE_ToString(ADDRESS_INET_6), "ADDRESS_INET_6");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(socket_transport_create_from_socket_with_invalid_socket_fails),
    cmocka_unit_test(socket_transport_create_from_socket_wraps_the_fd),
    cmocka_unit_test(socket_transport_create_from_socket_fails_cleanly_when_allocation_fails),
    cmocka_unit_test(socket_transport_destroy_closes_the_fd_and_the_peer_sees_the_end),
    cmocka_unit_test(socket_transport_destroy_with_null_logs_one_error),
    cmocka_unit_test(socket_transport_disconnect_with_null_logs_one_error),
    cmocka_unit_test(socket_transport_disconnect_is_idempotent),
    cmocka_unit_test(socket_transport_is_valid_socket_tracks_the_fd),
    cmocka_unit_test(socket_transport_get_underlying_socket_returns_the_fd),
    cmocka_unit_test(socket_transport_set_nonblocking_sets_o_nonblock_and_fd_cloexec),
    cmocka_unit_test(socket_transport_set_nonblocking_without_a_socket_fails),
    cmocka_unit_test(socket_transport_set_nonblocking_fails_cleanly_when_fcntl_fails),
    cmocka_unit_test(socket_transport_send_gathers_several_buffers_in_order),
    cmocka_unit_test(socket_transport_send_takes_64_buffers),
    cmocka_unit_test(socket_transport_send_reports_a_partial_write),
    cmocka_unit_test(socket_transport_send_would_block_on_a_full_socket),
    cmocka_unit_test(socket_transport_send_after_the_peer_closed_reports_shutdown_without_sigpipe),
    cmocka_unit_test(socket_transport_send_maps_errors),
    cmocka_unit_test(socket_transport_send_fault_sweep),
    cmocka_unit_test(socket_transport_send_with_bad_arguments_fails),
    cmocka_unit_test(socket_transport_receive_scatters_over_several_buffers_in_order),
    cmocka_unit_test(socket_transport_receive_would_block_on_an_empty_socket),
    cmocka_unit_test(socket_transport_receive_after_the_peer_closed_reports_shutdown),
    cmocka_unit_test(socket_transport_receive_after_a_reset_reports_shutdown),
    cmocka_unit_test(socket_transport_receive_maps_errors),
    cmocka_unit_test(socket_transport_receive_fault_sweep),
    cmocka_unit_test(socket_transport_receive_with_bad_arguments_fails),
    cmocka_unit_test(socket_transport_send_and_receive_after_disconnect_fail),
    cmocka_unit_test(socket_transport_enums_have_c_pal_values),
};

TEST_MAIN(tests)
