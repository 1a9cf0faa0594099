/* gateway/auth_ldap.c - LDAP login of token holders: search uid, bind as the found DN,
 * return the user's attributes; the password is wiped on every path and never logged. */
#include "gateway/auth_ldap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/tpsmsg.h"

#define MAX_UID 256

struct tps_auth_ldap_cfg {
    struct tps_ldap_target *target;
    char *base_dn;
    char *uid_attr;
    char *name;
    size_t nattrs;
    char *attrs[TPS_AUTH_MAX_ATTRS + 1]; /* NULL-terminated, for ldap_search */
};

struct tps_auth_ldap {
    const struct tps_auth_ldap_cfg *cfg; /* borrowed */
    struct tps_ldap_conn *conn;
};

static bool
valid_attr_name(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == ';'))
            return false;
    }
    return true;
}

enum tps_tdb_rc
tps_auth_ldap_cfg_new(const struct tps_auth_ldap_conf *c, struct tps_auth_ldap_cfg **out, char *err,
                      size_t err_size)
{
    struct tps_auth_ldap_cfg *cfg;
    const char *name = c->name ? c->name : "auth";
    const char *attrs = c->attributes ? c->attributes : "mail,cn,uid";
    const char *uid_attr = c->uid_attr ? c->uid_attr : "uid";
    enum tps_tdb_rc rc = TPS_TDB_ENOMEM;
    LDAPDN dn = NULL;

    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return TPS_TDB_ENOMEM;
    cfg->name = strdup(name);
    if (cfg->name == NULL)
        goto fail;
    if (c->base_dn == NULL || c->base_dn[0] == '\0' ||
        ldap_str2dn(c->base_dn, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
        snprintf(err, err_size, "%s.baseDN: '%s' is not a valid DN", name,
                 c->base_dn ? c->base_dn : "");
        rc = TPS_TDB_ECONFIG;
        goto fail;
    }
    ldap_dnfree(dn);
    cfg->base_dn = strdup(c->base_dn);
    if (cfg->base_dn == NULL)
        goto fail;
    if (!valid_attr_name(uid_attr, strlen(uid_attr))) {
        snprintf(err, err_size, "%s: '%s' is not an attribute name", name, uid_attr);
        rc = TPS_TDB_ECONFIG;
        goto fail;
    }
    cfg->uid_attr = strdup(uid_attr);
    if (cfg->uid_attr == NULL)
        goto fail;
    for (const char *p = attrs; *p != '\0';) {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            if (!valid_attr_name(p, n) || cfg->nattrs == TPS_AUTH_MAX_ATTRS) {
                snprintf(err, err_size,
                         "%s.attributes: '%s': expected up to %d comma-separated attribute "
                         "names",
                         name, attrs, TPS_AUTH_MAX_ATTRS);
                rc = TPS_TDB_ECONFIG;
                goto fail;
            }
            cfg->attrs[cfg->nattrs] = malloc(n + 1);
            if (cfg->attrs[cfg->nattrs] == NULL)
                goto fail;
            memcpy(cfg->attrs[cfg->nattrs], p, n);
            cfg->attrs[cfg->nattrs][n] = '\0';
            cfg->nattrs++;
        }
        p += n;
        p += strspn(p, ", ");
    }
    rc = tps_ldap_target_new(&c->ldap, name, &cfg->target, err, err_size);
    if (rc != TPS_TDB_OK)
        goto fail;
    *out = cfg;
    return TPS_TDB_OK;
fail:
    if (rc == TPS_TDB_ENOMEM && err_size > 0 && err[0] == '\0')
        snprintf(err, err_size, "%s: out of memory", name);
    tps_auth_ldap_cfg_free(cfg);
    return rc;
}

void
tps_auth_ldap_cfg_free(struct tps_auth_ldap_cfg *cfg)
{
    if (cfg == NULL)
        return;
    tps_ldap_target_free(cfg->target);
    for (size_t i = 0; i < cfg->nattrs; i++)
        free(cfg->attrs[i]);
    free(cfg->base_dn);
    free(cfg->uid_attr);
    free(cfg->name);
    free(cfg);
}

