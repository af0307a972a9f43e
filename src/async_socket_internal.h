/* The async socket object and its operation records, shared by the I/O path
 * (async_socket_linux.c) and the lifetime module (socket_lifetime.c). Internal: nothing here is
 * part of the public API. Which fields are guarded by the socket's lock is said at each one; the
 * rules of the socket's life (references, states, waits) are in socket_lifetime.h. */
#ifndef ASYNC_SOCKET_INTERNAL_H
#define ASYNC_SOCKET_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "c_pal/async_socket.h"
#include "c_pal/completion_port_linux.h"
#include "c_pal/execution_engine.h"
#include "c_pal/socket_transport.h"
#include "lock.h"
#include "socket_transport_internal.h"

typedef enum SOCKET_STATE_TAG
{
    STATE_NEW,     /* created, never opened */
    STATE_OPENING,
    STATE_OPEN,
    STATE_CLOSING,
    STATE_CLOSED   /* closed: the fd is gone, it cannot be opened again */
} SOCKET_STATE;

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
    /* KIND_NOTIFY only (set by async_socket_notify_io_async, never read for other kinds), sharing
     * one byte: */
    bool arming : 1;      /* the re-arm is still in progress: events do not complete it yet */
    uint8_t io_type : 2;  /* the ASYNC_SOCKET_NOTIFY_IO_TYPE waited for (IN or OUT) */
    /* buffer descriptors the record has room for, at most UINT8_MAX (records with more than
     * OP_MAX_REUSED_CAPACITY are never reused, so the exact figure does not matter for them) */
    uint8_t capacity;
    /* followed by `capacity` ASYNC_SOCKET_BUFFERs (op_buffers) */
} OP;

/* The whole header is 40 bytes: a one-buffer record is 56. */
_Static_assert(sizeof(OP) == 40 || sizeof(void*) != 8, "an operation record header should stay 40 bytes");
_Static_assert(ASYNC_SOCKET_NOTIFY_IO_TYPE_IN <= 3 && ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT <= 3, "a notify's io_type fits its two bits");
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

/* What only some sockets need, kept out of the default socket, which is the one there are 10,000s
 * of: a custom transport's hooks (with its engine, if any), and the parts of the operation
 * machinery an idle socket with one receive pending does without. Allocated at create for a
 * custom transport; for the default transport at the first notify or the first operation record
 * beyond the embedded one, and kept until the teardown, so a socket in steady state does not
 * allocate. */
typedef struct SOCKET_EXTRAS_TAG
{
    EXECUTION_ENGINE_HANDLE execution_engine;
    ON_ASYNC_SOCKET_SEND on_send; /* NULL for the default transport */
    void* on_send_context;
    ON_ASYNC_SOCKET_RECV on_recv;
    void* on_recv_context;
    /* guarded by the socket's lock: */
    OP_QUEUE notifies;
    /* the heap records waiting for the next operation (the embedded one is not on this list: see
     * inline_free); a heap record exists only once this record does */
    OP* free_ops;
} SOCKET_EXTRAS;

/* Laid out small: an idle socket with a receive pending is this, one operation record and a
 * slot in the port's table. */
typedef struct ASYNC_SOCKET_TAG
{
    COMPLETION_PORT_IO io;
    COMPLETION_PORT_HANDLE port;
    /* The socket's SOCKET_EXTRAS once it has one; before that, for the default transport with an
     * execution engine, the engine itself with EXTRAS_ENGINE_TAG set (c-pal code passes an engine
     * to every create, and an allocation for it would cost 64 bytes per socket); 0 for neither.
     * Set at create, and changed at most once more, under the lock, from the engine (or 0) to a
     * SOCKET_EXTRAS holding the same engine with no hooks (install_extras_locked). So it is read
     * under the lock, or without it only where it cannot change: by a custom transport's sockets
     * (whose word is their SOCKET_EXTRAS from create on) and by the teardown. Which transport a
     * socket has is told by io.ops instead, which never changes (uses_default_transport). */
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
    bool inline_free : 1;    /* inline_op waits for the next operation */
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
    OP_QUEUE completed;      /* finished, not yet called back; close calls back what is left */
    /* (the notifies and the free heap records are in SOCKET_EXTRAS: see notifies_of) */
    /* The first record of the socket, in the same allocation: an idle socket with a one-buffer
     * receive pending then costs a single heap chunk. Taken first whenever it is free
     * (inline_free), and never freed on its own. */
    OP_ONE inline_op;
} ASYNC_SOCKET;

_Static_assert((EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP) <= UINT16_MAX, "the event bits the socket keeps fit 16 bits");

/* 152 bytes with its embedded one-buffer record, a 160-byte heap chunk on x86-64 glibc: with the
 * 8-byte slot in the port table, 168 bytes per idle socket with a one-buffer receive pending.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_052
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_230 */
_Static_assert(sizeof(ASYNC_SOCKET) <= 152 || sizeof(void*) != 8, "an async socket should stay within 152 bytes");

/* Engine handles are heap pointers, so their low bit is free for the tag. */
#define EXTRAS_ENGINE_TAG ((uintptr_t)1)

static inline SOCKET_EXTRAS* extras_of(const ASYNC_SOCKET* socket)
{
    uintptr_t word = socket->extras;
    return ((word & EXTRAS_ENGINE_TAG) != 0) ? NULL : (SOCKET_EXTRAS*)word;
}

static inline EXECUTION_ENGINE_HANDLE engine_of(const ASYNC_SOCKET* socket)
{
    uintptr_t word = socket->extras;
    if ((word & EXTRAS_ENGINE_TAG) != 0)
    {
        return (EXECUTION_ENGINE_HANDLE)(word & ~EXTRAS_ENGINE_TAG);
    }
    return (word == 0) ? NULL : ((SOCKET_EXTRAS*)word)->execution_engine;
}

/* Lock held. The notifies' queue, NULL while the socket has no SOCKET_EXTRAS (then it has never
 * had a notify). */
static inline OP_QUEUE* notifies_of(const ASYNC_SOCKET* socket)
{
    SOCKET_EXTRAS* extras = extras_of(socket);
    return (extras == NULL) ? NULL : &extras->notifies;
}

static inline SOCKET_TRANSPORT_HANDLE transport_of(ASYNC_SOCKET* socket)
{
    return &socket->transport;
}

static inline ASYNC_SOCKET* from_io(COMPLETION_PORT_IO* io)
{
    return (ASYNC_SOCKET*)((char*)io - offsetof(ASYNC_SOCKET, io));
}

/* Lock held. Moves every op still owned by the socket into `to`, in the order close calls them
 * back: the finished ones with their results, then the pending sends, receives and notifies with
 * the ABANDONED result of their kind. (async_socket_linux.c: the queues are the I/O path's.) */
void async_socket__take_all_ops_locked(ASYNC_SOCKET* socket, OP_QUEUE* to);

/* Lock held on entry and exit, released around each callback: calls back every op of `list`. */
void async_socket__call_back_all(ASYNC_SOCKET* socket, OP_QUEUE* list);

#endif /* ASYNC_SOCKET_INTERNAL_H */
