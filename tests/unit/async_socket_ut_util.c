/* The helpers of the async_socket unit tests, declared in async_socket_ut_util.h; compiled once
 * into async_socket_ut_helpers, which CMake links into every test that includes the header. */
#include "async_socket_ut_util.h"

void* do_nothing(void* arg)
{
    return arg;
}

void settle_threads(void)
{
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, do_nothing, NULL), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    int previous = -1;
    for (int i = 0; i < 200; i++)
    {
        int now = test_count_threads();
        if (now == previous)
        {
            return;
        }
        previous = now;
        test_sleep_ms(5);
    }
}

pthread_t test_thread;

ENV env_begin(void)
{
    sys_fault_disarm();
    sys_fault_set_send_limit(0);
    sys_fault_set_recv_limit(0);
    test_thread = pthread_self();
    settle_threads();
    ENV env = {.allocations = sys_fault_live_allocations(), .fds = test_count_open_fds(), .threads = test_count_threads()};
    assert_true(env.fds > 0);
    assert_int_equal(platform_init(), 0);
    return env;
}

void env_end(ENV env)
{
    platform_deinit();
    sys_fault_disarm();
    sys_fault_set_send_limit(0);
    sys_fault_set_recv_limit(0);
    assert_int_equal(sys_fault_live_allocations(), env.allocations);
    assert_int_equal(test_count_open_fds(), env.fds);
    /* a joined thread can stay listed in /proc/self/task for a moment after pthread_join */
    TEST_WAIT_UNTIL(test_count_threads() == env.threads, 1000);
}

bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

_Thread_local int in_api_call;

void cb_init(CB* cb)
{
    atomic_init(&cb->calls, 0);
    atomic_init(&cb->result, -1);
    atomic_init(&cb->bytes, 0);
    atomic_init(&cb->inline_calls, 0);
    atomic_init(&cb->test_thread_calls, 0);
    atomic_init(&cb->after_flag, 0);
    cb->flag = NULL;
}

void cb_note(CB* cb, int result, uint32_t bytes)
{
    if (cb->flag != NULL && atomic_load(cb->flag) != 0)
    {
        (void)atomic_fetch_add(&cb->after_flag, 1);
    }
    atomic_store(&cb->result, result);
    atomic_store(&cb->bytes, bytes);
    if (pthread_equal(pthread_self(), test_thread))
    {
        (void)atomic_fetch_add(&cb->test_thread_calls, 1);
        if (in_api_call)
        {
            (void)atomic_fetch_add(&cb->inline_calls, 1);
        }
    }
    (void)atomic_fetch_add(&cb->calls, 1);
}

void on_open_cb(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    cb_note(context, (int)result, 0);
}

void on_send_cb(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    cb_note(context, (int)result, 0);
}

void on_receive_cb(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    cb_note(context, (int)result, bytes);
}

void on_notify_cb(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    cb_note(context, (int)result, 0);
}

atomic_int unexpected_callbacks;