enum tps_tdb_rc
tps_auth_ldap_open(const struct tps_auth_ldap_cfg *cfg, struct tps_auth_ldap **out)
{
    struct tps_auth_ldap *a = calloc(1, sizeof(*a));

    *out = NULL;
    if (a == NULL)
        return TPS_TDB_ENOMEM;
    a->cfg = cfg;
    if (tps_ldap_conn_new(cfg->target, &a->conn) != TPS_TDB_OK) {
        free(a);
        return TPS_TDB_ENOMEM;
    }
    *out = a;
    return TPS_TDB_OK;
}

void
tps_auth_ldap_close(struct tps_auth_ldap *a)
{
    if (a == NULL)
        return;
    tps_ldap_conn_free(a->conn);
    free(a);
}

const char *
tps_auth_ldap_errmsg(const struct tps_auth_ldap *a)
{
    return tps_ldap_conn_errmsg(a->conn);
}

void
tps_auth_user_cleanup(struct tps_auth_user *u)
{
    if (u == NULL)
        return;
    free(u->dn);
    free(u->uid);
    for (size_t i = 0; i < u->n; i++) {
        free(u->names[i]);
        free(u->values[i]);
    }
    memset(u, 0, sizeof(*u));
}

const char *
tps_auth_user_get(const struct tps_auth_user *u, const char *name)
{
    for (size_t i = 0; i < u->n; i++)
        if (strcasecmp(u->names[i], name) == 0)
            return u->values[i];
    return NULL;
}

int
tps_auth_ldap_end_op_status(enum tps_tdb_rc rc)
{
    switch (rc) {
    case TPS_TDB_OK:
        return CMN_TPS_STATUS_NO_ERROR;
    case TPS_TDB_EDOWN:
    case TPS_TDB_EACCESS:
    case TPS_TDB_ELDAP:
    case TPS_TDB_ECONFIG:
        return CMN_TPS_STATUS_LDAP_CONN;
    default:
        return CMN_TPS_STATUS_LOGIN;
    }
}

/* Searches the uid and, on exactly one entry, copies it: the entry is parsed inside the
 * operation because parsing needs the handle that produced it. */
struct search_arg {
    const struct tps_auth_ldap_cfg *cfg;
    const char *filter;
    int count;                 /* entries found */
    enum tps_tdb_rc fill_rc;   /* result of copying the entry */
    struct tps_auth_user user; /* owned until handed to the caller */
};

static enum tps_tdb_rc fill_user(const struct tps_auth_ldap_cfg *cfg, LDAP *ld, LDAPMessage *e,
                                 struct tps_auth_user *u);

static int
search_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct search_arg *s = arg;
    LDAPMessage *res = NULL, *e;
    char *attrs[TPS_AUTH_MAX_ATTRS + 1];
    int lrc;

    /* libldap takes char **: copy the (const) configured list */
    memcpy(attrs, s->cfg->attrs, sizeof(attrs));
    tps_auth_user_cleanup(&s->user);
    s->count = 0;
    s->fill_rc = TPS_TDB_OK;
    lrc = ldap_search_ext_s(ld, s->cfg->base_dn, LDAP_SCOPE_SUBTREE, s->filter, attrs, 0, NULL,
                            NULL, tmo, 2, &res);
    if (lrc == LDAP_SUCCESS) {
        s->count = ldap_count_entries(ld, res);
        e = ldap_first_entry(ld, res);
        if (s->count == 1 && e != NULL)
            s->fill_rc = fill_user(s->cfg, ld, e, &s->user);
    }
    if (res != NULL)
        ldap_msgfree(res);
    return lrc;
}

struct bind_arg {
    struct tps_ldap_conn *conn;
    const char *dn;
    struct berval cred; /* points at the caller's password */
};

static int
user_bind_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct bind_arg *b = arg;

    (void)tmo;
    /* From here on the handle is (or may be) bound as the user: the next operation rebinds
     * as the service identity first. */
    tps_ldap_conn_need_rebind(b->conn);
    return ldap_sasl_bind_s(ld, b->dn, LDAP_SASL_SIMPLE, &b->cred, NULL, NULL, NULL);
}

