/* Integration tests over loopback TCP (and AF_UNIX pairs where TCP is not the point): close and
 * destroy racing with callbacks on the workers, with each other, with many pending operations,
 * with the peer going away and with fd numbers being reused; and the thread budget.
 *
 * Callbacks only record into atomics; the test thread asserts. Every test ends with no
 * allocation, fd or thread leaked. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "lifecycle_int_util.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"

#define WATCHDOG_MS 9000
#define SMALL_BUFFER 4096
#define SEND_CHUNK 4096

/* ---- a receive loop that keeps one receive posted ---- */

#define LOOP_RECORDS 8192

/* Receives on `socket` from a pool of records: each OK callback optionally sleeps, checks the
 * bytes (all must equal `fill`), then posts the next receive. */
typedef struct RECEIVE_LOOP_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    uint8_t fill;
    atomic_int sleep_ms;
    atomic_int close_returned;
    atomic_int running;              /* OK callbacks currently running */
    atomic_int running_after_close;  /* an OK callback was still running when close returned */
    atomic_int wrong_bytes;
    atomic_int next;
    atomic_int accepted;
    uint8_t buffers[2][512];
    OP_RECORD records[LOOP_RECORDS];
} RECEIVE_LOOP;

static void loop_post(RECEIVE_LOOP* loop);

static void hook_loop_receive(OP_RECORD* record)
{
    RECEIVE_LOOP* loop = record->hook_context;
    if (atomic_load(&record->result) != ASYNC_SOCKET_RECEIVE_OK)
    {
        return;
    }
    (void)atomic_fetch_add(&loop->running, 1);
    int index = (int)(record - loop->records);
    const uint8_t* buffer = loop->buffers[index & 1];
    for (uint32_t i = 0; i < atomic_load(&record->bytes); i++)
    {
        if (buffer[i] != loop->fill)
        {
            (void)atomic_fetch_add(&loop->wrong_bytes, 1);
            break;
        }
    }
    int sleep_ms = atomic_load(&loop->sleep_ms);
    if (sleep_ms > 0)
    {
        test_sleep_ms((unsigned int)sleep_ms);
    }
    if (atomic_load(&loop->close_returned) != 0)
    {
        (void)atomic_fetch_add(&loop->running_after_close, 1);
    }
    (void)atomic_fetch_sub(&loop->running, 1);
    loop_post(loop);
}

/* Posts the next receive (receives complete one at a time, so two buffers alternate safely). */
static void loop_post(RECEIVE_LOOP* loop)
{
    int index = atomic_fetch_add(&loop->next, 1);
    if (index >= LOOP_RECORDS)
    {
        return;
    }
    OP_RECORD* record = &loop->records[index];
    op_record_init(record, &loop->close_returned);
    record->hook = hook_loop_receive;
    record->hook_context = loop;
    if (test_receive(loop->socket, loop->buffers[index & 1], sizeof(loop->buffers[0]), record) == 0)
    {
        (void)atomic_fetch_add(&loop->accepted, 1);
    }
}

static void loop_start(RECEIVE_LOOP* loop, ASYNC_SOCKET_HANDLE socket, uint8_t fill, int sleep_ms)
{
    loop->socket = socket;
    loop->fill = fill;
    atomic_init(&loop->sleep_ms, sleep_ms);
    atomic_init(&loop->close_returned, 0);
    atomic_init(&loop->running, 0);
    atomic_init(&loop->running_after_close, 0);
    atomic_init(&loop->wrong_bytes, 0);
    atomic_init(&loop->next, 0);
    atomic_init(&loop->accepted, 0);
    loop_post(loop);
    assert_int_equal(atomic_load(&loop->accepted), 1);
}

/* After the close returned: every accepted receive was called back exactly once (the accepted
 * ones are the first `accepted` records, since only one is pending at a time), none started or
 * was still running after the close returned, and every byte came from the right peer. */
