/* tests/unit/gateway/test_session.c - the TPS session state machine end to end over a
 * socketpair: the test plays the client (chunked HTTP, one message per chunk) and relays
 * TOKEN_PDUs to an in-process vtoken card; the TKS, authenticator and token DB are in-process
 * fakes. Covers format (SCP01 with applet upgrade, SCP02, SCP03), login retries, and every
 * failure path's END_OP status (tps-protocol §4.1/§4.2). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "common/http.h"
#include "common/tpsmsg.h"
#include "gateway/server.h"
#include "gw_fixture.h"
#include "tokenclient/vtoken/vtoken.h"

struct world {
    struct gw_fix fix;
    struct gw_tks tks_state;
    struct gw_auth auth_state;
    struct gw_db db_state;
    struct tps_tks *tks;
    struct tps_env env;
};

struct client {
    struct vt_card *card;
    int op;
    const char *ext;
    const char *user, *pw;
    int corrupt_secure_n; /* flip the C-MAC of the n-th CLA 84 command after EXT AUTH */
    int secure_seen;
    bool send_garbage, send_oversize, stay_silent, no_chunked;
    /* results */
    int logins, ext_logins, invalid_pw_prompts;
    unsigned progress[128];
    int nprogress;
    bool got_end, got_last;
    int end_op, end_result, end_status;
};

struct srv_arg {
    const struct tps_env *env;
    int fd;
    enum tps_rc rc;
};

static void *
srv_main(void *p)
{
    struct srv_arg *a = p;
    struct cmn_http_limits lim = {.max_chunk = 9999 + 8, .timeout_ms = 5000};
    struct cmn_http_conn *c = NULL;

    if (cmn_http_conn_new_fd(a->fd, &lim, &c) == CMN_OK)
        a->rc = tps_conn_serve(a->env, c, "127.0.0.1", true);
    cmn_http_conn_free(c);
    close(a->fd);
    return NULL;
}

static int
world_setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct cmn_key shared;
    char audit[400];

    gw_fix_init(&w->fix);
    *state = w;
    snprintf(audit, sizeof(audit), "%s/audit.log", w->fix.dir);
    assert_int_equal(cmn_audit_open(audit, false), CMN_OK);
    (void)cmn_key_set(&shared, CMN_KEY_AES, gw_shared_raw, 16);
    assert_int_equal(
        tps_tks_new_custom("tks1", &shared, "defKeySet", gw_tks_post, &w->tks_state, &w->tks),
        TPS_OK);
    w->env.tks = w->tks;
    w->env.auth_ops = &gw_auth_ops;
    w->env.auth = &w->auth_state;
    w->env.db_ops = &gw_db_ops;
    w->env.db = &w->db_state;
    return 0;
}

static int
world_teardown(void **state)
{
    struct world *w = *state;

    cmn_audit_close();
    tps_tks_free(w->tks);
    gw_fix_cleanup(&w->fix);
    free(w);
    return 0;
}

static void
world_load(struct world *w, const char *extra)
{
    struct cmn_buf errs;

    cmn_buf_init(&errs, 65536);
    if (gw_fix_load(&w->fix, extra, &errs) != TPS_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    cmn_buf_cleanup(&errs);
    w->env.cfg = w->fix.cfg;
}

static struct vt_card *
make_card(const char *const *settings)
{
    struct vt_config vc;
    struct vt_card *card = NULL;
    char err[256];

    vt_config_default(&vc);
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i += 2)
        if (vt_config_set(&vc, settings[i], settings[i + 1], err, sizeof(err)) != CMN_OK)
            fail_msg("vt_config_set %s: %s", settings[i], err);
    assert_int_equal(vt_config_finish(&vc, err, sizeof(err)), CMN_OK);
    assert_int_equal(vt_card_new(&vc, &card), CMN_OK);
    return card;
}

static void
send_msg(struct cmn_http_conn *c, struct cmn_buf *b)
{
    assert_int_equal(cmn_http_write_chunk(c, b->data, b->len), CMN_OK);
    cmn_buf_reset(b);
}

