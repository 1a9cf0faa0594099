/* gateway/admin_ldap.c - the admin API's token DB backend: tokens, certificates and activities
 * through gateway/tokendb.h, activity listing and the staff directory (certificate -> staff
 * entry -> role groups, tokendb §1.4, §1.8) through the token DB's failing-over connection. */
#include "gateway/admin_ldap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ldap.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/x509.h>

#define MAX_ACTIVITIES 2000 /* entries one activity listing reads */

static enum tps_rc
map_tdb(enum tps_tdb_rc rc)
{
    switch (rc) {
    case TPS_TDB_OK: return TPS_OK;
    case TPS_TDB_ENOTFOUND: return TPS_ENOTFOUND;
    case TPS_TDB_ENOMEM: return TPS_ENOMEM;
    case TPS_TDB_ECONFLICT:
    case TPS_TDB_EBUSY:
    case TPS_TDB_ELEASE: return TPS_EBUSY;
    case TPS_TDB_ETRANSITION: return TPS_EPOLICY;
    case TPS_TDB_EINVAL: return TPS_EINVAL;
    default: return TPS_EDB;
    }
}

static enum tps_rc
tdb_fail(struct tps_admin_ldap_worker *w, enum tps_tdb_rc rc, char *err, size_t errlen)
{
    const char *m = tps_tokendb_errmsg(w->db);
    snprintf(err, errlen, "%s%s%s", tps_tdb_strerror(rc), m[0] ? ": " : "", m);
    return map_tdb(rc);
}

/* "ou=Tokens,dc=x" -> "dc=x". */
static bool
dn_parent(const char *dn, char *out, size_t cap)
{
    const char *p = dn;

    while (*p != '\0') {
        if (*p == '\\' && p[1] != '\0') {
            p += 2;
            continue;
        }
        if (*p == ',')
            break;
        p++;
    }
    if (*p != ',' || p[1] == '\0')
        return false;
    return (size_t)snprintf(out, cap, "%s", p + 1) < cap;
}

