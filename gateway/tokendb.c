/* gateway/tokendb.c - token DB over libldap: a per-thread handle that fails over along a URI
 * list (tokendb-ha-keychange §2.4), token/cert/activity entries (§1), asserted updates (§2.2
 * R2), operation leases (§6) and pending key versions (§5.5). */
#include "gateway/tokendb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/buf.h"

#define MAX_URIS 16
#define MAX_PW 1024
#define MAX_LIST 1000 /* entries returned by one list call */
#define MAX_EXT 256   /* extensions values kept per record */
#define LEASE_TRIES 3 /* re-read-and-re-decide rounds of lease_acquire */

const char *
tps_tdb_strerror(enum tps_tdb_rc rc)
{
    switch (rc) {
    case TPS_TDB_OK:
        return "success";
    case TPS_TDB_EINVAL:
        return "invalid argument";
    case TPS_TDB_ENOMEM:
        return "out of memory";
    case TPS_TDB_ECONFIG:
        return "token DB configuration error";
    case TPS_TDB_EDOWN:
        return "no LDAP server reachable";
    case TPS_TDB_ENOTFOUND:
        return "no such entry";
    case TPS_TDB_EEXISTS:
        return "entry already exists";
    case TPS_TDB_ECONFLICT:
        return "record changed concurrently";
    case TPS_TDB_ETRANSITION:
        return "token status transition not allowed";
    case TPS_TDB_EBUSY:
        return "token is leased by another operation";
    case TPS_TDB_ELEASE:
        return "operation lease lost";
    case TPS_TDB_EACCESS:
        return "LDAP access refused";
    case TPS_TDB_ECREDS:
        return "wrong credentials";
    case TPS_TDB_ENOUSER:
        return "no such user";
    case TPS_TDB_ELDAP:
        return "LDAP error";
    case TPS_TDB_ETOOBIG:
        return "value or result too large";
    }
    return "unknown token DB error";
}

/* ---- small helpers ----------------------------------------------------------------------- */

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tps_tdb_utc(time_t t, char *out, size_t out_size)
{
    struct tm tm;

    if (out_size == 0)
        return;
    out[0] = '\0';
    if (gmtime_r(&t, &tm) == NULL)
        return;
    if (strftime(out, out_size, "%Y%m%d%H%M%SZ", &tm) == 0)
        out[0] = '\0';
}

bool
tps_tdb_utc_parse(const char *s, time_t *out)
{
    struct tm tm;
    int v[6];
    static const int w[6] = {4, 2, 2, 2, 2, 2};
    size_t pos = 0;

    if (s == NULL || strlen(s) != 15 || s[14] != 'Z')
        return false;
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < w[i]; k++, pos++) {
            if (s[pos] < '0' || s[pos] > '9')
                return false;
            v[i] = v[i] * 10 + (s[pos] - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    *out = timegm(&tm);
    return true;
}

enum tps_tdb_rc
tps_ldap_filter_escape(const char *s, char *out, size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '*' || *p == '(' || *p == ')' || *p == '\\') {
            if (o + 3 >= out_size)
                goto toobig;
            out[o++] = '\\';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            if (o + 1 >= out_size)
                goto toobig;
            out[o++] = (char)*p;
        }
    }
    if (out_size == 0)
        return TPS_TDB_ETOOBIG;
    out[o] = '\0';
    return TPS_TDB_OK;
toobig:
    if (out_size > 0)
        out[0] = '\0';
    return TPS_TDB_ETOOBIG;
}

static char *
xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Replaces *dst by a copy of src (NULL or "" -> NULL). false on allocation failure. */
static bool
set_str(char **dst, const char *src)
{
    char *n = NULL;

    if (src != NULL && src[0] != '\0') {
        n = strdup(src);
        if (n == NULL)
            return false;
    }
    free(*dst);
    *dst = n;
    return true;
}

static bool
is_hex_string(const char *s, size_t min, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return n >= min && n <= max;
}

/* Characters allowed in a cn we are given back (ours and Dogtag's cert/activity names). */
static bool
is_safe_cn(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    return n > 0 && n < TPS_TDB_CN_MAX;
}

/* ---- target ---------------------------------------------------------------------------- */

struct tps_ldap_target {
    char *uris[MAX_URIS];
    size_t nuris;
    char *bind_dn; /* NULL: anonymous */
    char *bind_pw; /* wiped on free */
    size_t bind_pw_len;
    bool starttls;
    char *ca_file;
    unsigned network_timeout_ms, op_timeout_ms, deadline_ms, failback_s;
};

int
tps_ldap_global_init(void)
{
    int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, rc;

    rc = ldap_set_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v3);
    if (rc != LDAP_OPT_SUCCESS)
        return rc;
    rc = ldap_set_option(NULL, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    if (rc != LDAP_OPT_SUCCESS)
        return rc;
    return ldap_set_option(NULL, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
}

static bool
host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (host == NULL || host[0] == '\0')
        return false; /* libldap's default host: not known to be local */
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* Reads the bind password: a regular file that neither group nor other may access. */
static enum tps_tdb_rc
read_pw_file(const char *path, const char *what, char **out, size_t *out_len, char *err,
             size_t err_size)
{
    char buf[MAX_PW + 2];
    struct stat st;
    ssize_t n;
    size_t len = 0;
    enum tps_tdb_rc rc = TPS_TDB_ECONFIG;
    int fd;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "%s: password file '%s': %s", what, path, strerror(errno));
        return TPS_TDB_ECONFIG;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: password file '%s' is not a regular file", what, path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, err_size,
                 "%s: password file '%s' is accessible by group or others (mode %03o); "
                 "chmod 600 it",
                 what, path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    while (len < sizeof(buf)) {
        n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_size, "%s: reading '%s': %s", what, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len > MAX_PW) {
        snprintf(err, err_size, "%s: password file '%s' is longer than %d bytes", what, path,
                 MAX_PW);
        goto out;
    }
    if (len == 0) {
        /* An empty simple bind is an anonymous bind (RFC 4513 §5.1.2): never send one. */
        snprintf(err, err_size, "%s: password file '%s' is empty", what, path);
        goto out;
    }
    *out = xstrndup(buf, len);
    if (*out == NULL) {
        rc = TPS_TDB_ENOMEM;
        goto out;
    }
    *out_len = len;
    rc = TPS_TDB_OK;
out:
    cmn_wipe(buf, sizeof(buf));
    close(fd);
    return rc;
}

/* Turns one hostport entry into a URI and checks it. */
static enum tps_tdb_rc
add_uri(struct tps_ldap_target *t, const struct tps_ldap_target_conf *c, const char *what,
        const char *entry, size_t len, char *err, size_t err_size)
{
    char uri[512];
    LDAPURLDesc *lud = NULL;
    enum tps_tdb_rc rc = TPS_TDB_ECONFIG;
    bool plain;

    if (t->nuris == MAX_URIS) {
        snprintf(err, err_size, "%s: hostport: more than %d servers", what, MAX_URIS);
        return TPS_TDB_ECONFIG;
    }
    if (len >= sizeof(uri))
        goto toolong;
    memcpy(uri, entry, len);
    uri[len] = '\0';
    if (strstr(uri, "://") == NULL) {
        int n = snprintf(uri, sizeof(uri), "%s://%.*s", c->ssl ? "ldaps" : "ldap", (int)len, entry);
        if (n < 0 || (size_t)n >= sizeof(uri))
            goto toolong;
    }
    if (ldap_url_parse(uri, &lud) != LDAP_URL_SUCCESS || lud == NULL) {
        snprintf(err, err_size, "%s: hostport: '%s' is not a valid LDAP URI or host:port", what,
                 uri);
        goto out;
    }
    if (strcmp(lud->lud_scheme, "ldap") != 0 && strcmp(lud->lud_scheme, "ldaps") != 0 &&
        strcmp(lud->lud_scheme, "ldapi") != 0) {
        snprintf(err, err_size, "%s: hostport: '%s': scheme must be ldap, ldaps or ldapi", what,
                 uri);
        goto out;
    }
    if ((lud->lud_dn != NULL && lud->lud_dn[0] != '\0') || lud->lud_attrs != NULL ||
        lud->lud_filter != NULL) {
        snprintf(err, err_size, "%s: hostport: '%s': give scheme://host:port only", what, uri);
        goto out;
    }
    plain = strcmp(lud->lud_scheme, "ldap") == 0 && !c->starttls;
    if (plain && !c->allow_plain_remote && !host_is_loopback(lud->lud_host)) {
        snprintf(err, err_size,
                 "%s: '%s' is plain LDAP to a non-loopback host: use ldaps (ssl=true) or "
                 "StartTLS",
                 what, uri);
        goto out;
    }
    t->uris[t->nuris] = strdup(uri);
    if (t->uris[t->nuris] == NULL) {
        rc = TPS_TDB_ENOMEM;
        goto out;
    }
    t->nuris++;
    rc = TPS_TDB_OK;
out:
    if (lud != NULL)
        ldap_free_urldesc(lud);
    return rc;
toolong:
    snprintf(err, err_size, "%s: hostport: entry too long", what);
    return TPS_TDB_ECONFIG;
}

enum tps_tdb_rc
tps_ldap_target_new(const struct tps_ldap_target_conf *c, const char *what,
                    struct tps_ldap_target **out, char *err, size_t err_size)
{
    struct tps_ldap_target *t;
    enum tps_tdb_rc rc = TPS_TDB_ENOMEM;
    const char *p;

    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return TPS_TDB_ENOMEM;
    if (c->hostport == NULL || c->hostport[0] == '\0') {
        snprintf(err, err_size, "%s: hostport is required", what);
        rc = TPS_TDB_ECONFIG;
        goto fail;
    }
    for (p = c->hostport; *p != '\0';) {
        size_t n = strcspn(p, " ,\t");
        if (n > 0) {
            rc = add_uri(t, c, what, p, n, err, err_size);
            if (rc != TPS_TDB_OK)
                goto fail;
        }
        p += n;
        p += strspn(p, " ,\t");
    }
    if (t->nuris == 0) {
        snprintf(err, err_size, "%s: hostport names no server", what);
        rc = TPS_TDB_ECONFIG;
        goto fail;
    }
    if (c->bind_dn != NULL && c->bind_dn[0] != '\0') {
        t->bind_dn = strdup(c->bind_dn);
        if (t->bind_dn == NULL)
            goto fail;
        if (c->bind_pw_file == NULL || c->bind_pw_file[0] == '\0') {
            snprintf(err, err_size, "%s: bindDN is set but no password file", what);
            rc = TPS_TDB_ECONFIG;
            goto fail;
        }
        rc = read_pw_file(c->bind_pw_file, what, &t->bind_pw, &t->bind_pw_len, err, err_size);
        if (rc != TPS_TDB_OK)
            goto fail;
    }
    if (c->ca_file != NULL && c->ca_file[0] != '\0') {
        t->ca_file = strdup(c->ca_file);
        if (t->ca_file == NULL) {
            rc = TPS_TDB_ENOMEM;
            goto fail;
        }
    }
    t->starttls = c->starttls;
    t->network_timeout_ms = c->network_timeout_ms ? c->network_timeout_ms : 3000;
    t->op_timeout_ms = c->op_timeout_ms ? c->op_timeout_ms : 5000;
    t->deadline_ms = c->deadline_ms ? c->deadline_ms : 2 * t->op_timeout_ms + t->network_timeout_ms;
    t->failback_s = c->failback_s ? c->failback_s : 60;
    *out = t;
    return TPS_TDB_OK;
fail:
    if (rc == TPS_TDB_ENOMEM && err_size > 0 && err[0] == '\0')
        snprintf(err, err_size, "%s: out of memory", what);
    tps_ldap_target_free(t);
    return rc;
}

void
tps_ldap_target_free(struct tps_ldap_target *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nuris; i++)
        free(t->uris[i]);
    if (t->bind_pw != NULL) {
        cmn_wipe(t->bind_pw, t->bind_pw_len);
        free(t->bind_pw);
    }
    free(t->bind_dn);
    free(t->ca_file);
    free(t);
}

size_t
tps_ldap_target_count(const struct tps_ldap_target *t)
{
    return t->nuris;
}

const char *
tps_ldap_target_uri(const struct tps_ldap_target *t, size_t i)
{
    return i < t->nuris ? t->uris[i] : NULL;
}

/* ---- connection ------------------------------------------------------------------------ */

struct tps_ldap_conn {
    const struct tps_ldap_target *t; /* borrowed */
    LDAP *ld;                        /* NULL: not connected */
    size_t first;                    /* index of the URI tried first */
    long long rotated_at_ms;         /* when `first` left 0 */
    bool need_rebind;                /* bound as a user: rebind as the service */
    unsigned long generation;
    char errmsg[768];
};

enum tps_tdb_rc
tps_ldap_conn_new(const struct tps_ldap_target *t, struct tps_ldap_conn **out)
{
    struct tps_ldap_conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL)
        return TPS_TDB_ENOMEM;
    c->t = t;
    *out = c;
    return TPS_TDB_OK;
}

static void
conn_drop(struct tps_ldap_conn *c)
{
    if (c->ld != NULL) {
        ldap_unbind_ext_s(c->ld, NULL, NULL);
        c->ld = NULL;
    }
    c->need_rebind = false;
}

void
tps_ldap_conn_free(struct tps_ldap_conn *c)
{
    if (c == NULL)
        return;
    conn_drop(c);
    free(c);
}

void
tps_ldap_conn_need_rebind(struct tps_ldap_conn *c)
{
    c->need_rebind = true;
}

const char *
tps_ldap_conn_errmsg(const struct tps_ldap_conn *c)
{
    return c->errmsg;
}

unsigned long
tps_ldap_conn_generation(const struct tps_ldap_conn *c)
{
    return c->generation;
}

void
tps_ldap_conn_clearerr(struct tps_ldap_conn *c)
{
    c->errmsg[0] = '\0';
}

void
tps_ldap_conn_seterr(struct tps_ldap_conn *c, const char *fmt, ...)
{
    size_t used = strlen(c->errmsg);
    va_list ap;

    if (used + 3 >= sizeof(c->errmsg))
        return;
    if (used > 0) {
        memcpy(c->errmsg + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(c->errmsg + used, sizeof(c->errmsg) - used, fmt, ap);
    va_end(ap);
}

const char *
tps_ldap_conn_server(struct tps_ldap_conn *c, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    int fd = -1;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (c->ld == NULL || ldap_get_option(c->ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0)
        return buf;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return buf;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)) != NULL)
            snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)) != NULL)
            snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else {
        snprintf(buf, size, "local");
    }
    return buf;
}

