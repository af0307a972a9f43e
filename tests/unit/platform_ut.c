/* Unit tests for platform_init / platform_deinit and the process completion port.
 *
 * These run against the real completion port. Whether a port exists is observed through
 * platform_get_completion_port, the live-allocation counter of the fault-injecting sys seam and
 * the number of open fds (the port owns an epoll fd and an eventfd). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "c_pal/completion_port_linux.h"
#include "c_pal/logger.h"
#include "c_pal/platform.h"
#include "c_pal/platform_linux.h"
#include "log_capture.h"
#include "sys_fault.h"
#include "test_main.h"
#include "test_util.h"

/* Every test starts from "not initialised, no worker count set, no env", whatever ran before. */
static void reset_platform_settings(void)
{
    (void)unsetenv(PLATFORM_WORKER_COUNT_ENV);
    assert_int_equal(platform_linux_set_worker_count(0), 0);
}

static bool platform_is_initialised(void)
{
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_ERROR);
    /* Quiet: the NULL case logs an error, which is expected here. */
    LOG_CAPTURE quiet = LOG_CAPTURE_INITIALIZER;
    async_socket_log_set_sink(log_capture_sink, &quiet);
    COMPLETION_PORT_HANDLE port = platform_get_completion_port();
    async_socket_log_set_sink(NULL, NULL);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    if (port == NULL)
    {
        return false;
    }
    completion_port_dec_ref(port);
    return true;
}

static uint32_t default_worker_count(void)
{
    /* one per online CPU, at least one (see completion_port_default_worker_count) */
    long workers = sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 1)
    {
        return 1;
    }
    return (workers > COMPLETION_PORT_MAX_WORKERS) ? COMPLETION_PORT_MAX_WORKERS : (uint32_t)workers;
}

/* Initialises, reads the port's worker count, deinitialises. */
static uint32_t worker_count_after_init(void)
{
    assert_int_equal(platform_init(), 0);
    COMPLETION_PORT_HANDLE port = platform_get_completion_port();
    assert_non_null(port);
    uint32_t count = completion_port_get_worker_count(port);
    completion_port_dec_ref(port);
    platform_deinit();
    return count;
}

/* ---- tests ---- */

static void platform_init_creates_the_port_and_deinit_destroys_it(void** state)
{
    (void)state;
    reset_platform_settings();
    TEST_BASELINE baseline = test_baseline_take();
    assert_false(platform_is_initialised());

    assert_int_equal(platform_init(), 0);
    assert_true(sys_fault_live_allocations() > baseline.allocations);
    assert_true(test_count_open_fds() > baseline.fds);
    COMPLETION_PORT_HANDLE port = platform_get_completion_port();
    assert_non_null(port);
    completion_port_dec_ref(port);

    platform_deinit();
    assert_false(platform_is_initialised());
    test_baseline_assert_back_to(baseline);
}

static void platform_init_is_reference_counted(void** state)
{
    (void)state;
    reset_platform_settings();
    TEST_BASELINE baseline = test_baseline_take();
    assert_int_equal(platform_init(), 0);
    COMPLETION_PORT_HANDLE first = platform_get_completion_port();
    int64_t allocations_with_one = sys_fault_live_allocations();
    assert_int_equal(platform_init(), 0);
    COMPLETION_PORT_HANDLE second = platform_get_completion_port();
    /* The second init shares the port: no second port, no new allocation. */
    assert_ptr_equal(first, second);
    assert_int_equal(sys_fault_live_allocations(), allocations_with_one);
    completion_port_dec_ref(first);
    completion_port_dec_ref(second);

    platform_deinit();
    assert_true(platform_is_initialised());
    platform_deinit();
    assert_false(platform_is_initialised());
    test_baseline_assert_back_to(baseline);
}

static void platform_init_after_full_deinit_creates_a_new_port(void** state)
{
    (void)state;
    reset_platform_settings();
    TEST_BASELINE baseline = test_baseline_take();
    for (int i = 0; i < 3; i++)
    {
        assert_int_equal(platform_init(), 0);
        assert_true(platform_is_initialised());
        platform_deinit();
        assert_false(platform_is_initialised());
        test_baseline_assert_back_to(baseline);
    }
}

static void platform_deinit_without_init_logs_an_error_and_changes_nothing(void** state)
{
    (void)state;
    reset_platform_settings();
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    platform_deinit();
    (void)log_capture_stop();
    assert_int_equal(log_capture.errors, 1);
    assert_non_null(strstr(log_capture.last_error, "platform_init"));

    /* The count did not go below zero: one init and one deinit still tear the port down. */
    assert_int_equal(platform_init(), 0);
    platform_deinit();
    assert_false(platform_is_initialised());
    test_baseline_assert_back_to(baseline);
}

