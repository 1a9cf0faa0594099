/* common/apdu.h - ISO 7816 command and response APDUs that carry their own lengths; builders for
 * every GlobalPlatform and CoolKey command the TPS, the token client and vtoken use; bounded
 * parsers for their responses; the status-word table; applet version text. */
#ifndef CMN_APDU_H
#define CMN_APDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

#define CMN_APDU_MAX_DATA 255 /* short APDUs only (card spec §8.2) */
#define CMN_APDU_MAX_WIRE (5 + CMN_APDU_MAX_DATA + 1)
#define CMN_RAPDU_MAX_DATA 256

/* A command APDU. `lc` is the number of bytes in data; `le` is -1 when absent, else the
 * expected length 0..256 (256 travels as 00). */
struct cmn_apdu {
    uint8_t cla, ins, p1, p2;
    uint8_t data[CMN_APDU_MAX_DATA];
    size_t lc;
    int le;
};

/* A response APDU: data then the status word. */
struct cmn_rapdu {
    uint8_t data[CMN_RAPDU_MAX_DATA];
    size_t len;
    uint16_t sw;
};

/* Encodes a by its case (1: no data no Le, 2: Le, 3: data, 4: data + Le) into out.
 * [out] out, out_len. CMN_EINVAL if lc > 255 or le out of range; CMN_ETOOBIG if out_size is
 * too small. Never writes past out_size. */
enum cmn_rc cmn_apdu_encode(const struct cmn_apdu *a, uint8_t *out, size_t out_size,
                            size_t *out_len);

/* Decodes a command as a card must (card spec §1.2): n=4 case 1; n=5 case 2 (P3 = Le);
 * n=5+P3 case 3; n=6+P3 case 4. `00 A4 04 00` with no P3 is SELECT with an empty AID.
 * [out] a. CMN_EINVAL when the length matches no case. */
enum cmn_rc cmn_apdu_decode(const uint8_t *in, size_t n, struct cmn_apdu *a);

/* Splits a card answer into data and SW. CMN_ESHORT if n < 2, CMN_ETOOBIG if the data
 * exceeds CMN_RAPDU_MAX_DATA. */
enum cmn_rc cmn_rapdu_decode(const uint8_t *in, size_t n, struct cmn_rapdu *r);

/* Encodes data || SW into out. */
enum cmn_rc cmn_rapdu_encode(const struct cmn_rapdu *r, uint8_t *out, size_t out_size,
                             size_t *out_len);


/* Wipes a command (it may hold a PIN, a wrapped key or a cryptogram). */
void cmn_apdu_wipe(struct cmn_apdu *a);

/* ------------------------------------------------------------------------------------------
 * Builders. Each fills *a completely (any earlier content is overwritten) and returns CMN_OK,
 * or CMN_EINVAL / CMN_ETOOBIG for arguments outside the documented range; *a is then wiped.
 * None of them allocates; all are thread-safe on distinct *a.
 *
 * Classes (card spec §1.1): GP commands without secure messaging use CLA 80, ISO SELECT 00,
 * CoolKey read-only commands B0. Commands that must travel under the secure channel are built
 * as *plain* commands with CLA 84 and the plaintext data: the secure-channel code computes the
 * C-MAC, encrypts if needed and rewrites Lc. Their Le trailer is chosen with `le`.
 *
 * Le rules (card spec §1.2, §9 item 1): the `le` flag appends Le = 00 (le = 256). The Java TPS
 * appends it to SELECT by AID, READ OBJECT, GENERATE KEY, PUT KEY (SCP02/03) and the GP 2.1.1
 * DELETE / INSTALL; we do the same except after a C-MAC on SCP01: use cmn_apdu_secure_le().
 * Case-2 commands always carry their exact expected Le (GET DATA 2D, GET STATUS 10, ...).
 *
 * CoolKey "nonce" commands (card spec §3.1): builders taking `const uint8_t nonce[8]` build the
 * CLA 84 secure form when nonce is NULL, and the CLA B0 form with the 8 nonce bytes appended
 * (all zero = anonymous identity 15, or the VERIFY PIN nonce) when it is not.
 * ------------------------------------------------------------------------------------------ */

