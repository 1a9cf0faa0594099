/* tests/unit/gateway/test_keychange.c - key changeover (gateway/keychange.c) against a small
 * GlobalPlatform card made of common/scp's card side and an in-process TKS whose version-2 keys
 * differ from the developer set: upgrade on SCP01, SCP02 and SCP03, the pending record written
 * before PUT KEY and committed after, a crash between PUT KEY and the DB write settled by the
 * next contact, and each failure (TKS, DB, card) with its END_OP status and the card unchanged. */
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
#include "gateway/keychange.h"
#include "gw_fixture.h"

#define CUID "40907901001F12345678"

static char audit_path[64];

/* True when the audit log holds a line with both strings. */
static bool
audited(const char *a, const char *b)
{
    char line[1024];
    bool found = false;
    FILE *fp = fopen(audit_path, "r");

    while (fp != NULL && !found && fgets(line, sizeof(line), fp) != NULL)
        found = strstr(line, a) != NULL && strstr(line, b) != NULL;
    if (fp != NULL)
        fclose(fp);
    return found;
}

static const uint8_t cuid_raw[10] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0x12, 0x34, 0x56, 0x78};
static const uint8_t cardmgr[7] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00};

/* Keys of version 2, as a master key would give them: anything but the developer set. */
static void
v2_keys(enum cmn_scp_proto proto, uint8_t version, struct cmn_keyset *ks)
{
    uint8_t k[16];

    cmn_keyset_developer(ks, proto, version);
    if (version == 0x01 || version == 0xFF)
        return;
    for (int t = 0; t < 3; t++) {
        struct cmn_key *dst = t == 0 ? &ks->enc : t == 1 ? &ks->mac : &ks->kek;
        for (int i = 0; i < 16; i++)
            k[i] = (uint8_t)(0x10 * (t + 1) + i + version);
        assert_int_equal(cmn_key_set(dst, dst->alg, k, 16), CMN_OK);
    }
}

/* ---- the card ---- */

struct card {
    enum cmn_scp_proto proto;
    struct cmn_keyset sets[4];
    size_t nsets;
    uint8_t default_kv;
    bool isd; /* the card manager is selected (else the applet) */
    struct cmn_scp scp;
    uint16_t put_key_sw; /* 0: accept; else answer this */
    int put_keys;
    bool pending_seen_at_put_key; /* the store held the pending value when PUT KEY came */
    bool hang_after_put_key;      /* the gateway "dies" after the card accepted PUT KEY */
    bool dead;
    char put_key_head[16]; /* CLA INS P1 P2 Lc of the last PUT KEY */
    bool put_key_le;
    struct store *st;
};

static struct cmn_keyset *
card_set(struct card *c, uint8_t v)
{
    for (size_t i = 0; i < c->nsets; i++)
        if (c->sets[i].version == v)
            return &c->sets[i];
    return NULL;
}

static void
card_init(struct card *c, enum cmn_scp_proto proto, uint8_t version)
{
    memset(c, 0, sizeof(*c));
    c->proto = proto;
    v2_keys(proto, version, &c->sets[0]);
    c->nsets = 1;
    c->default_kv = version;
    cmn_scp_init(&c->scp, proto);
}

struct store {
    char log[512];
    char pending[8], key_info[8];
    bool fail_set;
};

