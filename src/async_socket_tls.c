/* async_socket_tls: TLS over an async socket's custom transport (OpenSSL).
 *
 * The async socket calls on_send / on_recv (tls_on_send / tls_on_recv) for one buffer at a time;
 * they run SSL_write / SSL_read, which move the encrypted bytes over the non-blocking fd through
 * a small BIO of our own. OpenSSL's "try again" answers become EAGAIN, so the operation waits
 * for the fd's next readiness, and the library lets any readiness retry both directions (devdoc
 * D21), which TLS needs: a write may have to read a handshake record first, and a read may have
 * to write.
 *
 * The BIO never tells OpenSSL to retry a write: what the kernel does not take is queued in the
 * BIO and sent first on the next call. OpenSSL requires a write it was told to retry to be retried
 * with the same arguments before anything else writes; an SSL_read that must answer a peer's
 * KeyUpdate writes, and with a retry pending that answer fails ("bad length"). With no retry ever
 * pending, reads and writes interleave freely (test: tls_raw_peer_key_updates_during_a_16_mib_duplex_transfer). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "c_pal/async_socket_tls.h"
#include "log_internal.h"

MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_TLS_ROLE, ASYNC_SOCKET_TLS_ROLE_VALUES)

/* The most one hook call hands to OpenSSL, whose lengths are int. The library calls again for
 * the rest. */
#define TLS_MAX_CALL (1 << 30)

/* Room for the one log line a failure gets. */
#define TLS_MESSAGE_SIZE 320

/* What OpenSSL reads from the fd at a time: it reads ahead, several records per recv. */
#define TLS_READ_BUFFER (64 * 1024)

/* The most the BIO queues: a send is refused while anything is queued, so the queue holds at most
 * one record (about 16 KiB) plus the small records that reads write (KeyUpdate answers, alerts).
 * Only a peer that asks for key updates by the thousand without reading gets near it; its
 * connection then fails with ENOBUFS rather than growing memory without a bound. */
#define TLS_OUT_MAX (1024 * 1024)

/* A drained queue keeps a buffer of up to this capacity (one full record and the small ones
 * behind it), so a connection whose sends keep meeting a full socket buffer does not allocate
 * per send; a bigger one, which only a flood of key updates makes, is freed when it drains.
 * A connection whose sends never met a full socket buffer has none. */
#define TLS_OUT_KEEP (32 * 1024)

typedef struct ASYNC_SOCKET_TLS_CONTEXT_TAG
{
    SSL_CTX* ssl_ctx;
    ASYNC_SOCKET_TLS_ROLE role;
    bool verify_peer;
    char* server_name;
} ASYNC_SOCKET_TLS_CONTEXT;

/* The BIO's queue of encrypted bytes the kernel has not taken yet. Used under the TLS lock. */
typedef struct TLS_OUT_TAG
{
    int fd;
    uint8_t* data;   /* NULL until the kernel first leaves bytes; see TLS_OUT_KEEP */
    size_t capacity;
    size_t head;     /* data[head, head + length) are queued */
    size_t length;
} TLS_OUT;

typedef struct ASYNC_SOCKET_TLS_TAG
{
    /* An SSL object is not safe for concurrent use, and the hooks may run at the same time on two
     * threads (an inline send on the caller's thread while a worker receives). The lock is held
     * only around OpenSSL calls, which never block on this non-blocking fd. */
    pthread_mutex_t lock;
    SSL* ssl;
    ASYNC_SOCKET_HANDLE async_socket;
    int failed_errno;   /* 0 while healthy; after a fatal error, what every hook call returns */
    bool closed;        /* async_socket_tls_close has run */
    TLS_OUT out;        /* the BIO's data */
    int held;           /* bytes SSL_write took whose record is still (partly) queued in `out` */
} ASYNC_SOCKET_TLS;

/* ---- the BIO: the socket, written with MSG_NOSIGNAL ---- */

/* OpenSSL's socket BIO writes with write(2), which raises SIGPIPE when the peer has gone; the
 * library promises that no SIGPIPE is raised, so the fd is driven by this BIO instead. */
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;
static BIO_METHOD* bio_method;

static int bio_fd(BIO* bio)
{
    return ((TLS_OUT*)BIO_get_data(bio))->fd;
}

