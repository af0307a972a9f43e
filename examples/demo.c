/* async_socket demo: two async sockets talking over a loopback TCP connection.
 *
 * Phase 1 (ping-pong): each side keeps one 64-byte PING in flight and echoes every PING it
 * receives as a PONG, so both directions carry traffic at once. Round-trip latency is measured
 * from the timestamp carried in each PING.
 *
 * Phase 2 (stream): side A streams 64 KiB sends to side B, with a few sends outstanding; B keeps a
 * receive posted and checks every byte against a pattern that depends on its stream offset.
 *
 * Callbacks run on the completion port's worker threads (a send may also complete inside
 * async_socket_send_async), so all shared state is under one mutex, and the mutex is never held
 * while calling into the library. Exit status is non-zero on any error or data mismatch. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"

#define MSG_SIZE 64
#define STREAM_SEND_SIZE (64 * 1024)
#define STREAM_RECV_SIZE (64 * 1024)
#define STREAM_WINDOW 8
#define PING_PHASE_NS 1500000000ull
#define STREAM_PHASE_NS 1500000000ull
#define DRAIN_TIMEOUT_NS 10000000000ull

#define MSG_PING 1
#define MSG_PONG 2

typedef enum DEMO_MODE_TAG
{
    MODE_PING_PONG,
    MODE_STREAM
} DEMO_MODE;

struct DEMO_TAG;

typedef struct PEER_TAG
{
    struct DEMO_TAG* demo;
    ASYNC_SOCKET_HANDLE socket;

    /* The one receive this side has posted: where it writes, and its descriptor (which must stay
     * valid while the receive is pending). */
    ASYNC_SOCKET_BUFFER receive_buffer;

    /* Ping-pong: the message being assembled, and this side's own PING sequence. */
    uint8_t message[MSG_SIZE];
    uint32_t message_have;
    uint64_t next_seq;
    bool ping_outstanding;

    /* Stream (used by the receiving side). */
    uint8_t* stream_buffer;
} PEER;

typedef struct STREAM_SLOT_TAG
{
    struct DEMO_TAG* demo;
    bool busy;
    ASYNC_SOCKET_BUFFER descriptor;
    uint8_t* data;
} STREAM_SLOT;

/* One message send (PING or PONG); freed by its completion callback. */
typedef struct MESSAGE_SEND_TAG
{
    PEER* peer;
    ASYNC_SOCKET_BUFFER descriptor;
    uint8_t data[MSG_SIZE];
} MESSAGE_SEND;

typedef struct DEMO_TAG
{
    pthread_mutex_t lock;
    pthread_cond_t changed;

    DEMO_MODE mode;
    bool stop_pings;
    bool closing;
    bool failed;
    uint32_t message_sends_outstanding;
    /* Receive callbacks between their first check of `closing` and their repost; close waits for
     * them, so a repost never races with async_socket_close. */
    uint32_t receive_callbacks_running;

    PEER peers[2];

    uint64_t* rtt_ns;
    size_t rtt_count;
    size_t rtt_capacity;

    STREAM_SLOT slots[STREAM_WINDOW];
    uint64_t stream_target;
    uint64_t stream_received;
    uint64_t mismatches;
} DEMO;

