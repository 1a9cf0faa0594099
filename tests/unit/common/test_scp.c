/* tests/unit/common/test_scp.c - SCP01/02/03 against every vector of the card and secure
 * channel spec §5.2-§5.6 (and the worked values of backends §3.3, §3.4, §3.6), host-wrap →
 * card-unwrap round trips for each protocol and level, and rejection of tampered input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/apdu.h"
#include "common/buf.h"
#include "common/crypto.h"
#include "common/scp.h"

/* Common inputs of card spec §5. */
#define DEV "404142434445464748494A4B4C4D4E4F"
#define HC "2FB79FB704FA60E8"
#define CC "B969B0CA37272F89"

static size_t
hx(const char *s, uint8_t *out, size_t cap)
{
    char tmp[2048];
    size_t j = 0, n = 0;

    for (size_t i = 0; s[i] != '\0'; i++)
        if (s[i] != ' ' && j < sizeof(tmp) - 1)
            tmp[j++] = s[i];
    tmp[j] = '\0';
    assert_int_equal(cmn_hex_decode(tmp, j, false, out, cap, &n), CMN_OK);
    return n;
}

static void
key_hx(struct cmn_key *k, enum cmn_key_alg alg, const char *s)
{
    uint8_t b[CMN_KEY_MAX];
    size_t n = hx(s, b, sizeof(b));

    assert_int_equal(cmn_key_set(k, alg, b, n), CMN_OK);
}

static void
key_eq(const struct cmn_key *k, const char *s)
{
    uint8_t b[CMN_KEY_MAX];
    size_t n = hx(s, b, sizeof(b));

    assert_int_equal(k->len, n);
    assert_memory_equal(k->v, b, n);
}

static void
bytes_eq(const uint8_t *got, size_t n, const char *s)
{
    uint8_t b[512];
    size_t m = hx(s, b, sizeof(b));

    assert_int_equal(n, m);
    assert_memory_equal(got, b, n);
}

/* Encodes a as the wire would carry it and compares with hex. */
static void
apdu_eq(const struct cmn_apdu *a, const char *s)
{
    uint8_t w[CMN_APDU_MAX_WIRE];
    size_t n = 0;

    assert_int_equal(cmn_apdu_encode(a, w, sizeof(w), &n), CMN_OK);
    bytes_eq(w, n, s);
}

/* Decodes wire hex into an APDU as a card would. */
static void
apdu_hx(struct cmn_apdu *a, const char *s)
{
    uint8_t w[CMN_APDU_MAX_WIRE];
    size_t n = hx(s, w, sizeof(w));

    assert_int_equal(cmn_apdu_decode(w, n, a), CMN_OK);
}

static void
plain_apdu(struct cmn_apdu *a, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *d, size_t n,
           int le)
{
    memset(a, 0, sizeof(*a));
    a->cla = 0x80;
    a->ins = ins;
    a->p1 = p1;
    a->p2 = p2;
    if (n > 0)
        memcpy(a->data, d, n);
    a->lc = n;
    a->le = le;
}

/* Opens a session on one end: challenges, then static keys. */
static void
open_end(struct cmn_scp *s, enum cmn_scp_proto proto, const struct cmn_keyset *ks,
         const char *cc, const char *seq)
{
    uint8_t hc[8], c[8], sq[2];
    size_t cn;

    assert_int_equal(cmn_scp_init(s, proto), CMN_OK);
    hx(HC, hc, 8);
    cn = hx(cc, c, 8);
    if (seq != NULL)
        hx(seq, sq, 2);
    assert_int_equal(cmn_scp_set_challenges(s, hc, c, cn, seq != NULL ? sq : NULL), CMN_OK);
    assert_int_equal(cmn_scp_derive(s, ks), CMN_OK);
    assert_int_equal(s->state, CMN_SCP_INIT);
}

/* --------------------------------------------------------------------- §5.2 SCP01 */

