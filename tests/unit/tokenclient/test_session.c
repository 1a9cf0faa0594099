/* tests/unit/tokenclient/test_session.c - tokenclient's side of the TPS exchange against a
 * scripted TPS on loopback, with an in-process emulated card; and phone-home parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/http.h"
#include "common/tpsmsg.h"
#include "tokenclient/tc.h"

/* The scripted TPS: what it sends and what it saw. */
struct tps_script {
    int lfd;
    int port;
    int mode; /* 0 full exchange, 1 drop after the first APDU, 2 refuse with status 14 */
    char begin_op[512];
    char pdu_answer_hex[64];
    char login_user[64], login_pw[64], new_pin[64];
    unsigned status_echo;
    bool ok;
};

static bool
recv_msg(struct cmn_http_conn *h, struct cmn_tpsframer *f, struct cmn_tpsmsg *m)
{
    for (;;) {
        struct cmn_buf chunk;
        bool last = false;
        enum cmn_rc rc = cmn_tpsframer_next(f, m);

        if (rc == CMN_OK)
            return true;
        if (rc != CMN_ESHORT)
            return false;
        cmn_buf_init(&chunk, 8192);
        rc = cmn_http_read_chunk(h, &chunk, &last);
        if (rc != CMN_OK || last || cmn_tpsframer_feed(f, chunk.data, chunk.len) != CMN_OK) {
            cmn_buf_cleanup(&chunk);
            return false;
        }
        cmn_buf_cleanup(&chunk);
    }
}

static bool
send_msg(struct cmn_http_conn *h, struct cmn_buf *b)
{
    bool ok = cmn_http_write_chunk(h, b->data, b->len) == CMN_OK;

    cmn_buf_reset(b);
    return ok;
}

static void *
tps_thread(void *arg)
{
    static const uint8_t select_cm[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00,
                                        0x00, 0x00, 0x03, 0x00, 0x00};
    static const struct cmn_http_hdr rh[] = {{"Transfer-Encoding", "chunked"}};
    struct tps_script *s = arg;
    struct cmn_http_conn *h = NULL;
    struct cmn_http_head head;
    struct cmn_tpsframer f;
    struct cmn_tpsmsg m;
    struct cmn_buf out, v;
    uint8_t pdu[300];
    size_t n;
    int fd = accept(s->lfd, NULL, NULL);

    cmn_http_head_init(&head);
    cmn_tpsframer_init(&f, 0);
    cmn_tpsmsg_init(&m);
    cmn_buf_init(&out, 4096);
    cmn_buf_init(&v, 512);
    if (fd < 0 || cmn_http_conn_new_fd(fd, NULL, &h) != CMN_OK ||
        cmn_http_read_request_head(h, &head) != CMN_OK || strcmp(head.method, "POST") != 0 ||
        !head.chunked || cmn_http_write_response_head(h, 200, NULL, rh, 1) != CMN_OK ||
        !recv_msg(h, &f, &m) || m.type != CMN_TPS_MSG_BEGIN_OP)
        goto out;
    (void)cmn_tpsmsg_get_str(&m, "extensions", &v);
    snprintf(s->begin_op, sizeof(s->begin_op), "%s", cmn_buf_cstr(&v));
    if (s->mode == 2) {
        (void)cmn_tpsmsg_build_end_op(&out, 1, 1, 14);
        s->ok = send_msg(h, &out);
        goto out;
    }
    /* one APDU through the card */
    if (cmn_tpsmsg_build_token_pdu_request(&out, select_cm, sizeof(select_cm)) != CMN_OK ||
        !send_msg(h, &out) || !recv_msg(h, &f, &m) || m.type != CMN_TPS_MSG_TOKEN_PDU_RESPONSE ||
        cmn_tpsmsg_get_pdu(&m, pdu, sizeof(pdu), &n) != CMN_OK)
        goto out;
    (void)cmn_hex_encode(pdu, n, s->pdu_answer_hex, sizeof(s->pdu_answer_hex));
    if (s->mode == 1)
        goto out; /* connection dropped mid-operation */
    /* login */
    if (cmn_tpsmsg_build_login_request(&out, false, false) != CMN_OK || !send_msg(h, &out) ||
        !recv_msg(h, &f, &m) || m.type != CMN_TPS_MSG_LOGIN_RESPONSE)
        goto out;
    cmn_buf_reset(&v);
    (void)cmn_tpsmsg_get_str(&m, "screen_name", &v);
    snprintf(s->login_user, sizeof(s->login_user), "%s", cmn_buf_cstr(&v));
    cmn_buf_reset(&v);
    (void)cmn_tpsmsg_get_str(&m, "password", &v);
    snprintf(s->login_pw, sizeof(s->login_pw), "%s", cmn_buf_cstr(&v));
    /* status update */
    if (cmn_tpsmsg_build_status_update_request(&out, 50, "PROGRESS_KEY_GENERATION") != CMN_OK ||
        !send_msg(h, &out) || !recv_msg(h, &f, &m) ||
        m.type != CMN_TPS_MSG_STATUS_UPDATE_RESPONSE)
        goto out;
    {
        unsigned long st = 0;

        (void)cmn_tpsmsg_get_uint(&m, "current_state", 100, &st);
        s->status_echo = (unsigned)st;
    }
    /* new PIN */
    if (cmn_tpsmsg_build_new_pin_request(&out, 4, 10) != CMN_OK || !send_msg(h, &out) ||
        !recv_msg(h, &f, &m) || m.type != CMN_TPS_MSG_NEW_PIN_RESPONSE)
        goto out;
    snprintf(s->new_pin, sizeof(s->new_pin), "%s",
             cmn_tpsmsg_raw(&m, "new_pin") ? cmn_tpsmsg_raw(&m, "new_pin") : "");
    if (cmn_tpsmsg_build_end_op(&out, 1, 0, 0) != CMN_OK || !send_msg(h, &out) ||
        cmn_http_write_last_chunk(h) != CMN_OK)
        goto out;
    s->ok = true;
out:
    cmn_buf_cleanup(&out);
    cmn_buf_cleanup(&v);
    cmn_tpsmsg_cleanup(&m);
    cmn_tpsframer_cleanup(&f);
    cmn_http_head_cleanup(&head);
    cmn_http_conn_free(h);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void
listen_loopback(struct tps_script *s)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
}

