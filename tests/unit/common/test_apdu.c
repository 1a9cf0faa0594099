/* tests/unit/common/test_apdu.c - APDU case encoding, every GP / CoolKey builder against the
 * byte layouts of the card spec (§2, §3, §5 examples), response parsers on good, short and
 * hostile answers, the status-word table and applet version text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/apdu.h"
#include "common/buf.h"

/* Encodes a and compares with the expected hex (spaces allowed). */
static void
expect_wire(const struct cmn_apdu *a, const char *hex)
{
    uint8_t want[CMN_APDU_MAX_WIRE], got[CMN_APDU_MAX_WIRE];
    size_t wn, gn;

    assert_int_equal(cmn_hex_decode(hex, strlen(hex), true, want, sizeof(want), &wn), CMN_OK);
    assert_int_equal(cmn_apdu_encode(a, got, sizeof(got), &gn), CMN_OK);
    if (gn != wn || memcmp(got, want, wn) != 0) {
        char g[2 * CMN_APDU_MAX_WIRE + 1];

        (void)cmn_hex_encode(got, gn, g, sizeof(g));
        fail_msg("got %s want %s", g, hex);
    }
}

static size_t
unhex(const char *hex, uint8_t *out, size_t size)
{
    size_t n;

    assert_int_equal(cmn_hex_decode(hex, strlen(hex), true, out, size, &n), CMN_OK);
    return n;
}

static const uint8_t zero_nonce[8];

static void
test_apdu_encode_decode_cases(void **state)
{
    struct cmn_apdu a, d;
    uint8_t wire[CMN_APDU_MAX_WIRE];
    size_t n;

    (void)state;
    /* select default: 00 A4 04 00 00 decodes as SELECT with an empty AID (§1.2) */
    assert_int_equal(cmn_apdu_select_default(&a), CMN_OK);
    expect_wire(&a, "00 A4 04 00 00");
    assert_int_equal(cmn_apdu_encode(&a, wire, sizeof(wire), &n), CMN_OK);
    assert_int_equal(cmn_apdu_decode(wire, n, &d), CMN_OK);
    assert_int_equal(d.lc, 0);
    assert_int_equal(d.le, -1);
    /* encode refuses a short output buffer */
    assert_int_equal(cmn_apdu_get_status(&a), CMN_OK);
    assert_int_equal(cmn_apdu_encode(&a, wire, 4, &n), CMN_ETOOBIG);
    /* round trip of a case 4 */
    assert_int_equal(cmn_apdu_select_aid(&a, cmn_aid_coolkey, 7, true), CMN_OK);
    assert_int_equal(cmn_apdu_encode(&a, wire, sizeof(wire), &n), CMN_OK);
    assert_int_equal(cmn_apdu_decode(wire, n, &d), CMN_OK);
    assert_int_equal(d.lc, 7);
    assert_int_equal(d.le, 256);
    assert_memory_equal(d.data, cmn_aid_coolkey, 7);
}

