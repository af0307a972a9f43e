/* Black-box tests of async_socket's documented promises (docs/api.md, README.md), from outside:
 * the public API, real loopback sockets and a raw POSIX peer written here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "blackbox_util.h"

#include "../common/test_main.h"

/* docs/api.md, open: "The callback has already run when it returns ... with ASYNC_SOCKET_OPEN_OK". */
static void open_completes_inline_with_ok(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fd);
    assert_non_null(s);
    BB_OP op;
    bb_op_init(&op, NULL);
    assert_int_equal(async_socket_open_async(s, bb_on_open, &op), 0);
    assert_int_equal(bb_calls(&op), 1);
    assert_int_equal(op.result, ASYNC_SOCKET_OPEN_OK);
    assert_true(pthread_equal(op.thread, pthread_self()));
    /* open makes the fd non-blocking and close-on-exec */
    assert_true((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    async_socket_destroy(s);
    assert_false(bb_fd_is_open(fd));
    (void)close(peer);
    BB_ASSERT_LOG(0, 0);
}

/* send: "Sends buffer_count buffers, in order, as one contiguous run of bytes"; no upper limit on
 * the count is documented, so 1024 buffers of uneven sizes must arrive as one run. */
static void send_of_1024_buffers_arrives_in_order(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    enum { COUNT = 1024 };
    static unsigned char data[COUNT * 97];
    static ASYNC_SOCKET_BUFFER bufs[COUNT];
    size_t total = 0;
    for (uint32_t i = 0; i < COUNT; i++)
    {
        bufs[i].buffer = data + total;
        bufs[i].length = 1 + (i * 37) % 97;
        total += bufs[i].length;
    }
    bb_fill(data, total, 0);
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP op;
    bb_op_init(&op, &done);
    assert_int_equal(async_socket_send_async(s, bufs, COUNT, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_OK);
    unsigned char* got = malloc(total);
    assert_non_null(got);
    assert_int_equal(bb_read_n(peer, got, total, BB_WAIT_MS), total);
    assert_int_equal(bb_check(got, total, 0), total);
    assert_int_equal(bb_counter_wait(&done, 1, BB_WAIT_MS), 1);
    assert_int_equal(op.result, ASYNC_SOCKET_SEND_OK);
    free(got);
    async_socket_destroy(s);
    assert_int_equal(bb_calls(&op), 1);
    (void)close(peer);
    bb_counter_deinit(&done);
    BB_ASSERT_LOG(0, 0);
}

/* receive: "completes as soon as some bytes have arrived, like recv()"; a peer that sends one
 * byte per segment must still deliver every byte, in order, and never a callback off the caller. */
static void peer_sending_one_byte_at_a_time_is_received_whole(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    enum { TOTAL = 300 };
    unsigned char sent[TOTAL], got[TOTAL];
    bb_fill(sent, TOTAL, 0);
    size_t have = 0;
    size_t next_send = 0;
    int64_t end = bb_now_ms() + BB_WAIT_MS;
    while (have < TOTAL && bb_now_ms() < end)
    {
        BB_COUNTER done;
        bb_counter_init(&done);
        BB_OP op;
        bb_op_init(&op, &done);
        ASYNC_SOCKET_BUFFER b = { got + have, (uint32_t)(TOTAL - have) };
        assert_int_equal(async_socket_receive_async(s, &b, 1, bb_on_receive, &op), 0);
        while (bb_counter_get(&done) == 0 && next_send < TOTAL && bb_now_ms() < end)
        {
            assert_int_equal(bb_write_all(peer, sent + next_send, 1), 0);
            next_send++;
            bb_sleep_ms(next_send % 16 == 0 ? 1 : 0);
        }
        assert_int_equal(bb_counter_wait(&done, 1, BB_WAIT_MS), 1);
        assert_int_equal(op.result, ASYNC_SOCKET_RECEIVE_OK);
        assert_true(op.bytes >= 1 && op.bytes <= TOTAL - have);
        assert_false(pthread_equal(op.thread, pthread_self()));
        have += op.bytes;
        bb_counter_deinit(&done);
    }
    assert_int_equal(have, TOTAL);
    assert_memory_equal(got, sent, TOTAL);
    async_socket_destroy(s);
    (void)close(peer);
    BB_ASSERT_LOG(0, 0);
}

/* "Any number of receives may be pending; they are filled one after the other in the order they
 * were posted, and their callbacks run in that order" [99_005]. */
static void receives_posted_together_are_filled_in_order(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    enum { N = 4, EACH = 10 };
    unsigned char got[N][EACH];
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP ops[N];
    for (int i = 0; i < N; i++)
    {
        bb_op_init(&ops[i], &done);
        ASYNC_SOCKET_BUFFER b = { got[i], EACH };
        assert_int_equal(async_socket_receive_async(s, &b, 1, bb_on_receive, &ops[i]), 0);
    }
    unsigned char sent[N * EACH];
    bb_fill(sent, sizeof(sent), 0);
    assert_int_equal(bb_write_all(peer, sent, sizeof(sent)), 0);
    assert_int_equal(bb_counter_wait(&done, N, BB_WAIT_MS), N);
    size_t offset = 0;
    for (int i = 0; i < N; i++)
    {
        assert_int_equal(bb_calls(&ops[i]), 1);
        assert_int_equal(ops[i].result, ASYNC_SOCKET_RECEIVE_OK);
        assert_memory_equal(got[i], sent + offset, ops[i].bytes);
        offset += ops[i].bytes;
        if (i > 0)
        {
            assert_true(ops[i].sequence > ops[i - 1].sequence);
        }
    }
    assert_int_equal(offset, sizeof(sent));
    async_socket_destroy(s);
    (void)close(peer);
    bb_counter_deinit(&done);
    BB_ASSERT_LOG(0, 0);
}

/* [99_019] "pending receives first get the bytes that arrived before the end of stream, and only
 * the next one gets ABANDONED"; a half-closed peer can still read what the socket sends. */
static void peer_half_close_delivers_tail_then_abandons_and_sends_still_work(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    unsigned char got1[64], got2[64];
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP r1, r2;
    bb_op_init(&r1, &done);
    bb_op_init(&r2, &done);
    ASYNC_SOCKET_BUFFER b1 = { got1, sizeof(got1) }, b2 = { got2, sizeof(got2) };
    assert_int_equal(async_socket_receive_async(s, &b1, 1, bb_on_receive, &r1), 0);
    assert_int_equal(async_socket_receive_async(s, &b2, 1, bb_on_receive, &r2), 0);
    assert_int_equal(bb_write_all(peer, "tail", 4), 0);
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    assert_int_equal(bb_counter_wait(&done, 2, BB_WAIT_MS), 2);
    assert_int_equal(r1.result, ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(r1.bytes, 4);
    assert_memory_equal(got1, "tail", 4);
    assert_int_equal(r2.result, ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(r2.bytes, 0);

    BB_OP w;
    bb_op_init(&w, &done);
    char reply[] = "reply";
    ASYNC_SOCKET_BUFFER out = { reply, 5 };
    assert_int_equal(async_socket_send_async(s, &out, 1, bb_on_send, &w), ASYNC_SOCKET_SEND_SYNC_OK);
    char back[5];
    assert_int_equal(bb_read_n(peer, back, 5, BB_WAIT_MS), 5);
    assert_memory_equal(back, "reply", 5);
    assert_int_equal(bb_counter_wait(&done, 3, BB_WAIT_MS), 3);
    assert_int_equal(w.result, ASYNC_SOCKET_SEND_OK);
    async_socket_destroy(s);
    assert_int_equal(bb_calls(&r1) + bb_calls(&r2) + bb_calls(&w), 3);
    (void)close(peer);
    bb_counter_deinit(&done);
    BB_ASSERT_LOG(0, 0);
}

/* A peer that sends an urgent (MSG_OOB) byte between ordinary bytes: the ordinary bytes must all
 * arrive (the urgent one may be dropped from the stream, as without SO_OOBINLINE), without a hang
 * or an error. */
static void urgent_byte_from_peer_does_not_stall_the_stream(void** state)
{
    (void)state;
    /* It stalled after "abc" until the receive path learned the queued byte count from the
     * kernel (TCP_INQ) instead of taking a short read as empty (99_150..99_153). */
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    assert_int_equal(bb_write_all(peer, "abc", 3), 0);
    assert_int_equal(send(peer, "X", 1, MSG_OOB), 1);
    assert_int_equal(bb_write_all(peer, "def", 3), 0);
    char got[16];
    size_t have = 0;
    int64_t end = bb_now_ms() + 3000;
    while (have < 6 && bb_now_ms() < end)
    {
        BB_COUNTER done;
        bb_counter_init(&done);
        BB_OP op;
        bb_op_init(&op, &done);
        ASYNC_SOCKET_BUFFER b = { got + have, (uint32_t)(sizeof(got) - have) };
        assert_int_equal(async_socket_receive_async(s, &b, 1, bb_on_receive, &op), 0);
        if (bb_counter_wait(&done, 1, 3000) != 1)
        {
            async_socket_destroy(s); /* calls the stuck receive back ABANDONED */
            bb_counter_deinit(&done);
            (void)close(peer);
            fail_msg("receive stalled after %zu of 6 ordinary bytes around an urgent byte", have);
        }
        assert_int_equal(op.result, ASYNC_SOCKET_RECEIVE_OK);
        have += op.bytes;
        bb_counter_deinit(&done);
    }
    got[have] = '\0';
    assert_true(strcmp(got, "abcdef") == 0 || strcmp(got, "abcXdef") == 0);
    async_socket_destroy(s);
    (void)close(peer);
    BB_ASSERT_LOG(0, 0);
}

/* A reset by the peer: the pending receive gets ABANDONED (ECONNRESET) [11_090], exactly once;
 * a send after it is refused NOT_OPEN with one warning and no callback [11_059]. */
static void peer_reset_abandons_pending_receive(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    unsigned char got[64];
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP r;
    bb_op_init(&r, &done);
    ASYNC_SOCKET_BUFFER b = { got, sizeof(got) };
    assert_int_equal(async_socket_receive_async(s, &b, 1, bb_on_receive, &r), 0);
    bb_close_with_reset(peer);
    assert_int_equal(bb_counter_wait(&done, 1, BB_WAIT_MS), 1);
    assert_int_equal(r.result, ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(r.bytes, 0);

    BB_OP w;
    bb_op_init(&w, &done);
    char x = 'x';
    ASYNC_SOCKET_BUFFER out = { &x, 1 };
    ASYNC_SOCKET_SEND_SYNC_RESULT sr = async_socket_send_async(s, &out, 1, bb_on_send, &w);
    if (sr == ASYNC_SOCKET_SEND_SYNC_OK)
    {
        /* the kernel may still take one send before it reports the reset; then a callback */
        assert_int_equal(bb_counter_wait(&done, 2, BB_WAIT_MS), 2);
    }
    else
    {
        assert_int_equal(sr, ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
        bb_sleep_ms(BB_QUIET_MS);
        assert_int_equal(bb_calls(&w), 0);
        BB_ASSERT_LOG(0, 1);
    }
    async_socket_destroy(s);
    assert_int_equal(bb_calls(&r), 1);
    assert_true(bb_calls(&w) <= 1);
    bb_counter_deinit(&done);
}

/* A peer that never reads: send_async "Never blocks" [99_017], and close calls every send not yet
 * called back ABANDONED before it returns, each exactly once. */
static void peer_never_reading_sends_never_block_and_close_abandons_them(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    enum { N = 400, SIZE = 64 * 1024 };
    unsigned char* data = malloc(SIZE);
    assert_non_null(data);
    bb_fill(data, SIZE, 0);
    static BB_OP ops[N];
    int64_t start = bb_now_ms();
    for (int i = 0; i < N; i++)
    {
        bb_op_init(&ops[i], NULL);
        ASYNC_SOCKET_BUFFER b = { data, SIZE };
        assert_int_equal(async_socket_send_async(s, &b, 1, bb_on_send, &ops[i]), ASYNC_SOCKET_SEND_SYNC_OK);
    }
    int64_t took = bb_now_ms() - start;
    assert_true(took < 5000); /* 25 MiB queued against a peer that reads nothing */
    async_socket_close(s);
    int ok = 0, abandoned = 0;
    for (int i = 0; i < N; i++)
    {
        assert_int_equal(bb_calls(&ops[i]), 1);
        ok += ops[i].result == ASYNC_SOCKET_SEND_OK;
        abandoned += ops[i].result == ASYNC_SOCKET_SEND_ABANDONED;
    }
    assert_int_equal(ok + abandoned, N);
    assert_true(abandoned > 0);
    assert_true(bb_peer_sees_end(peer, BB_WAIT_MS));
    bb_sleep_ms(BB_QUIET_MS);
    for (int i = 0; i < N; i++)
    {
        assert_int_equal(bb_calls(&ops[i]), 1);
    }
    async_socket_destroy(s);
    free(data);
    (void)close(peer);
    BB_ASSERT_LOG(0, 0);
}

typedef struct SENDER_TAG
{
    ASYNC_SOCKET_HANDLE s;
    uint32_t id;
    BB_COUNTER* done;
    BB_OP ops[150];
    unsigned char payload[150][260];
} SENDER;

static void* sender_thread(void* arg)
{
    SENDER* t = arg;
    for (uint32_t i = 0; i < 150; i++)
    {
        /* a record: [id][seq][len] then len bytes of (id ^ seq) */
        uint32_t len = 1 + (i * 53 + t->id * 11) % 248;
        unsigned char* p = t->payload[i];
        p[0] = (unsigned char)t->id;
        p[1] = (unsigned char)i;
        p[2] = (unsigned char)len;
        memset(p + 3, (int)(t->id ^ i) & 0xFF, len);
        bb_op_init(&t->ops[i], t->done);
        ASYNC_SOCKET_BUFFER b[2] = { { p, 3 }, { p + 3, len } };
        if (async_socket_send_async(t->s, b, 2, bb_on_send, &t->ops[i]) != ASYNC_SOCKET_SEND_SYNC_OK)
        {
            return (void*)1;
        }
    }
    return NULL;
}

/* [99_001..99_003] "bytes go out in the order the calls were accepted, also with several threads
 * sending at once, and each call's bytes stay together". */
static void sends_from_eight_threads_stay_contiguous_and_ordered(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    int small = 4096;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)); /* partial sends for real */
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    enum { T = 8 };
    BB_COUNTER done;
    bb_counter_init(&done);
    SENDER* senders = calloc(T, sizeof(SENDER));
    assert_non_null(senders);
    pthread_t th[T];
    for (uint32_t i = 0; i < T; i++)
    {
        senders[i].s = s;
        senders[i].id = i;
        senders[i].done = &done;
        assert_int_equal(pthread_create(&th[i], NULL, sender_thread, &senders[i]), 0);
    }
    int next_seq[T] = { 0 };
    int records = 0;
    unsigned char head[3], body[256];
    while (records < T * 150)
    {
        if (bb_read_n(peer, head, 3, BB_WAIT_MS) != 3)
        {
            fail_msg("stream ended after %d records", records);
        }
        assert_true(head[0] < T);
        assert_int_equal(head[1], (unsigned char)next_seq[head[0]]);
        assert_int_equal(bb_read_n(peer, body, head[2], BB_WAIT_MS), head[2]);
        for (unsigned k = 0; k < head[2]; k++)
        {
            assert_int_equal(body[k], (unsigned char)((head[0] ^ head[1]) & 0xFF));
        }
        next_seq[head[0]]++;
        records++;
    }
    for (int i = 0; i < T; i++)
    {
        void* r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
    assert_int_equal(bb_counter_wait(&done, T * 150, BB_WAIT_MS), T * 150);
    async_socket_destroy(s);
    for (int i = 0; i < T; i++)
    {
        for (int k = 0; k < 150; k++)
        {
            assert_int_equal(bb_calls(&senders[i].ops[k]), 1);
            assert_int_equal(senders[i].ops[k].result, ASYNC_SOCKET_SEND_OK);
        }
    }
    free(senders);
    (void)close(peer);
    bb_counter_deinit(&done);
    BB_ASSERT_LOG(0, 0);
}

/* A closed socket's calls: send NOT_OPEN, receive / notify / open non-zero, close again nothing;
 * never a callback. The socket's first refused call logs one WARNING, the next ones no line at the
 * default level (open of a closed socket, a caller error, is one ERROR). */
static void closed_socket_calls_fail_without_callbacks(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    async_socket_close(s);
    assert_false(bb_fd_is_open(fd));
    assert_true(bb_peer_sees_end(peer, BB_WAIT_MS));
    BB_ASSERT_LOG(0, 0);
    BB_OP op;
    bb_op_init(&op, NULL);
    char x = 'x';
    ASYNC_SOCKET_BUFFER b = { &x, 1 };
    assert_int_equal(async_socket_send_async(s, &b, 1, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    BB_ASSERT_LOG(0, 1);
    /* docs/api.md: a closed socket's first refused call logs one WARNING, later ones are VERBOSE */
    assert_int_not_equal(async_socket_receive_async(s, &b, 1, bb_on_receive, &op), 0);
    BB_ASSERT_LOG(0, 0);
    assert_int_not_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, bb_on_notify, &op), 0);
    BB_ASSERT_LOG(0, 0);
    assert_int_not_equal(async_socket_open_async(s, bb_on_open, &op), 0);
    BB_ASSERT_LOG(1, 0);
    async_socket_close(s);
    BB_ASSERT_LOG(0, 0);
    for (int i = 0; i < 50; i++)
    {
        assert_int_equal(async_socket_send_async(s, &b, 1, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
        assert_int_not_equal(async_socket_receive_async(s, &b, 1, bb_on_receive, &op), 0);
    }
    assert_true(bb_log_total() <= 100);
    bb_log_reset();
    bb_sleep_ms(BB_QUIET_MS);
    assert_int_equal(bb_calls(&op), 0);
    async_socket_destroy(s);
    (void)close(peer);
    BB_ASSERT_LOG(0, 0);
}

/* send's bad arguments: SYNC_ERROR, one error line, no callback; the argument checks come first,
 * so also on a closed socket. */
static void bad_send_arguments_fail_with_one_line_and_no_callback(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    BB_OP op;
    bb_op_init(&op, NULL);
    char x[4] = "abc";
    ASYNC_SOCKET_BUFFER good = { x, 3 }, empty = { x, 0 }, null_buf = { NULL, 3 };
    ASYNC_SOCKET_BUFFER huge[2] = { { x, UINT32_MAX }, { x, 2 } };
    for (int pass = 0; pass < 2; pass++)
    {
        assert_int_equal(async_socket_send_async(NULL, &good, 1, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_ERROR);
        BB_ASSERT_LOG(1, 0);
        assert_int_equal(async_socket_send_async(s, NULL, 1, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_ERROR);
        BB_ASSERT_LOG(1, 0);
        assert_int_equal(async_socket_send_async(s, &good, 0, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_ERROR);
        BB_ASSERT_LOG(1, 0);
        assert_int_equal(async_socket_send_async(s, &empty, 1, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_ERROR);
        BB_ASSERT_LOG(1, 0);
        assert_int_equal(async_socket_send_async(s, &null_buf, 1, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_ERROR);
        BB_ASSERT_LOG(1, 0);
        assert_int_equal(async_socket_send_async(s, huge, 2, bb_on_send, &op), ASYNC_SOCKET_SEND_SYNC_ERROR);
        BB_ASSERT_LOG(1, 0);
        assert_int_equal(async_socket_send_async(s, &good, 1, NULL, &op), ASYNC_SOCKET_SEND_SYNC_ERROR);
        BB_ASSERT_LOG(1, 0);
        assert_int_not_equal(async_socket_receive_async(s, &empty, 1, bb_on_receive, &op), 0);
        BB_ASSERT_LOG(1, 0);
        assert_int_not_equal(async_socket_receive_async(s, huge, 2, bb_on_receive, &op), 0);
        BB_ASSERT_LOG(1, 0);
        assert_int_not_equal(async_socket_notify_io_async(s, (ASYNC_SOCKET_NOTIFY_IO_TYPE)7, bb_on_notify, &op), 0);
        BB_ASSERT_LOG(1, 0);
        assert_int_not_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, NULL, &op), 0);
        BB_ASSERT_LOG(1, 0);
        async_socket_close(s); /* the second pass runs on a closed socket */
        BB_ASSERT_LOG(0, 0);
    }
    bb_sleep_ms(BB_QUIET_MS);
    assert_int_equal(bb_calls(&op), 0);
    async_socket_destroy(s);
    (void)close(peer);
}

/* create before platform_init: NULL, one error line, "the fd is left untouched and stays yours". */
static void create_without_platform_fails_and_leaves_fd_alone(void** state)
{
    (void)state;
    (void)alarm(60);
    async_socket_log_set_sink(bb_log_sink, NULL);
    bb_log_reset();
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    int flags = fcntl(fd, F_GETFL);
    assert_null(async_socket_create(NULL, fd));
    BB_ASSERT_LOG(1, 0);
    assert_true(bb_fd_is_open(fd));
    assert_int_equal(fcntl(fd, F_GETFL), flags);
    assert_int_equal(bb_write_all(fd, "ok", 2), 0);
    char got[2];
    assert_int_equal(bb_read_n(peer, got, 2, BB_WAIT_MS), 2);
    (void)close(fd);
    (void)close(peer);
    async_socket_log_set_sink(NULL, NULL);
}

/* INVALID_SOCKET: "the create succeeds, and opening that socket fails" [99_020]; a never-opened
 * socket closes its fd at destroy. */
static void invalid_socket_create_succeeds_open_fails_and_unopened_destroy_closes_fd(void** state)
{
    (void)state;
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, INVALID_SOCKET);
    assert_non_null(s);
    BB_OP op;
    bb_op_init(&op, NULL);
    assert_int_not_equal(async_socket_open_async(s, bb_on_open, &op), 0);
    BB_ASSERT_LOG(1, 0);
    assert_int_equal(bb_calls(&op), 0);
    async_socket_destroy(s);
    BB_ASSERT_LOG(0, 0);

    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    s = async_socket_create(NULL, fd);
    assert_non_null(s);
    async_socket_destroy(s);
    assert_false(bb_fd_is_open(fd));
    assert_true(bb_peer_sees_end(peer, BB_WAIT_MS));
    (void)close(peer);
    BB_ASSERT_LOG(0, 0);
}

typedef struct DESTROY_CTX_TAG
{
    ASYNC_SOCKET_HANDLE s;
} DESTROY_CTX;

static void destroy_in_callback(BB_OP* op)
{
    DESTROY_CTX* ctx = op->user;
    async_socket_destroy(ctx->s);
}

/* destroy from a callback: "it closes the socket and returns without waiting"; the other pending
 * operations are called back (ABANDONED) exactly once and the peer sees the end of the stream. */
static void destroy_from_receive_callback_closes_and_abandons_the_rest(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    DESTROY_CTX ctx = { s };
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP r1, r2, n1;
    bb_op_init(&r1, &done);
    bb_op_init(&r2, &done);
    bb_op_init(&n1, &done);
    r1.then = destroy_in_callback;
    r1.user = &ctx;
    unsigned char g1[8], g2[8];
    ASYNC_SOCKET_BUFFER b1 = { g1, sizeof(g1) }, b2 = { g2, sizeof(g2) };
    assert_int_equal(async_socket_receive_async(s, &b1, 1, bb_on_receive, &r1), 0);
    assert_int_equal(async_socket_receive_async(s, &b2, 1, bb_on_receive, &r2), 0);
    assert_int_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, bb_on_notify, &n1), 0);
    assert_int_equal(bb_write_all(peer, "12345678", 8), 0);
    assert_int_equal(bb_counter_wait(&done, 3, BB_WAIT_MS), 3);
    assert_true(bb_peer_sees_end(peer, BB_WAIT_MS));
    bb_sleep_ms(BB_QUIET_MS);
    assert_int_equal(bb_calls(&r1), 1);
    assert_int_equal(bb_calls(&r2), 1);
    assert_int_equal(bb_calls(&n1), 1);
    assert_int_equal(r1.result, ASYNC_SOCKET_RECEIVE_OK);
    /* the notify may have completed IN before the receive's callback; otherwise ABANDONED */
    assert_true(n1.result == ASYNC_SOCKET_NOTIFY_IO_RESULT_IN || n1.result == ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    assert_true(r2.result == ASYNC_SOCKET_RECEIVE_ABANDONED || r2.result == ASYNC_SOCKET_RECEIVE_OK);
    (void)close(peer);
    bb_counter_deinit(&done);
    BB_ASSERT_LOG(0, 0);
}

/* notify on a socket already writable / readable completes "straight away ... but always on a
 * worker thread, never inline" [99_023]; without data, IN waits for it. */
static void notify_on_ready_socket_completes_on_a_worker(void** state)
{
    (void)state;
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP out, in;
    bb_op_init(&out, &done);
    bb_op_init(&in, &done);
    assert_int_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, bb_on_notify, &out), 0);
    assert_int_equal(bb_counter_wait(&done, 1, BB_WAIT_MS), 1);
    assert_int_equal(out.result, ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    assert_false(pthread_equal(out.thread, pthread_self()));
    assert_int_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, bb_on_notify, &in), 0);
    bb_sleep_ms(BB_QUIET_MS);
    assert_int_equal(bb_calls(&in), 0);
    assert_int_equal(bb_write_all(peer, "z", 1), 0);
    assert_int_equal(bb_counter_wait(&done, 2, BB_WAIT_MS), 2);
    assert_int_equal(in.result, ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
    /* again, with the byte still unread: ready already */
    BB_OP in2;
    bb_op_init(&in2, &done);
    assert_int_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, bb_on_notify, &in2), 0);
    assert_int_equal(bb_counter_wait(&done, 3, BB_WAIT_MS), 3);
    assert_int_equal(in2.result, ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
    async_socket_destroy(s);
    assert_int_equal(bb_calls(&out) + bb_calls(&in) + bb_calls(&in2), 3);
    (void)close(peer);
    bb_counter_deinit(&done);
    BB_ASSERT_LOG(0, 0);
}


static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(open_completes_inline_with_ok, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(send_of_1024_buffers_arrives_in_order, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(peer_sending_one_byte_at_a_time_is_received_whole, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(receives_posted_together_are_filled_in_order, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(peer_half_close_delivers_tail_then_abandons_and_sends_still_work, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(urgent_byte_from_peer_does_not_stall_the_stream, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(peer_reset_abandons_pending_receive, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(peer_never_reading_sends_never_block_and_close_abandons_them, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(sends_from_eight_threads_stay_contiguous_and_ordered, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(closed_socket_calls_fail_without_callbacks, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(bad_send_arguments_fail_with_one_line_and_no_callback, bb_setup, bb_teardown),
    cmocka_unit_test(create_without_platform_fails_and_leaves_fd_alone),
    cmocka_unit_test_setup_teardown(invalid_socket_create_succeeds_open_fails_and_unopened_destroy_closes_fd, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(destroy_from_receive_callback_closes_and_abandons_the_rest, bb_setup, bb_teardown),
    cmocka_unit_test_setup_teardown(notify_on_ready_socket_completes_on_a_worker, bb_setup, bb_teardown),
};

TEST_MAIN(tests)
