/* threadpool for Linux: work items and timers on the completion port's workers.
 *
 * A work item is a small heap record with a COMPLETION_PORT_IO, posted to the port: a worker
 * calls it and frees it. A timer is a timerfd registered with the port like a socket's fd, so its
 * expiry arrives as an input event on one of the same workers; there is no timer thread and
 * nothing on the sockets' path changes.
 *
 * Locking: the pool's mutex guards its state and count of pending work; each timer's mutex guards
 * that timer's flags. Neither is held across a syscall or a user callback. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "c_pal/completion_port_linux.h"
#include "c_pal/execution_engine.h"
#include "log_internal.h"
#include "c_pal/platform.h"
#include "c_pal/threadpool.h"
#include "sys.h"

typedef struct THREADPOOL_TAG
{
    COMPLETION_PORT_HANDLE port;
    EXECUTION_ENGINE_HANDLE execution_engine;
    pthread_mutex_t lock;
    pthread_cond_t idle;  /* signalled when pending drops */
    bool open;
    uint32_t pending;     /* work items scheduled and not finished */
} THREADPOOL;

typedef struct WORK_TAG
{
    COMPLETION_PORT_IO io;
    THREADPOOL* pool;
    THREADPOOL_WORK_FUNCTION function;
    void* context;
    bool ran;
} WORK;

typedef struct TIMER_INSTANCE_TAG
{
    COMPLETION_PORT_IO io;
    COMPLETION_PORT_HANDLE port;
    atomic_int refcount;      /* the handle, and each delivery in progress */
    int fd;
    THREADPOOL_WORK_FUNCTION function;
    void* context;
    pthread_mutex_t lock;
    pthread_cond_t done;      /* signalled when a run ends, and when a hold leaves the handle alone */
    /* guarded by lock */
    bool armed;               /* an expiry calls back */
    bool running;
    bool again;               /* an expiry came while running: run once more */
    uint32_t period_ms;
    pthread_t runner;
} TIMER;

/* The pool whose work item the calling thread runs, so that a close from inside it does not
 * wait for itself. */
static _Thread_local THREADPOOL* running_work_of;

THREADPOOL_HANDLE threadpool_create(EXECUTION_ENGINE_HANDLE execution_engine)
{
    THREADPOOL* pool = sys_calloc(1, sizeof(THREADPOOL));
    if (pool == NULL)
    {
        LogError("cannot allocate a threadpool");
        return NULL;
    }
    /* Codes_SRS_THREADPOOL_LINUX_01_001 */
    pool->port = platform_get_completion_port();
    if (pool->port == NULL)
    {
        sys_free(pool);
        return NULL;
    }
    if (execution_engine != NULL)
    {
        execution_engine_inc_ref(execution_engine);
    }
    pool->execution_engine = execution_engine;
    (void)pthread_mutex_init(&pool->lock, NULL);
    (void)pthread_cond_init(&pool->idle, NULL);
    return pool;
}

void threadpool_destroy(THREADPOOL_HANDLE threadpool)
{
    if (threadpool == NULL)
    {
        LogError("invalid argument: threadpool is NULL");
        return;
    }
    /* Codes_SRS_THREADPOOL_LINUX_01_002 */
    threadpool_close(threadpool);
    if (threadpool->execution_engine != NULL)
    {
        execution_engine_dec_ref(threadpool->execution_engine);
    }
    completion_port_dec_ref(threadpool->port);
    (void)pthread_cond_destroy(&threadpool->idle);
    (void)pthread_mutex_destroy(&threadpool->lock);
    sys_free(threadpool);
}

int threadpool_open(THREADPOOL_HANDLE threadpool)
{
    if (threadpool == NULL)
    {
        LogError("invalid argument: threadpool is NULL");
        return -1;
    }
    (void)pthread_mutex_lock(&threadpool->lock);
    bool was_open = threadpool->open;
    threadpool->open = true;
    (void)pthread_mutex_unlock(&threadpool->lock);
    if (was_open)
    {
        /* Codes_SRS_THREADPOOL_LINUX_01_003 */
        LogError("threadpool %p is already open", (void*)threadpool);
        return -1;
    }
    return 0;
}

