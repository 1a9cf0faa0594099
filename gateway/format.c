/* gateway/format.c - the format operation (tps-protocol §3.2, Java order): prologue, token type,
 * token DB checks and lease, login, applet version check and upgrade (DELETE, INSTALL for load,
 * LOAD blocks, INSTALL for install, SELECT; card spec §2.7), issuer info (§5.1), life cycle,
 * PROGRESS_DONE, key check, token DB records. */
#include "gateway/session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "gateway/config.h"
#include "gateway/issuer.h"
#include "gateway/keychange.h"
#include "gateway/lb.h"

#define APPLET_MAX (512 * 1024) /* largest load file we read */

static const char OP[] = "format";

static bool
hex_aid(const struct tps_session *s, const char *key, uint8_t *aid, size_t *n)
{
    const char *v = tps_cfg_str(s->env->cfg, key);
    size_t len = strcspn(v, ",");

    return cmn_hex_decode(v, len, false, aid, 16, n) == CMN_OK && *n >= 5;
}

/* A wrapped command whose status word must be 9000; status = the END_OP code on failure. */
static enum tps_rc
secure_ok(struct tps_session *s, const struct cmn_apdu *a, int status, const char *what)
{
    struct cmn_rapdu r;
    enum tps_rc rc = tps_card_xfer_secure(s, a, &r);

    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, status, "%s answered %04X", what, r.sw);
    return rc;
}

static enum tps_rc
read_file(struct tps_session *s, const char *path, struct cmn_buf *out)
{
    uint8_t buf[8192];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    enum tps_rc rc = TPS_OK;

    if (fd < 0)
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_UPGRADE_APPLET,
                                "cannot open applet file %s: %s", path, strerror(errno));
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_UPGRADE_APPLET,
                                  "cannot read applet file %s: %s", path, strerror(errno));
            break;
        }
        if (cmn_buf_append(out, buf, (size_t)n) != CMN_OK) {
            rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_UPGRADE_APPLET,
                                  "applet file %s is larger than %d bytes", path, APPLET_MAX);
            break;
        }
    }
    close(fd);
    if (rc == TPS_OK && out->len == 0)
        rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "applet file %s is empty", path);
    return rc;
}

/* DELETE of an AID: absent is fine (6A88/6A82), any other failure is not. */
static enum tps_rc
delete_aid(struct tps_session *s, const uint8_t *aid, size_t n)
{
    struct cmn_apdu a = {.cla = 0x84, .ins = 0xE4, .p1 = 0x00, .p2 = 0x00, .le = -1};
    struct cmn_rapdu r;
    enum tps_rc rc;

    a.data[0] = 0x4F;
    a.data[1] = (uint8_t)n;
    memcpy(a.data + 2, aid, n);
    a.lc = 2 + n;
    rc = tps_card_xfer_secure(s, &a, &r);
    if (rc == TPS_OK && r.sw != 0x9000 && r.sw != 0x6A88 && r.sw != 0x6A82)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_UPGRADE_APPLET, "DELETE answered %04X",
                              r.sw);
    return rc;
}

