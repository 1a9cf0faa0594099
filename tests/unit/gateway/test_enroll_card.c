/* tests/unit/gateway/test_enroll_card.c - whole enroll and PIN reset operations over a
 * socketpair against an in-process vtoken card, TKS (computeSessionKey + encryptData with
 * developer keys) and CA (real X.509 signed with OpenSSL): the card's certificates as the
 * middleware reads them, signatures through the card verified with them, exactly one
 * certificate per slot, a CA outcome that stays unknown, the TKS down, and an enrollment intent
 * left open by a lost CA answer reconciled by the next enroll against a real slapd (revoked as
 * superseded, recorded, intent closed). The operations run
 * through tps_session_run (the daemon's dispatch, env.enroll). Needs libvtoken.a: built with -DTPS_TEST_WITH_VTOKEN by its own rule in
 * gateway/gateway.mk (see docs/enroll.md); without it the test fails and says so. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#ifdef TPS_TEST_WITH_VTOKEN

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/apdu.h"
#include "common/http.h"
#include "common/p11obj.h"
#include "common/tpsmsg.h"
#include "gateway/enroll.h"
#include "gateway/keygen.h"
#include "gateway/pinreset.h"
#include "gw_fixture.h"
#include "tdb_fixture.h"
#include "tokenclient/vtoken/vtoken.h"

static const struct cmn_cfg_key *const enroll_tables[] = {tps_enroll_cfg_keys, tps_ca_cfg_keys,
                                                          tps_kra_cfg_keys, NULL};

static const char ENROLL_CFG[] =
    "op.enroll.userKey.keyGen.keyType.num=2\n"
    "op.enroll.userKey.keyGen.keyType.value.0=signing\n"
    "op.enroll.userKey.keyGen.keyType.value.1=encryption\n"
    "op.enroll.userKey.keyGen.signing.certId=C1\n"
    "op.enroll.userKey.keyGen.signing.certAttrId=c1\n"
    "op.enroll.userKey.keyGen.signing.label=signing key for $userid$\n"
    "op.enroll.userKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment\n"
    "op.enroll.userKey.keyGen.encryption.certId=C2\n"
    "op.enroll.userKey.keyGen.encryption.keyUser=0\n"
    "op.enroll.userKey.keyGen.encryption.ca.profileId=caTokenUserEncryptionKeyEnrollment\n"
    "op.enroll.userKey.renewal.keyType.num=1\n"
    "op.enroll.userKey.renewal.keyType.value.0=signing\n"
    "op.enroll.userKey.renewal.signing.enable=true\n"
    "op.enroll.userKey.renewal.signing.gracePeriod.enable=true\n"
    "op.enroll.userKey.renewal.signing.gracePeriod.before=30\n"
    "op.enroll.userKey.renewal.signing.gracePeriod.after=10\n"
    "op.enroll.userKey.renewal.signing.ca.profileId=caTokenUserSigningKeyRenewal\n"
    "op.enroll.userKey.pinReset.pin.minLen=4\n"
    "op.enroll.userKey.pinReset.pin.maxLen=10\n";

static struct cmn_cfg *
parse_cfg(const char *text, struct cmn_buf *errs)
{
    struct cmn_cfg *c = NULL;

    (void)cmn_cfg_parse("enroll.cfg", text, strlen(text), enroll_tables, &c, errs);
    return c;
}

/* ---- a test CA ---- */

static EVP_PKEY *ca_key;

static uint8_t *
issue(const uint8_t *spki, size_t spki_len, const char *uid, long serial, long days_left,
      size_t *len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    unsigned char *der = NULL;
    int l;

    assert_non_null(pub);
    if (ca_key == NULL)
        ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(ca_key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "UID", MBSTRING_ASC, (const unsigned char *)uid, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Token Key User",
                               -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), days_left * 86400);
    X509_set_pubkey(x, pub);
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
    l = i2d_X509(x, &der);
    assert_true(l > 0);
    *len = (size_t)l;
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(pub);
    return der;
}

