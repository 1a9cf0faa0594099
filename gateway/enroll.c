/* gateway/enroll.c - the enroll processor (tps-protocol §3.3, Java order; card spec §3.4,
 * §3.5, §6, §7.3): token DB decision and lease, login, secure channel, PIN, per certificate
 * on-card keygen with proof / KRA keygen / KRA recovery / CA renewal, CA enrollment
 * (NON_IDEMPOTENT, reconciled by the CA client), certificates recorded as soon as issued, z0,
 * life cycle, token DB records and audit. */
#include "gateway/enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/apdu.h"
#include "common/log.h"
#include "common/p11obj.h"
#include "common/tpsmsg.h"
#include "gateway/config.h"
#include "gateway/enroll_int.h"
#include "gateway/issuer.h"
#include "gateway/keychange.h"
#include "gateway/keygen.h"
#include "gateway/pinreset.h"
#include "gateway/session.h"
#include "gateway/tks.h"

static const char OP[] = "enroll";

#define CHUNK 0xD0              /* READ/WRITE OBJECT chunk (card spec §6.3) */
#define IOBUF_MAX 1100          /* GENERATE KEY output for RSA-2048 is 0x20F bytes */
#define IMPORT_OBJ 0xFF00FFF3u  /* temporary wrapped private key (card spec §3.5) */
#define Z0_MAX 16384

enum tps_rc
tps_enroll_secure_ok(struct tps_session *s, const struct cmn_apdu *a, int status,
                     const char *what)
{
    struct cmn_rapdu r;
    enum tps_rc rc = tps_card_xfer_secure(s, a, &r);

    if (rc == TPS_OK && r.sw != 0x9000)
        rc = tps_session_fail(s, TPS_ECARD, status, "%s answered %04X", what, r.sw);
    return rc;
}

enum tps_rc
tps_enroll_applet_channel(struct tps_session *s, const char *op,
                          const struct tps_keychange_store *kc)
{
    /* the key check of §5.4: selects the applet and opens the channel at the required key
     * version, changing the card's keys over (crash-safe, recorded through kc) if needed */
    return tps_keychange_check(s, op, kc);
}

/* ---- card objects ---- */

static enum tps_rc
write_object(struct tps_session *s, uint32_t id, const uint8_t *data, size_t len,
             uint16_t acl_read)
{
    struct cmn_apdu a;
    enum tps_rc rc;

    if (cmn_apdu_create_object(&a, id, (uint32_t)len, acl_read, 0x4000, 0x4000, NULL) != CMN_OK)
        return tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_MAC_CERT_PDU,
                                "cannot build CREATE OBJECT");
    rc = tps_enroll_secure_ok(s, &a, CMN_TPS_STATUS_MAC_CERT_PDU, "CREATE OBJECT");
    for (size_t off = 0; rc == TPS_OK && off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        if (cmn_apdu_write_object(&a, id, (uint32_t)off, data + off, n, NULL) != CMN_OK)
            rc = tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_MAC_CERT_PDU,
                                  "cannot build WRITE OBJECT");
        else
            rc = tps_enroll_secure_ok(s, &a, CMN_TPS_STATUS_MAC_CERT_PDU, "WRITE OBJECT");
    }
    cmn_apdu_wipe(&a);
    return rc;
}

/* Reads n bytes of object id from offset 0 under the secure channel. */
static enum tps_rc
read_object(struct tps_session *s, uint32_t id, uint8_t *out, size_t n, int status)
{
    struct cmn_apdu a;
    struct cmn_rapdu r;
    enum tps_rc rc = TPS_OK;
    bool le = cmn_apdu_secure_le((unsigned)s->tok.gp_proto);

    for (size_t off = 0; rc == TPS_OK && off < n; off += CHUNK) {
        size_t want = n - off < CHUNK ? n - off : CHUNK;
        if (cmn_apdu_read_object(&a, id, (uint32_t)off, (unsigned)want, NULL, le) != CMN_OK)
            return tps_session_fail(s, TPS_EINVAL, status, "cannot build READ OBJECT");
        rc = tps_card_xfer_secure(s, &a, &r);
        if (rc == TPS_OK && (r.sw != 0x9000 || r.len != want))
            rc = tps_session_fail(s, TPS_ECARD, status,
                                  "READ OBJECT %08X at %zu answered %zu bytes, SW %04X", id, off,
                                  r.len, r.sw);
        if (rc == TPS_OK)
            memcpy(out + off, r.data, want);
        OPENSSL_cleanse(&r, sizeof(r));
    }
    return rc;
}

/* The object version of the z0 on the card, to bump it (card spec §6.3); random if none. */
static uint16_t
z0_version(struct tps_session *s)
{
    struct cmn_apdu a;
    struct cmn_rapdu r;
    struct cmn_ck_object o;
    uint8_t hdr[CMN_P11OBJ_HDR_LEN], rnd[2];
    bool first = true, found = false;
    uint16_t v;

    for (int i = 0; i < 64; i++, first = false) {
        if (cmn_apdu_list_objects(&a, first) != CMN_OK || tps_card_xfer(s, &a, &r) != TPS_OK ||
            r.sw != 0x9000 || cmn_ck_object_parse(r.data, r.len, &o) != CMN_OK)
            break; /* any non-9000 ends the list (card spec §3.2) */
        if (o.id == CMN_P11OBJ_Z0 && o.size >= sizeof(hdr))
            found = true;
    }
    if (found && read_object(s, CMN_P11OBJ_Z0, hdr, sizeof(hdr), CMN_TPS_STATUS_READ_OBJECT_PDU) ==
                     TPS_OK)
        return (uint16_t)(((hdr[2] << 8) | hdr[3]) + 1);
    tps_session_clear_fail(s); /* an unreadable old z0 is replaced, not an error */
    (void)cmn_crypto_random(rnd, sizeof(rnd));
    v = (uint16_t)(((rnd[0] << 8) | rnd[1]) % 1000);
    return v;
}

/* ---- one certificate ---- */

/* What one key type ended with. */
struct slot {
    const struct tps_enroll_key *k;
    enum tps_enroll_action act;
    uint8_t *der; /* owned (malloc): the certificate now on the card */
    size_t der_len;
    char serial[TPS_CA_SERIAL_MAX];
    bool issued;  /* the CA issued it during this operation */
    bool recorded; /* its certificate entry was written */
    char intent_cn[TPS_TDB_CN_MAX]; /* the open intent entry of this slot, "" if none */
    char label[160];
};

