/* The lifetime module: references, waits and wakes, close, destroy, destroy_async and teardown
 * of an async socket. The protocol it implements is stated as numbered rules at the top of
 * socket_lifetime.h; the comments below name the rule each piece carries out. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/completion_port_linux.h"
#include "c_pal/execution_engine.h"
#include "c_pal/socket_transport.h"
#include "asock_assert.h"
#include "async_socket_internal.h"
#include "callback_scope.h"
#include "lock.h"
#include "log_internal.h"
#include "socket_lifetime.h"
#include "socket_transport_internal.h"
#include "sys.h"

/* R4. Codes_SRS_ASYNC_SOCKET_LINUX_99_171 */
_Thread_local bool socket_lifetime__wake_after_unlock __attribute__((tls_model("initial-exec")));

/* Lets a destroy wait for the teardown that the last reference performs, wherever that happens.
 * It lives on the destroying thread's stack, in a process-wide list (destroy_waits) rather than
 * in the socket: 8 bytes fewer on every socket, and only destroy and teardown look at the list. */
typedef struct DESTROY_WAIT_TAG
{
    struct DESTROY_WAIT_TAG* next;
    const void* socket;
    atomic_uint done;
    /* async_socket_destroy_async: the node is on the heap, and the callback is posted to a
     * worker once the socket is gone (io is how it travels there) */
    ON_ASYNC_SOCKET_DESTROY_COMPLETE on_destroy_complete;
    void* context;
    bool called;
    COMPLETION_PORT_HANDLE port; /* the freed socket's port reference, until just before the call */
    COMPLETION_PORT_IO io;
} DESTROY_WAIT;

static pthread_mutex_t destroy_waits_lock = PTHREAD_MUTEX_INITIALIZER;
static DESTROY_WAIT* destroy_waits;

/* The closes this thread is running, innermost first (a callback that close calls may close
 * another socket): how close and destroy tell "this thread is the closer" from "a close runs on
 * another thread" without keeping the closer's id in every socket. Nodes live on close's stack. */
typedef struct CLOSING_TAG
{
    struct CLOSING_TAG* next;
    const void* socket;
} CLOSING;

static _Thread_local CLOSING* closing_here;

static bool closing_on_this_thread(const void* socket)
{
    for (const CLOSING* closing = closing_here; closing != NULL; closing = closing->next)
    {
        if (closing->socket == socket)
        {
            return true;
        }
    }
    return false;
}

/* Every socket's waiters share one futex word. Close and destroy wait rarely, and a wake meant
 * for another socket only makes a waiter look at its condition again; a word per socket cost
 * 8 bytes on each of 10,000s of idle sockets. */
static atomic_uint wait_seq;
static atomic_uint waiters;


/* ---- waiting, references, scopes ---- */

