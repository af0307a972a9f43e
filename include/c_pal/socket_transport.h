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
 * Names, signatures and enum values are those of c-pal's socket_transport.h; this library adds
 * socket_transport_listen_on, socket_transport_get_local_endpoint, socket_transport_release_socket,
 * socket_transport_set_nonblocking and SOCKET_SEND_WOULD_BLOCK (docs/socket_transport.md, "Coming
 * from c-pal").
 * The sockets these functions make are non-blocking, close-on-exec and (connected ones) TCP_NODELAY.
 * To give a transport's socket to async_socket_create, which takes ownership of the fd, hand it over
 * with socket_transport_release_socket. docs/socket_transport.md describes every function.
 * Every function that fails logs exactly one ERROR line, except an accept that times out and the
 * WOULD_BLOCK and SHUTDOWN results of send and receive (no line). */
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

/* c-pal's sizes: the hostname buffer of socket_transport_get_local_address, and one address in
 * its list (a dotted IPv4 address and its terminator fit). */
#define MAX_GET_HOST_NAME_LEN       256
#define MAX_LOCAL_ADDRESS_LEN       22

typedef struct SOCKET_TRANSPORT_TAG* SOCKET_TRANSPORT_HANDLE;

/* The result lists and their order are c-pal's, so every constant has c-pal's value
 * (SOCKET_SEND_INVALID_ARG is 1, SOCKET_SEND_OK 2, ...); this library's addition comes last.
 *     SOCKET_SEND_INVALID_ARG   bad arguments (one ERROR line)
 *     SOCKET_SEND_OK            *bytes_sent bytes were sent (maybe fewer than offered)
 *     SOCKET_SEND_ERROR         the transport holds no socket: never connected, or disconnected
 *                               (one ERROR line)
 *     SOCKET_SEND_FAILED        sendmsg failed (errno kept; one ERROR line)
 *     SOCKET_SEND_SHUTDOWN      the peer closed or reset the connection (ECONNRESET, EPIPE, ENOTCONN)
 *     SOCKET_SEND_WOULD_BLOCK   (addition) the socket buffer is full: nothing sent, try later */
#define SOCKET_SEND_RESULT_VALUES \
    SOCKET_SEND_INVALID_ARG, \
    SOCKET_SEND_OK, \
    SOCKET_SEND_ERROR, \
    SOCKET_SEND_FAILED, \
    SOCKET_SEND_SHUTDOWN, \
    SOCKET_SEND_WOULD_BLOCK

MU_DEFINE_ENUM(SOCKET_SEND_RESULT, SOCKET_SEND_RESULT_VALUES);

/*     SOCKET_RECEIVE_INVALID_ARG  bad arguments (one ERROR line)
 *     SOCKET_RECEIVE_OK           *bytes_recv (> 0) bytes were received
 *     SOCKET_RECEIVE_WOULD_BLOCK  no data yet
 *     SOCKET_RECEIVE_ERROR        no socket (never connected, or disconnected), or recvmsg failed
 *                                 (errno kept; one ERROR line)
 *     SOCKET_RECEIVE_SHUTDOWN     the peer closed (0 bytes) or reset the connection */
#define SOCKET_RECEIVE_RESULT_VALUES \
    SOCKET_RECEIVE_INVALID_ARG, \
    SOCKET_RECEIVE_OK, \
    SOCKET_RECEIVE_WOULD_BLOCK, \
    SOCKET_RECEIVE_ERROR, \
    SOCKET_RECEIVE_SHUTDOWN

MU_DEFINE_ENUM(SOCKET_RECEIVE_RESULT, SOCKET_RECEIVE_RESULT_VALUES);

/*     SOCKET_ACCEPT_OK               *accepted_socket holds the new connection
 *     SOCKET_ACCEPT_ERROR            bad arguments, or accept / poll failed (one ERROR line)
 *     SOCKET_ACCEPT_PORT_EXHAUSTION  out of file descriptors or kernel memory (EMFILE, ENFILE,
 *                                    ENOBUFS, ENOMEM; one ERROR line): retry after closing some
 *     SOCKET_ACCEPT_INPROGRESS       c-pal's, for Windows; never returned on Linux
 *     SOCKET_ACCEPT_NO_CONNECTION    no connection came within the timeout (no log line) */
#define SOCKET_ACCEPT_RESULT_VALUES \
    SOCKET_ACCEPT_OK, \
    SOCKET_ACCEPT_ERROR, \
    SOCKET_ACCEPT_PORT_EXHAUSTION, \
    SOCKET_ACCEPT_INPROGRESS, \
    SOCKET_ACCEPT_NO_CONNECTION

MU_DEFINE_ENUM(SOCKET_ACCEPT_RESULT, SOCKET_ACCEPT_RESULT_VALUES);

/* c-pal's kinds of transport: a server (binds and listens) or a client. */
#define SOCKET_TYPE_VALUES \
    SOCKET_BINDING, \
    SOCKET_CLIENT

MU_DEFINE_ENUM(SOCKET_TYPE, SOCKET_TYPE_VALUES);

#define ADDRESS_TYPE_VALUES \
    ADDRESS_INET, \
    ADDRESS_INET_6, \
    ADDRESS_NETBIOS

MU_DEFINE_ENUM(ADDRESS_TYPE, ADDRESS_TYPE_VALUES);

typedef struct SOCKET_BUFFER_TAG
{
    uint32_t length;
    unsigned char* buffer;
} SOCKET_BUFFER;

/* One entry of socket_transport_get_local_address's list: a numeric address, NUL-terminated. */
typedef struct LOCAL_ADDRESS_TAG
{
    ADDRESS_TYPE address_type;
    char address[MAX_LOCAL_ADDRESS_LEN];
} LOCAL_ADDRESS;

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
 * socket_transport_get_local_endpoint) and listens. Use socket_transport_listen_on to choose the
 * address. Returns 0; non-zero for a NULL handle, a client transport, one already listening, or a
 * failed bind / listen (errno kept, EADDRINUSE when the port is taken). */
