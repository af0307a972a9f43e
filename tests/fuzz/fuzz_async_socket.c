/* The fuzz harness: one async socket with a custom transport, driven by a script that the fuzzer
 * writes (the format is in tests/fuzz/README.md).
 *
 * The script interleaves API calls (send and receive with 1-8 buffers, notify, close, and a
 * close, destroy, send or receive made by the next callback) with what the transport hooks return
 * on their next calls (all, a partial count, EAGAIN, EINTR, ECONNRESET, other errors, 0, a close
 * from inside the hook) and with changes to the readiness of the real fd the socket is registered
 * with (one end of a socketpair; the harness holds the other end).
 *
 * Invariants, checked as the calls happen and after close (a violation aborts with a message):
 *   - every accepted operation is called back exactly once, a refused one never;
 *   - on_send is offered the accepted sends' bytes in order, each send from where the last call
 *     left off (a send may stop early only if it does not end SEND_OK);
 *   - on_recv fills the posted receives in order, and each receive callback reports exactly the
 *     bytes the hook handed to it, with their content;
 *   - no callback and no hook call starts after async_socket_close has returned;
 *   - a failed call logs exactly one line, an accepted one none;
 *   - once the transport takes and gives everything and the fd raises an input and an output
 *     edge, every pending operation completes (no lost wake-up);
 *   - after destroy the fd is closed and the library holds no allocation it did not hold before.
 *
 * Every buffer is freed as soon as its operation is called back, so a library that touches a
 * buffer after its callback shows up under AddressSanitizer.
 *
 * The harness thread waits for the workers in a bounded way only: after each step it passes a
 * "barrier" event through the completion port (an eventfd registered with the port), which with
 * one worker runs after everything that step queued, and repeats while the hooks or callbacks
 * were active meanwhile (at most SETTLE_ROUNDS rounds, each waiting BARRIER_TIMEOUT_MS at most). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "c_pal/async_socket.h"
#include "c_pal/completion_port_linux.h"
#include "c_pal/logger.h"
#include "c_pal/platform.h"
#include "fuzz_harness.h"
#include "sys_fault.h"

#define MAX_STEPS 64
#define MAX_OPS 64
#define MAX_BUFFERS 8
#define MAX_RESULTS 64
#define SETTLE_ROUNDS 8
#define BARRIER_TIMEOUT_MS 5
#define FILL_CHUNK 4096
#define LIVENESS_ATTEMPTS 40 /* settles before a pending operation counts as stuck... */
#define LIVENESS_MS 1000     /* ...and milliseconds */

/* ---- failing ---- */