static uint16_t
card_cmd(struct card *c, const uint8_t *apdu, size_t n, uint8_t *out, size_t *on)
{
    struct cmn_apdu a, plain;
    uint16_t sw = 0x9000;

    *on = 0;
    memset(&a, 0, sizeof(a));
    assert_true(n >= 4);
    a.cla = apdu[0];
    a.ins = apdu[1];
    a.p1 = apdu[2];
    a.p2 = apdu[3];
    a.le = -1;
    if (n > 5) {
        a.lc = apdu[4];
        memcpy(a.data, apdu + 5, a.lc);
        if (n > 5 + a.lc)
            a.le = apdu[5 + a.lc];
    } else if (n == 5) {
        a.le = apdu[4];
    }
    if (a.ins == 0xA4) {
        c->isd = a.lc == sizeof(cardmgr) && memcmp(a.data, cardmgr, a.lc) == 0;
        cmn_scp_cleanup(&c->scp);
        return 0x9000;
    }
    if (a.ins == 0x50) {
        struct cmn_keyset *ks = card_set(c, a.p1 == 0 ? c->default_kv : a.p1);
        struct cmn_scp_iu iu;
        uint8_t cc[8] = {1, 2, 3, 4, 5, 6, 7, 8};

        if (ks == NULL)
            return 0x6A88;
        memset(&iu, 0, sizeof(iu));
        memcpy(iu.kdd, cuid_raw, 10);
        iu.key_version = ks->version;
        iu.scp_id = (uint8_t)c->proto;
        if (c->proto == CMN_SCP01)
            iu.scp_id = 0x01;
        iu.card_challenge_len = c->proto == CMN_SCP02 ? 6 : 8;
        memcpy(iu.card_challenge, cc, iu.card_challenge_len);
        if (c->proto == CMN_SCP02) {
            iu.seq[0] = 0x00;
            iu.seq[1] = 0x0A;
            iu.seq_len = 2;
        }
        cmn_scp_init(&c->scp, c->proto);
        assert_int_equal(cmn_scp_set_challenges(&c->scp, a.data, cc, iu.card_challenge_len,
                                                c->proto == CMN_SCP02 ? iu.seq : NULL),
                         CMN_OK);
        assert_int_equal(cmn_scp_derive(&c->scp, ks), CMN_OK);
        assert_int_equal(cmn_scp_card_cryptogram(&c->scp, iu.card_cryptogram), CMN_OK);
        assert_int_equal(cmn_scp_iu_encode(c->proto, &iu, out, 64, on), CMN_OK);
        return 0x9000;
    }
    if (a.ins == 0x82) {
        (void)cmn_scp_card_ext_auth(&c->scp, &a, &sw);
        return sw;
    }
    if (a.cla != 0x84)
        return 0x6D00;
    if (cmn_scp_unwrap_ex(&c->scp, &a, a.ins == 0xD8 ? CMN_SCP_ACCEPT_PLAIN : 0, &plain, &sw) !=
        CMN_OK)
        return sw;
    if (a.ins == 0xD8) {
        struct cmn_keyset ks, *old;

        c->put_keys++;
        snprintf(c->put_key_head, sizeof(c->put_key_head), "%02X%02X%02X%02X%02X", a.cla, a.ins,
                 a.p1, a.p2, (unsigned)a.lc);
        c->put_key_le = a.le >= 0;
        c->pending_seen_at_put_key = c->st != NULL && c->st->pending[0] != '\0';
        if (!c->isd)
            return 0x6D00;
        if (c->put_key_sw != 0)
            return c->put_key_sw;
        if (cmn_keyset_data_parse(c->proto, &c->scp.dek, plain.data, plain.lc, &ks) != CMN_OK)
            return 0x6A80;
        old = card_set(c, a.p1 != 0 ? a.p1 : ks.version);
        if (old == NULL)
            old = &c->sets[c->nsets++];
        *old = ks;
        c->default_kv = ks.version;
        if (c->hang_after_put_key)
            c->dead = true;
        return 0x9000;
    }
    return 0x9000; /* any other wrapped command */
}

/* ---- the TKS ---- */

struct tks {
    int session_calls, keyset_calls;
    int keyset_status; /* answer createKeySetData with status=N */
    char keyset_body[2048];
};

static bool
field(const char *body, size_t len, const char *name, uint8_t *out, size_t cap, size_t *n)
{
    const char *v;
    size_t vl;

    return tps_tks_field(body, len, name, &v, &vl) &&
           tps_tks_value_decode(v, vl, out, cap, n) == TPS_OK;
}

