/* Scenario "tls", the reference: a hand-written non-blocking OpenSSL loop on epoll, no library.
 *
 * Both ends of one loopback connection live in one thread, each an SSL object on its
 * non-blocking fd with OpenSSL's own socket BIO (SIGPIPE is ignored instead of MSG_NOSIGNAL),
 * OpenSSL's defaults except the pinned TLS 1.3 cipher suite and SSL_MODE_ENABLE_PARTIAL_WRITE |
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER (what any non-blocking writer of large buffers sets). Every
 * loop iteration gives each end one turn: it writes from its 4 x 64 KiB of outstanding sends
 * until OpenSSL says "want write" (a 64 KiB chunk that is written whole is replaced by the next
 * one, so 4 stay outstanding), then reads 64 KiB at a time until "want read", checking every
 * byte. epoll (level-triggered, EPOLLOUT only while a write waits for room) is asked only when an
 * iteration moved nothing.
 *
 * BENCH_TLS_KTLS=1 sets SSL_OP_ENABLE_KTLS; the result line says whether OpenSSL got the kernel
 * to take over each direction (ktls_send, ktls_recv). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_common.h"
#include "bench_tls_common.h"

#define IMPL "openssl_epoll"
#define HANDSHAKE_LIMIT_NS (10ull * 1000000000ull)
#define STALL_NS (10ull * 1000000000ull)

static BENCH_CONFIG config;

_Noreturn static void fail(const char* what)
{
    ERR_print_errors_fp(stderr);
    bench_fail(IMPL, &config, what);
}

typedef struct END_TAG
{
    int fd;
    SSL* ssl;
    uint64_t send_base;
    uint64_t receive_base;
    uint64_t sent;        /* bytes SSL_write took */
    uint64_t queued;      /* bytes handed to the end's outstanding sends (sent + what is left of them) */
    uint64_t received;
    uint64_t measured_bytes;
    uint64_t mismatches;
    bool wants_out;       /* the last write said "want write": EPOLLOUT is armed */
    uint8_t* buffer;
} END;

static int epoll_fd = -1;

static void set_interest(END* end, bool out)
{
    if (end->wants_out == out)
    {
        return;
    }
    struct epoll_event event = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = end };
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, end->fd, &event) != 0)
    {
        fail("epoll_ctl failed");
    }
    end->wants_out = out;
}

/* Writes from the outstanding sends until OpenSSL wants room. Returns the bytes written. */
static uint64_t end_write(END* end, bool stopping)
{
    uint64_t moved = 0;
    for (;;)
    {
        if (!stopping)
        {
            /* a chunk written whole is replaced at once: 4 x 64 KiB stay outstanding */
            while (end->queued - end->sent < (uint64_t)BENCH_STREAM_OUTSTANDING * BENCH_STREAM_CHUNK)
            {
                end->queued += BENCH_STREAM_CHUNK;
            }
        }
        if (end->sent == end->queued)
        {
            set_interest(end, false);
            return moved;
        }
        uint64_t chunk_left = BENCH_STREAM_CHUNK - (end->sent % BENCH_STREAM_CHUNK);
        int written = SSL_write(end->ssl, bench_pattern_at(end->send_base + end->sent), (int)chunk_left);
        if (written <= 0)
        {
            int error = SSL_get_error(end->ssl, written);
            if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ)
            {
                set_interest(end, error == SSL_ERROR_WANT_WRITE);
                return moved;
            }
            fail("SSL_write failed");
        }
        end->sent += (uint64_t)written;
        moved += (uint64_t)written;
    }
}

/* Reads until OpenSSL has nothing more. Returns the bytes read. */
static uint64_t end_read(END* end, bool measuring)
{
    uint64_t moved = 0;
    for (;;)
    {
        int got = SSL_read(end->ssl, end->buffer, (int)BENCH_RECV_BUFFER_SIZE);
        if (got <= 0)
        {
            int error = SSL_get_error(end->ssl, got);
            if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
            {
                return moved;
            }
            fail("SSL_read failed");
        }
        end->mismatches += bench_pattern_mismatches(end->buffer, (size_t)got, end->receive_base + end->received);
        end->received += (uint64_t)got;
        if (measuring)
        {
            end->measured_bytes += (uint64_t)got;
        }
        moved += (uint64_t)got;
    }
}

static SSL_CTX* make_ctx(bool server, const BENCH_TLS_FILES* files)
{
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_ciphersuites(ctx, bench_tls_cipher_suites()) != 1)
    {
        fail("SSL_CTX setup failed");
    }
    (void)SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (bench_tls_want_ktls())
    {
        (void)SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    }
    if (server && (SSL_CTX_use_certificate_file(ctx, files->certificate, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, files->key, SSL_FILETYPE_PEM) != 1))
    {
        fail("loading the certificate failed");
    }
    return ctx;
}

static void end_init(END* end, SSL_CTX* ctx, int fd, bool server, uint64_t send_base, uint64_t receive_base)
{
    end->fd = fd;
    end->ssl = SSL_new(ctx);
    end->buffer = malloc(BENCH_RECV_BUFFER_SIZE);
    if (end->ssl == NULL || end->buffer == NULL || bench_set_nonblocking(fd) != 0 || SSL_set_fd(end->ssl, fd) != 1)
    {
        fail("SSL setup failed");
    }
    if (server)
    {
        SSL_set_accept_state(end->ssl);
    }
    else
    {
        SSL_set_connect_state(end->ssl);
    }
    end->send_base = send_base;
    end->receive_base = receive_base;
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = end };
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
    {
        fail("epoll_ctl failed");
    }
}

