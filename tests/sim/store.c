/* tests/sim/store.c - pki-sim records in the replicated LDAP pair (conf/ldap/schema/
 * pkisim.ldif): certificate records of the CA clones, key records of the KRA clones, and the
 * per-clone number ranges (dbs.*) that keep clones from colliding. */
#include "tests/sim/sim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <ldap.h>

#include "common/log.h"

const struct cmn_cfg_key sim_store_keys[] = {
    {.name = "internaldb.ldapconn.uri", .type = CFG_STR, .required = true,
     .doc = "LDAP URIs of the replicated pair, space-separated, in order"},
    {.name = "internaldb.basedn", .type = CFG_STR, .required = true,
     .doc = "subtree of this subsystem's records, e.g. ou=ca,o=pki-sim"},
    {.name = "internaldb.ldapauth.bindDN", .type = CFG_STR, .required = true},
    {.name = "internaldb.ldapauth.bindPW_file", .type = CFG_SECRET_FILE, .required = true},
    {.name = "dbs.beginSerialNumber", .type = CFG_STR, .defstr = "1",
     .doc = "first serial number (hex) of this clone's range"},
    {.name = "dbs.endSerialNumber", .type = CFG_STR, .defstr = "ffe0000",
     .doc = "last serial number (hex) of this clone's range"},
    {.name = "dbs.beginRequestNumber", .type = CFG_STR, .defstr = "1",
     .doc = "first request number (decimal) of this clone's range"},
    {.name = "dbs.endRequestNumber", .type = CFG_STR, .defstr = "9980000"},
    {0},
};

struct sim_store {
    char uri[1024], base[256], binddn[256], clone[64];
    char pw[256];
    char certs[300], keys[300];
    unsigned long long ser_begin, ser_end, req_begin, req_end;
    pthread_mutex_t lock;                /* guards next_ser, next_req */
    unsigned long long next_ser, next_req;
};

const char *
sim_store_clone(const struct sim_store *s)
{
    return s->clone;
}