static void
test_scp_scp01_developer_sequence(void **state)
{
    struct cmn_keyset dev;
    struct cmn_scp host, card;
    struct cmn_apdu a, w, p;
    struct cmn_scp_iu iu;
    uint8_t hc[8], b[64], cg[8];
    size_t n = 0;
    uint16_t sw = 0;

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    /* INITIALIZE UPDATE command and the card's answer */
    hx(HC, hc, 8);
    cmn_scp_iu_apdu(0x00, 0x00, hc, -1, &a);
    apdu_eq(&a, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8");
    n = hx("40 90 79 01 00 1F 12 34 56 78 01 01 B9 69 B0 CA 37 27 2F 89 1F C1 D8 14 8F F1 34 57",
           b, sizeof(b));
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP01, b, n, &iu), CMN_OK);
    assert_int_equal(iu.key_version, 0x01);
    assert_int_equal(iu.scp_id, 0x01);
    assert_int_equal(iu.card_challenge_len, 8);
    bytes_eq(iu.kdd, 10, "40907901001F12345678");
    bytes_eq(iu.card_challenge, 8, CC);
    bytes_eq(iu.card_cryptogram, 8, "1FC1D8148FF13457");

    /* card side derives from the static developer keys and answers */
    open_end(&card, CMN_SCP01, &dev, CC, NULL);
    key_eq(&card.s_enc, "96 23 4E A1 E5 51 95 CB 0C 9E 83 49 17 86 01 CF");
    key_eq(&card.s_mac, "96 23 4E A1 E5 51 95 CB 0C 9E 83 49 17 86 01 CF");
    assert_int_equal(cmn_scp_card_cryptogram(&card, cg), CMN_OK);
    bytes_eq(cg, 8, "1F C1 D8 14 8F F1 34 57");
    memcpy(iu.card_cryptogram, cg, 8);
    {
        uint8_t enc[32];
        size_t en = 0;

        assert_int_equal(cmn_scp_iu_encode(CMN_SCP01, &iu, enc, sizeof(enc), &en), CMN_OK);
        assert_int_equal(en, 28);
        assert_memory_equal(enc, b, 28);
    }

    /* host side gets session keys "from the TKS" */
    {
        struct cmn_key se, sm;

        assert_int_equal(cmn_scp_init(&host, CMN_SCP01), CMN_OK);
        assert_int_equal(
            cmn_scp_set_challenges(&host, hc, iu.card_challenge, iu.card_challenge_len, NULL),
            CMN_OK);
        key_hx(&se, CMN_KEY_DES3, "96234EA1E55195CB0C9E8349178601CF");
        key_hx(&sm, CMN_KEY_DES3, "96234EA1E55195CB0C9E8349178601CF");
        assert_int_equal(cmn_scp_set_session_keys(&host, &se, &sm, NULL, NULL), CMN_OK);
        cmn_key_wipe(&se);
        cmn_key_wipe(&sm);
    }
    assert_int_equal(cmn_scp_verify_card_cryptogram(&host, iu.card_cryptogram), CMN_OK);
    assert_int_equal(cmn_scp_host_cryptogram(&host, cg), CMN_OK);
    bytes_eq(cg, 8, "6F 47 3D ED 1B 8B C3 EA");

    /* EXTERNAL AUTHENTICATE, level 03 */
    assert_int_equal(cmn_scp_ext_auth_build(&host, CMN_SCP_LEVEL_MAC_ENC, NULL, &w), CMN_OK);
    apdu_eq(&w, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E");
    /* the card works from the wire bytes of the spec */
    apdu_hx(&w, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E");
    assert_int_equal(cmn_scp_card_ext_auth(&card, &w, &sw), CMN_OK);
    assert_int_equal(sw, 0x9000);
    assert_int_equal(card.state, CMN_SCP_AUTH);
    bytes_eq(host.icv, 8, "03825EBA25B58E9E");

    /* CREATE PIN "password", encrypted (8+1 bytes → one pad) */
    plain_apdu(&a, 0x40, 0x00, 0x7F, (const uint8_t *)"password", 8, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    apdu_eq(&w, "84 40 00 7F 18 BE 52 47 B4 95 C2 6E AE DF 4D 0C 8D A2 00 AA 40 "
                "A6 68 98 A2 F0 87 FA CE");
    apdu_hx(&w, "84 40 00 7F 18 BE 52 47 B4 95 C2 6E AE DF 4D 0C 8D A2 00 AA 40 "
                "A6 68 98 A2 F0 87 FA CE");
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(sw, 0x9000);
    assert_int_equal(p.cla, 0x84);
    assert_int_equal(p.ins, 0x40);
    assert_int_equal(p.p2, 0x7F);
    assert_int_equal(p.lc, 8);
    assert_memory_equal(p.data, "password", 8);

    /* 7 bytes of data: Lc || data is 8 bytes, so no padding */
    hx("00112233445566", b, 7);
    plain_apdu(&a, 0x04, 0x00, 0x00, b, 7, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    apdu_eq(&w, "84 04 00 00 10 3D 4F 91 34 C6 D0 60 CF 6D A8 9E F9 8D 14 92 40");
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(p.lc, 7);
    assert_memory_equal(p.data, b, 7);

    /* a data-less command still carries one encrypted block (§4.3) */
    plain_apdu(&a, 0xF0, 0x0F, 0x00, NULL, 0, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    assert_int_equal(w.lc, 16);
    {
        uint8_t x[8];

        assert_int_equal(cmn_crypto_des3_cbc(host.s_enc.v, 16, NULL, false, w.data, 8, x), CMN_OK);
        bytes_eq(x, 8, "00 80 00 00 00 00 00 00");
    }
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(p.lc, 0);
    assert_int_equal(p.ins, 0xF0);

    cmn_scp_cleanup(&host);
    cmn_scp_cleanup(&card);
    cmn_keyset_wipe(&dev);
}

/* Host Le handling on SCP01: copied by default, dropped with scp01_omit_le; never MACed. */
static void
test_scp_scp01_le_never_maced(void **state)
{
    struct cmn_keyset dev;
    struct cmn_scp h1, h2, card;
    struct cmn_apdu a, w1, w2, p;
    uint16_t sw;
    static const uint8_t rd[9] = {0x7A, 0x30, 0, 0, 0, 0, 0, 0, 0xD0};

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    open_end(&h1, CMN_SCP01, &dev, CC, NULL);
    open_end(&h2, CMN_SCP01, &dev, CC, NULL);
    open_end(&card, CMN_SCP01, &dev, CC, NULL);
    h2.scp01_omit_le = true;
    assert_int_equal(cmn_scp_ext_auth_build(&h1, 0x03, NULL, &w1), CMN_OK);
    assert_int_equal(cmn_scp_ext_auth_build(&h2, 0x03, NULL, &w2), CMN_OK);
    assert_int_equal(cmn_scp_card_ext_auth(&card, &w1, &sw), CMN_OK);
    plain_apdu(&a, 0x56, 0x00, 0x00, rd, sizeof(rd), 0);
    assert_int_equal(cmn_scp_wrap(&h1, &a, &w1), CMN_OK);
    assert_int_equal(cmn_scp_wrap(&h2, &a, &w2), CMN_OK);
    assert_int_equal(w1.le, 0);
    assert_int_equal(w2.le, -1);
    assert_int_equal(w1.lc, w2.lc);
    assert_memory_equal(w1.data, w2.data, w1.lc); /* same MAC with or without Le */
    assert_int_equal(cmn_scp_unwrap(&card, &w1, &p, &sw), CMN_OK);
    assert_int_equal(p.le, 0);
    assert_int_equal(p.lc, sizeof(rd));
    cmn_scp_cleanup(&h1);
    cmn_scp_cleanup(&h2);
    cmn_scp_cleanup(&card);
}

/* --------------------------------------------------------------------- §5.3 VISA2 + PUT KEY */

#define VISA2_ENC "E6 55 8C B0 AD 04 66 0F 8C 27 36 5D 1B 8B 7D A9"
#define VISA2_MAC "E5 6E 7F BC A7 5B C7 20 44 FD B7 CF A8 F7 12 A4"
#define VISA2_KEK "EA BC 23 45 BC 03 3D 1A DB 1C FC 4E 99 25 1E 9A"
#define KSD_53                                                                                     \
    "02 81 10 63 F8 D0 B8 D6 85 7D 52 9F 6C 40 C1 DF 1C E3 23 03 A3 5F 3D 81 10 35 04 6C 15 A9 "   \
    "ED 96 07 0E 2C E6 1A DF 00 DF B7 03 6C 73 BA 81 10 6F 3C 5C 86 5B 90 84 55 9A B4 5B F3 85 "   \
    "49 B8 A5 03 74 DD DC"

static void
test_scp_scp01_visa2_and_put_key(void **state)
{
    struct cmn_keyset visa, dev, got;
    struct cmn_scp s, host, card;
    struct cmn_apdu a, w, p;
    struct cmn_key kek;
    uint8_t cg[8], ksd[128];
    size_t n = 0;
    uint16_t sw;

    (void)state;
    memset(&visa, 0, sizeof(visa));
    visa.version = 0x02;
    key_hx(&visa.enc, CMN_KEY_DES3, VISA2_ENC);
    key_hx(&visa.mac, CMN_KEY_DES3, VISA2_MAC);
    key_hx(&visa.kek, CMN_KEY_DES3, VISA2_KEK);
    open_end(&s, CMN_SCP01, &visa, CC, NULL);
    key_eq(&s.s_enc, "52 BE 75 3B FA B6 CC AC 97 82 5E F3 FC 58 1E FB");
    key_eq(&s.s_mac, "DF D8 AF FB DA 95 94 F4 BD B0 A9 65 20 29 55 E7");
    assert_int_equal(cmn_scp_card_cryptogram(&s, cg), CMN_OK);
    bytes_eq(cg, 8, "98 B1 33 1F 89 C8 C1 12");
    assert_int_equal(cmn_scp_host_cryptogram(&s, cg), CMN_OK);
    bytes_eq(cg, 8, "5D E0 18 99 07 E8 1A 8F");
    cmn_scp_cleanup(&s);

    /* key set data: VISA2 keys as version 02, wrapped under the current KEK = DEV */
    key_hx(&kek, CMN_KEY_DES3, DEV);
    assert_int_equal(cmn_keyset_data_build(CMN_SCP01, &kek, &visa, ksd, sizeof(ksd), &n), CMN_OK);
    bytes_eq(ksd, n, KSD_53);
    assert_int_equal(cmn_keyset_data_build(CMN_SCP01, &kek, &visa, ksd, 66, &n), CMN_ETOOBIG);
    /* the sample quoted by the C++ sources: DEV wrapped under itself, KCV 8BAF47 */
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    assert_int_equal(cmn_keyset_data_build(CMN_SCP01, &kek, &dev, ksd, sizeof(ksd), &n), CMN_OK);
    assert_int_equal(n, 67);
    bytes_eq(ksd, 23, "01 81 10 B4 BA A8 9A 8C D0 29 2B 45 21 0E 1B C8 4B 1C 31 03 8B AF 47");

    /* PUT KEY after the §5.2 EXTERNAL AUTHENTICATE, MAC only */
    open_end(&host, CMN_SCP01, &dev, CC, NULL);
    open_end(&card, CMN_SCP01, &dev, CC, NULL);
    assert_int_equal(cmn_scp_ext_auth_build(&host, 0x03, NULL, &w), CMN_OK);
    assert_int_equal(cmn_scp_card_ext_auth(&card, &w, &sw), CMN_OK);
    n = hx(KSD_53, ksd, sizeof(ksd));
    plain_apdu(&a, 0xD8, 0x01, 0x81, ksd, n, -1);
    assert_int_equal(cmn_scp_wrap_ex(&host, &a, CMN_SCP_NO_ENC, &w), CMN_OK);
    apdu_eq(&w, "84 D8 01 81 4B " KSD_53 " C4 8B 44 AD 6D 9C 73 9F");
    /* the card accepts it when told PUT KEY may come MAC-only, then installs the set */
    assert_int_equal(cmn_scp_unwrap_ex(&card, &w, CMN_SCP_ACCEPT_PLAIN, &p, &sw), CMN_OK);
    assert_int_equal(sw, 0x9000);
    assert_int_equal(p.lc, 67);
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &card.dek, p.data, p.lc, &got), CMN_OK);
    assert_int_equal(got.version, 0x02);
    key_eq(&got.enc, VISA2_ENC);
    key_eq(&got.mac, VISA2_MAC);
    key_eq(&got.kek, VISA2_KEK);

    /* the chain continues after the MAC-only command: an encrypted one still unwraps */
    plain_apdu(&a, 0x04, 0, 0, (const uint8_t *)"1234", 4, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    assert_int_equal(cmn_scp_unwrap_ex(&card, &w, CMN_SCP_ACCEPT_PLAIN, &p, &sw), CMN_OK);
    assert_memory_equal(p.data, "1234", 4);

    /* without the option, a MAC-only command at level 03 is refused */
    plain_apdu(&a, 0xD8, 0x01, 0x81, ksd, 67, -1);
    assert_int_equal(cmn_scp_wrap_ex(&host, &a, CMN_SCP_NO_ENC, &w), CMN_OK);
    assert_int_not_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(sw, 0x6982);
    assert_int_equal(card.state, CMN_SCP_NONE);

    cmn_scp_cleanup(&host);
    cmn_scp_cleanup(&card);
    cmn_keyset_wipe(&visa);
    cmn_keyset_wipe(&dev);
    cmn_keyset_wipe(&got);
    cmn_key_wipe(&kek);
}

static void
test_scp_keyset_data_rejects(void **state)
{
    struct cmn_key kek, aes;
    struct cmn_keyset ks;
    uint8_t d[128];
    size_t n;

    (void)state;
    key_hx(&kek, CMN_KEY_DES3, DEV);
    key_hx(&aes, CMN_KEY_AES, DEV);
    memset(&ks, 0xEE, sizeof(ks));
    n = hx(KSD_53, d, sizeof(d));
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, n, &ks), CMN_OK);
    /* every KCV tampered in turn → CMN_EAUTH (6A80) */
    for (size_t off = 20; off < n; off += 22) {
        d[off] ^= 0x01;
        assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, n, &ks), CMN_EAUTH);
        d[off] ^= 0x01;
    }
    /* a wrapped key byte tampered: decrypts to another key whose KCV fails */
    d[5] ^= 0x80;
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, n, &ks), CMN_EAUTH);
    d[5] ^= 0x80;
    /* every truncation and one extra byte → CMN_EINVAL */
    for (size_t m = 0; m < n; m++)
        assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, m, &ks), CMN_EINVAL);
    d[n] = 0;
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, n + 1, &ks), CMN_EINVAL);
    /* wrong key type / length / kcv length */
    d[1] = 0x88;
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, n, &ks), CMN_EINVAL);
    d[1] = 0x81;
    d[2] = 0x08;
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, n, &ks), CMN_EINVAL);
    d[2] = 0x10;
    d[19] = 0x04;
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &kek, d, n, &ks), CMN_EINVAL);
    d[19] = 0x03;
    /* wrong wrapping algorithm for the protocol */
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP01, &aes, d, n, &ks), CMN_EINVAL);
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP03, &kek, d, n, &ks), CMN_EINVAL);
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP03, &aes, d, n, &ks), CMN_EINVAL);
    cmn_key_wipe(&kek);
    cmn_key_wipe(&aes);
    cmn_keyset_wipe(&ks);
}

