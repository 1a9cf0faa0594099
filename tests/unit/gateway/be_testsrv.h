/* tests/unit/gateway/be_testsrv.h - a small in-process HTTP server for the CA/KRA client
 * tests: one thread per server on 127.0.0.1, plain HTTP through common/http.h, one request per
 * connection; a handler decides the answer or drops the connection after reading the request
 * (the "received, then died" fault of backends §9 R-14). Header-only (static functions). */
#ifndef BE_TESTSRV_H
#define BE_TESTSRV_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/pct.h"
#include "gateway/ca.h"

#define BE_UNUSED __attribute__((unused))

/* What the handler wants sent back. */
struct be_resp {
    int status;           /* HTTP status (200) */
    const char *ctype;    /* static string */
    struct cmn_buf body;  /* the answer */
    bool drop;            /* close the connection without answering */
};

/* Called on the server's thread with the request's path and body (NUL-terminated). */
typedef void be_handler_fn(void *arg, int srv, const char *path, const char *body, size_t len,
                           struct be_resp *resp);

struct be_srv {
    int fd;
    int index;
    uint16_t port;
    pthread_t th;
    atomic_bool stop;
    atomic_uint requests;
    be_handler_fn *fn;
    void *arg;
};

static void *
be_srv_main(void *p)
{
    struct be_srv *s = p;

    while (!atomic_load(&s->stop)) {
        struct pollfd pf = {.fd = s->fd, .events = POLLIN};
        struct cmn_http_conn *c = NULL;
        struct cmn_http_head h;
        struct cmn_buf body;
        struct be_resp r;
        int cfd;

        if (poll(&pf, 1, 50) <= 0)
            continue;
        cfd = accept(s->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        cmn_http_head_init(&h);
        cmn_buf_init(&body, 1024 * 1024);
        memset(&r, 0, sizeof(r));
        r.status = 200;
        r.ctype = "text/plain";
        cmn_buf_init(&r.body, 1024 * 1024);
        if (cmn_http_conn_new_fd(cfd, NULL, &c) == CMN_OK &&
            cmn_http_read_request_head(c, &h) == CMN_OK && cmn_http_read_body(c, &body) == CMN_OK) {
            atomic_fetch_add(&s->requests, 1);
            s->fn(s->arg, s->index, h.path, cmn_buf_cstr(&body), body.len, &r);
            if (!r.drop)
                (void)cmn_http_write_response(c, r.status, NULL, r.ctype, NULL, 0, r.body.data,
                                              r.body.len);
        }
        cmn_http_conn_free(c);
        cmn_http_head_cleanup(&h);
        cmn_buf_cleanup(&body);
        cmn_buf_cleanup(&r.body);
        close(cfd);
    }
    return NULL;
}

/* Starts server `index` on an ephemeral loopback port. Aborts the test on failure. */
BE_UNUSED static void
be_srv_start(struct be_srv *s, int index, be_handler_fn *fn, void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int one = 1;

    memset(s, 0, sizeof(*s));
    s->index = index;
    s->fn = fn;
    s->arg = arg;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
        perror("be_srv_start");
        abort();
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->th, NULL, be_srv_main, s) != 0)
        abort();
}

BE_UNUSED static void
be_srv_stop(struct be_srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    close(s->fd);
}

/* A loopback port nobody listens on (bound, then closed). */
BE_UNUSED static uint16_t
be_dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        abort();
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Form value `name` of body, form-decoded into out (NUL-terminated); false when absent. */
BE_UNUSED static bool
be_form(const char *body, size_t len, const char *name, char *out, size_t cap)
{
    const char *v;
    size_t vl, got = 0;

    if (!tps_ca_form_field(body, len, name, &v, &vl))
        return false;
    if (cmn_pct_decode_mem(v, vl, CMN_PCT_STRICT, (uint8_t *)out, cap - 1, &got) != CMN_OK)
        return false;
    out[got] = '\0';
    return true;
}

#endif
