/* tests/unit/vtoken/test_applet.c - the emulated CoolKey applet (card spec §3, §7): PINs and
 * their try counters, nonces and ACLs, objects, GENERATE KEY with its proof, COMPUTE CRYPT in
 * both forms, LOGOUT, key import, issuer info, life cycle, and their failure status words. */
#include "vt_test.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/crypto.h"

static void
test_applet_pin_tries_and_block(void **state)
{
    struct vt_fx *f = *state;
    uint8_t r[16];
    size_t rl;

    assert_int_equal(vt_fx_sc(f, 0x40, 0x00, 0x03, "31323334", NULL, NULL), 0x9000);
    assert_int_equal(vt_fx_sc(f, 0x40, 0x00, 0x03, "31323334", NULL, NULL), 0x9C10); /* exists */
    assert_int_equal(vt_fx_sc(f, 0x40, 0x01, 0x03, "313233", NULL, NULL), 0x9C0F);   /* too short */
    assert_int_equal(vt_fx_sc(f, 0x40, 0x01, 0x03, "3132333435363738393031323334353637", NULL, NULL),
                     0x9C0F); /* 17 bytes */
    assert_int_equal(vt_fx_sc(f, 0x40, 0x08, 0x03, "31323334", NULL, NULL), 0x9C10); /* no PIN 8 */
    vt_expect(f->c, "B0 48 00 00 02", "00 01 9000");
    vt_expect(f->c, "B0 42 05 00 04 31 32 33 34", "9C10"); /* no such PIN */
    vt_expect(f->c, "B0 42 00 00 04 39 39 39 39", "9C02");
    vt_expect(f->c, "B0 4A 00 00 01", "02 9000");
    vt_expect(f->c, "B0 42 00 00 04 39 39 39 39", "9C02");
    /* a good PIN restores the tries */
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 04 31 32 33 34", r, &rl), 0x9000);
    assert_int_equal(rl, 8);
    vt_expect(f->c, "B0 4A 00 00 01", "03 9000");
    vt_expect(f->c, "B0 42 00 00 04 39 39 39 39", "9C02");
    vt_expect(f->c, "B0 42 00 00 04 39 39 39 39", "9C02");
    vt_expect(f->c, "B0 42 00 00 04 39 39 39 39", "9C02");
    /* blocked: even the right PIN gets 9C0C */
    vt_expect(f->c, "B0 42 00 00 04 31 32 33 34", "9C0C");
    vt_expect(f->c, "B0 4A 00 00 01", "00 9000");
    /* SET PIN by the RA unblocks with a new value */
    assert_int_equal(vt_fx_sc(f, 0x04, 0x00, 0x00, "35363738", NULL, NULL), 0x9000);
    vt_expect(f->c, "B0 4A 00 00 01", "03 9000");
    vt_expect(f->c, "B0 42 00 00 04 31 32 33 34", "9C02");
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 04 35 36 37 38", r, &rl), 0x9000);
    /* SET PIN and CREATE PIN need the RA */
    vt_expect(f->c, "B0 04 00 00 04 31 32 33 34", "9C06");
    assert_int_equal(vt_fx_sc(f, 0x04, 0x03, 0x00, "35363738", NULL, NULL), 0x9C10); /* absent PIN */
    vt_expect(f->c, "B0 40 01 03 0C 31 32 33 34 00 00 00 00 00 00 00 00", "9C06");
}

static void
test_applet_change_pin_forms(void **state)
{
    struct vt_fx *f = *state;
    uint8_t r[16];
    size_t rl;

    assert_int_equal(vt_fx_sc(f, 0x40, 0x00, 0x05, "31323334", NULL, NULL), 0x9000);
    /* 1-byte lengths (the applet) */
    vt_expect(f->c, "B0 44 00 00 0A 04 31 32 33 34 04 35 35 35 35", "9000");
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 04 35 35 35 35", r, &rl), 0x9000);
    /* 2-byte lengths (libckyapplet, §9 item 7) */
    vt_expect(f->c, "B0 44 00 00 0E 00 04 35 35 35 35 00 06 36 36 36 36 36 36", "9000");
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 06 36 36 36 36 36 36", r, &rl), 0x9000);
    /* wrong old PIN counts a try; bad layout is 9C0F; new PIN too short */
    vt_expect(f->c, "B0 44 00 00 0A 04 31 32 33 34 04 35 35 35 35", "9C02");
    vt_expect(f->c, "B0 4A 00 00 01", "04 9000");
    vt_expect(f->c, "B0 44 00 00 05 09 31 32 33 34", "9C0F");
    vt_expect(f->c, "B0 44 00 00 0A 06 36 36 36 36 36 36 02 35 35", "9C0F");
}

