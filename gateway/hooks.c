/* gateway/hooks.c - the session's token DB hooks on gateway/tokendb.h: lookup, operation
 * transitions, the per-token lease, and the final record (token entry + activity) written under
 * that lease with an asserted modify. The authenticator hook on gateway/auth_ldap.h. */
#include "gateway/hooks.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cfg.h"
#include "common/log.h"
#include "gateway/config.h"
#include "gateway/auth_ldap.h"
#include "gateway/ca.h"
#include "gateway/enroll.h"
#include "gateway/keychange.h"
#include "gateway/tokendb.h"

#define MAX_AUTH 8

/* One configured authenticator instance (auth.instance.<n>). */
struct auth_inst {
    char id[64]; /* its authId (op.*.*.auth.id names it) */
    struct tps_auth_ldap_cfg *cfg;
};

struct tps_hooks {
    const struct tps_config *cfg;
    struct tps_tokendb_cfg *tdb_cfg; /* NULL: no token DB configured */
    struct tps_enroll_backends *be;  /* conn.ca<n> / conn.drm<n> connectors (enroll) */
    struct auth_inst auth[MAX_AUTH];
    size_t nauth;
};

/* One worker's authenticators, opened lazily per instance. */
struct hook_auth {
    const struct tps_hooks *h;
    struct tps_auth_ldap *a[MAX_AUTH];
};

/* One worker's DB state: its handle, and the record and lease of the current operation. */
struct hook_db {
    const struct tps_tokendb_cfg *cfg;
    struct tps_tokendb *h;
    struct tps_token tok;
    bool have_tok;
    struct tps_token_lease lease;
    bool leased;
    struct tps_keychange_tdb kc; /* the changeover's view of tok and lease */
    const struct tps_enroll_backends *be; /* the CA connectors (revokeCert at format) */
};

static enum tps_rc
db_rc(enum tps_tdb_rc r)
{
    switch (r) {
    case TPS_TDB_OK:
        return TPS_OK;
    case TPS_TDB_EBUSY:
        return TPS_EBUSY;
    case TPS_TDB_ETRANSITION:
        return TPS_EPOLICY;
    default:
        return TPS_EDB;
    }
}

/* s, or NULL when s is NULL or empty: for token DB fields the operation does not know. */
static const char *
nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static void
forget(struct hook_db *d)
{
    if (d->have_tok)
        tps_token_cleanup(&d->tok);
    d->have_tok = false;
    d->leased = false;
}

/* One worker's enrollment environment (env->enroll points here). */
struct hook_enroll {
    struct tps_enroll_env ee;
};

static enum tps_rc
h_token_get(void *db, const char *cuid, struct tps_db_token *out, char *err, size_t errlen)
{
    struct hook_db *d = db;
    enum tps_tdb_rc r;

    memset(out, 0, sizeof(*out));
    forget(d);
    r = tps_tokendb_token_get(d->h, cuid, &d->tok);
    if (r == TPS_TDB_ENOTFOUND)
        return TPS_OK;
    if (r != TPS_TDB_OK) {
        snprintf(err, errlen, "%s", tps_tokendb_errmsg(d->h));
        return TPS_EDB;
    }
    d->have_tok = true;
    out->found = true;
    snprintf(out->status, sizeof(out->status), "%s", tps_token_status_name(d->tok.status));
    snprintf(out->user, sizeof(out->user), "%s", d->tok.user_id ? d->tok.user_id : "");
    snprintf(out->type, sizeof(out->type), "%s", d->tok.type ? d->tok.type : "");
    return TPS_OK;
}

static enum tps_rc
h_transition_ok(void *db, const char *from, const char *to)
{
    struct hook_db *d = db;

    return tps_tokendb_transition_allowed(d->cfg, TPS_TDB_OPERATION,
                                          tps_token_status_parse(from, NULL),
                                          tps_token_status_parse(to, NULL))
               ? TPS_OK
               : TPS_EPOLICY;
}

static enum tps_rc
h_lease(void *db, const char *cuid, const char *op, char *err, size_t errlen)
{
    struct hook_db *d = db;
    enum tps_tdb_rc r;

    (void)op;
    if (!d->have_tok) {
        /* Unknown tokens enter the DB as UNFORMATTED (tokendb §1.7). */
        r = tps_tokendb_token_create(d->h, cuid, NULL, &d->tok);
        if (r == TPS_TDB_EEXISTS)
            r = tps_tokendb_token_get(d->h, cuid, &d->tok);
        if (r != TPS_TDB_OK) {
            snprintf(err, errlen, "%s", tps_tokendb_errmsg(d->h));
            return db_rc(r);
        }
        d->have_tok = true;
    }
    /* waits up to tokendb.leaseWait for a dead holder's lease to expire */
    r = tps_tokendb_lease_acquire(d->h, &d->tok, 0, &d->lease);
    if (r != TPS_TDB_OK) {
        snprintf(err, errlen, "%s", tps_tokendb_errmsg(d->h));
        return db_rc(r);
    }
    d->leased = true;
    return TPS_OK;
}

