/* gateway/session.c - the TPS message loop of one session: response head, Begin Op, dispatch
 * by operation, END_OP with the spec's status codes (tps-protocol §3.5, §4.1, §4.2), framed
 * message I/O with a deadline on every read, and TOKEN_PDU exchange with the card. */
#include "gateway/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/http.h"
#include "common/pct.h"
#include "gateway/config.h"
#include "gateway/enroll.h"
#include "gateway/pinreset.h"
#include "common/log.h"

#define MSG_OUT_MAX 4000 /* server messages stay below ESC's 4096-byte chunk buffer (§1.5) */

void
tps_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void
tps_session_init(struct tps_session *s, const struct tps_env *env, struct cmn_http_conn *http,
                 const char *client_ip)
{
    const struct tps_settings *st = tps_config_settings(env->cfg);
    uint8_t rnd[TPS_SID_LEN / 2];

    memset(s, 0, sizeof(*s));
    s->env = env;
    s->http = http;
    if (cmn_crypto_random(rnd, sizeof(rnd)) != CMN_OK)
        memset(rnd, 0, sizeof(rnd));
    tps_hex(rnd, sizeof(rnd), s->sid);
    for (char *p = s->sid; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    snprintf(s->client_ip, sizeof(s->client_ip), "%s", client_ip ? client_ip : "-");
    cmn_tpsframer_init(&s->framer, st->max_message);
    cmn_tpsext_init(&s->ext);
    s->tok.life_cycle = -1;
    s->tok.gp_proto = CMN_SCP01;
    (void)cmn_scp_init(&s->scp, CMN_SCP01);
}

void
tps_session_cleanup(struct tps_session *s)
{
    cmn_scp_cleanup(&s->scp);
    OPENSSL_cleanse(&s->srvkg, sizeof(s->srvkg));
    cmn_tpsframer_cleanup(&s->framer);
    cmn_tpsext_cleanup(&s->ext);
    OPENSSL_cleanse(s->user, sizeof(s->user));
}

enum tps_rc
tps_session_fail(struct tps_session *s, enum tps_rc rc, int status, const char *fmt, ...)
{
    va_list ap;

    if (s->fail_rc != TPS_OK)
        return rc; /* the first failure is the one the client and the audit see */
    s->fail_rc = rc == TPS_OK ? TPS_EINVAL : rc;
    s->end_status = status;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    /* A double quote would end the why="..." field of the log line early. */
    for (char *p = s->why; *p; p++)
        if (*p == '"')
            *p = '\'';
    return rc;
}

void
tps_session_clear_fail(struct tps_session *s)
{
    s->fail_rc = TPS_OK;
    s->end_status = 0;
    s->why[0] = '\0';
}

static enum tps_rc
io_fail(struct tps_session *s, enum cmn_rc crc, const char *what)
{
    const char *d = cmn_http_conn_errmsg(s->http);

    switch (crc) {
    case CMN_ETIMEDOUT:
        return tps_session_fail(s, TPS_ETIMEDOUT, CMN_TPS_STATUS_CONN_LOST,
                                "%s: client silent past the read timeout (%s)", what, d);
    case CMN_ETOOBIG:
        return tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC,
                                "%s: chunk larger than the maximum message (%s)", what, d);
    case CMN_EPROTO:
        return tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC, "%s: bad chunk (%s)", what, d);
    default:
        s->connection_dead = true;
        return tps_session_fail(s, TPS_ECLOSED, CMN_TPS_STATUS_CONN_LOST,
                                "%s: connection lost (%s: %s)", what, cmn_strerror(crc), d);
    }
}

enum tps_rc
tps_session_send(struct tps_session *s, const struct cmn_buf *msg)
{
    enum cmn_rc crc;

    if (s->connection_dead)
        return TPS_ECLOSED;
    crc = cmn_http_write_chunk(s->http, msg->data, msg->len);
    if (crc != CMN_OK) {
        s->connection_dead = true;
        return io_fail(s, crc, "send");
    }
    return TPS_OK;
}

