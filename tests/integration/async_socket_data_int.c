/* Integration tests for the data path of async_socket over real loopback TCP: ordering and
 * exactly-once completion of many outstanding sends, large transfers to a slow reader, full
 * duplex, ordered and scattered receives, concurrent senders, where receive callbacks run,
 * half-close and reset, and notifies coexisting with receives and sends.
 *
 * Every test checks bytes against a pattern that depends on the absolute stream offset, counts
 * callbacks (exactly once), and checks that no library allocation and no fd outlives it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"
#include "async_socket_data_helpers.h"

/* ---- 1: many sends queued before the peer reads ---- */

#define MANY_SENDS 1000

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_017 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_055 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_056 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_057 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_062 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_096 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_100 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_094 */
static void thousand_sends_issued_before_the_peer_reads_arrive_in_order_and_complete_once(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 4096, 4096);

    uint32_t lengths[MANY_SENDS];
    uint64_t total = 0;
    for (uint32_t i = 0; i < MANY_SENDS; i++)
    {
        lengths[i] = 200 + (i * 7919u) % 1800u;
        total += lengths[i];
    }
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)total);
    SEND_TRACK track;
    send_track_init(&track, MANY_SENDS);

    uint64_t offset = 0;
    uint64_t slowest = 0;
    for (uint32_t i = 0; i < MANY_SENDS; i++)
    {
        uint64_t elapsed = 0;
        assert_int_equal(send_piece(socket, source, offset, lengths[i], 1 + i % 4, &track.slots[i], &elapsed), ASYNC_SOCKET_SEND_SYNC_OK);
        slowest = (elapsed > slowest) ? elapsed : slowest;
        offset += lengths[i];
    }
    /* The peer has not read a byte: the kernel buffers hold a few KiB, so most sends are queued. */
    unsigned completed_before_reading = atomic_load(&track.done);
    assert_true(completed_before_reading < MANY_SENDS / 2);
    assert_true(slowest < 100);

    plain_read_all(fds[1], STREAM_BASE_A, total);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == MANY_SENDS, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_no_more_bytes(fds[1]);

    async_socket_destroy(socket);
    /* nothing more after destroy */
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_int_equal(close(fds[1]), 0);
    free(source);
    send_track_deinit(&track);
    env_end(&mark);
}

/* ---- 2: 16 MiB to a slow reader ---- */

#define BIG_TOTAL (16u << 20)
#define BIG_SENDS 8

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_017 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_053 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_101 */
static void sixteen_mib_to_a_slow_reader_arrive_exactly_and_send_never_blocks(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 65536, 65536);
    uint8_t* source = make_pattern(STREAM_BASE_A, BIG_TOTAL);
    SEND_TRACK track;
    send_track_init(&track, BIG_SENDS);

    PLAIN_IO reader;
    plain_io_init(&reader, fds[1], STREAM_BASE_A, BIG_TOTAL, 4096, 10);
    plain_io_start(&reader, plain_read_run);

    const uint32_t piece = BIG_TOTAL / BIG_SENDS;
    uint64_t slowest = 0;
    for (uint32_t i = 0; i < BIG_SENDS; i++)
    {
        uint64_t elapsed = 0;
        assert_int_equal(send_piece(socket, source, (uint64_t)i * piece, piece, 1 + i % 3, &track.slots[i], &elapsed), ASYNC_SOCKET_SEND_SYNC_OK);
        slowest = (elapsed > slowest) ? elapsed : slowest;
    }
    /* 16 MiB cannot be in the kernel yet: send_async returned with sends queued */
    assert_true(atomic_load(&track.done) < BIG_SENDS);
    assert_true(slowest < 100);

    plain_io_join_and_check(&reader);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == BIG_SENDS, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_no_more_bytes(fds[1]);

    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    free(source);
    send_track_deinit(&track);
    env_end(&mark);
}

/* ---- 3: full duplex ---- */