/* Expands $userid$ $cuid$ $type$ $keyType$ in a label template. */
static void
expand_label(const struct tps_session *s, const struct tps_enroll_key *k, char *out, size_t cap)
{
    const char *t = k->label;
    size_t o = 0;

    out[0] = '\0';
    while (*t && o + 1 < cap) {
        const char *rep = NULL;
        size_t skip = 1;
        if (*t == '$') {
            static const char *const names[] = {"$userid$", "$cuid$", "$type$", "$keyType$"};
            const char *vals[] = {s->user, s->tok.cuid_hex, s->tok.type, k->key_type};
            for (size_t i = 0; i < 4; i++)
                if (strncmp(t, names[i], strlen(names[i])) == 0) {
                    rep = vals[i];
                    skip = strlen(names[i]);
                }
        }
        if (rep != NULL) {
            size_t rl = strlen(rep);
            if (o + rl >= cap)
                rl = cap - 1 - o;
            memcpy(out + o, rep, rl);
            o += rl;
        } else {
            out[o++] = *t;
        }
        t += skip;
    }
    out[o] = '\0';
}

/* Records a certificate the CA just issued, before anything else can fail (never an
 * unrecorded certificate). A DB failure here is audited with the serial. */
static bool
record_cert(struct tps_session *s, const struct tps_enroll_env *ee, struct slot *sl,
            const char *origin)
{
    struct tps_token_cert c = {
        .user_id = s->user,
        .cuid = s->tok.cuid_hex,
        .origin = origin,
        .serial = sl->serial,
        .status = "active",
        .type = s->tok.type,
        .key_type = sl->k->key_type,
        .der = sl->der,
        .der_len = sl->der_len,
    };
    enum tps_tdb_rc trc;

    (void)cmn_audit("enroll.cert_issued", s->sid, "cuid=%s user=%s keyType=%s serial=%s "
                    "action=%s", s->tok.cuid_hex, s->user, sl->k->key_type, sl->serial,
                    tps_enroll_action_name(sl->act));
    if (ee->tdb == NULL)
        return false;
    trc = tps_tokendb_cert_add(ee->tdb, &c, NULL, 0);
    if (trc != TPS_TDB_OK) {
        (void)cmn_audit("enroll.reconcile", s->sid,
                        "cuid=%s serial=%s why=\"certificate not recorded in the token DB: %s\"",
                        s->tok.cuid_hex, sl->serial, tps_tokendb_errmsg(ee->tdb));
        return false;
    }
    return true;
}

/* ---- enrollment intents (crash safety) ---- */

/* Writes the intent of a CA enrollment of spki for slot sl before the call: if the process
 * dies after the CA's answer, the next enroll of this token finds it and reconciles it by
 * key (reconcile_intents). A failure ends the operation with status DB and no CA call, so a
 * certificate is never issued unrecorded. [out] sl->intent_cn. */
static enum tps_rc
intent_open(struct tps_session *s, const struct tps_enroll_env *ee, struct slot *sl,
            const uint8_t *spki, size_t spki_len)
{
    static const char hexd[] = "0123456789abcdef";
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char serial[sizeof(TPS_ENROLL_INTENT_PREFIX) + 64];
    size_t o = sizeof(TPS_ENROLL_INTENT_PREFIX) - 1;
    struct cmn_buf sub;
    struct tps_token_cert c = {
        .user_id = s->user,
        .cuid = s->tok.cuid_hex,
        .origin = s->tok.cuid_hex,
        .serial = serial,
        .status = TPS_ENROLL_INTENT_OPEN,
        .issuer = sl->k->ca_conn,
        .type = s->tok.type,
        .key_type = sl->k->key_type,
    };
    enum tps_rc rc = TPS_OK;

    sl->intent_cn[0] = '\0';
    if (ee->tdb == NULL)
        return TPS_OK;
    cmn_buf_init(&sub, 8192);
    if (EVP_Digest(spki, spki_len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32 ||
        cmn_buf_puts(&sub, "spki=") != CMN_OK ||
        tps_ca_b64_append(&sub, spki, spki_len) != TPS_OK || cmn_buf_cstr(&sub) == NULL) {
        rc = tps_session_fail(s, TPS_ENOMEM, CMN_TPS_STATUS_SNAC,
                              "cannot encode the enrollment intent of %s", sl->k->key_type);
        goto out;
    }
    memcpy(serial, TPS_ENROLL_INTENT_PREFIX, o);
    for (unsigned i = 0; i < mdlen; i++) {
        serial[o++] = hexd[md[i] >> 4];
        serial[o++] = hexd[md[i] & 15];
    }
    serial[o] = '\0';
    c.subject = cmn_buf_cstr(&sub);
    if (tps_tokendb_cert_add(ee->tdb, &c, sl->intent_cn, sizeof(sl->intent_cn)) != TPS_TDB_OK) {
        sl->intent_cn[0] = '\0';
        rc = tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB,
                              "token DB: cannot record the enrollment intent of %s before the "
                              "CA call: %s", sl->k->key_type, tps_tokendb_errmsg(ee->tdb));
    }
out:
    cmn_buf_cleanup(&sub);
    return rc;
}

/* Closes an intent: its certificate is recorded, or it was certainly not issued, so the
 * intent entry is deleted. A failure leaves it open; the next enroll reconciles it (and finds
 * the serial recorded). */
static void
intent_close(struct tps_session *s, const struct tps_enroll_env *ee, const char *cn,
             const char *why)
{
    if (ee->tdb == NULL || cn == NULL || cn[0] == '\0')
        return;
    if (tps_tokendb_cert_delete(ee->tdb, cn) != TPS_TDB_OK)
        CMN_LOG(CMN_LOG_WARN, "enroll.intent", s->sid,
                "cuid=%s cn=%s why=\"%s\" err=\"intent left open: %s\"", s->tok.cuid_hex, cn,
                why, tps_tokendb_errmsg(ee->tdb));
}

/* Takes the CA's certificate into the slot. */
static enum tps_rc
take_cert(struct tps_session *s, const struct tps_enroll_env *ee, struct slot *sl,
          struct tps_ca_result *res)
{
    sl->der = res->cert;
    sl->der_len = res->cert_len;
    res->cert = NULL;
    res->cert_len = 0;
    snprintf(sl->serial, sizeof(sl->serial), "%s", res->serial);
    sl->issued = true;
    sl->recorded = record_cert(s, ee, sl, s->tok.cuid_hex);
    CMN_LOG(CMN_LOG_INFO, "enroll.cert", s->sid, "cuid=%s keyType=%s serial=%s clone=\"%s\" "
            "reconciled=%d recorded=%d", s->tok.cuid_hex, sl->k->key_type, sl->serial,
            res->clone, res->reconciled, sl->recorded);
    /* A certificate the token DB does not hold must not reach the card: the operation fails
     * here, before z0, and the open intent lets the next enrollment record (and supersede) it. */
    if (!sl->recorded && ee->tdb != NULL)
        return tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_UPDATE_TOKENDB_FAILED,
                                "token DB: %s certificate %s issued but not recorded (%s); "
                                "the next enrollment of this token reconciles it",
                                sl->k->key_type, sl->serial, tps_tokendb_errmsg(ee->tdb));
    return TPS_OK;
}

