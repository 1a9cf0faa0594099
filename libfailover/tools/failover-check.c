/* libfailover/tools/failover-check.c - the admin's check of a failover list: walks the list as
 * libfailover does (or each endpoint on its own with --each), prints one line per endpoint with
 * what happened and how long it took, names the endpoint that answered; exit 0 only on 2xx. */
#include <libfailover/failover.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_ANSWERED 0
#define EXIT_NO_ANSWER 1
#define EXIT_USAGE 2

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: failover-check [--cert F --key F --cacert F] [--timeout S]\n"
            "                      [--connect-timeout S] [--deadline S] [--http]\n"
            "                      [--verify-name NAME] [--post [--data BODY]] [--each]\n"
            "                      [--verbose] --path PATH 'host:port host:port ...'\n"
            "Walks the endpoint list as libfailover does and prints what each endpoint did.\n"
            "Exit status: 0 an endpoint answered 2xx, 1 none did, 2 usage error.\n"
            "See failover-check(1).\n");
}

/* Parses a duration in seconds ("2", "0.25") into ms within [1, 3600000]. */
static bool
parse_secs(const char *s, unsigned *ms)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 3600)
        return false;
    *ms = (unsigned)(v * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return true;
}

static void
log_stderr(void *arg, enum fo_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    fprintf(stderr, "  log: %s\n", line);
}

/* What one attempt record means, as a short phrase. */
static void
describe(const struct fo_attempt *a, char *out, size_t cap)
{
    switch (a->fail) {
    case FO_FAIL_NONE:
    case FO_FAIL_HTTP_5XX:
    case FO_FAIL_HTTP_4XX:
    case FO_FAIL_APP:
        (void)snprintf(out, cap, "HTTP %ld", a->http_status);
        break;
    default:
        (void)snprintf(out, cap, "%s", fo_fail_name(a->fail));
        break;
    }
}

/* Prints the attempts of the last call; marks in seen[] the endpoints reported. */
static void
print_attempts(const struct fo_req *r, const struct fo_list *l, bool *seen)
{
    for (size_t k = 0; k < fo_req_attempt_count(r); k++) {
        const struct fo_attempt *a = fo_req_attempt(r, k);
        const char *d = fo_req_attempt_detail(r, k);
        char what[64];

        describe(a, what, sizeof(what));
        seen[a->endpoint] = true;
        if (a->fail == FO_FAIL_SKIPPED || a->fail == FO_FAIL_DEADLINE)
            printf("%2d %-40s %s\n", a->endpoint + 1, fo_list_endpoint(l, (size_t)a->endpoint),
                   d);
        else
            printf("%2d %-40s %-26s %9.1f ms%s%s%s\n", a->endpoint + 1,
                   fo_list_endpoint(l, (size_t)a->endpoint), what, a->elapsed_us / 1000.0,
                   d[0] != '\0' ? "  (" : "", d, d[0] != '\0' ? ")" : "");
    }
}

