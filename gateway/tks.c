/* gateway/tks.c - TKS computeSessionKey over libfailover (backends §2.3-2.5, §2.9): request
 * bodies with #XX values, answer fields split at the first '=', status checked per clone,
 * session keys unwrapped with the shared secret and wiped after use. */
#include "gateway/tks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <libfailover/failover.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/pct.h"
#include "gateway/config.h"

#define TKS_BODY_MAX 4096
#define TKS_ANSWER_MAX 65536

enum tps_rc
tps_tks_hash_append(struct cmn_buf *b, const uint8_t *p, size_t n)
{
    return cmn_pct_hash_append(b, p, n) == CMN_OK ? TPS_OK : TPS_ETOOBIG;
}

enum tps_rc
tps_tks_value_decode(const char *v, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    switch (cmn_pct_hash_decode(v, n, true, out, cap, out_len)) {
    case CMN_OK: return TPS_OK;
    case CMN_ETOOBIG: return TPS_ETOOBIG;
    default: return TPS_EPROTO;
    }
}

bool
tps_tks_field(const char *body, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name), i = 0;

    while (i < len) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j - i > nl && memcmp(body + i, name, nl) == 0 && body[i + nl] == '=') {
            *v = body + i + nl + 1;
            *vlen = j - i - nl - 1;
            return true;
        }
        i = j + 1;
    }
    return false;
}

/* libfailover check: Dogtag answers HTTP 200 with status=N (backends §2.9). */
static enum fo_verdict
check_answer(void *arg, long http_status, const uint8_t *body, size_t len)
{
    const char *v;
    size_t vl;

    (void)arg;
    if (http_status != 200)
        return FO_VERDICT_BAD;
    if (!tps_tks_field((const char *)body, len, "status", &v, &vl)) {
        if (tps_tks_field((const char *)body, len, "unauthorized", &v, &vl))
            return FO_VERDICT_AUTH;
        return FO_VERDICT_BAD;
    }
    if (vl == 1 && v[0] == '0')
        return FO_VERDICT_ACCEPT;
    /* 1, 2, 6 are clone-local (missing key material, RNG, config): another clone may work. */
    if (vl == 1 && (v[0] == '1' || v[0] == '2' || v[0] == '6'))
        return FO_VERDICT_RETRY;
    return FO_VERDICT_REJECT;
}

static void
fo_log(void *arg, enum fo_log_level level, const char *line)
{
    (void)arg;
    CMN_LOG((enum cmn_log_level)level, "tks.failover", NULL, "detail=\"%s\"", line);
}

