/* gateway/kra.c - KRA client over libfailover (backends §5, §6): GenerateKeyPair with the
 * idempotency class its archive flag implies, TokenKeyRecovery, strict form answers (status,
 * B64/PCT public key, PCT wrapped key and IV), and the conn.drm<n>.* key table. */
#include "gateway/kra.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <libfailover/failover.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/pct.h"
#include "gateway/backend.h"
#include "gateway/ca.h"

#define KRA_BODY_MAX (64 * 1024)
#define KRA_ANSWER_MAX (256 * 1024)
#define KRA_PATH_MAX 256

static const char *const wrap_algs[] = {"KWP", "CBC", NULL};

#define U(n, lo, hi, d, doc_)                                                                    \
    {.name = n, .type = CFG_UINT, .min = lo, .max = hi, .def = d, .doc = doc_}
#define B(n, d, doc_) {.name = n, .type = CFG_BOOL, .def = d, .doc = doc_}
#define S(n, d, doc_) {.name = n, .type = CFG_STR, .defstr = d, .doc = doc_}
#define P(n, d, doc_) {.name = n, .type = CFG_PATH, .defstr = d, .doc = doc_}
#define SF(n, doc_) {.name = n, .type = CFG_SECRET_FILE, .doc = doc_}
#define H(n, doc_) {.name = n, .type = CFG_HOSTLIST, .doc = doc_}

const struct cmn_cfg_key tps_kra_cfg_keys[] = {
    H("conn.drm*.hostport", "KRA (DRM) clones, in order (Dogtag)"),
    S("conn.drm*.clientNickname", "", "client certificate label (Dogtag; label only)"),
    B("conn.drm*.SSLOn", 1, "HTTPS to the KRA (Dogtag); false only for tests"),
    B("conn.drm*.keepAlive", 0, "accepted for compatibility (Dogtag)"),
    U("conn.drm*.retryConnect", 0, 32, 0, "clones tried per call; 0 = all (Dogtag)"),
    U("conn.drm*.timeout", 1, 600, 120, "deadline of a GenerateKeyPair over all clones, s "
                                        "(Dogtag name; §9 R-7 default)"),
    U("conn.drm*.callTimeout", 1, 600, 30, "deadline of a TokenKeyRecovery, s (ours)"),
    U("conn.drm*.connectTimeout", 100, 600000, 5000, "TCP+TLS connect timeout per clone, ms"),
    P("conn.drm*.clientCertFile", NULL, "client (subsystem) certificate PEM for the KRA (ours)"),
    SF("conn.drm*.clientKeyFile", "its private key PEM, mode 0600 (ours)"),
    P("conn.drm*.caBundle", NULL, "CA bundle to verify the KRA clones (ours)"),
    S("conn.drm*.servlet.GenerateKeyPair", "/kra/agent/kra/GenerateKeyPair", "(Dogtag)"),
    S("conn.drm*.servlet.TokenKeyRecovery", "/kra/agent/kra/TokenKeyRecovery", "(Dogtag)"),
    B("op.enroll.*.keyGen.*.serverKeygen.enable", 0, "generate this key type on the KRA"),
    S("op.enroll.*.keyGen.*.serverKeygen.drm.conn", "drm1", "KRA connector (Dogtag)"),
    B("op.enroll.*.keyGen.*.serverKeygen.archive", 1, "archive the generated key (Dogtag)"),
    S("op.enroll.*.keyGen.*.serverKeygen.keyGenUsages", "", "keyGenUsages sent (Dogtag)"),
    {.name = "op.enroll.*.keyGen.aesKeyWrapAlg", .type = CFG_ENUM, .words = wrap_algs,
     .defstr = "KWP", .doc = "drm_aes_wrapAlg: KWP | CBC (Dogtag)"},
    {0},
};

#undef U
#undef B
#undef S
#undef P
#undef SF
#undef H

struct tps_kra {
    char id[32];
    char p_keygen[KRA_PATH_MAX], p_recovery[KRA_PATH_MAX];
    unsigned keygen_ms, call_ms;
    struct fo_list *all;
};

const struct fo_list *
tps_kra_list(const struct tps_kra *k)
{
    return k->all;
}

