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
 * its own (8 bytes per fd).
 *
 * Workers: one of them, the poller, waits in epoll_wait; the others (followers) sleep on a futex.
 * A poller that gets a batch big enough to be worth a hand-off gives part of it to idle followers
 * and delivers the rest itself; a small batch it delivers alone. So one connection's ping-pong
 * never pays a cross-CPU wake-up per event (which is what N workers all waiting in epoll_wait
 * cost: the kernel wakes an idle one for every new event), while 100 busy connections use every
 * worker. A poller stuck in a long callback is noticed by a follower within STALL_CHECK_MS to
 * STALL_CHECK_MAX_MS, and that follower polls too, so one blocking callback never stops the
 * port. The events and posts a stuck worker had already taken (the rest of its batch or share,
 * the rest of the posted list it was running) are in its backlog, which the worker that noticed
 * takes over and delivers: work already taken out of epoll waits for no blocked callback either.
 * See devdoc D30. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "asock_assert.h"
#include "c_pal/completion_port_linux.h"
#include "log_internal.h"
#include "sys.h"

#define SLOTS_PER_CHUNK 256
#define CHUNK_COUNT 4096 /* 1M fds: the kernel's default nr_open */
#define EVENT_BATCH 64
/* a batch with fewer events than this is delivered by its poller alone: handing events to a
 * sleeping follower costs a futex wake and a context switch, several microseconds */
#define SHARE_MIN_EVENTS 8
/* the smallest share a follower is woken for */
#define SHARE_MIN_PART 4
/* How long a poller may deliver without progress before a follower polls beside it: the first
 * check comes after STALL_CHECK_MS; while the pollers keep making progress the interval doubles up
 * to STALL_CHECK_MAX_MS, so a busy port costs a follower about ten wake-ups a second. After
 * QUIET_CHECKS checks in a row that found every poller waiting in epoll_wait, the follower sleeps
 * without a timeout (an idle port wakes nobody), and the poller wakes it when events come. */
#define STALL_CHECK_MS 10
#define STALL_CHECK_MAX_MS 100
#define QUIET_CHECKS 3
#define WAKE_TOKEN UINT64_MAX

#define SLOT_LOCKED ((uintptr_t)1) /* COMPLETION_PORT_IO is pointer-aligned: bit 0 is free */

typedef struct SLOT_TAG
{
    _Atomic(uintptr_t) word; /* the COMPLETION_PORT_IO*, or 0, | SLOT_LOCKED while locked */
} SLOT;

typedef enum WORKER_STATE_TAG
{
    WORKER_FOLLOWING,           /* a follower: asleep, or about to be */
    WORKER_POLLING,             /* a poller in epoll_wait */
    WORKER_POLLER_DELIVERING,   /* a poller delivering its batch */
    WORKER_FOLLOWER_DELIVERING  /* a follower delivering a share, or what it took from a stuck worker */
} WORKER_STATE;

/* What a worker has taken and not delivered yet: the rest of its batch, and the rest of the
 * posted list it runs. The owner takes one item at a time under the lock; a worker that finds
 * the owner stuck takes all that is left (take_backlog). An uncontended lock per event costs
 * tens of nanoseconds, against the microseconds of the delivery itself. */
typedef struct BACKLOG_TAG
{
    pthread_mutex_t lock;
    uint32_t next;  /* events[next, count) are still to be delivered */
    uint32_t count;
    COMPLETION_PORT_IO* posted; /* posts still to be run, linked by post_next */
    struct epoll_event events[EVENT_BATCH];
} BACKLOG;

typedef struct COMPLETION_PORT_TAG COMPLETION_PORT;

/* Padded to a cache line: each worker writes its own state and progress, others only read them
 * (a follower deciding whether the pollers are stuck). */
typedef struct WORKER_TAG
{
    COMPLETION_PORT* port;
    pthread_t thread;
    atomic_uint state;    /* WORKER_STATE */
    atomic_uint progress; /* deliveries started; a stuck poller's stays the same */
    /* the follower's own watch (only this worker touches them) */
    uint16_t watch_ms;    /* the next stall check's interval */
    uint16_t quiet_checks;
    char padding[64 - sizeof(COMPLETION_PORT*) - sizeof(pthread_t) - 2 * sizeof(atomic_uint) - 2 * sizeof(uint16_t)];
} WORKER;