#define DUPLEX_TOTAL (8u << 20)
#define DUPLEX_SENDS 32

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_004 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
static void full_duplex_8_mib_each_way_with_receives_and_sends_outstanding(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 65536, 65536);
    ASYNC_SOCKET_HANDLE a = open_socket(fds[0]);
    ASYNC_SOCKET_HANDLE b = open_socket(fds[1]);
    uint8_t* from_a = make_pattern(STREAM_BASE_A, DUPLEX_TOTAL);
    uint8_t* from_b = make_pattern(STREAM_BASE_B, DUPLEX_TOTAL);

    STREAM_RX rx_a; /* what a receives: b's stream */
    STREAM_RX rx_b;
    stream_rx_init(&rx_a, a, STREAM_BASE_B, DUPLEX_TOTAL, 4, 32768, 2);
    stream_rx_init(&rx_b, b, STREAM_BASE_A, DUPLEX_TOTAL, 4, 32768, 3);
    stream_rx_start(&rx_a);
    stream_rx_start(&rx_b);

    SEND_TRACK track_a;
    SEND_TRACK track_b;
    send_track_init(&track_a, DUPLEX_SENDS);
    send_track_init(&track_b, DUPLEX_SENDS);
    const uint32_t piece = DUPLEX_TOTAL / DUPLEX_SENDS;
    for (uint32_t i = 0; i < DUPLEX_SENDS; i++)
    {
        assert_int_equal(send_piece(a, from_a, (uint64_t)i * piece, piece, 1 + i % 4, &track_a.slots[i], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
        assert_int_equal(send_piece(b, from_b, (uint64_t)i * piece, piece, 1 + (i + 1) % 4, &track_b.slots[i], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    }
    /* both directions have sends waiting while receives are posted */
    assert_true(atomic_load(&track_a.done) < DUPLEX_SENDS);
    assert_true(atomic_load(&track_b.done) < DUPLEX_SENDS);

    stream_rx_wait(&rx_a, 8000);
    stream_rx_wait(&rx_b, 8000);
    TEST_WAIT_UNTIL(atomic_load(&track_a.done) == DUPLEX_SENDS && atomic_load(&track_b.done) == DUPLEX_SENDS, 5000);
    send_track_check_all(&track_a, ASYNC_SOCKET_SEND_OK);
    send_track_check_all(&track_b, ASYNC_SOCKET_SEND_OK);

    async_socket_destroy(a);
    async_socket_destroy(b);
    stream_rx_check_closed(&rx_a);
    stream_rx_check_closed(&rx_b);
    stream_rx_deinit(&rx_a);
    stream_rx_deinit(&rx_b);
    send_track_deinit(&track_a);
    send_track_deinit(&track_b);
    free(from_a);
    free(from_b);
    env_end(&mark);
}

/* ---- 4: receives posted together ---- */

#define ORDER_RECEIVES 8
#define ORDER_SIZE 1000

typedef struct ORDER_RX_TAG ORDER_RX;

typedef struct ORDER_SLOT_TAG
{
    ORDER_RX* rx;
    unsigned index;
} ORDER_SLOT;

struct ORDER_RX_TAG
{
    atomic_uint completed;
    atomic_int in_callback;
    atomic_uint overlaps;
    unsigned order[ORDER_RECEIVES];
    int results[ORDER_RECEIVES];
    uint32_t bytes[ORDER_RECEIVES];
    ORDER_SLOT slots[ORDER_RECEIVES];
    uint8_t buffers[ORDER_RECEIVES][ORDER_SIZE];
};

static void order_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    ORDER_SLOT* slot = context;
    ORDER_RX* rx = slot->rx;
    if (atomic_exchange(&rx->in_callback, 1) != 0)
    {
        (void)atomic_fetch_add(&rx->overlaps, 1);
    }
    unsigned position = atomic_load(&rx->completed);
    if (position < ORDER_RECEIVES)
    {
        rx->order[position] = slot->index;
    }
    rx->results[slot->index] = (int)result;
    rx->bytes[slot->index] = bytes;
    /* stay a while, so a second callback of this socket running now would be seen */
    test_sleep_ms(2);
    atomic_store(&rx->in_callback, 0);
    (void)atomic_fetch_add(&rx->completed, 1);
}

/* Posts ORDER_RECEIVES receives, then the peer writes their total from stream offset `base`, at
 * once or (`trickle`) in ORDER_SIZE pieces with pauses. Checks that the receives completed in
 * posting order, that their bytes continue each other, and that their callbacks never overlapped.
 * Returns the bytes the receives took; the caller drains the rest. */
static uint64_t ordered_receives_round(ASYNC_SOCKET_HANDLE socket, int peer, uint64_t base, bool trickle)
{
    ORDER_RX* rx = calloc(1, sizeof(ORDER_RX));
    assert_non_null(rx);
    for (unsigned i = 0; i < ORDER_RECEIVES; i++)
    {
        rx->slots[i].rx = rx;
        rx->slots[i].index = i;
        ASYNC_SOCKET_BUFFER payload = {.buffer = rx->buffers[i], .length = ORDER_SIZE};
        assert_int_equal(async_socket_receive_async(socket, &payload, 1, order_on_receive, &rx->slots[i]), 0);
    }
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&rx->completed), 0);

    const uint64_t total = (uint64_t)ORDER_RECEIVES * ORDER_SIZE;
    if (trickle)
    {
        for (unsigned i = 0; i < ORDER_RECEIVES; i++)
        {
            plain_write_all(peer, base + (uint64_t)i * ORDER_SIZE, ORDER_SIZE);
            test_sleep_ms(1);
        }
    }
    else
    {
        plain_write_all(peer, base, total);
    }
    TEST_WAIT_UNTIL(atomic_load(&rx->completed) == ORDER_RECEIVES, 5000);
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&rx->completed), ORDER_RECEIVES);
    assert_int_equal(atomic_load(&rx->overlaps), 0);

    uint64_t offset = 0;
    for (unsigned i = 0; i < ORDER_RECEIVES; i++)
    {
        assert_int_equal(rx->order[i], i);
        assert_int_equal(rx->results[i], ASYNC_SOCKET_RECEIVE_OK);
        assert_true(rx->bytes[i] > 0 && rx->bytes[i] <= ORDER_SIZE);
        assert_int_equal(test_check_pattern(rx->buffers[i], rx->bytes[i], base + offset), rx->bytes[i]);
        offset += rx->bytes[i];
    }
    assert_true(offset <= total);
    free(rx);
    return offset;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_005 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_073 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_077 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_089 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_093 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_102 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_082 */
