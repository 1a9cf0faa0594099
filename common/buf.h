/* common/buf.h - capped growable byte buffers, bounded read cursors, hex, integer parsing,
 * and secret wiping: the only ways common/ code touches bytes it did not produce. */
#ifndef CMN_BUF_H
#define CMN_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* A growable buffer with a hard cap: a peer can never grow it past `max`.
 * Owned by whoever called cmn_buf_init(); release with cmn_buf_cleanup(). Not thread-safe. */
struct cmn_buf {
    uint8_t *data; /* NULL until the first append */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* never grow beyond this */
    bool secret;   /* wipe on realloc/cleanup (keys, PINs, decrypted data) */
};

/* Initialises an empty buffer that may grow to `max` bytes. Allocates nothing. */
void cmn_buf_init(struct cmn_buf *b, size_t max);
/* Same, and the contents are wiped whenever memory is released. */
void cmn_buf_init_secret(struct cmn_buf *b, size_t max);
/* Frees the memory (wiping it first for secret buffers); the buffer is empty and reusable. */
void cmn_buf_cleanup(struct cmn_buf *b);
/* Empties the buffer without freeing (wipes for secret buffers). */
void cmn_buf_reset(struct cmn_buf *b);
/* Appends n bytes. CMN_ETOOBIG if len+n > max, CMN_ENOMEM; the buffer is unchanged then. */
enum cmn_rc cmn_buf_append(struct cmn_buf *b, const void *p, size_t n);
/* Appends one byte. */
enum cmn_rc cmn_buf_putc(struct cmn_buf *b, uint8_t c);
/* Appends a NUL-terminated string (without the NUL). */
enum cmn_rc cmn_buf_puts(struct cmn_buf *b, const char *s);
/* Appends printf-formatted text (without the NUL). */
enum cmn_rc cmn_buf_printf(struct cmn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Makes sure there is room for n more bytes; *out points at them (not counted in len). */
enum cmn_rc cmn_buf_reserve(struct cmn_buf *b, size_t n, uint8_t **out);
/* Ensures data[len] == 0 (not counted in len) and returns data as a C string ("" if empty). */
const char *cmn_buf_cstr(struct cmn_buf *b);
/* Removes the first n bytes (n <= len). */
void cmn_buf_consume(struct cmn_buf *b, size_t n);

/* A bounded read cursor over bytes we did not produce. Short input is an error, never an
 * over-read. Borrows the memory it points into. */
struct cmn_rd {
    const uint8_t *p;
    size_t left;
};

static inline void
cmn_rd_init(struct cmn_rd *r, const void *p, size_t n)
{
    r->p = (const uint8_t *)p;
    r->left = n;
}

static inline bool
cmn_rd_take(struct cmn_rd *r, size_t n, const uint8_t **out)
{
    if (n > r->left)
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static inline bool
cmn_rd_u8(struct cmn_rd *r, uint8_t *v)
{
    if (r->left < 1)
        return false;
    *v = r->p[0];
    r->p++;
    r->left--;
    return true;
}

static inline bool
cmn_rd_u16(struct cmn_rd *r, uint16_t *v) /* big-endian */
{
    if (r->left < 2)
        return false;
    *v = (uint16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    r->left -= 2;
    return true;
}

static inline bool
cmn_rd_u32(struct cmn_rd *r, uint32_t *v) /* big-endian */
{
    if (r->left < 4)
        return false;
    *v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) |
         r->p[3];
    r->p += 4;
    r->left -= 4;
    return true;
}

static inline bool
cmn_rd_copy(struct cmn_rd *r, void *dst, size_t n)
{
    const uint8_t *s;

    if (!cmn_rd_take(r, n, &s))
        return false;
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)dst)[i] = s[i];
    return true;
}

/* Big-endian stores into caller memory. */
static inline void
cmn_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
cmn_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Value of one hex digit (either case), or -1 for any other character. */
int cmn_hex_value(int c);

/* Writes 2*n uppercase hex digits and a NUL into out (out_size >= 2*n+1).
 * CMN_ETOOBIG if out is too small (out is then ""). */
enum cmn_rc cmn_hex_encode(const uint8_t *in, size_t n, char *out, size_t out_size);
/* Appends 2*n uppercase hex digits to b. */
enum cmn_rc cmn_hex_append(struct cmn_buf *b, const uint8_t *in, size_t n);
/* Decodes hex (either case, no separators; spaces allowed between byte pairs when
 * `spaces` is true) into out. On success *out_len is the byte count.
 * CMN_EINVAL on odd length or a non-hex character, CMN_ETOOBIG if out_size is too small. */
enum cmn_rc cmn_hex_decode(const char *in, size_t in_len, bool spaces, uint8_t *out,
                           size_t out_size, size_t *out_len);

/* Parses a whole decimal string into [min, max]. No sign, no spaces, no trailing bytes.
 * CMN_EINVAL on syntax, CMN_ETOOBIG when out of range; *v untouched on failure. */
enum cmn_rc cmn_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                           unsigned long long *v);

/* Wipes memory in a way the compiler cannot remove. */
void cmn_wipe(void *p, size_t n);
/* Constant-time comparison of n bytes: 0 when equal. For MACs, cryptograms, passwords. */
int cmn_ct_memcmp(const void *a, const void *b, size_t n) __attribute__((warn_unused_result));

#endif