static void
h_unlease(void *db, const char *cuid)
{
    struct hook_db *d = db;

    (void)cuid;
    if (d->leased && tps_tokendb_lease_release(d->h, &d->tok, &d->lease) != TPS_TDB_OK)
        CMN_LOG(CMN_LOG_WARN, "tokendb.unlease", NULL, "cuid=%s err=\"%s\"", d->tok.cuid,
                tps_tokendb_errmsg(d->h));
    forget(d);
}

static enum tps_rc
h_record(void *db, const struct tps_db_result *res, char *err, size_t errlen)
{
    struct hook_db *d = db;
    struct tps_token_activity act = {
        .op = res->op,
        .result = res->success ? "success" : "failure",
        .cuid = res->cuid,
        .user_id = nonempty(res->user),
        .ip = res->client_ip,
        .msg = res->message,
        .type = nonempty(res->token_type),
        .officer = res->officer,
    };
    enum tps_tdb_rc r = TPS_TDB_OK;

    if (res->success) {
        struct tps_token_mod m = {
            /* NULL leaves an attribute alone; "" would delete it. */
            .user_id = nonempty(res->user),
            .type = nonempty(res->token_type),
            .applet_id = nonempty(res->applet_id),
            .key_info = nonempty(res->key_info),
            .set_status = true,
            .status = tps_token_status_parse(res->new_status, NULL),
            .actor = TPS_TDB_OPERATION,
        };
        if (!d->have_tok) {
            snprintf(err, errlen, "token %s was not read before the update", res->cuid);
            return TPS_EDB;
        }
        r = tps_tokendb_token_update(d->h, &d->tok, &m, d->leased ? &d->lease : NULL);
        if (r != TPS_TDB_OK) {
            snprintf(err, errlen, "%s", tps_tokendb_errmsg(d->h));
            act.result = "failure";
            act.msg = "token DB update failed";
        }
        if (r == TPS_TDB_OK &&
            cmn_audit("token.status", NULL, "cuid=%s status=%s user=%s op=%s ip=%s", res->cuid,
                      res->new_status, nonempty(res->user) ? res->user : "-", res->op,
                      res->client_ip) != CMN_OK) {
            snprintf(err, errlen, "audit log not writable");
            return TPS_EIO;
        }
    }
    if (tps_tokendb_activity_add(d->h, &act, NULL, 0) != TPS_TDB_OK) {
        if (r == TPS_TDB_OK)
            snprintf(err, errlen, "activity: %s", tps_tokendb_errmsg(d->h));
        return TPS_EDB;
    }
    return db_rc(r);
}

static enum tps_rc
h_keychange_store(void *db, struct tps_keychange_store *out)
{
    struct hook_db *d = db;

    if (!d->have_tok || !d->leased)
        return TPS_EDB;
    memset(&d->kc, 0, sizeof(d->kc));
    d->kc.db = d->h;
    d->kc.tok = &d->tok;
    d->kc.lease = &d->lease;
    tps_keychange_tdb_store(&d->kc, out);
    return TPS_OK;
}