void
sim_store_free(struct sim_store *s)
{
    if (s == NULL)
        return;
    cmn_wipe(s->pw, sizeof(s->pw));
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static enum cmn_rc
conn(struct sim_store *s, LDAP **out)
{
    LDAP *ld = NULL;
    int v3 = LDAP_VERSION3, rc;
    struct timeval tv = {.tv_sec = 3};
    struct berval cred = {.bv_val = s->pw, .bv_len = strlen(s->pw)};

    *out = NULL;
    if (ldap_initialize(&ld, s->uri) != LDAP_SUCCESS)
        return CMN_EIO;
    (void)ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    (void)ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    (void)ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    (void)ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    rc = ldap_sasl_bind_s(ld, s->binddn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    if (rc != LDAP_SUCCESS) {
        CMN_LOG(CMN_LOG_WARN, "store.bind", NULL, "uri=\"%s\" err=\"%s\"", s->uri,
                ldap_err2string(rc));
        ldap_unbind_ext_s(ld, NULL, NULL);
        return CMN_EIO;
    }
    *out = ld;
    return CMN_OK;
}

/* A modification list built from (type, value) pairs. */
#define MODS_MAX 24
struct mods {
    LDAPMod m[MODS_MAX];
    LDAPMod *p[MODS_MAX + 1];
    char *vals[MODS_MAX][2];
    char num[MODS_MAX][32];
    int n;
};

static void
mod_add(struct mods *ms, int op, const char *type, const char *val)
{
    int i = ms->n;

    if (i == MODS_MAX)
        return;
    ms->vals[i][0] = (char *)(uintptr_t)val;
    ms->vals[i][1] = NULL;
    ms->m[i].mod_op = op;
    ms->m[i].mod_type = (char *)(uintptr_t)type;
    ms->m[i].mod_values = val != NULL ? ms->vals[i] : NULL;
    ms->p[i] = &ms->m[i];
    ms->p[i + 1] = NULL;
    ms->n++;
}

static void
mod_num(struct mods *ms, int op, const char *type, long long v)
{
    if (ms->n == MODS_MAX)
        return;
    snprintf(ms->num[ms->n], sizeof(ms->num[ms->n]), "%lld", v);
    mod_add(ms, op, type, ms->num[ms->n]);
}

static void
mod_unum(struct mods *ms, int op, const char *type, unsigned long long v)
{
    if (ms->n == MODS_MAX)
        return;
    snprintf(ms->num[ms->n], sizeof(ms->num[ms->n]), "%llu", v);
    mod_add(ms, op, type, ms->num[ms->n]);
}

static void
mod_str(struct mods *ms, const char *type, const char *v)
{
    if (v != NULL && v[0] != '\0')
        mod_add(ms, LDAP_MOD_ADD, type, v);
}

/* Adds an entry; LDAP_ALREADY_EXISTS is success when ok_exists. */
static enum cmn_rc
add_entry(struct sim_store *s, const char *dn, struct mods *ms, bool ok_exists)
{
    LDAP *ld;
    enum cmn_rc rc = conn(s, &ld);
    int lrc;

    if (rc != CMN_OK)
        return rc;
    lrc = ldap_add_ext_s(ld, dn, ms->p, NULL, NULL);
    ldap_unbind_ext_s(ld, NULL, NULL);
    if (lrc == LDAP_SUCCESS || (ok_exists && lrc == LDAP_ALREADY_EXISTS))
        return CMN_OK;
    CMN_LOG(CMN_LOG_WARN, "store.add", NULL, "dn=\"%s\" err=\"%s\"", dn, ldap_err2string(lrc));
    return lrc == LDAP_ALREADY_EXISTS ? CMN_EPROTO : CMN_EIO;
}

static enum cmn_rc
ensure_container(struct sim_store *s, const char *dn)
{
    struct mods ms;
    char val[128];
    const char *eq = strchr(dn, '='), *comma = strchr(dn, ',');

    memset(&ms, 0, sizeof(ms));
    if (eq == NULL)
        return CMN_EINVAL;
    snprintf(val, sizeof(val), "%.*s", (int)((comma != NULL ? comma : dn + strlen(dn)) - eq - 1),
             eq + 1);
    if (strncmp(dn, "o=", 2) == 0) {
        mod_add(&ms, LDAP_MOD_ADD, "objectClass", "organization");
        mod_add(&ms, LDAP_MOD_ADD, "o", val);
    } else if (strncmp(dn, "ou=", 3) == 0) {
        mod_add(&ms, LDAP_MOD_ADD, "objectClass", "organizationalUnit");
        mod_add(&ms, LDAP_MOD_ADD, "ou", val);
    } else {
        return CMN_EINVAL;
    }
    return add_entry(s, dn, &ms, true);
}

/* Highest value of `attr` among entries of class `oc` under `base` within [lo, hi]; lo-1
 * when none. */
static enum cmn_rc
max_in_range(struct sim_store *s, const char *base, const char *oc, const char *attr,
             unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
    LDAP *ld;
    LDAPMessage *res = NULL;
    char filter[256];
    char *attrs[] = {(char *)(uintptr_t)attr, NULL};
    enum cmn_rc rc = conn(s, &ld);
    int lrc;

    *out = lo - 1;
    if (rc != CMN_OK)
        return rc;
    snprintf(filter, sizeof(filter), "(&(objectClass=%s)(%s>=%llu)(%s<=%llu))", oc, attr, lo,
             attr, hi);
    lrc = ldap_search_ext_s(ld, base, LDAP_SCOPE_ONELEVEL, filter, attrs, 0, NULL, NULL, NULL,
                            0, &res);
    if (lrc != LDAP_SUCCESS && lrc != LDAP_NO_SUCH_OBJECT) {
        rc = CMN_EIO;
        goto out;
    }
    for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
        struct berval **v = ldap_get_values_len(ld, e, attr);
        unsigned long long n;

        if (v != NULL && v[0] != NULL && v[0]->bv_len < 32) {
            char t[32];

            memcpy(t, v[0]->bv_val, v[0]->bv_len);
            t[v[0]->bv_len] = '\0';
            if (cmn_parse_uint(t, 0, ~0ULL, &n) == CMN_OK && n > *out + 0 && n >= lo)
                *out = n;
        }
        ldap_value_free_len(v);
    }
out:
    ldap_msgfree(res);
    ldap_unbind_ext_s(ld, NULL, NULL);
    return rc;
}

static bool
parse_num(const char *s, bool hex, unsigned long long *v)
{
    char *end;

    if (s == NULL || s[0] == '\0')
        return false;
    *v = strtoull(s, &end, hex ? 16 : 10);
    return *end == '\0';
}

enum cmn_rc
sim_store_new(const struct cmn_cfg *cfg, const char *clone, struct cmn_buf *errs,
              struct sim_store **out)
{
    struct sim_store *s = calloc(1, sizeof(*s));
    const char *id = cmn_cfg_str(cfg, "pkisim.instanceId");
    uint8_t pw[255];
    size_t pl = 0;
    unsigned long long m;
    enum cmn_rc rc = CMN_ECONFIG;

    *out = NULL;
    if (s == NULL)
        return CMN_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->clone, sizeof(s->clone), "%s", id != NULL && id[0] ? id : clone);
    snprintf(s->uri, sizeof(s->uri), "%s", cmn_cfg_str(cfg, "internaldb.ldapconn.uri"));
    snprintf(s->base, sizeof(s->base), "%s", cmn_cfg_str(cfg, "internaldb.basedn"));
    snprintf(s->binddn, sizeof(s->binddn), "%s", cmn_cfg_str(cfg, "internaldb.ldapauth.bindDN"));
    snprintf(s->certs, sizeof(s->certs), "ou=certificateRepository,%s", s->base);
    snprintf(s->keys, sizeof(s->keys), "ou=keyRepository,%s", s->base);
    if (cmn_cfg_secret_read(cfg, "internaldb.ldapauth.bindPW_file", pw, sizeof(pw), &pl) !=
        CMN_OK) {
        (void)cmn_buf_puts(errs, "internaldb.ldapauth.bindPW_file: cannot read it (mode must "
                                 "deny group and others)\n");
        goto fail;
    }
    memcpy(s->pw, pw, pl);
    s->pw[pl] = '\0';
    cmn_wipe(pw, sizeof(pw));
    if (!parse_num(cmn_cfg_str(cfg, "dbs.beginSerialNumber"), true, &s->ser_begin) ||
        !parse_num(cmn_cfg_str(cfg, "dbs.endSerialNumber"), true, &s->ser_end) ||
        s->ser_begin == 0 || s->ser_end < s->ser_begin) {
        (void)cmn_buf_puts(errs, "dbs.beginSerialNumber/dbs.endSerialNumber: need hex numbers "
                                 "with 0 < begin <= end\n");
        goto fail;
    }
    if (!parse_num(cmn_cfg_str(cfg, "dbs.beginRequestNumber"), false, &s->req_begin) ||
        !parse_num(cmn_cfg_str(cfg, "dbs.endRequestNumber"), false, &s->req_end) ||
        s->req_begin == 0 || s->req_end < s->req_begin) {
        (void)cmn_buf_puts(errs, "dbs.beginRequestNumber/dbs.endRequestNumber: need decimal "
                                 "numbers with 0 < begin <= end\n");
        goto fail;
    }
    if (ensure_container(s, s->base) != CMN_OK || ensure_container(s, s->certs) != CMN_OK ||
        ensure_container(s, s->keys) != CMN_OK) {
        (void)cmn_buf_printf(errs, "internaldb: cannot reach %s or create %s (check the "
                                   "URIs, bind DN and password)\n",
                             s->uri, s->certs);
        rc = CMN_EIO;
        goto fail;
    }
    /* Continue after what this clone's range already holds (a restarted clone must not
     * reissue a serial). Certificates and keys use the serial range, requests theirs. */
    if (max_in_range(s, s->certs, "pkisimCertRecord", "pkisimSerial", s->ser_begin, s->ser_end,
                     &s->next_ser) != CMN_OK ||
        max_in_range(s, s->keys, "pkisimKeyRecord", "pkisimSerial", s->ser_begin, s->ser_end,
                     &m) != CMN_OK ||
        max_in_range(s, s->certs, "pkisimCertRecord", "pkisimRequestId", s->req_begin,
                     s->req_end, &s->next_req) != CMN_OK) {
        (void)cmn_buf_printf(errs, "internaldb: cannot search %s\n", s->base);
        rc = CMN_EIO;
        goto fail;
    }
    if (m > s->next_ser)
        s->next_ser = m;
    s->next_ser++;
    s->next_req++;
    *out = s;
    return CMN_OK;
fail:
    sim_store_free(s);
    return rc;
}