/* A CA call that did not end DONE: the END_OP status, and for an unknown outcome the audit
 * line that lets an operator reconcile (backends §6). */
static enum tps_rc
ca_failed(struct tps_session *s, const struct tps_enroll_key *k, const struct tps_ca_result *res,
          bool renewal)
{
    if (res->outcome == TPS_CA_UNKNOWN)
        (void)cmn_audit("enroll.reconcile", s->sid,
                        "cuid=%s user=%s keyType=%s clone=\"%s\" key_sha256=%s request=%s "
                        "why=\"CA outcome unknown: %s\"",
                        s->tok.cuid_hex, s->user, k->key_type, res->clone, res->key_hash,
                        res->request_id[0] ? res->request_id : "-", res->msg);
    return tps_session_fail(s, TPS_EBACKEND,
                            renewal ? CMN_TPS_STATUS_RECOVERY_FAILED
                                    : CMN_TPS_STATUS_CA_RESPONSE,
                            "CA %s of %s: %s (%s)", renewal ? "renewal" : "enrollment",
                            k->key_type, tps_ca_outcome_name(res->outcome), res->msg);
}

static enum tps_rc
ca_enroll(struct tps_session *s, const struct tps_enroll_env *ee, struct slot *sl,
          const uint8_t *spki, size_t spki_len)
{
    struct tps_ca_enroll_req in = {
        .profile_id = sl->k->profile_id,
        .cuid = s->tok.cuid_hex,
        .user_id = s->user,
        .token_type = s->tok.type,
        .spki = spki,
        .spki_len = spki_len,
        .sid = s->sid,
    };
    struct tps_ca_result res;
    enum tps_rc rc;

    tps_ca_result_init(&res);
    rc = intent_open(s, ee, sl, spki, spki_len);
    if (rc != TPS_OK)
        goto out;
    rc = ee->ops->ca_enroll(ee->ops_arg, sl->k->ca_conn, s->env->fo, &in, &res);
    if (rc == TPS_OK && res.outcome == TPS_CA_DONE && res.cert != NULL) {
        rc = take_cert(s, ee, sl, &res);
        if (sl->recorded) /* else the intent stays open: reconciled by the next enroll */
            intent_close(s, ee, sl->intent_cn, "recorded");
    } else {
        /* UNKNOWN and PENDING may still yield a certificate: the intent stays open */
        if (res.outcome == TPS_CA_REJECTED || res.outcome == TPS_CA_NOT_DONE ||
            res.outcome == TPS_CA_AUTH)
            intent_close(s, ee, sl->intent_cn, "not issued");
        rc = ca_failed(s, sl->k, &res, false);
    }
out:
    tps_ca_result_cleanup(&res);
    return rc;
}

/* On-card key generation with proof (card spec §3.4). [out] pub. */
static enum tps_rc
card_keygen(struct tps_session *s, const struct tps_enroll_env *ee,
            const struct tps_enroll_key *k, struct tps_keygen_pub *pub)
{
    struct tps_keygen_card card;
    struct cmn_ck_keygen kg;
    struct cmn_apdu a;
    struct cmn_rapdu r;
    uint8_t plain[TPS_KEYGEN_CHALLENGE_LEN];
    uint8_t *io = NULL;
    uint16_t total = 0;
    char err[512] = "";
    enum tps_rc rc;

    memset(&card, 0, sizeof(card));
    memset(&kg, 0, sizeof(kg));
    card.proto = s->tok.gp_proto;
    memcpy(card.cuid, s->tok.cuid, 10);
    memcpy(card.kdd, s->tok.cuid, 10);
    memcpy(card.key_info, s->tok.key_info, sizeof(card.key_info));
    card.key_info_len = s->tok.key_info_len;
    rc = tps_keygen_challenge(s->env->tks, s->env->fo, ee->encrypt_data_path, s->sid, &card,
                              plain, kg.wrapped_challenge, err, sizeof(err));
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_SECURE_CHANNEL,
                              "TKS encryptData for the keygen challenge failed: %s", err);
        goto out;
    }
    kg.key_user = k->key_user;
    kg.priv_no = k->priv_no;
    kg.key_usage = k->key_usage;
    kg.pub_no = k->pub_no;
    kg.alg = 0x80;
    kg.key_bits = (uint16_t)k->key_bits;
    /* EC keys: GENERATE KEY ECC (84 0D), same data, no Le (Dogtag GenerateKeyECCAPDU) */
    if (k->ec ? tps_keygen_ecc_apdu(&a, &kg) != TPS_OK
              : cmn_apdu_generate_key(&a, &kg, cmn_apdu_secure_le((unsigned)s->tok.gp_proto)) !=
                    CMN_OK) {
        rc = tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_MAC_ENROLL_PDU,
                              "cannot build GENERATE KEY");
        goto out;
    }
    rc = tps_card_xfer_secure(s, &a, &r);
    if (rc != TPS_OK)
        goto out;
    if (r.sw != 0x9000 || cmn_ck_keygen_len_parse(r.data, r.len, &total) != CMN_OK ||
        total < 8 || total > IOBUF_MAX) {
        rc = tps_session_fail(s, TPS_ECARD, CMN_TPS_STATUS_MAC_ENROLL_PDU,
                              "GENERATE KEY (%s, %u bits) answered %zu bytes, SW %04X",
                              k->key_type, k->key_bits, r.len, r.sw);
        goto out;
    }
    io = malloc(total);
    if (io == NULL) {
        rc = tps_session_fail(s, TPS_ENOMEM, CMN_TPS_STATUS_MAC_ENROLL_PDU, "out of memory");
        goto out;
    }
    rc = read_object(s, CMN_CK_IOBUF_ID, io, total, CMN_TPS_STATUS_MAC_ENROLL_PDU);
    if (rc != TPS_OK)
        goto out;
    /* The Java TPS skips the proof (the C++ one checked it); we check: the key must be the
     * card's, made now. */
    rc = k->ec ? tps_keygen_verify_proof_ec(io, total, plain, k->key_bits, pub, err, sizeof(err))
               : tps_keygen_verify_proof(io, total, plain, k->key_bits, pub, err, sizeof(err));
    if (rc != TPS_OK)
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_MAC_ENROLL_PDU, "%s key: %s", k->key_type,
                              err);
out:
    OPENSSL_cleanse(plain, sizeof(plain));
    OPENSSL_cleanse(&kg, sizeof(kg));
    cmn_apdu_wipe(&a);
    free(io);
    return rc;
}

