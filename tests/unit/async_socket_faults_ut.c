/* Fault sweeps for every public async_socket operation: for n = 1, 2, 3, ... the n-th counted
 * system call (allocation, epoll, eventfd, thread, fcntl, sendmsg, recvmsg) made on the calling
 * thread fails, until the operation makes fewer than n such calls and succeeds. Each injected
 * failure must give the documented result (a void function must still finish its job), no
 * callback for a failed call and exactly one for an accepted one, and leave no allocation and no
 * fd behind. The seam counts only the calling thread, so work done on the completion port's
 * workers is not swept here. Each sweep prints how many failure points it covered. */
#include <malloc.h>

#include "async_socket_ut_util.h"

#include "test_main.h"
#include "sys.h"

#include "c_pal/execution_engine.h"
#include "c_pal/platform_linux.h"

/* Upper bound for a sweep, far above any operation's call count. */
#define SWEEP_LIMIT 64

/* The public operations the sweeps are counted under, in the order the summary prints them. */
typedef enum OPERATION_TAG
{
    OP_CREATE,
    OP_OPEN,
    OP_SEND,
    OP_RECEIVE,
    OP_NOTIFY,
    OP_CLOSE,
    OP_DESTROY,
    OP_PLATFORM_INIT,
    OP_EXECUTION_ENGINE_CREATE,
    OPERATION_COUNT
} OPERATION;

static const char* const operation_names[OPERATION_COUNT] = {
    "create", "open", "send", "receive", "notify", "close", "destroy", "platform_init", "execution_engine_create"};

/* Failure points swept per operation by the cases run in this process (the group teardown
 * prints them: run the executable with no argument for the whole sweep). */
static uint32_t operation_points[OPERATION_COUNT];

typedef struct SWEEP_TAG
{
    const char* name;
    OPERATION operation;
    uint32_t points;   /* failure points injected */
    int min_errors;    /* log lines (ERROR, or ERROR + WARNING for close) per failure: smallest, largest */
    int max_errors;
} SWEEP;

static void sweep_init_for(SWEEP* sweep, OPERATION operation, const char* name)
{
    sweep->name = name;
    sweep->operation = operation;
    sweep->points = 0;
    sweep->min_errors = INT32_MAX;
    sweep->max_errors = 0;
}

static void sweep_note_failure(SWEEP* sweep, int errors)
{
    sweep->points++;
    operation_points[sweep->operation]++;
    sweep->min_errors = (errors < sweep->min_errors) ? errors : sweep->min_errors;
    sweep->max_errors = (errors > sweep->max_errors) ? errors : sweep->max_errors;
}

static int print_sweep_summary(void** state)
{
    (void)state;
    uint32_t total = 0;
    (void)printf("fault sweep:");
    for (int i = 0; i < OPERATION_COUNT; i++)
    {
        (void)printf(" %s %u,", operation_names[i], operation_points[i]);
        total += operation_points[i];
    }
    (void)printf(" total %u\n", total);
    return 0;
}

static void sweep_report(const SWEEP* sweep)
{
    if (sweep->points == 0)
    {
        (void)printf("%s sweep: 0 failure points\n", sweep->name);
        return;
    }
    (void)printf("%s sweep: %u failure points (log lines per failure: %d..%d)\n", sweep->name, sweep->points, sweep->min_errors, sweep->max_errors);
}

/* ---- create ---- */

/* Every failure of create returns NULL, logs, frees what it took and leaves the caller's fd
 * open and untouched (the caller still owns it and closes it). */
static void sweep_create(bool with_transport, const char* name)
{
    ENV env = env_begin();
    SWEEP sweep;
    sweep_init_for(&sweep, OP_CREATE, name);
    TRANSPORT t;
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int fds[2];
        make_unix_pair(fds, 0);
        transport_init(&t, fds[0]);
        int64_t before = sys_fault_live_allocations();
        int open_fds = test_count_open_fds();
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, EIO);
        ASYNC_SOCKET_HANDLE s = with_transport ?
            async_socket_create_with_transport(NULL, fds[0], transport_on_send, &t, transport_on_recv, &t) :
            async_socket_create(NULL, fds[0]);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_non_null(s);
            atomic_store(&t.handle, s);
            assert_int_equal(errors, 0);
            (void)open_socket_with(s);
            uint8_t data[32];
            test_fill_pattern(data, sizeof(data), 0);
            ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
            CB sent;
            cb_init(&sent);
            assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
            peer_read_pattern(fds[1], 0, sizeof(data));
            async_socket_destroy(s);
            assert_false(fd_is_open(fds[0]));
            (void)close(fds[1]);
            transport_deinit(&t);
            break;
        }
        assert_null(s);
        assert_true(errors >= 1);
        sweep_note_failure(&sweep, errors);
        assert_int_equal(sys_fault_live_allocations(), before);
        assert_int_equal(test_count_open_fds(), open_fds);
        /* the fd is still the caller's: open, connected, untouched */
        assert_true(fd_is_open(fds[0]));
        assert_int_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
        assert_true(nothing_to_read(fds[1]));
        write_all(fds[0], "x", 1);
        uint8_t byte;
        test_read_exact(fds[1], &byte, 1);
        (void)close(fds[0]);
        (void)close(fds[1]);
        transport_deinit(&t);
    }
    sweep_report(&sweep);
    /* the default socket is one allocation (its transport lives inside it); a custom transport
     * adds the record of its hooks */
    assert_int_equal(sweep.points, with_transport ? 2 : 1);
    env_end(env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_001 */
static void async_socket_create_fault_sweep(void** state)
{
    (void)state;
    sweep_create(false, "async_socket_create");
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_001 */
static void async_socket_create_with_transport_fault_sweep(void** state)
{
    (void)state;
    sweep_create(true, "async_socket_create_with_transport");
}

/* ---- open ---- */

/* Every failure of open (fcntl, the registration's memory, epoll_ctl) returns non-zero, logs, does
 * not call back, and leaves the socket unopened but openable, the fd open and connected. The same
 * socket is retried each time; the last attempt succeeds. A fresh platform, so the port's table
 * has no memory for the fd yet and that allocation is swept too. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_034 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_031 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_open_async_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    SWEEP sweep;
    sweep_init_for(&sweep, OP_OPEN, "async_socket_open_async");
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
    assert_non_null(s);
    CB opened;
    cb_init(&opened);
    uint32_t n;
    for (n = 1; n < SWEEP_LIMIT; n++)
    {
        int64_t before = sys_fault_live_allocations();
        int open_fds = test_count_open_fds();
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, EIO);
        int result = open_marked(s, on_open_cb, &opened);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_int_equal(result, 0);
            assert_int_equal(errors, 0);
            assert_int_equal(atomic_load(&opened.calls), 1);
            assert_int_equal(atomic_load(&opened.inline_calls), 1);
            assert_int_equal(atomic_load(&opened.result), ASYNC_SOCKET_OPEN_OK);
            break;
        }
        assert_int_not_equal(result, 0);
        assert_true(errors >= 1);
        sweep_note_failure(&sweep, errors);
        assert_int_equal(atomic_load(&opened.calls), 0);
        /* the port's table keeps the memory it made for the fd when only epoll_ctl failed (it
         * is the port's, freed with it: env_end checks) */
        assert_true(sys_fault_live_allocations() - before <= 1);
        assert_int_equal(test_count_open_fds(), open_fds);
        assert_true(fd_is_open(fds[0]));
        assert_true(nothing_to_read(fds[1]));
        /* not open: sends are refused */
        uint8_t data[4] = {0};
        ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
        atomic_store(&unexpected_callbacks, 0);
        async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_ERROR);
        assert_int_equal(async_socket_send_async(s, &buffer, 1, on_send_unexpected, NULL), ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
        async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_WARNING);
        assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    }
    sweep_report(&sweep);
    /* four fcntl calls, the table chunk, epoll_ctl(ADD) */
    assert_true(sweep.points >= 6);

    /* the socket that finally opened works: data both ways */
    uint8_t in[64];
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &received), 0);
    peer_write_pattern(fds[1], 0, 64);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(test_check_pattern(in, 64, 0), 64);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&opened.calls), 1);
    (void)close(fds[1]);
    env_end(env);
}

