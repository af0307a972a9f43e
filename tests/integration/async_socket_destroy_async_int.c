/* Integration tests of the lifetime rule: async_socket_destroy_async calls back once no callback
 * of the socket runs or will run again, from any thread, from inside its own or another socket's
 * callback, and in the circle case; and a close that waits for another thread's close keeps the
 * socket alive (issue 11, item 7).
 *
 * A context is never freed by its on_destroy_complete here: it is marked, and every callback
 * checks the mark on entry and exit, so a callback that runs after its socket's destroy-complete
 * (or one still running when it comes) is counted in a plain build; the contexts are freed by
 * the test thread at the end. The 4-worker circle test also runs in make check's asan and tsan
 * steps, which see the accesses themselves. */
#include "lifecycle_int_util.h"
#include "log_capture.h"
#include "c_pal/platform_linux.h"
#include "test_main.h"

#define WATCHDOG_MS 60000

typedef struct PEER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    struct PEER_TAG* partner;   /* destroyed from this one's receive callback */
    int fd;                     /* the loopback end the test writes to */
    atomic_int running;         /* callbacks of this socket running now */
    atomic_int destroyed;       /* on_destroy_complete ran */
    atomic_int destroy_calls;
    atomic_int late;            /* callbacks that ran, or were running, after on_destroy_complete */
    atomic_int destroyed_while_running;
    atomic_int callbacks;
    atomic_int in_destroy_call; /* set around the test's own destroy_async call */
    atomic_int destroyed_inside_call;
    pthread_t destroyer;
    uint8_t byte;
} PEER;

static atomic_int total_destroyed;

static void on_destroyed(void* context)
{
    PEER* peer = context;
    if (atomic_load(&peer->running) != 0)
    {
        (void)atomic_fetch_add(&peer->destroyed_while_running, 1);
    }
    if (atomic_load(&peer->in_destroy_call) != 0 && pthread_equal(peer->destroyer, pthread_self()))
    {
        (void)atomic_fetch_add(&peer->destroyed_inside_call, 1);
    }
    (void)atomic_fetch_add(&peer->destroy_calls, 1);
    atomic_store(&peer->destroyed, 1);
    (void)atomic_fetch_add(&total_destroyed, 1);
}

static void enter(PEER* peer)
{
    (void)atomic_fetch_add(&peer->running, 1);
    (void)atomic_fetch_add(&peer->callbacks, 1);
    if (atomic_load(&peer->destroyed) != 0)
    {
        (void)atomic_fetch_add(&peer->late, 1);
    }
}

static void leave(PEER* peer)
{
    if (atomic_load(&peer->destroyed) != 0)
    {
        (void)atomic_fetch_add(&peer->late, 1);
    }
    (void)atomic_fetch_sub(&peer->running, 1);
}

/* Destroys the partner, then lingers in the callback and touches its own context: the partner's
 * callback may be doing the same to this socket at the same moment (the circle case). */
static void on_receive_destroy_partner(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)result;
    (void)bytes;
    PEER* peer = context;
    enter(peer);
    if (async_socket_destroy_async(peer->partner->socket, on_destroyed, peer->partner) != 0)
    {
        (void)atomic_fetch_add(&peer->late, 1000);
    }
    for (volatile int i = 0; i < 20000; i++)
    {
    }
    peer->byte++;
    leave(peer);
}

static void on_receive_destroy_self(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)result;
    (void)bytes;
    PEER* peer = context;
    enter(peer);
    if (async_socket_destroy_async(peer->socket, on_destroyed, peer) != 0)
    {
        (void)atomic_fetch_add(&peer->late, 1000);
    }
    test_sleep_ms(50); /* still inside: the destroy-complete must wait for this */
    peer->byte++;
    leave(peer);
}

static void on_receive_count(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)result;
    (void)bytes;
    PEER* peer = context;
    enter(peer);
    leave(peer);
}

static PEER* peer_new(void)
{
    PEER* peer = calloc(1, sizeof(PEER));
    assert_non_null(peer);
    int fds[2];
    assert_int_equal(test_tcp_pair(fds, 0, 0), 0);
    peer->socket = async_socket_create(NULL, fds[0]);
    assert_non_null(peer->socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);
    assert_int_equal(test_open(peer->socket, &open_record), 0);
    peer->fd = fds[1];
    return peer;
}

