/* A 4-byte mutex on a futex, for per-socket state. It is a tenth the size of a pthread_mutex_t
 * (which matters with 10,000s of idle sockets) and the uncontended paths are one atomic each.
 *
 * State: 0 free, 1 held, 2 held and someone may be sleeping. A thread that finds the lock held
 * spins briefly (critical sections are a handful of loads and stores), then marks it 2 and sleeps
 * on the futex; the releaser wakes one sleeper when it sees 2. */
#ifndef LOCK_H
#define LOCK_H

#include <stdatomic.h>

typedef struct LOCK_TAG
{
    atomic_uint state;
} LOCK;

#define LOCK_INITIALIZER {0}

void lock__acquire_contended(LOCK* lock);
void lock__wake_one(LOCK* lock);

static inline void lock_init(LOCK* lock)
{
    atomic_init(&lock->state, 0);
}

static inline void lock_acquire(LOCK* lock)
{
    unsigned expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1, memory_order_acquire, memory_order_relaxed))
    {
        lock__acquire_contended(lock);
    }
}

static inline void lock_release(LOCK* lock)
{
    if (atomic_exchange_explicit(&lock->state, 0, memory_order_release) == 2)
    {
        lock__wake_one(lock);
    }
}

#endif /* LOCK_H */
