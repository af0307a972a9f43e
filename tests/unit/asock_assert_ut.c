/* Unit tests for the invariant checks (src/asock_assert.h): they are compiled into the test build
 * (RelWithDebInfo defines NDEBUG, so a check tied to assert() would be off here), and a broken
 * invariant aborts the process. Each broken case runs in a child process (fork), which must end
 * with SIGABRT; the parent asserts how it ended. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "asock_assert.h"
#include "async_socket_internal.h"
#include "lock.h"
#include "socket_lifetime.h"
#include "test_main.h"

/* Runs `body` in a child with stderr silenced; returns the signal that ended it, 0 for a normal
 * exit. */
static int run_in_child(void (*body)(void* arg), void* arg)
{
    (void)fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
    {
        FILE* quiet = freopen("/dev/null", "w", stderr);
        (void)quiet;
        body(arg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_182 */
static void asock_assert_checks_are_compiled_into_the_test_build(void** state)
{
    (void)state;
    assert_int_equal(ASOCK_ASSERTS, 1);
}

static void release_a_free_lock(void* arg)
{
    (void)arg;
    LOCK lock = LOCK_INITIALIZER;
    lock_release(&lock);
}

static void release_a_lock_held_by_this_thread(void* arg)
{
    (void)arg;
    LOCK lock = LOCK_INITIALIZER;
    lock_acquire(&lock);
    lock_assert_held(&lock);
    lock_release(&lock);
}

static void* take_lock(void* arg)
{
    lock_acquire(arg);
    return NULL;
}

static void release_a_lock_held_by_another_thread(void* arg)
{
    (void)arg;
    LOCK lock = LOCK_INITIALIZER;
    pthread_t thread;
    if (pthread_create(&thread, NULL, take_lock, &lock) != 0 || pthread_join(thread, NULL) != 0)
    {
        _exit(2);
    }
    lock_release(&lock);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_182 */
static void asock_assert_a_lock_released_by_a_thread_that_does_not_hold_it_aborts(void** state)
{
    (void)state;
    assert_int_equal(run_in_child(release_a_lock_held_by_this_thread, NULL), 0);
    assert_int_equal(run_in_child(release_a_free_lock, NULL), SIGABRT);
    assert_int_equal(run_in_child(release_a_lock_held_by_another_thread, NULL), SIGABRT);
}

typedef struct TRANSITION_TAG
{
    SOCKET_STATE from;
    SOCKET_STATE to;
} TRANSITION;

static void make_transition(void* arg)
{
    const TRANSITION* transition = arg;
    ASYNC_SOCKET socket = {0};
    lock_init(&socket.lock);
    socket.state = transition->from;
    lock_acquire(&socket.lock);
    socket_set_state_locked(&socket, transition->to);
    lock_release(&socket.lock);
}

static void make_transition_unlocked(void* arg)
{
    const TRANSITION* transition = arg;
    ASYNC_SOCKET socket = {0};
    lock_init(&socket.lock);
    socket.state = transition->from;
    socket_set_state_locked(&socket, transition->to);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_182 */
static void asock_assert_a_state_change_outside_the_machine_aborts(void** state)
{
    (void)state;
    static const TRANSITION allowed[] = {
        {STATE_NEW, STATE_OPENING}, {STATE_OPENING, STATE_OPEN}, {STATE_OPENING, STATE_NEW},
        {STATE_OPEN, STATE_CLOSING}, {STATE_CLOSING, STATE_CLOSED}};
    static const TRANSITION refused[] = {
        {STATE_NEW, STATE_OPEN}, {STATE_OPEN, STATE_CLOSED}, {STATE_CLOSED, STATE_OPENING},
        {STATE_CLOSING, STATE_OPEN}, {STATE_CLOSED, STATE_NEW}, {STATE_OPEN, STATE_OPENING}};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
    {
        assert_int_equal(run_in_child(make_transition, (void*)&allowed[i]), 0);
        /* and never without the lock */
        assert_int_equal(run_in_child(make_transition_unlocked, (void*)&allowed[i]), SIGABRT);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
    {
        assert_int_equal(run_in_child(make_transition, (void*)&refused[i]), SIGABRT);
    }
}

static void release_the_last_reference_twice(void* arg)
{
    (void)arg;
    ASYNC_SOCKET socket = {0};
    atomic_init(&socket.refcount, 0);
    socket_release(&socket); /* no reference left to drop: aborts before any teardown */
}

static void hold_a_socket_with_no_reference(void* arg)
{
    (void)arg;
    ASYNC_SOCKET socket = {0};
    atomic_init(&socket.refcount, 0);
    socket_hold(&socket);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_182 */
static void asock_assert_a_reference_count_below_one_aborts(void** state)
{
    (void)state;
    assert_int_equal(run_in_child(release_the_last_reference_twice, NULL), SIGABRT);
    assert_int_equal(run_in_child(hold_a_socket_with_no_reference, NULL), SIGABRT);
}

static void leave_a_scope_not_entered(void* arg)
{
    (void)arg;
    ASYNC_SOCKET socket = {0};
    lock_init(&socket.lock);
    CALLBACK_SCOPE scope = {0};
    lock_acquire(&socket.lock);
    leave_locked(&socket, &scope);
}

/* Tests_SRS_ASYNC_SOCKET_LINUX_99_182 */
static void asock_assert_leaving_a_socket_not_entered_aborts(void** state)
{
    (void)state;
    assert_int_equal(run_in_child(leave_a_scope_not_entered, NULL), SIGABRT);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(asock_assert_checks_are_compiled_into_the_test_build),
    cmocka_unit_test(asock_assert_a_lock_released_by_a_thread_that_does_not_hold_it_aborts),
    cmocka_unit_test(asock_assert_a_state_change_outside_the_machine_aborts),
    cmocka_unit_test(asock_assert_a_reference_count_below_one_aborts),
    cmocka_unit_test(asock_assert_leaving_a_socket_not_entered_aborts),
};

TEST_MAIN(tests)
