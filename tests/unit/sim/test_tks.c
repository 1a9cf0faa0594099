/* tests/unit/sim/test_tks.c - the TKS double against the vectors of card-and-secure-channel
 * §5 and backends §3 (each case names its source section), its dispatch (§2.1) and its
 * status codes (§2.9). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/pct.h"
#include "common/scp.h"
#include "tests/sim/sim.h"

/* Common inputs of card spec §5. */
#define CUID "#40#90#79#01#00#1F#12#34#56#78"
#define HOSTCH "#2F#B7#9F#B7#04#FA#60#E8"
#define CARDCH "#B9#69#B0#CA#37#27#2F#89"
static const char mk_hex[] = "0123456789ABCDEFFEDCBA9876543210";
static const char aes_master_hex[] = "00112233445566778899AABBCCDDEEFF";
static const char shared_hex[] = "000102030405060708090A0B0C0D0E0F";

static void
hex(const char *s, uint8_t *out, size_t n)
{
    size_t got;

    assert_int_equal(cmn_hex_decode(s, strlen(s), true, out, n, &got), CMN_OK);
    assert_int_equal(got, n);
}

/* Key store of the tests: the shared secret, a DES master key "#02#01" and an AES master key
 * "#02#03#00" on the default slot. */
static enum cmn_rc
keyfn(void *arg, const char *token, const char *label, struct cmn_key *key)
{
    uint8_t v[16];

    (void)arg;
    if (strcmp(token, "Internal Key Storage Token") != 0)
        return CMN_ENOTFOUND;
    if (strcmp(label, "TPS-a sharedSecret") == 0) {
        hex(shared_hex, v, 16);
        return cmn_key_set(key, CMN_KEY_AES, v, 16);
    }
    if (strcmp(label, "#02#01") == 0 || strcmp(label, "mk-two") == 0) {
        hex(mk_hex, v, 16);
        return cmn_key_set(key, CMN_KEY_DES3, v, 16);
    }
    if (strcmp(label, "#02#03#00") == 0) {
        hex(aes_master_hex, v, 16);
        return cmn_key_set(key, CMN_KEY_AES, v, 16);
    }
    return CMN_ENOTFOUND;
}

static const struct sim_user agent = {
    .id = "TPS-a", .groups = "Other Group, Token Key Service Manager Agents"};
static const struct sim_user stranger = {.id = "TPS-a", .groups = "Certificate Manager Agents"};

struct fixture {
    struct cmn_cfg *cfg;
    struct sim_tks *tks;
    struct sim_resp r;
    struct sim_form out; /* the parsed response body */
    char certpath[64];
    EVP_PKEY *transport;
};

static struct fixture *
setup_cfg(const char *extra, bool transport)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    const struct cmn_cfg_key *const tables[] = {sim_tks_keys, NULL};
    struct cmn_buf text, errs;
    enum cmn_rc rc;

    assert_non_null(fx);
    cmn_buf_init(&text, 65536);
    cmn_buf_init(&errs, 65536);
    assert_int_equal(cmn_buf_printf(&text, "tps.list=0\ntps.0.userid=TPS-a\n"
                                           "tps.0.nickname=TPS-a sharedSecret\n%s",
                                    extra),
                     CMN_OK);
    if (transport) {
        EVP_PKEY *k = EVP_RSA_gen(2048);
        X509 *x = X509_new();
        FILE *fp;
        int fd;

        assert_non_null(k);
        assert_non_null(x);
        snprintf(fx->certpath, sizeof(fx->certpath), "/tmp/sim-tks-test.XXXXXX");
        fd = mkstemp(fx->certpath);
        assert_true(fd >= 0);
        fp = fdopen(fd, "w");
        assert_non_null(fp);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, k);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"transport", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        assert_true(X509_sign(x, k, EVP_sha256()) > 0);
        assert_int_equal(PEM_write_X509(fp, x), 1);
        fclose(fp);
        X509_free(x);
        fx->transport = k;
        assert_int_equal(cmn_buf_printf(&text, "pkisim.tks.transportCertFile=%s\n", fx->certpath),
                         CMN_OK);
    }
    rc = cmn_cfg_parse("test.cfg", (const char *)text.data, text.len, tables, &fx->cfg, &errs);
    if (rc != CMN_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    assert_int_equal(sim_tks_new(fx->cfg, &errs, &fx->tks), CMN_OK);
    sim_tks_set_keyfn(fx->tks, keyfn, NULL);
    sim_resp_init(&fx->r);
    cmn_buf_cleanup(&text);
    cmn_buf_cleanup(&errs);
    return fx;
}

