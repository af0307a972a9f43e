/* Helpers for the async_socket unit tests (async_socket_ut.c and async_socket_faults_ut.c): leak
 * baselines, callback records, socket pairs, plain I/O on the peer end, and a custom transport
 * that does real I/O on the fd but can be told to fail a given call. Log capture is in
 * tests/common/log_capture.h.
 *
 * Everything here drives the real library (linked with the fault-injecting sys seam); nothing
 * replaces an internal function. */
#ifndef ASYNC_SOCKET_UT_UTIL_H
#define ASYNC_SOCKET_UT_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/execution_engine.h"
#include "c_pal/logger.h"
#include "c_pal/platform.h"
#include "log_capture.h"
#include "sys_fault.h"
#include "test_util.h"

/* ---- leak baselines ---- */

static void* do_nothing(void* arg)
{
    return arg;
}

/* Makes the thread count a stable baseline: a sanitizer's helper thread starts with the first
 * pthread_create (so one is made here), and a thread joined a moment ago may still be listed. */
static inline void settle_threads(void)
{
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, do_nothing, NULL), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    int previous = -1;
    for (int i = 0; i < 200; i++)
    {
        int now = test_count_threads();
        if (now == previous)
        {
            return;
        }
        previous = now;
        test_sleep_ms(5);
    }
}

typedef struct ENV_TAG
{
    int64_t allocations;
    int fds;
    int threads;
} ENV;

/* The test thread: callbacks compare pthread_self() with it. */
static pthread_t test_thread;

/* Records the baseline (allocations, fds, threads) and initialises the platform. */
static inline ENV env_begin(void)
{
    sys_fault_disarm();
    sys_fault_set_send_limit(0);
    sys_fault_set_recv_limit(0);
    test_thread = pthread_self();
    settle_threads();
    ENV env = {.allocations = sys_fault_live_allocations(), .fds = test_count_open_fds(), .threads = test_count_threads()};
    assert_true(env.fds > 0);
    assert_int_equal(platform_init(), 0);
    return env;
}

/* Deinitialises the platform and checks that everything went back to the baseline. */
static inline void env_end(ENV env)
{
    platform_deinit();
    sys_fault_disarm();
    sys_fault_set_send_limit(0);
    sys_fault_set_recv_limit(0);
    assert_int_equal(sys_fault_live_allocations(), env.allocations);
    assert_int_equal(test_count_open_fds(), env.fds);
    /* a joined thread can stay listed in /proc/self/task for a moment after pthread_join */
    TEST_WAIT_UNTIL(test_count_threads() == env.threads, 1000);
}

static inline bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* ---- callback records ---- */

/* Set by the test thread around calls into the API, so a callback can tell it ran inline. */
static _Thread_local int in_api_call;

typedef struct CB_TAG
{
    atomic_int calls;
    atomic_int result;
    atomic_uint bytes;
    atomic_int inline_calls;      /* ran inside the test's API call, on the test thread */
    atomic_int test_thread_calls; /* ran on the test thread (inline, or from a close) */
    atomic_int after_flag;        /* started after *flag was set */
    atomic_int* flag;             /* optional */
} CB;

static inline void cb_init(CB* cb)
{
    atomic_init(&cb->calls, 0);
    atomic_init(&cb->result, -1);
    atomic_init(&cb->bytes, 0);
    atomic_init(&cb->inline_calls, 0);
    atomic_init(&cb->test_thread_calls, 0);
    atomic_init(&cb->after_flag, 0);
    cb->flag = NULL;
}

static inline void cb_note(CB* cb, int result, uint32_t bytes)
{
    if (cb->flag != NULL && atomic_load(cb->flag) != 0)
    {
        (void)atomic_fetch_add(&cb->after_flag, 1);
    }
    atomic_store(&cb->result, result);
    atomic_store(&cb->bytes, bytes);
    if (pthread_equal(pthread_self(), test_thread))
    {
        (void)atomic_fetch_add(&cb->test_thread_calls, 1);
        if (in_api_call)
        {
            (void)atomic_fetch_add(&cb->inline_calls, 1);
        }
    }
    (void)atomic_fetch_add(&cb->calls, 1);
}

static inline void on_open_cb(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    cb_note(context, (int)result, 0);
}

static inline void on_send_cb(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    cb_note(context, (int)result, 0);
}

static inline void on_receive_cb(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    cb_note(context, (int)result, bytes);
}

static inline void on_notify_cb(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    cb_note(context, (int)result, 0);
}

/* For the calls that must never call back: any call is counted as a failure. */
static atomic_int unexpected_callbacks;

