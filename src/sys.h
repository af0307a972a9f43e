/* The seam between the library and the system: every allocation and every fallible syscall the
 * library makes goes through one of these functions. The library links sys_linux.c, which calls
 * straight through; tests link a replacement that can fail the n-th call (see tests/common). */
#ifndef SYS_H
#define SYS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

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

/* Whether a sendmsg (recvmsg) on a TCP socket that moved fewer bytes than asked means the socket
 * buffer is full (empty) now. The kernel's answer is yes, which saves the syscall that would
 * only say EAGAIN; a test seam that caps the bytes per call says no. */
int sys_short_send_means_full(void);
int sys_short_recv_means_empty(void);
int sys_close(int fd);

#endif /* SYS_H */
