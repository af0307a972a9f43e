/* Black-box tests of the platform's and the logger's documented promises (docs/api.md, "platform"
 * and "logger"). Each ctest case is its own process, so process-wide state starts fresh. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "blackbox_util.h"

#include <sys/wait.h>

#include "c_pal/completion_port_linux.h"
#include "c_pal/platform_linux.h"

#include "../common/test_main.h"

static void sink_only(void)
{
    (void)alarm(60);
    async_socket_log_set_sink(bb_log_sink, NULL);
    bb_log_reset();
}

/* "Each successful call needs one platform_deinit"; the last one releases the port; before init,
 * platform_get_completion_port is NULL with one error line; a deinit without init logs one error. */
static void platform_init_is_reference_counted(void** state)
{
    (void)state;
    sink_only();
    assert_null(platform_get_completion_port());
    BB_ASSERT_LOG(1, 0);
    platform_deinit();
    BB_ASSERT_LOG(1, 0);
    assert_int_equal(platform_init(), 0);
    assert_int_equal(platform_init(), 0);
    assert_int_equal(platform_init(), 0);
    COMPLETION_PORT_HANDLE a = platform_get_completion_port();
    assert_non_null(a);
    platform_deinit();
    platform_deinit();
    COMPLETION_PORT_HANDLE b = platform_get_completion_port();
    assert_true(a == b);
    completion_port_dec_ref(a);
    completion_port_dec_ref(b);
    platform_deinit();
    BB_ASSERT_LOG(0, 0);
    assert_null(platform_get_completion_port());
    BB_ASSERT_LOG(1, 0);
    async_socket_log_set_sink(NULL, NULL);
}

/* platform_linux_set_worker_count: takes precedence over ASYNC_SOCKET_WORKERS; above 64 is an
 * error (one line); it does not change a port that exists; 0 restores the default rule. */
static void worker_count_settings_are_applied_in_order(void** state)
{
    (void)state;
    sink_only();
    assert_int_equal(setenv(PLATFORM_WORKER_COUNT_ENV, "2", 1), 0);
    assert_int_not_equal(platform_linux_set_worker_count(65), 0);
    BB_ASSERT_LOG(1, 0);
    assert_int_equal(platform_linux_set_worker_count(3), 0);
    assert_int_equal(platform_init(), 0);
    COMPLETION_PORT_HANDLE p = platform_get_completion_port();
    assert_int_equal(completion_port_get_worker_count(p), 3);
    completion_port_dec_ref(p);
    assert_int_equal(platform_linux_set_worker_count(5), 0); /* port exists: unchanged */
    p = platform_get_completion_port();
    assert_int_equal(completion_port_get_worker_count(p), 3);
    completion_port_dec_ref(p);
    platform_deinit();

    assert_int_equal(platform_linux_set_worker_count(0), 0); /* the environment's 2 now */
    assert_int_equal(platform_init(), 0);
    p = platform_get_completion_port();
    assert_int_equal(completion_port_get_worker_count(p), 2);
    completion_port_dec_ref(p);
    platform_deinit();

    assert_int_equal(setenv(PLATFORM_WORKER_COUNT_ENV, "4x", 1), 0); /* one warning, the default */
    assert_int_equal(platform_init(), 0);
    p = platform_get_completion_port();
    assert_int_equal(completion_port_get_worker_count(p), completion_port_default_worker_count());
    completion_port_dec_ref(p);
    platform_deinit();
    BB_ASSERT_LOG(0, 1);

    assert_int_equal(setenv(PLATFORM_WORKER_COUNT_ENV, "", 1), 0); /* empty counts as unset */
    assert_int_equal(platform_init(), 0);
    p = platform_get_completion_port();
    assert_int_equal(completion_port_get_worker_count(p), completion_port_default_worker_count());
    completion_port_dec_ref(p);
    platform_deinit();
    BB_ASSERT_LOG(0, 0);
    async_socket_log_set_sink(NULL, NULL);
}

/* "sockets that are still alive keep it running until they are destroyed": a socket works after
 * the last platform_deinit. */
