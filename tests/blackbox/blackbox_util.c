/* The helpers of the black-box suite, declared in blackbox_util.h; compiled once into
 * async_socket_blackbox_helpers, which links only the public library (and cmocka), like the suite. */
#include "blackbox_util.h"

int64_t bb_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bb_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    {
    }
}

unsigned char bb_pattern(uint64_t i)
{
    return (unsigned char)((i * 131u + (i >> 8) * 7u + 17u) & 0xFF);
}

void bb_fill(unsigned char* p, size_t n, uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
    {
        p[i] = bb_pattern(offset + i);
    }
}

size_t bb_check(const unsigned char* p, size_t n, uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
    {
        if (p[i] != bb_pattern(offset + i))
        {
            return i;
        }
    }
    return n;
}

BB_LOG bb_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

void bb_log_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function,
                 const char* message)
{
    (void)context;
    (void)line;
    (void)function;
    (void)pthread_mutex_lock(&bb_log.lock);
    if ((unsigned)level < 5)
    {
        bb_log.count[level]++;
    }
    if (bb_log.total < BB_LOG_KEEP)
    {
        (void)snprintf(bb_log.lines[bb_log.total], sizeof(bb_log.lines[0]), "%s", message);
        (void)snprintf(bb_log.files[bb_log.total], sizeof(bb_log.files[0]), "%s", file);
        bb_log.levels[bb_log.total] = (int)level;
    }
    bb_log.total++;
    (void)pthread_mutex_unlock(&bb_log.lock);
}

void bb_log_reset(void)
{
    (void)pthread_mutex_lock(&bb_log.lock);
    memset(bb_log.count, 0, sizeof(bb_log.count));
    bb_log.total = 0;
    (void)pthread_mutex_unlock(&bb_log.lock);
}

int bb_log_count(ASYNC_SOCKET_LOG_LEVEL level)
{
    (void)pthread_mutex_lock(&bb_log.lock);
    int n = bb_log.count[level];
    (void)pthread_mutex_unlock(&bb_log.lock);
    return n;
}

int bb_log_total(void)
{
    (void)pthread_mutex_lock(&bb_log.lock);
    int n = bb_log.total;
    (void)pthread_mutex_unlock(&bb_log.lock);
    return n;
}

void bb_log_dump(const char* why)
{
    (void)pthread_mutex_lock(&bb_log.lock);
    int n = bb_log.total < BB_LOG_KEEP ? bb_log.total : BB_LOG_KEEP;
    (void)fprintf(stderr, "[%s] %d log line(s):\n", why, bb_log.total);
    for (int i = 0; i < n; i++)
    {
        (void)fprintf(stderr, "  %d %s: %s\n", bb_log.levels[i], bb_log.files[i], bb_log.lines[i]);
    }
    (void)pthread_mutex_unlock(&bb_log.lock);
}

void bb_counter_init(BB_COUNTER* c)
{
    pthread_condattr_t attr;
    (void)pthread_condattr_init(&attr);
    (void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    (void)pthread_mutex_init(&c->lock, NULL);
    (void)pthread_cond_init(&c->cond, &attr);
    (void)pthread_condattr_destroy(&attr);
    c->count = 0;
}

void bb_counter_deinit(BB_COUNTER* c)
{
    (void)pthread_cond_destroy(&c->cond);
    (void)pthread_mutex_destroy(&c->lock);
}

void bb_counter_add(BB_COUNTER* c)
{
    (void)pthread_mutex_lock(&c->lock);
    c->count++;
    (void)pthread_cond_broadcast(&c->cond);
    (void)pthread_mutex_unlock(&c->lock);
}

int bb_counter_get(BB_COUNTER* c)
{
    (void)pthread_mutex_lock(&c->lock);
    int n = c->count;
    (void)pthread_mutex_unlock(&c->lock);
    return n;
}

int bb_counter_wait(BB_COUNTER* c, int target, int timeout_ms)
{
    struct timespec deadline;
    (void)clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L)
    {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    (void)pthread_mutex_lock(&c->lock);
    while (c->count < target)
    {
        if (pthread_cond_timedwait(&c->cond, &c->lock, &deadline) == ETIMEDOUT)
        {
            break;
        }
    }
    int n = c->count;
    (void)pthread_mutex_unlock(&c->lock);
    return n;
}

atomic_int bb_sequence;

void bb_op_init(BB_OP* op, BB_COUNTER* done)
{
    memset(op, 0, sizeof(*op));
    atomic_init(&op->calls, 0);
    op->done = done;
}

void bb_op_record(BB_OP* op, int result, uint32_t bytes)
{
    op->result = result;
    op->bytes = bytes;
    op->thread = pthread_self();
    op->sequence = atomic_fetch_add(&bb_sequence, 1);
    (void)atomic_fetch_add(&op->calls, 1);
    if (op->then != NULL)
    {
        op->then(op);
    }
    if (op->done != NULL)
    {
        bb_counter_add(op->done);
    }
}

void bb_on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    bb_op_record(context, (int)result, 0);
}

