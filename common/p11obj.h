/* common/p11obj.h - the CoolKey combined PKCS#11 object `z0` (card spec §6.3): built by the
 * gateway from certificates and keys, parsed back by tests, vtoken --show and the TPS. */
#ifndef CMN_P11OBJ_H
#define CMN_P11OBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rc.h"

#define CMN_P11OBJ_HDR_LEN 20         /* header before the (compressed) payload */
#define CMN_P11OBJ_MAX_RECS 64        /* object records in one z0 */
#define CMN_P11OBJ_MAX_ATTRS 16       /* explicit attributes per record */
#define CMN_P11OBJ_DEFAULT_MAX 20000  /* payload cap the C++ TPS uses (§6.3) */

/* Object ids: type letter ‖ ASCII digit ‖ 00 00 (§6.1). n is 0..9. */
#define CMN_P11OBJ_ID(letter, n) (((uint32_t)(letter) << 24) | ((uint32_t)('0' + (n)) << 16))
#define CMN_P11OBJ_Z0 0x7A300000u

/* Attribute data types of a v1 record (§6.3). */
#define CMN_P11OBJ_DT_STRING 0x00
#define CMN_P11OBJ_DT_INT 0x01
#define CMN_P11OBJ_DT_FALSE 0x02
#define CMN_P11OBJ_DT_TRUE 0x03

/* Fixed-attribute bits (§6.3); bits 0-3 hold CKA_ID, bits 4-6 CKA_CLASS. */
#define CMN_P11OBJ_F_ID_MASK 0x0000000Fu
#define CMN_P11OBJ_F_CLASS_SHIFT 4
#define CMN_P11OBJ_F_CLASS_MASK 0x00000070u
#define CMN_P11OBJ_F_TOKEN 0x00000080u
#define CMN_P11OBJ_F_PRIVATE 0x00000100u
#define CMN_P11OBJ_F_MODIFIABLE 0x00000200u
#define CMN_P11OBJ_F_DERIVE 0x00000400u
#define CMN_P11OBJ_F_LOCAL 0x00000800u
#define CMN_P11OBJ_F_ENCRYPT 0x00001000u
#define CMN_P11OBJ_F_DECRYPT 0x00002000u
#define CMN_P11OBJ_F_WRAP 0x00004000u
#define CMN_P11OBJ_F_UNWRAP 0x00008000u
#define CMN_P11OBJ_F_SIGN 0x00010000u
#define CMN_P11OBJ_F_SIGN_RECOVER 0x00020000u
#define CMN_P11OBJ_F_VERIFY 0x00040000u
#define CMN_P11OBJ_F_VERIFY_RECOVER 0x00080000u
#define CMN_P11OBJ_F_SENSITIVE 0x00100000u
#define CMN_P11OBJ_F_ALWAYS_SENSITIVE 0x00200000u
#define CMN_P11OBJ_F_EXTRACTABLE 0x00400000u
#define CMN_P11OBJ_F_NEVER_EXTRACTABLE 0x00800000u

/* PKCS#11 values used in records (CKA_*, CKO_*, CKK_*). */
#define CMN_P11_CKA_CLASS 0x000u
#define CMN_P11_CKA_LABEL 0x003u
#define CMN_P11_CKA_VALUE 0x011u
#define CMN_P11_CKA_KEY_TYPE 0x100u
#define CMN_P11_CKA_EC_PARAMS 0x180u
#define CMN_P11_CKA_EC_POINT 0x181u
#define CMN_P11_CKO_CERTIFICATE 1u
#define CMN_P11_CKO_PUBLIC_KEY 2u
#define CMN_P11_CKO_PRIVATE_KEY 3u
#define CMN_P11_CKK_RSA 0u
#define CMN_P11_CKK_EC 3u

/* One explicit attribute. Strings are borrowed: from the caller while building, from the
 * object's own storage after cmn_p11obj_parse(). */
struct cmn_p11obj_attr {
    uint32_t type;
    uint8_t dtype;      /* CMN_P11OBJ_DT_* */
    uint32_t ival;      /* DT_INT */
    const uint8_t *val; /* DT_STRING */
    size_t len;
};

struct cmn_p11obj_rec {
    uint32_t id;    /* e.g. CMN_P11OBJ_ID('c', 1) */
    uint32_t fixed; /* CMN_P11OBJ_F_* | class << 4 | CKA_ID */
    size_t nattrs;
    struct cmn_p11obj_attr attrs[CMN_P11OBJ_MAX_ATTRS];
};

/* A combined object, built or parsed. Caller-owned storage; cmn_p11obj_cleanup() releases
 * what cmn_p11obj_parse() allocated. Not thread-safe (one owner). */
