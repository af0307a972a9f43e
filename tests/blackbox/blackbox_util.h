/* Helpers of the black-box suite: loopback pairs made with raw POSIX calls, a raw peer, bounded
 * waits, callback records and a log sink that counts lines.
 *
 * The suite is written against the user documentation only (README.md, docs/api.md,
 * docs/socket_transport.md, docs/tls.md, include/c_pal/ *.h): it includes nothing but the public
 * headers and links only the public library, so what it checks is what a user can rely on.
 *
 * Declarations only: the definitions are in blackbox_util.c, compiled into the library
 * async_socket_blackbox_helpers, which links the public library and cmocka and nothing else. */
#ifndef BLACKBOX_UTIL_H
#define BLACKBOX_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#include "c_pal/async_socket.h"
#include "c_pal/logger.h"
#include "c_pal/platform.h"

/* Every wait in the suite is bounded by this (ctest's 120 s is the outer bound). */
#define BB_WAIT_MS 10000
/* How long "nothing more happens" is watched for. */
#define BB_QUIET_MS 200

int64_t bb_now_ms(void);
void bb_sleep_ms(int ms);

/* The byte at absolute stream offset i: any loss, duplication or reordering shows. */
unsigned char bb_pattern(uint64_t i);
void bb_fill(unsigned char* p, size_t n, uint64_t offset);

/* The first offset where p differs from the pattern, or n. */
size_t bb_check(const unsigned char* p, size_t n, uint64_t offset);

/* ---- log capture ------------------------------------------------------------------------- */

#define BB_LOG_KEEP 256

typedef struct BB_LOG_TAG
{
    pthread_mutex_t lock;
    int count[5]; /* by level value */
    int total;
    char lines[BB_LOG_KEEP][256];
    char files[BB_LOG_KEEP][64];
    int levels[BB_LOG_KEEP];
} BB_LOG;

extern BB_LOG bb_log;

void bb_log_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function,
                 const char* message);

void bb_log_reset(void);
int bb_log_count(ASYNC_SOCKET_LOG_LEVEL level);
int bb_log_total(void);

/* Prints what was captured, so that a failing count shows the lines. */
void bb_log_dump(const char* why);

/* Asserts exactly `errors` ERROR and `warnings` WARNING lines since the last reset, then resets. */
#define BB_ASSERT_LOG(errors, warnings)                                                            \
    do                                                                                             \
    {                                                                                              \
        int bb_e_ = bb_log_count(ASYNC_SOCKET_LOG_LEVEL_ERROR);                                    \
        int bb_w_ = bb_log_count(ASYNC_SOCKET_LOG_LEVEL_WARNING);                                  \
        if (bb_e_ != (errors) || bb_w_ != (warnings))                                              \
        {                                                                                          \
            bb_log_dump("unexpected log lines");                                                   \
        }                                                                                          \
        assert_int_equal(bb_e_, (errors));                                                         \
        assert_int_equal(bb_w_, (warnings));                                                       \
        bb_log_reset();                                                                            \
    } while (0)

/* ---- bounded waits ----------------------------------------------------------------------- */

typedef struct BB_COUNTER_TAG
{
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count;
} BB_COUNTER;

void bb_counter_init(BB_COUNTER* c);
void bb_counter_deinit(BB_COUNTER* c);
void bb_counter_add(BB_COUNTER* c);
int bb_counter_get(BB_COUNTER* c);

/* Waits until the count reaches target, at most timeout_ms; returns the count seen last. */
int bb_counter_wait(BB_COUNTER* c, int target, int timeout_ms);

/* ---- callback records -------------------------------------------------------------------- */

/* The order in which callbacks of the whole test ran. */
extern atomic_int bb_sequence;

typedef struct BB_OP_TAG
{
    atomic_int calls;
    int result;
    uint32_t bytes;
    int sequence;
    pthread_t thread;
    BB_COUNTER* done; /* optional: counted on each callback */
    void (*then)(struct BB_OP_TAG* op); /* optional: run inside the callback, after recording */
    void* user;
} BB_OP;

void bb_op_init(BB_OP* op, BB_COUNTER* done);
void bb_op_record(BB_OP* op, int result, uint32_t bytes);
void bb_on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result);
void bb_on_send(void* context, ASYNC_SOCKET_SEND_RESULT result);
void bb_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);
void bb_on_notify(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result);
int bb_calls(BB_OP* op);

/* Waits until op has been called back at least once. */
bool bb_op_wait(BB_OP* op, int timeout_ms);

/* ---- raw sockets ------------------------------------------------------------------------- */

/* A connected TCP pair over 127.0.0.1 made with plain socket calls: *lib_fd (the connecting end)
 * is for the library, *peer_fd (the accepted end) for the test's raw peer. Both blocking. */
void bb_tcp_pair(int* lib_fd, int* peer_fd);

/* Reads up to n bytes from a blocking or non-blocking fd until n arrived, the stream ended or
 * timeout_ms passed; returns the count read. */
size_t bb_read_n(int fd, void* buf, size_t n, int timeout_ms);

/* Writes all n bytes (blocking peer fd); returns 0 or -1. */
int bb_write_all(int fd, const void* buf, size_t n);

/* Whether the peer sees the end of the stream (or a reset) within timeout_ms, reading and
 * discarding anything before it. */
bool bb_peer_sees_end(int fd, int timeout_ms);
bool bb_fd_is_open(int fd);

/* Makes a peer fd abort the connection: the close sends RST instead of FIN. */
void bb_close_with_reset(int fd);

/* ---- fixture ------------------------------------------------------------------------------ */

/* platform_init, the counting sink, a per-test alarm (a hang fails the case instead of waiting for
 * ctest's timeout). */
int bb_setup(void** state);
int bb_teardown(void** state);

/* A socket over fd, opened; asserts the open completed inline with OPEN_OK. */
ASYNC_SOCKET_HANDLE bb_open_socket(int fd);

#endif /* BLACKBOX_UTIL_H */
