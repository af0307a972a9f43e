/* Integration tests for how a destroy made outside any callback waits for the teardown that the
 * last reference performs, wherever that reference is dropped: by a worker still in a callback
 * of the socket, by a worker running a post it had not reached yet, by another thread's close.
 * The teardown finds the waiting destroy in a list shared by all sockets, so several threads
 * destroy many sockets at the same time too. And close: a close racing another thread's close.
 *
 * Every test ends with no allocation and no fd leaked; a watchdog turns a deadlock into a failure
 * with a message, and each wait has its own timeout. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "c_pal/platform_linux.h"
#include "lifecycle_int_util.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"

#define WATCHDOG_MS 20000

/* ---- a custom transport: plain send/recv on the fd; the context is the fd ---- */

static int fd_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)async_socket;
    return (int)send(*(const int*)context, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int fd_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)async_socket;
    return (int)recv(*(const int*)context, buf, len, MSG_DONTWAIT);
}

/* A socket over a unix pair with the custom transport above: it counts as readable from open on
 * (99_041), so a receive posted on it is handed to a worker by a post. *fd must outlive it. */
static ASYNC_SOCKET_HANDLE open_custom_async(int* fd, int* peer)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    *fd = fds[0];
    *peer = fds[1];
    ASYNC_SOCKET_HANDLE socket = async_socket_create_with_transport(NULL, fds[0], fd_on_send, fd, fd_on_recv, fd);
    assert_non_null(socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);
    assert_int_equal(test_open(socket, &open_record), 0);
    assert_once_with(&open_record, ASYNC_SOCKET_OPEN_OK);
    return socket;
}

/* ---- a worker kept busy in a callback until released ---- */

typedef struct BLOCKER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    int peer;
    OP_RECORD receive;
    uint8_t buffer[8];
    atomic_int entered;  /* the worker is in the blocking callback */
    atomic_int release;  /* set to let it return */
} BLOCKER;

static void hook_block_until_released(OP_RECORD* record)
{
    BLOCKER* blocker = record->hook_context;
    atomic_store(&blocker->entered, 1);
    while (atomic_load(&blocker->release) == 0)
    {
        test_sleep_ms(1);
    }
}

/* With one worker, parks that worker in a receive callback of a socket of its own: posts and
 * events for every other socket wait until blocker_release. */
static void blocker_start(BLOCKER* blocker)
{
    atomic_init(&blocker->entered, 0);
    atomic_init(&blocker->release, 0);
    blocker->socket = open_unix_async(&blocker->peer, NULL);
    op_record_init(&blocker->receive, NULL);
    blocker->receive.hook = hook_block_until_released;
    blocker->receive.hook_context = blocker;
    assert_int_equal(test_receive(blocker->socket, blocker->buffer, sizeof(blocker->buffer), &blocker->receive), 0);
    uint8_t byte = 1;
    assert_int_equal(send(blocker->peer, &byte, 1, MSG_NOSIGNAL), 1);
    TEST_WAIT_UNTIL(atomic_load(&blocker->entered) == 1, 3000);
}

static void blocker_release(BLOCKER* blocker)
{
    atomic_store(&blocker->release, 1);
}

static void blocker_end(BLOCKER* blocker)
{
    TEST_WAIT_UNTIL(atomic_load(&blocker->receive.hook_done) == 1, 3000);
    async_socket_destroy(blocker->socket);
    assert_once_with(&blocker->receive, ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(close(blocker->peer), 0);
}

typedef struct DELAYED_RELEASE_TAG
{
    BLOCKER* blocker;
    unsigned int delay_ms;
} DELAYED_RELEASE;

static void* release_after_delay(void* arg)
{
    DELAYED_RELEASE* delayed = arg;
    test_sleep_ms(delayed->delay_ms);
    blocker_release(delayed->blocker);
    return NULL;
}

/* ---- destroy waits for a worker ---- */

typedef struct LINGER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    atomic_int close_returned;
    atomic_int linger_done;
} LINGER;

/* Closes its own socket from inside the callback, then stays in the callback a while: the worker
 * keeps its reference (the one of the delivery) until the callback has returned. */
static void hook_close_then_linger(OP_RECORD* record)
{
    LINGER* linger = record->hook_context;
    async_socket_close(linger->socket);
    atomic_store(&linger->close_returned, 1);
    test_sleep_ms(200);
    atomic_store(&linger->linger_done, 1);
}