/* send(2) without SIGPIPE; a full socket takes 0 bytes. -1 only for a real error (errno set). */
static ssize_t send_some(int fd, const uint8_t* data, size_t length)
{
    ssize_t written;
    do
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_012 */
        written = send(fd, data, length, MSG_NOSIGNAL);
    } while (written < 0 && errno == EINTR);
    if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    {
        written = 0;
    }
    return written;
}

/* Sends what the queue holds. 0 when it is empty now; -1 with errno EAGAIN when the socket is
 * full, or with the socket's errno when it failed. */
static int out_flush(TLS_OUT* out)
{
    while (out->length > 0)
    {
        ssize_t written = send_some(out->fd, out->data + out->head, out->length);
        if (written <= 0)
        {
            if (written == 0)
            {
                errno = EAGAIN;
            }
            return -1;
        }
        out->length -= (size_t)written;
        out->head = (out->length == 0) ? 0 : out->head + (size_t)written;
    }
    if (out->capacity > TLS_OUT_KEEP)
    {
        free(out->data);
        out->data = NULL;
        out->capacity = 0;
    }
    return 0;
}

/* The queue's buffer is kept while it drains and refills (TLS_OUT_KEEP), so a steady transfer
 * that meets a full socket buffer does not allocate per send (make bench, tls row). */
static bool out_append(TLS_OUT* out, const uint8_t* data, size_t length)
{
    if (out->head + out->length + length > out->capacity && out->head != 0)
    {
        (void)memmove(out->data, out->data + out->head, out->length);
        out->head = 0;
    }
    if (out->length + length > out->capacity)
    {
        size_t capacity = (out->capacity == 0) ? TLS_OUT_KEEP : out->capacity;
        while (capacity < out->length + length)
        {
            capacity *= 2;
        }
        uint8_t* grown = realloc(out->data, capacity);
        if (grown == NULL)
        {
            return false;
        }
        out->data = grown;
        out->capacity = capacity;
    }
    (void)memcpy(out->data + out->head + out->length, data, length);
    out->length += length;
    return true;
}

/* Codes_SRS_ASYNC_SOCKET_TLS_01_021: takes every byte, or fails; never asks OpenSSL to retry.
 * Bytes go straight to the kernel when nothing is queued before them, and what the kernel does not
 * take is queued behind what is. */
static int bio_write(BIO* bio, const char* data, int length)
{
    BIO_clear_retry_flags(bio);
    TLS_OUT* out = BIO_get_data(bio);
    if (out->length + (size_t)length > TLS_OUT_MAX)
    {
        errno = ENOBUFS;
        return -1;
    }
    if (out_flush(out) != 0 && errno != EAGAIN)
    {
        return -1;
    }
    ssize_t written = 0;
    if (out->length == 0)
    {
        written = send_some(out->fd, (const uint8_t*)data, (size_t)length);
        if (written < 0)
        {
            return -1;
        }
    }
    if (written < length && !out_append(out, (const uint8_t*)data + written, (size_t)(length - written)))
    {
        errno = ENOMEM;
        return -1;
    }
    return length;
}

static int bio_read(BIO* bio, char* data, int length)
{
    BIO_clear_retry_flags(bio);
    ssize_t received;
    do
    {
        received = recv(bio_fd(bio), data, (size_t)length, 0);
    } while (received < 0 && errno == EINTR);
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    {
        BIO_set_retry_read(bio);
    }
    return (int)received;
}

static long bio_ctrl(BIO* bio, int command, long number, void* pointer)
{
    (void)bio;
    (void)number;
    (void)pointer;
    /* Writes go straight to the kernel, so there is never anything to flush. */
    return (command == BIO_CTRL_FLUSH) ? 1 : 0;
}

static void bio_method_make(void)
{
    BIO_METHOD* method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "async_socket_tls fd");
    if (method != NULL &&
        (BIO_meth_set_write(method, bio_write) != 1 || BIO_meth_set_read(method, bio_read) != 1 ||
         BIO_meth_set_ctrl(method, bio_ctrl) != 1))
    {
        BIO_meth_free(method);
        method = NULL;
    }
    /* Made once for the process and kept: every SSL object's BIO refers to it. */
    bio_method = method;
}

static BIO* bio_new_for_fd(TLS_OUT* out)
{
    if (pthread_once(&bio_method_once, bio_method_make) != 0 || bio_method == NULL)
    {
        return NULL;
    }
    BIO* bio = BIO_new(bio_method);
    if (bio != NULL)
    {
        BIO_set_data(bio, out);
        BIO_set_init(bio, 1);
    }
    return bio;
}

