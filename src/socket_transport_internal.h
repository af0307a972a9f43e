/* Vectored I/O on a socket transport, for async_socket's default transport: several buffers in
 * one syscall. Both behave like sendmsg/recvmsg: a byte count, or -1 with errno set. EINTR is
 * retried inside. */
#ifndef SOCKET_TRANSPORT_INTERNAL_H
#define SOCKET_TRANSPORT_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "c_pal/socket_transport.h"

ssize_t socket_transport__sendv(SOCKET_TRANSPORT_HANDLE socket_transport, const struct iovec* iov, int iov_count);
ssize_t socket_transport__recvv(SOCKET_TRANSPORT_HANDLE socket_transport, struct iovec* iov, int iov_count);
/* Like socket_transport__recvv; *queued gets the bytes still queued in the kernel after the read,
 * or -1 when the kernel did not say (no TCP_INQ on the fd, or the call failed). */
ssize_t socket_transport__recvv_inq(SOCKET_TRANSPORT_HANDLE socket_transport, struct iovec* iov, int iov_count, int* queued);
/* Asks the kernel to report the bytes left queued with every read (TCP_INQ) and to keep TCP
 * urgent data in the stream (SO_OOBINLINE). False when the fd is not a TCP socket. */
bool socket_transport__enable_queued_count(SOCKET_TRANSPORT_HANDLE socket_transport);

/* The transport itself, defined here so that another object can keep one inside itself (an async
 * socket keeps its default transport in place: one allocation less per socket) with its real type,
 * rather than in a byte array reached through a cast. */
typedef enum SOCKET_TRANSPORT_TYPE_TAG
{
    SOCKET_TRANSPORT_CLIENT, /* connects, or wraps a connected fd */
    SOCKET_TRANSPORT_SERVER  /* listens and accepts */
} SOCKET_TRANSPORT_TYPE;

struct SOCKET_TRANSPORT_TAG
{
    SOCKET_HANDLE fd;
    SOCKET_TRANSPORT_TYPE type;
};

/* Makes, in `storage`, the transport that socket_transport_create_from_socket would allocate for
 * `socket_handle` (INVALID_SOCKET gives a transport without a socket). It cannot fail. */
SOCKET_TRANSPORT_HANDLE socket_transport__init_from_socket(struct SOCKET_TRANSPORT_TAG* storage, SOCKET_HANDLE socket_handle);
/* Ends a transport made by socket_transport__init_from_socket: disconnects it; frees nothing. */
void socket_transport__deinit(SOCKET_TRANSPORT_HANDLE socket_transport);

/* 0 when the transport's fd is a stream socket (connected or listening, any family); otherwise -1
 * with one ERROR line naming what the fd is (a pipe, an eventfd, a datagram socket, a closed fd,
 * ...) and errno set (ENOTSOCK, EBADF, EPROTOTYPE). */
int socket_transport__check_stream_socket(SOCKET_TRANSPORT_HANDLE socket_transport);

#endif /* SOCKET_TRANSPORT_INTERNAL_H */