enum tps_rc
tps_admin_ldap_new(const struct tps_admin_ldap_conf *c, struct tps_admin_ldap **out, char *err,
                   size_t errlen)
{
    struct tps_admin_ldap *s;
    char root[480] = "";

    *out = NULL;
    if (c->tdb == NULL || c->token_base_dn == NULL || c->activity_base_dn == NULL ||
        c->activity_base_dn[0] == '\0') {
        snprintf(err, errlen, "admin: the token DB is not configured (tokendb.baseDN, "
                 "tokendb.activityBaseDN)");
        return TPS_ECONFIG;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return TPS_ENOMEM;
    s->tdb = c->tdb;
    s->cfg = c->cfg;
    s->ca = c->ca;
    s->map_subject_uid = c->map_subject_uid;
    if (((c->people_base_dn == NULL || c->people_base_dn[0] == '\0') ||
         (c->groups_base_dn == NULL || c->groups_base_dn[0] == '\0')) &&
        !dn_parent(c->token_base_dn, root, sizeof(root))) {
        snprintf(err, errlen, "admin: key 'tokendb.baseDN' = '%s': cannot derive the root for "
                 "ou=People and ou=Groups; set tps.admin.peopleBaseDN and "
                 "tps.admin.groupsBaseDN", c->token_base_dn);
        free(s);
        return TPS_ECONFIG;
    }
    if (c->people_base_dn != NULL && c->people_base_dn[0] != '\0')
        snprintf(s->people_base, sizeof(s->people_base), "%s", c->people_base_dn);
    else
        snprintf(s->people_base, sizeof(s->people_base), "ou=People,%s", root);
    if (c->groups_base_dn != NULL && c->groups_base_dn[0] != '\0')
        snprintf(s->groups_base, sizeof(s->groups_base), "%s", c->groups_base_dn);
    else
        snprintf(s->groups_base, sizeof(s->groups_base), "ou=Groups,%s", root);
    snprintf(s->activity_base, sizeof(s->activity_base), "%s", c->activity_base_dn);
    snprintf(s->group_agent, sizeof(s->group_agent), "%s",
             c->group_agent ? c->group_agent : "TPS Agents");
    snprintf(s->group_operator, sizeof(s->group_operator), "%s",
             c->group_operator ? c->group_operator : "TPS Operators");
    snprintf(s->group_admin, sizeof(s->group_admin), "%s",
             c->group_admin ? c->group_admin : "Administrators");
    *out = s;
    return TPS_OK;
}

void
tps_admin_ldap_free(struct tps_admin_ldap *s)
{
    free(s);
}

/* ---- worker ----------------------------------------------------------------------------- */

static enum tps_rc
b_worker_open(void *shared, void **out, char *err, size_t errlen)
{
    const struct tps_admin_ldap *s = shared;
    struct tps_admin_ldap_worker *w;
    enum tps_tdb_rc trc;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return TPS_ENOMEM;
    w->s = s;
    trc = tps_tokendb_open(s->tdb, &w->db);
    if (trc != TPS_TDB_OK) {
        snprintf(err, errlen, "admin: token DB handle: %s", tps_tdb_strerror(trc));
        free(w);
        return map_tdb(trc);
    }
    *out = w;
    return TPS_OK;
}

static void
b_worker_close(void *p)
{
    struct tps_admin_ldap_worker *w = p;

    if (w == NULL)
        return;
    tps_tokendb_close(w->db);
    free(w);
}

/* ---- generic search --------------------------------------------------------------------- */

/* A search whose entries are parsed inside the operation, where the LDAP handle is valid.
 * parse may run more than once (the connection retries): it must start from scratch. It
 * returns false when out of memory. */
typedef bool parse_fn(LDAP *ld, LDAPMessage *res, void *arg);

struct search {
    const char *base;
    int scope;
    const char *filter;
    char **attrs;
    int sizelimit;
    parse_fn *parse;
    void *parg;
};

static int
search_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct search *s = arg;
    LDAPMessage *res = NULL;
    int lrc;

    lrc = ldap_search_ext_s(ld, s->base, s->scope, s->filter, s->attrs, 0, NULL, NULL, tmo,
                            s->sizelimit, &res);
    if ((lrc == LDAP_SUCCESS || lrc == LDAP_SIZELIMIT_EXCEEDED) && res != NULL &&
        !s->parse(ld, res, s->parg))
        lrc = LDAP_NO_MEMORY;
    ldap_msgfree(res); /* whatever the return value (ldap_search(3)) */
    return lrc;
}

/* Runs the search; LDAP_SIZELIMIT_EXCEEDED keeps what was returned. */
static enum tps_rc
run_search(struct tps_admin_ldap_worker *w, struct search *s, char *err, size_t errlen)
{
    int lrc = LDAP_OTHER;
    enum tps_tdb_rc trc;
    struct tps_ldap_conn *conn = tps_tokendb_conn(w->db);

    tps_ldap_conn_clearerr(conn);
    trc = tps_ldap_conn_run(conn, search_fn, s, true, &lrc);
    if (trc != TPS_TDB_OK) {
        snprintf(err, errlen, "search under %s: %s: %s", s->base, tps_tdb_strerror(trc),
                 tps_ldap_conn_errmsg(conn));
        return TPS_EDB;
    }
    if (lrc == LDAP_SUCCESS || lrc == LDAP_SIZELIMIT_EXCEEDED)
        return TPS_OK;
    if (lrc == LDAP_NO_MEMORY)
        return TPS_ENOMEM;
    if (lrc == LDAP_NO_SUCH_OBJECT) {
        snprintf(err, errlen, "search base %s does not exist", s->base);
        return TPS_ENOTFOUND;
    }
    snprintf(err, errlen, "search under %s: LDAP %d %s", s->base, lrc, ldap_err2string(lrc));
    return TPS_EDB;
}