static void post_receive(PEER* peer, ON_ASYNC_SOCKET_RECEIVE_COMPLETE on_receive)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = &peer->byte, .length = 1};
    assert_int_equal(async_socket_receive_async(peer->socket, &buffer, 1, on_receive, peer), 0);
}

static void wait_destroyed(int expected)
{
    for (int i = 0; i < 10000 && atomic_load(&total_destroyed) < expected; i++)
    {
        test_sleep_ms(1);
    }
    assert_int_equal(atomic_load(&total_destroyed), expected);
}

static void assert_clean(PEER* peer)
{
    assert_int_equal(atomic_load(&peer->destroy_calls), 1);
    assert_int_equal(atomic_load(&peer->late), 0);
    assert_int_equal(atomic_load(&peer->destroyed_while_running), 0);
    assert_int_equal(atomic_load(&peer->destroyed_inside_call), 0);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_172
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_173 */
static void destroy_async_from_the_main_thread_calls_back_once_on_a_worker(void** state)
{
    (void)state;
    LEAK_CHECK check;
    leak_check_begin(&check);
    assert_int_equal(platform_init(), 0);
    atomic_store(&total_destroyed, 0);
    PEER* peer = peer_new();
    post_receive(peer, on_receive_count); /* pending: it is called back ABANDONED */
    peer->destroyer = pthread_self();
    atomic_store(&peer->in_destroy_call, 1);
    assert_int_equal(async_socket_destroy_async(peer->socket, on_destroyed, peer), 0);
    atomic_store(&peer->in_destroy_call, 0);
    wait_destroyed(1);
    assert_int_equal(atomic_load(&peer->destroy_calls), 1);
    assert_int_equal(atomic_load(&peer->destroyed_inside_call), 0);
    assert_int_equal(atomic_load(&peer->callbacks), 1);
    (void)close(peer->fd);
    free(peer);
    platform_deinit();
    leak_check_end(&check);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_174 */
static void destroy_async_from_its_own_callback_calls_back_after_that_callback_returns(void** state)
{
    (void)state;
    LEAK_CHECK check;
    leak_check_begin(&check);
    assert_int_equal(platform_init(), 0);
    atomic_store(&total_destroyed, 0);
    PEER* peer = peer_new();
    post_receive(peer, on_receive_destroy_self);
    assert_int_equal(send(peer->fd, "x", 1, MSG_NOSIGNAL), 1);
    wait_destroyed(1);
    assert_clean(peer);
    assert_int_equal(atomic_load(&peer->callbacks), 1);
    (void)close(peer->fd);
    free(peer);
    platform_deinit();
    leak_check_end(&check);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_174: the circle case, many times, across 4 workers: each
 * socket's receive callback destroys its partner while the partner's callback destroys it. */
static void sockets_destroying_each_other_across_4_workers_are_called_back_after_their_last_callback(void** state)
{
    (void)state;
    enum { PAIRS = 16 };
    uint32_t rounds = test_count_unless_slow(60, 6);
    LEAK_CHECK check;
    leak_check_begin(&check);
    watchdog_start(WATCHDOG_MS, __func__);
    assert_int_equal(platform_linux_set_worker_count(4), 0);
    assert_int_equal(platform_init(), 0);
    for (uint32_t round = 0; round < rounds; round++)
    {
        atomic_store(&total_destroyed, 0);
        PEER* peers[2 * PAIRS];
        for (int i = 0; i < 2 * PAIRS; i++)
        {
            peers[i] = peer_new();
        }
        for (int i = 0; i < 2 * PAIRS; i++)
        {
            peers[i]->partner = peers[i ^ 1];
            post_receive(peers[i], on_receive_destroy_partner);
        }
        for (int i = 0; i < 2 * PAIRS; i++)
        {
            assert_int_equal(send(peers[i]->fd, "x", 1, MSG_NOSIGNAL), 1);
        }
        wait_destroyed(2 * PAIRS);
        for (int i = 0; i < 2 * PAIRS; i++)
        {
            assert_clean(peers[i]);
            assert_int_equal(atomic_load(&peers[i]->callbacks), 1);
        }
        for (int i = 0; i < 2 * PAIRS; i++)
        {
            (void)close(peers[i]->fd);
            free(peers[i]);
        }
    }
    platform_deinit();
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    watchdog_stop();
    leak_check_end(&check);
}

static void destroy_async_refuses_null_arguments_without_a_callback(void** state)
{
    (void)state;
    assert_int_equal(platform_init(), 0);
    atomic_store(&total_destroyed, 0);
    log_capture_start();
    assert_int_not_equal(async_socket_destroy_async(NULL, on_destroyed, NULL), 0);
    PEER* peer = peer_new();
    assert_int_not_equal(async_socket_destroy_async(peer->socket, NULL, NULL), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 2);
    async_socket_destroy(peer->socket); /* untouched by the failed call */
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&total_destroyed), 0);
    (void)close(peer->fd);
    free(peer);
    platform_deinit();
}

/* ---- issue 11, item 7: a close that waits for another thread's close ---- */

typedef struct RACE_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    atomic_int in_callback;
    atomic_int closing;   /* closer threads that have entered async_socket_close */
    atomic_int closed;
    int waiters;
} RACE;

