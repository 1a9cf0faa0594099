/* tests/sim/tks.c - the TKS double: the servlet of backends §2 (dispatch on parameters, status
 * codes) computing with common/ crypto what §3 says a Dogtag TKS computes. */
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/kdf.h"
#include "common/pct.h"
#include "common/scp.h"
#include "tests/sim/p11.h"

#define DEF_KEYSET "defKeySet"
#define DEF_SLOT "Internal Key Storage Token"

static const char *const divers_words[] = {"emv", "visa2", "gpkmc", "none", NULL};
static const char *const keytype_words[] = {"DES3", "AES", NULL};

const struct cmn_cfg_key sim_tks_keys[] = {
    {.name = "tks.*.auth_key", .type = CFG_STR, .secret = true,
     .doc = "developer ENC (auth) key of the key set, HASH text (#40#41...)"},
    {.name = "tks.*.mac_key", .type = CFG_STR, .secret = true, .doc = "developer MAC key"},
    {.name = "tks.*.kek_key", .type = CFG_STR, .secret = true, .doc = "developer KEK key"},
    {.name = "tks.*.mk_mappings.**", .type = CFG_STR,
     .doc = "master key of a KeyInfo (#VV#II): <token>:<label>"},
    {.name = "tks.*.nistSP800-108KdfOnKeyVersion", .type = CFG_STR, .defstr = "00",
     .doc = "hex key version from which SCP01 master keys use the NIST SP800-108 KDF"},
    {.name = "tks.*.nistSP800-108KdfUseCuidAsKdd", .type = CFG_BOOL, .def = 0,
     .doc = "NIST KDF context = CUID instead of KDD"},
    {.name = "tks.*.prot3.divers", .type = CFG_ENUM, .words = divers_words, .defstr = "emv",
     .doc = "SCP03 diversification of master keys"},
    {.name = "tks.*.prot3.diversVer1Keys", .type = CFG_ENUM, .words = divers_words,
     .defstr = "emv", .doc = "SCP03 diversification of developer keys"},
    {.name = "tks.*.prot3.devKeyType", .type = CFG_ENUM, .words = keytype_words,
     .defstr = "DES3", .doc = "SCP03 developer key type"},
    {.name = "tks.*.prot3.masterKeyType", .type = CFG_ENUM, .words = keytype_words,
     .defstr = "DES3", .doc = "SCP03 master key type"},
    {.name = "tks.defaultSlot", .type = CFG_STR, .defstr = DEF_SLOT,
     .doc = "token (PKCS#11 token label) of unmapped master keys and of shared secrets"},
    {.name = "tks.master_key_prefix", .type = CFG_STR, .defstr = "",
     .doc = "prefix of unmapped master key labels"},
    {.name = "tks.useNewSharedSecretNames", .type = CFG_BOOL, .def = 1,
     .doc = "shared secret named by tps.<n>.nickname of the caller"},
    {.name = "tks.tksSharedSymKeyName", .type = CFG_STR, .defstr = "sharedSecret",
     .doc = "shared secret label when useNewSharedSecretNames=false"},
    {.name = "tps.list", .type = CFG_STR, .defstr = "", .doc = "TPS ids, comma-separated"},
    {.name = "tps.*.host", .type = CFG_STR},
    {.name = "tps.*.port", .type = CFG_STR},
    {.name = "tps.*.userid", .type = CFG_STR, .doc = "agent user id of that TPS"},
    {.name = "tps.*.nickname", .type = CFG_STR, .doc = "label of that TPS's shared secret"},
    {.name = "tps.*.sharedSecret_file", .type = CFG_SECRET_FILE,
     .doc = "pki-sim: the shared secret in hex (else read from the token by nickname)"},
    {.name = "tps.*.sharedSecretType", .type = CFG_ENUM, .words = keytype_words,
     .defstr = "AES", .doc = "pki-sim: type of tps.<n>.sharedSecret_file"},
    {.name = "pkisim.tks.sharedSecret_file", .type = CFG_SECRET_FILE,
     .doc = "shared secret in hex when useNewSharedSecretNames=false"},
    {.name = "pkisim.tks.sharedSecretType", .type = CFG_ENUM, .words = keytype_words,
     .defstr = "AES"},
    {.name = "tks.drm_transport_cert_nickname", .type = CFG_STR, .defstr = "",
     .doc = "label only; pki-sim reads pkisim.tks.transportCertFile"},
    {.name = "pkisim.tks.transportCertFile", .type = CFG_PATH,
     .doc = "KRA transport certificate (PEM) for server-side keygen"},
    {.name = "keyWrap.useOAEP", .type = CFG_BOOL, .def = 0,
     .doc = "RSA-OAEP (SHA-256) instead of PKCS#1 v1.5 for the transport wrap"},
    {.name = "cardcryptogram.validate.enable", .type = CFG_BOOL, .def = 1},
    {.name = "tks.EncryptData.isRandom", .type = CFG_BOOL, .def = 1,
     .doc = "encryptData ignores the supplied data and encrypts fresh random bytes"},
    {.name = "tks.useSoftToken", .type = CFG_BOOL, .def = 1, .doc = "accepted, no effect"},
    {.name = "pkisim.tks.pkcs11.module", .type = CFG_PATH,
     .defstr = "/usr/lib/softhsm/libsofthsm2.so",
     .doc = "PKCS#11 module holding master keys and shared secrets; loaded only when set"},
    {.name = "pkisim.tks.pkcs11.pin_file", .type = CFG_SECRET_FILE,
     .doc = "user PIN of the tokens (none: no login)"},
    {.name = "pkisim.tks.agentGroup", .type = CFG_STR,
     .defstr = "Token Key Service Manager Agents", .doc = "group a caller must belong to"},
    {0},
};

