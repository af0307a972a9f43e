/* Unit tests for the completion port: the real epoll port and its worker threads, driven through a
 * small test owner that embeds a COMPLETION_PORT_IO and counts what the port does to it (on_events
 * calls, event bits, hold/release), on socketpair(AF_UNIX, SOCK_STREAM) fds.
 *
 * Worker threads are counted in /proc/self/task, fds in /proc/self/fd and allocations through the
 * fault-injecting sys seam, so "the port is gone" is checked, not assumed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/completion_port_linux.h"
#include "c_pal/logger.h"
#include "log_capture.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"

/* ---- baselines ---- */

/* Allocations and fds back to the baseline, and the worker threads gone. */
static void assert_back_to(TEST_BASELINE baseline)
{
    test_baseline_assert_back_to(baseline);
    assert_int_equal(test_count_threads(), baseline.threads);
}

static uint32_t expected_default_workers(void)
{
    /* one per online CPU, at least one (see completion_port_default_worker_count) */
    long workers = sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 1)
    {
        return 1;
    }
    return (workers > COMPLETION_PORT_MAX_WORKERS) ? COMPLETION_PORT_MAX_WORKERS : (uint32_t)workers;
}

static void make_pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
}

/* ---- a gate a callback can wait at ---- */

typedef struct GATE_TAG
{
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int entered;
} GATE;

static void gate_init(GATE* gate)
{
    (void)pthread_mutex_init(&gate->lock, NULL);
    (void)pthread_cond_init(&gate->cond, NULL);
    gate->open = false;
    atomic_init(&gate->entered, 0);
}

static void gate_wait(GATE* gate)
{
    (void)atomic_fetch_add(&gate->entered, 1);
    (void)pthread_mutex_lock(&gate->lock);
    while (!gate->open)
    {
        (void)pthread_cond_wait(&gate->cond, &gate->lock);
    }
    (void)pthread_mutex_unlock(&gate->lock);
}

static void gate_open(GATE* gate)
{
    (void)pthread_mutex_lock(&gate->lock);
    gate->open = true;
    (void)pthread_cond_broadcast(&gate->cond);
    (void)pthread_mutex_unlock(&gate->lock);
}

static void gate_deinit(GATE* gate)
{
    (void)pthread_cond_destroy(&gate->cond);
    (void)pthread_mutex_destroy(&gate->lock);
}

/* ---- the test owner ---- */

typedef struct TEST_IO_TAG
{
    COMPLETION_PORT_IO io;
    atomic_int holds;
    atomic_int releases;
    atomic_int event_calls;   /* on_events with event bits */
    atomic_int post_calls;    /* on_events with 0 (a post) */
    atomic_uint events_seen;  /* OR of every event's bits */
    atomic_uint last_events;
    atomic_bool on_caller_thread;
    pthread_t caller;
    GATE* gate;               /* when set, a post waits here */
    COMPLETION_PORT_HANDLE port;
    atomic_int reposts_left;  /* a post re-posts itself this many times */
    atomic_bool dec_ref_on_post; /* a post drops the port reference it was given */
    atomic_bool repost_failed;
} TEST_IO;

static TEST_IO* test_io_from(COMPLETION_PORT_IO* io)
{
    return (TEST_IO*)((char*)io - offsetof(TEST_IO, io));
}

static void test_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    TEST_IO* owner = test_io_from(io);
    if (pthread_equal(pthread_self(), owner->caller))
    {
        atomic_store(&owner->on_caller_thread, true);
    }
    if (events == 0)
    {
        if (owner->gate != NULL)
        {
            gate_wait(owner->gate);
        }
        if (atomic_fetch_sub(&owner->reposts_left, 1) > 0 && completion_port_post(owner->port, io) != 0)
        {
            atomic_store(&owner->repost_failed, true);
        }
        if (atomic_load(&owner->dec_ref_on_post))
        {
            completion_port_dec_ref(owner->port);
        }
        (void)atomic_fetch_add(&owner->post_calls, 1);
    }
    else
    {
        (void)atomic_fetch_or(&owner->events_seen, events);
        atomic_store(&owner->last_events, events);
        (void)atomic_fetch_add(&owner->event_calls, 1);
    }
}

