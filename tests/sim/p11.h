/* tests/sim/p11.h - the TKS double's key store: secret keys read by token label and object
 * label from a PKCS#11 module loaded with dlopen (SoftHSM2 in tests). */
#ifndef SIM_P11_H
#define SIM_P11_H

#include <stdbool.h>
#include <stddef.h>

#include "common/crypto.h"
#include "common/rc.h"

/* Choice (docs/testing.md "pki-sim TKS keys"): the TKS double derives card keys with the
 * common/ code, so it reads the master key's value: the key must be CKA_SENSITIVE=FALSE and
 * CKA_EXTRACTABLE=TRUE (tkskey gen-master/unwrap with its "readable" option). Trade-off: the
 * key value passes through process memory (wiped after each use) - fine for a test double,
 * unlike a real TKS that derives inside the HSM. */
struct sim_p11;

/* Loads module (dlopen), C_Initialize with CKF_OS_LOCKING_OK. pin may be NULL (no login).
 * The pin is copied. [out] *out; sim_p11_free(). CMN_EIO with a reason in why. */
enum cmn_rc sim_p11_open(const char *module, const char *pin, struct sim_p11 **out, char *why,
                         size_t why_size);
void sim_p11_free(struct sim_p11 *p);

/* Reads the secret key labelled `label` on the token labelled `token`: CKK_DES2/CKK_DES3 ->
 * CMN_KEY_DES3 (16/24 bytes), CKK_AES -> CMN_KEY_AES. Opens its own session (thread-safe).
 * [out] key (caller wipes). CMN_ENOTFOUND (token or key absent, or several keys with the
 * label), CMN_EUNSUPP (key not readable or of another type), CMN_EIO. */
enum cmn_rc sim_p11_read_key(struct sim_p11 *p, const char *token, const char *label,
                             struct cmn_key *key);

/* Creates a readable secret key object (token object, private, CKA_SENSITIVE false,
 * extractable) from its value: the test helper behind `pki-sim --p11-import`. alg DES3 takes
 * CKK_DES2 for 16 bytes, CKK_DES3 for 24. CMN_EIO with why. */
enum cmn_rc sim_p11_import_key(struct sim_p11 *p, const char *token, const char *label,
                               const struct cmn_key *key, char *why, size_t why_size);

#endif
