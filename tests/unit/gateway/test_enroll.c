/* tests/unit/gateway/test_enroll.c - the pure logic of enrollment: profile parsing, renewal
 * windows, the generate / renew / recover decision, z0 assembly, GENERATE KEY proof
 * verification with OpenSSL. Whole operations on a card: test_enroll_card.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/apdu.h"
#include "common/p11obj.h"
#include "gateway/enroll.h"
#include "gateway/keygen.h"
#include "common/log.h"

static const struct cmn_cfg_key *const enroll_tables[] = {tps_enroll_cfg_keys, tps_ca_cfg_keys,
                                                          tps_kra_cfg_keys, NULL};

static const char ENROLL_CFG[] =
    "op.enroll.userKey.keyGen.keyType.num=2\n"
    "op.enroll.userKey.keyGen.keyType.value.0=signing\n"
    "op.enroll.userKey.keyGen.keyType.value.1=encryption\n"
    "op.enroll.userKey.keyGen.signing.certId=C1\n"
    "op.enroll.userKey.keyGen.signing.certAttrId=c1\n"
    "op.enroll.userKey.keyGen.signing.label=signing key for $userid$\n"
    "op.enroll.userKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment\n"
    "op.enroll.userKey.keyGen.encryption.certId=C2\n"
    "op.enroll.userKey.keyGen.encryption.keyUser=0\n"
    "op.enroll.userKey.keyGen.encryption.ca.profileId=caTokenUserEncryptionKeyEnrollment\n"
    "op.enroll.userKey.renewal.keyType.num=1\n"
    "op.enroll.userKey.renewal.keyType.value.0=signing\n"
    "op.enroll.userKey.renewal.signing.enable=true\n"
    "op.enroll.userKey.renewal.signing.gracePeriod.enable=true\n"
    "op.enroll.userKey.renewal.signing.gracePeriod.before=30\n"
    "op.enroll.userKey.renewal.signing.gracePeriod.after=10\n"
    "op.enroll.userKey.renewal.signing.ca.profileId=caTokenUserSigningKeyRenewal\n"
    "op.enroll.userKey.pinReset.pin.minLen=4\n"
    "op.enroll.userKey.pinReset.pin.maxLen=10\n";

static struct cmn_cfg *
parse_cfg(const char *text, struct cmn_buf *errs)
{
    struct cmn_cfg *c = NULL;

    (void)cmn_cfg_parse("enroll.cfg", text, strlen(text), enroll_tables, &c, errs);
    return c;
}

/* ---- profile ---- */

static void
test_enroll_profile_load_good(void **state)
{
    struct cmn_cfg *c = parse_cfg(ENROLL_CFG, NULL);
    struct tps_enroll_profile p;
    char err[256];

    (void)state;
    assert_non_null(c);
    assert_int_equal(tps_enroll_profile_load(c, "userKey", &p, err, sizeof(err)), TPS_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.keys[0].key_type, "signing");
    assert_int_equal(p.keys[0].cert_no, 1);
    assert_int_equal(p.keys[0].priv_no, 2);
    assert_int_equal(p.keys[0].pub_no, 3);
    assert_int_equal(p.keys[0].usage, CMN_P11OBJ_USE_SIGN);
    assert_int_equal(p.keys[0].key_bits, 1024);
    assert_true(p.keys[0].renew_enable);
    assert_int_equal(p.keys[0].grace_before_days, 30);
    assert_string_equal(p.keys[0].ca_conn, "ca1");
    assert_int_equal(p.keys[1].cert_no, 2);
    assert_int_equal(p.keys[1].priv_no, 4);
    assert_int_equal(p.keys[1].usage, CMN_P11OBJ_USE_ENCRYPT);
    assert_false(p.keys[1].renew_enable); /* not listed in renewal.keyType */
    assert_int_equal(p.keys[1].recovery[0], TPS_RECOVERY_GENERATE); /* not archived */
    assert_true(p.pin_reset);
    assert_int_equal(p.pin_retries, 127);
    assert_true(p.compress);
    /* unknown type */
    assert_int_equal(tps_enroll_profile_load(c, "soKey", &p, err, sizeof(err)), TPS_ECONFIG);
    assert_non_null(strstr(err, "op.enroll.soKey.keyGen.keyType.num"));
    cmn_cfg_unref(c);
}

