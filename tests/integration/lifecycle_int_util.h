/* Helpers shared by the lifecycle integration tests (async_socket_lifecycle_int.c and
 * async_socket_close_int.c): per-operation records that count their callbacks, a leak check
 * over allocations and fds, a watchdog that turns a deadlock into a failed test, and small
 * socket helpers.
 *
 * An OP_RECORD is the context of exactly one accepted operation. Its callback counts itself,
 * keeps the result, notes whether it ran inside a test call into the API (an inline completion)
 * and whether it started after the close of its socket had returned, then runs an optional hook
 * (close, destroy, sleep, ...) that a test uses to act from inside the callback. */
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
#include "sys_fault.h"
#include "test_util.h"

/* ---- leak check ---- */

typedef struct LEAK_CHECK_TAG
{
    int64_t allocations;
    int fds;
} LEAK_CHECK;

/* Call before platform_init. */
static inline void leak_check_begin(LEAK_CHECK* check)
{
    check->allocations = sys_fault_live_allocations();
    check->fds = test_count_open_fds();
    assert_true(check->fds > 0);
}

/* Call after the last destroy and platform_deinit. */
static inline void leak_check_end(const LEAK_CHECK* check)
{
    assert_int_equal(sys_fault_live_allocations(), check->allocations);
    assert_int_equal(test_count_open_fds(), check->fds);
}

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

static WATCHDOG watchdog = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void* watchdog_main(void* arg)
{
    (void)arg;
    struct timespec deadline;
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    (void)pthread_mutex_lock(&watchdog.lock);
    deadline.tv_sec += watchdog.ms / 1000;
    deadline.tv_nsec += (long)(watchdog.ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L)
    {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int wait_result = 0;
    while (!watchdog.stop && wait_result != ETIMEDOUT)
    {
        wait_result = pthread_cond_timedwait(&watchdog.cond, &watchdog.lock, &deadline);
    }
    bool fired = !watchdog.stop;
    (void)pthread_mutex_unlock(&watchdog.lock);
    if (fired)
    {
        (void)fprintf(stderr, "WATCHDOG: '%s' did not finish within %u ms (deadlock?)\n", watchdog.what, watchdog.ms);
        (void)fflush(stderr);
        _exit(3);
    }
    return NULL;
}

static inline void watchdog_stop(void)
{
    (void)pthread_mutex_lock(&watchdog.lock);
    bool active = watchdog.active;
    watchdog.stop = true;
    watchdog.active = false;
    (void)pthread_cond_signal(&watchdog.cond);
    (void)pthread_mutex_unlock(&watchdog.lock);
    if (active)
    {
        (void)pthread_join(watchdog.thread, NULL);
    }
}

static inline void watchdog_start(unsigned int ms, const char* what)
{
    watchdog_stop();
    (void)pthread_mutex_lock(&watchdog.lock);
    watchdog.stop = false;
    watchdog.active = true;
    watchdog.ms = ms;
    watchdog.what = what;
    (void)pthread_mutex_unlock(&watchdog.lock);
    assert_int_equal(pthread_create(&watchdog.thread, NULL, watchdog_main, NULL), 0);
}

/* ---- operation records ---- */

/* Set while the test thread is inside an async_socket_* call, so a callback can tell that it
 * completed inline. */
static _Thread_local int test_in_api_call;

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

static atomic_ullong op_completion_counter;

static inline void op_record_init(OP_RECORD* record, atomic_int* close_returned)
{
    atomic_init(&record->calls, 0);
    atomic_init(&record->result, -1);
    atomic_init(&record->bytes, 0);
    atomic_init(&record->inline_call, 0);
    atomic_init(&record->after_close, 0);
    atomic_init(&record->hook_done, 0);
    record->close_returned = close_returned;
    record->hook = NULL;
    record->hook_context = NULL;
    atomic_init(&record->order, 0);
}

static inline void op_record_note(OP_RECORD* record, int result, uint32_t bytes)
{
    if (record->close_returned != NULL && atomic_load(record->close_returned) != 0)
    {
        atomic_store(&record->after_close, 1);
    }
    atomic_store(&record->order, atomic_fetch_add(&op_completion_counter, 1) + 1);
    atomic_store(&record->inline_call, test_in_api_call);
    atomic_store(&record->bytes, bytes);
    atomic_store(&record->result, result);
    (void)atomic_fetch_add(&record->calls, 1);
    if (record->hook != NULL)
    {
        record->hook(record);
    }
    atomic_store(&record->hook_done, 1);
}

static void on_send_record(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    op_record_note(context, (int)result, 0);
}

static void on_receive_record(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    op_record_note(context, (int)result, bytes);
}

static void on_notify_record(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    op_record_note(context, (int)result, 0);
}

static void on_open_record(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    op_record_note(context, (int)result, 0);
}

/* Asserts that the record was called back exactly once with `result`. */
static inline void assert_once_with(const OP_RECORD* record, int result)
{
    assert_int_equal(atomic_load(&record->calls), 1);
    assert_int_equal(atomic_load(&record->result), result);
}

/* Fails when a callback of these records started after the close of their socket returned. */
static inline void assert_no_callback_after_close(const char* what, const OP_RECORD* records, size_t count)
{
    for (size_t i = 0; i < count; i++)
    {
        if (atomic_load(&records[i].after_close) != 0)
        {
            fail_msg("%s %zu (result %d) was called back after async_socket_close had returned", what, i, atomic_load(&records[i].result));
        }
    }
}

static inline bool all_called(const OP_RECORD* records, size_t count)
{
    for (size_t i = 0; i < count; i++)
    {
        if (atomic_load(&records[i].calls) == 0)
        {
            return false;
        }
    }
    return true;
}

/* ---- API wrappers that mark the calling thread as "inside the API" ---- */

static inline ASYNC_SOCKET_SEND_SYNC_RESULT test_send(ASYNC_SOCKET_HANDLE socket, void* data, uint32_t length, OP_RECORD* record)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = length};
    test_in_api_call++;
    ASYNC_SOCKET_SEND_SYNC_RESULT result = async_socket_send_async(socket, &buffer, 1, on_send_record, record);
    test_in_api_call--;
    return result;
}

