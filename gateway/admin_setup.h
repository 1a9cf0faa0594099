/* gateway/admin_setup.h - the admin API assembled from tpsgw's configuration: settings
 * (tps.admin.*), the token DB backend (gateway/admin_ldap.h) and the CA connector
 * (gateway/ca.h). What tpsgw's server calls:
 *
 *   main thread:  if (cmn_cfg_bool(cfg, "tps.admin.enable"))
 *                     tps_admin_stack_new(cfg, tokendb_cfg, ca, &st, err, sizeof(err));
 *   each worker:  tps_admin_worker_open(st->admin, &w, err, sizeof(err));
 *   per request:  if (tps_admin_owns_path(head.path))
 *                     tps_admin_handle(st->admin, w, conn, &head, &peer);
 *   shutdown:     tps_admin_worker_close(w); tps_admin_stack_free(st);
 */
#ifndef TPS_ADMIN_SETUP_H
#define TPS_ADMIN_SETUP_H

#include <stdint.h>

#include "gateway/admin.h"
#include "gateway/admin_ldap.h"

struct tps_ca;

struct tps_admin_stack {
    struct tps_admin *admin;      /* pass to tps_admin_worker_open / tps_admin_handle */
    struct tps_admin_ldap *ldap;
    struct tps_admin_backend be;
    uint8_t key[64];              /* CSRF key while building; wiped afterwards */
};

/* Replaces the CA slots of an LDAP backend by calls through the connector given to
 * tps_admin_ldap_new (tps_ca_status_action, tps_ca_revoke, tps_ca_unrevoke). */
void tps_admin_ca_attach(struct tps_admin_backend *be);

/* Builds the stack from a configuration validated with tps_admin_cfg_keys (and the token DB
 * keys): tdb and ca are borrowed for its life (ca NULL: status changes that touch certificates
 * are refused). [out] *out. TPS_ECONFIG (err names the key), TPS_ENOMEM. Main thread. */
enum tps_rc tps_admin_stack_new(const struct cmn_cfg *cfg, const struct tps_tokendb_cfg *tdb,
                                struct tps_ca *ca, struct tps_admin_stack **out, char *err,
                                size_t errlen);
void tps_admin_stack_free(struct tps_admin_stack *st);

#endif
