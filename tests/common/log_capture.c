/* See log_capture.h. */
#include "log_capture.h"

#include <stdio.h>
#include <string.h>

LOG_CAPTURE log_capture = LOG_CAPTURE_INITIALIZER;

void log_capture_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)file; (void)line; (void)function;
    LOG_CAPTURE* c = context;
    (void)pthread_mutex_lock(&c->lock);
    if (level == ASYNC_SOCKET_LOG_LEVEL_ERROR)
    {
        c->errors++;
        (void)snprintf(c->last_error, sizeof(c->last_error), "%s", message);
        size_t used = strlen(c->all_errors);
        (void)snprintf(c->all_errors + used, sizeof(c->all_errors) - used, "%s%s", (used == 0) ? "" : " | ", message);
    }
    else if (level == ASYNC_SOCKET_LOG_LEVEL_WARNING)
    {
        c->warnings++;
        (void)snprintf(c->last_warning, sizeof(c->last_warning), "%s", message);
    }
    (void)pthread_mutex_unlock(&c->lock);
}

void log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL level)
{
    (void)pthread_mutex_lock(&log_capture.lock);
    log_capture.errors = 0;
    log_capture.warnings = 0;
    log_capture.last_error[0] = '\0';
    log_capture.last_warning[0] = '\0';
    log_capture.all_errors[0] = '\0';
    (void)pthread_mutex_unlock(&log_capture.lock);
    async_socket_log_set_level(level);
    async_socket_log_set_sink(log_capture_sink, &log_capture);
}

void log_capture_start(void)
{
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
}

int log_capture_stop_counting(int* warnings)
{
    async_socket_log_set_sink(NULL, NULL);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    (void)pthread_mutex_lock(&log_capture.lock);
    int errors = log_capture.errors;
    if (warnings != NULL)
    {
        *warnings = log_capture.warnings;
    }
    (void)pthread_mutex_unlock(&log_capture.lock);
    return errors;
}

int log_capture_stop(void)
{
    return log_capture_stop_counting(NULL);
}
