/* gateway/keychange.h - key changeover on the card's next contact (tokendb-ha-keychange §5.4,
 * §5.5; card spec §2.4, §2.6; backends §2.8, §3.9): the one call an operation makes to get a
 * secure channel on the CoolKey applet at the key version its token type requires, upgrading
 * the card's keys with TKS createKeySetData and PUT KEY when they differ, crash-safe through
 * a pending-key-version record in the token DB. */
#ifndef TPS_KEYCHANGE_H
#define TPS_KEYCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/gwerr.h"

struct tps_session;
struct tps_tokendb;
struct tps_token;
struct tps_token_lease;

/* Where the changeover keeps its record: the token DB entry of the card, already read and
 * leased by the operation. Every call gets the card's CUID (20 upper-case hex) and returns
 * TPS_OK or TPS_EDB with a message in err. Key info values are hex ("0201"). */
struct tps_keychange_store {
    /* Before PUT KEY: pendingKeyInfo=<new_key_info>&pendingSince=<UTC>, replacing an older
     * pending value (§5.5 a). A failure stops the changeover before the card is touched. */
    enum tps_rc (*pending_set)(void *arg, const char *cuid, const char *new_key_info, char *err,
                               size_t errlen);
    /* After a channel opened at key_info: keyInfo := key_info and the pending value removed,
     * in one write; nothing is written when there is no pending value and keyInfo already
     * equals key_info. */
    enum tps_rc (*commit)(void *arg, const char *cuid, const char *key_info, char *err,
                          size_t errlen);
    /* PUT KEY was refused by the card: the pending value goes (best effort). May be NULL. */
    enum tps_rc (*clear)(void *arg, const char *cuid, char *err, size_t errlen);
    /* Adds an activity tokenOp=key_changeover with result "success" or "failure" and msg.
     * May be NULL. */
    enum tps_rc (*activity)(void *arg, const char *cuid, bool success, const char *msg, char *err,
                            size_t errlen);
    void *arg;
};

/* A store over gateway/tokendb.h: the operation's handle, the record it read and the lease it
 * holds (all borrowed; tok is updated in memory by every write, so the operation's own later
 * writes assert the right `modified` value). user and ip go into the activity (may be NULL). */
struct tps_keychange_tdb {
    struct tps_tokendb *db;
    struct tps_token *tok;
    const struct tps_token_lease *lease; /* NULL: writes asserted on `modified` only */
    const char *user, *ip, *token_type;
    const char *officer; /* the security officer acting on the card, "" or NULL: none */
};
/* Fills *out with callbacks over ctx (borrowed until the changeover ends). */
void tps_keychange_tdb_store(struct tps_keychange_tdb *ctx, struct tps_keychange_store *out);

/* The key check of format, enroll and PIN reset (§5.4). Selects the CoolKey applet
 * (applet.aid.netkey_instance) and returns with a secure channel open on it (s->channel_open,
 * s->tok.key_info*):
 *  - op.<op>.<type>.update.symmetricKeys.enable false (or requiredVersion 0): a channel at
 *    channel.defKeyVersion / channel.defKeyIndex, nothing else;
 *  - enabled: INITIALIZE UPDATE at requiredVersion; if the card has that version, the channel
 *    is used and a pending record left by an earlier contact is settled (store->commit);
 *  - the card answers 6A88 (no such key set): changeover. Card manager selected, channel at
 *    the card's default set, new key info requiredVersion||01 (SCP03: ||cur[1]||cur[2]),
 *    TKS createKeySetData through the connector's clones (conn.<id>.servlet.createKeySetData,
 *    idempotent), store->pending_set, PUT KEY (P1 = current version, 00 for FF; P2 81; MAC
 *    only on SCP01/02; Le 00 on SCP02/03), applet selected again, channel at
 *    requiredVersion, store->commit, activity key_changeover and audit lines
 *    token.key_changeover_required / token.key_changeover.
 * op: "format", "enroll", "pinReset" (the config key's <op>). store may be NULL (no token
 * DB: the changeover still runs, without a record). A crash at any point leaves the card
 * usable: before PUT KEY it still has the old set (the next contact starts again); after it,
 * the next contact opens at requiredVersion at once and commits the pending record.
 * Returns TPS_OK or the failure with its END_OP status recorded in s: 17 (channel, TKS
 * computeSessionKey), 20 (createKeySetData, PUT KEY, a card that reports 6A88 for the version
 * it holds), 15 (pending record not written), 18 (configuration). One session's thread. */
enum tps_rc tps_keychange_check(struct tps_session *s, const char *op,
                                const struct tps_keychange_store *store);

/* Test hook (integration test 49): when the environment variable
 * TPSGW_TEST_ABORT_AFTER_PUT_KEY holds the CUID of the card being changed over, tpsgw kills
 * itself with SIGKILL right after the card accepted PUT KEY and before the record is
 * committed. Compiled out with -DTPS_NO_TEST_HOOKS (production packages). */
#define TPS_KEYCHANGE_TEST_ENV "TPSGW_TEST_ABORT_AFTER_PUT_KEY"

#endif