MOCKABLE_FUNCTION(, int, socket_transport_listen, SOCKET_TRANSPORT_HANDLE, socket_transport, uint16_t, port);
/* (addition) listen on a numeric IPv4 or IPv6 address (e.g. "127.0.0.1", "::1"); no name
 * resolution. Same results as socket_transport_listen; a NULL or non-numeric address is a bad
 * argument. */
MOCKABLE_FUNCTION(, int, socket_transport_listen_on, SOCKET_TRANSPORT_HANDLE, socket_transport, const char*, address, uint16_t, port);
/* Waits up to connection_timeout_ms for a connection on a listening transport and accepts it:
 * SOCKET_ACCEPT_OK with a new connected transport in *accepted_socket (destroy it when done).
 * Otherwise *accepted_socket is untouched: SOCKET_ACCEPT_ERROR for bad arguments (NULL handle or
 * accepted_socket, not listening) or a failed accept, SOCKET_ACCEPT_PORT_EXHAUSTION when out of
 * descriptors or memory (one ERROR line each), SOCKET_ACCEPT_NO_CONNECTION when the time ran out
 * (no log line; errno is ETIMEDOUT). */
MOCKABLE_FUNCTION(, SOCKET_ACCEPT_RESULT, socket_transport_accept, SOCKET_TRANSPORT_HANDLE, socket_transport, SOCKET_TRANSPORT_HANDLE*, accepted_socket, uint32_t, connection_timeout_ms);
/* c-pal's: the machine's host name (gethostname) in hostname, and, when local_address_list is not
 * NULL, the numeric IPv4 addresses of the interfaces that are up, running and not loopback in a
 * new array, *local_address_list, of *address_count entries (ADDRESS_INET each; release it with
 * free(), even when the count is 0). It describes the machine, not this socket: for the address
 * and port the socket is bound to, see socket_transport_get_local_endpoint. Returns 0; non-zero
 * (one ERROR line, nothing allocated) for a NULL handle or hostname, a list without
 * address_count, or a failed gethostname / getifaddrs / allocation. */