/* ---- errors ---- */

/* The text of OpenSSL's first queued error on this thread, or `otherwise`. */
static void openssl_error_text(char* text, size_t size, const char* otherwise)
{
    unsigned long code = ERR_peek_error();
    if (code == 0)
    {
        (void)snprintf(text, size, "%s", otherwise);
        return;
    }
    ERR_error_string_n(code, text, size);
}

/* Logs a failed setup step with OpenSSL's reason, then empties this thread's error queue. */
static void log_setup_failure(const char* what)
{
    char reason[256];
    openssl_error_text(reason, sizeof(reason), "no OpenSSL error queued");
    LogError("%s: %s", what, reason);
    ERR_clear_error();
}

/* What one hook call returns, and the line it logs (if any) once the lock is released. */
typedef struct TLS_OUTCOME_TAG
{
    int result;      /* what the hook returns */
    int error;       /* errno when result is -1 */
    bool is_error;   /* the line is an ERROR, else a WARNING */
    char message[TLS_MESSAGE_SIZE]; /* empty: nothing to log */
} TLS_OUTCOME;

static bool is_unexpected_eof(int ssl_error, int saved_errno)
{
    unsigned long code = ERR_peek_error();
    return (ssl_error == SSL_ERROR_SYSCALL && (saved_errno == 0 || saved_errno == EAGAIN)) ||
        (ssl_error == SSL_ERROR_SSL && ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

/* Lock held. A fatal failure: its errno, its reason (into `reason`) and the level of its line. */
static int describe_fatal(ASYNC_SOCKET_TLS* tls, int ssl_error, int saved_errno, char* reason, size_t size, bool* is_error)
{
    *is_error = true;
    if (is_unexpected_eof(ssl_error, saved_errno))
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_009: a TCP close without close_notify may be a
         * truncation; the connection is gone either way */
        *is_error = false;
        (void)snprintf(reason, size, "the peer closed the connection without a TLS close_notify");
        return ECONNRESET;
    }
    if (ssl_error == SSL_ERROR_SYSCALL)
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_010: the socket's own error; a connection that the peer
         * reset is a warning, as for a plain async socket (a send racing a close is normal) */
        *is_error = !(saved_errno == ECONNRESET || saved_errno == EPIPE || saved_errno == ENOTCONN);
        (void)snprintf(reason, size, "socket error: %s", strerror(saved_errno));
        return saved_errno;
    }
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_010: a protocol failure (handshake, certificate, bad record,
     * alert) is EPROTO; anything else OpenSSL reports is EIO */
    openssl_error_text(reason, size, "unknown TLS error");
    long verify = SSL_get_verify_result(tls->ssl);
    if (verify != X509_V_OK)
    {
        size_t used = strlen(reason);
        (void)snprintf(reason + used, size - used, " (certificate: %s)", X509_verify_cert_error_string(verify));
    }
    return (ssl_error == SSL_ERROR_SSL) ? EPROTO : EIO;
}

/* Lock held. What a failed SSL_read / SSL_write (`ssl_result` <= 0) means for the hook.
 * `saved_errno` is errno right after the OpenSSL call. */
static void classify_failure(ASYNC_SOCKET_TLS* tls, const char* operation, int ssl_result, int saved_errno, TLS_OUTCOME* outcome)
{
    int ssl_error = SSL_get_error(tls->ssl, ssl_result);
    outcome->result = -1;
    if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE)
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_007 */
        outcome->error = EAGAIN;
        return;
    }
    if (ssl_error == SSL_ERROR_ZERO_RETURN)
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_008: the peer's close_notify ends the stream; a send that
         * fails after it finds the connection gone */
        outcome->result = (strcmp(operation, "receive") == 0) ? 0 : -1;
        outcome->error = EPIPE;
        return;
    }
    char reason[256];
    outcome->error = describe_fatal(tls, ssl_error, saved_errno, reason, sizeof(reason), &outcome->is_error);
    tls->failed_errno = outcome->error;
    (void)snprintf(outcome->message, sizeof(outcome->message), "TLS socket fd=%d: %s%s failed: %s", tls->out.fd,
        SSL_is_init_finished(tls->ssl) ? "" : "handshake during ", operation, reason);
    ERR_clear_error();
}

