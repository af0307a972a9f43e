/* Connects to 127.0.0.1:<port> (default 7, echo), sends one line, prints the first bytes back. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "c_pal/async_socket.h"
#include "c_pal/platform.h"

static sem_t done;        /* posted by the send and receive callbacks */
static uint32_t received; /* set by the receive callback, read after sem_wait */

static void on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result) { (void)context; (void)result; }
static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result) { (void)context; (void)result; sem_post(&done); }
static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)context;
    received = (result == ASYNC_SOCKET_RECEIVE_OK) ? bytes : 0;
    sem_post(&done);
}

int main(int argc, char** argv)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argc > 1 ? argv[1] : "7"))};
    (void)inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof(addr)) != 0) { perror("connect"); return 1; }
    if (platform_init() != 0) { close(fd); return 1; }
    (void)sem_init(&done, 0, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fd); /* on success the socket owns fd */
    if (s == NULL) { close(fd); platform_deinit(); return 1; }
    if (async_socket_open_async(s, on_open, NULL) == 0) /* on_open has already run */
    {
        char line[] = "hello\n", reply[256];
        ASYNC_SOCKET_BUFFER out = {line, sizeof(line) - 1}, in = {reply, sizeof(reply)};
        if (async_socket_send_async(s, &out, 1, on_sent, NULL) == ASYNC_SOCKET_SEND_SYNC_OK)
            while (sem_wait(&done) != 0) {} /* on_sent may have run inline, inside send_async */
        if (async_socket_receive_async(s, &in, 1, on_received, NULL) == 0)
        {
            while (sem_wait(&done) != 0) {} /* on_received runs on a completion port thread */
            printf("%u bytes: %.*s", (unsigned)received, (int)received, reply);
        }
        async_socket_close(s); /* pending operations are called back ABANDONED before it returns */
    }
    async_socket_destroy(s); /* frees the socket; closes the fd if close was not called */
    platform_deinit();
    sem_destroy(&done);
    return 0;
}
