/* Stress: 8 threads sending on one shared socket while two of them close it, round after round.
 *
 * Every send is a framed message (a header naming thread and sequence number, then a payload
 * pattern of its own) given as two buffers. A plain reader thread collects the peer's byte stream
 * until the end of stream, then the test parses it: per thread the messages must arrive whole and
 * in sequence without gaps, every send called back OK must be on the wire, and only the very last
 * message of the stream may be cut short (a send that close abandoned part way). Every accepted
 * send must be called back exactly once, none of the refused ones. Every other round runs through
 * a custom transport that cuts each send short and now and then fails it with EINTR. */
#include "stress_util.h"
#include "c_pal/logger.h"
#include "c_pal/platform_linux.h"
#include "test_main.h"

#define SHARED_THREADS 8u
#define SHARED_FULL_ROUNDS 300u
#define SHARED_MAX_SENDS 400u     /* per thread per round */
#define SHARED_WINDOW 4u          /* sends a thread keeps outstanding */
#define SHARED_MAX_PAYLOAD 3000u
#define SHARED_MAGIC 0x5354524du
#define SHARED_WORKERS 4u

typedef struct FRAME_HEADER_TAG
{
    uint32_t magic;
    uint32_t thread;
    uint32_t seq;
    uint32_t length;
} FRAME_HEADER;

typedef struct SENDER_TAG SENDER;

typedef struct SEND_RECORD_TAG
{
    SENDER* sender;
    uint32_t slot;
    atomic_uint calls;
    atomic_int result;
} SEND_RECORD;

struct SENDER_TAG
{
    uint32_t index;
    ASYNC_SOCKET_HANDLE socket;
    uint32_t close_after;    /* close the socket after this many sends (UINT32_MAX: never) */
    uint32_t accepted;       /* sends that returned SYNC_OK */
    uint32_t refused;        /* NOT_OPEN, which ends the thread's round */
    uint32_t errors;         /* SYNC_ERROR, or a window that never freed */
    atomic_uint busy[SHARED_WINDOW];
    uint8_t frames[SHARED_WINDOW][sizeof(FRAME_HEADER) + SHARED_MAX_PAYLOAD];
    SEND_RECORD records[SHARED_MAX_SENDS];
    pthread_t thread;
};

static uint32_t payload_length(uint32_t thread, uint32_t seq)
{
    return 1u + (seq * 977u + thread * 131u) % SHARED_MAX_PAYLOAD;
}

static uint64_t payload_base(uint32_t thread, uint32_t seq)
{
    return ((uint64_t)thread << 40) | ((uint64_t)seq << 16);
}

static void on_frame_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    SEND_RECORD* record = context;
    atomic_store(&record->result, (int)result);
    (void)atomic_fetch_add(&record->calls, 1);
    atomic_store_explicit(&record->sender->busy[record->slot], 0, memory_order_release);
}

/* A free window slot, waiting (bounded) for one; SHARED_WINDOW when none freed in 10 s. */
static uint32_t wait_for_slot(SENDER* sender)
{
    uint64_t start = test_now_ms();
    for (;;)
    {
        for (uint32_t slot = 0; slot < SHARED_WINDOW; slot++)
        {
            if (atomic_load_explicit(&sender->busy[slot], memory_order_acquire) == 0)
            {
                return slot;
            }
        }
        if (test_now_ms() - start > 10000)
        {
            return SHARED_WINDOW;
        }
        (void)usleep(50);
    }
}

static void* sender_run(void* arg)
{
    SENDER* sender = arg;
    for (uint32_t seq = 0; seq < SHARED_MAX_SENDS; seq++)
    {
        if (seq == sender->close_after)
        {
            async_socket_close(sender->socket);
        }
        uint32_t slot = wait_for_slot(sender);
        if (slot == SHARED_WINDOW)
        {
            sender->errors++;
            break;
        }
        uint8_t* frame = sender->frames[slot];
        FRAME_HEADER header = {.magic = SHARED_MAGIC, .thread = sender->index, .seq = seq,
                               .length = payload_length(sender->index, seq)};
        memcpy(frame, &header, sizeof(header));
        test_fill_pattern(frame + sizeof(header), header.length, payload_base(sender->index, seq));
        ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = frame, .length = sizeof(header)},
                                          {.buffer = frame + sizeof(header), .length = header.length}};
        SEND_RECORD* record = &sender->records[seq];
        record->sender = sender;
        record->slot = slot;
        atomic_store(&sender->busy[slot], 1);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = async_socket_send_async(sender->socket, buffers, 2, on_frame_sent, record);
        if (result != ASYNC_SOCKET_SEND_SYNC_OK)
        {
            atomic_store(&sender->busy[slot], 0);
            sender->refused += (result == ASYNC_SOCKET_SEND_SYNC_NOT_OPEN) ? 1u : 0u;
            sender->errors += (result == ASYNC_SOCKET_SEND_SYNC_NOT_OPEN) ? 0u : 1u;
            break;
        }
        sender->accepted++;
    }
    return NULL;
}

