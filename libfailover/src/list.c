/* libfailover/src/list.c - endpoint lists: Dogtag host:port parsing, per-endpoint breaker with
 * doubling jittered backoff and half-open probes (R-1..R-3), counters, names and logging. */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

/* ---- names ------------------------------------------------------------------------------ */

const char *
fo_strerror(enum fo_rc rc)
{
    switch (rc) {
    case FO_OK:
        return "success";
    case FO_EINVAL:
        return "invalid argument";
    case FO_ENOMEM:
        return "out of memory";
    case FO_EUNAVAILABLE:
        return "unavailable: no clone served the call";
    case FO_EUNKNOWN:
        return "outcome unknown: the call may have been received; not resent";
    case FO_EREJECTED:
        return "rejected by the clone";
    case FO_EAUTH:
        return "authentication or authorisation refused";
    case FO_EPROTO:
        return "bad response";
    case FO_EINTERNAL:
        return "internal error (libcurl setup)";
    }
    return "unknown error";
}

const char *
fo_fail_name(enum fo_fail f)
{
    switch (f) {
    case FO_FAIL_NONE:
        return "answered";
    case FO_FAIL_REFUSED:
        return "refused";
    case FO_FAIL_CONNECT_TIMEOUT:
        return "timed out before sending";
    case FO_FAIL_TLS:
        return "TLS error";
    case FO_FAIL_TIMEOUT:
        return "timed out after sending";
    case FO_FAIL_RESET:
        return "closed after sending";
    case FO_FAIL_HTTP_5XX:
        return "HTTP server error";
    case FO_FAIL_BAD_RESPONSE:
        return "bad response";
    case FO_FAIL_HTTP_4XX:
        return "HTTP client error";
    case FO_FAIL_APP:
        return "application error";
    case FO_FAIL_SKIPPED:
        return "skipped (breaker open)";
    case FO_FAIL_DEADLINE:
        return "skipped (deadline reached)";
    }
    return "unknown";
}

const char *
fo_breaker_name(enum fo_breaker b)
{
    switch (b) {
    case FO_BREAKER_CLOSED:
        return "closed";
    case FO_BREAKER_OPEN:
        return "open";
    case FO_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}

static const uint32_t lat_bounds[FO_LAT_BUCKETS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, UINT32_MAX,
};

uint32_t
fo_lat_bucket_ms(unsigned b)
{
    if (b >= FO_LAT_BUCKETS)
        return UINT32_MAX;
    return lat_bounds[b];
}

/* ---- time, logging, global init --------------------------------------------------------- */

uint64_t
fo_mono_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
fo_list_now(const struct fo_list *l)
{
    if (l->opts.clock != NULL)
        return l->opts.clock(l->opts.clock_arg);
    return fo_mono_us() / 1000u;
}

void
fo_logf(const struct fo_list *l, enum fo_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (l->opts.log == NULL || level > l->opts.log_level)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap); /* a truncated log line is acceptable */
    va_end(ap);
    l->opts.log(l->opts.log_arg, level, line);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void
global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

enum fo_rc
fo_global_init(void)
{
    if (pthread_once(&global_once, global_init_once) != 0)
        return FO_EINTERNAL;
    return global_rc == CURLE_OK ? FO_OK : FO_EINTERNAL;
}

void
fo_global_cleanup(void)
{
    if (global_rc == CURLE_OK)
        curl_global_cleanup();
}

/* ---- parsing (R-1) ---------------------------------------------------------------------- */

static bool
is_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r';
}

static bool
is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

static bool
is_v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
           c == ':' || c == '.';
}

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap); /* truncation keeps the start, which names the token */
    va_end(ap);
}

/* Parses the port text p[0..len): 1..65535, digits only. */
static bool
parse_port(const char *p, size_t len, unsigned *out)
{
    unsigned v = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10u + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *out = v;
    return true;
}