static void
put_wrapped(struct cmn_buf *b, const char *name, const struct cmn_key *shared,
            const struct cmn_key *k)
{
    uint8_t w[32];
    size_t n;

    assert_int_equal(cmn_scp_session_key_wrap(shared, k, w, sizeof(w), &n), CMN_OK);
    (void)cmn_buf_printf(b, "&%s=", name);
    (void)tps_tks_hash_append(b, w, n);
}

static enum tps_rc
tks_post(void *arg, const char *path, const char *body, size_t len, struct cmn_buf *resp, char *err,
         size_t errlen)
{
    struct tks *t = arg;
    enum cmn_scp_proto proto = CMN_SCP01;
    uint8_t ki[3], nki[3], hc[8], cc[8], seq[2], dc[2], want[8], ksd[160], wdek[32];
    size_t n, kin, nkin;
    struct cmn_keyset ks;
    struct cmn_key shared, dek;
    struct cmn_scp s;
    const char *v;
    size_t vl;

    (void)err;
    (void)errlen;
    (void)cmn_key_set(&shared, CMN_KEY_AES, gw_shared_raw, 16);
    if (tps_tks_field(body, len, "protocol", &v, &vl))
        proto = v[0] == '1' ? CMN_SCP01 : v[0] == '2' ? CMN_SCP02 : CMN_SCP03;
    assert_true(field(body, len, "KeyInfo", ki, sizeof(ki), &kin));
    if (field(body, len, "newKeyInfo", nki, sizeof(nki), &nkin)) {
        struct cmn_keyset oldks;
        const struct cmn_key *wrap;

        t->keyset_calls++;
        assert_string_equal(path, "/tks/agent/tks/createKeySetData");
        snprintf(t->keyset_body, sizeof(t->keyset_body), "%.*s", (int)len, body);
        if (t->keyset_status != 0) {
            (void)cmn_buf_printf(resp, "status=%d", t->keyset_status);
            return TPS_OK;
        }
        v2_keys(proto, ki[0], &oldks);
        v2_keys(proto, nki[0], &ks);
        wrap = &oldks.kek;
        if (proto == CMN_SCP02) {
            assert_true(field(body, len, "wrappedDekKey", wdek, sizeof(wdek), &n));
            assert_int_equal(cmn_scp_session_key_unwrap(&shared, wdek, n, CMN_KEY_DES3, &dek),
                             CMN_OK);
            wrap = &dek;
        }
        assert_int_equal(cmn_keyset_data_build(proto, wrap, &ks, ksd, sizeof(ksd), &n), CMN_OK);
        (void)cmn_buf_puts(resp, "status=0&keySetData=");
        (void)tps_tks_hash_append(resp, ksd, n);
        return TPS_OK;
    }
    t->session_calls++;
    v2_keys(proto, ki[0], &ks);
    cmn_scp_init(&s, proto);
    if (proto == CMN_SCP02) {
        assert_true(field(body, len, "sequenceCounter", seq, 2, &n));
        assert_true(field(body, len, "derivationConstant", dc, 2, &n));
        memset(hc, 0, 8);
        memset(cc, 0, 8);
        cmn_scp_set_challenges(&s, hc, cc, 6, seq);
        cmn_scp_derive(&s, &ks);
        (void)cmn_buf_puts(resp, "status=0");
        put_wrapped(resp, "sessionKey", &shared,
                    dc[1] == 0x82   ? &s.s_enc
                    : dc[1] == 0x01 ? &s.s_mac
                    : dc[1] == 0x02 ? &s.s_rmac
                                    : &s.dek);
        cmn_scp_cleanup(&s);
        return TPS_OK;
    }
    assert_true(field(body, len, "card_challenge", cc, 8, &n));
    assert_true(field(body, len, "host_challenge", hc, 8, &n));
    cmn_scp_set_challenges(&s, hc, cc, 8, NULL);
    cmn_scp_derive(&s, &ks);
    cmn_scp_host_cryptogram(&s, want);
    (void)cmn_buf_puts(resp, "status=0");
    if (proto == CMN_SCP03) {
        put_wrapped(resp, "macSessionKey", &shared, &s.s_mac);
        put_wrapped(resp, "encSessionKey", &shared, &s.s_enc);
        put_wrapped(resp, "kekSessionKey", &shared, &ks.kek);
    } else {
        put_wrapped(resp, "sessionKey", &shared, &s.s_mac);
        put_wrapped(resp, "encSessionKey", &shared, &s.s_enc);
    }
    (void)cmn_buf_puts(resp, "&hostCryptogram=");
    (void)tps_tks_hash_append(resp, want, 8);
    cmn_scp_cleanup(&s);
    return TPS_OK;
}

