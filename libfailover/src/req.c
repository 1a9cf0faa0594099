/* libfailover/src/req.c - one call through a list: the walk over the endpoints, one libcurl
 * attempt per endpoint with connect/response/deadline timers, failure classes, and the
 * idempotency rules that decide whether the next clone may be tried (R-4..R-7, R-10). */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define FO_URL_MAX 4096
#define FO_DETAIL_MAX 160
#define FO_MAX_RECORDS (FO_MAX_ENDPOINTS + 1)

struct fo_req {
    CURL *easy;
    CURLM *multi;
    struct curl_slist *hdr_form; /* "Expect:" + the default form content type, built once */
    struct curl_slist *hdr_get;  /* "Expect:" */
    char errbuf[CURL_ERROR_SIZE];

    /* answer of the attempt under way / of the call's end */
    uint8_t *body;
    size_t body_len, body_cap, body_max;
    bool body_too_big;

    /* set by the prereq callback: the request is about to leave (R-5 "possible delivery") */
    bool sent;
    uint64_t sent_at_us;

    /* results of the last call */
    long status;
    int endpoint;
    const struct fo_list *list;
    bool resent;
    char errmsg[FO_ERRMSG_MAX];
    size_t natt;
    struct fo_attempt att[FO_MAX_RECORDS];
    char detail[FO_MAX_RECORDS][FO_DETAIL_MAX];
};

enum fo_rc
fo_req_new(struct fo_req **out)
{
    struct fo_req *r;
    enum fo_rc rc;

    if (out == NULL)
        return FO_EINVAL;
    *out = NULL;
    rc = fo_global_init();
    if (rc != FO_OK)
        return rc;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return FO_ENOMEM;
    r->easy = curl_easy_init();
    r->multi = curl_multi_init();
    r->body = malloc(1);
    r->hdr_get = curl_slist_append(NULL, "Expect:");
    r->hdr_form = curl_slist_append(NULL, "Expect:");
    if (r->hdr_form != NULL) {
        struct curl_slist *t =
            curl_slist_append(r->hdr_form, "Content-Type: application/x-www-form-urlencoded");

        if (t == NULL) {
            curl_slist_free_all(r->hdr_form);
            r->hdr_form = NULL;
        }
    }
    if (r->easy == NULL || r->multi == NULL || r->body == NULL || r->hdr_get == NULL ||
        r->hdr_form == NULL) {
        rc = r->body == NULL ? FO_ENOMEM : FO_EINTERNAL;
        fo_req_free(r);
        return rc;
    }
    /* The multi handle owns the connection cache: keep idle connections to up to this many
     * endpoints, across every list the handle calls through. */
    if (curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)FO_MAX_ENDPOINTS) != CURLM_OK) {
        fo_req_free(r);
        return FO_EINTERNAL;
    }
    r->body[0] = '\0';
    r->body_cap = 1;
    r->endpoint = -1;
    *out = r;
    return FO_OK;
}

void
fo_req_free(struct fo_req *r)
{
    if (r == NULL)
        return;
    if (r->multi != NULL)
        curl_multi_cleanup(r->multi);
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdr_form);
    curl_slist_free_all(r->hdr_get);
    free(r->body);
    free(r);
}

/* ---- libcurl callbacks ------------------------------------------------------------------ */

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct fo_req *r = arg;
    size_t n = size * nmemb;
    size_t need;

    if (n > r->body_max - r->body_len) {
        r->body_too_big = true;
        return 0; /* CURLE_WRITE_ERROR: the answer is bigger than the cap */
    }
    need = r->body_len + n + 1;
    if (need > r->body_cap) {
        size_t cap = r->body_cap * 2;
        uint8_t *p;

        if (cap < need)
            cap = need;
        if (cap > r->body_max + 1)
            cap = r->body_max + 1;
        p = realloc(r->body, cap);
        if (p == NULL)
            return 0;
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, ptr, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* Called once the connection is up (TCP + TLS) and before the request is written: from here
 * on the clone may receive the request. */
static int
on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
          int conn_local_port)
{
    struct fo_req *r = arg;

    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    r->sent = true;
    r->sent_at_us = fo_mono_us();
    return CURL_PREREQFUNC_OK;
}

/* ---- one attempt ------------------------------------------------------------------------ */