/* Imports a KRA-wrapped private key into the key's slots (card spec §3.5). */
static enum tps_rc
import_key(struct tps_session *s, const struct tps_enroll_key *k,
           const struct tps_enroll_transport *tr, const struct tps_kra_result *kr)
{
    struct cmn_buf obj;
    struct cmn_apdu a;
    enum tps_rc rc;

    cmn_buf_init_secret(&obj, TPS_KRA_WRAPPED_MAX + 8);
    if (kr->iv_len != 8) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_MAC_ENROLL_PDU,
                              "KRA answer has a %zu-byte IV; DES3 transport needs 8",
                              kr->iv_len);
        goto out;
    }
    rc = tps_keygen_import_object(kr->key_bits, kr->wrapped, kr->wrapped_len, &obj);
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_MAC_ENROLL_PDU, "wrapped key too large");
        goto out;
    }
    rc = write_object(s, IMPORT_OBJ, obj.data, obj.len, 0x4000);
    if (rc != TPS_OK)
        goto out;
    if (cmn_apdu_import_key_enc(&a, (uint8_t)(k->key_user << 4 | k->priv_no),
                                (uint8_t)(k->key_usage << 4 | k->pub_no), IMPORT_OBJ, 0x81,
                                tr->kek_wrapped_des, sizeof(tr->kek_wrapped_des), tr->keycheck,
                                sizeof(tr->keycheck), kr->iv) != CMN_OK) {
        rc = tps_session_fail(s, TPS_EINVAL, CMN_TPS_STATUS_MAC_ENROLL_PDU,
                              "cannot build IMPORT KEY ENCRYPTED");
        goto out;
    }
    rc = tps_enroll_secure_ok(s, &a, CMN_TPS_STATUS_MAC_ENROLL_PDU, "IMPORT KEY ENCRYPTED");
    cmn_apdu_wipe(&a);
out:
    cmn_buf_cleanup(&obj);
    return rc;
}

/* Server-side keygen (recover = NULL) or recovery of old_cert on the KRA, then import. */
static enum tps_rc
kra_key(struct tps_session *s, const struct tps_enroll_env *ee, const struct tps_enroll_key *k,
        const uint8_t *old_cert, size_t old_len, struct tps_keygen_pub *pub)
{
    struct tps_enroll_transport tr;
    struct tps_kra_result kr;
    char err[512] = "";
    enum tps_rc rc;

    memset(&tr, 0, sizeof(tr));
    tps_kra_result_init(&kr);
    if (ee->ops->transport == NULL || s->tok.gp_proto == CMN_SCP03) {
        rc = tps_session_fail(s, TPS_EUNSUPP, CMN_TPS_STATUS_KEY_ARCHIVE_OFF,
                              "server-side keygen for %s: no TKS transport material%s",
                              k->key_type,
                              s->tok.gp_proto == CMN_SCP03 ? " (SCP03 not supported)" : "");
        goto out;
    }
    rc = ee->ops->transport(ee->ops_arg, s, &tr, err, sizeof(err));
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_KEY_ARCHIVE_OFF,
                              "no server-side keygen material from the TKS: %s", err);
        goto out;
    }
    if (old_cert == NULL) {
        struct tps_kra_keygen_req in = {
            .cuid = s->tok.cuid_hex,
            .user_id = s->user,
            .archive = k->archive,
            .key_size = k->key_bits,
            .trans = {.des = tr.drm_trans_des, .des_len = tr.drm_trans_des_len},
            .sid = s->sid,
        };
        rc = ee->ops->kra_keygen(ee->ops_arg, k->drm_conn, s->env->fo, &in, &kr);
    } else {
        struct tps_kra_recovery_req in = {
            .cuid = s->tok.cuid_hex,
            .user_id = s->user,
            .cert = old_cert,
            .cert_len = old_len,
            .trans = {.des = tr.drm_trans_des, .des_len = tr.drm_trans_des_len},
            .sid = s->sid,
        };
        rc = ee->ops->kra_recover(ee->ops_arg, k->drm_conn, s->env->fo, &in, &kr);
    }
    if (rc != TPS_OK || kr.outcome != TPS_KRA_DONE) {
        if (kr.outcome == TPS_KRA_UNKNOWN)
            (void)cmn_audit("enroll.reconcile", s->sid,
                            "cuid=%s user=%s keyType=%s clone=\"%s\" why=\"KRA keygen outcome "
                            "unknown: an archived key without certificate may remain: %s\"",
                            s->tok.cuid_hex, s->user, k->key_type, kr.clone, kr.msg);
        rc = tps_session_fail(s, TPS_EBACKEND,
                              old_cert ? CMN_TPS_STATUS_RECOVERY_FAILED
                                       : CMN_TPS_STATUS_KEY_ARCHIVE_OFF,
                              "KRA %s of %s: %s (%s)", old_cert ? "recovery" : "keygen",
                              k->key_type, tps_kra_outcome_name(kr.outcome), kr.msg);
        goto out;
    }
    if (kr.is_ec || kr.spki_len > sizeof(pub->spki) ||
        tps_keygen_spki_parse(kr.spki, kr.spki_len, &pub->key_bits, pub->modulus,
                              sizeof(pub->modulus), &pub->mod_len) != TPS_OK) {
        rc = tps_session_fail(s, TPS_EPROTO, CMN_TPS_STATUS_RECOVERY_FAILED,
                              "KRA returned a public key that is not RSA");
        goto out;
    }
    memcpy(pub->spki, kr.spki, kr.spki_len);
    pub->spki_len = kr.spki_len;
    rc = import_key(s, k, &tr, &kr);
out:
    OPENSSL_cleanse(&tr, sizeof(tr));
    tps_kra_result_cleanup(&kr);
    return rc;
}

/* ---- token DB ---- */

struct dbstate {
    bool found, leased;
    struct tps_token tok;
    struct tps_token_lease lease;
    struct tps_token_policy policy;
    struct tps_token_cert *certs; /* this token's certificate records */
    size_t ncerts;
    struct tps_token *peers_tok;  /* the user's tokens */
    size_t npeers_tok;
    struct tps_token_cert *old;   /* certificates of the token recovered from */
    size_t nold;
};

/* The changeover's record store over this enrollment's token record and lease; NULL when
 * the token is not leased (nothing to record against). */
static const struct tps_keychange_store *
kc_store(struct tps_session *s, const struct tps_enroll_env *ee, struct dbstate *d,
         struct tps_keychange_tdb *ctx, struct tps_keychange_store *st)
{
    if (ee->tdb == NULL || !d->leased)
        return NULL;
    *ctx = (struct tps_keychange_tdb){.db = ee->tdb, .tok = &d->tok, .lease = &d->lease,
                                      .user = s->user, .ip = s->client_ip,
                                      .token_type = s->tok.type, .officer = s->officer};
    tps_keychange_tdb_store(ctx, st);
    return st;
}

