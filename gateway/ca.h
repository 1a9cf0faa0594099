/* gateway/ca.h - tpsgw's client of the Dogtag CA clones (backends §4, §6, §9): enrollment and
 * renewal (NON_IDEMPOTENT, reconciled by a lookup when the outcome is unknown), revoke and
 * unrevoke (CONDITIONAL, reconciled with getcert), getcert (IDEMPOTENT); revocation reasons
 * of token status changes (tokendb §1.7); the conn.ca<n>.* key table (backends §10). */
#ifndef TPS_CA_H
#define TPS_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "gateway/gwerr.h"
#include "gateway/tokendb.h"

struct fo_req;

/* The keys of CA connectors and of the enrollment routing that names them (backends §10,
 * tokendb §1.7). Merge into the gateway's table list. Patterns: conn.ca*.*, op.enroll.*. */
extern const struct cmn_cfg_key tps_ca_cfg_keys[];

#define TPS_CA_SERIAL_MAX 72  /* lower-case hex serial (up to 256 bits) + NUL */
#define TPS_CA_CLONE_MAX 280  /* "ca1 host:port" + NUL */
#define TPS_CA_MSG_MAX 768

/* RFC 5280 reason codes as the CA takes them (backends §4.3). */
enum tps_ca_reason {
    TPS_CA_REASON_UNSPECIFIED = 0,
    TPS_CA_REASON_KEY_COMPROMISE = 1,
    TPS_CA_REASON_CA_COMPROMISE = 2,
    TPS_CA_REASON_AFFILIATION_CHANGED = 3,
    TPS_CA_REASON_SUPERSEDED = 4,
    TPS_CA_REASON_CESSATION = 5,
    TPS_CA_REASON_CERTIFICATE_HOLD = 6,
};
/* "keyCompromise", ...; "unknown" for other values. Never NULL. */
const char *tps_ca_reason_name(int reason);

/* What a token status change does to the token's certificates (tokendb §1.7). */
enum tps_ca_action {
    TPS_CA_ACTION_NONE = 0,     /* leave the certificates alone */
    TPS_CA_ACTION_REVOKE = 1,   /* revoke with *reason */
    TPS_CA_ACTION_UNREVOKE = 2, /* take them off hold (SUSPENDED -> ACTIVE) */
};

/* Decides the action for a transition from -> to of a token of type token_type, for its
 * certificates of key type key_type ("signing", "encryption"...), from the keys
 * op.enroll.<type>.keyGen.<keyType>.recovery.<tokenReason>.revokeCert[.reason] (defaults as
 * shipped: destroyed 0, keyCompromise 1, onHold 6, terminated 1). cfg may be NULL (defaults).
 * [out] *act, *reason (0..6; left 0 unless REVOKE). TPS_OK; TPS_EINVAL for TPS_TOKEN_UNKNOWN
 * or a reason key outside 0..6. Thread-safe. */
enum tps_rc tps_ca_status_action(const struct cmn_cfg *cfg, const char *token_type,
                                 const char *key_type, enum tps_token_status from,
                                 enum tps_token_status to, enum tps_ca_action *act,
                                 int *reason);

/* One CA connector (conn.<id>.*): its clones (a libfailover list), a one-clone list per clone
 * for reconciliation, servlet paths and deadlines. Immutable after creation; any number of
 * threads may call through it, each with its own struct fo_req. */
struct tps_ca;

/* Creates connector `id` ("ca1") from a validated configuration that includes
 * tps_ca_cfg_keys. [out] *out, freed with tps_ca_free(). TPS_ECONFIG (err names the key),
 * TPS_ENOMEM. Call before worker threads start (libcurl setup). */
enum tps_rc tps_ca_new(const struct cmn_cfg *cfg, const char *id, struct tps_ca **out,
                       char *err, size_t errlen);
/* NULL does nothing. Only after every call through it has returned. */
void tps_ca_free(struct tps_ca *ca);
/* The connector's failover list of every clone (for /metrics). */
const struct fo_list *tps_ca_list(const struct tps_ca *ca);
/* "ca1" (borrowed). */
const char *tps_ca_id(const struct tps_ca *ca);

/* How a call ended. Every function below returns TPS_OK exactly when outcome is
 * TPS_CA_DONE. */
