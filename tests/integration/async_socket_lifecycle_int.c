/* Integration tests over loopback TCP: closing and destroying an async socket from inside its own
 * callbacks, the synchronous destroy, the open/close state rules, and what open does to the fd.
 *
 * Every test counts each operation's callbacks (exactly once), checks that no callback starts
 * after the close of its socket has returned, and ends with no allocation and no fd leaked. A
 * watchdog turns a deadlock into a failure with a message instead of a ctest timeout. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/platform.h"
#include "log_capture.h"
#include "lifecycle_int_util.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"

#define WATCHDOG_MS 8000
#define SMALL_BUFFER 4096
#define SEND_CHUNK 4096
#define MAX_SENDS 256

/* The socket a hook acts on, and what happened to it. */
typedef struct TARGET_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    atomic_int close_returned;  /* async_socket_close (or destroy) called by a hook has returned */
    atomic_int closes;          /* hooks that closed or destroyed the socket */
    atomic_int sleep_ms;        /* for hook_sleep_on_abandoned */
    atomic_int slept_started;
    atomic_int slept_finished;
} TARGET;

static void target_init(TARGET* target, ASYNC_SOCKET_HANDLE socket)
{
    target->socket = socket;
    atomic_init(&target->close_returned, 0);
    atomic_init(&target->closes, 0);
    atomic_init(&target->sleep_ms, 0);
    atomic_init(&target->slept_started, 0);
    atomic_init(&target->slept_finished, 0);
}

static void hook_close(OP_RECORD* record)
{
    TARGET* target = record->hook_context;
    (void)atomic_fetch_add(&target->closes, 1);
    async_socket_close(target->socket);
    atomic_store(&target->close_returned, 1);
}

/* Closes the socket from the first send callback that runs on a worker (not inline). */
static void hook_close_from_first_queued_send(OP_RECORD* record)
{
    TARGET* target = record->hook_context;
    if (atomic_load(&record->inline_call) != 0 || atomic_load(&record->result) != ASYNC_SOCKET_SEND_OK)
    {
        return;
    }
    int expected = 0;
    if (atomic_compare_exchange_strong(&target->closes, &expected, 1))
    {
        async_socket_close(target->socket);
        atomic_store(&target->close_returned, 1);
    }
}

static void hook_destroy(OP_RECORD* record)
{
    TARGET* target = record->hook_context;
    (void)atomic_fetch_add(&target->closes, 1);
    async_socket_destroy(target->socket);
    atomic_store(&target->close_returned, 1);
}

/* An ABANDONED callback that takes its time, so that a close stays in progress. */
static void hook_sleep_on_abandoned(OP_RECORD* record)
{
    TARGET* target = record->hook_context;
    if (atomic_load(&record->result) != ASYNC_SOCKET_RECEIVE_ABANDONED)
    {
        return;
    }
    atomic_store(&target->slept_started, 1);
    test_sleep_ms((unsigned int)atomic_load(&target->sleep_ms));
    atomic_store(&target->slept_finished, 1);
}

/* After a close: every operation fails synchronously and never calls back. */
static void assert_ops_rejected_without_callback(ASYNC_SOCKET_HANDLE socket)
{
    OP_RECORD send;
    OP_RECORD receive;
    OP_RECORD notify_in;
    OP_RECORD notify_out;
    uint8_t data[8] = {0};
    uint8_t buffer[8];
    op_record_init(&send, NULL);
    op_record_init(&receive, NULL);
    op_record_init(&notify_in, NULL);
    op_record_init(&notify_out, NULL);

    assert_int_equal(test_send(socket, data, sizeof(data), &send), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    assert_int_not_equal(test_receive(socket, buffer, sizeof(buffer), &receive), 0);
    assert_int_not_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &notify_in), 0);
    assert_int_not_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, &notify_out), 0);
    test_sleep_ms(20);
    assert_int_equal(atomic_load(&send.calls), 0);
    assert_int_equal(atomic_load(&receive.calls), 0);
    assert_int_equal(atomic_load(&notify_in.calls), 0);
    assert_int_equal(atomic_load(&notify_out.calls), 0);
}



/* Every send was called back once, OK or ABANDONED, the OK ones before the others (bytes go out
 * in order, so an abandoned send is never followed by a completed one). Returns the OK bytes. */
static uint64_t assert_sends_ok_then_abandoned(const OP_RECORD* sends, uint32_t count, uint32_t length)
{
    uint64_t ok_bytes = 0;
    bool abandoned_seen = false;
    for (uint32_t i = 0; i < count; i++)
    {
        assert_int_equal(atomic_load(&sends[i].calls), 1);
        int result = atomic_load(&sends[i].result);
        if (result == ASYNC_SOCKET_SEND_OK)
        {
            if (abandoned_seen)
            {
                fail_msg("send %u completed OK after an earlier send was abandoned", i);
            }
            ok_bytes += length;
        }
        else
        {
            assert_int_equal(result, ASYNC_SOCKET_SEND_ABANDONED);
            abandoned_seen = true;
        }
    }
    return ok_bytes;
}

