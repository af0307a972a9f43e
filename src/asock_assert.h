/* Run-time checks of the library's invariants, on in debug builds only.
 *
 * ASOCK_ASSERT(condition) aborts with the file, the line and the condition when the condition
 * is false, in builds with ASYNC_SOCKET_ASSERTS defined (CMake option ASYNC_SOCKET_ASSERTS, on by
 * default in every build type but Release and MinSizeRel); elsewhere it compiles to nothing and
 * the condition is not evaluated (only compiled), so a condition must have no side effect. It does not follow
 * NDEBUG: CMake's RelWithDebInfo, the build of the tests and the fuzzer, defines NDEBUG.
 * ASOCK_ASSERTS is 1 when the checks are compiled in, for code that keeps extra state for them.
 * Codes_SRS_ASYNC_SOCKET_LINUX_99_182 */
#ifndef ASOCK_ASSERT_H
#define ASOCK_ASSERT_H

#ifdef ASYNC_SOCKET_ASSERTS

#include <stdio.h>
#include <stdlib.h>

#define ASOCK_ASSERTS 1

/* stderr and abort(), not the library's logger: the logger may run a user's sink, and a broken
 * invariant may be the logger's own lock. */
__attribute__((cold, noreturn)) static inline void asock__assert_failed(const char* file, int line, const char* condition)
{
    (void)fprintf(stderr, "async_socket: invariant broken at %s:%d: %s\n", file, line, condition);
    (void)fflush(stderr);
    abort();
}

#define ASOCK_ASSERT(condition) \
    ((condition) ? (void)0 : asock__assert_failed(__FILE__, __LINE__, #condition))

#else

#define ASOCK_ASSERTS 0
/* not evaluated, but its names count as used */
#define ASOCK_ASSERT(condition) ((void)sizeof((condition) ? 1 : 0))

#endif

#endif /* ASOCK_ASSERT_H */