_Static_assert(sizeof(WORKER) == 64, "a worker record is one cache line");

struct COMPLETION_PORT_TAG
{
    atomic_int refcount;
    int epoll_fd;
    int wake_fd;
    atomic_bool stopping;
    atomic_bool free_on_worker_exit;
    uint32_t worker_count;
    WORKER workers[COMPLETION_PORT_MAX_WORKERS];

    /* the hand-off of events from a poller to followers */
    atomic_uint pollers;           /* workers in the poller role */
    atomic_uint idle_followers;    /* followers asleep, or about to sleep */
    atomic_uint untimed_followers; /* of those, the ones that sleep without a stall check */
    atomic_uint share_seq;         /* the futex word followers sleep on */
    atomic_uint shared_left;       /* events handed off and not taken yet */
    pthread_mutex_t share_lock;    /* guards the fields below */
    uint32_t shared_next;
    uint32_t shared_count;
    uint32_t share_part;
    struct epoll_event shared[EVENT_BATCH];

    pthread_mutex_t table_lock; /* only for allocating chunks */
    atomic_uint next_generation;
    _Atomic(SLOT*) chunks[CHUNK_COUNT];

    pthread_mutex_t post_lock;
    COMPLETION_PORT_IO* post_head;
    COMPLETION_PORT_IO* post_tail;

    BACKLOG backlogs[COMPLETION_PORT_MAX_WORKERS]; /* one per worker, same index */
};

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

