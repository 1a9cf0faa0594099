/* gateway/enroll.h - the enroll operation (tps-protocol §3.3, card spec §3, §6, §7.3): token
 * profiles (the certificates of a token type), the decision generate / renew / recover from
 * the token DB and token policy (tokendb §1.7, §1.8), on-card key generation with proof,
 * server-side key generation and key recovery on the KRA, CA enrollment and renewal, the z0
 * object, PIN, life cycle and token DB records; the enroll key table. */
#ifndef TPS_ENROLL_H
#define TPS_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "gateway/ca.h"
#include "gateway/gwerr.h"
#include "gateway/kra.h"
#include "gateway/tokendb.h"

struct tps_session;
struct fo_req;

/* Keys of enrollment and PIN reset (op.enroll.<type>.keyGen.*, renewal.*, pinReset.*,
 * create_pin.string, pkcs11obj.*). Merge into the gateway's table list, with tps_ca_cfg_keys
 * and tps_kra_cfg_keys. */
extern const struct cmn_cfg_key tps_enroll_cfg_keys[];

#define TPS_ENROLL_MAX_KEYS 4 /* certificates per token (cert ids 0..4, key slots <= 9) */
#define TPS_ENROLL_NAME_MAX 32

/* What happens to a key type when the user's previous token was lost or damaged
 * (op.enroll.<type>.keyGen.<keyType>.recovery.<reason>.scheme, Java names). */
enum tps_recovery_scheme {
    TPS_RECOVERY_GENERATE = 0,     /* GenerateNewKey */
    TPS_RECOVERY_RECOVER_LAST = 1, /* RecoverLast: the last archived key of that key type */
    TPS_RECOVERY_GENERATE_AND_RECOVER = 2, /* GenerateNewKeyAndRecoverLast: treated as
                                            * GenerateNewKey (one key per slot here) */
};

/* One certificate of a token type (op.enroll.<type>.keyGen.<keyType>.*). */
struct tps_enroll_key {
    char key_type[TPS_ENROLL_NAME_MAX];  /* "signing", "encryption" */
    unsigned cert_no;                    /* N of certId CN / cN (0..4) */
    uint8_t priv_no, pub_no;             /* key slots: 2N and 2N+1 */
    uint8_t key_user, key_usage;         /* GENERATE KEY P1/P2 high nibbles */
    bool ec;                             /* keyGen.<kt>.alg = 5: EC key (else 1/2 RSA) */
    unsigned key_bits;                   /* keySize: RSA 1024 or 2048, EC 256 or 384 */
    unsigned usage;                      /* CMN_P11OBJ_USE_* */
    char label[128];                     /* label template ($userid$, $cuid$, $type$) */
    char profile_id[128];                /* keyGen.<kt>.ca.profileId */
    char ca_conn[32];                    /* keyGen.<kt>.ca.conn */
    bool server_keygen;                  /* keyGen.<kt>.serverKeygen.enable */
    bool archive;                        /* keyGen.<kt>.serverKeygen.archive */
    char drm_conn[32];                   /* keyGen.<kt>.serverKeygen.drm.conn */
    /* recovery schemes for tokenReason destroyed, keyCompromise, onHold */
    enum tps_recovery_scheme recovery[3];
    /* renewal (op.enroll.<type>.renewal.<kt>.*) */
    bool renew_enable;
    char renew_profile_id[128];
    char renew_ca_conn[32];
    bool grace_enable;
    unsigned grace_before_days, grace_after_days;
};

/* The certificates of a token type, in keyGen.keyType.value.<i> order. */
struct tps_enroll_profile {
    char type[64];
    size_t n;
    struct tps_enroll_key keys[TPS_ENROLL_MAX_KEYS];
    bool pin_reset;            /* op.enroll.<type>.pinReset.enable */
    unsigned pin_min, pin_max, pin_retries;
    bool compress;             /* op.enroll.<type>.pkcs11obj.compress.enable */
    bool allow_multi_active;   /* op.enroll.allowMultiActiveToken.user */
};

/* Reads the profile of token type `type` from a configuration validated with
 * tps_enroll_cfg_keys, tps_ca_cfg_keys and tps_kra_cfg_keys. Refuses: no key types, more than
 * TPS_ENROLL_MAX_KEYS, an unknown or duplicate certId, a key type without ca.profileId, an alg
 * other than 1/2 (RSA) or 5 (EC), RSA key sizes other than 1024/2048, EC sizes other than
 * 256/384, EC with serverKeygen.enable, min PIN length > max. [out] out. TPS_OK or TPS_ECONFIG with err
 * naming the key. Thread-safe. */
enum tps_rc tps_enroll_profile_load(const struct cmn_cfg *cfg, const char *type,
                                    struct tps_enroll_profile *out, char *err, size_t errlen);

/* The key-type rules checked when the configuration is loaded (tpsgw -t and start), for every
 * token type with op.enroll.<type>.keyGen.keyType.num: keyGen.<kt>.alg is 1/2 (RSA) or 5 (EC),
 * keySize fits the alg (RSA 1024/2048, EC 256/384), and EC keys are not server-generated.
 * Appends one "file:line: message" line per error to errs; returns the number of errors.
 * The rest of a profile is checked by tps_enroll_profile_load() when it is used. */