static void
test_apdu_gp_builders(void **state)
{
    static const uint8_t hc[8] = {0x2F, 0xB7, 0x9F, 0xB7, 0x04, 0xFA, 0x60, 0xE8};
    static const uint8_t cryptogram[8] = {0x6F, 0x47, 0x3D, 0xED, 0x1B, 0x8B, 0xC3, 0xEA};
    struct cmn_apdu a;
    uint8_t ks[67];

    (void)state;
    assert_int_equal(cmn_apdu_select_aid(&a, cmn_aid_coolkey, sizeof(cmn_aid_coolkey), false),
                     CMN_OK);
    expect_wire(&a, "00 A4 04 00 07 62 76 01 FF 00 00 00");
    assert_int_equal(cmn_apdu_select_aid(&a, cmn_aid_isd_gp211, 8, true), CMN_OK);
    expect_wire(&a, "00 A4 04 00 08 A0 00 00 00 03 00 00 00 00");
    assert_int_equal(cmn_apdu_select_aid(&a, cmn_aid_coolkey, 0, false), CMN_EINVAL);
    assert_int_equal(cmn_apdu_get_data(&a, CMN_GP_TAG_CPLC), CMN_OK);
    expect_wire(&a, "80 CA 9F 7F 2D");
    assert_int_equal(cmn_apdu_get_data(&a, CMN_GP_TAG_CRD), CMN_OK);
    expect_wire(&a, "80 CA 00 66 2D");
    assert_int_equal(cmn_apdu_get_data(&a, CMN_GP_TAG_KEYINFO), CMN_OK);
    expect_wire(&a, "80 CA 00 E0 2D");
    /* §5.2 INITIALIZE UPDATE */
    assert_int_equal(cmn_apdu_init_update(&a, 0, 0, hc, false), CMN_OK);
    expect_wire(&a, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8");
    assert_int_equal(cmn_apdu_init_update(&a, 2, 0, hc, true), CMN_OK);
    expect_wire(&a, "80 50 02 00 08 2F B7 9F B7 04 FA 60 E8 00");
    /* EXTERNAL AUTHENTICATE, plain (the C-MAC is appended by the secure channel) */
    assert_int_equal(cmn_apdu_ext_auth(&a, 0x03, cryptogram), CMN_OK);
    expect_wire(&a, "84 82 03 00 08 6F 47 3D ED 1B 8B C3 EA");
    assert_int_equal(cmn_apdu_ext_auth(&a, 0x02, cryptogram), CMN_EINVAL);
    /* PUT KEY: 67 bytes SCP01 set, Le only on SCP02/03 */
    memset(ks, 0xAB, sizeof(ks));
    assert_int_equal(cmn_apdu_put_key(&a, 0x01, 0x81, ks, sizeof(ks), cmn_apdu_secure_le(1)),
                     CMN_OK);
    assert_int_equal(a.cla, 0x84);
    assert_int_equal(a.ins, 0xD8);
    assert_int_equal(a.p1, 0x01);
    assert_int_equal(a.p2, 0x81);
    assert_int_equal(a.lc, 67);
    assert_int_equal(a.le, -1);
    assert_int_equal(cmn_apdu_put_key(&a, 0, 0x81, ks, sizeof(ks), cmn_apdu_secure_le(2)),
                     CMN_OK);
    assert_int_equal(a.le, 256);
    assert_false(cmn_apdu_secure_le(1));
    assert_true(cmn_apdu_secure_le(3));
    /* DELETE */
    assert_int_equal(cmn_apdu_delete(&a, cmn_aid_coolkey, 7, false, false), CMN_OK);
    expect_wire(&a, "84 E4 00 00 09 4F 07 62 76 01 FF 00 00 00");
    assert_int_equal(cmn_apdu_delete(&a, cmn_aid_coolkey_pkg, 6, true, true), CMN_OK);
    expect_wire(&a, "84 E4 00 80 08 4F 06 62 76 01 FF 00 00 00");
    assert_int_equal(cmn_apdu_delete_keys(&a, 0x02), CMN_OK);
    expect_wire(&a, "84 E4 00 00 03 D2 01 02");
    /* INSTALL [for load]: HHLL = fileLen + 24 + len(sdAID); SCP01: empty sdAID */
    assert_int_equal(cmn_apdu_install_load(&a, cmn_aid_coolkey_pkg, 6, NULL, 0, 0x1000, false),
                     CMN_OK);
    expect_wire(&a, "84 E6 02 00 11 06 62 76 01 FF 00 00 00 00 06 EF 04 C6 02 10 18 00");
    assert_int_equal(cmn_apdu_install_load(&a, cmn_aid_coolkey_pkg, 6, cmn_aid_isd_gp211, 8,
                                           0x1000, true),
                     CMN_OK);
    expect_wire(&a, "84 E6 02 00 19 06 62 76 01 FF 00 00 08 A0 00 00 00 03 00 00 00 00 06 EF 04 "
                    "C6 02 10 20 00 00");
    assert_int_equal(cmn_apdu_install_load(&a, cmn_aid_coolkey_pkg, 6, NULL, 0, 0xFFF0, false),
                     CMN_ETOOBIG);
    /* INSTALL [for install]: §2.7 layout with 18000 / 5000 */
    assert_int_equal(cmn_apdu_install_install(&a, cmn_aid_coolkey_pkg, 6, cmn_aid_coolkey, 7,
                                              cmn_aid_coolkey, 7, 18000, 5000, false),
                     CMN_OK);
    expect_wire(&a, "84 E6 0C 00 27 06 627601FF0000 07 627601FF000000 07 627601FF000000 01 00 "
                    "0C EF 04 C8 02 46 50 C9 04 00 02 13 88 00");
}

static void
test_apdu_load_blocks(void **state)
{
    struct cmn_apdu_loader ld;
    struct cmn_apdu a;
    uint8_t *file = malloc(1000);
    size_t total = 0;
    bool last = false;
    unsigned blocks = 0;

    (void)state;
    assert_non_null(file);
    for (size_t k = 0; k < 1000; k++)
        file[k] = (uint8_t)k;
    assert_int_equal(cmn_apdu_load_block_size(224, 1, true), 208);
    assert_int_equal(cmn_apdu_load_block_size(224, 2, true), 216);
    assert_int_equal(cmn_apdu_load_block_size(8, 2, false), 0);
    assert_int_equal(cmn_apdu_load_init(&ld, file, 1000, 208), CMN_OK);
    assert_int_equal(cmn_apdu_load_count(&ld), 5); /* 4 + 1000 = 1004 → 5 blocks of 208 */
    while (cmn_apdu_load_next(&ld, &a, &last) == CMN_OK) {
        assert_int_equal(a.cla, 0x84);
        assert_int_equal(a.ins, 0xE8);
        assert_int_equal(a.p2, blocks);
        assert_int_equal(a.p1, last ? 0x80 : 0x00);
        if (blocks == 0) {
            /* C4 82 03 E8: BER length of 1000 */
            assert_int_equal(a.data[0], 0xC4);
            assert_int_equal(a.data[1], 0x82);
            assert_int_equal(a.data[2], 0x03);
            assert_int_equal(a.data[3], 0xE8);
            assert_int_equal(a.data[4], 0x00);
            assert_int_equal(a.data[5], 0x01);
        }
        total += a.lc;
        blocks++;
    }
    assert_true(last);
    assert_int_equal(blocks, 5);
    assert_int_equal(total, 1004);
    assert_int_equal(a.lc, 1004 - 4 * 208);
    assert_int_equal(a.data[a.lc - 1], (uint8_t)999);
    assert_int_equal(cmn_apdu_load_next(&ld, &a, NULL), CMN_ENOTFOUND);
    /* BER forms: < 80 one byte, <= FF 81 xx */
    assert_int_equal(cmn_apdu_load_init(&ld, file, 0x7F, 200), CMN_OK);
    assert_int_equal(cmn_apdu_load_next(&ld, &a, &last), CMN_OK);
    assert_true(last);
    assert_int_equal(a.data[1], 0x7F);
    assert_int_equal(a.lc, 0x7F + 2);
    assert_int_equal(cmn_apdu_load_init(&ld, file, 0x80, 200), CMN_OK);
    assert_int_equal(cmn_apdu_load_next(&ld, &a, &last), CMN_OK);
    assert_int_equal(a.data[1], 0x81);
    assert_int_equal(a.data[2], 0x80);
    /* a header split across blocks of 1 byte still adds up */
    assert_int_equal(cmn_apdu_load_init(&ld, file, 200, 1), CMN_OK);
    assert_int_equal(cmn_apdu_load_count(&ld), 203);
    /* too many blocks for a one-byte P2, bad sizes */
    assert_int_equal(cmn_apdu_load_init(&ld, file, 1000, 2), CMN_ETOOBIG);
    assert_int_equal(cmn_apdu_load_init(&ld, file, 0, 200), CMN_EINVAL);
    assert_int_equal(cmn_apdu_load_init(&ld, file, 10, 0), CMN_EINVAL);
    free(file);
}

static void
test_apdu_coolkey_builders(void **state)
{
    static const uint8_t nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t slots[] = {2, 3};
    static const uint8_t iv[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    static const uint8_t kcv[3] = {0x8B, 0xAF, 0x47};
    struct cmn_apdu a;
    struct cmn_ck_keygen kg;
    uint8_t buf[300];
    const char *url = "http://lb:8080/tps/phoneHome";

    (void)state;
    assert_int_equal(cmn_apdu_get_status(&a), CMN_OK);
    expect_wire(&a, "B0 3C 00 00 10");
    assert_int_equal(cmn_apdu_get_version(&a), CMN_OK);
    expect_wire(&a, "B0 70 00 00 04");
    assert_int_equal(cmn_apdu_get_lifecycle(&a, 1), CMN_OK);
    expect_wire(&a, "B0 F2 00 00 01");
    assert_int_equal(cmn_apdu_get_lifecycle(&a, 4), CMN_OK);
    expect_wire(&a, "B0 F2 00 00 04");
    assert_int_equal(cmn_apdu_get_lifecycle(&a, 2), CMN_EINVAL);
    assert_int_equal(cmn_apdu_set_lifecycle(&a, CMN_CK_LC_PERSONALIZED), CMN_OK);
    expect_wire(&a, "84 F0 0F 00");
    assert_int_equal(cmn_apdu_get_issuer_info(&a), CMN_OK);
    expect_wire(&a, "B0 F6 00 00 E0");
    assert_int_equal(cmn_apdu_set_issuer_info(&a, (const uint8_t *)url, strlen(url)), CMN_OK);
    assert_int_equal(a.lc, 224);
    assert_memory_equal(a.data, url, strlen(url));
    for (size_t k = strlen(url); k < 224; k++)
        assert_int_equal(a.data[k], 0);
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(cmn_apdu_set_issuer_info(&a, buf, 225), CMN_ETOOBIG);
    assert_int_equal(cmn_apdu_list_objects(&a, true), CMN_OK);
    expect_wire(&a, "B0 58 00 00 0E");
    assert_int_equal(cmn_apdu_list_objects(&a, false), CMN_OK);
    expect_wire(&a, "B0 58 01 00 0E");
    assert_int_equal(cmn_apdu_list_pins(&a), CMN_OK);
    expect_wire(&a, "B0 48 00 00 02");
    assert_int_equal(cmn_apdu_list_keys(&a, true), CMN_OK);
    expect_wire(&a, "B0 3A 00 00 0B");
    assert_int_equal(cmn_apdu_get_pin_tries(&a, 0), CMN_OK);
    expect_wire(&a, "B0 4A 00 00 01");
    assert_int_equal(cmn_apdu_get_builtin_acl(&a), CMN_OK);
    expect_wire(&a, "B0 FA 00 00 07");
    assert_int_equal(cmn_apdu_get_random(&a, 8), CMN_OK);
    expect_wire(&a, "B0 72 00 00 08");
    assert_int_equal(cmn_apdu_get_random(&a, 0), CMN_EINVAL);
    assert_int_equal(cmn_apdu_get_response(&a, 0x20), CMN_OK);
    expect_wire(&a, "00 C0 00 00 20");
    /* objects, secure and nonce forms */
    assert_int_equal(cmn_apdu_read_object(&a, 0x7A300000, 0, 0xD0, NULL, true), CMN_OK);
    expect_wire(&a, "84 56 00 00 09 7A 30 00 00 00 00 00 00 D0 00");
    assert_int_equal(cmn_apdu_read_object(&a, 0x7A300000, 0xFF, 0xFF, zero_nonce, false),
                     CMN_OK);
    expect_wire(&a, "B0 56 00 00 11 7A 30 00 00 00 00 00 FF FF 00 00 00 00 00 00 00 00");
    assert_int_equal(cmn_apdu_read_object(&a, 1, 0, 0, NULL, false), CMN_EINVAL);
    assert_int_equal(cmn_apdu_write_object(&a, 0x7A300000, 0x10, (const uint8_t *)"AB", 2, NULL),
                     CMN_OK);
    expect_wire(&a, "84 54 00 00 0B 7A 30 00 00 00 00 00 10 02 41 42");
    assert_int_equal(cmn_apdu_write_object(&a, 0xFFFFFFFF, 0, (const uint8_t *)"A", 1, nonce),
                     CMN_OK);
    expect_wire(&a, "B0 54 00 00 12 FF FF FF FF 00 00 00 00 01 41 01 02 03 04 05 06 07 08");
    memset(buf, 1, sizeof(buf));
    assert_int_equal(cmn_apdu_write_object(&a, 1, 0, buf, 246, NULL), CMN_OK);
    assert_int_equal(cmn_apdu_write_object(&a, 1, 0, buf, 247, NULL), CMN_ETOOBIG);
    assert_int_equal(cmn_apdu_write_object(&a, 1, 0, buf, 239, nonce), CMN_ETOOBIG);
    assert_int_equal(cmn_apdu_create_object(&a, 0x7A300000, 0x0400, 0xFFFF, 0x4000, 0x4000,
                                            NULL),
                     CMN_OK);
    expect_wire(&a, "84 5A 00 00 0E 7A 30 00 00 00 00 04 00 FF FF 40 00 40 00");
    assert_int_equal(cmn_apdu_delete_object(&a, 0x7A300000, true, zero_nonce), CMN_OK);
    expect_wire(&a, "B0 52 00 01 0C 7A 30 00 00 00 00 00 00 00 00 00 00");
    assert_int_equal(cmn_apdu_delete_object(&a, 0x7A300000, false, NULL), CMN_OK);
    expect_wire(&a, "84 52 00 00 04 7A 30 00 00");
    /* PINs (§5.2: CREATE PIN 00 with tries 7F, "password") */
    assert_int_equal(cmn_apdu_create_pin(&a, 0, 0x7F, (const uint8_t *)"password", 8), CMN_OK);
    expect_wire(&a, "84 40 00 7F 08 70 61 73 73 77 6F 72 64");
    cmn_apdu_wipe(&a);
    for (size_t k = 0; k < sizeof(a.data); k++)
        assert_int_equal(a.data[k], 0);
    assert_int_equal(cmn_apdu_set_pin(&a, 0, (const uint8_t *)"1234", 4), CMN_OK);
    expect_wire(&a, "84 04 00 00 04 31 32 33 34");
    assert_int_equal(cmn_apdu_set_pin(&a, 0, (const uint8_t *)"", 0), CMN_EINVAL);
    memset(buf, '1', sizeof(buf));
    assert_int_equal(cmn_apdu_set_pin(&a, 0, buf, CMN_CK_PIN_MAX + 1), CMN_EINVAL);
    assert_int_equal(cmn_apdu_verify_pin(&a, 0, (const uint8_t *)"1234", 4, true), CMN_OK);
    expect_wire(&a, "B0 42 00 00 04 31 32 33 34 08");
    assert_int_equal(cmn_apdu_change_pin(&a, 0, (const uint8_t *)"1234", 4,
                                         (const uint8_t *)"56789", 5),
                     CMN_OK);
    expect_wire(&a, "B0 44 00 00 0B 04 31 32 33 34 05 35 36 37 38 39");
    assert_int_equal(cmn_apdu_logout(&a, 0, NULL), CMN_OK);
    expect_wire(&a, "B0 61 00 00");
    assert_int_equal(cmn_apdu_logout(&a, 0, nonce), CMN_OK);
    expect_wire(&a, "B0 61 00 00 08 01 02 03 04 05 06 07 08");
    /* GENERATE KEY (§3.4): signing key user 0, private 2, public 3, RSA-1024 */
    memset(&kg, 0, sizeof(kg));
    kg.priv_no = 2;
    kg.pub_no = 3;
    kg.alg = 0x80;
    kg.key_bits = 1024;
    memset(kg.wrapped_challenge, 0xCC, 16);
    assert_int_equal(cmn_apdu_generate_key(&a, &kg, true), CMN_OK);
    expect_wire(&a, "84 0C 02 03 17 80 04 00 00 00 10 CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC 00 00");
    kg.key_user = 0xF;
    kg.key_usage = 1;
    assert_int_equal(cmn_apdu_generate_key(&a, &kg, false), CMN_OK);
    assert_int_equal(a.p1, 0xF2);
    assert_int_equal(a.p2, 0x13);
    assert_int_equal(a.lc, 0x17);
    kg.priv_no = 0x10;
    assert_int_equal(cmn_apdu_generate_key(&a, &kg, false), CMN_EINVAL);
    /* IMPORT KEY ENCRYPTED (§3.5) */
    memset(buf, 0x5A, 16);
    assert_int_equal(cmn_apdu_import_key_enc(&a, 2, 3, 0xFF00FFF3, 0x81, buf, 16, kcv, 3, iv),
                     CMN_OK);
    expect_wire(&a, "84 0A 02 03 23 FF 00 FF F3 81 10 5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A 03 8B AF "
                    "47 08 09 09 09 09 09 09 09 09");
    assert_int_equal(cmn_apdu_clear_key_slots(&a, slots, sizeof(slots)), CMN_OK);
    expect_wire(&a, "84 55 00 00 02 02 03");
    /* COMPUTE CRYPT, in the APDU and through the I/O buffer (§3.6) */
    assert_int_equal(cmn_apdu_compute_crypt(&a, 2, 0, 3, 1, (const uint8_t *)"AB", 2, nonce),
                     CMN_OK);
    expect_wire(&a, "B0 36 02 04 0F 00 03 01 00 02 41 42 01 02 03 04 05 06 07 08");
    assert_int_equal(cmn_apdu_compute_crypt(&a, 2, 0, 3, 2, NULL, 0, zero_nonce), CMN_OK);
    expect_wire(&a, "B0 36 02 04 0D 00 03 02 00 00 00 00 00 00 00 00 00 00");
    assert_int_equal(cmn_apdu_compute_crypt(&a, 2, 0, 3, 1, NULL, 0, nonce), CMN_EINVAL);
    assert_int_equal(cmn_apdu_compute_crypt(&a, 2, 0, 3, 1, buf, 243, nonce), CMN_ETOOBIG);
}

static void
test_apdu_fci(void **state)
{
    uint8_t in[64], aid[CMN_AID_MAX];
    size_t n, aid_len = 0;

    (void)state;
    n = unhex("6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF", in, sizeof(in));
    assert_int_equal(cmn_fci_parse_aid(in, n, aid, &aid_len), CMN_OK);
    assert_int_equal(aid_len, 7);
    assert_memory_equal(aid, cmn_aid_isd_gp201, 7);
    /* 84 not first */
    n = unhex("6F 0D A5 02 9F 65 84 07 A0 00 00 01 51 00 00", in, sizeof(in));
    assert_int_equal(cmn_fci_parse_aid(in, n, aid, &aid_len), CMN_OK);
    assert_memory_equal(aid, cmn_aid_isd_gp22, 7);
    assert_int_equal(cmn_fci_parse_aid(in, 0, aid, &aid_len), CMN_ENOTFOUND);
    n = unhex("6F 04 A5 02 9F 65", in, sizeof(in));
    assert_int_equal(cmn_fci_parse_aid(in, n, aid, &aid_len), CMN_ENOTFOUND);
    n = unhex("70 02 84 00", in, sizeof(in));
    assert_int_equal(cmn_fci_parse_aid(in, n, aid, &aid_len), CMN_ENOTFOUND);
    /* 6F claims more than present; 84 claims more than 6F holds; 84 too long */
    n = unhex("6F 20 84 07 A0 00 00 00 03 00 00", in, sizeof(in));
    assert_int_equal(cmn_fci_parse_aid(in, n, aid, &aid_len), CMN_EPROTO);
    n = unhex("6F 03 84 07 A0", in, sizeof(in));
    assert_int_equal(cmn_fci_parse_aid(in, n, aid, &aid_len), CMN_EPROTO);
    n = unhex("6F 13 84 11 A0 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 00", in, sizeof(in));
    assert_int_equal(cmn_fci_parse_aid(in, n, aid, &aid_len), CMN_EPROTO);
}

static void
test_apdu_cplc(void **state)
{
    uint8_t in[64];
    size_t n;
    struct cmn_cplc c;

    (void)state;
    /* §2.3 example: CUID 40907901001F12345678, MSN 00000001 */
    n = unhex("9F 7F 2A 40 90 79 01 00 00 00 00 00 00 00 00 12 34 56 78 00 1F 00 00 00 00 00 00 "
              "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01",
              in, sizeof(in));
    assert_int_equal(n, 45);
    assert_int_equal(cmn_cplc_parse(in, n, &c), CMN_OK);
    {
        char hex[21];

        assert_int_equal(cmn_hex_encode(c.cuid, 10, hex, sizeof(hex)), CMN_OK);
        assert_string_equal(hex, "40907901001F12345678");
        assert_int_equal(cmn_hex_encode(c.msn, 4, hex, sizeof(hex)), CMN_OK);
        assert_string_equal(hex, "00000001");
    }
    for (size_t k = 0; k < 45; k++)
        assert_int_equal(cmn_cplc_parse(in, k, &c), CMN_ESHORT);
}

static void
test_apdu_card_recognition(void **state)
{
    static const char scp02[] =
        "66 31 73 2F 06 07 2A 86 48 86 FC 6B 01 60 0C 06 0A 2A 86 48 86 FC 6B 02 02 01 01 63 09 "
        "06 07 2A 86 48 86 FC 6B 03 64 0B 06 09 2A 86 48 86 FC 6B 04 02 15";
    static const char scp03[] =
        "66 31 73 2F 06 07 2A 86 48 86 FC 6B 01 60 0C 06 0A 2A 86 48 86 FC 6B 02 02 02 00 63 09 "
        "06 07 2A 86 48 86 FC 6B 03 64 0B 06 09 2A 86 48 86 FC 6B 04 03 70";
    uint8_t in[128];
    size_t n;
    struct cmn_gp_crd crd;

    (void)state;
    n = unhex(scp02, in, sizeof(in));
    assert_int_equal(n, 51);
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_OK);
    assert_false(crd.fallback);
    assert_int_equal(crd.scp, 2);
    assert_int_equal(crd.i, 0x15);
    assert_int_equal(crd.gp_version[0], 2);
    assert_int_equal(crd.gp_version[1], 1);
    assert_int_equal(crd.gp_version[2], 1);
    n = unhex(scp03, in, sizeof(in));
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_OK);
    assert_int_equal(crd.scp, 3);
    assert_int_equal(crd.i, 0x70);
    /* SCP02 with i other than 15 */
    n = unhex(scp02, in, sizeof(in));
    in[n - 1] = 0x55;
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_EUNSUPP);
    in[n - 2] = 0x04;
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_EUNSUPP);
    /* Java fallback rules → SCP01 */
    assert_int_equal(cmn_gp_crd_parse(NULL, 0, 0x6A88, &crd), CMN_OK);
    assert_true(crd.fallback);
    assert_int_equal(crd.scp, 1);
    n = unhex(scp02, in, sizeof(in));
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x6A82, &crd), CMN_OK);
    assert_true(crd.fallback);
    assert_int_equal(cmn_gp_crd_parse(in, 2, 0x9000, &crd), CMN_OK); /* 4 bytes with SW */
    assert_true(crd.fallback);
    /* the test client's emulator: CPLC "01 00 01 ..." for every GET DATA */
    n = unhex("01 00 01 40 90 79 01", in, sizeof(in));
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_OK);
    assert_true(crd.fallback);
    n = unhex("66 09 73 07", in, sizeof(in)); /* byte 1 >= length incl. SW (6) */
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_OK);
    assert_true(crd.fallback);
    /* passes the first checks but is broken */
    n = unhex("66 03 73 05 06", in, sizeof(in));
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_EPROTO);
    n = unhex("66 04 73 02 60 00", in, sizeof(in));
    assert_int_equal(cmn_gp_crd_parse(in, n, 0x9000, &crd), CMN_EPROTO);
}