static inline void on_open_unexpected(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    (void)context; (void)result;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

static inline void on_send_unexpected(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    (void)context; (void)result;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

static inline void on_receive_unexpected(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)context; (void)result; (void)bytes;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

static inline void on_notify_unexpected(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    (void)context; (void)result;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

/* For the tests that pass a NULL context: their callbacks count here. */
static __attribute__((unused)) atomic_int null_context_calls;
static __attribute__((unused)) atomic_int null_context_result;

/* API wrappers that mark the call, so cb_note can tell inline completions apart. */
static inline int open_marked(ASYNC_SOCKET_HANDLE s, ON_ASYNC_SOCKET_OPEN_COMPLETE cb, void* context)
{
    in_api_call = 1;
    int result = async_socket_open_async(s, cb, context);
    in_api_call = 0;
    return result;
}

static inline ASYNC_SOCKET_SEND_SYNC_RESULT send_marked(ASYNC_SOCKET_HANDLE s, const ASYNC_SOCKET_BUFFER* payload, uint32_t count, ON_ASYNC_SOCKET_SEND_COMPLETE cb, void* context)
{
    in_api_call = 1;
    ASYNC_SOCKET_SEND_SYNC_RESULT result = async_socket_send_async(s, payload, count, cb, context);
    in_api_call = 0;
    return result;
}

static inline int receive_marked(ASYNC_SOCKET_HANDLE s, ASYNC_SOCKET_BUFFER* payload, uint32_t count, ON_ASYNC_SOCKET_RECEIVE_COMPLETE cb, void* context)
{
    in_api_call = 1;
    int result = async_socket_receive_async(s, payload, count, cb, context);
    in_api_call = 0;
    return result;
}

static inline int notify_marked(ASYNC_SOCKET_HANDLE s, ASYNC_SOCKET_NOTIFY_IO_TYPE type, ON_ASYNC_SOCKET_NOTIFY_IO_COMPLETE cb, void* context)
{
    in_api_call = 1;
    int result = async_socket_notify_io_async(s, type, cb, context);
    in_api_call = 0;
    return result;
}

/* ---- a gate a callback or a transport hook can wait at ---- */

typedef struct GATE_TAG
{
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int entered;
    atomic_int left;
} GATE;

static inline void gate_init(GATE* gate)
{
    (void)pthread_mutex_init(&gate->lock, NULL);
    (void)pthread_cond_init(&gate->cond, NULL);
    gate->open = false;
    atomic_init(&gate->entered, 0);
    atomic_init(&gate->left, 0);
}

static inline void gate_wait(GATE* gate)
{
    (void)atomic_fetch_add(&gate->entered, 1);
    (void)pthread_mutex_lock(&gate->lock);
    while (!gate->open)
    {
        (void)pthread_cond_wait(&gate->cond, &gate->lock);
    }
    (void)pthread_mutex_unlock(&gate->lock);
    (void)atomic_fetch_add(&gate->left, 1);
}

static inline void gate_open(GATE* gate)
{
    (void)pthread_mutex_lock(&gate->lock);
    gate->open = true;
    (void)pthread_cond_broadcast(&gate->cond);
    (void)pthread_mutex_unlock(&gate->lock);
}

static inline void gate_deinit(GATE* gate)
{
    (void)pthread_cond_destroy(&gate->cond);
    (void)pthread_mutex_destroy(&gate->lock);
}

/* ---- socket pairs and the peer end ---- */

/* An AF_UNIX stream pair: fds[0] goes to the async socket, fds[1] is the test's peer (blocking).
 * A sndbuf > 0 is set on fds[0] (AF_UNIX charges queued bytes to the sender), so a large send
 * fills the socket for real. */
static inline void make_unix_pair(int fds[2], int sndbuf)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    if (sndbuf > 0)
    {
        assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
        assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    }
}

/* A loopback TCP pair: fds[0] for the async socket, fds[1] the peer. */
static inline void make_tcp_pair(int fds[2], int bufsize)
{
    assert_int_equal(test_tcp_pair(fds, bufsize, bufsize), 0);
}

/* Makes the peer end send a reset (RST) instead of a FIN when it is closed. */
static inline void close_with_reset(int fd)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
    assert_int_equal(close(fd), 0);
}

/* Reads len bytes and checks them against the pattern from stream offset `offset`. */
static inline void peer_read_pattern(int fd, uint64_t offset, size_t len)
{
    uint8_t* buf = malloc(len);
    assert_non_null(buf);
    test_read_exact(fd, buf, len);
    size_t bad = test_check_pattern(buf, len, offset);
    free(buf);
    if (bad != len)
    {
        fail_msg("byte %zu of %zu (stream offset %llu) does not match the pattern", bad, len, (unsigned long long)(offset + bad));
    }
}

static inline void write_all(int fd, const void* buf, size_t len)
{
    size_t done = 0;
    while (done < len)
    {
        ssize_t n = send(fd, (const uint8_t*)buf + done, len - done, MSG_NOSIGNAL);
        assert_true(n > 0);
        done += (size_t)n;
    }
}

static inline void peer_write_pattern(int fd, uint64_t offset, size_t len)
{
    uint8_t* buf = malloc(len);
    assert_non_null(buf);
    test_fill_pattern(buf, len, offset);
    write_all(fd, buf, len);
    free(buf);
}

static inline bool nothing_to_read(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

/* The peer sees the end of the stream (the other end was shut down or closed). */
static inline bool peer_sees_eof(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) <= 0)
    {
        return false;
    }
    uint8_t byte;
    return recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

/* Reads and discards whatever is queued until the end of the stream; false when it does not come
 * within 2 s (or the connection is reset). */
static inline bool peer_drains_to_eof(int fd)
{
    uint8_t sink[65536];
    uint64_t start = test_now_ms();
    while (test_now_ms() - start < 2000)
    {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
        {
            continue;
        }
        ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0)
        {
            return true;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
        {
            return false;
        }
    }
    return false;
}

/* ---- opening ---- */

static inline ASYNC_SOCKET_HANDLE open_socket_with(ASYNC_SOCKET_HANDLE s)
{
    assert_non_null(s);
    CB cb;
    cb_init(&cb);
    assert_int_equal(open_marked(s, on_open_cb, &cb), 0);
    assert_int_equal(atomic_load(&cb.calls), 1);
    assert_int_equal(atomic_load(&cb.result), ASYNC_SOCKET_OPEN_OK);
    return s;
}

static inline ASYNC_SOCKET_HANDLE open_socket(int fd)
{
    return open_socket_with(async_socket_create(NULL, fd));
}

/* ---- a custom transport doing real I/O on the fd, with scripted failures ---- */

#define SCRIPT_MAX 16

typedef struct SCRIPT_TAG
{
    int step[SCRIPT_MAX]; /* errno to fail that call with; 0: do the real I/O */
    int length;
    int position;
} SCRIPT;

typedef struct TRANSPORT_TAG
{
    int fd;
    size_t max_send; /* bytes per call, 0: no cap */
    size_t max_recv;
    int reset_errno; /* when set, a real ECONNRESET from recv is reported as this errno */
    atomic_bool recv_would_block; /* when set, a recv the script does not fail says EAGAIN */
    pthread_mutex_t lock;
    SCRIPT send_script;
    SCRIPT recv_script;
    atomic_int send_calls;
    atomic_int recv_calls;
    atomic_int worker_send_calls;
    atomic_int test_thread_recv_calls;
    atomic_int wrong_handle;
    _Atomic(ASYNC_SOCKET_HANDLE) handle;
    GATE* send_gate; /* when set, every send call waits here first */
} TRANSPORT;

static inline void transport_init(TRANSPORT* t, int fd)
{
    memset(t, 0, sizeof(*t));
    t->fd = fd;
    (void)pthread_mutex_init(&t->lock, NULL);
    atomic_init(&t->send_calls, 0);
    atomic_init(&t->recv_calls, 0);
    atomic_init(&t->worker_send_calls, 0);
    atomic_init(&t->test_thread_recv_calls, 0);
    atomic_init(&t->wrong_handle, 0);
    atomic_init(&t->handle, NULL);
    atomic_init(&t->recv_would_block, false);
}

static inline void transport_deinit(TRANSPORT* t)
{
    (void)pthread_mutex_destroy(&t->lock);
}

/* Appends steps: each is an errno for the next call to fail with (0 = real I/O). */
static inline void script_add(TRANSPORT* t, SCRIPT* script, int error)
{
    (void)pthread_mutex_lock(&t->lock);
    assert_true(script->length < SCRIPT_MAX);
    script->step[script->length++] = error;
    (void)pthread_mutex_unlock(&t->lock);
}

static inline int script_next(TRANSPORT* t, SCRIPT* script)
{
    int error = 0;
    (void)pthread_mutex_lock(&t->lock);
    if (script->position < script->length)
    {
        error = script->step[script->position++];
    }
    if (script->position == script->length)
    {
        /* all used: start over, so a long test can keep adding steps */
        script->position = 0;
        script->length = 0;
    }
    (void)pthread_mutex_unlock(&t->lock);
    return error;
}

static inline int script_left(TRANSPORT* t, SCRIPT* script)
{
    (void)pthread_mutex_lock(&t->lock);
    int left = script->length - script->position;
    (void)pthread_mutex_unlock(&t->lock);
    return left;
}

static inline void transport_note_handle(TRANSPORT* t, ASYNC_SOCKET_HANDLE handle)
{
    if (atomic_load(&t->handle) != handle)
    {
        (void)atomic_fetch_add(&t->wrong_handle, 1);
    }
}

static inline int transport_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    TRANSPORT* t = context;
    transport_note_handle(t, async_socket);
    (void)atomic_fetch_add(&t->send_calls, 1);
    if (!pthread_equal(pthread_self(), test_thread))
    {
        (void)atomic_fetch_add(&t->worker_send_calls, 1);
    }
    if (t->send_gate != NULL)
    {
        gate_wait(t->send_gate);
    }
    int error = script_next(t, &t->send_script);
    if (error != 0)
    {
        errno = error;
        return -1;
    }
    if (t->max_send != 0 && len > t->max_send)
    {
        len = t->max_send;
    }
    return (int)send(t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static inline int transport_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    TRANSPORT* t = context;
    transport_note_handle(t, async_socket);
    (void)atomic_fetch_add(&t->recv_calls, 1);
    if (pthread_equal(pthread_self(), test_thread))
    {
        (void)atomic_fetch_add(&t->test_thread_recv_calls, 1);
    }
    int error = script_next(t, &t->recv_script);
    if (error == 0 && atomic_load(&t->recv_would_block))
    {
        error = EAGAIN;
    }
    if (error != 0)
    {
        errno = error;
        return -1;
    }
    if (t->max_recv != 0 && len > t->max_recv)
    {
        len = t->max_recv;
    }
    ssize_t n = recv(t->fd, buf, len, MSG_DONTWAIT);
    if (n < 0 && errno == ECONNRESET && t->reset_errno != 0)
    {
        errno = t->reset_errno;
    }
    return (int)n;
}

static inline ASYNC_SOCKET_HANDLE create_with_test_transport(TRANSPORT* t)
{
    ASYNC_SOCKET_HANDLE s = async_socket_create_with_transport(NULL, t->fd, transport_on_send, t, transport_on_recv, t);
    assert_non_null(s);
    atomic_store(&t->handle, s);
    return s;
}

/* Makes the socket see an epoll event (the peer writes a byte): the event carries every
 * readiness bit of the fd, so a send waiting for room is retried when there is room. */
static inline void kick(int peer_fd)
{
    uint8_t byte = 0xA5;
    /* never blocks: when the socket is full, the bytes already sent raise no new edge anyway */
    ssize_t n = send(peer_fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    assert_true(n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)));
}