/* ---- close from inside each kind of callback ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_036 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_041 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_061 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_080 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_008 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_084 */
static void close_in_inline_send_callback_abandons_the_pending_ops(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    TARGET target;
    target_init(&target, open_tcp_async(0, 0, &peer, NULL));
    OP_RECORD ops[5]; /* 3 receives, 1 notify, 1 send */
    uint8_t receive_buffers[3][16];
    for (int i = 0; i < 5; i++)
    {
        op_record_init(&ops[i], &target.close_returned);
    }
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(test_receive(target.socket, receive_buffers[i], sizeof(receive_buffers[i]), &ops[i]), 0);
    }
    assert_int_equal(test_notify(target.socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &ops[3]), 0);
    uint8_t data[100];
    test_fill_pattern(data, sizeof(data), 0);
    ops[4].hook = hook_close;
    ops[4].hook_context = &target;

    assert_int_equal(test_send(target.socket, data, sizeof(data), &ops[4]), ASYNC_SOCKET_SEND_SYNC_OK);

    /* the send completed inline and its callback's close ran to the end before send returned */
    assert_once_with(&ops[4], ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&ops[4].inline_call), 1);
    assert_int_equal(atomic_load(&target.close_returned), 1);
    for (int i = 0; i < 3; i++)
    {
        assert_once_with(&ops[i], ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_int_equal(atomic_load(&ops[i].bytes), 0);
    }
    assert_once_with(&ops[3], ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    /* the bytes sent before the close arrive, then the end of the stream */
    assert_int_equal(drain_until_eof(peer, 2000, true), sizeof(data));
    assert_ops_rejected_without_callback(target.socket);
    for (int i = 0; i < 5; i++)
    {
        assert_int_equal(atomic_load(&ops[i].calls), 1);
    }
    assert_no_callback_after_close("op", ops, 5);

    async_socket_destroy(target.socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_036 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_041 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_080 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_008 */
static void close_in_queued_send_callback_abandons_the_pending_ops(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    TARGET target;
    target_init(&target, open_tcp_async(SMALL_BUFFER, SMALL_BUFFER, &peer, NULL));
    static OP_RECORD sends[MAX_SENDS];
    static uint8_t data[MAX_SENDS * SEND_CHUNK];
    OP_RECORD others[3]; /* 2 receives, 1 notify */
    uint8_t receive_buffers[2][16];
    test_fill_pattern(data, sizeof(data), 0);
    for (int i = 0; i < 3; i++)
    {
        op_record_init(&others[i], &target.close_returned);
    }
    for (int i = 0; i < 2; i++)
    {
        assert_int_equal(test_receive(target.socket, receive_buffers[i], sizeof(receive_buffers[i]), &others[i]), 0);
    }
    assert_int_equal(test_notify(target.socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &others[2]), 0);
    for (uint32_t i = 0; i < MAX_SENDS; i++)
    {
        op_record_init(&sends[i], &target.close_returned);
        sends[i].hook = hook_close_from_first_queued_send;
        sends[i].hook_context = &target;
    }
    uint32_t count = send_until_queued(target.socket, data, SEND_CHUNK, sends, MAX_SENDS - 64);
    for (uint32_t i = 0; i < 64; i++, count++)
    {
        assert_int_equal(test_send(target.socket, data + (size_t)count * SEND_CHUNK, SEND_CHUNK, &sends[count]), ASYNC_SOCKET_SEND_SYNC_OK);
    }

    /* the peer starts reading: queued sends complete on a worker, and the first one closes */
    uint64_t received = drain_until_eof(peer, 3000, true);
    TEST_WAIT_UNTIL(all_called(sends, count) && all_called(others, 3), 3000);
    /* the abandoned callbacks are counted while the closing hook is still inside
     * async_socket_close on its worker: wait for that close to return too */
    TEST_WAIT_UNTIL(atomic_load(&target.close_returned) == 1, 3000);

    assert_int_equal(atomic_load(&target.closes), 1);
    uint64_t ok_bytes = assert_sends_ok_then_abandoned(sends, count, SEND_CHUNK);
    assert_true(ok_bytes < (uint64_t)count * SEND_CHUNK); /* the close cut the queue short */
    /* every completed send is on the wire; at most one more was partly sent */
    assert_true(received >= ok_bytes);
    assert_true(received <= ok_bytes + SEND_CHUNK);
    assert_once_with(&others[0], ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_once_with(&others[1], ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_once_with(&others[2], ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    assert_ops_rejected_without_callback(target.socket);
    assert_no_callback_after_close("receive/notify", others, 3);
    assert_no_callback_after_close("send", sends, count);

    async_socket_destroy(target.socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_036 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_041 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_080 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
static void close_in_receive_callback_abandons_the_pending_ops(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    TARGET target;
    target_init(&target, open_tcp_async(SMALL_BUFFER, SMALL_BUFFER, &peer, NULL));
    static OP_RECORD sends[MAX_SENDS];
    static uint8_t data[MAX_SENDS * SEND_CHUNK];
    OP_RECORD receives[4];
    uint8_t receive_buffers[4][64];
    test_fill_pattern(data, sizeof(data), 0);
    for (int i = 0; i < 4; i++)
    {
        op_record_init(&receives[i], &target.close_returned);
        assert_int_equal(test_receive(target.socket, receive_buffers[i], sizeof(receive_buffers[i]), &receives[i]), 0);
    }
    receives[0].hook = hook_close;
    receives[0].hook_context = &target;
    /* the data that completes the receive also satisfies this notify: whether it is called
     * back with IN before the close or ABANDONED by it, it must not run after the close */
    OP_RECORD notify;
    op_record_init(&notify, &target.close_returned);
    assert_int_equal(test_notify(target.socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &notify), 0);
    for (uint32_t i = 0; i < MAX_SENDS; i++)
    {
        op_record_init(&sends[i], &target.close_returned);
    }
    /* the peer does not read: sends queue up behind a full socket buffer */
    uint32_t count = send_until_queued(target.socket, data, SEND_CHUNK, sends, MAX_SENDS - 4);
    for (uint32_t i = 0; i < 4; i++, count++)
    {
        assert_int_equal(test_send(target.socket, data + (size_t)count * SEND_CHUNK, SEND_CHUNK, &sends[count]), ASYNC_SOCKET_SEND_SYNC_OK);
    }

    uint8_t incoming[10];
    test_fill_pattern(incoming, sizeof(incoming), 0);
    assert_int_equal(send(peer, incoming, sizeof(incoming), MSG_NOSIGNAL), (ssize_t)sizeof(incoming));
    TEST_WAIT_UNTIL(all_called(receives, 4) && all_called(sends, count) && all_called(&notify, 1), 3000);

    assert_once_with(&receives[0], ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&receives[0].bytes), sizeof(incoming));
    assert_int_equal(test_check_pattern(receive_buffers[0], sizeof(incoming), 0), sizeof(incoming));
    assert_int_equal(atomic_load(&receives[0].inline_call), 0);
    /* the closing receive callback may still be inside async_socket_close on its worker */
    TEST_WAIT_UNTIL(atomic_load(&target.close_returned) == 1, 3000);
    for (int i = 1; i < 4; i++)
    {
        assert_once_with(&receives[i], ASYNC_SOCKET_RECEIVE_ABANDONED);
        assert_int_equal(atomic_load(&receives[i].bytes), 0);
    }
    uint64_t ok_bytes = assert_sends_ok_then_abandoned(sends, count, SEND_CHUNK);
    assert_int_equal(atomic_load(&sends[count - 1].result), ASYNC_SOCKET_SEND_ABANDONED);
    uint64_t received = drain_until_eof(peer, 3000, true);
    assert_true(received >= ok_bytes && received <= ok_bytes + SEND_CHUNK);
    assert_ops_rejected_without_callback(target.socket);
    assert_int_equal(atomic_load(&notify.calls), 1);
    assert_true(atomic_load(&notify.result) == ASYNC_SOCKET_NOTIFY_IO_RESULT_IN ||
                atomic_load(&notify.result) == ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    assert_no_callback_after_close("receive", receives, 4);
    assert_no_callback_after_close("send", sends, count);
    assert_no_callback_after_close("notify", &notify, 1);

    async_socket_destroy(target.socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_036 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_041 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_080 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_008 */
static void close_in_notify_callback_abandons_the_pending_ops(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    TARGET target;
    target_init(&target, open_tcp_async(0, 0, &peer, NULL));
    OP_RECORD ops[5]; /* 3 receives, notify IN, notify OUT */
    uint8_t receive_buffers[3][16];
    for (int i = 0; i < 5; i++)
    {
        op_record_init(&ops[i], &target.close_returned);
    }
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(test_receive(target.socket, receive_buffers[i], sizeof(receive_buffers[i]), &ops[i]), 0);
    }
    assert_int_equal(test_notify(target.socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &ops[3]), 0);
    ops[4].hook = hook_close;
    ops[4].hook_context = &target;
    /* the socket can be written to, so this notify completes on a worker, and closes */
    assert_int_equal(test_notify(target.socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT, &ops[4]), 0);
    TEST_WAIT_UNTIL(all_called(ops, 5), 3000);

    assert_once_with(&ops[4], ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
    assert_int_equal(atomic_load(&ops[4].inline_call), 0);
    TEST_WAIT_UNTIL(atomic_load(&target.close_returned) == 1, 3000);
    for (int i = 0; i < 3; i++)
    {
        assert_once_with(&ops[i], ASYNC_SOCKET_RECEIVE_ABANDONED);
    }
    assert_once_with(&ops[3], ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    assert_int_equal(drain_until_eof(peer, 2000, false), 0);
    assert_ops_rejected_without_callback(target.socket);
    assert_no_callback_after_close("op", ops, 5);

    async_socket_destroy(target.socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_009 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_033 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_041 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_104 */
static void close_in_open_callback_leaves_the_socket_closed(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int fds[2];
    assert_int_equal(test_tcp_pair(fds, 0, 0), 0);
    TARGET target;
    target_init(&target, async_socket_create(NULL, fds[0]));
    assert_non_null(target.socket);
    OP_RECORD open_record;
    op_record_init(&open_record, &target.close_returned);
    open_record.hook = hook_close;
    open_record.hook_context = &target;

    assert_int_equal(test_open(target.socket, &open_record), 0);

    assert_once_with(&open_record, ASYNC_SOCKET_OPEN_OK);
    assert_int_equal(atomic_load(&open_record.inline_call), 1);
    assert_int_equal(atomic_load(&target.close_returned), 1);
    assert_true(fd_is_closed(fds[0]));
    assert_int_equal(drain_until_eof(fds[1], 2000, false), 0);
    assert_ops_rejected_without_callback(target.socket);
    OP_RECORD reopen;
    op_record_init(&reopen, NULL);
    assert_int_not_equal(test_open(target.socket, &reopen), 0);
    assert_int_equal(atomic_load(&reopen.calls), 0);

    async_socket_destroy(target.socket);
    assert_int_equal(close(fds[1]), 0);
    lifecycle_end(&leak);
}

/* ---- destroy from inside a callback ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_010 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
static void destroy_in_receive_callback_releases_the_socket_when_it_returns(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    warm_up_port();
    int64_t live_before = sys_fault_live_allocations();

    int peer;
    int fd;
    TARGET target;
    target_init(&target, open_tcp_async(SMALL_BUFFER, SMALL_BUFFER, &peer, &fd));
    static OP_RECORD sends[MAX_SENDS];
    static uint8_t data[MAX_SENDS * SEND_CHUNK];
    OP_RECORD receives[3];
    uint8_t receive_buffers[3][32];
    test_fill_pattern(data, sizeof(data), 0);
    for (int i = 0; i < 3; i++)
    {
        op_record_init(&receives[i], &target.close_returned);
        assert_int_equal(test_receive(target.socket, receive_buffers[i], sizeof(receive_buffers[i]), &receives[i]), 0);
    }
    receives[0].hook = hook_destroy;
    receives[0].hook_context = &target;
    for (uint32_t i = 0; i < MAX_SENDS; i++)
    {
        op_record_init(&sends[i], &target.close_returned);
    }
    uint32_t count = send_until_queued(target.socket, data, SEND_CHUNK, sends, MAX_SENDS - 2);
    for (uint32_t i = 0; i < 2; i++, count++)
    {
        assert_int_equal(test_send(target.socket, data + (size_t)count * SEND_CHUNK, SEND_CHUNK, &sends[count]), ASYNC_SOCKET_SEND_SYNC_OK);
    }

    uint8_t incoming[8];
    test_fill_pattern(incoming, sizeof(incoming), 0);
    assert_int_equal(send(peer, incoming, sizeof(incoming), MSG_NOSIGNAL), (ssize_t)sizeof(incoming));
    TEST_WAIT_UNTIL(atomic_load(&receives[0].hook_done) == 1, 3000);

    assert_once_with(&receives[0], ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&receives[0].bytes), sizeof(incoming));
    assert_once_with(&receives[1], ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_once_with(&receives[2], ASYNC_SOCKET_RECEIVE_ABANDONED);
    (void)assert_sends_ok_then_abandoned(sends, count, SEND_CHUNK);
    assert_int_equal(atomic_load(&sends[count - 1].result), ASYNC_SOCKET_SEND_ABANDONED);
    /* released once the callback has unwound */
    TEST_WAIT_UNTIL(sys_fault_live_allocations() == live_before, 3000);
    assert_true(fd_is_closed(fd));
    (void)drain_until_eof(peer, 3000, true);
    test_sleep_ms(20);
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(atomic_load(&receives[i].calls), 1);
    }
    assert_no_callback_after_close("receive", receives, 3);
    assert_no_callback_after_close("send", sends, count);

    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_010 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
static void destroy_in_inline_send_callback_releases_the_socket(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    warm_up_port();
    int64_t live_before = sys_fault_live_allocations();

    int peer;
    int fd;
    TARGET target;
    target_init(&target, open_tcp_async(0, 0, &peer, &fd));
    OP_RECORD ops[4]; /* 2 receives, notify IN, send */
    uint8_t receive_buffers[2][32];
    for (int i = 0; i < 4; i++)
    {
        op_record_init(&ops[i], &target.close_returned);
    }
    for (int i = 0; i < 2; i++)
    {
        assert_int_equal(test_receive(target.socket, receive_buffers[i], sizeof(receive_buffers[i]), &ops[i]), 0);
    }
    assert_int_equal(test_notify(target.socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &ops[2]), 0);
    ops[3].hook = hook_destroy;
    ops[3].hook_context = &target;
    uint8_t data[64];
    test_fill_pattern(data, sizeof(data), 0);

    assert_int_equal(test_send(target.socket, data, sizeof(data), &ops[3]), ASYNC_SOCKET_SEND_SYNC_OK);

    assert_once_with(&ops[3], ASYNC_SOCKET_SEND_OK);
    assert_int_equal(atomic_load(&ops[3].inline_call), 1);
    assert_int_equal(atomic_load(&target.close_returned), 1);
    assert_once_with(&ops[0], ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_once_with(&ops[1], ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_once_with(&ops[2], ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    TEST_WAIT_UNTIL(sys_fault_live_allocations() == live_before, 3000);
    assert_true(fd_is_closed(fd));
    assert_int_equal(drain_until_eof(peer, 2000, true), sizeof(data));
    test_sleep_ms(20);
    for (int i = 0; i < 4; i++)
    {
        assert_int_equal(atomic_load(&ops[i].calls), 1);
    }

    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* ---- destroy outside callbacks ---- */

typedef struct REPOST_STATE_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    uint8_t buffer[256];
    OP_RECORD records[4096];
    atomic_int next;
    atomic_int accepted;
} REPOST_STATE;

/* A receive callback that posts the next receive while the socket takes them. */
static void hook_repost_receive(OP_RECORD* record)
{
    REPOST_STATE* repost = record->hook_context;
    if (atomic_load(&record->result) != ASYNC_SOCKET_RECEIVE_OK)
    {
        return;
    }
    int index = atomic_fetch_add(&repost->next, 1);
    if (index >= (int)(sizeof(repost->records) / sizeof(repost->records[0])))
    {
        return;
    }
    OP_RECORD* next = &repost->records[index];
    op_record_init(next, record->close_returned);
    next->hook = hook_repost_receive;
    next->hook_context = repost;
    if (test_receive(repost->socket, repost->buffer, sizeof(repost->buffer), next) == 0)
    {
        (void)atomic_fetch_add(&repost->accepted, 1);
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_022 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_103 */
static void destroy_returns_with_the_fd_closed_and_the_memory_freed(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);
    warm_up_port();
    int64_t live_before = sys_fault_live_allocations();
    int fds_before = test_count_open_fds();
    static REPOST_STATE repost;

    for (int round = 0; round < 40; round++)
    {
        int peer;
        int fd;
        atomic_int destroyed;
        atomic_init(&destroyed, 0);
        memset(&repost, 0, sizeof(repost));
        repost.socket = open_tcp_async(0, 0, &peer, &fd);
        atomic_init(&repost.next, 1);
        atomic_init(&repost.accepted, 1);
        op_record_init(&repost.records[0], &destroyed);
        repost.records[0].hook = hook_repost_receive;
        repost.records[0].hook_context = &repost;
        assert_int_equal(test_receive(repost.socket, repost.buffer, sizeof(repost.buffer), &repost.records[0]), 0);
        OP_RECORD notify;
        op_record_init(&notify, &destroyed);
        assert_int_equal(test_notify(repost.socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &notify), 0);

        /* in odd rounds, data is arriving (and callbacks run on workers) while destroy runs */
        if ((round & 1) != 0)
        {
            uint8_t chunk[1024];
            test_fill_pattern(chunk, sizeof(chunk), 0);
            for (int i = 0; i < 8; i++)
            {
                assert_int_equal(send(peer, chunk, sizeof(chunk), MSG_NOSIGNAL), (ssize_t)sizeof(chunk));
            }
        }
        async_socket_destroy(repost.socket);
        atomic_store(&destroyed, 1);

        /* the implicit close called every pending op back, and everything is released */
        int posted = atomic_load(&repost.accepted);
        assert_true(posted <= atomic_load(&repost.next));
        for (int i = 0; i < posted; i++)
        {
            assert_int_equal(atomic_load(&repost.records[i].calls), 1);
        }
        assert_int_equal(atomic_load(&notify.calls), 1);
        if (atomic_load(&repost.next) > posted)
        {
            /* the last receive completed, and the close refused the one it posted next */
            assert_int_equal(atomic_load(&repost.records[posted - 1].result), ASYNC_SOCKET_RECEIVE_OK);
            assert_int_equal(atomic_load(&repost.records[posted].calls), 0);
        }
        else
        {
            assert_int_equal(atomic_load(&repost.records[posted - 1].result), ASYNC_SOCKET_RECEIVE_ABANDONED);
        }
        if ((round & 1) == 0)
        {
            assert_int_equal(atomic_load(&notify.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
        }
        assert_true(fd_is_closed(fd));
        assert_int_equal(sys_fault_live_allocations(), live_before);
        assert_int_equal(test_count_open_fds(), fds_before + 1);
        (void)drain_until_eof(peer, 2000, false);
        assert_int_equal(close(peer), 0);
        test_sleep_ms(2);
        for (int i = 0; i < posted; i++)
        {
            assert_int_equal(atomic_load(&repost.records[i].calls), 1);
        }
        assert_no_callback_after_close("receive", repost.records, (size_t)posted);
        assert_int_equal(atomic_load(&notify.after_close), 0);
    }

    lifecycle_end(&leak);
}

typedef struct CLOSER_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    atomic_int returned;
} CLOSER;

static void* close_on_thread(void* arg)
{
    CLOSER* closer = arg;
    async_socket_close(closer->socket);
    atomic_store(&closer->returned, 1);
    return NULL;
}

/* Opens a socket with one pending receive whose ABANDONED callback sleeps `sleep_ms`, starts a
 * close on another thread, and returns once that callback has started. */
static void start_slow_close(TARGET* target, OP_RECORD* receive, uint8_t* buffer, uint32_t length, CLOSER* closer, pthread_t* thread, int* peer)
{
    target_init(target, open_tcp_async(0, 0, peer, NULL));
    atomic_store(&target->sleep_ms, 300);
    op_record_init(receive, NULL);
    receive->hook = hook_sleep_on_abandoned;
    receive->hook_context = target;
    assert_int_equal(test_receive(target->socket, buffer, length, receive), 0);
    closer->socket = target->socket;
    atomic_init(&closer->returned, 0);
    assert_int_equal(pthread_create(thread, NULL, close_on_thread, closer), 0);
    TEST_WAIT_UNTIL(atomic_load(&target->slept_started) == 1, 3000);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_020 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_022 */
static void destroy_waits_for_a_close_running_on_another_thread(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    TARGET target;
    OP_RECORD receive;
    uint8_t buffer[16];
    CLOSER closer;
    pthread_t thread;
    int peer;
    start_slow_close(&target, &receive, buffer, sizeof(buffer), &closer, &thread, &peer);

    /* the close is still in its ABANDONED callback: destroy must wait for it */
    assert_int_equal(atomic_load(&target.slept_finished), 0);
    async_socket_destroy(target.socket);
    assert_int_equal(atomic_load(&target.slept_finished), 1);
    assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_ABANDONED);

    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(atomic_load(&closer.returned), 1);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* ---- open and close rules ---- */

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_024 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_042 */
static void second_close_on_another_thread_returns_after_the_first_finished(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    TARGET target;
    OP_RECORD receive;
    uint8_t buffer[16];
    CLOSER closer;
    pthread_t thread;
    int peer;
    start_slow_close(&target, &receive, buffer, sizeof(buffer), &closer, &thread, &peer);

    assert_int_equal(atomic_load(&target.slept_finished), 0);
    async_socket_close(target.socket);
    assert_int_equal(atomic_load(&target.slept_finished), 1);
    assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_ops_rejected_without_callback(target.socket);

    assert_int_equal(pthread_join(thread, NULL), 0);
    /* a third close of a closed socket returns at once, with no callback */
    async_socket_close(target.socket);
    assert_int_equal(atomic_load(&receive.calls), 1);
    async_socket_destroy(target.socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_029 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_104 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_042 */
static void reopen_after_close_fails_without_callback(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    int fd;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(0, 0, &peer, &fd);
    async_socket_close(socket);
    /* close released the fd: the peer sees the end of the stream before any destroy */
    assert_true(fd_is_closed(fd));
    assert_int_equal(drain_until_eof(peer, 2000, false), 0);

    OP_RECORD reopen;
    op_record_init(&reopen, NULL);
    assert_int_not_equal(test_open(socket, &reopen), 0);
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&reopen.calls), 0);
    assert_ops_rejected_without_callback(socket);
    async_socket_close(socket);

    async_socket_destroy(socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_020 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_003 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_034 */
static void create_with_invalid_socket_succeeds_and_open_fails(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, INVALID_SOCKET);
    assert_non_null(socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);
    assert_int_not_equal(test_open(socket, &open_record), 0);
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&open_record.calls), 0);
    assert_ops_rejected_without_callback(socket);
    async_socket_close(socket);

    async_socket_destroy(socket);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_029 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_032 */
static void open_twice_fails_and_leaves_the_socket_working(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(0, 0, &peer, NULL);
    OP_RECORD second;
    op_record_init(&second, NULL);
    assert_int_not_equal(test_open(socket, &second), 0);
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&second.calls), 0);

    /* still open: a receive completes with the peer's bytes */
    OP_RECORD receive;
    uint8_t buffer[32];
    op_record_init(&receive, NULL);
    assert_int_equal(test_receive(socket, buffer, sizeof(buffer), &receive), 0);
    uint8_t data[20];
    test_fill_pattern(data, sizeof(data), 0);
    assert_int_equal(send(peer, data, sizeof(data), MSG_NOSIGNAL), (ssize_t)sizeof(data));
    TEST_WAIT_UNTIL(atomic_load(&receive.calls) == 1, 3000);
    assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&receive.bytes), sizeof(data));
    assert_int_equal(test_check_pattern(buffer, sizeof(data), 0), sizeof(data));

    async_socket_destroy(socket);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_016 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_017 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_028 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_031 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_032 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_033 */
static void open_makes_a_blocking_fd_non_blocking_and_close_on_exec(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int fds[2];
    assert_int_equal(test_tcp_pair(fds, SMALL_BUFFER, SMALL_BUFFER), 0);
    int fd = fds[0];
    /* hand over a blocking fd without close-on-exec, as a plain accept() or connect() gives */
    assert_int_equal(fcntl(fd, F_SETFD, 0), 0);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fd);
    assert_non_null(socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);

    assert_int_equal(test_open(socket, &open_record), 0);

    assert_once_with(&open_record, ASYNC_SOCKET_OPEN_OK);
    assert_int_equal(atomic_load(&open_record.inline_call), 1);
    assert_int_not_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);

    /* open: receives are accepted and completed through the epoll registration */
    OP_RECORD receive;
    uint8_t buffer[16];
    op_record_init(&receive, NULL);
    assert_int_equal(test_receive(socket, buffer, sizeof(buffer), &receive), 0);
    uint8_t data[16];
    test_fill_pattern(data, sizeof(data), 0);
    assert_int_equal(send(fds[1], data, sizeof(data), MSG_NOSIGNAL), (ssize_t)sizeof(data));
    TEST_WAIT_UNTIL(atomic_load(&receive.calls) == 1, 3000);
    assert_once_with(&receive, ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(atomic_load(&receive.bytes), sizeof(data));

    /* a send far larger than the socket buffers returns at once although the peer reads
     * nothing: the fd no longer blocks */
    static uint8_t big[4 * 1024 * 1024];
    OP_RECORD send_record;
    op_record_init(&send_record, NULL);
    uint64_t start = test_now_ms();
    assert_int_equal(test_send(socket, big, sizeof(big), &send_record), ASYNC_SOCKET_SEND_SYNC_OK);
    assert_true(test_now_ms() - start < 1000);
    assert_int_equal(atomic_load(&send_record.calls), 0);

    async_socket_destroy(socket);
    assert_once_with(&send_record, ASYNC_SOCKET_SEND_ABANDONED);
    assert_int_equal(close(fds[1]), 0);
    lifecycle_end(&leak);
}

/* A second async socket opened on the fd an open one holds: its open fails (EEXIST from the
 * completion port) and the first socket keeps receiving, before and after the failed open.
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_130 */
static void open_on_an_fd_another_socket_holds_fails_and_leaves_the_first_working(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    int fd;
    ASYNC_SOCKET_HANDLE first = open_tcp_async(0, 0, &peer, &fd);
    ASYNC_SOCKET_HANDLE second = async_socket_create(NULL, fd);
    assert_non_null(second);
    OP_RECORD second_open;
    op_record_init(&second_open, NULL);
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    assert_int_not_equal(test_open(second, &second_open), 0);
    int errors = log_capture_stop();
    ASSERT_ERROR_LINES(errors, 1);
    assert_non_null(strstr(log_capture.last_error, "already registered"));
    test_sleep_ms(10);
    assert_int_equal(atomic_load(&second_open.calls), 0);

    /* the first socket still gets its events: three receives in a row complete with the bytes
     * (a record per receive: a callback may still be returning when the next one is posted) */
    OP_RECORD receives[3];
    uint8_t buffers[3][32];
    for (uint64_t round = 0; round < 3; round++)
    {
        OP_RECORD* receive = &receives[round];
        op_record_init(receive, NULL);
        assert_int_equal(test_receive(first, buffers[round], sizeof(buffers[round]), receive), 0);
        uint8_t data[20];
        test_fill_pattern(data, sizeof(data), round * sizeof(data));
        assert_int_equal(send(peer, data, sizeof(data), MSG_NOSIGNAL), (ssize_t)sizeof(data));
        TEST_WAIT_UNTIL(atomic_load(&receive->hook_done) == 1, 3000);
        assert_once_with(receive, ASYNC_SOCKET_RECEIVE_OK);
        assert_int_equal(atomic_load(&receive->bytes), sizeof(data));
        assert_int_equal(test_check_pattern(buffers[round], sizeof(data), round * sizeof(data)), sizeof(data));
    }

    /* both sockets own fd `fd`: after the first one closed it, the number is given a stand-in
     * for the second one to close */
    async_socket_destroy(first);
    int stand_in = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(stand_in >= 0);
    assert_int_equal(dup2(stand_in, fd), fd);
    assert_int_equal(close(stand_in), 0);
    async_socket_destroy(second);
    assert_int_equal(close(peer), 0);
    lifecycle_end(&leak);
}

/* Opens an async socket on `fd`, which is not a stream socket: open fails without a callback,
 * with one ERROR line that contains `named`, and the fd is left open for its owner. */
static void assert_open_refuses(int fd, const char* named)
{
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fd);
    assert_non_null(socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    assert_int_not_equal(test_open(socket, &open_record), 0);
    int errors = log_capture_stop();
    ASSERT_ERROR_LINES(errors, 1);
    if (strstr(log_capture.last_error, named) == NULL)
    {
        fail_msg("the line does not say \"%s\": %s", named, log_capture.last_error);
    }
    assert_int_equal(atomic_load(&open_record.calls), 0);
    assert_ops_rejected_without_callback(socket);
    /* the socket owns the fd from create on: its destroy closes it */
    async_socket_destroy(socket);
    assert_true(fd_is_closed(fd));
}

/* A pipe's read end, an eventfd and a UDP socket are refused by open, each with a line naming
 * what it is; a stream socket is still accepted (the other tests).
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_131 */
static void open_refuses_an_fd_that_is_not_a_stream_socket(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int pipe_fds[2];
    assert_int_equal(pipe2(pipe_fds, O_CLOEXEC), 0);
    assert_open_refuses(pipe_fds[0], "pipe");
    assert_int_equal(close(pipe_fds[1]), 0);

    int event_fd = eventfd(0, EFD_CLOEXEC);
    assert_true(event_fd >= 0);
    assert_open_refuses(event_fd, "eventfd");

    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(udp >= 0);
    assert_open_refuses(udp, "datagram");

    lifecycle_end(&leak);
}

/* A server that keeps sending to a peer that has gone (reset), then keeps calling a socket it has
 * closed: 10,000 refused sends, receives and notifies log one WARNING line in all, naming the fd,
 * and every refusal still says so through its result, without a callback.
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_133 */
static void calls_refused_after_the_peer_left_log_one_line(void** state)
{
    (void)state;
    LEAK_CHECK leak;
    lifecycle_begin(&leak, WATCHDOG_MS, __func__);

    int peer;
    int fd;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(0, 0, &peer, &fd);
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
    assert_int_equal(close(peer), 0); /* a reset */
    test_sleep_ms(20);

    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    uint8_t data[64] = {0};
    int accepted = 0;
    OP_RECORD accepted_sends[8];
    for (int i = 0; i < 10000; i++)
    {
        OP_RECORD refused;
        OP_RECORD* record = (accepted < 8) ? &accepted_sends[accepted] : &refused;
        op_record_init(record, NULL);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = test_send(socket, data, sizeof(data), record);
        if (result == ASYNC_SOCKET_SEND_SYNC_OK)
        {
            /* the library may not know yet that the connection is gone: then it is called back */
            assert_true(accepted < 8);
            accepted++;
            continue;
        }
        assert_true(result == ASYNC_SOCKET_SEND_SYNC_NOT_OPEN || result == ASYNC_SOCKET_SEND_SYNC_ERROR);
        assert_int_equal(atomic_load(&record->calls), 0);
    }
    async_socket_close(socket);
    for (int i = 0; i < 10000; i++)
    {
        OP_RECORD refused;
        op_record_init(&refused, NULL);
        uint8_t buffer[8];
        assert_int_equal(test_send(socket, data, sizeof(data), &refused), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
        assert_int_not_equal(test_receive(socket, buffer, sizeof(buffer), &refused), 0);
        assert_int_not_equal(test_notify(socket, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, &refused), 0);
        assert_int_equal(atomic_load(&refused.calls), 0);
    }
    int warnings = 0;
    int errors = log_capture_stop_counting(&warnings);
    if (errors + warnings != 1)
    {
        fail_msg("%d ERROR and %d WARNING lines for 40,000 refused calls, expected 1 line (last: %s / %s)", errors, warnings,
            log_capture.last_error, log_capture.last_warning);
    }
    char named[32];
    (void)snprintf(named, sizeof(named), "fd=%d", fd);
    if (strstr(log_capture.last_warning, named) == NULL && strstr(log_capture.last_error, named) == NULL)
    {
        fail_msg("the line does not name %s: %s%s", named, log_capture.last_warning, log_capture.last_error);
    }
    for (int i = 0; i < accepted; i++)
    {
        assert_int_equal(atomic_load(&accepted_sends[i].calls), 1);
    }

    async_socket_destroy(socket);
    lifecycle_end(&leak);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(close_in_inline_send_callback_abandons_the_pending_ops),
    cmocka_unit_test(close_in_queued_send_callback_abandons_the_pending_ops),
    cmocka_unit_test(close_in_receive_callback_abandons_the_pending_ops),
    cmocka_unit_test(close_in_notify_callback_abandons_the_pending_ops),
    cmocka_unit_test(close_in_open_callback_leaves_the_socket_closed),
    cmocka_unit_test(destroy_in_receive_callback_releases_the_socket_when_it_returns),
    cmocka_unit_test(destroy_in_inline_send_callback_releases_the_socket),
    cmocka_unit_test(destroy_returns_with_the_fd_closed_and_the_memory_freed),
    cmocka_unit_test(destroy_waits_for_a_close_running_on_another_thread),
    cmocka_unit_test(second_close_on_another_thread_returns_after_the_first_finished),
    cmocka_unit_test(reopen_after_close_fails_without_callback),
    cmocka_unit_test(create_with_invalid_socket_succeeds_and_open_fails),
    cmocka_unit_test(open_twice_fails_and_leaves_the_socket_working),
    cmocka_unit_test(open_makes_a_blocking_fd_non_blocking_and_close_on_exec),
    cmocka_unit_test(open_on_an_fd_another_socket_holds_fails_and_leaves_the_first_working),
    cmocka_unit_test(open_refuses_an_fd_that_is_not_a_stream_socket),
    cmocka_unit_test(calls_refused_after_the_peer_left_log_one_line),
};

TEST_MAIN(tests)
