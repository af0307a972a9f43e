/* Helpers shared by the stress tests (tests/stress/, files ending _stress.c): the scale knob, the one-line
 * figures report, process measurements (RSS, RLIMIT_NOFILE) and loopback connections made in bulk
 * from one listener.
 *
 * ASYNC_SOCKET_STRESS_SCALE is a percentage of the full counts (default 100), so sanitizer and
 * valgrind runs can use a fraction of the load with the same code. Each test prints its figures on
 * one line starting "STRESS:"; when ASYNC_SOCKET_STRESS_LOG names a file the line is appended there
 * too (`make stress` collects them that way).
 *
 * Declarations only: the definitions are in stress_util.c, compiled into the library
 * async_socket_stress_helpers, which CMake links into every test file that includes this header. */
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
unsigned stress_scale_percent(void);

/* full * scale / 100, never below minimum. */
uint32_t stress_scaled(uint32_t full, uint32_t minimum);
void stress_report(const char* format, ...) __attribute__((format(printf, 1, 2)));

/* Resident set size in KiB (/proc/self/statm), 0 when it cannot be read. */
uint64_t stress_rss_kib(void);

/* Raises RLIMIT_NOFILE towards `wanted`: the hard limit too when it is lower and the process may
 * (root), else the soft limit up to the hard one. Returns the soft limit in force afterwards. */
uint64_t stress_raise_nofile(uint64_t wanted);

/* A listener on 127.0.0.1 (kernel-chosen port) with a deep backlog; rcvbuf > 0 sets SO_RCVBUF,
 * which the accepted sockets inherit. */
typedef struct STRESS_LISTENER_TAG
{
    int fd;
    struct sockaddr_in addr;
} STRESS_LISTENER;

void stress_listener_open(STRESS_LISTENER* listener, int rcvbuf);
void stress_listener_close(STRESS_LISTENER* listener);
void stress_set_int_option(int fd, int level, int name, int value);

/* Closing with SO_LINGER 0 resets the connection instead of leaving it in TIME_WAIT, so a long
 * run of short connections does not exhaust the ephemeral ports. */
void stress_set_linger_zero(int fd);

/* One connection through the listener: fds[0] the client end, fds[1] the accepted end, both
 * blocking, close-on-exec and TCP_NODELAY; sndbuf > 0 sets the client's SO_SNDBUF first. Returns 0,
 * or the errno of the step that failed (EMFILE when the fd limit is reached), leaving nothing open. */
int stress_connect(const STRESS_LISTENER* listener, int fds[2], int sndbuf);
double stress_seconds_since(uint64_t start_ms);

#endif /* STRESS_UTIL_H */