static uint64_t now_ns(void)
{
    struct timespec now;
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static uint8_t pattern_byte(uint64_t offset)
{
    return (uint8_t)((((offset * 2654435761u) >> 24) & 0xFF) ^ (offset & 0xFF) ^ ((offset >> 8) & 0xFF));
}

static void put_u64(uint8_t* p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

static uint64_t get_u64(const uint8_t* p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Records a failure; the caller holds the lock. */
static void fail_locked(DEMO* demo, const char* what)
{
    if (!demo->failed)
    {
        (void)fprintf(stderr, "demo: %s\n", what);
    }
    demo->failed = true;
    (void)pthread_cond_broadcast(&demo->changed);
}

static void fail(DEMO* demo, const char* what)
{
    (void)pthread_mutex_lock(&demo->lock);
    fail_locked(demo, what);
    (void)pthread_mutex_unlock(&demo->lock);
}

/* Waits (lock held) until done(demo), or also until a failure when stop_on_failure; returns
 * done(demo) && !failed, also after timeout_ns. */
static bool wait_for(DEMO* demo, bool (*done)(const DEMO*), bool stop_on_failure, uint64_t timeout_ns)
{
    struct timespec deadline;
    (void)clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ns / 1000000000ull);
    deadline.tv_nsec += (long)(timeout_ns % 1000000000ull);
    if (deadline.tv_nsec >= 1000000000L)
    {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!done(demo) && !(stop_on_failure && demo->failed))
    {
        if (pthread_cond_timedwait(&demo->changed, &demo->lock, &deadline) == ETIMEDOUT)
        {
            break;
        }
    }
    return done(demo) && !demo->failed;
}

static bool wait_locked(DEMO* demo, bool (*done)(const DEMO*), uint64_t timeout_ns)
{
    return wait_for(demo, done, true, timeout_ns);
}

/* ---------------------------------------------------------------------------------------------
 * Ping-pong
 * ------------------------------------------------------------------------------------------- */

static void on_message_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    MESSAGE_SEND* send = context;
    DEMO* demo = send->peer->demo;

    (void)pthread_mutex_lock(&demo->lock);
    if (result != ASYNC_SOCKET_SEND_OK && !demo->closing)
    {
        fail_locked(demo, "a ping-pong send failed");
    }
    demo->message_sends_outstanding--;
    (void)pthread_cond_broadcast(&demo->changed);
    (void)pthread_mutex_unlock(&demo->lock);
    free(send);
}

/* Sends one 64-byte message: type, sequence number, timestamp, then pattern bytes. */
static void send_message(PEER* peer, uint8_t type, uint64_t seq, uint64_t timestamp)
{
    DEMO* demo = peer->demo;
    MESSAGE_SEND* send = malloc(sizeof(*send));

    if (send == NULL)
    {
        fail(demo, "out of memory");
        return;
    }
    send->peer = peer;
    for (uint32_t i = 0; i < MSG_SIZE; i++)
    {
        send->data[i] = pattern_byte(seq + i);
    }
    send->data[0] = type;
    put_u64(&send->data[8], seq);
    put_u64(&send->data[16], timestamp);
    send->descriptor.buffer = send->data;
    send->descriptor.length = MSG_SIZE;

    (void)pthread_mutex_lock(&demo->lock);
    demo->message_sends_outstanding++;
    (void)pthread_mutex_unlock(&demo->lock);

    if (async_socket_send_async(peer->socket, &send->descriptor, 1, on_message_sent, send) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        (void)pthread_mutex_lock(&demo->lock);
        demo->message_sends_outstanding--;
        fail_locked(demo, "async_socket_send_async failed");
        (void)pthread_mutex_unlock(&demo->lock);
        free(send);
    }
}

static void send_ping(PEER* peer)
{
    uint64_t seq;

    (void)pthread_mutex_lock(&peer->demo->lock);
    seq = peer->next_seq++;
    peer->ping_outstanding = true;
    (void)pthread_mutex_unlock(&peer->demo->lock);
    send_message(peer, MSG_PING, seq, now_ns());
}

static bool message_intact(const uint8_t* message)
{
    uint64_t seq = get_u64(&message[8]);
    for (uint32_t i = 24; i < MSG_SIZE; i++)
    {
        if (message[i] != pattern_byte(seq + i))
        {
            return false;
        }
    }
    return true;
}

static void record_rtt_locked(DEMO* demo, uint64_t rtt)
{
    if (demo->rtt_count == demo->rtt_capacity)
    {
        size_t capacity = (demo->rtt_capacity == 0) ? 65536 : demo->rtt_capacity * 2;
        uint64_t* grown = realloc(demo->rtt_ns, capacity * sizeof(*grown));
        if (grown == NULL)
        {
            fail_locked(demo, "out of memory");
            return;
        }
        demo->rtt_ns = grown;
        demo->rtt_capacity = capacity;
    }
    demo->rtt_ns[demo->rtt_count++] = rtt;
}

typedef enum REPLY_TAG
{
    REPLY_NONE,
    REPLY_PONG,
    REPLY_NEXT_PING
} REPLY;

/* Handles a complete message (lock held); says what to send once the lock is released. */
static REPLY handle_message_locked(PEER* peer, const uint8_t* message)
{
    DEMO* demo = peer->demo;

    if (!message_intact(message))
    {
        demo->mismatches++;
        fail_locked(demo, "a ping-pong message arrived corrupted");
        return REPLY_NONE;
    }
    if (message[0] == MSG_PING)
    {
        return REPLY_PONG;
    }
    if (message[0] != MSG_PONG || get_u64(&message[8]) != peer->next_seq - 1)
    {
        demo->mismatches++;
        fail_locked(demo, "unexpected message in the ping-pong");
        return REPLY_NONE;
    }
    record_rtt_locked(demo, now_ns() - get_u64(&message[16]));
    if (demo->stop_pings)
    {
        peer->ping_outstanding = false;
        (void)pthread_cond_broadcast(&demo->changed);
        return REPLY_NONE;
    }
    return REPLY_NEXT_PING;
}

/* ---------------------------------------------------------------------------------------------
 * Receiving: one receive posted per side; what the bytes mean depends on the phase.
 * ------------------------------------------------------------------------------------------- */

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received);