void threadpool_close(THREADPOOL_HANDLE threadpool)
{
    if (threadpool == NULL)
    {
        LogError("invalid argument: threadpool is NULL");
        return;
    }
    /* Codes_SRS_THREADPOOL_LINUX_01_004 */
    uint32_t own = (running_work_of == threadpool) ? 1 : 0;
    (void)pthread_mutex_lock(&threadpool->lock);
    threadpool->open = false;
    while (threadpool->pending > own)
    {
        (void)pthread_cond_wait(&threadpool->idle, &threadpool->lock);
    }
    (void)pthread_mutex_unlock(&threadpool->lock);
}

/* ---- work ---- */

static WORK* work_from_io(COMPLETION_PORT_IO* io)
{
    return (WORK*)((char*)io - offsetof(WORK, io));
}

static void work_run(WORK* work)
{
    if (work->ran)
    {
        return;
    }
    work->ran = true;
    THREADPOOL* outer = running_work_of;
    running_work_of = work->pool;
    work->function(work->context);
    running_work_of = outer;
}

static void work_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    (void)events;
    /* Codes_SRS_THREADPOOL_LINUX_01_005 */
    work_run(work_from_io(io));
}

static void work_hold(COMPLETION_PORT_IO* io)
{
    (void)io;
}

/* After the run; or instead of it when the port is freed with the post queued (the function
 * still runs exactly once, on the thread that frees the port). */
static void work_release(COMPLETION_PORT_IO* io)
{
    WORK* work = work_from_io(io);
    THREADPOOL* pool = work->pool;
    work_run(work);
    sys_free(work);
    (void)pthread_mutex_lock(&pool->lock);
    pool->pending--;
    (void)pthread_cond_broadcast(&pool->idle);
    (void)pthread_mutex_unlock(&pool->lock);
}

static const COMPLETION_PORT_IO_OPS work_io_ops = { work_on_events, work_hold, work_release };

int threadpool_schedule_work(THREADPOOL_HANDLE threadpool, THREADPOOL_WORK_FUNCTION work_function, void* work_function_context)
{
    if (threadpool == NULL || work_function == NULL)
    {
        LogError("invalid arguments: threadpool=%p, work_function=%p", (void*)threadpool, (void*)work_function);
        return -1;
    }
    WORK* work = sys_calloc(1, sizeof(WORK));
    if (work == NULL)
    {
        LogError("cannot allocate a work item");
        return -1;
    }
    work->io.ops = &work_io_ops;
    work->pool = threadpool;
    work->function = work_function;
    work->context = work_function_context;
    (void)pthread_mutex_lock(&threadpool->lock);
    bool open = threadpool->open;
    threadpool->pending += open ? 1 : 0;
    (void)pthread_mutex_unlock(&threadpool->lock);
    if (!open)
    {
        /* Codes_SRS_THREADPOOL_LINUX_01_006 */
        sys_free(work);
        LogError("threadpool %p is not open", (void*)threadpool);
        return -1;
    }
    if (completion_port_post(threadpool->port, &work->io) != 0)
    {
        work->ran = true; /* never posted: release only counts it off */
        work_release(&work->io);
        return -1;
    }
    return 0;
}

/* ---- timers ---- */

static TIMER* timer_from_io(COMPLETION_PORT_IO* io)
{
    return (TIMER*)((char*)io - offsetof(TIMER, io));
}

static void timer_hold(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add_explicit(&timer_from_io(io)->refcount, 1, memory_order_relaxed);
}

static void timer_release(COMPLETION_PORT_IO* io)
{
    TIMER* timer = timer_from_io(io);
    /* Under the lock: a destroy waiting in timer_wait_unheld reads the count under it too, so it
     * cannot free the timer between this decrement and the broadcast. */
    (void)pthread_mutex_lock(&timer->lock);
    int before = atomic_fetch_sub_explicit(&timer->refcount, 1, memory_order_acq_rel);
    if (before == 2)
    {
        (void)pthread_cond_broadcast(&timer->done);
    }
    (void)pthread_mutex_unlock(&timer->lock);
    if (before != 1)
    {
        return;
    }
    /* no delivery holds it: the fd, removed from the port at destroy, can go */
    (void)sys_close(timer->fd);
    completion_port_dec_ref(timer->port);
    (void)pthread_cond_destroy(&timer->done);
    (void)pthread_mutex_destroy(&timer->lock);
    sys_free(timer);
}