/* --------------------------------------------------------------------- §5.4 SCP02 */

static void
test_scp_scp02_developer_sequence(void **state)
{
    struct cmn_keyset dev, got;
    struct cmn_scp host, card;
    struct cmn_scp_iu iu;
    struct cmn_apdu a, w, p;
    uint8_t b[128], cg[8], icv[8];
    size_t n;
    uint16_t sw;

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP02, 0xFF);
    n = hx("40 90 79 01 00 1F 12 34 56 78 FF 02 00 0A 3C 1F 7A 91 5D 02 E3 10 1C 8D C3 88 9C 8F",
           b, sizeof(b));
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP02, b, n, &iu), CMN_OK);
    assert_int_equal(iu.key_version, 0xFF);
    assert_int_equal(iu.scp_id, 0x02);
    assert_int_equal(iu.seq_len, 2);
    bytes_eq(iu.seq, 2, "000A");
    assert_int_equal(iu.card_challenge_len, 6);
    bytes_eq(iu.card_challenge, 6, "3C1F7A915D02");

    open_end(&card, CMN_SCP02, &dev, "3C1F7A915D02", "000A");
    key_eq(&card.s_enc, "33 9F 1D 7F 5D 58 41 EB 03 4F 5C E2 34 55 78 94");
    key_eq(&card.s_mac, "C6 71 3F 31 B8 DC 1F 89 05 DF EC B4 06 5C B8 1E");
    key_eq(&card.s_rmac, "3C AE E5 A2 73 1A D0 52 69 0B C8 B5 A1 0F 34 01");
    key_eq(&card.dek, "06 E7 2D 52 EE FB D1 D8 DB 5C 23 0C 3F 2B 56 E9");
    assert_int_equal(cmn_scp_card_cryptogram(&card, cg), CMN_OK);
    bytes_eq(cg, 8, "E3 10 1C 8D C3 88 9C 8F");
    {
        uint8_t enc[32];
        size_t en = 0;

        assert_int_equal(cmn_scp_iu_encode(CMN_SCP02, &iu, enc, sizeof(enc), &en), CMN_OK);
        assert_int_equal(en, 28);
        assert_memory_equal(enc, b, 28);
    }

    /* host: the four session keys come from four TKS calls */
    assert_int_equal(cmn_scp_init(&host, CMN_SCP02), CMN_OK);
    hx(HC, b, 8);
    assert_int_equal(cmn_scp_set_challenges(&host, b, iu.card_challenge, 6, iu.seq), CMN_OK);
    assert_int_equal(cmn_scp_set_session_keys(&host, &card.s_enc, &card.s_mac, &card.s_rmac,
                                              &card.dek),
                     CMN_OK);
    assert_int_equal(cmn_scp_verify_card_cryptogram(&host, iu.card_cryptogram), CMN_OK);
    assert_int_equal(cmn_scp_host_cryptogram(&host, cg), CMN_OK);
    bytes_eq(cg, 8, "79 0B 0C D4 F8 68 D9 FA");

    assert_int_equal(cmn_scp_ext_auth_build(&host, 0x03, NULL, &w), CMN_OK);
    apdu_eq(&w, "84 82 03 00 10 79 0B 0C D4 F8 68 D9 FA 3B 94 E8 F4 FF 5F F4 59");
    assert_int_equal(cmn_scp_card_ext_auth(&card, &w, &sw), CMN_OK);
    /* ICV encryption: next ICV = DES(C-MAC key[0..7], C-MAC) */
    assert_int_equal(cmn_crypto_des_ecb(host.s_mac.v, true, host.icv, 8, icv), CMN_OK);
    bytes_eq(icv, 8, "DB D0 A1 C6 84 05 ED 63");

    plain_apdu(&a, 0x40, 0x00, 0x7F, (const uint8_t *)"password", 8, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    apdu_eq(&w, "84 40 00 7F 18 82 65 CF C1 85 C7 B8 93 A2 85 89 B2 5A 68 BF 97 67 C7 37 4B 7F "
                "B9 DA 0C");
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(p.lc, 8);
    assert_memory_equal(p.data, "password", 8);

    /* key set data: DEV x3 as version 01 under the session DEK */
    cmn_keyset_developer(&got, CMN_SCP02, 0x01);
    assert_int_equal(cmn_keyset_data_build(CMN_SCP02, &host.dek, &got, b, sizeof(b), &n), CMN_OK);
    bytes_eq(b, n,
             "01"
             " 80 10 0B 0A 4B AE 06 53 A3 2A 20 EE FE C2 B8 E1 D9 30 03 8B AF 47"
             " 80 10 0B 0A 4B AE 06 53 A3 2A 20 EE FE C2 B8 E1 D9 30 03 8B AF 47"
             " 80 10 0B 0A 4B AE 06 53 A3 2A 20 EE FE C2 B8 E1 D9 30 03 8B AF 47");
    /* sent encrypted at level 03, as the Java TPS does, and installed by the card */
    plain_apdu(&a, 0xD8, 0x00, 0x81, b, n, 0);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    cmn_keyset_wipe(&got);
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP02, &card.dek, p.data, p.lc, &got), CMN_OK);
    assert_int_equal(got.version, 0x01);
    key_eq(&got.kek, DEV);

    /* a data-less command: GP sends no data field; a lone pad block is accepted too */
    plain_apdu(&a, 0xF0, 0x0F, 0x00, NULL, 0, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    assert_int_equal(w.lc, 8);
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(p.lc, 0);
    {
        /* Dogtag's form: encrypt one pad block, MAC over the empty plaintext */
        struct cmn_scp h2 = host;
        uint8_t pad[8] = {0x80, 0, 0, 0, 0, 0, 0, 0}, mac_only[8];

        assert_int_equal(cmn_scp_wrap(&h2, &a, &w), CMN_OK);
        memcpy(mac_only, w.data, 8);
        assert_int_equal(cmn_crypto_des3_cbc(host.s_enc.v, 16, NULL, true, pad, 8, w.data),
                         CMN_OK);
        memcpy(w.data + 8, mac_only, 8);
        w.lc = 16;
        assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
        assert_int_equal(p.lc, 0);
        cmn_scp_cleanup(&h2);
    }
    cmn_scp_cleanup(&host);
    cmn_scp_cleanup(&card);
    cmn_keyset_wipe(&dev);
    cmn_keyset_wipe(&got);
}

