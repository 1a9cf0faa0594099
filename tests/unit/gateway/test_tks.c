/* tests/unit/gateway/test_tks.c - the TKS client: #XX request encoding, answer parsing (first
 * '=', #XX and %XX values), session keys unwrapped with the shared secret against the backends
 * §3.3/§3.6 worked values, status codes and missing fields; the serversideKeygen fields and
 * encryptData (backends §2.3, §2.6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw_fixture.h"

struct canned {
    const char *answer;
    const char *want_path; /* NULL: computeSessionKey */
    char body[2048];
};

static enum tps_rc
canned_post(void *arg, const char *path, const char *body, size_t len, struct cmn_buf *resp,
            char *err, size_t errlen)
{
    struct canned *c = arg;

    (void)err;
    (void)errlen;
    assert_string_equal(path, c->want_path ? c->want_path : "/tks/agent/tks/computeSessionKey");
    snprintf(c->body, sizeof(c->body), "%.*s", (int)len, body);
    (void)cmn_buf_puts(resp, c->answer);
    return TPS_OK;
}

static void
make_in(struct tps_tks_in *in)
{
    static const uint8_t cuid[10] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0x12, 0x34, 0x56, 0x78};
    static const uint8_t cc[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    static const uint8_t hc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t cg[8] = {0x1A, 0xCF, 0xFD, 0x8A, 0x33, 0xDC, 0x70, 0x04};

    memset(in, 0, sizeof(*in));
    in->proto = CMN_SCP01;
    memcpy(in->cuid, cuid, 10);
    memcpy(in->iu.kdd, cuid, 10);
    in->iu.key_version = 1;
    in->iu.scp_id = 1;
    memcpy(in->iu.card_challenge, cc, 8);
    in->iu.card_challenge_len = 8;
    memcpy(in->iu.card_cryptogram, cg, 8);
    memcpy(in->host_challenge, hc, 8);
}

static struct tps_tks *
make_tks(struct canned *c)
{
    struct cmn_key shared;
    struct tps_tks *t = NULL;

    (void)cmn_key_set(&shared, CMN_KEY_AES, gw_shared_raw, 16);
    assert_int_equal(tps_tks_new_custom("tks1", &shared, "defKeySet", canned_post, c, &t), TPS_OK);
    return t;
}

static void
test_tks_scp01_request_and_unwrap(void **state)
{
    /* backends §3.6: S-ENC (odd parity) 6B8A...2C3E under AES 000102..0F */
    static const uint8_t senc[16] = {0x6B, 0x8A, 0xBC, 0x3E, 0x0B, 0x1F, 0x23, 0x80,
                                     0xD3, 0xCB, 0x75, 0x8C, 0x6D, 0xAB, 0x2C, 0x3E};
    static const uint8_t hcg[8] = {0x05, 0x75, 0x7F, 0x5B, 0x4D, 0x19, 0xD6, 0xC4};
    struct canned c = {
        .answer = "status=0&sessionKey=%9C%83%20%88%8A%B8%7C%FB%40%34%19%2F%6A%24%6F%9E"
                  "&encSessionKey=#9C#83#20#88#8A#B8#7C#FB#40#34#19#2F#6A#24#6F#9E"
                  "&hostCryptogram=%05%75%7f%5b%4d%19%d6%c4",
    };
    struct tps_tks *t = make_tks(&c);
    struct tps_tks_in in;
    struct tps_tks_keys k;
    char err[256] = "";

    (void)state;
    make_in(&in);
    assert_int_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_OK);
    assert_int_equal(k.enc.alg, CMN_KEY_DES3);
    assert_int_equal(k.enc.len, 16);
    assert_memory_equal(k.enc.v, senc, 16);
    assert_memory_equal(k.mac.v, senc, 16);
    assert_true(k.have_host_cryptogram);
    assert_memory_equal(k.host_cryptogram, hcg, 8);
    /* the request: HASH-encoded, SCP01 without protocol, Dogtag field names (backends §2.3) */
    assert_non_null(strstr(c.body, "serversideKeygen=false"));
    assert_non_null(strstr(c.body, "KDD=#40#90#79#01#00#1F#12#34#56#78"));
    assert_non_null(strstr(c.body, "tokencuid=#40#90#79#01#00#1F#12#34#56#78"));
    assert_non_null(strstr(c.body, "card_challenge=#11#22#33#44#55#66#77#88"));
    assert_non_null(strstr(c.body, "host_challenge=#01#02#03#04#05#06#07#08"));
    assert_non_null(strstr(c.body, "card_cryptogram=#1A#CF#FD#8A#33#DC#70#04"));
    assert_non_null(strstr(c.body, "KeyInfo=#01#01"));
    assert_non_null(strstr(c.body, "keySet=defKeySet"));
    assert_null(strstr(c.body, "protocol"));
    tps_tks_keys_wipe(&k);
    tps_tks_free(t);
}

