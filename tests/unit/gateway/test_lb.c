/* tests/unit/gateway/test_lb.c - load-balancer awareness: trusted-network parsing and matching
 * (good, short, hostile), X-Forwarded-For, the agent-check words HAProxy 2.6 understands, the
 * agent port and drain on a live object, readiness from checks and from a real TCP probe, the
 * Prometheus text, and the issuer-info rewrite decision. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/lb.h"
#include "gw_fixture.h"

static struct sockaddr_storage
sa_of(const char *ip)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return ss;
}

static void
test_lb_nets_parse_table(void **state)
{
    static const struct {
        const char *in;
        enum tps_rc rc;
        size_t n;
    } cases[] = {
        {"", TPS_OK, 0},
        {"127.0.0.1", TPS_OK, 1},
        {"127.0.0.1 ::1", TPS_OK, 2},
        {"10.0.0.0/8,192.168.0.0/16  fd00::/8", TPS_OK, 3},
        {"0.0.0.0/0", TPS_OK, 1},
        {" , 127.0.0.1 ,", TPS_OK, 1},
        {"10.0.0.1/8", TPS_ECONFIG, 0},    /* host bits set */
        {"10.0.0.0/33", TPS_ECONFIG, 0},   /* prefix too long */
        {"10.0.0.0/", TPS_ECONFIG, 0},     /* short */
        {"10.0.0.0/-1", TPS_ECONFIG, 0},   /* hostile */
        {"10.0.0.0/8x", TPS_ECONFIG, 0},   /* trailing junk */
        {"example.com", TPS_ECONFIG, 0},   /* names are not addresses */
        {"256.1.1.1", TPS_ECONFIG, 0},     /* out of range */
        {"::1/129", TPS_ECONFIG, 0},       /* v6 prefix too long */
        {"1.2.3.4/99999999999999999999", TPS_ECONFIG, 0},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         TPS_ECONFIG, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tps_lb_net nets[4];
        size_t n = 99;
        char why[200] = "";
        enum tps_rc rc = tps_lb_nets_parse(cases[i].in, nets, 4, &n, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("case %zu '%s': rc %d want %d (%s)", i, cases[i].in, rc, cases[i].rc, why);
        if (rc == TPS_OK)
            assert_int_equal(n, cases[i].n);
        else
            assert_true(why[0] != '\0');
    }
    {
        struct tps_lb_net nets[2];
        size_t n;
        char why[200];
        assert_int_equal(tps_lb_nets_parse("1.1.1.1 2.2.2.2 3.3.3.3", nets, 2, &n, why,
                                           sizeof(why)),
                         TPS_ETOOBIG);
    }
}

static void
test_lb_nets_match(void **state)
{
    struct tps_lb_net nets[8];
    size_t n;
    char why[200];
    static const struct {
        const char *ip;
        bool in;
    } cases[] = {
        {"127.0.0.1", true},         {"127.0.0.2", false},     {"10.1.2.3", true},
        {"11.0.0.1", false},         {"192.168.7.200", true},  {"192.168.8.1", false},
        {"::ffff:10.9.9.9", true},   /* IPv4-mapped counts as IPv4 */
        {"::1", true},               {"::2", false},           {"fd12::1", true},
        {"fe80::1", false},          {"::ffff:127.0.0.2", false},
    };
    (void)state;
    assert_int_equal(tps_lb_nets_parse("127.0.0.1 10.0.0.0/8 192.168.4.0/22 ::1 fd00::/8", nets,
                                       8, &n, why, sizeof(why)),
                     TPS_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss = sa_of(cases[i].ip);
        if (tps_lb_nets_match(nets, n, (struct sockaddr *)&ss) != cases[i].in)
            fail_msg("%s: want %d", cases[i].ip, cases[i].in);
    }
    assert_false(tps_lb_nets_match(nets, n, NULL));
    assert_false(tps_lb_nets_match(nets, 0, (struct sockaddr *)&(struct sockaddr_storage){0}));
}

