/* Scenario "tls" with this library: async_socket_tls on both ends of one loopback connection,
 * the cipher suite pinned with ASYNC_SOCKET_TLS_CONFIG.cipher_suites (the same one the OpenSSL
 * loop pins), an execution engine passed to create as c-pal code does.
 *
 * Each end is driven from its callbacks the way the streaming scenario is: every send
 * completion returns a credit and the end's pump issues the next 64 KiB send while it holds one
 * (4 outstanding); BENCH_STREAM_RECEIVES receives of 64 KiB stay posted, and each receive
 * callback checks its bytes and reposts. The main thread only starts the run, switches the
 * phases and waits for both directions to drain. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/async_socket_tls.h"
#include "c_pal/execution_engine.h"
#include "c_pal/platform.h"

#include "bench_common.h"
#include "bench_tls_common.h"

#define IMPL "async_socket_tls"
#define WAIT_LIMIT_NS (20ull * 1000000000ull)

static BENCH_CONFIG config;
static atomic_int phase;
static atomic_bool tearing_down;

_Noreturn static void fail(const char* what)
{
    bench_fail(IMPL, &config, what);
}

typedef struct END_TAG END;

typedef struct RECEIVE_SLOT_TAG
{
    END* end;
    uint8_t* buffer;
    ASYNC_SOCKET_BUFFER descriptor;
} RECEIVE_SLOT;

/* One end of the connection: it sends its own stream and receives the peer's. */
struct END_TAG
{
    ASYNC_SOCKET_TLS_HANDLE tls;
    ASYNC_SOCKET_HANDLE socket;
    uint64_t send_base;    /* pattern offset of the stream this end sends */
    uint64_t receive_base; /* ... and of the one it receives */
    atomic_uint credits;
    atomic_uint outstanding;
    atomic_bool pumping;
    uint64_t next_offset;  /* owned by the pump */
    RECEIVE_SLOT slots[BENCH_STREAM_RECEIVES];
    atomic_uint_fast64_t received;
    uint64_t measured_bytes;
    uint64_t mismatches;
};

static _Thread_local bool inside_send;

static void pump(END* end);

static void on_sent(void* context, ASYNC_SOCKET_SEND_RESULT send_result)
{
    END* end = context;
    if (send_result != ASYNC_SOCKET_SEND_OK && !atomic_load(&tearing_down))
    {
        fail("a TLS send failed");
    }
    (void)atomic_fetch_add(&end->credits, 1);
    (void)atomic_fetch_sub(&end->outstanding, 1);
    if (!inside_send)
    {
        pump(end);
    }
}

/* Issues sends while the end holds credits; one thread at a time pumps an end. */
static void pump(END* end)
{
    for (;;)
    {
        if (atomic_exchange(&end->pumping, true))
        {
            return;
        }
        while (atomic_load(&end->credits) > 0 && atomic_load(&phase) != BENCH_PHASE_STOP)
        {
            ASYNC_SOCKET_BUFFER buffer = { .buffer = (void*)bench_pattern_at(end->send_base + end->next_offset), .length = BENCH_STREAM_CHUNK };
            (void)atomic_fetch_sub(&end->credits, 1);
            (void)atomic_fetch_add(&end->outstanding, 1);
            end->next_offset += BENCH_STREAM_CHUNK;
            inside_send = true;
            ASYNC_SOCKET_SEND_SYNC_RESULT sync_result = async_socket_send_async(end->socket, &buffer, 1, on_sent, end);
            inside_send = false;
            if (sync_result != ASYNC_SOCKET_SEND_SYNC_OK)
            {
                fail("async_socket_send_async failed");
            }
        }
        atomic_store(&end->pumping, false);
        if (atomic_load(&end->credits) == 0 || atomic_load(&phase) == BENCH_PHASE_STOP)
        {
            return;
        }
    }
}

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received);

