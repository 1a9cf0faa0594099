/* tests/unit/gateway/test_kra.c - gateway/kra.c: every answer shape and status of
 * GenerateKeyPair and TokenKeyRecovery, the key table, and calls against two in-process KRA
 * "clones": keygen with archival is never resent after possible delivery, keygen without
 * archival and recovery are, the HASH encoding of the transport keys, and key checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <libfailover/failover.h>

#include "common/cfg.h"
#include "gateway/kra.h"
#include "tests/unit/gateway/be_testsrv.h"

enum fault {
    F_NONE = 0,
    F_DROP,      /* read the request, run it, drop the connection */
    F_STATUS,    /* status=status_code */
    F_UNAUTH,    /* unauthorized= */
    F_WRONG_KEY, /* recovery: another key than the certificate's */
    F_EC,        /* answer an EC key (PCT) */
};

struct fake_kra {
    pthread_mutex_t mu;
    EVP_PKEY *rsa, *ec, *other;
    enum fault fault[2];
    int status_code;
    unsigned keygens[2], recoveries[2], archived;
    char last_body[8192];
};

static void
put_spki(struct cmn_buf *o, EVP_PKEY *k, bool pct)
{
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    struct cmn_buf t;

    cmn_buf_init(&t, 16384);
    if (pct) {
        cmn_pct_encode_all(o, der, (size_t)n);
    } else {
        /* B64 with line breaks, as the KRA writes it; the '+' stays raw and the breaks are
         * %-escaped, as a form encoder of the servlet container would leave them. */
        tps_ca_b64_append(&t, der, (size_t)n);
        for (size_t i = 0; i < t.len; i++) {
            if (i > 0 && i % 64 == 0)
                cmn_buf_puts(o, "%0A");
            cmn_buf_putc(o, t.data[i]);
        }
    }
    cmn_buf_cleanup(&t);
    OPENSSL_free(der);
}

static void
kra_handler(void *arg, int srv, const char *path, const char *body, size_t len,
            struct be_resp *r)
{
    struct fake_kra *k = arg;
    bool keygen = strcmp(path, "/kra/agent/kra/GenerateKeyPair") == 0;
    enum fault f;
    char v[64];
    static const uint8_t wrapped[48] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t iv[8] = {0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8};
    EVP_PKEY *key;

    pthread_mutex_lock(&k->mu);
    f = k->fault[srv];
    snprintf(k->last_body, sizeof(k->last_body), "%.*s", (int)len, body);
    r->ctype = "application/x-www-form-urlencoded";
    if (keygen) {
        k->keygens[srv]++;
        if (be_form(body, len, "archive", v, sizeof(v)) && strcmp(v, "true") == 0)
            k->archived++;
    } else if (strcmp(path, "/kra/agent/kra/TokenKeyRecovery") == 0) {
        k->recoveries[srv]++;
    } else {
        r->status = 404;
        goto out;
    }
    if (f == F_UNAUTH) {
        cmn_buf_puts(&r->body, "unauthorized=");
        goto out;
    }
    if (f == F_STATUS) {
        cmn_buf_printf(&r->body, "status=%d", k->status_code);
        goto out;
    }
    key = f == F_WRONG_KEY ? k->other : f == F_EC ? k->ec : k->rsa;
    if (be_form(body, len, "keytype", v, sizeof(v)) && strcmp(v, "EC") == 0)
        key = k->ec;
    cmn_buf_puts(&r->body, "status=0&wrapped_priv_key=");
    cmn_pct_encode_all(&r->body, wrapped, sizeof(wrapped));
    if (keygen) {
        cmn_buf_puts(&r->body, "&iv_param=");
        cmn_pct_encode_all(&r->body, iv, sizeof(iv));
        cmn_buf_puts(&r->body, "&public_key=");
        put_spki(&r->body, key, key == k->ec);
    } else { /* §5.2: public_key precedes iv_param */
        cmn_buf_puts(&r->body, "&public_key=");
        put_spki(&r->body, key, key == k->ec);
        cmn_buf_puts(&r->body, "&iv_param=");
        cmn_pct_encode_all(&r->body, iv, sizeof(iv));
    }
    r->drop = f == F_DROP;
out:
    pthread_mutex_unlock(&k->mu);
}