/* Codes_SRS_THREADPOOL_LINUX_01_007: runs the callback, and again for expirations that came while
 * it ran, one thread at a time */
static void timer_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    (void)events;
    TIMER* timer = timer_from_io(io);
    uint64_t expirations;
    if (sys_read(timer->fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
    {
        return; /* EAGAIN: another worker took this expiry, or a settime reset it */
    }
    (void)pthread_mutex_lock(&timer->lock);
    if (timer->running)
    {
        timer->again = timer->armed;
        (void)pthread_mutex_unlock(&timer->lock);
        return;
    }
    while (timer->armed)
    {
        timer->armed = (timer->period_ms != 0); /* a one-shot timer has expired */
        timer->again = false;
        timer->running = true;
        timer->runner = pthread_self();
        (void)pthread_mutex_unlock(&timer->lock);
        timer->function(timer->context);
        (void)pthread_mutex_lock(&timer->lock);
        timer->running = false;
        (void)pthread_cond_broadcast(&timer->done);
        if (!timer->again)
        {
            break;
        }
    }
    (void)pthread_mutex_unlock(&timer->lock);
}

static const COMPLETION_PORT_IO_OPS timer_io_ops = { timer_on_events, timer_hold, timer_release };

/* A delay of 0 means "now": timerfd reads a zero it_value as "disarm", so it becomes 1 ns. Takes
 * the fd, not the timer: once armed, the timer may fire and its callback destroy it, so nothing of
 * it may be read after the settime (the caller reads the fd under the timer's lock, which the
 * firing worker takes too). */
static int timer_set(int fd, uint32_t delay_ms, uint32_t period_ms)
{
    struct itimerspec spec = {
        .it_value = {.tv_sec = delay_ms / 1000, .tv_nsec = (long)(delay_ms % 1000) * 1000000L},
        .it_interval = {.tv_sec = period_ms / 1000, .tv_nsec = (long)(period_ms % 1000) * 1000000L},
    };
    if (delay_ms == 0)
    {
        spec.it_value.tv_nsec = 1;
    }
    if (sys_timerfd_settime(fd, 0, &spec, NULL) != 0)
    {
        LogError("timerfd_settime failed for timer fd=%d, errno=%d (%s)", fd, errno, strerror(errno));
        return -1;
    }
    return 0;
}

static TIMER* timer_new(THREADPOOL* pool, THREADPOOL_WORK_FUNCTION function, void* context)
{
    TIMER* timer = sys_calloc(1, sizeof(TIMER));
    if (timer == NULL)
    {
        LogError("cannot allocate a timer");
        return NULL;
    }
    timer->fd = sys_timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer->fd < 0)
    {
        LogError("timerfd_create failed, errno=%d (%s)", errno, strerror(errno));
        sys_free(timer);
        return NULL;
    }
    timer->io.ops = &timer_io_ops;
    timer->function = function;
    timer->context = context;
    atomic_init(&timer->refcount, 1);
    (void)pthread_mutex_init(&timer->lock, NULL);
    (void)pthread_cond_init(&timer->done, NULL);
    completion_port_inc_ref(pool->port);
    timer->port = pool->port;
    return timer;
}