enum tps_rc
tps_session_recv(struct tps_session *s, int want, struct cmn_tpsmsg *m)
{
    const struct tps_settings *st = tps_config_settings(s->env->cfg);
    struct cmn_buf chunk;
    enum cmn_rc crc;
    enum tps_rc rc = TPS_OK;
    bool last = false;

    /* A chunk holds at most one maximal message with its "s=<5 digits>&" prefix. */
    cmn_buf_init_secret(&chunk, (size_t)st->max_message + 8);
    for (;;) {
        crc = cmn_tpsframer_next(&s->framer, m);
        if (crc == CMN_OK)
            break;
        if (crc != CMN_ESHORT) {
            rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC, "malformed message: %s",
                                  s->framer.err);
            goto out;
        }
        if (s->connection_dead) {
            rc = TPS_ECLOSED;
            goto out;
        }
        cmn_buf_reset(&chunk);
        crc = cmn_http_read_chunk(s->http, &chunk, &last);
        if (crc != CMN_OK) {
            rc = io_fail(s, crc, "read");
            goto out;
        }
        if (last) {
            /* The client ended its body: no answer can come any more (§1.6). */
            rc = tps_session_fail(s, TPS_ECLOSED, CMN_TPS_STATUS_CONN_LOST,
                                  "client ended the request body before the operation ended");
            goto out;
        }
        crc = cmn_tpsframer_feed(&s->framer, chunk.data, chunk.len);
        if (crc != CMN_OK) {
            rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC,
                                  "client sent unsolicited data (%s)", cmn_strerror(crc));
            goto out;
        }
    }
    if (want != CMN_TPS_MSG_NONE && m->type != want) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC, "expected %s, got %s (%d)",
                              cmn_tps_msg_type_name(want), cmn_tps_msg_type_name(m->type), m->type);
        goto out;
    }
    CMN_LOG(CMN_LOG_DEBUG, "msg.in", s->sid, "type=%s", cmn_tps_msg_type_name(m->type));
out:
    cmn_buf_cleanup(&chunk);
    return rc;
}

enum tps_rc
tps_session_progress(struct tps_session *s, unsigned pct, const char *task)
{
    struct cmn_buf out;
    struct cmn_tpsmsg m;
    enum tps_rc rc;

    if (!s->status_updates)
        return TPS_OK;
    if (pct < s->progress)
        pct = s->progress; /* never decreasing (§3.6) */
    if (pct > 100)
        pct = 100;
    s->progress = pct;
    cmn_buf_init(&out, MSG_OUT_MAX);
    cmn_tpsmsg_init(&m);
    if (cmn_tpsmsg_build_status_update_request(&out, pct, task) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_SNAC, "status update %u %s", pct, task);
        goto out;
    }
    rc = tps_session_send(s, &out);
    if (rc == TPS_OK)
        rc = tps_session_recv(s, CMN_TPS_MSG_STATUS_UPDATE_RESPONSE, &m);
out:
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&out);
    return rc;
}

/* ---- card I/O ---- */

/* A readable name for a command in logs ("80 50" -> "INITIALIZE_UPDATE"). */
static const char *
apdu_name(uint8_t cla, uint8_t ins)
{
    switch (ins) {
    case 0xA4:
        return "SELECT";
    case 0xCA:
        return "GET_DATA";
    case 0x50:
        return "INITIALIZE_UPDATE";
    case 0x82:
        return "EXTERNAL_AUTHENTICATE";
    case 0xE4:
        return "DELETE";
    case 0xE6:
        return "INSTALL";
    case 0xE8:
        return "LOAD";
    case 0xD8:
        return "PUT_KEY";
    case 0x3C:
        return "GET_STATUS";
    case 0x70:
        return "GET_VERSION";
    case 0xF0:
        return "SET_LIFE_CYCLE";
    case 0xF2:
        return "GET_LIFE_CYCLE";
    case 0xF4:
        return "SET_ISSUER_INFO";
    case 0xF6:
        return "GET_ISSUER_INFO";
    default:
        return cla == 0x84 ? "SECURE_COMMAND" : "COMMAND";
    }
}

static enum tps_rc
xfer_wire(struct tps_session *s, const struct cmn_apdu *wire, struct cmn_rapdu *r)
{
    uint8_t raw[CMN_APDU_MAX_WIRE], ans[CMN_RAPDU_MAX_DATA + 2];
    size_t n, alen;
    struct cmn_buf out;
    struct cmn_tpsmsg m;
    enum tps_rc rc;
    enum cmn_rc crc;

    cmn_buf_init_secret(&out, MSG_OUT_MAX);
    cmn_tpsmsg_init(&m);
    if (cmn_apdu_encode(wire, raw, sizeof(raw), &n) != CMN_OK ||
        cmn_tpsmsg_build_token_pdu_request(&out, raw, n) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_SNAC, "cannot encode %s",
                              apdu_name(wire->cla, wire->ins));
        goto out;
    }
    rc = tps_session_send(s, &out);
    if (rc != TPS_OK)
        goto out;
    rc = tps_session_recv(s, CMN_TPS_MSG_TOKEN_PDU_RESPONSE, &m);
    if (rc != TPS_OK)
        goto out;
    crc = cmn_tpsmsg_get_pdu(&m, ans, sizeof(ans), &alen);
    if (crc == CMN_OK)
        crc = cmn_rapdu_decode(ans, alen, r);
    if (crc != CMN_OK) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC, "bad TOKEN_PDU answer: %s",
                              m.err[0] ? m.err : cmn_strerror(crc));
        goto out;
    }
    CMN_LOG(
        CMN_LOG_DEBUG, "apdu", s->sid, "cmd=%s cla=%02X ins=%02X p1=%02X p2=%02X lc=%zu sw=%04X",
        apdu_name(wire->cla, wire->ins), wire->cla, wire->ins, wire->p1, wire->p2, wire->lc, r->sw);
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(ans, sizeof(ans));
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&out);
    return rc;
}

