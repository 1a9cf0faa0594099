/* tests/unit/gateway/test_tokendb.c - gateway/tokendb.c against a real two-provider slapd
 * pair: records, transitions, asserted updates, leases, pending key versions, certificates,
 * activities, paging, ACLs, and failover from a stopped and from a hung provider. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gateway/tokendb.h"
#include "tdb_fixture.h"

static struct tdb_fx fx;
static struct tps_tokendb_cfg *cfg1, *cfg2; /* instances gw1 and gw2 over the pair */
static unsigned cuid_seq;

/* A fresh CUID per call: 20 hex digits. */
static void
new_cuid(char out[21])
{
    snprintf(out, 21, "A0%06X%012X", (unsigned)getpid() & 0xFFFFFF, ++cuid_seq);
}

static void
base_conf(struct tps_tokendb_conf *c, const char *hostport, const char *instance)
{
    static char tokens[200], certs[200], acts[200];

    memset(c, 0, sizeof(*c));
    snprintf(tokens, sizeof(tokens), "ou=Tokens,%s", fx.basedn);
    snprintf(certs, sizeof(certs), "ou=Certificates,%s", fx.basedn);
    snprintf(acts, sizeof(acts), "ou=Activities,%s", fx.basedn);
    c->ldap.hostport = hostport;
    c->ldap.bind_dn = fx.gwdn;
    c->ldap.bind_pw_file = fx.gwpw_file;
    /* generous: the machine may be busy (mdb syncs every write); the hung-provider test uses
     * its own short timeout */
    c->ldap.network_timeout_ms = 3000;
    c->ldap.op_timeout_ms = 3000;
    c->base_dn = tokens;
    c->cert_base_dn = certs;
    c->activity_base_dn = acts;
    c->instance_id = instance;
}

static struct tps_tokendb_cfg *
make_cfg_tmo(const char *hostport, const char *instance, unsigned failback_s, unsigned op_ms)
{
    struct tps_tokendb_conf c;
    struct tps_tokendb_cfg *cfg = NULL;
    char err[512];

    base_conf(&c, hostport, instance);
    c.ldap.failback_s = failback_s;
    if (op_ms != 0)
        c.ldap.op_timeout_ms = op_ms;
    if (tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)) != TPS_TDB_OK) {
        fprintf(stderr, "cfg: %s\n", err);
        return NULL;
    }
    return cfg;
}

static struct tps_tokendb_cfg *
make_cfg(const char *hostport, const char *instance, unsigned failback_s)
{
    return make_cfg_tmo(hostport, instance, failback_s, 0);
}

static int
group_setup(void **state)
{
    char list[300];

    (void)state;
    if (tps_ldap_global_init() != 0)
        return -1;
    if (tdb_fx_start(&fx, "pair") != 0)
        return -1;
    snprintf(list, sizeof(list), "%s %s", fx.uri1, fx.uri2);
    cfg1 = make_cfg(list, "gw1", 0);
    cfg2 = make_cfg(list, "gw2", 0);
    return cfg1 != NULL && cfg2 != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    tps_tokendb_cfg_free(cfg1);
    tps_tokendb_cfg_free(cfg2);
    tdb_fx_stop(&fx);
    return 0;
}

static struct tps_tokendb *
open_db(const struct tps_tokendb_cfg *cfg)
{
    struct tps_tokendb *db = NULL;

    assert_int_equal(tps_tokendb_open(cfg, &db), TPS_TDB_OK);
    return db;
}

static void
create_token(struct tps_tokendb *db, const char *cuid, const char *user, enum tps_token_status st,
             struct tps_token *out)
{
    struct tps_token_mod init = {
        .user_id = user, .type = "userKey", .key_info = "0101", .set_status = true, .status = st};
    enum tps_tdb_rc rc = tps_tokendb_token_create(db, cuid, &init, out);

    if (rc != TPS_TDB_OK)
        fprintf(stderr, "create %s: %s: %s\n", cuid, tps_tdb_strerror(rc), tps_tokendb_errmsg(db));
    assert_int_equal(rc, TPS_TDB_OK);
}

/* ---- pure functions -------------------------------------------------------------------- */

static void
test_tokendb_utc_policy_status(void **state)
{
    char buf[32];
    time_t t;
    struct tps_token_policy p, d;

    (void)state;
    tps_tdb_utc(0, buf, sizeof(buf));
    assert_string_equal(buf, "19700101000000Z");
    tps_tdb_utc(1700000000, buf, sizeof(buf));
    assert_string_equal(buf, "20231114221320Z");
    assert_true(tps_tdb_utc_parse(buf, &t));
    assert_int_equal(t, 1700000000);
    assert_false(tps_tdb_utc_parse("20231114221320", &t));
    assert_false(tps_tdb_utc_parse("2023111422132AZ", &t));
    assert_false(tps_tdb_utc_parse("20231314221320Z", &t));

    assert_int_equal(tps_token_policy_parse(TPS_TOKENDB_DEFAULT_POLICY, NULL, &d), TPS_TDB_OK);
    assert_true(d.re_enroll);
    assert_false(d.renew || d.force_format || d.pin_reset || d.reset_pin_reset_to_no);
    assert_int_equal(tps_token_policy_parse("PIN_RESET=YES;renew=yes", &d, &p), TPS_TDB_OK);
    assert_true(p.pin_reset && p.renew && p.re_enroll);
    assert_int_equal(tps_token_policy_parse("", NULL, &p), TPS_TDB_OK);
    assert_true(p.re_enroll); /* §1.8: absent RE_ENROLL = allowed */
    assert_int_equal(tps_token_policy_parse("RE_ENROLL=MAYBE", NULL, &p), TPS_TDB_EINVAL);
    assert_int_equal(tps_token_policy_parse("RE_ENROLL", NULL, &p), TPS_TDB_EINVAL);
    assert_int_equal(tps_token_policy_parse("RE_ENROLL=NO;UNKNOWN=YES", NULL, &p), TPS_TDB_OK);
    assert_false(p.re_enroll);
    assert_int_equal(tps_token_policy_format(&d, buf, sizeof(buf)), TPS_TDB_ETOOBIG);
    {
        char big[128];
        assert_int_equal(tps_token_policy_format(&d, big, sizeof(big)), TPS_TDB_OK);
        assert_string_equal(big, TPS_TOKENDB_DEFAULT_POLICY);
    }

    assert_int_equal(tps_token_status_parse("ACTIVE", NULL), TPS_TOKEN_ACTIVE);
    assert_int_equal(tps_token_status_parse("UNINITIALIZED", NULL), TPS_TOKEN_FORMATTED);
    assert_int_equal(tps_token_status_parse("TEMP_LOST", NULL), TPS_TOKEN_SUSPENDED);
    assert_int_equal(tps_token_status_parse("lost", "onHold"), TPS_TOKEN_SUSPENDED);
    assert_int_equal(tps_token_status_parse("lost", "destroyed"), TPS_TOKEN_DAMAGED);
    assert_int_equal(tps_token_status_parse("lost", "keyCompromise"), TPS_TOKEN_PERM_LOST);
    assert_int_equal(tps_token_status_parse("disabled", NULL), TPS_TOKEN_PERM_LOST);
    assert_int_equal(tps_token_status_parse("bogus", NULL), TPS_TOKEN_UNKNOWN);
    assert_string_equal(tps_token_status_reason(TPS_TOKEN_SUSPENDED), "onHold");
    assert_null(tps_token_status_reason(TPS_TOKEN_ACTIVE));

    assert_int_equal(tps_ldap_filter_escape("a*(b)\\", buf, sizeof(buf)), TPS_TDB_OK);
    assert_string_equal(buf, "a\\2a\\28b\\29\\5c");
    assert_int_equal(tps_ldap_filter_escape("****", buf, 8), TPS_TDB_ETOOBIG);

    /* default tables of §1.7 */
    assert_true(
        tps_tokendb_transition_allowed(cfg1, TPS_TDB_AGENT, TPS_TOKEN_ACTIVE, TPS_TOKEN_SUSPENDED));
    assert_true(
        tps_tokendb_transition_allowed(cfg1, TPS_TDB_AGENT, TPS_TOKEN_SUSPENDED, TPS_TOKEN_ACTIVE));
    assert_false(
        tps_tokendb_transition_allowed(cfg1, TPS_TDB_AGENT, TPS_TOKEN_ACTIVE, TPS_TOKEN_FORMATTED));
    assert_false(tps_tokendb_transition_allowed(cfg1, TPS_TDB_AGENT, TPS_TOKEN_TERMINATED,
                                                TPS_TOKEN_ACTIVE));
    assert_true(tps_tokendb_transition_allowed(cfg1, TPS_TDB_OPERATION, TPS_TOKEN_ACTIVE,
                                               TPS_TOKEN_FORMATTED));
    assert_false(tps_tokendb_transition_allowed(cfg1, TPS_TDB_OPERATION, TPS_TOKEN_SUSPENDED,
                                                TPS_TOKEN_ACTIVE));
}