static void
db_cleanup(struct dbstate *d)
{
    tps_token_cleanup(&d->tok);
    tps_token_certs_free(d->certs, d->ncerts);
    tps_tokens_free(d->peers_tok, d->npeers_tok);
    tps_token_certs_free(d->old, d->nold);
    memset(d, 0, sizeof(*d));
}

static enum tps_rc
db_fail(struct tps_session *s, const struct tps_enroll_env *ee, const char *what)
{
    return tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB, "token DB %s failed: %s", what,
                            tps_tokendb_errmsg(ee->tdb));
}

/* The newest DER of key type kt among certs (active ones only when active_only). */
static const struct tps_token_cert *
cert_of(const struct tps_token_cert *certs, size_t n, const char *kt, bool active_only)
{
    const struct tps_token_cert *best = NULL;

    for (size_t i = 0; i < n; i++) /* oldest first: the last match is the newest */
        if (certs[i].key_type != NULL && strcmp(certs[i].key_type, kt) == 0 &&
            certs[i].der != NULL && certs[i].der_len > 0 &&
            (!active_only || (certs[i].status && strcmp(certs[i].status, "active") == 0)))
            best = &certs[i];
    return best;
}

static void
activity(struct tps_session *s, const struct tps_enroll_env *ee, bool ok, const char *msg)
{
    struct tps_token_activity a = {
        .op = "enrollment",
        .result = ok ? "success" : "failure",
        .cuid = s->tok.cuid_hex,
        .user_id = s->user,
        .ip = s->client_ip,
        .msg = msg,
        .type = s->tok.type,
        .officer = s->officer,
    };

    if (ee->tdb != NULL && tps_tokendb_activity_add(ee->tdb, &a, NULL, 0) != TPS_TDB_OK)
        CMN_LOG(CMN_LOG_WARN, "enroll.activity", s->sid, "cuid=%s err=\"%s\"", s->tok.cuid_hex,
                tps_tokendb_errmsg(ee->tdb));
}

/* Reconciles one open intent of an earlier, interrupted enrollment of this token, by key
 * (backends "Reconciliation"): issued and recorded -> intent closed; issued, unrecorded ->
 * the certificate never reached the card (the retry regenerates the key in that slot), so it
 * is revoked at the CA with reason superseded (4: the retry's certificate replaces it; the
 * key was never exposed, so not keyCompromise) and recorded "revoked", then the intent is
 * closed; certainly not issued -> closed; anything else -> kept open, logged and audited. */
static void
reconcile_one(struct tps_session *s, const struct tps_enroll_env *ee, const struct dbstate *d,
              const struct tps_token_cert *c)
{
    const char *conn = c->issuer != NULL && c->issuer[0] ? c->issuer : "ca1";
    const char *hash = c->serial + sizeof(TPS_ENROLL_INTENT_PREFIX) - 1;
    struct tps_ca_result res, rv;
    struct cmn_buf spki;
    char why[2 * TPS_CA_MSG_MAX] = "";

    cmn_buf_init(&spki, 4096);
    tps_ca_result_init(&res);
    tps_ca_result_init(&rv);
    if (c->subject == NULL || strncmp(c->subject, "spki=", 5) != 0 ||
        tps_ca_b64_decode(c->subject + 5, strlen(c->subject + 5), &spki) != TPS_OK) {
        snprintf(why, sizeof(why), "the intent carries no readable public key");
        goto keep;
    }
    if (ee->ops->ca_find_by_key == NULL) {
        snprintf(why, sizeof(why), "no CA lookup by key");
        goto keep;
    }
    (void)ee->ops->ca_find_by_key(ee->ops_arg, conn, s->env->fo, s->sid, spki.data, spki.len,
                                  &res);
    if (res.outcome == TPS_CA_NOT_DONE) {
        intent_close(s, ee, c->cn, "not issued");
        CMN_LOG(CMN_LOG_NOTICE, "enroll.intent", s->sid,
                "cuid=%s cn=%s key_sha256=%s result=not_issued", s->tok.cuid_hex, c->cn, hash);
        goto out;
    }
    if (res.outcome != TPS_CA_DONE || res.cert == NULL) {
        snprintf(why, sizeof(why), "lookup %s: %s", tps_ca_outcome_name(res.outcome), res.msg);
        goto keep;
    }
    for (size_t i = 0; i < d->ncerts; i++)
        if (d->certs[i].serial != NULL && strcasecmp(d->certs[i].serial, res.serial) == 0) {
            intent_close(s, ee, c->cn, "recorded");
            goto out;
        }
    if (ee->ops->ca_revoke == NULL) {
        snprintf(why, sizeof(why), "issued as %s, cannot revoke it", res.serial);
        goto keep;
    }
    (void)ee->ops->ca_revoke(ee->ops_arg, conn, s->env->fo, s->sid, res.serial,
                             TPS_CA_REASON_SUPERSEDED, &rv);
    if (rv.outcome != TPS_CA_DONE) {
        snprintf(why, sizeof(why), "issued as %s, revocation %s: %s", res.serial,
                 tps_ca_outcome_name(rv.outcome), rv.msg);
        goto keep;
    }
    {
        struct tps_token_cert orphan = {
            .user_id = c->user_id,
            .cuid = s->tok.cuid_hex,
            .origin = s->tok.cuid_hex,
            .subject = res.subject[0] ? res.subject : NULL,
            .serial = res.serial,
            .status = "revoked",
            .type = c->type,
            .key_type = c->key_type,
            .der = res.cert,
            .der_len = res.cert_len,
        };
        if (tps_tokendb_cert_add(ee->tdb, &orphan, NULL, 0) != TPS_TDB_OK) {
            snprintf(why, sizeof(why), "issued as %s and revoked, not recorded: %s", res.serial,
                     tps_tokendb_errmsg(ee->tdb));
            goto keep;
        }
    }
    (void)cmn_audit("enroll.cert_orphaned", s->sid,
                    "cuid=%s keyType=%s serial=%s key_sha256=%s reason=superseded "
                    "why=\"issued by an interrupted enrollment, never on the card\"",
                    s->tok.cuid_hex, c->key_type ? c->key_type : "-", res.serial, hash);
    intent_close(s, ee, c->cn, "orphan recorded");
    goto out;
keep:
    CMN_LOG(CMN_LOG_WARN, "enroll.intent", s->sid, "cuid=%s cn=%s key_sha256=%s result=pending "
            "why=\"%s\"", s->tok.cuid_hex, c->cn, hash, why);
    (void)cmn_audit("enroll.reconcile", s->sid,
                    "cuid=%s keyType=%s key_sha256=%s intent=%s why=\"intent kept pending: %s\"",
                    s->tok.cuid_hex, c->key_type ? c->key_type : "-", hash, c->cn, why);
out:
    tps_ca_result_cleanup(&rv);
    tps_ca_result_cleanup(&res);
    cmn_buf_cleanup(&spki);
}