static void log_outcome(const TLS_OUTCOME* outcome)
{
    if (outcome->message[0] == '\0')
    {
        return;
    }
    if (outcome->is_error)
    {
        LogError("%s", outcome->message);
    }
    else
    {
        LogWarning("%s", outcome->message);
    }
}

/* ---- the transport hooks ---- */

typedef int (*SSL_IO)(SSL* ssl, void* buffer, int length);

static int ssl_write_io(SSL* ssl, void* buffer, int length)
{
    return SSL_write(ssl, buffer, length);
}

static int ssl_read_io(SSL* ssl, void* buffer, int length)
{
    return SSL_read(ssl, buffer, length);
}

/* Lock held; outcome->result bytes are already in `buffer`. One SSL_read returns one record (at
 * most 16 KiB); while OpenSSL already holds more of what it read ahead from the fd, this fills the
 * rest of the buffer without a system call, so a large receive completes with more than one
 * record. A failure met on the way is kept for the next call: these bytes are returned now. */
static void read_buffered(ASYNC_SOCKET_TLS* tls, uint8_t* buffer, int length, TLS_OUTCOME* outcome)
{
    while (outcome->result < length && SSL_has_pending(tls->ssl))
    {
        ERR_clear_error();
        errno = 0;
        int more = SSL_read(tls->ssl, buffer + outcome->result, length - outcome->result);
        if (more <= 0)
        {
            /* "try again" (half a record buffered) and the peer's close_notify come back on the
             * next call by themselves; a fatal error is recorded in failed_errno and logged now */
            TLS_OUTCOME later = {.result = -1, .message = ""};
            classify_failure(tls, "receive", more, errno, &later);
            (void)memcpy(outcome->message, later.message, sizeof(outcome->message));
            outcome->is_error = later.is_error;
            return;
        }
        outcome->result += more;
    }
}

/* Lock held. One SSL_write or SSL_read, a failure classified into `outcome`. */
static void ssl_call(ASYNC_SOCKET_TLS* tls, const char* operation, SSL_IO io, void* buffer, int length, TLS_OUTCOME* outcome)
{
    /* SSL_get_error reads this thread's error queue: it must hold only this call's errors */
    ERR_clear_error();
    errno = 0;
    outcome->result = io(tls->ssl, buffer, length);
    int saved_errno = errno;
    if (outcome->result <= 0)
    {
        classify_failure(tls, operation, outcome->result, saved_errno, outcome);
    }
}

/* Lock held. A send: the bytes of a record count as sent once the kernel has taken all of it, so
 * that a send whose callback says OK left nothing behind in the queue (nobody might call a hook
 * again to move it). Until then the call says EAGAIN, and the library's retry, which passes the
 * same bytes again, gets the count without another SSL_write. With nothing queued before it, a
 * new record is written by SSL_write.
 * Codes_SRS_ASYNC_SOCKET_TLS_01_021 */
static void tls_write(ASYNC_SOCKET_TLS* tls, void* buffer, int length, TLS_OUTCOME* outcome)
{
    int flushed = out_flush(&tls->out);
    if (flushed != 0 && errno == EAGAIN)
    {
        outcome->error = EAGAIN; /* the queue stays at about one record */
        return;
    }
    if (flushed == 0 && tls->held > 0)
    {
        outcome->result = (tls->held < length) ? tls->held : length;
        tls->held -= outcome->result;
        return;
    }
    /* a socket error met by the flush comes back from SSL_write's own write */
    ssl_call(tls, "send", ssl_write_io, buffer, length, outcome);
    if (outcome->result > 0 && out_flush(&tls->out) != 0 && errno == EAGAIN)
    {
        tls->held = outcome->result;
        outcome->result = -1;
        outcome->error = EAGAIN;
    }
}

/* One SSL_write or SSL_read under the lock, its outcome mapped to what send(2) / recv(2) would
 * return. The log line, if any, is written after the lock is released. */
