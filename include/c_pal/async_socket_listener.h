/* async_socket_listener: a listening TCP socket that accepts connections on the completion port's
 * workers and hands each one to a callback.
 *
 * Each accepted fd is non-blocking, close-on-exec and has TCP_NODELAY set; the callback owns it
 * (typically: async_socket_create + async_socket_open_async). A wake-up accepts at most
 * ASYNC_SOCKET_LISTENER_ACCEPT_BUDGET connections before letting the worker serve other sockets.
 * Out of file descriptors (EMFILE, ENFILE) or memory, it pauses accepting for
 * ASYNC_SOCKET_LISTENER_BACKOFF_MS on a timer (no worker sleeps) and logs one line per pause.
 * See docs/api.md ("Writing a server"). Not part of c-pal. */
#ifndef C_PAL_ASYNC_SOCKET_LISTENER_H
#define C_PAL_ASYNC_SOCKET_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include "c_pal/macro_compat.h"
#include "c_pal/socket_handle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ASYNC_SOCKET_LISTENER_TAG* ASYNC_SOCKET_LISTENER_HANDLE;

#define ASYNC_SOCKET_LISTENER_ACCEPT_BUDGET 16
#define ASYNC_SOCKET_LISTENER_BACKOFF_MS 100

/* Called on a worker with each accepted connection. peer_address is "ADDR:PORT" ("[ADDR]:PORT"
 * for IPv6), valid during the call. The callback may call any function of the library, stop and
 * destroy of this listener included. */
typedef void (*ON_ASYNC_SOCKET_LISTENER_ACCEPT)(void* context, SOCKET_HANDLE accepted_socket, const char* peer_address);

/* Binds to address (numeric, or a name that resolves; NULL means 127.0.0.1) and port (0: the
 * kernel picks) and listens; nothing is accepted until start. Needs platform_init(). Returns NULL
 * with one log line naming the cause (bad address, port in use, ...). */
MOCKABLE_FUNCTION(, ASYNC_SOCKET_LISTENER_HANDLE, async_socket_listener_create, const char*, address, uint16_t, port, ON_ASYNC_SOCKET_LISTENER_ACCEPT, on_accept, void*, on_accept_context);
/* The bound address as "ADDR:PORT" (see async_socket_get_peer_address for the buffer size). */
MOCKABLE_FUNCTION(, int, async_socket_listener_get_address, ASYNC_SOCKET_LISTENER_HANDLE, listener, char*, buffer, size_t, buffer_size);
/* The bound port (the kernel's pick for port 0); 0 for NULL. */
MOCKABLE_FUNCTION(, uint16_t, async_socket_listener_get_port, ASYNC_SOCKET_LISTENER_HANDLE, listener);
/* Starts accepting. Returns 0; non-zero when already started or stopped. */
MOCKABLE_FUNCTION(, int, async_socket_listener_start, ASYNC_SOCKET_LISTENER_HANDLE, listener);
/* Stops accepting. When it returns no accept callback is running (except the caller's own, when
 * called from one) and none will start. A stopped listener cannot be started again. */
MOCKABLE_FUNCTION(, void, async_socket_listener_stop, ASYNC_SOCKET_LISTENER_HANDLE, listener);
/* Stops (as above) and frees the listener and its listening socket. */
MOCKABLE_FUNCTION(, void, async_socket_listener_destroy, ASYNC_SOCKET_LISTENER_HANDLE, listener);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_ASYNC_SOCKET_LISTENER_H */
