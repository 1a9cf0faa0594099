/* gateway/admin.h - token management for people: the JSON REST API under /tps/rest/ (tokens,
 * certificates, activities, profiles, account; modelled on Dogtag TPS's REST resources) and the
 * security-officer web console under /tps/ui/ (static files). Callers are authenticated by their
 * verified TLS client certificate, mapped to a staff entry and role groups in the token DB
 * (tokendb §1.8); status changes follow the allowed transitions (tokendb §1.7) and revoke or
 * unrevoke through the CA clones before the token DB is written. Documented in docs/admin-api.md.
 *
 * Threads: struct tps_admin is built once in the main thread and is then immutable and shared.
 * Each worker opens its own struct tps_admin_worker (its own token DB handle, its own CA call
 * handle); a worker handle is used by one thread at a time. */
#ifndef TPS_ADMIN_H
#define TPS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/cfg.h"
#include "gateway/gwerr.h"
#include "gateway/tokendb.h"

struct cmn_http_conn;
struct cmn_http_head;

/* The config keys of the admin API and console (tps.admin.*). Merge into the gateway's table
 * list. */
extern const struct cmn_cfg_key tps_admin_cfg_keys[];

/* Roles (tokendb §1.8), as bits. */
enum tps_admin_role {
    TPS_ADMIN_ROLE_OPERATOR = 1, /* read tokens, certificates, activities */
    TPS_ADMIN_ROLE_AGENT = 2,    /* operator rights + change token status */
    TPS_ADMIN_ROLE_ADMIN = 4,    /* agent rights (this API has no admin-only resource yet) */
};

/* The caller, as the TLS layer verified it. Everything borrowed for the call. */
struct tps_admin_peer {
    X509 *cert;              /* verified client certificate; NULL: the client sent none */
    const char *subject;     /* its subject, RFC 2253 text; NULL with cert NULL */
    const char *fingerprint; /* SHA-256 of its DER, lower-case hex; NULL with cert NULL */
    const char *client_ip;   /* as the gateway saw it (PROXY protocol applied) */
    const char *instance;    /* this gateway instance (tps.instanceId) */
};

/* Who the caller is in the token DB. Filled by the backend's whois. */
#define TPS_ADMIN_MAX_PROFILES 16
struct tps_admin_staff {
    char uid[128];
    char dn[512];
    char full_name[128];
    unsigned roles;                 /* enum tps_admin_role bits */
    bool all_profiles;              /* profileID "All Profiles" */
    size_t n_profiles;
    char profiles[TPS_ADMIN_MAX_PROFILES][64]; /* token types this user may see */
};

/* An activity entry, as the backend visits it. Every string borrowed for the visit, may be
 * NULL. */
struct tps_admin_activity {
    const char *id, *op, *result, *cuid, *user_id, *ip, *msg, *type, *date;
};

/* A visitor: returns false to stop the scan. The record is borrowed for the call. */
typedef bool tps_admin_token_fn(void *arg, const struct tps_token *t);
typedef bool tps_admin_activity_fn(void *arg, const struct tps_admin_activity *a);

/* What the CA did to one certificate. */
enum tps_admin_ca_act {
    TPS_ADMIN_CA_NONE = 0,
    TPS_ADMIN_CA_REVOKE = 1,
    TPS_ADMIN_CA_UNREVOKE = 2,
};

/* The token DB, staff directory and CA behind the API. `shared` is given to tps_admin_new and
 * borrowed; `w` is a worker handle from worker_open. Every function that can fail writes one
 * line saying why into err (never a secret) and returns:
 *   TPS_OK; TPS_ENOTFOUND (no such token / unmapped certificate); TPS_EDB (token DB failed or
 *   unreachable); TPS_EBUSY (the record changed since it was read: re-read); TPS_EPOLICY
 *   (transition refused by the token DB); TPS_EBACKEND (the CA did not do it); TPS_ENOMEM. */
struct tps_admin_backend {
    enum tps_rc (*worker_open)(void *shared, void **w, char *err, size_t errlen);
    void (*worker_close)(void *w);
    /* Maps the certificate to a staff entry and its role groups. [out] out. */
    enum tps_rc (*whois)(void *w, const struct tps_admin_peer *peer, struct tps_admin_staff *out,
                         char *err, size_t errlen);
    /* [out] out (release with tps_token_cleanup). */
    enum tps_rc (*token_get)(void *w, const char *cuid, struct tps_token *out, char *err,
                             size_t errlen);
    /* Visits the tokens matching q (exact criteria, NULL = any) in storage order. */
    enum tps_rc (*token_scan)(void *w, const struct tps_token_query *q, tps_admin_token_fn *fn,
                              void *arg, char *err, size_t errlen);
    /* Moves tok to `to` with the agent transition table, asserted on the record as read.
     * [in,out] tok. */
    enum tps_rc (*token_set_status)(void *w, struct tps_token *tok, enum tps_token_status to,
                                    char *err, size_t errlen);
    /* The agent transition table (tokendb.allowedTransitions). */
    bool (*transition_allowed)(void *shared, enum tps_token_status from,
                               enum tps_token_status to);
    /* Certificates of a token, oldest first. [out] *out, *n (release with certs_free). */
    enum tps_rc (*cert_list)(void *w, const char *cuid, struct tps_token_cert **out, size_t *n,
                             char *err, size_t errlen);
    void (*certs_free)(struct tps_token_cert *arr, size_t n);
    enum tps_rc (*cert_set_status)(void *w, const char *cn, const char *status, char *err,
                                   size_t errlen);
    /* Visits activities (of token cuid, or all when NULL), newest first. */
    enum tps_rc (*activity_scan)(void *w, const char *cuid, tps_admin_activity_fn *fn, void *arg,
                                 char *err, size_t errlen);
    enum tps_rc (*activity_add)(void *w, const struct tps_token_activity *a, char *err,
                                size_t errlen);
    /* What a transition does to a certificate of key type key_type (tokendb §1.7, ca.h's
     * tps_ca_status_action). [out] *act, *reason (RFC 5280 code, REVOKE only). */
    enum tps_rc (*ca_action)(void *shared, const char *token_type, const char *key_type,
                             enum tps_token_status from, enum tps_token_status to,
                             enum tps_admin_ca_act *act, int *reason);
    /* Revokes / takes off hold one serial through the CA clones. [out] clone: who answered
     * ("ca1 127.0.0.1:9443"). TPS_OK only when the CA did it. */
    enum tps_rc (*ca_revoke)(void *w, const char *serial, int reason, char *clone,
                             size_t clone_len, char *err, size_t errlen);
    enum tps_rc (*ca_unrevoke)(void *w, const char *serial, char *clone, size_t clone_len,
                               char *err, size_t errlen);
    /* "host:port" of the LDAP server the worker handle talks to, "" if none. */
    const char *(*db_server)(void *w, char *buf, size_t size);
};

