/* gateway/keychange.c - key changeover on the card's next contact: INITIALIZE UPDATE at the
 * required version, on 6A88 TKS createKeySetData, pending record, PUT KEY, reopen, commit
 * (tokendb-ha-keychange §5.4, §5.5; card spec §2.4, §2.6; backends §2.8, §3.9). */
#include "gateway/keychange.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <libfailover/failover.h>

#include "common/apdu.h"
#include "common/buf.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/scp.h"
#include "common/tpsmsg.h"
#include "gateway/config.h"
#include "gateway/session.h"
#include "gateway/tks.h"
#include "gateway/tokendb.h"

#define KC_BODY_MAX 2048
#define KC_ANSWER_MAX 4096
#define KC_KSD_MAX 160 /* key set data: 67 (SCP01/02), 70 (AES-128), 118 (AES-256) */

/* ---- the store over gateway/tokendb.h ---- */

static enum tps_rc
tdb_fail(struct tps_keychange_tdb *c, enum tps_tdb_rc r, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", tps_tdb_strerror(r), tps_tokendb_errmsg(c->db));
    return TPS_EDB;
}

static enum tps_rc
tdb_pending_set(void *arg, const char *cuid, const char *new_key_info, char *err, size_t errlen)
{
    struct tps_keychange_tdb *c = arg;
    enum tps_tdb_rc r;

    (void)cuid;
    r = tps_tokendb_pending_key_set(c->db, c->tok, new_key_info, c->lease);
    return r == TPS_TDB_OK ? TPS_OK : tdb_fail(c, r, err, errlen);
}

static enum tps_rc
tdb_commit(void *arg, const char *cuid, const char *key_info, char *err, size_t errlen)
{
    struct tps_keychange_tdb *c = arg;
    enum tps_tdb_rc r;

    (void)cuid;
    /* Most contacts find nothing to settle: no write then (one LDAP modify per operation
     * saved, and no `modified` bump the operation's own update would have to follow). */
    if (c->tok->pending_value == NULL && c->tok->key_info != NULL &&
        strcasecmp(c->tok->key_info, key_info) == 0)
        return TPS_OK;
    r = tps_tokendb_pending_key_commit(c->db, c->tok, key_info, c->lease);
    return r == TPS_TDB_OK ? TPS_OK : tdb_fail(c, r, err, errlen);
}

static enum tps_rc
tdb_clear(void *arg, const char *cuid, char *err, size_t errlen)
{
    struct tps_keychange_tdb *c = arg;
    enum tps_tdb_rc r;

    (void)cuid;
    r = tps_tokendb_pending_key_clear(c->db, c->tok, c->lease);
    return r == TPS_TDB_OK ? TPS_OK : tdb_fail(c, r, err, errlen);
}

static enum tps_rc
tdb_activity(void *arg, const char *cuid, bool success, const char *msg, char *err, size_t errlen)
{
    struct tps_keychange_tdb *c = arg;
    struct tps_token_activity a = {
        .op = "key_changeover",
        .result = success ? "success" : "failure",
        .cuid = cuid,
        .user_id = c->user != NULL && c->user[0] ? c->user : NULL,
        .ip = c->ip,
        .msg = msg,
        .type = c->token_type != NULL && c->token_type[0] ? c->token_type : NULL,
        .officer = c->officer,
    };
    enum tps_tdb_rc r = tps_tokendb_activity_add(c->db, &a, NULL, 0);

    return r == TPS_TDB_OK ? TPS_OK : tdb_fail(c, r, err, errlen);
}

void
tps_keychange_tdb_store(struct tps_keychange_tdb *ctx, struct tps_keychange_store *out)
{
    out->pending_set = tdb_pending_set;
    out->commit = tdb_commit;
    out->clear = tdb_clear;
    out->activity = tdb_activity;
    out->arg = ctx;
}

/* ---- card steps ---- */

static bool
first_aid(const struct tps_session *s, const char *key, uint8_t *aid, size_t *n)
{
    const char *v = tps_cfg_str(s->env->cfg, key);

    return cmn_hex_decode(v, strcspn(v, ","), false, aid, 16, n) == CMN_OK && *n >= 5;
}