static void
test_tks_status_and_missing_fields(void **state)
{
    struct canned c = {.answer = "status=5"};
    struct tps_tks *t = make_tks(&c);
    struct tps_tks_in in;
    struct tps_tks_keys k;
    char err[256] = "";

    (void)state;
    make_in(&in);
    assert_int_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_EBACKEND);
    assert_non_null(strstr(err, "card cryptogram mismatch"));
    c.answer = "status=0&sessionKey=%9C%83%20%88%8A%B8%7C%FB%40%34%19%2F%6A%24%6F%9E";
    assert_int_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_EPROTO);
    assert_non_null(strstr(err, "encSessionKey"));
    c.answer = "unauthorized=";
    assert_int_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_EPROTO);
    c.answer = "status=0&sessionKey=%9C%8&encSessionKey=%9C";
    assert_int_not_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_OK);
    tps_tks_free(t);
}

static void
test_tks_server_keygen_fields(void **state)
{
    static const uint8_t wd[16] = {0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
                                   0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF};
    static const uint8_t kcv[3] = {0x12, 0x34, 0x56};
    struct canned c = {
        .answer = "status=0&sessionKey=%9C%83%20%88%8A%B8%7C%FB%40%34%19%2F%6A%24%6F%9E"
                  "&encSessionKey=#9C#83#20#88#8A#B8#7C#FB#40#34#19#2F#6A#24#6F#9E"
                  "&hostCryptogram=%05%75%7f%5b%4d%19%d6%c4"
                  "&kek_wrapped_desKey=#A0#A1#A2#A3#A4#A5#A6#A7#A8#A9#AA#AB#AC#AD#AE#AF"
                  "&keycheck=%12%34%56&drm_trans_desKey=%01%02%03%04%05"
                  "&drm_trans_aesKey=#0A#0B",
    };
    struct tps_tks *t = make_tks(&c);
    struct tps_tks_in in;
    struct tps_tks_keys k;
    char err[256] = "";

    (void)state;
    make_in(&in);
    /* not asked for: ignored even when present */
    assert_int_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_OK);
    assert_false(k.srvkg.have);
    tps_tks_keys_wipe(&k);
    t->server_keygen = true;
    assert_int_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_OK);
    assert_non_null(strstr(c.body, "serversideKeygen=true"));
    assert_true(k.srvkg.have);
    assert_memory_equal(k.srvkg.kek_wrapped_des, wd, 16);
    assert_memory_equal(k.srvkg.keycheck, kcv, 3);
    assert_int_equal(k.srvkg.drm_trans_des_len, 5);
    assert_int_equal(k.srvkg.drm_trans_des[4], 5);
    assert_int_equal(k.srvkg.drm_trans_aes_len, 2);
    assert_int_equal(k.srvkg.drm_trans_aes[1], 0x0B);
    tps_tks_keys_wipe(&k);
    /* a short KEK-wrapped key or no keycheck: the keys still work, the material is absent */
    c.answer = "status=0&sessionKey=%9C%83%20%88%8A%B8%7C%FB%40%34%19%2F%6A%24%6F%9E"
               "&encSessionKey=#9C#83#20#88#8A#B8#7C#FB#40#34#19#2F#6A#24#6F#9E"
               "&hostCryptogram=%05%75%7f%5b%4d%19%d6%c4"
               "&kek_wrapped_desKey=#A0#A1&keycheck=%12%34%56&drm_trans_desKey=%01";
    assert_int_equal(tps_tks_session_keys(t, NULL, "sid", &in, &k, err, sizeof(err)), TPS_OK);
    assert_false(k.srvkg.have);
    assert_int_equal(k.srvkg.drm_trans_des_len, 0);
    tps_tks_keys_wipe(&k);
    tps_tks_free(t);
}

