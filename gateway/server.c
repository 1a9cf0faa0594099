/* gateway/server.c - listeners, the acceptor, the bounded queue and the workers of tpsgw. The
 * main thread builds everything (STYLE §5); the acceptor only accepts and queues; a worker
 * owns a connection (TLS handshake, head, session) for its whole life. */
#define _GNU_SOURCE 1 /* pipe2, accept4 */
#include "gateway/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <libfailover/failover.h>

#include "common/http.h"
#include "common/log.h"
#include "common/proxy.h"
#include "gateway/admin.h"
#include "gateway/admin_setup.h"
#include "gateway/ca.h"
#include "gateway/config.h"
#include "gateway/enroll.h"
#include "gateway/hooks.h"
#include "gateway/lb.h"
#include "gateway/officer.h"
#include "gateway/tks.h"

struct job {
    int fd;
    bool tls;
    char ip[64];
};

struct tps_server {
    const struct tps_config *cfg;
    const struct tps_settings *st;
    SSL_CTX *ssl_ctx;
    struct tps_tks *tks;
    struct tps_hooks *hooks;
    struct tps_lb *lb; /* readiness, agent, drain, trusted proxies, metrics */
    /* The admin API and console (tps.admin.enable, docs/admin-api.md); NULL: not served. */
    struct tps_admin_stack *admin;
    struct tps_tokendb_cfg *admin_tdb; /* its token DB configuration */
    struct tps_ca *admin_ca;           /* its CA connector (tps.admin.ca.conn); may be NULL */
    int lfd[2]; /* [0] plain, [1] TLS; -1 when absent */
    unsigned port[2];
    int wake[2]; /* pipe: wakes the acceptor on stop */
    pthread_t acceptor;
    pthread_t *workers;
    unsigned nworkers;
    bool started;
    bool acceptor_done; /* joined and listeners closed (drain or stop) */
    bool accept_proxy;    /* service.acceptProxy */
    pthread_mutex_t lock; /* guards the queue and `stopping` */
    pthread_cond_t cond;
    struct job *queue; /* ring of st->queue_size; guarded by lock */
    unsigned qhead, qlen;
    bool stopping;    /* guarded by lock */
    atomic_uint live; /* sessions being served */
};

/* What one connection needs for the admin API. */
struct admin_conn {
    const struct tps_admin *admin; /* NULL: admin paths are not served (404) */
    struct tps_admin_worker *w;    /* the worker's handle */
    SSL *ssl;                      /* NULL: plain HTTP (admin paths: 403) */
    const char *instance;          /* tps.instanceId */
};

static enum tps_rc conn_serve(const struct tps_env *env, struct cmn_http_conn *c,
                              const char *client_ip, bool ready, bool trust_xff,
                              const struct admin_conn *adm, int *op);

/* Moves a listening socket above every descriptor the workers will use. When the process is
 * killed, Linux releases its descriptors from the highest down, so a listener up here is gone
 * before any connection it accepted is reset: a client that retries at once after its
 * connection dropped is refused here (and HAProxy re-dispatches it) instead of landing in the
 * backlog of a dying process. Best effort: the original descriptor when there is no room. */
static int
high_fd(int fd)
{
    struct rlimit rl;
    int hi;

    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 256)
        return fd;
    hi = fcntl(fd, F_DUPFD_CLOEXEC, (int)(rl.rlim_cur > 65536 ? 65536 : rl.rlim_cur) - 16);
    if (hi < 0)
        return fd;
    close(fd);
    return hi;
}

/* Raises the soft descriptor limit to what maxSessions needs, within the hard limit: each
 * worker holds a socket pair and its LDAP and back-end connections, each session its client
 * connection. Below that, sessions fail with EMFILE under load; say so at start, with the fix. */
