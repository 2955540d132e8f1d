/* Names of enums, error sentences, the thread-local detail, the version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "nixl_connect.h"

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(nxc_op_status_name(NXC_OP_UNINITIALIZED), "<invalid>");
    assert_string_equal(nxc_op_status_name(NXC_OP_INITIALIZED), "INIT");
    assert_string_equal(nxc_op_status_name(NXC_OP_IN_PROGRESS), "PROC");
    assert_string_equal(nxc_op_status_name(NXC_OP_COMPLETE), "DONE");
    assert_string_equal(nxc_op_status_name(NXC_OP_CANCELLED), "STOP");
    assert_string_equal(nxc_op_status_name(NXC_OP_ERRORED), "ERR");
    assert_string_equal(nxc_op_status_name((nxc_op_status_t)6), "<invalid>");
    assert_string_equal(nxc_op_status_name((nxc_op_status_t)-1), "<invalid>");
    assert_string_equal(nxc_op_status_name((nxc_op_status_t)1000), "<invalid>");
}

static void test_enum_values_are_dynamos(void **state)
{
    (void)state;
    assert_int_equal(NXC_OP_UNINITIALIZED, 0);
    assert_int_equal(NXC_OP_ERRORED, 5);
    assert_int_equal(NXC_OP_READ, 1);
    assert_int_equal(NXC_OP_WRITE, 2);
    assert_int_equal(NXC_DEVICE_HOST, 1);
    assert_int_equal(NXC_DEVICE_CUDA, 2);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(nxc_op_kind_name(NXC_OP_READ), "READ");
    assert_string_equal(nxc_op_kind_name(NXC_OP_WRITE), "WRITE");
    assert_string_equal(nxc_op_kind_name(NXC_OP_KIND_UNSPECIFIED), "<invalid>");
    assert_string_equal(nxc_op_kind_name((nxc_op_kind_t)3), "<invalid>");
    assert_string_equal(nxc_op_kind_name((nxc_op_kind_t)-7), "<invalid>");
}

static void test_strerror_every_code(void **state)
{
    (void)state;
    const char *seen[16];
    for (int code = 0; code >= NXC_ERR_RECURSIVE; code--) {
        const char *s = nxc_strerror(code);
        assert_non_null(s);
        assert_true(strlen(s) > 5);
        assert_string_not_equal(s, nxc_strerror(12345)); /* not the generic one */
        for (int k = 0; k < -code; k++)
            if (strcmp(seen[k], s) == 0)
                fail_msg("codes %d and %d share the sentence \"%s\"", -k, code, s);
        seen[-code] = s;
    }
}

static void test_strerror_unknown(void **state)
{
    (void)state;
    const char *generic = nxc_strerror(-16);
    assert_non_null(generic);
    assert_true(strlen(generic) > 0);
    assert_string_equal(nxc_strerror(1), generic);
    assert_string_equal(nxc_strerror(-1000), generic);
    assert_string_equal(nxc_strerror(INT32_MIN), generic);
}

static void test_err_name(void **state)
{
    (void)state;
    assert_string_equal(nxc_err_name(NXC_OK), "NXC_OK");
    assert_string_equal(nxc_err_name(NXC_ERR_TIMED_OUT), "NXC_ERR_TIMED_OUT");
    assert_string_equal(nxc_err_name(NXC_ERR_RECURSIVE), "NXC_ERR_RECURSIVE");
    assert_string_equal(nxc_err_name(NXC_ERR_RECURSIVE - 1), "NXC_ERR_UNKNOWN");
    assert_string_equal(nxc_err_name(1), "NXC_ERR_UNKNOWN");
    assert_string_equal(nxc_err_name(INT32_MIN), "NXC_ERR_UNKNOWN");
}

static void test_compatibility(void **state)
{
    (void)state;
    assert_int_equal(NXC_CHECK_COMPATIBILITY(), NXC_OK);
    assert_int_equal(nxc_check_compatibility(NXC_VERSION_MAJOR, 0, 99), NXC_OK);
    assert_int_equal(nxc_check_compatibility(NXC_VERSION_MAJOR, NXC_VERSION_MINOR + 1, 0),
                     NXC_ERR_UNSUPPORTED);
    assert_non_null(strstr(nxc_last_error(), nxc_version()));
    assert_int_equal(nxc_check_compatibility(NXC_VERSION_MAJOR + 1, 0, 0),
                     NXC_ERR_UNSUPPORTED);
}

static void test_last_error_set_by_failure(void **state)
{
    (void)state;
    nxc_device_t d;
    assert_int_equal(nxc_device_parse("cpu", &d), NXC_OK);
    assert_string_equal(nxc_last_error(), ""); /* success leaves no detail */
    assert_int_equal(nxc_device_parse("quantum", &d), NXC_ERR_DEVICE);
    assert_non_null(strstr(nxc_last_error(), "\"quantum\""));
    assert_int_equal(nxc_device_parse("cpu", &d), NXC_OK);
    assert_string_equal(nxc_last_error(), "");
}

static void test_fail_formats_and_wraps(void **state)
{
    (void)state;
    assert_int_equal(nxc_fail(NXC_ERR_STATE, "op %d is %s", 7, "done"), NXC_ERR_STATE);
    assert_string_equal(nxc_last_error(), "op 7 is done");
    /* wrapping the current detail in more context is allowed */
    nxc_fail(NXC_ERR_STATE, "outer: %s", nxc_last_error());
    assert_string_equal(nxc_last_error(), "outer: op 7 is done");
    nxc_clear_error();
    assert_string_equal(nxc_last_error(), "");
}

static void test_fail_truncates_long_detail(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    nxc_fail(NXC_ERR_SYSTEM, "%s", big);
    size_t n = strlen(nxc_last_error());
    assert_true(n > 100 && n < sizeof big);
}

static void test_quote(void **state)
{
    (void)state;
    char buf[80];
    assert_string_equal(nxc_quote("abc", 3, buf, sizeof buf), "\"abc\"");
    assert_string_equal(nxc_quote("a\"b\n", 4, buf, sizeof buf), "\"a\\x22b\\x0a\"");
    char big[300];
    memset(big, 'z', sizeof big);
    const char *q = nxc_quote(big, sizeof big, buf, sizeof buf);
    assert_true(strlen(q) < sizeof buf);
    assert_non_null(strstr(q, "\"..."));
}

static void test_version(void **state)
{
    (void)state;
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", NXC_VERSION_MAJOR, NXC_VERSION_MINOR,
             NXC_VERSION_PATCH);
    assert_string_equal(nxc_version(), expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_enum_values_are_dynamos),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_strerror_every_code),
        cmocka_unit_test(test_strerror_unknown),
        cmocka_unit_test(test_err_name),
        cmocka_unit_test(test_compatibility),
        cmocka_unit_test(test_last_error_set_by_failure),
        cmocka_unit_test(test_fail_formats_and_wraps),
        cmocka_unit_test(test_fail_truncates_long_detail),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