static void test_hold(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add(&test_io_from(io)->holds, 1);
}

static void test_release(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add(&test_io_from(io)->releases, 1);
}

static const COMPLETION_PORT_IO_OPS test_io_ops = { test_on_events, test_hold, test_release };

static void test_io_init(TEST_IO* owner, COMPLETION_PORT_HANDLE port)
{
    memset(owner, 0, sizeof(*owner));
    owner->io.ops = &test_io_ops;
    owner->io.fd = -1;
    owner->caller = pthread_self();
    owner->port = port;
}

static bool balanced(TEST_IO* owner)
{
    return atomic_load(&owner->holds) == atomic_load(&owner->releases);
}

/* Waits until the owner has seen no new event for quiet_ms. */
static void wait_quiet(TEST_IO* owner, unsigned quiet_ms)
{
    int seen = atomic_load(&owner->event_calls);
    uint64_t since = test_now_ms();
    uint64_t start = since;
    while (test_now_ms() - since < quiet_ms)
    {
        test_sleep_ms(1);
        int now = atomic_load(&owner->event_calls);
        if (now != seen)
        {
            seen = now;
            since = test_now_ms();
        }
        assert_true(test_now_ms() - start < 3000);
    }
}

/* ---- create / ref counting ---- */

static void completion_port_create_starts_the_requested_workers(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    for (uint32_t workers = 1; workers <= 4; workers++)
    {
        log_capture_start();
        COMPLETION_PORT_HANDLE port = completion_port_create(workers);
        assert_int_equal(log_capture_stop(), 0);
        assert_non_null(port);
        assert_int_equal(completion_port_get_worker_count(port), workers);
        assert_int_equal(test_count_threads(), baseline.threads + (int)workers);
        /* the port owns an epoll fd and an eventfd */
        assert_int_equal(test_count_open_fds(), baseline.fds + 2);
        completion_port_dec_ref(port);
        /* the last reference joined every worker before returning */
        assert_back_to(baseline);
    }
}