static void
test_tokendb_config_refused(void **state)
{
    struct tps_tokendb_conf c;
    struct tps_tokendb_cfg *cfg = NULL;
    char err[512], pw[300];
    FILE *f;

    (void)state;
    base_conf(&c, fx.uri1, "GW_1");
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_ECONFIG);
    assert_non_null(strstr(err, "tps.instanceId"));
    assert_null(cfg);

    base_conf(&c, "ldap://ldap.example.com:389/", "gw1");
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_ECONFIG);
    assert_non_null(strstr(err, "non-loopback"));
    c.ldap.starttls = true; /* protected: accepted */
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_OK);
    tps_tokendb_cfg_free(cfg);
    cfg = NULL;
    base_conf(&c, "ldap.example.com:636", "gw1");
    c.ldap.ssl = true;
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_OK);
    tps_tokendb_cfg_free(cfg);
    cfg = NULL;

    base_conf(&c, "127.0.0.1:1 http://x/", "gw1");
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_ECONFIG);

    base_conf(&c, fx.uri1, "gw1");
    c.allowed_transitions = "0:1,4:9";
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_ECONFIG);
    assert_non_null(strstr(err, "tokendb.allowedTransitions"));

    /* an empty list is the default table, never "everything" */
    base_conf(&c, fx.uri1, "gw1");
    c.allowed_transitions = "";
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_OK);
    assert_false(
        tps_tokendb_transition_allowed(cfg, TPS_TDB_AGENT, TPS_TOKEN_TERMINATED, TPS_TOKEN_ACTIVE));
    assert_true(
        tps_tokendb_transition_allowed(cfg, TPS_TDB_AGENT, TPS_TOKEN_ACTIVE, TPS_TOKEN_SUSPENDED));
    tps_tokendb_cfg_free(cfg);
    cfg = NULL;
    c.allowed_transitions = "6:4";
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_OK);
    assert_true(
        tps_tokendb_transition_allowed(cfg, TPS_TDB_AGENT, TPS_TOKEN_TERMINATED, TPS_TOKEN_ACTIVE));
    assert_false(
        tps_tokendb_transition_allowed(cfg, TPS_TDB_AGENT, TPS_TOKEN_ACTIVE, TPS_TOKEN_SUSPENDED));
    tps_tokendb_cfg_free(cfg);
    cfg = NULL;

    base_conf(&c, fx.uri1, "gw1");
    c.default_policy = "RE_ENROLL=SOMETIMES";
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_ECONFIG);

    /* a password file others can read is refused */
    snprintf(pw, sizeof(pw), "%s/open.pw", fx.dir);
    f = fopen(pw, "w");
    assert_non_null(f);
    fputs("secret\n", f);
    fclose(f);
    assert_int_equal(chmod(pw, 0644), 0);
    base_conf(&c, fx.uri1, "gw1");
    c.ldap.bind_pw_file = pw;
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_ECONFIG);
    assert_non_null(strstr(err, "chmod 600"));
    assert_null(strstr(err, "secret"));
    base_conf(&c, fx.uri1, "gw1");
    c.base_dn = "not a dn";
    assert_int_equal(tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)), TPS_TDB_ECONFIG);
}

/* ---- records and transitions ------------------------------------------------------------ */

static void
test_tokendb_create_read_update(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);
    struct tps_token t, again;
    char cuid[21];
    struct tps_token_mod m;
    time_t created;

    (void)state;
    memset(&t, 0, sizeof(t));
    memset(&again, 0, sizeof(again));
    new_cuid(cuid);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_ENOTFOUND);
    assert_int_equal(tps_tokendb_token_get(db, "xyz,cn=evil", &t), TPS_TDB_EINVAL);
    create_token(db, cuid, "alice", TPS_TOKEN_UNFORMATTED, &t);
    assert_string_equal(t.cuid, cuid);
    assert_int_equal(t.status, TPS_TOKEN_UNFORMATTED);
    assert_string_equal(t.status_raw, "UNFORMATTED");
    assert_null(t.reason);
    assert_int_equal(t.modified, 0);
    assert_string_equal(t.user_id, "alice");
    assert_string_equal(t.key_info, "0101");
    assert_string_equal(t.policy, TPS_TOKENDB_DEFAULT_POLICY);
    /* we write true UTC: the stored time is within a minute of time(NULL) */
    assert_non_null(t.date_create);
    assert_true(tps_tdb_utc_parse(t.date_create, &created));
    assert_true(created <= time(NULL) + 1 && created >= time(NULL) - 60);
    /* a second add of the same CUID: 68 -> EEXISTS (the caller re-reads and modifies) */
    assert_int_equal(tps_tokendb_token_create(db, cuid, NULL, NULL), TPS_TDB_EEXISTS);

    /* format (7 -> 0) then enroll (0 -> 4): operation transitions */
    memset(&m, 0, sizeof(m));
    m.set_status = true;
    m.status = TPS_TOKEN_FORMATTED;
    m.actor = TPS_TDB_OPERATION;
    m.applet_id = "1.4.58768072";
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_OK);
    assert_int_equal(t.modified, 1);
    m.status = TPS_TOKEN_ACTIVE;
    m.applet_id = NULL;
    m.user_id = "bob";
    m.type = ""; /* removes tokenType */
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_OK);
    assert_int_equal(t.modified, 2);

    assert_int_equal(tps_tokendb_token_get(db, cuid, &again), TPS_TDB_OK);
    assert_int_equal(again.status, TPS_TOKEN_ACTIVE);
    assert_string_equal(again.user_id, "bob");
    assert_null(again.type);
    assert_string_equal(again.applet_id, "1.4.58768072");
    assert_int_equal(again.modified, 2);
    assert_string_equal(again.date_modify, t.date_modify);

    /* agent suspends: reason follows the status */
    memset(&m, 0, sizeof(m));
    m.set_status = true;
    m.status = TPS_TOKEN_SUSPENDED;
    m.actor = TPS_TDB_AGENT;
    assert_int_equal(tps_tokendb_token_update(db, &again, &m, NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_OK);
    assert_int_equal(t.status, TPS_TOKEN_SUSPENDED);
    assert_string_equal(t.reason, "onHold");
    /* and back to ACTIVE (3:4): the reason is removed again */
    m.status = TPS_TOKEN_ACTIVE;
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &again), TPS_TDB_OK);
    assert_null(again.reason);
    assert_int_equal(again.modified, 4);

    tps_token_cleanup(&t);
    tps_token_cleanup(&again);
    tps_tokendb_close(db);
}