/* Parses one token t[0..len) into *ep (may be NULL). */
static enum fo_rc
parse_token(const char *t, size_t len, unsigned idx, struct fo_ep *ep, char *err, size_t errlen)
{
    const char *host, *port;
    size_t hlen, plen;
    bool v6 = false;
    unsigned pv;
    int show = len > 80 ? 80 : (int)len;

    if (len >= FO_ENDPOINT_MAX) {
        set_err(err, errlen, "endpoint %u '%.*s...': longer than %d characters", idx, show, t,
                FO_ENDPOINT_MAX - 1);
        return FO_EINVAL;
    }
    if (t[0] == '[') {
        const char *close = memchr(t, ']', len);

        if (close == NULL) {
            set_err(err, errlen, "endpoint %u '%.*s': missing ']' after IPv6 address", idx, show,
                    t);
            return FO_EINVAL;
        }
        host = t + 1;
        hlen = (size_t)(close - host);
        if (hlen == 0 || memchr(host, ':', hlen) == NULL) {
            set_err(err, errlen, "endpoint %u '%.*s': '[...]' must hold an IPv6 address", idx,
                    show, t);
            return FO_EINVAL;
        }
        for (size_t i = 0; i < hlen; i++) {
            if (!is_v6_char(host[i])) {
                set_err(err, errlen,
                        "endpoint %u '%.*s': bad character in IPv6 address (zone ids are not "
                        "supported)",
                        idx, show, t);
                return FO_EINVAL;
            }
        }
        if ((size_t)(close + 1 - t) >= len || close[1] != ':') {
            set_err(err, errlen, "endpoint %u '%.*s': missing port (expected [addr]:port)", idx,
                    show, t);
            return FO_EINVAL;
        }
        port = close + 2;
        plen = len - (size_t)(port - t);
        v6 = true;
    } else {
        const char *colon = memchr(t, ':', len);

        if (colon == NULL) {
            set_err(err, errlen, "endpoint %u '%.*s': missing port (expected host:port)", idx,
                    show, t);
            return FO_EINVAL;
        }
        if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - t)) != NULL) {
            set_err(err, errlen,
                    "endpoint %u '%.*s': an IPv6 address must be in brackets: [addr]:port", idx,
                    show, t);
            return FO_EINVAL;
        }
        host = t;
        hlen = (size_t)(colon - t);
        if (hlen == 0) {
            set_err(err, errlen, "endpoint %u '%.*s': empty host name", idx, show, t);
            return FO_EINVAL;
        }
        for (size_t i = 0; i < hlen; i++) {
            if (!is_host_char(host[i])) {
                set_err(err, errlen, "endpoint %u '%.*s': bad character in host name", idx,
                        show, t);
                return FO_EINVAL;
            }
        }
        port = colon + 1;
        plen = len - hlen - 1;
    }
    if (hlen >= FO_HOST_MAX) {
        set_err(err, errlen, "endpoint %u '%.*s...': host longer than %d characters", idx, show,
                t, FO_HOST_MAX - 1);
        return FO_EINVAL;
    }
    if (!parse_port(port, plen, &pv)) {
        set_err(err, errlen, "endpoint %u '%.*s': port must be a number from 1 to 65535", idx,
                show, t);
        return FO_EINVAL;
    }
    if (ep != NULL) {
        memcpy(ep->host, host, hlen);
        ep->host[hlen] = '\0';
        ep->port = pv;
        ep->v6 = v6;
        (void)snprintf(ep->name, sizeof(ep->name), v6 ? "[%s]:%u" : "%s:%u", ep->host, pv);
    }
    return FO_OK;
}

enum fo_rc
fo_parse_list(const char *spec, struct fo_ep *eps, size_t *count, char *err, size_t errlen)
{
    const char *p = spec;
    size_t n = 0;
    enum fo_rc rc;

    if (spec == NULL) {
        set_err(err, errlen, "endpoint list: missing");
        return FO_EINVAL;
    }
    for (;;) {
        const char *start;

        while (*p != '\0' && is_sep(*p))
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && !is_sep(*p))
            p++;
        if (n == FO_MAX_ENDPOINTS) {
            set_err(err, errlen, "endpoint list: more than %d endpoints", FO_MAX_ENDPOINTS);
            return FO_EINVAL;
        }
        rc = parse_token(start, (size_t)(p - start), (unsigned)n + 1, eps != NULL ? &eps[n] : NULL,
                         err, errlen);
        if (rc != FO_OK)
            return rc;
        n++;
    }
    if (n == 0) {
        set_err(err, errlen, "endpoint list: empty (expected 'host:port host:port ...')");
        return FO_EINVAL;
    }
    if (count != NULL)
        *count = n;
    return FO_OK;
}