static void platform_get_completion_port_without_init_returns_null(void** state)
{
    (void)state;
    reset_platform_settings();
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    COMPLETION_PORT_HANDLE port = platform_get_completion_port();
    (void)log_capture_stop();
    assert_null(port);
    assert_int_equal(log_capture.errors, 1);
    assert_non_null(strstr(log_capture.last_error, "not initialised"));
}

/* The reference handed out keeps the port alive past the last deinit. */
static void platform_get_completion_port_returns_a_reference(void** state)
{
    (void)state;
    reset_platform_settings();
    assert_int_equal(platform_linux_set_worker_count(2), 0);
    TEST_BASELINE baseline = test_baseline_take();
    assert_int_equal(platform_init(), 0);
    int64_t allocations_with_port = sys_fault_live_allocations();
    COMPLETION_PORT_HANDLE port = platform_get_completion_port();
    assert_non_null(port);

    platform_deinit();
    assert_false(platform_is_initialised());
    assert_int_equal(sys_fault_live_allocations(), allocations_with_port);
    assert_int_equal(completion_port_get_worker_count(port), 2);

    completion_port_dec_ref(port);
    test_baseline_assert_back_to(baseline);
    reset_platform_settings();
}

static void platform_uses_the_worker_count_that_was_set(void** state)
{
    (void)state;
    reset_platform_settings();
    assert_int_equal(platform_linux_set_worker_count(3), 0);
    assert_int_equal(worker_count_after_init(), 3);
    assert_int_equal(platform_linux_set_worker_count(1), 0);
    assert_int_equal(worker_count_after_init(), 1);
    assert_int_equal(platform_linux_set_worker_count(COMPLETION_PORT_MAX_WORKERS), 0);
    assert_int_equal(worker_count_after_init(), COMPLETION_PORT_MAX_WORKERS);
    /* 0 restores the default. */
    assert_int_equal(platform_linux_set_worker_count(0), 0);
    assert_int_equal(worker_count_after_init(), default_worker_count());
}

static void platform_set_worker_count_above_the_maximum_fails(void** state)
{
    (void)state;
    reset_platform_settings();
    assert_int_equal(platform_linux_set_worker_count(2), 0);
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    int result = platform_linux_set_worker_count(COMPLETION_PORT_MAX_WORKERS + 1);
    int result_max = platform_linux_set_worker_count(UINT32_MAX);
    (void)log_capture_stop();
    assert_int_not_equal(result, 0);
    assert_int_not_equal(result_max, 0);
    assert_int_equal(log_capture.errors, 2);
    assert_non_null(strstr(log_capture.last_error, "worker_count"));
    /* The rejected value did not replace the previous setting. */
    assert_int_equal(worker_count_after_init(), 2);
    reset_platform_settings();
}

static void platform_worker_count_comes_from_the_environment(void** state)
{
    (void)state;
    reset_platform_settings();
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    (void)setenv(PLATFORM_WORKER_COUNT_ENV, "2", 1);
    assert_int_equal(worker_count_after_init(), 2);
    (void)setenv(PLATFORM_WORKER_COUNT_ENV, "1", 1);
    assert_int_equal(worker_count_after_init(), 1);
    (void)setenv(PLATFORM_WORKER_COUNT_ENV, "64", 1);
    assert_int_equal(worker_count_after_init(), 64);
    (void)log_capture_stop();
    assert_int_equal(log_capture.warnings, 0);
    assert_int_equal(log_capture.errors, 0);
    reset_platform_settings();
}

static void platform_set_worker_count_wins_over_the_environment(void** state)
{
    (void)state;
    reset_platform_settings();
    (void)setenv(PLATFORM_WORKER_COUNT_ENV, "2", 1);
    assert_int_equal(platform_linux_set_worker_count(3), 0);
    assert_int_equal(worker_count_after_init(), 3);
    reset_platform_settings();
}

