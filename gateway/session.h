/* gateway/session.h - one TPS session (tps-protocol §1-§4): the message loop over one chunked
 * HTTP exchange, the card it drives through TOKEN_PDUs, the secure channel, and the hooks to
 * the token DB and the authenticator. A session belongs to one worker thread for its life. */
#ifndef TPS_SESSION_H
#define TPS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/apdu.h"
#include "common/buf.h"
#include "common/scp.h"
#include "common/tpsmsg.h"
#include "gateway/gwerr.h"
#include "gateway/tks.h"

struct cmn_http_conn;
struct tps_config;
struct tps_tks;
struct fo_req;
struct tps_keychange_store;
struct tps_enroll_env;
struct tps_officer_worker;
struct ssl_st;

/* ---- hooks to the token DB and the authenticator (adapters in gateway/hooks.c) ---- */

/* What the DB knows of a token. */
struct tps_db_token {
    bool found;
    char status[32]; /* "FORMATTED", "ACTIVE", "UNFORMATTED", ... (tokendb §1.7) */
    char user[128];  /* tokenUserID, "" if none */
    char type[64];   /* token type (profile) */
};

/* The outcome of an operation the DB records (token entry + activity). */
struct tps_db_result {
    const char *op;   /* "format" */
    const char *cuid; /* 20 uppercase hex */
    const char *msn;
    const char *user; /* authenticated user, "" if none */
    const char *token_type;
    const char *applet_id; /* applet version now on the card */
    const char *key_info;  /* "0101" */
    const char *client_ip;
    const char *new_status; /* status the token enters on success */
    bool success;
    const char *message; /* activity text */
    const char *officer; /* the security officer acting on the card, "" or NULL: none */
};

struct tps_db_ops {
    /* Looks the token up. TPS_OK (out->found says whether it exists), TPS_EDB. */
    enum tps_rc (*token_get)(void *db, const char *cuid, struct tps_db_token *out, char *err,
                             size_t errlen);
    /* Checks that `from` -> `to` is an allowed operation transition (tokendb §1.7).
     * TPS_OK or TPS_EPOLICY. */
    enum tps_rc (*transition_ok)(void *db, const char *from, const char *to);
    /* Takes the per-token operation lease. TPS_OK, TPS_EBUSY (held elsewhere), TPS_EDB. */
    enum tps_rc (*lease)(void *db, const char *cuid, const char *op, char *err, size_t errlen);
    /* Releases the lease (best effort). */
    void (*unlease)(void *db, const char *cuid);
    /* Writes the token entry (on success) and the activity. TPS_OK, TPS_EDB. */
    enum tps_rc (*record)(void *db, const struct tps_db_result *r, char *err, size_t errlen);
    /* Key changeover (gateway/keychange.h): fills *out with the pending-key-version store of
     * the token read by token_get and leased by lease (valid until unlease). TPS_OK; TPS_EDB
     * when no token is read and leased. May be NULL: changeover without a record. */
    enum tps_rc (*keychange_store)(void *db, struct tps_keychange_store *out);
    /* Format with op.format.<type>.revokeCert: revokes every active certificate the token DB
     * holds for the token read by token_get at CA connector ca_conn with reason 0..6, and marks
     * each one revoked (revoked_on_hold for reason 6). req: the worker's libfailover handle; sid names the session. [out] *n:
     * how many were revoked. TPS_OK; TPS_EBACKEND (a revocation failed: err names the serial;
     * the ones before it stay revoked and recorded), TPS_ECONFIG (no such CA connector),
     * TPS_EDB. May be NULL. */
    enum tps_rc (*revoke_certs)(void *db, struct fo_req *req, const char *sid, const char *cuid,
                                const char *ca_conn, int reason, size_t *n, char *err,
                                size_t errlen);
};

