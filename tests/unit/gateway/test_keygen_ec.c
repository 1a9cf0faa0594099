/* tests/unit/gateway/test_keygen_ec.c - EC card keys in the gateway: the GENERATE KEY ECC
 * buffer parser and proof check (gateway/keygen.c) on good, short and hostile buffers, the
 * GENERATE KEY ECC command bytes, the key fields of a certificate, the keyGen alg/keySize
 * profile settings and their load-time check (gateway/enroll_profile.c), and z0 with EC key
 * records (CKA_KEY_TYPE 3, CKA_EC_PARAMS, CKA_EC_POINT; common/p11obj.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/p11obj.h"
#include "gateway/enroll.h"
#include "gateway/keygen.h"

static const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
                                                            0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B,
                                                            0x1C, 0x1D, 0x1E, 0x1F};
static const uint8_t p256_oid[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};

/* The I/O buffer a card leaves after GENERATE KEY ECC, as vtoken builds it. [out] buf. */
static size_t
card_iobuf(EVP_PKEY *pk, unsigned bits, uint8_t type, uint8_t *buf, size_t cap)
{
    uint8_t point[97];
    size_t np = 0, bl, sl;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    assert_int_equal(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                     sizeof(point), &np),
                     1);
    bl = 6 + np;
    assert_true(2 + bl + 2 + 120 <= cap);
    buf[0] = (uint8_t)(bl >> 8);
    buf[1] = (uint8_t)bl;
    buf[2] = 0x00;
    buf[3] = type;
    buf[4] = (uint8_t)(bits >> 8);
    buf[5] = (uint8_t)bits;
    buf[6] = (uint8_t)(np >> 8);
    buf[7] = (uint8_t)np;
    memcpy(buf + 8, point, np);
    sl = 120;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha1(), NULL, pk), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, buf + 2, bl), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, challenge, sizeof(challenge)), 1);
    assert_int_equal(EVP_DigestSignFinal(md, buf + 2 + bl + 2, &sl), 1);
    EVP_MD_CTX_free(md);
    buf[2 + bl] = (uint8_t)(sl >> 8);
    buf[3 + bl] = (uint8_t)sl;
    return 2 + bl + 2 + sl;
}

static void
test_keygen_ec_proof_good(void **state)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t buf[300], der[200], *dp = der;
    size_t n = card_iobuf(pk, 256, 0x0A, buf, sizeof(buf));
    struct tps_keygen_pub pub;
    char err[256] = "";
    int dl;

    (void)state;
    assert_int_equal(tps_keygen_verify_proof_ec(buf, n, challenge, 256, &pub, err, sizeof(err)),
                     TPS_OK);
    assert_true(pub.ec);
    assert_int_equal(pub.key_bits, 256);
    assert_int_equal(pub.point_len, 65);
    assert_memory_equal(pub.point, buf + 8, 65);
    /* the SPKI is the card key's own */
    dl = i2d_PUBKEY(pk, &dp);
    assert_int_equal((size_t)dl, pub.spki_len);
    assert_memory_equal(pub.spki, der, pub.spki_len);
    EVP_PKEY_free(pk);

    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    n = card_iobuf(pk, 384, 0x0A, buf, sizeof(buf));
    assert_int_equal(tps_keygen_verify_proof_ec(buf, n, challenge, 384, &pub, err, sizeof(err)),
                     TPS_OK);
    assert_int_equal(pub.point_len, 97);
    /* a P-384 key when P-256 was asked */
    assert_int_equal(tps_keygen_verify_proof_ec(buf, n, challenge, 256, &pub, err, sizeof(err)),
                     TPS_EPROTO);
    assert_non_null(strstr(err, "384-bit key, 256 asked"));
    assert_false(pub.ec);
    EVP_PKEY_free(pk);
}

