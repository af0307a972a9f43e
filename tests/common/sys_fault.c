/* The fault-injecting system seam: see sys_fault.h. Replaces src/sys_linux.c in the tests. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sys.h"
#include "sys_fault.h"

/* The most iovecs a truncated sendmsg/recvmsg passes on (Linux's UIO_MAXIOV). */
#define SYS_FAULT_MAX_IOV 1024

typedef struct SYS_FAULT_STATE_TAG
{
    uint32_t categories;
    uint32_t nth;
    int error;
    uint32_t calls;
    bool fired;
} SYS_FAULT_STATE;

static _Thread_local SYS_FAULT_STATE fault_state;

/* The process-wide arm. `calls` numbers the counted calls; the one numbered `nth` fails. */
static atomic_uint any_categories;
static atomic_uint any_nth;
static atomic_int any_error;
static atomic_uint any_calls;
static atomic_bool any_fired;

static atomic_int_fast64_t live_allocations;
static _Thread_local uint64_t thread_allocations;
static _Thread_local uint64_t thread_allocated_bytes;
static atomic_size_t send_limit;
static atomic_size_t recv_limit;

void sys_fault_arm(uint32_t categories, uint32_t nth, int error)
{
    fault_state.categories = categories;
    fault_state.nth = nth;
    fault_state.error = error;
    fault_state.calls = 0;
    fault_state.fired = false;
}

void sys_fault_disarm(void)
{
    fault_state.categories = 0;
    fault_state.nth = 0;
}

uint32_t sys_fault_calls(void)
{
    return fault_state.calls;
}

bool sys_fault_fired(void)
{
    return fault_state.fired;
}

void sys_fault_arm_any_thread(uint32_t categories, uint32_t nth, int error)
{
    /* Disarmed while the count is reset, so a worker's call cannot be numbered by a stale arm. */
    atomic_store(&any_categories, 0);
    atomic_store(&any_nth, nth);
    atomic_store(&any_error, error);
    atomic_store(&any_calls, 0);
    atomic_store(&any_fired, false);
    atomic_store(&any_categories, categories);
}

void sys_fault_disarm_any_thread(void)
{
    atomic_store(&any_categories, 0);
}

uint32_t sys_fault_any_thread_calls(void)
{
    return atomic_load(&any_calls);
}

bool sys_fault_any_thread_fired(void)
{
    return atomic_load(&any_fired);
}

int64_t sys_fault_live_allocations(void)
{
    return (int64_t)atomic_load(&live_allocations);
}

/* Free watches: a slot's pointer is set while watched; sys_free marks the slot freed. The mutex
 * orders a free with the watch and unwatch of the same slot. */
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static const void* watched[SYS_FAULT_MAX_WATCHES];
static bool watched_freed[SYS_FAULT_MAX_WATCHES];
static atomic_int watches_active;

int sys_fault_watch_free(const void* ptr)
{
    int found = -1;
    (void)pthread_mutex_lock(&watch_lock);
    for (int i = 0; i < SYS_FAULT_MAX_WATCHES && found < 0; i++)
    {
        if (watched[i] == NULL)
        {
            watched[i] = ptr;
            watched_freed[i] = false;
            found = i;
            atomic_fetch_add(&watches_active, 1);
        }
    }
    (void)pthread_mutex_unlock(&watch_lock);
    return found;
}

bool sys_fault_freed(int watch)
{
    (void)pthread_mutex_lock(&watch_lock);
    bool freed = watched_freed[watch];
    (void)pthread_mutex_unlock(&watch_lock);
    return freed;
}

void sys_fault_unwatch(int watch)
{
    (void)pthread_mutex_lock(&watch_lock);
    watched[watch] = NULL;
    atomic_fetch_sub(&watches_active, 1);
    (void)pthread_mutex_unlock(&watch_lock);
}

static void note_free(const void* ptr)
{
    if (atomic_load(&watches_active) == 0)
    {
        return;
    }
    (void)pthread_mutex_lock(&watch_lock);
    for (int i = 0; i < SYS_FAULT_MAX_WATCHES; i++)
    {
        if (watched[i] == ptr && !watched_freed[i])
        {
            watched_freed[i] = true;
            break;
        }
    }
    (void)pthread_mutex_unlock(&watch_lock);
}

