/* libfailover/include/libfailover/failover.h - failover lists to Dogtag CA, KRA and TKS clones:
 * ordered endpoints, per-endpoint breaker, deadlines, idempotency-aware retry, counters.
 *
 * The only public header of libfailover. Depends on libc, pthreads and libcurl (linked, never
 * exposed here). The model (see docs/libfailover.md and libfailover(3)):
 *
 *   struct fo_list  one connector's clones ("host:port host:port", Dogtag syntax), parsed once,
 *                   with shared health (breaker per endpoint) and counters. Thread-safe: any
 *                   number of threads may call through one list at the same time.
 *   struct fo_req   one thread's call handle: holds the libcurl handle (and so the reusable
 *                   connections), the last answer, the per-attempt records and the error
 *                   message. Use it from one thread at a time; reuse it for every call.
 *   struct fo_call  what to send: method, path, body, idempotency class, deadline.
 *
 * A call walks the endpoints in the list's order, skipping those whose breaker is open, and
 * moves to the next one only when that is safe: always when the request was certainly not
 * delivered (refused, connect timeout, TLS failure), and after possible delivery only for
 * FO_IDEMPOTENT and FO_CONDITIONAL calls. No call ever waits longer than its deadline.
 */
#ifndef LIBFAILOVER_FAILOVER_H
#define LIBFAILOVER_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FO_API __attribute__((visibility("default")))
#else
#define FO_API
#endif

struct fo_list; /* opaque: a connector's endpoints, health and counters */
struct fo_req;  /* opaque: one thread's call handle */
struct fo_pod;  /* opaque: lists of co-located clones that fail over together */

/* Hard limits (part of the ABI). */
#define FO_MAX_ENDPOINTS 32  /* endpoints in one list */
#define FO_HOST_MAX 256      /* host name or address, with NUL */
#define FO_ENDPOINT_MAX 272  /* "host:port" / "[v6]:port", with NUL */
#define FO_ERRMSG_MAX 1024   /* fo_req_errmsg() text, with NUL */
#define FO_LAT_BUCKETS 14    /* latency histogram buckets, see fo_lat_bucket_ms() */

/* Result of every function; for fo_req_perform() it is also the outcome class of the call. */
enum fo_rc {
    FO_OK = 0,
    FO_EINVAL = 1,       /* bad argument, list syntax or option: fix the caller/config */
    FO_ENOMEM = 2,       /* allocation failed */
    FO_EUNAVAILABLE = 3, /* UNAVAILABLE: no clone served the call; none acted on it (an
                          * idempotent call may have reached one: it has no side effect) */
    FO_EUNKNOWN = 4,     /* OUTCOME_UNKNOWN: a call with side effects may have been received by
                          * the endpoint fo_req_endpoint() names and no clone confirmed it:
                          * a non-idempotent call (never resent), or a conditional call whose
                          * resends all failed. Check on that clone, reconcile */
    FO_EREJECTED = 5,    /* REJECTED: a clone answered and refused (HTTP 4xx other than
                          * 401/403/404, or the check callback said FO_VERDICT_REJECT) */
    FO_EAUTH = 6,        /* AUTH: HTTP 401/403 or the check callback said FO_VERDICT_AUTH */
    FO_EPROTO = 7,       /* PROTOCOL: the answer was unparsable, truncated or too big (idempotent
                          * calls only; for non-idempotent calls this is FO_EUNKNOWN) */
    FO_EINTERNAL = 8,    /* libcurl could not be set up (out of memory, unsupported option) */
    /* append only: the numbers are ABI */
};
#define FO_RC_COUNT 9

/* Returns a static, never-NULL description of rc ("unavailable", ...). Thread-safe. */
FO_API const char *fo_strerror(enum fo_rc rc);

/* Idempotency of a call (backends-and-failover.md §6). */
enum fo_idem {
    FO_IDEMPOTENT = 0,     /* no side effect (TKS calls, getcert, key recovery): may be resent
                            * to another clone after possible delivery */
    FO_CONDITIONAL = 1,    /* side effect the caller can reconcile (revoke, unrevoke): may be
                            * resent; fo_req_resent() tells the caller to reconcile */
    FO_NON_IDEMPOTENT = 2, /* new object every time (enrollment, renewal, keygen with archive):
                            * moved to another clone only if certainly never received; sent on a
                            * fresh connection that is closed afterwards (no libcurl re-send) */
};