static void
raise_fd_limit(unsigned max_sessions, unsigned queue_size)
{
    rlim_t need = (rlim_t)max_sessions * 8 + queue_size + 256;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need)
        CMN_LOG(CMN_LOG_WARN, "server.fd_limit", NULL,
                "have=%llu need=%llu msg=\"tps.maxSessions=%u needs about %llu file "
                "descriptors; raise the hard limit (LimitNOFILE= in the systemd unit, ulimit -Hn) "
                "or lower tps.maxSessions\"",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need, max_sessions,
                (unsigned long long)need);
}

static enum tps_rc
listen_on(const char *addr, unsigned port, int *fd_out, unsigned *bound, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    char ps[8];
    int fd = -1, one = 1, g;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(ps, sizeof(ps), "%u", port);
    g = getaddrinfo(addr, ps, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "key 'service.bindAddress' = %s: %s", addr, gai_strerror(g));
        return TPS_ECONFIG;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fd = high_fd(fd);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", addr, port, strerror(errno));
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

/* POST /drain on the status port: the main thread drains as on SIGTERM (it waits in
 * sigwait; the signal is blocked in every thread, so it is queued for it). */
static void
drain_command(void *arg)
{
    (void)arg;
    (void)kill(getpid(), SIGTERM);
}

static enum tps_rc
make_ssl_ctx(struct tps_server *srv, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, srv->st->tls_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, srv->st->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        snprintf(err, errlen, "key 'service.sslCertFile'/'service.sslKeyFile': %s", e);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return TPS_ECONFIG;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (tps_cfg_isset(srv->cfg, "service.clientCAFile")) {
        /* Ask for a staff certificate, never require one: TPS clients send none, the admin API
         * answers 401 without one. A certificate that does not verify ends the handshake. */
        const char *caf = tps_cfg_str(srv->cfg, "service.clientCAFile");
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(caf);

        if (names == NULL || SSL_CTX_load_verify_locations(ctx, caf, NULL) != 1) {
            char e[256];
            ERR_error_string_n(ERR_get_error(), e, sizeof(e));
            snprintf(err, errlen, "key 'service.clientCAFile' = %s: %s", caf,
                     names == NULL ? "no CA certificate could be read" : e);
            ERR_clear_error();
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            SSL_CTX_free(ctx);
            return TPS_ECONFIG;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    /* Needed for session resumption once a peer certificate is involved. */
    (void)SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tpsgw", 5);
    srv->ssl_ctx = ctx;
    return TPS_OK;
}

/* Builds the admin stack when tps.admin.enable is true and a token DB is configured: its own
 * token DB configuration (the keys tps_hooks_new reads) and CA connector. Main thread. */
static enum tps_rc
admin_new(struct tps_server *srv, char *err, size_t errlen)
{
    const struct cmn_cfg *cc = tps_config_cfg(srv->cfg);
    const char *ca_id = cmn_cfg_str(cc, "tps.admin.ca.conn");
    struct tps_tokendb_conf tc;
    enum tps_tdb_rc r;
    enum tps_rc rc;
    char key[96];

    if (!cmn_cfg_bool(cc, "tps.admin.enable"))
        return TPS_OK;
    if (!cmn_cfg_isset(cc, "tokendb.hostport")) {
        CMN_LOG(CMN_LOG_NOTICE, "admin.disabled", NULL,
                "reason=\"no token DB (tokendb.hostport)\"");
        return TPS_OK;
    }
    tps_hooks_tokendb_conf(cc, &tc);
    r = tps_tokendb_cfg_new(&tc, &srv->admin_tdb, err, errlen);
    if (r != TPS_TDB_OK)
        return r == TPS_TDB_ENOMEM ? TPS_ENOMEM : TPS_ECONFIG;
    snprintf(key, sizeof(key), "conn.%s.hostport", ca_id != NULL ? ca_id : "");
    if (ca_id != NULL && cmn_cfg_isset(cc, key)) {
        rc = tps_ca_new(cc, ca_id, &srv->admin_ca, err, errlen);
        if (rc != TPS_OK)
            return rc;
    }
    rc = tps_admin_stack_new(cc, srv->admin_tdb, srv->admin_ca, &srv->admin, err, errlen);
    if (rc != TPS_OK)
        return rc;
    if (!tps_cfg_isset(srv->cfg, "service.securePort") ||
        !tps_cfg_isset(srv->cfg, "service.clientCAFile"))
        CMN_LOG(CMN_LOG_WARN, "admin.no_client_ca", NULL,
                "msg=\"the admin API needs service.securePort and service.clientCAFile; "
                "every call will be refused\"");
    return TPS_OK;
}

/* /metrics shows every CA and KRA connector's list next to the TKS's. */
static void
add_list(void *arg, const char *id, const struct fo_list *l)
{
    if (l != NULL && tps_lb_add_list(arg, id, l) != TPS_OK)
        CMN_LOG(CMN_LOG_WARN, "lb.lists", NULL, "list=%s msg=\"more than %d failover lists: "
                "not in /metrics\"", id, TPS_LB_MAX_LISTS);
}

enum tps_rc
tps_server_check_admin(const struct tps_config *cfg, char *err, size_t errlen)
{
    struct tps_server *srv = calloc(1, sizeof(*srv));
    enum tps_rc rc;

    if (srv == NULL)
        return TPS_ENOMEM;
    srv->cfg = cfg;
    rc = admin_new(srv, err, errlen);
    tps_admin_stack_free(srv->admin);
    tps_ca_free(srv->admin_ca);
    tps_tokendb_cfg_free(srv->admin_tdb);
    free(srv);
    return rc;
}

enum tps_rc
tps_server_new(const struct tps_config *cfg, struct tps_server **out, char *err, size_t errlen)
{
    struct tps_server *srv;
    enum tps_rc rc;

    *out = NULL;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return TPS_ENOMEM;
    srv->cfg = cfg;
    srv->st = tps_config_settings(cfg);
    srv->accept_proxy = tps_cfg_bool(cfg, "service.acceptProxy");
    srv->lfd[0] = srv->lfd[1] = srv->wake[0] = srv->wake[1] = -1;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->cond, NULL);
    atomic_init(&srv->live, 0);
    srv->queue = calloc(srv->st->queue_size, sizeof(*srv->queue));
    if (srv->queue == NULL) {
        rc = TPS_ENOMEM;
        goto fail;
    }
    rc = tps_tks_new(cfg, "tks1", &srv->tks, err, errlen);
    if (rc != TPS_OK)
        goto fail;
    rc = tps_hooks_new(cfg, &srv->hooks, err, errlen);
    if (rc != TPS_OK)
        goto fail;
    rc = tps_lb_new_from_config(cfg, &srv->lb, err, errlen);
    if (rc != TPS_OK)
        goto fail;
    rc = admin_new(srv, err, errlen);
    if (rc != TPS_OK)
        goto fail;
    if (srv->tks->list != NULL)
        (void)tps_lb_add_list(srv->lb, "tks1", srv->tks->list);
    tps_enroll_backends_lists(tps_hooks_backends(srv->hooks), add_list, srv->lb);
    tps_lb_on_drain(srv->lb, drain_command, NULL);
    if (tps_cfg_isset(cfg, "service.securePort")) {
        rc = make_ssl_ctx(srv, err, errlen);
        if (rc != TPS_OK)
            goto fail;
    }
    raise_fd_limit(srv->st->max_sessions, srv->st->queue_size);
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        rc = TPS_EIO;
        goto fail;
    }
    if (tps_cfg_isset(cfg, "service.unsecurePort")) {
        rc = listen_on(srv->st->bind_address, srv->st->http_port, &srv->lfd[0], &srv->port[0], err,
                       errlen);
        if (rc != TPS_OK)
            goto fail;
    }
    if (tps_cfg_isset(cfg, "service.securePort")) {
        rc = listen_on(srv->st->bind_address, srv->st->https_port, &srv->lfd[1], &srv->port[1], err,
                       errlen);
        if (rc != TPS_OK)
            goto fail;
    }
    *out = srv;
    return TPS_OK;
fail:
    tps_server_free(srv);
    return rc;
}

unsigned
tps_server_port(const struct tps_server *srv, bool tls)
{
    return srv->port[tls ? 1 : 0];
}

unsigned
tps_server_live(const struct tps_server *srv)
{
    return atomic_load(&((struct tps_server *)(uintptr_t)srv)->live);
}

static void
peer_ip(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    snprintf(out, cap, "-");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
}

/* Answers 503 on a connection no worker can take, without reading its request (best effort,
 * never blocking the acceptor: the socket is non-blocking). */
static void
refuse_busy(int fd, bool tls)
{
    static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\nRetry-After: 1\r\n\r\n";
    int fl = fcntl(fd, F_GETFL);

    if (!tls && fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
        (void)send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL);
    close(fd);
}

static void *
acceptor_main(void *arg)
{
    struct tps_server *srv = arg;
    struct pollfd pf[3];

    for (;;) {
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = srv->wake[0], .events = POLLIN};
        for (int i = 0; i < 2; i++)
            if (srv->lfd[i] >= 0)
                pf[n++] = (struct pollfd){.fd = srv->lfd[i], .events = POLLIN};
        if (poll(pf, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            CMN_LOG(CMN_LOG_ERROR, "server.poll", NULL, "err=\"%s\"", strerror(errno));
            break;
        }
        if (pf[0].revents != 0)
            break; /* stop requested */
        for (nfds_t k = 1; k < n; k++) {
            bool tls;
            struct job j;
            bool queued = false;

            if (!(pf[k].revents & POLLIN))
                continue;
            tls = pf[k].fd == srv->lfd[1];
            j.fd = accept4(pf[k].fd, NULL, NULL, SOCK_CLOEXEC);
            if (j.fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
                    /* out of descriptors: back off instead of spinning on poll */
                    CMN_LOG(CMN_LOG_ERROR, "server.accept", NULL, "err=\"%s\"", strerror(errno));
                    poll(NULL, 0, 100);
                }
                continue;
            }
            j.tls = tls;
            peer_ip(j.fd, j.ip, sizeof(j.ip));
            pthread_mutex_lock(&srv->lock);
            if (!srv->stopping && srv->qlen < srv->st->queue_size) {
                srv->queue[(srv->qhead + srv->qlen) % srv->st->queue_size] = j;
                srv->qlen++;
                queued = true;
                pthread_cond_signal(&srv->cond);
            }
            pthread_mutex_unlock(&srv->lock);
            if (!queued) {
                CMN_LOG(CMN_LOG_WARN, "server.busy", NULL, "ip=%s live=%u queue=%u", j.ip,
                        atomic_load(&srv->live), srv->st->queue_size);
                tps_lb_refused(srv->lb, "busy");
                refuse_busy(j.fd, tls);
            }
        }
    }
    return NULL;
}

