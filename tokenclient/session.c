/* tokenclient/session.c - one token operation: a full-duplex chunked POST to the TPS
 * (tps-protocol §1), relaying APDUs to the card and answering the server's prompts. */
#include "tokenclient/tc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/apdu.h"
#include "common/http.h"
#include "common/pct.h"
#include "common/tpsmsg.h"

#define TC_MAX_CLIENT_MSG 999 /* our client keeps its messages <= 999 bytes (§1.5) */

struct url {
    bool tls;
    char host[256];
    char port[8];
    char path[512];
};

/* Splits http(s)://host[:port]/path; IPv6 hosts in brackets. */
static bool
parse_url(const char *s, struct url *u, char *err, size_t errlen)
{
    const char *p, *hend, *pstart;
    size_t hlen;

    memset(u, 0, sizeof(*u));
    if (strncmp(s, "https://", 8) == 0) {
        u->tls = true;
        p = s + 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        p = s + 7;
    } else {
        snprintf(err, errlen, "URL '%s' must start with http:// or https://", s);
        return false;
    }
    pstart = strchr(p, '/');
    if (pstart == NULL)
        pstart = p + strlen(p);
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(pstart - p));
        if (hend == NULL) {
            snprintf(err, errlen, "URL '%s': unterminated [IPv6] host", s);
            return false;
        }
        hlen = (size_t)(hend - p - 1);
        memcpy(u->host, p + 1, hlen < sizeof(u->host) ? hlen : 0);
        p = hend + 1;
    } else {
        hend = memchr(p, ':', (size_t)(pstart - p));
        if (hend == NULL)
            hend = pstart;
        hlen = (size_t)(hend - p);
        if (hlen == 0 || hlen >= sizeof(u->host)) {
            snprintf(err, errlen, "URL '%s' has no host", s);
            return false;
        }
        memcpy(u->host, p, hlen);
        p = hend;
    }
    if (*p == ':') {
        size_t plen = (size_t)(pstart - p - 1);

        if (plen == 0 || plen >= sizeof(u->port) || strspn(p + 1, "0123456789") < plen) {
            snprintf(err, errlen, "URL '%s' has a bad port", s);
            return false;
        }
        memcpy(u->port, p + 1, plen);
    } else {
        memcpy(u->port, u->tls ? "443" : "80", u->tls ? 4 : 3);
    }
    snprintf(u->path, sizeof(u->path), "%s", *pstart ? pstart : "/");
    return u->host[0] != 0;
}