/* A receive callback closes its socket and goes on running on the worker; the test thread, seeing
 * the close returned, destroys the socket. The destroy finds it CLOSED (nothing to wait for on
 * that account) but the worker still holds it: destroy returns only once the worker has left the
 * callback and dropped the last reference, with the memory freed and the fd closed. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_020 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
static void destroy_after_a_close_in_a_callback_waits_for_the_worker_to_leave_it(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    warm_up_port();
    int64_t live_before = sys_fault_live_allocations();

    for (int round = 0; round < 3; round++)
    {
        int peer;
        int fd;
        LINGER linger;
        linger.socket = open_tcp_async(0, 0, &peer, &fd);
        atomic_init(&linger.close_returned, 0);
        atomic_init(&linger.linger_done, 0);
        OP_RECORD receives[2];
        uint8_t buffers[2][16];
        for (int i = 0; i < 2; i++)
        {
            op_record_init(&receives[i], &linger.close_returned);
            assert_int_equal(test_receive(linger.socket, buffers[i], sizeof(buffers[i]), &receives[i]), 0);
        }
        receives[0].hook = hook_close_then_linger;
        receives[0].hook_context = &linger;

        uint8_t byte = 7;
        assert_int_equal(send(peer, &byte, 1, MSG_NOSIGNAL), 1);
        TEST_WAIT_UNTIL(atomic_load(&linger.close_returned) == 1, 3000);
        assert_int_equal(atomic_load(&linger.linger_done), 0);

        int watch = sys_fault_watch_free(linger.socket);
        assert_true(watch >= 0);
        async_socket_destroy(linger.socket);
        /* the worker's reference was the last one: destroy waited for it */
        assert_int_equal(atomic_load(&linger.linger_done), 1);
        assert_true(sys_fault_freed(watch));
        sys_fault_unwatch(watch);
        assert_int_equal(sys_fault_live_allocations(), live_before);
        assert_true(fd_is_closed(fd));
        assert_once_with(&receives[0], ASYNC_SOCKET_RECEIVE_OK);
        assert_once_with(&receives[1], ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_no_callback_after_close("receive", receives, 2);
        (void)drain_until_eof(peer, 2000, false);
        assert_int_equal(close(peer), 0);
    }

    lifecycle_end(&leak);
}

/* One worker, parked in a callback of another socket. A receive on a socket with a custom
 * transport is handed to that worker by a post, which holds a reference until the worker runs
 * it. Destroying the socket meanwhile closes it (the receive is ABANDONED on the test thread) and
 * then must wait: the teardown happens on the worker, once it is released and reaches the post. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
static void destroy_waits_for_a_post_that_the_busy_worker_has_not_run_yet(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin_with_workers(&leak, 1, WATCHDOG_MS, __func__);
    warm_up_port();
    BLOCKER blocker;
    blocker_start(&blocker);
    int64_t live_before = sys_fault_live_allocations();

    int fd;
    int peer;
    ASYNC_SOCKET_HANDLE socket = open_custom_async(&fd, &peer);
    atomic_int close_returned;
    atomic_init(&close_returned, 0);
    OP_RECORD receive;
    uint8_t buffer[16];
    op_record_init(&receive, &close_returned);
    assert_int_equal(test_receive(socket, buffer, sizeof(buffer), &receive), 0);

    DELAYED_RELEASE delayed = {.blocker = &blocker, .delay_ms = 300};
    pthread_t releaser;
    assert_int_equal(pthread_create(&releaser, NULL, release_after_delay, &delayed), 0);
    int watch = sys_fault_watch_free(socket);
    assert_true(watch >= 0);
    async_socket_destroy(socket);
    atomic_store(&close_returned, 1);
    /* only the released worker could drop the post's reference */
    assert_int_equal(atomic_load(&blocker.release), 1);
    assert_true(sys_fault_freed(watch));
    sys_fault_unwatch(watch);
    assert_int_equal(sys_fault_live_allocations(), live_before);
    assert_true(fd_is_closed(fd));
    assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(pthread_join(releaser, NULL), 0);
    assert_int_equal(close(peer), 0);

    blocker_end(&blocker);
    lifecycle_end_with_workers(&leak);
}

/* ---- many destroys at once ---- */

#define DESTROY_THREADS 6
#define SOCKETS_PER_THREAD 16

typedef struct DESTROYER_TAG
{
    ASYNC_SOCKET_HANDLE sockets[SOCKETS_PER_THREAD];
    int fds[SOCKETS_PER_THREAD];
    int peers[SOCKETS_PER_THREAD];
    OP_RECORD receives[SOCKETS_PER_THREAD];
    uint8_t buffers[SOCKETS_PER_THREAD][16];
    atomic_int* go;
    atomic_int* ready;
    atomic_int done;
    atomic_int not_freed; /* destroys that returned before their socket's memory was freed */
} DESTROYER;