struct sim_tks {
    struct cmn_cfg *cfg; /* a reference of our own */
    struct sim_p11 *p11; /* NULL until first needed */
    sim_tks_keyfn *keyfn;
    void *keyarg;
    EVP_PKEY *transport; /* NULL: no server-side keygen */
    bool oaep, validate, israndom, newnames;
    const char *group;
};

static enum cmn_rc
p11_keyfn(void *arg, const char *token, const char *label, struct cmn_key *key)
{
    struct sim_tks *t = arg;

    if (t->p11 == NULL)
        return CMN_ENOTFOUND;
    return sim_p11_read_key(t->p11, token, label, key);
}

void
sim_tks_set_keyfn(struct sim_tks *t, sim_tks_keyfn *fn, void *arg)
{
    t->keyfn = fn;
    t->keyarg = arg;
}

void
sim_tks_free(struct sim_tks *t)
{
    if (t == NULL)
        return;
    sim_p11_free(t->p11);
    EVP_PKEY_free(t->transport);
    cmn_cfg_unref(t->cfg);
    free(t);
}

enum cmn_rc
sim_tks_new(const struct cmn_cfg *cfg, struct cmn_buf *errs, struct sim_tks **out)
{
    struct sim_tks *t = calloc(1, sizeof(*t));
    const char *path, *module;
    enum cmn_rc rc = CMN_OK;

    *out = NULL;
    if (t == NULL)
        return CMN_ENOMEM;
    t->cfg = cmn_cfg_ref((struct cmn_cfg *)(uintptr_t)cfg);
    t->keyfn = p11_keyfn;
    t->keyarg = t;
    t->oaep = cmn_cfg_bool(cfg, "keyWrap.useOAEP");
    t->validate = cmn_cfg_bool(cfg, "cardcryptogram.validate.enable");
    t->israndom = cmn_cfg_bool(cfg, "tks.EncryptData.isRandom");
    t->newnames = cmn_cfg_bool(cfg, "tks.useNewSharedSecretNames");
    t->group = cmn_cfg_str(cfg, "pkisim.tks.agentGroup");

    path = cmn_cfg_str(cfg, "pkisim.tks.transportCertFile");
    if (path != NULL) {
        FILE *fp = fopen(path, "r");
        X509 *x = fp != NULL ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;

        if (fp != NULL)
            fclose(fp);
        if (x != NULL)
            t->transport = X509_get_pubkey(x);
        X509_free(x);
        if (t->transport == NULL) {
            (void)cmn_buf_printf(errs, "pkisim.tks.transportCertFile: cannot read a "
                                       "certificate from '%s'\n", path);
            rc = CMN_ECONFIG;
        }
    }
    module = cmn_cfg_str(cfg, "pkisim.tks.pkcs11.module");
    if (rc == CMN_OK && cmn_cfg_isset(cfg, "pkisim.tks.pkcs11.module")) {
        uint8_t pin[256];
        size_t pl = 0;
        char why[256];
        bool has_pin = cmn_cfg_isset(cfg, "pkisim.tks.pkcs11.pin_file");

        if (has_pin &&
            cmn_cfg_secret_read(cfg, "pkisim.tks.pkcs11.pin_file", pin, sizeof(pin) - 1, &pl) !=
                CMN_OK) {
            (void)cmn_buf_printf(errs, "pkisim.tks.pkcs11.pin_file: cannot read it (it must "
                                       "not be readable by group or others)\n");
            rc = CMN_ECONFIG;
        } else {
            pin[pl] = 0;
            if (sim_p11_open(module, has_pin ? (const char *)pin : NULL, &t->p11, why,
                             sizeof(why)) != CMN_OK) {
                (void)cmn_buf_printf(errs, "pkisim.tks.pkcs11.module: %s\n", why);
                rc = CMN_ECONFIG;
            }
        }
        cmn_wipe(pin, sizeof(pin));
    }
    if (rc != CMN_OK) {
        sim_tks_free(t);
        return rc;
    }
    *out = t;
    return CMN_OK;
}

/* ---- request parsing ---- */

/* A HASH-encoded binary parameter of exactly one of the lengths in [lo, hi].
 * Returns 0 ok, -1 absent, -2 malformed or wrong length. */
static int
get_bin(const struct sim_form *f, const char *name, const char *alt, uint8_t *out, size_t lo,
        size_t hi, size_t *len)
{
    const struct sim_param *p = alt != NULL ? sim_form_get2(f, name, alt) : sim_form_get(f, name);
    uint8_t tmp[64];
    size_t n;

    if (p == NULL)
        return -1;
    if (sim_hash_decode(p->val, p->len, tmp, sizeof(tmp), &n) != CMN_OK || n < lo || n > hi) {
        cmn_wipe(tmp, sizeof(tmp));
        return -2;
    }
    memcpy(out, tmp, n);
    cmn_wipe(tmp, sizeof(tmp));
    if (len != NULL)
        *len = n;
    return 0;
}

