/* Small stand-ins for the declaration macros that the async_socket API is written with.
 *
 * The requirements declare their API with MOCKABLE_FUNCTION (from umock_c) and their enums with
 * MU_DEFINE_ENUM (from macro_utils). Neither library is packaged for Debian, so this header gives
 * compatible definitions. Every definition is guarded: a user who includes the real macro
 * libraries first keeps theirs.
 *
 * ABI note: like the real MU_DEFINE_ENUM, ours puts an <enum>_INVALID constant first (value 0), so
 * the numeric values of the enum constants are the same whichever definition a user compiles with.
 * The to-string functions (<enum>Strings) are exported by the library under the same names.
 */
#ifndef C_PAL_MACRO_COMPAT_H
#define C_PAL_MACRO_COMPAT_H

/* Marks a symbol as part of the shared library's public interface (the build uses
 * -fvisibility=hidden, so everything without it stays internal). */
#ifndef C_PAL_API
#define C_PAL_API __attribute__((visibility("default")))
#endif

#ifndef MU_TOSTRING
#define MU_TOSTRING_(x) #x
#define MU_TOSTRING(x) MU_TOSTRING_(x)
#endif

#ifndef MU_C2
#define MU_C2_(a, b) a##b
#define MU_C2(a, b) MU_C2_(a, b)
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

#ifndef MU_DEFINE_ENUM
#define CPAL_ENUM_CONSTANT_(x) x,
#define CPAL_ENUM_STRING_(x) #x,

/* Defines `enum <name>_TAG { <name>_INVALID, values... }` typedef'd to <name>, and declares
 * `const char* <name>Strings(<name> value)` which MU_DEFINE_ENUM_STRINGS defines in one .c file. */
#define MU_DEFINE_ENUM(enumName, ...)                                                                                 \
    typedef enum MU_C2(enumName, _TAG) { MU_C2(enumName, _INVALID), CPAL_FOR_EACH(CPAL_ENUM_CONSTANT_, __VA_ARGS__) } \
        enumName;                                                                                                     \
    C_PAL_API const char* MU_C2(enumName, Strings)(enumName value)

#define MU_DEFINE_ENUM_STRINGS(enumName, ...)                                                                \
    C_PAL_API const char* MU_C2(enumName, Strings)(enumName value)                                           \
    {                                                                                                        \
        static const char* const names[] = {MU_TOSTRING(MU_C2(enumName, _INVALID)),                          \
                                            CPAL_FOR_EACH(CPAL_ENUM_STRING_, __VA_ARGS__)};                  \
        return ((unsigned)value < sizeof(names) / sizeof(names[0])) ? names[(unsigned)value] : "UNKNOWN";     \
    }
#endif

#ifndef MU_ENUM_TO_STRING
#define MU_ENUM_TO_STRING(enumName, enumValue) MU_C2(enumName, Strings)(enumValue)
#endif

#ifndef MU_ENUM_VALUE
/* For printf-style logging: MU_ENUM_FORMAT with MU_ENUM_VALUE(type, value). */
#define MU_ENUM_FORMAT "%s (%d)"
#define MU_ENUM_VALUE(enumName, enumValue) MU_ENUM_TO_STRING(enumName, (enumValue)), (int)(enumValue)
#endif

#endif /* C_PAL_MACRO_COMPAT_H */
