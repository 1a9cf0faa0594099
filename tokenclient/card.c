/* tokenclient/card.c - what the client reads from a card by itself: CUID and issuer info. */
#include "tokenclient/tc.h"

#include <stdio.h>
#include <string.h>

#include "common/apdu.h"

/* Sends a and decodes the answer into r. */
static enum tc_rc
send(struct tc_card *c, const struct cmn_apdu *a, struct cmn_rapdu *r)
{
    uint8_t cmd[CMN_APDU_MAX_WIRE], resp[CMN_RAPDU_MAX_DATA + 2];
    size_t n, got;
    enum tc_rc rc;

    if (cmn_apdu_encode(a, cmd, sizeof(cmd), &n) != CMN_OK)
        return TC_ECARD;
    rc = c->ops->transmit(c, cmd, n, resp, sizeof(resp), &got);
    if (rc != TC_OK)
        return rc;
    if (cmn_rapdu_decode(resp, got, r) != CMN_OK) {
        snprintf(c->err, sizeof(c->err), "card answer of %zu bytes cannot be decoded", got);
        return TC_ECARD;
    }
    return TC_OK;
}

enum tc_rc
tc_card_identify(struct tc_card *c, char cuid[21], char *issuer_url, size_t url_len)
{
    static const uint8_t isd[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00};
    struct cmn_apdu a;
    struct cmn_rapdu r;
    struct cmn_cplc cplc;
    enum tc_rc rc;
    size_t n;

    cuid[0] = 0;
    if (url_len > 0)
        issuer_url[0] = 0;
    /* CUID from the CPLC of the card manager (card spec §2.3) */
    if (cmn_apdu_select_aid(&a, isd, sizeof(isd), true) != CMN_OK)
        return TC_ECARD;
    rc = send(c, &a, &r);
    if (rc != TC_OK)
        return rc;
    if (cmn_apdu_get_data(&a, 0x9F7F) != CMN_OK)
        return TC_ECARD;
    rc = send(c, &a, &r);
    if (rc != TC_OK)
        return rc;
    if (r.sw != 0x9000 || cmn_cplc_parse(r.data, r.len, &cplc) != CMN_OK) {
        snprintf(c->err, sizeof(c->err),
                 "the card gives no CPLC data (GET DATA 9F7F answered %04X): not a "
                 "GlobalPlatform card?",
                 r.sw);
        return TC_ECARD;
    }
    (void)cmn_hex_encode(cplc.cuid, sizeof(cplc.cuid), cuid, 21);
    /* issuer info: the phone-home URL the TPS wrote (card spec §6.5) */
    if (cmn_apdu_select_aid(&a, cmn_aid_coolkey, sizeof(cmn_aid_coolkey), true) != CMN_OK)
        return TC_ECARD;
    rc = send(c, &a, &r);
    if (rc != TC_OK)
        return rc;
    if (r.sw != 0x9000)
        return TC_OK; /* blank card: no applet, no URL */
    if (cmn_apdu_get_issuer_info(&a) != CMN_OK)
        return TC_ECARD;
    rc = send(c, &a, &r);
    if (rc != TC_OK)
        return rc;
    if (r.sw != 0x9000 || url_len == 0)
        return TC_OK;
    for (n = 0; n < r.len && r.data[n] != 0; n++) {
        if (r.data[n] < 0x21 || r.data[n] > 0x7E) {
            n = 0; /* not a URL: ignore rather than use garbage */
            break;
        }
    }
    if (n >= url_len)
        n = 0;
    memcpy(issuer_url, r.data, n);
    issuer_url[n] = 0;
    return TC_OK;
}
