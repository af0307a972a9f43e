/* A program written the way a user of the installed package writes one: only the public headers,
 * only the public API. It makes a loopback connection, opens both ends as async sockets, sends a
 * known byte pattern one way in two buffers, receives it on the other end with receives posted
 * from the receive callback, and checks every byte. Exit 0 only when all bytes arrived right and
 * everything was released; every wait is bounded, so a broken build fails instead of hanging. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/execution_engine.h"
#include "c_pal/logger.h"
#include "c_pal/platform.h"
#include "c_pal/socket_transport.h"

#define PAYLOAD_SIZE (256u * 1024u)
#define WAIT_SECONDS 10

static unsigned char sent_bytes[PAYLOAD_SIZE];
static unsigned char received_bytes[PAYLOAD_SIZE];

typedef struct RECEIVER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    uint32_t total;   /* bytes received so far; touched only by the receive callbacks */
    int failed;
    sem_t done;       /* posted once: all bytes in, or a failure */
} RECEIVER;

static sem_t send_done;
static ASYNC_SOCKET_SEND_RESULT send_result = ASYNC_SOCKET_SEND_ERROR;

static int wait_bounded(sem_t* semaphore)
{
    struct timespec deadline;
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    while (sem_timedwait(semaphore, &deadline) != 0)
    {
        if (errno != EINTR)
        {
            return -1;
        }
    }
    return 0;
}

static void on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    *(ASYNC_SOCKET_OPEN_RESULT*)context = result;
}

static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    (void)context;
    send_result = result;
    (void)sem_post(&send_done);
}

static int post_receive(RECEIVER* receiver);

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    RECEIVER* receiver = context;
    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes == 0)
    {
        (void)fprintf(stderr, "consumer: receive ended with %s after %u bytes\n",
            MU_ENUM_TO_STRING(ASYNC_SOCKET_RECEIVE_RESULT, result), (unsigned)receiver->total);
        receiver->failed = 1;
        (void)sem_post(&receiver->done);
        return;
    }
    receiver->total += bytes;
    if (receiver->total == PAYLOAD_SIZE || post_receive(receiver) != 0)
    {
        receiver->failed = (receiver->total != PAYLOAD_SIZE);
        (void)sem_post(&receiver->done);
    }
}

/* Posted from the receive callback too: a callback may post the next operation. */
static int post_receive(RECEIVER* receiver)
{
    ASYNC_SOCKET_BUFFER buffer = {received_bytes + receiver->total, PAYLOAD_SIZE - receiver->total};
    return async_socket_receive_async(receiver->socket, &buffer, 1, on_received, receiver);
}

/* A connected pair on 127.0.0.1: the listener from socket_transport, the client from plain
 * POSIX calls, as a user with an existing connect() path would do. */
static int make_pair(int* client_fd, int* server_fd)
{
    SOCKET_TRANSPORT_HANDLE listener = socket_transport_create_server();
    char host[64];
    uint16_t port = 0;
    int result = -1;
    *client_fd = -1;
    *server_fd = -1;
    if (listener == NULL || socket_transport_listen_on(listener, "127.0.0.1", 0) != 0 ||
        socket_transport_get_local_endpoint(listener, host, sizeof(host), &port) != 0)
    {
        goto done;
    }
    struct sockaddr_in address;
    (void)memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1)
    {
        goto done;
    }
    *client_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*client_fd < 0 || connect(*client_fd, (struct sockaddr*)&address, sizeof(address)) != 0)
    {
        goto done;
    }
    /* The listening fd stays the transport's; the accepted fd is ours to hand over. The listener
     * is non-blocking, and the connection is already queued since connect() returned. */
    *server_fd = accept(socket_transport_get_underlying_socket(listener), NULL, NULL);
    result = (*server_fd < 0) ? -1 : 0;
done:
    if (result != 0)
    {
        (void)fprintf(stderr, "consumer: cannot make a loopback pair (errno %d)\n", errno);
        if (*client_fd >= 0)
        {
            (void)close(*client_fd);
        }
    }
    socket_transport_destroy(listener);
    return result;
}

