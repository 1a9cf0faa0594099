/* libfailover/src/internal.h - private types of libfailover: the list with its endpoints, their
 * breaker state and counters, and the functions list.c offers to req.c. */
#ifndef FO_INTERNAL_H
#define FO_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libfailover/failover.h>

struct curl_slist;

#define FO_URL_PREFIX_MAX (FO_ENDPOINT_MAX + 16) /* "https://" + endpoint */
#define FO_NAME_MAX 64

/* One clone. host/port/name are immutable after fo_list_new(); the breaker fields are guarded
 * by the list's lock; the counters are atomics. */
struct fo_ep {
    char host[FO_HOST_MAX];             /* without brackets */
    unsigned port;
    bool v6;                            /* host is an IPv6 literal (bracketed in URLs) */
    char name[FO_ENDPOINT_MAX];         /* "host:port" / "[v6]:port" */
    char url_prefix[FO_URL_PREFIX_MAX]; /* "https://host:port" (verify_name instead of host) */
    char connect_to[FO_HOST_MAX * 2 + 16]; /* "vname:port:host:port" when verify_name is set */

    enum fo_breaker state; /* guarded by l->lock */
    unsigned fails;        /* consecutive endpoint failures; guarded by l->lock */
    uint64_t open_until;   /* clock ms; guarded by l->lock */
    uint64_t backoff_ms;   /* current open period before jitter; guarded by l->lock */
    bool probing;          /* a half-open probe is under way; guarded by l->lock */
    unsigned busy;         /* attempts under way (R-9 slots); guarded by l->lock */

    _Atomic uint64_t requests;
    _Atomic uint64_t successes;
    _Atomic uint64_t failures[FO_FAIL_COUNT];
    _Atomic uint64_t opens;
    _Atomic uint64_t closes;
    _Atomic uint64_t slot_waits;
    _Atomic uint64_t slot_wait_us;
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t hist[FO_LAT_BUCKETS];
};

struct fo_list {
    char name[FO_NAME_MAX];
    struct fo_opts opts; /* string fields point at the copies below */
    char *cert_file, *key_file, *ca_file, *ciphers, *verify_name;
    size_t n;
    struct fo_ep ep[FO_MAX_ENDPOINTS];

    pthread_mutex_t lock;    /* "fo_list.lock": breaker fields, slots, sticky, rng */
    pthread_cond_t slot_cv;  /* signalled when a slot frees (CLOCK_MONOTONIC) */
    size_t sticky;           /* guarded by lock: where FO_POLICY_STICKY starts */
    uint64_t rng;            /* guarded by lock: jitter state */
    struct fo_pod *pod;      /* FO_POLICY_POD; borrowed */
    struct curl_slist *resolve; /* opts.resolve as libcurl wants it; immutable */

    _Atomic uint64_t calls;
    _Atomic uint64_t outcomes[FO_RC_COUNT];
    _Atomic uint64_t failovers;
    _Atomic uint64_t resends;
};

/* Lists whose clones fail over together (FO_POLICY_POD). */
struct fo_pod {
    pthread_mutex_t lock; /* "fo_pod.lock": n, index */
    size_t n;             /* endpoints per list; 0 until the first list joins */
    size_t index;         /* where every list of the pod starts */
};

/* What fo_health_admit() decided. */
enum fo_admit {
    FO_ADMIT_NO = 0,    /* skip: open, or a probe is under way */
    FO_ADMIT_YES = 1,   /* closed: use it */
    FO_ADMIT_PROBE = 2, /* half-open probe: this call tests the endpoint */
};

/* Parses spec into eps[0..*count) (eps may be NULL to only check). */
enum fo_rc fo_parse_list(const char *spec, struct fo_ep *eps, size_t *count, char *err,
                         size_t errlen);

/* Breaker clock of the list, ms. */
uint64_t fo_list_now(const struct fo_list *l);

/* Decides whether endpoint i may be tried by a call of class idem; a PROBE admission must be
 * followed by fo_health_report(). Thread-safe. */
enum fo_admit fo_health_admit(struct fo_list *l, size_t i, enum fo_idem idem,
                              uint64_t *open_remaining_ms);
/* Among the endpoints of order[0..n), the OPEN one whose backoff ends first, marked as being
 * probed; -1 if none. Thread-safe. */
int fo_health_pick_forced(struct fo_list *l, const size_t *order, size_t n);
/* Releases a probe admission of endpoint i that was not used (local setup failure): the
 * endpoint goes back to OPEN with its backoff already over. Thread-safe. */
void fo_health_release(struct fo_list *l, size_t i);
/* Records the outcome of an attempt on endpoint i (breaker + counters) and logs transitions.
 * probe: the attempt was admitted as a probe (FO_ADMIT_PROBE or forced); only a failed probe
 * doubles the backoff. Thread-safe; calls the log callback unlocked. */
void fo_health_report(struct fo_list *l, size_t i, enum fo_fail fail, uint64_t elapsed_us,
                      bool probe);
/* Takes one of endpoint i's max_inflight slots, waiting at most until deadline_us (real
 * monotonic µs). false: no slot before the deadline. Thread-safe. */
bool fo_slot_acquire(struct fo_list *l, size_t i, uint64_t deadline_us);
/* Gives the slot back. */
void fo_slot_release(struct fo_list *l, size_t i);
/* Notes that endpoint i served a call (FO_POLICY_STICKY). */
void fo_health_served(struct fo_list *l, size_t i);
/* First endpoint a call starts at. */
size_t fo_health_start(struct fo_list *l);

/* Formats and emits a log line if level is enabled. */
void fo_logf(const struct fo_list *l, enum fo_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Real monotonic time in microseconds. */
uint64_t fo_mono_us(void);

#endif
