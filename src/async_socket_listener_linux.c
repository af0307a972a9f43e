/* async_socket_listener for Linux.
 *
 * The listening fd is registered with the completion port like a socket's. An input event (or a
 * post, events 0) runs the accept loop on a worker: one thread at a time (a second delivery only
 * asks the running one to go round again), at most ACCEPT_BUDGET accepts, then a post to itself
 * so that a connect flood shares the worker with the other sockets. EMFILE and its kind start a
 * one-shot timer instead of sleeping; the timer's callback runs the loop again.
 *
 * Stop: the state changes under the lock and the accept loop looks at it before every accept,
 * so stop waits for at most one user callback, however many connections are queued.
 *
 * Lifetime: the handle is one reference, each delivery in progress another; the last one closes
 * the fd and frees the listener. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/async_socket_listener.h"
#include "c_pal/completion_port_linux.h"
#include "log_internal.h"
#include "c_pal/platform.h"
#include "c_pal/threadpool.h"
#include "address_text.h"
#include "sys.h"

typedef enum LISTENER_STATE_TAG
{
    LISTENER_NEW,
    LISTENER_STARTED,
    LISTENER_STOPPED
} LISTENER_STATE;

typedef enum BATCH_END_TAG
{
    BATCH_DRAINED,  /* EAGAIN: the next connection raises a new edge */
    BATCH_MORE,     /* the budget ran out with connections left */
    BATCH_BACK_OFF, /* out of fds or memory: try again after the back-off */
    BATCH_STOPPED
} BATCH_END;

struct ASYNC_SOCKET_LISTENER_TAG
{
    COMPLETION_PORT_IO io;
    COMPLETION_PORT_HANDLE port;
    atomic_int refcount;
    int fd;
    ON_ASYNC_SOCKET_LISTENER_ACCEPT on_accept;
    void* on_accept_context;
    THREADPOOL_HANDLE pool;
    TIMER_INSTANCE_HANDLE back_off;
    char address[ASYNC_SOCKET_ADDRESS_TEXT_SIZE];
    pthread_mutex_t lock;
    pthread_cond_t loop_done;
    /* guarded by lock */
    atomic_int state;      /* LISTENER_STATE; also read without the lock by the accept loop */
    bool looping;          /* a thread runs the accept loop */
    bool rerun;            /* a delivery came while it did */
    bool post_pending;     /* the loop's own post (BATCH_MORE) is not delivered yet */
    bool backing_off;
    bool pause_logged;     /* this pause's line is out; reset by the next accept */
    pthread_t looper;
};

static ASYNC_SOCKET_LISTENER_HANDLE from_io(COMPLETION_PORT_IO* io)
{
    return (ASYNC_SOCKET_LISTENER_HANDLE)((char*)io - offsetof(struct ASYNC_SOCKET_LISTENER_TAG, io));
}

static void listener_hold(COMPLETION_PORT_IO* io)
{
    (void)atomic_fetch_add_explicit(&from_io(io)->refcount, 1, memory_order_relaxed);
}

static void listener_release(COMPLETION_PORT_IO* io)
{
    ASYNC_SOCKET_LISTENER_HANDLE listener = from_io(io);
    if (atomic_fetch_sub_explicit(&listener->refcount, 1, memory_order_acq_rel) != 1)
    {
        return;
    }
    (void)sys_close(listener->fd);
    completion_port_dec_ref(listener->port);
    (void)pthread_cond_destroy(&listener->loop_done);
    (void)pthread_mutex_destroy(&listener->lock);
    sys_free(listener);
}

static bool stopped(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    return atomic_load_explicit(&listener->state, memory_order_acquire) != LISTENER_STARTED;
}

