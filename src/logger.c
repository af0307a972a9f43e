/* The library's logger.
 *
 * The level is an atomic int so that the check in every Log* macro costs one load: the macros sit
 * on the send and receive paths. The environment is consulted lazily (on the first level check)
 * rather than in a constructor, so a program that calls async_socket_log_set_level() first never depends on
 * its environment, and a test can setenv() before the first log line.
 *
 * Nothing here allocates: logging is used on the paths that report allocation failures, and the
 * tests count live allocations through the sys seam. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* for the writer-preferring rwlock initializer */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log_internal.h"

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_102 */
/* Codes_SRS_ASYNC_SOCKET_LINUX_99_103 (built with ASYNC_SOCKET_NO_MACRO_UTILS_PROBE: macro_compat.h's
 * definitions, which carry C_PAL_API, whatever is on the include path) */
MU_DEFINE_ENUM_STRINGS(ASYNC_SOCKET_LOG_LEVEL, ASYNC_SOCKET_LOG_LEVEL_VALUES)

#define LOGGER_MESSAGE_SIZE 1024
/* Room for the prefix (level, file, line, function) around a full message. */
#define LOGGER_LINE_SIZE (LOGGER_MESSAGE_SIZE + 512)
#define ASYNC_SOCKET_LOG_LEVEL_DEFAULT ASYNC_SOCKET_LOG_LEVEL_WARNING
/* Not a level: means "the environment has not been read yet". */
#define ASYNC_SOCKET_LOG_LEVEL_UNRESOLVED (-1)

static atomic_int logger_level = ASYNC_SOCKET_LOG_LEVEL_UNRESOLVED;

/* A read-write lock rather than a mutex: sinks may run concurrently (the header allows it), and
 * async_socket_log_set_sink() taking the write lock guarantees that once it returns the old sink is not
 * running any more, so its context can be released. Writer-preferring, because with glibc's
 * default a steady stream of log lines from several threads starves async_socket_log_set_sink(). */
static pthread_rwlock_t logger_sink_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static ASYNC_SOCKET_LOG_SINK logger_sink = NULL;
static void* logger_sink_context = NULL;

static int is_valid_level(int level)
{
    return level >= (int)ASYNC_SOCKET_LOG_LEVEL_ERROR && level <= (int)ASYNC_SOCKET_LOG_LEVEL_VERBOSE;
}

/* Short names for the line prefix; MU_ASYNC_SOCKET_LOG_LEVEL_ToString gives the long enum names. */
static const char* level_name(ASYNC_SOCKET_LOG_LEVEL level)
{
    switch (level)
    {
    case ASYNC_SOCKET_LOG_LEVEL_ERROR: return "ERROR";
    case ASYNC_SOCKET_LOG_LEVEL_WARNING: return "WARNING";
    case ASYNC_SOCKET_LOG_LEVEL_INFO: return "INFO";
    case ASYNC_SOCKET_LOG_LEVEL_VERBOSE: return "VERBOSE";
    default: return "UNKNOWN";
    }
}

/* Accepts only a whole string of digits, so "1x" or "-1" are rejected rather than half-read. */
static int parse_level_digits(const char* text)
{
    if (text[0] == '\0' || text[strspn(text, "0123456789")] != '\0')
    {
        return ASYNC_SOCKET_LOG_LEVEL_UNRESOLVED;
    }
    unsigned long value = strtoul(text, NULL, 10);
    return (value <= 3) ? (int)ASYNC_SOCKET_LOG_LEVEL_ERROR + (int)value : ASYNC_SOCKET_LOG_LEVEL_UNRESOLVED;
}

static int parse_level(const char* text)
{
    if (strcasecmp(text, "error") == 0) return ASYNC_SOCKET_LOG_LEVEL_ERROR;
    if (strcasecmp(text, "warning") == 0 || strcasecmp(text, "warn") == 0) return ASYNC_SOCKET_LOG_LEVEL_WARNING;
    if (strcasecmp(text, "info") == 0) return ASYNC_SOCKET_LOG_LEVEL_INFO;
    if (strcasecmp(text, "verbose") == 0) return ASYNC_SOCKET_LOG_LEVEL_VERBOSE;
    return parse_level_digits(text);
}

/* Cold path of async_socket_log_get_level. A compare-and-swap rather than a store, so that a
 * async_socket_log_set_level() racing with the first log line wins over the environment. */
