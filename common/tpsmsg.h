/* common/tpsmsg.h - the TPS message codec (tps-protocol §1.3-§2.3, §4.1): message types,
 * operations and END_OP status codes, strict bounded parsing of `name=value&...` bodies,
 * typed accessors, Begin Op extensions, byte-exact builders, and the `s=` stream framer. */
#ifndef CMN_TPSMSG_H
#define CMN_TPSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rc.h"

/* msg_type values (§2.1). */
enum cmn_tps_msg_type {
    CMN_TPS_MSG_NONE = 0, /* not a wire value: "no message" */
    CMN_TPS_MSG_BEGIN_OP = 2,
    CMN_TPS_MSG_LOGIN_REQUEST = 3,
    CMN_TPS_MSG_LOGIN_RESPONSE = 4,
    CMN_TPS_MSG_SECUREID_REQUEST = 5,
    CMN_TPS_MSG_SECUREID_RESPONSE = 6,
    CMN_TPS_MSG_ASQ_REQUEST = 7,
    CMN_TPS_MSG_ASQ_RESPONSE = 8,
    CMN_TPS_MSG_TOKEN_PDU_REQUEST = 9,
    CMN_TPS_MSG_TOKEN_PDU_RESPONSE = 10,
    CMN_TPS_MSG_NEW_PIN_REQUEST = 11,
    CMN_TPS_MSG_NEW_PIN_RESPONSE = 12,
    CMN_TPS_MSG_END_OP = 13,
    CMN_TPS_MSG_STATUS_UPDATE_REQUEST = 14,
    CMN_TPS_MSG_STATUS_UPDATE_RESPONSE = 15,
    CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST = 16,
    CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE = 17,
};

/* `operation` values (§2.1). 0 is what our server echoes for an unknown operation (§8). */
enum cmn_tps_op {
    CMN_TPS_OP_UNKNOWN = 0,
    CMN_TPS_OP_ENROLL = 1,
    CMN_TPS_OP_UNBLOCK = 2,
    CMN_TPS_OP_RESET_PIN = 3,
    CMN_TPS_OP_RENEW = 4,
    CMN_TPS_OP_FORMAT = 5,
};

/* END_OP `result` (§2.2). */
enum cmn_tps_result {
    CMN_TPS_RESULT_SUCCESS = 0,
    CMN_TPS_RESULT_FAILURE = 1,
};

/* END_OP `message` status codes (§4.1; C++ names without the STATUS_ERROR_ prefix, Java name
 * in the comment where it differs). Our server avoids 44-46 (ESC mislabels them). */