static void
test_enroll_profile_load_hostile(void **state)
{
    static const struct {
        const char *extra, *want;
    } cases[] = {
        {"op.enroll.userKey.keyGen.signing.certId=C7\n", "C0..C4"},
        {"op.enroll.userKey.keyGen.signing.certAttrId=c3\n", "like certId"},
        {"op.enroll.userKey.keyGen.encryption.certId=C1\n", "share"},
        {"op.enroll.userKey.keyGen.signing.keySize=1536\n", "1024 or 2048"},
        {"op.enroll.userKey.keyGen.signing.privateKeyNumber=6\n", "do not match"},
        {"op.enroll.userKey.keyGen.signing.alg=3\n", "RSA"},
        {"op.enroll.userKey.pinReset.pin.minLen=12\n", "minLen"},
        {"op.enroll.userKey.keyGen.encryption.recovery.destroyed.scheme=RecoverLast\n",
         "serverKeygen"},
        {"op.enroll.userKey.renewal.signing.ca.profileId=\n", "renewal.signing.ca.profileId"},
    };
    char text[4096], err[256];
    struct tps_enroll_profile p;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_cfg *c;
        const char *key_end = strchr(cases[i].extra, '=');
        size_t o = 0;
        /* the case line replaces the base line of the same key */
        for (const char *l = ENROLL_CFG; *l;) {
            const char *nl = strchr(l, '\n');
            if (strncmp(l, cases[i].extra, (size_t)(key_end - cases[i].extra + 1)) != 0) {
                memcpy(text + o, l, (size_t)(nl - l + 1));
                o += (size_t)(nl - l + 1);
            }
            l = nl + 1;
        }
        snprintf(text + o, sizeof(text) - o, "%s", cases[i].extra);
        c = parse_cfg(text, NULL);
        assert_non_null(c);
        err[0] = '\0';
        assert_int_equal(tps_enroll_profile_load(c, "userKey", &p, err, sizeof(err)),
                         TPS_ECONFIG);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        cmn_cfg_unref(c);
    }
}

/* ---- renewal window and decision ---- */

static void
test_enroll_renew_window(void **state)
{
    struct tps_enroll_key k = {.grace_enable = true, .grace_before_days = 30,
                               .grace_after_days = 10};
    const time_t na = 2000000000;

    (void)state;
    assert_false(tps_enroll_renew_due(&k, na - 31 * 86400, na));
    assert_true(tps_enroll_renew_due(&k, na - 30 * 86400, na));
    assert_true(tps_enroll_renew_due(&k, na, na));
    assert_true(tps_enroll_renew_due(&k, na + 10 * 86400, na));
    assert_false(tps_enroll_renew_due(&k, na + 10 * 86400 + 1, na));
    k.grace_enable = false;
    assert_true(tps_enroll_renew_due(&k, na - 365 * 86400, na));
}

