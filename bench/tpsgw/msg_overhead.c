/* bench/tpsgw/msg_overhead.c - per-message overhead of tpsgw (make bench; not a test): runs
 * COUNT formats one after the other against one tpsgw, answering every TOKEN_PDU at once from
 * an in-process vtoken card, and timestamps each exchange on the client: from the moment a
 * TOKEN_PDU_RESPONSE chunk has been written to the moment the next TOKEN_PDU_REQUEST chunk has
 * been read. Exchanges whose previous command was INITIALIZE UPDATE contain the TKS call
 * (computeSessionKey) and are reported apart; login, status updates and END_OP (where the
 * LDAP calls happen) are not exchanges of two TOKEN_PDUs and are not counted. A TCP loopback
 * echo of the same size, measured in process, gives the floor the network adds.
 *
 *   msg_overhead --port P --user U --password-file F [--count N] [--cuid-base HEX8]
 * Prints the table and exits 0, or 1 when a format does not end with result=0. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/http.h"
#include "common/tpsmsg.h"
#include "tokenclient/vtoken/vtoken.h"

#define MAX_SAMPLES 200000
#define INS_INIT_UPDATE 0x50

struct samples {
    double *v;
    size_t n, cap;
};

/* gaps of exchanges without a back-end call, by the INS of the command answered */
static struct samples by_ins[256];