/* Why one attempt failed. Classes marked "not delivered" are certain the clone never
 * received the request. */
enum fo_fail {
    FO_FAIL_NONE = 0,            /* answered (see the attempt's HTTP status) */
    FO_FAIL_REFUSED = 1,         /* TCP refused/unreachable, DNS failure: not delivered */
    FO_FAIL_CONNECT_TIMEOUT = 2, /* timed out before the request was sent (TCP or TLS
                                  * handshake stalled): not delivered */
    FO_FAIL_TLS = 3,             /* TLS handshake or certificate verification: not delivered */
    FO_FAIL_TIMEOUT = 4,         /* timed out after the request was (possibly) sent */
    FO_FAIL_RESET = 5,           /* connection closed/reset after the request was (possibly)
                                  * sent, before a complete answer */
    FO_FAIL_HTTP_5XX = 6,        /* HTTP 5xx or 404: the clone is not serving this path */
    FO_FAIL_BAD_RESPONSE = 7,    /* unparsable, truncated, too big, 1xx/3xx, or the check
                                  * callback said FO_VERDICT_BAD */
    FO_FAIL_HTTP_4XX = 8,        /* other HTTP 4xx (401/403: auth): final, not a clone failure */
    FO_FAIL_APP = 9,             /* the check callback refused the answer (REJECT/AUTH/RETRY) */
    FO_FAIL_SKIPPED = 10,        /* not tried: breaker open, or probe already under way */
    FO_FAIL_DEADLINE = 11,       /* not tried: the call's deadline passed (also while waiting
                                  * for a free slot, see max_inflight) */
    /* append only */
};
#define FO_FAIL_COUNT 12

/* Returns a static, never-NULL short name of f ("refused", "timed out after send", ...). */
FO_API const char *fo_fail_name(enum fo_fail f);

/* Breaker state of an endpoint. */
enum fo_breaker {
    FO_BREAKER_CLOSED = 0,    /* healthy: used in order */
    FO_BREAKER_OPEN = 1,      /* failed: skipped until its backoff ends */
    FO_BREAKER_HALF_OPEN = 2, /* backoff ended: one idempotent probe is admitted */
};
FO_API const char *fo_breaker_name(enum fo_breaker b); /* "closed", "open", "half-open" */

enum fo_policy {
    FO_POLICY_PRIORITY = 0, /* every call starts at the first healthy endpoint (default) */
    FO_POLICY_STICKY = 1,   /* every call starts at the endpoint that last served (C++ TPS) */
    FO_POLICY_POD = 2,      /* sticky, with one index shared by every list of opts.pod: when
                             * the CA moves to clone 2, the KRA and TKS lists start at their
                             * clone 2 too (Dogtag failover.pod.enable, R-2) */
};

/* Log levels of fo_log_fn, most severe first. */
enum fo_log_level {
    FO_LOG_ERROR = 0,
    FO_LOG_WARN = 1,
    FO_LOG_NOTICE = 2,
    FO_LOG_INFO = 3,
    FO_LOG_DEBUG = 4,
};

/* Receives one log line ("fo.attempt list=tks1 ep=tks2:8443 call=computeSessionKey ... "),
 * without time stamp or newline; the line is borrowed for the duration of the call. Called
 * from the calling thread of fo_req_perform() with no library lock held; must be thread-safe
 * if the list is shared. Bodies are never logged. */
typedef void fo_log_fn(void *arg, enum fo_log_level level, const char *line);

/* Returns a monotonic time in milliseconds. Used for the breaker (backoff, half-open); tests
 * inject one to move time forward. Deadlines always use the real CLOCK_MONOTONIC, since
 * libcurl waits in real time. Must be thread-safe. */
typedef uint64_t fo_clock_fn(void *arg);

/* Options of a list. Initialise with fo_opts_init() (defaults of backends-and-failover.md
 * §9), then set fields. Strings are borrowed during fo_list_new(), which copies them. */