static void on_receive_linger(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)result;
    (void)bytes;
    RACE* race = context;
    atomic_store(&race->in_callback, 1);
    /* the first closer waits for this callback; it lingers until every other closer is in its
     * close too (bounded: a worker must not hang the test) */
    for (int i = 0; i < 5000 && atomic_load(&race->closing) < race->waiters; i++)
    {
        test_sleep_ms(1);
    }
    test_sleep_ms(2);
}

static void* second_closer(void* arg)
{
    RACE* race = arg;
    (void)atomic_fetch_add(&race->closing, 1);
    async_socket_close(race->socket);
    (void)atomic_fetch_add(&race->closed, 1);
    return NULL;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_170: the first closer destroys the socket the moment its close
 * returns, while other threads still wait in their own close for it. Without the waiters'
 * reference the destroy frees the socket under them (ASan: heap-use-after-free in closed()). */
static void a_destroy_right_after_close_does_not_free_the_socket_under_a_waiting_close(void** state)
{
    (void)state;
    enum { WAITERS = 3 };
    uint32_t rounds = test_count_unless_slow(40, 8);
    LEAK_CHECK check;
    leak_check_begin(&check);
    watchdog_start(WATCHDOG_MS, __func__);
    assert_int_equal(platform_linux_set_worker_count(2), 0);
    assert_int_equal(platform_init(), 0);
    for (uint32_t round = 0; round < rounds; round++)
    {
        RACE race = {.waiters = WAITERS};
        int peer;
        race.socket = open_tcp_async(0, 0, &peer, NULL);
        uint8_t byte;
        ASYNC_SOCKET_BUFFER buffer = {.buffer = &byte, .length = 1};
        assert_int_equal(async_socket_receive_async(race.socket, &buffer, 1, on_receive_linger, &race), 0);
        assert_int_equal(send(peer, "x", 1, MSG_NOSIGNAL), 1);
        for (int i = 0; i < 5000 && atomic_load(&race.in_callback) == 0; i++)
        {
            test_sleep_ms(1);
        }
        assert_int_equal(atomic_load(&race.in_callback), 1);
        pthread_t threads[WAITERS];
        /* this thread closes first: it waits for the callback */
        for (int i = 0; i < WAITERS; i++)
        {
            assert_int_equal(pthread_create(&threads[i], NULL, second_closer, &race), 0);
        }
        async_socket_close(race.socket);
        async_socket_destroy(race.socket);
        for (int i = 0; i < WAITERS; i++)
        {
            assert_int_equal(pthread_join(threads[i], NULL), 0);
        }
        assert_int_equal(atomic_load(&race.closed), WAITERS);
        (void)close(peer);
    }
    platform_deinit();
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    watchdog_stop();
    leak_check_end(&check);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(destroy_async_from_the_main_thread_calls_back_once_on_a_worker),
    cmocka_unit_test(destroy_async_from_its_own_callback_calls_back_after_that_callback_returns),
    cmocka_unit_test(sockets_destroying_each_other_across_4_workers_are_called_back_after_their_last_callback),
    cmocka_unit_test(destroy_async_refuses_null_arguments_without_a_callback),
    cmocka_unit_test(a_destroy_right_after_close_does_not_free_the_socket_under_a_waiting_close),
};

TEST_MAIN(tests)