static void receives_posted_together_complete_in_posted_order_one_at_a_time(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    const uint64_t round_total = (uint64_t)ORDER_RECEIVES * ORDER_SIZE;

    uint64_t base = STREAM_BASE_A;
    for (int round = 0; round < 4; round++)
    {
        uint64_t taken = ordered_receives_round(socket, fds[1], base, (round % 2) == 1);
        receive_exactly(socket, base + taken, round_total - taken);
        base += round_total;
    }

    env_end_with_socket(socket, fds[1], &mark);
}

/* ---- 5: scattered receive buffers ---- */

#define SCATTER_COUNT 4
#define GUARD 16
static const uint32_t scatter_sizes[SCATTER_COUNT] = {7, 100, 1, 3000};

/* Posts one receive over SCATTER_COUNT buffers of different sizes after `sent` bytes (at most
 * their total) are waiting, and checks each buffer got its part of the stream and nothing more. */
static void scattered_receive_case(ASYNC_SOCKET_HANDLE socket, int peer, int local, uint64_t base, uint32_t sent)
{
    uint8_t* buffers[SCATTER_COUNT];
    ASYNC_SOCKET_BUFFER payload[SCATTER_COUNT];
    for (int i = 0; i < SCATTER_COUNT; i++)
    {
        buffers[i] = malloc(scatter_sizes[i] + GUARD);
        assert_non_null(buffers[i]);
        memset(buffers[i], 0x55, scatter_sizes[i] + GUARD);
        payload[i].buffer = buffers[i];
        payload[i].length = scatter_sizes[i];
    }
    plain_write_all(peer, base, sent);
    TEST_WAIT_UNTIL(bytes_waiting(local) == (int)sent, 2000);

    ONE_RX one;
    atomic_init(&one.done, 0);
    atomic_init(&one.result, -1);
    atomic_init(&one.bytes, 0);
    assert_int_equal(async_socket_receive_async(socket, payload, SCATTER_COUNT, one_rx_on_receive, &one), 0);
    TEST_WAIT_UNTIL(atomic_load(&one.done) != 0, 5000);
    assert_int_equal(atomic_load(&one.result), ASYNC_SOCKET_RECEIVE_OK);
    /* everything was waiting, so the one receive takes all of it */
    assert_int_equal(atomic_load(&one.bytes), sent);

    uint32_t offset = 0;
    for (int i = 0; i < SCATTER_COUNT; i++)
    {
        uint32_t filled = (sent - offset < scatter_sizes[i]) ? sent - offset : scatter_sizes[i];
        assert_int_equal(test_check_pattern(buffers[i], filled, base + offset), filled);
        for (uint32_t j = filled; j < scatter_sizes[i] + GUARD; j++)
        {
            assert_int_equal(buffers[i][j], 0x55);
        }
        offset += filled;
        free(buffers[i]);
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_074 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_073 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_093 */
static void scattered_receive_fills_buffers_in_order(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);

    scattered_receive_case(socket, fds[1], fds[0], STREAM_BASE_A, 3108);        /* fills all four */
    scattered_receive_case(socket, fds[1], fds[0], STREAM_BASE_A + 3108, 2000); /* stops inside the last */
    scattered_receive_case(socket, fds[1], fds[0], STREAM_BASE_A + 5108, 50);   /* stops inside the second */

    env_end_with_socket(socket, fds[1], &mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_074 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_083 */
static void scattered_receive_through_a_custom_transport_fills_buffers_in_order(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    TRANSPORT transport;
    transport_init(&transport, fds[0], 0, 0, 0);
    ASYNC_SOCKET_HANDLE socket = open_socket_transport(fds[0], &transport);

    scattered_receive_case(socket, fds[1], fds[0], STREAM_BASE_A, 3108);
    scattered_receive_case(socket, fds[1], fds[0], STREAM_BASE_A + 3108, 2000);
    scattered_receive_case(socket, fds[1], fds[0], STREAM_BASE_A + 5108, 50);
    /* the buffers were filled by several on_recv calls, one per buffer */
    assert_true(atomic_load(&transport.recv_calls) >= 4);
    assert_int_equal(atomic_load(&transport.wrong_handle), 0);

    env_end_with_socket(socket, fds[1], &mark);
}

/* ---- 8: several threads sending on one socket ---- */

#define SENDER_THREADS 4
#define SENDER_MESSAGES 300
#define MESSAGE_MAGIC 0x4D534721u

typedef struct MESSAGE_HEADER_TAG
{
    uint32_t magic;
    uint32_t thread;
    uint32_t seq;
    uint32_t length;
} MESSAGE_HEADER;

static uint32_t message_body_length(uint32_t thread, uint32_t seq)
{
    return 1 + (seq * 131u + thread * 977u) % 3000u;
}

static uint64_t message_body_base(uint32_t thread, uint32_t seq)
{
    return ((uint64_t)(thread + 1) << 40) | ((uint64_t)seq << 16);
}

typedef struct SENDER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    uint32_t thread;
    pthread_barrier_t* barrier;
    uint8_t* arena;
    SEND_SLOT* slots;
    unsigned sync_failures;
    unsigned queued; /* sends not yet called back when send_async returned */
    pthread_t handle;
} SENDER;

static void* sender_run(void* arg)
{
    SENDER* sender = arg;
    size_t at = 0;
    (void)pthread_barrier_wait(sender->barrier);
    for (uint32_t seq = 0; seq < SENDER_MESSAGES; seq++)
    {
        uint32_t length = message_body_length(sender->thread, seq);
        MESSAGE_HEADER header = {MESSAGE_MAGIC, sender->thread, seq, length};
        uint8_t* message = sender->arena + at;
        (void)memcpy(message, &header, sizeof(header));
        test_fill_pattern(message + sizeof(header), length, message_body_base(sender->thread, seq));
        at += sizeof(header) + length;

        /* the header and up to three body pieces, as separate buffers */
        ASYNC_SOCKET_BUFFER buffers[4];
        uint32_t count = 0;
        buffers[count++] = (ASYNC_SOCKET_BUFFER){message, sizeof(header)};
        uint32_t pieces = 1 + seq % 3;
        pieces = (pieces > length) ? length : pieces;
        uint32_t body_at = 0;
        for (uint32_t i = 0; i < pieces; i++)
        {
            uint32_t size = (i + 1 == pieces) ? length - body_at : 1 + (length - body_at) / (2 * (pieces - i));
            buffers[count++] = (ASYNC_SOCKET_BUFFER){message + sizeof(header) + body_at, size};
            body_at += size;
        }
        if (async_socket_send_async(sender->socket, buffers, count, on_send_tracked, &sender->slots[seq]) != ASYNC_SOCKET_SEND_SYNC_OK)
        {
            sender->sync_failures++;
        }
        else if (atomic_load(&sender->slots[seq].calls) == 0)
        {
            sender->queued++;
        }
    }
    return NULL;
}

typedef struct MESSAGE_READER_TAG
{
    int fd;
    uint32_t messages;
    int error_line;
    pthread_t handle;
} MESSAGE_READER;

static bool read_exact(int fd, uint8_t* buffer, size_t length)
{
    size_t done = 0;
    while (done < length)
    {
        ssize_t got = recv(fd, buffer + done, length - done, 0);
        if (got < 0 && errno == EINTR)
        {
            continue;
        }
        if (got <= 0)
        {
            return false;
        }
        done += (size_t)got;
    }
    return true;
}

/* Parses the interleaved stream: every message must be whole (header then its body, nothing of
 * another message in between) and each thread's messages must come in its own order. */
static void* message_reader_run(void* arg)
{
    MESSAGE_READER* reader = arg;
    uint32_t next_seq[SENDER_THREADS] = {0};
    uint8_t body[4096];
    while (reader->messages < SENDER_THREADS * SENDER_MESSAGES)
    {
        MESSAGE_HEADER header;
        if (!read_exact(reader->fd, (uint8_t*)&header, sizeof(header)))
        {
            reader->error_line = __LINE__;
            return NULL;
        }
        if (header.magic != MESSAGE_MAGIC || header.thread >= SENDER_THREADS ||
            header.seq != next_seq[header.thread] || header.length != message_body_length(header.thread, header.seq))
        {
            reader->error_line = __LINE__;
            return NULL;
        }
        if (!read_exact(reader->fd, body, header.length) ||
            test_check_pattern(body, header.length, message_body_base(header.thread, header.seq)) != header.length)
        {
            reader->error_line = __LINE__;
            return NULL;
        }
        next_seq[header.thread]++;
        reader->messages++;
    }
    return NULL;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_002 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void four_threads_sending_on_one_socket_keep_messages_whole_and_in_order(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 32768, 32768);

    SEND_TRACK track;
    send_track_init(&track, SENDER_THREADS * SENDER_MESSAGES);
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, SENDER_THREADS), 0);
    SENDER senders[SENDER_THREADS];
    for (uint32_t t = 0; t < SENDER_THREADS; t++)
    {
        senders[t] = (SENDER){.socket = socket, .thread = t, .barrier = &barrier,
            .arena = malloc((size_t)SENDER_MESSAGES * (sizeof(MESSAGE_HEADER) + 3001)),
            .slots = &track.slots[t * SENDER_MESSAGES], .sync_failures = 0};
        assert_non_null(senders[t].arena);
    }
    MESSAGE_READER reader = {.fd = fds[1], .messages = 0, .error_line = 0};
    assert_int_equal(pthread_create(&reader.handle, NULL, message_reader_run, &reader), 0);
    for (uint32_t t = 0; t < SENDER_THREADS; t++)
    {
        assert_int_equal(pthread_create(&senders[t].handle, NULL, sender_run, &senders[t]), 0);
    }
    unsigned queued = 0;
    for (uint32_t t = 0; t < SENDER_THREADS; t++)
    {
        assert_int_equal(pthread_join(senders[t].handle, NULL), 0);
        assert_int_equal(senders[t].sync_failures, 0);
        queued += senders[t].queued;
    }
    /* sends waited behind others (the queue, not only inline sends, was exercised) */
    assert_true(queued > 0);
    assert_int_equal(pthread_join(reader.handle, NULL), 0);
    assert_int_equal(reader.error_line, 0);
    assert_int_equal(reader.messages, SENDER_THREADS * SENDER_MESSAGES);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == track.count, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_no_more_bytes(fds[1]);

    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    for (uint32_t t = 0; t < SENDER_THREADS; t++)
    {
        free(senders[t].arena);
    }
    (void)pthread_barrier_destroy(&barrier);
    send_track_deinit(&track);
    env_end(&mark);
}