/* The key set name: `keySet`, default defKeySet; NULL when it is not a plain name. */
static const char *
get_keyset(const struct sim_form *f, const char *param)
{
    const struct sim_param *p = sim_form_get(f, param);

    if (p == NULL || p->len == 0)
        return param[0] == 'o' ? NULL : DEF_KEYSET; /* oldKeySet has no default */
    if (p->len > 63)
        return NULL;
    for (size_t i = 0; i < p->len; i++) {
        char c = p->val[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return NULL;
    }
    return p->val;
}

/* ---- keys ---- */

static void
keyinfo_text(const uint8_t *ki, size_t n, char *out, size_t out_size)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && o + 4 <= out_size; i++)
        o += (size_t)snprintf(out + o, out_size - o, "#%02X", ki[i]);
}

static enum cmn_key_alg
cfg_keytype(const struct cmn_cfg *c, const char *key)
{
    return cmn_cfg_enum(c, key) == 1 ? CMN_KEY_AES : CMN_KEY_DES3;
}

static void
kdf_cfg(const struct sim_tks *t, const char *ks, struct cmn_kdf_cfg *kc)
{
    static const enum cmn_divers map[] = {CMN_DIVERS_EMV, CMN_DIVERS_VISA2, CMN_DIVERS_GPKMC,
                                          CMN_DIVERS_NONE};
    char k[160];
    const char *v;
    uint8_t ver;
    size_t n;
    int e;

    cmn_kdf_cfg_default(kc);
    snprintf(k, sizeof(k), "tks.%s.nistSP800-108KdfOnKeyVersion", ks);
    v = cmn_cfg_str(t->cfg, k);
    if (v != NULL && cmn_hex_decode(v, strlen(v), false, &ver, 1, &n) == CMN_OK && n == 1)
        kc->nist_on_version = ver;
    snprintf(k, sizeof(k), "tks.%s.nistSP800-108KdfUseCuidAsKdd", ks);
    kc->nist_use_cuid = cmn_cfg_bool(t->cfg, k);
    snprintf(k, sizeof(k), "tks.%s.prot3.divers", ks);
    e = cmn_cfg_enum(t->cfg, k);
    if (e >= 0)
        kc->prot3_divers = map[e];
    snprintf(k, sizeof(k), "tks.%s.prot3.diversVer1Keys", ks);
    e = cmn_cfg_enum(t->cfg, k);
    if (e >= 0)
        kc->prot3_dev = map[e];
    snprintf(k, sizeof(k), "tks.%s.prot3.devKeyType", ks);
    kc->prot3_dev_alg = cfg_keytype(t->cfg, k);
    snprintf(k, sizeof(k), "tks.%s.prot3.masterKeyType", ks);
    kc->prot3_master_alg = cfg_keytype(t->cfg, k);
}

/* The developer keys of key set ks (tks.<ks>.{auth,mac,kek}_key; defKeySet defaults to
 * 40..4F). CMN_ENOTFOUND when the key set has none. */
static enum cmn_rc
dev_keys(const struct sim_tks *t, const char *ks, enum cmn_scp_proto proto,
         struct cmn_keyset *out)
{
    static const char *const names[3] = {"auth_key", "mac_key", "kek_key"};
    static const char def[] = "#40#41#42#43#44#45#46#47#48#49#4A#4B#4C#4D#4E#4F";
    struct cmn_key *dst[3] = {&out->enc, &out->mac, &out->kek};
    enum cmn_key_alg alg = CMN_KEY_DES3;
    char k[160];

    if (proto == CMN_SCP03) {
        snprintf(k, sizeof(k), "tks.%s.prot3.devKeyType", ks);
        alg = cfg_keytype(t->cfg, k);
    }
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < 3; i++) {
        const char *v;
        uint8_t b[32];
        size_t n;
        enum cmn_rc rc;

        snprintf(k, sizeof(k), "tks.%s.%s", ks, names[i]);
        v = cmn_cfg_str(t->cfg, k);
        if (v == NULL && strcmp(ks, DEF_KEYSET) == 0)
            v = def;
        if (v == NULL)
            return CMN_ENOTFOUND;
        rc = sim_hash_decode(v, strlen(v), b, sizeof(b), &n);
        if (rc == CMN_OK)
            rc = cmn_key_set(dst[i], alg, b, n);
        cmn_wipe(b, sizeof(b));
        if (rc != CMN_OK)
            return rc;
    }
    return CMN_OK;
}

/* The master key of KeyInfo ki in key set ks (backends §3.1): the mapping
 * tks.<ks>.mk_mappings.#VV#II = <token>:<label>, else token tks.defaultSlot and label
 * tks.master_key_prefix + the KeyInfo text as received. */
static enum cmn_rc
master_key(const struct sim_tks *t, const char *ks, const uint8_t *ki, size_t kilen,
           struct cmn_key *out)
{
    char k[200], token[128], label[128], kitext[16];
    const char *map;

