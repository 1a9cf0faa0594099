/* tests/unit/vtoken/test_ecc.c - the ECC instructions of the emulated applet (tokenclient/
 * vtoken/ecc.c): GENERATE KEY ECC with the C++ TPS key blob and its ECDSA-SHA1 proof, LIST
 * KEYS types, COMPUTE ECC SIGNATURE in libckyapplet's form (37: len ‖ DER) and OpenSC's (38:
 * r ‖ s), key agreement with a point, and the refusals. */
#include "vt_test.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static const uint8_t challenge[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
/* card spec §5.6: challenge 00..0F under the developer KEK */
#define WRAPPED "F1D75E4F0D37C22CB8D54E6253BB40B1"

static EVP_PKEY *
ec_pub(const char *curve, const uint8_t *point, size_t n)
{
    uint8_t pt[97];
    char group[16];
    OSSL_PARAM p[3];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;

    assert_true(n <= sizeof(pt));
    memcpy(pt, point, n);
    snprintf(group, sizeof(group), "%s", curve);
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, n);
    p[2] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, p), 1);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

/* GENERATE KEY ECC into slots 2/3; checks the I/O buffer and returns the public key. */
static EVP_PKEY *
generate(struct vt_fx *f, unsigned bits)
{
    uint8_t r[8], io[1024];
    size_t rl, total, bl, pl, fl = (bits + 7) / 8;
    char hex[120];
    const uint8_t *blob;
    EVP_PKEY *pk;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    snprintf(hex, sizeof(hex), "05 %04X 00 00 10 " WRAPPED " 00", bits);
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x02, 0x03, hex, r, &rl), 0x9000);
    assert_int_equal(rl, 2);
    total = (size_t)(r[0] << 8 | r[1]);
    vt_fx_read_io(f, total, io);
    bl = (size_t)(io[0] << 8 | io[1]);
    blob = io + 2;
    /* 00 0A keySize pointLen 04 X Y */
    assert_int_equal(bl, 6 + 1 + 2 * fl);
    assert_int_equal(blob[0], 0x00);
    assert_int_equal(blob[1], 0x0A);
    assert_int_equal(blob[2] << 8 | blob[3], bits);
    assert_int_equal(blob[4] << 8 | blob[5], 1 + 2 * fl);
    assert_int_equal(blob[6], 0x04);
    pl = (size_t)(io[2 + bl] << 8 | io[3 + bl]);
    assert_int_equal(total, 2 + bl + 2 + pl);
    pk = ec_pub(bits == 256 ? "P-256" : "P-384", blob + 6, 1 + 2 * fl);
    /* proof = DER ECDSA-SHA1(blob ‖ challenge) */
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha1(), NULL, pk), 1);
    assert_int_equal(EVP_DigestVerifyUpdate(md, blob, bl), 1);
    assert_int_equal(EVP_DigestVerifyUpdate(md, challenge, 16), 1);
    assert_int_equal(EVP_DigestVerifyFinal(md, io + 4 + bl, pl), 1);
    EVP_MD_CTX_free(md);
    return pk;
}

/* B0 ins 02 04 with loc 01, data, nonce. */
static uint16_t
ecc_cmd(struct vt_fx *f, uint8_t ins, const uint8_t *data, size_t n, const uint8_t nonce[8],
        uint8_t *r, size_t *rl)
{
    struct cmn_apdu a;

    memset(&a, 0, sizeof(a));
    a.cla = 0xB0;
    a.ins = ins;
    a.p1 = 0x02;
    a.p2 = 0x04;
    a.data[0] = 0x01;
    a.data[1] = (uint8_t)(n >> 8);
    a.data[2] = (uint8_t)n;
    memcpy(a.data + 3, data, n);
    memcpy(a.data + 3 + n, nonce, 8);
    a.lc = 3 + n + 8;
    a.le = -1;
    return vt_sendapdu(f->c, &a, r, rl);
}

static void
verify_der(EVP_PKEY *pk, const uint8_t *hash, size_t hl, const uint8_t *sig, size_t sl)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);

    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, sl, hash, hl), 1);
    EVP_PKEY_CTX_free(ctx);
}