static void
serve_job(struct tps_server *srv, const struct tps_env *env, struct tps_admin_worker *aw,
          struct job *j)
{
    struct cmn_http_limits lim = {
        .max_head = 16384,
        .max_headers = 64,
        .max_body = 65536,
        .max_chunk = srv->st->max_message + 8,
        .timeout_ms = (int)srv->st->head_timeout_ms,
    };
    struct cmn_http_conn *c = NULL;
    SSL *ssl = NULL;
    struct sockaddr_storage peer;
    socklen_t pl = sizeof(peer);
    struct admin_conn adm = {
        .admin = srv->admin != NULL ? srv->admin->admin : NULL,
        .w = aw,
        .instance = tps_cfg_str(srv->cfg, "tps.instanceId"),
    };
    bool trusted;
    int op = -1;
    enum tps_rc rc;

    memset(&peer, 0, sizeof(peer));
    trusted = getpeername(j->fd, (struct sockaddr *)&peer, &pl) == 0 &&
              tps_lb_trusted(srv->lb, (struct sockaddr *)&peer);
    (void)cmn_http_set_nodelay(j->fd);
    if (srv->accept_proxy && !trusted) {
        /* Only the balancer may say who the client is (lb.trustedProxies). */
        CMN_LOG(CMN_LOG_NOTICE, "server.proxy_untrusted", NULL, "peer=%s", j->ip);
        tps_lb_refused(srv->lb, "untrusted_proxy");
        goto out;
    }
    if (srv->accept_proxy) {
        /* Behind HAProxy: the header names the real client (tokendb §3.5); none = refused. */
        struct cmn_proxy p;
        enum cmn_rc prc = cmn_proxy_read_fd(j->fd, (int)srv->st->head_timeout_ms, &p);
        if (prc != CMN_OK) {
            CMN_LOG(CMN_LOG_NOTICE, "server.proxy", NULL, "peer=%s err=\"%s\"", j->ip,
                    prc == CMN_EPROTO ? "no or bad PROXY header" : cmn_strerror(prc));
            tps_lb_refused(srv->lb, "bad_proxy");
            goto out;
        }
        snprintf(j->ip, sizeof(j->ip), "%s", p.local ? "local" : p.src_text);
    }
    if (j->tls) {
        ERR_clear_error();
        ssl = SSL_new(srv->ssl_ctx);
        if (ssl == NULL || SSL_set_fd(ssl, j->fd) != 1 ||
            cmn_http_conn_new_ssl(ssl, &lim, &c) != CMN_OK) {
            CMN_LOG(CMN_LOG_ERROR, "server.tls", NULL, "ip=%s err=\"cannot set up TLS\"", j->ip);
            goto out;
        }
        if (cmn_http_conn_handshake(c) != CMN_OK) {
            CMN_LOG(CMN_LOG_NOTICE, "server.tls_handshake", NULL, "ip=%s err=\"%s\"", j->ip,
                    cmn_http_conn_errmsg(c));
            goto out;
        }
    } else if (cmn_http_conn_new_fd(j->fd, &lim, &c) != CMN_OK) {
        goto out;
    }
    atomic_fetch_add(&srv->live, 1);
    tps_lb_session_begin(srv->lb);
    /* X-Forwarded-For only from a trusted peer that did not speak PROXY (the header wins). */
    adm.ssl = ssl;
    rc = conn_serve(env, c, j->ip, true, trusted && !srv->accept_proxy, &adm, &op);
    tps_lb_session_end(srv->lb, op, rc == TPS_OK);
    atomic_fetch_sub(&srv->live, 1);
    if (ssl != NULL)
        (void)SSL_shutdown(ssl);
out:
    cmn_http_conn_free(c);
    SSL_free(ssl);
    close(j->fd);
}