/* First value of attr as a string into out ("" if absent or not a string). */
static void
first_value(LDAP *ld, LDAPMessage *e, const char *attr, char *out, size_t cap)
{
    struct berval **v = ldap_get_values_len(ld, e, attr);

    out[0] = '\0';
    if (v != NULL && v[0] != NULL && v[0]->bv_len < cap &&
        memchr(v[0]->bv_val, '\0', v[0]->bv_len) == NULL) {
        memcpy(out, v[0]->bv_val, v[0]->bv_len);
        out[v[0]->bv_len] = '\0';
    }
    ldap_value_free_len(v);
}

/* ---- staff directory -------------------------------------------------------------------- */

enum tps_rc
tps_admin_cert_assertion(X509 *cert, char *out, size_t out_size)
{
    BIGNUM *bn = NULL;
    char *dec = NULL;
    BIO *bio = NULL;
    char issuer[1024], quoted[2100];
    size_t q = 0;
    int n;
    enum tps_rc rc = TPS_EINVAL;

    bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), NULL);
    if (bn == NULL)
        goto out;
    dec = BN_bn2dec(bn);
    bio = BIO_new(BIO_s_mem());
    if (dec == NULL || bio == NULL)
        goto out;
    if (X509_NAME_print_ex(bio, X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253) < 0)
        goto out;
    n = BIO_read(bio, issuer, (int)sizeof(issuer) - 1);
    if (n <= 0 || n >= (int)sizeof(issuer) - 1)
        goto out;
    issuer[n] = '\0';
    /* GSER string: a double quote is written twice (RFC 3641 §3.2) */
    for (int i = 0; i < n && q + 3 < sizeof(quoted); i++) {
        if (issuer[i] == '"')
            quoted[q++] = '"';
        quoted[q++] = issuer[i];
    }
    quoted[q] = '\0';
    n = snprintf(out, out_size, "{ serialNumber %s, issuer rdnSequence:\"%s\" }", dec, quoted);
    if (n < 0 || (size_t)n >= out_size)
        goto out;
    rc = TPS_OK;
out:
    OPENSSL_free(dec);
    BN_free(bn);
    BIO_free(bio);
    return rc;
}

/* True when one of the entry's certificates is exactly der. */
static bool
entry_has_cert(LDAP *ld, LDAPMessage *e, const uint8_t *der, size_t len)
{
    static const char *const names[] = {"userCertificate;binary", "userCertificate"};
    bool found = false;

    for (size_t k = 0; k < 2 && !found; k++) {
        struct berval **v = ldap_get_values_len(ld, e, names[k]);
        for (size_t i = 0; v != NULL && v[i] != NULL; i++)
            if (v[i]->bv_len == len && memcmp(v[i]->bv_val, der, len) == 0)
                found = true;
        ldap_value_free_len(v);
    }
    return found;
}

/* The uid= value of the certificate's subject (tps.admin.certMap=subjectUID). */
static bool
subject_uid(X509 *cert, char *out, size_t cap)
{
    X509_NAME *nm = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(nm, NID_userId, -1);
    ASN1_STRING *d;
    unsigned char *utf = NULL;
    int n;

    if (i < 0 || X509_NAME_get_index_by_NID(nm, NID_userId, i) >= 0)
        return false; /* none, or ambiguous */
    d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i));
    n = ASN1_STRING_to_UTF8(&utf, d);
    if (n <= 0 || (size_t)n >= cap || memchr(utf, '\0', (size_t)n) != NULL) {
        OPENSSL_free(utf);
        return false;
    }
    memcpy(out, utf, (size_t)n);
    out[n] = '\0';
    OPENSSL_free(utf);
    return true;
}

/* Parse state of the staff search. */
struct people_parse {
    const uint8_t *der;
    size_t der_len;
    bool check_cert;
    int count;
    bool cert_ok;
    struct tps_admin_staff *out;
};