/* Every open intent of this token (under its lease: no other operation runs on it). */
static void
reconcile_intents(struct tps_session *s, const struct tps_enroll_env *ee, const struct dbstate *d)
{
    for (size_t i = 0; i < d->ncerts; i++) {
        const struct tps_token_cert *c = &d->certs[i];
        if (c->cn != NULL && c->serial != NULL && c->status != NULL &&
            strncmp(c->serial, TPS_ENROLL_INTENT_PREFIX, sizeof(TPS_ENROLL_INTENT_PREFIX) - 1) ==
                0 &&
            strcmp(c->status, TPS_ENROLL_INTENT_OPEN) == 0)
            reconcile_one(s, ee, d, c);
    }
}

/* Reads what the decision needs, decides, takes the lease. */
static enum tps_rc
db_prepare(struct tps_session *s, const struct tps_enroll_env *ee,
           const struct tps_enroll_profile *p, struct dbstate *d, struct tps_enroll_plan *plan)
{
    struct tps_enroll_have have[64];
    struct tps_enroll_peer peers[64];
    size_t nhave = 0, np = 0;
    enum tps_tdb_rc trc;
    char k[128];

    if (ee->tdb == NULL) {
        tps_enroll_decide(p, false, TPS_TOKEN_FORMATTED, NULL, NULL, 0, NULL, 0, time(NULL),
                          plan);
        return TPS_OK;
    }
    trc = tps_tokendb_token_get(ee->tdb, s->tok.cuid_hex, &d->tok);
    if (trc != TPS_TDB_OK && trc != TPS_TDB_ENOTFOUND)
        return db_fail(s, ee, "lookup");
    d->found = trc == TPS_TDB_OK;
    snprintf(k, sizeof(k), "op.%s.allowUnknownToken", OP);
    if (!d->found && !tps_cfg_bool(s->env->cfg, k))
        return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_TOKEN_DISABLED,
                                "token %s is unknown and %s=false", s->tok.cuid_hex, k);
    if (d->found && d->tok.user_id != NULL && d->tok.user_id[0] &&
        strcmp(d->tok.user_id, s->user) != 0 && d->tok.status == TPS_TOKEN_ACTIVE)
        return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_NOT_TOKEN_OWNER,
                                "token %s belongs to another user", s->tok.cuid_hex);
    if (tps_token_policy_parse(d->found ? d->tok.policy : NULL, NULL, &d->policy) !=
        TPS_TDB_OK)
        return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_DISABLED_TOKEN,
                                "token %s has an unreadable policy", s->tok.cuid_hex);
    if (d->found) {
        if (tps_tokendb_cert_list(ee->tdb, s->tok.cuid_hex, &d->certs, &d->ncerts) !=
            TPS_TDB_OK)
            return db_fail(s, ee, "certificate listing");
        for (size_t i = 0; i < d->ncerts && nhave < 64; i++) {
            struct tps_enroll_have *h = &have[nhave];
            if (d->certs[i].key_type == NULL || d->certs[i].der == NULL)
                continue;
            h->key_type = d->certs[i].key_type;
            h->usable = d->certs[i].status != NULL && strcmp(d->certs[i].status, "active") == 0;
            if (tps_enroll_cert_not_after(d->certs[i].der, d->certs[i].der_len, &h->not_after) !=
                TPS_OK)
                h->usable = false;
            nhave++;
        }
    }
    if (tps_tokendb_token_list_by_user(ee->tdb, s->user, &d->peers_tok, &d->npeers_tok) !=
        TPS_TDB_OK)
        return db_fail(s, ee, "listing the user's tokens");
    for (size_t i = 0; i < d->npeers_tok && np < 64; i++) {
        if (strcasecmp(d->peers_tok[i].cuid, s->tok.cuid_hex) == 0)
            continue;
        peers[np].cuid = d->peers_tok[i].cuid;
        peers[np].status = d->peers_tok[i].status;
        peers[np].reason = d->peers_tok[i].reason;
        np++;
    }
    tps_enroll_decide(p, d->found, d->found ? d->tok.status : TPS_TOKEN_FORMATTED, &d->policy,
                      have, nhave, peers, np, time(NULL), plan);
    if (plan->status != 0)
        return tps_session_fail(s, TPS_EPOLICY, plan->status, "token %s: %s", s->tok.cuid_hex,
                                plan->why);
    if (plan->recover_from >= 0 &&
        tps_tokendb_cert_list(ee->tdb, peers[plan->recover_from].cuid, &d->old, &d->nold) !=
            TPS_TDB_OK)
        return db_fail(s, ee, "listing the lost token's certificates");
    if (!d->found) {
        struct tps_token_mod init = {.user_id = s->user, .type = s->tok.type,
                                     .set_status = true, .status = TPS_TOKEN_FORMATTED,
                                     .actor = TPS_TDB_OPERATION};
        trc = tps_tokendb_token_create(ee->tdb, s->tok.cuid_hex, &init, &d->tok);
        if (trc == TPS_TDB_EEXISTS)
            trc = tps_tokendb_token_get(ee->tdb, s->tok.cuid_hex, &d->tok);
        if (trc != TPS_TDB_OK)
            return db_fail(s, ee, "token creation");
        d->found = true;
    }
    trc = tps_tokendb_lease_acquire(ee->tdb, &d->tok, 0, &d->lease);
    if (trc == TPS_TDB_EBUSY)
        return tps_session_fail(s, TPS_EBUSY, CMN_TPS_STATUS_DB,
                                "token %s is in use by another operation: %s", s->tok.cuid_hex,
                                tps_tokendb_errmsg(ee->tdb));
    if (trc != TPS_TDB_OK)
        return db_fail(s, ee, "lease");
    d->leased = true;
    reconcile_intents(s, ee, d);
    return TPS_OK;
}

static enum tps_rc
db_commit(struct tps_session *s, const struct tps_enroll_env *ee, struct dbstate *d)
{
    struct tps_token_mod m = {
        .user_id = s->user,
        .type = s->tok.type,
        .applet_id = s->tok.applet_version,
        .key_info = s->tok.key_info_hex,
        .set_status = d->tok.status != TPS_TOKEN_ACTIVE,
        .status = TPS_TOKEN_ACTIVE,
        .actor = TPS_TDB_OPERATION,
    };
    enum tps_tdb_rc trc;

    if (ee->tdb == NULL)
        return TPS_OK;
    trc = tps_tokendb_token_update(ee->tdb, &d->tok, &m, &d->lease);
    if (trc != TPS_TDB_OK)
        return tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_UPDATE_TOKENDB_FAILED,
                                "token DB update to ACTIVE failed (%s): %s",
                                tps_tdb_strerror(trc), tps_tokendb_errmsg(ee->tdb));
    return TPS_OK;
}