const char *
tps_kra_outcome_name(enum tps_kra_outcome o)
{
    switch (o) {
    case TPS_KRA_DONE: return "done";
    case TPS_KRA_REJECTED: return "rejected";
    case TPS_KRA_NOT_DONE: return "not done";
    case TPS_KRA_UNKNOWN: return "outcome unknown";
    case TPS_KRA_AUTH: return "not authorised";
    }
    return "unknown";
}

/* KRA status codes (backends §5.1, §5.2). */
static const char *
status_text(long st, bool recovery)
{
    switch (st) {
    case 2: return recovery ? "failure" : "key generation service exception";
    case 3: return recovery ? "neither cert nor keyid given" : "failure";
    case 4: return "crypto failure (unwrap, keygen or wrap)";
    case 5: return recovery ? "certificate not parsable" : "failure";
    case 6: return recovery ? "certificate decode error" : "failure";
    case 7: return "no result recorded";
    case 8: return recovery ? "no key record for the certificate" : "failure";
    case 9: return recovery ? "key record read failure" : "failure";
    case 10: return recovery ? "failure" : "no key-generation token";
    case 11: return recovery ? "failure" : "archival failure";
    default: return "failure";
    }
}

static void
set_msg(struct tps_kra_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_msg(struct tps_kra_result *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

void
tps_kra_result_init(struct tps_kra_result *r)
{
    memset(r, 0, sizeof(*r));
    r->outcome = TPS_KRA_NOT_DONE;
    r->app_status = -1;
}

void
tps_kra_result_cleanup(struct tps_kra_result *r)
{
    if (r == NULL)
        return;
    if (r->wrapped != NULL) {
        OPENSSL_cleanse(r->wrapped, r->wrapped_len);
        free(r->wrapped);
    }
    r->wrapped = NULL;
    r->wrapped_len = 0;
    OPENSSL_cleanse(r->iv, sizeof(r->iv));
}

/* %XX -> byte, every other character itself ('+' too: it is a base64 character here).
 * false on a malformed escape or overflow. */
static bool
unescape(const char *v, size_t n, struct cmn_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)v[i];
        if (v[i] == '%') {
            size_t got = 0;
            if (i + 2 >= n)
                return false;
            if (cmn_pct_decode_mem(v + i, 3, CMN_PCT_STRICT, &b, 1, &got) != CMN_OK || got != 1)
                return false;
            i += 2;
        }
        if (cmn_buf_putc(out, b) != CMN_OK)
            return false;
    }
    return true;
}

/* Exactly one SubjectPublicKeyInfo in der[0..n)? [out] key bits and type. */
static bool
spki_ok(const uint8_t *der, size_t n, unsigned *bits, bool *is_ec)
{
    const uint8_t *p = der;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)n);
    bool ok = pk != NULL && p == der + n;

    if (ok) {
        int t = EVP_PKEY_get_base_id(pk);
        *bits = (unsigned)EVP_PKEY_get_bits(pk);
        *is_ec = t == EVP_PKEY_EC;
        ok = (t == EVP_PKEY_RSA || t == EVP_PKEY_EC) && *bits > 0;
    }
    EVP_PKEY_free(pk);
    return ok;
}

/* public_key: RSA as B64 (maybe %-escaped, with line breaks), EC as PCT of the DER. */
static bool
decode_public(const char *v, size_t n, struct tps_kra_result *out)
{
    struct cmn_buf raw, der;
    bool ok = false;

    cmn_buf_init(&raw, TPS_KRA_SPKI_MAX * 2);
    cmn_buf_init(&der, TPS_KRA_SPKI_MAX);
    if (!unescape(v, n, &raw))
        goto out;
    if (tps_ca_b64_decode((const char *)raw.data, raw.len, &der) == TPS_OK && der.len > 0 &&
        spki_ok(der.data, der.len, &out->key_bits, &out->is_ec)) {
        memcpy(out->spki, der.data, der.len);
        out->spki_len = der.len;
        ok = true;
    } else if (raw.len > 0 && raw.len <= TPS_KRA_SPKI_MAX &&
               spki_ok(raw.data, raw.len, &out->key_bits, &out->is_ec)) {
        memcpy(out->spki, raw.data, raw.len);
        out->spki_len = raw.len;
        ok = true;
    }
out:
    cmn_buf_cleanup(&raw);
    cmn_buf_cleanup(&der);
    return ok;
}

