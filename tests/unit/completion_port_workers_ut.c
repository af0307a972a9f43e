/* Unit tests for how the completion port's workers share events: one poller, followers woken only
 * for a batch worth sharing, and a follower that takes over polling while the poller is stuck in
 * a callback. Real epoll, real worker threads, socketpair(AF_UNIX) fds; what is asserted is which
 * threads the deliveries ran on and that every event arrives. */
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
#include "test_main.h"
#include "test_util.h"

#define MAX_THREADS 8
#define PAIRS 48

/* The distinct threads that ran deliveries, shared by every owner of a test. */
typedef struct THREAD_SET_TAG
{
    pthread_mutex_t lock;
    pthread_t threads[MAX_THREADS];
    int count;
} THREAD_SET;

static void thread_set_init(THREAD_SET* set)
{
    (void)pthread_mutex_init(&set->lock, NULL);
    set->count = 0;
}

static void thread_set_add(THREAD_SET* set)
{
    (void)pthread_mutex_lock(&set->lock);
    bool known = false;
    for (int i = 0; i < set->count; i++)
    {
        known = known || pthread_equal(set->threads[i], pthread_self());
    }
    if (!known && set->count < MAX_THREADS)
    {
        set->threads[set->count++] = pthread_self();
    }
    (void)pthread_mutex_unlock(&set->lock);
}

static int thread_set_count(THREAD_SET* set)
{
    (void)pthread_mutex_lock(&set->lock);
    int count = set->count;
    (void)pthread_mutex_unlock(&set->lock);
    return count;
}

static void thread_set_deinit(THREAD_SET* set)
{
    (void)pthread_mutex_destroy(&set->lock);
}

/* An owner that reads what arrives on its fd and records the delivering thread. */
typedef struct OWNER_TAG
{
    COMPLETION_PORT_IO io;
    int fd;
    _Atomic(THREAD_SET*) threads;
    unsigned delay_ms;
    int forward;              /* after reading, write one byte here (-1: nowhere) ... */
    atomic_int* hops_left;    /* ... while this count, shared by a ring of owners, lasts */        /* each input event takes this long to handle */
    atomic_bool* block;       /* a post waits while *block is true */
    COMPLETION_PORT_HANDLE port;
    COMPLETION_PORT_IO* post_on_post[3]; /* a post posts these (NULL: none), in order */
    atomic_int blocked;       /* posts waiting on *block now */
    atomic_int bytes;         /* bytes read */
    atomic_int posts;
    atomic_int in_events;     /* input events delivered */
    atomic_bool* block_events; /* an input event waits while *block_events is true */
    atomic_int holds;
    atomic_int releases;
} OWNER;

static OWNER* owner_from(COMPLETION_PORT_IO* io)
{
    return (OWNER*)((char*)io - offsetof(OWNER, io));
}

static void owner_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    OWNER* owner = owner_from(io);
    if (events == 0)
    {
        (void)atomic_fetch_add(&owner->posts, 1);
        for (int i = 0; i < 3 && owner->post_on_post[i] != NULL; i++)
        {
            (void)completion_port_post(owner->port, owner->post_on_post[i]);
        }
        (void)atomic_fetch_add(&owner->blocked, 1);
        while (owner->block != NULL && atomic_load(owner->block))
        {
            test_sleep_ms(1);
        }
        (void)atomic_fetch_sub(&owner->blocked, 1);
        return;
    }
    if ((events & EPOLLIN) == 0)
    {
        return;
    }
    (void)atomic_fetch_add(&owner->in_events, 1);
    thread_set_add(atomic_load(&owner->threads));
    while (owner->block_events != NULL && atomic_load(owner->block_events))
    {
        test_sleep_ms(1);
    }
    if (owner->delay_ms != 0)
    {
        test_sleep_ms(owner->delay_ms);
    }
    char buffer[64];
    ssize_t got;
    while ((got = read(owner->fd, buffer, sizeof(buffer))) > 0)
    {
        (void)atomic_fetch_add(&owner->bytes, (int)got);
        if (owner->forward >= 0 && atomic_fetch_sub(owner->hops_left, 1) > 0)
        {
            assert_int_equal(write(owner->forward, "x", 1), 1);
        }
    }
}

static void owner_hold(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add(&owner_from(io)->holds, 1);
}

