/* tests/unit/gateway/test_instances.c - the configuration digest between instances (per-instance
 * keys left out, a changed cluster-wide key changes it, explicit defaults change nothing, clone
 * order of a connector is a set, secrets are not digested) and the drain rule (tables of
 * mine-vs-peers cases), over the real key tables of gateway/config.c; and the instance entries
 * in a real slapd (written, read back, ou=Instances created when it is missing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <ldap.h>

#include "gateway/instances.h"
#include "gw_fixture.h"
#include "tdb_fixture.h"

/* One fixture directory for every load: its path is in digested keys (the TKS secret file). */
static struct gw_fix fix;

/* The digest of the fixture's base configuration plus `extra` lines. */
static void
digest_of(const char *extra, char hex[TPS_INST_DIGEST_HEX + 1])
{
    struct cmn_buf errs;

    cmn_buf_init(&errs, 1 << 16);
    tps_config_free(fix.cfg);
    fix.cfg = NULL;
    if (gw_fix_load(&fix, extra, &errs) != TPS_OK)
        fail_msg("config: %.*s", (int)errs.len, (const char *)errs.data);
    assert_int_equal(tps_inst_config_digest(tps_config_cfg(fix.cfg), hex), TPS_OK);
    cmn_buf_cleanup(&errs);
}

static int
fix_setup(void **state)
{
    (void)state;
    gw_fix_init(&fix);
    return 0;
}

static int
fix_teardown(void **state)
{
    (void)state;
    gw_fix_cleanup(&fix);
    return 0;
}

static void
test_instances_digest_form(void **state)
{
    char a[TPS_INST_DIGEST_HEX + 1], b[TPS_INST_DIGEST_HEX + 1];

    (void)state;
    digest_of("", a);
    assert_int_equal(strlen(a), TPS_INST_DIGEST_HEX);
    assert_int_equal(strspn(a, "0123456789abcdef"), TPS_INST_DIGEST_HEX);
    digest_of("", b);
    assert_string_equal(a, b); /* deterministic */
}

/* Each case's lines give the base configuration's digest (same = true) or another one. */
static void
test_instances_digest_table(void **state)
{
    static const struct {
        const char *extra;
        bool same;
        const char *what;
    } cases[] = {
        /* per-instance keys (tps_inst_local_keys) */
        {"tps.instanceId=tps2\n", true, "instance id"},
        {"service.unsecurePort=2\nservice.bindAddress=10.0.0.12\nservice.acceptProxy=true\n", true,
         "listeners"},
        {"log.level=debug\nlog.audit.sync=false\n", true, "logs"},
        {"lb.agentPort=7999\nlb.statusPort=7980\nlb.agentAddress=10.0.0.12\n", true,
         "agent and status ports"},
        {"tps.maxSessions=8\ntps.acceptQueue=4\n", true, "host sizing"},
        /* explicit defaults: exact keys and pattern keys */
        {"lb.healthInterval=1000\ntps.connection.timeout=300\nlb.instanceRefresh=10\n", true,
         "exact keys at their defaults"},
        {"op.format.userKey.update.applet.emptyToken.enable=true\nconn.tks1.keySet=defKeySet\n"
         "op.format.userKey.loginRequest.enable=true\n",
         true, "pattern keys at their defaults"},
        /* a secret is never digested */
        {"create_pin.string=another\n", true, "secret value"},
        /* cluster-wide keys */
        {"op.format.userKey.loginRequest.enable=false\n", false, "an op.* boolean"},
        {"tps.phoneHome.ui=https://lb.example.org/ui\n", false, "the phone-home document"},
        {"lb.instanceRefresh=5\n", false, "lb.instanceRefresh"},
        {"lb.healthInterval=999\n", false, "an lb.* interval"},
        {"op.format.userKey.update.symmetricKeys.requiredVersion=2\n", false,
         "the changeover key version"},
        {"conn.tks1.hostport=127.0.0.1:9 127.0.0.1:10\n", false, "another clone"},
        {"tokendb.hostport=127.0.0.1:389 127.0.0.1:390\n", false, "a token DB"},
    };
    char base[TPS_INST_DIGEST_HEX + 1], got[TPS_INST_DIGEST_HEX + 1];

    (void)state;
    digest_of("", base);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        digest_of(cases[i].extra, got);
        if ((strcmp(got, base) == 0) != cases[i].same)
            fail_msg("case %zu (%s): digest %s the base's", i, cases[i].what,
                     cases[i].same ? "differs from" : "equals");
    }
}

