/* tests/sim/sim.h - pki-sim, the Dogtag CA/KRA/TKS double: the types its parts share (form
 * bodies, responses, authenticated callers, the per-role handlers). */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/crypto.h"
#include "common/rc.h"

#define SIM_FORM_MAX 64            /* parameters per request body */
#define SIM_BODY_MAX (256 * 1024)  /* bytes of a request body */
#define SIM_RESP_MAX (256 * 1024)  /* bytes of a response body */

enum sim_role {
    SIM_ROLE_CA = 0,
    SIM_ROLE_KRA = 1,
    SIM_ROLE_TKS = 2,
};

/* One decoded form parameter; name and value are NUL-terminated (the value may also hold
 * NUL bytes: use len). */
struct sim_param {
    char *name;
    char *val;
    size_t len;
};

/* A decoded application/x-www-form-urlencoded body: split on '&', then on the first '='
 * (a pair without '=' has an empty value), both sides form-decoded. Owned; sim_form_free(). */
struct sim_form {
    struct sim_param p[SIM_FORM_MAX];
    size_t n;
};

/* Parses body[0..n). CMN_ETOOBIG (more than SIM_FORM_MAX pairs), CMN_ENOMEM. Lenient on bad
 * %-sequences (kept literally), as servlet containers are. [out] f (free it even on failure). */
enum cmn_rc sim_form_parse(const char *body, size_t n, struct sim_form *f);
void sim_form_free(struct sim_form *f);
/* First parameter called name, or NULL. Borrowed from f. */
const struct sim_param *sim_form_get(const struct sim_form *f, const char *name);
/* The first of two names (current and legacy spelling) that is present, or NULL. */
const struct sim_param *sim_form_get2(const struct sim_form *f, const char *a, const char *b);

/* Decodes the "HASH" encoding of backends §0 as JSS SpecialDecode does: "#XX" -> byte,
 * '+' -> 0x20, any other character -> its own code. [out] out[0..*len). CMN_EINVAL on a '#'
 * not followed by two hex digits, CMN_ETOOBIG if out_size is too small. */
enum cmn_rc sim_hash_decode(const char *s, size_t n, uint8_t *out, size_t out_size,
                            size_t *len);
/* Appends the "HASH" encoding (every byte "#XX", upper case) of in[0..n) to out. */
enum cmn_rc sim_hash_encode(struct cmn_buf *out, const uint8_t *in, size_t n);

/* Base64 without line breaks (OpenSSL EVP_EncodeBlock) appended to out. */
enum cmn_rc sim_b64_append(struct cmn_buf *out, const uint8_t *in, size_t n);
/* Decodes base64, ignoring CR, LF, blanks, and tolerating missing '=' padding.
 * [out] out (appended). CMN_EINVAL on bad input. */
enum cmn_rc sim_b64_decode(const char *s, size_t n, struct cmn_buf *out);

/* An authenticated caller: a configured agent (pkisim.agent.<n>.*) whose certificate the TLS
 * client presented. */
struct sim_user {
    char id[128];
    char groups[512]; /* comma-separated group names */
    uint8_t fp[32];   /* SHA-256 of the certificate DER */
};
/* True when u is a member of group (exact name). */
bool sim_user_in_group(const struct sim_user *u, const char *group);

