/* Integration tests for async_socket's data path through partial writes, EAGAIN and EINTR, custom
 * transports, a peer that has gone (SIGPIPE), and the mapping of transport errors to results,
 * over real loopback TCP.
 *
 * Every test checks bytes against a pattern that depends on the absolute stream offset, counts
 * callbacks (exactly once, or none after a synchronous failure), and checks that no library
 * allocation and no fd outlives it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"
#include "async_socket_data_helpers.h"

/* ---- 6: multi-buffer sends stopped part-way ---- */

#define MULTI_SENDS 16
#define MULTI_BUFFERS 8

/* Issues MULTI_SENDS sends of MULTI_BUFFERS buffers each (uneven sizes) while the peer reads
 * nothing, then reads and checks the whole stream. */
static void multi_buffer_sends_case(ASYNC_SOCKET_HANDLE socket, int peer)
{
    uint32_t sizes[MULTI_SENDS][MULTI_BUFFERS];
    uint64_t total = 0;
    for (uint32_t i = 0; i < MULTI_SENDS; i++)
    {
        for (uint32_t j = 0; j < MULTI_BUFFERS; j++)
        {
            sizes[i][j] = 1 + (uint32_t)(((uint64_t)(i * MULTI_BUFFERS + j + 1) * 2654435761u) >> 7) % 9000u;
            total += sizes[i][j];
        }
    }
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)total);
    SEND_TRACK track;
    send_track_init(&track, MULTI_SENDS);
    uint64_t offset = 0;
    for (uint32_t i = 0; i < MULTI_SENDS; i++)
    {
        ASYNC_SOCKET_BUFFER buffers[MULTI_BUFFERS];
        for (uint32_t j = 0; j < MULTI_BUFFERS; j++)
        {
            buffers[j].buffer = source + offset;
            buffers[j].length = sizes[i][j];
            offset += sizes[i][j];
        }
        uint64_t start = test_now_ms();
        assert_int_equal(async_socket_send_async(socket, buffers, MULTI_BUFFERS, on_send_tracked, &track.slots[i]), ASYNC_SOCKET_SEND_SYNC_OK);
        assert_true(test_now_ms() - start < 100);
    }
    /* the kernel holds a few KiB: sends stopped part-way and wait */
    assert_true(atomic_load(&track.done) < MULTI_SENDS);

    plain_read_all(peer, STREAM_BASE_A, total);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == MULTI_SENDS, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_no_more_bytes(peer);
    free(source);
    send_track_deinit(&track);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_003 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_055 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
