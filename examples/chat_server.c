/* chat_server: a line-based chat on async_socket (docs/api.md, "Writing a server" walks through it).
 * Usage: chat_server --port P [--bind ADDR]   (port 0: the kernel picks; ADDR: 127.0.0.1)
 * Each line a client sends goes to every other client as "<sender's address>: <line>". A CLIENT is
 * freed only in free_client, which async_socket_destroy_async calls once no callback of its socket
 * runs or will run again; sockets are never closed under `lock` (a close waits for callbacks, and
 * they may be waiting for `lock`). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/async_socket_listener.h"
#include "c_pal/platform.h"

#define MAX_LINE 65536                 /* longer lines are cut */
#define MAX_QUEUED (1024u * 1024u)     /* bytes waiting for a client before it is dropped */
#define KERNEL_SEND_BUFFER (64 * 1024) /* so that a client that does not read shows up in MAX_QUEUED soon */
#define GOODBYE "* the server is shutting down\n"

typedef struct CLIENT_TAG
{
    struct CLIENT_TAG* next;
    ASYNC_SOCKET_HANDLE socket;
    char name[ASYNC_SOCKET_ADDRESS_TEXT_SIZE];
    char received[4096];
    size_t line_length; /* touched only by the receive callback: one receive is pending at a time */
    char line[MAX_LINE];
} CLIENT;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_freed = PTHREAD_COND_INITIALIZER;
static CLIENT* clients;     /* the connected clients (lock) */
static unsigned live;       /* clients not freed yet (lock) */

static void receive_next(CLIENT* client);
static void announce(const CLIENT* client, const char* what);
static void on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result) { (void)context; (void)result; }
static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result) { (void)result; free(context); }

/* Queues a copy of text to client; the copy goes when the send completes. */
static void send_text(CLIENT* client, const char* text, size_t length)
{
    char* copy = malloc(length);
    if (copy == NULL) return;
    memcpy(copy, text, length);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = copy, .length = (uint32_t)length};
    if (async_socket_send_async(client->socket, &buffer, 1, on_sent, copy) != ASYNC_SOCKET_SEND_SYNC_OK) free(copy);
}

/* Called by the library once the client's socket is gone: nothing else can touch the client. */
static void free_client(void* context)
{
    free(context);
    pthread_mutex_lock(&lock);
    live--;
    pthread_cond_signal(&all_freed);
    pthread_mutex_unlock(&lock);
}

static void destroy_client(CLIENT* client)
{
    if (async_socket_destroy_async(client->socket, free_client, client) != 0) {
        fprintf(stderr, "chat_server: cannot destroy the socket of %s (out of memory)\n", client->name);
    }
}

/* Sends text to every client but `from`, and drops the clients that do not keep up. */
static void broadcast(const CLIENT* from, const char* text, size_t length)
{
    CLIENT* slow = NULL;
    pthread_mutex_lock(&lock);
    for (CLIENT** link = &clients; *link != NULL;) {
        CLIENT* client = *link;
        if (client != from && async_socket_get_queued_send_bytes(client->socket) > MAX_QUEUED) {
            *link = client->next; /* out of the list: nobody sends to it any more */
            client->next = slow;
            slow = client;
            continue;
        }
        if (client != from) send_text(client, text, length);
        link = &client->next;
    }
    pthread_mutex_unlock(&lock);
    for (CLIENT* next; slow != NULL; slow = next) {
        next = slow->next;
        fprintf(stderr, "chat_server: dropping %s: it does not read\n", slow->name);
        announce(slow, "left (it did not read)");
        destroy_client(slow);
    }
}

static void announce(const CLIENT* client, const char* what)
{
    char text[ASYNC_SOCKET_ADDRESS_TEXT_SIZE + 32];
    int length = snprintf(text, sizeof(text), "* %s %s\n", client->name, what);
    broadcast(client, text, (size_t)length);
}

/* Called from the client's own callbacks when it goes: only the call that takes it out of the list
 * destroys it (a broadcast or the shutdown may have taken it already). */
static void drop(CLIENT* client)
{
    pthread_mutex_lock(&lock);
    bool listed = false;
    for (CLIENT** link = &clients; *link != NULL && !listed; link = &(*link)->next) {
        if (*link == client) {
            *link = client->next;
            listed = true;
        }
    }
    pthread_mutex_unlock(&lock);
    if (listed) {
        announce(client, "left");
        destroy_client(client);
    }
}

