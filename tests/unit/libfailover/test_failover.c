/* tests/unit/libfailover/test_failover.c - libfailover against misbehaving loopback clones:
 * refusal, hang, slow answer, close after reading, 500, bad/stalled TLS, breaker and backoff,
 * deadlines, idempotency (a non-idempotent call is never received twice), concurrency while a
 * clone dies and comes back. The servers count what they received. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <libfailover/failover.h>

#include "fo_testsrv.h"

/* ---- fixtures ------------------------------------------------------------------------- */

static _Atomic uint64_t fake_now = 1000000; /* ms, moved by hand */

static uint64_t
fake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now);
}

#define SECRET "s3cr3t-body-bytes"

static atomic_uint log_lines;
static atomic_bool log_leaked;

static void
capture_log(void *arg, enum fo_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    atomic_fetch_add(&log_lines, 1);
    if (strstr(line, SECRET) != NULL)
        atomic_store(&log_leaked, true);
}

/* Options for fast tests: plain HTTP, short timeouts, long backoff on a fake clock, no
 * jitter. */
static void
fast_opts(struct fo_opts *o)
{
    fo_opts_init(o);
    o->name = "t";
    o->tls = false;
    o->connect_timeout_ms = 300;
    o->response_timeout_ms = 300;
    o->deadline_ms = 2000;
    o->backoff_min_ms = 5000;
    o->backoff_max_ms = 40000;
    o->jitter_pct = 0;
    o->clock = fake_clock;
    o->log = capture_log;
    o->log_level = FO_LOG_DEBUG;
}

static struct fo_list *
make_list(const struct fo_opts *o, unsigned p0, unsigned p1, unsigned p2)
{
    char spec[128], err[256];
    struct fo_list *l = NULL;
    int n = snprintf(spec, sizeof(spec), "127.0.0.1:%u", p0);

    if (p1 != 0)
        n += snprintf(spec + n, sizeof(spec) - (size_t)n, " 127.0.0.1:%u", p1);
    if (p2 != 0)
        (void)snprintf(spec + n, sizeof(spec) - (size_t)n, ",127.0.0.1:%u", p2);
    if (fo_list_new(spec, o, &l, err, sizeof(err)) != FO_OK)
        fail_msg("fo_list_new(%s): %s", spec, err);
    return l;
}

static atomic_uint next_id = 1;

/* Performs one call with body "id=<unique>&secret=..." and returns the rc; *id gets the id. */
static enum fo_rc
call(struct fo_req *r, struct fo_list *l, enum fo_idem idem, unsigned deadline_ms, unsigned *id)
{
    char body[128];
    struct fo_call c = {.method = FO_POST, .path = "/ca/ee/ca/profileSubmitSSLClient"};
    unsigned my = atomic_fetch_add(&next_id, 1);

    (void)snprintf(body, sizeof(body), "id=%u&secret=" SECRET, my);
    c.body = body;
    c.body_len = strlen(body);
    c.idem = idem;
    c.deadline_ms = deadline_ms;
    c.name = "enrollment";
    c.req_id = "sid-test";
    if (id != NULL)
        *id = my;
    return fo_req_perform(r, l, &c);
}

static struct fo_ts *
srv(int id, enum fo_ts_mode mode, unsigned delay)
{
    struct fo_ts *ts = fo_ts_start(id, 0, mode, delay, NULL);

    assert_non_null(ts);
    return ts;
}

static enum fo_breaker
breaker(struct fo_list *l, size_t i)
{
    struct fo_ep_stats s;

    assert_int_equal(fo_list_ep_stats(l, i, &s), FO_OK);
    return s.breaker;
}

/* ---- refusal -------------------------------------------------------------------------- */

static void
test_failover_refused_then_next(void **state)
{
    struct fo_opts o;
    struct fo_ts *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    const struct fo_attempt *a;
    unsigned id;
    size_t blen;

    (void)state;
    fast_opts(&o);
    l = make_list(&o, fo_ts_refused_port(), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);

    /* A refusal is certainly not a delivery: even a non-idempotent call moves on. */
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, &id), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_string_equal(fo_req_endpoint_name(r), fo_list_endpoint(l, 1));
    assert_int_equal(fo_req_status(r), 200);
    assert_string_equal((const char *)fo_req_body(r, &blen), "srv=1&n=1");
    assert_int_equal(blen, 9);
    assert_false(fo_req_resent(r));
    assert_int_equal(fo_req_attempt_count(r), 2);
    a = fo_req_attempt(r, 0);
    assert_int_equal(a->endpoint, 0);
    assert_int_equal(a->fail, FO_FAIL_REFUSED);
    assert_false(a->delivered);
    a = fo_req_attempt(r, 1);
    assert_int_equal(a->fail, FO_FAIL_NONE);
    assert_true(a->delivered);
    assert_int_equal(fo_ts_id_hits(ok, id), 1);
    assert_string_equal(fo_req_errmsg(r), "");

    /* One refusal opens the breaker (refuse_threshold 1): the next call skips, no attempt. */
    assert_int_equal(breaker(l, 0), FO_BREAKER_OPEN);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_SKIPPED);
    assert_non_null(strstr(fo_req_attempt_detail(r, 0), "breaker open"));
    assert_int_equal(fo_req_endpoint(r), 1);

    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(ok);
}

/* ---- hang after reading: idempotency decides ------------------------------------------- */

