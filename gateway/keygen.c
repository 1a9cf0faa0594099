/* gateway/keygen.c - enrollment key material: the GENERATE KEY challenge (TKS encryptData in
 * gateway/tks.c), proof verification of the card's new RSA or EC key with OpenSSL, the
 * GENERATE KEY ECC command, SubjectPublicKeyInfo, the key fields z0 needs, and the IMPORT KEY
 * ENCRYPTED object layout (card spec §3.4, §3.5; backends §2.6). */
#include "gateway/keygen.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "common/apdu.h"
#include "common/crypto.h"
#include "common/log.h"
#include "gateway/tks.h"

static EVP_PKEY *
rsa_from(const uint8_t *mod, size_t mod_len, const uint8_t *exp, size_t exp_len)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    BIGNUM *n = NULL, *e = NULL;

    n = BN_bin2bn(mod, (int)mod_len, NULL);
    e = BN_bin2bn(exp, (int)exp_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (n == NULL || e == NULL || bld == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pk;
}

static enum tps_rc
spki_of(EVP_PKEY *pk, uint8_t *out, size_t cap, size_t *n)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pk, &der);
    enum tps_rc rc = TPS_OK;

    if (len <= 0)
        return TPS_ECRYPTO;
    if ((size_t)len > cap)
        rc = TPS_ETOOBIG;
    else {
        memcpy(out, der, (size_t)len);
        *n = (size_t)len;
    }
    OPENSSL_free(der);
    return rc;
}

/* Strips leading zero bytes of a big-endian integer. */
static void
strip(const uint8_t **p, size_t *n)
{
    while (*n > 0 && **p == 0) {
        (*p)++;
        (*n)--;
    }
}

enum tps_rc
tps_keygen_spki_rsa(const uint8_t *mod, size_t mod_len, const uint8_t *exp, size_t exp_len,
                    uint8_t *out, size_t cap, size_t *n)
{
    EVP_PKEY *pk;
    enum tps_rc rc;

    strip(&mod, &mod_len);
    strip(&exp, &exp_len);
    if (mod_len == 0 || mod_len > TPS_KEYGEN_MOD_MAX || exp_len == 0 || exp_len > 8)
        return TPS_EINVAL;
    pk = rsa_from(mod, mod_len, exp, exp_len);
    if (pk == NULL)
        return TPS_ECRYPTO;
    rc = spki_of(pk, out, cap, n);
    EVP_PKEY_free(pk);
    return rc;
}

enum tps_rc
tps_keygen_spki_parse(const uint8_t *spki, size_t len, unsigned *key_bits, uint8_t *mod,
                      size_t cap, size_t *mod_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
    BIGNUM *n = NULL;
    enum tps_rc rc = TPS_EPROTO;
    int nb;

    if (pk == NULL || p != spki + len || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1)
        goto out;
    nb = BN_num_bytes(n);
    if (nb <= 0 || (size_t)nb > cap) {
        rc = TPS_ETOOBIG;
        goto out;
    }
    *mod_len = (size_t)BN_bn2bin(n, mod);
    *key_bits = (unsigned)BN_num_bits(n);
    rc = TPS_OK;
out:
    BN_free(n);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

/* The proof of possession: the card's SHA-1 signature (RSA PKCS#1 v1.5 or ECDSA) over the key
 * blob followed by the challenge; then the SPKI of pk into out. what names the command. */
static enum tps_rc
proof_and_spki(EVP_PKEY *pk, const uint8_t *blob, size_t blob_len,
               const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN], const uint8_t *proof,
               size_t proof_len, const char *what, struct tps_keygen_pub *out, char *err,
               size_t errlen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    enum tps_rc rc;

    if (md == NULL) {
        snprintf(err, errlen, "%s: out of memory", what);
        return TPS_ECRYPTO;
    }
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha1(), NULL, pk) != 1 ||
        EVP_DigestVerifyUpdate(md, blob, blob_len) != 1 ||
        EVP_DigestVerifyUpdate(md, challenge, TPS_KEYGEN_CHALLENGE_LEN) != 1 ||
        EVP_DigestVerifyFinal(md, proof, proof_len) != 1) {
        snprintf(err, errlen, "%s: proof of possession does not verify", what);
        rc = TPS_EAUTH;
    } else {
        rc = spki_of(pk, out->spki, sizeof(out->spki), &out->spki_len);
        if (rc != TPS_OK)
            snprintf(err, errlen, "%s: cannot encode the public key", what);
    }
    EVP_MD_CTX_free(md);
    return rc;
}

enum tps_rc
tps_keygen_verify_proof(const uint8_t *iobuf, size_t len,
                        const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN], unsigned want_bits,
                        struct tps_keygen_pub *out, char *err, size_t errlen)
{
    struct cmn_ck_keygen_out kg;
    const uint8_t *mod, *exp;
    size_t mod_len, exp_len;
    EVP_PKEY *pk = NULL;
    enum tps_rc rc = TPS_EPROTO;