static void *
worker_main(void *arg)
{
    struct tps_server *srv = arg;
    struct tps_env env;
    struct tps_admin_worker *aw = NULL;
    struct job j;
    char err[512] = "";

    memset(&env, 0, sizeof(env));
    env.cfg = srv->cfg;
    env.tks = srv->tks;
    if (fo_req_new(&env.fo) != FO_OK || tps_hooks_worker_open(srv->hooks, &env) != TPS_OK) {
        CMN_LOG(CMN_LOG_ERROR, "server.worker", NULL, "err=\"cannot open worker resources\"");
        fo_req_free(env.fo);
        return NULL;
    }
    if (srv->admin != NULL &&
        tps_admin_worker_open(srv->admin->admin, &aw, err, sizeof(err)) != TPS_OK) {
        CMN_LOG(CMN_LOG_ERROR, "server.worker", NULL, "err=\"admin: %s\"", err);
        tps_hooks_worker_close(srv->hooks, &env);
        fo_req_free(env.fo);
        return NULL;
    }
    if (tps_officer_worker_open(srv->admin, srv->cfg, &env.officer, err, sizeof(err)) != TPS_OK) {
        CMN_LOG(CMN_LOG_ERROR, "server.worker", NULL, "err=\"officer: %s\"", err);
        tps_admin_worker_close(aw);
        tps_hooks_worker_close(srv->hooks, &env);
        fo_req_free(env.fo);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        while (srv->qlen == 0 && !srv->stopping)
            pthread_cond_wait(&srv->cond, &srv->lock);
        if (srv->qlen == 0) {
            pthread_mutex_unlock(&srv->lock);
            break;
        }
        j = srv->queue[srv->qhead];
        srv->qhead = (srv->qhead + 1) % srv->st->queue_size;
        srv->qlen--;
        pthread_mutex_unlock(&srv->lock);
        serve_job(srv, &env, aw, &j);
    }
    tps_officer_worker_close(env.officer);
    tps_admin_worker_close(aw);
    tps_hooks_worker_close(srv->hooks, &env);
    fo_req_free(env.fo);
    return NULL;
}

