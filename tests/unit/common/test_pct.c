/* tests/unit/common/test_pct.c - the %-encodings of tps-protocol §1.4: tables of good, capped
 * and hostile inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/pct.h"

static void
test_pct_encode_form(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        { "jdoe", 4, "jdoe" },
        { "Secret.123", 10, "Secret%2E123" },
        { "TPSClient 1.0", 13, "TPSClient+1%2E0" },
        { "a=b&c", 5, "a%3Db%26c" },
        { "+%~_-", 5, "%2B%25%7E%5F%2D" },
        { "\x00\xff\n", 3, "%00%FF%0A" },
        { "", 0, "" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_buf b;

        cmn_buf_init(&b, 100);
        assert_int_equal(cmn_pct_encode(&b, (const uint8_t *)cases[i].in, cases[i].n), CMN_OK);
        assert_string_equal(cmn_buf_cstr(&b), cases[i].want);
        cmn_buf_cleanup(&b);
    }
}

static void
test_pct_encode_all_uppercase(void **state)
{
    static const uint8_t apdu[] = { 0x00, 0xA4, 0x04, 0x00, 0x00, 0x6f, 0x41, 0x20 };
    struct cmn_buf b;

    (void)state;
    cmn_buf_init(&b, 100);
    assert_int_equal(cmn_pct_encode_all(&b, apdu, sizeof(apdu)), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "%00%A4%04%00%00%6F%41%20");
    cmn_buf_cleanup(&b);
}

static void
test_pct_encode_respects_cap(void **state)
{
    struct cmn_buf b;

    (void)state;
    cmn_buf_init(&b, 8);
    assert_int_equal(cmn_buf_puts(&b, "ab"), CMN_OK);
    /* 2 + 3*2 = 8 fits exactly; one more byte does not, and b stays unchanged. */
    assert_int_equal(cmn_pct_encode_all(&b, (const uint8_t *)"\x01\x02", 2), CMN_OK);
    assert_int_equal(b.len, 8);
    assert_int_equal(cmn_pct_encode(&b, (const uint8_t *)"x", 1), CMN_ETOOBIG);
    assert_int_equal(b.len, 8);
    cmn_buf_reset(&b);
    assert_int_equal(cmn_pct_encode(&b, (const uint8_t *)"abc\x01\x02", 5), CMN_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(cmn_pct_encode_str(&b, NULL), CMN_OK);
    assert_int_equal(cmn_pct_encode_str(&b, "a b"), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "a+b");
    cmn_buf_cleanup(&b);
}

