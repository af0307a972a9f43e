/* See test_util.h. */
#include <pthread.h>
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sys_fault.h"

static int set_buffer_sizes(int fd, int sndbuf, int rcvbuf)
{
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0)
    {
        return -1;
    }
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0)
    {
        return -1;
    }
    return 0;
}

static int set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void close_keeping_errno(int fd)
{
    int saved = errno;
    (void)close(fd);
    errno = saved;
}

/* A listening socket on 127.0.0.1 with a kernel-chosen port, written to *addr. Accepted sockets
 * inherit the listener's buffer sizes, which is why they are set before listen(). */
static int listen_loopback(struct sockaddr_in* addr, int sndbuf, int rcvbuf)
{
    socklen_t addr_len = sizeof(*addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
    {
        return -1;
    }
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr->sin_port = 0;
    if (set_buffer_sizes(fd, sndbuf, rcvbuf) != 0 ||
        bind(fd, (const struct sockaddr*)addr, sizeof(*addr)) != 0 ||
        listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr*)addr, &addr_len) != 0)
    {
        close_keeping_errno(fd);
        return -1;
    }
    return fd;
}

int test_tcp_pair(int fds[2], int sndbuf, int rcvbuf)
{
    struct sockaddr_in addr;
    int listener = listen_loopback(&addr, sndbuf, rcvbuf);
    int client = -1;
    int server = -1;

    if (listener < 0)
    {
        return -1;
    }
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0)
    {
        goto fail;
    }
    if (set_buffer_sizes(client, sndbuf, rcvbuf) != 0 ||
        connect(client, (const struct sockaddr*)&addr, sizeof(addr)) != 0)
    {
        goto fail;
    }
    do
    {
        server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    } while (server < 0 && errno == EINTR);
    if (server < 0 || set_nodelay(client) != 0 || set_nodelay(server) != 0)
    {
        goto fail;
    }
    close_keeping_errno(listener);
    fds[0] = client;
    fds[1] = server;
    return 0;

fail:
    if (server >= 0)
    {
        close_keeping_errno(server);
    }
    if (client >= 0)
    {
        close_keeping_errno(client);
    }
    close_keeping_errno(listener);
    return -1;
}

int test_count_open_fds(void)
{
    DIR* dir = opendir("/proc/self/fd");
    int count = 0;
    struct dirent* entry;

    if (dir == NULL)
    {
        return -1;
    }
    while ((entry = readdir(dir)) != NULL)
    {
        if (entry->d_name[0] != '.')
        {
            count++;
        }
    }
    (void)closedir(dir);
    /* The directory stream's own fd was listed too. */
    return count - 1;
}

/* True when the task has started to exit (PF_EXITING in its stat flags) or is gone. A joined
 * thread stays listed in /proc/self/task for a moment after pthread_join returns: the kernel
 * wakes the joiner when the thread releases its memory map, before the task is removed. */
static bool task_is_exiting(const char* tid)
{
    char path[64];
    char stat[512];
    (void)snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
    {
        return true;
    }
    ssize_t got = read(fd, stat, sizeof(stat) - 1);
    (void)close(fd);
    if (got <= 0)
    {
        return true;
    }
    stat[got] = '\0';
    const char* after_name = strrchr(stat, ')');
    char state = 0;
    unsigned long flags = 0;
    /* after the name: state ppid pgrp session tty_nr tpgid flags */
    if (after_name == NULL || sscanf(after_name + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
    {
        return true;
    }
    return (flags & 0x4UL) != 0 || state == 'Z' || state == 'X';
}

int test_count_threads(void)
{
    DIR* dir = opendir("/proc/self/task");
    int count = 0;
    struct dirent* entry;

    assert_non_null(dir);
    while ((entry = readdir(dir)) != NULL)
    {
        if (entry->d_name[0] != '.' && !task_is_exiting(entry->d_name))
        {
            count++;
        }
    }
    (void)closedir(dir);
    return count;
}

static void* no_op_thread(void* arg)
{
    return arg;
}

TEST_BASELINE test_baseline_take(void)
{
    /* A sanitizer runtime starts a helper thread of its own at the first pthread_create; make
     * that happen before counting, so the baseline holds it. */
    pthread_t thread;
    if (pthread_create(&thread, NULL, no_op_thread, NULL) == 0)
    {
        (void)pthread_join(thread, NULL);
    }
    sys_fault_disarm();
    sys_fault_set_send_limit(0);
    sys_fault_set_recv_limit(0);
    TEST_BASELINE baseline = {.allocations = sys_fault_live_allocations(), .fds = test_count_open_fds(), .threads = test_count_threads()};
    return baseline;
}

void test_baseline_assert_back_to(TEST_BASELINE baseline)
{
    assert_int_equal(sys_fault_live_allocations(), baseline.allocations);
    assert_int_equal(test_count_open_fds(), baseline.fds);
}

void test_read_exact(int fd, uint8_t* buf, size_t len)
{
    size_t got = 0;
    uint64_t start = test_now_ms();
    while (got < len)
    {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, 50);
        assert_true(ready >= 0 || errno == EINTR);
        if (ready > 0)
        {
            ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
            if (n > 0)
            {
                got += (size_t)n;
            }
            else
            {
                assert_true(n < 0 && (errno == EAGAIN || errno == EINTR));
            }
        }
        if (test_now_ms() - start > 5000 * test_wait_scale())
        {
            fail_msg("read_exact: got %zu of %zu bytes", got, len);
        }
    }
}

void test_sleep_ms(unsigned int ms)
{
    struct timespec remaining = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&remaining, &remaining) != 0 && errno == EINTR)
    {
    }
}

uint32_t test_count_unless_slow(uint32_t full, uint32_t slow)
{
    const char* text = getenv("ASYNC_SOCKET_SLOW_CHECK");
    return (text != NULL && atoi(text) != 0) ? slow : full;
}

uint64_t test_wait_scale(void)
{
    return (test_count_unless_slow(0, 1) != 0) ? 4 : 1;
}

uint64_t test_now_ms(void)
{
    struct timespec now;
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

void test_fill_pattern(uint8_t* buf, size_t len, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
    {
        buf[i] = test_pattern_byte(offset + i);
    }
}

size_t test_check_pattern(const uint8_t* buf, size_t len, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
    {
        if (buf[i] != test_pattern_byte(offset + i))
        {
            return i;
        }
    }
    return len;
}