static void fuzz_fail(const char* format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fuzz_fail(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    (void)fprintf(stderr, "fuzz invariant violated: ");
    (void)vfprintf(stderr, format, args);
    (void)fprintf(stderr, "\n");
    va_end(args);
    abort();
}

/* FUZZ_TRACE=1 in the environment prints each step, hook call and callback to stderr. */
static bool tracing;

static void trace(const char* format, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char* format, ...)
{
    if (!tracing)
    {
        return;
    }
    va_list args;
    va_start(args, format);
    (void)fprintf(stderr, "[%lx] ", (unsigned long)pthread_self() & 0xFFFFFu);
    (void)vfprintf(stderr, format, args);
    (void)fprintf(stderr, "\n");
    va_end(args);
}

/* ---- the script ---- */

/* The first byte of an input. */
#define CONFIG_SEND_DEFAULT_ALL 0x01u /* an on_send with no scripted result takes all (else EAGAIN) */
#define CONFIG_RECV_DEFAULT_ALL 0x02u /* an on_recv with no scripted result fills all (else EAGAIN) */
#define CONFIG_DESTROY_ONLY     0x04u /* end with async_socket_destroy alone, no close first */
#define CONFIG_NO_SETTLE        0x08u /* do not wait for the worker after each step */
#define CONFIG_NO_OPEN          0x10u /* never open the socket: every operation must be refused */

typedef enum STEP_TAG
{
    STEP_SEND,
    STEP_RECEIVE,
    STEP_NOTIFY,
    STEP_CLOSE,
    STEP_SEND_RESULT,
    STEP_RECV_RESULT,
    STEP_FD,
    STEP_CALLBACK_ACTION,
    STEP_SETTLE,
    STEP_COUNT
} STEP;

typedef enum RESULT_KIND_TAG
{
    RESULT_ALL,       /* the whole buffer */
    RESULT_PARTIAL,   /* 1 to len - 1 bytes */
    RESULT_EAGAIN,
    RESULT_EINTR,
    RESULT_ECONNRESET,
    RESULT_ERROR,     /* EIO, EPIPE, ENOTCONN or ENOBUFS */
    RESULT_ZERO,      /* 0: end of stream on receive, a broken contract on send */
    RESULT_CLOSE,     /* the hook closes the socket, then returns all (send) or an error */
    NO_CALL           /* not a result: no transport call was made yet */
} RESULT_KIND;

typedef enum CALLBACK_ACTION_TAG
{
    ACTION_NONE,
    ACTION_CLOSE,
    ACTION_DESTROY,
    ACTION_SEND,
    ACTION_RECEIVE
} CALLBACK_ACTION;

typedef struct SCRIPTED_RESULT_TAG
{
    uint8_t kind;
    uint8_t amount;
} SCRIPTED_RESULT;

typedef struct RESULT_QUEUE_TAG
{
    SCRIPTED_RESULT items[MAX_RESULTS];
    uint32_t head;
    uint32_t tail;
} RESULT_QUEUE;

typedef struct READER_TAG
{
    const uint8_t* data;
    size_t size;
    size_t pos;
} READER;

/* The buffers of a send or receive as the script gives them: a count and a size each. */
typedef struct SIZES_TAG
{
    uint32_t count;
    uint32_t lengths[MAX_BUFFERS];
} SIZES;

static uint8_t next_byte(READER* reader)
{
    return (reader->pos < reader->size) ? reader->data[reader->pos++] : 0;
}

/* ---- operation records ---- */

typedef enum OP_KIND_TAG
{
    KIND_SEND,
    KIND_RECEIVE,
    KIND_NOTIFY_IN,
    KIND_NOTIFY_OUT
} OP_KIND;

typedef enum OP_STATE_TAG
{
    STATE_CALLING,  /* inside the API call: an inline callback may come before it returns */
    STATE_ACCEPTED,
    STATE_REFUSED
} OP_STATE;

typedef struct RECORD_TAG
{
    OP_KIND kind;
    OP_STATE state;
    uint32_t number; /* position among the records of its kind, in call order */
    uint32_t buffer_count;
    uint8_t* buffers[MAX_BUFFERS];
    uintptr_t bases[MAX_BUFFERS]; /* the addresses, kept for attribution after the free */
    uint32_t lengths[MAX_BUFFERS];
    uint64_t total;
    uint64_t stream_start; /* the stream offset of its first byte (sends: set at creation) */
    uint64_t moved;        /* bytes the transport took from it (sends) or gave to it (receives) */
    uint32_t offers;       /* transport calls made for it */
    uint32_t callbacks;
    int result;
} RECORD;

/* Where the transport must continue: record `op` of its kind, buffer `buffer`, byte `offset`. */
typedef struct CURSOR_TAG
{
    uint32_t op;
    uint32_t buffer;
    uint32_t offset;
} CURSOR;

typedef struct FUZZ_RUN_TAG
{
    pthread_mutex_t lock; /* guards everything below; never held across a library call */
    uint8_t config;
    RESULT_QUEUE send_results;
    RESULT_QUEUE recv_results;
    RECORD records[MAX_OPS];
    uint32_t record_count;
    RECORD* sends[MAX_OPS];
    uint32_t send_count;
    RECORD* receives[MAX_OPS];
    uint32_t receive_count;
    CURSOR send_cursor;
    CURSOR recv_cursor;
    uint32_t next_receive_callback;
    uint64_t send_stream;   /* bytes of all sends created so far (their pattern offsets) */
    uint64_t recv_stream;   /* bytes on_recv has handed out */
    uint64_t recv_reported; /* bytes the receive callbacks reported */
    uint32_t open_callbacks;
    const RECORD* hook_closed_receive; /* the receive on_recv was filling when it closed */
    uint8_t last_send_kind; /* the RESULT_KIND of the latest on_send call (NO_CALL before one) */
    uint8_t last_recv_kind;

    ASYNC_SOCKET_HANDLE socket;
    int fd;       /* the socket's end of the pair (owned by the library once created) */
    int fd_alias; /* a dup of fd, the harness's own (see start_run) */
    int peer;    /* the harness's end, or -1 once closed */
    atomic_bool closing;         /* some close has started: leave the fd alone */
    atomic_uint closes_running;  /* async_socket_close calls in progress */
    atomic_bool close_returned;  /* the last close call in progress has returned */
    atomic_int callback_action;  /* ACTION_*: what the next callback does */
    SIZES callback_sizes;        /* the buffers of a send or receive issued by a callback */
    atomic_bool destroy_armed;   /* a callback may destroy the socket: the harness stops using it */
    atomic_bool destroy_claimed; /* async_socket_destroy has been called (once) */
    atomic_uint activity;        /* hook calls and callbacks, for settling */
    atomic_uint in_on_send;
} FUZZ_RUN;

static FUZZ_RUN run;

static void run_lock(void)
{
    (void)pthread_mutex_lock(&run.lock);
}

static void run_unlock(void)
{
    (void)pthread_mutex_unlock(&run.lock);
}

static uint8_t pattern_byte(uint64_t offset, bool sending)
{
    uint64_t x = offset * 0x9E3779B97F4A7C15u + (sending ? 0x51u : 0xA7u);
    return (uint8_t)(x >> 56);
}

static RECORD* new_record(OP_KIND kind)
{
    if (run.record_count == MAX_OPS)
    {
        return NULL;
    }
    RECORD* record = &run.records[run.record_count++];
    (void)memset(record, 0, sizeof(*record));
    record->kind = kind;
    record->state = STATE_CALLING;
    return record;
}

static void free_buffers(RECORD* record)
{
    for (uint32_t i = 0; i < record->buffer_count; i++)
    {
        free(record->buffers[i]);
        record->buffers[i] = NULL;
    }
}

static SIZES read_sizes(READER* reader, unsigned arg)
{
    SIZES sizes = {.count = (arg & 7u) + 1u};
    uint32_t scale = ((arg & 8u) != 0) ? 16u : 1u;
    for (uint32_t i = 0; i < sizes.count; i++)
    {
        sizes.lengths[i] = (1u + next_byte(reader)) * scale;
    }
    return sizes;
}

/* Allocates the buffers of a send or receive. */
static void make_buffers(RECORD* record, const SIZES* sizes)
{
    record->buffer_count = sizes->count;
    for (uint32_t i = 0; i < record->buffer_count; i++)
    {
        uint32_t length = sizes->lengths[i];
        record->buffers[i] = malloc(length);
        if (record->buffers[i] == NULL)
        {
            fuzz_fail("out of memory for a %u byte buffer", length);
        }
        record->bases[i] = (uintptr_t)record->buffers[i];
        record->lengths[i] = length;
        record->total += length;
    }
}

/* ---- log lines ---- */

static _Thread_local unsigned log_lines;
/* WARNING and ERROR lines of calls refused on a closed or failed socket, in this run (99_133: one
 * at most per socket, the others are VERBOSE) */
static atomic_uint loud_refusals;

/* The level is VERBOSE, so that every failed call's line is seen, whatever its level. */
static void count_log_line(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)context;
    (void)file;
    (void)line;
    (void)function;
    log_lines++;
    if (level <= ASYNC_SOCKET_LOG_LEVEL_WARNING && strstr(message, " refused: ") != NULL && strstr(message, "not open yet") == NULL)
    {
        if (atomic_fetch_add(&loud_refusals, 1) != 0)
        {
            /* Tests_SRS_ASYNC_SOCKET_LINUX_99_133 */
            fuzz_fail("a second WARNING or ERROR line for a refused call on one socket: %s", message);
        }
    }
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void check_log_lines(const char* call, unsigned before, bool failed)
{
    unsigned lines = log_lines - before;
    if (failed && lines != 1)
    {
        fuzz_fail("%s failed and logged %u lines (one expected)", call, lines);
    }
    if (!failed && lines != 0)
    {
        fuzz_fail("%s succeeded and logged %u lines (none expected)", call, lines);
    }
    /* a call nested in another one on this thread (from a callback a close runs inside a hook)
     * must not count for the outer call */
    log_lines = before;
}

/* Whether this thread is inside async_socket_receive_async, which never calls back. */
static _Thread_local bool inside_receive_call;

/* ---- closing ---- */

/* A close made inside a callback or a hook returns at once when another thread is closing the
 * socket (waiting there could wait for this very thread), so only the return of the last close
 * call still running promises that no callback follows. */
static void close_socket(void)
{
    trace("close");
    atomic_store(&run.closing, true);
    (void)atomic_fetch_add(&run.closes_running, 1);
    async_socket_close(run.socket);
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_007 */
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_024 */
    if (atomic_fetch_sub(&run.closes_running, 1) == 1)
    {
        atomic_store(&run.close_returned, true);
    }
}

static void callback_entered(const char* what)
{
    (void)atomic_fetch_add(&run.activity, 1);
    if (atomic_load(&run.close_returned))
    {
        fuzz_fail("a %s callback started after async_socket_close returned", what);
    }
}

/* Destroys the socket unless someone already did; true when this call did it. */
static bool destroy_once(void)
{
    if (atomic_exchange(&run.destroy_claimed, true))
    {
        return false;
    }
    atomic_store(&run.closing, true);
    (void)atomic_fetch_add(&run.closes_running, 1);
    async_socket_destroy(run.socket);
    if (atomic_fetch_sub(&run.closes_running, 1) == 1)
    {
        atomic_store(&run.close_returned, true);
    }
    return true;
}

static void issue_send(const SIZES* sizes);
static void issue_receive(const SIZES* sizes);

/* Sends and receives are numbered in the order they are issued, which must be the order the
 * library gets them in: call_lock keeps the numbering and the call together. It is recursive
 * (an inline send callback on this thread may issue the next one), and a callback only tries it
 * (a worker must not wait for a harness thread that a close in a hook has made wait for it). */
static pthread_mutex_t call_lock;

/* What the script asked the next callback to do (STEP_CALLBACK_ACTION). */
static void run_callback_action(void)
{
    int action = atomic_exchange(&run.callback_action, ACTION_NONE);
    if (action == ACTION_CLOSE)
    {
        close_socket();
    }
    else if (action == ACTION_DESTROY)
    {
        /* Tests_SRS_ASYNC_SOCKET_LINUX_99_010 */
        (void)destroy_once();
    }
    else if (action != ACTION_NONE && !atomic_load(&run.destroy_claimed) && pthread_mutex_trylock(&call_lock) == 0)
    {
        /* Tests_SRS_ASYNC_SOCKET_LINUX_99_025: a send from a callback is queued, never nested */
        if (action == ACTION_SEND)
        {
            issue_send(&run.callback_sizes);
        }
        else
        {
            issue_receive(&run.callback_sizes);
        }
        (void)pthread_mutex_unlock(&call_lock);
    }
}

/* Lock held. Counts a callback of `record`. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_008 */
static void count_callback(RECORD* record, const char* what)
{
    if (record->state == STATE_REFUSED)
    {
        fuzz_fail("%s #%u was refused by its call, yet called back", what, record->number);
    }
    if (++record->callbacks != 1)
    {
        fuzz_fail("%s #%u called back %u times", what, record->number, record->callbacks);
    }
}

/* ---- callbacks ---- */

static void on_open_complete(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    (void)context;
    run_lock();
    run.open_callbacks++;
    run_unlock();
    if (result != ASYNC_SOCKET_OPEN_OK)
    {
        fuzz_fail("open called back with %d", (int)result);
    }
}

static void on_send_complete(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    RECORD* record = context;
    trace("send #%u called back %d", record->number, (int)result);
    callback_entered("send");
    run_lock();
    count_callback(record, "send");
    if (result != ASYNC_SOCKET_SEND_OK && result != ASYNC_SOCKET_SEND_ERROR && result != ASYNC_SOCKET_SEND_ABANDONED)
    {
        fuzz_fail("send #%u called back with an unknown result %d", record->number, (int)result);
    }
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_003 */
    if (result == ASYNC_SOCKET_SEND_OK && record->moved != record->total)
    {
        fuzz_fail("send #%u called back OK, but the transport took only %llu of its %llu bytes",
            record->number, (unsigned long long)record->moved, (unsigned long long)record->total);
    }
    record->result = (int)result;
    free_buffers(record);
    run_unlock();
    run_callback_action();
}

/* Lock held. The receives before `record` must have been called back or refused. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_005 */
static void check_receive_order(const RECORD* record)
{
    for (uint32_t i = run.next_receive_callback; i < record->number; i++)
    {
        if (run.receives[i]->state != STATE_REFUSED)
        {
            fuzz_fail("receive #%u called back before receive #%u", record->number, i);
        }
    }
    run.next_receive_callback = record->number + 1;
}

/* Lock held. The buffers of a receive hold the stream bytes the hook handed to it, in order. */
static void check_received_bytes(const RECORD* record, uint32_t bytes)
{
    uint64_t offset = record->stream_start;
    uint32_t left = bytes;
    for (uint32_t i = 0; i < record->buffer_count && left > 0; i++)
    {
        uint32_t n = (left < record->lengths[i]) ? left : record->lengths[i];
        for (uint32_t j = 0; j < n; j++, offset++)
        {
            if (record->buffers[i][j] != pattern_byte(offset, false))
            {
                fuzz_fail("receive #%u: byte %u of buffer %u is not stream byte %llu", record->number, j, i, (unsigned long long)offset);
            }
        }
        left -= n;
    }
}

static void on_receive_complete(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    RECORD* record = context;
    trace("receive #%u called back %d, %u bytes", record->number, (int)result, bytes);
    callback_entered("receive");
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_018 */
    if (inside_receive_call)
    {
        fuzz_fail("receive #%u was called back inside async_socket_receive_async", record->number);
    }
    run_lock();
    count_callback(record, "receive");
    check_receive_order(record);
    if (result == ASYNC_SOCKET_RECEIVE_OK)
    {
        if (bytes == 0 || bytes != record->moved)
        {
            fuzz_fail("receive #%u called back OK with %u bytes; the transport gave it %llu",
                record->number, bytes, (unsigned long long)record->moved);
        }
        check_received_bytes(record, bytes);
    }
    else if (result == ASYNC_SOCKET_RECEIVE_ABANDONED && record == run.hook_closed_receive && bytes == 0)
    {
        /* The hook closed the socket while filling this receive: the close abandons it, with the
         * bytes earlier calls put in it (README: the operation in progress is called back
         * ABANDONED by that close). They are the only bytes that may go unreported. */
        run.recv_reported += record->moved;
    }
    else if (result == ASYNC_SOCKET_RECEIVE_ERROR || result == ASYNC_SOCKET_RECEIVE_ABANDONED)
    {
        if (bytes != 0 || record->moved != 0)
        {
            fuzz_fail("receive #%u called back %d with %u bytes, after the transport gave it %llu (bytes lost)",
                record->number, (int)result, bytes, (unsigned long long)record->moved);
        }
    }
    else
    {
        fuzz_fail("receive #%u called back with an unknown result %d", record->number, (int)result);
    }
    run.recv_reported += bytes;
    record->result = (int)result;
    free_buffers(record);
    run_unlock();
    run_callback_action();
}

static void on_notify_complete(void* context, ASYNC_SOCKET_NOTIFY_IO_RESULT result)
{
    RECORD* record = context;
    trace("notify #%u called back %d", record->number, (int)result);
    callback_entered("notify");
    run_lock();
    count_callback(record, "notify");
    ASYNC_SOCKET_NOTIFY_IO_RESULT ready = (record->kind == KIND_NOTIFY_IN) ? ASYNC_SOCKET_NOTIFY_IO_RESULT_IN : ASYNC_SOCKET_NOTIFY_IO_RESULT_OUT;
    if (result != ready && result != ASYNC_SOCKET_NOTIFY_IO_RESULT_ERROR && result != ASYNC_SOCKET_NOTIFY_IO_RESULT_ABANDONED)
    {
        fuzz_fail("notify #%u for %s called back with %d", record->number, (record->kind == KIND_NOTIFY_IN) ? "IN" : "OUT", (int)result);
    }
    record->result = (int)result;
    run_unlock();
    run_callback_action();
}

/* ---- the transport hooks ---- */

/* Lock held. The next scripted result, or the default when the script has none left. */
static SCRIPTED_RESULT take_result(RESULT_QUEUE* queue, bool default_all)
{
    if (queue->head == queue->tail)
    {
        return (SCRIPTED_RESULT){.kind = default_all ? RESULT_ALL : RESULT_EAGAIN, .amount = 0};
    }
    return queue->items[queue->head++];
}

static bool attribute_in(const RECORD* record, uint32_t op, const void* address, CURSOR* found)
{
    uintptr_t p = (uintptr_t)address;
    for (uint32_t i = 0; i < record->buffer_count; i++)
    {
        if (p >= record->bases[i] && p < record->bases[i] + record->lengths[i])
        {
            *found = (CURSOR){.op = op, .buffer = i, .offset = (uint32_t)(p - record->bases[i])};
            return true;
        }
    }
    return false;
}

/* Lock held. Finds the record in `list` whose buffer holds `address`: *found gets its place. A
 * freed buffer's address may have been handed out again, so the live buffers are searched first;
 * a freed one is found only when no live buffer matches (the library used a buffer after its
 * callback). */
static bool attribute(RECORD* const* list, uint32_t count, const void* address, CURSOR* found)
{
    for (int pass = 0; pass < 2; pass++)
    {
        for (uint32_t op = 0; op < count; op++)
        {
            bool live = list[op]->buffers[0] != NULL;
            if ((pass == 0) == live && attribute_in(list[op], op, address, found))
            {
                return true;
            }
        }
    }
    return false;
}

/* Lock held. Checks that a transport call continues the stream where it must: at the cursor, or
 * at the very start of a later operation once the cursor's one has been tried and every one in
 * between was refused. Moves the cursor there and returns the record. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_001 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_002 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_003 */
static RECORD* follow_cursor(const char* hook, RECORD* const* list, uint32_t count, CURSOR* cursor, const void* buf, size_t len)
{
    CURSOR at;
    if (!attribute(list, count, buf, &at))
    {
        fuzz_fail("%s was given %p, which is in no buffer of an operation", hook, buf);
    }
    RECORD* record = list[at.op];
    if (at.op != cursor->op)
    {
        if (at.op < cursor->op || at.buffer != 0 || at.offset != 0)
        {
            fuzz_fail("%s was given operation #%u buffer %u offset %u; expected #%u buffer %u offset %u",
                hook, at.op, at.buffer, at.offset, cursor->op, cursor->buffer, cursor->offset);
        }
        for (uint32_t op = cursor->op; op < at.op; op++)
        {
            bool tried = (op == cursor->op) && list[op]->offers > 0;
            if (!tried && list[op]->state != STATE_REFUSED)
            {
                fuzz_fail("%s skipped operation #%u, which it never tried, for #%u", hook, op, at.op);
            }
        }
        *cursor = at;
    }
    else if (at.buffer != cursor->buffer || at.offset != cursor->offset)
    {
        fuzz_fail("%s was given #%u buffer %u offset %u; expected buffer %u offset %u",
            hook, at.op, at.buffer, at.offset, cursor->buffer, cursor->offset);
    }
    if (record->callbacks != 0)
    {
        fuzz_fail("%s was given a buffer of operation #%u, which was already called back", hook, at.op);
    }
    if (len != record->lengths[at.buffer] - at.offset)
    {
        fuzz_fail("%s was asked for %zu bytes; the rest of the buffer is %u", hook, len, record->lengths[at.buffer] - at.offset);
    }
    record->offers++;
    return record;
}

static void advance_cursor(CURSOR* cursor, const RECORD* record, size_t n)
{
    cursor->offset += (uint32_t)n;
    if (cursor->offset == record->lengths[cursor->buffer])
    {
        cursor->offset = 0;
        if (++cursor->buffer == record->buffer_count)
        {
            cursor->buffer = 0;
            cursor->op++;
        }
    }
}

static int fail_with(int error)
{
    errno = error;
    return -1;
}

static int scripted_error(uint8_t amount)
{
    static const int errors[] = {EIO, EPIPE, ENOTCONN, ENOBUFS};
    return errors[amount % (sizeof(errors) / sizeof(errors[0]))];
}

/* How many of `len` bytes a result moves; 0 for a result that moves none. */
static size_t bytes_for(SCRIPTED_RESULT result, size_t len)
{
    switch (result.kind)
    {
    case RESULT_ALL:
        return len;
    case RESULT_PARTIAL:
        return (len <= 1) ? len : 1 + (result.amount % (len - 1));
    default:
        return 0;
    }
}

static void check_hook_allowed(const char* hook)
{
    (void)atomic_fetch_add(&run.activity, 1);
    if (atomic_load(&run.close_returned))
    {
        fuzz_fail("%s was called after async_socket_close returned", hook);
    }
}

/* Lock held. The send hook's bookkeeping: checks where it was called and the bytes it takes. */
static const RECORD* take_sent_bytes(const void* buf, size_t len, size_t n)
{
    RECORD* record = follow_cursor("on_send", run.sends, run.send_count, &run.send_cursor, buf, len);
    const uint8_t* bytes = buf;
    uint64_t offset = record->stream_start + record->moved;
    for (size_t i = 0; i < n; i++)
    {
        if (bytes[i] != pattern_byte(offset + i, true))
        {
            fuzz_fail("on_send: byte %zu of send #%u was changed", i, record->number);
        }
    }
    record->moved += n;
    advance_cursor(&run.send_cursor, record, n);
    return record;
}

static int on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    (void)context;
    check_hook_allowed("on_send");
    if (async_socket != run.socket)
    {
        fuzz_fail("on_send got handle %p, not its socket %p", (void*)async_socket, (void*)run.socket);
    }
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_002: one sender at a time */
    if (atomic_fetch_add(&run.in_on_send, 1) != 0)
    {
        fuzz_fail("on_send called on two threads at once");
    }
    run_lock();
    SCRIPTED_RESULT result = take_result(&run.send_results, (run.config & CONFIG_SEND_DEFAULT_ALL) != 0);
    size_t n = (result.kind == RESULT_CLOSE) ? len : bytes_for(result, len);
    const RECORD* record = take_sent_bytes(buf, len, n);
    run.last_send_kind = result.kind;
    trace("on_send(%zu bytes of send #%u): result kind %u, %zu bytes", len, record->number, result.kind, n);
    run_unlock();
    (void)atomic_fetch_sub(&run.in_on_send, 1);

    switch (result.kind)
    {
    case RESULT_ALL:
    case RESULT_PARTIAL:
        return (int)n;
    case RESULT_EAGAIN:
        return fail_with(EAGAIN);
    case RESULT_EINTR:
        return fail_with(EINTR);
    case RESULT_ECONNRESET:
        return fail_with(ECONNRESET);
    case RESULT_ERROR:
        return fail_with(scripted_error(result.amount));
    case RESULT_ZERO:
        return 0;
    default:
        /* A TLS layer that got a fatal alert: close from inside the hook, the bytes taken. */
        close_socket();
        return (int)n;
    }
}