static void
test_instances_digest_order(void **state)
{
    char a[TPS_INST_DIGEST_HEX + 1], b[TPS_INST_DIGEST_HEX + 1];

    (void)state;
    /* a connector's clones may be listed in another order on each instance (docs/ha.md §1) */
    digest_of("conn.tks1.hostport=127.0.0.1:9 127.0.0.1:10\n", a);
    digest_of("conn.tks1.hostport=127.0.0.1:10,127.0.0.1:9\n", b);
    assert_string_equal(a, b);
    /* the token DB list is one write target first: its order must be the same everywhere */
    digest_of("tokendb.hostport=127.0.0.1:389 127.0.0.1:390\n", a);
    digest_of("tokendb.hostport=127.0.0.1:390 127.0.0.1:389\n", b);
    assert_string_not_equal(a, b);
}

static struct tps_instance_rec
rec(const char *id, char d, time_t since, time_t seen)
{
    struct tps_instance_rec r;

    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    if (d != 0) {
        memset(r.digest, d, TPS_INST_DIGEST_HEX);
        r.digest[TPS_INST_DIGEST_HEX] = '\0';
    }
    r.since = since;
    r.seen = seen;
    return r;
}

#define NOW 1000000
#define REFRESH 10

static void
test_instances_decide_table(void **state)
{
    static const struct {
        const char *what;
        const char *me_id;
        char me_d;
        time_t me_since;
        struct {
            const char *id;
            char d;
            time_t since, seen;
        } peers[3];
        size_t n;
        enum tps_inst_verdict want;
        size_t peer; /* for DRAIN / SERVE */
    } cases[] = {
        {"alone", "tps1", 'a', 100, {{0}}, 0, TPS_INST_MATCH, 0},
        {"own entry only", "tps1", 'a', 100, {{"tps1", 'b', 500, NOW}}, 1, TPS_INST_MATCH, 0},
        {"same digest", "tps1", 'a', 100, {{"tps2", 'a', 500, NOW}}, 1, TPS_INST_MATCH, 0},
        {"peer newer", "tps1", 'a', 100, {{"tps2", 'b', 500, NOW}}, 1, TPS_INST_DRAIN, 0},
        {"peer older", "tps1", 'a', 500, {{"tps2", 'b', 100, NOW}}, 1, TPS_INST_SERVE, 0},
        {"tie, my id smaller", "tps1", 'a', 100, {{"tps2", 'b', 100, NOW}}, 1, TPS_INST_DRAIN, 0},
        {"tie, my id greater", "tps2", 'a', 100, {{"tps1", 'b', 100, NOW}}, 1, TPS_INST_SERVE, 0},
        {"newer peer just live", "tps1", 'a', 100, {{"tps2", 'b', 500, NOW - 3 * REFRESH}}, 1,
         TPS_INST_DRAIN, 0},
        {"newer peer dead", "tps1", 'a', 100, {{"tps2", 'b', 500, NOW - 3 * REFRESH - 1}}, 1,
         TPS_INST_MATCH, 0},
        {"peer never seen", "tps1", 'a', 100, {{"tps2", 'b', 500, 0}}, 1, TPS_INST_MATCH, 0},
        {"peer clock ahead", "tps1", 'a', 100, {{"tps2", 'b', 500, NOW + 30}}, 1, TPS_INST_DRAIN,
         0},
        {"malformed peer digest", "tps1", 'a', 100, {{"tps2", 0, 500, NOW}}, 1, TPS_INST_MATCH,
         0},
        {"newest of two differing peers", "tps1", 'a', 300,
         {{"tps2", 'b', 100, NOW}, {"tps3", 'c', 700, NOW}, {"tps1", 'a', 300, NOW}}, 3,
         TPS_INST_DRAIN, 1},
        {"older differing, newer same", "tps1", 'a', 300,
         {{"tps2", 'b', 100, NOW}, {"tps3", 'a', 700, NOW}}, 2, TPS_INST_SERVE, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tps_instance_rec me = rec(cases[i].me_id, cases[i].me_d, cases[i].me_since, NOW);
        struct tps_instance_rec all[3];
        size_t peer = 99;
        enum tps_inst_verdict v;

        for (size_t k = 0; k < cases[i].n; k++)
            all[k] = rec(cases[i].peers[k].id, cases[i].peers[k].d, cases[i].peers[k].since,
                         cases[i].peers[k].seen);
        v = tps_inst_decide(&me, all, cases[i].n, NOW, REFRESH, &peer);
        if (v != cases[i].want)
            fail_msg("case %zu (%s): verdict %d, want %d", i, cases[i].what, (int)v,
                     (int)cases[i].want);
        if (v != TPS_INST_MATCH && peer != cases[i].peer)
            fail_msg("case %zu (%s): peer %zu, want %zu", i, cases[i].what, peer, cases[i].peer);
    }
}

static void
test_instances_decide_both_sides(void **state)
{
    /* two instances that read the same entries never both serve or both drain */
    struct tps_instance_rec all[2];
    static const time_t sinces[][2] = {{100, 500}, {500, 100}, {100, 100}};

    (void)state;
    for (size_t i = 0; i < sizeof(sinces) / sizeof(sinces[0]); i++) {
        all[0] = rec("tps1", 'a', sinces[i][0], NOW);
        all[1] = rec("tps2", 'b', sinces[i][1], NOW);
        enum tps_inst_verdict v1 = tps_inst_decide(&all[0], all, 2, NOW, REFRESH, NULL);
        enum tps_inst_verdict v2 = tps_inst_decide(&all[1], all, 2, NOW, REFRESH, NULL);
        assert_true((v1 == TPS_INST_DRAIN && v2 == TPS_INST_SERVE) ||
                    (v1 == TPS_INST_SERVE && v2 == TPS_INST_DRAIN));
    }
}

static void
test_instances_since_rule(void **state)
{
    char a[TPS_INST_DIGEST_HEX + 1], b[TPS_INST_DIGEST_HEX + 1];
    struct tps_instance_rec all[3];

    (void)state;
    memset(all, 0, sizeof(all));
    memset(a, 'a', TPS_INST_DIGEST_HEX);
    a[TPS_INST_DIGEST_HEX] = '\0';
    memset(b, 'b', TPS_INST_DIGEST_HEX);
    b[TPS_INST_DIGEST_HEX] = '\0';
    /* nothing known: our start */
    assert_int_equal(tps_inst_since(all, 0, "tps1", a, NOW, NOW, REFRESH), NOW);
    /* a restart with an unchanged configuration keeps our old since, even if the entry is stale */
    all[0] = rec("tps1", 'a', 200, 300);
    assert_int_equal(tps_inst_since(all, 1, "tps1", a, NOW, NOW, REFRESH), 200);
    /* our old entry with another configuration: a new since */
    assert_int_equal(tps_inst_since(all, 1, "tps1", b, NOW, NOW, REFRESH), NOW);
    /* a live peer already serves this configuration: its since (a rollback, a new instance) */
    all[1] = rec("tps2", 'b', 400, NOW);
    assert_int_equal(tps_inst_since(all, 2, "tps1", b, NOW, NOW, REFRESH), 400);
    /* a dead peer's since is not adopted */
    all[2] = rec("tps3", 'b', 50, NOW - 3 * REFRESH - 1);
    assert_int_equal(tps_inst_since(all, 3, "tps1", b, NOW, NOW, REFRESH), 400);
}

/* ---- instance entries in a real slapd (slapd-fixture.sh single) ---- */

static struct tdb_fx fx;

static struct tps_tokendb_cfg *
ldap_cfg(const char *instance)
{
    struct tps_tokendb_cfg *cfg = tdb_fx_tokendb_cfg(&fx, NULL, instance);

    if (cfg == NULL)
        fail_msg("token DB config of %s", instance);
    return cfg;
}

/* Deletes the instance entries and ou=Instances as the root DN (the gateway may not). */
static void
drop_instances(void)
{
    LDAP *ld = NULL;
    char pw[128] = "", dn[300];
    FILE *f = fopen(fx.rootpw_file, "r");
    struct berval cred;
    static const char *const gone[] = {"cn=gwa,ou=Instances", "cn=gwb,ou=Instances",
                                       "ou=Instances"};

    assert_non_null(f);
    assert_non_null(fgets(pw, sizeof(pw), f));
    fclose(f);
    pw[strcspn(pw, "\r\n")] = '\0';
    cred.bv_val = pw;
    cred.bv_len = strlen(pw);
    assert_int_equal(ldap_initialize(&ld, fx.uri1), LDAP_SUCCESS);
    assert_int_equal(ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &(int){LDAP_VERSION3}),
                     LDAP_OPT_SUCCESS);
    assert_int_equal(ldap_sasl_bind_s(ld, fx.rootdn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL),
                     LDAP_SUCCESS);
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        snprintf(dn, sizeof(dn), "%s,%s", gone[i], fx.basedn);
        int rc = ldap_delete_ext_s(ld, dn, NULL, NULL);
        if (rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT)
            fail_msg("delete %s: %s", dn, ldap_err2string(rc));
    }
    ldap_unbind_ext_s(ld, NULL, NULL);
}

