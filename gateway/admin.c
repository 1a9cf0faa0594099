/* gateway/admin.c - the admin REST API (/tps/rest/) and the security-officer console (/tps/ui/):
 * routing, client-certificate roles, CSRF and content-type rules, JSON through json-c, paging,
 * and token status changes that revoke or unrevoke through the CA before the token DB changes. */
#include "gateway/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/log.h"
#include "common/pct.h"

#define MAX_REQ_BODY 16384      /* a status change is a few dozen bytes */
#define MAX_STATIC (512 * 1024) /* console files */
#define MAX_PARAMS 16
#define MAX_PARAM_VALUE 256
#define MAX_COMMENT 200
#define MAX_ORIGINS 8
#define MAX_PROFILES 32

const struct cmn_cfg_key tps_admin_cfg_keys[] = {
    {.name = "tps.admin.enable", .type = CFG_BOOL, .def = 1,
     .doc = "serve the admin REST API (/tps/rest/) and console (/tps/ui/) (ours)"},
    {.name = "tps.admin.consoleDir", .type = CFG_PATH, .defstr = "/usr/share/tpsgw/console",
     .doc = "directory of the console's index.html, app.js, style.css (ours)"},
    {.name = "tps.admin.allowedOrigins", .type = CFG_STR, .defstr = "",
     .doc = "origins allowed to send state-changing requests besides https://<Host> (ours)"},
    {.name = "tps.admin.profiles", .type = CFG_STR, .defstr = "userKey,soKey,cleanToken",
     .doc = "token types listed by GET /tps/rest/profiles, comma-separated (ours)"},
    {.name = "tps.admin.csrfKey_file", .type = CFG_SECRET_FILE,
     .doc = "CSRF token key (16..64 bytes), the same on every instance, mode 0600 (ours)"},
    {.name = "tps.admin.csrfTTL", .type = CFG_UINT, .min = 60, .max = 604800, .def = 28800,
     .doc = "lifetime of a CSRF token, seconds (ours)"},
    {.name = "tps.admin.maxPageSize", .type = CFG_UINT, .min = 1, .max = 1000, .def = 500,
     .doc = "largest page a search returns (ours)"},
    {.name = "tps.admin.defaultPageSize", .type = CFG_UINT, .min = 1, .max = 1000, .def = 20,
     .doc = "page size when size= is absent (ours)"},
    {.name = "tps.admin.maxScan", .type = CFG_UINT, .min = 100, .max = 1000000, .def = 20000,
     .doc = "records looked at per search; beyond, totals are lower bounds (ours)"},
    {.name = "tps.admin.peopleBaseDN", .type = CFG_STR, .defstr = "",
     .doc = "staff entries; empty: ou=People under the token DB root (tokendb §1.1)"},
    {.name = "tps.admin.groupsBaseDN", .type = CFG_STR, .defstr = "",
     .doc = "role groups; empty: ou=Groups under the token DB root (tokendb §1.1)"},
    {.name = "tps.admin.group.agent", .type = CFG_STR, .defstr = "TPS Agents",
     .doc = "cn of the agents group (tokendb §1.8, Java)"},
    {.name = "tps.admin.group.operator", .type = CFG_STR, .defstr = "TPS Operators",
     .doc = "cn of the operators group (tokendb §1.8, Java)"},
    {.name = "tps.admin.group.admin", .type = CFG_STR, .defstr = "Administrators",
     .doc = "cn of the administrators group (tokendb §1.8, Java)"},
    {.name = "tps.admin.certMap", .type = CFG_STR, .defstr = "userCertificate",
     .doc = "certificate to staff: userCertificate (exact certificate in ou=People) or "
            "subjectUID (the UID of the subject names the entry) (ours)"},
    {.name = "tps.admin.ca.conn", .type = CFG_STR, .defstr = "ca1",
     .doc = "CA connector (conn.<id>.*) used for revocations (ours)"},
    {0},
};

struct tps_admin {
    char instance[64];
    char console_dir[1024];
    bool console;
    size_t n_origins;
    char origins[MAX_ORIGINS][256];
    size_t n_profiles;
    char profiles[MAX_PROFILES][64];
    uint8_t csrf_key[64];
    size_t csrf_key_len;
    unsigned csrf_ttl, max_page, def_page, max_scan;
    const struct tps_admin_backend *be;
    void *shared;
};

struct tps_admin_worker {
    const struct tps_admin *a;
    void *w;
};

/* One request being served. */
struct req {
    const struct tps_admin *a;
    struct tps_admin_worker *w;
    struct cmn_http_conn *c;
    const struct cmn_http_head *h;
    const struct tps_admin_peer *peer;
    struct tps_admin_staff staff;
    bool have_staff;
    size_t nparams;
    struct {
        char name[32];
        char value[MAX_PARAM_VALUE];
    } params[MAX_PARAMS];
    struct cmn_buf body;
    int status; /* for the access log */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void
copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static bool
is_hex_cuid(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > TPS_CUID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return false;
    }
    return true;
}