static void
test_apdu_keyinfo(void **state)
{
    uint8_t in[300];
    size_t n;
    struct cmn_gp_keyinfo ki;

    (void)state;
    n = unhex("E0 12 C0 04 01 01 80 10 C0 04 02 01 80 10 C0 04 03 01 80 10", in, sizeof(in));
    assert_int_equal(cmn_gp_keyinfo_parse(in, n, &ki), CMN_OK);
    assert_int_equal(ki.n, 3);
    assert_int_equal(ki.e[2].id, 3);
    assert_int_equal(ki.e[2].version, 1);
    assert_int_equal(ki.e[2].type, 0x80);
    assert_int_equal(ki.e[2].len, 0x10);
    n = unhex("E0 00", in, sizeof(in));
    assert_int_equal(cmn_gp_keyinfo_parse(in, n, &ki), CMN_OK);
    assert_int_equal(ki.n, 0);
    n = unhex("E0 11 C0 04 01 01 80 10 C0 04 02 01 80 10 C0 04 03 01 80", in, sizeof(in));
    assert_int_equal(cmn_gp_keyinfo_parse(in, n, &ki), CMN_EPROTO); /* 17: not a multiple of 6 */
    n = unhex("E0 12 C0 04 01 01 80 10 C0 04 02 01 80 10 C0 04 03 01", in, sizeof(in));
    assert_int_equal(cmn_gp_keyinfo_parse(in, n, &ki), CMN_EPROTO); /* L overruns */
    n = unhex("E0 06 C1 04 01 01 80 10", in, sizeof(in));
    assert_int_equal(cmn_gp_keyinfo_parse(in, n, &ki), CMN_EPROTO);
    n = unhex("E0", in, sizeof(in));
    assert_int_equal(cmn_gp_keyinfo_parse(in, n, &ki), CMN_ESHORT);
    /* more entries than the cap: 42 entries of 6 = 252 bytes */
    in[0] = 0xE0;
    in[1] = 252;
    for (size_t k = 0; k < 42; k++)
        memcpy(in + 2 + 6 * k, "\xC0\x04\x01\x01\x80\x10", 6);
    assert_int_equal(cmn_gp_keyinfo_parse(in, 254, &ki), CMN_ETOOBIG);
}

