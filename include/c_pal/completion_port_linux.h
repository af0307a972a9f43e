/* The completion port: one epoll instance and the worker threads that run every callback.
 *
 * A file descriptor is registered once (edge-triggered, for input, output and read hang-up) with a
 * COMPLETION_PORT_IO record that its owner embeds in its own object. Workers deliver readiness to
 * the record's on_events; completion_port_post() asks a worker to call on_events with no event
 * bits, which an owner uses to run queued work on a worker thread.
 *
 * Events never reach a record through a pointer kept by the kernel: epoll carries the fd and a
 * generation number, which the port looks up in its own table. So once completion_port_remove()
 * returns, a stale event already in another worker's hands is dropped, and the owner's memory
 * can be released as soon as its own reference count says so. */
#ifndef C_PAL_COMPLETION_PORT_LINUX_H
#define C_PAL_COMPLETION_PORT_LINUX_H

#include <stdint.h>

#include "c_pal/macro_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct COMPLETION_PORT_TAG* COMPLETION_PORT_HANDLE;

#define COMPLETION_PORT_MAX_WORKERS 64

typedef struct COMPLETION_PORT_IO_TAG COMPLETION_PORT_IO;

/* events holds the EPOLL* bits epoll reported, or 0 for a post. */
typedef void (*COMPLETION_PORT_ON_EVENTS)(COMPLETION_PORT_IO* io, uint32_t events);
/* hold/release keep the owner alive while a worker delivers to it; both may run on any thread. */
typedef void (*COMPLETION_PORT_IO_REF)(COMPLETION_PORT_IO* io);

/* What the port calls for a kind of owner. One static table serves every owner of that kind, so
 * a registration carries one pointer rather than three. */
typedef struct COMPLETION_PORT_IO_OPS_TAG
{
    COMPLETION_PORT_ON_EVENTS on_events;
    COMPLETION_PORT_IO_REF hold;
    COMPLETION_PORT_IO_REF release;
} COMPLETION_PORT_IO_OPS;

/* 24 bytes on x86-64: an owner embeds one per fd, and there may be 10,000s of them. */
struct COMPLETION_PORT_IO_TAG
{
    /* set by the owner before completion_port_add; it must outlive the registration */
    const COMPLETION_PORT_IO_OPS* ops;
    /* owned by the port */
    COMPLETION_PORT_IO* post_next;
    int fd;
    /* the registration's generation in the low 31 bits; the top bit says "posted" (accessed
     * atomically, since a post may race a delivery) */
    uint32_t generation;
};

/* worker_count 0 means completion_port_default_worker_count(). */
MOCKABLE_FUNCTION(, COMPLETION_PORT_HANDLE, completion_port_create, uint32_t, worker_count);
/* One per online CPU, at least 1, at most COMPLETION_PORT_MAX_WORKERS. */
MOCKABLE_FUNCTION(, uint32_t, completion_port_default_worker_count);
MOCKABLE_FUNCTION(, void, completion_port_inc_ref, COMPLETION_PORT_HANDLE, completion_port);
/* The last reference stops and joins the workers and closes the epoll fd. */
MOCKABLE_FUNCTION(, void, completion_port_dec_ref, COMPLETION_PORT_HANDLE, completion_port);
MOCKABLE_FUNCTION(, uint32_t, completion_port_get_worker_count, COMPLETION_PORT_HANDLE, completion_port);

/* Registers fd once, edge-triggered for EPOLLIN | EPOLLOUT | EPOLLRDHUP. Returns 0 on success. */
MOCKABLE_FUNCTION(, int, completion_port_add, COMPLETION_PORT_HANDLE, completion_port, int, fd, COMPLETION_PORT_IO*, io);
/* Asks the kernel to report the fd's current readiness again (an event follows if it is ready). */
MOCKABLE_FUNCTION(, int, completion_port_rearm, COMPLETION_PORT_HANDLE, completion_port, COMPLETION_PORT_IO*, io);
/* Unregisters; no new delivery to io starts after this returns. The fd must still be open. */
MOCKABLE_FUNCTION(, void, completion_port_remove, COMPLETION_PORT_HANDLE, completion_port, COMPLETION_PORT_IO*, io);
/* Has a worker call io->on_events(io, 0) soon, holding a reference meanwhile. Posting an io that
 * is already posted does nothing. Returns 0 on success. */
MOCKABLE_FUNCTION(, int, completion_port_post, COMPLETION_PORT_HANDLE, completion_port, COMPLETION_PORT_IO*, io);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_COMPLETION_PORT_LINUX_H */