static void socket_keeps_the_port_alive_after_platform_deinit(void** state)
{
    (void)state;
    sink_only();
    assert_int_equal(platform_init(), 0);
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = bb_open_socket(fd);
    platform_deinit();
    unsigned char got[4];
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP r;
    bb_op_init(&r, &done);
    ASYNC_SOCKET_BUFFER b = { got, sizeof(got) };
    assert_int_equal(async_socket_receive_async(s, &b, 1, bb_on_receive, &r), 0);
    assert_int_equal(bb_write_all(peer, "ping", 4), 0);
    assert_int_equal(bb_counter_wait(&done, 1, BB_WAIT_MS), 1);
    assert_int_equal(r.result, ASYNC_SOCKET_RECEIVE_OK);
    async_socket_destroy(s);
    (void)close(peer);
    bb_counter_deinit(&done);
    BB_ASSERT_LOG(0, 0);
    async_socket_log_set_sink(NULL, NULL);
}

/* Runs body in a child process with stderr sent to a pipe; returns what the child wrote to stderr
 * (up to cap bytes) and asserts the child exited 0. */
static size_t run_child_capturing_stderr(void (*body)(void), char* out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
    {
        (void)dup2(p[1], 2);
        (void)close(p[0]);
        (void)close(p[1]);
        body();
        _exit(0);
    }
    (void)close(p[1]);
    size_t n = 0;
    int64_t end = bb_now_ms() + BB_WAIT_MS;
    while (n < cap - 1 && bb_now_ms() < end)
    {
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        if (poll(&pf, 1, 100) <= 0)
        {
            continue;
        }
        ssize_t k = read(p[0], out + n, cap - 1 - n);
        if (k <= 0)
        {
            break;
        }
        n += (size_t)k;
    }
    out[n] = '\0';
    (void)close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return n;
}

static void child_logs_with_a_sink(void)
{
    async_socket_log_set_sink(bb_log_sink, NULL);
    platform_deinit();                     /* one error */
    (void)platform_get_completion_port(); /* one error */
    if (bb_log_count(ASYNC_SOCKET_LOG_LEVEL_ERROR) != 2)
    {
        _exit(3);
    }
}

static void child_logs_level_error_only(void)
{
    (void)setenv(ASYNC_SOCKET_LOG_LEVEL_ENV, "ERROR", 1);
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_WARNING, "dir/w.c", 1, "f", "dropped warning");
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_ERROR, "dir/e.c", 2, "g", "kept %s", "error");
    if (async_socket_log_get_level() != ASYNC_SOCKET_LOG_LEVEL_ERROR)
    {
        _exit(4);
    }
}

static void child_logs_invalid_level(void)
{
    (void)setenv(ASYNC_SOCKET_LOG_LEVEL_ENV, "loud", 1);
    if (async_socket_log_get_level() != ASYNC_SOCKET_LOG_LEVEL_WARNING)
    {
        _exit(5);
    }
}

/* "sends every line to sink ... instead of stderr": nothing reaches stderr with a sink. */
static void nothing_reaches_stderr_with_a_sink(void** state)
{
    (void)state;
    (void)alarm(60);
    char out[4096];
    assert_int_equal(run_child_capturing_stderr(child_logs_with_a_sink, out, sizeof(out)), 0);
}

/* ASYNC_SOCKET_LOG_LEVEL (any case) filters lines; the default sink writes
 * "LEVEL file:line function: message" and a newline. */