enum tps_rc
tps_tks_new(const struct tps_config *cfg, const char *id, struct tps_tks **out, char *err,
            size_t errlen)
{
    const struct cmn_cfg *cc = tps_config_cfg(cfg);
    struct tps_tks *t;
    struct fo_opts o;
    char k[256], fe[FO_ERRMSG_MAX];
    uint8_t raw[200], key[64];
    size_t rawlen = 0, keylen = 0;
    enum tps_rc rc = TPS_ECONFIG;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return TPS_ENOMEM;
    snprintf(t->id, sizeof(t->id), "%s", id);
#define K(leaf) (snprintf(k, sizeof(k), "conn.%s.%s", id, leaf), k)
    snprintf(t->keyset, sizeof(t->keyset), "%s", tps_cfg_str(cfg, K("keySet")));
    snprintf(t->path, sizeof(t->path), "%s", tps_cfg_str(cfg, K("servlet.computeSessionKey")));
    t->server_keygen = tps_cfg_bool(cfg, K("serverKeygen"));
    t->keep_alive = tps_cfg_bool(cfg, K("keepAlive"));
    t->deadline_ms = (unsigned)tps_cfg_uint(cfg, K("timeout")) * 1000u;
    if (cmn_cfg_secret_read(cc, K("tksSharedSymKey_file"), raw, sizeof(raw), &rawlen) != CMN_OK ||
        cmn_hex_decode((const char *)raw, rawlen, false, key, sizeof(key), &keylen) != CMN_OK ||
        cmn_key_set(&t->shared,
                    strcmp(tps_cfg_str(cfg, K("tksSharedSymKeyType")), "DES3") == 0 ? CMN_KEY_DES3
                                                                                    : CMN_KEY_AES,
                    key, keylen) != CMN_OK) {
        snprintf(err, errlen,
                 "%s: key 'conn.%s.tksSharedSymKey_file': cannot read a %s key in hex from it",
                 tps_config_path(cfg), id, tps_cfg_str(cfg, K("tksSharedSymKeyType")));
        goto out;
    }
    fo_opts_init(&o);
    o.name = t->id;
    o.tls = tps_cfg_bool(cfg, K("SSLOn"));
    o.deadline_ms = t->deadline_ms;
    o.connect_timeout_ms = (unsigned)tps_cfg_uint(cfg, K("connectTimeout"));
    o.response_timeout_ms = (unsigned)tps_cfg_uint(cfg, K("responseTimeout"));
    o.max_attempts = (unsigned)tps_cfg_uint(cfg, K("retryConnect"));
    o.cert_file = cmn_cfg_str(cc, K("clientCertFile"));
    o.key_file = cmn_cfg_str(cc, K("clientKeyFile"));
    o.ca_file = cmn_cfg_str(cc, K("caBundle"));
    o.log = fo_log;
    o.log_level = cmn_log_enabled(CMN_LOG_DEBUG) ? FO_LOG_DEBUG : FO_LOG_NOTICE;
    if (fo_list_new(tps_cfg_str(cfg, K("hostport")), &o, &t->list, fe, sizeof(fe)) != FO_OK) {
        snprintf(err, errlen, "%s: key 'conn.%s.hostport': %s", tps_config_path(cfg), id, fe);
        goto out;
    }
#undef K
    rc = TPS_OK;
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != TPS_OK)
        tps_tks_free(t);
    else
        *out = t;
    return rc;
}

enum tps_rc
tps_tks_new_custom(const char *id, const struct cmn_key *shared, const char *keyset,
                   tps_tks_post_fn *post, void *arg, struct tps_tks **out)
{
    struct tps_tks *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return TPS_ENOMEM;
    snprintf(t->id, sizeof(t->id), "%s", id);
    snprintf(t->keyset, sizeof(t->keyset), "%s", keyset);
    snprintf(t->path, sizeof(t->path), "/tks/agent/tks/computeSessionKey");
    t->deadline_ms = 15000;
    t->shared = *shared;
    t->post = post;
    t->post_arg = arg;
    *out = t;
    return TPS_OK;
}

void
tps_tks_free(struct tps_tks *t)
{
    if (t == NULL)
        return;
    fo_list_free(t->list);
    cmn_key_wipe(&t->shared);
    free(t);
}

void
tps_tks_keys_wipe(struct tps_tks_keys *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
}

/* One POST of servlet `name` at path; the answer body is appended to resp (a secret buffer:
 * it holds wrapped keys). */