static int
setup(void **state)
{
    *state = setup_cfg("", false);
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;

    sim_form_free(&fx->out);
    sim_resp_cleanup(&fx->r);
    sim_tks_free(fx->tks);
    cmn_cfg_unref(fx->cfg);
    if (fx->certpath[0] != '\0')
        unlink(fx->certpath);
    EVP_PKEY_free(fx->transport);
    free(fx);
    return 0;
}

/* Sends body (a form, HASH values pre-encoded) to path; parses the response into fx->out. */
static void
call_as(struct fixture *fx, const struct sim_user *u, const char *path, const char *body)
{
    struct sim_form f;

    sim_form_free(&fx->out);
    sim_resp_cleanup(&fx->r);
    sim_resp_init(&fx->r);
    memset(&f, 0, sizeof(f));
    assert_int_equal(sim_form_parse(body, strlen(body), &f), CMN_OK);
    sim_tks_handle(fx->tks, u, path, &f, &fx->r);
    sim_form_free(&f);
    assert_int_equal(sim_form_parse((const char *)fx->r.body.data, fx->r.body.len, &fx->out),
                     CMN_OK);
}

static void
call(struct fixture *fx, const char *body)
{
    call_as(fx, &agent, "/tks/agent/tks/computeSessionKey", body);
}

static void
assert_status(struct fixture *fx, const char *st)
{
    const struct sim_param *p = sim_form_get(&fx->out, "status");

    assert_int_equal(fx->r.http, 200);
    if (p == NULL) {
        fail_msg("no status in '%s'", cmn_buf_cstr(&fx->r.body));
        return;
    }
    assert_string_equal(p->val, st);
}

/* The binary field `name` of the response (PCT already decoded by the form parser). */
static void
field(struct fixture *fx, const char *name, uint8_t *out, size_t n)
{
    const struct sim_param *p = sim_form_get(&fx->out, name);

    if (p == NULL) {
        fail_msg("no field %s in '%s'", name, cmn_buf_cstr(&fx->r.body));
        return;
    }
    assert_int_equal(p->len, n);
    memcpy(out, p->val, n);
}

static void
assert_field_hex(struct fixture *fx, const char *name, const char *want_hex)
{
    uint8_t got[128], want[128];
    size_t n = strlen(want_hex) / 2;

    hex(want_hex, want, n);
    field(fx, name, got, n);
    assert_memory_equal(got, want, n);
}

/* A wrapped session key, unwrapped with the AES shared secret; compared without parity bits
 * when des is true (the double sets odd parity as NSS does). */
static void
assert_session_key(struct fixture *fx, const char *name, const char *want_hex, bool des)
{
    uint8_t w[16], want[16], s[16];
    struct cmn_key shared, k;

    hex(shared_hex, s, 16);
    assert_int_equal(cmn_key_set(&shared, CMN_KEY_AES, s, 16), CMN_OK);
    field(fx, name, w, 16);
    assert_int_equal(cmn_scp_session_key_unwrap(&shared, w, 16, CMN_KEY_AES, &k), CMN_OK);
    hex(want_hex, want, 16);
    for (int i = 0; i < 16; i++) {
        if (des)
            assert_int_equal(k.v[i] & 0xFE, want[i] & 0xFE);
        else
            assert_int_equal(k.v[i], want[i]);
    }
}

/* Field names in order of appearance. */
static void
assert_order(struct fixture *fx, const char *const *names)
{
    size_t i = 0;

    for (; names[i] != NULL; i++) {
        if (i >= fx->out.n)
            fail_msg("missing %s in '%s'", names[i], cmn_buf_cstr(&fx->r.body));
        assert_string_equal(fx->out.p[i].name, names[i]);
    }
    assert_int_equal(fx->out.n, i);
}