/* Out of a resource the next accept may have again: pause rather than fail for good. */
static bool resource_errno(int error)
{
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

/* A connection that died in the queue, or a signal: the next one may be fine. */
static bool transient_errno(int error)
{
    return error == EINTR || error == ECONNABORTED || error == EPROTO || error == EPERM ||
        error == ENETDOWN || error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET ||
        error == EHOSTUNREACH || error == EOPNOTSUPP || error == ENETUNREACH;
}

static void hand_over(ASYNC_SOCKET_LISTENER_HANDLE listener, int fd)
{
    /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_006: small writes (a chat line, a request) leave at once */
    int one = 1;
    (void)sys_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char peer[ASYNC_SOCKET_ADDRESS_TEXT_SIZE];
    if (address_text__of_peer(fd, peer, sizeof(peer)) != 0)
    {
        (void)snprintf(peer, sizeof(peer), "unknown");
    }
    listener->pause_logged = false;
    listener->on_accept(listener->on_accept_context, fd, peer);
}

/* Codes_SRS_ASYNC_SOCKET_LISTENER_01_007 */
static BATCH_END accept_batch(ASYNC_SOCKET_LISTENER_HANDLE listener, int* error)
{
    for (int i = 0; i < ASYNC_SOCKET_LISTENER_ACCEPT_BUDGET; i++)
    {
        /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_011: looked at before every accept */
        if (stopped(listener))
        {
            return BATCH_STOPPED;
        }
        /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_006 */
        int fd = sys_accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
        {
            hand_over(listener, fd);
            continue;
        }
        *error = errno;
        if (*error == EAGAIN || *error == EWOULDBLOCK)
        {
            return BATCH_DRAINED;
        }
        if (!transient_errno(*error))
        {
            return BATCH_BACK_OFF;
        }
    }
    return BATCH_MORE;
}

/* Codes_SRS_ASYNC_SOCKET_LISTENER_01_008: no worker sleeps and none spins while out of fds */
static void back_off(ASYNC_SOCKET_LISTENER_HANDLE listener, int error, bool log)
{
    if (log)
    {
        LogWarning("listener %s: accept failed with %s (errno=%d); %s for %d ms", listener->address, strerror(error), error,
            resource_errno(error) ? "pausing accepts" : "pausing accepts after an unexpected error", ASYNC_SOCKET_LISTENER_BACKOFF_MS);
    }
    if (threadpool_timer_restart(listener->back_off, ASYNC_SOCKET_LISTENER_BACKOFF_MS, 0) != 0)
    {
        LogError("listener %s: cannot arm the back-off timer; accepting resumes with the next connection", listener->address);
        (void)pthread_mutex_lock(&listener->lock);
        listener->backing_off = false;
        (void)pthread_mutex_unlock(&listener->lock);
    }
}

/* Codes_SRS_ASYNC_SOCKET_LISTENER_01_012: whether the loop, having armed its post or its timer,
 * must go round once more. A delivery that found it running only set rerun; if that delivery was
 * the loop's own post or the timer's run (delivered at once by another worker), nothing else will
 * run the loop, and the connections still queued wait for an edge that may never come (the last
 * connect of a burst raises the last one). A post still pending or a timer still armed will run
 * the loop by itself. */
static bool must_go_round(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    return listener->rerun && !listener->post_pending && !listener->backing_off && !stopped(listener);
}

/* Arms the loop's post (after a full batch); true when it could not, so that the loop goes round
 * itself instead of waiting for a post that will not come. */
static bool post_failed(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    if (completion_port_post(listener->port, &listener->io) == 0)
    {
        return false;
    }
    (void)pthread_mutex_lock(&listener->lock);
    listener->post_pending = false;
    (void)pthread_mutex_unlock(&listener->lock);
    return true;
}

/* The loop stays "looping" until its post or its timer is armed, so that a stop, which waits
 * for the loop, never meets a timer armed behind its back. `posted`: this delivery is the loop's
 * post (events 0). */
static void run_loop(ASYNC_SOCKET_LISTENER_HANDLE listener, bool posted)
{
    (void)pthread_mutex_lock(&listener->lock);
    if (posted)
    {
        listener->post_pending = false;
    }
    if (stopped(listener) || listener->backing_off || listener->looping)
    {
        listener->rerun = listener->looping;
        (void)pthread_mutex_unlock(&listener->lock);
        return;
    }
    listener->looping = true;
    listener->looper = pthread_self();
    for (;;)
    {
        listener->rerun = false;
        (void)pthread_mutex_unlock(&listener->lock);
        int error = 0;
        BATCH_END end = accept_batch(listener, &error);
        (void)pthread_mutex_lock(&listener->lock);
        if (end == BATCH_DRAINED && listener->rerun)
        {
            continue;
        }
        bool pause = (end == BATCH_BACK_OFF) && !stopped(listener);
        bool log = pause && !listener->pause_logged;
        listener->pause_logged = listener->pause_logged || pause;
        listener->backing_off = pause;
        listener->post_pending = (end == BATCH_MORE);
        (void)pthread_mutex_unlock(&listener->lock);
        bool again = false;
        if (pause)
        {
            back_off(listener, error, log);
        }
        else if (end == BATCH_MORE)
        {
            again = post_failed(listener);
        }
        (void)pthread_mutex_lock(&listener->lock);
        /* an edge, the post or the timer's run that came while the lock was free found this loop
         * running and only set rerun */
        if (!again && !must_go_round(listener))
        {
            break;
        }
    }
    listener->looping = false;
    (void)pthread_cond_broadcast(&listener->loop_done);
    (void)pthread_mutex_unlock(&listener->lock);
}

static void listener_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    run_loop(from_io(io), events == 0);
}