/* Chooses the next receive's buffer (lock held). */
static void prepare_receive_locked(PEER* peer)
{
    if (peer->demo->mode == MODE_STREAM)
    {
        peer->receive_buffer.buffer = peer->stream_buffer;
        peer->receive_buffer.length = STREAM_RECV_SIZE;
    }
    else
    {
        /* Ask only for the rest of the current message, so a receive never spans two. */
        peer->receive_buffer.buffer = peer->message + peer->message_have;
        peer->receive_buffer.length = MSG_SIZE - peer->message_have;
    }
}

static void post_receive(PEER* peer)
{
    DEMO* demo = peer->demo;

    (void)pthread_mutex_lock(&demo->lock);
    prepare_receive_locked(peer);
    (void)pthread_mutex_unlock(&demo->lock);

    if (async_socket_receive_async(peer->socket, &peer->receive_buffer, 1, on_received, peer) != 0)
    {
        fail(demo, "async_socket_receive_async failed");
    }
}

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received)
{
    PEER* peer = context;
    DEMO* demo = peer->demo;
    const uint8_t* data = peer->receive_buffer.buffer;
    uint8_t message[MSG_SIZE];
    REPLY reply = REPLY_NONE;
    bool again;

    (void)pthread_mutex_lock(&demo->lock);
    if (demo->closing)
    {
        /* ABANDONED, or the peer's close seen as an error: expected now. */
        (void)pthread_mutex_unlock(&demo->lock);
        return;
    }
    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes_received == 0)
    {
        fail_locked(demo, "a receive failed");
        (void)pthread_mutex_unlock(&demo->lock);
        return;
    }
    demo->receive_callbacks_running++;
    if (demo->mode == MODE_STREAM)
    {
        for (uint32_t i = 0; i < bytes_received; i++)
        {
            if (data[i] != pattern_byte(demo->stream_received + i))
            {
                demo->mismatches++;
            }
        }
        demo->stream_received += bytes_received;
    }
    else
    {
        peer->message_have += bytes_received;
        if (peer->message_have == MSG_SIZE)
        {
            memcpy(message, peer->message, MSG_SIZE);
            peer->message_have = 0;
            reply = handle_message_locked(peer, message);
        }
    }
    (void)pthread_cond_broadcast(&demo->changed);
    again = !demo->failed;
    (void)pthread_mutex_unlock(&demo->lock);

    if (reply == REPLY_PONG)
    {
        send_message(peer, MSG_PONG, get_u64(&message[8]), get_u64(&message[16]));
    }
    else if (reply == REPLY_NEXT_PING)
    {
        send_ping(peer);
    }
    if (again)
    {
        post_receive(peer);
    }

    (void)pthread_mutex_lock(&demo->lock);
    demo->receive_callbacks_running--;
    (void)pthread_cond_broadcast(&demo->changed);
    (void)pthread_mutex_unlock(&demo->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Streaming
 * ------------------------------------------------------------------------------------------- */

static void on_stream_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    STREAM_SLOT* slot = context;
    DEMO* demo = slot->demo;

    (void)pthread_mutex_lock(&demo->lock);
    if (result != ASYNC_SOCKET_SEND_OK && !demo->closing)
    {
        fail_locked(demo, "a stream send failed");
    }
    slot->busy = false;
    (void)pthread_cond_broadcast(&demo->changed);
    (void)pthread_mutex_unlock(&demo->lock);
}