/* Copies the DN and the configured attributes of e into u. */
static enum tps_tdb_rc
fill_user(const struct tps_auth_ldap_cfg *cfg, LDAP *ld, LDAPMessage *e, struct tps_auth_user *u)
{
    char *dn = ldap_get_dn(ld, e);

    if (dn == NULL)
        return TPS_TDB_ENOMEM;
    u->dn = strdup(dn);
    ldap_memfree(dn);
    if (u->dn == NULL)
        return TPS_TDB_ENOMEM;
    for (size_t i = 0; i < cfg->nattrs; i++) {
        struct berval **v = ldap_get_values_len(ld, e, cfg->attrs[i]);
        if (v == NULL)
            continue;
        if (v[0] != NULL) {
            u->names[u->n] = strdup(cfg->attrs[i]);
            u->values[u->n] = malloc(v[0]->bv_len + 1);
            if (u->names[u->n] == NULL || u->values[u->n] == NULL) {
                free(u->names[u->n]);
                free(u->values[u->n]);
                u->names[u->n] = u->values[u->n] = NULL;
                ldap_value_free_len(v);
                return TPS_TDB_ENOMEM;
            }
            memcpy(u->values[u->n], v[0]->bv_val, v[0]->bv_len);
            u->values[u->n][v[0]->bv_len] = '\0';
            u->n++;
        }
        ldap_value_free_len(v);
    }
    return TPS_TDB_OK;
}

enum tps_tdb_rc
tps_auth_ldap_login(struct tps_auth_ldap *a, const char *uid, char *password, size_t pw_len,
                    struct tps_auth_user *out)
{
    const struct tps_auth_ldap_cfg *cfg = a->cfg;
    char esc[3 * MAX_UID + 1], shown[3 * MAX_UID + 1], filter[3 * MAX_UID + 200];
    struct search_arg s;
    struct bind_arg b;
    enum tps_tdb_rc rc;
    const char *uid_val;
    int lrc;

