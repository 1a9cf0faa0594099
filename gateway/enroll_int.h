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
enum tps_rc tps_enroll_applet_channel(struct tps_session *s, const char *op);

/* A wrapped command whose status word must be 9000; status = END_OP code otherwise. */
enum tps_rc tps_enroll_secure_ok(struct tps_session *s, const struct cmn_apdu *a, int status,
                                 const char *what);

#endif
