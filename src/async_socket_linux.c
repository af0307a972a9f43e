/* async_socket for Linux.
 *
 * Each socket is registered with the completion port once, at open, edge-triggered for input and
 * output. From then on the socket keeps three FIFO queues (sends, receives, notifies) and two
 * readiness flags, and a single "dispatcher" at a time (whichever worker got the event) moves
 * the queues forward. Nothing is re-armed per operation, so a pending receive, a send waiting
 * for room and a notify never overwrite each other's registration.
 *
 * Locking: one mutex per socket guards its state, queues and flags. It is never held across a
 * syscall or a user callback: work is taken out under the lock, done without it, and the finished
 * operations are called back after it is released.
 *
 * Lifetime: the user's handle is one reference; a worker delivering an event, a pending post and
 * an API call that may call back inline each hold another. The last release tears the socket
 * down, so a callback may destroy its own socket. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/completion_port_linux.h"
#include "c_pal/execution_engine.h"
#include "log_internal.h"
#include "c_pal/platform.h"
#include "c_pal/socket_transport.h"
#include "address_text.h"
#include "callback_scope.h"
#include "lock.h"
#include "socket_transport_internal.h"
#include "sys.h"

MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_OPEN_RESULT, ASYNC_SOCKET_OPEN_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_SEND_SYNC_RESULT, ASYNC_SOCKET_SEND_SYNC_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_SEND_RESULT, ASYNC_SOCKET_SEND_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_RECEIVE_RESULT, ASYNC_SOCKET_RECEIVE_RESULT_VALUES)
MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_NOTIFY_IO_TYPE, ASYNC_SOCKET_NOTIFY_IO_TYPE_VALUES)
MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_NOTIFY_IO_RESULT, ASYNC_SOCKET_NOTIFY_IO_RESULT_VALUES)

/* records with room for more buffers than this are freed rather than kept for reuse */
#define OP_MAX_REUSED_CAPACITY 64
/* how far down the free list a record with enough room is looked for */
#define OP_FREE_LIST_SCAN 4
/* batches of callbacks one dispatch delivers before it lets other sockets have the worker */
#define DISPATCH_BUDGET 4
/* bytes one dispatch moves through the transport before it lets other sockets have the worker:
 * a sender on the same worker as its reader then cannot run ahead and fill its socket buffer */
#define DISPATCH_BYTE_BUDGET (256u * 1024u)
#define MAX_IOV 64
#define IN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)
#define OUT_EVENTS (EPOLLOUT | EPOLLHUP | EPOLLERR)

typedef enum SOCKET_STATE_TAG
{
    STATE_NEW,     /* created, never opened */
    STATE_OPENING,
    STATE_OPEN,
    STATE_CLOSING,
    STATE_CLOSED   /* closed: the fd is gone, it cannot be opened again */
} SOCKET_STATE;

typedef enum IO_STATUS_TAG
{
    IO_DONE,        /* the operation finished */
    IO_WOULD_BLOCK, /* no (more) progress until the fd is ready */
    IO_EOF,         /* the peer closed its side */
    IO_FAILED,      /* an error; errno tells which */
    IO_CLOSED       /* close took the queues meanwhile: the op is no longer ours */
} IO_STATUS;

typedef union OP_CALLBACK_TAG
{
    ON_ASYNC_SOCKET_SEND_COMPLETE send;
    ON_ASYNC_SOCKET_RECEIVE_COMPLETE receive;
    ON_ASYNC_SOCKET_NOTIFY_IO_COMPLETE notify;
} OP_CALLBACK;

/* One queued operation, with its copy of the caller's buffer descriptors behind it. Records are
 * recycled through a per-socket free list (a record is reused for an operation with as many
 * buffers or fewer), so a socket in steady state does not allocate. */
typedef struct OP_TAG
{
    struct OP_TAG* next;
    OP_CALLBACK on_complete;
    void* context;
    uint32_t buffer_count;
    uint32_t index;  /* first buffer not yet fully sent (received) */
    uint32_t offset; /* bytes of buffers[index] already sent (received) */
    uint8_t result;  /* the completion result, set when the op leaves its queue */
    uint8_t kind;    /* OP_KIND */
    bool arming;     /* a notify whose re-arm is still in progress: events do not complete it yet */
    /* buffer descriptors the record has room for, at most UINT8_MAX (records with more than
     * OP_MAX_REUSED_CAPACITY are never reused, so the exact figure does not matter for them) */
    uint8_t capacity;
    /* followed by `capacity` ASYNC_SOCKET_BUFFERs (op_buffers) */
} OP;

/* The whole header is 40 bytes: a one-buffer record is 56. */
_Static_assert(sizeof(OP) == 40 || sizeof(void*) != 8, "an operation record header should stay 40 bytes");
_Static_assert(sizeof(OP) % _Alignof(ASYNC_SOCKET_BUFFER) == 0, "the buffer descriptors start right after the header");

/* The buffer descriptors behind a record's header. (Not a flexible array member: the socket
 * embeds a one-buffer record, and a struct with one cannot be a member of another.) */
static inline ASYNC_SOCKET_BUFFER* op_buffers(const OP* op)
{
    return (ASYNC_SOCKET_BUFFER*)((char*)op + sizeof(OP));
}

/* A record with room for one buffer, laid out as op_buffers expects. */
typedef struct OP_ONE_TAG
{
    OP header;
    ASYNC_SOCKET_BUFFER buffer;
} OP_ONE;

_Static_assert(offsetof(OP_ONE, buffer) == sizeof(OP), "an embedded record's buffer is where op_buffers looks");

/* Bytes an op has moved: its buffers before `index`, and `offset` of that one. */
static uint32_t op_progress(const OP* op)
{
    uint32_t total = op->offset;
    for (uint32_t i = 0; i < op->index; i++)
    {
        total += op_buffers(op)[i].length;
    }
    return total;
}

typedef enum OP_KIND_TAG
{
    KIND_SEND,
    KIND_RECEIVE,
    KIND_NOTIFY
} OP_KIND;

/* A FIFO as a circular list reached through its tail (tail->next is the head): one pointer per
 * queue, which matters with 10,000s of idle sockets. */
typedef struct OP_QUEUE_TAG
{
    OP* tail;
} OP_QUEUE;

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

/* What only a socket with a custom transport needs (with its engine, if any): kept out of the
 * default socket, which is the one there are 10,000s of. */
typedef struct SOCKET_EXTRAS_TAG
{
    EXECUTION_ENGINE_HANDLE execution_engine;
    ON_ASYNC_SOCKET_SEND on_send; /* NULL for the default transport (a socket with an engine) */
    void* on_send_context;
    ON_ASYNC_SOCKET_RECV on_recv;
    void* on_recv_context;
} SOCKET_EXTRAS;

/* Laid out small: an idle socket with a receive pending is this, one operation record and a
 * slot in the port's table. */
typedef struct ASYNC_SOCKET_TAG
{
    COMPLETION_PORT_IO io;
    COMPLETION_PORT_HANDLE port;
    /* A custom transport's SOCKET_EXTRAS; for the default transport with an execution engine, the
     * engine itself with EXTRAS_ENGINE_TAG set (c-pal code passes an engine to every create, and
     * an allocation for it would cost 48 bytes per socket); 0 for neither. See extras_of. */
    uintptr_t extras;
    struct SOCKET_TRANSPORT_TAG transport; /* the socket's transport, made in place (transport_of) */
    atomic_int refcount;
    LOCK lock;
    /* everything below is guarded by lock */
    uint16_t in_seq;         /* bumped per input event, to notice one that races an EAGAIN (a
                              * wrap needs 65,536 events within one syscall) */
    uint16_t out_seq;
    uint16_t pending_events; /* event bits not yet looked at by the dispatcher (all fit 16 bits) */
    uint16_t last_events;    /* the bits of the latest event */
    uint16_t inside;         /* threads inside this socket's scope (dispatcher, inline send, ...) */
    uint16_t in_io;          /* of those, the ones in a syscall section on the fd */
    uint8_t state : 3;       /* SOCKET_STATE (5 values); packed with the flags below, all guarded by the lock */
    /* one byte of flags: they share a memory location, which the lock guards as a whole */
    bool dispatching : 1;
    bool rerun : 1;          /* events arrived while dispatching */
    bool readable : 1;       /* a receive attempt may find data */
    bool writable : 1;       /* a send attempt may find room */
    bool hung_up : 1;        /* a hang-up or error was reported: only EAGAIN proves "no data" */
    bool write_busy : 1;     /* a thread is sending; only it touches the send side */
    bool destroy_waits : 1;  /* a destroy waits in destroy_waits for the teardown */
    bool refusal_said : 1;   /* a refused call has logged its WARNING; later ones are VERBOSE */
    bool counts_queued : 1;  /* the kernel reports the bytes left after each read (TCP_INQ);
                              * set at open, read under the lock like the other flags */
    /* The first errno that ended the connection (a dead link, or a peer that closed it; see
     * note_transport_error), 0 while none. After a dead link every pending and later operation
     * fails with ERROR: see link_failed. */
    uint8_t link_errno;
    /* Set by close when it takes the queues. A thread that was doing I/O without the lock (a
     * transport hook that closed the socket, or the circle case of close) then must not touch
     * the op it was working on, nor call the transport again. Read without the lock too. */
    atomic_bool drained;
    OP_QUEUE sends;
    OP_QUEUE receives;
    OP_QUEUE notifies;
    OP_QUEUE completed;      /* finished, not yet called back; close calls back what is left */
    OP* free_ops;
    /* The first record of the socket, in the same allocation: an idle socket with a one-buffer
     * receive pending then costs a single heap chunk. It goes round the free list like any other
     * record and is never freed on its own. */
    OP_ONE inline_op;
} ASYNC_SOCKET;

