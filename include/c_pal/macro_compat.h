/* Small stand-ins for the declaration macros that the async_socket API is written with.
 *
 * The requirements declare their API with MOCKABLE_FUNCTION (from umock_c) and their enums with
 * MU_DEFINE_ENUM (from Azure's macro-utils-c). Neither library is packaged for Debian, so this
 * header gives compatible definitions of the few names the public headers and a c-pal program use
 * with them: MU_DEFINE_ENUM, MU_DEFINE_ENUM_STRINGS, MU_ENUM_TO_STRING, MU_ENUM_VALUE, PRI_MU_ENUM
 * and MOCKABLE_FUNCTION. Everything else here is prefixed CPAL_ and is internal to the header.
 *
 * Coexisting with the real macro-utils-c: when "macro_utils/macro_utils.h" is on the include path
 * this header includes it and keeps its definitions, so it makes no difference whether a program
 * includes macro_utils.h before or after the async_socket headers (macro_utils.h has an include
 * guard, and defines its names without #ifndef: a different definition of ours would be a
 * "redefined" warning). Without it on the path, each name is defined only when not yet defined.
 * umock_c_prod.h #undefs MOCKABLE_FUNCTION before defining it, so its order does not matter.
 *
 * ABI: like the real MU_DEFINE_ENUM, ours puts an <enum>_INVALID constant first (value 0), so the
 * numeric values of the enum constants are the same whichever definition a program compiles with,
 * and both declare `const char* MU_<enum>_ToString(<enum> value)`, which the library exports for
 * each of its enums: MU_ENUM_TO_STRING calls it under either set of macros.
 */
#ifndef C_PAL_MACRO_COMPAT_H
#define C_PAL_MACRO_COMPAT_H

/* The library is always built with its own definitions (ASYNC_SOCKET_NO_MACRO_UTILS_PROBE): the
 * to-string functions it exports must carry C_PAL_API. */
#if !defined(ASYNC_SOCKET_NO_MACRO_UTILS_PROBE) && defined(__has_include)
#if __has_include("macro_utils/macro_utils.h")
#include "macro_utils/macro_utils.h"
#endif
#endif

/* Marks a symbol as part of the shared library's public interface (the build uses
 * -fvisibility=hidden, so everything without it stays internal). */
#ifndef C_PAL_API
#define C_PAL_API __attribute__((visibility("default")))
#endif

/* Argument counting and a FOR_EACH over up to 32 arguments; internal to this header. */
#define CPAL_ARG_N_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, \
                    _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, N, ...) N
#define CPAL_COUNT_(...) CPAL_ARG_N_(__VA_ARGS__, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, \
                                     16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define CPAL_CAT_(a, b) a##b
#define CPAL_CAT(a, b) CPAL_CAT_(a, b)

