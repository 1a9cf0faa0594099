/* tests/unit/libfailover/fo_testsrv.c - loopback test clones for libfailover: a thread per
 * server accepting, a thread per connection, OpenSSL for the TLS ones; every blocking call is
 * released by shutdown() when the server goes down or stops. */
#include "fo_testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define TS_MAX_CONNS 512
#define TS_HDR_MAX 16384

struct fo_ts {
    int id;
    unsigned port;
    int lfd;
    SSL_CTX *ctx;
    pthread_t acceptor;
    bool acceptor_running;

    pthread_mutex_t lock;   /* guards conns[], nthreads, mode, delay_ms */
    pthread_cond_t idle;    /* signalled when nthreads drops */
    int conns[TS_MAX_CONNS]; /* live connection fds, -1 = free */
    unsigned nthreads;
    enum fo_ts_mode mode;
    unsigned delay_ms;

    atomic_bool stopping;
    atomic_uint requests;
    atomic_uint accepted;
    atomic_uint hits[FO_TS_MAX_IDS];
};

struct ts_conn {
    struct fo_ts *ts;
    int fd;
    int slot;
    SSL *ssl;
    char body[4096];
};

unsigned long long
fo_ts_now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000ull + (unsigned long long)t.tv_nsec / 1000000ull;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

void
fo_ts_block_sigpipe(void)
{
    sigset_t set;

    /* Writing to a connection the peer reset raises SIGPIPE in the writing thread; blocked,
     * it stays pending and write/SSL_write return an error instead. Threads created later
     * inherit the mask. */
    (void)signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int
listen_on(unsigned port, unsigned *bound)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

unsigned
fo_ts_refused_port(void)
{
    unsigned p = 0;
    int fd = listen_on(0, &p);

    if (fd >= 0)
        close(fd);
    return p;
}

/* ---- connection I/O ------------------------------------------------------------------- */

static int
c_read(struct ts_conn *c, char *buf, size_t n)
{
    if (c->ssl != NULL) {
        int r = SSL_read(c->ssl, buf, (int)n);

        return r > 0 ? r : -1;
    }
    for (;;) {
        ssize_t r = read(c->fd, buf, n);

        if (r < 0 && errno == EINTR)
            continue;
        return r > 0 ? (int)r : -1;
    }
}

static bool
c_write(struct ts_conn *c, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w;

        if (c->ssl != NULL)
            w = SSL_write(c->ssl, buf, (int)n);
        else
            w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (c->ssl == NULL && w < 0 && errno == EINTR)
                continue;
            return false;
        }
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads one request (headers, then Content-Length bytes). Returns false on EOF/error. */
static bool
read_request(struct ts_conn *c)
{
    char hdr[TS_HDR_MAX + 1];
    size_t len = 0;
    char *end = NULL, *cl;
    unsigned long body = 0;
    size_t have;

    while (end == NULL) {
        int r;

        if (len == TS_HDR_MAX)
            return false;
        r = c_read(c, hdr + len, TS_HDR_MAX - len);
        if (r <= 0)
            return false;
        len += (size_t)r;
        hdr[len] = '\0';
        end = strstr(hdr, "\r\n\r\n");
    }
    for (cl = hdr; cl < end; cl++) {
        if (strncasecmp(cl, "\r\nContent-Length:", 17) == 0) {
            body = strtoul(cl + 17, NULL, 10);
            break;
        }
    }
    if (body > sizeof(c->body) - 1)
        return false;
    have = len - (size_t)(end + 4 - hdr);
    if (have > body)
        have = body;
    memcpy(c->body, end + 4, have);
    while (have < body) {
        int r = c_read(c, c->body + have, body - have);

        if (r <= 0)
            return false;
        have += (size_t)r;
    }
    c->body[have] = '\0';
    return true;
}

static bool
respond(struct ts_conn *c, int code, const char *reason, unsigned n)
{
    char body[64], out[256];
    int bl, ol;

    bl = snprintf(body, sizeof(body), "srv=%d&n=%u", c->ts->id, n);
    ol = snprintf(out, sizeof(out),
                  "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
                  code, reason, bl, body);
    return c_write(c, out, (size_t)ol);
}

/* Waits until the peer closes or the server stops. */
static void
wait_close(struct ts_conn *c)
{
    char b[256];

    while (!atomic_load(&c->ts->stopping) && read(c->fd, b, sizeof(b)) > 0)
        ;
}

static void *
conn_main(void *arg)
{
    struct ts_conn *c = arg;
    struct fo_ts *ts = c->ts;
    enum fo_ts_mode mode;
    unsigned delay;

    fo_ts_block_sigpipe();
    pthread_mutex_lock(&ts->lock);
    mode = ts->mode;
    pthread_mutex_unlock(&ts->lock);
    if (mode == FO_TS_STALL) {
        wait_close(c);
        goto out;
    }
    if (ts->ctx != NULL) {
        c->ssl = SSL_new(ts->ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1)
            goto out;
    }
    for (;;) {
        unsigned n;

        if (!read_request(c))
            break;
        n = atomic_fetch_add(&ts->requests, 1) + 1;
        if (strncmp(c->body, "id=", 3) == 0) {
            unsigned long id = strtoul(c->body + 3, NULL, 10);

            if (id < FO_TS_MAX_IDS)
                atomic_fetch_add(&ts->hits[id], 1);
        }
        pthread_mutex_lock(&ts->lock);
        mode = ts->mode;
        delay = ts->delay_ms;
        pthread_mutex_unlock(&ts->lock);
        if (mode == FO_TS_SLOW) {
            for (unsigned t = 0; t < delay && !atomic_load(&ts->stopping); t += 5)
                sleep_ms(5);
        }
        if (mode == FO_TS_OK || mode == FO_TS_SLOW) {
            if (!respond(c, 200, "OK", n))
                break;
        } else if (mode == FO_TS_500) {
            if (!respond(c, 500, "Internal Server Error", n))
                break;
        } else if (mode == FO_TS_CODE) {
            if (!respond(c, (int)delay, "Test Status", n))
                break;
        } else if (mode == FO_TS_GARBAGE) {
            (void)c_write(c, "NOT HTTP AT ALL\r\n\r\n", 19);
            break;
        } else if (mode == FO_TS_HANG || mode == FO_TS_STALL) {
            wait_close(c);
            break;
        } else {
            break; /* FO_TS_CLOSE */
        }
    }
out:
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    pthread_mutex_lock(&ts->lock);
    ts->conns[c->slot] = -1;
    close(c->fd);
    ts->nthreads--;
    pthread_cond_broadcast(&ts->idle);
    pthread_mutex_unlock(&ts->lock);
    free(c);
    return NULL;
}

static void *
accept_main(void *arg)
{
    struct fo_ts *ts = arg;

    for (;;) {
        int fd = accept(ts->lfd, NULL, NULL), one = 1, slot = -1;
        struct ts_conn *c;
        pthread_t th;
        pthread_attr_t at;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* listener shut down */
        }
        atomic_fetch_add(&ts->accepted, 1);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        pthread_mutex_lock(&ts->lock);
        for (int i = 0; i < TS_MAX_CONNS; i++) {
            if (ts->conns[i] < 0) {
                slot = i;
                break;
            }
        }
        if (c == NULL || slot < 0 || atomic_load(&ts->stopping)) {
            pthread_mutex_unlock(&ts->lock);
            close(fd);
            free(c);
            continue;
        }
        ts->conns[slot] = fd;
        ts->nthreads++;
        pthread_mutex_unlock(&ts->lock);
        c->ts = ts;
        c->fd = fd;
        c->slot = slot;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, conn_main, c) != 0) {
            pthread_mutex_lock(&ts->lock);
            ts->conns[slot] = -1;
            ts->nthreads--;
            pthread_cond_broadcast(&ts->idle);
            pthread_mutex_unlock(&ts->lock);
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&at);
    }
}