enum tps_rc
tps_kra_parse(const char *body, size_t len, bool recovery, struct tps_kra_result *out)
{
    const char *v;
    size_t vl, got = 0;
    char tmp[24];
    unsigned long long st;
    enum tps_rc rc = TPS_EPROTO;

    if (!tps_ca_form_field(body, len, "status", &v, &vl)) {
        if (tps_ca_form_field(body, len, "unauthorized", &v, &vl)) {
            set_msg(out, "unauthorized");
            return TPS_EAUTH;
        }
        set_msg(out, "answer without status");
        return TPS_EPROTO;
    }
    if (vl == 0 || vl >= sizeof(tmp)) {
        set_msg(out, "bad status");
        return TPS_EPROTO;
    }
    memcpy(tmp, v, vl);
    tmp[vl] = '\0';
    if (cmn_parse_uint(tmp, 0, 1000000, &st) != CMN_OK) {
        set_msg(out, "bad status");
        return TPS_EPROTO;
    }
    out->app_status = (long)st;
    if (st != 0) {
        set_msg(out, "%s", status_text((long)st, recovery));
        return TPS_OK;
    }
    if (!tps_ca_form_field(body, len, "public_key", &v, &vl) || !decode_public(v, vl, out)) {
        set_msg(out, "status 0 without a valid public_key");
        return TPS_EPROTO;
    }
    if (!tps_ca_form_field(body, len, "iv_param", &v, &vl) ||
        cmn_pct_decode_mem(v, vl, CMN_PCT_STRICT, out->iv, sizeof(out->iv), &got) != CMN_OK ||
        (got != 8 && got != 16)) {
        set_msg(out, "status 0 without an 8- or 16-byte iv_param");
        goto fail;
    }
    out->iv_len = got;
    if (!tps_ca_form_field(body, len, "wrapped_priv_key", &v, &vl) || vl == 0) {
        set_msg(out, "status 0 without wrapped_priv_key");
        goto fail;
    }
    free(out->wrapped);
    out->wrapped = malloc(TPS_KRA_WRAPPED_MAX);
    if (out->wrapped == NULL) {
        rc = TPS_ENOMEM;
        goto fail;
    }
    if (cmn_pct_decode_mem(v, vl, CMN_PCT_STRICT, out->wrapped, TPS_KRA_WRAPPED_MAX,
                           &out->wrapped_len) != CMN_OK ||
        out->wrapped_len < 16) {
        set_msg(out, "bad wrapped_priv_key");
        goto fail;
    }
    return TPS_OK;
fail:
    tps_kra_result_cleanup(out);
    out->spki_len = 0;
    out->iv_len = 0;
    return rc;
}

static enum fo_verdict
check_answer(void *arg, long http, const uint8_t *body, size_t len)
{
    struct tps_kra_result r;
    enum tps_rc rc;
    enum fo_verdict v;

    if (http != 200)
        return FO_VERDICT_BAD;
    tps_kra_result_init(&r);
    rc = tps_kra_parse((const char *)body, len, arg != NULL, &r);
    if (rc == TPS_EAUTH)
        v = FO_VERDICT_AUTH;
    else if (rc != TPS_OK)
        v = FO_VERDICT_BAD;
    else
        v = r.app_status == 0 ? FO_VERDICT_ACCEPT : FO_VERDICT_REJECT;
    tps_kra_result_cleanup(&r);
    return v;
}