static void
test_failover_hang_idempotent_moves_on(void **state)
{
    struct fo_opts o;
    struct fo_ts *hang = srv(0, FO_TS_HANG, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    unsigned long long t0, dt;
    struct fo_list_stats ls;
    unsigned id;

    (void)state;
    fast_opts(&o);
    l = make_list(&o, fo_ts_port(hang), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    t0 = fo_ts_now_ms();
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, &id), FO_OK);
    dt = fo_ts_now_ms() - t0;
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_true(fo_req_resent(r));
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_TIMEOUT);
    assert_true(fo_req_attempt(r, 0)->delivered);
    assert_true(dt >= 290 && dt < 1000);
    assert_int_equal(fo_ts_id_hits(hang, id), 1);
    assert_int_equal(fo_ts_id_hits(ok, id), 1);
    fo_list_stats(l, &ls);
    assert_int_equal(ls.failovers, 1);
    assert_int_equal(ls.resends, 1);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(hang);
    fo_ts_stop(ok);
}

static void
test_failover_hang_non_idempotent_never_resent(void **state)
{
    struct fo_opts o;
    struct fo_ts *hang = srv(0, FO_TS_HANG, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    unsigned id;

    (void)state;
    fast_opts(&o);
    l = make_list(&o, fo_ts_port(hang), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, &id), FO_EUNKNOWN);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_int_equal(fo_req_attempt_count(r), 1);
    assert_false(fo_req_resent(r));
    assert_int_equal(fo_ts_id_hits(hang, id), 1);
    assert_int_equal(fo_ts_id_hits(ok, id), 0);
    assert_int_equal(fo_ts_requests(ok), 0);
    assert_non_null(strstr(fo_req_errmsg(r), "outcome unknown"));
    assert_non_null(strstr(fo_req_errmsg(r), fo_list_endpoint(l, 0)));
    assert_non_null(strstr(fo_req_errmsg(r), "reconcile"));
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(hang);
    fo_ts_stop(ok);
}

/* ---- close after reading the request --------------------------------------------------- */

static void
test_failover_close_after_read(void **state)
{
    struct fo_opts o;
    struct fo_ts *cl = srv(0, FO_TS_CLOSE, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    unsigned id;

    (void)state;
    fast_opts(&o);
    o.fail_threshold = 10; /* keep the breaker out of this test */
    l = make_list(&o, fo_ts_port(cl), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);

    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, &id), FO_EUNKNOWN);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_RESET);
    assert_int_equal(fo_ts_id_hits(cl, id), 1);
    assert_int_equal(fo_ts_id_hits(ok, id), 0);

    assert_int_equal(call(r, l, FO_CONDITIONAL, 0, &id), FO_OK);
    assert_true(fo_req_resent(r)); /* the caller must reconcile */
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_ts_id_hits(cl, id), 1);
    assert_int_equal(fo_ts_id_hits(ok, id), 1);

    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, &id), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    fo_list_free(l);

    /* Possibly received by the first clone, refused by the second: a revoke may be done
     * though no clone confirmed it: outcome unknown, naming the first clone. Not "resent":
     * only one clone may have it. */
    l = make_list(&o, fo_ts_port(cl), fo_ts_refused_port(), 0);
    assert_int_equal(call(r, l, FO_CONDITIONAL, 0, &id), FO_EUNKNOWN);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_false(fo_req_resent(r));
    assert_int_equal(fo_req_attempt_count(r), 2); /* no stray record after the walk */
    assert_non_null(strstr(fo_req_errmsg(r), "reconcile"));
    /* The same walk for an idempotent call: unavailable, nothing to reconcile. */
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, &id), FO_EUNAVAILABLE);
    assert_int_equal(fo_req_endpoint(r), -1);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(cl);
    fo_ts_stop(ok);
}

/* ---- slow answer: the response timeout decides ----------------------------------------- */

static void
test_failover_slow_clone(void **state)
{
    struct fo_opts o;
    struct fo_ts *slow = srv(0, FO_TS_SLOW, 150), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    unsigned long long t0, dt;

    (void)state;
    fast_opts(&o);
    o.response_timeout_ms = 400;
    l = make_list(&o, fo_ts_port(slow), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    t0 = fo_ts_now_ms();
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
    dt = fo_ts_now_ms() - t0;
    assert_int_equal(fo_req_endpoint(r), 0); /* slow but within its response timeout */
    assert_true(dt >= 145);
    fo_list_free(l);

    o.response_timeout_ms = 60; /* now too slow */
    l = make_list(&o, fo_ts_port(slow), fo_ts_port(ok), 0);
    t0 = fo_ts_now_ms();
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    dt = fo_ts_now_ms() - t0;
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_TIMEOUT);
    assert_true(dt >= 55 && dt < 140);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(slow);
    fo_ts_stop(ok);
}

/* ---- HTTP 500 -------------------------------------------------------------------------- */

static void
test_failover_http_500(void **state)
{
    struct fo_opts o;
    struct fo_ts *bad = srv(0, FO_TS_500, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    unsigned id;

    (void)state;
    fast_opts(&o);
    o.fail_threshold = 10;
    l = make_list(&o, fo_ts_port(bad), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, &id), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_HTTP_5XX);
    assert_int_equal(fo_req_attempt(r, 0)->http_status, 500);

    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, &id), FO_EUNKNOWN);
    assert_int_equal(fo_req_status(r), 500);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_int_equal(fo_ts_id_hits(bad, id), 1);
    assert_int_equal(fo_ts_id_hits(ok, id), 0);
    assert_non_null(strstr(fo_req_errmsg(r), "HTTP 500"));
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(bad);
    fo_ts_stop(ok);
}

/* ---- bad answers ------------------------------------------------------------------------ */

