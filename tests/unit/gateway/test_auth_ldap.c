/* tests/unit/gateway/test_auth_ldap.c - gateway/auth_ldap.c against a real slapd (one node,
 * schema, database and ACLs added at run time over ldapi, StartTLS available): login ok,
 * wrong password, unknown and ambiguous users, filter injection, StartTLS, LDAP down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth_ldap.h"
#include "tdb_fixture.h"

static struct tdb_fx fx;
static struct tps_auth_ldap_cfg *cfg; /* plain LDAP on loopback, gateway identity */

static void
base_conf(struct tps_auth_ldap_conf *c, const char *hostport)
{
    static char people[200];

    memset(c, 0, sizeof(*c));
    snprintf(people, sizeof(people), "ou=People,%s", fx.basedn);
    c->ldap.hostport = hostport;
    c->ldap.bind_dn = fx.gwdn;
    c->ldap.bind_pw_file = fx.gwpw_file;
    c->ldap.network_timeout_ms = 1000;
    c->ldap.op_timeout_ms = 1000;
    c->base_dn = people;
    c->name = "auth.instance.1";
}

static struct tps_auth_ldap_cfg *
make_cfg(const struct tps_auth_ldap_conf *c)
{
    struct tps_auth_ldap_cfg *out = NULL;
    char err[512];

    if (tps_auth_ldap_cfg_new(c, &out, err, sizeof(err)) != TPS_TDB_OK) {
        fprintf(stderr, "auth cfg: %s\n", err);
        return NULL;
    }
    return out;
}

static int
group_setup(void **state)
{
    struct tps_auth_ldap_conf c;
    char hostport[160];
    const char *p;

    (void)state;
    if (tps_ldap_global_init() != 0)
        return -1;
    if (tdb_fx_start(&fx, "single") != 0)
        return -1;
    /* the legacy host:port form of auth.instance.1.hostport */
    p = strstr(fx.uri1, "://");
    snprintf(hostport, sizeof(hostport), "%s", p ? p + 3 : fx.uri1);
    hostport[strcspn(hostport, "/")] = '\0';
    base_conf(&c, hostport);
    cfg = make_cfg(&c);
    return cfg != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    tps_auth_ldap_cfg_free(cfg);
    tdb_fx_stop(&fx);
    return 0;
}

static struct tps_auth_ldap *
open_auth(const struct tps_auth_ldap_cfg *c)
{
    struct tps_auth_ldap *a = NULL;

    assert_int_equal(tps_auth_ldap_open(c, &a), TPS_TDB_OK);
    return a;
}

/* Logs in with a copy of pw; checks the copy is wiped afterwards. */
static enum tps_tdb_rc
login(struct tps_auth_ldap *a, const char *uid, const char *pw, struct tps_auth_user *u)
{
    char buf[64];
    size_t n = strlen(pw);
    enum tps_tdb_rc rc;
    static const char zero[64];

    assert_true(n < sizeof(buf));
    memcpy(buf, pw, n + 1);
    rc = tps_auth_ldap_login(a, uid, buf, n, u);
    assert_memory_equal(buf, zero, n); /* wiped whatever the result */
    if (n > 0)
        assert_null(strstr(tps_auth_ldap_errmsg(a), pw)); /* never in messages */
    return rc;
}

static void
test_auth_ldap_ok_returns_attributes(void **state)
{
    struct tps_auth_ldap *a = open_auth(cfg);
    struct tps_auth_user u;
    char dn[200];

    (void)state;
    assert_int_equal(login(a, "alice", "alice-secret", &u), TPS_TDB_OK);
    snprintf(dn, sizeof(dn), "uid=alice,ou=People,%s", fx.basedn);
    assert_string_equal(u.dn, dn);
    assert_string_equal(u.uid, "alice");
    assert_string_equal(tps_auth_user_get(&u, "mail"), "alice@example.com");
    assert_string_equal(tps_auth_user_get(&u, "CN"), "Alice Example");
    assert_null(tps_auth_user_get(&u, "userPassword"));
    assert_int_equal(tps_auth_ldap_end_op_status(TPS_TDB_OK), 0);
    tps_auth_user_cleanup(&u);
    /* the handle is bound as alice now; the next login rebinds as the service first, so a
     * user without mail (whose entry alice could not read) still works */
    assert_int_equal(login(a, "carol", "carol-secret", &u), TPS_TDB_OK);
    assert_string_equal(tps_auth_user_get(&u, "cn"), "Carol User");
    assert_null(tps_auth_user_get(&u, "mail"));
    tps_auth_user_cleanup(&u);
    assert_int_equal(login(a, "alice", "alice-secret", &u), TPS_TDB_OK);
    tps_auth_user_cleanup(&u);
    tps_auth_ldap_close(a);
}

