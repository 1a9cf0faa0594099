/* tests/sim/kra.c - the KRA (DRM) double: GenerateKeyPair with archival and TokenKeyRecovery
 * of backends §5. Keys are generated with OpenSSL, returned wrapped under the session key the
 * TKS sent through the transport certificate, and archived in the replicated store under the
 * storage key the clones share. */
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/pct.h"

const struct cmn_cfg_key sim_kra_keys[] = {
    {.name = "pkisim.kra.transportKeyFile", .type = CFG_PATH, .required = true,
     .doc = "transport private key (PEM; pki-sim --init-kra), same on every clone"},
    {.name = "pkisim.kra.storageKeyFile", .type = CFG_PATH, .required = true,
     .doc = "storage private key (PEM) that wraps archived keys, same on every clone"},
    {.name = "pkisim.kra.agentGroup", .type = CFG_STR, .defstr = "Data Recovery Manager Agents"},
    {.name = "keyWrap.useOAEP", .type = CFG_BOOL, .def = 0,
     .doc = "RSA-OAEP (SHA-256) for the transport wrap, as the TKS"},
    {0},
};

struct sim_kra {
    struct cmn_cfg *cfg;
    struct sim_store *st;
    EVP_PKEY *transport, *storage;
    const char *group;
    bool oaep;
};

static EVP_PKEY *
read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = NULL;

    if (f != NULL) {
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    return k;
}

void
sim_kra_free(struct sim_kra *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->transport);
    EVP_PKEY_free(k->storage);
    cmn_cfg_unref(k->cfg);
    free(k);
}

enum cmn_rc
sim_kra_new(const struct cmn_cfg *cfg, struct sim_store *st, struct cmn_buf *errs,
            struct sim_kra **out)
{
    struct sim_kra *k = calloc(1, sizeof(*k));

    *out = NULL;
    if (k == NULL)
        return CMN_ENOMEM;
    k->cfg = cmn_cfg_ref((struct cmn_cfg *)(uintptr_t)cfg);
    k->st = st;
    k->group = cmn_cfg_str(cfg, "pkisim.kra.agentGroup");
    k->oaep = cmn_cfg_bool(cfg, "keyWrap.useOAEP");
    k->transport = read_key(cmn_cfg_str(cfg, "pkisim.kra.transportKeyFile"));
    k->storage = read_key(cmn_cfg_str(cfg, "pkisim.kra.storageKeyFile"));
    if (k->transport == NULL || k->storage == NULL) {
        (void)cmn_buf_puts(errs, "pkisim.kra.transportKeyFile/storageKeyFile: cannot read the "
                                 "keys (run pki-sim --init-kra DIR)\n");
        ERR_clear_error();
        sim_kra_free(k);
        return CMN_ECONFIG;
    }
    *out = k;
    return CMN_OK;
}

/* RSA encrypt/decrypt with PKCS#1 v1.5 or OAEP(SHA-256, MGF1-SHA-256). */
static bool
rsa_op(EVP_PKEY *key, bool encrypt, bool oaep, const uint8_t *in, size_t n, uint8_t *out,
       size_t *out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    bool ok = false;

    if (ctx == NULL)
        goto out;
    if ((encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0)
        goto out;
    if (oaep) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0)
            goto out;
    } else if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) {
        goto out;
    }
    ok = (encrypt ? EVP_PKEY_encrypt(ctx, out, out_len, in, n)
                  : EVP_PKEY_decrypt(ctx, out, out_len, in, n)) > 0;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* One symmetric operation through EVP. */
static bool
sym(const EVP_CIPHER *c, bool encrypt, bool pad, const uint8_t *key, const uint8_t *iv,
    const uint8_t *in, size_t n, uint8_t *out, size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    bool ok = false;

    if (ctx == NULL || n > 65536)
        goto out;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex(ctx, c, NULL, key, iv, encrypt ? 1 : 0) != 1)
        goto out;
    (void)EVP_CIPHER_CTX_set_padding(ctx, pad ? 1 : 0);
    if (EVP_CipherUpdate(ctx, out, &l1, in, (int)n) != 1 ||
        EVP_CipherFinal_ex(ctx, out + l1, &l2) != 1)
        goto out;
    *out_len = (size_t)(l1 + l2);
    ok = true;