static void post_receive(RECEIVE_SLOT* slot)
{
    slot->descriptor.buffer = slot->buffer;
    slot->descriptor.length = BENCH_RECV_BUFFER_SIZE;
    if (async_socket_receive_async(slot->end->socket, &slot->descriptor, 1, on_received, slot) != 0 && !atomic_load(&tearing_down))
    {
        fail("async_socket_receive_async failed");
    }
}

static void on_received(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes_received)
{
    RECEIVE_SLOT* slot = context;
    END* end = slot->end;
    if (result != ASYNC_SOCKET_RECEIVE_OK || bytes_received == 0)
    {
        if (atomic_load(&tearing_down))
        {
            return;
        }
        fail("TLS receive failed");
    }
    /* the receives of one end complete one at a time */
    uint64_t received = atomic_load_explicit(&end->received, memory_order_relaxed);
    end->mismatches += bench_pattern_mismatches(slot->buffer, bytes_received, end->receive_base + received);
    if (atomic_load_explicit(&phase, memory_order_relaxed) == BENCH_PHASE_MEASURE)
    {
        end->measured_bytes += bytes_received;
    }
    atomic_store_explicit(&end->received, received + bytes_received, memory_order_release);
    post_receive(slot);
}

static void on_open_complete(void* context, ASYNC_SOCKET_OPEN_RESULT open_result)
{
    *(ASYNC_SOCKET_OPEN_RESULT*)context = open_result;
}

static void end_open(END* end, ASYNC_SOCKET_TLS_CONTEXT_HANDLE context, EXECUTION_ENGINE_HANDLE engine, int fd, uint64_t send_base, uint64_t receive_base)
{
    ASYNC_SOCKET_OPEN_RESULT open_result = ASYNC_SOCKET_OPEN_ERROR;
    end->tls = async_socket_tls_create(context, engine, fd);
    end->socket = (end->tls == NULL) ? NULL : async_socket_tls_get_async_socket(end->tls);
    if (end->socket == NULL || async_socket_open_async(end->socket, on_open_complete, &open_result) != 0 || open_result != ASYNC_SOCKET_OPEN_OK)
    {
        fail("creating or opening a TLS socket failed");
    }
    end->send_base = send_base;
    end->receive_base = receive_base;
    for (uint32_t i = 0; i < BENCH_STREAM_RECEIVES; i++)
    {
        end->slots[i].end = end;
        end->slots[i].buffer = malloc(BENCH_RECV_BUFFER_SIZE);
        if (end->slots[i].buffer == NULL)
        {
            fail("out of memory");
        }
    }
}

static bool drained(END* ends, uint64_t deadline)
{
    for (;;)
    {
        bool done = true;
        for (int i = 0; i < 2; i++)
        {
            END* peer = &ends[1 - i];
            done = done && atomic_load(&ends[i].outstanding) == 0 && !atomic_load(&ends[i].pumping) &&
                atomic_load(&peer->received) >= ends[i].next_offset;
        }
        if (done)
        {
            return true;
        }
        if (bench_now_ns() > deadline)
        {
            return false;
        }
        bench_sleep_ns(1000000);
    }
}

static ASYNC_SOCKET_TLS_CONTEXT_HANDLE make_context(ASYNC_SOCKET_TLS_ROLE role, const BENCH_TLS_FILES* files)
{
    ASYNC_SOCKET_TLS_CONFIG tls_config = {
        .role = role,
        .certificate_file = (role == ASYNC_SOCKET_TLS_ROLE_SERVER) ? files->certificate : NULL,
        .private_key_file = (role == ASYNC_SOCKET_TLS_ROLE_SERVER) ? files->key : NULL,
        .verify_peer = false,
        .cipher_suites = bench_tls_cipher_suites(),
    };
    ASYNC_SOCKET_TLS_CONTEXT_HANDLE context = async_socket_tls_context_create(&tls_config);
    if (context == NULL)
    {
        fail("async_socket_tls_context_create failed");
    }
    return context;
}

