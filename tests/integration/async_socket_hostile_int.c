/* Integration test: hostile peers over loopback.
 *
 * - A peer that never reads: sends stay pending with megabytes outstanding, and the heap does not
 *   grow with them, because the library keeps pointers to the caller's buffers and copies no
 *   payload; a close then abandons every one of them promptly.
 * - A peer that reads one byte per millisecond: every byte arrives, in order, every send is
 *   called back once.
 * - A reset (SO_LINGER 0) and a half-close (shutdown SHUT_WR) in the middle of a stream: every
 *   pending operation completes by itself, none hangs, and nothing leaks. */
#include <malloc.h>

#include "async_socket_data_helpers.h"
#include "test_main.h"

#define HOSTILE_SEND_SIZE (64u * 1024u)
#define HOSTILE_SENDS 64u /* 4 MiB outstanding */

/* Bytes in use on the heap (every arena); 0 where a sanitizer's allocator replaces glibc's. */
static int64_t heap_in_use(void)
{
    struct mallinfo2 info = mallinfo2();
    return (int64_t)info.uordblks;
}

static void post_sends(ASYNC_SOCKET_HANDLE socket, uint8_t* source, uint32_t count, uint32_t size, SEND_TRACK* track)
{
    for (uint32_t i = 0; i < count; i++)
    {
        assert_int_equal(send_piece(socket, source, (uint64_t)i * size, size, 1 + i % 3, &track->slots[i], NULL),
                         ASYNC_SOCKET_SEND_SYNC_OK);
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_045 */
static void never_reading_peer_keeps_megabytes_pending_without_the_heap_growing(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 16384, 16384);
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)HOSTILE_SENDS * HOSTILE_SEND_SIZE);
    SEND_TRACK track;
    send_track_init(&track, HOSTILE_SENDS);

    int64_t heap_before = heap_in_use();
    int64_t allocations_before = sys_fault_live_allocations();
    post_sends(socket, source, HOSTILE_SENDS, HOSTILE_SEND_SIZE, &track);
    test_sleep_ms(100);
    int64_t heap_growth = heap_in_use() - heap_before;
    int64_t allocations_growth = sys_fault_live_allocations() - allocations_before;
    uint64_t total = (uint64_t)HOSTILE_SENDS * HOSTILE_SEND_SIZE;
    uint64_t in_kernel = (uint64_t)bytes_waiting(fds[1]);
    unsigned completed = atomic_load(&track.done);
    (void)printf("HOSTILE: never-reading peer: %llu bytes posted, %llu in the peer's queue, %u of %u sends done, "
                 "heap growth %lld bytes, library allocations +%lld\n",
                 (unsigned long long)total, (unsigned long long)in_kernel, completed, HOSTILE_SENDS,
                 (long long)heap_growth, (long long)allocations_growth);
    /* Most of the 4 MiB is still pending, and the heap grew by (at most) per-operation records. */
    assert_true(total - in_kernel > 3u * 1024u * 1024u);
    assert_true(completed < HOSTILE_SENDS / 2);
    assert_true(heap_growth < 64 * 1024);
    /* The same under valgrind or ASan, whose allocators mallinfo2 does not see: at most one
     * library allocation (an operation record) per pending send. */
    assert_true(allocations_growth <= (int64_t)HOSTILE_SENDS);

    /* The peer finally reads: every byte arrives in order, every send is called back OK once. */
    plain_read_all(fds[1], STREAM_BASE_A, total);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == HOSTILE_SENDS, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_no_more_bytes(fds[1]);

    async_socket_close(socket);
    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    send_track_deinit(&track);
    free(source);
    env_end(&mark);
}

static void never_reading_peer_close_abandons_every_pending_send_at_once(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 16384, 16384);
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)HOSTILE_SENDS * HOSTILE_SEND_SIZE);
    SEND_TRACK track;
    send_track_init(&track, HOSTILE_SENDS);
    post_sends(socket, source, HOSTILE_SENDS, HOSTILE_SEND_SIZE, &track);
    test_sleep_ms(50);
    unsigned done_before_close = atomic_load(&track.done);

    uint64_t start = test_now_ms();
    async_socket_close(socket);
    uint64_t close_ms = test_now_ms() - start;
    /* close calls every pending send back before it returns */
    assert_int_equal(atomic_load(&track.done), HOSTILE_SENDS);
    /* not a speed check: close must not wait for the peer to read (a lingering close would take
     * seconds or for ever); the bound leaves room for a loaded machine */
    assert_true(close_ms < 5000);
    assert_true(atomic_load(&track.abandoned) >= HOSTILE_SENDS - done_before_close - 1);
    for (uint32_t i = 0; i < HOSTILE_SENDS; i++)
    {
        assert_int_equal(atomic_load(&track.slots[i].calls), 1);
    }

    /* What did reach the peer is an exact prefix of the stream. */
    int queued = bytes_waiting(fds[1]);
    assert_true(queued > 0);
    uint8_t* got = malloc((size_t)queued);
    assert_non_null(got);
    test_read_exact(fds[1], got, (size_t)queued);
    assert_int_equal(test_check_pattern(got, (size_t)queued, STREAM_BASE_A), (size_t)queued);
    free(got);

    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    send_track_deinit(&track);
    free(source);
    env_end(&mark);
}

