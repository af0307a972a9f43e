/* The completion port: one epoll fd, an eventfd to wake workers, and N worker threads.
 *
 * Registrations live in a table indexed by fd. epoll carries (generation << 32 | fd) instead of
 * a pointer, so an event that a worker took out of epoll_wait just before the registration was
 * removed finds a newer generation (or none) in the table and is dropped. Nothing the kernel can
 * hand back ever points at freed memory.
 *
 * Each table slot is one word: the registration's pointer, with a spin lock in its low bit, taken
 * only long enough to read the slot and take a reference on its owner: there is no port-wide lock
 * on the event path. Generations come from one port-wide counter, so a slot needs no counter of
 * its own (8 bytes per fd). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "c_pal/completion_port_linux.h"
#include "c_pal/logger.h"
#include "sys.h"

#define SLOTS_PER_CHUNK 256
#define CHUNK_COUNT 4096 /* 1M fds: the kernel's default nr_open */
#define EVENT_BATCH 64
#define WAKE_TOKEN UINT64_MAX

#define SLOT_LOCKED ((uintptr_t)1) /* COMPLETION_PORT_IO is pointer-aligned: bit 0 is free */

typedef struct SLOT_TAG
{
    _Atomic(uintptr_t) word; /* the COMPLETION_PORT_IO*, or 0, | SLOT_LOCKED while locked */
} SLOT;

typedef struct COMPLETION_PORT_TAG
{
    atomic_int refcount;
    int epoll_fd;
    int wake_fd;
    atomic_bool stopping;
    atomic_bool free_on_worker_exit;
    uint32_t worker_count;
    pthread_t workers[COMPLETION_PORT_MAX_WORKERS];

    pthread_mutex_t table_lock; /* only for allocating chunks */
    atomic_uint next_generation;
    _Atomic(SLOT*) chunks[CHUNK_COUNT];

    pthread_mutex_t post_lock;
    COMPLETION_PORT_IO* post_head;
    COMPLETION_PORT_IO* post_tail;
} COMPLETION_PORT;

/* The port whose worker the current thread is, so a last dec_ref made from a callback does not
 * try to join the thread it runs on. */
static _Thread_local COMPLETION_PORT* current_worker_port __attribute__((tls_model("initial-exec")));

static void slot_lock(SLOT* slot)
{
    while ((atomic_fetch_or_explicit(&slot->word, SLOT_LOCKED, memory_order_acquire) & SLOT_LOCKED) != 0)
    {
        sched_yield();
    }
}

static void slot_unlock(SLOT* slot)
{
    (void)atomic_fetch_and_explicit(&slot->word, ~SLOT_LOCKED, memory_order_release);
}

/* Slot locked. */
static COMPLETION_PORT_IO* slot_io(SLOT* slot)
{
    return (COMPLETION_PORT_IO*)(atomic_load_explicit(&slot->word, memory_order_relaxed) & ~SLOT_LOCKED);
}

/* Slot locked; it stays locked. */
static void slot_set_io(SLOT* slot, COMPLETION_PORT_IO* io)
{
    atomic_store_explicit(&slot->word, (uintptr_t)io | SLOT_LOCKED, memory_order_relaxed);
}

static SLOT* find_slot(COMPLETION_PORT* port, int fd)
{
    if (fd < 0 || (uint32_t)fd >= (uint32_t)CHUNK_COUNT * SLOTS_PER_CHUNK)
    {
        return NULL;
    }
    SLOT* chunk = atomic_load_explicit(&port->chunks[fd / SLOTS_PER_CHUNK], memory_order_acquire);
    return (chunk == NULL) ? NULL : &chunk[fd % SLOTS_PER_CHUNK];
}

static SLOT* get_or_create_slot(COMPLETION_PORT* port, int fd)
{
    SLOT* slot = find_slot(port, fd);
    if (slot != NULL || fd < 0 || (uint32_t)fd >= (uint32_t)CHUNK_COUNT * SLOTS_PER_CHUNK)
    {
        return slot;
    }
    (void)pthread_mutex_lock(&port->table_lock);
    _Atomic(SLOT*)* entry = &port->chunks[fd / SLOTS_PER_CHUNK];
    SLOT* chunk = atomic_load_explicit(entry, memory_order_relaxed);
    if (chunk == NULL)
    {
        /* zeroed memory is an empty, unlocked slot */
        chunk = sys_calloc(SLOTS_PER_CHUNK, sizeof(SLOT));
        if (chunk != NULL)
        {
            atomic_store_explicit(entry, chunk, memory_order_release);
        }
    }
    (void)pthread_mutex_unlock(&port->table_lock);
    return (chunk == NULL) ? NULL : &chunk[fd % SLOTS_PER_CHUNK];
}

