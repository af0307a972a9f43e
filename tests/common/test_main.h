/* The main() of every test executable.
 *
 * ctest runs each cmocka case as its own entry: `<exe> <case>`. The case name is applied as a
 * cmocka filter (a glob, like cmocka's own). A name that matches no case is an error, so a renamed
 * or deleted case cannot pass silently by running nothing. `<exe> --list` prints the case names;
 * `<exe>` alone runs every case. The group is named after the test's source file.
 *
 *     static const struct CMUnitTest tests[] = { cmocka_unit_test(foo_succeeds), ... };
 *     TEST_MAIN(tests)
 */
#ifndef TEST_MAIN_H
#define TEST_MAIN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

static inline int test_main_with_group(int argc, char** argv, const struct CMUnitTest* tests, size_t count,
                                       const char* group_name, CMFixtureFunction group_setup,
                                       CMFixtureFunction group_teardown)
{
    const char* slash = strrchr(group_name, '/');
    if (slash != NULL)
    {
        group_name = slash + 1;
    }
    if (argc > 1)
    {
        const char* pattern = argv[1];
        size_t matched = 0;

        for (size_t i = 0; i < count; i++)
        {
            if (strcmp(pattern, "--list") == 0)
            {
                (void)printf("%s\n", tests[i].name);
            }
            else if (fnmatch(pattern, tests[i].name, 0) == 0)
            {
                matched++;
            }
        }
        if (strcmp(pattern, "--list") == 0)
        {
            return 0;
        }
        if (matched == 0)
        {
            (void)fprintf(stderr, "%s: no test case matches '%s'; the cases are:\n", group_name, pattern);
            for (size_t i = 0; i < count; i++)
            {
                (void)fprintf(stderr, "  %s\n", tests[i].name);
            }
            return 1;
        }
        cmocka_set_test_filter(pattern);
    }
    return _cmocka_run_group_tests(group_name, tests, count, group_setup, group_teardown);
}

static inline int test_main(int argc, char** argv, const struct CMUnitTest* tests, size_t count, const char* group_name)
{
    return test_main_with_group(argc, argv, tests, count, group_name, NULL, NULL);
}

#define TEST_MAIN(tests)                                                                           \
    int main(int argc, char** argv)                                                                \
    {                                                                                              \
        return test_main(argc, argv, (tests), sizeof(tests) / sizeof((tests)[0]), __FILE__);         \
    }

/* Same, with group fixtures run once around the selected cases. */
#define TEST_MAIN_WITH_GROUP(tests, group_setup, group_teardown)                                  \
    int main(int argc, char** argv)                                                                \
    {                                                                                              \
        return test_main_with_group(argc, argv, (tests), sizeof(tests) / sizeof((tests)[0]),      \
                                    __FILE__, (group_setup), (group_teardown));                      \
    }

#endif /* TEST_MAIN_H */