static void
test_tks_encrypt_data(void **state)
{
    static const uint8_t cuid[10] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0x12, 0x34, 0x56, 0x78};
    static const uint8_t ki[2] = {0x01, 0x01};
    struct canned c = {
        .want_path = "/tks/agent/tks/encryptData",
        .answer = "status=0&data=#00#11#22#33#44#55#66#77#88#99#AA#BB#CC#DD#EE#FF"
                  "&encryptedData=%F0%F1%F2%F3%F4%F5%F6%F7%F8%F9%FA%FB%FC%FD%FE%FF",
    };
    struct tps_tks *t = make_tks(&c);
    uint8_t plain[16], wrapped[16], zero[16] = {0};
    char err[256] = "";

    (void)state;
    assert_int_equal(tps_tks_encrypt_data(t, NULL, NULL, "sid", CMN_SCP01, cuid, cuid, ki, 2, plain,
                                          wrapped, err, sizeof(err)),
                     TPS_OK);
    /* the TKS's data is what the card decrypts, not ours */
    assert_int_equal(plain[1], 0x11);
    assert_int_equal(plain[15], 0xFF);
    assert_int_equal(wrapped[0], 0xF0);
    assert_int_equal(wrapped[15], 0xFF);
    assert_true(strncmp(c.body, "data=#", 6) == 0);
    assert_non_null(strstr(c.body, "&tokencuid=#40#90#79#01#00#1F#12#34#56#78"));
    assert_non_null(strstr(c.body, "&KeyInfo=#01#01&keySet=defKeySet&protocol=1"));
    /* a configured path is used */
    c.want_path = "/tks/other/encryptData";
    assert_int_equal(tps_tks_encrypt_data(t, NULL, "/tks/other/encryptData", "sid", CMN_SCP01, cuid,
                                          cuid, ki, 2, plain, wrapped, err, sizeof(err)),
                     TPS_OK);
    c.want_path = "/tks/agent/tks/encryptData";
    c.answer = "status=2";
    assert_int_equal(tps_tks_encrypt_data(t, NULL, "", "sid", CMN_SCP01, cuid, cuid, ki, 2, plain,
                                          wrapped, err, sizeof(err)),
                     TPS_EBACKEND);
    /* a field of the wrong length: refused, the plain challenge wiped */
    c.answer = "status=0&data=#00#11#22#33#44#55#66#77#88#99#AA#BB#CC#DD#EE#FF"
               "&encryptedData=%F0%F1";
    memset(plain, 0x5A, sizeof(plain));
    assert_int_equal(tps_tks_encrypt_data(t, NULL, NULL, "sid", CMN_SCP01, cuid, cuid, ki, 2, plain,
                                          wrapped, err, sizeof(err)),
                     TPS_EPROTO);
    assert_non_null(strstr(err, "encryptedData"));
    assert_memory_equal(plain, zero, 16);
    tps_tks_free(t);
}

static void
test_tks_codec_edges(void **state)
{
    struct cmn_buf b;
    uint8_t out[8];
    size_t n;
    const char *v;
    size_t vl;
    const char body[] = "a=1&status=0&x==y&sessionKey=ab=";

    (void)state;
    cmn_buf_init(&b, 64);
    assert_int_equal(tps_tks_hash_append(&b, (const uint8_t *)"\x00\xff\x0a", 3), TPS_OK);
    assert_string_equal(cmn_buf_cstr(&b), "#00#FF#0A");
    cmn_buf_cleanup(&b);
    assert_int_equal(tps_tks_value_decode("#0a%0B+z", 8, out, sizeof(out), &n), TPS_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\x0a\x0b z", 4);
    assert_int_equal(tps_tks_value_decode("#0", 2, out, sizeof(out), &n), TPS_EPROTO);
    assert_int_equal(tps_tks_value_decode("#zz", 3, out, sizeof(out), &n), TPS_EPROTO);
    assert_int_equal(tps_tks_value_decode("123456789", 9, out, sizeof(out), &n), TPS_ETOOBIG);
    /* split at the first '=': trailing '=' (base64) is kept */
    assert_true(tps_tks_field(body, strlen(body), "sessionKey", &v, &vl));
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "ab=", 3);
    assert_true(tps_tks_field(body, strlen(body), "x", &v, &vl));
    assert_memory_equal(v, "=y", 2);
    assert_false(tps_tks_field(body, strlen(body), "stat", &v, &vl));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tks_scp01_request_and_unwrap),
        cmocka_unit_test(test_tks_status_and_missing_fields),
        cmocka_unit_test(test_tks_codec_edges),
        cmocka_unit_test(test_tks_server_keygen_fields),
        cmocka_unit_test(test_tks_encrypt_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
