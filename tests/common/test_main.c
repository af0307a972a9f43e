/* The main() of every test executable (TEST_MAIN in test_main.h): the case filter and --list.
 * Compiled into async_socket_test_main, which links cmocka only, so the black-box suite can use it. */
#include "test_main.h"

int test_main_with_group(int argc, char** argv, const struct CMUnitTest* tests, size_t count,
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

int test_main(int argc, char** argv, const struct CMUnitTest* tests, size_t count, const char* group_name)
{
    return test_main_with_group(argc, argv, tests, count, group_name, NULL, NULL);
}
