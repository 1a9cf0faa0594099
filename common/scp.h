/* common/scp.h - GlobalPlatform secure channels SCP01/02/03 for both ends: session keys,
 * cryptograms, EXTERNAL AUTHENTICATE, C-MAC/C-DEC wrapping (host) and unwrapping (card),
 * PUT KEY key set data, TKS session-key wrapping (card spec §2.4-2.6, §4; backends §3). */
#ifndef CMN_SCP_H
#define CMN_SCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/apdu.h"
#include "common/crypto.h"
#include "common/rc.h"

enum cmn_scp_proto {
    CMN_SCP01 = 1,
    CMN_SCP02 = 2,
    CMN_SCP03 = 3,
};

/* EXTERNAL AUTHENTICATE P1 (card spec §2.5). Bit 01 = C-MAC, bit 02 = C-DECRYPTION. SCP03
 * cards also accept 11/13/33 (R-MAC/R-ENC requested; never applied here, §4.6 item 5). */
#define CMN_SCP_LEVEL_NONE 0x00
#define CMN_SCP_LEVEL_MAC 0x01
#define CMN_SCP_LEVEL_MAC_ENC 0x03

/* Card status words the card side reports (card spec §1.4). */
#define CMN_SW_OK 0x9000
#define CMN_SW_CRYPTOGRAM 0x6300  /* host cryptogram wrong */
#define CMN_SW_WRONG_LENGTH 0x6700
#define CMN_SW_SECURITY 0x6982    /* bad/missing C-MAC, no session */
#define CMN_SW_CONDITIONS 0x6985  /* EXTERNAL AUTHENTICATE not right after INITIALIZE UPDATE */
#define CMN_SW_WRONG_DATA 0x6A80  /* bad key set data / KCV */
#define CMN_SW_WRONG_P1P2 0x6A86

/* One static key set of a card: what the card holds and what the TKS derives (§4.2).
 * SCP01/02: DES3 keys of 16 bytes; SCP03: AES keys of 16 or 32 bytes (all three the same
 * length). `kek` is the GP "KEK"/"DEK". */
struct cmn_keyset {
    uint8_t version;
    struct cmn_key enc, mac, kek;
};

/* Wipes the three keys. */
void cmn_keyset_wipe(struct cmn_keyset *ks);
/* Fills ks with the developer key 40..4F (§4.2) for the protocol (DES3 for SCP01/02,
 * AES-128 for SCP03 used undiversified) and the given version. */
void cmn_keyset_developer(struct cmn_keyset *ks, enum cmn_scp_proto proto, uint8_t version);

/* --- INITIALIZE UPDATE (§2.4) --- */

struct cmn_scp_iu {
    uint8_t kdd[10];
    uint8_t key_version;
    uint8_t scp_id;            /* byte 11: SCP01 key index (01), SCP02 02, SCP03 03 */
    uint8_t i_param;           /* SCP03 only */
    uint8_t seq[3];            /* SCP02: 2 bytes; SCP03: 3 bytes when i & 10 */
    size_t seq_len;            /* 0, 2 or 3 */
    uint8_t card_challenge[8]; /* SCP02: 6 bytes */
    size_t card_challenge_len; /* 8, or 6 for SCP02 */
    uint8_t card_cryptogram[8];
};

/* Builds `80 50 KV KI 08 host_challenge` (le: -1 none, 0 = send Le 00). [out] out. */
void cmn_scp_iu_apdu(uint8_t kv, uint8_t ki, const uint8_t host_challenge[8], int le,
                     struct cmn_apdu *out);
/* Parses an INITIALIZE UPDATE response's data (without SW) for proto: SCP01/02 exactly 28
 * bytes, SCP03 29 or 32 (sequence counter present iff 32). [out] iu, untouched on failure.
 * CMN_ESHORT / CMN_EPROTO on a wrong length. */
enum cmn_rc cmn_scp_iu_parse(enum cmn_scp_proto proto, const uint8_t *data, size_t n,
                             struct cmn_scp_iu *iu);
/* Card side: encodes iu as the response data for proto (28, 29 or 32 bytes; SCP03 writes the
 * counter iff seq_len == 3). [out] out (cap >= 32), out_len. */
enum cmn_rc cmn_scp_iu_encode(enum cmn_scp_proto proto, const struct cmn_scp_iu *iu, uint8_t *out,
                              size_t cap, size_t *out_len);

/* --- one open secure channel --- */

enum cmn_scp_state {
    CMN_SCP_NONE = 0, /* no session */
    CMN_SCP_INIT = 1, /* challenges known, session keys set, waiting for EXTERNAL AUTH */
    CMN_SCP_AUTH = 2, /* EXTERNAL AUTHENTICATE done; commands wrapped/unwrapped */
};

/* The state of one secure channel, host or card end. Caller-owned storage
 * (cmn_scp_init/cmn_scp_cleanup); holds session keys, so always clean up. One thread at a
 * time. Host and card ends run the same chaining code (wrap/unwrap share it). */