MOCKABLE_FUNCTION(, int, socket_transport_get_local_address, SOCKET_TRANSPORT_HANDLE, socket_transport, char, hostname[MAX_GET_HOST_NAME_LEN], LOCAL_ADDRESS**, local_address_list, uint32_t*, address_count);
/* (addition) The address the socket is bound to (getsockname): the numeric host, NUL-terminated,
 * in host (INET6_ADDRSTRLEN = 46 bytes is always enough) and the port in *port, e.g. the port the
 * kernel picked for socket_transport_listen(t, 0). Returns 0; non-zero for NULL arguments, a
 * transport without a socket, or a host buffer too small. */
MOCKABLE_FUNCTION(, int, socket_transport_get_local_endpoint, SOCKET_TRANSPORT_HANDLE, socket_transport, char*, host, size_t, host_size, uint16_t*, port);

/* Takes ownership of socket_handle (closed by disconnect or destroy). NULL for INVALID_SOCKET. */
MOCKABLE_FUNCTION(, SOCKET_TRANSPORT_HANDLE, socket_transport_create_from_socket, SOCKET_HANDLE, socket_handle);
/* Disconnects if still connected, then frees the handle. */
MOCKABLE_FUNCTION(, void, socket_transport_destroy, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* (addition) Hands the fd over to the caller and frees the handle without closing or shutting down
 * the fd: the way to give a connected (e.g. accepted) transport's socket to async_socket_create,
 * which takes ownership of it. Returns the fd, still non-blocking, close-on-exec and TCP_NODELAY,
 * or INVALID_SOCKET when the transport held none (the handle is freed all the same). NULL: logs
 * one ERROR line and returns INVALID_SOCKET. The handle must not be used afterwards. */
MOCKABLE_FUNCTION(, SOCKET_HANDLE, socket_transport_release_socket, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* Shuts the connection down and closes the fd; idempotent. */
MOCKABLE_FUNCTION(, void, socket_transport_disconnect, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* (addition) Makes the fd non-blocking and close-on-exec. Returns 0 on success. */
MOCKABLE_FUNCTION(, int, socket_transport_set_nonblocking, SOCKET_TRANSPORT_HANDLE, socket_transport);

/* Gathers up to buffer_count (1..64) buffers in one sendmsg (always with MSG_NOSIGNAL, EINTR
 * retried). On OK, *bytes_sent holds the count sent, which may be less than the total. errno is
 * kept for SHUTDOWN and FAILED. flags and data are not used (c-pal's callers pass MSG_NOSIGNAL or
 * 0, and NULL). */
MOCKABLE_FUNCTION(, SOCKET_SEND_RESULT, socket_transport_send, SOCKET_TRANSPORT_HANDLE, socket_transport, const SOCKET_BUFFER*, payload, uint32_t, buffer_count, uint32_t*, bytes_sent, uint32_t, flags, void*, data);
/* Scatters into up to buffer_count (1..64) buffers in one recvmsg (EINTR retried). SHUTDOWN means
 * the peer closed (0 bytes) or reset the connection. flags and data are not used. */
MOCKABLE_FUNCTION(, SOCKET_RECEIVE_RESULT, socket_transport_receive, SOCKET_TRANSPORT_HANDLE, socket_transport, SOCKET_BUFFER*, payload, uint32_t, buffer_count, uint32_t*, bytes_recv, uint32_t, flags, void*, data);

MOCKABLE_FUNCTION(, SOCKET_HANDLE, socket_transport_get_underlying_socket, SOCKET_TRANSPORT_HANDLE, socket_transport);
/* true while the transport holds an open fd. */
MOCKABLE_FUNCTION(, bool, socket_transport_is_valid_socket, SOCKET_TRANSPORT_HANDLE, socket_transport_handle);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_SOCKET_TRANSPORT_H */
