/* socket_transport: a connected (or listening) TCP socket behind a handle.
 *
 * async_socket wraps the fd it is given in a socket transport; the transport owns the fd from then
 * on. send and receive never block: they return SOCKET_SEND_WOULD_BLOCK / SOCKET_RECEIVE_WOULD_BLOCK
 * when the kernel has no room or no data.
 *
 * Getting a connected socket (the c-pal names):
 *     client: socket_transport_create_client, then socket_transport_connect;
 *     server: socket_transport_create_server, then socket_transport_listen (or _listen_on), then
 *             socket_transport_accept for each connection.
 * The sockets these functions make are non-blocking, close-on-exec and (connected ones) TCP_NODELAY.
 * To give a transport's socket to async_socket_create, which takes ownership of the fd, hand it over
 * with socket_transport_release_socket. docs/socket_transport.md describes every function.
 * Every function that fails logs exactly one ERROR line, except an accept that times out (no line). */
#ifndef C_PAL_SOCKET_TRANSPORT_H
#define C_PAL_SOCKET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
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

/* A client (server) transport without a socket yet: connect (listen) gives it one. NULL when the
 * allocation fails. */
MOCKABLE_FUNCTION(, SOCKET_TRANSPORT_HANDLE, socket_transport_create_client);
MOCKABLE_FUNCTION(, SOCKET_TRANSPORT_HANDLE, socket_transport_create_server);

/* Resolves hostname (a name or a numeric IPv4 / IPv6 address) with getaddrinfo and tries each
 * address in turn with a non-blocking connect, waiting at most connection_timeout_ms in all (0: only
 * a connection that completes at once). Returns 0 when connected; non-zero when the arguments are
 * bad (NULL handle or hostname, port 0, not a client transport, already connected), the name does
 * not resolve, or no address accepts in time; then errno is ETIMEDOUT on a timeout and the socket
 * error of the last attempt (e.g. ECONNREFUSED) otherwise, and the transport stays unconnected (a
 * later connect may be tried). */
MOCKABLE_FUNCTION(, int, socket_transport_connect, SOCKET_TRANSPORT_HANDLE, socket_transport, const char*, hostname, uint16_t, port, uint32_t, connection_timeout_ms);
/* Like c-pal: binds IPv4 INADDR_ANY (every interface!) on port (0: the kernel picks one, see
 * get_local_address) and listens. Use socket_transport_listen_on to choose the address. Returns 0;
 * non-zero for a NULL handle, a client transport, one already listening, or a failed bind / listen
 * (errno kept, EADDRINUSE when the port is taken). */
MOCKABLE_FUNCTION(, int, socket_transport_listen, SOCKET_TRANSPORT_HANDLE, socket_transport, uint16_t, port);
/* listen on a numeric IPv4 or IPv6 address (e.g. "127.0.0.1", "::1"); no name resolution. Same
 * results as socket_transport_listen; a NULL or non-numeric address is a bad argument. */
MOCKABLE_FUNCTION(, int, socket_transport_listen_on, SOCKET_TRANSPORT_HANDLE, socket_transport, const char*, address, uint16_t, port);
/* Waits up to timeout_ms for a connection on a listening transport and accepts it: 0 with a new
 * connected transport in *accepted (destroy it when done). Non-zero otherwise, *accepted untouched:
 * bad arguments (NULL handle or accepted, not listening) or a failed accept log one ERROR line; a
 * timeout logs nothing and sets errno to ETIMEDOUT. */
MOCKABLE_FUNCTION(, int, socket_transport_accept, SOCKET_TRANSPORT_HANDLE, socket_transport, SOCKET_TRANSPORT_HANDLE*, accepted, uint32_t, timeout_ms);
/* The local address of the socket (getsockname): the numeric host, NUL-terminated, in host (at
 * least INET6_ADDRSTRLEN = 46 bytes is always enough) and the port in *port. Returns 0; non-zero
 * for NULL arguments, a transport without a socket, or a host buffer too small. */
MOCKABLE_FUNCTION(, int, socket_transport_get_local_address, SOCKET_TRANSPORT_HANDLE, socket_transport, char*, host, size_t, host_size, uint16_t*, port);

/* Takes ownership of socket_handle (closed by disconnect or destroy). NULL for INVALID_SOCKET. */
MOCKABLE_FUNCTION(, SOCKET_TRANSPORT_HANDLE, socket_transport_create_from_socket, SOCKET_HANDLE, socket_handle);
/* Disconnects if still connected, then frees the handle. */
MOCKABLE_FUNCTION(, void, socket_transport_destroy, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* Hands the fd over to the caller and frees the handle without closing or shutting down the fd:
 * the way to give a connected (e.g. accepted) transport's socket to async_socket_create, which
 * takes ownership of it. Returns the fd, still non-blocking, close-on-exec and TCP_NODELAY, or
 * INVALID_SOCKET when the transport held none (the handle is freed all the same). NULL: logs one
 * ERROR line and returns INVALID_SOCKET. The handle must not be used afterwards. */
MOCKABLE_FUNCTION(, SOCKET_HANDLE, socket_transport_release_socket, SOCKET_TRANSPORT_HANDLE, socket_transport);
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