uint64_t sys_fault_thread_allocations(void)
{
    return thread_allocations;
}

uint64_t sys_fault_thread_allocated_bytes(void)
{
    return thread_allocated_bytes;
}

void sys_fault_set_send_limit(size_t max_bytes_per_call)
{
    atomic_store(&send_limit, max_bytes_per_call);
}

/* A capped call is short while the socket still has room or data, so the library must not take
 * a short transfer as the end of what the socket can do while a cap is on. */
int sys_short_send_means_full(void)
{
    return atomic_load(&send_limit) == 0;
}

int sys_short_recv_means_empty(void)
{
    return atomic_load(&recv_limit) == 0;
}

void sys_fault_set_recv_limit(size_t max_bytes_per_call)
{
    atomic_store(&recv_limit, max_bytes_per_call);
}

/* Counts a call in `category` on this thread; true when it is the one to fail. errno is set to
 * the armed error (or `fallback`) when it is. */
static bool fault_now_any_thread(uint32_t category, int fallback)
{
    if ((atomic_load(&any_categories) & category) == 0)
    {
        return false;
    }
    /* Each call gets its own number, so exactly one call fails however the threads interleave. */
    if (atomic_fetch_add(&any_calls, 1) + 1 != atomic_load(&any_nth))
    {
        return false;
    }
    atomic_store(&any_fired, true);
    errno = (atomic_load(&any_error) != 0) ? atomic_load(&any_error) : fallback;
    return true;
}

static bool fault_now(uint32_t category, int fallback)
{
    if (fault_now_any_thread(category, fallback))
    {
        return true;
    }
    if ((fault_state.categories & category) == 0)
    {
        return false;
    }
    fault_state.calls++;
    if (fault_state.fired || fault_state.calls != fault_state.nth)
    {
        return false;
    }
    fault_state.fired = true;
    errno = (fault_state.error != 0) ? fault_state.error : fallback;
    return true;
}

static void* count_allocation(void* ptr, size_t size)
{
    if (ptr != NULL)
    {
        atomic_fetch_add(&live_allocations, 1);
        thread_allocations++;
        thread_allocated_bytes += size;
    }
    return ptr;
}

void* sys_malloc(size_t size)
{
    if (fault_now(SYS_FAULT_ALLOC, ENOMEM))
    {
        errno = ENOMEM;
        return NULL;
    }
    return count_allocation(malloc(size), size);
}

void* sys_calloc(size_t count, size_t size)
{
    if (fault_now(SYS_FAULT_ALLOC, ENOMEM))
    {
        errno = ENOMEM;
        return NULL;
    }
    return count_allocation(calloc(count, size), count * size);
}

void sys_free(void* ptr)
{
    if (ptr != NULL)
    {
        atomic_fetch_sub(&live_allocations, 1);
        note_free(ptr);
    }
    free(ptr);
}

int sys_epoll_create1(int flags)
{
    return fault_now(SYS_FAULT_EPOLL, EIO) ? -1 : epoll_create1(flags);
}

int sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event* event)
{
    return fault_now(SYS_FAULT_EPOLL, EIO) ? -1 : epoll_ctl(epfd, op, fd, event);
}

int sys_epoll_wait(int epfd, struct epoll_event* events, int maxevents, int timeout)
{
    return fault_now(SYS_FAULT_EPOLL, EIO) ? -1 : epoll_wait(epfd, events, maxevents, timeout);
}

int sys_eventfd(unsigned int initval, int flags)
{
    return fault_now(SYS_FAULT_EVENTFD, EIO) ? -1 : eventfd(initval, flags);
}

int sys_pthread_create(pthread_t* thread, void* (*start_routine)(void*), void* arg)
{
    if (fault_now(SYS_FAULT_THREAD, EAGAIN))
    {
        return errno;
    }
    return pthread_create(thread, NULL, start_routine, arg);
}

int sys_fcntl(int fd, int cmd, int arg)
{
    return fault_now(SYS_FAULT_FCNTL, EIO) ? -1 : fcntl(fd, cmd, arg);
}

