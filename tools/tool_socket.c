/* Opening the tools' async sockets: plain or TLS connections, and asock-echo's readiness socket. */
#include "tool_socket.h"

#include <stdbool.h>

#include <unistd.h>

/* The open of an fd socket completes before async_socket_open_async returns (docs/api.md), so a
 * result on the caller's stack is safe. */
static void on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    *(ASYNC_SOCKET_OPEN_RESULT*)context = result;
}

/* Opens a created async socket on its fd (any transport); on false it is still the caller's. */
static bool socket_opened(ASYNC_SOCKET_HANDLE socket)
{
    ASYNC_SOCKET_OPEN_RESULT opened = ASYNC_SOCKET_OPEN_ERROR;
    return async_socket_open_async(socket, on_open, &opened) == 0 && opened == ASYNC_SOCKET_OPEN_OK;
}

ASYNC_SOCKET_HANDLE tool_connection_open(TOOL_TLS* context, SOCKET_HANDLE fd, ASYNC_SOCKET_TLS_HANDLE* tls)
{
    ASYNC_SOCKET_HANDLE socket = tool_tls_socket_create(context, fd, tls);
    if (socket == NULL)
    {
        (void)close(fd);
        return NULL;
    }
    if (!socket_opened(socket))
    {
        tool_tls_socket_destroy(socket, *tls);
        return NULL;
    }
    return socket;
}

ASYNC_SOCKET_HANDLE tool_socket_open(SOCKET_HANDLE fd)
{
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fd);
    if (socket == NULL)
    {
        (void)close(fd);
        return NULL;
    }
    if (!socket_opened(socket))
    {
        async_socket_destroy(socket); /* the fd goes with it */
        return NULL;
    }
    return socket;
}
