/* The seam between the library and the system: every allocation and every syscall the library
 * (libasync_socket: src/ but the TLS layer) makes goes through one of these functions. The
 * library links sys_linux.c, which calls straight through; tests link a replacement that can fail
 * the n-th call of some of them (see tests/common/sys_fault.c).
 *
 * Deliberately not through the seam, and why:
 * - clock_gettime (completion port, transport connect deadline): a vDSO read that cannot fail
 *   with valid arguments;
 * - getaddrinfo / freeaddrinfo (transport connect and listen, listener): a C library resolver,
 *   not a syscall; its failures are reported by its own return value and tested with bad names;
 * - the logger's write() of a line to stderr (logger.c): a failure injected there would only
 *   lose the line that says what failed, and a test that counts log lines would count wrong;
 * - the TLS layer (src/async_socket_tls.c, libasync_socket_tls): a separate library built on the
 *   public API only, which cannot reach these hidden symbols; its send/recv on the fd (OpenSSL's
 *   BIO) and its allocations are its own and OpenSSL's.
 * tests/seam/check_seam.py checks that nothing else goes around the seam. */
#ifndef SYS_H
#define SYS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <time.h>

void* sys_malloc(size_t size);
void* sys_calloc(size_t count, size_t size);
void sys_free(void* ptr);

int sys_epoll_create1(int flags);
int sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event* event);
int sys_epoll_wait(int epfd, struct epoll_event* events, int maxevents, int timeout);
int sys_eventfd(unsigned int initval, int flags);
int sys_pthread_create(pthread_t* thread, void* (*start_routine)(void*), void* arg);

int sys_fcntl(int fd, int cmd, int arg);
ssize_t sys_sendmsg(int fd, const struct msghdr* msg, int flags);
ssize_t sys_recvmsg(int fd, struct msghdr* msg, int flags);
ssize_t sys_read(int fd, void* buf, size_t count);
ssize_t sys_write(int fd, const void* buf, size_t count);
int sys_shutdown(int fd, int how);

int sys_close(int fd);

int sys_socket(int domain, int type, int protocol);
int sys_connect(int fd, const struct sockaddr* address, socklen_t length);
int sys_bind(int fd, const struct sockaddr* address, socklen_t length);
int sys_listen(int fd, int backlog);
int sys_accept4(int fd, struct sockaddr* address, socklen_t* length, int flags);
int sys_setsockopt(int fd, int level, int name, const void* value, socklen_t length);
int sys_getsockopt(int fd, int level, int name, void* value, socklen_t* length);
int sys_getsockname(int fd, struct sockaddr* address, socklen_t* length);
int sys_poll(struct pollfd* fds, nfds_t count, int timeout);
int sys_fstat(int fd, struct stat* status);
int sys_timerfd_create(int clock, int flags);
int sys_timerfd_settime(int fd, int flags, const struct itimerspec* value, struct itimerspec* old);
/* FUTEX_WAIT_PRIVATE (timeout NULL for none) or FUTEX_WAKE_PRIVATE on a 32-bit word. */
long sys_futex(atomic_uint* word, int op, unsigned value, const struct timespec* timeout);

/* Whether a sendmsg (recvmsg) on a TCP socket that moved fewer bytes than asked means the socket
 * buffer is full (empty) now. The kernel's answer is yes, which saves the syscall that would
 * only say EAGAIN; a test seam that caps the bytes per call says no. The question is asked only
 * in trees that link the test seam (ASYNC_SOCKET_TEST_HOOKS: the tests and the fuzzer); in
 * others, a Release library among them, the answer is the constant below.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_180 */
#ifdef ASYNC_SOCKET_TEST_HOOKS
int sys_short_send_means_full(void);
int sys_short_recv_means_empty(void);
#else
static inline int sys_short_send_means_full(void)
{
    return 1;
}
static inline int sys_short_recv_means_empty(void)
{
    return 1;
}
#endif

#endif /* SYS_H */