/* Splits a list separated by spaces and/or commas into fixed slots. false if too many/long. */
static bool
split_list(const char *s, char *out, size_t max, size_t *n, size_t item_cap)
{
    size_t cnt = 0;

    while (s != NULL && *s != '\0') {
        size_t len;
        while (*s == ' ' || *s == ',' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        len = strcspn(s, " ,\t");
        if (cnt >= max || len >= item_cap)
            return false;
        memcpy(out + cnt * item_cap, s, len);
        out[cnt * item_cap + len] = '\0';
        cnt++;
        s += len;
    }
    *n = cnt;
    return true;
}

static const char *
role_name(unsigned bit)
{
    switch (bit) {
    case TPS_ADMIN_ROLE_OPERATOR: return "operator";
    case TPS_ADMIN_ROLE_AGENT: return "agent";
    case TPS_ADMIN_ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

/* The highest role, for logs and audit lines. */
static const char *
top_role(unsigned roles)
{
    if (roles & TPS_ADMIN_ROLE_ADMIN)
        return "admin";
    if (roles & TPS_ADMIN_ROLE_AGENT)
        return "agent";
    if (roles & TPS_ADMIN_ROLE_OPERATOR)
        return "operator";
    return "none";
}

const char *
tps_admin_status_label(enum tps_token_status s)
{
    switch (s) {
    case TPS_TOKEN_FORMATTED: return "Formatted (uninitialized)";
    case TPS_TOKEN_DAMAGED: return "Physically damaged";
    case TPS_TOKEN_PERM_LOST: return "Permanently lost";
    case TPS_TOKEN_SUSPENDED: return "Suspended (temporarily lost)";
    case TPS_TOKEN_ACTIVE: return "Active";
    case TPS_TOKEN_TEMP_LOST_PERM_LOST: return "Temporarily lost then permanently lost";
    case TPS_TOKEN_TERMINATED: return "Terminated";
    case TPS_TOKEN_UNFORMATTED: return "Unformatted";
    case TPS_TOKEN_UNKNOWN: break;
    }
    return "Unknown";
}

void
tps_admin_next_states(const struct tps_admin *a, enum tps_token_status from,
                      enum tps_token_status *out, size_t *n)
{
    *n = 0;
    if ((int)from < 0 || (int)from > 7)
        return; /* UNKNOWN cannot be changed (tokendb §1.7) */
    for (int to = 0; to <= 7; to++) {
        if (to == (int)from)
            continue;
        if (a->be->transition_allowed(a->shared, from, (enum tps_token_status)to))
            out[(*n)++] = (enum tps_token_status)to;
    }
}

/* ---- creation ---------------------------------------------------------------------------- */

enum tps_rc
tps_admin_new(const struct tps_admin_settings *s, const struct tps_admin_backend *be,
              void *shared, struct tps_admin **out, char *err, size_t errlen)
{
    struct tps_admin *a;
    enum tps_rc rc = TPS_ECONFIG;

    *out = NULL;
    if (s == NULL || be == NULL) {
        snprintf(err, errlen, "admin: no settings or backend");
        return TPS_EINVAL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return TPS_ENOMEM;
    a->be = be;
    a->shared = shared;
    if (s->instance == NULL || s->instance[0] == '\0' ||
        strlen(s->instance) >= sizeof(a->instance)) {
        snprintf(err, errlen, "admin: key 'tps.instanceId': empty or longer than %zu",
                 sizeof(a->instance) - 1);
        goto out;
    }
    copy_str(a->instance, sizeof(a->instance), s->instance);
    if (s->console_dir != NULL && s->console_dir[0] != '\0') {
        if (strlen(s->console_dir) >= sizeof(a->console_dir) - 32) {
            snprintf(err, errlen, "admin: key 'tps.admin.consoleDir': path too long");
            goto out;
        }
        copy_str(a->console_dir, sizeof(a->console_dir), s->console_dir);
        a->console = true;
    }
    if (!split_list(s->allowed_origins, &a->origins[0][0], MAX_ORIGINS, &a->n_origins,
                    sizeof(a->origins[0]))) {
        snprintf(err, errlen, "admin: key 'tps.admin.allowedOrigins': more than %d origins or "
                 "one too long", MAX_ORIGINS);
        goto out;
    }
    if (!split_list(s->profiles, &a->profiles[0][0], MAX_PROFILES, &a->n_profiles,
                    sizeof(a->profiles[0]))) {
        snprintf(err, errlen, "admin: key 'tps.admin.profiles': more than %d types or one "
                 "too long", MAX_PROFILES);
        goto out;
    }
    if (s->csrf_key != NULL) {
        if (s->csrf_key_len < 16 || s->csrf_key_len > sizeof(a->csrf_key)) {
            snprintf(err, errlen, "admin: key 'tps.admin.csrfKey_file': the key must have "
                     "16 to 64 bytes (has %zu)", s->csrf_key_len);
            goto out;
        }
        memcpy(a->csrf_key, s->csrf_key, s->csrf_key_len);
        a->csrf_key_len = s->csrf_key_len;
    } else {
        if (RAND_bytes(a->csrf_key, 32) != 1) {
            snprintf(err, errlen, "admin: no random bytes for the CSRF key");
            rc = TPS_ECRYPTO;
            goto out;
        }
        a->csrf_key_len = 32;
    }
    a->csrf_ttl = s->csrf_ttl_s ? s->csrf_ttl_s : 28800;
    a->max_page = s->max_page ? s->max_page : 500;
    a->def_page = s->default_page ? s->default_page : 20;
    if (a->def_page > a->max_page)
        a->def_page = a->max_page;
    a->max_scan = s->max_scan ? s->max_scan : 20000;
    *out = a;
    return TPS_OK;
out:
    tps_admin_free(a);
    return rc;
}

void
tps_admin_free(struct tps_admin *a)
{
    if (a == NULL)
        return;
    OPENSSL_cleanse(a->csrf_key, sizeof(a->csrf_key));
    free(a);
}

enum tps_rc
tps_admin_worker_open(const struct tps_admin *a, struct tps_admin_worker **out, char *err,
                      size_t errlen)
{
    struct tps_admin_worker *w;
    enum tps_rc rc;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return TPS_ENOMEM;
    w->a = a;
    rc = a->be->worker_open(a->shared, &w->w, err, errlen);
    if (rc != TPS_OK) {
        free(w);
        return rc;
    }
    *out = w;
    return TPS_OK;
}

void
tps_admin_worker_close(struct tps_admin_worker *w)
{
    if (w == NULL)
        return;
    if (w->w != NULL)
        w->a->be->worker_close(w->w);
    free(w);
}

enum tps_rc
tps_admin_settings_from_cfg(const struct cmn_cfg *cfg, struct tps_admin_settings *s,
                            uint8_t *key, size_t key_size, char *err, size_t errlen)
{
    const char *v;
    size_t klen = 0;
    enum cmn_rc crc;

    memset(s, 0, sizeof(*s));
    v = cmn_cfg_str(cfg, "tps.instanceId");
    s->instance = v ? v : "tps1";
    s->console_dir = cmn_cfg_str(cfg, "tps.admin.consoleDir");
    s->allowed_origins = cmn_cfg_str(cfg, "tps.admin.allowedOrigins");
    s->profiles = cmn_cfg_str(cfg, "tps.admin.profiles");
    s->csrf_ttl_s = (unsigned)cmn_cfg_uint(cfg, "tps.admin.csrfTTL");
    s->max_page = (unsigned)cmn_cfg_uint(cfg, "tps.admin.maxPageSize");
    s->default_page = (unsigned)cmn_cfg_uint(cfg, "tps.admin.defaultPageSize");
    s->max_scan = (unsigned)cmn_cfg_uint(cfg, "tps.admin.maxScan");
    if (cmn_cfg_isset(cfg, "tps.admin.csrfKey_file")) {
        crc = cmn_cfg_secret_read(cfg, "tps.admin.csrfKey_file", key, key_size, &klen);
        if (crc != CMN_OK || klen < 16) {
            snprintf(err, errlen, "admin: key 'tps.admin.csrfKey_file': %s",
                     crc != CMN_OK ? cmn_strerror(crc) : "key shorter than 16 bytes");
            return TPS_ECONFIG;
        }
        s->csrf_key = key;
        s->csrf_key_len = klen;
    }
    return TPS_OK;
}

bool
tps_admin_owns_path(const char *path)
{
    static const char *const roots[] = {"/tps/rest", "/tps/ui"};

    if (path == NULL)
        return false;
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(roots[i]);
        if (strncmp(path, roots[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return true;
    }
    return false;
}

/* ---- CSRF ------------------------------------------------------------------------------- */

static bool
csrf_mac(const struct tps_admin *a, const char *fingerprint, long long expiry, char *hex,
         size_t hex_size)
{
    char msg[256];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int k;

    k = snprintf(msg, sizeof(msg), "tps-admin-csrf-v1|%s|%lld", fingerprint, expiry);
    if (k < 0 || (size_t)k >= sizeof(msg))
        return false;
    if (HMAC(EVP_sha256(), a->csrf_key, (int)a->csrf_key_len, (const uint8_t *)msg, (size_t)k,
             md, &mdlen) == NULL)
        return false;
    if (cmn_hex_encode(md, mdlen, hex, hex_size) != CMN_OK)
        return false;
    for (char *p = hex; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    OPENSSL_cleanse(md, sizeof(md));
    return true;
}

enum tps_rc
tps_admin_csrf_make(const struct tps_admin *a, const char *fingerprint, long long now, char *out,
                    size_t out_size)
{
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    long long expiry = now + (long long)a->csrf_ttl;
    int k;

    if (fingerprint == NULL || fingerprint[0] == '\0')
        return TPS_EINVAL;
    if (!csrf_mac(a, fingerprint, expiry, hex, sizeof(hex)))
        return TPS_ECRYPTO;
    k = snprintf(out, out_size, "%lld.%s", expiry, hex);
    if (k < 0 || (size_t)k >= out_size)
        return TPS_EINVAL;
    return TPS_OK;
}

bool
tps_admin_csrf_check(const struct tps_admin *a, const char *fingerprint, long long now,
                     const char *token)
{
    char hex[2 * EVP_MAX_MD_SIZE + 1], num[24];
    const char *dot;
    unsigned long long expiry;
    size_t nl;

    if (fingerprint == NULL || token == NULL)
        return false;
    dot = strchr(token, '.');
    if (dot == NULL)
        return false;
    nl = (size_t)(dot - token);
    if (nl == 0 || nl >= sizeof(num))
        return false;
    memcpy(num, token, nl);
    num[nl] = '\0';
    if (cmn_parse_uint(num, 0, (unsigned long long)1 << 62, &expiry) != CMN_OK)
        return false;
    if ((long long)expiry < now || (long long)expiry > now + (long long)a->csrf_ttl)
        return false;
    if (!csrf_mac(a, fingerprint, (long long)expiry, hex, sizeof(hex)))
        return false;
    if (strlen(dot + 1) != strlen(hex))
        return false;
    return CRYPTO_memcmp(hex, dot + 1, strlen(hex)) == 0;
}

/* ---- paging ----------------------------------------------------------------------------- */

enum tps_rc
tps_admin_page_parse(const struct tps_admin *a, const char *start, const char *size,
                     unsigned *out_start, unsigned *out_size)
{
    unsigned long long v;

    *out_start = 0;
    *out_size = a->def_page;
    if (start != NULL && start[0] != '\0') {
        if (cmn_parse_uint(start, 0, 100000000ULL, &v) != CMN_OK)
            return TPS_EINVAL;
        *out_start = (unsigned)v;
    }
    if (size != NULL && size[0] != '\0') {
        if (cmn_parse_uint(size, 0, 100000000ULL, &v) != CMN_OK)
            return TPS_EINVAL;
        if (v < 1)
            v = 1;
        if (v > a->max_page)
            v = a->max_page;
        *out_size = (unsigned)v;
    }
    return TPS_OK;
}

/* ---- responses -------------------------------------------------------------------------- */

#define API_CSP "default-src 'none'; frame-ancestors 'none'"
#define UI_CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "               \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* Writes a complete response with the security headers every answer carries. extra: up to 3
 * more headers (Allow, Location, Set-Cookie). */
static enum tps_rc
send_raw(struct req *r, int status, const char *ctype, const char *csp,
         const struct cmn_http_hdr *extra, size_t nextra, const void *body, size_t len)
{
    struct cmn_http_hdr hdrs[12];
    size_t n = 0;
    enum cmn_rc crc;

    hdrs[n++] = (struct cmn_http_hdr){"X-Content-Type-Options", "nosniff"};
    hdrs[n++] = (struct cmn_http_hdr){"Cache-Control", "no-store"};
    hdrs[n++] = (struct cmn_http_hdr){"Content-Security-Policy", csp};
    hdrs[n++] = (struct cmn_http_hdr){"X-Frame-Options", "DENY"};
    hdrs[n++] = (struct cmn_http_hdr){"Referrer-Policy", "no-referrer"};
    hdrs[n++] = (struct cmn_http_hdr){"Cross-Origin-Resource-Policy", "same-origin"};
    hdrs[n++] = (struct cmn_http_hdr){"X-TPS-Instance", r->a->instance};
    for (size_t i = 0; i < nextra && n < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        hdrs[n++] = extra[i];
    r->status = status;
    crc = cmn_http_write_response(r->c, status, NULL, ctype, hdrs, n, body, len);
    if (crc != CMN_OK)
        return crc == CMN_ETIMEDOUT ? TPS_ETIMEDOUT : crc == CMN_ECLOSED ? TPS_ECLOSED : TPS_EIO;
    return TPS_OK;
}

/* Sends obj (consumed) as JSON. */
static enum tps_rc
send_json(struct req *r, int status, json_object *obj, const struct cmn_http_hdr *extra,
          size_t nextra)
{
    const char *s;
    enum tps_rc rc;

    if (obj == NULL) {
        static const char oom[] = "{\"Code\":500,\"Error\":\"no_memory\",\"Message\":\"out of "
                                  "memory\"}";
        return send_raw(r, 500, "application/json; charset=utf-8", API_CSP, NULL, 0, oom,
                        sizeof(oom) - 1);
    }
    s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    rc = send_raw(r, status, "application/json; charset=utf-8", API_CSP, extra, nextra, s,
                  strlen(s));
    json_object_put(obj);
    return rc;
}

static void
jadd_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* {"Code":status,"Error":code,"Message":msg,"Instance":...}: Dogtag's error shape plus a
 * machine-readable code. msg never carries a secret. */
static enum tps_rc
send_error(struct req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum tps_rc
send_error(struct req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    json_object *o = json_object_new_object();

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (o != NULL) {
        json_object_object_add(o, "Code", json_object_new_int(status));
        jadd_str(o, "Error", code);
        jadd_str(o, "Message", msg);
        jadd_str(o, "Instance", r->a->instance);
    }
    return send_json(r, status, o, NULL, 0);
}

/* ---- request parsing -------------------------------------------------------------------- */

/* Parses the query into r->params. false on a malformed or oversized parameter. */
static bool
parse_query(struct req *r, const char *q)
{
    r->nparams = 0;
    while (q != NULL && *q != '\0') {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t nl = eq ? (size_t)(eq - q) : len;
        size_t vl = eq ? len - nl - 1 : 0;
        size_t got = 0;

        if (len == 0) {
            q++;
            continue;
        }
        if (r->nparams >= MAX_PARAMS || nl == 0 || nl >= sizeof(r->params[0].name))
            return false;
        if (cmn_pct_decode_mem(q, nl, CMN_PCT_STRICT, (uint8_t *)r->params[r->nparams].name,
                               sizeof(r->params[0].name) - 1, &got) != CMN_OK)
            return false;
        r->params[r->nparams].name[got] = '\0';
        if (strlen(r->params[r->nparams].name) != got || got == 0)
            return false; /* an embedded NUL */
        got = 0;
        if (eq != NULL &&
            cmn_pct_decode_mem(eq + 1, vl, CMN_PCT_STRICT, (uint8_t *)r->params[r->nparams].value,
                               MAX_PARAM_VALUE - 1, &got) != CMN_OK)
            return false;
        r->params[r->nparams].value[got] = '\0';
        if (strlen(r->params[r->nparams].value) != got)
            return false; /* an embedded NUL */
        for (size_t i = 0; i < r->nparams; i++)
            if (strcmp(r->params[i].name, r->params[r->nparams].name) == 0)
                return false; /* duplicates are ambiguous */
        r->nparams++;
        q += len;
        if (*q == '&')
            q++;
    }
    return true;
}

static const char *
param(const struct req *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

/* True when the Content-Type is application/json, optionally with charset=utf-8. */
static bool
is_json_type(const char *ct)
{
    size_t n;
    const char *p;

    if (ct == NULL)
        return false;
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n != 16 || strncasecmp(ct, "application/json", 16) != 0)
        return false;
    p = ct + strcspn(ct, ";");
    if (*p == '\0')
        return true;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return strcasecmp(p, "charset=utf-8") == 0 || strcasecmp(p, "charset=\"utf-8\"") == 0;
}

/* Same-origin rule for state-changing requests: an Origin, when sent, must be https://<Host>
 * or an allowed origin; a browser's Sec-Fetch-Site must not say cross-site. */
static bool
origin_ok(const struct req *r)
{
    const char *origin = cmn_http_head_get(r->h, "Origin");
    const char *host = cmn_http_head_get(r->h, "Host");
    const char *site = cmn_http_head_get(r->h, "Sec-Fetch-Site");
    char self[300];

    if (site != NULL && strcasecmp(site, "cross-site") == 0)
        return false;
    if (origin == NULL)
        return true; /* not a browser (curl, scripts): the CSRF header still applies */
    for (size_t i = 0; i < r->a->n_origins; i++)
        if (strcmp(origin, r->a->origins[i]) == 0)
            return true;
    if (host == NULL)
        return false;
    snprintf(self, sizeof(self), "https://%s", host);
    return strcasecmp(origin, self) == 0;
}

/* Value of cookie `name` in the Cookie header, copied into out. */
static bool
cookie_get(const struct req *r, const char *name, char *out, size_t cap)
{
    const char *c = cmn_http_head_get(r->h, "Cookie");
    size_t nl = strlen(name);

    while (c != NULL && *c != '\0') {
        size_t len;
        while (*c == ' ' || *c == ';')
            c++;
        len = strcspn(c, ";");
        if (len > nl && strncmp(c, name, nl) == 0 && c[nl] == '=') {
            if (len - nl - 1 >= cap)
                return false;
            memcpy(out, c + nl + 1, len - nl - 1);
            out[len - nl - 1] = '\0';
            return true;
        }
        c += len;
    }
    return false;
}

/* ---- authorisation ---------------------------------------------------------------------- */

/* Identifies the caller; on failure answers (401/403/503) and returns false. */
static bool
authenticate(struct req *r, enum tps_rc *wrc)
{
    char err[512] = "";
    enum tps_rc rc;

    if (r->peer == NULL || r->peer->cert == NULL || r->peer->fingerprint == NULL) {
        *wrc = send_error(r, 401, "no_certificate",
                          "a TLS client certificate is required for the admin API");
        return false;
    }
    rc = r->a->be->whois(r->w->w, r->peer, &r->staff, err, sizeof(err));
    if (rc == TPS_ENOTFOUND) {
        CMN_LOG(CMN_LOG_NOTICE, "admin.unmapped", NULL, "subject=%s fp=%s ip=%s why=%s",
                r->peer->subject ? r->peer->subject : "", r->peer->fingerprint,
                r->peer->client_ip ? r->peer->client_ip : "", err);
        *wrc = send_error(r, 403, "unknown_user",
                          "the client certificate is not mapped to a staff entry");
        return false;
    }
    if (rc != TPS_OK) {
        CMN_LOG(CMN_LOG_WARN, "admin.whois_failed", NULL, "fp=%s err=%s", r->peer->fingerprint,
                err);
        *wrc = send_error(r, 503, "directory_unavailable",
                          "the staff directory could not be read: %s", err);
        return false;
    }
    if (r->staff.roles == 0) {
        *wrc = send_error(r, 403, "no_role", "user '%s' is in no TPS role group", r->staff.uid);
        return false;
    }
    r->have_staff = true;
    return true;
}

static bool
may_see_type(const struct tps_admin_staff *s, const char *type)
{
    if (s->all_profiles)
        return true;
    if (type == NULL)
        return false;
    for (size_t i = 0; i < s->n_profiles && i < TPS_ADMIN_MAX_PROFILES; i++)
        if (strcmp(s->profiles[i], type) == 0)
            return true;
    return false;
}

/* The CSRF rules of a state-changing request; on failure answers 403/415 and returns false. */
static bool
check_state_change(struct req *r, bool need_json_body, enum tps_rc *wrc)
{
    const char *hdr = cmn_http_head_get(r->h, "X-TPS-CSRF");
    const char *ct = cmn_http_head_get(r->h, "Content-Type");
    char cookie[160];

    if (!origin_ok(r)) {
        *wrc = send_error(r, 403, "bad_origin", "cross-origin state-changing request refused");
        return false;
    }
    if ((need_json_body || r->body.len > 0 || ct != NULL) && !is_json_type(ct)) {
        *wrc = send_error(r, 415, "unsupported_media_type",
                          "state-changing requests take Content-Type: application/json");
        return false;
    }
    if (hdr == NULL ||
        !tps_admin_csrf_check(r->a, r->peer->fingerprint, (long long)time(NULL), hdr)) {
        *wrc = send_error(r, 403, "csrf",
                          "missing or invalid X-TPS-CSRF header: get a token from "
                          "GET /tps/rest/account");
        return false;
    }
    if (cookie_get(r, "tps_csrf", cookie, sizeof(cookie)) && strcmp(cookie, hdr) != 0) {
        *wrc = send_error(r, 403, "csrf", "X-TPS-CSRF header and tps_csrf cookie differ");
        return false;
    }
    return true;
}

/* ---- JSON of records -------------------------------------------------------------------- */

static json_object *
status_json(enum tps_token_status s)
{
    json_object *o = json_object_new_object();

    jadd_str(o, "name", tps_token_status_name(s));
    jadd_str(o, "label", tps_admin_status_label(s));
    return o;
}

static json_object *
token_json(const struct tps_admin *a, const struct tps_token *t, bool with_next)
{
    json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    jadd_str(o, "id", t->cuid);
    jadd_str(o, "TokenID", t->cuid);
    jadd_str(o, "UserID", t->user_id);
    jadd_str(o, "Type", t->type);
    json_object_object_add(o, "Status", status_json(t->status));
    jadd_str(o, "StoredStatus", t->status_raw);
    jadd_str(o, "Reason", t->reason);
    jadd_str(o, "AppletID", t->applet_id);
    jadd_str(o, "KeyInfo", t->key_info);
    jadd_str(o, "Policy", t->policy);
    jadd_str(o, "CreateTimestamp", t->date_create);
    jadd_str(o, "ModifyTimestamp", t->date_modify);
    if (with_next) {
        enum tps_token_status next[8];
        size_t n;
        json_object *arr = json_object_new_array();

        tps_admin_next_states(a, t->status, next, &n);
        for (size_t i = 0; i < n; i++)
            json_object_array_add(arr, status_json(next[i]));
        json_object_object_add(o, "NextStates", arr);
    }
    return o;
}

static json_object *
cert_json(const struct tps_token_cert *c)
{
    json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    jadd_str(o, "id", c->cn);
    jadd_str(o, "SerialNumber", c->serial);
    jadd_str(o, "Subject", c->subject);
    jadd_str(o, "Issuer", c->issuer);
    jadd_str(o, "TokenID", c->cuid);
    jadd_str(o, "UserID", c->user_id);
    jadd_str(o, "KeyType", c->key_type);
    jadd_str(o, "Status", c->status);
    jadd_str(o, "Type", c->type);
    jadd_str(o, "Origin", c->origin);
    jadd_str(o, "NotBefore", c->not_before);
    jadd_str(o, "NotAfter", c->not_after);
    jadd_str(o, "CreateTimestamp", c->date_create);
    jadd_str(o, "ModifyTimestamp", c->date_modify);
    return o;
}

static json_object *
activity_json(const struct tps_admin_activity *x)
{
    json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    jadd_str(o, "id", x->id);
    jadd_str(o, "TokenID", x->cuid);
    jadd_str(o, "UserID", x->user_id);
    jadd_str(o, "Type", x->type);
    jadd_str(o, "Operation", x->op);
    jadd_str(o, "Result", x->result);
    jadd_str(o, "Message", x->msg);
    jadd_str(o, "IP", x->ip);
    jadd_str(o, "Timestamp", x->date);
    return o;
}

/* The "served by" block: which instance and which LDAP server answered. */
static json_object *
served_json(struct req *r)
{
    char srv[300] = "";
    json_object *o = json_object_new_object();

    jadd_str(o, "Instance", r->a->instance);
    if (r->a->be->db_server != NULL)
        r->a->be->db_server(r->w->w, srv, sizeof(srv));
    jadd_str(o, "LdapServer", srv);
    return o;
}

static json_object *
collection(size_t total, bool exact, unsigned start, unsigned size, json_object *entries,
           json_object *served)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "total", json_object_new_int64((int64_t)total));
    json_object_object_add(o, "totalExact", json_object_new_boolean(exact));
    json_object_object_add(o, "start", json_object_new_int64((int64_t)start));
    json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
    json_object_object_add(o, "entries", entries);
    json_object_object_add(o, "Served", served);
    return o;
}

static enum tps_rc
db_error(struct req *r, enum tps_rc rc, const char *what, const char *err)
{
    if (rc == TPS_ENOTFOUND)
        return send_error(r, 404, "not_found", "%s: not found", what);
    if (rc == TPS_EBUSY)
        return send_error(r, 409, "conflict", "%s: the record changed meanwhile (%s); re-read "
                          "and retry", what, err);
    if (rc == TPS_EPOLICY)
        return send_error(r, 409, "transition_denied", "%s: %s", what, err);
    if (rc == TPS_ENOMEM)
        return send_error(r, 500, "no_memory", "%s: out of memory", what);
    return send_error(r, 503, "tokendb_unavailable", "%s: token database: %s", what, err);
}

/* ---- handlers --------------------------------------------------------------------------- */

static enum tps_rc
h_account(struct req *r)
{
    char token[128], cookie[256];
    json_object *o, *roles, *profs;
    struct cmn_http_hdr hdr;
    enum tps_rc rc;

    rc = tps_admin_csrf_make(r->a, r->peer->fingerprint, (long long)time(NULL), token,
                             sizeof(token));
    if (rc != TPS_OK)
        return send_error(r, 500, "csrf", "cannot make a CSRF token");
    o = json_object_new_object();
    if (o == NULL)
        return send_json(r, 500, NULL, NULL, 0);
    jadd_str(o, "id", r->staff.uid);
    jadd_str(o, "UserID", r->staff.uid);
    jadd_str(o, "FullName", r->staff.full_name[0] ? r->staff.full_name : r->staff.uid);
    jadd_str(o, "DN", r->staff.dn);
    jadd_str(o, "CertificateSubject", r->peer->subject);
    roles = json_object_new_array();
    for (unsigned bit = 1; bit <= TPS_ADMIN_ROLE_ADMIN; bit <<= 1)
        if (r->staff.roles & bit)
            json_object_array_add(roles, json_object_new_string(role_name(bit)));
    json_object_object_add(o, "Roles", roles);
    profs = json_object_new_array();
    if (r->staff.all_profiles)
        json_object_array_add(profs, json_object_new_string("All Profiles"));
    for (size_t i = 0; i < r->staff.n_profiles && i < TPS_ADMIN_MAX_PROFILES; i++)
        json_object_array_add(profs, json_object_new_string(r->staff.profiles[i]));
    json_object_object_add(o, "Profiles", profs);
    json_object_object_add(o, "CanChangeStatus",
                           json_object_new_boolean((r->staff.roles & (TPS_ADMIN_ROLE_AGENT |
                                                                      TPS_ADMIN_ROLE_ADMIN)) != 0));
    jadd_str(o, "csrfToken", token);
    json_object_object_add(o, "Served", served_json(r));
    snprintf(cookie, sizeof(cookie), "tps_csrf=%s; Path=/tps/; Secure; HttpOnly; SameSite=Strict",
             token);
    hdr = (struct cmn_http_hdr){"Set-Cookie", cookie};
    return send_json(r, 200, o, &hdr, 1);
}

static enum tps_rc
h_profiles(struct req *r)
{
    json_object *arr = json_object_new_array();
    size_t total = 0;

    for (size_t i = 0; i < r->a->n_profiles; i++) {
        json_object *p;
        if (!may_see_type(&r->staff, r->a->profiles[i]))
            continue;
        p = json_object_new_object();
        jadd_str(p, "id", r->a->profiles[i]);
        jadd_str(p, "ProfileID", r->a->profiles[i]);
        jadd_str(p, "Status", "Enabled");
        json_object_array_add(arr, p);
        total++;
    }
    return send_json(r, 200, collection(total, true, 0, (unsigned)total, arr, served_json(r)),
                     NULL, 0);
}

/* Search state of GET /tps/rest/tokens. */
struct token_search {
    const struct tps_admin *a;
    const struct tps_admin_staff *staff;
    const char *filter; /* substring of CUID or user id, any case; NULL: none */
    unsigned start, size;
    size_t seen, matched;
    bool capped;
    json_object *entries;
};

static bool
contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    if (hay == NULL)
        return false;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return n == 0;
}

static bool
token_visit(void *arg, const struct tps_token *t)
{
    struct token_search *s = arg;

    if (++s->seen > s->a->max_scan) {
        s->capped = true;
        return false;
    }
    if (!may_see_type(s->staff, t->type))
        return true;
    if (s->filter != NULL && !contains_ci(t->cuid, s->filter) && !contains_ci(t->user_id, s->filter))
        return true;
    s->matched++;
    if (s->matched > s->start && json_object_array_length(s->entries) < s->size)
        json_object_array_add(s->entries, token_json(s->a, t, false));
    return true;
}

static enum tps_rc
h_tokens(struct req *r)
{
    struct token_search s;
    struct tps_token_query q = {0};
    const char *status = param(r, "status");
    char err[512] = "";
    enum tps_token_status st;
    enum tps_rc rc;

    memset(&s, 0, sizeof(s));
    s.a = r->a;
    s.staff = &r->staff;
    if (tps_admin_page_parse(r->a, param(r, "start"), param(r, "size"), &s.start, &s.size) !=
        TPS_OK)
        return send_error(r, 400, "bad_paging", "start and size must be decimal numbers");
    s.filter = param(r, "filter");
    if (s.filter != NULL && s.filter[0] == '\0')
        s.filter = NULL;
    q.user_id = param(r, "userID");
    if (q.user_id != NULL && q.user_id[0] == '\0')
        q.user_id = NULL;
    q.type = param(r, "type");
    if (q.type != NULL && q.type[0] == '\0')
        q.type = NULL;
    if (status != NULL && status[0] != '\0') {
        st = tps_token_status_parse(status, NULL);
        if (st == TPS_TOKEN_UNKNOWN)
            return send_error(r, 400, "bad_status", "unknown token status '%s'", status);
        q.status = tps_token_status_name(st);
    }
    s.entries = json_object_new_array();
    if (s.entries == NULL)
        return send_json(r, 500, NULL, NULL, 0);
    rc = r->a->be->token_scan(r->w->w, &q, token_visit, &s, err, sizeof(err));
    if (rc != TPS_OK) {
        json_object_put(s.entries);
        return db_error(r, rc, "token search", err);
    }
    return send_json(r, 200, collection(s.matched, !s.capped, s.start, s.size, s.entries,
                                        served_json(r)),
                     NULL, 0);
}

/* Reads a token the caller may see; answers 404/503 itself when not. */
static bool
load_token(struct req *r, const char *cuid, struct tps_token *t, enum tps_rc *wrc)
{
    char err[512] = "";
    enum tps_rc rc;

    rc = r->a->be->token_get(r->w->w, cuid, t, err, sizeof(err));
    if (rc == TPS_OK && !may_see_type(&r->staff, t->type)) {
        tps_token_cleanup(t);
        rc = TPS_ENOTFOUND; /* outside the caller's profiles: as if absent */
    }
    if (rc != TPS_OK) {
        char what[80];
        snprintf(what, sizeof(what), "token %s", cuid);
        *wrc = db_error(r, rc, what, err);
        return false;
    }
    return true;
}

static enum tps_rc
h_token_get(struct req *r, const char *cuid)
{
    struct tps_token t;
    json_object *o;
    enum tps_rc wrc = TPS_OK;

    memset(&t, 0, sizeof(t));
    if (!load_token(r, cuid, &t, &wrc))
        return wrc;
    o = token_json(r->a, &t, true);
    if (o != NULL)
        json_object_object_add(o, "Served", served_json(r));
    tps_token_cleanup(&t);
    return send_json(r, 200, o, NULL, 0);
}

static enum tps_rc
h_certs(struct req *r, const char *cuid)
{
    struct tps_token t;
    struct tps_token_cert *certs = NULL;
    size_t n = 0;
    char err[512] = "";
    json_object *arr;
    enum tps_rc rc, wrc = TPS_OK;

    memset(&t, 0, sizeof(t));
    if (cuid == NULL || !is_hex_cuid(cuid))
        return send_error(r, 400, "bad_token_id", "tokenID must be 1 to %d hex digits",
                          TPS_CUID_MAX);
    if (!load_token(r, cuid, &t, &wrc))
        return wrc;
    tps_token_cleanup(&t);
    rc = r->a->be->cert_list(r->w->w, cuid, &certs, &n, err, sizeof(err));
    if (rc != TPS_OK)
        return db_error(r, rc, "certificate list", err);
    arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, cert_json(&certs[i]));
    r->a->be->certs_free(certs, n);
    return send_json(r, 200, collection(n, true, 0, (unsigned)n, arr, served_json(r)), NULL, 0);
}

struct activity_search {
    const struct tps_admin_staff *staff;
    unsigned start, size;
    size_t seen, matched, max_scan;
    bool capped;
    json_object *entries;
};

static bool
activity_visit(void *arg, const struct tps_admin_activity *x)
{
    struct activity_search *s = arg;

    if (++s->seen > s->max_scan) {
        s->capped = true;
        return false;
    }
    if (!may_see_type(s->staff, x->type))
        return true;
    s->matched++;
    if (s->matched > s->start && json_object_array_length(s->entries) < s->size)
        json_object_array_add(s->entries, activity_json(x));
    return true;
}

static enum tps_rc
h_activities(struct req *r, const char *cuid)
{
    struct activity_search s;
    char err[512] = "";
    enum tps_rc rc;

    memset(&s, 0, sizeof(s));
    s.staff = &r->staff;
    s.max_scan = r->a->max_scan;
    if (cuid != NULL && cuid[0] == '\0')
        cuid = NULL;
    if (cuid != NULL && !is_hex_cuid(cuid))
        return send_error(r, 400, "bad_token_id", "tokenID must be 1 to %d hex digits",
                          TPS_CUID_MAX);
    if (tps_admin_page_parse(r->a, param(r, "start"), param(r, "size"), &s.start, &s.size) !=
        TPS_OK)
        return send_error(r, 400, "bad_paging", "start and size must be decimal numbers");
    s.entries = json_object_new_array();
    if (s.entries == NULL)
        return send_json(r, 500, NULL, NULL, 0);
    rc = r->a->be->activity_scan(r->w->w, cuid, activity_visit, &s, err, sizeof(err));
    if (rc != TPS_OK) {
        json_object_put(s.entries);
        return db_error(r, rc, "activity search", err);
    }
    return send_json(r, 200, collection(s.matched, !s.capped, s.start, s.size, s.entries,
                                        served_json(r)),
                     NULL, 0);
}

/* ---- status change ---------------------------------------------------------------------- */

/* Takes the target status and the officer's comment from the query (POST, Dogtag style) or a
 * JSON body {"Status": "...", "Reason": "..."} (PUT/PATCH). Answers 400 itself. */
static bool
change_request(struct req *r, enum tps_token_status *to, char *comment, size_t cap,
               enum tps_rc *wrc)
{
    const char *status = NULL, *reason = NULL;
    json_object *root = NULL, *v;
    struct json_tokener *tok = NULL;
    bool ok = false;

    if (r->body.len > 0) {
        tok = json_tokener_new_ex(8);
        if (tok == NULL) {
            *wrc = send_json(r, 500, NULL, NULL, 0);
            return false;
        }
        root = json_tokener_parse_ex(tok, (const char *)r->body.data, (int)r->body.len);
        if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != r->body.len ||
            !json_object_is_type(root, json_type_object)) {
            *wrc = send_error(r, 400, "bad_json", "the body must be one JSON object");
            goto out;
        }
        if ((json_object_object_get_ex(root, "Status", &v) ||
             json_object_object_get_ex(root, "status", &v))) {
            if (!json_object_is_type(v, json_type_string)) {
                *wrc = send_error(r, 400, "bad_json", "Status must be a string");
                goto out;
            }
            status = json_object_get_string(v);
        }
        if ((json_object_object_get_ex(root, "Reason", &v) ||
             json_object_object_get_ex(root, "reason", &v))) {
            if (!json_object_is_type(v, json_type_string)) {
                *wrc = send_error(r, 400, "bad_json", "Reason must be a string");
                goto out;
            }
            reason = json_object_get_string(v);
        }
    }
    if (status == NULL)
        status = param(r, "status");
    if (reason == NULL)
        reason = param(r, "reason");
    if (status == NULL || status[0] == '\0') {
        *wrc = send_error(r, 400, "missing_status", "give the new status (status=...)");
        goto out;
    }
    *to = tps_token_status_parse(status, NULL);
    if (*to == TPS_TOKEN_UNKNOWN) {
        *wrc = send_error(r, 400, "bad_status", "unknown token status (use ACTIVE, SUSPENDED, "
                          "PERM_LOST, DAMAGED, TERMINATED, FORMATTED, UNFORMATTED, "
                          "TEMP_LOST_PERM_LOST)");
        goto out;
    }
    comment[0] = '\0';
    if (reason != NULL) {
        size_t n = strlen(reason);
        if (n >= cap || n > MAX_COMMENT) {
            *wrc = send_error(r, 400, "bad_reason", "reason longer than %d characters",
                              MAX_COMMENT);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)reason[i] < 0x20 || reason[i] == 0x7f) {
                *wrc = send_error(r, 400, "bad_reason", "reason has a control character");
                goto out;
            }
        memcpy(comment, reason, n + 1);
    }
    ok = true;
out:
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return ok;
}

/* One certificate's fate in a status change. */
struct cert_step {
    const struct tps_token_cert *cert;
    enum tps_admin_ca_act act;
    int reason;
    bool done;
    char clone[300];
    char err[512];
};

/* Whether the CA must act on this certificate, given its recorded status. */
static bool
cert_needs(const struct tps_token_cert *c, enum tps_admin_ca_act act, int reason)
{
    const char *st = c->status ? c->status : "";

    if (act == TPS_ADMIN_CA_REVOKE) {
        if (strcasecmp(st, "active") == 0)
            return true;
        /* on hold and now a permanent reason: the CA turns the hold into a revocation */
        return strcasecmp(st, "revoked_on_hold") == 0 && reason != 6;
    }
    if (act == TPS_ADMIN_CA_UNREVOKE)
        return strcasecmp(st, "revoked_on_hold") == 0;
    return false;
}

static const char *
ca_reason_name(int reason)
{
    static const char *const names[] = {"unspecified",         "keyCompromise",
                                        "cACompromise",        "affiliationChanged",
                                        "superseded",          "cessationOfOperation",
                                        "certificateHold"};
    return reason >= 0 && reason <= 6 ? names[reason] : "unknown";
}

/* True while an unexpired operation lease (tokendb §6) is on the record: a format or
 * enrollment is running on the card and must not race a status change. */
static bool
lease_busy(const struct tps_token *t)
{
    const char *p;
    char when[32];
    size_t n;
    time_t exp;

    if (t->lease_value == NULL)
        return false;
    p = strstr(t->lease_value, "opExpires=");
    if (p == NULL)
        return true; /* a lease we cannot read: be careful */
    p += 10;
    n = strcspn(p, "&");
    if (n >= sizeof(when))
        return true;
    memcpy(when, p, n);
    when[n] = '\0';
    if (!tps_tdb_utc_parse(when, &exp))
        return true;
    return exp > time(NULL);
}

static enum tps_rc
h_change_status(struct req *r, const char *cuid)
{
    const struct tps_admin_backend *be = r->a->be;
    struct tps_token t;
    struct tps_token_cert *certs = NULL;
    struct cert_step *steps = NULL;
    size_t ncerts = 0, ndone = 0, nfailed = 0;
    enum tps_token_status from, to = TPS_TOKEN_UNKNOWN, next[8];
    size_t nnext = 0;
    char comment[MAX_COMMENT + 1] = "", err[512] = "", msg[700], from_name[32];
    const char *ip = r->peer->client_ip ? r->peer->client_ip : "";
    json_object *o = NULL, *arr;
    enum tps_rc rc, wrc = TPS_OK;
    bool allowed = false;
    struct tps_token_activity act;
    int status = 200;

    memset(&t, 0, sizeof(t));
    if (!(r->staff.roles & (TPS_ADMIN_ROLE_AGENT | TPS_ADMIN_ROLE_ADMIN))) {
        (void)cmn_audit("admin.status_change.denied", NULL,
                        "actor=%s role=%s cuid=%s ip=%s instance=%s why=role", r->staff.uid,
                        top_role(r->staff.roles), cuid, ip, r->a->instance);
        return send_error(r, 403, "forbidden",
                          "changing a token's status needs the agent or admin role");
    }
    if (!change_request(r, &to, comment, sizeof(comment), &wrc))
        return wrc;
    if (!load_token(r, cuid, &t, &wrc))
        return wrc;
    from = t.status;
    if (lease_busy(&t)) {
        wrc = send_error(r, 409, "busy", "token %s: an operation is running on it (lease %s); "
                         "retry when it has ended", cuid, t.lease_value);
        goto out;
    }
    copy_str(from_name, sizeof(from_name), tps_token_status_name(from));
    tps_admin_next_states(r->a, from, next, &nnext);
    for (size_t i = 0; i < nnext; i++)
        if (next[i] == to)
            allowed = true;
    if (!allowed) {
        (void)cmn_audit("admin.status_change.denied", NULL,
                        "actor=%s role=%s cuid=%s from=%s to=%s ip=%s instance=%s "
                        "why=transition",
                        r->staff.uid, top_role(r->staff.roles), cuid, from_name,
                        tps_token_status_name(to), ip, r->a->instance);
        wrc = send_error(r, 409, "transition_denied",
                         "token %s: %s -> %s is not an allowed transition", cuid, from_name,
                         tps_token_status_name(to));
        goto out;
    }
    /* The intent is on record before anything changes; no audit, no change (STYLE §6). */
    if (cmn_audit("admin.status_change.begin", NULL,
                  "actor=%s role=%s cuid=%s from=%s to=%s comment=%s ip=%s instance=%s",
                  r->staff.uid, top_role(r->staff.roles), cuid, from_name,
                  tps_token_status_name(to), comment, ip, r->a->instance) != CMN_OK) {
        wrc = send_error(r, 503, "audit_unavailable",
                         "the audit log cannot be written; nothing was changed");
        goto out;
    }
    rc = be->cert_list(r->w->w, cuid, &certs, &ncerts, err, sizeof(err));
    if (rc != TPS_OK) {
        wrc = db_error(r, rc, "certificate list", err);
        goto out;
    }
    steps = calloc(ncerts ? ncerts : 1, sizeof(*steps));
    if (steps == NULL) {
        wrc = send_json(r, 500, NULL, NULL, 0);
        goto out;
    }
    /* 1. the CA first: the token record changes only once every certificate is done */
    for (size_t i = 0; i < ncerts; i++) {
        struct cert_step *s = &steps[i];
        s->cert = &certs[i];
        rc = be->ca_action(r->a->shared, t.type ? t.type : "",
                           certs[i].key_type ? certs[i].key_type : "", from, to, &s->act,
                           &s->reason);
        if (rc != TPS_OK) {
            snprintf(s->err, sizeof(s->err), "no revocation rule for key type '%s'",
                     certs[i].key_type ? certs[i].key_type : "");
            nfailed++;
            break;
        }
        if (!cert_needs(&certs[i], s->act, s->reason)) {
            s->act = TPS_ADMIN_CA_NONE;
            continue;
        }
        if (certs[i].serial == NULL) {
            snprintf(s->err, sizeof(s->err), "certificate entry %s has no serial",
                     certs[i].cn ? certs[i].cn : "?");
            nfailed++;
            break;
        }
        if (s->act == TPS_ADMIN_CA_REVOKE)
            rc = be->ca_revoke(r->w->w, certs[i].serial, s->reason, s->clone, sizeof(s->clone),
                               s->err, sizeof(s->err));
        else
            rc = be->ca_unrevoke(r->w->w, certs[i].serial, s->clone, sizeof(s->clone), s->err,
                                 sizeof(s->err));
        if (rc != TPS_OK) {
            nfailed++;
            break;
        }
        s->done = true;
        ndone++;
        /* The CA changed it: the certificate entry says so whatever happens next. */
        rc = be->cert_set_status(r->w->w, certs[i].cn,
                                 s->act == TPS_ADMIN_CA_UNREVOKE ? "active"
                                 : s->reason == 6                ? "revoked_on_hold"
                                                                 : "revoked",
                                 err, sizeof(err));
        if (rc != TPS_OK)
            CMN_LOG(CMN_LOG_ERROR, "admin.cert_status", NULL,
                    "cuid=%s serial=%s err=%s (the CA changed it; the entry is stale)", cuid,
                    certs[i].serial, err);
        (void)cmn_audit("admin.cert", NULL, "actor=%s cuid=%s serial=%s action=%s reason=%s "
                        "clone=%s outcome=done instance=%s",
                        r->staff.uid, cuid, certs[i].serial,
                        s->act == TPS_ADMIN_CA_REVOKE ? "revoke" : "unrevoke",
                        s->act == TPS_ADMIN_CA_REVOKE ? ca_reason_name(s->reason) : "-",
                        s->clone, r->a->instance);
    }
    /* 2. the token record, asserted on what we read */
    if (nfailed == 0) {
        rc = be->token_set_status(r->w->w, &t, to, err, sizeof(err));
        if (rc != TPS_OK) {
            snprintf(msg, sizeof(msg), "status %s -> %s: token DB: %s", from_name,
                     tps_token_status_name(to), err);
            status = rc == TPS_EBUSY ? 409 : rc == TPS_EPOLICY ? 409 : 503;
        } else {
            snprintf(msg, sizeof(msg), "status %s -> %s by %s (%zu certificate%s changed)%s%s",
                     from_name, tps_token_status_name(to), r->staff.uid, ndone,
                     ndone == 1 ? "" : "s", comment[0] ? ": " : "", comment);
        }
    } else {
        const struct cert_step *bad = NULL;
        for (size_t i = 0; i < ncerts; i++)
            if (steps[i].err[0] != '\0')
                bad = &steps[i];
        snprintf(msg, sizeof(msg), "status %s -> %s refused: CA: certificate %s: %s; the token "
                 "keeps status %s (%zu certificate%s already changed at the CA)",
                 from_name, tps_token_status_name(to),
                 bad && bad->cert->serial ? bad->cert->serial : "?", bad ? bad->err : "",
                 from_name, ndone, ndone == 1 ? "" : "s");
        status = 502;
    }
    /* 3. activity and audit */
    memset(&act, 0, sizeof(act));
    act.op = "token_status_change";
    act.result = status == 200 ? "success" : "failure";
    act.cuid = cuid;
    act.user_id = t.user_id;
    act.ip = ip;
    act.msg = msg;
    act.type = t.type;
    if (be->activity_add(r->w->w, &act, err, sizeof(err)) != TPS_OK)
        CMN_LOG(CMN_LOG_ERROR, "admin.activity", NULL, "cuid=%s err=%s", cuid, err);
    if (cmn_audit("admin.status_change", NULL,
                  "actor=%s role=%s cuid=%s from=%s to=%s outcome=%s certs_changed=%zu msg=%s "
                  "ip=%s instance=%s",
                  r->staff.uid, top_role(r->staff.roles), cuid, from_name,
                  tps_token_status_name(to), status == 200 ? "success" : "failure", ndone, msg,
                  ip, r->a->instance) != CMN_OK)
        CMN_LOG(CMN_LOG_ERROR, "admin.audit", NULL, "cuid=%s the audit log failed after the "
                "change", cuid);
    CMN_LOG(CMN_LOG_NOTICE, "admin.status_change", NULL, "actor=%s cuid=%s status=%d msg=%s",
            r->staff.uid, cuid, status, msg);

    o = status == 200 ? token_json(r->a, &t, true) : json_object_new_object();
    if (o == NULL) {
        wrc = send_json(r, 500, NULL, NULL, 0);
        goto out;
    }
    if (status != 200) {
        json_object_object_add(o, "Code", json_object_new_int(status));
        jadd_str(o, "Error", status == 502 ? "ca_failed" : status == 409 ? "conflict"
                                                                          : "tokendb_unavailable");
        jadd_str(o, "Message", msg);
        jadd_str(o, "Instance", r->a->instance);
    }
    arr = json_object_new_array();
    for (size_t i = 0; i < ncerts; i++) {
        const struct cert_step *s = &steps[i];
        json_object *x;
        if (s->act == TPS_ADMIN_CA_NONE && s->err[0] == '\0')
            continue;
        x = json_object_new_object();
        jadd_str(x, "id", s->cert->cn);
        jadd_str(x, "SerialNumber", s->cert->serial);
        jadd_str(x, "Action", s->act == TPS_ADMIN_CA_REVOKE ? "revoke" : "unrevoke");
        jadd_str(x, "RevocationReason",
                 s->act == TPS_ADMIN_CA_REVOKE ? ca_reason_name(s->reason) : NULL);
        jadd_str(x, "Outcome", s->done ? "done" : s->err[0] ? "failed" : "not_attempted");
        jadd_str(x, "Clone", s->clone[0] ? s->clone : NULL);
        jadd_str(x, "Error", s->err[0] ? s->err : NULL);
        json_object_array_add(arr, x);
    }
    json_object_object_add(o, "Certificates", arr);
    jadd_str(o, "Activity", msg);
    json_object_object_add(o, "Served", served_json(r));
    wrc = send_json(r, status, o, NULL, 0);
out:
    if (certs != NULL)
        be->certs_free(certs, ncerts);
    free(steps);
    tps_token_cleanup(&t);
    return wrc;
}

/* ---- static console --------------------------------------------------------------------- */

static enum tps_rc
h_static(struct req *r, const char *rest)
{
    static const struct {
        const char *name, *type;
    } files[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"style.css", "text/css; charset=utf-8"},
        {"favicon.svg", "image/svg+xml"},
    };
    const char *name = NULL, *type = NULL;
    char path[1100];
    struct cmn_buf b;
    struct stat st;
    enum tps_rc rc;
    int fd = -1;

    if (!r->a->console)
        return send_error(r, 404, "not_found", "the console is not enabled");
    if (rest[0] == '\0') {
        struct cmn_http_hdr loc = {"Location", "/tps/ui/"};
        return send_raw(r, 302, "text/plain; charset=utf-8", UI_CSP, &loc, 1, "", 0);
    }
    if (strcmp(rest, "/") == 0)
        rest = "/index.html";
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (strcmp(rest + 1, files[i].name) == 0) {
            name = files[i].name;
            type = files[i].type;
        }
    if (name == NULL)
        return send_error(r, 404, "not_found", "no such console file");
    if (strcmp(r->h->method, "GET") != 0) {
        struct cmn_http_hdr allow = {"Allow", "GET"};
        r->status = 405;
        return send_raw(r, 405, "text/plain; charset=utf-8", UI_CSP, &allow, 1, "", 0);
    }
    snprintf(path, sizeof(path), "%s/%s", r->a->console_dir, name);
    cmn_buf_init(&b, MAX_STATIC);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_STATIC) {
        CMN_LOG(CMN_LOG_ERROR, "admin.console", NULL, "file=%s err=%s", path,
                fd < 0 ? strerror(errno) : "not a regular file of at most 512 KiB");
        rc = send_error(r, 500, "console_missing", "console file %s is unavailable", name);
        goto out;
    }
    for (;;) {
        uint8_t *p;
        ssize_t got;
        if (cmn_buf_reserve(&b, 8192, &p) != CMN_OK) {
            rc = send_error(r, 500, "console_too_big", "console file %s is too big", name);
            goto out;
        }
        got = read(fd, p, 8192);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = send_error(r, 500, "console_missing", "console file %s cannot be read", name);
            goto out;
        }
        if (got == 0)
            break;
        b.len += (size_t)got;
    }
    rc = send_raw(r, 200, type, UI_CSP, NULL, 0, b.data, b.len);
out:
    if (fd >= 0)
        close(fd);
    cmn_buf_cleanup(&b);
    return rc;
}