static void
test_apdu_init_update_response(void **state)
{
    uint8_t in[64];
    size_t n;
    struct cmn_gp_iu iu;
    char hex[64];

    (void)state;
    /* §5.2 SCP01 */
    n = unhex("40 90 79 01 00 1F 12 34 56 78 01 01 B9 69 B0 CA 37 27 2F 89 1F C1 D8 14 8F F1 34 "
              "57",
              in, sizeof(in));
    assert_int_equal(cmn_gp_iu_parse(in, n, 0, &iu), CMN_OK);
    assert_int_equal(iu.scp, 1);
    assert_int_equal(iu.key_version, 1);
    assert_int_equal(iu.protocol, 1);
    assert_int_equal(iu.challenge_len, 8);
    (void)cmn_hex_encode(iu.kdd, 10, hex, sizeof(hex));
    assert_string_equal(hex, "40907901001F12345678");
    (void)cmn_hex_encode(iu.card_challenge, 8, hex, sizeof(hex));
    assert_string_equal(hex, "B969B0CA37272F89");
    (void)cmn_hex_encode(iu.card_cryptogram, 8, hex, sizeof(hex));
    assert_string_equal(hex, "1FC1D8148FF13457");
    assert_int_equal(cmn_gp_iu_parse(in, n, 1, &iu), CMN_OK);
    assert_int_equal(cmn_gp_iu_parse(in, n, 3, &iu), CMN_EPROTO);
    /* §5.4 SCP02, version FF, counter 000A */
    n = unhex("40 90 79 01 00 1F 12 34 56 78 FF 02 00 0A 3C 1F 7A 91 5D 02 E3 10 1C 8D C3 88 9C "
              "8F",
              in, sizeof(in));
    assert_int_equal(cmn_gp_iu_parse(in, n, 0, &iu), CMN_OK);
    assert_int_equal(iu.scp, 2);
    assert_int_equal(iu.key_version, 0xFF);
    assert_int_equal(iu.seq_len, 2);
    assert_int_equal(iu.seq[0], 0x00);
    assert_int_equal(iu.seq[1], 0x0A);
    assert_int_equal(iu.challenge_len, 6);
    (void)cmn_hex_encode(iu.card_challenge, 6, hex, sizeof(hex));
    assert_string_equal(hex, "3C1F7A915D02");
    (void)cmn_hex_encode(iu.card_cryptogram, 8, hex, sizeof(hex));
    assert_string_equal(hex, "E3101C8DC3889C8F");
    /* SCP03: 29 bytes (i = 00) and 32 bytes (i = 70, counter) */
    n = unhex("40 90 79 01 00 1F 12 34 56 78 01 03 00 B9 69 B0 CA 37 27 2F 89 11 22 33 44 55 66 "
              "77 88",
              in, sizeof(in));
    assert_int_equal(n, 29);
    assert_int_equal(cmn_gp_iu_parse(in, n, 0, &iu), CMN_OK);
    assert_int_equal(iu.scp, 3);
    assert_int_equal(iu.i, 0);
    assert_int_equal(iu.seq_len, 0);
    assert_int_equal(iu.card_cryptogram[7], 0x88);
    in[12] = 0x70;
    in[29] = 0x00;
    in[30] = 0x00;
    in[31] = 0x05;
    assert_int_equal(cmn_gp_iu_parse(in, 32, 3, &iu), CMN_OK);
    assert_int_equal(iu.i, 0x70);
    assert_int_equal(iu.seq_len, 3);
    assert_int_equal(iu.seq[2], 0x05);
    assert_int_equal(cmn_gp_iu_parse(in, 30, 3, &iu), CMN_EPROTO);
    assert_int_equal(cmn_gp_iu_parse(in, 29, 1, &iu), CMN_EPROTO);
    assert_int_equal(cmn_gp_iu_parse(in, 27, 0, &iu), CMN_ESHORT);
    assert_int_equal(cmn_gp_iu_parse(in, 28, 4, &iu), CMN_EINVAL);
}