struct attempt_out {
    enum fo_fail fail;
    bool delivered;
    long status;
    CURLcode cc;
    uint64_t elapsed_us;
};

#define SETOPT(opt, val)                                                                          \
    do {                                                                                          \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK)                                            \
            goto setup_failed;                                                                    \
    } while (0)

/* OpenSSL reason strings of the certificate alerts: a server sends them only while it
 * rejects the handshake, so it never accepted the request, even if libcurl reports them from
 * a read after the request was written (TLS 1.3 client authentication). */
static bool
is_handshake_alert(const char *detail)
{
    static const char *const alerts[] = {
        "alert certificate required", "alert bad certificate",       "alert unknown ca",
        "alert certificate unknown",  "alert certificate expired",   "alert certificate revoked",
        "alert unsupported certificate", "alert handshake failure",
    };

    for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++) {
        if (strstr(detail, alerts[i]) != NULL)
            return true;
    }
    return false;
}

static enum fo_fail
classify(CURLcode cc, bool sent, long status, bool too_big, const char *detail)
{
    switch (cc) {
    case CURLE_OK:
        if (status >= 200 && status <= 299)
            return FO_FAIL_NONE;
        if (status == 404 || (status >= 500 && status <= 599))
            return FO_FAIL_HTTP_5XX;
        if (status >= 400 && status <= 499)
            return FO_FAIL_HTTP_4XX;
        return FO_FAIL_BAD_RESPONSE; /* 1xx, 3xx, or no status at all */
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return FO_FAIL_REFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return sent ? FO_FAIL_TIMEOUT : FO_FAIL_CONNECT_TIMEOUT;
    case CURLE_SSL_CLIENTCERT:
        /* TLS 1.3: the server refused our certificate by an alert that may arrive after the
         * request was written; the server never accepted application data. */
        return FO_FAIL_TLS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return sent && !is_handshake_alert(detail) ? FO_FAIL_RESET : FO_FAIL_TLS;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        if (is_handshake_alert(detail))
            return FO_FAIL_TLS;
        return sent ? FO_FAIL_RESET : FO_FAIL_REFUSED;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return sent ? FO_FAIL_RESET : FO_FAIL_REFUSED;
    case CURLE_WRITE_ERROR:
        return too_big || sent ? FO_FAIL_BAD_RESPONSE : FO_FAIL_REFUSED;
    default:
        return sent ? FO_FAIL_BAD_RESPONSE : FO_FAIL_REFUSED;
    }
}

/* Runs the transfer set up on r->easy, enforcing the response timeout (from the prereq
 * callback on) and the call deadline ourselves: libcurl has only a whole-transfer timeout. */
