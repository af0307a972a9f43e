/* The logging macros the library's own sources (and its tests) are written with.
 *
 * LogError, LogWarning, LogInfo and LogVerbose are c-logging's names: a public header that defined
 * them would clash with c-logging's in a program that includes both. So the public header
 * (c_pal/logger.h) only has ASYNC_SOCKET_LOG, and this internal header maps the short names onto
 * it. Never install this header or include it from a public one. */
#ifndef ASYNC_SOCKET_LOG_INTERNAL_H
#define ASYNC_SOCKET_LOG_INTERNAL_H

#include "c_pal/logger.h"

/* Codes_SRS_ASYNC_SOCKET_LINUX_99_101 */
#define LogError(...) ASYNC_SOCKET_LOG(ASYNC_SOCKET_LOG_LEVEL_ERROR, __VA_ARGS__)
#define LogWarning(...) ASYNC_SOCKET_LOG(ASYNC_SOCKET_LOG_LEVEL_WARNING, __VA_ARGS__)
#define LogInfo(...) ASYNC_SOCKET_LOG(ASYNC_SOCKET_LOG_LEVEL_INFO, __VA_ARGS__)
#define LogVerbose(...) ASYNC_SOCKET_LOG(ASYNC_SOCKET_LOG_LEVEL_VERBOSE, __VA_ARGS__)

#endif /* ASYNC_SOCKET_LOG_INTERNAL_H */
