/* The slow paths of the futex lock (see lock.h). */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lock.h"

#define SPINS 100

void lock__acquire_contended(LOCK* lock)
{
    for (int i = 0; i < SPINS; i++)
    {
        unsigned expected = 0;
        if (atomic_load_explicit(&lock->state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&lock->state, &expected, 1, memory_order_acquire, memory_order_relaxed))
        {
            return;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
    }
    /* From here on the lock is taken as "held with sleepers" (2): a thread that got it after
     * sleeping cannot know whether others still sleep, so its release must wake one. */
    while (atomic_exchange_explicit(&lock->state, 2, memory_order_acquire) != 0)
    {
        (void)syscall(SYS_futex, &lock->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    }
}

void lock__wake_one(LOCK* lock)
{
    (void)syscall(SYS_futex, &lock->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