/* ---- send ---- */

/* Inline path, on a fresh socket (no record to reuse yet) and on a warm one: every failure
 * (the record's memory, sendmsg) returns ERROR with no callback and nothing on the wire; the
 * accepted send completes inline, once. */
static uint32_t sweep_inline_send(bool warm)
{
    SWEEP sweep;
    sweep_init_for(&sweep, OP_SEND, warm ? "async_socket_send_async (inline, warm socket)" : "async_socket_send_async (inline, fresh socket)");
    uint8_t data[1000];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = data, .length = 400}, {.buffer = data + 400, .length = 600}};
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int fds[2];
        make_unix_pair(fds, 0);
        ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
        if (warm)
        {
            CB first;
            cb_init(&first);
            assert_int_equal(send_marked(s, buffers, 2, on_send_cb, &first), ASYNC_SOCKET_SEND_SYNC_OK);
            peer_read_pattern(fds[1], 0, sizeof(data));
        }
        int64_t before = sys_fault_live_allocations();
        CB sent;
        cb_init(&sent);
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, EIO);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(s, buffers, 2, on_send_cb, &sent);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_OK);
            assert_int_equal(errors, 0);
            assert_int_equal(atomic_load(&sent.calls), 1);
            assert_int_equal(atomic_load(&sent.inline_calls), 1);
            assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
            peer_read_pattern(fds[1], 0, sizeof(data));
            async_socket_destroy(s);
            (void)close(fds[1]);
            break;
        }
        assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_ERROR);
        assert_true(errors >= 1);
        sweep_note_failure(&sweep, errors);
        /* a record taken for the failed send may stay on the socket's free list, with the
         * socket's extras that the list lives in; destroy frees both (env_end checks) */
        assert_true(sys_fault_live_allocations() - before <= 2);
        test_sleep_ms(5);
        assert_int_equal(atomic_load(&sent.calls), 0);
        assert_true(nothing_to_read(fds[1]));
        /* the socket is still open and usable */
        CB next;
        cb_init(&next);
        assert_int_equal(send_marked(s, buffers, 2, on_send_cb, &next), ASYNC_SOCKET_SEND_SYNC_OK);
        peer_read_pattern(fds[1], 0, sizeof(data));
        async_socket_destroy(s);
        assert_int_equal(atomic_load(&sent.calls), 0);
        (void)close(fds[1]);
    }
    sweep_report(&sweep);
    return sweep.points;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_063 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_060 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_send_async_inline_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    assert_true(sweep_inline_send(false) >= 2); /* the record, sendmsg */
    assert_true(sweep_inline_send(true) >= 1);  /* sendmsg */
    env_end(env);
}

/* sendmsg failing with ECONNRESET, ENOTCONN or EPIPE: NOT_OPEN, no callback. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_059 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_052 */
static void async_socket_send_async_with_sendmsg_failing_connection_gone_returns_not_open(void** state)
{
    (void)state;
    ENV env = env_begin();
    const int gone[] = {ECONNRESET, ENOTCONN, EPIPE};
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    uint8_t data[100];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    atomic_store(&unexpected_callbacks, 0);
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
    {
        sys_fault_arm(SYS_FAULT_SEND, 1, gone[i]);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(s, &buffer, 1, on_send_unexpected, NULL);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        assert_true(fired);
        assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
    }
    test_sleep_ms(5);
    assert_int_equal(atomic_load(&unexpected_callbacks), 0);
    assert_true(nothing_to_read(fds[1]));
    env_end_with_socket(s, fds[1], env);
}

/* Takes the socket's embedded record with a notify that stays pending until data arrives, so that
 * the swept call that follows needs a record of its own (the one an allocation failure can hit). */