/* backends §3.4: SCP02 session keys with developer keys and sequence counter 0010. */
static void
test_scp_scp02_tks_example(void **state)
{
    struct cmn_keyset dev;
    struct cmn_scp s;

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP02, 0x01);
    open_end(&s, CMN_SCP02, &dev, "010203040506", "0010");
    key_eq(&s.s_enc, "9DCFBA55D0D2D1F93A76F4E664AC7557");
    key_eq(&s.s_mac, "4EBEDA3CFAF1AF9F51E5C5C1A209FA12");
    key_eq(&s.dek, "3D8EE3E7D528FB11B228B6A2A9E67843");
    cmn_scp_cleanup(&s);
}

/* --------------------------------------------------------------------- §5.5 SCP03 */

static void
test_scp_scp03_developer_sequence(void **state)
{
    struct cmn_keyset dev, newks, got;
    struct cmn_scp host, card;
    struct cmn_scp_iu iu;
    struct cmn_apdu a, w, p;
    uint8_t b[128], cg[8], iv[16], one[16] = {0};
    size_t n;
    uint16_t sw;

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP03, 0x01);
    n = hx("40 90 79 01 00 1F 12 34 56 78 01 03 00 B9 69 B0 CA 37 27 2F 89 F5 76 A9 20 84 C6 38 "
           "8A",
           b, sizeof(b));
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP03, b, n, &iu), CMN_OK);
    assert_int_equal(iu.scp_id, 0x03);
    assert_int_equal(iu.i_param, 0x00);
    assert_int_equal(iu.seq_len, 0);
    bytes_eq(iu.card_challenge, 8, CC);

    open_end(&card, CMN_SCP03, &dev, CC, NULL);
    key_eq(&card.s_enc, "D0 96 FA 98 2D E0 83 56 A4 3B DE 2F 56 C3 93 DB");
    key_eq(&card.s_mac, "5D 6F 59 4E 8B 31 E3 24 69 7C 7C 92 88 80 B9 D3");
    key_eq(&card.s_rmac, "28 73 88 CE 89 9C 1D 6F DD 53 39 21 E6 9F 80 5A");
    key_eq(&card.dek, DEV);
    assert_int_equal(cmn_scp_card_cryptogram(&card, cg), CMN_OK);
    bytes_eq(cg, 8, "F5 76 A9 20 84 C6 38 8A");
    {
        uint8_t enc[32];
        size_t en = 0;

        assert_int_equal(cmn_scp_iu_encode(CMN_SCP03, &iu, enc, sizeof(enc), &en), CMN_OK);
        assert_int_equal(en, 29);
        assert_memory_equal(enc, b, 29);
        /* i = 70 form: 32 bytes with a 3-byte counter */
        iu.seq_len = 3;
        iu.i_param = 0x70;
        memcpy(iu.seq, "\x00\x00\x05", 3);
        assert_int_equal(cmn_scp_iu_encode(CMN_SCP03, &iu, enc, sizeof(enc), &en), CMN_OK);
        assert_int_equal(en, 32);
        assert_int_equal(cmn_scp_iu_parse(CMN_SCP03, enc, en, &iu), CMN_OK);
        assert_int_equal(iu.seq_len, 3);
        assert_int_equal(iu.seq[2], 5);
    }

    assert_int_equal(cmn_scp_init(&host, CMN_SCP03), CMN_OK);
    hx(HC, b, 8);
    assert_int_equal(cmn_scp_set_challenges(&host, b, iu.card_challenge, 8, NULL), CMN_OK);
    assert_int_equal(cmn_scp_set_session_keys(&host, &card.s_enc, &card.s_mac, NULL, &card.dek),
                     CMN_OK);
    assert_int_equal(cmn_scp_verify_card_cryptogram(&host, iu.card_cryptogram), CMN_OK);
    assert_int_equal(cmn_scp_host_cryptogram(&host, cg), CMN_OK);
    bytes_eq(cg, 8, "C1 5A 3D 09 E3 51 56 88");

    assert_int_equal(cmn_scp_ext_auth_build(&host, 0x03, NULL, &w), CMN_OK);
    apdu_eq(&w, "84 82 03 00 10 C1 5A 3D 09 E3 51 56 88 F7 C9 8E C6 96 62 10 2C");
    bytes_eq(host.icv, 16, "F7 C9 8E C6 96 62 10 2C A2 48 75 35 85 9D 13 2A");
    assert_int_equal(cmn_scp_card_ext_auth(&card, &w, &sw), CMN_OK);
    bytes_eq(card.icv, 16, "F7 C9 8E C6 96 62 10 2C A2 48 75 35 85 9D 13 2A");
    one[15] = 1;
    assert_int_equal(cmn_crypto_aes_ecb(host.s_enc.v, 16, true, one, 16, iv), CMN_OK);
    bytes_eq(iv, 16, "37 F3 D9 42 19 10 83 40 7C 4A 48 26 A7 5E 67 09");

    plain_apdu(&a, 0x40, 0x00, 0x7F, (const uint8_t *)"password", 8, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    apdu_eq(&w, "84 40 00 7F 18 5E D0 A6 53 BC C7 F8 51 9C 2B 0F F5 EF FC DC EE 4D F5 67 DE BA 24 "
                "AB 7C");
    assert_int_equal(host.counter[15], 1);
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(p.lc, 8);
    assert_memory_equal(p.data, "password", 8);

    /* a data-less command advances the counter too (§4.5) */
    plain_apdu(&a, 0xF0, 0x0F, 0x00, NULL, 0, -1);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    assert_int_equal(w.lc, 8);
    assert_int_equal(host.counter[15], 2);
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(card.counter[15], 2);

    /* key set data: version 02, key 00112233..FF x3 under the static DEV */
    memset(&newks, 0, sizeof(newks));
    newks.version = 0x02;
    key_hx(&newks.enc, CMN_KEY_AES, "00112233445566778899AABBCCDDEEFF");
    newks.mac = newks.enc;
    newks.kek = newks.enc;
    assert_int_equal(cmn_keyset_data_build(CMN_SCP03, &host.dek, &newks, b, sizeof(b), &n),
                     CMN_OK);
    bytes_eq(b, n,
             "02"
             " 88 11 10 45 33 BF D2 36 99 FC 7C 14 2D 20 BB 1A 4A 19 1F 03 35 44 E0"
             " 88 11 10 45 33 BF D2 36 99 FC 7C 14 2D 20 BB 1A 4A 19 1F 03 35 44 E0"
             " 88 11 10 45 33 BF D2 36 99 FC 7C 14 2D 20 BB 1A 4A 19 1F 03 35 44 E0");
    plain_apdu(&a, 0xD8, 0x01, 0x81, b, n, 0);
    assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
    assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
    assert_int_equal(cmn_keyset_data_parse(CMN_SCP03, &card.dek, p.data, p.lc, &got), CMN_OK);
    assert_int_equal(got.version, 2);
    key_eq(&got.mac, "00112233445566778899AABBCCDDEEFF");

    cmn_scp_cleanup(&host);
    cmn_scp_cleanup(&card);
    cmn_keyset_wipe(&dev);
    cmn_keyset_wipe(&newks);
    cmn_keyset_wipe(&got);
}