static void
test_failover_bad_response_and_cap(void **state)
{
    struct fo_opts o;
    struct fo_ts *g = srv(0, FO_TS_GARBAGE, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    size_t blen;

    (void)state;
    fast_opts(&o);
    o.fail_threshold = 10;
    l = make_list(&o, fo_ts_port(g), 0, 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_EPROTO);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_BAD_RESPONSE);
    assert_int_equal(fo_req_endpoint(r), -1);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_EUNKNOWN);
    fo_list_free(l);

    o.body_max = 4; /* "srv=1&n=1" does not fit */
    l = make_list(&o, fo_ts_port(ok), 0, 0);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_EPROTO);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_BAD_RESPONSE);
    assert_non_null(strstr(fo_req_errmsg(r), "larger than 4 bytes"));
    assert_string_equal((const char *)fo_req_body(r, &blen), "");
    assert_int_equal(blen, 0);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(g);
    fo_ts_stop(ok);
}

/* ---- check callback: application verdicts ---------------------------------------------- */

static enum fo_verdict
verdict_by_server(void *arg, long status, const uint8_t *body, size_t len)
{
    const enum fo_verdict *v = arg;

    assert_int_equal(status, 200);
    assert_true(len >= 5);
    /* server 0 gets verdict v[0], server 1 v[1] */
    return body[4] == '0' ? v[0] : v[1];
}

static void
test_failover_check_callback(void **state)
{
    struct fo_opts o;
    struct fo_ts *a = srv(0, FO_TS_OK, 0), *b = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    enum fo_verdict v[2];
    struct fo_call c = {.method = FO_GET, .path = "/tks/agent/tks/computeRandomData"};
    struct fo_ep_stats es;

    (void)state;
    fast_opts(&o);
    l = make_list(&o, fo_ts_port(a), fo_ts_port(b), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    c.check = verdict_by_server;
    c.check_arg = v;

    v[0] = FO_VERDICT_RETRY; /* clone-local error: the next clone is asked */
    v[1] = FO_VERDICT_ACCEPT;
    assert_int_equal(fo_req_perform(r, l, &c), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(breaker(l, 0), FO_BREAKER_CLOSED); /* not a health failure */

    c.idem = FO_NON_IDEMPOTENT; /* ... but never for a non-idempotent call */
    assert_int_equal(fo_req_perform(r, l, &c), FO_EREJECTED);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_int_equal(fo_ts_requests(b), 1);

    c.idem = FO_IDEMPOTENT;
    v[0] = FO_VERDICT_AUTH;
    assert_int_equal(fo_req_perform(r, l, &c), FO_EAUTH);
    assert_int_equal(fo_req_attempt_count(r), 1);
    v[0] = FO_VERDICT_REJECT;
    assert_int_equal(fo_req_perform(r, l, &c), FO_EREJECTED);
    assert_int_equal(fo_req_attempt_count(r), 1);
    v[0] = FO_VERDICT_BAD;
    assert_int_equal(fo_req_perform(r, l, &c), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.failures[FO_FAIL_BAD_RESPONSE], 1);
    assert_int_equal(es.failures[FO_FAIL_APP], 4);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(a);
    fo_ts_stop(b);
}

/* ---- deadlines ------------------------------------------------------------------------- */

static void
test_failover_deadline_holds(void **state)
{
    struct fo_opts o;
    struct fo_ts *h0 = srv(0, FO_TS_HANG, 0), *h1 = srv(1, FO_TS_HANG, 0),
                 *h2 = srv(2, FO_TS_STALL, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    unsigned long long t0, dt;

    (void)state;
    fast_opts(&o);
    o.response_timeout_ms = 0; /* only the deadline limits each attempt */
    o.fail_threshold = 10;
    l = make_list(&o, fo_ts_port(h0), fo_ts_port(h1), fo_ts_port(h2));
    assert_int_equal(fo_req_new(&r), FO_OK);
    for (int round = 0; round < 2; round++) {
        enum fo_idem idem = round == 0 ? FO_IDEMPOTENT : FO_NON_IDEMPOTENT;

        t0 = fo_ts_now_ms();
        assert_int_equal(call(r, l, idem, 350, NULL),
                         idem == FO_IDEMPOTENT ? FO_EUNAVAILABLE : FO_EUNKNOWN);
        dt = fo_ts_now_ms() - t0;
        if (dt < 340 || dt > 450)
            fail_msg("deadline 350 ms, call took %llu ms", dt);
    }
    /* The idempotent call used its whole budget on the first clone; the others were not
     * tried once the deadline had passed. */
    fo_list_free(l);

    o.response_timeout_ms = 100; /* now each hanging clone gets 100 ms */
    l = make_list(&o, fo_ts_port(h0), fo_ts_port(h1), fo_ts_port(h2));
    t0 = fo_ts_now_ms();
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 1000, NULL), FO_EUNAVAILABLE);
    dt = fo_ts_now_ms() - t0;
    assert_int_equal(fo_req_attempt_count(r), 3);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_TIMEOUT);
    assert_int_equal(fo_req_attempt(r, 1)->fail, FO_FAIL_TIMEOUT);
    assert_int_equal(fo_req_attempt(r, 2)->fail, FO_FAIL_TIMEOUT);
    assert_true(dt >= 290 && dt < 600);
    assert_non_null(strstr(fo_req_errmsg(r), "all 3 clones failed"));
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(h0);
    fo_ts_stop(h1);
    fo_ts_stop(h2);
}

/* ---- breaker --------------------------------------------------------------------------- */