static bool
people_parse(LDAP *ld, LDAPMessage *res, void *arg)
{
    struct people_parse *pp = arg;
    struct tps_admin_staff *out = pp->out;
    LDAPMessage *e;
    struct berval **v;
    char *dn;

    memset(out, 0, sizeof(*out));
    pp->cert_ok = false;
    pp->count = ldap_count_entries(ld, res);
    if (pp->count != 1)
        return true;
    e = ldap_first_entry(ld, res);
    if (e == NULL)
        return true;
    pp->cert_ok = !pp->check_cert || entry_has_cert(ld, e, pp->der, pp->der_len);
    dn = ldap_get_dn(ld, e);
    if (dn == NULL)
        return false;
    snprintf(out->dn, sizeof(out->dn), "%s", dn);
    ldap_memfree(dn);
    first_value(ld, e, "uid", out->uid, sizeof(out->uid));
    first_value(ld, e, "cn", out->full_name, sizeof(out->full_name));
    v = ldap_get_values_len(ld, e, "profileID");
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        char val[64];
        size_t n = v[i]->bv_len;
        if (n >= sizeof(val) || memchr(v[i]->bv_val, '\0', n) != NULL)
            continue;
        memcpy(val, v[i]->bv_val, n);
        val[n] = '\0';
        if (strcasecmp(val, "All Profiles") == 0)
            out->all_profiles = true;
        else if (out->n_profiles < TPS_ADMIN_MAX_PROFILES)
            snprintf(out->profiles[out->n_profiles++], sizeof(out->profiles[0]), "%s", val);
    }
    ldap_value_free_len(v);
    return true;
}

struct group_parse {
    const struct tps_admin_ldap *s;
    unsigned roles;
};

static bool
group_parse(LDAP *ld, LDAPMessage *res, void *arg)
{
    struct group_parse *gp = arg;
    LDAPMessage *e;

    gp->roles = 0;
    for (e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
        struct berval **v = ldap_get_values_len(ld, e, "cn");
        for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
            char cn[128];
            size_t n = v[i]->bv_len;
            if (n >= sizeof(cn) || memchr(v[i]->bv_val, '\0', n) != NULL)
                continue;
            memcpy(cn, v[i]->bv_val, n);
            cn[n] = '\0';
            if (strcasecmp(cn, gp->s->group_agent) == 0)
                gp->roles |= TPS_ADMIN_ROLE_AGENT;
            if (strcasecmp(cn, gp->s->group_operator) == 0)
                gp->roles |= TPS_ADMIN_ROLE_OPERATOR;
            if (strcasecmp(cn, gp->s->group_admin) == 0)
                gp->roles |= TPS_ADMIN_ROLE_ADMIN;
        }
        ldap_value_free_len(v);
    }
    return true;
}

