/* gateway/officer.c - the officer check of officer-only token types (gateway/officer.h): the
 * verified TLS client certificate is mapped with the admin API's whois (one mapping for both),
 * then the staff entry's membership of tps.officerGroup is read under the groups base. */
#include "gateway/officer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldap.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "gateway/admin_ldap.h"
#include "gateway/admin_setup.h"
#include "gateway/config.h"
#include "gateway/session.h"

struct tps_officer_worker {
    const struct tps_admin_backend *be; /* the admin stack's LDAP backend (borrowed) */
    void *bw;                           /* our own backend worker: struct tps_admin_ldap_worker */
    const struct tps_config *cfg;
};

enum tps_rc
tps_officer_worker_open(const struct tps_admin_stack *st, const struct tps_config *cfg,
                        struct tps_officer_worker **out, char *err, size_t errlen)
{
    struct tps_officer_worker *w;
    enum tps_rc rc;

    *out = NULL;
    if (st == NULL)
        return TPS_OK;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return TPS_ENOMEM;
    w->be = &st->be;
    w->cfg = cfg;
    rc = st->be.worker_open(st->ldap, &w->bw, err, errlen);
    if (rc != TPS_OK) {
        free(w);
        return rc;
    }
    *out = w;
    return TPS_OK;
}

void
tps_officer_worker_close(struct tps_officer_worker *w)
{
    if (w == NULL)
        return;
    w->be->worker_close(w->bw);
    free(w);
}

struct member_search {
    const char *base;
    char filter[4096];
    int count;
};

static int
member_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct member_search *m = arg;
    char *attrs[] = {(char[]){"1.1"}, NULL};
    LDAPMessage *res = NULL;
    int lrc;

    m->count = 0;
    lrc = ldap_search_ext_s(ld, m->base, LDAP_SCOPE_SUBTREE, m->filter, attrs, 0, NULL, NULL, tmo,
                            2, &res);
    if ((lrc == LDAP_SUCCESS || lrc == LDAP_SIZELIMIT_EXCEEDED) && res != NULL)
        m->count = ldap_count_entries(ld, res);
    ldap_msgfree(res); /* whatever the return value (ldap_search(3)) */
    return lrc == LDAP_SIZELIMIT_EXCEEDED ? LDAP_SUCCESS : lrc;
}

/* Is dn a member (exact DN, tokendb §1.4) of group cn under the groups base? [out] *yes. */
static enum tps_rc
is_member(struct tps_officer_worker *w, const char *dn, const char *group, bool *yes, char *err,
          size_t errlen)
{
    struct tps_admin_ldap_worker *lw = w->bw;
    struct tps_ldap_conn *conn = tps_tokendb_conn(lw->db);
    struct member_search m = {.base = lw->s->groups_base};
    char dn_esc[1600], cn_esc[400];
    enum tps_tdb_rc trc;
    int lrc = LDAP_OTHER;

    *yes = false;
    if (tps_ldap_filter_escape(dn, dn_esc, sizeof(dn_esc)) != TPS_TDB_OK ||
        tps_ldap_filter_escape(group, cn_esc, sizeof(cn_esc)) != TPS_TDB_OK) {
        snprintf(err, errlen, "staff DN or group name too long");
        return TPS_EINVAL;
    }
    snprintf(m.filter, sizeof(m.filter),
             "(&(cn=%s)(|(&(objectClass=groupOfUniqueNames)(uniqueMember=%s))"
             "(&(objectClass=groupOfNames)(member=%s))))",
             cn_esc, dn_esc, dn_esc);
    tps_ldap_conn_clearerr(conn);
    trc = tps_ldap_conn_run(conn, member_fn, &m, true, &lrc);
    if (trc != TPS_TDB_OK) {
        snprintf(err, errlen, "groups search: %s: %s", tps_tdb_strerror(trc),
                 tps_ldap_conn_errmsg(conn));
        return TPS_EDB;
    }
    if (lrc == LDAP_NO_SUCH_OBJECT)
        return TPS_OK; /* no groups container: nobody is an officer */
    if (lrc != LDAP_SUCCESS) {
        snprintf(err, errlen, "groups search under %s: LDAP %d %s", m.base, lrc,
                 ldap_err2string(lrc));
        return TPS_EDB;
    }
    *yes = m.count > 0;
    return TPS_OK;
}

