/* Integration tests for what the kernel's count of queued bytes (TCP_INQ) decides on the receive
 * path, over real loopback TCP: TCP urgent data does not stall the stream and stays in it, in
 * its place (SO_OOBINLINE); a receive sized to the bytes expected costs one recvmsg, not a
 * second one that would only say EAGAIN; an end of stream right after a read that filled its
 * buffer is still reported.
 *
 * Every test checks the bytes, counts callbacks and checks that no library allocation and no fd
 * outlives it. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"
#include "async_socket_data_helpers.h"

/* The peer's urgent sequence: a run, one byte sent with MSG_OOB, another run. */
static const char urgent_stream[] = "AAAABCCCC";
#define URGENT_LENGTH 9u

static void send_with_urgent_byte(int peer)
{
    assert_int_equal(send(peer, "AAAA", 4, MSG_NOSIGNAL), 4);
    assert_int_equal(send(peer, "B", 1, MSG_NOSIGNAL | MSG_OOB), 1);
    assert_int_equal(send(peer, "CCCC", 4, MSG_NOSIGNAL), 4);
}

/* Waits until the peer's bytes are all in the local receive queue: the peer has nothing left
 * unacknowledged (SIOCOUTQ). FIONREAD cannot tell: without SO_OOBINLINE it counts only up to
 * the urgent mark. */
static void wait_until_acknowledged(int peer)
{
    int unacknowledged = -1;
    TEST_WAIT_UNTIL(ioctl(peer, SIOCOUTQ, &unacknowledged) == 0 && unacknowledged == 0, 2000);
}

/* Receives one at a time into a 64-byte buffer until `total` bytes came, and returns them in
 * `out`; fails when a receive does not complete (the stall of issue 11 item 1). */