static void run_tls(void)
{
    BENCH_TLS_FILES files;
    BENCH_RESULT result;
    END* ends = calloc(2, sizeof(END)); /* [0] client, [1] server */
    int listen_fd = bench_listen();
    int client_fd = -1;
    int server_fd = -1;
    memset(&result, 0, sizeof(result));
    if (ends == NULL || listen_fd < 0 || bench_tls_files_make(&files) != 0 || bench_connect_pair(listen_fd, &client_fd, &server_fd) != 0)
    {
        fail("setup failed");
    }
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(NULL);
    ASYNC_SOCKET_TLS_CONTEXT_HANDLE client_context = make_context(ASYNC_SOCKET_TLS_ROLE_CLIENT, &files);
    ASYNC_SOCKET_TLS_CONTEXT_HANDLE server_context = make_context(ASYNC_SOCKET_TLS_ROLE_SERVER, &files);
    if (engine == NULL)
    {
        fail("execution_engine_create failed");
    }
    end_open(&ends[0], client_context, engine, client_fd, 0, BENCH_TLS_SERVER_STREAM);
    end_open(&ends[1], server_context, engine, server_fd, BENCH_TLS_SERVER_STREAM, 0);

    atomic_store(&phase, BENCH_PHASE_WARMUP);
    for (int i = 0; i < 2; i++)
    {
        for (uint32_t k = 0; k < BENCH_STREAM_RECEIVES; k++)
        {
            post_receive(&ends[i].slots[k]);
        }
    }
    for (int i = 0; i < 2; i++)
    {
        atomic_store(&ends[i].credits, BENCH_STREAM_OUTSTANDING);
        pump(&ends[i]);
    }
    bench_sleep_ns(config.warmup_ns);
    bench_snapshot(&result.start);
    atomic_store(&phase, BENCH_PHASE_MEASURE);
    bench_sleep_ns(config.duration_ns);
    atomic_store(&phase, BENCH_PHASE_STOP);
    bench_snapshot(&result.end);
    if (!drained(ends, bench_now_ns() + WAIT_LIMIT_NS))
    {
        fail("the TLS streams did not drain");
    }

    atomic_store(&tearing_down, true);
    /* close_notify first: the peer's pending receives then end without a warning */
    async_socket_tls_close(ends[0].tls);
    async_socket_tls_close(ends[1].tls);
    bool intact = true;
    for (int i = 0; i < 2; i++)
    {
        async_socket_tls_destroy(ends[i].tls);
        result.bytes += ends[i].measured_bytes;
        result.mismatches += ends[i].mismatches;
        intact = intact && atomic_load(&ends[i].received) == ends[1 - i].next_offset;
    }
    result.bytes /= 2; /* each way */
    result.operations = result.bytes / BENCH_STREAM_CHUNK;
    result.ok = intact && result.mismatches == 0;
    result.error = result.ok ? NULL : "TLS data not intact";
    {
        char extra[160];
        (void)snprintf(extra, sizeof(extra), "cipher=%s stream_total=%llu", bench_tls_cipher_suites(),
            (unsigned long long)(atomic_load(&ends[0].received) + atomic_load(&ends[1].received)));
        bench_report(IMPL, &config, &result, extra);
    }
    async_socket_tls_context_destroy(client_context);
    async_socket_tls_context_destroy(server_context);
    execution_engine_dec_ref(engine);
    for (int i = 0; i < 2; i++)
    {
        for (uint32_t k = 0; k < BENCH_STREAM_RECEIVES; k++)
        {
            free(ends[i].slots[k].buffer);
        }
    }
    free(ends);
    bench_tls_files_remove(&files);
    (void)close(listen_fd);
}

int main(int argc, char** argv)
{
    bench_parse_args(argc, argv, &config);
    if (config.kind != BENCH_TLS)
    {
        fail("this program runs the tls scenario only");
    }
    bench_pattern_init();
    if (platform_init() != 0)
    {
        fail("platform_init failed");
    }
    run_tls();
    platform_deinit();
    return 0;
}