static bool
is_transport_error(int lrc)
{
    return lrc == LDAP_SERVER_DOWN || lrc == LDAP_CONNECT_ERROR || lrc == LDAP_TIMEOUT ||
           lrc == LDAP_UNAVAILABLE;
}

static void
ms_to_tv(long long ms, struct timeval *tv)
{
    if (ms < 1)
        ms = 1;
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* A simple bind as the service identity (or nothing when anonymous: libldap binds
 * anonymously by default; an empty rebind restores anonymity after a user bind). */
static int
service_bind(struct tps_ldap_conn *c)
{
    struct berval cred;
    char empty[1] = "";

    if (c->t->bind_dn == NULL) {
        if (!c->need_rebind)
            return LDAP_SUCCESS;
        cred.bv_val = empty;
        cred.bv_len = 0;
        return ldap_sasl_bind_s(c->ld, "", LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    }
    cred.bv_val = c->t->bind_pw;
    cred.bv_len = c->t->bind_pw_len;
    return ldap_sasl_bind_s(c->ld, c->t->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* Builds a handle over the URI list starting at c->first, with timeouts and TLS; StartTLS
 * and the bind run here, so a dead or hung first server shows up now. LDAP result code. */
static int
conn_open(struct tps_ldap_conn *c, const struct timeval *tmo)
{
    const struct tps_ldap_target *t = c->t;
    char list[MAX_URIS * 520];
    size_t used = 0;
    struct timeval ntmo;
    int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, lrc;
    int idle = 30, probes = 3, intvl = 10;
    unsigned int user_tmo = t->op_timeout_ms;

    for (size_t i = 0; i < t->nuris; i++) {
        const char *u = t->uris[(c->first + i) % t->nuris];
        int n = snprintf(list + used, sizeof(list) - used, "%s%s", used ? " " : "", u);
        if (n < 0 || (size_t)n >= sizeof(list) - used)
            return LDAP_PARAM_ERROR;
        used += (size_t)n;
    }
    lrc = ldap_initialize(&c->ld, list);
    if (lrc != LDAP_SUCCESS) {
        c->ld = NULL;
        return lrc;
    }
    c->generation++;
    ms_to_tv(t->network_timeout_ms, &ntmo);
    if (ldap_set_option(c->ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
        ldap_set_option(c->ld, LDAP_OPT_NETWORK_TIMEOUT, &ntmo) != LDAP_OPT_SUCCESS ||
        ldap_set_option(c->ld, LDAP_OPT_TIMEOUT, tmo) != LDAP_OPT_SUCCESS ||
        ldap_set_option(c->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(c->ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS)
        return LDAP_LOCAL_ERROR;
    /* Best effort: dead peers are noticed by the kernel, not only by our timeouts. */
    (void)ldap_set_option(c->ld, LDAP_OPT_X_KEEPALIVE_IDLE, &idle);
    (void)ldap_set_option(c->ld, LDAP_OPT_X_KEEPALIVE_PROBES, &probes);
    (void)ldap_set_option(c->ld, LDAP_OPT_X_KEEPALIVE_INTERVAL, &intvl);
    (void)ldap_set_option(c->ld, LDAP_OPT_TCP_USER_TIMEOUT, &user_tmo);
    if (t->ca_file != NULL &&
        ldap_set_option(c->ld, LDAP_OPT_X_TLS_CACERTFILE, t->ca_file) != LDAP_OPT_SUCCESS)
        return LDAP_LOCAL_ERROR;
    if (ldap_set_option(c->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
        ldap_set_option(c->ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS)
        return LDAP_LOCAL_ERROR;
    c->need_rebind = false;
    if (t->starttls) {
        lrc = ldap_start_tls_s(c->ld, NULL, NULL);
        /* An ldaps:// server is already under TLS: StartTLS is then refused; accept it. */
        if (lrc != LDAP_SUCCESS && !(ldap_tls_inplace(c->ld) && !is_transport_error(lrc)))
            return lrc;
    }
    if (t->bind_dn == NULL)
        return ldap_connect(c->ld); /* connect now: a failure here may always be retried */
    return service_bind(c);
}

/* Records the LDAP error text of the handle with the server, URI list position, code. */
static void
note_ldap_error(struct tps_ldap_conn *c, const char *what, int lrc)
{
    char srv[80];
    char *diag = NULL;

    if (c->ld != NULL)
        (void)ldap_get_option(c->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    tps_ldap_conn_server(c, srv, sizeof(srv));
    if (diag != NULL && diag[0] != '\0')
        tps_ldap_conn_seterr(c, "%s: %s (%d) \"%.200s\" on %s", what, ldap_err2string(lrc), lrc,
                             diag, srv[0] != '\0' ? srv : c->t->uris[c->first]);
    else
        tps_ldap_conn_seterr(c, "%s: %s (%d) on %s", what, ldap_err2string(lrc), lrc,
                             srv[0] != '\0' ? srv : c->t->uris[c->first]);
    if (diag != NULL)
        ldap_memfree(diag);
}

enum tps_tdb_rc
tps_ldap_conn_run(struct tps_ldap_conn *c, tps_ldap_op_fn *fn, void *arg, bool retry, int *ldap_rc)
{
    const struct tps_ldap_target *t = c->t;
    long long deadline = now_ms() + t->deadline_ms, left;
    struct timeval tmo;
    int lrc = LDAP_SERVER_DOWN;

    c->errmsg[0] = '\0';
    *ldap_rc = LDAP_SERVER_DOWN;
    /* Fail back: a rotated handle returns to the first URI (the shared write target) once
     * the failback time has passed, so instances converge on provider A again (§2.4). */
    if (c->first != 0 && now_ms() - c->rotated_at_ms >= (long long)t->failback_s * 1000) {
        conn_drop(c);
        c->first = 0;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool sent = false;

        left = deadline - now_ms();
        if (left <= 0) {
            tps_ldap_conn_seterr(c, "deadline of %u ms passed", t->deadline_ms);
            break;
        }
        ms_to_tv(left < (long long)t->op_timeout_ms ? left : t->op_timeout_ms, &tmo);
        if (c->ld == NULL) {
            lrc = conn_open(c, &tmo);
            if (lrc != LDAP_SUCCESS) {
                if (lrc == LDAP_INVALID_CREDENTIALS || lrc == LDAP_INAPPROPRIATE_AUTH ||
                    lrc == LDAP_INSUFFICIENT_ACCESS) {
                    note_ldap_error(c, "bind", lrc);
                    conn_drop(c);
                    *ldap_rc = lrc;
                    return TPS_TDB_EACCESS;
                }
                if (!is_transport_error(lrc)) {
                    note_ldap_error(c, t->starttls ? "connect/StartTLS" : "connect", lrc);
                    conn_drop(c);
                    *ldap_rc = lrc;
                    return TPS_TDB_ELDAP;
                }
                note_ldap_error(c, "connect", lrc);
                goto transport;
            }
        } else {
            if (ldap_set_option(c->ld, LDAP_OPT_TIMEOUT, &tmo) != LDAP_OPT_SUCCESS) {
                lrc = LDAP_LOCAL_ERROR;
                note_ldap_error(c, "set timeout", lrc);
                *ldap_rc = lrc;
                return TPS_TDB_ELDAP;
            }
            if (c->need_rebind) {
                lrc = service_bind(c);
                if (lrc == LDAP_SUCCESS) {
                    c->need_rebind = false;
                } else if (is_transport_error(lrc)) {
                    note_ldap_error(c, "rebind", lrc);
                    goto transport;
                } else {
                    note_ldap_error(c, "rebind", lrc);
                    conn_drop(c);
                    *ldap_rc = lrc;
                    return TPS_TDB_EACCESS;
                }
            }
        }
        sent = true;
        lrc = fn(c->ld, &tmo, arg);
        *ldap_rc = lrc;
        if (!is_transport_error(lrc))
            return TPS_TDB_OK;
        note_ldap_error(c, "operation", lrc);
    transport:
        *ldap_rc = lrc;
        conn_drop(c);
        /* The next attempt starts at the next URI (§2.4): a server that accepts TCP but does
         * not answer keeps winning a new handle's connect, and one that dropped an operation
         * may still accept connections for a moment while it dies (SIGKILL: the listener
         * lives until the process is reaped), so the retry would reach it again. */
        if (t->nuris > 1) {
            if (c->first == 0)
                c->rotated_at_ms = now_ms();
            c->first = (c->first + 1) % t->nuris;
        }
        if (sent && !retry)
            break;
    }
    return TPS_TDB_EDOWN;
}

/* ---- token DB configuration -------------------------------------------------------------- */

struct tps_tokendb_cfg {
    struct tps_ldap_target *target;
    char *base_dn, *cert_base_dn, *activity_base_dn;
    char instance_id[33];
    bool allowed[2][8][8]; /* [actor][from][to] */
    char *default_policy;
    struct tps_token_policy dflt_policy;
    unsigned lease_seconds;
    unsigned lease_wait_ms;
    bool keep_on_unformat[5];
    char *leases_dn;
    char *instances_dn; /* ou=Instances,<parent of baseDN> */
};

/* "<rdn>,<parent of baseDN>": a container beside ou=Tokens (the first RDN of baseDN is a plain
 * ou=Tokens). Caller frees; NULL when out of memory. */
static char *
beside_base(const char *base_dn, const char *rdn)
{
    const char *parent = strchr(base_dn, ',');
    size_t n = strlen(rdn) + 1 + strlen(parent ? parent + 1 : base_dn) + 1;
    char *dn = malloc(n);

    if (dn != NULL)
        snprintf(dn, n, "%s,%s", rdn, parent ? parent + 1 : base_dn);
    return dn;
}

static enum tps_tdb_rc
parse_transitions(const char *s, bool tbl[8][8], const char *key, char *err, size_t err_size)
{
    const char *p = s;

    memset(tbl, 0, sizeof(bool) * 64);
    while (*p != '\0') {
        p += strspn(p, " ");
        if (p[0] < '0' || p[0] > '7' || p[1] != ':' || p[2] < '0' || p[2] > '7' ||
            (p[3] != ',' && p[3] != '\0' && p[3] != ' ')) {
            snprintf(err, err_size,
                     "%s: '%s': expected a comma-separated list of N:M with N, M "
                     "in 0..7 (token states of §1.7)",
                     key, s);
            return TPS_TDB_ECONFIG;
        }
        tbl[p[0] - '0'][p[2] - '0'] = true;
        p += 3;
        p += strspn(p, " ");
        if (*p == ',')
            p++;
    }
    return TPS_TDB_OK;
}

static const char *
nonempty(const char *v, const char *dflt)
{
    return v != NULL && v[strspn(v, " ")] != '\0' ? v : dflt;
}

static bool
valid_instance_id(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
            return false;
    return n >= 1 && n <= 32;
}

enum tps_tdb_rc
tps_tokendb_cfg_new(const struct tps_tokendb_conf *c, struct tps_tokendb_cfg **out, char *err,
                    size_t err_size)
{
    struct tps_tokendb_cfg *cfg;
    enum tps_tdb_rc rc = TPS_TDB_ECONFIG;
    struct {
        const char *v, *key;
        char **dst;
    } dns[3];

    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return TPS_TDB_ENOMEM;
    dns[0].v = c->base_dn;
    dns[0].key = "tokendb.baseDN";
    dns[0].dst = &cfg->base_dn;
    dns[1].v = c->cert_base_dn;
    dns[1].key = "tokendb.certBaseDN";
    dns[1].dst = &cfg->cert_base_dn;
    dns[2].v = c->activity_base_dn;
    dns[2].key = "tokendb.activityBaseDN";
    dns[2].dst = &cfg->activity_base_dn;
    for (int i = 0; i < 3; i++) {
        LDAPDN dn = NULL;
        if (dns[i].v == NULL || dns[i].v[0] == '\0') {
            snprintf(err, err_size, "%s is required", dns[i].key);
            goto fail;
        }
        if (ldap_str2dn(dns[i].v, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
            snprintf(err, err_size, "%s: '%s' is not a valid DN", dns[i].key, dns[i].v);
            goto fail;
        }
        ldap_dnfree(dn);
        *dns[i].dst = strdup(dns[i].v);
        if (*dns[i].dst == NULL) {
            rc = TPS_TDB_ENOMEM;
            goto fail;
        }
    }
    if (!valid_instance_id(c->instance_id)) {
        snprintf(err, err_size,
                 "tps.instanceId: '%s' must be 1 to 32 characters of [a-z0-9-], unique in the "
                 "cluster",
                 c->instance_id ? c->instance_id : "");
        goto fail;
    }
    snprintf(cfg->instance_id, sizeof(cfg->instance_id), "%s", c->instance_id);
    /* An empty list means the default here (legacy Dogtag read it as "all"): allowing every
     * transition has to be written out. */
    rc =
        parse_transitions(nonempty(c->allowed_transitions, TPS_TOKENDB_DEFAULT_TRANSITIONS),
                          cfg->allowed[TPS_TDB_AGENT], "tokendb.allowedTransitions", err, err_size);
    if (rc != TPS_TDB_OK)
        goto fail;
    rc = parse_transitions(nonempty(c->op_allowed_transitions, TPS_TOKENDB_DEFAULT_OP_TRANSITIONS),
                           cfg->allowed[TPS_TDB_OPERATION], "tps.operations.allowedTransitions",
                           err, err_size);
    if (rc != TPS_TDB_OK)
        goto fail;
    cfg->default_policy = strdup(nonempty(c->default_policy, TPS_TOKENDB_DEFAULT_POLICY));
    if (cfg->default_policy == NULL) {
        rc = TPS_TDB_ENOMEM;
        goto fail;
    }
    if (tps_token_policy_parse(cfg->default_policy, NULL, &cfg->dflt_policy) != TPS_TDB_OK) {
        snprintf(err, err_size, "tokendb.defaultPolicy: '%s': expected NAME=YES|NO;...",
                 cfg->default_policy);
        rc = TPS_TDB_ECONFIG;
        goto fail;
    }
    cfg->lease_seconds = c->lease_seconds ? c->lease_seconds : 600;
    cfg->lease_wait_ms = c->lease_wait_ms;
    if (c->leases_dn != NULL && c->leases_dn[0] != '\0') {
        LDAPDN dn = NULL;
        if (ldap_str2dn(c->leases_dn, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
            snprintf(err, err_size, "tokendb.leasesDN: '%s' is not a valid DN", c->leases_dn);
            rc = TPS_TDB_ECONFIG;
            goto fail;
        }
        ldap_dnfree(dn);
        cfg->leases_dn = strdup(c->leases_dn);
    } else {
        cfg->leases_dn = beside_base(cfg->base_dn, "ou=Leases");
    }
    cfg->instances_dn = beside_base(cfg->base_dn, "ou=Instances");
    if (cfg->leases_dn == NULL || cfg->instances_dn == NULL) {
        rc = TPS_TDB_ENOMEM;
        goto fail;
    }
    memcpy(cfg->keep_on_unformat, c->keep_on_unformat, sizeof(cfg->keep_on_unformat));
    rc = tps_ldap_target_new(&c->ldap, "tokendb", &cfg->target, err, err_size);
    if (rc != TPS_TDB_OK)
        goto fail;
    *out = cfg;
    return TPS_TDB_OK;
fail:
    tps_tokendb_cfg_free(cfg);
    return rc;
}

void
tps_tokendb_cfg_free(struct tps_tokendb_cfg *cfg)
{
    if (cfg == NULL)
        return;
    tps_ldap_target_free(cfg->target);
    free(cfg->base_dn);
    free(cfg->cert_base_dn);
    free(cfg->activity_base_dn);
    free(cfg->default_policy);
    free(cfg->leases_dn);
    free(cfg->instances_dn);
    free(cfg);
}

bool
tps_tokendb_transition_allowed(const struct tps_tokendb_cfg *cfg, enum tps_tdb_actor who,
                               enum tps_token_status from, enum tps_token_status to)
{
    if ((int)who < 0 || (int)who > 1 || (int)from < 0 || (int)from > 7 || (int)to < 0 ||
        (int)to > 7)
        return false;
    return cfg->allowed[who][from][to];
}

/* ---- status and policy ------------------------------------------------------------------ */

static const char *const status_names[8] = {
    "FORMATTED",           "DAMAGED",    "PERM_LOST",   "SUSPENDED", "ACTIVE",
    "TEMP_LOST_PERM_LOST", "TERMINATED", "UNFORMATTED",
};

const char *
tps_token_status_name(enum tps_token_status s)
{
    if ((int)s < 0 || (int)s > 7)
        return "UNKNOWN";
    return status_names[s];
}

enum tps_token_status
tps_token_status_parse(const char *status, const char *reason)
{
    if (status == NULL)
        return TPS_TOKEN_UNKNOWN;
    for (int i = 0; i < 8; i++)
        if (strcmp(status, status_names[i]) == 0)
            return (enum tps_token_status)i;
    if (strcmp(status, "UNINITIALIZED") == 0)
        return TPS_TOKEN_FORMATTED;
    if (strcmp(status, "TEMP_LOST") == 0)
        return TPS_TOKEN_SUSPENDED;
    /* legacy lower-case values (§1.7 migration) */
    if (strcmp(status, "uninitialized") == 0)
        return TPS_TOKEN_FORMATTED;
    if (strcmp(status, "active") == 0)
        return TPS_TOKEN_ACTIVE;
    if (strcmp(status, "terminated") == 0)
        return TPS_TOKEN_TERMINATED;
    if (strcmp(status, "disabled") == 0)
        return TPS_TOKEN_PERM_LOST;
    if (strcmp(status, "lost") == 0) {
        if (reason != NULL && strcasecmp(reason, "onHold") == 0)
            return TPS_TOKEN_SUSPENDED;
        if (reason != NULL && strcasecmp(reason, "destroyed") == 0)
            return TPS_TOKEN_DAMAGED;
        return TPS_TOKEN_PERM_LOST;
    }
    for (int i = 0; i < 8; i++)
        if (strcasecmp(status, status_names[i]) == 0)
            return (enum tps_token_status)i;
    return TPS_TOKEN_UNKNOWN;
}

const char *
tps_token_status_reason(enum tps_token_status s)
{
    switch (s) {
    case TPS_TOKEN_DAMAGED:
        return "destroyed";
    case TPS_TOKEN_PERM_LOST:
    case TPS_TOKEN_TEMP_LOST_PERM_LOST:
        return "keyCompromise";
    case TPS_TOKEN_SUSPENDED:
        return "onHold";
    case TPS_TOKEN_TERMINATED:
        return "terminated";
    case TPS_TOKEN_FORMATTED:
    case TPS_TOKEN_ACTIVE:
    case TPS_TOKEN_UNFORMATTED:
    case TPS_TOKEN_UNKNOWN:
        break;
    }
    return NULL;
}

static const char *const policy_names[5] = {"RE_ENROLL", "RENEW", "FORCE_FORMAT", "PIN_RESET",
                                            "RESET_PIN_RESET_TO_NO"};

static bool *
policy_field(struct tps_token_policy *p, int i)
{
    switch (i) {
    case 0:
        return &p->re_enroll;
    case 1:
        return &p->renew;
    case 2:
        return &p->force_format;
    case 3:
        return &p->pin_reset;
    default:
        return &p->reset_pin_reset_to_no;
    }
}

enum tps_tdb_rc
tps_token_policy_parse(const char *s, const struct tps_token_policy *dflt,
                       struct tps_token_policy *out)
{
    struct tps_token_policy p;
    const char *q = s;

    if (dflt != NULL) {
        p = *dflt;
    } else {
        memset(&p, 0, sizeof(p));
        p.re_enroll = true; /* §1.8: absent RE_ENROLL = allowed */
    }
    while (q != NULL && *q != '\0') {
        size_t n = strcspn(q, ";");
        const char *eq = memchr(q, '=', n);
        if (n > 0) {
            size_t kl, vl;
            const char *v;
            bool yes;
            if (eq == NULL)
                return TPS_TDB_EINVAL;
            kl = (size_t)(eq - q);
            v = eq + 1;
            vl = n - kl - 1;
            if (vl == 3 && strncasecmp(v, "YES", 3) == 0)
                yes = true;
            else if (vl == 2 && strncasecmp(v, "NO", 2) == 0)
                yes = false;
            else
                return TPS_TDB_EINVAL;
            for (int i = 0; i < 5; i++)
                if (strlen(policy_names[i]) == kl && strncasecmp(q, policy_names[i], kl) == 0)
                    *policy_field(&p, i) = yes;
        }
        q += n;
        if (*q == ';')
            q++;
    }
    *out = p;
    return TPS_TDB_OK;
}

enum tps_tdb_rc
tps_token_policy_format(const struct tps_token_policy *p, char *out, size_t out_size)
{
    struct tps_token_policy c = *p;
    size_t used = 0;

    for (int i = 0; i < 5; i++) {
        int n = snprintf(out + used, out_size - used, "%s%s=%s", i ? ";" : "", policy_names[i],
                         *policy_field(&c, i) ? "YES" : "NO");
        if (n < 0 || (size_t)n >= out_size - used) {
            if (out_size > 0)
                out[0] = '\0';
            return TPS_TDB_ETOOBIG;
        }
        used += (size_t)n;
    }
    return TPS_TDB_OK;
}

/* ---- handle ----------------------------------------------------------------------------- */

struct tps_tokendb {
    const struct tps_tokendb_cfg *cfg; /* borrowed */
    struct tps_ldap_conn *conn;
};

enum tps_tdb_rc
tps_tokendb_open(const struct tps_tokendb_cfg *cfg, struct tps_tokendb **out)
{
    struct tps_tokendb *db = calloc(1, sizeof(*db));

    *out = NULL;
    if (db == NULL)
        return TPS_TDB_ENOMEM;
    db->cfg = cfg;
    if (tps_ldap_conn_new(cfg->target, &db->conn) != TPS_TDB_OK) {
        free(db);
        return TPS_TDB_ENOMEM;
    }
    *out = db;
    return TPS_TDB_OK;
}

void
tps_tokendb_close(struct tps_tokendb *db)
{
    if (db == NULL)
        return;
    tps_ldap_conn_free(db->conn);
    free(db);
}

const char *
tps_tokendb_errmsg(const struct tps_tokendb *db)
{
    return tps_ldap_conn_errmsg(db->conn);
}

struct tps_ldap_conn *
tps_tokendb_conn(struct tps_tokendb *db)
{
    return db->conn;
}

/* Maps the result of tps_ldap_conn_run + the LDAP code of a server answer to our code, and
 * writes the detail (what, DN, code) for failures. */
static enum tps_tdb_rc
map_result(struct tps_tokendb *db, enum tps_tdb_rc rc, int lrc, const char *what, const char *dn)
{
    if (rc != TPS_TDB_OK) {
        tps_ldap_conn_seterr(db->conn, "%s %s failed", what, dn);
        return rc;
    }
    switch (lrc) {
    case LDAP_SUCCESS:
        return TPS_TDB_OK;
    case LDAP_NO_SUCH_OBJECT:
        rc = TPS_TDB_ENOTFOUND;
        break;
    case LDAP_ALREADY_EXISTS:
        rc = TPS_TDB_EEXISTS;
        break;
    case LDAP_ASSERTION_FAILED:
    case LDAP_NO_SUCH_ATTRIBUTE:
    case LDAP_TYPE_OR_VALUE_EXISTS:
        rc = TPS_TDB_ECONFLICT;
        break;
    case LDAP_INSUFFICIENT_ACCESS:
    case LDAP_INVALID_CREDENTIALS:
    case LDAP_STRONG_AUTH_REQUIRED:
    case LDAP_CONFIDENTIALITY_REQUIRED:
        rc = TPS_TDB_EACCESS;
        break;
    case LDAP_SIZELIMIT_EXCEEDED:
        rc = TPS_TDB_ETOOBIG;
        break;
    case LDAP_INVALID_SYNTAX:
    case LDAP_CONSTRAINT_VIOLATION:
        rc = TPS_TDB_EINVAL;
        break; /* e.g. a certificate that is
                * not DER */
    default:
        rc = TPS_TDB_ELDAP;
        break;
    }
    tps_ldap_conn_seterr(db->conn, "%s %s: %s (%d)", what, dn, ldap_err2string(lrc), lrc);
    return rc;
}

/* ---- modification lists ----------------------------------------------------------------- */

#define MAXMODS 28
#define MAXVALS 4

/* An LDAPMod array with owned copies of every type and value. Consecutive values of one
 * type and operation share one LDAPMod (an add must not name an attribute twice). */
struct mods {
    LDAPMod *ptrs[MAXMODS + 1];
    LDAPMod m[MAXMODS];
    struct berval bv[MAXMODS][MAXVALS];
    struct berval *bvp[MAXMODS][MAXVALS + 1];
    size_t nvals[MAXMODS];
    size_t n;
    bool oom;
};

static void
mods_init(struct mods *ms)
{
    memset(ms, 0, sizeof(*ms));
}

/* val NULL: no values (delete the whole attribute). */
static void
mods_add(struct mods *ms, int op, const char *type, const void *val, size_t len)
{
    LDAPMod *m;
    size_t i, k;

    if (ms->oom)
        return;
    i = ms->n;
    if (val != NULL && i > 0 && ms->m[i - 1].mod_op == (op | LDAP_MOD_BVALUES) &&
        ms->nvals[i - 1] > 0 && ms->nvals[i - 1] < MAXVALS &&
        strcmp(ms->m[i - 1].mod_type, type) == 0) {
        i--; /* another value of the previous modification */
    } else {
        if (i == MAXMODS) {
            ms->oom = true;
            return;
        }
        m = &ms->m[i];
        m->mod_op = op | LDAP_MOD_BVALUES;
        m->mod_type = strdup(type);
        if (m->mod_type == NULL) {
            ms->oom = true;
            return;
        }
        m->mod_bvalues = NULL;
        ms->ptrs[i] = m;
        ms->n = i + 1;
        ms->ptrs[ms->n] = NULL;
    }
    if (val == NULL)
        return;
    k = ms->nvals[i];
    ms->bv[i][k].bv_val = malloc(len + 1);
    if (ms->bv[i][k].bv_val == NULL) {
        ms->oom = true;
        return;
    }
    memcpy(ms->bv[i][k].bv_val, val, len);
    ms->bv[i][k].bv_val[len] = '\0';
    ms->bv[i][k].bv_len = len;
    ms->bvp[i][k] = &ms->bv[i][k];
    ms->bvp[i][k + 1] = NULL;
    ms->nvals[i] = k + 1;
    ms->m[i].mod_bvalues = ms->bvp[i];
}

static void
mods_str(struct mods *ms, int op, const char *type, const char *val)
{
    mods_add(ms, op, type, val, val ? strlen(val) : 0);
}

static void
mods_cleanup(struct mods *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        free(ms->m[i].mod_type);
        for (size_t k = 0; k < ms->nvals[i]; k++)
            free(ms->bv[i][k].bv_val);
    }
    ms->n = 0;
}

/* ---- operations run through the connection --------------------------------------------- */

struct search_op {
    const char *base;
    int scope;
    const char *filter;
    char **attrs;
    int sizelimit;
    LDAPControl **sctrls;
    LDAPMessage *res; /* owned; freed by the caller with ldap_msgfree */
};

static int
search_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct search_op *s = arg;

    if (s->res != NULL) {
        ldap_msgfree(s->res);
        s->res = NULL;
    }
    return ldap_search_ext_s(ld, s->base, s->scope, s->filter, s->attrs, 0, s->sctrls, NULL, tmo,
                             s->sizelimit, &s->res);
}

struct modify_op {
    const char *dn;
    LDAPMod **mods;
    const char *assertion; /* filter, or NULL */
    bool add;              /* an add instead of a modify */
    int calls;
};

static int
modify_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct modify_op *m = arg;
    LDAPControl *ctrl = NULL, *ctrls[2] = {NULL, NULL};
    char filter[1024];
    int lrc;

    (void)tmo; /* synchronous calls honour LDAP_OPT_TIMEOUT, set by the connection */
    m->calls++;
    if (m->assertion != NULL) {
        if (snprintf(filter, sizeof(filter), "%s", m->assertion) >= (int)sizeof(filter))
            return LDAP_FILTER_ERROR;
        lrc = ldap_create_assertion_control(ld, filter, 1, &ctrl);
        if (lrc != LDAP_SUCCESS)
            return lrc;
        ctrls[0] = ctrl;
    }
    if (m->add)
        lrc = ldap_add_ext_s(ld, m->dn, m->mods, ctrl ? ctrls : NULL, NULL);
    else
        lrc = ldap_modify_ext_s(ld, m->dn, m->mods, ctrl ? ctrls : NULL, NULL);
    if (ctrl != NULL)
        ldap_control_free(ctrl);
    return lrc;
}

struct delete_op {
    const char *dn;
};

static int
delete_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct delete_op *d = arg;

    (void)tmo;
    return ldap_delete_ext_s(ld, d->dn, NULL, NULL);
}

/* ---- token records ------------------------------------------------------------------------ */

static char *token_attrs[] = {
    (char[]){"cn"},
    (char[]){"tokenUserID"},
    (char[]){"tokenType"},
    (char[]){"tokenAppletID"},
    (char[]){"keyInfo"},
    (char[]){"tokenPolicy"},
    (char[]){"tokenReason"},
    (char[]){"tokenStatus"},
    (char[]){"dateOfCreate"},
    (char[]){"dateOfModify"},
    (char[]){"modified"},
    (char[]){"extensions"},
    NULL,
};

void
tps_token_cleanup(struct tps_token *t)
{
    if (t == NULL)
        return;
    free(t->dn);
    free(t->user_id);
    free(t->type);
    free(t->applet_id);
    free(t->key_info);
    free(t->policy);
    free(t->reason);
    free(t->status_raw);
    free(t->date_create);
    free(t->date_modify);
    free(t->pending_key_info);
    free(t->pending_since);
    free(t->pending_value);
    free(t->lease_value);
    for (size_t i = 0; i < t->n_extensions; i++)
        free(t->extensions[i]);
    free(t->extensions);
    memset(t, 0, sizeof(*t));
    t->status = TPS_TOKEN_UNKNOWN;
    t->modified = -1;
}

void
tps_tokens_free(struct tps_token *arr, size_t n)
{
    if (arr == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        tps_token_cleanup(&arr[i]);
    free(arr);
}

/* First value of attr as a new string, or NULL (absent or allocation failure: *oom). */
static char *
first_value(LDAP *ld, LDAPMessage *e, const char *attr, bool *oom)
{
    struct berval **v = ldap_get_values_len(ld, e, attr);
    char *s = NULL;

    if (v == NULL)
        return NULL;
    if (v[0] != NULL) {
        s = xstrndup(v[0]->bv_val, v[0]->bv_len);
        if (s == NULL)
            *oom = true;
    }
    ldap_value_free_len(v);
    return s;
}

/* Splits "pendingKeyInfo=<hex>&pendingSince=<UTC>" into its two values. */
static bool
split_pending(const char *v, char **info, char **since)
{
    const char *amp, *s;

    if (strncmp(v, "pendingKeyInfo=", 15) != 0)
        return false;
    v += 15;
    amp = strchr(v, '&');
    *info = xstrndup(v, amp ? (size_t)(amp - v) : strlen(v));
    if (*info == NULL)
        return false;
    s = amp ? strstr(amp, "&pendingSince=") : NULL;
    if (s != NULL) {
        s += 14;
        *since = xstrndup(s, strcspn(s, "&"));
        if (*since == NULL)
            return false;
    }
    return true;
}

static enum tps_tdb_rc
entry_to_token(LDAP *ld, LDAPMessage *e, struct tps_token *t)
{
    struct berval **ext;
    char *dn, *cn, *mod;
    bool oom = false;
    enum tps_tdb_rc rc = TPS_TDB_OK;

    memset(t, 0, sizeof(*t));
    t->modified = -1;
    dn = ldap_get_dn(ld, e);
    if (dn == NULL)
        return TPS_TDB_ENOMEM;
    t->dn = strdup(dn);
    ldap_memfree(dn);
    if (t->dn == NULL)
        return TPS_TDB_ENOMEM;
    cn = first_value(ld, e, "cn", &oom);
    if (cn != NULL)
        snprintf(t->cuid, sizeof(t->cuid), "%s", cn);
    free(cn);
    t->user_id = first_value(ld, e, "tokenUserID", &oom);
    t->type = first_value(ld, e, "tokenType", &oom);
    t->applet_id = first_value(ld, e, "tokenAppletID", &oom);
    t->key_info = first_value(ld, e, "keyInfo", &oom);
    t->policy = first_value(ld, e, "tokenPolicy", &oom);
    t->reason = first_value(ld, e, "tokenReason", &oom);
    t->status_raw = first_value(ld, e, "tokenStatus", &oom);
    t->date_create = first_value(ld, e, "dateOfCreate", &oom);
    t->date_modify = first_value(ld, e, "dateOfModify", &oom);
    t->status = tps_token_status_parse(t->status_raw, t->reason);
    mod = first_value(ld, e, "modified", &oom);
    if (mod != NULL) {
        unsigned long long v;
        if (cmn_parse_uint(mod, 0, LLONG_MAX - 1, &v) == CMN_OK)
            t->modified = (long long)v;
        free(mod);
    }
    ext = ldap_get_values_len(ld, e, "extensions");
    if (ext != NULL) {
        size_t n = ldap_count_values_len(ext);
        if (n > MAX_EXT)
            n = MAX_EXT;
        t->extensions = calloc(n ? n : 1, sizeof(char *));
        if (t->extensions == NULL)
            oom = true;
        for (size_t i = 0; i < n && !oom; i++) {
            char *v = xstrndup(ext[i]->bv_val, ext[i]->bv_len);
            if (v == NULL) {
                oom = true;
                break;
            }
            if (strncmp(v, "opOwner=", 8) == 0 && t->lease_value == NULL) {
                t->lease_value = v;
            } else if (strncmp(v, "pendingKeyInfo=", 15) == 0 && t->pending_value == NULL) {
                t->pending_value = v;
                if (!split_pending(v, &t->pending_key_info, &t->pending_since))
                    oom = true;
            } else {
                t->extensions[t->n_extensions++] = v;
            }
        }
        ldap_value_free_len(ext);
    }
    if (oom)
        rc = TPS_TDB_ENOMEM;
    return rc;
}

static enum tps_tdb_rc
token_dn(const struct tps_tokendb *db, const char *cuid, char *out, size_t size)
{
    int n;

    if (!is_hex_string(cuid, 1, TPS_CUID_MAX))
        return TPS_TDB_EINVAL;
    n = snprintf(out, size, "cn=%s,%s", cuid, db->cfg->base_dn);
    return n > 0 && (size_t)n < size ? TPS_TDB_OK : TPS_TDB_ETOOBIG;
}

enum tps_tdb_rc
tps_tokendb_token_get(struct tps_tokendb *db, const char *cuid, struct tps_token *out)
{
    char dn[1024];
    struct search_op s;
    LDAPMessage *e;
    enum tps_tdb_rc rc;
    int lrc;

    tps_token_cleanup(out);
    rc = token_dn(db, cuid, dn, sizeof(dn));
    if (rc != TPS_TDB_OK) {
        tps_ldap_conn_clearerr(db->conn);
        tps_ldap_conn_seterr(db->conn, "token get: CUID '%.60s' is not 1..%d hex digits",
                             cuid ? cuid : "(null)", TPS_CUID_MAX);
        return rc;
    }
    memset(&s, 0, sizeof(s));
    s.base = dn;
    s.scope = LDAP_SCOPE_BASE;
    s.filter = "(objectClass=tokenRecord)";
    s.attrs = token_attrs;
    s.sizelimit = 1;
    rc = tps_ldap_conn_run(db->conn, search_fn, &s, true, &lrc);
    rc = map_result(db, rc, lrc, "read", dn);
    if (rc != TPS_TDB_OK)
        goto out;
    e = ldap_first_entry(db->conn->ld, s.res);
    if (e == NULL) {
        tps_ldap_conn_seterr(db->conn, "read %s: not a tokenRecord", dn);
        rc = TPS_TDB_ENOTFOUND;
        goto out;
    }
    rc = entry_to_token(db->conn->ld, e, out);
    if (rc != TPS_TDB_OK)
        tps_token_cleanup(out);
out:
    if (s.res != NULL)
        ldap_msgfree(s.res);
    return rc;
}

enum tps_tdb_rc
tps_tokendb_token_create(struct tps_tokendb *db, const char *cuid, const struct tps_token_mod *init,
                         struct tps_token *out)
{
    char dn[1024], now[16];
    struct mods ms;
    struct modify_op op;
    enum tps_token_status st = TPS_TOKEN_UNFORMATTED;
    const char *reason;
    enum tps_tdb_rc rc;
    int lrc;

    tps_ldap_conn_clearerr(db->conn);
    rc = token_dn(db, cuid, dn, sizeof(dn));
    if (rc != TPS_TDB_OK) {
        tps_ldap_conn_seterr(db->conn, "token create: CUID '%.60s' is not 1..%d hex digits",
                             cuid ? cuid : "(null)", TPS_CUID_MAX);
        return rc;
    }
    if (init != NULL && init->set_status) {
        if ((int)init->status < 0 || (int)init->status > 7)
            return TPS_TDB_EINVAL;
        st = init->status;
    }
    reason = tps_token_status_reason(st);
    tps_tdb_utc(time(NULL), now, sizeof(now));
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "top");
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "tokenRecord");
    mods_str(&ms, LDAP_MOD_ADD, "cn", cuid);
    mods_str(&ms, LDAP_MOD_ADD, "dateOfCreate", now);
    mods_str(&ms, LDAP_MOD_ADD, "dateOfModify", now);
    mods_str(&ms, LDAP_MOD_ADD, "modified", "0");
    mods_str(&ms, LDAP_MOD_ADD, "tokenStatus", tps_token_status_name(st));
    if (reason != NULL)
        mods_str(&ms, LDAP_MOD_ADD, "tokenReason", reason);
    if (init != NULL) {
        const struct {
            const char *type, *v;
        } f[] = {{"tokenUserID", init->user_id},
                 {"tokenType", init->type},
                 {"tokenAppletID", init->applet_id},
                 {"keyInfo", init->key_info}};
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
            if (f[i].v != NULL && f[i].v[0] != '\0')
                mods_str(&ms, LDAP_MOD_ADD, f[i].type, f[i].v);
    }
    mods_str(&ms, LDAP_MOD_ADD, "tokenPolicy",
             init != NULL && init->policy != NULL && init->policy[0] != '\0'
                 ? init->policy
                 : db->cfg->default_policy);
    if (ms.oom) {
        rc = TPS_TDB_ENOMEM;
        goto out;
    }
    memset(&op, 0, sizeof(op));
    op.dn = dn;
    op.mods = ms.ptrs;
    op.add = true;
    rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
    rc = map_result(db, rc, lrc, "add", dn);
    if (rc == TPS_TDB_OK && out != NULL)
        rc = tps_tokendb_token_get(db, cuid, out);
out:
    mods_cleanup(&ms);
    return rc;
}

/* Builds the assertion of a record update: the `modified` value read, and the lease. */
static enum tps_tdb_rc
record_assertion(const struct tps_token *tok, const struct tps_token_lease *lease, char *out,
                 size_t size)
{
    char esc[400];
    char prefix[200];
    int n;

    if (lease == NULL) {
        n = snprintf(out, size, "(modified=%lld)", tok->modified);
    } else {
        n = snprintf(prefix, sizeof(prefix), "opOwner=%s&opEpoch=%llu&", lease->owner,
                     lease->epoch);
        if (n < 0 || (size_t)n >= sizeof(prefix))
            return TPS_TDB_ETOOBIG;
        if (tps_ldap_filter_escape(prefix, esc, sizeof(esc)) != TPS_TDB_OK)
            return TPS_TDB_ETOOBIG;
        n = snprintf(out, size, "(&(modified=%lld)(extensions=%s*))", tok->modified, esc);
    }
    return n > 0 && (size_t)n < size ? TPS_TDB_OK : TPS_TDB_ETOOBIG;
}

/* A legacy record without `modified` gets `modified: 0` first, asserted (!(modified=*)). */
static enum tps_tdb_rc
ensure_counter(struct tps_tokendb *db, struct tps_token *tok)
{
    struct mods ms;
    struct modify_op op;
    enum tps_tdb_rc rc;
    int lrc;

    if (tok->modified >= 0)
        return TPS_TDB_OK;
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_ADD, "modified", "0");
    if (ms.oom) {
        mods_cleanup(&ms);
        return TPS_TDB_ENOMEM;
    }
    memset(&op, 0, sizeof(op));
    op.dn = tok->dn;
    op.mods = ms.ptrs;
    op.assertion = "(!(modified=*))";
    rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
    rc = map_result(db, rc, lrc, "initialise counter of", tok->dn);
    mods_cleanup(&ms);
    if (rc == TPS_TDB_OK)
        tok->modified = 0;
    return rc;
}

/* Is the lease value on the server still ours? Used to tell a lost lease from a plain
 * conflict after 122. */
static bool
lease_still_ours(struct tps_tokendb *db, const struct tps_token *tok,
                 const struct tps_token_lease *lease)
{
    struct tps_token fresh;
    char prefix[200];
    bool ours = false;
    char saved[sizeof(db->conn->errmsg)];

    memcpy(saved, db->conn->errmsg, sizeof(saved));
    memset(&fresh, 0, sizeof(fresh));
    if (tps_tokendb_token_get(db, tok->cuid, &fresh) == TPS_TDB_OK && fresh.lease_value) {
        snprintf(prefix, sizeof(prefix), "opOwner=%s&opEpoch=%llu&", lease->owner, lease->epoch);
        ours = strncmp(fresh.lease_value, prefix, strlen(prefix)) == 0;
    }
    tps_token_cleanup(&fresh);
    memcpy(db->conn->errmsg, saved, sizeof(saved));
    return ours;
}

/* A leased modify whose answer was lost with its connection and whose second send (to the
 * next provider, once replication had brought the first) failed its assertion: was the first
 * send applied? Yes when the record still carries our lease, its counter is exactly one past
 * what we asserted, and its dateOfModify is the one we wrote. Only we write under our lease,
 * so that is our change. */
static bool
first_send_landed(struct tps_tokendb *db, const struct tps_token *tok,
                  const struct tps_token_lease *lease, const char *date)
{
    struct tps_token fresh;
    char prefix[200];
    bool landed = false;

    memset(&fresh, 0, sizeof(fresh));
    snprintf(prefix, sizeof(prefix), "opOwner=%s&opEpoch=%llu&", lease->owner, lease->epoch);
    if (tps_tokendb_token_get(db, tok->cuid, &fresh) == TPS_TDB_OK && fresh.lease_value != NULL)
        landed = strncmp(fresh.lease_value, prefix, strlen(prefix)) == 0 &&
                 fresh.modified == tok->modified + 1 && fresh.date_modify != NULL &&
                 strcmp(fresh.date_modify, date) == 0;
    tps_token_cleanup(&fresh);
    return landed;
}

/* Runs an asserted modify of tok's record: appends dateOfModify and the counter increment,
 * asserts the counter (and the lease). Maps 122 to ECONFLICT or ELEASE. */
static enum tps_tdb_rc
record_modify(struct tps_tokendb *db, struct tps_token *tok, struct mods *ms,
              const struct tps_token_lease *lease, const char *what)
{
    char assertion[600], now[16];
    struct modify_op op;
    enum tps_tdb_rc rc;
    int lrc;

    tps_tdb_utc(time(NULL), now, sizeof(now));
    mods_str(ms, LDAP_MOD_REPLACE, "dateOfModify", now);
    mods_str(ms, LDAP_MOD_INCREMENT, "modified", "1");
    if (ms->oom)
        return TPS_TDB_ENOMEM;
    rc = record_assertion(tok, lease, assertion, sizeof(assertion));
    if (rc != TPS_TDB_OK)
        return rc;
    memset(&op, 0, sizeof(op));
    op.dn = tok->dn;
    op.mods = ms->ptrs;
    op.assertion = assertion;
    rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
    rc = map_result(db, rc, lrc, what, tok->dn);
    if (rc == TPS_TDB_ECONFLICT && op.calls > 1 && lease != NULL &&
        first_send_landed(db, tok, lease, now)) {
        tps_ldap_conn_clearerr(db->conn);
        rc = TPS_TDB_OK;
    }
    if (rc == TPS_TDB_ECONFLICT && lease != NULL && !lease_still_ours(db, tok, lease)) {
        tps_ldap_conn_seterr(db->conn, "lease %s is no longer held", lease->owner);
        rc = TPS_TDB_ELEASE;
    }
    if (rc == TPS_TDB_OK) {
        tok->modified++;
        (void)set_str(&tok->date_modify, now);
    }
    return rc;
}

static bool
field_has_value(const char *cur)
{
    return cur != NULL && cur[0] != '\0';
}

/* Adds a replace (value non-empty) or a delete (value "", only when present). */
static void
mods_field(struct mods *ms, const char *type, const char *val, const char *cur)
{
    if (val == NULL)
        return;
    if (val[0] != '\0')
        mods_str(ms, LDAP_MOD_REPLACE, type, val);
    else if (field_has_value(cur))
        mods_add(ms, LDAP_MOD_DELETE, type, NULL, 0);
}

enum tps_tdb_rc
tps_tokendb_token_update(struct tps_tokendb *db, struct tps_token *tok,
                         const struct tps_token_mod *m, const struct tps_token_lease *lease)
{
    struct mods ms;
    const char *user_id = m->user_id, *type = m->type, *applet = m->applet_id,
               *key_info = m->key_info, *policy = m->policy;
    const char *reason = NULL;
    enum tps_tdb_rc rc;

    tps_ldap_conn_clearerr(db->conn);
    if (tok->dn == NULL)
        return TPS_TDB_EINVAL;
    if (m->set_status) {
        if (tok->status == TPS_TOKEN_UNKNOWN ||
            !tps_tokendb_transition_allowed(db->cfg, m->actor, tok->status, m->status)) {
            tps_ldap_conn_seterr(db->conn,
                                 "token %s: transition %s (%d) -> %s (%d) is not "
                                 "allowed for %s",
                                 tok->cuid, tps_token_status_name(tok->status), (int)tok->status,
                                 tps_token_status_name(m->status), (int)m->status,
                                 m->actor == TPS_TDB_AGENT
                                     ? "agents (tokendb.allowedTransitions)"
                                     : "operations (tps.operations.allowedTransitions)");
            return TPS_TDB_ETRANSITION;
        }
        reason = tps_token_status_reason(m->status);
        if (m->status == TPS_TOKEN_UNFORMATTED) {
            /* §1.7: entering UNFORMATTED clears these unless configured to keep them */
            if (!db->cfg->keep_on_unformat[0])
                user_id = "";
            if (!db->cfg->keep_on_unformat[1])
                type = "";
            if (!db->cfg->keep_on_unformat[2])
                applet = "";
            if (!db->cfg->keep_on_unformat[3])
                key_info = "";
            if (!db->cfg->keep_on_unformat[4])
                policy = "";
        }
    }
    rc = ensure_counter(db, tok);
    if (rc != TPS_TDB_OK)
        return rc;
    mods_init(&ms);
    mods_field(&ms, "tokenUserID", user_id, tok->user_id);
    mods_field(&ms, "tokenType", type, tok->type);
    mods_field(&ms, "tokenAppletID", applet, tok->applet_id);
    mods_field(&ms, "keyInfo", key_info, tok->key_info);
    mods_field(&ms, "tokenPolicy", policy, tok->policy);
    if (m->set_status) {
        mods_str(&ms, LDAP_MOD_REPLACE, "tokenStatus", tps_token_status_name(m->status));
        mods_field(&ms, "tokenReason", reason ? reason : "", tok->reason);
    }
    rc = record_modify(db, tok, &ms, lease, "update");
    if (rc == TPS_TDB_OK) {
        bool ok = true;
        if (user_id != NULL)
            ok &= set_str(&tok->user_id, user_id);
        if (type != NULL)
            ok &= set_str(&tok->type, type);
        if (applet != NULL)
            ok &= set_str(&tok->applet_id, applet);
        if (key_info != NULL)
            ok &= set_str(&tok->key_info, key_info);
        if (policy != NULL)
            ok &= set_str(&tok->policy, policy);
        if (m->set_status) {
            tok->status = m->status;
            ok &= set_str(&tok->status_raw, tps_token_status_name(m->status));
            ok &= set_str(&tok->reason, reason);
        }
        if (!ok)
            rc = TPS_TDB_ENOMEM;
    }
    mods_cleanup(&ms);
    return rc;
}

/* Deletes the entry dn; a missing entry is TPS_TDB_OK when missing_ok. */
static enum tps_tdb_rc
delete_entry(struct tps_tokendb *db, const char *dn, bool missing_ok)
{
    struct delete_op d = {.dn = dn};
    enum tps_tdb_rc rc;
    int lrc;

    rc = tps_ldap_conn_run(db->conn, delete_fn, &d, true, &lrc);
    if (rc != TPS_TDB_OK && missing_ok && lrc == LDAP_NO_SUCH_OBJECT)
        return TPS_TDB_OK;
    return map_result(db, rc, lrc, "delete", dn);
}

enum tps_tdb_rc
tps_tokendb_token_delete(struct tps_tokendb *db, const char *cuid)
{
    char dn[1024];
    enum tps_tdb_rc rc;

    tps_ldap_conn_clearerr(db->conn);
    rc = token_dn(db, cuid, dn, sizeof(dn));
    if (rc != TPS_TDB_OK)
        return rc;
    return delete_entry(db, dn, false);
}

/* Collects the entries of a search result into an array of tokens. */
static enum tps_tdb_rc
collect_tokens(struct tps_tokendb *db, LDAPMessage *res, struct tps_token **out, size_t *n)
{
    int count = ldap_count_entries(db->conn->ld, res);
    struct tps_token *arr;
    size_t k = 0;
    enum tps_tdb_rc rc = TPS_TDB_OK;

    if (count < 0)
        count = 0;
    arr = calloc((size_t)count + 1, sizeof(*arr));
    if (arr == NULL)
        return TPS_TDB_ENOMEM;
    for (LDAPMessage *e = ldap_first_entry(db->conn->ld, res); e != NULL && k < (size_t)count;
         e = ldap_next_entry(db->conn->ld, e)) {
        rc = entry_to_token(db->conn->ld, e, &arr[k]);
        k++;
        if (rc != TPS_TDB_OK)
            break;
    }
    if (rc != TPS_TDB_OK) {
        tps_tokens_free(arr, k);
        return rc;
    }
    *out = arr;
    *n = k;
    return TPS_TDB_OK;
}

static int
cmp_token_newest(const void *a, const void *b)
{
    const struct tps_token *x = a, *y = b;
    const char *dx = x->date_modify ? x->date_modify : "";
    const char *dy = y->date_modify ? y->date_modify : "";

    return strcmp(dy, dx);
}

enum tps_tdb_rc
tps_tokendb_token_list_by_user(struct tps_tokendb *db, const char *uid, struct tps_token **out,
                               size_t *n)
{
    char esc[600], filter[700];
    struct search_op s;
    enum tps_tdb_rc rc;
    int lrc;

    *out = NULL;
    *n = 0;
    tps_ldap_conn_clearerr(db->conn);
    if (uid == NULL || uid[0] == '\0' ||
        tps_ldap_filter_escape(uid, esc, sizeof(esc)) != TPS_TDB_OK)
        return TPS_TDB_EINVAL;
    snprintf(filter, sizeof(filter), "(&(objectClass=tokenRecord)(tokenUserID=%s))", esc);
    memset(&s, 0, sizeof(s));
    s.base = db->cfg->base_dn;
    s.scope = LDAP_SCOPE_ONELEVEL;
    s.filter = filter;
    s.attrs = token_attrs;
    s.sizelimit = MAX_LIST + 1;
    rc = tps_ldap_conn_run(db->conn, search_fn, &s, true, &lrc);
    rc = map_result(db, rc, lrc, "list tokens of user under", db->cfg->base_dn);
    if (rc == TPS_TDB_OK && ldap_count_entries(db->conn->ld, s.res) > MAX_LIST) {
        tps_ldap_conn_seterr(db->conn, "more than %d tokens", MAX_LIST);
        rc = TPS_TDB_ETOOBIG;
    }
    if (rc == TPS_TDB_OK)
        rc = collect_tokens(db, s.res, out, n);
    if (rc == TPS_TDB_OK && *n > 1)
        qsort(*out, *n, sizeof(**out), cmp_token_newest);
    if (s.res != NULL)
        ldap_msgfree(s.res);
    return rc;
}

struct page_op {
    struct search_op s;
    unsigned page_size;
    struct berval *cookie; /* borrowed: the cursor's */
    struct berval next;    /* owned: cookie of the next page */
    int page_rc;
};

static int
page_fn(LDAP *ld, struct timeval *tmo, void *arg)
{
    struct page_op *p = arg;
    LDAPControl *ctrl = NULL, *ctrls[2] = {NULL, NULL}, **rctrls = NULL, *pr;
    int lrc, err = LDAP_SUCCESS;
    ber_int_t count = 0;

    lrc = ldap_create_page_control(ld, (ber_int_t)p->page_size, p->cookie, 1, &ctrl);
    if (lrc != LDAP_SUCCESS)
        return lrc;
    ctrls[0] = ctrl;
    p->s.sctrls = ctrls;
    lrc = search_fn(ld, tmo, &p->s);
    p->s.sctrls = NULL;
    ldap_control_free(ctrl);
    if (lrc != LDAP_SUCCESS || p->s.res == NULL)
        return lrc;
    lrc = ldap_parse_result(ld, p->s.res, &err, NULL, NULL, NULL, &rctrls, 0);
    if (lrc != LDAP_SUCCESS)
        return lrc;
    if (err != LDAP_SUCCESS) {
        ldap_controls_free(rctrls);
        return err;
    }
    pr = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL);
    if (pr == NULL) {
        ldap_controls_free(rctrls);
        return LDAP_CONTROL_NOT_FOUND;
    }
    if (p->next.bv_val != NULL) {
        ber_memfree(p->next.bv_val);
        p->next.bv_val = NULL;
        p->next.bv_len = 0;
    }
    lrc = ldap_parse_pageresponse_control(ld, pr, &count, &p->next);
    ldap_controls_free(rctrls);
    return lrc;
}

enum tps_tdb_rc
tps_tokendb_token_page(struct tps_tokendb *db, const struct tps_token_query *q, unsigned page_size,
                       struct tps_tokendb_cursor *cur, struct tps_token **out, size_t *n)
{
    char filter[2048], esc[600];
    size_t used;
    struct page_op p;
    struct berval empty = {0, NULL};
    enum tps_tdb_rc rc;
    int lrc, k;
    const struct {
        const char *attr, *v;
    } crit[3] = {{"tokenUserID", q ? q->user_id : NULL},
                 {"tokenStatus", q ? q->status : NULL},
                 {"tokenType", q ? q->type : NULL}};

    *out = NULL;
    *n = 0;
    tps_ldap_conn_clearerr(db->conn);
    if (page_size < 1 || page_size > MAX_LIST)
        return TPS_TDB_EINVAL;
    if (cur->done)
        return TPS_TDB_OK;
    if (cur->started && cur->generation != tps_ldap_conn_generation(db->conn)) {
        tps_ldap_conn_seterr(db->conn, "token listing: the LDAP handle was rebuilt since the "
                                       "previous page; restart the listing");
        return TPS_TDB_ECONFLICT;
    }
    k = snprintf(filter, sizeof(filter), "(&(objectClass=tokenRecord)");
    used = (size_t)k;
    for (int i = 0; i < 3; i++) {
        if (crit[i].v == NULL)
            continue;
        if (tps_ldap_filter_escape(crit[i].v, esc, sizeof(esc)) != TPS_TDB_OK)
            return TPS_TDB_ETOOBIG;
        k = snprintf(filter + used, sizeof(filter) - used, "(%s=%s)", crit[i].attr, esc);
        if (k < 0 || (size_t)k >= sizeof(filter) - used)
            return TPS_TDB_ETOOBIG;
        used += (size_t)k;
    }
    if (used + 2 > sizeof(filter))
        return TPS_TDB_ETOOBIG;
    filter[used++] = ')';
    filter[used] = '\0';

    memset(&p, 0, sizeof(p));
    p.s.base = db->cfg->base_dn;
    p.s.scope = LDAP_SCOPE_ONELEVEL;
    p.s.filter = filter;
    p.s.attrs = token_attrs;
    p.page_size = page_size;
    p.cookie = cur->cookie ? cur->cookie : &empty;
    /* A cookie belongs to one connection: only the first page may be retried elsewhere. */
    rc = tps_ldap_conn_run(db->conn, page_fn, &p, !cur->started, &lrc);
    rc = map_result(db, rc, lrc, "paged token search under", db->cfg->base_dn);
    if (rc == TPS_TDB_OK)
        rc = collect_tokens(db, p.s.res, out, n);
    if (rc == TPS_TDB_OK) {
        if (cur->cookie != NULL)
            ber_bvfree(cur->cookie);
        cur->cookie = NULL;
        if (p.next.bv_val != NULL && p.next.bv_len > 0) {
            cur->cookie = ber_bvdup(&p.next);
            if (cur->cookie == NULL) {
                tps_tokens_free(*out, *n);
                *out = NULL;
                *n = 0;
                rc = TPS_TDB_ENOMEM;
            }
        } else {
            cur->done = true;
        }
        cur->started = true;
        cur->generation = tps_ldap_conn_generation(db->conn);
    }
    if (p.next.bv_val != NULL)
        ber_memfree(p.next.bv_val);
    if (p.s.res != NULL)
        ldap_msgfree(p.s.res);
    return rc;
}

void
tps_tokendb_cursor_cleanup(struct tps_tokendb_cursor *cur)
{
    if (cur->cookie != NULL)
        ber_bvfree(cur->cookie);
    memset(cur, 0, sizeof(*cur));
}

/* ---- leases -------------------------------------------------------------------------------- */

static bool
parse_lease(const char *v, char *owner, size_t owner_size, unsigned long long *epoch,
            time_t *expires)
{
    const char *o, *e, *x;
    size_t ol;

    if (v == NULL || strncmp(v, "opOwner=", 8) != 0)
        return false;
    o = v + 8;
    ol = strcspn(o, "&");
    if (ol == 0 || ol >= owner_size)
        return false;
    memcpy(owner, o, ol);
    owner[ol] = '\0';
    e = strstr(v, "&opEpoch=");
    x = strstr(v, "&opExpires=");
    if (e == NULL || x == NULL)
        return false;
    {
        char num[24];
        size_t nl = strcspn(e + 9, "&");
        if (nl == 0 || nl >= sizeof(num))
            return false;
        memcpy(num, e + 9, nl);
        num[nl] = '\0';
        if (cmn_parse_uint(num, 0, ULLONG_MAX, epoch) != CMN_OK)
            return false;
    }
    {
        char ts[20];
        size_t tl = strcspn(x + 11, "&");
        if (tl >= sizeof(ts))
            return false;
        memcpy(ts, x + 11, tl);
        ts[tl] = '\0';
        return tps_tdb_utc_parse(ts, expires);
    }
}

static enum tps_tdb_rc
make_lease(const struct tps_tokendb *db, unsigned long long epoch, unsigned seconds,
           const char *owner, struct tps_token_lease *l)
{
    char exp[16];
    uint8_t rnd[8];
    int n;

    memset(l, 0, sizeof(*l));
    if (owner != NULL) {
        snprintf(l->owner, sizeof(l->owner), "%s", owner);
    } else {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return TPS_TDB_ENOMEM;
        n = snprintf(l->owner, sizeof(l->owner), "%s.", db->cfg->instance_id);
        if (cmn_hex_encode(rnd, sizeof(rnd), l->owner + n, sizeof(l->owner) - (size_t)n) != CMN_OK)
            return TPS_TDB_ETOOBIG;
    }
    l->epoch = epoch;
    l->expires = time(NULL) + (time_t)(seconds ? seconds : db->cfg->lease_seconds);
    tps_tdb_utc(l->expires, exp, sizeof(exp));
    n = snprintf(l->value, sizeof(l->value), "opOwner=%s&opEpoch=%llu&opExpires=%s", l->owner,
                 l->epoch, exp);
    return n > 0 && (size_t)n < sizeof(l->value) ? TPS_TDB_OK : TPS_TDB_ETOOBIG;
}

static enum tps_tdb_rc lease_acquire_once(struct tps_tokendb *db, struct tps_token *tok,
                                          unsigned seconds, struct tps_token_lease *lease);

/* A lease held by an instance that died mid-operation blocks the client's retry until it
 * expires: wait for that (tokendb.leaseWait, with a short tokendb.leaseSeconds), so the
 * retry through the balancer succeeds (docs/ha.md). A live holder keeps its lease. */
enum tps_tdb_rc
tps_tokendb_lease_acquire(struct tps_tokendb *db, struct tps_token *tok, unsigned seconds,
                          struct tps_token_lease *lease)
{
    enum tps_tdb_rc rc = lease_acquire_once(db, tok, seconds, lease);

    for (unsigned waited = 0; rc == TPS_TDB_EBUSY && waited < db->cfg->lease_wait_ms;
         waited += 250) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 250000000L};
        (void)nanosleep(&ts, NULL);
        rc = lease_acquire_once(db, tok, seconds, lease); /* re-reads tok */
    }
    return rc;
}

static enum tps_tdb_rc
lease_acquire_once(struct tps_tokendb *db, struct tps_token *tok, unsigned seconds,
                   struct tps_token_lease *lease)
{
    enum tps_tdb_rc rc = TPS_TDB_ECONFLICT;
    char cuid[TPS_CUID_MAX + 1];

    snprintf(cuid, sizeof(cuid), "%s", tok->cuid);
    for (int round = 0; round < LEASE_TRIES; round++) {
        char assertion[600], esc[400];
        struct tps_token_lease l;
        struct mods ms;
        struct modify_op op;
        char owner[64];
        unsigned long long epoch = 0;
        time_t expires = 0;
        int lrc;

        tps_ldap_conn_clearerr(db->conn);
        if (round > 0 || tok->dn == NULL) {
            rc = tps_tokendb_token_get(db, cuid, tok);
            if (rc != TPS_TDB_OK)
                return rc;
        }
        rc = ensure_counter(db, tok);
        if (rc == TPS_TDB_ECONFLICT)
            continue;
        if (rc != TPS_TDB_OK)
            return rc;
        if (tok->lease_value != NULL &&
            parse_lease(tok->lease_value, owner, sizeof(owner), &epoch, &expires) &&
            expires > time(NULL)) {
            char when[16];
            tps_tdb_utc(expires, when, sizeof(when));
            tps_ldap_conn_seterr(db->conn, "token %s is leased by %s (epoch %llu) until %s",
                                 tok->cuid, owner, epoch, when);
            return TPS_TDB_EBUSY;
        }
        rc = make_lease(db, (unsigned long long)tok->modified + 1, seconds, NULL, &l);
        if (rc != TPS_TDB_OK)
            return rc;
        mods_init(&ms);
        if (tok->lease_value != NULL) {
            /* expired (or unreadable): replace exactly that value */
            if (tps_ldap_filter_escape(tok->lease_value, esc, sizeof(esc)) != TPS_TDB_OK) {
                mods_cleanup(&ms);
                return TPS_TDB_ETOOBIG;
            }
            snprintf(assertion, sizeof(assertion), "(&(modified=%lld)(extensions=%s))",
                     tok->modified, esc);
            mods_str(&ms, LDAP_MOD_DELETE, "extensions", tok->lease_value);
        } else {
            snprintf(assertion, sizeof(assertion), "(&(modified=%lld)(!(extensions=opOwner=*)))",
                     tok->modified);
        }
        mods_str(&ms, LDAP_MOD_ADD, "extensions", l.value);
        mods_str(&ms, LDAP_MOD_INCREMENT, "modified", "1");
        if (ms.oom) {
            mods_cleanup(&ms);
            return TPS_TDB_ENOMEM;
        }
        memset(&op, 0, sizeof(op));
        op.dn = tok->dn;
        op.mods = ms.ptrs;
        op.assertion = assertion;
        rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
        rc = map_result(db, rc, lrc, "lease", tok->dn);
        mods_cleanup(&ms);
        if (rc == TPS_TDB_OK) {
            tok->modified++;
            if (!set_str(&tok->lease_value, l.value))
                return TPS_TDB_ENOMEM;
            *lease = l;
            return TPS_TDB_OK;
        }
        if (rc != TPS_TDB_ECONFLICT)
            return rc;
        /* lost a race: re-read and re-decide */
    }
    return rc;
}

/* Removes our lease value, replacing it with next_value (renewal) or not (release), in a
 * modify asserted on the value and on the counter we last wrote: on a provider that has not
 * seen our last change (the one that took it died before replicating it) the write must fail,
 * or its newer entry would win over that change when the pair reconverges (entry-level last
 * writer wins). A lease taken over, or a record changed behind us, fails the assertion (122):
 * ELEASE, nothing written, the lease expires on its own. A retry after a lost answer may see
 * the same although our first attempt went through; either way the old value is not ours. */
static enum tps_tdb_rc
lease_write(struct tps_tokendb *db, struct tps_token *tok, const struct tps_token_lease *lease,
            const char *next_value, const char *what)
{
    char assertion[600], esc[400];
    struct mods ms;
    struct modify_op op;
    enum tps_tdb_rc rc;
    int lrc;

    tps_ldap_conn_clearerr(db->conn);
    if (tok->dn == NULL)
        return TPS_TDB_EINVAL;
    if (tps_ldap_filter_escape(lease->value, esc, sizeof(esc)) != TPS_TDB_OK)
        return TPS_TDB_ETOOBIG;
    snprintf(assertion, sizeof(assertion), "(&(modified=%lld)(extensions=%s))", tok->modified,
             esc);
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_DELETE, "extensions", lease->value);
    if (next_value != NULL)
        mods_str(&ms, LDAP_MOD_ADD, "extensions", next_value);
    if (ms.oom) {
        mods_cleanup(&ms);
        return TPS_TDB_ENOMEM;
    }
    memset(&op, 0, sizeof(op));
    op.dn = tok->dn;
    op.mods = ms.ptrs;
    op.assertion = assertion;
    rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
    rc = map_result(db, rc, lrc, what, tok->dn);
    mods_cleanup(&ms);
    if (rc == TPS_TDB_ECONFLICT) {
        tps_ldap_conn_seterr(db->conn, "lease %s is no longer held, or the record changed "
                             "since our last write (it expires on its own)", lease->owner);
        rc = TPS_TDB_ELEASE;
    }
    return rc;
}

enum tps_tdb_rc
tps_tokendb_lease_renew(struct tps_tokendb *db, struct tps_token *tok, unsigned seconds,
                        struct tps_token_lease *lease)
{
    struct tps_token_lease l;
    enum tps_tdb_rc rc = make_lease(db, lease->epoch, seconds, lease->owner, &l);

    if (rc == TPS_TDB_OK)
        rc = lease_write(db, tok, lease, l.value, "renew lease of");
    if (rc != TPS_TDB_OK)
        return rc;
    *lease = l;
    return set_str(&tok->lease_value, l.value) ? TPS_TDB_OK : TPS_TDB_ENOMEM;
}

enum tps_tdb_rc
tps_tokendb_lease_release(struct tps_tokendb *db, struct tps_token *tok,
                          const struct tps_token_lease *lease)
{
    enum tps_tdb_rc rc = lease_write(db, tok, lease, NULL, "release lease of");

    if ((rc == TPS_TDB_OK || rc == TPS_TDB_ELEASE) && tok->lease_value != NULL &&
        strcmp(tok->lease_value, lease->value) == 0) {
        free(tok->lease_value);
        tok->lease_value = NULL;
    }
    return rc;
}

/* ---- pending key version -------------------------------------------------------------------- */

enum tps_tdb_rc
tps_tokendb_pending_key_set(struct tps_tokendb *db, struct tps_token *tok, const char *new_key_info,
                            const struct tps_token_lease *lease)
{
    char value[128], now[16];
    struct mods ms;
    enum tps_tdb_rc rc;
    char *info = NULL, *since = NULL;

    tps_ldap_conn_clearerr(db->conn);
    if (tok->dn == NULL || !is_hex_string(new_key_info, 2, 64))
        return TPS_TDB_EINVAL;
    rc = ensure_counter(db, tok);
    if (rc != TPS_TDB_OK)
        return rc;
    tps_tdb_utc(time(NULL), now, sizeof(now));
    snprintf(value, sizeof(value), "pendingKeyInfo=%s&pendingSince=%s", new_key_info, now);
    mods_init(&ms);
    if (tok->pending_value != NULL)
        mods_str(&ms, LDAP_MOD_DELETE, "extensions", tok->pending_value);
    mods_str(&ms, LDAP_MOD_ADD, "extensions", value);
    rc = record_modify(db, tok, &ms, lease, "set pending key version of");
    mods_cleanup(&ms);
    if (rc != TPS_TDB_OK)
        return rc;
    if (!split_pending(value, &info, &since) || !set_str(&tok->pending_value, value)) {
        free(info);
        free(since);
        return TPS_TDB_ENOMEM;
    }
    free(tok->pending_key_info);
    free(tok->pending_since);
    tok->pending_key_info = info;
    tok->pending_since = since;
    return TPS_TDB_OK;
}

static enum tps_tdb_rc
pending_finish(struct tps_tokendb *db, struct tps_token *tok, const char *key_info,
               const struct tps_token_lease *lease)
{
    struct mods ms;
    enum tps_tdb_rc rc;

    tps_ldap_conn_clearerr(db->conn);
    if (tok->dn == NULL)
        return TPS_TDB_EINVAL;
    if (key_info == NULL && tok->pending_value == NULL)
        return TPS_TDB_OK;
    if (key_info != NULL && !is_hex_string(key_info, 2, 64))
        return TPS_TDB_EINVAL;
    rc = ensure_counter(db, tok);
    if (rc != TPS_TDB_OK)
        return rc;
    mods_init(&ms);
    if (key_info != NULL)
        mods_str(&ms, LDAP_MOD_REPLACE, "keyInfo", key_info);
    if (tok->pending_value != NULL)
        mods_str(&ms, LDAP_MOD_DELETE, "extensions", tok->pending_value);
    rc = record_modify(db, tok, &ms, lease,
                       key_info ? "commit key version of" : "clear pending key version of");
    mods_cleanup(&ms);
    if (rc != TPS_TDB_OK)
        return rc;
    if (key_info != NULL && !set_str(&tok->key_info, key_info))
        return TPS_TDB_ENOMEM;
    free(tok->pending_value);
    free(tok->pending_key_info);
    free(tok->pending_since);
    tok->pending_value = tok->pending_key_info = tok->pending_since = NULL;
    return TPS_TDB_OK;
}

enum tps_tdb_rc
tps_tokendb_pending_key_commit(struct tps_tokendb *db, struct tps_token *tok, const char *key_info,
                               const struct tps_token_lease *lease)
{
    if (key_info == NULL)
        return TPS_TDB_EINVAL;
    return pending_finish(db, tok, key_info, lease);
}

enum tps_tdb_rc
tps_tokendb_pending_key_clear(struct tps_tokendb *db, struct tps_token *tok,
                              const struct tps_token_lease *lease)
{
    return pending_finish(db, tok, NULL, lease);
}

bool
tps_token_key_info_matches(const struct tps_token *tok, const char *card_key_info)
{
    if (card_key_info == NULL || card_key_info[0] == '\0')
        return false;
    if (tok->key_info != NULL && strcasecmp(tok->key_info, card_key_info) == 0)
        return true;
    return tok->pending_key_info != NULL && strcasecmp(tok->pending_key_info, card_key_info) == 0;
}

/* ---- singleton-job lease ---------------------------------------------------------------- */

static char *job_attrs[] = {(char[]){"leaseOwner"}, (char[]){"leaseExpires"},
                            (char[]){"leaseEpoch"}, NULL};

static bool
valid_job_name(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
            return false;
    return n >= 1 && n <= 64;
}

/* Reads the job lease entry. *exists false when there is none. */
static enum tps_tdb_rc
job_read(struct tps_tokendb *db, const char *dn, bool *exists, char *owner, size_t owner_size,
         time_t *expires, unsigned long long *epoch)
{
    struct search_op s;
    LDAPMessage *e;
    enum tps_tdb_rc rc;
    bool oom = false;
    char *o = NULL, *x = NULL, *n = NULL;
    int lrc;

    *exists = false;
    owner[0] = '\0';
    *expires = 0;
    *epoch = 0;
    memset(&s, 0, sizeof(s));
    s.base = dn;
    s.scope = LDAP_SCOPE_BASE;
    s.filter = "(objectClass=tpsLease)";
    s.attrs = job_attrs;
    s.sizelimit = 1;
    rc = tps_ldap_conn_run(db->conn, search_fn, &s, true, &lrc);
    if (rc == TPS_TDB_OK && lrc == LDAP_NO_SUCH_OBJECT) {
        rc = TPS_TDB_OK;
        goto out;
    }
    rc = map_result(db, rc, lrc, "read job lease", dn);
    if (rc != TPS_TDB_OK)
        goto out;
    e = ldap_first_entry(db->conn->ld, s.res);
    if (e == NULL)
        goto out;
    *exists = true;
    o = first_value(db->conn->ld, e, "leaseOwner", &oom);
    x = first_value(db->conn->ld, e, "leaseExpires", &oom);
    n = first_value(db->conn->ld, e, "leaseEpoch", &oom);
    if (oom) {
        rc = TPS_TDB_ENOMEM;
        goto out;
    }
    if (o != NULL)
        snprintf(owner, owner_size, "%s", o);
    if (x == NULL || !tps_tdb_utc_parse(x, expires))
        *expires = 0; /* unreadable: treated as expired */
    if (n != NULL && cmn_parse_uint(n, 0, LLONG_MAX, epoch) != CMN_OK)
        *epoch = 0;
out:
    free(o);
    free(x);
    free(n);
    if (s.res != NULL)
        ldap_msgfree(s.res);
    return rc;
}

enum tps_tdb_rc
tps_tokendb_job_lease_acquire(struct tps_tokendb *db, const char *job, unsigned seconds,
                              struct tps_job_lease *lease)
{
    const char *me = db->cfg->instance_id;
    char dn[600], owner[64], exp[16], now_s[16], num[24], assertion[300];
    enum tps_tdb_rc rc = TPS_TDB_ECONFLICT;

    tps_ldap_conn_clearerr(db->conn);
    if (!valid_job_name(job))
        return TPS_TDB_EINVAL;
    if (snprintf(dn, sizeof(dn), "cn=%s,%s", job, db->cfg->leases_dn) >= (int)sizeof(dn))
        return TPS_TDB_ETOOBIG;
    for (int round = 0; round < LEASE_TRIES; round++) {
        struct mods ms;
        struct modify_op op;
        bool exists;
        time_t expires, now = time(NULL), until;
        unsigned long long epoch;
        int lrc;

        rc = job_read(db, dn, &exists, owner, sizeof(owner), &expires, &epoch);
        if (rc != TPS_TDB_OK)
            return rc;
        if (exists && strcmp(owner, me) != 0 && expires > now) {
            tps_tdb_utc(expires, exp, sizeof(exp));
            tps_ldap_conn_seterr(db->conn, "job %s is leased by %s (epoch %llu) until %s", job,
                                 owner, epoch, exp);
            return TPS_TDB_EBUSY;
        }
        until = now + (time_t)(seconds ? seconds : db->cfg->lease_seconds);
        tps_tdb_utc(until, exp, sizeof(exp));
        tps_tdb_utc(now, now_s, sizeof(now_s));
        mods_init(&ms);
        memset(&op, 0, sizeof(op));
        op.dn = dn;
        if (!exists) {
            mods_str(&ms, LDAP_MOD_ADD, "objectClass", "top");
            mods_str(&ms, LDAP_MOD_ADD, "objectClass", "applicationProcess");
            mods_str(&ms, LDAP_MOD_ADD, "objectClass", "tpsLease");
            mods_str(&ms, LDAP_MOD_ADD, "cn", job);
            mods_str(&ms, LDAP_MOD_ADD, "leaseOwner", me);
            mods_str(&ms, LDAP_MOD_ADD, "leaseExpires", exp);
            mods_str(&ms, LDAP_MOD_ADD, "leaseEpoch", "1");
            op.add = true;
        } else {
            snprintf(num, sizeof(num), "%llu", epoch);
            snprintf(assertion, sizeof(assertion),
                     "(&(leaseEpoch=%s)(|(leaseOwner=%s)(leaseExpires<=%s)))", num, me, now_s);
            mods_str(&ms, LDAP_MOD_REPLACE, "leaseOwner", me);
            mods_str(&ms, LDAP_MOD_REPLACE, "leaseExpires", exp);
            mods_str(&ms, LDAP_MOD_INCREMENT, "leaseEpoch", "1");
            op.assertion = assertion;
        }
        if (ms.oom) {
            mods_cleanup(&ms);
            return TPS_TDB_ENOMEM;
        }
        op.mods = ms.ptrs;
        rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
        rc = map_result(db, rc, lrc, exists ? "take job lease" : "create job lease", dn);
        mods_cleanup(&ms);
        if (rc == TPS_TDB_OK) {
            memset(lease, 0, sizeof(*lease));
            snprintf(lease->job, sizeof(lease->job), "%s", job);
            lease->epoch = exists ? epoch + 1 : 1;
            lease->expires = until;
            return TPS_TDB_OK;
        }
        if (rc != TPS_TDB_ECONFLICT && rc != TPS_TDB_EEXISTS)
            return rc;
        /* lost a race: re-read and re-decide */
    }
    return rc == TPS_TDB_EEXISTS ? TPS_TDB_ECONFLICT : rc;
}

enum tps_tdb_rc
tps_tokendb_job_lease_release(struct tps_tokendb *db, const struct tps_job_lease *lease)
{
    char dn[600], now_s[16], assertion[300];
    struct mods ms;
    struct modify_op op;
    enum tps_tdb_rc rc;
    int lrc;

    tps_ldap_conn_clearerr(db->conn);
    if (!valid_job_name(lease->job))
        return TPS_TDB_EINVAL;
    if (snprintf(dn, sizeof(dn), "cn=%s,%s", lease->job, db->cfg->leases_dn) >= (int)sizeof(dn))
        return TPS_TDB_ETOOBIG;
    tps_tdb_utc(time(NULL), now_s, sizeof(now_s));
    snprintf(assertion, sizeof(assertion), "(&(leaseOwner=%s)(leaseEpoch=%llu))",
             db->cfg->instance_id, lease->epoch);
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_REPLACE, "leaseExpires", now_s);
    if (ms.oom) {
        mods_cleanup(&ms);
        return TPS_TDB_ENOMEM;
    }
    memset(&op, 0, sizeof(op));
    op.dn = dn;
    op.mods = ms.ptrs;
    op.assertion = assertion;
    rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
    rc = map_result(db, rc, lrc, "release job lease", dn);
    mods_cleanup(&ms);
    if (rc == TPS_TDB_ECONFLICT || rc == TPS_TDB_ENOTFOUND) {
        tps_ldap_conn_seterr(db->conn, "job lease %s (epoch %llu) was not ours any more",
                             lease->job, lease->epoch);
        rc = TPS_TDB_ELEASE;
    }
    return rc;
}

/* ---- instance entries (configuration digest, §6) ------------------------------------------ */

static bool
digest_ok(const char *d)
{
    size_t n = 0;

    if (d == NULL)
        return false;
    for (; d[n] != '\0'; n++)
        if (!((d[n] >= '0' && d[n] <= '9') || (d[n] >= 'a' && d[n] <= 'f')))
            return false;
    return n == 64;
}

/* An unasserted modify (add = false) or add of dn with the mods of ms, retried once after a
 * lost connection (the caller makes sure that is idempotent). For an add, 68 (it exists: our
 * own add after a lost answer, or a peer's ou=Instances) counts as success. */
static enum tps_tdb_rc
write_entry(struct tps_tokendb *db, const char *dn, struct mods *ms, bool add, const char *what)
{
    struct modify_op op;
    enum tps_tdb_rc rc;
    int lrc;

    if (ms->oom)
        return TPS_TDB_ENOMEM;
    memset(&op, 0, sizeof(op));
    op.dn = dn;
    op.mods = ms->ptrs;
    op.add = add;
    rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
    if (add && rc == TPS_TDB_OK && lrc == LDAP_ALREADY_EXISTS)
        return TPS_TDB_OK;
    return map_result(db, rc, lrc, what, dn);
}

/* Creates ou=Instances (a DIT loaded before the feature existed lacks it). */
static enum tps_tdb_rc
instances_container_add(struct tps_tokendb *db)
{
    struct mods ms;
    enum tps_tdb_rc rc;

    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "top");
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "organizationalUnit");
    mods_str(&ms, LDAP_MOD_ADD, "ou", "Instances");
    rc = write_entry(db, db->cfg->instances_dn, &ms, true, "create");
    mods_cleanup(&ms);
    return rc;
}