/* ---- the token DB record ---- */

static enum tps_rc
st_set(void *arg, const char *cuid, const char *nki, char *err, size_t errlen)
{
    struct store *s = arg;

    assert_string_equal(cuid, CUID);
    if (s->fail_set) {
        snprintf(err, errlen, "LDAP server down (test)");
        return TPS_EDB;
    }
    snprintf(s->pending, sizeof(s->pending), "%s", nki);
    snprintf(s->log + strlen(s->log), sizeof(s->log) - strlen(s->log), "set:%s;", nki);
    return TPS_OK;
}

static enum tps_rc
st_commit(void *arg, const char *cuid, const char *ki, char *err, size_t errlen)
{
    struct store *s = arg;

    (void)err;
    (void)errlen;
    assert_string_equal(cuid, CUID);
    if (s->pending[0] == '\0' && strcmp(s->key_info, ki) == 0)
        return TPS_OK;
    snprintf(s->key_info, sizeof(s->key_info), "%s", ki);
    s->pending[0] = '\0';
    snprintf(s->log + strlen(s->log), sizeof(s->log) - strlen(s->log), "commit:%s;", ki);
    return TPS_OK;
}

static enum tps_rc
st_clear(void *arg, const char *cuid, char *err, size_t errlen)
{
    struct store *s = arg;

    (void)cuid;
    (void)err;
    (void)errlen;
    s->pending[0] = '\0';
    snprintf(s->log + strlen(s->log), sizeof(s->log) - strlen(s->log), "clear;");
    return TPS_OK;
}

static enum tps_rc
st_activity(void *arg, const char *cuid, bool ok, const char *msg, char *err, size_t errlen)
{
    struct store *s = arg;

    (void)cuid;
    (void)msg;
    (void)err;
    (void)errlen;
    snprintf(s->log + strlen(s->log), sizeof(s->log) - strlen(s->log), "activity:%s;",
             ok ? "success" : "failure");
    return TPS_OK;
}

/* ---- one contact: the gateway's session in a thread, the card on this side ---- */

struct run {
    struct tps_env env;
    struct card *card;
    struct store *st;
    int fd;
    enum tps_rc rc;
    int status;
    char key_info[8];
    bool channel_open;
};

static void *
gw_side(void *p)
{
    struct run *r = p;
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct tps_session s;
    struct tps_keychange_store st = {st_set, st_commit, st_clear, st_activity, r->st};
    const struct cmn_http_hdr te[] = {{"Transfer-Encoding", "chunked"}};

    cmn_http_head_init(&h);
    if (cmn_http_conn_new_fd(r->fd, NULL, &c) != CMN_OK ||
        cmn_http_read_request_head(c, &h) != CMN_OK ||
        cmn_http_write_response_head(c, 200, NULL, te, 1) != CMN_OK)
        goto out;
    tps_session_init(&s, &r->env, c, "127.0.0.1");
    s.tok.gp_proto = r->card->proto;
    s.tok.have_cuid = true;
    memcpy(s.tok.cuid, cuid_raw, 10);
    snprintf(s.tok.cuid_hex, sizeof(s.tok.cuid_hex), "%s", CUID);
    memcpy(s.tok.cardmgr_aid, cardmgr, sizeof(cardmgr));
    s.tok.cardmgr_aid_len = sizeof(cardmgr);
    snprintf(s.tok.type, sizeof(s.tok.type), "userKey");
    r->rc = tps_keychange_check(&s, "format", r->st != NULL ? &st : NULL);
    r->status = s.end_status;
    r->channel_open = s.channel_open;
    snprintf(r->key_info, sizeof(r->key_info), "%s", s.tok.key_info_hex);
    tps_session_cleanup(&s);
out:
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    close(r->fd);
    return NULL;
}