enum cmn_tps_status {
    CMN_TPS_STATUS_NO_ERROR = 0,
    CMN_TPS_STATUS_SNAC = 1, /* message encoding/decoding error; generic failure */
    CMN_TPS_STATUS_SEC_INIT_UPDATE = 2,
    CMN_TPS_STATUS_CREATE_CARDMGR = 3,
    CMN_TPS_STATUS_MAC_RESET_PIN_PDU = 4,
    CMN_TPS_STATUS_MAC_CERT_PDU = 5,
    CMN_TPS_STATUS_MAC_LIFESTYLE_PDU = 6, /* Java: MAC_LIFECYCLE_PDU */
    CMN_TPS_STATUS_MAC_ENROLL_PDU = 7,
    CMN_TPS_STATUS_READ_OBJECT_PDU = 8, /* Java: CANNOT_PERFORM_OPERATION */
    CMN_TPS_STATUS_BAD_STATUS = 9,
    CMN_TPS_STATUS_CA_RESPONSE = 10,
    CMN_TPS_STATUS_READ_BUFFER_OVERFLOW = 11,
    CMN_TPS_STATUS_TOKEN_RESET_PIN_FAILED = 12,
    CMN_TPS_STATUS_CONNECTION = 13,
    CMN_TPS_STATUS_LOGIN = 14,
    CMN_TPS_STATUS_DB = 15,
    CMN_TPS_STATUS_TOKEN_DISABLED = 16, /* Java: UNKNOWN_TOKEN */
    CMN_TPS_STATUS_SECURE_CHANNEL = 17,
    CMN_TPS_STATUS_MISCONFIGURATION = 18,
    CMN_TPS_STATUS_UPGRADE_APPLET = 19,
    CMN_TPS_STATUS_KEY_CHANGE_OVER = 20,
    CMN_TPS_STATUS_EXTERNAL_AUTH = 21,
    CMN_TPS_STATUS_DEFAULT_TOKENTYPE_NOT_FOUND = 22,        /* Java: MAPPING_RESOLVER_FAILED */
    CMN_TPS_STATUS_DEFAULT_TOKENTYPE_PARAMS_NOT_FOUND = 23, /* Java: ..._PARAMS_NOT_FOUND */
    CMN_TPS_STATUS_PUBLISH = 24,
    CMN_TPS_STATUS_LDAP_CONN = 25,
    CMN_TPS_STATUS_DISABLED_TOKEN = 26,
    CMN_TPS_STATUS_NOT_PIN_RESETABLE = 27,
    CMN_TPS_STATUS_CONN_LOST = 28,
    CMN_TPS_STATUS_CREATE_TUS_TOKEN_ENTRY = 29,
    CMN_TPS_STATUS_NO_SUCH_TOKEN_STATE = 30,
    CMN_TPS_STATUS_NO_SUCH_LOST_REASON = 31,
    CMN_TPS_STATUS_UNUSABLE_TOKEN_KEYCOMPROMISE = 32,
    CMN_TPS_STATUS_INACTIVE_TOKEN_NOT_FOUND = 33,
    CMN_TPS_STATUS_HAS_AT_LEAST_ONE_ACTIVE_TOKEN = 34,
    CMN_TPS_STATUS_CONTACT_ADMIN = 35, /* Java: TOKEN_TERMINATED */
    CMN_TPS_STATUS_RECOVERY_IS_PROCESSED = 36, /* internal, never sent */
    CMN_TPS_STATUS_RECOVERY_FAILED = 37,       /* Java also: RENEWAL_FAILED */
    CMN_TPS_STATUS_NO_OPERATION_ON_LOST_TOKEN = 38,
    CMN_TPS_STATUS_KEY_ARCHIVE_OFF = 39,
    CMN_TPS_STATUS_NO_TKS_CONNID = 40,
    CMN_TPS_STATUS_UPDATE_TOKENDB_FAILED = 41,
    CMN_TPS_STATUS_REVOKE_CERTIFICATES_FAILED = 42,
    CMN_TPS_STATUS_NOT_TOKEN_OWNER = 43,
    CMN_TPS_STATUS_RENEWAL_IS_PROCESSED = 44, /* internal, never sent */
    CMN_TPS_STATUS_RENEWAL_FAILED = 45,       /* Java: CANNOT_ESTABLISH_COMMUNICATION */
    CMN_TPS_STATUS_SYMKEY_256_UPGRADE = 46,   /* Java only */
};
#define CMN_TPS_STATUS_MAX 46

/* Returns the message type's name ("BEGIN_OP", ...) or "UNKNOWN". Never NULL. */
const char *cmn_tps_msg_type_name(int type);
/* Returns the operation's name ("enroll", "unblock", "reset_pin", "renew", "format") or
 * "unknown". Never NULL. */
const char *cmn_tps_op_name(int op);
/* Returns the status code's name without prefix ("NO_ERROR", "LOGIN", ...) or "UNKNOWN". */
const char *cmn_tps_status_name(int status);

/* Limits (§1.3, §1.5). */
#define CMN_TPSMSG_DEFAULT_MAX 9999 /* default max body length (tps.connection.maxMessageSize) */
#define CMN_TPSMSG_HARD_MAX 99999   /* largest body a 5-digit `s=` can announce */
#define CMN_TPSMSG_MAX_PAIRS 50     /* pairs per message, duplicates included */
#define CMN_TPSMSG_ERR_MAX 160      /* size of the error text buffers */

/* One name=value pair of a parsed message. Both point into the message's own copy of the
 * body and are NUL-terminated; `value` is still encoded (raw wire text) and never empty. */
struct cmn_tpsmsg_pair {
    const char *name;
    const char *value;
    size_t value_len;
};

/* A parsed message. Owned by the caller: cmn_tpsmsg_init() before first use,
 * cmn_tpsmsg_cleanup() after (the body copy is wiped, since it may hold a password or PIN).
 * Not thread-safe; one thread per message. */
struct cmn_tpsmsg {
    int type;     /* msg_type, a value of enum cmn_tps_msg_type (2..17) after a good parse */
    char *text;   /* owned copy of the body with NULs in place of '=' and '&' */
    size_t text_len;
    struct cmn_tpsmsg_pair pairs[CMN_TPSMSG_MAX_PAIRS]; /* distinct names, last value wins */
    size_t npairs;
    char err[CMN_TPSMSG_ERR_MAX]; /* why the last call on this message failed, "" otherwise */
};

