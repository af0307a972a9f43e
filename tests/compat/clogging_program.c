/* A c-pal program as the library meets it in the field: it links Azure's c-logging, whose
 * logger_log has another signature than anything of this library's, and it sees c-logging's
 * LogError & co. and LOGGER_* macros beside the library's headers.
 *
 * The c-logging names are declared and defined here in the program's own translation unit (CI has
 * no network, so not the real c-logging): a public header of the library that defined one of the
 * macros fails this compile under -Werror ("redefined"), an exported logger_log / logger_init
 * fails the static link ("multiple definition") and, linked with the shared library, the
 * library's first log line would call the program's logger_log (the program is linked with
 * -rdynamic, as c-logging's symbols are when it is a shared library). The program checks that the
 * library logs through its own logger, into the sink installed here, and never calls the
 * program's logger_log. Prints "clogging program: ok" and exits 0 on success. */
#include <stdarg.h>
#include <stdio.h>

#include "c_pal/async_socket.h"
#include "c_pal/execution_engine.h"
#include "c_pal/logger.h"
#include "c_pal/platform.h"
#include "c_pal/socket_transport.h"

/* ---- c-logging's names, as c_logging/logger.h and logger_v1_v2.h give them ---- */
typedef enum LOG_LEVEL_TAG
{
    LOG_LEVEL_CRITICAL,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_INFO,
    LOG_LEVEL_VERBOSE
} LOG_LEVEL;
typedef struct LOG_CONTEXT_TAG* LOG_CONTEXT_HANDLE;

int logger_init(void);
void logger_deinit(void);
void logger_log(LOG_LEVEL log_level, LOG_CONTEXT_HANDLE log_context, const char* file, const char* func, int line_no, const char* format, ...);

#define LOGGER_LOG(log_level, log_context, ...) logger_log(log_level, log_context, __FILE__, __func__, __LINE__, __VA_ARGS__)
#define LogCritical(...) LOGGER_LOG(LOG_LEVEL_CRITICAL, NULL, __VA_ARGS__)
#define LogError(...) LOGGER_LOG(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
#define LogWarning(...) LOGGER_LOG(LOG_LEVEL_WARNING, NULL, __VA_ARGS__)
#define LogInfo(...) LOGGER_LOG(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define LogVerbose(...) LOGGER_LOG(LOG_LEVEL_VERBOSE, NULL, __VA_ARGS__)

static int program_logger_calls;
static LOG_LEVEL program_last_level = LOG_LEVEL_VERBOSE;

int logger_init(void)
{
    return 0;
}

void logger_deinit(void)
{
}

void logger_log(LOG_LEVEL log_level, LOG_CONTEXT_HANDLE log_context, const char* file, const char* func, int line_no, const char* format, ...)
{
    (void)log_context; (void)file; (void)func; (void)line_no; (void)format;
    program_logger_calls++;
    program_last_level = log_level;
}

/* ---- the library's logger, through its own names ---- */
typedef struct CAPTURE_TAG
{
    int errors;
    char last[512];
} CAPTURE;

static void capture_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)file; (void)line; (void)function;
    CAPTURE* capture = context;
    if (level == ASYNC_SOCKET_LOG_LEVEL_ERROR)
    {
        capture->errors++;
        (void)snprintf(capture->last, sizeof(capture->last), "%s", message);
    }
}

static int fail(const char* what)
{
    (void)fprintf(stderr, "clogging program: FAILED: %s (program logger_log calls: %d)\n", what, program_logger_calls);
    return 1;
}

int main(void)
{
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_101 */
    CAPTURE capture = {0};
    if (logger_init() != 0)
    {
        return fail("logger_init");
    }
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_ERROR);
    async_socket_log_set_sink(capture_sink, &capture);

    /* a call that fails logs one line, in the library's logger */
    if (socket_transport_connect(NULL, "127.0.0.1", 1, 0) == 0)
    {
        return fail("socket_transport_connect(NULL, ...) succeeded");
    }
    if (async_socket_create(NULL, INVALID_SOCKET) != NULL)
    {
        return fail("async_socket_create(NULL, INVALID_SOCKET) succeeded");
    }
    if (capture.errors != 2)
    {
        (void)fprintf(stderr, "clogging program: the library logged %d ERROR lines, expected 2\n", capture.errors);
        return 1;
    }
    if (program_logger_calls != 0)
    {
        return fail("the library called the program's (c-logging's) logger_log");
    }
    /* and the program's own LogError is c-logging's */
    LogError("the program's own line %d", 1);
    if (program_logger_calls != 1 || program_last_level != LOG_LEVEL_ERROR)
    {
        return fail("the program's LogError did not reach its logger_log");
    }
    async_socket_log_set_sink(NULL, NULL);
    logger_deinit();
    (void)printf("clogging program: ok (library ERROR lines: %d, program logger_log calls: %d)\n", capture.errors, program_logger_calls);
    return 0;
}
