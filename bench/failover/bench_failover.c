/* bench/failover/bench_failover.c - libfailover benchmark (make bench; not a test): overhead
 * of a call through libfailover vs a bare libcurl call to the same healthy loopback clone,
 * added latency when the first clone refuses (first call, later calls), and how many calls pay
 * a hung clone's timeout during a run with the breaker. Prints the figures side by side with
 * their targets and the command that produced them. */
#include <libfailover/failover.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fo_testsrv.h"

#define BODY "tokencuid=%23%01%02%03%04%05%06%07%08%09%10&keySet=defKeySet&protocol=2"
#define PATH "/tks/agent/tks/computeRandomData"

static double
now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static size_t
discard(char *p, size_t s, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return s * n;
}

static bool
bare_call(CURL *e, const char *url, struct curl_slist *h)
{
    long st = 0;

    /* The same options libfailover sets, minus its bookkeeping. */
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, BODY);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(BODY));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    if (curl_easy_perform(e) != CURLE_OK)
        return false;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    return st == 200;
}

static struct fo_list *
mklist(const char *spec, unsigned response_ms, unsigned backoff_ms)
{
    struct fo_opts o;
    struct fo_list *l = NULL;
    char err[256];

    fo_opts_init(&o);
    o.name = "bench";
    o.tls = false;
    o.connect_timeout_ms = 1000;
    o.response_timeout_ms = response_ms;
    o.backoff_min_ms = backoff_ms;
    o.backoff_max_ms = backoff_ms;
    o.jitter_pct = 0;
    if (fo_list_new(spec, &o, &l, err, sizeof(err)) != FO_OK) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    return l;
}

static bool
fo_call(struct fo_req *r, struct fo_list *l)
{
    struct fo_call c = {.method = FO_POST, .path = PATH, .body = BODY, .idem = FO_IDEMPOTENT};

    c.body_len = strlen(BODY);
    return fo_req_perform(r, l, &c) == FO_OK;
}

/* ---- hung clone run ---- */

struct hung_run {
    struct fo_list *l;
    double until;
    atomic_uint calls, paid, failed;
};

static void *
hung_worker(void *arg)
{
    struct hung_run *h = arg;
    struct fo_req *r = NULL;

    if (fo_req_new(&r) != FO_OK)
        return NULL;
    while (now_us() < h->until) {
        bool ok = fo_call(r, h->l);

        atomic_fetch_add(&h->calls, 1);
        if (!ok)
            atomic_fetch_add(&h->failed, 1);
        for (size_t k = 0; k < fo_req_attempt_count(r); k++) {
            const struct fo_attempt *a = fo_req_attempt(r, k);

            if (a->endpoint == 0 && a->fail == FO_FAIL_TIMEOUT)
                atomic_fetch_add(&h->paid, 1);
        }
    }
    fo_req_free(r);
    return NULL;
}