static void
test_failover_breaker_skips_dead_and_returns(void **state)
{
    struct fo_opts o;
    struct fo_ts *h = srv(0, FO_TS_HANG, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    struct fo_ep_stats es;
    unsigned long long t0, dt;

    (void)state;
    fast_opts(&o);
    o.response_timeout_ms = 200;
    l = make_list(&o, fo_ts_port(h), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);

    /* Two consecutive failures (fail_threshold 2) pay the timeout, then the breaker opens. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
        assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_TIMEOUT);
    }
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.breaker, FO_BREAKER_OPEN);
    assert_int_equal(es.open_remaining_ms, 5000);
    assert_int_equal(es.breaker_opens, 1);
    assert_int_equal(fo_ts_requests(h), 2);

    /* While open: skipped without paying its timeout. */
    t0 = fo_ts_now_ms();
    for (int i = 0; i < 20; i++) {
        assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
        assert_int_equal(fo_req_endpoint(r), 1);
    }
    dt = fo_ts_now_ms() - t0;
    assert_true(dt < 150);
    assert_int_equal(fo_ts_requests(h), 2);

    /* Backoff over: a non-idempotent call never probes... */
    atomic_fetch_add(&fake_now, 5000);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_SKIPPED);
    assert_int_equal(fo_ts_requests(h), 2);
    /* ... an idempotent one does; it fails, and the backoff doubles. */
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_TIMEOUT);
    assert_int_equal(fo_ts_requests(h), 3);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.breaker, FO_BREAKER_OPEN);
    assert_int_equal(es.open_remaining_ms, 10000);

    /* The clone recovers; after the backoff the probe succeeds and the preferred clone is
     * used again. */
    fo_ts_set_mode(h, FO_TS_OK, 0);
    atomic_fetch_add(&fake_now, 9999);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1); /* 1 ms early */
    atomic_fetch_add(&fake_now, 1);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_int_equal(breaker(l, 0), FO_BREAKER_CLOSED);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.breaker_closes, 1);
    assert_int_equal(es.failures[FO_FAIL_TIMEOUT], 3);
    assert_int_equal(es.failures[FO_FAIL_SKIPPED], 22);
    assert_int_equal(es.requests, 5);
    assert_int_equal(es.successes, 2);
    assert_int_equal(es.inflight, 0);
    assert_int_equal(es.breaker_opens, 2);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(h);
    fo_ts_stop(ok);
}

static void
test_failover_all_open_tries_earliest(void **state)
{
    struct fo_opts o;
    struct fo_list *l;
    struct fo_req *r = NULL;
    struct fo_ts *ok;
    unsigned p0 = fo_ts_refused_port(), p1 = fo_ts_refused_port();

    (void)state;
    fast_opts(&o);
    l = make_list(&o, p0, p1, 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_EUNAVAILABLE);
    assert_int_equal(fo_req_attempt_count(r), 2);
    assert_non_null(strstr(fo_req_errmsg(r), "all 2 clones failed"));
    assert_non_null(strstr(fo_req_errmsg(r), "refused"));
    assert_int_equal(breaker(l, 0), FO_BREAKER_OPEN);
    assert_int_equal(breaker(l, 1), FO_BREAKER_OPEN);

    /* Both open: the one whose backoff ends first (ep 0) is tried anyway. */
    atomic_fetch_add(&fake_now, 10);
    ok = fo_ts_start(7, p0, FO_TS_OK, 0, NULL);
    assert_non_null(ok);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_int_equal(fo_req_attempt_count(r), 3); /* two skips, one forced attempt */
    assert_int_equal(fo_req_attempt(r, 2)->fail, FO_FAIL_NONE);
    assert_int_equal(breaker(l, 0), FO_BREAKER_CLOSED);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(ok);
}

static void
test_failover_sticky_policy(void **state)
{
    struct fo_opts o;
    struct fo_ts *a = srv(0, FO_TS_OK, 0), *b = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;

    (void)state;
    fast_opts(&o);
    o.policy = FO_POLICY_STICKY;
    o.fail_threshold = 1;
    o.backoff_min_ms = 1;
    o.backoff_max_ms = 1;
    l = make_list(&o, fo_ts_port(a), fo_ts_port(b), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 0);
    fo_ts_set_mode(a, FO_TS_500, 0);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    fo_ts_set_mode(a, FO_TS_OK, 0);
    atomic_fetch_add(&fake_now, 10);
    /* sticky: stays on the clone that served last although the first is healthy again */
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(a);
    fo_ts_stop(b);
}


/* ---- late failures of concurrent callers do not stretch the backoff -------------------- */

struct late_arg {
    struct fo_list *l;
    pthread_barrier_t *go;
    enum fo_rc rc;
};

static void *
late_main(void *arg)
{
    struct late_arg *a = arg;
    struct fo_req *r = NULL;

    if (fo_req_new(&r) != FO_OK)
        return NULL;
    pthread_barrier_wait(a->go);
    a->rc = call(r, a->l, FO_IDEMPOTENT, 0, NULL);
    fo_req_free(r);
    return NULL;
}

static void
test_failover_concurrent_failures_open_once(void **state)
{
    struct fo_opts o;
    struct fo_ts *h = srv(0, FO_TS_HANG, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    pthread_barrier_t go;
    pthread_t th[4];
    struct late_arg a[4];
    struct fo_ep_stats es;

    (void)state;
    fast_opts(&o);
    o.response_timeout_ms = 150;
    l = make_list(&o, fo_ts_port(h), fo_ts_port(ok), 0);
    pthread_barrier_init(&go, NULL, 4);
    for (int i = 0; i < 4; i++) {
        a[i].l = l;
        a[i].go = &go;
        a[i].rc = FO_EINTERNAL;
        assert_int_equal(pthread_create(&th[i], NULL, late_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].rc, FO_OK);
    }
    pthread_barrier_destroy(&go);
    /* All four were admitted while the breaker was closed and failed; it opened once, for
     * the first backoff: late failures are not failed probes. */
    assert_int_equal(fo_ts_requests(h), 4);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.breaker, FO_BREAKER_OPEN);
    assert_int_equal(es.breaker_opens, 1);
    assert_int_equal(es.open_remaining_ms, 5000);
    assert_int_equal(es.failures[FO_FAIL_TIMEOUT], 4);
    fo_list_free(l);
    fo_ts_stop(h);
    fo_ts_stop(ok);
}

