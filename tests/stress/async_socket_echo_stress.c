/* Stress: 10,000 concurrent loopback connections, both ends async sockets, every client streaming
 * a distinct byte pattern through an echoing server socket and checking every byte that comes back.
 *
 * The echo servers run in a forked child process with its own platform, so each process needs one
 * fd per connection (a container without CAP_SYS_RESOURCE cannot raise a 20,000 hard limit, which
 * two ends in one process would need). RLIMIT_NOFILE is raised in both as far as the machine allows
 * (the hard limit too where permitted); when that is fewer than wanted the run uses as many
 * connections as fit and says so on its STRESS line. */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include "stress_util.h"
#include "test_main.h"

#define ECHO_FULL_CONNECTIONS 10000u
#define ECHO_CHUNK 4096u      /* bytes per client send, and per receive buffer on both ends */
#define ECHO_SENDS 4u         /* client sends per connection */
#define ECHO_BYTES (ECHO_CHUNK * ECHO_SENDS)
#define ECHO_SPREAD 65536u    /* stream start offsets are spread over this many pattern bytes */
#define ECHO_FD_RESERVE 64u   /* fds kept for the process itself (epoll, eventfd, stdio, ...) */
#define ECHO_CHILD_LIMIT_MS 300000u

/* ---- the echo server (child process) ----
 * The child cannot use cmocka's asserts (its failures would not reach the test); it counts what
 * went wrong and its exit status says whether everything was echoed and nothing leaked. */

typedef struct ECHO_SERVER_TAG ECHO_SERVER;

typedef struct ECHO_PEER_TAG
{
    ECHO_SERVER* server;
    ASYNC_SOCKET_HANDLE socket;
    uint8_t buffer[ECHO_CHUNK];
} ECHO_PEER;

struct ECHO_SERVER_TAG
{
    atomic_uint_fast64_t echoed;
    atomic_uint ended;  /* connections whose client closed */
    atomic_uint errors;
};

static void peer_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);

static int peer_post_receive(ECHO_PEER* peer)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = peer->buffer, .length = ECHO_CHUNK};
    return async_socket_receive_async(peer->socket, &buffer, 1, peer_on_receive, peer);
}

static void peer_on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    ECHO_PEER* peer = context;
    /* The echo buffer is free again only now; the next receive may reuse it. */
    if (result != ASYNC_SOCKET_SEND_OK || peer_post_receive(peer) != 0)
    {
        (void)atomic_fetch_add(&peer->server->errors, 1);
    }
}

static void peer_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    ECHO_PEER* peer = context;
    if (result == ASYNC_SOCKET_RECEIVE_ABANDONED)
    {
        (void)atomic_fetch_add(&peer->server->ended, 1); /* end of stream: the client closed */
        return;
    }
    if (result != ASYNC_SOCKET_RECEIVE_OK)
    {
        (void)atomic_fetch_add(&peer->server->errors, 1);
        return;
    }
    (void)atomic_fetch_add(&peer->server->echoed, bytes);
    ASYNC_SOCKET_BUFFER buffer = {.buffer = peer->buffer, .length = bytes};
    if (async_socket_send_async(peer->socket, &buffer, 1, peer_on_sent, peer) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        (void)atomic_fetch_add(&peer->server->errors, 1);
    }
}

static void peer_on_open(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    ECHO_PEER* peer = context;
    if (result != ASYNC_SOCKET_OPEN_OK)
    {
        (void)atomic_fetch_add(&peer->server->errors, 1);
    }
}

/* Accepts `count` connections, echoes until every client has closed, frees everything and checks
 * that the library gave back all it allocated. Exit status: 0 all well, 1 otherwise. */
