/* common/crypto.h - symmetric primitives of the secure channels: DES/3DES/AES on OpenSSL 3
 * EVP, ISO 9797-1 padding and MACs, AES-CMAC, HMAC-SHA256, KCVs, KDFs (card spec §4.1). */
#ifndef CMN_CRYPTO_H
#define CMN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* Conventions for every function below:
 * - Keys are borrowed. Outputs are written only on success (on failure they may hold
 *   partial data and must be ignored; the functions wipe their own intermediates).
 * - In-place operation (out == in) is allowed for the ciphers.
 * - Lengths that are not whole blocks, or key lengths not listed, give CMN_EINVAL; an
 *   OpenSSL failure gives CMN_ECRYPTO (the OpenSSL error queue is cleared).
 * - All are thread-safe (no shared state; EVP contexts are per call).
 * "3DES" is two-key triple DES: a 16-byte key K1||K2 used as K1,K2,K1. A 24-byte key is
 * accepted too (three-key). Single DES runs as 3DES with K1=K2=K3, because OpenSSL 3 keeps
 * plain DES in the legacy provider only. */

#define CMN_DES_BLOCK 8
#define CMN_AES_BLOCK 16
#define CMN_KEY_MAX 32

/* A symmetric key with its algorithm: what the TKS and the card keep per key slot. */
enum cmn_key_alg {
    CMN_KEY_DES3 = 0, /* len 16 (K1K2, used K1K2K1) or 24 */
    CMN_KEY_AES = 1,  /* len 16, 24 or 32 */
};

struct cmn_key {
    enum cmn_key_alg alg;
    size_t len;
    uint8_t v[CMN_KEY_MAX];
};

/* Fills k from raw bytes. CMN_EINVAL on a length the algorithm does not allow. */
enum cmn_rc cmn_key_set(struct cmn_key *k, enum cmn_key_alg alg, const uint8_t *v, size_t len);
/* Wipes k (safe on a zeroed or already wiped key). */
void cmn_key_wipe(struct cmn_key *k);
/* true when alg/len are a valid combination. */
bool cmn_key_valid(const struct cmn_key *k);

/* --- block ciphers, no padding: n must be a multiple of the block size (0 allowed) --- */

/* 3DES-ECB, key 16 or 24 bytes. */
enum cmn_rc cmn_crypto_des3_ecb(const uint8_t *key, size_t key_len, bool encrypt,
                                const uint8_t *in, size_t n, uint8_t *out);
/* 3DES-CBC with an 8-byte IV (NULL = zero IV). */
enum cmn_rc cmn_crypto_des3_cbc(const uint8_t *key, size_t key_len, const uint8_t *iv,
                                bool encrypt, const uint8_t *in, size_t n, uint8_t *out);
/* Single DES-ECB / CBC with an 8-byte key (run as 3DES K1=K2=K3). iv NULL = zero. */
enum cmn_rc cmn_crypto_des_ecb(const uint8_t key[8], bool encrypt, const uint8_t *in, size_t n,
                               uint8_t *out);
enum cmn_rc cmn_crypto_des_cbc(const uint8_t key[8], const uint8_t *iv, bool encrypt,
                               const uint8_t *in, size_t n, uint8_t *out);
/* AES-ECB / AES-CBC, key 16, 24 or 32 bytes; iv is 16 bytes, NULL = zero IV. */
enum cmn_rc cmn_crypto_aes_ecb(const uint8_t *key, size_t key_len, bool encrypt,
                               const uint8_t *in, size_t n, uint8_t *out);
enum cmn_rc cmn_crypto_aes_cbc(const uint8_t *key, size_t key_len, const uint8_t *iv,
                               bool encrypt, const uint8_t *in, size_t n, uint8_t *out);

/* The "key encryption" rule shared by TKS session-key wrapping (backends §3.6), encryptData
 * (§3.8), key set data (card §2.6) and the card's challenge decryption (§3.4):
 * DES3 key → 3DES-ECB; AES key → AES-CBC with a zero IV. n must be whole blocks of the
 * key's cipher. */
enum cmn_rc cmn_key_encrypt(const struct cmn_key *k, const uint8_t *in, size_t n, uint8_t *out);
enum cmn_rc cmn_key_decrypt(const struct cmn_key *k, const uint8_t *in, size_t n, uint8_t *out);

/* --- ISO 9797-1 method 2 padding (append 80, then 00 to the block size) --- */