static void occupy_embedded_record(ASYNC_SOCKET_HANDLE s, CB* occupier)
{
    cb_init(occupier);
    assert_int_equal(async_socket_notify_io_async(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, occupier), 0);
}

/* Queued path 1: a send that the full socket takes only in part (the rest waits for room). Every
 * failure comes before a byte is sent: ERROR, no callback, nothing on the wire. The accepted one
 * completes once the peer reads everything. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_063 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_056 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_003 */
static void async_socket_send_async_partial_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    SWEEP sweep;
    sweep_init_for(&sweep, OP_SEND, "async_socket_send_async (partial, rest queued)");
    const uint32_t size = 256 * 1024;
    uint8_t* data = malloc(size);
    assert_non_null(data);
    test_fill_pattern(data, size, 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = size};
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int fds[2];
        make_unix_pair(fds, 4096);
        ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
        CB occupier;
        occupy_embedded_record(s, &occupier);
        int64_t before = sys_fault_live_allocations();
        CB sent;
        cb_init(&sent);
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, EIO);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(s, &buffer, 1, on_send_cb, &sent);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_OK);
            assert_int_equal(errors, 0);
            test_sleep_ms(10);
            assert_int_equal(atomic_load(&sent.calls), 0); /* it waits for room */
            peer_read_pattern(fds[1], 0, size);
            TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
            assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
            async_socket_destroy(s);
            assert_int_equal(atomic_load(&sent.calls), 1);
            (void)close(fds[1]);
            break;
        }
        assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_ERROR);
        assert_true(errors >= 1);
        sweep_note_failure(&sweep, errors);
        assert_true(sys_fault_live_allocations() - before <= 1);
        test_sleep_ms(5);
        assert_int_equal(atomic_load(&sent.calls), 0);
        assert_true(nothing_to_read(fds[1]));
        async_socket_destroy(s);
        assert_int_equal(atomic_load(&sent.calls), 0);
        (void)close(fds[1]);
    }
    sweep_report(&sweep);
    assert_true(sweep.points >= 2);
    free(data);
    env_end(env);
}

/* Queued path 2: a send queued behind one that waits for room (so it does not touch the fd). Its
 * failure (the record) gives ERROR and no callback, and its bytes never appear; the accepted one
 * goes out right after the first payload once the peer reads. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_063 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_056 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
static void async_socket_send_async_queued_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    SWEEP sweep;
    sweep_init_for(&sweep, OP_SEND, "async_socket_send_async (queued behind another send)");
    const uint32_t first_size = 256 * 1024;
    uint8_t second[300];
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int fds[2];
        make_unix_pair(fds, 4096);
        ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
        CB first;
        cb_init(&first);
        uint8_t* first_data = send_until_queued(s, 0, first_size, &first);
        test_fill_pattern(second, sizeof(second), first_size);
        ASYNC_SOCKET_BUFFER buffers[3] = {
            {.buffer = second, .length = 100}, {.buffer = second + 100, .length = 100}, {.buffer = second + 200, .length = 100}};
        int64_t before = sys_fault_live_allocations();
        CB sent;
        cb_init(&sent);
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, EIO);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(s, buffers, 3, on_send_cb, &sent);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (fired)
        {
            assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_ERROR);
            assert_true(errors >= 1);
            sweep_note_failure(&sweep, errors);
            assert_int_equal(sys_fault_live_allocations(), before);
        }
        else
        {
            assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_OK);
            assert_int_equal(errors, 0);
        }
        /* the peer reads the first payload, then (if accepted) the second, and nothing else */
        peer_read_pattern(fds[1], 0, first_size);
        TEST_WAIT_UNTIL(atomic_load(&first.calls) == 1, 2000);
        assert_int_equal(atomic_load(&first.result), ASYNC_SOCKET_SEND_OK);
        if (!fired)
        {
            peer_read_pattern(fds[1], first_size, sizeof(second));
            TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
            assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
        }
        test_sleep_ms(5);
        assert_true(nothing_to_read(fds[1]));
        async_socket_destroy(s);
        assert_int_equal(atomic_load(&sent.calls), fired ? 0 : 1);
        assert_int_equal(atomic_load(&first.calls), 1);
        free(first_data);
        (void)close(fds[1]);
        if (!fired)
        {
            break;
        }
    }
    sweep_report(&sweep);
    assert_true(sweep.points >= 1);
    env_end(env);
}

/* ---- receive ---- */

/* Every failure of receive_async (the record, the descriptor array for more than four buffers)
 * returns non-zero without a callback; the data waits for the accepted receive. */