void socket_lifetime__wake_waiters(void)
{
    (void)atomic_fetch_add(&wait_seq, 1);
    if (atomic_load(&waiters) != 0)
    {
        (void)sys_futex(&wait_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
    }
}

/* Blocks until `done(socket)` is true. Called without the lock; `done` takes it if it needs to. */
static void wait_until(ASYNC_SOCKET* socket, bool (*done)(ASYNC_SOCKET*))
{
    (void)atomic_fetch_add(&waiters, 1);
    for (;;)
    {
        unsigned seen = atomic_load(&wait_seq);
        if (done(socket))
        {
            break;
        }
        (void)sys_futex(&wait_seq, FUTEX_WAIT_PRIVATE, seen, NULL);
    }
    (void)atomic_fetch_sub(&waiters, 1);
}

/* The last reference is gone: takes the waiting destroy's entry out of the list (before the socket
 * is freed, so that a new socket at the same address cannot be mistaken for this one).
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_048 */
static DESTROY_WAIT* take_destroy_wait(const ASYNC_SOCKET* socket)
{
    if (!socket->destroy_waits)
    {
        return NULL;
    }
    (void)pthread_mutex_lock(&destroy_waits_lock);
    DESTROY_WAIT** link = &destroy_waits;
    while (*link != NULL && (*link)->socket != socket)
    {
        link = &(*link)->next;
    }
    DESTROY_WAIT* wait = *link;
    if (wait != NULL)
    {
        *link = wait->next;
    }
    (void)pthread_mutex_unlock(&destroy_waits_lock);
    return wait;
}

/* The destroy-complete callback of async_socket_destroy_async, on a worker (on_events), or, when
 * the port goes away with the post still queued, wherever it is released: exactly once either way. */
static void destroyed_call(DESTROY_WAIT* wait)
{
    if (!wait->called)
    {
        wait->called = true;
        wait->on_destroy_complete(wait->context);
    }
}

static DESTROY_WAIT* destroyed_from_io(COMPLETION_PORT_IO* io)
{
    return (DESTROY_WAIT*)((char*)io - offsetof(DESTROY_WAIT, io));
}

static void destroyed_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    (void)events;
    DESTROY_WAIT* wait = destroyed_from_io(io);
    /* Dropped before the call: once the user hears that the socket is gone, the library holds
     * nothing of it, so a platform_deinit that follows is the port's last reference and joins
     * the workers. (On this worker the port stays usable until the worker leaves.) */
    COMPLETION_PORT_HANDLE port = wait->port;
    wait->port = NULL;
    completion_port_dec_ref(port);
    destroyed_call(wait);
}

static void destroyed_hold(COMPLETION_PORT_IO* io)
{
    (void)io;
}

static void destroyed_release(COMPLETION_PORT_IO* io)
{
    DESTROY_WAIT* wait = destroyed_from_io(io);
    destroyed_call(wait);
    sys_free(wait);
}

static const COMPLETION_PORT_IO_OPS destroyed_io_ops = { destroyed_on_events, destroyed_hold, destroyed_release };

/* The socket is freed: posts the destroy-complete callback, which takes over the socket's port
 * reference (true); false when there is none to post. */