static void
test_pct_decode_good(void **state)
{
    static const struct {
        const char *in;
        const char *want;
        size_t want_len;
    } cases[] = {
        { "o%10%84%08", "o\x10\x84\x08", 4 },
        { "%9fe%01", "\x9f" "e\x01", 3 },    /* lowercase hex accepted */
        { "a+b+", "a b ", 4 },
        { "%00", "\x00", 1 },
        { "Secret%2E123", "Secret.123", 10 },
        { "raw=&text", "raw=&text", 9 },   /* any other char stands for itself */
        { "", "", 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_buf b;
        uint8_t mem[32];
        size_t n = 99;

        cmn_buf_init(&b, 64);
        assert_int_equal(cmn_pct_decode(&b, cases[i].in, strlen(cases[i].in), CMN_PCT_STRICT,
                                        NULL),
                         CMN_OK);
        assert_int_equal(b.len, cases[i].want_len);
        if (b.len > 0)
            assert_memory_equal(b.data, cases[i].want, b.len);
        cmn_buf_cleanup(&b);
        assert_int_equal(cmn_pct_decode_mem(cases[i].in, strlen(cases[i].in), CMN_PCT_STRICT,
                                            mem, sizeof(mem), &n),
                         CMN_OK);
        assert_int_equal(n, cases[i].want_len);
        assert_memory_equal(mem, cases[i].want, n);
    }
}

static void
test_pct_decode_malformed(void **state)
{
    static const struct {
        const char *in;
        size_t bad;
        const char *lenient;
    } cases[] = {
        { "%", 0, "%" },
        { "ab%4", 2, "ab%4" },
        { "%G1", 0, "%G1" },
        { "%1G", 0, "%1G" },
        { "x%%26y", 1, "x%&y" }, /* tpsclient's joiner (§7.3) */
        { "%20%", 3, " %" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_buf b;
        size_t bad = 999;

        cmn_buf_init(&b, 64);
        assert_int_equal(cmn_buf_puts(&b, "keep"), CMN_OK);
        assert_int_equal(cmn_pct_decode(&b, cases[i].in, strlen(cases[i].in), CMN_PCT_STRICT,
                                        &bad),
                         CMN_EINVAL);
        assert_int_equal(bad, cases[i].bad);
        assert_int_equal(b.len, 4); /* unchanged on failure */
        cmn_buf_reset(&b);
        assert_int_equal(cmn_pct_decode(&b, cases[i].in, strlen(cases[i].in), CMN_PCT_LENIENT,
                                        NULL),
                         CMN_OK);
        assert_string_equal(cmn_buf_cstr(&b), cases[i].lenient);
        cmn_buf_cleanup(&b);
    }
}

static void
test_pct_decode_caps(void **state)
{
    struct cmn_buf b;
    uint8_t mem[3];
    size_t n = 0;

    (void)state;
    /* "%41%42%43" decodes to 3 bytes: fits a cap of 3 although the input is 9 long. */
    cmn_buf_init(&b, 3);
    assert_int_equal(cmn_pct_decode(&b, "%41%42%43", 9, CMN_PCT_STRICT, NULL), CMN_OK);
    assert_int_equal(b.len, 3);
    assert_int_equal(cmn_pct_decode(&b, "D", 1, CMN_PCT_STRICT, NULL), CMN_ETOOBIG);
    assert_int_equal(b.len, 3);
    cmn_buf_cleanup(&b);
    assert_int_equal(cmn_pct_decode_mem("%41%42%43", 9, CMN_PCT_STRICT, mem, 3, &n), CMN_OK);
    assert_int_equal(n, 3);
    assert_int_equal(cmn_pct_decode_mem("ABCD", 4, CMN_PCT_STRICT, mem, 3, &n), CMN_ETOOBIG);
}

static void
test_pct_roundtrip_all_bytes(void **state)
{
    uint8_t all[256], back[256];
    struct cmn_buf enc;
    size_t n = 0;

    (void)state;
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (int mode = 0; mode < 2; mode++) {
        cmn_buf_init(&enc, 1000);
        if (mode == 0)
            assert_int_equal(cmn_pct_encode(&enc, all, 256), CMN_OK);
        else
            assert_int_equal(cmn_pct_encode_all(&enc, all, 256), CMN_OK);
        /* Nothing in an encoding may break a message: no & = CR LF or lowercase hex. */
        for (size_t i = 0; i < enc.len; i++) {
            assert_true(enc.data[i] != '&' && enc.data[i] != '=' && enc.data[i] != '\r' &&
                        enc.data[i] != '\n' && enc.data[i] >= 0x20 && enc.data[i] < 0x7f);
            if (enc.data[i] == '%') {
                assert_true(strchr("0123456789ABCDEF", enc.data[i + 1]) != NULL);
                assert_true(strchr("0123456789ABCDEF", enc.data[i + 2]) != NULL);
            }
        }
        assert_int_equal(cmn_pct_decode_mem((const char *)enc.data, enc.len, CMN_PCT_STRICT,
                                            back, sizeof(back), &n),
                         CMN_OK);
        assert_int_equal(n, 256);
        assert_memory_equal(back, all, 256);
        cmn_buf_cleanup(&enc);
    }
}

static void
test_pct_hash_roundtrip_and_errors(void **state)
{
    static const uint8_t kdd[] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0x12, 0x34, 0x56, 0x78};
    struct cmn_buf b;
    uint8_t out[16];
    size_t n;

    (void)state;
    cmn_buf_init(&b, 64);
    assert_int_equal(cmn_pct_hash_append(&b, kdd, sizeof(kdd)), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "#40#90#79#01#00#1F#12#34#56#78");
    assert_int_equal(cmn_pct_hash_decode((const char *)b.data, b.len, false, out, sizeof(out), &n),
                     CMN_OK);
    assert_int_equal(n, sizeof(kdd));
    assert_memory_equal(out, kdd, sizeof(kdd));
    /* lower case, '+' as space, '%' only when asked for */
    assert_int_equal(cmn_pct_hash_decode("#1f+%41", 7, false, out, sizeof(out), &n), CMN_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "\x1f %41", 5);
    assert_int_equal(cmn_pct_hash_decode("#1f+%41", 7, true, out, sizeof(out), &n), CMN_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\x1f A", 3);
    assert_int_equal(cmn_pct_hash_decode("#4", 2, false, out, sizeof(out), &n), CMN_EINVAL);
    assert_int_equal(cmn_pct_hash_decode("#4G", 3, false, out, sizeof(out), &n), CMN_EINVAL);
    assert_int_equal(cmn_pct_hash_decode("#41#42", 6, false, out, 1, &n), CMN_ETOOBIG);
    /* the cap holds: 30 + 12 x 3 characters exceed 64, and nothing is appended */
    assert_int_equal(cmn_pct_hash_append(&b, out, 12), CMN_ETOOBIG);
    assert_int_equal(b.len, 30);
    cmn_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pct_hash_roundtrip_and_errors),
        cmocka_unit_test(test_pct_encode_form),
        cmocka_unit_test(test_pct_encode_all_uppercase),
        cmocka_unit_test(test_pct_encode_respects_cap),
        cmocka_unit_test(test_pct_decode_good),
        cmocka_unit_test(test_pct_decode_malformed),
        cmocka_unit_test(test_pct_decode_caps),
        cmocka_unit_test(test_pct_roundtrip_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
