/* tests/integration/tps-testclient.c - a minimal TPS client for the tpsgw integration tests
 * (until the real tokenclient exists): one operation over plain HTTP with common/http.h and
 * common/tpsmsg.h, relaying TOKEN_PDUs to an in-process vtoken card kept in a state file.
 * Fault switches make it misbehave the ways the tests need.
 *
 *   tps-testclient --port P --state FILE [--tls CAFILE] [--path /tps/tps] [--op 5] [--ext BLOB]
 *                  [--user U --password-file F] [--set key=value]... [--corrupt-mac N]
 *                  [--garbage] [--oversize]
 * Prints "END_OP operation=O result=R message=M" and exits 0 (result 0), 1 (result 1),
 * 2 (no END_OP, usage or I/O error). The password is read from a file, never from argv. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "common/http.h"
#include "common/tpsmsg.h"
#include "tokenclient/vtoken/vtoken.h"

#define MAX_SETS 16

struct opts {
    unsigned port;
    const char *path, *state, *ext, *user, *pwfile, *cafile;
    int op;
    const char *sets[MAX_SETS];
    int nsets;
    int corrupt_mac;
    bool garbage, oversize;
};

static int
connect_local(unsigned port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
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

static int
run(const struct opts *o, struct vt_card *card)
{
    const struct cmn_http_hdr hdrs[] = {{"Host", "127.0.0.1"}, {"Transfer-Encoding", "chunked"}};
    struct cmn_http_limits lim = {.max_chunk = 65536, .timeout_ms = 60000};
    struct cmn_http_conn *c = NULL;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    struct cmn_http_head h;
    struct cmn_buf out, in;
    struct cmn_tpsmsg m;
    char pw[256] = "";
    int fd, status = 2, secure = 0;
    bool last = false;
    unsigned long op = 0, result = 0, message = 0;

    if (o->pwfile != NULL && !read_password(o->pwfile, pw, sizeof(pw))) {
        fprintf(stderr, "cannot read %s\n", o->pwfile);
        return 2;
    }
    fd = connect_local(o->port);
    if (fd < 0)
        return 2;
    cmn_buf_init(&out, 131072);
    cmn_buf_init(&in, 65536);
    cmn_tpsmsg_init(&m);
    cmn_http_head_init(&h);
    if (o->cafile != NULL) {
        /* HTTPS: the server certificate must chain to CAFILE and name 127.0.0.1. */
        ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1)
            goto out;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        ssl = SSL_new(ctx);
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set1_host(ssl, "127.0.0.1") != 1 ||
            cmn_http_conn_new_ssl(ssl, &lim, &c) != CMN_OK ||
            cmn_http_conn_handshake(c) != CMN_OK) {
            fprintf(stderr, "TLS failed: %s\n", c ? cmn_http_conn_errmsg(c) : "setup");
            goto out;
        }
    } else if (cmn_http_conn_new_fd(fd, &lim, &c) != CMN_OK) {
        goto out;
    }
    if (cmn_http_write_request_head(c, "POST", o->path, hdrs, 2) != CMN_OK ||
        cmn_tpsmsg_build_begin_op(&out, o->op, o->ext) != CMN_OK ||
        cmn_http_write_chunk(c, out.data, out.len) != CMN_OK ||
        cmn_http_read_response_head(c, &h) != CMN_OK || h.status != 200) {
        fprintf(stderr, "request failed: %s (HTTP %d)\n", cmn_http_conn_errmsg(c), h.status);
        goto out;
    }
    for (;;) {
        uint8_t apdu[300], resp[VT_RESP_MAX];
        size_t n, rn;
        enum cmn_rc crc;

        cmn_buf_reset(&in);
        cmn_buf_reset(&out);
        crc = cmn_http_read_chunk(c, &in, &last);
        if (crc != CMN_OK || last)
            break;
        if (cmn_tpsmsg_parse_framed(&m, in.data, in.len, 0) != CMN_OK) {
            fprintf(stderr, "bad message from the server: %s\n", m.err);
            break;
        }
        switch (m.type) {
        case CMN_TPS_MSG_TOKEN_PDU_REQUEST:
            if (o->garbage) {
                (void)cmn_buf_puts(&out, "s=7&garbage"); /* framed, but no msg_type */
                break;
            }
            if (o->oversize) {
                for (int i = 0; i < 20000; i++)
                    (void)cmn_buf_putc(&out, 'A');
                break;
            }
            if (cmn_tpsmsg_get_pdu(&m, apdu, sizeof(apdu), &n) != CMN_OK)
                goto out;
            if (apdu[0] == 0x84 && apdu[1] != 0x82 && ++secure == o->corrupt_mac)
                apdu[n - 1] ^= 0x01; /* breaks the C-MAC */
            if (vt_card_transmit(card, apdu, n, resp, sizeof(resp), &rn) != CMN_OK ||
                cmn_tpsmsg_build_token_pdu_response(&out, resp, rn) != CMN_OK)
                goto out;
            break;
        case CMN_TPS_MSG_LOGIN_REQUEST:
            (void)cmn_tpsmsg_build_login_response(&out, o->user ? o->user : "", pw);
            break;
        case CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST: {
            struct cmn_tps_kv kv[2] = {{"UID", o->user ? o->user : ""}, {"PASSWORD", pw}};
            (void)cmn_tpsmsg_build_ext_login_response(&out, kv, 2);
            break;
        }
        case CMN_TPS_MSG_STATUS_UPDATE_REQUEST: {
            unsigned long v = 0;
            (void)cmn_tpsmsg_get_uint(&m, "current_state", 100, &v);
            printf("STATUS %lu\n", v);
            (void)cmn_tpsmsg_build_status_update_response(&out, (unsigned)v);
            break;
        }
        case CMN_TPS_MSG_END_OP:
            (void)cmn_tpsmsg_get_uint(&m, "operation", 100, &op);
            (void)cmn_tpsmsg_get_uint(&m, "result", 1, &result);
            (void)cmn_tpsmsg_get_uint(&m, "message", 100, &message);
            printf("END_OP operation=%lu result=%lu message=%lu\n", op, result, message);
            status = result == 0 ? 0 : 1;
            continue;
        default:
            fprintf(stderr, "unexpected message type %d\n", m.type);
            goto out;
        }
        if (out.len > 0 && cmn_http_write_chunk(c, out.data, out.len) != CMN_OK)
            break;
    }