static void
test_keygen_ec_proof_hostile(void **state)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t good[300], buf[300], wrong_chal[16];
    size_t n = card_iobuf(pk, 256, 0x0A, good, sizeof(good));
    struct tps_keygen_pub pub;
    char err[256];
    static const struct {
        size_t off; /* byte to change (from the start of the buffer) */
        uint8_t val;
        enum tps_rc want;
        const char *msg;
    } cases[] = {
        {0, 0x01, TPS_EPROTO, "malformed"},     /* blob length beyond the buffer */
        {2, 0x01, TPS_EPROTO, "00 0A"},         /* encoding not plain */
        {3, 0x01, TPS_EPROTO, "00 0A"},         /* RSA key type */
        {7, 0x02, TPS_EPROTO, "00 0A"},         /* point length longer than the blob */
        {8, 0x02, TPS_EPROTO, "00 0A"},         /* compressed point */
        {40, 0x00, TPS_EPROTO, "not on P-256"}, /* point off the curve */
        {80, 0x00, TPS_EAUTH, "proof"},         /* proof altered */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(buf, good, n);
        buf[cases[i].off] ^= cases[i].val == 0 ? 0x55 : cases[i].val;
        err[0] = '\0';
        assert_int_equal(tps_keygen_verify_proof_ec(buf, n, challenge, 256, &pub, err,
                                                    sizeof(err)),
                         cases[i].want);
        if (strstr(err, cases[i].msg) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
    }
    /* truncated anywhere, or a trailing byte */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(tps_keygen_verify_proof_ec(good, cut, challenge, 256, &pub, err,
                                                        sizeof(err)),
                             TPS_OK);
    memcpy(buf, good, n);
    buf[n] = 0;
    assert_int_equal(tps_keygen_verify_proof_ec(buf, n + 1, challenge, 256, &pub, err,
                                                sizeof(err)),
                     TPS_EPROTO);
    /* another challenge, another key's proof, an unknown curve size */
    memcpy(wrong_chal, challenge, 16);
    wrong_chal[0] ^= 1;
    assert_int_equal(tps_keygen_verify_proof_ec(good, n, wrong_chal, 256, &pub, err,
                                                sizeof(err)),
                     TPS_EAUTH);
    n = card_iobuf(other, 256, 0x0A, buf, sizeof(buf));
    memcpy(buf + 8, good + 8, 65); /* pk's point, other's proof */
    assert_int_equal(tps_keygen_verify_proof_ec(buf, n, challenge, 256, &pub, err, sizeof(err)),
                     TPS_EAUTH);
    assert_int_equal(tps_keygen_verify_proof_ec(good, n, challenge, 521, &pub, err, sizeof(err)),
                     TPS_EINVAL);
    assert_non_null(strstr(err, "256 or 384"));
    EVP_PKEY_free(pk);
    EVP_PKEY_free(other);
}

static void
test_keygen_ec_apdu(void **state)
{
    struct cmn_ck_keygen kg = {.key_user = 0, .priv_no = 2, .key_usage = 0, .pub_no = 3,
                               .alg = 0x80, .key_bits = 256};
    struct cmn_apdu a;
    static const uint8_t want[] = {0x05, 0x01, 0x00, 0x00, 0x00, 0x10};

    (void)state;
    memset(kg.wrapped_challenge, 0xAB, 16);
    assert_int_equal(tps_keygen_ecc_apdu(&a, &kg), TPS_OK);
    assert_int_equal(a.cla, 0x84);
    assert_int_equal(a.ins, 0x0D);
    assert_int_equal(a.p1, 0x02);
    assert_int_equal(a.p2, 0x03);
    assert_int_equal(a.lc, 23);
    assert_int_equal(a.le, -1);
    assert_memory_equal(a.data, want, sizeof(want));
    assert_int_equal(a.data[6], 0xAB);
    assert_int_equal(a.data[22], 0x00); /* empty key check */
    kg.priv_no = 0x10;
    assert_int_equal(tps_keygen_ecc_apdu(&a, &kg), TPS_EINVAL);
    assert_int_equal(tps_keygen_ecc_apdu(&a, NULL), TPS_EINVAL);
}

