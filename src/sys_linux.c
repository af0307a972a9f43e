/* Production implementation of the system seam: the C library, or the kernel directly for the
 * calls on the per-operation path (see sys_epoll_wait). */
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys.h"

void* sys_malloc(size_t size) { return malloc(size); }
void* sys_calloc(size_t count, size_t size) { return calloc(count, size); }
void sys_free(void* ptr) { free(ptr); }

int sys_epoll_create1(int flags) { return epoll_create1(flags); }
int sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) { return epoll_ctl(epfd, op, fd, event); }
/* The calls on the per-operation path go straight to the kernel: the C library's wrappers make
 * them thread-cancellation points, which costs a pair of calls around every syscall, and the
 * library never uses thread cancellation. */
int sys_epoll_wait(int epfd, struct epoll_event* events, int maxevents, int timeout)
{
#ifdef SYS_epoll_pwait
    return (int)syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, NULL, 8);
#else
    return epoll_wait(epfd, events, maxevents, timeout);
#endif
}
int sys_eventfd(unsigned int initval, int flags) { return eventfd(initval, flags); }
int sys_pthread_create(pthread_t* thread, void* (*start_routine)(void*), void* arg) { return pthread_create(thread, NULL, start_routine, arg); }

int sys_fcntl(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
/* One buffer, no address, no control data: the sendto/recvfrom forms do the same work without the
 * kernel copying a msghdr and an iovec array in from user space (a ping-pong round trip makes
 * two of each call). Callers never read msg_flags. */
static bool single_plain_buffer(const struct msghdr* msg)
{
    return msg->msg_iovlen == 1 && msg->msg_name == NULL && msg->msg_controllen == 0;
}

ssize_t sys_sendmsg(int fd, const struct msghdr* msg, int flags)
{
#if defined(SYS_sendto) && defined(SYS_sendmsg)
    if (single_plain_buffer(msg))
    {
        return syscall(SYS_sendto, fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, flags, NULL, 0);
    }
    return syscall(SYS_sendmsg, fd, msg, flags);
#else
    return sendmsg(fd, msg, flags);
#endif
}

ssize_t sys_recvmsg(int fd, struct msghdr* msg, int flags)
{
#if defined(SYS_recvfrom) && defined(SYS_recvmsg)
    if (single_plain_buffer(msg))
    {
        return syscall(SYS_recvfrom, fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, flags, NULL, NULL);
    }
    return syscall(SYS_recvmsg, fd, msg, flags);
#else
    return recvmsg(fd, msg, flags);
#endif
}
ssize_t sys_read(int fd, void* buf, size_t count) { return read(fd, buf, count); }
ssize_t sys_write(int fd, const void* buf, size_t count) { return write(fd, buf, count); }
int sys_shutdown(int fd, int how) { return shutdown(fd, how); }
int sys_close(int fd) { return close(fd); }

#include "sys_passthrough.h"

#ifdef ASYNC_SOCKET_TEST_HOOKS
/* a tree with the test seam: the shared library built beside the tests answers as the kernel */
int sys_short_send_means_full(void) { return 1; }
int sys_short_recv_means_empty(void) { return 1; }
#endif