/* ---- 9: where the receive callback runs ---- */

typedef struct WHERE_RX_TAG
{
    pthread_mutex_t user_lock; /* the caller's own lock, held around receive_async */
    atomic_bool returned;       /* receive_async has returned */
    atomic_int done;
    atomic_int result;
    atomic_uint bytes;
    atomic_bool saw_returned;
    atomic_int lock_error;
    pthread_t thread;
} WHERE_RX;

static void where_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    WHERE_RX* where = context;
    where->thread = pthread_self();
    /* Inside receive_async this thread would hold the error-checking lock already: EDEADLK. */
    int lock_error = pthread_mutex_lock(&where->user_lock);
    atomic_store(&where->lock_error, lock_error);
    atomic_store(&where->saw_returned, atomic_load(&where->returned));
    if (lock_error == 0)
    {
        (void)pthread_mutex_unlock(&where->user_lock);
    }
    atomic_store(&where->result, (int)result);
    atomic_store(&where->bytes, bytes);
    (void)atomic_fetch_add(&where->done, 1);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_018 */
static void receive_callback_runs_on_a_worker_after_receive_async_returned(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    /* data waiting before the socket is even opened */
    plain_write_all(fds[1], STREAM_BASE_A, 100);
    TEST_WAIT_UNTIL(bytes_waiting(fds[0]) == 100, 2000);
    ASYNC_SOCKET_HANDLE socket = open_socket(fds[0]);

    pthread_mutexattr_t attributes;
    assert_int_equal(pthread_mutexattr_init(&attributes), 0);
    assert_int_equal(pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ERRORCHECK), 0);
    uint64_t offset = 0;
    for (int i = 0; i < 20; i++)
    {
        if (i > 0)
        {
            plain_write_all(fds[1], STREAM_BASE_A + offset, 100);
            TEST_WAIT_UNTIL(bytes_waiting(fds[0]) == 100, 2000);
            /* odd rounds: give the worker time to take the readiness edge first */
            if (i % 2 == 1)
            {
                test_sleep_ms(5);
            }
        }
        WHERE_RX where;
        memset(&where, 0, sizeof(where));
        assert_int_equal(pthread_mutex_init(&where.user_lock, &attributes), 0);
        atomic_init(&where.result, -1);
        uint8_t buffer[100];
        ASYNC_SOCKET_BUFFER payload = {.buffer = buffer, .length = sizeof(buffer)};

        assert_int_equal(pthread_mutex_lock(&where.user_lock), 0);
        assert_int_equal(async_socket_receive_async(socket, &payload, 1, where_on_receive, &where), 0);
        bool completed_inside = atomic_load(&where.done) != 0;
        atomic_store(&where.returned, true);
        assert_int_equal(pthread_mutex_unlock(&where.user_lock), 0);

        assert_false(completed_inside);
        TEST_WAIT_UNTIL(atomic_load(&where.done) != 0, 5000);
        assert_int_equal(atomic_load(&where.lock_error), 0);
        assert_false(pthread_equal(where.thread, pthread_self()));
        assert_true(atomic_load(&where.saw_returned));
        assert_int_equal(atomic_load(&where.result), ASYNC_SOCKET_RECEIVE_OK);
        assert_int_equal(atomic_load(&where.bytes), 100);
        assert_int_equal(test_check_pattern(buffer, 100, STREAM_BASE_A + offset), 100);
        offset += 100;
        assert_int_equal(pthread_mutex_destroy(&where.user_lock), 0);
    }
    (void)pthread_mutexattr_destroy(&attributes);

    env_end_with_socket(socket, fds[1], &mark);
}