static enum tps_rc
b_whois(void *p, const struct tps_admin_peer *peer, struct tps_admin_staff *out, char *err,
        size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    const struct tps_admin_ldap *s = w->s;
    char assertion[2300], esc[4700], filter[4800], dn_esc[1600], uid[128];
    char *people_attrs[] = {(char[]){"uid"}, (char[]){"cn"}, (char[]){"profileID"},
                            (char[]){"userCertificate;binary"}, NULL};
    char *group_attrs[] = {(char[]){"cn"}, NULL};
    struct search sp = {0}, sg = {0};
    struct people_parse pp = {0};
    struct group_parse gp = {0};
    uint8_t *der = NULL;
    int derlen;
    enum tps_rc rc;

    memset(out, 0, sizeof(*out));
    derlen = i2d_X509(peer->cert, &der);
    if (derlen <= 0) {
        snprintf(err, errlen, "cannot encode the client certificate");
        return TPS_EINVAL;
    }
    if (s->map_subject_uid) {
        if (!subject_uid(peer->cert, uid, sizeof(uid))) {
            snprintf(err, errlen, "the certificate subject has no single UID attribute");
            rc = TPS_ENOTFOUND;
            goto out;
        }
        if (tps_ldap_filter_escape(uid, esc, sizeof(esc)) != TPS_TDB_OK) {
            rc = TPS_ENOTFOUND;
            goto out;
        }
        snprintf(filter, sizeof(filter), "(&(objectClass=inetOrgPerson)(uid=%s))", esc);
    } else {
        if (tps_admin_cert_assertion(peer->cert, assertion, sizeof(assertion)) != TPS_OK ||
            tps_ldap_filter_escape(assertion, esc, sizeof(esc)) != TPS_TDB_OK) {
            snprintf(err, errlen, "cannot build the certificate assertion");
            rc = TPS_ENOTFOUND;
            goto out;
        }
        snprintf(filter, sizeof(filter), "(userCertificate=%s)", esc);
    }
    pp.der = der;
    pp.der_len = (size_t)derlen;
    pp.check_cert = !s->map_subject_uid;
    pp.out = out;
    sp.base = s->people_base;
    sp.scope = LDAP_SCOPE_SUBTREE;
    sp.filter = filter;
    sp.attrs = people_attrs;
    sp.sizelimit = 2;
    sp.parse = people_parse;
    sp.parg = &pp;
    rc = run_search(w, &sp, err, errlen);
    if (rc != TPS_OK) {
        if (rc == TPS_ENOTFOUND)
            rc = TPS_EDB; /* the People container itself is missing: a setup error */
        goto out;
    }
    if (pp.count != 1) {
        snprintf(err, errlen, "%s staff entr%s under %s match the certificate",
                 pp.count == 0 ? "no" : "several", pp.count == 0 ? "y" : "ies", s->people_base);
        rc = TPS_ENOTFOUND;
        goto out;
    }
    /* With certificate mapping, the match on serial + issuer is confirmed on the bytes. */
    if (!pp.cert_ok) {
        snprintf(err, errlen, "the staff entry's certificate differs from the presented one");
        rc = TPS_ENOTFOUND;
        goto out;
    }
    if (out->uid[0] == '\0') {
        snprintf(err, errlen, "staff entry %s has no uid", out->dn);
        rc = TPS_ENOTFOUND;
        goto out;
    }
    /* role groups: membership by exact DN (tokendb §1.4), Java and legacy group classes */
    if (tps_ldap_filter_escape(out->dn, dn_esc, sizeof(dn_esc)) != TPS_TDB_OK) {
        rc = TPS_ENOTFOUND;
        goto out;
    }
    snprintf(filter, sizeof(filter),
             "(|(&(objectClass=groupOfUniqueNames)(uniqueMember=%s))"
             "(&(objectClass=groupOfNames)(member=%s)))",
             dn_esc, dn_esc);
    gp.s = s;
    sg.base = s->groups_base;
    sg.scope = LDAP_SCOPE_SUBTREE;
    sg.filter = filter;
    sg.attrs = group_attrs;
    sg.sizelimit = 100;
    sg.parse = group_parse;
    sg.parg = &gp;
    rc = run_search(w, &sg, err, errlen);
    if (rc == TPS_ENOTFOUND)
        rc = TPS_OK; /* no groups container: no roles */
    out->roles = gp.roles;
out:
    if (rc != TPS_OK)
        out->roles = 0;
    OPENSSL_free(der);
    return rc;
}

/* ---- tokens, certificates, activities --------------------------------------------------- */

static enum tps_rc
b_token_get(void *p, const char *cuid, struct tps_token *out, char *err, size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    enum tps_tdb_rc trc;

    memset(out, 0, sizeof(*out));
    trc = tps_tokendb_token_get(w->db, cuid, out);
    return trc == TPS_TDB_OK ? TPS_OK : tdb_fail(w, trc, err, errlen);
}

static enum tps_rc
b_token_scan(void *p, const struct tps_token_query *q, tps_admin_token_fn *fn, void *arg,
             char *err, size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    struct tps_tokendb_cursor cur = {0};
    enum tps_tdb_rc trc = TPS_TDB_OK;
    bool go = true;

    while (go && !cur.done) {
        struct tps_token *arr = NULL;
        size_t n = 0;
        trc = tps_tokendb_token_page(w->db, q, 200, &cur, &arr, &n);
        if (trc != TPS_TDB_OK)
            break;
        for (size_t i = 0; i < n && go; i++)
            go = fn(arg, &arr[i]);
        tps_tokens_free(arr, n);
    }
    tps_tokendb_cursor_cleanup(&cur);
    return trc == TPS_TDB_OK ? TPS_OK : tdb_fail(w, trc, err, errlen);
}