static void
test_tokendb_illegal_transition_refused(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);
    struct tps_token t, again;
    char cuid[21];
    struct tps_token_mod m;

    (void)state;
    memset(&t, 0, sizeof(t));
    memset(&again, 0, sizeof(again));
    new_cuid(cuid);
    create_token(db, cuid, "alice", TPS_TOKEN_ACTIVE, &t);
    memset(&m, 0, sizeof(m));
    m.set_status = true;
    m.status = TPS_TOKEN_FORMATTED; /* 4:0 is an operation transition, not an agent one */
    m.actor = TPS_TDB_AGENT;
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_ETRANSITION);
    assert_non_null(strstr(tps_tokendb_errmsg(db), "ACTIVE (4) -> FORMATTED (0)"));
    m.status = TPS_TOKEN_TERMINATED; /* 4:6 allowed for agents */
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_OK);
    m.status = TPS_TOKEN_ACTIVE; /* 6:4 never */
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_ETRANSITION);
    m.actor = TPS_TDB_OPERATION;
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_ETRANSITION);
    /* 6:7 then UNFORMATTED clears user, type, applet, key info, policy (§1.7) */
    m.actor = TPS_TDB_AGENT;
    m.status = TPS_TOKEN_UNFORMATTED;
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &again), TPS_TDB_OK);
    assert_int_equal(again.status, TPS_TOKEN_UNFORMATTED);
    assert_string_equal(again.status_raw, "UNFORMATTED");
    assert_null(again.user_id);
    assert_null(again.type);
    assert_null(again.key_info);
    assert_null(again.policy);
    assert_null(again.reason);
    assert_int_equal(again.modified, 2); /* refused changes wrote nothing */
    tps_token_cleanup(&t);
    tps_token_cleanup(&again);
    tps_tokendb_close(db);
}

static void
test_tokendb_asserted_conflict_detected(void **state)
{
    struct tps_tokendb *a = open_db(cfg1), *b = open_db(cfg2);
    struct tps_token ta, tb;
    char cuid[21];
    struct tps_token_mod m;

    (void)state;
    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    new_cuid(cuid);
    create_token(a, cuid, "alice", TPS_TOKEN_ACTIVE, NULL);
    assert_int_equal(tps_tokendb_token_get(a, cuid, &ta), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(b, cuid, &tb), TPS_TDB_OK);
    memset(&m, 0, sizeof(m));
    m.applet_id = "1.4.1";
    assert_int_equal(tps_tokendb_token_update(a, &ta, &m, NULL), TPS_TDB_OK);
    /* b still holds modified=0: its write must not silently overwrite a's */
    m.applet_id = "1.4.2";
    assert_int_equal(tps_tokendb_token_update(b, &tb, &m, NULL), TPS_TDB_ECONFLICT);
    assert_non_null(strstr(tps_tokendb_errmsg(b), "Assertion Failed"));
    assert_non_null(strstr(tps_tokendb_errmsg(b), cuid));
    /* re-read and re-decide */
    assert_int_equal(tps_tokendb_token_get(b, cuid, &tb), TPS_TDB_OK);
    assert_string_equal(tb.applet_id, "1.4.1");
    assert_int_equal(tps_tokendb_token_update(b, &tb, &m, NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(a, cuid, &ta), TPS_TDB_OK);
    assert_string_equal(ta.applet_id, "1.4.2");
    assert_int_equal(ta.modified, 2);
    tps_token_cleanup(&ta);
    tps_token_cleanup(&tb);
    tps_tokendb_close(a);
    tps_tokendb_close(b);
}

/* ---- leases -------------------------------------------------------------------------------- */

struct racer {
    const struct tps_tokendb_cfg *cfg;
    const char *cuid;
    pthread_barrier_t *go;
    enum tps_tdb_rc rc;
    struct tps_token_lease lease;
};

static void *
race_thread(void *arg)
{
    struct racer *r = arg;
    struct tps_tokendb *db = NULL;
    struct tps_token t;

    memset(&t, 0, sizeof(t));
    r->rc = tps_tokendb_open(r->cfg, &db);
    if (r->rc == TPS_TDB_OK)
        r->rc = tps_tokendb_token_get(db, r->cuid, &t); /* connect before the race */
    pthread_barrier_wait(r->go);
    if (r->rc == TPS_TDB_OK)
        r->rc = tps_tokendb_lease_acquire(db, &t, 60, &r->lease);
    tps_token_cleanup(&t);
    tps_tokendb_close(db);
    return NULL;
}

static void
test_tokendb_lease_race_one_wins(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);

    (void)state;
    for (int round = 0; round < 8; round++) {
        char cuid[21];
        pthread_t th[2];
        pthread_barrier_t go;
        struct racer r[2];
        int wins = 0, busy = 0;

        new_cuid(cuid);
        create_token(db, cuid, "alice", TPS_TOKEN_ACTIVE, NULL);
        pthread_barrier_init(&go, NULL, 2);
        for (int i = 0; i < 2; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].cfg = i ? cfg2 : cfg1;
            r[i].cuid = cuid;
            r[i].go = &go;
            assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < 2; i++) {
            if (r[i].rc == TPS_TDB_OK)
                wins++;
            else if (r[i].rc == TPS_TDB_EBUSY)
                busy++;
        }
        assert_int_equal(wins, 1);
        assert_int_equal(busy, 1);
        for (int i = 0; i < 2; i++)
            if (r[i].rc == TPS_TDB_OK)
                assert_non_null(strstr(r[i].lease.owner, i ? "gw2." : "gw1."));
    }
    tps_tokendb_close(db);
}

