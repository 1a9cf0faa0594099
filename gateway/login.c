/* gateway/login.c - user authentication inside a TPS session: LOGIN_REQUEST or, when the client
 * asked with extendedLoginRequest, EXTENDED_LOGIN_REQUEST (tps-protocol §2.2), checked by the
 * authenticator hook (an LDAP bind), re-prompting with invalid_pw=1 up to the authenticator's
 * retries, then END_OP status 14 (§4.2). Passwords live in wiped buffers only. */
#include "gateway/session.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/cfg.h"
#include "gateway/config.h"
#include "common/log.h"

#define CRED_MAX 256

static enum tps_rc
prompt(struct tps_session *s, bool extended, bool invalid_pw)
{
    static const struct cmn_tps_authparam params[] = {
        {"UID", "LDAP User ID", "LDAP User ID", "string", ""},
        {"PASSWORD", "LDAP Password", "LDAP Password", "password", ""},
    };
    struct cmn_buf out;
    enum cmn_rc crc;
    enum tps_rc rc;

    cmn_buf_init(&out, 4000);
    if (extended)
        crc = cmn_tpsmsg_build_ext_login_request(
            &out, invalid_pw, false, "LDAP Authentication",
            "This authenticates user against the LDAP directory.", params, 2);
    else
        crc = cmn_tpsmsg_build_login_request(&out, invalid_pw, false);
    rc = crc == CMN_OK ? tps_session_send(s, &out) : TPS_EINVAL;
    cmn_buf_cleanup(&out);
    return rc;
}

/* Copies the decoded value of the first present field among names into out. */
static bool
field(struct cmn_tpsmsg *m, const char *const *names, size_t n, struct cmn_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        cmn_buf_reset(out);
        if (cmn_tpsmsg_get_str(m, names[i], out) == CMN_OK && out->len > 0)
            return true;
    }
    return false;
}

struct retries_walk {
    const struct tps_config *cfg;
    const char *auth_id;
    unsigned long retries;
    bool found;
};

static bool
find_retries(void *arg, const char *child)
{
    struct retries_walk *w = arg;
    char k[256];
    const char *id;

    snprintf(k, sizeof(k), "auth.instance.%s.authId", child);
    id = tps_cfg_isset(w->cfg, k) ? tps_cfg_str(w->cfg, k) : child;
    if (strcmp(id, w->auth_id) != 0)
        return true;
    snprintf(k, sizeof(k), "auth.instance.%s.retries", child);
    w->retries = tps_cfg_uint(w->cfg, k);
    w->found = true;
    return false;
}

/* Re-prompts allowed for authenticator auth_id: its auth.instance.<n>.retries, else the
 * global auth.retries. */
static unsigned long
auth_retries(const struct tps_config *cfg, const char *auth_id)
{
    struct retries_walk w = {.cfg = cfg, .auth_id = auth_id};

    cmn_cfg_children(tps_config_cfg(cfg), "auth.instance.", find_retries, &w);
    return w.found ? w.retries : tps_cfg_uint(cfg, "auth.retries");
}

enum tps_rc
tps_login(struct tps_session *s, const char *op)
{
    static const char *const uid_ext[] = {"UID", "screen_name"};
    static const char *const pw_ext[] = {"PASSWORD", "password"};
    static const char *const uid_plain[] = {"screen_name"};
    static const char *const pw_plain[] = {"password"};
    const struct tps_config *cfg = s->env->cfg;
    bool extended = cmn_tpsext_has(&s->ext, "extendedLoginRequest");
    const char *auth_id = tps_cfg_op_str(cfg, op, s->tok.type, "auth.id");
    unsigned long retries = auth_retries(cfg, auth_id);
    struct cmn_buf uid, pw;
    struct cmn_tpsmsg m;
    char err[256];
    enum tps_rc rc = TPS_ELOGIN;
    bool have;

    if (s->env->auth_ops == NULL)
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_LOGIN,
                                "authentication required but no authenticator configured");
    cmn_buf_init(&uid, CRED_MAX);
    cmn_buf_init_secret(&pw, CRED_MAX);
    cmn_tpsmsg_init(&m);
    for (unsigned long attempt = 0; attempt <= retries; attempt++) {
        rc = prompt(s, extended, attempt > 0);
        if (rc != TPS_OK)
            goto out;
        rc = tps_session_recv(
            s, extended ? CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE : CMN_TPS_MSG_LOGIN_RESPONSE, &m);
        if (rc != TPS_OK)
            goto out;
        have = extended ? field(&m, uid_ext, 2, &uid) && field(&m, pw_ext, 2, &pw)
                        : field(&m, uid_plain, 1, &uid) && field(&m, pw_plain, 1, &pw);
        cmn_tpsmsg_cleanup(&m);
        if (!have || memchr(uid.data, '\0', uid.len) != NULL ||
            memchr(pw.data, '\0', pw.len) != NULL) {
            CMN_LOG(CMN_LOG_NOTICE, "login.fail", s->sid,
                    "cuid=%s attempt=%lu why=\"missing user id or password\"", s->tok.cuid_hex,
                    attempt + 1);
            rc = TPS_ELOGIN;
            continue;
        }
        err[0] = '\0';
        rc = s->env->auth_ops->check(s->env->auth, auth_id, cmn_buf_cstr(&uid), cmn_buf_cstr(&pw),
                                     err, sizeof(err));
        cmn_buf_reset(&pw);
        if (rc == TPS_OK) {
            snprintf(s->user, sizeof(s->user), "%s", cmn_buf_cstr(&uid));
            CMN_LOG(CMN_LOG_INFO, "login.ok", s->sid, "cuid=%s user=%s auth=%s", s->tok.cuid_hex,
                    s->user, auth_id);
            goto out;
        }
        if (rc != TPS_ELOGIN) {
            rc = tps_session_fail(s, rc, CMN_TPS_STATUS_LDAP_CONN,
                                  "authenticator %s unavailable: %s", auth_id, err);
            goto out;
        }
        CMN_LOG(CMN_LOG_NOTICE, "login.fail", s->sid, "cuid=%s user=%s attempt=%lu why=\"%s\"",
                s->tok.cuid_hex, cmn_buf_cstr(&uid), attempt + 1,
                err[0] ? err : "invalid credentials");
    }
    rc = tps_session_fail(s, TPS_ELOGIN, CMN_TPS_STATUS_LOGIN,
                          "user %s not authenticated after %lu attempt(s)",
                          uid.len ? cmn_buf_cstr(&uid) : "-", retries + 1);
out:
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&pw);
    cmn_buf_cleanup(&uid);
    OPENSSL_cleanse(err, sizeof(err));
    return rc;
}