    keyinfo_text(ki, 2, kitext, sizeof(kitext));
    snprintf(k, sizeof(k), "tks.%s.mk_mappings.%s", ks, kitext);
    map = cmn_cfg_str(t->cfg, k);
    if (map != NULL) {
        const char *colon = strchr(map, ':');

        if (colon != NULL) {
            snprintf(token, sizeof(token), "%.*s", (int)(colon - map), map);
            snprintf(label, sizeof(label), "%s", colon + 1);
        } else {
            snprintf(token, sizeof(token), "%s", cmn_cfg_str(t->cfg, "tks.defaultSlot"));
            snprintf(label, sizeof(label), "%s", map);
        }
    } else {
        keyinfo_text(ki, kilen, kitext, sizeof(kitext));
        snprintf(token, sizeof(token), "%s", cmn_cfg_str(t->cfg, "tks.defaultSlot"));
        snprintf(label, sizeof(label), "%s%s", cmn_cfg_str(t->cfg, "tks.master_key_prefix"),
                 kitext);
    }
    return t->keyfn(t->keyarg, token, label, out);
}

/* The card's static keys for KeyInfo (backends §3.2) with the version byte set. */
static enum cmn_rc
card_keys(const struct sim_tks *t, const char *ks, enum cmn_scp_proto proto, const uint8_t *ki,
          size_t kilen, const uint8_t kdd[10], const uint8_t cuid[10], struct cmn_keyset *out)
{
    struct cmn_keyset dev;
    struct cmn_key mk;
    struct cmn_kdf_cfg kc;
    bool developer = cmn_kdf_is_developer(proto, ki, kilen);
    enum cmn_rc rc;

    memset(&mk, 0, sizeof(mk));
    kdf_cfg(t, ks, &kc);
    rc = dev_keys(t, ks, proto, &dev);
    if (rc != CMN_OK && developer)
        goto out;
    if (!developer) {
        rc = master_key(t, ks, ki, kilen, &mk);
        if (rc != CMN_OK)
            goto out;
    }
    rc = cmn_kdf_card_keys(&kc, proto, ki, kilen, &dev, developer ? NULL : &mk, kdd, cuid, out);
    if (rc == CMN_OK)
        out->version = ki[0];
out:
    cmn_keyset_wipe(&dev);
    cmn_key_wipe(&mk);
    return rc;
}

/* The shared secret of the caller (backends §3.1 "Shared secret"). */
static enum cmn_rc
shared_secret(const struct sim_tks *t, const struct sim_user *u, struct cmn_key *out)
{
    char k[160], nick_key[160], file_key[160], type_key[160], id[32];
    const char *list = cmn_cfg_str(t->cfg, "tps.list");
    const char *nick = NULL;
    uint8_t txt[200], raw[32];
    size_t tl, rl;
    enum cmn_rc rc;

    if (t->newnames) {
        const char *p = list != NULL ? list : "";
        bool first = true;

        file_key[0] = '\0';
        while (*p != '\0') {
            size_t l = strcspn(p, ", ");
            const char *uid;

            if (l > 0 && l < sizeof(id)) {
                snprintf(id, sizeof(id), "%.*s", (int)l, p);
                snprintf(k, sizeof(k), "tps.%s.userid", id);
                uid = cmn_cfg_str(t->cfg, k);
                if (first || (uid != NULL && strcmp(uid, u->id) == 0)) {
                    snprintf(nick_key, sizeof(nick_key), "tps.%s.nickname", id);
                    snprintf(file_key, sizeof(file_key), "tps.%s.sharedSecret_file", id);
                    snprintf(type_key, sizeof(type_key), "tps.%s.sharedSecretType", id);
                    first = false;
                    if (uid != NULL && strcmp(uid, u->id) == 0)
                        break;
                }
            }
            p += l;
            while (*p == ',' || *p == ' ')
                p++;
        }
        if (file_key[0] == '\0')
            return CMN_ENOTFOUND;
        nick = cmn_cfg_str(t->cfg, nick_key);
    } else {
        nick = cmn_cfg_str(t->cfg, "tks.tksSharedSymKeyName");
        snprintf(file_key, sizeof(file_key), "pkisim.tks.sharedSecret_file");
        snprintf(type_key, sizeof(type_key), "pkisim.tks.sharedSecretType");
    }
    if (cmn_cfg_isset(t->cfg, file_key)) {
        rc = cmn_cfg_secret_read(t->cfg, file_key, txt, sizeof(txt), &tl);
        if (rc == CMN_OK)
            rc = cmn_hex_decode((const char *)txt, tl, true, raw, sizeof(raw), &rl);
        if (rc == CMN_OK)
            rc = cmn_key_set(out, cfg_keytype(t->cfg, type_key), raw, rl);
        cmn_wipe(txt, sizeof(txt));
        cmn_wipe(raw, sizeof(raw));
        return rc;
    }
    if (nick == NULL)
        return CMN_ENOTFOUND;
    return t->keyfn(t->keyarg, cmn_cfg_str(t->cfg, "tks.defaultSlot"), nick, out);
}

/* ---- response helpers ---- */

static void
reply_status(struct sim_resp *r, int status)
{
    cmn_buf_reset(&r->body);
    (void)cmn_buf_printf(&r->body, "status=%d", status);
    sim_resp_note(r, "status=%d", status);
}

