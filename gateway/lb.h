/* gateway/lb.h - load-balancer awareness of tpsgw (tokendb-ha §3.5 "Gateway requirements"):
 * readiness from live probes of the token DB and of every backend connector, the HAProxy
 * agent-check port, the drain state, which peers may speak PROXY v2 / X-Forwarded-For, the
 * public (balancer) URL, and the Prometheus text exposition of /metrics. */
#ifndef TPS_LB_H
#define TPS_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "gateway/gwerr.h"

struct fo_list;
struct tps_config;
struct tps_lb;

/* Keys of this module (lb.*), validated with the other tables of gateway/config.c. */
extern const struct cmn_cfg_key tps_lb_cfg_keys[];

#define TPS_LB_MAX_NETS 32    /* entries of lb.trustedProxies */
#define TPS_LB_MAX_CHECKS 16  /* readiness checks (token DB + connectors) */
#define TPS_LB_MAX_LISTS 16   /* failover lists in /metrics */
#define TPS_LB_REASON_MAX 256 /* readiness reason text */

/* One trusted network: address and prefix length. */
struct tps_lb_net {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};

/* Parses a list of addresses or CIDR networks separated by blanks or commas ("127.0.0.1
 * 10.0.0.0/8 ::1 fd00::/8"). A bare address is a /32 or /128; host bits must be zero.
 * [out] nets[0..*n). TPS_OK, TPS_ECONFIG (why says which entry and why), TPS_ETOOBIG (more
 * than cap entries). An empty list gives *n = 0. Thread-safe. */
enum tps_rc tps_lb_nets_parse(const char *s, struct tps_lb_net *nets, size_t cap, size_t *n,
                              char *why, size_t whylen);
/* True when sa (AF_INET, AF_INET6; an IPv4-mapped IPv6 address counts as IPv4) lies in one of
 * nets. Thread-safe. */
bool tps_lb_nets_match(const struct tps_lb_net *nets, size_t n, const struct sockaddr *sa);

/* The client an X-Forwarded-For value names: the right-most entry (the one our balancer
 * appended; entries further left were written by the client and are not trusted). Accepts an
 * IPv4 or IPv6 address, optionally "[v6]:port" or "v4:port"; writes its text form into out.
 * TPS_OK, TPS_EBADREQ (empty or not an address). Thread-safe. */
enum tps_rc tps_lb_xff_client(const char *xff, char *out, size_t cap);

/* The agent-check answer (HAProxy 2.6 words, test-environment "agent traps"), one line ending
 * in "\n", into out:
 *   draining          "drain\n" (SIGTERM, POST /drain)
 *   !ready            "down #<reason>\n" (reason reduced to printable ASCII, at most 100 bytes)
 *   cfg_mismatch      "up drain\n": a live peer has a newer configuration (gateway/instances.h);
 *                     "up" ends an earlier "down" of ours
 *   otherwise         "up ready <pct>%\n", pct = free sessions * 100 / max_sessions, at least
 *                     1 while a session is free and 0 when none is (weight 0: no new sessions)
 * `drain` holds in HAProxy until `ready`, which the healthy answer carries. */
void tps_lb_agent_line(bool draining, bool cfg_mismatch, bool ready, const char *reason,
                       unsigned live, unsigned max_sessions, char *out, size_t cap);

/* Settings (lb.* keys, see tps_lb_cfg_keys). Strings are borrowed during tps_lb_new(). */
struct tps_lb_conf {
    const char *agent_address;   /* lb.agentAddress */
    unsigned agent_port;         /* lb.agentPort: 0 = no agent listener */
    unsigned status_port;        /* lb.statusPort: plain GET /health, /metrics; 0 = none */
    bool agent_ephemeral;        /* tests: agent and status ports on ephemeral ports
                                  * (tps_lb_agent_port(), tps_lb_status_port() tell which) */
    const char *trusted;         /* lb.trustedProxies */
    unsigned max_sessions;       /* tps.maxSessions */
    unsigned health_interval_ms; /* lb.healthInterval */
    unsigned probe_timeout_ms;   /* lb.probeTimeout: connect and LDAP timeouts of a probe */
    unsigned drain_grace_ms;     /* lb.drainGrace */
    unsigned drain_timeout_ms;   /* lb.drainTimeout */
    const char *instance_id;     /* tps.instanceId, a label of every metric */
};

/* A readiness check: returns true when the dependency answers; on false writes why. Runs on
 * the health thread only (one at a time), so it may keep per-check state in arg. */
typedef bool tps_lb_check_fn(void *arg, char *why, size_t whylen);

/* Creates the object (no thread yet). [out] *out. TPS_ECONFIG with err, TPS_ENOMEM. */
enum tps_rc tps_lb_new(const struct tps_lb_conf *conf, struct tps_lb **out, char *err,
                       size_t errlen);
/* Builds the conf from the configuration and adds the standard checks: the token DB
 * (tokendb.hostport: bind as tokendb.bindDN, read tokendb.baseDN), with lb.instanceRefresh > 0
 * the configuration-digest check between instances (gateway/instances.h; its verdict makes the
 * agent say drain, never "not ready"), and one TCP reachability
 * check per backend connector conn.<id>.hostport (ready when one clone accepts; with TLS and
 * a client certificate, when one completes a handshake). With lb.publicURL set, refuses a
 * tps.phoneHome.operation or op.*.*.issuerinfo.value that does not start with it.
 * Main thread, before threads. [out] *out. TPS_ECONFIG with err. cfg must outlive *out. */