static void
test_ecc_generate_and_sign(void **state)
{
    struct vt_fx *f = *state;
    EVP_PKEY *pk, *peer;
    uint8_t nonce[8], hash[32], r[300], der[80], *dp = der, peer_pt[65], want[32];
    size_t rl, n, wl = sizeof(want);
    const uint8_t zero[8] = {0};
    ECDSA_SIG *sig;
    EVP_PKEY_CTX *dctx;

    assert_int_equal(vt_fx_sc(f, 0x40, 0x00, 0x7F, "70617373776F7264", NULL, NULL), 0x9000);
    pk = generate(f, 256);
    /* LIST KEYS: private EC 0B, public EC 0A, 256 bits, ACLs of §3.4 */
    vt_expect(f->c, "B0 3A 00 00 0B", "02 0B 03 01 00 00 00 40 00 00 01 9000");
    vt_expect(f->c, "B0 3A 01 00 0B", "03 0A 02 01 00 FF FF 40 00 FF FF 9000");
    for (size_t i = 0; i < sizeof(hash); i++)
        hash[i] = (uint8_t)(0xA0 + i);
    /* not logged in: refused */
    assert_int_equal(ecc_cmd(f, 0x37, hash, sizeof(hash), zero, r, &rl), 0x9C06);
    assert_int_equal(vt_txh(f->c, "B0 42 00 00 08 70617373776F7264", nonce, &rl), 0x9000);
    /* 37 (libckyapplet): len(2) ‖ DER signature over the digest as given */
    assert_int_equal(ecc_cmd(f, 0x37, hash, sizeof(hash), nonce, r, &rl), 0x9000);
    assert_int_equal((size_t)(r[0] << 8 | r[1]), rl - 2);
    verify_der(pk, hash, sizeof(hash), r + 2, rl - 2);
    /* 38 with a digest (OpenSC): r ‖ s, 32 bytes each, no length */
    assert_int_equal(ecc_cmd(f, 0x38, hash, sizeof(hash), nonce, r, &rl), 0x9000);
    assert_int_equal(rl, 64);
    sig = ECDSA_SIG_new();
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(r, 32, NULL), BN_bin2bn(r + 32, 32, NULL)), 1);
    n = (size_t)i2d_ECDSA_SIG(sig, &dp);
    ECDSA_SIG_free(sig);
    verify_der(pk, hash, sizeof(hash), der, n);
    /* a point of the curve: key agreement (38 in libckyapplet, 37 in OpenSC) */
    peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_int_equal(EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_PUB_KEY, peer_pt,
                                                     sizeof(peer_pt), &n),
                     1);
    assert_int_equal(n, 65);
    dctx = EVP_PKEY_CTX_new(peer, NULL);
    assert_int_equal(EVP_PKEY_derive_init(dctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(dctx, pk), 1);
    assert_int_equal(EVP_PKEY_derive(dctx, want, &wl), 1);
    EVP_PKEY_CTX_free(dctx);
    for (uint8_t ins = 0x37; ins <= 0x38; ins++) {
        assert_int_equal(ecc_cmd(f, ins, peer_pt, 65, nonce, r, &rl), 0x9000);
        assert_int_equal(rl, 2 + 32);
        assert_int_equal(r[0] << 8 | r[1], 32);
        assert_memory_equal(r + 2, want, 32);
    }
    /* refusals: a 65-byte input that is no point, the public half, COMPUTE CRYPT on EC */
    peer_pt[0] = 0x05;
    assert_int_equal(ecc_cmd(f, 0x37, peer_pt, 65, nonce, r, &rl), 0x9C0F);
    peer_pt[0] = 0x04;
    peer_pt[64] ^= 0x01; /* off the curve */
    assert_int_equal(ecc_cmd(f, 0x38, peer_pt, 65, nonce, r, &rl), 0x9C0F);
    {
        struct cmn_apdu a;

        memset(&a, 0, sizeof(a));
        a.cla = 0xB0;
        a.ins = 0x37;
        a.p1 = 0x03; /* public key slot */
        a.p2 = 0x04;
        memcpy(a.data, "\x01\x00\x20", 3);
        memcpy(a.data + 3, hash, 32);
        memcpy(a.data + 35, nonce, 8);
        a.lc = 43;
        a.le = -1;
        assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C10);
        a.p1 = 0x02;
        a.p2 = 0x01; /* three-step form */
        assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C11);
        a.ins = 0x36; /* COMPUTE CRYPT is RSA only */
        a.p2 = 0x04;
        assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C10);
        a.ins = 0x37;
        a.data[2] = 0x21; /* length beyond the data */
        assert_int_equal(vt_sendapdu(f->c, &a, r, &rl), 0x9C0F);
    }
    EVP_PKEY_free(peer);
    EVP_PKEY_free(pk);
}

static void
test_ecc_generate_p384_and_refusals(void **state)
{
    struct vt_fx *f = *state;
    EVP_PKEY *pk;
    uint8_t r[8];
    size_t rl;

    pk = generate(f, 384);
    EVP_PKEY_free(pk);
    /* binary curves (04), RSA algs, unknown sizes, a bad challenge length, short data */
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x02, 0x03, "04 0100 00 00 10 " WRAPPED " 00", r, &rl), 0x9C09);
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x02, 0x03, "80 0100 00 00 10 " WRAPPED " 00", r, &rl), 0x9C09);
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x02, 0x03, "05 00E0 00 00 10 " WRAPPED " 00", r, &rl), 0x9C0F);
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x02, 0x03, "05 0100 00 00 08 0001020304050607 00", r, &rl),
                     0x9C0F);
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x02, 0x03, "05 0100 00 00 10 " WRAPPED, r, &rl), 0x6700);
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x02, 0x03, "05 0100 00 00 10 " WRAPPED " 00 00", r, &rl),
                     0x6700);
    assert_int_equal(vt_fx_sc(f, 0x0D, 0x03, 0x03, "05 0100 00 00 10 " WRAPPED " 00", r, &rl), 0x9C11);
    /* outside the secure channel */
    vt_expect(f->c, "B0 0D 02 03 17 05 0100 00 00 10 " WRAPPED " 00", "9C06");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ecc_generate_and_sign, vt_fx_setup, vt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_ecc_generate_p384_and_refusals, vt_fx_setup, vt_fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
