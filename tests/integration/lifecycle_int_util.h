/* Helpers shared by the lifecycle integration tests (async_socket_lifecycle_int.c and
 * async_socket_close_int.c): per-operation records that count their callbacks, a leak check
 * over allocations and fds, a watchdog that turns a deadlock into a failed test, and small
 * socket helpers.
 *
 * An OP_RECORD is the context of exactly one accepted operation. Its callback counts itself,
 * keeps the result, notes whether it ran inside a test call into the API (an inline completion)
 * and whether it started after the close of its socket had returned, then runs an optional hook
 * (close, destroy, sleep, ...) that a test uses to act from inside the callback.
 *
 * Declarations only: the definitions are in lifecycle_int_util.c, compiled into the library
 * async_socket_lifecycle_helpers, which CMake links into every test file that includes this header. */
#ifndef LIFECYCLE_INT_UTIL_H
#define LIFECYCLE_INT_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "c_pal/platform_linux.h"
#include "sys_fault.h"
#include "test_util.h"

/* ---- leak check ---- */

typedef struct LEAK_CHECK_TAG
{
    int64_t allocations;
    int fds;
} LEAK_CHECK;

/* Call before platform_init. */
void leak_check_begin(LEAK_CHECK* check);

/* Call after the last destroy and platform_deinit. */
void leak_check_end(const LEAK_CHECK* check);

/* The frame of a lifecycle test: leak_check_begin, platform_init, then watchdog_start(watchdog_ms,
 * what) (a test passes __func__). */
void lifecycle_begin(LEAK_CHECK* check, unsigned int watchdog_ms, const char* what);

/* The end of that frame, after the last destroy: watchdog_stop, platform_deinit, leak_check_end. */
void lifecycle_end(const LEAK_CHECK* check);

/* The same frame for a test that needs `workers` worker threads: platform_linux_set_worker_count
 * before platform_init, and back to 0 (the default) before the leak check at the end. */
void lifecycle_begin_with_workers(LEAK_CHECK* check, uint32_t workers, unsigned int watchdog_ms, const char* what);
void lifecycle_end_with_workers(const LEAK_CHECK* check);

/* ---- watchdog ---- */

/* A deadlock in the library would hang the test until ctest's timeout; the watchdog ends the
 * process with a message naming what did not finish instead. One at a time; a test that failed
 * (cmocka jumps out of it) leaves its watchdog running, and the next watchdog_start stops it. */
typedef struct WATCHDOG_TAG
{
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool active;
    bool stop;
    unsigned int ms;
    const char* what;
} WATCHDOG;

extern WATCHDOG watchdog;
void* watchdog_main(void* arg);
void watchdog_stop(void);
void watchdog_start(unsigned int ms, const char* what);

/* ---- operation records ---- */

/* Set while the test thread is inside an async_socket_* call, so a callback can tell that it
 * completed inline. */
extern _Thread_local int test_in_api_call;

typedef struct OP_RECORD_TAG OP_RECORD;
typedef void (*OP_HOOK)(OP_RECORD* record);

struct OP_RECORD_TAG
{
    atomic_int calls;
    atomic_int result;
    atomic_uint bytes;
    atomic_int inline_call;  /* the callback ran inside a test call into the API */
    atomic_int after_close;  /* the callback started after *close_returned was set */
    atomic_int hook_done;    /* the hook has returned */
    atomic_int* close_returned; /* optional: set by the test when the socket's close returned */
    OP_HOOK hook;            /* optional: runs inside the callback, after the counting */
    void* hook_context;
    atomic_ullong order;     /* global completion order (1, 2, ...), for ordering checks */
};

extern atomic_ullong op_completion_counter;
void op_record_init(OP_RECORD* record, atomic_int* close_returned);
void op_record_note(OP_RECORD* record, int result, uint32_t bytes);
void on_send_record(void* context, ASYNC_SOCKET_SEND_RESULT result);
void on_receive_record(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);
void on_notify_record(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result);
void on_open_record(void* context, ASYNC_SOCKET_OPEN_RESULT result);

/* Asserts that the record was called back exactly once with `result`. */
void assert_once_with(const OP_RECORD* record, int result);

/* Fails when a callback of these records started after the close of their socket returned. */
void assert_no_callback_after_close(const char* what, const OP_RECORD* records, size_t count);
bool all_called(const OP_RECORD* records, size_t count);

/* ---- API wrappers that mark the calling thread as "inside the API" ---- */

ASYNC_SOCKET_SEND_SYNC_RESULT test_send(ASYNC_SOCKET_HANDLE socket, void* data, uint32_t length, OP_RECORD* record);
int test_receive(ASYNC_SOCKET_HANDLE socket, void* data, uint32_t length, OP_RECORD* record);
int test_notify(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_NOTIFY_IO_TYPE type, OP_RECORD* record);
int test_open(ASYNC_SOCKET_HANDLE socket, OP_RECORD* record);

/* ---- sockets ---- */

/* Creates and opens an async socket on fds[0] of a new loopback TCP pair; *peer gets fds[1].
 * *fd (optional) gets the number of the fd the async socket owns. */
ASYNC_SOCKET_HANDLE open_tcp_async(int sndbuf, int rcvbuf, int* peer, int* fd);

/* Same over socketpair(AF_UNIX, SOCK_STREAM), for tests where TCP is not the point. */
ASYNC_SOCKET_HANDLE open_unix_async(int* peer, int* fd);

/* Reads from a blocking or non-blocking fd until end of stream (returns the byte count) or
 * timeout_ms without progress (fails the test). Checks the pattern from stream offset 0 when
 * check_pattern is set. */
uint64_t drain_until_eof(int fd, unsigned int timeout_ms, bool check_pattern);

/* Opens and destroys one socket so that the completion port's lazily allocated fd table exists;
 * live allocations measured afterwards are then the steady baseline. */
void warm_up_port(void);

/* true when the fd number is not open in this process. */
bool fd_is_closed(int fd);

/* Sends until a send does not complete inline (so later sends queue behind it), at most
 * max_sends sends of `length` bytes of the stream pattern from *offset. Returns the number of
 * sends made; each one is accepted (SYNC_OK). */
uint32_t send_until_queued(ASYNC_SOCKET_HANDLE socket, uint8_t* data, uint32_t length, OP_RECORD* records, uint32_t max_sends);

#endif /* LIFECYCLE_INT_UTIL_H */