struct fix {
    struct fake_kra kra;
    struct be_srv srv[2];
    struct cmn_cfg *cfg;
    struct tps_kra *conn;
    struct fo_req *req;
    X509 *cert; /* a certificate for kra.rsa */
    uint8_t *cert_der;
    int cert_len;
};

static const struct cmn_cfg_key *const kra_tables[] = {tps_kra_cfg_keys, NULL};
static const uint8_t trans_des[4] = {0x00, 0x1F, 0xA0, 0xFF};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    char text[512], err[256];

    pthread_mutex_init(&f->kra.mu, NULL);
    f->kra.rsa = EVP_RSA_gen(1024);
    f->kra.other = EVP_RSA_gen(1024);
    f->kra.ec = EVP_EC_gen("P-256");
    assert_non_null(f->kra.rsa);
    f->cert = X509_new();
    X509_set_version(f->cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(f->cert), 5);
    X509_gmtime_adj(X509_getm_notBefore(f->cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(f->cert), 3600);
    X509_set_pubkey(f->cert, f->kra.rsa);
    assert_true(X509_sign(f->cert, f->kra.other, EVP_sha256()) > 0);
    f->cert_len = i2d_X509(f->cert, &f->cert_der);
    be_srv_start(&f->srv[0], 0, kra_handler, &f->kra);
    be_srv_start(&f->srv[1], 1, kra_handler, &f->kra);
    snprintf(text, sizeof(text),
             "conn.drm1.hostport=127.0.0.1:%u 127.0.0.1:%u\nconn.drm1.SSLOn=false\n"
             "conn.drm1.timeout=5\nconn.drm1.callTimeout=5\n",
             f->srv[0].port, f->srv[1].port);
    assert_int_equal(cmn_cfg_parse("t.cfg", text, strlen(text), kra_tables, &f->cfg, NULL),
                     CMN_OK);
    assert_int_equal(tps_kra_new(f->cfg, "drm1", &f->conn, err, sizeof(err)), TPS_OK);
    assert_string_equal(tps_kra_id(f->conn), "drm1");
    assert_int_equal(fo_req_new(&f->req), FO_OK);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    be_srv_stop(&f->srv[0]);
    be_srv_stop(&f->srv[1]);
    fo_req_free(f->req);
    tps_kra_free(f->conn);
    cmn_cfg_unref(f->cfg);
    X509_free(f->cert);
    OPENSSL_free(f->cert_der);
    EVP_PKEY_free(f->kra.rsa);
    EVP_PKEY_free(f->kra.ec);
    EVP_PKEY_free(f->kra.other);
    pthread_mutex_destroy(&f->kra.mu);
    free(f);
    return 0;
}

static struct tps_kra_keygen_req
keygen_req(bool archive)
{
    struct tps_kra_keygen_req in = {
        .cuid = "40906145C76224192D2B",
        .user_id = "joe",
        .archive = archive,
        .key_size = 1024,
        .trans = {.des = trans_des, .des_len = sizeof(trans_des), .aes_wrap_alg = "KWP"},
        .sid = "k1",
    };
    return in;
}

/* ---- parser --------------------------------------------------------------------------------- */