    memset(out, 0, sizeof(*out));
    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.filter = filter;
    tps_ldap_conn_clearerr(a->conn);
    if (uid == NULL || uid[0] == '\0' || strlen(uid) > MAX_UID ||
        tps_ldap_filter_escape(uid, esc, sizeof(esc)) != TPS_TDB_OK) {
        tps_ldap_conn_seterr(a->conn, "%s: empty or over-long user name", cfg->name);
        rc = TPS_TDB_ENOUSER;
        goto out;
    }
    /* the uid as shown in messages: control characters and quotes cannot forge log lines */
    for (size_t i = 0;; i++) {
        unsigned char ch = (unsigned char)esc[i];
        shown[i] = (ch != 0 && (ch < 0x20 || ch == 0x7f || ch == '"')) ? '?' : (char)ch;
        if (ch == 0)
            break;
    }
    if (password == NULL || pw_len == 0) {
        /* RFC 4513 §5.1.2: an empty password makes an unauthenticated bind, which servers
         * accept; never send one. */
        tps_ldap_conn_seterr(a->conn, "%s: empty password for uid '%s'", cfg->name, shown);
        rc = TPS_TDB_ECREDS;
        goto out;
    }
    snprintf(filter, sizeof(filter), "(%s=%s)", cfg->uid_attr, esc);
    rc = tps_ldap_conn_run(a->conn, search_fn, &s, true, &lrc);
    if (rc != TPS_TDB_OK) {
        tps_ldap_conn_seterr(a->conn, "%s: user search under %s failed", cfg->name, cfg->base_dn);
        goto out;
    }
    if (lrc == LDAP_SIZELIMIT_EXCEEDED || (lrc == LDAP_SUCCESS && s.count > 1)) {
        tps_ldap_conn_seterr(a->conn, "%s: uid '%s' matches several entries under %s", cfg->name,
                             shown, cfg->base_dn);
        rc = TPS_TDB_ENOUSER;
        goto out;
    }
    if (lrc != LDAP_SUCCESS) {
        tps_ldap_conn_seterr(a->conn, "%s: user search under %s: %s (%d)", cfg->name, cfg->base_dn,
                             ldap_err2string(lrc), lrc);
        rc = lrc == LDAP_INSUFFICIENT_ACCESS ? TPS_TDB_EACCESS : TPS_TDB_ELDAP;
        goto out;
    }
    if (s.count == 0) {
        tps_ldap_conn_seterr(a->conn, "%s: uid '%s' not found under %s", cfg->name, shown,
                             cfg->base_dn);
        rc = TPS_TDB_ENOUSER;
        goto out;
    }
    rc = s.fill_rc;
    if (rc != TPS_TDB_OK)
        goto out;
    b.conn = a->conn;
    b.dn = s.user.dn;
    b.cred.bv_val = password;
    b.cred.bv_len = pw_len;
    rc = tps_ldap_conn_run(a->conn, user_bind_fn, &b, true, &lrc);
    if (rc != TPS_TDB_OK) {
        tps_ldap_conn_seterr(a->conn, "%s: bind as %s failed", cfg->name, s.user.dn);
        goto out;
    }
    if (lrc != LDAP_SUCCESS) {
        tps_ldap_conn_seterr(a->conn, "%s: bind as %s: %s (%d)", cfg->name, s.user.dn,
                             ldap_err2string(lrc), lrc);
        rc = TPS_TDB_ECREDS;
        goto out;
    }
    uid_val = tps_auth_user_get(&s.user, cfg->uid_attr);
    s.user.uid = strdup(uid_val ? uid_val : uid);
    if (s.user.uid == NULL) {
        rc = TPS_TDB_ENOMEM;
        goto out;
    }
    *out = s.user;
    memset(&s.user, 0, sizeof(s.user));
out:
    cmn_wipe(password, pw_len);
    tps_auth_user_cleanup(&s.user);
    return rc;
}

struct member_arg {
    const char *group_dn;
    const char *filter;
    int count;
};

static int
member_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct member_arg *m = arg;
    LDAPMessage *res = NULL;
    char *attrs[] = {(char[]){"1.1"}, NULL};
    int lrc;

    m->count = 0;
    lrc = ldap_search_ext_s(ld, m->group_dn, LDAP_SCOPE_BASE, m->filter, attrs, 0, NULL, NULL, tmo,
                            1, &res);
    if (lrc == LDAP_SUCCESS)
        m->count = ldap_count_entries(ld, res);
    if (res != NULL)
        ldap_msgfree(res);
    return lrc;
}

enum tps_tdb_rc
tps_auth_ldap_is_member(struct tps_auth_ldap *a, const char *group_dn, const char *dn,
                        bool *is_member)
{
    char esc[1600], filter[3400];
    struct member_arg m;
    enum tps_tdb_rc rc;
    int lrc;

    *is_member = false;
    tps_ldap_conn_clearerr(a->conn);
    if (group_dn == NULL || dn == NULL ||
        tps_ldap_filter_escape(dn, esc, sizeof(esc)) != TPS_TDB_OK)
        return TPS_TDB_EINVAL;
    snprintf(filter, sizeof(filter), "(|(uniqueMember=%s)(member=%s))", esc, esc);
    m.group_dn = group_dn;
    m.filter = filter;
    m.count = 0;
    rc = tps_ldap_conn_run(a->conn, member_fn, &m, true, &lrc);
    if (rc != TPS_TDB_OK)
        return rc;
    if (lrc == LDAP_NO_SUCH_OBJECT)
        return TPS_TDB_OK; /* no such group: nobody is a member */
    if (lrc != LDAP_SUCCESS) {
        tps_ldap_conn_seterr(a->conn, "%s: membership of %s: %s (%d)", a->cfg->name, group_dn,
                             ldap_err2string(lrc), lrc);
        return TPS_TDB_ELDAP;
    }
    *is_member = m.count == 1;
    return TPS_TDB_OK;
}