static void* destroy_all(void* arg)
{
    DESTROYER* destroyer = arg;
    (void)atomic_fetch_add(destroyer->ready, 1);
    while (atomic_load(destroyer->go) == 0)
    {
        test_sleep_ms(1);
    }
    for (int i = 0; i < SOCKETS_PER_THREAD; i++)
    {
        int watch = sys_fault_watch_free(destroyer->sockets[i]);
        async_socket_destroy(destroyer->sockets[i]);
        if (watch < 0 || !sys_fault_freed(watch))
        {
            (void)atomic_fetch_add(&destroyer->not_freed, 1);
        }
        if (watch >= 0)
        {
            sys_fault_unwatch(watch);
        }
    }
    atomic_store(&destroyer->done, 1);
    return NULL;
}

/* Several threads each destroy their own sockets, all at the same time, while the only worker
 * still holds many of them: the custom-transport sockets by the post of their receive, the
 * others maybe by an event for the byte their peer sent. The teardowns run in the worker's order,
 * not in the order the destroys started waiting, so each must find its own waiting destroy among
 * several. Every destroy returns, every receive is called back once, nothing is left. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_048 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void concurrent_destroys_of_many_sockets_from_several_threads_all_return(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin_with_workers(&leak, 1, WATCHDOG_MS, __func__);
    warm_up_port();
    int fds_before = test_count_open_fds();

    for (int round = 0; round < 2; round++)
    {
        /* round 0: the worker is parked while the destroys start; round 1: it runs freely */
        int64_t live_before = sys_fault_live_allocations();
        BLOCKER blocker;
        if (round == 0)
        {
            blocker_start(&blocker);
        }
        static DESTROYER destroyers[DESTROY_THREADS];
        atomic_int go;
        atomic_int ready;
        atomic_init(&go, 0);
        atomic_init(&ready, 0);
        for (int t = 0; t < DESTROY_THREADS; t++)
        {
            DESTROYER* destroyer = &destroyers[t];
            destroyer->go = &go;
            destroyer->ready = &ready;
            atomic_init(&destroyer->done, 0);
            atomic_init(&destroyer->not_freed, 0);
            for (int i = 0; i < SOCKETS_PER_THREAD; i++)
            {
                bool custom = ((i + t) % 2) == 0;
                destroyer->sockets[i] = custom ? open_custom_async(&destroyer->fds[i], &destroyer->peers[i]) :
                    open_unix_async(&destroyer->peers[i], &destroyer->fds[i]);
                op_record_init(&destroyer->receives[i], NULL);
                assert_int_equal(test_receive(destroyer->sockets[i], destroyer->buffers[i], sizeof(destroyer->buffers[i]), &destroyer->receives[i]), 0);
                if (!custom)
                {
                    uint8_t byte = (uint8_t)i;
                    assert_int_equal(send(destroyer->peers[i], &byte, 1, MSG_NOSIGNAL), 1);
                }
            }
        }
        pthread_t threads[DESTROY_THREADS];
        for (int t = 0; t < DESTROY_THREADS; t++)
        {
            assert_int_equal(pthread_create(&threads[t], NULL, destroy_all, &destroyers[t]), 0);
        }
        TEST_WAIT_UNTIL(atomic_load(&ready) == DESTROY_THREADS, 3000);
        atomic_store(&go, 1);
        if (round == 0)
        {
            /* each thread has sockets held by a post the parked worker has not run: no thread can
             * have finished */
            test_sleep_ms(100);
            for (int t = 0; t < DESTROY_THREADS; t++)
            {
                assert_int_equal(atomic_load(&destroyers[t].done), 0);
            }
            blocker_release(&blocker);
        }
        for (int t = 0; t < DESTROY_THREADS; t++)
        {
            assert_int_equal(pthread_join(threads[t], NULL), 0);
            /* each destroy returned with its own socket freed, not merely some socket */
            assert_int_equal(atomic_load(&destroyers[t].not_freed), 0);
        }
        if (round == 0)
        {
            blocker_end(&blocker);
        }
        assert_int_equal(sys_fault_live_allocations(), live_before);
        for (int t = 0; t < DESTROY_THREADS; t++)
        {
            for (int i = 0; i < SOCKETS_PER_THREAD; i++)
            {
                assert_int_equal(atomic_load(&destroyers[t].receives[i].calls), 1);
                assert_true(fd_is_closed(destroyers[t].fds[i]));
                assert_int_equal(close(destroyers[t].peers[i]), 0);
            }
        }
        assert_int_equal(test_count_open_fds(), fds_before);
    }

    lifecycle_end_with_workers(&leak);
}