static void deliver(WORKER* self, uint64_t token, uint32_t events)
{
    COMPLETION_PORT* port = self->port;
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

static BACKLOG* backlog_of(WORKER* worker)
{
    return &worker->port->backlogs[worker - worker->port->workers];
}

/* Moves the port's posted list to the end of the worker's backlog. */
static void take_posted(WORKER* self)
{
    COMPLETION_PORT* port = self->port;
    uint64_t counter;
    (void)sys_read(port->wake_fd, &counter, sizeof(counter));

    (void)pthread_mutex_lock(&port->post_lock);
    COMPLETION_PORT_IO* io = port->post_head;
    port->post_head = NULL;
    port->post_tail = NULL;
    (void)pthread_mutex_unlock(&port->post_lock);

    BACKLOG* backlog = backlog_of(self);
    (void)pthread_mutex_lock(&backlog->lock);
    COMPLETION_PORT_IO** end = &backlog->posted;
    while (*end != NULL)
    {
        end = &(*end)->post_next;
    }
    *end = io;
    (void)pthread_mutex_unlock(&backlog->lock);
}

static void run_post(COMPLETION_PORT_IO* io)
{
    /* cleared before the call so that on_events may post again */
    (void)__atomic_fetch_and(&io->generation, GENERATION_MASK, __ATOMIC_RELEASE);
    io->ops->on_events(io, 0);
    io->ops->release(io);
}

/* Delivers the worker's backlog, one item at a time, until nothing is left in it (a worker that
 * found this one stuck may have taken the rest). */
static void deliver_backlog(WORKER* self)
{
    BACKLOG* backlog = backlog_of(self);
    for (;;)
    {
        (void)pthread_mutex_lock(&backlog->lock);
        COMPLETION_PORT_IO* io = backlog->posted;
        struct epoll_event event = {.data.u64 = 0};
        bool have_event = false;
        if (io != NULL)
        {
            backlog->posted = io->post_next;
            io->post_next = NULL;
        }
        else if (backlog->next < backlog->count)
        {
            event = backlog->events[backlog->next++];
            have_event = true;
        }
        (void)pthread_mutex_unlock(&backlog->lock);
        if (io == NULL && !have_event)
        {
            return;
        }
        /* only this thread writes it; another worker reads it to tell a stuck one */
        atomic_store_explicit(&self->progress, atomic_load_explicit(&self->progress, memory_order_relaxed) + 1, memory_order_relaxed);
        if (io != NULL)
        {
            run_post(io);
        }
        else if (event.data.u64 == WAKE_TOKEN)
        {
            take_posted(self);
        }
        else
        {
            deliver(self, event.data.u64, event.events);
        }
    }
}

/* Makes events[0, count), which the worker wrote into its own backlog's array while the backlog
 * was empty, its backlog, and delivers it. */
static void deliver_all(WORKER* self, int count)
{
    BACKLOG* backlog = backlog_of(self);
    (void)pthread_mutex_lock(&backlog->lock);
    backlog->next = 0;
    backlog->count = (uint32_t)count;
    (void)pthread_mutex_unlock(&backlog->lock);
    deliver_backlog(self);
}

/* Whether `worker` is delivering and has made no progress since `seen` was taken. */
static bool is_stuck(WORKER* worker, uint32_t seen)
{
    uint32_t state = atomic_load(&worker->state);
    return (state == WORKER_POLLER_DELIVERING || state == WORKER_FOLLOWER_DELIVERING) && atomic_load(&worker->progress) == seen;
}

/* Takes into self's backlog (empty) what each stuck worker has taken and not delivered: as many
 * of its events as fit, and all its posts. Returns whether anything was taken. One backlog lock
 * at a time: two workers may each be checking on the other.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_132 */
static bool take_from_stuck(WORKER* self, const uint32_t* seen)
{
    COMPLETION_PORT* port = self->port;
    struct epoll_event taken[EVENT_BATCH];
    uint32_t count = 0;
    COMPLETION_PORT_IO* posted = NULL;
    COMPLETION_PORT_IO** end = &posted;
    for (uint32_t i = 0; i < port->worker_count; i++)
    {
        WORKER* worker = &port->workers[i];
        if (worker == self || !is_stuck(worker, seen[i]))
        {
            continue;
        }
        BACKLOG* theirs = &port->backlogs[i];
        (void)pthread_mutex_lock(&theirs->lock);
        uint32_t left = theirs->count - theirs->next;
        uint32_t take = (left < EVENT_BATCH - count) ? left : EVENT_BATCH - count;
        (void)memcpy(taken + count, theirs->events + theirs->next, take * sizeof(struct epoll_event));
        count += take;
        theirs->next += take;
        *end = theirs->posted;
        theirs->posted = NULL;
        (void)pthread_mutex_unlock(&theirs->lock);
        while (*end != NULL)
        {
            end = &(*end)->post_next;
        }
    }
    if (count == 0 && posted == NULL)
    {
        return false;
    }
    BACKLOG* mine = backlog_of(self);
    (void)pthread_mutex_lock(&mine->lock);
    (void)memcpy(mine->events, taken, count * sizeof(struct epoll_event));
    mine->next = 0;
    mine->count = count;
    *end = mine->posted;
    mine->posted = posted;
    (void)pthread_mutex_unlock(&mine->lock);
    return true;
}

/* Delivers, as a follower, what take_from_stuck took. */
static void deliver_taken(WORKER* self)
{
    atomic_store(&self->state, WORKER_FOLLOWER_DELIVERING);
    deliver_backlog(self);
    atomic_store(&self->state, WORKER_FOLLOWING);
}

/* ---- the hand-off between the poller and the followers ---- */

static void futex_wake(atomic_uint* word, int count)
{
    (void)sys_futex(word, FUTEX_WAKE_PRIVATE, count, NULL);
}

/* Wakes `count` sleeping followers (all of them with INT_MAX). */
static void wake_followers(COMPLETION_PORT* port, int count)
{
    (void)atomic_fetch_add(&port->share_seq, 1);
    futex_wake(&port->share_seq, count);
}

/* share_lock held. Whether every event of the last hand-off has been taken, so that `shared` may
 * take a new one. The invariant of the hand-off: `shared` is written only under share_lock and
 * only when this holds, and shared_left always equals shared_count - shared_next (it is read
 * without the lock as a hint only), so each handed-off event is taken exactly once. */
static bool share_is_free_locked(COMPLETION_PORT* port)
{
    ASOCK_ASSERT(port->shared_next <= port->shared_count);
    ASOCK_ASSERT(atomic_load_explicit(&port->shared_left, memory_order_relaxed) == port->shared_count - port->shared_next);
    return port->shared_next == port->shared_count;
}

/* Called by a poller with a fresh batch. Hands the tail of the batch to idle followers when it is
 * big enough to be worth their wake-ups and the last hand-off has been taken; returns how many
 * events, from the start of the batch, the poller delivers itself.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_050 */
static int share_batch(COMPLETION_PORT* port, const struct epoll_event* events, int count)
{
    uint32_t idle = atomic_load_explicit(&port->idle_followers, memory_order_relaxed);
    if (count < SHARE_MIN_EVENTS || idle == 0 || atomic_load_explicit(&port->shared_left, memory_order_relaxed) != 0)
    {
        return count;
    }
    uint32_t parts = (uint32_t)count / SHARE_MIN_PART;
    if (parts > idle + 1)
    {
        parts = idle + 1;
    }
    uint32_t part = ((uint32_t)count + parts - 1) / parts;
    uint32_t given = (uint32_t)count - part;
    (void)pthread_mutex_lock(&port->share_lock);
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_221: the check above was without the lock; another poller
     * may have handed off a batch since, which this one must not overwrite */
    if (!share_is_free_locked(port))
    {
        (void)pthread_mutex_unlock(&port->share_lock);
        return count;
    }
    (void)memcpy(port->shared, events + part, given * sizeof(struct epoll_event));
    port->shared_next = 0;
    port->shared_count = given;
    port->share_part = part;
    atomic_store_explicit(&port->shared_left, given, memory_order_relaxed);
    (void)pthread_mutex_unlock(&port->share_lock);
    wake_followers(port, (int)((given + part - 1) / part));
    return (int)part;
}

/* Takes one share of the handed-off events into `events`; returns how many (0: none left). */
static int take_share(COMPLETION_PORT* port, struct epoll_event* events)
{
    if (atomic_load_explicit(&port->shared_left, memory_order_relaxed) == 0)
    {
        return 0;
    }
    (void)pthread_mutex_lock(&port->share_lock);
    ASOCK_ASSERT(atomic_load_explicit(&port->shared_left, memory_order_relaxed) == port->shared_count - port->shared_next);
    uint32_t left = port->shared_count - port->shared_next;
    uint32_t take = (left < port->share_part) ? left : port->share_part;
    (void)memcpy(events, port->shared + port->shared_next, take * sizeof(struct epoll_event));
    port->shared_next += take;
    atomic_store_explicit(&port->shared_left, left - take, memory_order_relaxed);
    (void)pthread_mutex_unlock(&port->share_lock);
    return (int)take;
}

/* Records each worker's progress in `seen`; true when some worker is delivering (then a follower
 * checks on it later), false when every poller waits in epoll_wait and no follower delivers. */
static bool snapshot_pollers(COMPLETION_PORT* port, uint32_t* seen)
{
    bool delivering = false;
    for (uint32_t i = 0; i < port->worker_count; i++)
    {
        WORKER* worker = &port->workers[i];
        seen[i] = atomic_load(&worker->progress);
        uint32_t state = atomic_load(&worker->state);
        delivering = delivering || state == WORKER_POLLER_DELIVERING || state == WORKER_FOLLOWER_DELIVERING;
    }
    return delivering;
}

/* True when no poller waits in epoll_wait and none of the delivering ones has moved on since
 * `seen` was taken: events may be waiting that nobody will take. */
static bool pollers_stuck(COMPLETION_PORT* port, const uint32_t* seen)
{
    for (uint32_t i = 0; i < port->worker_count; i++)
    {
        WORKER* worker = &port->workers[i];
        uint32_t state = atomic_load(&worker->state);
        if (state == WORKER_POLLING || (state == WORKER_POLLER_DELIVERING && atomic_load(&worker->progress) != seen[i]))
        {
            return false;
        }
    }
    return atomic_load(&port->pollers) != 0;
}

/* Whether another worker than `self` waits in epoll_wait now. */
static bool another_polling(WORKER* self)
{
    COMPLETION_PORT* port = self->port;
    for (uint32_t i = 0; i < port->worker_count; i++)
    {
        if (&port->workers[i] != self && atomic_load(&port->workers[i].state) == WORKER_POLLING)
        {
            return true;
        }
    }
    return false;
}

/* A poller steps down after a batch too small to share, when there is more than one poller and
 * another one waits in epoll_wait: while batches are big, several pollers keep every worker
 * busy without a wake-up; once they are small, one poller takes them all without the kernel
 * waking a second one for each event. The count never drops to 0 this way, since the one
 * waiting cannot step down until it is back. */
static bool step_down(WORKER* self, int count)
{
    COMPLETION_PORT* port = self->port;
    uint32_t pollers = atomic_load(&port->pollers);
    while (count < SHARE_MIN_EVENTS && pollers > 1 && another_polling(self))
    {
        if (atomic_compare_exchange_weak(&port->pollers, &pollers, pollers - 1))
        {
            return true;
        }
    }
    return false;
}

/* Whether a worker other than `self` is delivering. */
static bool another_delivering(WORKER* self)
{
    COMPLETION_PORT* port = self->port;
    for (uint32_t i = 0; i < port->worker_count; i++)
    {
        uint32_t state = atomic_load_explicit(&port->workers[i].state, memory_order_relaxed);
        if (&port->workers[i] != self && (state == WORKER_POLLER_DELIVERING || state == WORKER_FOLLOWER_DELIVERING))
        {
            return true;
        }
    }
    return false;
}

static uint64_t now_ms(void)
{
    struct timespec now;
    (void)clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* A poller's own stall check, for the workers no sleeping follower watches (all the others poll
 * or deliver): every STALL_CHECK_MS it compares their progress with the last check's and takes
 * over what a stuck one has taken.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_132 */
static void poller_check(WORKER* self, uint32_t* seen, uint64_t* checked_at)
{
    uint64_t now = now_ms();
    if (now - *checked_at < STALL_CHECK_MS)
    {
        return;
    }
    if (take_from_stuck(self, seen))
    {
        atomic_store(&self->state, WORKER_POLLER_DELIVERING);
        deliver_backlog(self);
    }
    (void)snapshot_pollers(self->port, seen);
    *checked_at = now_ms();
}

/* The poller role: wait for a batch, hand part of it off, deliver the rest; until the port stops,
 * epoll_wait fails, or another poller makes this one redundant. */
static void poll_until_relieved(WORKER* self)
{
    COMPLETION_PORT* port = self->port;
    struct epoll_event* events = backlog_of(self)->events;
    uint32_t seen[COMPLETION_PORT_MAX_WORKERS];
    (void)snapshot_pollers(port, seen);
    uint64_t checked_at = now_ms();
    for (;;)
    {
        /* with other pollers about, come back now and then to see whether to step down; with
         * another worker delivering, to see whether it is stuck */
        bool watch = another_delivering(self);
        int timeout = (watch || atomic_load_explicit(&port->pollers, memory_order_relaxed) > 1) ? STALL_CHECK_MS : -1;
        if (watch)
        {
            poller_check(self, seen, &checked_at);
        }
        atomic_store(&self->state, WORKER_POLLING);
        int count = sys_epoll_wait(port->epoll_fd, events, EVENT_BATCH, timeout);
        /* seq_cst, and before untimed_followers is read: a follower that announced itself after
         * this store sees the poller delivering and sleeps with a stall check */
        atomic_store(&self->state, WORKER_POLLER_DELIVERING);
        if (atomic_load_explicit(&port->stopping, memory_order_acquire))
        {
            break;
        }
        if (count < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            LogError("epoll_wait failed, errno=%d; worker stops", errno);
            atomic_store(&port->stopping, true); /* no worker can take events any more */
            break;
        }
        if (atomic_load(&port->untimed_followers) != 0)
        {
            wake_followers(port, 1); /* it goes back to sleep with a stall check */
        }
        deliver_all(self, share_batch(port, events, count));
        if (step_down(self, count))
        {
            atomic_store(&self->state, WORKER_FOLLOWING);
            return;
        }
    }
    (void)atomic_fetch_sub(&port->pollers, 1);
    atomic_store(&self->state, WORKER_FOLLOWING);
}

/* A follower with nothing to do sleeps until a hand-off or a stop wakes it. While a poller
 * delivers it sleeps with a stall check (see STALL_CHECK_MS), and polls itself when every poller
 * has made no progress since the last check (returns true). */
static bool follower_wait(WORKER* self)
{
    COMPLETION_PORT* port = self->port;
    uint32_t seen[COMPLETION_PORT_MAX_WORKERS];
    unsigned seq = atomic_load(&port->share_seq);
    (void)atomic_fetch_add(&port->idle_followers, 1);
    (void)atomic_fetch_add(&port->untimed_followers, 1);
    /* after the announcement above (seq_cst): a poller that starts delivering after this
     * snapshot sees the announcement and wakes this follower */
    bool delivering = snapshot_pollers(port, seen);
    bool timed = delivering || self->quiet_checks < QUIET_CHECKS;
    if (timed)
    {
        (void)atomic_fetch_sub(&port->untimed_followers, 1);
    }
    bool sleep = atomic_load(&port->shared_left) == 0 && atomic_load(&port->pollers) != 0 &&
        !atomic_load_explicit(&port->stopping, memory_order_acquire);
    if (sleep)
    {
        struct timespec timeout = {.tv_sec = self->watch_ms / 1000, .tv_nsec = (long)(self->watch_ms % 1000) * 1000000L};
        (void)sys_futex(&port->share_seq, FUTEX_WAIT_PRIVATE, seq, timed ? &timeout : NULL);
    }
    if (!timed)
    {
        (void)atomic_fetch_sub(&port->untimed_followers, 1);
    }
    (void)atomic_fetch_sub(&port->idle_followers, 1);
    if (!sleep || atomic_load(&port->share_seq) != seq)
    {
        self->quiet_checks = 0; /* woken for work: the port is busy */
        return false;
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_132: what a stuck worker took is delivered here first */
    if (delivering && take_from_stuck(self, seen))
    {
        deliver_taken(self);
    }
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_051 */
    if (delivering && pollers_stuck(port, seen))
    {
        self->watch_ms = STALL_CHECK_MS;
        (void)atomic_fetch_add(&port->pollers, 1);
        return true;
    }
    self->quiet_checks = delivering ? 0 : (uint16_t)(self->quiet_checks + 1);
    self->watch_ms = (self->watch_ms * 2 > STALL_CHECK_MAX_MS) ? STALL_CHECK_MAX_MS : (uint16_t)(self->watch_ms * 2);
    return false;
}

static void free_port(COMPLETION_PORT* port);

static void* worker_main(void* arg)
{
    WORKER* self = arg;
    COMPLETION_PORT* port = self->port;
    current_worker_port = port;

    while (!atomic_load_explicit(&port->stopping, memory_order_acquire))
    {
        int count = take_share(port, backlog_of(self)->events);
        if (count > 0)
        {
            atomic_store(&self->state, WORKER_FOLLOWER_DELIVERING);
            deliver_all(self, count);
            /* Codes_SRS_ASYNC_SOCKET_LINUX_99_050: there is enough work for two; this worker
             * polls too until a small batch says otherwise (see step_down) */
            (void)atomic_fetch_add(&port->pollers, 1);
            poll_until_relieved(self);
            continue;
        }
        unsigned none = 0;
        if (atomic_compare_exchange_strong(&port->pollers, &none, 1) || follower_wait(self))
        {
            poll_until_relieved(self);
        }
    }
    /* pass the stop on: a worker waiting in epoll_wait needs its own edge, and a sleeping
     * follower its own wake */
    wake_one(port);
    wake_followers(port, INT_MAX);
    if (atomic_load_explicit(&port->free_on_worker_exit, memory_order_acquire))
    {
        free_port(port);
    }
    return NULL;
}

static void release_list(COMPLETION_PORT_IO* io)
{
    while (io != NULL)
    {
        COMPLETION_PORT_IO* next = io->post_next;
        io->ops->release(io);
        io = next;
    }
}

/* The workers are gone: posts nobody ran are released (a stopping worker leaves its backlog). */
static void release_posted(COMPLETION_PORT* port)
{
    release_list(port->post_head);
    port->post_head = NULL;
    for (uint32_t i = 0; i < COMPLETION_PORT_MAX_WORKERS; i++)
    {
        release_list(port->backlogs[i].posted);
        port->backlogs[i].posted = NULL;
    }
}

static void init_locks(COMPLETION_PORT* port)
{
    (void)pthread_mutex_init(&port->table_lock, NULL);
    (void)pthread_mutex_init(&port->post_lock, NULL);
    (void)pthread_mutex_init(&port->share_lock, NULL);
    for (uint32_t i = 0; i < COMPLETION_PORT_MAX_WORKERS; i++)
    {
        (void)pthread_mutex_init(&port->backlogs[i].lock, NULL);
    }
}

static void destroy_locks(COMPLETION_PORT* port)
{
    (void)pthread_mutex_destroy(&port->table_lock);
    (void)pthread_mutex_destroy(&port->post_lock);
    (void)pthread_mutex_destroy(&port->share_lock);
    for (uint32_t i = 0; i < COMPLETION_PORT_MAX_WORKERS; i++)
    {
        (void)pthread_mutex_destroy(&port->backlogs[i].lock);
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
    destroy_locks(port);
    sys_free(port);
}

static void stop_workers(COMPLETION_PORT* port, uint32_t started)
{
    atomic_store_explicit(&port->stopping, true, memory_order_release);
    wake_one(port);
    wake_followers(port, INT_MAX);
    for (uint32_t i = 0; i < started; i++)
    {
        if (pthread_equal(port->workers[i].thread, pthread_self()))
        {
            /* the last reference was dropped from a callback: this thread cannot join itself */
            (void)pthread_detach(port->workers[i].thread);
            continue;
        }
        (void)pthread_join(port->workers[i].thread, NULL);
    }
}

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_015: a fixed, bounded set of workers serves every socket.
 * One per online CPU: only a batch big enough to share wakes a second worker (see share_batch),
 * so more workers cost nothing while there is little to do. */
uint32_t completion_port_default_worker_count(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
    {
        return 1;
    }
    return (cpus > COMPLETION_PORT_MAX_WORKERS) ? COMPLETION_PORT_MAX_WORKERS : (uint32_t)cpus;
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

static int start_workers_masked(COMPLETION_PORT* port)
{
    for (uint32_t i = 0; i < port->worker_count; i++)
    {
        port->workers[i].port = port;
        port->workers[i].watch_ms = STALL_CHECK_MS;
        int error = sys_pthread_create(&port->workers[i].thread, worker_main, &port->workers[i]);
        if (error != 0)
        {
            LogError("pthread_create failed for worker %u of %u, error=%d", i + 1, port->worker_count, error);
            stop_workers(port, i);
            return -1;
        }
    }
    return 0;
}

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_177: the workers are created with every signal blocked that
 * can be blocked (a thread inherits its creator's mask), so a signal sent to the process (SIGINT,
 * SIGTERM, SIGCHLD) goes to one of the application's threads and never interrupts a callback;
 * faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL) still reach the worker that caused them. */
static int start_workers(COMPLETION_PORT* port)
{
    sigset_t all;
    sigset_t old;
    (void)sigfillset(&all);
    (void)sigdelset(&all, SIGSEGV);
    (void)sigdelset(&all, SIGBUS);
    (void)sigdelset(&all, SIGFPE);
    (void)sigdelset(&all, SIGILL);
    (void)pthread_sigmask(SIG_BLOCK, &all, &old);
    int result = start_workers_masked(port);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    return result;
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
    init_locks(port);
    if (open_fds(port) != 0)
    {
        destroy_locks(port);
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
    /* Codes_SRS_ASYNC_SOCKET_LINUX_99_130: a slot that holds another registration is left alone
     * (epoll_ctl(ADD) would say EEXIST, and emptying the slot then would silence the first owner
     * for good); the check and the write are one step under the slot's lock */
    slot_lock(slot);
    COMPLETION_PORT_IO* holder = slot_io(slot);
    if (holder == NULL)
    {
        slot_set_io(slot, io);
    }
    slot_unlock(slot);
    if (holder != NULL)
    {
        LogError("cannot register fd=%d: it is already registered with this completion port", fd);
        errno = EEXIST;
        return -1;
    }

    struct epoll_event event = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = ((uint64_t)generation << 32) | (uint32_t)fd,
    };
    if (sys_epoll_ctl(completion_port->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
    {
        int error = errno;
        LogError("epoll_ctl(ADD) failed for fd=%d, errno=%d", fd, error);
        slot_lock(slot);
        if (slot_io(slot) == io)
        {
            slot_set_io(slot, NULL);
        }
        slot_unlock(slot);
        errno = error;
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
