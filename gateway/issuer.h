/* gateway/issuer.h - the issuer info of a card (card spec §5.1, tokendb-ha §4): the phone-home
 * URL that format and enroll write with SET ISSUER INFO when op.<op>.<type>.issuerinfo.enable,
 * from op.<op>.<type>.issuerinfo.value with $cuid$, $msn$, $userid$, $profileId$ expanded. */
#ifndef TPS_ISSUER_H
#define TPS_ISSUER_H

#include <stdbool.h>

#include "gateway/session.h"

/* Writes the issuer info op.<op>.<type>.issuerinfo.value names, over the open secure channel
 * on the applet. A card that carries another URL (a host-specific one from before the
 * balancer, tokendb-ha §4.3) is rewritten, *rewritten says so for the activity and the audit
 * line token.issuer_rewritten keeps the old and the new URL. Fails the session (status 7 or
 * MISCONFIGURATION) with the reason. */
enum tps_rc tps_issuer_info_set(struct tps_session *s, const char *op, bool *rewritten);

#endif