static void
test_applet_objects_acl_and_nonce(void **state)
{
    struct vt_fx *f = *state;
    uint8_t r[300], nonce[8];
    size_t rl;
    char cmd[200];

    /* create with read FFFF, write 4000, delete 4000 */
    assert_int_equal(vt_fx_sc(f, 0x5A, 0, 0, "63 31 00 00 00 00 01 2C FF FF 40 00 40 00", NULL, NULL),
                     0x9000);
    assert_int_equal(vt_fx_sc(f, 0x5A, 0, 0, "6B 32 00 00 00 00 00 10 00 01 00 01 40 00", NULL, NULL),
                     0x9000);
    /* write by the RA, read back by anyone with the zero nonce */
    assert_int_equal(vt_fx_sc(f, 0x54, 0, 0, "63 31 00 00 00 00 00 10 03 AA BB CC", NULL, NULL), 0x9000);
    vt_expect(f->c, "B0 56 00 00 11 63 31 00 00 00 00 00 0F 04 00 00 00 00 00 00 00 00",
              "00 AA BB CC 9000");
    /* beyond the end: 9C0F; absent object: 9C07 */
    vt_expect(f->c, "B0 56 00 00 11 63 31 00 00 00 00 01 2A 04 00 00 00 00 00 00 00 00", "9C0F");
    assert_int_equal(vt_fx_sc(f, 0x54, 0, 0, "63 31 00 00 00 00 01 2B 02 01 02", NULL, NULL), 0x9C0F);
    vt_expect(f->c, "B0 56 00 00 11 63 39 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00", "9C07");
    /* no write right with the default identity; no read right on k2 without PIN 0 */
    vt_expect(f->c, "B0 54 00 00 12 63 31 00 00 00 00 00 00 01 55 00 00 00 00 00 00 00 00",
              "9C06");
    vt_expect(f->c, "B0 56 00 00 11 6B 32 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00", "9C06");
    /* a nonce that is neither zero nor the login nonce */
    vt_expect(f->c, "B0 56 00 00 11 63 31 00 00 00 00 00 0F 04 01 02 03 04 05 06 07 08", "9C06");
    /* no room for a nonce */
    vt_expect(f->c, "B0 56 00 00 04 63 31 00 00", "6700");
    /* log in with PIN 0: k2 becomes readable and writable with the nonce */
    assert_int_equal(vt_fx_sc(f, 0x40, 0x00, 0x05, "31323334", NULL, NULL), 0x9000);
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 04 31 32 33 34", nonce, &rl), 0x9000);
    snprintf(cmd, sizeof(cmd),
             "B0 54 00 00 12 6B 32 00 00 00 00 00 00 01 77 %02X%02X%02X%02X%02X%02X%02X%02X",
             nonce[0], nonce[1], nonce[2], nonce[3], nonce[4], nonce[5], nonce[6], nonce[7]);
    vt_expect(f->c, cmd, "9000");
    snprintf(cmd, sizeof(cmd),
             "B0 56 00 00 11 6B 32 00 00 00 00 00 00 01 %02X%02X%02X%02X%02X%02X%02X%02X",
             nonce[0], nonce[1], nonce[2], nonce[3], nonce[4], nonce[5], nonce[6], nonce[7]);
    vt_expect(f->c, cmd, "77 9000");
    /* the login survives a re-SELECT, not a reset */
    vt_expect(f->c, VT_SELECT_COOLKEY, "9000");
    vt_expect(f->c, cmd, "77 9000");
    vt_expect(f->c, "B0 3C 00 00 10", "01 01 01 04 00 00 40 00 00 00 3E C4 01 00 00 01 9000");
    /* LOGOUT zeroes the nonce */
    vt_expect(f->c, "B0 61 00 00", "9000");
    vt_expect(f->c, cmd, "9C06");
    /* LIST OBJECTS: newest first, then 9C12 */
    vt_expect(f->c, "B0 58 00 00 0E", "6B 32 00 00 00 00 00 10 00 01 00 01 40 00 9000");
    vt_expect(f->c, "B0 58 01 00 0E", "63 31 00 00 00 00 01 2C FF FF 40 00 40 00 9000");
    vt_expect(f->c, "B0 58 01 00 0E", "9C12");
    vt_expect(f->c, "B0 58 02 00 0E", "9C10");
    /* DELETE: the default identity lacks the right, the RA has it (the SELECT above ended
     * the secure channel: open a new one) */
    vt_expect(f->c, "B0 52 00 00 0C 63 31 00 00 00 00 00 00 00 00 00 00", "9C06");
    assert_int_equal(vt_fx_sc(f, 0x52, 0, 0, "63 31 00 00", NULL, NULL), 0x6982);
    {
        struct cmn_keyset dev;

        cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
        vt_sc_open(f->c, &f->host, CMN_SCP01, 0x00, 0x03, &dev);
    }
    assert_int_equal(vt_fx_sc(f, 0x52, 0, 0, "63 31 00 00", NULL, NULL), 0x9000);
    assert_int_equal(vt_fx_sc(f, 0x52, 0, 0, "63 31 00 00", NULL, NULL), 0x9C07);
    /* CREATE OBJECT by the RA replaces; without the RA it is refused; memory is capped */
    assert_int_equal(vt_fx_sc(f, 0x5A, 0, 0, "6B 32 00 00 00 00 00 20 FF FF 40 00 40 00", NULL, NULL),
                     0x9000);
    vt_expect(f->c, "B0 58 00 00 0E", "6B 32 00 00 00 00 00 20 FF FF 40 00 40 00 9000");
    vt_expect(f->c, "B0 5A 00 00 16 7A 30 00 00 00 00 00 10 FF FF 40 00 40 00 "
                    "00 00 00 00 00 00 00 00",
              "9C06");
    assert_int_equal(vt_fx_sc(f, 0x5A, 0, 0, "7A 30 00 00 00 00 7F 00 FF FF 40 00 40 00", NULL, NULL),
                     0x9C01);
    (void)r;
}