static void on_back_off_over(void* context)
{
    ASYNC_SOCKET_LISTENER_HANDLE listener = context;
    (void)pthread_mutex_lock(&listener->lock);
    listener->backing_off = false;
    (void)pthread_mutex_unlock(&listener->lock);
    /* a callback may destroy the listener; only deliveries hold it otherwise */
    listener_hold(&listener->io);
    run_loop(listener, false);
    listener_release(&listener->io);
}

static const COMPLETION_PORT_IO_OPS listener_io_ops = { listener_on_events, listener_hold, listener_release };

/* ---- create ---- */

static int bind_and_listen(const char* address, uint16_t port, char* bound, size_t bound_size)
{
    char service[8];
    (void)snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints;
    (void)memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo* found = NULL;
    int status = getaddrinfo(address, service, &hints, &found);
    if (status != 0)
    {
        /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_002 */
        LogError("cannot listen on %s port %u: the address does not resolve (%s)", address, (unsigned)port, gai_strerror(status));
        return -1;
    }
    int fd = sys_socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    bool ok = fd >= 0 && sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        sys_bind(fd, found->ai_addr, found->ai_addrlen) == 0 && sys_listen(fd, SOMAXCONN) == 0;
    int error = errno;
    freeaddrinfo(found);
    if (!ok)
    {
        LogError("cannot listen on %s port %u: %s (errno=%d)", address, (unsigned)port, strerror(error), error);
        if (fd >= 0)
        {
            (void)sys_close(fd);
        }
        return -1;
    }
    if (address_text__of_local(fd, bound, bound_size) != 0)
    {
        (void)sys_close(fd);
        return -1;
    }
    return fd;
}

static bool make_back_off_timer(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    listener->pool = threadpool_create(NULL);
    if (listener->pool == NULL)
    {
        return false;
    }
    /* started far in the future and cancelled: restarted at each pause */
    if (threadpool_open(listener->pool) != 0 ||
        threadpool_timer_start(listener->pool, UINT32_MAX, 0, on_back_off_over, listener, &listener->back_off) != 0)
    {
        threadpool_destroy(listener->pool);
        return false;
    }
    threadpool_timer_cancel(listener->back_off);
    return true;
}

