/* async_socket_tls: an async socket whose bytes travel over TLS (OpenSSL), built on the public
 * async_socket_create_with_transport.
 *
 * A context holds what every connection of one kind shares: the role, the certificate and key of
 * a server, or the verification settings of a client. A TLS socket wraps one connected fd; its
 * async socket (async_socket_tls_get_async_socket) is opened, used and closed with the ordinary
 * async_socket_* calls, and the bytes given to send and received carry the plaintext. The
 * handshake runs inside the first sends and receives. See docs/tls.md for the error mapping, the
 * threading and the ownership rules. */
#ifndef C_PAL_ASYNC_SOCKET_TLS_H
#define C_PAL_ASYNC_SOCKET_TLS_H

#include <stdbool.h>

#include "c_pal/macro_compat.h"
#include "c_pal/async_socket.h"
#include "c_pal/execution_engine.h"
#include "c_pal/socket_handle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ASYNC_SOCKET_TLS_CONTEXT_TAG* ASYNC_SOCKET_TLS_CONTEXT_HANDLE;
typedef struct ASYNC_SOCKET_TLS_TAG* ASYNC_SOCKET_TLS_HANDLE;

#define ASYNC_SOCKET_TLS_ROLE_VALUES \
    ASYNC_SOCKET_TLS_ROLE_CLIENT, \
    ASYNC_SOCKET_TLS_ROLE_SERVER

MU_DEFINE_ENUM(ASYNC_SOCKET_TLS_ROLE, ASYNC_SOCKET_TLS_ROLE_VALUES);

typedef struct ASYNC_SOCKET_TLS_CONFIG_TAG
{
    ASYNC_SOCKET_TLS_ROLE role;
    /* Server (both required): PEM files with the certificate chain (leaf first) and its key. */
    const char* certificate_file;
    const char* private_key_file;
    /* Client: whether the server's certificate chain and name are checked. */
    bool verify_peer;
    /* Client: PEM file of trusted certificates; NULL uses the system's default store. */
    const char* ca_file;
    /* Client: the name sent as SNI (a host name only) and, with verify_peer, the host name or IP
     * address the certificate must carry. Required when verify_peer is set. */
    const char* server_name;
    /* Both roles: the TLS 1.3 cipher suites to offer (client) or accept (server), in OpenSSL's
     * SSL_CTX_set_ciphersuites syntax, e.g. "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
     * NULL keeps OpenSSL's defaults. A list OpenSSL does not accept fails the context's creation.
     * (Last in the struct, so a zero-initialised config keeps the defaults.) */
    const char* cipher_suites;
} ASYNC_SOCKET_TLS_CONFIG;

/* Loads the files and settings of `config` (which is not kept). NULL on bad arguments or when a
 * file cannot be used; one ERROR line names what was wrong. */
MOCKABLE_FUNCTION(, ASYNC_SOCKET_TLS_CONTEXT_HANDLE, async_socket_tls_context_create, const ASYNC_SOCKET_TLS_CONFIG*, config);
/* Sockets made from the context keep what they need: it may be destroyed while they live. */
MOCKABLE_FUNCTION(, void, async_socket_tls_context_destroy, ASYNC_SOCKET_TLS_CONTEXT_HANDLE, context);

/* A TLS socket over the connected fd `socket_handle` (from accept() or connect()), in the
 * context's role. On success it owns the fd; on failure (NULL, one ERROR line) the fd stays the
 * caller's. */
MOCKABLE_FUNCTION(, ASYNC_SOCKET_TLS_HANDLE, async_socket_tls_create, ASYNC_SOCKET_TLS_CONTEXT_HANDLE, context, EXECUTION_ENGINE_HANDLE, execution_engine, SOCKET_HANDLE, socket_handle);
/* The async socket to open, send, receive, notify and close with; it lives as long as the TLS
 * socket. Never pass it to async_socket_destroy. */
MOCKABLE_FUNCTION(, ASYNC_SOCKET_HANDLE, async_socket_tls_get_async_socket, ASYNC_SOCKET_TLS_HANDLE, tls);
/* Sends a TLS close_notify when the handshake has completed (best effort: it is dropped when the
 * kernel has no room for it), then closes the async socket like async_socket_close. Closing the
 * async socket directly skips the close_notify; after that, do not call this function. */
MOCKABLE_FUNCTION(, void, async_socket_tls_close, ASYNC_SOCKET_TLS_HANDLE, tls);
/* Destroys the async socket (closing it, without a close_notify, if it is open) and frees the
 * TLS state. May be called from a callback of the socket, like async_socket_destroy. */
MOCKABLE_FUNCTION(, void, async_socket_tls_destroy, ASYNC_SOCKET_TLS_HANDLE, tls);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_ASYNC_SOCKET_TLS_H */