/* The description values of our entry, replaced (modify) or added (add). */
static void
instance_mods(struct mods *ms, int op, const char *digest, time_t since, time_t seen)
{
    char v[3][96], t[16];

    snprintf(v[0], sizeof(v[0]), "digest=%s", digest);
    tps_tdb_utc(since, t, sizeof(t));
    snprintf(v[1], sizeof(v[1]), "since=%s", t);
    tps_tdb_utc(seen, t, sizeof(t));
    snprintf(v[2], sizeof(v[2]), "seen=%s", t);
    for (int i = 0; i < 3; i++)
        mods_str(ms, op, "description", v[i]);
}

enum tps_tdb_rc
tps_tokendb_instance_publish(struct tps_tokendb *db, const char *digest, time_t since,
                             time_t seen)
{
    char dn[600];
    struct mods ms;
    enum tps_tdb_rc rc;

    tps_ldap_conn_clearerr(db->conn);
    if (!digest_ok(digest))
        return TPS_TDB_EINVAL;
    if (snprintf(dn, sizeof(dn), "cn=%s,%s", db->cfg->instance_id, db->cfg->instances_dn) >=
        (int)sizeof(dn))
        return TPS_TDB_ETOOBIG;
    /* Only this instance writes its entry, so an unasserted replace is safe and idempotent. */
    mods_init(&ms);
    instance_mods(&ms, LDAP_MOD_REPLACE, digest, since, seen);
    rc = write_entry(db, dn, &ms, false, "refresh instance entry");
    mods_cleanup(&ms);
    if (rc != TPS_TDB_ENOTFOUND)
        return rc;
    tps_ldap_conn_clearerr(db->conn);
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "top");
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "applicationProcess");
    mods_str(&ms, LDAP_MOD_ADD, "cn", db->cfg->instance_id);
    instance_mods(&ms, LDAP_MOD_ADD, digest, since, seen);
    rc = write_entry(db, dn, &ms, true, "create instance entry");
    if (rc == TPS_TDB_ENOTFOUND) {
        tps_ldap_conn_clearerr(db->conn);
        rc = instances_container_add(db);
        if (rc == TPS_TDB_OK)
            rc = write_entry(db, dn, &ms, true, "create instance entry");
    }
    mods_cleanup(&ms);
    return rc;
}

