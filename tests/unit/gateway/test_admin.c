/* tests/unit/gateway/test_admin.c - the admin REST API and console handler (gateway/admin.c)
 * driven through real HTTP requests over an in-memory transport, with a fake token DB, staff
 * directory and CA: routing, roles, CSRF and content-type rules, JSON shapes, paging, status
 * transitions allowed and denied, CA-first ordering and failures, the audit trail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/log.h"
#include "common/cfg.h"
#include "gateway/admin.h"
#include "gateway/admin_ldap.h"

/* ---- fake token DB, directory and CA ---------------------------------------------------- */

#define NTOK 30
#define NCERT 8
#define NACT 64

struct ftoken {
    char cuid[41];
    char user[32];
    char type[32];
    enum tps_token_status status;
    char lease[200];
};

struct fcert {
    char cn[32], cuid[41], serial[16], status[24], key_type[16];
};

struct fact {
    char id[16], op[32], result[16], cuid[41], msg[700], type[32], date[20];
};

static struct fake {
    struct ftoken tok[NTOK];
    size_t ntok;
    struct fcert cert[NCERT];
    size_t ncert;
    struct fact act[NACT];
    size_t nact;
    bool allowed[8][8];
    int ca_fail_at;       /* fail the n-th CA call (1-based); 0: never */
    int ca_calls;
    char ca_log[8][64];   /* "revoke <serial> <reason>" / "unrevoke <serial>" */
    int set_status_calls;
    bool db_down;
    char dir[128];
} F;

static struct ftoken *
ftok(const char *cuid)
{
    for (size_t i = 0; i < F.ntok; i++)
        if (strcmp(F.tok[i].cuid, cuid) == 0)
            return &F.tok[i];
    return NULL;
}

/* Status of a fake token; fails the test when it does not exist. */
static enum tps_token_status
fstatus(const char *cuid)
{
    struct ftoken *f = ftok(cuid);
    if (f == NULL)
        fail_msg("no fake token %s", cuid);
    return f ? f->status : TPS_TOKEN_UNKNOWN;
}

static void
fake_reset(void)
{
    const char *tbl = TPS_TOKENDB_DEFAULT_TRANSITIONS;

    memset(&F.tok, 0, sizeof(F.tok));
    F.ntok = 0;
    F.ncert = 0;
    F.nact = 0;
    F.ca_fail_at = 0;
    F.ca_calls = 0;
    F.set_status_calls = 0;
    F.db_down = false;
    memset(F.allowed, 0, sizeof(F.allowed));
    /* the default agent table of tokendb §1.7, "from:to,..." */
    while (*tbl) {
        int from = tbl[0] - '0', to = tbl[2] - '0';
        F.allowed[from][to] = true;
        tbl += 3;
        if (*tbl == ',')
            tbl++;
    }
    /* 25 user tokens: 0..19 userKey ACTIVE (alice*), 20..24 soKey FORMATTED (bob) */
    for (int i = 0; i < 25; i++) {
        struct ftoken *t = &F.tok[F.ntok++];
        snprintf(t->cuid, sizeof(t->cuid), "A0000000000000000%03d", i);
        snprintf(t->user, sizeof(t->user), i < 20 ? "alice%d" : "bob", i);
        snprintf(t->type, sizeof(t->type), "%s", i < 20 ? "userKey" : "soKey");
        t->status = i < 20 ? TPS_TOKEN_ACTIVE : TPS_TOKEN_FORMATTED;
    }
    /* token 0 has a signing and an encryption certificate; token 1 two certs on hold */
    for (int i = 0; i < 4; i++) {
        struct fcert *c = &F.cert[F.ncert++];
        snprintf(c->cn, sizeof(c->cn), "c%d", i);
        memcpy(c->cuid, F.tok[i < 2 ? 0 : 1].cuid, sizeof(c->cuid));
        snprintf(c->serial, sizeof(c->serial), "0x%x", 0x10 + i);
        snprintf(c->status, sizeof(c->status), "%s", i < 2 ? "active" : "revoked_on_hold");
        snprintf(c->key_type, sizeof(c->key_type), "%s", i % 2 ? "encryption" : "signing");
    }
    F.tok[1].status = TPS_TOKEN_SUSPENDED;
    for (int i = 0; i < 12; i++) {
        struct fact *a = &F.act[F.nact++];
        snprintf(a->id, sizeof(a->id), "act%02d", i);
        snprintf(a->op, sizeof(a->op), "%s", i % 2 ? "enrollment" : "format");
        snprintf(a->result, sizeof(a->result), "success");
        memcpy(a->cuid, F.tok[i % 3 == 0 ? 0 : 2].cuid, sizeof(a->cuid));
        snprintf(a->type, sizeof(a->type), "userKey");
        snprintf(a->date, sizeof(a->date), "202501010000%02uZ", (unsigned)i % 60u);
    }
}

static char *
dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

static void
fill_token(const struct ftoken *f, struct tps_token *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->cuid, sizeof(t->cuid), "%s", f->cuid);
    t->user_id = dup_or_null(f->user);
    t->type = dup_or_null(f->type);
    t->status = f->status;
    t->status_raw = strdup(tps_token_status_name(f->status));
    t->reason = dup_or_null(tps_token_status_reason(f->status));
    t->date_create = strdup("20250101000000Z");
    t->lease_value = dup_or_null(f->lease);
    t->modified = 1;
}

static enum tps_rc
f_worker_open(void *shared, void **w, char *err, size_t errlen)
{
    (void)shared;
    (void)err;
    (void)errlen;
    *w = &F;
    return TPS_OK;
}

static void
f_worker_close(void *w)
{
    (void)w;
}

static enum tps_rc
f_whois(void *w, const struct tps_admin_peer *peer, struct tps_admin_staff *out, char *err,
        size_t errlen)
{
    const char *fp = peer->fingerprint;

    (void)w;
    memset(out, 0, sizeof(*out));
    if (F.db_down) {
        snprintf(err, errlen, "ldap down");
        return TPS_EDB;
    }
    if (strncmp(fp, "fp-", 3) != 0) {
        snprintf(err, errlen, "no entry");
        return TPS_ENOTFOUND;
    }
    snprintf(out->uid, sizeof(out->uid), "%s", fp + 3);
    snprintf(out->dn, sizeof(out->dn), "uid=%s,ou=People,dc=t", fp + 3);
    out->all_profiles = true;
    if (strcmp(fp, "fp-agent") == 0)
        out->roles = TPS_ADMIN_ROLE_AGENT;
    else if (strcmp(fp, "fp-operator") == 0)
        out->roles = TPS_ADMIN_ROLE_OPERATOR;
    else if (strcmp(fp, "fp-admin") == 0)
        out->roles = TPS_ADMIN_ROLE_ADMIN | TPS_ADMIN_ROLE_AGENT | TPS_ADMIN_ROLE_OPERATOR;
    else if (strcmp(fp, "fp-scoped") == 0) {
        out->roles = TPS_ADMIN_ROLE_AGENT;
        out->all_profiles = false;
        out->n_profiles = 1;
        snprintf(out->profiles[0], sizeof(out->profiles[0]), "soKey");
    }
    return TPS_OK;
}