static char tmpdir[64];

static void
write_secret(const char *name, const char *value, char *path, size_t len)
{
    FILE *f;

    snprintf(path, len, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(value, f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

static enum tc_rc
run(struct tps_script *s, struct tc_result *res, bool no_retry_card_check)
{
    char url[64], pwf[128], pinf[128];
    struct tc_opts o;
    struct tc_ui ui;
    struct tc_card card;
    pthread_t th;
    enum tc_rc rc;

    (void)no_retry_card_check;
    listen_loopback(s);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/tps/tps", s->port);
    write_secret("pw", "Secret.123\n", pwf, sizeof(pwf));
    write_secret("pin", "1234abcd\n", pinf, sizeof(pinf));
    memset(&ui, 0, sizeof(ui));
    ui.out = stderr;
    ui.quiet = true;
    ui.last_pct = -1;
    ui.user = "jdoe";
    ui.password_file = pwf;
    ui.new_pin_file = pinf;
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.op = 1;
    o.token_type = "userKey";
    o.timeout_ms = 5000;
    o.status_update = true;
    assert_int_equal(tc_emu_open(NULL, NULL, &card), TC_OK);
    assert_int_equal(pthread_create(&th, NULL, tps_thread, s), 0);
    rc = tc_session_run(&o, &card, &ui, res);
    pthread_join(th, NULL);
    card.ops->close(&card);
    close(s->lfd);
    return rc;
}

static void
test_session_full_exchange(void **state)
{
    struct tps_script s;
    struct tc_result res;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(run(&s, &res, false), TC_OK);
    assert_true(s.ok);
    assert_int_equal(res.end_op_result, 0);
    assert_int_equal(res.apdus, 1);
    /* extensions joined with '&' and encoded once (tps-protocol §2.3, §7.3) */
    assert_non_null(strstr(s.begin_op, "tokenType=userKey&"));
    assert_non_null(strstr(s.begin_op, "statusUpdate=true"));
    /* the card answered the SELECT of the card manager */
    assert_string_equal(s.pdu_answer_hex + strlen(s.pdu_answer_hex) - 4, "9000");
    assert_string_equal(s.login_user, "jdoe");
    assert_string_equal(s.login_pw, "Secret.123");
    assert_int_equal(s.status_echo, 50);
    assert_string_equal(s.new_pin, "1234abcd"); /* raw, as §1.4 says */
}

static void
test_session_connection_lost(void **state)
{
    struct tps_script s;
    struct tc_result res;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.mode = 1;
    assert_int_equal(run(&s, &res, false), TC_ENET);
    assert_true(res.conn_lost);
    assert_int_equal(res.end_op_result, -1);
    assert_non_null(strstr(res.err, "ended before the operation finished"));
}

static void
test_session_refused(void **state)
{
    struct tps_script s;
    struct tc_result res;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.mode = 2;
    assert_int_equal(run(&s, &res, false), TC_EREFUSED);
    assert_int_equal(res.status, 14);
    assert_non_null(strstr(tc_status_advice(14), "password"));
}

static void
test_session_unreachable(void **state)
{
    struct tc_opts o;
    struct tc_ui ui;
    struct tc_card card;
    struct tc_result res;
    struct tps_script s;

    (void)state;
    memset(&s, 0, sizeof(s));
    listen_loopback(&s);
    close(s.lfd); /* the port is now refused */
    memset(&ui, 0, sizeof(ui));
    ui.out = stderr;
    ui.quiet = true;
    memset(&o, 0, sizeof(o));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/tps/tps", s.port);
    o.url = url;
    o.op = 5;
    o.timeout_ms = 2000;
    assert_int_equal(tc_emu_open(NULL, NULL, &card), TC_OK);
    assert_int_equal(tc_session_run(&o, &card, &ui, &res), TC_ENET);
    assert_non_null(strstr(res.err, "cannot connect"));
    o.url = "ftp://x/y";
    assert_int_equal(tc_session_run(&o, &card, &ui, &res), TC_EUSAGE);
    card.ops->close(&card);
}

static void
test_phonehome_parse(void **state)
{
    static const char good[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServiceInfo>\n"
        "<IssuerName>Example Org</IssuerName>\n<Services>\n"
        "<Operation>https://tps.example.org:8443/tps/tps</Operation>\n<UI></UI>\n"
        "<EnrolledTokenBrowserURL>http://www.example.org</EnrolledTokenBrowserURL>\n"
        "<EnrolledTokenURL></EnrolledTokenURL>\n<TokenType>userKey</TokenType>\n"
        "</Services>\n</ServiceInfo>\n";
    static const struct {
        const char *xml, *why;
    } bad[] = {
        {"<ServiceInfo><Services></Services></ServiceInfo>", "Operation"},
        {"<Other><Services><Operation>http://x/</Operation></Services></Other>", "ServiceInfo"},
        {"<ServiceInfo><Services><Operation>ftp://x/</Operation></Services></ServiceInfo>",
         "http(s)"},
        {"<ServiceInfo><Services><Operation>", "well-formed"},
        {"<!DOCTYPE x [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><ServiceInfo>&b;",
         ""},
    };
    struct tc_service svc;
    char err[256];

    (void)state;
    assert_int_equal(tc_phonehome_parse(good, strlen(good), &svc, err, sizeof(err)), TC_OK);
    assert_string_equal(svc.issuer, "Example Org");
    assert_string_equal(svc.operation, "https://tps.example.org:8443/tps/tps");
    assert_string_equal(svc.token_type, "userKey");
    assert_string_equal(svc.browser_url, "http://www.example.org");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(tc_phonehome_parse(bad[i].xml, strlen(bad[i].xml), &svc, err,
                                            sizeof(err)),
                         TC_EPROTO);
        assert_non_null(strstr(err, bad[i].why));
    }
}

static int
setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tc-test.XXXXXX");
    return mkdtemp(tmpdir) == NULL;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) != 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_full_exchange),
        cmocka_unit_test(test_session_connection_lost),
        cmocka_unit_test(test_session_refused),
        cmocka_unit_test(test_session_unreachable),
        cmocka_unit_test(test_phonehome_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