static void completion_port_create_with_zero_workers_uses_one_per_cpu(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    assert_int_equal(completion_port_default_worker_count(), expected_default_workers());
    COMPLETION_PORT_HANDLE port = completion_port_create(0);
    assert_non_null(port);
    assert_int_equal(completion_port_get_worker_count(port), expected_default_workers());
    assert_int_equal(test_count_threads(), baseline.threads + (int)expected_default_workers());
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

static void completion_port_create_accepts_the_maximum_and_refuses_more(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(COMPLETION_PORT_MAX_WORKERS);
    assert_non_null(port);
    assert_int_equal(completion_port_get_worker_count(port), COMPLETION_PORT_MAX_WORKERS);
    assert_int_equal(test_count_threads(), baseline.threads + COMPLETION_PORT_MAX_WORKERS);
    completion_port_dec_ref(port);
    assert_back_to(baseline);

    uint32_t too_many[] = {COMPLETION_PORT_MAX_WORKERS + 1, 1000, UINT32_MAX};
    for (size_t i = 0; i < 3; i++)
    {
        log_capture_start();
        port = completion_port_create(too_many[i]);
        assert_int_equal(log_capture_stop(), 1);
        assert_null(port);
        assert_back_to(baseline);
    }
}

static void completion_port_lives_until_the_last_dec_ref(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    completion_port_inc_ref(port);
    completion_port_inc_ref(port);
    completion_port_dec_ref(port);
    completion_port_dec_ref(port);
    /* one reference left: the workers still run and a post is still delivered */
    assert_int_equal(test_count_threads(), baseline.threads + 2);
    TEST_IO owner;
    test_io_init(&owner, port);
    assert_int_equal(completion_port_post(port, &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == 1 && balanced(&owner), 2000);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* The last reference dropped from inside a callback on one of the port's own workers: that worker
 * cannot join itself; the port still goes away, with every thread, fd and allocation. */
static void completion_port_last_dec_ref_from_a_worker_frees_the_port(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(3);
    assert_non_null(port);
    TEST_IO owner;
    test_io_init(&owner, port);
    atomic_store(&owner.dec_ref_on_post, true);
    assert_int_equal(completion_port_post(port, &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == 1, 2000);
    TEST_WAIT_UNTIL(test_count_threads() == baseline.threads, 2000);
    TEST_WAIT_UNTIL(sys_fault_live_allocations() == baseline.allocations, 2000);
    TEST_WAIT_UNTIL(test_count_open_fds() == baseline.fds, 2000);
    assert_true(balanced(&owner));
}

/* ---- add / rearm / remove ---- */

static void completion_port_add_delivers_readiness_on_a_worker(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    int fds[2];
    make_pair(fds);
    TEST_IO owner;
    test_io_init(&owner, port);

    log_capture_start();
    assert_int_equal(completion_port_add(port, fds[0], &owner.io), 0);
    assert_int_equal(log_capture_stop(), 0);
    assert_int_equal(owner.io.fd, fds[0]);
    /* registration reports the current readiness: the socket is writable */
    TEST_WAIT_UNTIL((atomic_load(&owner.events_seen) & EPOLLOUT) != 0, 2000);
    assert_int_equal(atomic_load(&owner.events_seen) & EPOLLIN, 0);
    wait_quiet(&owner, 50);
    int before = atomic_load(&owner.event_calls);

    /* new data: an input event */
    assert_int_equal(write(fds[1], "x", 1), 1);
    TEST_WAIT_UNTIL((atomic_load(&owner.events_seen) & EPOLLIN) != 0, 2000);
    assert_true(atomic_load(&owner.event_calls) > before);
    /* the peer shuts its side: read hang-up is reported too */
    assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
    TEST_WAIT_UNTIL((atomic_load(&owner.events_seen) & EPOLLRDHUP) != 0, 2000);

    assert_false(atomic_load(&owner.on_caller_thread));
    assert_int_equal(atomic_load(&owner.post_calls), 0);
    wait_quiet(&owner, 20);
    /* every delivery held the owner and released it again */
    TEST_WAIT_UNTIL(balanced(&owner), 2000);
    assert_true(atomic_load(&owner.holds) >= atomic_load(&owner.event_calls));

    completion_port_remove(port, &owner.io);
    (void)close(fds[0]);
    (void)close(fds[1]);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* Edge-triggered: readiness that does not change is reported once; rearm asks again. */
static void completion_port_rearm_reports_the_current_readiness_again(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(1);
    assert_non_null(port);
    int fds[2];
    make_pair(fds);
    TEST_IO owner;
    test_io_init(&owner, port);
    assert_int_equal(completion_port_add(port, fds[0], &owner.io), 0);
    assert_int_equal(write(fds[1], "abc", 3), 3);
    TEST_WAIT_UNTIL((atomic_load(&owner.events_seen) & EPOLLIN) != 0, 2000);
    wait_quiet(&owner, 50);
    int before = atomic_load(&owner.event_calls);
    /* nothing changed: no event comes by itself */
    test_sleep_ms(50);
    assert_int_equal(atomic_load(&owner.event_calls), before);

    for (int round = 1; round <= 3; round++)
    {
        log_capture_start();
        assert_int_equal(completion_port_rearm(port, &owner.io), 0);
        assert_int_equal(log_capture_stop(), 0);
        TEST_WAIT_UNTIL(atomic_load(&owner.event_calls) == before + round, 2000);
        /* still unread data, still writable */
        assert_int_equal(atomic_load(&owner.last_events) & (EPOLLIN | EPOLLOUT), EPOLLIN | EPOLLOUT);
    }
    wait_quiet(&owner, 30);
    assert_int_equal(atomic_load(&owner.event_calls), before + 3);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);

    completion_port_remove(port, &owner.io);
    (void)close(fds[0]);
    (void)close(fds[1]);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

static void completion_port_remove_stops_delivery(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    int fds[2];
    make_pair(fds);
    TEST_IO owner;
    test_io_init(&owner, port);
    assert_int_equal(completion_port_add(port, fds[0], &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.event_calls) >= 1, 2000);
    wait_quiet(&owner, 30);

    log_capture_start();
    completion_port_remove(port, &owner.io);
    assert_int_equal(log_capture_stop(), 0);
    int calls = atomic_load(&owner.event_calls);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);
    int holds = atomic_load(&owner.holds);

    assert_int_equal(write(fds[1], "data", 4), 4);
    assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
    test_sleep_ms(100);
    assert_int_equal(atomic_load(&owner.event_calls), calls);
    assert_int_equal(atomic_load(&owner.holds), holds);
    assert_true(balanced(&owner));

    /* a removed io cannot be re-armed */
    log_capture_start();
    assert_int_not_equal(completion_port_rearm(port, &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&owner.event_calls), calls);

    /* but it can be added again */
    assert_int_equal(completion_port_add(port, fds[0], &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.event_calls) > calls, 2000);
    completion_port_remove(port, &owner.io);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);

    (void)close(fds[0]);
    (void)close(fds[1]);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* A removed registration gets nothing even when its fd number is reused by a new registration:
 * events go to the new owner only. */
static void completion_port_events_for_a_removed_io_are_not_delivered_after_fd_reuse(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    int first[2];
    make_pair(first);
    TEST_IO old_owner;
    test_io_init(&old_owner, port);
    assert_int_equal(completion_port_add(port, first[0], &old_owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&old_owner.event_calls) >= 1, 2000);
    wait_quiet(&old_owner, 30);
    completion_port_remove(port, &old_owner.io);
    int old_calls = atomic_load(&old_owner.event_calls);
    int reused_fd = first[0];
    (void)close(first[0]);
    (void)close(first[1]);

    int second[2];
    make_pair(second);
    assert_int_equal(second[0], reused_fd);
    TEST_IO new_owner;
    test_io_init(&new_owner, port);
    assert_int_equal(completion_port_add(port, second[0], &new_owner.io), 0);
    assert_int_equal(write(second[1], "hello", 5), 5);
    TEST_WAIT_UNTIL((atomic_load(&new_owner.events_seen) & EPOLLIN) != 0, 2000);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&old_owner.event_calls), old_calls);
    TEST_WAIT_UNTIL(balanced(&old_owner) && balanced(&new_owner), 2000);

    completion_port_remove(port, &new_owner.io);
    (void)close(second[0]);
    (void)close(second[1]);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* fds beyond the first table chunk work the same. */
static void completion_port_add_works_for_a_high_fd(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(1);
    assert_non_null(port);
    int fds[2];
    make_pair(fds);
    int high = fcntl(fds[0], F_DUPFD_CLOEXEC, 900);
    assert_true(high >= 900);
    (void)close(fds[0]);
    TEST_IO owner;
    test_io_init(&owner, port);
    assert_int_equal(completion_port_add(port, high, &owner.io), 0);
    assert_int_equal(write(fds[1], "z", 1), 1);
    TEST_WAIT_UNTIL((atomic_load(&owner.events_seen) & EPOLLIN) != 0, 2000);
    completion_port_remove(port, &owner.io);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);
    (void)close(high);
    (void)close(fds[1]);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* ---- post ---- */

static void completion_port_post_delivers_once_per_post_on_a_worker(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    TEST_IO owner;
    test_io_init(&owner, port);
    for (int i = 1; i <= 500; i++)
    {
        assert_int_equal(completion_port_post(port, &owner.io), 0);
        TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == i, 2000);
    }
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&owner.post_calls), 500);
    assert_int_equal(atomic_load(&owner.event_calls), 0);
    assert_false(atomic_load(&owner.on_caller_thread));
    TEST_WAIT_UNTIL(balanced(&owner), 2000);
    assert_int_equal(atomic_load(&owner.holds), 500);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* Posting an io that is already posted does nothing: one delivery for all of those posts. */
static void completion_port_post_while_posted_coalesces(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(1);
    assert_non_null(port);
    GATE gate;
    gate_init(&gate);
    TEST_IO blocker;
    test_io_init(&blocker, port);
    blocker.gate = &gate;
    TEST_IO owner;
    test_io_init(&owner, port);

    /* the only worker is busy in the blocker's callback */
    assert_int_equal(completion_port_post(port, &blocker.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&gate.entered) == 1, 2000);
    for (int i = 0; i < 5; i++)
    {
        assert_int_equal(completion_port_post(port, &owner.io), 0);
    }
    /* one reference for the one pending delivery */
    assert_int_equal(atomic_load(&owner.holds), 1);
    gate_open(&gate);
    TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == 1, 2000);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&owner.post_calls), 1);
    TEST_WAIT_UNTIL(balanced(&owner) && balanced(&blocker), 2000);

    /* once delivered, a new post is a new delivery */
    assert_int_equal(completion_port_post(port, &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == 2, 2000);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);

    completion_port_dec_ref(port);
    gate_deinit(&gate);
    assert_back_to(baseline);
}