enum tps_rc tps_lb_new_from_config(const struct tps_config *cfg, struct tps_lb **out, char *err,
                                   size_t errlen);
/* Stops the threads (if started) and frees. NULL does nothing. */
void tps_lb_free(struct tps_lb *lb);

/* Registration, before tps_lb_start(). name is copied; fn/arg are borrowed.
 * TPS_ETOOBIG when TPS_LB_MAX_CHECKS / TPS_LB_MAX_LISTS are reached. */
enum tps_rc tps_lb_add_check(struct tps_lb *lb, const char *name, tps_lb_check_fn *fn, void *arg);
/* A connector's failover list, for per-clone counters in /metrics (borrowed; must outlive lb). */
enum tps_rc tps_lb_add_list(struct tps_lb *lb, const char *name, const struct fo_list *l);

/* Starts the health thread (a first evaluation runs before it returns, so /health is right from
 * the start) and, when configured, binds the agent and status ports and starts their thread. Call after the
 * process set its signal mask. TPS_EIO with err (port in use ...). */
enum tps_rc tps_lb_start(struct tps_lb *lb, char *err, size_t errlen);
/* The agent / status port bound, 0 when none. The status port answers GET|HEAD /health
 * (200 "ok" / "ok draining", or 503 "not ready: <why>") and GET /metrics, without a PROXY header, one request
 * per connection, 500 ms to send the head; it shares the agent's thread. */
unsigned tps_lb_agent_port(const struct tps_lb *lb);
unsigned tps_lb_status_port(const struct tps_lb *lb);

/* Runs every check now, and the configuration-digest round when lb.instanceRefresh has passed
 * (also what the health thread does each lb.healthInterval). One thread at a time. */
void tps_lb_evaluate(struct tps_lb *lb);
/* Readiness (every check passed) as last evaluated; why (may be NULL) gets the reason.
 * Draining does not change it: the agent answer carries the drain. Thread-safe. */
bool tps_lb_ready(struct tps_lb *lb, char *why, size_t whylen);

/* Enters drain (idempotent): the agent answers `drain`, tps_lb_draining() true, /health on the
 * status port still 200 ("ok draining") while the dependencies are up.
 * why is logged. Thread-safe, async-signal-unsafe. */
void tps_lb_drain(struct tps_lb *lb, const char *why);
bool tps_lb_draining(const struct tps_lb *lb);
/* What `POST /drain` on the status port (loopback peers only; others get 403) does after
 * entering drain: the daemon passes a function that wakes its main thread (e.g. raises
 * SIGTERM), so the command and the signal share one path. Set before tps_lb_start(). */
void tps_lb_on_drain(struct tps_lb *lb, void (*fn)(void *arg), void *arg);
/* lb.drainGrace / lb.drainTimeout in ms. */
unsigned tps_lb_drain_grace_ms(const struct tps_lb *lb);
unsigned tps_lb_drain_timeout_ms(const struct tps_lb *lb);

/* Peer rules: may this peer send a PROXY header / X-Forwarded-For? Thread-safe. */
bool tps_lb_trusted(const struct tps_lb *lb, const struct sockaddr *peer);

/* Counters. Thread-safe (atomics). Every served connection is begun and ended (live count,
 * agent capacity); op: the cmn_tps_op of a TPS operation (an unknown number counts as
 * "unknown"), or -1 for a request that was not one (phone home, health); ok: END_OP result 0. */
void tps_lb_session_begin(struct tps_lb *lb);
void tps_lb_session_end(struct tps_lb *lb, int op, bool ok);
unsigned tps_lb_live(const struct tps_lb *lb);
/* A refused connection (queue full, untrusted PROXY peer, drain). */
void tps_lb_refused(struct tps_lb *lb, const char *why);
/* One token DB call that took us microseconds (the probe reports its own). */
void tps_lb_observe_db(struct tps_lb *lb, uint64_t us);

/* The agent answer right now (see tps_lb_agent_line). */
void tps_lb_agent_text(struct tps_lb *lb, char *out, size_t cap);

/* Appends the Prometheus text exposition (version 0.0.4) of every counter, gauge and histogram:
 * tpsgw_up, tpsgw_ready, tpsgw_draining, tpsgw_config_mismatch, tpsgw_sessions_{live,max}, tpsgw_sessions_total,
 * tpsgw_operations_total{op,result}, tpsgw_refused_total{reason}, tpsgw_tokendb_seconds
 * (histogram), tpsgw_check_up{check}, and per failover list tpsgw_backend_calls_total,
 * tpsgw_backend_failovers_total, tpsgw_backend_resends_total, and per clone
 * tpsgw_backend_requests_total, _successes_total, _failures_total{class},
 * _breaker_opens_total, tpsgw_backend_breaker_state (0 closed, 1 half-open, 2 open),
 * tpsgw_backend_inflight. Label values are escaped. TPS_ETOOBIG from the buffer. Thread-safe. */
enum tps_rc tps_lb_metrics(struct tps_lb *lb, struct cmn_buf *out);

/* ---- public URL (tokendb-ha §4.3) ---- */

/* The URL in an issuer info (op.<op>.<type>.issuerinfo.value) and the one on a card differ in a
 * way that needs a rewrite: compares the card's bytes up to the first NUL (at most n) with want.
 * False when want is empty (nothing configured) or they are equal. Thread-safe. */
bool tps_lb_issuer_needs_rewrite(const uint8_t *card, size_t n, const char *want);

#endif