out:
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* The session key the TKS wrapped for us (§3.7): AES-128 A (preferred) or DES3 D (24). */
struct sess {
    bool aes;
    bool cbc; /* drm_aes_wrapAlg=CBC */
    uint8_t k[24];
};

/* Returns 0, or the status to answer: 4 crypto failure; -1 neither key present. */
static int
unwrap_session(const struct sim_kra *k, const struct sim_form *f, struct sess *s)
{
    const struct sim_param *a = sim_form_get(f, "drm_trans_aesKey");
    const struct sim_param *d = sim_form_get2(f, "drm_trans_desKey", "drm_trans_wrapped_desKey");
    const struct sim_param *alg = sim_form_get(f, "drm_aes_wrapAlg");
    const struct sim_param *use = a != NULL && a->len > 0 ? a : d;
    uint8_t w[1024], plain[512];
    size_t wl, pl = sizeof(plain);
    int st = 4;

    memset(s, 0, sizeof(*s));
    if (use == NULL || use->len == 0)
        return -1;
    s->aes = use == a;
    s->cbc = alg != NULL && strcmp(alg->val, "CBC") == 0;
    if (sim_hash_decode(use->val, use->len, w, sizeof(w), &wl) != CMN_OK ||
        !rsa_op(k->transport, false, k->oaep, w, wl, plain, &pl))
        goto out;
    if (s->aes && pl == 16)
        memcpy(s->k, plain, 16);
    else if (!s->aes && pl == 24)
        memcpy(s->k, plain, 24);
    else
        goto out;
    st = 0;
out:
    cmn_wipe(plain, sizeof(plain));
    return st;
}

/* Wraps the PKCS#8 blob under the session key (§5.1): D -> DES3-CBC-PAD, random 8-byte IV;
 * A -> AES KWP (RFC 5649; iv_param an unused random 8 bytes) or AES-CBC-PAD, zero IV. */
static bool
wrap_priv(const struct sess *s, const uint8_t *p8, size_t n, uint8_t *out, size_t *out_len,
          uint8_t *iv, size_t *iv_len)
{
    if (!s->aes) {
        *iv_len = 8;
        return cmn_crypto_random(iv, 8) == CMN_OK &&
               sym(EVP_des_ede3_cbc(), true, true, s->k, iv, p8, n, out, out_len);
    }
    if (s->cbc) {
        *iv_len = 16;
        memset(iv, 0, 16);
        return sym(EVP_aes_128_cbc(), true, true, s->k, iv, p8, n, out, out_len);
    }
    *iv_len = 8;
    return cmn_crypto_random(iv, 8) == CMN_OK &&
           sym(EVP_aes_128_wrap_pad(), true, false, s->k, NULL, p8, n, out, out_len);
}

static void
reply_status(struct sim_resp *r, int status)
{
    cmn_buf_reset(&r->body);
    r->ctype = "application/x-www-form-urlencoded";
    (void)cmn_buf_printf(&r->body, "status=%d", status);
    sim_resp_note(r, "status=%d", status);
}

/* The public key field: RSA -> base64 of the SPKI, EC -> PCT of the SPKI. */
static enum cmn_rc
put_public(struct cmn_buf *b, EVP_PKEY *pk)
{
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(pk, &der);
    enum cmn_rc rc;

    if (n <= 0)
        return CMN_ECRYPTO;
    rc = cmn_buf_puts(b, "&public_key=");
    if (rc == CMN_OK)
        rc = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA ? sim_b64_append(b, der, (size_t)n)
                                                       : cmn_pct_encode_all(b, der, (size_t)n);
    OPENSSL_free(der);
    return rc;
}

/* Storage envelope: len(2) || RSA-OAEP(storage, K) || AES-256-KWP(K, PKCS#8), base64. */
static enum cmn_rc
seal(const struct sim_kra *k, const uint8_t *p8, size_t n, struct cmn_buf *b64)
{
    uint8_t key[32], env[8192], *w = env + 2;
    size_t wl = sizeof(env) - 2, cl;
    enum cmn_rc rc = CMN_ECRYPTO;

    if (n > 4096 || cmn_crypto_random(key, 32) != CMN_OK ||
        !rsa_op(k->storage, true, true, key, 32, w, &wl))
        goto out;
    env[0] = (uint8_t)(wl >> 8);
    env[1] = (uint8_t)wl;
    if (!sym(EVP_aes_256_wrap_pad(), true, false, key, NULL, p8, n, w + wl, &cl))
        goto out;
    rc = sim_b64_append(b64, env, 2 + wl + cl);
out:
    cmn_wipe(key, sizeof(key));
    return rc;
}