/* Settings. Strings borrowed during tps_admin_new() only. */
struct tps_admin_settings {
    const char *instance;        /* tps.instanceId */
    const char *console_dir;     /* tps.admin.consoleDir; NULL or "": console disabled */
    const char *allowed_origins; /* tps.admin.allowedOrigins: space-separated origins allowed
                                  * besides https://<Host> */
    const char *profiles;        /* tps.admin.profiles: token types, comma-separated */
    const uint8_t *csrf_key;     /* tps.admin.csrfKey_file contents (>= 16 bytes); NULL: a
                                  * random key for this process (single instance only) */
    size_t csrf_key_len;
    unsigned csrf_ttl_s;         /* tps.admin.csrfTTL (0: 28800) */
    unsigned max_page;           /* tps.admin.maxPageSize (0: 500) */
    unsigned default_page;       /* tps.admin.defaultPageSize (0: 20) */
    unsigned max_scan;           /* tps.admin.maxScan: records looked at per search (0: 20000) */
};

struct tps_admin;
struct tps_admin_worker;

/* Creates the handler. be and shared are borrowed for its life. [out] *out.
 * TPS_ECONFIG (err says which setting), TPS_ENOMEM. Main thread. */
enum tps_rc tps_admin_new(const struct tps_admin_settings *s, const struct tps_admin_backend *be,
                          void *shared, struct tps_admin **out, char *err, size_t errlen);
void tps_admin_free(struct tps_admin *a);

/* Opens one worker's handles (connect lazily). [out] *out. */
enum tps_rc tps_admin_worker_open(const struct tps_admin *a, struct tps_admin_worker **out,
                                  char *err, size_t errlen);
void tps_admin_worker_close(struct tps_admin_worker *w);

/* True when the gateway should hand the request to tps_admin_handle(): its path is /tps/rest,
 * /tps/ui, or below either. */
bool tps_admin_owns_path(const char *path);

/* Serves one request whose head has been read: reads its body (capped), authorises, answers
 * with one complete response (Connection: close). Returns TPS_OK when a response was written
 * (whatever its status), otherwise the I/O error. */
enum tps_rc tps_admin_handle(const struct tps_admin *a, struct tps_admin_worker *w,
                             struct cmn_http_conn *c, const struct cmn_http_head *h,
                             const struct tps_admin_peer *peer);

/* Fills the settings from a validated configuration that includes tps_admin_cfg_keys (string
 * pointers borrowed from cfg). The CSRF key file is read into key (key_size >= 64); the caller
 * wipes it. TPS_OK or TPS_ECONFIG. */
enum tps_rc tps_admin_settings_from_cfg(const struct cmn_cfg *cfg, struct tps_admin_settings *s,
                                        uint8_t *key, size_t key_size, char *err,
                                        size_t errlen);

/* ---- pure helpers, exposed for tests ---- */

/* CSRF token bound to a certificate fingerprint: "<expiry>.<hex HMAC-SHA256>". [out] out
 * (out_size >= 96). */
enum tps_rc tps_admin_csrf_make(const struct tps_admin *a, const char *fingerprint, long long now,
                                char *out, size_t out_size);
/* True when token is a valid, unexpired token for fingerprint (constant-time compare). */
bool tps_admin_csrf_check(const struct tps_admin *a, const char *fingerprint, long long now,
                          const char *token);

/* Paging: clamps a requested start/size (either may be NULL: defaults). TPS_EINVAL for a
 * non-decimal value; size is clamped to 1..max_page. */
enum tps_rc tps_admin_page_parse(const struct tps_admin *a, const char *start, const char *size,
                                 unsigned *out_start, unsigned *out_size);

/* Status names accepted by the API ("ACTIVE", "SUSPENDED", ...) and their labels. */
const char *tps_admin_status_label(enum tps_token_status s);

/* The statuses an agent may move a token to from `from` (the agent table of tokendb §1.7).
 * [out] out[0..*n) (out has room for 8). */
void tps_admin_next_states(const struct tps_admin *a, enum tps_token_status from,
                           enum tps_token_status *out, size_t *n);

#endif
