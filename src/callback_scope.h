/* Which sockets the current thread is working inside of, and who is waiting for whom.
 *
 * A thread "enters" a socket while it runs that socket's I/O or callbacks (the dispatcher on a
 * worker, an inline send, a close). async_socket_close must wait for the other threads inside the
 * socket, but never for itself, and never in a circle: two callbacks that close each other's
 * sockets would each wait for the other forever. The scopes form a per-thread stack on the
 * callers' own stacks; a process-wide registry of waiting threads (used only while closing)
 * detects such circles. */
#ifndef CALLBACK_SCOPE_H
#define CALLBACK_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct CALLBACK_SCOPE_TAG
{
    const void* object;
    struct CALLBACK_SCOPE_TAG* outer;
    bool in_io; /* the thread is in a syscall section on the object's fd (not in a callback) */
} CALLBACK_SCOPE;

/* The calling thread's innermost scope. initial-exec: a plain %fs-relative access, not a call to
 * __tls_get_addr, on the path of every delivered event. */
extern _Thread_local CALLBACK_SCOPE* callback_scope__top __attribute__((tls_model("initial-exec")));

static inline void callback_scope__enter(CALLBACK_SCOPE* scope, const void* object)
{
    scope->object = object;
    scope->in_io = false;
    scope->outer = callback_scope__top;
    callback_scope__top = scope;
}

static inline void callback_scope__exit(CALLBACK_SCOPE* scope)
{
    callback_scope__top = scope->outer;
}

/* true when the calling thread is inside any scope (it runs library code that called back). */
static inline bool callback_scope__in_any(void)
{
    return callback_scope__top != NULL;
}

/* How many scopes of object the calling thread is inside. */
uint32_t callback_scope__depth(const void* object);
/* How many of those are in a syscall section (in_io). */
uint32_t callback_scope__io_depth(const void* object);

/* Declares that the calling thread is about to block until the threads inside `object` leave it.
 * Returns false, registering nothing, when that would close a circle of waiting threads; else
 * true, and the caller must call callback_scope__end_wait after waiting. */
bool callback_scope__begin_wait(const void* object);
void callback_scope__end_wait(void);

#endif /* CALLBACK_SCOPE_H */
