/* Fault injection for the system seam (src/sys.h). Tests link sys_fault.c in place of
 * src/sys_linux.c; every sys_* function calls the C library unless a fault says otherwise.
 *
 * Per-thread, one-shot faults (for sweeps: arm n = 1, 2, ... until the operation succeeds and
 * sys_fault_fired() stays false):
 *
 *     sys_fault_arm(SYS_FAULT_ALLOC | SYS_FAULT_EPOLL, n, EMFILE);
 *     result = operation_under_test();
 *     fired = sys_fault_fired();
 *     sys_fault_disarm();
 *
 * Only calls made on the arming thread are counted, so work done by completion port threads does
 * not move the count. Process-wide: allocation accounting and send/recv size limits. */
#ifndef SYS_FAULT_H
#define SYS_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYS_FAULT_ALLOC    0x0001u /* sys_malloc, sys_calloc: return NULL, errno ENOMEM */
#define SYS_FAULT_EPOLL    0x0002u /* sys_epoll_create1, sys_epoll_ctl, sys_epoll_wait */
#define SYS_FAULT_EVENTFD  0x0004u /* sys_eventfd */
#define SYS_FAULT_THREAD   0x0008u /* sys_pthread_create: returns the error, creates no thread */
#define SYS_FAULT_FCNTL    0x0010u /* sys_fcntl */
#define SYS_FAULT_SEND     0x0020u /* sys_sendmsg */
#define SYS_FAULT_RECV     0x0040u /* sys_recvmsg */
#define SYS_FAULT_ALL      0x007Fu /* every category above */

/* Opt-in categories, not part of SYS_FAULT_ALL: failing them fakes rarer conditions (a failed
 * eventfd read/write can lose a wake-up) that a sweep over ALL should not hit by accident. */
#define SYS_FAULT_RW       0x0100u /* sys_read, sys_write */
#define SYS_FAULT_SHUTDOWN 0x0200u /* sys_shutdown */
#define SYS_FAULT_CLOSE    0x0400u /* sys_close: the fd IS closed (as Linux does), then -1 is returned */

/* On the calling thread, the nth (1-based) call in `categories` fails with `error` (0 means EIO,
 * EAGAIN for pthread_create); calls before and after it succeed. Resets the call count. */
void sys_fault_arm(uint32_t categories, uint32_t nth, int error);
void sys_fault_disarm(void);
/* Calls in the armed categories made on this thread since sys_fault_arm. */
uint32_t sys_fault_calls(void);
/* Whether the armed fault has been injected on this thread. */
bool sys_fault_fired(void);

/* Process-wide, one-shot: the nth call in `categories` made on ANY thread fails with `error` (0
 * as above). For the work done on the completion port's workers (a queued send's sendmsg, a
 * pending receive's recvmsg), which the per-thread arm cannot reach. The count is taken in the
 * order the calls are made, so the sweep that uses it counts how many points it covered rather
 * than expecting a fixed number. Independent of the per-thread arm. */
void sys_fault_arm_any_thread(uint32_t categories, uint32_t nth, int error);
void sys_fault_disarm_any_thread(void);
/* Calls in the categories armed by sys_fault_arm_any_thread, on all threads, since it was armed. */
uint32_t sys_fault_any_thread_calls(void);
bool sys_fault_any_thread_fired(void);

/* Successful sys_malloc / sys_calloc calls minus sys_free calls with a non-NULL pointer, over all
 * threads since the process started. */
int64_t sys_fault_live_allocations(void);

/* Watches for the sys_free of one pointer, so that a test can check that an object is freed by a
 * given moment (a synchronous destroy) without touching its memory. At most
 * SYS_FAULT_MAX_WATCHES at a time, process-wide. Returns a watch number, or -1 when all are in
 * use; sys_fault_freed tells whether sys_free(ptr) has been called since, sys_fault_unwatch
 * ends the watch. */
#define SYS_FAULT_MAX_WATCHES 256
int sys_fault_watch_free(const void* ptr);
bool sys_fault_freed(int watch);
void sys_fault_unwatch(int watch);

/* Successful sys_malloc / sys_calloc calls made on the calling thread since it started, and the
 * bytes they asked for (what an operation costs in memory: count it around the call). */
uint64_t sys_fault_thread_allocations(void);
uint64_t sys_fault_thread_allocated_bytes(void);

/* Every sys_sendmsg (sys_recvmsg) on any thread transfers at most max_bytes_per_call bytes, by
 * truncating the iovec list; 0 turns the limit off. */
void sys_fault_set_send_limit(size_t max_bytes_per_call);
void sys_fault_set_recv_limit(size_t max_bytes_per_call);

/* sys_recvmsg calls made on any thread since the process started (syscalls per operation are a
 * property the library promises, so tests count them). */
uint64_t sys_fault_recvmsg_calls(void);

/* Called on the writing thread after every sys_write that did not fail, with the fd and the
 * byte count asked for; NULL (the default) calls nothing. A hook can hold a thread right after a
 * write, e.g. the completion port's wake-up write of a post, to open a race window on purpose. */
typedef void (*SYS_FAULT_WRITE_HOOK)(int fd, size_t count);
void sys_fault_set_write_hook(SYS_FAULT_WRITE_HOOK hook);

/* sys_read calls made on any thread since the process started (a worker reads the wake-up
 * eventfd when it takes the posts). */
uint64_t sys_fault_read_calls(void);

#endif /* SYS_FAULT_H */