/* ---- bounded slots per endpoint, waits bounded by the deadline -------------------- */

struct slot_arg {
    struct fo_list *l;
    enum fo_rc rc;
};

static void *
slot_main(void *arg)
{
    struct slot_arg *a = arg;
    struct fo_req *r = NULL;

    if (fo_req_new(&r) != FO_OK)
        return NULL;
    a->rc = call(r, a->l, FO_IDEMPOTENT, 2000, NULL);
    fo_req_free(r);
    return NULL;
}

static void
test_failover_slots_bounded_by_deadline(void **state)
{
    struct fo_opts o;
    struct fo_ts *slow = srv(0, FO_TS_SLOW, 300);
    struct fo_list *l;
    struct fo_req *r = NULL;
    struct slot_arg a = {NULL, FO_EINTERNAL};
    pthread_t th;
    unsigned long long t0, dt;
    struct fo_ep_stats es;
    struct timespec pause = {0, 60 * 1000000L};

    (void)state;
    fast_opts(&o);
    o.response_timeout_ms = 0;
    o.max_inflight = 1;
    l = make_list(&o, fo_ts_port(slow), 0, 0);
    a.l = l;
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(pthread_create(&th, NULL, slot_main, &a), 0);
    nanosleep(&pause, NULL); /* the thread holds the only slot for ~300 ms */

    t0 = fo_ts_now_ms();
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 100, NULL), FO_EUNAVAILABLE);
    dt = fo_ts_now_ms() - t0;
    assert_true(dt >= 95 && dt < 200);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_DEADLINE);
    assert_non_null(strstr(fo_req_attempt_detail(r, 0), "slots busy"));
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.inflight, 1);

    /* With time enough, the call waits for the slot and is served. */
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 2000, NULL), FO_OK);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, FO_OK);
    assert_int_equal(fo_ts_requests(slow), 2);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_true(es.slot_waits >= 2);
    assert_true(es.slot_wait_us >= 100000);
    assert_int_equal(es.inflight, 0);
    assert_int_equal(breaker(l, 0), FO_BREAKER_CLOSED); /* busy is not dead */
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(slow);
}

/* ---- pod policy ------------------------------------------------------------------- */