struct cmn_p11obj {
    uint16_t format_version; /* 0100 when none existed */
    uint16_t object_version; /* random 0..999 first, +1 per rewrite (the caller's business) */
    uint8_t cuid[10];
    uint16_t compression; /* as parsed: 0 none, 1 zlib */
    uint8_t name[255];    /* token name (coolkey's token label) */
    size_t name_len;
    uint16_t obj_count;   /* count field as parsed (may exceed nrecs: readers ignore it) */
    size_t nrecs;
    struct cmn_p11obj_rec recs[CMN_P11OBJ_MAX_RECS];
    struct cmn_buf store; /* parsed payload; attribute strings point into it */
};

/* Key usages for cmn_p11obj_add_cert(). */
#define CMN_P11OBJ_USE_SIGN 0x1u    /* private SIGN|SIGN_RECOVER, public VERIFY|VERIFY_RECOVER */
#define CMN_P11OBJ_USE_ENCRYPT 0x2u /* private DECRYPT|UNWRAP, public ENCRYPT|WRAP */

/* Starts an empty object: format version 0100, the given object version, CUID and token
 * name (truncated to 255 bytes; NULL = empty). [out] o. */
void cmn_p11obj_init(struct cmn_p11obj *o, const uint8_t cuid[10], const char *token_name,
                     uint16_t object_version);

/* Appends one record (copied; its strings stay borrowed). CMN_ETOOBIG when full,
 * CMN_EINVAL if rec->nattrs is too large. */
enum cmn_rc cmn_p11obj_add(struct cmn_p11obj *o, const struct cmn_p11obj_rec *rec);

/* Appends the three records of certificate n (0..9) the way the TPS packs them (§6.3):
 * cN (class 1, TOKEN, id n; LABEL + VALUE = der), k(2n+1) public (class 2, TOKEN, usage bits)
 * and k(2n) private (class 3, TOKEN, PRIVATE, SENSITIVE, usage bits; CKA_KEY_TYPE = key_type).
 * label and der are borrowed until encode. usage: CMN_P11OBJ_USE_* bits (0 = SIGN).
 * CMN_EINVAL on n > 4 (keys 2n+1 must be a digit), CMN_ETOOBIG when full. */
enum cmn_rc cmn_p11obj_add_cert(struct cmn_p11obj *o, unsigned n, const char *label,
                                const uint8_t *der, size_t der_len, uint32_t key_type,
                                unsigned usage);

/* Completes the key records of certificate n (added by cmn_p11obj_add_cert() with
 * CMN_P11_CKK_EC) the way the C++ TPS packs EC keys (§6.3): CKA_EC_PARAMS = params (DER curve
 * OID) on both keys, CKA_EC_POINT = point on the public key, and DERIVE next to DECRYPT /
 * ENCRYPT (an EC key's encryption use is key agreement). Both are borrowed until encode.
 * CMN_EINVAL when either is empty or the records of n are missing, CMN_ETOOBIG when a record
 * has no room for another attribute. */
enum cmn_rc cmn_p11obj_add_ec(struct cmn_p11obj *o, unsigned n, const uint8_t *params,
                              size_t params_len, const uint8_t *point, size_t point_len);

/* Encodes header ‖ payload, the payload zlib-compressed when compress is true (the
 * `pkcs11obj.compress.enable=true` default). [out] out (appended). CMN_ETOOBIG if a length
 * does not fit its 16-bit field or out's cap, CMN_ECRYPTO... never; CMN_EIO if zlib fails. */
enum cmn_rc cmn_p11obj_encode(const struct cmn_p11obj *o, bool compress, struct cmn_buf *out);

/* Parses a z0 object read from a card: header, decompression (payload capped at
 * max_payload bytes; 0 = CMN_P11OBJ_DEFAULT_MAX), token name and every record present.
 * [out] o (initialised here; call cmn_p11obj_cleanup() whatever the result).
 * CMN_ESHORT on truncated input, CMN_EINVAL on a malformed field, CMN_ETOOBIG beyond the cap
 * or CMN_P11OBJ_MAX_RECS/ATTRS, CMN_EUNSUPP for an unknown compression. */
enum cmn_rc cmn_p11obj_parse(struct cmn_p11obj *o, const uint8_t *in, size_t n,
                             size_t max_payload);

/* Releases the parsed payload. Safe on an object from cmn_p11obj_init() and twice. */
void cmn_p11obj_cleanup(struct cmn_p11obj *o);

/* Lookups; NULL when absent. */
const struct cmn_p11obj_rec *cmn_p11obj_find(const struct cmn_p11obj *o, uint32_t id);
const struct cmn_p11obj_attr *cmn_p11obj_attr(const struct cmn_p11obj_rec *rec, uint32_t type);

#endif