_Static_assert((EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP) <= UINT16_MAX, "the event bits the socket keeps fit 16 bits");

/* 168 bytes with its embedded one-buffer record, a 176-byte heap chunk on x86-64 glibc: with the
 * 8-byte slot in the port table, 184 bytes per idle socket with a one-buffer receive pending.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_052 */
_Static_assert(sizeof(ASYNC_SOCKET) <= 168 || sizeof(void*) != 8, "an async socket should stay within 168 bytes");

static inline void socket_unlock(ASYNC_SOCKET* socket);

/* Every socket's waiters share one futex word. Close and destroy wait rarely, and a wake meant
 * for another socket only makes a waiter look at its condition again; a word per socket cost
 * 8 bytes on each of 10,000s of idle sockets. */
static atomic_uint wait_seq;
static atomic_uint waiters;

/* Whether the socket moves its bytes itself (sendmsg/recvmsg over all buffers) rather than through
 * custom hooks. Fixed at create; read without the lock. */
/* Engine handles are heap pointers, so their low bit is free for the tag. */
#define EXTRAS_ENGINE_TAG ((uintptr_t)1)

static inline SOCKET_EXTRAS* extras_of(const ASYNC_SOCKET* socket)
{
    return ((socket->extras & EXTRAS_ENGINE_TAG) != 0) ? NULL : (SOCKET_EXTRAS*)socket->extras;
}

static EXECUTION_ENGINE_HANDLE engine_of(const ASYNC_SOCKET* socket)
{
    if ((socket->extras & EXTRAS_ENGINE_TAG) != 0)
    {
        return (EXECUTION_ENGINE_HANDLE)(socket->extras & ~EXTRAS_ENGINE_TAG);
    }
    return (socket->extras == 0) ? NULL : ((SOCKET_EXTRAS*)socket->extras)->execution_engine;
}

static inline bool uses_default_transport(const ASYNC_SOCKET* socket)
{
    const SOCKET_EXTRAS* extras = extras_of(socket);
    return extras == NULL || extras->on_send == NULL;
}

static SOCKET_TRANSPORT_HANDLE transport_of(ASYNC_SOCKET* socket)
{
    return &socket->transport;
}

static ASYNC_SOCKET* from_io(COMPLETION_PORT_IO* io)
{
    return (ASYNC_SOCKET*)((char*)io - offsetof(ASYNC_SOCKET, io));
}

/* ---- queues and operation records ---- */

static OP* queue_head(const OP_QUEUE* queue)
{
    return (queue->tail == NULL) ? NULL : queue->tail->next;
}

/* The op after `op` in the queue, NULL after the last one. */
static OP* queue_next(const OP_QUEUE* queue, const OP* op)
{
    return (op == queue->tail) ? NULL : op->next;
}

static void queue_push_front(OP_QUEUE* queue, OP* op)
{
    if (queue->tail == NULL)
    {
        op->next = op;
        queue->tail = op;
        return;
    }
    op->next = queue->tail->next;
    queue->tail->next = op;
}

static void queue_push(OP_QUEUE* queue, OP* op)
{
    queue_push_front(queue, op);
    queue->tail = op;
}

static OP* queue_pop(OP_QUEUE* queue)
{
    OP* op = queue_head(queue);
    if (op != NULL)
    {
        if (op == queue->tail)
        {
            queue->tail = NULL;
        }
        else
        {
            queue->tail->next = op->next;
        }
        op->next = NULL;
    }
    return op;
}

static bool queue_remove(OP_QUEUE* queue, OP* target)
{
    OP* previous = queue->tail;
    for (OP* op = queue_head(queue); op != NULL; previous = op, op = queue_next(queue, op))
    {
        if (op != target)
        {
            continue;
        }
        if (op == previous)
        {
            queue->tail = NULL; /* the only one */
        }
        else
        {
            previous->next = op->next;
            if (queue->tail == op)
            {
                queue->tail = previous;
            }
        }
        op->next = NULL;
        return true;
    }
    return false;
}

static bool peer_closed_errno(int error)
{
    return error == ECONNRESET || error == EPIPE || error == ENOTCONN;
}

/* The errnos that say the connection itself is dead, not that the peer closed it, nor that one
 * call failed for a local reason (EIO, ENOMEM and EINVAL from a custom transport leave the
 * socket usable, 11_095). */
static bool dead_link_errno(int error)
{
    return error == ETIMEDOUT || error == EHOSTUNREACH || error == ENETUNREACH || error == EHOSTDOWN ||
        error == ENETDOWN || error == ECONNABORTED || error == ECONNREFUSED;
}

_Static_assert(ETIMEDOUT <= UINT8_MAX && EHOSTUNREACH <= UINT8_MAX && ENETUNREACH <= UINT8_MAX && EHOSTDOWN <= UINT8_MAX &&
    ENETDOWN <= UINT8_MAX && ECONNABORTED <= UINT8_MAX && ECONNREFUSED <= UINT8_MAX && ECONNRESET <= UINT8_MAX &&
    EPIPE <= UINT8_MAX && ENOTCONN <= UINT8_MAX, "the errnos link_errno keeps fit a byte");

/* Lock held. Whether the connection died of an error (a link given up after TCP_USER_TIMEOUT, an
 * unreachable host): the kernel reports such an error to one call only, and the calls after it
 * see EPIPE or an end of stream, which would read as a clean close.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_036 */
static bool link_failed(const ASYNC_SOCKET* socket)
{
    return socket->link_errno != 0 && !peer_closed_errno(socket->link_errno);
}

/* Takes a record from the free list (lock held); NULL when the list is empty or the operation
 * needs more buffers than a recycled record holds. */
static OP* op_from_free_list(ASYNC_SOCKET* socket, uint32_t buffer_count)
{
    OP** link = &socket->free_ops;
    for (int i = 0; i < OP_FREE_LIST_SCAN && *link != NULL; i++, link = &(*link)->next)
    {
        OP* op = *link;
        if (op->capacity >= buffer_count)
        {
            *link = op->next;
            return op;
        }
    }
    return NULL;
}

static OP* op_allocate(uint32_t buffer_count)
{
    /* sized to the operation: a one-buffer receive pending on an idle socket costs 64 bytes */
    uint32_t capacity = (buffer_count == 0) ? 1 : buffer_count;
    OP* op = sys_malloc(sizeof(OP) + (size_t)capacity * sizeof(ASYNC_SOCKET_BUFFER));
    if (op == NULL)
    {
        LogError("cannot allocate an operation record for %u buffers", buffer_count);
        return NULL;
    }
    op->capacity = (uint8_t)((capacity > UINT8_MAX) ? UINT8_MAX : capacity);
    return op;
}

static void op_fill(OP* op, OP_KIND kind, const ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count, void* context)
{
    op->kind = (uint8_t)kind;
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_045: only the descriptors are copied; the bytes stay in
     * the caller's buffers until the transport takes them */
    if (buffer_count == 1 && payload != NULL)
    {
        op_buffers(op)[0] = payload[0]; /* the common case, without a call to memcpy */
    }
    else if (payload != NULL)
    {
        (void)memcpy(op_buffers(op), payload, (size_t)buffer_count * sizeof(ASYNC_SOCKET_BUFFER));
    }
    op->buffer_count = buffer_count;
    op->context = context;
    op->index = 0;
    op->offset = 0;
    op->arming = false;
    op->next = NULL;
}

/* Lock held. Large records are freed; the others wait on the free list for the next operation. */
static void op_recycle(ASYNC_SOCKET* socket, OP* op)
{
    if (op->capacity > OP_MAX_REUSED_CAPACITY)
    {
        sys_free(op);
        return;
    }
    op->next = socket->free_ops;
    socket->free_ops = op;
}

/* Gets a record for an operation: from the free list under the lock when possible, otherwise
 * allocated with the lock released. Returns with the lock held, or NULL (lock released). */
static OP* op_get_locked(ASYNC_SOCKET* socket, uint32_t buffer_count)
{
    lock_acquire(&socket->lock);
    OP* op = op_from_free_list(socket, buffer_count);
    if (op != NULL)
    {
        return op;
    }
    socket_unlock(socket);
    op = op_allocate(buffer_count);
    if (op != NULL)
    {
        lock_acquire(&socket->lock);
    }
    return op;
}

/* Lock held. The fd to name the socket by in a log line: its own while it has one, else the fd it
 * was registered with (close does not forget it), else -1 (never had one). */
static int fd_for_log(ASYNC_SOCKET* socket)
{
    if (socket->state == STATE_NEW)
    {
        /* close, which changes the transport without this lock, has not run */
        return socket->transport.fd;
    }
    /* the generation is given at completion_port_add (never 0), along with io.fd */
    bool registered = (__atomic_load_n(&socket->io.generation, __ATOMIC_RELAXED) & 0x7fffffffu) != 0;
    return registered ? socket->io.fd : -1;
}

/* How a refused call on a closed or failed socket is logged: that is the caller's expected flow
 * (a server that keeps sending to a peer that has gone), so only the first refusal of the socket
 * is a WARNING and the others are VERBOSE. A log line may run a user's sink: decided under the
 * lock, written after it.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_133 */
typedef struct REFUSAL_TAG
{
    bool first;
    int fd;
} REFUSAL;

/* Lock held. */
static REFUSAL refusal_locked(ASYNC_SOCKET* socket)
{
    REFUSAL refusal = {.first = !socket->refusal_said, .fd = fd_for_log(socket)};
    socket->refusal_said = true;
    return refusal;
}

