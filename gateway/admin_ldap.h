/* gateway/admin_ldap.h - the admin API's backend on the token DB (gateway/tokendb.h): tokens,
 * certificates and activities, and the staff directory (certificate -> ou=People entry -> role
 * groups in ou=Groups, tokendb §1.8). The CA slots are filled by gateway/admin_setup.c. */
#ifndef TPS_ADMIN_LDAP_H
#define TPS_ADMIN_LDAP_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/admin.h"
#include "gateway/gwerr.h"
#include "gateway/tokendb.h"

struct cmn_cfg;
struct tps_ca;

/* Strings borrowed during tps_admin_ldap_new() only. */
struct tps_admin_ldap_conf {
    const struct tps_tokendb_cfg *tdb; /* borrowed for the backend's life */
    const char *token_base_dn;    /* tokendb.baseDN: the root is what follows its first RDN */
    const char *activity_base_dn; /* tokendb.activityBaseDN */
    const char *people_base_dn;   /* NULL or "": ou=People,<root> */
    const char *groups_base_dn;   /* NULL or "": ou=Groups,<root> */
    const char *group_agent, *group_operator, *group_admin; /* cn values; NULL: defaults */
    bool map_subject_uid;         /* tps.admin.certMap=subjectUID */
    const struct cmn_cfg *cfg;    /* revocation rules (op.enroll.*); borrowed, may be NULL */
    struct tps_ca *ca;            /* CA connector; borrowed, may be NULL (no revocations) */
};

/* The shared part (immutable after creation). */
struct tps_admin_ldap {
    const struct tps_tokendb_cfg *tdb;
    char people_base[512], groups_base[512], activity_base[512];
    char group_agent[128], group_operator[128], group_admin[128];
    bool map_subject_uid;
    const struct cmn_cfg *cfg;
    struct tps_ca *ca;
};

/* One worker's handles: its token DB handle (own LDAP *). CA calls take a fresh call handle
 * each (gateway/admin_setup.c): status changes are rare, and a new handle never offers a
 * stale TLS session to a clone. */
struct tps_admin_ldap_worker {
    const struct tps_admin_ldap *s;
    struct tps_tokendb *db;
};

/* [out] *out. TPS_ECONFIG (err names the key), TPS_ENOMEM. */
enum tps_rc tps_admin_ldap_new(const struct tps_admin_ldap_conf *c, struct tps_admin_ldap **out,
                               char *err, size_t errlen);
void tps_admin_ldap_free(struct tps_admin_ldap *s);

/* Fills every slot of be with the LDAP backend; the CA slots refuse every certificate change
 * ("no CA connector") until gateway/admin_setup.c's tps_admin_ca_attach() replaces them. */
void tps_admin_ldap_backend(struct tps_admin_backend *be);

/* RFC 4514 issuer and decimal serial of cert as the GSER assertion slapd matches against
 * userCertificate (tokendb §1.5): { serialNumber N, issuer rdnSequence:"..." }. */
enum tps_rc tps_admin_cert_assertion(X509 *cert, char *out, size_t out_size);

#endif