static CURLcode
run_transfer(struct fo_req *r, uint64_t deadline_us, uint64_t response_timeout_us)
{
    CURLcode cc = CURLE_OPERATION_TIMEDOUT;
    CURLMsg *msg;
    int running = 1, left;

    if (curl_multi_add_handle(r->multi, r->easy) != CURLM_OK)
        return CURLE_FAILED_INIT;
    for (;;) {
        uint64_t now, limit;
        int wait_ms;

        if (curl_multi_perform(r->multi, &running) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            goto out;
        }
        if (running == 0)
            break;
        now = fo_mono_us();
        limit = deadline_us;
        if (r->sent && response_timeout_us > 0 && r->sent_at_us + response_timeout_us < limit)
            limit = r->sent_at_us + response_timeout_us;
        if (now >= limit) {
            snprintf(r->errbuf, sizeof(r->errbuf), "%s timer expired",
                     r->sent ? "response" : "deadline");
            cc = CURLE_OPERATION_TIMEDOUT;
            goto out;
        }
        wait_ms = (int)((limit - now + 999) / 1000);
        if (wait_ms > 1000)
            wait_ms = 1000;
        if (curl_multi_poll(r->multi, NULL, 0, wait_ms, NULL) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            goto out;
        }
    }
    cc = CURLE_FAILED_INIT;
    while ((msg = curl_multi_info_read(r->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == r->easy)
            cc = msg->data.result;
    }
out:
    /* Removing a handle mid-transfer closes its connection: nothing half-read is reused. */
    (void)curl_multi_remove_handle(r->multi, r->easy);
    return cc;
}

static enum fo_rc
attempt(struct fo_req *r, struct fo_list *l, size_t i, const struct fo_call *c,
        uint64_t deadline_us, struct attempt_out *ao)
{
    CURL *e = r->easy;
    struct fo_ep *ep = &l->ep[i];
    struct curl_slist *hdrs = NULL, *tmp, *cto = NULL;
    char url[FO_URL_MAX], ctype[256];
    uint64_t start = fo_mono_us(), remain_ms, conn_ms;
    enum fo_rc rc = FO_OK;
    int w;

    memset(ao, 0, sizeof(*ao));
    r->sent = false;
    r->sent_at_us = 0;
    r->body_len = 0;
    r->body[0] = '\0';
    r->body_too_big = false;
    r->body_max = l->opts.body_max;
    r->errbuf[0] = '\0';

    w = snprintf(url, sizeof(url), "%s%s", ep->url_prefix, c->path);
    if (w < 0 || (size_t)w >= sizeof(url))
        return FO_EINVAL; /* checked by the caller already */
    remain_ms = deadline_us > start ? (deadline_us - start + 999) / 1000 : 1;
    conn_ms = l->opts.connect_timeout_ms < remain_ms ? l->opts.connect_timeout_ms : remain_ms;

    curl_easy_reset(e); /* keeps the connection cache, DNS cache and TLS sessions */
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_PROXY, ""); /* never through a proxy named by the environment */
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)conn_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)remain_ms);
    SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SETOPT(CURLOPT_LOW_SPEED_TIME, 30L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TCP_NODELAY, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, r);
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, r);
    if (c->method == FO_POST) {
        if (c->content_type != NULL) {
            w = snprintf(ctype, sizeof(ctype), "Content-Type: %s", c->content_type);
            if (w < 0 || (size_t)w >= sizeof(ctype)) {
                rc = FO_EINVAL;
                goto out;
            }
            hdrs = curl_slist_append(NULL, "Expect:");
            if (hdrs == NULL)
                goto nomem;
            tmp = curl_slist_append(hdrs, ctype);
            if (tmp == NULL)
                goto nomem;
            hdrs = tmp;
        }
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDS, c->body_len > 0 ? c->body : "");
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
        SETOPT(CURLOPT_HTTPHEADER, hdrs != NULL ? hdrs : r->hdr_form);
    } else {
        SETOPT(CURLOPT_HTTPGET, 1L);
        SETOPT(CURLOPT_HTTPHEADER, r->hdr_get);
    }
    if (c->idem == FO_NON_IDEMPOTENT) {
        /* libcurl re-sends a request silently when a reused connection turns out dead. */
        SETOPT(CURLOPT_FRESH_CONNECT, 1L);
        SETOPT(CURLOPT_FORBID_REUSE, 1L);
    }
    if (l->opts.tls) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (l->cert_file != NULL) {
            SETOPT(CURLOPT_SSLCERT, l->cert_file);
            SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
            SETOPT(CURLOPT_SSLKEY, l->key_file != NULL ? l->key_file : l->cert_file);
            SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        }
        if (l->ca_file != NULL)
            SETOPT(CURLOPT_CAINFO, l->ca_file);
        if (l->ciphers != NULL)
            SETOPT(CURLOPT_SSL_CIPHER_LIST, l->ciphers);
    }
    if (ep->connect_to[0] != '\0') {
        cto = curl_slist_append(NULL, ep->connect_to);
        if (cto == NULL)
            goto nomem;
        SETOPT(CURLOPT_CONNECT_TO, cto);
    }

    if (l->resolve != NULL)
        SETOPT(CURLOPT_RESOLVE, l->resolve);
    ao->cc = run_transfer(r, deadline_us, (uint64_t)l->opts.response_timeout_ms * 1000u);
    if (ao->cc == CURLE_OK)
        (void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &ao->status);
    ao->delivered = r->sent;
    ao->fail = classify(ao->cc, r->sent, ao->status, r->body_too_big, r->errbuf);
    if (ao->cc == CURLE_FAILED_INIT && !r->sent) {
        rc = FO_EINTERNAL;
        goto out;
    }
    if (ao->fail == FO_FAIL_TLS)
        ao->delivered = false; /* see classify(): the handshake was refused */
    if (ao->fail == FO_FAIL_BAD_RESPONSE && r->body_too_big)
        snprintf(r->errbuf, sizeof(r->errbuf), "answer larger than %zu bytes", r->body_max);
    goto out;
