/* tokenclient/vtoken/card.h - private: the state of one emulated card and the handlers of the
 * card manager (gp.c), the CoolKey applet (applet.c) and the state file (state.c). */
#ifndef VT_CARD_H
#define VT_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/apdu.h"
#include "common/scp.h"
#include "tokenclient/vtoken/vtoken.h"

#define VT_MAX_KEYSETS 8
#define VT_MAX_PINS 8
#define VT_MAX_OBJECTS 64
#define VT_MAX_KEYSLOTS 24
#define VT_MAX_PACKAGES 8
#define VT_IOBUF_MAX 1024 /* applet I/O buffer (card spec §7.1: allow >= 600) */
#define VT_ISSUER_LEN 224
#define VT_PIN_MIN 4
#define VT_PIN_MAX 16
#define VT_AID_MAX 16

/* Identities (card spec §3.1). */
#define VT_ID_RA 0x4000
#define VT_ID_DEFAULT 0x8000

/* Applet status words (card spec §1.4). */
#define VT_SW_OK 0x9000
#define VT_SW_WRONG_LENGTH 0x6700
#define VT_SW_SECURITY 0x6982
#define VT_SW_CONDITIONS 0x6985
#define VT_SW_WRONG_DATA 0x6A80
#define VT_SW_NOT_FOUND_APP 0x6A82
#define VT_SW_WRONG_P1P2 0x6A86
#define VT_SW_REF_NOT_FOUND 0x6A88
#define VT_SW_INS 0x6D00
#define VT_SW_CLA 0x6E00
#define VT_SW_NO_MEMORY 0x9C01
#define VT_SW_AUTH_FAILED 0x9C02
#define VT_SW_NOT_ALLOWED 0x9C03
#define VT_SW_UNSUPPORTED 0x9C05
#define VT_SW_UNAUTHORIZED 0x9C06
#define VT_SW_OBJ_NOT_FOUND 0x9C07
#define VT_SW_OBJ_EXISTS 0x9C08
#define VT_SW_BAD_ALG 0x9C09
#define VT_SW_SIG_INVALID 0x9C0B
#define VT_SW_BLOCKED 0x9C0C
#define VT_SW_INVALID_PARAM 0x9C0F
#define VT_SW_BAD_P1 0x9C10
#define VT_SW_BAD_P2 0x9C11
#define VT_SW_SEQ_END 0x9C12
#define VT_SW_INTERNAL 0x9CFF

enum vt_sel {
    VT_SEL_ISD = 0,
    VT_SEL_APPLET = 1,
};

struct vt_pin {
    bool present;
    uint8_t len;
    uint8_t value[VT_PIN_MAX];
    uint8_t max_tries;
    uint8_t tries_left;
};

struct vt_object {
    uint32_t id;
    uint16_t acl[3]; /* read, write, delete */
    size_t size;
    uint8_t *data;   /* size bytes, zeroed at creation */
};

/* Key slot types reported by LIST KEYS (MUSCLE numbering; 0A is the ECC public key type
 * of the key blob the C++ TPS parses, 0B is this emulator's choice for the private half). */
#define VT_KEY_RSA_PUBLIC 1
#define VT_KEY_RSA_PRIVATE_CRT 3
#define VT_KEY_EC_PUBLIC 0x0A
#define VT_KEY_EC_PRIVATE 0x0B

/* True for the public half of a pair (stored as SubjectPublicKeyInfo). */
static inline bool
vt_key_is_public(uint8_t type)
{
    return type == VT_KEY_RSA_PUBLIC || type == VT_KEY_EC_PUBLIC;
}

struct vt_keyslot {
    bool present;
    uint8_t type;
    uint8_t mate;       /* the other half of the pair, or 0xFF */
    uint16_t bits;
    uint16_t acl[3];    /* read, write, use */
    EVP_PKEY *pkey;     /* the private or public key */
};

struct vt_card {
    /* persistent, card */
    char *path; /* state file, NULL = in memory only */
    int lock_fd; /* flock()ed STATE.lock while open, -1 = none */
    enum cmn_scp_proto proto;
    uint8_t cuid[10], msn[4];
    uint8_t atr[VT_ATR_MAX];
    size_t atr_len;
    struct cmn_keyset keysets[VT_MAX_KEYSETS];
    size_t nkeysets;
    uint8_t default_kv; /* version used for INITIALIZE UPDATE with KV 00 */
    uint32_t seq;       /* sequence counter, +1 per opened session */
    uint8_t scp03_i;
    uint8_t upgrade_major, upgrade_minor;
    uint32_t upgrade_build;
    uint8_t packages[VT_MAX_PACKAGES][VT_AID_MAX + 1]; /* [0] = length */
    size_t npackages;
    /* persistent, applet */
    bool applet_present;
    uint8_t applet_aid[VT_AID_MAX + 1]; /* [0] = length */
    uint8_t applet_major, applet_minor;
    uint32_t applet_build;
    uint8_t life_cycle;
    uint16_t mem_total;
    uint8_t issuer[VT_ISSUER_LEN];
    struct vt_pin pins[VT_MAX_PINS];
    struct vt_object objects[VT_MAX_OBJECTS]; /* list order: newest first */
    size_t nobjects;
    struct vt_keyslot keys[VT_MAX_KEYSLOTS];
    bool dirty; /* persistent state changed since the last save */