/* backends §3.3 + §3.6: worked SCP01 example, exact wrapped bytes. */
static void
test_tks_scp01_backends_example(void **state)
{
    struct fixture *fx = *state;
    static const char *const order[] = {"status", "sessionKey", "hostCryptogram",
                                        "encSessionKey", NULL};

    call(fx, "serversideKeygen=false&KDD=" CUID "&tokencuid=" CUID
             "&card_challenge=%2311%2322%2333%2344%2355%2366%2377%2388"
             "&host_challenge=%2301%2302%2303%2304%2305%2306%2307%2308&KeyInfo=%2301%2301"
             "&card_cryptogram=%231A%23CF%23FD%238A%2333%23DC%2370%2304&keySet=defKeySet");
    assert_status(fx, "0");
    assert_order(fx, order);
    assert_field_hex(fx, "hostCryptogram", "05757F5B4D19D6C4");
    assert_field_hex(fx, "encSessionKey", "9C8320888AB87CFB4034192F6A246F9E");
    assert_field_hex(fx, "sessionKey", "9C8320888AB87CFB4034192F6A246F9E"); /* S-MAC = S-ENC */
}

/* card spec §5.2: developer keys; HASH values unescaped in the body ('#' is literal in a
 * form body after the container's decoding only when sent as %23, but a raw '#' also works). */
static void
test_tks_scp01_developer(void **state)
{
    struct fixture *fx = *state;

    call(fx, "serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
             "&host_challenge=" HOSTCH "&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57");
    assert_status(fx, "0");
    assert_field_hex(fx, "hostCryptogram", "6F473DED1B8BC3EA");
    assert_session_key(fx, "encSessionKey", "96234EA1E55195CB0C9E8349178601CF", true);
    assert_session_key(fx, "sessionKey", "96234EA1E55195CB0C9E8349178601CF", true);
}

/* card spec §5.3: master key version 02 with VISA2 (NIST KDF switched off for version 02). */
static void
test_tks_scp01_master_visa2(void **state)
{
    struct fixture *fx = setup_cfg("tks.defKeySet.nistSP800-108KdfOnKeyVersion=FF\n", false);

    (void)state;
    call(fx, "serversideKeygen=false&KDD=" CUID "&tokencuid=" CUID "&card_challenge=" CARDCH
             "&host_challenge=" HOSTCH "&KeyInfo=#02#01&card_cryptogram=#98#B1#33#1F#89#C8#C1#12");
    assert_status(fx, "0");
    assert_field_hex(fx, "hostCryptogram", "5DE0189907E81A8F");
    assert_session_key(fx, "encSessionKey", "52BE753BFAB6CCAC97825EF3FC581EFB", true);
    assert_session_key(fx, "sessionKey", "DFD8AFFBDA9594F4BDB0A965202955E7", true);

    /* The mapping renames the key: tks.<ks>.mk_mappings.#02#01=<token>:<label>. */
    teardown((void **)&fx);
    fx = setup_cfg("tks.defKeySet.nistSP800-108KdfOnKeyVersion=FF\n"
                   "tks.defKeySet.mk_mappings.#02#01=Internal Key Storage Token:mk-two\n",
                   false);
    call(fx, "serversideKeygen=false&KDD=" CUID "&tokencuid=" CUID "&card_challenge=" CARDCH
             "&host_challenge=" HOSTCH "&KeyInfo=#02#01&card_cryptogram=#98#B1#33#1F#89#C8#C1#12");
    assert_status(fx, "0");
    assert_field_hex(fx, "hostCryptogram", "5DE0189907E81A8F");
    teardown((void **)&fx);
}

/* card spec §5.3 key set data: version 02 (VISA2 keys) wrapped under the developer KEK. */
static void
test_tks_create_keyset_scp01_visa2(void **state)
{
    struct fixture *fx = setup_cfg("tks.defKeySet.nistSP800-108KdfOnKeyVersion=FF\n", false);

    (void)state;
    call_as(fx, &agent, "/tks/agent/tks/createKeySetData",
            "newKeyInfo=#02#01&KDD=" CUID "&tokencuid=" CUID "&KeyInfo=#01#01&keySet=defKeySet"
            "&protocol=1");
    assert_status(fx, "0");
    assert_field_hex(fx, "keySetData",
                     "028110" "63F8D0B8D6857D529F6C40C1DF1CE323" "03A35F3D"
                     "8110" "35046C15A9ED96070E2CE61ADF00DFB7" "036C73BA"
                     "8110" "6F3C5C865B9084559AB45BF38549B8A5" "0374DDDC");
    teardown((void **)&fx);
}

/* card spec §5.1 NIST keys: with the shipped KDF setting (00) version 02 uses SP800-108; the
 * key set data carries the three keys wrapped under the developer KEK. */