static bool
start_acceptor(struct fo_ts *ts, unsigned port)
{
    ts->lfd = listen_on(port, &ts->port);
    if (ts->lfd < 0)
        return false;
    atomic_store(&ts->stopping, false);
    if (pthread_create(&ts->acceptor, NULL, accept_main, ts) != 0) {
        close(ts->lfd);
        ts->lfd = -1;
        return false;
    }
    ts->acceptor_running = true;
    return true;
}

/* Closes the listener and every connection and waits for every thread. */
static void
halt(struct fo_ts *ts)
{
    atomic_store(&ts->stopping, true);
    if (ts->acceptor_running) {
        shutdown(ts->lfd, SHUT_RDWR);
        pthread_join(ts->acceptor, NULL);
        close(ts->lfd);
        ts->lfd = -1;
        ts->acceptor_running = false;
    }
    pthread_mutex_lock(&ts->lock);
    for (int i = 0; i < TS_MAX_CONNS; i++) {
        if (ts->conns[i] >= 0)
            shutdown(ts->conns[i], SHUT_RDWR);
    }
    while (ts->nthreads > 0)
        pthread_cond_wait(&ts->idle, &ts->lock);
    pthread_mutex_unlock(&ts->lock);
}

struct fo_ts *
fo_ts_start(int id, unsigned port, enum fo_ts_mode mode, unsigned delay_ms,
            const struct fo_ts_tls *tls)
{
    struct fo_ts *ts = calloc(1, sizeof(*ts));

    if (ts == NULL)
        return NULL;
    fo_ts_block_sigpipe();
    ts->id = id;
    ts->mode = mode;
    ts->delay_ms = delay_ms;
    ts->lfd = -1;
    for (int i = 0; i < TS_MAX_CONNS; i++)
        ts->conns[i] = -1;
    pthread_mutex_init(&ts->lock, NULL);
    pthread_cond_init(&ts->idle, NULL);
    if (tls != NULL) {
        ts->ctx = SSL_CTX_new(TLS_server_method());
        if (ts->ctx == NULL ||
            SSL_CTX_use_certificate_chain_file(ts->ctx, tls->cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ts->ctx, tls->key_file, SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "testsrv: cannot load %s / %s\n", tls->cert_file, tls->key_file);
            goto fail;
        }
        if (tls->require_client_cert) {
            if (SSL_CTX_load_verify_locations(ts->ctx, tls->ca_file, NULL) != 1)
                goto fail;
            SSL_CTX_set_verify(ts->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
            /* clients resume sessions; OpenSSL needs a context id to resume verified ones */
            (void)SSL_CTX_set_session_id_context(ts->ctx, (const unsigned char *)"fo-ts", 5);
        }
    }
    if (!start_acceptor(ts, port)) {
        fprintf(stderr, "testsrv: cannot listen on 127.0.0.1:%u\n", port);
        goto fail;
    }
    return ts;
fail:
    SSL_CTX_free(ts->ctx);
    pthread_cond_destroy(&ts->idle);
    pthread_mutex_destroy(&ts->lock);
    free(ts);
    return NULL;
}

void
fo_ts_stop(struct fo_ts *ts)
{
    if (ts == NULL)
        return;
    halt(ts);
    SSL_CTX_free(ts->ctx);
    pthread_cond_destroy(&ts->idle);
    pthread_mutex_destroy(&ts->lock);
    free(ts);
}

unsigned
fo_ts_port(const struct fo_ts *ts)
{
    return ts->port;
}

unsigned
fo_ts_requests(const struct fo_ts *ts)
{
    return atomic_load(&((struct fo_ts *)(uintptr_t)ts)->requests);
}

unsigned
fo_ts_conns(const struct fo_ts *ts)
{
    return atomic_load(&((struct fo_ts *)(uintptr_t)ts)->accepted);
}

unsigned
fo_ts_id_hits(const struct fo_ts *ts, unsigned id)
{
    if (id >= FO_TS_MAX_IDS)
        return 0;
    return atomic_load(&((struct fo_ts *)(uintptr_t)ts)->hits[id]);
}

void
fo_ts_set_mode(struct fo_ts *ts, enum fo_ts_mode mode, unsigned delay_ms)
{
    pthread_mutex_lock(&ts->lock);
    ts->mode = mode;
    ts->delay_ms = delay_ms;
    pthread_mutex_unlock(&ts->lock);
}

void
fo_ts_down(struct fo_ts *ts)
{
    halt(ts);
}

bool
fo_ts_up(struct fo_ts *ts)
{
    for (int tries = 0; tries < 50; tries++) {
        if (start_acceptor(ts, ts->port))
            return true;
        sleep_ms(20);
    }
    return false;
}

/* ---- test PKI ------------------------------------------------------------------------- */

static char pki_dir[256];

const char *
fo_ts_path(const char *name)
{
    static char bufs[8][512];
    static atomic_uint next;
    char *b = bufs[atomic_fetch_add(&next, 1) % 8];

    snprintf(b, sizeof(bufs[0]), "%s/%s", pki_dir, name);
    return b;
}

static bool
run(const char *cmd)
{
    char full[2048];

    snprintf(full, sizeof(full), "cd '%s' && %s >>openssl.log 2>&1", pki_dir, cmd);
    if (system(full) != 0) {
        fprintf(stderr, "testsrv: failed: %s (see %s/openssl.log)\n", cmd, pki_dir);
        return false;
    }
    return true;
}

const char *
fo_ts_pki(void)
{
    const char *tmp = getenv("TMPDIR");
    static const char *const cmds[] = {
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
        " -subj /CN=fo-test-ca -keyout ca.key -out ca.crt",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout srv.key -out srv.csr",
        "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
        " -copy_extensions copyall -out srv.crt",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=tps-test"
        " -addext extendedKeyUsage=clientAuth -keyout cli.key -out cli.csr",
        "openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
        " -copy_extensions copyall -out cli.crt",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
        " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
        " -keyout rogue.key -out rogue.crt",
    };

    if (pki_dir[0] != '\0')
        return pki_dir;
    snprintf(pki_dir, sizeof(pki_dir), "%s/fo-pki.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(pki_dir) == NULL) {
        pki_dir[0] = '\0';
        return NULL;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!run(cmds[i]))
            return NULL;
    }
    return pki_dir;
}

void
fo_ts_pki_cleanup(void)
{
    char cmd[512];

    if (pki_dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "testsrv: could not remove %s\n", pki_dir);
    pki_dir[0] = '\0';
}
