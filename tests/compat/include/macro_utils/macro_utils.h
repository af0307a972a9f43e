/* TEST-ONLY stand-in for Azure macro-utils-c's macro_utils/macro_utils.h, written for this
 * project's compatibility checks (tests/compat/check_compat.py) from the documented behaviour of
 * the real header, not copied from it. It is never installed.
 *
 * What matters for the checks, as in the real header:
 *   - an include guard, and every macro defined WITHOUT #ifndef, so that a different definition
 *     of one of these names made earlier (e.g. by c_pal/macro_compat.h) gives gcc's "redefined"
 *     warning;
 *   - MU_C2_, MU_C2, MU_TOSTRING, MU_DEFINE_ENUM, MU_DEFINE_ENUM_STRINGS, MU_ENUM_TO_STRING,
 *     MU_ENUM_VALUE and PRI_MU_ENUM with the real meanings: MU_DEFINE_ENUM(E, ...) defines
 *     `enum E_TAG { E_INVALID, ... }` typedef'd to E and declares `const char* MU_E_ToString(E)`,
 *     ending with its own semicolon; MU_ENUM_TO_STRING(E, v) calls MU_E_ToString(v);
 *     "%" PRI_MU_ENUM with MU_ENUM_VALUE(E, v) prints "<name> (<value>)".
 * Up to 12 enum values. */
#ifndef MACRO_UTILS_H
#define MACRO_UTILS_H

#define MU_TOSTRING_(x) #x
#define MU_TOSTRING(x) MU_TOSTRING_(x)
#define MU_C2_(x, y) x##y
#define MU_C2(x, y) MU_C2_(x, y)
#define MU_C3(x, y, z) MU_C2(MU_C2(x, y), z)

#define MU_TEST_NTH_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, N, ...) N
#define MU_TEST_COUNT_(...) MU_TEST_NTH_(__VA_ARGS__, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define MU_TEST_APPLY_1(m, a) m(a)
#define MU_TEST_APPLY_2(m, a, ...) m(a) MU_TEST_APPLY_1(m, __VA_ARGS__)
#define MU_TEST_APPLY_3(m, a, ...) m(a) MU_TEST_APPLY_2(m, __VA_ARGS__)
#define MU_TEST_APPLY_4(m, a, ...) m(a) MU_TEST_APPLY_3(m, __VA_ARGS__)
#define MU_TEST_APPLY_5(m, a, ...) m(a) MU_TEST_APPLY_4(m, __VA_ARGS__)
#define MU_TEST_APPLY_6(m, a, ...) m(a) MU_TEST_APPLY_5(m, __VA_ARGS__)
#define MU_TEST_APPLY_7(m, a, ...) m(a) MU_TEST_APPLY_6(m, __VA_ARGS__)
#define MU_TEST_APPLY_8(m, a, ...) m(a) MU_TEST_APPLY_7(m, __VA_ARGS__)
#define MU_TEST_APPLY_9(m, a, ...) m(a) MU_TEST_APPLY_8(m, __VA_ARGS__)
#define MU_TEST_APPLY_10(m, a, ...) m(a) MU_TEST_APPLY_9(m, __VA_ARGS__)
#define MU_TEST_APPLY_11(m, a, ...) m(a) MU_TEST_APPLY_10(m, __VA_ARGS__)
#define MU_TEST_APPLY_12(m, a, ...) m(a) MU_TEST_APPLY_11(m, __VA_ARGS__)
#define MU_TEST_APPLY(m, ...) MU_C2(MU_TEST_APPLY_, MU_TEST_COUNT_(__VA_ARGS__))(m, __VA_ARGS__)

#define MU_TEST_CONSTANT_(x) x,
#define MU_TEST_CASE_(x) case x: return #x;

#define MU_DEFINE_ENUM(enumName, ...) \
    typedef enum MU_C2(enumName, _TAG) { MU_TEST_APPLY(MU_TEST_CONSTANT_, MU_C2(enumName, _INVALID), __VA_ARGS__) } enumName; \
    const char* MU_C3(MU_, enumName, _ToString)(enumName value);

#define MU_DEFINE_ENUM_STRINGS(enumName, ...) \
    const char* MU_C3(MU_, enumName, _ToString)(enumName value) \
    { \
        switch (value) { MU_TEST_APPLY(MU_TEST_CASE_, MU_C2(enumName, _INVALID), __VA_ARGS__) default: break; } \
        return "UNKNOWN"; \
    }

#define MU_ENUM_TO_STRING(enumName, value) MU_C3(MU_, enumName, _ToString)(value)
#define PRI_MU_ENUM "s%s (%d)"
#define MU_ENUM_VALUE(enumName, value) "", MU_ENUM_TO_STRING(enumName, (value)), (int)(value)

#endif /* MACRO_UTILS_H */
