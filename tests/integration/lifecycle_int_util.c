/* The lifecycle helpers of the integration tests, declared in lifecycle_int_util.h; compiled
 * once into async_socket_lifecycle_helpers, which CMake links into every test that includes the
 * header. */
#include "lifecycle_int_util.h"

void leak_check_begin(LEAK_CHECK* check)
{
    check->allocations = sys_fault_live_allocations();
    check->fds = test_count_open_fds();
    assert_true(check->fds > 0);
}

void leak_check_end(const LEAK_CHECK* check)
{
    assert_int_equal(sys_fault_live_allocations(), check->allocations);
    assert_int_equal(test_count_open_fds(), check->fds);
}

void lifecycle_begin(LEAK_CHECK* check, unsigned int watchdog_ms, const char* what)
{
    leak_check_begin(check);
    assert_int_equal(platform_init(), 0);
    watchdog_start(watchdog_ms, what);
}

void lifecycle_end(const LEAK_CHECK* check)
{
    watchdog_stop();
    platform_deinit();
    leak_check_end(check);
}

void lifecycle_begin_with_workers(LEAK_CHECK* check, uint32_t workers, unsigned int watchdog_ms, const char* what)
{
    leak_check_begin(check);
    assert_int_equal(platform_linux_set_worker_count(workers), 0);
    assert_int_equal(platform_init(), 0);
    watchdog_start(watchdog_ms, what);
}

void lifecycle_end_with_workers(const LEAK_CHECK* check)
{
    watchdog_stop();
    platform_deinit();
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    leak_check_end(check);
}

WATCHDOG watchdog = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

void* watchdog_main(void* arg)
{
    (void)arg;
    struct timespec deadline;
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    (void)pthread_mutex_lock(&watchdog.lock);
    deadline.tv_sec += watchdog.ms / 1000;
    deadline.tv_nsec += (long)(watchdog.ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L)
    {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int wait_result = 0;
    while (!watchdog.stop && wait_result != ETIMEDOUT)
    {
        wait_result = pthread_cond_timedwait(&watchdog.cond, &watchdog.lock, &deadline);
    }
    bool fired = !watchdog.stop;
    (void)pthread_mutex_unlock(&watchdog.lock);
    if (fired)
    {
        (void)fprintf(stderr, "WATCHDOG: '%s' did not finish within %u ms (deadlock?)\n", watchdog.what, watchdog.ms);
        (void)fflush(stderr);
        _exit(3);
    }
    return NULL;
}

void watchdog_stop(void)
{
    (void)pthread_mutex_lock(&watchdog.lock);
    bool active = watchdog.active;
    watchdog.stop = true;
    watchdog.active = false;
    (void)pthread_cond_signal(&watchdog.cond);
    (void)pthread_mutex_unlock(&watchdog.lock);
    if (active)
    {
        (void)pthread_join(watchdog.thread, NULL);
    }
}

void watchdog_start(unsigned int ms, const char* what)
{
    watchdog_stop();
    (void)pthread_mutex_lock(&watchdog.lock);
    watchdog.stop = false;
    watchdog.active = true;
    watchdog.ms = ms;
    watchdog.what = what;
    (void)pthread_mutex_unlock(&watchdog.lock);
    assert_int_equal(pthread_create(&watchdog.thread, NULL, watchdog_main, NULL), 0);
}

_Thread_local int test_in_api_call;

atomic_ullong op_completion_counter;

void op_record_init(OP_RECORD* record, atomic_int* close_returned)
{
    atomic_init(&record->calls, 0);
    atomic_init(&record->result, -1);
    atomic_init(&record->bytes, 0);
    atomic_init(&record->inline_call, 0);
    atomic_init(&record->after_close, 0);
    atomic_init(&record->hook_done, 0);
    record->close_returned = close_returned;
    record->hook = NULL;
    record->hook_context = NULL;
    atomic_init(&record->order, 0);
}

void op_record_note(OP_RECORD* record, int result, uint32_t bytes)
{
    if (record->close_returned != NULL && atomic_load(record->close_returned) != 0)
    {
        atomic_store(&record->after_close, 1);
    }
    atomic_store(&record->order, atomic_fetch_add(&op_completion_counter, 1) + 1);
    atomic_store(&record->inline_call, test_in_api_call);
    atomic_store(&record->bytes, bytes);
    atomic_store(&record->result, result);
    (void)atomic_fetch_add(&record->calls, 1);
    if (record->hook != NULL)
    {
        record->hook(record);
    }
    atomic_store(&record->hook_done, 1);
}

void on_send_record(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    op_record_note(context, (int)result, 0);
}

void on_receive_record(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    op_record_note(context, (int)result, bytes);
}

void on_notify_record(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    op_record_note(context, (int)result, 0);
}

void on_open_record(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    op_record_note(context, (int)result, 0);
}

void assert_once_with(const OP_RECORD* record, int result)
{
    assert_int_equal(atomic_load(&record->calls), 1);
    assert_int_equal(atomic_load(&record->result), result);
}

void assert_no_callback_after_close(const char* what, const OP_RECORD* records, size_t count)
{
    for (size_t i = 0; i < count; i++)
    {
        if (atomic_load(&records[i].after_close) != 0)
        {
            fail_msg("%s %zu (result %d) was called back after async_socket_close had returned", what, i, atomic_load(&records[i].result));
        }
    }
}

bool all_called(const OP_RECORD* records, size_t count)
{
    for (size_t i = 0; i < count; i++)
    {
        if (atomic_load(&records[i].calls) == 0)
        {
            return false;
        }
    }
    return true;
}

ASYNC_SOCKET_SEND_SYNC_RESULT test_send(ASYNC_SOCKET_HANDLE socket, void* data, uint32_t length, OP_RECORD* record)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = length};
    test_in_api_call++;
    ASYNC_SOCKET_SEND_SYNC_RESULT result = async_socket_send_async(socket, &buffer, 1, on_send_record, record);
    test_in_api_call--;
    return result;
}