static void
test_kra_parse_shapes(void **state)
{
    struct fix *f = *state;
    struct cmn_buf b;
    struct tps_kra_result r;

    cmn_buf_init(&b, 64 * 1024);
    /* RSA, B64 with escaped line breaks. */
    cmn_buf_puts(&b, "status=0&wrapped_priv_key=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10"
                     "&iv_param=%A1%A2%A3%A4%A5%A6%A7%A8&public_key=");
    put_spki(&b, f->kra.rsa, false);
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_parse((const char *)b.data, b.len, false, &r), TPS_OK);
    assert_int_equal(r.app_status, 0);
    assert_false(r.is_ec);
    assert_int_equal(r.key_bits, 1024);
    assert_int_equal(r.wrapped_len, 16);
    assert_int_equal(r.iv_len, 8);
    assert_int_equal(r.iv[0], 0xA1);
    tps_kra_result_cleanup(&r);
    assert_null(r.wrapped);
    /* EC as PCT. */
    cmn_buf_reset(&b);
    cmn_buf_puts(&b, "status=0&wrapped_priv_key=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10"
                     "&public_key=");
    put_spki(&b, f->kra.ec, true);
    cmn_buf_puts(&b, "&iv_param=%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00");
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_parse((const char *)b.data, b.len, true, &r), TPS_OK);
    assert_true(r.is_ec);
    assert_int_equal(r.key_bits, 256);
    assert_int_equal(r.iv_len, 16);
    tps_kra_result_cleanup(&r);
    /* Statuses of §5.1 and §5.2, and broken answers. */
    {
        static const struct {
            const char *body;
            bool recovery;
            enum tps_rc rc;
            long st;
            const char *text;
        } cases[] = {
            {"status=2", false, TPS_OK, 2, "key generation service exception"},
            {"status=4", false, TPS_OK, 4, "crypto failure"},
            {"status=7", true, TPS_OK, 7, "no result recorded"},
            {"status=10", false, TPS_OK, 10, "no key-generation token"},
            {"status=11", false, TPS_OK, 11, "archival failure"},
            {"status=3", true, TPS_OK, 3, "neither cert nor keyid"},
            {"status=5", true, TPS_OK, 5, "not parsable"},
            {"status=6", true, TPS_OK, 6, "decode error"},
            {"status=8", true, TPS_OK, 8, "no key record"},
            {"status=9", true, TPS_OK, 9, "read failure"},
            {"unauthorized=", false, TPS_EAUTH, -1, "unauthorized"},
            {"", false, TPS_EPROTO, -1, "without status"},
            {"status=x", false, TPS_EPROTO, -1, "bad status"},
            {"status=0", false, TPS_EPROTO, 0, "public_key"},
            {"status=0&public_key=AAAA", false, TPS_EPROTO, 0, "public_key"},
            {"<html>error</html>", false, TPS_EPROTO, -1, "without status"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            tps_kra_result_init(&r);
            assert_int_equal(tps_kra_parse(cases[i].body, strlen(cases[i].body),
                                           cases[i].recovery, &r),
                             cases[i].rc);
            assert_int_equal(r.app_status, cases[i].st);
            if (strstr(r.msg, cases[i].text) == NULL)
                fail_msg("case %zu: msg '%s'", i, r.msg);
            tps_kra_result_cleanup(&r);
        }
    }
    /* Good key, bad IV length / bad wrapped key escapes. */
    {
        static const char *const tails[] = {
            "&iv_param=%A1%A2&wrapped_priv_key=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10",
            "&iv_param=%A1%A2%A3%A4%A5%A6%A7%A8&wrapped_priv_key=%0",
            "&iv_param=%A1%A2%A3%A4%A5%A6%A7%A8&wrapped_priv_key=%01%02",
            "&iv_param=%A1%A2%A3%A4%A5%A6%A7%A8",
        };
        for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
            cmn_buf_reset(&b);
            cmn_buf_puts(&b, "status=0&public_key=");
            put_spki(&b, f->kra.rsa, false);
            cmn_buf_puts(&b, tails[i]);
            tps_kra_result_init(&r);
            assert_int_equal(tps_kra_parse((const char *)b.data, b.len, false, &r), TPS_EPROTO);
            assert_null(r.wrapped);
            tps_kra_result_cleanup(&r);
        }
    }
    cmn_buf_cleanup(&b);
}