static ASYNC_SOCKET_LOG_LEVEL resolve_level(void)
{
    const char* text = getenv(ASYNC_SOCKET_LOG_LEVEL_ENV);
    /* Set but empty counts as unset, as shells make it easy to export an empty variable. */
    text = (text != NULL && text[0] == '\0') ? NULL : text;
    int parsed = (text == NULL) ? ASYNC_SOCKET_LOG_LEVEL_UNRESOLVED : parse_level(text);
    int level = is_valid_level(parsed) ? parsed : (int)ASYNC_SOCKET_LOG_LEVEL_DEFAULT;
    int expected = ASYNC_SOCKET_LOG_LEVEL_UNRESOLVED;
    bool won = atomic_compare_exchange_strong(&logger_level, &expected, level);
    if (won && text != NULL && !is_valid_level(parsed))
    {
        /* Only the thread that stored the level reports the bad value, so it is reported once. */
        LogWarning("%s=\"%s\" is not a log level; using %s", ASYNC_SOCKET_LOG_LEVEL_ENV, text, level_name(ASYNC_SOCKET_LOG_LEVEL_DEFAULT));
    }
    return (ASYNC_SOCKET_LOG_LEVEL)(won ? level : expected);
}

ASYNC_SOCKET_LOG_LEVEL async_socket_log_get_level(void)
{
    int level = atomic_load_explicit(&logger_level, memory_order_relaxed);
    return (level == ASYNC_SOCKET_LOG_LEVEL_UNRESOLVED) ? resolve_level() : (ASYNC_SOCKET_LOG_LEVEL)level;
}

void async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL level)
{
    if (!is_valid_level((int)level))
    {
        LogError("invalid level %d", (int)level);
        return;
    }
    atomic_store_explicit(&logger_level, (int)level, memory_order_relaxed);
}

void async_socket_log_set_sink(ASYNC_SOCKET_LOG_SINK sink, void* context)
{
    (void)pthread_rwlock_wrlock(&logger_sink_lock);
    logger_sink = sink;
    logger_sink_context = (sink == NULL) ? NULL : context;
    (void)pthread_rwlock_unlock(&logger_sink_lock);
}

static const char* file_basename(const char* file)
{
    const char* slash = strrchr(file, '/');
    return (slash == NULL) ? file : slash + 1;
}

/* One write() per line, so lines from concurrent threads do not interleave (stdio would split a
 * long line across several writes). The loop only matters for a partial write to a pipe. */
static void write_all_stderr(const char* text, size_t length)
{
    while (length > 0)
    {
        ssize_t written = write(STDERR_FILENO, text, length);
        if (written < 0 && errno == EINTR)
        {
            continue;
        }
        if (written <= 0)
        {
            return;
        }
        text += written;
        length -= (size_t)written;
    }
}

static void default_sink(ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    char text[LOGGER_LINE_SIZE];
    int length = snprintf(text, sizeof(text), "%s %s:%d %s: %s\n", level_name(level), file, line, function, message);
    if (length < 0)
    {
        return;
    }
    if ((size_t)length >= sizeof(text))
    {
        /* Truncated: keep the line terminated so the next one starts on its own line. */
        length = (int)sizeof(text) - 1;
        text[length - 1] = '\n';
    }
    write_all_stderr(text, (size_t)length);
}

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_100 */
/* Codes_SRS_ASYNC_SOCKET_LINUX_99_101 */
void async_socket_log(ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* format, ...)
{
    /* Callers may call async_socket_log directly, bypassing the check in the macros. */
    if ((int)level > (int)async_socket_log_get_level() || format == NULL)
    {
        return;
    }
    /* Logging happens between a failing call and the caller reading errno; it must not change it. */
    int saved_errno = errno;
    char message[LOGGER_MESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    (void)vsnprintf(message, sizeof(message), format, args);
    va_end(args);

    file = file_basename((file == NULL) ? "?" : file);
    function = (function == NULL) ? "?" : function;

    (void)pthread_rwlock_rdlock(&logger_sink_lock);
    if (logger_sink != NULL)
    {
        logger_sink(logger_sink_context, level, file, line, function, message);
    }
    else
    {
        default_sink(level, file, line, function, message);
    }
    (void)pthread_rwlock_unlock(&logger_sink_lock);
    errno = saved_errno;
}
