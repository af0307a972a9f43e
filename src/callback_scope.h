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
#include <stdint.h>

typedef struct CALLBACK_SCOPE_TAG
{
    const void* object;
    struct CALLBACK_SCOPE_TAG* outer;
} CALLBACK_SCOPE;

void callback_scope__enter(CALLBACK_SCOPE* scope, const void* object);
void callback_scope__exit(CALLBACK_SCOPE* scope);

/* How many scopes of object the calling thread is inside. */
uint32_t callback_scope__depth(const void* object);
/* true when the calling thread is inside any scope (it runs library code that called back). */
bool callback_scope__in_any(void);

/* Declares that the calling thread is about to block until the threads inside `object` leave it.
 * Returns false, registering nothing, when that would close a circle of waiting threads; else
 * true, and the caller must call callback_scope__end_wait after waiting. */
bool callback_scope__begin_wait(const void* object);
void callback_scope__end_wait(void);

#endif /* CALLBACK_SCOPE_H */
