/* gateway/tokendb.h - the token database in LDAP (tokendb-ha-keychange §1, §2, §5.4, §6):
 * token, certificate and activity entries, status transitions, per-token operation leases,
 * pending key versions, and the failing-over LDAP connection that gateway/auth_ldap.c shares.
 *
 * Threads: the configuration objects (struct tps_ldap_target, struct tps_tokendb_cfg) are
 * built once in the main thread and are then immutable and shared. Every worker opens its own
 * struct tps_tokendb (its own LDAP *, STYLE §5); a handle is never used by two threads at
 * once. Call tps_ldap_global_init() in main before any thread starts.
 *
 * Dates: every date this module writes (dateOfCreate, dateOfModify, lease expiry, pending
 * since) is true UTC as YYYYMMDDhhmmssZ. Dogtag writes local time followed by a literal Z;
 * such values are read back as opaque strings and never converted. */
#ifndef TPS_TOKENDB_H
#define TPS_TOKENDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ldap.h>

enum tps_tdb_rc {
    TPS_TDB_OK = 0,
    TPS_TDB_EINVAL = 1, /* bad argument (CUID not hex, empty name ...): fix the caller */
    TPS_TDB_ENOMEM = 2,
    TPS_TDB_ECONFIG = 3,     /* configuration error; the message names the key */
    TPS_TDB_EDOWN = 4,       /* no LDAP server answered within the deadline */
    TPS_TDB_ENOTFOUND = 5,   /* no such token / certificate entry */
    TPS_TDB_EEXISTS = 6,     /* the entry exists already (token add: re-read and modify) */
    TPS_TDB_ECONFLICT = 7,   /* asserted modify refused (LDAP 122): the record changed since
                              * it was read; re-read and re-decide */
    TPS_TDB_ETRANSITION = 8, /* status change not in the allowed transitions */
    TPS_TDB_EBUSY = 9,       /* another holder has an unexpired operation lease on the token */
    TPS_TDB_ELEASE = 10,     /* our lease is gone (expired and taken over, or released) */
    TPS_TDB_EACCESS = 11,    /* LDAP refused our identity or the access (49, 50) */
    TPS_TDB_ECREDS = 12,     /* user authentication: wrong password (or account unusable) */
    TPS_TDB_ENOUSER = 13,    /* user authentication: no such user, or the uid is ambiguous */
    TPS_TDB_ELDAP = 14,      /* any other LDAP error; the detail has the code and message */
    TPS_TDB_ETOOBIG = 15,    /* a value or a result set exceeds its limit */
    /* append only: the numbers appear in logs */
};

/* Static, never-NULL description of rc. Thread-safe. */
const char *tps_tdb_strerror(enum tps_tdb_rc rc);

/* ---- LDAP connection with failover (shared with auth_ldap.c) ---------------------------- */

/* Sets libldap's process-wide defaults (protocol version 3, no referral chasing, TLS peer
 * verification demanded). Call once in the main thread before worker threads start
 * (ldap_open(3): global options are not thread-safe). 0 or an LDAP error code. */
int tps_ldap_global_init(void);

/* How to reach one LDAP service (token DB or auth DB). Strings are borrowed during
 * tps_ldap_target_new() only. */
struct tps_ldap_target_conf {
    const char *hostport;        /* tokendb.hostport / auth.instance.N.hostport: "host:port ..."
                                  * or URIs (ldap://, ldaps://), space- or comma-separated; the
                                  * first is the shared write target (§2.2 R1) */
    bool ssl;                    /* tokendb.ssl / SSLOn: host:port entries become ldaps:// */
    bool starttls;               /* StartTLS on ldap:// connections (refused if it fails) */
    const char *ca_file;         /* PEM CA bundle for TLS; NULL: system default */
    bool allow_plain_remote;     /* permit plain LDAP to a non-loopback host (not recommended) */
    const char *bind_dn;         /* NULL or "": anonymous */
    const char *bind_pw_file;    /* file holding the bind password (mode 0600 or stricter) */
    unsigned network_timeout_ms; /* connect timeout per URI (LDAP_OPT_NETWORK_TIMEOUT) */
    unsigned op_timeout_ms;      /* one LDAP operation, bind included (LDAP_OPT_TIMEOUT) */
    unsigned deadline_ms;        /* a whole call, the one rebuild-and-retry included;
                                  * 0: 2 * op_timeout + network_timeout */
    unsigned failback_s;         /* after a rotation, return to the first URI after this
                                  * many seconds (0: 60) */
};