static enum tps_rc
f_token_get(void *w, const char *cuid, struct tps_token *out, char *err, size_t errlen)
{
    struct ftoken *f = ftok(cuid);

    (void)w;
    memset(out, 0, sizeof(*out));
    if (F.db_down) {
        snprintf(err, errlen, "ldap down");
        return TPS_EDB;
    }
    if (f == NULL)
        return TPS_ENOTFOUND;
    fill_token(f, out);
    return TPS_OK;
}

static enum tps_rc
f_token_scan(void *w, const struct tps_token_query *q, tps_admin_token_fn *fn, void *arg,
             char *err, size_t errlen)
{
    (void)w;
    (void)err;
    (void)errlen;
    for (size_t i = 0; i < F.ntok; i++) {
        struct tps_token t;
        bool go;
        if (q->user_id && strcmp(q->user_id, F.tok[i].user) != 0)
            continue;
        if (q->type && strcmp(q->type, F.tok[i].type) != 0)
            continue;
        if (q->status && strcmp(q->status, tps_token_status_name(F.tok[i].status)) != 0)
            continue;
        fill_token(&F.tok[i], &t);
        go = fn(arg, &t);
        tps_token_cleanup(&t);
        if (!go)
            break;
    }
    return TPS_OK;
}

static bool
f_transition_allowed(void *shared, enum tps_token_status from, enum tps_token_status to)
{
    (void)shared;
    return F.allowed[from][to];
}

static enum tps_rc
f_token_set_status(void *w, struct tps_token *tok, enum tps_token_status to, char *err,
                   size_t errlen)
{
    struct ftoken *f = ftok(tok->cuid);

    (void)w;
    F.set_status_calls++;
    if (f == NULL)
        return TPS_ENOTFOUND;
    if (!F.allowed[f->status][to]) {
        snprintf(err, errlen, "transition");
        return TPS_EPOLICY;
    }
    f->status = to;
    tok->status = to;
    return TPS_OK;
}

static enum tps_rc
f_cert_list(void *w, const char *cuid, struct tps_token_cert **out, size_t *n, char *err,
            size_t errlen)
{
    struct tps_token_cert *arr = calloc(NCERT, sizeof(*arr));

    (void)w;
    (void)err;
    (void)errlen;
    *n = 0;
    for (size_t i = 0; i < F.ncert; i++) {
        if (strcmp(F.cert[i].cuid, cuid) != 0)
            continue;
        arr[*n].cn = F.cert[i].cn;
        arr[*n].cuid = F.cert[i].cuid;
        arr[*n].serial = F.cert[i].serial;
        arr[*n].status = F.cert[i].status;
        arr[*n].key_type = F.cert[i].key_type;
        arr[*n].subject = "CN=Alice";
        (*n)++;
    }
    *out = arr;
    return TPS_OK;
}

static void
f_certs_free(struct tps_token_cert *arr, size_t n)
{
    (void)n;
    free(arr);
}

static enum tps_rc
f_cert_set_status(void *w, const char *cn, const char *status, char *err, size_t errlen)
{
    (void)w;
    (void)err;
    (void)errlen;
    for (size_t i = 0; i < F.ncert; i++)
        if (strcmp(F.cert[i].cn, cn) == 0) {
            snprintf(F.cert[i].status, sizeof(F.cert[i].status), "%s", status);
            return TPS_OK;
        }
    return TPS_ENOTFOUND;
}

static enum tps_rc
f_activity_scan(void *w, const char *cuid, tps_admin_activity_fn *fn, void *arg, char *err,
                size_t errlen)
{
    (void)w;
    (void)err;
    (void)errlen;
    for (size_t k = F.nact; k > 0; k--) { /* newest first */
        struct fact *x = &F.act[k - 1];
        struct tps_admin_activity a = {.id = x->id, .op = x->op, .result = x->result,
                                       .cuid = x->cuid, .msg = x->msg, .type = x->type,
                                       .date = x->date};
        if (cuid && strcmp(cuid, x->cuid) != 0)
            continue;
        if (!fn(arg, &a))
            break;
    }
    return TPS_OK;
}

static enum tps_rc
f_activity_add(void *w, const struct tps_token_activity *a, char *err, size_t errlen)
{
    struct fact *x;

    (void)w;
    (void)err;
    (void)errlen;
    if (F.nact >= NACT)
        return TPS_EDB;
    x = &F.act[F.nact++];
    snprintf(x->id, sizeof(x->id), "act%02zu", F.nact);
    snprintf(x->op, sizeof(x->op), "%s", a->op);
    snprintf(x->result, sizeof(x->result), "%s", a->result);
    snprintf(x->cuid, sizeof(x->cuid), "%s", a->cuid);
    snprintf(x->msg, sizeof(x->msg), "%s", a->msg ? a->msg : "");
    snprintf(x->type, sizeof(x->type), "%s", a->type ? a->type : "");
    snprintf(x->date, sizeof(x->date), "20990101000000Z");
    return TPS_OK;
}

/* A simplified §1.7 rule set: lost/terminated revoke keyCompromise, damaged unspecified,
 * suspended on hold, suspended -> active unrevoke. */
static enum tps_rc
f_ca_action(void *shared, const char *token_type, const char *key_type,
            enum tps_token_status from, enum tps_token_status to, enum tps_admin_ca_act *act,
            int *reason)
{
    (void)shared;
    (void)token_type;
    (void)key_type;
    *act = TPS_ADMIN_CA_NONE;
    *reason = 0;
    if (to == TPS_TOKEN_PERM_LOST || to == TPS_TOKEN_TERMINATED) {
        *act = TPS_ADMIN_CA_REVOKE;
        *reason = 1;
    } else if (to == TPS_TOKEN_DAMAGED) {
        *act = TPS_ADMIN_CA_REVOKE;
    } else if (to == TPS_TOKEN_SUSPENDED) {
        *act = TPS_ADMIN_CA_REVOKE;
        *reason = 6;
    } else if (from == TPS_TOKEN_SUSPENDED && to == TPS_TOKEN_ACTIVE) {
        *act = TPS_ADMIN_CA_UNREVOKE;
    }
    return TPS_OK;
}