static enum tps_rc
post_to(const struct tps_tks *t, struct fo_req *req, const char *sid, const char *path,
        const char *name, const struct cmn_buf *body, struct cmn_buf *resp, char *err,
        size_t errlen)
{
    struct fo_call c;
    struct fo_req *own = NULL;
    const uint8_t *ans;
    size_t alen;
    enum fo_rc frc;
    enum tps_rc rc = TPS_OK;

    if (t->post != NULL)
        return t->post(t->post_arg, path, (const char *)body->data, body->len, resp, err, errlen);
    if (t->list == NULL) {
        snprintf(err, errlen, "%s: no TKS clones configured", t->id);
        return TPS_ECONFIG;
    }
    if (!t->keep_alive || req == NULL) {
        /* A handle of our own: a fresh connection, closed when the call ends. */
        if (fo_req_new(&own) != FO_OK) {
            snprintf(err, errlen, "%s: cannot create a libfailover handle", t->id);
            return TPS_ENOMEM;
        }
        req = own;
    }
    memset(&c, 0, sizeof(c));
    c.method = FO_POST;
    c.path = path;
    c.body = body->data;
    c.body_len = body->len;
    c.idem = FO_IDEMPOTENT; /* computeSessionKey, encryptData: no side effect (backends §6) */
    c.deadline_ms = t->deadline_ms;
    c.name = name;
    c.req_id = sid;
    c.check = check_answer;
    frc = fo_req_perform(req, t->list, &c);
    ans = fo_req_body(req, &alen);
    if (frc != FO_OK) {
        const char *v;
        size_t vl;
        if (frc == FO_EREJECTED && tps_tks_field((const char *)ans, alen, "status", &v, &vl))
            snprintf(err, errlen, "%s %s: TKS status %.*s%s (%s)", t->id, name,
                     (int)(vl > 4 ? 4 : vl), v,
                     vl == 1 && v[0] == '5' ? ", card cryptogram mismatch" : "",
                     fo_req_endpoint_name(req) ? fo_req_endpoint_name(req) : "?");
        else
            snprintf(err, errlen, "%s", fo_req_errmsg(req));
        rc = TPS_EBACKEND;
    } else if (cmn_buf_append(resp, ans, alen) != CMN_OK) {
        snprintf(err, errlen, "%s: answer larger than %zu bytes", t->id, resp->max);
        rc = TPS_EPROTO;
    }
    fo_req_free(own);
    return rc;
}

static enum tps_rc
post(const struct tps_tks *t, struct fo_req *req, const char *sid, const struct cmn_buf *body,
     struct cmn_buf *resp, char *err, size_t errlen)
{
    return post_to(t, req, sid, t->path, "computeSessionKey", body, resp, err, errlen);
}

/* Decodes field `name` of ans into out[0..cap): true when present, well formed and of a length
 * in [min, cap]. */
static bool
bytes_field(const struct cmn_buf *ans, const char *name, uint8_t *out, size_t min, size_t cap,
            size_t *n)
{
    const char *v;
    size_t vl;

    return tps_tks_field((const char *)ans->data, ans->len, name, &v, &vl) &&
           tps_tks_value_decode(v, vl, out, cap, n) == TPS_OK && *n >= min;
}

/* The serversideKeygen fields of an answer (backends §2.3); out->have says whether all the
 * required ones are there. drm_trans_aesKey is optional (SCP02 has none). */
static void
srvkg_fields(const struct tps_tks *t, const char *sid, const struct cmn_buf *ans,
             struct tps_tks_srvkg *out)
{
    size_t n = 0, kn = 0;

    memset(out, 0, sizeof(*out));
    out->have = bytes_field(ans, "kek_wrapped_desKey", out->kek_wrapped_des, 16,
                            sizeof(out->kek_wrapped_des), &n) &&
                bytes_field(ans, "keycheck", out->keycheck, 3, sizeof(out->keycheck), &kn) &&
                bytes_field(ans, "drm_trans_desKey", out->drm_trans_des, 1,
                            sizeof(out->drm_trans_des), &out->drm_trans_des_len);
    if (out->have && !bytes_field(ans, "drm_trans_aesKey", out->drm_trans_aes, 1,
                                  sizeof(out->drm_trans_aes), &out->drm_trans_aes_len))
        out->drm_trans_aes_len = 0;
    if (!out->have) {
        OPENSSL_cleanse(out, sizeof(*out));
        CMN_LOG(CMN_LOG_WARN, "tks.no_keygen_material", sid,
                "conn=%s msg=\"serversideKeygen asked, answer lacks kek_wrapped_desKey, keycheck "
                "or drm_trans_desKey\"",
                t->id);
    }
}