static void
test_tokendb_lease_lifecycle(void **state)
{
    struct tps_tokendb *a = open_db(cfg1), *b = open_db(cfg2);
    struct tps_token ta, tb;
    struct tps_token_lease la, lb;
    char cuid[21];
    struct tps_token_mod m;

    (void)state;
    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    new_cuid(cuid);
    create_token(a, cuid, "alice", TPS_TOKEN_ACTIVE, &ta);
    assert_int_equal(tps_tokendb_lease_acquire(a, &ta, 1, &la), TPS_TDB_OK);
    assert_int_equal(la.epoch, 1);
    assert_int_equal(ta.modified, 1);
    assert_non_null(ta.lease_value);
    /* b sees the lease and is refused */
    assert_int_equal(tps_tokendb_token_get(b, cuid, &tb), TPS_TDB_OK);
    assert_string_equal(tb.lease_value, la.value);
    assert_int_equal(tps_tokendb_lease_acquire(b, &tb, 60, &lb), TPS_TDB_EBUSY);
    assert_non_null(strstr(tps_tokendb_errmsg(b), la.owner));
    /* the holder writes under its lease */
    memset(&m, 0, sizeof(m));
    m.applet_id = "1.4.9";
    assert_int_equal(tps_tokendb_token_update(a, &ta, &m, &la), TPS_TDB_OK);
    /* after expiry b takes it over ... */
    sleep(2);
    assert_int_equal(tps_tokendb_lease_acquire(b, &tb, 60, &lb), TPS_TDB_OK);
    assert_true(lb.epoch > la.epoch);
    /* ... and the stale holder can neither write, renew nor release */
    m.applet_id = "1.4.10";
    assert_int_equal(tps_tokendb_token_get(a, cuid, &ta), TPS_TDB_OK); /* fresh counter */
    assert_int_equal(tps_tokendb_token_update(a, &ta, &m, &la), TPS_TDB_ELEASE);
    assert_int_equal(tps_tokendb_lease_renew(a, &ta, 60, &la), TPS_TDB_ELEASE);
    assert_int_equal(tps_tokendb_lease_release(a, &ta, &la), TPS_TDB_ELEASE);
    /* the new holder renews, writes, releases */
    assert_int_equal(tps_tokendb_lease_renew(b, &tb, 120, &lb), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_update(b, &tb, &m, &lb), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_lease_release(b, &tb, &lb), TPS_TDB_OK);
    assert_null(tb.lease_value);
    assert_int_equal(tps_tokendb_token_get(a, cuid, &ta), TPS_TDB_OK);
    assert_null(ta.lease_value);
    assert_string_equal(ta.applet_id, "1.4.10");
    /* free again: a takes it at once */
    assert_int_equal(tps_tokendb_lease_acquire(a, &ta, 60, &la), TPS_TDB_OK);
    assert_true(la.epoch > lb.epoch);
    assert_int_equal(tps_tokendb_lease_release(a, &ta, &la), TPS_TDB_OK);
    tps_token_cleanup(&ta);
    tps_token_cleanup(&tb);
    tps_tokendb_close(a);
    tps_tokendb_close(b);
}

/* ---- singleton-job leases ---------------------------------------------------------------- */

struct job_racer {
    const struct tps_tokendb_cfg *cfg;
    const char *job;
    pthread_barrier_t *go;
    enum tps_tdb_rc rc;
    struct tps_job_lease lease;
};

static void *
job_race_thread(void *arg)
{
    struct job_racer *r = arg;
    struct tps_tokendb *db = NULL;
    struct tps_token t;

    memset(&t, 0, sizeof(t));
    r->rc = tps_tokendb_open(r->cfg, &db);
    if (r->rc == TPS_TDB_OK) /* connect before the race */
        (void)tps_tokendb_token_get(db, "FFFFFFFFFFFFFFFFFFFF", &t);
    pthread_barrier_wait(r->go);
    if (r->rc == TPS_TDB_OK)
        r->rc = tps_tokendb_job_lease_acquire(db, r->job, 60, &r->lease);
    tps_token_cleanup(&t);
    tps_tokendb_close(db);
    return NULL;
}