    memset(out, 0, sizeof(*out));
    ERR_clear_error();
    if (cmn_ck_keygen_parse(iobuf, len, &kg) != CMN_OK) {
        snprintf(err, errlen, "GENERATE KEY buffer of %zu bytes is malformed", len);
        goto out;
    }
    mod = kg.modulus;
    mod_len = kg.mod_len;
    exp = kg.exponent;
    exp_len = kg.exp_len;
    strip(&mod, &mod_len);
    strip(&exp, &exp_len);
    if (mod_len == 0 || mod_len > TPS_KEYGEN_MOD_MAX || exp_len == 0 || exp_len > 8 ||
        (exp[exp_len - 1] & 1) == 0 || (exp_len == 1 && exp[0] < 3)) {
        snprintf(err, errlen, "GENERATE KEY: unusable RSA public key (modulus %zu bytes, "
                 "exponent %zu bytes)", mod_len, exp_len);
        goto out;
    }
    out->key_bits = (unsigned)(mod_len * 8);
    for (uint8_t top = mod[0]; (top & 0x80) == 0; top = (uint8_t)(top << 1))
        out->key_bits--;
    if (want_bits != 0 && (out->key_bits != want_bits || kg.key_bits != want_bits)) {
        snprintf(err, errlen, "GENERATE KEY: card made a %u-bit key (blob says %u), %u asked",
                 out->key_bits, kg.key_bits, want_bits);
        goto out;
    }
    pk = rsa_from(mod, mod_len, exp, exp_len);
    if (pk == NULL) {
        snprintf(err, errlen, "GENERATE KEY: cannot build the RSA key");
        rc = TPS_ECRYPTO;
        goto out;
    }
    memcpy(out->modulus, mod, mod_len);
    out->mod_len = mod_len;
    rc = proof_and_spki(pk, kg.blob, kg.blob_len, challenge, kg.proof, kg.proof_len,
                        "GENERATE KEY", out, err, errlen);
out:
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (rc != TPS_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- EC keys (GENERATE KEY ECC, Dogtag alg 5) ---------------------------------------- */

#define EC_BLOB_TYPE 0x0A /* key type "ECC public" of the key blob (C++ TPS CertEnroll.cpp) */

/* EC public key from an uncompressed point; NULL when the point is not on the curve. */
static EVP_PKEY *
ec_from(const char *curve, const uint8_t *point, size_t len)
{
    uint8_t pt[TPS_KEYGEN_EC_POINT_MAX];
    char group[16];
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    EVP_PKEY *pk = NULL;

    if (len > sizeof(pt))
        return NULL;
    memcpy(pt, point, len); /* OSSL_PARAM takes non-const pointers */
    snprintf(group, sizeof(group), "%s", curve);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, len);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    chk = EVP_PKEY_CTX_new(pk, NULL);
    if (chk == NULL || EVP_PKEY_public_check(chk) != 1) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
out:
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

/* blobLen ‖ blob ‖ proofLen ‖ proof, nothing after (card spec §3.4 framing). */
static bool
keygen_frame(const uint8_t *iobuf, size_t len, const uint8_t **blob, size_t *blob_len,
             const uint8_t **proof, size_t *proof_len)
{
    struct cmn_rd rd;
    uint16_t n;

    cmn_rd_init(&rd, iobuf, len);
    if (!cmn_rd_u16(&rd, &n) || !cmn_rd_take(&rd, n, blob))
        return false;
    *blob_len = n;
    if (!cmn_rd_u16(&rd, &n) || !cmn_rd_take(&rd, n, proof))
        return false;
    *proof_len = n;
    return rd.left == 0 && *blob_len > 0 && *proof_len > 0;
}

/* blob = 00 0A keySize(2) pointLen(2) point, the point uncompressed and of the curve's size. */
static bool
ec_blob(const uint8_t *blob, size_t len, unsigned *bits, const uint8_t **point,
        size_t *point_len)
{
    struct cmn_rd rd;
    uint8_t enc, type;
    uint16_t b, n;

    cmn_rd_init(&rd, blob, len);
    if (!cmn_rd_u8(&rd, &enc) || !cmn_rd_u8(&rd, &type) || !cmn_rd_u16(&rd, &b) ||
        !cmn_rd_u16(&rd, &n) || !cmn_rd_take(&rd, n, point) || rd.left != 0)
        return false;
    *bits = b;
    *point_len = n;
    return enc == 0x00 && type == EC_BLOB_TYPE && n == 1 + 2 * ((b + 7u) / 8u) &&
           n <= TPS_KEYGEN_EC_POINT_MAX && (*point)[0] == 0x04;
}

enum tps_rc
tps_keygen_verify_proof_ec(const uint8_t *iobuf, size_t len,
                           const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN], unsigned want_bits,
                           struct tps_keygen_pub *out, char *err, size_t errlen)
{
    const uint8_t *blob, *proof, *point;
    size_t blob_len, proof_len, point_len;
    unsigned bits = 0;
    const char *curve = cmn_ec_curve(want_bits);
    EVP_PKEY *pk = NULL;
    enum tps_rc rc = TPS_EPROTO;

