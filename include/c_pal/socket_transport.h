/* socket_transport: a connected (or listening) TCP socket behind a handle.
 *
 * async_socket wraps the fd it is given in a socket transport; the transport owns the fd from then
 * on. send and receive never block: they return SOCKET_SEND_WOULD_BLOCK / SOCKET_RECEIVE_WOULD_BLOCK
 * when the kernel has no room or no data. */
#ifndef C_PAL_SOCKET_TRANSPORT_H
#define C_PAL_SOCKET_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "c_pal/macro_compat.h"
#include "c_pal/socket_handle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SOCKET_TRANSPORT_TAG* SOCKET_TRANSPORT_HANDLE;

typedef struct SOCKET_BUFFER_TAG
{
    uint32_t length;
    void* buffer;
} SOCKET_BUFFER;

#define SOCKET_SEND_RESULT_VALUES \
    SOCKET_SEND_OK, \
    SOCKET_SEND_WOULD_BLOCK, \
    SOCKET_SEND_SHUTDOWN, \
    SOCKET_SEND_ERROR, \
    SOCKET_SEND_INVALID_ARG

MU_DEFINE_ENUM(SOCKET_SEND_RESULT, SOCKET_SEND_RESULT_VALUES);

#define SOCKET_RECEIVE_RESULT_VALUES \
    SOCKET_RECEIVE_OK, \
    SOCKET_RECEIVE_WOULD_BLOCK, \
    SOCKET_RECEIVE_SHUTDOWN, \
    SOCKET_RECEIVE_ERROR, \
    SOCKET_RECEIVE_INVALID_ARG

MU_DEFINE_ENUM(SOCKET_RECEIVE_RESULT, SOCKET_RECEIVE_RESULT_VALUES);

/* Takes ownership of socket_handle (closed by disconnect or destroy). NULL for INVALID_SOCKET. */
MOCKABLE_FUNCTION(, SOCKET_TRANSPORT_HANDLE, socket_transport_create_from_socket, SOCKET_HANDLE, socket_handle);
/* Disconnects if still connected, then frees the handle. */
MOCKABLE_FUNCTION(, void, socket_transport_destroy, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* Shuts the connection down and closes the fd; idempotent. */
MOCKABLE_FUNCTION(, void, socket_transport_disconnect, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* Makes the fd non-blocking and close-on-exec. Returns 0 on success. */
MOCKABLE_FUNCTION(, int, socket_transport_set_nonblocking, SOCKET_TRANSPORT_HANDLE, socket_transport);

/* Gathers up to buffer_count buffers in one sendmsg (MSG_NOSIGNAL, EINTR retried). On OK,
 * *bytes_written holds the count sent, which may be less than the total. errno is kept for
 * SHUTDOWN and ERROR. flags are extra MSG_* flags; data is reserved and must be NULL. */
MOCKABLE_FUNCTION(, SOCKET_SEND_RESULT, socket_transport_send, SOCKET_TRANSPORT_HANDLE, socket_transport, const SOCKET_BUFFER*, payload, uint32_t, buffer_count, uint32_t*, bytes_written, uint32_t, flags, void*, data);
/* Scatters into up to buffer_count buffers in one recvmsg (EINTR retried). SHUTDOWN means the
 * peer closed (0 bytes) or reset the connection. */
MOCKABLE_FUNCTION(, SOCKET_RECEIVE_RESULT, socket_transport_receive, SOCKET_TRANSPORT_HANDLE, socket_transport, SOCKET_BUFFER*, payload, uint32_t, buffer_count, uint32_t*, bytes_recv, uint32_t, flags, void*, data);

MOCKABLE_FUNCTION(, SOCKET_HANDLE, socket_transport_get_underlying_socket, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* true while the transport holds an open fd. */
MOCKABLE_FUNCTION(, bool, socket_transport_is_valid_socket, SOCKET_TRANSPORT_HANDLE, socket_transport);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_SOCKET_TRANSPORT_H */
