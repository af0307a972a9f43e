/* asock-echo: a TCP echo server built on async_socket.
 *
 * The library's listener accepts on the completion port's workers and backs off on a timer when
 * the process is out of fds. Each
 * connection receives into its buffer and sends back what came, one receive or one send at a
 * time. SIGINT / SIGTERM stop it: the listener is closed, then every connection, and one summary
 * line is printed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/async_socket_listener.h"
#include "c_pal/platform.h"
#include "c_pal/socket_transport.h"
#include "tool_common.h"
#include "tool_socket.h"
#include "tool_tls.h"

#define TOOL "asock-echo"
#define ECHO_BUFFER_SIZE (64 * 1024)

typedef struct ECHO_OPTIONS_TAG
{
    const char* bind;
    uint16_t port;
    uint32_t workers; /* 0: the library's default */
    const char* tls_cert; /* with tls_key: serve TLS */
    const char* tls_key;
    TOOL_TLS* tls;        /* made from tls_cert / tls_key before the listener starts; NULL: plain */
} ECHO_OPTIONS;

typedef struct CONNECTION_TAG CONNECTION;

/* The server: the listener and the list of live connections. */
typedef struct ECHO_SERVER_TAG
{
    const ECHO_OPTIONS* options;
    ASYNC_SOCKET_LISTENER_HANDLE listener;
    pthread_mutex_t lock;        /* guards connections and live */
    pthread_cond_t all_gone;     /* signalled when live drops to 0 */
    CONNECTION* connections;     /* live connections still owned by their callbacks */
    uint64_t live;               /* connections not yet freed */
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t bytes;  /* bytes received and echoed back */
    atomic_uint_fast64_t accept_errors;
} ECHO_SERVER;

struct CONNECTION_TAG
{
    ECHO_SERVER* server;
    ASYNC_SOCKET_HANDLE socket;
    ASYNC_SOCKET_TLS_HANDLE tls; /* NULL for plain TCP */
    CONNECTION* previous;
    CONNECTION* next;
    bool in_list;                /* false once main or a callback has taken it to end it */
    uint32_t length;             /* bytes of data waiting to be echoed */
    uint8_t data[ECHO_BUFFER_SIZE];
};

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);

static int usage(FILE* out)
{
    (void)fprintf(out,
        "usage: " TOOL " --port P [--bind ADDR] [--tls-cert FILE --tls-key FILE] [--workers N]\n"
        "\n"
        "An echo server on the async_socket library: every byte a client sends comes back.\n"
        "\n"
        "  --port P      TCP port to listen on, 0..65535 (0: the kernel picks a free one)\n"
        "  --bind ADDR   numeric IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
        "  --tls-cert FILE  serve TLS with this PEM certificate chain (needs --tls-key)\n"
        "  --tls-key FILE   the certificate's PEM private key (needs --tls-cert)\n"
        "  --workers N   completion port worker threads, 1..64 (default: the library's)\n"
        "  --help        this text\n"
        "\n"
        "Prints \"" TOOL ": listening on ADDR:PORT\" once listening (the real port), and on SIGINT or\n"
        "SIGTERM stops and prints \"" TOOL ": stopped: N connections, B bytes echoed\".\n"
        "\n"
        "exit codes: 0 stopped cleanly; 1 cannot listen or start (also: TLS files unusable); 2 bad flags\n");
    return out == stdout ? TOOL_EXIT_OK : TOOL_EXIT_USAGE;
}