static void finish_line(CLIENT* client)
{
    size_t length = client->line_length;
    client->line_length = 0;
    if (length > 0 && client->line[length - 1] == '\r') length--;
    size_t name_length = strlen(client->name), total = name_length + 2 + length + 1;
    char* text = malloc(total);
    if (text == NULL) return;
    memcpy(text, client->name, name_length);
    memcpy(text + name_length, ": ", 2);
    memcpy(text + name_length + 2, client->line, length);
    text[total - 1] = '\n';
    broadcast(client, text, total);
    free(text);
}

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    CLIENT* client = context;
    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes == 0) {
        drop(client); /* end of stream, an error, or ABANDONED by a destroy */
        return;
    }
    for (uint32_t i = 0; i < bytes; i++) {
        char c = client->received[i];
        if (c == '\n') finish_line(client);
        else if (client->line_length < MAX_LINE) client->line[client->line_length++] = c;
    }
    receive_next(client);
}

static void receive_next(CLIENT* client)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = client->received, .length = sizeof(client->received)};
    if (async_socket_receive_async(client->socket, &buffer, 1, on_received, client) != 0) drop(client);
}

static void on_accept(void* context, SOCKET_HANDLE fd, const char* peer_address)
{
    (void)context;
    int send_buffer = KERNEL_SEND_BUFFER;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof(send_buffer));
    CLIENT* client = calloc(1, sizeof(CLIENT));
    if (client == NULL || (client->socket = async_socket_create(NULL, fd)) == NULL) {
        free(client);
        close(fd);
        return;
    }
    snprintf(client->name, sizeof(client->name), "%s", peer_address);
    if (async_socket_open_async(client->socket, on_open, NULL) != 0) {
        async_socket_destroy(client->socket); /* never opened: no callback of it can run */
        free(client);
        return;
    }
    pthread_mutex_lock(&lock);
    client->next = clients;
    clients = client;
    live++;
    pthread_mutex_unlock(&lock);
    announce(client, "joined");
    receive_next(client);
}

/* Waits until the goodbye has left for every client, for at most a second in all. */
static void wait_for_goodbyes(const CLIENT* all)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    for (int rounds = 0; rounds < 100 && all != NULL; rounds++, nanosleep(&pause, NULL)) {
        while (all != NULL && async_socket_get_queued_send_bytes(all->socket) == 0) all = all->next;
    }
}

int main(int argc, char** argv)
{
    const char* address = "127.0.0.1";
    long port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        port = (strcmp(argv[i], "--port") == 0) ? strtol(argv[i + 1], NULL, 10) : port;
        address = (strcmp(argv[i], "--bind") == 0) ? argv[i + 1] : address;
    }
    if (port < 0 || port > 65535 || argc % 2 == 0) {
        fprintf(stderr, "usage: chat_server --port P [--bind ADDR]   (P 0..65535, 0: any free port)\n");
        return 2;
    }
    /* blocked before the library starts its workers, and read with sigwait: Ctrl-C is a plain
     * event for main, never a handler running inside a callback */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    if (platform_init() != 0) return 1;
    ASYNC_SOCKET_LISTENER_HANDLE listener = async_socket_listener_create(address, (uint16_t)port, on_accept, NULL);
    char bound[ASYNC_SOCKET_ADDRESS_TEXT_SIZE];
    if (listener == NULL || async_socket_listener_get_address(listener, bound, sizeof(bound)) != 0 ||
        async_socket_listener_start(listener) != 0) {
        if (listener != NULL) async_socket_listener_destroy(listener);
        platform_deinit();
        return 1;
    }
    printf("listening on %s\n", bound);
    fflush(stdout);

    int signal_number;
    sigwait(&signals, &signal_number);
    async_socket_listener_destroy(listener); /* no accept callback runs after this: no new clients */
    pthread_mutex_lock(&lock);
    CLIENT* all = clients;
    clients = NULL;
    for (CLIENT* client = all; client != NULL; client = client->next) send_text(client, GOODBYE, strlen(GOODBYE));
    pthread_mutex_unlock(&lock);
    wait_for_goodbyes(all);
    for (CLIENT* next; all != NULL; all = next) {
        next = all->next;
        destroy_client(all);
    }
    pthread_mutex_lock(&lock);
    while (live > 0) pthread_cond_wait(&all_freed, &lock);
    pthread_mutex_unlock(&lock);
    platform_deinit();
    printf("stopped\n");
    return 0;
}