static void loop_check_after_close(RECEIVE_LOOP* loop)
{
    int accepted = atomic_load(&loop->accepted);
    assert_true(accepted >= 1 && accepted <= atomic_load(&loop->next));
    for (int i = 0; i < accepted; i++)
    {
        assert_int_equal(atomic_load(&loop->records[i].calls), 1);
    }
    if (atomic_load(&loop->next) > LOOP_RECORDS)
    {
        /* the loop used up its records before the close (a close delayed on a loaded machine):
         * it stopped posting after the last one, which completed normally */
        assert_int_equal(accepted, LOOP_RECORDS);
        assert_int_equal(atomic_load(&loop->records[accepted - 1].result), ASYNC_SOCKET_RECEIVE_OK);
    }
    else if (atomic_load(&loop->next) > accepted)
    {
        /* the last receive completed, and posting the next one was refused by the close */
        assert_int_equal(atomic_load(&loop->next), accepted + 1);
        assert_int_equal(atomic_load(&loop->records[accepted].calls), 0);
        assert_int_equal(atomic_load(&loop->records[accepted - 1].result), ASYNC_SOCKET_RECEIVE_OK);
    }
    else
    {
        /* the last receive was pending when the socket closed */
        assert_int_equal(atomic_load(&loop->records[accepted - 1].result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    }
    assert_no_callback_after_close("receive", loop->records, (size_t)accepted);
    assert_int_equal(atomic_load(&loop->running), 0);
    assert_int_equal(atomic_load(&loop->running_after_close), 0);
    assert_int_equal(atomic_load(&loop->wrong_bytes), 0);
}

/* ---- a peer that writes continuously ---- */

typedef struct WRITER_TAG
{
    pthread_t thread;
    int fd;
    uint8_t fill;
    atomic_int stop;
    atomic_llong written;
} WRITER;

static void* writer_main(void* arg)
{
    WRITER* writer = arg;
    uint8_t chunk[97];
    memset(chunk, writer->fill, sizeof(chunk));
    while (atomic_load(&writer->stop) == 0)
    {
        ssize_t sent = send(writer->fd, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0)
        {
            (void)atomic_fetch_add(&writer->written, sent);
        }
        else if (sent < 0 && errno != EAGAIN && errno != EINTR)
        {
            break; /* the other end is gone */
        }
        else
        {
            test_sleep_ms(1);
        }
    }
    return NULL;
}

static void writer_start(WRITER* writer, int fd, uint8_t fill)
{
    writer->fd = fd;
    writer->fill = fill;
    atomic_init(&writer->stop, 0);
    atomic_init(&writer->written, 0);
    assert_int_equal(pthread_create(&writer->thread, NULL, writer_main, writer), 0);
}

static void writer_stop(WRITER* writer)
{
    atomic_store(&writer->stop, 1);
    assert_int_equal(pthread_join(writer->thread, NULL), 0);
}

/* ---- close from another thread while callbacks run ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_037 */
static void close_from_another_thread_waits_for_running_callbacks(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    static RECEIVE_LOOP loop;

    /* slow rounds: close while a callback sleeps 50 ms on a worker; fast rounds: close while
     * data streams in and callbacks come and go */
    for (int round = 0; round < 40; round++)
    {
        bool slow = round < 10;
        int peer;
        ASYNC_SOCKET_HANDLE socket = open_tcp_async(0, 0, &peer, NULL);
        loop_start(&loop, socket, 0x5A, slow ? 50 : 0);
        WRITER writer;
        writer_start(&writer, peer, 0x5A);
        if (slow)
        {
            TEST_WAIT_UNTIL(atomic_load(&loop.running) == 1, 3000);
        }
        else
        {
            TEST_WAIT_UNTIL(atomic_load(&loop.next) > 1 + round % 5, 3000);
        }

        async_socket_close(socket);
        atomic_store(&loop.close_returned, 1);
        int running_at_return = atomic_load(&loop.running);

        assert_int_equal(running_at_return, 0);
        test_sleep_ms(slow ? 60 : 2);
        writer_stop(&writer);
        loop_check_after_close(&loop);
        async_socket_destroy(socket);
        assert_int_equal(close(peer), 0);
    }

    lifecycle_end(&leak);
}

/* ---- two callbacks closing each other's sockets ---- */

typedef struct CROSS_TAG
{
    ASYNC_SOCKET_HANDLE other;
    atomic_int* arrived;      /* shared by both callbacks */
    atomic_int barrier_timeouts;
    atomic_int close_returned;
} CROSS;

/* Waits (bounded) until both callbacks are running, then closes the other socket. */
static void hook_close_other(OP_RECORD* record)
{
    CROSS* cross = record->hook_context;
    if (atomic_load(&record->result) != ASYNC_SOCKET_RECEIVE_OK)
    {
        return;
    }
    (void)atomic_fetch_add(cross->arrived, 1);
    uint64_t start = test_now_ms();
    while (atomic_load(cross->arrived) < 2)
    {
        if (test_now_ms() - start > 2000)
        {
            (void)atomic_fetch_add(&cross->barrier_timeouts, 1);
            break;
        }
        /* yield: under valgrind, which runs one thread at a time, a pure spin starves the other */
        test_sleep_ms(1);
    }
    async_socket_close(cross->other);
    atomic_store(&cross->close_returned, 1);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void callbacks_on_two_workers_closing_each_others_socket_do_not_deadlock(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    /* two workers, whatever the machine or the environment says */
    lifecycle_begin_with_workers(&leak, 2, WATCHDOG_MS, __func__);

    for (int round = 0; round < 50; round++)
    {
        int peer_a;
        int peer_b;
        ASYNC_SOCKET_HANDLE a = open_tcp_async(0, 0, &peer_a, NULL);
        ASYNC_SOCKET_HANDLE b = open_tcp_async(0, 0, &peer_b, NULL);
        atomic_int arrived;
        atomic_init(&arrived, 0);
        CROSS cross_a = {.other = b, .arrived = &arrived}; /* in A's callback: closes B */
        CROSS cross_b = {.other = a, .arrived = &arrived};
        atomic_init(&cross_a.barrier_timeouts, 0);
        atomic_init(&cross_a.close_returned, 0);
        atomic_init(&cross_b.barrier_timeouts, 0);
        atomic_init(&cross_b.close_returned, 0);
        OP_RECORD ops_a[3]; /* the receive that closes, one left pending, a notify tried after the close */
        OP_RECORD ops_b[3];
        uint8_t buffers_a[2][8];
        uint8_t buffers_b[2][8];
        for (int i = 0; i < 3; i++)
        {
            op_record_init(&ops_a[i], NULL);
            op_record_init(&ops_b[i], NULL);
        }
        ops_a[0].hook = hook_close_other;
        ops_a[0].hook_context = &cross_a;
        ops_b[0].hook = hook_close_other;
        ops_b[0].hook_context = &cross_b;
        for (int i = 0; i < 2; i++)
        {
            assert_int_equal(test_receive(a, buffers_a[i], sizeof(buffers_a[i]), &ops_a[i]), 0);
            assert_int_equal(test_receive(b, buffers_b[i], sizeof(buffers_b[i]), &ops_b[i]), 0);
        }

        /* A's callback starts and waits on one worker; B's event then goes to the other */
        uint8_t byte = 1;
        assert_int_equal(send(peer_a, &byte, 1, MSG_NOSIGNAL), 1);
        TEST_WAIT_UNTIL(atomic_load(&arrived) == 1, 3000);
        assert_int_equal(send(peer_b, &byte, 1, MSG_NOSIGNAL), 1);
        TEST_WAIT_UNTIL(atomic_load(&cross_a.close_returned) == 1 && atomic_load(&cross_b.close_returned) == 1, 3000);
        TEST_WAIT_UNTIL(all_called(ops_a, 2) && all_called(ops_b, 2), 3000);

        assert_int_equal(atomic_load(&cross_a.barrier_timeouts), 0);
        assert_int_equal(atomic_load(&cross_b.barrier_timeouts), 0);
        assert_once_with(&ops_a[0], ASYNC_SOCKET_RECEIVE_OK);
        assert_once_with(&ops_b[0], ASYNC_SOCKET_RECEIVE_OK);
        assert_int_equal(atomic_load(&ops_a[0].bytes), 1);
        assert_int_equal(atomic_load(&ops_b[0].bytes), 1);
        assert_once_with(&ops_a[1], ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_once_with(&ops_b[1], ASYNC_SOCKET_RECEIVE_ABANDONED);
        /* both closes really closed */
        assert_int_not_equal(test_notify(a, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, &ops_a[2]), 0);
        assert_int_not_equal(test_notify(b, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, &ops_b[2]), 0);
        assert_int_equal(drain_until_eof(peer_a, 2000, false), 0);
        assert_int_equal(drain_until_eof(peer_b, 2000, false), 0);

        async_socket_destroy(a);
        async_socket_destroy(b);
        for (int i = 0; i < 3; i++)
        {
            assert_int_equal(atomic_load(&ops_a[i].calls), i < 2 ? 1 : 0);
            assert_int_equal(atomic_load(&ops_b[i].calls), i < 2 ? 1 : 0);
        }
        assert_int_equal(close(peer_a), 0);
        assert_int_equal(close(peer_b), 0);
    }

    lifecycle_end_with_workers(&leak);
}

/* ---- many pending operations ---- */

#define MANY_RECEIVES 50
#define MANY_SENDS 200

/* Waits (at most 5 s) until the stream from fd to peer stops moving: neither fd's send queue nor
 * peer's receive queue changed in 50 ms. Over loopback the kernel keeps moving bytes, and freeing
 * send room, for a while after the last send; until it stops, an OUT notify may complete. */
static void wait_until_stream_settles(int fd, int peer)
{
    const uint64_t start = test_now_ms();
    int last_out = -1;
    int last_in = -1;
    for (;;)
    {
        int out = 0;
        int in = 0;
        assert_int_equal(ioctl(fd, SIOCOUTQ, &out), 0);
        assert_int_equal(ioctl(peer, FIONREAD, &in), 0);
        if (out == last_out && in == last_in)
        {
            return;
        }
        assert_true(test_now_ms() - start < 5000);
        last_out = out;
        last_in = in;
        test_sleep_ms(50);
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_042 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_051 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_072 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_015 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_080 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_008 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_084 */
static void close_calls_back_every_pending_op_exactly_once(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    int fd;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(SMALL_BUFFER, SMALL_BUFFER, &peer, &fd);
    atomic_int close_returned;
    atomic_init(&close_returned, 0);
    static OP_RECORD receives[MANY_RECEIVES];
    static OP_RECORD sends[MANY_SENDS];
    static uint8_t receive_buffers[MANY_RECEIVES][16];
    static uint8_t data[MANY_SENDS * SEND_CHUNK];
    OP_RECORD notifies[2];
    test_fill_pattern(data, sizeof(data), 0);
    for (int i = 0; i < MANY_RECEIVES; i++)
    {
        op_record_init(&receives[i], &close_returned);
        assert_int_equal(test_receive(socket, receive_buffers[i], sizeof(receive_buffers[i]), &receives[i]), 0);
    }
    int queued = 0;
    for (int i = 0; i < MANY_SENDS; i++)
    {
        op_record_init(&sends[i], &close_returned);
        assert_int_equal(test_send(socket, data + (size_t)i * SEND_CHUNK, SEND_CHUNK, &sends[i]), ASYNC_SOCKET_SEND_SYNC_OK);
        queued += (atomic_load(&sends[i].calls) == 0);
    }
    assert_true(queued > MANY_SENDS / 2); /* the peer reads nothing: most sends wait */
    /* the peer sends nothing and, once the stream settles, the socket buffer stays full: neither
     * notify can complete (a loaded machine once let the OUT one see room freed after the sends) */
    wait_until_stream_settles(fd, peer);
    op_record_init(&notifies[0], &close_returned);
    op_record_init(&notifies[1], &close_returned);
    assert_int_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &notifies[0]), 0);
    assert_int_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, &notifies[1]), 0);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&notifies[0].calls), 0);
    assert_int_equal(atomic_load(&notifies[1].calls), 0);

    async_socket_close(socket);
    atomic_store(&close_returned, 1);

    /* every callback ran before close returned */
    for (int i = 0; i < MANY_RECEIVES; i++)
    {
        assert_once_with(&receives[i], ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_int_equal(atomic_load(&receives[i].bytes), 0);
    }
    assert_once_with(&notifies[0], ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    assert_once_with(&notifies[1], ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    uint64_t ok_bytes = 0;
    bool abandoned_seen = false;
    for (int i = 0; i < MANY_SENDS; i++)
    {
        assert_int_equal(atomic_load(&sends[i].calls), 1);
        if (atomic_load(&sends[i].result) == ASYNC_SOCKET_SEND_OK)
        {
            assert_false(abandoned_seen);
            ok_bytes += SEND_CHUNK;
        }
        else
        {
            assert_int_equal(atomic_load(&sends[i].result), ASYNC_SOCKET_SEND_ABANDONED);
            abandoned_seen = true;
        }
    }
    assert_true(abandoned_seen);

    /* after the close every operation is refused at once and never called back */
    OP_RECORD late[4];
    uint8_t late_buffer[16];
    for (int i = 0; i < 4; i++)
    {
        op_record_init(&late[i], NULL);
    }
    assert_int_equal(test_send(socket, data, SEND_CHUNK, &late[0]), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    assert_int_not_equal(test_receive(socket, late_buffer, sizeof(late_buffer), &late[1]), 0);
    assert_int_not_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &late[2]), 0);
    assert_int_not_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, &late[3]), 0);
    async_socket_close(socket);

    /* the peer gets every completed send, in order, then the end of the stream */
    uint64_t received = drain_until_eof(peer, 3000, true);
    assert_true(received >= ok_bytes && received <= ok_bytes + SEND_CHUNK);
    test_sleep_ms(20);
    for (int i = 0; i < 4; i++)
    {
        assert_int_equal(atomic_load(&late[i].calls), 0);
    }
    for (int i = 0; i < MANY_RECEIVES; i++)
    {
        assert_int_equal(atomic_load(&receives[i].calls), 1);
    }
    for (int i = 0; i < MANY_SENDS; i++)
    {
        assert_int_equal(atomic_load(&sends[i].calls), 1);
    }
    assert_no_callback_after_close("receive", receives, MANY_RECEIVES);
    assert_no_callback_after_close("send", sends, MANY_SENDS);
    assert_no_callback_after_close("notify", notifies, 2);

    async_socket_destroy(socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* ---- many lifecycles ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_035 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_103 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_104 */
static void two_thousand_open_close_destroy_cycles_leak_nothing(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    warm_up_port();
    int peer;
    int64_t live_start = sys_fault_live_allocations();
    int fds_start = test_count_open_fds();

    for (int cycle = 0; cycle < 2000; cycle++)
    {
        int fd;
        ASYNC_SOCKET_HANDLE socket = open_unix_async(&peer, &fd);
        OP_RECORD receive;
        uint8_t buffer[8];
        op_record_init(&receive, NULL);
        assert_int_equal(test_receive(socket, buffer, sizeof(buffer), &receive), 0);
        uint8_t byte = 7;
        char eof;
        switch (cycle % 4)
        {
            case 0:
                /* close disconnects: the peer sees the end of the stream before destroy */
                async_socket_close(socket);
                assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_ABANDONED);
                assert_true(fd_is_closed(fd));
                assert_int_equal(read(peer, &eof, 1), 0);
                async_socket_destroy(socket);
                break;
            case 1:
                /* destroy closes implicitly */
                async_socket_destroy(socket);
                assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_ABANDONED);
                break;
            case 2:
                async_socket_close(NULL);
                async_socket_destroy(NULL);
                assert_int_equal(atomic_load(&receive.calls), 0);
                async_socket_destroy(socket);
                assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_ABANDONED);
                break;
            default:
                /* data may complete the receive on a worker while destroy runs */
                assert_int_equal(write(peer, &byte, 1), 1);
                async_socket_destroy(socket);
                assert_int_equal(atomic_load(&receive.calls), 1);
                assert_true(atomic_load(&receive.result) == ASYNC_SOCKET_RECEIVE_OK ||
                            atomic_load(&receive.result) == ASYNC_SOCKET_RECEIVE_ABANDONED);
                break;
        }
        assert_true(fd_is_closed(fd));
        assert_int_equal(close(peer), 0);
        assert_int_equal(atomic_load(&receive.calls), 1);
        if (cycle % 100 == 0)
        {
            assert_int_equal(sys_fault_live_allocations(), live_start);
            assert_int_equal(test_count_open_fds(), fds_start);
        }
    }
    assert_int_equal(sys_fault_live_allocations(), live_start);
    assert_int_equal(test_count_open_fds(), fds_start);

    lifecycle_end(&leak);
}

