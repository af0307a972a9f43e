/* The life of an async socket: references, states, who waits for whom, close, destroy, teardown.
 *
 * The protocol, as numbered rules. Each rule names the fields and functions that carry it out;
 * the fields are in ASYNC_SOCKET (async_socket_internal.h), the code in socket_lifetime.c unless
 * said otherwise.
 *
 * R1  States. A socket goes NEW -> OPENING -> OPEN -> CLOSING -> CLOSED, and OPENING -> NEW when
 *     an open fails. Only open (async_socket_linux.c) leaves NEW, only close leaves OPEN, and
 *     only the thread that set CLOSING sets CLOSED. `state` is read and written under the lock,
 *     and changed only by socket_set_state_locked, which checks the transition.
 *
 * R2  References. `refcount` counts the holders that may still touch the socket: the user's
 *     handle (1, from create), a worker delivering an event or a post (io_hold / io_release,
 *     through the port), an open in progress, a close in progress, a close waiting for another
 *     thread's close, and an inline send or notify that may call back. A holder that may run a
 *     user callback takes its reference before the callback, since the callback may destroy the
 *     socket. Whoever drops the last reference runs the teardown (R8), on its own thread.
 *
 * R3  Inside. A thread is "inside" a socket while it runs the socket's I/O or callbacks (the
 *     dispatcher, an inline send, a notify's re-arm, a close calling back): enter_locked /
 *     leave_locked count it in `inside` and push / pop a CALLBACK_SCOPE on the thread's own scope
 *     stack (callback_scope.h). Of those threads, `in_io` counts the ones in a syscall section
 *     on the fd, lock released (unlock_for_io / relock_after_io). Both counters are guarded by
 *     the lock, and each thread's part of them is on its scope stack, so a thread can tell its
 *     own share (callback_scope__depth, callback_scope__io_depth) from the other threads'.
 *
 * R4  The lock is never held across a syscall or a user callback. Work is taken out under the
 *     lock, done without it, and called back after it is released. A wake-up that becomes due
 *     while the lock is held (a thread leaves a CLOSING socket) is recorded in the thread-local
 *     `wake_after_unlock` and made by socket_unlock after the release.
 *
 * R5  Waits and wakes. Every wait of this module (close for the threads inside, a second close
 *     for the first, a destroy for OPENING or another thread's CLOSING to end) is wait_until: it
 *     loops on a condition read under the lock and sleeps on one process-wide futex word,
 *     `wait_seq`. Whoever changes what a waiter looks at (leaving a CLOSING socket, the end of
 *     open, the end of close) bumps the word and wakes every waiter (wake_waiters), which then
 *     look again. A wake meant for another socket costs a waiter one look; a word per socket
 *     would cost 8 bytes on each of 10,000s of idle sockets.
 *
 * R6  Close. close moves OPEN to CLOSING, pushes the socket on the thread-local `closing_here`
 *     list (so that this thread's later close or destroy of the same socket knows it is the
 *     closer), holds a reference, and waits until every other thread has left the socket
 *     (inside <= this thread's own scopes). Then, under the lock, it sets `drained` and takes
 *     every op the socket holds: the completed ones with their results, the pending ones
 *     ABANDONED (async_socket__take_all_ops_locked). It removes the fd from the port, disconnects
 *     the transport, calls every op back on this thread, sets CLOSED, wakes the waiters and drops
 *     its reference. A close that finds the socket not OPEN returns at once, except that one
 *     finding another thread's CLOSING, outside any callback, waits for CLOSED (holding a
 *     reference: the other closer may destroy the socket as soon as its close returns).
 *
 * R7  The circle rule. Close waits for the other threads inside the socket unless one of them is
 *     blocked, directly or through other closes, on a socket this thread is inside: two
 *     callbacks that close each other's sockets would each wait for the other forever. The
 *     registry of threads blocked in a close (callback_scope__begin_wait) detects the circle;
 *     close then warns and waits only for the threads in a syscall on the fd (`in_io`), so the
 *     fd number is not released under them. The threads of the circle find `drained` set when
 *     they come back and leave the op they were working on alone (D24, D26).
 *
 * R8  Teardown. The last reference (R2) takes the socket's destroy record out of the
 *     process-wide `destroy_waits` list (before the free: a new socket at the same address must
 *     not be mistaken for this one), destroys the transport, releases the engine and the port,
 *     frees the records and the socket, then signals the destroy (a futex on the record, or a
 *     post of destroy_async's callback to a worker). The per-socket `destroy_waits` bit says
 *     whether the list holds a record for it, so a teardown without a destroy takes no
 *     process-wide lock.
 *
 * R9  Destroy. Outside a callback, destroy waits until the socket is neither OPENING nor being
 *     closed by another thread, closes it, registers a record on its own stack, drops the user's
 *     reference and sleeps until the teardown (wherever it runs) has signalled the record. Inside
 *     a callback it closes and drops the reference without waiting: the holder of the callback
 *     (R2) tears down when it unwinds. destroy_async does the same as destroy outside a callback
 *     except that the record is on the heap and the user's callback is posted to a worker, never
 *     run on the thread that dropped the last reference.
 */