enum tps_rc
tps_server_start(struct tps_server *srv, char *err, size_t errlen)
{
    /* Readiness is evaluated once before any worker runs, so /health is right at once. */
    if (tps_lb_start(srv->lb, err, errlen) != TPS_OK)
        return TPS_EIO;
    srv->workers = calloc(srv->st->max_sessions, sizeof(*srv->workers));
    if (srv->workers == NULL)
        return TPS_ENOMEM;
    for (unsigned i = 0; i < srv->st->max_sessions; i++) {
        if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0) {
            snprintf(err, errlen, "cannot start worker %u: %s", i, strerror(errno));
            srv->started = true;
            tps_server_stop(srv);
            return TPS_EIO;
        }
        srv->nworkers++;
    }
    if (pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the acceptor: %s", strerror(errno));
        srv->started = true;
        tps_server_stop(srv);
        return TPS_EIO;
    }
    srv->started = true;
    CMN_LOG(CMN_LOG_NOTICE, "server.start", NULL, "http_port=%u https_port=%u workers=%u queue=%u",
            srv->port[0], srv->port[1], srv->nworkers, srv->st->queue_size);
    return TPS_OK;
}

/* Stops the acceptor and closes the listeners: new connections are refused by the kernel
 * (HAProxy re-dispatches them), queued and running ones are served. */