static enum tps_rc
b_token_set_status(void *p, struct tps_token *tok, enum tps_token_status to, char *err,
                   size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    struct tps_token_mod m;
    enum tps_tdb_rc trc;

    memset(&m, 0, sizeof(m));
    m.set_status = true;
    m.status = to;
    m.actor = TPS_TDB_AGENT;
    trc = tps_tokendb_token_update(w->db, tok, &m, NULL);
    return trc == TPS_TDB_OK ? TPS_OK : tdb_fail(w, trc, err, errlen);
}

static bool
b_transition_allowed(void *shared, enum tps_token_status from, enum tps_token_status to)
{
    const struct tps_admin_ldap *s = shared;
    return tps_tokendb_transition_allowed(s->tdb, TPS_TDB_AGENT, from, to);
}

static enum tps_rc
b_cert_list(void *p, const char *cuid, struct tps_token_cert **out, size_t *n, char *err,
            size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    enum tps_tdb_rc trc = tps_tokendb_cert_list(w->db, cuid, out, n);

    if (trc == TPS_TDB_ENOTFOUND) {
        *out = NULL;
        *n = 0;
        return TPS_OK;
    }
    return trc == TPS_TDB_OK ? TPS_OK : tdb_fail(w, trc, err, errlen);
}

static enum tps_rc
b_cert_set_status(void *p, const char *cn, const char *status, char *err, size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    enum tps_tdb_rc trc = tps_tokendb_cert_set_status(w->db, cn, status);

    return trc == TPS_TDB_OK ? TPS_OK : tdb_fail(w, trc, err, errlen);
}

static enum tps_rc
b_activity_add(void *p, const struct tps_token_activity *a, char *err, size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    enum tps_tdb_rc trc = tps_tokendb_activity_add(w->db, a, NULL, 0);

    return trc == TPS_TDB_OK ? TPS_OK : tdb_fail(w, trc, err, errlen);
}

struct act_rec {
    char *v[9]; /* id op result cuid user ip msg type date */
};

static const char *const act_names[9] = {"cn",       "tokenOp",     "tokenResult",
                                         "tokenID",  "tokenUserID", "tokenIP",
                                         "tokenMsg", "tokenType",   "dateOfCreate"};

struct act_parse {
    struct act_rec *recs; /* MAX_ACTIVITIES slots */
    size_t n;
};

static void
act_clear(struct act_parse *ap)
{
    for (size_t i = 0; i < ap->n; i++)
        for (size_t k = 0; k < 9; k++) {
            free(ap->recs[i].v[k]);
            ap->recs[i].v[k] = NULL;
        }
    ap->n = 0;
}

static char *
dup_value(LDAP *ld, LDAPMessage *e, const char *attr, bool *oom)
{
    struct berval **v = ldap_get_values_len(ld, e, attr);
    char *s = NULL;

    if (v != NULL && v[0] != NULL && memchr(v[0]->bv_val, '\0', v[0]->bv_len) == NULL) {
        s = malloc(v[0]->bv_len + 1);
        if (s != NULL) {
            memcpy(s, v[0]->bv_val, v[0]->bv_len);
            s[v[0]->bv_len] = '\0';
        } else {
            *oom = true;
        }
    }
    ldap_value_free_len(v);
    return s;
}

static bool
act_parse(LDAP *ld, LDAPMessage *res, void *arg)
{
    struct act_parse *ap = arg;
    bool oom = false;

    act_clear(ap);
    for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL && ap->n < MAX_ACTIVITIES;
         e = ldap_next_entry(ld, e)) {
        for (size_t k = 0; k < 9; k++)
            ap->recs[ap->n].v[k] = dup_value(ld, e, act_names[k], &oom);
        ap->n++;
    }
    return !oom;
}

static int
act_cmp(const void *x, const void *y)
{
    const struct act_rec *a = x, *b = y;
    int c = strcmp(b->v[8] ? b->v[8] : "", a->v[8] ? a->v[8] : ""); /* newest first */

    return c != 0 ? c : strcmp(b->v[0] ? b->v[0] : "", a->v[0] ? a->v[0] : "");
}

