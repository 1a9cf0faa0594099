/* tests/unit/gateway/test_channel.c - the secure channel as tpsgw opens and uses it, checked
 * byte for byte against the spec vectors (card-and-secure-channel §5.2 SCP01, §5.4 SCP02,
 * §5.5 SCP03): INITIALIZE UPDATE, the TKS call, EXTERNAL AUTHENTICATE, and the first wrapped
 * commands as they travel in TOKEN_PDUs. Also: a wrong card cryptogram is caught by tpsgw
 * itself even when the TKS does not check it. */
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
#include "gw_fixture.h"

static const uint8_t host_challenge[8] = {0x2F, 0xB7, 0x9F, 0xB7, 0x04, 0xFA, 0x60, 0xE8};

/* One scripted exchange: what tpsgw must send, what the card answers. */
struct step {
    const char *want; /* hex of the expected command APDU */
    const char *answer;
};

struct ch_run {
    struct tps_env env;
    enum cmn_scp_proto proto;
    int fd;
    bool second_cmd;      /* also send INS 04 with 7 bytes (SCP01 vector) */
    bool tks_no_validate; /* the TKS does not check the card cryptogram */
    enum tps_rc rc_open, rc_cmd;
    uint16_t sw;
    int status;
};

static void *
gw_side(void *p)
{
    struct ch_run *r = p;
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct tps_session s;
    struct cmn_apdu a = {.cla = 0x80, .ins = 0x40, .p1 = 0x00, .p2 = 0x7F, .lc = 8, .le = -1};
    struct cmn_rapdu rr;
    const struct cmn_http_hdr te[] = {{"Transfer-Encoding", "chunked"}};

    cmn_http_head_init(&h);
    if (cmn_http_conn_new_fd(r->fd, NULL, &c) != CMN_OK ||
        cmn_http_read_request_head(c, &h) != CMN_OK ||
        cmn_http_write_response_head(c, 200, NULL, te, 1) != CMN_OK)
        goto out;
    tps_session_init(&s, &r->env, c, "127.0.0.1");
    s.tok.gp_proto = r->proto;
    r->rc_open = tps_channel_open(&s, 0, 0, NULL);
    if (r->rc_open == TPS_OK) {
        memcpy(a.data, "password", 8);
        r->rc_cmd = tps_card_xfer_secure(&s, &a, &rr);
        r->sw = rr.sw;
        if (r->rc_cmd == TPS_OK && r->second_cmd) {
            struct cmn_apdu b = {.cla = 0x80, .ins = 0x04, .lc = 7, .le = -1};
            memcpy(b.data, "\x00\x11\x22\x33\x44\x55\x66", 7);
            r->rc_cmd = tps_card_xfer_secure(&s, &b, &rr);
        }
    }
    r->status = s.end_status;
    tps_session_cleanup(&s);
out:
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    close(r->fd);
    return NULL;
}

static void
hex(const char *h, uint8_t *out, size_t cap, size_t *n)
{
    assert_int_equal(cmn_hex_decode(h, strlen(h), true, out, cap, n), CMN_OK);
}

/* Plays the client: checks every command tpsgw sends and answers from the script. */
static void
script(struct ch_run *r, const struct step *steps, size_t nsteps)
{
    const struct cmn_http_hdr hdrs[] = {{"Transfer-Encoding", "chunked"}};
    struct gw_fix f;
    struct gw_tks tks_state = {.no_validate = r->tks_no_validate};
    struct cmn_key shared;
    struct tps_tks *tks = NULL;
    struct cmn_http_conn *c = NULL;
    struct cmn_buf in, out;
    struct cmn_tpsmsg m;
    pthread_t th;
    int sv[2];
    bool last;

    gw_fix_init(&f);
    assert_int_equal(gw_fix_load(&f, NULL, NULL), TPS_OK);
    (void)cmn_key_set(&shared, CMN_KEY_AES, gw_shared_raw, 16);
    assert_int_equal(
        tps_tks_new_custom("tks1", &shared, "defKeySet", gw_tks_post, &tks_state, &tks), TPS_OK);
    r->env.cfg = f.cfg;
    r->env.tks = tks;
    r->env.test_host_challenge = host_challenge;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    r->fd = sv[0];
    assert_int_equal(pthread_create(&th, NULL, gw_side, r), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[1], NULL, &c), CMN_OK);
    assert_int_equal(cmn_http_write_request_head(c, "POST", "/tps/tps", hdrs, 1), CMN_OK);
    cmn_buf_init(&in, 8192);
    cmn_buf_init(&out, 8192);
    cmn_tpsmsg_init(&m);
    {
        struct cmn_http_head h;
        cmn_http_head_init(&h);
        assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
        cmn_http_head_cleanup(&h);
    }
    for (size_t i = 0; i < nsteps; i++) {
        uint8_t want[300], got[300], ans[300];
        size_t wn, gn, an;

        cmn_buf_reset(&in);
        assert_int_equal(cmn_http_read_chunk(c, &in, &last), CMN_OK);
        assert_false(last);
        assert_int_equal(cmn_tpsmsg_parse_framed(&m, in.data, in.len, 0), CMN_OK);
        assert_int_equal(m.type, CMN_TPS_MSG_TOKEN_PDU_REQUEST);
        assert_int_equal(cmn_tpsmsg_get_pdu(&m, got, sizeof(got), &gn), CMN_OK);
        hex(steps[i].want, want, sizeof(want), &wn);
        if (gn != wn || memcmp(got, want, wn) != 0) {
            char gh[700];
            cmn_hex_encode(got, gn, gh, sizeof(gh));
            fail_msg("step %zu: got %s, want %s", i, gh, steps[i].want);
        }
        hex(steps[i].answer, ans, sizeof(ans), &an);
        cmn_buf_reset(&out);
        assert_int_equal(cmn_tpsmsg_build_token_pdu_response(&out, ans, an), CMN_OK);
        assert_int_equal(cmn_http_write_chunk(c, out.data, out.len), CMN_OK);
    }
    pthread_join(th, NULL);
    cmn_http_conn_free(c);
    close(sv[1]);
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&in);
    cmn_buf_cleanup(&out);
    tps_tks_free(tks);
    gw_fix_cleanup(&f);
}