static enum tps_rc
f_ca_call(const char *what, const char *serial, int reason, char *clone, size_t clone_len,
          char *err, size_t errlen)
{
    F.ca_calls++;
    if (F.ca_fail_at == F.ca_calls) {
        snprintf(err, errlen, "unknown: both clones timed out");
        snprintf(clone, clone_len, "ca1 127.0.0.1:1");
        return TPS_EBACKEND;
    }
    if (F.ca_calls <= 8)
        snprintf(F.ca_log[F.ca_calls - 1], sizeof(F.ca_log[0]), "%s %s %d", what, serial,
                 reason);
    snprintf(clone, clone_len, "ca2 127.0.0.1:2");
    return TPS_OK;
}

static enum tps_rc
f_ca_revoke(void *w, const char *serial, int reason, char *clone, size_t clone_len, char *err,
            size_t errlen)
{
    (void)w;
    return f_ca_call("revoke", serial, reason, clone, clone_len, err, errlen);
}

static enum tps_rc
f_ca_unrevoke(void *w, const char *serial, char *clone, size_t clone_len, char *err,
              size_t errlen)
{
    (void)w;
    return f_ca_call("unrevoke", serial, -1, clone, clone_len, err, errlen);
}

static const char *
f_db_server(void *w, char *buf, size_t size)
{
    (void)w;
    snprintf(buf, size, "127.0.0.1:389");
    return buf;
}

static const struct tps_admin_backend fake_be = {
    .worker_open = f_worker_open,
    .worker_close = f_worker_close,
    .whois = f_whois,
    .token_get = f_token_get,
    .token_scan = f_token_scan,
    .token_set_status = f_token_set_status,
    .transition_allowed = f_transition_allowed,
    .cert_list = f_cert_list,
    .certs_free = f_certs_free,
    .cert_set_status = f_cert_set_status,
    .activity_scan = f_activity_scan,
    .activity_add = f_activity_add,
    .ca_action = f_ca_action,
    .ca_revoke = f_ca_revoke,
    .ca_unrevoke = f_ca_unrevoke,
    .db_server = f_db_server,
};

/* ---- in-memory HTTP --------------------------------------------------------------------- */

struct mem {
    const uint8_t *in;
    size_t len, pos;
    struct cmn_buf out;
};

static enum cmn_rc
mem_read(void *ctx, uint8_t *p, size_t n, int64_t deadline_ms, size_t *got)
{
    struct mem *m = ctx;
    size_t k = m->len - m->pos;

    (void)deadline_ms;
    if (k == 0)
        return CMN_ECLOSED;
    if (k > n)
        k = n;
    memcpy(p, m->in + m->pos, k);
    m->pos += k;
    *got = k;
    return CMN_OK;
}

static enum cmn_rc
mem_write(void *ctx, const uint8_t *p, size_t n, int64_t deadline_ms)
{
    struct mem *m = ctx;
    (void)deadline_ms;
    return cmn_buf_append(&m->out, p, n);
}

static const struct cmn_http_io mem_io = {mem_read, mem_write};

struct resp {
    int status;
    char head[8192];
    char body[65536];
    json_object *json;
};

static struct tps_admin *A;
static struct tps_admin_worker *W;
static X509 *CERT;

/* Sends one request; fp NULL: no client certificate. hdrs: extra "Name: value\r\n" lines. */
static void
req(struct resp *r, const char *method, const char *target, const char *fp, const char *hdrs,
    const char *body)
{
    char raw[16384];
    struct mem m;
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct tps_admin_peer peer = {0};
    const char *sep;
    size_t hl;

    snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: tps.example:8443\r\n%sContent-Length: "
             "%zu\r\n\r\n%s",
             method, target, hdrs ? hdrs : "", body ? strlen(body) : 0, body ? body : "");
    memset(&m, 0, sizeof(m));
    m.in = (const uint8_t *)raw;
    m.len = strlen(raw);
    cmn_buf_init(&m.out, 1 << 20);
    assert_int_equal(cmn_http_conn_new_io(&mem_io, &m, NULL, &c), CMN_OK);
    cmn_http_head_init(&h);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    peer.client_ip = "192.0.2.7";
    peer.instance = "gw1";
    if (fp != NULL) {
        peer.cert = CERT;
        peer.fingerprint = fp;
        peer.subject = "CN=someone";
    }
    assert_int_equal(tps_admin_handle(A, W, c, &h, &peer), TPS_OK);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    memset(r, 0, sizeof(*r));
    cmn_buf_cstr(&m.out);
    assert_true(sscanf((const char *)m.out.data, "HTTP/1.1 %d", &r->status) == 1);
    sep = strstr((const char *)m.out.data, "\r\n\r\n");
    assert_non_null(sep);
    hl = (size_t)(sep - (const char *)m.out.data);
    assert_true(hl < sizeof(r->head));
    memcpy(r->head, m.out.data, hl);
    snprintf(r->body, sizeof(r->body), "%s", sep + 4);
    if (strstr(r->head, "Content-Type: application/json") != NULL) {
        r->json = json_tokener_parse(r->body);
        assert_non_null(r->json);
    }
    cmn_buf_cleanup(&m.out);
}

static void
resp_free(struct resp *r)
{
    if (r->json)
        json_object_put(r->json);
    r->json = NULL;
}

static const char *
jstr(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || v == NULL)
        return NULL;
    return json_object_get_string(v);
}

static int64_t
jint(json_object *o, const char *k)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_int64(v);
}

static json_object *
jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, k, &v));
    return v;
}

/* The CSRF token of fp, from GET /tps/rest/account. */
static void
csrf_token(const char *fp, char *out, size_t cap)
{
    struct resp r;
    req(&r, "GET", "/tps/rest/account", fp, NULL, NULL);
    assert_int_equal(r.status, 200);
    snprintf(out, cap, "%s", jstr(r.json, "csrfToken"));
    resp_free(&r);
}

/* The same as the header lines of a JSON state-changing request. */
static void
csrf_hdr(const char *fp, char *out, size_t cap)
{
    char tok[128];
    csrf_token(fp, tok, sizeof(tok));
    snprintf(out, cap, "X-TPS-CSRF: %s\r\nContent-Type: application/json\r\n", tok);
}

