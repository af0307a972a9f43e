/* The library's logger: one line per event, to stderr by default, or to a sink the user installs.
 *
 * The level comes from the ASYNC_SOCKET_LOG_LEVEL environment variable (error, warning, info,
 * verbose, or 0-3) when the first line is logged, and logger_set_level() overrides it. The default
 * level is warning. */
#ifndef C_PAL_LOGGER_H
#define C_PAL_LOGGER_H

#include "c_pal/macro_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LOGGER_LEVEL_VALUES \
    LOGGER_LEVEL_ERROR, \
    LOGGER_LEVEL_WARNING, \
    LOGGER_LEVEL_INFO, \
    LOGGER_LEVEL_VERBOSE

MU_DEFINE_ENUM(LOGGER_LEVEL, LOGGER_LEVEL_VALUES);

#define LOGGER_LEVEL_ENV "ASYNC_SOCKET_LOG_LEVEL"

/* A sink receives each line already formatted, without a trailing newline. It may be called from
 * any thread, concurrently; it must not call back into the library. */
typedef void (*LOGGER_SINK)(void* context, LOGGER_LEVEL level, const char* file, int line, const char* function, const char* message);

MOCKABLE_FUNCTION(, void, logger_set_level, LOGGER_LEVEL, level);
MOCKABLE_FUNCTION(, LOGGER_LEVEL, logger_get_level);
/* NULL restores the default sink (stderr). */
MOCKABLE_FUNCTION(, void, logger_set_sink, LOGGER_SINK, sink, void*, context);

C_PAL_API void logger_log(LOGGER_LEVEL level, const char* file, int line, const char* function, const char* format, ...)
    __attribute__((format(printf, 5, 6)));

#define LOGGER_LOG_(level, ...) \
    do { if ((int)(level) <= (int)logger_get_level()) logger_log((level), __FILE__, __LINE__, __func__, __VA_ARGS__); } while (0)

#define LogError(...) LOGGER_LOG_(LOGGER_LEVEL_ERROR, __VA_ARGS__)
#define LogWarning(...) LOGGER_LOG_(LOGGER_LEVEL_WARNING, __VA_ARGS__)
#define LogInfo(...) LOGGER_LOG_(LOGGER_LEVEL_INFO, __VA_ARGS__)
#define LogVerbose(...) LOGGER_LOG_(LOGGER_LEVEL_VERBOSE, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_LOGGER_H */
