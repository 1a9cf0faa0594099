/* tests/unit/common/test_crypto.c - secure-channel primitives against published vectors:
 * FIPS 81 DES, FIPS 197 AES, RFC 4493 AES-CMAC, RFC 4231 HMAC-SHA256, and the KCV / 3DES
 * values of the card and secure channel spec §4.1, §5.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/crypto.h"

/* Decodes spaced or unspaced hex; the test fails on bad hex. */
static size_t
hx(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    char tmp[1024];
    size_t j = 0;

    for (size_t i = 0; s[i] != '\0'; i++)
        if (s[i] != ' ' && j < sizeof(tmp) - 1)
            tmp[j++] = s[i];
    tmp[j] = '\0';
    assert_int_equal(cmn_hex_decode(tmp, j, false, out, cap, &n), CMN_OK);
    return n;
}

#define DEV "404142434445464748494A4B4C4D4E4F"

static void
test_crypto_des_fips81(void **state)
{
    uint8_t key[8], in[8], out[8], back[8], want[8];

    (void)state;
    /* FIPS 81 / classic: key 0123456789ABCDEF, "Now is t" */
    hx("0123456789ABCDEF", key, sizeof(key));
    hx("4E6F772069732074", in, sizeof(in));
    hx("3FA40E8A984D4815", want, sizeof(want));
    assert_int_equal(cmn_crypto_des_ecb(key, true, in, 8, out), CMN_OK);
    assert_memory_equal(out, want, 8);
    assert_int_equal(cmn_crypto_des_ecb(key, false, out, 8, back), CMN_OK);
    assert_memory_equal(back, in, 8);
    /* single-block CBC with zero IV = ECB */
    assert_int_equal(cmn_crypto_des_cbc(key, NULL, true, in, 8, out), CMN_OK);
    assert_memory_equal(out, want, 8);
    assert_int_equal(cmn_crypto_des_ecb(key, true, in, 7, out), CMN_EINVAL);
}

static void
test_crypto_des3_dev_under_dev(void **state)
{
    uint8_t dev[16], out[16], back[16], want[16], kcv[3];
    struct cmn_key k;

    (void)state;
    hx(DEV, dev, sizeof(dev));
    /* card spec §5.1: 3DES-ECB(DEV, DEV) */
    hx("B4 BA A8 9A 8C D0 29 2B 45 21 0E 1B C8 4B 1C 31", want, sizeof(want));
    assert_int_equal(cmn_crypto_des3_ecb(dev, 16, true, dev, 16, out), CMN_OK);
    assert_memory_equal(out, want, 16);
    assert_int_equal(cmn_crypto_des3_ecb(dev, 16, false, out, 16, back), CMN_OK);
    assert_memory_equal(back, dev, 16);
    /* in place */
    memcpy(back, dev, 16);
    assert_int_equal(cmn_crypto_des3_ecb(dev, 16, true, back, 16, back), CMN_OK);
    assert_memory_equal(back, want, 16);
    /* 24-byte K1K2K1 gives the same */
    {
        uint8_t k24[24];

        memcpy(k24, dev, 16);
        memcpy(k24 + 16, dev, 8);
        assert_int_equal(cmn_crypto_des3_ecb(k24, 24, true, dev, 16, out), CMN_OK);
        assert_memory_equal(out, want, 16);
    }
    /* KCVs of the developer key (§4.2) */
    assert_int_equal(cmn_crypto_kcv_des(dev, 16, kcv), CMN_OK);
    assert_memory_equal(kcv, "\x8B\xAF\x47", 3);
    assert_int_equal(cmn_crypto_kcv_aes(dev, 16, kcv), CMN_OK);
    assert_memory_equal(kcv, "\x50\x4A\x77", 3);
    assert_int_equal(cmn_key_set(&k, CMN_KEY_AES, dev, 16), CMN_OK);
    assert_int_equal(cmn_key_kcv(&k, kcv), CMN_OK);
    assert_memory_equal(kcv, "\x50\x4A\x77", 3);
    k.alg = CMN_KEY_DES3;
    assert_int_equal(cmn_key_kcv(&k, kcv), CMN_OK);
    assert_memory_equal(kcv, "\x8B\xAF\x47", 3);
    cmn_key_wipe(&k);
    /* wrong key lengths */
    assert_int_equal(cmn_crypto_des3_ecb(dev, 8, true, dev, 16, out), CMN_EINVAL);
    assert_int_equal(cmn_crypto_kcv_aes(dev, 15, kcv), CMN_EINVAL);
    assert_int_equal(cmn_key_set(&k, CMN_KEY_DES3, dev, 8), CMN_EINVAL);
    assert_int_equal(cmn_key_set(&k, CMN_KEY_AES, dev, 33), CMN_EINVAL);
}