    /* transient (reset) */
    enum vt_sel sel;
    struct cmn_scp scp;
    uint8_t sess_kv; /* version of the key set of the current session */
    uint8_t nonce[8];
    bool nonce_valid;
    uint8_t logged[VT_MAX_PINS]; /* login count per PIN */
    bool loading;       /* INSTALL [for load] seen, load not complete */
    unsigned load_next; /* next LOAD block number */
    size_t load_bytes;
    uint8_t load_pkg[VT_AID_MAX + 1]; /* package of the pending load, [0] = length */
    /* transient (deselect) */
    uint8_t io[VT_IOBUF_MAX];
    size_t io_len;
    size_t list_obj_pos, list_key_pos;
    /* test hook */
    bool fixed_challenge;
    uint8_t challenge[8];
};

/* A response under construction: data then SW. */
struct vt_resp {
    uint8_t data[VT_RESP_MAX - 2];
    size_t len;
};

/* Appends n bytes to the response; false if it would not fit (caller answers 9CFF). */
bool vt_resp_put(struct vt_resp *r, const void *p, size_t n);

/* gp.c: commands handled by the card manager or by the secure-channel layer of any
 * application. Each returns the SW. */
uint16_t vt_gp_init_update(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r);
uint16_t vt_gp_ext_auth(struct vt_card *c, const struct cmn_apdu *a);
/* A command to the ISD (plain, or unwrapped when via_sc). */
uint16_t vt_gp_isd(struct vt_card *c, const struct cmn_apdu *a, bool via_sc, struct vt_resp *r);

/* applet.c: a command to the CoolKey applet. via_sc: arrived as CLA 84 and was unwrapped
 * (identity RA). */
uint16_t vt_applet_cmd(struct vt_card *c, const struct cmn_apdu *a, bool via_sc,
                       struct vt_resp *r);
/* Installs a fresh applet instance (no PINs, objects, keys; state 07). */
void vt_applet_install(struct vt_card *c, const uint8_t *aid, size_t aid_len, uint16_t mem);
/* Removes the applet and wipes its state. */
void vt_applet_remove(struct vt_card *c);
/* Clears the transient state of the applet (logins, I/O buffer, iterators). */
void vt_applet_deselect(struct vt_card *c);
/* Frees key slot n. */
void vt_keyslot_clear(struct vt_keyslot *k);
/* Puts a key pair (RSA or EC) into slots priv/pub with the ACL rule of card spec §3.4: private
 * use ACL 1 << user (or FFFF for user 15). Takes pkey whatever the result. Returns the SW. */
uint16_t vt_key_install_pair(struct vt_card *c, EVP_PKEY *pkey, unsigned priv, unsigned pub,
                             unsigned user);
/* Slots and key user of a GENERATE KEY P1/P2 (§3.4; 00/00 = legacy 0/1, owner F). Returns
 * the SW: 9C10 or 9C11 for slots the card does not have. */
uint16_t vt_key_slots(const struct cmn_apdu *a, unsigned *priv, unsigned *pub, unsigned *user);
/* Writes a 16-bit big-endian value to the response. */
bool vt_resp_put_u16(struct vt_resp *r, size_t v);
/* The input a COMPUTE command left in the I/O buffer (location 02): len(2) ‖ data.
 * [out] in, len (pointing into c->io). false when the buffer does not hold that. */
bool vt_io_input(const struct vt_card *c, const uint8_t **in, size_t *len);
/* The result of a COMPUTE command as len(2) ‖ out: in the response (location 01) or in the
 * I/O buffer (02). Returns the SW. */
uint16_t vt_crypt_output(struct vt_card *c, struct vt_resp *r, uint8_t loc, const uint8_t *out,
                         size_t n);

/* ecc.c: the ECC instructions of the CoolKey applet (docs/vtoken.md "ECC"). */
/* GENERATE KEY ECC (84 0D): key pair on P-256 or P-384, I/O buffer = blob and ECDSA proof. */
uint16_t vt_ecc_generate_key(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r);
/* COMPUTE ECC SIGNATURE / KEY AGREEMENT (B0 37, B0 38; nonce already removed from a).
 * ids: identities of the caller. */
uint16_t vt_ecc_compute(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids,
                        struct vt_resp *r);
/* Object helpers. */
struct vt_object *vt_object_find(struct vt_card *c, uint32_t id);
void vt_object_delete(struct vt_card *c, uint32_t id);
size_t vt_mem_free(const struct vt_card *c);

/* card.c */
struct cmn_keyset *vt_keyset_find(struct vt_card *c, uint8_t version);
/* Allocates an empty card with nothing set (all-zero state). */
struct vt_card *vt_card_alloc(void);
void vt_card_clear_transient(struct vt_card *c);

/* state.c */
enum cmn_rc vt_state_load(struct vt_card *c, const char *path, char *err, size_t err_size);
enum cmn_rc vt_state_save(struct vt_card *c, char *err, size_t err_size);

#endif