static void
test_apdu_coolkey_parsers(void **state)
{
    uint8_t in[64];
    size_t n;
    struct cmn_ck_status st;
    struct cmn_ck_lifecycle lc;
    struct cmn_ck_object ob;
    struct cmn_ck_builtin_acl acl;
    uint32_t build;
    uint16_t v16;
    uint8_t nonce[8];
    char text[64];

    (void)state;
    /* GET STATUS §3.3 */
    n = unhex("01 01 01 04 00 00 40 00 00 00 20 00 01 03 00 01", in, sizeof(in));
    assert_int_equal(cmn_ck_status_parse(in, n, &st), CMN_OK);
    assert_int_equal(st.proto_major, 1);
    assert_int_equal(st.applet_minor, 4);
    assert_int_equal(st.total_mem, 0x4000);
    assert_int_equal(st.free_mem, 0x2000);
    assert_int_equal(st.num_pins, 1);
    assert_int_equal(st.num_keys, 3);
    assert_int_equal(st.logged_ids, 1);
    assert_int_equal(cmn_ck_status_parse(in, 15, &st), CMN_ESHORT);
    assert_int_equal(cmn_ck_status_parse(in, 17, &st), CMN_EPROTO);
    /* GET VERSION */
    n = unhex("58 76 80 72", in, sizeof(in));
    assert_int_equal(cmn_ck_version_parse(in, n, &build), CMN_OK);
    assert_int_equal(build, 0x58768072);
    assert_int_equal(cmn_ck_version_parse(in, 3, &build), CMN_ESHORT);
    /* GET LIFE CYCLE, 1 and 4 bytes */
    n = unhex("0F 01 01 01", in, sizeof(in));
    assert_int_equal(cmn_ck_lifecycle_parse(in, 1, &lc), CMN_OK);
    assert_int_equal(lc.state, 0x0F);
    assert_false(lc.extended);
    assert_int_equal(cmn_ck_lifecycle_parse(in, n, &lc), CMN_OK);
    assert_true(lc.extended);
    assert_int_equal(lc.proto_minor, 1);
    assert_int_equal(cmn_ck_lifecycle_parse(in, 2, &lc), CMN_EPROTO);
    assert_int_equal(cmn_ck_lifecycle_parse(in, 0, &lc), CMN_ESHORT);
    /* LIST OBJECTS entry */
    n = unhex("7A 30 00 00 00 00 04 00 FF FF 40 00 40 00", in, sizeof(in));
    assert_int_equal(cmn_ck_object_parse(in, n, &ob), CMN_OK);
    assert_int_equal(ob.id, 0x7A300000);
    assert_int_equal(ob.size, 0x400);
    assert_int_equal(ob.acl_read, 0xFFFF);
    assert_int_equal(ob.acl_delete, 0x4000);
    assert_int_equal(cmn_ck_object_parse(in, 13, &ob), CMN_ESHORT);
    /* small fixed answers */
    n = unhex("00 01", in, sizeof(in));
    assert_int_equal(cmn_ck_pins_parse(in, n, &v16), CMN_OK);
    assert_int_equal(v16, 1);
    assert_int_equal(cmn_ck_keygen_len_parse(in, n, &v16), CMN_OK);
    n = unhex("01 02 03 04 05 06 07 08", in, sizeof(in));
    assert_int_equal(cmn_ck_nonce_parse(in, n, nonce), CMN_OK);
    assert_memory_equal(nonce, in, 8);
    assert_int_equal(cmn_ck_nonce_parse(in, 9, nonce), CMN_EPROTO);
    n = unhex("40 00 40 00 40 00 00", in, sizeof(in));
    assert_int_equal(cmn_ck_builtin_acl_parse(in, n, &acl), CMN_OK);
    assert_int_equal(acl.create_pin, 0x4000);
    assert_int_equal(acl.change_enable, 0);
    /* issuer info */
    memset(in, 0, sizeof(in));
    memcpy(in, "http://lb/tps", 13);
    assert_int_equal(cmn_ck_issuer_info_parse(in, sizeof(in), text, sizeof(text)), CMN_OK);
    assert_string_equal(text, "http://lb/tps");
    assert_int_equal(cmn_ck_issuer_info_parse(in, sizeof(in), text, 5), CMN_ETOOBIG);
    in[3] = '\n';
    assert_int_equal(cmn_ck_issuer_info_parse(in, sizeof(in), text, sizeof(text)), CMN_EPROTO);
    /* compute crypt */
    {
        const uint8_t *res;
        size_t rn;

        n = unhex("00 03 AA BB CC", in, sizeof(in));
        assert_int_equal(cmn_ck_crypt_parse(in, n, &res, &rn), CMN_OK);
        assert_int_equal(rn, 3);
        assert_ptr_equal(res, in + 2);
        assert_int_equal(cmn_ck_crypt_parse(in, 4, &res, &rn), CMN_ESHORT);
        assert_int_equal(cmn_ck_crypt_parse(in, 6, &res, &rn), CMN_EPROTO);
    }
}

