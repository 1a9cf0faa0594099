/* gateway/prologue.c - identifying the card (tps-protocol §3.1, Java order): select default /
 * card manager, CPLC -> CUID and MSN (§6.1), CoolKey GET STATUS and GET VERSION, life cycle,
 * and the GP probes that choose SCP01, SCP02 or SCP03 (§3.2 step 4, card spec §2.3). */
#include "gateway/session.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "gateway/config.h"
#include "common/log.h"

/* Parses the first AID of a comma-separated hex list into out; false if none is valid. */
static bool
aid_from_list(const char *list, size_t idx, uint8_t *out, size_t *n)
{
    const char *p = list;

    for (size_t i = 0; p != NULL && *p; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len > 0 && p[0] == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (i == idx)
            return cmn_hex_decode(p, len, false, out, 16, n) == CMN_OK && *n >= 5;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* Configured CoolKey instance AID (applet.aid.netkey_instance). */
static bool
coolkey_aid(const struct tps_session *s, uint8_t *aid, size_t *n)
{
    return aid_from_list(tps_cfg_str(s->env->cfg, "applet.aid.netkey_instance"), 0, aid, n);
}

/* Sends a case-2 command, re-sending with the card's Le on 6Cxx (card spec §1.3). */
static enum tps_rc
xfer_case2(struct tps_session *s, struct cmn_apdu *a, struct cmn_rapdu *r)
{
    enum tps_rc rc = tps_card_xfer(s, a, r);

    if (rc == TPS_OK && (r->sw >> 8) == 0x6C) {
        a->le = r->sw & 0xFF;
        rc = tps_card_xfer(s, a, r);
    }
    return rc;
}

/* Finds tag 84 inside an FCI template 6F. */
static bool
fci_aid(const struct cmn_rapdu *r, uint8_t *aid, size_t *n)
{
    struct cmn_rd rd, in;
    uint8_t tag, len;
    const uint8_t *v;

    cmn_rd_init(&rd, r->data, r->len);
    if (!cmn_rd_u8(&rd, &tag) || tag != 0x6F || !cmn_rd_u8(&rd, &len) || !cmn_rd_take(&rd, len, &v))
        return false;
    cmn_rd_init(&in, v, len);
    while (cmn_rd_u8(&in, &tag) && cmn_rd_u8(&in, &len) && cmn_rd_take(&in, len, &v)) {
        if (tag == 0x84 && len >= 5 && len <= 16) {
            memcpy(aid, v, len);
            *n = len;
            return true;
        }
    }
    return false;
}

/* The card manager: the AID in the FCI if configured, the first configured one otherwise. */
static enum tps_rc
select_card_manager(struct tps_session *s)
{
    const char *list = tps_cfg_str(s->env->cfg, "applet.aid.cardmgr_instance");
    struct cmn_apdu a = {.cla = 0x00, .ins = 0xA4, .p1 = 0x04, .p2 = 0x00, .lc = 0, .le = 0};
    struct cmn_rapdu r;
    uint8_t aid[16], cand[16];
    size_t n = 0, cn;
    bool ok = false;
    char hex[33];
    enum tps_rc rc;

    rc = xfer_case2(s, &a, &r);
    if (rc != TPS_OK)
        return rc;
    if (r.sw != 0x9000)
        return tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_SECURE_CHANNEL,
                                "select default application answered %04X", r.sw);
    if (fci_aid(&r, aid, &n)) {
        for (size_t i = 0; aid_from_list(list, i, cand, &cn); i++)
            if (cn == n && memcmp(cand, aid, n) == 0)
                ok = true;
        if (!ok) {
            tps_hex(aid, n, hex);
            return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_SECURE_CHANNEL,
                                    "card manager %s is not in applet.aid.cardmgr_instance", hex);
        }
    } else if (!aid_from_list(list, 0, aid, &n)) {
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                "applet.aid.cardmgr_instance holds no AID");
    }
    memcpy(s->tok.cardmgr_aid, aid, n);
    s->tok.cardmgr_aid_len = n;
    rc = tps_card_select(s, aid, n, &r);
    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "select card manager answered %04X", r.sw);
    return rc;
}

