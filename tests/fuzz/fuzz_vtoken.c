/* tests/fuzz/fuzz_vtoken.c - arbitrary APDU sequences against an emulated card (libvtoken),
 * optionally through an open secure channel so the CLA 84 handlers are reached too.
 * Input: byte 0 = bits 0-1 protocol (SCP01/02/03), bit 2 open a C-MAC+C-DEC channel on the
 * CoolKey applet first; then records `L ‖ bytes`: L = 0 resets the card; L & 80 wraps the
 * record (INS P1 P2 data) as a CLA 84 command through the channel; else the record is a raw
 * command APDU of L bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/apdu.h"
#include "common/scp.h"
#include "tokenclient/vtoken/vtoken.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
send_apdu(struct vt_card *c, const struct cmn_apdu *a, uint8_t *resp, size_t *rl)
{
    uint8_t w[CMN_APDU_MAX_WIRE];
    size_t n = 0;

    if (cmn_apdu_encode(a, w, sizeof(w), &n) != CMN_OK)
        return -1;
    return vt_card_transmit(c, w, n, resp, VT_RESP_MAX, rl) == CMN_OK ? 0 : -1;
}

static int
open_channel(struct vt_card *c, enum cmn_scp_proto proto, struct cmn_scp *host)
{
    static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0x62, 0x76,
                                  0x01, 0xFF, 0x00, 0x00, 0x00};
    uint8_t hc[8] = {1, 2, 3, 4, 5, 6, 7, 8}, resp[VT_RESP_MAX];
    size_t rl = 0;
    struct cmn_apdu a;
    struct cmn_scp_iu iu;
    struct cmn_keyset dev;
    int ok;

    if (vt_card_transmit(c, sel, sizeof(sel), resp, sizeof(resp), &rl) != CMN_OK)
        return -1;
    cmn_scp_iu_apdu(0, 0, hc, -1, &a);
    if (send_apdu(c, &a, resp, &rl) != 0 || rl < 2 ||
        cmn_scp_iu_parse(proto, resp, rl - 2, &iu) != CMN_OK)
        return -1;
    cmn_keyset_developer(&dev, proto, iu.key_version);
    ok = cmn_scp_init(host, proto) == CMN_OK &&
         cmn_scp_set_challenges(host, hc, iu.card_challenge, iu.card_challenge_len,
                                proto == CMN_SCP02 ? iu.seq : NULL) == CMN_OK &&
         cmn_scp_derive(host, &dev) == CMN_OK &&
         cmn_scp_ext_auth_build(host, CMN_SCP_LEVEL_MAC_ENC, NULL, &a) == CMN_OK &&
         send_apdu(c, &a, resp, &rl) == 0;
    cmn_keyset_wipe(&dev);
    return ok ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vt_config cfg;
    struct vt_card *c = NULL;
    struct cmn_scp host;
    uint8_t resp[VT_RESP_MAX];
    size_t rl, i = 1;
    enum cmn_scp_proto proto;
    bool sc = false;

    if (size < 1)
        return 0;
    proto = (enum cmn_scp_proto)((data[0] & 3) % 3 + 1);
    vt_config_default(&cfg);
    cfg.proto = proto;
    if (vt_config_finish(&cfg, NULL, 0) != CMN_OK || vt_card_new(&cfg, &c) != CMN_OK)
        return 0;
    memset(&host, 0, sizeof(host));
    if (data[0] & 4)
        sc = open_channel(c, proto, &host) == 0;
    while (i < size) {
        size_t l = data[i++] & 0x7F;
        bool wrap = (data[i - 1] & 0x80) != 0;

        if (l == 0 && !wrap) {
            vt_card_reset(c);
            continue;
        }
        if (l > size - i)
            l = size - i;
        if (wrap && sc && l >= 3) {
            struct cmn_apdu plain, wire;

            memset(&plain, 0, sizeof(plain));
            plain.cla = 0x84;
            plain.ins = data[i];
            plain.p1 = data[i + 1];
            plain.p2 = data[i + 2];
            plain.lc = l - 3;
            memcpy(plain.data, data + i + 3, plain.lc);
            plain.le = -1;
            if (cmn_scp_wrap(&host, &plain, &wire) == CMN_OK)
                (void)send_apdu(c, &wire, resp, &rl);
        } else {
            (void)vt_card_transmit(c, data + i, l, resp, sizeof(resp), &rl);
        }
        i += l;
    }
    cmn_scp_cleanup(&host);
    vt_card_close(c);
    return 0;
}
