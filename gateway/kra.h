/* gateway/kra.h - tpsgw's client of the Dogtag KRA (DRM) clones (backends §5, §6):
 * server-side key generation with archival (GenerateKeyPair) and key recovery
 * (TokenKeyRecovery), with the transport key material the TKS returned; results shaped for
 * IMPORT KEY ENCRYPTED (card spec §3.5); the conn.drm<n>.* key table (backends §10). */
#ifndef TPS_KRA_H
#define TPS_KRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "gateway/gwerr.h"

struct fo_req;

/* Keys of KRA connectors and of server-side keygen routing; merge into the gateway table. */
extern const struct cmn_cfg_key tps_kra_cfg_keys[];

#define TPS_KRA_CLONE_MAX 280
#define TPS_KRA_MSG_MAX 640
#define TPS_KRA_WRAPPED_MAX 8192 /* wrapped PKCS#8 (RSA-4096 with CRT fits in ~2.5 KiB) */
#define TPS_KRA_SPKI_MAX 2048

struct tps_kra; /* one connector: immutable, shared by all workers */

/* Creates connector `id` ("drm1") from a validated configuration including tps_kra_cfg_keys.
 * [out] *out (tps_kra_free). TPS_ECONFIG (err names the key), TPS_EINVAL, TPS_ENOMEM. */
enum tps_rc tps_kra_new(const struct cmn_cfg *cfg, const char *id, struct tps_kra **out,
                        char *err, size_t errlen);
void tps_kra_free(struct tps_kra *k); /* NULL does nothing */
/* The connector's failover list (for /metrics). */
const struct fo_list *tps_kra_list(const struct tps_kra *k);
const char *tps_kra_id(const struct tps_kra *k);

enum tps_kra_outcome {
    TPS_KRA_DONE = 0,     /* key material in the result */
    TPS_KRA_REJECTED = 1, /* a clone answered status != 0 (app_status, msg): final */
    TPS_KRA_NOT_DONE = 2, /* no clone acted: the caller may retry */
    TPS_KRA_UNKNOWN = 3,  /* keygen with archival may have run on the clone named in `clone`
                           * (an archived key without certificate may remain); not resent
                           * (backends §6): fail the operation, audit, do not retry
                           * automatically */
    TPS_KRA_AUTH = 4,     /* unauthorized= / HTTP 401/403 */
};
const char *tps_kra_outcome_name(enum tps_kra_outcome o);

/* The transport key material from TKS computeSessionKey with serversideKeygen=true
 * (backends §3.7): RSA-wrapped under the KRA transport certificate. Borrowed. At least one
 * of des/aes must be given; the KRA prefers aes. */
struct tps_kra_transport {
    const uint8_t *des;       /* drm_trans_desKey bytes (decoded from the TKS answer) */
    size_t des_len;
    const uint8_t *aes;       /* drm_trans_aesKey bytes, or NULL */
    size_t aes_len;
    const char *aes_wrap_alg; /* "KWP" or "CBC" (op.enroll.<type>.keyGen.aesKeyWrapAlg);
                               * NULL = not sent (KRA default KWP) */
};

/* Key material for IMPORT KEY ENCRYPTED. tps_kra_result_init() before, _cleanup() after. */
struct tps_kra_result {
    enum tps_kra_outcome outcome;
    long app_status;                /* status= of the answer; -1 none */
    char clone[TPS_KRA_CLONE_MAX];  /* "drm1 127.0.0.1:8443" */
    char msg[TPS_KRA_MSG_MAX];      /* "" when DONE */
    uint8_t spki[TPS_KRA_SPKI_MAX]; /* public key, DER SubjectPublicKeyInfo */
    size_t spki_len;
    bool is_ec;
    unsigned key_bits;              /* RSA modulus / EC order bits: the card's keySize */
    uint8_t *wrapped;               /* wrapped_priv_key (PKCS#8 under the transport key);
                                     * owned, wiped and freed by cleanup */
    size_t wrapped_len;
    uint8_t iv[16];                 /* iv_param: 8 bytes (DES3-CBC / KWP), 16 (AES-CBC) */
    size_t iv_len;
};
void tps_kra_result_init(struct tps_kra_result *r);
void tps_kra_result_cleanup(struct tps_kra_result *r);

/* GenerateKeyPair (backends §5.1). Strings borrowed. */
struct tps_kra_keygen_req {
    const char *cuid;           /* hex CUID, sent as tokencuid; required */
    const char *user_id;        /* userid; required */
    bool archive;               /* op.enroll.<type>.keyGen.<keyType>.serverKeygen.archive */
    bool ec;                    /* keytype EC (else RSA) */
    unsigned key_size;          /* RSA bits (512..8192); ignored for EC */
    const char *ec_curve;       /* nistp256 (NULL = default), nistp384, nistp521 */
    const char *key_gen_usages; /* optional; NULL = absent */
    struct tps_kra_transport trans;
    const char *sid;
};

/* Generates a key pair on the KRA. archive=true: NON_IDEMPOTENT (never sent to a second clone
 * after possible delivery: an unknown outcome is TPS_KRA_UNKNOWN); archive=false: IDEMPOTENT.
 * [out] out. TPS_OK (DONE), TPS_EBACKEND (out->outcome, out->msg), TPS_EINVAL, TPS_ENOMEM.
 * Thread-safe with distinct req. */
enum tps_rc tps_kra_keygen(struct tps_kra *k, struct fo_req *req,
                           const struct tps_kra_keygen_req *in, struct tps_kra_result *out);

/* TokenKeyRecovery (backends §5.2): by certificate (cert, DER) or by key id (decimal). */
struct tps_kra_recovery_req {
    const char *cuid;         /* CUID of the token receiving the key; required */
    const char *user_id;      /* required */
    const uint8_t *cert;      /* DER certificate whose key is recovered, or NULL */
    size_t cert_len;
    const char *key_id;       /* decimal key id, used when cert is NULL */
    struct tps_kra_transport trans;
    const char *sid;
};
/* Recovers an archived key. IDEMPOTENT (a recovery request record only). The recovered public
 * key must equal the certificate's when one was given. Codes as tps_kra_keygen. */
enum tps_rc tps_kra_recover(struct tps_kra *k, struct fo_req *req,
                            const struct tps_kra_recovery_req *in, struct tps_kra_result *out);

/* Parses a GenerateKeyPair/TokenKeyRecovery answer (form fields; backends §5): status, and
 * with status 0 public_key (B64 or PCT of a SPKI), wrapped_priv_key and iv_param (PCT).
 * recovery selects the status texts of §5.2. [out] out. TPS_OK when the answer is complete
 * for its status (app_status != 0 is TPS_OK too: see out->app_status, out->msg), TPS_EAUTH
 * for unauthorized=, TPS_EPROTO otherwise, TPS_ENOMEM. */
enum tps_rc tps_kra_parse(const char *body, size_t len, bool recovery,
                          struct tps_kra_result *out);

#endif
