/* gateway/pinreset.h - the PIN reset operation (tps-protocol §3.4, Java order) and the PIN
 * step enroll shares with it: NEW_PIN_REQUEST, CREATE PIN (PIN 0, 9C10 ignored), SET PIN. */
#ifndef TPS_PINRESET_H
#define TPS_PINRESET_H

#include <stdbool.h>

#include "gateway/gwerr.h"

struct tps_session;
struct tps_enroll_env;

/* Asks the client for a new PIN of min..max bytes (NEW_PIN_REQUEST/RESPONSE), then on the
 * open secure channel CREATE PIN 0 (max_retries tries, initial value create_pin.string;
 * "exists" 9C10 is fine) and SET PIN 0. The PIN is never logged and is wiped on every path.
 * TPS_OK; failure with END_OP status 4 (bad PIN length or card refusal) or the session's. */
enum tps_rc tps_pin_set(struct tps_session *s, unsigned min_len, unsigned max_len,
                        unsigned max_retries, const char *initial);

/* The PIN reset operation on session s (operation 3): prologue, token type
 * (op.pinReset mapping), token must be in the DB and ACTIVE with policy PIN_RESET=YES (else
 * 15 / 26 / 27), owner check (43), login, secure channel, PIN, token DB activity and, with
 * RESET_PIN_RESET_TO_NO=YES, the policy flipped to PIN_RESET=NO. ee->tdb may be NULL
 * (tests: no DB checks). */
enum tps_rc tps_pinreset_run(struct tps_session *s, const struct tps_enroll_env *ee);

#endif
