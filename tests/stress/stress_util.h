/* Helpers shared by the stress tests (tests/stress/, files ending _stress.c): the scale knob, the one-line
 * figures report, process measurements (RSS, RLIMIT_NOFILE) and loopback connections made in bulk
 * from one listener.
 *
 * ASYNC_SOCKET_STRESS_SCALE is a percentage of the full counts (default 100), so sanitizer and
 * valgrind runs can use a fraction of the load with the same code. Each test prints its figures on
 * one line starting "STRESS:"; when ASYNC_SOCKET_STRESS_LOG names a file the line is appended there
 * too (`make stress` collects them that way). */
#ifndef STRESS_UTIL_H
#define STRESS_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "async_socket_data_helpers.h"

#define STRESS_SCALE_ENV "ASYNC_SOCKET_STRESS_SCALE"
#define STRESS_LOG_ENV "ASYNC_SOCKET_STRESS_LOG"

/* The percentage from the environment, 1..1000; anything unreadable means 100. */
static inline unsigned stress_scale_percent(void)
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

/* full * scale / 100, never below minimum. */
static inline uint32_t stress_scaled(uint32_t full, uint32_t minimum)
{
    uint64_t value = (uint64_t)full * stress_scale_percent() / 100u;
    return (value < minimum) ? minimum : (uint32_t)value;
}

static inline void stress_report(const char* format, ...) __attribute__((format(printf, 1, 2)));

static inline void stress_report(const char* format, ...)
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

/* Resident set size in KiB (/proc/self/statm), 0 when it cannot be read. */
static inline uint64_t stress_rss_kib(void)
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

/* Raises RLIMIT_NOFILE towards `wanted`: the hard limit too when it is lower and the process may
 * (root), else the soft limit up to the hard one. Returns the soft limit in force afterwards. */
static inline uint64_t stress_raise_nofile(uint64_t wanted)
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

/* A listener on 127.0.0.1 (kernel-chosen port) with a deep backlog; rcvbuf > 0 sets SO_RCVBUF,
 * which the accepted sockets inherit. */
typedef struct STRESS_LISTENER_TAG
{
    int fd;
    struct sockaddr_in addr;
} STRESS_LISTENER;

static inline void stress_listener_open(STRESS_LISTENER* listener, int rcvbuf)
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

static inline void stress_listener_close(STRESS_LISTENER* listener)
{
    assert_int_equal(close(listener->fd), 0);
    listener->fd = -1;
}

static inline void stress_set_int_option(int fd, int level, int name, int value)
{
    assert_int_equal(setsockopt(fd, level, name, &value, sizeof(value)), 0);
}

/* Closing with SO_LINGER 0 resets the connection instead of leaving it in TIME_WAIT, so a long
 * run of short connections does not exhaust the ephemeral ports. */
static inline void stress_set_linger_zero(int fd)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
}

/* One connection through the listener: fds[0] the client end, fds[1] the accepted end, both
 * blocking, close-on-exec and TCP_NODELAY; sndbuf > 0 sets the client's SO_SNDBUF first. Returns 0,
 * or the errno of the step that failed (EMFILE when the fd limit is reached), leaving nothing open. */
static inline int stress_connect(const STRESS_LISTENER* listener, int fds[2], int sndbuf)
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

static inline double stress_seconds_since(uint64_t start_ms)
{
    return (double)(test_now_ms() - start_ms) / 1000.0;
}

#endif /* STRESS_UTIL_H */