static uint32_t sweep_receive(uint32_t buffer_count, bool warm)
{
    SWEEP sweep;
    char name[96];
    (void)snprintf(name, sizeof(name), "async_socket_receive_async (%u buffers, %s socket)", buffer_count, warm ? "warm" : "fresh");
    sweep_init_for(&sweep, OP_RECEIVE, name);
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int fds[2];
        make_unix_pair(fds, 0);
        ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
        uint8_t in[8][16];
        ASYNC_SOCKET_BUFFER buffers[8];
        for (uint32_t i = 0; i < 8; i++)
        {
            buffers[i].buffer = in[i];
            buffers[i].length = 16;
        }
        CB occupier;
        if (warm)
        {
            CB first;
            cb_init(&first);
            assert_int_equal(receive_marked(s, buffers, buffer_count, on_receive_cb, &first), 0);
            peer_write_pattern(fds[1], 0, 1);
            TEST_WAIT_UNTIL(atomic_load(&first.calls) == 1, 2000);
        }
        if (!warm)
        {
            /* a fresh socket's first one-buffer record is the embedded one, which cannot fail */
            occupy_embedded_record(s, &occupier);
        }
        int64_t before = sys_fault_live_allocations();
        CB received;
        cb_init(&received);
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, EIO);
        int result = receive_marked(s, buffers, buffer_count, on_receive_cb, &received);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        peer_write_pattern(fds[1], 1000, 16);
        if (!fired)
        {
            assert_int_equal(result, 0);
            assert_int_equal(errors, 0);
            TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
            assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
            assert_int_equal(atomic_load(&received.bytes), 16);
            assert_int_equal(test_check_pattern(in[0], 16, 1000), 16);
            async_socket_destroy(s);
            (void)close(fds[1]);
            break;
        }
        assert_int_not_equal(result, 0);
        assert_true(errors >= 1);
        sweep_note_failure(&sweep, errors);
        assert_int_equal(sys_fault_live_allocations(), before);
        test_sleep_ms(10);
        assert_int_equal(atomic_load(&received.calls), 0);
        /* the data is still there for a receive that is accepted */
        CB next;
        cb_init(&next);
        assert_int_equal(receive_marked(s, buffers, buffer_count, on_receive_cb, &next), 0);
        TEST_WAIT_UNTIL(atomic_load(&next.calls) == 1, 2000);
        assert_int_equal(atomic_load(&next.bytes), 16);
        assert_int_equal(test_check_pattern(in[0], 16, 1000), 16);
        async_socket_destroy(s);
        assert_int_equal(atomic_load(&received.calls), 0);
        (void)close(fds[1]);
    }
    sweep_report(&sweep);
    return sweep.points;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_078 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_074 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_receive_async_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    assert_true(sweep_receive(1, false) >= 1);
    (void)sweep_receive(1, true); /* the record comes from the free list: nothing to fail */
    assert_true(sweep_receive(8, false) >= 1);
    /* a warm socket reuses a record with room for the eight descriptors: nothing to fail */
    assert_int_equal(sweep_receive(8, true), 0);
    env_end(env);
}

/* An idle socket with a one-buffer receive pending is one heap chunk: the receive takes the
 * record embedded in the socket, and the socket's allocation has room for at most 152 bytes (a
 * 160-byte glibc chunk; 168 bytes per socket with the fd's slot in the port table). A second
 * receive pending at once brings the extras record with the heap record: two chunks, once.
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_052
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_230 */
static void async_socket_idle_socket_with_a_receive_pending_is_one_small_allocation(void** state)
{
    (void)state;
    ENV env = env_begin();
    int fds[2];
    make_unix_pair(fds, 0);
    int64_t before_create = sys_fault_live_allocations();
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    int64_t before_receive = sys_fault_live_allocations();
    /* the socket, and perhaps a chunk of the port's fd table (shared by 256 fds) */
    assert_true(before_receive - before_create >= 1 && before_receive - before_create <= 2);
    assert_true(malloc_usable_size(s) <= 152);

    uint8_t in[16];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(async_socket_receive_async(s, &buffer, 1, on_receive_cb, &received), 0);
    assert_int_equal(sys_fault_live_allocations(), before_receive);

    peer_write_pattern(fds[1], 0, 16);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(test_check_pattern(in, 16, 0), 16);
    /* the next receive reuses the same record: still nothing allocated */
    cb_init(&received);
    assert_int_equal(async_socket_receive_async(s, &buffer, 1, on_receive_cb, &received), 0);
    assert_int_equal(sys_fault_live_allocations(), before_receive);
    /* a second receive pending at once: a heap record and the extras record that keeps it */
    uint8_t in2[16];
    ASYNC_SOCKET_BUFFER buffer2 = {.buffer = in2, .length = sizeof(in2)};
    CB received2;
    cb_init(&received2);
    assert_int_equal(async_socket_receive_async(s, &buffer2, 1, on_receive_cb, &received2), 0);
    assert_int_equal(sys_fault_live_allocations(), before_receive + 2);
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&received.calls), 1);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&received2.calls), 1);
    assert_int_equal(atomic_load(&received2.result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    (void)close(fds[1]);
    env_end(env);
}

/* c-pal code passes an execution engine to every create: that costs nothing more than NULL does.
 * The socket is still one chunk of at most 152 bytes, and it holds its reference on the engine
 * until it is destroyed.
 * Tests_SRS_ASYNC_SOCKET_LINUX_99_154
 * Tests_SRS_ASYNC_SOCKET_LINUX_11_002 */
static void async_socket_with_an_execution_engine_is_one_small_allocation(void** state)
{
    (void)state;
    ENV env = env_begin();
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(NULL);
    assert_non_null(engine);
    int fds[2];
    make_unix_pair(fds, 0);
    int64_t before_create = sys_fault_live_allocations();
    ASYNC_SOCKET_HANDLE created = async_socket_create(engine, fds[0]);
    /* create allocates the socket alone (open may add a chunk of the port's fd table) */
    assert_int_equal(sys_fault_live_allocations() - before_create, 1);
    assert_true(malloc_usable_size(created) <= 152);
    ASYNC_SOCKET_HANDLE s = open_socket_with(created);
    int64_t after_open = sys_fault_live_allocations();
    /* the socket's reference keeps the engine after the creator lets go of its own */
    execution_engine_dec_ref(engine);
    assert_int_equal(execution_engine_linux_get_parameters(engine)->min_thread_count, DEFAULT_MIN_THREAD_COUNT);

    uint8_t in[16];
    ASYNC_SOCKET_BUFFER buffer = {.buffer = in, .length = sizeof(in)};
    CB received;
    cb_init(&received);
    assert_int_equal(async_socket_receive_async(s, &buffer, 1, on_receive_cb, &received), 0);
    assert_int_equal(sys_fault_live_allocations(), after_open);
    peer_write_pattern(fds[1], 0, 16);
    TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
    assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
    assert_int_equal(test_check_pattern(in, 16, 0), 16);

    /* destroy drops the last reference on the engine: env_end finds nothing of either left */
    env_end_with_socket(s, fds[1], env);
}

/* ---- notify ---- */

/* Every failure of notify_io_async (the record, epoll_ctl(MOD)) returns non-zero without a
 * callback; the socket goes on working and the accepted notify completes. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_020 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_04_019 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void async_socket_notify_io_async_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    static const ASYNC_SOCKET_NOTIFY_IO_TYPE types[] = {ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT};
    for (size_t k = 0; k < 2; k++)
    {
        SWEEP sweep;
        sweep_init_for(&sweep, OP_NOTIFY, (k == 0) ? "async_socket_notify_io_async (IN)" : "async_socket_notify_io_async (OUT)");
        for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
        {
            int fds[2];
            make_unix_pair(fds, 0);
            ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
            CB occupier;
            occupy_embedded_record(s, &occupier);
            int64_t before = sys_fault_live_allocations();
            CB notified;
            cb_init(&notified);
            log_capture_start();
            sys_fault_arm(SYS_FAULT_ALL, n, EIO);
            int result = notify_marked(s, types[k], on_notify_cb, &notified);
            bool fired = sys_fault_fired();
            sys_fault_disarm();
            int errors = log_capture_stop();
            peer_write_pattern(fds[1], 0, 4); /* makes an IN notify ready too */
            if (!fired)
            {
                assert_int_equal(result, 0);
                assert_int_equal(errors, 0);
                TEST_WAIT_UNTIL(atomic_load(&notified.calls) == 1, 2000);
                assert_int_equal(atomic_load(&notified.result), (k == 0) ? ASYNC_SOCKET_NOTIFY_IO_RESULT_IN : ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
                async_socket_destroy(s);
                assert_int_equal(atomic_load(&notified.calls), 1);
                (void)close(fds[1]);
                break;
            }
            assert_int_not_equal(result, 0);
            assert_true(errors >= 1);
            sweep_note_failure(&sweep, errors);
            assert_true(sys_fault_live_allocations() - before <= 1);
            test_sleep_ms(10);
            assert_int_equal(atomic_load(&notified.calls), 0);
            /* still usable: a new notify completes */
            CB next;
            cb_init(&next);
            assert_int_equal(notify_marked(s, types[k], on_notify_cb, &next), 0);
            TEST_WAIT_UNTIL(atomic_load(&next.calls) == 1, 2000);
            async_socket_destroy(s);
            assert_int_equal(atomic_load(&notified.calls), 0);
            (void)close(fds[1]);
        }
        sweep_report(&sweep);
        assert_true(sweep.points >= 2); /* the record, epoll_ctl(MOD) */
    }
    env_end(env);
}