static void
test_auth_ldap_wrong_password(void **state)
{
    struct tps_auth_ldap *a = open_auth(cfg);
    struct tps_auth_user u;

    (void)state;
    assert_int_equal(login(a, "alice", "alice-secreT", &u), TPS_TDB_ECREDS);
    assert_null(u.dn);
    assert_non_null(strstr(tps_auth_ldap_errmsg(a), "Invalid credentials"));
    assert_int_equal(tps_auth_ldap_end_op_status(TPS_TDB_ECREDS), 14);
    /* an empty password would be an anonymous bind that succeeds: refused locally */
    assert_int_equal(login(a, "alice", "", &u), TPS_TDB_ECREDS);
    assert_int_equal(tps_auth_ldap_login(a, "alice", NULL, 0, &u), TPS_TDB_ECREDS);
    /* and a good login still works on the same handle afterwards */
    assert_int_equal(login(a, "alice", "alice-secret", &u), TPS_TDB_OK);
    tps_auth_user_cleanup(&u);
    tps_auth_ldap_close(a);
}

static void
test_auth_ldap_unknown_and_ambiguous_user(void **state)
{
    struct tps_auth_ldap *a = open_auth(cfg);
    struct tps_auth_user u;

    (void)state;
    assert_int_equal(login(a, "mallory", "whatever", &u), TPS_TDB_ENOUSER);
    assert_non_null(strstr(tps_auth_ldap_errmsg(a), "not found"));
    assert_int_equal(tps_auth_ldap_end_op_status(TPS_TDB_ENOUSER), 14);
    /* two entries carry uid=twin: never guess which one */
    assert_int_equal(login(a, "twin", "twin-secret", &u), TPS_TDB_ENOUSER);
    assert_non_null(strstr(tps_auth_ldap_errmsg(a), "several"));
    /* filter injection: the uid is escaped, so '*' matches nobody, and a crafted filter
     * does not turn into an OR */
    assert_int_equal(login(a, "*", "alice-secret", &u), TPS_TDB_ENOUSER);
    assert_int_equal(login(a, "alice)(uid=*", "alice-secret", &u), TPS_TDB_ENOUSER);
    assert_int_equal(login(a, "", "x", &u), TPS_TDB_ENOUSER);
    /* a uid with a newline cannot forge a log line through the detail message */
    assert_int_equal(login(a, "x\nlevel=error evil=1", "pw-never-shown", &u), TPS_TDB_ENOUSER);
    assert_null(strchr(tps_auth_ldap_errmsg(a), '\n'));
    tps_auth_ldap_close(a);
}

static void
test_auth_ldap_membership_by_exact_dn(void **state)
{
    struct tps_auth_ldap *a = open_auth(cfg);
    char group[200], bob[200], carol[200];
    bool m = true;

    (void)state;
    snprintf(group, sizeof(group), "cn=TPS Agents,ou=Groups,%s", fx.basedn);
    snprintf(bob, sizeof(bob), "uid=bob,ou=People,%s", fx.basedn);
    snprintf(carol, sizeof(carol), "uid=carol,ou=People,%s", fx.basedn);
    assert_int_equal(tps_auth_ldap_is_member(a, group, bob, &m), TPS_TDB_OK);
    assert_true(m);
    assert_int_equal(tps_auth_ldap_is_member(a, group, carol, &m), TPS_TDB_OK);
    assert_false(m);
    assert_int_equal(tps_auth_ldap_is_member(a, group, "uid=bob*", &m), TPS_TDB_OK);
    assert_false(m);
    tps_auth_ldap_close(a);
}

static void
test_auth_ldap_starttls(void **state)
{
    struct tps_auth_ldap_conf c;
    struct tps_auth_ldap_cfg *tls;
    struct tps_auth_ldap *a;
    struct tps_auth_user u;
    enum tps_tdb_rc rc;

    (void)state;
    base_conf(&c, fx.uri1);
    c.ldap.starttls = true;
    c.ldap.ca_file = fx.ca_file;
    tls = make_cfg(&c);
    assert_non_null(tls);
    a = open_auth(tls);
    assert_int_equal(login(a, "alice", "alice-secret", &u), TPS_TDB_OK);
    assert_string_equal(tps_auth_user_get(&u, "mail"), "alice@example.com");
    tps_auth_user_cleanup(&u);
    tps_auth_ldap_close(a);
    tps_auth_ldap_cfg_free(tls);

    /* ldaps: SSLOn turns host:port into ldaps:// */
    {
        char hp[64];
        snprintf(hp, sizeof(hp), "127.0.0.1:%d", fx.ports);
        base_conf(&c, hp);
        c.ldap.ssl = true;
        c.ldap.ca_file = fx.ca_file;
        tls = make_cfg(&c);
        assert_non_null(tls);
        a = open_auth(tls);
        assert_int_equal(login(a, "alice", "alice-secret", &u), TPS_TDB_OK);
        tps_auth_user_cleanup(&u);
        tps_auth_ldap_close(a);
        tps_auth_ldap_cfg_free(tls);
    }

    /* a CA that did not sign the server certificate: the connection is refused, the
     * password never leaves */
    base_conf(&c, fx.uri1);
    c.ldap.starttls = true;
    c.ldap.ca_file = "/etc/ssl/certs/ca-certificates.crt";
    tls = make_cfg(&c);
    assert_non_null(tls);
    a = open_auth(tls);
    rc = login(a, "alice", "alice-secret", &u);
    assert_true(rc == TPS_TDB_ELDAP || rc == TPS_TDB_EDOWN);
    assert_int_equal(tps_auth_ldap_end_op_status(rc), 25);
    tps_auth_ldap_close(a);
    tps_auth_ldap_cfg_free(tls);
}