#define CMN_APDU_NONCE_LEN 8
#define CMN_CK_ISSUER_INFO_LEN 224 /* card spec §6.5 */
#define CMN_CK_IOBUF_ID 0xFFFFFFFFu /* keygen output object (§3.4) */
#define CMN_CK_PIN_MAX 32           /* builders refuse longer PINs (the applet takes 4..16) */

/* GET DATA tags (card spec §2.3). */
#define CMN_GP_TAG_CPLC 0x9F7Fu
#define CMN_GP_TAG_CRD 0x0066u     /* card recognition data */
#define CMN_GP_TAG_KEYINFO 0x00E0u /* key information template */

/* Well-known AIDs (card spec §2.1). */
extern const uint8_t cmn_aid_isd_gp201[7];  /* A0 00 00 00 03 00 00 */
extern const uint8_t cmn_aid_isd_gp211[8];  /* A0 00 00 00 03 00 00 00 */
extern const uint8_t cmn_aid_isd_gp22[7];   /* A0 00 00 01 51 00 00 */
extern const uint8_t cmn_aid_coolkey[7];    /* 62 76 01 FF 00 00 00 (instance) */
extern const uint8_t cmn_aid_coolkey_pkg[6]; /* 62 76 01 FF 00 00 (load file) */
#define CMN_AID_MAX 16

/* Applet life-cycle states (card spec §2.8). */
#define CMN_CK_LC_DELETED 0x00
#define CMN_CK_LC_INSTALLED 0x03
#define CMN_CK_LC_SELECTABLE 0x07
#define CMN_CK_LC_PERSONALIZED 0x0F
#define CMN_CK_LC_BLOCKED 0x7F
#define CMN_CK_LC_LOCKED 0xFF

/* True when a MACed command of secure channel protocol `scp` (1, 2 or 3) gets Le 00:
 * SCP02/SCP03 yes, SCP01 no (card spec §9 item 1). */
bool cmn_apdu_secure_le(unsigned scp);

/* SELECT by AID: 00 A4 04 00 Lc AID [00]. aid_len 1..16 (CMN_EINVAL otherwise). */
enum cmn_rc cmn_apdu_select_aid(struct cmn_apdu *a, const uint8_t *aid, size_t aid_len, bool le);
/* SELECT the default application (ISD), Java "select default": 00 A4 04 00 00 (§2.2). */
enum cmn_rc cmn_apdu_select_default(struct cmn_apdu *a);
/* GET DATA: 80 CA tag_hi tag_lo 2D (CMN_GP_TAG_*; §2.3). */
enum cmn_rc cmn_apdu_get_data(struct cmn_apdu *a, uint16_t tag);
/* GET RESPONSE for a T=0 relay: 00 C0 00 00 le (le 1..256; §1.3). */
enum cmn_rc cmn_apdu_get_response(struct cmn_apdu *a, unsigned le);
/* INITIALIZE UPDATE: 80 50 KV KI 08 host_challenge [00] (§2.4). */
enum cmn_rc cmn_apdu_init_update(struct cmn_apdu *a, uint8_t key_version, uint8_t key_index,
                                 const uint8_t host_challenge[8], bool le);
/* EXTERNAL AUTHENTICATE, plain: 84 82 level 00 08 host_cryptogram (the secure channel appends
 * the C-MAC, making Lc 10). level: 00, 01, 03, 11, 13 or 33 (§2.5), else CMN_EINVAL. */
enum cmn_rc cmn_apdu_ext_auth(struct cmn_apdu *a, uint8_t level, const uint8_t host_cryptogram[8]);
/* PUT KEY, plain: 84 D8 p1 p2 Lc key_set_data [00] (§2.6). p1 = version replaced (FF sent as
 * 00 by the caller), p2 normally 81. len 1..(255-8). */
enum cmn_rc cmn_apdu_put_key(struct cmn_apdu *a, uint8_t p1, uint8_t p2, const uint8_t *keyset,
                             size_t len, bool le);
/* DELETE by AID: 84 E4 00 P2 Lc 4F len AID [00]; P2 80 when gp211 (§2.7). */
enum cmn_rc cmn_apdu_delete(struct cmn_apdu *a, const uint8_t *aid, size_t aid_len, bool gp211,
                            bool le);
