/* tokenclient/card_emu.c - an emulated CoolKey card (vtoken) in process: the same card the
 * vtoken program serves through pcscd, without PC/SC, for load generation and tests. */
#include "tokenclient/tc.h"

#include <stdio.h>
#include <string.h>

#include "tokenclient/vtoken/vtoken.h"

static enum tc_rc
emu_transmit(struct tc_card *c, const uint8_t *apdu, size_t n, uint8_t *resp, size_t cap,
             size_t *resp_len)
{
    uint8_t buf[VT_RESP_MAX];
    size_t got = 0;
    enum cmn_rc rc;

    rc = vt_card_transmit(c->impl, apdu, n, buf, sizeof(buf), &got);
    if (rc != CMN_OK && rc != CMN_EIO) {
        snprintf(c->err, sizeof(c->err), "emulated card: %s", cmn_strerror(rc));
        return TC_ECARD;
    }
    if (got > cap) {
        snprintf(c->err, sizeof(c->err), "card answer larger than %zu bytes", cap);
        return TC_ECARD;
    }
    memcpy(resp, buf, got);
    *resp_len = got;
    return TC_OK;
}

static enum tc_rc
emu_reset(struct tc_card *c)
{
    vt_card_reset(c->impl);
    return TC_OK;
}

static void
emu_close(struct tc_card *c)
{
    vt_card_close(c->impl);
    c->impl = NULL;
}

static const struct tc_card_ops emu_ops = {
    .transmit = emu_transmit,
    .reset = emu_reset,
    .close = emu_close,
};

enum tc_rc
tc_emu_open(const char *state_path, const char *cuid_hex, struct tc_card *card)
{
    struct vt_config cfg;
    struct vt_card *vc = NULL;
    enum cmn_rc rc;

    memset(card, 0, sizeof(*card));
    vt_config_default(&cfg);
    if (cuid_hex != NULL &&
        vt_config_set(&cfg, "cuid", cuid_hex, card->err, sizeof(card->err)) != CMN_OK)
        return TC_EUSAGE;
    if (vt_config_finish(&cfg, card->err, sizeof(card->err)) != CMN_OK)
        return TC_EUSAGE;
    if (state_path != NULL)
        rc = vt_card_open(state_path, &cfg, &vc, card->err, sizeof(card->err));
    else
        rc = vt_card_new(&cfg, &vc);
    if (rc != CMN_OK) {
        if (card->err[0] == 0)
            snprintf(card->err, sizeof(card->err), "emulated card: %s", cmn_strerror(rc));
        return TC_ECARD;
    }
    vt_card_reset(vc);
    card->ops = &emu_ops;
    card->impl = vc;
    card->atr_len = vt_card_atr(vc, card->atr, sizeof(card->atr));
    snprintf(card->name, sizeof(card->name), "emulated card%s%s", state_path ? " " : "",
             state_path ? state_path : "");
    return TC_OK;
}
