/* common/pct.c - the %-encodings of the TPS protocol (tps-protocol §1.4). */
#include "common/pct.h"

static const char hexu[] = "0123456789ABCDEF";

static bool
is_alnum(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Worst case is 3 output bytes per input byte; reserving first keeps `out` unchanged on
 * failure and makes the loop allocation-free. */
enum mode { FORM, JAVA, ALL };

static bool
raw_in(enum mode md, uint8_t c)
{
    if (md == ALL)
        return false;
    if (is_alnum(c))
        return true;
    return md == JAVA && (c == '.' || c == '-' || c == '*' || c == '_');
}

static enum cmn_rc
encode(struct cmn_buf *out, const uint8_t *in, size_t n, enum mode md)
{
    size_t need = 0;
    uint8_t *w;
    enum cmn_rc rc;

    for (size_t i = 0; i < n; i++)
        need += (raw_in(md, in[i]) || (md != ALL && in[i] == ' ')) ? 1 : 3;
    if (need == 0)
        return CMN_OK;
    if (need > out->max || out->len > out->max - need)
        return CMN_ETOOBIG;
    rc = cmn_buf_reserve(out, need, &w);
    if (rc != CMN_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = in[i];

        if (raw_in(md, c)) {
            *w++ = c;
        } else if (md != ALL && c == ' ') {
            *w++ = '+';
        } else {
            *w++ = '%';
            *w++ = (uint8_t)hexu[c >> 4];
            *w++ = (uint8_t)hexu[c & 0x0f];
        }
    }
    out->len += need;
    return CMN_OK;
}

enum cmn_rc
cmn_pct_encode(struct cmn_buf *out, const uint8_t *in, size_t n)
{
    return encode(out, in, n, FORM);
}

enum cmn_rc
cmn_pct_encode_java(struct cmn_buf *out, const uint8_t *in, size_t n)
{
    return encode(out, in, n, JAVA);
}

enum cmn_rc
cmn_pct_encode_str(struct cmn_buf *out, const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return CMN_OK;
    while (s[n] != '\0')
        n++;
    return encode(out, (const uint8_t *)s, n, FORM);
}

enum cmn_rc
cmn_pct_encode_all(struct cmn_buf *out, const uint8_t *in, size_t n)
{
    return encode(out, in, n, ALL);
}

/* Length of the %XX sequence starting at in[i] ('%' there): 3 when two hex digits follow,
 * else 0. */
static size_t
pct_seq(const uint8_t *p, size_t n, size_t i)
{
    if (n - i < 3)
        return 0;
    if (cmn_hex_value(p[i + 1]) < 0 || cmn_hex_value(p[i + 2]) < 0)
        return 0;
    return 3;
}

/* First pass: the decoded length, or SIZE_MAX with *bad set on a malformed sequence. */
static size_t
decoded_len(const uint8_t *p, size_t n, int flags, size_t *bad)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            if (pct_seq(p, n, i) == 3)
                i += 2;
            else if (!(flags & CMN_PCT_LENIENT)) {
                *bad = i;
                return SIZE_MAX;
            }
        }
        o++;
    }
    return o;
}

/* Second pass: writes the decoding (room checked by the caller); a '%' that starts no valid
 * sequence (lenient mode) stands for itself. Returns the count. */
static size_t
decode_into(const uint8_t *p, size_t n, uint8_t *w)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%' && pct_seq(p, n, i) == 3) {
            c = (uint8_t)((cmn_hex_value(p[i + 1]) << 4) | cmn_hex_value(p[i + 2]));
            i += 2;
        }
        w[o++] = c;
    }
    return o;
}

enum cmn_rc
cmn_pct_decode(struct cmn_buf *out, const char *in, size_t n, int flags, size_t *bad_pos)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t need, bad = 0;
    uint8_t *w;
    enum cmn_rc rc;

    need = decoded_len(p, n, flags, &bad);
    if (need == SIZE_MAX) {
        if (bad_pos != NULL)
            *bad_pos = bad;
        return CMN_EINVAL;
    }
    if (need == 0)
        return CMN_OK;
    if (need > out->max || out->len > out->max - need)
        return CMN_ETOOBIG;
    rc = cmn_buf_reserve(out, need, &w);
    if (rc != CMN_OK)
        return rc;
    out->len += decode_into(p, n, w);
    return CMN_OK;
}

enum cmn_rc
cmn_pct_decode_mem(const char *in, size_t n, int flags, uint8_t *out, size_t out_size,
                   size_t *out_len)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t need, bad = 0;

    need = decoded_len(p, n, flags, &bad);
    if (need == SIZE_MAX)
        return CMN_EINVAL;
    if (need > out_size)
        return CMN_ETOOBIG;
    *out_len = decode_into(p, n, out);
    return CMN_OK;
}

enum cmn_rc
cmn_pct_hash_append(struct cmn_buf *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    uint8_t *dst;
    enum cmn_rc rc;

    if (n > SIZE_MAX / 3)
        return CMN_ETOOBIG;
    rc = cmn_buf_reserve(out, 3 * n, &dst);
    if (rc != CMN_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        dst[3 * i] = '#';
        dst[3 * i + 1] = (uint8_t)digits[in[i] >> 4];
        dst[3 * i + 2] = (uint8_t)digits[in[i] & 15];
    }
    out->len += 3 * n;
    return CMN_OK;
}

enum cmn_rc
cmn_pct_hash_decode(const char *s, size_t n, bool pct_too, uint8_t *out, size_t out_size,
                    size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t byte;

        if (s[i] == '#' || (pct_too && s[i] == '%')) {
            int hi, lo;

            if (n - i < 3)
                return CMN_EINVAL;
            hi = cmn_hex_value((unsigned char)s[i + 1]);
            lo = cmn_hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return CMN_EINVAL;
            byte = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '+') {
            byte = ' ';
        } else {
            byte = (uint8_t)s[i];
        }
        if (o >= out_size)
            return CMN_ETOOBIG;
        out[o++] = byte;
    }
    *out_len = o;
    return CMN_OK;
}