static enum tps_rc
upgrade_applet(struct tps_session *s, const char *version)
{
    const struct tps_config *cfg = s->env->cfg;
    const char *dir = tps_cfg_op_str(cfg, OP, s->tok.type, "update.applet.directory");
    struct cmn_buf file, data;
    struct cmn_apdu a;
    struct cmn_rapdu r;
    uint8_t inst[16], pkg[16], sd[16] = {0};
    size_t ninst, npkg, nsd = 0, block, off, nblocks, blk;
    char path[1024];
    enum tps_rc rc;
    uint32_t hhll;
    unsigned long isz = tps_cfg_uint(cfg, "channel.instanceSize");
    unsigned long msz = tps_cfg_uint(cfg, "channel.appletMemorySize");

    cmn_buf_init(&file, APPLET_MAX);
    cmn_buf_init(&data, APPLET_MAX + 8);
    if (!hex_aid(s, "applet.aid.netkey_instance", inst, &ninst) ||
        !hex_aid(s, "applet.aid.netkey_file", pkg, &npkg)) {
        rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                              "applet.aid.netkey_instance / netkey_file hold no AID");
        goto out;
    }
    if (strchr(version, '/') != NULL ||
        (size_t)snprintf(path, sizeof(path), "%s/%s.%s", dir, version,
                         tps_cfg_str(cfg, "general.applet_ext")) >= sizeof(path)) {
        rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "bad applet path for version %s", version);
        goto out;
    }
    rc = read_file(s, path, &file);
    if (rc != TPS_OK)
        goto out;
    CMN_LOG(CMN_LOG_INFO, "applet.upgrade", s->sid, "cuid=%s from=%s to=%s file=%s size=%zu",
            s->tok.cuid_hex, s->tok.have_applet ? s->tok.applet_version : "none", version, path,
            file.len);

    /* An authenticated session on the card manager (card spec §2.7). */
    rc = tps_card_select(s, s->tok.cardmgr_aid, s->tok.cardmgr_aid_len, &r);
    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "select card manager answered %04X", r.sw);
    if (rc == TPS_OK)
        rc = tps_channel_open(s, (uint8_t)tps_cfg_uint(cfg, "channel.defKeyVersion"),
                              (uint8_t)tps_cfg_uint(cfg, "channel.defKeyIndex"), NULL);
    if (rc == TPS_OK)
        rc = delete_aid(s, inst, ninst);
    if (rc == TPS_OK)
        rc = delete_aid(s, pkg, npkg);
    if (rc != TPS_OK)
        goto out;

    /* INSTALL [for load]: the SD AID is named on GP 2.1.1 cards, empty on SCP01. */
    if (s->tok.gp_proto != CMN_SCP01) {
        nsd = s->tok.cardmgr_aid_len;
        memcpy(sd, s->tok.cardmgr_aid, nsd);
    }
    hhll = (uint32_t)(file.len + 24 + nsd);
    memset(&a, 0, sizeof(a));
    a.cla = 0x84;
    a.ins = 0xE6;
    a.p1 = 0x02;
    a.le = -1;
    a.data[a.lc++] = (uint8_t)npkg;
    memcpy(a.data + a.lc, pkg, npkg);
    a.lc += npkg;
    a.data[a.lc++] = (uint8_t)nsd;
    memcpy(a.data + a.lc, sd, nsd);
    a.lc += nsd;
    {
        const uint8_t tail[] = {0x00,          0x06, 0xEF, 0x04, 0xC6, 0x02, (uint8_t)(hhll >> 8),
                                (uint8_t)hhll, 0x00};
        memcpy(a.data + a.lc, tail, sizeof(tail));
        a.lc += sizeof(tail);
    }
    rc = secure_ok(s, &a, CMN_TPS_STATUS_UPGRADE_APPLET, "INSTALL [for load]");
    if (rc != TPS_OK)
        goto out;

    /* LOAD: C4 <BER length> <file>, cut into blocks (card spec §2.7). */
    (void)cmn_buf_putc(&data, 0xC4);
    if (file.len < 0x80) {
        (void)cmn_buf_putc(&data, (uint8_t)file.len);
    } else if (file.len <= 0xFF) {
        (void)cmn_buf_putc(&data, 0x81);
        (void)cmn_buf_putc(&data, (uint8_t)file.len);
    } else if (file.len <= 0xFFFF) {
        (void)cmn_buf_putc(&data, 0x82);
        (void)cmn_buf_putc(&data, (uint8_t)(file.len >> 8));
        (void)cmn_buf_putc(&data, (uint8_t)file.len);
    } else {
        rc = tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "applet file %s is larger than 65535 bytes", path);
        goto out;
    }
    if (cmn_buf_append(&data, file.data, file.len) != CMN_OK) {
        rc = tps_session_fail(s, TPS_ENOMEM, CMN_TPS_STATUS_UPGRADE_APPLET, "out of memory");
        goto out;
    }
    block =
        tps_cfg_uint(cfg, "channel.blocksize") - (tps_cfg_bool(cfg, "channel.encryption") ? 16 : 8);
    nblocks = (data.len + block - 1) / block;
    for (off = 0, blk = 0; off < data.len; off += block, blk++) {
        size_t n = data.len - off < block ? data.len - off : block;
        memset(&a, 0, sizeof(a));
        a.cla = 0x84;
        a.ins = 0xE8;
        a.p1 = off + n >= data.len ? 0x80 : 0x00; /* the last block says so (§9 item 8) */
        a.p2 = (uint8_t)blk;
        a.le = -1;
        memcpy(a.data, data.data + off, n);
        a.lc = n;
        rc = secure_ok(s, &a, CMN_TPS_STATUS_UPGRADE_APPLET, "LOAD");
        if (rc == TPS_OK)
            rc = tps_session_progress(s, (unsigned)(10 + 80 * (blk + 1) / nblocks),
                                      "PROGRESS_APPLET_BLOCK");
        if (rc != TPS_OK)
            goto out;
    }

    /* INSTALL [for install and make selectable]. */
    memset(&a, 0, sizeof(a));
    a.cla = 0x84;
    a.ins = 0xE6;
    a.p1 = 0x0C;
    a.le = -1;
    a.data[a.lc++] = (uint8_t)npkg;
    memcpy(a.data + a.lc, pkg, npkg);
    a.lc += npkg;
    for (int i = 0; i < 2; i++) { /* module AID, then instance AID */
        a.data[a.lc++] = (uint8_t)ninst;
        memcpy(a.data + a.lc, inst, ninst);
        a.lc += ninst;
    }
    {
        const uint8_t tail[] = {0x01,         0x00,
                                0x0C,         0xEF,
                                0x04,         0xC8,
                                0x02,         (uint8_t)(isz >> 8),
                                (uint8_t)isz, 0xC9,
                                0x04,         0x00,
                                0x02,         (uint8_t)(msz >> 8),
                                (uint8_t)msz, 0x00};
        memcpy(a.data + a.lc, tail, sizeof(tail));
        a.lc += sizeof(tail);
    }
    rc = secure_ok(s, &a, CMN_TPS_STATUS_UPGRADE_APPLET, "INSTALL [for install]");
    if (rc != TPS_OK)
        goto out;
    rc = tps_card_select(s, inst, ninst, &r);
    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "select of the new applet answered %04X", r.sw);
    if (rc == TPS_OK &&
        cmn_audit("token.applet_upgraded", s->sid, "cuid=%s from=%s to=%s user=%s ip=%s",
                  s->tok.cuid_hex, s->tok.have_applet ? s->tok.applet_version : "none", version,
                  s->user[0] ? s->user : "-", s->client_ip) != CMN_OK)
        rc = tps_session_fail(s, TPS_EIO, CMN_TPS_STATUS_UPGRADE_APPLET, "audit log not writable");