static void peer_reading_one_byte_per_millisecond_gets_every_byte_in_order(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 4096, 2048);
    const uint32_t sends = 10;
    const uint32_t size = 400;
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)sends * size);
    SEND_TRACK track;
    send_track_init(&track, sends);
    /* A receive stays pending the whole time: the slow peer never writes. */
    ONE_RX rx;
    uint8_t rx_buffer[64];
    one_rx_post(socket, &rx, rx_buffer, sizeof(rx_buffer));

    PLAIN_IO reader;
    plain_io_init(&reader, fds[1], STREAM_BASE_A, (uint64_t)sends * size, 1, 1000);
    plain_io_start(&reader, plain_read_run);
    post_sends(socket, source, sends, size, &track);
    plain_io_join_and_check(&reader);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == sends, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_no_more_bytes(fds[1]);
    assert_int_equal(atomic_load(&rx.done), 0);

    async_socket_close(socket);
    assert_int_equal(atomic_load(&rx.done), 1);
    assert_int_equal(atomic_load(&rx.result), (int)ASYNC_SOCKET_RECEIVE_ABANDONED);
    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    send_track_deinit(&track);
    free(source);
    env_end(&mark);
}

/* Closes the peer end so that it sends a reset instead of a FIN. */
static void close_with_reset(int fd)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
    assert_int_equal(close(fd), 0);
}

static void refused_send_gets_no_callback(ASYNC_SOCKET_HANDLE socket, uint8_t* source)
{
    SEND_TRACK late;
    send_track_init(&late, 1);
    ASYNC_SOCKET_SEND_SYNC_RESULT result = send_piece(socket, source, 0, 100, 1, &late.slots[0], NULL);
    if (result == ASYNC_SOCKET_SEND_SYNC_OK)
    {
        /* The library may not know yet that the connection is gone: then the send is called back. */
        TEST_WAIT_UNTIL(atomic_load(&late.done) == 1, 3000);
        assert_int_not_equal(atomic_load(&late.slots[0].result), (int)ASYNC_SOCKET_SEND_OK);
    }
    else
    {
        test_sleep_ms(20);
        assert_int_equal(atomic_load(&late.done), 0);
    }
    send_track_deinit(&late);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_046 */
static void reset_in_the_middle_of_a_stream_completes_every_pending_operation(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 16384, 16384);
    const uint32_t sends = 32;
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)sends * HOSTILE_SEND_SIZE);
    SEND_TRACK track;
    send_track_init(&track, sends);
    ONE_RX rx;
    uint8_t rx_buffer[256];
    one_rx_post(socket, &rx, rx_buffer, sizeof(rx_buffer));
    post_sends(socket, source, sends, HOSTILE_SEND_SIZE, &track);

    /* The peer takes part of the stream, checks it, and resets the connection. */
    plain_read_all(fds[1], STREAM_BASE_A, 200000);
    close_with_reset(fds[1]);

    /* Nobody calls close: the reset alone must complete every pending operation. */
    TEST_WAIT_UNTIL(atomic_load(&track.done) == sends && atomic_load(&rx.done) == 1, 3000);
    assert_int_equal(atomic_load(&rx.result), (int)ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&rx.bytes), 0);
    for (uint32_t i = 0; i < sends; i++)
    {
        assert_int_equal(atomic_load(&track.slots[i].calls), 1);
    }
    assert_int_equal(atomic_load(&track.errors), 0);
    assert_true(atomic_load(&track.abandoned) > 0);
    refused_send_gets_no_callback(socket, source);

    async_socket_close(socket);
    async_socket_destroy(socket);
    send_track_deinit(&track);
    free(source);
    env_end(&mark);
}

/* One of several receives posted together: its result, bytes and completion rank. */
typedef struct RANKED_RX_TAG
{
    atomic_uint* next_rank;
    atomic_int result;
    atomic_uint bytes;
    atomic_uint rank;
    atomic_uint calls;
    uint8_t buffer[4096];
} RANKED_RX;

static void ranked_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    RANKED_RX* rx = context;
    atomic_store(&rx->result, (int)result);
    atomic_store(&rx->bytes, bytes);
    atomic_store(&rx->rank, atomic_fetch_add(rx->next_rank, 1));
    (void)atomic_fetch_add(&rx->calls, 1);
}

/* Every one of the first `count` receives has been called back, its rank and result stored: what
 * a test waits for, rather than next_rank, which a callback bumps before it stores those. */
static bool ranked_all_called(RANKED_RX* rxs, int count)
{
    for (int i = 0; i < count; i++)
    {
        if (atomic_load(&rxs[i].calls) == 0)
        {
            return false;
        }
    }
    return true;
}

