/* tests/unit/libfailover/test_fo_list.c - endpoint-list parsing (Dogtag host:port syntax, IPv6
 * in brackets), list options, names and counters without any network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <libfailover/failover.h>

struct good_case {
    const char *spec;
    size_t count;
    const char *first;
    const char *last;
};

static const struct good_case good[] = {
    {"ca1.example.com:8443", 1, "ca1.example.com:8443", "ca1.example.com:8443"},
    {"ca1:8443 ca2:8443", 2, "ca1:8443", "ca2:8443"},
    {"ca1:8443,ca2:8443", 2, "ca1:8443", "ca2:8443"},
    {"  ca1:1\tca2:65535 , ca3:2\n", 3, "ca1:1", "ca3:2"},
    {"[::1]:8443", 1, "[::1]:8443", "[::1]:8443"},
    {"[2001:db8::1]:443 tks_2.example-x.org:8443", 2, "[2001:db8::1]:443",
     "tks_2.example-x.org:8443"},
    {"[::ffff:127.0.0.1]:80", 1, "[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80"},
    {"127.0.0.1:08443", 1, "127.0.0.1:8443", "127.0.0.1:8443"},
};

struct bad_case {
    const char *spec;
    const char *msg; /* expected in the error text */
};

static const struct bad_case bad[] = {
    {"", "empty"},
    {"   , \t", "empty"},
    {"ca1", "missing port"},
    {"ca1:", "port must be"},
    {":8443", "empty host"},
    {"ca1:0", "port must be"},
    {"ca1:65536", "port must be"},
    {"ca1:123456", "port must be"},
    {"ca1:84x3", "port must be"},
    {"ca1:-1", "port must be"},
    {"::1:8443", "brackets"},
    {"ca1:8443:1", "brackets"},
    {"[::1]", "missing port"},
    {"[::1]8443", "missing port"},
    {"[::1:8443", "missing ']'"},
    {"[]:8443", "IPv6"},
    {"[ca1]:8443", "IPv6"},
    {"[fe80::1%eth0]:8443", "zone"},
    {"ca/1:8443", "bad character"},
    {"ca1:8443 ca2", "endpoint 2"},
    {"https://ca1:8443", "brackets"},
};

static void
test_fo_list_good_specs(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        struct fo_list *l = NULL;
        size_t n = 99;
        char err[256];
        struct fo_opts o;

        assert_int_equal(fo_list_check(good[k].spec, &n, err, sizeof(err)), FO_OK);
        assert_int_equal(n, good[k].count);
        assert_string_equal(err, "");
        fo_opts_init(&o);
        o.name = "ca1";
        assert_int_equal(fo_list_new(good[k].spec, &o, &l, err, sizeof(err)), FO_OK);
        assert_non_null(l);
        assert_int_equal(fo_list_count(l), good[k].count);
        assert_string_equal(fo_list_endpoint(l, 0), good[k].first);
        assert_string_equal(fo_list_endpoint(l, good[k].count - 1), good[k].last);
        assert_null(fo_list_endpoint(l, good[k].count));
        assert_string_equal(fo_list_name(l), "ca1");
        fo_list_free(l);
    }
}

static void
test_fo_list_bad_specs(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct fo_list *l = (struct fo_list *)&l; /* must be set to NULL */
        char err[256] = "";
        size_t n = 42;

        assert_int_equal(fo_list_check(bad[k].spec, &n, err, sizeof(err)), FO_EINVAL);
        assert_int_equal(n, 42); /* outputs untouched on failure */
        if (strstr(err, bad[k].msg) == NULL)
            fail_msg("spec '%s': error '%s' lacks '%s'", bad[k].spec, err, bad[k].msg);
        assert_int_equal(fo_list_new(bad[k].spec, NULL, &l, err, sizeof(err)), FO_EINVAL);
        assert_null(l);
    }
    assert_int_equal(fo_list_check(NULL, NULL, NULL, 0), FO_EINVAL);
}

static void
test_fo_list_limits(void **state)
{
    char spec[FO_MAX_ENDPOINTS * 16 + 512], err[256], host[FO_ENDPOINT_MAX + 8];
    size_t len = 0, n = 0;

    (void)state;
    for (int i = 0; i < FO_MAX_ENDPOINTS; i++)
        len += (size_t)snprintf(spec + len, sizeof(spec) - len, "h%d:%d ", i, 1000 + i);
    assert_int_equal(fo_list_check(spec, &n, err, sizeof(err)), FO_OK);
    assert_int_equal(n, FO_MAX_ENDPOINTS);
    (void)snprintf(spec + len, sizeof(spec) - len, "one-more:1");
    assert_int_equal(fo_list_check(spec, &n, err, sizeof(err)), FO_EINVAL);
    assert_non_null(strstr(err, "more than"));

    /* Longest acceptable host: FO_HOST_MAX - 1 characters; one more is refused. */
    memset(host, 'a', sizeof(host));
    host[FO_HOST_MAX - 1] = '\0';
    (void)snprintf(spec, sizeof(spec), "%s:12345", host);
    assert_int_equal(fo_list_check(spec, &n, err, sizeof(err)), FO_OK);
    (void)snprintf(spec, sizeof(spec), "%sb:12345", host);
    assert_int_equal(fo_list_check(spec, &n, err, sizeof(err)), FO_EINVAL);
    assert_non_null(strstr(err, "host longer than"));
    /* A token longer than FO_ENDPOINT_MAX - 1 is refused before anything is copied. */
    memset(host, 'a', sizeof(host));
    host[FO_ENDPOINT_MAX] = '\0';
    (void)snprintf(spec, sizeof(spec), "%s:1", host);
    assert_int_equal(fo_list_check(spec, &n, err, sizeof(err)), FO_EINVAL);
    assert_non_null(strstr(err, "longer than"));
    {
        struct fo_list *l = NULL;

        host[FO_HOST_MAX + 4] = '\0'; /* a token that fits, a host that does not */
        (void)snprintf(spec, sizeof(spec), "%s:1", host);
        assert_int_equal(fo_list_new(spec, NULL, &l, err, sizeof(err)), FO_EINVAL);
        assert_null(l);
    }
    /* a tiny error buffer is never overrun */
    assert_int_equal(fo_list_check("nope", NULL, err, 4), FO_EINVAL);
    assert_int_equal(strlen(err), 3);
}