static bool post_destroyed(DESTROY_WAIT* wait, COMPLETION_PORT_HANDLE port)
{
    if (wait == NULL || wait->on_destroy_complete == NULL)
    {
        return false;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_173: never on the thread that dropped the last reference,
     * which may be inside the user's destroy_async call or under the user's own locks */
    wait->port = port;
    if (completion_port_post(port, &wait->io) != 0)
    {
        wait->port = NULL;
        completion_port_dec_ref(port);
        destroyed_release(&wait->io);
    }
    return true;
}

void socket_lifetime__teardown(ASYNC_SOCKET* socket)
{
    /* R8: nobody is inside, no op is left in a queue, and the socket was closed or never opened */
    ASOCK_ASSERT(socket->inside == 0 && socket->in_io == 0 && !socket->dispatching);
    ASOCK_ASSERT(socket->sends.tail == NULL && socket->receives.tail == NULL && socket->completed.tail == NULL);
    ASOCK_ASSERT(extras_of(socket) == NULL || extras_of(socket)->notifies.tail == NULL);
    ASOCK_ASSERT(socket->state == STATE_CLOSED || socket->state == STATE_NEW);
    DESTROY_WAIT* wait = take_destroy_wait(socket);
    COMPLETION_PORT_HANDLE port = socket->port;
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_103 */
    socket_transport__deinit(transport_of(socket));
    EXECUTION_ENGINE_HANDLE engine = engine_of(socket);
    if (engine != NULL)
    {
        execution_engine_dec_ref(engine);
    }
    SOCKET_EXTRAS* extras = extras_of(socket);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_023: the heap records (the embedded one is the socket's) */
    while (extras != NULL && extras->free_ops != NULL)
    {
        OP* op = extras->free_ops;
        extras->free_ops = op->next;
        sys_free(op);
    }
    sys_free(extras);
    sys_free(socket);
    if (post_destroyed(wait, port))
    {
        return;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_022: before the destroy's wake-up, so that a
     * platform_deinit right after the destroy is the port's last reference */
    completion_port_dec_ref(port);
    if (wait != NULL)
    {
        atomic_store(&wait->done, 1);
        (void)sys_futex(&wait->done, FUTEX_WAKE_PRIVATE, 1, NULL);
    }
}

void socket_lifetime__io_hold(COMPLETION_PORT_IO* io)
{
    socket_hold(from_io(io));
}

void socket_lifetime__io_release(COMPLETION_PORT_IO* io)
{
    socket_release(from_io(io));
}

/* ---- destroy ---- */

/* Registers the entry the teardown takes out (take_destroy_wait). */
static void add_destroy_wait(ASYNC_SOCKET* socket, DESTROY_WAIT* wait)
{
    (void)pthread_mutex_lock(&destroy_waits_lock);
    wait->next = destroy_waits;
    destroy_waits = wait;
    (void)pthread_mutex_unlock(&destroy_waits_lock);
    lock_acquire(&socket->lock);
    socket->destroy_waits = true;
    socket_unlock(socket);
}

static bool not_transitioning(ASYNC_SOCKET* socket)
{
    lock_acquire(&socket->lock);
    bool result = socket->state != STATE_OPENING &&
        !(socket->state == STATE_CLOSING && !closing_on_this_thread(socket));
    socket_unlock(socket);
    return result;
}

void async_socket_destroy(ASYNC_SOCKET_HANDLE async_socket)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_019 */
    if (async_socket == NULL)
    {
        return;
    }
    bool in_callback = callback_scope__in_any();
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_020 */
    if (!in_callback)
    {
        wait_until(async_socket, not_transitioning);
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_021 */
    async_socket_close(async_socket);
    if (in_callback)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_010: this thread cannot wait for the workers (it may
         * be the one that would release them); the last reference, dropped when the callback
         * unwinds, tears the socket down */
        socket_release(async_socket);
        return;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_022: a worker may still hold the socket for an instant (a
     * post, the end of a delivery); whoever drops the last reference tears down and signals */
    DESTROY_WAIT wait = {.next = NULL, .socket = async_socket};
    atomic_init(&wait.done, 0);
    add_destroy_wait(async_socket, &wait);
    socket_release(async_socket);
    while (atomic_load(&wait.done) == 0)
    {
        (void)sys_futex(&wait.done, FUTEX_WAIT_PRIVATE, 0, NULL);
    }
}

int async_socket_destroy_async(ASYNC_SOCKET_HANDLE async_socket, ON_ASYNC_SOCKET_DESTROY_COMPLETE on_destroy_complete, void* on_destroy_complete_context)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_172 */
    if (async_socket == NULL || on_destroy_complete == NULL)
    {
        LogError("invalid arguments: async_socket=%p, on_destroy_complete=%p (neither may be NULL)", (void*)async_socket, (void*)on_destroy_complete);
        return -1;
    }
    DESTROY_WAIT* wait = sys_calloc(1, sizeof(DESTROY_WAIT));
    if (wait == NULL)
    {
        LogError("cannot allocate the destroy record of async socket %p; it is not destroyed", (void*)async_socket);
        return -1;
    }
    wait->socket = async_socket;
    wait->on_destroy_complete = on_destroy_complete;
    wait->context = on_destroy_complete_context;
    wait->io.ops = &destroyed_io_ops;
    if (!callback_scope__in_any())
    {
        wait_until(async_socket, not_transitioning);
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_174: the close below behaves as async_socket_close does
     * (it calls pending operations back ABANDONED and waits for other threads' callbacks except
     * in the circle case); whatever still runs holds a reference, and the last one to go calls
     * on_destroy_complete */
    async_socket_close(async_socket);
    add_destroy_wait(async_socket, wait);
    socket_release(async_socket);
    return 0;
}


/* ---- close ---- */

static bool others_left(ASYNC_SOCKET* socket)
{
    lock_acquire(&socket->lock);
    bool result = socket->inside <= callback_scope__depth(socket);
    socket_unlock(socket);
    return result;
}

static bool others_out_of_io(ASYNC_SOCKET* socket)
{
    lock_acquire(&socket->lock);
    bool result = socket->in_io <= callback_scope__io_depth(socket);
    socket_unlock(socket);
    return result;
}

static bool closed(ASYNC_SOCKET* socket)
{
    lock_acquire(&socket->lock);
    bool result = socket->state != STATE_CLOSING;
    socket_unlock(socket);
    return result;
}

/* Waits for every other thread inside the socket (a dispatcher in a syscall or a callback, an
 * inline send) to leave it, unless that thread is itself blocked, directly or through others,
 * on a socket this thread is inside: then waiting would never end.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_007
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_009 */
static void wait_for_others(ASYNC_SOCKET* socket)
{
    if (others_left(socket))
    {
        return;
    }
    if (!callback_scope__begin_wait(socket))
    {
        /* Waiting for every thread inside would close a circle. The threads in it are blocked
         * in callbacks and will find the socket closed when they return; but a thread in a
         * syscall on the fd must finish before close releases the fd number. */
        LogWarning("async socket %p is closed while another callback that closes a socket this thread is in still runs", (void*)socket);
        wait_until(socket, others_out_of_io);
        return;
    }
    wait_until(socket, others_left);
    callback_scope__end_wait();
}

void async_socket_close(ASYNC_SOCKET_HANDLE async_socket)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_035 */
    if (async_socket == NULL)
    {
        return;
    }
    lock_acquire(&async_socket->lock);
    SOCKET_STATE state = (SOCKET_STATE)async_socket->state;
    if (state != STATE_OPEN)
    {
        bool wait = (state == STATE_CLOSING) && !closing_on_this_thread(async_socket) && !callback_scope__in_any();
        if (wait)
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_99_170: the waiter keeps the socket alive; the other
             * closer may destroy it the moment its close returns */
            socket_hold(async_socket);
        }
        socket_unlock(async_socket);
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_024: a close already running on another thread
         * finishes before this one returns, so that no callback runs after either returns
         * (except inside a callback, where waiting for that closer could wait for this very
         * thread). */
        if (wait)
        {
            wait_until(async_socket, closed);
            socket_release(async_socket);
        }
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_042 */
        return;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_036 */
    socket_set_state_locked(async_socket, STATE_CLOSING);
    CLOSING closing = {.next = closing_here, .socket = async_socket};
    closing_here = &closing;
    socket_hold(async_socket); /* a callback below may destroy the socket */
    socket_unlock(async_socket);

    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_037 */
    wait_for_others(async_socket);

    lock_acquire(&async_socket->lock);
    /* ops that finished before the close but were not called back yet keep their results; the
     * pending ones are abandoned
     * Codes_SRS_ASYNC_SOCKET_LINUX_11_080 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_081 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_008 */
    atomic_store_explicit(&async_socket->drained, true, memory_order_release);
    OP_QUEUE to_call_back = {NULL};
    async_socket__take_all_ops_locked(async_socket, &to_call_back);
    CALLBACK_SCOPE scope;
    enter_locked(async_socket, &scope);
    socket_unlock(async_socket);

    completion_port_remove(async_socket->port, &async_socket->io);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_104 */
    socket_transport_disconnect(transport_of(async_socket));

    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_084 (records recycled after the callbacks) */
    lock_acquire(&async_socket->lock);
    async_socket__call_back_all(async_socket, &to_call_back);
    leave_locked(async_socket, &scope);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_041 */
    socket_set_state_locked(async_socket, STATE_CLOSED);
    socket_unlock(async_socket);
    closing_here = closing.next;
    socket_lifetime__wake_waiters();
    socket_release(async_socket);
}