nomem:
    rc = FO_ENOMEM;
    goto out;
setup_failed:
    rc = FO_EINTERNAL;
out:
    ao->elapsed_us = fo_mono_us() - start;
    /* Options point at these lists and at stack buffers: drop them before returning. */
    (void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    (void)curl_easy_setopt(e, CURLOPT_CONNECT_TO, NULL);
    (void)curl_easy_setopt(e, CURLOPT_RESOLVE, NULL);
    (void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(cto);
    return rc;
}

/* ---- the walk --------------------------------------------------------------------------- */

static void
record(struct fo_req *r, size_t i, enum fo_fail fail, const struct attempt_out *ao,
       const char *detail)
{
    struct fo_attempt *a;

    if (r->natt >= FO_MAX_RECORDS)
        return;
    a = &r->att[r->natt];
    memset(a, 0, sizeof(*a));
    a->endpoint = (int)i;
    a->fail = fail;
    if (ao != NULL) {
        a->delivered = ao->delivered;
        a->http_status = ao->status;
        a->curl_code = (int)ao->cc;
        a->elapsed_us = ao->elapsed_us > UINT32_MAX ? UINT32_MAX : (uint32_t)ao->elapsed_us;
    }
    (void)snprintf(r->detail[r->natt], FO_DETAIL_MAX, "%s", detail != NULL ? detail : "");
    r->natt++;
}

/* Appends "; " + text to the message under construction. */
static void
msg_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
msg_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*len >= cap - 1)
        return;
    va_start(ap, fmt);
    w = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    *len += (size_t)w < cap - *len ? (size_t)w : cap - *len - 1;
}

/* Describes the attempts ("ep: refused after 0 ms (detail); ...") into buf. */
static void
describe_attempts(const struct fo_req *r, const struct fo_list *l, char *buf, size_t cap,
                  size_t *len)
{
    for (size_t k = 0; k < r->natt; k++) {
        const struct fo_attempt *a = &r->att[k];
        const char *sep = k > 0 ? "; " : "";
        const char *ep = l->ep[a->endpoint].name;

        if (a->fail == FO_FAIL_NONE || a->fail == FO_FAIL_HTTP_5XX ||
            a->fail == FO_FAIL_HTTP_4XX || a->fail == FO_FAIL_APP)
            msg_add(buf, cap, len, "%s%s: HTTP %ld%s%s after %u ms", sep, ep, a->http_status,
                    a->fail == FO_FAIL_APP ? " " : "",
                    a->fail == FO_FAIL_APP ? r->detail[k] : "", a->elapsed_us / 1000u);
        else if (a->fail == FO_FAIL_SKIPPED || a->fail == FO_FAIL_DEADLINE)
            msg_add(buf, cap, len, "%s%s: %s", sep, ep, r->detail[k]);
        else
            msg_add(buf, cap, len, "%s%s: %s after %u ms%s%s%s", sep, ep,
                    fo_fail_name(a->fail), a->elapsed_us / 1000u,
                    r->detail[k][0] != '\0' ? " (" : "", r->detail[k],
                    r->detail[k][0] != '\0' ? ")" : "");
    }
}

static bool
valid_path(const char *p)
{
    if (p == NULL || p[0] != '/' || strlen(p) > FO_URL_MAX - FO_URL_PREFIX_MAX - 1)
        return false;
    for (; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;

        if (ch <= 0x20 || ch >= 0x7f) /* no blanks, CR/LF or controls: they would split lines */
            return false;
    }
    return true;
}

static const char *
what_next(enum fo_rc rc)
{
    switch (rc) {
    case FO_EUNKNOWN:
        return "the call has side effects: check on that clone whether it was done, then "
               "reconcile";
    case FO_EAUTH:
        return "check the client certificate and its registration on the subsystem";
    case FO_EREJECTED:
        return "the clone refused the request; check the request and the subsystem logs";
    case FO_EPROTO:
        return "check that the endpoints are the right subsystem and path";
    default:
        return "check the instances";
    }
}