static enum cmn_rc
unseal(const struct sim_kra *k, const char *b64, struct cmn_buf *p8)
{
    struct cmn_buf env;
    uint8_t key[512]; /* RSA decryption wants room for a whole modulus */
    size_t kl = sizeof(key), wl, pl;
    uint8_t *dst;
    enum cmn_rc rc;

    cmn_buf_init(&env, 16384);
    rc = sim_b64_decode(b64, strlen(b64), &env);
    if (rc != CMN_OK)
        goto out;
    rc = CMN_ECRYPTO;
    if (env.len < 2)
        goto out;
    wl = (size_t)env.data[0] << 8 | env.data[1];
    if (2 + wl > env.len || !rsa_op(k->storage, false, true, env.data + 2, wl, key, &kl) ||
        kl != 32)
        goto out;
    if (cmn_buf_reserve(p8, env.len, &dst) != CMN_OK ||
        !sym(EVP_aes_256_wrap_pad(), false, false, key, NULL, env.data + 2 + wl,
             env.len - 2 - wl, dst, &pl))
        goto out;
    p8->len += pl;
    rc = CMN_OK;
out:
    cmn_wipe(key, sizeof(key));
    cmn_buf_cleanup(&env);
    return rc;
}

static bool
in_group(const struct sim_kra *k, const struct sim_user *u, struct sim_resp *r)
{
    if (sim_user_in_group(u, k->group))
        return true;
    snprintf(r->op, sizeof(r->op), "unauthorized");
    cmn_buf_reset(&r->body);
    (void)cmn_buf_puts(&r->body, "unauthorized=");
    sim_resp_note(r, "user=%s unauthorized", u->id);
    return false;
}

static EVP_PKEY *
generate(const struct sim_form *f, char *alg, size_t alg_size, int *st)
{
    const struct sim_param *kt = sim_form_get(f, "keytype");
    const struct sim_param *ks = sim_form_get(f, "keysize");
    const struct sim_param *curve = sim_form_get(f, "eckeycurve");
    unsigned long long bits = 1024;
    EVP_PKEY *pk = NULL;

    *st = 4;
    if (kt == NULL || strcmp(kt->val, "RSA") == 0) {
        if (ks != NULL && cmn_parse_uint(ks->val, 512, 8192, &bits) != CMN_OK)
            return NULL;
        snprintf(alg, alg_size, "RSA-%llu", bits);
        pk = EVP_RSA_gen((unsigned)bits);
    } else if (strcmp(kt->val, "EC") == 0) {
        const char *c = curve == NULL ? "nistp256" : curve->val;
        const char *ossl = strcmp(c, "nistp256") == 0   ? "P-256"
                           : strcmp(c, "nistp384") == 0 ? "P-384"
                           : strcmp(c, "nistp521") == 0 ? "P-521"
                                                        : NULL;

        if (ossl == NULL)
            return NULL;
        snprintf(alg, alg_size, "EC-%s", c);
        pk = EVP_EC_gen(ossl);
    }
    ERR_clear_error();
    if (pk != NULL)
        *st = 0;
    return pk;
}

/* Appends wrapped_priv_key, and iv_param/public_key in the order the servlet uses. */
static enum cmn_rc
put_key(struct sim_resp *r, const struct sess *s, const uint8_t *p8, size_t n, EVP_PKEY *pk,
        bool recovery)
{
    uint8_t w[8192], iv[16];
    size_t wl = 0, ivl = 0;
    enum cmn_rc rc;

    if (n > 4096 || !wrap_priv(s, p8, n, w, &wl, iv, &ivl))
        return CMN_ECRYPTO;
    cmn_buf_reset(&r->body);
    r->ctype = "application/x-www-form-urlencoded";
    rc = cmn_buf_puts(&r->body, "status=0&wrapped_priv_key=");
    if (rc == CMN_OK)
        rc = cmn_pct_encode_all(&r->body, w, wl);
    if (rc == CMN_OK && recovery)
        rc = put_public(&r->body, pk);
    if (rc == CMN_OK)
        rc = cmn_buf_puts(&r->body, "&iv_param=");
    if (rc == CMN_OK)
        rc = cmn_pct_encode_all(&r->body, iv, ivl);
    if (rc == CMN_OK && !recovery)
        rc = put_public(&r->body, pk);
    cmn_wipe(w, sizeof(w));
    return rc;
}

