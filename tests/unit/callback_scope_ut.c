/* Unit tests for callback scopes (src/callback_scope.h): per-thread depth counting and the
 * detection of a circle of threads waiting for each other, which is what lets two callbacks
 * close each other's sockets without a deadlock. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "callback_scope.h"
#include "test_main.h"

static int object_a;
static int object_b;

static void depth_counts_only_this_threads_scopes_of_one_object(void** state)
{
    (void)state;
    assert_false(callback_scope__in_any());
    CALLBACK_SCOPE outer;
    CALLBACK_SCOPE middle;
    CALLBACK_SCOPE inner;
    callback_scope__enter(&outer, &object_a);
    callback_scope__enter(&middle, &object_b);
    callback_scope__enter(&inner, &object_a);
    assert_true(callback_scope__in_any());
    assert_int_equal(callback_scope__depth(&object_a), 2);
    assert_int_equal(callback_scope__depth(&object_b), 1);
    callback_scope__exit(&inner);
    assert_int_equal(callback_scope__depth(&object_a), 1);
    callback_scope__exit(&middle);
    callback_scope__exit(&outer);
    assert_int_equal(callback_scope__depth(&object_a), 0);
    assert_false(callback_scope__in_any());
}

/* A thread inside object_b that waits for object_a, as a callback of B closing A would. */
typedef struct WAITING_THREAD_TAG
{
    atomic_int registered;
    atomic_int release;
    int began;
} WAITING_THREAD;

static void* inside_b_waiting_for_a(void* arg)
{
    WAITING_THREAD* waiting = arg;
    CALLBACK_SCOPE scope;
    callback_scope__enter(&scope, &object_b);
    waiting->began = callback_scope__begin_wait(&object_a);
    atomic_store(&waiting->registered, 1);
    while (atomic_load(&waiting->release) == 0)
    {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};
        (void)nanosleep(&pause, NULL);
    }
    if (waiting->began)
    {
        callback_scope__end_wait();
    }
    callback_scope__exit(&scope);
    return NULL;
}

static void begin_wait_refuses_to_close_a_circle_of_waiters(void** state)
{
    (void)state;
    WAITING_THREAD waiting = {.began = 0};
    atomic_init(&waiting.registered, 0);
    atomic_init(&waiting.release, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, inside_b_waiting_for_a, &waiting), 0);
    while (atomic_load(&waiting.registered) == 0)
    {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};
        (void)nanosleep(&pause, NULL);
    }
    assert_true(waiting.began);

    /* This thread is inside A; waiting for B would wait for a thread that waits for A. */
    CALLBACK_SCOPE scope;
    callback_scope__enter(&scope, &object_a);
    assert_false(callback_scope__begin_wait(&object_b));

    /* Waiting for an object no blocked thread is inside closes no circle. */
    static int object_c;
    assert_true(callback_scope__begin_wait(&object_c));
    callback_scope__end_wait();
    callback_scope__exit(&scope);

    /* Outside A, waiting for B closes no circle either. */
    assert_true(callback_scope__begin_wait(&object_b));
    callback_scope__end_wait();

    atomic_store(&waiting.release, 1);
    assert_int_equal(pthread_join(thread, NULL), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(depth_counts_only_this_threads_scopes_of_one_object),
    cmocka_unit_test(begin_wait_refuses_to_close_a_circle_of_waiters),
};

TEST_MAIN(tests)