/* The entry of id in r[0..n) (a failure when there is none). */
static struct tps_instance_rec
find_rec(const struct tps_instance_rec *r, size_t n, const char *id)
{
    struct tps_instance_rec none;

    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].id, id) == 0)
            return r[i];
    fail_msg("no instance entry %s", id);
    memset(&none, 0, sizeof(none));
    return none;
}

static void
test_instances_ldap_publish_list(void **state)
{
    struct tps_tokendb_cfg *ca = ldap_cfg("gwa"), *cb = ldap_cfg("gwb");
    struct tps_tokendb *a = NULL, *b = NULL;
    struct tps_instance_rec recs[TPS_INSTANCES_MAX];
    struct tps_instance_rec r;
    char da[TPS_INST_DIGEST_HEX + 1], db[TPS_INST_DIGEST_HEX + 1];
    size_t n = 99;

    (void)state;
    memset(da, 'a', TPS_INST_DIGEST_HEX);
    da[TPS_INST_DIGEST_HEX] = '\0';
    memset(db, 'b', TPS_INST_DIGEST_HEX);
    db[TPS_INST_DIGEST_HEX] = '\0';
    assert_int_equal(tps_tokendb_open(ca, &a), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_open(cb, &b), TPS_TDB_OK);
    /* a DIT loaded before the feature: no ou=Instances; reading it is an empty list */
    drop_instances();
    if (tps_tokendb_instance_list(a, recs, TPS_INSTANCES_MAX, &n) != TPS_TDB_OK)
        fail_msg("list: %s", tps_tokendb_errmsg(a));
    assert_int_equal(n, 0);
    /* the first write creates ou=Instances and the entry; the next ones refresh it */
    assert_int_equal(tps_tokendb_instance_publish(a, da, 1000, 2000), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_instance_publish(a, da, 1000, 2010), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_instance_publish(b, db, 1500, 2005), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_instance_publish(a, "not hex", 1, 1), TPS_TDB_EINVAL);
    assert_int_equal(tps_tokendb_instance_list(b, recs, TPS_INSTANCES_MAX, &n), TPS_TDB_OK);
    assert_int_equal(n, 2);
    r = find_rec(recs, n, "gwa");
    assert_string_equal(r.digest, da);
    assert_int_equal(r.since, 1000);
    assert_int_equal(r.seen, 2010);
    r = find_rec(recs, n, "gwb");
    assert_string_equal(r.digest, db);
    assert_int_equal(r.since, 1500);
    assert_int_equal(r.seen, 2005);
    /* more entries than asked for: an error, never a partial picture */
    assert_int_equal(tps_tokendb_instance_list(a, recs, 1, &n), TPS_TDB_ETOOBIG);
    tps_tokendb_close(a);
    tps_tokendb_close(b);
    tps_tokendb_cfg_free(ca);
    tps_tokendb_cfg_free(cb);
}

static int
ldap_setup(void **state)
{
    (void)state;
    if (tps_ldap_global_init() != 0)
        return -1;
    return tdb_fx_start(&fx, "single");
}

static int
ldap_teardown(void **state)
{
    (void)state;
    tdb_fx_stop(&fx);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instances_digest_form),
        cmocka_unit_test(test_instances_digest_table),
        cmocka_unit_test(test_instances_digest_order),
        cmocka_unit_test(test_instances_decide_table),
        cmocka_unit_test(test_instances_decide_both_sides),
        cmocka_unit_test(test_instances_since_rule),
    };
    const struct CMUnitTest ldap_tests[] = {
        cmocka_unit_test(test_instances_ldap_publish_list),
    };
    int failed = cmocka_run_group_tests(tests, fix_setup, fix_teardown);

    return failed + cmocka_run_group_tests_name("instances_ldap", ldap_tests, ldap_setup,
                                                ldap_teardown);
}