static void
test_enroll_decide(void **state)
{
    struct cmn_cfg *c;
    struct tps_enroll_profile p;
    struct tps_enroll_plan plan;
    struct tps_token_policy renew = {.re_enroll = true, .renew = true};
    struct tps_token_policy none = {0};
    const time_t now = 2000000000;
    struct tps_enroll_have due[] = {{"signing", now + 5 * 86400, true},
                                    {"encryption", now + 5 * 86400, true}};
    struct tps_enroll_have far[] = {{"signing", now + 300 * 86400, true}};
    struct tps_enroll_peer lost[] = {{"A1", TPS_TOKEN_PERM_LOST, "keyCompromise"}};
    struct tps_enroll_peer dmg[] = {{"A2", TPS_TOKEN_DAMAGED, "destroyed"}};
    struct tps_enroll_peer act[] = {{"A3", TPS_TOKEN_ACTIVE, NULL}};
    char err[256];

    (void)state;
    c = parse_cfg("op.enroll.userKey.keyGen.encryption.serverKeygen.enable=true\n"
                  "op.enroll.userKey.keyGen.encryption.recovery.onHold.scheme=RecoverLast\n",
                  NULL);
    cmn_cfg_unref(c);
    {
        char text[4096];
        snprintf(text, sizeof(text), "%s%s", ENROLL_CFG,
                 "op.enroll.userKey.keyGen.encryption.serverKeygen.enable=true\n");
        c = parse_cfg(text, NULL);
    }
    assert_non_null(c);
    assert_int_equal(tps_enroll_profile_load(c, "userKey", &p, err, sizeof(err)), TPS_OK);
    /* archived encryption key: RecoverLast after destroyed / keyCompromise by default */
    assert_int_equal(p.keys[1].recovery[0], TPS_RECOVERY_RECOVER_LAST);
    assert_int_equal(p.keys[1].recovery[1], TPS_RECOVERY_RECOVER_LAST);
    assert_int_equal(p.keys[1].recovery[2], TPS_RECOVERY_GENERATE);
    assert_int_equal(p.keys[0].recovery[0], TPS_RECOVERY_GENERATE);

    /* new token, no other token: generate all */
    tps_enroll_decide(&p, false, TPS_TOKEN_FORMATTED, NULL, NULL, 0, NULL, 0, now, &plan);
    assert_int_equal(plan.status, 0);
    assert_int_equal(plan.act[0], TPS_ENROLL_GENERATE);
    assert_int_equal(plan.act[1], TPS_ENROLL_GENERATE);
    /* replacement of a lost token: encryption recovered, signing new */
    tps_enroll_decide(&p, false, TPS_TOKEN_FORMATTED, NULL, NULL, 0, lost, 1, now, &plan);
    assert_int_equal(plan.status, 0);
    assert_int_equal(plan.act[0], TPS_ENROLL_GENERATE);
    assert_int_equal(plan.act[1], TPS_ENROLL_RECOVER);
    assert_int_equal(plan.recover_from, 0);
    tps_enroll_decide(&p, true, TPS_TOKEN_FORMATTED, NULL, NULL, 0, dmg, 1, now, &plan);
    assert_int_equal(plan.act[1], TPS_ENROLL_RECOVER);
    /* another active token */
    tps_enroll_decide(&p, false, TPS_TOKEN_FORMATTED, NULL, NULL, 0, act, 1, now, &plan);
    assert_int_equal(plan.status, 34);
    p.allow_multi_active = true;
    tps_enroll_decide(&p, false, TPS_TOKEN_FORMATTED, NULL, NULL, 0, act, 1, now, &plan);
    assert_int_equal(plan.status, 0);
    /* active token, RENEW=YES, signing due: renew signing, keep encryption */
    tps_enroll_decide(&p, true, TPS_TOKEN_ACTIVE, &renew, due, 2, NULL, 0, now, &plan);
    assert_int_equal(plan.status, 0);
    assert_int_equal(plan.act[0], TPS_ENROLL_RENEW);
    assert_int_equal(plan.act[1], TPS_ENROLL_KEEP);
    /* not due: re-enroll */
    tps_enroll_decide(&p, true, TPS_TOKEN_ACTIVE, &renew, far, 1, NULL, 0, now, &plan);
    assert_int_equal(plan.act[0], TPS_ENROLL_GENERATE);
    assert_int_equal(plan.act[1], TPS_ENROLL_GENERATE);
    /* neither allowed */
    tps_enroll_decide(&p, true, TPS_TOKEN_ACTIVE, &none, due, 2, NULL, 0, now, &plan);
    assert_int_equal(plan.status, 26);
    /* the token itself is lost / terminated */
    tps_enroll_decide(&p, true, TPS_TOKEN_PERM_LOST, NULL, NULL, 0, NULL, 0, now, &plan);
    assert_int_equal(plan.status, 38);
    tps_enroll_decide(&p, true, TPS_TOKEN_TERMINATED, NULL, NULL, 0, NULL, 0, now, &plan);
    assert_int_equal(plan.status, 35);
    cmn_cfg_unref(c);
}