/* ---- fd reuse after close + destroy with events in flight ---- */

typedef struct NOTIFY_GUARD_TAG
{
    atomic_int calls;
    atomic_int result;
} NOTIFY_GUARD;

static void on_guard_notify(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    NOTIFY_GUARD* guard = context;
    atomic_store(&guard->result, (int)result);
    (void)atomic_fetch_add(&guard->calls, 1);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_011 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
static void a_reused_fd_never_gets_the_old_sockets_events(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    static RECEIVE_LOOP old_loop;
    static RECEIVE_LOOP new_loop;

    for (int round = 0; round < 200; round++)
    {
        int old_peer;
        int old_fd;
        ASYNC_SOCKET_HANDLE old_socket = open_tcp_async(0, 0, &old_peer, &old_fd);
        loop_start(&old_loop, old_socket, 0xAA, 0);
        int next_fds[2];
        assert_int_equal(test_tcp_pair(next_fds, 0, 0), 0);
        WRITER writer;
        writer_start(&writer, old_peer, 0xAA);
        TEST_WAIT_UNTIL(atomic_load(&old_loop.next) > 1 + round % 3, 3000);

        /* the old socket goes away while its data (and its events) keep arriving */
        async_socket_destroy(old_socket);
        atomic_store(&old_loop.close_returned, 1);
        assert_true(fd_is_closed(old_fd));
        /* the next socket gets the same fd number at once */
        assert_int_equal(dup3(next_fds[0], old_fd, O_CLOEXEC), old_fd);
        assert_int_equal(close(next_fds[0]), 0);
        ASYNC_SOCKET_HANDLE new_socket = async_socket_create(NULL, old_fd);
        assert_non_null(new_socket);
        OP_RECORD open_record;
        op_record_init(&open_record, NULL);
        assert_int_equal(test_open(new_socket, &open_record), 0);
        NOTIFY_GUARD guard;
        atomic_init(&guard.calls, 0);
        atomic_init(&guard.result, -1);
        assert_int_equal(async_socket_notify_io_async(new_socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_guard_notify, &guard), 0);
        loop_start(&new_loop, new_socket, 0xBB, 0);

        /* nothing meant for the old socket reaches the new one */
        test_sleep_ms(1);
        assert_int_equal(atomic_load(&guard.calls), 0);
        assert_int_equal(atomic_load(&new_loop.records[0].calls), 0);
        writer_stop(&writer);
        uint8_t fresh[64];
        memset(fresh, 0xBB, sizeof(fresh));
        assert_int_equal(send(next_fds[1], fresh, sizeof(fresh), MSG_NOSIGNAL), (ssize_t)sizeof(fresh));
        /* hook_done, not calls: the call is counted before its hook compares the bytes, and
         * wrong_bytes, read below, is the hook's */
        TEST_WAIT_UNTIL(atomic_load(&new_loop.records[0].hook_done) == 1 && atomic_load(&guard.calls) == 1, 3000);
        assert_int_equal(atomic_load(&guard.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
        assert_int_equal(atomic_load(&new_loop.records[0].result), ASYNC_SOCKET_RECEIVE_OK);
        assert_int_equal(atomic_load(&new_loop.wrong_bytes), 0);

        async_socket_destroy(new_socket);
        atomic_store(&new_loop.close_returned, 1);
        loop_check_after_close(&old_loop);
        loop_check_after_close(&new_loop);
        assert_int_equal(close(old_peer), 0);
        assert_int_equal(close(next_fds[1]), 0);
    }

    lifecycle_end(&leak);
}

/* ---- the peer goes away ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_012 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_091 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_059 */
static void peer_shutdown_then_close_completes_every_op_without_a_close(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(SMALL_BUFFER, SMALL_BUFFER, &peer, NULL);
    static OP_RECORD sends[256];
    static uint8_t data[256 * SEND_CHUNK];
    test_fill_pattern(data, sizeof(data), 0);
    for (int i = 0; i < 256; i++)
    {
        op_record_init(&sends[i], NULL);
    }
    uint32_t count = send_until_queued(socket, data, SEND_CHUNK, sends, 250);
    for (uint32_t i = 0; i < 4; i++, count++)
    {
        assert_int_equal(test_send(socket, data + (size_t)count * SEND_CHUNK, SEND_CHUNK, &sends[count]), ASYNC_SOCKET_SEND_SYNC_OK);
    }

    /* the peer's last bytes and its end of stream are both waiting when the receives come */
    uint8_t last[10];
    test_fill_pattern(last, sizeof(last), 0);
    assert_int_equal(send(peer, last, sizeof(last), MSG_NOSIGNAL), (ssize_t)sizeof(last));
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    test_sleep_ms(20);
    OP_RECORD receives[3];
    uint8_t buffers[3][64];
    for (int i = 0; i < 3; i++)
    {
        op_record_init(&receives[i], NULL);
        assert_int_equal(test_receive(socket, buffers[i], sizeof(buffers[i]), &receives[i]), 0);
    }
    TEST_WAIT_UNTIL(atomic_load(&receives[0].calls) == 1, 3000);
    assert_once_with(&receives[0], ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&receives[0].bytes), sizeof(last));
    assert_int_equal(test_check_pattern(buffers[0], sizeof(last), 0), sizeof(last));
    /* the end of the stream, queued behind those bytes, completes the next receives */
    TEST_WAIT_UNTIL(atomic_load(&receives[1].calls) == 1 && atomic_load(&receives[2].calls) == 1, 3000);
    assert_once_with(&receives[1], ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&receives[1].bytes), 0);
    assert_once_with(&receives[2], ASYNC_SOCKET_RECEIVE_ABANDONED);
    /* half-closed: the peer can still take bytes, so the sends wait */
    assert_int_equal(atomic_load(&sends[count - 1].calls), 0);

    /* the peer closes with unread bytes: a reset; every queued send ends, without a close */
    assert_int_equal(close(peer), 0);
    TEST_WAIT_UNTIL(all_called(sends, count), 3000);
    for (uint32_t i = 0; i < count; i++)
    {
        assert_int_equal(atomic_load(&sends[i].calls), 1);
        int result = atomic_load(&sends[i].result);
        assert_true(result == ASYNC_SOCKET_SEND_OK || result == ASYNC_SOCKET_SEND_ABANDONED);
    }
    assert_int_equal(atomic_load(&sends[count - 1].result), ASYNC_SOCKET_SEND_ABANDONED);
    /* the connection is gone: a new send is refused (no SIGPIPE), a new receive ends at once */
    OP_RECORD late_send;
    OP_RECORD late_receive;
    op_record_init(&late_send, NULL);
    op_record_init(&late_receive, NULL);
    assert_int_equal(test_send(socket, data, 16, &late_send), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    assert_int_equal(test_receive(socket, buffers[0], sizeof(buffers[0]), &late_receive), 0);
    TEST_WAIT_UNTIL(atomic_load(&late_receive.calls) == 1, 3000);
    assert_int_not_equal(atomic_load(&late_receive.result), ASYNC_SOCKET_RECEIVE_OK);

    async_socket_close(socket);
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&late_send.calls), 0);
    assert_int_equal(atomic_load(&late_receive.calls), 1);
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(atomic_load(&receives[i].calls), 1);
    }
    for (uint32_t i = 0; i < count; i++)
    {
        assert_int_equal(atomic_load(&sends[i].calls), 1);
    }
    async_socket_destroy(socket);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_012 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_090 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
