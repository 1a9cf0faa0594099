/* tests/unit/sim/test_form.c - pki-sim request decoding: form bodies (split on '&', then on the
 * first '='), the HASH encoding of backends §0, base64 as servers send it, group membership. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/sim/sim.h"

static void
test_form_parse_pairs(void **state)
{
    static const char body[] = "a=1&b=&c&&d=%41+B&k=x=y&t=abc==&a=2";
    struct sim_form f;
    const struct sim_param *p;

    (void)state;
    memset(&f, 0, sizeof(f));
    assert_int_equal(sim_form_parse(body, strlen(body), &f), CMN_OK);
    assert_int_equal(f.n, 7); /* the empty pair between && is skipped */
    assert_string_equal(sim_form_get(&f, "a")->val, "1"); /* first occurrence wins */
    assert_string_equal(sim_form_get(&f, "b")->val, "");
    p = sim_form_get(&f, "c"); /* no '=': present, empty (encryptData's `data`) */
    assert_non_null(p);
    assert_int_equal(p->len, 0);
    assert_string_equal(sim_form_get(&f, "d")->val, "A B");
    assert_string_equal(sim_form_get(&f, "k")->val, "x=y");
    assert_string_equal(sim_form_get(&f, "t")->val, "abc=="); /* base64 padding kept */
    assert_null(sim_form_get(&f, "missing"));
    assert_string_equal(sim_form_get2(&f, "missing", "b")->name, "b");
    sim_form_free(&f);
    assert_int_equal(f.n, 0);
}

static void
test_form_parse_limits(void **state)
{
    char body[SIM_FORM_MAX * 4 + 16];
    size_t o = 0;
    struct sim_form f;

    (void)state;
    for (int i = 0; i <= SIM_FORM_MAX; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "x=%d&", i % 10);
    memset(&f, 0, sizeof(f));
    assert_int_equal(sim_form_parse(body, o, &f), CMN_ETOOBIG);
    sim_form_free(&f);
    /* a '%' that is not an escape stays literal, as servlet containers keep it */
    assert_int_equal(sim_form_parse("v=100%&w=%zz", 12, &f), CMN_OK);
    assert_string_equal(sim_form_get(&f, "v")->val, "100%");
    assert_string_equal(sim_form_get(&f, "w")->val, "%zz");
    sim_form_free(&f);
    assert_int_equal(sim_form_parse("", 0, &f), CMN_OK);
    assert_int_equal(f.n, 0);
}

static void
test_form_hash_decode(void **state)
{
    static const struct {
        const char *in;
        enum cmn_rc rc;
        const char *out; /* bytes */
        size_t len;
    } v[] = {
        {"#01#FF#0a", CMN_OK, "\x01\xff\x0a", 3},
        {"AB+", CMN_OK, "AB ", 3}, /* the C++ TPS's literal characters and '+' */
        {"", CMN_OK, "", 0},
        {"#0", CMN_EINVAL, NULL, 0},
        {"#", CMN_EINVAL, NULL, 0},
        {"#GG", CMN_EINVAL, NULL, 0},
        {"#01#02#03#04#05", CMN_ETOOBIG, NULL, 0}, /* more than the 4-byte buffer */
    };
    uint8_t out[4];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        enum cmn_rc rc = sim_hash_decode(v[i].in, strlen(v[i].in), out, sizeof(out), &n);

        if (rc != v[i].rc)
            fail_msg("case %zu '%s': rc %d, want %d", i, v[i].in, rc, v[i].rc);
        if (rc == CMN_OK) {
            assert_int_equal(n, v[i].len);
            assert_memory_equal(out, v[i].out, n);
        }
    }
}

static void
test_form_hash_encode(void **state)
{
    static const uint8_t in[] = {0x00, 0x4a, 0xff};
    struct cmn_buf b;

    (void)state;
    cmn_buf_init(&b, 64);
    assert_int_equal(sim_hash_encode(&b, in, sizeof(in)), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "#00#4A#FF");
    cmn_buf_cleanup(&b);
    cmn_buf_init(&b, 5);
    assert_int_equal(sim_hash_encode(&b, in, sizeof(in)), CMN_ETOOBIG);
    cmn_buf_cleanup(&b);
}

static void
test_form_b64(void **state)
{
    struct cmn_buf b;

    (void)state;
    cmn_buf_init(&b, 1024);
    assert_int_equal(sim_b64_decode("TWFu\r\nTWE", 9, &b), CMN_OK); /* breaks, no padding */
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "ManMa", 5);
    cmn_buf_reset(&b);
    assert_int_equal(sim_b64_decode("TWE=", 4, &b), CMN_OK);
    assert_int_equal(b.len, 2);
    cmn_buf_reset(&b);
    assert_int_equal(sim_b64_decode("TW!=", 4, &b), CMN_EINVAL);
    assert_int_equal(sim_b64_decode("", 0, &b), CMN_EINVAL);
    cmn_buf_reset(&b);
    assert_int_equal(sim_b64_append(&b, (const uint8_t *)"ManMa", 5), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "TWFuTWE=");
    cmn_buf_cleanup(&b);
}

static void
test_form_groups(void **state)
{
    struct sim_user u = {.id = "TPS-x", .groups = "Certificate Manager Agents, KRA ,Other"};

    (void)state;
    assert_true(sim_user_in_group(&u, "Certificate Manager Agents"));
    assert_true(sim_user_in_group(&u, "KRA"));
    assert_true(sim_user_in_group(&u, "Other"));
    assert_false(sim_user_in_group(&u, "kra"));
    assert_false(sim_user_in_group(&u, "Certificate Manager"));
    assert_false(sim_user_in_group(&u, ""));
    u.groups[0] = '\0';
    assert_false(sim_user_in_group(&u, "KRA"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_parse_pairs), cmocka_unit_test(test_form_parse_limits),
        cmocka_unit_test(test_form_hash_decode), cmocka_unit_test(test_form_hash_encode),
        cmocka_unit_test(test_form_b64),         cmocka_unit_test(test_form_groups),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
