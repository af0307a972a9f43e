/* Unit tests for the per-socket futex lock (src/lock.h): mutual exclusion under contention,
 * including the sleeping path, and the state going back to free. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lock.h"
#include "test_main.h"

#define THREADS 8
#define ROUNDS 100000

typedef struct SHARED_TAG
{
    LOCK lock;
    uint64_t counter; /* plain, not atomic: only the lock protects it */
    int inside;       /* how many threads are between acquire and release: must stay 0 or 1 */
    int overlaps;
} SHARED;

static void* hammer(void* arg)
{
    SHARED* shared = arg;
    for (int i = 0; i < ROUNDS; i++)
    {
        lock_acquire(&shared->lock);
        shared->inside++;
        if (shared->inside != 1)
        {
            shared->overlaps++;
        }
        shared->counter++;
        shared->inside--;
        lock_release(&shared->lock);
    }
    return NULL;
}

static void lock_excludes_eight_contending_threads(void** state)
{
    (void)state;
    SHARED shared = {.counter = 0, .inside = 0, .overlaps = 0};
    lock_init(&shared.lock);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
    {
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, &shared), 0);
    }
    for (int i = 0; i < THREADS; i++)
    {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    }
    /* a lost update or an overlap means two threads held the lock at once */
    assert_int_equal(shared.counter, (uint64_t)THREADS * ROUNDS);
    assert_int_equal(shared.overlaps, 0);
    assert_int_equal(atomic_load(&shared.lock.state), 0);
}

typedef struct HOLDER_TAG
{
    LOCK* lock;
    atomic_int acquired;
} HOLDER;

static void* wait_for_lock(void* arg)
{
    HOLDER* holder = arg;
    lock_acquire(holder->lock);
    atomic_store(&holder->acquired, 1);
    lock_release(holder->lock);
    return NULL;
}

static void lock_wakes_a_sleeping_waiter_on_release(void** state)
{
    (void)state;
    LOCK lock = LOCK_INITIALIZER;
    HOLDER holder = {.lock = &lock};
    atomic_init(&holder.acquired, 0);
    lock_acquire(&lock);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, wait_for_lock, &holder), 0);
    /* long enough for the waiter to finish spinning and sleep on the futex (state 2) */
    for (int i = 0; i < 1000 && (atomic_load(&lock.state) & LOCK_HELD_BITS) != 2; i++)
    {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};
        (void)nanosleep(&pause, NULL);
    }
    assert_int_equal(atomic_load(&lock.state) & LOCK_HELD_BITS, 2);
    assert_int_equal(atomic_load(&holder.acquired), 0);
    lock_release(&lock);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(atomic_load(&holder.acquired), 1);
    assert_int_equal(atomic_load(&lock.state), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(lock_excludes_eight_contending_threads),
    cmocka_unit_test(lock_wakes_a_sleeping_waiter_on_release),
};

TEST_MAIN(tests)