void cmn_tpsmsg_init(struct cmn_tpsmsg *m);
/* Frees and wipes the body copy; the message is empty and reusable. */
void cmn_tpsmsg_cleanup(struct cmn_tpsmsg *m);

/* Parses a message body (the bytes after "s=<len>&"), per §1.3: split on '&', each pair at
 * its first '='; pairs without '=', with an empty name, and the pair `s` are skipped; an empty
 * value counts as absent; on duplicates the last wins. Requires msg_type, an integer in 2..17.
 * `max` is the largest accepted body (0 means CMN_TPSMSG_DEFAULT_MAX). [in] body, [out] m
 * (previous contents released). Returns CMN_OK; CMN_ETOOBIG (body longer than max),
 * CMN_EPROTO (NUL byte, more than 50 pairs, msg_type missing/bad), CMN_ENOMEM. On failure
 * m->err names what is wrong, e.g. "msg_type missing". */
enum cmn_rc cmn_tpsmsg_parse(struct cmn_tpsmsg *m, const uint8_t *body, size_t len, size_t max);

/* Parses one whole framed message "s=<len>&<body>" as a client receives it in one chunk
 * (§1.3: clients frame by chunk). The `s=` value must be 1-5 digits and equal the body
 * length. Same codes as cmn_tpsmsg_parse(); CMN_EPROTO for a bad or mismatching prefix. */
enum cmn_rc cmn_tpsmsg_parse_framed(struct cmn_tpsmsg *m, const uint8_t *msg, size_t len,
                                    size_t max);

/* Raw (still encoded) value of `name` (case-sensitive), or NULL when absent or empty.
 * Borrowed from m until its next parse or cleanup. */
const char *cmn_tpsmsg_raw(const struct cmn_tpsmsg *m, const char *name);

/* Integer value of `name` per §1.3: leading decimal digits; a CR, LF or space after them ends
 * the number and the rest is ignored (the C++ End Op quirk, §8); anything else is an error.
 * Range [0, max]. [out] v. CMN_ENOTFOUND (absent), CMN_EPROTO (not a number),
 * CMN_ETOOBIG (> max); m->err says which field and why. */
enum cmn_rc cmn_tpsmsg_get_uint(struct cmn_tpsmsg *m, const char *name, unsigned long max,
                                unsigned long *v);

/* Decoded value of `name` (strict §1.4 decoding), appended to out as text (out->data is
 * NUL-terminated after; use a secret buffer for password and PIN fields).
 * CMN_ENOTFOUND, CMN_EPROTO (bad % sequence), CMN_ETOOBIG (out->max), CMN_ENOMEM. */
enum cmn_rc cmn_tpsmsg_get_str(struct cmn_tpsmsg *m, const char *name, struct cmn_buf *out);

/* Decoded value of `name` into caller memory. [out] out, out_len.
 * CMN_ENOTFOUND, CMN_EPROTO, CMN_ETOOBIG (does not fit out_size). */
enum cmn_rc cmn_tpsmsg_get_bytes(struct cmn_tpsmsg *m, const char *name, uint8_t *out,
                                 size_t out_size, size_t *out_len);

/* pdu_data of a TOKEN_PDU request or response, decoded, checked against pdu_size (§2.2):
 * CMN_EPROTO when either field is missing, pdu_size is not a number, the lengths differ
 * ("pdu_size 5 does not match decoded pdu_data length 4"), or - for type 10 - the answer is
 * shorter than the 2 status bytes. CMN_ETOOBIG when it does not fit out_size. */
enum cmn_rc cmn_tpsmsg_get_pdu(struct cmn_tpsmsg *m, uint8_t *out, size_t out_size,
                               size_t *out_len);

/* ---- Begin Op extensions (§2.2, §2.3) ---- */

#define CMN_TPSEXT_MAX 32 /* distinct extensions kept; more is an error */

struct cmn_tpsext_item {
    const char *name;  /* NUL-terminated, non-empty */
    const char *value; /* NUL-terminated, may be "" ("name=" present with an empty value) */
};

/* Parsed extensions. cmn_tpsext_init() first, cmn_tpsext_cleanup() after. */
struct cmn_tpsext {
    char *text;      /* owned decoded blob with NULs */
    size_t text_len; /* bytes allocated for text, minus its final NUL */
    struct cmn_tpsext_item items[CMN_TPSEXT_MAX];
    size_t n;
    char err[CMN_TPSMSG_ERR_MAX];
};