enum tps_rc
tps_card_xfer(struct tps_session *s, const struct cmn_apdu *a, struct cmn_rapdu *r)
{
    enum tps_rc rc = xfer_wire(s, a, r);

    /* A successful SELECT makes the card close its secure channel (card spec §4.6). */
    if (rc == TPS_OK && a->ins == 0xA4 && r->sw == 0x9000)
        tps_channel_close(s);
    return rc;
}

enum tps_rc
tps_card_xfer_secure(struct tps_session *s, const struct cmn_apdu *plain, struct cmn_rapdu *r)
{
    struct cmn_apdu wire;
    enum cmn_rc crc;
    enum tps_rc rc;

    if (!s->channel_open)
        return tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_SECURE_CHANNEL,
                                "%s needs a secure channel", apdu_name(0x84, plain->ins));
    crc = cmn_scp_wrap(&s->scp, plain, &wire);
    if (crc != CMN_OK) {
        OPENSSL_cleanse(&wire, sizeof(wire));
        return tps_session_fail(s, TPS_ECRYPTO, CMN_TPS_STATUS_SECURE_CHANNEL, "cannot wrap %s: %s",
                                apdu_name(0x84, plain->ins), cmn_strerror(crc));
    }
    rc = xfer_wire(s, &wire, r);
    OPENSSL_cleanse(&wire, sizeof(wire));
    /* The card ends its session on a MAC or decryption failure (card spec §4.6 item 3).
     * 6A88 is not one: it is also "referenced data not found", e.g. DELETE of an absent AID. */
    if (rc == TPS_OK && r->sw == 0x6982)
        tps_channel_close(s);
    return rc;
}

enum tps_rc
tps_card_select(struct tps_session *s, const uint8_t *aid, size_t n, struct cmn_rapdu *r)
{
    struct cmn_apdu a = {.cla = 0x00, .ins = 0xA4, .p1 = 0x04, .p2 = 0x00, .le = 0};

    if (n > 16)
        return TPS_EINVAL;
    memcpy(a.data, aid, n);
    a.lc = n;
    return tps_card_xfer(s, &a, r);
}

/* ---- the operation ---- */

static enum tps_rc
send_end_op(struct tps_session *s, int op, int result, int status)
{
    struct cmn_buf out;
    enum tps_rc rc;

    cmn_buf_init(&out, MSG_OUT_MAX);
    if (cmn_tpsmsg_build_end_op(&out, op, result, status) != CMN_OK)
        rc = TPS_EINVAL;
    else
        rc = tps_session_send(s, &out);
    cmn_buf_cleanup(&out);
    return rc;
}

static enum tps_rc
begin_op(struct tps_session *s)
{
    struct cmn_tpsmsg m;
    unsigned long op = 0;
    enum tps_rc rc;

    cmn_tpsmsg_init(&m);
    rc = tps_session_recv(s, CMN_TPS_MSG_BEGIN_OP, &m);
    if (rc != TPS_OK)
        goto out;
    if (cmn_tpsmsg_get_uint(&m, "operation", 1000, &op) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC, "Begin Op: %s", m.err);
        goto out;
    }
    s->op = (int)op;
    if (cmn_tpsext_parse(&s->ext, cmn_tpsmsg_raw(&m, "extensions")) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_SNAC, "Begin Op extensions: %s",
                              s->ext.err);
        goto out;
    }
    s->status_updates = cmn_tpsext_is_true(&s->ext, "statusUpdate");
out:
    cmn_tpsmsg_cleanup(&m);
    return rc;
}

