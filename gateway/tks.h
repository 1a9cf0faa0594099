/* gateway/tks.h - the TKS client of tpsgw: computeSessionKey for SCP01/02/03 over the TKS clones
 * (libfailover, IDEMPOTENT calls), form-encoded requests with #XX binary values, session keys
 * unwrapped with the TPS<->TKS shared secret (backends-and-failover §2, §3.6). */
#ifndef TPS_TKS_H
#define TPS_TKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/scp.h"
#include "gateway/gwerr.h"

struct tps_config;
struct fo_list;
struct fo_req;

/* A transport replacing libfailover (unit tests): POSTs body to path and appends the answer's
 * body to resp. Returns TPS_OK or TPS_EBACKEND with a message in err. */
typedef enum tps_rc tps_tks_post_fn(void *arg, const char *path, const char *body, size_t len,
                                    struct cmn_buf *resp, char *err, size_t errlen);

/* One TKS connector (`conn.<id>.*`). Immutable after creation; shared by all workers. */
struct tps_tks {
    char id[32];           /* "tks1" */
    char keyset[64];       /* conn.<id>.keySet */
    char path[256];        /* conn.<id>.servlet.computeSessionKey */
    bool server_keygen;    /* conn.<id>.serverKeygen */
    bool keep_alive;       /* conn.<id>.keepAlive: reuse the worker's connections */
    unsigned deadline_ms;  /* conn.<id>.timeout * 1000 */
    struct cmn_key shared; /* from conn.<id>.tksSharedSymKey_file */
    struct fo_list *list;  /* the clones; NULL when `post` is used */
    tps_tks_post_fn *post;
    void *post_arg;
};

/* Creates connector `id` from the configuration (list of conn.<id>.hostport, TLS files,
 * shared secret file). [out] *out, freed with tps_tks_free(). TPS_ECONFIG with err. */
enum tps_rc tps_tks_new(const struct tps_config *cfg, const char *id, struct tps_tks **out,
                        char *err, size_t errlen);
/* Creates a connector served by `post` (tests). shared is copied. */
enum tps_rc tps_tks_new_custom(const char *id, const struct cmn_key *shared, const char *keyset,
                               tps_tks_post_fn *post, void *arg, struct tps_tks **out);
void tps_tks_free(struct tps_tks *t);

/* What the card said in INITIALIZE UPDATE, and our challenge. */
struct tps_tks_in {
    enum cmn_scp_proto proto;
    uint8_t cuid[10];
    struct cmn_scp_iu iu; /* KDD, key info, card challenge, cryptogram, counter */
    uint8_t host_challenge[8];
};

/* Server-side keygen material of computeSessionKey with serversideKeygen=true (backends §2.3,
 * §2.4: SCP02 returns it with the DEK call): a fresh DES3 transport key D under the card KEK
 * (SCP01/03) or the DEK session key (SCP02), its KCV, and D (and an AES key A) wrapped for the
 * KRA's transport certificate. Secrets: wipe with the keys. */
struct tps_tks_srvkg {
    bool have;                   /* every field below was present and well formed */
    uint8_t kek_wrapped_des[16]; /* kek_wrapped_desKey */
    uint8_t keycheck[3];         /* keycheck (KCV of D; SCP03: of A, keycheck_des is D's) */
    uint8_t drm_trans_des[512];  /* drm_trans_desKey */
    size_t drm_trans_des_len;
    uint8_t drm_trans_aes[512]; /* drm_trans_aesKey, or empty (SCP02) */
    size_t drm_trans_aes_len;
};

/* Session keys as the TKS returned them, unwrapped. Wipe with tps_tks_keys_wipe(). */
struct tps_tks_keys {
    struct tps_tks_srvkg srvkg;         /* only when the connector asks (conn.<id>.serverKeygen) */
    struct cmn_key enc, mac, rmac, dek; /* rmac/dek: SCP02 only (dek also SCP03: static KEK) */
    bool have_rmac, have_dek;
    uint8_t host_cryptogram[8];
    bool have_host_cryptogram; /* SCP01/03: from the TKS; SCP02: computed by the caller */
};
void tps_tks_keys_wipe(struct tps_tks_keys *k);

/* computeSessionKey (one call for SCP01/03, four for SCP02). req: the calling worker's
 * libfailover handle, used when keep_alive is set (otherwise every call gets a fresh handle,
 * so a fresh TLS connection, as Dogtag does for its TKS); unused with a custom transport. sid names
 * the session in logs. Returns TPS_OK; TPS_EBACKEND (every clone failed, or TKS status != 0: err
 * says which and why, e.g. "tks1: status 5 (card cryptogram mismatch)"), TPS_EPROTO (answer lacks a
 * field), TPS_ECRYPTO. Thread-safe with distinct req. */
enum tps_rc tps_tks_session_keys(const struct tps_tks *t, struct fo_req *req, const char *sid,
                                 const struct tps_tks_in *in, struct tps_tks_keys *out, char *err,
                                 size_t errlen);

/* encryptData (backends §2.6, IDEMPOTENT, over the clones like computeSessionKey): asks the
 * TKS to encrypt 16 random bytes under the card's static KEK. The TKS may encrypt its own
 * random bytes instead: the returned `data` is what the card will decrypt, so it is what
 * comes back in plain. path: conn.<id>.servlet.encryptData (NULL or "" =
 * /tks/agent/tks/encryptData). key_info: the card's current key set (2 bytes, SCP03 3).
 * [out] plain (a secret: wipe it), wrapped, 16 bytes each. TPS_OK, TPS_EBACKEND (err: which
 * clone and why), TPS_EPROTO (answer lacks a 16-byte field), TPS_ECRYPTO. Thread-safe with
 * distinct req. */
enum tps_rc tps_tks_encrypt_data(const struct tps_tks *t, struct fo_req *req, const char *path,
                                 const char *sid, enum cmn_scp_proto proto, const uint8_t cuid[10],
                                 const uint8_t kdd[10], const uint8_t *key_info,
                                 size_t key_info_len, uint8_t plain[16], uint8_t wrapped[16],
                                 char *err, size_t errlen);

/* Appends "#XX#YY..." (uppercase) for n bytes: the TKS "HASH" encoding (backends §2.2). */
enum tps_rc tps_tks_hash_append(struct cmn_buf *b, const uint8_t *p, size_t n);
/* Decodes a TKS response value: "#XX" and "%XX" sequences (either case) become bytes, '+'
 * a space, anything else itself. TPS_EPROTO on a malformed sequence, TPS_ETOOBIG. */
enum tps_rc tps_tks_value_decode(const char *v, size_t n, uint8_t *out, size_t cap,
                                 size_t *out_len);
/* Finds `name` in a form-encoded answer body (split on '&', then at the first '=').
 * [out] *v, *vlen point into body. false when absent. */
bool tps_tks_field(const char *body, size_t len, const char *name, const char **v, size_t *vlen);

#endif