void cmn_tpsext_init(struct cmn_tpsext *e);
void cmn_tpsext_cleanup(struct cmn_tpsext *e);

/* Parses the raw (encoded) `extensions` value: decodes it once (lenient: a stray '%' stands
 * for itself, which copes with tpsclient's "%%26", §7.3), splits on '&', each pair at its first
 * '='; inner values are not decoded again; empty pairs, pairs without '=' and pairs with an
 * empty name are skipped; duplicates: last wins. raw may be NULL (no extensions).
 * CMN_EPROTO (more than CMN_TPSEXT_MAX, NUL byte), CMN_ETOOBIG (> 4096 bytes), CMN_ENOMEM. */
enum cmn_rc cmn_tpsext_parse(struct cmn_tpsext *e, const char *raw);

/* Value of extension `name` (case-sensitive: tokenType, statusUpdate, ...) or NULL. */
const char *cmn_tpsext_get(const struct cmn_tpsext *e, const char *name);
/* True when extension `name` has the value "true" (case-insensitive) - statusUpdate (§2.3). */
bool cmn_tpsext_is_true(const struct cmn_tpsext *e, const char *name);
/* True when extension `name` is present (any value) - extendedLoginRequest (§2.3). */
bool cmn_tpsext_has(const struct cmn_tpsext *e, const char *name);

/* Appends "n1=v1&n2=v2..." (the decoded blob, no trailing '&') for the items to out, ready for
 * cmn_tpsmsg_build_begin_op(). Names must be non-empty and free of '&' and '=', values free of
 * '&': CMN_EINVAL otherwise. */
enum cmn_rc cmn_tpsext_join(struct cmn_buf *out, const struct cmn_tpsext_item *items,
                            size_t n);

/* ---- Builders: each appends one framed message "s=<len>&msg_type=<t>&..." to out ----
 * Field order follows the examples of §9; encodings follow §1.4 (pdu_data of a request all
 * %XX; free text and card answers form-encoded; new_pin, next_task_name, integers raw).
 * All return CMN_OK, CMN_EINVAL (argument out of its domain, said in the function comment),
 * CMN_ETOOBIG (the body would exceed CMN_TPSMSG_HARD_MAX or out->max), CMN_ENOMEM. On failure
 * out is unchanged. Secrets passed in are wiped from internal scratch memory. */

/* 2: operation, then extensions = form encoding of `ext_blob` (decoded "n=v&..." text, may be
 * NULL or "" for none). */
enum cmn_rc cmn_tpsmsg_build_begin_op(struct cmn_buf *out, int op, const char *ext_blob);
/* 3: invalid_pw, blocked (each 0 or 1). */
enum cmn_rc cmn_tpsmsg_build_login_request(struct cmn_buf *out, bool invalid_pw, bool blocked);
/* 4: screen_name, password, form-encoded (NULL = field omitted). */
enum cmn_rc cmn_tpsmsg_build_login_response(struct cmn_buf *out, const char *screen_name,
                                            const char *password);
/* 5: pin_required, next_value (each 0 or 1, raw). */
enum cmn_rc cmn_tpsmsg_build_secureid_request(struct cmn_buf *out, bool pin_required,
                                              bool next_value);
/* 6: value, pin, form-encoded (NULL = omitted). */
enum cmn_rc cmn_tpsmsg_build_secureid_response(struct cmn_buf *out, const char *value,
                                               const char *pin);
/* 7: question (form-encoded). */
enum cmn_rc cmn_tpsmsg_build_asq_request(struct cmn_buf *out, const char *question);
/* 8: answer (form-encoded). */
enum cmn_rc cmn_tpsmsg_build_asq_response(struct cmn_buf *out, const char *answer);
/* 9: pdu_size, pdu_data all %XX. n in 1..261 (§1.5), else CMN_EINVAL. */
enum cmn_rc cmn_tpsmsg_build_token_pdu_request(struct cmn_buf *out, const uint8_t *apdu,
                                               size_t n);
/* 10: pdu_size, pdu_data form-encoded (as ESC and tpsclient). n in 2..258, else CMN_EINVAL. */
enum cmn_rc cmn_tpsmsg_build_token_pdu_response(struct cmn_buf *out, const uint8_t *rapdu,
                                                size_t n);