/* DELETE KEY (G&D key-size rollover): 84 E4 00 00 03 D2 01 version (§2.6). */
enum cmn_rc cmn_apdu_delete_keys(struct cmn_apdu *a, uint8_t key_version);
/* INSTALL [for load]: 84 E6 02 00 Lc len(pkg) pkg len(sd) sd 00 06 EF 04 C6 02 HH LL 00 [00],
 * HHLL = file_len + 24 + sd_len (§2.7). sd may be NULL with sd_len 0 (SCP01). CMN_ETOOBIG when
 * HHLL exceeds FFFF. */
enum cmn_rc cmn_apdu_install_load(struct cmn_apdu *a, const uint8_t *pkg, size_t pkg_len,
                                  const uint8_t *sd, size_t sd_len, size_t file_len, bool le);
/* INSTALL [for install and make selectable]: 84 E6 0C 00 Lc len(pkg) pkg len(mod) mod
 * len(inst) inst 01 00 0C EF 04 C8 02 II II C9 04 00 02 MM MM 00 [00] (§2.7); the CoolKey
 * defaults are cmn_aid_coolkey_pkg, cmn_aid_coolkey twice, 18000 and 5000. */
enum cmn_rc cmn_apdu_install_install(struct cmn_apdu *a, const uint8_t *pkg, size_t pkg_len,
                                     const uint8_t *module, size_t module_len,
                                     const uint8_t *instance, size_t instance_len,
                                     uint16_t instance_size, uint16_t applet_memory, bool le);

/* LOAD: the load file wrapped in C4 ‖ BER length (§2.7), cut into blocks. The iterator borrows
 * `file` until done; it holds no other resource. */
struct cmn_apdu_loader {
    const uint8_t *file;
    size_t file_len;
    size_t block;     /* data bytes per LOAD */
    size_t total;     /* header + file_len */
    size_t off;       /* bytes of (header ‖ file) already emitted */
    uint8_t hdr[4];   /* C4 + BER length */
    size_t hdr_len;
    unsigned next_no; /* P2 of the next block */
};
/* Block data size for LOAD: channel.blocksize - 16 when SCP01 with encryption (C-DEC level 03),
 * else - 8 (§2.7). Returns 0 when blocksize is too small to be usable. */
size_t cmn_apdu_load_block_size(size_t channel_blocksize, unsigned scp, bool encrypted);
/* [out] ld. CMN_EINVAL if block is 0 or > 255 or file_len is 0 or > 65535; CMN_ETOOBIG if more
 * than 256 blocks would be needed (P2 is one byte). */
enum cmn_rc cmn_apdu_load_init(struct cmn_apdu_loader *ld, const uint8_t *file, size_t file_len,
                               size_t block);
/* Number of LOAD commands the file needs. */
unsigned cmn_apdu_load_count(const struct cmn_apdu_loader *ld);
/* Builds the next LOAD: 84 E8 P1 blk Lc data, P1 80 on the last block. CMN_ENOTFOUND when every
 * block has been built. [out] a, *last (may be NULL). */
enum cmn_rc cmn_apdu_load_next(struct cmn_apdu_loader *ld, struct cmn_apdu *a, bool *last);