#define LOG_REFUSAL(refusal, format, ...)                      \
    do                                                         \
    {                                                          \
        if ((refusal).first)                                   \
        {                                                      \
            LogWarning(format, __VA_ARGS__);                   \
        }                                                      \
        else                                                   \
        {                                                      \
            LogVerbose(format, __VA_ARGS__);                   \
        }                                                      \
    } while (0)

/* Reserves a record for an operation on an open socket. Returns it with the lock held; or NULL
 * with the lock released, *not_open telling a closed socket from a failed allocation. A refusal
 * (closed, or failed earlier) is logged here; `what` names the call. */
static OP* op_reserve_open_locked(ASYNC_SOCKET* socket, uint32_t buffer_count, bool* not_open, const char* what)
{
    *not_open = false;
    OP* op = op_get_locked(socket, buffer_count);
    if (op != NULL && (socket->state == STATE_NEW || socket->state == STATE_OPENING))
    {
        /* not opened yet: a mistake of the caller's, said every time */
        op_recycle(socket, op);
        int fd = fd_for_log(socket);
        socket_unlock(socket);
        *not_open = true;
        op = NULL;
        LogError("async socket fd=%d: %s refused: the socket is not open yet", fd, what);
    }
    else if (op != NULL && socket->state != STATE_OPEN)
    {
        op_recycle(socket, op);
        REFUSAL refusal = refusal_locked(socket);
        socket_unlock(socket);
        *not_open = true;
        op = NULL;
        LOG_REFUSAL(refusal, "async socket fd=%d: %s refused: the socket is closed", refusal.fd, what);
    }
    else if (op != NULL && link_failed(socket))
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_039: the fd can only fail again; say so now rather
         * than accept an operation that is certain to fail */
        int error = socket->link_errno;
        op_recycle(socket, op);
        REFUSAL refusal = refusal_locked(socket);
        socket_unlock(socket);
        op = NULL;
        LOG_REFUSAL(refusal, "async socket fd=%d: %s refused: the connection failed earlier (errno=%d); close it", refusal.fd, what, error);
    }
    return op;
}

/* ---- waiting, references, scopes ---- */

static void wake_waiters(ASYNC_SOCKET* socket)
{
    (void)socket;
    (void)atomic_fetch_add(&wait_seq, 1);
    if (atomic_load(&waiters) != 0)
    {
        (void)syscall(SYS_futex, &wait_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
}

/* Set, lock held, when a closer waiting for this thread to leave the socket must be woken: the
 * FUTEX_WAKE is a syscall, so it waits until socket_unlock has released the lock.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_171 */
static _Thread_local bool wake_after_unlock __attribute__((tls_model("initial-exec")));

static inline void socket_unlock(ASYNC_SOCKET* socket)
{
    lock_release(&socket->lock);
    if (wake_after_unlock)
    {
        wake_after_unlock = false;
        wake_waiters(socket);
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
        (void)syscall(SYS_futex, &wait_seq, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
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

static void socket_teardown(ASYNC_SOCKET* socket)
{
    DESTROY_WAIT* wait = take_destroy_wait(socket);
    COMPLETION_PORT_HANDLE port = socket->port;
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_103 */
    socket_transport__deinit(transport_of(socket));
    EXECUTION_ENGINE_HANDLE engine = engine_of(socket);
    if (engine != NULL)
    {
        execution_engine_dec_ref(engine);
    }
    sys_free(extras_of(socket));
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_023 */
    while (socket->free_ops != NULL)
    {
        OP* op = socket->free_ops;
        socket->free_ops = op->next;
        if (op != &socket->inline_op.header)
        {
            sys_free(op);
        }
    }
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
        (void)syscall(SYS_futex, &wait->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static void socket_hold(ASYNC_SOCKET* socket)
{
    (void)atomic_fetch_add_explicit(&socket->refcount, 1, memory_order_relaxed);
}

static void socket_release(ASYNC_SOCKET* socket)
{
    if (atomic_fetch_sub_explicit(&socket->refcount, 1, memory_order_acq_rel) == 1)
    {
        socket_teardown(socket);
    }
}

static void io_hold(COMPLETION_PORT_IO* io)
{
    socket_hold(from_io(io));
}

static void io_release(COMPLETION_PORT_IO* io)
{
    socket_release(from_io(io));
}

static void on_io_events(COMPLETION_PORT_IO* io, uint32_t events);

static const COMPLETION_PORT_IO_OPS socket_io_ops = { on_io_events, io_hold, io_release };

/* Lock held. */
static void enter_locked(ASYNC_SOCKET* socket, CALLBACK_SCOPE* scope)
{
    socket->inside++;
    callback_scope__enter(scope, socket);
}

/* Lock held. */
static void leave_locked(ASYNC_SOCKET* socket, CALLBACK_SCOPE* scope)
{
    callback_scope__exit(scope);
    socket->inside--;
    if (socket->state == STATE_CLOSING)
    {
        wake_after_unlock = true;
    }
}

/* Releases the lock for a syscall section on the fd: close waits for such sections even when it
 * may not wait for the callbacks of the threads in them (the circle case of close). The
 * calling thread's innermost scope is the one of this socket. */
static void unlock_for_io(ASYNC_SOCKET* socket)
{
    socket->in_io++;
    callback_scope__top->in_io = true;
    socket_unlock(socket);
}

static void relock_after_io(ASYNC_SOCKET* socket)
{
    lock_acquire(&socket->lock);
    callback_scope__top->in_io = false;
    socket->in_io--;
    if (socket->state == STATE_CLOSING)
    {
        wake_after_unlock = true;
    }
}

/* Lock held. Makes sure a dispatcher will look at the queues: the running one, told to go round
 * once more, or a new one the caller must post (returns true) after releasing the lock. */
static bool kick_locked(ASYNC_SOCKET* socket)
{
    if (socket->dispatching)
    {
        socket->rerun = true;
        return false;
    }
    return true;
}

static void post_dispatch(ASYNC_SOCKET* socket)
{
    if (completion_port_post(socket->port, &socket->io) != 0)
    {
        /* Only reachable with invalid arguments, which cannot happen here. */
        LogError("cannot post async socket fd=%d to the completion port", socket->io.fd);
    }
}

/* ---- moving bytes ---- */

/* Builds iovecs for buffers[index..] starting `offset` bytes into buffers[index]. */
static int fill_iov(struct iovec* iov, int iov_room, const ASYNC_SOCKET_BUFFER* buffers, uint32_t count, uint32_t index, uint32_t offset)
{
    int n = 0;
    for (uint32_t i = index; i < count && n < iov_room; i++, n++)
    {
        uint32_t skip = (i == index) ? offset : 0;
        iov[n].iov_base = (char*)buffers[i].buffer + skip;
        iov[n].iov_len = buffers[i].length - skip;
    }
    return n;
}

/* Moves (index, offset) forward by `bytes`. */
static void advance(const ASYNC_SOCKET_BUFFER* buffers, uint32_t count, uint32_t* index, uint32_t* offset, size_t bytes)
{
    while (bytes > 0 && *index < count)
    {
        size_t left = buffers[*index].length - *offset;
        if (bytes < left)
        {
            *offset += (uint32_t)bytes;
            return;
        }
        bytes -= left;
        (*index)++;
        *offset = 0;
    }
}

/* One transport send from buffers[index] on; *offered is how many bytes it was asked to take. */
static ssize_t transport_send_once(ASYNC_SOCKET* socket, const ASYNC_SOCKET_BUFFER* buffers, uint32_t count, uint32_t index, uint32_t offset, size_t* offered)
{
    if (uses_default_transport(socket))
    {
        /* several buffers in one sendmsg */
        struct iovec iov[MAX_IOV];
        int n = fill_iov(iov, MAX_IOV, buffers, count, index, offset);
        *offered = 0;
        for (int i = 0; i < n; i++)
        {
            *offered += iov[i].iov_len;
        }
        return socket_transport__sendv(transport_of(socket), iov, n);
    }
    *offered = buffers[index].length - offset;
    ssize_t result;
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_013 */
    do
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_04_004 */
        result = extras_of(socket)->on_send(extras_of(socket)->on_send_context, socket, (const char*)buffers[index].buffer + offset, *offered);
    } while (result < 0 && errno == EINTR);
    return result;
}

/* Sends buffers[*index..] until all are sent or the transport cannot take more. */
static IO_STATUS send_buffers(ASYNC_SOCKET* socket, const ASYNC_SOCKET_BUFFER* buffers, uint32_t count, uint32_t* index, uint32_t* offset)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_053 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_101 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_017: the fd is non-blocking and nothing here waits */
    while (*index < count)
    {
        if (atomic_load_explicit(&socket->drained, memory_order_acquire))
        {
            return IO_CLOSED; /* a hook closed the socket: call the transport no more */
        }
        size_t offered;
        ssize_t sent = transport_send_once(socket, buffers, count, *index, *offset, &offered);
        if (sent < 0)
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_11_054 */
            /* Codes_SRS_ASYNC_SOCKET_LINUX_99_014: EAGAIN from any transport waits for readiness */
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? IO_WOULD_BLOCK : IO_FAILED;
        }
        if (sent == 0)
        {
            /* send(2) never takes nothing from a non-empty buffer; a custom transport that does
             * has broken its contract, and waiting for readiness could wait forever. It fails
             * like an I/O error (logged once, by whoever reports the failure). */
            errno = EIO;
            return IO_FAILED;
        }
        advance(buffers, count, index, offset, (size_t)sent);
        if ((size_t)sent < offered && uses_default_transport(socket) && sys_short_send_means_full())
        {
            /* a TCP socket takes all it has room for: a short send means it is full now, and
             * room made later raises an output edge (saves the syscall that would say EAGAIN) */
            return (*index < count) ? IO_WOULD_BLOCK : IO_DONE;
        }
    }
    return IO_DONE;
}

/* One recvmsg; with `queued`, *queued gets the kernel's count of the bytes left after it (-1: no
 * count). */
static ssize_t default_recv(ASYNC_SOCKET* socket, struct iovec* iov, int iov_count, int* queued)
{
    if (queued != NULL)
    {
        return socket_transport__recvv_inq(transport_of(socket), iov, iov_count, queued);
    }
    return socket_transport__recvv(transport_of(socket), iov, iov_count);
}

static ssize_t transport_recv_once(ASYNC_SOCKET* socket, OP* op, int* queued)
{
    ssize_t result;
    if (uses_default_transport(socket))
    {
        /* scatter over every buffer in one recvmsg */
        struct iovec iov[MAX_IOV];
        int n = fill_iov(iov, MAX_IOV, op_buffers(op), op->buffer_count, op->index, op->offset);
        return default_recv(socket, iov, n, queued);
    }
    ASYNC_SOCKET_BUFFER* buffer = &op_buffers(op)[op->index];
    do
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_083 */
        result = extras_of(socket)->on_recv(extras_of(socket)->on_recv_context, socket, (char*)buffer->buffer + op->offset, buffer->length - op->offset);
    } while (result < 0 && errno == EINTR);
    return result;
}

static size_t bytes_asked(const ASYNC_SOCKET* socket, const OP* op)
{
    if (!uses_default_transport(socket))
    {
        return op_buffers(op)[op->index].length - op->offset;
    }
    size_t room = 0;
    /* only what one recvmsg is given: at most MAX_IOV buffers */
    for (uint32_t i = op->index; i < op->buffer_count && i - op->index < MAX_IOV; i++)
    {
        room += op_buffers(op)[i].length - ((i == op->index) ? op->offset : 0);
    }
    return room;
}

typedef enum EMPTINESS_TAG
{
    MAYBE_MORE,   /* the transport may hold more data */
    SHORT_READ,   /* a TCP socket without a queued count gave less than asked: empty, unless an
                   * end of stream waits */
    NONE_QUEUED,  /* the kernel counted 0 bytes left after the read: empty, unless an end of
                   * stream or an error waits */
    WOULD_BLOCK   /* the transport said EAGAIN: empty */
} EMPTINESS;

/* Fills a receive with what the transport has now. IO_DONE (progress > 0) when data came in;
 * *emptiness tells what the last call says about data left in the transport. `counted`: the fd
 * reports the bytes left after each read (counts_queued). */
static IO_STATUS receive_into(ASYNC_SOCKET* socket, OP* op, bool counted, EMPTINESS* emptiness)
{
    *emptiness = MAYBE_MORE;
    for (;;)
    {
        if (atomic_load_explicit(&socket->drained, memory_order_acquire))
        {
            return IO_CLOSED; /* a hook closed the socket: call the transport no more */
        }
        size_t asked = bytes_asked(socket, op);
        int queued = -1;
        ssize_t received = transport_recv_once(socket, op, counted ? &queued : NULL);
        if (received < 0)
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_11_088 */
            /* Codes_SRS_ASYNC_SOCKET_LINUX_11_089 */
            bool would_block = (errno == EAGAIN || errno == EWOULDBLOCK);
            *emptiness = would_block ? WOULD_BLOCK : MAYBE_MORE;
            return (op_progress(op) > 0) ? IO_DONE : (would_block ? IO_WOULD_BLOCK : IO_FAILED);
        }
        if (received == 0)
        {
            /* end of stream: deliver what this receive already holds first */
            return (op_progress(op) > 0) ? IO_DONE : IO_EOF;
        }
        advance(op_buffers(op), op->buffer_count, &op->index, &op->offset, (size_t)received);
        if (queued >= 0)
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_99_152: the kernel's count decides, not the length of
             * the read: a read that filled the buffer with nothing left behind needs no call that
             * would only say EAGAIN, and one that TCP's urgent mark cut short goes on */
            if (queued == 0)
            {
                /* Codes_SRS_ASYNC_SOCKET_LINUX_99_153 */
                *emptiness = NONE_QUEUED;
                return IO_DONE;
            }
            if (op->index >= op->buffer_count)
            {
                return IO_DONE;
            }
            continue;
        }
        if ((size_t)received < asked)
        {
            /* A TCP socket that returns less than asked for had nothing more queued (a later
             * arrival raises a new edge). A custom transport may still hold more, so the socket
             * stays readable for it. */
            *emptiness = (uses_default_transport(socket) && sys_short_recv_means_empty()) ? SHORT_READ : MAYBE_MORE;
            return IO_DONE;
        }
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_092 */
        if (op->index >= op->buffer_count)
        {
            return IO_DONE;
        }
    }
}

/* ---- completing operations ---- */

/* What a callback needs, copied out of its record so that the record can be reused (for
 * instance by the receive that the callback posts) before the callback runs. */
typedef struct COMPLETION_TAG
{
    OP_KIND kind;
    OP_CALLBACK on_complete;
    void* context;
    uint32_t result;
    uint32_t bytes;
} COMPLETION;

static void call_back(const COMPLETION* completion)
{
    switch (completion->kind)
    {
    case KIND_SEND:
        completion->on_complete.send(completion->context, (ASYNC_SOCKET_SEND_RESULT)completion->result);
        break;
    case KIND_RECEIVE:
        completion->on_complete.receive(completion->context, (ASYNC_SOCKET_RECEIVE_RESULT)completion->result, completion->bytes);
        break;
    default:
        completion->on_complete.notify(completion->context, (ASYNC_SOCKET_NOTIFY_IO_RESULT)completion->result);
        break;
    }
}

/* Lock held. An op leaves its queue for the completed queue with its result. Every op is in
 * exactly one queue at a time, so it is called back exactly once.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_006 */
static void finish_op(ASYNC_SOCKET* socket, OP* op, uint32_t result)
{
    op->result = (uint8_t)result;
    queue_push(&socket->completed, op);
}

/* Lock held on entry and exit, released around each callback. Calls back at most `limit` ops of
 * `list`, one at a time in order, recycling each record first; with `while_open`, stops as soon
 * as the socket is no longer open, leaving the rest to close.
 * Codes_SRS_ASYNC_SOCKET_LINUX_11_087 (after an error too, the record goes back) */
static void call_back_list(ASYNC_SOCKET* socket, OP_QUEUE* list, bool while_open, uint32_t limit)
{
    OP* op;
    while (limit-- > 0 && (!while_open || socket->state == STATE_OPEN) && (op = queue_pop(list)) != NULL)
    {
        COMPLETION completion = {
            .kind = (OP_KIND)op->kind,
            .on_complete = op->on_complete,
            .context = op->context,
            .result = op->result,
            /* only a receive that completed OK reports bytes (an abandoned one may hold some) */
            .bytes = (op->kind == KIND_RECEIVE && op->result == ASYNC_SOCKET_RECEIVE_OK) ? op_progress(op) : 0,
        };
        op_recycle(socket, op);
        socket_unlock(socket);
        call_back(&completion);
        lock_acquire(&socket->lock);
    }
}

static ASYNC_SOCKET_SEND_RESULT send_failure_result(int error)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_098 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_099 */
    return peer_closed_errno(error) ? ASYNC_SOCKET_SEND_ABANDONED : ASYNC_SOCKET_SEND_ERROR;
}

