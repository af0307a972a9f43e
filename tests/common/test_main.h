/* The main() of every test executable.
 *
 * ctest runs each cmocka case as its own entry: `<exe> <case>`. The case name is applied as a
 * cmocka filter (a glob, like cmocka's own). A name that matches no case is an error, so a renamed
 * or deleted case cannot pass silently by running nothing. `<exe> --list` prints the case names;
 * `<exe>` alone runs every case. The group is named after the test's source file.
 *
 *     static const struct CMUnitTest tests[] = { cmocka_unit_test(foo_succeeds), ... };
 *     TEST_MAIN(tests)
 *
 * The functions are in test_main.c, compiled into the library async_socket_test_main (cmocka
 * only, so the black-box suite can use it too), which CMake links into every test file that
 * includes this header.
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

int test_main_with_group(int argc, char** argv, const struct CMUnitTest* tests, size_t count,
                         const char* group_name, CMFixtureFunction group_setup,
                         CMFixtureFunction group_teardown);

int test_main(int argc, char** argv, const struct CMUnitTest* tests, size_t count, const char* group_name);

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