static void owner_release(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add(&owner_from(io)->releases, 1);
}

static const COMPLETION_PORT_IO_OPS owner_ops = { owner_on_events, owner_hold, owner_release };

typedef struct PAIR_TAG
{
    OWNER owner;
    int peer; /* the test writes here */
} PAIR;

static void pair_init(PAIR* pair, COMPLETION_PORT_HANDLE port, THREAD_SET* threads, unsigned delay_ms)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
    memset(&pair->owner, 0, sizeof(pair->owner));
    pair->owner.io.ops = &owner_ops;
    pair->owner.fd = fds[0];
    atomic_init(&pair->owner.threads, threads);
    pair->owner.delay_ms = delay_ms;
    pair->owner.forward = -1;
    pair->peer = fds[1];
    assert_int_equal(completion_port_add(port, fds[0], &pair->owner.io), 0);
}

static void pair_deinit(PAIR* pair, COMPLETION_PORT_HANDLE port)
{
    completion_port_remove(port, &pair->owner.io);
    TEST_WAIT_UNTIL(atomic_load(&pair->owner.holds) == atomic_load(&pair->owner.releases), 2000);
    (void)close(pair->owner.fd);
    (void)close(pair->peer);
}

/* Two fds pass one byte back and forth, 400 hops, like the two ends of a ping-pong: each handler
 * writes the byte that makes the other fd ready while it still runs. Every batch then holds one
 * event, which the poller delivers itself; the three other workers are never woken for them.
 * (With every worker waiting in epoll_wait, the kernel hands the other fd's event to an idle
 * worker while the first one is still busy, so the hops alternate between threads.)
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_050 */
static void completion_port_delivers_small_batches_on_the_poller_alone(void** state)
{
    (void)state;
    COMPLETION_PORT_HANDLE port = completion_port_create(4);
    assert_non_null(port);
    THREAD_SET threads;
    thread_set_init(&threads);
    atomic_int hops;
    atomic_init(&hops, 400);
    PAIR a;
    PAIR b;
    pair_init(&a, port, &threads, 0);
    pair_init(&b, port, &threads, 0);
    a.owner.forward = b.peer;
    a.owner.hops_left = &hops;
    b.owner.forward = a.peer;
    b.owner.hops_left = &hops;
    /* the registrations' first events are out of the way before the ring starts */
    test_sleep_ms(50);

    assert_int_equal(write(a.peer, "x", 1), 1);
    TEST_WAIT_UNTIL(atomic_load(&a.owner.bytes) + atomic_load(&b.owner.bytes) == 401, 5000);
    assert_int_equal(atomic_load(&a.owner.bytes), 201);
    assert_int_equal(atomic_load(&b.owner.bytes), 200);
    assert_int_equal(thread_set_count(&threads), 1);

    pair_deinit(&a, port);
    pair_deinit(&b, port);
    completion_port_dec_ref(port);
    thread_set_deinit(&threads);
}

/* A big batch is shared: the first event's handler takes 3 ms, long enough for the other pairs'
 * events to pile up into one batch (and shorter than the stall check), which the poller then
 * splits with idle followers.
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_050 */
static void completion_port_shares_a_big_batch_with_idle_workers(void** state)
{
    (void)state;
    COMPLETION_PORT_HANDLE port = completion_port_create(4);
    assert_non_null(port);
    THREAD_SET threads;
    thread_set_init(&threads);
    static PAIR pairs[PAIRS];
    for (int i = 0; i < PAIRS; i++)
    {
        pair_init(&pairs[i], port, &threads, 3);
    }

    for (int round = 1; round <= 5 && thread_set_count(&threads) < 2; round++)
    {
        for (int i = 0; i < PAIRS; i++)
        {
            assert_int_equal(write(pairs[i].peer, "x", 1), 1);
        }
        for (int i = 0; i < PAIRS; i++)
        {
            TEST_WAIT_UNTIL(atomic_load(&pairs[i].owner.bytes) == round, 5000);
        }
    }
    assert_true(thread_set_count(&threads) >= 2);

    for (int i = 0; i < PAIRS; i++)
    {
        pair_deinit(&pairs[i], port);
    }
    completion_port_dec_ref(port);
    thread_set_deinit(&threads);
}