static int free_slot_index(const DEMO* demo)
{
    for (int i = 0; i < STREAM_WINDOW; i++)
    {
        if (!demo->slots[i].busy)
        {
            return i;
        }
    }
    return -1;
}

static bool has_free_slot(const DEMO* demo)
{
    return free_slot_index(demo) >= 0;
}

/* Streams from A to B for STREAM_PHASE_NS; returns the number of bytes handed to send_async. */
static uint64_t stream(DEMO* demo, PEER* sender)
{
    uint64_t sent = 0;
    uint64_t start = now_ns();

    while (now_ns() - start < STREAM_PHASE_NS)
    {
        STREAM_SLOT* slot;

        (void)pthread_mutex_lock(&demo->lock);
        if (!wait_locked(demo, has_free_slot, DRAIN_TIMEOUT_NS))
        {
            fail_locked(demo, "stream sends stopped completing");
            (void)pthread_mutex_unlock(&demo->lock);
            break;
        }
        slot = &demo->slots[free_slot_index(demo)];
        slot->busy = true;
        (void)pthread_mutex_unlock(&demo->lock);

        for (uint32_t i = 0; i < STREAM_SEND_SIZE; i++)
        {
            slot->data[i] = pattern_byte(sent + i);
        }
        slot->descriptor.buffer = slot->data;
        slot->descriptor.length = STREAM_SEND_SIZE;
        if (async_socket_send_async(sender->socket, &slot->descriptor, 1, on_stream_sent, slot) != ASYNC_SOCKET_SEND_SYNC_OK)
        {
            (void)pthread_mutex_lock(&demo->lock);
            slot->busy = false;
            fail_locked(demo, "async_socket_send_async failed in the stream");
            (void)pthread_mutex_unlock(&demo->lock);
            break;
        }
        sent += STREAM_SEND_SIZE;
    }
    return sent;
}

/* ---------------------------------------------------------------------------------------------
 * Setup and teardown
 * ------------------------------------------------------------------------------------------- */

/* A connected loopback pair: fds[0] from connect(), fds[1] from accept(). */
static int tcp_pair(int fds[2])
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof(addr);
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int client = -1;
    int server = -1;

    if (listener < 0)
    {
        return -1;
    }
    if (bind(listener, (struct sockaddr*)&addr, sizeof(addr)) == 0 && listen(listener, 1) == 0 &&
        getsockname(listener, (struct sockaddr*)&addr, &addr_len) == 0)
    {
        client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (client >= 0 && connect(client, (struct sockaddr*)&addr, sizeof(addr)) == 0)
        {
            server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        }
    }
    (void)close(listener);
    if (server < 0)
    {
        if (client >= 0)
        {
            (void)close(client);
        }
        return -1;
    }
    (void)setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fds[0] = client;
    fds[1] = server;
    return 0;
}

typedef struct OPEN_WAIT_TAG
{
    pthread_mutex_t lock;
    pthread_cond_t done;
    int completed;
    int ok;
} OPEN_WAIT;

static void on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    OPEN_WAIT* wait = context;
    (void)pthread_mutex_lock(&wait->lock);
    wait->completed++;
    wait->ok += (result == ASYNC_SOCKET_OPEN_OK) ? 1 : 0;
    (void)pthread_cond_broadcast(&wait->done);
    (void)pthread_mutex_unlock(&wait->lock);
}

/* Wraps both fds in async sockets and opens them. On failure, fds not yet owned by a socket are
 * closed and the sockets created so far are destroyed. */
