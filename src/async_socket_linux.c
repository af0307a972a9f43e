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
 * Lifetime: references, close, destroy and teardown are the lifetime module's (socket_lifetime.c);
 * its header states the protocol as numbered rules (R1..R9), which this file keeps: a thread that
 * may call back holds a reference (R2) and is "inside" the socket (R3), and the lock is released
 * around every syscall and callback (R4). The socket object itself is in async_socket_internal.h. */
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
#include "asock_assert.h"
#include "async_socket_internal.h"
#include "callback_scope.h"
#include "lock.h"
#include "socket_lifetime.h"
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

typedef enum IO_STATUS_TAG
{
    IO_DONE,        /* the operation finished */
    IO_WOULD_BLOCK, /* no (more) progress until the fd is ready */
    IO_EOF,         /* the peer closed its side */
    IO_FAILED,      /* an error; errno tells which */
    IO_CLOSED       /* close took the queues meanwhile: the op is no longer ours */
} IO_STATUS;

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

/* Every op is in exactly one queue at a time (99_006): one that is pushed is in none, which
 * queue_pop and queue_remove mark by clearing its link (op_fill clears a new op's). */
static void queue_push_front(OP_QUEUE* queue, OP* op)
{
    ASOCK_ASSERT(op->next == NULL);
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
    lock_assert_held((LOCK*)&socket->lock);
    return socket->link_errno != 0 && !peer_closed_errno(socket->link_errno);
}

/* The completion port's tables for this module's sockets (defined with on_io_events). */
static const COMPLETION_PORT_IO_OPS socket_io_ops;
static const COMPLETION_PORT_IO_OPS custom_transport_io_ops;

/* Whether the socket moves its bytes itself (sendmsg/recvmsg over all buffers) rather than through
 * custom hooks. Fixed at create, with the table the socket registers with; read without the lock. */
static inline bool uses_default_transport(const ASYNC_SOCKET* socket)
{
    return socket->io.ops == &socket_io_ops;
}

/* Takes a free record (lock held): the embedded one when it is free and large enough, else one
 * from the free list; NULL when there is none that holds `buffer_count` buffers. */
static OP* op_from_free_list(ASYNC_SOCKET* socket, uint32_t buffer_count)
{
    lock_assert_held(&socket->lock);
    if (socket->inline_free && buffer_count <= 1)
    {
        socket->inline_free = false;
        return &socket->inline_op.header;
    }
    SOCKET_EXTRAS* extras = extras_of(socket);
    if (extras == NULL)
    {
        return NULL;
    }
    OP** link = &extras->free_ops;
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
    op->next = NULL;
}

/* Lock held. Large records are freed; the others wait on the free list for the next operation. */
static void op_recycle(ASYNC_SOCKET* socket, OP* op)
{
    lock_assert_held(&socket->lock);
    if (op == &socket->inline_op.header)
    {
        socket->inline_free = true;
        return;
    }
    if (op->capacity > OP_MAX_REUSED_CAPACITY)
    {
        sys_free(op);
        return;
    }
    /* a heap record exists only once the socket has its SOCKET_EXTRAS (op_get_slow) */
    SOCKET_EXTRAS* extras = extras_of(socket);
    op->next = extras->free_ops;
    extras->free_ops = op;
}

static SOCKET_EXTRAS* extras_allocate(void)
{
    SOCKET_EXTRAS* extras = sys_malloc(sizeof(SOCKET_EXTRAS));
    if (extras == NULL)
    {
        LogError("cannot allocate the extras of an async socket (%zu bytes)", sizeof(SOCKET_EXTRAS));
        return NULL;
    }
    (void)memset(extras, 0, sizeof(*extras));
    return extras;
}

/* Lock held. Gives a socket that has none the SOCKET_EXTRAS `spare` (an engine kept in the extras
 * word moves into it, with its reference) and returns NULL; returns `spare` to be freed when the
 * socket already has one (another thread installed it while the lock was released).
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_230 */
static SOCKET_EXTRAS* install_extras_locked(ASYNC_SOCKET* socket, SOCKET_EXTRAS* spare)
{
    lock_assert_held(&socket->lock);
    if (extras_of(socket) != NULL)
    {
        return spare;
    }
    spare->execution_engine = engine_of(socket);
    socket->extras = (uintptr_t)spare;
    return NULL;
}