/* Selects the CoolKey applet and opens a channel at kv. *sw: the INITIALIZE UPDATE answer. */
static enum tps_rc
applet_channel(struct tps_session *s, uint8_t kv, uint16_t *sw)
{
    uint8_t aid[16];
    size_t n = 0;
    struct cmn_rapdu r;
    enum tps_rc rc;

    if (sw != NULL)
        *sw = 0;
    if (!first_aid(s, "applet.aid.netkey_instance", aid, &n))
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                "applet.aid.netkey_instance holds no AID");
    rc = tps_card_select(s, aid, n, &r);
    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "select CoolKey answered %04X: no applet", r.sw);
    if (rc == TPS_OK)
        rc = tps_channel_open(s, kv, (uint8_t)tps_cfg_uint(s->env->cfg, "channel.defKeyIndex"), sw);
    return rc;
}

/* Selects the card manager (the AID the prologue found, else the first configured one). */
static enum tps_rc
select_cardmgr(struct tps_session *s)
{
    uint8_t aid[16];
    size_t n = s->tok.cardmgr_aid_len;
    struct cmn_rapdu r;
    enum tps_rc rc;

    if (n > 0 && n <= sizeof(aid))
        memcpy(aid, s->tok.cardmgr_aid, n);
    else if (!first_aid(s, "applet.aid.cardmgr_instance", aid, &n))
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                "applet.aid.cardmgr_instance holds no AID");
    rc = tps_card_select(s, aid, n, &r);
    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                              "select card manager answered %04X", r.sw);
    return rc;
}

/* The KDD of the card's default key set: tps_channel_open() keeps only the key info, and the
 * TKS needs the KDD to derive the old and the new keys (§5.4 step 2). One INITIALIZE UPDATE
 * whose session is then replaced by the real one. */
static enum tps_rc
read_kdd(struct tps_session *s, uint8_t kv, uint8_t ki, uint8_t kdd[10])
{
    uint8_t hc[8];
    struct cmn_apdu a;
    struct cmn_rapdu r;
    struct cmn_scp_iu iu;
    enum tps_rc rc;

    if (cmn_crypto_random(hc, sizeof(hc)) != CMN_OK)
        return tps_session_fail(s, TPS_ECRYPTO, CMN_TPS_STATUS_SECURE_CHANNEL,
                                "no random host challenge");
    cmn_scp_iu_apdu(kv, ki, hc, -1, &a);
    rc = tps_card_xfer(s, &a, &r);
    if (rc != TPS_OK)
        return rc;
    if (r.sw != 0x9000 || cmn_scp_iu_parse(s->tok.gp_proto, r.data, r.len, &iu) != CMN_OK)
        return tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_SECURE_CHANNEL,
                                "INITIALIZE UPDATE (key version %02X) on the card manager "
                                "answered %04X with %zu bytes",
                                kv, r.sw, r.len);
    memcpy(kdd, iu.kdd, 10);
    OPENSSL_cleanse(&iu, sizeof(iu));
    return TPS_OK;
}

/* ---- TKS createKeySetData (backends §2.8) ---- */

/* libfailover verdict on a TKS answer: HTTP 200 with status=N (backends §2.9). */
static enum fo_verdict
tks_verdict(void *arg, long http_status, const uint8_t *body, size_t len)
{
    const char *v;
    size_t vl;

    (void)arg;
    if (http_status != 200)
        return FO_VERDICT_BAD;
    if (!tps_tks_field((const char *)body, len, "status", &v, &vl))
        return tps_tks_field((const char *)body, len, "unauthorized", &v, &vl) ? FO_VERDICT_AUTH
                                                                               : FO_VERDICT_BAD;
    if (vl == 1 && v[0] == '0')
        return FO_VERDICT_ACCEPT;
    /* 1 (master key absent on this clone), 2, 6 are clone-local: another clone may hold it. */
    if (vl == 1 && (v[0] == '1' || v[0] == '2' || v[0] == '6'))
        return FO_VERDICT_RETRY;
    return FO_VERDICT_REJECT;
}