static void
test_fo_list_bad_options(void **state)
{
    struct fo_opts o;
    struct fo_list *l = NULL;
    char err[256];

    (void)state;
    fo_opts_init(&o);
    assert_int_equal(o.connect_timeout_ms, 5000);
    assert_int_equal(o.fail_threshold, 2);
    assert_int_equal(o.refuse_threshold, 1);
    assert_int_equal(o.backoff_min_ms, 5000);
    assert_int_equal(o.backoff_max_ms, 300000);
    assert_true(o.tls);
    o.deadline_ms = 0;
    assert_int_equal(fo_list_new("a:1", &o, &l, err, sizeof(err)), FO_EINVAL);
    assert_non_null(strstr(err, "deadline_ms"));
    fo_opts_init(&o);
    o.backoff_max_ms = 10;
    assert_int_equal(fo_list_new("a:1", &o, &l, err, sizeof(err)), FO_EINVAL);
    fo_opts_init(&o);
    o.verify_name = "bad name";
    assert_int_equal(fo_list_new("a:1", &o, &l, err, sizeof(err)), FO_EINVAL);
    fo_opts_init(&o);
    o.fail_threshold = 0;
    assert_int_equal(fo_list_new("a:1", &o, &l, err, sizeof(err)), FO_EINVAL);
    assert_null(l);
    assert_int_equal(fo_list_new("a:1", &o, NULL, err, sizeof(err)), FO_EINVAL);
}

static void
test_fo_list_names_never_null(void **state)
{
    (void)state;
    for (int rc = 0; rc < FO_RC_COUNT + 3; rc++)
        assert_non_null(fo_strerror((enum fo_rc)rc));
    assert_string_equal(fo_strerror((enum fo_rc)999), "unknown error");
    for (int f = 0; f < FO_FAIL_COUNT + 3; f++)
        assert_non_null(fo_fail_name((enum fo_fail)f));
    assert_string_equal(fo_fail_name(FO_FAIL_REFUSED), "refused");
    assert_string_equal(fo_breaker_name(FO_BREAKER_HALF_OPEN), "half-open");
    assert_int_equal(fo_lat_bucket_ms(0), 1);
    assert_int_equal(fo_lat_bucket_ms(FO_LAT_BUCKETS - 2), 10000);
    assert_int_equal(fo_lat_bucket_ms(FO_LAT_BUCKETS - 1), UINT32_MAX);
    assert_int_equal(fo_lat_bucket_ms(FO_LAT_BUCKETS + 5), UINT32_MAX);
}

static void
test_fo_list_stats_fresh(void **state)
{
    struct fo_list *l = NULL;
    struct fo_ep_stats es;
    struct fo_list_stats ls;

    (void)state;
    assert_int_equal(fo_list_new("[::1]:8443 b:2", NULL, &l, NULL, 0), FO_OK);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_string_equal(es.endpoint, "[::1]:8443");
    assert_int_equal(es.breaker, FO_BREAKER_CLOSED);
    assert_int_equal(es.requests, 0);
    assert_int_equal(fo_list_ep_stats(l, 2, &es), FO_EINVAL);
    fo_list_stats(l, &ls);
    assert_int_equal(ls.calls, 0);
    fo_list_free(l);
    fo_list_free(NULL);
}

static void
test_fo_list_invalid_call(void **state)
{
    struct fo_list *l = NULL;
    struct fo_req *r = NULL;
    struct fo_call c = {.method = FO_POST, .path = "/ca/ee/ca/profileSubmitSSLClient"};

    (void)state;
    assert_int_equal(fo_list_new("127.0.0.1:1", NULL, &l, NULL, 0), FO_OK);
    assert_int_equal(fo_req_new(&r), FO_OK);
    c.path = "no-slash";
    assert_int_equal(fo_req_perform(r, l, &c), FO_EINVAL);
    c.path = "/a b";
    assert_int_equal(fo_req_perform(r, l, &c), FO_EINVAL);
    c.path = "/a\r\nX-Injected: 1";
    assert_int_equal(fo_req_perform(r, l, &c), FO_EINVAL);
    c.path = "/ok";
    c.body_len = 3; /* without a body */
    assert_int_equal(fo_req_perform(r, l, &c), FO_EINVAL);
    c.body_len = 0;
    c.content_type = "text/plain\r\nX: y";
    assert_int_equal(fo_req_perform(r, l, &c), FO_EINVAL);
    assert_int_equal(fo_req_attempt_count(r), 0);
    assert_non_null(strstr(fo_req_errmsg(r), "invalid call"));
    assert_int_equal(fo_req_perform(NULL, l, &c), FO_EINVAL);
    fo_req_free(r);
    fo_req_free(NULL);
    fo_list_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fo_list_good_specs),
        cmocka_unit_test(test_fo_list_bad_specs),
        cmocka_unit_test(test_fo_list_limits),
        cmocka_unit_test(test_fo_list_bad_options),
        cmocka_unit_test(test_fo_list_names_never_null),
        cmocka_unit_test(test_fo_list_stats_fresh),
        cmocka_unit_test(test_fo_list_invalid_call),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    fo_global_cleanup();
    return rc;
}