static void
test_applet_status_and_misc(void **state)
{
    struct vt_fx *f = *state;
    uint8_t r[300], issuer[224];
    size_t rl;
    char hex[224 * 2 + 1];

    vt_expect(f->c, "B0 F2 00 00 01", "07 9000");
    vt_expect(f->c, "B0 F2 00 00 04", "07 00 01 01 9000");
    assert_int_equal(vt_fx_sc(f, 0xF0, 0x0E, 0x00, NULL, NULL, NULL), 0x9C0F);
    assert_int_equal(vt_fx_sc(f, 0xF0, 0x0F, 0x00, NULL, NULL, NULL), 0x9000);
    vt_expect(f->c, "B0 F2 00 00 01", "0F 9000");
    vt_expect(f->c, "B0 F0 07 00", "9C06"); /* only the RA sets it */
    /* issuer info: 224 bytes, zero padded */
    memset(issuer, 0, sizeof(issuer));
    memcpy(issuer, "http://lb:8080/tps/phoneHome", 28);
    assert_int_equal(cmn_hex_encode(issuer, 28, hex, sizeof(hex)), CMN_OK);
    assert_int_equal(vt_fx_sc(f, 0xF4, 0, 0, hex, NULL, NULL), 0x9000);
    assert_int_equal(vt_txh(f->c, "B0 F6 00 00 E0", r, &rl), 0x9000);
    assert_int_equal(rl, 224);
    assert_memory_equal(r, issuer, 224);
    vt_expect(f->c, "B0 F4 00 00 02 41 42", "9C06");
    /* GET RANDOM, GET BUILTIN ACL, unsupported INS, CLA 00 ignored, CLA 80 */
    assert_int_equal(vt_txh(f->c, "B0 72 00 00 10", r, &rl), 0x9000);
    assert_int_equal(rl, 16);
    vt_expect(f->c, "B0 FA 00 00 07", "40 00 40 00 40 00 00 9000");
    vt_expect(f->c, "B0 08 00 00 02 00 00", "6D00"); /* READ I/O BUFFER: not in v1.4 */
    vt_expect(f->c, "B0 37 00 00", "6700"); /* ECC signature (test_ecc.c): no nonce */
    vt_expect(f->c, "00 CA 9F 7F 2D", "9000");
    vt_expect(f->c, "80 CA 9F 7F 2D", "6D00");
    vt_expect(f->c, "C0 3C 00 00 10", "6E00");
    vt_expect(f->c, "B0 3A 00 00 0B", "9000"); /* LIST KEYS: none */
}