/* Lock held. Fills n bytes of a receive with the next stream bytes; returns the receive. */
static const RECORD* give_bytes(void* buf, size_t len, size_t n)
{
    RECORD* record = follow_cursor("on_recv", run.receives, run.receive_count, &run.recv_cursor, buf, len);
    if (record->moved == 0)
    {
        record->stream_start = run.recv_stream;
    }
    uint8_t* bytes = buf;
    for (size_t i = 0; i < n; i++)
    {
        bytes[i] = pattern_byte(run.recv_stream + i, false);
    }
    run.recv_stream += n;
    record->moved += n;
    advance_cursor(&run.recv_cursor, record, n);
    return record;
}

static int on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    (void)context;
    check_hook_allowed("on_recv");
    if (async_socket != run.socket)
    {
        fuzz_fail("on_recv got handle %p, not its socket %p", (void*)async_socket, (void*)run.socket);
    }
    run_lock();
    SCRIPTED_RESULT result = take_result(&run.recv_results, (run.config & CONFIG_RECV_DEFAULT_ALL) != 0);
    /* a close with bit 1 of the amount hands out the whole buffer first */
    size_t n = (result.kind == RESULT_CLOSE && (result.amount & 2u) != 0) ? len : bytes_for(result, len);
    const RECORD* record = give_bytes(buf, len, n);
    run.last_recv_kind = result.kind;
    trace("on_recv(%zu bytes of receive #%u): result kind %u, %zu bytes", len, record->number, result.kind, n);
    if (result.kind == RESULT_CLOSE)
    {
        run.hook_closed_receive = record;
    }
    run_unlock();

    switch (result.kind)
    {
    case RESULT_ALL:
    case RESULT_PARTIAL:
        return (int)n;
    case RESULT_EAGAIN:
        return fail_with(EAGAIN);
    case RESULT_EINTR:
        return fail_with(EINTR);
    case RESULT_ECONNRESET:
        return fail_with(ECONNRESET);
    case RESULT_ERROR:
        return fail_with(scripted_error(result.amount));
    case RESULT_ZERO:
        return 0;
    default:
        /* The hook closes: the receive is called back ABANDONED, with what it was given lost. */
        close_socket();
        if (n != 0)
        {
            return (int)n;
        }
        return fail_with(((result.amount & 1u) != 0) ? ECONNRESET : EAGAIN);
    }
}