enum tps_rc
tps_session_run(struct tps_session *s)
{
    const struct tps_settings *st = tps_config_settings(s->env->cfg);
    const struct cmn_http_hdr hdrs[] = {
        {"Content-Type", "text/plain"},
        {"Transfer-Encoding", "chunked"},
        {"Connection", "close"},
    };
    const char *client;
    int echo_op, result;
    enum tps_rc rc;
    enum cmn_rc crc;

    /* The head goes out at once: clients send Begin Op without waiting for it (§1.2). */
    crc = cmn_http_write_response_head(s->http, 200, NULL, hdrs, 3);
    if (crc != CMN_OK) {
        CMN_LOG(CMN_LOG_NOTICE, "session.lost", s->sid, "ip=%s err=\"%s\"", s->client_ip,
                cmn_http_conn_errmsg(s->http));
        return TPS_ECLOSED;
    }
    /* Clients send Begin Op with (or right after) the head: it gets the head's deadline, so an
     * idle connection cannot hold a worker for the whole read timeout. */
    cmn_http_conn_set_timeout(s->http, (int)st->head_timeout_ms);
    rc = begin_op(s);
    cmn_http_conn_set_timeout(s->http, (int)st->read_timeout_ms);
    if (rc != TPS_OK) {
        /* No Begin Op: close without End Op (§4.2). */
        CMN_LOG(CMN_LOG_WARN, "session.no_begin_op", s->sid, "ip=%s rc=%s why=\"%s\"", s->client_ip,
                tps_strerror(rc), s->why);
        (void)cmn_http_write_last_chunk(s->http);
        return rc;
    }
    client = cmn_tpsext_get(&s->ext, "clientVersion");
    CMN_LOG(CMN_LOG_INFO, "session.begin", s->sid, "ip=%s op=%s client=\"%s\" status_updates=%d",
            s->client_ip, cmn_tps_op_name(s->op), client ? client : "-", s->status_updates);

    echo_op = s->op;
    switch (s->op) {
    case CMN_TPS_OP_FORMAT:
        rc = tps_op_format(s);
        break;
    case CMN_TPS_OP_UNBLOCK:
    case CMN_TPS_OP_RENEW:
        /* Implemented by neither Dogtag server; ours answers like Java (§3.5). */
        rc = tps_session_fail(s, TPS_EUNSUPP, CMN_TPS_STATUS_NO_ERROR,
                              "operation %s is not a protocol operation", cmn_tps_op_name(s->op));
        break;
    case CMN_TPS_OP_ENROLL:
    case CMN_TPS_OP_RESET_PIN:
        if (s->env->enroll == NULL)
            rc = tps_session_fail(s, TPS_EUNSUPP, CMN_TPS_STATUS_READ_OBJECT_PDU,
                                  "operation %s: no enrollment backends in this process",
                                  cmn_tps_op_name(s->op));
        else if (s->op == CMN_TPS_OP_ENROLL)
            rc = tps_enroll_run(s, s->env->enroll);
        else
            rc = tps_pinreset_run(s, s->env->enroll);
        break;
    default:
        echo_op = CMN_TPS_OP_UNKNOWN; /* operation=0&result=1&message=0 (§3.5) */
        rc = tps_session_fail(s, TPS_EUNSUPP, CMN_TPS_STATUS_NO_ERROR, "unknown operation %d",
                              s->op);
        break;
    }
    if (rc == TPS_OK && s->fail_rc != TPS_OK)
        rc = s->fail_rc;

    result = rc == TPS_OK ? CMN_TPS_RESULT_SUCCESS : CMN_TPS_RESULT_FAILURE;
    if (cmn_audit("op.end", s->sid,
                  "op=%s cuid=%s user=%s officer=%s type=%s ip=%s result=%s status=%d "
                  "why=\"%s\"",
                  cmn_tps_op_name(s->op), s->tok.have_cuid ? s->tok.cuid_hex : "-",
                  s->user[0] ? s->user : "-", s->officer[0] ? s->officer : "-",
                  s->tok.type[0] ? s->tok.type : "-", s->client_ip,
                  result == 0 ? "success" : "failure", result == 0 ? 0 : s->end_status,
                  s->why) != CMN_OK &&
        result == CMN_TPS_RESULT_SUCCESS) {
        /* An operation that cannot be audited did not succeed (STYLE §6). */
        rc = tps_session_fail(s, TPS_EIO, CMN_TPS_STATUS_SNAC, "audit log not writable");
        result = CMN_TPS_RESULT_FAILURE;
    }
    CMN_LOG(result == 0 ? CMN_LOG_INFO : CMN_LOG_WARN, "session.end", s->sid,
            "ip=%s op=%s cuid=%s result=%d status=%d rc=\"%s\" why=\"%s\"", s->client_ip,
            cmn_tps_op_name(s->op), s->tok.have_cuid ? s->tok.cuid_hex : "-", result,
            result == 0 ? 0 : s->end_status, tps_strerror(rc), s->why);
    if (!s->connection_dead) {
        /* END_OP always while the client is connected (§4.2), then the last chunk (§1.6). */
        if (send_end_op(s, echo_op, result, result == 0 ? 0 : s->end_status) == TPS_OK)
            (void)cmn_http_write_last_chunk(s->http);
    }
    return rc;
}
