/* Unit tests for the execution engine.
 *
 * The engine's reference count is not readable, so the tests observe it through the process-wide
 * live-allocation counter of the fault-injecting sys seam: the engine exists exactly while that
 * counter is one above its starting value. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "c_pal/execution_engine.h"
#include "c_pal/logger.h"
#include "sys_fault.h"
#include "test_main.h"

/* ---- log capture ---- */

typedef struct LOG_CAPTURE_TAG
{
    int errors;
    int others;
    char last_error[1024];
} LOG_CAPTURE;

static LOG_CAPTURE log_capture;

static void capture_sink(void* context, ASYNC_SOCKET_LOG_LEVEL level, const char* file, int line, const char* function, const char* message)
{
    (void)file; (void)line; (void)function;
    LOG_CAPTURE* c = context;
    if (level == ASYNC_SOCKET_LOG_LEVEL_ERROR)
    {
        c->errors++;
        (void)snprintf(c->last_error, sizeof(c->last_error), "%s", message);
    }
    else
    {
        c->others++;
    }
}

static void start_capture(void)
{
    memset(&log_capture, 0, sizeof(log_capture));
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_VERBOSE);
    async_socket_log_set_sink(capture_sink, &log_capture);
}

static void stop_capture(void)
{
    async_socket_log_set_sink(NULL, NULL);
    async_socket_log_set_level(ASYNC_SOCKET_LOG_LEVEL_WARNING);
}

/* ---- tests ---- */

static void execution_engine_create_with_null_uses_the_defaults(void** state)
{
    (void)state;
    int64_t live = sys_fault_live_allocations();
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(NULL);
    assert_non_null(engine);
    assert_int_equal(sys_fault_live_allocations(), live + 1);
    const EXECUTION_ENGINE_PARAMETERS* parameters = execution_engine_linux_get_parameters(engine);
    assert_non_null(parameters);
    assert_int_equal(parameters->min_thread_count, DEFAULT_MIN_THREAD_COUNT);
    assert_int_equal(parameters->max_thread_count, DEFAULT_MAX_THREAD_COUNT);
    execution_engine_dec_ref(engine);
    assert_int_equal(sys_fault_live_allocations(), live);
}

static void execution_engine_create_keeps_a_copy_of_the_parameters(void** state)
{
    (void)state;
    EXECUTION_ENGINE_PARAMETERS input = {.min_thread_count = 3, .max_thread_count = 9};
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(&input);
    assert_non_null(engine);
    input.min_thread_count = 100;
    input.max_thread_count = 200;
    const EXECUTION_ENGINE_PARAMETERS* parameters = execution_engine_linux_get_parameters(engine);
    assert_non_null(parameters);
    assert_ptr_not_equal(parameters, &input);
    assert_int_equal(parameters->min_thread_count, 3);
    assert_int_equal(parameters->max_thread_count, 9);
    /* The same stored copy every time. */
    assert_ptr_equal(execution_engine_linux_get_parameters(engine), parameters);
    execution_engine_dec_ref(engine);
}

static void execution_engine_create_accepts_any_min_when_max_is_zero(void** state)
{
    (void)state;
    EXECUTION_ENGINE_PARAMETERS input = {.min_thread_count = UINT32_MAX, .max_thread_count = 0};
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(&input);
    assert_non_null(engine);
    assert_int_equal(execution_engine_linux_get_parameters(engine)->min_thread_count, UINT32_MAX);
    assert_int_equal(execution_engine_linux_get_parameters(engine)->max_thread_count, 0);
    execution_engine_dec_ref(engine);
}

static void execution_engine_create_accepts_min_equal_to_max(void** state)
{
    (void)state;
    EXECUTION_ENGINE_PARAMETERS input = {.min_thread_count = 5, .max_thread_count = 5};
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(&input);
    assert_non_null(engine);
    execution_engine_dec_ref(engine);

    EXECUTION_ENGINE_PARAMETERS zeros = {.min_thread_count = 0, .max_thread_count = 0};
    engine = execution_engine_create(&zeros);
    assert_non_null(engine);
    execution_engine_dec_ref(engine);
}

static void execution_engine_create_fails_when_min_is_above_max(void** state)
{
    (void)state;
    int64_t live = sys_fault_live_allocations();
    start_capture();
    EXECUTION_ENGINE_PARAMETERS input = {.min_thread_count = 6, .max_thread_count = 5};
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(&input);
    stop_capture();
    assert_null(engine);
    assert_int_equal(log_capture.errors, 1);
    assert_non_null(strstr(log_capture.last_error, "min_thread_count=6"));
    assert_non_null(strstr(log_capture.last_error, "max_thread_count=5"));
    assert_int_equal(sys_fault_live_allocations(), live);
}