/* Copies at most `limit` bytes' worth of `iov` into `out`; returns the number of entries, or 0
 * when the list needs no truncation (limit off, or the whole list fits). */
static size_t truncate_iov(const struct iovec* iov, size_t iov_count, size_t limit, struct iovec* out)
{
    size_t total = 0;
    size_t used = 0;

    if (limit == 0)
    {
        return 0;
    }
    for (size_t i = 0; i < iov_count; i++)
    {
        if (total + iov[i].iov_len > limit)
        {
            if (used < SYS_FAULT_MAX_IOV && total < limit)
            {
                out[used].iov_base = iov[i].iov_base;
                out[used].iov_len = limit - total;
                used++;
            }
            return used;
        }
        total += iov[i].iov_len;
        if (used < SYS_FAULT_MAX_IOV)
        {
            out[used++] = iov[i];
        }
    }
    return 0;
}

ssize_t sys_sendmsg(int fd, const struct msghdr* msg, int flags)
{
    struct iovec limited[SYS_FAULT_MAX_IOV];
    size_t used;

    if (fault_now(SYS_FAULT_SEND, EIO))
    {
        return -1;
    }
    used = truncate_iov(msg->msg_iov, msg->msg_iovlen, atomic_load(&send_limit), limited);
    if (used > 0)
    {
        struct msghdr copy = *msg;
        copy.msg_iov = limited;
        copy.msg_iovlen = used;
        return sendmsg(fd, &copy, flags);
    }
    return sendmsg(fd, msg, flags);
}

static atomic_uint_fast64_t recvmsg_calls;

uint64_t sys_fault_recvmsg_calls(void)
{
    return atomic_load(&recvmsg_calls);
}

ssize_t sys_recvmsg(int fd, struct msghdr* msg, int flags)
{
    struct iovec limited[SYS_FAULT_MAX_IOV];
    size_t used;

    (void)atomic_fetch_add(&recvmsg_calls, 1);

    if (fault_now(SYS_FAULT_RECV, EIO))
    {
        return -1;
    }
    used = truncate_iov(msg->msg_iov, msg->msg_iovlen, atomic_load(&recv_limit), limited);
    if (used > 0)
    {
        /* recvmsg writes back the name/control lengths and the flags: pass them on. */
        struct iovec* original_iov = msg->msg_iov;
        size_t original_iovlen = msg->msg_iovlen;
        ssize_t result;

        msg->msg_iov = limited;
        msg->msg_iovlen = used;
        result = recvmsg(fd, msg, flags);
        msg->msg_iov = original_iov;
        msg->msg_iovlen = original_iovlen;
        return result;
    }
    return recvmsg(fd, msg, flags);
}

static _Atomic(SYS_FAULT_WRITE_HOOK) write_hook;
static atomic_uint_fast64_t read_calls;

ssize_t sys_read(int fd, void* buf, size_t count)
{
    (void)atomic_fetch_add(&read_calls, 1);
    return fault_now(SYS_FAULT_RW, EIO) ? -1 : read(fd, buf, count);
}

void sys_fault_set_write_hook(SYS_FAULT_WRITE_HOOK hook)
{
    atomic_store(&write_hook, hook);
}

uint64_t sys_fault_read_calls(void)
{
    return (uint64_t)atomic_load(&read_calls);
}

ssize_t sys_write(int fd, const void* buf, size_t count)
{
    ssize_t written = fault_now(SYS_FAULT_RW, EIO) ? -1 : write(fd, buf, count);
    SYS_FAULT_WRITE_HOOK hook = atomic_load(&write_hook);
    if (hook != NULL && written >= 0)
    {
        hook(fd, count);
    }
    return written;
}

int sys_shutdown(int fd, int how)
{
    return fault_now(SYS_FAULT_SHUTDOWN, EIO) ? -1 : shutdown(fd, how);
}

int sys_close(int fd)
{
    if (fault_now(SYS_FAULT_CLOSE, EIO))
    {
        /* Linux releases the descriptor even when close() reports an error. */
        int error = errno;
        (void)close(fd);
        errno = error;
        return -1;
    }
    return close(fd);
}


/* The calls no test fails yet: straight through, as in src/sys_linux.c. */
#include "sys_passthrough.h"