static void wake_one(COMPLETION_PORT* port)
{
    uint64_t one = 1;
    /* The eventfd is registered edge-triggered: every write is a new edge that wakes exactly one
     * waiting worker. It cannot fail short of a counter overflow, which reading prevents. */
    while (sys_write(port->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
    {
    }
}

/* The generation shares its word with the "posted" bit. */
#define POSTED_BIT 0x80000000u
#define GENERATION_MASK 0x7fffffffu

static uint32_t io_generation(COMPLETION_PORT_IO* io)
{
    return __atomic_load_n(&io->generation, __ATOMIC_RELAXED) & GENERATION_MASK;
}

static void deliver(COMPLETION_PORT* port, uint64_t token, uint32_t events)
{
    SLOT* slot = find_slot(port, (int)(uint32_t)token);
    if (slot == NULL)
    {
        return;
    }
    slot_lock(slot);
    COMPLETION_PORT_IO* io = slot_io(slot);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_011 */
    /* Codes_SRS_ASYNC_SOCKET_LINUX_11_079: an event whose registration is gone finds no io; the
     * io in the slot is alive while it is there (remove empties the slot under its lock) */
    if (io != NULL && io_generation(io) == (uint32_t)(token >> 32))
    {
        io->ops->hold(io);
    }
    else
    {
        io = NULL; /* removed, or the fd now belongs to a newer registration */
    }
    slot_unlock(slot);
    if (io != NULL)
    {
        io->ops->on_events(io, events);
        io->ops->release(io);
    }
}

static void run_posted(COMPLETION_PORT* port)
{
    uint64_t counter;
    (void)sys_read(port->wake_fd, &counter, sizeof(counter));

    (void)pthread_mutex_lock(&port->post_lock);
    COMPLETION_PORT_IO* io = port->post_head;
    port->post_head = NULL;
    port->post_tail = NULL;
    (void)pthread_mutex_unlock(&port->post_lock);

    while (io != NULL)
    {
        COMPLETION_PORT_IO* next = io->post_next;
        io->post_next = NULL;
        /* cleared before the call so that on_events may post again */
        (void)__atomic_fetch_and(&io->generation, GENERATION_MASK, __ATOMIC_RELEASE);
        io->ops->on_events(io, 0);
        io->ops->release(io);
        io = next;
    }
}

static void free_port(COMPLETION_PORT* port);

static void* worker_main(void* arg)
{
    COMPLETION_PORT* port = arg;
    struct epoll_event events[EVENT_BATCH];
    current_worker_port = port;

    while (!atomic_load_explicit(&port->stopping, memory_order_acquire))
    {
        int count = sys_epoll_wait(port->epoll_fd, events, EVENT_BATCH, -1);
        if (count < 0)
        {
            if (errno != EINTR)
            {
                LogError("epoll_wait failed, errno=%d; worker stops", errno);
                break;
            }
            continue;
        }
        for (int i = 0; i < count; i++)
        {
            if (events[i].data.u64 == WAKE_TOKEN)
            {
                run_posted(port);
            }
            else
            {
                deliver(port, events[i].data.u64, events[i].events);
            }
        }
    }
    /* pass the stop on: the next waiting worker needs its own edge */
    wake_one(port);
    if (atomic_load_explicit(&port->free_on_worker_exit, memory_order_acquire))
    {
        free_port(port);
    }
    return NULL;
}

static void release_posted(COMPLETION_PORT* port)
{
    COMPLETION_PORT_IO* io = port->post_head;
    port->post_head = NULL;
    while (io != NULL)
    {
        COMPLETION_PORT_IO* next = io->post_next;
        io->ops->release(io);
        io = next;
    }
}

static void free_port(COMPLETION_PORT* port)
{
    release_posted(port);
    for (uint32_t i = 0; i < CHUNK_COUNT; i++)
    {
        sys_free(atomic_load_explicit(&port->chunks[i], memory_order_relaxed));
    }
    (void)sys_close(port->wake_fd);
    (void)sys_close(port->epoll_fd);
    (void)pthread_mutex_destroy(&port->table_lock);
    (void)pthread_mutex_destroy(&port->post_lock);
    sys_free(port);
}

static void stop_workers(COMPLETION_PORT* port, uint32_t started)
{
    atomic_store_explicit(&port->stopping, true, memory_order_release);
    wake_one(port);
    for (uint32_t i = 0; i < started; i++)
    {
        if (pthread_equal(port->workers[i], pthread_self()))
        {
            /* the last reference was dropped from a callback: this thread cannot join itself */
            (void)pthread_detach(port->workers[i]);
            continue;
        }
        (void)pthread_join(port->workers[i], NULL);
    }
}

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_015: a fixed, bounded set of workers serves every socket.
 * Half the online CPUs, at least one: a worker that finishes a callback takes the next event
 * itself, while a second idle worker would be woken for it (a context switch per hand-off; on
 * this project's 2-core benchmark, one worker gives 1.3-1.8x the round trips of two). The other
 * half is left to the application's threads and the kernel's network processing. */
uint32_t completion_port_default_worker_count(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long workers = cpus / 2;
    if (workers < 1)
    {
        return 1;
    }
    return (workers > COMPLETION_PORT_MAX_WORKERS) ? COMPLETION_PORT_MAX_WORKERS : (uint32_t)workers;
}

static int open_fds(COMPLETION_PORT* port)
{
    port->epoll_fd = sys_epoll_create1(EPOLL_CLOEXEC);
    if (port->epoll_fd < 0)
    {
        LogError("epoll_create1 failed, errno=%d", errno);
        return -1;
    }
    port->wake_fd = sys_eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (port->wake_fd < 0)
    {
        LogError("eventfd failed, errno=%d", errno);
        (void)sys_close(port->epoll_fd);
        return -1;
    }
    struct epoll_event event = {.events = EPOLLIN | EPOLLET, .data.u64 = WAKE_TOKEN};
    if (sys_epoll_ctl(port->epoll_fd, EPOLL_CTL_ADD, port->wake_fd, &event) != 0)
    {
        LogError("epoll_ctl(ADD) of the wake eventfd failed, errno=%d", errno);
        (void)sys_close(port->wake_fd);
        (void)sys_close(port->epoll_fd);
        return -1;
    }
    return 0;
}

static int start_workers(COMPLETION_PORT* port)
{
    for (uint32_t i = 0; i < port->worker_count; i++)
    {
        int error = sys_pthread_create(&port->workers[i], worker_main, port);
        if (error != 0)
        {
            LogError("pthread_create failed for worker %u of %u, error=%d", i + 1, port->worker_count, error);
            stop_workers(port, i);
            return -1;
        }
    }
    return 0;
}

COMPLETION_PORT_HANDLE completion_port_create(uint32_t worker_count)
{
    if (worker_count > COMPLETION_PORT_MAX_WORKERS)
    {
        LogError("worker_count=%u is above the maximum of %u", worker_count, COMPLETION_PORT_MAX_WORKERS);
        return NULL;
    }
    COMPLETION_PORT* port = sys_calloc(1, sizeof(COMPLETION_PORT));
    if (port == NULL)
    {
        LogError("cannot allocate the completion port");
        return NULL;
    }
    atomic_init(&port->refcount, 1);
    atomic_init(&port->stopping, false);
    atomic_init(&port->free_on_worker_exit, false);
    atomic_init(&port->next_generation, 0);
    port->worker_count = (worker_count == 0) ? completion_port_default_worker_count() : worker_count;
    (void)pthread_mutex_init(&port->table_lock, NULL);
    (void)pthread_mutex_init(&port->post_lock, NULL);
    if (open_fds(port) != 0)
    {
        (void)pthread_mutex_destroy(&port->table_lock);
        (void)pthread_mutex_destroy(&port->post_lock);
        sys_free(port);
        return NULL;
    }
    if (start_workers(port) != 0)
    {
        free_port(port);
        return NULL;
    }
    return port;
}

void completion_port_inc_ref(COMPLETION_PORT_HANDLE completion_port)
{
    if (completion_port == NULL)
    {
        LogError("completion_port is NULL");
        return;
    }
    (void)atomic_fetch_add_explicit(&completion_port->refcount, 1, memory_order_relaxed);
}

void completion_port_dec_ref(COMPLETION_PORT_HANDLE completion_port)
{
    if (completion_port == NULL)
    {
        LogError("completion_port is NULL");
        return;
    }
    if (atomic_fetch_sub_explicit(&completion_port->refcount, 1, memory_order_acq_rel) != 1)
    {
        return;
    }
    stop_workers(completion_port, completion_port->worker_count);
    if (current_worker_port == completion_port)
    {
        /* Dropped on one of our own workers (a socket torn down from a callback after the
         * platform was deinitialised): the others are joined, and this one, now detached, frees
         * the port when it leaves worker_main, which still uses it until then. */
        atomic_store_explicit(&completion_port->free_on_worker_exit, true, memory_order_release);
        return;
    }
    free_port(completion_port);
}

uint32_t completion_port_get_worker_count(COMPLETION_PORT_HANDLE completion_port)
{
    if (completion_port == NULL)
    {
        LogError("completion_port is NULL");
        return 0;
    }
    return completion_port->worker_count;
}

static int check_io(COMPLETION_PORT_HANDLE completion_port, COMPLETION_PORT_IO* io)
{
    if (completion_port == NULL || io == NULL)
    {
        LogError("invalid arguments: completion_port=%p, io=%p", (void*)completion_port, (void*)io);
        return -1;
    }
    return 0;
}

int completion_port_add(COMPLETION_PORT_HANDLE completion_port, int fd, COMPLETION_PORT_IO* io)
{
    if (check_io(completion_port, io) != 0)
    {
        return -1;
    }
    if (io->ops == NULL || io->ops->on_events == NULL || io->ops->hold == NULL || io->ops->release == NULL)
    {
        LogError("io=%p lacks an ops table with on_events, hold and release", (void*)io);
        return -1;
    }
    SLOT* slot = get_or_create_slot(completion_port, fd);
    if (slot == NULL)
    {
        LogError("cannot register fd=%d (negative, beyond %u, or out of memory)", fd, CHUNK_COUNT * SLOTS_PER_CHUNK);
        return -1;
    }
    io->fd = fd;
    /* a generation is never 0, so that a zeroed io matches no event */
    uint32_t generation = (atomic_fetch_add_explicit(&completion_port->next_generation, 1, memory_order_relaxed) % GENERATION_MASK) + 1;
    uint32_t old = __atomic_load_n(&io->generation, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&io->generation, &old, (old & POSTED_BIT) | generation, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    {
        /* a post raced the add: keep its bit */
    }
    slot_lock(slot);
    slot_set_io(slot, io);
    slot_unlock(slot);

    struct epoll_event event = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = ((uint64_t)generation << 32) | (uint32_t)fd,
    };
    if (sys_epoll_ctl(completion_port->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
    {
        LogError("epoll_ctl(ADD) failed for fd=%d, errno=%d", fd, errno);
        slot_lock(slot);
        slot_set_io(slot, NULL);
        slot_unlock(slot);
        return -1;
    }
    return 0;
}

int completion_port_rearm(COMPLETION_PORT_HANDLE completion_port, COMPLETION_PORT_IO* io)
{
    if (check_io(completion_port, io) != 0)
    {
        return -1;
    }
    struct epoll_event event = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = ((uint64_t)io_generation(io) << 32) | (uint32_t)io->fd,
    };
    /* MOD re-evaluates readiness and queues an event if the fd is ready now. */
    if (sys_epoll_ctl(completion_port->epoll_fd, EPOLL_CTL_MOD, io->fd, &event) != 0)
    {
        LogError("epoll_ctl(MOD) failed for fd=%d, errno=%d", io->fd, errno);
        return -1;
    }
    return 0;
}

void completion_port_remove(COMPLETION_PORT_HANDLE completion_port, COMPLETION_PORT_IO* io)
{
    if (check_io(completion_port, io) != 0)
    {
        return;
    }
    SLOT* slot = find_slot(completion_port, io->fd);
    if (slot == NULL)
    {
        LogError("fd=%d was never added", io->fd);
        return;
    }
    slot_lock(slot);
    if (slot_io(slot) == io)
    {
        slot_set_io(slot, NULL);
    }
    slot_unlock(slot);
    if (sys_epoll_ctl(completion_port->epoll_fd, EPOLL_CTL_DEL, io->fd, NULL) != 0)
    {
        /* the table entry is gone, so any later event is dropped anyway */
        LogWarning("epoll_ctl(DEL) failed for fd=%d, errno=%d", io->fd, errno);
    }
}

int completion_port_post(COMPLETION_PORT_HANDLE completion_port, COMPLETION_PORT_IO* io)
{
    if (check_io(completion_port, io) != 0)
    {
        return -1;
    }
    if ((__atomic_fetch_or(&io->generation, POSTED_BIT, __ATOMIC_ACQ_REL) & POSTED_BIT) != 0)
    {
        return 0;
    }
    io->ops->hold(io);
    io->post_next = NULL;
    (void)pthread_mutex_lock(&completion_port->post_lock);
    bool was_empty = (completion_port->post_head == NULL);
    if (was_empty)
    {
        completion_port->post_head = io;
    }
    else
    {
        completion_port->post_tail->post_next = io;
    }
    completion_port->post_tail = io;
    (void)pthread_mutex_unlock(&completion_port->post_lock);
    /* A non-empty list already has a wake-up on its way that will take this entry too. */
    if (was_empty)
    {
        wake_one(completion_port);
    }
    return 0;
}
