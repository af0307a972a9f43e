/* Per-thread scope stacks and the registry of threads blocked in a close (see callback_scope.h). */
#include <pthread.h>
#include <stddef.h>

#include "callback_scope.h"

typedef struct WAITER_TAG
{
    const void* waiting_for;
    CALLBACK_SCOPE* const* scopes; /* the waiting thread's stack top; stable while it waits */
    struct WAITER_TAG* next;
} WAITER;

_Thread_local CALLBACK_SCOPE* callback_scope__top __attribute__((tls_model("initial-exec")));
static _Thread_local WAITER this_waiter __attribute__((tls_model("initial-exec")));

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static WAITER* waiters;

static uint32_t count_in(const CALLBACK_SCOPE* scope, const void* object)
{
    uint32_t count = 0;
    for (; scope != NULL; scope = scope->outer)
    {
        count += (scope->object == object);
    }
    return count;
}

uint32_t callback_scope__depth(const void* object)
{
    return count_in(callback_scope__top, object);
}

uint32_t callback_scope__io_depth(const void* object)
{
    uint32_t count = 0;
    for (const CALLBACK_SCOPE* scope = callback_scope__top; scope != NULL; scope = scope->outer)
    {
        count += (scope->object == object && scope->in_io);
    }
    return count;
}

/* Is there a chain: a blocked thread inside `object` waits for X, a blocked thread inside X waits
 * for Y, ... that reaches an object the calling thread is inside? Only blocked threads matter:
 * a thread that is not waiting will leave its scopes by itself. `budget` bounds the walk, which
 * the registry's size bounds anyway. */
static bool reaches_me(const void* object, unsigned budget)
{
    if (budget == 0)
    {
        return false;
    }
    for (WAITER* waiter = waiters; waiter != NULL; waiter = waiter->next)
    {
        if (waiter == &this_waiter || count_in(*waiter->scopes, object) == 0)
        {
            continue;
        }
        if (count_in(callback_scope__top, waiter->waiting_for) != 0 || reaches_me(waiter->waiting_for, budget - 1))
        {
            return true;
        }
    }
    return false;
}

bool callback_scope__begin_wait(const void* object)
{
    (void)pthread_mutex_lock(&registry_lock);
    unsigned budget = 0;
    for (WAITER* waiter = waiters; waiter != NULL; waiter = waiter->next)
    {
        budget++;
    }
    bool circle = reaches_me(object, budget);
    if (!circle)
    {
        this_waiter.waiting_for = object;
        this_waiter.scopes = &callback_scope__top;
        this_waiter.next = waiters;
        waiters = &this_waiter;
    }
    (void)pthread_mutex_unlock(&registry_lock);
    return !circle;
}

void callback_scope__end_wait(void)
{
    (void)pthread_mutex_lock(&registry_lock);
    for (WAITER** link = &waiters; *link != NULL; link = &(*link)->next)
    {
        if (*link == &this_waiter)
        {
            *link = this_waiter.next;
            break;
        }
    }
    (void)pthread_mutex_unlock(&registry_lock);
}
