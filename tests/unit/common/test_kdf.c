/* tests/unit/common/test_kdf.c - card key diversification against the card and secure
 * channel spec §5.1 (VISA2, EMV, NIST SP800-108, GP-KMC rows) and §5.5 (EMV/DES3 developer
 * keys), and the TKS developer-key rule of §4.2 / backends §3.1-3.2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/kdf.h"
#include "common/scp.h"

#define DEV "404142434445464748494A4B4C4D4E4F"
#define MK "0123456789ABCDEFFEDCBA9876543210"
#define KDD "40907901001F12345678" /* = CUID in §5 */

static size_t
hx(const char *s, uint8_t *out, size_t cap)
{
    char tmp[512];
    size_t j = 0, n = 0;

    for (size_t i = 0; s[i] != '\0'; i++)
        if (s[i] != ' ' && j < sizeof(tmp) - 1)
            tmp[j++] = s[i];
    tmp[j] = '\0';
    assert_int_equal(cmn_hex_decode(tmp, j, false, out, cap, &n), CMN_OK);
    return n;
}

static void
key_hx(struct cmn_key *k, enum cmn_key_alg alg, const char *s)
{
    uint8_t b[CMN_KEY_MAX];
    size_t n = hx(s, b, sizeof(b));

    assert_int_equal(cmn_key_set(k, alg, b, n), CMN_OK);
}

static void
key_eq(const struct cmn_key *k, const char *s)
{
    uint8_t b[CMN_KEY_MAX];
    size_t n = hx(s, b, sizeof(b));

    assert_int_equal(k->len, n);
    assert_memory_equal(k->v, b, n);
}

static void
kcv_eq(const struct cmn_key *k, const char *s)
{
    uint8_t kcv[3], want[3];

    hx(s, want, 3);
    assert_int_equal(cmn_key_kcv(k, kcv), CMN_OK);
    assert_memory_equal(kcv, want, 3);
}

/* §5.1, one table: method, master key (alg), the three expected keys. */
struct div_row {
    enum cmn_divers m;
    enum cmn_key_alg mk_alg;
    const char *mk;
    enum cmn_key_alg out_alg;
    const char *enc, *mac, *kek;
};

static const struct div_row rows[] = {
    {CMN_DIVERS_VISA2, CMN_KEY_DES3, MK, CMN_KEY_DES3,
     "E6 55 8C B0 AD 04 66 0F 8C 27 36 5D 1B 8B 7D A9",
     "E5 6E 7F BC A7 5B C7 20 44 FD B7 CF A8 F7 12 A4",
     "EA BC 23 45 BC 03 3D 1A DB 1C FC 4E 99 25 1E 9A"},
    {CMN_DIVERS_EMV, CMN_KEY_DES3, MK, CMN_KEY_AES,
     "C2 A8 3A 96 82 E6 F8 EF F2 A9 AB C3 E7 81 2B A1",
     "3D 6B 2F 52 40 38 23 9F 2B 21 23 72 D4 46 6F E3",
     "72 F9 0F 87 30 95 E2 CD 0D E2 B3 0E 63 B5 E0 B8"},
    {CMN_DIVERS_NIST, CMN_KEY_DES3, MK, CMN_KEY_DES3,
     "0E 4F E5 86 B5 85 2F 3D BC 07 70 0D CB 1A BF A4",
     "B3 97 E0 F4 D5 8C 13 04 E0 73 08 A7 19 20 CB AB",
     "C8 4F 01 5D E5 AD 01 16 08 2A 5E FE 83 97 7C 9D"},
    {CMN_DIVERS_GPKMC, CMN_KEY_AES, DEV, CMN_KEY_AES,
     "58 13 48 02 DC 3C 01 D8 23 33 AD 7B 61 F3 4C 5C",
     "A0 41 42 72 36 FA F8 35 9A B5 64 D1 2C 72 B2 2A",
     "A4 98 3F 83 20 31 44 24 58 0D 45 B3 8C E0 1D 51"},
    /* §5.5: the shipped SCP03 profile: EMV of DEV under 3DES, used as AES-128 */
    {CMN_DIVERS_EMV, CMN_KEY_DES3, DEV, CMN_KEY_AES,
     "3B FE DA 51 6D D2 45 C0 C7 19 23 00 EB 1C A8 DA",
     "1F AF 95 A2 1F FC CA E1 1D BA C3 06 4C A7 F1 DD",
     "FA 3E CE CC A1 91 16 2E B3 26 9B A0 9F 6E 12 8E"},
    {CMN_DIVERS_NONE, CMN_KEY_DES3, DEV, CMN_KEY_AES, DEV, DEV, DEV},
};

