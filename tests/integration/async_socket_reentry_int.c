/* Integration test: a send callback that sends again, over real loopback TCP with large socket
 * buffers, so that the kernel accepts send after send at once. Calling each completion from
 * inside the send that the previous completion issued would nest one stack frame chain per
 * message until the stack overflows (200,000 messages of 64 bytes did, before the guarantee). */
#include "async_socket_data_helpers.h"
#include "test_main.h"

#define CHAIN_MESSAGES 200000u
#define CHAIN_MESSAGE_SIZE 64u

typedef struct CHAIN_TAG
{
    ASYNC_SOCKET_HANDLE socket;
    uint8_t* source;
    atomic_uint completed;
    atomic_uint failed;
    atomic_int depth;
    atomic_int max_depth;
} CHAIN;

static void chain_send_next(CHAIN* chain, uint32_t index);

static void chain_on_send(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    CHAIN* chain = context;
    int depth = atomic_fetch_add(&chain->depth, 1) + 1;
    int seen = atomic_load(&chain->max_depth);
    while (depth > seen && !atomic_compare_exchange_weak(&chain->max_depth, &seen, depth))
    {
    }
    if (result != ASYNC_SOCKET_SEND_OK)
    {
        (void)atomic_fetch_add(&chain->failed, 1);
    }
    else
    {
        uint32_t done = atomic_fetch_add(&chain->completed, 1) + 1;
        if (done < CHAIN_MESSAGES)
        {
            chain_send_next(chain, done);
        }
    }
    (void)atomic_fetch_sub(&chain->depth, 1);
}

static void chain_send_next(CHAIN* chain, uint32_t index)
{
    ASYNC_SOCKET_BUFFER payload = {
        .buffer = chain->source + (size_t)index * CHAIN_MESSAGE_SIZE,
        .length = CHAIN_MESSAGE_SIZE,
    };
    if (async_socket_send_async(chain->socket, &payload, 1, chain_on_send, chain) != ASYNC_SOCKET_SEND_SYNC_OK)
    {
        (void)atomic_fetch_add(&chain->failed, 1);
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_025 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void send_callback_that_sends_again_does_not_nest(void** state)
{
    (void)state;
    LEAK_MARK mark;
    env_begin(&mark);
    int fds[2];
    /* large buffers: the kernel takes every 64-byte send at once, the case that nested */
    make_pair(fds, 8 << 20, 8 << 20);

    const uint64_t total = (uint64_t)CHAIN_MESSAGES * CHAIN_MESSAGE_SIZE;
    CHAIN* chain = calloc(1, sizeof(CHAIN));
    assert_non_null(chain);
    chain->source = malloc((size_t)total);
    assert_non_null(chain->source);
    test_fill_pattern(chain->source, (size_t)total, STREAM_BASE_A);
    chain->socket = open_socket(fds[0]);

    PLAIN_IO reader;
    plain_io_init(&reader, fds[1], STREAM_BASE_A, total, 256 * 1024, 0);
    plain_io_start(&reader, plain_read_run);

    /* the first send comes from the test thread; every later one from a completion */
    chain_send_next(chain, 0);
    TEST_WAIT_UNTIL(atomic_load(&chain->completed) + atomic_load(&chain->failed) >= CHAIN_MESSAGES, 8000);
    plain_io_join_and_check(&reader);

    assert_int_equal(atomic_load(&chain->failed), 0);
    assert_int_equal(atomic_load(&chain->completed), CHAIN_MESSAGES);
    /* a completion never runs inside the callback of the send before it */
    assert_int_equal(atomic_load(&chain->max_depth), 1);

    async_socket_destroy(chain->socket);
    assert_int_equal(close(fds[1]), 0);
    free(chain->source);
    free(chain);
    env_end(&mark);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(send_callback_that_sends_again_does_not_nest),
};

TEST_MAIN(tests)
