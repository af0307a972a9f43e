/* Vectored I/O on a socket transport, for async_socket's default transport: several buffers in
 * one syscall. Both behave like sendmsg/recvmsg: a byte count, or -1 with errno set. EINTR is
 * retried inside. */
#ifndef SOCKET_TRANSPORT_INTERNAL_H
#define SOCKET_TRANSPORT_INTERNAL_H

#include <sys/types.h>
#include <sys/uio.h>

#include "c_pal/socket_transport.h"

ssize_t socket_transport__sendv(SOCKET_TRANSPORT_HANDLE socket_transport, const struct iovec* iov, int iov_count);
ssize_t socket_transport__recvv(SOCKET_TRANSPORT_HANDLE socket_transport, struct iovec* iov, int iov_count);

#endif /* SOCKET_TRANSPORT_INTERNAL_H */
