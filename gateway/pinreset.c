/* gateway/pinreset.c - PIN reset (tps-protocol §3.4, Java order) and the PIN step of enroll:
 * NEW_PIN_REQUEST with the type's length limits, CREATE PIN 0 (exists is fine), SET PIN 0;
 * token DB checks (known, ACTIVE, owner, policy PIN_RESET) and RESET_PIN_RESET_TO_NO. */
#include "gateway/pinreset.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/apdu.h"
#include "common/log.h"
#include "common/tpsmsg.h"
#include "gateway/config.h"
#include "gateway/enroll.h"
#include "gateway/enroll_int.h"
#include "gateway/keychange.h"
#include "gateway/session.h"

static const char OP[] = "pinReset";

enum tps_rc
tps_pin_set(struct tps_session *s, unsigned min_len, unsigned max_len, unsigned max_retries,
            const char *initial)
{
    struct cmn_buf out;
    struct cmn_tpsmsg m;
    struct cmn_apdu a;
    struct cmn_rapdu r;
    const char *pin;
    size_t n;
    enum tps_rc rc;

    cmn_buf_init(&out, 256);
    cmn_tpsmsg_init(&m);
    memset(&a, 0, sizeof(a));
    if (cmn_tpsmsg_build_new_pin_request(&out, min_len, max_len) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_MAC_RESET_PIN_PDU,
                              "cannot build NEW_PIN_REQUEST");
        goto out;
    }
    rc = tps_session_send(s, &out);
    if (rc == TPS_OK)
        rc = tps_session_recv(s, CMN_TPS_MSG_NEW_PIN_RESPONSE, &m);
    if (rc != TPS_OK)
        goto out;
    /* new_pin is raw (§1.4, Java/ESC pairing). */
    pin = cmn_tpsmsg_raw(&m, "new_pin");
    n = pin != NULL ? strlen(pin) : 0;
    if (n < min_len || n > max_len || n > CMN_CK_PIN_MAX) {
        rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_MAC_RESET_PIN_PDU,
                              "new PIN of %zu characters, %u..%u allowed", n, min_len, max_len);
        goto out;
    }
    if (initial == NULL || initial[0] == '\0')
        initial = "password";
    if (cmn_apdu_create_pin(&a, 0, (uint8_t)max_retries, (const uint8_t *)initial,
                            strlen(initial)) != CMN_OK) {
        rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MAC_RESET_PIN_PDU,
                              "create_pin.string is not a usable PIN");
        goto out;
    }
    rc = tps_card_xfer_secure(s, &a, &r);
    cmn_apdu_wipe(&a);
    /* 9C10: PIN 0 exists already (re-enroll, PIN reset): the TPS ignores it (card spec §3.2). */
    if (rc == TPS_OK && r.sw != 0x9000 && r.sw != 0x9C10)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_MAC_RESET_PIN_PDU,
                              "CREATE PIN answered %04X", r.sw);
    if (rc != TPS_OK)
        goto out;
    if (cmn_apdu_set_pin(&a, 0, (const uint8_t *)pin, n) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_MAC_RESET_PIN_PDU,
                              "cannot build SET PIN");
        goto out;
    }
    rc = tps_enroll_secure_ok(s, &a, CMN_TPS_STATUS_MAC_RESET_PIN_PDU, "SET PIN");
    if (rc == TPS_OK)
        CMN_LOG(CMN_LOG_INFO, "token.pin_set", s->sid, "cuid=%s", s->tok.cuid_hex);
out:
    cmn_apdu_wipe(&a);
    OPENSSL_cleanse(&r, sizeof(r));
    cmn_tpsmsg_cleanup(&m);
    cmn_buf_cleanup(&out);
    return rc;
}

static void
activity(struct tps_session *s, const struct tps_enroll_env *ee, bool ok)
{
    struct tps_token_activity a = {
        .op = "pin_reset",
        .result = ok ? "success" : "failure",
        .cuid = s->tok.cuid_hex,
        .user_id = s->user,
        .ip = s->client_ip,
        .msg = ok ? "PIN reset" : s->why,
        .type = s->tok.type,
        .officer = s->officer,
    };

    if (ee->tdb != NULL && tps_tokendb_activity_add(ee->tdb, &a, NULL, 0) != TPS_TDB_OK)
        CMN_LOG(CMN_LOG_WARN, "pinreset.activity", s->sid, "cuid=%s err=\"%s\"",
                s->tok.cuid_hex, tps_tokendb_errmsg(ee->tdb));
}