/* SET LIFE CYCLE (applet): 84 F0 state 00 (§2.8). */
enum cmn_rc cmn_apdu_set_lifecycle(struct cmn_apdu *a, uint8_t state);
/* GET LIFE CYCLE: B0 F2 00 00 le; le 1 (Java TPS) or 4 (coolkey), else CMN_EINVAL. */
enum cmn_rc cmn_apdu_get_lifecycle(struct cmn_apdu *a, unsigned le);
/* GET STATUS: B0 3C 00 00 10. */
enum cmn_rc cmn_apdu_get_status(struct cmn_apdu *a);
/* GET VERSION (build id): B0 70 00 00 04. */
enum cmn_rc cmn_apdu_get_version(struct cmn_apdu *a);
/* GET ISSUER INFO: B0 F6 00 00 E0. */
enum cmn_rc cmn_apdu_get_issuer_info(struct cmn_apdu *a);
/* SET ISSUER INFO: 84 F4 00 00 E0 + info zero-padded to 224 bytes (§6.5). len 0..224. */
enum cmn_rc cmn_apdu_set_issuer_info(struct cmn_apdu *a, const uint8_t *info, size_t len);
/* LIST OBJECTS: B0 58 (first ? 00 : 01) 00 0E. */
enum cmn_rc cmn_apdu_list_objects(struct cmn_apdu *a, bool first);
/* LIST PINS: B0 48 00 00 02. */
enum cmn_rc cmn_apdu_list_pins(struct cmn_apdu *a);
/* LIST KEYS: B0 3A (first ? 00 : 01) 00 0B. */
enum cmn_rc cmn_apdu_list_keys(struct cmn_apdu *a, bool first);
/* GET PIN TRIES: B0 4A pin 00 01. */
enum cmn_rc cmn_apdu_get_pin_tries(struct cmn_apdu *a, uint8_t pin_no);
/* READ OBJECT: 84 56 00 00 09 id off n [00] | B0 56 00 00 11 id off n nonce. n 1..255. */
enum cmn_rc cmn_apdu_read_object(struct cmn_apdu *a, uint32_t id, uint32_t offset, unsigned n,
                                 const uint8_t *nonce, bool le);
/* WRITE OBJECT: 84 54 00 00 Lc id off n data | B0 54 ... data nonce. n >= 1 and the whole
 * data field must fit in 255 bytes (n <= 246, or 238 with a nonce); CMN_ETOOBIG otherwise. */
enum cmn_rc cmn_apdu_write_object(struct cmn_apdu *a, uint32_t id, uint32_t offset,
                                  const uint8_t *data, size_t n, const uint8_t *nonce);
/* CREATE OBJECT: 84 5A 00 00 0E id size rACL wACL dACL | B0 5A ... nonce (§3.2). */
enum cmn_rc cmn_apdu_create_object(struct cmn_apdu *a, uint32_t id, uint32_t size,
                                   uint16_t acl_read, uint16_t acl_write, uint16_t acl_delete,
                                   const uint8_t *nonce);
/* DELETE OBJECT: B0 52 00 P2 0C id nonce | 84 52 00 P2 04 id; P2 01 when zero_first. */
enum cmn_rc cmn_apdu_delete_object(struct cmn_apdu *a, uint32_t id, bool zero_first,
                                   const uint8_t *nonce);
/* CREATE PIN: 84 40 pin maxTries Lc PIN. pin_len 1..CMN_CK_PIN_MAX. The PIN is in a->data:
 * cmn_apdu_wipe() it after use. */
enum cmn_rc cmn_apdu_create_pin(struct cmn_apdu *a, uint8_t pin_no, uint8_t max_tries,
                                const uint8_t *pin, size_t pin_len);
/* SET PIN (reset): 84 04 pin 00 Lc newPIN. Same limits and wiping as CREATE PIN. */
enum cmn_rc cmn_apdu_set_pin(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *pin,
                             size_t pin_len);
/* VERIFY PIN: B0 42 pin 00 Lc PIN [08]. Same limits and wiping. */
enum cmn_rc cmn_apdu_verify_pin(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *pin,
                                size_t pin_len, bool le);
/* CHANGE PIN: B0 44 pin 00 Lc lenOld old lenNew new (1-byte lengths, §9 item 7). */
enum cmn_rc cmn_apdu_change_pin(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *old_pin,
                                size_t old_len, const uint8_t *new_pin, size_t new_len);
/* LOGOUT: B0 61 pin 00 [nonce]; nonce NULL sends no data. */
enum cmn_rc cmn_apdu_logout(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *nonce);
/* GET RANDOM: B0 72 00 00 n, n 1..256 (256 as 00). */
enum cmn_rc cmn_apdu_get_random(struct cmn_apdu *a, unsigned n);
/* GET BUILTIN ACL: B0 FA 00 00 07. */
enum cmn_rc cmn_apdu_get_builtin_acl(struct cmn_apdu *a);

