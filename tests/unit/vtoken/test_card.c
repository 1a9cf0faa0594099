/* tests/unit/vtoken/test_card.c - the emulated card's card manager and secure channels: the
 * SCP01/02/03 sequences of card spec §5 played byte for byte, GET DATA, SELECT, PUT KEY,
 * applet load, and every failure status of §2 and §4.6. */
#include "vt_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void
fix_challenge(struct vt_card *c, const char *hex)
{
    uint8_t ch[8] = {0};

    vt_hex(hex, ch, sizeof(ch));
    vt_card_test_fixed_challenge(c, ch);
}

/* §5.2: SCP01, developer keys, key info 01 01, C-MAC + C-DEC on the CoolKey applet. */
static void
test_card_scp01_vectors(void **state)
{
    struct vt_card *c = vt_new_card(CMN_SCP01, NULL);
    uint8_t r[64];
    size_t rl;

    (void)state;
    fix_challenge(c, VT_CARD_CHALLENGE);
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    vt_expect(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
              "40 90 79 01 00 1F 12 34 56 78 01 01 B9 69 B0 CA 37 27 2F 89 1F C1 D8 14 8F F1 "
              "34 57 90 00");
    vt_expect(c, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "9000");
    /* CREATE PIN "password", tries 7F, encrypted and MACed */
    vt_expect(c,
              "84 40 00 7F 18 BE 52 47 B4 95 C2 6E AE DF 4D 0C 8D A2 00 AA 40 A6 68 98 A2 F0 87 "
              "FA CE",
              "9000");
    /* SET PIN 00112233445566 (7 bytes: the no-padding case) */
    vt_expect(c, "84 04 00 00 10 3D 4F 91 34 C6 D0 60 CF 6D A8 9E F9 8D 14 92 40", "9000");
    /* the card really holds those values: VERIFY with the new PIN gives a nonce */
    assert_int_equal(vt_txh(c, "B0 42 00 00 07 00 11 22 33 44 55 66", r, &rl), 0x9000);
    assert_int_equal(rl, 8);
    assert_int_equal(vt_txh(c, "B0 42 00 00 08 70 61 73 73 77 6F 72 64", NULL, NULL), 0x9C02);
    vt_card_close(c);
}

/* §5.2 + §5.3: PUT KEY on the ISD replaces set 01 by set 02 (VISA2 keys), which then
 * authenticates with the §5.3 card cryptogram. */
static void
test_card_scp01_put_key_vector(void **state)
{
    struct vt_card *c = vt_new_card(CMN_SCP01, NULL);
    struct cmn_scp host;
    struct cmn_keyset visa2;
    uint8_t k[16];

    (void)state;
    fix_challenge(c, VT_CARD_CHALLENGE);
    vt_expect(c, VT_SELECT_ISD, "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    vt_expect(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
              "40 90 79 01 00 1F 12 34 56 78 01 01 B9 69 B0 CA 37 27 2F 89 1F C1 D8 14 8F F1 "
              "34 57 90 00");
    vt_expect(c, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "9000");
    vt_expect(c,
              "84 D8 01 81 4B 02 81 10 63 F8 D0 B8 D6 85 7D 52 9F 6C 40 C1 DF 1C E3 23 03 A3 5F "
              "3D 81 10 35 04 6C 15 A9 ED 96 07 0E 2C E6 1A DF 00 DF B7 03 6C 73 BA 81 10 6F 3C "
              "5C 86 5B 90 84 55 9A B4 5B F3 85 49 B8 A5 03 74 DD DC C4 8B 44 AD 6D 9C 73 9F",
              "9000");
    /* version 01 is gone, 02 is the default and answers with the §5.3 cryptogram */
    vt_expect(c, "80 50 01 00 08 2F B7 9F B7 04 FA 60 E8", "6A88");
    vt_expect(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
              "40 90 79 01 00 1F 12 34 56 78 02 01 B9 69 B0 CA 37 27 2F 89 98 B1 33 1F 89 C8 "
              "C1 12 90 00");
    /* and the host can authenticate with the VISA2 keys of §5.1 */
    memset(&visa2, 0, sizeof(visa2));
    visa2.version = 2;
    vt_hex("E6 55 8C B0 AD 04 66 0F 8C 27 36 5D 1B 8B 7D A9", k, 16);
    assert_int_equal(cmn_key_set(&visa2.enc, CMN_KEY_DES3, k, 16), CMN_OK);
    vt_hex("E5 6E 7F BC A7 5B C7 20 44 FD B7 CF A8 F7 12 A4", k, 16);
    assert_int_equal(cmn_key_set(&visa2.mac, CMN_KEY_DES3, k, 16), CMN_OK);
    vt_hex("EA BC 23 45 BC 03 3D 1A DB 1C FC 4E 99 25 1E 9A", k, 16);
    assert_int_equal(cmn_key_set(&visa2.kek, CMN_KEY_DES3, k, 16), CMN_OK);
    vt_sc_open(c, &host, CMN_SCP01, 0x02, 0x03, &visa2);
    cmn_scp_cleanup(&host);
    vt_card_close(c);
}