static enum tps_rc
b_activity_scan(void *p, const char *cuid, tps_admin_activity_fn *fn, void *arg, char *err,
                size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    char *attrs[10];
    char filter[200], esc[120];
    struct search s = {0};
    struct act_parse ap = {0};
    enum tps_rc rc;

    for (size_t i = 0; i < 9; i++)
        attrs[i] = (char *)(uintptr_t)act_names[i];
    attrs[9] = NULL;
    if (cuid != NULL) {
        if (tps_ldap_filter_escape(cuid, esc, sizeof(esc)) != TPS_TDB_OK)
            return TPS_EINVAL;
        snprintf(filter, sizeof(filter), "(&(objectClass=tokenActivity)(tokenID=%s))", esc);
    } else {
        snprintf(filter, sizeof(filter), "(objectClass=tokenActivity)");
    }
    ap.recs = calloc((size_t)MAX_ACTIVITIES, sizeof(*ap.recs));
    if (ap.recs == NULL)
        return TPS_ENOMEM;
    s.base = w->s->activity_base;
    s.scope = LDAP_SCOPE_ONELEVEL;
    s.filter = filter;
    s.attrs = attrs;
    s.sizelimit = MAX_ACTIVITIES;
    s.parse = act_parse;
    s.parg = &ap;
    rc = run_search(w, &s, err, errlen);
    if (rc != TPS_OK)
        goto out;
    qsort(ap.recs, ap.n, sizeof(*ap.recs), act_cmp);
    for (size_t i = 0; i < ap.n; i++) {
        const struct act_rec *r = &ap.recs[i];
        struct tps_admin_activity a = {
            .id = r->v[0], .op = r->v[1], .result = r->v[2], .cuid = r->v[3],
            .user_id = r->v[4], .ip = r->v[5], .msg = r->v[6], .type = r->v[7],
            .date = r->v[8],
        };
        if (!fn(arg, &a))
            break;
    }
out:
    act_clear(&ap);
    free(ap.recs);
    return rc;
}

static const char *
b_db_server(void *p, char *buf, size_t size)
{
    struct tps_admin_ldap_worker *w = p;
    return tps_ldap_conn_server(tps_tokendb_conn(w->db), buf, size);
}

/* ---- without a CA ----------------------------------------------------------------------- */

static enum tps_rc
no_ca_action(void *shared, const char *token_type, const char *key_type,
             enum tps_token_status from, enum tps_token_status to, enum tps_admin_ca_act *act,
             int *reason)
{
    (void)shared;
    (void)token_type;
    (void)key_type;
    (void)from;
    (void)to;
    *act = TPS_ADMIN_CA_NONE;
    *reason = 0;
    return TPS_EUNSUPP; /* no rule without a CA connector: certificates cannot follow */
}

static enum tps_rc
no_ca_change(void *w, const char *serial, int reason, char *clone, size_t clone_len, char *err,
             size_t errlen)
{
    (void)w;
    (void)serial;
    (void)reason;
    if (clone_len > 0)
        clone[0] = '\0';
    snprintf(err, errlen, "no CA connector is configured");
    return TPS_EBACKEND;
}

static enum tps_rc
no_ca_unrevoke(void *w, const char *serial, char *clone, size_t clone_len, char *err,
               size_t errlen)
{
    return no_ca_change(w, serial, 0, clone, clone_len, err, errlen);
}

void
tps_admin_ldap_backend(struct tps_admin_backend *be)
{
    memset(be, 0, sizeof(*be));
    be->worker_open = b_worker_open;
    be->worker_close = b_worker_close;
    be->whois = b_whois;
    be->token_get = b_token_get;
    be->token_scan = b_token_scan;
    be->token_set_status = b_token_set_status;
    be->transition_allowed = b_transition_allowed;
    be->cert_list = b_cert_list;
    be->certs_free = tps_token_certs_free;
    be->cert_set_status = b_cert_set_status;
    be->activity_scan = b_activity_scan;
    be->activity_add = b_activity_add;
    be->ca_action = no_ca_action;
    be->ca_revoke = no_ca_change;
    be->ca_unrevoke = no_ca_unrevoke;
    be->db_server = b_db_server;
}