/* One description value "name=value" of an instance entry into rec. */
static void
instance_value(struct tps_instance_rec *rec, const char *v, size_t len)
{
    char buf[96];

    if (len >= sizeof(buf))
        return;
    memcpy(buf, v, len);
    buf[len] = '\0';
    if (strncmp(buf, "digest=", 7) == 0 && digest_ok(buf + 7))
        memcpy(rec->digest, buf + 7, 65);
    else if (strncmp(buf, "since=", 6) == 0 && !tps_tdb_utc_parse(buf + 6, &rec->since))
        rec->since = 0;
    else if (strncmp(buf, "seen=", 5) == 0 && !tps_tdb_utc_parse(buf + 5, &rec->seen))
        rec->seen = 0;
}

static void
instance_read(LDAP *ld, LDAPMessage *e, struct tps_instance_rec *rec)
{
    struct berval **cn = ldap_get_values_len(ld, e, "cn");
    struct berval **d = ldap_get_values_len(ld, e, "description");

    memset(rec, 0, sizeof(*rec));
    if (cn != NULL && cn[0] != NULL && cn[0]->bv_len < sizeof(rec->id)) {
        memcpy(rec->id, cn[0]->bv_val, cn[0]->bv_len);
        rec->id[cn[0]->bv_len] = '\0';
    }
    for (size_t i = 0; d != NULL && d[i] != NULL; i++)
        instance_value(rec, d[i]->bv_val, d[i]->bv_len);
    ldap_value_free_len(cn);
    ldap_value_free_len(d);
}

