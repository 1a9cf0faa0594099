/* tests/unit/tkskey/test_keyfile.c - share and wrapped-key file formats of tkskey. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tools/tkskey/keyfile.h"

static void
test_keyfile_share_roundtrip(void **state)
{
    struct kt_share s, back;
    char text[256], err[128];

    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 16; i++)
        s.key[i] = (uint8_t)(0x40 + i);
    s.len = 16;
    s.kcv[0] = 0x8B;
    s.kcv[1] = 0xAF;
    s.kcv[2] = 0x47;
    assert_true(kt_share_format(&s, text, sizeof(text)));
    assert_string_equal(text, "share: 4041 4243 4445 4647 4849 4A4B 4C4D 4E4F\nkcv: 8BAF 47\n");
    assert_true(kt_share_parse(text, strlen(text), &back, err, sizeof(err)));
    assert_int_equal(back.len, 16);
    assert_memory_equal(back.key, s.key, 16);
    assert_true(back.has_kcv);
    assert_memory_equal(back.kcv, s.kcv, 3);
    assert_false(kt_share_format(&s, text, 20)); /* too small: refused, not truncated */
}

static void
test_keyfile_share_hostile(void **state)
{
    static const char *bad[] = {
        "",
        "kcv: 8BAF47\n",
        "share: 4041\n",                                         /* too short */
        "share: 40414243444546474849 4A4B4C4D4E4F4\n",           /* odd digits */
        "share: 404142434445464748494A4B4C4D4E4F\nkcv: 8B\n",    /* short KCV */
        "share: 404142434445464748494A4B4C4D4E4F40414243444546474849404142434445464748494A\n",
    };
    struct kt_share s;
    char err[128];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_false(kt_share_parse(bad[i], strlen(bad[i]), &s, err, sizeof(err)));
        assert_true(err[0] != 0);
        assert_int_equal(s.len, 0); /* nothing half-parsed is left behind */
    }
}

static void
test_keyfile_tkstool_format(void **state)
{
    /* the developer key wrapped under itself, and its KCV (card spec vectors) */
    static const char text[] = "B4BA A89A 8CD0 292B 4521 0E1B C84B 1C31\n8BAF 4700\n";
    struct kt_wrapped w, back;
    char out[256], err[128];

    (void)state;
    assert_true(kt_wrapped_parse(text, strlen(text), &w, err, sizeof(err)));
    assert_int_equal(w.fmt, KT_WRAP_TKSTOOL);
    assert_int_equal(w.type, KT_KEY_DES2);
    assert_int_equal(w.wrapped_len, 16);
    assert_int_equal(w.wrapped[0], 0xB4);
    assert_int_equal(w.kcv_len, 4);
    assert_true(kt_wrapped_format(&w, out, sizeof(out)));
    assert_string_equal(out, text);
    assert_true(kt_wrapped_parse(out, strlen(out), &back, err, sizeof(err)));
    assert_memory_equal(&back, &w, sizeof(w));
}

static void
test_keyfile_kwp_format(void **state)
{
    struct kt_wrapped w, back;
    char out[512], err[128];

    (void)state;
    memset(&w, 0, sizeof(w));
    w.fmt = KT_WRAP_KWP;
    w.type = KT_KEY_AES256;
    memcpy(w.label, "#02#03", 7);
    w.wrapped_len = 40;
    for (int i = 0; i < 40; i++)
        w.wrapped[i] = (uint8_t)i;
    w.kcv_len = 3;
    w.kcv[0] = 1;
    assert_true(kt_wrapped_format(&w, out, sizeof(out)));
    assert_non_null(strstr(out, "key-type: aes256\n"));
    assert_true(kt_wrapped_parse(out, strlen(out), &back, err, sizeof(err)));
    assert_memory_equal(&back, &w, sizeof(w));

    /* each missing or broken field is named */
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"tkskey-wrapped-key: 1\nformat: kwp\n", "missing"},
        {"tkskey-wrapped-key: 1\nformat: ecb\n", "format"},
        {"tkskey-wrapped-key: 1\nformat: kwp\nkey-type: rc4\n", "key-type"},
        {"tkskey-wrapped-key: 1\nformat: kwp\nkey-type: des2\nlabel: x\nkcv: 0102\n"
         "wrapped: 00112233445566778899AABBCCDDEEFF0011223344556677\n",
         "kcv"},
        {"tkskey-wrapped-key: 1\nformat: kwp\nkey-type: des2\nlabel: x\nkcv: 010203\n"
         "wrapped: 0011\n",
         "wrapped"},
        {"hello world", "tkstool"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_false(kt_wrapped_parse(bad[i].text, strlen(bad[i].text), &back, err, sizeof(err)));
        assert_non_null(strstr(err, bad[i].why));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyfile_share_roundtrip),
        cmocka_unit_test(test_keyfile_share_hostile),
        cmocka_unit_test(test_keyfile_tkstool_format),
        cmocka_unit_test(test_keyfile_kwp_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
