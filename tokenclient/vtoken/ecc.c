/* tokenclient/vtoken/ecc.c - the ECC instructions of the emulated CoolKey applet: GENERATE KEY
 * ECC (84 0D) with the key blob and proof the C++ Dogtag TPS parses, COMPUTE ECC SIGNATURE and
 * KEY AGREEMENT (B0 37 / B0 38) as libckyapplet (upstream coolkey) and OpenSC's coolkey driver
 * send them; they swap 37/38, and docs/vtoken.md ("ECC") says how both are answered. */
#include "tokenclient/vtoken/card.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/crypto.h"

#define ALG_EC_F2M 0x04  /* Dogtag RA_Algs 4: binary curves, not offered */
#define ALG_EC_FP 0x05   /* Dogtag RA_Algs 5: prime curves */
#define BLOB_EC_PUBLIC 0x0A
#define POINT_MAX 97     /* 04 ‖ X ‖ Y of P-384 */
#define SIG_MAX 112      /* DER ECDSA-P384 is at most 104 bytes */
#define LOC_APDU 0x01
#define LOC_IOBUF 0x02
#define HASH_MAX 64      /* longest digest a caller may hand over (SHA-512) */

/* Uncompressed public point of pk. */
static bool
public_point(const EVP_PKEY *pk, uint8_t *out, size_t cap, size_t *n)
{
    return EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, out, cap, n) == 1 &&
           *n > 1 && out[0] == 0x04;
}

/* I/O buffer after a GENERATE KEY ECC: blobLen ‖ blob ‖ proofLen ‖ proof, with
 * blob = 00 0A keySize(2) pointLen(2) point and proof = DER ECDSA-SHA1 over blob ‖ challenge
 * (the layout CertEnroll::ParsePublicKeyBlob of the C++ TPS reads). Returns the total length,
 * 0 on failure. */
static size_t
fill_iobuf(struct vt_card *c, EVP_PKEY *pk, unsigned bits, const uint8_t challenge[16])
{
    uint8_t point[POINT_MAX];
    size_t npoint = 0, blob_len, siglen = SIG_MAX;
    uint8_t *blob = c->io + 2;
    EVP_MD_CTX *md;
    bool ok;

    if (!public_point(pk, point, sizeof(point), &npoint))
        return 0;
    blob_len = 2 + 2 + 2 + npoint;
    if (2 + blob_len + 2 + SIG_MAX > sizeof(c->io))
        return 0;
    cmn_put_u16(c->io, (uint16_t)blob_len);
    blob[0] = 0x00; /* plain encoding */
    blob[1] = BLOB_EC_PUBLIC;
    cmn_put_u16(blob + 2, (uint16_t)bits);
    cmn_put_u16(blob + 4, (uint16_t)npoint);
    memcpy(blob + 6, point, npoint);
    md = EVP_MD_CTX_new();
    ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha1(), NULL, pk) == 1 &&
         EVP_DigestSignUpdate(md, blob, blob_len) == 1 &&
         EVP_DigestSignUpdate(md, challenge, 16) == 1 &&
         EVP_DigestSignFinal(md, c->io + 2 + blob_len + 2, &siglen) == 1 && siglen <= SIG_MAX;
    EVP_MD_CTX_free(md);
    if (!ok)
        return 0;
    cmn_put_u16(c->io + 2 + blob_len, (uint16_t)siglen);
    c->io_len = 2 + blob_len + 2 + siglen;
    return c->io_len;
}

uint16_t
vt_ecc_generate_key(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    struct cmn_rd rd;
    uint8_t alg, option, type, wlen, klen;
    uint16_t bits;
    const uint8_t *wrapped, *kcheck;
    unsigned priv, pub, user;
    uint8_t challenge[16];
    struct cmn_keyset *ks;
    const char *curve;
    EVP_PKEY *pk = NULL;
    size_t total;
    uint16_t sw;

    /* alg keySize(2) option type wcLen wc kcLen kc (Dogtag GenerateKeyECCAPDU) */
    cmn_rd_init(&rd, a->data, a->lc);
    if (!cmn_rd_u8(&rd, &alg) || !cmn_rd_u16(&rd, &bits) || !cmn_rd_u8(&rd, &option) ||
        !cmn_rd_u8(&rd, &type) || !cmn_rd_u8(&rd, &wlen) || !cmn_rd_take(&rd, wlen, &wrapped) ||
        !cmn_rd_u8(&rd, &klen) || !cmn_rd_take(&rd, klen, &kcheck) || rd.left != 0)
        return VT_SW_WRONG_LENGTH;
    (void)option;
    (void)type; /* the card ignores both, as for RSA (§3.4) */
    (void)kcheck;
    if (alg != ALG_EC_FP)
        return VT_SW_BAD_ALG; /* F2m curves (04) and RSA algs belong elsewhere */
    curve = cmn_ec_curve(bits);
    if (curve == NULL || wlen != 16)
        return VT_SW_INVALID_PARAM;
    sw = vt_key_slots(a, &priv, &pub, &user);
    if (sw != VT_SW_OK)
        return sw;
    ks = vt_keyset_find(c, c->sess_kv);
    if (ks == NULL || cmn_scp_challenge_decrypt(&ks->kek, wrapped, challenge) != CMN_OK)
        return VT_SW_INTERNAL;
    sw = VT_SW_INTERNAL;
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    if (pk == NULL)
        goto out;
    total = fill_iobuf(c, pk, bits, challenge);
    if (total == 0)
        goto out;
    sw = vt_key_install_pair(c, pk, priv, pub, user);
    pk = NULL;
    if (sw == VT_SW_OK && !vt_resp_put_u16(r, total))
        sw = VT_SW_INTERNAL;
out:
    EVP_PKEY_free(pk);
    cmn_wipe(challenge, sizeof(challenge));
    return sw;
}