/* ---- 11: half-close, hang-up and reset ---- */

#define HANGUP_BYTES 20000u
#define HANGUP_RECEIVES 8
#define HANGUP_SIZE 4096u

typedef struct HANGUP_RX_TAG
{
    atomic_uint completed;
    atomic_uint recorded; /* bumped after a callback wrote its order entry: what the test waits for */
    int results[HANGUP_RECEIVES];
    uint32_t bytes[HANGUP_RECEIVES];
    unsigned order[HANGUP_RECEIVES];
    uint8_t buffers[HANGUP_RECEIVES][HANGUP_SIZE];
    struct HANGUP_SLOT_TAG
    {
        struct HANGUP_RX_TAG* rx;
        unsigned index;
    } slots[HANGUP_RECEIVES];
} HANGUP_RX;

static void hangup_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    struct HANGUP_SLOT_TAG* slot = context;
    HANGUP_RX* rx = slot->rx;
    rx->results[slot->index] = (int)result;
    rx->bytes[slot->index] = bytes;
    unsigned position = atomic_fetch_add(&rx->completed, 1);
    if (position < HANGUP_RECEIVES)
    {
        rx->order[position] = slot->index;
    }
    (void)atomic_fetch_add(&rx->recorded, 1);
}

/* Waits until the peer's FIN is at `local` (with all the data before it). */
static void wait_for_fin(int local)
{
    const uint64_t start = test_now_ms();
    for (;;)
    {
        struct pollfd poller = {.fd = local, .events = POLLIN | POLLRDHUP, .revents = 0};
        int ready = poll(&poller, 1, 100);
        if (ready == 1 && (poller.revents & POLLRDHUP) != 0)
        {
            return;
        }
        if (test_now_ms() - start > 2000)
        {
            fail_msg("the peer's FIN did not arrive");
        }
    }
}