/* §5.5, last rows: static keys = EMV diversification of DEV under 3DES (shipped prot3). */
static void
test_scp_scp03_emv_developer_keys(void **state)
{
    struct cmn_keyset ks;
    struct cmn_scp s;
    uint8_t cg[8];

    (void)state;
    memset(&ks, 0, sizeof(ks));
    key_hx(&ks.enc, CMN_KEY_AES, "3B FE DA 51 6D D2 45 C0 C7 19 23 00 EB 1C A8 DA");
    key_hx(&ks.mac, CMN_KEY_AES, "1F AF 95 A2 1F FC CA E1 1D BA C3 06 4C A7 F1 DD");
    key_hx(&ks.kek, CMN_KEY_AES, "FA 3E CE CC A1 91 16 2E B3 26 9B A0 9F 6E 12 8E");
    open_end(&s, CMN_SCP03, &ks, CC, NULL);
    key_eq(&s.s_enc, "13 B3 16 1F E8 4C F1 DA 31 54 9E 0E E5 34 16 EF");
    key_eq(&s.s_mac, "2B C8 90 2C 76 8F B7 B5 A0 19 1D B8 7D 71 A2 C1");
    assert_int_equal(cmn_scp_card_cryptogram(&s, cg), CMN_OK);
    bytes_eq(cg, 8, "93 7A C6 8E 51 3F DE E3");
    assert_int_equal(cmn_scp_host_cryptogram(&s, cg), CMN_OK);
    bytes_eq(cg, 8, "32 1B A9 5C C4 87 A4 01");
    cmn_scp_cleanup(&s);
    cmn_keyset_wipe(&ks);
}