/* ---- close and destroy ---- */

typedef struct PENDING_TAG
{
    CB sent;
    CB received;
    CB notified;
    uint8_t* big;
    uint8_t in[16];
} PENDING;

/* A socket with a send waiting for room, a pending receive and a pending notify. */
static ASYNC_SOCKET_HANDLE open_with_pending(int fds[2], PENDING* pending)
{
    make_unix_pair(fds, 4096);
    ASYNC_SOCKET_HANDLE s = open_socket(fds[0]);
    cb_init(&pending->sent);
    cb_init(&pending->received);
    cb_init(&pending->notified);
    pending->big = send_until_queued(s, 0, 256 * 1024, &pending->sent);
    ASYNC_SOCKET_BUFFER in_buffer = {.buffer = pending->in, .length = sizeof(pending->in)};
    assert_int_equal(receive_marked(s, &in_buffer, 1, on_receive_cb, &pending->received), 0);
    assert_int_equal(notify_marked(s, ASYNC_SOCKET_NOTIFY_IO_TYPE_IN, on_notify_cb, &pending->notified), 0);
    test_sleep_ms(5);
    return s;
}

/* Every pending operation was called back exactly once, ABANDONED, on the test thread. */
static void check_abandoned(PENDING* pending)
{
    assert_int_equal(atomic_load(&pending->sent.calls), 1);
    assert_int_equal(atomic_load(&pending->sent.result), ASYNC_SOCKET_SEND_ABANDONED);
    assert_int_equal(atomic_load(&pending->received.calls), 1);
    assert_int_equal(atomic_load(&pending->received.result), ASYNC_SOCKET_RECEIVE_ABANDONED);
    assert_int_equal(atomic_load(&pending->notified.calls), 1);
    assert_int_equal(atomic_load(&pending->notified.result), ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
}

/* Whatever fails inside close (epoll_ctl(DEL); with the opt-in categories also shutdown and
 * close), close still finishes its job: the pending operations are ABANDONED once, the fd is
 * closed, the peer sees the end of the stream, and nothing leaks. */
static uint32_t sweep_close(uint32_t categories, bool by_destroy, const char* name)
{
    SWEEP sweep;
    sweep_init_for(&sweep, by_destroy ? OP_DESTROY : OP_CLOSE, name);
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int fds[2];
        PENDING pending;
        ASYNC_SOCKET_HANDLE s = open_with_pending(fds, &pending);
        int64_t before = sys_fault_live_allocations();
        log_capture_start();
        sys_fault_arm(categories, n, EIO);
        if (by_destroy)
        {
            async_socket_destroy(s);
        }
        else
        {
            async_socket_close(s);
        }
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int warnings = 0;
        int errors = log_capture_stop_counting(&warnings);
        check_abandoned(&pending);
        assert_false(fd_is_open(fds[0]));
        assert_true(peer_drains_to_eof(fds[1]));
        if (!by_destroy)
        {
            assert_int_equal(sys_fault_live_allocations(), before);
            async_socket_destroy(s);
        }
        else
        {
            assert_true(sys_fault_live_allocations() < before);
        }
        check_abandoned(&pending);
        free(pending.big);
        (void)close(fds[1]);
        if (!fired)
        {
            assert_int_equal(errors, 0);
            break;
        }
        sweep_note_failure(&sweep, errors + warnings);
    }
    sweep_report(&sweep);
    return sweep.points;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_041 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_104 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_081 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_084 */
static void async_socket_close_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    assert_true(sweep_close(SYS_FAULT_ALL, false, "async_socket_close") >= 1); /* epoll_ctl(DEL) */
    assert_true(sweep_close(SYS_FAULT_ALL | SYS_FAULT_SHUTDOWN | SYS_FAULT_CLOSE, false, "async_socket_close (with shutdown, close)") >= 3);
    env_end(env);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_021 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_023 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_103 */
static void async_socket_destroy_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    assert_true(sweep_close(SYS_FAULT_ALL, true, "async_socket_destroy (open socket)") >= 1);
    assert_true(sweep_close(SYS_FAULT_ALL | SYS_FAULT_SHUTDOWN | SYS_FAULT_CLOSE, true, "async_socket_destroy (open socket, with shutdown, close)") >= 3);

    /* a socket that was never opened: destroy releases the transport, which closes the fd */
    SWEEP sweep;
    sweep_init_for(&sweep, OP_DESTROY, "async_socket_destroy (never opened, with shutdown, close)");
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int fds[2];
        make_unix_pair(fds, 0);
        int64_t before = sys_fault_live_allocations();
        int open_fds = test_count_open_fds();
        ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fds[0]);
        assert_non_null(s);
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL | SYS_FAULT_SHUTDOWN | SYS_FAULT_CLOSE, n, EIO);
        async_socket_destroy(s);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int warnings = 0;
        int errors = log_capture_stop_counting(&warnings);
        assert_false(fd_is_open(fds[0]));
        assert_true(peer_sees_eof(fds[1]));
        assert_int_equal(sys_fault_live_allocations(), before);
        assert_int_equal(test_count_open_fds(), open_fds - 1);
        (void)close(fds[1]);
        if (!fired)
        {
            break;
        }
        sweep_note_failure(&sweep, errors + warnings);
    }
    sweep_report(&sweep);
    assert_true(sweep.points >= 2); /* shutdown, close */
    env_end(env);
}