static enum tps_rc
h_revoke_certs(void *db, struct fo_req *req, const char *sid, const char *cuid,
               const char *ca_conn, int reason, size_t *n, char *err, size_t errlen)
{
    struct hook_db *d = db;
    struct tps_ca *ca = tps_enroll_backends_ca(d->be, ca_conn);
    struct tps_token_cert *certs = NULL;
    size_t nc = 0;
    enum tps_rc rc = TPS_OK;

    *n = 0;
    if (ca == NULL) {
        snprintf(err, errlen, "op.format.*.ca.conn: no CA connector '%s' (conn.%s.hostport)",
                 ca_conn, ca_conn);
        return TPS_ECONFIG;
    }
    if (tps_tokendb_cert_list(d->h, cuid, &certs, &nc) != TPS_TDB_OK) {
        snprintf(err, errlen, "listing the certificates: %s", tps_tokendb_errmsg(d->h));
        return TPS_EDB;
    }
    for (size_t i = 0; i < nc && rc == TPS_OK; i++) {
        const struct tps_token_cert *c = &certs[i];
        struct tps_ca_result res;

        /* only issued, active certificates (not intents, not already revoked) */
        if (c->status == NULL || strcmp(c->status, "active") != 0 || c->serial == NULL ||
            strncmp(c->serial, TPS_ENROLL_INTENT_PREFIX, sizeof(TPS_ENROLL_INTENT_PREFIX) - 1) == 0)
            continue;
        tps_ca_result_init(&res);
        rc = tps_ca_revoke(ca, req, sid, c->serial, reason, &res);
        if (rc != TPS_OK || res.outcome != TPS_CA_DONE) {
            snprintf(err, errlen, "certificate %s: CA revocation %s (%s)", c->serial,
                     tps_ca_outcome_name(res.outcome), res.msg);
            rc = TPS_EBACKEND;
        } else if (tps_tokendb_cert_set_status(d->h, c->cn,
                                               reason == TPS_CA_REASON_CERTIFICATE_HOLD
                                                   ? "revoked_on_hold"
                                                   : "revoked") != TPS_TDB_OK) {
            snprintf(err, errlen, "certificate %s revoked at the CA, but not marked revoked in "
                     "the token DB: %s", c->serial, tps_tokendb_errmsg(d->h));
            rc = TPS_EDB;
        } else {
            (*n)++;
        }
        (void)cmn_audit("token.cert_revoked", sid, "cuid=%s serial=%s reason=%d op=format "
                        "result=%s", cuid, c->serial, reason, rc == TPS_OK ? "success" : "failure");
        tps_ca_result_cleanup(&res);
    }
    tps_token_certs_free(certs, nc);
    return rc;
}

static const struct tps_db_ops db_ops = {
    .token_get = h_token_get,
    .transition_ok = h_transition_ok,
    .lease = h_lease,
    .unlease = h_unlease,
    .record = h_record,
    .keychange_store = h_keychange_store,
    .revoke_certs = h_revoke_certs,
};

static enum tps_rc
h_auth_check(void *auth, const char *auth_id, const char *uid, const char *password, char *err,
             size_t errlen)
{
    struct hook_auth *ha = auth;
    struct tps_auth_user user;
    char pw[256];
    size_t n = strlen(password), i;
    enum tps_tdb_rc r;

    for (i = 0; i < ha->h->nauth; i++)
        if (strcmp(ha->h->auth[i].id, auth_id) == 0)
            break;
    if (i == ha->h->nauth) {
        snprintf(err, errlen, "no auth.instance has authId %s", auth_id);
        return TPS_ECONFIG;
    }
    if (ha->a[i] == NULL && tps_auth_ldap_open(ha->h->auth[i].cfg, &ha->a[i]) != TPS_TDB_OK) {
        snprintf(err, errlen, "cannot open authenticator %s", auth_id);
        return TPS_ENOMEM;
    }
    if (n >= sizeof(pw)) {
        snprintf(err, errlen, "password longer than %zu bytes", sizeof(pw) - 1);
        return TPS_ELOGIN;
    }
    memcpy(pw, password, n + 1);
    memset(&user, 0, sizeof(user));
    r = tps_auth_ldap_login(ha->a[i], uid, pw, n, &user); /* wipes pw */
    cmn_wipe(pw, sizeof(pw));
    tps_auth_user_cleanup(&user);
    if (r == TPS_TDB_OK)
        return TPS_OK;
    snprintf(err, errlen, "%s", tps_auth_ldap_errmsg(ha->a[i]));
    return tps_auth_ldap_end_op_status(r) == 25 ? TPS_EBACKEND : TPS_ELOGIN;
}

static const struct tps_auth_ops auth_ops = {.check = h_auth_check};

struct inst_walk {
    const struct tps_config *cfg;
    struct tps_hooks *h;
    char *err;
    size_t errlen;
    enum tps_rc rc;
};