/* A self-signed certificate of pk. [out] *der (OPENSSL_free). */
static int
make_cert(EVP_PKEY *pk, uint8_t **der)
{
    X509 *x = X509_new();
    int n;

    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                                (const unsigned char *)"ec", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    assert_int_equal(X509_set_pubkey(x, pk), 1);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    *der = NULL;
    n = i2d_X509(x, der);
    X509_free(x);
    return n;
}

static void
test_keygen_ec_cert_key(void **state)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    uint8_t *der, params[TPS_KEYGEN_EC_PARAMS_MAX], point[TPS_KEYGEN_EC_POINT_MAX], want[65];
    size_t pl = 0, ptl = 0, wl = 0;
    bool is_ec = false;
    int n;

    (void)state;
    n = make_cert(ec, &der);
    assert_int_equal(tps_keygen_cert_key(der, (size_t)n, &is_ec, params, &pl, point, &ptl),
                     TPS_OK);
    assert_true(is_ec);
    assert_int_equal(pl, sizeof(p256_oid));
    assert_memory_equal(params, p256_oid, pl);
    assert_int_equal(EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, want,
                                                     sizeof(want), &wl),
                     1);
    assert_int_equal(ptl, wl);
    assert_memory_equal(point, want, wl);
    /* not a certificate */
    assert_int_equal(tps_keygen_cert_key(der, (size_t)n - 1, &is_ec, params, &pl, point, &ptl),
                     TPS_EPROTO);
    OPENSSL_free(der);
    n = make_cert(rsa, &der);
    assert_int_equal(tps_keygen_cert_key(der, (size_t)n, &is_ec, params, &pl, point, &ptl),
                     TPS_OK);
    assert_false(is_ec);
    OPENSSL_free(der);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

/* ---- profile settings ---- */

static const struct cmn_cfg_key *const tables[] = {tps_enroll_cfg_keys, tps_ca_cfg_keys,
                                                   tps_kra_cfg_keys, NULL};

#define BASE                                                                                     \
    "op.enroll.ecKey.keyGen.keyType.num=2\n"                                                     \
    "op.enroll.ecKey.keyGen.keyType.value.0=signing\n"                                           \
    "op.enroll.ecKey.keyGen.keyType.value.1=encryption\n"                                        \
    "op.enroll.ecKey.keyGen.signing.certId=C1\n"                                                 \
    "op.enroll.ecKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment\n"              \
    "op.enroll.ecKey.keyGen.encryption.certId=C2\n"                                              \
    "op.enroll.ecKey.keyGen.encryption.ca.profileId=caTokenUserEncryptionKeyEnrollment\n"

static struct cmn_cfg *
cfg_of(const char *text)
{
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;

    cmn_buf_init(&errs, 4096);
    if (cmn_cfg_parse("ec.cfg", text, strlen(text), tables, &c, &errs) != CMN_OK)
        fail_msg("config: %.*s", (int)errs.len, (const char *)errs.data);
    cmn_buf_cleanup(&errs);
    return c;
}

static void
test_keygen_ec_profile(void **state)
{
    struct cmn_cfg *c = cfg_of(BASE "op.enroll.ecKey.keyGen.signing.alg=5\n"
                                    "op.enroll.ecKey.keyGen.signing.keySize=256\n"
                                    "op.enroll.ecKey.keyGen.encryption.alg=5\n"
                                    "op.enroll.ecKey.keyGen.encryption.keySize=384\n");
    struct tps_enroll_profile p;
    struct cmn_buf errs;
    char err[512];

    (void)state;
    assert_int_equal(tps_enroll_profile_load(c, "ecKey", &p, err, sizeof(err)), TPS_OK);
    assert_true(p.keys[0].ec);
    assert_int_equal(p.keys[0].key_bits, 256);
    assert_true(p.keys[1].ec);
    assert_int_equal(p.keys[1].key_bits, 384);
    cmn_buf_init(&errs, 4096);
    assert_int_equal(tps_enroll_cfg_check(c, &errs), 0);
    cmn_cfg_unref(c);
    /* alg 1 and the default 2 are RSA */
    c = cfg_of(BASE "op.enroll.ecKey.keyGen.signing.alg=1\n");
    assert_int_equal(tps_enroll_profile_load(c, "ecKey", &p, err, sizeof(err)), TPS_OK);
    assert_false(p.keys[0].ec);
    assert_false(p.keys[1].ec);
    assert_int_equal(p.keys[1].key_bits, 1024);
    cmn_cfg_unref(c);
    cmn_buf_cleanup(&errs);
}