/* A response a handler builds. The server writes it, with Content-Length. */
struct sim_resp {
    int http;           /* HTTP status, 200 unless the servlet "throws" */
    const char *ctype;  /* static string */
    struct cmn_buf body;
    char op[32];        /* operation name for the request log ("enrollment", "scp01", ...) */
    char note[256];     /* key=value fields for the request log (no secrets) */
};
void sim_resp_init(struct sim_resp *r);
void sim_resp_cleanup(struct sim_resp *r);
/* An HTTP error page (the servlet threw): status http, text/html. */
void sim_resp_error_page(struct sim_resp *r, int http, const char *why);
/* Appends "k=v" to the log note (space-separated). */
void sim_resp_note(struct sim_resp *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The configuration keys every role accepts (pki_sim.c) and each role adds. */
extern const struct cmn_cfg_key sim_common_keys[];
extern const struct cmn_cfg_key sim_tks_keys[];
extern const struct cmn_cfg_key sim_ca_keys[];
extern const struct cmn_cfg_key sim_kra_keys[];

/* --- TKS (tks.c) --- */
struct sim_tks;
/* Builds the TKS from the config (developer keys, mappings, shared secrets, transport cert,
 * PKCS#11 module). errs gets every problem. [out] *out, sim_tks_free(). CMN_ECONFIG. */
enum cmn_rc sim_tks_new(const struct cmn_cfg *cfg, struct cmn_buf *errs, struct sim_tks **out);
void sim_tks_free(struct sim_tks *t);
/* Where the TKS finds master keys and shared secrets by token and label: the PKCS#11 module
 * by default; unit tests install their own. [out] key (the TKS wipes it after use). */
typedef enum cmn_rc sim_tks_keyfn(void *arg, const char *token, const char *label,
                                  struct cmn_key *key);
void sim_tks_set_keyfn(struct sim_tks *t, sim_tks_keyfn *fn, void *arg);
/* Handles one request to any TKS path (backends §2.1: the operation is chosen from the
 * parameters). u: the authenticated caller. Thread-safe. */
void sim_tks_handle(struct sim_tks *t, const struct sim_user *u, const char *path,
                    const struct sim_form *f, struct sim_resp *r);

/* --- LDAP record store (store.c): what Dogtag clones share through their replicated
 * database. Each call opens its own LDAP connection (URI list: libldap fails over), so all
 * functions are thread-safe. --- */
extern const struct cmn_cfg_key sim_store_keys[];
struct sim_store;
/* Reads internaldb.* and dbs.*, creates the base and container entries if missing, and
 * finds the highest serial/request number already used in this clone's ranges.
 * clone: the role name, default instance id. [out] *out. CMN_ECONFIG, CMN_EIO. */
enum cmn_rc sim_store_new(const struct cmn_cfg *cfg, const char *clone, struct cmn_buf *errs,
                          struct sim_store **out);
void sim_store_free(struct sim_store *s);
/* The clone name recorded in records. Borrowed. */
const char *sim_store_clone(const struct sim_store *s);

/* Next number of this clone's range (dbs.begin/endSerialNumber, hex; with request = true
 * dbs.begin/endRequestNumber, decimal). CMN_ETOOBIG when the range is used up. */
enum cmn_rc sim_store_next(struct sim_store *s, bool request, unsigned long long *out);

struct sim_cert_rec {
    unsigned long long serial, reqid, renewed_from;
    char status[16];     /* VALID, REVOKED */
    int reason;          /* -1 when not revoked */
    long long revoked_on, not_after;
    char cert_b64[8192]; /* base64 DER */
    char profile[128], cuid[64], user[128], subject[512], clone[64], pubhash[65];
};
enum cmn_rc sim_store_cert_add(struct sim_store *s, const struct sim_cert_rec *r);
/* CMN_ENOTFOUND when no record has that serial. */
enum cmn_rc sim_store_cert_get(struct sim_store *s, unsigned long long serial,
                               struct sim_cert_rec *r);
/* Changes status/reason only if the record still has old_status (and old_reason when >= 0):
 * an atomic test-and-set in LDAP (delete old value, add new). new_reason -1 removes the
 * reason. CMN_EPROTO when the record changed meanwhile, CMN_ENOTFOUND, CMN_EIO. */
enum cmn_rc sim_store_cert_set_status(struct sim_store *s, unsigned long long serial,
                                      const char *old_status, int old_reason,
                                      const char *new_status, int new_reason);

struct sim_key_rec {
    unsigned long long id;
    char wrapped_b64[16384]; /* the storage envelope */
    char pub_b64[4096];      /* SubjectPublicKeyInfo */
    char cuid[64], user[128], alg[32], clone[64], pubhash[65];
};
enum cmn_rc sim_store_key_add(struct sim_store *s, const struct sim_key_rec *r);
enum cmn_rc sim_store_key_get(struct sim_store *s, unsigned long long id, struct sim_key_rec *r);
/* The newest key record whose public key hash is pubhash. CMN_ENOTFOUND. */
enum cmn_rc sim_store_key_find(struct sim_store *s, const char *pubhash, struct sim_key_rec *r);

/* --- CA (ca.c) --- */
struct sim_ca;
enum cmn_rc sim_ca_new(const struct cmn_cfg *cfg, struct sim_store *st, struct cmn_buf *errs,
                       struct sim_ca **out);
void sim_ca_free(struct sim_ca *ca);
void sim_ca_handle(struct sim_ca *ca, const struct sim_user *u, const char *path,
                   const struct sim_form *f, struct sim_resp *r);
/* Creates DIR/ca.key (RSA-2048, mode 0600) and DIR/ca.crt (self-signed CA certificate). */
enum cmn_rc sim_ca_init_dir(const char *dir, const char *subject, struct cmn_buf *errs);

/* SHA-256 of the DER SubjectPublicKeyInfo of pk, lower-case hex (the record index of
 * enrollments and archived keys). pk is an EVP_PKEY *. */
struct evp_pkey_st;
void sim_spki_hash(struct evp_pkey_st *pk, char out[65]);

/* --- KRA (kra.c) --- */
struct sim_kra;
enum cmn_rc sim_kra_new(const struct cmn_cfg *cfg, struct sim_store *st, struct cmn_buf *errs,
                        struct sim_kra **out);
void sim_kra_free(struct sim_kra *k);
void sim_kra_handle(struct sim_kra *k, const struct sim_user *u, const char *path,
                    const struct sim_form *f, struct sim_resp *r);
/* Creates DIR/kra-transport.{key,crt} (certificate issued by DIR/ca.*) and
 * DIR/kra-storage.key. */
enum cmn_rc sim_kra_init_dir(const char *dir, struct cmn_buf *errs);

#endif
