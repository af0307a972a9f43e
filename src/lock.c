/* The slow paths of the futex lock (see lock.h). */
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lock.h"
#include "sys.h"

#define SPINS 100

#if ASOCK_ASSERTS
_Thread_local uint32_t lock__self_mark __attribute__((tls_model("initial-exec")));
static atomic_uint next_thread_number;

uint32_t lock__self_slow(void)
{
    /* 30 bits of thread number; 0 is never used, so that a free lock has no owner */
    uint32_t number = (atomic_fetch_add(&next_thread_number, 1) % 0x3fffffffu) + 1;
    lock__self_mark = number << 2;
    return lock__self_mark;
}
#endif

void lock__acquire_contended(LOCK* lock)
{
    const unsigned self = lock__self();
    for (int i = 0; i < SPINS; i++)
    {
        unsigned expected = 0;
        if (atomic_load_explicit(&lock->state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&lock->state, &expected, 1u | self, memory_order_acquire, memory_order_relaxed))
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
     * sleeping cannot know whether others still sleep, so its release must wake one. A held
     * lock is marked 2 with its owner's bits kept (a CAS, not an exchange, so that the owner's
     * lock_assert_held still sees itself). */
    unsigned seen = atomic_load_explicit(&lock->state, memory_order_relaxed);
    for (;;)
    {
        if (seen == 0)
        {
            if (atomic_compare_exchange_weak_explicit(&lock->state, &seen, 2u | self, memory_order_acquire, memory_order_relaxed))
            {
                return;
            }
            continue;
        }
        unsigned marked = (seen & ~LOCK_HELD_BITS) | 2u;
        if (seen != marked && !atomic_compare_exchange_weak_explicit(&lock->state, &seen, marked, memory_order_relaxed, memory_order_relaxed))
        {
            continue;
        }
        (void)sys_futex(&lock->state, FUTEX_WAIT_PRIVATE, marked, NULL);
        seen = atomic_load_explicit(&lock->state, memory_order_relaxed);
    }
}

void lock__wake_one(LOCK* lock)
{
    (void)sys_futex(&lock->state, FUTEX_WAKE_PRIVATE, 1, NULL);
}