static EVP_PKEY *
pub_from(const uint8_t *n, size_t nl, const uint8_t *e, size_t el)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);

    assert_int_equal(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be), 1);
    p = OSSL_PARAM_BLD_to_param(b);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, p), 1);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn);
    BN_free(be);
    return pk;
}

/* Raw public operation: sig^e mod n. */
static void
rsa_public_raw(EVP_PKEY *pk, const uint8_t *in, size_t n, uint8_t *out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    size_t ol = n;

    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
    assert_int_equal(EVP_PKEY_encrypt(ctx, out, &ol, in, n), 1);
    assert_int_equal(ol, n);
    EVP_PKEY_CTX_free(ctx);
}

static EVP_PKEY *
generate(struct vt_fx *f, unsigned bits, uint8_t p1, uint8_t p2)
{
    uint8_t r[8], io[1024], block[256];
    size_t rl, total, bl, ml, el, pl;
    char hex[120];
    const uint8_t *blob;
    EVP_PKEY *pk;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    static const uint8_t challenge[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

    /* §5.6: challenge 00..0F under DEV = F1D75E4F0D37C22CB8D54E6253BB40B1 */
    snprintf(hex, sizeof(hex), "80 %04X 00 00 10 F1D75E4F0D37C22CB8D54E6253BB40B1 00", bits);
    assert_int_equal(vt_fx_sc(f, 0x0C, p1, p2, hex, r, &rl), 0x9000);
    assert_int_equal(rl, 2);
    total = (size_t)(r[0] << 8 | r[1]);
    assert_int_equal(total, bits == 1024 ? 0x10F : 0x20F);
    vt_fx_read_io(f, total, io);
    bl = (size_t)(io[0] << 8 | io[1]);
    blob = io + 2;
    assert_int_equal(blob[0], 0x00);
    assert_int_equal(blob[1], 0x01);
    assert_int_equal((blob[2] << 8 | blob[3]), bits);
    ml = (size_t)(blob[4] << 8 | blob[5]);
    assert_int_equal(ml, bits / 8);
    el = (size_t)(blob[6 + ml] << 8 | blob[7 + ml]);
    assert_int_equal(el, 3);
    assert_memory_equal(blob + 8 + ml, "\x01\x00\x01", 3);
    assert_int_equal(bl, 8 + ml + el);
    pl = (size_t)(io[2 + bl] << 8 | io[3 + bl]);
    assert_int_equal(pl, ml);
    pk = pub_from(blob + 6, ml, blob + 8 + ml, el);
    /* proof = RSA-SHA1(blob ‖ challenge) (§3.4) */
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha1(), NULL, pk), 1);
    assert_int_equal(EVP_DigestVerifyUpdate(md, blob, bl), 1);
    assert_int_equal(EVP_DigestVerifyUpdate(md, challenge, 16), 1);
    assert_int_equal(EVP_DigestVerifyFinal(md, io + 4 + bl, pl), 1);
    EVP_MD_CTX_free(md);
    (void)block;
    return pk;
}