static char *instance_attrs[] = {(char[]){"cn"}, (char[]){"description"}, NULL};

enum tps_tdb_rc
tps_tokendb_instance_list(struct tps_tokendb *db, struct tps_instance_rec *out, size_t cap,
                          size_t *n)
{
    struct search_op s;
    enum tps_tdb_rc rc;
    int lrc;

    *n = 0;
    tps_ldap_conn_clearerr(db->conn);
    memset(&s, 0, sizeof(s));
    s.base = db->cfg->instances_dn;
    s.scope = LDAP_SCOPE_ONELEVEL;
    s.filter = "(objectClass=applicationProcess)";
    s.attrs = instance_attrs;
    s.sizelimit = (int)cap;
    rc = tps_ldap_conn_run(db->conn, search_fn, &s, true, &lrc);
    if (rc == TPS_TDB_OK && lrc == LDAP_NO_SUCH_OBJECT) {
        rc = TPS_TDB_OK; /* no ou=Instances yet: nobody has published */
        goto out;
    }
    rc = map_result(db, rc, lrc, "list instance entries under", s.base);
    if (rc != TPS_TDB_OK)
        goto out;
    for (LDAPMessage *e = ldap_first_entry(db->conn->ld, s.res); e != NULL && *n < cap;
         e = ldap_next_entry(db->conn->ld, e))
        instance_read(db->conn->ld, e, &out[(*n)++]);
out:
    if (s.res != NULL)
        ldap_msgfree(s.res);
    return rc;
}