static enum cmn_rc
put_field(struct sim_resp *r, const char *name, const uint8_t *v, size_t n)
{
    enum cmn_rc rc = cmn_buf_printf(&r->body, "&%s=", name);

    return rc != CMN_OK ? rc : cmn_pct_encode_all(&r->body, v, n);
}

/* Wraps key under the shared secret (§3.6) and appends it as field `name`. DES session keys
 * get odd parity first, as NSS gives them. */
static enum cmn_rc
put_wrapped(struct sim_resp *r, const char *name, const struct cmn_key *shared,
            const struct cmn_key *key)
{
    struct cmn_key k = *key;
    uint8_t w[CMN_KEY_MAX];
    size_t wl;
    enum cmn_rc rc;

    if (k.alg == CMN_KEY_DES3)
        cmn_crypto_des_parity(k.v, k.len);
    rc = cmn_scp_session_key_wrap(shared, &k, w, sizeof(w), &wl);
    if (rc == CMN_OK)
        rc = put_field(r, name, w, wl);
    cmn_key_wipe(&k);
    cmn_wipe(w, sizeof(w));
    return rc;
}

/* RSA-wraps in[0..n) with the KRA transport key (§3.1 "Transport cert"). */
static enum cmn_rc
transport_wrap(const struct sim_tks *t, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
               size_t *out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(t->transport, NULL);
    size_t ol = cap;
    enum cmn_rc rc = CMN_ECRYPTO;

    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0)
        goto out;
    if (t->oaep) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0)
            goto out;
    } else if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) {
        goto out;
    }
    if (EVP_PKEY_encrypt(ctx, out, &ol, in, n) <= 0)
        goto out;
    *out_len = ol;
    rc = CMN_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* Server-side keygen material (§3.7) appended in the order of the protocol's table.
 * kek: the card KEK (SCP01/03) or the DEK session key (SCP02). */
static enum cmn_rc
put_keygen(const struct sim_tks *t, enum cmn_scp_proto proto, const struct cmn_key *kek,
           struct sim_resp *r)
{
    uint8_t d[24], a[16], wd[16], wa[16], kcv[3], kcv_aes[3], td[512], ta[512];
    size_t tdl = 0, tal = 0;
    enum cmn_rc rc;

    if (t->transport == NULL)
        return CMN_ENOTFOUND;
    rc = cmn_crypto_random(d, 16);
    if (rc == CMN_OK)
        rc = cmn_crypto_random(a, 16);
    if (rc != CMN_OK)
        goto out;
    cmn_crypto_des_parity(d, 16);
    memcpy(d + 16, d, 8); /* K1K2K1 */
    rc = cmn_key_encrypt(kek, d, 16, wd);
    if (rc == CMN_OK && proto != CMN_SCP02)
        rc = cmn_key_encrypt(kek, a, 16, wa);
    if (rc == CMN_OK)
        rc = cmn_crypto_kcv_des(d, 16, kcv);
    if (rc == CMN_OK)
        rc = cmn_crypto_kcv_aes(a, 16, kcv_aes);
    if (rc == CMN_OK)
        rc = transport_wrap(t, d, 24, td, sizeof(td), &tdl);
    if (rc == CMN_OK && proto != CMN_SCP02)
        rc = transport_wrap(t, a, 16, ta, sizeof(ta), &tal);
    if (rc != CMN_OK)
        goto out;
    switch (proto) {
    case CMN_SCP01:
        rc = put_field(r, "kek_wrapped_desKey", wd, 16);
        if (rc == CMN_OK)
            rc = put_field(r, "kek_wrapped_aesKey", wa, 16);
        if (rc == CMN_OK)
            rc = put_field(r, "keycheck", kcv, 3);
        if (rc == CMN_OK)
            rc = put_field(r, "drm_trans_desKey", td, tdl);
        if (rc == CMN_OK)
            rc = put_field(r, "drm_trans_aesKey", ta, tal);
        break;
    case CMN_SCP02:
        rc = put_field(r, "drm_trans_desKey", td, tdl);
        if (rc == CMN_OK)
            rc = put_field(r, "kek_wrapped_desKey", wd, 16);
        if (rc == CMN_OK)
            rc = put_field(r, "keycheck", kcv, 3);
        break;
    case CMN_SCP03:
        rc = put_field(r, "kek_wrapped_desKey", wd, 16);
        if (rc == CMN_OK)
            rc = put_field(r, "kek_wrapped_aesKey", wa, 16);
        if (rc == CMN_OK)
            rc = put_field(r, "keycheck", kcv_aes, 3);
        if (rc == CMN_OK)
            rc = put_field(r, "keycheck_des", kcv, 3);
        if (rc == CMN_OK)
            rc = put_field(r, "drm_trans_desKey", td, tdl);
        if (rc == CMN_OK)
            rc = put_field(r, "drm_trans_aesKey", ta, tal);
        break;
    }
out:
    cmn_wipe(d, sizeof(d));
    cmn_wipe(a, sizeof(a));
    cmn_wipe(wd, sizeof(wd));
    cmn_wipe(wa, sizeof(wa));
    return rc;
}

/* Common inputs of the session-key calls. */
struct tks_in {
    uint8_t cuid[10], kdd[10], ki[3], cc[8], hc[8], ccrypt[8];
    size_t kilen;
    const char *ks;
    int sk; /* serversideKeygen: 1 true, 0 false */
};