/* 11: minimum_length, maximum_length (min <= max, else CMN_EINVAL). */
enum cmn_rc cmn_tpsmsg_build_new_pin_request(struct cmn_buf *out, unsigned min_len,
                                             unsigned max_len);
/* 12: new_pin raw (§1.4). CMN_EINVAL for an empty PIN or one holding & = % + space, a
 * control or a non-ASCII byte. */
enum cmn_rc cmn_tpsmsg_build_new_pin_response(struct cmn_buf *out, const char *pin);
/* 13: operation, result, message. result 0/1, status 0..CMN_TPS_STATUS_MAX, op 0..5. */
enum cmn_rc cmn_tpsmsg_build_end_op(struct cmn_buf *out, int op, int result, int status);
/* 14: current_state 0..100, next_task_name raw ([A-Za-z0-9_.-] only, else CMN_EINVAL). */
enum cmn_rc cmn_tpsmsg_build_status_update_request(struct cmn_buf *out, unsigned state,
                                                   const char *task);
/* 15: current_state 0..100. */
enum cmn_rc cmn_tpsmsg_build_status_update_response(struct cmn_buf *out, unsigned state);

/* One required parameter of an EXTENDED_LOGIN_REQUEST (§2.2): travels form-encoded as
 * "id=<id>&name=<name>&desc=<desc>&type=<type>&option=<option>" (NULL fields as ""). */
struct cmn_tps_authparam {
    const char *id;   /* "UID", "PASSWORD" */
    const char *name; /* label */
    const char *desc; /* help text */
    const char *type; /* "string" or "password" */
    const char *option;
};

/* 16: invalid_pw, blocked, title, description (NULL = omitted), required_parameter0..n-1;
 * texts in Java's form encoding (cmn_pct_encode_java(): '.' '-' '*' '_' raw), as the Java TPS
 * sends them (§8; byte-exact with §9.2). n <= 40, id non-empty, else CMN_EINVAL. */
enum cmn_rc cmn_tpsmsg_build_ext_login_request(struct cmn_buf *out, bool invalid_pw,
                                               bool blocked, const char *title,
                                               const char *description,
                                               const struct cmn_tps_authparam *params, size_t n);

/* A name/value pair for cmn_tpsmsg_build_ext_login_response(). */
struct cmn_tps_kv {
    const char *name;
    const char *value;
};

/* 17: one pair per parameter, name raw ([A-Za-z0-9_.-], not msg_type/s), value form-encoded.
 * n <= 40, else CMN_EINVAL. */
enum cmn_rc cmn_tpsmsg_build_ext_login_response(struct cmn_buf *out, const struct cmn_tps_kv *kv,
                                                size_t n);

/* ---- Server-side stream framer (§1.3: servers frame by `s=`) ----
 * Feed it the de-chunked request bytes as they arrive, in any split; take complete messages
 * with cmn_tpsframer_next(). Not thread-safe. */
struct cmn_tpsframer {
    struct cmn_buf in; /* accumulated bytes not yet consumed */
    size_t max;        /* max body length */
    char err[CMN_TPSMSG_ERR_MAX];
};

/* max: largest accepted body, 1..CMN_TPSMSG_HARD_MAX (0 = CMN_TPSMSG_DEFAULT_MAX). */
void cmn_tpsframer_init(struct cmn_tpsframer *f, size_t max);
/* Frees and wipes the pending bytes. */
void cmn_tpsframer_cleanup(struct cmn_tpsframer *f);
/* Appends bytes. CMN_ETOOBIG when more than two maximal messages are pending (a client that
 * sends unsolicited data), CMN_ENOMEM. */
enum cmn_rc cmn_tpsframer_feed(struct cmn_tpsframer *f, const uint8_t *p, size_t n);
/* Extracts the next complete message into m and consumes its bytes.
 * CMN_OK: m holds a parsed message. CMN_ESHORT: need more bytes (nothing consumed).
 * CMN_EPROTO: bad prefix (not "s=", no digit, more than 5 digits, no '&' after them) or a
 * bad body; CMN_ETOOBIG: announced length above max. After an error the stream is unusable:
 * the server ends the operation (§4.2). f->err (prefix errors) or m->err (body errors)
 * says why; both are copied into f->err. */
enum cmn_rc cmn_tpsframer_next(struct cmn_tpsframer *f, struct cmn_tpsmsg *m);
/* Bytes pending (for a clean-shutdown check). */
size_t cmn_tpsframer_pending(const struct cmn_tpsframer *f);

#endif
