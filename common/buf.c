/* common/buf.c - capped buffers, hex, integer parsing, wiping. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void
cmn_buf_init(struct cmn_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->secret = false;
}

void
cmn_buf_init_secret(struct cmn_buf *b, size_t max)
{
    cmn_buf_init(b, max);
    b->secret = true;
}

void
cmn_buf_cleanup(struct cmn_buf *b)
{
    if (b->data != NULL && b->secret)
        cmn_wipe(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
cmn_buf_reset(struct cmn_buf *b)
{
    if (b->data != NULL && b->secret)
        cmn_wipe(b->data, b->cap);
    b->len = 0;
}

/* Grows to hold `need` bytes plus a NUL, doubling, never beyond max+1. */
static enum cmn_rc
grow(struct cmn_buf *b, size_t need)
{
    size_t ncap;
    uint8_t *n;

    if (need > b->max)
        return CMN_ETOOBIG;
    if (need + 1 <= b->cap)
        return CMN_OK;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need + 1)
        ncap = ncap > (SIZE_MAX / 2) ? SIZE_MAX : ncap * 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    n = malloc(ncap);
    if (n == NULL)
        return CMN_ENOMEM;
    if (b->data != NULL) {
        memcpy(n, b->data, b->len);
        if (b->secret)
            cmn_wipe(b->data, b->cap);
        free(b->data);
    }
    b->data = n;
    b->cap = ncap;
    return CMN_OK;
}

enum cmn_rc
cmn_buf_reserve(struct cmn_buf *b, size_t n, uint8_t **out)
{
    enum cmn_rc rc;

    if (n > b->max - b->len)
        return CMN_ETOOBIG;
    rc = grow(b, b->len + n);
    if (rc != CMN_OK)
        return rc;
    *out = b->data + b->len;
    return CMN_OK;
}

enum cmn_rc
cmn_buf_append(struct cmn_buf *b, const void *p, size_t n)
{
    uint8_t *dst;
    enum cmn_rc rc;

    if (n == 0)
        return CMN_OK;
    rc = cmn_buf_reserve(b, n, &dst);
    if (rc != CMN_OK)
        return rc;
    memcpy(dst, p, n);
    b->len += n;
    return CMN_OK;
}

enum cmn_rc
cmn_buf_putc(struct cmn_buf *b, uint8_t c)
{
    return cmn_buf_append(b, &c, 1);
}

enum cmn_rc
cmn_buf_puts(struct cmn_buf *b, const char *s)
{
    return cmn_buf_append(b, s, strlen(s));
}

enum cmn_rc
cmn_buf_printf(struct cmn_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    uint8_t *dst;
    enum cmn_rc rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CMN_EINVAL;
    /* reserve one more for vsnprintf's NUL; it is not counted in len */
    rc = cmn_buf_reserve(b, (size_t)n, &dst);
    if (rc != CMN_OK)
        return rc;
    va_start(ap, fmt);
    (void)vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CMN_OK;
}

const char *
cmn_buf_cstr(struct cmn_buf *b)
{
    if (b->data == NULL)
        return "";
    /* grow() always leaves room for one byte past len */
    b->data[b->len] = 0;
    return (const char *)b->data;
}

void
cmn_buf_consume(struct cmn_buf *b, size_t n)
{
    if (n >= b->len) {
        cmn_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->secret)
        cmn_wipe(b->data + b->len, n);
}

static const char hexdig[] = "0123456789ABCDEF";

enum cmn_rc
cmn_hex_encode(const uint8_t *in, size_t n, char *out, size_t out_size)
{
    if (out_size == 0)
        return CMN_ETOOBIG;
    if (n > (out_size - 1) / 2) {
        out[0] = 0;
        return CMN_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * n] = 0;
    return CMN_OK;
}

enum cmn_rc
cmn_hex_append(struct cmn_buf *b, const uint8_t *in, size_t n)
{
    uint8_t *dst;
    enum cmn_rc rc;

    if (n > SIZE_MAX / 2)
        return CMN_ETOOBIG;
    rc = cmn_buf_reserve(b, 2 * n, &dst);
    if (rc != CMN_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = (uint8_t)hexdig[in[i] >> 4];
        dst[2 * i + 1] = (uint8_t)hexdig[in[i] & 15];
    }
    b->len += 2 * n;
    return CMN_OK;
}

int
cmn_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum cmn_rc
cmn_hex_decode(const char *in, size_t in_len, bool spaces, uint8_t *out, size_t out_size,
               size_t *out_len)
{
    size_t i = 0, n = 0;

    while (i < in_len) {
        int hi, lo;

        if (spaces && in[i] == ' ') {
            i++;
            continue;
        }
        if (i + 1 >= in_len)
            return CMN_EINVAL;
        hi = cmn_hex_value((unsigned char)in[i]);
        lo = cmn_hex_value((unsigned char)in[i + 1]);
        if (hi < 0 || lo < 0)
            return CMN_EINVAL;
        if (n >= out_size)
            return CMN_ETOOBIG;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    *out_len = n;
    return CMN_OK;
}

enum cmn_rc
cmn_parse_uint(const char *s, unsigned long long min, unsigned long long max,
               unsigned long long *v)
{
    unsigned long long acc = 0;

    if (s == NULL || *s == 0)
        return CMN_EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return CMN_EINVAL;
        unsigned d = (unsigned)(*p - '0');

        if (acc > (~0ULL - d) / 10)
            return CMN_ETOOBIG;
        acc = acc * 10 + d;
    }
    if (acc < min || acc > max)
        return CMN_ETOOBIG;
    *v = acc;
    return CMN_OK;
}

void
cmn_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

int
cmn_ct_memcmp(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n);
}
