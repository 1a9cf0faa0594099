/* tools/tkskey/keyfile.h - text files of the key ceremony: key shares and wrapped master keys.
 *
 * Share file (one custodian's share; what an operator would otherwise type):
 *     share: 0123 4567 89AB CDEF 0123 4567 89AB CDEF
 *     kcv: 8BAF 47
 * Wrapped-key file, format "tkstool" (Dogtag tkstool -W/-U compatible: 16-byte DES2 key
 * wrapped with DES3-ECB under the transport key; readers ignore non-hex characters):
 *     32 hex digits in 8 groups of 4, newline, the 4-byte KCV in 2 groups of 4, newline.
 * Wrapped-key file, format "kwp" (RFC 5649 AES key wrap with padding, for tokens without an
 * ECB wrap such as SoftHSM2), self-describing:
 *     tkskey-wrapped-key: 1
 *     format: kwp
 *     key-type: des2|des3|aes128|aes256
 *     label: <label>
 *     kcv: <6 hex digits>
 *     wrapped: <hex>
 */
#ifndef KT_KEYFILE_H
#define KT_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KT_MAX_KEY 32
#define KT_MAX_WRAPPED 64
#define KT_MAX_LABEL 64

enum kt_keytype {
    KT_KEY_DES2 = 0,
    KT_KEY_DES3 = 1,
    KT_KEY_AES128 = 2,
    KT_KEY_AES256 = 3,
};

enum kt_wrapfmt {
    KT_WRAP_TKSTOOL = 0,
    KT_WRAP_KWP = 1,
};

struct kt_share {
    uint8_t key[KT_MAX_KEY];
    size_t len;
    uint8_t kcv[3];
    bool has_kcv;
};

struct kt_wrapped {
    enum kt_wrapfmt fmt;
    enum kt_keytype type;
    char label[KT_MAX_LABEL + 1];
    uint8_t wrapped[KT_MAX_WRAPPED];
    size_t wrapped_len;
    uint8_t kcv[4];
    size_t kcv_len; /* 4 for tkstool files, 3 for kwp */
};

/* Key length in bytes of a type (16, 24, 16, 32). */
size_t kt_keytype_len(enum kt_keytype t);
/* "des2", "des3", "aes128", "aes256". */
const char *kt_keytype_name(enum kt_keytype t);
/* Parses a type name; false if unknown. */
bool kt_keytype_parse(const char *s, enum kt_keytype *out);

/* Parses a share file's text. [out] s. On failure returns false and writes a message saying
 * what is wrong into err (errlen bytes). The text is not kept. */
bool kt_share_parse(const char *text, size_t n, struct kt_share *s, char *err, size_t errlen);
/* Formats a share as the file text (NUL-terminated) into out. False if out is too small. */
bool kt_share_format(const struct kt_share *s, char *out, size_t outlen);

/* Parses a wrapped-key file's text (either format). [out] w. False with a message in err. */
bool kt_wrapped_parse(const char *text, size_t n, struct kt_wrapped *w, char *err, size_t errlen);
/* Formats w as file text into out. False if out is too small. */
bool kt_wrapped_format(const struct kt_wrapped *w, char *out, size_t outlen);

#endif
