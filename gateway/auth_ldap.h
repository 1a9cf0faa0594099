/* gateway/auth_ldap.h - token-holder login against an LDAP directory (tokendb-ha-keychange
 * §1.8, tps-protocol §4.2): search the uid under baseDN as the service identity, then bind as
 * the entry found with the user's password; the result decides END_OP status 14 or 25.
 *
 * Threads: struct tps_auth_ldap_cfg is built in main and shared read-only; each worker opens
 * its own struct tps_auth_ldap (one LDAP * per worker). Uses the failover connection of
 * gateway/tokendb.h, so a dead or hung server costs one timeout, then the next URI. */
#ifndef TPS_AUTH_LDAP_H
#define TPS_AUTH_LDAP_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/tokendb.h"

#define TPS_AUTH_MAX_ATTRS 16

/* Strings borrowed during tps_auth_ldap_cfg_new() only. Legacy key names (n = instance). */
struct tps_auth_ldap_conf {
    struct tps_ldap_target_conf ldap; /* auth.instance.n.hostport (failover list), .SSLOn,
                                       * .startTLS, .caFile, .bindDN, .bindPassword_file,
                                       * timeouts; no bindDN: anonymous search */
    const char *base_dn;              /* auth.instance.n.baseDN (required) */
    const char *attributes;           /* auth.instance.n.attributes: "mail,cn,uid" if NULL */
    const char *uid_attr;             /* attribute holding the login name: "uid" if NULL */
    const char *name;                 /* "auth.instance.1" for messages; NULL: "auth" */
};

struct tps_auth_ldap_cfg;

/* Checks c and reads the service password. [out] *out; err names the key on failure.
 * TPS_TDB_OK, TPS_TDB_ECONFIG, TPS_TDB_ENOMEM. */
enum tps_tdb_rc tps_auth_ldap_cfg_new(const struct tps_auth_ldap_conf *c,
                                      struct tps_auth_ldap_cfg **out, char *err, size_t err_size);
void tps_auth_ldap_cfg_free(struct tps_auth_ldap_cfg *cfg);

/* One worker's authenticator. */
struct tps_auth_ldap;

/* [out] *out. Borrows cfg, which must outlive it. Connects lazily. */
enum tps_tdb_rc tps_auth_ldap_open(const struct tps_auth_ldap_cfg *cfg, struct tps_auth_ldap **out);
void tps_auth_ldap_close(struct tps_auth_ldap *a);
/* Detail of the last failure (never contains the password). Borrowed. */
const char *tps_auth_ldap_errmsg(const struct tps_auth_ldap *a);

/* The authenticated user: DN, and the first value of each configured attribute that the
 * entry has. Owned; release with tps_auth_user_cleanup(). */
struct tps_auth_user {
    char *dn;
    char *uid;
    size_t n;
    char *names[TPS_AUTH_MAX_ATTRS];
    char *values[TPS_AUTH_MAX_ATTRS];
};

void tps_auth_user_cleanup(struct tps_auth_user *u);
/* Value of attribute `name` (case-insensitive), or NULL. Borrowed from u. */
const char *tps_auth_user_get(const struct tps_auth_user *u, const char *name);

/* Authenticates uid with the password. [in] uid: any text (escaped before use).
 * [in,out] password, pw_len: wiped (zeroed) before return, whatever the result; never logged.
 * [out] out: filled on TPS_TDB_OK, zeroed otherwise.
 * TPS_TDB_OK; TPS_TDB_ENOUSER (no entry, or several: ambiguous); TPS_TDB_ECREDS (wrong or
 * empty password, account refused); TPS_TDB_EDOWN (no server answered in time);
 * TPS_TDB_EACCESS (the service bind was refused: configuration); TPS_TDB_ELDAP. */
enum tps_tdb_rc tps_auth_ldap_login(struct tps_auth_ldap *a, const char *uid, char *password,
                                    size_t pw_len, struct tps_auth_user *out);

/* The END_OP status for a login result (tps-protocol §4.1/§4.2): 0 on success, 25
 * (LDAP_CONN) when the directory could not be used, 14 (LOGIN) otherwise. */
int tps_auth_ldap_end_op_status(enum tps_tdb_rc rc);

/* True when dn is an exact uniqueMember (groupOfUniqueNames) or member (groupOfNames) of
 * group_dn (§1.5 (7): membership by exact DN). [out] *is_member. */
enum tps_tdb_rc tps_auth_ldap_is_member(struct tps_auth_ldap *a, const char *group_dn,
                                        const char *dn, bool *is_member);

#endif