size_t tps_enroll_cfg_check(const struct cmn_cfg *cfg, struct cmn_buf *errs);

/* ---- decisions (pure) -------------------------------------------------------------- */

/* Renewal window (Java gracePeriod): renewal is due when now is within
 * [notAfter - before days, notAfter + after days]; without grace period (grace_enable false)
 * it is always due. */
bool tps_enroll_renew_due(const struct tps_enroll_key *k, time_t now, time_t not_after);

/* What enroll does for one key type. */
enum tps_enroll_action {
    TPS_ENROLL_GENERATE = 0, /* new key (card, or KRA with serverKeygen) and new certificate */
    TPS_ENROLL_RENEW = 1,    /* same key, certificate renewed at the CA */
    TPS_ENROLL_RECOVER = 2,  /* the last archived key of the lost token, new certificate */
    TPS_ENROLL_KEEP = 3,     /* certificate and key stay as they are */
};
const char *tps_enroll_action_name(enum tps_enroll_action a);

/* A token of the same user, as the decision needs it. */
struct tps_enroll_peer {
    const char *cuid;
    enum tps_token_status status;
    const char *reason; /* tokenReason: destroyed, keyCompromise, onHold ... */
};

/* One certificate of this token as recorded (for renewal). */
struct tps_enroll_have {
    const char *key_type;
    time_t not_after;
    bool usable; /* record status "active" and a DER present */
};

/* The plan of one enrollment. */
struct tps_enroll_plan {
    enum tps_enroll_action act[TPS_ENROLL_MAX_KEYS];
    int recover_from;   /* index into peers of the token recovered from, -1 none */
    int status;         /* END_OP status when refused (0 = go) */
    char why[200];
};

/* Decides per key type. tok_found/tok_status/policy: this token's record (policy NULL =
 * tokendb.defaultPolicy as parsed by the caller). have: this token's certificates.
 * peers: the user's other tokens, newest first. Rules (tps-protocol §3.3, tokendb §1.7,
 * §1.8):
 *  - this token lost, damaged, suspended or terminated: refused (38, 35 for terminated);
 *  - this token ACTIVE: with RENEW=YES, key types whose renewal is enabled and due are
 *    renewed and the others kept; if none is due, RE_ENROLL=YES regenerates everything,
 *    otherwise refused (26);
 *  - a new, FORMATTED or UNFORMATTED token: if the newest other token is DAMAGED, PERM_LOST,
 *    TEMP_LOST_PERM_LOST or SUSPENDED, each key type follows its recovery scheme for that
 *    token's reason; another ACTIVE token is refused (34) unless allow_multi_active.
 * [out] plan. Thread-safe. */
void tps_enroll_decide(const struct tps_enroll_profile *p, bool tok_found,
                       enum tps_token_status tok_status, const struct tps_token_policy *policy,
                       const struct tps_enroll_have *have, size_t nhave,
                       const struct tps_enroll_peer *peers, size_t npeers, time_t now,
                       struct tps_enroll_plan *plan);

/* ---- the z0 object (card spec §6.3) ------------------------------------------------ */

/* One certificate for z0: certificate N with its key pair in slots 2N/2N+1. */
struct tps_enroll_obj {
    unsigned cert_no;
    const char *label;
    const uint8_t *der;
    size_t der_len;
    unsigned usage; /* CMN_P11OBJ_USE_* */
};

/* Builds z0 for the card cuid: token name (coolkey's label), object version, the given
 * certificates (records cN, k(2N+1), k(2N) each), zlib-compressed when compress.
 * The key records follow each certificate's public key: CKA_KEY_TYPE 0 (RSA) or 3 (EC, with
 * CKA_EC_PARAMS and, on the public key, CKA_EC_POINT).
 * CMN_P11_CKK_RSA records for a DER whose public key cannot be read.
 * Refuses a certificate number above 4, two certificates with one number, an empty DER.
 * [out] appended to out. TPS_OK, TPS_EINVAL, TPS_ETOOBIG, TPS_ENOMEM. */
enum tps_rc tps_enroll_build_z0(const uint8_t cuid[10], const char *token_name,
                                uint16_t object_version, const struct tps_enroll_obj *objs,
                                size_t n, bool compress, struct cmn_buf *out);

/* notAfter of a DER certificate. TPS_OK or TPS_EPROTO. */
enum tps_rc tps_enroll_cert_not_after(const uint8_t *der, size_t len, time_t *out);

/* ---- the operation ------------------------------------------------------------------ */

/* Server-side keygen / recovery transport material of the open secure channel (TKS
 * computeSessionKey with serversideKeygen=true, backends §2.3-2.5, §3.7). Secrets: wiped by
 * the processor. */