static void receive_total(ASYNC_SOCKET_HANDLE socket, char* out, uint32_t total, uint32_t* receives)
{
    uint32_t have = 0;
    *receives = 0;
    while (have < total)
    {
        uint8_t buffer[64];
        uint32_t bytes = 0;
        assert_int_equal(receive_once(socket, buffer, sizeof(buffer), &bytes), ASYNC_SOCKET_RECEIVE_OK);
        assert_true(bytes > 0 && have + bytes <= total);
        (void)memcpy(out + have, buffer, bytes);
        have += bytes;
        (*receives)++;
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_150 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_151 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_152 */
static void urgent_byte_queued_before_the_receive_is_delivered_in_place_and_the_rest_follows(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);

    /* all nine bytes are queued before any read, so the first read stops at the urgent mark */
    send_with_urgent_byte(fds[1]);
    wait_until_acknowledged(fds[1]);

    char got[URGENT_LENGTH + 1] = {0};
    uint32_t receives;
    receive_total(socket, got, URGENT_LENGTH, &receives);
    assert_string_equal(got, urgent_stream);
    assert_int_equal(bytes_waiting(fds[0]), 0);

    /* the stream goes on after it */
    assert_int_equal(send(fds[1], "DD", 2, MSG_NOSIGNAL), 2);
    uint8_t tail[8];
    uint32_t bytes = 0;
    assert_int_equal(receive_once(socket, tail, sizeof(tail), &bytes), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(bytes, 2);
    assert_memory_equal(tail, "DD", 2);

    env_end_with_socket(socket, fds[1], &mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_151 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_152 */
static void urgent_byte_arriving_under_a_pending_receive_is_delivered_in_place(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);

    /* a receive waits while the bytes arrive; whichever pieces its read sees, every byte must
     * come, in order, the urgent one among them */
    ONE_RX one;
    uint8_t first[64];
    one_rx_post(socket, &one, first, sizeof(first));
    send_with_urgent_byte(fds[1]);
    TEST_WAIT_UNTIL(atomic_load(&one.done) != 0, 5000);
    assert_int_equal(atomic_load(&one.result), ASYNC_SOCKET_RECEIVE_OK);
    uint32_t have = atomic_load(&one.bytes);
    assert_true(have > 0 && have <= URGENT_LENGTH);

    char got[URGENT_LENGTH + 1] = {0};
    (void)memcpy(got, first, have);
    uint32_t receives;
    if (have < URGENT_LENGTH)
    {
        receive_total(socket, got + have, URGENT_LENGTH - have, &receives);
    }
    assert_string_equal(got, urgent_stream);

    env_end_with_socket(socket, fds[1], &mark);
}

/* Two receives posted together are filled by one scattered recvmsg (99_027); when that read
 * stops at the urgent mark, the count still says bytes are queued, and the second receive gets
 * them. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_152 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_027 */
static void urgent_byte_under_receives_posted_together_is_delivered_in_place(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    send_with_urgent_byte(fds[1]);
    wait_until_acknowledged(fds[1]);

    ONE_RX first;
    ONE_RX second;
    uint8_t first_buffer[64];
    uint8_t second_buffer[64];
    one_rx_post(socket, &first, first_buffer, sizeof(first_buffer));
    one_rx_post(socket, &second, second_buffer, sizeof(second_buffer));
    TEST_WAIT_UNTIL(atomic_load(&first.done) != 0, 5000);
    assert_int_equal(atomic_load(&first.result), ASYNC_SOCKET_RECEIVE_OK);
    uint32_t have = atomic_load(&first.bytes);
    char got[URGENT_LENGTH + 1] = {0};
    assert_true(have > 0 && have <= URGENT_LENGTH);
    (void)memcpy(got, first_buffer, have);
    if (have < URGENT_LENGTH)
    {
        TEST_WAIT_UNTIL(atomic_load(&second.done) != 0, 5000);
        assert_int_equal(atomic_load(&second.result), ASYNC_SOCKET_RECEIVE_OK);
        uint32_t more = atomic_load(&second.bytes);
        assert_int_equal(have + more, URGENT_LENGTH);
        (void)memcpy(got + have, second_buffer, more);
    }
    assert_string_equal(got, urgent_stream);

    env_end_with_socket(socket, fds[1], &mark);
}

/* The decision of 99_151, seen from outside: the fd keeps urgent data inline, so there is no
 * out-of-band byte to read apart from the stream (recv(MSG_OOB) says EINVAL). */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_151 */
static void open_keeps_urgent_data_in_the_stream(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    int inline_before = -1;
    socklen_t length = sizeof(inline_before);
    assert_int_equal(getsockopt(fds[0], SOL_SOCKET, SO_OOBINLINE, &inline_before, &length), 0);
    assert_int_equal(inline_before, 0);
    ASYNC_SOCKET_HANDLE socket = open_socket(fds[0]);

    int inline_after = 0;
    length = sizeof(inline_after);
    assert_int_equal(getsockopt(fds[0], SOL_SOCKET, SO_OOBINLINE, &inline_after, &length), 0);
    assert_int_equal(inline_after, 1);

    send_with_urgent_byte(fds[1]);
    wait_until_acknowledged(fds[1]);
    assert_int_equal(bytes_waiting(fds[0]), (int)URGENT_LENGTH); /* inline: counted in the stream */
    char oob;
    errno = 0;
    assert_int_equal(recv(fds[0], &oob, 1, MSG_OOB | MSG_DONTWAIT), -1);
    assert_int_equal(errno, EINVAL);
    char got[URGENT_LENGTH + 1] = {0};
    uint32_t receives;
    receive_total(socket, got, URGENT_LENGTH, &receives);
    assert_string_equal(got, urgent_stream);

    env_end_with_socket(socket, fds[1], &mark);
}

#define SIZED_MESSAGES 50u
#define SIZED_MESSAGE 64u

/* A framed reader posts a receive for exactly the bytes it expects. Each message then costs one
 * recvmsg: the read that fills the receive learns that nothing is left, so the next receive,
 * posted before the next message arrives, waits for its edge instead of asking the kernel. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_152 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_153 */
static void receive_sized_to_the_message_costs_one_recvmsg_per_message(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    uint8_t* message = make_pattern(STREAM_BASE_A, SIZED_MESSAGES * SIZED_MESSAGE);

    uint64_t calls_before = sys_fault_recvmsg_calls();
    for (uint32_t i = 0; i < SIZED_MESSAGES; i++)
    {
        ONE_RX one;
        uint8_t buffer[SIZED_MESSAGE];
        one_rx_post(socket, &one, buffer, sizeof(buffer));
        /* let a worker look at the receive before the message exists */
        test_sleep_ms(1);
        assert_int_equal(send(fds[1], message + i * SIZED_MESSAGE, SIZED_MESSAGE, MSG_NOSIGNAL), (ssize_t)SIZED_MESSAGE);
        TEST_WAIT_UNTIL(atomic_load(&one.done) != 0, 5000);
        assert_int_equal(atomic_load(&one.result), ASYNC_SOCKET_RECEIVE_OK);
        assert_int_equal(atomic_load(&one.bytes), SIZED_MESSAGE);
        assert_int_equal(test_check_pattern(buffer, SIZED_MESSAGE, STREAM_BASE_A + (uint64_t)i * SIZED_MESSAGE), SIZED_MESSAGE);
    }
    uint64_t calls = sys_fault_recvmsg_calls() - calls_before;
    /* one per message; a receive posted while the socket still looked readable would add one
     * that returns EAGAIN, doubling the count */
    assert_int_equal(calls, SIZED_MESSAGES);

    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    free(message);
    env_end(&mark);
}

/* The kernel counts a waiting end of stream as a byte left, so a read that fills its receive
 * exactly, with the FIN behind it, does not make the socket look empty: the next receive gets
 * the end of the stream. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_152 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_091 */
static void end_of_stream_right_after_a_read_that_filled_its_receive_is_reported(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    uint8_t* message = make_pattern(STREAM_BASE_A, SIZED_MESSAGE);

    assert_int_equal(send(fds[1], message, SIZED_MESSAGE, MSG_NOSIGNAL), (ssize_t)SIZED_MESSAGE);
    assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
    uint8_t buffer[SIZED_MESSAGE];
    uint32_t bytes = 0;
    assert_int_equal(receive_once(socket, buffer, sizeof(buffer), &bytes), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(bytes, SIZED_MESSAGE);
    assert_int_equal(test_check_pattern(buffer, SIZED_MESSAGE, STREAM_BASE_A), SIZED_MESSAGE);
    bytes = 99;
    assert_int_equal(receive_once(socket, buffer, sizeof(buffer), &bytes), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(bytes, 0);

    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    free(message);
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(urgent_byte_queued_before_the_receive_is_delivered_in_place_and_the_rest_follows),
    cmocka_unit_test(urgent_byte_arriving_under_a_pending_receive_is_delivered_in_place),
    cmocka_unit_test(urgent_byte_under_receives_posted_together_is_delivered_in_place),
    cmocka_unit_test(open_keeps_urgent_data_in_the_stream),
    cmocka_unit_test(receive_sized_to_the_message_costs_one_recvmsg_per_message),
    cmocka_unit_test(end_of_stream_right_after_a_read_that_filled_its_receive_is_reported),
};

TEST_MAIN(tests)