static void
generate_key_pair(struct sim_kra *k, const struct sim_user *u, const struct sim_form *f,
                  struct sim_resp *r)
{
    const struct sim_param *arch = sim_form_get(f, "archive");
    const struct sim_param *cuid = sim_form_get2(f, "tokencuid", "CUID");
    const struct sim_param *uid = sim_form_get(f, "userid");
    bool archive = arch == NULL || strcmp(arch->val, "false") != 0;
    struct sim_key_rec *rec = NULL;
    struct sess s;
    EVP_PKEY *pk = NULL;
    PKCS8_PRIV_KEY_INFO *p8i = NULL;
    uint8_t *p8 = NULL;
    int p8l = 0, st;
    struct cmn_buf sealed;

    cmn_buf_init(&sealed, 16384);
    memset(&s, 0, sizeof(s));
    snprintf(r->op, sizeof(r->op), "GenerateKeyPair");
    if (!in_group(k, u, r))
        goto out;
    if (cuid == NULL || uid == NULL) {
        sim_resp_error_page(r, 500, "GenerateKeyPairServlet: missing tokencuid or userid");
        goto out;
    }
    st = unwrap_session(k, f, &s);
    if (st == -1) {
        sim_resp_error_page(r, 500, "GenerateKeyPairServlet: missing drm_trans_desKey");
        goto out;
    }
    rec = calloc(1, sizeof(*rec));
    if (rec == NULL || st != 0) {
        reply_status(r, 4);
        goto out;
    }
    snprintf(rec->cuid, sizeof(rec->cuid), "%s", cuid->val);
    snprintf(rec->user, sizeof(rec->user), "%s", uid->val);
    sim_resp_note(r, "cuid=%s archive=%s", rec->cuid, archive ? "true" : "false");
    pk = generate(f, rec->alg, sizeof(rec->alg), &st);
    if (pk == NULL || (p8i = EVP_PKEY2PKCS8(pk)) == NULL ||
        (p8l = i2d_PKCS8_PRIV_KEY_INFO(p8i, &p8)) <= 0) {
        reply_status(r, 4);
        goto out;
    }
    sim_spki_hash(pk, rec->pubhash);
    sim_resp_note(r, "pubkey=%.16s", rec->pubhash);
    if (archive) {
        uint8_t *der = NULL;
        int dl = i2d_PUBKEY(pk, &der);
        struct cmn_buf pb;

        cmn_buf_init(&pb, sizeof(rec->pub_b64) - 1);
        if (dl <= 0 || sim_b64_append(&pb, der, (size_t)dl) != CMN_OK ||
            seal(k, p8, (size_t)p8l, &sealed) != CMN_OK || sealed.len >= sizeof(rec->wrapped_b64) ||
            sim_store_next(k->st, false, &rec->id) != CMN_OK) {
            OPENSSL_free(der);
            cmn_buf_cleanup(&pb);
            reply_status(r, 11);
            goto out;
        }
        memcpy(rec->pub_b64, cmn_buf_cstr(&pb), pb.len + 1);
        memcpy(rec->wrapped_b64, cmn_buf_cstr(&sealed), sealed.len + 1);
        OPENSSL_free(der);
        cmn_buf_cleanup(&pb);
        snprintf(rec->clone, sizeof(rec->clone), "%s", sim_store_clone(k->st));
        if (sim_store_key_add(k->st, rec) != CMN_OK) {
            reply_status(r, 11);
            goto out;
        }
        sim_resp_note(r, "keyid=%llu", rec->id);
    }
    if (put_key(r, &s, p8, (size_t)p8l, pk, false) != CMN_OK) {
        reply_status(r, 4);
        goto out;
    }
    sim_resp_note(r, "status=0");
out:
    if (p8 != NULL) {
        cmn_wipe(p8, (size_t)p8l);
        OPENSSL_free(p8);
    }
    PKCS8_PRIV_KEY_INFO_free(p8i);
    EVP_PKEY_free(pk);
    cmn_buf_cleanup(&sealed);
    cmn_wipe(&s, sizeof(s));
    free(rec);
    ERR_clear_error();
}