static void peer_reset_completes_every_op_without_a_close(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    for (int round = 0; round < 20; round++)
    {
        int peer;
        ASYNC_SOCKET_HANDLE socket = open_tcp_async(SMALL_BUFFER, SMALL_BUFFER, &peer, NULL);
        static OP_RECORD sends[256];
        static uint8_t data[256 * SEND_CHUNK];
        test_fill_pattern(data, sizeof(data), 0);
        OP_RECORD receives[3];
        uint8_t buffers[3][64];
        for (int i = 0; i < 3; i++)
        {
            op_record_init(&receives[i], NULL);
            assert_int_equal(test_receive(socket, buffers[i], sizeof(buffers[i]), &receives[i]), 0);
        }
        OP_RECORD notify;
        op_record_init(&notify, NULL);
        assert_int_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &notify), 0);
        for (int i = 0; i < 256; i++)
        {
            op_record_init(&sends[i], NULL);
        }
        uint32_t count = send_until_queued(socket, data, SEND_CHUNK, sends, 250);
        for (uint32_t i = 0; i < 4; i++, count++)
        {
            assert_int_equal(test_send(socket, data + (size_t)count * SEND_CHUNK, SEND_CHUNK, &sends[count]), ASYNC_SOCKET_SEND_SYNC_OK);
        }

        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
        assert_int_equal(close(peer), 0);
        TEST_WAIT_UNTIL(all_called(receives, 3) && all_called(sends, count) && all_called(&notify, 1), 3000);

        for (int i = 0; i < 3; i++)
        {
            assert_once_with(&receives[i], ASYNC_SOCKET_RECEIVE_ABANDONED);
            assert_int_equal(atomic_load(&receives[i].bytes), 0);
        }
        for (uint32_t i = 0; i < count; i++)
        {
            assert_int_equal(atomic_load(&sends[i].calls), 1);
            int result = atomic_load(&sends[i].result);
            assert_true(result == ASYNC_SOCKET_SEND_OK || result == ASYNC_SOCKET_SEND_ABANDONED);
        }
        assert_int_equal(atomic_load(&sends[count - 1].result), ASYNC_SOCKET_SEND_ABANDONED);
        assert_int_equal(atomic_load(&notify.calls), 1);
        assert_true(atomic_load(&notify.result) == ASYNC_SOCKET_NOTIFY_IO_RESULT_IN ||
                    atomic_load(&notify.result) == ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR);
        OP_RECORD late_send;
        op_record_init(&late_send, NULL);
        assert_int_equal(test_send(socket, data, 16, &late_send), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);

        async_socket_destroy(socket);
        assert_int_equal(atomic_load(&late_send.calls), 0);
        assert_int_equal(atomic_load(&notify.calls), 1);
        for (int i = 0; i < 3; i++)
        {
            assert_int_equal(atomic_load(&receives[i].calls), 1);
        }
    }

    lifecycle_end(&leak);
}

