/* A 4-byte mutex on a futex, for per-socket state. It is a tenth the size of a pthread_mutex_t
 * (which matters with 10,000s of idle sockets) and the uncontended paths are one atomic each.
 *
 * State: the low two bits are 0 free, 1 held, 2 held and someone may be sleeping. A thread that
 * finds the lock held spins briefly (critical sections are a handful of loads and stores), then
 * marks it 2 and sleeps on the futex; the releaser wakes one sleeper when it sees 2.
 *
 * With the invariant checks on (ASYNC_SOCKET_ASSERTS, asock_assert.h) the upper 30 bits hold the
 * owner, a number per thread, so that "lock held" can be asserted (lock_assert_held) without a
 * larger lock; without them the upper bits are 0 and the code is the plain three-state lock. */
#ifndef LOCK_H
#define LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asock_assert.h"

typedef struct LOCK_TAG
{
    atomic_uint state;
} LOCK;

#define LOCK_INITIALIZER {0}
#define LOCK_HELD_BITS 3u

void lock__acquire_contended(LOCK* lock);
void lock__wake_one(LOCK* lock);

#if ASOCK_ASSERTS
/* The calling thread's owner mark (its number << 2, never 0). */
uint32_t lock__self_slow(void);
extern _Thread_local uint32_t lock__self_mark __attribute__((tls_model("initial-exec")));
static inline uint32_t lock__self(void)
{
    uint32_t mark = lock__self_mark;
    return (mark != 0) ? mark : lock__self_slow();
}
#else
static inline uint32_t lock__self(void)
{
    return 0;
}
#endif

static inline void lock_init(LOCK* lock)
{
    atomic_init(&lock->state, 0);
}

static inline void lock_acquire(LOCK* lock)
{
    unsigned expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1u | lock__self(), memory_order_acquire, memory_order_relaxed))
    {
        lock__acquire_contended(lock);
    }
}

/* Whether the calling thread holds the lock (only meaningful with ASOCK_ASSERTS). */
static inline bool lock_held_here(LOCK* lock)
{
    unsigned state = atomic_load_explicit(&lock->state, memory_order_relaxed);
    return (state & LOCK_HELD_BITS) != 0 && (state & ~LOCK_HELD_BITS) == lock__self();
}

#define lock_assert_held(lock) ASOCK_ASSERT(lock_held_here(lock))

static inline void lock_release(LOCK* lock)
{
    lock_assert_held(lock);
    unsigned old = atomic_exchange_explicit(&lock->state, 0, memory_order_release);
#if ASOCK_ASSERTS
    old &= LOCK_HELD_BITS; /* the owner's bits */
#endif
    if (old == 2)
    {
        lock__wake_one(lock);
    }
}

#endif /* LOCK_H */
