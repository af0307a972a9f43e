/* async_socket: a TCP socket with asynchronous send, receive and readiness notification.
 *
 * Callbacks run on the completion port's worker threads, except that a send which the kernel
 * accepts at once completes inside async_socket_send_async (when not called from one of the
 * socket's own callbacks: such a send is queued, and sent and called back after that callback
 * returns), open completes inside
 * async_socket_open_async, and close calls pending operations back ABANDONED on the closing
 * thread. See README.md ("Threading and callbacks") for the full rules. */
#ifndef C_PAL_ASYNC_SOCKET_H
#define C_PAL_ASYNC_SOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "c_pal/macro_compat.h"
#include "c_pal/execution_engine.h"
#include "c_pal/socket_handle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ASYNC_SOCKET_TAG* ASYNC_SOCKET_HANDLE;

#define ASYNC_SOCKET_OPEN_RESULT_VALUES \
    ASYNC_SOCKET_OPEN_OK, \
    ASYNC_SOCKET_OPEN_ERROR

MU_DEFINE_ENUM(ASYNC_SOCKET_OPEN_RESULT, ASYNC_SOCKET_OPEN_RESULT_VALUES);

#define ASYNC_SOCKET_SEND_SYNC_RESULT_VALUES \
    ASYNC_SOCKET_SEND_SYNC_OK, \
    ASYNC_SOCKET_SEND_SYNC_ERROR, \
    ASYNC_SOCKET_SEND_SYNC_NOT_OPEN

MU_DEFINE_ENUM(ASYNC_SOCKET_SEND_SYNC_RESULT, ASYNC_SOCKET_SEND_SYNC_RESULT_VALUES);

#define ASYNC_SOCKET_SEND_RESULT_VALUES \
    ASYNC_SOCKET_SEND_OK, \
    ASYNC_SOCKET_SEND_ERROR, \
    ASYNC_SOCKET_SEND_ABANDONED

MU_DEFINE_ENUM(ASYNC_SOCKET_SEND_RESULT, ASYNC_SOCKET_SEND_RESULT_VALUES);

#define ASYNC_SOCKET_RECEIVE_RESULT_VALUES \
    ASYNC_SOCKET_RECEIVE_OK, \
    ASYNC_SOCKET_RECEIVE_ERROR, \
    ASYNC_SOCKET_RECEIVE_ABANDONED

MU_DEFINE_ENUM(ASYNC_SOCKET_RECEIVE_RESULT, ASYNC_SOCKET_RECEIVE_RESULT_VALUES);

#define ASYNC_SOCKET_NOTIFY_IO_TYPE_VALUES \
    ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, \
    ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT

MU_DEFINE_ENUM(ASYNC_SOCKET_NOTIFY_IO_TYPE, ASYNC_SOCKET_NOTIFY_IO_TYPE_VALUES);

#define ASYNC_SOCKET_NOTIFY_IO_RESULT_VALUES \
    ASYNC_SOCKET_NOTIFY_IO_RESULT_IN, \
    ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT, \
    ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED, \
    ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR

MU_DEFINE_ENUM(ASYNC_SOCKET_NOTIFY_IO_RESULT, ASYNC_SOCKET_NOTIFY_IO_RESULT_VALUES);

typedef void (*ON_ASYNC_SOCKET_OPEN_COMPLETE)(void* context, ASYNC_SOCKET_OPEN_RESULT open_result);
typedef void (*ON_ASYNC_SOCKET_SEND_COMPLETE)(void* context, ASYNC_SOCKET_SEND_RESULT send_result);
typedef void (*ON_ASYNC_SOCKET_RECEIVE_COMPLETE)(void* context, ASYNC_SOCKET_RECEIVE_RESULT receive_result, uint32_t bytes_received);
typedef void (*ON_ASYNC_SOCKET_NOTIFY_IO_COMPLETE)(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT notify_io_result);
/* Custom transport hooks: behave like send(2) / recv(2): return the byte count, or -1 with errno
 * set (EAGAIN/EWOULDBLOCK when the transport cannot make progress until the fd is ready). */
typedef int (*ON_ASYNC_SOCKET_SEND)(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len);
typedef int (*ON_ASYNC_SOCKET_RECV)(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len);

