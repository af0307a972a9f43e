/* socket_transport for Linux: owns one TCP fd and does non-blocking vectored I/O on it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "c_pal/logger.h"
#include "c_pal/socket_transport.h"
#include "socket_transport_internal.h"
#include "sys.h"

MU_DEFINE_ENUM_STRINGS(SOCKET_SEND_RESULT, SOCKET_SEND_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(SOCKET_RECEIVE_RESULT, SOCKET_RECEIVE_RESULT_VALUES)

/* more buffers than this in one call are sent or received over several syscalls */
#define MAX_IOV 64

typedef struct SOCKET_TRANSPORT_TAG
{
    SOCKET_HANDLE fd;
} SOCKET_TRANSPORT;

SOCKET_TRANSPORT_HANDLE socket_transport_create_from_socket(SOCKET_HANDLE socket_handle)
{
    if (socket_handle == INVALID_SOCKET)
    {
        LogError("socket_handle is INVALID_SOCKET");
        return NULL;
    }
    SOCKET_TRANSPORT* transport = sys_malloc(sizeof(SOCKET_TRANSPORT));
    if (transport == NULL)
    {
        LogError("cannot allocate a socket transport for fd=%d", socket_handle);
        return NULL;
    }
    transport->fd = socket_handle;
    return transport;
}

void socket_transport_disconnect(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    if (socket_transport == NULL)
    {
        LogError("socket_transport is NULL");
        return;
    }
    if (socket_transport->fd == INVALID_SOCKET)
    {
        return;
    }
    /* shutdown first so the peer sees the end of the stream even if the fd was duplicated */
    (void)sys_shutdown(socket_transport->fd, SHUT_RDWR);
    (void)sys_close(socket_transport->fd);
    socket_transport->fd = INVALID_SOCKET;
}

void socket_transport_destroy(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    if (socket_transport == NULL)
    {
        LogError("socket_transport is NULL");
        return;
    }
    socket_transport_disconnect(socket_transport);
    sys_free(socket_transport);
}

int socket_transport_set_nonblocking(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    if (socket_transport == NULL || socket_transport->fd == INVALID_SOCKET)
    {
        LogError("socket_transport=%p has no open socket", (void*)socket_transport);
        return -1;
    }
    int fd = socket_transport->fd;
    int flags = sys_fcntl(fd, F_GETFL, 0);
    if (flags < 0 || sys_fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    {
        LogError("cannot make fd=%d non-blocking, errno=%d", fd, errno);
        return -1;
    }
    int fd_flags = sys_fcntl(fd, F_GETFD, 0);
    if (fd_flags < 0 || sys_fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) < 0)
    {
        LogError("cannot make fd=%d close-on-exec, errno=%d", fd, errno);
        return -1;
    }
    return 0;
}

ssize_t socket_transport__sendv(SOCKET_TRANSPORT_HANDLE socket_transport, const struct iovec* iov, int iov_count)
{
    struct msghdr msg = {.msg_iov = (struct iovec*)iov, .msg_iovlen = (size_t)iov_count};
    ssize_t result;
    do
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_052 */
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_012 */
        result = sys_sendmsg(socket_transport->fd, &msg, MSG_NOSIGNAL);
    } while (result < 0 && errno == EINTR);
    return result;
}

ssize_t socket_transport__recvv(SOCKET_TRANSPORT_HANDLE socket_transport, struct iovec* iov, int iov_count)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iov_count};
    ssize_t result;
    do
    {
        result = sys_recvmsg(socket_transport->fd, &msg, 0);
    } while (result < 0 && errno == EINTR);
    return result;
}

static int to_iovec(const SOCKET_BUFFER* payload, uint32_t buffer_count, struct iovec* iov)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < buffer_count; i++)
    {
        if (payload[i].buffer == NULL || payload[i].length == 0)
        {
            LogError("buffer %u of %u is empty (buffer=%p, length=%u)", i, buffer_count, payload[i].buffer, payload[i].length);
            return -1;
        }
        total += payload[i].length;
        iov[i].iov_base = payload[i].buffer;
        iov[i].iov_len = payload[i].length;
    }
    if (total > UINT32_MAX)
    {
        LogError("the buffers add up to %llu bytes, more than UINT32_MAX", (unsigned long long)total);
        return -1;
    }
    return 0;
}

static bool check_io_args(SOCKET_TRANSPORT_HANDLE socket_transport, const SOCKET_BUFFER* payload, uint32_t buffer_count, const uint32_t* bytes)
{
    if (socket_transport == NULL || payload == NULL || buffer_count == 0 || buffer_count > MAX_IOV || bytes == NULL)
    {
        LogError("invalid arguments: socket_transport=%p, payload=%p, buffer_count=%u (1..%d), bytes=%p",
            (void*)socket_transport, (const void*)payload, buffer_count, MAX_IOV, (const void*)bytes);
        return false;
    }
    return true;
}

SOCKET_SEND_RESULT socket_transport_send(SOCKET_TRANSPORT_HANDLE socket_transport, const SOCKET_BUFFER* payload, uint32_t buffer_count, uint32_t* bytes_written, uint32_t flags, void* data)
{
    (void)flags;
    (void)data;
    struct iovec iov[MAX_IOV];
    if (!check_io_args(socket_transport, payload, buffer_count, bytes_written) || to_iovec(payload, buffer_count, iov) != 0)
    {
        return SOCKET_SEND_INVALID_ARG;
    }
    ssize_t sent = socket_transport__sendv(socket_transport, iov, (int)buffer_count);
    if (sent >= 0)
    {
        *bytes_written = (uint32_t)sent;
        return SOCKET_SEND_OK;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
    {
        *bytes_written = 0;
        return SOCKET_SEND_WOULD_BLOCK;
    }
    return (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN) ? SOCKET_SEND_SHUTDOWN : SOCKET_SEND_ERROR;
}

SOCKET_RECEIVE_RESULT socket_transport_receive(SOCKET_TRANSPORT_HANDLE socket_transport, SOCKET_BUFFER* payload, uint32_t buffer_count, uint32_t* bytes_recv, uint32_t flags, void* data)
{
    (void)flags;
    (void)data;
    struct iovec iov[MAX_IOV];
    if (!check_io_args(socket_transport, payload, buffer_count, bytes_recv) || to_iovec(payload, buffer_count, iov) != 0)
    {
        return SOCKET_RECEIVE_INVALID_ARG;
    }
    ssize_t received = socket_transport__recvv(socket_transport, iov, (int)buffer_count);
    if (received > 0)
    {
        *bytes_recv = (uint32_t)received;
        return SOCKET_RECEIVE_OK;
    }
    *bytes_recv = 0;
    if (received == 0)
    {
        return SOCKET_RECEIVE_SHUTDOWN;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
    {
        return SOCKET_RECEIVE_WOULD_BLOCK;
    }
    return (errno == ECONNRESET) ? SOCKET_RECEIVE_SHUTDOWN : SOCKET_RECEIVE_ERROR;
}

SOCKET_HANDLE socket_transport_get_underlying_socket(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    if (socket_transport == NULL)
    {
        LogError("socket_transport is NULL");
        return INVALID_SOCKET;
    }
    return socket_transport->fd;
}

bool socket_transport_is_valid_socket(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    return socket_transport != NULL && socket_transport->fd != INVALID_SOCKET;
}