static void
test_tokendb_job_lease(void **state)
{
    struct tps_tokendb *a = open_db(cfg1), *b = open_db(cfg2);
    struct tps_job_lease la, lb;
    char job[32];

    (void)state;
    /* race on a job nobody has run yet: the entry is created by exactly one */
    for (int round = 0; round < 4; round++) {
        pthread_t th[2];
        pthread_barrier_t go;
        struct job_racer r[2];
        int wins = 0, busy = 0;

        snprintf(job, sizeof(job), "race-%u-%d", (unsigned)getpid(), round);
        pthread_barrier_init(&go, NULL, 2);
        for (int i = 0; i < 2; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].cfg = i ? cfg2 : cfg1;
            r[i].job = job;
            r[i].go = &go;
            assert_int_equal(pthread_create(&th[i], NULL, job_race_thread, &r[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < 2; i++) {
            wins += r[i].rc == TPS_TDB_OK;
            busy += r[i].rc == TPS_TDB_EBUSY;
        }
        assert_int_equal(wins, 1);
        assert_int_equal(busy, 1);
    }

    snprintf(job, sizeof(job), "prune-%u", (unsigned)getpid());
    assert_int_equal(tps_tokendb_job_lease_acquire(a, "Bad_Name", 60, &la), TPS_TDB_EINVAL);
    assert_int_equal(tps_tokendb_job_lease_acquire(a, job, 1, &la), TPS_TDB_OK);
    assert_int_equal(la.epoch, 1);
    assert_int_equal(tps_tokendb_job_lease_acquire(b, job, 60, &lb), TPS_TDB_EBUSY);
    assert_non_null(strstr(tps_tokendb_errmsg(b), "gw1"));
    /* the holder renews: the epoch moves on */
    assert_int_equal(tps_tokendb_job_lease_acquire(a, job, 1, &la), TPS_TDB_OK);
    assert_int_equal(la.epoch, 2);
    /* expiry: b takes over, a's release is refused */
    sleep(2);
    assert_int_equal(tps_tokendb_job_lease_acquire(b, job, 60, &lb), TPS_TDB_OK);
    assert_int_equal(lb.epoch, 3);
    assert_int_equal(tps_tokendb_job_lease_release(a, &la), TPS_TDB_ELEASE);
    assert_int_equal(tps_tokendb_job_lease_acquire(a, job, 60, &la), TPS_TDB_EBUSY);
    /* b releases: a may take it at once */
    assert_int_equal(tps_tokendb_job_lease_release(b, &lb), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_job_lease_acquire(a, job, 60, &la), TPS_TDB_OK);
    assert_int_equal(la.epoch, 4);
    tps_tokendb_close(a);
    tps_tokendb_close(b);
}

/* ---- pending key version ------------------------------------------------------------------- */

static void
test_tokendb_pending_key_round_trip(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);
    struct tps_token t, r;
    char cuid[21];
    time_t since;

    (void)state;
    memset(&t, 0, sizeof(t));
    memset(&r, 0, sizeof(r));
    new_cuid(cuid);
    create_token(db, cuid, "alice", TPS_TOKEN_ACTIVE, &t);
    assert_null(t.pending_key_info);
    assert_true(tps_token_key_info_matches(&t, "0101"));
    assert_false(tps_token_key_info_matches(&t, "0201"));
    /* before PUT KEY */
    assert_int_equal(tps_tokendb_pending_key_set(db, &t, "0201", NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_pending_key_set(db, &t, "02,01", NULL), TPS_TDB_EINVAL);
    /* "crash": another handle reads the record */
    assert_int_equal(tps_tokendb_token_get(db, cuid, &r), TPS_TDB_OK);
    assert_string_equal(r.pending_key_info, "0201");
    assert_non_null(r.pending_since);
    assert_true(tps_tdb_utc_parse(r.pending_since, &since));
    assert_true(since <= time(NULL) && since > time(NULL) - 60);
    assert_string_equal(r.key_info, "0101");
    /* the card may be on either version: both pass the DB check */
    assert_true(tps_token_key_info_matches(&r, "0101"));
    assert_true(tps_token_key_info_matches(&r, "0201"));
    assert_false(tps_token_key_info_matches(&r, "0301"));
    /* a newer attempt replaces the pending value (one at a time) */
    assert_int_equal(tps_tokendb_pending_key_set(db, &r, "0301", NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_OK);
    assert_string_equal(t.pending_key_info, "0301");
    assert_int_equal(t.n_extensions, 0);
    /* channel opened at 0301: commit */
    assert_int_equal(tps_tokendb_pending_key_commit(db, &t, "0301", NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &r), TPS_TDB_OK);
    assert_string_equal(r.key_info, "0301");
    assert_null(r.pending_key_info);
    assert_null(r.pending_value);
    assert_false(tps_token_key_info_matches(&r, "0101"));
    /* set then clear (abandoned before PUT KEY) */
    assert_int_equal(tps_tokendb_pending_key_set(db, &r, "0401", NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_pending_key_clear(db, &r, NULL), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_pending_key_clear(db, &r, NULL), TPS_TDB_OK); /* no-op */
    assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_OK);
    assert_null(t.pending_key_info);
    assert_string_equal(t.key_info, "0301");
    tps_token_cleanup(&t);
    tps_token_cleanup(&r);
    tps_tokendb_close(db);
}

/* ---- certificates and activities ---------------------------------------------------------- */

/* A self-signed certificate (P-256) with the given serial, DER in out. Returns its length. */
static size_t
make_cert(long serial, uint8_t *out, size_t size)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    unsigned char *p = out;
    int len;

    assert_non_null(key);
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"Alice Example", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    len = i2d_X509(x, NULL);
    assert_true(len > 0 && (size_t)len <= size);
    assert_int_equal(i2d_X509(x, &p), len);
    X509_free(x);
    EVP_PKEY_free(key);
    return (size_t)len;
}

static void
test_tokendb_certs_and_activities_unique(void **state)
{
    struct tps_tokendb *a = open_db(cfg1), *b = open_db(cfg2);
    char cuid[21], cns[6][TPS_TDB_CN_MAX];
    struct tps_token_cert *list = NULL;
    size_t n = 0;
    uint8_t der[4][2048], junk[64];
    size_t der_len[4];

    (void)state;
    new_cuid(cuid);
    for (int i = 0; i < 4; i++)
        der_len[i] = make_cert(31, der[i], sizeof(der[i]));
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 7 + 1);
    {
        /* not a certificate: refused by the certificate syntax */
        struct tps_token_cert c = {.cuid = cuid,
                                   .serial = "0x1f",
                                   .status = "active",
                                   .der = junk,
                                   .der_len = sizeof(junk)};
        assert_int_equal(tps_tokendb_cert_add(a, &c, NULL, 0), TPS_TDB_EINVAL);
        c.status = "valid";
        c.der = NULL;
        assert_int_equal(tps_tokendb_cert_add(a, &c, NULL, 0), TPS_TDB_EINVAL);
    }
    /* two instances, same serial, same second: names must differ */
    for (int i = 0; i < 4; i++) {
        struct tps_token_cert c = {.cuid = cuid,
                                   .serial = "0x1f",
                                   .status = "active",
                                   .user_id = "alice",
                                   .issuer = "CN=CA,O=Example",
                                   .subject = "CN=Alice Example",
                                   .key_type = "signing",
                                   .type = "userKey",
                                   .not_before = "20250101000000Z",
                                   .not_after = "20270101000000Z",
                                   .der = der[i],
                                   .der_len = der_len[i]};
        enum tps_tdb_rc rc = tps_tokendb_cert_add(i % 2 ? b : a, &c, cns[i], sizeof(cns[i]));
        if (rc != TPS_TDB_OK)
            fprintf(stderr, "cert add: %s\n", tps_tokendb_errmsg(i % 2 ? b : a));
        assert_int_equal(rc, TPS_TDB_OK);
        assert_non_null(strstr(cns[i], i % 2 ? "Z.gw2." : "Z.gw1."));
        assert_int_equal(strlen(cns[i]), 20 + 1 + 1 + 3 + 1 + 20);
    }
    for (int i = 0; i < 4; i++)
        for (int k = i + 1; k < 4; k++)
            assert_string_not_equal(cns[i], cns[k]);
    assert_int_equal(tps_tokendb_cert_list(a, cuid, &list, &n), TPS_TDB_OK);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].cuid, cuid);
        assert_string_equal(list[i].status, "active");
        assert_string_equal(list[i].subject, "CN=Alice Example");
        assert_non_null(list[i].der);
        /* the DER written is read back byte for byte, under the same entry name */
        for (int k = 0; k < 4; k++)
            if (strcmp(list[i].cn, cns[k]) == 0) {
                assert_int_equal(list[i].der_len, der_len[k]);
                assert_memory_equal(list[i].der, der[k], der_len[k]);
            }
    }
    /* oldest first */
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(list[i - 1].date_create, list[i].date_create) <= 0);
    /* revoke one, then unrevoke */
    assert_int_equal(tps_tokendb_cert_set_status(b, cns[2], "revoked_on_hold"), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_cert_set_status(b, cns[2], "gone"), TPS_TDB_EINVAL);
    assert_int_equal(tps_tokendb_cert_set_status(b, "nosuch.cert", "revoked"), TPS_TDB_ENOTFOUND);
    tps_token_certs_free(list, n);
    assert_int_equal(tps_tokendb_cert_list(a, cuid, &list, &n), TPS_TDB_OK);
    {
        int held = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(list[i].cn, cns[2]) == 0) {
                assert_string_equal(list[i].status, "revoked_on_hold");
                held++;
            }
        assert_int_equal(held, 1);
    }
    tps_token_certs_free(list, n);
    assert_int_equal(tps_tokendb_cert_set_status(a, cns[2], "active"), TPS_TDB_OK);

    /* activities: a burst from two instances, all distinct */
    {
        char acts[40][TPS_TDB_CN_MAX];
        struct tps_token_activity act = {.op = "enrollment",
                                         .result = "success",
                                         .cuid = cuid,
                                         .user_id = "alice",
                                         .ip = "127.0.0.1",
                                         .msg = "test",
                                         .type = "userKey"};
        for (int i = 0; i < 40; i++)
            assert_int_equal(
                tps_tokendb_activity_add(i % 2 ? b : a, &act, acts[i], sizeof(acts[i])),
                TPS_TDB_OK);
        for (int i = 0; i < 40; i++)
            for (int k = i + 1; k < 40; k++)
                assert_string_not_equal(acts[i], acts[k]);
        act.op = NULL;
        assert_int_equal(tps_tokendb_activity_add(a, &act, NULL, 0), TPS_TDB_EINVAL);
    }
    tps_tokendb_close(a);
    tps_tokendb_close(b);
}