static void
test_applet_generate_key_and_sign(void **state)
{
    struct vt_fx *f = *state;
    EVP_PKEY *pk;
    uint8_t nonce[8], in[128], r[300], back[128];
    size_t rl;
    struct cmn_apdu a;

    assert_int_equal(vt_fx_sc(f, 0x40, 0x00, 0x7F, "70617373776F7264", NULL, NULL), 0x9000);
    pk = generate(f, 1024, 0x02, 0x03);
    /* key ACLs of §3.4 */
    vt_expect(f->c, "B0 3A 00 00 0B", "02 03 03 04 00 00 00 40 00 00 01 9000");
    vt_expect(f->c, "B0 3A 01 00 0B", "03 01 02 04 00 FF FF 40 00 FF FF 9000");
    vt_expect(f->c, "B0 3A 01 00 0B", "9000");
    /* the PKCS#1 type-1 block the middleware sends */
    memset(in, 0xFF, sizeof(in));
    in[0] = 0x00;
    in[1] = 0x01;
    in[128 - 33] = 0x00;
    memset(in + 128 - 32, 0x5A, 32);
    memset(&a, 0, sizeof(a));
    a.cla = 0xB0;
    a.ins = 0x36;
    a.p1 = 0x02;
    a.p2 = 0x04;
    a.data[0] = 0x00; /* mode raw */
    a.data[1] = 0x03; /* sign */
    a.data[2] = 0x01; /* data in APDU */
    a.data[3] = 0x00;
    a.data[4] = 0x80;
    memcpy(a.data + 5, in, 128);
    memset(a.data + 133, 0, 8); /* zero nonce: not logged in */
    a.lc = 141;
    a.le = -1;
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C06);
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 08 70617373776F7264", nonce, &rl), 0x9000);
    memcpy(a.data + 133, nonce, 8);
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9000);
    assert_int_equal(rl, 130);
    assert_int_equal(r[0] << 8 | r[1], 128);
    rsa_public_raw(pk, r + 2, 128, back);
    assert_memory_equal(back, in, 128);
    /* wrong input length, wrong key, other P2 forms */
    a.data[4] = 0x7F;
    a.lc = 140;
    memcpy(a.data + 132, nonce, 8);
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C0F);
    a.p1 = 0x03;
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C10); /* the public half cannot sign */
    a.p1 = 0x09;
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C10);
    a.p1 = 0x02;
    a.p2 = 0x01;
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C11);
    /* LOGOUT: the key is unusable again */
    vt_expect(f->c, "B0 61 00 00", "9000");
    a.p2 = 0x04;
    a.data[4] = 0x80;
    memcpy(a.data + 5, in, 128);
    memcpy(a.data + 133, nonce, 8);
    a.lc = 141;
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C06);
    /* GENERATE KEY failures: wrong length, algorithm, key size, without the RA */
    assert_int_equal(vt_fx_sc(f, 0x0C, 0x02, 0x03, "80 0400 00 00 10 F1D75E4F0D37C22CB8D54E6253BB40B1",
                        NULL, NULL),
                     0x6700);
    assert_int_equal(vt_fx_sc(f, 0x0C, 0x02, 0x03,
                        "82 0400 00 00 10 F1D75E4F0D37C22CB8D54E6253BB40B1 00", NULL, NULL),
                     0x9C09);
    assert_int_equal(vt_fx_sc(f, 0x0C, 0x02, 0x03,
                        "80 0300 00 00 10 F1D75E4F0D37C22CB8D54E6253BB40B1 00", NULL, NULL),
                     0x9C0F);
    vt_expect(f->c, "B0 0C 02 03 17 80 04 00 00 00 10 F1 D7 5E 4F 0D 37 C2 2C B8 D5 4E 62 53 BB "
                    "40 B1 00",
              "9C06");
    EVP_PKEY_free(pk);
}