static enum tps_rc
tks_post(struct tps_session *s, const char *path, const struct cmn_buf *body, struct cmn_buf *resp,
         char *err, size_t errlen)
{
    const struct tps_tks *t = s->env->tks;
    struct fo_req *req = s->env->fo, *own = NULL;
    struct fo_call c;
    const uint8_t *ans;
    size_t alen;
    enum fo_rc frc;
    enum tps_rc rc = TPS_OK;

    if (t->post != NULL)
        return t->post(t->post_arg, path, (const char *)body->data, body->len, resp, err, errlen);
    if (!t->keep_alive || req == NULL) {
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
    /* Deterministic and without side effect (backends §6): safe on a second clone. Only PUT
     * KEY must never be repeated with another answer, and it comes after this call. */
    c.idem = FO_IDEMPOTENT;
    c.deadline_ms = t->deadline_ms;
    c.name = "createKeySetData";
    c.req_id = s->sid;
    c.check = tks_verdict;
    frc = fo_req_perform(req, t->list, &c);
    ans = fo_req_body(req, &alen);
    if (frc != FO_OK) {
        const char *v;
        size_t vl;
        if (frc == FO_EREJECTED && tps_tks_field((const char *)ans, alen, "status", &v, &vl))
            snprintf(err, errlen, "%s: TKS status %.*s (%s)", t->id, (int)(vl > 4 ? 4 : vl), v,
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

/* What the TKS needs, from the channel open at the card's current set. */
struct kc_req {
    enum cmn_scp_proto proto;
    uint8_t kdd[10], cuid[10];
    uint8_t cur[3], neu[3]; /* current and new key info */
    size_t kil;             /* 2, or 3 on SCP03 */
};

/* Calls createKeySetData; [out] ksd (the key set data), *n. Status 20 on failure. */
static enum tps_rc
create_keyset_data(struct tps_session *s, const struct kc_req *k, uint8_t *ksd, size_t cap,
                   size_t *n)
{
    const struct tps_tks *t = s->env->tks;
    struct cmn_buf body, ans;
    uint8_t cur[3], wdek[32];
    char path_key[96], err[512] = "";
    const char *path, *v;
    size_t vl, wl = 0;
    enum tps_rc rc = TPS_OK;

    cmn_buf_init_secret(&body, KC_BODY_MAX);
    cmn_buf_init_secret(&ans, KC_ANSWER_MAX);
    memcpy(cur, k->cur, sizeof(cur));
    if (k->proto == CMN_SCP02)
        cur[1] = 0x01; /* the TKS sees SCP02 key info as vv01 (card spec §2.4) */
    snprintf(path_key, sizeof(path_key), "conn.%s.servlet.createKeySetData", t->id);
    path = tps_cfg_str(s->env->cfg, path_key);
    if (path == NULL || path[0] != '/')
        path = "/tks/agent/tks/createKeySetData";
    if (cmn_buf_puts(&body, "newKeyInfo=") != CMN_OK ||
        tps_tks_hash_append(&body, k->neu, k->kil) != TPS_OK ||
        cmn_buf_puts(&body, "&KDD=") != CMN_OK ||
        tps_tks_hash_append(&body, k->kdd, 10) != TPS_OK ||
        cmn_buf_puts(&body, "&tokencuid=") != CMN_OK ||
        tps_tks_hash_append(&body, k->cuid, 10) != TPS_OK ||
        cmn_buf_puts(&body, "&KeyInfo=") != CMN_OK ||
        tps_tks_hash_append(&body, cur, k->kil) != TPS_OK ||
        cmn_buf_printf(&body, "&keySet=%s&protocol=%d", t->keyset, (int)k->proto) != CMN_OK)
        rc = TPS_ETOOBIG;
    if (rc == TPS_OK && k->proto == CMN_SCP02) {
        /* SCP02 keys go under the session DEK, which only we and the card hold: the TKS gets
         * it wrapped with the shared secret (backends §2.8, mandatory there). */
        if (s->scp.dek.len == 0 ||
            cmn_scp_session_key_wrap(&t->shared, &s->scp.dek, wdek, sizeof(wdek), &wl) != CMN_OK) {
            rc = tps_session_fail(s, TPS_ECRYPTO, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                                  "cannot wrap the SCP02 session DEK for the TKS");
            goto out;
        }
        if (cmn_buf_puts(&body, "&wrappedDekKey=") != CMN_OK ||
            tps_tks_hash_append(&body, wdek, wl) != TPS_OK)
            rc = TPS_ETOOBIG;
    }
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                              "createKeySetData request too large");
        goto out;
    }
    rc = tks_post(s, path, &body, &ans, err, sizeof(err));
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                              "TKS createKeySetData failed: %s", err);
        goto out;
    }
    if (!tps_tks_field((const char *)ans.data, ans.len, "status", &v, &vl) || vl != 1 ||
        v[0] != '0') {
        rc = tps_session_fail(s, TPS_EBACKEND, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                              "TKS createKeySetData answered status %.*s", (int)(vl > 4 ? 4 : vl),
                              v != NULL ? v : "");
        goto out;
    }
    if (!tps_tks_field((const char *)ans.data, ans.len, "keySetData", &v, &vl) ||
        tps_tks_value_decode(v, vl, ksd, cap, n) != TPS_OK) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                              "TKS createKeySetData answer lacks a valid keySetData");
        goto out;
    }
    /* The card would refuse a malformed set with 6A80; catching it here keeps the pending
     * record from naming a version the TKS did not produce (backends §3.9). */
    if ((k->proto != CMN_SCP03 && *n != 67) || (k->proto == CMN_SCP03 && *n != 70 && *n != 118) ||
        ksd[0] != k->neu[0]) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                              "TKS keySetData of %zu bytes for version %02X does not fit SCP0%d "
                              "version %02X",
                              *n, *n > 0 ? ksd[0] : 0, (int)k->proto, k->neu[0]);
        goto out;
    }