#define HALF_CLOSE_RECEIVES 4
#define HALF_CLOSE_PEER_BYTES 6000u

/* The OK receives come first, in posting order, and hold the peer's bytes in order; the rest end
 * with ABANDONED and 0 bytes (the end of stream). */
static void check_ranked_receives(RANKED_RX* rxs, int count, uint64_t base, uint64_t expected)
{
    uint64_t at = 0;
    bool ended = false;
    for (int i = 0; i < count; i++)
    {
        assert_int_equal(atomic_load(&rxs[i].calls), 1);
        assert_int_equal(atomic_load(&rxs[i].rank), (unsigned)i);
        uint32_t bytes = atomic_load(&rxs[i].bytes);
        if (atomic_load(&rxs[i].result) == (int)ASYNC_SOCKET_RECEIVE_OK)
        {
            assert_false(ended);
            assert_int_equal(test_check_pattern(rxs[i].buffer, bytes, base + at), bytes);
            at += bytes;
        }
        else
        {
            assert_int_equal(atomic_load(&rxs[i].result), (int)ASYNC_SOCKET_RECEIVE_ABANDONED);
            assert_int_equal(bytes, 0);
            ended = true;
        }
    }
    assert_true(ended);
    assert_true(at == expected);
}

static void half_close_in_the_middle_of_a_stream_ends_receives_and_keeps_sending(void** state)
{
    (void)state;
    LEAK_MARK mark;
    int fds[2];
    ASYNC_SOCKET_HANDLE socket = env_begin_with_socket(&mark, fds, 16384, 16384);
    const uint32_t sends = 32;
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)(sends + 1) * HOSTILE_SEND_SIZE);
    SEND_TRACK track;
    send_track_init(&track, sends + 1);
    atomic_uint next_rank;
    atomic_init(&next_rank, 0);
    RANKED_RX* rxs = calloc(HALF_CLOSE_RECEIVES + 1, sizeof(RANKED_RX));
    assert_non_null(rxs);
    for (int i = 0; i < HALF_CLOSE_RECEIVES; i++)
    {
        rxs[i].next_rank = &next_rank;
        ASYNC_SOCKET_BUFFER payload = {.buffer = rxs[i].buffer, .length = sizeof(rxs[i].buffer)};
        assert_int_equal(async_socket_receive_async(socket, &payload, 1, ranked_on_receive, &rxs[i]), 0);
    }
    post_sends(socket, source, sends, HOSTILE_SEND_SIZE, &track);

    /* Mid-stream (our sends pending), the peer writes a little and shuts its side down. */
    plain_write_all(fds[1], STREAM_BASE_B, HALF_CLOSE_PEER_BYTES);
    assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
    /* the callbacks' calls, not next_rank: the last callback has taken its rank from next_rank
     * before it stores the rank and counts itself, which check_ranked_receives reads */
    TEST_WAIT_UNTIL(ranked_all_called(rxs, HALF_CLOSE_RECEIVES), 3000);
    check_ranked_receives(rxs, HALF_CLOSE_RECEIVES, STREAM_BASE_B, HALF_CLOSE_PEER_BYTES);
    assert_true(atomic_load(&track.done) < sends); /* the sends were still pending */

    /* A receive posted after the end of stream ends too, and the other direction still works. */
    rxs[HALF_CLOSE_RECEIVES].next_rank = &next_rank;
    ASYNC_SOCKET_BUFFER payload = {.buffer = rxs[HALF_CLOSE_RECEIVES].buffer, .length = 16};
    assert_int_equal(async_socket_receive_async(socket, &payload, 1, ranked_on_receive, &rxs[HALF_CLOSE_RECEIVES]), 0);
    assert_int_equal(send_piece(socket, source, (uint64_t)sends * HOSTILE_SEND_SIZE, HOSTILE_SEND_SIZE, 2,
                                &track.slots[sends], NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    plain_read_all(fds[1], STREAM_BASE_A, (uint64_t)(sends + 1) * HOSTILE_SEND_SIZE);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == sends + 1 && ranked_all_called(rxs, HALF_CLOSE_RECEIVES + 1), 3000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&rxs[HALF_CLOSE_RECEIVES].result), (int)ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_no_more_bytes(fds[1]);

    async_socket_close(socket);
    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    free(rxs);
    send_track_deinit(&track);
    free(source);
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(never_reading_peer_keeps_megabytes_pending_without_the_heap_growing),
    cmocka_unit_test(never_reading_peer_close_abandons_every_pending_send_at_once),
    cmocka_unit_test(peer_reading_one_byte_per_millisecond_gets_every_byte_in_order),
    cmocka_unit_test(reset_in_the_middle_of_a_stream_completes_every_pending_operation),
    cmocka_unit_test(half_close_in_the_middle_of_a_stream_ends_receives_and_keeps_sending),
};

TEST_MAIN(tests)