/* ---- certificates and activities ----------------------------------------------------------- */

static _Atomic unsigned long long name_counter;

/* cn=<UTC YYYYMMDDhhmmss><µs 6>Z.<instanceId>.<counter 20> (§1.6). */
static void
make_cn(const struct tps_tokendb *db, char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char t[16];
    unsigned long long k = atomic_fetch_add(&name_counter, 1) + 1;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(t, sizeof(t), "%Y%m%d%H%M%S", &tm);
    snprintf(out, size, "%s%06ldZ.%s.%020llu", t, ts.tv_nsec / 1000, db->cfg->instance_id, k);
}

/* Adds an entry named by make_cn under base; the mods must not contain cn. On 68 from the
 * first try a new name is tried once; 68 on a retry after a lost answer is our own add. */
static enum tps_tdb_rc
add_named(struct tps_tokendb *db, const char *base, struct mods *ms, const char *what, char *cn_out,
          size_t cn_size)
{
    char cn[TPS_TDB_CN_MAX], dn[1200];
    enum tps_tdb_rc rc = TPS_TDB_ELDAP;
    size_t n0 = ms->n;

    for (int round = 0; round < 2; round++) {
        struct modify_op op;
        int lrc;

        /* drop the cn of the previous round */
        while (ms->n > n0) {
            ms->n--;
            free(ms->m[ms->n].mod_type);
            for (size_t k = 0; k < ms->nvals[ms->n]; k++)
                free(ms->bv[ms->n][k].bv_val);
            ms->nvals[ms->n] = 0;
            ms->m[ms->n].mod_type = NULL;
            ms->ptrs[ms->n] = NULL;
        }
        make_cn(db, cn, sizeof(cn));
        if (snprintf(dn, sizeof(dn), "cn=%s,%s", cn, base) >= (int)sizeof(dn))
            return TPS_TDB_ETOOBIG;
        mods_str(ms, LDAP_MOD_ADD, "cn", cn);
        if (ms->oom)
            return TPS_TDB_ENOMEM;
        memset(&op, 0, sizeof(op));
        op.dn = dn;
        op.mods = ms->ptrs;
        op.add = true;
        tps_ldap_conn_clearerr(db->conn);
        rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
        if (rc == TPS_TDB_OK && lrc == LDAP_ALREADY_EXISTS && op.calls > 1)
            lrc = LDAP_SUCCESS;
        rc = map_result(db, rc, lrc, what, dn);
        if (rc != TPS_TDB_EEXISTS)
            break;
    }
    if (rc == TPS_TDB_OK && cn_out != NULL)
        snprintf(cn_out, cn_size, "%s", cn);
    return rc;
}