/* ---- threads ---- */

static void* no_op_thread(void* arg)
{
    return arg;
}

/* The thread count with no platform, after one thread was created and joined: a sanitizer
 * runtime starts its own helper thread at the first pthread_create, which is then counted. */
static int thread_count_baseline(void)
{
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, no_op_thread, NULL), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    return test_count_threads();
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_015 */
static void the_number_of_sockets_does_not_change_the_number_of_threads(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    leak_check_begin(&leak);
    int threads_before = thread_count_baseline();
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    assert_int_equal(platform_init(), 0);
    int threads_after_init = test_count_threads();
    assert_true(threads_after_init > threads_before);
    if (getenv("ASYNC_SOCKET_WORKERS") == NULL)
    {
        /* the default: completion_port_default_worker_count() */
        assert_int_equal(threads_after_init - threads_before, (int)completion_port_default_worker_count());
    }

    enum { PAIRS = 100 };
    static ASYNC_SOCKET_HANDLE sockets[PAIRS][2];
    static OP_RECORD receives[PAIRS][2];
    static OP_RECORD sends[PAIRS][2];
    static uint8_t buffers[PAIRS][2][8];
    uint8_t data[8];
    test_fill_pattern(data, sizeof(data), 0);
    for (int i = 0; i < PAIRS; i++)
    {
        int fds[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        for (int end = 0; end < 2; end++)
        {
            sockets[i][end] = async_socket_create(NULL, fds[end]);
            assert_non_null(sockets[i][end]);
            OP_RECORD open_record;
            op_record_init(&open_record, NULL);
            assert_int_equal(test_open(sockets[i][end], &open_record), 0);
            op_record_init(&receives[i][end], NULL);
            assert_int_equal(test_receive(sockets[i][end], buffers[i][end], sizeof(buffers[i][end]), &receives[i][end]), 0);
        }
    }
    assert_int_equal(test_count_threads(), threads_after_init);
    /* all 200 sockets busy at once */
    for (int i = 0; i < PAIRS; i++)
    {
        for (int end = 0; end < 2; end++)
        {
            op_record_init(&sends[i][end], NULL);
            assert_int_equal(test_send(sockets[i][end], data, sizeof(data), &sends[i][end]), ASYNC_SOCKET_SEND_SYNC_OK);
        }
    }
    for (int i = 0; i < PAIRS; i++)
    {
        for (int end = 0; end < 2; end++)
        {
            TEST_WAIT_UNTIL(atomic_load(&receives[i][end].calls) == 1, 3000);
            assert_once_with(&receives[i][end], ASYNC_SOCKET_RECEIVE_OK);
            assert_once_with(&sends[i][end], ASYNC_SOCKET_SEND_OK);
        }
    }
    assert_int_equal(test_count_threads(), threads_after_init);
    for (int i = 0; i < PAIRS; i++)
    {
        async_socket_destroy(sockets[i][0]);
        async_socket_destroy(sockets[i][1]);
    }
    assert_int_equal(test_count_threads(), threads_after_init);

    platform_deinit();
    assert_int_equal(test_count_threads(), threads_before);
    leak_check_end(&leak);
}

/* Starts the platform, checks that it has `expected` workers more than `base` threads and that
 * a socket works on them, and stops it again. */
static void assert_platform_workers(int base, int expected)
{
    assert_int_equal(platform_init(), 0);
    assert_int_equal(test_count_threads(), base + expected);
    int peer;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(0, 0, &peer, NULL);
    OP_RECORD receive;
    uint8_t buffer[4];
    op_record_init(&receive, NULL);
    assert_int_equal(test_receive(socket, buffer, sizeof(buffer), &receive), 0);
    assert_int_equal(send(peer, "ping", 4, MSG_NOSIGNAL), 4);
    TEST_WAIT_UNTIL(atomic_load(&receive.calls) == 1, 3000);
    assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_OK);
    async_socket_destroy(socket);
    assert_int_equal(close(peer), 0);
    assert_int_equal(test_count_threads(), base + expected);
    platform_deinit();
    assert_int_equal(test_count_threads(), base);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_015 */
static void the_worker_count_is_configurable(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    leak_check_begin(&leak);
    char* saved_env = getenv("ASYNC_SOCKET_WORKERS");
    char saved[32] = {0};
    if (saved_env != NULL)
    {
        (void)snprintf(saved, sizeof(saved), "%s", saved_env);
    }
    int base = thread_count_baseline();

    assert_int_equal(unsetenv("ASYNC_SOCKET_WORKERS"), 0);
    assert_int_equal(platform_linux_set_worker_count(3), 0);
    assert_platform_workers(base, 3);

    assert_int_equal(platform_linux_set_worker_count(0), 0);
    assert_int_equal(setenv("ASYNC_SOCKET_WORKERS", "3", 1), 0);
    assert_platform_workers(base, 3);

    /* the explicit setting wins over the environment */
    assert_int_equal(platform_linux_set_worker_count(1), 0);
    assert_platform_workers(base, 1);

    assert_int_not_equal(platform_linux_set_worker_count(COMPLETION_PORT_MAX_WORKERS + 1), 0);
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    assert_int_equal(unsetenv("ASYNC_SOCKET_WORKERS"), 0);
    assert_platform_workers(base, (int)completion_port_default_worker_count());

    if (saved_env != NULL)
    {
        assert_int_equal(setenv("ASYNC_SOCKET_WORKERS", saved, 1), 0);
    }
    leak_check_end(&leak);
}

/* ---- many threads sending and closing ---- */

#define SENDERS 8
#define SENDS_PER_THREAD 24
#define SEND_ROUNDS 200

typedef struct SENDER_TAG
{
    pthread_t thread;
    int index;
    OP_RECORD records[SENDS_PER_THREAD];
    int sync_results[SENDS_PER_THREAD];
    uint8_t data[SENDS_PER_THREAD][512];
} SENDER;

typedef struct SEND_RACE_TAG
{
    pthread_barrier_t start;
    pthread_barrier_t done;
    ASYNC_SOCKET_HANDLE socket;
    int round;
    atomic_int quit;
    SENDER senders[SENDERS];
} SEND_RACE;

static SEND_RACE race;

static void* sender_main(void* arg)
{
    SENDER* sender = arg;
    for (;;)
    {
        (void)pthread_barrier_wait(&race.start);
        if (atomic_load(&race.quit) != 0)
        {
            return NULL;
        }
        /* two threads per round close the socket part-way through their sends */
        bool closer = sender->index == race.round % SENDERS || sender->index == (race.round + 3) % SENDERS;
        int close_at = 4 + (race.round + sender->index) % (SENDS_PER_THREAD - 4);
        for (int i = 0; i < SENDS_PER_THREAD; i++)
        {
            if (closer && i == close_at)
            {
                async_socket_close(race.socket);
            }
            op_record_init(&sender->records[i], NULL);
            sender->sync_results[i] = (int)test_send(race.socket, sender->data[i], sizeof(sender->data[i]), &sender->records[i]);
        }
        (void)pthread_barrier_wait(&race.done);
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_024 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_037 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_051 */
static void eight_threads_sending_and_closing_get_every_callback_once(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    assert_int_equal(pthread_barrier_init(&race.start, NULL, SENDERS + 1), 0);
    assert_int_equal(pthread_barrier_init(&race.done, NULL, SENDERS + 1), 0);
    atomic_init(&race.quit, 0);
    for (int t = 0; t < SENDERS; t++)
    {
        race.senders[t].index = t;
        for (int i = 0; i < SENDS_PER_THREAD; i++)
        {
            memset(race.senders[t].data[i], t * SENDS_PER_THREAD + i, sizeof(race.senders[t].data[i]));
        }
        assert_int_equal(pthread_create(&race.senders[t].thread, NULL, sender_main, &race.senders[t]), 0);
    }
    int accepted_total = 0;
    int refused_total = 0;

    for (int round = 0; round < SEND_ROUNDS; round++)
    {
        int peer;
        /* small buffers in even rounds, so that sends queue up and get abandoned */
        int buffer_size = (round & 1) == 0 ? SMALL_BUFFER : 0;
        race.socket = open_tcp_async(buffer_size, buffer_size, &peer, NULL);
        race.round = round;
        (void)pthread_barrier_wait(&race.start);
        (void)pthread_barrier_wait(&race.done);

        /* every close has returned: each accepted send was called back exactly once, each
         * refused one never */
        uint64_t ok_bytes = 0;
        for (int t = 0; t < SENDERS; t++)
        {
            SENDER* sender = &race.senders[t];
            for (int i = 0; i < SENDS_PER_THREAD; i++)
            {
                if (sender->sync_results[i] == ASYNC_SOCKET_SEND_SYNC_OK)
                {
                    accepted_total++;
                    assert_int_equal(atomic_load(&sender->records[i].calls), 1);
                    int result = atomic_load(&sender->records[i].result);
                    assert_true(result == ASYNC_SOCKET_SEND_OK || result == ASYNC_SOCKET_SEND_ABANDONED);
                    ok_bytes += (result == ASYNC_SOCKET_SEND_OK) ? sizeof(sender->data[i]) : 0;
                }
                else
                {
                    refused_total++;
                    assert_int_equal(sender->sync_results[i], ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
                    assert_int_equal(atomic_load(&sender->records[i].calls), 0);
                }
            }
        }
        assert_true(drain_until_eof(peer, 3000, false) >= ok_bytes);
        async_socket_destroy(race.socket);
        assert_int_equal(close(peer), 0);
        for (int t = 0; t < SENDERS; t++)
        {
            for (int i = 0; i < SENDS_PER_THREAD; i++)
            {
                int expected = race.senders[t].sync_results[i] == ASYNC_SOCKET_SEND_SYNC_OK ? 1 : 0;
                assert_int_equal(atomic_load(&race.senders[t].records[i].calls), expected);
            }
        }
    }
    /* both outcomes happened in every round: the first closer's sends before its close were
     * accepted, each closer's sends after its own close refused */
    assert_true(accepted_total >= SEND_ROUNDS * 4);
    assert_true(refused_total >= SEND_ROUNDS * 2);

    atomic_store(&race.quit, 1);
    (void)pthread_barrier_wait(&race.start);
    for (int t = 0; t < SENDERS; t++)
    {
        assert_int_equal(pthread_join(race.senders[t].thread, NULL), 0);
    }
    (void)pthread_barrier_destroy(&race.start);
    (void)pthread_barrier_destroy(&race.done);
    lifecycle_end(&leak);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(close_from_another_thread_waits_for_running_callbacks),
    cmocka_unit_test(callbacks_on_two_workers_closing_each_others_socket_do_not_deadlock),
    cmocka_unit_test(close_calls_back_every_pending_op_exactly_once),
    cmocka_unit_test(two_thousand_open_close_destroy_cycles_leak_nothing),
    cmocka_unit_test(a_reused_fd_never_gets_the_old_sockets_events),
    cmocka_unit_test(peer_shutdown_then_close_completes_every_op_without_a_close),
    cmocka_unit_test(peer_reset_completes_every_op_without_a_close),
    cmocka_unit_test(the_number_of_sockets_does_not_change_the_number_of_threads),
    cmocka_unit_test(the_worker_count_is_configurable),
    cmocka_unit_test(eight_threads_sending_and_closing_get_every_callback_once),
};

TEST_MAIN(tests)