static void
test_channel_scp01_vectors(void **state)
{
    const struct step steps[] = {
        {"80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
         "40 90 79 01 00 1F 12 34 56 78 01 01 B9 69 B0 CA 37 27 2F 89 1F C1 D8 14 8F F1 34 57 "
         "90 00"},
        {"84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "90 00"},
        {"84 40 00 7F 18 BE 52 47 B4 95 C2 6E AE DF 4D 0C 8D A2 00 AA 40 A6 68 98 A2 F0 87 FA CE",
         "90 00"},
        {"84 04 00 00 10 3D 4F 91 34 C6 D0 60 CF 6D A8 9E F9 8D 14 92 40", "90 00"},
    };
    struct ch_run r = {.proto = CMN_SCP01, .second_cmd = true};

    (void)state;
    script(&r, steps, 4);
    assert_int_equal(r.rc_open, TPS_OK);
    assert_int_equal(r.rc_cmd, TPS_OK);
}

static void
test_channel_scp02_vectors(void **state)
{
    const struct step steps[] = {
        {"80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
         "40 90 79 01 00 1F 12 34 56 78 FF 02 00 0A 3C 1F 7A 91 5D 02 E3 10 1C 8D C3 88 9C 8F "
         "90 00"},
        {"84 82 03 00 10 79 0B 0C D4 F8 68 D9 FA 3B 94 E8 F4 FF 5F F4 59", "90 00"},
        {"84 40 00 7F 18 82 65 CF C1 85 C7 B8 93 A2 85 89 B2 5A 68 BF 97 67 C7 37 4B 7F B9 DA 0C",
         "90 00"},
    };
    struct ch_run r = {.proto = CMN_SCP02};

    (void)state;
    script(&r, steps, 3);
    assert_int_equal(r.rc_open, TPS_OK);
    assert_int_equal(r.rc_cmd, TPS_OK);
}

static void
test_channel_scp03_vectors(void **state)
{
    const struct step steps[] = {
        {"80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
         "40 90 79 01 00 1F 12 34 56 78 01 03 00 B9 69 B0 CA 37 27 2F 89 F5 76 A9 20 84 C6 38 8A "
         "90 00"},
        {"84 82 03 00 10 C1 5A 3D 09 E3 51 56 88 F7 C9 8E C6 96 62 10 2C", "90 00"},
        {"84 40 00 7F 18 5E D0 A6 53 BC C7 F8 51 9C 2B 0F F5 EF FC DC EE 4D F5 67 DE BA 24 AB 7C",
         "90 00"},
    };
    struct ch_run r = {.proto = CMN_SCP03};

    (void)state;
    script(&r, steps, 3);
    assert_int_equal(r.rc_open, TPS_OK);
    assert_int_equal(r.rc_cmd, TPS_OK);
}

static void
test_channel_card_refuses_external_auth(void **state)
{
    const struct step steps[] = {
        {"80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
         "40 90 79 01 00 1F 12 34 56 78 01 01 B9 69 B0 CA 37 27 2F 89 1F C1 D8 14 8F F1 34 57 "
         "90 00"},
        {"84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "63 00"},
    };
    struct ch_run r = {.proto = CMN_SCP01};

    (void)state;
    script(&r, steps, 2);
    assert_int_equal(r.rc_open, TPS_ECARD);
    assert_int_equal(r.status, 21); /* EXTERNAL_AUTH */
}

static void
test_channel_card_cryptogram_checked_locally(void **state)
{
    /* §5.2 answer with the last cryptogram byte changed: the TKS here does not validate. */
    const struct step steps[] = {
        {"80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
         "40 90 79 01 00 1F 12 34 56 78 01 01 B9 69 B0 CA 37 27 2F 89 1F C1 D8 14 8F F1 34 58 "
         "90 00"},
    };
    struct ch_run r = {.proto = CMN_SCP01, .tks_no_validate = true};

    (void)state;
    script(&r, steps, 1);
    assert_int_equal(r.rc_open, TPS_EAUTH);
    assert_int_equal(r.status, 17); /* SECURE_CHANNEL, and no EXTERNAL AUTHENTICATE was sent */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_scp01_vectors),
        cmocka_unit_test(test_channel_scp02_vectors),
        cmocka_unit_test(test_channel_scp03_vectors),
        cmocka_unit_test(test_channel_card_refuses_external_auth),
        cmocka_unit_test(test_channel_card_cryptogram_checked_locally),
    };
    cmn_log_set_level(CMN_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