static enum tps_rc
read_cplc(struct tps_session *s)
{
    struct cmn_apdu a = {.cla = 0x80, .ins = 0xCA, .p1 = 0x9F, .p2 = 0x7F, .lc = 0, .le = 0x2D};
    struct cmn_rapdu r;
    enum tps_rc rc;

    rc = xfer_case2(s, &a, &r);
    if (rc != TPS_OK)
        return rc;
    /* Java requires exactly 45 data bytes + SW (§6.1). */
    if (r.sw != 0x9000 || r.len != 45)
        return tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_SECURE_CHANNEL,
                                "GET DATA CPLC answered %zu bytes, SW %04X (want 45, 9000)", r.len,
                                r.sw);
    memcpy(s->tok.cuid, r.data + 3, 4);
    memcpy(s->tok.cuid + 4, r.data + 19, 2);
    memcpy(s->tok.cuid + 6, r.data + 15, 4);
    memcpy(s->tok.msn, r.data + 41, 4);
    tps_hex(s->tok.cuid, 10, s->tok.cuid_hex);
    tps_hex(s->tok.msn, 4, s->tok.msn_hex);
    s->tok.have_cuid = true;
    return TPS_OK;
}

enum tps_rc
tps_read_applet_version(struct tps_session *s)
{
    struct cmn_apdu ver = {.cla = 0xB0, .ins = 0x70, .p1 = 0, .p2 = 0, .lc = 0, .le = 4};
    struct cmn_apdu lc = {.cla = 0xB0, .ins = 0xF2, .p1 = 0, .p2 = 0, .lc = 0, .le = 1};
    struct cmn_rapdu r;
    uint8_t aid[16];
    size_t n;
    enum tps_rc rc;

    s->tok.have_applet = false;
    s->tok.applet_version[0] = '\0';
    if (!coolkey_aid(s, aid, &n))
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                "applet.aid.netkey_instance holds no AID");
    rc = tps_card_select(s, aid, n, &r);
    if (rc != TPS_OK || r.sw != 0x9000)
        return rc; /* no applet: a blank card */
    rc = tps_card_xfer(s, &ver, &r);
    if (rc != TPS_OK)
        return rc;
    if (r.sw != 0x9000 || r.len != 4)
        return TPS_OK; /* a non-9000 answer means no applet (§3.1) */
    s->tok.build_id = ((uint32_t)r.data[0] << 24) | ((uint32_t)r.data[1] << 16) |
                      ((uint32_t)r.data[2] << 8) | r.data[3];
    s->tok.have_applet = true;
    snprintf(s->tok.applet_version, sizeof(s->tok.applet_version), "%u.%u.%08x",
             s->tok.applet_major, s->tok.applet_minor, s->tok.build_id);
    rc = tps_card_xfer(s, &lc, &r);
    if (rc != TPS_OK)
        return rc;
    s->tok.life_cycle = (r.sw == 0x9000 && r.len == 1) ? r.data[0] : -1;
    return TPS_OK;
}

enum tps_rc
tps_prologue(struct tps_session *s)
{
    struct cmn_apdu st = {.cla = 0xB0, .ins = 0x3C, .p1 = 0, .p2 = 0, .lc = 0, .le = 0x10};
    struct cmn_rapdu r;
    uint8_t aid[16];
    size_t n;
    enum tps_rc rc;

    rc = select_card_manager(s);
    if (rc != TPS_OK)
        return rc;
    rc = read_cplc(s);
    if (rc != TPS_OK)
        return rc;
    if (!coolkey_aid(s, aid, &n))
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                "applet.aid.netkey_instance holds no AID");
    rc = tps_card_select(s, aid, n, &r);
    if (rc != TPS_OK)
        return rc;
    if (r.sw == 0x9000) {
        rc = tps_card_xfer(s, &st, &r);
        if (rc != TPS_OK)
            return rc;
        if (r.sw == 0x9000 && r.len == 16) {
            s->tok.have_status = true;
            s->tok.proto_major = r.data[0];
            s->tok.proto_minor = r.data[1];
            s->tok.applet_major = r.data[2];
            s->tok.applet_minor = r.data[3];
        }
    }
    rc = tps_read_applet_version(s);
    if (rc != TPS_OK)
        return rc;
    CMN_LOG(CMN_LOG_INFO, "token.identified", s->sid, "cuid=%s msn=%s applet=%s protocol=%u.%u",
            s->tok.cuid_hex, s->tok.msn_hex, s->tok.have_applet ? s->tok.applet_version : "none",
            s->tok.proto_major, s->tok.proto_minor);
    return TPS_OK;
}