/* Lock held. Records the first error that ends the connection (a dead link, or a peer that
 * closed it: whichever comes first decides) and returns the errno that decides the op's result:
 * after a dead link that is the link's error, whatever this call saw. */
static int note_transport_error(ASYNC_SOCKET* socket, int error)
{
    if (socket->link_errno == 0 && (dead_link_errno(error) || peer_closed_errno(error)))
    {
        socket->link_errno = (uint8_t)error;
    }
    return link_failed(socket) ? socket->link_errno : error;
}

/* Lock held. */
static bool has_pending(const ASYNC_SOCKET* socket)
{
    return socket->sends.tail != NULL || socket->receives.tail != NULL || socket->notifies.tail != NULL;
}

/* Lock held. After a dead link, completes with ERROR every op still queued that no thread is
 * working on: the receives (only the dispatcher, which calls this, receives), the notifies not
 * being armed, and the sends unless a sender is in the transport (it runs into the dead fd and
 * finishes them itself).
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_037 */
__attribute__((noinline)) static void fail_pending(ASYNC_SOCKET* socket)
{
    OP* op;
    while (!socket->write_busy && (op = queue_pop(&socket->sends)) != NULL)
    {
        finish_op(socket, op, ASYNC_SOCKET_SEND_ERROR);
    }
    while ((op = queue_pop(&socket->receives)) != NULL)
    {
        finish_op(socket, op, ASYNC_SOCKET_RECEIVE_ERROR);
    }
    OP_QUEUE keep = {NULL};
    while ((op = queue_pop(&socket->notifies)) != NULL)
    {
        if (op->arming)
        {
            queue_push(&keep, op); /* its re-arm's event completes it (dispatch_notifies) */
            continue;
        }
        finish_op(socket, op, ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR);
    }
    socket->notifies = keep;
}

/* ---- the dispatcher ---- */

