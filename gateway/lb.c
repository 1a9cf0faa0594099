/* gateway/lb.c - load-balancer awareness: readiness probes on a health thread, the HAProxy
 * agent-check listener, drain, trusted-proxy rules, public-URL checks and /metrics text. */
#define _GNU_SOURCE 1 /* pipe2, accept4 */
#include "gateway/lb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <libfailover/failover.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/tpsmsg.h"
#include "gateway/config.h"
#include "gateway/instances.h"
#include "gateway/tokendb.h"

const struct cmn_cfg_key tps_lb_cfg_keys[] = {
    {.name = "lb.agentPort",
     .type = CFG_UINT,
     .min = 1,
     .max = 65535,
     .doc = "HAProxy agent-check port (agent-port); unset = no agent (ours)"},
    {.name = "lb.statusPort",
     .type = CFG_UINT,
     .min = 1,
     .max = 65535,
     .doc = "plain HTTP port without PROXY header for GET /health and GET /metrics (health "
            "checks, Prometheus); binds lb.agentAddress; unset = none (ours)"},
    {.name = "lb.agentAddress",
     .type = CFG_STR,
     .defstr = "127.0.0.1",
     .doc = "address the agent-check port binds to (ours)"},
    {.name = "lb.trustedProxies",
     .type = CFG_STR,
     .defstr = "127.0.0.1 ::1",
     .doc = "balancer addresses/networks whose PROXY header and X-Forwarded-For are believed; "
            "a PROXY header from any other peer is refused (ours)"},
    {.name = "lb.healthInterval",
     .type = CFG_UINT,
     .min = 100,
     .max = 600000,
     .def = 1000,
     .doc = "ms between readiness evaluations (token DB and connector probes) (ours)"},
    {.name = "lb.probeTimeout",
     .type = CFG_UINT,
     .min = 50,
     .max = 60000,
     .def = 1000,
     .doc = "ms a readiness probe may take per server (ours)"},
    {.name = "lb.drainGrace",
     .type = CFG_UINT,
     .min = 0,
     .max = 600000,
     .def = 2500,
     .doc = "ms between entering drain (agent says drain) and closing the listeners, so the "
            "balancer stops sending first; at least 2 agent intervals (ours)"},
    {.name = "lb.drainTimeout",
     .type = CFG_UINT,
     .min = 0,
     .max = 3600000,
     .def = 300000,
     .doc = "ms running operations get to finish after the listeners close (ours)"},
    {.name = "tokendb.leaseWait",
     .type = CFG_UINT,
     .min = 0,
     .max = 600000,
     .def = 0,
     .doc = "ms an operation waits for another instance's lease on its token to expire (an "
            "instance that died mid-operation); with a short tokendb.leaseSeconds the client's "
            "retry through the balancer succeeds (ours, docs/ha.md)"},
    {.name = "lb.instanceRefresh",
     .type = CFG_UINT,
     .min = 0,
     .max = 3600,
     .def = 10,
     .doc = "s between refreshes of this instance's configuration digest in the token DB "
            "(cn=<tps.instanceId>,ou=Instances); an instance whose configuration is older than "
            "a live peer's answers drain; 0 = no digest check (ours, docs/ha.md)"},
    {.name = "lb.publicURL",
     .type = CFG_STR,
     .defstr = "",
     .doc = "the balancer's base URL (https://tps.example.com:8443); when set, "
            "tps.phoneHome.operation and every op.*.*.issuerinfo.value must start with it (ours)"},
    {0},
};

/* Prometheus histogram bounds (seconds) of token DB calls. */
static const double db_bounds[] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                   0.1,   0.25,  0.5,   1.0,  2.5,   5.0};
#define DB_NB (sizeof(db_bounds) / sizeof(db_bounds[0]))
#define NOPS 6 /* cmn_tps_op 0..5 */

enum refuse_why {
    REFUSE_BUSY = 0,
    REFUSE_UNTRUSTED = 1,
    REFUSE_PROXY = 2,
    REFUSE_DRAIN = 3,
    REFUSE_COUNT = 4,
};
static const char *const refuse_names[REFUSE_COUNT] = {"busy", "untrusted_proxy", "bad_proxy",
                                                       "draining"};

struct lb_check {
    char name[64];
    tps_lb_check_fn *fn;
    void *arg;
    bool up; /* guarded by lb->lock */
};

struct lb_list {
    char name[64];
    const struct fo_list *l;
};

/* The token DB probe's state: its own LDAP handle, used by the health thread only. */
struct db_probe {
    struct tps_lb *lb;
    struct tps_ldap_target *target;
    struct tps_ldap_conn *conn;
    char base[512];
};

/* One reachability probe of a connector's clones: a TCP connect, and with TLS configured a
 * full handshake with the connector's client certificate (so a clone that is up but refuses
 * us counts as down, and the clone logs no failed handshake every second). */
struct tcp_probe {
    struct cmn_cfg_hostlist hosts;
    unsigned timeout_ms;
    SSL_CTX *tls; /* NULL: TCP only */
};

struct tps_lb {
    struct tps_lb_net nets[TPS_LB_MAX_NETS];
    size_t nnets;
    char agent_addr[64];
    unsigned agent_port_cfg;
    bool agent_ephemeral;
    unsigned agent_port; /* bound */
    unsigned status_port_cfg;
    unsigned status_port; /* bound */
    int status_fd;
    unsigned max_sessions;
    unsigned interval_ms, probe_ms, grace_ms, drain_ms;
    char instance[64];

    struct lb_check checks[TPS_LB_MAX_CHECKS];
    size_t nchecks;
    struct lb_list lists[TPS_LB_MAX_LISTS];
    size_t nlists;
    struct db_probe *dbp;
    struct tcp_probe *tcp[TPS_LB_MAX_CHECKS];
    size_t ntcp;
    struct tps_inst *inst; /* configuration-digest check; NULL: off (runs on the health thread) */

    pthread_mutex_t lock; /* guards ready, evaluated, reason, checks[].up */
    bool ready;
    bool evaluated;
    char reason[TPS_LB_REASON_MAX];

    atomic_bool draining;
    atomic_uint live;
    atomic_uint_fast64_t sessions_total;
    atomic_uint_fast64_t ops[NOPS][2]; /* [op][ok] */
    atomic_uint_fast64_t refused[REFUSE_COUNT];
    atomic_uint_fast64_t db_hist[DB_NB + 1];
    atomic_uint_fast64_t db_count, db_sum_us;

    int agent_fd;
    int wake[2];
    pthread_t health_thr, agent_thr;
    bool health_started, agent_started;
    void (*on_drain)(void *); /* POST /drain: set before tps_lb_start */
    void *on_drain_arg;
};

