/* tests/unit/common/test_buf.c - capped buffers, cursors, hex, integer parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void
test_buf_append_respects_cap(void **state)
{
    struct cmn_buf b;

    (void)state;
    cmn_buf_init(&b, 8);
    assert_int_equal(cmn_buf_append(&b, "12345678", 8), CMN_OK);
    assert_int_equal(cmn_buf_append(&b, "9", 1), CMN_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "12345678", 8);
    assert_string_equal(cmn_buf_cstr(&b), "12345678");
    cmn_buf_consume(&b, 3);
    assert_string_equal(cmn_buf_cstr(&b), "45678");
    cmn_buf_cleanup(&b);
    cmn_buf_cleanup(&b); /* twice is harmless */
}

static void
test_buf_printf_grows(void **state)
{
    struct cmn_buf b;

    (void)state;
    cmn_buf_init_secret(&b, 1000);
    for (int i = 0; i < 50; i++)
        assert_int_equal(cmn_buf_printf(&b, "%02d", i), CMN_OK);
    assert_int_equal(b.len, 100);
    assert_int_equal(memcmp(b.data, "000102", 6), 0);
    assert_int_equal(cmn_buf_printf(&b, "%901d", 1), CMN_ETOOBIG);
    assert_int_equal(b.len, 100);
    cmn_buf_cleanup(&b);
}

static void
test_rd_never_overreads(void **state)
{
    static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05};
    struct cmn_rd r;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    const uint8_t *p;

    (void)state;
    cmn_rd_init(&r, in, sizeof(in));
    assert_true(cmn_rd_u16(&r, &u16));
    assert_int_equal(u16, 0x0102);
    assert_false(cmn_rd_u32(&r, &u32)); /* only 3 left */
    assert_int_equal(r.left, 3);
    assert_true(cmn_rd_u8(&r, &u8));
    assert_int_equal(u8, 3);
    assert_false(cmn_rd_take(&r, 3, &p));
    assert_true(cmn_rd_take(&r, 2, &p));
    assert_int_equal(r.left, 0);
    assert_false(cmn_rd_u8(&r, &u8));
}

static void
test_hex_roundtrip_and_errors(void **state)
{
    static const uint8_t k[] = {0x40, 0x41, 0x8b, 0xaf, 0x47};
    char s[11];
    uint8_t out[5];
    size_t n;

    (void)state;
    assert_int_equal(cmn_hex_encode(k, 5, s, sizeof(s)), CMN_OK);
    assert_string_equal(s, "40418BAF47");
    assert_int_equal(cmn_hex_encode(k, 5, s, 10), CMN_ETOOBIG);
    assert_int_equal(cmn_hex_decode("40418baf47", 10, false, out, 5, &n), CMN_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(out, k, 5);
    assert_int_equal(cmn_hex_decode("40 41 8B AF 47", 14, true, out, 5, &n), CMN_OK);
    assert_int_equal(n, 5);
    assert_int_equal(cmn_hex_decode("404", 3, false, out, 5, &n), CMN_EINVAL);
    assert_int_equal(cmn_hex_decode("4g", 2, false, out, 5, &n), CMN_EINVAL);
    assert_int_equal(cmn_hex_decode("404142434445", 12, false, out, 5, &n), CMN_ETOOBIG);
}

static void
test_parse_uint_table(void **state)
{
    static const struct {
        const char *s;
        unsigned long long min, max, want;
        enum cmn_rc rc;
    } cases[] = {
        {"0", 0, 10, 0, CMN_OK},
        {"9999", 1, 9999, 9999, CMN_OK},
        {"10000", 1, 9999, 0, CMN_ETOOBIG},
        {"0", 1, 9999, 0, CMN_ETOOBIG},
        {"", 0, 10, 0, CMN_EINVAL},
        {"-1", 0, 10, 0, CMN_EINVAL},
        {"1 ", 0, 10, 0, CMN_EINVAL},
        {"99999999999999999999999", 0, ~0ULL, 0, CMN_ETOOBIG},
        {"18446744073709551615", 0, ~0ULL, ~0ULL, CMN_OK},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned long long v = 12345;

        assert_int_equal(cmn_parse_uint(cases[i].s, cases[i].min, cases[i].max, &v), cases[i].rc);
        assert_true(cases[i].rc == CMN_OK ? v == cases[i].want : v == 12345);
    }
}

static void
test_ct_memcmp(void **state)
{
    (void)state;
    assert_int_equal(cmn_ct_memcmp("abcd", "abcd", 4), 0);
    assert_int_not_equal(cmn_ct_memcmp("abcd", "abce", 4), 0);
    assert_string_equal(cmn_strerror(CMN_ETOOBIG), "larger than the allowed maximum");
    assert_non_null(cmn_strerror((enum cmn_rc)999));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_respects_cap),
        cmocka_unit_test(test_buf_printf_grows),
        cmocka_unit_test(test_rd_never_overreads),
        cmocka_unit_test(test_hex_roundtrip_and_errors),
        cmocka_unit_test(test_parse_uint_table),
        cmocka_unit_test(test_ct_memcmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