out:
    cmn_buf_cleanup(&file);
    cmn_buf_cleanup(&data);
    return rc;
}

/* Opens a channel on the CoolKey applet (selected first). */
static enum tps_rc
applet_channel(struct tps_session *s, uint8_t kv, uint16_t *sw)
{
    uint8_t aid[16];
    size_t n;
    struct cmn_rapdu r;
    enum tps_rc rc;

    if (!hex_aid(s, "applet.aid.netkey_instance", aid, &n))
        return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                "applet.aid.netkey_instance holds no AID");
    rc = tps_card_select(s, aid, n, &r);
    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "select CoolKey answered %04X: no applet", r.sw);
    if (rc == TPS_OK)
        rc = tps_channel_open(s, kv, (uint8_t)tps_cfg_uint(s->env->cfg, "channel.defKeyIndex"), sw);
    return rc;
}

/* Step 8 of §3.2: the card must hold the key version we expect; key changeover
 * (gateway/keychange.h) when it does not. */
static enum tps_rc
key_check(struct tps_session *s)
{
    const struct tps_db_ops *ops = s->env->db_ops;
    struct tps_keychange_store st;

    if (ops != NULL && ops->keychange_store != NULL &&
        ops->keychange_store(s->env->db, &st) == TPS_OK)
        return tps_keychange_check(s, OP, &st);
    return tps_keychange_check(s, OP, NULL);
}