static int tls_io(ASYNC_SOCKET_TLS* tls, const char* operation, SSL_IO io, void* buffer, size_t length)
{
    if (length == 0)
    {
        return 0;
    }
    int chunk = (length > TLS_MAX_CALL) ? TLS_MAX_CALL : (int)length;
    TLS_OUTCOME outcome = {.result = -1, .message = ""};

    /* Codes_SRS_ASYNC_SOCKET_TLS_01_011 */
    (void)pthread_mutex_lock(&tls->lock);
    if (tls->failed_errno != 0)
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_010: a TLS connection that failed stays failed */
        outcome.error = tls->failed_errno;
    }
    else if (tls->closed && io == ssl_write_io)
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_015: our close_notify has gone out and the socket is
         * being closed: a send racing that close finds the connection gone, as on a plain socket
         * (OpenSSL would call it a protocol error) */
        outcome.error = EPIPE;
    }
    else if (io == ssl_write_io)
    {
        tls_write(tls, buffer, chunk, &outcome);
    }
    else
    {
        (void)out_flush(&tls->out); /* a receive also moves what sends left queued */
        ssl_call(tls, operation, io, buffer, chunk, &outcome);
        if (outcome.result > 0)
        {
            read_buffered(tls, (uint8_t*)buffer, chunk, &outcome);
        }
    }
    (void)pthread_mutex_unlock(&tls->lock);

    log_outcome(&outcome);
    if (outcome.result < 0)
    {
        errno = outcome.error;
    }
    return outcome.result;
}

/* Codes_SRS_ASYNC_SOCKET_TLS_01_013: with partial writes on, SSL_write returns after each record
 * like a short send(2); the library calls again for the rest */
static int tls_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)async_socket;
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_006 */
    return tls_io(context, "send", ssl_write_io, (void*)buf, len);
}

/* Codes_SRS_ASYNC_SOCKET_TLS_01_014: SSL_read says "try again" only when OpenSSL holds no
 * decrypted bytes and the fd had nothing more; the library keeps a custom transport readable
 * until it says EAGAIN (devdoc D19), so bytes OpenSSL buffered beyond a receive's buffer go to
 * the next receive without waiting for an event */
static int tls_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)async_socket;
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_006 */
    return tls_io(context, "receive", ssl_read_io, buf, len);
}

/* ---- contexts ---- */

static bool config_is_valid(const ASYNC_SOCKET_TLS_CONFIG* config)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_001 */
    if (config == NULL)
    {
        LogError("invalid argument: config is NULL");
        return false;
    }
    if (config->role != ASYNC_SOCKET_TLS_ROLE_CLIENT && config->role != ASYNC_SOCKET_TLS_ROLE_SERVER)
    {
        LogError("invalid argument: config->role=%d is neither ASYNC_SOCKET_TLS_ROLE_CLIENT nor ASYNC_SOCKET_TLS_ROLE_SERVER", (int)config->role);
        return false;
    }
    if (config->role == ASYNC_SOCKET_TLS_ROLE_SERVER && (config->certificate_file == NULL || config->private_key_file == NULL))
    {
        LogError("invalid argument: a server needs certificate_file and private_key_file (certificate_file=%s, private_key_file=%s)",
            config->certificate_file ? config->certificate_file : "NULL", config->private_key_file ? config->private_key_file : "NULL");
        return false;
    }
    if (config->role == ASYNC_SOCKET_TLS_ROLE_CLIENT && config->verify_peer && config->server_name == NULL)
    {
        LogError("invalid argument: a client that verifies the server needs server_name");
        return false;
    }
    return true;
}

/* Codes_SRS_ASYNC_SOCKET_TLS_01_002 */
static bool load_server_files(SSL_CTX* ssl_ctx, const ASYNC_SOCKET_TLS_CONFIG* config)
{
    char what[PATH_MAX + 64];
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, config->certificate_file) != 1)
    {
        (void)snprintf(what, sizeof(what), "cannot use certificate file %s", config->certificate_file);
        log_setup_failure(what);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx, config->private_key_file, SSL_FILETYPE_PEM) != 1)
    {
        (void)snprintf(what, sizeof(what), "cannot use private key file %s", config->private_key_file);
        log_setup_failure(what);
        return false;
    }
    if (SSL_CTX_check_private_key(ssl_ctx) != 1)
    {
        (void)snprintf(what, sizeof(what), "private key %s does not match certificate %s", config->private_key_file, config->certificate_file);
        log_setup_failure(what);
        return false;
    }
    return true;
}

