/* tests/sim/server.c - pki-sim's server: listeners, TLS client-certificate checks (backends
 * §7), an acceptor feeding a bounded worker pool, per-instance fault injection, a request log
 * line per request, and the admin endpoint on its own loopback port. */
#include "tests/sim/server.h"

#include <arpa/inet.h>
#include <errno.h>
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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/http.h"
#include "common/log.h"
#include "common/pct.h"

#define MAX_AGENTS 16
#define MAX_OPS 32
#define QUEUE_MAX 4096

static const char *const fault_words[] = {"none",  "delay", "hang-accept", "hang-request",
                                          "close", "reset", "http",        "garbage",
                                          "status", NULL};
enum fault_mode {
    F_NONE = 0,
    F_DELAY = 1,
    F_HANG_ACCEPT = 2,
    F_HANG_REQUEST = 3,
    F_CLOSE = 4,
    F_RESET = 5,
    F_HTTP = 6,
    F_GARBAGE = 7,
    F_STATUS = 8, /* application status `code` (TKS/KRA status=N, CA XML Status N) */
};
static const char *const level_words[] = {"error", "warn", "notice", "info", "debug", NULL};

const struct cmn_cfg_key sim_common_keys[] = {
    {.name = "pkisim.instanceId", .type = CFG_STR, .defstr = "",
     .doc = "name of this clone in logs and records (default: the role)"},
    {.name = "service.machineName", .type = CFG_STR, .defstr = "127.0.0.1",
     .doc = "address the listeners bind to"},
    {.name = "service.securePort", .type = CFG_UINT, .min = 0, .max = 65535, .def = 0,
     .doc = "HTTPS port with client-certificate authentication (0: none)"},
    {.name = "service.unsecurePort", .type = CFG_UINT, .min = 0, .max = 65535, .def = 0,
     .doc = "plain HTTP port, for tests only (needs pkisim.plainHttp.userid)"},
    {.name = "pkisim.plainHttp.userid", .type = CFG_STR,
     .doc = "agent the plain-HTTP caller is taken for"},
    {.name = "pkisim.adminPort", .type = CFG_UINT, .min = 0, .max = 65535, .def = 0,
     .doc = "loopback plain-HTTP admin port: /sim/fault, /sim/stats (0: none)"},
    {.name = "pkisim.tls.certFile", .type = CFG_PATH, .doc = "server certificate (PEM)"},
    {.name = "pkisim.tls.keyFile", .type = CFG_PATH, .doc = "server key (PEM)"},
    {.name = "pkisim.tls.caBundle", .type = CFG_PATH,
     .doc = "CAs that issue client certificates (PEM)"},
    {.name = "pkisim.agent.*.userid", .type = CFG_STR, .doc = "user id of an agent"},
    {.name = "pkisim.agent.*.certFile", .type = CFG_PATH,
     .doc = "the agent's certificate (PEM); a caller must present exactly this certificate"},
    {.name = "pkisim.agent.*.groups", .type = CFG_STR, .defstr = "",
     .doc = "comma-separated groups of the agent"},
    {.name = "pkisim.workers", .type = CFG_UINT, .min = 1, .max = 256, .def = 8},
    {.name = "pkisim.queue", .type = CFG_UINT, .min = 1, .max = QUEUE_MAX, .def = 64},
    {.name = "pkisim.readTimeoutMs", .type = CFG_UINT, .min = 10, .max = 600000, .def = 30000},
    {.name = "pkisim.requestLog", .type = CFG_PATH,
     .doc = "file getting one line per processed request (also on stdout when absent)"},
    {.name = "pkisim.log", .type = CFG_STR, .defstr = "-", .doc = "diagnostic log, - = stderr"},
    {.name = "pkisim.logLevel", .type = CFG_ENUM, .words = level_words, .defstr = "info"},
    {.name = "pkisim.fault.mode", .type = CFG_ENUM, .words = fault_words, .defstr = "none",
     .doc = "fault injected at start"},
    {.name = "pkisim.fault.ms", .type = CFG_UINT, .min = 0, .max = 3600000, .def = 0,
     .doc = "delay, or longest hang (0: 10 minutes)"},
    {.name = "pkisim.fault.code", .type = CFG_UINT, .min = 0, .max = 599, .def = 500,
     .doc = "HTTP status (mode http) or application status (mode status)"},
    {.name = "pkisim.fault.count", .type = CFG_UINT, .min = 0, .max = 1000000, .def = 0,
     .doc = "requests the fault applies to (0: all)"},
    {.name = "pkisim.fault.path", .type = CFG_STR, .defstr = "",
     .doc = "only requests whose path starts with this"},
    {0},
};