/* --------------------------------------------------------------------- §5.6, backends §3 */

static void
test_scp_tks_transport(void **state)
{
    struct cmn_key dev, aes_dev, shared, sk, back;
    uint8_t ch[16], out[32];
    size_t n = 0;
    struct cmn_keyset d;
    struct cmn_scp s;
    uint8_t cg[8];

    (void)state;
    /* §5.6: the enrollment challenge under the static KEK, and the card's decryption */
    key_hx(&dev, CMN_KEY_DES3, DEV);
    key_hx(&aes_dev, CMN_KEY_AES, DEV);
    hx("000102030405060708090A0B0C0D0E0F", ch, 16);
    assert_int_equal(cmn_scp_challenge_encrypt(&dev, ch, out), CMN_OK);
    bytes_eq(out, 16, "F1 D7 5E 4F 0D 37 C2 2C B8 D5 4E 62 53 BB 40 B1");
    assert_int_equal(cmn_scp_challenge_decrypt(&dev, out, out), CMN_OK);
    assert_memory_equal(out, ch, 16);
    assert_int_equal(cmn_scp_challenge_encrypt(&aes_dev, ch, out), CMN_OK);
    bytes_eq(out, 16, "3D 0F A4 B8 55 D2 A5 AA 49 54 B8 B5 DF 58 2A 3A");
    assert_int_equal(cmn_scp_challenge_decrypt(&aes_dev, out, out), CMN_OK);
    assert_memory_equal(out, ch, 16);

    /* backends §3.3 worked example (SCP01, developer keys) */
    cmn_keyset_developer(&d, CMN_SCP01, 1);
    assert_int_equal(cmn_scp_init(&s, CMN_SCP01), CMN_OK);
    hx("0102030405060708", ch, 8);
    hx("1122334455667788", ch + 8, 8);
    assert_int_equal(cmn_scp_set_challenges(&s, ch, ch + 8, 8, NULL), CMN_OK);
    assert_int_equal(cmn_scp_derive(&s, &d), CMN_OK);
    key_eq(&s.s_enc, "6A8BBC3E0A1F2381D2CA748C6CAA2D3F");
    assert_int_equal(cmn_scp_host_cryptogram(&s, cg), CMN_OK);
    bytes_eq(cg, 8, "05757F5B4D19D6C4");
    assert_int_equal(cmn_scp_card_cryptogram(&s, cg), CMN_OK);
    bytes_eq(cg, 8, "1ACFFD8A33DC7004");

    /* backends §3.6: S-ENC with odd parity, wrapped under an AES shared secret */
    sk = s.s_enc;
    cmn_crypto_des_parity(sk.v, sk.len);
    key_eq(&sk, "6B8ABC3E0B1F2380D3CB758C6DAB2C3E");
    key_hx(&shared, CMN_KEY_AES, "000102030405060708090A0B0C0D0E0F");
    assert_int_equal(cmn_scp_session_key_wrap(&shared, &sk, out, sizeof(out), &n), CMN_OK);
    bytes_eq(out, n, "9C8320888AB87CFB4034192F6A246F9E");
    assert_int_equal(cmn_scp_session_key_unwrap(&shared, out, n, CMN_KEY_DES3, &back), CMN_OK);
    key_eq(&back, "6B8ABC3E0B1F2380D3CB758C6DAB2C3E");
    assert_int_equal(back.alg, CMN_KEY_DES3);
    /* DES3 shared secret: 3DES-ECB */
    assert_int_equal(cmn_scp_session_key_wrap(&dev, &sk, out, sizeof(out), &n), CMN_OK);
    {
        uint8_t want[16];

        assert_int_equal(cmn_crypto_des3_ecb(dev.v, 16, true, sk.v, 16, want), CMN_OK);
        assert_memory_equal(out, want, 16);
    }
    assert_int_equal(cmn_scp_session_key_unwrap(&dev, out, n, CMN_KEY_DES3, &back), CMN_OK);
    assert_memory_equal(back.v, sk.v, 16);
    /* wrong lengths */
    assert_int_equal(cmn_scp_session_key_wrap(&dev, &sk, out, 15, &n), CMN_ETOOBIG);
    assert_int_equal(cmn_scp_session_key_unwrap(&dev, out, 12, CMN_KEY_DES3, &back), CMN_EINVAL);
    assert_int_equal(cmn_scp_session_key_unwrap(&shared, out, 8, CMN_KEY_DES3, &back), CMN_EINVAL);
    assert_int_equal(cmn_scp_session_key_unwrap(&dev, out, 33, CMN_KEY_DES3, &back), CMN_EINVAL);
    cmn_scp_cleanup(&s);
    cmn_keyset_wipe(&d);
    cmn_key_wipe(&dev);
    cmn_key_wipe(&aes_dev);
    cmn_key_wipe(&shared);
    cmn_key_wipe(&sk);
    cmn_key_wipe(&back);
}

/* --------------------------------------------------------------------- round trips */

struct rt_case {
    enum cmn_scp_proto proto;
    uint8_t level;
    const char *cc, *seq;
};

static const struct rt_case rt_cases[] = {
    {CMN_SCP01, 0x01, CC, NULL},           {CMN_SCP01, 0x03, CC, NULL},
    {CMN_SCP02, 0x01, "3C1F7A915D02", "000A"}, {CMN_SCP02, 0x03, "3C1F7A915D02", "000A"},
    {CMN_SCP03, 0x01, CC, NULL},           {CMN_SCP03, 0x03, CC, NULL},
    {CMN_SCP03, 0x33, CC, NULL},           {CMN_SCP01, 0x00, CC, NULL},
};

static void
open_pair(const struct rt_case *c, const struct cmn_keyset *ks, struct cmn_scp *host,
          struct cmn_scp *card)
{
    struct cmn_apdu w;
    uint16_t sw = 0;