static inline int test_receive(ASYNC_SOCKET_HANDLE socket, void* data, uint32_t length, OP_RECORD* record)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = length};
    test_in_api_call++;
    int result = async_socket_receive_async(socket, &buffer, 1, on_receive_record, record);
    test_in_api_call--;
    return result;
}

static inline int test_notify(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_NOTIFY_IO_TYPE type, OP_RECORD* record)
{
    test_in_api_call++;
    int result = async_socket_notify_io_async(socket, type, on_notify_record, record);
    test_in_api_call--;
    return result;
}

static inline int test_open(ASYNC_SOCKET_HANDLE socket, OP_RECORD* record)
{
    test_in_api_call++;
    int result = async_socket_open_async(socket, on_open_record, record);
    test_in_api_call--;
    return result;
}

/* ---- sockets ---- */

/* Creates and opens an async socket on fds[0] of a new loopback TCP pair; *peer gets fds[1].
 * *fd (optional) gets the number of the fd the async socket owns. */
static inline ASYNC_SOCKET_HANDLE open_tcp_async(int sndbuf, int rcvbuf, int* peer, int* fd)
{
    int fds[2];
    assert_int_equal(test_tcp_pair(fds, sndbuf, rcvbuf), 0);
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fds[0]);
    assert_non_null(socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);
    assert_int_equal(test_open(socket, &open_record), 0);
    assert_once_with(&open_record, ASYNC_SOCKET_OPEN_OK);
    *peer = fds[1];
    if (fd != NULL)
    {
        *fd = fds[0];
    }
    return socket;
}

/* Same over socketpair(AF_UNIX, SOCK_STREAM), for tests where TCP is not the point. */
static inline ASYNC_SOCKET_HANDLE open_unix_async(int* peer, int* fd)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fds[0]);
    assert_non_null(socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);
    assert_int_equal(test_open(socket, &open_record), 0);
    assert_once_with(&open_record, ASYNC_SOCKET_OPEN_OK);
    *peer = fds[1];
    if (fd != NULL)
    {
        *fd = fds[0];
    }
    return socket;
}

/* Reads from a blocking or non-blocking fd until end of stream (returns the byte count) or
 * timeout_ms without progress (fails the test). Checks the pattern from stream offset 0 when
 * check_pattern is set. */
static inline uint64_t drain_until_eof(int fd, unsigned int timeout_ms, bool check_pattern)
{
    static uint8_t chunk[65536];
    uint64_t total = 0;
    for (;;)
    {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)timeout_ms);
        if (ready < 0 && errno == EINTR)
        {
            continue;
        }
        assert_int_equal(ready, 1);
        ssize_t got = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
        {
            continue;
        }
        if (got < 0 && errno == ECONNRESET)
        {
            return total;
        }
        assert_true(got >= 0);
        if (got == 0)
        {
            return total;
        }
        if (check_pattern)
        {
            assert_int_equal(test_check_pattern(chunk, (size_t)got, total), (size_t)got);
        }
        total += (uint64_t)got;
    }
}

/* true when the fd number is not open in this process. */
static inline bool fd_is_closed(int fd)
{
    errno = 0;
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/* Sends until a send does not complete inline (so later sends queue behind it), at most
 * max_sends sends of `length` bytes of the stream pattern from *offset. Returns the number of
 * sends made; each one is accepted (SYNC_OK). */
static inline uint32_t send_until_queued(ASYNC_SOCKET_HANDLE socket, uint8_t* data, uint32_t length, OP_RECORD* records, uint32_t max_sends)
{
    for (uint32_t i = 0; i < max_sends; i++)
    {
        assert_int_equal(test_send(socket, data + (size_t)i * length, length, &records[i]), ASYNC_SOCKET_SEND_SYNC_OK);
        if (atomic_load(&records[i].calls) == 0 || atomic_load(&records[i].inline_call) == 0)
        {
            return i + 1;
        }
    }
    fail_msg("no send was queued after %u sends of %u bytes", max_sends, length);
    return max_sends;
}

#endif /* LIFECYCLE_INT_UTIL_H */