/* on_events may post its own io again (the posted mark is cleared before the call). */
static void completion_port_post_from_inside_on_events_is_delivered(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    TEST_IO owner;
    test_io_init(&owner, port);
    atomic_store(&owner.reposts_left, 10);
    assert_int_equal(completion_port_post(port, &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == 11, 2000);
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&owner.post_calls), 11);
    assert_false(atomic_load(&owner.repost_failed));
    TEST_WAIT_UNTIL(balanced(&owner), 2000);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

typedef struct POSTER_TAG
{
    COMPLETION_PORT_HANDLE port;
    TEST_IO owner;
    int posts;
    bool ok;
} POSTER;

static void* poster_thread(void* arg)
{
    POSTER* poster = arg;
    poster->ok = true;
    for (int i = 1; i <= poster->posts; i++)
    {
        if (completion_port_post(poster->port, &poster->owner.io) != 0)
        {
            poster->ok = false;
            return NULL;
        }
        uint64_t start = test_now_ms();
        while (atomic_load(&poster->owner.post_calls) != i)
        {
            if (test_now_ms() - start > 3000)
            {
                poster->ok = false;
                return NULL;
            }
            sched_yield();
        }
    }
    return NULL;
}

/* Many threads posting many ios at once: each post is delivered exactly once. */
static void completion_port_post_from_many_threads_delivers_each_exactly_once(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(4);
    assert_non_null(port);
    enum { POSTERS = 6 };
    static POSTER posters[POSTERS];
    pthread_t threads[POSTERS];
    for (int i = 0; i < POSTERS; i++)
    {
        posters[i].port = port;
        posters[i].posts = 300;
        test_io_init(&posters[i].owner, port);
        assert_int_equal(pthread_create(&threads[i], NULL, poster_thread, &posters[i]), 0);
    }
    for (int i = 0; i < POSTERS; i++)
    {
        (void)pthread_join(threads[i], NULL);
    }
    test_sleep_ms(20);
    for (int i = 0; i < POSTERS; i++)
    {
        assert_true(posters[i].ok);
        assert_int_equal(atomic_load(&posters[i].owner.post_calls), 300);
        TEST_WAIT_UNTIL(balanced(&posters[i].owner), 2000);
    }
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

typedef struct DEC_REF_ARGS_TAG
{
    COMPLETION_PORT_HANDLE port;
    atomic_bool done;
} DEC_REF_ARGS;

static void* dec_ref_thread(void* arg)
{
    DEC_REF_ARGS* args = arg;
    completion_port_dec_ref(args->port);
    atomic_store(&args->done, true);
    return NULL;
}

/* The last dec_ref waits for a callback in progress, and releases the reference of a post that
 * never ran: holds and releases stay balanced. */
static void completion_port_last_dec_ref_waits_for_callbacks_and_releases_pending_posts(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(1);
    assert_non_null(port);
    GATE gate;
    gate_init(&gate);
    TEST_IO blocker;
    test_io_init(&blocker, port);
    blocker.gate = &gate;
    TEST_IO pending;
    test_io_init(&pending, port);

    assert_int_equal(completion_port_post(port, &blocker.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&gate.entered) == 1, 2000);
    assert_int_equal(completion_port_post(port, &pending.io), 0);

    DEC_REF_ARGS args = {.port = port};
    atomic_init(&args.done, false);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, dec_ref_thread, &args), 0);
    test_sleep_ms(100);
    /* the worker is still in a callback: dec_ref joins it, so it has not returned */
    assert_false(atomic_load(&args.done));
    gate_open(&gate);
    (void)pthread_join(thread, NULL);
    assert_true(atomic_load(&args.done));

    assert_int_equal(atomic_load(&blocker.post_calls), 1);
    /* the pending post ran at most once, and its reference was given back either way */
    assert_true(atomic_load(&pending.post_calls) <= 1);
    assert_true(balanced(&pending));
    assert_true(balanced(&blocker));
    gate_deinit(&gate);
    assert_back_to(baseline);
}