struct fo_opts {
    const char *name;             /* connector id for logs and messages ("tks1"); default "fo" */
    enum fo_policy policy;        /* default FO_POLICY_PRIORITY */
    unsigned connect_timeout_ms;  /* per attempt: TCP + TLS handshake; default 5000 */
    unsigned response_timeout_ms; /* per attempt, from the moment the request starts going out
                                   * until the answer is complete; 0 (default) = until the
                                   * deadline */
    unsigned deadline_ms;         /* default per-call deadline over all attempts; default 30000 */
    unsigned max_attempts;        /* endpoints tried per call; 0 (default) = all */
    unsigned fail_threshold;      /* consecutive failures that open the breaker; default 2 */
    unsigned refuse_threshold;    /* same for connection refusals; default 1 */
    unsigned backoff_min_ms;      /* first open period; default 5000 */
    unsigned backoff_max_ms;      /* doubled per failed probe up to this; default 300000 */
    unsigned jitter_pct;          /* +/- random jitter of each open period; default 20 */
    bool tls;                     /* https (default true); false = plain http, for tests */
    const char *cert_file;        /* client certificate, PEM; NULL = none */
    const char *key_file;         /* its private key, PEM; NULL = in cert_file */
    const char *ca_file;          /* CA bundle to verify clones; NULL = system default */
    const char *ciphers;          /* OpenSSL cipher list (Dogtag clientCiphers); NULL = default */
    const char *verify_name;      /* TLS name expected of every endpoint; NULL = its own host */
    size_t body_max;              /* cap on an answer's body; default 1 MiB */
    unsigned max_inflight;        /* attempts under way at once per endpoint; a call
                                   * waits for a slot, at most until its deadline; default 15,
                                   * 0 = no limit */
    struct fo_pod *pod;           /* FO_POLICY_POD: the pod (borrowed, must outlive the list);
                                   * every list of a pod has the same number of endpoints */
    const char *const *resolve;   /* NULL-terminated "host:port:address" entries that replace
                                   * DNS for those names (libcurl CURLOPT_RESOLVE; tests, pinned
                                   * addresses); copied. NULL = DNS */
    fo_log_fn *log;               /* NULL: no logging */
    void *log_arg;
    enum fo_log_level log_level;  /* lines above this level are not even formatted; default
                                   * FO_LOG_INFO */
    fo_clock_fn *clock;           /* NULL: CLOCK_MONOTONIC */
    void *clock_arg;
    uint64_t seed;                /* jitter seed; 0 = from time and address */
};

/* Fills *o with the defaults. Never fails. */
FO_API void fo_opts_init(struct fo_opts *o);

/* Creates a pod for FO_POLICY_POD. out: *out, owned by the caller; free it with fo_pod_free()
 * after every list using it. FO_OK or FO_ENOMEM. The pod is thread-safe. */
FO_API enum fo_rc fo_pod_new(struct fo_pod **out);
/* Frees the pod. NULL does nothing. */
FO_API void fo_pod_free(struct fo_pod *p);

/* Initialises libcurl (curl_global_init) once; call it from the main thread before other
 * threads start. fo_list_new() calls it too, which is safe with libcurl >= 7.84. */
FO_API enum fo_rc fo_global_init(void);
/* Releases libcurl's global state; call once at exit, after every list and req is freed. */
FO_API void fo_global_cleanup(void);

/* Checks a Dogtag endpoint list: host:port tokens separated by blanks or commas, IPv6 as
 * [addr]:port, ports 1..65535, at most FO_MAX_ENDPOINTS. in: spec. out: *count (may be NULL)
 * = number of endpoints; err (may be NULL) receives a message naming the bad token.
 * FO_OK or FO_EINVAL. Thread-safe, allocates nothing. */
FO_API enum fo_rc fo_list_check(const char *spec, size_t *count, char *err, size_t errlen);

/* Creates a list from spec (syntax of fo_list_check) and opts (NULL = defaults).
 * out: *out, owned by the caller, freed with fo_list_free() after every fo_req_perform() on it
 * has returned. err/errlen as for fo_list_check. FO_OK, FO_EINVAL, FO_ENOMEM, FO_EINTERNAL.
 * Not thread-safe itself; the resulting list is. */
