/* Helpers shared by async_socket_data_int.c and async_socket_transport_int.c: leak marks, opening
 * an async socket, a plain blocking reader/writer for the peer end, an async "stream receiver"
 * that keeps receives posted and checks every byte, send tracking (exactly-once callbacks) and a
 * custom transport that does real I/O on the fd with configurable quirks.
 *
 * Callbacks run on worker threads, where a cmocka assert must not be used: they only record into
 * atomics, and the test thread asserts on what was recorded.
 *
 * Declarations only: the definitions are in async_socket_data_helpers.c, compiled into the library
 * async_socket_data_helpers, which CMake links into every test file that includes this header. */
#ifndef ASYNC_SOCKET_DATA_HELPERS_H
#define ASYNC_SOCKET_DATA_HELPERS_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "sys_fault.h"
#include "test_util.h"

/* Distinct pattern offsets per stream, so bytes of one stream can never pass for another's. */
#define STREAM_BASE_A ((uint64_t)0)
#define STREAM_BASE_B ((uint64_t)1 << 40)

/* ---- leak marks ---- */

typedef struct LEAK_MARK_TAG
{
    int64_t allocations;
    int fds;
} LEAK_MARK;

/* Records the allocation and fd counts, then initialises the platform. */
void env_begin(LEAK_MARK* mark);

/* Deinitialises the platform, resets the process-wide limits and checks that nothing leaked. */
void env_end(const LEAK_MARK* mark);

/* Bounds every blocking call the test makes on a plain fd, so a lost byte fails the test instead
 * of hanging it. */
void set_io_timeouts(int fd, int ms);
void make_pair(int fds[2], int sndbuf, int rcvbuf);

/* Bytes queued for reading on fd (FIONREAD). */
int bytes_waiting(int fd);

/* ---- opening ---- */

void on_open_record(void* context, ASYNC_SOCKET_OPEN_RESULT result);
ASYNC_SOCKET_HANDLE open_socket_with(int fd, ON_ASYNC_SOCKET_SEND on_send, void* send_context, ON_ASYNC_SOCKET_RECV on_recv, void* recv_context);
ASYNC_SOCKET_HANDLE open_socket(int fd);

/* The frame of a test on one pair: env_begin(mark), make_pair(fds, sndbuf, rcvbuf), and the async
 * socket opened on fds[0] (fds[1] is the test's peer). */
ASYNC_SOCKET_HANDLE env_begin_with_socket(LEAK_MARK* mark, int fds[2], int sndbuf, int rcvbuf);

/* Its end: destroys the socket, closes the peer fd, then env_end(mark). */
void env_end_with_socket(ASYNC_SOCKET_HANDLE socket, int peer_fd, const LEAK_MARK* mark);

/* ---- plain blocking I/O on the peer end ---- */

typedef struct PLAIN_IO_TAG
{
    int fd;
    uint64_t base;     /* pattern offset of the stream's first byte */
    uint64_t total;    /* bytes to move */
    size_t chunk;      /* bytes per recv/send call */
    unsigned sleep_us; /* pause after every call (a slow peer) */
    uint64_t done;     /* bytes moved */
    int error;         /* 0, errno of a failed call, -1 for an early EOF, -2 for a wrong byte */
    uint64_t mismatch_at;
    pthread_t thread;
} PLAIN_IO;

void plain_io_init(PLAIN_IO* io, int fd, uint64_t base, uint64_t total, size_t chunk, unsigned sleep_us);
void* plain_read_run(void* arg);
void* plain_write_run(void* arg);
void plain_io_start(PLAIN_IO* io, void* (*run)(void*));
void plain_io_join_and_check(PLAIN_IO* io);

/* Reads `total` bytes of the pattern from `base` on the calling thread and checks them. */
void plain_read_all(int fd, uint64_t base, uint64_t total);
void plain_write_all(int fd, uint64_t base, uint64_t total);

/* Nothing more than what was checked arrived (a repeated byte would show up here). */
void assert_no_more_bytes(int fd);

/* ---- send tracking ---- */

typedef struct SEND_TRACK_TAG SEND_TRACK;

typedef struct SEND_SLOT_TAG
{
    SEND_TRACK* track;
    atomic_uint calls;
    atomic_int result;
} SEND_SLOT;

struct SEND_TRACK_TAG
{
    SEND_SLOT* slots;
    uint32_t count;
    atomic_uint done;
    atomic_uint ok;
    atomic_uint abandoned;
    atomic_uint errors;
};

void send_track_init(SEND_TRACK* track, uint32_t count);
void send_track_deinit(SEND_TRACK* track);
void on_send_tracked(void* context, ASYNC_SOCKET_SEND_RESULT result);