/* ---- networks and client addresses ---- */

static bool
parse_addr(const char *s, int *family, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

enum tps_rc
tps_lb_nets_parse(const char *s, struct tps_lb_net *nets, size_t cap, size_t *n, char *why,
                  size_t whylen)
{
    const char *p = s ? s : "";
    size_t k = 0;

    *n = 0;
    while (*p != '\0') {
        char tok[80], *slash;
        size_t len = strcspn(p, " \t,");
        struct tps_lb_net net;
        unsigned long pfx;
        unsigned maxp;

        if (len == 0) {
            p++;
            continue;
        }
        if (len >= sizeof(tok)) {
            snprintf(why, whylen, "entry '%.20s...' is too long", p);
            return TPS_ECONFIG;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        p += len;
        if (k == cap) {
            snprintf(why, whylen, "more than %zu entries", cap);
            return TPS_ETOOBIG;
        }
        memset(&net, 0, sizeof(net));
        slash = strchr(tok, '/');
        if (slash != NULL)
            *slash = '\0';
        if (!parse_addr(tok, &net.family, net.addr)) {
            snprintf(why, whylen, "'%s' is not an IPv4 or IPv6 address", tok);
            return TPS_ECONFIG;
        }
        maxp = net.family == AF_INET ? 32 : 128;
        net.prefix = maxp;
        if (slash != NULL) {
            char *end = NULL;
            if (slash[1] < '0' || slash[1] > '9') {
                snprintf(why, whylen, "'%s/%s': bad prefix length", tok, slash + 1);
                return TPS_ECONFIG;
            }
            errno = 0;
            pfx = strtoul(slash + 1, &end, 10);
            if (errno != 0 || *end != '\0' || pfx > maxp) {
                snprintf(why, whylen, "'%s/%s': prefix length must be 0..%u", tok, slash + 1,
                         maxp);
                return TPS_ECONFIG;
            }
            net.prefix = (unsigned)pfx;
        }
        /* host bits must be zero: "10.0.0.1/8" is almost always a typo */
        for (unsigned b = net.prefix; b < maxp; b++) {
            if (net.addr[b / 8] & (0x80u >> (b % 8))) {
                snprintf(why, whylen, "'%s/%u': host bits set", tok, net.prefix);
                return TPS_ECONFIG;
            }
        }
        nets[k++] = net;
    }
    *n = k;
    return TPS_OK;
}

static bool
net_has(const struct tps_lb_net *net, int family, const uint8_t *a)
{
    unsigned full, rest;

    if (net->family != family)
        return false;
    full = net->prefix / 8;
    rest = net->prefix % 8;
    if (memcmp(net->addr, a, full) != 0)
        return false;
    if (rest != 0) {
        uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
        if ((net->addr[full] & mask) != (a[full] & mask))
            return false;
    }
    return true;
}

bool
tps_lb_nets_match(const struct tps_lb_net *nets, size_t n, const struct sockaddr *sa)
{
    uint8_t a[16];
    int family;

    if (sa == NULL)
        return false;
    memset(a, 0, sizeof(a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(a, &in->sin_addr, 4);
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        if (memcmp(in6->sin6_addr.s6_addr, mapped, 12) == 0) {
            memcpy(a, in6->sin6_addr.s6_addr + 12, 4);
            family = AF_INET;
        } else {
            memcpy(a, in6->sin6_addr.s6_addr, 16);
            family = AF_INET6;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (net_has(&nets[i], family, a))
            return true;
    return false;
}

enum tps_rc
tps_lb_xff_client(const char *xff, char *out, size_t cap)
{
    const char *last, *end;
    char tok[80];
    size_t len;
    uint8_t a[16];
    int family;

    if (xff == NULL)
        return TPS_EBADREQ;
    end = xff + strlen(xff);
    while (end > xff && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    last = end;
    while (last > xff && last[-1] != ',')
        last--;
    while (last < end && (*last == ' ' || *last == '\t'))
        last++;
    len = (size_t)(end - last);
    if (len == 0 || len >= sizeof(tok))
        return TPS_EBADREQ;
    memcpy(tok, last, len);
    tok[len] = '\0';
    if (tok[0] == '[') {
        /* "[v6]:port" or "[v6]" */
        char *rb = strchr(tok, ']');
        if (rb == NULL)
            return TPS_EBADREQ;
        *rb = '\0';
        memmove(tok, tok + 1, strlen(tok + 1) + 1);
    } else if (strchr(tok, ':') != NULL && strchr(tok, '.') != NULL &&
               strchr(tok, ':') == strrchr(tok, ':')) {
        /* "v4:port" */
        *strchr(tok, ':') = '\0';
    }
    if (!parse_addr(tok, &family, a))
        return TPS_EBADREQ;
    if (inet_ntop(family, a, out, (socklen_t)cap) == NULL)
        return TPS_EBADREQ;
    return TPS_OK;
}

/* ---- agent text ---- */

void
tps_lb_agent_line(bool draining, bool cfg_mismatch, bool ready, const char *reason, unsigned live,
                  unsigned max_sessions, char *out, size_t cap)
{
    if (draining) {
        snprintf(out, cap, "drain\n");
    } else if (ready && cfg_mismatch) {
        /* "up" ends an earlier "down" of ours, so HAProxy shows DRAIN, not DOWN */
        snprintf(out, cap, "up drain\n");
    } else if (!ready) {
        char r[101];
        size_t k = 0;
        const char *p = reason && reason[0] ? reason : "not ready";
        for (; *p != '\0' && k < sizeof(r) - 1; p++)
            r[k++] = (*p >= 0x20 && *p < 0x7F) ? *p : '?';
        r[k] = '\0';
        /* "down #why": the '#' must start a word (HAProxy 2.6: "down#why" is ignored) */
        snprintf(out, cap, "down #%s\n", r);
    } else {
        unsigned pct, freen;
        if (max_sessions == 0)
            max_sessions = 1;
        freen = live >= max_sessions ? 0 : max_sessions - live;
        pct = (unsigned)((unsigned long)freen * 100u / max_sessions);
        if (freen > 0 && pct == 0)
            pct = 1;
        snprintf(out, cap, "up ready %u%%\n", pct);
    }
}

/* ---- object ---- */

enum tps_rc
tps_lb_new(const struct tps_lb_conf *conf, struct tps_lb **out, char *err, size_t errlen)
{
    struct tps_lb *lb;
    char why[200];
    enum tps_rc rc;

    *out = NULL;
    lb = calloc(1, sizeof(*lb));
    if (lb == NULL)
        return TPS_ENOMEM;
    rc = tps_lb_nets_parse(conf->trusted, lb->nets, TPS_LB_MAX_NETS, &lb->nnets, why, sizeof(why));
    if (rc != TPS_OK) {
        snprintf(err, errlen, "key 'lb.trustedProxies': %s", why);
        free(lb);
        return TPS_ECONFIG;
    }
    snprintf(lb->agent_addr, sizeof(lb->agent_addr), "%s",
             conf->agent_address && conf->agent_address[0] ? conf->agent_address : "127.0.0.1");
    lb->agent_port_cfg = conf->agent_port;
    lb->status_port_cfg = conf->status_port;
    lb->agent_ephemeral = conf->agent_ephemeral;
    lb->max_sessions = conf->max_sessions ? conf->max_sessions : 1;
    lb->interval_ms = conf->health_interval_ms ? conf->health_interval_ms : 1000;
    lb->probe_ms = conf->probe_timeout_ms ? conf->probe_timeout_ms : 1000;
    lb->grace_ms = conf->drain_grace_ms;
    lb->drain_ms = conf->drain_timeout_ms;
    snprintf(lb->instance, sizeof(lb->instance), "%s",
             conf->instance_id && conf->instance_id[0] ? conf->instance_id : "tps");
    snprintf(lb->reason, sizeof(lb->reason), "not evaluated yet");
    pthread_mutex_init(&lb->lock, NULL);
    atomic_init(&lb->draining, false);
    atomic_init(&lb->live, 0);
    lb->agent_fd = lb->status_fd = lb->wake[0] = lb->wake[1] = -1;
    if (pipe2(lb->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        tps_lb_free(lb);
        return TPS_EIO;
    }
    *out = lb;
    return TPS_OK;
}

enum tps_rc
tps_lb_add_check(struct tps_lb *lb, const char *name, tps_lb_check_fn *fn, void *arg)
{
    struct lb_check *c;

    if (lb->nchecks == TPS_LB_MAX_CHECKS)
        return TPS_ETOOBIG;
    c = &lb->checks[lb->nchecks++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->fn = fn;
    c->arg = arg;
    c->up = false;
    return TPS_OK;
}

enum tps_rc
tps_lb_add_list(struct tps_lb *lb, const char *name, const struct fo_list *l)
{
    if (lb->nlists == TPS_LB_MAX_LISTS)
        return TPS_ETOOBIG;
    snprintf(lb->lists[lb->nlists].name, sizeof(lb->lists[0].name), "%s", name);
    lb->lists[lb->nlists].l = l;
    lb->nlists++;
    return TPS_OK;
}

/* ---- standard probes ---- */

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Connects to host:port within timeout_ms; true when the connection is accepted. */
static bool
tls_handshake(int fd, SSL_CTX *ctx, const struct cmn_cfg_host *h, unsigned timeout_ms, char *why,
              size_t whylen)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int fl = fcntl(fd, F_GETFL);
    SSL *ssl;
    bool ok = false;

    /* blocking, with the probe timeout on every read and write */
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        snprintf(why, whylen, "%.64s:%u: socket options: %s", h->host, h->port, strerror(errno));
        return false;
    }
    ERR_clear_error();
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        snprintf(why, whylen, "%.64s:%u: cannot set up TLS", h->host, h->port);
        goto out;
    }
    {
        /* SNI names a host, never an address (RFC 6066 §3) */
        char name[CMN_CFG_MAX_HOST + 1];
        struct in6_addr a6;
        snprintf(name, sizeof(name), "%s", h->host);
        if (inet_pton(AF_INET, name, &a6) != 1 && inet_pton(AF_INET6, name, &a6) != 1 &&
            SSL_set_tlsext_host_name(ssl, name) != 1) {
            snprintf(why, whylen, "%.64s:%u: cannot set the TLS server name", h->host, h->port);
            goto out;
        }
    }
    if (SSL_connect(ssl) != 1) {
        char e[160];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        snprintf(why, whylen, "%.64s:%u: TLS handshake: %.80s", h->host, h->port, e);
        goto out;
    }
    ok = true;
    (void)SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    ERR_clear_error();
    return ok;
}

static bool
tcp_reachable(const struct cmn_cfg_host *h, unsigned timeout_ms, SSL_CTX *tls, char *why,
              size_t whylen)
{
    struct addrinfo hints, *ai = NULL;
    char ps[8];
    int fd = -1, g, soerr = 0;
    socklen_t sl = sizeof(soerr);
    struct pollfd pf;
    bool ok = false;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof(ps), "%u", h->port);
    g = getaddrinfo(h->host, ps, &hints, &ai);
    if (g != 0) {
        snprintf(why, whylen, "%s:%u: %s", h->host, h->port, gai_strerror(g));
        return false;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        ok = tls == NULL || tls_handshake(fd, tls, h, timeout_ms, why, whylen);
        goto out;
    }
    if (errno != EINPROGRESS) {
        snprintf(why, whylen, "%s:%u: %s", h->host, h->port, strerror(errno));
        goto out;
    }
    pf.fd = fd;
    pf.events = POLLOUT;
    g = poll(&pf, 1, (int)timeout_ms);
    if (g == 0) {
        snprintf(why, whylen, "%s:%u: connect timeout %u ms", h->host, h->port, timeout_ms);
        goto out;
    }
    if (g < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        snprintf(why, whylen, "%s:%u: %s", h->host, h->port,
                 strerror(soerr != 0 ? soerr : errno));
        goto out;
    }
    ok = tls == NULL || tls_handshake(fd, tls, h, timeout_ms, why, whylen);
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return ok;
}

static bool
tcp_check(void *arg, char *why, size_t whylen)
{
    const struct tcp_probe *t = arg;
    char one[256] = "", all[400] = "";
    size_t used = 0;

    for (size_t i = 0; i < t->hosts.n; i++) {
        if (tcp_reachable(&t->hosts.h[i], t->timeout_ms, t->tls, one, sizeof(one)))
            return true;
        if (used < sizeof(all)) {
            int w = snprintf(all + used, sizeof(all) - used, "%s%s", i ? "; " : "", one);
            if (w > 0)
                used += (size_t)w;
        }
    }
    snprintf(why, whylen, "all %zu clones unreachable (%s)", t->hosts.n, all);
    return false;
}

static int
db_base_read(LDAP *ld, struct timeval *tmo, void *arg)
{
    const struct db_probe *p = arg;
    static char noattrs[] = "1.1";
    char *attrs[] = {noattrs, NULL};
    LDAPMessage *res = NULL;
    int rc;

    rc = ldap_search_ext_s(ld, p->base, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
                           tmo, 1, &res);
    ldap_msgfree(res); /* frees whatever the return value (ldap_search(3)) */
    return rc;
}

static bool
db_check(void *arg, char *why, size_t whylen)
{
    struct db_probe *p = arg;
    int lrc = LDAP_OTHER;
    uint64_t t0 = now_us();
    enum tps_tdb_rc r;

    tps_ldap_conn_clearerr(p->conn);
    r = tps_ldap_conn_run(p->conn, db_base_read, p, true, &lrc);
    if (r == TPS_TDB_OK)
        tps_lb_observe_db(p->lb, now_us() - t0);
    if (r == TPS_TDB_OK && lrc == LDAP_SUCCESS)
        return true;
    if (r == TPS_TDB_OK)
        snprintf(why, whylen, "token DB: reading %s: %s", p->base, ldap_err2string(lrc));
    else
        snprintf(why, whylen, "token DB unreachable: %s", tps_ldap_conn_errmsg(p->conn));
    return false;
}

static enum tps_rc
add_db_probe(struct tps_lb *lb, const struct tps_config *cfg, char *err, size_t errlen)
{
    struct tps_ldap_target_conf tc;
    struct db_probe *p;
    char e[512] = "";

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return TPS_ENOMEM;
    lb->dbp = p;
    p->lb = lb;
    snprintf(p->base, sizeof(p->base), "%s", tps_cfg_str(cfg, "tokendb.baseDN"));
    memset(&tc, 0, sizeof(tc));
    tc.hostport = tps_cfg_str(cfg, "tokendb.hostport");
    tc.ssl = tps_cfg_bool(cfg, "tokendb.ssl");
    tc.starttls = tps_cfg_bool(cfg, "tokendb.startTLS");
    tc.ca_file = tps_cfg_isset(cfg, "tokendb.caFile") ? tps_cfg_str(cfg, "tokendb.caFile") : NULL;
    tc.bind_dn = tps_cfg_str(cfg, "tokendb.bindDN");
    tc.bind_pw_file = tps_cfg_isset(cfg, "tokendb.bindPassword_file")
                          ? tps_cfg_str(cfg, "tokendb.bindPassword_file")
                          : NULL;
    tc.network_timeout_ms = lb->probe_ms;
    tc.op_timeout_ms = lb->probe_ms;
    tc.failback_s = 10;
    if (tps_ldap_target_new(&tc, "token DB", &p->target, e, sizeof(e)) != TPS_TDB_OK) {
        snprintf(err, errlen, "%s", e);
        return TPS_ECONFIG;
    }
    if (tps_ldap_conn_new(p->target, &p->conn) != TPS_TDB_OK)
        return TPS_ENOMEM;
    return tps_lb_add_check(lb, "tokendb", db_check, p);
}

/* lb.publicURL set: every URL a card or a client keeps must name it (tokendb-ha §4.3). */
struct url_walk {
    const char *pub;
    const struct tps_config *cfg;
    char *err;
    size_t errlen;
    bool bad;
};

static bool
check_public_url(void *arg, const char *key, const char *value)
{
    struct url_walk *w = arg;
    size_t kl = strlen(key), pl = strlen(w->pub);
    static const char sfx[] = ".issuerinfo.value";

    if (strcmp(key, "tps.phoneHome.operation") != 0 &&
        !(kl > sizeof(sfx) - 1 && strcmp(key + kl - (sizeof(sfx) - 1), sfx) == 0))
        return true;
    if (value[0] == '\0' || (strncmp(value, w->pub, pl) == 0 &&
                              (value[pl] == '/' || value[pl] == '\0')))
        return true;
    snprintf(w->err, w->errlen,
             "key '%s' = %s: does not name the balancer (lb.publicURL = %s); a card or client "
             "keeping it would depend on one instance",
             key, value, w->pub);
    w->bad = true;
    return false;
}

struct conn_walk {
    struct tps_lb *lb;
    const struct tps_config *cfg;
    enum tps_rc rc;
    char *err;
    size_t errlen;
};

static bool
add_conn_probe(void *arg, const char *child)
{
    struct conn_walk *w = arg;
    char key[CMN_CFG_MAX_KEY], why[200] = "";
    struct tcp_probe *t;
    const char *hp;

    snprintf(key, sizeof(key), "conn.%s.hostport", child);
    if (!tps_cfg_isset(w->cfg, key))
        return true;
    hp = tps_cfg_str(w->cfg, key);
    if (w->lb->ntcp == TPS_LB_MAX_CHECKS) {
        w->rc = TPS_ETOOBIG;
        snprintf(w->err, w->errlen, "more than %d connectors", TPS_LB_MAX_CHECKS);
        return false;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        w->rc = TPS_ENOMEM;
        return false;
    }
    w->lb->tcp[w->lb->ntcp++] = t;
    t->timeout_ms = w->lb->probe_ms;
    if (cmn_cfg_hostlist_parse(hp, &t->hosts, why, sizeof(why)) != CMN_OK) {
        w->rc = TPS_ECONFIG;
        snprintf(w->err, w->errlen, "key '%s': %s", key, why);
        return false;
    }
    /* conn.<id>.SSLOn (default true) with a client certificate: probe with a handshake */
    snprintf(key, sizeof(key), "conn.%s.SSLOn", child);
    if (tps_cfg_bool(w->cfg, key)) {
        char kc[CMN_CFG_MAX_KEY], kk[CMN_CFG_MAX_KEY], ka[CMN_CFG_MAX_KEY];
        snprintf(kc, sizeof(kc), "conn.%s.clientCertFile", child);
        snprintf(kk, sizeof(kk), "conn.%s.clientKeyFile", child);
        snprintf(ka, sizeof(ka), "conn.%s.caBundle", child);
        if (tps_cfg_isset(w->cfg, kc) && tps_cfg_isset(w->cfg, kk)) {
            ERR_clear_error();
            t->tls = SSL_CTX_new(TLS_client_method());
            if (t->tls == NULL ||
                SSL_CTX_use_certificate_chain_file(t->tls, tps_cfg_str(w->cfg, kc)) != 1 ||
                SSL_CTX_use_PrivateKey_file(t->tls, tps_cfg_str(w->cfg, kk), SSL_FILETYPE_PEM) !=
                    1 ||
                (tps_cfg_isset(w->cfg, ka)
                     ? SSL_CTX_load_verify_locations(t->tls, tps_cfg_str(w->cfg, ka), NULL)
                     : SSL_CTX_set_default_verify_paths(t->tls)) != 1) {
                char e[160];
                ERR_error_string_n(ERR_get_error(), e, sizeof(e));
                ERR_clear_error();
                w->rc = TPS_ECONFIG;
                snprintf(w->err, w->errlen, "key '%s'/'%s': %s", kc, kk, e);
                return false;
            }
            SSL_CTX_set_verify(t->tls, SSL_VERIFY_PEER, NULL);
        }
    }
    w->rc = tps_lb_add_check(w->lb, child, tcp_check, t);
    return w->rc == TPS_OK;
}

enum tps_rc
tps_lb_new_from_config(const struct tps_config *cfg, struct tps_lb **out, char *err,
                       size_t errlen)
{
    struct tps_lb_conf c;
    struct tps_lb *lb = NULL;
    struct conn_walk w;
    enum tps_rc rc;

    memset(&c, 0, sizeof(c));
    c.agent_address = tps_cfg_str(cfg, "lb.agentAddress");
    c.agent_port = tps_cfg_isset(cfg, "lb.agentPort") ? (unsigned)tps_cfg_uint(cfg, "lb.agentPort")
                                                      : 0;
    c.status_port = tps_cfg_isset(cfg, "lb.statusPort")
                        ? (unsigned)tps_cfg_uint(cfg, "lb.statusPort")
                        : 0;
    c.trusted = tps_cfg_str(cfg, "lb.trustedProxies");
    c.max_sessions = tps_config_settings(cfg)->max_sessions;
    c.health_interval_ms = (unsigned)tps_cfg_uint(cfg, "lb.healthInterval");
    c.probe_timeout_ms = (unsigned)tps_cfg_uint(cfg, "lb.probeTimeout");
    c.drain_grace_ms = (unsigned)tps_cfg_uint(cfg, "lb.drainGrace");
    c.drain_timeout_ms = (unsigned)tps_cfg_uint(cfg, "lb.drainTimeout");
    c.instance_id = tps_cfg_str(cfg, "tps.instanceId");
    rc = tps_lb_new(&c, &lb, err, errlen);
    if (rc != TPS_OK)
        return rc;
    if (tps_cfg_str(cfg, "lb.publicURL")[0] != '\0') {
        struct url_walk u = {.pub = tps_cfg_str(cfg, "lb.publicURL"),
                             .cfg = cfg,
                             .err = err,
                             .errlen = errlen,
                             .bad = false};
        cmn_cfg_each(tps_config_cfg(cfg), "", check_public_url, &u);
        if (u.bad) {
            rc = TPS_ECONFIG;
            goto fail;
        }
    }
    if (tps_cfg_isset(cfg, "tokendb.hostport")) {
        rc = add_db_probe(lb, cfg, err, errlen);
        if (rc == TPS_OK)
            rc = tps_inst_new(cfg, lb->probe_ms, &lb->inst, err, errlen);
        if (rc != TPS_OK)
            goto fail;
    }
    w.lb = lb;
    w.cfg = cfg;
    w.rc = TPS_OK;
    w.err = err;
    w.errlen = errlen;
    cmn_cfg_children(tps_config_cfg(cfg), "conn.", add_conn_probe, &w);
    rc = w.rc;
    if (rc != TPS_OK)
        goto fail;
    *out = lb;
    return TPS_OK;
fail:
    tps_lb_free(lb);
    return rc;
}

/* ---- evaluation and threads ---- */

void
tps_lb_evaluate(struct tps_lb *lb)
{
    bool up[TPS_LB_MAX_CHECKS] = {false};
    char why[TPS_LB_REASON_MAX] = "", one[TPS_LB_REASON_MAX];
    bool ready = true;

    for (size_t i = 0; i < lb->nchecks; i++) {
        one[0] = '\0';
        up[i] = lb->checks[i].fn(lb->checks[i].arg, one, sizeof(one));
        if (!up[i] && ready) {
            ready = false;
            snprintf(why, sizeof(why), "%.63s: %.180s", lb->checks[i].name, one);
        }
    }
    tps_inst_tick(lb->inst); /* every lb.instanceRefresh s; keeps its verdict on LDAP errors */
    pthread_mutex_lock(&lb->lock);
    for (size_t i = 0; i < lb->nchecks; i++)
        lb->checks[i].up = up[i];
    if (ready != lb->ready || !lb->evaluated) {
        if (ready)
            CMN_LOG(CMN_LOG_NOTICE, "lb.ready", NULL, "checks=%zu", lb->nchecks);
        else
            CMN_LOG(CMN_LOG_WARN, "lb.not_ready", NULL, "why=\"%s\"", why);
    }
    lb->ready = ready;
    lb->evaluated = true;
    snprintf(lb->reason, sizeof(lb->reason), "%s", ready ? "" : why);
    pthread_mutex_unlock(&lb->lock);
}

bool
tps_lb_ready(struct tps_lb *lb, char *why, size_t whylen)
{
    bool r;

    pthread_mutex_lock(&lb->lock);
    r = lb->ready && lb->evaluated;
    if (why != NULL)
        snprintf(why, whylen, "%s", r ? "" : lb->reason);
    pthread_mutex_unlock(&lb->lock);
    return r;
}

/* Sleeps ms unless the wake pipe is written (stop). True when woken. */
static bool
wait_wake(struct tps_lb *lb, int ms)
{
    struct pollfd pf = {.fd = lb->wake[0], .events = POLLIN};
    int g = poll(&pf, 1, ms);
    return g > 0;
}

static void *
health_main(void *arg)
{
    struct tps_lb *lb = arg;

    while (!wait_wake(lb, (int)lb->interval_ms))
        tps_lb_evaluate(lb);
    return NULL;
}

void
tps_lb_agent_text(struct tps_lb *lb, char *out, size_t cap)
{
    char why[TPS_LB_REASON_MAX];
    bool ready;

    pthread_mutex_lock(&lb->lock);
    ready = lb->ready && lb->evaluated;
    snprintf(why, sizeof(why), "%s", lb->reason);
    pthread_mutex_unlock(&lb->lock);
    tps_lb_agent_line(atomic_load(&lb->draining), tps_inst_mismatch(lb->inst, NULL, 0), ready,
                      why, atomic_load(&lb->live), lb->max_sessions, out, cap);
}

/* Sends everything within 1 s per write; false on error or timeout. */
static bool
send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        ssize_t w;
        if (poll(&pf, 1, 1000) <= 0)
            return false;
        w = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return false;
        }
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads a request head (up to 4 KB, 500 ms) from a status-port connection and answers
 * GET/HEAD /health or /metrics; anything else 404/405. Short deadline: the thread also answers
 * the agent, which a slow client must not hold up for long. */
static void
serve_status(struct tps_lb *lb, int fd, bool from_loopback)
{
    char req[4096], method[8] = "", path[64] = "", hdr[200];
    size_t n = 0;
    struct cmn_buf body;
    int status = 200;
    const char *ctype = "text/plain";

    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ssize_t r;
        if (poll(&pf, 1, 500) <= 0)
            return;
        r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
            break;
        if (n == sizeof(req) - 1)
            return;
    }
    {
        size_t ml = strcspn(req, " "), pl;
        if (ml == 0 || ml >= sizeof(method) || req[ml] != ' ')
            return;
        memcpy(method, req, ml);
        pl = strcspn(req + ml + 1, " ?\r\n");
        if (pl == 0 || pl >= sizeof(path))
            return;
        memcpy(path, req + ml + 1, pl);
    }
    cmn_buf_init(&body, 1 << 20);
    if (strcmp(path, "/drain") == 0) {
        /* The operator's drain command: the same path as SIGTERM (the main thread drains and
         * exits), so it is refused from anywhere but the host itself. */
        if (strcmp(method, "POST") != 0) {
            status = 405;
            (void)cmn_buf_puts(&body, "use POST\n");
        } else if (!from_loopback) {
            status = 403;
            (void)cmn_buf_puts(&body, "drain is accepted from loopback only\n");
        } else {
            tps_lb_drain(lb, "admin command");
            (void)cmn_buf_puts(&body, "draining\n");
            if (lb->on_drain != NULL)
                lb->on_drain(lb->on_drain_arg);
        }
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = 405;
        (void)cmn_buf_puts(&body, "method not allowed\n");
    } else if (strcmp(path, "/health") == 0) {
        char why[TPS_LB_REASON_MAX], cfg[TPS_LB_REASON_MAX];
        bool ok = tps_lb_ready(lb, why, sizeof(why));
        bool mismatch = tps_inst_mismatch(lb->inst, cfg, sizeof(cfg));
        /* Draining stays 200: the agent's "drain" is HAProxy's signal (state DRAIN, running
         * sessions untouched); a 503 here would turn a planned drain into a DOWN alarm. The
         * configuration mismatch is such a drain too. */
        status = ok ? 200 : 503;
        if (!ok)
            (void)cmn_buf_printf(&body, "not ready: %s\n", why);
        else if (tps_lb_draining(lb))
            (void)cmn_buf_puts(&body, "ok draining\n");
        else if (mismatch)
            (void)cmn_buf_printf(&body, "ok draining (%s)\n", cfg);
        else
            (void)cmn_buf_puts(&body, "ok\n");
    } else if (strcmp(path, "/metrics") == 0) {
        ctype = "text/plain; version=0.0.4";
        if (tps_lb_metrics(lb, &body) != TPS_OK) {
            status = 500;
            cmn_buf_reset(&body);
        }
    } else {
        status = 404;
        (void)cmn_buf_puts(&body, "not found\n");
    }
    snprintf(hdr, sizeof(hdr),
             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             status,
             status == 200   ? "OK"
             : status == 503 ? "Service Unavailable"
             : status == 404 ? "Not Found"
             : status == 405 ? "Method Not Allowed"
             : status == 403 ? "Forbidden"
                             : "Internal Server Error",
             ctype, body.len);
    if (send_all(fd, hdr, strlen(hdr)) && strcmp(method, "HEAD") != 0)
        (void)send_all(fd, body.data, body.len);
    cmn_buf_cleanup(&body);
}

static void *
agent_main(void *arg)
{
    struct tps_lb *lb = arg;
    struct pollfd pf[3];
    struct tps_lb_net loopback[2];
    size_t nl;
    char why[64];

    (void)tps_lb_nets_parse("127.0.0.0/8 ::1", loopback, 2, &nl, why, sizeof(why));

    for (;;) {
        char line[160];
        int fd;
        nfds_t k = 1;

        pf[0] = (struct pollfd){.fd = lb->wake[0], .events = POLLIN};
        if (lb->agent_fd >= 0)
            pf[k++] = (struct pollfd){.fd = lb->agent_fd, .events = POLLIN};
        if (lb->status_fd >= 0)
            pf[k++] = (struct pollfd){.fd = lb->status_fd, .events = POLLIN};
        if (poll(pf, k, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[0].revents != 0)
            break;
        for (nfds_t i = 1; i < k; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            struct sockaddr_storage peer;
            socklen_t pl = sizeof(peer);
            memset(&peer, 0, sizeof(peer));
            fd = accept4(pf[i].fd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE)
                    poll(NULL, 0, 100);
                continue;
            }
            if (pf[i].fd == lb->status_fd) {
                serve_status(lb, fd, tps_lb_nets_match(loopback, 2, (struct sockaddr *)&peer));
            } else {
                tps_lb_agent_text(lb, line, sizeof(line));
                (void)send_all(fd, line, strlen(line));
            }
            close(fd);
        }
    }
    return NULL;
}

static enum tps_rc
listen_port(struct tps_lb *lb, unsigned want, const char *key, int *fd_out, unsigned *bound,
            char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    char ps[8];
    int fd, one = 1, g;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(ps, sizeof(ps), "%u", want);
    g = getaddrinfo(lb->agent_addr, ps, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "key 'lb.agentAddress' = %s: %s", lb->agent_addr, gai_strerror(g));
        return TPS_ECONFIG;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, errlen, "key '%s': cannot listen on %s:%s: %s", key, lb->agent_addr, ps,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return TPS_EIO;
    }
    freeaddrinfo(ai);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return TPS_OK;
}

enum tps_rc
tps_lb_start(struct tps_lb *lb, char *err, size_t errlen)
{
    enum tps_rc rc;

    tps_lb_evaluate(lb);
    if (pthread_create(&lb->health_thr, NULL, health_main, lb) != 0) {
        snprintf(err, errlen, "cannot start the health thread: %s", strerror(errno));
        return TPS_EIO;
    }
    lb->health_started = true;
    if (lb->agent_port_cfg != 0 || lb->agent_ephemeral) {
        rc = listen_port(lb, lb->agent_ephemeral ? 0u : lb->agent_port_cfg, "lb.agentPort",
                         &lb->agent_fd, &lb->agent_port, err, errlen);
        if (rc != TPS_OK)
            return rc;
    }
    if (lb->status_port_cfg != 0 || lb->agent_ephemeral) {
        rc = listen_port(lb, lb->agent_ephemeral ? 0u : lb->status_port_cfg, "lb.statusPort",
                         &lb->status_fd, &lb->status_port, err, errlen);
        if (rc != TPS_OK)
            return rc;
    }
    if (lb->agent_fd >= 0 || lb->status_fd >= 0) {
        if (pthread_create(&lb->agent_thr, NULL, agent_main, lb) != 0) {
            snprintf(err, errlen, "cannot start the agent thread: %s", strerror(errno));
            return TPS_EIO;
        }
        lb->agent_started = true;
    }
    CMN_LOG(CMN_LOG_NOTICE, "lb.start", NULL, "agent_port=%u status_port=%u checks=%zu lists=%zu trusted=%zu",
            lb->agent_port, lb->status_port, lb->nchecks, lb->nlists, lb->nnets);
    return TPS_OK;
}

unsigned
tps_lb_agent_port(const struct tps_lb *lb)
{
    return lb->agent_port;
}

unsigned
tps_lb_status_port(const struct tps_lb *lb)
{
    return lb->status_port;
}

void
tps_lb_free(struct tps_lb *lb)
{
    if (lb == NULL)
        return;
    if (lb->wake[1] >= 0 && write(lb->wake[1], "x", 1) < 0) {
        /* non-blocking, written once: cannot be full */
    }
    if (lb->health_started)
        pthread_join(lb->health_thr, NULL);
    if (lb->agent_started)
        pthread_join(lb->agent_thr, NULL);
    if (lb->agent_fd >= 0)
        close(lb->agent_fd);
    if (lb->status_fd >= 0)
        close(lb->status_fd);
    for (int i = 0; i < 2; i++)
        if (lb->wake[i] >= 0)
            close(lb->wake[i]);
    tps_inst_free(lb->inst); /* the health thread that used it has ended */
    if (lb->dbp != NULL) {
        tps_ldap_conn_free(lb->dbp->conn);
        tps_ldap_target_free(lb->dbp->target);
        free(lb->dbp);
    }
    for (size_t i = 0; i < lb->ntcp; i++) {
        SSL_CTX_free(lb->tcp[i]->tls);
        free(lb->tcp[i]);
    }
    pthread_mutex_destroy(&lb->lock);
    free(lb);
}

/* ---- drain ---- */

void
tps_lb_drain(struct tps_lb *lb, const char *why)
{
    bool was = atomic_exchange(&lb->draining, true);

    if (!was)
        CMN_LOG(CMN_LOG_NOTICE, "lb.drain", NULL, "why=\"%s\" live=%u", why ? why : "",
                atomic_load(&lb->live));
}

void
tps_lb_on_drain(struct tps_lb *lb, void (*fn)(void *arg), void *arg)
{
    lb->on_drain = fn;
    lb->on_drain_arg = arg;
}

bool
tps_lb_draining(const struct tps_lb *lb)
{
    return atomic_load(&((struct tps_lb *)(uintptr_t)lb)->draining);
}

unsigned
tps_lb_drain_grace_ms(const struct tps_lb *lb)
{
    return lb->grace_ms;
}

unsigned
tps_lb_drain_timeout_ms(const struct tps_lb *lb)
{
    return lb->drain_ms;
}

bool
tps_lb_trusted(const struct tps_lb *lb, const struct sockaddr *peer)
{
    return tps_lb_nets_match(lb->nets, lb->nnets, peer);
}

/* ---- counters ---- */

void
tps_lb_session_begin(struct tps_lb *lb)
{
    atomic_fetch_add(&lb->live, 1);
}

void
tps_lb_session_end(struct tps_lb *lb, int op, bool ok)
{
    atomic_fetch_sub(&lb->live, 1);
    if (op < 0)
        return; /* not a TPS operation (phone home, health) */
    if (op >= NOPS)
        op = 0;
    atomic_fetch_add(&lb->sessions_total, 1);
    atomic_fetch_add(&lb->ops[op][ok ? 1 : 0], 1);
}

unsigned
tps_lb_live(const struct tps_lb *lb)
{
    return atomic_load(&((struct tps_lb *)(uintptr_t)lb)->live);
}

void
tps_lb_refused(struct tps_lb *lb, const char *why)
{
    for (int i = 0; i < REFUSE_COUNT; i++) {
        if (why != NULL && strcmp(why, refuse_names[i]) == 0) {
            atomic_fetch_add(&lb->refused[i], 1);
            return;
        }
    }
    atomic_fetch_add(&lb->refused[REFUSE_BUSY], 1);
}

void
tps_lb_observe_db(struct tps_lb *lb, uint64_t us)
{
    size_t b = 0;

    while (b < DB_NB && (double)us / 1e6 > db_bounds[b])
        b++;
    atomic_fetch_add(&lb->db_hist[b], 1);
    atomic_fetch_add(&lb->db_count, 1);
    atomic_fetch_add(&lb->db_sum_us, us);
}

/* ---- /metrics ---- */

/* A label value with \, " and newline escaped (exposition format 0.0.4). */
static void
esc_label(const char *s, char *out, size_t cap)
{
    size_t k = 0;

    for (; *s != '\0' && k + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[k++] = '\\';
            out[k++] = *s;
        } else if (*s == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else {
            out[k++] = *s;
        }
    }
    out[k] = '\0';
}

#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (cmn_buf_printf(out, __VA_ARGS__) != CMN_OK)                                            \
            return TPS_ETOOBIG;                                                                    \
    } while (0)