/* Builds the authenticator of auth.instance.<child>. */
static bool
add_auth(void *arg, const char *child)
{
    struct inst_walk *w = arg;
    const struct cmn_cfg *cc = tps_config_cfg(w->cfg);
    struct tps_auth_ldap_conf ac;
    struct auth_inst *ai;
    char k[256], name[96];
    enum tps_tdb_rc r;

#define AK(leaf) (snprintf(k, sizeof(k), "auth.instance.%s.%s", child, leaf), k)
    if (w->h->nauth == MAX_AUTH) {
        snprintf(w->err, w->errlen, "more than %d auth.instance entries", MAX_AUTH);
        w->rc = TPS_ECONFIG;
        return false;
    }
    ai = &w->h->auth[w->h->nauth];
    snprintf(name, sizeof(name), "auth.instance.%s", child);
    snprintf(ai->id, sizeof(ai->id), "%s",
             cmn_cfg_isset(cc, AK("authId")) ? cmn_cfg_str(cc, AK("authId")) : child);
    memset(&ac, 0, sizeof(ac));
    ac.ldap.hostport = cmn_cfg_str(cc, AK("hostport"));
    ac.ldap.ssl = cmn_cfg_bool(cc, AK("SSLOn"));
    ac.ldap.starttls = cmn_cfg_bool(cc, AK("startTLS"));
    ac.ldap.ca_file = cmn_cfg_str(cc, AK("caFile"));
    ac.ldap.bind_dn = cmn_cfg_str(cc, AK("bindDN"));
    ac.ldap.bind_pw_file = cmn_cfg_str(cc, AK("bindPassword_file"));
    ac.ldap.op_timeout_ms = (unsigned)cmn_cfg_uint(cc, AK("timeout"));
    ac.ldap.network_timeout_ms = ac.ldap.op_timeout_ms;
    ac.base_dn = cmn_cfg_str(cc, AK("baseDN"));
    ac.attributes = cmn_cfg_str(cc, AK("attributes"));
    ac.name = name;
    if (ac.ldap.hostport == NULL) {
        const char *key = AK("hostport");
        snprintf(w->err, w->errlen, "%s: missing required key '%s'", tps_config_path(w->cfg), key);
        w->rc = TPS_ECONFIG;
        return false;
    }
#undef AK
    r = tps_auth_ldap_cfg_new(&ac, &ai->cfg, w->err, w->errlen);
    if (r != TPS_TDB_OK) {
        w->rc = r == TPS_TDB_ENOMEM ? TPS_ENOMEM : TPS_ECONFIG;
        return false;
    }
    w->h->nauth++;
    return true;
}

const struct tps_enroll_backends *
tps_hooks_backends(const struct tps_hooks *h)
{
    return h->be;
}

void
tps_hooks_tokendb_conf(const struct cmn_cfg *cc, struct tps_tokendb_conf *tc)
{
    memset(tc, 0, sizeof(*tc));
    tc->ldap.hostport = cmn_cfg_str(cc, "tokendb.hostport");
    tc->ldap.ssl = cmn_cfg_bool(cc, "tokendb.ssl");
    tc->ldap.starttls = cmn_cfg_bool(cc, "tokendb.startTLS");
    tc->ldap.ca_file = cmn_cfg_str(cc, "tokendb.caFile");
    tc->ldap.bind_dn = cmn_cfg_str(cc, "tokendb.bindDN");
    tc->ldap.bind_pw_file = cmn_cfg_str(cc, "tokendb.bindPassword_file");
    tc->ldap.network_timeout_ms = (unsigned)cmn_cfg_uint(cc, "tokendb.networkTimeout");
    tc->ldap.op_timeout_ms = (unsigned)cmn_cfg_uint(cc, "tokendb.opTimeout");
    tc->base_dn = cmn_cfg_str(cc, "tokendb.baseDN");
    tc->cert_base_dn = cmn_cfg_str(cc, "tokendb.certBaseDN");
    tc->activity_base_dn = cmn_cfg_str(cc, "tokendb.activityBaseDN");
    tc->instance_id = cmn_cfg_str(cc, "tps.instanceId");
    if (cmn_cfg_isset(cc, "tokendb.allowedTransitions"))
        tc->allowed_transitions = cmn_cfg_str(cc, "tokendb.allowedTransitions");
    if (cmn_cfg_isset(cc, "tps.operations.allowedTransitions"))
        tc->op_allowed_transitions = cmn_cfg_str(cc, "tps.operations.allowedTransitions");
    if (cmn_cfg_isset(cc, "tokendb.defaultPolicy"))
        tc->default_policy = cmn_cfg_str(cc, "tokendb.defaultPolicy");
    tc->lease_seconds = (unsigned)cmn_cfg_uint(cc, "tokendb.leaseSeconds");
    tc->lease_wait_ms = (unsigned)cmn_cfg_uint(cc, "tokendb.leaseWait");
    tc->keep_on_unformat[0] = !cmn_cfg_bool(cc, "tokenservice.status.unformatted.clearUserID");
    tc->keep_on_unformat[1] = !cmn_cfg_bool(cc, "tokenservice.status.unformatted.clearType");
    tc->keep_on_unformat[2] = !cmn_cfg_bool(cc, "tokenservice.status.unformatted.clearAppletID");
    tc->keep_on_unformat[3] = !cmn_cfg_bool(cc, "tokenservice.status.unformatted.clearKeyInfo");
    tc->keep_on_unformat[4] = !cmn_cfg_bool(cc, "tokenservice.status.unformatted.clearPolicy");
}

