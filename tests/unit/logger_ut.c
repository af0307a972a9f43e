/* Unit tests for the logger.
 *
 * The level is read from the environment once per process, on first use. So the tests about the
 * environment re-run this test binary as a child (argv[1] = the test's own name, which TEST_MAIN
 * runs alone) with the variable set: the child is a fresh process whatever the parent has done,
 * which keeps these tests meaningful also when every test runs in one process. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log_internal.h"
#include "sys_fault.h"
#include "test_main.h"

extern char** environ;

/* Set in the child's environment: the expected level (as a number) and, optionally, a level the
 * child sets before its first use of the logger. */
#define CHILD_EXPECT_ENV "LOGGER_UT_CHILD_EXPECT"
#define CHILD_SET_FIRST_ENV "LOGGER_UT_CHILD_SET_FIRST"
#define CHILD_EXPECT_WARNING_ENV "LOGGER_UT_CHILD_EXPECT_WARNING"

/* ---- capture sink ---- */

#define CAPTURE_MAX 16
typedef struct CAPTURE_TAG
{
    int count;
    ASYNC_SOCKET_LOG_LEVEL level[CAPTURE_MAX];
    char file[CAPTURE_MAX][128];
    int line[CAPTURE_MAX];
    char function[CAPTURE_MAX][128];
    char message[CAPTURE_MAX][2048];
} CAPTURE;

static CAPTURE capture;

static void capture_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    CAPTURE* c = context;
    if (c->count < CAPTURE_MAX)
    {
        c->level[c->count] = level;
        (void)snprintf(c->file[c->count], sizeof(c->file[0]), "%s", file);
        c->line[c->count] = line;
        (void)snprintf(c->function[c->count], sizeof(c->function[0]), "%s", function);
        (void)snprintf(c->message[c->count], sizeof(c->message[0]), "%s", message);
    }
    c->count++;
}

/* Every in-process test starts and ends from the same state, so the order they run in does not matter. */
static void reset_logger(void)
{
    async_socket_log_set_sink(NULL, NULL);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    memset(&capture, 0, sizeof(capture));
}

static void start_capture(ASYNC_SOCKET_LOG_LEVEL level)
{
    reset_logger();
    async_socket_log_set_level(level);
    async_socket_log_set_sink(capture_sink, &capture);
}

/* ---- stderr capture: fd 2 redirected to a temporary file ---- */

typedef struct STDERR_CAPTURE_TAG
{
    int saved_fd;
    int file_fd;
} STDERR_CAPTURE;