static void
test_crypto_des3_cbc_chains(void **state)
{
    uint8_t dev[16], in[24], ecb[24], cbc[24], x[8], iv[8], back[24];

    (void)state;
    hx(DEV, dev, sizeof(dev));
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 7 + 3);
    hx("0102030405060708", iv, sizeof(iv));
    assert_int_equal(cmn_crypto_des3_cbc(dev, 16, iv, true, in, 24, cbc), CMN_OK);
    /* recompute CBC by hand from ECB */
    memcpy(x, iv, 8);
    for (size_t b = 0; b < 3; b++) {
        for (size_t i = 0; i < 8; i++)
            x[i] ^= in[8 * b + i];
        assert_int_equal(cmn_crypto_des3_ecb(dev, 16, true, x, 8, ecb + 8 * b), CMN_OK);
        memcpy(x, ecb + 8 * b, 8);
    }
    assert_memory_equal(cbc, ecb, 24);
    assert_int_equal(cmn_crypto_des3_cbc(dev, 16, iv, false, cbc, 24, back), CMN_OK);
    assert_memory_equal(back, in, 24);
}

static void
test_crypto_aes_fips197(void **state)
{
    uint8_t key[32], in[16], out[16], want[16], back[16];
    static const struct {
        const char *key, *want;
    } v[] = {
        /* FIPS 197 appendix C.1, C.2, C.3 */
        {"000102030405060708090a0b0c0d0e0f", "69c4e0d86a7b0430d8cdb78070b4c55a"},
        {"000102030405060708090a0b0c0d0e0f1011121314151617", "dda97ca4864cdfe06eaf70a0ec0d7191"},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
         "8ea2b7ca516745bfeafc49904b496089"},
    };

    (void)state;
    hx("00112233445566778899aabbccddeeff", in, sizeof(in));
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t kl = hx(v[i].key, key, sizeof(key));

        hx(v[i].want, want, sizeof(want));
        assert_int_equal(cmn_crypto_aes_ecb(key, kl, true, in, 16, out), CMN_OK);
        assert_memory_equal(out, want, 16);
        assert_int_equal(cmn_crypto_aes_ecb(key, kl, false, out, 16, back), CMN_OK);
        assert_memory_equal(back, in, 16);
        assert_int_equal(cmn_crypto_aes_cbc(key, kl, NULL, true, in, 16, out), CMN_OK);
        assert_memory_equal(out, want, 16);
    }
    assert_int_equal(cmn_crypto_aes_ecb(key, 20, true, in, 16, out), CMN_EINVAL);
    assert_int_equal(cmn_crypto_aes_cbc(key, 16, NULL, true, in, 15, out), CMN_EINVAL);
}

static void
test_crypto_aes_cmac_rfc4493(void **state)
{
    static const char *msg = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                             "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    static const struct {
        size_t n;
        const char *mac;
    } v[] = {
        /* RFC 4493 §4, examples 1-4 */
        {0, "bb1d6929e95937287fa37d129b756746"},
        {16, "070a16b46b4d4144f79bdd9dd04a287c"},
        {40, "dfa66747de9ae63030ca32611497c827"},
        {64, "51f0bebf7e3b9d92fc49741779363cfe"},
    };
    uint8_t key[16], m[64], mac[16], want[16];

    (void)state;
    hx("2b7e151628aed2a6abf7158809cf4f3c", key, sizeof(key));
    hx(msg, m, sizeof(m));
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        hx(v[i].mac, want, sizeof(want));
        assert_int_equal(cmn_crypto_aes_cmac(key, 16, m, v[i].n, mac), CMN_OK);
        assert_memory_equal(mac, want, 16);
    }
    assert_int_equal(cmn_crypto_aes_cmac(key, 17, m, 16, mac), CMN_EINVAL);
}