/* Reads a wrapped session key field and unwraps it. */
static enum tps_rc
unwrap_field(const struct tps_tks *t, const struct cmn_buf *ans, const char *name,
             enum cmn_key_alg alg, struct cmn_key *out, char *err, size_t errlen)
{
    const char *v;
    size_t vl, n;
    uint8_t wrapped[64];
    enum tps_rc rc = TPS_EPROTO;

    if (!tps_tks_field((const char *)ans->data, ans->len, name, &v, &vl) ||
        tps_tks_value_decode(v, vl, wrapped, sizeof(wrapped), &n) != TPS_OK ||
        (n != 16 && n != 24 && n != 32)) {
        snprintf(err, errlen, "%s: answer lacks a valid %s", t->id, name);
        goto out;
    }
    if (cmn_scp_session_key_unwrap(&t->shared, wrapped, n, alg, out) != CMN_OK) {
        snprintf(err, errlen, "%s: cannot unwrap %s with the shared secret", t->id, name);
        rc = TPS_ECRYPTO;
        goto out;
    }
    rc = TPS_OK;
out:
    OPENSSL_cleanse(wrapped, sizeof(wrapped));
    return rc;
}

static enum tps_rc
status_ok(const struct tps_tks *t, const struct cmn_buf *ans, char *err, size_t errlen)
{
    const char *v;
    size_t vl;

    if (!tps_tks_field((const char *)ans->data, ans->len, "status", &v, &vl)) {
        snprintf(err, errlen, "%s: answer without status", t->id);
        return TPS_EPROTO;
    }
    if (vl != 1 || v[0] != '0') {
        snprintf(err, errlen, "%s: TKS status %.*s%s", t->id, (int)(vl > 4 ? 4 : vl), v,
                 vl == 1 && v[0] == '5' ? " (card cryptogram mismatch)" : "");
        return TPS_EBACKEND;
    }
    return TPS_OK;
}