    memset(out, 0, sizeof(*out));
    ERR_clear_error();
    if (curve == NULL) {
        snprintf(err, errlen, "GENERATE KEY ECC: no curve of %u bits (256 or 384)", want_bits);
        rc = TPS_EINVAL;
        goto out;
    }
    if (!keygen_frame(iobuf, len, &blob, &blob_len, &proof, &proof_len)) {
        snprintf(err, errlen, "GENERATE KEY ECC buffer of %zu bytes is malformed (want "
                 "blobLen blob proofLen proof)", len);
        goto out;
    }
    if (!ec_blob(blob, blob_len, &bits, &point, &point_len)) {
        snprintf(err, errlen, "GENERATE KEY ECC: key blob of %zu bytes is not 00 0A keySize "
                 "pointLen 04||X||Y", blob_len);
        goto out;
    }
    if (bits != want_bits) {
        snprintf(err, errlen, "GENERATE KEY ECC: card made a %u-bit key, %u asked", bits,
                 want_bits);
        goto out;
    }
    pk = ec_from(curve, point, point_len);
    if (pk == NULL) {
        snprintf(err, errlen, "GENERATE KEY ECC: the public point is not on %s", curve);
        goto out;
    }
    out->ec = true;
    out->key_bits = bits;
    memcpy(out->point, point, point_len);
    out->point_len = point_len;
    rc = proof_and_spki(pk, blob, blob_len, challenge, proof, proof_len, "GENERATE KEY ECC", out,
                        err, errlen);
out:
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (rc != TPS_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

enum tps_rc
tps_keygen_ecc_apdu(struct cmn_apdu *a, const struct cmn_ck_keygen *kg)
{
    struct cmn_ck_keygen e;

    if (kg == NULL)
        return TPS_EINVAL;
    e = *kg;
    e.alg = 0x05; /* Dogtag RA_Algs ALG_EC_FP, sent as is (TPSEnrollProcessor) */
    e.type = 0x00;
    /* same data as the RSA command: the trailing 00 is the empty key-check length */
    if (cmn_apdu_generate_key(a, &e, false) != CMN_OK) {
        OPENSSL_cleanse(&e, sizeof(e));
        return TPS_EINVAL;
    }
    OPENSSL_cleanse(&e, sizeof(e));
    a->ins = 0x0D;
    a->le = -1; /* the Java TPS adds no Le to the ECC command */
    return TPS_OK;
}

enum tps_rc
tps_keygen_cert_key(const uint8_t *der, size_t len, bool *ec, uint8_t *params,
                    size_t *params_len, uint8_t *point, size_t *point_len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    EVP_PKEY *pk = x != NULL ? X509_get0_pubkey(x) : NULL;
    char group[64];
    ASN1_OBJECT *oid = NULL;
    unsigned char *enc = NULL;
    int n;
    enum tps_rc rc = TPS_EPROTO;

    if (pk == NULL)
        goto out;
    *ec = EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC;
    if (!*ec) {
        rc = TPS_OK;
        goto out;
    }
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        (oid = OBJ_txt2obj(group, 0)) == NULL || OBJ_obj2nid(oid) == NID_undef)
        goto out;
    n = i2d_ASN1_OBJECT(oid, &enc);
    if (n <= 0 || (size_t)n > TPS_KEYGEN_EC_PARAMS_MAX ||
        EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, point,
                                        TPS_KEYGEN_EC_POINT_MAX, point_len) != 1)
        goto out;
    memcpy(params, enc, (size_t)n);
    *params_len = (size_t)n;
    rc = TPS_OK;
out:
    OPENSSL_free(enc);
    ASN1_OBJECT_free(oid);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

enum tps_rc
tps_keygen_challenge(const struct tps_tks *t, struct fo_req *req, const char *path, const char *sid,
                     const struct tps_keygen_card *card, uint8_t plain[TPS_KEYGEN_CHALLENGE_LEN],
                     uint8_t wrapped[TPS_KEYGEN_CHALLENGE_LEN], char *err, size_t errlen)
{
    return tps_tks_encrypt_data(t, req, path, sid, card->proto, card->cuid, card->kdd,
                                card->key_info, card->key_info_len, plain, wrapped, err, errlen);
}

enum tps_rc
tps_keygen_import_object(unsigned key_bits, const uint8_t *wrapped, size_t len, struct cmn_buf *out)
{
    uint8_t hdr[4] = {0x01, 0x09, (uint8_t)(key_bits >> 8), (uint8_t)key_bits};

    if (len == 0 || key_bits == 0 || key_bits > 0xFFFF)
        return TPS_EINVAL;
    if (cmn_buf_append(out, hdr, sizeof(hdr)) != CMN_OK ||
        cmn_buf_append(out, wrapped, len) != CMN_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}