static void
test_failover_pod_moves_together(void **state)
{
    struct fo_opts o;
    struct fo_ts *b0 = srv(10, FO_TS_OK, 0), *b1 = srv(11, FO_TS_OK, 0),
                 *a1 = srv(1, FO_TS_OK, 0);
    struct fo_pod *pod = NULL;
    struct fo_list *ca, *tks, *bad = NULL;
    struct fo_req *r = NULL;
    char err[256];

    (void)state;
    assert_int_equal(fo_pod_new(&pod), FO_OK);
    fast_opts(&o);
    o.policy = FO_POLICY_POD;
    o.pod = pod;
    ca = make_list(&o, fo_ts_refused_port(), fo_ts_port(a1), 0);
    tks = make_list(&o, fo_ts_port(b0), fo_ts_port(b1), 0);
    assert_int_equal(fo_list_new("127.0.0.1:1 127.0.0.1:2 127.0.0.1:3", &o, &bad, err,
                                 sizeof(err)),
                     FO_EINVAL);
    assert_non_null(strstr(err, "same number of endpoints"));
    assert_int_equal(fo_req_new(&r), FO_OK);

    assert_int_equal(call(r, tks, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 0);
    /* The CA's first clone fails: the pod moves to index 1 ... */
    assert_int_equal(call(r, ca, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    /* ... and the TKS list follows, although its first clone is healthy. */
    assert_int_equal(call(r, tks, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_req_attempt_count(r), 1);
    assert_int_equal(fo_ts_requests(b0), 1);

    /* policy and pod go together */
    o.pod = NULL;
    assert_int_equal(fo_list_new("127.0.0.1:1", &o, &bad, err, sizeof(err)), FO_EINVAL);
    fast_opts(&o);
    o.pod = pod;
    assert_int_equal(fo_list_new("127.0.0.1:1 127.0.0.1:2", &o, &bad, err, sizeof(err)),
                     FO_EINVAL);
    assert_null(bad);
    fo_req_free(r);
    fo_list_free(ca);
    fo_list_free(tks);
    fo_pod_free(pod);
    fo_ts_stop(b0);
    fo_ts_stop(b1);
    fo_ts_stop(a1);
}

/* ---- injectable resolver ----------------------------------------------------------- */

static void
test_failover_resolver(void **state)
{
    struct fo_opts o;
    struct fo_ts *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l = NULL;
    struct fo_req *r = NULL;
    char spec[128], entry[128], err[256];
    const char *resolve[2] = {entry, NULL};
    const char *bad[2] = {"no spaces allowed:1:127.0.0.1", NULL};

    (void)state;
    fast_opts(&o);
    (void)snprintf(spec, sizeof(spec), "ca1.clone.test:%u", fo_ts_port(ok));
    (void)snprintf(entry, sizeof(entry), "ca1.clone.test:%u:127.0.0.1", fo_ts_port(ok));
    o.resolve = resolve;
    assert_int_equal(fo_list_new(spec, &o, &l, err, sizeof(err)), FO_OK);
    entry[0] = 'X'; /* the list keeps its own copy */
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_string_equal(fo_req_endpoint_name(r), spec);
    fo_list_free(l);
    o.resolve = bad;
    assert_int_equal(fo_list_new(spec, &o, &l, err, sizeof(err)), FO_EINVAL);
    assert_non_null(strstr(err, "resolve entry 1"));
    fo_req_free(r);
    fo_ts_stop(ok);
}

/* ---- connection reuse across lists ------------------------------------------------------ */

static void
test_failover_reuse_across_lists(void **state)
{
    struct fo_opts o;
    struct fo_ts *a = srv(0, FO_TS_OK, 0), *b = srv(1, FO_TS_OK, 0), *c = srv(2, FO_TS_OK, 0);
    struct fo_list *la, *lb, *lc;
    struct fo_req *r = NULL;

    (void)state;
    fast_opts(&o);
    la = make_list(&o, fo_ts_port(a), 0, 0);
    lb = make_list(&o, fo_ts_port(b), 0, 0);
    lc = make_list(&o, fo_ts_port(c), 0, 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(call(r, la, FO_IDEMPOTENT, 0, NULL), FO_OK);
        assert_int_equal(call(r, lb, FO_CONDITIONAL, 0, NULL), FO_OK);
        assert_int_equal(call(r, lc, FO_IDEMPOTENT, 0, NULL), FO_OK);
    }
    /* one worker, three clones, thirty calls: three connections */
    assert_int_equal(fo_ts_conns(a), 1);
    assert_int_equal(fo_ts_conns(b), 1);
    assert_int_equal(fo_ts_conns(c), 1);
    assert_int_equal(fo_ts_requests(a) + fo_ts_requests(b) + fo_ts_requests(c), 30);
    fo_req_free(r);
    fo_list_free(la);
    fo_list_free(lb);
    fo_list_free(lc);
    fo_ts_stop(a);
    fo_ts_stop(b);
    fo_ts_stop(c);
}

/* ---- HTTP 4xx from a clone -------------------------------------------------------------- */

static void
test_failover_http_4xx(void **state)
{
    struct fo_opts o;
    struct fo_ts *x = srv(0, FO_TS_CODE, 403), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    struct fo_ep_stats es;
    unsigned id;

    (void)state;
    fast_opts(&o);
    o.fail_threshold = 1;
    l = make_list(&o, fo_ts_port(x), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);

    /* 401/403: our certificate is not authorised there: final, no failover, not a failure */
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_EAUTH);
    assert_int_equal(fo_req_status(r), 403);
    assert_int_equal(fo_req_endpoint(r), 0);
    fo_ts_set_mode(x, FO_TS_CODE, 401);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_EAUTH);
    fo_ts_set_mode(x, FO_TS_CODE, 400);
    assert_int_equal(call(r, l, FO_CONDITIONAL, 0, NULL), FO_EREJECTED);
    assert_int_equal(fo_req_status(r), 400);
    assert_int_equal(fo_ts_requests(ok), 0);
    assert_int_equal(breaker(l, 0), FO_BREAKER_CLOSED);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.failures[FO_FAIL_HTTP_4XX], 3);
    assert_int_equal(es.successes, 3);

    /* 404: the path is not served there. A non-idempotent call is not resent (REJECTED:
     * nothing was done); an idempotent one moves on, and the clone counts as failed. */
    fo_ts_set_mode(x, FO_TS_CODE, 404);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, &id), FO_EREJECTED);
    assert_int_equal(fo_req_status(r), 404);
    assert_int_equal(fo_ts_id_hits(ok, id), 0);
    assert_int_equal(breaker(l, 0), FO_BREAKER_OPEN); /* fail_threshold 1 */
    atomic_fetch_add(&fake_now, 5000);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, &id), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_HTTP_5XX);
    assert_int_equal(fo_req_attempt(r, 0)->http_status, 404);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(x);
    fo_ts_stop(ok);
}

/* ---- only one half-open probe at a time ------------------------------------------------- */

static void
test_failover_single_probe(void **state)
{
    struct fo_opts o;
    struct fo_ts *h = srv(0, FO_TS_HANG, 0), *ok = srv(1, FO_TS_OK, 0);
    struct fo_list *l;
    struct fo_req *r = NULL;
    pthread_barrier_t go;
    pthread_t th[4];
    struct late_arg a[4];
    unsigned before;

    (void)state;
    fast_opts(&o);
    o.response_timeout_ms = 200;
    o.fail_threshold = 1;
    l = make_list(&o, fo_ts_port(h), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK); /* opens the breaker */
    assert_int_equal(breaker(l, 0), FO_BREAKER_OPEN);
    before = fo_ts_requests(h);
    atomic_fetch_add(&fake_now, 5000); /* backoff over: the next idempotent call probes */

    pthread_barrier_init(&go, NULL, 4);
    for (int i = 0; i < 4; i++) {
        a[i].l = l;
        a[i].go = &go;
        a[i].rc = FO_EINTERNAL;
        assert_int_equal(pthread_create(&th[i], NULL, late_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].rc, FO_OK);
    }
    pthread_barrier_destroy(&go);
    /* Four callers, one probe: the others went straight to the second clone. */
    assert_int_equal(fo_ts_requests(h) - before, 1);
    assert_int_equal(breaker(l, 0), FO_BREAKER_OPEN);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(h);
    fo_ts_stop(ok);
}

/* ---- TLS ------------------------------------------------------------------------------- */