int
main(int argc, char **argv)
{
    struct fo_opts o;
    struct fo_list *l = NULL;
    struct fo_req *r = NULL;
    struct fo_call c;
    const char *spec = NULL, *path = NULL, *data = NULL;
    unsigned timeout_ms = 10000, connect_ms = 0, deadline_ms = 0;
    bool each = false, verbose = false, answered = false;
    bool seen[FO_MAX_ENDPOINTS] = {false};
    char err[512];
    int status = EXIT_NO_ANSWER;
    size_t n;
    enum fo_rc rc;

    (void)signal(SIGPIPE, SIG_IGN);
    fo_opts_init(&o);
    o.name = "list";
    memset(&c, 0, sizeof(c));
    c.method = FO_GET;
    c.idem = FO_IDEMPOTENT;
    c.name = NULL; /* messages name the path */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--http") == 0) {
            o.tls = false;
            takes = false;
        } else if (strcmp(a, "--each") == 0) {
            each = true;
            takes = false;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = true;
            takes = false;
        } else if (strcmp(a, "--post") == 0) {
            c.method = FO_POST;
            takes = false;
        } else if (v == NULL && a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "failover-check: '%s' expects a value\n", a);
            return EXIT_USAGE;
        } else if (strcmp(a, "--cert") == 0) {
            o.cert_file = v;
        } else if (strcmp(a, "--key") == 0) {
            o.key_file = v;
        } else if (strcmp(a, "--cacert") == 0) {
            o.ca_file = v;
        } else if (strcmp(a, "--verify-name") == 0) {
            o.verify_name = v;
        } else if (strcmp(a, "--path") == 0) {
            path = v;
        } else if (strcmp(a, "--data") == 0) {
            data = v;
        } else if (strcmp(a, "--timeout") == 0 || strcmp(a, "--connect-timeout") == 0 ||
                   strcmp(a, "--deadline") == 0) {
            unsigned *dst = strcmp(a, "--timeout") == 0           ? &timeout_ms
                            : strcmp(a, "--connect-timeout") == 0 ? &connect_ms
                                                                   : &deadline_ms;

            if (!parse_secs(v, dst)) {
                fprintf(stderr, "failover-check: '%s' expects seconds (0 < S <= 3600), got '%s'\n",
                        a, v);
                return EXIT_USAGE;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "failover-check: unknown option '%s'\n", a);
            usage(stderr);
            return EXIT_USAGE;
        } else {
            takes = false;
            if (spec != NULL) {
                fprintf(stderr, "failover-check: give the list as one argument, in quotes: "
                                "'host:port host:port'\n");
                return EXIT_USAGE;
            }
            spec = a;
        }
        if (takes)
            i++;
    }
    if (spec == NULL || path == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (data != NULL && c.method != FO_POST) {
        fprintf(stderr, "failover-check: --data needs --post\n");
        return EXIT_USAGE;
    }
    if (fo_list_check(spec, &n, err, sizeof(err)) != FO_OK) {
        fprintf(stderr, "failover-check: %s\n", err);
        return EXIT_USAGE;
    }
    /* Every endpoint gets its own connect and response time; the deadline lets the walk
     * reach the last endpoint unless --deadline says otherwise. */
    o.connect_timeout_ms = connect_ms != 0 ? connect_ms : (timeout_ms < 5000 ? timeout_ms : 5000);
    o.response_timeout_ms = timeout_ms;
    o.deadline_ms = deadline_ms != 0 ? deadline_ms
                                     : (unsigned)n * (o.connect_timeout_ms + timeout_ms) + 1000;
    o.fail_threshold = 1000; /* one walk: the breaker must not hide anything */
    o.refuse_threshold = 1000;
    if (verbose) {
        o.log = log_stderr;
        o.log_level = FO_LOG_DEBUG;
    }
    c.path = path;
    c.body = data;
    c.body_len = data != NULL ? strlen(data) : 0;

    if (fo_global_init() != FO_OK) {
        fprintf(stderr, "failover-check: libcurl initialisation failed\n");
        return EXIT_NO_ANSWER;
    }
    if (fo_req_new(&r) != FO_OK) {
        fprintf(stderr, "failover-check: out of memory\n");
        goto out;
    }
    printf("failover-check: %zu endpoint%s, %s %s over %s, timeouts: connect %u ms, response "
           "%u ms, whole walk %u ms\n",
           n, n == 1 ? "" : "s", c.method == FO_POST ? "POST" : "GET", path,
           o.tls ? "https" : "http", o.connect_timeout_ms, o.response_timeout_ms, o.deadline_ms);
    if (!each) {
        rc = fo_list_new(spec, &o, &l, err, sizeof(err));
        if (rc != FO_OK) {
            fprintf(stderr, "failover-check: %s\n", err);
            status = EXIT_USAGE;
            goto out;
        }
        rc = fo_req_perform(r, l, &c);
        print_attempts(r, l, seen);
        for (size_t i = 0; i < n; i++) {
            if (!seen[i])
                printf("%2zu %-40s %-26s\n", i + 1, fo_list_endpoint(l, i),
                       "not tried (an earlier endpoint answered)");
        }
        if (rc == FO_OK) {
            answered = true;
            printf("answered: %s (HTTP %ld)\n", fo_req_endpoint_name(r), fo_req_status(r));
        } else {
            if (fo_req_endpoint(r) >= 0)
                printf("answered: %s (HTTP %ld, not 2xx)\n", fo_req_endpoint_name(r),
                       fo_req_status(r));
            else
                printf("answered: none\n");
            fflush(stdout);
            fprintf(stderr, "failover-check: %s\n", fo_req_errmsg(r));
        }
    } else {
        /* --each: every endpoint on its own, as if it were the only clone. */
        char one[FO_ENDPOINT_MAX];
        const char *first = NULL;

        rc = fo_list_new(spec, &o, &l, err, sizeof(err));
        if (rc != FO_OK) {
            fprintf(stderr, "failover-check: %s\n", err);
            status = EXIT_USAGE;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            struct fo_list *single = NULL;
            const struct fo_attempt *a;
            const char *d;
            char what[64];

            (void)snprintf(one, sizeof(one), "%s", fo_list_endpoint(l, i));
            o.deadline_ms = o.connect_timeout_ms + timeout_ms + 1000;
            if (fo_list_new(one, &o, &single, err, sizeof(err)) != FO_OK) {
                fprintf(stderr, "failover-check: %s\n", err);
                continue;
            }
            rc = fo_req_perform(r, single, &c);
            a = fo_req_attempt(r, 0);
            d = fo_req_attempt_detail(r, 0);
            if (a != NULL) {
                describe(a, what, sizeof(what));
                printf("%2zu %-40s %-26s %9.1f ms%s%s%s\n", i + 1, one, what,
                       a->elapsed_us / 1000.0, d[0] != '\0' ? "  (" : "", d,
                       d[0] != '\0' ? ")" : "");
            }
            if (rc == FO_OK && first == NULL)
                first = fo_list_endpoint(l, i);
            fo_list_free(single);
        }
        if (first != NULL) {
            answered = true;
            printf("answered: %s (first in list order to answer 2xx)\n", first);
        } else {
            printf("answered: none\n");
        }
    }
    status = answered ? EXIT_ANSWERED : EXIT_NO_ANSWER;
out:
    fo_req_free(r);
    fo_list_free(l);
    fo_global_cleanup();
    return status;
}