    open_end(host, c->proto, ks, c->cc, c->seq);
    open_end(card, c->proto, ks, c->cc, c->seq);
    assert_int_equal(cmn_scp_ext_auth_build(host, c->level, NULL, &w), CMN_OK);
    assert_int_equal(cmn_scp_card_ext_auth(card, &w, &sw), CMN_OK);
    assert_int_equal(sw, 0x9000);
}

static void
test_scp_round_trips(void **state)
{
    static const size_t lens[] = {0, 1, 6, 7, 8, 9, 15, 16, 17, 100, 223, 239};
    struct cmn_keyset ks;
    struct cmn_scp host, card;
    struct cmn_apdu a, w, p;
    uint8_t d[CMN_APDU_MAX_DATA];
    uint16_t sw;

    (void)state;
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 31 + 5);
    for (size_t c = 0; c < sizeof(rt_cases) / sizeof(rt_cases[0]); c++) {
        cmn_keyset_developer(&ks, rt_cases[c].proto, 1);
        open_pair(&rt_cases[c], &ks, &host, &card);
        for (size_t r = 0; r < 2; r++) {
            for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                plain_apdu(&a, (uint8_t)(0x10 + i), (uint8_t)r, 0x02, d + i, lens[i],
                           i % 2 == 0 ? -1 : 0);
                assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
                if (rt_cases[c].level != 0)
                    assert_int_equal(w.cla, 0x84);
                assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
                assert_int_equal(sw, 0x9000);
                assert_int_equal(p.ins, a.ins);
                assert_int_equal(p.p1, a.p1);
                assert_int_equal(p.p2, a.p2);
                assert_int_equal(p.lc, a.lc);
                assert_int_equal(p.le, a.le);
                if (a.lc > 0)
                    assert_memory_equal(p.data, a.data, a.lc);
                /* encryption hides the data */
                if ((rt_cases[c].level & 0x02) != 0 && a.lc >= 8)
                    assert_memory_not_equal(w.data, a.data, 8);
            }
        }
        assert_memory_equal(host.icv, card.icv, 16);
        assert_memory_equal(host.counter, card.counter, 16);
        /* MAC-only limit 247, encrypted limit 239 */
        plain_apdu(&a, 0x54, 0, 0, d, (rt_cases[c].level & 0x02) != 0 ? 240 : 248, -1);
        if (rt_cases[c].level != 0)
            assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_ETOOBIG);
        if ((rt_cases[c].level & 0x02) == 0 && rt_cases[c].level != 0) {
            plain_apdu(&a, 0x54, 0, 0, d, 247, -1);
            assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
            assert_int_equal(w.lc, 255);
            assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
        }
        cmn_scp_cleanup(&host);
        cmn_scp_cleanup(&card);
        cmn_keyset_wipe(&ks);
    }
}

static void
test_scp_tampering_rejected(void **state)
{
    struct cmn_keyset ks;
    struct cmn_scp host, card, saved;
    struct cmn_apdu a, w, t, p;
    uint16_t sw;

    (void)state;
    for (size_t c = 0; c < 7; c++) { /* every case with a MAC */
        cmn_keyset_developer(&ks, rt_cases[c].proto, 1);
        open_pair(&rt_cases[c], &ks, &host, &card);
        plain_apdu(&a, 0x54, 0, 0, (const uint8_t *)"0123456789abcdefXYZ", 19, -1);
        assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
        saved = card;
        /* any flipped bit in header or data, or a wrong Lc, is refused and ends the session */
        for (size_t pos = 0; pos < 3 + w.lc; pos++) {
            t = w;
            if (pos == 0)
                t.ins ^= 0x01;
            else if (pos == 1)
                t.p1 ^= 0x01;
            else if (pos == 2)
                t.p2 ^= 0x80;
            else
                t.data[pos - 3] ^= 0x04;
            card = saved;
            assert_int_not_equal(cmn_scp_unwrap(&card, &t, &p, &sw), CMN_OK);
            assert_int_equal(sw, 0x6982);
            assert_int_equal(card.state, CMN_SCP_NONE);
        }
        /* an extra cipher block before the MAC (the SCP01/02 MAC covers only the plaintext,
         * so the length rules must catch it) */
        card = saved;
        t = w;
        memmove(t.data + t.lc, t.data + t.lc - 8, 8);
        memset(t.data + t.lc - 8, 0x5A, 8);
        t.lc += 8;
        assert_int_not_equal(cmn_scp_unwrap(&card, &t, &p, &sw), CMN_OK);
        assert_int_equal(sw, 0x6982);
        card = saved;
        t = w;
        t.lc -= 1;
        assert_int_not_equal(cmn_scp_unwrap(&card, &t, &p, &sw), CMN_OK);
        card = saved;
        t.lc = 7;
        assert_int_not_equal(cmn_scp_unwrap(&card, &t, &p, &sw), CMN_OK);
        /* the genuine command passes once; replaying it fails (the chain moved on) */
        card = saved;
        assert_int_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
        assert_int_not_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
        assert_int_equal(sw, 0x6982);
        /* after the failure the session is closed: even a fresh command is refused */
        assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
        assert_int_not_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
        /* CLA without the secure-messaging bit is refused */
        cmn_scp_cleanup(&host);
        cmn_scp_cleanup(&card);
        open_pair(&rt_cases[c], &ks, &host, &card);
        assert_int_equal(cmn_scp_wrap(&host, &a, &w), CMN_OK);
        w.cla = 0x80;
        assert_int_not_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
        assert_int_equal(sw, 0x6982);
        cmn_key_wipe(&saved.s_enc);
        cmn_key_wipe(&saved.s_mac);
        cmn_scp_cleanup(&host);
        cmn_scp_cleanup(&card);
        cmn_keyset_wipe(&ks);
    }
}