enum fo_rc
fo_req_perform(struct fo_req *r, struct fo_list *l, const struct fo_call *c)
{
    size_t order[FO_MAX_ENDPOINTS], start, tried = 0, max;
    uint64_t t0, deadline_us;
    unsigned dl;
    enum fo_rc rc = FO_EUNAVAILABLE, fatal;
    bool done = false, delivered_before = false;
    int served = -1, first_tried = -1, last_delivered = -1;
    long served_status = 0;
    const char *cname;
    size_t mlen = 0;

    if (r == NULL)
        return FO_EINVAL;
    r->natt = 0;
    r->status = 0;
    r->endpoint = -1;
    r->list = l;
    r->resent = false;
    r->errmsg[0] = '\0';
    r->body_len = 0;
    r->body[0] = '\0';
    if (l == NULL || c == NULL || !valid_path(c->path) ||
        (c->body == NULL && c->body_len > 0) ||
        (c->method != FO_POST && c->method != FO_GET) ||
        (c->idem != FO_IDEMPOTENT && c->idem != FO_CONDITIONAL &&
         c->idem != FO_NON_IDEMPOTENT) ||
        (c->content_type != NULL && strpbrk(c->content_type, "\r\n") != NULL)) {
        (void)snprintf(r->errmsg, sizeof(r->errmsg),
                       "invalid call: need a list, a path starting with '/' without blanks or "
                       "controls, a known method and idempotency class");
        return FO_EINVAL;
    }
    cname = c->name != NULL ? c->name : c->path;
    dl = c->deadline_ms != 0 ? c->deadline_ms : l->opts.deadline_ms;
    t0 = fo_mono_us();
    deadline_us = t0 + (uint64_t)dl * 1000u;
    atomic_fetch_add_explicit(&l->calls, 1, memory_order_relaxed);

    start = fo_health_start(l);
    for (size_t k = 0; k < l->n; k++)
        order[k] = (start + k) % l->n;
    max = l->opts.max_attempts != 0 && l->opts.max_attempts < l->n ? l->opts.max_attempts : l->n;

    /* First pass in order; if every endpoint was skipped, one forced attempt on the endpoint
     * whose backoff ends first rather than failing at once. */
    for (size_t k = 0; k <= l->n && !done && tried < max; k++) {
        struct attempt_out ao;
        uint64_t remaining_open;
        size_t i = order[k < l->n ? k : 0];
        char det[FO_DETAIL_MAX];
        bool probe = false;

        if (k == l->n && tried > 0)
            break; /* the forced attempt is only for calls that found everything open */
        if (fo_mono_us() + 1000 > deadline_us) {
            (void)snprintf(det, sizeof(det), "not tried: deadline of %u ms reached", dl);
            record(r, i, FO_FAIL_DEADLINE, NULL, det);
            fo_health_report(l, i, FO_FAIL_DEADLINE, 0, false);
            break;
        }
        if (k < l->n) {
            enum fo_admit adm = fo_health_admit(l, i, c->idem, &remaining_open);

            probe = adm == FO_ADMIT_PROBE;
            if (adm == FO_ADMIT_NO) {
                if (remaining_open > 0)
                    (void)snprintf(det, sizeof(det), "skipped: breaker open, %llu ms left",
                                   (unsigned long long)remaining_open);
                else
                    (void)snprintf(det, sizeof(det), "skipped: breaker open, probe %s",
                                   c->idem == FO_IDEMPOTENT ? "under way"
                                                            : "left to idempotent calls");
                record(r, i, FO_FAIL_SKIPPED, NULL, det);
                fo_health_report(l, i, FO_FAIL_SKIPPED, 0, false);
                continue;
            }
        } else {
            int f = fo_health_pick_forced(l, order, l->n);

            if (f < 0)
                break;
            i = (size_t)f;
            probe = true;
        }
        if (!fo_slot_acquire(l, i, deadline_us)) {
            (void)snprintf(det, sizeof(det),
                           "not tried: all %u slots busy until the deadline of %u ms",
                           l->opts.max_inflight, dl);
            record(r, i, FO_FAIL_DEADLINE, NULL, det);
            fo_health_report(l, i, FO_FAIL_DEADLINE, 0, false);
            if (probe)
                fo_health_release(l, i);
            break;
        }
        if (first_tried < 0)
            first_tried = (int)i;
        fatal = attempt(r, l, i, c, deadline_us, &ao);
        fo_slot_release(l, i);
        if (fatal != FO_OK) {
            /* Local failure before anything left: release a probe and stop. */
            if (probe)
                fo_health_release(l, i);
            rc = fatal;
            served = -1;
            (void)snprintf(r->errmsg, sizeof(r->errmsg),
                           "%s: %s: could not set up the call to %s: %s", l->name, cname,
                           l->ep[i].name, fo_strerror(fatal));
            goto finish;
        }
        tried++;
        if (ao.delivered && delivered_before) {
            r->resent = true; /* a second clone may have received it too */
            atomic_fetch_add_explicit(&l->resends, 1, memory_order_relaxed);
        }
        if (ao.delivered) {
            delivered_before = true;
            last_delivered = (int)i;
        }

        det[0] = '\0';
        if (ao.fail == FO_FAIL_NONE && c->check != NULL) {
            enum fo_verdict v = c->check(c->check_arg, ao.status, r->body, r->body_len);

            switch (v) {
            case FO_VERDICT_ACCEPT:
                break;
            case FO_VERDICT_REJECT:
            case FO_VERDICT_AUTH:
            case FO_VERDICT_RETRY:
                ao.fail = FO_FAIL_APP;
                (void)snprintf(det, sizeof(det), "%s",
                               v == FO_VERDICT_AUTH     ? "(authorisation refused)"
                               : v == FO_VERDICT_RETRY ? "(clone-local error)"
                                                       : "(application error)");
                break;
            case FO_VERDICT_BAD:
            default:
                ao.fail = FO_FAIL_BAD_RESPONSE;
                (void)snprintf(det, sizeof(det), "unparsable answer");
                v = FO_VERDICT_BAD;
                break;
            }
            if (ao.fail == FO_FAIL_APP) {
                served = (int)i;
                served_status = ao.status;
                rc = v == FO_VERDICT_AUTH ? FO_EAUTH : FO_EREJECTED;
                /* RETRY: the next clone may do better, if the call may be resent. */
                done = v != FO_VERDICT_RETRY || c->idem == FO_NON_IDEMPOTENT;
            }
        } else if (ao.fail != FO_FAIL_NONE && r->errbuf[0] != '\0') {
            (void)snprintf(det, sizeof(det), "%.150s", r->errbuf);
        }
        record(r, i, ao.fail, &ao, det);
        fo_health_report(l, i, ao.fail, ao.elapsed_us, probe);

        fo_logf(l, ao.fail == FO_FAIL_NONE ? FO_LOG_DEBUG : FO_LOG_WARN,
                "fo.attempt list=%s ep=%s call=%s req=%s attempt=%zu idem=%d result=\"%s\" "
                "http=%ld delivered=%d curl=%d ms=%.1f",
                l->name, l->ep[i].name, cname, c->req_id != NULL ? c->req_id : "-", tried,
                (int)c->idem, fo_fail_name(ao.fail), ao.status, ao.delivered ? 1 : 0,
                (int)ao.cc, (double)ao.elapsed_us / 1000.0);

        switch (ao.fail) {
        case FO_FAIL_NONE:
            rc = FO_OK;
            served = (int)i;
            served_status = ao.status;
            done = true;
            break;
        case FO_FAIL_HTTP_4XX:
            rc = (ao.status == 401 || ao.status == 403) ? FO_EAUTH : FO_EREJECTED;
            served = (int)i;
            served_status = ao.status;
            done = true;
            break;
        case FO_FAIL_APP:
            break; /* decided above */
        case FO_FAIL_REFUSED:
        case FO_FAIL_CONNECT_TIMEOUT:
        case FO_FAIL_TLS:
            if (!ao.delivered) {
                rc = FO_EUNAVAILABLE;
                break; /* certainly not received: next clone, whatever the class */
            }
            __attribute__((fallthrough));
        case FO_FAIL_TIMEOUT:
        case FO_FAIL_RESET:
        case FO_FAIL_HTTP_5XX:
        case FO_FAIL_BAD_RESPONSE:
            if (c->idem == FO_NON_IDEMPOTENT) {
                /* possibly received; never resent, to any clone. A 404 means the path
                 * is not served there: nothing can have been done. */
                rc = ao.status == 404 ? FO_EREJECTED : FO_EUNKNOWN;
                served = (int)i;
                served_status = ao.status;
                done = true;
            } else {
                rc = ao.fail == FO_FAIL_BAD_RESPONSE ? FO_EPROTO : FO_EUNAVAILABLE;
                served = -1;
            }
            break;
        case FO_FAIL_SKIPPED:
        case FO_FAIL_DEADLINE:
            break;
        }
    }

    if ((rc == FO_EUNAVAILABLE || rc == FO_EPROTO) && c->idem == FO_CONDITIONAL &&
        last_delivered >= 0) {
        /* A clone may have acted on the call (a revoke may be done): the caller reconciles. */
        rc = FO_EUNKNOWN;
        served = last_delivered;
        served_status = 0;
    }
finish:
    if (rc == FO_EUNAVAILABLE || rc == FO_EPROTO)
        served = -1;
    r->endpoint = served;
    if (served >= 0) {
        r->status = served_status;
        if (rc == FO_OK) {
            fo_health_served(l, (size_t)served);
            if (first_tried >= 0 && served != first_tried)
                atomic_fetch_add_explicit(&l->failovers, 1, memory_order_relaxed);
        }
    }
    if (rc != FO_OK) {
        if (r->natt > 0 && r->att[r->natt - 1].fail != FO_FAIL_NONE &&
            r->att[r->natt - 1].http_status == 0) {
            r->body_len = 0; /* a partial body of a failed attempt is not an answer */
            r->body[0] = '\0';
        }
        if (r->errmsg[0] == '\0') {
            size_t cap = sizeof(r->errmsg);

            if (rc == FO_EUNKNOWN)
                msg_add(r->errmsg, cap, &mlen,
                        "%s: %s: outcome unknown: %s may have received the request (", l->name,
                        cname, l->ep[served].name);
            else if (rc == FO_EUNAVAILABLE)
                msg_add(r->errmsg, cap, &mlen, "%s: %s: all %zu clones failed within %u ms (",
                        l->name, cname, l->n, dl);
            else
                msg_add(r->errmsg, cap, &mlen, "%s: %s: %s (", l->name, cname, fo_strerror(rc));
            describe_attempts(r, l, r->errmsg, cap, &mlen);
            msg_add(r->errmsg, cap, &mlen, "); %s", what_next(rc));
        }
        fo_logf(l, rc == FO_EUNKNOWN ? FO_LOG_ERROR : FO_LOG_WARN,
                "fo.call list=%s call=%s req=%s rc=\"%s\" ms=%.1f err=\"%s\"", l->name, cname,
                c->req_id != NULL ? c->req_id : "-", fo_strerror(rc),
                (double)(fo_mono_us() - t0) / 1000.0, r->errmsg);
    }
    if ((unsigned)rc < FO_RC_COUNT)
        atomic_fetch_add_explicit(&l->outcomes[rc], 1, memory_order_relaxed);
    return rc;
}

