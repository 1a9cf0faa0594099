/* gateway/admin_setup.c - wiring of the admin API for tpsgw and tests: the CA slots of the
 * backend (revoke / unrevoke through gateway/ca.h's connector and its clones, rules of
 * tokendb §1.7 through tps_ca_status_action) and the whole stack built from a configuration. */
#include "gateway/admin_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfailover/failover.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "gateway/ca.h"

static enum tps_rc
ca_action(void *shared, const char *token_type, const char *key_type,
          enum tps_token_status from, enum tps_token_status to, enum tps_admin_ca_act *act,
          int *reason)
{
    const struct tps_admin_ldap *s = shared;
    enum tps_ca_action a = TPS_CA_ACTION_NONE;
    enum tps_rc rc;

    *act = TPS_ADMIN_CA_NONE;
    *reason = 0;
    rc = tps_ca_status_action(s->cfg, token_type, key_type, from, to, &a, reason);
    if (rc != TPS_OK)
        return rc;
    *act = a == TPS_CA_ACTION_REVOKE     ? TPS_ADMIN_CA_REVOKE
           : a == TPS_CA_ACTION_UNREVOKE ? TPS_ADMIN_CA_UNREVOKE
                                         : TPS_ADMIN_CA_NONE;
    return TPS_OK;
}

/* What the CA said, as one line; outcome names from ca.h. */
static enum tps_rc
ca_done(enum tps_rc rc, const struct tps_ca_result *res, char *clone, size_t clone_len,
        char *err, size_t errlen)
{
    snprintf(clone, clone_len, "%s", res->clone);
    if (rc == TPS_OK && res->outcome == TPS_CA_DONE)
        return TPS_OK;
    snprintf(err, errlen, "%s%s%s", tps_ca_outcome_name(res->outcome), res->msg[0] ? ": " : "",
             res->msg);
    return TPS_EBACKEND;
}

static enum tps_rc
ca_revoke(void *p, const char *serial, int reason, char *clone, size_t clone_len, char *err,
          size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    struct tps_ca_result res;
    struct fo_req *req = NULL;
    enum tps_rc rc;

    if (w->s->ca == NULL) {
        snprintf(err, errlen, "no CA connector is configured");
        return TPS_EBACKEND;
    }
    if (fo_req_new(&req) != FO_OK)
        return TPS_ENOMEM;
    tps_ca_result_init(&res);
    rc = tps_ca_revoke(w->s->ca, req, "admin", serial, reason, &res);
    rc = ca_done(rc, &res, clone, clone_len, err, errlen);
    tps_ca_result_cleanup(&res);
    fo_req_free(req);
    return rc;
}

static enum tps_rc
ca_unrevoke(void *p, const char *serial, char *clone, size_t clone_len, char *err,
            size_t errlen)
{
    struct tps_admin_ldap_worker *w = p;
    struct tps_ca_result res;
    struct fo_req *req = NULL;
    enum tps_rc rc;

    if (w->s->ca == NULL) {
        snprintf(err, errlen, "no CA connector is configured");
        return TPS_EBACKEND;
    }
    if (fo_req_new(&req) != FO_OK)
        return TPS_ENOMEM;
    tps_ca_result_init(&res);
    rc = tps_ca_unrevoke(w->s->ca, req, "admin", serial, &res);
    rc = ca_done(rc, &res, clone, clone_len, err, errlen);
    tps_ca_result_cleanup(&res);
    fo_req_free(req);
    return rc;
}

void
tps_admin_ca_attach(struct tps_admin_backend *be)
{
    be->ca_action = ca_action;
    be->ca_revoke = ca_revoke;
    be->ca_unrevoke = ca_unrevoke;
}

enum tps_rc
tps_admin_stack_new(const struct cmn_cfg *cfg, const struct tps_tokendb_cfg *tdb,
                    struct tps_ca *ca, struct tps_admin_stack **out, char *err, size_t errlen)
{
    struct tps_admin_stack *st;
    struct tps_admin_settings set;
    struct tps_admin_ldap_conf lc;
    const char *map;
    enum tps_rc rc;

    *out = NULL;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return TPS_ENOMEM;
    rc = tps_admin_settings_from_cfg(cfg, &set, st->key, sizeof(st->key), err, errlen);
    if (rc != TPS_OK)
        goto fail;
    memset(&lc, 0, sizeof(lc));
    lc.tdb = tdb;
    lc.token_base_dn = cmn_cfg_str(cfg, "tokendb.baseDN");
    lc.activity_base_dn = cmn_cfg_str(cfg, "tokendb.activityBaseDN");
    lc.people_base_dn = cmn_cfg_str(cfg, "tps.admin.peopleBaseDN");
    lc.groups_base_dn = cmn_cfg_str(cfg, "tps.admin.groupsBaseDN");
    lc.group_agent = cmn_cfg_str(cfg, "tps.admin.group.agent");
    lc.group_operator = cmn_cfg_str(cfg, "tps.admin.group.operator");
    lc.group_admin = cmn_cfg_str(cfg, "tps.admin.group.admin");
    map = cmn_cfg_str(cfg, "tps.admin.certMap");
    if (map != NULL && strcmp(map, "subjectUID") == 0) {
        lc.map_subject_uid = true;
    } else if (map != NULL && strcmp(map, "userCertificate") != 0) {
        snprintf(err, errlen, "admin: key 'tps.admin.certMap' = '%s': must be userCertificate "
                 "or subjectUID", map);
        rc = TPS_ECONFIG;
        goto fail;
    }
    lc.cfg = cfg;
    lc.ca = ca;
    rc = tps_admin_ldap_new(&lc, &st->ldap, err, errlen);
    if (rc != TPS_OK)
        goto fail;
    tps_admin_ldap_backend(&st->be);
    if (ca != NULL)
        tps_admin_ca_attach(&st->be);
    rc = tps_admin_new(&set, &st->be, st->ldap, &st->admin, err, errlen);
    if (rc != TPS_OK)
        goto fail;
    if (set.csrf_key == NULL)
        CMN_LOG(CMN_LOG_WARN, "admin.csrf_key", NULL,
                "msg=\"tps.admin.csrfKey_file is not set: CSRF tokens are valid on this "
                "instance only\"");
    OPENSSL_cleanse(st->key, sizeof(st->key));
    *out = st;
    return TPS_OK;
fail:
    tps_admin_stack_free(st);
    return rc;
}

void
tps_admin_stack_free(struct tps_admin_stack *st)
{
    if (st == NULL)
        return;
    tps_admin_free(st->admin);
    tps_admin_ldap_free(st->ldap);
    OPENSSL_cleanse(st->key, sizeof(st->key));
    free(st);
}
