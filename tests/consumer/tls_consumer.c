/* The TLS layer as a user of the installed package uses it: only the public headers and API. Over
 * a connected socket pair, a server (server.crt / server.key in the current directory, made by
 * run_consumer.sh with the openssl command) and a client that verifies it against the same
 * certificate and the name "localhost" exchange a known message, and the bytes are checked. Exit 0
 * only when the message arrived intact and everything was released; every wait is bounded. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/async_socket_tls.h"
#include "c_pal/platform.h"

static const char message[] = "sixteen bytes...and some more, through TLS";
static char received[sizeof(message)];
static uint32_t received_total;
static int receive_failed;
static sem_t done;

static void on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    (void)context;
    (void)result;
}

static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    (void)context;
    (void)result;
}

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    ASYNC_SOCKET_HANDLE socket = context;
    if (result != ASYNC_SOCKET_RECEIVE_OK)
    {
        receive_failed = 1;
        (void)sem_post(&done);
        return;
    }
    received_total += bytes;
    ASYNC_SOCKET_BUFFER rest = {received + received_total, (uint32_t)(sizeof(message) - received_total)};
    if (received_total == sizeof(message) || async_socket_receive_async(socket, &rest, 1, on_received, socket) != 0)
    {
        (void)sem_post(&done);
    }
}

static int wait_bounded(void)
{
    struct timespec deadline;
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    while (sem_timedwait(&done, &deadline) != 0)
    {
        if (errno != EINTR)
        {
            return -1;
        }
    }
    return 0;
}

static int exchange(ASYNC_SOCKET_TLS_CONTEXT_HANDLE server_context, ASYNC_SOCKET_TLS_CONTEXT_HANDLE client_context, int fds[2])
{
    ASYNC_SOCKET_TLS_HANDLE server = async_socket_tls_create(server_context, NULL, fds[0]);
    ASYNC_SOCKET_TLS_HANDLE client = async_socket_tls_create(client_context, NULL, fds[1]);
    if (server == NULL || client == NULL)
    {
        return -1;
    }
    ASYNC_SOCKET_HANDLE server_socket = async_socket_tls_get_async_socket(server);
    ASYNC_SOCKET_HANDLE client_socket = async_socket_tls_get_async_socket(client);
    ASYNC_SOCKET_BUFFER in = {received, sizeof(received)};
    ASYNC_SOCKET_BUFFER out = {(void*)message, sizeof(message)};
    int ok = async_socket_open_async(server_socket, on_open, NULL) == 0 &&
        async_socket_open_async(client_socket, on_open, NULL) == 0 &&
        async_socket_receive_async(server_socket, &in, 1, on_received, server_socket) == 0 &&
        async_socket_send_async(client_socket, &out, 1, on_sent, NULL) == ASYNC_SOCKET_SEND_SYNC_OK &&
        wait_bounded() == 0 && !receive_failed && memcmp(received, message, sizeof(message)) == 0;
    async_socket_tls_close(client);
    async_socket_tls_destroy(client);
    async_socket_tls_destroy(server);
    return ok ? 0 : -1;
}

int main(void)
{
    ASYNC_SOCKET_TLS_CONFIG server_config = {
        .role = ASYNC_SOCKET_TLS_ROLE_SERVER, .certificate_file = "server.crt", .private_key_file = "server.key"};
    ASYNC_SOCKET_TLS_CONFIG client_config = {
        .role = ASYNC_SOCKET_TLS_ROLE_CLIENT, .verify_peer = true, .ca_file = "server.crt", .server_name = "localhost"};
    int fds[2];
    if (platform_init() != 0 || sem_init(&done, 0, 0) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
    {
        return 1;
    }
    ASYNC_SOCKET_TLS_CONTEXT_HANDLE server_context = async_socket_tls_context_create(&server_config);
    ASYNC_SOCKET_TLS_CONTEXT_HANDLE client_context = async_socket_tls_context_create(&client_config);
    int result = (server_context != NULL && client_context != NULL) ? exchange(server_context, client_context, fds) : -1;
    async_socket_tls_context_destroy(server_context);
    async_socket_tls_context_destroy(client_context);
    platform_deinit();
    (void)sem_destroy(&done);
    (void)printf("consumer: %s\n", result == 0 ? "sent and verified" : "wrong results");
    return result == 0 ? 0 : 1;
}