/* Lock held. Completes the notifies that the event bits satisfy. */
static void dispatch_notifies(ASYNC_SOCKET* socket, uint32_t events)
{
    OP_QUEUE keep = {NULL};
    OP* op;
    while ((op = queue_pop(&socket->notifies)) != NULL)
    {
        bool in = (op->buffer_count == ASYNC_SOCKET_NOTIFY_IO_TYPE_IN);
        if (op->arming)
        {
            queue_push(&keep, op);
            continue;
        }
        if ((events & EPOLLERR) != 0 || link_failed(socket))
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_11_085 */
            /* Codes_SRS_ASYNC_SOCKET_LINUX_04_011 */
            finish_op(socket, op, ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR);
        }
        else if (in && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0)
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_11_082 */
            /* Codes_SRS_ASYNC_SOCKET_LINUX_04_009 */
            finish_op(socket, op, ASYNC_SOCKET_NOTIFY_IO_RESULT_IN);
        }
        else if (!in && (events & (EPOLLOUT | EPOLLHUP)) != 0)
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_11_094 */
            /* Codes_SRS_ASYNC_SOCKET_LINUX_04_010 */
            finish_op(socket, op, ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT);
        }
        else
        {
            queue_push(&keep, op);
        }
    }
    socket->notifies = keep;
}

/* Lock held. Moves the queue forward by `sent` bytes: the sends it covers fully are finished. */
static void consume_sent(ASYNC_SOCKET* socket, size_t sent)
{
    while (sent > 0 && socket->sends.tail != NULL)
    {
        OP* op = queue_head(&socket->sends);
        size_t left = 0;
        for (uint32_t i = op->index; i < op->buffer_count; i++)
        {
            left += op_buffers(op)[i].length - ((i == op->index) ? op->offset : 0);
        }
        size_t step = (sent < left) ? sent : left;
        advance(op_buffers(op), op->buffer_count, &op->index, &op->offset, step);
        sent -= step;
        if (op->index < op->buffer_count)
        {
            return;
        }
        finish_op(socket, queue_pop(&socket->sends), ASYNC_SOCKET_SEND_OK);
    }
}

/* Lock held. With the default transport, several queued sends go out in one sendmsg: the iovecs
 * of the oldest ones, in order. Returns the iovec count; *offered gets their byte total. */
static int gather_sends(ASYNC_SOCKET* socket, struct iovec* iov, size_t* offered)
{
    int n = 0;
    for (OP* op = queue_head(&socket->sends); op != NULL && n < MAX_IOV; op = queue_next(&socket->sends, op))
    {
        n += fill_iov(iov + n, MAX_IOV - n, op_buffers(op), op->buffer_count, op->index, op->offset);
    }
    *offered = 0;
    for (int i = 0; i < n; i++)
    {
        *offered += iov[i].iov_len;
    }
    return n;
}

/* Lock held on entry and exit; released around the syscall. One step of the send queue: a
 * gathered sendmsg for the default transport, the head op for a custom one. Returns the status
 * of the step and the errno of a failure. */
static IO_STATUS send_step(ASYNC_SOCKET* socket, int* error, size_t* moved)
{
    OP* op = queue_head(&socket->sends);
    if (!uses_default_transport(socket))
    {
        unlock_for_io(socket);
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_096 */
        IO_STATUS status = send_buffers(socket, op_buffers(op), op->buffer_count, &op->index, &op->offset);
        *error = errno;
        relock_after_io(socket);
        if (atomic_load_explicit(&socket->drained, memory_order_relaxed))
        {
            return IO_CLOSED;
        }
        if (status == IO_DONE)
        {
            finish_op(socket, queue_pop(&socket->sends), ASYNC_SOCKET_SEND_OK);
        }
        return status;
    }
    struct iovec iov[MAX_IOV];
    size_t offered;
    int count = gather_sends(socket, iov, &offered);
    unlock_for_io(socket);
    ssize_t sent = socket_transport__sendv(transport_of(socket), iov, count);
    *error = errno;
    relock_after_io(socket);
    if (atomic_load_explicit(&socket->drained, memory_order_relaxed))
    {
        return IO_CLOSED;
    }
    if (sent < 0)
    {
        return (*error == EAGAIN || *error == EWOULDBLOCK) ? IO_WOULD_BLOCK : IO_FAILED;
    }
    consume_sent(socket, (size_t)sent);
    *moved += (size_t)sent;
    /* a short send means the socket buffer is full (see send_buffers) */
    return ((size_t)sent < offered && sys_short_send_means_full()) ? IO_WOULD_BLOCK : IO_DONE;
}

/* Lock held on entry and exit; released around the syscalls. Sends the queued sends, oldest
 * first, while the transport takes bytes. */
static size_t dispatch_sends(ASYNC_SOCKET* socket)
{
    size_t moved = 0;
    while (socket->writable && socket->sends.tail != NULL && socket->state == STATE_OPEN)
    {
        uint32_t seen = socket->out_seq;
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_002: one writer at a time, and the head op stays at the
         * head until all of it is sent, so a payload is never split by another one */
        socket->write_busy = true;
        int error = 0;
        IO_STATUS status = send_step(socket, &error, &moved);
        socket->write_busy = false;
        if (status == IO_CLOSED)
        {
            return moved; /* close took the queue while this thread was sending */
        }
        if (status == IO_WOULD_BLOCK)
        {
            /* an output event that raced the EAGAIN means there may be room again */
            socket->writable = (socket->out_seq != seen);
        }
        else if (status == IO_FAILED)
        {
            /* Codes_SRS_ASYNC_SOCKET_LINUX_11_097 */
            finish_op(socket, queue_pop(&socket->sends), send_failure_result(note_transport_error(socket, error)));
            if (link_failed(socket))
            {
                break; /* the dispatcher fails the rest without trying the dead fd (fail_pending) */
            }
        }
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_100 (records are recycled after their callbacks) */
    }
    return moved;
}

/* Lock held. */
static ASYNC_SOCKET_RECEIVE_RESULT receive_result(ASYNC_SOCKET* socket, IO_STATUS status, int error)
{
    if (status == IO_DONE)
    {
        return ASYNC_SOCKET_RECEIVE_OK;
    }
    if (status == IO_FAILED)
    {
        error = note_transport_error(socket, error);
    }
    else if (link_failed(socket))
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_038: the end of stream that follows a dead link's
         * error is not a close by the peer (devdoc D28) */
        return ASYNC_SOCKET_RECEIVE_ERROR;
    }
    if (status == IO_EOF)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_091 */
        return ASYNC_SOCKET_RECEIVE_ABANDONED;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_090 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_095 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_086 */
    return (error == ECONNRESET) ? ASYNC_SOCKET_RECEIVE_ABANDONED : ASYNC_SOCKET_RECEIVE_ERROR;
}

/* Lock held. With the default transport one recvmsg fills the posted receives in order: the
 * iovecs of the oldest receives that fit whole in one call. Returns how many receives the iovecs
 * cover (0: the oldest alone does not fit, use the general path). */
static uint32_t gather_receives(ASYNC_SOCKET* socket, struct iovec* iov, int* iov_count, size_t* asked)
{
    uint32_t ops = 0;
    int n = 0;
    *asked = 0;
    for (OP* op = queue_head(&socket->receives); op != NULL && op->buffer_count <= (uint32_t)(MAX_IOV - n); op = queue_next(&socket->receives, op), ops++)
    {
        int added = fill_iov(iov + n, MAX_IOV - n, op_buffers(op), op->buffer_count, op->index, op->offset);
        for (int i = n; i < n + added; i++)
        {
            *asked += iov[i].iov_len;
        }
        n += added;
    }
    *iov_count = n;
    return ops;
}

/* Lock held. Hands the bytes of one scattered recvmsg to the receives it covered, oldest first:
 * each receive that got bytes is finished, in order; the last one may be partly filled. */
static void distribute_received(ASYNC_SOCKET* socket, size_t received)
{
    while (received > 0)
    {
        OP* op = queue_head(&socket->receives);
        size_t room = bytes_asked(socket, op);
        size_t take = (received < room) ? received : room;
        advance(op_buffers(op), op->buffer_count, &op->index, &op->offset, take);
        received -= take;
        finish_op(socket, queue_pop(&socket->receives), ASYNC_SOCKET_RECEIVE_OK);
    }
}

/* Lock held on entry and exit; released around the syscall. Receives posted on the default
 * transport: one recvmsg fills as many of them as the data covers (a streaming reader that keeps
 * several receives posted pays one syscall for all of them). Returns the bytes received.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_027 */
static size_t dispatch_receives_scattered(ASYNC_SOCKET* socket, struct iovec* iov, int iov_count, size_t asked)
{
    uint32_t seen = socket->in_seq;
    int queued = -1;
    bool counted = socket->counts_queued;
    unlock_for_io(socket);
    ssize_t received = default_recv(socket, iov, iov_count, counted ? &queued : NULL);
    int error = errno;
    relock_after_io(socket);
    if (atomic_load_explicit(&socket->drained, memory_order_relaxed))
    {
        return 0; /* close took the receives meanwhile: they are not ours */
    }
    bool would_block = received < 0 && (error == EAGAIN || error == EWOULDBLOCK);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_152: with a queued count, the count says whether the
     * socket is empty; without one, a short read does (see dispatch_one_receive) */
    bool short_read = received > 0 && (queued >= 0 ? queued == 0 : ((size_t)received < asked && sys_short_recv_means_empty())) &&
        !socket->hung_up;
    if ((would_block || short_read) && socket->in_seq == seen)
    {
        socket->readable = false; /* see dispatch_one_receive */
    }
    if (received > 0)
    {
        distribute_received(socket, (size_t)received);
        return (size_t)received;
    }
    if (!would_block)
    {
        /* an end of stream or an error goes to the oldest receive, as with a single one */
        IO_STATUS status = (received == 0) ? IO_EOF : IO_FAILED;
        finish_op(socket, queue_pop(&socket->receives), receive_result(socket, status, error));
    }
    return 0;
}

/* Lock held on entry and exit. Several receives posted on the default transport: fills them with
 * one recvmsg when the oldest two fit in one call (returns true, *moved = bytes received). Kept
 * out of line so that the one-receive path below stays small. */