/* Records the refusal: log, audit, END_OP 26. */
static enum tps_rc
refuse(struct tps_session *s, const char *op, enum tps_rc rc, const char *who, const char *why)
{
    CMN_LOG(CMN_LOG_WARN, "officer.refused", s->sid,
            "ip=%s op=%s cuid=%s type=%s cert=\"%s\" "
            "why=\"%s\"",
            s->client_ip, op, s->tok.cuid_hex, s->tok.type, who, why);
    (void)cmn_audit("officer.check", s->sid,
                    "op=%s cuid=%s type=%s ip=%s cert=\"%s\" outcome=refused why=\"%s\"", op,
                    s->tok.cuid_hex, s->tok.type, s->client_ip, who, why);
    return tps_session_fail(s, rc, CMN_TPS_STATUS_DISABLED_TOKEN,
                            "officer check: token type %s is officer-only (op.%s.%s.officerOnly): "
                            "%s",
                            s->tok.type, op, s->tok.type, why);
}

/* x's subject as RFC 2253 text, quotes replaced (it goes into quoted log fields). */
static void
subject_text(X509 *x, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = 0;

    out[0] = '\0';
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0)
        n = BIO_read(b, out, (int)cap - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(b);
    for (char *p = out; *p; p++)
        if (*p == '"')
            *p = '\'';
}

enum tps_rc
tps_officer_check(struct tps_session *s, const char *op)
{
    const struct tps_config *cfg = s->env->cfg;
    struct tps_officer_worker *w = s->env->officer;
    const char *group = tps_cfg_str(cfg, "tps.officerGroup");
    struct tps_admin_peer peer = {.client_ip = s->client_ip};
    struct tps_admin_staff staff;
    char subj[1024] = "", fp[2 * EVP_MAX_MD_SIZE + 1] = "", err[512] = "", why[700];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    X509 *cert = NULL;
    bool member = false;
    enum tps_rc rc;

    if (!tps_cfg_op_bool(cfg, op, s->tok.type, "officerOnly"))
        return TPS_OK;
    if (s->ssl == NULL)
        return refuse(s, op, TPS_EPOLICY, "-",
                      "plain HTTP; officer operations need HTTPS "
                      "with the officer's client certificate");
    cert = SSL_get1_peer_certificate(s->ssl);
    if (cert == NULL || SSL_get_verify_result(s->ssl) != X509_V_OK) {
        X509_free(cert);
        return refuse(s, op, TPS_EPOLICY, "-", "no verified client certificate");
    }
    subject_text(cert, subj, sizeof(subj));
    if (w == NULL) {
        rc = refuse(s, op, TPS_EPOLICY, subj,
                    "no staff directory to map the certificate "
                    "(tps.admin.enable and tokendb.hostport)");
        goto out;
    }
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1)
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(fp + 2 * i, sizeof(fp) - 2 * i, "%02x", md[i]);
    peer.cert = cert;
    peer.subject = subj;
    peer.fingerprint = fp;
    rc = w->be->whois(w->bw, &peer, &staff, err, sizeof(err));
    if (rc == TPS_ENOTFOUND) {
        snprintf(why, sizeof(why), "certificate maps to no staff user: %s", err);
        rc = refuse(s, op, TPS_EPOLICY, subj, why);
        goto out;
    }
    if (rc == TPS_OK)
        rc = is_member(w, staff.dn, group, &member, err, sizeof(err));
    if (rc != TPS_OK) {
        snprintf(why, sizeof(why), "staff directory: %s", err);
        rc = refuse(s, op, TPS_EDB, subj, why);
        goto out;
    }
    if (!member) {
        snprintf(why, sizeof(why), "staff user %s is not in group '%s' (tps.officerGroup)",
                 staff.uid, group);
        rc = refuse(s, op, TPS_EPOLICY, subj, why);
        goto out;
    }
    snprintf(s->officer, sizeof(s->officer), "%s", staff.uid);
    CMN_LOG(CMN_LOG_INFO, "officer.ok", s->sid, "ip=%s op=%s cuid=%s type=%s officer=%s",
            s->client_ip, op, s->tok.cuid_hex, s->tok.type, staff.uid);
    if (cmn_audit("officer.check", s->sid,
                  "op=%s cuid=%s type=%s ip=%s officer=%s cert=\"%s\" outcome=allowed", op,
                  s->tok.cuid_hex, s->tok.type, s->client_ip, staff.uid, subj) != CMN_OK)
        rc = tps_session_fail(s, TPS_EIO, CMN_TPS_STATUS_SNAC, "audit log not writable");
out:
    X509_free(cert);
    return rc;
}