struct cmn_scp {
    enum cmn_scp_proto proto;
    enum cmn_scp_state state;
    uint8_t level;             /* EXTERNAL AUTHENTICATE P1 once AUTH */
    bool scp01_omit_le;        /* host: drop Le after the C-MAC on SCP01 (§9 item 1) */
    uint8_t host_challenge[8];
    uint8_t card_challenge[8]; /* SCP02: first 6 bytes */
    size_t card_challenge_len;
    uint8_t seq[2];            /* SCP02 sequence counter */
    /* Session keys. `dek` is the key for PUT KEY / key wrapping in this session: the static
     * KEK on SCP01 and SCP03, the session DEK (constant 0181) on SCP02. */
    struct cmn_key s_enc, s_mac, s_rmac, dek;
    uint8_t icv[16];     /* SCP01/02: last C-MAC (8 bytes); SCP03: MAC chaining value */
    uint8_t counter[16]; /* SCP03 C-DEC counter, incremented before every command */
};

/* Zeroes s and sets the protocol. CMN_EINVAL for an unknown protocol. */
enum cmn_rc cmn_scp_init(struct cmn_scp *s, enum cmn_scp_proto proto);
/* Wipes every key and chaining value; s is back to CMN_SCP_NONE (proto kept). */
void cmn_scp_cleanup(struct cmn_scp *s);

/* Records the challenges of this session (from the INITIALIZE UPDATE exchange) and, for
 * SCP02, the 2-byte sequence counter (seq NULL otherwise). card_challenge_len must be 8
 * (SCP01/03) or 6 (SCP02). Resets any previous session state (keys are kept). */
enum cmn_rc cmn_scp_set_challenges(struct cmn_scp *s, const uint8_t host_challenge[8],
                                   const uint8_t *card_challenge, size_t card_challenge_len,
                                   const uint8_t *seq);
/* Derives the session keys from the static card keys (card side, TKS double, tests) and
 * enters CMN_SCP_INIT. Needs cmn_scp_set_challenges() first. SCP01: S-ENC/S-MAC from the
 * derivation data, dek = static KEK; SCP02: constants 0182/0101/0102/0181; SCP03: KDF
 * constants 04/06/07, dek = static KEK. CMN_EINVAL if the keys do not suit the protocol. */
enum cmn_rc cmn_scp_derive(struct cmn_scp *s, const struct cmn_keyset *statics);
/* Host side: installs session keys already derived (by the TKS) and enters CMN_SCP_INIT.
 * enc and mac are required; rmac and dek may be NULL (then PUT KEY/wrapping is unavailable).
 * Keys are copied. CMN_EINVAL if algorithms/lengths do not suit the protocol. */
enum cmn_rc cmn_scp_set_session_keys(struct cmn_scp *s, const struct cmn_key *enc,
                                     const struct cmn_key *mac, const struct cmn_key *rmac,
                                     const struct cmn_key *dek);

/* Cryptograms of the current session (§4.3-4.5). Need session keys + challenges. */
enum cmn_rc cmn_scp_card_cryptogram(const struct cmn_scp *s, uint8_t out[8]);
enum cmn_rc cmn_scp_host_cryptogram(const struct cmn_scp *s, uint8_t out[8]);
/* Host: constant-time check of the card's cryptogram. CMN_EAUTH on mismatch. */
enum cmn_rc cmn_scp_verify_card_cryptogram(const struct cmn_scp *s, const uint8_t got[8]);

/* Host: builds EXTERNAL AUTHENTICATE `84 82 level 00 10 host_cryptogram C-MAC` (ICV/chain 0)
 * and enters CMN_SCP_AUTH with that level. host_cryptogram NULL = compute it from the session
 * keys (else use the TKS's value). level: 00, 01, 03 (SCP03 also 11, 13, 33).
 * [out] out (le -1). CMN_EINVAL on a bad level or a session not in CMN_SCP_INIT. */
enum cmn_rc cmn_scp_ext_auth_build(struct cmn_scp *s, uint8_t level,
                                   const uint8_t *host_cryptogram, struct cmn_apdu *out);
/* Host: wraps a plain command (its CLA is replaced by 84) into its wire form per protocol and
 * level: C-MAC with ICV chaining, C-DEC at level 03. Le is copied, never MACed (dropped on
 * SCP01 when scp01_omit_le). [in] plain, [out] wire (may not alias plain).
 * CMN_ETOOBIG if the wrapped data would exceed 255 bytes (plain lc limits: 239 at level
 * 03 for every protocol, 247 with MAC only); CMN_EINVAL if not in CMN_SCP_AUTH.
 * The chain advances only on success. */
enum cmn_rc cmn_scp_wrap(struct cmn_scp *s, const struct cmn_apdu *plain, struct cmn_apdu *wire);

/* Per-command options of cmn_scp_wrap_ex / cmn_scp_unwrap_ex. */
#define CMN_SCP_NO_ENC 0x01u       /* host: MAC only even at level 03 (SCP01/02 PUT KEY as
                                    * in the §5.3 vector: key data already KEK-encrypted) */