/* GENERATE KEY parameters (card spec §3.4). */
struct cmn_ck_keygen {
    uint8_t key_user;  /* 0..7 PIN, 0xF anyone: high nibble of P1 */
    uint8_t priv_no;   /* private key slot: low nibble of P1 */
    uint8_t key_usage; /* high nibble of P2 */
    uint8_t pub_no;    /* public key slot: low nibble of P2 */
    uint8_t alg;       /* 80 RSA, 81 RSA with key check */
    uint16_t key_bits; /* 1024 or 2048 */
    uint8_t option;    /* 00 */
    uint8_t type;      /* 00 (Java) or = alg (C++) */
    uint8_t wrapped_challenge[16]; /* challenge encrypted under the static KEK (TKS) */
};
/* GENERATE KEY: 84 0C P1 P2 17 alg keySize(2) option type 10 wrappedChallenge(16) 00 [00].
 * CMN_EINVAL when a nibble field exceeds 0x0F or key_bits is 0. */
enum cmn_rc cmn_apdu_generate_key(struct cmn_apdu *a, const struct cmn_ck_keygen *kg, bool le);

/* IMPORT KEY ENCRYPTED: 84 0A P1 P2 Lc objectId(4) alg(1) len(1) wrapped(len) kcvLen(1) kcv
 * ivLen(1) iv(8) (§3.5). p1/p2 = private/public slot bytes. Sizes must fit 255 bytes. */
enum cmn_rc cmn_apdu_import_key_enc(struct cmn_apdu *a, uint8_t p1, uint8_t p2,
                                    uint32_t object_id, uint8_t alg, const uint8_t *wrapped,
                                    size_t wrapped_len, const uint8_t *kcv, size_t kcv_len,
                                    const uint8_t iv[8]);
/* CLEAR KEY SLOTS: 84 55 00 00 Lc slot... (slots to keep; n 1..255). */
enum cmn_rc cmn_apdu_clear_key_slots(struct cmn_apdu *a, const uint8_t *slots, size_t n);
/* COMPUTE CRYPT one-step: B0 36 key 04 Lc mode dir loc len(2) data nonce (§3.6). loc 01: data
 * in the APDU (len 1..(255-13)); loc 02: data in the I/O buffer (data NULL, len 0). nonce is
 * required (8 bytes). */
enum cmn_rc cmn_apdu_compute_crypt(struct cmn_apdu *a, uint8_t key_no, uint8_t mode, uint8_t dir,
                                   uint8_t loc, const uint8_t *data, size_t len,
                                   const uint8_t nonce[8]);

/* ------------------------------------------------------------------------------------------
 * Response parsers. Each takes the response data (without SW) as borrowed bytes, reads them
 * only through a struct cmn_rd, never over-reads, fills *out only on CMN_OK, and returns
 * CMN_ESHORT (too short), CMN_EPROTO (wrong length or structure) or CMN_ENOTFOUND as noted.
 * Pointers in outputs borrow the input. Thread-safe.
 * ------------------------------------------------------------------------------------------ */

/* FCI of SELECT default (§2.2): finds tag 84 inside a leading 6F template. [out] aid (up to
 * CMN_AID_MAX bytes), *aid_len. CMN_ENOTFOUND when the answer is empty, has no 6F, or 6F has
 * no 84 (the TPS then uses its first configured ISD AID); CMN_EPROTO on a broken TLV. */
enum cmn_rc cmn_fci_parse_aid(const uint8_t *data, size_t len, uint8_t aid[CMN_AID_MAX],
                              size_t *aid_len);

/* CPLC (GET DATA 9F7F, §2.3): CUID = d[3..6] ‖ d[19..20] ‖ d[15..18], MSN = d[41..44].
 * Needs at least 45 bytes (the tag is not checked: the test client's emulator writes 01 00 01).
 */
struct cmn_cplc {
    uint8_t cuid[10];
    uint8_t msn[4];
};
enum cmn_rc cmn_cplc_parse(const uint8_t *data, size_t len, struct cmn_cplc *out);

