/* gateway/keygen.h - key material of an enrollment: the enrollment challenge from the TKS
 * (encryptData, backends §2.6), the proof check of an on-card GENERATE KEY (card spec §3.4),
 * the SubjectPublicKeyInfo sent to the CA, and the IMPORT KEY ENCRYPTED object of a key the
 * KRA generated or recovered (card spec §3.5). */
#ifndef TPS_KEYGEN_H
#define TPS_KEYGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/scp.h"
#include "gateway/gwerr.h"

struct tps_tks;
struct fo_req;

#define TPS_KEYGEN_CHALLENGE_LEN 16
#define TPS_KEYGEN_SPKI_MAX 1100 /* DER SPKI of RSA-4096 is 550 bytes; room for EC */
#define TPS_KEYGEN_MOD_MAX 512

/* A public key as the enrollment uses it. */
struct tps_keygen_pub {
    uint8_t spki[TPS_KEYGEN_SPKI_MAX]; /* DER SubjectPublicKeyInfo */
    size_t spki_len;
    unsigned key_bits;                 /* RSA modulus bits */
    uint8_t modulus[TPS_KEYGEN_MOD_MAX];
    size_t mod_len;                    /* without leading zero */
};

/* Checks the I/O buffer a GENERATE KEY left on the card (object FFFFFFFF, card spec §3.4):
 * blobLen ‖ blob ‖ proofLen ‖ proof, blob = 00 01 keySize modLen modulus expLen exponent,
 * proof = RSASSA-PKCS1-v1_5-SHA-1(new private key, blob ‖ challenge), verified with the
 * modulus and exponent of the blob itself. want_bits: the size asked for (0 = any).
 * [in] iobuf (foreign bytes, read through a bounded cursor), challenge (the plaintext the
 * card decrypted). [out] out. TPS_OK; TPS_EPROTO (malformed buffer, size not the one asked,
 * public exponent not odd or < 3); TPS_EAUTH (the proof does not verify: the key was not made
 * for this challenge); TPS_ECRYPTO. err says which. Thread-safe. */
enum tps_rc tps_keygen_verify_proof(const uint8_t *iobuf, size_t len,
                                    const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN],
                                    unsigned want_bits, struct tps_keygen_pub *out, char *err,
                                    size_t errlen);

/* DER SubjectPublicKeyInfo of an RSA key from big-endian modulus and exponent (leading zeros
 * allowed). [out] out[0..cap), *n. TPS_EINVAL (empty or larger than 4096 bits), TPS_ETOOBIG,
 * TPS_ECRYPTO. */
enum tps_rc tps_keygen_spki_rsa(const uint8_t *mod, size_t mod_len, const uint8_t *exp,
                                size_t exp_len, uint8_t *out, size_t cap, size_t *n);

/* Reads an RSA SPKI back: [out] key_bits, modulus (without leading zero) into mod[0..cap),
 * *mod_len. TPS_EPROTO when it is not an RSA SPKI. */
enum tps_rc tps_keygen_spki_parse(const uint8_t *spki, size_t len, unsigned *key_bits,
                                  uint8_t *mod, size_t cap, size_t *mod_len);

/* What the TKS needs to know of the card for encryptData (backends §2.6). */
struct tps_keygen_card {
    enum cmn_scp_proto proto;
    uint8_t cuid[10];
    uint8_t kdd[10];      /* KDD (normally = CUID) */
    uint8_t key_info[3];  /* current key set: 2 bytes (SCP01/02) or 3 (SCP03) */
    size_t key_info_len;
};

/* encryptData on the TKS clones (IDEMPOTENT): asks the TKS to encrypt 16 random bytes under
 * the card's static KEK. The TKS may replace our data by its own random bytes; the returned
 * `data` is what the card will decrypt, so it is what comes back in plain (backends §2.6).
 * path: the connector's conn.<id>.servlet.encryptData (NULL = /tks/agent/tks/encryptData).
 * [out] plain, wrapped (16 bytes each; plain is a secret: wipe it). TPS_OK, TPS_EBACKEND
 * (err: which clone and why), TPS_EPROTO (answer lacks a 16-byte field), TPS_ECRYPTO.
 * Thread-safe with distinct req. */
enum tps_rc tps_keygen_challenge(const struct tps_tks *t, struct fo_req *req, const char *path,
                                 const char *sid, const struct tps_keygen_card *card,
                                 uint8_t plain[TPS_KEYGEN_CHALLENGE_LEN],
                                 uint8_t wrapped[TPS_KEYGEN_CHALLENGE_LEN], char *err,
                                 size_t errlen);

/* The content of the temporary key object FF00FFF3 for IMPORT KEY ENCRYPTED (card spec
 * §3.5): 01 09 keySize(2) ‖ wrapped PKCS#8. [out] appended to out. TPS_ETOOBIG. */
enum tps_rc tps_keygen_import_object(unsigned key_bits, const uint8_t *wrapped, size_t len,
                                     struct cmn_buf *out);

#endif
