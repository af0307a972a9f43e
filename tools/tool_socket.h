/* Opening the tools' async sockets: the same steps in asock-echo (connections and the listener's
 * readiness socket) and asock-load. */
#ifndef TOOL_SOCKET_H
#define TOOL_SOCKET_H

#include <stdbool.h>

#include "c_pal/async_socket.h"
#include "c_pal/socket_transport.h"

/* Opens a created async socket on its fd (any transport). Returns true when it is open; on false
 * the socket is still the caller's to destroy. */
bool tool_socket_opened(ASYNC_SOCKET_HANDLE socket);

/* Wraps fd in an opened async socket (default transport, the library's completion port), which
 * owns the fd from then on. NULL on failure, with the fd closed. */
ASYNC_SOCKET_HANDLE tool_socket_open(SOCKET_HANDLE fd);

#endif /* TOOL_SOCKET_H */