__attribute__((noinline)) static bool dispatch_several_receives(ASYNC_SOCKET* socket, size_t* moved)
{
    struct iovec iov[MAX_IOV];
    int iov_count;
    size_t asked;
    if (gather_receives(socket, iov, &iov_count, &asked) < 2)
    {
        return false;
    }
    *moved = dispatch_receives_scattered(socket, iov, iov_count, asked);
    return true;
}

/* Lock held on entry and exit. Tries to complete the oldest receive; receives complete one at a
 * time so that their callbacks run in the order they were posted.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_005 */
static size_t dispatch_one_receive(ASYNC_SOCKET* socket)
{
    if (!socket->readable || socket->receives.tail == NULL || socket->state != STATE_OPEN)
    {
        return 0;
    }
    if (uses_default_transport(socket) && socket->receives.tail->next != socket->receives.tail)
    {
        size_t moved;
        if (dispatch_several_receives(socket, &moved))
        {
            return moved;
        }
    }
    /* The op stays at the head of the queue while its bytes come in: only the dispatcher removes
     * receives, and close waits for the dispatcher before it abandons the queue. */
    OP* op = queue_head(&socket->receives);
    uint32_t seen = socket->in_seq;
    bool counted = socket->counts_queued;
    unlock_for_io(socket);

    EMPTINESS emptiness;
    IO_STATUS status = receive_into(socket, op, counted, &emptiness);
    int error = errno;

    relock_after_io(socket);
    if (status == IO_CLOSED || atomic_load_explicit(&socket->drained, memory_order_relaxed))
    {
        return 0; /* close took the op (a transport hook closed the socket): it is not ours */
    }
    /* A short read leaves an end of stream that arrived with the data unreported, and its
     * event is already spent: after a hang-up only EAGAIN proves the socket empty. */
    bool empty = (emptiness == WOULD_BLOCK) || ((emptiness == SHORT_READ || emptiness == NONE_QUEUED) && !socket->hung_up);
    if (empty && socket->in_seq == seen)
    {
        socket->readable = false;
    }
    if (status == IO_WOULD_BLOCK)
    {
        return 0;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_093 (the record is recycled after its callback) */
    finish_op(socket, queue_pop(&socket->receives), receive_result(socket, status, error));
    return op_progress(op);
}

/* Lock held. Records what an event says about the fd. */
static void merge_events(ASYNC_SOCKET* socket, uint32_t events)
{
    if (events == 0)
    {
        return; /* a post: nothing new about the fd */
    }
    /* notifies look at what the fd reported */
    socket->pending_events = (uint16_t)(socket->pending_events | events);
    socket->last_events = (uint16_t)events;
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
    {
        socket->hung_up = true;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_046: an error on the connection (a reset, or a dead link
     * given up after TCP_USER_TIMEOUT) is in both IN_EVENTS and OUT_EVENTS, so every pending send
     * and receive tries the transport and completes with what it reports, without a close */
    /* A custom transport may need the other direction to make progress (TLS reads during a
     * write, and writes during a read), so for it any readiness lets both directions try. */
    uint32_t wakes = uses_default_transport(socket) ? events : (events | EPOLLIN | EPOLLOUT);
    if ((wakes & IN_EVENTS) != 0)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_019: hang-ups and errors make receives try the
         * transport, which then reports the end of the stream or the error without losing bytes
         * still queued before it */
        socket->readable = true;
        socket->in_seq++;
    }
    if ((wakes & OUT_EVENTS) != 0)
    {
        socket->writable = true;
        socket->out_seq++;
    }
}

/* Lock held. Moves the socket's queues forward until nothing is left to do, or until it has
 * called back DISPATCH_BUDGET batches or moved DISPATCH_BYTE_BUDGET bytes (see devdoc D25): then
 * it returns true and the caller posts the socket, so
 * that a socket whose callbacks keep issuing work (a sender whose every send goes out at once)
 * lets the worker serve the other ready sockets, its own peer among them, in between.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_026 */
static bool dispatch_loop(ASYNC_SOCKET* socket)
{
    unsigned deliveries = 0;
    size_t moved = 0;
    for (;;)
    {
        if (socket->state != STATE_OPEN)
        {
            return false;
        }
        uint32_t events = socket->pending_events;
        socket->pending_events = 0;
        socket->rerun = false;
        if (events != 0)
        {
            dispatch_notifies(socket, events);
        }
        if (!socket->write_busy)
        {
            moved += dispatch_sends(socket);
        }
        moved += dispatch_one_receive(socket);
        if (link_failed(socket))
        {
            fail_pending(socket);
        }
        if (socket->completed.tail == NULL)
        {
            if (!socket->rerun)
            {
                return false;
            }
            continue;
        }
        if (deliveries == DISPATCH_BUDGET || moved >= DISPATCH_BYTE_BUDGET)
        {
            return true;
        }
        deliveries++;
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_007: a callback that closes the socket stops this
         * delivery; close calls back what is left before it returns */
        /* only the ops finished so far: sends that these callbacks issue and that go out at once
         * join the list, and count towards the next batch, not this one */
        uint32_t batch = 0;
        for (OP* op = queue_head(&socket->completed); op != NULL; op = queue_next(&socket->completed, op))
        {
            batch++;
        }
        call_back_list(socket, &socket->completed, true, batch);
    }
}

/* The completion port calls this on a worker with the event bits, or 0 for a post. */
static void on_io_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    ASYNC_SOCKET* socket = from_io(io);
    CALLBACK_SCOPE scope;

    lock_acquire(&socket->lock);
    merge_events(socket, events);
    if (socket->dispatching || socket->state != STATE_OPEN)
    {
        /* the running dispatcher will look at the new events before it stops */
        socket->rerun = true;
        socket_unlock(socket);
        return;
    }
    socket->dispatching = true;
    enter_locked(socket, &scope);
    bool yielded = dispatch_loop(socket);
    socket->dispatching = false;
    leave_locked(socket, &scope);
    socket_unlock(socket);
    if (yielded)
    {
        post_dispatch(socket);
    }
}

/* ---- create / destroy ---- */

/* Default transport hooks, used when async_socket_create is called. async_socket moves the bytes
 * of the default transport itself with sendmsg/recvmsg over all buffers at once; these hooks do
 * the same for one buffer, for whoever calls them through the public callback types. */
static int on_socket_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)context;
    struct iovec iov = {.iov_base = (void*)buf, .iov_len = len};
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_052 */
    return (int)socket_transport__sendv(transport_of(async_socket), &iov, 1);
}

static int on_socket_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)context;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_007 */
    return (int)socket_transport__recvv(transport_of(async_socket), &iov, 1);
}

ASYNC_SOCKET_HANDLE async_socket_create(EXECUTION_ENGINE_HANDLE execution_engine, SOCKET_HANDLE socket_handle)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_001 */
    return async_socket_create_with_transport(execution_engine, socket_handle, on_socket_send, NULL, on_socket_recv, NULL);
}

