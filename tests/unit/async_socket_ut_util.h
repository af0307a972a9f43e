/* Helpers for the async_socket unit tests (async_socket_ut.c and async_socket_faults_ut.c): leak
 * baselines, callback records, socket pairs, plain I/O on the peer end, and a custom transport
 * that does real I/O on the fd but can be told to fail a given call. Log capture is in
 * tests/common/log_capture.h.
 *
 * Everything here drives the real library (linked with the fault-injecting sys seam); nothing
 * replaces an internal function.
 *
 * Declarations only: the definitions are in async_socket_ut_util.c, compiled into the library
 * async_socket_ut_helpers, which CMake links into every test file that includes this header. */
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

/* A thread body that returns its argument (settle_threads starts one). */
void* do_nothing(void* arg);

/* Makes the thread count a stable baseline: a sanitizer's helper thread starts with the first
 * pthread_create (so one is made here), and a thread joined a moment ago may still be listed. */
void settle_threads(void);

typedef struct ENV_TAG
{
    int64_t allocations;
    int fds;
    int threads;
} ENV;

/* The test thread: callbacks compare pthread_self() with it. */
extern pthread_t test_thread;

/* Records the baseline (allocations, fds, threads) and initialises the platform. */
ENV env_begin(void);

/* Deinitialises the platform and checks that everything went back to the baseline. */
void env_end(ENV env);

/* Whether fd is open in this process. */
bool fd_is_open(int fd);

/* ---- callback records ---- */

/* Set by the test thread around calls into the API, so a callback can tell it ran inline. */
extern _Thread_local int in_api_call;

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

void cb_init(CB* cb);
void cb_note(CB* cb, int result, uint32_t bytes);
void on_open_cb(void* context, ASYNC_SOCKET_OPEN_RESULT result);
void on_send_cb(void* context, ASYNC_SOCKET_SEND_RESULT result);
void on_receive_cb(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);
void on_notify_cb(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result);

/* For the calls that must never call back: any call is counted as a failure. */
extern atomic_int unexpected_callbacks;
void on_open_unexpected(void* context, ASYNC_SOCKET_OPEN_RESULT result);
void on_send_unexpected(void* context, ASYNC_SOCKET_SEND_RESULT result);
void on_receive_unexpected(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);
void on_notify_unexpected(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result);

/* For the tests that pass a NULL context: their callbacks count here. */
extern atomic_int null_context_calls;
extern atomic_int null_context_result;
extern atomic_uint null_context_bytes;

/* Callbacks for those tests: a call with a NULL context counts in null_context_calls and keeps its
 * result (and byte count); a call with any other context is not counted. */
void on_open_expect_null_context(void* context, ASYNC_SOCKET_OPEN_RESULT result);
void on_send_expect_null_context(void* context, ASYNC_SOCKET_SEND_RESULT result);
void on_receive_expect_null_context(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);
void on_notify_expect_null_context(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result);

/* API wrappers that mark the call, so cb_note can tell inline completions apart. */
int open_marked(ASYNC_SOCKET_HANDLE s, ON_ASYNC_SOCKET_OPEN_COMPLETE cb, void* context);
ASYNC_SOCKET_SEND_SYNC_RESULT send_marked(ASYNC_SOCKET_HANDLE s, const ASYNC_SOCKET_BUFFER* payload, uint32_t count, ON_ASYNC_SOCKET_SEND_COMPLETE cb, void* context);
int receive_marked(ASYNC_SOCKET_HANDLE s, ASYNC_SOCKET_BUFFER* payload, uint32_t count, ON_ASYNC_SOCKET_RECEIVE_COMPLETE cb, void* context);
int notify_marked(ASYNC_SOCKET_HANDLE s, ASYNC_SOCKET_NOTIFY_IO_TYPE type, ON_ASYNC_SOCKET_NOTIFY_IO_COMPLETE cb, void* context);

/* ---- a gate a callback or a transport hook can wait at ---- */

typedef struct GATE_TAG
{
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int entered;
    atomic_int left;
} GATE;

void gate_init(GATE* gate);
void gate_wait(GATE* gate);
void gate_open(GATE* gate);
void gate_deinit(GATE* gate);

/* ---- socket pairs and the peer end ---- */

/* An AF_UNIX stream pair: fds[0] goes to the async socket, fds[1] is the test's peer (blocking).
 * A sndbuf > 0 is set on fds[0] (AF_UNIX charges queued bytes to the sender), so a large send
 * fills the socket for real. */
void make_unix_pair(int fds[2], int sndbuf);

/* A loopback TCP pair: fds[0] for the async socket, fds[1] the peer. */
void make_tcp_pair(int fds[2], int bufsize);

/* Makes the peer end send a reset (RST) instead of a FIN when it is closed. */
void close_with_reset(int fd);

/* Reads len bytes and checks them against the pattern from stream offset `offset`. */
void peer_read_pattern(int fd, uint64_t offset, size_t len);
void write_all(int fd, const void* buf, size_t len);
void peer_write_pattern(int fd, uint64_t offset, size_t len);
bool nothing_to_read(int fd);

/* The peer sees the end of the stream (the other end was shut down or closed). */
bool peer_sees_eof(int fd);

/* Reads and discards whatever is queued until the end of the stream; false when it does not come
 * within 2 s (or the connection is reset). */
bool peer_drains_to_eof(int fd);

/* ---- opening ---- */

ASYNC_SOCKET_HANDLE open_socket_with(ASYNC_SOCKET_HANDLE s);
ASYNC_SOCKET_HANDLE open_socket(int fd);

/* The frame of a test on one AF_UNIX pair: *env = env_begin(), make_unix_pair(fds, 0), and the
 * socket opened on fds[0] (fds[1] is the test's peer). */
ASYNC_SOCKET_HANDLE env_begin_with_unix_socket(ENV* env, int fds[2]);

/* Its end: destroys the socket, closes the peer fd, then env_end(env). */
void env_end_with_socket(ASYNC_SOCKET_HANDLE s, int peer_fd, ENV env);

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

void transport_init(TRANSPORT* t, int fd);
void transport_deinit(TRANSPORT* t);

/* Appends steps: each is an errno for the next call to fail with (0 = real I/O). */
void script_add(TRANSPORT* t, SCRIPT* script, int error);
int script_next(TRANSPORT* t, SCRIPT* script);
int script_left(TRANSPORT* t, SCRIPT* script);
void transport_note_handle(TRANSPORT* t, ASYNC_SOCKET_HANDLE handle);
int transport_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len);
int transport_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len);
ASYNC_SOCKET_HANDLE create_with_test_transport(TRANSPORT* t);

/* Makes the socket see an epoll event (the peer writes a byte): the event carries every
 * readiness bit of the fd, so a send waiting for room is retried when there is room. */
void kick(int peer_fd);

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

extern volatile sig_atomic_t sigpipe_count;
void count_sigpipe(int signal_number);

/* Installs a counting SIGPIPE handler (the default would kill the test). */
struct sigaction catch_sigpipe(void);
void restore_sigpipe(struct sigaction previous);

/* ---- filling a socket ---- */

/* Sends a large pattern payload that the socket cannot take at once; returns the payload (free
 * it after the callback). The send is accepted and waits for room. */
uint8_t* send_until_queued(ASYNC_SOCKET_HANDLE s, uint64_t offset, uint32_t size, CB* cb);

#endif /* ASYNC_SOCKET_UT_UTIL_H */