/* The poller blocks in a callback (a post that waits until the test lets it go): the events of
 * another fd are still delivered, by a follower that noticed the poller stuck. Once the blocked
 * callback returns, single events are delivered again by one thread (the extra poller stepped
 * down).
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_051 */
static void completion_port_keeps_delivering_while_a_callback_blocks(void** state)
{
    (void)state;
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    THREAD_SET threads;
    thread_set_init(&threads);
    atomic_bool block;
    atomic_init(&block, true);
    PAIR blocker;
    pair_init(&blocker, port, &threads, 0);
    blocker.owner.block = &block;
    PAIR pair;
    pair_init(&pair, port, &threads, 0);

    assert_int_equal(completion_port_post(port, &blocker.owner.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&blocker.owner.posts) == 1, 2000);
    for (int i = 1; i <= 20; i++)
    {
        assert_int_equal(write(pair.peer, "x", 1), 1);
        TEST_WAIT_UNTIL(atomic_load(&pair.owner.bytes) == i, 2000);
    }
    atomic_store(&block, false);
    TEST_WAIT_UNTIL(atomic_load(&blocker.owner.holds) == atomic_load(&blocker.owner.releases), 2000);

    /* back to one poller: after the step-down, a run of single events stays on one thread */
    bool settled = false;
    for (int attempt = 0; attempt < 20 && !settled; attempt++)
    {
        test_sleep_ms(30);
        THREAD_SET after;
        thread_set_init(&after);
        atomic_store(&pair.owner.threads, &after);
        int base = atomic_load(&pair.owner.bytes);
        for (int i = 1; i <= 50; i++)
        {
            assert_int_equal(write(pair.peer, "x", 1), 1);
            TEST_WAIT_UNTIL(atomic_load(&pair.owner.bytes) == base + i, 2000);
        }
        settled = thread_set_count(&after) == 1;
        atomic_store(&pair.owner.threads, &threads);
        thread_set_deinit(&after);
    }
    assert_true(settled);

    pair_deinit(&pair, port);
    pair_deinit(&blocker, port);
    completion_port_dec_ref(port);
    thread_set_deinit(&threads);
}

/* Posts that a blocked worker had already taken are delivered by the others: a post of X posts A,
 * B and D, which one worker takes in one list; A blocks it, and B, taken over by a second worker,
 * blocks that one too. D must still be delivered, by the third worker, while A and B block (the
 * second worker is stuck while delivering what it took over, which is watched like a poller).
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_132 */
static void completion_port_delivers_posts_a_blocked_worker_had_taken(void** state)
{
    (void)state;
    COMPLETION_PORT_HANDLE port = completion_port_create(3);
    assert_non_null(port);
    THREAD_SET threads;
    thread_set_init(&threads);
    atomic_bool block;
    atomic_init(&block, true);
    PAIR x;
    PAIR a;
    PAIR b;
    PAIR d;
    pair_init(&x, port, &threads, 0);
    pair_init(&a, port, &threads, 0);
    pair_init(&b, port, &threads, 0);
    pair_init(&d, port, &threads, 0);
    a.owner.block = &block;
    b.owner.block = &block;
    x.owner.port = port;
    x.owner.post_on_post[0] = &a.owner.io;
    x.owner.post_on_post[1] = &b.owner.io;
    x.owner.post_on_post[2] = &d.owner.io;
    test_sleep_ms(50); /* the registrations' first events are out of the way */

    assert_int_equal(completion_port_post(port, &x.owner.io), 0);
    uint64_t start = test_now_ms();
    while (atomic_load(&d.owner.posts) == 0 && test_now_ms() - start < 3000)
    {
        test_sleep_ms(1);
    }
    int d_posts = atomic_load(&d.owner.posts);
    int a_blocked = atomic_load(&a.owner.blocked);
    int b_blocked = atomic_load(&b.owner.blocked);
    uint64_t waited = test_now_ms() - start;
    atomic_store(&block, false);
    TEST_WAIT_UNTIL(atomic_load(&a.owner.posts) == 1 && atomic_load(&b.owner.posts) == 1 && atomic_load(&d.owner.posts) == 1, 5000);
    (void)printf("D was delivered %llu ms after the post, with A and B blocked: %d, %d\n", (unsigned long long)waited, a_blocked, b_blocked);
    assert_int_equal(d_posts, 1);
    assert_int_equal(a_blocked, 1);
    assert_int_equal(b_blocked, 1);

    pair_deinit(&x, port);
    pair_deinit(&a, port);
    pair_deinit(&b, port);
    pair_deinit(&d, port);
    completion_port_dec_ref(port);
    thread_set_deinit(&threads);
}