static void
contact(struct run *r, const char *extra, struct tks *tks_state)
{
    const struct cmn_http_hdr hdrs[] = {{"Transfer-Encoding", "chunked"}};
    struct gw_fix f;
    struct cmn_key shared;
    struct tps_tks *tks = NULL;
    struct cmn_http_conn *c = NULL;
    struct cmn_buf in, out;
    struct cmn_tpsmsg m;
    struct cmn_http_head h;
    pthread_t th;
    int sv[2];
    bool last = false;

    gw_fix_init(&f);
    assert_int_equal(gw_fix_load(&f, extra, NULL), TPS_OK);
    (void)cmn_key_set(&shared, CMN_KEY_AES, gw_shared_raw, 16);
    assert_int_equal(tps_tks_new_custom("tks1", &shared, "defKeySet", tks_post, tks_state, &tks),
                     TPS_OK);
    r->env.cfg = f.cfg;
    r->env.tks = tks;
    r->card->st = r->st;
    r->card->dead = false;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    r->fd = sv[0];
    assert_int_equal(pthread_create(&th, NULL, gw_side, r), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[1], NULL, &c), CMN_OK);
    assert_int_equal(cmn_http_write_request_head(c, "POST", "/tps/tps", hdrs, 1), CMN_OK);
    cmn_buf_init(&in, 8192);
    cmn_buf_init(&out, 8192);
    cmn_tpsmsg_init(&m);
    cmn_http_head_init(&h);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    cmn_http_head_cleanup(&h);
    for (;;) {
        uint8_t cmd[300], ans[300];
        size_t cn, an;
        uint16_t sw;

        cmn_buf_reset(&in);
        if (cmn_http_read_chunk(c, &in, &last) != CMN_OK || last)
            break;
        assert_int_equal(cmn_tpsmsg_parse_framed(&m, in.data, in.len, 0), CMN_OK);
        assert_int_equal(m.type, CMN_TPS_MSG_TOKEN_PDU_REQUEST);
        assert_int_equal(cmn_tpsmsg_get_pdu(&m, cmd, sizeof(cmd), &cn), CMN_OK);
        if (r->card->dead)
            break; /* the gateway died: nothing more reaches the card */
        sw = card_cmd(r->card, cmd, cn, ans, &an);
        ans[an++] = (uint8_t)(sw >> 8);
        ans[an++] = (uint8_t)sw;
        cmn_buf_reset(&out);
        assert_int_equal(cmn_tpsmsg_build_token_pdu_response(&out, ans, an), CMN_OK);
        assert_int_equal(cmn_http_write_chunk(c, out.data, out.len), CMN_OK);
    }
    /* Closing our end fails the gateway's next read, as a crash would end the exchange. */
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(th, NULL);
    cmn_http_conn_free(c);
    close(sv[1]);
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&in);
    cmn_buf_cleanup(&out);
    tps_tks_free(tks);
    gw_fix_cleanup(&f);
}

static const char enable_v2[] = "op.format.userKey.update.symmetricKeys.enable=true\n"
                                "op.format.userKey.update.symmetricKeys.requiredVersion=2\n";