struct fake_ca {
    int enrolls, renews;
    long serial;
    bool unknown; /* the CA received the request; the answer is lost and not reconcilable */
    bool lost;    /* the CA issues, the answer is lost (UNKNOWN); find_by_key knows it */
    uint8_t *lost_der;      /* what it issued for the lost answer */
    size_t lost_der_len;
    char lost_serial[32];
    int finds, revokes, revoke_reason;
    char revoked[32];
    uint8_t spki[TPS_ENROLL_MAX_KEYS][TPS_KEYGEN_SPKI_MAX];
    size_t spki_len[TPS_ENROLL_MAX_KEYS];
    char profiles[TPS_ENROLL_MAX_KEYS][128];
};

static enum tps_rc
fake_ca_enroll(void *arg, const char *conn, struct fo_req *fo, const struct tps_ca_enroll_req *in,
               struct tps_ca_result *out)
{
    struct fake_ca *f = arg;
    uint8_t *der;
    size_t len;

    (void)fo;
    assert_string_equal(conn, "ca1");
    assert_string_equal(in->user_id, "jdoe");
    assert_string_equal(in->cuid, "40907901001F12345678");
    if (f->enrolls < TPS_ENROLL_MAX_KEYS) {
        memcpy(f->spki[f->enrolls], in->spki, in->spki_len);
        f->spki_len[f->enrolls] = in->spki_len;
        snprintf(f->profiles[f->enrolls], sizeof(f->profiles[0]), "%s", in->profile_id);
    }
    f->enrolls++;
    if (f->lost) {
        /* issued; the clone dies before answering */
        free(f->lost_der);
        der = issue(in->spki, in->spki_len, in->user_id, ++f->serial, 365, &len);
        f->lost_der = malloc(len);
        memcpy(f->lost_der, der, len);
        f->lost_der_len = len;
        OPENSSL_free(der);
        snprintf(f->lost_serial, sizeof(f->lost_serial), "%lx", f->serial);
        out->outcome = TPS_CA_UNKNOWN;
        snprintf(out->clone, sizeof(out->clone), "ca1 127.0.0.1:9443");
        snprintf(out->msg, sizeof(out->msg), "ca1: request sent, clone died before answering");
        return TPS_EBACKEND;
    }
    if (f->unknown) {
        out->outcome = TPS_CA_UNKNOWN;
        snprintf(out->clone, sizeof(out->clone), "ca1 127.0.0.1:9443");
        snprintf(out->key_hash, sizeof(out->key_hash), "%064d", 0);
        snprintf(out->msg, sizeof(out->msg), "ca1: request sent, clone died before answering");
        return TPS_EBACKEND;
    }
    der = issue(in->spki, in->spki_len, in->user_id, ++f->serial, 365, &len);
    out->cert = malloc(len);
    memcpy(out->cert, der, len);
    out->cert_len = len;
    OPENSSL_free(der);
    snprintf(out->serial, sizeof(out->serial), "%lx", f->serial);
    out->outcome = TPS_CA_DONE;
    return TPS_OK;
}

static enum tps_rc
fake_ca_renew(void *arg, const char *conn, struct fo_req *fo, const struct tps_ca_renew_req *in,
              struct tps_ca_result *out)
{
    (void)arg;
    (void)conn;
    (void)fo;
    (void)in;
    (void)out;
    fail_msg("no renewal expected without a token DB");
    return TPS_EINVAL;
}

/* findByKey: the certificate of the lost answer, when asked for its key. */
static enum tps_rc
fake_ca_find(void *arg, const char *conn, struct fo_req *fo, const char *sid,
             const uint8_t *spki, size_t spki_len, struct tps_ca_result *out)
{
    struct fake_ca *f = arg;
    const unsigned char *p;
    X509 *x;
    EVP_PKEY *k;
    unsigned char *der = NULL;
    int n;

    (void)conn;
    (void)fo;
    (void)sid;
    f->finds++;
    out->outcome = TPS_CA_NOT_DONE;
    if (f->lost_der == NULL)
        return TPS_OK;
    p = f->lost_der;
    x = d2i_X509(NULL, &p, (long)f->lost_der_len);
    assert_non_null(x);
    k = X509_get0_pubkey(x);
    n = i2d_PUBKEY(k, &der);
    if (n > 0 && (size_t)n == spki_len && memcmp(der, spki, spki_len) == 0) {
        out->cert = malloc(f->lost_der_len);
        memcpy(out->cert, f->lost_der, f->lost_der_len);
        out->cert_len = f->lost_der_len;
        snprintf(out->serial, sizeof(out->serial), "%s", f->lost_serial);
        out->outcome = TPS_CA_DONE;
    }
    OPENSSL_free(der);
    X509_free(x);
    return TPS_OK;
}