#define BATCH_PAIRS 5

/* A post that makes BATCH_PAIRS fds readable while it runs on the poller, so that they come back
 * from its next epoll_wait in one batch (no worker waits in epoll_wait meanwhile). */
typedef struct KICKER_TAG
{
    COMPLETION_PORT_IO io;
    PAIR* pairs;
    atomic_int holds;
    atomic_int releases;
} KICKER;

static void kicker_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    KICKER* kicker = (KICKER*)((char*)io - offsetof(KICKER, io));
    if (events != 0)
    {
        return;
    }
    for (int i = 0; i < BATCH_PAIRS; i++)
    {
        assert_int_equal(write(kicker->pairs[i].peer, "x", 1), 1);
    }
}

static void kicker_hold(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add(&((KICKER*)((char*)io - offsetof(KICKER, io)))->holds, 1);
}

static void kicker_release(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add(&((KICKER*)((char*)io - offsetof(KICKER, io)))->releases, 1);
}

static const COMPLETION_PORT_IO_OPS kicker_ops = { kicker_on_events, kicker_hold, kicker_release };

/* One batch of five input events, the first of which blocks its callback: the four behind it in
 * the blocked worker's batch are taken over by the other worker, and every one of the five is
 * delivered exactly once (the owner claims its events with a fetch-add, the taker with a
 * compare-exchange, so no event is delivered by both and none is lost).
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_132
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_220 */
static void completion_port_delivers_each_event_of_a_blocked_batch_once(void** state)
{
    (void)state;
    COMPLETION_PORT_HANDLE port = completion_port_create(2);
    assert_non_null(port);
    THREAD_SET threads;
    thread_set_init(&threads);
    atomic_bool block;
    atomic_init(&block, true);
    PAIR pairs[BATCH_PAIRS];
    for (int i = 0; i < BATCH_PAIRS; i++)
    {
        pair_init(&pairs[i], port, &threads, 0);
    }
    pairs[0].owner.block_events = &block;
    KICKER kicker = {.pairs = pairs};
    kicker.io.ops = &kicker_ops;
    test_sleep_ms(50); /* the registrations' first events are out of the way */

    assert_int_equal(completion_port_post(port, &kicker.io), 0);
    TEST_WAIT_UNTIL(atomic_load(&pairs[0].owner.in_events) == 1, 2000);
    bool others_done = true;
    uint64_t start = test_now_ms();
    for (int i = 1; i < BATCH_PAIRS; i++)
    {
        while (atomic_load(&pairs[i].owner.bytes) == 0 && test_now_ms() - start < 3000)
        {
            test_sleep_ms(1);
        }
        others_done = others_done && atomic_load(&pairs[i].owner.bytes) == 1;
    }
    bool still_blocked = atomic_load(&pairs[0].owner.bytes) == 0;
    atomic_store(&block, false);
    TEST_WAIT_UNTIL(atomic_load(&pairs[0].owner.bytes) == 1, 2000);
    test_sleep_ms(50); /* room for a second delivery of any of them, which must not come */
    assert_true(others_done);
    assert_true(still_blocked);
    for (int i = 0; i < BATCH_PAIRS; i++)
    {
        assert_int_equal(atomic_load(&pairs[i].owner.in_events), 1);
        assert_int_equal(atomic_load(&pairs[i].owner.bytes), 1);
    }
    TEST_WAIT_UNTIL(atomic_load(&kicker.holds) == atomic_load(&kicker.releases), 2000);

    for (int i = 0; i < BATCH_PAIRS; i++)
    {
        pair_deinit(&pairs[i], port);
    }
    completion_port_dec_ref(port);
    thread_set_deinit(&threads);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(completion_port_delivers_small_batches_on_the_poller_alone),
    cmocka_unit_test(completion_port_shares_a_big_batch_with_idle_workers),
    cmocka_unit_test(completion_port_keeps_delivering_while_a_callback_blocks),
    cmocka_unit_test(completion_port_delivers_posts_a_blocked_worker_had_taken),
    cmocka_unit_test(completion_port_delivers_each_event_of_a_blocked_batch_once),
};

TEST_MAIN(tests)
