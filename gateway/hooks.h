/* gateway/hooks.h - adapters from the session's DB and authenticator hooks to the token DB
 * (gateway/tokendb.h) and the LDAP authenticator (gateway/auth_ldap.h): configuration objects
 * shared by all workers, one handle of each per worker. */
#ifndef TPS_HOOKS_H
#define TPS_HOOKS_H

#include <stddef.h>

#include "gateway/gwerr.h"
#include "gateway/session.h"

struct tps_config;
struct tps_hooks;

/* Builds the shared objects from the configuration (main thread, before workers). A token DB
 * is configured when tokendb.hostport is set; authenticators for every auth.instance.<n>.
 * [out] *out. TPS_ECONFIG with a message naming the key. */
enum tps_rc tps_hooks_new(const struct tps_config *cfg, struct tps_hooks **out, char *err,
                          size_t errlen);
void tps_hooks_free(struct tps_hooks *h);
/* The CA and KRA connectors the operations use (borrowed; NULL when none). */
const struct tps_enroll_backends *tps_hooks_backends(const struct tps_hooks *h);

/* The token DB configuration the tokendb.*, tps.instanceId, tps.operations.* and
 * tokenservice.status.unformatted.* keys describe (strings borrowed from cc). */
struct cmn_cfg;
struct tps_tokendb_conf;
void tps_hooks_tokendb_conf(const struct cmn_cfg *cc, struct tps_tokendb_conf *tc);

/* Fills env's db/auth members for one worker (handles connect lazily). */
enum tps_rc tps_hooks_worker_open(const struct tps_hooks *h, struct tps_env *env);
void tps_hooks_worker_close(const struct tps_hooks *h, struct tps_env *env);

#endif