void bb_on_send(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    bb_op_record(context, (int)result, 0);
}

void bb_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    bb_op_record(context, (int)result, bytes);
}

void bb_on_notify(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    bb_op_record(context, (int)result, 0);
}

int bb_calls(BB_OP* op)
{
    return atomic_load(&op->calls);
}

bool bb_op_wait(BB_OP* op, int timeout_ms)
{
    int64_t end = bb_now_ms() + timeout_ms;
    while (atomic_load(&op->calls) == 0)
    {
        if (bb_now_ms() > end)
        {
            return false;
        }
        bb_sleep_ms(1);
    }
    return true;
}

void bb_tcp_pair(int* lib_fd, int* peer_fd)
{
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(listener >= 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    assert_int_equal(bind(listener, (struct sockaddr*)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(listener, 4), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr*)&addr, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr*)&addr, sizeof(addr)), 0);
    int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    (void)close(listener);
    int one = 1;
    (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *lib_fd = c;
    *peer_fd = s;
}

size_t bb_read_n(int fd, void* buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    int64_t end = bb_now_ms() + timeout_ms;
    while (got < n)
    {
        int64_t left = end - bb_now_ms();
        if (left <= 0)
        {
            break;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, (int)left);
        if (r <= 0)
        {
            continue;
        }
        ssize_t k = recv(fd, (char*)buf + got, n - got, MSG_DONTWAIT);
        if (k > 0)
        {
            got += (size_t)k;
        }
        else if (k == 0 || (errno != EAGAIN && errno != EINTR))
        {
            break;
        }
    }
    return got;
}

int bb_write_all(int fd, const void* buf, size_t n)
{
    size_t done = 0;
    while (done < n)
    {
        ssize_t k = send(fd, (const char*)buf + done, n - done, MSG_NOSIGNAL);
        if (k < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}

bool bb_peer_sees_end(int fd, int timeout_ms)
{
    char sink[4096];
    int64_t end = bb_now_ms() + timeout_ms;
    while (bb_now_ms() < end)
    {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
        {
            continue;
        }
        ssize_t k = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
        {
            return true;
        }
    }
    return false;
}

bool bb_fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

void bb_close_with_reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    (void)close(fd);
}

int bb_setup(void** state)
{
    (void)state;
    (void)alarm(60);
    async_socket_log_set_sink(bb_log_sink, NULL);
    bb_log_reset();
    atomic_store(&bb_sequence, 0);
    return platform_init();
}

int bb_teardown(void** state)
{
    (void)state;
    platform_deinit();
    async_socket_log_set_sink(NULL, NULL);
    (void)alarm(0);
    return 0;
}

ASYNC_SOCKET_HANDLE bb_open_socket(int fd)
{
    ASYNC_SOCKET_HANDLE s = async_socket_create(NULL, fd);
    assert_non_null(s);
    BB_OP open_op;
    bb_op_init(&open_op, NULL);
    assert_int_equal(async_socket_open_async(s, bb_on_open, &open_op), 0);
    assert_int_equal(bb_calls(&open_op), 1);
    assert_int_equal(open_op.result, ASYNC_SOCKET_OPEN_OK);
    return s;
}
