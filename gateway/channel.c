/* gateway/channel.c - the secure channel as tpsgw opens it: INITIALIZE UPDATE, TKS
 * computeSessionKey, constant-time card cryptogram check, EXTERNAL AUTHENTICATE; SCP01/02/03
 * (card spec §2.4, §2.5, §4; backends §2.3-2.5). */
#include "gateway/session.h"

#include <string.h>

#include <openssl/crypto.h>

#include "gateway/config.h"
#include "common/log.h"
#include "gateway/tks.h"

void
tps_channel_close(struct tps_session *s)
{
    if (s->channel_open || s->scp.state != CMN_SCP_NONE)
        cmn_scp_cleanup(&s->scp);
    OPENSSL_cleanse(&s->srvkg, sizeof(s->srvkg));
    s->channel_open = false;
}

enum tps_rc
tps_channel_open(struct tps_session *s, uint8_t kv, uint8_t ki, uint16_t *sw_out)
{
    const struct tps_config *cfg = s->env->cfg;
    enum cmn_scp_proto proto = s->tok.gp_proto;
    struct tps_tks_in in;
    struct tps_tks_keys keys;
    struct cmn_apdu a, ea;
    struct cmn_rapdu r;
    char err[512];
    uint8_t level;
    enum cmn_rc crc;
    enum tps_rc rc;

    memset(&in, 0, sizeof(in));
    memset(&keys, 0, sizeof(keys));
    memset(&ea, 0, sizeof(ea));
    tps_channel_close(s);
    if (sw_out != NULL)
        *sw_out = 0;
    if (s->env->tks == NULL) {
        rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_NO_TKS_CONNID,
                              "no TKS connector configured");
        goto out;
    }
    if (s->env->test_host_challenge != NULL)
        memcpy(in.host_challenge, s->env->test_host_challenge, sizeof(in.host_challenge));
    else if (cmn_crypto_random(in.host_challenge, sizeof(in.host_challenge)) != CMN_OK) {
        rc = tps_session_fail(s, TPS_ECRYPTO, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "no random host challenge");
        goto out;
    }
    cmn_scp_iu_apdu(kv, ki, in.host_challenge, -1, &a);
    rc = tps_card_xfer(s, &a, &r);
    if (rc != TPS_OK)
        goto out;
    if (sw_out != NULL)
        *sw_out = r.sw;
    if (r.sw != 0x9000) {
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "INITIALIZE UPDATE (key version %02X) answered %04X", kv, r.sw);
        goto out;
    }
    crc = cmn_scp_iu_parse(proto, r.data, r.len, &in.iu);
    if (crc != CMN_OK) {
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "INITIALIZE UPDATE answer of %zu bytes does not fit SCP0%d", r.len,
                              (int)proto);
        goto out;
    }
    in.proto = proto;
    memcpy(in.cuid, s->tok.have_cuid ? s->tok.cuid : in.iu.kdd, sizeof(in.cuid));
    s->tok.key_info[0] = in.iu.key_version;
    s->tok.key_info[1] = in.iu.scp_id;
    s->tok.key_info[2] = in.iu.i_param;
    s->tok.key_info_len = proto == CMN_SCP03 ? 3 : 2;
    tps_hex(s->tok.key_info, s->tok.key_info_len, s->tok.key_info_hex);

    err[0] = '\0';
    rc = tps_tks_session_keys(s->env->tks, s->env->fo, s->sid, &in, &keys, err, sizeof(err));
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "TKS computeSessionKey failed: %s", err);
        goto out;
    }
    if (cmn_scp_init(&s->scp, proto) != CMN_OK ||
        cmn_scp_set_challenges(&s->scp, in.host_challenge, in.iu.card_challenge,
                               in.iu.card_challenge_len,
                               proto == CMN_SCP02 ? in.iu.seq : NULL) != CMN_OK ||
        cmn_scp_set_session_keys(&s->scp, &keys.enc, &keys.mac, keys.have_rmac ? &keys.rmac : NULL,
                                 keys.have_dek ? &keys.dek : NULL) != CMN_OK) {
        rc = tps_session_fail(s, TPS_ECRYPTO, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "TKS session keys do not suit SCP0%d", (int)proto);
        goto out;
    }
    s->scp.scp01_omit_le = tps_cfg_bool(cfg, "channel.scp01.no.le.byte");
    /* Never trust that the TKS checked it: the card proves its keys to us here. */
    if (cmn_scp_verify_card_cryptogram(&s->scp, in.iu.card_cryptogram) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EAUTH, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "card cryptogram mismatch (key info %s): the card holds other "
                              "keys than the TKS derives",
                              s->tok.key_info_hex);
        goto out;
    }
    level = tps_cfg_bool(cfg, "channel.encryption") ? CMN_SCP_LEVEL_MAC_ENC : CMN_SCP_LEVEL_MAC;
    crc = cmn_scp_ext_auth_build(&s->scp, level,
                                 keys.have_host_cryptogram ? keys.host_cryptogram : NULL, &ea);
    if (crc != CMN_OK) {
        rc = tps_session_fail(s, TPS_ECRYPTO, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "cannot build EXTERNAL AUTHENTICATE: %s", cmn_strerror(crc));
        goto out;
    }
    rc = tps_card_xfer(s, &ea, &r);
    if (rc != TPS_OK)
        goto out;
    if (r.sw != 0x9000) {
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_EXTERNAL_AUTH,
                              "EXTERNAL AUTHENTICATE answered %04X", r.sw);
        goto out;
    }
    s->channel_open = true;
    s->srvkg = keys.srvkg; /* server-side keygen material belongs to this channel */
    CMN_LOG(CMN_LOG_DEBUG, "channel.open", s->sid, "cuid=%s scp=%d key_info=%s level=%02X",
            s->tok.cuid_hex, (int)proto, s->tok.key_info_hex, level);
out:
    if (rc != TPS_OK)
        tps_channel_close(s);
    tps_tks_keys_wipe(&keys);
    OPENSSL_cleanse(&in, sizeof(in));
    OPENSSL_cleanse(&ea, sizeof(ea));
    OPENSSL_cleanse(err, sizeof(err));
    return rc;
}