static enum tps_rc
metrics_lists(struct tps_lb *lb, struct cmn_buf *out, const char *inst)
{
    PUT("# HELP tpsgw_backend_calls_total Calls made through a connector's failover list.\n"
        "# TYPE tpsgw_backend_calls_total counter\n");
    for (size_t i = 0; i < lb->nlists; i++) {
        struct fo_list_stats s;
        char n[140];
        fo_list_stats(lb->lists[i].l, &s);
        esc_label(lb->lists[i].name, n, sizeof(n));
        PUT("tpsgw_backend_calls_total{instance=\"%s\",list=\"%s\"} %llu\n", inst, n,
            (unsigned long long)s.calls);
        PUT("tpsgw_backend_failovers_total{instance=\"%s\",list=\"%s\"} %llu\n", inst, n,
            (unsigned long long)s.failovers);
        PUT("tpsgw_backend_resends_total{instance=\"%s\",list=\"%s\"} %llu\n", inst, n,
            (unsigned long long)s.resends);
    }
    PUT("# HELP tpsgw_backend_requests_total Attempts made to one clone.\n"
        "# TYPE tpsgw_backend_requests_total counter\n");
    for (size_t i = 0; i < lb->nlists; i++) {
        char n[140];
        esc_label(lb->lists[i].name, n, sizeof(n));
        for (size_t e = 0; e < fo_list_count(lb->lists[i].l); e++) {
            struct fo_ep_stats s;
            char ep[300];
            if (fo_list_ep_stats(lb->lists[i].l, e, &s) != FO_OK)
                continue;
            esc_label(s.endpoint, ep, sizeof(ep));
            PUT("tpsgw_backend_requests_total{instance=\"%s\",list=\"%s\",clone=\"%s\"} %llu\n",
                inst, n, ep, (unsigned long long)s.requests);
            PUT("tpsgw_backend_successes_total{instance=\"%s\",list=\"%s\",clone=\"%s\"} %llu\n",
                inst, n, ep, (unsigned long long)s.successes);
            for (int f = 1; f < FO_FAIL_COUNT; f++)
                if (s.failures[f] != 0)
                    PUT("tpsgw_backend_failures_total{instance=\"%s\",list=\"%s\",clone=\"%s\","
                        "class=\"%s\"} %llu\n",
                        inst, n, ep, fo_fail_name((enum fo_fail)f),
                        (unsigned long long)s.failures[f]);
            PUT("tpsgw_backend_breaker_opens_total{instance=\"%s\",list=\"%s\",clone=\"%s\"} "
                "%llu\n",
                inst, n, ep, (unsigned long long)s.breaker_opens);
            PUT("tpsgw_backend_breaker_state{instance=\"%s\",list=\"%s\",clone=\"%s\"} %d\n",
                inst, n, ep,
                s.breaker == FO_BREAKER_OPEN        ? 2
                : s.breaker == FO_BREAKER_HALF_OPEN ? 1
                                                    : 0);
            PUT("tpsgw_backend_inflight{instance=\"%s\",list=\"%s\",clone=\"%s\"} %llu\n", inst,
                n, ep, (unsigned long long)s.inflight);
        }
    }
    return TPS_OK;
}