ASYNC_SOCKET_HANDLE async_socket_create_with_transport(EXECUTION_ENGINE_HANDLE execution_engine, SOCKET_HANDLE socket_handle, ON_ASYNC_SOCKET_SEND on_send, void* on_send_context, ON_ASYNC_SOCKET_RECV on_recv, void* on_recv_context)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_002 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_003 */
    if (on_send == NULL || on_recv == NULL)
    {
        LogError("invalid arguments: on_send=%p, on_recv=%p (neither may be NULL)", (void*)on_send, (void*)on_recv);
        return NULL;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_001 */
    ASYNC_SOCKET* socket = sys_calloc(1, sizeof(ASYNC_SOCKET));
    if (socket == NULL)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_006 */
        LogError("cannot allocate an async socket for fd=%d", socket_handle);
        return NULL;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_005 */
    socket->port = platform_get_completion_port();
    if (socket->port == NULL)
    {
        /* platform_get_completion_port logged the one line this failure gets */
        sys_free(socket);
        return NULL;
    }
    bool default_transport = (on_send == on_socket_send && on_recv == on_socket_recv);
    if (default_transport && ((uintptr_t)execution_engine & EXTRAS_ENGINE_TAG) == 0)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_154: the engine needs no allocation of its own */
        socket->extras = (execution_engine == NULL) ? 0 : ((uintptr_t)execution_engine | EXTRAS_ENGINE_TAG);
    }
    else
    {
        SOCKET_EXTRAS* extras = sys_malloc(sizeof(SOCKET_EXTRAS));
        if (extras == NULL)
        {
            LogError("cannot allocate the transport hooks of an async socket for fd=%d", socket_handle);
            completion_port_dec_ref(socket->port);
            sys_free(socket);
            return NULL;
        }
        extras->execution_engine = execution_engine;
        extras->on_send = default_transport ? NULL : on_send;
        extras->on_send_context = on_send_context;
        extras->on_recv = default_transport ? NULL : on_recv;
        extras->on_recv_context = on_recv_context;
        socket->extras = (uintptr_t)extras;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_020: an INVALID_SOCKET is accepted here and refused by
     * open (SRS_ASYNC_SOCKET_LINUX_11_003). The transport lives in the socket and cannot fail,
     * so nothing after the allocations above fails: a failed create leaves the fd with the
     * caller. */
    (void)socket_transport__init_from_socket(&socket->transport, socket_handle);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_002 */
    if (execution_engine != NULL)
    {
        execution_engine_inc_ref(execution_engine);
    }
    socket->io.ops = &socket_io_ops;
    socket->inline_op.header.capacity = 1;
    socket->free_ops = &socket->inline_op.header;
    atomic_init(&socket->refcount, 1);
    lock_init(&socket->lock);
    socket->state = STATE_NEW;
    return socket;
}

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
        (void)syscall(SYS_futex, &wait.done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
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

/* ---- open ---- */

int async_socket_open_async(ASYNC_SOCKET_HANDLE async_socket, ON_ASYNC_SOCKET_OPEN_COMPLETE on_open_complete, void* on_open_complete_context)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_024 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_025 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_026 */
    if (async_socket == NULL || on_open_complete == NULL)
    {
        LogError("invalid arguments: async_socket=%p, on_open_complete=%p", (void*)async_socket, (void*)on_open_complete);
        return -1;
    }
    lock_acquire(&async_socket->lock);
    SOCKET_STATE state = (SOCKET_STATE)async_socket->state;
    /* read only for a NEW socket: close, which changes the transport without this lock, has
     * then never run */
    bool has_fd = (state == STATE_NEW) && socket_transport_is_valid_socket(transport_of(async_socket));
    if (state != STATE_NEW || !has_fd)
    {
        int fd = fd_for_log(async_socket);
        socket_unlock(async_socket);
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_003 */
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_029 */
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_021 */
        LogError("cannot open async socket fd=%d: %s", fd,
            (state == STATE_OPEN || state == STATE_OPENING) ? "it is already open or opening" :
            (state != STATE_NEW) ? "it was closed; a closed socket cannot be reopened" :
            "it has no socket (created with INVALID_SOCKET)");
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_027 */
    async_socket->state = STATE_OPENING;
    socket_hold(async_socket); /* a destroy waiting for OPENING to end must not free under us */
    socket_unlock(async_socket);

    /* The caller may hand over a blocking fd (from accept() or a blocking connect()): make it
     * non-blocking so no call ever blocks, and close-on-exec so it does not leak into children.
     * Codes_SRS_ASYNC_SOCKET_LINUX_11_031: one registration for the socket's whole life.
     * Codes_SRS_ASYNC_SOCKET_LINUX_99_004
     * Codes_SRS_ASYNC_SOCKET_LINUX_99_016
     * A pipe or an eventfd would register and then never complete a receive: it is refused
     * first, with a line naming what it is (99_131). */
    bool ok = socket_transport__check_stream_socket(transport_of(async_socket)) == 0 &&
        socket_transport_set_nonblocking(transport_of(async_socket)) == 0 &&
        completion_port_add(async_socket->port, socket_transport_get_underlying_socket(transport_of(async_socket)), &async_socket->io) == 0;

    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_151 */
    bool counted = ok && uses_default_transport(async_socket) && socket_transport__enable_queued_count(transport_of(async_socket));

    lock_acquire(&async_socket->lock);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_032 */
    async_socket->state = ok ? STATE_OPEN : STATE_NEW;
    async_socket->counts_queued = counted;
    if (ok && !uses_default_transport(async_socket))
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_041: a custom transport may hold data, or room, that the
         * fd does not show (and the edge the registration raises is lost if the fd is no longer
         * ready when a worker takes it): only its EAGAIN makes an operation wait */
        async_socket->readable = true;
        async_socket->writable = true;
    }
    socket_unlock(async_socket);
    wake_waiters(async_socket);
    socket_release(async_socket);
    if (!ok)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_034: the step that failed logged the one line */
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_033 */
    on_open_complete(on_open_complete_context, ASYNC_SOCKET_OPEN_OK);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_028 */
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

/* Lock held. Moves every op of `queue` to `to` with the ABANDONED result of its kind. */
static void abandon_queue(OP_QUEUE* queue, OP_QUEUE* to, uint32_t result)
{
    OP* op;
    while ((op = queue_pop(queue)) != NULL)
    {
        op->result = (uint8_t)result;
        queue_push(to, op);
    }
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
    async_socket->state = STATE_CLOSING;
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
    OP_QUEUE to_call_back = async_socket->completed;
    async_socket->completed = (OP_QUEUE){NULL};
    abandon_queue(&async_socket->sends, &to_call_back, ASYNC_SOCKET_SEND_ABANDONED);
    abandon_queue(&async_socket->receives, &to_call_back, ASYNC_SOCKET_RECEIVE_ABANDONED);
    abandon_queue(&async_socket->notifies, &to_call_back, ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    CALLBACK_SCOPE scope;
    enter_locked(async_socket, &scope);
    socket_unlock(async_socket);

    completion_port_remove(async_socket->port, &async_socket->io);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_104 */
    socket_transport_disconnect(transport_of(async_socket));

    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_084 (records recycled after the callbacks) */
    lock_acquire(&async_socket->lock);
    call_back_list(async_socket, &to_call_back, false, UINT32_MAX);
    leave_locked(async_socket, &scope);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_041 */
    async_socket->state = STATE_CLOSED;
    socket_unlock(async_socket);
    closing_here = closing.next;
    wake_waiters(async_socket);
    socket_release(async_socket);
}

/* ---- send ---- */

static bool check_buffer_list(const char* function, const ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < buffer_count; i++)
    {
        if (payload[i].buffer == NULL || payload[i].length == 0)
        {
            LogError("%s: buffer %u of %u is invalid (buffer=%p, length=%u)", function, i, buffer_count, payload[i].buffer, payload[i].length);
            return false;
        }
        total += payload[i].length;
    }
    if (total > UINT32_MAX)
    {
        LogError("%s: the %u buffers add up to %llu bytes, more than UINT32_MAX", function, buffer_count, (unsigned long long)total);
        return false;
    }
    return true;
}

static inline bool check_buffers(const char* function, const ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count)
{
    /* the common case inline: one valid buffer, whose length cannot exceed UINT32_MAX */
    return (buffer_count == 1 && payload[0].buffer != NULL && payload[0].length != 0) ||
        check_buffer_list(function, payload, buffer_count);
}

static bool check_send_args(ASYNC_SOCKET_HANDLE async_socket, const ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count, ON_ASYNC_SOCKET_SEND_COMPLETE on_send_complete)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_043 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_044 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_045 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_049 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_050 */
    if (async_socket == NULL || payload == NULL || buffer_count == 0 || on_send_complete == NULL)
    {
        LogError("invalid arguments: async_socket=%p, payload=%p, buffer_count=%u, on_send_complete=%p",
            (void*)async_socket, (const void*)payload, buffer_count, (void*)on_send_complete);
        return false;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_046 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_047 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_048 */
    return check_buffers("async_socket_send_async", payload, buffer_count);
}

/* The send went out whole, or failed, before anything was queued. Returns what send_async
 * returns; the callback (success, or a failure after some bytes went out) runs inline. */
static ASYNC_SOCKET_SEND_SYNC_RESULT finish_inline_send(REFUSAL refusal, IO_STATUS status, int error, bool sent_some, ON_ASYNC_SOCKET_SEND_COMPLETE on_send_complete, void* context)
{
    if (status == IO_DONE)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_061 */
        on_send_complete(context, ASYNC_SOCKET_SEND_OK);
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_062 */
        return ASYNC_SOCKET_SEND_SYNC_OK;
    }
    if (sent_some)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_99_035: part of the payload is on the wire, so the send
         * was accepted; refusing it would invite a retry that sends those bytes twice. Like any
         * accepted operation that fails, it reports through its callback and logs nothing. */
        on_send_complete(context, send_failure_result(error));
        return ASYNC_SOCKET_SEND_SYNC_OK;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_008: failures return without calling back */
    if (error == ECONNRESET || error == ENOTCONN || error == EPIPE)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_059 */
        LOG_REFUSAL(refusal, "async socket fd=%d: send refused: the connection is gone (errno=%d)", refusal.fd, error);
        return ASYNC_SOCKET_SEND_SYNC_NOT_OPEN;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_060 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_063 */
    LogError("async socket fd=%d: send failed, errno=%d", refusal.fd, error);
    return ASYNC_SOCKET_SEND_SYNC_ERROR;
}

/* Lock held. Queues what is left of a send that stopped part-way, ahead of anything queued
 * meanwhile: its bytes are already partly on the wire. */
static void keep_remainder(ASYNC_SOCKET* socket, OP* op, const ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count, uint32_t index, uint32_t offset, ON_ASYNC_SOCKET_SEND_COMPLETE on_send_complete, void* context)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_055 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_056 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_003: resume inside the interrupted buffer */
    op_fill(op, KIND_SEND, payload, buffer_count, context);
    op->on_complete.send = on_send_complete;
    op->index = index;
    op->offset = offset;
    queue_push_front(&socket->sends, op);
}

/* Lock held: nothing is queued, nobody is sending and the calling thread is not inside one of
 * the socket's callbacks, so it may send straight away. */