/* ---- each teardown wakes its own destroy ---- */

typedef struct HELD_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    int peer;
    int fd;
    OP_RECORD receive;
    uint8_t buffer[8];
    atomic_int close_returned;
    atomic_int release;
    atomic_int destroy_returned;
    atomic_int freed_at_return; /* 1: the socket's memory was freed when its destroy returned */
} HELD;

/* Closes its own socket, then keeps the worker (and its reference) until released. */
static void hook_close_then_hold(OP_RECORD* record)
{
    HELD* held = record->hook_context;
    async_socket_close(held->socket);
    atomic_store(&held->close_returned, 1);
    while (atomic_load(&held->release) == 0)
    {
        test_sleep_ms(1);
    }
}

static void held_start(HELD* held)
{
    held->socket = open_tcp_async(0, 0, &held->peer, &held->fd);
    atomic_init(&held->close_returned, 0);
    atomic_init(&held->release, 0);
    atomic_init(&held->destroy_returned, 0);
    atomic_init(&held->freed_at_return, 0);
    op_record_init(&held->receive, NULL);
    held->receive.hook = hook_close_then_hold;
    held->receive.hook_context = held;
    assert_int_equal(test_receive(held->socket, held->buffer, sizeof(held->buffer), &held->receive), 0);
    uint8_t byte = 3;
    assert_int_equal(send(held->peer, &byte, 1, MSG_NOSIGNAL), 1);
    TEST_WAIT_UNTIL(atomic_load(&held->close_returned) == 1, 3000);
}

static void* destroy_held(void* arg)
{
    HELD* held = arg;
    int watch = sys_fault_watch_free(held->socket);
    async_socket_destroy(held->socket);
    atomic_store(&held->freed_at_return, (watch >= 0 && sys_fault_freed(watch)) ? 1 : 0);
    if (watch >= 0)
    {
        sys_fault_unwatch(watch);
    }
    atomic_store(&held->destroy_returned, 1);
    return NULL;
}

/* Two workers, each kept in a callback of its own socket (which that callback closed); a thread
 * destroys each socket, one after the other, and both wait. Releasing one worker tears down its
 * socket: that socket's destroy returns, with the memory freed, and the other destroy goes on
 * waiting until its own worker lets go, whichever order the destroys started in. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_048 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
static void a_teardown_wakes_the_destroy_of_its_own_socket_only(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin_with_workers(&leak, 2, WATCHDOG_MS, __func__);
    warm_up_port();
    int64_t live_before = sys_fault_live_allocations();

    for (int round = 0; round < 2; round++)
    {
        HELD held[2];
        held_start(&held[0]); /* one worker stays in its callback ... */
        held_start(&held[1]); /* ... and the other in this one's */
        pthread_t threads[2];
        for (int i = 0; i < 2; i++)
        {
            assert_int_equal(pthread_create(&threads[i], NULL, destroy_held, &held[i]), 0);
            test_sleep_ms(30); /* the second destroy starts waiting after the first */
        }
        test_sleep_ms(30);
        assert_int_equal(atomic_load(&held[0].destroy_returned), 0);
        assert_int_equal(atomic_load(&held[1].destroy_returned), 0);
        /* round 0 releases the socket destroyed first, round 1 the one destroyed last */
        int first = (round == 0) ? 0 : 1;
        int other = 1 - first;
        atomic_store(&held[first].release, 1);
        TEST_WAIT_UNTIL(atomic_load(&held[first].destroy_returned) == 1, 3000);
        assert_int_equal(atomic_load(&held[first].freed_at_return), 1);
        test_sleep_ms(50);
        assert_int_equal(atomic_load(&held[other].destroy_returned), 0);
        atomic_store(&held[other].release, 1);
        TEST_WAIT_UNTIL(atomic_load(&held[other].destroy_returned) == 1, 3000);
        assert_int_equal(atomic_load(&held[other].freed_at_return), 1);
        for (int i = 0; i < 2; i++)
        {
            assert_int_equal(pthread_join(threads[i], NULL), 0);
            assert_once_with(&held[i].receive, ASYNC_SOCKET_RECEIVE_OK);
            assert_true(fd_is_closed(held[i].fd));
            (void)drain_until_eof(held[i].peer, 2000, false);
            assert_int_equal(close(held[i].peer), 0);
        }
        assert_int_equal(sys_fault_live_allocations(), live_before);
    }

    lifecycle_end_with_workers(&leak);
}