static int transfer(ASYNC_SOCKET_HANDLE sender, RECEIVER* receiver)
{
    ASYNC_SOCKET_OPEN_RESULT opened[2] = {ASYNC_SOCKET_OPEN_ERROR, ASYNC_SOCKET_OPEN_ERROR};
    if (async_socket_open_async(sender, on_open, &opened[0]) != 0 ||
        async_socket_open_async(receiver->socket, on_open, &opened[1]) != 0 ||
        opened[0] != ASYNC_SOCKET_OPEN_OK || opened[1] != ASYNC_SOCKET_OPEN_OK)
    {
        (void)fprintf(stderr, "consumer: open failed\n");
        return -1;
    }
    if (post_receive(receiver) != 0)
    {
        return -1;
    }
    /* two buffers, to cross the gathering path; the array itself may go once the call returns */
    ASYNC_SOCKET_BUFFER payload[2] = {
        {sent_bytes, PAYLOAD_SIZE / 3},
        {sent_bytes + PAYLOAD_SIZE / 3, PAYLOAD_SIZE - PAYLOAD_SIZE / 3},
    };
    if (async_socket_send_async(sender, payload, 2, on_sent, NULL) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        (void)fprintf(stderr, "consumer: send_async failed\n");
        return -1;
    }
    if (wait_bounded(&send_done) != 0 || wait_bounded(&receiver->done) != 0)
    {
        (void)fprintf(stderr, "consumer: timed out after %d s\n", WAIT_SECONDS);
        return -1;
    }
    if (send_result != ASYNC_SOCKET_SEND_OK || receiver->failed)
    {
        (void)fprintf(stderr, "consumer: send %s, %u of %u bytes received\n",
            MU_ENUM_TO_STRING(ASYNC_SOCKET_SEND_RESULT, send_result), (unsigned)receiver->total, PAYLOAD_SIZE);
        return -1;
    }
    if (memcmp(sent_bytes, received_bytes, PAYLOAD_SIZE) != 0)
    {
        (void)fprintf(stderr, "consumer: the received bytes differ from the sent ones\n");
        return -1;
    }
    return 0;
}

int main(void)
{
    for (uint32_t i = 0; i < PAYLOAD_SIZE; i++)
    {
        sent_bytes[i] = (unsigned char)((i * 131u + (i >> 9)) & 0xFFu);
    }
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    int client_fd;
    int server_fd;
    if (platform_linux_set_worker_count(1) != 0 || platform_init() != 0)
    {
        (void)fprintf(stderr, "consumer: platform_init failed\n");
        return 1;
    }
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(NULL);
    if (engine == NULL || make_pair(&client_fd, &server_fd) != 0)
    {
        if (engine != NULL)
        {
            execution_engine_dec_ref(engine);
        }
        platform_deinit();
        return 1;
    }
    RECEIVER receiver = {.socket = NULL, .total = 0, .failed = 0};
    (void)sem_init(&receiver.done, 0, 0);
    (void)sem_init(&send_done, 0, 0);
    ASYNC_SOCKET_HANDLE sender = async_socket_create(engine, client_fd);
    receiver.socket = async_socket_create(NULL, server_fd);
    int result = 1;
    if (sender == NULL || receiver.socket == NULL)
    {
        /* a failed create leaves the fd with the caller */
        (void)fprintf(stderr, "consumer: async_socket_create failed\n");
        if (sender == NULL)
        {
            (void)close(client_fd);
        }
        if (receiver.socket == NULL)
        {
            (void)close(server_fd);
        }
    }
    else if (transfer(sender, &receiver) == 0)
    {
        result = 0;
    }
    /* close calls back anything still pending before it returns; destroy frees and closes the fd */
    async_socket_close(sender);
    async_socket_close(receiver.socket);
    async_socket_destroy(sender);
    async_socket_destroy(receiver.socket);
    execution_engine_dec_ref(engine);
    platform_deinit();
    (void)sem_destroy(&receiver.done);
    (void)sem_destroy(&send_done);
    if (result == 0)
    {
        (void)printf("consumer: %u bytes sent and verified\n", PAYLOAD_SIZE);
    }
    return result;
}