static void
test_tokendb_list_and_paging(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);
    struct tps_token *arr = NULL;
    size_t n = 0, total = 0;
    char cuids[7][21];
    struct tps_token_query q = {.user_id = "pager"};
    struct tps_tokendb_cursor cur;
    int pages = 0;

    (void)state;
    for (int i = 0; i < 7; i++) {
        new_cuid(cuids[i]);
        create_token(db, cuids[i], "pager", TPS_TOKEN_ACTIVE, NULL);
    }
    create_token(db, "FFFF0000000000000001", "pager*", TPS_TOKEN_ACTIVE, NULL);
    assert_int_equal(tps_tokendb_token_list_by_user(db, "pager", &arr, &n), TPS_TDB_OK);
    assert_int_equal(n, 7); /* "pager*" is not matched: the uid is escaped */
    tps_tokens_free(arr, n);
    assert_int_equal(tps_tokendb_token_list_by_user(db, "pager*", &arr, &n), TPS_TDB_OK);
    assert_int_equal(n, 1);
    tps_tokens_free(arr, n);
    assert_int_equal(tps_tokendb_token_list_by_user(db, "nobody", &arr, &n), TPS_TDB_OK);
    assert_int_equal(n, 0);
    tps_tokens_free(arr, n);

    memset(&cur, 0, sizeof(cur));
    while (!cur.done) {
        assert_int_equal(tps_tokendb_token_page(db, &q, 3, &cur, &arr, &n), TPS_TDB_OK);
        assert_true(n <= 3);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(arr[i].user_id, "pager");
        total += n;
        pages++;
        tps_tokens_free(arr, n);
        assert_true(pages < 10);
    }
    assert_int_equal(total, 7);
    assert_true(pages >= 3);
    tps_tokendb_cursor_cleanup(&cur);
    q.status = "ACTIVE";
    q.type = "userKey";
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(tps_tokendb_token_page(db, &q, 100, &cur, &arr, &n), TPS_TDB_OK);
    assert_int_equal(n, 7);
    assert_true(cur.done);
    tps_tokens_free(arr, n);
    tps_tokendb_cursor_cleanup(&cur);
    assert_int_equal(tps_tokendb_token_delete(db, "FFFF0000000000000001"), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_delete(db, "FFFF0000000000000001"), TPS_TDB_ENOTFOUND);
    tps_tokendb_close(db);
}

/* ---- access control ------------------------------------------------------------------------ */

/* Number of entries `who` (NULL: anonymous) sees under base, or -1 - LDAP code. */
static int
count_as(const char *uri, const char *who, const char *pw, const char *base)
{
    LDAP *ld = NULL;
    LDAPMessage *res = NULL;
    struct berval cred;
    int lrc, n = -1, v3 = LDAP_VERSION3;
    char pwbuf[128];

    if (ldap_initialize(&ld, uri) != LDAP_SUCCESS)
        return -1000;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    if (who != NULL) {
        snprintf(pwbuf, sizeof(pwbuf), "%s", pw);
        cred.bv_val = pwbuf;
        cred.bv_len = strlen(pwbuf);
        lrc = ldap_sasl_bind_s(ld, who, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
        if (lrc != LDAP_SUCCESS) {
            ldap_unbind_ext_s(ld, NULL, NULL);
            return -1 - lrc;
        }
    }
    lrc = ldap_search_ext_s(ld, base, LDAP_SCOPE_SUBTREE, "(objectClass=*)", NULL, 0, NULL, NULL,
                            NULL, 0, &res);
    if (lrc == LDAP_SUCCESS)
        n = ldap_count_entries(ld, res);
    else
        n = -1 - lrc;
    ldap_msgfree(res);
    ldap_unbind_ext_s(ld, NULL, NULL);
    return n;
}

static void
test_tokendb_acl_anonymous_refused(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);
    char cuid[21], base[200], dn[260], user[200], agent[200], gwpw[128];
    FILE *f;
    int n;

    (void)state;
    new_cuid(cuid);
    create_token(db, cuid, "carol", TPS_TOKEN_ACTIVE, NULL);
    snprintf(base, sizeof(base), "ou=Tokens,%s", fx.basedn);
    snprintf(dn, sizeof(dn), "cn=%s,%s", cuid, base);
    snprintf(user, sizeof(user), "uid=carol,ou=People,%s", fx.basedn);
    snprintf(agent, sizeof(agent), "uid=bob,ou=People,%s", fx.basedn);
    f = fopen(fx.gwpw_file, "r");
    assert_non_null(f);
    assert_non_null(fgets(gwpw, sizeof(gwpw), f));
    fclose(f);
    gwpw[strcspn(gwpw, "\n")] = '\0';

    /* anonymous: nothing, not even the existence of the container (32) */
    n = count_as(fx.uri1, NULL, NULL, base);
    assert_true(n == 0 || n == -1 - LDAP_NO_SUCH_OBJECT);
    n = count_as(fx.uri1, NULL, NULL, dn);
    assert_true(n == 0 || n == -1 - LDAP_NO_SUCH_OBJECT);
    n = count_as(fx.uri2, NULL, NULL, fx.basedn);
    assert_true(n <= 0);
    /* a plain user (even the token's owner) sees no token entries */
    n = count_as(fx.uri1, user, "carol-secret", base);
    assert_true(n == 0 || n == -1 - LDAP_NO_SUCH_OBJECT);
    /* an agent and the gateway do */
    assert_true(count_as(fx.uri1, agent, "bob-secret", dn) == 1);
    assert_true(count_as(fx.uri1, fx.gwdn, gwpw, dn) == 1);
    /* nobody reads password hashes through the gateway identity */
    {
        LDAP *ld = NULL;
        LDAPMessage *res = NULL;
        struct berval cred = {strlen(gwpw), gwpw};
        char *attrs[] = {(char[]){"userPassword"}, NULL};
        int v3 = LDAP_VERSION3;
        struct berval **vals;

        assert_int_equal(ldap_initialize(&ld, fx.uri1), LDAP_SUCCESS);
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
        assert_int_equal(ldap_sasl_bind_s(ld, fx.gwdn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL),
                         LDAP_SUCCESS);
        assert_int_equal(ldap_search_ext_s(ld, user, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0,
                                           NULL, NULL, NULL, 0, &res),
                         LDAP_SUCCESS);
        assert_int_equal(ldap_count_entries(ld, res), 1);
        vals = ldap_get_values_len(ld, ldap_first_entry(ld, res), "userPassword");
        assert_null(vals);
        ldap_msgfree(res);
        ldap_unbind_ext_s(ld, NULL, NULL);
    }
    tps_tokendb_close(db);
}

/* ---- failover ------------------------------------------------------------------------------ */

static void
test_tokendb_unreachable_is_down(void **state)
{
    struct tps_tokendb_cfg *cfg;
    struct tps_tokendb *db;
    struct tps_token t;
    long long t0;

    (void)state;
    memset(&t, 0, sizeof(t));
    /* port 1 on loopback: refused at once */
    cfg = make_cfg("ldap://127.0.0.1:1/", "gw9", 0);
    assert_non_null(cfg);
    db = open_db(cfg);
    t0 = tdb_fx_ms();
    assert_int_equal(tps_tokendb_token_get(db, "A000", &t), TPS_TDB_EDOWN);
    assert_true(tdb_fx_ms() - t0 < 1500);
    assert_non_null(strstr(tps_tokendb_errmsg(db), "127.0.0.1:1"));
    tps_tokendb_close(db);
    tps_tokendb_cfg_free(cfg);
}

static int
server_port(struct tps_tokendb *db)
{
    char srv[80];
    const char *colon;

    tps_ldap_conn_server(tps_tokendb_conn(db), srv, sizeof(srv));
    colon = strrchr(srv, ':');
    return colon ? (int)strtol(colon + 1, NULL, 10) : -1;
}