out:
    OPENSSL_cleanse(wdek, sizeof(wdek));
    OPENSSL_cleanse(err, sizeof(err));
    cmn_buf_cleanup(&body);
    cmn_buf_cleanup(&ans);
    return rc;
}

/* PUT KEY on the open channel (card spec §2.6). */
static enum tps_rc
put_key(struct tps_session *s, const struct kc_req *k, const uint8_t *ksd, size_t n, uint16_t *sw)
{
    struct cmn_apdu plain, wire;
    struct cmn_rapdu r;
    uint8_t p1 = k->cur[0] == 0xFF ? 0x00 : k->cur[0]; /* FF (factory) = "add a set" */
    unsigned flags = k->proto == CMN_SCP03 ? 0 : CMN_SCP_NO_ENC;
    enum tps_rc rc;

    *sw = 0;
    if (cmn_apdu_put_key(&plain, p1, 0x81, ksd, n, k->proto != CMN_SCP01) != CMN_OK) {
        rc =
            tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_KEY_CHANGE_OVER, "cannot build PUT KEY");
        goto out;
    }
    /* SCP01/02: the keys are already KEK-encrypted; MAC only, as the §5.3 vector. */
    if (cmn_scp_wrap_ex(&s->scp, &plain, flags, &wire) != CMN_OK) {
        rc =
            tps_session_fail(s, TPS_ECRYPTO, CMN_TPS_STATUS_KEY_CHANGE_OVER, "cannot wrap PUT KEY");
        goto out;
    }
    rc = tps_card_xfer(s, &wire, &r);
    if (rc != TPS_OK)
        goto out;
    *sw = r.sw;
    if (r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                              "PUT KEY (version %02X -> %02X) answered %04X", k->cur[0], k->neu[0],
                              r.sw);
out:
    OPENSSL_cleanse(&plain, sizeof(plain));
    OPENSSL_cleanse(&wire, sizeof(wire));
    return rc;
}