static void
recover(struct sim_kra *k, const struct sim_user *u, const struct sim_form *f,
        struct sim_resp *r)
{
    const struct sim_param *cert = sim_form_get(f, "cert");
    const struct sim_param *keyid = sim_form_get(f, "keyid");
    const struct sim_param *cuid = sim_form_get2(f, "tokencuid", "CUID");
    struct sim_key_rec *rec = calloc(1, sizeof(*rec));
    struct cmn_buf der, p8;
    struct sess s;
    EVP_PKEY *pk = NULL;
    PKCS8_PRIV_KEY_INFO *p8i = NULL;
    const unsigned char *q;
    enum cmn_rc rc;
    int st;

    cmn_buf_init(&der, 65536);
    cmn_buf_init_secret(&p8, 16384);
    memset(&s, 0, sizeof(s));
    snprintf(r->op, sizeof(r->op), "TokenKeyRecovery");
    if (!in_group(k, u, r))
        goto out;
    if (rec == NULL) {
        reply_status(r, 7);
        goto out;
    }
    sim_resp_note(r, "cuid=%s", cuid != NULL ? cuid->val : "-");
    if ((cert == NULL || cert->len == 0) && (keyid == NULL || keyid->len == 0)) {
        reply_status(r, 3);
        goto out;
    }
    if (cert != NULL && cert->len > 0) {
        X509 *x;
        EVP_PKEY *cpk;
        char hash[65];

        if (sim_b64_decode(cert->val, cert->len, &der) != CMN_OK) {
            reply_status(r, 5);
            goto out;
        }
        q = der.data;
        x = d2i_X509(NULL, &q, (long)der.len);
        cpk = x != NULL ? X509_get_pubkey(x) : NULL;
        X509_free(x);
        if (cpk == NULL) {
            reply_status(r, 6);
            goto out;
        }
        sim_spki_hash(cpk, hash);
        EVP_PKEY_free(cpk);
        sim_resp_note(r, "pubkey=%.16s", hash);
        rc = sim_store_key_find(k->st, hash, rec);
    } else {
        unsigned long long id;

        if (cmn_parse_uint(keyid->val, 1, ~0ULL, &id) != CMN_OK) {
            reply_status(r, 8);
            goto out;
        }
        rc = sim_store_key_get(k->st, id, rec);
    }
    if (rc != CMN_OK) {
        reply_status(r, rc == CMN_ENOTFOUND ? 8 : 9);
        goto out;
    }
    sim_resp_note(r, "keyid=%llu", rec->id);
    if (unseal(k, rec->wrapped_b64, &p8) != CMN_OK) {
        reply_status(r, 9);
        goto out;
    }
    q = p8.data;
    p8i = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)p8.len);
    pk = p8i != NULL ? EVP_PKCS82PKEY(p8i) : NULL;
    st = unwrap_session(k, f, &s);
    if (pk == NULL || st != 0) {
        reply_status(r, 4);
        goto out;
    }
    if (put_key(r, &s, p8.data, p8.len, pk, true) != CMN_OK) {
        reply_status(r, 4);
        goto out;
    }
    sim_resp_note(r, "status=0");
out:
    PKCS8_PRIV_KEY_INFO_free(p8i);
    EVP_PKEY_free(pk);
    cmn_buf_cleanup(&der);
    cmn_buf_cleanup(&p8);
    cmn_wipe(&s, sizeof(s));
    free(rec);
    ERR_clear_error();
}

void
sim_kra_handle(struct sim_kra *k, const struct sim_user *u, const char *path,
               const struct sim_form *f, struct sim_resp *r)
{
    r->ctype = "application/x-www-form-urlencoded";
    if (strcmp(path, "/kra/agent/kra/GenerateKeyPair") == 0)
        generate_key_pair(k, u, f, r);
    else if (strcmp(path, "/kra/agent/kra/TokenKeyRecovery") == 0)
        recover(k, u, f, r);
    else {
        snprintf(r->op, sizeof(r->op), "notfound");
        sim_resp_error_page(r, 404, "The requested resource is not available.");
    }
}
