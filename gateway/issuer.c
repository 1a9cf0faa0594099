/* gateway/issuer.c - the issuer info of a card: the value template, GET ISSUER INFO to see what
 * the card carries, SET ISSUER INFO (224 bytes, zero padded). */
#include "gateway/issuer.h"

#include <stdio.h>
#include <string.h>

#include "common/apdu.h"
#include "common/log.h"
#include "gateway/config.h"
#include "gateway/lb.h"

#define ISSUER_INFO_LEN 224

/* Expands $cuid$, $msn$, $userid$, $profileId$ and $$ (tps-protocol §5.1). */
static enum tps_rc
issuer_value(struct tps_session *s, const char *tmpl, char *out, size_t cap)
{
    size_t o = 0;

    for (const char *p = tmpl; *p;) {
        const char *rep = NULL;
        size_t skip = 1;
        if (*p == '$') {
            const char *e = strchr(p + 1, '$');
            if (e == NULL)
                return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                        "issuerinfo.value has an unclosed '$'");
            size_t n = (size_t)(e - p - 1);
            if (n == 0)
                rep = "$";
            else if (n == 4 && strncmp(p + 1, "cuid", 4) == 0)
                rep = s->tok.cuid_hex;
            else if (n == 3 && strncmp(p + 1, "msn", 3) == 0)
                rep = s->tok.msn_hex;
            else if (n == 6 && strncmp(p + 1, "userid", 6) == 0)
                rep = s->user;
            else if (n == 9 && strncmp(p + 1, "profileId", 9) == 0)
                rep = s->tok.type;
            else
                return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                        "issuerinfo.value: unknown variable $%.*s$", (int)n, p + 1);
            skip = n + 2;
        }
        size_t rl = rep ? strlen(rep) : 1;
        if (o + rl >= cap)
            return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_UPGRADE_APPLET,
                                    "issuer info longer than %zu bytes", cap - 1);
        memcpy(out + o, rep ? rep : p, rl);
        o += rl;
        p += skip;
    }
    out[o] = '\0';
    return TPS_OK;
}

enum tps_rc
tps_issuer_info_set(struct tps_session *s, const char *op, bool *rewritten)
{
    struct cmn_apdu a = {.cla = 0x84, .ins = 0xF4, .p1 = 0, .p2 = 0, .le = -1};
    struct cmn_apdu g;
    struct cmn_rapdu r;
    char v[ISSUER_INFO_LEN]; /* at most 223 bytes + NUL: ESC copies it with strcpy */
    char old[ISSUER_INFO_LEN] = "";
    bool differs = false;
    enum tps_rc rc;

    *rewritten = false;
    rc = issuer_value(s, tps_cfg_op_str(s->env->cfg, op, s->tok.type, "issuerinfo.value"), v,
                      sizeof(v));
    if (rc != TPS_OK)
        return rc;
    /* What the card carries now, read in the same channel (tokendb-ha §4.3). */
    if (cmn_apdu_get_issuer_info(&g) != CMN_OK)
        return tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_UPGRADE_APPLET,
                                "cannot build GET ISSUER INFO");
    rc = tps_card_xfer_secure(s, &g, &r);
    if (rc != TPS_OK)
        return rc;
    if (r.sw != 0x9000)
        return tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_UPGRADE_APPLET,
                                "GET ISSUER INFO answered %04X", r.sw);
    differs = tps_lb_issuer_needs_rewrite(r.data, r.len, v);
    if (cmn_ck_issuer_info_parse(r.data, r.len, old, sizeof(old)) != CMN_OK)
        snprintf(old, sizeof(old), "(unreadable)");
    /* Empty = erase: 224 zero bytes, as the C++ TPS (§5.1). */
    memset(a.data, 0, ISSUER_INFO_LEN);
    memcpy(a.data, v, strlen(v));
    a.lc = ISSUER_INFO_LEN;
    rc = tps_card_xfer_secure(s, &a, &r);
    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "SET ISSUER INFO answered %04X", r.sw);
    if (rc == TPS_OK) {
        CMN_LOG(CMN_LOG_INFO, "token.issuer_info", s->sid, "cuid=%s url=\"%s\"", s->tok.cuid_hex,
                v);
        if (differs && old[0] != '\0') {
            *rewritten = true;
            (void)cmn_audit("token.issuer_rewritten", s->sid, "cuid=%s old=\"%s\" new=\"%s\" ip=%s",
                            s->tok.cuid_hex, old, v, s->client_ip);
        }
    }
    return rc;
}
