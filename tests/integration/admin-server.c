/* tests/integration/admin-server.c - the admin API and console on their own, for the
 * integration and browser tests until tpsgw routes /tps/rest and /tps/ui: a loopback HTTPS
 * listener that asks for a client certificate (verified against --client-ca), a few worker
 * threads each with its own admin worker handle, the token DB and CA connector of a
 * CS.cfg-style file.
 *   admin-server --config FILE --port N --cert PEM --key PEM --client-ca PEM
 * The configuration holds tps.instanceId, log.audit.file, tokendb.* (as tpsgw), tps.admin.*
 * and conn.ca1.* / op.enroll.* (gateway/ca.h). Prints "listening on PORT" when ready. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libfailover/failover.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/http.h"
#include "common/log.h"
#include "gateway/admin.h"
#include "gateway/admin_setup.h"
#include "gateway/ca.h"
#include "gateway/tokendb.h"

#define NWORKERS 4

/* The keys of this program besides the admin and CA tables (names as tpsgw's). */
static const struct cmn_cfg_key server_keys[] = {
    {.name = "tps.instanceId", .type = CFG_STR, .defstr = "tps1"},
    {.name = "log.audit.file", .type = CFG_PATH, .required = true},
    {.name = "log.level", .type = CFG_STR, .defstr = "info"},
    {.name = "tokendb.hostport", .type = CFG_STR, .required = true},
    {.name = "tokendb.bindDN", .type = CFG_STR, .defstr = ""},
    {.name = "tokendb.bindPassword_file", .type = CFG_SECRET_FILE},
    {.name = "tokendb.baseDN", .type = CFG_STR, .required = true},
    {.name = "tokendb.certBaseDN", .type = CFG_STR, .required = true},
    {.name = "tokendb.activityBaseDN", .type = CFG_STR, .required = true},
    {.name = "tokendb.allowedTransitions", .type = CFG_STR, .defstr = ""},
    {.name = "tokendb.opTimeout", .type = CFG_UINT, .min = 100, .max = 600000, .def = 5000},
    {.name = "tokendb.networkTimeout", .type = CFG_UINT, .min = 100, .max = 600000, .def = 3000},
    {0},
};

struct server {
    int lfd;
    SSL_CTX *ctx;
    const char *instance;
    struct tps_admin_stack *stack;
};

static void
fingerprint(X509 *x, char *out, size_t cap)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    out[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &n) != 1)
        return;
    for (unsigned i = 0; i < n && 2 * i + 2 < cap; i++)
        snprintf(out + 2 * i, cap - 2 * i, "%02x", md[i]);
}

static void
subject_text(X509 *x, char *out, size_t cap)
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

/* Serves one accepted connection. */
static void
serve(struct server *s, struct tps_admin_worker *w, int fd, const char *ip)
{
    SSL *ssl = SSL_new(s->ctx);
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_http_limits lim = {.timeout_ms = 10000};
    struct tps_admin_peer peer = {0};
    X509 *cert = NULL;
    char fp[2 * EVP_MAX_MD_SIZE + 1], subj[1024];

    cmn_http_head_init(&h);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
        goto out;
    SSL_set_accept_state(ssl);
    if (cmn_http_conn_new_ssl(ssl, &lim, &c) != CMN_OK)
        goto out;
    ERR_clear_error();
    if (cmn_http_conn_handshake(c) != CMN_OK) {
        CMN_LOG(CMN_LOG_INFO, "tls.handshake", NULL, "ip=%s err=%s", ip,
                cmn_http_conn_errmsg(c));
        goto out;
    }
    if (cmn_http_read_request_head(c, &h) != CMN_OK)
        goto out;
    cert = SSL_get1_peer_certificate(ssl);
    peer.client_ip = ip;
    peer.instance = s->instance;
    if (cert != NULL && SSL_get_verify_result(ssl) == X509_V_OK) {
        fingerprint(cert, fp, sizeof(fp));
        subject_text(cert, subj, sizeof(subj));
        peer.cert = cert;
        peer.fingerprint = fp;
        peer.subject = subj;
    }
    if (tps_admin_owns_path(h.path)) {
        (void)tps_admin_handle(s->stack->admin, w, c, &h, &peer);
    } else {
        static const char msg[] = "not found\n";
        (void)cmn_http_write_response(c, 404, NULL, "text/plain", NULL, 0, msg, sizeof(msg) - 1);
    }
    SSL_shutdown(ssl);
out:
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    X509_free(cert);
    SSL_free(ssl);
    close(fd);
}

static void *
worker_main(void *arg)
{
    struct server *s = arg;
    struct tps_admin_worker *w = NULL;
    char err[512] = "";

    if (tps_admin_worker_open(s->stack->admin, &w, err, sizeof(err)) != TPS_OK) {
        fprintf(stderr, "admin-server: worker: %s\n", err);
        exit(1);
    }
    for (;;) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        char ip[64];
        int fd = accept(s->lfd, (struct sockaddr *)&sa, &sl);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        if (inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip)) == NULL)
            snprintf(ip, sizeof(ip), "?");
        serve(s, w, fd, ip);
    }
    tps_admin_worker_close(w);
    return NULL;
}