static void multi_buffer_sends_cut_by_partial_writes_and_eagain_send_every_byte_once(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 4096, 4096);
    /* every sendmsg moves at most 3000 bytes: writes end inside buffers, not at their edges */
    sys_fault_set_send_limit(3000);

    multi_buffer_sends_case(socket, fds[1]);

    sys_fault_set_send_limit(0);
    env_end_with_socket(socket, fds[1], &mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_003 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
static void multi_buffer_sends_cut_by_a_full_socket_send_every_byte_once(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 4096, 4096);

    /* the kernel itself cuts the writes where the small socket buffer fills */
    multi_buffer_sends_case(socket, fds[1]);

    env_end_with_socket(socket, fds[1], &mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_003 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_014 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_004 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
static void multi_buffer_sends_through_a_custom_transport_resume_after_eagain(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 4096, 4096);
    TRANSPORT transport;
    transport_init(&transport, fds[0], 1500, 0, 0);
    ASYNC_SOCKET_HANDLE socket = open_socket_transport(fds[0], &transport);

    multi_buffer_sends_case(socket, fds[1]);
    /* the transport's EAGAIN (passed on from the fd) made sends wait, and they resumed */
    assert_true(atomic_load(&transport.send_eagain) > 0);
    assert_int_equal(atomic_load(&transport.wrong_handle), 0);

    env_end_with_socket(socket, fds[1], &mark);
}

/* ---- 7: a transport that moves one byte per call; EINTR ---- */

/* 32 KiB under valgrind and TSan (test_count_unless_slow): a million hook calls do not fit the timeout. */
#define ONE_BYTE_TOTAL (256u * 1024u)
#define ONE_BYTE_TOTAL_SLOW (32u * 1024u)
#define ONE_BYTE_SENDS 4

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_004 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_083 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_014 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_004 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_089 */
static void one_byte_per_call_transport_moves_256_kib_each_way_byte_exact(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    const uint32_t one_byte_total = test_count_unless_slow(ONE_BYTE_TOTAL, ONE_BYTE_TOTAL_SLOW);
    int fds[2];
    make_pair(fds, 8192, 8192);
    TRANSPORT transport_a;
    TRANSPORT transport_b;
    transport_init(&transport_a, fds[0], 1, 1, 0);
    transport_init(&transport_b, fds[1], 1, 1, 0);
    ASYNC_SOCKET_HANDLE a = open_socket_transport(fds[0], &transport_a);
    ASYNC_SOCKET_HANDLE b = open_socket_transport(fds[1], &transport_b);
    uint8_t* from_a = make_pattern(STREAM_BASE_A, one_byte_total);
    uint8_t* from_b = make_pattern(STREAM_BASE_B, one_byte_total);

    STREAM_RX rx_a;
    STREAM_RX rx_b;
    stream_rx_init(&rx_a, a, STREAM_BASE_B, one_byte_total, 2, 4096, 2);
    stream_rx_init(&rx_b, b, STREAM_BASE_A, one_byte_total, 2, 4096, 3);
    stream_rx_start(&rx_a);
    stream_rx_start(&rx_b);

    SEND_TRACK track_a;
    SEND_TRACK track_b;
    send_track_init(&track_a, ONE_BYTE_SENDS);
    send_track_init(&track_b, ONE_BYTE_SENDS);
    const uint32_t piece = one_byte_total / ONE_BYTE_SENDS;
    for (uint32_t i = 0; i < ONE_BYTE_SENDS; i++)
    {
        assert_int_equal(send_piece(a, from_a, (uint64_t)i * piece, piece, 1 + i % 4, &track_a.slots[i], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
        assert_int_equal(send_piece(b, from_b, (uint64_t)i * piece, piece, 4 - i % 4, &track_b.slots[i], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    }
    unsigned done_a = atomic_load(&track_a.done);
    unsigned done_b = atomic_load(&track_b.done);

    stream_rx_wait(&rx_a, 60000);
    stream_rx_wait(&rx_b, 60000);
    TEST_WAIT_UNTIL(atomic_load(&track_a.done) == ONE_BYTE_SENDS && atomic_load(&track_b.done) == ONE_BYTE_SENDS, 30000);
    send_track_check_all(&track_a, ASYNC_SOCKET_SEND_OK);
    send_track_check_all(&track_b, ASYNC_SOCKET_SEND_OK);
    /* one byte per call, in both directions, and the socket handle passed to every call */
    assert_true(atomic_load(&transport_a.send_calls) >= one_byte_total);
    assert_true(atomic_load(&transport_a.recv_calls) >= one_byte_total);
    assert_true(atomic_load(&transport_b.send_calls) >= one_byte_total);
    assert_true(atomic_load(&transport_b.recv_calls) >= one_byte_total);
    assert_int_equal(atomic_load(&transport_a.wrong_handle), 0);
    assert_int_equal(atomic_load(&transport_b.wrong_handle), 0);
    /* the small socket buffers made both sides' sends wait on the transport's EAGAIN */
    assert_true(done_a < ONE_BYTE_SENDS);
    assert_true(done_b < ONE_BYTE_SENDS);
    assert_true(atomic_load(&transport_a.send_eagain) > 0);
    assert_true(atomic_load(&transport_b.send_eagain) > 0);

    async_socket_destroy(a);
    async_socket_destroy(b);
    stream_rx_check_closed(&rx_a);
    stream_rx_check_closed(&rx_b);
    stream_rx_deinit(&rx_a);
    stream_rx_deinit(&rx_b);
    send_track_deinit(&track_a);
    send_track_deinit(&track_b);
    free(from_a);
    free(from_b);
    env_end(&mark);
}

#define EINTR_TOTAL (1u << 20)
#define EINTR_SENDS 16

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_013 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_004 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_083 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_089 */
static void eintr_from_a_custom_transport_is_retried_both_ways(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 16384, 16384);
    TRANSPORT transport;
    transport_init(&transport, fds[0], 4096, 4096, 3); /* every third call: -1 / EINTR */
    ASYNC_SOCKET_HANDLE socket = open_socket_transport(fds[0], &transport);
    uint8_t* source = make_pattern(STREAM_BASE_A, EINTR_TOTAL);

    STREAM_RX rx;
    stream_rx_init(&rx, socket, STREAM_BASE_B, EINTR_TOTAL, 2, 16384, 2);
    stream_rx_start(&rx);
    PLAIN_IO reader;
    PLAIN_IO writer;
    plain_io_init(&reader, fds[1], STREAM_BASE_A, EINTR_TOTAL, 8192, 0);
    plain_io_init(&writer, fds[1], STREAM_BASE_B, EINTR_TOTAL, 8192, 0);
    plain_io_start(&reader, plain_read_run);
    plain_io_start(&writer, plain_write_run);

    SEND_TRACK track;
    send_track_init(&track, EINTR_SENDS);
    const uint32_t piece = EINTR_TOTAL / EINTR_SENDS;
    for (uint32_t i = 0; i < EINTR_SENDS; i++)
    {
        assert_int_equal(send_piece(socket, source, (uint64_t)i * piece, piece, 1 + i % 3, &track.slots[i], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    }
    plain_io_join_and_check(&reader);
    plain_io_join_and_check(&writer);
    stream_rx_wait(&rx, 5000);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == EINTR_SENDS, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_true(atomic_load(&transport.send_eintr) > 0);
    assert_true(atomic_load(&transport.recv_eintr) > 0);
    assert_no_more_bytes(fds[1]);

    async_socket_destroy(socket);
    stream_rx_check_closed(&rx);
    stream_rx_deinit(&rx);
    send_track_deinit(&track);
    free(source);
    assert_int_equal(close(fds[1]), 0);
    env_end(&mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_013 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_061 */
static void eintr_from_the_default_transport_send_is_retried(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    uint8_t* source = make_pattern(STREAM_BASE_A, 3000);
    SEND_TRACK track;
    send_track_init(&track, 3);

    for (uint32_t i = 0; i < 3; i++)
    {
        /* the inline sendmsg on this thread is interrupted once */
        sys_fault_arm(SYS_FAULT_SEND, 1, EINTR);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = send_piece(socket, source, (uint64_t)i * 1000, 1000, 1 + i, &track.slots[i], NULL);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        assert_true(fired);
        assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_OK);
    }
    plain_read_all(fds[1], STREAM_BASE_A, 3000);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == 3, 2000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    test_sleep_ms(20);
    assert_no_more_bytes(fds[1]);

    async_socket_destroy(socket);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    send_track_deinit(&track);
    free(source);
    assert_int_equal(close(fds[1]), 0);
    env_end(&mark);
}

/* ---- 10: SIGPIPE, in a forked child with SIGPIPE at its default disposition ---- */

#define CHILD_CHECK(cond)                                                                     \
    do                                                                                        \
    {                                                                                         \
        if (!(cond))                                                                          \
        {                                                                                     \
            (void)fprintf(stderr, "child: check failed at line %d: %s\n", __LINE__, #cond);   \
            (void)fflush(stderr);                                                             \
            _exit(10);                                                                        \
        }                                                                                     \
    } while (0)

#define CHILD_WAIT_UNTIL(cond, timeout_ms)                                                    \
    do                                                                                        \
    {                                                                                         \
        const uint64_t child_wait_start_ = test_now_ms();                                     \
        while (!(cond) && test_now_ms() - child_wait_start_ <= (uint64_t)(timeout_ms))        \
        {                                                                                     \
            test_sleep_ms(1);                                                                 \
        }                                                                                     \
        CHILD_CHECK(cond);                                                                    \
    } while (0)

/* Runs `body` in a child process where SIGPIPE is at SIG_DFL (it would kill the process) and
 * checks that the child exited normally with 0. */
static void run_in_child(void (*body)(void))
{
    (void)fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
    {
        (void)signal(SIGPIPE, SIG_DFL);
        sigset_t pipe_only;
        (void)sigemptyset(&pipe_only);
        (void)sigaddset(&pipe_only, SIGPIPE);
        (void)pthread_sigmask(SIG_UNBLOCK, &pipe_only, NULL);
        body();
        _exit(0);
    }
    int status = 0;
    const uint64_t start = test_now_ms();
    pid_t waited;
    while ((waited = waitpid(pid, &status, WNOHANG)) == 0 && test_now_ms() - start < 8000)
    {
        test_sleep_ms(5);
    }
    if (waited == 0)
    {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        fail_msg("the child did not finish in 8 s");
    }
    assert_int_equal(waited, pid);
    if (WIFSIGNALED(status))
    {
        fail_msg("the child was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void child_wait_for_fin(int local)
{
    const uint64_t start = test_now_ms();
    for (;;)
    {
        struct pollfd poller = {.fd = local, .events = POLLIN | POLLRDHUP, .revents = 0};
        if (poll(&poller, 1, 50) == 1 && (poller.revents & POLLRDHUP) != 0)
        {
            return;
        }
        CHILD_CHECK(test_now_ms() - start < 2000);
    }
}

#define GONE_SENDS 200

static void send_after_peer_closed_body(void)
{
    int64_t allocations = sys_fault_live_allocations();
    int fd_count = test_count_open_fds();
    CHILD_CHECK(platform_init() == 0);
    int fds[2];
    CHILD_CHECK(test_tcp_pair(fds, 0, 0) == 0);
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fds[0]);
    CHILD_CHECK(socket != NULL);
    atomic_int opened;
    atomic_init(&opened, 0);
    CHILD_CHECK(async_socket_open_async(socket, on_open_record, &opened) == 0);
    CHILD_WAIT_UNTIL(atomic_load(&opened) == (int)ASYNC_SOCKET_OPEN_OK + 1, 2000);

    CHILD_CHECK(close(fds[1]) == 0);
    child_wait_for_fin(fds[0]);

    static uint8_t payload[1000];
    test_fill_pattern(payload, sizeof(payload), 0);
    static SEND_TRACK track;
    send_track_init(&track, GONE_SENDS);
    ASYNC_SOCKET_SEND_SYNC_RESULT results[GONE_SENDS];
    memset(results, 0, sizeof(results));
    int accepted = 0;
    int first_not_open = -1;
    for (int i = 0; i < GONE_SENDS; i++)
    {
        ASYNC_SOCKET_BUFFER buffer = {.buffer = payload, .length = sizeof(payload)};
        results[i] = async_socket_send_async(socket, &buffer, 1, on_send_tracked, &track.slots[i]);
        /* the kernel may take the first sends; once the peer's reset is back the connection is
         * gone (ECONNRESET, then EPIPE): never a signal, never ERROR */
        CHILD_CHECK(results[i] == ASYNC_SOCKET_SEND_SYNC_OK || results[i] == ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
        if (results[i] == ASYNC_SOCKET_SEND_SYNC_OK)
        {
            accepted++;
        }
        else if (first_not_open < 0)
        {
            first_not_open = i;
        }
        if (first_not_open >= 0 && i >= first_not_open + 20)
        {
            break;
        }
        test_sleep_ms(2);
    }
    CHILD_CHECK(first_not_open >= 0);
    /* once gone, it stays gone */
    for (int i = first_not_open; i < GONE_SENDS && i <= first_not_open + 20; i++)
    {
        CHILD_CHECK(results[i] == ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    }
    CHILD_WAIT_UNTIL(atomic_load(&track.done) == (unsigned)accepted, 2000);
    test_sleep_ms(20);
    /* accepted sends: called back once; refused ones: never */
    CHILD_CHECK(atomic_load(&track.done) == (unsigned)accepted);
    for (int i = 0; i < GONE_SENDS; i++)
    {
        unsigned expected_calls = (i < first_not_open + 21 && results[i] == ASYNC_SOCKET_SEND_SYNC_OK) ? 1u : 0u;
        CHILD_CHECK(atomic_load(&track.slots[i].calls) == expected_calls);
    }

    async_socket_destroy(socket);
    send_track_deinit(&track);
    platform_deinit();
    CHILD_CHECK(sys_fault_live_allocations() == allocations);
    CHILD_CHECK(test_count_open_fds() == fd_count);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_012 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_052 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_059 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void send_after_the_peer_closed_returns_not_open_without_sigpipe(void** state)
{
    (void)state;
    run_in_child(send_after_peer_closed_body);
}

#define RESET_SEND (1u << 20)

static void queued_send_after_peer_reset_body(void)
{
    int64_t allocations = sys_fault_live_allocations();
    int fd_count = test_count_open_fds();
    CHILD_CHECK(platform_init() == 0);
    int fds[2];
    CHILD_CHECK(test_tcp_pair(fds, 4096, 4096) == 0);
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fds[0]);
    CHILD_CHECK(socket != NULL);
    atomic_int opened;
    atomic_init(&opened, 0);
    CHILD_CHECK(async_socket_open_async(socket, on_open_record, &opened) == 0);
    CHILD_WAIT_UNTIL(atomic_load(&opened) == (int)ASYNC_SOCKET_OPEN_OK + 1, 2000);

    /* a send that cannot complete: the peer reads nothing */
    uint8_t* source = malloc(RESET_SEND);
    CHILD_CHECK(source != NULL);
    test_fill_pattern(source, RESET_SEND, 0);
    static SEND_TRACK track;
    send_track_init(&track, 11);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = source, .length = RESET_SEND};
    CHILD_CHECK(async_socket_send_async(socket, &buffer, 1, on_send_tracked, &track.slots[0]) == ASYNC_SOCKET_SEND_SYNC_OK);
    test_sleep_ms(20);
    CHILD_CHECK(atomic_load(&track.done) == 0);

    /* the peer resets the connection (close with SO_LINGER {1, 0}) */
    struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
    CHILD_CHECK(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close)) == 0);
    CHILD_CHECK(close(fds[1]) == 0);

    CHILD_WAIT_UNTIL(atomic_load(&track.done) == 1, 5000);
    CHILD_CHECK(atomic_load(&track.slots[0].result) == (int)ASYNC_SOCKET_SEND_ABANDONED);

    /* later sends are refused synchronously, without a callback */
    for (int i = 1; i <= 10; i++)
    {
        ASYNC_SOCKET_BUFFER small = {.buffer = source, .length = 100};
        CHILD_CHECK(async_socket_send_async(socket, &small, 1, on_send_tracked, &track.slots[i]) == ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    }
    test_sleep_ms(20);
    CHILD_CHECK(atomic_load(&track.done) == 1);
    CHILD_CHECK(atomic_load(&track.slots[0].calls) == 1);

    async_socket_destroy(socket);
    CHILD_CHECK(atomic_load(&track.done) == 1);
    send_track_deinit(&track);
    free(source);
    platform_deinit();
    CHILD_CHECK(sys_fault_live_allocations() == allocations);
    CHILD_CHECK(test_count_open_fds() == fd_count);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_012 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_052 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_097 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_059 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void queued_send_is_abandoned_when_the_peer_resets_without_sigpipe(void** state)
{
    (void)state;
    run_in_child(queued_send_after_peer_reset_body);
}

/* ---- 13: transport errors ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_095 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_086 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_088 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_090 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_083 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_087 */
static void custom_transport_receive_errors_give_error_or_abandoned_and_lose_no_bytes(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    TRANSPORT transport;
    transport_init(&transport, fds[0], 0, 0, 0);
    ASYNC_SOCKET_HANDLE socket = open_socket_transport(fds[0], &transport);
    plain_write_all(fds[1], STREAM_BASE_A, 10);
    TEST_WAIT_UNTIL(bytes_waiting(fds[0]) == 10, 2000);
    test_sleep_ms(20);

    uint8_t buffer[64];
    uint32_t bytes = 99;
    atomic_store(&transport.fail_recv_errno, EIO);
    assert_int_equal(receive_once(socket, buffer, sizeof(buffer), &bytes), ASYNC_SOCKET_RECEIVE_ERROR);
    assert_int_equal(bytes, 0);
    assert_true(atomic_load(&transport.recv_failed) >= 1);

    bytes = 99;
    atomic_store(&transport.fail_recv_errno, ECONNRESET);
    assert_int_equal(receive_once(socket, buffer, sizeof(buffer), &bytes), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(bytes, 0);

    /* the failed calls took nothing: the bytes are all still there */
    atomic_store(&transport.fail_recv_errno, 0);
    receive_exactly(socket, STREAM_BASE_A, 10);

    env_end_with_socket(socket, fds[1], &mark);
}

/* Reads what has arrived at `peer` for a moment, checking it continues the stream at *offset. */
static void drain_available(int peer, uint64_t base, uint64_t* offset)
{
    uint8_t buffer[16384];
    const uint64_t start = test_now_ms();
    while (test_now_ms() - start < 30)
    {
        ssize_t got = recv(peer, buffer, sizeof(buffer), MSG_DONTWAIT);
        if (got > 0)
        {
            assert_int_equal(test_check_pattern(buffer, (size_t)got, base + *offset), (size_t)got);
            *offset += (uint64_t)got;
        }
        else
        {
            test_sleep_ms(1);
        }
    }
}

#define QUEUED_SEND (1u << 20)

/* Two sends wait for room; the transport then fails with `error`: both complete with `expected`,
 * once each. */
static void queued_send_failure_case(int error, ASYNC_SOCKET_SEND_RESULT expected)
{
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 4096, 4096);
    TRANSPORT transport;
    transport_init(&transport, fds[0], 0, 0, 0);
    ASYNC_SOCKET_HANDLE socket = open_socket_transport(fds[0], &transport);
    uint8_t* source = make_pattern(STREAM_BASE_A, QUEUED_SEND + 1000);
    SEND_TRACK track;
    send_track_init(&track, 2);

    assert_int_equal(send_piece(socket, source, 0, QUEUED_SEND, 4, &track.slots[0], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    assert_int_equal(send_piece(socket, source, QUEUED_SEND, 1000, 1, &track.slots[1], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&track.done), 0);
    assert_true(atomic_load(&transport.send_eagain) > 0);

    /* room appears, and the next transport send fails */
    atomic_store(&transport.fail_send_errno, error);
    uint64_t drained = 0;
    drain_available(fds[1], STREAM_BASE_A, &drained);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == 2, 5000);
    test_sleep_ms(10);
    assert_true(atomic_load(&transport.send_failed) >= 1);
    send_track_check_all(&track, expected);

    async_socket_destroy(socket);
    send_track_check_all(&track, expected);
    send_track_deinit(&track);
    free(source);
    assert_int_equal(close(fds[1]), 0);
    env_end(&mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_097 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_096 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void queued_send_failing_with_econnreset_is_abandoned(void** state)
{
    (void)state;
    queued_send_failure_case(ECONNRESET, ASYNC_SOCKET_SEND_ABANDONED);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_099 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_097 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_096 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void queued_send_failing_with_eio_is_error(void** state)
{
    (void)state;
    queued_send_failure_case(EIO, ASYNC_SOCKET_SEND_ERROR);
}

typedef struct INLINE_ERROR_TAG
{
    int error;
    ASYNC_SOCKET_SEND_SYNC_RESULT expected;
} INLINE_ERROR;

static const INLINE_ERROR inline_errors[] = {
    {ECONNRESET, ASYNC_SOCKET_SEND_SYNC_NOT_OPEN},
    {EPIPE, ASYNC_SOCKET_SEND_SYNC_NOT_OPEN},
    {ENOTCONN, ASYNC_SOCKET_SEND_SYNC_NOT_OPEN},
    {EIO, ASYNC_SOCKET_SEND_SYNC_ERROR},
    {ENOBUFS, ASYNC_SOCKET_SEND_SYNC_ERROR},
    {EINVAL, ASYNC_SOCKET_SEND_SYNC_ERROR},
};
#define INLINE_ERROR_COUNT (sizeof(inline_errors) / sizeof(inline_errors[0]))

/* For each error, a send that fails inline with it, then a send that succeeds. The failed ones
 * return the mapped result, are never called back and put nothing on the wire (their buffers hold
 * another stream's pattern); the good ones arrive in order. `transport` NULL: the default
 * transport, failed with the sys seam on this thread. */
static void inline_send_errors_case(ASYNC_SOCKET_HANDLE socket, TRANSPORT* transport, int peer)
{
    uint8_t* good = make_pattern(STREAM_BASE_A, INLINE_ERROR_COUNT * 500);
    uint8_t* bad = make_pattern(STREAM_BASE_B, 500);
    SEND_TRACK good_track;
    SEND_TRACK bad_track;
    send_track_init(&good_track, INLINE_ERROR_COUNT);
    send_track_init(&bad_track, INLINE_ERROR_COUNT);
    for (uint32_t i = 0; i < INLINE_ERROR_COUNT; i++)
    {
        ASYNC_SOCKET_SEND_SYNC_RESULT result;
        if (transport == NULL)
        {
            sys_fault_arm(SYS_FAULT_SEND, 1, inline_errors[i].error);
            result = send_piece(socket, bad, 0, 500, 2, &bad_track.slots[i], NULL);
            bool fired = sys_fault_fired();
            sys_fault_disarm();
            assert_true(fired);
        }
        else
        {
            atomic_store(&transport->fail_send_errno, inline_errors[i].error);
            result = send_piece(socket, bad, 0, 500, 2, &bad_track.slots[i], NULL);
            atomic_store(&transport->fail_send_errno, 0);
        }
        if (result != inline_errors[i].expected)
        {
            fail_msg("errno %d: send_async returned %d, expected %d", inline_errors[i].error, (int)result, (int)inline_errors[i].expected);
        }
        assert_int_equal(send_piece(socket, good, (uint64_t)i * 500, 500, 1, &good_track.slots[i], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    }
    plain_read_all(peer, STREAM_BASE_A, INLINE_ERROR_COUNT * 500);
    TEST_WAIT_UNTIL(atomic_load(&good_track.done) == INLINE_ERROR_COUNT, 2000);
    test_sleep_ms(30);
    send_track_check_all(&good_track, ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&bad_track.done), 0);
    assert_no_more_bytes(peer);

    async_socket_destroy(socket);
    assert_int_equal(atomic_load(&bad_track.done), 0);
    send_track_deinit(&good_track);
    send_track_deinit(&bad_track);
    free(good);
    free(bad);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_059 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_060 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_063 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_054 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void inline_send_errors_on_the_default_transport_map_to_not_open_or_error_without_callback(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    inline_send_errors_case(socket, NULL, fds[1]);
    assert_int_equal(close(fds[1]), 0);
    env_end(&mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_059 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_060 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_063 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_054 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_004 */
static void inline_send_errors_from_a_custom_transport_map_to_not_open_or_error_without_callback(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    TRANSPORT transport;
    transport_init(&transport, fds[0], 0, 0, 0);
    ASYNC_SOCKET_HANDLE socket = open_socket_transport(fds[0], &transport);
    inline_send_errors_case(socket, &transport, fds[1]);
    assert_int_equal(atomic_load(&transport.send_failed), INLINE_ERROR_COUNT);
    assert_int_equal(close(fds[1]), 0);
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(multi_buffer_sends_cut_by_partial_writes_and_eagain_send_every_byte_once),
    cmocka_unit_test(multi_buffer_sends_cut_by_a_full_socket_send_every_byte_once),
    cmocka_unit_test(multi_buffer_sends_through_a_custom_transport_resume_after_eagain),
    cmocka_unit_test(one_byte_per_call_transport_moves_256_kib_each_way_byte_exact),
    cmocka_unit_test(eintr_from_a_custom_transport_is_retried_both_ways),
    cmocka_unit_test(eintr_from_the_default_transport_send_is_retried),
    cmocka_unit_test(send_after_the_peer_closed_returns_not_open_without_sigpipe),
    cmocka_unit_test(queued_send_is_abandoned_when_the_peer_resets_without_sigpipe),
    cmocka_unit_test(custom_transport_receive_errors_give_error_or_abandoned_and_lose_no_bytes),
    cmocka_unit_test(queued_send_failing_with_econnreset_is_abandoned),
    cmocka_unit_test(queued_send_failing_with_eio_is_error),
    cmocka_unit_test(inline_send_errors_on_the_default_transport_map_to_not_open_or_error_without_callback),
    cmocka_unit_test(inline_send_errors_from_a_custom_transport_map_to_not_open_or_error_without_callback),
};

TEST_MAIN(tests)