static char *
read_audit(void)
{
    static char buf[65536];
    char path[200];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/audit.log", F.dir);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ---- setup ------------------------------------------------------------------------------ */

static int
setup(void **state)
{
    struct tps_admin_settings s = {0};
    char err[256] = "", path[200];
    static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    FILE *f;

    (void)state;
    fake_reset();
    snprintf(F.dir, sizeof(F.dir), "/tmp/tps-admin-test.XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    snprintf(path, sizeof(path), "%s/audit.log", F.dir);
    assert_int_equal(cmn_audit_open(path, false), CMN_OK);
    snprintf(path, sizeof(path), "%s/index.html", F.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("<!doctype html><title>console</title>", f);
    fclose(f);
    s.instance = "gw1";
    s.console_dir = F.dir;
    s.allowed_origins = "https://console.example";
    s.profiles = "userKey, soKey,cleanToken";
    s.csrf_key = key;
    s.csrf_key_len = sizeof(key);
    s.max_page = 50;
    s.default_page = 10;
    if (tps_admin_new(&s, &fake_be, NULL, &A, err, sizeof(err)) != TPS_OK)
        fail_msg("%s", err);
    assert_int_equal(tps_admin_worker_open(A, &W, err, sizeof(err)), TPS_OK);
    CERT = X509_new();
    assert_non_null(CERT);
    cmn_log_set_level(CMN_LOG_ERROR);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[300];

    (void)state;
    tps_admin_worker_close(W);
    tps_admin_free(A);
    X509_free(CERT);
    cmn_audit_close();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

static int
reset_each(void **state)
{
    (void)state;
    fake_reset();
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_admin_owns_path(void **state)
{
    (void)state;
    assert_true(tps_admin_owns_path("/tps/rest"));
    assert_true(tps_admin_owns_path("/tps/rest/tokens"));
    assert_true(tps_admin_owns_path("/tps/ui/"));
    assert_true(tps_admin_owns_path("/tps/ui"));
    assert_false(tps_admin_owns_path("/tps/tps"));
    assert_false(tps_admin_owns_path("/tps/restx"));
    assert_false(tps_admin_owns_path("/tps/phoneHome"));
    assert_false(tps_admin_owns_path(NULL));
}

static void
test_admin_auth_required(void **state)
{
    struct resp r;

    (void)state;
    req(&r, "GET", "/tps/rest/tokens", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(jstr(r.json, "Error"), "no_certificate");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens", "stranger", NULL, NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "Error"), "unknown_user");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens", "fp-nobody", NULL, NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "Error"), "no_role");
    resp_free(&r);
    F.db_down = true;
    req(&r, "GET", "/tps/rest/tokens", "fp-agent", NULL, NULL);
    assert_int_equal(r.status, 503);
    resp_free(&r);
}

static void
test_admin_security_headers(void **state)
{
    struct resp r;

    (void)state;
    req(&r, "GET", "/tps/rest/account", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: application/json; charset=utf-8"));
    assert_non_null(strstr(r.head, "X-Content-Type-Options: nosniff"));
    assert_non_null(strstr(r.head, "Cache-Control: no-store"));
    assert_non_null(strstr(r.head, "Content-Security-Policy: default-src 'none'"));
    assert_non_null(strstr(r.head, "X-TPS-Instance: gw1"));
    assert_non_null(strstr(r.head, "Set-Cookie: tps_csrf="));
    assert_non_null(strstr(r.head, "SameSite=Strict"));
    resp_free(&r);
}

static void
test_admin_account_roles(void **state)
{
    struct resp r;
    json_object *roles;

    (void)state;
    req(&r, "GET", "/tps/rest/account", "fp-admin", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "UserID"), "admin");
    roles = jget(r.json, "Roles");
    assert_int_equal(json_object_array_length(roles), 3);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(roles, 0)), "operator");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(roles, 2)), "admin");
    assert_true(json_object_get_boolean(jget(r.json, "CanChangeStatus")));
    assert_string_equal(jstr(jget(r.json, "Served"), "Instance"), "gw1");
    assert_string_equal(jstr(jget(r.json, "Served"), "LdapServer"), "127.0.0.1:389");
    assert_non_null(strchr(jstr(r.json, "csrfToken"), '.'));
    resp_free(&r);
    req(&r, "GET", "/tps/rest/account", "fp-operator", NULL, NULL);
    assert_false(json_object_get_boolean(jget(r.json, "CanChangeStatus")));
    resp_free(&r);
    req(&r, "POST", "/tps/rest/account", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET"));
    resp_free(&r);
}

static void
test_admin_csrf_tokens(void **state)
{
    char tok[128], other[160];
    long long now = 1700000000;

    (void)state;
    assert_int_equal(tps_admin_csrf_make(A, "fp-agent", now, tok, sizeof(tok)), TPS_OK);
    assert_true(tps_admin_csrf_check(A, "fp-agent", now, tok));
    assert_true(tps_admin_csrf_check(A, "fp-agent", now + 28799, tok));
    assert_false(tps_admin_csrf_check(A, "fp-agent", now + 28801, tok)); /* expired */
    assert_false(tps_admin_csrf_check(A, "fp-operator", now, tok));     /* other cert */
    snprintf(other, sizeof(other), "%s", tok);
    other[strlen(other) - 1] = other[strlen(other) - 1] == '0' ? '1' : '0';
    assert_false(tps_admin_csrf_check(A, "fp-agent", now, other)); /* tampered MAC */
    snprintf(other, sizeof(other), "9%s", tok);
    assert_false(tps_admin_csrf_check(A, "fp-agent", now, other)); /* moved expiry */
    assert_false(tps_admin_csrf_check(A, "fp-agent", now, ""));
    assert_false(tps_admin_csrf_check(A, "fp-agent", now, "123"));
    assert_false(tps_admin_csrf_check(A, "fp-agent", now, NULL));
}

static void
test_admin_paging_math(void **state)
{
    unsigned st, sz;

    (void)state;
    assert_int_equal(tps_admin_page_parse(A, NULL, NULL, &st, &sz), TPS_OK);
    assert_int_equal(st, 0);
    assert_int_equal(sz, 10);
    assert_int_equal(tps_admin_page_parse(A, "20", "1000", &st, &sz), TPS_OK);
    assert_int_equal(st, 20);
    assert_int_equal(sz, 50);
    assert_int_equal(tps_admin_page_parse(A, "0", "0", &st, &sz), TPS_OK);
    assert_int_equal(sz, 1);
    assert_int_equal(tps_admin_page_parse(A, "-1", NULL, &st, &sz), TPS_EINVAL);
    assert_int_equal(tps_admin_page_parse(A, NULL, "ten", &st, &sz), TPS_EINVAL);
    assert_int_equal(tps_admin_page_parse(A, "1 ", NULL, &st, &sz), TPS_EINVAL);
}

static void
test_admin_token_search_paging(void **state)
{
    struct resp r;
    json_object *e;

    (void)state;
    req(&r, "GET", "/tps/rest/tokens", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "total"), 25);
    assert_true(json_object_get_boolean(jget(r.json, "totalExact")));
    assert_int_equal(json_object_array_length(jget(r.json, "entries")), 10);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens?start=20&size=10", "fp-operator", NULL, NULL);
    e = jget(r.json, "entries");
    assert_int_equal(json_object_array_length(e), 5);
    assert_string_equal(jstr(json_object_array_get_idx(e, 0), "TokenID"),
                        "A0000000000000000020");
    assert_int_equal(jint(r.json, "start"), 20);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens?start=100", "fp-operator", NULL, NULL);
    assert_int_equal(json_object_array_length(jget(r.json, "entries")), 0);
    assert_int_equal(jint(r.json, "total"), 25);
    resp_free(&r);
    /* filter: substring of the CUID or the user, any case */
    req(&r, "GET", "/tps/rest/tokens?filter=ALICE1&size=50", "fp-operator", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 11); /* alice1, alice10..19 */
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens?status=formatted&userID=bob", "fp-operator", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 5);
    e = json_object_array_get_idx(jget(r.json, "entries"), 0);
    assert_string_equal(jstr(jget(e, "Status"), "name"), "FORMATTED");
    assert_string_equal(jstr(e, "UserID"), "bob");
    assert_string_equal(jstr(e, "Type"), "soKey");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens?status=BOGUS", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens?start=x", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "Error"), "bad_paging");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens?size=1&size=2", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens?filter=%zz", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
}