static void
test_kra_config(void **state)
{
    static const struct {
        const char *text;
        bool load_ok, new_ok;
    } cases[] = {
        {"conn.drm1.hostport=kra1:8443 kra2:8443\n", true, true},
        {"conn.drm1.SSLOn=false\n", true, false},
        {"conn.drm1.hostport=kra1:8443\nconn.drm1.servlet.GenerateKeyPair=x\n", true, false},
        {"conn.drm1.hostport=kra1:8443\nop.enroll.userKey.keyGen.aesKeyWrapAlg=ECB\n", false,
         false},
        {"conn.drm1.hostport=kra1:8443\nop.enroll.userKey.keyGen.encryption.serverKeygen."
         "archive=true\nop.enroll.userKey.keyGen.encryption.serverKeygen.drm.conn=drm1\n",
         true, true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_cfg *cfg = NULL;
        struct tps_kra *k = NULL;
        char err[512] = "";
        enum cmn_rc crc = cmn_cfg_parse("t.cfg", cases[i].text, strlen(cases[i].text),
                                        kra_tables, &cfg, NULL);
        if ((crc == CMN_OK) != cases[i].load_ok)
            fail_msg("case %zu: load %d", i, crc);
        if (crc != CMN_OK)
            continue;
        if ((tps_kra_new(cfg, "drm1", &k, err, sizeof(err)) == TPS_OK) != cases[i].new_ok)
            fail_msg("case %zu: %s", i, err);
        tps_kra_free(k);
        cmn_cfg_unref(cfg);
    }
}

/* ---- calls -------------------------------------------------------------------------------- */

static void
test_kra_keygen_ok(void **state)
{
    struct fix *f = *state;
    struct tps_kra_keygen_req in = keygen_req(true);
    struct tps_kra_result r;
    uint8_t *want = NULL;
    int wl = i2d_PUBKEY(f->kra.rsa, &want);

    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_OK);
    assert_int_equal(r.outcome, TPS_KRA_DONE);
    assert_int_equal(r.spki_len, (size_t)wl);
    assert_memory_equal(r.spki, want, (size_t)wl);
    assert_int_equal(r.key_bits, 1024);
    assert_int_equal(r.wrapped_len, 48);
    assert_int_equal(r.iv_len, 8);
    /* backends §5.1: HASH-encoded transport key, archive flag, RSA size. */
    assert_non_null(strstr(f->kra.last_body, "drm_trans_desKey=#00#1F#A0#FF"));
    assert_non_null(strstr(f->kra.last_body, "archive=true"));
    assert_non_null(strstr(f->kra.last_body, "keytype=RSA"));
    assert_non_null(strstr(f->kra.last_body, "keysize=1024"));
    assert_non_null(strstr(f->kra.last_body, "tokencuid=40906145C76224192D2B"));
    assert_non_null(strstr(f->kra.last_body, "drm_aes_wrapAlg=KWP"));
    assert_null(strstr(f->kra.last_body, "drm_trans_aesKey"));
    assert_int_equal(f->kra.keygens[0], 1);
    tps_kra_result_cleanup(&r);
    OPENSSL_free(want);

    /* EC: curve sent, EC key expected. */
    in.ec = true;
    in.ec_curve = "nistp384";
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_OK);
    assert_true(r.is_ec);
    assert_non_null(strstr(f->kra.last_body, "eckeycurve=nistp384"));
    assert_null(strstr(f->kra.last_body, "keysize"));
    tps_kra_result_cleanup(&r);

    /* A key of the other type is refused. */
    in.ec = false;
    f->kra.fault[0] = F_EC;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_KRA_REJECTED);
    tps_kra_result_cleanup(&r);

    /* Bad requests never leave. */
    in.trans.des = NULL;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_EINVAL);
    in = keygen_req(true);
    in.key_size = 100;
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_EINVAL);
    in = keygen_req(true);
    in.trans.aes_wrap_alg = "ECB";
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_EINVAL);
    tps_kra_result_cleanup(&r);
    assert_int_equal(f->kra.keygens[0] + f->kra.keygens[1], 3);
}

