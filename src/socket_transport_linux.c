/* socket_transport for Linux: owns one TCP fd and does non-blocking vectored I/O on it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log_internal.h"
#include "c_pal/socket_transport.h"
#include "socket_transport_internal.h"
#include "sys.h"

/* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_054 (the values are in the header, in c-pal's order) */
MU_DEFINE_ENUM_STRINGS(SOCKET_SEND_RESULT, SOCKET_SEND_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(SOCKET_RECEIVE_RESULT, SOCKET_RECEIVE_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(SOCKET_ACCEPT_RESULT, SOCKET_ACCEPT_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(SOCKET_TYPE, SOCKET_TYPE_VALUES)
MU_DEFINE_ENUM_STRINGS(ADDRESS_TYPE, ADDRESS_TYPE_VALUES)

/* more buffers than this in one call are sent or received over several syscalls */
#define MAX_IOV 64

/* the struct is in socket_transport_internal.h, so an async socket can keep one in place */
typedef struct SOCKET_TRANSPORT_TAG SOCKET_TRANSPORT;

static SOCKET_TRANSPORT* transport_new(SOCKET_TRANSPORT_TYPE type, SOCKET_HANDLE fd)
{
    SOCKET_TRANSPORT* transport = sys_malloc(sizeof(SOCKET_TRANSPORT));
    if (transport != NULL)
    {
        transport->fd = fd;
        transport->type = type;
    }
    return transport;
}

SOCKET_TRANSPORT_HANDLE socket_transport_create_from_socket(SOCKET_HANDLE socket_handle)
{
    if (socket_handle == INVALID_SOCKET)
    {
        LogError("socket_handle is INVALID_SOCKET");
        return NULL;
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_002 */
    SOCKET_TRANSPORT* transport = transport_new(SOCKET_TRANSPORT_CLIENT, socket_handle);
    if (transport == NULL)
    {
        LogError("cannot allocate a socket transport for fd=%d", socket_handle);
        return NULL;
    }
    return transport;
}

SOCKET_TRANSPORT_HANDLE socket_transport__init_from_socket(SOCKET_TRANSPORT* transport, SOCKET_HANDLE socket_handle)
{
    transport->fd = socket_handle;
    transport->type = SOCKET_TRANSPORT_CLIENT;
    return transport;
}

void socket_transport__deinit(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    socket_transport_disconnect(socket_transport);
}

SOCKET_TRANSPORT_HANDLE socket_transport_create_client(void)
{
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_001 */
    SOCKET_TRANSPORT* transport = transport_new(SOCKET_TRANSPORT_CLIENT, INVALID_SOCKET);
    if (transport == NULL)
    {
        LogError("cannot allocate a client socket transport");
    }
    return transport;
}

SOCKET_TRANSPORT_HANDLE socket_transport_create_server(void)
{
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_001 */
    SOCKET_TRANSPORT* transport = transport_new(SOCKET_TRANSPORT_SERVER, INVALID_SOCKET);
    if (transport == NULL)
    {
        LogError("cannot allocate a server socket transport");
    }
    return transport;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline, for poll (never negative, capped at INT_MAX). */
static int ms_left(uint64_t deadline)
{
    uint64_t now = now_ms();
    if (now >= deadline)
    {
        return 0;
    }
    uint64_t left = deadline - now;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* Polls fd for events until deadline, retrying EINTR. >0 ready (revents in *revents), 0 timed
 * out, <0 error (errno set). */
static int poll_until(int fd, short events, uint64_t deadline, short* revents)
{
    for (;;)
    {
        struct pollfd p = {.fd = fd, .events = events};
        int result = sys_poll(&p, 1, ms_left(deadline));
        if (result < 0 && errno == EINTR)
        {
            continue;
        }
        *revents = p.revents;
        return result;
    }
}

static int set_nodelay(int fd)
{
    int one = 1;
    return sys_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* One connect attempt to one address. Returns the connected fd, or -1 with errno set (ETIMEDOUT
 * when the deadline passed). */
static int connect_one(const struct addrinfo* address, uint64_t deadline)
{
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_011 */
    int fd = sys_socket(address->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
    {
        return -1;
    }
    int error = 0;
    if (set_nodelay(fd) != 0)
    {
        error = errno;
    }
    else if (sys_connect(fd, address->ai_addr, address->ai_addrlen) != 0)
    {
        if (errno != EINPROGRESS && errno != EINTR)
        {
            error = errno;
        }
        else
        {
            short revents = 0;
            int ready = poll_until(fd, POLLOUT, deadline, &revents);
            if (ready < 0)
            {
                error = errno;
            }
            else if (ready == 0)
            {
                /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_012 */
                error = ETIMEDOUT;
            }
            else
            {
                socklen_t length = sizeof(error);
                /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_013 */
                if (sys_getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0)
                {
                    error = errno;
                }
            }
        }
    }
    if (error != 0)
    {
        (void)sys_close(fd);
        errno = error;
        return -1;
    }
    return fd;
}

int socket_transport_connect(SOCKET_TRANSPORT_HANDLE socket_transport, const char* hostname, uint16_t port, uint32_t connection_timeout_ms)
{
    if (socket_transport == NULL || hostname == NULL || port == 0 ||
        socket_transport->type != SOCKET_TRANSPORT_CLIENT || socket_transport->fd != INVALID_SOCKET)
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_015 */
        LogError("invalid arguments: socket_transport=%p (must be an unconnected client), hostname=%s, port=%u (must not be 0)",
            (void*)socket_transport, hostname == NULL ? "NULL" : hostname, (unsigned)port);
        errno = EINVAL;
        return -1;
    }
    const uint64_t deadline = now_ms() + connection_timeout_ms;
    char service[8];
    (void)snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints;
    (void)memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo* addresses = NULL;
    int gai_result = getaddrinfo(hostname, service, &hints, &addresses);
    if (gai_result != 0)
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_014 */
        LogError("cannot resolve %s:%u: %s", hostname, (unsigned)port, gai_strerror(gai_result));
        errno = (gai_result == EAI_SYSTEM && errno != 0) ? errno : EHOSTUNREACH;
        return -1;
    }
    int error = EHOSTUNREACH;
    int fd = -1;
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_010 */
    for (const struct addrinfo* address = addresses; address != NULL; address = address->ai_next)
    {
        if (address->ai_family != AF_INET && address->ai_family != AF_INET6)
        {
            continue;
        }
        fd = connect_one(address, deadline);
        if (fd >= 0)
        {
            break;
        }
        error = errno;
        LogInfo("connect to %s:%u (family %d) failed, errno=%d", hostname, (unsigned)port, address->ai_family, error);
        if (error == ETIMEDOUT)
        {
            break; /* the time is used up */
        }
    }
    freeaddrinfo(addresses);
    if (fd < 0)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_178: only a timeout is about the time allowed; a
         * refusal comes at once and says so */
        if (error == ETIMEDOUT)
        {
            LogError("cannot connect to %s:%u: no answer within %u ms", hostname, (unsigned)port, connection_timeout_ms);
        }
        else
        {
            LogError("cannot connect to %s:%u: %s (errno=%d)", hostname, (unsigned)port, strerror(error), error);
        }
        errno = error;
        return -1;
    }
    socket_transport->fd = fd;
    return 0;
}

/* Binds the sockaddr and listens; returns 0, or -1 with errno set and an ERROR line. */
static int listen_on_sockaddr(SOCKET_TRANSPORT_HANDLE socket_transport, const struct sockaddr* address, socklen_t address_length, const char* address_text, uint16_t port)
{
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_011 */
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_020 */
    int fd = sys_socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
    {
        LogError("cannot create a socket to listen on %s:%u, errno=%d", address_text, (unsigned)port, errno);
        return -1;
    }
    int one = 1;
    const char* step = NULL;
    if (sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    {
        step = "setsockopt(SO_REUSEADDR)";
    }
    else if (address->sa_family == AF_INET6 && sys_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
    {
        step = "setsockopt(IPV6_V6ONLY)";
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_021 */
    else if (sys_bind(fd, address, address_length) != 0)
    {
        step = "bind";
    }
    else if (sys_listen(fd, SOMAXCONN) != 0)
    {
        step = "listen";
    }
    if (step != NULL)
    {
        int error = errno;
        LogError("cannot listen on %s:%u: %s failed, errno=%d (%s)", address_text, (unsigned)port, step, error, strerror(error));
        (void)sys_close(fd);
        errno = error;
        return -1;
    }
    socket_transport->fd = fd;
    return 0;
}

static bool check_listen_args(SOCKET_TRANSPORT_HANDLE socket_transport, const char* address, bool address_required, uint16_t port)
{
    if (socket_transport == NULL || (address_required && address == NULL) ||
        socket_transport->type != SOCKET_TRANSPORT_SERVER || socket_transport->fd != INVALID_SOCKET)
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_022 */
        LogError("invalid arguments: socket_transport=%p (must be a server not listening yet), address=%s, port=%u",
            (void*)socket_transport, address == NULL ? "NULL" : address, (unsigned)port);
        errno = EINVAL;
        return false;
    }
    return true;
}

int socket_transport_listen(SOCKET_TRANSPORT_HANDLE socket_transport, uint16_t port)
{
    if (!check_listen_args(socket_transport, NULL, false, port))
    {
        return -1;
    }
    struct sockaddr_in any;
    (void)memset(&any, 0, sizeof(any));
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    any.sin_port = htons(port);
    return listen_on_sockaddr(socket_transport, (const struct sockaddr*)&any, sizeof(any), "0.0.0.0", port);
}

int socket_transport_listen_on(SOCKET_TRANSPORT_HANDLE socket_transport, const char* address, uint16_t port)
{
    if (!check_listen_args(socket_transport, address, true, port))
    {
        return -1;
    }
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    (void)memset(&v4, 0, sizeof(v4));
    (void)memset(&v6, 0, sizeof(v6));
    if (inet_pton(AF_INET, address, &v4.sin_addr) == 1)
    {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        return listen_on_sockaddr(socket_transport, (const struct sockaddr*)&v4, sizeof(v4), address, port);
    }
    if (inet_pton(AF_INET6, address, &v6.sin6_addr) == 1)
    {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        return listen_on_sockaddr(socket_transport, (const struct sockaddr*)&v6, sizeof(v6), address, port);
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_022 */
    LogError("invalid arguments: address \"%s\" is not a numeric IPv4 or IPv6 address", address);
    errno = EINVAL;
    return -1;
}

/* An accept4 error that means "out of descriptors or memory": c-pal's PORT_EXHAUSTION, which a
 * server may ride out by closing connections, unlike an error of the listening socket itself. */
static bool is_exhaustion(int error)
{
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

/* Wraps an accepted fd in a transport: SOCKET_ACCEPT_OK, or closes it (one ERROR line). */
static SOCKET_ACCEPT_RESULT adopt_accepted(int fd, SOCKET_TRANSPORT_HANDLE* accepted_socket)
{
    if (set_nodelay(fd) != 0)
    {
        int error = errno;
        LogError("cannot set TCP_NODELAY on accepted fd=%d, errno=%d", fd, error);
        (void)sys_close(fd);
        errno = error;
        return SOCKET_ACCEPT_ERROR;
    }
    SOCKET_TRANSPORT* transport = transport_new(SOCKET_TRANSPORT_CLIENT, fd);
    if (transport == NULL)
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_025 */
        LogError("cannot allocate a socket transport for accepted fd=%d", fd);
        (void)sys_close(fd);
        errno = ENOMEM;
        return SOCKET_ACCEPT_ERROR;
    }
    *accepted_socket = transport;
    return SOCKET_ACCEPT_OK;
}

SOCKET_ACCEPT_RESULT socket_transport_accept(SOCKET_TRANSPORT_HANDLE socket_transport, SOCKET_TRANSPORT_HANDLE* accepted_socket, uint32_t connection_timeout_ms)
{
    if (socket_transport == NULL || accepted_socket == NULL ||
        socket_transport->type != SOCKET_TRANSPORT_SERVER || socket_transport->fd == INVALID_SOCKET)
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_026 */
        LogError("invalid arguments: socket_transport=%p (must be a listening server), accepted_socket=%p",
            (void*)socket_transport, (void*)accepted_socket);
        errno = EINVAL;
        return SOCKET_ACCEPT_ERROR;
    }
    const uint64_t deadline = now_ms() + connection_timeout_ms;
    for (;;)
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_011 */
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_023 */
        int fd = sys_accept4(socket_transport->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
        {
            return adopt_accepted(fd, accepted_socket);
        }
        /* a connection that went away before accept (ECONNABORTED and the like) is skipped */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED && errno != EPROTO)
        {
            int error = errno;
            LogError("accept on fd=%d failed, errno=%d (%s)", socket_transport->fd, error, strerror(error));
            errno = error;
            /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_050 */
            return is_exhaustion(error) ? SOCKET_ACCEPT_PORT_EXHAUSTION : SOCKET_ACCEPT_ERROR;
        }
        short revents = 0;
        int ready = poll_until(socket_transport->fd, POLLIN, deadline, &revents);
        if (ready < 0)
        {
            int error = errno;
            LogError("poll on listening fd=%d failed, errno=%d", socket_transport->fd, error);
            errno = error;
            return SOCKET_ACCEPT_ERROR;
        }
        if (ready == 0)
        {
            /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_024 */
            errno = ETIMEDOUT;
            return SOCKET_ACCEPT_NO_CONNECTION;
        }
    }
}

/* Whether an interface counts for c-pal's address list: IPv4, up, running, not loopback. */
static bool is_listed_interface(const struct ifaddrs* ifa)
{
    return ifa->ifa_addr != NULL && ifa->ifa_addr->sa_family == AF_INET &&
        (ifa->ifa_flags & IFF_UP) != 0 && (ifa->ifa_flags & IFF_RUNNING) != 0 && (ifa->ifa_flags & IFF_LOOPBACK) == 0;
}

/* The array of socket_transport_get_local_address: one entry per listed interface, at least one
 * element allocated so that a count of 0 still gives a pointer that free() takes. */
static int list_interface_addresses(LOCAL_ADDRESS** local_address_list, uint32_t* address_count)
{
    struct ifaddrs* interfaces = NULL;
    if (getifaddrs(&interfaces) != 0)
    {
        LogError("getifaddrs failed, errno=%d (%s)", errno, strerror(errno));
        return -1;
    }
    uint32_t count = 0;
    for (const struct ifaddrs* ifa = interfaces; ifa != NULL; ifa = ifa->ifa_next)
    {
        count += is_listed_interface(ifa) ? 1u : 0u;
    }
    LOCAL_ADDRESS* list = sys_calloc(count == 0 ? 1u : count, sizeof(LOCAL_ADDRESS));
    if (list == NULL)
    {
        LogError("cannot allocate the list of %u local addresses", count);
        freeifaddrs(interfaces);
        return -1;
    }
    uint32_t index = 0;
    for (const struct ifaddrs* ifa = interfaces; ifa != NULL && index < count; ifa = ifa->ifa_next)
    {
        if (is_listed_interface(ifa) &&
            inet_ntop(AF_INET, &((const struct sockaddr_in*)(const void*)ifa->ifa_addr)->sin_addr, list[index].address, sizeof(list[index].address)) != NULL)
        {
            list[index].address_type = ADDRESS_INET;
            index++;
        }
    }
    freeifaddrs(interfaces);
    *local_address_list = list;
    *address_count = index;
    return 0;
}

int socket_transport_get_local_address(SOCKET_TRANSPORT_HANDLE socket_transport, char hostname[MAX_GET_HOST_NAME_LEN], LOCAL_ADDRESS** local_address_list, uint32_t* address_count)
{
    if (socket_transport == NULL || hostname == NULL || (local_address_list != NULL && address_count == NULL))
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_052 */
        LogError("invalid arguments: socket_transport=%p, hostname=%p, local_address_list=%p, address_count=%p (needed with a list)",
            (void*)socket_transport, (void*)hostname, (void*)local_address_list, (void*)address_count);
        errno = EINVAL;
        return -1;
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_051 */
    if (gethostname(hostname, MAX_GET_HOST_NAME_LEN) != 0)
    {
        LogError("gethostname failed, errno=%d (%s)", errno, strerror(errno));
        return -1;
    }
    /* gethostname does not terminate a name that it truncates */
    hostname[MAX_GET_HOST_NAME_LEN - 1] = '\0';
    return (local_address_list == NULL) ? 0 : list_interface_addresses(local_address_list, address_count);
}

int socket_transport_get_local_endpoint(SOCKET_TRANSPORT_HANDLE socket_transport, char* host, size_t host_size, uint16_t* port)
{
    if (socket_transport == NULL || host == NULL || host_size == 0 || port == NULL || socket_transport->fd == INVALID_SOCKET)
    {
        LogError("invalid arguments: socket_transport=%p (must hold a socket), host=%p, host_size=%zu, port=%p",
            (void*)socket_transport, (void*)host, host_size, (void*)port);
        errno = EINVAL;
        return -1;
    }
    struct sockaddr_storage address;
    socklen_t length = sizeof(address);
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_027 */
    if (sys_getsockname(socket_transport->fd, (struct sockaddr*)&address, &length) != 0)
    {
        int error = errno;
        LogError("getsockname on fd=%d failed, errno=%d", socket_transport->fd, error);
        errno = error;
        return -1;
    }
    const void* raw;
    uint16_t network_port;
    if (address.ss_family == AF_INET)
    {
        raw = &((const struct sockaddr_in*)&address)->sin_addr;
        network_port = ((const struct sockaddr_in*)&address)->sin_port;
    }
    else if (address.ss_family == AF_INET6)
    {
        raw = &((const struct sockaddr_in6*)&address)->sin6_addr;
        network_port = ((const struct sockaddr_in6*)&address)->sin6_port;
    }
    else
    {
        LogError("fd=%d is not an IPv4 or IPv6 socket (family %d)", socket_transport->fd, (int)address.ss_family);
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (inet_ntop(address.ss_family, raw, host, (socklen_t)(host_size > INT_MAX ? INT_MAX : host_size)) == NULL)
    {
        int error = errno;
        LogError("the address of fd=%d does not fit in %zu bytes, errno=%d", socket_transport->fd, host_size, error);
        errno = error;
        return -1;
    }
    *port = ntohs(network_port);
    return 0;
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
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_003 */
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
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_003 */
    socket_transport_disconnect(socket_transport);
    sys_free(socket_transport);
}

SOCKET_HANDLE socket_transport_release_socket(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    if (socket_transport == NULL)
    {
        LogError("socket_transport is NULL");
        return INVALID_SOCKET;
    }
    /* The fd changes owner here, so it is neither shut down nor closed: the new owner (typically
     * an async socket) is the one that ends the connection. */
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_030 */
    SOCKET_HANDLE fd = socket_transport->fd;
    socket_transport->fd = INVALID_SOCKET;
    sys_free(socket_transport);
    return fd;
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
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_044 */
    if (fd_flags < 0 || sys_fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) < 0)
    {
        LogError("cannot make fd=%d close-on-exec, errno=%d", fd, errno);
        return -1;
    }
    return 0;
}

/* What a non-socket fd is, for the line that refuses it: the file type, or for an anonymous
 * inode (eventfd, timerfd, epoll, signalfd) the kernel's name of it from /proc. */
static void describe_non_socket(int fd, char* what, size_t size)
{
    struct stat status;
    if (sys_fstat(fd, &status) != 0)
    {
        (void)snprintf(what, size, "not an open file descriptor");
        return;
    }
    const char* type = S_ISFIFO(status.st_mode) ? "a pipe or FIFO" : S_ISREG(status.st_mode) ? "a regular file" :
        S_ISDIR(status.st_mode) ? "a directory" : S_ISCHR(status.st_mode) ? "a character device" :
        S_ISBLK(status.st_mode) ? "a block device" : NULL;
    if (type != NULL)
    {
        (void)snprintf(what, size, "%s, not a socket", type);
        return;
    }
    char path[64];
    char target[64];
    (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t length = readlink(path, target, sizeof(target) - 1);
    target[(length > 0) ? length : 0] = '\0';
    /* an eventfd reads "anon_inode:[eventfd]" */
    (void)snprintf(what, size, "%s, not a socket", (length > 0) ? target : "an unknown kind of file");
}

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_131 */
int socket_transport__check_stream_socket(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    int fd = socket_transport->fd;
    int type = 0;
    socklen_t length = sizeof(type);
    /* getsockopt rather than the sys seam: it only asks, and fails only for an fd that is not a
     * socket, which is what is being found out */
    if (sys_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0)
    {
        int error = (errno == ENOTSOCK) ? ENOTSOCK : EBADF;
        char what[128];
        describe_non_socket(fd, what, sizeof(what));
        LogError("fd=%d cannot be an async socket: it is %s", fd, what);
        errno = error;
        return -1;
    }
    if (type != SOCK_STREAM)
    {
        LogError("fd=%d cannot be an async socket: it is a %s socket, not a stream (TCP) socket", fd,
            (type == SOCK_DGRAM) ? "datagram" : (type == SOCK_SEQPACKET) ? "seqpacket" : (type == SOCK_RAW) ? "raw" : "non-stream");
        errno = EPROTOTYPE;
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

ssize_t socket_transport__recvv_inq(SOCKET_TRANSPORT_HANDLE socket_transport, struct iovec* iov, int iov_count, int* queued)
{
    /* room for the one int that TCP_CM_INQ carries */
    union
    {
        struct cmsghdr header;
        char room[CMSG_SPACE(sizeof(int))];
    } control = {.room = {0}}; /* a seam that returns data without control data leaves no stale header */
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iov_count, .msg_control = &control, .msg_controllen = sizeof(control)};
    ssize_t result;
    do
    {
        result = sys_recvmsg(socket_transport->fd, &msg, 0);
    } while (result < 0 && errno == EINTR);
    *queued = -1;
    if (result < 0)
    {
        return result;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_150: the kernel's count of the bytes still queued after
     * this read, taken after the read (a short read at TCP's urgent mark leaves bytes queued) */
    for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg))
    {
        if (cmsg->cmsg_level == SOL_TCP && cmsg->cmsg_type == TCP_CM_INQ && cmsg->cmsg_len >= CMSG_LEN(sizeof(int)))
        {
            (void)memcpy(queued, CMSG_DATA(cmsg), sizeof(int));
        }
    }
    return result;
}

bool socket_transport__enable_queued_count(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    int one = 1;
    int fd = socket_transport->fd;
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_151: urgent data stays in the stream, in its place; the
     * library has no out-of-band API, and outside the stream the byte would be lost */
    if (sys_setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)) != 0)
    {
        return false; /* not a socket */
    }
    /* TCP_INQ: every recvmsg that is given room for control data reports the bytes left queued */
    return sys_setsockopt(fd, SOL_TCP, TCP_INQ, &one, sizeof(one)) == 0;
}

static int to_iovec(const SOCKET_BUFFER* payload, uint32_t buffer_count, struct iovec* iov)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < buffer_count; i++)
    {
        if (payload[i].buffer == NULL || payload[i].length == 0)
        {
            LogError("buffer %u of %u is empty (buffer=%p, length=%u)", i, buffer_count, (void*)payload[i].buffer, payload[i].length);
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
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_043 */
    if (socket_transport == NULL || payload == NULL || buffer_count == 0 || buffer_count > MAX_IOV || bytes == NULL)
    {
        LogError("invalid arguments: socket_transport=%p, payload=%p, buffer_count=%u (1..%d), bytes=%p",
            (void*)socket_transport, (const void*)payload, buffer_count, MAX_IOV, (const void*)bytes);
        return false;
    }
    return true;
}

/* send and receive on a transport without a socket (never connected, or disconnected) are c-pal's
 * ERROR results rather than a system call on fd -1. */
static bool check_has_socket(SOCKET_TRANSPORT_HANDLE socket_transport, const char* function)
{
    if (socket_transport->fd == INVALID_SOCKET)
    {
        /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_053 */
        LogError("%s: socket_transport=%p holds no socket (not connected, or disconnected)", function, (void*)socket_transport);
        errno = ENOTCONN;
        return false;
    }
    return true;
}

SOCKET_SEND_RESULT socket_transport_send(SOCKET_TRANSPORT_HANDLE socket_transport, const SOCKET_BUFFER* payload, uint32_t buffer_count, uint32_t* bytes_sent, uint32_t flags, void* data)
{
    (void)flags;
    (void)data;
    struct iovec iov[MAX_IOV];
    if (!check_io_args(socket_transport, payload, buffer_count, bytes_sent) || to_iovec(payload, buffer_count, iov) != 0)
    {
        return SOCKET_SEND_INVALID_ARG;
    }
    if (!check_has_socket(socket_transport, __func__))
    {
        return SOCKET_SEND_ERROR;
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_040 */
    ssize_t sent = socket_transport__sendv(socket_transport, iov, (int)buffer_count);
    if (sent >= 0)
    {
        *bytes_sent = (uint32_t)sent;
        return SOCKET_SEND_OK;
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_041 */
    if (errno == EAGAIN || errno == EWOULDBLOCK)
    {
        *bytes_sent = 0;
        return SOCKET_SEND_WOULD_BLOCK;
    }
    if (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN)
    {
        return SOCKET_SEND_SHUTDOWN;
    }
    int error = errno;
    LogError("sendmsg on fd=%d failed, errno=%d (%s)", socket_transport->fd, error, strerror(error));
    errno = error;
    return SOCKET_SEND_FAILED;
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
    if (!check_has_socket(socket_transport, __func__))
    {
        return SOCKET_RECEIVE_ERROR;
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_042 */
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
    if (errno == ECONNRESET)
    {
        return SOCKET_RECEIVE_SHUTDOWN;
    }
    int error = errno;
    LogError("recvmsg on fd=%d failed, errno=%d (%s)", socket_transport->fd, error, strerror(error));
    errno = error;
    return SOCKET_RECEIVE_ERROR;
}

SOCKET_HANDLE socket_transport_get_underlying_socket(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    if (socket_transport == NULL)
    {
        LogError("socket_transport is NULL");
        return INVALID_SOCKET;
    }
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_004 */
    return socket_transport->fd;
}

bool socket_transport_is_valid_socket(SOCKET_TRANSPORT_HANDLE socket_transport)
{
    /* Codes_SRS_SOCKET_TRANSPORT_LINUX_01_004 */
    return socket_transport != NULL && socket_transport->fd != INVALID_SOCKET;
}