enum tps_rc
tps_pinreset_run(struct tps_session *s, const struct tps_enroll_env *ee)
{
    const struct tps_config *cfg = s->env->cfg;
    struct tps_token tok;
    struct tps_token_lease lease;
    struct tps_token_policy pol;
    bool leased = false;
    enum tps_tdb_rc trc;
    enum tps_rc rc;
    char k[CMN_CFG_MAX_KEY];

    memset(&tok, 0, sizeof(tok));
    memset(&pol, 0, sizeof(pol));
    rc = tps_session_progress(s, 10, "PROGRESS_START_PIN_RESET");
    if (rc == TPS_OK)
        rc = tps_prologue(s);
    if (rc != TPS_OK)
        goto out;
    if (ee->tdb != NULL) {
        trc = tps_tokendb_token_get(ee->tdb, s->tok.cuid_hex, &tok);
        if (trc == TPS_TDB_ENOTFOUND) {
            rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_TOKEN_DISABLED,
                                  "token %s is not in the token DB", s->tok.cuid_hex);
            goto out;
        }
        if (trc != TPS_TDB_OK) {
            rc = tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB, "token DB lookup failed: %s",
                                  tps_tokendb_errmsg(ee->tdb));
            goto out;
        }
    }
    rc = tps_resolve_type(s, OP);
    if (rc == TPS_OK)
        rc = tps_session_progress(s, 15, "PROGRESS_PIN_RESET_RESOLVE_PROFILE");
    if (rc != TPS_OK)
        goto out;
    if (!tps_cfg_op_bool(cfg, OP, s->tok.type, "auth.enable")) {
        rc = tps_session_fail(s, TPS_ELOGIN, CMN_TPS_STATUS_LOGIN,
                              "op.pinReset.%s.auth.enable=false: PIN reset needs a user",
                              s->tok.type);
        goto out;
    }
    rc = tps_login(s, OP);
    if (rc != TPS_OK)
        goto out;
    if (ee->tdb != NULL) {
        if (tok.status != TPS_TOKEN_ACTIVE) {
            rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_DISABLED_TOKEN,
                                  "token %s is %s, not ACTIVE", s->tok.cuid_hex,
                                  tps_token_status_name(tok.status));
            goto out;
        }
        if (tok.user_id == NULL || strcmp(tok.user_id, s->user) != 0) {
            rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_NOT_TOKEN_OWNER,
                                  "token %s does not belong to %s", s->tok.cuid_hex, s->user);
            goto out;
        }
        if (tps_token_policy_parse(tok.policy, NULL, &pol) != TPS_TDB_OK || !pol.pin_reset) {
            rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_NOT_PIN_RESETABLE,
                                  "token %s: policy does not allow PIN reset (PIN_RESET=NO)",
                                  s->tok.cuid_hex);
            goto out;
        }
        trc = tps_tokendb_lease_acquire(ee->tdb, &tok, 0, &lease);
        if (trc != TPS_TDB_OK) {
            rc = tps_session_fail(s, trc == TPS_TDB_EBUSY ? TPS_EBUSY : TPS_EDB,
                                  CMN_TPS_STATUS_DB, "cannot lease token %s: %s",
                                  s->tok.cuid_hex, tps_tokendb_errmsg(ee->tdb));
            goto out;
        }
        leased = true;
    }
    rc = tps_probe_gp(s);
    if (rc == TPS_OK) {
        struct tps_keychange_tdb kct = {.db = ee->tdb, .tok = &tok, .lease = &lease,
                                        .user = s->user, .ip = s->client_ip,
                                        .token_type = s->tok.type, .officer = s->officer};
        struct tps_keychange_store kcs;

        if (leased)
            tps_keychange_tdb_store(&kct, &kcs);
        rc = tps_enroll_applet_channel(s, OP, leased ? &kcs : NULL);
    }
    if (rc != TPS_OK)
        goto out;
    snprintf(k, sizeof(k), "op.%s.%s.pinReset.pin.minLen", OP, s->tok.type);
    {
        unsigned mn = (unsigned)cmn_cfg_uint(ee->cfg, k);
        snprintf(k, sizeof(k), "op.%s.%s.pinReset.pin.maxLen", OP, s->tok.type);
        unsigned mx = (unsigned)cmn_cfg_uint(ee->cfg, k);
        snprintf(k, sizeof(k), "op.%s.%s.pinReset.pin.maxRetries", OP, s->tok.type);
        unsigned tries = (unsigned)cmn_cfg_uint(ee->cfg, k);
        rc = tps_pin_set(s, mn, mx, tries, cmn_cfg_str(ee->cfg, "create_pin.string"));
    }
    if (rc != TPS_OK)
        goto out;
    if (leased && pol.reset_pin_reset_to_no) {
        char pbuf[160];
        struct tps_token_mod m = {.policy = pbuf, .actor = TPS_TDB_OPERATION};
        pol.pin_reset = false;
        if (tps_token_policy_format(&pol, pbuf, sizeof(pbuf)) != TPS_TDB_OK ||
            tps_tokendb_token_update(ee->tdb, &tok, &m, &lease) != TPS_TDB_OK) {
            rc = tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_UPDATE_TOKENDB_FAILED,
                                  "PIN was reset but PIN_RESET=NO could not be written: %s",
                                  tps_tokendb_errmsg(ee->tdb));
            goto out;
        }
    }
    (void)cmn_audit("token.pin_reset", s->sid, "cuid=%s user=%s ip=%s", s->tok.cuid_hex,
                    s->user, s->client_ip);
    rc = tps_session_progress(s, 100, "PROGRESS_PIN_RESET_COMPLETE");
    if (rc != TPS_OK) {
        tps_session_clear_fail(s); /* the PIN is set; only the last status message was lost */
        rc = TPS_OK;
    }
out:
    if (leased) {
        activity(s, ee, rc == TPS_OK);
        (void)tps_tokendb_lease_release(ee->tdb, &tok, &lease);
    }
    tps_token_cleanup(&tok);
    return rc;
}