/* Both handshakes, driven in turn until both are done. */
static void handshake(END* ends)
{
    uint64_t deadline = bench_now_ns() + HANDSHAKE_LIMIT_NS;
    bool done[2] = { false, false };
    while (!done[0] || !done[1])
    {
        for (int i = 0; i < 2; i++)
        {
            if (done[i])
            {
                continue;
            }
            int result = SSL_do_handshake(ends[i].ssl);
            int error = (result == 1) ? SSL_ERROR_NONE : SSL_get_error(ends[i].ssl, result);
            if (result == 1)
            {
                done[i] = true;
            }
            else if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE)
            {
                fail("the TLS handshake failed");
            }
        }
        if (bench_now_ns() > deadline)
        {
            fail("the TLS handshake did not finish");
        }
    }
}

/* Runs the loop until `until_ns`, or, when stopping, until both directions have drained. */
static void run_loop(END* ends, uint64_t until_ns, bool measuring, bool stopping)
{
    struct epoll_event events[4];
    uint64_t last_progress = bench_now_ns();
    for (;;)
    {
        uint64_t moved = 0;
        for (int i = 0; i < 2; i++)
        {
            moved += end_write(&ends[i], stopping);
            moved += end_read(&ends[i], measuring);
        }
        uint64_t now = bench_now_ns();
        if (stopping ? (ends[0].received == ends[1].sent && ends[1].received == ends[0].sent &&
                        ends[0].sent == ends[0].queued && ends[1].sent == ends[1].queued) : now >= until_ns)
        {
            return;
        }
        if (moved > 0)
        {
            last_progress = now;
            continue;
        }
        if (now - last_progress > STALL_NS)
        {
            fail("the TLS loop stalled");
        }
        if (epoll_wait(epoll_fd, events, 4, 10) < 0 && errno != EINTR)
        {
            fail("epoll_wait failed");
        }
    }
}

static int ktls_state(BIO* bio, bool send)
{
    return send ? (int)BIO_get_ktls_send(bio) : (int)BIO_get_ktls_recv(bio);
}

static void run_tls(void)
{
    BENCH_TLS_FILES files;
    BENCH_RESULT result;
    END ends[2]; /* [0] client, [1] server */
    int listen_fd = bench_listen();
    int client_fd = -1;
    int server_fd = -1;
    memset(&result, 0, sizeof(result));
    memset(ends, 0, sizeof(ends));
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0 || listen_fd < 0 || bench_tls_files_make(&files) != 0 || bench_connect_pair(listen_fd, &client_fd, &server_fd) != 0)
    {
        fail("setup failed");
    }
    SSL_CTX* client_ctx = make_ctx(false, &files);
    SSL_CTX* server_ctx = make_ctx(true, &files);
    end_init(&ends[0], client_ctx, client_fd, false, 0, BENCH_TLS_SERVER_STREAM);
    end_init(&ends[1], server_ctx, server_fd, true, BENCH_TLS_SERVER_STREAM, 0);
    handshake(ends);

    run_loop(ends, bench_now_ns() + config.warmup_ns, false, false);
    bench_snapshot(&result.start);
    run_loop(ends, bench_now_ns() + config.duration_ns, true, false);
    bench_snapshot(&result.end);
    run_loop(ends, 0, false, true);

    result.bytes = (ends[0].measured_bytes + ends[1].measured_bytes) / 2; /* each way */
    result.operations = result.bytes / BENCH_STREAM_CHUNK;
    result.mismatches = ends[0].mismatches + ends[1].mismatches;
    result.ok = result.mismatches == 0;
    result.error = result.ok ? NULL : "TLS data not intact";
    {
        char extra[200];
        const SSL_CIPHER* cipher = SSL_get_current_cipher(ends[0].ssl);
        (void)snprintf(extra, sizeof(extra), "cipher=%s version=%s ktls_send=%d ktls_recv=%d stream_total=%llu",
            (cipher != NULL) ? SSL_CIPHER_get_name(cipher) : "none", SSL_get_version(ends[0].ssl),
            ktls_state(SSL_get_wbio(ends[0].ssl), true), ktls_state(SSL_get_rbio(ends[0].ssl), false),
            (unsigned long long)(ends[0].received + ends[1].received));
        bench_report(IMPL, &config, &result, extra);
    }
    for (int i = 0; i < 2; i++)
    {
        SSL_free(ends[i].ssl);
        free(ends[i].buffer);
        (void)close(ends[i].fd);
    }
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    bench_tls_files_remove(&files);
    (void)close(epoll_fd);
    (void)close(listen_fd);
}

int main(int argc, char** argv)
{
    bench_parse_args(argc, argv, &config);
    if (config.kind != BENCH_TLS)
    {
        fail("this program runs the tls scenario only");
    }
    (void)signal(SIGPIPE, SIG_IGN);
    bench_pattern_init();
    run_tls();
    return 0;
}