/* ---- results ---------------------------------------------------------------------------- */

long
fo_req_status(const struct fo_req *r)
{
    return r != NULL ? r->status : 0;
}

const uint8_t *
fo_req_body(const struct fo_req *r, size_t *len)
{
    static const uint8_t empty[1] = {0};

    if (r == NULL) {
        if (len != NULL)
            *len = 0;
        return empty;
    }
    if (len != NULL)
        *len = r->body_len;
    return r->body;
}

int
fo_req_endpoint(const struct fo_req *r)
{
    return r != NULL ? r->endpoint : -1;
}

const char *
fo_req_endpoint_name(const struct fo_req *r)
{
    if (r == NULL || r->endpoint < 0 || r->list == NULL)
        return NULL;
    return fo_list_endpoint(r->list, (size_t)r->endpoint);
}

bool
fo_req_resent(const struct fo_req *r)
{
    return r != NULL && r->resent;
}

const char *
fo_req_errmsg(const struct fo_req *r)
{
    return r != NULL ? r->errmsg : "no request handle";
}

size_t
fo_req_attempt_count(const struct fo_req *r)
{
    return r != NULL ? r->natt : 0;
}

const struct fo_attempt *
fo_req_attempt(const struct fo_req *r, size_t i)
{
    if (r == NULL || i >= r->natt)
        return NULL;
    return &r->att[i];
}

const char *
fo_req_attempt_detail(const struct fo_req *r, size_t i)
{
    if (r == NULL || i >= r->natt)
        return "";
    return r->detail[i];
}