/* Connects to host:port within timeout_ms; returns the socket or -1 with err set. */
static int
dial(const struct url *u, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, gai;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %.100s: %s", u->host, gai_strerror(gai));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd pfd;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
            goto next;
        pfd.fd = fd;
        pfd.events = POLLOUT;
        if (poll(&pfd, 1, timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            errno = soerr ? soerr : ETIMEDOUT;
            goto next;
        }
        (void)cmn_http_set_nodelay(fd);
        break;
    next:
        snprintf(err, errlen, "cannot connect to %.100s:%s: %.80s", u->host, u->port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* A client TLS context verifying the server against cacert (or the system store). */
static SSL_CTX *
tls_ctx(const struct tc_opts *o, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o->cacert != NULL ? SSL_CTX_load_verify_locations(ctx, o->cacert, NULL) != 1
                          : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "cannot load the CA bundle %s", o->cacert ? o->cacert : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->cert != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, o->key ? o->key : o->cert, SSL_FILETYPE_PEM) != 1)) {
        snprintf(err, errlen, "cannot load the client certificate %s / key %s", o->cert,
                 o->key ? o->key : o->cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
fail:
    snprintf(err, errlen, "TLS initialisation failed");
    return NULL;
}

/* Sends one framed message as one chunk. */
static enum tc_rc
send_msg(struct cmn_http_conn *h, struct cmn_buf *msg, struct tc_result *res)
{
    enum cmn_rc rc = cmn_http_write_chunk(h, msg->data, msg->len);

    cmn_buf_reset(msg);
    if (rc != CMN_OK) {
        snprintf(res->err, sizeof(res->err), "sending to the TPS: %s",
                 cmn_http_conn_errmsg(h)[0] ? cmn_http_conn_errmsg(h) : cmn_strerror(rc));
        res->conn_lost = true;
        return TC_ENET;
    }
    return TC_OK;
}

/* Answers a LOGIN_REQUEST or EXTENDED_LOGIN_REQUEST. */
static enum tc_rc
answer_login(struct cmn_tpsmsg *m, struct tc_ui *ui, struct cmn_buf *out)
{
    struct cmn_buf user, pw;
    unsigned long invalid = 0;
    enum tc_rc rc;

    cmn_buf_init(&user, 256);
    cmn_buf_init_secret(&pw, 256);
    (void)cmn_tpsmsg_get_uint(m, "invalid_pw", 1, &invalid);
    if (invalid)
        tc_ui_say(ui, "The user name or password was not accepted; try again.");
    if (m->type == CMN_TPS_MSG_LOGIN_REQUEST) {
        rc = tc_ui_ask(ui, "user", "User name", false, &user);
        if (rc == TC_OK)
            rc = tc_ui_ask(ui, "password", "Password", true, &pw);
        if (rc == TC_OK && cmn_tpsmsg_build_login_response(out, cmn_buf_cstr(&user),
                                                           cmn_buf_cstr(&pw)) != CMN_OK)
            rc = TC_EPROTO;
    } else {
        /* one answer per required_parameterN: id=...&name=...&type=... (§2.2) */
        struct cmn_tps_kv kv[16];
        struct cmn_buf vals[16];
        struct cmn_buf title;
        size_t n = 0;

        cmn_buf_init(&title, 512);
        if (cmn_tpsmsg_get_str(m, "title", &title) == CMN_OK)
            tc_ui_say(ui, "%s", cmn_buf_cstr(&title));
        cmn_buf_cleanup(&title);
        rc = TC_OK;
        for (size_t i = 0; i < 16 && rc == TC_OK; i++) {
            char key[32];
            struct cmn_buf spec;
            struct cmn_tpsext e;
            const char *id, *name, *type;

            snprintf(key, sizeof(key), "required_parameter%zu", i);
            cmn_buf_init(&spec, 2048);
            if (cmn_tpsmsg_get_str(m, key, &spec) != CMN_OK) {
                cmn_buf_cleanup(&spec);
                break;
            }
            cmn_tpsext_init(&e);
            /* the parameter blob has the extensions' shape: split once, no second decode */
            if (cmn_tpsext_parse(&e, cmn_buf_cstr(&spec)) != CMN_OK ||
                (id = cmn_tpsext_get(&e, "id")) == NULL || id[0] == 0) {
                rc = TC_EPROTO;
            } else {
                bool secret;
                const char *kind;

                name = cmn_tpsext_get(&e, "name");
                type = cmn_tpsext_get(&e, "type");
                secret = type != NULL && strcmp(type, "password") == 0;
                kind = strcmp(id, "UID") == 0        ? "user"
                       : strcmp(id, "PASSWORD") == 0 ? "password"
                                                     : id;
                cmn_buf_init_secret(&vals[n], 256);
                rc = tc_ui_ask(ui, kind, name && name[0] ? name : id, secret, &vals[n]);
                if (rc == TC_OK) {
                    char *copy = strdup(id);

                    kv[n].name = copy;
                    kv[n].value = cmn_buf_cstr(&vals[n]);
                    n++;
                    if (copy == NULL)
                        rc = TC_EPROTO;
                } else {
                    cmn_buf_cleanup(&vals[n]);
                }
            }
            cmn_tpsext_cleanup(&e);
            cmn_buf_cleanup(&spec);
        }
        if (rc == TC_OK && n == 0)
            rc = TC_EPROTO;
        if (rc == TC_OK && cmn_tpsmsg_build_ext_login_response(out, kv, n) != CMN_OK)
            rc = TC_EPROTO;
        for (size_t i = 0; i < n; i++) {
            free((void *)(uintptr_t)kv[i].name);
            cmn_buf_cleanup(&vals[i]);
        }
    }
    cmn_buf_cleanup(&user);
    cmn_buf_cleanup(&pw);
    return rc;
}

/* The message loop after Begin Op: one server message per chunk, one answer per message. */
static enum tc_rc
exchange(const struct tc_opts *o, struct cmn_http_conn *h, struct tc_card *card,
         struct tc_ui *ui, struct tc_result *res)
{
    struct cmn_buf chunk, out;
    struct cmn_tpsmsg m;
    enum tc_rc rc = TC_EPROTO;

    cmn_buf_init_secret(&chunk, 8192);
    cmn_buf_init_secret(&out, 4096);
    cmn_tpsmsg_init(&m);
    for (;;) {
        bool last = false;
        enum cmn_rc cr;

        cmn_buf_reset(&chunk);
        cr = cmn_http_read_chunk(h, &chunk, &last);
        if (cr != CMN_OK || last) {
            res->conn_lost = true;
            snprintf(res->err, sizeof(res->err),
                     "the connection to the TPS ended before the operation finished (%s)",
                     last ? "end of stream" : cmn_http_conn_errmsg(h));
            rc = TC_ENET;
            break;
        }
        if (cmn_tpsmsg_parse_framed(&m, chunk.data, chunk.len, CMN_TPSMSG_HARD_MAX) != CMN_OK) {
            snprintf(res->err, sizeof(res->err), "bad message from the TPS: %s", m.err);
            rc = TC_EPROTO;
            break;
        }
        switch (m.type) {
        case CMN_TPS_MSG_TOKEN_PDU_REQUEST: {
            uint8_t apdu[300], resp[CMN_RAPDU_MAX_DATA + 2];
            size_t n, got;

            if (cmn_tpsmsg_get_pdu(&m, apdu, sizeof(apdu), &n) != CMN_OK || n < 4) {
                snprintf(res->err, sizeof(res->err), "bad TOKEN_PDU from the TPS: %s", m.err);
                rc = TC_EPROTO;
                goto out;
            }
            rc = card->ops->transmit(card, apdu, n, resp, sizeof(resp), &got);
            cmn_wipe(apdu, sizeof(apdu));
            if (rc != TC_OK) {
                /* never invent a status word: close and report (§4.3) */
                snprintf(res->err, sizeof(res->err), "%s", card->err);
                goto out;
            }
            res->apdus++;
            if (got > 255 + 2) {
                snprintf(res->err, sizeof(res->err), "card answer of %zu bytes is too long to "
                         "relay", got);
                rc = TC_ECARD;
                goto out;
            }
            cr = cmn_tpsmsg_build_token_pdu_response(&out, resp, got);
            cmn_wipe(resp, sizeof(resp));
            if (cr != CMN_OK) {
                rc = TC_EPROTO;
                goto out;
            }
            break;
        }
        case CMN_TPS_MSG_LOGIN_REQUEST:
        case CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST:
            rc = answer_login(&m, ui, &out);
            if (rc != TC_OK) {
                snprintf(res->err, sizeof(res->err), "login was not completed");
                goto out;
            }
            break;
        case CMN_TPS_MSG_NEW_PIN_REQUEST: {
            unsigned long min = 4, max = 10;
            struct cmn_buf pin;

            (void)cmn_tpsmsg_get_uint(&m, "minimum_length", 255, &min);
            (void)cmn_tpsmsg_get_uint(&m, "maximum_length", 255, &max);
            cmn_buf_init_secret(&pin, 256);
            rc = tc_ui_new_pin(ui, (unsigned)min, (unsigned)max, &pin);
            if (rc == TC_OK &&
                cmn_tpsmsg_build_new_pin_response(&out, cmn_buf_cstr(&pin)) != CMN_OK)
                rc = TC_ECANCEL;
            cmn_buf_cleanup(&pin);
            if (rc != TC_OK) {
                snprintf(res->err, sizeof(res->err), "no usable new PIN was given");
                goto out;
            }
            break;
        }
        case CMN_TPS_MSG_STATUS_UPDATE_REQUEST: {
            unsigned long pct = 0;
            struct cmn_buf task;

            cmn_buf_init(&task, 128);
            (void)cmn_tpsmsg_get_uint(&m, "current_state", 100, &pct);
            (void)cmn_tpsmsg_get_str(&m, "next_task_name", &task);
            tc_ui_progress(ui, (unsigned)pct, cmn_buf_cstr(&task));
            cmn_buf_cleanup(&task);
            if (cmn_tpsmsg_build_status_update_response(&out, (unsigned)pct) != CMN_OK) {
                rc = TC_EPROTO;
                goto out;
            }
            break;
        }
        case CMN_TPS_MSG_SECUREID_REQUEST:
        case CMN_TPS_MSG_ASQ_REQUEST: {
            /* never sent by a TPS we know; answer from --param if the user gave values */
            struct cmn_buf a;

            cmn_buf_init_secret(&a, 256);
            rc = tc_ui_ask(ui, m.type == CMN_TPS_MSG_ASQ_REQUEST ? "answer" : "value",
                           m.type == CMN_TPS_MSG_ASQ_REQUEST ? "Answer" : "SecurID value", true,
                           &a);
            if (rc == TC_OK)
                cr = m.type == CMN_TPS_MSG_ASQ_REQUEST
                         ? cmn_tpsmsg_build_asq_response(&out, cmn_buf_cstr(&a))
                         : cmn_tpsmsg_build_secureid_response(&out, cmn_buf_cstr(&a), NULL);
            cmn_buf_cleanup(&a);
            if (rc != TC_OK || cr != CMN_OK)
                goto out;
            break;
        }
        case CMN_TPS_MSG_END_OP: {
            unsigned long result = 1, status = 0;

            (void)cmn_tpsmsg_get_uint(&m, "result", 1, &result);
            (void)cmn_tpsmsg_get_uint(&m, "message", 1000, &status);
            res->end_op_result = (int)result;
            res->status = (int)status;
            rc = result == 0 ? TC_OK : TC_EREFUSED;
            if (rc != TC_OK)
                snprintf(res->err, sizeof(res->err), "the TPS refused the operation: %s (%lu)",
                         cmn_tps_status_name((int)status), status);
            goto out;
        }
        default:
            snprintf(res->err, sizeof(res->err), "unexpected %s message from the TPS",
                     cmn_tps_msg_type_name(m.type));
            rc = TC_EPROTO;
            goto out;
        }
        if (out.len > TC_MAX_CLIENT_MSG + 8) {
            snprintf(res->err, sizeof(res->err), "answer too long for the protocol");
            rc = TC_EPROTO;
            goto out;
        }
        rc = send_msg(h, &out, res);
        if (rc != TC_OK)
            goto out;
    }
out:
    (void)o;
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&chunk);
    cmn_buf_cleanup(&out);
    return rc;
}

enum tc_rc
tc_session_run(const struct tc_opts *o, struct tc_card *card, struct tc_ui *ui,
               struct tc_result *res)
{
    struct cmn_http_limits lim = {.timeout_ms = o->timeout_ms, .max_chunk = 8192};
    struct cmn_http_conn *h = NULL;
    struct cmn_http_head head;
    struct cmn_buf ext, msg;
    struct url u;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char hostport[300];
    int fd;
    enum tc_rc rc = TC_ENET;

    memset(res, 0, sizeof(*res));
    res->end_op_result = -1;
    cmn_http_head_init(&head);
    cmn_buf_init(&ext, 1024);
    cmn_buf_init(&msg, 4096);
    if (!parse_url(o->url, &u, res->err, sizeof(res->err))) {
        rc = TC_EUSAGE;
        goto out_nofd;
    }
    fd = dial(&u, o->timeout_ms < 10000 ? o->timeout_ms : 10000, res->err, sizeof(res->err));
    if (fd < 0)
        goto out_nofd;
    if (u.tls) {
        ctx = tls_ctx(o, res->err, sizeof(res->err));
        ssl = ctx ? SSL_new(ctx) : NULL;
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
            SSL_set_tlsext_host_name(ssl, u.host) != 1 || SSL_set1_host(ssl, u.host) != 1 ||
            cmn_http_conn_new_ssl(ssl, &lim, &h) != CMN_OK) {
            if (res->err[0] == 0)
                snprintf(res->err, sizeof(res->err), "TLS set-up failed");
            rc = TC_EUSAGE;
            goto out;
        }
        if (cmn_http_conn_handshake(h) != CMN_OK) {
            snprintf(res->err, sizeof(res->err), "TLS handshake with %.80s:%s failed: %.60s (%.60s)",
                     u.host, u.port, cmn_http_conn_errmsg(h),
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
            goto out;
        }
    } else if (cmn_http_conn_new_fd(fd, &lim, &h) != CMN_OK) {
        goto out;
    }

    /* Begin Op with our extensions (§2.3), joined with '&' and encoded once */
    {
        struct cmn_tpsext_item items[4];
        size_t n = 0;

        if (o->token_type != NULL)
            items[n++] = (struct cmn_tpsext_item){"tokenType", o->token_type};
        items[n++] = (struct cmn_tpsext_item){"clientVersion",
                                              o->client_version ? o->client_version
                                                                : "tokenclient 1.0"};
        items[n++] = (struct cmn_tpsext_item){"statusUpdate", o->status_update ? "true" : "false"};
        if (o->extended_login)
            items[n++] = (struct cmn_tpsext_item){"extendedLoginRequest", "true"};
        if (cmn_tpsext_join(&ext, items, n) != CMN_OK ||
            cmn_tpsmsg_build_begin_op(&msg, o->op, cmn_buf_cstr(&ext)) != CMN_OK) {
            snprintf(res->err, sizeof(res->err), "cannot build Begin Op (bad --token-type?)");
            rc = TC_EUSAGE;
            goto out;
        }
    }
    snprintf(hostport, sizeof(hostport), strchr(u.host, ':') ? "[%s]:%s" : "%s:%s", u.host,
             u.port);
    {
        const struct cmn_http_hdr hdrs[] = {
            {"Host", hostport},
            {"Transfer-Encoding", "chunked"},
            {"Content-Type", "text/plain"},
        };

        /* the head, then Begin Op at once: never wait for the response head (§1.2) */
        if (cmn_http_write_request_head(h, "POST", u.path, hdrs, 3) != CMN_OK) {
            snprintf(res->err, sizeof(res->err), "cannot send to %s: %s", o->url,
                     cmn_http_conn_errmsg(h));
            goto out;
        }
    }
    rc = send_msg(h, &msg, res);
    if (rc != TC_OK)
        goto out;
    if (cmn_http_read_response_head(h, &head) != CMN_OK) {
        snprintf(res->err, sizeof(res->err), "no answer from the TPS at %s: %s", o->url,
                 cmn_http_conn_errmsg(h));
        res->conn_lost = true;
        rc = TC_ENET;
        goto out;
    }
    if (head.status != 200 || !head.chunked) {
        snprintf(res->err, sizeof(res->err),
                 "the TPS at %s answered HTTP %d%s: is this the operation URL?", o->url,
                 head.status, head.chunked ? "" : " without a chunked body");
        rc = head.status == 503 ? TC_ENET : TC_EPROTO;
        goto out;
    }
    rc = exchange(o, h, card, ui, res);
out:
    cmn_http_conn_free(h);
    if (ssl != NULL) {
        (void)SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    close(fd);
out_nofd:
    tc_ui_progress_done(ui);
    cmn_http_head_cleanup(&head);
    cmn_buf_cleanup(&ext);
    cmn_buf_cleanup(&msg);
    return rc;
}

const char *
tc_status_advice(int status)
{
    switch (status) {
    case 1: return "the server could not decode a message: retry; report it if it repeats";
    case 2: case 3: case 17: case 21:
        return "the secure channel with the card failed: the card's keys are not the ones the "
               "server expects, or the card is damaged; ask the help desk";
    case 4: case 12: return "the new PIN was not accepted or could not be set: choose another";
    case 7: case 10: return "the certificate authority refused or failed the enrollment: retry "
                            "later; if it repeats, ask the help desk";
    case 13: case 28: return "the connection was lost: check the network and retry";
    case 14: return "login failed: check your user name and password";
    case 15: case 25: case 41:
        return "the server's token database is unavailable: retry later";
    case 16: return "the server does not know this card: ask an officer to register it";
    case 18: return "the server is misconfigured: contact the administrator";
    case 19: return "the card's applet could not be updated: retry; if it repeats, the card "
                    "may be faulty";
    case 20: return "the card's keys could not be changed: retry; if it repeats, ask the help "
                    "desk";
    case 22: case 23: return "the server has no profile for this card (token type): check "
                             "--token-type or ask the administrator";
    case 26: return "this card is disabled: ask an officer";
    case 27: return "a PIN reset is not allowed for this card: ask an officer";
    case 29: case 30: case 31: case 32: case 33: case 34:
        return "the card's status does not allow this operation: ask an officer";
    case 35: return "this card has been terminated and cannot be used again";
    case 37: case 45: return "recovering or renewing your keys failed: ask the help desk";
    case 38: return "this card is reported lost: ask an officer before using it";
    case 39: return "key archival is off at the server: contact the administrator";
    case 42: return "revoking the card's certificates failed: ask the help desk";
    case 43: return "this card belongs to another user";
    default: return "the operation failed at the server: retry; if it repeats, ask the help desk";
    }
}