/* §5.4: SCP02, developer keys at version FF, counter 000A, 6-byte card challenge. */
static void
test_card_scp02_vectors(void **state)
{
    static const char *const set[] = {"key.version", "FF", "seq", "10", NULL};
    struct vt_card *c = vt_new_card(CMN_SCP02, set);
    struct cmn_scp host;
    struct cmn_keyset dev, ks2;
    uint8_t r[64], data[80];
    size_t rl, n;

    (void)state;
    fix_challenge(c, "3C1F7A915D02");
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    vt_expect(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
              "40 90 79 01 00 1F 12 34 56 78 FF 02 00 0A 3C 1F 7A 91 5D 02 E3 10 1C 8D C3 88 "
              "9C 8F 90 00");
    vt_expect(c, "84 82 03 00 10 79 0B 0C D4 F8 68 D9 FA 3B 94 E8 F4 FF 5F F4 59", "9000");
    vt_expect(c,
              "84 40 00 7F 18 82 65 CF C1 85 C7 B8 93 A2 85 89 B2 5A 68 BF 97 67 C7 37 4B 7F "
              "B9 DA 0C",
              "9000");
    /* the session counter moved on: the next INITIALIZE UPDATE reports 000B */
    assert_int_equal(vt_txh(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    assert_int_equal(rl, 28);
    assert_int_equal(r[12], 0x00);
    assert_int_equal(r[13], 0x0B);
    /* PUT KEY from FF: P1 00 adds set 01 = DEV under the session DEK (§5.4 key set data) */
    vt_card_test_fixed_challenge(c, NULL);
    vt_expect(c, VT_SELECT_ISD, "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    cmn_keyset_developer(&dev, CMN_SCP02, 0xFF);
    vt_sc_open(c, &host, CMN_SCP02, 0x00, 0x03, &dev);
    cmn_keyset_developer(&ks2, CMN_SCP02, 0x01);
    assert_int_equal(cmn_keyset_data_build(CMN_SCP02, &host.dek, &ks2, data, sizeof(data), &n),
                     CMN_OK);
    assert_int_equal(n, 67); /* (the §5.4 bytes need counter 000A; this session has 000B) */
    assert_int_equal(vt_sc_tx(c, &host, 0xD8, 0x00, 0x81, data, n, NULL, NULL), 0x9000);
    cmn_scp_cleanup(&host);
    /* both sets exist now; the new one is the default */
    assert_int_equal(vt_txh(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    assert_int_equal(r[10], 0x01);
    assert_int_equal(vt_txh(c, "80 50 FF 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    assert_int_equal(r[10], 0xFF);
    vt_card_close(c);
}

/* §5.5: SCP03, AES-128 developer keys undiversified, i = 00 (29-byte answer). */
static void
test_card_scp03_vectors(void **state)
{
    static const char *const set[] = {"scp03.i", "00", NULL};
    struct vt_card *c = vt_new_card(CMN_SCP03, set);
    struct cmn_scp host;
    struct cmn_keyset dev, nks;
    uint8_t r[64], data[80], k[16];
    size_t rl, n;

    (void)state;
    fix_challenge(c, VT_CARD_CHALLENGE);
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    vt_expect(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8",
              "40 90 79 01 00 1F 12 34 56 78 01 03 00 B9 69 B0 CA 37 27 2F 89 F5 76 A9 20 84 "
              "C6 38 8A 90 00");
    vt_expect(c, "84 82 03 00 10 C1 5A 3D 09 E3 51 56 88 F7 C9 8E C6 96 62 10 2C", "9000");
    vt_expect(c,
              "84 40 00 7F 18 5E D0 A6 53 BC C7 F8 51 9C 2B 0F F5 EF FC DC EE 4D F5 67 DE BA "
              "24 AB 7C",
              "9000");
    /* GET DATA on the ISD: card recognition data names SCP03 with our i */
    vt_expect(c, VT_SELECT_ISD, "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    vt_expect(c, "80 CA 00 66 00",
              "66 31 73 2F 06 07 2A 86 48 86 FC 6B 01 60 0C 06 0A 2A 86 48 86 FC 6B 02 02 01 01 "
              "63 09 06 07 2A 86 48 86 FC 6B 03 64 0B 06 09 2A 86 48 86 FC 6B 04 03 00 9000");
    vt_expect(c, "80 CA 00 E0 00",
              "E0 12 C0 04 01 01 88 10 C0 04 02 01 88 10 C0 04 03 01 88 10 9000");
    /* PUT KEY with the §5.5 key set data (version 02, key 0011..FF under the static DEV) */
    cmn_keyset_developer(&dev, CMN_SCP03, 0x01);
    vt_sc_open(c, &host, CMN_SCP03, 0x01, 0x03, &dev);
    memset(&nks, 0, sizeof(nks));
    nks.version = 2;
    vt_hex("00112233445566778899AABBCCDDEEFF", k, 16);
    assert_int_equal(cmn_key_set(&nks.enc, CMN_KEY_AES, k, 16), CMN_OK);
    nks.mac = nks.kek = nks.enc;
    assert_int_equal(cmn_keyset_data_build(CMN_SCP03, &dev.kek, &nks, data, sizeof(data), &n),
                     CMN_OK);
    vt_hex("02 88 11 10 45 33 BF D2 36 99 FC 7C 14 2D 20 BB 1A 4A 19 1F 03 35 44 E0", r, 24);
    assert_memory_equal(data, r, 24);
    assert_int_equal(vt_sc_tx(c, &host, 0xD8, 0x01, 0x81, data, n, NULL, NULL), 0x9000);
    cmn_scp_cleanup(&host);
    vt_card_test_fixed_challenge(c, NULL);
    vt_sc_open(c, &host, CMN_SCP03, 0x02, 0x03, &nks);
    cmn_scp_cleanup(&host);
    assert_int_equal(vt_txh(c, "80 50 01 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x6A88);
    vt_card_close(c);
}

/* §2.3: CPLC layout, card recognition absent on SCP01, SELECT rules. */
static void
test_card_identify(void **state)
{
    static const char *const set[] = {"cuid", "40907901001F12345678", "msn", "00000001", NULL};
    struct vt_card *c = vt_new_card(CMN_SCP01, set);
    uint8_t atr[VT_ATR_MAX], want[16];

    (void)state;
    assert_int_equal(vt_card_atr(c, atr, sizeof(atr)), 12);
    vt_hex("3B 96 13 81 01 FF 62 76 01 00 00 EF", want, sizeof(want));
    assert_memory_equal(atr, want, 12);
    vt_expect(c, "00 A4 04 00 00", "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    vt_expect(c, "00 A4 04 00", "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    vt_expect(c, "80 CA 9F 7F 2D",
              "9F 7F 2A 40 90 79 01 00 00 00 00 00 00 00 00 12 34 56 78 00 1F 00 00 00 00 00 "
              "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 9000");
    vt_expect(c, "80 CA 00 66 00", "6A88");
    vt_expect(c, "80 CA 12 34 00", "6A88");
    vt_expect(c, "00 A4 04 00 08 A0 00 00 00 03 00 00 00",
              "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    vt_expect(c, "00 A4 04 00 07 A0 00 00 01 51 00 00",
              "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    /* unknown AIDs and select by file id: 6A82, never 9000 */
    vt_expect(c, "00 A4 04 00 06 A0 00 00 03 97 42", "6A82");
    vt_expect(c, "00 A4 00 0C 02 3F 00", "6A82");
    vt_expect(c, "00 A4 04 00 07 62 76 01 FF 00 00 00 00", "9000"); /* trailing Le accepted */
    vt_expect(c, "B0 3C 01 00", "6D00");                            /* the OpenSC probe */
    vt_expect(c, "B0 70 00 00 04", "58 76 80 72 9000");
    vt_expect(c, "90 70 00 00 04", "6E00");
    vt_expect(c, "B0", "6700");
    vt_expect(c, "B0 58 00 00 0E", "9C12"); /* no objects yet */
    vt_card_close(c);
}

/* §4.6: wrong cryptogram, wrong MAC, wrong order, and sessions that end. */
static void
test_card_secure_channel_failures(void **state)
{
    struct vt_card *c = vt_new_card(CMN_SCP01, NULL);
    struct cmn_scp host;
    struct cmn_keyset dev;
    uint8_t r[64];
    size_t rl;

    (void)state;
    fix_challenge(c, VT_CARD_CHALLENGE);
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    /* EXTERNAL AUTHENTICATE with no INITIALIZE UPDATE */
    vt_expect(c, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "6985");
    /* CLA 84 with no session */
    vt_expect(c, "84 40 00 7F 10 70 61 73 73 77 6F 72 64 00 00 00 00 00 00 00 00", "6982");
    /* key version the card lacks; wrong Lc */
    vt_expect(c, "80 50 05 00 08 2F B7 9F B7 04 FA 60 E8", "6A88");
    vt_expect(c, "80 50 00 00 04 2F B7 9F B7", "6700");
    /* wrong host cryptogram → 6300, and the session is over */
    assert_int_equal(vt_txh(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    vt_expect(c, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EB 03 82 5E BA 25 B5 8E 9E", "6300");
    vt_expect(c, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "6985");
    /* right cryptogram, wrong C-MAC → 6982 */
    assert_int_equal(vt_txh(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    vt_expect(c, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9F", "6982");
    /* level 02 is not a GP level */
    assert_int_equal(vt_txh(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    vt_expect(c, "84 82 02 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "6A86");
    /* another 84 command between INITIALIZE UPDATE and EXTERNAL AUTHENTICATE ends it */
    assert_int_equal(vt_txh(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    vt_expect(c, "84 F0 0F 00 08 00 00 00 00 00 00 00 00", "6982");
    vt_expect(c, "84 82 03 00 10 6F 47 3D ED 1B 8B C3 EA 03 82 5E BA 25 B5 8E 9E", "6985");
    /* a good session; a B0 command in between does not disturb the MAC chain */
    vt_card_test_fixed_challenge(c, NULL);
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    vt_sc_open(c, &host, CMN_SCP01, 0x00, 0x03, &dev);
    vt_expect(c, "B0 3C 00 00 10",
              "01 01 01 04 00 00 40 00 00 00 40 00 00 00 00 00 9000");
    assert_int_equal(vt_sc_tx(c, &host, 0xF0, 0x0F, 0x00, NULL, 0, NULL, NULL), 0x9000);
    /* a tampered command: 6982, not executed, and the session is closed */
    {
        struct cmn_apdu plain, wire;

        memset(&plain, 0, sizeof(plain));
        plain.cla = 0x84;
        plain.ins = 0xF0;
        plain.p1 = 0x07;
        plain.le = -1;
        assert_int_equal(cmn_scp_wrap(&host, &plain, &wire), CMN_OK);
        wire.data[wire.lc - 1] ^= 0x01;
        assert_int_equal(vt_sendapdu(c, &wire, NULL, NULL), 0x6982);
        assert_int_equal(vt_card_life_cycle(c), 0x0F);
        assert_int_equal(vt_sc_tx(c, &host, 0xF0, 0x07, 0x00, NULL, 0, NULL, NULL), 0x6982);
    }
    /* SELECT ends a session too */
    vt_sc_open(c, &host, CMN_SCP01, 0x00, 0x01, &dev);
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    assert_int_equal(vt_sc_tx(c, &host, 0xF0, 0x07, 0x00, NULL, 0, NULL, NULL), 0x6982);
    /* and a reset */
    vt_sc_open(c, &host, CMN_SCP01, 0x00, 0x01, &dev);
    vt_card_reset(c);
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    assert_int_equal(vt_sc_tx(c, &host, 0xF0, 0x07, 0x00, NULL, 0, NULL, NULL), 0x6982);
    cmn_scp_cleanup(&host);
    vt_card_close(c);
}

static void
test_card_put_key_bad_kcv(void **state)
{
    struct vt_card *c = vt_new_card(CMN_SCP01, NULL);
    struct cmn_scp host;
    struct cmn_keyset dev, nks;
    uint8_t data[80], r[64];
    size_t n, rl;

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    vt_expect(c, VT_SELECT_ISD, "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    vt_sc_open(c, &host, CMN_SCP01, 0x01, 0x03, &dev);
    cmn_keyset_developer(&nks, CMN_SCP01, 0x02);
    assert_int_equal(cmn_keyset_data_build(CMN_SCP01, &dev.kek, &nks, data, sizeof(data), &n),
                     CMN_OK);
    data[20] ^= 0x01; /* first KCV byte */
    assert_int_equal(vt_sc_tx(c, &host, 0xD8, 0x01, 0x81, data, n, NULL, NULL), 0x6A80);
    /* the card still holds version 01 only */
    assert_int_equal(vt_txh(c, "80 50 02 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x6A88);
    assert_int_equal(vt_txh(c, "80 50 00 00 08 2F B7 9F B7 04 FA 60 E8", r, &rl), 0x9000);
    assert_int_equal(r[10], 0x01);
    /* PUT KEY without secure messaging */
    vt_expect(c, "80 D8 01 81 04 01 02 03 04", "6982");
    cmn_scp_cleanup(&host);
    vt_card_close(c);
}

/* §2.7, §7.3: DELETE, INSTALL [for load], LOAD, INSTALL [for install] → a fresh applet
 * with the configured upgrade version. */
static void
test_card_applet_upgrade(void **state)
{
    static const char *const set[] = {"applet.upgrade", "1.4.5a5b5c5d", NULL};
    struct vt_card *c = vt_new_card(CMN_SCP02, set);
    struct cmn_scp host;
    struct cmn_keyset dev;
    uint8_t d[200];
    size_t n;

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP02, 0x01);
    /* personalise a little first */
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    vt_sc_open(c, &host, CMN_SCP02, 0x00, 0x03, &dev);
    n = vt_hex("70617373776F7264", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0x40, 0x00, 0x7F, d, n, NULL, NULL), 0x9000);
    assert_int_equal(vt_sc_tx(c, &host, 0xF0, 0x0F, 0x00, NULL, 0, NULL, NULL), 0x9000);
    /* upgrade on the ISD */
    vt_expect(c, VT_SELECT_ISD, "6F 0F 84 07 A0 00 00 00 03 00 00 A5 04 9F 65 01 FF 9000");
    vt_sc_open(c, &host, CMN_SCP02, 0x00, 0x03, &dev);
    n = vt_hex("4F 07 62 76 01 FF 00 00 00", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0xE4, 0x00, 0x00, d, n, NULL, NULL), 0x9000);
    n = vt_hex("4F 06 62 76 01 FF 00 00", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0xE4, 0x00, 0x00, d, n, NULL, NULL), 0x9000);
    /* already gone: 6A88, which the TPS ignores */
    assert_int_equal(vt_sc_tx(c, &host, 0xE4, 0x00, 0x00, d, n, NULL, NULL), 0x6A88);
    /* install of an instance whose package is not loaded */
    n = vt_hex("06 627601FF0000 07 627601FF000000 07 627601FF000000 01 00 0C EF 04 C8 02 46 50 "
               "C9 04 00 02 13 88 00",
               d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0xE6, 0x0C, 0x00, d, n, NULL, NULL), 0x6A88);
    /* LOAD without INSTALL [for load] */
    assert_int_equal(vt_sc_tx(c, &host, 0xE8, 0x80, 0x00, d, 8, NULL, NULL), 0x6985);
    n = vt_hex("06 627601FF0000 00 00 06 EF 04 C6 02 01 20 00", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0xE6, 0x02, 0x00, d, n, NULL, NULL), 0x9000);
    memset(d, 0xC4, 100);
    assert_int_equal(vt_sc_tx(c, &host, 0xE8, 0x00, 0x00, d, 100, NULL, NULL), 0x9000);
    assert_int_equal(vt_sc_tx(c, &host, 0xE8, 0x00, 0x02, d, 100, NULL, NULL), 0x6A86);
    /* the last block is never marked (Java bug): INSTALL completes the load */
    assert_int_equal(vt_sc_tx(c, &host, 0xE8, 0x00, 0x01, d, 100, NULL, NULL), 0x9000);
    n = vt_hex("06 627601FF0000 07 627601FF000000 07 627601FF000000 01 00 0C EF 04 C8 02 46 50 "
               "C9 04 00 02 13 88 00",
               d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0xE6, 0x0C, 0x00, d, n, NULL, NULL), 0x9000);
    cmn_scp_cleanup(&host);
    /* a fresh applet: new version, state 07, no PINs, memory from C9 */
    vt_expect(c, "00 A4 04 00 07 62 76 01 FF 00 00 00 00", "9000");
    vt_expect(c, "B0 70 00 00 04", "5A 5B 5C 5D 9000");
    vt_expect(c, "B0 F2 00 00 01", "07 9000");
    vt_expect(c, "B0 48 00 00 02", "00 00 9000");
    vt_expect(c, "B0 3C 00 00 10", "01 01 01 04 00 00 13 88 00 00 13 88 00 00 00 00 9000");
    vt_card_close(c);
}

static void
test_card_deleted_applet_not_selectable(void **state)
{
    struct vt_card *c = vt_new_card(CMN_SCP01, NULL);
    struct cmn_scp host;
    struct cmn_keyset dev;
    uint8_t d[16];
    size_t n;

    (void)state;
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    vt_sc_open(c, &host, CMN_SCP01, 0x00, 0x03, &dev); /* ISD is selected after reset */
    n = vt_hex("4F 07 62 76 01 FF 00 00 00", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0xE4, 0x00, 0x00, d, n, NULL, NULL), 0x9000);
    cmn_scp_cleanup(&host);
    vt_expect(c, VT_SELECT_COOLKEY, "6A82");
    assert_false(vt_card_applet_present(c));
    vt_card_close(c);
}

static void
test_card_config_errors(void **state)
{
    struct vt_config cfg;
    char err[256];

    (void)state;
    vt_config_default(&cfg);
    assert_int_equal(vt_config_set(&cfg, "proto", "4", err, sizeof(err)), CMN_EINVAL);
    assert_non_null(strstr(err, "proto"));
    assert_int_equal(vt_config_set(&cfg, "cuid", "1234", err, sizeof(err)), CMN_EINVAL);
    assert_int_equal(vt_config_set(&cfg, "nosuch", "1", err, sizeof(err)), CMN_EINVAL);
    assert_non_null(strstr(err, "unknown"));
    assert_int_equal(vt_config_set(&cfg, "applet.version", "1.4", err, sizeof(err)), CMN_EINVAL);
    assert_int_equal(vt_config_set(&cfg, "key.version", "00", err, sizeof(err)), CMN_EINVAL);
    assert_int_equal(vt_config_set(&cfg, "memory", "40000", err, sizeof(err)), CMN_EINVAL);
    assert_int_equal(vt_config_set(&cfg, "key.enc", "404142434445464748494A4B4C4D4E4F", err,
                                   sizeof(err)),
                     CMN_OK);
    /* only one of three keys given */
    assert_int_equal(vt_config_finish(&cfg, err, sizeof(err)), CMN_EINVAL);
}

/* The state file: a card survives close/open with its keys, PINs and objects. */
static void
test_card_state_persists(void **state)
{
    char dir[] = "/tmp/vt-test-XXXXXX", path[64], err[256];
    struct vt_card *c = NULL;
    struct cmn_scp host;
    struct cmn_keyset dev;
    uint8_t d[32], r[64];
    size_t n, rl;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/card", dir);
    assert_int_equal(vt_card_open(path, NULL, &c, err, sizeof(err)), CMN_OK);
    /* one owner per card: a second open is refused, a read-only inspection is fine */
    {
        struct vt_card *c2 = NULL;

        assert_int_equal(vt_card_open(path, NULL, &c2, err, sizeof(err)), CMN_EIO);
        assert_non_null(strstr(err, "in use"));
        assert_int_equal(vt_card_inspect(path, &c2, err, sizeof(err)), CMN_OK);
        vt_card_close(c2);
    }
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    vt_sc_open(c, &host, CMN_SCP01, 0x00, 0x03, &dev);
    n = vt_hex("31323334", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0x40, 0x00, 0x05, d, n, NULL, NULL), 0x9000);
    n = vt_hex("74 31 00 00 00 00 00 04 FF FF 40 00 40 00", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0x5A, 0x00, 0x00, d, n, NULL, NULL), 0x9000);
    n = vt_hex("74 31 00 00 00 00 00 00 04 CA FE BA BE", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0x54, 0x00, 0x00, d, n, NULL, NULL), 0x9000);
    assert_int_equal(vt_sc_tx(c, &host, 0xF0, 0x0F, 0x00, NULL, 0, NULL, NULL), 0x9000);
    /* a key pair in slots 2/3 for PIN 0 (§5.6 challenge under DEV) */
    n = vt_hex("80 0400 00 00 10 F1D75E4F0D37C22CB8D54E6253BB40B1 00", d, sizeof(d));
    assert_int_equal(vt_sc_tx(c, &host, 0x0C, 0x02, 0x03, d, n, r, &rl), 0x9000);
    cmn_scp_cleanup(&host);
    vt_card_close(c);
    /* the file exists, is private, and is not a copy of a default card */
    f = fopen(path, "r");
    assert_non_null(f);
    fclose(f);
    c = NULL;
    assert_int_equal(vt_card_open(path, NULL, &c, err, sizeof(err)), CMN_OK);
    vt_expect(c, VT_SELECT_COOLKEY, "9000");
    vt_expect(c, "B0 F2 00 00 01", "0F 9000");
    vt_expect(c, "B0 56 00 00 11 74 31 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00",
              "CA FE BA BE 9000");
    assert_int_equal(vt_txh(c, "B0 42 00 00 04 31 32 33 34", r, &rl), 0x9000);
    assert_int_equal(rl, 8);
    /* the key pair came back: listed, and the private half signs for PIN 0 */
    vt_expect(c, "B0 3A 00 00 0B", "02 03 03 04 00 00 00 40 00 00 01 9000");
    {
        struct cmn_apdu a;
        uint8_t big[160];

        memset(&a, 0, sizeof(a));
        a.cla = 0xB0;
        a.ins = 0x36;
        a.p1 = 0x02;
        a.p2 = 0x04;
        memcpy(a.data, "\x00\x03\x01\x00\x80", 5);
        memset(a.data + 5, 0x01, 128);
        a.data[5] = 0x00;
        memcpy(a.data + 133, r, 8); /* the login nonce */
        a.lc = 141;
        a.le = -1;
        assert_int_equal(vt_sendapdu(c, &a, big, &rl), 0x9000);
        assert_int_equal(rl, 130);
    }
    vt_card_close(c);
    /* a corrupt file is refused with a message naming it */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("vtoken-state 1\nproto 9\nend\n", f);
    fclose(f);
    c = NULL;
    assert_int_equal(vt_card_open(path, NULL, &c, err, sizeof(err)), CMN_EINVAL);
    assert_non_null(strstr(err, path));
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/card.lock", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* One card per thread, all at once (what tokenclient --emulate does): no shared state. */
static void *
thread_card(void *arg)
{
    struct vt_config cfg;
    struct vt_card *c = NULL;
    struct cmn_scp host;
    struct cmn_keyset dev;
    struct cmn_scp_iu iu;
    struct cmn_apdu a, w;
    uint8_t hc[8] = {9, 8, 7, 6, 5, 4, 3, 2}, wire[300], resp[VT_RESP_MAX];
    size_t n, rl;
    long bad = 0;
    int proto = (int)(intptr_t)arg % 3 + 1;

    vt_config_default(&cfg);
    cfg.proto = (enum cmn_scp_proto)proto;
    if (vt_config_finish(&cfg, NULL, 0) != CMN_OK || vt_card_new(&cfg, &c) != CMN_OK)
        return (void *)1;
    for (int round = 0; round < 30 && bad == 0; round++) {
        static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0x62, 0x76,
                                      0x01, 0xFF, 0x00, 0x00, 0x00};

        vt_card_reset(c);
        bad |= vt_card_transmit(c, sel, sizeof(sel), resp, sizeof(resp), &rl) != CMN_OK;
        cmn_scp_iu_apdu(0, 0, hc, -1, &a);
        bad |= cmn_apdu_encode(&a, wire, sizeof(wire), &n) != CMN_OK;
        bad |= vt_card_transmit(c, wire, n, resp, sizeof(resp), &rl) != CMN_OK || rl < 30;
        if (bad)
            break;
        bad |= cmn_scp_iu_parse(cfg.proto, resp, rl - 2, &iu) != CMN_OK;
        cmn_keyset_developer(&dev, cfg.proto, iu.key_version);
        bad |= cmn_scp_init(&host, cfg.proto) != CMN_OK;
        bad |= cmn_scp_set_challenges(&host, hc, iu.card_challenge, iu.card_challenge_len,
                                      cfg.proto == CMN_SCP02 ? iu.seq : NULL) != CMN_OK;
        bad |= cmn_scp_derive(&host, &dev) != CMN_OK;
        bad |= cmn_scp_ext_auth_build(&host, 3, NULL, &a) != CMN_OK;
        bad |= cmn_apdu_encode(&a, wire, sizeof(wire), &n) != CMN_OK;
        bad |= vt_card_transmit(c, wire, n, resp, sizeof(resp), &rl) != CMN_OK ||
               resp[rl - 2] != 0x90;
        /* SET LIFE CYCLE 0F then 07 under the channel */
        memset(&a, 0, sizeof(a));
        a.cla = 0x84;
        a.ins = 0xF0;
        a.p1 = round % 2 ? 0x07 : 0x0F;
        a.le = -1;
        bad |= cmn_scp_wrap(&host, &a, &w) != CMN_OK;
        bad |= cmn_apdu_encode(&w, wire, sizeof(wire), &n) != CMN_OK;
        bad |= vt_card_transmit(c, wire, n, resp, sizeof(resp), &rl) != CMN_OK ||
               resp[rl - 2] != 0x90;
        bad |= vt_card_life_cycle(c) != a.p1;
        cmn_scp_cleanup(&host);
    }
    vt_card_close(c);
    return (void *)bad;
}

static void
test_card_threads(void **state)
{
    pthread_t t[6];
    void *rv;

    (void)state;
    for (intptr_t i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_card, (void *)i), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pthread_join(t[i], &rv), 0);
        assert_null(rv);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_card_scp01_vectors),
        cmocka_unit_test(test_card_scp01_put_key_vector),
        cmocka_unit_test(test_card_scp02_vectors),
        cmocka_unit_test(test_card_scp03_vectors),
        cmocka_unit_test(test_card_identify),
        cmocka_unit_test(test_card_secure_channel_failures),
        cmocka_unit_test(test_card_put_key_bad_kcv),
        cmocka_unit_test(test_card_applet_upgrade),
        cmocka_unit_test(test_card_deleted_applet_not_selectable),
        cmocka_unit_test(test_card_config_errors),
        cmocka_unit_test(test_card_state_persists),
        cmocka_unit_test(test_card_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