enum fo_rc
fo_list_check(const char *spec, size_t *count, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return fo_parse_list(spec, NULL, count, err, errlen);
}

/* ---- list lifecycle ----------------------------------------------------------------------- */

void
fo_opts_init(struct fo_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->name = "fo";
    o->policy = FO_POLICY_PRIORITY;
    o->connect_timeout_ms = 5000;
    o->response_timeout_ms = 0;
    o->deadline_ms = 30000;
    o->max_attempts = 0;
    o->fail_threshold = 2;
    o->refuse_threshold = 1;
    o->backoff_min_ms = 5000;
    o->backoff_max_ms = 300000;
    o->jitter_pct = 20;
    o->tls = true;
    o->body_max = 1024 * 1024;
    o->max_inflight = 15;
    o->log_level = FO_LOG_INFO;
}

static enum fo_rc
dup_opt(const char *in, char **out)
{
    *out = NULL;
    if (in == NULL)
        return FO_OK;
    *out = strdup(in);
    return *out != NULL ? FO_OK : FO_ENOMEM;
}

static enum fo_rc
check_opts(const struct fo_opts *o, char *err, size_t errlen)
{
    if (o->connect_timeout_ms == 0 || o->deadline_ms == 0) {
        set_err(err, errlen, "options: connect_timeout_ms and deadline_ms must be > 0");
        return FO_EINVAL;
    }
    if (o->fail_threshold == 0 || o->refuse_threshold == 0) {
        set_err(err, errlen, "options: fail_threshold and refuse_threshold must be >= 1");
        return FO_EINVAL;
    }
    if (o->backoff_min_ms == 0 || o->backoff_max_ms < o->backoff_min_ms) {
        set_err(err, errlen, "options: need 0 < backoff_min_ms <= backoff_max_ms");
        return FO_EINVAL;
    }
    if (o->jitter_pct > 90) {
        set_err(err, errlen, "options: jitter_pct must be <= 90");
        return FO_EINVAL;
    }
    if (o->body_max == 0 || o->body_max > (size_t)1 << 30) {
        set_err(err, errlen, "options: body_max must be between 1 and 1 GiB");
        return FO_EINVAL;
    }
    if (o->policy != FO_POLICY_PRIORITY && o->policy != FO_POLICY_STICKY &&
        o->policy != FO_POLICY_POD) {
        set_err(err, errlen, "options: unknown policy %d", (int)o->policy);
        return FO_EINVAL;
    }
    if ((o->policy == FO_POLICY_POD) != (o->pod != NULL)) {
        set_err(err, errlen, "options: policy pod needs a pod, and a pod needs policy pod");
        return FO_EINVAL;
    }
    for (size_t i = 0; o->resolve != NULL && o->resolve[i] != NULL; i++) {
        size_t rl = strlen(o->resolve[i]);

        if (rl == 0 || rl > 512 || strpbrk(o->resolve[i], " \t\r\n") != NULL ||
            strchr(o->resolve[i], ':') == NULL) {
            set_err(err, errlen, "options: resolve entry %zu must be 'host:port:address'", i + 1);
            return FO_EINVAL;
        }
    }
    if (o->verify_name != NULL) {
        size_t vl = strlen(o->verify_name);

        if (vl == 0 || vl >= FO_HOST_MAX) {
            set_err(err, errlen, "options: verify_name must be 1..%d characters", FO_HOST_MAX - 1);
            return FO_EINVAL;
        }
        for (size_t i = 0; i < vl; i++) {
            if (!is_host_char(o->verify_name[i])) {
                set_err(err, errlen, "options: bad character in verify_name");
                return FO_EINVAL;
            }
        }
    }
    return FO_OK;
}

