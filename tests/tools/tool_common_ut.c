/* Unit tests for the pure helpers of tools/tool_common.c (flag parsing and wait arithmetic). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_main.h"
#include "tool_common.h"

/* A deadline already passed means no wait at all, not a wrapped-around unsigned difference. */
static void ms_until_a_passed_deadline_is_0(void** state)
{
    (void)state;
    assert_int_equal(tool_ms_until(5000000000ull, 1000000000ull, 100), 0);
    assert_int_equal(tool_ms_until(1000000001ull, 1000000000ull, 100), 0);
    assert_int_equal(tool_ms_until(1000000000ull, 1000000000ull, 100), 0);
}

static void ms_until_rounds_up_and_caps(void** state)
{
    (void)state;
    assert_int_equal(tool_ms_until(0, 1, 100), 1);
    assert_int_equal(tool_ms_until(0, 1000000, 100), 1);
    assert_int_equal(tool_ms_until(0, 1000001, 100), 2);
    assert_int_equal(tool_ms_until(0, 99000000, 100), 99);
    assert_int_equal(tool_ms_until(0, 5000000000ull, 100), 100);
    assert_int_equal(tool_ms_until(0, UINT64_MAX, UINT32_MAX), UINT32_MAX);
}

static void parse_uint_takes_the_range_and_refuses_the_rest(void** state)
{
    (void)state;
    uint64_t value = 7;
    assert_true(tool_parse_uint("t", "--n", "65535", 0, 65535, &value));
    assert_int_equal(value, 65535);
    value = 7;
    assert_false(tool_parse_uint("t", "--n", "65536", 0, 65535, &value));
    assert_false(tool_parse_uint("t", "--n", "-1", 0, 65535, &value));
    assert_false(tool_parse_uint("t", "--n", " 1", 0, 65535, &value));
    assert_false(tool_parse_uint("t", "--n", "1x", 0, 65535, &value));
    assert_false(tool_parse_uint("t", "--n", "", 0, 65535, &value));
    assert_false(tool_parse_uint("t", "--n", "99999999999999999999999", 0, UINT64_MAX, &value));
    assert_int_equal(value, 7);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(ms_until_a_passed_deadline_is_0),
    cmocka_unit_test(ms_until_rounds_up_and_caps),
    cmocka_unit_test(parse_uint_takes_the_range_and_refuses_the_rest),
};

TEST_MAIN(tests)
