/* Unit tests for the socket_transport connection functions (create_client / create_server,
 * connect, listen_on, accept, get_local_endpoint, get_local_address) over loopback only: 127.0.0.1 and ::1.
 *
 * Every test checks what a user sees: the results, errno where the header promises it, the bytes
 * on the other end (a pattern that depends on the stream offset), the socket flags, the ERROR log
 * lines, and that no allocation or fd is left behind. socket_transport_listen (INADDR_ANY) is only
 * exercised on its argument checks: the tests bind loopback addresses only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/async_socket.h"
#include "c_pal/logger.h"
#include "c_pal/platform.h"
#include "c_pal/socket_transport.h"
#include "log_capture.h"
#include "sys.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"

#define HOST_SIZE 64

/* ---- helpers ---- */

/* A server listening on address port 0; returns it and its port. */
static SOCKET_TRANSPORT_HANDLE start_server(const char* address, uint16_t* port)
{
    SOCKET_TRANSPORT_HANDLE server = socket_transport_create_server();
    assert_non_null(server);
    assert_int_equal(socket_transport_listen_on(server, address, 0), 0);
    char host[HOST_SIZE];
    assert_int_equal(socket_transport_get_local_endpoint(server, host, sizeof(host), port), 0);
    assert_int_not_equal(*port, 0);
    return server;
}

static void assert_socket_flags(SOCKET_TRANSPORT_HANDLE transport)
{
    int fd = socket_transport_get_underlying_socket(transport);
    assert_true(fd >= 0);
    assert_int_not_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    int nodelay = 0;
    socklen_t length = sizeof(nodelay);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &length), 0);
    assert_int_not_equal(nodelay, 0);
}

/* Moves len pattern bytes a -> b and b -> a at the same time through socket_transport_send /
 * receive (non-blocking, poll for readiness), checking every received byte; 5 s at most. */
static void exchange(SOCKET_TRANSPORT_HANDLE a, SOCKET_TRANSPORT_HANDLE b, size_t len)
{
    SOCKET_TRANSPORT_HANDLE ends[2] = {a, b};
    size_t sent[2] = {0, 0};     /* sent by ends[i] */
    size_t received[2] = {0, 0}; /* received by ends[i] */
    uint8_t out[8192];
    uint8_t in[8192];
    uint64_t start = test_now_ms();
    while (sent[0] < len || sent[1] < len || received[0] < len || received[1] < len)
    {
        assert_true(test_now_ms() - start < 5000);
        struct pollfd p[2];
        for (int i = 0; i < 2; i++)
        {
            p[i].fd = socket_transport_get_underlying_socket(ends[i]);
            p[i].events = (short)((sent[i] < len ? POLLOUT : 0) | (received[i] < len ? POLLIN : 0));
            p[i].revents = 0;
        }
        assert_true(poll(p, 2, 100) >= 0);
        for (int i = 0; i < 2; i++)
        {
            if (sent[i] < len)
            {
                size_t chunk = len - sent[i] < sizeof(out) ? len - sent[i] : sizeof(out);
                test_fill_pattern(out, chunk, sent[i]);
                SOCKET_BUFFER buffer = {.length = (uint32_t)chunk, .buffer = out};
                uint32_t written = 0;
                SOCKET_SEND_RESULT result = socket_transport_send(ends[i], &buffer, 1, &written, 0, NULL);
                assert_true(result == SOCKET_SEND_OK || result == SOCKET_SEND_WOULD_BLOCK);
                sent[i] += written;
            }
            if (received[i] < len)
            {
                SOCKET_BUFFER buffer = {.length = sizeof(in), .buffer = in};
                uint32_t got = 0;
                SOCKET_RECEIVE_RESULT result = socket_transport_receive(ends[i], &buffer, 1, &got, 0, NULL);
                assert_true(result == SOCKET_RECEIVE_OK || result == SOCKET_RECEIVE_WOULD_BLOCK);
                assert_true(received[i] + got <= len);
                assert_int_equal(test_check_pattern(in, got, received[i]), got);
                received[i] += got;
            }
        }
    }
}

/* Connects a client to address:port and accepts it; both transports come out through the pointers. */
static void connect_pair(SOCKET_TRANSPORT_HANDLE server, const char* host, uint16_t port,
                         SOCKET_TRANSPORT_HANDLE* client, SOCKET_TRANSPORT_HANDLE* accepted)
{
    *client = socket_transport_create_client();
    assert_non_null(*client);
    log_capture_start();
    assert_int_equal(socket_transport_connect(*client, host, port, 2000), 0);
    SOCKET_ACCEPT_RESULT result = socket_transport_accept(server, accepted, 2000);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(result, SOCKET_ACCEPT_OK);
    assert_non_null(*accepted);
}

/* A loopback port with nothing listening: bound once by a plain socket, then freed. */
static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr*)&address, sizeof(address)), 0);
    socklen_t length = sizeof(address);
    assert_int_equal(getsockname(fd, (struct sockaddr*)&address, &length), 0);
    (void)close(fd);
    return ntohs(address.sin_port);
}