/* ---- GENERATE KEY proof ---- */

/* Builds the I/O buffer a card would (card spec §3.4) for key pk and challenge. */
static size_t
make_iobuf(EVP_PKEY *pk, const uint8_t chal[16], uint8_t *io, size_t cap)
{
    BIGNUM *n = NULL, *e = NULL;
    uint8_t *blob = io + 2;
    size_t nl, el, bl, sl;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    assert_int_equal(EVP_PKEY_get_bn_param(pk, "n", &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pk, "e", &e), 1);
    nl = (size_t)BN_num_bytes(n);
    el = (size_t)BN_num_bytes(e);
    bl = 6 + nl + 2 + el;
    assert_true(2 + bl + 2 + nl <= cap);
    io[0] = (uint8_t)(bl >> 8);
    io[1] = (uint8_t)bl;
    blob[0] = 0;
    blob[1] = 1;
    blob[2] = (uint8_t)(BN_num_bits(n) >> 8);
    blob[3] = (uint8_t)BN_num_bits(n);
    blob[4] = (uint8_t)(nl >> 8);
    blob[5] = (uint8_t)nl;
    BN_bn2bin(n, blob + 6);
    blob[6 + nl] = (uint8_t)(el >> 8);
    blob[7 + nl] = (uint8_t)el;
    BN_bn2bin(e, blob + 8 + nl);
    sl = nl;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha1(), NULL, pk), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, blob, bl), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, chal, 16), 1);
    assert_int_equal(EVP_DigestSignFinal(md, io + 2 + bl + 2, &sl), 1);
    io[2 + bl] = (uint8_t)(sl >> 8);
    io[3 + bl] = (uint8_t)sl;
    EVP_MD_CTX_free(md);
    BN_free(n);
    BN_free(e);
    return 2 + bl + 2 + sl;
}

