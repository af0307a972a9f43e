/* Integration test over loopback TCP, with two completion port workers: a callback that blocks
 * must not hold up another socket's work that its worker had already taken.
 *
 * Socket C's receive callback posts receives on sockets A and B, whose data is already waiting, so
 * one worker takes both out of the port's posted list at once. A's receive callback then blocks
 * until B's receive has completed (or 3 s pass). B's receive must complete while A's callback is
 * still blocked, delivered by the other worker, which is idle. Waiting on B rather than sleeping a
 * fixed time keeps the test independent of how slowly a sanitizer runs it; the latency is printed.
 *
 * Every receive's bytes are checked, every callback is counted once, and nothing leaks. */
#include <stdio.h>

#include "c_pal/platform_linux.h"
#include "lifecycle_int_util.h"
#include "test_main.h"

#define WATCHDOG_MS 20000
#define BLOCK_LIMIT_MS 3000
#define DATA_SIZE 16

typedef struct BLOCKED_TAG
{
    ASYNC_SOCKET_HANDLE a;
    ASYNC_SOCKET_HANDLE b;
    OP_RECORD c_receive;
    OP_RECORD a_receive;
    OP_RECORD b_receive;
    uint8_t c_buffer[DATA_SIZE];
    uint8_t a_buffer[DATA_SIZE];
    uint8_t b_buffer[DATA_SIZE];
    atomic_int a_blocking;       /* A's callback has started and not returned yet */
    atomic_int b_while_a_blocked; /* B's callback ran while A's was blocked */
    _Atomic uint64_t posted_at;  /* when C's callback posted A's and B's receives */
    _Atomic uint64_t b_done_at;
    atomic_int post_failures;
} BLOCKED;

static BLOCKED blocked;

/* A's callback: blocks until B's receive has been called back, at most BLOCK_LIMIT_MS. */
static void hook_block_until_b(OP_RECORD* record)
{
    (void)record;
    atomic_store(&blocked.a_blocking, 1);
    uint64_t start = test_now_ms();
    while (atomic_load(&blocked.b_receive.calls) == 0 && test_now_ms() - start < BLOCK_LIMIT_MS)
    {
        test_sleep_ms(1);
    }
    atomic_store(&blocked.a_blocking, 0);
}

static void hook_note_b(OP_RECORD* record)
{
    (void)record;
    atomic_store(&blocked.b_done_at, test_now_ms());
    atomic_store(&blocked.b_while_a_blocked, atomic_load(&blocked.a_blocking));
}

/* C's callback: posts the receives of A (first) and B, whose data is already queued. */
static void hook_post_a_and_b(OP_RECORD* record)
{
    (void)record;
    atomic_store(&blocked.posted_at, test_now_ms());
    if (test_receive(blocked.a, blocked.a_buffer, sizeof(blocked.a_buffer), &blocked.a_receive) != 0)
    {
        atomic_fetch_add(&blocked.post_failures, 1);
    }
    if (test_receive(blocked.b, blocked.b_buffer, sizeof(blocked.b_buffer), &blocked.b_receive) != 0)
    {
        atomic_fetch_add(&blocked.post_failures, 1);
    }
}

static void send_pattern(int peer, uint64_t base)
{
    uint8_t data[DATA_SIZE];
    test_fill_pattern(data, sizeof(data), base);
    assert_int_equal(send(peer, data, sizeof(data), MSG_NOSIGNAL), (ssize_t)sizeof(data));
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_132 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_051 */
static void work_a_blocked_worker_took_is_delivered_by_the_idle_one(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin_with_workers(&leak, 2, WATCHDOG_MS, __func__);
    memset(&blocked, 0, sizeof(blocked));

    int peer_a;
    int peer_b;
    int peer_c;
    blocked.a = open_tcp_async(0, 0, &peer_a, NULL);
    blocked.b = open_tcp_async(0, 0, &peer_b, NULL);
    ASYNC_SOCKET_HANDLE c = open_tcp_async(0, 0, &peer_c, NULL);
    op_record_init(&blocked.c_receive, NULL);
    op_record_init(&blocked.a_receive, NULL);
    op_record_init(&blocked.b_receive, NULL);
    blocked.c_receive.hook = hook_post_a_and_b;
    blocked.a_receive.hook = hook_block_until_b;
    blocked.b_receive.hook = hook_note_b;

    /* A's and B's data is waiting before their receives are posted */
    send_pattern(peer_a, 100);
    send_pattern(peer_b, 200);
    test_sleep_ms(20);
    assert_int_equal(test_receive(c, blocked.c_buffer, sizeof(blocked.c_buffer), &blocked.c_receive), 0);
    send_pattern(peer_c, 300);

    /* Waits for both hooks to return, not for the calls: a call is counted before its hook runs,
     * and A's hook returns as soon as it sees B's call counted, possibly before B's hook has
     * stored b_done_at and b_while_a_blocked, which are read below. */
    TEST_WAIT_UNTIL(atomic_load(&blocked.a_receive.hook_done) == 1 && atomic_load(&blocked.b_receive.hook_done) == 1,
        BLOCK_LIMIT_MS + 5000);
    assert_int_equal(atomic_load(&blocked.post_failures), 0);
    uint64_t latency = atomic_load(&blocked.b_done_at) - atomic_load(&blocked.posted_at);
    (void)printf("B's receive completed %llu ms after it was posted, while A's callback blocked: %s\n",
        (unsigned long long)latency, atomic_load(&blocked.b_while_a_blocked) ? "yes" : "no");
    if (!atomic_load(&blocked.b_while_a_blocked))
    {
        fail_msg("B's receive waited for A's blocked callback to return (%llu ms after it was posted)", (unsigned long long)latency);
    }
    assert_once_with(&blocked.c_receive, ASYNC_SOCKET_RECEIVE_OK);
    assert_once_with(&blocked.a_receive, ASYNC_SOCKET_RECEIVE_OK);
    assert_once_with(&blocked.b_receive, ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&blocked.a_receive.bytes), DATA_SIZE);
    assert_int_equal(atomic_load(&blocked.b_receive.bytes), DATA_SIZE);
    assert_int_equal(test_check_pattern(blocked.a_buffer, DATA_SIZE, 100), DATA_SIZE);
    assert_int_equal(test_check_pattern(blocked.b_buffer, DATA_SIZE, 200), DATA_SIZE);
    assert_int_equal(test_check_pattern(blocked.c_buffer, DATA_SIZE, 300), DATA_SIZE);

    async_socket_destroy(blocked.a);
    async_socket_destroy(blocked.b);
    async_socket_destroy(c);
    assert_int_equal(close(peer_a), 0);
    assert_int_equal(close(peer_b), 0);
    assert_int_equal(close(peer_c), 0);
    lifecycle_end_with_workers(&leak);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(work_a_blocked_worker_took_is_delivered_by_the_idle_one),
};

TEST_MAIN(tests)