/* Codes_SRS_ASYNC_SOCKET_TLS_01_003 */
static bool load_client_trust(SSL_CTX* ssl_ctx, const ASYNC_SOCKET_TLS_CONFIG* config)
{
    if (!config->verify_peer)
    {
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
        return true;
    }
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (config->ca_file != NULL)
    {
        if (SSL_CTX_load_verify_locations(ssl_ctx, config->ca_file, NULL) != 1)
        {
            char what[PATH_MAX + 32];
            (void)snprintf(what, sizeof(what), "cannot load CA file %s", config->ca_file);
            log_setup_failure(what);
            return false;
        }
        return true;
    }
    if (SSL_CTX_set_default_verify_paths(ssl_ctx) != 1)
    {
        log_setup_failure("cannot load the system's default CA store");
        return false;
    }
    return true;
}

static SSL_CTX* make_ssl_ctx(const ASYNC_SOCKET_TLS_CONFIG* config)
{
    bool server = (config->role == ASYNC_SOCKET_TLS_ROLE_SERVER);
    SSL_CTX* ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ssl_ctx == NULL)
    {
        log_setup_failure("cannot create an OpenSSL context");
        return NULL;
    }
    (void)SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_013: SSL_write reports each record as it goes (a short
     * count, like send(2)). After "try again" the library calls again with the rest of the same
     * buffer, so today the address is the same; the hook contract does not promise it, so OpenSSL
     * is told not to insist on it (it needs the same bytes, which the caller keeps unchanged) */
    (void)SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ssl_ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ssl_ctx, TLS_READ_BUFFER);
    /* Codes_SRS_ASYNC_SOCKET_TLS_12_001 */
    if (config->cipher_suites != NULL && (config->cipher_suites[0] == '\0' || SSL_CTX_set_ciphersuites(ssl_ctx, config->cipher_suites) != 1))
    {
        char what[200];
        (void)snprintf(what, sizeof(what), "cipher_suites \"%.100s\" names no TLS 1.3 cipher suite OpenSSL accepts", config->cipher_suites);
        log_setup_failure(what);
        SSL_CTX_free(ssl_ctx);
        return NULL;
    }
    bool loaded = server ? load_server_files(ssl_ctx, config) : load_client_trust(ssl_ctx, config);
    if (!loaded)
    {
        SSL_CTX_free(ssl_ctx);
        return NULL;
    }
    return ssl_ctx;
}

ASYNC_SOCKET_TLS_CONTEXT_HANDLE async_socket_tls_context_create(const ASYNC_SOCKET_TLS_CONFIG* config)
{
    if (!config_is_valid(config))
    {
        return NULL;
    }
    ASYNC_SOCKET_TLS_CONTEXT* context = calloc(1, sizeof(ASYNC_SOCKET_TLS_CONTEXT));
    if (context == NULL)
    {
        LogError("cannot allocate a TLS context");
        return NULL;
    }
    if (config->role == ASYNC_SOCKET_TLS_ROLE_CLIENT && config->server_name != NULL)
    {
        context->server_name = strdup(config->server_name);
        if (context->server_name == NULL)
        {
            LogError("cannot copy server_name");
            free(context);
            return NULL;
        }
    }
    context->ssl_ctx = make_ssl_ctx(config);
    if (context->ssl_ctx == NULL)
    {
        free(context->server_name);
        free(context);
        return NULL;
    }
    context->role = config->role;
    context->verify_peer = config->verify_peer;
    return context;
}

void async_socket_tls_context_destroy(ASYNC_SOCKET_TLS_CONTEXT_HANDLE context)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_004: SSL objects hold their own reference to the SSL_CTX */
    if (context == NULL)
    {
        return;
    }
    SSL_CTX_free(context->ssl_ctx);
    free(context->server_name);
    free(context);
}

/* ---- sockets ---- */

/* Codes_SRS_ASYNC_SOCKET_TLS_01_003: SNI carries host names only; verification checks the name
 * or the address against the certificate */
static bool set_client_name(SSL* ssl, const ASYNC_SOCKET_TLS_CONTEXT* context)
{
    if (context->server_name == NULL)
    {
        return true;
    }
    unsigned char address[sizeof(struct in6_addr)];
    bool is_address = inet_pton(AF_INET, context->server_name, address) == 1 || inet_pton(AF_INET6, context->server_name, address) == 1;
    if (!is_address && SSL_set_tlsext_host_name(ssl, context->server_name) != 1)
    {
        log_setup_failure("cannot set the server name (SNI)");
        return false;
    }
    if (!context->verify_peer)
    {
        return true;
    }
    int set = is_address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), context->server_name) : SSL_set1_host(ssl, context->server_name);
    if (set != 1)
    {
        log_setup_failure("cannot set the name to verify");
        return false;
    }
    return true;
}