struct tps_auth_ops {
    /* Authenticates uid/password against authenticator `auth_id`. TPS_OK, TPS_ELOGIN (wrong
     * credentials), TPS_EBACKEND (directory unreachable: err says why). */
    enum tps_rc (*check)(void *auth, const char *auth_id, const char *uid, const char *password,
                         char *err, size_t errlen);
};

/* Everything a session borrows from its worker. */
struct tps_env {
    const struct tps_config *cfg;    /* immutable snapshot */
    const struct tps_tks *tks;       /* connector `tks1` (or the type's tks.conn) */
    struct fo_req *fo;               /* this worker's libfailover handle */
    const struct tps_db_ops *db_ops; /* NULL: no token DB (tests of the protocol only) */
    void *db;                        /* this worker's DB handle */
    const struct tps_auth_ops *auth_ops;
    void *auth;                          /* this worker's authenticator handle */
    const struct tps_enroll_env *enroll; /* enroll and PIN reset backends of this worker
                                          * (gateway/enroll.h); NULL: operations 1 and 3
                                          * end with status 8 (protocol-only tests) */
    struct tps_officer_worker *officer;  /* officer-only token types (gateway/officer.h);
                                          * NULL: no staff directory, they are refused */
    const uint8_t *test_host_challenge;  /* tests only (spec vectors): fixed 8-byte challenge;
                                          * NULL in the daemon: random from the DRBG */
};

/* ---- the token as the session learns it ---- */

struct tps_card_info {
    bool have_cuid;
    uint8_t cuid[10];
    char cuid_hex[21];
    uint8_t msn[4];
    char msn_hex[9];
    uint8_t cardmgr_aid[16];
    size_t cardmgr_aid_len;
    bool have_status; /* GET STATUS answered */
    uint8_t proto_major, proto_minor, applet_major, applet_minor;
    bool have_applet; /* GET VERSION answered */
    uint32_t build_id;
    char applet_version[40];     /* "1.4.58768072" (Java style: lowercase hex build id) */
    int life_cycle;              /* GET LIFE CYCLE byte, -1 unknown */
    enum cmn_scp_proto gp_proto; /* from the GP probes */
    uint8_t key_info[3];         /* from the last INITIALIZE UPDATE */
    size_t key_info_len;
    char key_info_hex[8];
    char type[64]; /* resolved token type */
};

#define TPS_SID_LEN 16

struct tps_session {
    const struct tps_env *env;
    struct cmn_http_conn *http;
    char sid[TPS_SID_LEN + 1];
    char client_ip[64];
    struct cmn_tpsframer framer;
    int op; /* Begin Op operation */
    struct cmn_tpsext ext;
    bool status_updates;
    unsigned progress; /* last STATUS_UPDATE percentage sent */
    int end_status;    /* END_OP message for a failure; first failure wins */
    enum tps_rc fail_rc;
    char why[320];        /* what failed, for the log and the audit line */
    bool connection_dead; /* no END_OP can reach the client any more */
    struct tps_card_info tok;
    struct cmn_scp scp;
    bool channel_open;
    struct tps_tks_srvkg srvkg; /* keygen material of the open channel (serverKeygen): secret */
    char user[128];       /* authenticated user */
    struct ssl_st *ssl;   /* the TLS connection (borrowed), NULL over plain HTTP: the officer
                           * check reads the verified client certificate from it */
    char officer[128];    /* uid of the officer acting on the card (gateway/officer.h), "" */
    char last_sw_cmd[24]; /* name of the last command that got a bad SW */
};

/* Prepares a session over an HTTP exchange whose request head has been read and accepted
 * (POST, chunked). http is borrowed. The response head is not yet sent. */
void tps_session_init(struct tps_session *s, const struct tps_env *env, struct cmn_http_conn *http,
                      const char *client_ip);
/* Wipes keys and frees buffers. */
void tps_session_cleanup(struct tps_session *s);