/* Answers one server message; false when the exchange is over for the client. */
static bool
answer(struct client *cl, struct cmn_http_conn *c, struct cmn_tpsmsg *m, struct cmn_buf *out)
{
    uint8_t apdu[300], resp[VT_RESP_MAX];
    size_t n, rn;
    unsigned long v = 0;

    switch (m->type) {
    case CMN_TPS_MSG_TOKEN_PDU_REQUEST:
        assert_int_equal(cmn_tpsmsg_get_pdu(m, apdu, sizeof(apdu), &n), CMN_OK);
        if (cl->send_garbage) {
            (void)cmn_buf_puts(out, "s=7&garbage");
            send_msg(c, out);
            cl->send_garbage = false;
            return true;
        }
        if (cl->send_oversize) {
            for (int i = 0; i < 12000; i++)
                (void)cmn_buf_putc(out, 'A');
            (void)cmn_http_write_chunk(c, out->data, out->len);
            cmn_buf_reset(out);
            cl->send_oversize = false;
            return true;
        }
        if (cl->stay_silent)
            return true;
        if (apdu[0] == 0x84 && apdu[1] != 0x82 && ++cl->secure_seen == cl->corrupt_secure_n)
            apdu[n - 1] ^= 0x01; /* the last byte is part of the C-MAC */
        assert_int_equal(vt_card_transmit(cl->card, apdu, n, resp, sizeof(resp), &rn), CMN_OK);
        assert_int_equal(cmn_tpsmsg_build_token_pdu_response(out, resp, rn), CMN_OK);
        send_msg(c, out);
        return true;
    case CMN_TPS_MSG_LOGIN_REQUEST:
        cl->logins++;
        if (cmn_tpsmsg_get_uint(m, "invalid_pw", 1, &v) == CMN_OK && v == 1)
            cl->invalid_pw_prompts++;
        assert_int_equal(cmn_tpsmsg_build_login_response(out, cl->user, cl->pw), CMN_OK);
        send_msg(c, out);
        return true;
    case CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST: {
        struct cmn_tps_kv kv[2] = {{"UID", cl->user}, {"PASSWORD", cl->pw}};
        cl->ext_logins++;
        if (cmn_tpsmsg_get_uint(m, "invalid_pw", 1, &v) == CMN_OK && v == 1)
            cl->invalid_pw_prompts++;
        assert_non_null(cmn_tpsmsg_raw(m, "required_parameter0"));
        assert_int_equal(cmn_tpsmsg_build_ext_login_response(out, kv, 2), CMN_OK);
        send_msg(c, out);
        return true;
    }
    case CMN_TPS_MSG_STATUS_UPDATE_REQUEST:
        assert_int_equal(cmn_tpsmsg_get_uint(m, "current_state", 100, &v), CMN_OK);
        if (cl->nprogress < 128)
            cl->progress[cl->nprogress++] = (unsigned)v;
        assert_int_equal(cmn_tpsmsg_build_status_update_response(out, (unsigned)v), CMN_OK);
        send_msg(c, out);
        return true;
    case CMN_TPS_MSG_END_OP:
        cl->got_end = true;
        assert_int_equal(cmn_tpsmsg_get_uint(m, "operation", 100, &v), CMN_OK);
        cl->end_op = (int)v;
        assert_int_equal(cmn_tpsmsg_get_uint(m, "result", 1, &v), CMN_OK);
        cl->end_result = (int)v;
        assert_int_equal(cmn_tpsmsg_get_uint(m, "message", 100, &v), CMN_OK);
        cl->end_status = (int)v;
        return true;
    default:
        fail_msg("unexpected message type %d", m->type);
    }
    return false;
}

