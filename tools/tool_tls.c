/* See tool_tls.h: the tools' TLS on async_socket_tls. */
#include "tool_tls.h"

#include <stdio.h>
#include <stdlib.h>

#include "c_pal/async_socket_tls.h"

struct TOOL_TLS_TAG
{
    ASYNC_SOCKET_TLS_CONTEXT_HANDLE context;
};

static TOOL_TLS* make(const char* tool, const ASYNC_SOCKET_TLS_CONFIG* config)
{
    TOOL_TLS* tls = malloc(sizeof(TOOL_TLS));
    if (tls == NULL)
    {
        (void)fprintf(stderr, "%s: out of memory for the TLS settings\n", tool);
        return NULL;
    }
    tls->context = async_socket_tls_context_create(config);
    if (tls->context == NULL)
    {
        /* the library's error line, on stderr just before, names the file or the reason */
        (void)fprintf(stderr, "%s: cannot set up TLS\n", tool);
        free(tls);
        return NULL;
    }
    return tls;
}

TOOL_TLS* tool_tls_server(const char* tool, const char* certificate_file, const char* key_file)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_018 */
    ASYNC_SOCKET_TLS_CONFIG config = {
        .role = ASYNC_SOCKET_TLS_ROLE_SERVER,
        .certificate_file = certificate_file,
        .private_key_file = key_file,
    };
    return make(tool, &config);
}

TOOL_TLS* tool_tls_client(const char* tool, const char* server_name, const char* ca_file, bool verify)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_019 */
    ASYNC_SOCKET_TLS_CONFIG config = {
        .role = ASYNC_SOCKET_TLS_ROLE_CLIENT,
        .verify_peer = verify,
        .ca_file = ca_file,
        .server_name = server_name,
    };
    return make(tool, &config);
}

void tool_tls_destroy(TOOL_TLS* tls)
{
    if (tls != NULL)
    {
        async_socket_tls_context_destroy(tls->context);
        free(tls);
    }
}

ASYNC_SOCKET_HANDLE tool_tls_socket_create(TOOL_TLS* context, SOCKET_HANDLE fd, ASYNC_SOCKET_TLS_HANDLE* tls)
{
    *tls = NULL;
    if (context == NULL)
    {
        return async_socket_create(NULL, fd);
    }
    *tls = async_socket_tls_create(context->context, NULL, fd);
    return (*tls == NULL) ? NULL : async_socket_tls_get_async_socket(*tls);
}

void tool_tls_socket_destroy(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_TLS_HANDLE tls)
{
    if (tls == NULL)
    {
        async_socket_close(socket);
        async_socket_destroy(socket);
        return;
    }
    async_socket_tls_close(tls);
    async_socket_tls_destroy(tls);
}