static void
test_tokendb_hung_provider_costs_one_timeout(void **state)
{
    char list[300], cuid[21];
    struct tps_tokendb_cfg *cfg;
    struct tps_tokendb *db;
    struct tps_token t;
    long long t0, dt;

    (void)state;
    memset(&t, 0, sizeof(t));
    snprintf(list, sizeof(list), "%s %s", fx.uri1, fx.uri2);
    cfg = make_cfg_tmo(list, "gw3", 2, 1000); /* 1 s operations, fail back after 2 s */
    assert_non_null(cfg);
    db = open_db(cfg);
    new_cuid(cuid);
    create_token(db, cuid, "alice", TPS_TOKEN_ACTIVE, NULL);
    assert_int_equal(server_port(db), fx.port1);
    /* wait until provider 2 has the record */
    {
        struct tps_tokendb_cfg *c2 = make_cfg(fx.uri2, "gw4", 0);
        struct tps_tokendb *d2 = open_db(c2);
        int i;
        for (i = 0; i < 100 && tps_tokendb_token_get(d2, cuid, &t) != TPS_TDB_OK; i++)
            usleep(50 * 1000);
        assert_true(i < 100);
        tps_tokendb_close(d2);
        tps_tokendb_cfg_free(c2);
    }

    assert_int_equal(kill(fx.pid1, SIGSTOP), 0);
    assert_int_equal(tdb_fx_wait_stopped(fx.pid1, 5000), 0); /* SIGSTOP is asynchronous */
    t0 = tdb_fx_ms();
    assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_OK);
    dt = tdb_fx_ms() - t0;
    fprintf(stderr, "hung provider: pid %ld port %d -> %d after %lld ms\n", (long)fx.pid1, fx.port1,
            server_port(db), dt);
    assert_true(dt >= 900); /* one operation timeout (1 s) ... */
    assert_true(dt < 3500); /* ... and only one (two would take >= 2000 + a connect) */
    assert_int_equal(server_port(db), fx.port2);
    assert_string_equal(t.cuid, cuid);
    /* the next operations go straight to provider 2 */
    t0 = tdb_fx_ms();
    for (int i = 0; i < 5; i++)
        assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_OK);
    assert_true(tdb_fx_ms() - t0 < 500);
    /* a brand-new handle would pick the hung provider again: ours does not (rotated) */
    assert_int_equal(server_port(db), fx.port2);
    assert_int_equal(kill(fx.pid1, SIGCONT), 0);
    /* fail back after failback_s */
    sleep(2);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_OK);
    assert_int_equal(server_port(db), fx.port1);
    tps_token_cleanup(&t);
    tps_tokendb_close(db);
    tps_tokendb_cfg_free(cfg);
}

static void
test_tokendb_stopped_provider_fails_over(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);
    struct tps_token t;
    char cuid[21];
    long long t0;
    struct tps_token_mod m;
    struct tps_token_activity act = {.op = "format", .result = "success"};

    (void)state;
    memset(&t, 0, sizeof(t));
    new_cuid(cuid);
    create_token(db, cuid, "alice", TPS_TOKEN_ACTIVE, &t);
    assert_int_equal(server_port(db), fx.port1);
    assert_int_equal(kill(fx.pid1, SIGTERM), 0);
    assert_int_equal(tdb_fx_wait_gone(fx.pid1, 10000), 0);
    /* the live handle is dead (-1): rebuilt once, provider 1 refuses, provider 2 answers */
    t0 = tdb_fx_ms();
    {
        struct tps_token r;
        int i;
        enum tps_tdb_rc rc = TPS_TDB_ENOTFOUND;
        memset(&r, 0, sizeof(r));
        /* the add may not have replicated yet: retry briefly on ENOTFOUND only */
        for (i = 0; i < 40; i++) {
            rc = tps_tokendb_token_get(db, cuid, &r);
            if (rc != TPS_TDB_ENOTFOUND)
                break;
            usleep(50 * 1000);
        }
        assert_int_equal(rc, TPS_TDB_OK);
        tps_token_cleanup(&r);
    }
    assert_true(tdb_fx_ms() - t0 < 2500);
    assert_int_equal(server_port(db), fx.port2);
    /* writes continue on provider 2 */
    memset(&m, 0, sizeof(m));
    m.applet_id = "1.4.77";
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, NULL), TPS_TDB_OK);
    act.cuid = cuid;
    assert_int_equal(tps_tokendb_activity_add(db, &act, NULL, 0), TPS_TDB_OK);
    tps_token_cleanup(&t);
    tps_tokendb_close(db);
    /* a new handle fails over at connect time */
    db = open_db(cfg2);
    t0 = tdb_fx_ms();
    assert_int_equal(tps_tokendb_token_get(db, cuid, &t), TPS_TDB_OK);
    assert_true(tdb_fx_ms() - t0 < 1500);
    assert_string_equal(t.applet_id, "1.4.77");
    tps_token_cleanup(&t);
    tps_tokendb_close(db);
}

/* ---- a provider that dies after applying a write, before answering ---- */

/* Forwards one LDAP connection to provider 1; once `drop` is set, the next request is
 * forwarded, given time to apply and replicate, and then both sockets and the listener are
 * closed without the answer: what a SIGKILL between commit and reply looks like. */
struct dropper {
    int lfd, port;
    atomic_bool drop;
    pthread_t th;
};

static int
dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void *
dropper_run(void *arg)
{
    struct dropper *d = arg;
    char buf[16384];

    for (;;) {
        int c = accept(d->lfd, NULL, NULL), u;
        struct pollfd p[2];
        bool dead = false;

        if (c < 0)
            return NULL;
        u = dial(fx.port1);
        p[0] = (struct pollfd){.fd = c, .events = POLLIN};
        p[1] = (struct pollfd){.fd = u, .events = POLLIN};
        while (u >= 0 && !dead && poll(p, 2, -1) > 0) {
            for (int i = 0; i < 2 && !dead; i++) {
                ssize_t n;
                if (!(p[i].revents & (POLLIN | POLLHUP)))
                    continue;
                n = read(p[i].fd, buf, sizeof(buf));
                if (n <= 0 || write(p[1 - i].fd, buf, (size_t)n) != n) {
                    dead = true;
                } else if (i == 0 && atomic_load(&d->drop)) {
                    sleep(1); /* applied on provider 1 and replicated to provider 2 */
                    close(d->lfd); /* the provider is gone: new connections are refused */
                    close(c);
                    close(u);
                    return NULL;
                }
            }
        }
        close(c);
        if (u >= 0)
            close(u);
    }
}

static void
dropper_start(struct dropper *d)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(d->lfd >= 0);
    assert_int_equal(bind(d->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(d->lfd, 4), 0);
    assert_int_equal(getsockname(d->lfd, (struct sockaddr *)&a, &al), 0);
    d->port = ntohs(a.sin_port);
    atomic_init(&d->drop, false);
    assert_int_equal(pthread_create(&d->th, NULL, dropper_run, d), 0);
}