/* Runs one TPS exchange; returns the server's rc. */
static enum tps_rc
run(struct world *w, struct client *cl)
{
    const struct cmn_http_hdr hdrs[] = {{"Host", "tps.example.org:7888"},
                                        {"Transfer-Encoding", "chunked"}};
    struct cmn_http_limits lim = {.max_chunk = 65536, .timeout_ms = 10000};
    struct srv_arg sa = {.env = &w->env};
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf out, in;
    struct cmn_tpsmsg m;
    pthread_t th;
    int sv[2];
    bool last = false;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sa.fd = sv[0];
    assert_int_equal(pthread_create(&th, NULL, srv_main, &sa), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[1], &lim, &c), CMN_OK);
    cmn_buf_init(&out, 65536);
    cmn_buf_init(&in, 65536);
    cmn_tpsmsg_init(&m);
    cmn_http_head_init(&h);
    assert_int_equal(cmn_http_write_request_head(c, "POST", "/tps/tps", hdrs, 2), CMN_OK);
    if (cl->op > CMN_TPS_OP_FORMAT) {
        /* the builder refuses unknown operations: write it by hand */
        char body[64];
        int n = snprintf(body, sizeof(body), "msg_type=2&operation=%d", cl->op);
        (void)cmn_buf_printf(&out, "s=%d&%s", n, body);
    } else {
        assert_int_equal(cmn_tpsmsg_build_begin_op(&out, cl->op, cl->ext), CMN_OK);
    }
    send_msg(c, &out);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    assert_int_equal(h.status, 200);
    assert_true(h.chunked);
    while (!cl->got_last) {
        cmn_buf_reset(&in);
        if (cmn_http_read_chunk(c, &in, &last) != CMN_OK)
            break;
        if (last) {
            cl->got_last = true;
            break;
        }
        if (cmn_tpsmsg_parse_framed(&m, in.data, in.len, 0) != CMN_OK)
            fail_msg("server sent a bad message: %s", m.err);
        assert_true(in.len < 4096); /* §1.5 */
        (void)answer(cl, c, &m, &out);
    }
    cmn_http_conn_free(c);
    close(sv[1]);
    pthread_join(th, NULL);
    cmn_http_head_cleanup(&h);
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&in);
    cmn_buf_cleanup(&out);
    return sa.rc;
}

/* GET ISSUER INFO straight from the card. */
static void
card_issuer_info(struct vt_card *card, uint8_t out[224])
{
    static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0x62,
                                  0x76, 0x01, 0xFF, 0x00, 0x00, 0x00};
    static const uint8_t gii[] = {0xB0, 0xF6, 0x00, 0x00, 0xE0};
    uint8_t r[VT_RESP_MAX];
    size_t n;

    assert_int_equal(vt_card_transmit(card, sel, sizeof(sel), r, sizeof(r), &n), CMN_OK);
    assert_int_equal(vt_card_transmit(card, gii, sizeof(gii), r, sizeof(r), &n), CMN_OK);
    assert_int_equal(n, 226);
    assert_int_equal(r[224] << 8 | r[225], 0x9000);
    memcpy(out, r, 224);
}

static void
test_session_format_scp01_applet_upgrade(void **state)
{
    struct world *w = *state;
    const char *const cs[] = {"applet.version", "1.4.0000abcd", "applet.upgrade", "1.4.58768072",
                              NULL};
    struct client cl = {.op = 5,
                        .user = "jdoe",
                        .pw = "Secret.123",
                        .ext = "tokenType=userKey&clientVersion=test&statusUpdate=true"};
    uint8_t ii[224];
    const char *want = "https://lb.example.org:7889/tps/phoneHome?c=40907901001F12345678";

    world_load(w, NULL);
    cl.card = make_card(cs);
    assert_int_equal(run(w, &cl), TPS_OK);
    assert_true(cl.got_end);
    assert_true(cl.got_last);
    assert_int_equal(cl.end_op, 5);
    assert_int_equal(cl.end_result, 0);
    assert_int_equal(cl.end_status, 0);
    assert_int_equal(cl.logins, 1);
    assert_int_equal(cl.invalid_pw_prompts, 0);
    /* applet blocks rise from 10 towards 90, then 100; never decreasing */
    assert_true(cl.nprogress >= 3);
    for (int i = 1; i < cl.nprogress; i++)
        assert_true(cl.progress[i] >= cl.progress[i - 1]);
    assert_int_equal(cl.progress[cl.nprogress - 1], 100);
    assert_true(cl.progress[0] > 10 && cl.progress[0] <= 90);
    /* what the card holds now */
    assert_true(vt_card_applet_present(cl.card));
    assert_int_equal(vt_card_life_cycle(cl.card), 0x07);
    card_issuer_info(cl.card, ii);
    assert_memory_equal(ii, want, strlen(want));
    for (size_t i = strlen(want); i < 224; i++)
        assert_int_equal(ii[i], 0);
    /* token DB: lease, one successful record, lease released */
    assert_int_equal(w->db_state.leases, 1);
    assert_int_equal(w->db_state.unleases, 1);
    assert_int_equal(w->db_state.successes, 1);
    assert_string_equal(w->db_state.last_status, "FORMATTED");
    assert_string_equal(w->db_state.last_applet, "1.4.58768072");
    /* SCP01 computeSessionKey never carries `protocol` (backends §2.1) */
    assert_null(strstr(w->tks_state.last_body, "protocol="));
    assert_non_null(strstr(w->tks_state.last_body, "KeyInfo=#01#01"));
    vt_card_close(cl.card);
}