/* 0 when parsed; TOOL_EXIT_OK for --help (after printing it), TOOL_EXIT_USAGE for a bad flag. */
static int parse_options(int argc, char** argv, ECHO_OPTIONS* options, bool* run)
{
    /* Codes_SRS_ASOCK_TOOLS_01_021 */
    bool have_port = false;
    *run = false;
    options->bind = "127.0.0.1";
    options->workers = 0;
    for (int i = 1; i < argc; i++)
    {
        const char* flag = argv[i];
        const char* value = NULL;
        uint64_t number = 0;
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0)
        {
            /* Codes_SRS_ASOCK_TOOLS_01_020 */
            return usage(stdout);
        }
        if (strcmp(flag, "--port") != 0 && strcmp(flag, "--bind") != 0 && strcmp(flag, "--workers") != 0 &&
            strcmp(flag, "--tls-cert") != 0 && strcmp(flag, "--tls-key") != 0)
        {
            return tool_unknown_flag(TOOL, flag);
        }
        if ((value = tool_flag_value(TOOL, argc, argv, &i)) == NULL)
        {
            return TOOL_EXIT_USAGE;
        }
        if (strcmp(flag, "--bind") == 0)
        {
            options->bind = value;
        }
        else if (strcmp(flag, "--tls-cert") == 0)
        {
            options->tls_cert = value;
        }
        else if (strcmp(flag, "--tls-key") == 0)
        {
            options->tls_key = value;
        }
        else if (strcmp(flag, "--port") == 0)
        {
            /* Codes_SRS_ASOCK_TOOLS_01_005 */
            if (!tool_parse_uint(TOOL, flag, value, 0, 65535, &number))
            {
                return TOOL_EXIT_USAGE;
            }
            options->port = (uint16_t)number;
            have_port = true;
        }
        else
        {
            if (!tool_parse_uint(TOOL, flag, value, 1, 64, &number))
            {
                return TOOL_EXIT_USAGE;
            }
            options->workers = (uint32_t)number;
        }
    }
    if (!have_port)
    {
        (void)fprintf(stderr, TOOL ": --port is required (see --help)\n");
        return TOOL_EXIT_USAGE;
    }
    if ((options->tls_cert == NULL) != (options->tls_key == NULL))
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_018 */
        (void)fprintf(stderr, TOOL ": --tls-cert and --tls-key go together (see --help)\n");
        return TOOL_EXIT_USAGE;
    }
    *run = true;
    return TOOL_EXIT_OK;
}

/* ---- one connection's async socket: the only place that creates and destroys it ---- */

/* Wraps an accepted fd in an opened async socket, over TLS when the options ask for it, which
 * owns the fd from then on. NULL on failure (the fd is closed). */
static ASYNC_SOCKET_HANDLE connection_socket_create(const ECHO_OPTIONS* options, SOCKET_HANDLE fd, ASYNC_SOCKET_TLS_HANDLE* tls)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_018 */
    return tool_connection_open(options->tls, fd, tls);
}

static void connection_socket_destroy(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_TLS_HANDLE tls)
{
    tool_tls_socket_destroy(socket, tls);
}

/* ---- connections ---- */

static void connection_free(CONNECTION* connection)
{
    ECHO_SERVER* server = connection->server;
    connection_socket_destroy(connection->socket, connection->tls);
    free(connection);
    (void)pthread_mutex_lock(&server->lock);
    if (--server->live == 0)
    {
        (void)pthread_cond_broadcast(&server->all_gone);
    }
    (void)pthread_mutex_unlock(&server->lock);
}

/* Called by a connection's callback when the connection is over (peer closed, error, or the close
 * at shutdown). Whoever takes the connection out of the list ends it: the callback here, or main
 * at shutdown, in which case this does nothing. */
static void connection_end(CONNECTION* connection)
{
    ECHO_SERVER* server = connection->server;
    (void)pthread_mutex_lock(&server->lock);
    bool mine = connection->in_list;
    if (mine)
    {
        connection->in_list = false;
        if (connection->previous != NULL)
        {
            connection->previous->next = connection->next;
        }
        else
        {
            server->connections = connection->next;
        }
        if (connection->next != NULL)
        {
            connection->next->previous = connection->previous;
        }
    }
    (void)pthread_mutex_unlock(&server->lock);
    if (mine)
    {
        connection_free(connection);
    }
}

static void receive_next(CONNECTION* connection)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = connection->data, .length = sizeof(connection->data)};
    if (async_socket_receive_async(connection->socket, &buffer, 1, on_received, connection) != 0)
    {
        connection_end(connection);
    }
}

static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    CONNECTION* connection = context;
    if (result != ASYNC_SOCKET_SEND_OK)
    {
        connection_end(connection);
        return;
    }
    (void)atomic_fetch_add_explicit(&connection->server->bytes, connection->length, memory_order_relaxed);
    receive_next(connection);
}

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    CONNECTION* connection = context;
    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes == 0)
    {
        connection_end(connection); /* end of stream, reset, or the close at shutdown */
        return;
    }
    /* Codes_SRS_ASOCK_TOOLS_01_002 */
    connection->length = bytes;
    ASYNC_SOCKET_BUFFER buffer = {.buffer = connection->data, .length = bytes};
    if (async_socket_send_async(connection->socket, &buffer, 1, on_sent, connection) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        connection_end(connection);
    }
}