/* Kicks until cond holds (at most 5 s). */
#define KICK_UNTIL(peer_fd, cond)                                                        \
    do                                                                                   \
    {                                                                                    \
        const uint64_t kick_start_ = test_now_ms();                                      \
        while (!(cond))                                                                  \
        {                                                                                \
            if (test_now_ms() - kick_start_ > 5000)                                      \
            {                                                                            \
                fail_msg("timed out kicking for: %s", #cond);                            \
            }                                                                            \
            kick(peer_fd);                                                               \
            test_sleep_ms(10);                                                           \
        }                                                                                \
    } while (0)

/* ---- SIGPIPE ---- */

static volatile sig_atomic_t sigpipe_count;

static inline void count_sigpipe(int signal_number)
{
    (void)signal_number;
    sigpipe_count++;
}

/* Installs a counting SIGPIPE handler (the default would kill the test). */
static inline struct sigaction catch_sigpipe(void)
{
    struct sigaction action;
    struct sigaction previous;
    memset(&action, 0, sizeof(action));
    action.sa_handler = count_sigpipe;
    (void)sigemptyset(&action.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &action, &previous), 0);
    sigpipe_count = 0;
    return previous;
}

static inline void restore_sigpipe(struct sigaction previous)
{
    assert_int_equal(sigaction(SIGPIPE, &previous, NULL), 0);
}

/* ---- filling a socket ---- */

/* Sends a large pattern payload that the socket cannot take at once; returns the payload (free
 * it after the callback). The send is accepted and waits for room. */
static inline uint8_t* send_until_queued(ASYNC_SOCKET_HANDLE s, uint64_t offset, uint32_t size, CB* cb)
{
    uint8_t* data = malloc(size);
    assert_non_null(data);
    test_fill_pattern(data, size, offset);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = size};
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, cb), ASYNC_SOCKET_SEND_SYNC_OK);
    return data;
}

#endif /* ASYNC_SOCKET_UT_UTIL_H */