/* ---- closes racing closes ---- */

typedef struct SLOW_CLOSE_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    OP_RECORD* receive;
    atomic_int slept_started;
    atomic_int slept_finished;
    atomic_int entering;      /* the thread is about to call close */
    atomic_int returned;
    atomic_int calls_seen;    /* the receive's callbacks when its close returned */
} SLOW_CLOSE;

static void hook_sleep_when_abandoned(OP_RECORD* record)
{
    SLOW_CLOSE* slow = record->hook_context;
    if (atomic_load(&record->result) != ASYNC_SOCKET_RECEIVE_ABANDONED)
    {
        return;
    }
    atomic_store(&slow->slept_started, 1);
    test_sleep_ms(100);
    atomic_store(&slow->slept_finished, 1);
}

static void* close_and_note(void* arg)
{
    SLOW_CLOSE* slow = arg;
    atomic_store(&slow->entering, 1);
    async_socket_close(slow->socket);
    atomic_store(&slow->calls_seen, atomic_load(&slow->receive->calls));
    atomic_store(&slow->returned, 1);
    return NULL;
}

/* A close runs on one thread (its ABANDONED callback takes its time); a second thread and then the
 * test thread close the same socket meanwhile. Neither returns before the first close has
 * finished (the pending receive is called back once, by the first). The test thread then destroys
 * the socket at once, while the first closer may still hold its reference: destroy returns with
 * the memory freed and the fd closed, whichever thread dropped the last reference. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_024 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_042 */
static void close_racing_closes_on_other_threads_then_destroy(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    warm_up_port();
    int64_t live_before = sys_fault_live_allocations();

    for (int round = 0; round < 6; round++)
    {
        int peer;
        int fd;
        SLOW_CLOSE first;
        SLOW_CLOSE second;
        memset(&first, 0, sizeof(first));
        memset(&second, 0, sizeof(second));
        atomic_int close_returned;
        atomic_init(&close_returned, 0);
        OP_RECORD receive;
        uint8_t buffer[16];
        first.socket = open_tcp_async(0, 0, &peer, &fd);
        second.socket = first.socket;
        first.receive = &receive;
        second.receive = &receive;
        op_record_init(&receive, &close_returned);
        receive.hook = hook_sleep_when_abandoned;
        receive.hook_context = &first;
        assert_int_equal(test_receive(first.socket, buffer, sizeof(buffer), &receive), 0);

        pthread_t first_thread;
        pthread_t second_thread;
        assert_int_equal(pthread_create(&first_thread, NULL, close_and_note, &first), 0);
        TEST_WAIT_UNTIL(atomic_load(&first.slept_started) == 1, 3000);
        /* in odd rounds a second thread closes too, while the first close is in the callback */
        bool with_second = (round & 1) != 0;
        if (with_second)
        {
            assert_int_equal(pthread_create(&second_thread, NULL, close_and_note, &second), 0);
            TEST_WAIT_UNTIL(atomic_load(&second.entering) == 1, 3000);
        }
        async_socket_close(first.socket);
        assert_int_equal(atomic_load(&first.slept_finished), 1);
        assert_int_equal(atomic_load(&receive.calls), 1);
        if (with_second)
        {
            assert_int_equal(pthread_join(second_thread, NULL), 0);
            assert_int_equal(atomic_load(&second.calls_seen), 1);
        }
        atomic_store(&close_returned, 1);

        int watch = sys_fault_watch_free(first.socket);
        assert_true(watch >= 0);
        async_socket_destroy(first.socket);
        assert_true(sys_fault_freed(watch));
        sys_fault_unwatch(watch);
        assert_int_equal(sys_fault_live_allocations(), live_before);
        assert_true(fd_is_closed(fd));
        assert_int_equal(pthread_join(first_thread, NULL), 0);
        assert_int_equal(atomic_load(&first.calls_seen), 1);
        assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_int_equal(atomic_load(&receive.after_close), 0);
        (void)drain_until_eof(peer, 2000, false);
        assert_int_equal(close(peer), 0);
    }

    lifecycle_end(&leak);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(destroy_after_a_close_in_a_callback_waits_for_the_worker_to_leave_it),
    cmocka_unit_test(destroy_waits_for_a_post_that_the_busy_worker_has_not_run_yet),
    cmocka_unit_test(concurrent_destroys_of_many_sockets_from_several_threads_all_return),
    cmocka_unit_test(a_teardown_wakes_the_destroy_of_its_own_socket_only),
    cmocka_unit_test(close_racing_closes_on_other_threads_then_destroy),
};

TEST_MAIN(tests)