/* ---- routing ---------------------------------------------------------------------------- */

static enum tps_rc
method_not_allowed(struct req *r, const char *allow)
{
    struct cmn_http_hdr hdr = {"Allow", allow};
    json_object *o = json_object_new_object();

    if (o != NULL) {
        json_object_object_add(o, "Code", json_object_new_int(405));
        jadd_str(o, "Error", "method_not_allowed");
        jadd_str(o, "Message", "method not allowed on this resource");
        jadd_str(o, "Instance", r->a->instance);
    }
    return send_json(r, 405, o, &hdr, 1);
}

static bool
is_get(const struct req *r)
{
    return strcmp(r->h->method, "GET") == 0;
}

static enum tps_rc
route_rest(struct req *r, const char *rest)
{
    char seg[3][64];
    size_t nseg = 0;
    const char *p = rest;
    enum tps_rc wrc = TPS_OK;
    const char *m = r->h->method;

    /* split "/tokens/<cuid>/certificates" into at most 3 segments */
    while (*p == '/' && nseg < 3) {
        size_t len;
        p++;
        len = strcspn(p, "/");
        if (len == 0 || len >= sizeof(seg[0]))
            return send_error(r, 404, "not_found", "no such resource");
        memcpy(seg[nseg], p, len);
        seg[nseg][len] = '\0';
        nseg++;
        p += len;
    }
    if (*p != '\0' && strcmp(p, "/") != 0)
        return send_error(r, 404, "not_found", "no such resource");
    if (nseg == 0)
        return send_error(r, 404, "not_found", "no such resource");
    if (!parse_query(r, r->h->query))
        return send_error(r, 400, "bad_query", "malformed, duplicate or oversized query "
                          "parameter");
    if (!authenticate(r, &wrc))
        return wrc;

    if (strcmp(seg[0], "account") == 0 && nseg == 1)
        return is_get(r) ? h_account(r) : method_not_allowed(r, "GET");
    if (strcmp(seg[0], "profiles") == 0 && nseg == 1)
        return is_get(r) ? h_profiles(r) : method_not_allowed(r, "GET");
    if (strcmp(seg[0], "activities") == 0 && nseg == 1)
        return is_get(r) ? h_activities(r, param(r, "tokenID")) : method_not_allowed(r, "GET");
    if (strcmp(seg[0], "certs") == 0 && nseg == 1)
        return is_get(r) ? h_certs(r, param(r, "tokenID")) : method_not_allowed(r, "GET");
    if (strcmp(seg[0], "tokens") != 0)
        return send_error(r, 404, "not_found", "no such resource");
    if (nseg == 1)
        return is_get(r) ? h_tokens(r) : method_not_allowed(r, "GET");
    if (!is_hex_cuid(seg[1]))
        return send_error(r, 400, "bad_token_id", "a token id is 1 to %d hex digits",
                          TPS_CUID_MAX);
    for (char *c = seg[1]; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    if (nseg == 2) {
        if (is_get(r))
            return h_token_get(r, seg[1]);
        if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
            if (!check_state_change(r, strcmp(m, "POST") != 0, &wrc))
                return wrc;
            return h_change_status(r, seg[1]);
        }
        return method_not_allowed(r, "GET, POST, PUT, PATCH");
    }
    if (strcmp(seg[2], "certificates") == 0 || strcmp(seg[2], "certs") == 0)
        return is_get(r) ? h_certs(r, seg[1]) : method_not_allowed(r, "GET");
    if (strcmp(seg[2], "activities") == 0)
        return is_get(r) ? h_activities(r, seg[1]) : method_not_allowed(r, "GET");
    return send_error(r, 404, "not_found", "no such resource");
}