enum cmn_rc
sim_store_next(struct sim_store *s, bool request, unsigned long long *out)
{
    enum cmn_rc rc = CMN_OK;

    pthread_mutex_lock(&s->lock);
    if (request) {
        if (s->next_req > s->req_end)
            rc = CMN_ETOOBIG;
        else
            *out = s->next_req++;
    } else {
        if (s->next_ser > s->ser_end)
            rc = CMN_ETOOBIG;
        else
            *out = s->next_ser++;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

enum cmn_rc
sim_store_cert_add(struct sim_store *s, const struct sim_cert_rec *r)
{
    struct mods ms;
    char dn[400], cn[32];

    memset(&ms, 0, sizeof(ms));
    snprintf(cn, sizeof(cn), "%llu", r->serial);
    snprintf(dn, sizeof(dn), "cn=%s,%s", cn, s->certs);
    mod_add(&ms, LDAP_MOD_ADD, "objectClass", "pkisimCertRecord");
    mod_add(&ms, LDAP_MOD_ADD, "cn", cn);
    mod_unum(&ms, LDAP_MOD_ADD, "pkisimSerial", r->serial);
    mod_add(&ms, LDAP_MOD_ADD, "pkisimStatus", r->status);
    mod_add(&ms, LDAP_MOD_ADD, "pkisimCertB64", r->cert_b64);
    mod_unum(&ms, LDAP_MOD_ADD, "pkisimRequestId", r->reqid);
    mod_num(&ms, LDAP_MOD_ADD, "pkisimNotAfter", r->not_after);
    mod_str(&ms, "pkisimProfile", r->profile);
    mod_str(&ms, "pkisimCuid", r->cuid);
    mod_str(&ms, "pkisimUserId", r->user);
    mod_str(&ms, "pkisimSubject", r->subject);
    mod_str(&ms, "pkisimClone", r->clone);
    mod_str(&ms, "pkisimPubKeyHash", r->pubhash);
    if (r->renewed_from != 0)
        mod_unum(&ms, LDAP_MOD_ADD, "pkisimRenewedFrom", r->renewed_from);
    return add_entry(s, dn, &ms, false);
}

static void
copy_attr(LDAP *ld, LDAPMessage *e, const char *attr, char *out, size_t n)
{
    struct berval **v = ldap_get_values_len(ld, e, attr);

    out[0] = '\0';
    if (v != NULL && v[0] != NULL && v[0]->bv_len < n) {
        memcpy(out, v[0]->bv_val, v[0]->bv_len);
        out[v[0]->bv_len] = '\0';
    }
    ldap_value_free_len(v);
}

static long long
num_attr(LDAP *ld, LDAPMessage *e, const char *attr, long long def)
{
    char t[32];
    char *end;
    long long v;

    copy_attr(ld, e, attr, t, sizeof(t));
    if (t[0] == '\0')
        return def;
    v = strtoll(t, &end, 10);
    return *end == '\0' ? v : def;
}

/* Reads one entry by DN into a callback-filled record. */
static enum cmn_rc
read_entry(struct sim_store *s, const char *base, int scope, const char *filter,
           void (*fill)(LDAP *, LDAPMessage *, void *), void *arg)
{
    LDAP *ld;
    LDAPMessage *res = NULL, *e;
    enum cmn_rc rc = conn(s, &ld);
    int lrc;

    if (rc != CMN_OK)
        return rc;
    lrc = ldap_search_ext_s(ld, base, scope, filter, NULL, 0, NULL, NULL, NULL, 0, &res);
    if (lrc == LDAP_NO_SUCH_OBJECT) {
        rc = CMN_ENOTFOUND;
        goto out;
    }
    if (lrc != LDAP_SUCCESS) {
        rc = CMN_EIO;
        goto out;
    }
    e = ldap_first_entry(ld, res);
    if (e == NULL) {
        rc = CMN_ENOTFOUND;
        goto out;
    }
    /* key lookups by hash take the newest (highest id) record */
    for (LDAPMessage *x = ldap_next_entry(ld, e); x != NULL; x = ldap_next_entry(ld, x))
        if (num_attr(ld, x, "pkisimSerial", 0) > num_attr(ld, e, "pkisimSerial", 0))
            e = x;
    fill(ld, e, arg);
out:
    ldap_msgfree(res);
    ldap_unbind_ext_s(ld, NULL, NULL);
    return rc;
}

static void
fill_cert(LDAP *ld, LDAPMessage *e, void *arg)
{
    struct sim_cert_rec *r = arg;

    memset(r, 0, sizeof(*r));
    r->serial = (unsigned long long)num_attr(ld, e, "pkisimSerial", 0);
    r->reqid = (unsigned long long)num_attr(ld, e, "pkisimRequestId", 0);
    r->renewed_from = (unsigned long long)num_attr(ld, e, "pkisimRenewedFrom", 0);
    r->reason = (int)num_attr(ld, e, "pkisimRevReason", -1);
    r->revoked_on = num_attr(ld, e, "pkisimRevokedOn", 0);
    r->not_after = num_attr(ld, e, "pkisimNotAfter", 0);
    copy_attr(ld, e, "pkisimStatus", r->status, sizeof(r->status));
    copy_attr(ld, e, "pkisimCertB64", r->cert_b64, sizeof(r->cert_b64));
    copy_attr(ld, e, "pkisimProfile", r->profile, sizeof(r->profile));
    copy_attr(ld, e, "pkisimCuid", r->cuid, sizeof(r->cuid));
    copy_attr(ld, e, "pkisimUserId", r->user, sizeof(r->user));
    copy_attr(ld, e, "pkisimSubject", r->subject, sizeof(r->subject));
    copy_attr(ld, e, "pkisimClone", r->clone, sizeof(r->clone));
    copy_attr(ld, e, "pkisimPubKeyHash", r->pubhash, sizeof(r->pubhash));
}

enum cmn_rc
sim_store_cert_get(struct sim_store *s, unsigned long long serial, struct sim_cert_rec *r)
{
    char dn[400];

    snprintf(dn, sizeof(dn), "cn=%llu,%s", serial, s->certs);
    return read_entry(s, dn, LDAP_SCOPE_BASE, "(objectClass=pkisimCertRecord)", fill_cert, r);
}

enum cmn_rc
sim_store_cert_set_status(struct sim_store *s, unsigned long long serial,
                          const char *old_status, int old_reason, const char *new_status,
                          int new_reason)
{
    struct mods ms;
    char dn[400];
    LDAP *ld;
    enum cmn_rc rc;
    int lrc;

    memset(&ms, 0, sizeof(ms));
    snprintf(dn, sizeof(dn), "cn=%llu,%s", serial, s->certs);
    /* Deleting the expected old value fails with noSuchAttribute if another clone changed
     * the record first: the modify is all-or-nothing, so this is a test-and-set. */
    mod_add(&ms, LDAP_MOD_DELETE, "pkisimStatus", old_status);
    mod_add(&ms, LDAP_MOD_ADD, "pkisimStatus", new_status);
    if (old_reason >= 0)
        mod_num(&ms, LDAP_MOD_DELETE, "pkisimRevReason", old_reason);
    if (new_reason >= 0) {
        mod_num(&ms, old_reason >= 0 ? LDAP_MOD_ADD : LDAP_MOD_REPLACE, "pkisimRevReason",
                new_reason);
        mod_num(&ms, LDAP_MOD_REPLACE, "pkisimRevokedOn", (long long)time(NULL));
    } else {
        if (old_reason < 0)
            mod_add(&ms, LDAP_MOD_REPLACE, "pkisimRevReason", NULL);
        mod_add(&ms, LDAP_MOD_REPLACE, "pkisimRevokedOn", NULL);
    }
    rc = conn(s, &ld);
    if (rc != CMN_OK)
        return rc;
    lrc = ldap_modify_ext_s(ld, dn, ms.p, NULL, NULL);
    ldap_unbind_ext_s(ld, NULL, NULL);
    if (lrc == LDAP_SUCCESS)
        return CMN_OK;
    if (lrc == LDAP_NO_SUCH_OBJECT)
        return CMN_ENOTFOUND;
    if (lrc == LDAP_NO_SUCH_ATTRIBUTE)
        return CMN_EPROTO;
    CMN_LOG(CMN_LOG_WARN, "store.modify", NULL, "dn=\"%s\" err=\"%s\"", dn, ldap_err2string(lrc));
    return CMN_EIO;
}

enum cmn_rc
sim_store_key_add(struct sim_store *s, const struct sim_key_rec *r)
{
    struct mods ms;
    char dn[400], cn[32];

    memset(&ms, 0, sizeof(ms));
    snprintf(cn, sizeof(cn), "%llu", r->id);
    snprintf(dn, sizeof(dn), "cn=%s,%s", cn, s->keys);
    mod_add(&ms, LDAP_MOD_ADD, "objectClass", "pkisimKeyRecord");
    mod_add(&ms, LDAP_MOD_ADD, "cn", cn);
    mod_unum(&ms, LDAP_MOD_ADD, "pkisimSerial", r->id);
    mod_add(&ms, LDAP_MOD_ADD, "pkisimWrappedKeyB64", r->wrapped_b64);
    mod_str(&ms, "pkisimPubKeyB64", r->pub_b64);
    mod_str(&ms, "pkisimPubKeyHash", r->pubhash);
    mod_str(&ms, "pkisimCuid", r->cuid);
    mod_str(&ms, "pkisimUserId", r->user);
    mod_str(&ms, "pkisimKeyAlg", r->alg);
    mod_str(&ms, "pkisimClone", r->clone);
    return add_entry(s, dn, &ms, false);
}

static void
fill_key(LDAP *ld, LDAPMessage *e, void *arg)
{
    struct sim_key_rec *r = arg;

    memset(r, 0, sizeof(*r));
    r->id = (unsigned long long)num_attr(ld, e, "pkisimSerial", 0);
    copy_attr(ld, e, "pkisimWrappedKeyB64", r->wrapped_b64, sizeof(r->wrapped_b64));
    copy_attr(ld, e, "pkisimPubKeyB64", r->pub_b64, sizeof(r->pub_b64));
    copy_attr(ld, e, "pkisimPubKeyHash", r->pubhash, sizeof(r->pubhash));
    copy_attr(ld, e, "pkisimCuid", r->cuid, sizeof(r->cuid));
    copy_attr(ld, e, "pkisimUserId", r->user, sizeof(r->user));
    copy_attr(ld, e, "pkisimKeyAlg", r->alg, sizeof(r->alg));
    copy_attr(ld, e, "pkisimClone", r->clone, sizeof(r->clone));
}

enum cmn_rc
sim_store_key_get(struct sim_store *s, unsigned long long id, struct sim_key_rec *r)
{
    char dn[400];

    snprintf(dn, sizeof(dn), "cn=%llu,%s", id, s->keys);
    return read_entry(s, dn, LDAP_SCOPE_BASE, "(objectClass=pkisimKeyRecord)", fill_key, r);
}

enum cmn_rc
sim_store_key_find(struct sim_store *s, const char *pubhash, struct sim_key_rec *r)
{
    char filter[160];

    for (const char *p = pubhash; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return CMN_EINVAL; /* the filter takes hex only: nothing to escape */
    snprintf(filter, sizeof(filter), "(&(objectClass=pkisimKeyRecord)(pkisimPubKeyHash=%s))",
             pubhash);
    return read_entry(s, s->keys, LDAP_SCOPE_ONELEVEL, filter, fill_key, r);
}