static void
test_kra_keygen_archive_never_resent(void **state)
{
    struct fix *f = *state;
    struct tps_kra_keygen_req in = keygen_req(true);
    struct tps_kra_result r;
    char want[80];

    f->kra.fault[0] = F_DROP;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_KRA_UNKNOWN);
    assert_int_equal(f->kra.keygens[0], 1);
    assert_int_equal(f->kra.keygens[1], 0); /* exactly one archival */
    assert_int_equal(f->kra.archived, 1);
    snprintf(want, sizeof(want), "drm1 127.0.0.1:%u", f->srv[0].port);
    assert_string_equal(r.clone, want);
    assert_non_null(strstr(r.msg, "not resent"));
    tps_kra_result_cleanup(&r);

    /* Without archival the call may move on (backends §6: safe in effect). */
    in.archive = false;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_OK);
    assert_int_equal(f->kra.keygens[1], 1);
    tps_kra_result_cleanup(&r);
}

static void
test_kra_errors(void **state)
{
    struct fix *f = *state;
    struct tps_kra_keygen_req in = keygen_req(true);
    struct tps_kra_result r;
    char want[160];

    f->kra.fault[0] = F_STATUS;
    f->kra.status_code = 11;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_KRA_REJECTED);
    assert_int_equal(r.app_status, 11);
    snprintf(want, sizeof(want),
             "KRA GenerateKeyPair: clone drm1 127.0.0.1:%u answered status=11 'archival failure'",
             f->srv[0].port);
    assert_string_equal(r.msg, want);
    assert_int_equal(f->kra.keygens[1], 0);
    tps_kra_result_cleanup(&r);

    f->kra.fault[0] = F_UNAUTH;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_keygen(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_KRA_AUTH);
    assert_int_equal(f->kra.keygens[1], 0); /* never fail over on AUTH */
    tps_kra_result_cleanup(&r);
}

static void
test_kra_recovery(void **state)
{
    struct fix *f = *state;
    struct tps_kra_recovery_req in = {
        .cuid = "40906145C76224192D2B",
        .user_id = "joe",
        .cert = f->cert_der,
        .cert_len = (size_t)f->cert_len,
        .trans = {.aes = trans_des, .aes_len = sizeof(trans_des), .aes_wrap_alg = "CBC"},
        .sid = "r1",
    };
    struct tps_kra_result r;

    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_recover(f->conn, f->req, &in, &r), TPS_OK);
    assert_int_equal(r.outcome, TPS_KRA_DONE);
    assert_non_null(strstr(f->kra.last_body, "cert="));
    assert_non_null(strstr(f->kra.last_body, "drm_trans_aesKey=#00#1F#A0#FF"));
    assert_non_null(strstr(f->kra.last_body, "drm_aes_wrapAlg=CBC"));
    assert_null(strstr(f->kra.last_body, "keyid="));
    tps_kra_result_cleanup(&r);

    /* Idempotent: a clone dying after receipt is replaced by the next. */
    f->kra.fault[0] = F_DROP;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_recover(f->conn, f->req, &in, &r), TPS_OK);
    assert_int_equal(f->kra.recoveries[1], 1);
    tps_kra_result_cleanup(&r);
    f->kra.fault[0] = F_NONE;

    /* A key that is not the certificate's is refused. */
    f->kra.fault[0] = F_WRONG_KEY;
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_recover(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_KRA_REJECTED);
    assert_null(r.wrapped);
    tps_kra_result_cleanup(&r);

    /* By key id; status 8. */
    f->kra.fault[0] = F_STATUS;
    f->kra.status_code = 8;
    in.cert = NULL;
    in.key_id = "1234";
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_recover(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_non_null(strstr(f->kra.last_body, "keyid=1234"));
    assert_non_null(strstr(r.msg, "status=8 'no key record for the certificate'"));
    tps_kra_result_cleanup(&r);

    in.key_id = "12x";
    tps_kra_result_init(&r);
    assert_int_equal(tps_kra_recover(f->conn, f->req, &in, &r), TPS_EINVAL);
    tps_kra_result_cleanup(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kra_parse_shapes, setup, teardown),
        cmocka_unit_test(test_kra_config),
        cmocka_unit_test_setup_teardown(test_kra_keygen_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kra_keygen_archive_never_resent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kra_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kra_recovery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