static void
test_admin_profile_scope(void **state)
{
    struct resp r;

    (void)state;
    /* fp-scoped may see soKey tokens only */
    req(&r, "GET", "/tps/rest/tokens?size=50", "fp-scoped", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 5);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens/A0000000000000000000", "fp-scoped", NULL, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/profiles", "fp-scoped", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 1);
    assert_string_equal(jstr(json_object_array_get_idx(jget(r.json, "entries"), 0), "id"),
                        "soKey");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/profiles", "fp-operator", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 3);
    resp_free(&r);
}

static void
test_admin_token_get_and_certs(void **state)
{
    struct resp r;
    json_object *next, *e;

    (void)state;
    /* lower-case CUIDs are accepted and normalised */
    req(&r, "GET", "/tps/rest/tokens/a0000000000000000000", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "id"), "A0000000000000000000");
    assert_string_equal(jstr(jget(r.json, "Status"), "name"), "ACTIVE");
    assert_string_equal(jstr(jget(r.json, "Status"), "label"), "Active");
    next = jget(r.json, "NextStates"); /* 4:1,4:2,4:3,4:6 */
    assert_int_equal(json_object_array_length(next), 4);
    assert_string_equal(jstr(json_object_array_get_idx(next, 0), "name"), "DAMAGED");
    assert_string_equal(jstr(json_object_array_get_idx(next, 3), "name"), "TERMINATED");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens/A0000000000000000099", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens/XYZ", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens/A0000000000000000000/certificates", "fp-operator", NULL,
        NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "total"), 2);
    e = json_object_array_get_idx(jget(r.json, "entries"), 1);
    assert_string_equal(jstr(e, "SerialNumber"), "0x11");
    assert_string_equal(jstr(e, "KeyType"), "encryption");
    assert_string_equal(jstr(e, "Status"), "active");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/certs?tokenID=A0000000000000000001", "fp-operator", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 2);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/certs", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/nothing", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    req(&r, "DELETE", "/tps/rest/tokens/A0000000000000000000", "fp-admin", NULL, NULL);
    assert_int_equal(r.status, 405);
    resp_free(&r);
}

static void
test_admin_activities(void **state)
{
    struct resp r;
    json_object *e;

    (void)state;
    req(&r, "GET", "/tps/rest/activities?size=3", "fp-operator", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 12);
    e = jget(r.json, "entries");
    assert_int_equal(json_object_array_length(e), 3);
    assert_string_equal(jstr(json_object_array_get_idx(e, 0), "id"), "act11"); /* newest */
    assert_string_equal(jstr(json_object_array_get_idx(e, 0), "Operation"), "enrollment");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/activities?tokenID=A0000000000000000000&start=1&size=2",
        "fp-operator", NULL, NULL);
    assert_int_equal(jint(r.json, "total"), 4); /* act 0, 3, 6, 9 */
    e = jget(r.json, "entries");
    assert_string_equal(jstr(json_object_array_get_idx(e, 0), "id"), "act06");
    resp_free(&r);
    req(&r, "GET", "/tps/rest/tokens/A0000000000000000002/activities", "fp-operator", NULL,
        NULL);
    assert_int_equal(jint(r.json, "total"), 8);
    resp_free(&r);
    req(&r, "GET", "/tps/rest/activities?tokenID=zz", "fp-operator", NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
}

static void
test_admin_status_change_roles_and_csrf(void **state)
{
    struct resp r;
    char h[400], h2[600], tok[128];
    const char *target = "/tps/rest/tokens/A0000000000000000000?status=PERM_LOST";

    (void)state;
    /* an operator may read but not change */
    csrf_hdr("fp-operator", h, sizeof(h));
    req(&r, "POST", target, "fp-operator", h, NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "Error"), "forbidden");
    resp_free(&r);
    /* an agent without the CSRF header */
    req(&r, "POST", target, "fp-agent", "Content-Type: application/json\r\n", NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "Error"), "csrf");
    resp_free(&r);
    /* with another user's token */
    csrf_hdr("fp-admin", h, sizeof(h));
    req(&r, "POST", target, "fp-agent", h, NULL);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    csrf_token("fp-agent", tok, sizeof(tok));
    snprintf(h, sizeof(h), "X-TPS-CSRF: %s\r\nContent-Type: application/json\r\n", tok);
    /* a form post: wrong content type */
    snprintf(h2, sizeof(h2), "X-TPS-CSRF: %s\r\nContent-Type: "
             "application/x-www-form-urlencoded\r\n", tok);
    req(&r, "POST", target, "fp-agent", h2, "status=PERM_LOST");
    assert_int_equal(r.status, 415);
    resp_free(&r);
    /* a cross-site origin */
    snprintf(h2, sizeof(h2), "%sOrigin: https://evil.example\r\n", h);
    req(&r, "POST", target, "fp-agent", h2, NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "Error"), "bad_origin");
    resp_free(&r);
    snprintf(h2, sizeof(h2), "%sSec-Fetch-Site: cross-site\r\n", h);
    req(&r, "POST", target, "fp-agent", h2, NULL);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    /* a cookie that differs from the header */
    snprintf(h2, sizeof(h2), "%sCookie: a=b; tps_csrf=1.00\r\n", h);
    req(&r, "POST", target, "fp-agent", h2, NULL);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    /* nothing happened */
    assert_int_equal(F.ca_calls, 0);
    assert_int_equal(F.set_status_calls, 0);
    assert_int_equal(fstatus("A0000000000000000000"), TPS_TOKEN_ACTIVE);
    assert_non_null(strstr(read_audit(), "admin.status_change.denied"));
}