static void
test_kdf_spec_table(void **state)
{
    uint8_t kdd[10];
    struct cmn_key mk;
    struct cmn_keyset ks;

    (void)state;
    hx(KDD, kdd, sizeof(kdd));
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        key_hx(&mk, rows[i].mk_alg, rows[i].mk);
        assert_int_equal(cmn_kdf_diversify_set(rows[i].m, &mk, &mk, &mk, kdd, kdd,
                                               rows[i].out_alg, 0x02, &ks),
                         CMN_OK);
        assert_int_equal(ks.version, 0x02);
        key_eq(&ks.enc, rows[i].enc);
        key_eq(&ks.mac, rows[i].mac);
        key_eq(&ks.kek, rows[i].kek);
        assert_int_equal(ks.enc.alg, rows[i].out_alg);
        cmn_keyset_wipe(&ks);
        cmn_key_wipe(&mk);
    }
}

static void
test_kdf_visa2_kcvs(void **state)
{
    uint8_t kdd[10];
    struct cmn_key mk, k;

    (void)state;
    hx(KDD, kdd, sizeof(kdd));
    key_hx(&mk, CMN_KEY_DES3, MK);
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_VISA2, &mk, CMN_KDF_ENC, kdd, kdd, CMN_KEY_DES3, &k), CMN_OK);
    kcv_eq(&k, "A3 5F 3D");
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_VISA2, &mk, CMN_KDF_MAC, kdd, kdd, CMN_KEY_DES3, &k), CMN_OK);
    kcv_eq(&k, "6C 73 BA");
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_VISA2, &mk, CMN_KDF_KEK, kdd, kdd, CMN_KEY_DES3, &k), CMN_OK);
    kcv_eq(&k, "74 DD DC");
    /* the RMAC type exists for 3DES methods only */
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_EMV, &mk, CMN_KDF_RMAC, kdd, kdd, CMN_KEY_AES, &k), CMN_OK);
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_NIST, &mk, CMN_KDF_RMAC, kdd, kdd, CMN_KEY_DES3, &k),
        CMN_EINVAL);
    /* unsuitable master keys */
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_GPKMC, &mk, CMN_KDF_ENC, kdd, kdd, CMN_KEY_AES, &k),
        CMN_EINVAL);
    mk.alg = CMN_KEY_AES;
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_VISA2, &mk, CMN_KDF_ENC, kdd, kdd, CMN_KEY_DES3, &k),
        CMN_EINVAL);
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_NIST, &mk, CMN_KDF_ENC, kdd, kdd, CMN_KEY_AES, &k),
        CMN_EINVAL);
    cmn_key_wipe(&mk);
    cmn_key_wipe(&k);
}

static void
test_kdf_gpkmc_aes256(void **state)
{
    uint8_t cuid[10], m[16], want[32];
    struct cmn_key mk, k;

    (void)state;
    hx(KDD, cuid, sizeof(cuid));
    key_hx(&mk, CMN_KEY_AES, DEV DEV);
    assert_int_equal(
        cmn_kdf_diversify(CMN_DIVERS_GPKMC, &mk, CMN_KDF_MAC, cuid, cuid, CMN_KEY_AES, &k),
        CMN_OK);
    assert_int_equal(k.len, 32);
    /* two CMAC blocks, counter 1 and 2, L = 0100 */
    hx("01 00 00 00 02 00 00 00 12 34 56 78 00 1F 01 00", m, 16);
    assert_int_equal(cmn_crypto_aes_cmac(mk.v, 32, m, 16, want), CMN_OK);
    m[0] = 2;
    assert_int_equal(cmn_crypto_aes_cmac(mk.v, 32, m, 16, want + 16), CMN_OK);
    assert_memory_equal(k.v, want, 32);
    cmn_key_wipe(&mk);
    cmn_key_wipe(&k);
}