/* ---- the barrier: waiting for the worker, bounded ---- */

static struct
{
    COMPLETION_PORT_HANDLE port;
    COMPLETION_PORT_IO io;
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t target;
    uint64_t seen;
} barrier = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void barrier_on_events(COMPLETION_PORT_IO* io, uint32_t events)
{
    (void)io;
    (void)events;
    uint64_t value;
    /* an edge with nothing written (the one registration raises) is not a barrier */
    if (read(barrier.fd, &value, sizeof(value)) != (ssize_t)sizeof(value))
    {
        return;
    }
    (void)pthread_mutex_lock(&barrier.lock);
    barrier.seen = barrier.target;
    (void)pthread_cond_broadcast(&barrier.cond);
    (void)pthread_mutex_unlock(&barrier.lock);
}

/* The barrier is static, but its fd must outlive a delivery still running when it is removed. */
static atomic_int barrier_deliveries;

static void barrier_hold(COMPLETION_PORT_IO* io)
{
    (void)io;
    (void)atomic_fetch_add(&barrier_deliveries, 1);
}

static void barrier_release(COMPLETION_PORT_IO* io)
{
    (void)io;
    (void)atomic_fetch_sub(&barrier_deliveries, 1);
}

/* Passes one event through the port and waits for a worker to take it, BARRIER_TIMEOUT_MS at
 * most. With one worker, everything queued on the port before it has been handled then. */