/* Sweep: fail each allocation of create in turn until create succeeds without a fault. */
static void execution_engine_create_fails_cleanly_when_allocation_fails(void** state)
{
    (void)state;
    int64_t live = sys_fault_live_allocations();
    uint32_t nth;
    for (nth = 1; nth < 16; nth++)
    {
        start_capture();
        sys_fault_arm(SYS_FAULT_ALL, nth, ENOMEM);
        EXECUTION_ENGINE_HANDLE engine = execution_engine_create(NULL);
        bool fired = sys_fault_fired();
        sys_fault_disarm();
        stop_capture();
        if (!fired)
        {
            assert_non_null(engine);
            execution_engine_dec_ref(engine);
            break;
        }
        assert_null(engine);
        assert_int_equal(log_capture.errors, 1);
        assert_int_equal(sys_fault_live_allocations(), live);
    }
    /* Exactly one fallible call: the allocation. */
    assert_int_equal(nth, 2);
    assert_int_equal(sys_fault_live_allocations(), live);
}

static void execution_engine_lives_until_the_last_dec_ref(void** state)
{
    (void)state;
    int64_t live = sys_fault_live_allocations();
    EXECUTION_ENGINE_PARAMETERS input = {.min_thread_count = 1, .max_thread_count = 2};
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(&input);
    assert_non_null(engine);
    execution_engine_inc_ref(engine);
    execution_engine_inc_ref(engine);
    execution_engine_dec_ref(engine);
    execution_engine_dec_ref(engine);
    assert_int_equal(sys_fault_live_allocations(), live + 1);
    assert_int_equal(execution_engine_linux_get_parameters(engine)->max_thread_count, 2);
    execution_engine_dec_ref(engine);
    assert_int_equal(sys_fault_live_allocations(), live);
}

static void execution_engine_inc_ref_with_null_logs_an_error(void** state)
{
    (void)state;
    start_capture();
    execution_engine_inc_ref(NULL);
    stop_capture();
    assert_int_equal(log_capture.errors, 1);
    assert_non_null(strstr(log_capture.last_error, "execution_engine"));
}

static void execution_engine_dec_ref_with_null_logs_an_error(void** state)
{
    (void)state;
    int64_t live = sys_fault_live_allocations();
    start_capture();
    execution_engine_dec_ref(NULL);
    stop_capture();
    assert_int_equal(log_capture.errors, 1);
    assert_non_null(strstr(log_capture.last_error, "execution_engine"));
    assert_int_equal(sys_fault_live_allocations(), live);
}

static void execution_engine_get_parameters_with_null_returns_null(void** state)
{
    (void)state;
    start_capture();
    const EXECUTION_ENGINE_PARAMETERS* parameters = execution_engine_linux_get_parameters(NULL);
    stop_capture();
    assert_null(parameters);
    assert_int_equal(log_capture.errors, 1);
}

#define REF_THREADS 8
#define REFS_PER_THREAD 100000

static void* inc_dec_thread(void* arg)
{
    EXECUTION_ENGINE_HANDLE engine = arg;
    for (int i = 0; i < REFS_PER_THREAD; i++)
    {
        execution_engine_inc_ref(engine);
    }
    for (int i = 0; i < REFS_PER_THREAD; i++)
    {
        execution_engine_dec_ref(engine);
    }
    return NULL;
}

/* A non-atomic count would lose updates here and either free early (a later dec_ref frees twice or
 * touches freed memory) or never free. */
static void execution_engine_ref_count_is_thread_safe(void** state)
{
    (void)state;
    int64_t live = sys_fault_live_allocations();
    EXECUTION_ENGINE_HANDLE engine = execution_engine_create(NULL);
    assert_non_null(engine);
    pthread_t threads[REF_THREADS];
    for (int t = 0; t < REF_THREADS; t++)
    {
        assert_int_equal(pthread_create(&threads[t], NULL, inc_dec_thread, engine), 0);
    }
    for (int t = 0; t < REF_THREADS; t++)
    {
        (void)pthread_join(threads[t], NULL);
    }
    assert_int_equal(sys_fault_live_allocations(), live + 1);
    assert_int_equal(execution_engine_linux_get_parameters(engine)->min_thread_count, DEFAULT_MIN_THREAD_COUNT);
    execution_engine_dec_ref(engine);
    assert_int_equal(sys_fault_live_allocations(), live);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(execution_engine_create_with_null_uses_the_defaults),
    cmocka_unit_test(execution_engine_create_keeps_a_copy_of_the_parameters),
    cmocka_unit_test(execution_engine_create_accepts_any_min_when_max_is_zero),
    cmocka_unit_test(execution_engine_create_accepts_min_equal_to_max),
    cmocka_unit_test(execution_engine_create_fails_when_min_is_above_max),
    cmocka_unit_test(execution_engine_create_fails_cleanly_when_allocation_fails),
    cmocka_unit_test(execution_engine_lives_until_the_last_dec_ref),
    cmocka_unit_test(execution_engine_inc_ref_with_null_logs_an_error),
    cmocka_unit_test(execution_engine_dec_ref_with_null_logs_an_error),
    cmocka_unit_test(execution_engine_get_parameters_with_null_returns_null),
    cmocka_unit_test(execution_engine_ref_count_is_thread_safe),
};

TEST_MAIN(tests)
