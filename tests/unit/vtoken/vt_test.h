/* tests/unit/vtoken/vt_test.h - helpers shared by the vtoken cmocka tests: hex APDUs, exact
 * response checks, and a host end of the secure channel built on common/scp.h. */
#ifndef VT_TEST_H
#define VT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/apdu.h"
#include "common/buf.h"
#include "common/scp.h"
#include "tokenclient/vtoken/vtoken.h"

/* Host challenge and card challenge of the spec vectors (card spec §5). */
#define VT_HOST_CHALLENGE "2FB79FB704FA60E8"
#define VT_CARD_CHALLENGE "B969B0CA37272F89"

static inline size_t
vt_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;

    assert_int_equal(cmn_hex_decode(s, strlen(s), true, out, cap, &n), CMN_OK);
    return n;
}

/* Sends raw bytes; returns the SW, data (without SW) in resp/rlen. */
static inline uint16_t
vt_tx(struct vt_card *c, const uint8_t *apdu, size_t n, uint8_t *resp, size_t *rlen)
{
    uint8_t buf[VT_RESP_MAX];
    size_t len = 0;

    assert_int_equal(vt_card_transmit(c, apdu, n, buf, sizeof(buf), &len), CMN_OK);
    assert_true(len >= 2);
    if (resp != NULL)
        memcpy(resp, buf, len - 2);
    if (rlen != NULL)
        *rlen = len - 2;
    return (uint16_t)(buf[len - 2] << 8 | buf[len - 1]);
}

static inline uint16_t
vt_txh(struct vt_card *c, const char *hex, uint8_t *resp, size_t *rlen)
{
    uint8_t a[300];
    size_t n = vt_hex(hex, a, sizeof(a));

    return vt_tx(c, a, n, resp, rlen);
}

/* Sends a hex APDU and checks the whole response (data ‖ SW) byte for byte. */
static inline void
vt_expect(struct vt_card *c, const char *cmd, const char *resp_hex)
{
    uint8_t a[300], want[VT_RESP_MAX], got[VT_RESP_MAX];
    size_t n = vt_hex(cmd, a, sizeof(a)), wn = vt_hex(resp_hex, want, sizeof(want)), gn = 0;

    assert_int_equal(vt_card_transmit(c, a, n, got, sizeof(got), &gn), CMN_OK);
    assert_int_equal(gn, wn);
    assert_memory_equal(got, want, wn);
}

static inline uint16_t
vt_sendapdu(struct vt_card *c, const struct cmn_apdu *a, uint8_t *resp, size_t *rlen)
{
    uint8_t w[CMN_APDU_MAX_WIRE];
    size_t n = 0;

    assert_int_equal(cmn_apdu_encode(a, w, sizeof(w), &n), CMN_OK);
    return vt_tx(c, w, n, resp, rlen);
}

/* Opens a secure channel on the selected application with the given static keys:
 * INITIALIZE UPDATE (key version kv), host-side derivation, EXTERNAL AUTHENTICATE. */
static inline void
vt_sc_open(struct vt_card *c, struct cmn_scp *host, enum cmn_scp_proto proto, uint8_t kv,
           uint8_t level, const struct cmn_keyset *statics)
{
    struct cmn_apdu a;
    struct cmn_scp_iu iu;
    uint8_t hc[8], r[64];
    size_t rl = 0;

    vt_hex(VT_HOST_CHALLENGE, hc, sizeof(hc));
    cmn_scp_iu_apdu(kv, 0, hc, -1, &a);
    assert_int_equal(vt_sendapdu(c, &a, r, &rl), 0x9000);
    assert_int_equal(cmn_scp_iu_parse(proto, r, rl, &iu), CMN_OK);
    assert_int_equal(cmn_scp_init(host, proto), CMN_OK);
    assert_int_equal(cmn_scp_set_challenges(host, hc, iu.card_challenge, iu.card_challenge_len,
                                            proto == CMN_SCP02 ? iu.seq : NULL),
                     CMN_OK);
    assert_int_equal(cmn_scp_derive(host, statics), CMN_OK);
    assert_int_equal(cmn_scp_verify_card_cryptogram(host, iu.card_cryptogram), CMN_OK);
    assert_int_equal(cmn_scp_ext_auth_build(host, level, NULL, &a), CMN_OK);
    assert_int_equal(vt_sendapdu(c, &a, NULL, NULL), 0x9000);
}