struct fault {
    enum fault_mode mode;
    unsigned ms, code;
    unsigned count; /* 0: unlimited */
    char path[128];
    unsigned gen; /* bumped on every change: hanging workers notice */
};

struct opcount {
    char op[32];
    unsigned long n;
};

struct sim_srv {
    struct cmn_cfg *cfg;
    enum sim_role role;
    char clone[64];
    sim_handler_fn *fn;
    void *ctx;
    SSL_CTX *ssl;
    int lfd_tls, lfd_plain, lfd_admin;
    struct sim_user agents[MAX_AGENTS];
    size_t nagents;
    struct sim_user plain_user;
    int timeout_ms;
    unsigned nworkers;
    pthread_t *workers;
    pthread_t acceptor, admin;
    bool started;

    pthread_mutex_t qlock; /* guards q*, and nothing else */
    pthread_cond_t qcond;
    int qfd[QUEUE_MAX];
    bool qtls[QUEUE_MAX];
    size_t qhead, qlen, qcap;

    pthread_mutex_t flock; /* guards fault */
    struct fault fault;

    pthread_mutex_t slock; /* guards ops, nops and the request log writes */
    struct opcount ops[MAX_OPS];
    size_t nops;
    FILE *reqlog;
    atomic_ulong requests, tls_rejected, unauthenticated, faults_applied, dropped;
    atomic_bool stop;
};

/* ---- setup ---- */

