/* TLS for the tools' connections: asock-echo --tls-cert/--tls-key, asock-load --tls. A context
 * holds the settings; a NULL context means plain TCP. Built on async_socket_tls when OpenSSL is
 * present (tool_tls.c); otherwise tool_tls_none.c refuses to make a context. */
#ifndef TOOL_TLS_H
#define TOOL_TLS_H

#include <stdbool.h>

#include "c_pal/async_socket.h"
#include "c_pal/async_socket_tls.h"
#include "c_pal/socket_handle.h"

typedef struct TOOL_TLS_TAG TOOL_TLS;

/* A server context with the PEM certificate chain and key; NULL after one line on stderr
 * ("<tool>: ...") when they cannot be used or TLS is not built in. */
TOOL_TLS* tool_tls_server(const char* tool, const char* certificate_file, const char* key_file);

/* A client context for connections to `server_name`. With `verify`, the server's certificate
 * must chain to `ca_file` (NULL: the system store) and carry that name or address. NULL after
 * one line on stderr. */
TOOL_TLS* tool_tls_client(const char* tool, const char* server_name, const char* ca_file, bool verify);

void tool_tls_destroy(TOOL_TLS* context);

/* The async socket of one connection over fd (not opened yet): plain when `context` is NULL, over
 * TLS otherwise, with *tls set to the TLS socket (NULL for plain). NULL on failure, and the fd is
 * then still the caller's. */
ASYNC_SOCKET_HANDLE tool_tls_socket_create(TOOL_TLS* context, SOCKET_HANDLE fd, ASYNC_SOCKET_TLS_HANDLE* tls);

/* Closes (with a TLS close_notify when there is TLS) and destroys what tool_tls_socket_create
 * made. May be called from the socket's own callbacks. */
void tool_tls_socket_destroy(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_TLS_HANDLE tls);

#endif /* TOOL_TLS_H */