/* Card recognition data (GET DATA 0066, §2.3). */
struct cmn_gp_crd {
    bool fallback;      /* true: the Java rules chose GP 2.0.1 + SCP01 without parsing */
    uint8_t gp_version[3]; /* e.g. 2 1 1 (from the 60 OID; 2 0 1 on fallback) */
    uint8_t scp;        /* 1, 2 or 3 */
    uint8_t i;          /* implementation option (0 on fallback) */
};
/* sw is the status word of the GET DATA 0066 answer. Java fallback rules: sw != 9000, answer
 * with SW shorter than 5 bytes, data[1] == 00 or data[1] >= len+2 → CMN_OK with fallback = true
 * and SCP01. Otherwise the 66/73 template is walked; CMN_EPROTO if broken or without a 64 OID,
 * CMN_EUNSUPP for a protocol other than 01/02/03 or SCP02 with i != 15. When the following
 * GET DATA 00E0 fails, the caller falls back to SCP01 too. */
enum cmn_rc cmn_gp_crd_parse(const uint8_t *data, size_t len, uint16_t sw,
                             struct cmn_gp_crd *out);

/* Key information template (GET DATA 00E0, §2.3): E0 L { C0 04 id version type len }. */
#define CMN_GP_KEYINFO_MAX 32
struct cmn_gp_keyinfo {
    size_t n;
    struct {
        uint8_t id, version, type, len;
    } e[CMN_GP_KEYINFO_MAX];
};
/* CMN_EPROTO when L is not a multiple of 6, an entry is not C0 04, or L overruns the data;
 * CMN_ETOOBIG beyond CMN_GP_KEYINFO_MAX entries. */
enum cmn_rc cmn_gp_keyinfo_parse(const uint8_t *data, size_t len, struct cmn_gp_keyinfo *out);

/* INITIALIZE UPDATE response (§2.4). */
struct cmn_gp_iu {
    uint8_t kdd[10];
    uint8_t key_version;
    uint8_t protocol;       /* byte 11: key index (SCP01) or SCP id 02/03 */
    uint8_t scp;            /* 1, 2 or 3: how the answer was read */
    uint8_t i;              /* SCP03 only */
    uint8_t seq[3];         /* SCP02: 2 bytes; SCP03 (32-byte answer): 3 bytes */
    size_t seq_len;
    uint8_t card_challenge[8];
    size_t challenge_len;   /* 8, or 6 for SCP02 */
    uint8_t card_cryptogram[8];
};
/* scp: 1, 2 or 3 = the protocol expected (from cmn_gp_crd_parse), 0 = decide from the answer
 * (29/32 bytes → SCP03, 28 bytes with byte 11 = 02 → SCP02, other 28 → SCP01). SCP01/02 need
 * exactly 28 bytes, SCP03 29 or 32; CMN_EPROTO otherwise. [out] out (holds the cryptogram:
 * wipe when done). */
enum cmn_rc cmn_gp_iu_parse(const uint8_t *data, size_t len, unsigned scp, struct cmn_gp_iu *out);

/* GET STATUS (16 bytes exactly, §3.3). */
struct cmn_ck_status {
    uint8_t proto_major, proto_minor;
    uint8_t applet_major, applet_minor;
    uint32_t total_mem, free_mem;
    uint8_t num_pins, num_keys;
    uint16_t logged_ids;
};
enum cmn_rc cmn_ck_status_parse(const uint8_t *data, size_t len, struct cmn_ck_status *out);

/* GET VERSION: exactly 4 bytes → build id. */
enum cmn_rc cmn_ck_version_parse(const uint8_t *data, size_t len, uint32_t *build_id);

/* GET LIFE CYCLE: 1 byte (state) or 4 bytes (state, pin enabled/writable, proto major, minor). */
struct cmn_ck_lifecycle {
    uint8_t state;
    bool extended; /* 4-byte form */
    uint8_t flags, proto_major, proto_minor;
};
enum cmn_rc cmn_ck_lifecycle_parse(const uint8_t *data, size_t len, struct cmn_ck_lifecycle *out);

/* LIST OBJECTS entry: exactly 14 bytes. (SW 9C12 ends the list: check it before parsing.) */
struct cmn_ck_object {
    uint32_t id, size;
    uint16_t acl_read, acl_write, acl_delete;
};
enum cmn_rc cmn_ck_object_parse(const uint8_t *data, size_t len, struct cmn_ck_object *out);

/* LIST PINS: 2 bytes → mask, bit n = PIN n exists. */
enum cmn_rc cmn_ck_pins_parse(const uint8_t *data, size_t len, uint16_t *mask);