/* §5.1 rows giving the derivation inputs: each input, run through its primitive, gives the
 * key of the same row (so the inputs the diversifiers build are the spec's). */
static void
test_kdf_spec_inputs(void **state)
{
    uint8_t mk[16], dev[16], in[16], out[32], want[16];

    (void)state;
    hx(MK, mk, 16);
    hx(DEV, dev, 16);
    hx("40 90 00 1F 12 34 F0 01 40 90 00 1F 12 34 0F 01", in, 16); /* VISA2 KDC_ENC */
    assert_int_equal(cmn_crypto_des3_ecb(mk, 16, true, in, 16, out), CMN_OK);
    hx("E6 55 8C B0 AD 04 66 0F 8C 27 36 5D 1B 8B 7D A9", want, 16);
    assert_memory_equal(out, want, 16);
    hx("00 1F 12 34 56 78 F0 01 00 1F 12 34 56 78 0F 01", in, 16); /* EMV KDC_ENC */
    assert_int_equal(cmn_crypto_des3_ecb(mk, 16, true, in, 16, out), CMN_OK);
    hx("C2 A8 3A 96 82 E6 F8 EF F2 A9 AB C3 E7 81 2B A1", want, 16);
    assert_memory_equal(out, want, 16);
    hx("01 00 00 00 01 00 00 00 12 34 56 78 00 1F 00 80", in, 16); /* GP-KMC input ENC */
    assert_int_equal(cmn_crypto_aes_cmac(dev, 16, in, 16, out), CMN_OK);
    hx("58 13 48 02 DC 3C 01 D8 23 33 AD 7B 61 F3 4C 5C", want, 16);
    assert_memory_equal(out, want, 16);
    {
        uint8_t m[15];

        hx("01 04 00 40 90 79 01 00 1F 12 34 56 78 01 80", m, 15); /* NIST HMAC input i=1 */
        assert_int_equal(cmn_crypto_hmac_sha256(mk, 16, m, 15, out), CMN_OK);
        cmn_crypto_des_parity(out, 16);
        hx("0E 4F E5 86 B5 85 2F 3D BC 07 70 0D CB 1A BF A4", want, 16);
        assert_memory_equal(out, want, 16);
    }
}