static enum tps_rc
fake_ca_revoke(void *arg, const char *conn, struct fo_req *fo, const char *sid,
               const char *serial, int reason, struct tps_ca_result *out)
{
    struct fake_ca *f = arg;

    (void)conn;
    (void)fo;
    (void)sid;
    f->revokes++;
    f->revoke_reason = reason;
    snprintf(f->revoked, sizeof(f->revoked), "%s", serial);
    out->outcome = TPS_CA_DONE;
    return TPS_OK;
}

static const struct tps_enroll_ops fake_ops = {
    .ca_enroll = fake_ca_enroll,
    .ca_renew = fake_ca_renew,
    .ca_find_by_key = fake_ca_find,
    .ca_revoke = fake_ca_revoke,
};

/* ---- whole operations over a socketpair ---- */

/* TKS: computeSessionKey from the fixture, plus encryptData with the developer KEK. */
static enum tps_rc
tks_post(void *arg, const char *path, const char *body, size_t len, struct cmn_buf *resp,
         char *err, size_t errlen)
{
    struct gw_tks *t = arg;
    uint8_t data[16], enc[16], ki[3];
    size_t n, kin;
    struct cmn_keyset ks;
    const char *v;
    size_t vl;

    if (!tps_tks_field(body, len, "data", &v, &vl))
        return gw_tks_post(arg, path, body, len, resp, err, errlen);
    t->calls++;
    assert_true(gw_field(body, len, "data", data, 16, &n) && n == 16);
    assert_true(gw_field(body, len, "KeyInfo", ki, 3, &kin));
    cmn_keyset_developer(&ks, CMN_SCP01, ki[0]);
    /* isRandom=true: the TKS encrypts bytes of its own, not ours (backends §2.6) */
    for (size_t i = 0; i < 16; i++)
        data[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(cmn_scp_challenge_encrypt(&ks.kek, data, enc), CMN_OK);
    (void)cmn_buf_puts(resp, "status=0&data=");
    (void)tps_tks_hash_append(resp, data, 16);
    (void)cmn_buf_puts(resp, "&encryptedData=");
    (void)tps_tks_hash_append(resp, enc, 16);
    return TPS_OK;
}

struct world {
    struct gw_fix fix;
    struct gw_tks tks_state;
    struct gw_auth auth_state;
    struct tps_tks *tks;
    struct tps_env env;
    struct cmn_cfg *ecfg;
    struct fake_ca ca;
    struct tps_enroll_env ee;
    struct tps_tokendb_cfg *tdb_cfg; /* the intent test's token DB */
};

struct client {
    struct vt_card *card;
    int op;
    const char *ext;
    const char *pin;
    unsigned progress[128];
    int nprogress;
    int pin_requests;
    bool got_end;
    int end_result, end_status;
};

struct srv_arg {
    struct world *w;
    int fd;
    enum tps_rc rc;
};

/* The daemon's path: request head, then tps_session_run (Begin Op, dispatch through
 * env.enroll, END_OP). */
static void *
srv_main(void *p)
{
    struct srv_arg *a = p;
    struct cmn_http_limits lim = {.max_chunk = 9999 + 8, .timeout_ms = 10000};
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct tps_session *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    cmn_http_head_init(&h);
    assert_int_equal(cmn_http_conn_new_fd(a->fd, &lim, &c), CMN_OK);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    tps_session_init(s, &a->w->env, c, "127.0.0.1");
    a->rc = tps_session_run(s);
    tps_session_cleanup(s);
    free(s);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    close(a->fd);
    return NULL;
}

static void
send_msg(struct cmn_http_conn *c, struct cmn_buf *b)
{
    assert_int_equal(cmn_http_write_chunk(c, b->data, b->len), CMN_OK);
    cmn_buf_reset(b);
}

static void
answer(struct client *cl, struct cmn_http_conn *c, struct cmn_tpsmsg *m, struct cmn_buf *out)
{
    uint8_t apdu[300], resp[VT_RESP_MAX];
    size_t n, rn;
    unsigned long v = 0;

    switch (m->type) {
    case CMN_TPS_MSG_TOKEN_PDU_REQUEST:
        assert_int_equal(cmn_tpsmsg_get_pdu(m, apdu, sizeof(apdu), &n), CMN_OK);
        assert_int_equal(vt_card_transmit(cl->card, apdu, n, resp, sizeof(resp), &rn), CMN_OK);
        assert_int_equal(cmn_tpsmsg_build_token_pdu_response(out, resp, rn), CMN_OK);
        break;
    case CMN_TPS_MSG_LOGIN_REQUEST:
        assert_int_equal(cmn_tpsmsg_build_login_response(out, "jdoe", "Secret.123"), CMN_OK);
        break;
    case CMN_TPS_MSG_NEW_PIN_REQUEST:
        cl->pin_requests++;
        assert_int_equal(cmn_tpsmsg_build_new_pin_response(out, cl->pin), CMN_OK);
        break;
    case CMN_TPS_MSG_STATUS_UPDATE_REQUEST:
        assert_int_equal(cmn_tpsmsg_get_uint(m, "current_state", 100, &v), CMN_OK);
        if (cl->nprogress < 128)
            cl->progress[cl->nprogress++] = (unsigned)v;
        assert_int_equal(cmn_tpsmsg_build_status_update_response(out, (unsigned)v), CMN_OK);
        break;
    case CMN_TPS_MSG_END_OP:
        cl->got_end = true;
        assert_int_equal(cmn_tpsmsg_get_uint(m, "result", 1, &v), CMN_OK);
        cl->end_result = (int)v;
        assert_int_equal(cmn_tpsmsg_get_uint(m, "message", 100, &v), CMN_OK);
        cl->end_status = (int)v;
        return;
    default:
        fail_msg("unexpected message type %d", m->type);
    }
    send_msg(c, out);
}

static enum tps_rc
run(struct world *w, struct client *cl)
{
    const struct cmn_http_hdr hdrs[] = {{"Host", "tps.example.org"},
                                        {"Transfer-Encoding", "chunked"}};
    struct cmn_http_limits lim = {.max_chunk = 65536, .timeout_ms = 10000};
    struct srv_arg sa = {.w = w};
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
    assert_int_equal(cmn_tpsmsg_build_begin_op(&out, cl->op, cl->ext), CMN_OK);
    send_msg(c, &out);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    for (;;) {
        cmn_buf_reset(&in);
        if (cmn_http_read_chunk(c, &in, &last) != CMN_OK || last)
            break;
        if (cmn_tpsmsg_parse_framed(&m, in.data, in.len, 0) != CMN_OK)
            fail_msg("server sent a bad message: %s", m.err);
        answer(cl, c, &m, &out);
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

static int
world_setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct cmn_key shared;
    struct cmn_buf errs;
    char audit[400];

    if (w == NULL)
        return -1;
    gw_fix_init(&w->fix);
    *state = w;
    snprintf(audit, sizeof(audit), "%s/audit.log", w->fix.dir);
    assert_int_equal(cmn_audit_open(audit, false), CMN_OK);
    (void)cmn_key_set(&shared, CMN_KEY_AES, gw_shared_raw, 16);
    assert_int_equal(tps_tks_new_custom("tks1", &shared, "defKeySet", tks_post, &w->tks_state,
                                        &w->tks),
                     TPS_OK);
    cmn_buf_init(&errs, 65536);
    if (gw_fix_load(&w->fix,
                    "op.enroll.mappingResolver=none\n"
                    "op.pinReset.mappingResolver=none\n",
                    &errs) != TPS_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    w->ecfg = parse_cfg(ENROLL_CFG, &errs);
    if (w->ecfg == NULL)
        fail_msg("enroll config: %s", cmn_buf_cstr(&errs));
    cmn_buf_cleanup(&errs);
    w->env.cfg = w->fix.cfg;
    w->env.tks = w->tks;
    w->env.auth_ops = &gw_auth_ops;
    w->env.auth = &w->auth_state;
    w->ee.cfg = w->ecfg;
    w->ee.ops = &fake_ops;
    w->ee.ops_arg = &w->ca;
    w->env.enroll = &w->ee;
    return 0;
}

static int
world_teardown(void **state)
{
    struct world *w = *state;

    cmn_audit_close();
    tps_tks_free(w->tks);
    cmn_cfg_unref(w->ecfg);
    gw_fix_cleanup(&w->fix);
    free(w);
    return 0;
}

static struct vt_card *
make_card(void)
{
    struct vt_config vc;
    struct vt_card *card = NULL;
    char err[256];

    vt_config_default(&vc);
    assert_int_equal(vt_config_finish(&vc, err, sizeof(err)), CMN_OK);
    assert_int_equal(vt_card_new(&vc, &card), CMN_OK);
    return card;
}

static void
xmit(struct vt_card *card, const struct cmn_apdu *a, struct cmn_rapdu *r)
{
    uint8_t raw[CMN_APDU_MAX_WIRE], resp[VT_RESP_MAX];
    size_t n, rn;

    assert_int_equal(cmn_apdu_encode(a, raw, sizeof(raw), &n), CMN_OK);
    assert_int_equal(vt_card_transmit(card, raw, n, resp, sizeof(resp), &rn), CMN_OK);
    assert_int_equal(cmn_rapdu_decode(resp, rn, r), CMN_OK);
}

/* Reads z0 as the middleware does (B0 56 with the zero nonce, card spec §6.4). */
static void
read_z0(struct vt_card *card, struct cmn_p11obj *o)
{
    static const uint8_t aid[] = {0x62, 0x76, 0x01, 0xFF, 0x00, 0x00, 0x00};
    static const uint8_t zero[8] = {0};
    struct cmn_apdu a;
    struct cmn_rapdu r;
    struct cmn_ck_object obj;
    uint8_t *buf = NULL;
    size_t size = 0;

    assert_int_equal(cmn_apdu_select_aid(&a, aid, sizeof(aid), false), CMN_OK);
    xmit(card, &a, &r);
    assert_int_equal(r.sw, 0x9000);
    for (bool first = true;; first = false) {
        assert_int_equal(cmn_apdu_list_objects(&a, first), CMN_OK);
        xmit(card, &a, &r);
        if (r.sw != 0x9000)
            break;
        assert_int_equal(cmn_ck_object_parse(r.data, r.len, &obj), CMN_OK);
        if (obj.id == CMN_P11OBJ_Z0)
            size = obj.size;
    }
    assert_true(size >= 255); /* coolkey reads 255 bytes first (§6.4) */
    buf = malloc(size);
    for (size_t off = 0; off < size; off += 200) {
        size_t n = size - off < 200 ? size - off : 200;
        assert_int_equal(cmn_apdu_read_object(&a, CMN_P11OBJ_Z0, (uint32_t)off, (unsigned)n, zero,
                                              false),
                         CMN_OK);
        xmit(card, &a, &r);
        assert_int_equal(r.sw, 0x9000);
        assert_int_equal(r.len, n);
        memcpy(buf + off, r.data, n);
    }
    assert_int_equal(cmn_p11obj_parse(o, buf, size, 0), CMN_OK);
    free(buf);
}

/* Signs through the card as coolkey/OpenSC do (VERIFY PIN, COMPUTE CRYPT raw RSA over a
 * PKCS#1 type-1 block) and verifies the signature with the certificate's public key. */
static void
card_sign_verifies(struct vt_card *card, const char *pin, uint8_t key_no, const uint8_t *der,
                   size_t der_len, bool expect_ok)
{
    static const uint8_t aid[] = {0x62, 0x76, 0x01, 0xFF, 0x00, 0x00, 0x00};
    static const uint8_t di[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
                                 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    EVP_PKEY *pub;
    EVP_PKEY_CTX *ctx;
    uint8_t digest[32], block[128], nonce[8];
    const uint8_t *sig;
    size_t siglen;
    struct cmn_apdu a;
    struct cmn_rapdu r;

    assert_non_null(x);
    pub = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_get_bits(pub), 1024);
    for (size_t i = 0; i < 32; i++)
        digest[i] = (uint8_t)(i * 7);
    block[0] = 0;
    block[1] = 1;
    memset(block + 2, 0xFF, sizeof(block) - 3 - sizeof(di) - 32);
    block[sizeof(block) - 1 - sizeof(di) - 32] = 0;
    memcpy(block + sizeof(block) - sizeof(di) - 32, di, sizeof(di));
    memcpy(block + sizeof(block) - 32, digest, 32);
    assert_int_equal(cmn_apdu_select_aid(&a, aid, sizeof(aid), false), CMN_OK);
    xmit(card, &a, &r);
    assert_int_equal(cmn_apdu_verify_pin(&a, 0, (const uint8_t *)pin, strlen(pin), true),
                     CMN_OK);
    xmit(card, &a, &r);
    if (!expect_ok) {
        assert_int_not_equal(r.sw, 0x9000);
        X509_free(x);
        return;
    }
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(cmn_ck_nonce_parse(r.data, r.len, nonce), CMN_OK);
    assert_int_equal(cmn_apdu_compute_crypt(&a, key_no, 0x00, 0x03, 0x01, block, sizeof(block),
                                            nonce),
                     CMN_OK);
    xmit(card, &a, &r);
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(cmn_ck_crypt_parse(r.data, r.len, &sig, &siglen), CMN_OK);
    ctx = EVP_PKEY_CTX_new(pub, NULL);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, siglen, digest, sizeof(digest)), 1);
    EVP_PKEY_CTX_free(ctx);
    X509_free(x);
}

static bool
audit_has(struct world *w, const char *needle)
{
    char path[400], buf[65536];
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/audit.log", w->fix.dir);
    f = fopen(path, "r");
    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void
test_enroll_fresh_card(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 1, .pin = "1234abcd",
                        .ext = "tokenType=userKey&clientVersion=test&statusUpdate=true"};
    struct cmn_p11obj *o = calloc(1, sizeof(*o));
    const struct cmn_p11obj_attr *v1, *v2, *lab;
    uint8_t mod[512];
    size_t ml;
    unsigned bits;

    cl.card = make_card();
    assert_int_equal(run(w, &cl), TPS_OK);
    assert_true(cl.got_end);
    assert_int_equal(cl.end_result, 0);
    assert_int_equal(cl.pin_requests, 1);
    /* exactly one certificate per slot, each for the key the card proved it holds */
    assert_int_equal(w->ca.enrolls, 2);
    assert_string_equal(w->ca.profiles[0], "caTokenUserSigningKeyEnrollment");
    assert_string_equal(w->ca.profiles[1], "caTokenUserEncryptionKeyEnrollment");
    assert_int_equal(tps_keygen_spki_parse(w->ca.spki[0], w->ca.spki_len[0], &bits, mod,
                                           sizeof(mod), &ml),
                     TPS_OK);
    assert_int_equal(bits, 1024);
    assert_false(w->ca.spki_len[0] == w->ca.spki_len[1] &&
                 memcmp(w->ca.spki[0], w->ca.spki[1], w->ca.spki_len[0]) == 0);
    /* progress: non-decreasing, ends at 100 */
    assert_true(cl.nprogress >= 6);
    for (int i = 1; i < cl.nprogress; i++)
        assert_true(cl.progress[i] >= cl.progress[i - 1]);
    assert_int_equal(cl.progress[cl.nprogress - 1], 100);
    /* the card: personalized, z0 with both certificates as the middleware reads it */
    assert_int_equal(vt_card_life_cycle(cl.card), 0x0F);
    read_z0(cl.card, o);
    v1 = cmn_p11obj_attr(cmn_p11obj_find(o, CMN_P11OBJ_ID('c', 1)), CMN_P11_CKA_VALUE);
    v2 = cmn_p11obj_attr(cmn_p11obj_find(o, CMN_P11OBJ_ID('c', 2)), CMN_P11_CKA_VALUE);
    lab = cmn_p11obj_attr(cmn_p11obj_find(o, CMN_P11OBJ_ID('c', 1)), CMN_P11_CKA_LABEL);
    assert_non_null(v1);
    assert_non_null(v2);
    assert_non_null(lab);
    assert_memory_equal(lab->val, "signing key for jdoe", lab->len);
    assert_int_equal(o->name_len, 4);
    assert_memory_equal(o->name, "jdoe", 4);
    /* a signature made by the card with each key verifies with its certificate */
    card_sign_verifies(cl.card, "1234abcd", 2, v1->val, v1->len, true);
    card_sign_verifies(cl.card, "1234abcd", 4, v2->val, v2->len, true);
    card_sign_verifies(cl.card, "password", 2, v1->val, v1->len, false);
    assert_true(audit_has(w, "enroll.cert_issued"));
    cmn_p11obj_cleanup(o);

    /* PIN reset on the same card: the new PIN signs, the old one does not */
    {
        struct client pr = {.op = 3, .pin = "9876zyx",
                            .ext = "tokenType=userKey&statusUpdate=true"};
        pr.card = cl.card;
        assert_int_equal(run(w, &pr), TPS_OK);
        assert_int_equal(pr.end_result, 0);
        assert_int_equal(pr.pin_requests, 1);
        assert_int_equal(pr.progress[pr.nprogress - 1], 100);
        read_z0(cl.card, o);
        v1 = cmn_p11obj_attr(cmn_p11obj_find(o, CMN_P11OBJ_ID('c', 1)), CMN_P11_CKA_VALUE);
        card_sign_verifies(cl.card, "9876zyx", 2, v1->val, v1->len, true);
        card_sign_verifies(cl.card, "1234abcd", 2, v1->val, v1->len, false);
        cmn_p11obj_cleanup(o);
        /* a PIN outside the type's length limits: status 4, card PIN unchanged */
        pr.pin = "12";
        pr.got_end = false;
        pr.pin_requests = 0;
        assert_int_not_equal(run(w, &pr), TPS_OK);
        assert_int_equal(pr.end_result, 1);
        assert_int_equal(pr.end_status, 4);
        read_z0(cl.card, o);
        v1 = cmn_p11obj_attr(cmn_p11obj_find(o, CMN_P11OBJ_ID('c', 1)), CMN_P11_CKA_VALUE);
        card_sign_verifies(cl.card, "9876zyx", 2, v1->val, v1->len, true);
        cmn_p11obj_cleanup(o);
    }
    vt_card_close(cl.card);
    free(o);
}

static void
test_enroll_ca_outcome_unknown(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 1, .pin = "1234abcd", .ext = "tokenType=userKey"};

    memset(&w->ca, 0, sizeof(w->ca));
    w->ca.unknown = true;
    cl.card = make_card();
    assert_int_equal(run(w, &cl), TPS_EBACKEND);
    assert_true(cl.got_end);
    assert_int_equal(cl.end_result, 1);
    assert_int_equal(cl.end_status, 10);
    /* sent once, never to a second clone or again for the next key */
    assert_int_equal(w->ca.enrolls, 1);
    /* nothing written as if it had worked: the card is not personalized, and the unknown
     * outcome is in the audit log with the key hash and clone for reconciliation */
    assert_int_equal(vt_card_life_cycle(cl.card), 0x07);
    assert_true(audit_has(w, "enroll.reconcile"));
    assert_true(audit_has(w, "key_sha256="));
    vt_card_close(cl.card);
}