/* Whether ::1 can be bound here. */
static bool ipv6_loopback_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
    {
        return false;
    }
    struct sockaddr_in6 address = {.sin6_family = AF_INET6, .sin6_port = 0, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr*)&address, sizeof(address)) == 0;
    (void)close(fd);
    return ok;
}

/* A raw listener on 127.0.0.1 with a backlog of 0 whose accept queue is filled by connections
 * nobody accepts: further SYNs are dropped, so a connect to it hangs until its timeout. The
 * fillers' fds go to fillers[] (at most max); returns the listener, or -1 when the queue did not
 * fill up (a kernel that answers every SYN). */
static int full_backlog_listener(uint16_t* port, int* fillers, int max, int* filler_count)
{
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(listener >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(listener, (struct sockaddr*)&address, sizeof(address)), 0);
    assert_int_equal(listen(listener, 0), 0);
    socklen_t length = sizeof(address);
    assert_int_equal(getsockname(listener, (struct sockaddr*)&address, &length), 0);
    *port = ntohs(address.sin_port);
    *filler_count = 0;
    while (*filler_count < max)
    {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        fillers[(*filler_count)++] = fd;
        int result = connect(fd, (struct sockaddr*)&address, sizeof(address));
        assert_true(result == 0 || errno == EINPROGRESS);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 200) == 0)
        {
            return listener; /* this SYN was dropped: the queue is full */
        }
    }
    return -1;
}

/* ---- create ---- */

static void socket_transport_create_client_and_server_have_no_socket_yet(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_001 */
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start();
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    SOCKET_TRANSPORT_HANDLE server = socket_transport_create_server();
    assert_non_null(client);
    assert_non_null(server);
    assert_false(socket_transport_is_valid_socket(client));
    assert_false(socket_transport_is_valid_socket(server));
    assert_int_equal(socket_transport_get_underlying_socket(client), INVALID_SOCKET);
    assert_int_equal(socket_transport_get_underlying_socket(server), INVALID_SOCKET);
    assert_int_equal(test_count_open_fds(), baseline.fds);
    socket_transport_disconnect(client);
    socket_transport_destroy(client);
    socket_transport_destroy(server);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_create_client_and_server_fail_cleanly_when_allocation_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_001 */
    TEST_BASELINE baseline = test_baseline_take();
    for (int which = 0; which < 2; which++)
    {
        log_capture_start();
        sys_fault_arm(SYS_FAULT_ALLOC, 1, ENOMEM);
        SOCKET_TRANSPORT_HANDLE transport = which == 0 ? socket_transport_create_client() : socket_transport_create_server();
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        ASSERT_ERROR_LINES(log_capture_stop(), 1);
        assert_true(fired);
        assert_null(transport);
    }
    test_baseline_assert_back_to(baseline);
}

/* ---- listen_on / get_local_endpoint ---- */

