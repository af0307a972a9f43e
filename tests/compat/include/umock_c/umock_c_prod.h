/* TEST-ONLY stand-in for Azure umock-c's umock_c/umock_c_prod.h (production mode, no ENABLE_MOCKS),
 * written for tests/compat/check_compat.py from the real header's documented behaviour, not copied
 * from it. As in the real one: it includes macro_utils.h, #undefs MOCKABLE_FUNCTION and defines it
 * again as a plain declaration ending with a semicolon. Up to 6 parameters. */
#include "macro_utils/macro_utils.h"

#undef MOCKABLE_FUNCTION

#define UMOCK_TEST_NTH_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, N, ...) N
#define UMOCK_TEST_PAIRS_(...) UMOCK_TEST_NTH_(__VA_ARGS__, 6, X, 5, X, 4, X, 3, X, 2, X, 1, X, 0)
#define UMOCK_TEST_ARGS_0(end) void
#define UMOCK_TEST_ARGS_1(t1, n1, end) t1 n1
#define UMOCK_TEST_ARGS_2(t1, n1, ...) t1 n1, UMOCK_TEST_ARGS_1(__VA_ARGS__)
#define UMOCK_TEST_ARGS_3(t1, n1, ...) t1 n1, UMOCK_TEST_ARGS_2(__VA_ARGS__)
#define UMOCK_TEST_ARGS_4(t1, n1, ...) t1 n1, UMOCK_TEST_ARGS_3(__VA_ARGS__)
#define UMOCK_TEST_ARGS_5(t1, n1, ...) t1 n1, UMOCK_TEST_ARGS_4(__VA_ARGS__)
#define UMOCK_TEST_ARGS_6(t1, n1, ...) t1 n1, UMOCK_TEST_ARGS_5(__VA_ARGS__)
#define UMOCK_TEST_ARGS_(...) MU_C2(UMOCK_TEST_ARGS_, UMOCK_TEST_PAIRS_(__VA_ARGS__))(__VA_ARGS__)
#define UMOCK_TEST_DECLARE_(modifiers, result, function, ...) result modifiers function(UMOCK_TEST_ARGS_(__VA_ARGS__));

#define MOCKABLE_FUNCTION(...) UMOCK_TEST_DECLARE_(__VA_ARGS__, umock_test_end_)