static void
test_enroll_tks_down(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 1, .pin = "1234abcd", .ext = "tokenType=userKey"};

    memset(&w->ca, 0, sizeof(w->ca));
    w->tks_state.down = true;
    cl.card = make_card();
    assert_int_not_equal(run(w, &cl), TPS_OK);
    w->tks_state.down = false;
    assert_int_equal(cl.end_result, 1);
    assert_int_equal(cl.end_status, 17);
    assert_int_equal(w->ca.enrolls, 0);
    assert_int_equal(vt_card_life_cycle(cl.card), 0x07);
    vt_card_close(cl.card);
}

/* ---- enrollment intents against a real token DB (slapd) ---- */

static struct tdb_fx tfx;

static int
world_tdb_setup(void **state)
{
    struct world *w;

    if (world_setup(state) != 0 || tps_ldap_global_init() != 0 ||
        tdb_fx_start(&tfx, "single") != 0)
        return -1;
    w = *state;
    w->tdb_cfg = tdb_fx_tokendb_cfg(&tfx, NULL, "gw1");
    if (w->tdb_cfg == NULL || tps_tokendb_open(w->tdb_cfg, &w->ee.tdb) != TPS_TDB_OK)
        return -1;
    return 0;
}

static int
world_tdb_teardown(void **state)
{
    struct world *w = *state;

    tps_tokendb_close(w->ee.tdb);
    tps_tokendb_cfg_free(w->tdb_cfg);
    free(w->ca.lost_der);
    tdb_fx_stop(&tfx);
    return world_teardown(state);
}