static int echo_server_run(int listener, uint32_t count)
{
    ECHO_SERVER server;
    memset(&server, 0, sizeof(server));
    int64_t allocations = sys_fault_live_allocations();
    ECHO_PEER* peers = calloc(count, sizeof(ECHO_PEER));
    if (peers == NULL || platform_init() != 0)
    {
        return 1;
    }
    uint64_t start = test_now_ms();
    uint32_t accepted = 0;
    while (accepted < count && test_now_ms() - start < ECHO_CHILD_LIMIT_MS)
    {
        struct pollfd ready = {.fd = listener, .events = POLLIN};
        if (poll(&ready, 1, 100) <= 0)
        {
            continue;
        }
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
        {
            continue;
        }
        ECHO_PEER* peer = &peers[accepted++];
        peer->server = &server;
        peer->socket = async_socket_create(NULL, fd);
        if (peer->socket == NULL || async_socket_open_async(peer->socket, peer_on_open, peer) != 0 ||
            peer_post_receive(peer) != 0)
        {
            (void)atomic_fetch_add(&server.errors, 1);
        }
    }
    (void)close(listener);
    while (atomic_load(&server.ended) < accepted && atomic_load(&server.errors) == 0 &&
           test_now_ms() - start < ECHO_CHILD_LIMIT_MS)
    {
        test_sleep_ms(5);
    }
    for (uint32_t i = 0; i < accepted; i++)
    {
        async_socket_close(peers[i].socket);
        async_socket_destroy(peers[i].socket);
    }
    platform_deinit();
    bool ok = accepted == count && atomic_load(&server.ended) == count && atomic_load(&server.errors) == 0 &&
              atomic_load(&server.echoed) == (uint64_t)count * ECHO_BYTES &&
              sys_fault_live_allocations() == allocations;
    if (!ok)
    {
        (void)fprintf(stderr, "echo server: accepted %u of %u, ended %u, errors %u, echoed %llu, allocations %lld -> %lld\n",
                      accepted, count, atomic_load(&server.ended), atomic_load(&server.errors),
                      (unsigned long long)atomic_load(&server.echoed), (long long)allocations,
                      (long long)sys_fault_live_allocations());
    }
    free(peers);
    return ok ? 0 : 1;
}

/* ---- the clients (test process) ---- */

typedef struct ECHO_RUN_TAG ECHO_RUN;

typedef struct ECHO_CONN_TAG
{
    ECHO_RUN* run;
    ASYNC_SOCKET_HANDLE client;
    uint64_t base;     /* pattern offset of this connection's first byte */
    uint64_t received; /* bytes back; only this connection's receive callbacks touch it */
    uint8_t rx[ECHO_CHUNK];
} ECHO_CONN;

struct ECHO_RUN_TAG
{
    const uint8_t* source; /* the pattern for offsets [0, ECHO_SPREAD + ECHO_BYTES) */
    atomic_uint_fast64_t verified;
    atomic_uint done;
    atomic_uint mismatches;
    atomic_uint errors;
    atomic_uint sends_ok;
};

static void client_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes);

static int client_post_receive(ECHO_CONN* conn)
{
    ASYNC_SOCKET_BUFFER buffer = {.buffer = conn->rx, .length = ECHO_CHUNK};
    return async_socket_receive_async(conn->client, &buffer, 1, client_on_receive, conn);
}

static void client_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    ECHO_CONN* conn = context;
    ECHO_RUN* run = conn->run;
    if (result != ASYNC_SOCKET_RECEIVE_OK)
    {
        (void)atomic_fetch_add(&run->errors, 1);
        return;
    }
    if (bytes == 0 || conn->received + bytes > ECHO_BYTES ||
        test_check_pattern(conn->rx, bytes, conn->base + conn->received) != bytes)
    {
        (void)atomic_fetch_add(&run->mismatches, 1);
        return;
    }
    conn->received += bytes;
    (void)atomic_fetch_add(&run->verified, bytes);
    if (conn->received == ECHO_BYTES)
    {
        (void)atomic_fetch_add(&run->done, 1);
    }
    else if (client_post_receive(conn) != 0)
    {
        (void)atomic_fetch_add(&run->errors, 1);
    }
}

static void client_on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    ECHO_CONN* conn = context;
    if (result == ASYNC_SOCKET_SEND_OK)
    {
        (void)atomic_fetch_add(&conn->run->sends_ok, 1);
    }
    else
    {
        (void)atomic_fetch_add(&conn->run->errors, 1);
    }
}

/* Connects `count` clients to the child's listener and opens them. */
static void echo_connect_all(ECHO_RUN* run, ECHO_CONN* conns, uint32_t count, const struct sockaddr_in* addr)
{
    for (uint32_t i = 0; i < count; i++)
    {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        if (connect(fd, (const struct sockaddr*)addr, sizeof(*addr)) != 0)
        {
            fail_msg("connect %u failed, errno %d", i, errno);
        }
        stress_set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        conns[i].run = run;
        conns[i].base = ((uint64_t)i * 7919u) % ECHO_SPREAD; /* distinct for every i < 65536 */
        conns[i].client = open_socket(fd);
    }
}