/* RSA-2048: the data does not fit an APDU, so coolkey and OpenSC use the I/O buffer (§3.6). */
static void
test_applet_compute_crypt_io_buffer(void **state)
{
    struct vt_fx *f = *state;
    EVP_PKEY *pk;
    uint8_t nonce[8], in[256], out[256], r[300];
    size_t rl;
    char hex[1200];
    struct cmn_apdu a;

    pk = generate(f, 2048, 0xF4, 0x05); /* owner F: usable by anyone */
    memset(in, 0xFF, sizeof(in));
    in[0] = 0x00;
    in[1] = 0x01;
    in[256 - 33] = 0x00;
    memset(in + 256 - 32, 0x33, 32);
    memset(nonce, 0, sizeof(nonce));
    /* WRITE OBJECT FFFFFFFF: offset 0 = len(2), offset 2.. = data */
    vt_expect(f->c, "B0 54 00 00 13 FF FF FF FF 00 00 00 00 02 01 00 00 00 00 00 00 00 00 00",
              "9000");
    for (size_t off = 0; off < 256; off += 128) {
        size_t p = 0;

        p += (size_t)snprintf(hex + p, sizeof(hex) - p, "B0 54 00 00 91 FF FF FF FF %08zX 80 ",
                              off + 2);
        assert_int_equal(cmn_hex_encode(in + off, 128, hex + p, sizeof(hex) - p), CMN_OK);
        p += 256;
        snprintf(hex + p, sizeof(hex) - p, " 00 00 00 00 00 00 00 00");
        vt_expect(f->c, hex, "9000");
    }
    memset(&a, 0, sizeof(a));
    vt_hex("B0 36 04 04 0D 00 03 02 00 00 00 00 00 00 00 00 00 00", a.data, sizeof(a.data));
    vt_expect(f->c, "B0 36 04 04 0D 00 03 02 00 00 00 00 00 00 00 00 00 00", "9000");
    vt_expect(f->c, "B0 56 00 00 11 FF FF FF FF 00 00 00 00 02 00 00 00 00 00 00 00 00",
              "01 00 9000");
    assert_int_equal(vt_txh(f->c,
                            "B0 56 00 00 11 FF FF FF FF 00 00 00 02 FF 00 00 00 00 00 00 00 00",
                            r, &rl),
                     0x9000);
    assert_int_equal(rl, 255);
    memcpy(out, r, 255);
    assert_int_equal(vt_txh(f->c,
                            "B0 56 00 00 11 FF FF FF FF 00 00 01 01 01 00 00 00 00 00 00 00 00",
                            r, &rl),
                     0x9000);
    out[255] = r[0];
    {
        uint8_t back[256];

        rsa_public_raw(pk, out, 256, back);
        assert_memory_equal(back, in, 256);
    }
    /* SELECT clears the I/O buffer */
    vt_expect(f->c, VT_SELECT_COOLKEY, "9000");
    vt_expect(f->c, "B0 56 00 00 11 FF FF FF FF 00 00 00 00 02 00 00 00 00 00 00 00 00", "9C0F");
    /* CLEAR KEY SLOTS keeps only those listed */
    {
        struct cmn_keyset dev;

        cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
        vt_sc_open(f->c, &f->host, CMN_SCP01, 0x00, 0x03, &dev);
    }
    assert_int_equal(vt_fx_sc(f, 0x55, 0, 0, "04", NULL, NULL), 0x9000);
    vt_expect(f->c, "B0 3A 00 00 0B", "04 03 05 08 00 00 00 40 00 FF FF 9000");
    vt_expect(f->c, "B0 3A 01 00 0B", "9000");
    EVP_PKEY_free(pk);
}