static void
test_crypto_hmac_rfc4231(void **state)
{
    uint8_t key[20], mac[32], want[32];

    (void)state;
    /* RFC 4231 test case 1 */
    memset(key, 0x0b, sizeof(key));
    hx("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want, 32);
    assert_int_equal(cmn_crypto_hmac_sha256(key, 20, (const uint8_t *)"Hi There", 8, mac), CMN_OK);
    assert_memory_equal(mac, want, 32);
    /* test case 2 */
    hx("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
    assert_int_equal(cmn_crypto_hmac_sha256((const uint8_t *)"Jefe", 4,
                                            (const uint8_t *)"what do ya want for nothing?", 28,
                                            mac),
                     CMN_OK);
    assert_memory_equal(mac, want, 32);
    assert_int_equal(cmn_crypto_hmac_sha256(key, 0, key, 1, mac), CMN_EINVAL);
}

static void
test_crypto_pad80(void **state)
{
    uint8_t b[32];
    size_t n = 0;

    (void)state;
    memset(b, 0xAA, sizeof(b));
    assert_int_equal(cmn_pad80(b, 7, sizeof(b), 8, false, &n), CMN_OK);
    assert_int_equal(n, 8);
    assert_int_equal(b[7], 0x80);
    assert_int_equal(cmn_pad80(b, 8, sizeof(b), 8, false, &n), CMN_OK);
    assert_int_equal(n, 8); /* aligned: SCP01 adds nothing */
    assert_int_equal(cmn_pad80(b, 8, sizeof(b), 8, true, &n), CMN_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(b + 8, "\x80\0\0\0\0\0\0\0", 8);
    assert_int_equal(cmn_unpad80(b, 16, 8, &n), CMN_OK);
    assert_int_equal(n, 8);
    assert_int_equal(cmn_pad80(b, 0, sizeof(b), 16, true, &n), CMN_OK);
    assert_int_equal(n, 16);
    assert_int_equal(cmn_unpad80(b, 16, 16, &n), CMN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(cmn_pad80(b, 16, 16, 16, true, &n), CMN_ETOOBIG);
    /* malformed padding */
    memset(b, 0, 16);
    assert_int_equal(cmn_unpad80(b, 16, 8, &n), CMN_EINVAL);  /* no 80 */
    b[3] = 0x80;
    assert_int_equal(cmn_unpad80(b, 16, 8, &n), CMN_EINVAL);  /* 80 not in last block */
    b[15] = 0x01;
    assert_int_equal(cmn_unpad80(b, 16, 8, &n), CMN_EINVAL);  /* last byte not 00/80 */
    assert_int_equal(cmn_unpad80(b, 15, 8, &n), CMN_EINVAL);  /* not whole blocks */
}

static void
test_crypto_mac3_and_retail(void **state)
{
    uint8_t key[16], m[20], mac[8], mac2[8], x[8], pad[24];
    size_t n = 0;

    (void)state;
    hx("0123456789ABCDEFFEDCBA9876543210", key, sizeof(key));
    for (size_t i = 0; i < sizeof(m); i++)
        m[i] = (uint8_t)(0xA0 + i);
    /* MAC3 = last block of 3DES-CBC over the padded message */
    memcpy(pad, m, 20);
    assert_int_equal(cmn_pad80(pad, 20, sizeof(pad), 8, true, &n), CMN_OK);
    assert_int_equal(n, 24);
    {
        uint8_t c[24];

        assert_int_equal(cmn_crypto_des3_cbc(key, 16, NULL, true, pad, 24, c), CMN_OK);
        assert_int_equal(cmn_crypto_mac3(key, 16, NULL, m, 20, mac), CMN_OK);
        assert_memory_equal(mac, c + 16, 8);
    }
    /* retail MAC: single DES for blocks 1..2, 3DES for the last */
    assert_int_equal(cmn_crypto_des_cbc(key, NULL, true, pad, 16, pad), CMN_OK);
    for (size_t i = 0; i < 8; i++)
        x[i] = pad[16 + i] ^ pad[8 + i];
    assert_int_equal(cmn_crypto_des3_ecb(key, 16, true, x, 8, mac2), CMN_OK);
    assert_int_equal(cmn_crypto_retail_mac(key, NULL, m, 20, mac), CMN_OK);
    assert_memory_equal(mac, mac2, 8);
    /* one block: retail MAC = 3DES of (block ^ ICV) = MAC3 */
    assert_int_equal(cmn_crypto_retail_mac(key, m, m, 5, mac), CMN_OK);
    assert_int_equal(cmn_crypto_mac3(key, 16, m, m, 5, mac2), CMN_OK);
    assert_memory_equal(mac, mac2, 8);
    /* empty message is one pad block */
    assert_int_equal(cmn_crypto_mac3(key, 16, NULL, NULL, 0, mac), CMN_OK);
    assert_int_equal(cmn_crypto_des3_ecb(key, 16, true, (const uint8_t *)"\x80\0\0\0\0\0\0\0", 8,
                                         mac2),
                     CMN_OK);
    assert_memory_equal(mac, mac2, 8);
    assert_int_equal(cmn_crypto_mac3(key, 8, NULL, m, 5, mac), CMN_EINVAL);
}

static void
test_crypto_parity_and_random(void **state)
{
    uint8_t k[16], r1[32], r2[32];

    (void)state;
    /* card spec §5.1 NIST ENC before and after parity */
    hx("0f4fe486b5842e3cbd07700ccb1bbfa5", k, sizeof(k));
    cmn_crypto_des_parity(k, 16);
    hx("0E4FE586B5852F3DBC07700DCB1ABFA4", r1, 16);
    assert_memory_equal(k, r1, 16);
    assert_int_equal(cmn_crypto_random(r1, 32), CMN_OK);
    assert_int_equal(cmn_crypto_random(r2, 32), CMN_OK);
    assert_memory_not_equal(r1, r2, 32);
}

static void
test_crypto_kdf_nist_and_scp03(void **state)
{
    uint8_t mk[16], kdd[10], out[48], want[48], ctx[16], s[16];

    (void)state;
    /* card spec §5.1: NIST SP800-108 from MK and KDD, before parity */
    hx("0123456789ABCDEFFEDCBA9876543210", mk, sizeof(mk));
    hx("40907901001F12345678", kdd, sizeof(kdd));
    hx("0f4fe486b5842e3cbd07700ccb1bbfa5b297e1f4d48c1205e07309a71920caab"
       "c94e015ce4ad0116082b5eff82977d9c",
       want, sizeof(want));
    assert_int_equal(cmn_kdf_sp800_108_hmac(mk, 16, 0x04, kdd, 10, out, 48), CMN_OK);
    assert_memory_equal(out, want, 48);
    assert_int_equal(cmn_kdf_sp800_108_hmac(mk, 16, 0x04, kdd, 65, out, 48), CMN_EINVAL);
    /* card spec §5.5: SCP03 S-ENC from DEV with ctx host || card challenge */
    hx(DEV, mk, sizeof(mk));
    hx("2FB79FB704FA60E8B969B0CA37272F89", ctx, sizeof(ctx));
    hx("D0 96 FA 98 2D E0 83 56 A4 3B DE 2F 56 C3 93 DB", want, 16);
    assert_int_equal(cmn_kdf_scp03(mk, 16, 0x04, ctx, 16, 128, s), CMN_OK);
    assert_memory_equal(s, want, 16);
    assert_int_equal(cmn_kdf_scp03(mk, 16, 0x04, ctx, 16, 100, s), CMN_EINVAL);
}

static void
test_crypto_key_encrypt_rule(void **state)
{
    uint8_t dev[16], in[16], out[16], want[16], back[16];
    struct cmn_key k;

    (void)state;
    hx(DEV, dev, sizeof(dev));
    hx("000102030405060708090A0B0C0D0E0F", in, sizeof(in));
    /* card spec §5.6 */
    assert_int_equal(cmn_key_set(&k, CMN_KEY_DES3, dev, 16), CMN_OK);
    hx("F1 D7 5E 4F 0D 37 C2 2C B8 D5 4E 62 53 BB 40 B1", want, 16);
    assert_int_equal(cmn_key_encrypt(&k, in, 16, out), CMN_OK);
    assert_memory_equal(out, want, 16);
    assert_int_equal(cmn_key_decrypt(&k, out, 16, back), CMN_OK);
    assert_memory_equal(back, in, 16);
    k.alg = CMN_KEY_AES;
    hx("3D 0F A4 B8 55 D2 A5 AA 49 54 B8 B5 DF 58 2A 3A", want, 16);
    assert_int_equal(cmn_key_encrypt(&k, in, 16, out), CMN_OK);
    assert_memory_equal(out, want, 16);
    assert_int_equal(cmn_key_decrypt(&k, out, 16, back), CMN_OK);
    assert_memory_equal(back, in, 16);
    assert_int_equal(cmn_key_encrypt(&k, in, 8, out), CMN_EINVAL);
    k.len = 7;
    assert_int_equal(cmn_key_encrypt(&k, in, 16, out), CMN_EINVAL);
    cmn_key_wipe(&k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_des_fips81),
        cmocka_unit_test(test_crypto_des3_dev_under_dev),
        cmocka_unit_test(test_crypto_des3_cbc_chains),
        cmocka_unit_test(test_crypto_aes_fips197),
        cmocka_unit_test(test_crypto_aes_cmac_rfc4493),
        cmocka_unit_test(test_crypto_hmac_rfc4231),
        cmocka_unit_test(test_crypto_pad80),
        cmocka_unit_test(test_crypto_mac3_and_retail),
        cmocka_unit_test(test_crypto_parity_and_random),
        cmocka_unit_test(test_crypto_kdf_nist_and_scp03),
        cmocka_unit_test(test_crypto_key_encrypt_rule),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