/* Common request fields (backends §2.2). key_info is what the TKS sees (SCP02: 02 -> 01). */
static enum tps_rc
common_fields(const struct tps_tks *t, const struct tps_tks_in *in, struct cmn_buf *b)
{
    uint8_t ki[3] = {in->iu.key_version, in->iu.scp_id, in->iu.i_param};
    size_t kil = in->proto == CMN_SCP03 ? 3 : 2;

    if (in->proto == CMN_SCP02)
        ki[1] = 0x01;
    if (cmn_buf_printf(b, "serversideKeygen=%s&KDD=", t->server_keygen ? "true" : "false") !=
            CMN_OK ||
        tps_tks_hash_append(b, in->iu.kdd, 10) != TPS_OK ||
        cmn_buf_puts(b, "&tokencuid=") != CMN_OK ||
        tps_tks_hash_append(b, in->cuid, 10) != TPS_OK || cmn_buf_puts(b, "&KeyInfo=") != CMN_OK ||
        tps_tks_hash_append(b, ki, kil) != TPS_OK ||
        cmn_buf_printf(b, "&keySet=%s", t->keyset) != CMN_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}

static enum tps_rc
challenge_fields(const struct tps_tks_in *in, struct cmn_buf *b)
{
    if (cmn_buf_puts(b, "&card_challenge=") != CMN_OK ||
        tps_tks_hash_append(b, in->iu.card_challenge, 8) != TPS_OK ||
        cmn_buf_puts(b, "&host_challenge=") != CMN_OK ||
        tps_tks_hash_append(b, in->host_challenge, 8) != TPS_OK ||
        cmn_buf_puts(b, "&card_cryptogram=") != CMN_OK ||
        tps_tks_hash_append(b, in->iu.card_cryptogram, 8) != TPS_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}

static enum tps_rc
host_cryptogram(const struct tps_tks *t, const struct cmn_buf *ans, struct tps_tks_keys *out,
                char *err, size_t errlen)
{
    const char *v;
    size_t vl, n;

    if (!tps_tks_field((const char *)ans->data, ans->len, "hostCryptogram", &v, &vl) ||
        tps_tks_value_decode(v, vl, out->host_cryptogram, sizeof(out->host_cryptogram), &n) !=
            TPS_OK ||
        n != 8) {
        snprintf(err, errlen, "%s: answer lacks a valid hostCryptogram", t->id);
        return TPS_EPROTO;
    }
    out->have_host_cryptogram = true;
    return TPS_OK;
}

enum tps_rc
tps_tks_session_keys(const struct tps_tks *t, struct fo_req *req, const char *sid,
                     const struct tps_tks_in *in, struct tps_tks_keys *out, char *err,
                     size_t errlen)
{
    static const uint8_t consts[4][2] = {{0x01, 0x82}, {0x01, 0x01}, {0x01, 0x02}, {0x01, 0x81}};
    struct cmn_buf body, ans;
    enum tps_rc rc = TPS_OK;

    memset(out, 0, sizeof(*out));
    cmn_buf_init_secret(&body, TKS_BODY_MAX);
    cmn_buf_init_secret(&ans, TKS_ANSWER_MAX);
    switch (in->proto) {
    case CMN_SCP01:
    case CMN_SCP03:
        /* SCP01 must not carry `protocol` (backends §2.1 dispatch rule 1). */
        rc = common_fields(t, in, &body);
        if (rc == TPS_OK)
            rc = challenge_fields(in, &body);
        if (rc == TPS_OK && in->proto == CMN_SCP03 && cmn_buf_puts(&body, "&protocol=3") != CMN_OK)
            rc = TPS_ETOOBIG;
        if (rc == TPS_OK)
            rc = post(t, req, sid, &body, &ans, err, errlen);
        if (rc == TPS_OK)
            rc = status_ok(t, &ans, err, errlen);
        if (rc != TPS_OK)
            break;
        if (in->proto == CMN_SCP01) {
            rc = unwrap_field(t, &ans, "encSessionKey", CMN_KEY_DES3, &out->enc, err, errlen);
            if (rc == TPS_OK)
                rc = unwrap_field(t, &ans, "sessionKey", CMN_KEY_DES3, &out->mac, err, errlen);
        } else {
            rc = unwrap_field(t, &ans, "encSessionKey", CMN_KEY_AES, &out->enc, err, errlen);
            if (rc == TPS_OK)
                rc = unwrap_field(t, &ans, "macSessionKey", CMN_KEY_AES, &out->mac, err, errlen);
            if (rc == TPS_OK && unwrap_field(t, &ans, "kekSessionKey", CMN_KEY_AES, &out->dek, err,
                                             errlen) == TPS_OK)
                out->have_dek = true;
            err[0] = '\0';
        }
        if (rc == TPS_OK)
            rc = host_cryptogram(t, &ans, out, err, errlen);
        if (rc == TPS_OK && t->server_keygen)
            srvkg_fields(t, sid, &ans, &out->srvkg);
        break;
    case CMN_SCP02:
        /* One call per derivation constant; the cryptograms are ours (backends §2.4). */
        for (size_t i = 0; i < 4 && rc == TPS_OK; i++) {
            struct cmn_key *dst[4] = {&out->enc, &out->mac, &out->rmac, &out->dek};
            cmn_buf_reset(&body);
            cmn_buf_reset(&ans);
            rc = common_fields(t, in, &body);
            if (rc == TPS_OK && (cmn_buf_puts(&body, "&protocol=2&sequenceCounter=") != CMN_OK ||
                                 tps_tks_hash_append(&body, in->iu.seq, 2) != TPS_OK ||
                                 cmn_buf_puts(&body, "&derivationConstant=") != CMN_OK ||
                                 tps_tks_hash_append(&body, consts[i], 2) != TPS_OK))
                rc = TPS_ETOOBIG;
            if (rc == TPS_OK)
                rc = post(t, req, sid, &body, &ans, err, errlen);
            if (rc == TPS_OK)
                rc = status_ok(t, &ans, err, errlen);
            if (rc == TPS_OK)
                rc = unwrap_field(t, &ans, "sessionKey", CMN_KEY_DES3, dst[i], err, errlen);
            /* The DEK call (01 81) carries the keygen material (backends §2.4). */
            if (rc == TPS_OK && i == 3 && t->server_keygen)
                srvkg_fields(t, sid, &ans, &out->srvkg);
        }
        out->have_rmac = out->have_dek = rc == TPS_OK;
        break;
    default:
        snprintf(err, errlen, "%s: unknown secure channel protocol %d", t->id, (int)in->proto);
        rc = TPS_EINVAL;
    }
    if (rc == TPS_ETOOBIG)
        snprintf(err, errlen, "%s: request too large", t->id);
    if (rc != TPS_OK)
        tps_tks_keys_wipe(out);
    cmn_buf_cleanup(&body);
    cmn_buf_cleanup(&ans);
    return rc;
}

/* A 16-byte field of an encryptData answer. */
static enum tps_rc
field16(const struct tps_tks *t, const struct cmn_buf *ans, const char *name, uint8_t out[16],
        char *err, size_t errlen)
{
    size_t n = 0;

    if (!bytes_field(ans, name, out, 16, 16, &n) || n != 16) {
        snprintf(err, errlen, "%s: encryptData answer lacks a 16-byte %s", t->id, name);
        return TPS_EPROTO;
    }
    return TPS_OK;
}

enum tps_rc
tps_tks_encrypt_data(const struct tps_tks *t, struct fo_req *req, const char *path, const char *sid,
                     enum cmn_scp_proto proto, const uint8_t cuid[10], const uint8_t kdd[10],
                     const uint8_t *key_info, size_t key_info_len, uint8_t plain[16],
                     uint8_t wrapped[16], char *err, size_t errlen)
{
    uint8_t mine[16];
    struct cmn_buf body, ans;
    enum tps_rc rc;

    cmn_buf_init_secret(&body, TKS_BODY_MAX);
    cmn_buf_init_secret(&ans, TKS_ANSWER_MAX);
    if (cmn_crypto_random(mine, sizeof(mine)) != CMN_OK) {
        snprintf(err, errlen, "no random enrollment challenge");
        rc = TPS_ECRYPTO;
        goto out;
    }
    if (cmn_buf_puts(&body, "data=") != CMN_OK ||
        tps_tks_hash_append(&body, mine, sizeof(mine)) != TPS_OK ||
        cmn_buf_puts(&body, "&tokencuid=") != CMN_OK ||
        tps_tks_hash_append(&body, cuid, 10) != TPS_OK || cmn_buf_puts(&body, "&KDD=") != CMN_OK ||
        tps_tks_hash_append(&body, kdd, 10) != TPS_OK ||
        cmn_buf_puts(&body, "&KeyInfo=") != CMN_OK ||
        tps_tks_hash_append(&body, key_info, key_info_len) != TPS_OK ||
        cmn_buf_printf(&body, "&keySet=%s&protocol=%d", t->keyset, (int)proto) != CMN_OK) {
        snprintf(err, errlen, "%s: encryptData request too large", t->id);
        rc = TPS_ETOOBIG;
        goto out;
    }
    rc = post_to(t, req, sid, path != NULL && path[0] ? path : "/tks/agent/tks/encryptData",
                 "encryptData", &body, &ans, err, errlen);
    if (rc == TPS_OK)
        rc = status_ok(t, &ans, err, errlen);
    /* The TKS may have encrypted its own random bytes: use what it says it encrypted. */
    if (rc == TPS_OK)
        rc = field16(t, &ans, "data", plain, err, errlen);
    if (rc == TPS_OK)
        rc = field16(t, &ans, "encryptedData", wrapped, err, errlen);
out:
    OPENSSL_cleanse(mine, sizeof(mine));
    cmn_buf_cleanup(&body);
    cmn_buf_cleanup(&ans);
    if (rc != TPS_OK)
        OPENSSL_cleanse(plain, 16);
    return rc;
}