static void
test_keygen_ec_profile_refused(void **state)
{
    static const struct {
        const char *extra, *want;
    } cases[] = {
        {"op.enroll.ecKey.keyGen.signing.alg=5\n", "must be 256 (P-256) or 384"}, /* 1024 */
        {"op.enroll.ecKey.keyGen.signing.alg=5\nop.enroll.ecKey.keyGen.signing.keySize=521\n",
         "must be 256 (P-256) or 384"},
        {"op.enroll.ecKey.keyGen.signing.keySize=256\n", "RSA keys"},
        {"op.enroll.ecKey.keyGen.signing.alg=4\nop.enroll.ecKey.keyGen.signing.keySize=256\n",
         "binary fields"},
        {"op.enroll.ecKey.keyGen.signing.alg=EC\n", "must be 2 (RSA) or 5 (EC)"},
        {"op.enroll.ecKey.keyGen.encryption.alg=5\n"
         "op.enroll.ecKey.keyGen.encryption.keySize=256\n"
         "op.enroll.ecKey.keyGen.encryption.serverKeygen.enable=true\n",
         "encryption.serverKeygen.enable=false"},
    };
    char text[2048], err[512];
    struct tps_enroll_profile p;
    struct cmn_buf errs;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_cfg *c;

        snprintf(text, sizeof(text), "%s%s", BASE, cases[i].extra);
        c = cfg_of(text);
        err[0] = '\0';
        assert_int_equal(tps_enroll_profile_load(c, "ecKey", &p, err, sizeof(err)), TPS_ECONFIG);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        /* the same rule at configuration load, with file and line */
        cmn_buf_init(&errs, 4096);
        assert_int_equal(tps_enroll_cfg_check(c, &errs), 1);
        assert_non_null(cmn_buf_cstr(&errs));
        if (strstr((const char *)errs.data, cases[i].want) == NULL ||
            strncmp((const char *)errs.data, "ec.cfg", 6) != 0)
            fail_msg("case %zu: load check '%s'", i, (const char *)errs.data);
        cmn_buf_cleanup(&errs);
        cmn_cfg_unref(c);
    }
}

/* ---- z0 with EC keys ---- */