/* ---- bad input ---- */

static void completion_port_functions_with_bad_arguments_fail_with_one_error(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(1);
    assert_non_null(port);
    int fds[2];
    make_pair(fds);
    TEST_IO owner;
    test_io_init(&owner, port);
    int64_t allocations = sys_fault_live_allocations();
    int open_fds = test_count_open_fds();

    log_capture_start();
    completion_port_inc_ref(NULL);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    completion_port_dec_ref(NULL);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    assert_int_equal(completion_port_get_worker_count(NULL), 0);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    assert_int_not_equal(completion_port_add(NULL, fds[0], &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    assert_int_not_equal(completion_port_add(port, fds[0], NULL), 0);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    assert_int_not_equal(completion_port_add(port, -1, &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);

    /* an fd number that is not open */
    int closed_fd = dup(fds[0]);
    (void)close(closed_fd);
    log_capture_start();
    assert_int_not_equal(completion_port_add(port, closed_fd, &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);

    /* no ops table, then a table lacking each of its three entries in turn */
    owner.io.ops = NULL;
    log_capture_start();
    assert_int_not_equal(completion_port_add(port, fds[0], &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);
    for (int missing = 0; missing < 3; missing++)
    {
        COMPLETION_PORT_IO_OPS partial = {
            (missing == 0) ? NULL : test_on_events,
            (missing == 1) ? NULL : test_hold,
            (missing == 2) ? NULL : test_release,
        };
        owner.io.ops = &partial;
        log_capture_start();
        assert_int_not_equal(completion_port_add(port, fds[0], &owner.io), 0);
        assert_int_equal(log_capture_stop(), 1);
    }
    owner.io.ops = &test_io_ops;

    log_capture_start();
    assert_int_not_equal(completion_port_rearm(NULL, &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    assert_int_not_equal(completion_port_rearm(port, NULL), 0);
    assert_int_equal(log_capture_stop(), 1);

    /* never added */
    owner.io.fd = fds[0];
    log_capture_start();
    assert_int_not_equal(completion_port_rearm(port, &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);
    owner.io.fd = -1;

    log_capture_start();
    completion_port_remove(NULL, &owner.io);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    completion_port_remove(port, NULL);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    completion_port_remove(port, &owner.io); /* fd -1: never added */
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    assert_int_not_equal(completion_port_post(NULL, &owner.io), 0);
    assert_int_equal(log_capture_stop(), 1);

    log_capture_start();
    assert_int_not_equal(completion_port_post(port, NULL), 0);
    assert_int_equal(log_capture_stop(), 1);

    /* nothing was delivered, held or allocated by any of them */
    test_sleep_ms(30);
    assert_int_equal(atomic_load(&owner.event_calls), 0);
    assert_int_equal(atomic_load(&owner.post_calls), 0);
    assert_int_equal(atomic_load(&owner.holds), 0);
    assert_int_equal(test_count_open_fds(), open_fds);
    /* the table chunk for these fds may have been allocated by the first valid-fd add; nothing else */
    assert_true(sys_fault_live_allocations() <= allocations + 1);

    /* the port still works */
    assert_int_equal(completion_port_post(port, &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == 1, 2000);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);

    (void)close(fds[0]);
    (void)close(fds[1]);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* ---- fault sweeps ---- */

static void sweep_create(uint32_t workers, int error)
{
    TEST_BASELINE baseline = test_baseline_take();
    uint32_t nth;
    for (nth = 1; nth < 100; nth++)
    {
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, nth, error);
        COMPLETION_PORT_HANDLE port = completion_port_create(workers);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_non_null(port);
            assert_int_equal(errors, 0);
            assert_int_equal(test_count_threads(), baseline.threads + (int)workers);
            completion_port_dec_ref(port);
            assert_back_to(baseline);
            break;
        }
        assert_null(port);
        assert_int_equal(errors, 1);
        /* workers started before the failure were joined, fds closed, memory freed */
        assert_back_to(baseline);
    }
    (void)printf("completion_port_create(%u) sweep (errno %d): %u failure points\n", workers, error, nth - 1);
    /* at least one failure point per worker thread to start */
    assert_true(nth - 1 > workers);
}

static void completion_port_create_fault_sweep(void** state)
{
    (void)state;
    sweep_create(1, EIO);
    sweep_create(3, EIO);
    sweep_create(4, ENOMEM);
}

static void completion_port_add_fault_sweep(void** state)
{
    (void)state;
    int errors_to_try[] = {EIO, ENOMEM};
    for (size_t e = 0; e < 2; e++)
    {
        TEST_BASELINE baseline = test_baseline_take();
        uint32_t nth;
        for (nth = 1; nth < 16; nth++)
        {
            /* a fresh port each time, so the table chunk is allocated by this add */
            COMPLETION_PORT_HANDLE port = completion_port_create(1);
            assert_non_null(port);
            int fds[2];
            make_pair(fds);
            TEST_IO owner;
            test_io_init(&owner, port);
            log_capture_start();
            sys_fault_arm(SYS_FAULT_ALL, nth, errors_to_try[e]);
            int result = completion_port_add(port, fds[0], &owner.io);
            bool fired = sys_fault_fired();
            sys_fault_disarm();
            int errors = log_capture_stop();
            if (fired)
            {
                assert_int_not_equal(result, 0);
                assert_int_equal(errors, 1);
                assert_int_equal(write(fds[1], "q", 1), 1);
                test_sleep_ms(20);
                assert_int_equal(atomic_load(&owner.event_calls), 0);
                /* a failed add can be retried */
                assert_int_equal(completion_port_add(port, fds[0], &owner.io), 0);
            }
            else
            {
                assert_int_equal(result, 0);
                assert_int_equal(errors, 0);
                assert_int_equal(write(fds[1], "q", 1), 1);
            }
            TEST_WAIT_UNTIL((atomic_load(&owner.events_seen) & EPOLLIN) != 0, 2000);
            completion_port_remove(port, &owner.io);
            TEST_WAIT_UNTIL(balanced(&owner), 2000);
            (void)close(fds[0]);
            (void)close(fds[1]);
            completion_port_dec_ref(port);
            assert_back_to(baseline);
            if (!fired)
            {
                break;
            }
        }
        (void)printf("completion_port_add sweep (errno %d): %u failure points\n", errors_to_try[e], nth - 1);
        assert_true(nth - 1 >= 1);
    }
}

static void completion_port_rearm_fault_sweep(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(1);
    assert_non_null(port);
    int fds[2];
    make_pair(fds);
    TEST_IO owner;
    test_io_init(&owner, port);
    assert_int_equal(completion_port_add(port, fds[0], &owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&owner.event_calls) >= 1, 2000);
    wait_quiet(&owner, 30);
    uint32_t nth;
    for (nth = 1; nth < 16; nth++)
    {
        int before = atomic_load(&owner.event_calls);
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, nth, EIO);
        int result = completion_port_rearm(port, &owner.io);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_int_equal(result, 0);
            assert_int_equal(errors, 0);
            TEST_WAIT_UNTIL(atomic_load(&owner.event_calls) == before + 1, 2000);
            break;
        }
        assert_int_not_equal(result, 0);
        assert_int_equal(errors, 1);
        test_sleep_ms(20);
        assert_int_equal(atomic_load(&owner.event_calls), before);
    }
    (void)printf("completion_port_rearm sweep: %u failure points\n", nth - 1);
    assert_true(nth - 1 >= 1);
    completion_port_remove(port, &owner.io);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);
    (void)close(fds[0]);
    (void)close(fds[1]);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

/* A post makes no fallible call that SYS_FAULT_ALL covers on the posting thread (the wake-up is an
 * eventfd write, deliberately outside ALL): the sweep must end at once with the post delivered. */
static void completion_port_post_fault_sweep(void** state)
{
    (void)state;
    TEST_BASELINE baseline = test_baseline_take();
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    TEST_IO owner;
    test_io_init(&owner, port);
    uint32_t nth;
    for (nth = 1; nth < 16; nth++)
    {
        int before = atomic_load(&owner.post_calls);
        sys_fault_arm(SYS_FAULT_ALL, nth, ENOMEM);
        int result = completion_port_post(port, &owner.io);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        if (fired)
        {
            assert_int_not_equal(result, 0);
            test_sleep_ms(20);
            assert_int_equal(atomic_load(&owner.post_calls), before);
            continue;
        }
        assert_int_equal(result, 0);
        TEST_WAIT_UNTIL(atomic_load(&owner.post_calls) == before + 1, 2000);
        break;
    }
    (void)printf("completion_port_post sweep: %u failure points\n", nth - 1);
    TEST_WAIT_UNTIL(balanced(&owner), 2000);
    completion_port_dec_ref(port);
    assert_back_to(baseline);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(completion_port_create_starts_the_requested_workers),
    cmocka_unit_test(completion_port_create_with_zero_workers_uses_one_per_cpu),
    cmocka_unit_test(completion_port_create_accepts_the_maximum_and_refuses_more),
    cmocka_unit_test(completion_port_lives_until_the_last_dec_ref),
    cmocka_unit_test(completion_port_last_dec_ref_from_a_worker_frees_the_port),
    cmocka_unit_test(completion_port_add_delivers_readiness_on_a_worker),
    cmocka_unit_test(completion_port_rearm_reports_the_current_readiness_again),
    cmocka_unit_test(completion_port_remove_stops_delivery),
    cmocka_unit_test(completion_port_events_for_a_removed_io_are_not_delivered_after_fd_reuse),
    cmocka_unit_test(completion_port_add_works_for_a_high_fd),
    cmocka_unit_test(completion_port_post_delivers_once_per_post_on_a_worker),
    cmocka_unit_test(completion_port_post_while_posted_coalesces),
    cmocka_unit_test(completion_port_post_from_inside_on_events_is_delivered),
    cmocka_unit_test(completion_port_post_from_many_threads_delivers_each_exactly_once),
    cmocka_unit_test(completion_port_last_dec_ref_waits_for_callbacks_and_releases_pending_posts),
    cmocka_unit_test(completion_port_functions_with_bad_arguments_fail_with_one_error),
    cmocka_unit_test(completion_port_create_fault_sweep),
    cmocka_unit_test(completion_port_add_fault_sweep),
    cmocka_unit_test(completion_port_rearm_fault_sweep),
    cmocka_unit_test(completion_port_post_fault_sweep),
};

TEST_MAIN(tests)