static void
test_keychange_upgrade_scp01(void **state)
{
    struct card card;
    struct store st = {.key_info = "0101"};
    struct tks t = {0};
    struct run r = {.card = &card, .st = &st};
    char expect[128];

    (void)state;
    card_init(&card, CMN_SCP01, 0x01);
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_OK);
    assert_true(r.channel_open);
    assert_string_equal(r.key_info, "0201");
    assert_int_equal(card.default_kv, 0x02);
    assert_int_equal(card.nsets, 1); /* P1 01 replaced the factory set */
    assert_int_equal(card.put_keys, 1);
    assert_true(card.pending_seen_at_put_key);
    assert_string_equal(card.put_key_head, "84D801814B"); /* 67 bytes + C-MAC, MAC only */
    assert_false(card.put_key_le);
    assert_int_equal(t.keyset_calls, 1);
    snprintf(expect, sizeof(expect), "newKeyInfo=#02#01&KDD=%s", "#40#90#79#01#00#1F#12#34#56#78");
    assert_non_null(strstr(t.keyset_body, expect));
    assert_non_null(strstr(t.keyset_body, "&KeyInfo=#01#01&keySet=defKeySet&protocol=1"));
    assert_non_null(strstr(t.keyset_body, "tokencuid=#40#90#79#01#00#1F#12#34#56#78"));
    assert_null(strstr(t.keyset_body, "wrappedDekKey"));
    assert_string_equal(st.log, "set:0201;commit:0201;activity:success;");
    assert_true(audited("token.key_changeover_required", "from=0101 to=0201"));
    assert_true(audited("token.key_changeover ", "from=0101 to=0201 result=success"));
}

static void
test_keychange_upgrade_scp02(void **state)
{
    struct card card;
    struct store st = {.key_info = "0102"};
    struct tks t = {0};
    struct run r = {.card = &card, .st = &st};

    (void)state;
    card_init(&card, CMN_SCP02, 0x01);
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_OK);
    assert_string_equal(r.key_info, "0202");
    assert_int_equal(card.default_kv, 0x02);
    assert_string_equal(card.put_key_head, "84D801814B");
    assert_true(card.put_key_le); /* Java adds Le 00 on SCP02/03 */
    /* the TKS sees SCP02 key info as vv01 and gets the session DEK */
    assert_non_null(strstr(t.keyset_body, "newKeyInfo=#02#01&"));
    assert_non_null(strstr(t.keyset_body, "&KeyInfo=#01#01&"));
    assert_non_null(strstr(t.keyset_body, "&protocol=2&wrappedDekKey=#"));
    assert_string_equal(st.log, "set:0201;commit:0202;activity:success;");
}

static void
test_keychange_upgrade_scp03(void **state)
{
    struct card card;
    struct store st = {.key_info = "010300"};
    struct tks t = {0};
    struct run r = {.card = &card, .st = &st};

    (void)state;
    card_init(&card, CMN_SCP03, 0x01);
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_OK);
    assert_string_equal(r.key_info, "020300"); /* version || 03 || i kept (§5.4 step 3) */
    assert_int_equal(card.default_kv, 0x02);
    assert_true(card.put_key_le);
    assert_non_null(strstr(t.keyset_body, "newKeyInfo=#02#03#00&"));
    assert_non_null(strstr(t.keyset_body, "&KeyInfo=#01#03#00&keySet=defKeySet&protocol=3"));
    assert_string_equal(st.log, "set:020300;commit:020300;activity:success;");
}

static void
test_keychange_disabled_or_current(void **state)
{
    struct card card;
    struct store st = {.key_info = "0201"};
    struct tks t = {0};
    struct run r = {.card = &card, .st = &st};

    (void)state;
    /* changeover off: the card default, whatever it holds */
    card_init(&card, CMN_SCP01, 0x01);
    contact(&r, NULL, &t);
    assert_int_equal(r.rc, TPS_OK);
    assert_string_equal(r.key_info, "0101");
    assert_int_equal(t.keyset_calls, 0);
    assert_string_equal(st.log, "");
    /* the card already holds version 2: nothing to change, nothing written */
    card_init(&card, CMN_SCP01, 0x02);
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_OK);
    assert_string_equal(r.key_info, "0201");
    assert_int_equal(t.keyset_calls, 0);
    assert_int_equal(card.put_keys, 0);
    assert_string_equal(st.log, "");
}