/* ---- send and receive through the transport, on the workers ---- */

/* A custom transport that does its I/O through the system seam, so that the any-thread fault arm
 * reaches it as it reaches the default transport's sendmsg/recvmsg. */
static int seam_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)async_socket;
    struct iovec iov = {.iov_base = (void*)buf, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    return (int)sys_sendmsg(*(int*)context, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int seam_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)async_socket;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    return (int)sys_recvmsg(*(int*)context, &msg, MSG_DONTWAIT);
}

static ASYNC_SOCKET_HANDLE open_on_transport(int* fd, bool custom)
{
    return custom ? open_socket_with(async_socket_create_with_transport(NULL, *fd, seam_on_send, fd, seam_on_recv, fd)) : open_socket(*fd);
}

/* Opens and destroys one socket, so that the port's fd table has its memory (kept until the
 * platform goes) before a sweep compares allocations. */
static void warm_up_port(bool custom)
{
    int fds[2];
    make_unix_pair(fds, 0);
    async_socket_destroy(open_on_transport(&fds[0], custom));
    (void)close(fds[1]);
}

/* Reads what the socket sends until `cb` has been called back and nothing more comes for 20 ms
 * (at most 5 s); returns the number of bytes, which must all match the pattern from offset 0 and
 * not exceed `size`. */
static size_t peer_read_until_quiet(int fd, uint8_t* buf, size_t size, const CB* cb)
{
    size_t got = 0;
    uint64_t start = test_now_ms();
    while (test_now_ms() - start < 5000)
    {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
        {
            if (atomic_load(&cb->calls) > 0)
            {
                break;
            }
            continue;
        }
        uint8_t extra;
        ssize_t n = (got < size) ? recv(fd, buf + got, size - got, MSG_DONTWAIT) : recv(fd, &extra, 1, MSG_DONTWAIT);
        assert_true(n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)));
        assert_true(got < size); /* a byte more than was sent */
        got += (n > 0) ? (size_t)n : 0;
    }
    assert_int_equal(test_check_pattern(buf, got, 0), got);
    return got;
}

/* The nth sendmsg of a send (inline or on a worker, default or custom transport) fails, with each
 * call capped at 2048 bytes so that one send takes many. A send that fails before a byte has gone
 * out returns ERROR without a callback; once bytes are out it is accepted and called back once
 * with SEND_ERROR; either way the peer gets a prefix of the payload, every byte in order. */
static uint32_t sweep_transport_send(bool custom, int error, ASYNC_SOCKET_SEND_RESULT expected, const char* name)
{
    SWEEP sweep;
    sweep_init_for(&sweep, OP_SEND, name);
    const size_t size = 16 * 1024;
    uint8_t* data = malloc(size);
    uint8_t* got_buf = malloc(size);
    assert_non_null(data);
    assert_non_null(got_buf);
    test_fill_pattern(data, size, 0);
    ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = data, .length = 5000}, {.buffer = data + 5000, .length = (uint32_t)size - 5000}};
    warm_up_port(custom);
    uint32_t n;
    for (n = 1; n < 4 * SWEEP_LIMIT; n++)
    {
        int64_t before = sys_fault_live_allocations();
        int open_fds = test_count_open_fds();
        int fds[2];
        make_unix_pair(fds, 4096);
        ASYNC_SOCKET_HANDLE s = open_on_transport(&fds[0], custom);
        CB sent;
        cb_init(&sent);
        sys_fault_set_send_limit(2048);
        log_capture_start();
        sys_fault_arm_any_thread(SYS_FAULT_SEND, n, error);
        ASYNC_SOCKET_SEND_SYNC_RESULT result = send_marked(s, buffers, 2, on_send_cb, &sent);
        size_t got = peer_read_until_quiet(fds[1], got_buf, size, &sent);
        bool fired = sys_fault_any_thread_fired();
        sys_fault_disarm_any_thread();
        sys_fault_set_send_limit(0);
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_int_equal(result, ASYNC_SOCKET_SEND_SYNC_OK);
            assert_int_equal(errors, 0);
            TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
            assert_int_equal(atomic_load(&sent.result), ASYNC_SOCKET_SEND_OK);
            assert_int_equal(got, size);
        }
        else if (result == ASYNC_SOCKET_SEND_SYNC_OK)
        {
            TEST_WAIT_UNTIL(atomic_load(&sent.calls) == 1, 2000);
            assert_int_equal(atomic_load(&sent.result), expected);
            assert_true(got < size);
            sweep_note_failure(&sweep, errors);
        }
        else
        {
            /* refused: nothing of it may be on the wire, and no callback follows */
            assert_int_equal(result, (expected == ASYNC_SOCKET_SEND_ERROR) ? ASYNC_SOCKET_SEND_SYNC_ERROR : ASYNC_SOCKET_SEND_SYNC_NOT_OPEN);
            if (got != 0)
            {
                fail_msg("%s: send_async refused the send after %zu of its bytes went out (failure point %u)", name, got, n);
            }
            ASSERT_ERROR_LINES(errors + log_capture.warnings, 1);
            sweep_note_failure(&sweep, errors);
        }
        test_sleep_ms(5);
        async_socket_destroy(s);
        assert_int_equal(atomic_load(&sent.calls), (result == ASYNC_SOCKET_SEND_SYNC_OK) ? 1 : 0);
        (void)close(fds[1]);
        assert_int_equal(sys_fault_live_allocations(), before);
        assert_int_equal(test_count_open_fds(), open_fds);
        if (!fired)
        {
            break;
        }
    }
    assert_true(n < 4 * SWEEP_LIMIT);
    sweep_report(&sweep);
    free(got_buf);
    free(data);
    return sweep.points;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_097 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_099 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_098 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_035 */