/* SET LIFE CYCLE failed after the record went ACTIVE: the record goes back to the status it
 * had; if that fails too, the audit and the failure activity mark it for reconciliation. */
static void
lifecycle_failed(struct tps_session *s, const struct tps_enroll_env *ee, struct dbstate *d,
                 enum tps_token_status prev)
{
    struct tps_token_mod m = {.set_status = true, .status = prev, .actor = TPS_TDB_OPERATION};
    enum tps_tdb_rc trc;

    if (ee->tdb == NULL || prev == TPS_TOKEN_ACTIVE)
        return;
    trc = tps_tokendb_token_update(ee->tdb, &d->tok, &m, &d->lease);
    if (trc == TPS_TDB_OK) {
        CMN_LOG(CMN_LOG_WARN, "enroll.lifecycle", s->sid, "cuid=%s status=%s why=\"%s\"",
                s->tok.cuid_hex, tps_token_status_name(prev), s->why);
        return;
    }
    (void)cmn_audit("enroll.reconcile", s->sid,
                    "cuid=%s why=\"token recorded ACTIVE but the card is not personalised "
                    "(SET LIFE CYCLE failed: %s); reverting to %s failed: %s\"",
                    s->tok.cuid_hex, s->why, tps_token_status_name(prev),
                    tps_tokendb_errmsg(ee->tdb));
    {   /* the failure activity carries it too */
        size_t n = strlen(s->why);
        if (n < sizeof(s->why))
            snprintf(s->why + n, sizeof(s->why) - n, " (token record ACTIVE, card not "
                     "personalised: reconcile)");
    }
}

/* ---- the operation ---- */

static enum tps_rc
do_slot(struct tps_session *s, const struct tps_enroll_env *ee, struct dbstate *d,
        struct slot *sl)
{
    const struct tps_enroll_key *k = sl->k;
    struct tps_keygen_pub *pub = NULL;
    const struct tps_token_cert *c;
    enum tps_rc rc = TPS_OK;

    switch (sl->act) {
    case TPS_ENROLL_KEEP:
        c = cert_of(d->certs, d->ncerts, k->key_type, true);
        if (c == NULL)
            return tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_DB,
                                    "no recorded %s certificate to keep", k->key_type);
        sl->der = malloc(c->der_len);
        if (sl->der == NULL)
            return tps_session_fail(s, TPS_ENOMEM, CMN_TPS_STATUS_SNAC, "out of memory");
        memcpy(sl->der, c->der, c->der_len);
        sl->der_len = c->der_len;
        snprintf(sl->serial, sizeof(sl->serial), "%s", c->serial ? c->serial : "");
        return TPS_OK;
    case TPS_ENROLL_RENEW: {
        struct tps_ca_renew_req in = {.profile_id = k->renew_profile_id, .sid = s->sid};
        struct tps_ca_result res;
        c = cert_of(d->certs, d->ncerts, k->key_type, true);
        if (c == NULL)
            return tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_RECOVERY_FAILED,
                                    "no recorded %s certificate to renew", k->key_type);
        in.old_cert = c->der;
        in.old_cert_len = c->der_len;
        tps_ca_result_init(&res);
        rc = ee->ops->ca_renew(ee->ops_arg, k->renew_ca_conn, s->env->fo, &in, &res);
        if (rc == TPS_OK && res.outcome == TPS_CA_DONE && res.cert != NULL)
            rc = take_cert(s, ee, sl, &res);
        else
            rc = ca_failed(s, k, &res, true);
        tps_ca_result_cleanup(&res);
        return rc;
    }
    case TPS_ENROLL_GENERATE:
    case TPS_ENROLL_RECOVER:
        break;
    }
    pub = calloc(1, sizeof(*pub));
    if (pub == NULL)
        return tps_session_fail(s, TPS_ENOMEM, CMN_TPS_STATUS_SNAC, "out of memory");
    if (sl->act == TPS_ENROLL_RECOVER) {
        c = cert_of(d->old, d->nold, k->key_type, false);
        if (c == NULL) {
            rc = tps_session_fail(s, TPS_EDB, CMN_TPS_STATUS_RECOVERY_FAILED,
                                  "the lost token has no %s certificate to recover",
                                  k->key_type);
            goto out;
        }
        rc = kra_key(s, ee, k, c->der, c->der_len, pub);
    } else if (k->server_keygen) {
        rc = kra_key(s, ee, k, NULL, 0, pub);
    } else {
        rc = card_keygen(s, ee, k, pub);
    }
    if (rc == TPS_OK)
        rc = ca_enroll(s, ee, sl, pub->spki, pub->spki_len);
out:
    free(pub);
    return rc;
}