static void
test_keychange_crash_after_put_key(void **state)
{
    struct card card;
    struct store st = {.key_info = "0101"};
    struct tks t = {0};
    struct run r = {.card = &card, .st = &st};

    (void)state;
    card_init(&card, CMN_SCP01, 0x01);
    card.hang_after_put_key = true;
    contact(&r, enable_v2, &t);
    assert_int_not_equal(r.rc, TPS_OK);
    assert_int_equal(card.default_kv, 0x02); /* the card has the new keys ... */
    assert_string_equal(st.pending, "0201"); /* ... and the record names them */
    assert_string_equal(st.key_info, "0101");
    assert_null(strstr(st.log, "commit"));
    /* next contact: version 2 opens at once, the pending record is settled, no new PUT KEY */
    card.hang_after_put_key = false;
    memset(st.log, 0, sizeof(st.log));
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_OK);
    assert_string_equal(r.key_info, "0201");
    assert_int_equal(card.put_keys, 1);
    assert_int_equal(t.keyset_calls, 1);
    assert_string_equal(st.log, "commit:0201;");
    assert_string_equal(st.pending, "");
}

static void
test_keychange_failures(void **state)
{
    struct card card;
    struct store st = {.key_info = "0101"};
    struct tks t = {.keyset_status = 1};
    struct run r = {.card = &card, .st = &st};

    (void)state;
    /* TKS: no master key on any clone */
    card_init(&card, CMN_SCP01, 0x01);
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_EBACKEND);
    assert_int_equal(r.status, CMN_TPS_STATUS_KEY_CHANGE_OVER);
    assert_int_equal(card.put_keys, 0);
    assert_string_equal(st.log, "activity:failure;");

    /* the pending record cannot be written: the card is not touched */
    t.keyset_status = 0;
    st.fail_set = true;
    st.log[0] = '\0';
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_EDB);
    assert_int_equal(r.status, CMN_TPS_STATUS_DB);
    assert_int_equal(card.put_keys, 0);
    assert_int_equal(card.default_kv, 0x01);

    /* the card refuses PUT KEY: status 20, the pending value is cleared, keys unchanged */
    st.fail_set = false;
    st.log[0] = '\0';
    card.put_key_sw = 0x6A80;
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_ECARD);
    assert_int_equal(r.status, CMN_TPS_STATUS_KEY_CHANGE_OVER);
    assert_int_equal(card.put_keys, 1);
    assert_int_equal(card.default_kv, 0x01);
    assert_string_equal(st.log, "set:0201;clear;activity:failure;");

    /* a card without the applet's key set and no DB: the changeover still runs */
    card.put_key_sw = 0;
    r.st = NULL;
    contact(&r, enable_v2, &t);
    assert_int_equal(r.rc, TPS_OK);
    assert_int_equal(card.default_kv, 0x02);
}

int
main(void)
{
    char dir[] = "/tmp/kctest.XXXXXX";
    int rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keychange_upgrade_scp01),
        cmocka_unit_test(test_keychange_upgrade_scp02),
        cmocka_unit_test(test_keychange_upgrade_scp03),
        cmocka_unit_test(test_keychange_disabled_or_current),
        cmocka_unit_test(test_keychange_crash_after_put_key),
        cmocka_unit_test(test_keychange_failures),
    };

    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(audit_path, sizeof(audit_path), "%s/audit.log", dir);
    if (cmn_audit_open(audit_path, false) != CMN_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    cmn_audit_close();
    (void)unlink(audit_path);
    (void)rmdir(dir);
    return rc;
}