static void
test_kdf_developer_rule(void **state)
{
    static const struct {
        enum cmn_scp_proto p;
        uint8_t ki[3];
        size_t n;
        bool dev;
    } t[] = {
        {CMN_SCP01, {0x01, 0x01}, 2, true},  {CMN_SCP01, {0xFF, 0x01}, 2, true},
        {CMN_SCP01, {0x01, 0x02}, 2, false}, {CMN_SCP01, {0x02, 0x01}, 2, false},
        {CMN_SCP02, {0x01, 0x01}, 2, true},  {CMN_SCP02, {0xFF, 0x02}, 2, true},
        {CMN_SCP03, {0x01, 0x03, 0x70}, 3, true}, {CMN_SCP03, {0xFF, 0x03, 0x00}, 3, true},
        {CMN_SCP03, {0x02, 0x03, 0x70}, 3, false}, {CMN_SCP01, {0x01}, 1, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        assert_int_equal(cmn_kdf_is_developer(t[i].p, t[i].ki, t[i].n), t[i].dev);
}

static void
test_kdf_card_keys(void **state)
{
    struct cmn_kdf_cfg cfg;
    struct cmn_keyset dev, out;
    struct cmn_key mk;
    uint8_t kdd[10], cuid[10];
    enum cmn_divers m;

    (void)state;
    cmn_kdf_cfg_default(&cfg);
    hx(KDD, kdd, sizeof(kdd));
    memcpy(cuid, kdd, 10);
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    key_hx(&mk, CMN_KEY_DES3, MK);

    /* SCP01 developer: DEV as is */
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP01, (const uint8_t *)"\x01\x01", 2, &dev, NULL,
                                       kdd, cuid, &out),
                     CMN_OK);
    key_eq(&out.kek, DEV);
    assert_int_equal(out.version, 1);
    /* SCP01 master version 02 with the shipped nistSP800-108KdfOnKeyVersion=00: NIST */
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP01, (const uint8_t *)"\x02\x01", 2, &dev, &mk,
                                       kdd, cuid, &out),
                     CMN_OK);
    key_eq(&out.enc, "0E 4F E5 86 B5 85 2F 3D BC 07 70 0D CB 1A BF A4");
    assert_int_equal(out.version, 2);
    /* ... and VISA2 below the threshold */
    cfg.nist_on_version = 0x03;
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP01, (const uint8_t *)"\x02\x01", 2, &dev, &mk,
                                       kdd, cuid, &out),
                     CMN_OK);
    key_eq(&out.enc, "E6 55 8C B0 AD 04 66 0F 8C 27 36 5D 1B 8B 7D A9");
    /* a master KeyInfo without a master key is refused */
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP01, (const uint8_t *)"\x02\x01", 2, &dev, NULL,
                                       kdd, cuid, &out),
                     CMN_EINVAL);
    /* SCP02 master: VISA2 */
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP02, (const uint8_t *)"\x02\x01", 2, &dev, &mk,
                                       kdd, cuid, &out),
                     CMN_OK);
    key_eq(&out.mac, "E5 6E 7F BC A7 5B C7 20 44 FD B7 CF A8 F7 12 A4");
    /* SCP03 developer with the shipped emv/DES3 profile (§5.5) */
    cmn_kdf_cfg_default(&cfg);
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP03, (const uint8_t *)"\x01\x03\x70", 3, &dev,
                                       NULL, kdd, cuid, &out),
                     CMN_OK);
    assert_int_equal(out.enc.alg, CMN_KEY_AES);
    key_eq(&out.enc, "3B FE DA 51 6D D2 45 C0 C7 19 23 00 EB 1C A8 DA");
    key_eq(&out.kek, "FA 3E CE CC A1 91 16 2E B3 26 9B A0 9F 6E 12 8E");
    /* SCP03 developer, SmartCafe 7 profile none/AES: DEV as AES-128 */
    cfg.prot3_dev = CMN_DIVERS_NONE;
    cfg.prot3_dev_alg = CMN_KEY_AES;
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP03, (const uint8_t *)"\xFF\x03\x00", 3, &dev,
                                       NULL, kdd, cuid, &out),
                     CMN_OK);
    key_eq(&out.mac, DEV);
    assert_int_equal(out.mac.alg, CMN_KEY_AES);
    /* SCP03 master EMV (DES3 master) */
    cmn_kdf_cfg_default(&cfg);
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP03, (const uint8_t *)"\x02\x03\x70", 3, &dev,
                                       &mk, kdd, cuid, &out),
                     CMN_OK);
    key_eq(&out.enc, "C2 A8 3A 96 82 E6 F8 EF F2 A9 AB C3 E7 81 2B A1");
    /* none with a DES3 master is refused */
    cfg.prot3_divers = CMN_DIVERS_NONE;
    assert_int_equal(cmn_kdf_card_keys(&cfg, CMN_SCP03, (const uint8_t *)"\x02\x03\x70", 3, &dev,
                                       &mk, kdd, cuid, &out),
                     CMN_EINVAL);
    /* names */
    assert_int_equal(cmn_kdf_divers_parse("EMV", &m), CMN_OK);
    assert_int_equal(m, CMN_DIVERS_EMV);
    assert_int_equal(cmn_kdf_divers_parse("gpkmc", &m), CMN_OK);
    assert_int_equal(m, CMN_DIVERS_GPKMC);
    assert_int_equal(cmn_kdf_divers_parse("visa", &m), CMN_EINVAL);
    cmn_keyset_wipe(&dev);
    cmn_keyset_wipe(&out);
    cmn_key_wipe(&mk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kdf_spec_table),
        cmocka_unit_test(test_kdf_visa2_kcvs),
        cmocka_unit_test(test_kdf_gpkmc_aes256),
        cmocka_unit_test(test_kdf_spec_inputs),
        cmocka_unit_test(test_kdf_developer_rule),
        cmocka_unit_test(test_kdf_card_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