static void
stop_accepting(struct tps_server *srv)
{
    if (srv->acceptor_done)
        return;
    if (write(srv->wake[1], "x", 1) < 0) {
        /* the pipe is non-blocking and only ever written once */
    }
    if (srv->acceptor)
        pthread_join(srv->acceptor, NULL);
    for (int i = 0; i < 2; i++) {
        if (srv->lfd[i] >= 0)
            close(srv->lfd[i]);
        srv->lfd[i] = -1;
    }
    srv->acceptor_done = true;
}

void
tps_server_close_listeners(struct tps_server *srv)
{
    if (srv != NULL && srv->started)
        stop_accepting(srv);
}

unsigned
tps_server_pending(struct tps_server *srv)
{
    unsigned n;

    pthread_mutex_lock(&srv->lock);
    n = srv->qlen;
    pthread_mutex_unlock(&srv->lock);
    return n + atomic_load(&srv->live);
}

struct tps_lb *
tps_server_lb(const struct tps_server *srv)
{
    return srv->lb;
}

void
tps_server_stop(struct tps_server *srv)
{
    if (srv == NULL || !srv->started)
        return;
    stop_accepting(srv);
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    for (unsigned i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i], NULL);
    srv->nworkers = 0;
    srv->started = false;
}

void
tps_server_free(struct tps_server *srv)
{
    if (srv == NULL)
        return;
    tps_server_stop(srv);
    for (int i = 0; i < 2; i++) {
        if (srv->lfd[i] >= 0)
            close(srv->lfd[i]);
        if (srv->wake[i] >= 0)
            close(srv->wake[i]);
    }
    for (unsigned k = 0; k < srv->qlen; k++)
        close(srv->queue[(srv->qhead + k) % srv->st->queue_size].fd);
    free(srv->queue);
    free(srv->workers);
    tps_lb_free(srv->lb); /* before the TKS list it reads */
    tps_tks_free(srv->tks);
    tps_hooks_free(srv->hooks);
    tps_admin_stack_free(srv->admin); /* before the CA connector and token DB config it uses */
    tps_ca_free(srv->admin_ca);
    tps_tokendb_cfg_free(srv->admin_tdb);
    SSL_CTX_free(srv->ssl_ctx);
    pthread_cond_destroy(&srv->cond);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

/* ---- routing ---- */

static enum tps_rc
simple(struct cmn_http_conn *c, enum tps_rc rc, const char *allow)
{
    const struct cmn_http_hdr h[] = {{"Allow", allow ? allow : ""}};
    int st = tps_rc_http_status(rc);

    (void)cmn_http_write_response(c, st, NULL, "text/plain", h, allow ? 1 : 0, cmn_http_reason(st),
                                  strlen(cmn_http_reason(st)));
    return rc;
}

/* SHA-256 of x's DER in lower-case hex. [out] out (cap >= 2 * EVP_MAX_MD_SIZE + 1): "" on
 * failure. */
static void
cert_fingerprint(X509 *x, char *out, size_t cap)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    out[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &n) != 1 || 2 * (size_t)n + 1 > cap)
        return;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, cap - 2 * i, "%02x", md[i]);
}