static int
usage(void)
{
    fprintf(stderr, "usage: admin-server --config FILE --port N --cert PEM --key PEM "
                    "--client-ca PEM\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *config = NULL, *certf = NULL, *keyf = NULL, *caf = NULL;
    unsigned long long port = 0;
    const struct cmn_cfg_key *const tables[] = {server_keys, tps_admin_cfg_keys,
                                                tps_ca_cfg_keys, NULL};
    struct cmn_cfg *cfg = NULL;
    struct cmn_buf errs;
    struct tps_ldap_target_conf lt;
    struct tps_tokendb_conf tc;
    struct tps_tokendb_cfg *tdb = NULL;
    struct tps_ca *ca = NULL;
    struct server s;
    struct sockaddr_in sa;
    pthread_t th[NWORKERS];
    char err[1024] = "";
    int one = 1;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--config") == 0)
            config = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0) {
            if (cmn_parse_uint(argv[i + 1], 1, 65535, &port) != CMN_OK)
                return usage();
        } else if (strcmp(argv[i], "--cert") == 0)
            certf = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            keyf = argv[i + 1];
        else if (strcmp(argv[i], "--client-ca") == 0)
            caf = argv[i + 1];
        else
            return usage();
    }
    if (config == NULL || port == 0 || certf == NULL || keyf == NULL || caf == NULL)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    cmn_buf_init(&errs, 65536);
    if (cmn_cfg_load(config, tables, &cfg, &errs) != CMN_OK) {
        fprintf(stderr, "admin-server: %s", cmn_buf_cstr(&errs));
        return 1;
    }
    cmn_buf_cleanup(&errs);
    {
        enum cmn_log_level lvl = CMN_LOG_INFO;
        (void)cmn_log_level_parse(cmn_cfg_str(cfg, "log.level"), &lvl);
        cmn_log_open(NULL, lvl);
    }
    if (cmn_audit_open(cmn_cfg_str(cfg, "log.audit.file"), false) != CMN_OK) {
        fprintf(stderr, "admin-server: cannot open the audit log\n");
        return 1;
    }
    if (tps_ldap_global_init() != 0 || fo_global_init() != FO_OK) {
        fprintf(stderr, "admin-server: library init failed\n");
        return 1;
    }
    memset(&lt, 0, sizeof(lt));
    lt.hostport = cmn_cfg_str(cfg, "tokendb.hostport");
    lt.bind_dn = cmn_cfg_str(cfg, "tokendb.bindDN");
    lt.bind_pw_file = cmn_cfg_str(cfg, "tokendb.bindPassword_file");
    lt.op_timeout_ms = (unsigned)cmn_cfg_uint(cfg, "tokendb.opTimeout");
    lt.network_timeout_ms = (unsigned)cmn_cfg_uint(cfg, "tokendb.networkTimeout");
    memset(&tc, 0, sizeof(tc));
    tc.ldap = lt;
    tc.base_dn = cmn_cfg_str(cfg, "tokendb.baseDN");
    tc.cert_base_dn = cmn_cfg_str(cfg, "tokendb.certBaseDN");
    tc.activity_base_dn = cmn_cfg_str(cfg, "tokendb.activityBaseDN");
    tc.instance_id = cmn_cfg_str(cfg, "tps.instanceId");
    tc.allowed_transitions = cmn_cfg_str(cfg, "tokendb.allowedTransitions");
    if (tc.allowed_transitions != NULL && tc.allowed_transitions[0] == '\0')
        tc.allowed_transitions = NULL;
    if (tps_tokendb_cfg_new(&tc, &tdb, err, sizeof(err)) != TPS_TDB_OK) {
        fprintf(stderr, "admin-server: tokendb: %s\n", err);
        return 1;
    }
    if (cmn_cfg_str(cfg, "conn.ca1.hostport") != NULL &&
        tps_ca_new(cfg, cmn_cfg_str(cfg, "tps.admin.ca.conn"), &ca, err, sizeof(err)) != TPS_OK) {
        fprintf(stderr, "admin-server: CA: %s\n", err);
        return 1;
    }
    memset(&s, 0, sizeof(s));
    s.instance = cmn_cfg_str(cfg, "tps.instanceId");
    if (tps_admin_stack_new(cfg, tdb, ca, &s.stack, err, sizeof(err)) != TPS_OK) {
        fprintf(stderr, "admin-server: %s\n", err);
        return 1;
    }
    s.ctx = SSL_CTX_new(TLS_server_method());
    if (s.ctx == NULL || SSL_CTX_use_certificate_chain_file(s.ctx, certf) != 1 ||
        SSL_CTX_use_PrivateKey_file(s.ctx, keyf, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(s.ctx, caf, NULL) != 1) {
        fprintf(stderr, "admin-server: TLS setup failed\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_min_proto_version(s.ctx, TLS1_2_VERSION);
    /* Ask for a certificate; without one the API answers 401 (the console still loads). */
    SSL_CTX_set_verify(s.ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_client_CA_list(s.ctx, SSL_load_client_CA_file(caf));
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s.lfd < 0 || setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s.lfd, 64) != 0) {
        fprintf(stderr, "admin-server: cannot listen on 127.0.0.1:%llu: %s\n", port,
                strerror(errno));
        return 1;
    }
    for (int i = 0; i < NWORKERS; i++)
        if (pthread_create(&th[i], NULL, worker_main, &s) != 0) {
            fprintf(stderr, "admin-server: cannot start workers\n");
            return 1;
        }
    fprintf(stderr, "admin-server: instance %s listening on %llu\n", s.instance, port);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(th[i], NULL);
    return 0;
}