static void async_socket_send_through_the_transport_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    assert_true(sweep_transport_send(false, EIO, ASYNC_SOCKET_SEND_ERROR, "async_socket_send_async (sendmsg fails, default transport, EIO)") >= 4);
    assert_true(sweep_transport_send(false, ECONNRESET, ASYNC_SOCKET_SEND_ABANDONED, "async_socket_send_async (sendmsg fails, default transport, ECONNRESET)") >= 4);
    assert_true(sweep_transport_send(true, EIO, ASYNC_SOCKET_SEND_ERROR, "async_socket_send_async (on_send fails, custom transport, EIO)") >= 4);
    env_end(env);
}

/* The nth recvmsg of a receive (on a worker; default or custom transport, each call capped at 256
 * bytes, so the receive ends after its first short read and the sweep has few points) fails. A receive that holds no byte yet completes once with RECEIVE_ERROR; one that holds
 * bytes completes once with RECEIVE_OK and them. Either way no byte is lost: later receives get
 * the rest of the stream, in order. */
static uint32_t sweep_transport_receive(bool custom, const char* name)
{
    SWEEP sweep;
    sweep_init_for(&sweep, OP_RECEIVE, name);
    enum { SIZE = 4096 };
    warm_up_port(custom);
    uint32_t n;
    for (n = 1; n < 4 * SWEEP_LIMIT; n++)
    {
        int64_t before = sys_fault_live_allocations();
        int open_fds = test_count_open_fds();
        int fds[2];
        make_unix_pair(fds, 0);
        ASYNC_SOCKET_HANDLE s = open_on_transport(&fds[0], custom);
        uint8_t* in = calloc(1, SIZE);
        assert_non_null(in);
        ASYNC_SOCKET_BUFFER buffers[2] = {{.buffer = in, .length = SIZE / 2}, {.buffer = in + SIZE / 2, .length = SIZE / 2}};
        CB received;
        cb_init(&received);
        sys_fault_set_recv_limit(256);
        log_capture_start();
        sys_fault_arm_any_thread(SYS_FAULT_RECV, n, EIO);
        assert_int_equal(receive_marked(s, buffers, 2, on_receive_cb, &received), 0);
        peer_write_pattern(fds[1], 0, SIZE);
        TEST_WAIT_UNTIL(atomic_load(&received.calls) == 1, 2000);
        bool fired = sys_fault_any_thread_fired();
        sys_fault_disarm_any_thread();
        int errors = log_capture_stop();
        uint32_t bytes = atomic_load(&received.bytes);
        if (!fired)
        {
            assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
        }
        else if (atomic_load(&received.result) == ASYNC_SOCKET_RECEIVE_ERROR)
        {
            assert_int_equal(bytes, 0);
            sweep_note_failure(&sweep, errors);
        }
        else
        {
            assert_int_equal(atomic_load(&received.result), ASYNC_SOCKET_RECEIVE_OK);
            sweep_note_failure(&sweep, errors);
        }
        assert_true(bytes <= SIZE);
        assert_int_equal(test_check_pattern(in, bytes, 0), bytes);
        /* the rest of the stream comes to the next receives, in order */
        uint32_t total = bytes;
        while (total < SIZE)
        {
            CB next;
            cb_init(&next);
            ASYNC_SOCKET_BUFFER rest = {.buffer = in + total, .length = SIZE - total};
            assert_int_equal(receive_marked(s, &rest, 1, on_receive_cb, &next), 0);
            TEST_WAIT_UNTIL(atomic_load(&next.calls) == 1, 2000);
            assert_int_equal(atomic_load(&next.result), ASYNC_SOCKET_RECEIVE_OK);
            assert_true(atomic_load(&next.bytes) > 0);
            total += atomic_load(&next.bytes);
        }
        sys_fault_set_recv_limit(0);
        assert_int_equal(total, SIZE);
        assert_int_equal(test_check_pattern(in, SIZE, 0), SIZE);
        async_socket_destroy(s);
        assert_int_equal(atomic_load(&received.calls), 1);
        (void)close(fds[1]);
        free(in);
        assert_int_equal(sys_fault_live_allocations(), before);
        assert_int_equal(test_count_open_fds(), open_fds);
        if (!fired)
        {
            break;
        }
    }
    assert_true(n < 4 * SWEEP_LIMIT);
    sweep_report(&sweep);
    return sweep.points;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_11_095 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_092 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_11_088 */
static void async_socket_receive_through_the_transport_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    assert_true(sweep_transport_receive(false, "async_socket_receive_async (recvmsg fails, default transport)") >= 1);
    assert_true(sweep_transport_receive(true, "async_socket_receive_async (on_recv fails, custom transport)") >= 1);
    env_end(env);
}