static void echo_start(ECHO_RUN* run, ECHO_CONN* conns, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
    {
        assert_int_equal(client_post_receive(&conns[i]), 0);
    }
    for (uint32_t i = 0; i < count; i++)
    {
        for (uint32_t k = 0; k < ECHO_SENDS; k++)
        {
            ASYNC_SOCKET_BUFFER buffer = {
                .buffer = (void*)(run->source + conns[i].base + (uint64_t)k * ECHO_CHUNK), .length = ECHO_CHUNK};
            assert_int_equal(async_socket_send_async(conns[i].client, &buffer, 1, client_on_sent, &conns[i]),
                             ASYNC_SOCKET_SEND_SYNC_OK);
        }
    }
}

/* Waits (bounded) for the child to exit; kills it when it does not. Returns its exit status. */
static int echo_wait_child(pid_t child)
{
    uint64_t start = test_now_ms();
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0)
    {
        if (test_now_ms() - start > 60000)
        {
            (void)kill(child, SIGKILL);
            (void)waitpid(child, &status, 0);
            return -1;
        }
        test_sleep_ms(10);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* How many connections fit in this process's fd limit after raising it. */
static uint32_t echo_connection_budget(uint32_t wanted, uint64_t* allowed)
{
    struct rlimit before;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
    *allowed = stress_raise_nofile((uint64_t)wanted + ECHO_FD_RESERVE);
    struct rlimit after;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
    (void)printf("RLIMIT_NOFILE soft/hard before %llu/%llu, after %llu/%llu (wanted %u per process)\n",
                 (unsigned long long)before.rlim_cur, (unsigned long long)before.rlim_max,
                 (unsigned long long)after.rlim_cur, (unsigned long long)after.rlim_max, wanted + ECHO_FD_RESERVE);
    if (*allowed >= (uint64_t)wanted + ECHO_FD_RESERVE)
    {
        return wanted;
    }
    (void)printf("the fd limit allows only %llu connections\n", (unsigned long long)(*allowed - ECHO_FD_RESERVE));
    return (uint32_t)(*allowed - ECHO_FD_RESERVE);
}

static void echo_10000_connections_every_byte_verified(void** state)
{
    (void)state;
    uint32_t wanted = stress_scaled(ECHO_FULL_CONNECTIONS, 10);
    uint64_t allowed = 0;
    uint32_t count = echo_connection_budget(wanted, &allowed);

    STRESS_LISTENER listener;
    stress_listener_open(&listener, 0);
    (void)fflush(stdout);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
    {
        _exit(echo_server_run(listener.fd, count));
    }
    stress_listener_close(&listener);

    LEAK_MARK mark;
    env_begin(&mark);
    ECHO_RUN run;
    memset(&run, 0, sizeof(run));
    uint8_t* source = make_pattern(0, ECHO_SPREAD + ECHO_BYTES);
    run.source = source;
    ECHO_CONN* conns = calloc(count, sizeof(ECHO_CONN));
    assert_non_null(conns);

    uint64_t start = test_now_ms();
    echo_connect_all(&run, conns, count, &listener.addr);
    double connect_seconds = stress_seconds_since(start);
    uint64_t fds_open = (uint64_t)test_count_open_fds();
    echo_start(&run, conns, count);
    TEST_WAIT_UNTIL(atomic_load(&run.done) == count || atomic_load(&run.mismatches) != 0 || atomic_load(&run.errors) != 0, 240000);
    double seconds = stress_seconds_since(start);
    /* A client's send callbacks may still be on their way when its last echo arrives. */
    TEST_WAIT_UNTIL(atomic_load(&run.sends_ok) == count * ECHO_SENDS || atomic_load(&run.errors) != 0, 10000);

    for (uint32_t i = 0; i < count; i++)
    {
        async_socket_close(conns[i].client);
        async_socket_destroy(conns[i].client);
    }
    int child_status = echo_wait_child(child);
    stress_report("echo connections=%u wanted=%u rlimit_nofile=%llu fds_open=%llu bytes_each_way=%llu verified=%llu "
                  "mismatches=%u errors=%u server_exit=%d connect_seconds=%.2f seconds=%.2f",
                  count, wanted, (unsigned long long)allowed, (unsigned long long)fds_open,
                  (unsigned long long)count * ECHO_BYTES, (unsigned long long)atomic_load(&run.verified),
                  atomic_load(&run.mismatches), atomic_load(&run.errors), child_status, connect_seconds, seconds);
    assert_int_equal(atomic_load(&run.mismatches), 0);
    assert_int_equal(atomic_load(&run.errors), 0);
    assert_int_equal(atomic_load(&run.done), count);
    assert_true(atomic_load(&run.verified) == (uint64_t)count * ECHO_BYTES);
    assert_int_equal(child_status, 0);

    free(conns);
    free(source);
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(echo_10000_connections_every_byte_verified),
};

TEST_MAIN(tests)
