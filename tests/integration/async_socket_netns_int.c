/* Integration test: a connection between two hosts, simulated by two private network namespaces
 * joined by a veth pair, and a link that goes down in the middle of a stream.
 *
 * The namespaces are anonymous: this thread unshares into each in turn and keeps an fd to it, so
 * they (and the veth pair inside them) disappear with the process, whatever way it ends. The
 * addresses (10.199.0.1 and .2) exist only inside them; the root namespace's interfaces are never
 * touched. Interfaces are configured with iproute2's `ip`, run in a forked child that has entered
 * the namespace.
 *
 * Where namespaces cannot be made (no privilege, no `ip`), main() exits with 77, which the ctest
 * registration (SKIP_RETURN_CODE 77) reports as skipped. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/wait.h>

#include "async_socket_data_helpers.h"
#include "test_main.h"

#define NETNS_ADDRESS_A "10.199.0.1"
#define NETNS_ADDRESS_B "10.199.0.2"
#define NETNS_USER_TIMEOUT_MS 1500u
#define NETNS_SLACK_MS 3000u /* retransmission timers fire on their own schedule after the timeout */
#define NETNS_SKIP 77

typedef struct HOSTS_TAG
{
    int root; /* the namespace this process started in */
    int a;
    int b;
} HOSTS;

static HOSTS hosts = {-1, -1, -1};

static int open_own_netns(void)
{
    return open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
}