FO_API enum fo_rc fo_list_new(const char *spec, const struct fo_opts *opts, struct fo_list **out,
                              char *err, size_t errlen);
/* Frees the list. NULL does nothing. */
FO_API void fo_list_free(struct fo_list *l);

/* Number of endpoints (>= 1). Thread-safe. */
FO_API size_t fo_list_count(const struct fo_list *l);
/* "host:port" of endpoint i (IPv6 in brackets), borrowed until fo_list_free(); NULL if i is out
 * of range. Thread-safe. */
FO_API const char *fo_list_endpoint(const struct fo_list *l, size_t i);
/* The list's name (opts.name), borrowed until fo_list_free(). */
FO_API const char *fo_list_name(const struct fo_list *l);

/* Counters of one endpoint; a consistent-enough snapshot (each field atomic). */
struct fo_ep_stats {
    char endpoint[FO_ENDPOINT_MAX];
    enum fo_breaker breaker;
    uint64_t open_remaining_ms;           /* when OPEN: time until a probe is admitted */
    uint64_t consecutive_failures;
    uint64_t requests;                    /* attempts actually made */
    uint64_t successes;                   /* attempts answered (2xx, 4xx) */
    uint64_t failures[FO_FAIL_COUNT];     /* attempts by class (FO_FAIL_SKIPPED: skips) */
    uint64_t breaker_opens;               /* transitions to OPEN */
    uint64_t breaker_closes;              /* OPEN/HALF_OPEN to CLOSED */
    uint64_t inflight;                    /* attempts under way now */
    uint64_t latency_sum_us;              /* over every attempt made */
    uint64_t latency_hist[FO_LAT_BUCKETS]; /* attempts by duration, see fo_lat_bucket_ms() */
    uint64_t slot_waits;                  /* attempts that waited for a free slot */
    uint64_t slot_wait_us;                /* total time spent waiting */
};

/* Counters of the whole list. */
struct fo_list_stats {
    uint64_t calls;                  /* fo_req_perform() calls */
    uint64_t outcomes[FO_RC_COUNT];  /* calls by result */
    uint64_t failovers;              /* calls served by another endpoint than the first tried */
    uint64_t resends;                /* attempts after possible delivery (idempotent or
                                      * conditional calls resent to another clone) */
};

/* Copies endpoint i's counters to *out. FO_OK, or FO_EINVAL if i is out of range. Thread-safe. */
FO_API enum fo_rc fo_list_ep_stats(const struct fo_list *l, size_t i, struct fo_ep_stats *out);
/* Copies the list's counters to *out. Thread-safe. */
FO_API void fo_list_stats(const struct fo_list *l, struct fo_list_stats *out);
/* Upper bound in ms of histogram bucket b (attempts lasting <= that); the last bucket is
 * open-ended and returns UINT32_MAX. Bounds: 1 2 5 10 20 50 100 200 500 1000 2000 5000 10000. */
FO_API uint32_t fo_lat_bucket_ms(unsigned b);

/* What a check callback decides about a 2xx answer (the application layer: Dogtag `status=`,
 * `unauthorized=`, XML Status). */
enum fo_verdict {
    FO_VERDICT_ACCEPT = 0, /* the call succeeded: FO_OK */
    FO_VERDICT_REJECT = 1, /* final application error: FO_EREJECTED, no failover */
    FO_VERDICT_AUTH = 2,   /* final authorisation error: FO_EAUTH, no failover */
    FO_VERDICT_RETRY = 3,  /* clone-local error (e.g. TKS status 1/2/6 with
                            * failoverOnTksStatus): next clone if the call may be resent,
                            * else FO_EREJECTED. Does not count against the clone's health */
    FO_VERDICT_BAD = 4,    /* unparsable answer: like FO_FAIL_BAD_RESPONSE */
};
/* Called on the calling thread with the HTTP status and the body (borrowed for the call). */
typedef enum fo_verdict fo_check_fn(void *arg, long http_status, const uint8_t *body, size_t len);

enum fo_method {
    FO_POST = 0,
    FO_GET = 1,
};