int test_receive(ASYNC_SOCKET_HANDLE socket, void* data, uint32_t length, OP_RECORD* record)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = length};
    test_in_api_call++;
    int result = async_socket_receive_async(socket, &buffer, 1, on_receive_record, record);
    test_in_api_call--;
    return result;
}

int test_notify(ASYNC_SOCKET_HANDLE socket, ASYNC_SOCKET_NOTIFY_IO_TYPE type, OP_RECORD* record)
{
    test_in_api_call++;
    int result = async_socket_notify_io_async(socket, type, on_notify_record, record);
    test_in_api_call--;
    return result;
}

int test_open(ASYNC_SOCKET_HANDLE socket, OP_RECORD* record)
{
    test_in_api_call++;
    int result = async_socket_open_async(socket, on_open_record, record);
    test_in_api_call--;
    return result;
}

/* Creates and opens an async socket on fds[0]; *peer gets fds[1], *fd (optional) fds[0]. */
static ASYNC_SOCKET_HANDLE open_async_on_pair(const int fds[2], int* peer, int* fd)
{
    ASYNC_SOCKET_HANDLE socket = async_socket_create(NULL, fds[0]);
    assert_non_null(socket);
    OP_RECORD open_record;
    op_record_init(&open_record, NULL);
    assert_int_equal(test_open(socket, &open_record), 0);
    assert_once_with(&open_record, ASYNC_SOCKET_OPEN_OK);
    *peer = fds[1];
    if (fd != NULL)
    {
        *fd = fds[0];
    }
    return socket;
}

ASYNC_SOCKET_HANDLE open_tcp_async(int sndbuf, int rcvbuf, int* peer, int* fd)
{
    int fds[2];
    assert_int_equal(test_tcp_pair(fds, sndbuf, rcvbuf), 0);
    return open_async_on_pair(fds, peer, fd);
}

ASYNC_SOCKET_HANDLE open_unix_async(int* peer, int* fd)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    return open_async_on_pair(fds, peer, fd);
}

void warm_up_port(void)
{
    int peer;
    ASYNC_SOCKET_HANDLE socket = open_unix_async(&peer, NULL);
    async_socket_destroy(socket);
    assert_int_equal(close(peer), 0);
}

uint64_t drain_until_eof(int fd, unsigned int timeout_ms, bool check_pattern)
{
    static uint8_t chunk[65536];
    uint64_t total = 0;
    for (;;)
    {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)timeout_ms);
        if (ready < 0 && errno == EINTR)
        {
            continue;
        }
        assert_int_equal(ready, 1);
        ssize_t got = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
        {
            continue;
        }
        if (got < 0 && errno == ECONNRESET)
        {
            return total;
        }
        assert_true(got >= 0);
        if (got == 0)
        {
            return total;
        }
        if (check_pattern)
        {
            assert_int_equal(test_check_pattern(chunk, (size_t)got, total), (size_t)got);
        }
        total += (uint64_t)got;
    }
}

bool fd_is_closed(int fd)
{
    errno = 0;
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

uint32_t send_until_queued(ASYNC_SOCKET_HANDLE socket, uint8_t* data, uint32_t length, OP_RECORD* records, uint32_t max_sends)
{
    for (uint32_t i = 0; i < max_sends; i++)
    {
        assert_int_equal(test_send(socket, data + (size_t)i * length, length, &records[i]), ASYNC_SOCKET_SEND_SYNC_OK);
        if (atomic_load(&records[i].calls) == 0 || atomic_load(&records[i].inline_call) == 0)
        {
            return i + 1;
        }
    }
    fail_msg("no send was queued after %u sends of %u bytes", max_sends, length);
    return max_sends;
}