static void
test_keygen_ec_z0(void **state)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    uint8_t *der_ec, *der_rsa, cuid[10] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0, 0, 0, 1};
    uint8_t point[65];
    size_t pl = 0;
    int nec = make_cert(ec, &der_ec), nrsa = make_cert(rsa, &der_rsa);
    struct tps_enroll_obj objs[2] = {
        {.cert_no = 1, .label = "ec", .der = der_ec, .der_len = (size_t)nec,
         .usage = CMN_P11OBJ_USE_SIGN | CMN_P11OBJ_USE_ENCRYPT},
        {.cert_no = 2, .label = "rsa", .der = der_rsa, .der_len = (size_t)nrsa, .usage = 0},
    };
    struct cmn_buf out;
    struct cmn_p11obj *o = calloc(1, sizeof(*o));
    const struct cmn_p11obj_rec *k2, *k3, *k4, *k5;
    const struct cmn_p11obj_attr *at;

    (void)state;
    assert_int_equal(EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                     sizeof(point), &pl),
                     1);
    cmn_buf_init(&out, 65536);
    assert_int_equal(tps_enroll_build_z0(cuid, "alice", 7, objs, 2, true, &out), TPS_OK);
    assert_int_equal(cmn_p11obj_parse(o, out.data, out.len, 0), CMN_OK);
    k2 = cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 2));
    k3 = cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 3));
    k4 = cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 4));
    k5 = cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 5));
    assert_non_null(k2);
    assert_non_null(k3);
    /* EC private key: type 3, curve, DERIVE with DECRYPT */
    at = cmn_p11obj_attr(k2, CMN_P11_CKA_KEY_TYPE);
    assert_non_null(at);
    assert_int_equal(at->ival, CMN_P11_CKK_EC);
    at = cmn_p11obj_attr(k2, CMN_P11_CKA_EC_PARAMS);
    assert_non_null(at);
    assert_int_equal(at->len, sizeof(p256_oid));
    assert_memory_equal(at->val, p256_oid, at->len);
    assert_null(cmn_p11obj_attr(k2, CMN_P11_CKA_EC_POINT));
    assert_true(k2->fixed & CMN_P11OBJ_F_DERIVE);
    assert_true(k2->fixed & CMN_P11OBJ_F_SIGN);
    /* EC public key: type, curve and point */
    at = cmn_p11obj_attr(k3, CMN_P11_CKA_KEY_TYPE);
    assert_non_null(at);
    assert_int_equal(at->ival, CMN_P11_CKK_EC);
    at = cmn_p11obj_attr(k3, CMN_P11_CKA_EC_POINT);
    assert_non_null(at);
    assert_int_equal(at->len, pl);
    assert_memory_equal(at->val, point, pl);
    assert_non_null(cmn_p11obj_attr(k3, CMN_P11_CKA_EC_PARAMS));
    /* the RSA certificate next to it keeps RSA records */
    at = cmn_p11obj_attr(k4, CMN_P11_CKA_KEY_TYPE);
    assert_non_null(at);
    assert_int_equal(at->ival, CMN_P11_CKK_RSA);
    assert_null(cmn_p11obj_attr(k4, CMN_P11_CKA_EC_PARAMS));
    assert_int_equal(k5->nattrs, 0);
    assert_false(k4->fixed & CMN_P11OBJ_F_DERIVE);
    cmn_p11obj_cleanup(o);
    /* a DER whose key cannot be read gets the RSA records z0 always had */
    objs[0].der_len -= 10;
    out.len = 0;
    assert_int_equal(tps_enroll_build_z0(cuid, "alice", 7, objs, 2, true, &out), TPS_OK);
    assert_int_equal(cmn_p11obj_parse(o, out.data, out.len, 0), CMN_OK);
    at = cmn_p11obj_attr(cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 2)), CMN_P11_CKA_KEY_TYPE);
    assert_non_null(at);
    assert_int_equal(at->ival, CMN_P11_CKK_RSA);
    cmn_p11obj_cleanup(o);
    /* cmn_p11obj_add_ec: key records must exist, inputs non-empty */
    cmn_p11obj_init(o, cuid, "x", 1);
    assert_int_equal(cmn_p11obj_add_ec(o, 1, p256_oid, sizeof(p256_oid), point, pl), CMN_EINVAL);
    assert_int_equal(cmn_p11obj_add_cert(o, 1, "l", der_ec, (size_t)nec, CMN_P11_CKK_EC, 0),
                     CMN_OK);
    assert_int_equal(cmn_p11obj_add_ec(o, 1, p256_oid, 0, point, pl), CMN_EINVAL);
    assert_int_equal(cmn_p11obj_add_ec(o, 5, p256_oid, sizeof(p256_oid), point, pl), CMN_EINVAL);
    assert_int_equal(cmn_p11obj_add_ec(o, 1, p256_oid, sizeof(p256_oid), point, pl), CMN_OK);
    cmn_p11obj_cleanup(o);
    free(o);
    cmn_buf_cleanup(&out);
    OPENSSL_free(der_ec);
    OPENSSL_free(der_rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_ec_proof_good),
        cmocka_unit_test(test_keygen_ec_proof_hostile),
        cmocka_unit_test(test_keygen_ec_apdu),
        cmocka_unit_test(test_keygen_ec_cert_key),
        cmocka_unit_test(test_keygen_ec_profile),
        cmocka_unit_test(test_keygen_ec_profile_refused),
        cmocka_unit_test(test_keygen_ec_z0),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