/* Pads buf[0..len) in place to a multiple of block (8 or 16). With always=false nothing is
 * added when len is already aligned (SCP01 C-DEC rule); with always=true a whole block is
 * added then. [in,out] buf of capacity cap; [out] out_len. CMN_ETOOBIG if cap is too small. */
enum cmn_rc cmn_pad80(uint8_t *buf, size_t len, size_t cap, size_t block, bool always,
                      size_t *out_len);
/* Finds the method-2 padding at the end of buf[0..len): the last non-00 byte must be 80 and
 * lie in the last block. [out] plain_len. CMN_EINVAL if the padding is malformed. */
enum cmn_rc cmn_unpad80(const uint8_t *buf, size_t len, size_t block, size_t *plain_len);

/* --- MACs --- */

/* MAC3 / "full 3DES MAC": pad msg (method 2, always), 3DES-CBC every block from icv
 * (8 bytes, NULL = zero), result = last block. key 16 or 24 bytes. */
enum cmn_rc cmn_crypto_mac3(const uint8_t *key, size_t key_len, const uint8_t *icv,
                            const uint8_t *msg, size_t n, uint8_t mac[8]);
/* Retail MAC (ISO 9797-1 algorithm 3): pad (method 2, always), single-DES CBC with key[0..7]
 * over all blocks but the last starting from icv, last block 3DES(key). key 16 bytes. */
enum cmn_rc cmn_crypto_retail_mac(const uint8_t key[16], const uint8_t *icv, const uint8_t *msg,
                                  size_t n, uint8_t mac[8]);
/* AES-CMAC (NIST SP 800-38B, RFC 4493), key 16/24/32 bytes, full 16-byte tag. */
enum cmn_rc cmn_crypto_aes_cmac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t n,
                                uint8_t mac[16]);
/* HMAC-SHA256, key length 1..1024. */
enum cmn_rc cmn_crypto_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg,
                                   size_t n, uint8_t mac[32]);

/* --- key check values (card spec §4.1) --- */

/* KCV_DES = 3DES-ECB(K, 00x8)[0..2]; key 16 or 24 bytes. */
enum cmn_rc cmn_crypto_kcv_des(const uint8_t *key, size_t key_len, uint8_t kcv[3]);
/* KCV_AES = AES-CBC(K, 01x16, IV 0)[0..2]; key 16/24/32 bytes. */
enum cmn_rc cmn_crypto_kcv_aes(const uint8_t *key, size_t key_len, uint8_t kcv[3]);
/* The KCV for the key's algorithm. */
enum cmn_rc cmn_key_kcv(const struct cmn_key *k, uint8_t kcv[3]);

/* Sets odd DES parity on every byte of key[0..n) (the low bit of each byte). */
void cmn_crypto_des_parity(uint8_t *key, size_t n);

/* n bytes from the OpenSSL DRBG. CMN_ECRYPTO if it fails. */
enum cmn_rc cmn_crypto_random(uint8_t *out, size_t n);

/* --- key derivation functions --- */

/* NIST SP800-108 counter-mode KDF with PRF HMAC-SHA256, in the layout the Dogtag TKS uses
 * (card spec §4.2 "NIST SP800-108"): block i (i = 1, 2, ...) = HMAC-SHA256(key,
 * i(1) || label(1) || 00 || ctx || L(2, bits)); out = first out_len bytes of the blocks.
 * out_len 1..255*32, L = out_len*8 must fit 16 bits. */
enum cmn_rc cmn_kdf_sp800_108_hmac(const uint8_t *key, size_t key_len, uint8_t label,
                                   const uint8_t *ctx, size_t ctx_len, uint8_t *out,
                                   size_t out_len);
/* GP SCP03 KDF (AES-CMAC counter mode, card spec §4.5): block i = CMAC(key,
 * 00x11 || constant || 00 || L(2, bits) || i || ctx); out = first l_bits/8 bytes.
 * l_bits: 64, 128, 192 or 256. ctx_len <= 64. */
enum cmn_rc cmn_kdf_scp03(const uint8_t *key, size_t key_len, uint8_t constant,
                          const uint8_t *ctx, size_t ctx_len, unsigned l_bits, uint8_t *out);

/* OpenSSL group name of a Dogtag EC key size (Dogtag derives "nistp<keySize>"): "P-256" for
 * 256, "P-384" for 384; NULL for any other size (not offered). */
const char *cmn_ec_curve(unsigned key_bits);

#endif