/* Without a service identity the search runs anonymously, and the ACLs give anonymous
 * nothing under ou=People, not even the base (32): a directory-side misconfiguration, so the
 * status is 25, not "wrong password" (configure auth.instance.N.bindDN). */
static void
test_auth_ldap_anonymous_search_refused(void **state)
{
    struct tps_auth_ldap_conf c;
    struct tps_auth_ldap_cfg *anon;
    struct tps_auth_ldap *a;
    struct tps_auth_user u;

    (void)state;
    base_conf(&c, fx.uri1);
    c.ldap.bind_dn = NULL;
    c.ldap.bind_pw_file = NULL;
    anon = make_cfg(&c);
    assert_non_null(anon);
    a = open_auth(anon);
    assert_int_equal(login(a, "alice", "alice-secret", &u), TPS_TDB_ELDAP);
    assert_non_null(strstr(tps_auth_ldap_errmsg(a), "No such object (32)"));
    assert_int_equal(tps_auth_ldap_end_op_status(TPS_TDB_ELDAP), 25);
    assert_null(u.dn);
    tps_auth_ldap_close(a);
    tps_auth_ldap_cfg_free(anon);
}

static void
test_auth_ldap_config_refused(void **state)
{
    struct tps_auth_ldap_conf c;
    struct tps_auth_ldap_cfg *bad = NULL;
    char err[512];

    (void)state;
    base_conf(&c, fx.uri1);
    c.base_dn = "nonsense";
    assert_int_equal(tps_auth_ldap_cfg_new(&c, &bad, err, sizeof(err)), TPS_TDB_ECONFIG);
    assert_non_null(strstr(err, "auth.instance.1.baseDN"));
    base_conf(&c, fx.uri1);
    c.attributes = "mail,(cn)";
    assert_int_equal(tps_auth_ldap_cfg_new(&c, &bad, err, sizeof(err)), TPS_TDB_ECONFIG);
    base_conf(&c, "ldap.example.com:389");
    assert_int_equal(tps_auth_ldap_cfg_new(&c, &bad, err, sizeof(err)), TPS_TDB_ECONFIG);
    assert_non_null(strstr(err, "non-loopback"));
    assert_null(bad);
}

static void
test_auth_ldap_down(void **state)
{
    struct tps_auth_ldap_conf c;
    struct tps_auth_ldap_cfg *dead;
    struct tps_auth_ldap *a, *live = open_auth(cfg);
    struct tps_auth_user u;
    long long t0;

    (void)state;
    /* nothing listens there */
    base_conf(&c, "127.0.0.1:1");
    dead = make_cfg(&c);
    assert_non_null(dead);
    a = open_auth(dead);
    t0 = tdb_fx_ms();
    assert_int_equal(login(a, "alice", "alice-secret", &u), TPS_TDB_EDOWN);
    assert_true(tdb_fx_ms() - t0 < 1500);
    assert_int_equal(tps_auth_ldap_end_op_status(TPS_TDB_EDOWN), 25);
    tps_auth_ldap_close(a);
    tps_auth_ldap_cfg_free(dead);

    /* a working handle whose only server goes away */
    assert_int_equal(login(live, "alice", "alice-secret", &u), TPS_TDB_OK);
    tps_auth_user_cleanup(&u);
    assert_int_equal(kill(fx.pid1, SIGTERM), 0);
    assert_int_equal(tdb_fx_wait_gone(fx.pid1, 10000), 0);
    t0 = tdb_fx_ms();
    assert_int_equal(login(live, "alice", "alice-secret", &u), TPS_TDB_EDOWN);
    assert_true(tdb_fx_ms() - t0 < 1500);
    assert_null(u.dn);
    tps_auth_ldap_close(live);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_ldap_ok_returns_attributes),
        cmocka_unit_test(test_auth_ldap_wrong_password),
        cmocka_unit_test(test_auth_ldap_unknown_and_ambiguous_user),
        cmocka_unit_test(test_auth_ldap_membership_by_exact_dn),
        cmocka_unit_test(test_auth_ldap_starttls),
        cmocka_unit_test(test_auth_ldap_anonymous_search_refused),
        cmocka_unit_test(test_auth_ldap_config_refused),
        /* last: stops the server */
        cmocka_unit_test(test_auth_ldap_down),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