/* Reads the (protocol, i) pair of the SCP OID under tag 64 of card recognition data. */
static bool
recognition_scp(const struct cmn_rapdu *r, uint8_t *proto, uint8_t *iparam)
{
    struct cmn_rd rd, t73, t64;
    uint8_t tag, len;
    const uint8_t *v;

    /* 66 L 73 L { 06 .. | 60 .. | 63 .. | 64 L { 06 L OID } } */
    cmn_rd_init(&rd, r->data, r->len);
    if (!cmn_rd_u8(&rd, &tag) || tag != 0x66 || !cmn_rd_u8(&rd, &len) || !cmn_rd_take(&rd, len, &v))
        return false;
    cmn_rd_init(&rd, v, len);
    if (!cmn_rd_u8(&rd, &tag) || tag != 0x73 || !cmn_rd_u8(&rd, &len) || !cmn_rd_take(&rd, len, &v))
        return false;
    cmn_rd_init(&t73, v, len);
    while (cmn_rd_u8(&t73, &tag) && cmn_rd_u8(&t73, &len) && cmn_rd_take(&t73, len, &v)) {
        if (tag != 0x64)
            continue;
        cmn_rd_init(&t64, v, len);
        if (!cmn_rd_u8(&t64, &tag) || tag != 0x06 || !cmn_rd_u8(&t64, &len) || len < 2 ||
            !cmn_rd_take(&t64, len, &v))
            return false;
        *proto = v[len - 2];
        *iparam = v[len - 1];
        return true;
    }
    return false;
}

enum tps_rc
tps_probe_gp(struct tps_session *s)
{
    struct cmn_apdu a66 = {.cla = 0x80, .ins = 0xCA, .p1 = 0x00, .p2 = 0x66, .lc = 0, .le = 0x2D};
    struct cmn_apdu ae0 = {.cla = 0x80, .ins = 0xCA, .p1 = 0x00, .p2 = 0xE0, .lc = 0, .le = 0x2D};
    struct cmn_rapdu r;
    uint8_t proto = 1, iparam = 0;
    enum tps_rc rc;

    s->tok.gp_proto = CMN_SCP01;
    rc = tps_card_select(s, s->tok.cardmgr_aid, s->tok.cardmgr_aid_len, &r);
    if (rc != TPS_OK)
        return rc;
    if (r.sw != 0x9000)
        return tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_SECURE_CHANNEL,
                                "select card manager answered %04X", r.sw);
    rc = xfer_case2(s, &a66, &r);
    if (rc != TPS_OK)
        return rc;
    /* Java's first checks: answer incl. SW >= 5 bytes, byte 1 neither 00 nor >= that length;
     * anything else means GP 2.0.1 / SCP01 (tps-protocol §3.2 step 4). */
    if (r.sw != 0x9000 || r.len + 2 < 5 || r.data[1] == 0 || r.data[1] >= r.len + 2 ||
        !recognition_scp(&r, &proto, &iparam))
        goto done;
    rc = xfer_case2(s, &ae0, &r);
    if (rc != TPS_OK)
        return rc;
    if (r.sw != 0x9000 || r.len < 2 || r.data[0] != 0xE0 || r.data[1] % 6 != 0) {
        proto = 1;
        goto done;
    }
    if (proto == 2 && iparam == 0x15)
        s->tok.gp_proto = CMN_SCP02;
    else if (proto == 3)
        s->tok.gp_proto = CMN_SCP03;
done:
    CMN_LOG(CMN_LOG_DEBUG, "token.gp", s->sid, "cuid=%s scp=%d", s->tok.cuid_hex,
            (int)s->tok.gp_proto);
    return TPS_OK;
}