/* One call. Strings and body are borrowed for the duration of fo_req_perform(). */
struct fo_call {
    enum fo_method method;    /* FO_POST (Dogtag uses POST for everything) */
    const char *path;         /* "/tks/agent/tks/computeSessionKey": must start with '/' */
    const void *body;         /* POST body; may be NULL with body_len 0 */
    size_t body_len;
    const char *content_type; /* NULL: application/x-www-form-urlencoded */
    enum fo_idem idem;        /* retry safety, see enum fo_idem */
    unsigned deadline_ms;     /* 0: the list's deadline_ms. The call returns within it */
    const char *name;         /* call name for logs ("enrollment"); NULL = path */
    const char *req_id;       /* request id for logs (session id); NULL = none */
    fo_check_fn *check;       /* NULL: every 2xx is success */
    void *check_arg;
};

/* Creates a call handle. out: *out, owned by the caller, freed with fo_req_free(). One thread
 * at a time may use it; it may call through any number of lists. FO_OK, FO_ENOMEM,
 * FO_EINTERNAL. */
FO_API enum fo_rc fo_req_new(struct fo_req **out);
/* Frees the handle and closes its connections. NULL does nothing. */
FO_API void fo_req_free(struct fo_req *r);

/* Performs call c through list l (see the model above). Blocks at most c->deadline_ms (or the
 * list's deadline). Returns the outcome class: FO_OK (a clone answered 2xx and the check
 * accepted it), FO_EUNAVAILABLE, FO_EUNKNOWN, FO_EREJECTED, FO_EAUTH, FO_EPROTO, or FO_EINVAL
 * (bad call: no attempt made), FO_ENOMEM, FO_EINTERNAL. The results below describe the last
 * call until the next one. Thread-safe with respect to l; r must not be used concurrently. */
FO_API enum fo_rc fo_req_perform(struct fo_req *r, struct fo_list *l, const struct fo_call *c);

/* HTTP status of the answer the call ended with (0 if none). */
FO_API long fo_req_status(const struct fo_req *r);
/* Body of that answer, borrowed until the next fo_req_perform()/fo_req_free(); NUL-terminated
 * for convenience (the NUL is not counted in *len). Never NULL ("" when empty). len may be
 * NULL. */
FO_API const uint8_t *fo_req_body(const struct fo_req *r, size_t *len);
/* Index in the list of the endpoint that answered (FO_OK, REJECTED, AUTH), or that may have
 * received the call (FO_EUNKNOWN); -1 otherwise. */
FO_API int fo_req_endpoint(const struct fo_req *r);
/* "host:port" of that endpoint, or NULL; borrowed until the list is freed. */
FO_API const char *fo_req_endpoint_name(const struct fo_req *r);
/* True if the last call was sent to more than one clone after possible delivery (only
 * FO_IDEMPOTENT and FO_CONDITIONAL calls): a FO_CONDITIONAL caller must reconcile. */
FO_API bool fo_req_resent(const struct fo_req *r);
/* Why the last call failed, naming the list, each endpoint and what to do; "" after FO_OK.
 * Never NULL; borrowed until the next call. */
FO_API const char *fo_req_errmsg(const struct fo_req *r);

/* One attempt (or skip) of the last call, in order. */
struct fo_attempt {
    int endpoint;         /* index in the list */
    enum fo_fail fail;    /* FO_FAIL_NONE: the clone answered with http_status */
    bool delivered;       /* the request may have reached the clone */
    long http_status;     /* 0 if no answer */
    int curl_code;        /* raw CURLcode (0 if none) */
    uint32_t elapsed_us;  /* duration of the attempt */
};
/* Number of attempt records of the last call (<= FO_MAX_ENDPOINTS + 1). */
FO_API size_t fo_req_attempt_count(const struct fo_req *r);
/* Record i, borrowed until the next call; NULL if i is out of range. */
FO_API const struct fo_attempt *fo_req_attempt(const struct fo_req *r, size_t i);
/* Detail text of record i (libcurl's message, "skipped: breaker open, 4200 ms left", ...);
 * never NULL ("" if none or out of range); borrowed until the next call. Never holds body
 * bytes. */
FO_API const char *fo_req_attempt_detail(const struct fo_req *r, size_t i);

#ifdef __cplusplus
}
#endif

#endif