static void
tls_opts(struct fo_opts *o)
{
    fast_opts(o);
    o->tls = true;
    o->cert_file = fo_ts_path("cli.crt");
    o->key_file = fo_ts_path("cli.key");
    o->ca_file = fo_ts_path("ca.crt");
}

static void
test_failover_tls(void **state)
{
    struct fo_ts_tls good = {fo_ts_path("srv.crt"), fo_ts_path("srv.key"), fo_ts_path("ca.crt"),
                             true};
    struct fo_ts_tls rogue = {fo_ts_path("rogue.crt"), fo_ts_path("rogue.key"), NULL, false};
    struct fo_ts *bad, *ok, *stall;
    struct fo_opts o;
    struct fo_list *l;
    struct fo_req *r = NULL;
    unsigned id;

    (void)state;
    bad = fo_ts_start(0, 0, FO_TS_OK, 0, &rogue);
    ok = fo_ts_start(1, 0, FO_TS_OK, 0, &good);
    stall = fo_ts_start(2, 0, FO_TS_STALL, 0, &good);
    assert_non_null(bad);
    assert_non_null(ok);
    assert_non_null(stall);
    tls_opts(&o);
    o.fail_threshold = 10;
    o.refuse_threshold = 10;
    l = make_list(&o, fo_ts_port(bad), fo_ts_port(ok), 0);
    assert_int_equal(fo_req_new(&r), FO_OK);

    /* Bad server certificate: never delivered, so even enrollment moves on. */
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, &id), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_TLS);
    assert_false(fo_req_attempt(r, 0)->delivered);
    assert_int_equal(fo_ts_requests(bad), 0);
    assert_int_equal(fo_ts_id_hits(ok, id), 1);
    /* Connection reuse for idempotent calls: two calls, one connection. */
    fo_list_free(l);
    l = make_list(&o, fo_ts_port(ok), 0, 0);
    {
        unsigned c0 = fo_ts_conns(ok);

        if (call(r, l, FO_IDEMPOTENT, 0, NULL) != FO_OK)
            fail_msg("reuse: %s", fo_req_errmsg(r));
        assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
        assert_int_equal(fo_ts_conns(ok) - c0, 1);
        /* ... but a non-idempotent call always opens (and closes) its own */
        assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
        assert_int_equal(fo_ts_conns(ok) - c0, 2);
        assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, NULL), FO_OK);
        assert_int_equal(fo_ts_conns(ok) - c0, 3);
    }
    fo_list_free(l);

    /* Stalled TLS handshake: timed out before sending, so not delivered. */
    o.connect_timeout_ms = 150;
    l = make_list(&o, fo_ts_port(stall), fo_ts_port(ok), 0);
    assert_int_equal(call(r, l, FO_NON_IDEMPOTENT, 0, &id), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 1);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_CONNECT_TIMEOUT);
    assert_false(fo_req_attempt(r, 0)->delivered);
    assert_true(fo_req_attempt(r, 0)->elapsed_us >= 140000);
    fo_list_free(l);

    /* No client certificate: the clone refuses the handshake and never reads the request.
     * Under TLS 1.3 the refusal reaches the client after it wrote the request; when libcurl
     * reports the certificate alert the library knows; when the clone's close races ahead of
     * the alert ("connection reset") it cannot, and says "outcome unknown" (the safe side). */
    o.cert_file = NULL;
    o.key_file = NULL;
    l = make_list(&o, fo_ts_port(ok), 0, 0);
    {
        enum fo_rc rc = call(r, l, FO_NON_IDEMPOTENT, 0, &id);
        enum fo_fail f = fo_req_attempt(r, 0)->fail;

        if (!(rc == FO_EUNAVAILABLE && f == FO_FAIL_TLS) &&
            !(rc == FO_EUNKNOWN && f == FO_FAIL_RESET))
            fail_msg("no client cert: rc %d class %d: %s", rc, f, fo_req_errmsg(r));
    }
    assert_int_equal(fo_ts_id_hits(ok, id), 0);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, &id), FO_EUNAVAILABLE);
    fo_list_free(l);

    /* verify_name: connect by address, verify the certificate's DNS name. */
    tls_opts(&o);
    o.verify_name = "localhost";
    l = make_list(&o, fo_ts_port(ok), 0, 0);
    if (call(r, l, FO_IDEMPOTENT, 0, NULL) != FO_OK)
        fail_msg("verify_name: %s", fo_req_errmsg(r));
    fo_list_free(l);
    o.verify_name = "not-the-name";
    l = make_list(&o, fo_ts_port(ok), 0, 0);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_EUNAVAILABLE);
    assert_int_equal(fo_req_attempt(r, 0)->fail, FO_FAIL_TLS);
    fo_list_free(l);

    fo_req_free(r);
    fo_ts_stop(bad);
    fo_ts_stop(ok);
    fo_ts_stop(stall);
}

/* ---- concurrency: a clone dies and comes back ------------------------------------------- */

#define NTHREADS 8

struct worker {
    struct fo_list *l;
    atomic_bool *stop;
    unsigned base; /* ids base..base+999 */
    unsigned ok, unknown, other, n;
    unsigned ids[1000];
    enum fo_rc rcs[1000];
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct fo_req *r = NULL;

    if (fo_req_new(&r) != FO_OK)
        return NULL;
    while (!atomic_load(w->stop) && w->n < 1000) {
        char body[64];
        struct fo_call c = {.method = FO_POST, .path = "/ca/ee/ca/profileSubmitSSLClient"};
        unsigned id = w->base + w->n;
        enum fo_rc rc;

        (void)snprintf(body, sizeof(body), "id=%u", id);
        c.body = body;
        c.body_len = strlen(body);
        c.idem = (w->n % 2 == 0) ? FO_NON_IDEMPOTENT : FO_IDEMPOTENT;
        c.deadline_ms = 1500;
        rc = fo_req_perform(r, w->l, &c);
        w->ids[w->n] = id;
        w->rcs[w->n] = rc;
        w->n++;
        if (rc == FO_OK)
            w->ok++;
        else if (rc == FO_EUNKNOWN)
            w->unknown++;
        else
            w->other++;
    }
    fo_req_free(r);
    return NULL;
}