enum tps_rc
tps_admin_handle(const struct tps_admin *a, struct tps_admin_worker *w, struct cmn_http_conn *c,
                 const struct cmn_http_head *h, const struct tps_admin_peer *peer)
{
    struct req *r;
    enum tps_rc rc;
    enum cmn_rc crc;
    long long t0 = (long long)cmn_http_now_ms();

    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return TPS_ENOMEM;
    r->a = a;
    r->w = w;
    r->c = c;
    r->h = h;
    r->peer = peer;
    cmn_buf_init(&r->body, MAX_REQ_BODY);
    if (h->chunked || (h->has_length && h->content_length > 0)) {
        crc = cmn_http_read_body(c, &r->body);
        if (crc == CMN_ETOOBIG) {
            rc = send_error(r, 413, "too_big", "request body larger than %d bytes",
                            MAX_REQ_BODY);
            goto out;
        }
        if (crc != CMN_OK) {
            rc = send_error(r, 400, "bad_body", "request body: %s", cmn_strerror(crc));
            goto out;
        }
    }
    if (strncmp(h->path, "/tps/rest", 9) == 0 && (h->path[9] == '\0' || h->path[9] == '/'))
        rc = route_rest(r, h->path + 9);
    else if (strncmp(h->path, "/tps/ui", 7) == 0 && (h->path[7] == '\0' || h->path[7] == '/'))
        rc = h_static(r, h->path + 7);
    else
        rc = send_error(r, 404, "not_found", "no such resource");
out:
    CMN_LOG(CMN_LOG_INFO, "admin.request", NULL,
            "method=%s path=%s status=%d uid=%s role=%s ip=%s ms=%lld", h->method, h->path,
            r->status, r->have_staff ? r->staff.uid : "-",
            r->have_staff ? top_role(r->staff.roles) : "-",
            peer && peer->client_ip ? peer->client_ip : "-",
            (long long)cmn_http_now_ms() - t0);
    cmn_buf_cleanup(&r->body);
    free(r);
    return rc;
}