static bool barrier_pass(void)
{
    (void)pthread_mutex_lock(&barrier.lock);
    uint64_t target = ++barrier.target;
    (void)pthread_mutex_unlock(&barrier.lock);
    uint64_t one = 1;
    if (write(barrier.fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
    {
        fuzz_fail("cannot write the barrier eventfd: errno %d", errno);
    }
    struct timespec deadline;
    (void)clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += BARRIER_TIMEOUT_MS * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;
    (void)pthread_mutex_lock(&barrier.lock);
    int wait_result = 0;
    while (barrier.seen < target && wait_result == 0)
    {
        wait_result = pthread_cond_timedwait(&barrier.cond, &barrier.lock, &deadline);
    }
    bool passed = barrier.seen >= target;
    (void)pthread_mutex_unlock(&barrier.lock);
    return passed;
}

/* Waits until a round of the barrier saw no hook call and no callback, SETTLE_ROUNDS at most. */
static void settle(void)
{
    for (int round = 0; round < SETTLE_ROUNDS; round++)
    {
        unsigned before = atomic_load(&run.activity);
        if (!barrier_pass() || atomic_load(&run.activity) == before)
        {
            return;
        }
    }
}

static const COMPLETION_PORT_IO_OPS barrier_io_ops = { barrier_on_events, barrier_hold, barrier_release };

static void barrier_setup(void)
{
    pthread_condattr_t attributes;
    (void)pthread_condattr_init(&attributes);
    (void)pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    (void)pthread_cond_init(&barrier.cond, &attributes);
    (void)pthread_condattr_destroy(&attributes);
    barrier.port = platform_get_completion_port();
    barrier.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (barrier.port == NULL || barrier.fd < 0)
    {
        fuzz_fail("cannot set up the barrier (port %p, eventfd %d)", (void*)barrier.port, barrier.fd);
    }
    barrier.io.ops = &barrier_io_ops;
    if (completion_port_add(barrier.port, barrier.fd, &barrier.io) != 0)
    {
        fuzz_fail("cannot register the barrier eventfd with the completion port");
    }
}

/* ---- the steps ---- */

/* Lock held by this thread (call_lock, taken by the caller). Sends one more send. */
static void issue_send(const SIZES* sizes)
{
    run_lock();
    RECORD* record = new_record(KIND_SEND);
    if (record == NULL)
    {
        run_unlock();
        return;
    }
    make_buffers(record, sizes);
    record->number = run.send_count;
    record->stream_start = run.send_stream;
    for (uint32_t i = 0, offset = 0; i < record->buffer_count; i++)
    {
        for (uint32_t j = 0; j < record->lengths[i]; j++, offset++)
        {
            record->buffers[i][j] = pattern_byte(run.send_stream + offset, true);
        }
    }
    run.send_stream += record->total;
    run.sends[run.send_count++] = record;
    ASYNC_SOCKET_BUFFER payload[MAX_BUFFERS];
    for (uint32_t i = 0; i < record->buffer_count; i++)
    {
        payload[i] = (ASYNC_SOCKET_BUFFER){.buffer = record->buffers[i], .length = record->lengths[i]};
    }
    run_unlock();

    unsigned lines = log_lines;
    ASYNC_SOCKET_SEND_SYNC_RESULT result = async_socket_send_async(run.socket, payload, record->buffer_count, on_send_complete, record);
    trace("send #%u of %u buffers, %llu bytes: returned %d", record->number, record->buffer_count, (unsigned long long)record->total, (int)result);
    run_lock();
    bool accepted = (result == ASYNC_SOCKET_SEND_SYNC_OK);
    record->state = accepted ? STATE_ACCEPTED : STATE_REFUSED;
    if (!accepted && record->callbacks != 0)
    {
        fuzz_fail("send #%u returned %d and was called back", record->number, (int)result);
    }
    if (!accepted)
    {
        free_buffers(record);
    }
    run_unlock();
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_040 (seed send-hook-close-inline) */
    check_log_lines("async_socket_send_async", lines, !accepted);
}

/* Lock held by this thread (call_lock, taken by the caller). Posts one more receive. */
static void issue_receive(const SIZES* sizes)
{
    run_lock();
    RECORD* record = new_record(KIND_RECEIVE);
    if (record == NULL)
    {
        run_unlock();
        return;
    }
    make_buffers(record, sizes);
    record->number = run.receive_count;
    run.receives[run.receive_count++] = record;
    ASYNC_SOCKET_BUFFER payload[MAX_BUFFERS];
    for (uint32_t i = 0; i < record->buffer_count; i++)
    {
        (void)memset(record->buffers[i], 0xEE, record->lengths[i]);
        payload[i] = (ASYNC_SOCKET_BUFFER){.buffer = record->buffers[i], .length = record->lengths[i]};
    }
    run_unlock();

    unsigned lines = log_lines;
    bool was_inside = inside_receive_call;
    inside_receive_call = true;
    int result = async_socket_receive_async(run.socket, payload, record->buffer_count, on_receive_complete, record);
    trace("receive #%u of %u buffers, %llu bytes: returned %d", record->number, record->buffer_count, (unsigned long long)record->total, result);
    inside_receive_call = was_inside;
    run_lock();
    record->state = (result == 0) ? STATE_ACCEPTED : STATE_REFUSED;
    if (result != 0 && record->callbacks != 0)
    {
        fuzz_fail("receive #%u returned %d and was called back", record->number, result);
    }
    if (result != 0)
    {
        free_buffers(record);
    }
    run_unlock();
    check_log_lines("async_socket_receive_async", lines, result != 0);
}


static bool api_usable(void)
{
    return !atomic_load(&run.destroy_armed);
}

static void step_send(READER* reader, unsigned arg)
{
    SIZES sizes = read_sizes(reader, arg);
    if (api_usable())
    {
        (void)pthread_mutex_lock(&call_lock);
        issue_send(&sizes);
        (void)pthread_mutex_unlock(&call_lock);
    }
}

static void step_receive(READER* reader, unsigned arg)
{
    SIZES sizes = read_sizes(reader, arg);
    if (api_usable())
    {
        (void)pthread_mutex_lock(&call_lock);
        issue_receive(&sizes);
        (void)pthread_mutex_unlock(&call_lock);
    }
}

static void step_notify(unsigned arg)
{
    if (!api_usable())
    {
        return;
    }
    run_lock();
    RECORD* record = new_record(((arg & 1u) != 0) ? KIND_NOTIFY_OUT : KIND_NOTIFY_IN);
    if (record != NULL)
    {
        record->number = run.record_count - 1;
    }
    run_unlock();
    if (record == NULL)
    {
        return;
    }
    ASYNC_SOCKET_NOTIFY_IO_TYPE type = (record->kind == KIND_NOTIFY_IN) ? ASYNC_SOCKET_NOTIFY_IO_TYPE_IN : ASYNC_SOCKET_NOTIFY_IO_TYPE_OUT;
    unsigned lines = log_lines;
    int result = async_socket_notify_io_async(run.socket, type, on_notify_complete, record);
    run_lock();
    record->state = (result == 0) ? STATE_ACCEPTED : STATE_REFUSED;
    if (result != 0 && record->callbacks != 0)
    {
        fuzz_fail("a notify returned %d and was called back", result);
    }
    run_unlock();
    check_log_lines("async_socket_notify_io_async", lines, result != 0);
}

static void push_result(RESULT_QUEUE* queue, READER* reader, unsigned arg)
{
    uint8_t amount = next_byte(reader);
    run_lock();
    if (queue->tail < MAX_RESULTS)
    {
        queue->items[queue->tail++] = (SCRIPTED_RESULT){.kind = (uint8_t)(arg & 7u), .amount = amount};
    }
    run_unlock();
}

/* Changes what the real fd reports. The harness is the transport, so it may use the fd. */
static void step_fd(unsigned arg)
{
    static char scratch[FILL_CHUNK];
    switch (arg % 6u)
    {
    case 0: /* the peer writes: an input edge (with output readiness) */
        if (run.peer >= 0)
        {
            (void)send(run.peer, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        break;
    case 1: /* the fd has no input left */
        while (recv(run.fd_alias, scratch, sizeof(scratch), MSG_DONTWAIT) > 0)
        {
        }
        break;
    case 2: /* the fd has no room left for output */
        for (int i = 0; i < 64 && send(run.fd_alias, scratch, sizeof(scratch), MSG_DONTWAIT | MSG_NOSIGNAL) > 0; i++)
        {
        }
        break;
    case 3: /* the peer reads: room again, an output edge */
        while (run.peer >= 0 && recv(run.peer, scratch, sizeof(scratch), MSG_DONTWAIT) > 0)
        {
        }
        break;
    case 4: /* the peer half-closes: a read hang-up */
        if (run.peer >= 0)
        {
            (void)shutdown(run.peer, SHUT_WR);
        }
        break;
    default: /* the peer goes away: a hang-up */
        if (run.peer >= 0)
        {
            (void)close(run.peer);
            run.peer = -1;
        }
        break;
    }
}

/* arg % 4: the next callback closes, destroys, sends or receives (sizes as for a send). */
static void step_callback_action(READER* reader, unsigned arg)
{
    static const int actions[] = {ACTION_CLOSE, ACTION_DESTROY, ACTION_SEND, ACTION_RECEIVE};
    int action = actions[arg % 4u];
    SIZES sizes = read_sizes(reader, next_byte(reader));
    if (!api_usable())
    {
        return;
    }
    run_lock();
    run.callback_sizes = sizes;
    run_unlock();
    if (action == ACTION_DESTROY)
    {
        /* from now on a worker may free the socket at any moment */
        atomic_store(&run.destroy_armed, true);
    }
    atomic_store(&run.callback_action, action);
}

static void run_step(READER* reader)
{
    uint8_t opcode = next_byte(reader);
    unsigned arg = opcode & 15u;
    trace("step %u, arg %u", (opcode >> 4) % STEP_COUNT, arg);
    switch ((STEP)((opcode >> 4) % STEP_COUNT))
    {
    case STEP_SEND:
        step_send(reader, arg);
        break;
    case STEP_RECEIVE:
        step_receive(reader, arg);
        break;
    case STEP_NOTIFY:
        step_notify(arg);
        break;
    case STEP_CLOSE:
        if (api_usable())
        {
            close_socket();
        }
        break;
    case STEP_SEND_RESULT:
        push_result(&run.send_results, reader, arg);
        break;
    case STEP_RECV_RESULT:
        push_result(&run.recv_results, reader, arg);
        break;
    case STEP_FD:
        step_fd(arg);
        break;
    case STEP_CALLBACK_ACTION:
        step_callback_action(reader, arg);
        break;
    default:
        settle();
        break;
    }
}

/* ---- one input ---- */

static void start_run(uint8_t config)
{
    (void)memset(&run, 0, sizeof(run));
    atomic_store(&loud_refusals, 0);
    (void)pthread_mutex_init(&run.lock, NULL);
    run.config = config;
    run.last_send_kind = NO_CALL;
    run.last_recv_kind = NO_CALL;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    {
        fuzz_fail("socketpair failed: errno %d", errno);
    }
    int small = FILL_CHUNK;
    (void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    run.fd = fds[0];
    /* The harness changes the socket's readiness through a second descriptor of the same socket,
     * so that it never uses an fd number the library may be closing at that moment. */
    run.fd_alias = dup(fds[0]);
    if (run.fd_alias < 0)
    {
        fuzz_fail("dup failed: errno %d", errno);
    }
    run.peer = fds[1];
    run.socket = async_socket_create_with_transport(NULL, run.fd, on_send, NULL, on_recv, NULL);
    if (run.socket == NULL)
    {
        fuzz_fail("async_socket_create_with_transport failed");
    }
    if ((config & CONFIG_NO_OPEN) == 0 && async_socket_open_async(run.socket, on_open_complete, NULL) != 0)
    {
        fuzz_fail("async_socket_open_async failed");
    }
}

/* After the close: everything accepted was called back, and the streams add up. */
static void check_after_close(void)
{
    run_lock();
    for (uint32_t i = 0; i < run.record_count; i++)
    {
        const RECORD* record = &run.records[i];
        /* Tests_SRS_ASYNC_SOCKET_LINUX_99_006 */
        if (record->state == STATE_ACCEPTED && record->callbacks != 1)
        {
            fuzz_fail("operation %u (kind %d, #%u) was accepted and called back %u times by the time close returned",
                i, (int)record->kind, record->number, record->callbacks);
        }
    }
    if (run.recv_reported != run.recv_stream)
    {
        fuzz_fail("on_recv handed out %llu bytes, the receive callbacks reported %llu",
            (unsigned long long)run.recv_stream, (unsigned long long)run.recv_reported);
    }
    uint32_t expected_open = ((run.config & CONFIG_NO_OPEN) != 0) ? 0 : 1;
    if (run.open_callbacks != expected_open)
    {
        fuzz_fail("open called back %u times", run.open_callbacks);
    }
    run_unlock();
}

static bool fd_closed(void)
{
    return fcntl(run.fd, F_GETFD) == -1 && errno == EBADF;
}

static bool torn_down(int64_t allocations)
{
    return atomic_load(&run.closes_running) == 0 && fd_closed() && sys_fault_live_allocations() == allocations;
}

/* Closes and destroys the socket, unless a callback destroyed it; then waits for that teardown,
 * which ends when the worker leaves the callback (bounded: it never waits for anything). */
static void finish_run(int64_t allocations)
{
    if ((run.config & CONFIG_DESTROY_ONLY) == 0 && api_usable())
    {
        close_socket();
        check_after_close();
    }
    if (destroy_once())
    {
        /* Tests_SRS_ASYNC_SOCKET_LINUX_99_022: outside the callbacks, destroy is synchronous */
        if (!torn_down(allocations))
        {
            fuzz_fail("after async_socket_destroy: fd %s, library allocations %lld (%lld before create)",
                fd_closed() ? "closed" : "still open", (long long)sys_fault_live_allocations(), (long long)allocations);
        }
    }
    for (int i = 0; i < 200 && !torn_down(allocations); i++)
    {
        (void)barrier_pass();
    }
    if (!torn_down(allocations))
    {
        fuzz_fail("a destroy from a callback left: fd %s, library allocations %lld (%lld before create), %u closes running",
            fd_closed() ? "closed" : "still open", (long long)sys_fault_live_allocations(), (long long)allocations,
            atomic_load(&run.closes_running));
    }
    check_after_close();
    if (run.peer >= 0)
    {
        (void)close(run.peer);
    }
    (void)close(run.fd_alias);
    for (uint32_t i = 0; i < run.record_count; i++)
    {
        free_buffers(&run.records[i]);
    }
    (void)pthread_mutex_destroy(&run.lock);
}

/* ---- liveness: nothing waits once the transport can make progress ---- */

static uint64_t now_ms(void)
{
    struct timespec now;
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Lock held. The first accepted operation not yet called back that has no reason to wait: with
 * edges_raised, any; before, a send or receive whose direction's last transport call did not say
 * EAGAIN (for a custom transport only EAGAIN makes an operation wait). NULL when there is none. */
static const RECORD* first_stuck(bool edges_raised)
{
    for (uint32_t i = 0; i < run.record_count; i++)
    {
        const RECORD* record = &run.records[i];
        if (record->state != STATE_ACCEPTED || record->callbacks != 0)
        {
            continue;
        }
        uint8_t last = (record->kind == KIND_SEND) ? run.last_send_kind :
            (record->kind == KIND_RECEIVE) ? run.last_recv_kind : RESULT_EAGAIN;
        if (edges_raised || last != RESULT_EAGAIN)
        {
            return record;
        }
    }
    return NULL;
}

/* Settles until no operation is stuck (first_stuck) or the bound passes; returns the stuck one.
 * With two workers the barrier passes on the idle one at once, so the wait is also bounded in
 * time: a worker descheduled on a loaded machine must not pass for a lost wake-up. */
static const RECORD* wait_for_progress(bool edges_raised)
{
    uint64_t start = now_ms();
    const RECORD* stuck = NULL;
    for (int attempt = 0; attempt < LIVENESS_ATTEMPTS || now_ms() - start < LIVENESS_MS; attempt++)
    {
        settle();
        run_lock();
        stuck = first_stuck(edges_raised);
        run_unlock();
        if (stuck == NULL || atomic_load(&run.closing))
        {
            return NULL;
        }
        if (attempt >= LIVENESS_ATTEMPTS)
        {
            (void)usleep(1000);
        }
    }
    return stuck;
}

/* Makes the transport take and give everything from now on. First, with no new event, every
 * send and receive that the transport did not last answer with EAGAIN must go on (only EAGAIN
 * makes an operation wait). Then the fd raises one output edge (the peer reads what the fd sent
 * it) and one input edge (the peer writes), as a socket whose peer catches up would, and every
 * pending operation must complete: one still pending waits for an event that has already come.
 * Skipped when no new edge can be made (the peer closed) or the socket is closing. */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_014 */
/* Tests_SRS_ASYNC_SOCKET_LINUX_99_041 (seed regression-receive-never-tried) */
static void check_liveness(void)
{
    static char scratch[FILL_CHUNK];
    if ((run.config & CONFIG_NO_OPEN) != 0 || run.peer < 0 || atomic_load(&run.closing) || !api_usable())
    {
        return;
    }
    run_lock();
    run.config |= CONFIG_SEND_DEFAULT_ALL | CONFIG_RECV_DEFAULT_ALL;
    run.send_results.head = run.send_results.tail;
    run.recv_results.head = run.recv_results.tail;
    run_unlock();
    const RECORD* stuck = wait_for_progress(false);
    if (stuck != NULL)
    {
        fuzz_fail("operation kind %d #%u waits, although the transport's last call in its direction did not say EAGAIN (send %u, receive %u)",
            (int)stuck->kind, stuck->number, run.last_send_kind, run.last_recv_kind);
    }
    (void)send(run.fd_alias, "y", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (recv(run.peer, scratch, sizeof(scratch), MSG_DONTWAIT) > 0)
    {
    }
    (void)send(run.peer, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    stuck = wait_for_progress(true);
    if (stuck != NULL)
    {
        fuzz_fail("operation kind %d #%u is still pending after the transport took everything and the fd raised input and output edges",
            (int)stuck->kind, stuck->number);
    }
}

/* ---- the entry points ---- */

static bool initialised;

void fuzz_harness_init(void)
{
    if (initialised)
    {
        return;
    }
    /* One worker unless ASYNC_SOCKET_WORKERS says otherwise: then the barrier orders the
     * harness's steps after the worker's reactions, which keeps runs close to deterministic. */
    if (getenv("ASYNC_SOCKET_WORKERS") == NULL)
    {
        (void)platform_linux_set_worker_count(1);
    }
    tracing = getenv("FUZZ_TRACE") != NULL;
    pthread_mutexattr_t attributes;
    (void)pthread_mutexattr_init(&attributes);
    (void)pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    (void)pthread_mutex_init(&call_lock, &attributes);
    (void)pthread_mutexattr_destroy(&attributes);
    async_socket_log_set_sink(count_log_line, NULL);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    if (platform_init() != 0)
    {
        fuzz_fail("platform_init failed");
    }
    barrier_setup();
    initialised = true;
}

void fuzz_harness_deinit(void)
{
    if (!initialised)
    {
        return;
    }
    completion_port_remove(barrier.port, &barrier.io);
    /* no delivery starts after the remove; one that had started ends in microseconds */
    for (int i = 0; i < 1000 && atomic_load(&barrier_deliveries) != 0; i++)
    {
        (void)usleep(1000);
    }
    (void)close(barrier.fd);
    completion_port_dec_ref(barrier.port);
    platform_deinit();
    async_socket_log_set_sink(NULL, NULL);
    initialised = false;
}

int fuzz_harness_run(const uint8_t* data, size_t size)
{
    fuzz_harness_init();
    READER reader = {.data = data, .size = size, .pos = 0};
    int64_t allocations = sys_fault_live_allocations();
    start_run(next_byte(&reader));
    for (int step = 0; step < MAX_STEPS && reader.pos < reader.size; step++)
    {
        run_step(&reader);
        if ((run.config & CONFIG_NO_SETTLE) == 0)
        {
            settle();
        }
    }
    check_liveness();
    finish_run(allocations);
    return 0;
}

/* libFuzzer's entry points (the replay driver calls them too). */
int LLVMFuzzerInitialize(int* argc, char*** argv)
{
    (void)argc;
    (void)argv;
    fuzz_harness_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    return fuzz_harness_run(data, size);
}