/* Lock held on entry. The rare case of op_get_locked: `op` (taken, or NULL) is completed with what
 * is missing, allocated with the lock released: a record, and the socket's SOCKET_EXTRAS (which a
 * notify's queue and every heap record need). Returns with the lock held, or NULL (lock released,
 * nothing taken). */
__attribute__((noinline)) static OP* op_get_slow(ASYNC_SOCKET* socket, uint32_t buffer_count, OP* op)
{
    bool need_extras = (extras_of(socket) == NULL);
    socket_unlock(socket);
    SOCKET_EXTRAS* spare = need_extras ? extras_allocate() : NULL;
    OP* fresh = (op == NULL && (spare != NULL || !need_extras)) ? op_allocate(buffer_count) : NULL;
    lock_acquire(&socket->lock);
    if ((need_extras && spare == NULL) || (op == NULL && fresh == NULL))
    {
        if (op != NULL)
        {
            op_recycle(socket, op);
        }
        socket_unlock(socket);
        sys_free(spare);
        sys_free(fresh);
        return NULL;
    }
    SOCKET_EXTRAS* unused = need_extras ? install_extras_locked(socket, spare) : NULL;
    sys_free(unused);
    return (op != NULL) ? op : fresh;
}

/* Gets a record for an operation: from the free list under the lock when possible, otherwise
 * allocated with the lock released. A notify also needs the socket's SOCKET_EXTRAS (its queue is
 * there). Returns with the lock held, or NULL (lock released). */
static OP* op_get_locked(ASYNC_SOCKET* socket, uint32_t buffer_count, bool notify)
{
    lock_acquire(&socket->lock);
    OP* op = op_from_free_list(socket, buffer_count);
    if (op != NULL && (!notify || extras_of(socket) != NULL))
    {
        return op;
    }
    return op_get_slow(socket, buffer_count, op);
}

/* Lock held. The fd to name the socket by in a log line: its own while it has one, else the fd it
 * was registered with (close does not forget it), else -1 (never had one). */