/* Wraps and sends a plain command (CLA ignored) under the host channel. */
static inline uint16_t
vt_sc_tx(struct vt_card *c, struct cmn_scp *host, uint8_t ins, uint8_t p1, uint8_t p2,
         const uint8_t *data, size_t lc, uint8_t *resp, size_t *rlen)
{
    struct cmn_apdu plain, wire;

    memset(&plain, 0, sizeof(plain));
    plain.cla = 0x84;
    plain.ins = ins;
    plain.p1 = p1;
    plain.p2 = p2;
    if (lc > 0)
        memcpy(plain.data, data, lc);
    plain.lc = lc;
    plain.le = -1;
    assert_int_equal(cmn_scp_wrap(host, &plain, &wire), CMN_OK);
    return vt_sendapdu(c, &wire, resp, rlen);
}

static inline struct vt_card *
vt_new_card(enum cmn_scp_proto proto, const char *const *settings)
{
    struct vt_config cfg;
    struct vt_card *c = NULL;
    char err[256];

    vt_config_default(&cfg);
    if (proto != CMN_SCP01) {
        char p[2] = {(char)('0' + proto), 0};
        assert_int_equal(vt_config_set(&cfg, "proto", p, err, sizeof(err)), CMN_OK);
    }
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i += 2)
        assert_int_equal(vt_config_set(&cfg, settings[i], settings[i + 1], err, sizeof(err)),
                         CMN_OK);
    assert_int_equal(vt_config_finish(&cfg, err, sizeof(err)), CMN_OK);
    assert_int_equal(vt_card_new(&cfg, &c), CMN_OK);
    return c;
}

#define VT_SELECT_COOLKEY "00A4040007627601FF000000"
#define VT_SELECT_ISD "00A4040007A0000000030000"

/* A card with the applet selected and a MAC+ENC SCP01 channel open under the developer keys:
 * the fixture of the applet tests (cmocka setup/teardown). */
struct vt_fx {
    struct vt_card *c;
    struct cmn_scp host;
};

static inline int
vt_fx_setup(void **state)
{
    struct vt_fx *f = calloc(1, sizeof(*f));
    struct cmn_keyset dev;

    f->c = vt_new_card(CMN_SCP01, NULL);
    vt_expect(f->c, VT_SELECT_COOLKEY, "9000");
    cmn_keyset_developer(&dev, CMN_SCP01, 0x01);
    vt_sc_open(f->c, &f->host, CMN_SCP01, 0x00, 0x03, &dev);
    *state = f;
    return 0;
}

static inline int
vt_fx_teardown(void **state)
{
    struct vt_fx *f = *state;

    cmn_scp_cleanup(&f->host);
    vt_card_close(f->c);
    free(f);
    return 0;
}

/* One secure command with hex data (NULL: none). [out] r, *rl. The status word. */
static inline uint16_t
vt_fx_sc(struct vt_fx *f, uint8_t ins, uint8_t p1, uint8_t p2, const char *hex, uint8_t *r,
         size_t *rl)
{
    uint8_t d[256];
    size_t n = hex != NULL ? vt_hex(hex, d, sizeof(d)) : 0;

    return vt_sc_tx(f->c, &f->host, ins, p1, p2, d, n, r, rl);
}

/* Reads the I/O buffer as the TPS does (READ OBJECT FFFFFFFF in D0 chunks). Returns total. */
static inline size_t
vt_fx_read_io(struct vt_fx *f, size_t total, uint8_t *out)
{
    size_t off, rl;
    char hex[40];

    for (off = 0; off < total; off += rl) {
        size_t n = total - off < 0xD0 ? total - off : 0xD0;

        snprintf(hex, sizeof(hex), "FFFFFFFF %08zX %02zX", off, n);
        assert_int_equal(vt_fx_sc(f, 0x56, 0, 0, hex, out + off, &rl), 0x9000);
        assert_int_equal(rl, n);
    }
    return total;
}

#endif