static void
test_tokendb_lost_answer_of_applied_write(void **state)
{
    struct dropper d;
    struct tps_tokendb_cfg *cfg;
    struct tps_tokendb *db;
    struct tps_token t, r;
    struct tps_token_lease l;
    struct tps_token_mod m;
    char list[300], cuid[21];

    (void)state;
    memset(&t, 0, sizeof(t));
    memset(&r, 0, sizeof(r));
    dropper_start(&d);
    snprintf(list, sizeof(list), "ldap://127.0.0.1:%d %s", d.port, fx.uri2);
    cfg = make_cfg(list, "gw5", 0);
    assert_non_null(cfg);
    db = open_db(cfg);
    new_cuid(cuid);
    create_token(db, cuid, "alice", TPS_TOKEN_FORMATTED, &t);
    assert_int_equal(server_port(db), d.port);
    assert_int_equal(tps_tokendb_lease_acquire(db, &t, 60, &l), TPS_TDB_OK);
    /* provider 1 applies the update and dies before answering; the second send reaches
     * provider 2, which already has the change: its assertion fails, yet the write is ours */
    atomic_store(&d.drop, true);
    memset(&m, 0, sizeof(m));
    m.set_status = true;
    m.status = TPS_TOKEN_ACTIVE;
    m.actor = TPS_TDB_OPERATION;
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, &l), TPS_TDB_OK);
    assert_int_equal(server_port(db), fx.port2);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &r), TPS_TDB_OK);
    assert_int_equal(r.status, TPS_TOKEN_ACTIVE);
    assert_int_equal(r.modified, t.modified);
    /* and the handle goes on under its lease */
    assert_int_equal(tps_tokendb_lease_release(db, &t, &l), TPS_TDB_OK);
    pthread_join(d.th, NULL);
    tps_token_cleanup(&t);
    tps_token_cleanup(&r);
    tps_tokendb_close(db);
    tps_tokendb_cfg_free(cfg);
}

/* tokendb.leaseWait: a lease that expires while we wait is taken; a live one is not. */
static void
test_tokendb_lease_wait(void **state)
{
    struct tps_tokendb_conf c;
    struct tps_tokendb_cfg *wcfg = NULL;
    struct tps_tokendb *a = open_db(cfg1), *b;
    struct tps_token ta, tb;
    struct tps_token_lease la, lb;
    char cuid[21], err[512], list[300];
    long long t0, dt;

    (void)state;
    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    snprintf(list, sizeof(list), "%s %s", fx.uri1, fx.uri2);
    base_conf(&c, list, "gw6");
    c.lease_wait_ms = 3000;
    assert_int_equal(tps_tokendb_cfg_new(&c, &wcfg, err, sizeof(err)), TPS_TDB_OK);
    b = open_db(wcfg);
    new_cuid(cuid);
    create_token(a, cuid, "alice", TPS_TOKEN_ACTIVE, &ta);
    assert_int_equal(tps_tokendb_lease_acquire(a, &ta, 1, &la), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(b, cuid, &tb), TPS_TDB_OK);
    t0 = tdb_fx_ms();
    assert_int_equal(tps_tokendb_lease_acquire(b, &tb, 60, &lb), TPS_TDB_OK);
    dt = tdb_fx_ms() - t0;
    assert_true(dt >= 200);  /* it waited ... */
    assert_true(dt < 3000); /* ... for the 1 s lease, not for the whole leaseWait */
    assert_true(lb.epoch > la.epoch);
    /* a lease longer than the wait: refused after leaseWait, naming the holder */
    t0 = tdb_fx_ms();
    assert_int_equal(tps_tokendb_lease_acquire(a, &ta, 60, &la), TPS_TDB_EBUSY);
    assert_non_null(strstr(tps_tokendb_errmsg(a), lb.owner));
    assert_true(tdb_fx_ms() - t0 < 1000); /* cfg1 has no leaseWait */
    assert_int_equal(tps_tokendb_lease_release(b, &tb, &lb), TPS_TDB_OK);
    tps_token_cleanup(&ta);
    tps_token_cleanup(&tb);
    tps_tokendb_close(a);
    tps_tokendb_close(b);
    tps_tokendb_cfg_free(wcfg);
}

/* Release and renewal are asserted on the counter we last wrote: where the record does not
 * hold our last change (a provider that never received it), they must not write, or their
 * newer entry would replace that change when the replicas reconverge. */
static void
test_tokendb_lease_release_asserts_counter(void **state)
{
    struct tps_tokendb *db = open_db(cfg1);
    struct tps_token t, r;
    struct tps_token_lease l;
    struct tps_token_mod m;
    char cuid[21];

    (void)state;
    memset(&t, 0, sizeof(t));
    memset(&r, 0, sizeof(r));
    new_cuid(cuid);
    create_token(db, cuid, "alice", TPS_TOKEN_FORMATTED, &t);
    assert_int_equal(tps_tokendb_lease_acquire(db, &t, 60, &l), TPS_TDB_OK);
    memset(&m, 0, sizeof(m));
    m.set_status = true;
    m.status = TPS_TOKEN_ACTIVE;
    m.actor = TPS_TDB_OPERATION;
    assert_int_equal(tps_tokendb_token_update(db, &t, &m, &l), TPS_TDB_OK);
    /* what a provider without the ACTIVE write holds: the counter before it */
    t.modified--;
    assert_int_equal(tps_tokendb_lease_renew(db, &t, 60, &l), TPS_TDB_ELEASE);
    assert_int_equal(tps_tokendb_lease_release(db, &t, &l), TPS_TDB_ELEASE);
    assert_non_null(strstr(tps_tokendb_errmsg(db), "changed since our last write"));
    assert_int_equal(tps_tokendb_token_get(db, cuid, &r), TPS_TDB_OK);
    assert_non_null(r.lease_value); /* left to expire */
    assert_int_equal(r.status, TPS_TOKEN_ACTIVE);
    /* with the counter we really wrote, both work */
    t.modified++;
    assert_int_equal(tps_tokendb_lease_renew(db, &t, 60, &l), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_lease_release(db, &t, &l), TPS_TDB_OK);
    assert_int_equal(tps_tokendb_token_get(db, cuid, &r), TPS_TDB_OK);
    assert_null(r.lease_value);
    tps_token_cleanup(&t);
    tps_token_cleanup(&r);
    tps_tokendb_close(db);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokendb_utc_policy_status),
        cmocka_unit_test(test_tokendb_config_refused),
        cmocka_unit_test(test_tokendb_create_read_update),
        cmocka_unit_test(test_tokendb_illegal_transition_refused),
        cmocka_unit_test(test_tokendb_asserted_conflict_detected),
        cmocka_unit_test(test_tokendb_lease_race_one_wins),
        cmocka_unit_test(test_tokendb_lease_lifecycle),
        cmocka_unit_test(test_tokendb_lease_release_asserts_counter),
        cmocka_unit_test(test_tokendb_job_lease),
        cmocka_unit_test(test_tokendb_pending_key_round_trip),
        cmocka_unit_test(test_tokendb_certs_and_activities_unique),
        cmocka_unit_test(test_tokendb_list_and_paging),
        cmocka_unit_test(test_tokendb_acl_anonymous_refused),
        cmocka_unit_test(test_tokendb_unreachable_is_down),
        cmocka_unit_test(test_tokendb_hung_provider_costs_one_timeout),
        cmocka_unit_test(test_tokendb_lease_wait),
        cmocka_unit_test(test_tokendb_lost_answer_of_applied_write),
        /* last: stops provider 1 for good */
        cmocka_unit_test(test_tokendb_stopped_provider_fails_over),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