/* Token DB: may this token be formatted, and take its lease. */
static enum tps_rc
db_check(struct tps_session *s, bool *leased)
{
    const struct tps_env *env = s->env;
    struct tps_db_token t;
    char err[512] = "";
    char k[128];
    enum tps_rc rc;

    *leased = false;
    if (env->db_ops == NULL)
        return TPS_OK;
    memset(&t, 0, sizeof(t));
    rc = env->db_ops->token_get(env->db, s->tok.cuid_hex, &t, err, sizeof(err));
    if (rc != TPS_OK)
        return tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB, "token DB lookup failed: %s", err);
    snprintf(k, sizeof(k), "op.%s.allowUnknownToken", OP);
    if (!t.found && !tps_cfg_bool(env->cfg, k))
        return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_TOKEN_DISABLED,
                                "token %s is unknown and %s=false", s->tok.cuid_hex, k);
    if (t.found && env->db_ops->transition_ok(env->db, t.status, "FORMATTED") != TPS_OK)
        return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_DISABLED_TOKEN,
                                "token %s is %s: format not allowed", s->tok.cuid_hex, t.status);
    rc = env->db_ops->lease(env->db, s->tok.cuid_hex, OP, err, sizeof(err));
    if (rc == TPS_EBUSY)
        return tps_session_fail(s, rc, CMN_TPS_STATUS_DB,
                                "token %s is in use by another operation: %s", s->tok.cuid_hex,
                                err);
    if (rc != TPS_OK)
        return tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB, "cannot lease token %s: %s",
                                s->tok.cuid_hex, err);
    *leased = true;
    return TPS_OK;
}

/* op.format.<type>.revokeCert: the token's active certificates are revoked at the CA and
 * marked revoked before the card is wiped; a failure ends the format (status 42) with the
 * card untouched. [out] *n: how many. */
static enum tps_rc
revoke_certs(struct tps_session *s, size_t *n)
{
    const struct tps_env *env = s->env;
    const struct tps_config *cfg = env->cfg;
    char err[512] = "";
    enum tps_rc rc;

    *n = 0;
    if (env->db_ops == NULL || env->db_ops->revoke_certs == NULL) {
        CMN_LOG(CMN_LOG_WARN, "format.revoke", s->sid, "cuid=%s msg=\"revokeCert is set but "
                "there is no token DB to list the certificates from\"", s->tok.cuid_hex);
        return TPS_OK;
    }
    rc = env->db_ops->revoke_certs(env->db, env->fo, s->sid, s->tok.cuid_hex,
                                   tps_cfg_op_str(cfg, OP, s->tok.type, "ca.conn"),
                                   (int)tps_cfg_op_uint(cfg, OP, s->tok.type, "revokeCert.reason"),
                                   n, err, sizeof(err));
    if (rc != TPS_OK)
        return tps_session_fail(s, rc, CMN_TPS_STATUS_REVOKE_CERTIFICATES_FAILED,
                                "revoking the certificates of token %s: %s", s->tok.cuid_hex,
                                err);
    return TPS_OK;
}

/* The token entry (on success) and the activity: what happened, including the issuer info
 * rewrite and the certificates revoked (also when the format failed after them). */
static void
db_record(struct tps_session *s, bool success, bool issuer_rewritten, size_t revoked)
{
    const struct tps_env *env = s->env;
    char msg[640], err[512] = "";
    size_t o = (size_t)snprintf(msg, sizeof(msg), "%s", success ? "token formatted" : s->why);
    struct tps_db_result r = {
        .op = OP,
        .cuid = s->tok.cuid_hex,
        .msn = s->tok.msn_hex,
        .user = s->user,
        .token_type = s->tok.type,
        .applet_id = s->tok.applet_version,
        .key_info = s->tok.key_info_hex,
        .client_ip = s->client_ip,
        .new_status = "FORMATTED",
        .success = success,
        .officer = s->officer,
        .message = msg,
    };

    if (success && issuer_rewritten && o < sizeof(msg))
        o += (size_t)snprintf(msg + o, sizeof(msg) - o, "; issuer info rewritten");
    if (revoked > 0 && o < sizeof(msg))
        (void)snprintf(msg + o, sizeof(msg) - o, "; %zu certificate%s revoked", revoked,
                       revoked == 1 ? "" : "s");
    if (env->db_ops == NULL)
        return;
    if (env->db_ops->record(env->db, &r, err, sizeof(err)) != TPS_OK && success)
        (void)tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_UPDATE_TOKENDB_FAILED,
                               "token DB update failed: %s", err);
}