static void
test_lb_xff_client(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"192.0.2.1", "192.0.2.1"},
        {"10.0.0.1, 192.0.2.7", "192.0.2.7"}, /* right-most: the balancer's entry */
        {"evil, 192.0.2.8 ", "192.0.2.8"},
        {"192.0.2.9:5555", "192.0.2.9"},
        {"[2001:db8::1]:443", "2001:db8::1"},
        {"2001:db8::2", "2001:db8::2"},
        {"192.0.2.1, evil", NULL},
        {"", NULL},
        {"  ", NULL},
        {"192.0.2.1,", NULL},
        {"[2001:db8::1", NULL},
        {"999.0.0.1", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64] = "";
        enum tps_rc rc = tps_lb_xff_client(cases[i].in, out, sizeof(out));
        if (cases[i].want == NULL) {
            if (rc == TPS_OK)
                fail_msg("'%s' accepted as %s", cases[i].in, out);
        } else {
            if (rc != TPS_OK || strcmp(out, cases[i].want) != 0)
                fail_msg("'%s': rc %d out '%s'", cases[i].in, rc, out);
        }
    }
    assert_int_equal(tps_lb_xff_client(NULL, (char[8]){0}, 8), TPS_EBADREQ);
}

static void
test_lb_agent_line_words(void **state)
{
    char out[160];
    (void)state;
    tps_lb_agent_line(false, false, true, "", 0, 64, out, sizeof(out));
    assert_string_equal(out, "up ready 100%\n");
    tps_lb_agent_line(false, false, true, "", 32, 64, out, sizeof(out));
    assert_string_equal(out, "up ready 50%\n");
    tps_lb_agent_line(false, false, true, "", 999, 1000, out, sizeof(out));
    assert_string_equal(out, "up ready 1%\n"); /* one free session still takes work */
    tps_lb_agent_line(false, false, true, "", 64, 64, out, sizeof(out));
    assert_string_equal(out, "up ready 0%\n");
    tps_lb_agent_line(false, false, true, "", 70, 64, out, sizeof(out));
    assert_string_equal(out, "up ready 0%\n");
    tps_lb_agent_line(true, false, true, "", 0, 64, out, sizeof(out));
    assert_string_equal(out, "drain\n");
    tps_lb_agent_line(true, false, false, "x", 0, 64, out, sizeof(out));
    assert_string_equal(out, "drain\n");
    /* a newer configuration on a live peer: drain, and "up" ends an earlier "down" */
    tps_lb_agent_line(false, true, true, "", 0, 64, out, sizeof(out));
    assert_string_equal(out, "up drain\n");
    tps_lb_agent_line(true, true, true, "", 0, 64, out, sizeof(out));
    assert_string_equal(out, "drain\n"); /* the operator's drain wins */
    tps_lb_agent_line(false, true, false, "tokendb: down", 0, 64, out, sizeof(out));
    assert_string_equal(out, "down #tokendb: down\n"); /* not ready wins over the mismatch */
    tps_lb_agent_line(false, false, false, "tokendb: down\nup", 0, 64, out, sizeof(out));
    assert_string_equal(out, "down #tokendb: down?up\n"); /* one line, '#' starts a word */
    tps_lb_agent_line(false, false, false, NULL, 0, 64, out, sizeof(out));
    assert_string_equal(out, "down #not ready\n");
    {
        char longr[400];
        memset(longr, 'a', sizeof(longr) - 1);
        longr[sizeof(longr) - 1] = '\0';
        tps_lb_agent_line(false, false, false, longr, 0, 64, out, sizeof(out));
        assert_int_equal(strlen(out), strlen("down #") + 100 + 1);
    }
}

/* A check whose answer the test sets. */
static atomic_bool check_answer;
static atomic_int check_calls;

static bool
flag_check(void *arg, char *why, size_t whylen)
{
    (void)arg;
    atomic_fetch_add(&check_calls, 1);
    if (atomic_load(&check_answer))
        return true;
    snprintf(why, whylen, "flag is down");
    return false;
}