static int fd_for_log(ASYNC_SOCKET* socket)
{
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
 * (closed, or failed earlier) is logged here, naming the call by `kind`. */
static OP* op_reserve_open_locked(ASYNC_SOCKET* socket, OP_KIND kind, uint32_t buffer_count, bool* not_open)
{
    static const char* const names[] = {[KIND_SEND] = "send", [KIND_RECEIVE] = "receive", [KIND_NOTIFY] = "notify"};
    const char* what = names[kind];
    *not_open = false;
    OP* op = op_get_locked(socket, buffer_count, kind == KIND_NOTIFY);
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


/* Lock held. Makes sure a dispatcher will look at the queues: the running one, told to go round
 * once more, or a new one the caller must post (returns true) after releasing the lock. */
static bool kick_locked(ASYNC_SOCKET* socket)
{
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
    op->result = (uint8_t)result;
    queue_push(&socket->completed, op);
}

/* Lock held on entry and exit, released around each callback. Calls back at most `limit` ops of
 * `list`, one at a time in order, recycling each record first; with `while_open`, stops as soon
 * as the socket is no longer open, leaving the rest to close.
 * Codes_SRS_ASYNC_SOCKET_LINUX_11_087 (after an error too, the record goes back) */
static void call_back_list(ASYNC_SOCKET* socket, OP_QUEUE* list, bool while_open, uint32_t limit)
{
    lock_assert_held(&socket->lock);
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

void async_socket__take_all_ops_locked(ASYNC_SOCKET* socket, OP_QUEUE* to)
{
    lock_assert_held(&socket->lock);
    *to = socket->completed;
    socket->completed = (OP_QUEUE){NULL};
    abandon_queue(&socket->sends, to, ASYNC_SOCKET_SEND_ABANDONED);
    abandon_queue(&socket->receives, to, ASYNC_SOCKET_RECEIVE_ABANDONED);
    OP_QUEUE* notifies = notifies_of(socket);
    if (notifies != NULL)
    {
        abandon_queue(notifies, to, ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED);
    }
}

void async_socket__call_back_all(ASYNC_SOCKET* socket, OP_QUEUE* list)
{
    call_back_list(socket, list, false, UINT32_MAX);
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
    lock_assert_held(&socket->lock);
    if (socket->link_errno == 0 && (dead_link_errno(error) || peer_closed_errno(error)))
    {
        socket->link_errno = (uint8_t)error;
    }
    return link_failed(socket) ? socket->link_errno : error;
}

/* Lock held. */
static bool has_pending(const ASYNC_SOCKET* socket)
{
    lock_assert_held((LOCK*)&socket->lock);
    if (socket->sends.tail != NULL || socket->receives.tail != NULL)
    {
        return true;
    }
    const OP_QUEUE* notifies = notifies_of(socket);
    return notifies != NULL && notifies->tail != NULL;
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
    OP_QUEUE* notifies = notifies_of(socket);
    if (notifies == NULL)
    {
        return;
    }
    OP_QUEUE keep = {NULL};
    while ((op = queue_pop(notifies)) != NULL)
    {
        if (op->arming)
        {
            queue_push(&keep, op); /* its re-arm's event completes it (dispatch_notifies) */
            continue;
        }
        finish_op(socket, op, ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR);
    }
    *notifies = keep;
}

/* ---- the dispatcher ---- */

/* Lock held. Completes the notifies that the event bits satisfy. */
static void dispatch_notifies(ASYNC_SOCKET* socket, uint32_t events)
{
    lock_assert_held(&socket->lock);
    OP_QUEUE* notifies = notifies_of(socket);
    if (notifies == NULL)
    {
        return;
    }
    OP_QUEUE keep = {NULL};
    OP* op;
    while ((op = queue_pop(notifies)) != NULL)
    {
        bool in = (op->io_type == ASYNC_SOCKET_NOTIFY_IO_TYPE_IN);
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
    *notifies = keep;
}

/* Lock held. Moves the queue forward by `sent` bytes: the sends it covers fully are finished. */
static void consume_sent(ASYNC_SOCKET* socket, size_t sent)
{
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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

static const COMPLETION_PORT_IO_OPS socket_io_ops = { on_io_events, socket_lifetime__io_hold, socket_lifetime__io_release };
/* The same, for a socket with a custom transport: the table a socket registers with tells its
 * transport (uses_default_transport). */
static const COMPLETION_PORT_IO_OPS custom_transport_io_ops = { on_io_events, socket_lifetime__io_hold, socket_lifetime__io_release };

/* ---- create ---- */

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
        *extras = (SOCKET_EXTRAS){
            .execution_engine = execution_engine,
            .on_send = default_transport ? NULL : on_send,
            .on_send_context = on_send_context,
            .on_recv = default_transport ? NULL : on_recv,
            .on_recv_context = on_recv_context,
        };
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
    socket->io.ops = default_transport ? &socket_io_ops : &custom_transport_io_ops;
    socket->inline_op.header.capacity = 1;
    socket->inline_free = true;
    atomic_init(&socket->refcount, 1);
    lock_init(&socket->lock);
    socket->state = STATE_NEW;
    return socket;
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
    socket_set_state_locked(async_socket, STATE_OPENING);
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
    socket_set_state_locked(async_socket, ok ? STATE_OPEN : STATE_NEW);
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
    socket_lifetime__wake_waiters();
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
    lock_assert_held(&socket->lock);
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
    lock_assert_held(&socket->lock);
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
    OP* op = op_reserve_open_locked(async_socket, KIND_SEND, buffer_count, &not_open);
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
    OP* op = op_reserve_open_locked(async_socket, KIND_RECEIVE, buffer_count, &not_open);
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
    OP* op = op_reserve_open_locked(async_socket, KIND_NOTIFY, 0, &not_open);
    if (op == NULL)
    {
        /* Codes_SRS_ASYNC_SOCKET_LINUX_04_020 */
        /* Codes_SRS_ASYNC_SOCKET_LINUX_04_015 */
        return -1;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_181: the I/O type in a field of its own; a notify has no
     * buffers */
    op_fill(op, KIND_NOTIFY, NULL, 0, on_notify_io_complete_context);
    op->io_type = (uint8_t)io_type;
    op->on_complete.notify = on_notify_io_complete;
    op->arming = true;
    queue_push(notifies_of(async_socket), op); /* op_get_locked made sure there is a SOCKET_EXTRAS */
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
        (void)queue_remove(notifies_of(async_socket), op);
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