static void
test_tks_create_keyset_scp01_nist(void **state)
{
    struct fixture *fx = *state;
    static const char *const want[3] = {"0E4FE586B5852F3DBC07700DCB1ABFA4",
                                        "B397E0F4D58C1304E07308A71920CBAB",
                                        "C84F015DE5AD0116082A5EFE83977C9D"};
    uint8_t blob[67], dev[16], plain[16], w[16];

    call_as(fx, &agent, "/tks/agent/tks/encryptData",
            "newKeyInfo=#02#01&KDD=" CUID "&tokencuid=" CUID "&KeyInfo=#01#01&protocol=1");
    /* no `data`: dispatch goes to createKeySetData even on the encryptData path */
    assert_status(fx, "0");
    field(fx, "keySetData", blob, sizeof(blob));
    assert_int_equal(blob[0], 0x02);
    hex("404142434445464748494A4B4C4D4E4F", dev, 16);
    for (int i = 0; i < 3; i++) {
        hex(want[i], w, 16);
        assert_int_equal(blob[1 + i * 22], 0x81);
        assert_int_equal(cmn_crypto_des3_ecb(dev, 16, false, blob + 3 + i * 22, 16, plain),
                         CMN_OK);
        for (int j = 0; j < 16; j++)
            assert_int_equal(plain[j] & 0xFE, w[j] & 0xFE);
    }
}

/* backends §3.4 and card spec §5.4: SCP02, one session key per derivation constant. */
static void
test_tks_scp02_developer(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *seq, *dc, *want;
    } v[] = {
        {"#00#10", "#01#82", "9DCFBA55D0D2D1F93A76F4E664AC7557"},
        {"#00#10", "#01#01", "4EBEDA3CFAF1AF9F51E5C5C1A209FA12"},
        {"#00#10", "#01#81", "3D8EE3E7D528FB11B228B6A2A9E67843"},
        {"#00#0A", "#01#82", "339F1D7F5D5841EB034F5CE234557894"},
        {"#00#0A", "#01#01", "C6713F31B8DC1F8905DFECB4065CB81E"},
        {"#00#0A", "#01#02", "3CAEE5A2731AD052690BC8B5A10F3401"},
        {"#00#0A", "#01#81", "06E72D52EEFBD1D8DB5C230C3F2B56E9"},
    };
    char body[512];

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        snprintf(body, sizeof(body),
                 "serversideKeygen=false&KDD=" CUID "&tokencuid=" CUID "&KeyInfo=#FF#02"
                 "&keySet=defKeySet&protocol=2&sequenceCounter=%s&derivationConstant=%s",
                 v[i].seq, v[i].dc);
        call(fx, body);
        assert_status(fx, "0");
        assert_session_key(fx, "sessionKey", v[i].want, true);
    }
    /* an unknown constant is bad input */
    call(fx, "serversideKeygen=false&tokencuid=" CUID "&KeyInfo=#FF#02&protocol=2"
             "&sequenceCounter=#00#0A&derivationConstant=#01#99");
    assert_status(fx, "3");
}

/* card spec §5.5: SCP03 with AES developer keys used as they are. */
static void
test_tks_scp03_aes_developer(void **state)
{
    struct fixture *fx = setup_cfg("tks.defKeySet.prot3.diversVer1Keys=none\n"
                                   "tks.defKeySet.prot3.devKeyType=AES\n",
                                   false);
    static const char *const order[] = {"status",        "macSessionKey", "encSessionKey",
                                        "kekSessionKey", "hostCryptogram", NULL};

    (void)state;
    call(fx, "serversideKeygen=false&KDD=" CUID "&tokencuid=" CUID "&card_challenge=" CARDCH
             "&host_challenge=" HOSTCH "&KeyInfo=#01#03#00&protocol=3"
             "&card_cryptogram=#F5#76#A9#20#84#C6#38#8A&keySet=defKeySet");
    assert_status(fx, "0");
    assert_order(fx, order);
    assert_field_hex(fx, "hostCryptogram", "C15A3D09E3515688");
    assert_session_key(fx, "encSessionKey", "D096FA982DE08356A43BDE2F56C393DB", false);
    assert_session_key(fx, "macSessionKey", "5D6F594E8B31E324697C7C928880B9D3", false);
    assert_session_key(fx, "kekSessionKey", "404142434445464748494A4B4C4D4E4F", false);

    /* encryptData on SCP03: AES-CBC under the KEK (card spec §5.6), isRandom off */
    teardown((void **)&fx);
    fx = setup_cfg("tks.defKeySet.prot3.diversVer1Keys=none\n"
                   "tks.defKeySet.prot3.devKeyType=AES\ntks.EncryptData.isRandom=false\n",
                   false);
    call_as(fx, &agent, "/tks/agent/tks/encryptData",
            "data=#00#01#02#03#04#05#06#07#08#09#0A#0B#0C#0D#0E#0F&tokencuid=" CUID
            "&KDD=" CUID "&KeyInfo=#01#03#00&keySet=defKeySet&protocol=3");
    assert_status(fx, "0");
    assert_field_hex(fx, "data", "000102030405060708090A0B0C0D0E0F");
    assert_field_hex(fx, "encryptedData", "3D0FA4B855D2A5AA4954B8B5DF582A3A");
    teardown((void **)&fx);
}