#define CPAL_EACH_1(m, x) m(x)
#define CPAL_EACH_2(m, x, ...) m(x) CPAL_EACH_1(m, __VA_ARGS__)
#define CPAL_EACH_3(m, x, ...) m(x) CPAL_EACH_2(m, __VA_ARGS__)
#define CPAL_EACH_4(m, x, ...) m(x) CPAL_EACH_3(m, __VA_ARGS__)
#define CPAL_EACH_5(m, x, ...) m(x) CPAL_EACH_4(m, __VA_ARGS__)
#define CPAL_EACH_6(m, x, ...) m(x) CPAL_EACH_5(m, __VA_ARGS__)
#define CPAL_EACH_7(m, x, ...) m(x) CPAL_EACH_6(m, __VA_ARGS__)
#define CPAL_EACH_8(m, x, ...) m(x) CPAL_EACH_7(m, __VA_ARGS__)
#define CPAL_EACH_9(m, x, ...) m(x) CPAL_EACH_8(m, __VA_ARGS__)
#define CPAL_EACH_10(m, x, ...) m(x) CPAL_EACH_9(m, __VA_ARGS__)
#define CPAL_EACH_11(m, x, ...) m(x) CPAL_EACH_10(m, __VA_ARGS__)
#define CPAL_EACH_12(m, x, ...) m(x) CPAL_EACH_11(m, __VA_ARGS__)
#define CPAL_EACH_13(m, x, ...) m(x) CPAL_EACH_12(m, __VA_ARGS__)
#define CPAL_EACH_14(m, x, ...) m(x) CPAL_EACH_13(m, __VA_ARGS__)
#define CPAL_EACH_15(m, x, ...) m(x) CPAL_EACH_14(m, __VA_ARGS__)
#define CPAL_EACH_16(m, x, ...) m(x) CPAL_EACH_15(m, __VA_ARGS__)
#define CPAL_EACH_17(m, x, ...) m(x) CPAL_EACH_16(m, __VA_ARGS__)
#define CPAL_EACH_18(m, x, ...) m(x) CPAL_EACH_17(m, __VA_ARGS__)
#define CPAL_EACH_19(m, x, ...) m(x) CPAL_EACH_18(m, __VA_ARGS__)
#define CPAL_EACH_20(m, x, ...) m(x) CPAL_EACH_19(m, __VA_ARGS__)
#define CPAL_EACH_21(m, x, ...) m(x) CPAL_EACH_20(m, __VA_ARGS__)
#define CPAL_EACH_22(m, x, ...) m(x) CPAL_EACH_21(m, __VA_ARGS__)
#define CPAL_EACH_23(m, x, ...) m(x) CPAL_EACH_22(m, __VA_ARGS__)
#define CPAL_EACH_24(m, x, ...) m(x) CPAL_EACH_23(m, __VA_ARGS__)
#define CPAL_EACH_25(m, x, ...) m(x) CPAL_EACH_24(m, __VA_ARGS__)
#define CPAL_EACH_26(m, x, ...) m(x) CPAL_EACH_25(m, __VA_ARGS__)
#define CPAL_EACH_27(m, x, ...) m(x) CPAL_EACH_26(m, __VA_ARGS__)
#define CPAL_EACH_28(m, x, ...) m(x) CPAL_EACH_27(m, __VA_ARGS__)
#define CPAL_EACH_29(m, x, ...) m(x) CPAL_EACH_28(m, __VA_ARGS__)
#define CPAL_EACH_30(m, x, ...) m(x) CPAL_EACH_29(m, __VA_ARGS__)
#define CPAL_EACH_31(m, x, ...) m(x) CPAL_EACH_30(m, __VA_ARGS__)
#define CPAL_EACH_32(m, x, ...) m(x) CPAL_EACH_31(m, __VA_ARGS__)
#define CPAL_FOR_EACH(m, ...) CPAL_CAT(CPAL_EACH_, CPAL_COUNT_(__VA_ARGS__))(m, __VA_ARGS__)

/* Pairs (type, name) for MOCKABLE_FUNCTION parameter lists, up to 10 parameters. The list always
 * ends with one extra sentinel argument, which MOCKABLE_FUNCTION appends: a function without
 * parameters then still passes one argument to every "..." on the way, since ISO C and C++ (before
 * C++20) require at least one, and -Wpedantic reports an empty "..." in users' builds. So the count
 * is odd: 1 is "no parameters", 2n + 1 is n (type, name) pairs followed by the sentinel. */
#define CPAL_PAIR_1(end) void
#define CPAL_PAIR_3(t1, n1, end) t1 n1
#define CPAL_PAIR_5(t1, n1, ...) t1 n1, CPAL_PAIR_3(__VA_ARGS__)
#define CPAL_PAIR_7(t1, n1, ...) t1 n1, CPAL_PAIR_5(__VA_ARGS__)
#define CPAL_PAIR_9(t1, n1, ...) t1 n1, CPAL_PAIR_7(__VA_ARGS__)
#define CPAL_PAIR_11(t1, n1, ...) t1 n1, CPAL_PAIR_9(__VA_ARGS__)
#define CPAL_PAIR_13(t1, n1, ...) t1 n1, CPAL_PAIR_11(__VA_ARGS__)
#define CPAL_PAIR_15(t1, n1, ...) t1 n1, CPAL_PAIR_13(__VA_ARGS__)
#define CPAL_PAIR_17(t1, n1, ...) t1 n1, CPAL_PAIR_15(__VA_ARGS__)
#define CPAL_PAIR_19(t1, n1, ...) t1 n1, CPAL_PAIR_17(__VA_ARGS__)
#define CPAL_PAIR_21(t1, n1, ...) t1 n1, CPAL_PAIR_19(__VA_ARGS__)
#define CPAL_PARAMS_(...) CPAL_CAT(CPAL_PAIR_, CPAL_COUNT_(__VA_ARGS__))(__VA_ARGS__)
#define CPAL_MOCKABLE_(modifiers, result, name, ...) C_PAL_API result modifiers name(CPAL_PARAMS_(__VA_ARGS__))