typedef enum HANGUP_MODE_TAG
{
    HANGUP_SHUTDOWN_WR,
    HANGUP_CLOSE
} HANGUP_MODE;

/* The peer sends HANGUP_BYTES and hangs up. `open_after` opens the async socket only once the
 * FIN is there; `post_first` posts all receives before the peer sends; otherwise they are posted
 * after the hang-up was seen. The receives must get every byte in order, then ABANDONED with 0
 * bytes, each exactly once. */
static void hangup_case(HANGUP_MODE mode, bool open_after, bool post_first)
{
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    make_pair(fds, 0, 0);
    ASYNC_SOCKET_HANDLE socket = open_after ? NULL : open_socket(fds[0]);
    HANGUP_RX* rx = calloc(1, sizeof(HANGUP_RX));
    assert_non_null(rx);

    if (post_first)
    {
        assert_non_null(socket);
        for (unsigned i = 0; i < HANGUP_RECEIVES; i++)
        {
            rx->slots[i].rx = rx;
            rx->slots[i].index = i;
            ASYNC_SOCKET_BUFFER payload = {.buffer = rx->buffers[i], .length = HANGUP_SIZE};
            assert_int_equal(async_socket_receive_async(socket, &payload, 1, hangup_on_receive, &rx->slots[i]), 0);
        }
    }
    plain_write_all(fds[1], STREAM_BASE_A, HANGUP_BYTES);
    if (mode == HANGUP_SHUTDOWN_WR)
    {
        assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
    }
    else
    {
        assert_int_equal(close(fds[1]), 0);
        fds[1] = -1;
    }

    if (!post_first)
    {
        wait_for_fin(fds[0]);
        if (socket == NULL)
        {
            socket = open_socket(fds[0]);
        }
        /* let a worker take the input and hang-up events before anything is posted */
        test_sleep_ms(30);
        for (unsigned i = 0; i < HANGUP_RECEIVES; i++)
        {
            rx->slots[i].rx = rx;
            rx->slots[i].index = i;
            ASYNC_SOCKET_BUFFER payload = {.buffer = rx->buffers[i], .length = HANGUP_SIZE};
            assert_int_equal(async_socket_receive_async(socket, &payload, 1, hangup_on_receive, &rx->slots[i]), 0);
        }
    }

    TEST_WAIT_UNTIL(atomic_load(&rx->recorded) == HANGUP_RECEIVES, 5000);
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&rx->completed), HANGUP_RECEIVES);
    uint64_t offset = 0;
    unsigned i = 0;
    for (; i < HANGUP_RECEIVES && rx->results[i] == ASYNC_SOCKET_RECEIVE_OK; i++)
    {
        assert_int_equal(rx->order[i], i);
        assert_true(rx->bytes[i] > 0);
        assert_int_equal(test_check_pattern(rx->buffers[i], rx->bytes[i], STREAM_BASE_A + offset), rx->bytes[i]);
        offset += rx->bytes[i];
    }
    /* every byte before the end of the stream, then only ABANDONED with 0 bytes */
    assert_true(offset == HANGUP_BYTES);
    assert_true(i < HANGUP_RECEIVES);
    for (; i < HANGUP_RECEIVES; i++)
    {
        assert_int_equal(rx->order[i], i);
        assert_int_equal(rx->results[i], ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_int_equal(rx->bytes[i], 0);
    }
    /* a receive posted after the end of the stream ends the same way */
    uint8_t extra[16];
    uint32_t extra_bytes = 99;
    assert_int_equal(receive_once(socket, extra, sizeof(extra), &extra_bytes), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(extra_bytes, 0);

    async_socket_destroy(socket);
    assert_int_equal(atomic_load(&rx->completed), HANGUP_RECEIVES);
    if (fds[1] >= 0)
    {
        assert_int_equal(close(fds[1]), 0);
    }
    free(rx);
    env_end(&mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_091 */
static void bytes_before_shutdown_wr_are_received_before_end_of_stream(void** state)
{
    (void)state;
    hangup_case(HANGUP_SHUTDOWN_WR, false, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_091 */
static void bytes_before_peer_close_are_received_before_end_of_stream(void** state)
{
    (void)state;
    hangup_case(HANGUP_CLOSE, false, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_091 */
static void bytes_and_fin_waiting_at_open_are_received_before_end_of_stream(void** state)
{
    (void)state;
    hangup_case(HANGUP_SHUTDOWN_WR, true, false);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_091 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_005 */
static void receives_pending_when_data_and_close_arrive_get_the_bytes_then_end_of_stream(void** state)
{
    (void)state;
    hangup_case(HANGUP_CLOSE, false, true);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_090 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void pending_receive_is_abandoned_when_the_peer_resets(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);

    ONE_RX one;
    atomic_init(&one.done, 0);
    atomic_init(&one.result, -1);
    atomic_init(&one.bytes, 99);
    uint8_t buffer[256];
    ASYNC_SOCKET_BUFFER payload = {.buffer = buffer, .length = sizeof(buffer)};
    assert_int_equal(async_socket_receive_async(socket, &payload, 1, one_rx_on_receive, &one), 0);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&one.done), 0);

    /* close with SO_LINGER {1, 0}: the peer sends RST, not FIN */
    struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close)), 0);
    assert_int_equal(close(fds[1]), 0);

    TEST_WAIT_UNTIL(atomic_load(&one.done) != 0, 5000);
    assert_int_equal(atomic_load(&one.result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&one.bytes), 0);

    async_socket_destroy(socket);
    assert_int_equal(atomic_load(&one.done), 1);
    env_end(&mark);
}

/* ---- 12: notify ---- */

typedef struct NOTIFY_RECORD_TAG
{
    atomic_uint calls;
    atomic_int result;
} NOTIFY_RECORD;

static void on_notify_record(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    NOTIFY_RECORD* record = context;
    atomic_store(&record->result, (int)result);
    (void)atomic_fetch_add(&record->calls, 1);
}

static void notify_record_init(NOTIFY_RECORD* record)
{
    atomic_init(&record->calls, 0);
    atomic_init(&record->result, -1);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_023 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_017 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_019 */
static void notify_in_completes_when_data_is_already_waiting(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    plain_write_all(fds[1], STREAM_BASE_A, 10);
    TEST_WAIT_UNTIL(bytes_waiting(fds[0]) == 10, 2000);
    /* the readiness edge is long taken by a worker, with nothing posted */
    test_sleep_ms(30);

    NOTIFY_RECORD record;
    notify_record_init(&record);
    assert_int_equal(async_socket_notify_io_async(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_record, &record), 0);
    TEST_WAIT_UNTIL(atomic_load(&record.calls) != 0, 2000);
    assert_int_equal(atomic_load(&record.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);

    /* a notify does not consume the data */
    receive_exactly(socket, STREAM_BASE_A, 10);
    async_socket_destroy(socket);
    assert_int_equal(atomic_load(&record.calls), 1);
    assert_int_equal(close(fds[1]), 0);
    env_end(&mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_04_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_017 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_082 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_102 */
static void notify_in_completes_when_data_arrives_later(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);

    NOTIFY_RECORD record;
    notify_record_init(&record);
    assert_int_equal(async_socket_notify_io_async(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_record, &record), 0);
    test_sleep_ms(50);
    assert_int_equal(atomic_load(&record.calls), 0);

    plain_write_all(fds[1], STREAM_BASE_A, 10);
    TEST_WAIT_UNTIL(atomic_load(&record.calls) != 0, 2000);
    assert_int_equal(atomic_load(&record.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
    receive_exactly(socket, STREAM_BASE_A, 10);

    async_socket_destroy(socket);
    assert_int_equal(atomic_load(&record.calls), 1);
    assert_int_equal(close(fds[1]), 0);
    env_end(&mark);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_023 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_010 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_019 */
static void notify_out_completes_on_a_writable_socket(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 0, 0);
    test_sleep_ms(30);

    for (int i = 0; i < 5; i++)
    {
        NOTIFY_RECORD record;
        notify_record_init(&record);
        assert_int_equal(async_socket_notify_io_async(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_record, &record), 0);
        TEST_WAIT_UNTIL(atomic_load(&record.calls) != 0, 2000);
        test_sleep_ms(2);
        assert_int_equal(atomic_load(&record.calls), 1);
        assert_int_equal(atomic_load(&record.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    }

    env_end_with_socket(socket, fds[1], &mark);
}

#define COEXIST_SEND (256u * 1024u)

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_004 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_010 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_017 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_018 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_094 */
static void notify_pending_receive_and_waiting_send_on_one_socket_all_complete(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 4096, 4096);

    /* a send that waits for room: the peer reads nothing yet */
    uint8_t* source = make_pattern(STREAM_BASE_A, COEXIST_SEND);
    SEND_TRACK track;
    send_track_init(&track, 1);
    assert_int_equal(send_piece(socket, source, 0, COEXIST_SEND, 3, &track.slots[0], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    /* a receive with nothing to receive yet */
    ONE_RX one;
    atomic_init(&one.done, 0);
    atomic_init(&one.result, -1);
    atomic_init(&one.bytes, 0);
    uint8_t buffer[1000];
    ASYNC_SOCKET_BUFFER payload = {.buffer = buffer, .length = sizeof(buffer)};
    assert_int_equal(async_socket_receive_async(socket, &payload, 1, one_rx_on_receive, &one), 0);
    /* and notifies for both directions */
    NOTIFY_RECORD notify_in;
    NOTIFY_RECORD notify_out;
    notify_record_init(&notify_in);
    notify_record_init(&notify_out);
    assert_int_equal(async_socket_notify_io_async(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_record, &notify_in), 0);
    assert_int_equal(async_socket_notify_io_async(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, on_notify_record, &notify_out), 0);

    test_sleep_ms(50);
    assert_int_equal(atomic_load(&track.done), 0);
    assert_int_equal(atomic_load(&one.done), 0);
    assert_int_equal(atomic_load(&notify_in.calls), 0);

    /* output first: the peer drains, the send and the OUT notify complete while the receive and
     * the IN notify stay pending */
    plain_read_all(fds[1], STREAM_BASE_A, COEXIST_SEND);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == 1 && atomic_load(&notify_out.calls) != 0, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&notify_out.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&one.done), 0);
    assert_int_equal(atomic_load(&notify_in.calls), 0);

    /* then input: the receive and the IN notify complete */
    plain_write_all(fds[1], STREAM_BASE_B, 1000);
    TEST_WAIT_UNTIL(atomic_load(&one.done) != 0 && atomic_load(&notify_in.calls) != 0, 5000);
    assert_int_equal(atomic_load(&one.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_true(atomic_load(&one.bytes) > 0);
    assert_int_equal(test_check_pattern(buffer, atomic_load(&one.bytes), STREAM_BASE_B), atomic_load(&one.bytes));
    assert_int_equal(atomic_load(&notify_in.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
    receive_exactly(socket, STREAM_BASE_B + atomic_load(&one.bytes), 1000 - atomic_load(&one.bytes));

    /* and again the other way round: a send waits, a receive completes meanwhile */
    SEND_TRACK second;
    send_track_init(&second, 1);
    assert_int_equal(send_piece(socket, source, 0, COEXIST_SEND, 2, &second.slots[0], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    plain_write_all(fds[1], STREAM_BASE_B + 1000, 1000);
    receive_exactly(socket, STREAM_BASE_B + 1000, 1000);
    assert_int_equal(atomic_load(&second.done), 0);
    plain_read_all(fds[1], STREAM_BASE_A, COEXIST_SEND);
    TEST_WAIT_UNTIL(atomic_load(&second.done) == 1, 5000);
    send_track_check_all(&second, ASYNC_SOCKET_SEND_OK);

    async_socket_destroy(socket);
    assert_int_equal(atomic_load(&one.done), 1);
    assert_int_equal(atomic_load(&notify_in.calls), 1);
    assert_int_equal(atomic_load(&notify_out.calls), 1);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    send_track_check_all(&second, ASYNC_SOCKET_SEND_OK);
    assert_int_equal(close(fds[1]), 0);
    free(source);
    send_track_deinit(&track);
    send_track_deinit(&second);
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(thousand_sends_issued_before_the_peer_reads_arrive_in_order_and_complete_once),
    cmocka_unit_test(sixteen_mib_to_a_slow_reader_arrive_exactly_and_send_never_blocks),
    cmocka_unit_test(full_duplex_8_mib_each_way_with_receives_and_sends_outstanding),
    cmocka_unit_test(receives_posted_together_complete_in_posted_order_one_at_a_time),
    cmocka_unit_test(scattered_receive_fills_buffers_in_order),
    cmocka_unit_test(scattered_receive_through_a_custom_transport_fills_buffers_in_order),
    cmocka_unit_test(four_threads_sending_on_one_socket_keep_messages_whole_and_in_order),
    cmocka_unit_test(receive_callback_runs_on_a_worker_after_receive_async_returned),
    cmocka_unit_test(bytes_before_shutdown_wr_are_received_before_end_of_stream),
    cmocka_unit_test(bytes_before_peer_close_are_received_before_end_of_stream),
    cmocka_unit_test(bytes_and_fin_waiting_at_open_are_received_before_end_of_stream),
    cmocka_unit_test(receives_pending_when_data_and_close_arrive_get_the_bytes_then_end_of_stream),
    cmocka_unit_test(pending_receive_is_abandoned_when_the_peer_resets),
    cmocka_unit_test(notify_in_completes_when_data_is_already_waiting),
    cmocka_unit_test(notify_in_completes_when_data_arrives_later),
    cmocka_unit_test(notify_out_completes_on_a_writable_socket),
    cmocka_unit_test(notify_pending_receive_and_waiting_send_on_one_socket_all_complete),
};

TEST_MAIN(tests)
