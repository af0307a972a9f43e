/* The helpers of the stress tests, declared in stress_util.h; compiled once into
 * async_socket_stress_helpers (over async_socket_data_helpers), which CMake links into every test
 * that includes the header. */
#include "stress_util.h"

unsigned stress_scale_percent(void)
{
    const char* text = getenv(STRESS_SCALE_ENV);
    if (text == NULL || *text == '\0')
    {
        return 100;
    }
    char* end = NULL;
    unsigned long value = strtoul(text, &end, 10);
    if (*end != '\0' || value < 1 || value > 1000)
    {
        (void)fprintf(stderr, "%s=%s is not 1..1000; using 100\n", STRESS_SCALE_ENV, text);
        return 100;
    }
    return (unsigned)value;
}

uint32_t stress_scaled(uint32_t full, uint32_t minimum)
{
    uint64_t value = (uint64_t)full * stress_scale_percent() / 100u;
    return (value < minimum) ? minimum : (uint32_t)value;
}

void stress_report(const char* format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    (void)vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    (void)printf("STRESS: %s scale=%u%%\n", line, stress_scale_percent());
    (void)fflush(stdout);
    const char* path = getenv(STRESS_LOG_ENV);
    if (path != NULL && *path != '\0')
    {
        FILE* log = fopen(path, "a");
        if (log != NULL)
        {
            (void)fprintf(log, "STRESS: %s scale=%u%%\n", line, stress_scale_percent());
            (void)fclose(log);
        }
    }
}

uint64_t stress_rss_kib(void)
{
    unsigned long size = 0;
    unsigned long resident = 0;
    FILE* statm = fopen("/proc/self/statm", "r");
    if (statm == NULL)
    {
        return 0;
    }
    if (fscanf(statm, "%lu %lu", &size, &resident) != 2)
    {
        resident = 0;
    }
    (void)fclose(statm);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024u;
}

uint64_t stress_raise_nofile(uint64_t wanted)
{
    struct rlimit limit;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_cur >= wanted)
    {
        return limit.rlim_cur;
    }
    if (limit.rlim_max < wanted)
    {
        struct rlimit raised = {.rlim_cur = wanted, .rlim_max = wanted};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
        {
            return wanted;
        }
    }
    limit.rlim_cur = (limit.rlim_max < wanted) ? limit.rlim_max : wanted;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &limit), 0);
    return limit.rlim_cur;
}

void stress_listener_open(STRESS_LISTENER* listener, int rcvbuf)
{
    socklen_t length = sizeof(listener->addr);
    listener->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(listener->fd >= 0);
    memset(&listener->addr, 0, sizeof(listener->addr));
    listener->addr.sin_family = AF_INET;
    listener->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (rcvbuf > 0)
    {
        assert_int_equal(setsockopt(listener->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    }
    assert_int_equal(bind(listener->fd, (const struct sockaddr*)&listener->addr, sizeof(listener->addr)), 0);
    assert_int_equal(listen(listener->fd, 4096), 0);
    assert_int_equal(getsockname(listener->fd, (struct sockaddr*)&listener->addr, &length), 0);
}

void stress_listener_close(STRESS_LISTENER* listener)
{
    assert_int_equal(close(listener->fd), 0);
    listener->fd = -1;
}

void stress_set_int_option(int fd, int level, int name, int value)
{
    assert_int_equal(setsockopt(fd, level, name, &value, sizeof(value)), 0);
}

void stress_set_linger_zero(int fd)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
}

int stress_connect(const STRESS_LISTENER* listener, int fds[2], int sndbuf)
{
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0)
    {
        return errno;
    }
    if ((sndbuf > 0 && setsockopt(client, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0) ||
        connect(client, (const struct sockaddr*)&listener->addr, sizeof(listener->addr)) != 0)
    {
        int error = errno;
        (void)close(client);
        return error;
    }
    int server;
    do
    {
        server = accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC);
    } while (server < 0 && errno == EINTR);
    if (server < 0)
    {
        int error = errno;
        (void)close(client);
        return error;
    }
    int one = 1;
    (void)setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fds[0] = client;
    fds[1] = server;
    return 0;
}

double stress_seconds_since(uint64_t start_ms)
{
    return (double)(test_now_ms() - start_ms) / 1000.0;
}