static void
test_hook_after_put_key(const struct tps_session *s)
{
#ifndef TPS_NO_TEST_HOOKS
    const char *v = getenv(TPS_KEYCHANGE_TEST_ENV);

    if (v != NULL && strcasecmp(v, s->tok.cuid_hex) == 0) {
        CMN_LOG(CMN_LOG_WARN, "keychange.test_abort", s->sid,
                "cuid=%s env=%s: killing tpsgw between PUT KEY and the DB update", s->tok.cuid_hex,
                TPS_KEYCHANGE_TEST_ENV);
        (void)kill(getpid(), SIGKILL);
        pause();
    }
#else
    (void)s;
#endif
}

static void
record_outcome(struct tps_session *s, const struct tps_keychange_store *st, bool ok,
               const char *from, const char *to)
{
    char err[512] = "", msg[400];

    snprintf(msg, sizeof(msg), ok ? "key changeover %s -> %s" : "key changeover %s -> %s: %s", from,
             to, s->why);
    if (st != NULL && st->activity != NULL &&
        st->activity(st->arg, s->tok.cuid_hex, ok, msg, err, sizeof(err)) != TPS_OK)
        CMN_LOG(CMN_LOG_WARN, "keychange.activity", s->sid, "cuid=%s err=\"%s\"", s->tok.cuid_hex,
                err);
    if (cmn_audit("token.key_changeover", s->sid,
                  "cuid=%s from=%s to=%s result=%s user=%s ip=%s tks=%s", s->tok.cuid_hex, from, to,
                  ok ? "success" : "failure", s->user[0] ? s->user : "-", s->client_ip,
                  s->env->tks != NULL ? s->env->tks->id : "-") != CMN_OK &&
        ok)
        (void)tps_session_fail(s, TPS_EIO, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                               "audit log not writable");
}

/* The changeover proper, after INITIALIZE UPDATE at `want` answered 6A88. */
static enum tps_rc
changeover(struct tps_session *s, const struct tps_keychange_store *st, uint8_t want)
{
    const struct tps_config *cfg = s->env->cfg;
    uint8_t kv = (uint8_t)tps_cfg_uint(cfg, "channel.defKeyVersion");
    uint8_t ki = (uint8_t)tps_cfg_uint(cfg, "channel.defKeyIndex");
    struct kc_req k;
    uint8_t ksd[KC_KSD_MAX];
    size_t n = 0;
    char from[8] = "?", to[8] = "?", err[512] = "";
    bool pending = false, put = false;
    uint16_t sw = 0;
    enum tps_rc rc;

    memset(&k, 0, sizeof(k));
    k.proto = s->tok.gp_proto;
    rc = select_cardmgr(s);
    if (rc == TPS_OK)
        rc = read_kdd(s, kv, ki, k.kdd);
    if (rc == TPS_OK)
        rc = tps_channel_open(s, kv, ki, NULL);
    if (rc != TPS_OK)
        goto out;
    k.kil = s->tok.key_info_len;
    memcpy(k.cur, s->tok.key_info, sizeof(k.cur));
    memcpy(k.cuid, s->tok.have_cuid ? s->tok.cuid : k.kdd, sizeof(k.cuid));
    snprintf(from, sizeof(from), "%s", s->tok.key_info_hex);
    k.neu[0] = want;
    k.neu[1] = k.proto == CMN_SCP03 ? k.cur[1] : 0x01;
    k.neu[2] = k.cur[2];
    tps_hex(k.neu, k.kil, to);
    if (k.cur[0] == want) {
        rc =
            tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_KEY_CHANGE_OVER,
                             "card refused key version %02X but its default set is %s", want, from);
        goto out;
    }
    CMN_LOG(CMN_LOG_NOTICE, "keychange.start", s->sid, "cuid=%s from=%s to=%s scp=%d",
            s->tok.cuid_hex, from, to, (int)k.proto);
    if (cmn_audit("token.key_changeover_required", s->sid, "cuid=%s from=%s to=%s user=%s ip=%s",
                  s->tok.cuid_hex, from, to, s->user[0] ? s->user : "-", s->client_ip) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EIO, CMN_TPS_STATUS_KEY_CHANGE_OVER, "audit log not writable");
        goto out;
    }
    rc = create_keyset_data(s, &k, ksd, sizeof(ksd), &n);
    if (rc != TPS_OK)
        goto out;
    /* The record first: a crash after PUT KEY must find the new version named (§5.5 a). */
    if (st != NULL) {
        rc = st->pending_set(st->arg, s->tok.cuid_hex, to, err, sizeof(err));
        if (rc != TPS_OK) {
            rc = tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB,
                                  "cannot record pending key version %s before PUT KEY: %s", to,
                                  err);
            goto out;
        }
        pending = true;
    }
    rc = put_key(s, &k, ksd, n, &sw);
    if (rc != TPS_OK)
        goto out;
    put = true;
    CMN_LOG(CMN_LOG_NOTICE, "keychange.put_key", s->sid, "cuid=%s from=%s to=%s", s->tok.cuid_hex,
            from, to);
    test_hook_after_put_key(s);
    /* The card's new default set: prove it by opening a channel on it, then commit. */
    rc = applet_channel(s, want, NULL);
    if (rc != TPS_OK)
        goto out;
    if (st != NULL) {
        rc = st->commit(st->arg, s->tok.cuid_hex, s->tok.key_info_hex, err, sizeof(err));
        if (rc != TPS_OK) {
            /* The card is fine; the pending value stays and the next contact commits it. */
            rc = tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB,
                                  "card now at %s but the token DB update failed: %s",
                                  s->tok.key_info_hex, err);
            goto out;
        }
    }
    CMN_LOG(CMN_LOG_NOTICE, "keychange.done", s->sid, "cuid=%s from=%s to=%s", s->tok.cuid_hex,
            from, s->tok.key_info_hex);