/* VERIFY PIN: 8 bytes → login nonce. [out] nonce (a credential: wipe when done). */
enum cmn_rc cmn_ck_nonce_parse(const uint8_t *data, size_t len, uint8_t nonce[8]);

/* GENERATE KEY response: exactly 2 bytes → total length of the I/O buffer. */
enum cmn_rc cmn_ck_keygen_len_parse(const uint8_t *data, size_t len, uint16_t *total);

/* GENERATE KEY I/O buffer (object FFFFFFFF, §3.4): blobLen(2) blob proofLen(2) proof, with
 * blob = 00 01 keySize(2) modLen(2) modulus expLen(2) exponent. Trailing bytes after the proof
 * are refused. All pointers borrow `data`. */
struct cmn_ck_keygen_out {
    const uint8_t *blob;
    size_t blob_len;
    const uint8_t *proof;
    size_t proof_len;
    uint16_t key_bits;
    const uint8_t *modulus;
    size_t mod_len;
    const uint8_t *exponent;
    size_t exp_len;
};
enum cmn_rc cmn_ck_keygen_parse(const uint8_t *data, size_t len, struct cmn_ck_keygen_out *out);

/* COMPUTE CRYPT response: len(2) ‖ result; [out] *result borrows data. */
enum cmn_rc cmn_ck_crypt_parse(const uint8_t *data, size_t len, const uint8_t **result,
                               size_t *result_len);

/* GET ISSUER INFO (224 bytes): copies the text before the first 00 into out as a C string.
 * CMN_EPROTO for a non-printable byte before the 00, CMN_ETOOBIG if out_size is too small. */
enum cmn_rc cmn_ck_issuer_info_parse(const uint8_t *data, size_t len, char *out, size_t out_size);

/* GET BUILTIN ACL: exactly 7 bytes → create object/key/PIN ACLs and change-enable byte. */
struct cmn_ck_builtin_acl {
    uint16_t create_object, create_key, create_pin;
    uint8_t change_enable;
};
enum cmn_rc cmn_ck_builtin_acl_parse(const uint8_t *data, size_t len,
                                     struct cmn_ck_builtin_acl *out);

/* ------------------------------------------------------------------------------------------
 * Status words (card spec §1.4), one table like OpenSC's iso7816_errors[].
 * ------------------------------------------------------------------------------------------ */

/* Short name of sw, e.g. "SW_AUTH_FAILED", "SW_OK"; "SW_UNKNOWN" when not in the table.
 * Classes are recognised: 61xx "SW_MORE_DATA", 6Cxx "SW_WRONG_LE", 63Cx "SW_VERIFY_FAILED".
 * Static, never NULL, thread-safe. */
const char *cmn_sw_name(uint16_t sw);
/* Human message, e.g. "authentication failed (wrong PIN; tries decremented)". Never NULL. */
const char *cmn_sw_str(uint16_t sw);
/* Writes "9C02 SW_AUTH_FAILED: authentication failed (...)" into out (truncated to fit,
 * always NUL-terminated when out_size > 0). Returns out. */
const char *cmn_sw_format(uint16_t sw, char *out, size_t out_size);
/* CMN_OK for 9000, else CMN_ECARD. */
enum cmn_rc cmn_sw_rc(uint16_t sw);

/* ------------------------------------------------------------------------------------------
 * Applet version text (tps-protocol.md §6.1, §8): "major.minor.buildidhex", build id as 8
 * lowercase hex digits, e.g. "1.4.58768072".
 * ------------------------------------------------------------------------------------------ */
#define CMN_APPLET_VERSION_SIZE 17 /* "255.255.ffffffff" + NUL */
/* [out] out (out_size >= CMN_APPLET_VERSION_SIZE, else CMN_ETOOBIG and out is ""). */
enum cmn_rc cmn_applet_version_format(uint8_t major, uint8_t minor, uint32_t build_id, char *out,
                                      size_t out_size);
/* Case-insensitive equality of two version texts (C++ writes uppercase hex). NULL never
 * equals anything. */
bool cmn_applet_version_eq(const char *a, const char *b);

#endif