void on_open_unexpected(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    (void)context; (void)result;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

void on_send_unexpected(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    (void)context; (void)result;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

void on_receive_unexpected(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    (void)context; (void)result; (void)bytes;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

void on_notify_unexpected(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    (void)context; (void)result;
    (void)atomic_fetch_add(&unexpected_callbacks, 1);
}

atomic_int null_context_calls;

atomic_int null_context_result;

atomic_uint null_context_bytes;

void on_open_expect_null_context(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    if (context == NULL)
    {
        atomic_store(&null_context_result, (int)result);
        (void)atomic_fetch_add(&null_context_calls, 1);
    }
}

void on_send_expect_null_context(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    if (context == NULL)
    {
        atomic_store(&null_context_result, (int)result);
        (void)atomic_fetch_add(&null_context_calls, 1);
    }
}

void on_receive_expect_null_context(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    if (context == NULL)
    {
        atomic_store(&null_context_result, (int)result);
        atomic_store(&null_context_bytes, bytes);
        (void)atomic_fetch_add(&null_context_calls, 1);
    }
}

void on_notify_expect_null_context(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    if (context == NULL)
    {
        atomic_store(&null_context_result, (int)result);
        (void)atomic_fetch_add(&null_context_calls, 1);
    }
}

int open_marked(ASYNC_SOCKET_HANDLE s, ON_ASYNC_SOCKET_OPEN_COMPLETE cb, void* context)
{
    in_api_call = 1;
    int result = async_socket_open_async(s, cb, context);
    in_api_call = 0;
    return result;
}

ASYNC_SOCKET_SEND_SYNC_RESULT send_marked(ASYNC_SOCKET_HANDLE s, const ASYNC_SOCKET_BUFFER* payload, uint32_t count, ON_ASYNC_SOCKET_SEND_COMPLETE cb, void* context)
{
    in_api_call = 1;
    ASYNC_SOCKET_SEND_SYNC_RESULT result = async_socket_send_async(s, payload, count, cb, context);
    in_api_call = 0;
    return result;
}

int receive_marked(ASYNC_SOCKET_HANDLE s, ASYNC_SOCKET_BUFFER* payload, uint32_t count, ON_ASYNC_SOCKET_RECEIVE_COMPLETE cb, void* context)
{
    in_api_call = 1;
    int result = async_socket_receive_async(s, payload, count, cb, context);
    in_api_call = 0;
    return result;
}

int notify_marked(ASYNC_SOCKET_HANDLE s, ASYNC_SOCKET_NOTIFY_IO_TYPE type, ON_ASYNC_SOCKET_NOTIFY_IO_COMPLETE cb, void* context)
{
    in_api_call = 1;
    int result = async_socket_notify_io_async(s, type, cb, context);
    in_api_call = 0;
    return result;
}

void gate_init(GATE* gate)
{
    (void)pthread_mutex_init(&gate->lock, NULL);
    (void)pthread_cond_init(&gate->cond, NULL);
    gate->open = false;
    atomic_init(&gate->entered, 0);
    atomic_init(&gate->left, 0);
}

void gate_wait(GATE* gate)
{
    (void)atomic_fetch_add(&gate->entered, 1);
    (void)pthread_mutex_lock(&gate->lock);
    while (!gate->open)
    {
        (void)pthread_cond_wait(&gate->cond, &gate->lock);
    }
    (void)pthread_mutex_unlock(&gate->lock);
    (void)atomic_fetch_add(&gate->left, 1);
}

void gate_open(GATE* gate)
{
    (void)pthread_mutex_lock(&gate->lock);
    gate->open = true;
    (void)pthread_cond_broadcast(&gate->cond);
    (void)pthread_mutex_unlock(&gate->lock);
}

void gate_deinit(GATE* gate)
{
    (void)pthread_cond_destroy(&gate->cond);
    (void)pthread_mutex_destroy(&gate->lock);
}

void make_unix_pair(int fds[2], int sndbuf)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    if (sndbuf > 0)
    {
        assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
        assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    }
}

void make_tcp_pair(int fds[2], int bufsize)
{
    assert_int_equal(test_tcp_pair(fds, bufsize, bufsize), 0);
}

void close_with_reset(int fd)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
    assert_int_equal(close(fd), 0);
}

void peer_read_pattern(int fd, uint64_t offset, size_t len)
{
    uint8_t* buf = malloc(len);
    assert_non_null(buf);
    test_read_exact(fd, buf, len);
    size_t bad = test_check_pattern(buf, len, offset);
    free(buf);
    if (bad != len)
    {
        fail_msg("byte %zu of %zu (stream offset %llu) does not match the pattern", bad, len, (unsigned long long)(offset + bad));
    }
}

void write_all(int fd, const void* buf, size_t len)
{
    size_t done = 0;
    while (done < len)
    {
        ssize_t n = send(fd, (const uint8_t*)buf + done, len - done, MSG_NOSIGNAL);
        assert_true(n > 0);
        done += (size_t)n;
    }
}

void peer_write_pattern(int fd, uint64_t offset, size_t len)
{
    uint8_t* buf = malloc(len);
    assert_non_null(buf);
    test_fill_pattern(buf, len, offset);
    write_all(fd, buf, len);
    free(buf);
}

bool nothing_to_read(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

bool peer_sees_eof(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) <= 0)
    {
        return false;
    }
    uint8_t byte;
    return recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

bool peer_drains_to_eof(int fd)
{
    uint8_t sink[65536];
    uint64_t start = test_now_ms();
    while (test_now_ms() - start < 2000)
    {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
        {
            continue;
        }
        ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0)
        {
            return true;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
        {
            return false;
        }
    }
    return false;
}

ASYNC_SOCKET_HANDLE open_socket_with(ASYNC_SOCKET_HANDLE s)
{
    assert_non_null(s);
    CB cb;
    cb_init(&cb);
    assert_int_equal(open_marked(s, on_open_cb, &cb), 0);
    assert_int_equal(atomic_load(&cb.calls), 1);
    assert_int_equal(atomic_load(&cb.result), ASYNC_SOCKET_OPEN_OK);
    return s;
}

ASYNC_SOCKET_HANDLE open_socket(int fd)
{
    return open_socket_with(async_socket_create(NULL, fd));
}

ASYNC_SOCKET_HANDLE env_begin_with_unix_socket(ENV* env, int fds[2])
{
    *env = env_begin();
    make_unix_pair(fds, 0);
    return open_socket(fds[0]);
}

void env_end_with_socket(ASYNC_SOCKET_HANDLE s, int peer_fd, ENV env)
{
    async_socket_destroy(s);
    (void)close(peer_fd);
    env_end(env);
}

void transport_init(TRANSPORT* t, int fd)
{
    memset(t, 0, sizeof(*t));
    t->fd = fd;
    (void)pthread_mutex_init(&t->lock, NULL);
    atomic_init(&t->send_calls, 0);
    atomic_init(&t->recv_calls, 0);
    atomic_init(&t->worker_send_calls, 0);
    atomic_init(&t->test_thread_recv_calls, 0);
    atomic_init(&t->wrong_handle, 0);
    atomic_init(&t->handle, NULL);
    atomic_init(&t->recv_would_block, false);
}

void transport_deinit(TRANSPORT* t)
{
    (void)pthread_mutex_destroy(&t->lock);
}

void script_add(TRANSPORT* t, SCRIPT* script, int error)
{
    (void)pthread_mutex_lock(&t->lock);
    assert_true(script->length < SCRIPT_MAX);
    script->step[script->length++] = error;
    (void)pthread_mutex_unlock(&t->lock);
}

int script_next(TRANSPORT* t, SCRIPT* script)
{
    int error = 0;
    (void)pthread_mutex_lock(&t->lock);
    if (script->position < script->length)
    {
        error = script->step[script->position++];
    }
    if (script->position == script->length)
    {
        /* all used: start over, so a long test can keep adding steps */
        script->position = 0;
        script->length = 0;
    }
    (void)pthread_mutex_unlock(&t->lock);
    return error;
}

int script_left(TRANSPORT* t, SCRIPT* script)
{
    (void)pthread_mutex_lock(&t->lock);
    int left = script->length - script->position;
    (void)pthread_mutex_unlock(&t->lock);
    return left;
}

void transport_note_handle(TRANSPORT* t, ASYNC_SOCKET_HANDLE handle)
{
    if (atomic_load(&t->handle) != handle)
    {
        (void)atomic_fetch_add(&t->wrong_handle, 1);
    }
}

int transport_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    TRANSPORT* t = context;
    transport_note_handle(t, async_socket);
    (void)atomic_fetch_add(&t->send_calls, 1);
    if (!pthread_equal(pthread_self(), test_thread))
    {
        (void)atomic_fetch_add(&t->worker_send_calls, 1);
    }
    if (t->send_gate != NULL)
    {
        gate_wait(t->send_gate);
    }
    int error = script_next(t, &t->send_script);
    if (error != 0)
    {
        errno = error;
        return -1;
    }
    if (t->max_send != 0 && len > t->max_send)
    {
        len = t->max_send;
    }
    return (int)send(t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int transport_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    TRANSPORT* t = context;
    transport_note_handle(t, async_socket);
    (void)atomic_fetch_add(&t->recv_calls, 1);
    if (pthread_equal(pthread_self(), test_thread))
    {
        (void)atomic_fetch_add(&t->test_thread_recv_calls, 1);
    }
    int error = script_next(t, &t->recv_script);
    if (error == 0 && atomic_load(&t->recv_would_block))
    {
        error = EAGAIN;
    }
    if (error != 0)
    {
        errno = error;
        return -1;
    }
    if (t->max_recv != 0 && len > t->max_recv)
    {
        len = t->max_recv;
    }
    ssize_t n = recv(t->fd, buf, len, MSG_DONTWAIT);
    if (n < 0 && errno == ECONNRESET && t->reset_errno != 0)
    {
        errno = t->reset_errno;
    }
    return (int)n;
}

ASYNC_SOCKET_HANDLE create_with_test_transport(TRANSPORT* t)
{
    ASYNC_SOCKET_HANDLE s = async_socket_create_with_transport(NULL, t->fd, transport_on_send, t, transport_on_recv, t);
    assert_non_null(s);
    atomic_store(&t->handle, s);
    return s;
}

void kick(int peer_fd)
{
    uint8_t byte = 0xA5;
    /* never blocks: when the socket is full, the bytes already sent raise no new edge anyway */
    ssize_t n = send(peer_fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    assert_true(n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)));
}

volatile sig_atomic_t sigpipe_count;

void count_sigpipe(int signal_number)
{
    (void)signal_number;
    sigpipe_count++;
}

struct sigaction catch_sigpipe(void)
{
    struct sigaction action;
    struct sigaction previous;
    memset(&action, 0, sizeof(action));
    action.sa_handler = count_sigpipe;
    (void)sigemptyset(&action.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &action, &previous), 0);
    sigpipe_count = 0;
    return previous;
}

void restore_sigpipe(struct sigaction previous)
{
    assert_int_equal(sigaction(SIGPIPE, &previous, NULL), 0);
}

uint8_t* send_until_queued(ASYNC_SOCKET_HANDLE s, uint64_t offset, uint32_t size, CB* cb)
{
    uint8_t* data = malloc(size);
    assert_non_null(data);
    test_fill_pattern(data, size, offset);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = data, .length = size};
    assert_int_equal(send_marked(s, &buffer, 1, on_send_cb, cb), ASYNC_SOCKET_SEND_SYNC_OK);
    return data;
}