static void
test_apdu_keygen_buffer(void **state)
{
    /* RSA-1024: blobLen 008B, blob 00 01 0400 0080 mod(128) 0003 010001, proofLen 0080 */
    uint8_t buf[2 + 139 + 2 + 128];
    struct cmn_ck_keygen_out out;
    size_t o = 0;

    (void)state;
    buf[o++] = 0x00;
    buf[o++] = 0x8B;
    buf[o++] = 0x00;
    buf[o++] = 0x01;
    buf[o++] = 0x04;
    buf[o++] = 0x00;
    buf[o++] = 0x00;
    buf[o++] = 0x80;
    memset(buf + o, 0xC1, 128);
    o += 128;
    buf[o++] = 0x00;
    buf[o++] = 0x03;
    buf[o++] = 0x01;
    buf[o++] = 0x00;
    buf[o++] = 0x01;
    buf[o++] = 0x00;
    buf[o++] = 0x80;
    memset(buf + o, 0x5F, 128);
    o += 128;
    assert_int_equal(o, sizeof(buf));
    assert_int_equal(sizeof(buf), 0x10F); /* the GENERATE KEY answer 01 0F (§3.4) */
    assert_int_equal(cmn_ck_keygen_parse(buf, sizeof(buf), &out), CMN_OK);
    assert_int_equal(out.key_bits, 1024);
    assert_int_equal(out.blob_len, 139);
    assert_ptr_equal(out.blob, buf + 2);
    assert_int_equal(out.mod_len, 128);
    assert_ptr_equal(out.modulus, buf + 8);
    assert_int_equal(out.exp_len, 3);
    assert_int_equal(out.exponent[0], 0x01);
    assert_int_equal(out.proof_len, 128);
    /* every truncation fails, never over-reads */
    for (size_t k = 0; k < sizeof(buf); k++)
        assert_int_not_equal(cmn_ck_keygen_parse(buf, k, &out), CMN_OK);
    /* modulus longer than the key size, wrong blob type */
    buf[4] = 0x02;
    buf[5] = 0x00; /* 512 bits but 128-byte modulus */
    assert_int_equal(cmn_ck_keygen_parse(buf, sizeof(buf), &out), CMN_EPROTO);
    buf[4] = 0x04;
    buf[3] = 0x02;
    assert_int_equal(cmn_ck_keygen_parse(buf, sizeof(buf), &out), CMN_EPROTO);
}