/* §3.5: a PKCS#8 key wrapped by a DES3 transport key, itself wrapped under the static KEK. */
static void
test_applet_import_key_encrypted(void **state)
{
    struct vt_fx *f = *state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    unsigned char *der = NULL;
    int dl = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    uint8_t tk[16], wtk[16], iv[8], kcv[3], obj[1400], in[128], r[300], back[128], nonce[8];
    size_t n, pad, rl, off;
    char hex[600];
    struct cmn_key dev;
    static const uint8_t devk[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                     0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F};
    struct cmn_apdu a;

    assert_true(dl > 0);
    assert_int_equal(cmn_crypto_random(tk, 16), CMN_OK);
    assert_int_equal(cmn_crypto_random(iv, 8), CMN_OK);
    assert_int_equal(cmn_key_set(&dev, CMN_KEY_DES3, devk, 16), CMN_OK);
    assert_int_equal(cmn_key_encrypt(&dev, tk, 16, wtk), CMN_OK);
    assert_int_equal(cmn_crypto_kcv_des(tk, 16, kcv), CMN_OK);
    /* object: 01 09 keySize(2) ‖ DES3-CBC(tk, iv, PKCS#8 ‖ PKCS#5 pad) */
    pad = 8 - (size_t)dl % 8;
    n = (size_t)dl + pad;
    assert_true(4 + n <= sizeof(obj));
    obj[0] = 0x01;
    obj[1] = 0x09;
    obj[2] = 0x04;
    obj[3] = 0x00;
    memcpy(obj + 4, der, (size_t)dl);
    memset(obj + 4 + dl, (int)pad, pad);
    assert_int_equal(cmn_crypto_des3_cbc(tk, 16, iv, true, obj + 4, n, obj + 4), CMN_OK);
    snprintf(hex, sizeof(hex), "FF00FFF3 %08zX FFFF40004000", 4 + n);
    assert_int_equal(vt_fx_sc(f, 0x5A, 0, 0, hex, NULL, NULL), 0x9000);
    for (off = 0; off < 4 + n; off += 0xD0) {
        size_t c = 4 + n - off < 0xD0 ? 4 + n - off : 0xD0, p;

        p = (size_t)snprintf(hex, sizeof(hex), "FF00FFF3 %08zX %02zX", off, c);
        assert_int_equal(cmn_hex_encode(obj + off, c, hex + p, sizeof(hex) - p), CMN_OK);
        assert_int_equal(vt_fx_sc(f, 0x54, 0, 0, hex, NULL, NULL), 0x9000);
    }
    /* a wrong KCV is refused */
    {
        char cmd[200];
        size_t p = (size_t)snprintf(cmd, sizeof(cmd), "FF00FFF3 81 10 ");

        assert_int_equal(cmn_hex_encode(wtk, 16, cmd + p, sizeof(cmd) - p), CMN_OK);
        p += 32;
        snprintf(cmd + p, sizeof(cmd) - p, " 03 %02X%02X%02X 08 %02X%02X%02X%02X%02X%02X%02X%02X",
                 kcv[0] ^ 1, kcv[1], kcv[2], iv[0], iv[1], iv[2], iv[3], iv[4], iv[5], iv[6],
                 iv[7]);
        assert_int_equal(vt_fx_sc(f, 0x0A, 0x06, 0x07, cmd, NULL, NULL), 0x6A80);
        cmd[p + 4] = "0123456789ABCDEF"[kcv[0] >> 4];
        cmd[p + 5] = "0123456789ABCDEF"[kcv[0] & 15];
        assert_int_equal(vt_fx_sc(f, 0x0A, 0x06, 0x07, cmd, NULL, NULL), 0x9000);
    }
    /* the object is zeroed; the imported key signs for PIN 0 */
    vt_expect(f->c, "B0 56 00 00 11 FF 00 FF F3 00 00 00 00 04 00 00 00 00 00 00 00 00",
              "00 00 00 00 9000");
    assert_int_equal(vt_fx_sc(f, 0x40, 0x00, 0x7F, "31323334", NULL, NULL), 0x9000);
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 04 31 32 33 34", nonce, &rl), 0x9000);
    memset(in, 0x11, sizeof(in));
    in[0] = 0x00;
    memset(&a, 0, sizeof(a));
    a.cla = 0xB0;
    a.ins = 0x36;
    a.p1 = 0x06;
    a.p2 = 0x04;
    memcpy(a.data, "\x00\x04\x01\x00\x80", 5);
    memcpy(a.data + 5, in, 128);
    memcpy(a.data + 133, nonce, 8);
    a.lc = 141;
    a.le = -1;
    assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9000);
    rsa_public_raw(key, r + 2, 128, back);
    assert_memory_equal(back, in, 128);
    OPENSSL_free(der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(key);
    cmn_key_wipe(&dev);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_applet_pin_tries_and_block, vt_fx_setup, vt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_applet_change_pin_forms, vt_fx_setup, vt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_applet_objects_acl_and_nonce, vt_fx_setup, vt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_applet_status_and_misc, vt_fx_setup, vt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_applet_generate_key_and_sign, vt_fx_setup, vt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_applet_compute_crypt_io_buffer, vt_fx_setup, vt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_applet_import_key_encrypted, vt_fx_setup, vt_fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