/* Immutable after creation; shared by every thread. Holds the bind password (wiped on
 * free). */
struct tps_ldap_target;

/* Parses and checks c; reads and checks the password file. `what` names the service in
 * messages ("tokendb", "auth.instance.1"). [out] *out (NULL on failure); err receives one
 * line naming the key on failure. TPS_TDB_OK, TPS_TDB_ECONFIG, TPS_TDB_ENOMEM. */
enum tps_tdb_rc tps_ldap_target_new(const struct tps_ldap_target_conf *c, const char *what,
                                    struct tps_ldap_target **out, char *err, size_t err_size);
void tps_ldap_target_free(struct tps_ldap_target *t);
/* Number of URIs and the i-th (canonical order); borrowed from t. */
size_t tps_ldap_target_count(const struct tps_ldap_target *t);
const char *tps_ldap_target_uri(const struct tps_ldap_target *t, size_t i);

/* One LDAP handle of one thread, rebuilt on failure. Opaque. */
struct tps_ldap_conn;

/* [out] *out: a connection that connects lazily on first use. Borrows t, which must outlive
 * it. TPS_TDB_OK or TPS_TDB_ENOMEM. */
enum tps_tdb_rc tps_ldap_conn_new(const struct tps_ldap_target *t, struct tps_ldap_conn **out);
/* Unbinds and frees. NULL does nothing. */
void tps_ldap_conn_free(struct tps_ldap_conn *c);

/* An LDAP operation run by tps_ldap_conn_run(): returns an LDAP result code (LDAP_SUCCESS,
 * LDAP_NO_SUCH_OBJECT, LDAP_SERVER_DOWN ...). `tmo` is the time left for this attempt; pass
 * it to ldap_search_ext_s (synchronous calls also honour LDAP_OPT_TIMEOUT, which the
 * connection sets to the same value). */
typedef int tps_ldap_op_fn(LDAP *ld, struct timeval *tmo, void *arg);

/* Runs fn on the connection, connecting and binding first if needed. When the server cannot
 * be reached or does not answer (LDAP_SERVER_DOWN, LDAP_CONNECT_ERROR, LDAP_TIMEOUT) the
 * handle is dropped and rebuilt (after a timeout, with the URI list rotated so the next URI
 * comes first) and, when `retry` is true and the deadline allows, fn runs once more: pass
 * retry = true only for idempotent or asserted operations.
 * [out] *ldap_rc: fn's last result. Returns TPS_TDB_OK when a server answered (whatever
 * *ldap_rc), TPS_TDB_EDOWN when none did, TPS_TDB_EACCESS when our bind was refused,
 * TPS_TDB_ELDAP for other connection setup failures (StartTLS refused ...). */
enum tps_tdb_rc tps_ldap_conn_run(struct tps_ldap_conn *c, tps_ldap_op_fn *fn, void *arg,
                                  bool retry, int *ldap_rc);
/* The handle is now bound as someone else (a user bind); rebind as the service identity
 * before the next operation. */