static int open_peers(DEMO* demo, const int fds[2])
{
    OPEN_WAIT wait = {.lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};
    int result = 0;

    for (int i = 0; i < 2; i++)
    {
        demo->peers[i].socket = async_socket_create(NULL, fds[i]);
        if (demo->peers[i].socket == NULL)
        {
            (void)fprintf(stderr, "demo: async_socket_create failed\n");
            for (int j = i; j < 2; j++)
            {
                (void)close(fds[j]);
            }
            return -1;
        }
    }
    for (int i = 0; i < 2; i++)
    {
        if (async_socket_open_async(demo->peers[i].socket, on_open, &wait) != 0)
        {
            (void)fprintf(stderr, "demo: async_socket_open_async failed\n");
            result = -1;
        }
    }
    (void)pthread_mutex_lock(&wait.lock);
    while (result == 0 && wait.completed < 2)
    {
        (void)pthread_cond_wait(&wait.done, &wait.lock);
    }
    if (result == 0 && wait.ok != 2)
    {
        (void)fprintf(stderr, "demo: open completed with an error\n");
        result = -1;
    }
    (void)pthread_mutex_unlock(&wait.lock);
    return result;
}

static bool receive_callbacks_idle(const DEMO* demo)
{
    return demo->receive_callbacks_running == 0;
}

static void close_peers(DEMO* demo)
{
    (void)pthread_mutex_lock(&demo->lock);
    demo->closing = true;
    if (!wait_for(demo, receive_callbacks_idle, false, DRAIN_TIMEOUT_NS) && !receive_callbacks_idle(demo))
    {
        fail_locked(demo, "receive callbacks did not finish");
    }
    (void)pthread_mutex_unlock(&demo->lock);

    /* Pending receives complete as ABANDONED inside close; none runs after it returns. */
    for (int i = 0; i < 2; i++)
    {
        if (demo->peers[i].socket != NULL)
        {
            async_socket_close(demo->peers[i].socket);
        }
    }
    for (int i = 0; i < 2; i++)
    {
        if (demo->peers[i].socket != NULL)
        {
            async_socket_destroy(demo->peers[i].socket);
            demo->peers[i].socket = NULL;
        }
    }
}

static int demo_init(DEMO* demo)
{
    pthread_condattr_t attr;

    memset(demo, 0, sizeof(*demo));
    if (pthread_mutex_init(&demo->lock, NULL) != 0 || pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 || pthread_cond_init(&demo->changed, &attr) != 0)
    {
        return -1;
    }
    (void)pthread_condattr_destroy(&attr);
    for (int i = 0; i < 2; i++)
    {
        demo->peers[i].demo = demo;
        demo->peers[i].stream_buffer = malloc(STREAM_RECV_SIZE);
        if (demo->peers[i].stream_buffer == NULL)
        {
            return -1;
        }
    }
    for (int i = 0; i < STREAM_WINDOW; i++)
    {
        demo->slots[i].demo = demo;
        demo->slots[i].data = malloc(STREAM_SEND_SIZE);
        if (demo->slots[i].data == NULL)
        {
            return -1;
        }
    }
    return 0;
}

static void demo_deinit(DEMO* demo)
{
    for (int i = 0; i < 2; i++)
    {
        free(demo->peers[i].stream_buffer);
    }
    for (int i = 0; i < STREAM_WINDOW; i++)
    {
        free(demo->slots[i].data);
    }
    free(demo->rtt_ns);
    (void)pthread_cond_destroy(&demo->changed);
    (void)pthread_mutex_destroy(&demo->lock);
}

/* ---------------------------------------------------------------------------------------------
 * The two phases and the report
 * ------------------------------------------------------------------------------------------- */

static bool pings_drained(const DEMO* demo)
{
    return !demo->peers[0].ping_outstanding && !demo->peers[1].ping_outstanding &&
           demo->message_sends_outstanding == 0;
}

static int compare_u64(const void* a, const void* b)
{
    uint64_t x = *(const uint64_t*)a;
    uint64_t y = *(const uint64_t*)b;
    return (x > y) - (x < y);
}