enum tps_ca_outcome {
    TPS_CA_DONE = 0,     /* the CA did it: certificate in the result, or status changed */
    TPS_CA_REJECTED = 1, /* a clone answered and refused (Status/status != 0): final */
    TPS_CA_PENDING = 2,  /* enrollment answered Status=2: request_id exists, no certificate */
    TPS_CA_NOT_DONE = 3, /* certainly nothing happened (no clone received the request, or the
                          * clone that did proved it has no certificate): the caller may retry */
    TPS_CA_UNKNOWN = 4,  /* may have happened and could not be confirmed: never retry
                          * automatically; record key_hash + clone and reconcile later with
                          * tps_ca_find_by_key() */
    TPS_CA_AUTH = 5,     /* the CA refused our credentials (HTTP 401/403, unauthorized) */
};
/* "done", "rejected", ... Never NULL. */
const char *tps_ca_outcome_name(enum tps_ca_outcome o);

/* What a call returns. tps_ca_result_init() before, tps_ca_result_cleanup() after (also on
 * failure). Not thread-safe; one per call. */
struct tps_ca_result {
    enum tps_ca_outcome outcome;
    bool reconciled;          /* the answer comes from a lookup after an unknown outcome or a
                               * resend, not from the call itself */
    long app_status;          /* XML Status / form status of the answer; -1 when none */
    char clone[TPS_CA_CLONE_MAX];  /* "ca1 127.0.0.1:9443": who answered / may have received */
    char msg[TPS_CA_MSG_MAX];      /* what failed, on which clone, why: "" when DONE */
    char request_id[32];           /* CA request id (enrollment, renewal), "" if none */
    /* The certificate (enroll, renew, getcert, find_by_key). */
    uint8_t *cert;                 /* DER, owned (malloc): freed by cleanup */
    size_t cert_len;
    char serial[TPS_CA_SERIAL_MAX]; /* lower-case hex, no "0x" */
    char subject[512];              /* RFC 2253 text of the certificate's subject */
    int revocation_reason;          /* getcert, revoke, unrevoke: -1 not revoked, else 0..6 */
    /* Enrollment/renewal: SHA-256 (lower-case hex) of the DER SubjectPublicKeyInfo sent, to
     * record with an UNKNOWN outcome. */
    char key_hash[65];
};
void tps_ca_result_init(struct tps_ca_result *r);
void tps_ca_result_cleanup(struct tps_ca_result *r);

/* An enrollment (backends §4.1). Strings borrowed for the call. */
struct tps_ca_enroll_req {
    const char *profile_id;   /* op.enroll.<type>.keyGen.<keyType>.ca.profileId; required */
    const char *cuid;         /* token CUID, hex (sent as tokencuid); required */
    const char *user_id;      /* sent as screenname (escaped); required */
    const char *token_type;   /* sent as tokentype; NULL = absent */
    const char *subject;      /* DN override; NULL = absent */
    const uint8_t *spki;      /* DER SubjectPublicKeyInfo of the new key; required */
    size_t spki_len;
    const char *sid;          /* session id for logs; may be NULL */
};

/* Enrolls: one NON_IDEMPOTENT call, never sent to a second clone once one may have received
 * it. On an unknown outcome it waits conn.<id>.reconcileDelay and looks the key's
 * certificate up (tps_ca_find_by_key) on the clone that may have received the request, then
 * on the others: found -> DONE (reconciled); that clone proves there is none -> NOT_DONE;
 * otherwise UNKNOWN. The certificate is checked: it parses, carries the key sent and the
 * serial the CA named. [out] out. TPS_OK (DONE), TPS_EBACKEND (other outcomes; out->msg),
 * TPS_EINVAL (missing field, bad key), TPS_ENOMEM. Thread-safe with distinct req. */
enum tps_rc tps_ca_enroll(struct tps_ca *ca, struct fo_req *req,
                          const struct tps_ca_enroll_req *in, struct tps_ca_result *out);

/* A renewal (backends §4.2). */
struct tps_ca_renew_req {
    const char *profile_id;   /* op.enroll.<type>.renewal.<keyType>.ca.profileId; required */
    const uint8_t *old_cert;  /* DER of the certificate to renew (serial and key from it) */
    size_t old_cert_len;
    const char *sid;
};
/* Renews like tps_ca_enroll (same class and reconciliation; the lookup ignores the old
 * certificate and succeeds only if exactly one other certificate carries the key). */
enum tps_rc tps_ca_renew(struct tps_ca *ca, struct fo_req *req, const struct tps_ca_renew_req *in,
                         struct tps_ca_result *out);

/* Retrieves certificate `serial` (hex, optional "0x"; backends §4.5). IDEMPOTENT.
 * out->revocation_reason tells whether it is revoked. TPS_OK, TPS_EBACKEND (REJECTED: no such
 * certificate; NOT_DONE: no clone answered), TPS_EINVAL, TPS_ENOMEM. */
enum tps_rc tps_ca_getcert(struct tps_ca *ca, struct fo_req *req, const char *sid,
                           const char *serial, struct tps_ca_result *out);