ASYNC_SOCKET_LISTENER_HANDLE async_socket_listener_create(const char* address, uint16_t port, ON_ASYNC_SOCKET_LISTENER_ACCEPT on_accept, void* on_accept_context)
{
    if (on_accept == NULL)
    {
        /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_001 */
        LogError("invalid argument: on_accept is NULL");
        return NULL;
    }
    ASYNC_SOCKET_LISTENER_HANDLE listener = sys_calloc(1, sizeof(struct ASYNC_SOCKET_LISTENER_TAG));
    if (listener == NULL)
    {
        LogError("cannot allocate a listener");
        return NULL;
    }
    listener->port = platform_get_completion_port();
    if (listener->port == NULL)
    {
        sys_free(listener);
        return NULL;
    }
    /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_003 */
    listener->fd = bind_and_listen((address == NULL) ? "127.0.0.1" : address, port, listener->address, sizeof(listener->address));
    if (listener->fd < 0 || !make_back_off_timer(listener))
    {
        if (listener->fd >= 0)
        {
            (void)sys_close(listener->fd);
        }
        completion_port_dec_ref(listener->port);
        sys_free(listener);
        return NULL;
    }
    listener->io.ops = &listener_io_ops;
    listener->on_accept = on_accept;
    listener->on_accept_context = on_accept_context;
    atomic_init(&listener->refcount, 1);
    atomic_init(&listener->state, LISTENER_NEW);
    (void)pthread_mutex_init(&listener->lock, NULL);
    (void)pthread_cond_init(&listener->loop_done, NULL);
    return listener;
}

int async_socket_listener_get_address(ASYNC_SOCKET_LISTENER_HANDLE listener, char* buffer, size_t buffer_size)
{
    if (listener == NULL || buffer == NULL)
    {
        LogError("invalid arguments: listener=%p, buffer=%p", (void*)listener, (void*)buffer);
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_004 */
    int written = snprintf(buffer, buffer_size, "%s", listener->address);
    if (written < 0 || (size_t)written >= buffer_size)
    {
        LogError("a buffer of %zu bytes is too small for the address %s", buffer_size, listener->address);
        return -1;
    }
    return 0;
}

uint16_t async_socket_listener_get_port(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    if (listener == NULL)
    {
        LogError("invalid argument: listener is NULL");
        return 0;
    }
    /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_004: the text ends with ":PORT" */
    const char* colon = strrchr(listener->address, ':');
    return (uint16_t)((colon == NULL) ? 0 : strtoul(colon + 1, NULL, 10));
}

int async_socket_listener_start(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    if (listener == NULL)
    {
        LogError("invalid argument: listener is NULL");
        return -1;
    }
    (void)pthread_mutex_lock(&listener->lock);
    int state = atomic_load(&listener->state);
    if (state == LISTENER_NEW)
    {
        atomic_store(&listener->state, LISTENER_STARTED);
    }
    (void)pthread_mutex_unlock(&listener->lock);
    if (state != LISTENER_NEW)
    {
        /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_005 */
        LogError("listener %s is %s", listener->address, (state == LISTENER_STARTED) ? "already started" : "stopped; it cannot start again");
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_007: registration raises an edge for connections that
     * are already queued */
    if (completion_port_add(listener->port, listener->fd, &listener->io) != 0)
    {
        atomic_store(&listener->state, LISTENER_NEW);
        return -1;
    }
    return 0;
}

void async_socket_listener_stop(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    if (listener == NULL)
    {
        LogError("invalid argument: listener is NULL");
        return;
    }
    (void)pthread_mutex_lock(&listener->lock);
    int state = atomic_load(&listener->state);
    atomic_store(&listener->state, LISTENER_STOPPED);
    (void)pthread_mutex_unlock(&listener->lock);
    if (state == LISTENER_STARTED)
    {
        completion_port_remove(listener->port, &listener->io);
    }
    /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_009: the back-off's run (a loop of its own) is waited
     * for by the cancel, a loop of a delivery below */
    threadpool_timer_cancel(listener->back_off);
    (void)pthread_mutex_lock(&listener->lock);
    while (listener->looping && !pthread_equal(listener->looper, pthread_self()))
    {
        (void)pthread_cond_wait(&listener->loop_done, &listener->lock);
    }
    (void)pthread_mutex_unlock(&listener->lock);
}

void async_socket_listener_destroy(ASYNC_SOCKET_LISTENER_HANDLE listener)
{
    if (listener == NULL)
    {
        LogError("invalid argument: listener is NULL");
        return;
    }
    /* Codes_SRS_ASYNC_SOCKET_LISTENER_01_010 */
    async_socket_listener_stop(listener);
    threadpool_timer_destroy(listener->back_off);
    threadpool_destroy(listener->pool);
    listener_release(&listener->io);
}
