/* tokenclient/vtoken/vtoken.h - vtoken, an emulated CoolKey card (GlobalPlatform card manager +
 * CoolKey applet v1.4, card spec §7) usable in process and behind vpcd (card spec §8).
 *
 * Threads: a struct vt_card may be used by one thread at a time (the caller serialises);
 * different cards are independent and may run on different threads at once. Nothing in the
 * library has global mutable state. */
#ifndef VT_VTOKEN_H
#define VT_VTOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/crypto.h"
#include "common/rc.h"
#include "common/scp.h"

#define VT_ATR_MAX 33
#define VT_RESP_MAX 1024 /* largest response vt_card_transmit() produces (data + SW) */

/* The factory settings of a new card. Start from vt_config_default() and change fields, or
 * feed `key=value` lines to vt_config_set(). */
struct vt_config {
    enum cmn_scp_proto proto; /* secure channel the card speaks: 1, 2 or 3 */
    uint8_t cuid[10];         /* CUID = KDD (card spec §2.3) */
    uint8_t msn[4];           /* CPLC IC personalization equipment ID */
    uint8_t atr[VT_ATR_MAX];
    size_t atr_len;
    uint8_t key_version;      /* version of the factory key set (default 01) */
    struct cmn_key enc, mac, kek; /* factory static keys (default 40..4F, DES3 or AES) */
    bool keys_set;            /* enc/mac/kek given explicitly (else developer keys) */
    uint8_t applet_major, applet_minor; /* applet version at the factory */
    uint32_t applet_build;    /* GET VERSION build ID */
    uint8_t upgrade_major, upgrade_minor; /* version an INSTALL [for install] gives (§7.3) */
    uint32_t upgrade_build;
    bool applet_present;      /* factory card carries the CoolKey instance (state 07) */
    uint8_t scp03_i;          /* SCP03 implementation option i (70: 3-byte counter) */
    uint32_t seq;             /* SCP02/03 sequence counter reported by the next INIT UPDATE */
    uint16_t mem_total;       /* applet object memory (GET STATUS total), < 8000 */
};

/* Fills c with the factory defaults: SCP01, CUID 40907901001F12345678, MSN 00000001, ATR
 * 3B 96 13 81 01 FF 62 76 01 00 00 EF, developer keys version 01, applet 1.4.58768072
 * present, upgrade version the same, SCP03 i = 70, counter 0001, memory 4000. */
void vt_config_default(struct vt_config *c);

/* Sets one setting by name (the names of `vtoken --set` and of docs/vtoken.md):
 * proto (1|2|3), cuid (20 hex), msn (8 hex), atr (hex), key.version (hex byte),
 * key.enc / key.mac / key.kek (32 or 64 hex; AES when proto is 3), applet.version
 * (major.minor.buildhex), applet.upgrade (same form), applet.present (0|1), scp03.i (hex),
 * seq (decimal), memory (decimal 512..32767). [in,out] c. [out] err (a message naming the
 * key). CMN_EINVAL on an unknown key or a bad value (c is then unchanged for that key). */
enum cmn_rc vt_config_set(struct vt_config *c, const char *key, const char *value, char *err,
                          size_t err_size);

/* Finalises a config after vt_config_set() calls: fills developer keys of the protocol's
 * algorithm when none were given. CMN_EINVAL if given keys do not suit the protocol. */
enum cmn_rc vt_config_finish(struct vt_config *c, char *err, size_t err_size);

struct vt_card;

/* Creates a card in memory from cfg (no state file; nothing is persisted).
 * [out] *out, release with vt_card_close(). CMN_ENOMEM, CMN_EINVAL (bad cfg). */
enum cmn_rc vt_card_new(const struct vt_config *cfg, struct vt_card **out);

/* Opens the card kept in state_path: loads it when the file exists (cfg is then ignored),
 * else creates it from cfg (NULL = defaults) and writes the file (mode 0600). Every command
 * that changes persistent state rewrites the file atomically (temp file + rename). The card
 * holds an exclusive lock on STATE.lock until vt_card_close(): a second open of the same
 * card, in this process or another, fails with CMN_EIO ("in use").
 * [out] *out; err gets a message on failure. CMN_EIO, CMN_EINVAL (corrupt file), CMN_ENOMEM. */
enum cmn_rc vt_card_open(const char *state_path, const struct vt_config *cfg,
                         struct vt_card **out, char *err, size_t err_size);

/* Loads the card kept in state_path into memory, read-only: nothing is ever written back and
 * no lock is taken, so a running vtoken may own the file (`vtoken --show`). [out] *out.
 * CMN_EIO (absent/unreadable), CMN_EINVAL (corrupt), CMN_ENOMEM. */
enum cmn_rc vt_card_inspect(const char *state_path, struct vt_card **out, char *err,
                            size_t err_size);

/* Runs one command APDU (short form, 4..261 bytes) and writes the response (data ‖ SW1 SW2).
 * Never fails on bad input: a malformed command gets its status word (6700 etc.).
 * [out] resp (cap >= VT_RESP_MAX recommended; a smaller cap gives CMN_ETOOBIG), resp_len.
 * CMN_EIO if a state change could not be saved (the response is still valid). */
enum cmn_rc vt_card_transmit(struct vt_card *c, const uint8_t *apdu, size_t n, uint8_t *resp,
                             size_t cap, size_t *resp_len);

/* Power on / warm reset: clears transient state (secure channel, logins, I/O buffer) and
 * selects the card manager. */
void vt_card_reset(struct vt_card *c);
/* Power off: clears transient state like a reset. */
void vt_card_power_off(struct vt_card *c);
/* Copies the ATR into out (cap >= VT_ATR_MAX); returns its length. */
size_t vt_card_atr(const struct vt_card *c, uint8_t *out, size_t cap);
/* Writes the state file now (no-op for cards from vt_card_new()). CMN_EIO. */
enum cmn_rc vt_card_save(struct vt_card *c, char *err, size_t err_size);
/* Wipes and frees the card (keys, PINs). NULL is fine. Does not save. */
void vt_card_close(struct vt_card *c);

/* Prints the card readably to out: identity, key sets (version, KCVs only), applet, PINs
 * (tries only), objects (a z0 object decoded), key slots (type, size, ACLs; public modulus
 * digest, never private material). */
void vt_card_show(const struct vt_card *c, FILE *out);

/* Test hook: every later INITIALIZE UPDATE uses this card challenge (8 bytes; SCP02 uses the
 * first 6) instead of a random one. NULL restores random challenges. */
void vt_card_test_fixed_challenge(struct vt_card *c, const uint8_t *challenge);

/* Read-only views for tests and `--show`. */
uint8_t vt_card_life_cycle(const struct vt_card *c);
bool vt_card_applet_present(const struct vt_card *c);

#endif