static const char *const cert_statuses[] = {"active",  "revoked",       "revoked_on_hold",
                                            "expired", "uninitialized", NULL};

static bool
valid_cert_status(const char *s)
{
    for (int i = 0; s != NULL && cert_statuses[i] != NULL; i++)
        if (strcmp(s, cert_statuses[i]) == 0)
            return true;
    return false;
}

enum tps_tdb_rc
tps_tokendb_cert_add(struct tps_tokendb *db, const struct tps_token_cert *c, char *cn_out,
                     size_t cn_size)
{
    struct mods ms;
    char now[16];
    enum tps_tdb_rc rc;
    const struct {
        const char *type, *v;
    } f[] = {
        {"tokenID", c->cuid},
        {"tokenSerial", c->serial},
        {"tokenStatus", c->status},
        {"tokenUserID", c->user_id},
        {"tokenOrigin", c->origin},
        {"tokenIssuer", c->issuer},
        {"tokenSubject", c->subject},
        {"tokenType", c->type},
        {"tokenKeyType", c->key_type},
        {"tokenNotBefore", c->not_before},
        {"tokenNotAfter", c->not_after},
    };

    tps_ldap_conn_clearerr(db->conn);
    if (!is_hex_string(c->cuid, 1, TPS_CUID_MAX) || c->serial == NULL || c->serial[0] == '\0' ||
        !valid_cert_status(c->status)) {
        tps_ldap_conn_seterr(db->conn, "cert add: need a hex CUID, a serial and a status of "
                                       "active/revoked/revoked_on_hold/expired/uninitialized");
        return TPS_TDB_EINVAL;
    }
    tps_tdb_utc(time(NULL), now, sizeof(now));
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "top");
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "tokenCert");
    mods_str(&ms, LDAP_MOD_ADD, "dateOfCreate", now);
    mods_str(&ms, LDAP_MOD_ADD, "dateOfModify", now);
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].v != NULL && f[i].v[0] != '\0')
            mods_str(&ms, LDAP_MOD_ADD, f[i].type, f[i].v);
    /* §1.5 (5): DER, with ;binary transfer (certificate syntax requires it) */
    if (c->der != NULL && c->der_len > 0)
        mods_add(&ms, LDAP_MOD_ADD, "userCertificate;binary", c->der, c->der_len);
    rc = add_named(db, db->cfg->cert_base_dn, &ms, "add certificate", cn_out, cn_size);
    mods_cleanup(&ms);
    return rc;
}