static void
test_enroll_keygen_proof(void **state)
{
    static const uint8_t chal[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    uint8_t io[1200], other[16];
    struct tps_keygen_pub *pub = calloc(1, sizeof(*pub));
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    unsigned char *der = NULL;
    int dl;
    size_t n;
    char err[256];

    (void)state;
    assert_non_null(pk);
    n = make_iobuf(pk, chal, io, sizeof(io));
    assert_int_equal(n, 0x10F); /* 2+139+2+128, card spec §3.4 */
    assert_int_equal(tps_keygen_verify_proof(io, n, chal, 1024, pub, err, sizeof(err)), TPS_OK);
    assert_int_equal(pub->key_bits, 1024);
    dl = i2d_PUBKEY(pk, &der);
    assert_int_equal((size_t)dl, pub->spki_len);
    assert_memory_equal(der, pub->spki, pub->spki_len);
    OPENSSL_free(der);
    /* another challenge: the key was not made for ours */
    memcpy(other, chal, 16);
    other[15] ^= 1;
    assert_int_equal(tps_keygen_verify_proof(io, n, other, 1024, pub, err, sizeof(err)),
                     TPS_EAUTH);
    assert_non_null(strstr(err, "proof"));
    /* a flipped modulus bit breaks it too */
    io[20] ^= 0x10;
    assert_int_equal(tps_keygen_verify_proof(io, n, chal, 1024, pub, err, sizeof(err)),
                     TPS_EAUTH);
    io[20] ^= 0x10;
    /* size asked differs, truncation, trailing bytes */
    assert_int_equal(tps_keygen_verify_proof(io, n, chal, 2048, pub, err, sizeof(err)),
                     TPS_EPROTO);
    for (size_t cut = 0; cut < n; cut += 37)
        assert_int_equal(tps_keygen_verify_proof(io, cut, chal, 0, pub, err, sizeof(err)),
                         TPS_EPROTO);
    io[n] = 0;
    assert_int_equal(tps_keygen_verify_proof(io, n + 1, chal, 0, pub, err, sizeof(err)),
                     TPS_EPROTO);
    EVP_PKEY_free(pk);
    free(pub);
}

/* ---- z0 ---- */

static void
test_enroll_z0_assembly(void **state)
{
    static const uint8_t cuid[10] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0x12, 0x34, 0x56, 0x78};
    static const uint8_t der1[300] = {0x30, 0x82, 1, 40};
    static const uint8_t der2[310] = {0x30, 0x82, 1, 50, 7};
    struct tps_enroll_obj objs[2] = {
        {.cert_no = 1, .label = "signing key for jdoe", .der = der1, .der_len = sizeof(der1),
         .usage = CMN_P11OBJ_USE_SIGN},
        {.cert_no = 2, .label = "encryption key for jdoe", .der = der2,
         .der_len = sizeof(der2), .usage = CMN_P11OBJ_USE_ENCRYPT},
    };
    struct cmn_p11obj *o = calloc(1, sizeof(*o));
    const struct cmn_p11obj_rec *r;
    const struct cmn_p11obj_attr *at;
    struct cmn_buf b;

    (void)state;
    for (int compress = 0; compress < 2; compress++) {
        cmn_buf_init(&b, 65536);
        assert_int_equal(tps_enroll_build_z0(cuid, "jdoe", 7, objs, 2, compress, &b), TPS_OK);
        assert_int_equal(cmn_p11obj_parse(o, b.data, b.len, 0), CMN_OK);
        assert_int_equal(o->object_version, 7);
        assert_memory_equal(o->cuid, cuid, 10);
        assert_int_equal(o->compression, compress);
        assert_int_equal(o->nrecs, 6);
        r = cmn_p11obj_find(o, CMN_P11OBJ_ID('c', 2));
        assert_non_null(r);
        at = cmn_p11obj_attr(r, CMN_P11_CKA_VALUE);
        assert_non_null(at);
        assert_int_equal(at->len, sizeof(der2));
        assert_memory_equal(at->val, der2, sizeof(der2));
        at = cmn_p11obj_attr(r, CMN_P11_CKA_LABEL);
        assert_non_null(at);
        assert_memory_equal(at->val, "encryption key for jdoe", at->len);
        r = cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 4)); /* private key of cert 2 */
        assert_non_null(r);
        assert_int_equal(r->fixed & CMN_P11OBJ_F_ID_MASK, 2);
        assert_true(r->fixed & CMN_P11OBJ_F_DECRYPT);
        r = cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 2));
        assert_non_null(r);
        assert_true(r->fixed & CMN_P11OBJ_F_SIGN);
        assert_non_null(cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 3)));
        assert_non_null(cmn_p11obj_find(o, CMN_P11OBJ_ID('k', 5)));
        cmn_p11obj_cleanup(o);
        cmn_buf_cleanup(&b);
    }
    /* hostile: duplicate number, number above 4, empty DER */
    cmn_buf_init(&b, 65536);
    objs[1].cert_no = 1;
    assert_int_equal(tps_enroll_build_z0(cuid, "jdoe", 7, objs, 2, true, &b), TPS_EINVAL);
    objs[1].cert_no = 5;
    assert_int_equal(tps_enroll_build_z0(cuid, "jdoe", 7, objs, 2, true, &b), TPS_EINVAL);
    objs[1].cert_no = 2;
    objs[1].der_len = 0;
    assert_int_equal(tps_enroll_build_z0(cuid, "jdoe", 7, objs, 2, true, &b), TPS_EINVAL);
    cmn_buf_cleanup(&b);
    free(o);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll_profile_load_good),
        cmocka_unit_test(test_enroll_profile_load_hostile),
        cmocka_unit_test(test_enroll_renew_window),
        cmocka_unit_test(test_enroll_decide),
        cmocka_unit_test(test_enroll_keygen_proof),
        cmocka_unit_test(test_enroll_z0_assembly),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
