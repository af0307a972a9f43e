/* Integration tests of what a server asks of a connection: the bytes still queued for sending,
 * the peer's address, and the signal mask of the threads its callbacks run on. Real sockets on
 * 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>

#include "lifecycle_int_util.h"
#include "log_capture.h"
#include "c_pal/threadpool.h"
#include "test_main.h"

#define CHUNK (256 * 1024)
#define CHUNKS 4

static atomic_int sends_done;

static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    (void)context;
    (void)result;
    (void)atomic_fetch_add(&sends_done, 1);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_175 */
static void queued_send_bytes_count_what_the_kernel_has_not_taken(void** state)
{
    (void)state;
    LEAK_CHECK check;
    leak_check_begin(&check);
    assert_int_equal(platform_init(), 0);
    atomic_store(&sends_done, 0);
    int peer;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(16 * 1024, 16 * 1024, &peer, NULL);
    assert_true(async_socket_get_queued_send_bytes(socket) == 0);
    uint8_t* data = malloc(CHUNK * CHUNKS);
    assert_non_null(data);
    test_fill_pattern(data, CHUNK * CHUNKS, 0);
    for (int i = 0; i < CHUNKS; i++)
    {
        ASYNC_SOCKET_BUFFER buffer = {.buffer = data + (size_t)i * CHUNK, .length = CHUNK};
        assert_int_equal(async_socket_send_async(socket, &buffer, 1, on_sent, NULL), ASYNC_SOCKET_SEND_SYNC_OK);
    }
    /* the peer reads nothing yet: most of the megabyte waits in the socket's queue */
    uint64_t queued = async_socket_get_queued_send_bytes(socket);
    assert_true(queued > (uint64_t)CHUNK * CHUNKS / 2);
    assert_true(queued <= (uint64_t)CHUNK * CHUNKS);
    /* the peer reads half: what is queued shrinks by at most that, never grows */
    uint8_t* in = malloc(CHUNK * CHUNKS);
    assert_non_null(in);
    test_read_exact(peer, in, CHUNK * CHUNKS / 2);
    /* a sendmsg in progress on a worker still counts its bytes until it returns (slow under
     * valgrind): wait for it, boundedly */
    uint64_t later = async_socket_get_queued_send_bytes(socket);
    for (int i = 0; i < 2000 && later > (uint64_t)CHUNK * CHUNKS / 2; i++)
    {
        test_sleep_ms(1);
        later = async_socket_get_queued_send_bytes(socket);
    }
    assert_true(later < queued);
    assert_true(later <= (uint64_t)CHUNK * CHUNKS / 2);
    test_read_exact(peer, in + CHUNK * CHUNKS / 2, CHUNK * CHUNKS / 2);
    assert_int_equal(test_check_pattern(in, CHUNK * CHUNKS, 0), CHUNK * CHUNKS);
    for (int i = 0; i < 2000 && atomic_load(&sends_done) < CHUNKS; i++)
    {
        test_sleep_ms(1);
    }
    assert_int_equal(atomic_load(&sends_done), CHUNKS);
    assert_true(async_socket_get_queued_send_bytes(socket) == 0);
    log_capture_start();
    assert_true(async_socket_get_queued_send_bytes(NULL) == 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 1);
    async_socket_destroy(socket);
    (void)close(peer);
    free(data);
    free(in);
    platform_deinit();
    leak_check_end(&check);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_176 */
static void the_peer_address_is_the_peer_s_own_name_for_itself(void** state)
{
    (void)state;
    LEAK_CHECK check;
    leak_check_begin(&check);
    assert_int_equal(platform_init(), 0);
    int peer;
    ASYNC_SOCKET_HANDLE socket = open_tcp_async(0, 0, &peer, NULL);
    struct sockaddr_in name;
    socklen_t length = sizeof(name);
    assert_int_equal(getsockname(peer, (struct sockaddr*)&name, &length), 0);
    char expected[ASYNC_SOCKET_ADDRESS_TEXT_SIZE];
    (void)snprintf(expected, sizeof(expected), "127.0.0.1:%u", (unsigned)ntohs(name.sin_port));
    char address[ASYNC_SOCKET_ADDRESS_TEXT_SIZE];
    assert_int_equal(async_socket_get_peer_address(socket, address, sizeof(address)), 0);
    assert_string_equal(address, expected);
    log_capture_start();
    char small[8];
    assert_int_not_equal(async_socket_get_peer_address(socket, small, sizeof(small)), 0);
    assert_int_not_equal(async_socket_get_peer_address(NULL, address, sizeof(address)), 0);
    async_socket_close(socket);
    assert_int_not_equal(async_socket_get_peer_address(socket, address, sizeof(address)), 0);
    ASSERT_ERROR_LINES(log_capture_stop(), 3);
    async_socket_destroy(socket);
    (void)close(peer);
    platform_deinit();
    leak_check_end(&check);
}

typedef struct MASK_TAG
{
    atomic_int done;
    atomic_int sigint_blocked;
    atomic_int sigterm_blocked;
    atomic_int sigsegv_blocked;
} MASK;

static void read_mask(void* context)
{
    MASK* mask = context;
    sigset_t current;
    (void)pthread_sigmask(SIG_BLOCK, NULL, &current);
    atomic_store(&mask->sigint_blocked, sigismember(&current, SIGINT));
    atomic_store(&mask->sigterm_blocked, sigismember(&current, SIGTERM));
    atomic_store(&mask->sigsegv_blocked, sigismember(&current, SIGSEGV));
    atomic_store(&mask->done, 1);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_177: the caller of platform_init blocks nothing, yet the workers
 * block SIGINT and SIGTERM (they reach the application's threads) and leave faults alone. */
static void workers_block_asynchronous_signals_whatever_the_caller_s_mask(void** state)
{
    (void)state;
    sigset_t none;
    sigset_t saved;
    (void)sigemptyset(&none);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &none, &saved), 0);
    assert_int_equal(platform_init(), 0);
    THREADPOOL_HANDLE pool = threadpool_create(NULL);
    assert_non_null(pool);
    assert_int_equal(threadpool_open(pool), 0);
    MASK mask = {0};
    assert_int_equal(threadpool_schedule_work(pool, read_mask, &mask), 0);
    for (int i = 0; i < 5000 && atomic_load(&mask.done) == 0; i++)
    {
        test_sleep_ms(1);
    }
    assert_int_equal(atomic_load(&mask.done), 1);
    assert_int_equal(atomic_load(&mask.sigint_blocked), 1);
    assert_int_equal(atomic_load(&mask.sigterm_blocked), 1);
    assert_int_equal(atomic_load(&mask.sigsegv_blocked), 0);
    threadpool_destroy(pool);
    platform_deinit();
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &saved, NULL), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(queued_send_bytes_count_what_the_kernel_has_not_taken),
    cmocka_unit_test(the_peer_address_is_the_peer_s_own_name_for_itself),
    cmocka_unit_test(workers_block_asynchronous_signals_whatever_the_caller_s_mask),
};

TEST_MAIN(tests)