static void
test_session_format_blank_card(void **state)
{
    struct world *w = *state;
    const char *const cs[] = {"applet.present", "0", NULL};
    struct client cl = {.op = 5, .user = "jdoe", .pw = "Secret.123", .ext = "tokenType=userKey"};

    world_load(w, NULL);
    cl.card = make_card(cs);
    assert_false(vt_card_applet_present(cl.card));
    assert_int_equal(run(w, &cl), TPS_OK);
    assert_int_equal(cl.end_result, 0);
    assert_true(vt_card_applet_present(cl.card)); /* DELETEs of absent AIDs were fine */
    assert_string_equal(w->db_state.last_applet, "1.4.58768072");
    vt_card_close(cl.card);
}

static void
test_session_blank_card_without_applet_file(void **state)
{
    struct world *w = *state;
    const char *const cs[] = {"applet.present", "0", NULL};
    struct client cl = {.op = 5, .user = "jdoe", .pw = "Secret.123", .ext = "tokenType=userKey"};

    world_load(w, "op.format.userKey.update.applet.directory=/nonexistent\n"
                  "op.format.userKey.auth.enable=false\n");
    cl.card = make_card(cs);
    assert_int_equal(run(w, &cl), TPS_ECONFIG);
    assert_int_equal(cl.end_status, 19);
    assert_int_equal(w->db_state.successes, 0);
    vt_card_close(cl.card);
}

static void
run_proto(void **state, const char *proto, int tks_calls_per_channel)
{
    struct world *w = *state;
    const char *const cs[] = {"proto", proto, NULL};
    struct client cl = {.op = 5,
                        .user = "jdoe",
                        .pw = "Secret.123",
                        .ext = "tokenType=userKey&extendedLoginRequest=true"};

    world_load(w, NULL);
    cl.card = make_card(cs);
    assert_int_equal(run(w, &cl), TPS_OK);
    assert_int_equal(cl.end_result, 0);
    assert_int_equal(cl.ext_logins, 1);
    assert_int_equal(cl.logins, 0);
    assert_int_equal(cl.nprogress, 0); /* statusUpdate not asked */
    /* applet current: one channel for issuer info, one for the key check */
    assert_int_equal(w->tks_state.calls, 2 * tks_calls_per_channel);
    assert_int_equal(w->db_state.successes, 1);
    vt_card_close(cl.card);
}

static void
test_session_format_scp02(void **state)
{
    run_proto(state, "2", 4);
    assert_non_null(strstr(((struct world *)*state)->tks_state.last_body, "protocol=2"));
}

static void
test_session_format_scp03(void **state)
{
    run_proto(state, "3", 1);
    assert_non_null(strstr(((struct world *)*state)->tks_state.last_body, "protocol=3"));
}

static void
test_session_format_clean_token_zero_issuer(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .ext = "tokenType=cleanToken"};
    uint8_t ii[224], zero[224] = {0};

    world_load(w, NULL);
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_OK);
    assert_int_equal(cl.end_result, 0);
    assert_int_equal(cl.logins + cl.ext_logins, 0); /* auth.enable=false for cleanToken */
    card_issuer_info(cl.card, ii);
    assert_memory_equal(ii, zero, 224);
    vt_card_close(cl.card);
}