enum fo_rc
fo_list_new(const char *spec, const struct fo_opts *opts, struct fo_list **out, char *err,
            size_t errlen)
{
    struct fo_opts defaults;
    struct fo_list *l = NULL;
    enum fo_rc rc;
    bool locked_init = false;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL) {
        set_err(err, errlen, "fo_list_new: out is NULL");
        return FO_EINVAL;
    }
    *out = NULL;
    if (opts == NULL) {
        fo_opts_init(&defaults);
        opts = &defaults;
    }
    rc = check_opts(opts, err, errlen);
    if (rc != FO_OK)
        goto fail;
    rc = fo_global_init();
    if (rc != FO_OK) {
        set_err(err, errlen, "libcurl global initialisation failed");
        goto fail;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        rc = FO_ENOMEM;
        goto fail;
    }
    rc = fo_parse_list(spec, l->ep, &l->n, err, errlen);
    if (rc != FO_OK)
        goto fail;
    l->opts = *opts;
    (void)snprintf(l->name, sizeof(l->name), "%s", opts->name != NULL ? opts->name : "fo");
    l->opts.name = l->name;
    if ((rc = dup_opt(opts->cert_file, &l->cert_file)) != FO_OK ||
        (rc = dup_opt(opts->key_file, &l->key_file)) != FO_OK ||
        (rc = dup_opt(opts->ca_file, &l->ca_file)) != FO_OK ||
        (rc = dup_opt(opts->ciphers, &l->ciphers)) != FO_OK ||
        (rc = dup_opt(opts->verify_name, &l->verify_name)) != FO_OK)
        goto fail;
    l->opts.cert_file = l->cert_file;
    l->opts.key_file = l->key_file;
    l->opts.ca_file = l->ca_file;
    l->opts.ciphers = l->ciphers;
    l->opts.verify_name = l->verify_name;
    for (size_t i = 0; i < l->n; i++) {
        struct fo_ep *e = &l->ep[i];
        const char *scheme = opts->tls ? "https" : "http";
        int w;

        if (l->verify_name != NULL) {
            w = snprintf(e->url_prefix, sizeof(e->url_prefix), "%s://%s:%u", scheme,
                         l->verify_name, e->port);
            if (w > 0 && (size_t)w < sizeof(e->url_prefix))
                w = snprintf(e->connect_to, sizeof(e->connect_to),
                             e->v6 ? "%s:%u:[%s]:%u" : "%s:%u:%s:%u", l->verify_name, e->port,
                             e->host, e->port);
        } else {
            w = snprintf(e->url_prefix, sizeof(e->url_prefix), "%s://%s", scheme, e->name);
        }
        if (w < 0 || (size_t)w >= sizeof(e->url_prefix)) {
            set_err(err, errlen, "endpoint %s: URL too long", e->name);
            rc = FO_EINVAL;
            goto fail;
        }
        e->state = FO_BREAKER_CLOSED;
    }
    for (size_t i = 0; opts->resolve != NULL && opts->resolve[i] != NULL; i++) {
        struct curl_slist *t = curl_slist_append(l->resolve, opts->resolve[i]);

        if (t == NULL) {
            rc = FO_ENOMEM;
            goto fail;
        }
        l->resolve = t;
    }
    l->opts.resolve = NULL; /* the copy is l->resolve */
    if (opts->pod != NULL) {
        pthread_mutex_lock(&opts->pod->lock);
        if (opts->pod->n == 0)
            opts->pod->n = l->n;
        rc = opts->pod->n == l->n ? FO_OK : FO_EINVAL;
        pthread_mutex_unlock(&opts->pod->lock);
        if (rc != FO_OK) {
            set_err(err, errlen,
                    "pod: every list of a pod needs the same number of endpoints (the pod has "
                    "%zu, this list %zu)",
                    opts->pod->n, l->n);
            goto fail;
        }
        l->pod = opts->pod;
    }
    l->rng = opts->seed != 0 ? opts->seed : (fo_mono_us() ^ (uint64_t)(uintptr_t)l) | 1u;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        rc = FO_ENOMEM;
        goto fail;
    }
    locked_init = true;
    {
        pthread_condattr_t ca;
        int cr = pthread_condattr_init(&ca);

        if (cr == 0)
            cr = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (cr == 0)
            cr = pthread_cond_init(&l->slot_cv, &ca);
        (void)pthread_condattr_destroy(&ca);
        if (cr != 0) {
            rc = FO_ENOMEM;
            goto fail;
        }
    }
    *out = l;
    return FO_OK;
fail:
    if (l != NULL) {
        if (locked_init)
            pthread_mutex_destroy(&l->lock);
        curl_slist_free_all(l->resolve);
        free(l->cert_file);
        free(l->key_file);
        free(l->ca_file);
        free(l->ciphers);
        free(l->verify_name);
        free(l);
    }
    return rc;
}