static void platform_invalid_worker_count_in_the_environment_warns_and_uses_the_default(void** state)
{
    (void)state;
    static const char* const invalid[] = {"0", "65", "-1", "abc", "3x", " 2", "99999999999999999999"};
    reset_platform_settings();
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
    {
        (void)setenv(PLATFORM_WORKER_COUNT_ENV, invalid[i], 1);
        log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
        uint32_t count = worker_count_after_init();
        (void)log_capture_stop();
        assert_int_equal(count, default_worker_count());
        assert_int_equal(log_capture.warnings, 1);
        assert_non_null(strstr(log_capture.last_warning, PLATFORM_WORKER_COUNT_ENV));
        assert_non_null(strstr(log_capture.last_warning, invalid[i]));
    }
    reset_platform_settings();
}

static void platform_without_setting_or_environment_uses_the_default(void** state)
{
    (void)state;
    reset_platform_settings();
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    uint32_t count = worker_count_after_init();
    (void)log_capture_stop();
    assert_int_equal(count, default_worker_count());
    assert_int_equal(log_capture.warnings, 0);
}

/* Fault sweep: fail the 1st, 2nd, ... fallible call of platform_init until it succeeds. Each
 * failure must return non-zero, leave the platform uninitialised (a deinit would be an error) and
 * leak no allocation and no fd. */
static void platform_init_fails_cleanly_at_every_fallible_call(void** state)
{
    (void)state;
    reset_platform_settings();
    /* A fixed count of several workers, so the sweep also fails a thread start after others ran. */
    assert_int_equal(platform_linux_set_worker_count(4), 0);
    TEST_BASELINE baseline = test_baseline_take();
    uint32_t failures = 0;
    uint32_t nth;
    for (nth = 1; nth < 100; nth++)
    {
        log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
        sys_fault_arm(SYS_FAULT_ALL, nth, ENOMEM);
        int result = platform_init();
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        (void)log_capture_stop();
        if (!fired)
        {
            assert_int_equal(result, 0);
            platform_deinit();
            break;
        }
        assert_int_not_equal(result, 0);
        ASSERT_ERROR_LINES(log_capture.errors, 1);
        assert_false(platform_is_initialised());
        test_baseline_assert_back_to(baseline);
        failures++;
    }
    assert_true(nth < 100);
    /* At least: the port allocation, epoll, eventfd, epoll_ctl and the four worker threads. */
    assert_true(failures >= 8);
    test_baseline_assert_back_to(baseline);

    /* A failed init did not count: deinit now is unbalanced and says so. */
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    platform_deinit();
    (void)log_capture_stop();
    assert_int_equal(log_capture.errors, 1);
    reset_platform_settings();
}

/* Once initialised, a further init shares the port and has nothing that can fail. */
static void platform_second_init_does_not_allocate(void** state)
{
    (void)state;
    reset_platform_settings();
    assert_int_equal(platform_init(), 0);
    sys_fault_arm(SYS_FAULT_ALL, 1, ENOMEM);
    int result = platform_init();
    uint32_t calls = sys_fault_calls();
    sys_fault_disarm();
    assert_int_equal(result, 0);
    assert_int_equal(calls, 0);
    platform_deinit();
    assert_true(platform_is_initialised());
    platform_deinit();
    assert_false(platform_is_initialised());
}

/* ---- concurrency ---- */

#define INIT_THREADS 8
#define INIT_ROUNDS 25

typedef struct INIT_THREAD_TAG
{
    pthread_barrier_t* barrier;
    COMPLETION_PORT_HANDLE seen_port;
    int failures;
} INIT_THREAD;

/* All threads init at once, each holds its reference until all have looked at the port, then all
 * deinit at once: exactly one port may exist for the whole window. */
static void* init_hold_deinit_thread(void* arg)
{
    INIT_THREAD* context = arg;
    (void)pthread_barrier_wait(context->barrier);
    if (platform_init() != 0)
    {
        context->failures++;
        return NULL;
    }
    COMPLETION_PORT_HANDLE port = platform_get_completion_port();
    context->seen_port = port;
    if (port == NULL)
    {
        context->failures++;
    }
    else
    {
        completion_port_dec_ref(port);
    }
    (void)pthread_barrier_wait(context->barrier);
    platform_deinit();
    return NULL;
}

/* One round: INIT_THREADS threads init together, look at the port, deinit together. */
static void concurrent_init_round(void)
{
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, INIT_THREADS), 0);
    INIT_THREAD contexts[INIT_THREADS];
    pthread_t threads[INIT_THREADS];
    for (int t = 0; t < INIT_THREADS; t++)
    {
        contexts[t] = (INIT_THREAD){.barrier = &barrier, .seen_port = NULL, .failures = 0};
        assert_int_equal(pthread_create(&threads[t], NULL, init_hold_deinit_thread, &contexts[t]), 0);
    }
    for (int t = 0; t < INIT_THREADS; t++)
    {
        (void)pthread_join(threads[t], NULL);
    }
    (void)pthread_barrier_destroy(&barrier);
    for (int t = 0; t < INIT_THREADS; t++)
    {
        assert_int_equal(contexts[t].failures, 0);
        assert_non_null(contexts[t].seen_port);
        assert_ptr_equal(contexts[t].seen_port, contexts[0].seen_port);
    }
}