static double
now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void
add(struct samples *s, double v)
{
    if (s->n < s->cap)
        s->v[s->n++] = v;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
pct(const struct samples *s, unsigned p)
{
    size_t i;

    if (s->n == 0)
        return 0;
    i = (s->n * p + 99) / 100;
    return s->v[i == 0 ? 0 : i - 1];
}

static void
row(const char *what, struct samples *s)
{
    qsort(s->v, s->n, sizeof(*s->v), cmp_double);
    printf("%-44s %7zu %9.1f %9.1f %9.1f %9.1f\n", what, s->n, pct(s, 50), pct(s, 90), pct(s, 99),
           s->n ? s->v[s->n - 1] : 0.0);
}

static int
connect_local(unsigned port)
{
    struct sockaddr_in a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("msg_overhead: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* One format; adds the gaps to pure (no back-end call) or tks (after INITIALIZE UPDATE).
 * Returns the END_OP result (0 success), or -1 on an I/O or protocol error. */
static int
one_format(unsigned port, const char *user, const char *pw, struct vt_card *card,
           struct samples *pure, struct samples *tks)
{
    const struct cmn_http_hdr hdrs[] = {{"Host", "127.0.0.1"}, {"Transfer-Encoding", "chunked"}};
    struct cmn_http_limits lim = {.max_chunk = 65536, .timeout_ms = 60000};
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf out, in;
    struct cmn_tpsmsg m;
    int fd, result = -1;
    bool last = false, pdu_sent = false;
    uint8_t last_ins = 0;
    double t_sent = 0;

    fd = connect_local(port);
    if (fd < 0)
        return -1;
    cmn_buf_init(&out, 131072);
    cmn_buf_init(&in, 65536);
    cmn_tpsmsg_init(&m);
    cmn_http_head_init(&h);
    if (cmn_http_conn_new_fd(fd, &lim, &c) != CMN_OK ||
        cmn_http_write_request_head(c, "POST", "/tps/tps", hdrs, 2) != CMN_OK ||
        cmn_tpsmsg_build_begin_op(&out, CMN_TPS_OP_FORMAT, "tokenType=userKey") != CMN_OK ||
        cmn_http_write_chunk(c, out.data, out.len) != CMN_OK ||
        cmn_http_read_response_head(c, &h) != CMN_OK || h.status != 200) {
        fprintf(stderr, "msg_overhead: request failed: %s (HTTP %d)\n",
                c ? cmn_http_conn_errmsg(c) : "setup", h.status);
        goto out;
    }
    for (;;) {
        uint8_t apdu[300], resp[VT_RESP_MAX];
        size_t n, rn;
        double t_recv;

        cmn_buf_reset(&in);
        cmn_buf_reset(&out);
        if (cmn_http_read_chunk(c, &in, &last) != CMN_OK || last)
            break;
        t_recv = now_us();
        if (cmn_tpsmsg_parse_framed(&m, in.data, in.len, 0) != CMN_OK) {
            fprintf(stderr, "msg_overhead: bad message from the server: %s\n", m.err);
            break;
        }
        if (m.type == CMN_TPS_MSG_TOKEN_PDU_REQUEST && pdu_sent) {
            add(last_ins == INS_INIT_UPDATE ? tks : pure, t_recv - t_sent);
            if (last_ins != INS_INIT_UPDATE && by_ins[last_ins].v != NULL)
                add(&by_ins[last_ins], t_recv - t_sent);
        }
        pdu_sent = false;
        switch (m.type) {
        case CMN_TPS_MSG_TOKEN_PDU_REQUEST:
            if (cmn_tpsmsg_get_pdu(&m, apdu, sizeof(apdu), &n) != CMN_OK || n < 4 ||
                vt_card_transmit(card, apdu, n, resp, sizeof(resp), &rn) != CMN_OK ||
                cmn_tpsmsg_build_token_pdu_response(&out, resp, rn) != CMN_OK)
                goto out;
            last_ins = apdu[1];
            pdu_sent = true;
            break;
        case CMN_TPS_MSG_LOGIN_REQUEST:
            (void)cmn_tpsmsg_build_login_response(&out, user, pw);
            break;
        case CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST: {
            struct cmn_tps_kv kv[2] = {{"UID", user}, {"PASSWORD", pw}};
            (void)cmn_tpsmsg_build_ext_login_response(&out, kv, 2);
            break;
        }
        case CMN_TPS_MSG_STATUS_UPDATE_REQUEST: {
            unsigned long v = 0;
            (void)cmn_tpsmsg_get_uint(&m, "current_state", 100, &v);
            (void)cmn_tpsmsg_build_status_update_response(&out, (unsigned)v);
            break;
        }
        case CMN_TPS_MSG_END_OP: {
            unsigned long r = 1, msg = 0;
            (void)cmn_tpsmsg_get_uint(&m, "result", 1, &r);
            (void)cmn_tpsmsg_get_uint(&m, "message", 100, &msg);
            result = (int)r;
            if (r != 0)
                fprintf(stderr, "msg_overhead: format ended with result=%lu message=%lu\n", r, msg);
            continue;
        }
        default:
            fprintf(stderr, "msg_overhead: unexpected message type %d\n", m.type);
            goto out;
        }
        if (out.len > 0) {
            if (cmn_http_write_chunk(c, out.data, out.len) != CMN_OK)
                break;
            t_sent = now_us();
        }
    }
out:
    cmn_http_head_cleanup(&h);
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&in);
    cmn_buf_cleanup(&out);
    cmn_http_conn_free(c);
    close(fd);
    return result;
}

/* ---- the loopback floor: a TCP echo of one chunk-sized message ---- */

static void *
echo_thread(void *arg)
{
    int lfd = *(int *)arg, fd;
    char b[512];
    ssize_t n;

    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    while ((n = read(fd, b, sizeof(b))) > 0)
        if (write(fd, b, (size_t)n) != n)
            break;
    close(fd);
    return NULL;
}

static void
loopback_floor(struct samples *s, unsigned rounds)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    pthread_t th;
    char msg[96], b[512];
    int lfd, fd;

    memset(msg, 'x', sizeof(msg));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0 ||
        pthread_create(&th, NULL, echo_thread, &lfd) != 0) {
        if (lfd >= 0)
            close(lfd);
        return;
    }
    fd = connect_local(ntohs(a.sin_port));
    for (unsigned i = 0; fd >= 0 && i < rounds; i++) {
        double t0 = now_us();
        size_t got = 0;

        if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
            break;
        while (got < sizeof(msg)) {
            ssize_t n = read(fd, b, sizeof(b));
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        add(s, now_us() - t0);
    }
    if (fd >= 0)
        close(fd);
    pthread_join(th, NULL);
    close(lfd);
}

static bool
read_password(const char *file, char *out, size_t cap)
{
    FILE *f = fopen(file, "r");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"port", required_argument, NULL, 'p'},          {"user", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'w'}, {"count", required_argument, NULL, 'n'},
        {"cuid-base", required_argument, NULL, 'c'},     {NULL, 0, NULL, 0},
    };
    const char *user = "alice", *pwfile = NULL, *cuid_base = "70000000";
    unsigned long port = 0, count = 40;
    struct samples pure = {.cap = MAX_SAMPLES}, tks = {.cap = MAX_SAMPLES},
                   floor_s = {.cap = MAX_SAMPLES};
    char pw[256] = "", err[256];
    int c, failures = 0, rc = 2;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            port = strtoul(optarg, NULL, 10);
            break;
        case 'u':
            user = optarg;
            break;
        case 'w':
            pwfile = optarg;
            break;
        case 'n':
            count = strtoul(optarg, NULL, 10);
            break;
        case 'c':
            cuid_base = optarg;
            break;
        default:
            return 2;
        }
    }
    if (port == 0 || port > 65535 || pwfile == NULL || count == 0 || count > 10000 ||
        strlen(cuid_base) != 8) {
        fprintf(stderr, "usage: msg_overhead --port P --user U --password-file F [--count N "
                        "(1..10000)] [--cuid-base HEX8]\n");
        return 2;
    }
    if (!read_password(pwfile, pw, sizeof(pw))) {
        fprintf(stderr, "msg_overhead: cannot read %s\n", pwfile);
        return 2;
    }
    pure.v = calloc(MAX_SAMPLES, sizeof(double));
    tks.v = calloc(MAX_SAMPLES, sizeof(double));
    floor_s.v = calloc(MAX_SAMPLES, sizeof(double));
    if (pure.v == NULL || tks.v == NULL || floor_s.v == NULL)
        goto out;
    for (int i = 0; i < 256; i++) {
        by_ins[i].cap = MAX_SAMPLES / 16;
        by_ins[i].v = calloc(by_ins[i].cap, sizeof(double));
        if (by_ins[i].v == NULL)
            goto out;
    }
    for (unsigned long i = 0; i < count; i++) {
        struct vt_config vc;
        struct vt_card *card = NULL;
        char cuid[21];

        /* a factory card with an older applet: every format reloads the applet, so each one
         * has two secure channels and the LOAD blocks */
        vt_config_default(&vc);
        snprintf(cuid, sizeof(cuid), "40907901001F%.4s%04lX", cuid_base, i & 0xffff);
        if (vt_config_set(&vc, "cuid", cuid, err, sizeof(err)) != CMN_OK ||
            vt_config_set(&vc, "applet.version", "1.4.0000abcd", err, sizeof(err)) != CMN_OK ||
            vt_config_set(&vc, "applet.upgrade", "1.4.58768072", err, sizeof(err)) != CMN_OK ||
            vt_config_finish(&vc, err, sizeof(err)) != CMN_OK ||
            vt_card_new(&vc, &card) != CMN_OK) {
            fprintf(stderr, "msg_overhead: card: %s\n", err);
            goto out;
        }
        if (one_format((unsigned)port, user, pw, card, &pure, &tks) != 0)
            failures++;
        vt_card_close(card);
    }
    loopback_floor(&floor_s, 2000);
    printf("tpsgw per-message overhead: %lu formats in sequence (applet reload each), plain HTTP "
           "on loopback\n",
           count);
    printf("gap = TOKEN_PDU_RESPONSE written -> next TOKEN_PDU_REQUEST read, on the client (us)\n");
    printf("%-44s %7s %9s %9s %9s %9s\n", "exchanges", "n", "median", "p90", "p99", "max");
    row("no back-end call (tpsgw + loopback)", &pure);
    row("after INITIALIZE UPDATE (+ TKS call)", &tks);
    row("loopback TCP echo, 96 bytes (the floor)", &floor_s);
    if (pure.n > 0 && floor_s.n > 0) {
        double own = pct(&pure, 50) - pct(&floor_s, 50);

        printf("tpsgw's own time per message (median gap - median echo): %.1f us%s\n", own,
               own < 1.0 ? " (within the loopback round trip: below what this method resolves)"
                         : "");
    }
    printf("(a gap starts when the client's write() returns; on loopback tpsgw may already be "
           "answering on the other core, so a gap can be shorter than the echo)\n");
    printf("no-back-end exchanges by the command answered (INS):\n");
    for (int i = 0; i < 256; i++) {
        char what[64];

        if (by_ins[i].n == 0)
            continue;
        snprintf(what, sizeof(what), "  INS %02X", i);
        row(what, &by_ins[i]);
    }
    printf("formats: %lu ok, %d failed\n", count - (unsigned long)failures, failures);
    rc = failures == 0 && pure.n > 0 ? 0 : 1;
out:
    explicit_bzero(pw, sizeof(pw));
    free(pure.v);
    free(tks.v);
    free(floor_s.v);
    for (int i = 0; i < 256; i++)
        free(by_ins[i].v);
    return rc;
}