/* x's subject as RFC 2253 text. [out] out: "" on failure. */
static void
cert_subject(X509 *x, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n;

    out[0] = '\0';
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(b, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

/* Hands an admin request to the admin API with the caller the TLS layer verified (a
 * certificate that did not verify is no certificate). Plain HTTP gets 403: the API
 * authenticates by client certificate only. */
static enum tps_rc
admin_serve(const struct admin_conn *adm, struct cmn_http_conn *c, const struct cmn_http_head *h,
            const char *client_ip)
{
    struct tps_admin_peer peer = {.client_ip = client_ip, .instance = adm->instance};
    char fp[2 * EVP_MAX_MD_SIZE + 1], subj[1024];
    X509 *cert;
    enum tps_rc rc;

    if (adm->ssl == NULL) {
        static const char body[] =
            "{\"Code\":403,\"Error\":\"https_required\",\"Message\":\"the admin API and "
            "console need HTTPS with a TLS client certificate\"}";
        const struct cmn_http_hdr hh[] = {{"X-Content-Type-Options", "nosniff"},
                                          {"Cache-Control", "no-store"}};
        CMN_LOG(CMN_LOG_NOTICE, "admin.plain_http", NULL, "ip=%s path=%s", client_ip, h->path);
        (void)cmn_http_write_response(c, 403, NULL, "application/json; charset=utf-8", hh, 2,
                                      body, sizeof(body) - 1);
        return TPS_EPOLICY;
    }
    cert = SSL_get1_peer_certificate(adm->ssl);
    if (cert != NULL && SSL_get_verify_result(adm->ssl) == X509_V_OK) {
        cert_fingerprint(cert, fp, sizeof(fp));
        cert_subject(cert, subj, sizeof(subj));
        if (fp[0] != '\0') {
            peer.cert = cert;
            peer.fingerprint = fp;
            peer.subject = subj;
        }
    }
    rc = tps_admin_handle(adm->admin, adm->w, c, h, &peer);
    X509_free(cert);
    return rc;
}

/* Routes one request (see tps_conn_serve). trust_xff: the peer is a trusted balancer that
 * sent no PROXY header, so X-Forwarded-For names the client. adm: the admin API (NULL or
 * adm->admin NULL: not served). [out] *op: the TPS operation run, -1 when the request was
 * not one. */
static enum tps_rc
conn_serve(const struct tps_env *env, struct cmn_http_conn *c, const char *client_ip, bool ready,
           bool trust_xff, const struct admin_conn *adm, int *op)
{
    struct cmn_http_head h;
    enum cmn_rc crc;
    enum tps_rc rc;
    const char *te;
    char xff_ip[64];

    cmn_http_head_init(&h);
    crc = cmn_http_read_request_head(c, &h);
    if (crc != CMN_OK) {
        CMN_LOG(CMN_LOG_NOTICE, "http.bad_head", NULL, "ip=%s err=\"%s\"", client_ip,
                cmn_http_conn_errmsg(c));
        rc = (crc == CMN_EPROTO || crc == CMN_ETOOBIG) ? simple(c, TPS_EBADREQ, NULL) : TPS_ECLOSED;
        goto out;
    }
    if (trust_xff && cmn_http_head_get(&h, "X-Forwarded-For") != NULL &&
        tps_lb_xff_client(cmn_http_head_get(&h, "X-Forwarded-For"), xff_ip, sizeof(xff_ip)) ==
            TPS_OK)
        client_ip = xff_ip;
    if (adm != NULL && adm->admin != NULL && tps_admin_owns_path(h.path)) {
        rc = admin_serve(adm, c, &h, client_ip);
    } else if (strcmp(h.path, "/tps/tps") == 0 || strcmp(h.path, "/nk_service") == 0) {
        struct tps_session s;

        if (strcmp(h.method, "POST") != 0) {
            rc = simple(c, TPS_EMETHOD, "POST");
            goto out;
        }
        /* Java's rule, case-insensitive: Transfer-Encoding must be exactly chunked (§1.2). */
        te = cmn_http_head_get(&h, "Transfer-Encoding");
        if (te == NULL || strcasecmp(te, "chunked") != 0 || !h.chunked) {
            CMN_LOG(CMN_LOG_NOTICE, "http.not_chunked", NULL, "ip=%s path=%s", client_ip, h.path);
            rc = simple(c, TPS_EBADREQ, NULL);
            goto out;
        }
        tps_session_init(&s, env, c, client_ip);
        s.ssl = adm != NULL ? adm->ssl : NULL; /* the officer check (gateway/officer.h) */
        rc = tps_session_run(&s);
        *op = s.op;
        tps_session_cleanup(&s);
    } else if (strcmp(h.path, "/tps/phoneHome") == 0) {
        struct cmn_buf doc;

        if (strcmp(h.method, "GET") != 0) {
            rc = simple(c, TPS_EMETHOD, "GET");
            goto out;
        }
        cmn_buf_init(&doc, 16384);
        rc = tps_phonehome_xml(env->cfg, &doc);
        if (rc == TPS_OK)
            (void)cmn_http_write_response(c, 200, NULL, "application/xml", NULL, 0, doc.data,
                                          doc.len);
        else
            (void)simple(c, rc, NULL);
        cmn_buf_cleanup(&doc);
    } else if (strcmp(h.path, "/health") == 0) {
        if (strcmp(h.method, "GET") != 0 && strcmp(h.method, "HEAD") != 0) {
            rc = simple(c, TPS_EMETHOD, "GET");
            goto out;
        }
        rc = ready ? TPS_OK : TPS_EBUSY;
        (void)cmn_http_write_response(c, ready ? 200 : 503, NULL, "text/plain", NULL, 0,
                                      ready ? "ok\n" : "not ready\n", ready ? 3 : 10);
    } else {
        rc = simple(c, TPS_ENOTFOUND, NULL);
    }
out:
    cmn_http_head_cleanup(&h);
    return rc;
}

enum tps_rc
tps_conn_serve(const struct tps_env *env, struct cmn_http_conn *c, const char *client_ip,
               bool ready)
{
    int op = -1;

    return conn_serve(env, c, client_ip, ready, false, NULL, &op);
}