out:
    if (rc != TPS_OK && pending && !put && sw != 0 && st != NULL && st->clear != NULL) {
        /* The card refused PUT KEY and kept its set: the pending value would only mislead. */
        err[0] = '\0';
        if (st->clear(st->arg, s->tok.cuid_hex, err, sizeof(err)) != TPS_OK)
            CMN_LOG(CMN_LOG_WARN, "keychange.clear", s->sid, "cuid=%s err=\"%s\"", s->tok.cuid_hex,
                    err);
    }
    record_outcome(s, st, rc == TPS_OK, from, to);
    if (rc == TPS_OK)
        rc = s->fail_rc; /* the audit line could not be written */
    OPENSSL_cleanse(ksd, sizeof(ksd));
    OPENSSL_cleanse(&k, sizeof(k));
    OPENSSL_cleanse(err, sizeof(err));
    return rc;
}

enum tps_rc
tps_keychange_check(struct tps_session *s, const char *op, const struct tps_keychange_store *st)
{
    const struct tps_config *cfg = s->env->cfg;
    uint8_t want = (uint8_t)tps_cfg_uint(cfg, "channel.defKeyVersion");
    unsigned long req = 0;
    char err[512] = "";
    uint16_t sw = 0;
    enum tps_rc rc;

    if (tps_cfg_op_bool(cfg, op, s->tok.type, "update.symmetricKeys.enable"))
        req = tps_cfg_op_uint(cfg, op, s->tok.type, "update.symmetricKeys.requiredVersion");
    if (req == 0 || req > 0xFE)
        return applet_channel(s, want, NULL);
    want = (uint8_t)req;
    rc = applet_channel(s, want, &sw);
    if (rc == TPS_OK) {
        /* Settles what an earlier contact left pending (a crash after PUT KEY, or a DB write
         * that failed): the card proved it holds `want`. */
        if (st != NULL &&
            st->commit(st->arg, s->tok.cuid_hex, s->tok.key_info_hex, err, sizeof(err)) != TPS_OK)
            rc = tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB, "cannot record key version %s: %s",
                                  s->tok.key_info_hex, err);
        return rc;
    }
    if (sw != 0x6A88)
        return rc;
    /* 6A88: the card lacks that key set (card spec §2.4), which is what changeover is for. */
    tps_session_clear_fail(s);
    return changeover(s, st, want);
}