enum tps_rc
tps_hooks_new(const struct tps_config *cfg, struct tps_hooks **out, char *err, size_t errlen)
{
    const struct cmn_cfg *cc = tps_config_cfg(cfg);
    struct tps_hooks *h = calloc(1, sizeof(*h));
    struct tps_tokendb_conf tc;
    enum tps_tdb_rc r;

    *out = NULL;
    if (h == NULL)
        return TPS_ENOMEM;
    h->cfg = cfg;
    if (cmn_cfg_isset(cc, "tokendb.hostport")) {
        tps_hooks_tokendb_conf(cc, &tc);
        r = tps_tokendb_cfg_new(&tc, &h->tdb_cfg, err, errlen);
        if (r != TPS_TDB_OK) {
            free(h);
            return r == TPS_TDB_ENOMEM ? TPS_ENOMEM : TPS_ECONFIG;
        }
    }
    {
        struct inst_walk w = {.cfg = cfg, .h = h, .err = err, .errlen = errlen, .rc = TPS_OK};
        cmn_cfg_children(cc, "auth.instance.", add_auth, &w);
        if (w.rc != TPS_OK) {
            tps_hooks_free(h);
            return w.rc;
        }
    }
    {
        enum tps_rc rc = tps_enroll_backends_new(cc, &h->be, err, errlen);
        if (rc != TPS_OK) {
            tps_hooks_free(h);
            return rc;
        }
    }
    *out = h;
    return TPS_OK;
}

void
tps_hooks_free(struct tps_hooks *h)
{
    if (h == NULL)
        return;
    tps_tokendb_cfg_free(h->tdb_cfg);
    tps_enroll_backends_free(h->be);
    for (size_t i = 0; i < h->nauth; i++)
        tps_auth_ldap_cfg_free(h->auth[i].cfg);
    free(h);
}

enum tps_rc
tps_hooks_worker_open(const struct tps_hooks *h, struct tps_env *env)
{
    struct hook_db *d;

    env->db_ops = NULL;
    env->db = NULL;
    env->auth_ops = NULL;
    env->auth = NULL;
    env->enroll = NULL;
    if (h->tdb_cfg != NULL) {
        d = calloc(1, sizeof(*d));
        if (d == NULL)
            return TPS_ENOMEM;
        d->cfg = h->tdb_cfg;
        d->be = h->be;
        if (tps_tokendb_open(h->tdb_cfg, &d->h) != TPS_TDB_OK) {
            free(d);
            return TPS_ENOMEM;
        }
        env->db_ops = &db_ops;
        env->db = d;
    }
    if (h->nauth > 0) {
        struct hook_auth *ha = calloc(1, sizeof(*ha));
        if (ha == NULL) {
            tps_hooks_worker_close(h, env);
            return TPS_ENOMEM;
        }
        ha->h = h;
        env->auth_ops = &auth_ops;
        env->auth = ha;
    }
    if (h->be != NULL) {
        struct hook_enroll *he = calloc(1, sizeof(*he));
        if (he == NULL) {
            tps_hooks_worker_close(h, env);
            return TPS_ENOMEM;
        }
        he->ee.cfg = tps_config_cfg(h->cfg);
        he->ee.ops = &tps_enroll_backends_ops;
        he->ee.ops_arg = h->be;
        he->ee.tdb = env->db != NULL ? ((struct hook_db *)env->db)->h : NULL;
        he->ee.encrypt_data_path = tps_cfg_str(h->cfg, "conn.tks1.servlet.encryptData");
        env->enroll = &he->ee;
    }
    return TPS_OK;
}

void
tps_hooks_worker_close(const struct tps_hooks *h, struct tps_env *env)
{
    struct hook_db *d = env->db;

    (void)h;
    if (d != NULL) {
        forget(d);
        tps_tokendb_close(d->h);
        free(d);
    }
    env->db = NULL;
    env->db_ops = NULL;
    if (env->auth != NULL) {
        struct hook_auth *ha = env->auth;
        for (size_t i = 0; i < MAX_AUTH; i++)
            tps_auth_ldap_close(ha->a[i]);
        free(ha);
    }
    env->auth = NULL;
    env->auth_ops = NULL;
    /* ee is the first member of struct hook_enroll. */
    free((struct hook_enroll *)(uintptr_t)env->enroll);
    env->enroll = NULL;
}
