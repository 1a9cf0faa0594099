/* common/kdf.h - card (static) key diversification from a master key: VISA2, EMV, NIST
 * SP800-108, GP-KMC, none, and the TKS developer-key rule (card spec §4.2, backends §3.2). */
#ifndef CMN_KDF_H
#define CMN_KDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/rc.h"
#include "common/scp.h"

enum cmn_divers {
    CMN_DIVERS_NONE = 0,  /* static key = master key */
    CMN_DIVERS_VISA2 = 1, /* 3DES-ECB(MK, KDD0 KDD1 KDD4..7 F0 t KDD0 KDD1 KDD4..7 0F t) */
    CMN_DIVERS_EMV = 2,   /* 3DES-ECB(MK, KDD4..9 F0 t KDD4..9 0F t) */
    CMN_DIVERS_NIST = 3,  /* SP800-108 HMAC-SHA256 counter KDF, label 04, L 0180, parity */
    CMN_DIVERS_GPKMC = 4, /* AES-CMAC(MK, n 000000 c 00 0000 CUID6..9 CUID4..5 L) */
};

/* Key type t of the diversification data. */
enum cmn_kdf_type {
    CMN_KDF_ENC = 1,
    CMN_KDF_MAC = 2,
    CMN_KDF_KEK = 3,
    CMN_KDF_RMAC = 4, /* EMV/VISA2 only */
};

/* Parses a method name as the TKS config spells it (`prot3.divers`): "none", "visa2",
 * "emv", "gpkmc", and "nist" / "nistsp800-108" (ours). Case-insensitive. CMN_EINVAL else. */
enum cmn_rc cmn_kdf_divers_parse(const char *name, enum cmn_divers *out);

/* Diversifies one key of type t from master key mk.
 * - VISA2 / EMV: mk must be DES3; result 16 bytes, parity untouched, algorithm out_alg
 *   (DES3 for SCP01/02, AES when the card uses it as an AES-128 key: SCP03 DES3 profile).
 * - NIST: mk any length (the HMAC key is mk->v[0..len)); ctx = kdd (pass the CUID as kdd for
 *   nistSP800-108KdfUseCuidAsKdd); result DES3-16 with odd parity. RMAC refused.
 * - GPKMC: mk AES; uses cuid; result AES of mk's length.
 * - NONE: copy of mk with algorithm out_alg (length must suit it).
 * [out] out. CMN_EINVAL on an unsuitable key or method/type combination. */
enum cmn_rc cmn_kdf_diversify(enum cmn_divers method, const struct cmn_key *mk,
                              enum cmn_kdf_type t, const uint8_t kdd[10], const uint8_t cuid[10],
                              enum cmn_key_alg out_alg, struct cmn_key *out);

/* Diversifies a whole set (enc, mac, kek) with one master key per type (the TKS uses the
 * same master key for all three; developer sets use their three keys). version is copied.
 * [out] out, untouched on failure. */
enum cmn_rc cmn_kdf_diversify_set(enum cmn_divers method, const struct cmn_key *mk_enc,
                                  const struct cmn_key *mk_mac, const struct cmn_key *mk_kek,
                                  const uint8_t kdd[10], const uint8_t cuid[10],
                                  enum cmn_key_alg out_alg, uint8_t version,
                                  struct cmn_keyset *out);

/* The TKS's developer-key decision on KeyInfo (backends §3.1, card spec §4.2):
 * SCP01/02: (version 01 and index 01) or version FF; SCP03: version 01 or FF.
 * keyinfo_len 2 or 3; false for anything shorter. (Master-key mappings that rename #01#01
 * are the caller's business.) */
bool cmn_kdf_is_developer(enum cmn_scp_proto proto, const uint8_t *keyinfo, size_t keyinfo_len);

/* TKS configuration of one key set, with the shipped defaults from cmn_kdf_cfg_default(). */
struct cmn_kdf_cfg {
    uint8_t nist_on_version;      /* nistSP800-108KdfOnKeyVersion, default 00 */
    bool nist_use_cuid;           /* nistSP800-108KdfUseCuidAsKdd, default false */
    enum cmn_divers prot3_divers; /* prot3.divers (master keys), default EMV */
    enum cmn_divers prot3_dev;    /* prot3.diversVer1Keys, default EMV */
    enum cmn_key_alg prot3_dev_alg;    /* prot3.devKeyType, default DES3 */
    enum cmn_key_alg prot3_master_alg; /* prot3.masterKeyType, default DES3 */
};

void cmn_kdf_cfg_default(struct cmn_kdf_cfg *cfg);

/* What the TKS uses as the card's static keys for KeyInfo (backends §3.2):
 * - developer KeyInfo: SCP01/02 → `dev` as is; SCP03 → dev diversified per prot3_dev
 *   (EMV/VISA2 from DES3 dev keys, NONE/GPKMC on AES dev keys);
 * - otherwise `master` (required) diversified: SCP01 NIST when version >= nist_on_version,
 *   else VISA2; SCP02 VISA2; SCP03 per prot3_divers (NONE refused for a DES3 master).
 * dev: the developer keys of the key set (their alg as configured). version = KeyInfo[0].
 * [out] out. CMN_EINVAL on missing/unsuitable keys. */
enum cmn_rc cmn_kdf_card_keys(const struct cmn_kdf_cfg *cfg, enum cmn_scp_proto proto,
                              const uint8_t *keyinfo, size_t keyinfo_len,
                              const struct cmn_keyset *dev, const struct cmn_key *master,
                              const uint8_t kdd[10], const uint8_t cuid[10],
                              struct cmn_keyset *out);

#endif