/* Every tracked send was called back exactly once, with `expected`. */
void send_track_check_all(SEND_TRACK* track, ASYNC_SOCKET_SEND_RESULT expected);

/* Sends [offset, offset + length) of the pattern buffer `source` (which starts at stream offset
 * `base`) in `pieces` buffers; returns the call's duration in ms through *elapsed_ms. */
ASYNC_SOCKET_SEND_SYNC_RESULT send_piece(ASYNC_SOCKET_HANDLE handle, uint8_t* source, uint64_t offset, uint32_t length, uint32_t pieces, SEND_SLOT* slot, uint64_t* elapsed_ms);

/* ---- the async stream receiver ---- */

#define RX_SLOTS_MAX 8

typedef struct STREAM_RX_TAG STREAM_RX;

typedef struct RX_SLOT_TAG
{
    STREAM_RX* rx;
    uint8_t* buffer;
    uint32_t size;
    uint32_t pieces; /* the slot's buffer is posted as this many scattered buffers */
} RX_SLOT;

/* Keeps `slot_count` receives posted on `socket` until `expected` bytes have arrived, checking
 * every byte against the pattern from `base`. The receives complete in posting order, so the
 * bytes of each completion continue the stream where the previous completion ended. */
struct STREAM_RX_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    uint64_t base;
    uint64_t expected;
    RX_SLOT slots[RX_SLOTS_MAX];
    int slot_count;
    atomic_uint_fast64_t received;
    atomic_uint posted;
    atomic_uint completed;
    atomic_uint ok;
    atomic_uint abandoned;
    atomic_uint errors;
    atomic_uint mismatches;
    atomic_uint overlaps;
    atomic_uint repost_failures;
    atomic_int in_callback;
};

void stream_rx_init(STREAM_RX* rx, ASYNC_SOCKET_HANDLE socket, uint64_t base, uint64_t expected, int slot_count, uint32_t slot_size, uint32_t pieces);
void stream_rx_deinit(STREAM_RX* rx);
void stream_rx_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);
int stream_rx_post(RX_SLOT* slot);

void stream_rx_start(STREAM_RX* rx);
void stream_rx_wait(STREAM_RX* rx, unsigned timeout_ms);

/* After the socket was closed: every posted receive was called back exactly once, and those
 * still pending at close with ABANDONED. */
void stream_rx_check_closed(STREAM_RX* rx);

/* ---- a custom transport doing real I/O on the fd ---- */

typedef struct TRANSPORT_TAG
{
    int fd;
    size_t max_send;           /* bytes per on_send call at most (0: no limit) */
    size_t max_recv;           /* bytes per on_recv call at most (0: no limit) */
    unsigned eintr_every;      /* every nth call fails with EINTR first (0: never) */
    atomic_int fail_send_errno; /* non-zero: on_send fails with it */
    atomic_int fail_recv_errno; /* non-zero: on_recv fails with it */
    _Atomic(ASYNC_SOCKET_HANDLE) handle;
    atomic_uint wrong_handle;
    atomic_uint send_calls;
    atomic_uint recv_calls;
    atomic_uint send_eagain;
    atomic_uint recv_eagain;
    atomic_uint send_eintr;
    atomic_uint recv_eintr;
    atomic_uint send_failed;
    atomic_uint recv_failed;
} TRANSPORT;

void transport_init(TRANSPORT* transport, int fd, size_t max_send, size_t max_recv, unsigned eintr_every);
void transport_check_handle(TRANSPORT* transport, ASYNC_SOCKET_HANDLE async_socket);
int transport_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len);
int transport_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len);
ASYNC_SOCKET_HANDLE open_socket_transport(int fd, TRANSPORT* transport);

/* ---- a receive posted alone and waited for ---- */

typedef struct ONE_RX_TAG
{
    atomic_int done;
    atomic_int result;
    atomic_uint bytes;
} ONE_RX;

void one_rx_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);

/* Resets *one and posts one receive into buffer[0..length) that reports to it (the post must be
 * accepted). */
void one_rx_post(ASYNC_SOCKET_HANDLE socket, ONE_RX* one, uint8_t* buffer, uint32_t length);

/* Posts one receive into buffer[0..length) and waits for it; returns its result. */
ASYNC_SOCKET_RECEIVE_RESULT receive_once(ASYNC_SOCKET_HANDLE socket, uint8_t* buffer, uint32_t length, uint32_t* bytes);

/* Receives until `total` bytes of the pattern from `base` arrived, checking them. */
void receive_exactly(ASYNC_SOCKET_HANDLE socket, uint64_t base, uint64_t total);

/* A pattern buffer covering stream offsets [base, base + size). */
uint8_t* make_pattern(uint64_t base, size_t size);

#endif /* ASYNC_SOCKET_DATA_HELPERS_H */