static atomic_int drain_calls;

static void
on_drain(void *arg)
{
    (void)arg;
    atomic_fetch_add(&drain_calls, 1);
}

static void
read_agent(unsigned port, char *out, size_t cap)
{
    struct sockaddr_in a;
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;
        assert_int_equal(poll(&p, 1, 3000), 1);
        r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fd);
}

/* Sends req to port and reads the whole answer. */
static void
http_get(unsigned port, const char *req, char *out, size_t cap)
{
    struct sockaddr_in a;
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;
        assert_int_equal(poll(&p, 1, 3000), 1);
        r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fd);
}

static void
test_lb_agent_port_drain_and_readiness(void **state)
{
    struct tps_lb_conf c = {
        .agent_ephemeral = true,
        .trusted = "127.0.0.1",
        .max_sessions = 4,
        .health_interval_ms = 100,
        .probe_timeout_ms = 200,
        .drain_grace_ms = 10,
        .drain_timeout_ms = 20,
        .instance_id = "t1",
    };
    struct tps_lb *lb = NULL;
    char err[256] = "", line[160], why[256];
    struct sockaddr_storage ss;
    (void)state;

    atomic_store(&check_answer, false);
    assert_int_equal(tps_lb_new(&c, &lb, err, sizeof(err)), TPS_OK);
    assert_int_equal(tps_lb_add_check(lb, "flag", flag_check, NULL), TPS_OK);
    tps_lb_on_drain(lb, on_drain, NULL);
    assert_false(tps_lb_ready(lb, why, sizeof(why))); /* not evaluated yet */
    assert_int_equal(tps_lb_start(lb, err, sizeof(err)), TPS_OK);
    assert_true(tps_lb_agent_port(lb) != 0);
    assert_false(tps_lb_ready(lb, why, sizeof(why)));
    assert_string_equal(why, "flag: flag is down");
    read_agent(tps_lb_agent_port(lb), line, sizeof(line));
    assert_string_equal(line, "down #flag: flag is down\n");
    {
        char resp[8192];
        assert_true(tps_lb_status_port(lb) != 0);
        http_get(tps_lb_status_port(lb), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", resp,
                 sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 503 "));
        assert_non_null(strstr(resp, "not ready: flag: flag is down"));
        http_get(tps_lb_status_port(lb), "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 200 "));
        assert_non_null(strstr(resp, "tpsgw_ready{instance=\"t1\"} 0\n"));
        http_get(tps_lb_status_port(lb), "POST /health HTTP/1.1\r\n\r\n", resp, sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 405 "));
        http_get(tps_lb_status_port(lb), "GET /nothing HTTP/1.1\r\n\r\n", resp, sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 404 "));
        http_get(tps_lb_status_port(lb), "garbage\r\n\r\n", resp, sizeof(resp));
        assert_string_equal(resp, ""); /* no answer to a broken head: closed */
    }

    /* the dependency comes back: the health thread notices within an interval or two */
    atomic_store(&check_answer, true);
    for (int i = 0; i < 50 && !tps_lb_ready(lb, NULL, 0); i++)
        usleep(20000);
    assert_true(tps_lb_ready(lb, NULL, 0));
    read_agent(tps_lb_agent_port(lb), line, sizeof(line));
    assert_string_equal(line, "up ready 100%\n");
    {
        char resp[512];
        http_get(tps_lb_status_port(lb), "HEAD /health HTTP/1.1\r\n\r\n", resp, sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 200 OK"));
        assert_null(strstr(resp, "\r\n\r\nok")); /* HEAD: no body */
    }
    tps_lb_session_begin(lb);
    tps_lb_session_begin(lb);
    tps_lb_session_begin(lb);
    read_agent(tps_lb_agent_port(lb), line, sizeof(line));
    assert_string_equal(line, "up ready 25%\n");
    tps_lb_session_end(lb, 5, true);
    tps_lb_session_end(lb, 1, false);
    assert_int_equal(tps_lb_live(lb), 1);

    /* drain: agent and readiness say so, and it sticks; POST /drain is the operator's way */
    assert_false(tps_lb_draining(lb));
    {
        char resp[512];
        http_get(tps_lb_status_port(lb), "GET /drain HTTP/1.1\r\n\r\n", resp, sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 405 "));
        assert_false(tps_lb_draining(lb));
        http_get(tps_lb_status_port(lb), "POST /drain HTTP/1.1\r\n\r\n", resp, sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 200 "));
        assert_int_equal(atomic_load(&drain_calls), 1);
    }
    tps_lb_drain(lb, "test");
    tps_lb_drain(lb, "again");
    assert_true(tps_lb_draining(lb));
    read_agent(tps_lb_agent_port(lb), line, sizeof(line));
    assert_string_equal(line, "drain\n");
    assert_true(tps_lb_ready(lb, why, sizeof(why))); /* the drain is the agent's word */
    {
        char resp[512];
        http_get(tps_lb_status_port(lb), "GET /health HTTP/1.1\r\n\r\n", resp, sizeof(resp));
        assert_non_null(strstr(resp, "HTTP/1.1 200 "));
        assert_non_null(strstr(resp, "ok draining\n"));
    }
    assert_int_equal(tps_lb_drain_grace_ms(lb), 10);
    assert_int_equal(tps_lb_drain_timeout_ms(lb), 20);

    ss = sa_of("127.0.0.1");
    assert_true(tps_lb_trusted(lb, (struct sockaddr *)&ss));
    ss = sa_of("127.0.0.9");
    assert_false(tps_lb_trusted(lb, (struct sockaddr *)&ss));
    tps_lb_session_end(lb, 5, true);
    tps_lb_free(lb);
}

/* A TCP probe from the configuration path is not reachable here; test the probe through a
 * check on a real listening socket and on a closed port, via the public check interface. */
static int
listen_any(unsigned *port)
{
    struct sockaddr_in a;
    socklen_t sl = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void
test_lb_metrics_text(void **state)
{
    struct tps_lb_conf c = {.trusted = "", .max_sessions = 8, .instance_id = "in\"st"};
    struct tps_lb *lb = NULL;
    struct cmn_buf b;
    char err[200];
    const char *t;
    (void)state;

    atomic_store(&check_answer, true);
    assert_int_equal(tps_lb_new(&c, &lb, err, sizeof(err)), TPS_OK);
    assert_int_equal(tps_lb_add_check(lb, "flag", flag_check, NULL), TPS_OK);
    tps_lb_evaluate(lb);
    tps_lb_session_begin(lb);
    tps_lb_session_end(lb, 5, true);
    tps_lb_session_begin(lb);
    tps_lb_session_end(lb, 5, true);
    tps_lb_session_begin(lb);
    tps_lb_session_end(lb, 1, false);
    tps_lb_session_begin(lb);
    tps_lb_session_end(lb, 77, false); /* hostile op number: counted as unknown */
    tps_lb_refused(lb, "untrusted_proxy");
    tps_lb_refused(lb, "nonsense");
    tps_lb_observe_db(lb, 500);     /* 0.5 ms: first bucket */
    tps_lb_observe_db(lb, 30000);   /* 30 ms: le=0.05 */
    tps_lb_observe_db(lb, 9000000); /* 9 s: +Inf only */
    cmn_buf_init(&b, 1 << 20);
    assert_int_equal(tps_lb_metrics(lb, &b), TPS_OK);
    t = cmn_buf_cstr(&b);
    assert_non_null(strstr(t, "tpsgw_ready{instance=\"in\\\"st\"} 1\n"));
    assert_non_null(strstr(t, "tpsgw_sessions_total{instance=\"in\\\"st\"} 4\n"));
    assert_non_null(strstr(t, "tpsgw_sessions_live{instance=\"in\\\"st\"} 0\n"));
    assert_non_null(
        strstr(t, "tpsgw_operations_total{instance=\"in\\\"st\",op=\"format\",result=\"success\"} 2\n"));
    assert_non_null(
        strstr(t, "tpsgw_operations_total{instance=\"in\\\"st\",op=\"enroll\",result=\"failure\"} 1\n"));
    assert_non_null(
        strstr(t, "tpsgw_operations_total{instance=\"in\\\"st\",op=\"unknown\",result=\"failure\"} 1\n"));
    assert_non_null(strstr(t, "tpsgw_refused_total{instance=\"in\\\"st\",reason=\"untrusted_proxy\"} 1\n"));
    assert_non_null(strstr(t, "tpsgw_refused_total{instance=\"in\\\"st\",reason=\"busy\"} 1\n"));
    assert_non_null(strstr(t, "tpsgw_tokendb_seconds_bucket{instance=\"in\\\"st\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(t, "tpsgw_tokendb_seconds_bucket{instance=\"in\\\"st\",le=\"0.05\"} 2\n"));
    assert_non_null(strstr(t, "tpsgw_tokendb_seconds_bucket{instance=\"in\\\"st\",le=\"5\"} 2\n"));
    assert_non_null(strstr(t, "tpsgw_tokendb_seconds_bucket{instance=\"in\\\"st\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "tpsgw_tokendb_seconds_count{instance=\"in\\\"st\"} 3\n"));
    assert_non_null(strstr(t, "tpsgw_tokendb_seconds_sum{instance=\"in\\\"st\"} 9.030500\n"));
    assert_non_null(strstr(t, "tpsgw_check_up{instance=\"in\\\"st\",check=\"flag\"} 1\n"));
    assert_non_null(strstr(t, "# TYPE tpsgw_operations_total counter\n"));
    /* every line is a comment or "name{labels} value" */
    for (const char *p = t; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (*p != '#') {
            const char *brace = memchr(p, '{', (size_t)(nl - p));
            const char *sp = NULL;
            assert_non_null(brace);
            for (const char *q = nl; q > p; q--)
                if (*q == ' ') {
                    sp = q;
                    break;
                }
            assert_true(sp != NULL && sp > p && sp[-1] == '}');
        }
        p = nl + 1;
    }
    /* a buffer too small is an error, not a truncated exposition */
    {
        struct cmn_buf small;
        cmn_buf_init(&small, 64);
        assert_int_equal(tps_lb_metrics(lb, &small), TPS_ETOOBIG);
        cmn_buf_cleanup(&small);
    }
    cmn_buf_cleanup(&b);
    tps_lb_free(lb);
}

static void
test_lb_issuer_needs_rewrite(void **state)
{
    uint8_t card[224];
    const char *pub = "https://tps.example.com:8443/tps/phoneHome";
    (void)state;

    memset(card, 0, sizeof(card));
    memcpy(card, pub, strlen(pub));
    assert_false(tps_lb_issuer_needs_rewrite(card, sizeof(card), pub));
    assert_false(tps_lb_issuer_needs_rewrite(card, sizeof(card), "")); /* nothing configured */
    assert_false(tps_lb_issuer_needs_rewrite(card, sizeof(card), NULL));
    assert_true(tps_lb_issuer_needs_rewrite(card, sizeof(card), "https://tps.example.com/x"));
    memset(card, 0, sizeof(card));
    memcpy(card, "http://tps1.example.com:7888/tps/phoneHome", 42);
    assert_true(tps_lb_issuer_needs_rewrite(card, sizeof(card), pub));
    /* a prefix of the wanted URL is not the wanted URL */
    memset(card, 0, sizeof(card));
    memcpy(card, pub, 10);
    assert_true(tps_lb_issuer_needs_rewrite(card, sizeof(card), pub));
    /* no NUL at all within n: compare n bytes */
    memset(card, 'A', sizeof(card));
    assert_true(tps_lb_issuer_needs_rewrite(card, sizeof(card), pub));
    assert_true(tps_lb_issuer_needs_rewrite(card, 0, pub)); /* empty card */
}

static void
test_lb_config_errors(void **state)
{
    unsigned port;
    int fd = listen_any(&port);
    struct tps_lb_conf c = {.trusted = "", .max_sessions = 1, .probe_timeout_ms = 300};
    struct tps_lb *lb = NULL;
    char err[200];
    (void)state;

    /* an agent port on an address that cannot be bound is reported, not fatal to the process */
    c.agent_address = "127.0.0.1";
    c.agent_port = port; /* already taken by fd */
    assert_int_equal(tps_lb_new(&c, &lb, err, sizeof(err)), TPS_OK);
    assert_int_equal(tps_lb_start(lb, err, sizeof(err)), TPS_EIO);
    assert_non_null(strstr(err, "lb.agentPort"));
    tps_lb_free(lb);
    close(fd);

    /* a bad trusted list is a configuration error naming the key */
    c.agent_port = 0;
    c.trusted = "10.0.0.1/8";
    assert_int_equal(tps_lb_new(&c, &lb, err, sizeof(err)), TPS_ECONFIG);
    assert_non_null(strstr(err, "lb.trustedProxies"));
    assert_null(lb);
}

/* From the configuration: the connector probe (127.0.0.1:9 refuses), lb.* keys, and the
 * public-URL rule naming the offending key. */
static void
test_lb_from_config(void **state)
{
    struct gw_fix f;
    struct cmn_buf errs;
    struct tps_lb *lb = NULL;
    char err[512] = "", why[256] = "";
    (void)state;

    gw_fix_init(&f);
    cmn_buf_init(&errs, 65536);
    if (gw_fix_load(&f, "lb.publicURL=https://lb.example.org:7889\nlb.probeTimeout=200\n", &errs) !=
        TPS_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    assert_int_equal(tps_lb_new_from_config(f.cfg, &lb, err, sizeof(err)), TPS_OK);
    tps_lb_evaluate(lb);
    assert_false(tps_lb_ready(lb, why, sizeof(why)));
    assert_non_null(strstr(why, "tks1: all 1 clones unreachable (127.0.0.1:9: "));
    tps_lb_free(lb);
    lb = NULL;
    tps_config_free(f.cfg);
    f.cfg = NULL;

    /* an issuer info naming one instance is refused, naming the key */
    cmn_buf_reset(&errs);
    if (gw_fix_load(&f,
                    "lb.publicURL=https://lb.example.org:7889\n"
                    "op.format.userKey.issuerinfo.value=http://tps1.example.org:7888/tps/phoneHome\n",
                    &errs) != TPS_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    assert_int_equal(tps_lb_new_from_config(f.cfg, &lb, err, sizeof(err)), TPS_ECONFIG);
    assert_null(lb);
    assert_non_null(strstr(err, "key 'op.format.userKey.issuerinfo.value'"));
    tps_config_free(f.cfg);
    f.cfg = NULL;

    /* a prefix that is not a whole authority does not count: lb.example.org:78890 */
    cmn_buf_reset(&errs);
    if (gw_fix_load(&f,
                    "lb.publicURL=https://lb.example.org:7889\n"
                    "tps.phoneHome.operation=https://lb.example.org:78890/tps/tps\n",
                    &errs) != TPS_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    assert_int_equal(tps_lb_new_from_config(f.cfg, &lb, err, sizeof(err)), TPS_ECONFIG);
    assert_non_null(strstr(err, "key 'tps.phoneHome.operation'"));
    cmn_buf_cleanup(&errs);
    gw_fix_cleanup(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lb_nets_parse_table),
        cmocka_unit_test(test_lb_nets_match),
        cmocka_unit_test(test_lb_xff_client),
        cmocka_unit_test(test_lb_agent_line_words),
        cmocka_unit_test(test_lb_agent_port_drain_and_readiness),
        cmocka_unit_test(test_lb_metrics_text),
        cmocka_unit_test(test_lb_issuer_needs_rewrite),
        cmocka_unit_test(test_lb_config_errors),
        cmocka_unit_test(test_lb_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