/* Runs the whole operation: sends the 200 chunked response head, reads Begin Op, runs the
 * operation, sends END_OP (always while the client is connected, §4.2) and the last chunk.
 * Returns the operation's outcome (TPS_OK = END_OP result 0). */
enum tps_rc tps_session_run(struct tps_session *s);

/* ---- used by the processors (format.c, login.c, channel.c) ---- */

/* Records a failure with its END_OP status (the first one recorded wins) and a message.
 * Returns rc, so `return tps_session_fail(s, rc, 19, "...")` reads naturally. */
enum tps_rc tps_session_fail(struct tps_session *s, enum tps_rc rc, int status, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));
/* Forgets a recorded failure (a step that is allowed to fail and is handled). */
void tps_session_clear_fail(struct tps_session *s);
/* Sends one framed message (a chunk). */
enum tps_rc tps_session_send(struct tps_session *s, const struct cmn_buf *msg);
/* Receives the next message, which must be of type want (else TPS_EPROTO). [out] m. */
enum tps_rc tps_session_recv(struct tps_session *s, int want, struct cmn_tpsmsg *m);
/* STATUS_UPDATE pct/task and its answer, only when the client asked (statusUpdate=true);
 * percentages never go down. */
enum tps_rc tps_session_progress(struct tps_session *s, unsigned pct, const char *task);

/* Sends one APDU as a TOKEN_PDU and returns the card's answer. No wrapping. */
enum tps_rc tps_card_xfer(struct tps_session *s, const struct cmn_apdu *a, struct cmn_rapdu *r);
/* Wraps `plain` with the open secure channel (C-MAC, C-DEC at level 03) and sends it. */
enum tps_rc tps_card_xfer_secure(struct tps_session *s, const struct cmn_apdu *plain,
                                 struct cmn_rapdu *r);
/* SELECT by AID (Java: Le 00). [out] r. */
enum tps_rc tps_card_select(struct tps_session *s, const uint8_t *aid, size_t n,
                            struct cmn_rapdu *r);

/* Opens a secure channel on the selected application: INITIALIZE UPDATE (kv, ki) -> TKS
 * computeSessionKey -> card cryptogram checked in constant time -> EXTERNAL AUTHENTICATE at
 * the configured level. *sw_out (may be NULL) gets the INITIALIZE UPDATE status word, so a
 * caller can tell "key version absent" (6A88) from other failures. On failure the END_OP
 * status is recorded (17 secure channel, 21 external authenticate). */
enum tps_rc tps_channel_open(struct tps_session *s, uint8_t kv, uint8_t ki, uint16_t *sw_out);
/* Forgets the channel (after a SELECT the card has closed it). */
void tps_channel_close(struct tps_session *s);

/* Identification prologue (§3.1, Java order): select default / card manager, CPLC, CoolKey,
 * GET STATUS, GET VERSION. Fills s->tok. Status 17 on failure. */
enum tps_rc tps_prologue(struct tps_session *s);
/* Select CoolKey + GET VERSION (refreshes tok.applet_version / have_applet). */
enum tps_rc tps_read_applet_version(struct tps_session *s);
/* GP probes (§3.2 step 4): select card manager, GET DATA 0066 and 00E0 -> tok.gp_proto. */
enum tps_rc tps_probe_gp(struct tps_session *s);
/* Token type from the mapping resolver of op (§6.2). Status 18 when nothing matches. */
enum tps_rc tps_resolve_type(struct tps_session *s, const char *op);
/* LOGIN_REQUEST / EXTENDED_LOGIN_REQUEST with the retry rule of §4.2; s->user on success.
 * Status 14 when the user is not authenticated. */
enum tps_rc tps_login(struct tps_session *s, const char *op);
/* The format operation (§3.2). */
enum tps_rc tps_op_format(struct tps_session *s);

/* Formats bytes as uppercase hex into out (size >= 2n+1). */
void tps_hex(const uint8_t *p, size_t n, char *out);

#endif