/* The peer: reads everything until the end of stream into a growing buffer. */
typedef struct COLLECTOR_TAG
{
    int fd;
    uint8_t* data;
    size_t size;
    size_t capacity;
    int error;
    pthread_t thread;
} COLLECTOR;

static void* collector_run(void* arg)
{
    COLLECTOR* collector = arg;
    for (;;)
    {
        if (collector->capacity - collector->size < 65536)
        {
            size_t capacity = collector->capacity * 2 + 65536;
            uint8_t* grown = realloc(collector->data, capacity);
            if (grown == NULL)
            {
                collector->error = ENOMEM;
                return NULL;
            }
            collector->data = grown;
            collector->capacity = capacity;
        }
        ssize_t got = recv(collector->fd, collector->data + collector->size, collector->capacity - collector->size, 0);
        if (got < 0 && errno == EINTR)
        {
            continue;
        }
        if (got <= 0)
        {
            collector->error = (got == 0) ? 0 : errno;
            return NULL;
        }
        collector->size += (size_t)got;
    }
}

typedef struct WIRE_CHECK_TAG
{
    uint32_t next_seq[SHARED_THREADS]; /* whole messages seen per thread */
    uint64_t messages;
    uint32_t partial;                  /* 1 when the stream ended inside a message */
    const char* problem;               /* NULL when the stream is good */
} WIRE_CHECK;

/* Parses the collected stream; see the file comment for what it must look like. */
static void check_wire(const uint8_t* data, size_t size, WIRE_CHECK* check)
{
    memset(check, 0, sizeof(*check));
    size_t at = 0;
    while (at < size && check->problem == NULL)
    {
        FRAME_HEADER header;
        if (size - at < sizeof(header))
        {
            check->partial = 1;
            break;
        }
        memcpy(&header, data + at, sizeof(header));
        if (header.magic != SHARED_MAGIC || header.thread >= SHARED_THREADS)
        {
            check->problem = "bad header (a message was cut or interleaved)";
            break;
        }
        if (header.seq != check->next_seq[header.thread] || header.length != payload_length(header.thread, header.seq))
        {
            check->problem = "sequence gap, reordering or wrong length";
            break;
        }
        size_t available = size - at - sizeof(header);
        size_t length = (available < header.length) ? available : header.length;
        if (test_check_pattern(data + at + sizeof(header), length, payload_base(header.thread, header.seq)) != length)
        {
            check->problem = "payload bytes wrong";
            break;
        }
        if (length < header.length)
        {
            check->partial = 1;
            break;
        }
        check->next_seq[header.thread]++;
        check->messages++;
        at += sizeof(header) + header.length;
    }
}

typedef struct ROUND_TOTALS_TAG
{
    uint64_t accepted;
    uint64_t refused;
    uint64_t ok;
    uint64_t abandoned;
    uint64_t messages_on_wire;
    uint64_t partial;
    uint64_t bytes;
    uint64_t transport_calls;
} ROUND_TOTALS;

/* Exactly one callback per accepted send; OK ones are all on the wire, whole. */
static void check_callbacks(SENDER* senders, const WIRE_CHECK* wire, ROUND_TOTALS* totals, uint32_t round)
{
    for (uint32_t t = 0; t < SHARED_THREADS; t++)
    {
        SENDER* sender = &senders[t];
        if (sender->errors != 0)
        {
            fail_msg("round %u thread %u: %u send errors", round, t, sender->errors);
        }
        if (wire->next_seq[t] > sender->accepted)
        {
            fail_msg("round %u thread %u: %u messages on the wire, %u accepted", round, t, wire->next_seq[t], sender->accepted);
        }
        for (uint32_t seq = 0; seq < sender->accepted; seq++)
        {
            unsigned calls = atomic_load(&sender->records[seq].calls);
            int result = atomic_load(&sender->records[seq].result);
            if (calls != 1)
            {
                fail_msg("round %u thread %u send %u: %u callbacks", round, t, seq, calls);
            }
            if (result == (int)ASYNC_SOCKET_SEND_OK && seq >= wire->next_seq[t])
            {
                fail_msg("round %u thread %u send %u: called back OK but not whole on the wire", round, t, seq);
            }
            totals->ok += (result == (int)ASYNC_SOCKET_SEND_OK) ? 1u : 0u;
            totals->abandoned += (result == (int)ASYNC_SOCKET_SEND_ABANDONED) ? 1u : 0u;
            assert_true(result == (int)ASYNC_SOCKET_SEND_OK || result == (int)ASYNC_SOCKET_SEND_ABANDONED);
        }
        totals->accepted += sender->accepted;
        totals->refused += sender->refused;
    }
}