/* Certificate entries of the test card whose tokenSerial / tokenStatus match. */
static size_t
count_certs(struct world *w, bool intents, const char *status)
{
    struct tps_token_cert *c = NULL;
    size_t n = 0, k = 0;
    bool intent;

    assert_int_equal(tps_tokendb_cert_list(w->ee.tdb, "40907901001F12345678", &c, &n),
                     TPS_TDB_OK);
    for (size_t i = 0; i < n; i++) {
        intent = strncmp(c[i].serial, TPS_ENROLL_INTENT_PREFIX,
                         sizeof(TPS_ENROLL_INTENT_PREFIX) - 1) == 0;
        if (intent == intents && (status == NULL || strcmp(c[i].status, status) == 0))
            k++;
    }
    tps_token_certs_free(c, n);
    return k;
}

/* A CA answer lost after the certificate was issued leaves an open intent; the next enroll of
 * the token finds the certificate by key, revokes it as superseded, records it revoked and
 * closes the intent, then enrolls the card: no certificate unrecorded, none twice active. */
static void
test_enroll_intent_reconciled(void **state)
{
    struct world *w = *state;
    struct client cl = {.op = 1, .pin = "1234abcd", .ext = "tokenType=userKey"};
    struct client cl2 = {.op = 1, .pin = "1234abcd", .ext = "tokenType=userKey"};

    memset(&w->ca, 0, sizeof(w->ca));
    w->ca.lost = true;
    cl.card = make_card();
    assert_int_equal(run(w, &cl), TPS_EBACKEND);
    assert_int_equal(cl.end_status, 10);
    assert_int_equal(w->ca.enrolls, 1);
    /* the intent of the signing key is open: tokenSerial pending:<SPKI hash>, uninitialized */
    assert_int_equal(count_certs(w, true, TPS_ENROLL_INTENT_OPEN), 1);
    assert_int_equal(count_certs(w, false, NULL), 0);

    w->ca.lost = false;
    cl2.card = cl.card;
    assert_int_equal(run(w, &cl2), TPS_OK);
    assert_int_equal(cl2.end_status, 0);
    assert_int_equal(w->ca.finds, 1);
    assert_int_equal(w->ca.revokes, 1);
    assert_string_equal(w->ca.revoked, w->ca.lost_serial);
    assert_int_equal(w->ca.revoke_reason, TPS_CA_REASON_SUPERSEDED);
    assert_int_equal(count_certs(w, true, NULL), 0);       /* intent closed */
    assert_int_equal(count_certs(w, false, "revoked"), 1); /* the orphan, recorded */
    assert_int_equal(count_certs(w, false, "active"), 2);  /* the new enrollment */
    assert_true(audit_has(w, "enroll.cert_orphaned"));
    assert_int_equal(vt_card_life_cycle(cl2.card), 0x0F);
    vt_card_close(cl.card);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enroll_fresh_card, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_enroll_ca_outcome_unknown, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_enroll_tks_down, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_enroll_intent_reconciled, world_tdb_setup,
                                        world_tdb_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    EVP_PKEY_free(ca_key);
    return rc;
}

#else /* !TPS_TEST_WITH_VTOKEN */

#include <stdio.h>

/* The generic test rule does not link libvtoken.a: fail loudly rather than pass untested. */
int
main(void)
{
    fprintf(stderr, "test_enroll_card: built without libvtoken.a; add its rule to "
                    "gateway/gateway.mk (docs/enroll.md, \"Build\")\n");
    return 1;
}

#endif