static bool
copy_path(char *dst, const char *v)
{
    if (v == NULL || v[0] != '/' || strlen(v) >= KRA_PATH_MAX)
        return false;
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

enum tps_rc
tps_kra_new(const struct cmn_cfg *cfg, const char *id, struct tps_kra **out, char *err,
            size_t errlen)
{
    struct tps_kra *k;
    struct fo_opts o;
    char key[CMN_CFG_MAX_KEY], fe[FO_ERRMSG_MAX], where[300];
    const char *hp;
    enum tps_rc rc = TPS_ECONFIG;

    *out = NULL;
    if (strlen(id) == 0 || strlen(id) >= sizeof(k->id) || strchr(id, '.') != NULL) {
        snprintf(err, errlen, "KRA connector id '%s' is not valid", id);
        return TPS_EINVAL;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return TPS_ENOMEM;
    memcpy(k->id, id, strlen(id) + 1);
#define K(leaf) (snprintf(key, sizeof(key), "conn.%s.%s", id, leaf), key)
    hp = cmn_cfg_str(cfg, K("hostport"));
    if (hp == NULL || hp[0] == '\0') {
        snprintf(err, errlen, "%s: missing required key 'conn.%s.hostport'", cmn_cfg_name(cfg),
                 id);
        goto out;
    }
    if (!copy_path(k->p_keygen, cmn_cfg_str(cfg, K("servlet.GenerateKeyPair"))) ||
        !copy_path(k->p_recovery, cmn_cfg_str(cfg, K("servlet.TokenKeyRecovery")))) {
        snprintf(err, errlen, "%s: key '%s': a servlet path starts with '/' and is shorter than "
                 "%d bytes", cmn_cfg_where(cfg, key, where, sizeof(where)), key, KRA_PATH_MAX);
        goto out;
    }
    k->keygen_ms = (unsigned)cmn_cfg_uint(cfg, K("timeout")) * 1000u;
    k->call_ms = (unsigned)cmn_cfg_uint(cfg, K("callTimeout")) * 1000u;
    tps_backend_fo_opts(cfg, id, "kra.failover", k->call_ms, KRA_ANSWER_MAX, &o);
    o.name = k->id;
    if (fo_list_new(hp, &o, &k->all, fe, sizeof(fe)) != FO_OK) {
        snprintf(err, errlen, "%s: key 'conn.%s.hostport': %s",
                 cmn_cfg_where(cfg, K("hostport"), where, sizeof(where)), id, fe);
        goto out;
    }
#undef K
    rc = TPS_OK;
out:
    if (rc != TPS_OK)
        tps_kra_free(k);
    else
        *out = k;
    return rc;
}

void
tps_kra_free(struct tps_kra *k)
{
    if (k == NULL)
        return;
    fo_list_free(k->all);
    free(k);
}

const char *
tps_kra_id(const struct tps_kra *k)
{
    return k->id;
}

static enum tps_rc
form_add(struct cmn_buf *b, const char *name, const char *value)
{
    if ((b->len > 0 && cmn_buf_putc(b, '&') != CMN_OK) || cmn_buf_puts(b, name) != CMN_OK ||
        cmn_buf_putc(b, '=') != CMN_OK || cmn_pct_encode_str(b, value) != CMN_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}

/* name=#XX#YY...: the HASH encoding of binary values into the KRA (backends §0). */
static enum tps_rc
form_add_hash(struct cmn_buf *b, const char *name, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";

    if ((b->len > 0 && cmn_buf_putc(b, '&') != CMN_OK) || cmn_buf_puts(b, name) != CMN_OK ||
        cmn_buf_putc(b, '=') != CMN_OK)
        return TPS_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        char t[3] = {'#', hx[p[i] >> 4], hx[p[i] & 15]};
        if (cmn_buf_append(b, t, 3) != CMN_OK)
            return TPS_ETOOBIG;
    }
    return TPS_OK;
}

static enum tps_rc
add_transport(struct cmn_buf *b, const struct tps_kra_transport *t)
{
    if (t->des != NULL && t->des_len > 0 &&
        form_add_hash(b, "drm_trans_desKey", t->des, t->des_len) != TPS_OK)
        return TPS_ETOOBIG;
    if (t->aes != NULL && t->aes_len > 0 &&
        form_add_hash(b, "drm_trans_aesKey", t->aes, t->aes_len) != TPS_OK)
        return TPS_ETOOBIG;
    if (t->aes_wrap_alg != NULL && form_add(b, "drm_aes_wrapAlg", t->aes_wrap_alg) != TPS_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}

static bool
transport_ok(const struct tps_kra_transport *t)
{
    if ((t->des == NULL || t->des_len == 0) && (t->aes == NULL || t->aes_len == 0))
        return false;
    return t->aes_wrap_alg == NULL || strcmp(t->aes_wrap_alg, "KWP") == 0 ||
           strcmp(t->aes_wrap_alg, "CBC") == 0;
}

/* One call and its classification. */
static enum tps_rc
call(struct tps_kra *k, struct fo_req *req, const char *what, const char *path,
     const struct cmn_buf *body, enum fo_idem idem, unsigned deadline_ms, bool recovery,
     const char *sid, struct tps_kra_result *out)
{
    struct fo_call c = {
        .method = FO_POST,
        .path = path,
        .body = body->data,
        .body_len = body->len,
        .idem = idem,
        .deadline_ms = deadline_ms,
        .name = what,
        .req_id = sid,
        .check = check_answer,
        .check_arg = recovery ? (void *)k : NULL,
    };
    enum fo_rc frc = fo_req_perform(req, k->all, &c);
    const char *ep = fo_req_endpoint_name(req);
    const uint8_t *ans;
    size_t alen;
    enum tps_rc rc;

    snprintf(out->clone, sizeof(out->clone), "%s %s", k->id, ep != NULL ? ep : "(none)");
    switch (frc) {
    case FO_OK:
    case FO_EREJECTED:
        ans = fo_req_body(req, &alen);
        if (fo_req_status(req) != 200) {
            out->outcome = TPS_KRA_REJECTED;
            set_msg(out, "KRA %s: clone %s answered HTTP %ld", what, out->clone,
                    fo_req_status(req));
            return TPS_EBACKEND;
        }
        rc = tps_kra_parse((const char *)ans, alen, recovery, out);
        if (rc == TPS_ENOMEM)
            return rc;
        if (rc != TPS_OK || out->app_status != 0) {
            char text[256];
            snprintf(text, sizeof(text), "%.200s", out->msg);
            out->outcome = TPS_KRA_REJECTED;
            set_msg(out, "KRA %s: clone %s answered status=%ld '%s'", what, out->clone,
                    out->app_status, text);
            return TPS_EBACKEND;
        }
        out->outcome = TPS_KRA_DONE;
        out->msg[0] = '\0';
        return TPS_OK;
    case FO_EAUTH:
        out->outcome = TPS_KRA_AUTH;
        set_msg(out, "KRA %s: clone %s refused our credentials: %s", what, out->clone,
                fo_req_errmsg(req));
        return TPS_EBACKEND;
    case FO_EUNKNOWN:
        out->outcome = TPS_KRA_UNKNOWN;
        set_msg(out, "KRA %s: %s; not resent (backends §6): an archived key without a "
                "certificate may remain on clone %s", what, fo_req_errmsg(req), out->clone);
        return TPS_EBACKEND;
    default:
        out->outcome = TPS_KRA_NOT_DONE;
        set_msg(out, "KRA %s: %s", what,
                fo_req_errmsg(req)[0] != '\0' ? fo_req_errmsg(req) : fo_strerror(frc));
        return frc == FO_ENOMEM ? TPS_ENOMEM : TPS_EBACKEND;
    }
}

enum tps_rc
tps_kra_keygen(struct tps_kra *k, struct fo_req *req, const struct tps_kra_keygen_req *in,
               struct tps_kra_result *out)
{
    struct cmn_buf body;
    char num[16];
    enum tps_rc rc = TPS_EINVAL;
    const char *curve = in->ec_curve != NULL ? in->ec_curve : "nistp256";

    cmn_buf_init(&body, KRA_BODY_MAX);
    out->outcome = TPS_KRA_NOT_DONE;
    if (in->cuid == NULL || in->cuid[0] == '\0' || in->user_id == NULL ||
        in->user_id[0] == '\0' || !transport_ok(&in->trans)) {
        set_msg(out, "KRA GenerateKeyPair: CUID, user id and a transport key are required");
        goto out;
    }
    if (in->ec ? (strcmp(curve, "nistp256") != 0 && strcmp(curve, "nistp384") != 0 &&
                  strcmp(curve, "nistp521") != 0)
               : (in->key_size < 512 || in->key_size > 8192)) {
        set_msg(out, "KRA GenerateKeyPair: unsupported key size or curve");
        goto out;
    }
    snprintf(num, sizeof(num), "%u", in->key_size);
    rc = TPS_ETOOBIG;
    if (form_add(&body, "archive", in->archive ? "true" : "false") != TPS_OK ||
        form_add(&body, "tokencuid", in->cuid) != TPS_OK ||
        form_add(&body, "userid", in->user_id) != TPS_OK ||
        form_add(&body, "keytype", in->ec ? "EC" : "RSA") != TPS_OK ||
        (in->ec ? form_add(&body, "eckeycurve", curve) : form_add(&body, "keysize", num)) !=
            TPS_OK ||
        (in->key_gen_usages != NULL && in->key_gen_usages[0] != '\0' &&
         form_add(&body, "keyGenUsages", in->key_gen_usages) != TPS_OK) ||
        add_transport(&body, &in->trans) != TPS_OK)
        goto out;
    rc = call(k, req, "GenerateKeyPair", k->p_keygen, &body,
              in->archive ? FO_NON_IDEMPOTENT : FO_IDEMPOTENT, k->keygen_ms, false, in->sid, out);
    if (rc == TPS_OK && out->is_ec != in->ec) {
        out->outcome = TPS_KRA_REJECTED;
        set_msg(out, "KRA GenerateKeyPair: clone %s returned a %s key for a %s request",
                out->clone, out->is_ec ? "EC" : "RSA", in->ec ? "EC" : "RSA");
        rc = TPS_EBACKEND;
    }
    if (rc == TPS_OK)
        CMN_LOG(CMN_LOG_INFO, "kra.keygen", in->sid, "conn=%s clone=\"%s\" archive=%d bits=%u",
                k->id, out->clone, in->archive ? 1 : 0, out->key_bits);
out:
    cmn_buf_cleanup(&body);
    return rc;
}

enum tps_rc
tps_kra_recover(struct tps_kra *k, struct fo_req *req, const struct tps_kra_recovery_req *in,
                struct tps_kra_result *out)
{
    struct cmn_buf body, b64;
    uint8_t *want = NULL;
    int wl = 0;
    X509 *x = NULL;
    enum tps_rc rc = TPS_EINVAL;
    unsigned long long kid;

    cmn_buf_init(&body, KRA_BODY_MAX);
    cmn_buf_init(&b64, KRA_BODY_MAX);
    out->outcome = TPS_KRA_NOT_DONE;
    if (in->cuid == NULL || in->cuid[0] == '\0' || in->user_id == NULL ||
        in->user_id[0] == '\0' || !transport_ok(&in->trans)) {
        set_msg(out, "KRA TokenKeyRecovery: CUID, user id and a transport key are required");
        goto out;
    }
    if (in->cert != NULL) {
        const uint8_t *p = in->cert;
        x = d2i_X509(NULL, &p, (long)in->cert_len);
        if (x == NULL || p != in->cert + in->cert_len ||
            (wl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &want)) <= 0) {
            set_msg(out, "KRA TokenKeyRecovery: the certificate is not DER X.509");
            goto out;
        }
    } else if (in->key_id == NULL ||
               cmn_parse_uint(in->key_id, 0, 999999999999999999ULL, &kid) != CMN_OK) {
        set_msg(out, "KRA TokenKeyRecovery: a certificate or a decimal key id is required");
        goto out;
    }
    rc = TPS_ETOOBIG;
    if (form_add(&body, "tokencuid", in->cuid) != TPS_OK ||
        form_add(&body, "userid", in->user_id) != TPS_OK)
        goto out;
    if (in->cert != NULL) {
        if (tps_ca_b64_append(&b64, in->cert, in->cert_len) != TPS_OK ||
            form_add(&body, "cert", cmn_buf_cstr(&b64)) != TPS_OK)
            goto out;
    } else if (form_add(&body, "keyid", in->key_id) != TPS_OK) {
        goto out;
    }
    if (add_transport(&body, &in->trans) != TPS_OK)
        goto out;
    rc = call(k, req, "TokenKeyRecovery", k->p_recovery, &body, FO_IDEMPOTENT, k->call_ms, true,
              in->sid, out);
    if (rc == TPS_OK && want != NULL &&
        (out->spki_len != (size_t)wl || memcmp(out->spki, want, (size_t)wl) != 0)) {
        out->outcome = TPS_KRA_REJECTED;
        set_msg(out, "KRA TokenKeyRecovery: clone %s returned a key that is not the "
                "certificate's", out->clone);
        tps_kra_result_cleanup(out);
        rc = TPS_EBACKEND;
    }
    if (rc == TPS_OK)
        CMN_LOG(CMN_LOG_INFO, "kra.recovered", in->sid, "conn=%s clone=\"%s\" bits=%u", k->id,
                out->clone, out->key_bits);
out:
    OPENSSL_free(want);
    X509_free(x);
    cmn_buf_cleanup(&b64);
    cmn_buf_cleanup(&body);
    return rc;
}