static ASYNC_SOCKET_SEND_SYNC_RESULT send_inline(ASYNC_SOCKET* socket, OP* op, const ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count, ON_ASYNC_SOCKET_SEND_COMPLETE on_send_complete, void* context)
{
    CALLBACK_SCOPE scope;
    uint32_t seen = socket->out_seq;
    socket->write_busy = true;
    enter_locked(socket, &scope);
    socket_hold(socket); /* the inline callback may destroy the socket */
    unlock_for_io(socket);

    uint32_t index = 0;
    uint32_t offset = 0;
    IO_STATUS status = send_buffers(socket, payload, buffer_count, &index, &offset);
    int error = errno;

    relock_after_io(socket);
    socket->write_busy = false;
    if (atomic_load_explicit(&socket->drained, memory_order_relaxed))
    {
        /* the transport hook closed the socket: close has returned, so no callback may follow */
        status = IO_CLOSED;
    }
    if (status == IO_FAILED)
    {
        error = note_transport_error(socket, error);
    }
    if (status == IO_WOULD_BLOCK)
    {
        keep_remainder(socket, op, payload, buffer_count, index, offset, on_send_complete, context);
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_057: the registration made at open reports the room;
         * an output event that raced the EAGAIN means there may be room already */
        socket->writable = (socket->out_seq != seen);
    }
    else
    {
        op_recycle(socket, op);
    }
    /* sends queued behind this one by other threads need a dispatcher when there is room, and
     * after a dead link every pending op needs one to fail it */
    bool need_dispatch = ((socket->sends.tail != NULL && socket->writable) || (link_failed(socket) && has_pending(socket))) && kick_locked(socket);
    bool sent_some = index > 0 || offset > 0;
    REFUSAL refusal = (status == IO_CLOSED || (status == IO_FAILED && !sent_some)) ? refusal_locked(socket) : (REFUSAL){.first = false, .fd = -1};
    socket_unlock(socket);
    if (need_dispatch)
    {
        post_dispatch(socket);
    }
    if (status == IO_CLOSED)
    {
        /* refused as a send on a closed socket is
         * Codes_SRS_ASYNC_SOCKET_LINUX_99_040 */
        LOG_REFUSAL(refusal, "async socket fd=%d: send refused: the socket was closed during the send (by its transport)", refusal.fd);
    }
    ASYNC_SOCKET_SEND_SYNC_RESULT result = (status == IO_CLOSED) ? ASYNC_SOCKET_SEND_SYNC_NOT_OPEN :
        (status == IO_WOULD_BLOCK) ? ASYNC_SOCKET_SEND_SYNC_OK :
        finish_inline_send(refusal, status, error, sent_some, on_send_complete, context);

    lock_acquire(&socket->lock);
    leave_locked(socket, &scope);
    socket_unlock(socket);
    socket_release(socket);
    return result;
}

ASYNC_SOCKET_SEND_SYNC_RESULT async_socket_send_async(ASYNC_SOCKET_HANDLE async_socket, const ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count, ON_ASYNC_SOCKET_SEND_COMPLETE on_send_complete, void* on_send_complete_context)
{
    if (!check_send_args(async_socket, payload, buffer_count, on_send_complete))
    {
        return ASYNC_SOCKET_SEND_SYNC_ERROR;
    }
    /* A record is reserved before any byte is sent, so a send that stops part-way can always
     * keep its remainder. In steady state it comes from the free list. */
    bool not_open;
    OP* op = op_reserve_open_locked(async_socket, buffer_count, &not_open, "send");
    if (op == NULL)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_051 */
        return not_open ? ASYNC_SOCKET_SEND_SYNC_NOT_OPEN : ASYNC_SOCKET_SEND_SYNC_ERROR;
    }
    /* A send issued from inside one of this socket's callbacks (a receive callback replying, a
     * send callback sending the next message) is queued rather than sent inline: the dispatcher
     * sends it, gathered with any others, once the callback returns, and calls it back then; so
     * a chain of sends never nests, and several sends leave in one sendmsg.
     * Codes_SRS_ASYNC_SOCKET_LINUX_99_025 */
    bool nested = callback_scope__depth(async_socket) != 0;
    if (async_socket->sends.tail == NULL && !async_socket->write_busy && !nested)
    {
        return send_inline(async_socket, op, payload, buffer_count, on_send_complete, on_send_complete_context);
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_001: others are ahead, so queue behind them; whoever sends
     * now (an inline sender or the dispatcher) moves on to this one. */
    op_fill(op, KIND_SEND, payload, buffer_count, on_send_complete_context);
    op->on_complete.send = on_send_complete;
    queue_push(&async_socket->sends, op);
    bool need_dispatch = !async_socket->write_busy && async_socket->writable && kick_locked(async_socket);
    socket_unlock(async_socket);
    if (need_dispatch)
    {
        post_dispatch(async_socket);
    }
    return ASYNC_SOCKET_SEND_SYNC_OK;
}

/* ---- receive ---- */

int async_socket_receive_async(ASYNC_SOCKET_HANDLE async_socket, ASYNC_SOCKET_BUFFER* payload, uint32_t buffer_count, ON_ASYNC_SOCKET_RECEIVE_COMPLETE on_receive_complete, void* on_receive_complete_context)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_064 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_065 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_066 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_070 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_071 */
    if (async_socket == NULL || payload == NULL || buffer_count == 0 || on_receive_complete == NULL)
    {
        LogError("invalid arguments: async_socket=%p, payload=%p, buffer_count=%u, on_receive_complete=%p",
            (void*)async_socket, (void*)payload, buffer_count, (void*)on_receive_complete);
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_067 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_068 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_069 */
    if (!check_buffers("async_socket_receive_async", payload, buffer_count))
    {
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_073 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_074 */
    bool not_open;
    OP* op = op_reserve_open_locked(async_socket, buffer_count, &not_open, "receive");
    if (op == NULL)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_078 */
        /* Codes_SRS_ASYNC_SOCKET_LINUX_11_072 */
        return -1;
    }
    op_fill(op, KIND_RECEIVE, payload, buffer_count, on_receive_complete_context);
    op->on_complete.receive = on_receive_complete;
    bool first = (async_socket->receives.tail == NULL);
    queue_push(&async_socket->receives, op);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_102: the registration made at open reports new data; data
     * that may already be waiting is read on a worker, never here
     * Codes_SRS_ASYNC_SOCKET_LINUX_99_018 */
    bool need_dispatch = first && async_socket->readable && kick_locked(async_socket);
    socket_unlock(async_socket);
    if (need_dispatch)
    {
        post_dispatch(async_socket);
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_077 */
    return 0;
}

/* ---- notify ---- */

int async_socket_notify_io_async(ASYNC_SOCKET_HANDLE async_socket, ASYNC_SOCKET_NOTIFY_IO_TYPE io_type, ON_ASYNC_SOCKET_NOTIFY_IO_COMPLETE on_notify_io_complete, void* on_notify_io_complete_context)
{
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_012 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_013 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_014 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_016 */
    if (async_socket == NULL || on_notify_io_complete == NULL ||
        (io_type != ASYNC_SOCKET_NOTIFY_IO_TYPE_IN && io_type != ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT))
    {
        LogError("invalid arguments: async_socket=%p, io_type=%d, on_notify_io_complete=%p",
            (void*)async_socket, (int)io_type, (void*)on_notify_io_complete);
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_017 */
    bool not_open;
    OP* op = op_reserve_open_locked(async_socket, 0, &not_open, "notify");
    if (op == NULL)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_04_020 */
        /* Codes_SRS_ASYNC_SOCKET_LINUX_04_015 */
        return -1;
    }
    op_fill(op, KIND_NOTIFY, NULL, (uint32_t)io_type, on_notify_io_complete_context);
    op->on_complete.notify = on_notify_io_complete;
    op->arming = true;
    queue_push(&async_socket->notifies, op);
    uint32_t seen = async_socket->in_seq + async_socket->out_seq;
    CALLBACK_SCOPE scope;
    enter_locked(async_socket, &scope); /* close waits, so the fd and the op stay until we leave */
    unlock_for_io(async_socket);

    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_018: ask epoll for the fd's readiness now; a notify wants
     * "is it ready", which an edge that fired before it was posted does not answer
     * Codes_SRS_ASYNC_SOCKET_LINUX_99_023 */
    int result = completion_port_rearm(async_socket->port, &async_socket->io);

    relock_after_io(async_socket);
    bool need_dispatch = false;
    if (atomic_load_explicit(&async_socket->drained, memory_order_relaxed))
    {
        /* a close took the notify while it was being armed and called it back ABANDONED */
        result = 0;
    }
    else if (result != 0)
    {
        (void)queue_remove(&async_socket->notifies, op);
        op_recycle(async_socket, op);
    }
    else
    {
        op->arming = false;
        if (async_socket->in_seq + async_socket->out_seq != seen || link_failed(async_socket))
        {
            /* an event, maybe the re-arm's own, arrived while the notify could not take it (or
             * the link died meanwhile: the dispatcher fails the notify, see fail_pending) */
            async_socket->pending_events = (uint16_t)(async_socket->pending_events | async_socket->last_events);
            need_dispatch = kick_locked(async_socket);
        }
    }
    leave_locked(async_socket, &scope);
    socket_unlock(async_socket);
    if (need_dispatch)
    {
        post_dispatch(async_socket);
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_04_019 */
    return result;
}

/* ---- what a server asks of a connection ---- */

uint64_t async_socket_get_queued_send_bytes(ASYNC_SOCKET_HANDLE async_socket)
{
    if (async_socket == NULL)
    {
        LogError("invalid argument: async_socket is NULL");
        return 0;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_175: the sends queue is walked rather than counted as it
     * grows, so an idle socket carries no counter; a server asks now and then, not per byte */
    uint64_t total = 0;
    lock_acquire(&async_socket->lock);
    for (OP* op = queue_head(&async_socket->sends); op != NULL; op = queue_next(&async_socket->sends, op))
    {
        for (uint32_t i = 0; i < op->buffer_count; i++)
        {
            total += op_buffers(op)[i].length;
        }
        total -= op_progress(op);
    }
    socket_unlock(async_socket);
    return total;
}

int async_socket_get_peer_address(ASYNC_SOCKET_HANDLE async_socket, char* buffer, size_t buffer_size)
{
    if (async_socket == NULL || buffer == NULL || buffer_size == 0)
    {
        LogError("invalid arguments: async_socket=%p, buffer=%p, buffer_size=%zu", (void*)async_socket, (void*)buffer, buffer_size);
        return -1;
    }
    lock_acquire(&async_socket->lock);
    bool open = async_socket->state == STATE_OPEN;
    socket_unlock(async_socket);
    if (!open)
    {
        LogError("async socket %p is not open: it has no peer address", (void*)async_socket);
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_176 */
    return address_text__of_peer(socket_transport_get_underlying_socket(transport_of(async_socket)), buffer, buffer_size);
}