typedef struct ASYNC_SOCKET_BUFFER_TAG
{
    void* buffer;
    uint32_t length;
} ASYNC_SOCKET_BUFFER;

/* Called once a socket given to async_socket_destroy_async is gone: no callback of it runs or will
 * run again, so the context of its callbacks may be freed. Runs on a completion-port worker. */
typedef void (*ON_ASYNC_SOCKET_DESTROY_COMPLETE)(void* context);

/* Room for any address async_socket_get_peer_address writes ("[v6 address]:port" and the NUL). */
#define ASYNC_SOCKET_ADDRESS_TEXT_SIZE 64

MOCKABLE_FUNCTION(, ASYNC_SOCKET_HANDLE, async_socket_create, EXECUTION_ENGINE_HANDLE, execution_engine, SOCKET_HANDLE, socket_handle);
MOCKABLE_FUNCTION(, ASYNC_SOCKET_HANDLE, async_socket_create_with_transport, EXECUTION_ENGINE_HANDLE, execution_engine, SOCKET_HANDLE, socket_handle, ON_ASYNC_SOCKET_SEND, on_send, void*, on_send_context, ON_ASYNC_SOCKET_RECV, on_recv, void*, on_recv_context);
MOCKABLE_FUNCTION(, void, async_socket_destroy, ASYNC_SOCKET_HANDLE, async_socket);

MOCKABLE_FUNCTION(, int, async_socket_open_async, ASYNC_SOCKET_HANDLE, async_socket, ON_ASYNC_SOCKET_OPEN_COMPLETE, on_open_complete, void*, on_open_complete_context);
MOCKABLE_FUNCTION(, void, async_socket_close, ASYNC_SOCKET_HANDLE, async_socket);
MOCKABLE_FUNCTION(, ASYNC_SOCKET_SEND_SYNC_RESULT, async_socket_send_async, ASYNC_SOCKET_HANDLE, async_socket, const ASYNC_SOCKET_BUFFER*, payload, uint32_t, buffer_count, ON_ASYNC_SOCKET_SEND_COMPLETE, on_send_complete, void*, on_send_complete_context);
MOCKABLE_FUNCTION(, int, async_socket_receive_async, ASYNC_SOCKET_HANDLE, async_socket, ASYNC_SOCKET_BUFFER*, payload, uint32_t, buffer_count, ON_ASYNC_SOCKET_RECEIVE_COMPLETE, on_receive_complete, void*, on_receive_complete_context);
MOCKABLE_FUNCTION(, int, async_socket_notify_io_async, ASYNC_SOCKET_HANDLE, async_socket, ASYNC_SOCKET_NOTIFY_IO_TYPE, io_type, ON_ASYNC_SOCKET_NOTIFY_IO_COMPLETE, on_notify_io_complete, void*, on_notify_io_complete_context);

/* Extensions beyond c-pal's async_socket (see docs/api.md, "Lifetimes" and "Writing a server"). */

/* Closes the socket as async_socket_close does and releases the caller's handle, without waiting
 * for the socket's callbacks on other threads to return: on_destroy_complete is called, on a
 * worker and never inside this call, once no callback of the socket runs or will run again.
 * Callable from any thread and from inside any callback. Returns 0; or non-zero (the socket is
 * untouched and on_destroy_complete is never called) for a NULL argument or no memory. */
MOCKABLE_FUNCTION(, int, async_socket_destroy_async, ASYNC_SOCKET_HANDLE, async_socket, ON_ASYNC_SOCKET_DESTROY_COMPLETE, on_destroy_complete, void*, on_destroy_complete_context);
/* Bytes accepted by async_socket_send_async that the kernel has not taken yet (0 for NULL). */
MOCKABLE_FUNCTION(, uint64_t, async_socket_get_queued_send_bytes, ASYNC_SOCKET_HANDLE, async_socket);
/* The connected peer as text, "127.0.0.1:5000" or "[::1]:5000". Returns 0, or non-zero (logged)
 * when the socket is not open or the buffer is too small (ASYNC_SOCKET_ADDRESS_TEXT_SIZE fits). */
MOCKABLE_FUNCTION(, int, async_socket_get_peer_address, ASYNC_SOCKET_HANDLE, async_socket, char*, buffer, size_t, buffer_size);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_ASYNC_SOCKET_H */
