/* gateway/enroll_int.h - card steps shared by gateway/enroll.c and gateway/pinreset.c (not a
 * public interface). */
#ifndef TPS_ENROLL_INT_H
#define TPS_ENROLL_INT_H

#include <stdint.h>

#include "common/apdu.h"
#include "gateway/gwerr.h"

struct tps_session;

/* Selects the CoolKey applet and opens a secure channel on it with the key version the token
 * type expects for `op` (update.symmetricKeys.requiredVersion when enabled, else
 * channel.defKeyVersion). Status 19 / 17 on failure. */
struct tps_keychange_store;
/* Selects the applet and opens the secure channel at the key version op requires, running a
 * key changeover first when the card's keys differ (gateway/keychange.h); kc records it in
 * the token DB (NULL: no record). */
enum tps_rc tps_enroll_applet_channel(struct tps_session *s, const char *op,
                                      const struct tps_keychange_store *kc);

/* A wrapped command whose status word must be 9000; status = END_OP code otherwise. */
enum tps_rc tps_enroll_secure_ok(struct tps_session *s, const struct cmn_apdu *a, int status,
                                 const char *what);

#endif