static void
test_session_wrong_password(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .user = "jdoe", .pw = "wrong!", .ext = "tokenType=userKey"};

    world_load(w, "");
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_ELOGIN);
    assert_int_equal(cl.end_result, 1);
    assert_int_equal(cl.end_status, 14);
    assert_int_equal(cl.logins, 2);             /* auth.retries=1: one re-prompt */
    assert_int_equal(cl.invalid_pw_prompts, 1); /* ... with invalid_pw=1 */
    assert_int_equal(w->db_state.successes, 0);
    assert_int_equal(w->db_state.unleases, 1);
    assert_int_equal(w->tks_state.calls, 0); /* nothing happened on the card */
    vt_card_close(cl.card);
}

static void
test_session_directory_down(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .user = "jdoe", .pw = "Secret.123", .ext = "tokenType=userKey"};

    world_load(w, NULL);
    w->auth_state.down = true;
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_EBACKEND);
    assert_int_equal(cl.end_status, 25);
    vt_card_close(cl.card);
}

static void
test_session_card_keys_mismatch(void **state)
{
    struct world *w = *state;
    const char *const cs[] = {"key.enc", "000102030405060708090A0B0C0D0E0F",
                              "key.mac", "000102030405060708090A0B0C0D0E0F",
                              "key.kek", "000102030405060708090A0B0C0D0E0F",
                              NULL};
    struct client cl = {.op = 5, .user = "jdoe", .pw = "Secret.123", .ext = "tokenType=userKey"};

    world_load(w, NULL);
    cl.card = make_card(cs);
    assert_int_not_equal(run(w, &cl), TPS_OK);
    assert_int_equal(cl.end_result, 1);
    assert_int_equal(cl.end_status, 17);
    assert_int_equal(w->db_state.successes, 0);
    vt_card_close(cl.card);
}

static void
test_session_tks_down(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .user = "jdoe", .pw = "Secret.123", .ext = "tokenType=userKey"};

    world_load(w, NULL);
    w->tks_state.down = true;
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_EBACKEND);
    assert_int_equal(cl.end_status, 17);
    assert_int_equal(w->db_state.successes, 0);
    vt_card_close(cl.card);
}

static void
test_session_bad_mac(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5,
                        .user = "jdoe",
                        .pw = "Secret.123",
                        .ext = "tokenType=userKey",
                        .corrupt_secure_n = 1};

    world_load(w, NULL);
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_ECARD);
    assert_int_equal(cl.end_result, 1);
    assert_int_equal(cl.end_status, 19); /* SET ISSUER INFO refused */
    assert_int_equal(w->db_state.successes, 0);
    vt_card_close(cl.card);
}

static void
test_session_malformed_message(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .ext = "tokenType=userKey", .send_garbage = true};

    world_load(w, NULL);
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_EPROTO);
    assert_true(cl.got_end);
    assert_int_equal(cl.end_result, 1);
    assert_int_equal(cl.end_status, 1);
    vt_card_close(cl.card);
}

static void
test_session_oversize_chunk(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .ext = "tokenType=userKey", .send_oversize = true};

    world_load(w, NULL);
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_EPROTO);
    assert_true(cl.got_end);
    assert_int_equal(cl.end_status, 1);
    vt_card_close(cl.card);
}

static void
test_session_timeout(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .ext = "tokenType=userKey", .stay_silent = true};

    world_load(w, "tps.connection.timeout=1\n");
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_ETIMEDOUT);
    assert_true(cl.got_end);
    assert_int_equal(cl.end_result, 1);
    assert_int_equal(cl.end_status, 28);
    vt_card_close(cl.card);
}