void tps_ldap_conn_need_rebind(struct tps_ldap_conn *c);
/* Why the last call failed; "" after success. Borrowed until the next call. */
const char *tps_ldap_conn_errmsg(const struct tps_ldap_conn *c);
/* Empties the detail message. */
void tps_ldap_conn_clearerr(struct tps_ldap_conn *c);
/* Appends text to the detail message (for the operation layer). */
void tps_ldap_conn_seterr(struct tps_ldap_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "host:port" of the server the live handle is connected to, or "" if none. */
const char *tps_ldap_conn_server(struct tps_ldap_conn *c, char *buf, size_t size);
/* How many times the handle was (re)built; increases by one per connect. */
unsigned long tps_ldap_conn_generation(const struct tps_ldap_conn *c);

/* Escapes s as an RFC 4515 filter value into out. TPS_TDB_ETOOBIG if it does not fit. */
enum tps_tdb_rc tps_ldap_filter_escape(const char *s, char *out, size_t out_size);

/* ---- token DB configuration ------------------------------------------------------------ */

/* Strings are borrowed during tps_tokendb_cfg_new() only. Config key names in comments. */
struct tps_tokendb_conf {
    struct tps_ldap_target_conf ldap; /* tokendb.hostport, tokendb.ssl, tokendb.startTLS,
                                       * tokendb.caFile, tokendb.bindDN,
                                       * tokendb.bindPassword_file, tokendb.*Timeout */
    const char *base_dn;              /* tokendb.baseDN: ou=Tokens,<root> (required) */
    const char *cert_base_dn;         /* tokendb.certBaseDN: ou=Certificates,<root> (required) */
    const char *activity_base_dn;     /* tokendb.activityBaseDN: ou=Activities,<root> (required) */
    const char *instance_id;          /* tps.instanceId: cluster-unique, [a-z0-9-], 1..32 chars */
    const char *allowed_transitions;  /* tokendb.allowedTransitions (agents); NULL or "": the
                                       * default (to allow all, list every pair) */
    const char *op_allowed_transitions; /* tps.operations.allowedTransitions; NULL/"": default */
    const char *default_policy;         /* tokendb.defaultPolicy; NULL/"": Java default */
    unsigned lease_seconds;             /* tokendb.leaseSeconds: operation lease length (0: 600) */
    unsigned lease_wait_ms;             /* tokendb.leaseWait: how long a lease acquisition
                                         * waits for another holder's lease to expire (0) */
    const char *leases_dn;    /* singleton-job leases; NULL: ou=Leases,<parent of baseDN> */
    bool keep_on_unformat[5]; /* tokenservice.status.unformatted.clear{UserID,Type,
                               * AppletID,KeyInfo,Policy}=false sets [0..4] to true */
};

/* Defaults of §1.7 (Java). */
#define TPS_TOKENDB_DEFAULT_TRANSITIONS                                                            \
    "0:1,0:2,0:3,0:6,3:2,3:6,4:1,4:2,4:3,4:6,6:7,1:2,7:1,7:2,6:1,6:2,3:1,3:4"
#define TPS_TOKENDB_DEFAULT_OP_TRANSITIONS "0:0,0:4,4:4,4:0,7:0"
#define TPS_TOKENDB_DEFAULT_POLICY                                                                 \
    "RE_ENROLL=YES;RENEW=NO;FORCE_FORMAT=NO;PIN_RESET=NO;RESET_PIN_RESET_TO_NO=NO"

/* Immutable, shared by all workers. */
struct tps_tokendb_cfg;

/* Checks c (DNs, instance id, transition lists, policy), reads the password file.
 * [out] *out; err: one line naming the key on failure. TPS_TDB_OK, TPS_TDB_ECONFIG,
 * TPS_TDB_ENOMEM. */
enum tps_tdb_rc tps_tokendb_cfg_new(const struct tps_tokendb_conf *c, struct tps_tokendb_cfg **out,
                                    char *err, size_t err_size);
void tps_tokendb_cfg_free(struct tps_tokendb_cfg *cfg);

/* One worker's handle. */
struct tps_tokendb;

/* [out] *out. Borrows cfg (must outlive the handle). Connects lazily. */
enum tps_tdb_rc tps_tokendb_open(const struct tps_tokendb_cfg *cfg, struct tps_tokendb **out);
void tps_tokendb_close(struct tps_tokendb *db);
/* Detail of the last failure: operation, DN, LDAP code and text, server. Borrowed. */
const char *tps_tokendb_errmsg(const struct tps_tokendb *db);
/* The handle's connection (to ask which server it uses). Borrowed. */
struct tps_ldap_conn *tps_tokendb_conn(struct tps_tokendb *db);

/* ---- token status (§1.7) ------------------------------------------------------------ */

enum tps_token_status {
    TPS_TOKEN_FORMATTED = 0,
    TPS_TOKEN_DAMAGED = 1,
    TPS_TOKEN_PERM_LOST = 2,
    TPS_TOKEN_SUSPENDED = 3,
    TPS_TOKEN_ACTIVE = 4,
    TPS_TOKEN_TEMP_LOST_PERM_LOST = 5,
    TPS_TOKEN_TERMINATED = 6,
    TPS_TOKEN_UNFORMATTED = 7,
    TPS_TOKEN_UNKNOWN = -1, /* a stored value we do not know; cannot be changed */
};

/* Stored name ("ACTIVE" ...); "UNKNOWN" for anything else. */
const char *tps_token_status_name(enum tps_token_status s);
/* Java names (any case), the aliases UNINITIALIZED and TEMP_LOST, and legacy values with
 * their reason (uninitialized, active, lost+reason, terminated, disabled; §1.7 migration).
 * reason may be NULL. */
enum tps_token_status tps_token_status_parse(const char *status, const char *reason);
/* The tokenReason written on entering s, or NULL (attribute removed). */
const char *tps_token_status_reason(enum tps_token_status s);

/* Who asks for a status change: each has its own allowed-transition table. */
enum tps_tdb_actor {
    TPS_TDB_AGENT = 0,     /* admin/agent interface: tokendb.allowedTransitions */
    TPS_TDB_OPERATION = 1, /* format, enroll, PIN reset: tps.operations.allowedTransitions */
};

/* True when `from` -> `to` is in the table of `who`. */
bool tps_tokendb_transition_allowed(const struct tps_tokendb_cfg *cfg, enum tps_tdb_actor who,
                                    enum tps_token_status from, enum tps_token_status to);

/* ---- token policy (§1.8) ------------------------------------------------------------ */

struct tps_token_policy {
    bool re_enroll, renew, force_format, pin_reset, reset_pin_reset_to_no;
};

/* Parses "NAME=YES|NO;..." (case-insensitive). Names absent from s keep the value of `dflt`
 * (NULL: the default policy; RE_ENROLL is then allowed). Unknown names are ignored.
 * TPS_TDB_EINVAL on a value other than YES/NO or a pair without '='. */
enum tps_tdb_rc tps_token_policy_parse(const char *s, const struct tps_token_policy *dflt,
                                       struct tps_token_policy *out);
/* Writes the five names in Java's order. TPS_TDB_ETOOBIG if out is too small. */
enum tps_tdb_rc tps_token_policy_format(const struct tps_token_policy *p, char *out,
                                        size_t out_size);

/* ---- token records ------------------------------------------------------------------ */

#define TPS_CUID_MAX 40 /* hex digits of a CUID (Dogtag: 20) */

/* A token record as read. Every string is owned (NULL when the attribute is absent); release
 * with tps_token_cleanup(). */
struct tps_token {
    char cuid[TPS_CUID_MAX + 1];
    char *dn;
    char *user_id, *type, *applet_id, *key_info, *policy, *reason, *status_raw;
    enum tps_token_status status;
    char *date_create, *date_modify;
    long long modified;     /* modification counter; -1: legacy record without one */
    char *pending_key_info; /* §5.5: pendingKeyInfo=<hex>&pendingSince=<UTC>, split */
    char *pending_since;
    char *pending_value; /* that extensions value verbatim */
    char *lease_value;   /* opOwner=...&opEpoch=...&opExpires=... verbatim, or NULL */
    char **extensions;   /* the other extensions values, verbatim */
    size_t n_extensions;
};

void tps_token_cleanup(struct tps_token *t);

/* Changes to a token record. Strings are borrowed: NULL leaves the attribute alone, ""
 * removes it (Directory String values cannot be empty, §1.5). */
struct tps_token_mod {
    const char *user_id, *type, *applet_id, *key_info, *policy;
    bool set_status;
    enum tps_token_status status;
    enum tps_tdb_actor actor; /* whose transition table applies */
};

/* Reads cn=<cuid>,<baseDN>. [out] *out (cleaned up first; zeroed on failure).
 * TPS_TDB_OK, TPS_TDB_ENOTFOUND, TPS_TDB_EINVAL (CUID), TPS_TDB_EDOWN, TPS_TDB_ELDAP. */
enum tps_tdb_rc tps_tokendb_token_get(struct tps_tokendb *db, const char *cuid,
                                      struct tps_token *out);

/* Adds a record with dateOfCreate/dateOfModify (now, UTC), modified: 0, the status of init
 * (set_status false: UNFORMATTED, §1.7 "unknown tokens are added as UNFORMATTED") and its
 * reason, the policy of init or tokendb.defaultPolicy. [out] out (may be NULL): the record as
 * written. TPS_TDB_EEXISTS when the CUID exists (§1.6: re-read and modify). */
enum tps_tdb_rc tps_tokendb_token_create(struct tps_tokendb *db, const char *cuid,
                                         const struct tps_token_mod *init, struct tps_token *out);

/* Applies m to the record `tok` as read: replaces the changed attributes and dateOfModify,
 * increments `modified`, all in one modify asserted on the `modified` value read (and on the
 * lease when `lease` is not NULL), §2.2 R2. A status change is checked against the actor's
 * transition table; the reason follows the new status; UNFORMATTED clears user, type,
 * applet, key info and policy unless configured otherwise (§1.7).
 * [in,out] tok: updated in memory on success. TPS_TDB_ECONFLICT: someone else changed the
 * record (or our lease is gone, TPS_TDB_ELEASE): re-read. TPS_TDB_ETRANSITION. */
struct tps_token_lease;
enum tps_tdb_rc tps_tokendb_token_update(struct tps_tokendb *db, struct tps_token *tok,
                                         const struct tps_token_mod *m,
                                         const struct tps_token_lease *lease);

/* Deletes a token record (admin API). TPS_TDB_ENOTFOUND. */
enum tps_tdb_rc tps_tokendb_token_delete(struct tps_tokendb *db, const char *cuid);

/* Tokens whose tokenUserID is uid, newest first (dateOfModify). [out] *out (array of *n
 * records; free with tps_tokens_free) . At most 1000; TPS_TDB_ETOOBIG beyond. */
enum tps_tdb_rc tps_tokendb_token_list_by_user(struct tps_tokendb *db, const char *uid,
                                               struct tps_token **out, size_t *n);
void tps_tokens_free(struct tps_token *arr, size_t n);

/* Paged listing (RFC 2696 Simple Paged Results) for the admin API. Criteria are exact
 * matches; NULL means any. Values are escaped, so any text is safe. */
struct tps_token_query {
    const char *user_id, *status, *type;
};
/* The position in a listing. Initialise with {0}; release with tps_tokendb_cursor_cleanup().
 * Bound to the connection: if the handle was rebuilt between pages, the next page fails with
 * TPS_TDB_ECONFLICT (restart the listing). */
struct tps_tokendb_cursor {
    struct berval *cookie;
    unsigned long generation;
    bool started, done;
};
/* Reads the next page of at most page_size (1..1000) records. [out] *out, *n (0 with done
 * set at the end). [in,out] cur. */
enum tps_tdb_rc tps_tokendb_token_page(struct tps_tokendb *db, const struct tps_token_query *q,
                                       unsigned page_size, struct tps_tokendb_cursor *cur,
                                       struct tps_token **out, size_t *n);
void tps_tokendb_cursor_cleanup(struct tps_tokendb_cursor *cur);

/* ---- operation lease (§6) ----------------------------------------------------------- */

/* A lease held on one token: the extensions value opOwner=<owner>&opEpoch=<n>&opExpires=<UTC>.
 * `owner` is <instanceId>.<16 hex random>, unique per acquisition; `epoch` strictly increases
 * over the record's life (it is the `modified` counter after the acquisition). */
struct tps_token_lease {
    char value[160];
    char owner[64];
    unsigned long long epoch;
    time_t expires;
};

/* Takes the operation lease of the token for `seconds` (0: tokendb.leaseSeconds). A free
 * lease is added under (!(extensions=opOwner=*)); an expired one is replaced under an
 * assertion on its exact value; either way `modified` is asserted and incremented, so of two
 * instances racing exactly one wins. Re-reads and re-decides on a lost race (a few times).
 * [in,out] tok: re-read. [out] lease. TPS_TDB_EBUSY: someone else holds an unexpired lease
 * (errmsg names the holder and expiry). */
enum tps_tdb_rc tps_tokendb_lease_acquire(struct tps_tokendb *db, struct tps_token *tok,
                                          unsigned seconds, struct tps_token_lease *lease);
/* Extends our lease to now + seconds (0: default), asserted on the lease value and on
 * tok->modified (the record as we last wrote it). [in,out] tok, lease.
 * TPS_TDB_ELEASE if it is no longer ours or the record changed behind us. */
enum tps_tdb_rc tps_tokendb_lease_renew(struct tps_tokendb *db, struct tps_token *tok,
                                        unsigned seconds, struct tps_token_lease *lease);
/* Removes our lease value, asserted on it and on tok->modified: a provider that has not seen
 * our last change refuses, so the release never overwrites that change when the replicas
 * reconverge (entry-level last writer wins). TPS_TDB_ELEASE if the lease was already gone
 * (taken over) or the record changed behind us; the lease then expires on its own. */
enum tps_tdb_rc tps_tokendb_lease_release(struct tps_tokendb *db, struct tps_token *tok,
                                          const struct tps_token_lease *lease);

/* ---- pending key version (§5.4, §5.5 a) ---------------------------------------------- */

/* Before PUT KEY: records extensions pendingKeyInfo=<new_key_info>&pendingSince=<UTC>
 * (replacing an older pending value), asserted like token_update. [in,out] tok. */
enum tps_tdb_rc tps_tokendb_pending_key_set(struct tps_tokendb *db, struct tps_token *tok,
                                            const char *new_key_info,
                                            const struct tps_token_lease *lease);
/* After a secure channel opened at key_info: keyInfo := key_info and the pending value is
 * removed, in one asserted modify. [in,out] tok. */
enum tps_tdb_rc tps_tokendb_pending_key_commit(struct tps_tokendb *db, struct tps_token *tok,
                                               const char *key_info,
                                               const struct tps_token_lease *lease);
/* Removes the pending value only (changeover abandoned before PUT KEY). No-op when there is
 * none. [in,out] tok. */
enum tps_tdb_rc tps_tokendb_pending_key_clear(struct tps_tokendb *db, struct tps_token *tok,
                                              const struct tps_token_lease *lease);
/* The DB check of validateCardKeyInfoAgainstTokenDB: true when card_key_info (hex, any case)
 * equals the record's keyInfo or its pending key info. */
bool tps_token_key_info_matches(const struct tps_token *tok, const char *card_key_info);

/* ---- singleton-job lease (§6) ------------------------------------------------------------ */

/* A periodic job (pruning, expiry marking ...) runs only on the holder of
 * cn=<job>,ou=Leases,<root>: an applicationProcess with the auxiliary class tpsLease
 * (leaseOwner = instanceId, leaseExpires UTC GeneralizedTime, leaseEpoch). Replication cannot
 * exclude during a partition: jobs stay idempotent and carry `epoch` as fencing value. */
struct tps_job_lease {
    char job[65];
    unsigned long long epoch; /* increases with every acquisition or renewal */
    time_t expires;
};

/* Takes the lease of `job` ([a-z0-9-], 1..64 characters) for `seconds` (0: leaseSeconds),
 * or renews it when this instance holds it: a modify asserted on the epoch read and
 * (|(leaseOwner=<instanceId>)(leaseExpires<=<now>)) that increments leaseEpoch; the entry is
 * created on first use. Of two instances racing exactly one wins. [out] lease.
 * TPS_TDB_EBUSY: another instance holds it (errmsg names it and the expiry). */
enum tps_tdb_rc tps_tokendb_job_lease_acquire(struct tps_tokendb *db, const char *job,
                                              unsigned seconds, struct tps_job_lease *lease);
/* Gives the lease up (expiry set to now), asserted on our owner and epoch.
 * TPS_TDB_ELEASE if it was no longer ours. */
enum tps_tdb_rc tps_tokendb_job_lease_release(struct tps_tokendb *db,
                                              const struct tps_job_lease *lease);

/* ---- instance entries (§6 "Identical configuration") ------------------------------------ */

/* cn=<instanceId>,ou=Instances,<parent of baseDN>: an applicationProcess whose `description`
 * values are `digest=<64 lowercase hex>`, `since=<UTC>` and `seen=<UTC>` (gateway/instances.h
 * says what they mean). */
#define TPS_INSTANCES_MAX 64 /* entries read by tps_tokendb_instance_list */
struct tps_instance_rec {
    char id[33];     /* cn (an instanceId) */
    char digest[65]; /* "" when the entry has no well-formed digest */
    time_t since;    /* 0 when absent or unreadable */
    time_t seen;     /* 0 when absent or unreadable (the entry then counts as stale) */
};

/* Writes this instance's entry (replaces its description values); creates the entry, and
 * ou=Instances when it is missing, on first use. digest: 64 hex characters. Idempotent, so
 * retried once after a lost connection. TPS_TDB_EINVAL (bad digest), TPS_TDB_EDOWN,
 * TPS_TDB_EACCESS, TPS_TDB_ELDAP; tps_tokendb_errmsg() says which DN and why. */
enum tps_tdb_rc tps_tokendb_instance_publish(struct tps_tokendb *db, const char *digest,
                                             time_t since, time_t seen);
/* Reads every instance entry (one-level search of ou=Instances; a missing ou=Instances is an
 * empty list). [out] out[0..*n). TPS_TDB_ETOOBIG when more than cap entries exist. */
enum tps_tdb_rc tps_tokendb_instance_list(struct tps_tokendb *db, struct tps_instance_rec *out,
                                          size_t cap, size_t *n);

/* ---- certificates and activities ---------------------------------------------------- */

/* A certificate entry. On input every field is borrowed (NULL: attribute not written); as
 * returned by tps_tokendb_cert_list() the strings live in `owned_` (freed by
 * tps_token_certs_free). */
struct tps_token_cert {
    const char *cn;
    const char *user_id, *cuid, *origin, *issuer, *subject, *serial, *status, *type, *key_type,
        *not_before, *not_after, *date_create, *date_modify;
    const uint8_t *der;
    size_t der_len;
    void *owned_;
};

#define TPS_TDB_CN_MAX 96 /* size of a generated cn, NUL included */

/* Adds cn=<UTC time µs>Z.<instanceId>.<counter>,<certBaseDN> (§1.6; on 68 a new name is tried
 * once). cuid, serial and status are required; the certificate goes to
 * userCertificate;binary. [out] cn_out (may be NULL). */
enum tps_tdb_rc tps_tokendb_cert_add(struct tps_tokendb *db, const struct tps_token_cert *c,
                                     char *cn_out, size_t cn_size);
/* Certificates with tokenID=cuid, oldest first (dateOfCreate). [out] *out, *n. At most 1000. */
enum tps_tdb_rc tps_tokendb_cert_list(struct tps_tokendb *db, const char *cuid,
                                      struct tps_token_cert **out, size_t *n);
void tps_token_certs_free(struct tps_token_cert *arr, size_t n);
/* Sets tokenStatus of one certificate entry (revoke: "revoked" or "revoked_on_hold",
 * unrevoke: "active", "expired"). TPS_TDB_ENOTFOUND, TPS_TDB_EINVAL for another status. */
/* Deletes certificate entry `cn` (e.g. a closed enrollment intent). A missing entry is
 * TPS_TDB_OK. TPS_TDB_EINVAL for an unsafe cn; the connection errors otherwise. */
enum tps_tdb_rc tps_tokendb_cert_delete(struct tps_tokendb *db, const char *cn);
enum tps_tdb_rc tps_tokendb_cert_set_status(struct tps_tokendb *db, const char *cn,
                                            const char *status);

/* An activity (tokenActivity). All fields borrowed; op and result required. */
struct tps_token_activity {
    const char *op;     /* tokenOp: format, enrollment, pin_reset, key_changeover ... */
    const char *result; /* tokenResult: success / failure */
    const char *cuid, *user_id, *ip, *msg, *type;
    const char *officer; /* uid of the security officer who ran it, NULL/"": none; the schema
                          * has no attribute for it, so tokenMsg ends "; officer <uid>" */
};
/* Adds one activity entry under a collision-free cn (§1.6). [out] cn_out (may be NULL). */
enum tps_tdb_rc tps_tokendb_activity_add(struct tps_tokendb *db, const struct tps_token_activity *a,
                                         char *cn_out, size_t cn_size);

/* Writes the UTC time t as YYYYMMDDhhmmssZ (out_size >= 16). */
void tps_tdb_utc(time_t t, char *out, size_t out_size);
/* Parses YYYYMMDDhhmmssZ as UTC. false on any other form. */
bool tps_tdb_utc_parse(const char *s, time_t *out);

#endif