out:
    memset(pw, 0, sizeof(pw));
    cmn_http_head_cleanup(&h);
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&in);
    cmn_buf_cleanup(&out);
    cmn_http_conn_free(c);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    fflush(stdout);
    return status;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, 'P'},
        {"state", required_argument, NULL, 's'},
        {"op", required_argument, NULL, 'o'},
        {"ext", required_argument, NULL, 'e'},
        {"user", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'w'},
        {"set", required_argument, NULL, 'S'},
        {"corrupt-mac", required_argument, NULL, 'c'},
        {"garbage", no_argument, NULL, 'g'},
        {"oversize", no_argument, NULL, 'O'},
        {"tls", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {.path = "/tps/tps", .op = 5, .ext = "tokenType=userKey"};
    struct vt_config vc;
    struct vt_card *card = NULL;
    char err[256];
    int c, rc;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            o.port = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'P':
            o.path = optarg;
            break;
        case 's':
            o.state = optarg;
            break;
        case 'o':
            o.op = (int)strtol(optarg, NULL, 10);
            break;
        case 'e':
            o.ext = optarg;
            break;
        case 'u':
            o.user = optarg;
            break;
        case 'w':
            o.pwfile = optarg;
            break;
        case 'S':
            if (o.nsets == MAX_SETS)
                return 2;
            o.sets[o.nsets++] = optarg;
            break;
        case 'c':
            o.corrupt_mac = (int)strtol(optarg, NULL, 10);
            break;
        case 'g':
            o.garbage = true;
            break;
        case 'O':
            o.oversize = true;
            break;
        case 'T':
            o.cafile = optarg;
            break;
        default:
            return 2;
        }
    }
    if (o.port == 0 || o.state == NULL) {
        fprintf(stderr, "usage: tps-testclient --port P --state FILE [options]\n");
        return 2;
    }
    vt_config_default(&vc);
    for (int i = 0; i < o.nsets; i++) {
        char kv[256], *eq;
        snprintf(kv, sizeof(kv), "%s", o.sets[i]);
        eq = strchr(kv, '=');
        if (eq == NULL)
            return 2;
        *eq = '\0';
        if (vt_config_set(&vc, kv, eq + 1, err, sizeof(err)) != CMN_OK) {
            fprintf(stderr, "--set %s: %s\n", kv, err);
            return 2;
        }
    }
    if (vt_config_finish(&vc, err, sizeof(err)) != CMN_OK ||
        vt_card_open(o.state, &vc, &card, err, sizeof(err)) != CMN_OK) {
        fprintf(stderr, "card: %s\n", err);
        return 2;
    }
    rc = run(&o, card);
    vt_card_close(card);
    return rc;
}
