/* gateway/keygen.h - key material of an enrollment: the enrollment challenge from the TKS
 * (encryptData, backends §2.6), the proof check of an on-card GENERATE KEY (card spec §3.4),
 * the SubjectPublicKeyInfo sent to the CA, and the IMPORT KEY ENCRYPTED object of a key the
 * KRA generated or recovered (card spec §3.5). */
#ifndef TPS_KEYGEN_H
#define TPS_KEYGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/apdu.h"
#include "common/buf.h"
#include "common/scp.h"
#include "gateway/gwerr.h"

struct tps_tks;
struct fo_req;

#define TPS_KEYGEN_CHALLENGE_LEN 16
#define TPS_KEYGEN_SPKI_MAX 1100 /* DER SPKI of RSA-4096 is 550 bytes; room for EC */
#define TPS_KEYGEN_MOD_MAX 512

#define TPS_KEYGEN_EC_POINT_MAX 97  /* 04 ‖ X ‖ Y of P-384 */
#define TPS_KEYGEN_EC_PARAMS_MAX 16 /* DER OID of a named curve */

/* A public key as the enrollment uses it. */
struct tps_keygen_pub {
    uint8_t spki[TPS_KEYGEN_SPKI_MAX]; /* DER SubjectPublicKeyInfo */
    size_t spki_len;
    bool ec;                           /* EC key (point) instead of RSA (modulus) */
    unsigned key_bits;                 /* RSA modulus bits, or EC curve size (256, 384) */
    uint8_t modulus[TPS_KEYGEN_MOD_MAX];
    size_t mod_len;                    /* without leading zero */
    uint8_t point[TPS_KEYGEN_EC_POINT_MAX];
    size_t point_len;                  /* uncompressed EC point */
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

/* The I/O buffer of a GENERATE KEY ECC (84 0D): blobLen ‖ blob ‖ proofLen ‖ proof with
 * blob = 00 0A keySize(2) pointLen(2) point (C++ Dogtag TPS CertEnroll::ParsePublicKeyBlob)
 * and proof = DER ECDSA-SHA1(new private key, blob ‖ challenge), verified with the point of
 * the blob. want_bits: the curve size asked for (256 or 384). Same contract as
 * tps_keygen_verify_proof(): TPS_EPROTO (malformed, wrong curve size, point not on the curve,
 * trailing bytes), TPS_EAUTH (proof does not verify), TPS_ECRYPTO. Thread-safe. */
enum tps_rc tps_keygen_verify_proof_ec(const uint8_t *iobuf, size_t len,
                                       const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN],
                                       unsigned want_bits, struct tps_keygen_pub *out,
                                       char *err, size_t errlen);

/* GENERATE KEY ECC: 84 0D P1 P2 17 05 keySize(2) option type 10 wrappedChallenge(16) 00, no Le
 * (Dogtag GenerateKeyECCAPDU: the RSA layout with INS 0D, alg 05 = EC over a prime field, an
 * empty key check). kg->alg is ignored. TPS_EINVAL as cmn_apdu_generate_key(). */
enum tps_rc tps_keygen_ecc_apdu(struct cmn_apdu *a, const struct cmn_ck_keygen *kg);

/* The key of a DER certificate as the z0 key records need it (card spec §6.3): *ec, and for EC
 * keys the DER curve OID (CKA_EC_PARAMS) into params[0..TPS_KEYGEN_EC_PARAMS_MAX) and the
 * uncompressed point (CKA_EC_POINT as the C++ TPS writes it: the raw point, as coolkey also
 * derives it from the certificate) into point[0..TPS_KEYGEN_EC_POINT_MAX). TPS_EPROTO when the
 * certificate or its key cannot be read or the curve is not named. Thread-safe. */
enum tps_rc tps_keygen_cert_key(const uint8_t *der, size_t len, bool *ec, uint8_t *params,
                                size_t *params_len, uint8_t *point, size_t *point_len);

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