/* Runs `ip args...` inside namespace `ns`; returns its exit status (127: no ip). */
static int run_ip_in(int ns, char* const args[])
{
    pid_t child = fork();
    if (child < 0)
    {
        return -1;
    }
    if (child == 0)
    {
        int null_fd = open("/dev/null", O_WRONLY);
        if (null_fd >= 0)
        {
            (void)dup2(null_fd, STDOUT_FILENO);
        }
        if (setns(ns, CLONE_NEWNET) != 0)
        {
            _exit(126);
        }
        execvp("ip", args);
        /* PATH may lack the sbin directories where iproute2 installs ip */
        execv("/usr/sbin/ip", args);
        execv("/sbin/ip", args);
        _exit(127);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
    {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void hosts_close(void)
{
    if (hosts.root >= 0)
    {
        (void)setns(hosts.root, CLONE_NEWNET);
    }
    int* fds[] = {&hosts.a, &hosts.b, &hosts.root};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
    {
        if (*fds[i] >= 0)
        {
            (void)close(*fds[i]);
            *fds[i] = -1;
        }
    }
}

/* Makes namespaces a and b joined by vA <-> vB, addressed and up. Returns 0, or -1 (with a line
 * on stderr saying why) when this machine does not allow it. */
static int hosts_make(void)
{
    hosts.root = open_own_netns();
    if (hosts.root < 0 || unshare(CLONE_NEWNET) != 0 || (hosts.a = open_own_netns()) < 0 ||
        unshare(CLONE_NEWNET) != 0 || (hosts.b = open_own_netns()) < 0 || setns(hosts.root, CLONE_NEWNET) != 0)
    {
        (void)fprintf(stderr, "network namespaces are not available here (errno %d)\n", errno);
        hosts_close();
        return -1;
    }
    char peer_ns[64];
    (void)snprintf(peer_ns, sizeof(peer_ns), "/proc/%d/fd/%d", (int)getpid(), hosts.b);
    char* const add[] = {"ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", peer_ns, NULL};
    char* const address_a[] = {"ip", "addr", "add", NETNS_ADDRESS_A "/24", "dev", "vA", NULL};
    char* const up_a[] = {"ip", "link", "set", "vA", "up", NULL};
    char* const address_b[] = {"ip", "addr", "add", NETNS_ADDRESS_B "/24", "dev", "vB", NULL};
    char* const up_b[] = {"ip", "link", "set", "vB", "up", NULL};
    int status = run_ip_in(hosts.a, add);
    if (status == 0)
    {
        status = run_ip_in(hosts.a, address_a) | run_ip_in(hosts.a, up_a) | run_ip_in(hosts.b, address_b) |
                 run_ip_in(hosts.b, up_b);
    }
    if (status != 0)
    {
        (void)fprintf(stderr, "cannot set up the veth pair between the namespaces (ip exit status %d)\n", status);
        hosts_close();
        return -1;
    }
    return 0;
}

static void set_link(const char* state_word)
{
    char* const args[] = {"ip", "link", "set", "vA", (char*)state_word, NULL};
    assert_int_equal(run_ip_in(hosts.a, args), 0);
}

/* A connection from b (fds[0], the client) to a (fds[1], accepted); this thread enters each
 * namespace only to make the sockets, which stay in their namespace wherever they are used. */
static void connect_across(int fds[2], uint32_t user_timeout_ms, int server_rcvbuf)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    assert_int_equal(inet_pton(AF_INET, NETNS_ADDRESS_A, &addr.sin_addr), 1);
    socklen_t length = sizeof(addr);

    assert_int_equal(setns(hosts.a, CLONE_NEWNET), 0);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(listener >= 0);
    if (server_rcvbuf > 0)
    {
        /* set before listen, so the accepted socket has it from the handshake on */
        assert_int_equal(setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &server_rcvbuf, sizeof(server_rcvbuf)), 0);
    }
    assert_int_equal(bind(listener, (const struct sockaddr*)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(listener, 1), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr*)&addr, &length), 0);

    assert_int_equal(setns(hosts.b, CLONE_NEWNET), 0);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(client >= 0);
    assert_int_equal(setns(hosts.root, CLONE_NEWNET), 0);

    if (user_timeout_ms != 0)
    {
        assert_int_equal(setsockopt(client, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms)), 0);
    }
    int small = 65536;
    assert_int_equal(setsockopt(client, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    assert_int_equal(connect(client, (const struct sockaddr*)&addr, sizeof(addr)), 0);
    int server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    assert_true(server >= 0);
    assert_int_equal(close(listener), 0);
    set_io_timeouts(server, 5000);
    fds[0] = client;
    fds[1] = server;
}

static int hosts_setup(void** state)
{
    (void)state;
    return hosts_make();
}

static int hosts_teardown(void** state)
{
    (void)state;
    hosts_close();
    return 0;
}

/* A reader on the other host: recv 4 KiB, check it, sleep 1 ms, until the end of stream, an
 * error or a wrong byte (error -2). */
typedef struct SLOW_READER_TAG
{
    int fd;
    uint64_t base;
    atomic_uint_fast64_t done;
    atomic_int error;
    pthread_t thread;
} SLOW_READER;

static void* slow_reader_run(void* arg)
{
    SLOW_READER* reader = arg;
    uint8_t buffer[4096];
    for (;;)
    {
        ssize_t got = recv(reader->fd, buffer, sizeof(buffer), 0);
        if (got < 0 && errno == EINTR)
        {
            continue;
        }
        if (got <= 0)
        {
            atomic_store(&reader->error, (got == 0) ? -1 : errno);
            return NULL;
        }
        uint64_t at = atomic_load(&reader->done);
        if (test_check_pattern(buffer, (size_t)got, reader->base + at) != (size_t)got)
        {
            atomic_store(&reader->error, -2);
            return NULL;
        }
        atomic_store(&reader->done, at + (uint64_t)got);
        test_sleep_ms(1);
    }
}

static void slow_reader_start(SLOW_READER* reader, int fd, uint64_t base)
{
    reader->fd = fd;
    reader->base = base;
    atomic_init(&reader->done, 0);
    atomic_init(&reader->error, 0);
    assert_int_equal(pthread_create(&reader->thread, NULL, slow_reader_run, reader), 0);
}

/* After the shutdown that wakes it, the reader ends at the end of stream (-1), having seen only
 * pattern bytes. */
static void slow_reader_join(SLOW_READER* reader)
{
    assert_int_equal(pthread_join(reader->thread, NULL), 0);
    assert_int_not_equal(atomic_load(&reader->error), -2);
}

#define NETNS_SEND_SIZE (64u * 1024u)
#define NETNS_SENDS 32u
/* 16 MiB: at the reader's 4 MB/s the stream lasts seconds, so it is still running when the link
 * goes down even on a loaded machine where `ip` takes a while. */
#define NETNS_DOWN_SENDS 256u

static void stream_between_two_hosts_arrives_whole_and_in_order(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    connect_across(fds, 0, 0);
    ASYNC_SOCKET_HANDLE socket = open_socket(fds[0]);
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)NETNS_SENDS * NETNS_SEND_SIZE);
    SEND_TRACK track;
    send_track_init(&track, NETNS_SENDS);
    for (uint32_t i = 0; i < NETNS_SENDS; i++)
    {
        assert_int_equal(send_piece(socket, source, (uint64_t)i * NETNS_SEND_SIZE, NETNS_SEND_SIZE, 2, &track.slots[i], NULL),
                         ASYNC_SOCKET_SEND_SYNC_OK);
    }
    plain_read_all(fds[1], STREAM_BASE_A, (uint64_t)NETNS_SENDS * NETNS_SEND_SIZE);
    TEST_WAIT_UNTIL(atomic_load(&track.done) == NETNS_SENDS, 5000);
    send_track_check_all(&track, ASYNC_SOCKET_SEND_OK);
    /* and back: the other host writes, the async socket receives every byte */
    plain_write_all(fds[1], STREAM_BASE_B, 100000);
    receive_exactly(socket, STREAM_BASE_B, 100000);

    async_socket_close(socket);
    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    send_track_deinit(&track);
    free(source);
    env_end(&mark);
}

/* Waits until every send and the receive completed; on a timeout the failure says whether the
 * kernel had given up on the connection (then the library lost the event) or not. */
