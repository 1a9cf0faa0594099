/* tools/tkskey/p11.h - the PKCS#11 operations tkskey needs, on any module loaded by path. */
#ifndef KT_P11_H
#define KT_P11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "tools/tkskey/keyfile.h"

/* Exit codes of tkskey, one per failure kind an operator must tell apart. */
enum kt_rc {
    KT_OK = 0,
    KT_EUSAGE = 2,     /* bad command line */
    KT_EMODULE = 3,    /* module cannot be loaded or initialised, token not found */
    KT_ELOGIN = 4,     /* wrong PIN, locked PIN */
    KT_EMECH = 5,      /* the token lacks a mechanism the step needs */
    KT_EKCV = 6,       /* KCV mismatch: the key is not the one the ceremony expects */
    KT_EEXISTS = 7,    /* a key with that label exists already */
    KT_ENOTFOUND = 8,  /* no key with that label */
    KT_EAMBIGUOUS = 9, /* several keys share the label */
    KT_EFILE = 10,     /* cannot read, parse or write a file */
    KT_EP11 = 11,      /* any other PKCS#11 failure; the message gives the CKR_ name */
    KT_ECANCEL = 12,   /* the operator did not confirm */
};

/* One loaded module with one logged-in session on one token. Single-threaded. */
struct kt_p11 {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    bool logged_in;
    char err[512]; /* what failed last, for the operator */
};

/* Loads `module`, finds the token whose label is `token` (or the first token when NULL),
 * opens a read-write session and logs in with `pin` (may be NULL: no login).
 * [out] p. On failure p->err says why; the caller still calls kt_p11_close(). */
enum kt_rc kt_p11_open(struct kt_p11 *p, const char *module, const char *token, const char *pin);
void kt_p11_close(struct kt_p11 *p);

/* Secret keys on the token, for `list`. */
struct kt_keyinfo {
    CK_OBJECT_HANDLE h;
    char label[KT_MAX_LABEL + 1];
    char id_hex[41];
    CK_KEY_TYPE type;
    size_t len;
    uint8_t kcv[4];
    size_t kcv_len; /* 0 when the key cannot encrypt */
};
/* Calls cb for each secret key object on the token. */
enum kt_rc kt_p11_list(struct kt_p11 *p, void (*cb)(const struct kt_keyinfo *k, void *arg),
                       void *arg);

/* Finds the one secret key labelled `label`. KT_ENOTFOUND, KT_EAMBIGUOUS. */
enum kt_rc kt_p11_find(struct kt_p11 *p, const char *label, CK_OBJECT_HANDLE *h);
/* KT_EEXISTS if any object has the label, else KT_OK. */
enum kt_rc kt_p11_refuse_existing(struct kt_p11 *p, const char *label);

/* Computes the KCV of a key in the token: DES keys C_Encrypt(CKM_DES3_ECB, 8 zero bytes),
 * 4 bytes; AES keys C_Encrypt(CKM_AES_CBC, zero IV, 16 x 01), 3 bytes. */
enum kt_rc kt_p11_kcv(struct kt_p11 *p, CK_OBJECT_HANDLE h, uint8_t kcv[4], size_t *kcv_len);

/* Generates a master key (token object, private, sensitive, encrypt/decrypt/derive, no wrap)
 * labelled `label` with a random CKA_ID. `exportable` sets CKA_EXTRACTABLE (needed to wrap
 * it for another clone); `readable` leaves CKA_SENSITIVE false so a software TKS can read
 * its value. */
enum kt_rc kt_p11_gen_master(struct kt_p11 *p, enum kt_keytype t, const char *label,
                             bool exportable, bool readable, CK_OBJECT_HANDLE *h);

/* Creates a transport key (token object, sensitive, not extractable, encrypt/wrap/unwrap)
 * from its clear value (the XOR of the shares). The caller wipes `value`. */
enum kt_rc kt_p11_import_transport(struct kt_p11 *p, enum kt_keytype t, const uint8_t *value,
                                   const char *label, CK_OBJECT_HANDLE *h);

/* Wraps key `h` under transport key `tk` with format `fmt`: tkstool = CKM_DES3_ECB (DES2
 * transport), kwp = CKM_AES_KEY_WRAP_PAD (AES transport). KT_EMECH names what is missing. */
enum kt_rc kt_p11_wrap(struct kt_p11 *p, CK_OBJECT_HANDLE tk, CK_OBJECT_HANDLE h,
                       enum kt_wrapfmt fmt, uint8_t *out, size_t *out_len);

/* Unwraps w under `tk` as a session object first, checks its KCV against w's (KT_EKCV and the
 * object destroyed on mismatch), then makes it a token object labelled `label`. */
enum kt_rc kt_p11_unwrap(struct kt_p11 *p, CK_OBJECT_HANDLE tk, const struct kt_wrapped *w,
                         const char *label, bool readable, CK_OBJECT_HANDLE *h);

enum kt_rc kt_p11_rename(struct kt_p11 *p, CK_OBJECT_HANDLE h, const char *label);
enum kt_rc kt_p11_destroy(struct kt_p11 *p, CK_OBJECT_HANDLE h);

/* The CKR_ name of a return value ("CKR_PIN_INCORRECT"), never NULL. */
const char *kt_ckr_name(CK_RV rv);

#endif