static void
test_admin_status_change_lost_revokes(void **state)
{
    struct resp r;
    char h[600], tok[128], *audit;
    json_object *certs;

    (void)state;
    csrf_token("fp-agent", tok, sizeof(tok));
    snprintf(h, sizeof(h), "X-TPS-CSRF: %s\r\nContent-Type: application/json\r\n"
             "Origin: https://tps.example:8443\r\n", tok);
    req(&r, "POST", "/tps/rest/tokens/A0000000000000000000?status=PERM_LOST&reason=left%20on%20a"
        "%20train", "fp-agent", h, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(jget(r.json, "Status"), "name"), "PERM_LOST");
    certs = jget(r.json, "Certificates");
    assert_int_equal(json_object_array_length(certs), 2);
    assert_string_equal(jstr(json_object_array_get_idx(certs, 0), "Action"), "revoke");
    assert_string_equal(jstr(json_object_array_get_idx(certs, 0), "RevocationReason"),
                        "keyCompromise");
    assert_string_equal(jstr(json_object_array_get_idx(certs, 0), "Clone"), "ca2 127.0.0.1:2");
    assert_string_equal(jstr(json_object_array_get_idx(certs, 1), "Outcome"), "done");
    assert_string_equal(jstr(jget(r.json, "Served"), "Instance"), "gw1");
    resp_free(&r);
    assert_int_equal(F.ca_calls, 2);
    assert_string_equal(F.ca_log[0], "revoke 0x10 1");
    assert_string_equal(F.ca_log[1], "revoke 0x11 1");
    assert_int_equal(fstatus("A0000000000000000000"), TPS_TOKEN_PERM_LOST);
    assert_string_equal(F.cert[0].status, "revoked");
    assert_string_equal(F.cert[1].status, "revoked");
    assert_string_equal(F.act[F.nact - 1].op, "token_status_change");
    assert_string_equal(F.act[F.nact - 1].result, "success");
    assert_non_null(strstr(F.act[F.nact - 1].msg, "left on a train"));
    audit = read_audit();
    assert_non_null(strstr(audit, "admin.status_change.begin actor=agent role=agent "
                                  "cuid=A0000000000000000000 from=ACTIVE to=PERM_LOST"));
    assert_non_null(strstr(audit, "admin.cert actor=agent cuid=A0000000000000000000 "
                                  "serial=0x10 action=revoke reason=keyCompromise"));
    assert_non_null(strstr(audit, "outcome=success"));
    /* PERM_LOST -> ACTIVE is not in the table: 409, nothing changes */
    csrf_hdr("fp-agent", h, sizeof(h));
    req(&r, "POST", "/tps/rest/tokens/A0000000000000000000?status=ACTIVE", "fp-agent", h, NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(jstr(r.json, "Error"), "transition_denied");
    resp_free(&r);
    assert_int_equal(F.ca_calls, 2);
    assert_int_equal(fstatus("A0000000000000000000"), TPS_TOKEN_PERM_LOST);
}

static void
test_admin_status_change_table(void **state)
{
    static const struct {
        enum tps_token_status from;
        const char *to;
        int http;
    } cases[] = {
        {TPS_TOKEN_ACTIVE, "SUSPENDED", 200},   {TPS_TOKEN_ACTIVE, "DAMAGED", 200},
        {TPS_TOKEN_ACTIVE, "TERMINATED", 200},  {TPS_TOKEN_ACTIVE, "FORMATTED", 409},
        {TPS_TOKEN_ACTIVE, "UNFORMATTED", 409}, {TPS_TOKEN_SUSPENDED, "ACTIVE", 200},
        {TPS_TOKEN_SUSPENDED, "PERM_LOST", 200}, {TPS_TOKEN_TERMINATED, "UNFORMATTED", 200},
        {TPS_TOKEN_TERMINATED, "ACTIVE", 409},  {TPS_TOKEN_FORMATTED, "ACTIVE", 409},
        {TPS_TOKEN_DAMAGED, "PERM_LOST", 200},  {TPS_TOKEN_PERM_LOST, "SUSPENDED", 409},
        {TPS_TOKEN_ACTIVE, "TEMP_LOST", 200},   {TPS_TOKEN_ACTIVE, "NOSUCH", 400},
        {TPS_TOKEN_UNKNOWN, "ACTIVE", 409},
    };
    char h[600], target[200];
    struct resp r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_reset();
        F.tok[5].status = cases[i].from;
        csrf_hdr("fp-agent", h, sizeof(h));
        snprintf(target, sizeof(target), "/tps/rest/tokens/%s?status=%s", F.tok[5].cuid,
                 cases[i].to);
        req(&r, "POST", target, "fp-agent", h, NULL);
        if (r.status != cases[i].http)
            fail_msg("case %zu (%d -> %s): HTTP %d, want %d: %s", i, (int)cases[i].from,
                     cases[i].to, r.status, cases[i].http, r.body);
        if (cases[i].http == 200)
            assert_int_equal(F.tok[5].status, tps_token_status_parse(cases[i].to, NULL));
        else
            assert_int_equal(F.tok[5].status, cases[i].from);
        resp_free(&r);
    }
}

