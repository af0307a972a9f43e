/* The async socket of an fd, opened and ended the same way by asock-echo and asock-load. */
#ifndef TOOL_SOCKET_H
#define TOOL_SOCKET_H

#include "c_pal/async_socket.h"
#include "c_pal/socket_transport.h"

/* Wraps fd in an opened async socket (default transport, the library's completion port), which
 * owns the fd from then on. NULL on failure, with the fd closed. */
ASYNC_SOCKET_HANDLE tool_socket_open(SOCKET_HANDLE fd);

/* Closes (waiting for callbacks in progress, abandoning what is pending) and destroys it. */
void tool_socket_end(ASYNC_SOCKET_HANDLE socket);

#endif /* TOOL_SOCKET_H */
