/* tests/unit/common/test_p11obj.c - the combined object z0 (card spec §6.3): the record bytes of
 * the spec's example, compression, round trip, and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/p11obj.h"

static const uint8_t cuid[10] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0x12, 0x34, 0x56, 0x78};
static const uint8_t der[] = {0x30, 0x82, 0x01, 0x0A, 0xDE, 0xAD, 0xBE, 0xEF};

static size_t
hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;

    assert_int_equal(cmn_hex_decode(s, strlen(s), true, out, cap, &n), CMN_OK);
    return n;
}

/* The uncompressed encoding carries exactly the §6.3 example records. */
static void
test_p11obj_spec_records(void **state)
{
    struct cmn_p11obj o;
    struct cmn_buf b;
    uint8_t want[200];
    size_t n;

    (void)state;
    cmn_p11obj_init(&o, cuid, "tok", 7);
    assert_int_equal(cmn_p11obj_add_cert(&o, 1, "L", der, sizeof(der), CMN_P11_CKK_RSA, 0),
                     CMN_OK);
    cmn_buf_init(&b, 4096);
    assert_int_equal(cmn_p11obj_encode(&o, false, &b), CMN_OK);
    n = hex("01 00 00 07 40 90 79 01 00 1F 12 34 56 78 00 00 00 46 00 14" /* header */
            " 00 08 00 03 03 74 6F 6B"                                     /* off, count, name */
            " 63 31 00 00 00 00 00 91 00 02 00 00 00 03 00 00 01 4C"       /* c1 + LABEL */
            " 00 00 00 11 00 00 08 30 82 01 0A DE AD BE EF"                 /* CKA_VALUE */
            " 6B 33 00 00 00 0C 00 A1 00 00"                                /* k3 */
            " 6B 32 00 00 00 13 01 B1 00 01 00 00 01 00 01 00 00 00 00",    /* k2 */
            want, sizeof(want));
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    cmn_buf_cleanup(&b);
    cmn_p11obj_cleanup(&o);
}

static void
test_p11obj_compressed_round_trip(void **state)
{
    struct cmn_p11obj o, p;
    struct cmn_buf b;
    uint8_t big[1500];
    const struct cmn_p11obj_rec *r;
    const struct cmn_p11obj_attr *a;

    (void)state;
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i % 7);
    cmn_p11obj_init(&o, cuid, "user one", 999);
    assert_int_equal(cmn_p11obj_add_cert(&o, 1, "Signing", big, sizeof(big), CMN_P11_CKK_RSA,
                                         CMN_P11OBJ_USE_SIGN),
                     CMN_OK);
    assert_int_equal(cmn_p11obj_add_cert(&o, 2, "Encryption", der, sizeof(der), CMN_P11_CKK_RSA,
                                         CMN_P11OBJ_USE_ENCRYPT),
                     CMN_OK);
    assert_int_equal(cmn_p11obj_add_cert(&o, 5, "x", der, sizeof(der), 0, 0), CMN_EINVAL);
    cmn_buf_init(&b, 8192);
    assert_int_equal(cmn_p11obj_encode(&o, true, &b), CMN_OK);
    assert_int_equal(b.data[14], 0x00);
    assert_int_equal(b.data[15], 0x01);           /* zlib */
    assert_int_equal(b.data[20], 0x78);           /* RFC 1950 stream */
    assert_int_equal((b.data[16] << 8 | b.data[17]), b.len - 20);
    assert_true(b.len < 600);                      /* it really is compressed */
    assert_int_equal(cmn_p11obj_parse(&p, b.data, b.len, 0), CMN_OK);
    assert_int_equal(p.object_version, 999);
    assert_memory_equal(p.cuid, cuid, 10);
    assert_int_equal(p.name_len, 8);
    assert_memory_equal(p.name, "user one", 8);
    assert_int_equal(p.nrecs, 6);
    assert_int_equal(p.obj_count, 6);
    r = cmn_p11obj_find(&p, CMN_P11OBJ_ID('c', 1));
    assert_non_null(r);
    a = cmn_p11obj_attr(r, CMN_P11_CKA_VALUE);
    assert_non_null(a);
    assert_int_equal(a->len, sizeof(big));
    assert_memory_equal(a->val, big, sizeof(big));
    r = cmn_p11obj_find(&p, CMN_P11OBJ_ID('k', 4));
    assert_non_null(r);
    /* class 3, TOKEN, PRIVATE, SENSITIVE, DECRYPT, UNWRAP, id 2 */
    assert_int_equal(r->fixed, 0x0010A1B2u);
    r = cmn_p11obj_find(&p, CMN_P11OBJ_ID('k', 5));
    assert_non_null(r);
    assert_int_equal(r->fixed, 0x000050A2u);
    assert_null(cmn_p11obj_find(&p, CMN_P11OBJ_ID('k', 6)));
    cmn_p11obj_cleanup(&p);
    cmn_p11obj_cleanup(&p); /* twice is harmless */
    cmn_buf_cleanup(&b);
    cmn_p11obj_cleanup(&o);
}

