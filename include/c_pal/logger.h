/* The library's logger: one line per event, to stderr by default, or to a sink the user installs.
 *
 * The level comes from the ASYNC_SOCKET_LOG_LEVEL environment variable (error, warning, info,
 * verbose, or 0-3) when the first line is logged, and async_socket_log_set_level() overrides it.
 * The default level is warning.
 *
 * Every name here starts with async_socket_log / ASYNC_SOCKET_LOG: a c-pal program also links
 * Azure's c-logging, whose logger_log, LOGGER_* and LogError & co. must keep their meaning in the
 * same program (docs/api.md, "Coming from c-pal"). */
#ifndef C_PAL_LOGGER_H
#define C_PAL_LOGGER_H

#include "c_pal/macro_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ASYNC_SOCKET_LOG_LEVEL_VALUES \
    ASYNC_SOCKET_LOG_LEVEL_ERROR, \
    ASYNC_SOCKET_LOG_LEVEL_WARNING, \
    ASYNC_SOCKET_LOG_LEVEL_INFO, \
    ASYNC_SOCKET_LOG_LEVEL_VERBOSE

MU_DEFINE_ENUM(ASYNC_SOCKET_LOG_LEVEL, ASYNC_SOCKET_LOG_LEVEL_VALUES);

/* The name of the environment variable read for the initial level. */
#define ASYNC_SOCKET_LOG_LEVEL_ENV "ASYNC_SOCKET_LOG_LEVEL"

/* A sink receives each line already formatted, without a trailing newline. It may be called from
 * any thread, concurrently; it must not call back into the library. */
typedef void (*ASYNC_SOCKET_LOG_SINK)(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message);

MOCKABLE_FUNCTION(, void, async_socket_log_set_level, ASYNC_SOCKET_LOG_LEVEL, level);
MOCKABLE_FUNCTION(, ASYNC_SOCKET_LOG_LEVEL, async_socket_log_get_level);
/* NULL restores the default sink (stderr). */
MOCKABLE_FUNCTION(, void, async_socket_log_set_sink, ASYNC_SOCKET_LOG_SINK, sink, void*, context);

C_PAL_API void async_socket_log(ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* format, ...)
    __attribute__((format(printf, 5, 6)));

/* Logs one line through the library's logger when `level` is enabled, with the caller's file,
 * line and function. (The library's own sources spell it LogError & co., from an internal header;
 * this header does not define those names, which belong to c-logging.) */
#define ASYNC_SOCKET_LOG(level, ...) \
    do { if ((int)(level) <= (int)async_socket_log_get_level()) async_socket_log((level), __FILE__, __LINE__, __func__, __VA_ARGS__); } while (0)

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_LOGGER_H */