/* card spec §5.5 end: the shipped prot3 profile (EMV on DES3 developer keys). */
static void
test_tks_scp03_emv_developer(void **state)
{
    struct fixture *fx = *state;

    call(fx, "serversideKeygen=false&KDD=" CUID "&tokencuid=" CUID "&card_challenge=" CARDCH
             "&host_challenge=" HOSTCH "&KeyInfo=#01#03#00&protocol=3"
             "&card_cryptogram=#93#7A#C6#8E#51#3F#DE#E3");
    assert_status(fx, "0");
    assert_field_hex(fx, "hostCryptogram", "321BA95CC487A401");
    assert_session_key(fx, "encSessionKey", "13B3161FE84CF1DA31549E0EE53416EF", false);
    assert_session_key(fx, "macSessionKey", "2BC8902C768FB7B5A0191DB87D71A2C1", false);
    assert_session_key(fx, "kekSessionKey", "FA3ECECCA191162EB3269BA09F6E128E", false);
}

/* card spec §5.5 key set data: AES master "#02#03#00" used undiversified. */
static void
test_tks_create_keyset_scp03(void **state)
{
    struct fixture *fx = setup_cfg("tks.defKeySet.prot3.diversVer1Keys=none\n"
                                   "tks.defKeySet.prot3.devKeyType=AES\n"
                                   "tks.defKeySet.prot3.divers=none\n"
                                   "tks.defKeySet.prot3.masterKeyType=AES\n",
                                   false);

    (void)state;
    call_as(fx, &agent, "/tks/agent/tks/createKeySetData",
            "newKeyInfo=#02#03#00&KDD=" CUID "&tokencuid=" CUID "&KeyInfo=#01#03#00&protocol=3");
    assert_status(fx, "0");
    assert_field_hex(fx, "keySetData",
                     "02" "881110" "4533BFD23699FC7C142D20BB1A4A191F" "033544E0"
                     "881110" "4533BFD23699FC7C142D20BB1A4A191F" "033544E0"
                     "881110" "4533BFD23699FC7C142D20BB1A4A191F" "033544E0");
    teardown((void **)&fx);
}

/* card spec §5.6: encryptData with isRandom=false on SCP01; with the default it returns the
 * random plaintext it actually encrypted. */
static void
test_tks_encrypt_data(void **state)
{
    struct fixture *fx = setup_cfg("tks.EncryptData.isRandom=false\n", false);
    uint8_t data[16], enc[16], want[16], dev[16];
    static const char *const order[] = {"status", "data", "encryptedData", NULL};

    call_as(fx, &agent, "/tks/agent/tks/encryptData",
            "data=#00#01#02#03#04#05#06#07#08#09#0A#0B#0C#0D#0E#0F&tokencuid=" CUID
            "&KeyInfo=#01#01&keySet=defKeySet&protocol=1");
    assert_status(fx, "0");
    assert_order(fx, order);
    assert_field_hex(fx, "encryptedData", "F1D75E4F0D37C22CB8D54E6253BB40B1");
    teardown((void **)&fx);

    fx = *state;
    call_as(fx, &agent, "/tks/agent/tks/encryptData",
            "data=&tokencuid=" CUID "&KeyInfo=#01#01&protocol=1");
    assert_status(fx, "0");
    field(fx, "data", data, 16);
    field(fx, "encryptedData", enc, 16);
    hex("404142434445464748494A4B4C4D4E4F", dev, 16);
    assert_int_equal(cmn_crypto_des3_ecb(dev, 16, true, data, 16, want), CMN_OK);
    assert_memory_equal(enc, want, 16);
}