#define CMN_SCP_ACCEPT_PLAIN 0x02u /* card, SCP01/02 level 03: if the C-DEC reading fails,
                                    * also accept the MAC-only reading (PUT KEY, where the
                                    * TPS generations disagree) */
/* cmn_scp_wrap with options (CMN_SCP_NO_ENC). The SCP03 counter still advances. */
enum cmn_rc cmn_scp_wrap_ex(struct cmn_scp *s, const struct cmn_apdu *plain, unsigned flags,
                            struct cmn_apdu *wire);

/* Card: checks an EXTERNAL AUTHENTICATE command (CLA 84, INS 82) in CMN_SCP_INIT: level,
 * host cryptogram (constant time), C-MAC with ICV 0. On success enters CMN_SCP_AUTH and sets
 * *sw = 9000. On failure the session ends (CMN_SCP_NONE, keys wiped) and *sw says why:
 * 6985 (no INITIALIZE UPDATE before), 6A86 (level), 6700 (Lc not 16), 6300 (host cryptogram,
 * CMN_EAUTH), 6982 (C-MAC, CMN_EAUTH). */
enum cmn_rc cmn_scp_card_ext_auth(struct cmn_scp *s, const struct cmn_apdu *cmd, uint16_t *sw);
/* Card: unwraps a CLA 84 command in CMN_SCP_AUTH: verifies the C-MAC (constant time) and
 * decrypts at level 03 (SCP01/02: decrypt then verify over the plaintext; SCP03: verify over
 * the ciphertext then decrypt). [out] plain: CLA 84 kept, data/lc the plaintext, le copied.
 * On any failure: CMN_EAUTH (or CMN_EINVAL for a malformed field), *sw = 6982 and the
 * session ends (keys wiped). On success *sw = 9000. */
enum cmn_rc cmn_scp_unwrap(struct cmn_scp *s, const struct cmn_apdu *wire, struct cmn_apdu *plain,
                           uint16_t *sw);
/* cmn_scp_unwrap with options (CMN_SCP_ACCEPT_PLAIN). */
enum cmn_rc cmn_scp_unwrap_ex(struct cmn_scp *s, const struct cmn_apdu *wire, unsigned flags,
                              struct cmn_apdu *plain, uint16_t *sw);

/* --- PUT KEY key set data (§2.6, backends §3.9) --- */

/* Builds newVersion || 3 x [type len [clen] wrapped 03 KCV] for enc, mac, kek of `newks`
 * (newks->version = new version), each key wrapped with cmn_key_encrypt(wrap_key):
 * SCP01 wrap_key = current static KEK, SCP02 = session DEK, SCP03 = current static KEK.
 * SCP01/02: DES3-16 keys, types 81/80; SCP03: AES-128 (88 11 10) or AES-256 (88 21 20).
 * [out] out, out_len (67 bytes for SCP01/02, 70 for AES-128, 118 for AES-256). */
enum cmn_rc cmn_keyset_data_build(enum cmn_scp_proto proto, const struct cmn_key *wrap_key,
                                  const struct cmn_keyset *newks, uint8_t *out, size_t cap,
                                  size_t *out_len);
/* Card: parses key set data, unwraps each key with wrap_key and checks its KCV.
 * [out] ks (version = the new version), untouched on failure.
 * CMN_EINVAL on a malformed blob, CMN_EAUTH on a KCV mismatch: both map to SW 6A80. */
enum cmn_rc cmn_keyset_data_parse(enum cmn_scp_proto proto, const struct cmn_key *wrap_key,
                                  const uint8_t *data, size_t n, struct cmn_keyset *ks);

/* --- TKS <-> TPS key transport (backends §3.6, §3.8; card spec §3.4) --- */

/* Wraps a session key with the TPS<->TKS shared secret: DES3 secret → 3DES-ECB, AES secret →
 * AES-CBC zero IV. key->len must be whole blocks of the secret's cipher. [out] out
 * (cap >= key->len), out_len = key->len. */
enum cmn_rc cmn_scp_session_key_wrap(const struct cmn_key *shared, const struct cmn_key *key,
                                     uint8_t *out, size_t cap, size_t *out_len);
/* The reverse; the result gets algorithm `alg` and length n. [out] key. */
enum cmn_rc cmn_scp_session_key_unwrap(const struct cmn_key *shared, const uint8_t *wrapped,
                                       size_t n, enum cmn_key_alg alg, struct cmn_key *key);
/* encryptData: the 16-byte enrollment challenge under the static KEK (3DES-ECB for DES3,
 * AES-CBC zero IV for AES), and the card's decryption of it. */
enum cmn_rc cmn_scp_challenge_encrypt(const struct cmn_key *kek, const uint8_t in[16],
                                      uint8_t out[16]);
enum cmn_rc cmn_scp_challenge_decrypt(const struct cmn_key *kek, const uint8_t in[16],
                                      uint8_t out[16]);

#endif