static void
test_session_unknown_and_unimplemented_ops(void **state)
{
    struct world *w = *state;
    struct client unk = {.op = 9}, renew = {.op = 4}, unblock = {.op = 2};

    world_load(w, NULL);
    assert_int_equal(run(w, &unk), TPS_EUNSUPP);
    assert_int_equal(unk.end_op, 0);
    assert_int_equal(unk.end_result, 1);
    assert_int_equal(unk.end_status, 0);
    assert_true(unk.got_last);
    assert_int_equal(run(w, &renew), TPS_EUNSUPP);
    assert_int_equal(renew.end_op, 4);
    assert_int_equal(renew.end_result, 1);
    assert_int_equal(renew.end_status, 0);
    assert_int_equal(run(w, &unblock), TPS_EUNSUPP);
    assert_int_equal(unblock.end_op, 2);
    assert_int_equal(unblock.end_status, 0);
}

static void
test_session_terminated_token_refused(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 5, .user = "jdoe", .pw = "Secret.123", .ext = "tokenType=userKey"};

    world_load(w, NULL);
    w->db_state.known = true;
    snprintf(w->db_state.status, sizeof(w->db_state.status), "TERMINATED");
    cl.card = make_card(NULL);
    assert_int_equal(run(w, &cl), TPS_EPOLICY);
    assert_int_equal(cl.end_status, 26);
    assert_int_equal(w->db_state.leases, 0);
    assert_int_equal(cl.logins, 0);
    vt_card_close(cl.card);
}

/* ---- plain HTTP routing ---- */

static int
http_get(struct world *w, const char *method, const char *path, bool chunked, struct cmn_buf *body)
{
    struct cmn_http_hdr hdrs[] = {{"Host", "x"}, {"Transfer-Encoding", "chunked"}};
    struct srv_arg sa = {.env = &w->env};
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    pthread_t th;
    int sv[2], st;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sa.fd = sv[0];
    assert_int_equal(pthread_create(&th, NULL, srv_main, &sa), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[1], NULL, &c), CMN_OK);
    cmn_http_head_init(&h);
    if (!chunked)
        hdrs[1] = (struct cmn_http_hdr){"Content-Length", "0"};
    assert_int_equal(cmn_http_write_request_head(c, method, path, hdrs, 2), CMN_OK);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    st = h.status;
    if (body != NULL)
        assert_int_equal(cmn_http_read_body(c, body), CMN_OK);
    cmn_http_conn_free(c);
    close(sv[1]);
    pthread_join(th, NULL);
    cmn_http_head_cleanup(&h);
    return st;
}

static void
test_session_http_routing(void **state)
{
    struct world *w = *state;
    struct cmn_buf b;

    world_load(w, NULL);
    cmn_buf_init(&b, 65536);
    assert_int_equal(http_get(w, "GET", "/tps/tps", false, NULL), 405);
    assert_int_equal(http_get(w, "PUT", "/nk_service", true, NULL), 405);
    assert_int_equal(http_get(w, "POST", "/tps/tps", false, NULL), 400);
    assert_int_equal(http_get(w, "GET", "/nowhere", false, NULL), 404);
    assert_int_equal(http_get(w, "GET", "/health", false, &b), 200);
    cmn_buf_reset(&b);
    assert_int_equal(http_get(w, "GET", "/tps/phoneHome?cuid=40907901001F12345678", false, &b),
                     200);
    assert_non_null(strstr(cmn_buf_cstr(&b), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert_non_null(strstr(cmn_buf_cstr(&b), "<IssuerName>Test &lt;Org&gt; &amp; Co</IssuerName>"));
    assert_non_null(
        strstr(cmn_buf_cstr(&b), "<Operation>https://lb.example.org:7889/tps/tps</Operation>"));
    assert_non_null(strstr(cmn_buf_cstr(&b), "<TokenType>userKey</TokenType>"));
    cmn_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_format_scp01_applet_upgrade, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_format_blank_card, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_blank_card_without_applet_file, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_format_scp02, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_format_scp03, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_format_clean_token_zero_issuer, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_wrong_password, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_directory_down, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_card_keys_mismatch, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_tks_down, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_bad_mac, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_malformed_message, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_oversize_chunk, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_timeout, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_session_unknown_and_unimplemented_ops, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_terminated_token_refused, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_session_http_routing, world_setup, world_teardown),
    };
    cmn_log_set_level(CMN_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