static void
test_tks_random_data(void **state)
{
    struct fixture *fx = *state;
    uint8_t a[16], b[16];

    call_as(fx, &agent, "/tks/agent/tks/computeRandomData", "dataNumBytes=16");
    assert_status(fx, "0");
    field(fx, "randomData", a, 16);
    call_as(fx, &agent, "/tks/agent/tks/computeRandomData", "dataNumBytes=16");
    field(fx, "randomData", b, 16);
    assert_memory_not_equal(a, b, 16);
    call_as(fx, &agent, "/tks/agent/tks/computeRandomData", "dataNumBytes=1024");
    assert_status(fx, "0");
    call_as(fx, &agent, "/tks/agent/tks/computeRandomData", "dataNumBytes=0");
    assert_status(fx, "1");
    call_as(fx, &agent, "/tks/agent/tks/computeRandomData", "dataNumBytes=1025");
    assert_status(fx, "1");
    call_as(fx, &agent, "/tks/agent/tks/computeRandomData", "dataNumBytes=abc");
    assert_status(fx, "1");
}

/* Table of bad requests and the answer the servlet gives (§2.1, §2.9). */
static void
test_tks_errors(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *body;
        int http;
        const char *status; /* NULL: an error page */
    } v[] = {
        /* no operation matches: the servlet throws */
        {"tokencuid=" CUID, 500, NULL},
        /* SCP01 without serversideKeygen: the servlet dereferences it */
        {"tokencuid=" CUID "&card_challenge=" CARDCH "&host_challenge=" HOSTCH
         "&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57",
         500, NULL},
        /* CUID of 9 bytes */
        {"serversideKeygen=false&tokencuid=#40#90#79#01#00#1F#12#34#56&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57",
         200, "3"},
        /* short host challenge */
        {"serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=#2F#B7&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57",
         200, "3"},
        /* bad HASH text */
        {"serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#0G#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57",
         200, "3"},
        /* wrong card cryptogram */
        {"serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#01#01&card_cryptogram=#00#C1#D8#14#8F#F1#34#57",
         200, "5"},
        /* master key version 03 absent from the token */
        {"serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#03#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57",
         200, "1"},
        /* unknown key set on the developer path */
        {"serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57"
         "&keySet=noSuchSet",
         200, "1"},
        /* SCP03 without card_cryptogram */
        {"serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#01#03#00&protocol=3",
         200, "3"},
        /* SCP03 with a 2-byte KeyInfo */
        {"serversideKeygen=false&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#01#03&protocol=3"
         "&card_cryptogram=#93#7A#C6#8E#51#3F#DE#E3",
         200, "3"},
        /* server-side keygen without a transport certificate configured */
        {"serversideKeygen=true&tokencuid=" CUID "&card_challenge=" CARDCH
         "&host_challenge=" HOSTCH "&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57",
         200, "1"},
        /* SCP02 createKeySetData without wrappedDekKey */
        {"newKeyInfo=#01#02&tokencuid=" CUID "&KeyInfo=#FF#02&protocol=2", 200, "3"},
        /* createKeySetData to a master key that is absent */
        {"newKeyInfo=#05#01&tokencuid=" CUID "&KeyInfo=#01#01&protocol=1", 200, "1"},
        /* encryptData with an unknown protocol */
        {"data=&tokencuid=" CUID "&KeyInfo=#01#01&protocol=7", 200, "3"},
    };

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        call(fx, v[i].body);
        if (fx->r.http != v[i].http)
            fail_msg("case %zu: HTTP %d, want %d", i, fx->r.http, v[i].http);
        if (v[i].status != NULL) {
            assert_status(fx, v[i].status);
            assert_int_equal(fx->out.n, 1); /* on error only status=N */
        }
    }
    /* a path that is not a TKS servlet */
    call_as(fx, &agent, "/tks/agent/tks/other", "dataNumBytes=8");
    assert_int_equal(fx->r.http, 404);
}