static void
test_failover_concurrent_clone_dies_and_returns(void **state)
{
    struct fo_opts o;
    struct fo_ts *a = srv(0, FO_TS_SLOW, 2), *b = srv(1, FO_TS_SLOW, 2);
    struct fo_list *l;
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    atomic_bool stop = false;
    unsigned total = 0, oks = 0;
    struct fo_req *r = NULL;
    struct fo_ep_stats es;

    (void)state;
    fast_opts(&o);
    o.clock = NULL; /* real time */
    o.backoff_min_ms = 150;
    o.backoff_max_ms = 300;
    o.log = NULL;
    l = make_list(&o, fo_ts_port(a), fo_ts_port(b), 0);
    memset(w, 0, sizeof(w));
    for (int i = 0; i < NTHREADS; i++) {
        w[i].l = l;
        w[i].stop = &stop;
        w[i].base = 1 + (unsigned)i * 1000;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    {
        struct timespec t = {0, 250 * 1000000L};

        nanosleep(&t, NULL);
        fo_ts_down(a); /* dies: listener closed, in-flight connections cut */
        t.tv_nsec = 400 * 1000000L;
        nanosleep(&t, NULL);
        assert_true(fo_ts_up(a));
        t.tv_nsec = 600 * 1000000L;
        nanosleep(&t, NULL);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);

    for (int i = 0; i < NTHREADS; i++) {
        for (unsigned k = 0; k < w[i].n; k++) {
            unsigned id = w[i].ids[k], got = fo_ts_id_hits(a, id) + fo_ts_id_hits(b, id);

            if (k % 2 == 0) { /* non-idempotent: never received twice */
                if (got > 1)
                    fail_msg("non-idempotent call id=%u received %u times", id, got);
                if (w[i].rcs[k] == FO_OK && got != 1)
                    fail_msg("call id=%u succeeded but was received %u times", id, got);
            }
            if (w[i].rcs[k] == FO_OK)
                oks++;
        }
        total += w[i].n;
        /* only OK, or UNKNOWN for calls cut by the clone's death */
        assert_int_equal(w[i].other, 0);
    }
    assert_true(total > 100);
    assert_true(oks * 10 >= total * 9);

    /* The preferred clone is back: after its backoff a probe succeeds and it serves again. */
    {
        struct timespec t = {0, 350 * 1000000L};

        nanosleep(&t, NULL);
    }
    assert_int_equal(fo_req_new(&r), FO_OK);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(call(r, l, FO_IDEMPOTENT, 0, NULL), FO_OK);
    assert_int_equal(fo_req_endpoint(r), 0);
    assert_int_equal(fo_list_ep_stats(l, 0, &es), FO_OK);
    assert_int_equal(es.breaker, FO_BREAKER_CLOSED);
    assert_true(es.breaker_opens >= 1);
    assert_int_equal(es.inflight, 0);
    fo_req_free(r);
    fo_list_free(l);
    fo_ts_stop(a);
    fo_ts_stop(b);
}

/* ---- logging --------------------------------------------------------------------------- */

static void
test_failover_logs_never_hold_bodies(void **state)
{
    (void)state;
    /* Every test above logged at debug level through capture_log with SECRET in each body. */
    assert_true(atomic_load(&log_lines) > 20);
    assert_false(atomic_load(&log_leaked));
}

static int
setup_pki(void **state)
{
    (void)state;
    return fo_ts_pki() != NULL ? 0 : -1;
}

static int
teardown_pki(void **state)
{
    (void)state;
    fo_ts_pki_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_refused_then_next),
        cmocka_unit_test(test_failover_hang_idempotent_moves_on),
        cmocka_unit_test(test_failover_hang_non_idempotent_never_resent),
        cmocka_unit_test(test_failover_close_after_read),
        cmocka_unit_test(test_failover_slow_clone),
        cmocka_unit_test(test_failover_http_500),
        cmocka_unit_test(test_failover_bad_response_and_cap),
        cmocka_unit_test(test_failover_check_callback),
        cmocka_unit_test(test_failover_deadline_holds),
        cmocka_unit_test(test_failover_breaker_skips_dead_and_returns),
        cmocka_unit_test(test_failover_all_open_tries_earliest),
        cmocka_unit_test(test_failover_sticky_policy),
        cmocka_unit_test(test_failover_concurrent_failures_open_once),
        cmocka_unit_test(test_failover_slots_bounded_by_deadline),
        cmocka_unit_test(test_failover_pod_moves_together),
        cmocka_unit_test(test_failover_resolver),
        cmocka_unit_test(test_failover_reuse_across_lists),
        cmocka_unit_test(test_failover_http_4xx),
        cmocka_unit_test(test_failover_single_probe),
        cmocka_unit_test(test_failover_tls),
        cmocka_unit_test(test_failover_concurrent_clone_dies_and_returns),
        cmocka_unit_test(test_failover_logs_never_hold_bodies),
    };
    int rc;

    fo_ts_block_sigpipe(); /* before any thread exists: every thread inherits it */
    (void)fo_global_init();
    rc = cmocka_run_group_tests(tests, setup_pki, teardown_pki);
    fo_global_cleanup();
    return rc;
}