static void wait_for_all(int fd, SEND_TRACK* track, ONE_RX* rx, uint64_t down_at)
{
    while (atomic_load(&track->done) != NETNS_DOWN_SENDS || atomic_load(&rx->done) != 1)
    {
        if (test_now_ms() - down_at > NETNS_USER_TIMEOUT_MS + NETNS_SLACK_MS)
        {
            struct tcp_info info;
            socklen_t length = sizeof(info);
            memset(&info, 0, sizeof(info));
            (void)getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length);
            fail_msg("%llu ms after the link went down: %u of %u sends and %d of 1 receive called back; "
                     "TCP state %u (7: closed by the kernel), %u unacked, %u retransmits, %u probes",
                     (unsigned long long)(test_now_ms() - down_at), atomic_load(&track->done), NETNS_DOWN_SENDS,
                     atomic_load(&rx->done), info.tcpi_state, info.tcpi_unacked, info.tcpi_retransmits, info.tcpi_probes);
        }
        test_sleep_ms(1);
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_046 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_037 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_038 */
static void link_down_mid_stream_fails_pending_operations_within_the_user_timeout(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    connect_across(fds, NETNS_USER_TIMEOUT_MS, 32768);
    ASYNC_SOCKET_HANDLE socket = open_socket(fds[0]);
    uint8_t* source = make_pattern(STREAM_BASE_A, (size_t)NETNS_DOWN_SENDS * NETNS_SEND_SIZE);
    SEND_TRACK track;
    send_track_init(&track, NETNS_DOWN_SENDS);
    ONE_RX rx;
    uint8_t rx_buffer[256];
    one_rx_post(socket, &rx, rx_buffer, sizeof(rx_buffer));
    for (uint32_t i = 0; i < NETNS_DOWN_SENDS; i++)
    {
        assert_int_equal(send_piece(socket, source, (uint64_t)i * NETNS_SEND_SIZE, NETNS_SEND_SIZE, 2, &track.slots[i], NULL),
                         ASYNC_SOCKET_SEND_SYNC_OK);
    }

    /* The other host reads slowly (4 KiB per ms) and checks every byte, so that data is in flight
     * and sends are pending when the link goes down under the stream. An idle connection would not
     * notice a dead link at all: TCP_USER_TIMEOUT counts only while data is unacknowledged. */
    SLOW_READER reader;
    slow_reader_start(&reader, fds[1], STREAM_BASE_A);
    TEST_WAIT_UNTIL(atomic_load(&reader.done) >= 300000 || atomic_load(&reader.error) != 0, 5000);
    assert_int_equal(atomic_load(&reader.error), 0);
    unsigned done_before = atomic_load(&track.done);
    set_link("down");
    uint64_t down_at = test_now_ms();
    wait_for_all(fds[0], &track, &rx, down_at);
    uint64_t completed_ms = test_now_ms() - down_at;
    (void)printf("NETNS: link down with %u of %u sends done; all completed %llu ms later (TCP_USER_TIMEOUT %u ms): "
                 "%u ok, %u error, %u abandoned; receive %s\n",
                 done_before, NETNS_DOWN_SENDS, (unsigned long long)completed_ms, NETNS_USER_TIMEOUT_MS,
                 atomic_load(&track.ok), atomic_load(&track.errors), atomic_load(&track.abandoned),
                 MU_ASYNC_SOCKET_RECEIVE_RESULT_ToString((ASYNC_SOCKET_RECEIVE_RESULT)atomic_load(&rx.result)));

    for (uint32_t i = 0; i < NETNS_DOWN_SENDS; i++)
    {
        assert_int_equal(atomic_load(&track.slots[i].calls), 1);
    }
    /* The sends still pending when the link went down failed with ERROR, every one of them, and
     * so did the receive: the kernel reports the timeout to one call only, and nothing may read as
     * the clean close (ABANDONED) that the EPIPE and end of stream after it would suggest. */
    assert_true(atomic_load(&track.errors) > 0);
    assert_int_equal(atomic_load(&track.abandoned), 0);
    assert_int_equal(atomic_load(&track.ok) + atomic_load(&track.errors), NETNS_DOWN_SENDS);
    assert_int_equal(atomic_load(&rx.result), (int)ASYNC_SOCKET_RECEIVE_ERROR);
    assert_true(completed_ms <= NETNS_USER_TIMEOUT_MS + NETNS_SLACK_MS);
    /* Waking the reader: what it got before the link went down was the stream, exactly. */
    assert_int_equal(shutdown(fds[1], SHUT_RDWR), 0);
    slow_reader_join(&reader);

    async_socket_close(socket);
    async_socket_destroy(socket);
    assert_int_equal(close(fds[1]), 0);
    send_track_deinit(&track);
    free(source);
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(stream_between_two_hosts_arrives_whole_and_in_order, hosts_setup, hosts_teardown),
    cmocka_unit_test_setup_teardown(link_down_mid_stream_fails_pending_operations_within_the_user_timeout, hosts_setup, hosts_teardown),
};

/* Checks once, before any case runs, that namespaces can be made here; skips the whole
 * executable (exit 77) when not. */
int main(int argc, char** argv)
{
    if (hosts_make() != 0)
    {
        (void)printf("skipped: this machine does not allow private network namespaces with a veth pair\n");
        return NETNS_SKIP;
    }
    hosts_close();
    return test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), __FILE__);
}