/* §7: a caller outside the TKS agent group gets `unauthorized=` with HTTP 200. */
static void
test_tks_unauthorized(void **state)
{
    struct fixture *fx = *state;

    call_as(fx, &stranger, "/tks/agent/tks/computeRandomData", "dataNumBytes=8");
    assert_int_equal(fx->r.http, 200);
    assert_string_equal(cmn_buf_cstr(&fx->r.body), "unauthorized=");
}

/* §3.7: server-side keygen material, SCP01: D under the card KEK, its KCV, D and A under the
 * transport key; every call gives new values. */
static void
test_tks_serverside_keygen(void **state)
{
    struct fixture *fx = setup_cfg("", true);
    static const char *const order[] = {
        "status",   "sessionKey",         "hostCryptogram",  "encSessionKey",
        "kek_wrapped_desKey", "kek_wrapped_aesKey", "keycheck", "drm_trans_desKey",
        "drm_trans_aesKey", NULL};
    const struct sim_param *td;
    uint8_t d[512], dev[16], kw[16], want[16], kcv[3], wkcv[3], first[16];
    size_t dl = sizeof(d);
    EVP_PKEY_CTX *ctx;

    (void)state;
    call(fx, "serversideKeygen=true&tokencuid=" CUID "&card_challenge=" CARDCH
             "&host_challenge=" HOSTCH "&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57");
    assert_status(fx, "0");
    assert_order(fx, order);
    td = sim_form_get(&fx->out, "drm_trans_desKey");
    assert_non_null(td);
    assert_int_equal(td->len, 256);
    ctx = EVP_PKEY_CTX_new(fx->transport, NULL);
    assert_true(EVP_PKEY_decrypt_init(ctx) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0);
    assert_true(EVP_PKEY_decrypt(ctx, d, &dl, (const uint8_t *)td->val, td->len) > 0);
    EVP_PKEY_CTX_free(ctx);
    assert_int_equal(dl, 24);
    assert_memory_equal(d + 16, d, 8); /* K1K2K1 */
    hex("404142434445464748494A4B4C4D4E4F", dev, 16);
    assert_int_equal(cmn_crypto_des3_ecb(dev, 16, true, d, 16, want), CMN_OK);
    field(fx, "kek_wrapped_desKey", kw, 16);
    assert_memory_equal(kw, want, 16);
    assert_int_equal(cmn_crypto_kcv_des(d, 16, wkcv), CMN_OK);
    field(fx, "keycheck", kcv, 3);
    assert_memory_equal(kcv, wkcv, 3);
    memcpy(first, kw, 16);
    call(fx, "serversideKeygen=true&tokencuid=" CUID "&card_challenge=" CARDCH
             "&host_challenge=" HOSTCH "&KeyInfo=#01#01&card_cryptogram=#1F#C1#D8#14#8F#F1#34#57");
    field(fx, "kek_wrapped_desKey", kw, 16);
    assert_memory_not_equal(kw, first, 16);

    /* SCP02: only on the DEK call */
    call(fx, "serversideKeygen=true&tokencuid=" CUID "&KeyInfo=#FF#02&protocol=2"
             "&sequenceCounter=#00#0A&derivationConstant=#01#82");
    assert_status(fx, "0");
    assert_int_equal(fx->out.n, 2);
    call(fx, "serversideKeygen=true&tokencuid=" CUID "&KeyInfo=#FF#02&protocol=2"
             "&sequenceCounter=#00#0A&derivationConstant=#01#81");
    assert_status(fx, "0");
    {
        static const char *const o2[] = {"status", "sessionKey", "drm_trans_desKey",
                                         "kek_wrapped_desKey", "keycheck", NULL};
        assert_order(fx, o2);
    }
    teardown((void **)&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tks_scp01_backends_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tks_scp01_developer, setup, teardown),
        cmocka_unit_test(test_tks_scp01_master_visa2),
        cmocka_unit_test(test_tks_create_keyset_scp01_visa2),
        cmocka_unit_test_setup_teardown(test_tks_create_keyset_scp01_nist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tks_scp02_developer, setup, teardown),
        cmocka_unit_test(test_tks_scp03_aes_developer),
        cmocka_unit_test_setup_teardown(test_tks_scp03_emv_developer, setup, teardown),
        cmocka_unit_test(test_tks_create_keyset_scp03),
        cmocka_unit_test_setup_teardown(test_tks_encrypt_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tks_random_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tks_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tks_unauthorized, setup, teardown),
        cmocka_unit_test(test_tks_serverside_keygen),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