static void
test_apdu_status_words(void **state)
{
    char buf[128];

    (void)state;
    assert_string_equal(cmn_sw_name(0x9000), "SW_OK");
    assert_string_equal(cmn_sw_name(0x9C02), "SW_AUTH_FAILED");
    assert_string_equal(cmn_sw_name(0x9C12), "SW_SEQUENCE_END");
    assert_string_equal(cmn_sw_name(0x6A88), "SW_REF_NOT_FOUND");
    assert_string_equal(cmn_sw_name(0x6982), "SW_SECURITY_STATUS");
    assert_string_equal(cmn_sw_name(0x6110), "SW_MORE_DATA");
    assert_string_equal(cmn_sw_name(0x6C2D), "SW_WRONG_LE");
    assert_string_equal(cmn_sw_name(0x63C2), "SW_VERIFY_FAILED");
    assert_string_equal(cmn_sw_name(0x1234), "SW_UNKNOWN");
    assert_string_equal(cmn_sw_str(0x1234), "unknown status word");
    assert_non_null(strstr(cmn_sw_str(0x9C0C), "blocked"));
    assert_string_equal(cmn_sw_format(0x6A82, buf, sizeof(buf)),
                        "6A82 SW_NOT_FOUND: application or file not found");
    assert_string_equal(cmn_sw_format(0x6A82, buf, 5), "6A82");
    assert_int_equal(cmn_sw_rc(0x9000), CMN_OK);
    assert_int_equal(cmn_sw_rc(0x9C12), CMN_ECARD);
}

