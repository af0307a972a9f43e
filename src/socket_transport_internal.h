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

/* Room for a transport kept inside another object (an async socket keeps its default transport
 * in itself: one allocation less per socket). socket_transport_linux.c checks that its transport
 * fits; grow this if it stops fitting. */
typedef struct SOCKET_TRANSPORT__STORAGE_TAG
{
    _Alignas(8) unsigned char bytes[8];
} SOCKET_TRANSPORT__STORAGE;

/* Makes, in `storage`, the transport that socket_transport_create_from_socket would allocate for
 * `socket_handle` (INVALID_SOCKET gives a transport without a socket). It cannot fail. */
SOCKET_TRANSPORT_HANDLE socket_transport__init_from_socket(SOCKET_TRANSPORT__STORAGE* storage, SOCKET_HANDLE socket_handle);
/* Ends a transport made by socket_transport__init_from_socket: disconnects it; frees nothing. */
void socket_transport__deinit(SOCKET_TRANSPORT_HANDLE socket_transport);

#endif /* SOCKET_TRANSPORT_INTERNAL_H */