int threadpool_timer_start(THREADPOOL_HANDLE threadpool, uint32_t start_delay_ms, uint32_t timer_period_ms, THREADPOOL_WORK_FUNCTION work_function, void* work_function_context, TIMER_INSTANCE_HANDLE* timer_handle)
{
    if (threadpool == NULL || work_function == NULL || timer_handle == NULL)
    {
        LogError("invalid arguments: threadpool=%p, work_function=%p, timer_handle=%p", (void*)threadpool, (void*)work_function, (void*)timer_handle);
        return -1;
    }
    (void)pthread_mutex_lock(&threadpool->lock);
    bool open = threadpool->open;
    (void)pthread_mutex_unlock(&threadpool->lock);
    if (!open)
    {
        LogError("threadpool %p is not open", (void*)threadpool);
        return -1;
    }
    TIMER* timer = timer_new(threadpool, work_function, work_function_context);
    if (timer == NULL)
    {
        return -1;
    }
    /* Codes_SRS_THREADPOOL_LINUX_01_008: the expiry is an input event on the port's workers */
    timer->armed = true;
    timer->period_ms = timer_period_ms;
    if (completion_port_add(timer->port, timer->fd, &timer->io) != 0)
    {
        timer_release(&timer->io);
        return -1;
    }
    if (timer_set(timer->fd, start_delay_ms, timer_period_ms) != 0)
    {
        completion_port_remove(timer->port, &timer->io);
        timer_release(&timer->io);
        return -1;
    }
    *timer_handle = timer;
    return 0;
}

int threadpool_timer_restart(TIMER_INSTANCE_HANDLE timer, uint32_t start_delay_ms, uint32_t timer_period_ms)
{
    if (timer == NULL)
    {
        LogError("invalid argument: timer is NULL");
        return -1;
    }
    /* Codes_SRS_THREADPOOL_LINUX_01_009 */
    (void)pthread_mutex_lock(&timer->lock);
    timer->armed = true;
    timer->period_ms = timer_period_ms;
    int fd = timer->fd;
    (void)pthread_mutex_unlock(&timer->lock);
    return timer_set(fd, start_delay_ms, timer_period_ms);
}

void threadpool_timer_cancel(TIMER_INSTANCE_HANDLE timer)
{
    if (timer == NULL)
    {
        LogError("invalid argument: timer is NULL");
        return;
    }
    /* Codes_SRS_THREADPOOL_LINUX_01_010: disarmed first, so an expiry a worker has already read
     * finds it so; then the run in progress on another thread is waited for */
    (void)pthread_mutex_lock(&timer->lock);
    timer->armed = false;
    timer->again = false;
    (void)pthread_mutex_unlock(&timer->lock);
    struct itimerspec off;
    (void)memset(&off, 0, sizeof(off));
    (void)sys_timerfd_settime(timer->fd, 0, &off, NULL);
    (void)pthread_mutex_lock(&timer->lock);
    while (timer->running && !pthread_equal(timer->runner, pthread_self()))
    {
        (void)pthread_cond_wait(&timer->done, &timer->lock);
    }
    (void)pthread_mutex_unlock(&timer->lock);
}

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_240: once the timer is out of the port no delivery can take a
 * new hold, so the holds left are deliveries finishing on a worker (after the callback, which
 * cancel waited for). Waiting for them makes the handle's release the last one: the timer and
 * its port reference go on this thread, so a platform_deinit right after is the port's last
 * reference and joins the workers instead of leaving the port to be freed by one of them. From
 * the timer's own callback the delivery holding it is this thread's: it frees the timer when the
 * callback returns. */
static void timer_wait_unheld(TIMER* timer)
{
    (void)pthread_mutex_lock(&timer->lock);
    bool own_callback = timer->running && pthread_equal(timer->runner, pthread_self());
    while (!own_callback && atomic_load_explicit(&timer->refcount, memory_order_acquire) > 1)
    {
        (void)pthread_cond_wait(&timer->done, &timer->lock);
    }
    (void)pthread_mutex_unlock(&timer->lock);
}

void threadpool_timer_destroy(TIMER_INSTANCE_HANDLE timer)
{
    if (timer == NULL)
    {
        LogError("invalid argument: timer is NULL");
        return;
    }
    /* Codes_SRS_THREADPOOL_LINUX_01_011 */
    threadpool_timer_cancel(timer);
    completion_port_remove(timer->port, &timer->io);
    timer_wait_unheld(timer);
    timer_release(&timer->io);
}