/* ---- platform_init and execution_engine_create ---- */

/* Sends 32 pattern bytes on a fresh socket and checks them at the peer: the platform works. */
static void check_a_socket_works(EXECUTION_ENGINE_HANDLE engine)
{
    int fds[2];
    make_unix_pair(fds, 0);
    ASYNC_SOCKET_HANDLE s = open_socket_with(async_socket_create(engine, fds[0]));
    uint8_t data[32];
    test_fill_pattern(data, sizeof(data), 0);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = sizeof(data)};
    CB sent;
    cb_init(&sent);
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, &sent), ASYNC_SOCKET_SEND_SYNC_OK);
    peer_read_pattern(fds[1], 0, sizeof(data));
    async_socket_destroy(s);
    assert_int_equal(atomic_load(&sent.calls), 1);
    (void)close(fds[1]);
}

/* Every failure of platform_init (the port's memory, epoll_create1, eventfd, epoll_ctl, each of
 * the workers) returns non-zero, logs, and gives back every allocation, fd and thread; the
 * platform is not initialised after it, and the init that succeeds gives a working platform. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void platform_init_fault_sweep(void** state)
{
    (void)state;
    sys_fault_disarm();
    test_thread = pthread_self();
    settle_threads();
    assert_int_equal(platform_linux_set_worker_count(3), 0);
    int64_t allocations = sys_fault_live_allocations();
    int open_fds = test_count_open_fds();
    int threads = test_count_threads();
    SWEEP sweep;
    sweep_init_for(&sweep, OP_PLATFORM_INIT, "platform_init (3 workers)");
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, EIO);
        int result = platform_init();
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_int_equal(result, 0);
            assert_int_equal(errors, 0);
            check_a_socket_works(NULL);
            platform_deinit();
            break;
        }
        assert_int_not_equal(result, 0);
        /* one line names the step that failed; platform_init adds none of its own */
        ASSERT_ERROR_LINES(errors, 1);
        sweep_note_failure(&sweep, errors);
        assert_int_equal(sys_fault_live_allocations(), allocations);
        assert_int_equal(test_count_open_fds(), open_fds);
        TEST_WAIT_UNTIL(test_count_threads() == threads, 1000);
        /* not initialised: there is no port to get (which logs one error) */
        log_capture_start();
        assert_null(platform_get_completion_port());
        ASSERT_ERROR_LINES(log_capture_stop(), 1);
    }
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    assert_int_equal(sys_fault_live_allocations(), allocations);
    assert_int_equal(test_count_open_fds(), open_fds);
    TEST_WAIT_UNTIL(test_count_threads() == threads, 1000);
    sweep_report(&sweep);
    assert_true(sweep.points >= 7); /* memory, epoll, eventfd, epoll_ctl, three workers */
}

/* Every failure of execution_engine_create returns NULL, logs one line and frees what it took;
 * the engine that is created works with a socket. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void execution_engine_create_fault_sweep(void** state)
{
    (void)state;
    ENV env = env_begin();
    SWEEP sweep;
    sweep_init_for(&sweep, OP_EXECUTION_ENGINE_CREATE, "execution_engine_create");
    const EXECUTION_ENGINE_PARAMETERS parameters = {.min_thread_count = 1, .max_thread_count = 4};
    warm_up_port(false);
    for (uint32_t n = 1; n < SWEEP_LIMIT; n++)
    {
        int64_t before = sys_fault_live_allocations();
        int open_fds = test_count_open_fds();
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALL, n, ENOMEM);
        EXECUTION_ENGINE_HANDLE engine = execution_engine_create(&parameters);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        int errors = log_capture_stop();
        if (!fired)
        {
            assert_non_null(engine);
            assert_int_equal(errors, 0);
            check_a_socket_works(engine);
            execution_engine_dec_ref(engine);
            assert_int_equal(sys_fault_live_allocations(), before);
            break;
        }
        assert_null(engine);
        ASSERT_ERROR_LINES(errors, 1);
        sweep_note_failure(&sweep, errors);
        assert_int_equal(sys_fault_live_allocations(), before);
        assert_int_equal(test_count_open_fds(), open_fds);
    }
    sweep_report(&sweep);
    assert_true(sweep.points >= 1); /* the engine's memory */
    env_end(env);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(async_socket_create_fault_sweep),
    cmocka_unit_test(async_socket_create_with_transport_fault_sweep),
    cmocka_unit_test(async_socket_open_async_fault_sweep),
    cmocka_unit_test(async_socket_send_async_inline_fault_sweep),
    cmocka_unit_test(async_socket_send_async_with_sendmsg_failing_connection_gone_returns_not_open),
    cmocka_unit_test(async_socket_send_async_partial_fault_sweep),
    cmocka_unit_test(async_socket_send_async_queued_fault_sweep),
    cmocka_unit_test(async_socket_receive_async_fault_sweep),
    cmocka_unit_test(async_socket_idle_socket_with_a_receive_pending_is_one_small_allocation),
    cmocka_unit_test(async_socket_with_an_execution_engine_is_one_small_allocation),
    cmocka_unit_test(async_socket_notify_io_async_fault_sweep),
    cmocka_unit_test(async_socket_close_fault_sweep),
    cmocka_unit_test(async_socket_destroy_fault_sweep),
    cmocka_unit_test(async_socket_send_through_the_transport_fault_sweep),
    cmocka_unit_test(async_socket_receive_through_the_transport_fault_sweep),
    cmocka_unit_test(platform_init_fault_sweep),
    cmocka_unit_test(execution_engine_create_fault_sweep),
};

TEST_MAIN_WITH_GROUP(tests, NULL, print_sweep_summary)
