/* gateway/officer.h - security-officer operations (tps-protocol §5.4): a token type with
 * op.<op>.<type>.officerOnly=true is served only over HTTPS to a verified client certificate
 * that the admin API's staff mapping (gateway/admin_ldap.h: certificate -> ou=People entry)
 * maps to a member of the group tps.officerGroup under ou=Groups. Anything else ends with
 * END_OP status 26. */
#ifndef TPS_OFFICER_H
#define TPS_OFFICER_H

#include <stddef.h>

#include "gateway/gwerr.h"

struct tps_admin_stack;
struct tps_config;
struct tps_session;

/* One worker's officer check: its own staff-directory handle. */
struct tps_officer_worker;

/* Opens a worker's handle over the admin stack's backend. st NULL (no admin API, hence no
 * staff directory): *out is NULL and every officer-only operation is refused. cfg and st are
 * borrowed for the handle's life. [out] *out. TPS_OK, TPS_ENOMEM, or the backend's error. */
enum tps_rc tps_officer_worker_open(const struct tps_admin_stack *st, const struct tps_config *cfg,
                                    struct tps_officer_worker **out, char *err, size_t errlen);
void tps_officer_worker_close(struct tps_officer_worker *w);

/* Called once the token type of s is resolved for op ("format", "enroll", "pinReset"). When
 * the type is not officer-only: TPS_OK. Otherwise TPS_OK and s->officer = the officer's uid
 * when the session's TLS peer (s->ssl) has a verified certificate mapping to a member of the
 * officers group; else the failure is recorded with status 26 (TPS_EPOLICY), or 26 with
 * TPS_EDB when the directory cannot be asked. Logs and audits the decision. */
enum tps_rc tps_officer_check(struct tps_session *s, const char *op);

#endif