#ifndef SOCKET_LIFETIME_H
#define SOCKET_LIFETIME_H

#include <stdbool.h>

#include "async_socket_internal.h"
#include "callback_scope.h"
#include "asock_assert.h"
#include "lock.h"

/* R4: set, lock held, when a closer waiting for this thread to leave the socket must be woken;
 * the FUTEX_WAKE is a syscall, so socket_unlock makes it after releasing the lock.
 * initial-exec: a plain %fs-relative access on the path of every unlock. */
extern _Thread_local bool socket_lifetime__wake_after_unlock __attribute__((tls_model("initial-exec")));

/* R5: wakes every thread in wait_until (any socket) to look at its condition again. */
void socket_lifetime__wake_waiters(void);

/* R8: the last reference is gone. */
void socket_lifetime__teardown(ASYNC_SOCKET* socket);

/* R2: the completion port's hold and release of a socket it delivers to (socket_io_ops). */
void socket_lifetime__io_hold(COMPLETION_PORT_IO* io);
void socket_lifetime__io_release(COMPLETION_PORT_IO* io);

/* R4 */
static inline void socket_unlock(ASYNC_SOCKET* socket)
{
    lock_release(&socket->lock);
    if (socket_lifetime__wake_after_unlock)
    {
        socket_lifetime__wake_after_unlock = false;
        socket_lifetime__wake_waiters();
    }
}

/* R1: whether `from` -> `to` is one of the machine's transitions. */
static inline bool socket_transition_allowed(SOCKET_STATE from, SOCKET_STATE to)
{
    return (from == STATE_NEW && to == STATE_OPENING) ||
        (from == STATE_OPENING && (to == STATE_OPEN || to == STATE_NEW)) ||
        (from == STATE_OPEN && to == STATE_CLOSING) ||
        (from == STATE_CLOSING && to == STATE_CLOSED);
}

/* R1. Lock held. */
static inline void socket_set_state_locked(ASYNC_SOCKET* socket, SOCKET_STATE to)
{
    lock_assert_held(&socket->lock);
    ASOCK_ASSERT(socket_transition_allowed((SOCKET_STATE)socket->state, to));
    socket->state = to;
}

/* R2. A hold needs a reference already: nobody may revive a socket whose teardown has begun. */
static inline void socket_hold(ASYNC_SOCKET* socket)
{
#if ASOCK_ASSERTS
    ASOCK_ASSERT(atomic_fetch_add_explicit(&socket->refcount, 1, memory_order_relaxed) > 0);
#else
    (void)atomic_fetch_add_explicit(&socket->refcount, 1, memory_order_relaxed);
#endif
}

static inline void socket_release(ASYNC_SOCKET* socket)
{
    int before = atomic_fetch_sub_explicit(&socket->refcount, 1, memory_order_acq_rel);
    ASOCK_ASSERT(before > 0);
    if (before == 1)
    {
        socket_lifetime__teardown(socket);
    }
}

/* R3. Lock held. */
static inline void enter_locked(ASYNC_SOCKET* socket, CALLBACK_SCOPE* scope)
{
    lock_assert_held(&socket->lock);
    ASOCK_ASSERT(socket->inside < UINT16_MAX);
    socket->inside++;
    callback_scope__enter(scope, socket);
}

/* R3, R5. Lock held. */
static inline void leave_locked(ASYNC_SOCKET* socket, CALLBACK_SCOPE* scope)
{
    lock_assert_held(&socket->lock);
    /* scopes are left in the reverse order of entering them */
    ASOCK_ASSERT(callback_scope__top == scope && scope->object == socket && !scope->in_io);
    ASOCK_ASSERT(socket->inside > 0);
    callback_scope__exit(scope);
    socket->inside--;
    if (socket->state == STATE_CLOSING)
    {
        socket_lifetime__wake_after_unlock = true;
    }
}

/* R3, R7. Releases the lock for a syscall section on the fd: close waits for such sections even
 * when it may not wait for the callbacks of the threads in them (the circle case of close). The
 * calling thread's innermost scope is the one of this socket. */
static inline void unlock_for_io(ASYNC_SOCKET* socket)
{
    lock_assert_held(&socket->lock);
    ASOCK_ASSERT(callback_scope__top != NULL && callback_scope__top->object == socket && !callback_scope__top->in_io);
    socket->in_io++;
    callback_scope__top->in_io = true;
    socket_unlock(socket);
}

static inline void relock_after_io(ASYNC_SOCKET* socket)
{
    lock_acquire(&socket->lock);
    ASOCK_ASSERT(callback_scope__top != NULL && callback_scope__top->object == socket && callback_scope__top->in_io);
    ASOCK_ASSERT(socket->in_io > 0);
    callback_scope__top->in_io = false;
    socket->in_io--;
    if (socket->state == STATE_CLOSING)
    {
        socket_lifetime__wake_after_unlock = true;
    }
}

#endif /* SOCKET_LIFETIME_H */