static void
test_admin_status_change_ca_failure(void **state)
{
    struct resp r;
    char h[600];
    json_object *certs;

    (void)state;
    F.ca_fail_at = 2; /* the second certificate's revocation fails */
    csrf_hdr("fp-agent", h, sizeof(h));
    req(&r, "POST", "/tps/rest/tokens/A0000000000000000000?status=TERMINATED", "fp-agent", h,
        NULL);
    assert_int_equal(r.status, 502);
    assert_string_equal(jstr(r.json, "Error"), "ca_failed");
    assert_non_null(strstr(jstr(r.json, "Message"), "keeps status ACTIVE"));
    certs = jget(r.json, "Certificates");
    assert_string_equal(jstr(json_object_array_get_idx(certs, 0), "Outcome"), "done");
    assert_string_equal(jstr(json_object_array_get_idx(certs, 1), "Outcome"), "failed");
    assert_non_null(strstr(jstr(json_object_array_get_idx(certs, 1), "Error"), "timed out"));
    resp_free(&r);
    /* the token keeps its status; the certificate the CA did revoke says so */
    assert_int_equal(F.set_status_calls, 0);
    assert_int_equal(fstatus("A0000000000000000000"), TPS_TOKEN_ACTIVE);
    assert_string_equal(F.cert[0].status, "revoked");
    assert_string_equal(F.cert[1].status, "active");
    assert_string_equal(F.act[F.nact - 1].result, "failure");
    assert_non_null(strstr(read_audit(), "outcome=failure"));
    /* a retry finishes the job: only the remaining certificate goes to the CA */
    F.ca_fail_at = 0;
    F.ca_calls = 0;
    req(&r, "POST", "/tps/rest/tokens/A0000000000000000000?status=TERMINATED", "fp-agent", h,
        NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(F.ca_calls, 1);
    assert_string_equal(F.ca_log[0], "revoke 0x11 1");
    assert_int_equal(fstatus("A0000000000000000000"), TPS_TOKEN_TERMINATED);
    resp_free(&r);
}

static void
test_admin_status_change_unrevoke_json_body(void **state)
{
    struct resp r;
    char h[600], tok[128], h2[300];

    (void)state;
    csrf_token("fp-admin", tok, sizeof(tok));
    snprintf(h, sizeof(h), "X-TPS-CSRF: %s\r\nContent-Type: application/json\r\n", tok);
    snprintf(h2, sizeof(h2), "X-TPS-CSRF: %s\r\n", tok);
    /* PATCH with a JSON body: token 1 is SUSPENDED with two certificates on hold */
    req(&r, "PATCH", "/tps/rest/tokens/A0000000000000000001", "fp-admin", h,
        "{\"Status\":\"ACTIVE\",\"Reason\":\"found in the drawer\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(jget(r.json, "Status"), "name"), "ACTIVE");
    resp_free(&r);
    assert_int_equal(F.ca_calls, 2);
    assert_string_equal(F.ca_log[0], "unrevoke 0x12 -1");
    assert_string_equal(F.cert[2].status, "active");
    assert_string_equal(F.cert[3].status, "active");
    /* malformed bodies */
    req(&r, "PUT", "/tps/rest/tokens/A0000000000000000002", "fp-admin", h, "{\"Status\":");
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "Error"), "bad_json");
    resp_free(&r);
    req(&r, "PUT", "/tps/rest/tokens/A0000000000000000002", "fp-admin", h, "[1]");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    req(&r, "PUT", "/tps/rest/tokens/A0000000000000000002", "fp-admin", h, "{\"Status\":7}");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    req(&r, "PUT", "/tps/rest/tokens/A0000000000000000002", "fp-admin", h, "{}");
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "Error"), "missing_status");
    resp_free(&r);
    /* PUT needs a JSON content type even with the CSRF header */
    req(&r, "PUT", "/tps/rest/tokens/A0000000000000000002", "fp-admin", h2,
        "{\"Status\":\"DAMAGED\"}");
    assert_int_equal(r.status, 415);
    resp_free(&r);
    assert_int_equal(F.tok[2].status, TPS_TOKEN_ACTIVE);
}

static void
test_admin_status_change_busy_and_audit(void **state)
{
    struct resp r;
    char h[600], when[20];

    (void)state;
    tps_tdb_utc(time(NULL) + 300, when, sizeof(when));
    snprintf(F.tok[3].lease, sizeof(F.tok[3].lease), "opOwner=gw2.0123&opEpoch=4&opExpires=%s",
             when);
    csrf_hdr("fp-agent", h, sizeof(h));
    req(&r, "POST", "/tps/rest/tokens/A0000000000000000003?status=SUSPENDED", "fp-agent", h,
        NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(jstr(r.json, "Error"), "busy");
    resp_free(&r);
    /* an expired lease does not block */
    tps_tdb_utc(time(NULL) - 300, when, sizeof(when));
    snprintf(F.tok[3].lease, sizeof(F.tok[3].lease), "opOwner=gw2.0123&opEpoch=4&opExpires=%s",
             when);
    req(&r, "POST", "/tps/rest/tokens/A0000000000000000003?status=SUSPENDED", "fp-agent", h,
        NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* no audit log: no change */
    cmn_audit_close();
    req(&r, "POST", "/tps/rest/tokens/A0000000000000000004?status=SUSPENDED", "fp-agent", h,
        NULL);
    assert_int_equal(r.status, 503);
    assert_string_equal(jstr(r.json, "Error"), "audit_unavailable");
    resp_free(&r);
    assert_int_equal(F.tok[4].status, TPS_TOKEN_ACTIVE);
    {
        char path[200];
        snprintf(path, sizeof(path), "%s/audit.log", F.dir);
        assert_int_equal(cmn_audit_open(path, false), CMN_OK);
    }
}

static void
test_admin_console_static(void **state)
{
    struct resp r;

    (void)state;
    req(&r, "GET", "/tps/ui", NULL, NULL, NULL);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.head, "Location: /tps/ui/"));
    resp_free(&r);
    req(&r, "GET", "/tps/ui/", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/html; charset=utf-8"));
    assert_non_null(strstr(r.head, "script-src 'self'"));
    assert_non_null(strstr(r.head, "frame-ancestors 'none'"));
    assert_non_null(strstr(r.head, "X-Content-Type-Options: nosniff"));
    assert_non_null(strstr(r.body, "<title>console</title>"));
    resp_free(&r);
    req(&r, "GET", "/tps/ui/../../etc/passwd", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    req(&r, "GET", "/tps/ui/secret.txt", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* app.js is allowed but absent in this directory */
    req(&r, "GET", "/tps/ui/app.js", NULL, NULL, NULL);
    assert_int_equal(r.status, 500);
    resp_free(&r);
    req(&r, "POST", "/tps/ui/index.html", NULL, NULL, NULL);
    assert_int_equal(r.status, 405);
    resp_free(&r);
}

/* The certificate assertion slapd matches userCertificate with (tokendb §1.5). */
static void
test_admin_cert_assertion(void **state)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    char out[600];

    (void)state;
    assert_non_null(x);
    assert_non_null(n);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                                                (const unsigned char *)"Example", -1, -1, 0), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"Staff \"Q\" CA", -1, -1,
                                                0), 1);
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    assert_int_equal(tps_admin_cert_assertion(x, out, sizeof(out)), TPS_OK);
    /* decimal serial; RFC 4514 issuer, most significant RDN last; GSER doubles the quote */
    assert_string_equal(out, "{ serialNumber 4660, issuer rdnSequence:\"CN=Staff \\\"\"Q\\\"\" "
                             "CA,O=Example\" }");
    assert_int_equal(tps_admin_cert_assertion(x, out, 20), TPS_EINVAL); /* too small */
    X509_NAME_free(n);
    X509_free(x);
}