static void
test_scp_ext_auth_rejected(void **state)
{
    struct cmn_keyset ks;
    struct cmn_scp host, card;
    struct cmn_apdu w, t, p;
    uint16_t sw;

    (void)state;
    for (size_t c = 0; c < 6; c++) {
        cmn_keyset_developer(&ks, rt_cases[c].proto, 1);
        open_end(&host, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        assert_int_equal(cmn_scp_ext_auth_build(&host, rt_cases[c].level, NULL, &w), CMN_OK);

        /* host cryptogram wrong → 6300 */
        open_end(&card, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        t = w;
        t.data[3] ^= 0x10;
        assert_int_equal(cmn_scp_card_ext_auth(&card, &t, &sw), CMN_EAUTH);
        assert_int_equal(sw, 0x6300);
        assert_int_equal(card.state, CMN_SCP_NONE);
        /* C-MAC wrong → 6982 */
        open_end(&card, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        t = w;
        t.data[15] ^= 0x01;
        assert_int_equal(cmn_scp_card_ext_auth(&card, &t, &sw), CMN_EAUTH);
        assert_int_equal(sw, 0x6982);
        /* level changed after MACing → 6982 */
        open_end(&card, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        t = w;
        t.p1 = t.p1 == 0x03 ? 0x01 : 0x03;
        assert_int_not_equal(cmn_scp_card_ext_auth(&card, &t, &sw), CMN_OK);
        assert_int_equal(sw, 0x6982);
        /* unknown level → 6A86; wrong length → 6700 */
        open_end(&card, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        t = w;
        t.p1 = 0x02;
        assert_int_not_equal(cmn_scp_card_ext_auth(&card, &t, &sw), CMN_OK);
        assert_int_equal(sw, 0x6A86);
        open_end(&card, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        t = w;
        t.lc = 15;
        assert_int_not_equal(cmn_scp_card_ext_auth(&card, &t, &sw), CMN_OK);
        assert_int_equal(sw, 0x6700);
        /* other challenges (another card) → 6300 */
        open_end(&card, rt_cases[c].proto, &ks,
                 rt_cases[c].proto == CMN_SCP02 ? "3C1F7A915D03" : "B969B0CA37272F8A",
                 rt_cases[c].seq);
        assert_int_equal(cmn_scp_card_ext_auth(&card, &w, &sw), CMN_EAUTH);
        assert_int_equal(sw, 0x6300);
        /* no INITIALIZE UPDATE → 6985; a wrapped command before EXT AUTH → 6982 */
        assert_int_not_equal(cmn_scp_card_ext_auth(&card, &w, &sw), CMN_OK);
        assert_int_equal(sw, 0x6985);
        open_end(&card, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        assert_int_not_equal(cmn_scp_unwrap(&card, &w, &p, &sw), CMN_OK);
        assert_int_equal(sw, 0x6982);
        /* the genuine one passes */
        open_end(&card, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        assert_int_equal(cmn_scp_card_ext_auth(&card, &w, &sw), CMN_OK);
        /* the host refuses to build twice or with a bad level */
        assert_int_equal(cmn_scp_ext_auth_build(&host, 0x03, NULL, &t), CMN_EINVAL);
        cmn_scp_cleanup(&host);
        open_end(&host, rt_cases[c].proto, &ks, rt_cases[c].cc, rt_cases[c].seq);
        assert_int_equal(cmn_scp_ext_auth_build(&host, 0x02, NULL, &t), CMN_EINVAL);
        assert_int_equal(cmn_scp_ext_auth_build(&host, 0x33, NULL, &t),
                         rt_cases[c].proto == CMN_SCP03 ? CMN_OK : CMN_EINVAL);
        /* a host that is not authenticated cannot wrap */
        cmn_scp_cleanup(&host);
        assert_int_equal(cmn_scp_wrap(&host, &w, &t), CMN_EINVAL);
        cmn_scp_cleanup(&card);
        cmn_keyset_wipe(&ks);
    }
}

static void
test_scp_wrong_inputs(void **state)
{
    struct cmn_scp s;
    struct cmn_scp_iu iu;
    struct cmn_keyset ks;
    struct cmn_key k;
    uint8_t b[40] = {0}, hc[8] = {0};
    size_t n = 0;

    (void)state;
    assert_int_equal(cmn_scp_init(&s, (enum cmn_scp_proto)4), CMN_EINVAL);
    /* INITIALIZE UPDATE response lengths */
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP01, b, 27, &iu), CMN_ESHORT);
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP01, b, 29, &iu), CMN_EPROTO);
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP02, b, 30, &iu), CMN_EPROTO);
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP03, b, 28, &iu), CMN_ESHORT);
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP03, b, 30, &iu), CMN_EPROTO);
    assert_int_equal(cmn_scp_iu_parse(CMN_SCP03, b, 32, &iu), CMN_OK);
    /* challenge lengths per protocol */
    assert_int_equal(cmn_scp_init(&s, CMN_SCP02), CMN_OK);
    assert_int_equal(cmn_scp_set_challenges(&s, hc, b, 8, b), CMN_EINVAL);
    assert_int_equal(cmn_scp_set_challenges(&s, hc, b, 6, NULL), CMN_EINVAL);
    assert_int_equal(cmn_scp_init(&s, CMN_SCP01), CMN_OK);
    assert_int_equal(cmn_scp_set_challenges(&s, hc, b, 6, NULL), CMN_EINVAL);
    /* derive before the challenges, and with keys of the wrong algorithm */
    cmn_keyset_developer(&ks, CMN_SCP03, 1);
    assert_int_equal(cmn_scp_derive(&s, &ks), CMN_EINVAL);
    assert_int_equal(cmn_scp_set_challenges(&s, hc, b, 8, NULL), CMN_OK);
    assert_int_equal(cmn_scp_derive(&s, &ks), CMN_EINVAL);
    assert_int_equal(cmn_scp_set_session_keys(&s, &ks.enc, &ks.mac, NULL, NULL), CMN_EINVAL);
    /* cryptograms need keys */
    assert_int_equal(cmn_scp_host_cryptogram(&s, b), CMN_EINVAL);
    /* key set data with mismatched keys */
    key_hx(&k, CMN_KEY_AES, DEV);
    ks.mac.len = 32;
    assert_int_equal(cmn_keyset_data_build(CMN_SCP03, &k, &ks, b, sizeof(b), &n), CMN_EINVAL);
    ks.mac.len = 16;
    assert_int_equal(cmn_keyset_data_build(CMN_SCP01, &k, &ks, b, sizeof(b), &n), CMN_EINVAL);
    assert_int_equal(cmn_keyset_data_build(CMN_SCP03, &k, &ks, b, sizeof(b), &n), CMN_ETOOBIG);
    cmn_key_wipe(&k);
    cmn_keyset_wipe(&ks);
    cmn_scp_cleanup(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scp_scp01_developer_sequence),
        cmocka_unit_test(test_scp_scp01_le_never_maced),
        cmocka_unit_test(test_scp_scp01_visa2_and_put_key),
        cmocka_unit_test(test_scp_keyset_data_rejects),
        cmocka_unit_test(test_scp_scp02_developer_sequence),
        cmocka_unit_test(test_scp_scp02_tks_example),
        cmocka_unit_test(test_scp_scp03_developer_sequence),
        cmocka_unit_test(test_scp_scp03_emv_developer_keys),
        cmocka_unit_test(test_scp_tks_transport),
        cmocka_unit_test(test_scp_round_trips),
        cmocka_unit_test(test_scp_tampering_rejected),
        cmocka_unit_test(test_scp_ext_auth_rejected),
        cmocka_unit_test(test_scp_wrong_inputs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