static int run_ping_pong(DEMO* demo)
{
    uint64_t start = now_ns();
    double seconds;
    bool drained;

    for (int i = 0; i < 2; i++)
    {
        post_receive(&demo->peers[i]);
    }
    for (int i = 0; i < 2; i++)
    {
        send_ping(&demo->peers[i]);
    }
    while (now_ns() - start < PING_PHASE_NS)
    {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 10000000};
        (void)nanosleep(&tick, NULL);
    }

    (void)pthread_mutex_lock(&demo->lock);
    demo->stop_pings = true;
    drained = wait_locked(demo, pings_drained, DRAIN_TIMEOUT_NS);
    if (!drained)
    {
        fail_locked(demo, "the ping-pong did not drain");
    }
    seconds = (double)(now_ns() - start) / 1e9;
    if (drained && demo->rtt_count > 0)
    {
        qsort(demo->rtt_ns, demo->rtt_count, sizeof(demo->rtt_ns[0]), compare_u64);
        (void)printf("ping-pong: %zu round trips in %.2f s: %.0f round trips/s, latency p50 %.1f us, p99 %.1f us\n",
                     demo->rtt_count, seconds, (double)demo->rtt_count / seconds,
                     (double)demo->rtt_ns[demo->rtt_count / 2] / 1e3,
                     (double)demo->rtt_ns[(demo->rtt_count * 99) / 100] / 1e3);
    }
    else if (drained)
    {
        fail_locked(demo, "no round trip completed");
    }
    /* Both sides are idle (every PONG consumed), so B's posted receive now belongs to the stream. */
    demo->mode = MODE_STREAM;
    (void)pthread_mutex_unlock(&demo->lock);
    return drained ? 0 : -1;
}

static bool stream_drained(const DEMO* demo)
{
    for (int i = 0; i < STREAM_WINDOW; i++)
    {
        if (demo->slots[i].busy)
        {
            return false;
        }
    }
    return demo->stream_received >= demo->stream_target;
}

static int run_stream(DEMO* demo)
{
    uint64_t start = now_ns();
    uint64_t sent = stream(demo, &demo->peers[0]);
    double seconds;
    bool drained;

    (void)pthread_mutex_lock(&demo->lock);
    demo->stream_target = sent;
    drained = wait_locked(demo, stream_drained, DRAIN_TIMEOUT_NS);
    seconds = (double)(now_ns() - start) / 1e9;
    if (!drained)
    {
        fail_locked(demo, "the stream did not drain");
    }
    else if (demo->stream_received != sent)
    {
        fail_locked(demo, "the receiver got more bytes than were sent");
    }
    else
    {
        (void)printf("stream: %llu bytes in %.2f s: %.1f MB/s\n", (unsigned long long)sent, seconds,
                     (double)sent / seconds / 1e6);
    }
    (void)pthread_mutex_unlock(&demo->lock);
    return drained ? 0 : -1;
}

int main(void)
{
    DEMO demo;
    int fds[2];
    int status = 1;

    if (demo_init(&demo) != 0)
    {
        (void)fprintf(stderr, "demo: setup failed\n");
        return 1;
    }
    if (platform_init() != 0)
    {
        (void)fprintf(stderr, "demo: platform_init failed\n");
        demo_deinit(&demo);
        return 1;
    }
    if (tcp_pair(fds) != 0)
    {
        (void)fprintf(stderr, "demo: loopback connection failed: %s\n", strerror(errno));
    }
    else if (open_peers(&demo, fds) == 0 && run_ping_pong(&demo) == 0 && run_stream(&demo) == 0)
    {
        status = 0;
    }
    close_peers(&demo);

    (void)pthread_mutex_lock(&demo.lock);
    (void)printf("verified %llu bytes, %llu mismatches\n", (unsigned long long)demo.stream_received,
                 (unsigned long long)demo.mismatches);
    if (demo.failed || demo.mismatches != 0)
    {
        status = 1;
    }
    (void)pthread_mutex_unlock(&demo.lock);

    platform_deinit();
    demo_deinit(&demo);
    (void)printf("%s\n", status == 0 ? "OK" : "FAILED");
    return status;
}