/* Repeated, because a race in the first init shows only when threads really overlap. */
static void platform_concurrent_init_creates_exactly_one_port(void** state)
{
    (void)state;
    reset_platform_settings();
    assert_int_equal(platform_linux_set_worker_count(2), 0);
    TEST_BASELINE baseline = test_baseline_take();
    for (int round = 0; round < 20; round++)
    {
        concurrent_init_round();
        assert_false(platform_is_initialised());
        test_baseline_assert_back_to(baseline);
    }
    reset_platform_settings();
}

/* Unsynchronised init/deinit pairs: ports come and go while other threads init; every pair must
 * succeed, every port handed out must be usable, and nothing may remain at the end. */
static void* init_deinit_loop_thread(void* arg)
{
    INIT_THREAD* context = arg;
    (void)pthread_barrier_wait(context->barrier);
    for (int i = 0; i < INIT_ROUNDS; i++)
    {
        if (platform_init() != 0)
        {
            context->failures++;
            continue;
        }
        COMPLETION_PORT_HANDLE port = platform_get_completion_port();
        if (port == NULL || completion_port_get_worker_count(port) != 2)
        {
            context->failures++;
        }
        if (port != NULL)
        {
            completion_port_dec_ref(port);
        }
        platform_deinit();
    }
    return NULL;
}

static void platform_concurrent_init_deinit_pairs_leak_nothing(void** state)
{
    (void)state;
    reset_platform_settings();
    assert_int_equal(platform_linux_set_worker_count(2), 0);
    TEST_BASELINE baseline = test_baseline_take();
    log_capture_start_at(ASYNC_SOCKET_LOG_LEVEL_WARNING);
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, INIT_THREADS), 0);
    INIT_THREAD contexts[INIT_THREADS];
    pthread_t threads[INIT_THREADS];
    for (int t = 0; t < INIT_THREADS; t++)
    {
        contexts[t] = (INIT_THREAD){.barrier = &barrier, .seen_port = NULL, .failures = 0};
        assert_int_equal(pthread_create(&threads[t], NULL, init_deinit_loop_thread, &contexts[t]), 0);
    }
    for (int t = 0; t < INIT_THREADS; t++)
    {
        (void)pthread_join(threads[t], NULL);
    }
    (void)log_capture_stop();
    (void)pthread_barrier_destroy(&barrier);
    for (int t = 0; t < INIT_THREADS; t++)
    {
        assert_int_equal(contexts[t].failures, 0);
    }
    assert_int_equal(log_capture.errors, 0);
    assert_false(platform_is_initialised());
    test_baseline_assert_back_to(baseline);
    reset_platform_settings();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(platform_init_creates_the_port_and_deinit_destroys_it),
    cmocka_unit_test(platform_init_is_reference_counted),
    cmocka_unit_test(platform_init_after_full_deinit_creates_a_new_port),
    cmocka_unit_test(platform_deinit_without_init_logs_an_error_and_changes_nothing),
    cmocka_unit_test(platform_get_completion_port_without_init_returns_null),
    cmocka_unit_test(platform_get_completion_port_returns_a_reference),
    cmocka_unit_test(platform_uses_the_worker_count_that_was_set),
    cmocka_unit_test(platform_set_worker_count_above_the_maximum_fails),
    cmocka_unit_test(platform_worker_count_comes_from_the_environment),
    cmocka_unit_test(platform_set_worker_count_wins_over_the_environment),
    cmocka_unit_test(platform_invalid_worker_count_in_the_environment_warns_and_uses_the_default),
    cmocka_unit_test(platform_without_setting_or_environment_uses_the_default),
    cmocka_unit_test(platform_init_fails_cleanly_at_every_fallible_call),
    cmocka_unit_test(platform_second_init_does_not_allocate),
    cmocka_unit_test(platform_concurrent_init_creates_exactly_one_port),
    cmocka_unit_test(platform_concurrent_init_deinit_pairs_leak_nothing),
};

TEST_MAIN(tests)
