/* threadpool: work items and timers that run on the completion port's worker threads.
 *
 * The names, signatures and types are c-pal's (interfaces/inc/c_pal/threadpool.h). On Linux no
 * thread is created for them: a work item is posted to the completion port that runs the sockets'
 * callbacks, and a timer is a timerfd registered with that port, so its callback runs on one of
 * the same workers. See docs/api.md ("Timers and work") for what a callback may call and how
 * cancel and destroy meet a timer that is firing. */
#ifndef C_PAL_THREADPOOL_H
#define C_PAL_THREADPOOL_H

#include <stdint.h>

#include "c_pal/macro_compat.h"
#include "c_pal/execution_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct THREADPOOL_TAG* THREADPOOL_HANDLE;
typedef struct TIMER_INSTANCE_TAG* TIMER_INSTANCE_HANDLE;

typedef void (*THREADPOOL_WORK_FUNCTION)(void* context);

/* Needs platform_init(); execution_engine may be NULL (as for async_socket_create). */
MOCKABLE_FUNCTION(, THREADPOOL_HANDLE, threadpool_create, EXECUTION_ENGINE_HANDLE, execution_engine);
/* Closes the pool if it is open, then frees it. */
MOCKABLE_FUNCTION(, void, threadpool_destroy, THREADPOOL_HANDLE, threadpool);

MOCKABLE_FUNCTION(, int, threadpool_open, THREADPOOL_HANDLE, threadpool);
/* Refuses new work and timers, and waits until every scheduled work item has run (except the one
 * the calling thread is running, when called from a work item). Timers already started go on
 * until they are destroyed. */
MOCKABLE_FUNCTION(, void, threadpool_close, THREADPOOL_HANDLE, threadpool);

/* Runs work_function(work_function_context) once, soon, on a worker. Returns 0, or non-zero (the
 * function is never called) when the pool is not open or memory runs out. */
MOCKABLE_FUNCTION(, int, threadpool_schedule_work, THREADPOOL_HANDLE, threadpool, THREADPOOL_WORK_FUNCTION, work_function, void*, work_function_context);

/* Calls work_function on a worker after start_delay_ms, then every timer_period_ms (0: once).
 * The callback never runs on two threads at once; expirations that come while it runs are folded
 * into one more run right after it. */
MOCKABLE_FUNCTION(, int, threadpool_timer_start, THREADPOOL_HANDLE, threadpool, uint32_t, start_delay_ms, uint32_t, timer_period_ms, THREADPOOL_WORK_FUNCTION, work_function, void*, work_function_context, TIMER_INSTANCE_HANDLE*, timer_handle);

/* Re-arms a timer (also a cancelled or expired one) with a new delay and period. */
MOCKABLE_FUNCTION(, int, threadpool_timer_restart, TIMER_INSTANCE_HANDLE, timer, uint32_t, start_delay_ms, uint32_t, timer_period_ms);

/* Disarms the timer. When it returns, the callback is not running (unless the caller is that
 * callback) and does not run again until a restart. */
MOCKABLE_FUNCTION(, void, threadpool_timer_cancel, TIMER_INSTANCE_HANDLE, timer);

/* Cancels (as above) and frees the timer; from inside its own callback the memory goes when the
 * callback returns. */
MOCKABLE_FUNCTION(, void, threadpool_timer_destroy, TIMER_INSTANCE_HANDLE, timer);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_THREADPOOL_H */