#ifndef MOCKABLE_FUNCTION
/* MOCKABLE_FUNCTION(modifiers, result, name, type1, arg1, ...) declares
 * `result modifiers name(type1 arg1, ...)` as part of the public interface;
 * MOCKABLE_FUNCTION(, void, f) declares f(void). */
#define MOCKABLE_FUNCTION(...) CPAL_MOCKABLE_(__VA_ARGS__, CPAL_END_)
#endif

#define CPAL_STR_(x) #x
#define CPAL_STR(x) CPAL_STR_(x)
#define CPAL_ENUM_CONSTANT_(x) x,
#define CPAL_ENUM_STRING_(x) #x,
/* The name of the to-string function of an enum, as macro-utils-c names it: MU_<enum>_ToString. */
#define CPAL_ENUM_TO_STRING_NAME_(enumName) CPAL_CAT(CPAL_CAT(MU_, enumName), _ToString)

#ifndef MU_DEFINE_ENUM
/* Defines `enum <name>_TAG { <name>_INVALID, values... }` typedef'd to <name>, and declares
 * `const char* MU_<name>_ToString(<name> value)`, which MU_DEFINE_ENUM_STRINGS defines in one .c
 * file. Written without the trailing semicolon: the headers put one after it. */
#define MU_DEFINE_ENUM(enumName, ...)                                                                       \
    typedef enum CPAL_CAT(enumName, _TAG) { CPAL_CAT(enumName, _INVALID),                                   \
                                            CPAL_FOR_EACH(CPAL_ENUM_CONSTANT_, __VA_ARGS__) } enumName;     \
    C_PAL_API const char* CPAL_ENUM_TO_STRING_NAME_(enumName)(enumName value)
#endif

#ifndef MU_DEFINE_ENUM_STRINGS
/* The to-string function: the constant's name, "UNKNOWN" for a value that is not one. */
#define MU_DEFINE_ENUM_STRINGS(enumName, ...)                                                               \
    C_PAL_API const char* CPAL_ENUM_TO_STRING_NAME_(enumName)(enumName value)                               \
    {                                                                                                       \
        static const char* const names[] = {CPAL_STR(CPAL_CAT(enumName, _INVALID)),                         \
                                            CPAL_FOR_EACH(CPAL_ENUM_STRING_, __VA_ARGS__)};                 \
        return ((unsigned)value < sizeof(names) / sizeof(names[0])) ? names[(unsigned)value] : "UNKNOWN";    \
    }
#endif

#ifndef MU_ENUM_TO_STRING
/* The name of an enum constant, e.g. MU_ENUM_TO_STRING(ASYNC_SOCKET_OPEN_RESULT, result). */
#define MU_ENUM_TO_STRING(enumName, enumValue) CPAL_ENUM_TO_STRING_NAME_(enumName)(enumValue)
#endif

/* For printf-style formats, as in macro-utils-c: "%" PRI_MU_ENUM takes the three arguments that
 * MU_ENUM_VALUE(type, value) gives, and prints e.g. "ASYNC_SOCKET_OPEN_OK (1)". (The format
 * starts with the "s" of the "%" the caller writes, which prints an empty string.) */
#ifndef PRI_MU_ENUM
#define PRI_MU_ENUM "s%s (%d)"
#endif
#ifndef MU_ENUM_VALUE
#define MU_ENUM_VALUE(enumName, enumValue) "", MU_ENUM_TO_STRING(enumName, (enumValue)), (int)(enumValue)
#endif

#endif /* C_PAL_MACRO_COMPAT_H */