/* Revokes `serial` with `reason` 0..6 (backends §4.3). CONDITIONAL: when the call failed after
 * possible delivery, was resent, or answered status 2/3, the state is read back with getcert:
 * revoked with that reason (or a permanent reason while a hold was asked) -> DONE, reconciled.
 * A failure leaves out->outcome != DONE: the caller must then not change the token record
 * (backends §8.5, #3675). Codes as tps_ca_getcert. */
enum tps_rc tps_ca_revoke(struct tps_ca *ca, struct fo_req *req, const char *sid,
                          const char *serial, int reason, struct tps_ca_result *out);

/* Takes `serial` off hold (backends §4.4). CONDITIONAL, reconciled with getcert (not
 * revoked -> DONE). */
enum tps_rc tps_ca_unrevoke(struct tps_ca *ca, struct fo_req *req, const char *sid,
                            const char *serial, struct tps_ca_result *out);

/* Looks up the certificate carrying public key spki (DER SubjectPublicKeyInfo), ignoring
 * exclude_serial (hex, may be NULL), through conn.<id>.servlet.findByKey (an extension of
 * ours, see docs/backends.md). clone_index: the clone to ask first (-1: list order); the
 * others follow. DONE with the certificate when exactly one matches; NOT_DONE when the
 * first-asked clone answered "none" (only that clone's answer counts: a replica may lag);
 * UNKNOWN otherwise (no clone could answer, the path is not configured, or several match).
 * IDEMPOTENT. */
enum tps_rc tps_ca_find_by_key(struct tps_ca *ca, struct fo_req *req, const char *sid,
                               const uint8_t *spki, size_t spki_len, const char *exclude_serial,
                               int clone_index, struct tps_ca_result *out);

/* Response parsers, exposed for tests and fuzzing. They never trust the input: every size is
 * capped and every field checked. */

/* Parses an enrollment/renewal/lookup answer (`<XMLResponse>`, backends §4.1). With Status 0
 * it requires exactly one Request (Id, serialno, b64) unless allow_many, in which case it
 * keeps the single Request whose serial is not exclude_serial and sets *matches to the count
 * of such requests (0 allowed). [out] out->app_status, request_id, msg (Error text), cert,
 * serial, subject. TPS_OK when the document is well-formed and complete for its Status;
 * TPS_EPROTO otherwise (out->msg says why); TPS_ENOMEM. */
enum tps_rc tps_ca_parse_enroll(const char *body, size_t len, bool allow_many,
                                const char *exclude_serial, unsigned *matches,
                                struct tps_ca_result *out);
/* Parses a displayBySerial answer (`<xml><header>...`, backends §4.5): certChainBase64 (one
 * certificate, or a PKCS#7 chain holding it), serialNumber, revocationReason. TPS_OK,
 * TPS_ENOTFOUND (well-formed but no certChainBase64), TPS_EPROTO, TPS_ENOMEM. */
enum tps_rc tps_ca_parse_getcert(const char *body, size_t len, struct tps_ca_result *out);
/* Parses a revoke/unrevoke answer (form fields status=, error= or errorString=; backends
 * §4.3). [out] *status, errtext (sanitised, may be NULL). TPS_OK when status is present and
 * decimal; TPS_EPROTO otherwise. *unauthorized is set when error=unauthorized. */
enum tps_rc tps_ca_parse_status(const char *body, size_t len, long *status, bool *unauthorized,
                                char *errtext, size_t cap);

/* Helpers shared with gateway/kra.c. */

/* Decodes base64 as backends §0 "B64" says: CR, LF, TAB and blanks ignored, missing '='
 * padding tolerated; anything else is an error. Appends to out (capped by out->max).
 * TPS_OK, TPS_EPROTO, TPS_ETOOBIG, TPS_ENOMEM. */
enum tps_rc tps_ca_b64_decode(const char *s, size_t n, struct cmn_buf *out);
/* Appends the base64 of in[0..n), no line breaks, with padding. */
enum tps_rc tps_ca_b64_append(struct cmn_buf *out, const uint8_t *in, size_t n);
/* Finds `name` in a form body (split on '&', then at the first '=': backends §1).
 * [out] *v, *vlen point into body. false when absent. */
bool tps_ca_form_field(const char *body, size_t len, const char *name, const char **v,
                       size_t *vlen);
/* Copies text into out[0..cap) keeping printable ASCII and replacing every other byte by '?'
 * (texts of a backend go into messages and logs). Always NUL-terminates (cap > 0). */
void tps_ca_sanitize(const char *s, size_t n, char *out, size_t cap);

#endif