static int
listen_on(const char *addr, unsigned port, struct cmn_buf *errs)
{
    struct sockaddr_in sa;
    int fd, one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        (void)cmn_buf_printf(errs, "service.machineName '%s': not an IPv4 address\n", addr);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
        (void)cmn_buf_printf(errs, "cannot listen on %s:%u: %s\n", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool
cert_fp_file(const char *path, uint8_t fp[32])
{
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    unsigned n = 0;
    bool ok;

    if (f != NULL)
        fclose(f);
    ok = x != NULL && X509_digest(x, EVP_sha256(), fp, &n) == 1 && n == 32;
    X509_free(x);
    return ok;
}

struct agent_walk {
    struct sim_srv *s;
    struct cmn_buf *errs;
    bool bad;
};

static bool
add_agent(void *arg, const char *child)
{
    struct agent_walk *w = arg;
    struct sim_srv *s = w->s;
    char k[160];
    const char *uid, *cert, *groups;
    struct sim_user *u;

    if (s->nagents == MAX_AGENTS) {
        (void)cmn_buf_printf(w->errs, "pkisim.agent: more than %d agents\n", MAX_AGENTS);
        w->bad = true;
        return false;
    }
    u = &s->agents[s->nagents];
    snprintf(k, sizeof(k), "pkisim.agent.%s.userid", child);
    uid = cmn_cfg_str(s->cfg, k);
    snprintf(k, sizeof(k), "pkisim.agent.%s.certFile", child);
    cert = cmn_cfg_str(s->cfg, k);
    snprintf(k, sizeof(k), "pkisim.agent.%s.groups", child);
    groups = cmn_cfg_str(s->cfg, k);
    if (uid == NULL || cert == NULL) {
        (void)cmn_buf_printf(w->errs, "pkisim.agent.%s: needs userid and certFile\n", child);
        w->bad = true;
        return true;
    }
    snprintf(u->id, sizeof(u->id), "%s", uid);
    snprintf(u->groups, sizeof(u->groups), "%s", groups != NULL ? groups : "");
    if (!cert_fp_file(cert, u->fp)) {
        (void)cmn_buf_printf(w->errs, "pkisim.agent.%s.certFile: cannot read '%s'\n", child,
                             cert);
        w->bad = true;
        return true;
    }
    s->nagents++;
    return true;
}

static const char *
role_name(enum sim_role r)
{
    return r == SIM_ROLE_CA ? "ca" : r == SIM_ROLE_KRA ? "kra" : "tks";
}

static void
fault_from_cfg(struct sim_srv *s)
{
    const char *p = cmn_cfg_str(s->cfg, "pkisim.fault.path");

    s->fault.mode = (enum fault_mode)cmn_cfg_enum(s->cfg, "pkisim.fault.mode");
    s->fault.ms = (unsigned)cmn_cfg_uint(s->cfg, "pkisim.fault.ms");
    s->fault.code = (unsigned)cmn_cfg_uint(s->cfg, "pkisim.fault.code");
    s->fault.count = (unsigned)cmn_cfg_uint(s->cfg, "pkisim.fault.count");
    snprintf(s->fault.path, sizeof(s->fault.path), "%s", p != NULL ? p : "");
}

static enum cmn_rc
tls_setup(struct sim_srv *s, struct cmn_buf *errs)
{
    const char *cert = cmn_cfg_str(s->cfg, "pkisim.tls.certFile");
    const char *key = cmn_cfg_str(s->cfg, "pkisim.tls.keyFile");
    const char *ca = cmn_cfg_str(s->cfg, "pkisim.tls.caBundle");

    if (cert == NULL || key == NULL || ca == NULL) {
        (void)cmn_buf_printf(errs, "service.securePort needs pkisim.tls.certFile, "
                                   "pkisim.tls.keyFile and pkisim.tls.caBundle\n");
        return CMN_ECONFIG;
    }
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (s->ssl == NULL)
        return CMN_ECRYPTO;
    (void)SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(s->ssl, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ssl, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        (void)cmn_buf_printf(errs, "pkisim.tls: cannot use certificate '%s' with key '%s'\n",
                             cert, key);
        return CMN_ECONFIG;
    }
    if (SSL_CTX_load_verify_locations(s->ssl, ca, NULL) != 1) {
        (void)cmn_buf_printf(errs, "pkisim.tls.caBundle: cannot load '%s'\n", ca);
        return CMN_ECONFIG;
    }
    SSL_CTX_set_client_CA_list(s->ssl, SSL_load_client_CA_file(ca));
    /* §7 (1): a client certificate is required; the handshake fails without one. */
    SSL_CTX_set_verify(s->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Clients resume sessions (libcurl does): with peer verification OpenSSL refuses a
     * resumed handshake unless the sessions carry a context id. */
    (void)SSL_CTX_set_session_id_context(s->ssl, (const unsigned char *)"pki-sim", 7);
    ERR_clear_error();
    return CMN_OK;
}

enum cmn_rc
sim_srv_new(const struct cmn_cfg *cfg, enum sim_role role, sim_handler_fn *fn, void *ctx,
            bool bind, struct cmn_buf *errs, struct sim_srv **out)
{
    struct sim_srv *s = calloc(1, sizeof(*s));
    const char *addr, *id, *plain_uid, *logpath;
    unsigned sport, pport, aport;
    struct agent_walk w;
    enum cmn_rc rc = CMN_ECONFIG;

    *out = NULL;
    if (s == NULL)
        return CMN_ENOMEM;
    s->cfg = cmn_cfg_ref((struct cmn_cfg *)(uintptr_t)cfg);
    s->role = role;
    s->fn = fn;
    s->ctx = ctx;
    s->lfd_tls = s->lfd_plain = s->lfd_admin = -1;
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_mutex_init(&s->flock, NULL);
    pthread_mutex_init(&s->slock, NULL);
    id = cmn_cfg_str(cfg, "pkisim.instanceId");
    snprintf(s->clone, sizeof(s->clone), "%s", id != NULL && id[0] ? id : role_name(role));
    s->timeout_ms = (int)cmn_cfg_uint(cfg, "pkisim.readTimeoutMs");
    s->nworkers = (unsigned)cmn_cfg_uint(cfg, "pkisim.workers");
    s->qcap = (size_t)cmn_cfg_uint(cfg, "pkisim.queue");
    fault_from_cfg(s);

    w.s = s;
    w.errs = errs;
    w.bad = false;
    cmn_cfg_children(cfg, "pkisim.agent.", add_agent, &w);
    if (w.bad)
        goto fail;
    addr = cmn_cfg_str(cfg, "service.machineName");
    sport = (unsigned)cmn_cfg_uint(cfg, "service.securePort");
    pport = (unsigned)cmn_cfg_uint(cfg, "service.unsecurePort");
    aport = (unsigned)cmn_cfg_uint(cfg, "pkisim.adminPort");
    if (sport == 0 && pport == 0) {
        (void)cmn_buf_printf(errs, "service.securePort (or, for tests, service.unsecurePort) "
                                   "is required\n");
        goto fail;
    }
    if (pport != 0) {
        bool found = false;

        plain_uid = cmn_cfg_str(cfg, "pkisim.plainHttp.userid");
        for (size_t i = 0; plain_uid != NULL && i < s->nagents; i++) {
            if (strcmp(s->agents[i].id, plain_uid) == 0) {
                s->plain_user = s->agents[i];
                found = true;
            }
        }
        if (!found) {
            (void)cmn_buf_printf(errs, "service.unsecurePort needs pkisim.plainHttp.userid "
                                       "naming a configured pkisim.agent\n");
            goto fail;
        }
    }
    if (sport != 0) {
        rc = tls_setup(s, errs);
        if (rc != CMN_OK)
            goto fail;
        rc = CMN_ECONFIG;
    }
    if (bind && sport != 0 && (s->lfd_tls = listen_on(addr, sport, errs)) < 0)
        goto fail;
    if (bind && pport != 0 && (s->lfd_plain = listen_on(addr, pport, errs)) < 0)
        goto fail;
    if (bind && aport != 0 && (s->lfd_admin = listen_on("127.0.0.1", aport, errs)) < 0)
        goto fail;
    logpath = cmn_cfg_str(cfg, "pkisim.requestLog");
    if (logpath != NULL) {
        s->reqlog = fopen(logpath, "a");
        if (s->reqlog == NULL) {
            (void)cmn_buf_printf(errs, "pkisim.requestLog: cannot open '%s': %s\n", logpath,
                                 strerror(errno));
            goto fail;
        }
    }
    *out = s;
    return CMN_OK;
fail:
    sim_srv_stop_free(s);
    return rc;
}

/* ---- fault state ---- */

/* Takes the fault for a request to `path` (NULL: before the request is read): consumes one
 * use of a counted fault. Returns the mode that applies now (F_NONE if none). */
static struct fault
fault_take(struct sim_srv *s, const char *path)
{
    struct fault f = {.mode = F_NONE};

    pthread_mutex_lock(&s->flock);
    if (s->fault.mode != F_NONE) {
        bool pre = s->fault.mode == F_HANG_ACCEPT;
        bool match = pre ? path == NULL
                         : path != NULL &&
                               strncmp(path, s->fault.path, strlen(s->fault.path)) == 0;

        if (match) {
            f = s->fault;
            if (s->fault.count > 0 && --s->fault.count == 0) {
                s->fault.mode = F_NONE; /* used up; a hang in progress keeps going */
                s->fault.gen++;
                f.gen = s->fault.gen;
            }
        }
    }
    pthread_mutex_unlock(&s->flock);
    return f;
}

static unsigned
fault_gen(struct sim_srv *s)
{
    unsigned g;

    pthread_mutex_lock(&s->flock);
    g = s->fault.gen;
    pthread_mutex_unlock(&s->flock);
    return g;
}

/* Holds the connection open without answering until the peer closes, the fault is changed
 * through the admin endpoint, the server stops, or max_ms passes. */
static void
hang(struct sim_srv *s, int fd, unsigned max_ms, unsigned gen)
{
    int64_t end = cmn_http_now_ms() + (max_ms != 0 ? max_ms : 600000);

    while (!atomic_load(&s->stop) && cmn_http_now_ms() < end && fault_gen(s) == gen) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;

        if (poll(&p, 1, 50) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0)
            return;
        if (p.revents & POLLIN) {
            ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

            if (n == 0)
                return; /* peer gave up */
            if (n > 0)  /* unread bytes: keep them, avoid a busy loop */
                (void)usleep(50000);
        }
    }
}

/* ---- per-request accounting ---- */

static void
count_op(struct sim_srv *s, const char *op)
{
    pthread_mutex_lock(&s->slock);
    for (size_t i = 0; i < s->nops; i++) {
        if (strcmp(s->ops[i].op, op) == 0) {
            s->ops[i].n++;
            pthread_mutex_unlock(&s->slock);
            return;
        }
    }
    if (s->nops < MAX_OPS) {
        snprintf(s->ops[s->nops].op, sizeof(s->ops[s->nops].op), "%s", op);
        s->ops[s->nops].n = 1;
        s->nops++;
    }
    pthread_mutex_unlock(&s->slock);
}

/* One request log line: time clone role peer method path op user http fault + note. */
static void
log_request(struct sim_srv *s, const char *peer, const char *method, const char *path,
            const char *op, const char *user, int http, const char *fault, const char *note)
{
    char ts[32];
    struct timespec now;
    struct tm tm;
    FILE *f = s->reqlog != NULL ? s->reqlog : stdout;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    count_op(s, op);
    pthread_mutex_lock(&s->slock);
    fprintf(f, "%s.%03ldZ clone=%s role=%s peer=%s method=%s path=%s op=%s user=%s http=%d "
               "fault=%s %s\n",
            ts, now.tv_nsec / 1000000, s->clone, role_name(s->role), peer, method, path, op,
            user, http, fault, note);
    fflush(f);
    pthread_mutex_unlock(&s->slock);
}

/* ---- workers ---- */

static const char *
fault_name(enum fault_mode m)
{
    return fault_words[m];
}

static void
peer_name(int fd, char *out, size_t n)
{
    struct sockaddr_in sa;
    socklen_t l = sizeof(sa);
    char a[INET_ADDRSTRLEN] = "?";

    if (getpeername(fd, (struct sockaddr *)&sa, &l) == 0)
        (void)inet_ntop(AF_INET, &sa.sin_addr, a, sizeof(a));
    snprintf(out, n, "%s:%u", a, (unsigned)ntohs(sa.sin_port));
}

static const struct sim_user *
map_peer(struct sim_srv *s, SSL *ssl)
{
    X509 *x = SSL_get1_peer_certificate(ssl);
    uint8_t fp[32];
    unsigned n = 0;
    const struct sim_user *u = NULL;

    if (x != NULL && X509_digest(x, EVP_sha256(), fp, &n) == 1 && n == 32) {
        for (size_t i = 0; i < s->nagents; i++)
            if (CRYPTO_memcmp(fp, s->agents[i].fp, 32) == 0)
                u = &s->agents[i];
    }
    X509_free(x);
    return u;
}

static void
serve(struct sim_srv *s, int fd, bool tls)
{
    struct cmn_http_limits lim = {.timeout_ms = s->timeout_ms, .max_body = SIM_BODY_MAX};
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf body;
    struct sim_form form;
    struct sim_resp r;
    struct fault f;
    const struct sim_user *u = NULL;
    SSL *ssl = NULL;
    char peer[64];
    const char *fault = "none";

    cmn_http_head_init(&h);
    cmn_buf_init(&body, SIM_BODY_MAX);
    memset(&form, 0, sizeof(form));
    sim_resp_init(&r);
    peer_name(fd, peer, sizeof(peer));

    f = fault_take(s, NULL);
    if (f.mode == F_HANG_ACCEPT) {
        atomic_fetch_add(&s->faults_applied, 1);
        log_request(s, peer, "-", "-", "fault", "-", 0, "hang-accept", "");
        hang(s, fd, f.ms, f.gen);
        goto out;
    }
    if (tls) {
        ssl = SSL_new(s->ssl);
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
            cmn_http_conn_new_ssl(ssl, &lim, &c) != CMN_OK)
            goto out;
        if (cmn_http_conn_handshake(c) != CMN_OK) {
            atomic_fetch_add(&s->tls_rejected, 1);
            CMN_LOG(CMN_LOG_NOTICE, "tls.rejected", NULL, "clone=%s peer=%s err=%s", s->clone,
                    peer, cmn_http_conn_errmsg(c));
            log_request(s, peer, "-", "-", "tls-rejected", "-", 0, "none", "");
            goto out;
        }
        u = map_peer(s, ssl);
    } else {
        if (cmn_http_conn_new_fd(fd, &lim, &c) != CMN_OK)
            goto out;
        u = &s->plain_user;
    }
    if (cmn_http_read_request_head(c, &h) != CMN_OK || cmn_http_read_body(c, &body) != CMN_OK)
        goto out;
    atomic_fetch_add(&s->requests, 1);

    f = fault_take(s, h.path);
    if (f.mode != F_NONE) {
        atomic_fetch_add(&s->faults_applied, 1);
        fault = fault_name(f.mode);
    }
    switch (f.mode) {
    case F_DELAY:
        (void)usleep((useconds_t)f.ms * 1000);
        break;
    case F_HANG_REQUEST:
        log_request(s, peer, h.method, h.path, "fault", u != NULL ? u->id : "-", 0, fault, "");
        hang(s, fd, f.ms, f.gen);
        goto out;
    case F_CLOSE:
        log_request(s, peer, h.method, h.path, "fault", u != NULL ? u->id : "-", 0, fault, "");
        goto out;
    case F_RESET: {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        log_request(s, peer, h.method, h.path, "fault", u != NULL ? u->id : "-", 0, fault, "");
        goto out;
    }
    case F_HTTP:
        sim_resp_error_page(&r, (int)f.code, "injected fault");
        snprintf(r.op, sizeof(r.op), "fault");
        goto reply;
    case F_GARBAGE:
        (void)cmn_buf_puts(&r.body, "<html><head><title>pki-sim</title></head><body>"
                                    "unexpected content</body></html>");
        snprintf(r.op, sizeof(r.op), "fault");
        goto reply;
    case F_STATUS:
        if (strstr(h.path, "profileSubmit") != NULL) {
            r.ctype = "application/xml";
            (void)cmn_buf_printf(&r.body, "<?xml version=\"1.0\" encoding=\"UTF-8\" "
                                          "standalone=\"no\"?><XMLResponse><Status>%u</Status>"
                                          "<Error>injected fault</Error></XMLResponse>",
                                 f.code);
        } else {
            r.ctype = "application/x-www-form-urlencoded";
            (void)cmn_buf_printf(&r.body, "status=%u", f.code);
        }
        snprintf(r.op, sizeof(r.op), "fault");
        goto reply;
    default:
        break;
    }

    if (u == NULL) {
        /* §7 (2): a certificate the CA chain accepts but no agent holds. */
        atomic_fetch_add(&s->unauthenticated, 1);
        sim_resp_error_page(&r, 401, "The client certificate does not belong to a user.");
        snprintf(r.op, sizeof(r.op), "unauthenticated");
        goto reply;
    }
    if (strcmp(h.method, "POST") == 0) {
        if (sim_form_parse((const char *)body.data, body.len, &form) != CMN_OK) {
            sim_resp_error_page(&r, 400, "bad form body");
            goto reply;
        }
    } else if (strcmp(h.method, "GET") == 0) {
        if (sim_form_parse(h.query, h.query != NULL ? strlen(h.query) : 0, &form) != CMN_OK) {
            sim_resp_error_page(&r, 400, "bad query");
            goto reply;
        }
    } else {
        sim_resp_error_page(&r, 405, "method not allowed");
        goto reply;
    }
    s->fn(s->ctx, u, h.path, &form, &r);
reply:
    if (r.op[0] == '\0')
        snprintf(r.op, sizeof(r.op), "error");
    (void)cmn_http_write_response(c, r.http, NULL, r.ctype, NULL, 0, r.body.data, r.body.len);
    log_request(s, peer, h.method, h.path, r.op, u != NULL ? u->id : "-", r.http, fault, r.note);
    if (ssl != NULL)
        (void)SSL_shutdown(ssl);
out:
    sim_form_free(&form);
    sim_resp_cleanup(&r);
    cmn_buf_cleanup(&body);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
}

static void *
worker_main(void *arg)
{
    struct sim_srv *s = arg;

    for (;;) {
        int fd;
        bool tls;

        pthread_mutex_lock(&s->qlock);
        while (s->qlen == 0 && !atomic_load(&s->stop))
            pthread_cond_wait(&s->qcond, &s->qlock);
        if (s->qlen == 0) {
            pthread_mutex_unlock(&s->qlock);
            return NULL;
        }
        fd = s->qfd[s->qhead];
        tls = s->qtls[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        pthread_mutex_unlock(&s->qlock);
        serve(s, fd, tls);
    }
}

static void *
acceptor_main(void *arg)
{
    struct sim_srv *s = arg;
    struct pollfd p[2];
    bool istls[2];
    nfds_t n = 0;

    if (s->lfd_tls >= 0) {
        p[n] = (struct pollfd){.fd = s->lfd_tls, .events = POLLIN};
        istls[n++] = true;
    }
    if (s->lfd_plain >= 0) {
        p[n] = (struct pollfd){.fd = s->lfd_plain, .events = POLLIN};
        istls[n++] = false;
    }
    while (!atomic_load(&s->stop)) {
        if (poll(p, n, 200) <= 0)
            continue;
        for (nfds_t i = 0; i < n; i++) {
            int fd;

            if ((p[i].revents & POLLIN) == 0)
                continue;
            fd = accept(p[i].fd, NULL, NULL);
            if (fd < 0)
                continue;
            (void)cmn_http_set_nodelay(fd);
            pthread_mutex_lock(&s->qlock);
            if (s->qlen == s->qcap) {
                pthread_mutex_unlock(&s->qlock);
                atomic_fetch_add(&s->dropped, 1); /* bounded queue: refuse, never grow */
                close(fd);
                continue;
            }
            s->qfd[(s->qhead + s->qlen) % s->qcap] = fd;
            s->qtls[(s->qhead + s->qlen) % s->qcap] = istls[i];
            s->qlen++;
            pthread_cond_signal(&s->qcond);
            pthread_mutex_unlock(&s->qlock);
        }
    }
    return NULL;
}

/* ---- admin endpoint ---- */

static void
admin_stats(struct sim_srv *s, struct cmn_buf *b)
{
    struct fault f;

    pthread_mutex_lock(&s->flock);
    f = s->fault;
    pthread_mutex_unlock(&s->flock);
    (void)cmn_buf_printf(b, "clone=%s\nrole=%s\nrequests=%lu\ntls_rejected=%lu\n"
                            "unauthenticated=%lu\nfaults_applied=%lu\ndropped=%lu\n"
                            "fault.mode=%s\nfault.ms=%u\nfault.code=%u\nfault.count=%u\n"
                            "fault.path=%s\n",
                         s->clone, role_name(s->role), atomic_load(&s->requests),
                         atomic_load(&s->tls_rejected), atomic_load(&s->unauthenticated),
                         atomic_load(&s->faults_applied), atomic_load(&s->dropped),
                         fault_name(f.mode), f.ms, f.code, f.count, f.path);
    pthread_mutex_lock(&s->slock);
    for (size_t i = 0; i < s->nops; i++)
        (void)cmn_buf_printf(b, "op.%s=%lu\n", s->ops[i].op, s->ops[i].n);
    pthread_mutex_unlock(&s->slock);
}

/* POST /sim/fault?mode=M[&ms=N][&code=N][&count=N][&path=P]: replaces the fault. */
static int
admin_fault(struct sim_srv *s, const struct sim_form *f, struct cmn_buf *b)
{
    const struct sim_param *m = sim_form_get(f, "mode");
    struct fault nf = {.mode = F_NONE, .code = 500};
    static const char *const nums[] = {"ms", "code", "count"};
    unsigned *dst[] = {&nf.ms, &nf.code, &nf.count};
    int mode = -1;

    for (int i = 0; m != NULL && fault_words[i] != NULL; i++)
        if (strcmp(m->val, fault_words[i]) == 0)
            mode = i;
    if (mode < 0) {
        (void)cmn_buf_puts(b, "mode must be one of none delay hang-accept hang-request close "
                              "reset http garbage status\n");
        return 400;
    }
    nf.mode = (enum fault_mode)mode;
    for (int i = 0; i < 3; i++) {
        const struct sim_param *p = sim_form_get(f, nums[i]);
        unsigned long long v;

        if (p == NULL)
            continue;
        if (cmn_parse_uint(p->val, 0, 3600000, &v) != CMN_OK) {
            (void)cmn_buf_printf(b, "%s must be a number\n", nums[i]);
            return 400;
        }
        *dst[i] = (unsigned)v;
    }
    if (nf.mode == F_HTTP && (nf.code < 100 || nf.code > 599)) {
        (void)cmn_buf_puts(b, "code must be 100..599\n");
        return 400;
    }
    if (sim_form_get(f, "path") != NULL)
        snprintf(nf.path, sizeof(nf.path), "%s", sim_form_get(f, "path")->val);
    pthread_mutex_lock(&s->flock);
    nf.gen = s->fault.gen + 1;
    s->fault = nf;
    pthread_mutex_unlock(&s->flock);
    CMN_LOG(CMN_LOG_NOTICE, "sim.fault", NULL, "clone=%s mode=%s ms=%u code=%u count=%u",
            s->clone, fault_name(nf.mode), nf.ms, nf.code, nf.count);
    (void)cmn_buf_printf(b, "fault.mode=%s\n", fault_name(nf.mode));
    return 200;
}

static void
admin_serve(struct sim_srv *s, int fd)
{
    struct cmn_http_limits lim = {.timeout_ms = 2000, .max_body = 4096};
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf body, out;
    struct sim_form form;
    int status = 404;

    cmn_http_head_init(&h);
    cmn_buf_init(&body, 4096);
    cmn_buf_init(&out, 65536);
    memset(&form, 0, sizeof(form));
    if (cmn_http_conn_new_fd(fd, &lim, &c) != CMN_OK ||
        cmn_http_read_request_head(c, &h) != CMN_OK || cmn_http_read_body(c, &body) != CMN_OK)
        goto out;
    if (h.query != NULL)
        (void)sim_form_parse(h.query, strlen(h.query), &form);
    else
        (void)sim_form_parse((const char *)body.data, body.len, &form);
    if (strcmp(h.path, "/sim/stats") == 0) {
        admin_stats(s, &out);
        status = 200;
    } else if (strcmp(h.path, "/sim/fault") == 0 && strcmp(h.method, "POST") == 0) {
        status = admin_fault(s, &form, &out);
    } else if (strcmp(h.path, "/sim/fault") == 0 || strcmp(h.path, "/sim/health") == 0) {
        admin_stats(s, &out);
        status = 200;
    } else {
        (void)cmn_buf_puts(&out, "unknown admin path\n");
    }
    (void)cmn_http_write_response(c, status, NULL, "text/plain", NULL, 0, out.data, out.len);
out:
    sim_form_free(&form);
    cmn_buf_cleanup(&body);
    cmn_buf_cleanup(&out);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    close(fd);
}

static void *
admin_main(void *arg)
{
    struct sim_srv *s = arg;
    struct pollfd p = {.fd = s->lfd_admin, .events = POLLIN};

    while (!atomic_load(&s->stop)) {
        int fd;

        if (poll(&p, 1, 200) <= 0)
            continue;
        fd = accept(s->lfd_admin, NULL, NULL);
        if (fd >= 0)
            admin_serve(s, fd); /* short and bounded (2 s); never blocked by workers */
    }
    return NULL;
}

enum cmn_rc
sim_srv_start(struct sim_srv *s)
{
    s->workers = calloc(s->nworkers, sizeof(*s->workers));
    if (s->workers == NULL)
        return CMN_ENOMEM;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0)
            return CMN_EIO;
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0)
        return CMN_EIO;
    if (s->lfd_admin >= 0 && pthread_create(&s->admin, NULL, admin_main, s) != 0)
        return CMN_EIO;
    s->started = true;
    return CMN_OK;
}

void
sim_srv_stop_free(struct sim_srv *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    if (s->started) {
        pthread_mutex_lock(&s->qlock);
        pthread_cond_broadcast(&s->qcond);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->acceptor, NULL);
        if (s->lfd_admin >= 0)
            pthread_join(s->admin, NULL);
        for (unsigned i = 0; i < s->nworkers; i++)
            pthread_join(s->workers[i], NULL);
    }
    while (s->qlen > 0) { /* accepted but never served */
        close(s->qfd[s->qhead]);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
    }
    free(s->workers);
    if (s->lfd_tls >= 0)
        close(s->lfd_tls);
    if (s->lfd_plain >= 0)
        close(s->lfd_plain);
    if (s->lfd_admin >= 0)
        close(s->lfd_admin);
    if (s->reqlog != NULL)
        fclose(s->reqlog);
    SSL_CTX_free(s->ssl);
    cmn_cfg_unref(s->cfg);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->flock);
    pthread_mutex_destroy(&s->slock);
    free(s);
}
