/* Socket addresses as text. IPv6 addresses are bracketed so that the port after the last colon
 * is never mistaken for part of the address. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log_internal.h"
#include "address_text.h"

int address_text__format(const struct sockaddr* address, socklen_t length, char* buffer, size_t buffer_size)
{
    char host[INET6_ADDRSTRLEN];
    unsigned port;
    const char* format;
    if (address->sa_family == AF_INET && length >= (socklen_t)sizeof(struct sockaddr_in))
    {
        const struct sockaddr_in* in4 = (const struct sockaddr_in*)(const void*)address;
        (void)inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        port = ntohs(in4->sin_port);
        format = "%s:%u";
    }
    else if (address->sa_family == AF_INET6 && length >= (socklen_t)sizeof(struct sockaddr_in6))
    {
        const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)(const void*)address;
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        format = "[%s]:%u";
    }
    else
    {
        LogError("address family %d is neither IPv4 nor IPv6", (int)address->sa_family);
        return -1;
    }
    int written = snprintf(buffer, buffer_size, format, host, port);
    if (written < 0 || (size_t)written >= buffer_size)
    {
        LogError("a buffer of %zu bytes is too small for the address %s (port %u)", buffer_size, host, port);
        return -1;
    }
    return 0;
}

static int of_fd(int fd, char* buffer, size_t buffer_size, int (*get)(int, struct sockaddr*, socklen_t*), const char* what)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof(address);
    if (get(fd, (struct sockaddr*)&address, &length) != 0)
    {
        LogError("%s failed for fd=%d, errno=%d (%s)", what, fd, errno, strerror(errno));
        return -1;
    }
    return address_text__format((struct sockaddr*)&address, length, buffer, buffer_size);
}

int address_text__of_peer(int fd, char* buffer, size_t buffer_size)
{
    return of_fd(fd, buffer, buffer_size, getpeername, "getpeername");
}

int address_text__of_local(int fd, char* buffer, size_t buffer_size)
{
    return of_fd(fd, buffer, buffer_size, getsockname, "getsockname");
}
