/* common/pct.h - the %-encodings of the TPS protocol (tps-protocol §1.4): form encoding for
 * free text and card answers, all-%XX encoding for command APDUs, and the one decoder. */
#ifndef CMN_PCT_H
#define CMN_PCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rc.h"

/* Appends the form encoding of in[0..n) to out: A-Z a-z 0-9 raw, 0x20 as '+', every other
 * byte as %XX with uppercase hex. [in,out] out. CMN_ETOOBIG when out->max would be passed
 * (out is then unchanged), CMN_ENOMEM. */
enum cmn_rc cmn_pct_encode(struct cmn_buf *out, const uint8_t *in, size_t n);

/* Java's form encoding (java.net.URLEncoder), which our server uses for the texts of an
 * EXTENDED_LOGIN_REQUEST as the Java TPS does (tps-protocol §8, example §9.2): like
 * cmn_pct_encode() but '.', '-', '*' and '_' stay raw. */
enum cmn_rc cmn_pct_encode_java(struct cmn_buf *out, const uint8_t *in, size_t n);

/* Same as cmn_pct_encode() for a NUL-terminated string (NULL encodes as nothing). */
enum cmn_rc cmn_pct_encode_str(struct cmn_buf *out, const char *s);

/* Appends every byte of in[0..n) as %XX, uppercase (the pdu_data of a command APDU).
 * Same codes as cmn_pct_encode(). */
enum cmn_rc cmn_pct_encode_all(struct cmn_buf *out, const uint8_t *in, size_t n);

/* Decoder flags. */
enum cmn_pct_flags {
    CMN_PCT_STRICT = 0,  /* a '%' not followed by two hex digits is an error */
    CMN_PCT_LENIENT = 1, /* such a '%' stands for itself (tpsclient's "%%26", §7.3) */
};

/* Appends the decoding of in[0..n) to out: '+' -> 0x20, %XX (either case) -> byte, every
 * other byte itself. [in,out] out (its `secret` flag is honoured by buf.c). Returns CMN_OK,
 * CMN_EINVAL on a malformed % sequence in strict mode (then *bad_pos, if not NULL, is its
 * offset in `in`), CMN_ETOOBIG when out->max would be passed, CMN_ENOMEM. On failure out->len
 * is restored to its value on entry. */
enum cmn_rc cmn_pct_decode(struct cmn_buf *out, const char *in, size_t n, int flags,
                           size_t *bad_pos);

/* Decodes into caller memory: [out] out[0..*out_len). CMN_ETOOBIG if out_size is too small;
 * other codes as cmn_pct_decode(). Never writes past out_size. */
enum cmn_rc cmn_pct_decode_mem(const char *in, size_t n, int flags, uint8_t *out,
                               size_t out_size, size_t *out_len);


/* ---- Dogtag "hash" encoding of binary values in backend requests (backends §2, R-11) ---- */

/* Appends every byte of in as "#XX" (uppercase hex), e.g. the KDD for the TKS.
 * CMN_ETOOBIG when out->max would be exceeded (out unchanged then). */
enum cmn_rc cmn_pct_hash_append(struct cmn_buf *out, const uint8_t *in, size_t n);
/* Decodes a hash-encoded value: "#XX" (either case) is a byte, '+' a space, any other
 * character itself; with pct_too, "%XX" is a byte as well (answers whose values were not
 * form-decoded first). [out] out, out_len. CMN_EINVAL on a broken escape, CMN_ETOOBIG when
 * out_size is too small. */
enum cmn_rc cmn_pct_hash_decode(const char *s, size_t n, bool pct_too, uint8_t *out,
                                size_t out_size, size_t *out_len);

#endif