void
fo_list_free(struct fo_list *l)
{
    if (l == NULL)
        return;
    pthread_cond_destroy(&l->slot_cv);
    pthread_mutex_destroy(&l->lock);
    curl_slist_free_all(l->resolve);
    free(l->cert_file);
    free(l->key_file);
    free(l->ca_file);
    free(l->ciphers);
    free(l->verify_name);
    free(l);
}

size_t
fo_list_count(const struct fo_list *l)
{
    return l != NULL ? l->n : 0;
}

const char *
fo_list_endpoint(const struct fo_list *l, size_t i)
{
    if (l == NULL || i >= l->n)
        return NULL;
    return l->ep[i].name;
}

const char *
fo_list_name(const struct fo_list *l)
{
    return l != NULL ? l->name : "";
}

/* ---- health (R-3) ----------------------------------------------------------------------- */

/* xorshift64*: jitter only, not security. Caller holds l->lock. */
static uint64_t
rng_next(struct fo_list *l)
{
    uint64_t x = l->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    l->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Opens endpoint e for its current backoff (+/- jitter). Caller holds l->lock. */
static uint64_t
open_locked(struct fo_list *l, struct fo_ep *e, uint64_t now)
{
    uint64_t period = e->backoff_ms;

    if (l->opts.jitter_pct > 0) {
        uint64_t span = period * l->opts.jitter_pct / 100u;
        uint64_t r = span > 0 ? rng_next(l) % (2 * span + 1) : 0;

        period = period - span + r;
    }
    e->state = FO_BREAKER_OPEN;
    e->open_until = now + period;
    return period;
}

enum fo_admit
fo_health_admit(struct fo_list *l, size_t i, enum fo_idem idem, uint64_t *open_remaining_ms)
{
    struct fo_ep *e = &l->ep[i];
    enum fo_admit a = FO_ADMIT_NO;
    uint64_t now = fo_list_now(l);

    *open_remaining_ms = 0;
    pthread_mutex_lock(&l->lock);
    switch (e->state) {
    case FO_BREAKER_CLOSED:
        a = FO_ADMIT_YES;
        break;
    case FO_BREAKER_OPEN:
        if (now >= e->open_until) {
            /* Only an idempotent call may test a clone that may hang after reading. */
            if (idem == FO_IDEMPOTENT && !e->probing) {
                e->state = FO_BREAKER_HALF_OPEN;
                e->probing = true;
                a = FO_ADMIT_PROBE;
            }
        } else {
            *open_remaining_ms = e->open_until - now;
        }
        break;
    case FO_BREAKER_HALF_OPEN:
        break;
    }
    pthread_mutex_unlock(&l->lock);
    return a;
}

int
fo_health_pick_forced(struct fo_list *l, const size_t *order, size_t n)
{
    int best = -1;
    uint64_t best_until = UINT64_MAX;

    pthread_mutex_lock(&l->lock);
    for (size_t k = 0; k < n; k++) {
        struct fo_ep *e = &l->ep[order[k]];

        if (e->state == FO_BREAKER_OPEN && !e->probing && e->open_until < best_until) {
            best = (int)order[k];
            best_until = e->open_until;
        }
    }
    if (best >= 0)
        l->ep[best].probing = true;
    pthread_mutex_unlock(&l->lock);
    return best;
}

void
fo_health_release(struct fo_list *l, size_t i)
{
    struct fo_ep *e = &l->ep[i];

    pthread_mutex_lock(&l->lock);
    if (e->probing) {
        e->probing = false;
        if (e->state == FO_BREAKER_HALF_OPEN)
            e->state = FO_BREAKER_OPEN;
    }
    pthread_mutex_unlock(&l->lock);
}

/* Whether an attempt's class counts against the endpoint's health. */
static bool
is_endpoint_failure(enum fo_fail f)
{
    switch (f) {
    case FO_FAIL_REFUSED:
    case FO_FAIL_CONNECT_TIMEOUT:
    case FO_FAIL_TLS:
    case FO_FAIL_TIMEOUT:
    case FO_FAIL_RESET:
    case FO_FAIL_HTTP_5XX:
    case FO_FAIL_BAD_RESPONSE:
        return true;
    case FO_FAIL_NONE:
    case FO_FAIL_HTTP_4XX:
    case FO_FAIL_APP:
    case FO_FAIL_SKIPPED:
    case FO_FAIL_DEADLINE:
        return false;
    }
    return false;
}

void
fo_health_report(struct fo_list *l, size_t i, enum fo_fail fail, uint64_t elapsed_us, bool probe)
{
    struct fo_ep *e = &l->ep[i];
    uint64_t now, period = 0, ms = elapsed_us / 1000u;
    unsigned fails;
    bool opened = false, closed = false;
    unsigned b = 0;

    if (fail == FO_FAIL_SKIPPED || fail == FO_FAIL_DEADLINE) {
        atomic_fetch_add_explicit(&e->failures[fail], 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&e->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->lat_sum_us, elapsed_us, memory_order_relaxed);
    while (b + 1 < FO_LAT_BUCKETS && ms > lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&e->hist[b], 1, memory_order_relaxed);
    if (fail == FO_FAIL_NONE || fail == FO_FAIL_HTTP_4XX || fail == FO_FAIL_APP)
        atomic_fetch_add_explicit(&e->successes, 1, memory_order_relaxed);
    if (fail != FO_FAIL_NONE)
        atomic_fetch_add_explicit(&e->failures[fail], 1, memory_order_relaxed);

    now = fo_list_now(l);
    pthread_mutex_lock(&l->lock);
    if (!is_endpoint_failure(fail)) {
        /* The clone answered: it is alive, whoever asked. */
        if (e->state != FO_BREAKER_CLOSED)
            closed = true;
        e->state = FO_BREAKER_CLOSED;
        e->fails = 0;
        e->backoff_ms = 0;
        if (probe)
            e->probing = false;
    } else {
        unsigned threshold =
            fail == FO_FAIL_REFUSED ? l->opts.refuse_threshold : l->opts.fail_threshold;

        e->fails++;
        if (probe) {
            /* A failed probe (or forced attempt): open again for twice as long. */
            uint64_t next = e->backoff_ms * 2;

            if (next < l->opts.backoff_min_ms)
                next = l->opts.backoff_min_ms;
            if (next > l->opts.backoff_max_ms)
                next = l->opts.backoff_max_ms;
            e->backoff_ms = next;
            period = open_locked(l, e, now);
            opened = true;
            e->probing = false;
        } else if (e->state == FO_BREAKER_CLOSED && e->fails >= threshold) {
            e->backoff_ms = l->opts.backoff_min_ms;
            period = open_locked(l, e, now);
            opened = true;
        }
        /* Otherwise: a late failure of an attempt admitted while the endpoint was closed;
         * the breaker is already open (or being probed) and keeps its backoff. */
    }
    fails = e->fails;
    pthread_mutex_unlock(&l->lock);

    if (opened) {
        atomic_fetch_add_explicit(&e->opens, 1, memory_order_relaxed);
        fo_logf(l, FO_LOG_WARN,
                "fo.breaker list=%s ep=%s state=open fails=%u last=\"%s\" open_ms=%llu", l->name,
                e->name, fails, fo_fail_name(fail), (unsigned long long)period);
    } else if (closed) {
        atomic_fetch_add_explicit(&e->closes, 1, memory_order_relaxed);
        fo_logf(l, FO_LOG_NOTICE, "fo.breaker list=%s ep=%s state=closed", l->name, e->name);
    }
}

bool
fo_slot_acquire(struct fo_list *l, size_t i, uint64_t deadline_us)
{
    struct fo_ep *e = &l->ep[i];
    uint64_t t0 = 0;
    bool ok = true, waited = false;

    if (l->opts.max_inflight == 0) {
        pthread_mutex_lock(&l->lock);
        e->busy++;
        pthread_mutex_unlock(&l->lock);
        return true;
    }
    pthread_mutex_lock(&l->lock);
    while (e->busy >= l->opts.max_inflight) {
        struct timespec ts;
        uint64_t now = fo_mono_us();

        if (!waited) {
            waited = true;
            t0 = now;
        }
        if (now >= deadline_us) {
            ok = false;
            break;
        }
        ts.tv_sec = (time_t)(deadline_us / 1000000u);
        ts.tv_nsec = (long)(deadline_us % 1000000u) * 1000L;
        (void)pthread_cond_timedwait(&l->slot_cv, &l->lock, &ts);
    }
    if (ok)
        e->busy++;
    pthread_mutex_unlock(&l->lock);
    if (waited) {
        atomic_fetch_add_explicit(&e->slot_waits, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->slot_wait_us, fo_mono_us() - t0, memory_order_relaxed);
    }
    return ok;
}

void
fo_slot_release(struct fo_list *l, size_t i)
{
    pthread_mutex_lock(&l->lock);
    if (l->ep[i].busy > 0)
        l->ep[i].busy--;
    pthread_cond_broadcast(&l->slot_cv);
    pthread_mutex_unlock(&l->lock);
}

void
fo_health_served(struct fo_list *l, size_t i)
{
    if (l->opts.policy == FO_POLICY_STICKY) {
        pthread_mutex_lock(&l->lock);
        l->sticky = i;
        pthread_mutex_unlock(&l->lock);
    } else if (l->opts.policy == FO_POLICY_POD) {
        pthread_mutex_lock(&l->pod->lock);
        l->pod->index = i;
        pthread_mutex_unlock(&l->pod->lock);
    }
}

size_t
fo_health_start(struct fo_list *l)
{
    size_t s = 0;

    if (l->opts.policy == FO_POLICY_STICKY) {
        pthread_mutex_lock(&l->lock);
        s = l->sticky;
        pthread_mutex_unlock(&l->lock);
    } else if (l->opts.policy == FO_POLICY_POD) {
        pthread_mutex_lock(&l->pod->lock);
        s = l->pod->index;
        pthread_mutex_unlock(&l->pod->lock);
    }
    return s < l->n ? s : 0;
}

enum fo_rc
fo_pod_new(struct fo_pod **out)
{
    struct fo_pod *p;

    if (out == NULL)
        return FO_EINVAL;
    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return FO_ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return FO_ENOMEM;
    }
    *out = p;
    return FO_OK;
}

void
fo_pod_free(struct fo_pod *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- counters (R-12) -------------------------------------------------------------------- */

enum fo_rc
fo_list_ep_stats(const struct fo_list *cl, size_t i, struct fo_ep_stats *out)
{
    /* The lock and the atomics are mutable state inside a logically const list. */
    struct fo_list *l = (struct fo_list *)(uintptr_t)cl;
    struct fo_ep *e;
    uint64_t now;

    if (l == NULL || out == NULL || i >= l->n)
        return FO_EINVAL;
    e = &l->ep[i];
    memset(out, 0, sizeof(*out));
    memcpy(out->endpoint, e->name, sizeof(out->endpoint));
    now = fo_list_now(l);
    pthread_mutex_lock(&l->lock);
    out->breaker = e->state;
    out->consecutive_failures = e->fails;
    out->inflight = e->busy;
    if (e->state == FO_BREAKER_OPEN && e->open_until > now)
        out->open_remaining_ms = e->open_until - now;
    pthread_mutex_unlock(&l->lock);
    out->requests = atomic_load_explicit(&e->requests, memory_order_relaxed);
    out->successes = atomic_load_explicit(&e->successes, memory_order_relaxed);
    for (unsigned f = 0; f < FO_FAIL_COUNT; f++)
        out->failures[f] = atomic_load_explicit(&e->failures[f], memory_order_relaxed);
    out->breaker_opens = atomic_load_explicit(&e->opens, memory_order_relaxed);
    out->breaker_closes = atomic_load_explicit(&e->closes, memory_order_relaxed);
    out->slot_waits = atomic_load_explicit(&e->slot_waits, memory_order_relaxed);
    out->slot_wait_us = atomic_load_explicit(&e->slot_wait_us, memory_order_relaxed);
    out->latency_sum_us = atomic_load_explicit(&e->lat_sum_us, memory_order_relaxed);
    for (unsigned b = 0; b < FO_LAT_BUCKETS; b++)
        out->latency_hist[b] = atomic_load_explicit(&e->hist[b], memory_order_relaxed);
    return FO_OK;
}

void
fo_list_stats(const struct fo_list *cl, struct fo_list_stats *out)
{
    struct fo_list *l = (struct fo_list *)(uintptr_t)cl;

    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (l == NULL)
        return;
    out->calls = atomic_load_explicit(&l->calls, memory_order_relaxed);
    for (unsigned k = 0; k < FO_RC_COUNT; k++)
        out->outcomes[k] = atomic_load_explicit(&l->outcomes[k], memory_order_relaxed);
    out->failovers = atomic_load_explicit(&l->failovers, memory_order_relaxed);
    out->resends = atomic_load_explicit(&l->resends, memory_order_relaxed);
}
