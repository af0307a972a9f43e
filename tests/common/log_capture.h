/* Captures the library's log lines for a test: the number of ERROR and WARNING lines, the last
 * line of each, and every ERROR line in one string for failure messages. The sink takes a lock, so
 * lines logged on worker threads are counted too. */
#ifndef LOG_CAPTURE_H
#define LOG_CAPTURE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_internal.h"

typedef struct LOG_CAPTURE_TAG
{
    pthread_mutex_t lock;
    int errors;
    int warnings;
    char last_error[1024];
    char last_warning[1024];
    char all_errors[2048]; /* every ERROR line, separated by " | " (cut when full) */
} LOG_CAPTURE;

#define LOG_CAPTURE_INITIALIZER {.lock = PTHREAD_MUTEX_INITIALIZER}

/* The capture log_capture_start installs; tests read its fields after log_capture_stop. */
extern LOG_CAPTURE log_capture;

/* A ASYNC_SOCKET_LOG_SINK that records into the LOG_CAPTURE given as context. Other sinks may call it. */
void log_capture_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message);

/* Clears log_capture, sets the logger level and installs log_capture_sink on log_capture. */
void log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL level);

/* log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_VERBOSE). */
void log_capture_start(void);

/* Restores the default sink and the WARNING level; returns the ERROR lines since the start and
 * writes the WARNING lines to *warnings when warnings is not NULL. */
int log_capture_stop_counting(int* warnings);

/* log_capture_stop_counting(NULL). */
int log_capture_stop(void);

/* Fails with the captured lines when the count of ERROR lines is not `expected`. */
#define ASSERT_ERROR_LINES(errors, expected)                                                           \
    do                                                                                                 \
    {                                                                                                  \
        if ((errors) != (expected))                                                                    \
        {                                                                                              \
            fail_msg("%d ERROR lines, expected %d: %s", (errors), (expected), log_capture.all_errors); \
        }                                                                                              \
    } while (0)

#endif /* LOG_CAPTURE_H */
