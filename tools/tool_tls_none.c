/* See tool_tls.h: the build without OpenSSL, where async_socket_tls does not exist. The flags are
 * still parsed, and asking for TLS fails with one line. */
#include "tool_tls.h"

#include <stdio.h>

struct TOOL_TLS_TAG
{
    int unused;
};

static TOOL_TLS* unavailable(const char* tool)
{
    (void)fprintf(stderr, "%s: TLS is not available: this build has no async_socket_tls (OpenSSL was not found)\n", tool);
    return NULL;
}

TOOL_TLS* tool_tls_server(const char* tool, const char* certificate_file, const char* key_file)
{
    (void)certificate_file;
    (void)key_file;
    return unavailable(tool);
}

TOOL_TLS* tool_tls_client(const char* tool, const char* server_name, const char* ca_file, bool verify)
{
    (void)server_name;
    (void)ca_file;
    (void)verify;
    return unavailable(tool);
}

void tool_tls_destroy(TOOL_TLS* context)
{
    (void)context;
}

ASYNC_SOCKET_HANDLE tool_tls_socket_create(TOOL_TLS* context, SOCKET_HANDLE fd, ASYNC_SOCKET_TLS_HANDLE* tls)
{
    (void)context; /* always NULL: no context can be made */
    *tls = NULL;
    return async_socket_create(NULL, fd);
}

void tool_tls_socket_destroy(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_TLS_HANDLE tls)
{
    (void)tls;
    async_socket_close(socket);
    async_socket_destroy(socket);
}