static void socket_transport_listen_on_port_0_reports_the_chosen_port(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_020 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_011 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_027 */
    TEST_BASELINE baseline = test_baseline_take();
    SOCKET_TRANSPORT_HANDLE server = socket_transport_create_server();
    assert_non_null(server);
    log_capture_start();
    assert_int_equal(socket_transport_listen_on(server, "127.0.0.1", 0), 0);
    char host[HOST_SIZE];
    uint16_t port = 0;
    assert_int_equal(socket_transport_get_local_endpoint(server, host, sizeof(host), &port), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_not_equal(port, 0);
    assert_true(socket_transport_is_valid_socket(server));
    int fd = socket_transport_get_underlying_socket(server);
    assert_int_not_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);

    /* the port reported is the one listening: a plain client connects to it */
    int plain = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(plain >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(plain, (struct sockaddr*)&address, sizeof(address)), 0);
    (void)close(plain);

    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_listen_on_a_port_in_use_fails_with_eaddrinuse(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_021 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE first = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE second = socket_transport_create_server();
    assert_non_null(second);

    log_capture_start();
    errno = 0;
    int result = socket_transport_listen_on(second, "127.0.0.1", port);
    int error = errno;
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_int_equal(error, EADDRINUSE);
    assert_false(socket_transport_is_valid_socket(second));
    assert_int_equal(test_count_open_fds(), baseline.fds + 1);

    /* the failed server can still listen elsewhere */
    assert_int_equal(socket_transport_listen_on(second, "127.0.0.1", 0), 0);
    socket_transport_destroy(second);
    socket_transport_destroy(first);
    test_baseline_assert_back_to(baseline);
}

/* ---- connect / accept ---- */

static void socket_transport_connect_and_accept_exchange_bytes_over_ipv4(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_010 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_011 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_023 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client;
    SOCKET_TRANSPORT_HANDLE accepted;
    connect_pair(server, "127.0.0.1", port, &client, &accepted);

    assert_socket_flags(client);
    assert_socket_flags(accepted);
    char host[HOST_SIZE];
    uint16_t client_port = 0;
    uint16_t accepted_port = 0;
    assert_int_equal(socket_transport_get_local_endpoint(client, host, sizeof(host), &client_port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_not_equal(client_port, 0);
    assert_int_equal(socket_transport_get_local_endpoint(accepted, host, sizeof(host), &accepted_port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(accepted_port, port);

    exchange(client, accepted, 1024 * 1024);

    /* the end of the stream reaches the other side */
    socket_transport_destroy(client);
    uint8_t byte;
    SOCKET_BUFFER buffer = {.length = 1, .buffer = &byte};
    uint32_t got = 99;
    TEST_WAIT_UNTIL(socket_transport_receive(accepted, &buffer, 1, &got, 0, NULL) == SOCKET_RECEIVE_SHUTDOWN, 2000);
    assert_int_equal(got, 0);

    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_connect_and_accept_exchange_bytes_over_ipv6(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_010 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_011 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_020 */
    if (!ipv6_loopback_available())
    {
        (void)printf("SKIPPED: ::1 is not available on this machine\n");
        return;
    }
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("::1", &port);
    char host[HOST_SIZE];
    uint16_t server_port = 0;
    assert_int_equal(socket_transport_get_local_endpoint(server, host, sizeof(host), &server_port), 0);
    assert_string_equal(host, "::1");

    SOCKET_TRANSPORT_HANDLE client;
    SOCKET_TRANSPORT_HANDLE accepted;
    connect_pair(server, "::1", port, &client, &accepted);
    assert_socket_flags(client);
    assert_socket_flags(accepted);
    uint16_t client_port = 0;
    assert_int_equal(socket_transport_get_local_endpoint(client, host, sizeof(host), &client_port), 0);
    assert_string_equal(host, "::1");

    exchange(client, accepted, 256 * 1024);

    socket_transport_destroy(client);
    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* Whether "localhost" resolves to 127.0.0.1 here; when not, prints why (a chroot or a container
 * without /etc/hosts has no such name). */
static bool localhost_resolves(void)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo* found = NULL;
    int error = getaddrinfo("localhost", NULL, &hints, &found);
    if (error != 0)
    {
        (void)printf("skipped: the name \"localhost\" does not resolve here (getaddrinfo: %s; is there a localhost line in /etc/hosts?)\n", gai_strerror(error));
        return false;
    }
    bool loopback = false;
    for (struct addrinfo* at = found; at != NULL; at = at->ai_next)
    {
        loopback = loopback || ((const struct sockaddr_in*)at->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    }
    freeaddrinfo(found);
    if (!loopback)
    {
        (void)printf("skipped: the name \"localhost\" does not resolve to 127.0.0.1 here\n");
    }
    return loopback;
}

/* A name goes through getaddrinfo: "localhost", where it is 127.0.0.1 (the name is the point, so
 * where it does not resolve the test is skipped, saying so). */
static void socket_transport_connect_resolves_a_host_name(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_010 */
    if (!localhost_resolves())
    {
        skip();
    }
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client;
    SOCKET_TRANSPORT_HANDLE accepted;
    connect_pair(server, "localhost", port, &client, &accepted);
    exchange(client, accepted, 4096);
    socket_transport_destroy(client);
    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* Several clients queued before the first accept are accepted one per call. */
static void socket_transport_accept_takes_queued_connections_one_by_one(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_023 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE clients[3];
    SOCKET_TRANSPORT_HANDLE accepted[3];
    for (int i = 0; i < 3; i++)
    {
        clients[i] = socket_transport_create_client();
        assert_non_null(clients[i]);
        assert_int_equal(socket_transport_connect(clients[i], "127.0.0.1", port, 2000), 0);
    }
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(socket_transport_accept(server, &accepted[i], 2000), SOCKET_ACCEPT_OK);
    }
    SOCKET_TRANSPORT_HANDLE none = NULL;
    errno = 0;
    assert_int_equal(socket_transport_accept(server, &none, 0), SOCKET_ACCEPT_NO_CONNECTION);
    assert_int_equal(errno, ETIMEDOUT);
    assert_null(none);
    /* each accepted transport is connected to exactly one client: match them by port */
    for (int i = 0; i < 3; i++)
    {
        char host[HOST_SIZE];
        uint16_t client_port;
        assert_int_equal(socket_transport_get_local_endpoint(clients[i], host, sizeof(host), &client_port), 0);
        int matches = 0;
        for (int j = 0; j < 3; j++)
        {
            struct sockaddr_in peer;
            socklen_t length = sizeof(peer);
            assert_int_equal(getpeername(socket_transport_get_underlying_socket(accepted[j]), (struct sockaddr*)&peer, &length), 0);
            matches += ntohs(peer.sin_port) == client_port;
        }
        assert_int_equal(matches, 1);
    }
    for (int i = 0; i < 3; i++)
    {
        socket_transport_destroy(clients[i]);
        socket_transport_destroy(accepted[i]);
    }
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_connect_to_a_port_without_listener_fails_fast_with_econnrefused(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_013 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port = closed_port();
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    log_capture_start();
    uint64_t start = test_now_ms();
    errno = 0;
    int result = socket_transport_connect(client, "127.0.0.1", port, 5000);
    int error = errno;
    uint64_t elapsed = test_now_ms() - start;
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_int_equal(error, ECONNREFUSED);
    assert_true(elapsed < 1000);
    assert_false(socket_transport_is_valid_socket(client));
    assert_int_equal(test_count_open_fds(), baseline.fds);

    /* the same client connects once something listens */
    uint16_t server_port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &server_port);
    assert_int_equal(socket_transport_connect(client, "127.0.0.1", server_port, 2000), 0);
    SOCKET_TRANSPORT_HANDLE accepted;
    assert_int_equal(socket_transport_accept(server, &accepted, 2000), SOCKET_ACCEPT_OK);
    exchange(client, accepted, 1000);
    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    socket_transport_destroy(client);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_connect_to_an_unknown_host_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_014 */
    TEST_BASELINE baseline = test_baseline_take();
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    log_capture_start();
    uint64_t start = test_now_ms();
    int result = socket_transport_connect(client, "no.such.host.invalid", 80, 1000);
    uint64_t elapsed = test_now_ms() - start;
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_false(socket_transport_is_valid_socket(client));
    (void)printf("resolving no.such.host.invalid took %llu ms\n", (unsigned long long)elapsed);
    socket_transport_destroy(client);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_accept_without_a_client_times_out(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_024 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE accepted = NULL;
    log_capture_start();
    uint64_t start = test_now_ms();
    errno = 0;
    SOCKET_ACCEPT_RESULT result = socket_transport_accept(server, &accepted, 50);
    int error = errno;
    uint64_t elapsed = test_now_ms() - start;
    /* a timeout is an outcome, not an error: no ERROR line */
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(result, SOCKET_ACCEPT_NO_CONNECTION);
    assert_int_equal(error, ETIMEDOUT);
    assert_null(accepted);
    assert_true(elapsed >= 45);
    assert_true(elapsed < 500);
    /* still listening: a later client is accepted */
    SOCKET_TRANSPORT_HANDLE client;
    connect_pair(server, "127.0.0.1", port, &client, &accepted);
    socket_transport_destroy(client);
    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* A pending connection is accepted without waiting for the timeout, with the flags set. */
static void socket_transport_accept_returns_as_soon_as_a_client_connects(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_023 */
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_011 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    /* the kernel completes the handshake without accept: a plain blocking client connects first,
     * then accept must return at once instead of waiting out its 10 s */
    int plain = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(plain >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(plain, (struct sockaddr*)&address, sizeof(address)), 0);
    SOCKET_TRANSPORT_HANDLE accepted = NULL;
    uint64_t start = test_now_ms();
    assert_int_equal(socket_transport_accept(server, &accepted, 10000), SOCKET_ACCEPT_OK);
    assert_true(test_now_ms() - start < 1000);
    assert_socket_flags(accepted);
    (void)close(plain);
    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* When the transport for an accepted connection cannot be allocated, the connection is closed (the
 * client sees the end of the stream) and nothing leaks. */
static void socket_transport_accept_fails_cleanly_when_allocation_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_025 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    assert_int_equal(socket_transport_connect(client, "127.0.0.1", port, 2000), 0);
    int64_t live = sys_fault_live_allocations();
    int fds = test_count_open_fds();

    SOCKET_TRANSPORT_HANDLE accepted = NULL;
    log_capture_start();
    sys_fault_arm(SYS_FAULT_ALLOC, 1, ENOMEM);
    SOCKET_ACCEPT_RESULT result = socket_transport_accept(server, &accepted, 2000);
    bool fired = sys_fault_fired();
    sys_fault_disarm();
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_true(fired);
    assert_int_equal(result, SOCKET_ACCEPT_ERROR);
    assert_null(accepted);
    assert_int_equal(sys_fault_live_allocations(), live);
    assert_int_equal(test_count_open_fds(), fds);

    uint8_t byte;
    SOCKET_BUFFER buffer = {.length = 1, .buffer = &byte};
    uint32_t got = 99;
    TEST_WAIT_UNTIL(socket_transport_receive(client, &buffer, 1, &got, 0, NULL) == SOCKET_RECEIVE_SHUTDOWN, 2000);
    socket_transport_destroy(client);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* A connect that gets no answer gives up after its timeout with ETIMEDOUT, leaves no fd behind,
 * and the transport can connect elsewhere afterwards. On loopback the silence comes from a
 * listener whose accept queue is full (the kernel drops the SYN). */
static void socket_transport_connect_to_a_silent_listener_times_out(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_012 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    int fillers[16];
    int filler_count = 0;
    int listener = full_backlog_listener(&port, fillers, 16, &filler_count);
    if (listener < 0)
    {
        for (int i = 0; i < filler_count; i++)
        {
            (void)close(fillers[i]);
        }
        (void)printf("skipped: the kernel answered %d connections to a backlog-0 listener\n", filler_count);
        skip();
    }
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    log_capture_start();
    uint64_t start = test_now_ms();
    errno = 0;
    int result = socket_transport_connect(client, "127.0.0.1", port, 300);
    int error = errno;
    uint64_t elapsed = test_now_ms() - start;
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_int_not_equal(result, 0);
    assert_int_equal(error, ETIMEDOUT);
    assert_true(elapsed >= 250);
    assert_true(elapsed < 5000);
    assert_false(socket_transport_is_valid_socket(client));
    assert_int_equal(test_count_open_fds(), baseline.fds + 1 + filler_count);
    for (int i = 0; i < filler_count; i++)
    {
        (void)close(fillers[i]);
    }
    (void)close(listener);

    /* the timed-out client connects once something answers */
    uint16_t server_port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &server_port);
    SOCKET_TRANSPORT_HANDLE accepted;
    assert_int_equal(socket_transport_connect(client, "127.0.0.1", server_port, 2000), 0);
    assert_int_equal(socket_transport_accept(server, &accepted, 2000), SOCKET_ACCEPT_OK);
    exchange(client, accepted, 1000);
    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    socket_transport_destroy(client);
    test_baseline_assert_back_to(baseline);
}

/* ---- release_socket ---- */

static void on_release_test_open(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    *(ASYNC_SOCKET_OPEN_RESULT*)context = result;
}

static void on_release_test_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    *(ASYNC_SOCKET_SEND_RESULT*)context = result;
}

/* An accepted transport's fd, released, is a socket that async_socket_create can own: the
 * transport is freed (no allocation left), the fd stays open with its flags, the bytes sent
 * through the async socket arrive, and the peer sees the end of the stream only when the async
 * socket closes it. */
static void socket_transport_release_socket_hands_the_fd_to_async_socket(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_030 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client;
    SOCKET_TRANSPORT_HANDLE accepted;
    connect_pair(server, "127.0.0.1", port, &client, &accepted);
    int accepted_fd = socket_transport_get_underlying_socket(accepted);
    assert_socket_flags(accepted);
    int64_t live = sys_fault_live_allocations();
    int fds = test_count_open_fds();

    log_capture_start();
    SOCKET_HANDLE fd = socket_transport_release_socket(accepted);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_int_equal(fd, accepted_fd);
    assert_int_equal(sys_fault_live_allocations(), live - 1);
    assert_int_equal(test_count_open_fds(), fds);
    assert_int_not_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);

    /* nothing reached the client: no end of stream from the release */
    uint8_t byte;
    SOCKET_BUFFER probe = {.length = 1, .buffer = &byte};
    uint32_t got = 99;
    assert_int_equal(socket_transport_receive(client, &probe, 1, &got, 0, NULL), SOCKET_RECEIVE_WOULD_BLOCK);

    assert_int_equal(platform_init(), 0);
    ASYNC_SOCKET_HANDLE async_socket = async_socket_create(NULL, fd);
    assert_non_null(async_socket);
    ASYNC_SOCKET_OPEN_RESULT opened = ASYNC_SOCKET_OPEN_ERROR;
    assert_int_equal(async_socket_open_async(async_socket, on_release_test_open, &opened), 0);
    assert_int_equal(opened, ASYNC_SOCKET_OPEN_OK);
    uint8_t out[4096];
    test_fill_pattern(out, sizeof(out), 0);
    ASYNC_SOCKET_BUFFER payload = {.buffer = out, .length = sizeof(out)};
    volatile ASYNC_SOCKET_SEND_RESULT sent = ASYNC_SOCKET_SEND_ERROR;
    assert_int_equal(async_socket_send_async(async_socket, &payload, 1, on_release_test_sent, (void*)&sent), ASYNC_SOCKET_SEND_SYNC_OK);
    uint8_t in[4096];
    test_read_exact(socket_transport_get_underlying_socket(client), in, sizeof(in));
    assert_int_equal(test_check_pattern(in, sizeof(in), 0), sizeof(in));
    TEST_WAIT_UNTIL(sent == ASYNC_SOCKET_SEND_OK, 2000);
    async_socket_close(async_socket);
    async_socket_destroy(async_socket);
    platform_deinit();
    TEST_WAIT_UNTIL(socket_transport_receive(client, &probe, 1, &got, 0, NULL) == SOCKET_RECEIVE_SHUTDOWN, 2000);

    socket_transport_destroy(client);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* A transport without a socket is freed and gives INVALID_SOCKET; NULL gives INVALID_SOCKET and
 * one ERROR line. */
static void socket_transport_release_socket_without_a_socket_or_handle(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_030 */
    TEST_BASELINE baseline = test_baseline_take();
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    log_capture_start();
    assert_int_equal(socket_transport_release_socket(client), INVALID_SOCKET);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    test_baseline_assert_back_to(baseline);

    log_capture_start();
    assert_int_equal(socket_transport_release_socket(NULL), INVALID_SOCKET);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    test_baseline_assert_back_to(baseline);
}

/* ---- bad arguments: each call fails, logs exactly one ERROR line and changes nothing ---- */

#define EXPECT_ONE_ERROR(call)                                  \
    do                                                          \
    {                                                           \
        log_capture_start();                                    \
        int result_ = (call);                                   \
        ASSERT_ERROR_LINES(log_capture_stop(), 1);              \
        if (result_ == 0)                                       \
        {                                                       \
            fail_msg("%s succeeded, expected a failure", #call); \
        }                                                       \
    } while (0)

static void socket_transport_connect_with_bad_arguments_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_015 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    SOCKET_TRANSPORT_HANDLE idle_server = socket_transport_create_server();
    assert_non_null(client);
    assert_non_null(idle_server);

    EXPECT_ONE_ERROR(socket_transport_connect(NULL, "127.0.0.1", port, 1000));
    EXPECT_ONE_ERROR(socket_transport_connect(client, NULL, port, 1000));
    EXPECT_ONE_ERROR(socket_transport_connect(client, "127.0.0.1", 0, 1000));
    /* a server transport does not connect */
    EXPECT_ONE_ERROR(socket_transport_connect(idle_server, "127.0.0.1", port, 1000));
    assert_false(socket_transport_is_valid_socket(idle_server));
    assert_false(socket_transport_is_valid_socket(client));

    /* a connected client does not connect again; its connection is kept */
    assert_int_equal(socket_transport_connect(client, "127.0.0.1", port, 1000), 0);
    int fd = socket_transport_get_underlying_socket(client);
    EXPECT_ONE_ERROR(socket_transport_connect(client, "127.0.0.1", port, 1000));
    assert_int_equal(socket_transport_get_underlying_socket(client), fd);
    SOCKET_TRANSPORT_HANDLE accepted;
    assert_int_equal(socket_transport_accept(server, &accepted, 2000), SOCKET_ACCEPT_OK);
    assert_int_equal(socket_transport_accept(server, &accepted, 0), SOCKET_ACCEPT_NO_CONNECTION); /* only one connection */
    exchange(client, accepted, 100);

    socket_transport_destroy(accepted);
    socket_transport_destroy(client);
    socket_transport_destroy(idle_server);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_listen_with_bad_arguments_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_022 */
    TEST_BASELINE baseline = test_baseline_take();
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    SOCKET_TRANSPORT_HANDLE server = socket_transport_create_server();
    assert_non_null(client);
    assert_non_null(server);

    /* listen (INADDR_ANY): only the argument checks, which fail before anything is bound */
    EXPECT_ONE_ERROR(socket_transport_listen(NULL, 0));
    EXPECT_ONE_ERROR(socket_transport_listen(client, 0));

    EXPECT_ONE_ERROR(socket_transport_listen_on(NULL, "127.0.0.1", 0));
    EXPECT_ONE_ERROR(socket_transport_listen_on(client, "127.0.0.1", 0));
    EXPECT_ONE_ERROR(socket_transport_listen_on(server, NULL, 0));
    /* numeric addresses only */
    EXPECT_ONE_ERROR(socket_transport_listen_on(server, "localhost", 0));
    EXPECT_ONE_ERROR(socket_transport_listen_on(server, "127.0.0.256", 0));
    assert_false(socket_transport_is_valid_socket(client));
    assert_false(socket_transport_is_valid_socket(server));
    assert_int_equal(test_count_open_fds(), baseline.fds);

    /* a listening server does not listen again */
    assert_int_equal(socket_transport_listen_on(server, "127.0.0.1", 0), 0);
    int fd = socket_transport_get_underlying_socket(server);
    EXPECT_ONE_ERROR(socket_transport_listen_on(server, "127.0.0.1", 0));
    EXPECT_ONE_ERROR(socket_transport_listen(server, 0));
    assert_int_equal(socket_transport_get_underlying_socket(server), fd);

    socket_transport_destroy(client);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* accept's failures are SOCKET_ACCEPT_ERROR (with one ERROR line), not just "not OK". */
#define EXPECT_ACCEPT_ERROR(call)                                                    \
    do                                                                               \
    {                                                                                \
        log_capture_start();                                                         \
        SOCKET_ACCEPT_RESULT result_ = (call);                                       \
        ASSERT_ERROR_LINES(log_capture_stop(), 1);                                   \
        if (result_ != SOCKET_ACCEPT_ERROR)                                          \
        {                                                                            \
            fail_msg("%s gave %s, expected SOCKET_ACCEPT_ERROR", #call,              \
                MU_ENUM_TO_STRING(SOCKET_ACCEPT_RESULT, result_));                   \
        }                                                                            \
    } while (0)

static void socket_transport_accept_with_bad_arguments_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_026 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE idle_server = socket_transport_create_server();
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(idle_server);
    assert_non_null(client);
    SOCKET_TRANSPORT_HANDLE accepted = NULL;

    EXPECT_ACCEPT_ERROR(socket_transport_accept(NULL, &accepted, 0));
    EXPECT_ACCEPT_ERROR(socket_transport_accept(server, NULL, 0));
    EXPECT_ACCEPT_ERROR(socket_transport_accept(idle_server, &accepted, 0)); /* not listening */
    EXPECT_ACCEPT_ERROR(socket_transport_accept(client, &accepted, 0));      /* not a server */
    /* a connected client is not a listening server either */
    assert_int_equal(socket_transport_connect(client, "127.0.0.1", port, 1000), 0);
    EXPECT_ACCEPT_ERROR(socket_transport_accept(client, &accepted, 0));
    assert_null(accepted);

    assert_int_equal(socket_transport_accept(server, &accepted, 2000), SOCKET_ACCEPT_OK);
    socket_transport_destroy(accepted);
    socket_transport_destroy(client);
    socket_transport_destroy(idle_server);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_get_local_endpoint_with_bad_arguments_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_027 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    char host[HOST_SIZE];
    uint16_t out_port = 12345;

    EXPECT_ONE_ERROR(socket_transport_get_local_endpoint(NULL, host, sizeof(host), &out_port));
    EXPECT_ONE_ERROR(socket_transport_get_local_endpoint(server, NULL, sizeof(host), &out_port));
    EXPECT_ONE_ERROR(socket_transport_get_local_endpoint(server, host, 0, &out_port));
    EXPECT_ONE_ERROR(socket_transport_get_local_endpoint(server, host, sizeof(host), NULL));
    EXPECT_ONE_ERROR(socket_transport_get_local_endpoint(client, host, sizeof(host), &out_port)); /* no socket */
    /* "127.0.0.1" needs 10 bytes */
    EXPECT_ONE_ERROR(socket_transport_get_local_endpoint(server, host, 9, &out_port));
    assert_int_equal(out_port, 12345);
    log_capture_start();
    assert_int_equal(socket_transport_get_local_endpoint(server, host, 10, &out_port), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(out_port, port);

    socket_transport_destroy(client);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* With no descriptor left for the accepted connection (RLIMIT_NOFILE lowered to the lowest free
 * fd number), accept gives c-pal's SOCKET_ACCEPT_PORT_EXHAUSTION with one ERROR line, and the
 * connection waits: once descriptors are free again it is accepted. */
static void socket_transport_accept_out_of_descriptors_is_port_exhaustion(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_050 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    assert_int_equal(socket_transport_connect(client, "127.0.0.1", port, 2000), 0);
    /* the kernel gives the lowest free number: with the limit there, accept4 has none left */
    int lowest_free = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(lowest_free >= 0);
    (void)close(lowest_free);
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    struct rlimit lowered = {.rlim_cur = (rlim_t)lowest_free, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lowered), 0);

    SOCKET_TRANSPORT_HANDLE accepted = NULL;
    log_capture_start();
    SOCKET_ACCEPT_RESULT result = socket_transport_accept(server, &accepted, 2000);
    int error = errno;
    int errors = log_capture_stop();
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ASSERT_ERROR_LINES(errors, 1);
    assert_int_equal(result, SOCKET_ACCEPT_PORT_EXHAUSTION);
    assert_int_equal(error, EMFILE);
    assert_null(accepted);

    assert_int_equal(socket_transport_accept(server, &accepted, 2000), SOCKET_ACCEPT_OK);
    socket_transport_destroy(accepted);
    socket_transport_destroy(client);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

/* The IPv4 interfaces that are up, running and not loopback, counted the way the test expects
 * socket_transport_get_local_address to list them. */
static uint32_t count_listed_interfaces(void)
{
    struct ifaddrs* interfaces = NULL;
    assert_int_equal(getifaddrs(&interfaces), 0);
    uint32_t count = 0;
    for (const struct ifaddrs* ifa = interfaces; ifa != NULL; ifa = ifa->ifa_next)
    {
        if (ifa->ifa_addr != NULL && ifa->ifa_addr->sa_family == AF_INET && (ifa->ifa_flags & IFF_UP) != 0 &&
            (ifa->ifa_flags & IFF_RUNNING) != 0 && (ifa->ifa_flags & IFF_LOOPBACK) == 0)
        {
            count++;
        }
    }
    freeifaddrs(interfaces);
    return count;
}

/* c-pal's get_local_address: the machine's host name and its non-loopback IPv4 addresses, the same
 * for any transport (here a client and the connection a server accepted), in an array the caller
 * frees; without a list only the host name is written and nothing is allocated. */
static void socket_transport_get_local_address_gives_host_name_and_interface_addresses(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_051 */
    TEST_BASELINE baseline = test_baseline_take();
    uint16_t port;
    SOCKET_TRANSPORT_HANDLE server = start_server("127.0.0.1", &port);
    SOCKET_TRANSPORT_HANDLE client;
    SOCKET_TRANSPORT_HANDLE accepted;
    connect_pair(server, "127.0.0.1", port, &client, &accepted);
    char expected_host[MAX_GET_HOST_NAME_LEN] = {0};
    assert_int_equal(gethostname(expected_host, sizeof(expected_host) - 1), 0);
    uint32_t expected_count = count_listed_interfaces();

    char client_host[MAX_GET_HOST_NAME_LEN];
    char accepted_host[MAX_GET_HOST_NAME_LEN];
    (void)memset(client_host, 'x', sizeof(client_host));
    LOCAL_ADDRESS* client_list = NULL;
    LOCAL_ADDRESS* accepted_list = NULL;
    uint32_t client_count = 999;
    uint32_t accepted_count = 999;
    log_capture_start();
    assert_int_equal(socket_transport_get_local_address(client, client_host, &client_list, &client_count), 0);
    assert_int_equal(socket_transport_get_local_address(accepted, accepted_host, &accepted_list, &accepted_count), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 0);
    assert_string_equal(client_host, expected_host);
    assert_string_equal(accepted_host, expected_host);
    assert_non_null(client_list);
    assert_non_null(accepted_list);
    assert_int_equal(client_count, expected_count);
    assert_int_equal(accepted_count, expected_count);
    for (uint32_t i = 0; i < client_count; i++)
    {
        struct in_addr parsed;
        assert_int_equal(client_list[i].address_type, ADDRESS_INET);
        assert_int_equal(inet_pton(AF_INET, client_list[i].address, &parsed), 1);
        assert_int_not_equal(ntohl(parsed.s_addr) >> 24, 127);
        assert_string_equal(client_list[i].address, accepted_list[i].address);
    }
    /* the lists are the caller's: one allocation each, released with free() */
    assert_int_equal(sys_fault_live_allocations(), baseline.allocations + 3 + 2);
    sys_free(client_list);
    sys_free(accepted_list);

    /* no list: only the host name */
    char host_only[MAX_GET_HOST_NAME_LEN];
    int64_t live = sys_fault_live_allocations();
    assert_int_equal(socket_transport_get_local_address(client, host_only, NULL, NULL), 0);
    assert_string_equal(host_only, expected_host);
    assert_int_equal(sys_fault_live_allocations(), live);

    socket_transport_destroy(client);
    socket_transport_destroy(accepted);
    socket_transport_destroy(server);
    test_baseline_assert_back_to(baseline);
}

static void socket_transport_get_local_address_with_bad_arguments_fails(void** state)
{
    (void)state;
    /* Tests_SRS_SOCKET_TRANSPORT_LINUX_01_052 */
    TEST_BASELINE baseline = test_baseline_take();
    SOCKET_TRANSPORT_HANDLE client = socket_transport_create_client();
    assert_non_null(client);
    char host[MAX_GET_HOST_NAME_LEN];
    LOCAL_ADDRESS* list = NULL;
    uint32_t count = 7;
    int64_t live = sys_fault_live_allocations();

    EXPECT_ONE_ERROR(socket_transport_get_local_address(NULL, host, &list, &count));
    EXPECT_ONE_ERROR(socket_transport_get_local_address(client, NULL, &list, &count));
    EXPECT_ONE_ERROR(socket_transport_get_local_address(client, host, &list, NULL));
    assert_null(list);
    assert_int_equal(count, 7);
    assert_int_equal(sys_fault_live_allocations(), live);
    /* the list's allocation failing is a failure too, with nothing left allocated */
    log_capture_start();
    sys_fault_arm(SYS_FAULT_ALLOC, 1, ENOMEM);
    int result = socket_transport_get_local_address(client, host, &list, &count);
    bool fired = sys_fault_fired();
    sys_fault_disarm();
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    assert_true(fired);
    assert_int_not_equal(result, 0);
    assert_null(list);
    assert_int_equal(sys_fault_live_allocations(), live);

    socket_transport_destroy(client);
    test_baseline_assert_back_to(baseline);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(socket_transport_create_client_and_server_have_no_socket_yet),
    cmocka_unit_test(socket_transport_create_client_and_server_fail_cleanly_when_allocation_fails),
    cmocka_unit_test(socket_transport_listen_on_port_0_reports_the_chosen_port),
    cmocka_unit_test(socket_transport_listen_on_a_port_in_use_fails_with_eaddrinuse),
    cmocka_unit_test(socket_transport_connect_and_accept_exchange_bytes_over_ipv4),
    cmocka_unit_test(socket_transport_connect_and_accept_exchange_bytes_over_ipv6),
    cmocka_unit_test(socket_transport_connect_resolves_a_host_name),
    cmocka_unit_test(socket_transport_accept_takes_queued_connections_one_by_one),
    cmocka_unit_test(socket_transport_connect_to_a_port_without_listener_fails_fast_with_econnrefused),
    cmocka_unit_test(socket_transport_connect_to_an_unknown_host_fails),
    cmocka_unit_test(socket_transport_accept_without_a_client_times_out),
    cmocka_unit_test(socket_transport_accept_returns_as_soon_as_a_client_connects),
    cmocka_unit_test(socket_transport_accept_fails_cleanly_when_allocation_fails),
    cmocka_unit_test(socket_transport_connect_to_a_silent_listener_times_out),
    cmocka_unit_test(socket_transport_release_socket_hands_the_fd_to_async_socket),
    cmocka_unit_test(socket_transport_release_socket_without_a_socket_or_handle),
    cmocka_unit_test(socket_transport_connect_with_bad_arguments_fails),
    cmocka_unit_test(socket_transport_listen_with_bad_arguments_fails),
    cmocka_unit_test(socket_transport_accept_with_bad_arguments_fails),
    cmocka_unit_test(socket_transport_accept_out_of_descriptors_is_port_exhaustion),
    cmocka_unit_test(socket_transport_get_local_address_gives_host_name_and_interface_addresses),
    cmocka_unit_test(socket_transport_get_local_address_with_bad_arguments_fails),
    cmocka_unit_test(socket_transport_get_local_endpoint_with_bad_arguments_fails),
};

TEST_MAIN(tests)