enum tps_rc
tps_op_format(struct tps_session *s)
{
    const struct tps_config *cfg = s->env->cfg;
    const char *required;
    bool leased = false, loaded = false, issuer_rewritten = false;
    size_t revoked = 0;
    enum tps_rc rc;
    struct cmn_apdu lc = {.cla = 0x84, .ins = 0xF0, .p1 = 0x07, .p2 = 0x00, .le = -1};

    rc = tps_prologue(s);
    if (rc == TPS_OK)
        rc = tps_resolve_type(s, OP);
    if (rc == TPS_OK)
        rc = db_check(s, &leased);
    if (rc != TPS_OK)
        goto out;
    if (tps_cfg_op_bool(cfg, OP, s->tok.type, "auth.enable")) {
        rc = tps_login(s, OP);
        if (rc != TPS_OK)
            goto out;
    }
    if (tps_cfg_op_bool(cfg, OP, s->tok.type, "revokeCert")) {
        rc = revoke_certs(s, &revoked);
        if (rc != TPS_OK)
            goto out;
    }
    rc = tps_read_applet_version(s);
    if (rc == TPS_OK)
        rc = tps_probe_gp(s);
    if (rc != TPS_OK)
        goto out;
    if (!s->tok.have_applet &&
        !tps_cfg_op_bool(cfg, OP, s->tok.type, "update.applet.emptyToken.enable")) {
        rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "token has no applet and emptyToken.enable=false");
        goto out;
    }
    required = tps_cfg_op_str(cfg, OP, s->tok.type, "update.applet.requiredVersion");
    if (tps_cfg_op_bool(cfg, OP, s->tok.type, "update.applet.enable") && required[0] &&
        (!s->tok.have_applet || strcasecmp(s->tok.applet_version, required) != 0)) {
        rc = upgrade_applet(s, required);
        if (rc != TPS_OK)
            goto out;
        loaded = true;
        snprintf(s->tok.applet_version, sizeof(s->tok.applet_version), "%s", required);
        s->tok.have_applet = true;
    }
    if (!s->tok.have_applet) {
        rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "token has no applet and no requiredVersion is configured");
        goto out;
    }
    /* Issuer info and life cycle in one channel on the applet. */
    if (tps_cfg_op_bool(cfg, OP, s->tok.type, "issuerinfo.enable") ||
        (!loaded && s->tok.life_cycle != 0x07 &&
         tps_cfg_op_bool(cfg, OP, s->tok.type, "lifeCycle.reset"))) {
        rc = applet_channel(s, (uint8_t)tps_cfg_uint(cfg, "channel.defKeyVersion"), NULL);
        if (rc == TPS_OK && tps_cfg_op_bool(cfg, OP, s->tok.type, "issuerinfo.enable"))
            rc = tps_issuer_info_set(s, OP, &issuer_rewritten);
        if (rc == TPS_OK && !loaded && s->tok.life_cycle != 0x07 &&
            tps_cfg_op_bool(cfg, OP, s->tok.type, "lifeCycle.reset")) {
            /* A formatted token is selectable, not personalized (card spec §2.8). */
            rc = secure_ok(s, &lc, CMN_TPS_STATUS_MAC_LIFESTYLE_PDU, "SET LIFE CYCLE 07");
            if (rc == TPS_OK)
                s->tok.life_cycle = 0x07;
        }
        if (rc != TPS_OK)
            goto out;
    }
    rc = tps_session_progress(s, 100, "PROGRESS_DONE");
    if (rc == TPS_OK)
        rc = key_check(s);
    if (rc != TPS_OK)
        goto out;
    db_record(s, true, issuer_rewritten, revoked);
    rc = s->fail_rc;
out:
    if (rc != TPS_OK && leased)
        db_record(s, false, false, revoked); /* an activity only: the token entry stays */
    if (leased && s->env->db_ops != NULL)
        s->env->db_ops->unlease(s->env->db, s->tok.cuid_hex);
    return rc;
}
