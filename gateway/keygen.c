/* gateway/keygen.c - enrollment key material: the GENERATE KEY challenge (TKS encryptData in
 * gateway/tks.c), proof verification of the card's new key with OpenSSL, RSA
 * SubjectPublicKeyInfo, and the IMPORT KEY ENCRYPTED object layout (card spec §3.4, §3.5; backends §2.6). */
#include "gateway/keygen.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "common/apdu.h"
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

enum tps_rc
tps_keygen_verify_proof(const uint8_t *iobuf, size_t len,
                        const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN], unsigned want_bits,
                        struct tps_keygen_pub *out, char *err, size_t errlen)
{
    struct cmn_ck_keygen_out kg;
    const uint8_t *mod, *exp;
    size_t mod_len, exp_len;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *md = NULL;
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
    md = EVP_MD_CTX_new();
    if (pk == NULL || md == NULL) {
        snprintf(err, errlen, "GENERATE KEY: cannot build the RSA key");
        rc = TPS_ECRYPTO;
        goto out;
    }
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha1(), NULL, pk) != 1 ||
        EVP_DigestVerifyUpdate(md, kg.blob, kg.blob_len) != 1 ||
        EVP_DigestVerifyUpdate(md, challenge, TPS_KEYGEN_CHALLENGE_LEN) != 1 ||
        EVP_DigestVerifyFinal(md, kg.proof, kg.proof_len) != 1) {
        snprintf(err, errlen, "GENERATE KEY: proof of possession does not verify");
        rc = TPS_EAUTH;
        goto out;
    }
    memcpy(out->modulus, mod, mod_len);
    out->mod_len = mod_len;
    rc = spki_of(pk, out->spki, sizeof(out->spki), &out->spki_len);
    if (rc != TPS_OK)
        snprintf(err, errlen, "GENERATE KEY: cannot encode the public key");
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (rc != TPS_OK)
        memset(out, 0, sizeof(*out));
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