enum tps_rc
tps_enroll_run(struct tps_session *s, const struct tps_enroll_env *ee)
{
    const struct tps_config *cfg = s->env->cfg;
    struct tps_enroll_profile *p = NULL;
    struct tps_enroll_plan plan;
    struct dbstate d;
    struct tps_keychange_tdb kct;
    struct tps_keychange_store kcs;
    struct slot sl[TPS_ENROLL_MAX_KEYS];
    struct tps_enroll_obj objs[TPS_ENROLL_MAX_KEYS];
    struct cmn_buf z0;
    struct cmn_apdu a;
    uint8_t keep[2 * TPS_ENROLL_MAX_KEYS + 2];
    size_t nkeep = 0;
    char err[512] = "", msg[400];
    uint16_t zver;
    enum tps_token_status prev_status;
    enum tps_rc rc;
    size_t o = 0;
    bool issuer_rewritten = false;

    memset(&d, 0, sizeof(d));
    memset(sl, 0, sizeof(sl));
    cmn_buf_init(&z0, Z0_MAX);
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        rc = tps_session_fail(s, TPS_ENOMEM, CMN_TPS_STATUS_SNAC, "out of memory");
        goto out;
    }
    rc = tps_prologue(s);
    if (rc == TPS_OK)
        rc = tps_resolve_type(s, OP);
    if (rc != TPS_OK)
        goto out;
    rc = tps_enroll_profile_load(ee->cfg, s->tok.type, p, err, sizeof(err));
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_DEFAULT_TOKENTYPE_PARAMS_NOT_FOUND, "%s",
                              err);
        goto out;
    }
    if (!s->tok.have_applet) {
        rc = tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_UPGRADE_APPLET,
                              "token has no applet: format it first");
        goto out;
    }
    /* Enrollment always authenticates (§3.3 step 3). */
    if (!tps_cfg_op_bool(cfg, OP, s->tok.type, "auth.enable")) {
        rc = tps_session_fail(s, TPS_ELOGIN, CMN_TPS_STATUS_LOGIN,
                              "op.enroll.%s.auth.enable=false: enrollment needs a user",
                              s->tok.type);
        goto out;
    }
    rc = tps_login(s, OP);
    if (rc == TPS_OK)
        rc = db_prepare(s, ee, p, &d, &plan);
    if (rc == TPS_OK)
        rc = tps_probe_gp(s);
    if (rc == TPS_OK)
        rc = tps_enroll_applet_channel(s, OP, kc_store(s, ee, &d, &kct, &kcs));
    if (rc == TPS_OK && p->pin_reset)
        rc = tps_pin_set(s, p->pin_min, p->pin_max, p->pin_retries,
                         cmn_cfg_str(ee->cfg, "create_pin.string"));
    if (rc != TPS_OK)
        goto out;
    zver = z0_version(s);
    rc = tps_session_progress(s, 10, "PROGRESS_PROCESS_PROFILE");
    for (size_t i = 0; rc == TPS_OK && i < p->n; i++) {
        unsigned from = (unsigned)(15 + 75 * i / p->n), to = (unsigned)(15 + 75 * (i + 1) / p->n);
        sl[i].k = &p->keys[i];
        sl[i].act = plan.act[i];
        CMN_LOG(CMN_LOG_INFO, "enroll.plan", s->sid, "cuid=%s keyType=%s action=%s server_keygen=%d",
                s->tok.cuid_hex, p->keys[i].key_type, tps_enroll_action_name(plan.act[i]),
                p->keys[i].server_keygen);
        rc = tps_session_progress(s, from, "PROGRESS_KEY_GENERATION");
        if (rc == TPS_OK)
            rc = do_slot(s, ee, &d, &sl[i]);
        if (rc == TPS_OK)
            rc = tps_session_progress(s, to, "PROGRESS_ENROLL_CERT");
    }
    if (rc != TPS_OK)
        goto out;

    for (size_t i = 0; i < p->n; i++) {
        expand_label(s, sl[i].k, sl[i].label, sizeof(sl[i].label));
        objs[i].cert_no = sl[i].k->cert_no;
        objs[i].label = sl[i].label;
        objs[i].der = sl[i].der;
        objs[i].der_len = sl[i].der_len;
        objs[i].usage = sl[i].k->usage;
        keep[nkeep++] = sl[i].k->priv_no;
        keep[nkeep++] = sl[i].k->pub_no;
    }
    rc = tps_enroll_build_z0(s->tok.cuid, s->user, zver, objs, p->n, p->compress, &z0);
    if (rc != TPS_OK) {
        rc = tps_session_fail(s, rc, CMN_TPS_STATUS_MAC_CERT_PDU,
                              "cannot build the z0 object (%s)", tps_strerror(rc));
        goto out;
    }
    if (!s->channel_open)
        rc = tps_enroll_applet_channel(s, OP, kc_store(s, ee, &d, &kct, &kcs));
    /* the phone-home URL, in the same channel, before the objects (tokendb-ha §4.1) */
    if (rc == TPS_OK && tps_cfg_op_bool(cfg, OP, s->tok.type, "issuerinfo.enable"))
        rc = tps_issuer_info_set(s, OP, &issuer_rewritten);
    if (rc == TPS_OK)
        rc = tps_session_progress(s, 92, "PROGRESS_WRITE_OBJECTS");
    if (rc == TPS_OK)
        rc = write_object(s, CMN_P11OBJ_Z0, z0.data, z0.len, 0xFFFF);
    if (rc == TPS_OK)
        rc = tps_session_progress(s, 99, "PROGRESS_SET_LIFECYCLE");
    if (rc != TPS_OK)
        goto out;
    /* The token record goes ACTIVE before the card is personalised: if that write fails the
     * card stays unpersonalised (coolkey ignores it) and the operation ends with status 15;
     * the card is never personalised without its record. */
    prev_status = d.tok.status;
    rc = db_commit(s, ee, &d);
    if (rc != TPS_OK)
        goto out;
    if (s->tok.life_cycle != CMN_CK_LC_PERSONALIZED) {
        (void)cmn_apdu_set_lifecycle(&a, CMN_CK_LC_PERSONALIZED);
        rc = tps_enroll_secure_ok(s, &a, CMN_TPS_STATUS_MAC_LIFESTYLE_PDU, "SET LIFE CYCLE 0F");
        if (rc != TPS_OK) {
            lifecycle_failed(s, ee, &d, prev_status);
            goto out;
        }
        s->tok.life_cycle = CMN_CK_LC_PERSONALIZED;
    }
    /* Slots we did not fill are cleared; failures are ignored as by Java (card spec §3.2). */
    if (cmn_apdu_clear_key_slots(&a, keep, nkeep) == CMN_OK) {
        struct cmn_rapdu r;
        (void)tps_card_xfer_secure(s, &a, &r);
    }
    rc = tps_session_progress(s, 100, "PROGRESS_DONE_ENROLLMENT");
    if (rc != TPS_OK) {
        /* The token is enrolled and recorded; only the last status message was lost. */
        tps_session_clear_fail(s);
        rc = TPS_OK;
    }
out:
    /* What the activity says: every serial with its fate. */
    o = (size_t)snprintf(msg, sizeof(msg), "%s%s", rc == TPS_OK ? "token enrolled" : s->why,
                         issuer_rewritten ? "; issuer info rewritten" : "");
    for (size_t i = 0; p != NULL && i < p->n && o < sizeof(msg); i++)
        if (sl[i].k != NULL && sl[i].serial[0])
            o += (size_t)snprintf(msg + o, sizeof(msg) - o, "; %s %s %s%s", sl[i].k->key_type,
                                  tps_enroll_action_name(sl[i].act), sl[i].serial,
                                  rc != TPS_OK && sl[i].issued ? " (issued, not on card: "
                                                                 "reconcile)"
                                                               : "");
    if (d.leased) {
        activity(s, ee, rc == TPS_OK, msg);
        if (tps_tokendb_lease_release(ee->tdb, &d.tok, &d.lease) != TPS_TDB_OK)
            CMN_LOG(CMN_LOG_WARN, "enroll.unlease", s->sid, "cuid=%s err=\"%s\"",
                    s->tok.cuid_hex, tps_tokendb_errmsg(ee->tdb));
    }
    if (rc != TPS_OK)
        for (size_t i = 0; p != NULL && i < p->n; i++)
            if (sl[i].issued)
                (void)cmn_audit("enroll.reconcile", s->sid,
                                "cuid=%s serial=%s why=\"issued during a failed enrollment: "
                                "%s\"", s->tok.cuid_hex, sl[i].serial, s->why);
    for (size_t i = 0; i < TPS_ENROLL_MAX_KEYS; i++)
        free(sl[i].der);
    cmn_buf_cleanup(&z0);
    db_cleanup(&d);
    free(p);
    return rc;
}