static SSL* make_ssl(const ASYNC_SOCKET_TLS_CONTEXT* context, TLS_OUT* out)
{
    SSL* ssl = SSL_new(context->ssl_ctx);
    if (ssl == NULL)
    {
        log_setup_failure("cannot create an OpenSSL connection");
        return NULL;
    }
    BIO* bio = bio_new_for_fd(out);
    if (bio == NULL)
    {
        log_setup_failure("cannot create the socket BIO");
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_bio(ssl, bio, bio); /* the SSL object owns the BIO from here on */
    if (context->role == ASYNC_SOCKET_TLS_ROLE_SERVER)
    {
        /* Codes_SRS_ASYNC_SOCKET_TLS_01_006: the handshake runs inside the first I/O */
        SSL_set_accept_state(ssl);
        return ssl;
    }
    if (!set_client_name(ssl, context))
    {
        SSL_free(ssl);
        return NULL;
    }
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_006 */
    SSL_set_connect_state(ssl);
    return ssl;
}

ASYNC_SOCKET_TLS_HANDLE async_socket_tls_create(ASYNC_SOCKET_TLS_CONTEXT_HANDLE context, EXECUTION_ENGINE_HANDLE execution_engine, SOCKET_HANDLE socket_handle)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_005 */
    if (context == NULL || socket_handle == INVALID_SOCKET)
    {
        LogError("invalid arguments: context=%p, socket_handle=%d", (void*)context, socket_handle);
        return NULL;
    }
    ASYNC_SOCKET_TLS* tls = calloc(1, sizeof(ASYNC_SOCKET_TLS));
    if (tls == NULL)
    {
        LogError("cannot allocate a TLS socket for fd=%d", socket_handle);
        return NULL;
    }
    if (pthread_mutex_init(&tls->lock, NULL) != 0)
    {
        LogError("cannot initialise the lock of a TLS socket");
        goto fail_lock;
    }
    tls->out.fd = socket_handle;
    tls->ssl = make_ssl(context, &tls->out);
    if (tls->ssl == NULL)
    {
        goto fail_ssl;
    }
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_006: created last, since it takes the fd on success */
    tls->async_socket = async_socket_create_with_transport(execution_engine, socket_handle, tls_on_send, tls, tls_on_recv, tls);
    if (tls->async_socket == NULL)
    {
        goto fail_socket; /* async_socket_create_with_transport logged the line */
    }
    return tls;

fail_socket:
    SSL_free(tls->ssl);
fail_ssl:
    (void)pthread_mutex_destroy(&tls->lock);
fail_lock:
    free(tls);
    return NULL;
}

ASYNC_SOCKET_HANDLE async_socket_tls_get_async_socket(ASYNC_SOCKET_TLS_HANDLE tls)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_017 */
    if (tls == NULL)
    {
        LogError("invalid argument: tls is NULL");
        return NULL;
    }
    return tls->async_socket;
}

void async_socket_tls_close(ASYNC_SOCKET_TLS_HANDLE tls)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_015 */
    if (tls == NULL)
    {
        return;
    }
    (void)pthread_mutex_lock(&tls->lock);
    /* A handshake that completed means the socket was opened: its fd is still ours until the
     * close below. A connection that failed must not send anything more. */
    if (!tls->closed && tls->failed_errno == 0 && SSL_is_init_finished(tls->ssl))
    {
        ERR_clear_error();
        (void)SSL_shutdown(tls->ssl); /* one try: sends close_notify, does not wait for the peer's */
        ERR_clear_error();
    }
    tls->closed = true;
    (void)pthread_mutex_unlock(&tls->lock);
    async_socket_close(tls->async_socket);
}

void async_socket_tls_destroy(ASYNC_SOCKET_TLS_HANDLE tls)
{
    /* Codes_SRS_ASYNC_SOCKET_TLS_01_016 */
    if (tls == NULL)
    {
        return;
    }
    /* Once async_socket_destroy returns, the socket is closed and no thread is inside a hook
     * (also when called from a callback: close waits for the threads in I/O), so the SSL object
     * is no longer used. */
    async_socket_destroy(tls->async_socket);
    SSL_free(tls->ssl);
    free(tls->out.data);
    (void)pthread_mutex_destroy(&tls->lock);
    free(tls);
}