/* The tps.admin.* keys: defaults, values, the CSRF key file and its checks. */
static void
test_admin_settings_from_cfg(void **state)
{
    const struct cmn_cfg_key extra[] = {{.name = "tps.instanceId", .type = CFG_STR}, {0}};
    const struct cmn_cfg_key *const tables[] = {extra, tps_admin_cfg_keys, NULL};
    struct tps_admin_settings s;
    struct cmn_cfg *cfg = NULL;
    struct cmn_buf errs;
    uint8_t key[64];
    char text[1024], path[200], err[256];
    FILE *f;

    (void)state;
    cmn_buf_init(&errs, 4096);
    snprintf(text, sizeof(text), "tps.instanceId=gw9\ntps.admin.maxPageSize=40\n");
    assert_int_equal(cmn_cfg_parse("t.cfg", text, strlen(text), tables, &cfg, &errs), CMN_OK);
    assert_int_equal(tps_admin_settings_from_cfg(cfg, &s, key, sizeof(key), err, sizeof(err)),
                     TPS_OK);
    assert_string_equal(s.instance, "gw9");
    assert_int_equal(s.max_page, 40);
    assert_int_equal(s.default_page, 20);
    assert_int_equal(s.csrf_ttl_s, 28800);
    assert_null(s.csrf_key);
    assert_string_equal(s.profiles, "userKey,soKey,cleanToken");
    cmn_cfg_unref(cfg);
    /* a key file of 32 bytes, mode 0600 */
    snprintf(path, sizeof(path), "%s/csrf.key", F.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("0123456789abcdef0123456789abcdef", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(text, sizeof(text), "tps.admin.csrfKey_file=%s\n", path);
    assert_int_equal(cmn_cfg_parse("t.cfg", text, strlen(text), tables, &cfg, &errs), CMN_OK);
    assert_int_equal(tps_admin_settings_from_cfg(cfg, &s, key, sizeof(key), err, sizeof(err)),
                     TPS_OK);
    assert_int_equal(s.csrf_key_len, 32);
    assert_memory_equal(s.csrf_key, "0123456789abcdef", 16);
    cmn_cfg_unref(cfg);
    /* too short a key */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("short", f);
    fclose(f);
    assert_int_equal(cmn_cfg_parse("t.cfg", text, strlen(text), tables, &cfg, &errs), CMN_OK);
    assert_int_equal(tps_admin_settings_from_cfg(cfg, &s, key, sizeof(key), err, sizeof(err)),
                     TPS_ECONFIG);
    assert_non_null(strstr(err, "tps.admin.csrfKey_file"));
    cmn_cfg_unref(cfg);
    /* out-of-range values are refused by the table */
    snprintf(text, sizeof(text), "tps.admin.maxPageSize=0\n");
    assert_int_equal(cmn_cfg_parse("t.cfg", text, strlen(text), tables, &cfg, &errs),
                     CMN_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs), "tps.admin.maxPageSize"));
    cmn_buf_cleanup(&errs);
}

/* Settings that tps_admin_new refuses. */
static void
test_admin_new_refuses(void **state)
{
    struct tps_admin_settings s = {0};
    struct tps_admin *a = NULL;
    char err[256];
    static const uint8_t shortkey[8] = {0};

    (void)state;
    assert_int_equal(tps_admin_new(&s, &fake_be, NULL, &a, err, sizeof(err)), TPS_ECONFIG);
    assert_null(a);
    s.instance = "gw1";
    s.csrf_key = shortkey;
    s.csrf_key_len = sizeof(shortkey);
    assert_int_equal(tps_admin_new(&s, &fake_be, NULL, &a, err, sizeof(err)), TPS_ECONFIG);
    assert_non_null(strstr(err, "16 to 64 bytes"));
    s.csrf_key = NULL;
    s.allowed_origins = "a b c d e f g h i";
    assert_int_equal(tps_admin_new(&s, &fake_be, NULL, &a, err, sizeof(err)), TPS_ECONFIG);
    s.allowed_origins = NULL;
    assert_int_equal(tps_admin_new(&s, &fake_be, NULL, &a, err, sizeof(err)), TPS_OK);
    tps_admin_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_admin_owns_path, reset_each),
        cmocka_unit_test_setup(test_admin_auth_required, reset_each),
        cmocka_unit_test_setup(test_admin_security_headers, reset_each),
        cmocka_unit_test_setup(test_admin_account_roles, reset_each),
        cmocka_unit_test_setup(test_admin_csrf_tokens, reset_each),
        cmocka_unit_test_setup(test_admin_paging_math, reset_each),
        cmocka_unit_test_setup(test_admin_token_search_paging, reset_each),
        cmocka_unit_test_setup(test_admin_profile_scope, reset_each),
        cmocka_unit_test_setup(test_admin_token_get_and_certs, reset_each),
        cmocka_unit_test_setup(test_admin_activities, reset_each),
        cmocka_unit_test_setup(test_admin_status_change_roles_and_csrf, reset_each),
        cmocka_unit_test_setup(test_admin_status_change_lost_revokes, reset_each),
        cmocka_unit_test_setup(test_admin_status_change_table, reset_each),
        cmocka_unit_test_setup(test_admin_status_change_ca_failure, reset_each),
        cmocka_unit_test_setup(test_admin_status_change_unrevoke_json_body, reset_each),
        cmocka_unit_test_setup(test_admin_status_change_busy_and_audit, reset_each),
        cmocka_unit_test_setup(test_admin_console_static, reset_each),
        cmocka_unit_test_setup(test_admin_cert_assertion, reset_each),
        cmocka_unit_test_setup(test_admin_settings_from_cfg, reset_each),
        cmocka_unit_test_setup(test_admin_new_refuses, reset_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