static void stderr_capture_start(STDERR_CAPTURE* sc)
{
    char path[] = "/tmp/logger_ut_XXXXXX";
    sc->file_fd = mkstemp(path);
    assert_true(sc->file_fd >= 0);
    (void)unlink(path);
    sc->saved_fd = dup(STDERR_FILENO);
    assert_true(sc->saved_fd >= 0);
    assert_true(dup2(sc->file_fd, STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written (NUL-terminated, at most size - 1 bytes). */
static size_t stderr_capture_stop(STDERR_CAPTURE* sc, char* buffer, size_t size)
{
    assert_true(dup2(sc->saved_fd, STDERR_FILENO) >= 0);
    (void)close(sc->saved_fd);
    ssize_t n = pread(sc->file_fd, buffer, size - 1, 0);
    (void)close(sc->file_fd);
    assert_true(n >= 0);
    buffer[n] = '\0';
    return (size_t)n;
}

/* ---- children for the environment tests ---- */

/* Runs this binary's test `test_name` in a child with ASYNC_SOCKET_LOG_LEVEL_ENV = value (unset when NULL)
 * and returns its exit status (cmocka's count of failed tests). */
static int run_child_ex(const char* test_name, const char* value, ASYNC_SOCKET_LOG_LEVEL expected, int set_first, int expect_warning, int quiet)
{
    char expected_text[16];
    char set_first_text[16];
    (void)snprintf(expected_text, sizeof(expected_text), "%d", (int)expected);
    (void)snprintf(set_first_text, sizeof(set_first_text), "%d", set_first);
    char* saved = getenv(ASYNC_SOCKET_LOG_LEVEL_ENV) ? strdup(getenv(ASYNC_SOCKET_LOG_LEVEL_ENV)) : NULL;

    if (value == NULL)
    {
        (void)unsetenv(ASYNC_SOCKET_LOG_LEVEL_ENV);
    }
    else
    {
        (void)setenv(ASYNC_SOCKET_LOG_LEVEL_ENV, value, 1);
    }
    (void)setenv(CHILD_EXPECT_ENV, expected_text, 1);
    (void)setenv(CHILD_SET_FIRST_ENV, set_first_text, 1);
    (void)setenv(CHILD_EXPECT_WARNING_ENV, expect_warning ? "1" : "0", 1);

    char* argv[] = {(char*)"logger_ut", (char*)test_name, NULL};
    /* A child expected to fail would print a cmocka failure report; keep that out of the log. */
    posix_spawn_file_actions_t actions;
    (void)posix_spawn_file_actions_init(&actions);
    if (quiet)
    {
        (void)posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        (void)posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid;
    int spawn_result = posix_spawn(&pid, "/proc/self/exe", &actions, NULL, argv, environ);
    (void)posix_spawn_file_actions_destroy(&actions);

    (void)unsetenv(CHILD_EXPECT_ENV);
    (void)unsetenv(CHILD_SET_FIRST_ENV);
    (void)unsetenv(CHILD_EXPECT_WARNING_ENV);
    if (saved != NULL)
    {
        (void)setenv(ASYNC_SOCKET_LOG_LEVEL_ENV, saved, 1);
        free(saved);
    }
    else
    {
        (void)unsetenv(ASYNC_SOCKET_LOG_LEVEL_ENV);
    }

    assert_int_equal(spawn_result, 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int run_child(const char* test_name, const char* value, ASYNC_SOCKET_LOG_LEVEL expected, int set_first, int expect_warning)
{
    return run_child_ex(test_name, value, expected, set_first, expect_warning, 0);
}

/* The child's side: a fresh process, the environment set by run_child. */
static void child_check(void)
{
    ASYNC_SOCKET_LOG_LEVEL expected = (ASYNC_SOCKET_LOG_LEVEL)atoi(getenv(CHILD_EXPECT_ENV));
    int set_first = atoi(getenv(CHILD_SET_FIRST_ENV));
    int expect_warning = atoi(getenv(CHILD_EXPECT_WARNING_ENV));

    /* Installing a sink must not read the level, so the capture sees the env warning if any. */
    async_socket_log_set_sink(capture_sink, &capture);
    if (set_first != 0)
    {
        async_socket_log_set_level((ASYNC_SOCKET_LOG_LEVEL)set_first);
    }
    assert_int_equal(async_socket_log_get_level(), expected);
    /* Reading it again does not re-read the environment or warn again. */
    assert_int_equal(async_socket_log_get_level(), expected);
    if (expect_warning)
    {
        assert_int_equal(capture.count, 1);
        assert_int_equal(capture.level[0], ASYNC_SOCKET_LOG_LEVEL_WARNING);
        assert_non_null(strstr(capture.message[0], ASYNC_SOCKET_LOG_LEVEL_ENV));
    }
    else
    {
        assert_int_equal(capture.count, 0);
    }
    async_socket_log_set_sink(NULL, NULL);
}

static int is_child(void)
{
    return getenv(CHILD_EXPECT_ENV) != NULL;
}

/* ---- tests ---- */

static void logger_default_level_is_warning_without_env(void** state)
{
    (void)state;
    if (is_child())
    {
        child_check();
        return;
    }
    assert_int_equal(run_child("logger_default_level_is_warning_without_env", NULL, ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 0), 0);
    /* Set but empty is the same as unset: the default, and no warning. */
    assert_int_equal(run_child("logger_default_level_is_warning_without_env", "", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 0), 0);
}

static void logger_env_level_names_are_case_insensitive(void** state)
{
    (void)state;
    if (is_child())
    {
        child_check();
        return;
    }
    static const char* const name = "logger_env_level_names_are_case_insensitive";
    assert_int_equal(run_child(name, "error", ASYNC_SOCKET_LOG_LEVEL_ERROR, 0, 0), 0);
    assert_int_equal(run_child(name, "WARNING", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 0), 0);
    assert_int_equal(run_child(name, "Warn", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 0), 0);
    assert_int_equal(run_child(name, "iNFo", ASYNC_SOCKET_LOG_LEVEL_INFO, 0, 0), 0);
    assert_int_equal(run_child(name, "VERBOSE", ASYNC_SOCKET_LOG_LEVEL_VERBOSE, 0, 0), 0);
}

static void logger_env_level_digits_map_to_levels(void** state)
{
    (void)state;
    if (is_child())
    {
        child_check();
        return;
    }
    static const char* const name = "logger_env_level_digits_map_to_levels";
    assert_int_equal(run_child(name, "0", ASYNC_SOCKET_LOG_LEVEL_ERROR, 0, 0), 0);
    assert_int_equal(run_child(name, "1", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 0), 0);
    assert_int_equal(run_child(name, "2", ASYNC_SOCKET_LOG_LEVEL_INFO, 0, 0), 0);
    assert_int_equal(run_child(name, "3", ASYNC_SOCKET_LOG_LEVEL_VERBOSE, 0, 0), 0);
}

static void logger_env_invalid_value_keeps_default_and_warns(void** state)
{
    (void)state;
    if (is_child())
    {
        child_check();
        return;
    }
    static const char* const name = "logger_env_invalid_value_keeps_default_and_warns";
    assert_int_equal(run_child(name, "4", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 1), 0);
    assert_int_equal(run_child(name, "-1", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 1), 0);
    assert_int_equal(run_child(name, "1x", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 1), 0);
    assert_int_equal(run_child(name, "loud", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 1), 0);
    assert_int_equal(run_child(name, "errors", ASYNC_SOCKET_LOG_LEVEL_WARNING, 0, 1), 0);
}

static void logger_set_level_before_first_use_wins_over_env(void** state)
{
    (void)state;
    if (is_child())
    {
        child_check();
        return;
    }
    static const char* const name = "logger_set_level_before_first_use_wins_over_env";
    /* An invalid env value is not even read (no warning) once the level was set explicitly. */
    assert_int_equal(run_child(name, "verbose", ASYNC_SOCKET_LOG_LEVEL_ERROR, ASYNC_SOCKET_LOG_LEVEL_ERROR, 0), 0);
    assert_int_equal(run_child(name, "bogus", ASYNC_SOCKET_LOG_LEVEL_INFO, ASYNC_SOCKET_LOG_LEVEL_INFO, 0), 0);
}

/* Guards the child mechanism itself: a child whose check fails must make its parent test fail. */
static void logger_env_child_failure_is_reported(void** state)
{
    (void)state;
    if (is_child())
    {
        child_check();
        return;
    }
    assert_int_not_equal(run_child_ex("logger_env_child_failure_is_reported", "error", ASYNC_SOCKET_LOG_LEVEL_VERBOSE, 0, 0, 1), 0);
}

static void logger_set_level_overrides_each_level(void** state)
{
    (void)state;
    reset_logger();
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    assert_int_equal(async_socket_log_get_level(), ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_INFO);
    assert_int_equal(async_socket_log_get_level(), ASYNC_SOCKET_LOG_LEVEL_INFO);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_ERROR);
    assert_int_equal(async_socket_log_get_level(), ASYNC_SOCKET_LOG_LEVEL_ERROR);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    assert_int_equal(async_socket_log_get_level(), ASYNC_SOCKET_LOG_LEVEL_WARNING);
    reset_logger();
}

static void logger_set_level_invalid_is_ignored_and_logged(void** state)
{
    (void)state;
    start_capture(ASYNC_SOCKET_LOG_LEVEL_INFO);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_INVALID);
    async_socket_log_set_level((ASYNC_SOCKET_LOG_LEVEL)(ASYNC_SOCKET_LOG_LEVEL_VERBOSE + 1));
    async_socket_log_set_level((ASYNC_SOCKET_LOG_LEVEL)-5);
    assert_int_equal(async_socket_log_get_level(), ASYNC_SOCKET_LOG_LEVEL_INFO);
    assert_int_equal(capture.count, 3);
    assert_int_equal(capture.level[0], ASYNC_SOCKET_LOG_LEVEL_ERROR);
    assert_non_null(strstr(capture.message[0], "level"));
    reset_logger();
}

static void logger_filters_lines_below_the_level(void** state)
{
    (void)state;
    start_capture(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    LogVerbose("v");
    LogInfo("i");
    LogWarning("w");
    LogError("e");
    assert_int_equal(capture.count, 2);
    assert_string_equal(capture.message[0], "w");
    assert_string_equal(capture.message[1], "e");

    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_ERROR);
    LogWarning("w2");
    LogError("e2");
    assert_int_equal(capture.count, 3);
    assert_string_equal(capture.message[2], "e2");

    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    LogVerbose("v3");
    LogInfo("i3");
    assert_int_equal(capture.count, 5);
    assert_int_equal(capture.level[3], ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    assert_int_equal(capture.level[4], ASYNC_SOCKET_LOG_LEVEL_INFO);
    reset_logger();
}

static void logger_log_called_directly_also_filters(void** state)
{
    (void)state;
    start_capture(ASYNC_SOCKET_LOG_LEVEL_ERROR);
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_INFO, "f.c", 1, "fn", "dropped");
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_ERROR, "f.c", 2, "fn", "kept");
    assert_int_equal(capture.count, 1);
    assert_string_equal(capture.message[0], "kept");
    reset_logger();
}

static void logger_sink_receives_level_basename_line_function_and_message(void** state)
{
    (void)state;
    start_capture(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    int line = __LINE__ + 1;
    LogError("value=%d name=%s", 42, "abc");
    assert_int_equal(capture.count, 1);
    assert_int_equal(capture.level[0], ASYNC_SOCKET_LOG_LEVEL_ERROR);
    assert_string_equal(capture.file[0], "logger_ut.c");
    assert_int_equal(capture.line[0], line);
    assert_string_equal(capture.function[0], "logger_sink_receives_level_basename_line_function_and_message");
    assert_string_equal(capture.message[0], "value=42 name=abc");

    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_WARNING, "/a/b/c/module.c", 7, "fn", "x");
    assert_string_equal(capture.file[1], "module.c");
    assert_int_equal(capture.line[1], 7);
    reset_logger();
}

static void logger_default_sink_writes_one_formatted_line_to_stderr(void** state)
{
    (void)state;
    reset_logger();
    STDERR_CAPTURE sc;
    char text[4096];
    stderr_capture_start(&sc);
    int line = __LINE__ + 1;
    LogError("hello %d", 7);
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_WARNING, "/x/y/other.c", 12, "other_fn", "second");
    LogInfo("filtered out");
    (void)stderr_capture_stop(&sc, text, sizeof(text));

    char expected[512];
    (void)snprintf(expected, sizeof(expected),
        "ERROR logger_ut.c:%d logger_default_sink_writes_one_formatted_line_to_stderr: hello 7\n"
        "WARNING other.c:12 other_fn: second\n", line);
    assert_string_equal(text, expected);
    reset_logger();
}

static void logger_set_sink_null_restores_the_default_sink(void** state)
{
    (void)state;
    start_capture(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    STDERR_CAPTURE sc;
    char text[1024];
    stderr_capture_start(&sc);
    LogError("to sink");
    async_socket_log_set_sink(NULL, &capture);
    LogError("to stderr");
    (void)stderr_capture_stop(&sc, text, sizeof(text));

    assert_int_equal(capture.count, 1);
    assert_string_equal(capture.message[0], "to sink");
    assert_null(strstr(text, "to sink"));
    assert_non_null(strstr(text, "ERROR logger_ut.c:"));
    assert_non_null(strstr(text, ": to stderr\n"));
    reset_logger();
}

static void logger_truncates_long_messages(void** state)
{
    (void)state;
    static char long_text[5000];
    memset(long_text, 'a', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';

    start_capture(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    LogError("%s", long_text);
    assert_int_equal(capture.count, 1);
    size_t length = strlen(capture.message[0]);
    assert_true(length >= 256 && length < 2000);
    assert_int_equal(strspn(capture.message[0], "a"), length);

    async_socket_log_set_sink(NULL, NULL);
    STDERR_CAPTURE sc;
    static char text[16384];
    stderr_capture_start(&sc);
    LogError("%s", long_text);
    LogError("next");
    size_t n = stderr_capture_stop(&sc, text, sizeof(text));
    /* The long line is cut but still ends the line, so the next one starts on its own line. */
    char* newline = strchr(text, '\n');
    assert_non_null(newline);
    assert_true((size_t)(newline - text) < 4096);
    assert_true(strncmp(newline + 1, "ERROR logger_ut.c:", strlen("ERROR logger_ut.c:")) == 0);
    assert_int_equal(text[n - 1], '\n');
    assert_non_null(strstr(newline + 1, ": next\n"));
    reset_logger();
}

static void errno_clobbering_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)context; (void)level; (void)file; (void)line; (void)function; (void)message;
    errno = EBADF;
}

/* Logging sits between a failing call and the caller's look at errno. */
static void logger_preserves_errno(void** state)
{
    (void)state;
    reset_logger();
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    async_socket_log_set_sink(errno_clobbering_sink, NULL);
    errno = EAGAIN;
    LogError("x");
    assert_int_equal(errno, EAGAIN);

    /* The default sink with stderr closed: its write fails, errno must still survive. */
    async_socket_log_set_sink(NULL, NULL);
    int saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    (void)close(STDERR_FILENO);
    errno = ECONNRESET;
    LogVerbose("y");
    int after = errno;
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    (void)close(saved_stderr);
    assert_int_equal(after, ECONNRESET);
    reset_logger();
}

/* The logger must work while allocations and syscalls are being failed: it is what reports them. */
static void logger_makes_no_allocation_or_seam_call(void** state)
{
    (void)state;
    start_capture(ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    int64_t live_before = sys_fault_live_allocations();
    sys_fault_arm(SYS_FAULT_ALL, 1, ENOMEM);
    LogError("during fault %d", 1);
    LogVerbose("during fault %d", 2);
    uint32_t calls = sys_fault_calls();
    bool fired = sys_fault_fired();
    sys_fault_disarm();
    assert_int_equal(calls, 0);
    assert_false(fired);
    assert_int_equal(capture.count, 2);
    assert_string_equal(capture.message[1], "during fault 2");
    assert_int_equal(sys_fault_live_allocations(), live_before);
    reset_logger();
}

static void logger_level_strings_name_each_level(void** state)
{
    (void)state;
    assert_string_equal(MU_ASYNC_SOCKET_LOG_LEVEL_ToString(ASYNC_SOCKET_LOG_LEVEL_ERROR), "ASYNC_SOCKET_LOG_LEVEL_ERROR");
    assert_string_equal(MU_ASYNC_SOCKET_LOG_LEVEL_ToString(ASYNC_SOCKET_LOG_LEVEL_WARNING), "ASYNC_SOCKET_LOG_LEVEL_WARNING");
    assert_string_equal(MU_ASYNC_SOCKET_LOG_LEVEL_ToString(ASYNC_SOCKET_LOG_LEVEL_INFO), "ASYNC_SOCKET_LOG_LEVEL_INFO");
    assert_string_equal(MU_ASYNC_SOCKET_LOG_LEVEL_ToString(ASYNC_SOCKET_LOG_LEVEL_VERBOSE), "ASYNC_SOCKET_LOG_LEVEL_VERBOSE");
    assert_string_equal(MU_ASYNC_SOCKET_LOG_LEVEL_ToString(ASYNC_SOCKET_LOG_LEVEL_INVALID), "ASYNC_SOCKET_LOG_LEVEL_INVALID");
    assert_string_equal(MU_ASYNC_SOCKET_LOG_LEVEL_ToString((ASYNC_SOCKET_LOG_LEVEL)99), "UNKNOWN");
}

/* ---- concurrency ---- */

#define THREAD_COUNT 8
#define LINES_PER_THREAD 200

static void* log_lines_thread(void* arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES_PER_THREAD; i++)
    {
        LogWarning("t=%d i=%d %s", id, i, "padding-padding-padding-padding-padding-padding-padding-padding");
    }
    return NULL;
}

static int count_intact_lines(const char* text)
{
    int count = 0;
    const char* line = text;
    while (*line != '\0')
    {
        const char* end = strchr(line, '\n');
        assert_non_null(end);
        int id = -1;
        int i = -1;
        char tail[128];
        int matched = sscanf(line, "WARNING logger_ut.c:%*d log_lines_thread: t=%d i=%d %127s", &id, &i, tail);
        assert_int_equal(matched, 3);
        assert_true(id >= 0 && id < THREAD_COUNT && i >= 0 && i < LINES_PER_THREAD);
        assert_string_equal(tail, "padding-padding-padding-padding-padding-padding-padding-padding");
        count++;
        line = end + 1;
    }
    return count;
}

static void logger_lines_from_threads_do_not_interleave(void** state)
{
    (void)state;
    reset_logger();
    static char text[THREAD_COUNT * LINES_PER_THREAD * 160];
    STDERR_CAPTURE sc;
    pthread_t threads[THREAD_COUNT];
    stderr_capture_start(&sc);
    for (int t = 0; t < THREAD_COUNT; t++)
    {
        assert_int_equal(pthread_create(&threads[t], NULL, log_lines_thread, (void*)(intptr_t)t), 0);
    }
    for (int t = 0; t < THREAD_COUNT; t++)
    {
        (void)pthread_join(threads[t], NULL);
    }
    size_t n = stderr_capture_stop(&sc, text, sizeof(text));
    assert_true(n < sizeof(text) - 1);
    assert_int_equal(count_intact_lines(text), THREAD_COUNT * LINES_PER_THREAD);
    reset_logger();
}

typedef struct COUNTING_SINK_TAG
{
    atomic_int calls;
} COUNTING_SINK;

static void counting_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)level; (void)file; (void)line; (void)function; (void)message;
    COUNTING_SINK* sink = context;
    atomic_fetch_add(&sink->calls, 1);
}

static atomic_bool stop_logging;

static void* log_until_stopped_thread(void* arg)
{
    (void)arg;
    while (!atomic_load(&stop_logging))
    {
        LogError("spin");
    }
    return NULL;
}

/* After async_socket_log_set_sink returns, the previous sink is never called again, even by threads that
 * were logging during the swap: that is what lets a caller free the old sink's context. */
static void logger_set_sink_swap_is_safe_while_threads_log(void** state)
{
    (void)state;
    reset_logger();
    COUNTING_SINK sinks[2];
    atomic_init(&sinks[0].calls, 0);
    atomic_init(&sinks[1].calls, 0);
    async_socket_log_set_sink(counting_sink, &sinks[0]);
    atomic_store(&stop_logging, false);
    pthread_t threads[4];
    for (int t = 0; t < 4; t++)
    {
        assert_int_equal(pthread_create(&threads[t], NULL, log_until_stopped_thread, NULL), 0);
    }
    for (int round = 0; round < 200; round++)
    {
        COUNTING_SINK* old_sink = &sinks[round % 2];
        async_socket_log_set_sink(counting_sink, &sinks[(round + 1) % 2]);
        int frozen = atomic_load(&old_sink->calls);
        usleep(100);
        assert_int_equal(atomic_load(&old_sink->calls), frozen);
    }
    atomic_store(&stop_logging, true);
    for (int t = 0; t < 4; t++)
    {
        (void)pthread_join(threads[t], NULL);
    }
    assert_true(atomic_load(&sinks[0].calls) + atomic_load(&sinks[1].calls) > 0);
    reset_logger();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(logger_default_level_is_warning_without_env),
    cmocka_unit_test(logger_env_level_names_are_case_insensitive),
    cmocka_unit_test(logger_env_level_digits_map_to_levels),
    cmocka_unit_test(logger_env_invalid_value_keeps_default_and_warns),
    cmocka_unit_test(logger_set_level_before_first_use_wins_over_env),
    cmocka_unit_test(logger_env_child_failure_is_reported),
    cmocka_unit_test(logger_set_level_overrides_each_level),
    cmocka_unit_test(logger_set_level_invalid_is_ignored_and_logged),
    cmocka_unit_test(logger_filters_lines_below_the_level),
    cmocka_unit_test(logger_log_called_directly_also_filters),
    cmocka_unit_test(logger_sink_receives_level_basename_line_function_and_message),
    cmocka_unit_test(logger_default_sink_writes_one_formatted_line_to_stderr),
    cmocka_unit_test(logger_set_sink_null_restores_the_default_sink),
    cmocka_unit_test(logger_truncates_long_messages),
    cmocka_unit_test(logger_preserves_errno),
    cmocka_unit_test(logger_makes_no_allocation_or_seam_call),
    cmocka_unit_test(logger_level_strings_name_each_level),
    cmocka_unit_test(logger_lines_from_threads_do_not_interleave),
    cmocka_unit_test(logger_set_sink_swap_is_safe_while_threads_log),
};

TEST_MAIN(tests)