struct tps_enroll_transport {
    uint8_t drm_trans_des[512];  /* D wrapped for the KRA transport key */
    size_t drm_trans_des_len;
    uint8_t drm_trans_aes[512];  /* A wrapped for the KRA, or empty */
    size_t drm_trans_aes_len;
    uint8_t kek_wrapped_des[16]; /* D under the card KEK (SCP01/03) or DEK session key (SCP02) */
    uint8_t keycheck[3];         /* KCV of D */
};

/* The backends of an enrollment. Production: tps_enroll_backends_ops (below); tests: fakes.
 * conn is the connector id from the profile ("ca1", "drm1"); fo the worker's handle. */
struct tps_enroll_ops {
    enum tps_rc (*ca_enroll)(void *arg, const char *conn, struct fo_req *fo,
                             const struct tps_ca_enroll_req *in, struct tps_ca_result *out);
    enum tps_rc (*ca_renew)(void *arg, const char *conn, struct fo_req *fo,
                            const struct tps_ca_renew_req *in, struct tps_ca_result *out);
    enum tps_rc (*kra_keygen)(void *arg, const char *conn, struct fo_req *fo,
                              const struct tps_kra_keygen_req *in, struct tps_kra_result *out);
    enum tps_rc (*kra_recover)(void *arg, const char *conn, struct fo_req *fo,
                               const struct tps_kra_recovery_req *in,
                               struct tps_kra_result *out);
    /* The transport material of s's open channel; NULL or failing: no server-side keygen. */
    enum tps_rc (*transport)(void *arg, struct tps_session *s,
                             struct tps_enroll_transport *out, char *err, size_t errlen);
    /* Reconciliation of enrollment intents left pending by an earlier operation (a crash
     * between the CA's answer and the token DB write). NULL: the outcome stays unknown and the
     * intent stays pending. Contracts of tps_ca_find_by_key (clone_index -1) and
     * tps_ca_revoke. */
    enum tps_rc (*ca_find_by_key)(void *arg, const char *conn, struct fo_req *fo,
                                  const char *sid, const uint8_t *spki, size_t spki_len,
                                  struct tps_ca_result *out);
    enum tps_rc (*ca_revoke)(void *arg, const char *conn, struct fo_req *fo, const char *sid,
                             const char *serial, int reason, struct tps_ca_result *out);
};

/* Enrollment intents (crash safety, docs/enroll.md "Intent records"): before each CA
 * enrollment the processor adds a tokenCert entry with tokenSerial
 * TPS_ENROLL_INTENT_PREFIX<SHA-256 hex of the SPKI>, tokenStatus "uninitialized" (open),
 * tokenIssuer the CA connector id, tokenSubject "spki=<base64 DER SPKI>"; it is closed
 * (the entry deleted) once the certificate is recorded or certainly not issued. */
#define TPS_ENROLL_INTENT_PREFIX "pending:"
#define TPS_ENROLL_INTENT_OPEN "uninitialized"

/* What an enrollment borrows besides the session's tps_env. */
struct tps_enroll_env {
    const struct cmn_cfg *cfg;        /* enroll/CA/KRA keys (tps_config_cfg() of the daemon) */
    const struct tps_enroll_ops *ops;
    void *ops_arg;
    struct tps_tokendb *tdb;          /* this worker's token DB handle; NULL: no records */
    const char *encrypt_data_path;    /* conn.<tks>.servlet.encryptData; NULL: default */
};

/* Runs the enroll operation (tps-protocol §3.3, Java order) on session s. Every certificate
 * the CA issued is recorded in the token DB as soon as it exists; a failure after that leaves
 * an activity naming the serials for reconciliation; an unknown CA outcome that the CA client
 * could not reconcile is recorded with the key hash and clone (never retried). Returns TPS_OK
 * or the failure (END_OP status recorded in s). */
enum tps_rc tps_enroll_run(struct tps_session *s, const struct tps_enroll_env *ee);

/* Connectors of the daemon: every conn.ca<n> and conn.drm<n> of the configuration. */
struct tps_enroll_backends;
/* [out] *out. TPS_ECONFIG (err names the key), TPS_ENOMEM. Main thread, before workers. */
enum tps_rc tps_enroll_backends_new(const struct cmn_cfg *cfg, struct tps_enroll_backends **out,
                                    char *err, size_t errlen);
void tps_enroll_backends_free(struct tps_enroll_backends *b);
/* The CA connector `conn` ("ca1"), or NULL when there is none of that name. */
struct tps_ca;
struct tps_ca *tps_enroll_backends_ca(const struct tps_enroll_backends *b, const char *conn);
/* Calls fn for every CA and KRA connector: its id and failover list (for /metrics). */
struct fo_list;
void tps_enroll_backends_lists(const struct tps_enroll_backends *b,
                               void (*fn)(void *arg, const char *id, const struct fo_list *l),
                               void *arg);
/* Ops over tps_ca_* / tps_kra_*; ops_arg is the struct tps_enroll_backends. transport is
 * the serversideKeygen fields of the open channel (s->srvkg, from gateway/tks.c). */
extern const struct tps_enroll_ops tps_enroll_backends_ops;

#endif