static void
test_apdu_applet_version(void **state)
{
    char v[CMN_APPLET_VERSION_SIZE];

    (void)state;
    assert_int_equal(cmn_applet_version_format(1, 4, 0x58768072, v, sizeof(v)), CMN_OK);
    assert_string_equal(v, "1.4.58768072");
    assert_int_equal(cmn_applet_version_format(1, 4, 0x4A5BC, v, sizeof(v)), CMN_OK);
    assert_string_equal(v, "1.4.0004a5bc");
    assert_true(cmn_applet_version_eq(v, "1.4.0004A5BC"));
    assert_false(cmn_applet_version_eq(v, "1.4.0004a5bd"));
    assert_false(cmn_applet_version_eq(v, NULL));
    assert_int_equal(cmn_applet_version_format(255, 255, 0xFFFFFFFF, v, sizeof(v)), CMN_OK);
    assert_string_equal(v, "255.255.ffffffff");
    assert_int_equal(cmn_applet_version_format(255, 255, 0xFFFFFFFF, v, 16), CMN_ETOOBIG);
    assert_string_equal(v, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apdu_encode_decode_cases),
        cmocka_unit_test(test_apdu_gp_builders),
        cmocka_unit_test(test_apdu_load_blocks),
        cmocka_unit_test(test_apdu_coolkey_builders),
        cmocka_unit_test(test_apdu_fci),
        cmocka_unit_test(test_apdu_cplc),
        cmocka_unit_test(test_apdu_card_recognition),
        cmocka_unit_test(test_apdu_keyinfo),
        cmocka_unit_test(test_apdu_init_update_response),
        cmocka_unit_test(test_apdu_coolkey_parsers),
        cmocka_unit_test(test_apdu_keygen_buffer),
        cmocka_unit_test(test_apdu_status_words),
        cmocka_unit_test(test_apdu_applet_version),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