static void level_environment_variable_filters_and_default_sink_formats(void** state)
{
    (void)state;
    (void)alarm(60);
    char out[4096];
    (void)run_child_capturing_stderr(child_logs_level_error_only, out, sizeof(out));
    assert_null(strstr(out, "dropped warning"));
    assert_non_null(strstr(out, "e.c:2 g: kept error\n"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
}

/* "any other value gives warning and one warning line". */
static void invalid_level_value_gives_warning_and_one_line(void** state)
{
    (void)state;
    (void)alarm(60);
    char out[4096];
    size_t n = run_child_capturing_stderr(child_logs_invalid_level, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(strchr(out, '\n') - out + 1, (long)n);
}

/* The sink gets the message without a trailing newline and file without its directory; a message
 * is cut at 1023 bytes; errno is kept; an invalid level logs one error and changes nothing. */
static void sink_gets_trimmed_lines_and_errno_is_kept(void** state)
{
    (void)state;
    sink_only();
    static char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    errno = 1234;
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_ERROR, "/some/dir/file.c", 7, "fn", "%s\n", big);
    assert_int_equal(errno, 1234);
    assert_int_equal(bb_log_total(), 1);
    assert_string_equal(bb_log.files[0], "file.c");
    bb_log_reset();
    ASYNC_SOCKET_LOG_LEVEL before = async_socket_log_get_level();
    async_socket_log_set_level((ASYNC_SOCKET_LOG_LEVEL)42);
    assert_int_equal(async_socket_log_get_level(), before);
    BB_ASSERT_LOG(1, 0);
    async_socket_log_set_sink(NULL, NULL);
}

static size_t long_len;
static char long_last;

static void length_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function,
                        const char* message)
{
    (void)context;
    (void)level;
    (void)file;
    (void)line;
    (void)function;
    long_len = strlen(message);
    long_last = long_len > 0 ? message[long_len - 1] : 0;
}

static void long_message_is_cut_at_1023_bytes(void** state)
{
    (void)state;
    static char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    async_socket_log_set_sink(length_sink, NULL);
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_ERROR, "f.c", 1, "fn", "%s", big);
    assert_true(long_len <= 1023 && long_len > 0);
    /* the logger adds no newline of its own (a "\n" the caller writes is the caller's: the docs'
     * "without a trailing newline" is read as "none added") */
    async_socket_log(ASYNC_SOCKET_LOG_LEVEL_ERROR, "f.c", 1, "fn", "short");
    assert_int_equal(long_len, 5);
    assert_int_equal(long_last, 't');
    async_socket_log_set_sink(NULL, NULL);
}

/* The execution engine: NULL parameters give the defaults, min > max fails with one line; a
 * socket made with an engine works after the caller dropped its own reference. */
static void execution_engine_is_optional_and_referenced(void** state)
{
    (void)state;
    sink_only();
    EXECUTION_ENGINE_PARAMETERS bad = { 5, 2 };
    assert_null(execution_engine_create(&bad));
    BB_ASSERT_LOG(1, 0);
    EXECUTION_ENGINE_HANDLE e = execution_engine_create(NULL);
    assert_non_null(e);
    const EXECUTION_ENGINE_PARAMETERS* p = execution_engine_linux_get_parameters(e);
    assert_int_equal(p->min_thread_count, DEFAULT_MIN_THREAD_COUNT);
    assert_int_equal(p->max_thread_count, DEFAULT_MAX_THREAD_COUNT);
    assert_int_equal(platform_init(), 0);
    int fd, peer;
    bb_tcp_pair(&fd, &peer);
    ASYNC_SOCKET_HANDLE s = async_socket_create(e, fd);
    assert_non_null(s);
    execution_engine_dec_ref(e);
    BB_OP op;
    bb_op_init(&op, NULL);
    assert_int_equal(async_socket_open_async(s, bb_on_open, &op), 0);
    char x[3] = "hey";
    ASYNC_SOCKET_BUFFER b = { x, 3 };
    BB_COUNTER done;
    bb_counter_init(&done);
    BB_OP w;
    bb_op_init(&w, &done);
    assert_int_equal(async_socket_send_async(s, &b, 1, bb_on_send, &w), ASYNC_SOCKET_SEND_SYNC_OK);
    char got[3];
    assert_int_equal(bb_read_n(peer, got, 3, BB_WAIT_MS), 3);
    assert_int_equal(bb_counter_wait(&done, 1, BB_WAIT_MS), 1);
    async_socket_destroy(s);
    (void)close(peer);
    platform_deinit();
    execution_engine_inc_ref(NULL);
    BB_ASSERT_LOG(1, 0);
    bb_counter_deinit(&done);
    async_socket_log_set_sink(NULL, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(platform_init_is_reference_counted),
    cmocka_unit_test(worker_count_settings_are_applied_in_order),
    cmocka_unit_test(socket_keeps_the_port_alive_after_platform_deinit),
    cmocka_unit_test(nothing_reaches_stderr_with_a_sink),
    cmocka_unit_test(level_environment_variable_filters_and_default_sink_formats),
    cmocka_unit_test(invalid_level_value_gives_warning_and_one_line),
    cmocka_unit_test(sink_gets_trimmed_lines_and_errno_is_kept),
    cmocka_unit_test(long_message_is_cut_at_1023_bytes),
    cmocka_unit_test(execution_engine_is_optional_and_referenced),
};

TEST_MAIN(tests)
