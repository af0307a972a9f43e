/* The calls of the seam (sys.h) that no test fails: straight through to the C library or the
 * kernel. Definitions, not declarations: included once by src/sys_linux.c and once by the tests'
 * tests/common/sys_fault.c, the two implementations of the seam (a program links one of them),
 * so that both pass these calls on the same way. */
#ifndef SYS_PASSTHROUGH_H
#define SYS_PASSTHROUGH_H

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys.h"

int sys_socket(int domain, int type, int protocol) { return socket(domain, type, protocol); }
int sys_connect(int fd, const struct sockaddr* address, socklen_t length) { return connect(fd, address, length); }
int sys_bind(int fd, const struct sockaddr* address, socklen_t length) { return bind(fd, address, length); }
int sys_listen(int fd, int backlog) { return listen(fd, backlog); }
int sys_accept4(int fd, struct sockaddr* address, socklen_t* length, int flags) { return accept4(fd, address, length, flags); }
int sys_setsockopt(int fd, int level, int name, const void* value, socklen_t length) { return setsockopt(fd, level, name, value, length); }
int sys_getsockopt(int fd, int level, int name, void* value, socklen_t* length) { return getsockopt(fd, level, name, value, length); }
int sys_getsockname(int fd, struct sockaddr* address, socklen_t* length) { return getsockname(fd, address, length); }
int sys_poll(struct pollfd* fds, nfds_t count, int timeout) { return poll(fds, count, timeout); }
int sys_fstat(int fd, struct stat* status) { return fstat(fd, status); }
int sys_timerfd_create(int clock, int flags) { return timerfd_create(clock, flags); }
int sys_timerfd_settime(int fd, int flags, const struct itimerspec* value, struct itimerspec* old) { return timerfd_settime(fd, flags, value, old); }
long sys_futex(atomic_uint* word, int op, unsigned value, const struct timespec* timeout)
{
    return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

#endif /* SYS_PASSTHROUGH_H */