int
main(int argc, char **argv)
{
    unsigned n = 2000, seconds = 10, threads = 4, backoff = 1000, hang_ms = 200;
    struct fo_ts *ok, *ok_bare, *hang;
    char url[128], spec[128];
    CURL *e;
    struct curl_slist *h = NULL;
    struct fo_list *l;
    struct fo_req *r = NULL;
    double *bare, *lib, *first, *later, t;
    double m_bare, m_lib, m_first, m_later;
    unsigned refused_port;

    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long v = strtoul(argv[i + 1], NULL, 10);

        if (strcmp(argv[i], "--calls") == 0 && v >= 100 && v <= 1000000)
            n = (unsigned)v;
        else if (strcmp(argv[i], "--seconds") == 0 && v >= 1 && v <= 600)
            seconds = (unsigned)v;
        else if (strcmp(argv[i], "--threads") == 0 && v >= 1 && v <= 64)
            threads = (unsigned)v;
        else if (strcmp(argv[i], "--backoff-ms") == 0 && v >= 10 && v <= 60000)
            backoff = (unsigned)v;
        else {
            fprintf(stderr, "usage: %s [--calls N] [--seconds S] [--threads T] [--backoff-ms MS]\n",
                    argv[0]);
            return 2;
        }
    }
    fo_ts_block_sigpipe();
    if (fo_global_init() != FO_OK)
        return 1;
    ok = fo_ts_start(1, 0, FO_TS_OK, 0, NULL);
    ok_bare = fo_ts_start(2, 0, FO_TS_OK, 0, NULL); /* the reference's own server */
    hang = fo_ts_start(0, 0, FO_TS_HANG, 0, NULL);
    if (ok == NULL || ok_bare == NULL || hang == NULL)
        return 1;
    bare = calloc(n, sizeof(double));
    lib = calloc(n, sizeof(double));
    first = calloc(n, sizeof(double));
    later = calloc(n, sizeof(double));
    if (bare == NULL || lib == NULL || first == NULL || later == NULL)
        return 1;

    /* 1. Healthy clone: bare libcurl vs libfailover, interleaved in blocks of 100 so that
     * drift on the machine hits both alike. Both reuse one kept-alive connection, each to its
     * own (identical) test server, so that neither waits on the other's connection. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u" PATH, fo_ts_port(ok_bare));
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", fo_ts_port(ok));
    e = curl_easy_init();
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
    l = mklist(spec, 0, 5000);
    if (e == NULL || h == NULL || fo_req_new(&r) != FO_OK)
        return 1;
    for (unsigned w = 0; w < 200; w++) { /* warm-up */
        bare_call(e, url, h);
        fo_call(r, l);
    }
    for (unsigned b = 0; b < n; b += 100) {
        for (unsigned k = b; k < b + 100 && k < n; k++) {
            t = now_us();
            if (!bare_call(e, url, h))
                return 1;
            bare[k] = now_us() - t;
        }
        for (unsigned k = b; k < b + 100 && k < n; k++) {
            t = now_us();
            if (!fo_call(r, l))
                return 1;
            lib[k] = now_us() - t;
        }
    }
    m_bare = median(bare, n);
    m_lib = median(lib, n);
    fo_list_free(l);

    /* 2. First clone refuses: the first call of a fresh list pays the refusal (and opens the
     * breaker); later calls skip it. Compared with the healthy median. */
    refused_port = fo_ts_refused_port();
    snprintf(spec, sizeof(spec), "127.0.0.1:%u 127.0.0.1:%u", refused_port, fo_ts_port(ok));
    for (unsigned k = 0; k < n; k++) {
        l = mklist(spec, 0, 600000);
        t = now_us();
        if (!fo_call(r, l))
            return 1;
        first[k] = now_us() - t;
        t = now_us();
        if (!fo_call(r, l))
            return 1;
        later[k] = now_us() - t;
        fo_list_free(l);
    }
    m_first = median(first, n);
    m_later = median(later, n);

    /* 3. Hung clone first, breaker on: count the calls that pay its response timeout. */
    {
        struct hung_run hr;
        pthread_t th[64];
        unsigned windows = seconds * 1000 / backoff;
        struct fo_ep_stats es;

        memset(&hr, 0, sizeof(hr));
        snprintf(spec, sizeof(spec), "127.0.0.1:%u 127.0.0.1:%u", fo_ts_port(hang),
                 fo_ts_port(ok));
        hr.l = mklist(spec, hang_ms, backoff);
        hr.until = now_us() + seconds * 1e6;
        for (unsigned i = 0; i < threads; i++)
            pthread_create(&th[i], NULL, hung_worker, &hr);
        for (unsigned i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        fo_list_ep_stats(hr.l, 0, &es);

        printf("libfailover benchmark (loopback, plain HTTP, %u calls per latency figure)\n", n);
        printf("%-58s %12s %12s %s\n", "figure", "libfailover", "bare curl", "target");
        printf("%-58s %9.1f us %9.1f us\n", "median latency, healthy clone", m_lib, m_bare);
        printf("%-58s %11.1f%% %12s %s\n", "  overhead of libfailover", (m_lib / m_bare - 1) * 100,
               "", "<= 5 %");
        printf("%-58s %9.1f us %12s %s\n", "added latency, first call, first clone refuses",
               m_first - m_lib, "", "<= 2000 us");
        printf("%-58s %9.1f us %12s %s\n", "added latency, later calls (breaker open)",
               m_later - m_lib, "", "~ 0");
        printf("%-58s %12u %12s %s\n", "calls paying the hung clone's timeout", hr.paid, "",
               "~ 1 per backoff window");
        printf("%-58s %12llu %12s %s\n", "  of which failed probes (one per backoff window)",
               (unsigned long long)(es.breaker_opens > 0 ? es.breaker_opens - 1 : 0), "",
               "<= windows");
        printf("    (%u s run, %u threads: the first %u calls were in flight when the clone hung; "
               "%u calls, %u failed; response timeout %u ms; backoff %u ms fixed: %u windows)\n",
               seconds, threads, threads, hr.calls, hr.failed, hang_ms, backoff, windows);
        fo_list_free(hr.l);
    }
    printf("command:");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("   (source bench/failover/bench_failover.c, run by make bench)\n");

    fo_req_free(r);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    fo_ts_stop(ok);
    fo_ts_stop(ok_bare);
    fo_ts_stop(hang);
    free(bare);
    free(lib);
    free(first);
    free(later);
    fo_global_cleanup();
    return 0;
}
