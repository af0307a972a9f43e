/* Opening the tools' async sockets: the same steps in asock-echo (connections and the listener's
 * readiness socket) and asock-load. */
#ifndef TOOL_SOCKET_H
#define TOOL_SOCKET_H

#include "c_pal/async_socket.h"
#include "c_pal/socket_transport.h"
#include "tool_tls.h"

/* Wraps a connected fd in an opened async socket, over TLS when `context` is not NULL (then *tls
 * is its TLS handle, else NULL), which owns the fd from then on. NULL on failure, with the fd
 * closed. End it with tool_tls_socket_destroy(socket, *tls). */
ASYNC_SOCKET_HANDLE tool_connection_open(TOOL_TLS* context, SOCKET_HANDLE fd, ASYNC_SOCKET_TLS_HANDLE* tls);

/* Wraps fd in an opened async socket (default transport, the library's completion port), which
 * owns the fd from then on. NULL on failure, with the fd closed. */
ASYNC_SOCKET_HANDLE tool_socket_open(SOCKET_HANDLE fd);

#endif /* TOOL_SOCKET_H */