static void
test_p11obj_parse_hostile(void **state)
{
    struct cmn_p11obj o, p;
    struct cmn_buf b;
    uint8_t m[200];

    (void)state;
    cmn_p11obj_init(&o, cuid, "t", 1);
    assert_int_equal(cmn_p11obj_add_cert(&o, 0, "L", der, sizeof(der), 0, 0), CMN_OK);
    cmn_buf_init(&b, 4096);
    assert_int_equal(cmn_p11obj_encode(&o, false, &b), CMN_OK);
    /* every truncation fails cleanly */
    for (size_t n = 0; n < b.len; n++) {
        enum cmn_rc rc = cmn_p11obj_parse(&p, b.data, n, 0);

        assert_int_not_equal(rc, CMN_OK);
        cmn_p11obj_cleanup(&p);
    }
    memcpy(m, b.data, b.len);
    m[15] = 2; /* unknown compression */
    assert_int_equal(cmn_p11obj_parse(&p, m, b.len, 0), CMN_EUNSUPP);
    cmn_p11obj_cleanup(&p);
    memcpy(m, b.data, b.len);
    m[19] = 0x10; /* data offset inside the header */
    assert_int_equal(cmn_p11obj_parse(&p, m, b.len, 0), CMN_EINVAL);
    cmn_p11obj_cleanup(&p);
    memcpy(m, b.data, b.len);
    m[20 + 5 + 1 + 10 + 4] = 0x07; /* c0's first attribute: bad data type */
    assert_int_equal(cmn_p11obj_parse(&p, m, b.len, 0), CMN_EINVAL);
    cmn_p11obj_cleanup(&p);
    /* the payload cap holds */
    assert_int_equal(cmn_p11obj_parse(&p, b.data, b.len, 10), CMN_ETOOBIG);
    cmn_p11obj_cleanup(&p);
    /* a count larger than the records present is ignored (§6.3) */
    memcpy(m, b.data, b.len);
    m[23] = 9;
    assert_int_equal(cmn_p11obj_parse(&p, m, b.len, 0), CMN_OK);
    assert_int_equal(p.nrecs, 3);
    cmn_p11obj_cleanup(&p);
    /* corrupt zlib stream */
    cmn_buf_reset(&b);
    assert_int_equal(cmn_p11obj_encode(&o, true, &b), CMN_OK);
    b.data[b.len - 3] ^= 0xFF;
    assert_int_not_equal(cmn_p11obj_parse(&p, b.data, b.len, 0), CMN_OK);
    cmn_p11obj_cleanup(&p);
    cmn_buf_cleanup(&b);
    cmn_p11obj_cleanup(&o);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p11obj_spec_records),
        cmocka_unit_test(test_p11obj_compressed_round_trip),
        cmocka_unit_test(test_p11obj_parse_hostile),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