enum tps_rc
tps_lb_metrics(struct tps_lb *lb, struct cmn_buf *out)
{
    char inst[140];
    bool ready = tps_lb_ready(lb, NULL, 0);
    bool up[TPS_LB_MAX_CHECKS] = {false};
    uint64_t cum = 0, sum;

    esc_label(lb->instance, inst, sizeof(inst));
    pthread_mutex_lock(&lb->lock);
    for (size_t i = 0; i < lb->nchecks; i++)
        up[i] = lb->checks[i].up;
    pthread_mutex_unlock(&lb->lock);

    PUT("# HELP tpsgw_up The gateway answers.\n# TYPE tpsgw_up gauge\n"
        "tpsgw_up{instance=\"%s\"} 1\n",
        inst);
    PUT("# HELP tpsgw_ready 1 when /health answers 200.\n# TYPE tpsgw_ready gauge\n"
        "tpsgw_ready{instance=\"%s\"} %d\n",
        inst, ready ? 1 : 0);
    PUT("# HELP tpsgw_draining 1 while draining.\n# TYPE tpsgw_draining gauge\n"
        "tpsgw_draining{instance=\"%s\"} %d\n",
        inst, tps_lb_draining(lb) ? 1 : 0);
    PUT("# HELP tpsgw_config_mismatch 1 while a live peer has a newer configuration digest "
        "(the agent says drain).\n# TYPE tpsgw_config_mismatch gauge\n"
        "tpsgw_config_mismatch{instance=\"%s\"} %d\n",
        inst, tps_inst_mismatch(lb->inst, NULL, 0) ? 1 : 0);
    PUT("# HELP tpsgw_check_up Last result of each readiness check.\n"
        "# TYPE tpsgw_check_up gauge\n");
    for (size_t i = 0; i < lb->nchecks; i++) {
        char n[140];
        esc_label(lb->checks[i].name, n, sizeof(n));
        PUT("tpsgw_check_up{instance=\"%s\",check=\"%s\"} %d\n", inst, n, up[i] ? 1 : 0);
    }
    PUT("# HELP tpsgw_sessions_live Sessions being served.\n# TYPE tpsgw_sessions_live gauge\n"
        "tpsgw_sessions_live{instance=\"%s\"} %u\n",
        inst, tps_lb_live(lb));
    PUT("# HELP tpsgw_sessions_max tps.maxSessions.\n# TYPE tpsgw_sessions_max gauge\n"
        "tpsgw_sessions_max{instance=\"%s\"} %u\n",
        inst, lb->max_sessions);
    PUT("# HELP tpsgw_sessions_total TPS sessions started.\n# TYPE tpsgw_sessions_total counter\n"
        "tpsgw_sessions_total{instance=\"%s\"} %llu\n",
        inst, (unsigned long long)atomic_load(&lb->sessions_total));
    PUT("# HELP tpsgw_operations_total Finished TPS operations by result.\n"
        "# TYPE tpsgw_operations_total counter\n");
    for (int op = 0; op < NOPS; op++)
        for (int ok = 0; ok < 2; ok++)
            PUT("tpsgw_operations_total{instance=\"%s\",op=\"%s\",result=\"%s\"} %llu\n", inst,
                op == 0 ? "unknown" : cmn_tps_op_name(op), ok ? "success" : "failure",
                (unsigned long long)atomic_load(&lb->ops[op][ok]));
    PUT("# HELP tpsgw_refused_total Connections refused before a session.\n"
        "# TYPE tpsgw_refused_total counter\n");
    for (int i = 0; i < REFUSE_COUNT; i++)
        PUT("tpsgw_refused_total{instance=\"%s\",reason=\"%s\"} %llu\n", inst, refuse_names[i],
            (unsigned long long)atomic_load(&lb->refused[i]));
    PUT("# HELP tpsgw_tokendb_seconds Token DB round trips (readiness probe reads).\n"
        "# TYPE tpsgw_tokendb_seconds histogram\n");
    for (size_t b = 0; b < DB_NB; b++) {
        cum += atomic_load(&lb->db_hist[b]);
        PUT("tpsgw_tokendb_seconds_bucket{instance=\"%s\",le=\"%g\"} %llu\n", inst, db_bounds[b],
            (unsigned long long)cum);
    }
    cum += atomic_load(&lb->db_hist[DB_NB]);
    sum = atomic_load(&lb->db_sum_us);
    PUT("tpsgw_tokendb_seconds_bucket{instance=\"%s\",le=\"+Inf\"} %llu\n", inst,
        (unsigned long long)cum);
    PUT("tpsgw_tokendb_seconds_sum{instance=\"%s\"} %llu.%06llu\n", inst,
        (unsigned long long)(sum / 1000000u), (unsigned long long)(sum % 1000000u));
    PUT("tpsgw_tokendb_seconds_count{instance=\"%s\"} %llu\n", inst,
        (unsigned long long)atomic_load(&lb->db_count));
    return metrics_lists(lb, out, inst);
}

/* ---- public URL ---- */

bool
tps_lb_issuer_needs_rewrite(const uint8_t *card, size_t n, const char *want)
{
    size_t len = 0, wl;

    if (want == NULL || want[0] == '\0')
        return false;
    while (len < n && card[len] != 0)
        len++;
    wl = strlen(want);
    return !(len == wl && memcmp(card, want, wl) == 0);
}