/* Reads CUID (tokencuid or CUID), KDD (default CUID), keySet and serversideKeygen.
 * Returns 0, or the status to answer (3), or -500 when the servlet would throw. */
static int
read_common(const struct sim_form *f, bool need_sk, struct tks_in *in)
{
    const struct sim_param *sk = sim_form_get(f, "serversideKeygen");
    int g;

    if (need_sk) {
        if (sk == NULL)
            return -500;
        in->sk = strcmp(sk->val, "true") == 0;
    }
    if (get_bin(f, "tokencuid", "CUID", in->cuid, 10, 10, NULL) != 0)
        return 3;
    g = get_bin(f, "KDD", NULL, in->kdd, 10, 10, NULL);
    if (g == -2)
        return 3;
    if (g == -1)
        memcpy(in->kdd, in->cuid, 10);
    in->ks = get_keyset(f, "keySet");
    if (in->ks == NULL)
        return 3;
    return 0;
}

static void
note_in(struct sim_resp *r, const struct tks_in *in)
{
    char cuid[21], ki[7];

    (void)cmn_hex_encode(in->cuid, 10, cuid, sizeof(cuid));
    (void)cmn_hex_encode(in->ki, in->kilen > 3 ? 3 : in->kilen, ki, sizeof(ki));
    sim_resp_note(r, "cuid=%s keyInfo=%s keySet=%s", cuid, ki, in->ks);
}