static void one_round(uint32_t round, SENDER* senders, ROUND_TOTALS* totals)
{
    int fds[2];
    /* Small buffers keep sends pending, so the closes find queues to abandon. */
    make_pair(fds, 8192, 8192);
    /* Odd rounds go through a custom transport that takes at most ~1-3 KB per call and fails
     * every 7th call with EINTR, so payloads are cut at many more places. */
    TRANSPORT transport;
    transport_init(&transport, fds[0], 1000u + (round % 7u) * 300u, 0, 7);
    ASYNC_SOCKET_HANDLE socket = (round % 2u == 1u) ? open_socket_transport(fds[0], &transport) : open_socket(fds[0]);
    COLLECTOR collector = {.fd = fds[1]};
    assert_int_equal(pthread_create(&collector.thread, NULL, collector_run, &collector), 0);

    uint32_t closer = round % SHARED_THREADS;
    uint32_t second_closer = (round + 3) % SHARED_THREADS;
    for (uint32_t t = 0; t < SHARED_THREADS; t++)
    {
        SENDER* sender = &senders[t];
        memset(sender, 0, sizeof(*sender));
        sender->index = t;
        sender->socket = socket;
        sender->close_after = (t == closer) ? 5u + (round * 37u) % 200u :
                              (t == second_closer) ? 6u + (round * 53u) % 200u : UINT32_MAX;
        assert_int_equal(pthread_create(&sender->thread, NULL, sender_run, sender), 0);
    }
    for (uint32_t t = 0; t < SHARED_THREADS; t++)
    {
        assert_int_equal(pthread_join(senders[t].thread, NULL), 0);
    }
    /* A thread that never reached its close point (it ran out of sends) still leaves the socket
     * open; close it here so the collector sees the end of the stream. */
    async_socket_close(socket);
    assert_int_equal(pthread_join(collector.thread, NULL), 0);
    assert_int_equal(collector.error, 0);

    WIRE_CHECK wire;
    check_wire(collector.data, collector.size, &wire);
    if (wire.problem != NULL)
    {
        fail_msg("round %u: %s", round, wire.problem);
    }
    check_callbacks(senders, &wire, totals, round);
    assert_int_equal(atomic_load(&transport.wrong_handle), 0);
    totals->transport_calls += atomic_load(&transport.send_calls);
    totals->messages_on_wire += wire.messages;
    totals->partial += wire.partial;
    totals->bytes += collector.size;
    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    free(collector.data);
}

static void eight_threads_send_and_close_shared_sockets(void** state)
{
    (void)state;
    uint32_t rounds = stress_scaled(SHARED_FULL_ROUNDS, 4);
    SENDER* senders = calloc(SHARED_THREADS, sizeof(SENDER));
    assert_non_null(senders);
    /* Several workers, so callbacks run on other threads while the senders run. */
    assert_int_equal(platform_linux_set_worker_count(SHARED_WORKERS), 0);
    /* Every send refused after a close logs a warning, which is expected here by the thousand. */
    ASYNC_SOCKET_LOG_LEVEL level = async_socket_log_get_level();
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_ERROR);
    LEAK_MARK mark;
    env_begin(&mark);
    ROUND_TOTALS totals;
    memset(&totals, 0, sizeof(totals));
    uint64_t start = test_now_ms();
    for (uint32_t round = 0; round < rounds; round++)
    {
        one_round(round, senders, &totals);
    }
    double seconds = stress_seconds_since(start);
    env_end(&mark);
    async_socket_log_set_level(level);
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    free(senders);
    stress_report("shared threads=%u rounds=%u sends_accepted=%llu refused_after_close=%llu ok=%llu abandoned=%llu "
                  "messages_on_wire=%llu cut_last_message=%llu bytes=%llu custom_transport_send_calls=%llu callbacks_exactly_once=yes "
                  "order_violations=0 seconds=%.2f",
                  SHARED_THREADS, rounds, (unsigned long long)totals.accepted, (unsigned long long)totals.refused,
                  (unsigned long long)totals.ok, (unsigned long long)totals.abandoned,
                  (unsigned long long)totals.messages_on_wire, (unsigned long long)totals.partial,
                  (unsigned long long)totals.bytes, (unsigned long long)totals.transport_calls, seconds);
    assert_true(totals.ok + totals.abandoned == totals.accepted);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(eight_threads_send_and_close_shared_sockets),
};

TEST_MAIN(tests)