/* Starts serving an accepted connection. */
static void connection_start(ECHO_SERVER* server, SOCKET_HANDLE fd)
{
    CONNECTION* connection = malloc(sizeof(CONNECTION));
    if (connection == NULL)
    {
        (void)close(fd);
        (void)atomic_fetch_add(&server->accept_errors, 1);
        return;
    }
    connection->server = server;
    connection->socket = connection_socket_create(server->options, fd, &connection->tls);
    if (connection->socket == NULL)
    {
        free(connection);
        (void)atomic_fetch_add(&server->accept_errors, 1);
        return;
    }
    (void)atomic_fetch_add(&server->accepted, 1);
    (void)pthread_mutex_lock(&server->lock);
    server->live++;
    connection->previous = NULL;
    connection->next = server->connections;
    if (server->connections != NULL)
    {
        server->connections->previous = connection;
    }
    server->connections = connection;
    connection->in_list = true;
    (void)pthread_mutex_unlock(&server->lock);
    receive_next(connection);
}

/* ---- the listener ---- */

/* Codes_SRS_ASOCK_TOOLS_01_001: the library's listener accepts on a worker, a bounded number per
 * wake-up.
 * Codes_SRS_ASOCK_TOOLS_01_007
 * Codes_SRS_ASOCK_TOOLS_01_008: out of fds it pauses on a timer (and logs one line per pause);
 * no worker sleeps, so the established connections are served meanwhile. */
static void on_accept(void* context, SOCKET_HANDLE fd, const char* peer_address)
{
    (void)peer_address;
    connection_start(context, fd);
}

static bool listener_start(ECHO_SERVER* server, const ECHO_OPTIONS* options)
{
    server->options = options;
    server->listener = async_socket_listener_create(options->bind, options->port, on_accept, server);
    char address[ASYNC_SOCKET_ADDRESS_TEXT_SIZE];
    if (server->listener == NULL || async_socket_listener_get_address(server->listener, address, sizeof(address)) != 0 ||
        async_socket_listener_start(server->listener) != 0)
    {
        /* Codes_SRS_ASOCK_TOOLS_01_006: the library's line above says why */
        (void)fprintf(stderr, TOOL ": cannot listen on %s port %u\n", options->bind, (unsigned)options->port);
        return false;
    }
    /* Codes_SRS_ASOCK_TOOLS_01_003 */
    (void)printf(TOOL ": listening on %s\n", address);
    (void)fflush(stdout);
    return true;
}

/* Stops accepting, ends every connection and waits until all are freed. */
static void server_stop(ECHO_SERVER* server)
{
    /* no accept callback runs once this returns, so no connection starts after it */
    async_socket_listener_destroy(server->listener);
    server->listener = NULL;
    (void)pthread_mutex_lock(&server->lock);
    CONNECTION* taken = server->connections;
    server->connections = NULL;
    for (CONNECTION* c = taken; c != NULL; c = c->next)
    {
        c->in_list = false;
    }
    (void)pthread_mutex_unlock(&server->lock);
    while (taken != NULL)
    {
        CONNECTION* next = taken->next;
        connection_free(taken); /* its close waits for a callback running on a worker */
        taken = next;
    }
    /* Connections that a callback took out of the list just before are freed by that callback. */
    (void)pthread_mutex_lock(&server->lock);
    while (server->live != 0)
    {
        (void)pthread_cond_wait(&server->all_gone, &server->lock);
    }
    (void)pthread_mutex_unlock(&server->lock);
}

int main(int argc, char** argv)
{
    ECHO_OPTIONS options = {0};
    bool run = false;
    int parsed = parse_options(argc, argv, &options, &run);
    if (!run)
    {
        return parsed;
    }
    sigset_t stop_signals;
    tool_block_stop_signals(&stop_signals);
    if (options.workers != 0)
    {
        (void)platform_linux_set_worker_count(options.workers);
    }
    if (options.tls_cert != NULL && (options.tls = tool_tls_server(TOOL, options.tls_cert, options.tls_key)) == NULL)
    {
        return TOOL_EXIT_FAILURE;
    }
    if (platform_init() != 0)
    {
        (void)fprintf(stderr, TOOL ": platform_init failed\n");
        return TOOL_EXIT_FAILURE;
    }
    static ECHO_SERVER server = {.lock = PTHREAD_MUTEX_INITIALIZER, .all_gone = PTHREAD_COND_INITIALIZER};
    int exit_code = TOOL_EXIT_FAILURE;
    if (listener_start(&server, &options))
    {
        /* Codes_SRS_ASOCK_TOOLS_01_004 */
        while (tool_wait_for_stop(&stop_signals, 60000) == 0)
        {
        }
        exit_code = TOOL_EXIT_OK;
    }
    server_stop(&server);
    platform_deinit();
    tool_tls_destroy(options.tls);
    if (exit_code == TOOL_EXIT_OK)
    {
        (void)printf(TOOL ": stopped: %llu connections, %llu bytes echoed\n",
            (unsigned long long)atomic_load(&server.accepted), (unsigned long long)atomic_load(&server.bytes));
        (void)fflush(stdout);
    }
    return exit_code;
}
