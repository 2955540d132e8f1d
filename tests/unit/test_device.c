/* Device strings: parsing, formatting and their round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nixl_connect.h"

static void assert_parses(const char *text, nxc_device_kind_t kind, int id)
{
    nxc_device_t d = { NXC_DEVICE_UNSPECIFIED, -1 };
    int rc = nxc_device_parse(text, &d);
    if (rc != NXC_OK)
        fail_msg("\"%s\" did not parse: %s", text, nxc_last_error());
    assert_int_equal(d.kind, kind);
    assert_int_equal(d.id, id);
}

static void test_host_spellings(void **state)
{
    (void)state;
    assert_parses("cpu", NXC_DEVICE_HOST, 0);
    assert_parses("host", NXC_DEVICE_HOST, 0);
    assert_parses("CPU", NXC_DEVICE_HOST, 0);
    assert_parses("HoSt", NXC_DEVICE_HOST, 0);
    assert_parses("\t cpu\n", NXC_DEVICE_HOST, 0);
}

static void test_cuda_spellings(void **state)
{
    (void)state;
    assert_parses("cuda", NXC_DEVICE_CUDA, 0);
    assert_parses(" cuda ", NXC_DEVICE_CUDA, 0);
    assert_parses("gpu", NXC_DEVICE_CUDA, 0);
    assert_parses("cuda:3", NXC_DEVICE_CUDA, 3);
    assert_parses("GPU:1", NXC_DEVICE_CUDA, 1);
    assert_parses("Cuda:0", NXC_DEVICE_CUDA, 0);
    assert_parses("cuda:007", NXC_DEVICE_CUDA, 7);
    assert_parses("cuda:65535", NXC_DEVICE_CUDA, 65535);
}

static void test_junk_is_refused(void **state)
{
    (void)state;
    static const char *const junk[] = {
        "", " ", "tpu", "cuda:", "cuda:-1", "cuda:1x", "cuda:65536", "cuda:99999999999999999999",
        "cpu:0", "host:1", "gpu:", "cuda::1", "cuda: 1", "cuda :1", "cu da", "cpux", "xcpu",
        "cuda:+1", "cuda:0x1", ":1", "cpu\x01", "cuda:1 2",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        nxc_device_t d = { NXC_DEVICE_HOST, 42 };
        int rc = nxc_device_parse(junk[i], &d);
        if (rc != NXC_ERR_DEVICE)
            fail_msg("\"%s\" gave %d, expected NXC_ERR_DEVICE", junk[i], rc);
        /* the output is written only on success */
        assert_int_equal(d.kind, NXC_DEVICE_HOST);
        assert_int_equal(d.id, 42);
        /* the detail quotes the text (printable forms only) */
        assert_non_null(strstr(nxc_last_error(), "device \""));
    }
    nxc_device_parse("tpu", &(nxc_device_t){ 0 });
    assert_non_null(strstr(nxc_last_error(), "\"tpu\""));
}

static void test_null_arguments(void **state)
{
    (void)state;
    nxc_device_t d;
    assert_int_equal(nxc_device_parse(NULL, &d), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_device_parse("cpu", NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_HOST, 0 }, NULL, 16),
                     NXC_ERR_INVALID_ARG);
}

static void test_format(void **state)
{
    (void)state;
    char buf[16];
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_HOST, 0 }, buf, sizeof buf), 3);
    assert_string_equal(buf, "cpu");
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_CUDA, 0 }, buf, sizeof buf), 6);
    assert_string_equal(buf, "cuda:0");
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_CUDA, 65535 }, buf, sizeof buf),
                     10);
    assert_string_equal(buf, "cuda:65535");
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_UNSPECIFIED, 0 }, buf, 16),
                     NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_device_format((nxc_device_t){ (nxc_device_kind_t)7, 0 }, buf, 16),
                     NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_CUDA, -1 }, buf, 16),
                     NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_CUDA, 65536 }, buf, 16),
                     NXC_ERR_INVALID_ARG);
}

static void test_format_buffer_too_small(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, 'x', sizeof buf);
    /* "cpu" needs 4 bytes with its NUL */
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_HOST, 0 }, buf, 3),
                     NXC_ERR_NO_MEMORY);
    assert_int_equal(buf[0], 'x'); /* untouched on failure */
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_HOST, 0 }, buf, 0),
                     NXC_ERR_NO_MEMORY);
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_HOST, 0 }, buf, 4), 3);
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_CUDA, 12 }, buf, 7),
                     NXC_ERR_NO_MEMORY);
    assert_int_equal(nxc_device_format((nxc_device_t){ NXC_DEVICE_CUDA, 12 }, buf, 8), 7);
    assert_string_equal(buf, "cuda:12");
}

static void test_round_trip(void **state)
{
    (void)state;
    static const nxc_device_t devs[] = {
        { NXC_DEVICE_HOST, 0 }, { NXC_DEVICE_CUDA, 0 }, { NXC_DEVICE_CUDA, 1 },
        { NXC_DEVICE_CUDA, 255 }, { NXC_DEVICE_CUDA, 65535 },
    };
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        char buf[16];
        nxc_device_t back;
        assert_true(nxc_device_format(devs[i], buf, sizeof buf) > 0);
        assert_int_equal(nxc_device_parse(buf, &back), NXC_OK);
        assert_int_equal(back.kind, devs[i].kind);
        assert_int_equal(back.id, devs[i].id);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_spellings),
        cmocka_unit_test(test_cuda_spellings),
        cmocka_unit_test(test_junk_is_refused),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_buffer_too_small),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