/* The input of a COMPUTE ECC command: loc(1) len(2) data [anything after: libckyapplet may
 * append a signature to verify, which the applet ignores], or loc 02 with the data in the I/O
 * buffer as len(2) ‖ data. */
static bool
ecc_input(const struct vt_card *c, const struct cmn_apdu *a, uint8_t *loc, const uint8_t **in,
          size_t *len)
{
    struct cmn_rd rd;
    uint16_t n;

    cmn_rd_init(&rd, a->data, a->lc);
    if (!cmn_rd_u8(&rd, loc) || !cmn_rd_u16(&rd, &n))
        return false;
    if (*loc == LOC_APDU) {
        *len = n;
        return cmn_rd_take(&rd, n, in);
    }
    return *loc == LOC_IOBUF && vt_io_input(c, in, len);
}

/* ECDSA over a digest the caller computed (coolkey's CKM_ECDSA): DER signature. */
static bool
ecdsa_sign(EVP_PKEY *key, const uint8_t *in, size_t len, uint8_t *out, size_t *outlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    bool ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
              EVP_PKEY_sign(ctx, out, outlen, in, len) == 1;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ECDH with the peer's uncompressed point on the key's curve: the x coordinate. */
static bool
ecdh_derive(EVP_PKEY *key, const uint8_t *point, size_t len, uint8_t *out, size_t *outlen)
{
    EVP_PKEY *peer = EVP_PKEY_new();
    EVP_PKEY_CTX *dctx = NULL;
    bool ok = false;

    /* the peer takes the key's curve, then the point (checked to be on it) */
    if (peer == NULL || EVP_PKEY_copy_parameters(peer, key) != 1 ||
        EVP_PKEY_set1_encoded_public_key(peer, point, len) != 1)
        goto out;
    dctx = EVP_PKEY_CTX_new(key, NULL);
    ok = dctx != NULL && EVP_PKEY_derive_init(dctx) == 1 &&
         EVP_PKEY_derive_set_peer(dctx, peer) == 1 && EVP_PKEY_derive(dctx, out, outlen) == 1;
out:
    EVP_PKEY_CTX_free(dctx);
    EVP_PKEY_free(peer);
    return ok;
}

/* DER ECDSA-Sig-Value -> r ‖ s, each padded to the field size (in place in out). */
static bool
der_to_raw(const struct vt_keyslot *k, uint8_t *out, size_t *outlen)
{
    const unsigned char *p = out;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)*outlen);
    int fl = (k->bits + 7) / 8;
    bool ok = sig != NULL && 2 * (size_t)fl <= SIG_MAX &&
              BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, fl) == fl &&
              BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + fl, fl) == fl;

    ECDSA_SIG_free(sig);
    if (ok)
        *outlen = 2 * (size_t)fl;
    return ok;
}

/* An uncompressed point of the key's size, which no digest length can be mistaken for. */
static bool
is_point_for(const struct vt_keyslot *k, const uint8_t *in, size_t len)
{
    return len == 1 + 2 * (((size_t)k->bits + 7) / 8) && in[0] == 0x04;
}

uint16_t
vt_ecc_compute(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids, struct vt_resp *r)
{
    struct vt_keyslot *k;
    uint8_t loc, out[SIG_MAX];
    const uint8_t *in = NULL;
    size_t len = 0, outlen = sizeof(out);
    bool agree, ok;
    uint16_t sw;

    if (a->p2 != 0x04) /* one step only, like COMPUTE CRYPT here */
        return VT_SW_BAD_P2;
    if (a->p1 >= VT_MAX_KEYSLOTS || !c->keys[a->p1].present ||
        c->keys[a->p1].type != VT_KEY_EC_PRIVATE)
        return VT_SW_BAD_P1;
    k = &c->keys[a->p1];
    if (!(k->acl[2] & ids))
        return VT_SW_UNAUTHORIZED;
    if (!ecc_input(c, a, &loc, &in, &len) || len == 0)
        return VT_SW_INVALID_PARAM;
    /* libckyapplet: 37 signs, 38 agrees; OpenSC's driver: 38 signs, 37 agrees. The input tells
     * them apart: a key agreement gets a point of the key's curve, a signature a digest. */
    agree = is_point_for(k, in, len);
    if (!agree && len > HASH_MAX)
        return VT_SW_INVALID_PARAM;
    ok = agree ? ecdh_derive(k->pkey, in, len, out, &outlen)
               : ecdsa_sign(k->pkey, in, len, out, &outlen);
    if (!ok) {
        cmn_wipe(out, sizeof(out));
        return VT_SW_INVALID_PARAM;
    }
    /* OpenSC 0.23 hands the response data of its signature (38) to PKCS#11 unchanged: it gets
     * r ‖ s without a length. libckyapplet (37) strips len(2) and decodes a DER signature. */
    if (a->ins == 0x38 && !agree && loc == LOC_APDU) {
        ok = der_to_raw(k, out, &outlen) && vt_resp_put(r, out, outlen);
        cmn_wipe(out, sizeof(out));
        return ok ? VT_SW_OK : VT_SW_INTERNAL;
    }
    sw = vt_crypt_output(c, r, loc, out, outlen);
    cmn_wipe(out, sizeof(out));
    return sw;
}