/* computeSessionKey for SCP01 (§2.3) and SCP03 (§2.5). */
static void
session_scp0103(struct sim_tks *t, const struct sim_user *u, enum cmn_scp_proto proto,
                const struct sim_form *f, struct sim_resp *r)
{
    struct tks_in in;
    struct cmn_keyset ks;
    struct cmn_scp s;
    struct cmn_key shared;
    uint8_t hcrypt[8];
    size_t kl = proto == CMN_SCP03 ? 3 : 2;
    int st;

    memset(&in, 0, sizeof(in));
    memset(&ks, 0, sizeof(ks));
    memset(&shared, 0, sizeof(shared));
    (void)cmn_scp_init(&s, proto);
    snprintf(r->op, sizeof(r->op), "%s", proto == CMN_SCP03 ? "scp03" : "scp01");
    st = read_common(f, true, &in);
    if (st == -500) {
        sim_resp_error_page(r, 500, "serversideKeygen missing");
        goto out;
    }
    if (st == 0 && (get_bin(f, "card_challenge", NULL, in.cc, 8, 8, NULL) != 0 ||
                    get_bin(f, "host_challenge", NULL, in.hc, 8, 8, NULL) != 0 ||
                    get_bin(f, "KeyInfo", NULL, in.ki, kl, kl, &in.kilen) != 0 ||
                    get_bin(f, "card_cryptogram", NULL, in.ccrypt, 8, 8, NULL) != 0))
        st = 3;
    if (st != 0) {
        reply_status(r, st);
        goto out;
    }
    note_in(r, &in);
    if (card_keys(t, in.ks, proto, in.ki, in.kilen, in.kdd, in.cuid, &ks) != CMN_OK ||
        cmn_scp_set_challenges(&s, in.hc, in.cc, 8, NULL) != CMN_OK ||
        cmn_scp_derive(&s, &ks) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    if (t->validate && cmn_scp_verify_card_cryptogram(&s, in.ccrypt) != CMN_OK) {
        reply_status(r, 5);
        goto out;
    }
    if (cmn_scp_host_cryptogram(&s, hcrypt) != CMN_OK) {
        reply_status(r, 2);
        goto out;
    }
    if (shared_secret(t, u, &shared) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    cmn_buf_reset(&r->body);
    (void)cmn_buf_puts(&r->body, "status=0");
    if (proto == CMN_SCP01) {
        if (put_wrapped(r, "sessionKey", &shared, &s.s_mac) != CMN_OK ||
            put_field(r, "hostCryptogram", hcrypt, 8) != CMN_OK ||
            put_wrapped(r, "encSessionKey", &shared, &s.s_enc) != CMN_OK) {
            reply_status(r, 1);
            goto out;
        }
    } else if (put_wrapped(r, "macSessionKey", &shared, &s.s_mac) != CMN_OK ||
               put_wrapped(r, "encSessionKey", &shared, &s.s_enc) != CMN_OK ||
               put_wrapped(r, "kekSessionKey", &shared, &ks.kek) != CMN_OK ||
               put_field(r, "hostCryptogram", hcrypt, 8) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    if (in.sk && put_keygen(t, proto, &ks.kek, r) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    sim_resp_note(r, "status=0 serversideKeygen=%s", in.sk ? "true" : "false");
out:
    cmn_scp_cleanup(&s);
    cmn_keyset_wipe(&ks);
    cmn_key_wipe(&shared);
    cmn_wipe(&in, sizeof(in));
}

/* computeSessionKey for SCP02 (§2.4): one key per derivation constant. */
static void
session_scp02(struct sim_tks *t, const struct sim_user *u, const struct sim_form *f,
              struct sim_resp *r)
{
    static const uint8_t zero[8] = {0};
    struct tks_in in;
    struct cmn_keyset ks;
    struct cmn_scp s;
    struct cmn_key shared;
    const struct cmn_key *key = NULL;
    uint8_t seq[2], dc[2];
    int st;

    memset(&in, 0, sizeof(in));
    memset(&ks, 0, sizeof(ks));
    memset(&shared, 0, sizeof(shared));
    (void)cmn_scp_init(&s, CMN_SCP02);
    snprintf(r->op, sizeof(r->op), "scp02");
    st = read_common(f, true, &in);
    if (st == -500) {
        sim_resp_error_page(r, 500, "serversideKeygen missing");
        goto out;
    }
    if (st == 0 && (get_bin(f, "KeyInfo", NULL, in.ki, 2, 2, &in.kilen) != 0 ||
                    get_bin(f, "sequenceCounter", NULL, seq, 2, 2, NULL) != 0 ||
                    get_bin(f, "derivationConstant", NULL, dc, 2, 2, NULL) != 0))
        st = 3;
    if (st == 0 && dc[0] != 0x01)
        st = 3;
    if (st != 0) {
        reply_status(r, st);
        goto out;
    }
    note_in(r, &in);
    sim_resp_note(r, "constant=%02X%02X", dc[0], dc[1]);
    if (card_keys(t, in.ks, CMN_SCP02, in.ki, in.kilen, in.kdd, in.cuid, &ks) != CMN_OK ||
        cmn_scp_set_challenges(&s, zero, zero, 6, seq) != CMN_OK ||
        cmn_scp_derive(&s, &ks) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    switch (dc[1]) {
    case 0x82:
        key = &s.s_enc;
        break;
    case 0x01:
        key = &s.s_mac;
        break;
    case 0x02:
        key = &s.s_rmac;
        break;
    case 0x81:
        key = &s.dek;
        break;
    default:
        reply_status(r, 3);
        goto out;
    }
    if (shared_secret(t, u, &shared) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    cmn_buf_reset(&r->body);
    (void)cmn_buf_puts(&r->body, "status=0");
    if (put_wrapped(r, "sessionKey", &shared, key) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    if (dc[1] == 0x81 && in.sk && put_keygen(t, CMN_SCP02, &s.dek, r) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    sim_resp_note(r, "status=0");
out:
    cmn_scp_cleanup(&s);
    cmn_keyset_wipe(&ks);
    cmn_key_wipe(&shared);
    cmn_wipe(&in, sizeof(in));
}

/* The `protocol` parameter: 1 when absent, else 1, 2 or 3; 0 when invalid. */
static enum cmn_scp_proto
get_proto(const struct sim_form *f)
{
    const struct sim_param *p = sim_form_get(f, "protocol");

    if (p == NULL || p->len == 0 || strcmp(p->val, "1") == 0)
        return CMN_SCP01;
    if (strcmp(p->val, "2") == 0)
        return CMN_SCP02;
    if (strcmp(p->val, "3") == 0)
        return CMN_SCP03;
    return 0;
}

/* encryptData (§2.6, §3.8). */
static void
encrypt_data(struct sim_tks *t, const struct sim_form *f, struct sim_resp *r)
{
    struct tks_in in;
    struct cmn_keyset ks;
    uint8_t data[16], enc[16];
    size_t dl = 0;
    enum cmn_scp_proto proto = get_proto(f);
    int st, g;

    memset(&in, 0, sizeof(in));
    memset(&ks, 0, sizeof(ks));
    snprintf(r->op, sizeof(r->op), "encryptData");
    st = read_common(f, false, &in);
    g = get_bin(f, "data", NULL, data, 0, 16, &dl);
    if (st == 0 && (proto == 0 || g != 0 ||
                    get_bin(f, "KeyInfo", NULL, in.ki, 2, 3, &in.kilen) != 0))
        st = 3;
    if (st == 0 && !t->israndom && dl != 16)
        st = 3;
    if (st != 0) {
        reply_status(r, st);
        goto out;
    }
    note_in(r, &in);
    if (t->israndom && cmn_crypto_random(data, 16) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    if (card_keys(t, in.ks, proto, in.ki, in.kilen, in.kdd, in.cuid, &ks) != CMN_OK ||
        cmn_scp_challenge_encrypt(&ks.kek, data, enc) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    cmn_buf_reset(&r->body);
    (void)cmn_buf_puts(&r->body, "status=0");
    if (put_field(r, "data", data, 16) != CMN_OK ||
        put_field(r, "encryptedData", enc, 16) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    sim_resp_note(r, "status=0");
out:
    cmn_keyset_wipe(&ks);
    cmn_wipe(data, sizeof(data));
    cmn_wipe(&in, sizeof(in));
}

/* computeRandomData (§2.7). */
static void
random_data(const struct sim_form *f, struct sim_resp *r)
{
    const struct sim_param *p = sim_form_get(f, "dataNumBytes");
    unsigned long long n = 0;
    uint8_t buf[1024];

    snprintf(r->op, sizeof(r->op), "computeRandomData");
    if (p == NULL || cmn_parse_uint(p->val, 1, sizeof(buf), &n) != CMN_OK) {
        reply_status(r, 1);
        return;
    }
    if (cmn_crypto_random(buf, (size_t)n) != CMN_OK) {
        reply_status(r, 2);
        return;
    }
    cmn_buf_reset(&r->body);
    (void)cmn_buf_puts(&r->body, "status=0");
    if (put_field(r, "randomData", buf, (size_t)n) != CMN_OK)
        reply_status(r, 2);
    else
        sim_resp_note(r, "status=0 bytes=%llu", n);
}

/* createKeySetData (§2.8, §3.9). */
static void
create_keyset_data(struct sim_tks *t, const struct sim_user *u, const struct sim_form *f,
                   struct sim_resp *r)
{
    struct tks_in in;
    struct cmn_keyset oldks, newks;
    struct cmn_key shared, dek;
    const struct cmn_key *wrap = NULL;
    uint8_t nki[3], wdek[16], out[160];
    size_t nkl = 0, ol = 0;
    enum cmn_scp_proto proto = get_proto(f);
    const char *oldset;
    int st;

    memset(&in, 0, sizeof(in));
    memset(&oldks, 0, sizeof(oldks));
    memset(&newks, 0, sizeof(newks));
    memset(&shared, 0, sizeof(shared));
    memset(&dek, 0, sizeof(dek));
    snprintf(r->op, sizeof(r->op), "createKeySetData");
    st = read_common(f, false, &in);
    if (st == 0 && (proto == 0 || get_bin(f, "newKeyInfo", NULL, nki, 2, 3, &nkl) != 0 ||
                    get_bin(f, "KeyInfo", NULL, in.ki, 2, 3, &in.kilen) != 0))
        st = 3;
    if (st == 0 && proto == CMN_SCP02 && get_bin(f, "wrappedDekKey", NULL, wdek, 16, 16, NULL) != 0)
        st = 3;
    oldset = get_keyset(f, "oldKeySet");
    if (oldset == NULL)
        oldset = in.ks;
    if (st != 0) {
        reply_status(r, st);
        goto out;
    }
    note_in(r, &in);
    if (proto == CMN_SCP02) {
        if (shared_secret(t, u, &shared) != CMN_OK ||
            cmn_scp_session_key_unwrap(&shared, wdek, 16, CMN_KEY_DES3, &dek) != CMN_OK) {
            reply_status(r, 1);
            goto out;
        }
        wrap = &dek;
    } else {
        if (card_keys(t, oldset, proto, in.ki, in.kilen, in.kdd, in.cuid, &oldks) != CMN_OK) {
            reply_status(r, 1);
            goto out;
        }
        wrap = &oldks.kek;
    }
    if (card_keys(t, in.ks, proto, nki, nkl, in.kdd, in.cuid, &newks) != CMN_OK ||
        cmn_keyset_data_build(proto, wrap, &newks, out, sizeof(out), &ol) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    cmn_buf_reset(&r->body);
    (void)cmn_buf_puts(&r->body, "status=0");
    if (put_field(r, "keySetData", out, ol) != CMN_OK) {
        reply_status(r, 1);
        goto out;
    }
    sim_resp_note(r, "status=0 newKeyVersion=%02X", nki[0]);
out:
    cmn_keyset_wipe(&oldks);
    cmn_keyset_wipe(&newks);
    cmn_key_wipe(&shared);
    cmn_key_wipe(&dek);
    cmn_wipe(out, sizeof(out));
    cmn_wipe(&in, sizeof(in));
}

void
sim_tks_handle(struct sim_tks *t, const struct sim_user *u, const char *path,
               const struct sim_form *f, struct sim_resp *r)
{
    static const char *const paths[] = {
        "/tks/agent/tks/computeSessionKey", "/tks/agent/tks/encryptData",
        "/tks/agent/tks/createKeySetData", "/tks/agent/tks/computeRandomData", NULL};
    const struct sim_param *proto = sim_form_get(f, "protocol");
    bool known = false;

    for (size_t i = 0; paths[i] != NULL; i++)
        known = known || strcmp(path, paths[i]) == 0;
    if (!known) {
        snprintf(r->op, sizeof(r->op), "notfound");
        sim_resp_error_page(r, 404, "The requested resource is not available.");
        return;
    }
    if (!sim_user_in_group(u, t->group)) {
        snprintf(r->op, sizeof(r->op), "unauthorized");
        cmn_buf_reset(&r->body);
        (void)cmn_buf_puts(&r->body, "unauthorized=");
        sim_resp_note(r, "user=%s unauthorized", u->id);
        return;
    }
    /* §2.1: the operation comes from the parameters, first match wins, on every path. */
    if (sim_form_get(f, "card_challenge") != NULL && proto == NULL)
        session_scp0103(t, u, CMN_SCP01, f, r);
    else if (sim_form_get(f, "data") != NULL)
        encrypt_data(t, f, r);
    else if (sim_form_get(f, "newKeyInfo") != NULL)
        create_keyset_data(t, u, f, r);
    else if (sim_form_get(f, "dataNumBytes") != NULL)
        random_data(f, r);
    else if (proto != NULL && strchr(proto->val, '2') != NULL &&
             sim_form_get(f, "derivationConstant") != NULL)
        session_scp02(t, u, f, r);
    else if (proto != NULL && strchr(proto->val, '3') != NULL)
        session_scp0103(t, u, CMN_SCP03, f, r);
    else {
        snprintf(r->op, sizeof(r->op), "unknown");
        sim_resp_error_page(r, 500, "TokenServlet: no operation matches the parameters");
    }
}