void
tps_token_certs_free(struct tps_token_cert *arr, size_t n)
{
    if (arr == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(arr[i].owned_);
    free(arr);
}

static char *cert_attrs[] = {
    (char[]){"cn"},
    (char[]){"tokenUserID"},
    (char[]){"tokenID"},
    (char[]){"tokenOrigin"},
    (char[]){"tokenIssuer"},
    (char[]){"tokenSubject"},
    (char[]){"tokenSerial"},
    (char[]){"tokenStatus"},
    (char[]){"tokenType"},
    (char[]){"tokenKeyType"},
    (char[]){"tokenNotBefore"},
    (char[]){"tokenNotAfter"},
    (char[]){"dateOfCreate"},
    (char[]){"dateOfModify"},
    (char[]){"userCertificate;binary"},
    NULL,
};

/* Copies one entry into c; all strings and the DER in one allocation (c->owned_). */
static enum tps_tdb_rc
entry_to_cert(LDAP *ld, LDAPMessage *e, struct tps_token_cert *c)
{
    const char **fields[14] = {&c->cn,          &c->user_id,    &c->cuid,       &c->origin,
                               &c->issuer,      &c->subject,    &c->serial,     &c->status,
                               &c->type,        &c->key_type,   &c->not_before, &c->not_after,
                               &c->date_create, &c->date_modify};
    struct berval **vals[15];
    size_t total = 0, off = 0;
    char *mem;

    memset(c, 0, sizeof(*c));
    for (int i = 0; i < 15; i++) {
        vals[i] = ldap_get_values_len(ld, e, cert_attrs[i]);
        if (vals[i] != NULL && vals[i][0] != NULL)
            total += vals[i][0]->bv_len + 1;
    }
    mem = malloc(total ? total : 1);
    if (mem != NULL) {
        for (int i = 0; i < 15; i++) {
            if (vals[i] == NULL || vals[i][0] == NULL)
                continue;
            memcpy(mem + off, vals[i][0]->bv_val, vals[i][0]->bv_len);
            mem[off + vals[i][0]->bv_len] = '\0';
            if (i < 14) {
                *fields[i] = mem + off;
            } else {
                c->der = (const uint8_t *)(mem + off);
                c->der_len = vals[i][0]->bv_len;
            }
            off += vals[i][0]->bv_len + 1;
        }
    }
    for (int i = 0; i < 15; i++)
        if (vals[i] != NULL)
            ldap_value_free_len(vals[i]);
    if (mem == NULL)
        return TPS_TDB_ENOMEM;
    c->owned_ = mem;
    return TPS_TDB_OK;
}

static int
cmp_cert_oldest(const void *a, const void *b)
{
    const struct tps_token_cert *x = a, *y = b;
    int r = strcmp(x->date_create ? x->date_create : "", y->date_create ? y->date_create : "");

    return r != 0 ? r : strcmp(x->cn ? x->cn : "", y->cn ? y->cn : "");
}

enum tps_tdb_rc
tps_tokendb_cert_list(struct tps_tokendb *db, const char *cuid, struct tps_token_cert **out,
                      size_t *n)
{
    char filter[200];
    struct search_op s;
    struct tps_token_cert *arr = NULL;
    size_t k = 0;
    enum tps_tdb_rc rc;
    int lrc, count;

    *out = NULL;
    *n = 0;
    tps_ldap_conn_clearerr(db->conn);
    if (!is_hex_string(cuid, 1, TPS_CUID_MAX))
        return TPS_TDB_EINVAL;
    snprintf(filter, sizeof(filter), "(&(objectClass=tokenCert)(tokenID=%s))", cuid);
    memset(&s, 0, sizeof(s));
    s.base = db->cfg->cert_base_dn;
    s.scope = LDAP_SCOPE_ONELEVEL;
    s.filter = filter;
    s.attrs = cert_attrs;
    s.sizelimit = MAX_LIST + 1;
    rc = tps_ldap_conn_run(db->conn, search_fn, &s, true, &lrc);
    rc = map_result(db, rc, lrc, "list certificates under", db->cfg->cert_base_dn);
    if (rc != TPS_TDB_OK)
        goto out;
    count = ldap_count_entries(db->conn->ld, s.res);
    if (count > MAX_LIST) {
        rc = TPS_TDB_ETOOBIG;
        goto out;
    }
    arr = calloc((size_t)(count > 0 ? count : 0) + 1, sizeof(*arr));
    if (arr == NULL) {
        rc = TPS_TDB_ENOMEM;
        goto out;
    }
    for (LDAPMessage *e = ldap_first_entry(db->conn->ld, s.res); e != NULL && k < (size_t)count;
         e = ldap_next_entry(db->conn->ld, e)) {
        rc = entry_to_cert(db->conn->ld, e, &arr[k]);
        if (rc != TPS_TDB_OK)
            goto out;
        k++;
    }
    if (k > 1)
        qsort(arr, k, sizeof(*arr), cmp_cert_oldest);
    *out = arr;
    *n = k;
    arr = NULL;
out:
    tps_token_certs_free(arr, k);
    if (s.res != NULL)
        ldap_msgfree(s.res);
    return rc;
}

enum tps_tdb_rc
tps_tokendb_cert_set_status(struct tps_tokendb *db, const char *cn, const char *status)
{
    char dn[1200], now[16];
    struct mods ms;
    struct modify_op op;
    enum tps_tdb_rc rc;
    int lrc;

    tps_ldap_conn_clearerr(db->conn);
    if (!is_safe_cn(cn) || !valid_cert_status(status))
        return TPS_TDB_EINVAL;
    if (snprintf(dn, sizeof(dn), "cn=%s,%s", cn, db->cfg->cert_base_dn) >= (int)sizeof(dn))
        return TPS_TDB_ETOOBIG;
    tps_tdb_utc(time(NULL), now, sizeof(now));
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_REPLACE, "tokenStatus", status);
    mods_str(&ms, LDAP_MOD_REPLACE, "dateOfModify", now);
    if (ms.oom) {
        mods_cleanup(&ms);
        return TPS_TDB_ENOMEM;
    }
    memset(&op, 0, sizeof(op));
    op.dn = dn;
    op.mods = ms.ptrs;
    rc = tps_ldap_conn_run(db->conn, modify_fn, &op, true, &lrc);
    rc = map_result(db, rc, lrc, "set certificate status of", dn);
    mods_cleanup(&ms);
    return rc;
}

enum tps_tdb_rc
tps_tokendb_cert_delete(struct tps_tokendb *db, const char *cn)
{
    char dn[1200];

    tps_ldap_conn_clearerr(db->conn);
    if (!is_safe_cn(cn))
        return TPS_TDB_EINVAL;
    if (snprintf(dn, sizeof(dn), "cn=%s,%s", cn, db->cfg->cert_base_dn) >= (int)sizeof(dn))
        return TPS_TDB_ETOOBIG;
    /* already gone (a retry after a lost answer) is what the caller wanted */
    return delete_entry(db, dn, true);
}

enum tps_tdb_rc
tps_tokendb_activity_add(struct tps_tokendb *db, const struct tps_token_activity *a, char *cn_out,
                         size_t cn_size)
{
    struct mods ms;
    char now[16], msg[1024];
    enum tps_tdb_rc rc;
    const struct {
        const char *type, *v;
    } f[] = {
        {"tokenOp", a->op},          {"tokenResult", a->result}, {"tokenID", a->cuid},
        {"tokenUserID", a->user_id}, {"tokenIP", a->ip},         {"tokenMsg", msg},
        {"tokenType", a->type},
    };

    tps_ldap_conn_clearerr(db->conn);
    if (a->op == NULL || a->op[0] == '\0' || a->result == NULL || a->result[0] == '\0')
        return TPS_TDB_EINVAL;
    if (a->officer != NULL && a->officer[0] != '\0')
        snprintf(msg, sizeof(msg), "%s%sofficer %s", a->msg != NULL ? a->msg : "",
                 a->msg != NULL && a->msg[0] != '\0' ? "; " : "", a->officer);
    else
        snprintf(msg, sizeof(msg), "%s", a->msg != NULL ? a->msg : "");
    tps_tdb_utc(time(NULL), now, sizeof(now));
    mods_init(&ms);
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "top");
    mods_str(&ms, LDAP_MOD_ADD, "objectClass", "tokenActivity");
    mods_str(&ms, LDAP_MOD_ADD, "dateOfCreate", now);
    mods_str(&ms, LDAP_MOD_ADD, "dateOfModify", now);
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].v != NULL && f[i].v[0] != '\0')
            mods_str(&ms, LDAP_MOD_ADD, f[i].type, f[i].v);
    rc = add_named(db, db->cfg->activity_base_dn, &ms, "add activity", cn_out, cn_size);
    mods_cleanup(&ms);
    return rc;
}
