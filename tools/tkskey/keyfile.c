/* tools/tkskey/keyfile.c - parse and format share files and wrapped-key files. */
#include "tools/tkskey/keyfile.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"

size_t
kt_keytype_len(enum kt_keytype t)
{
    switch (t) {
    case KT_KEY_DES2: return 16;
    case KT_KEY_DES3: return 24;
    case KT_KEY_AES128: return 16;
    case KT_KEY_AES256: return 32;
    }
    return 0;
}

const char *
kt_keytype_name(enum kt_keytype t)
{
    switch (t) {
    case KT_KEY_DES2: return "des2";
    case KT_KEY_DES3: return "des3";
    case KT_KEY_AES128: return "aes128";
    case KT_KEY_AES256: return "aes256";
    }
    return "unknown";
}

bool
kt_keytype_parse(const char *s, enum kt_keytype *out)
{
    static const enum kt_keytype all[] = {KT_KEY_DES2, KT_KEY_DES3, KT_KEY_AES128,
                                          KT_KEY_AES256};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(s, kt_keytype_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* Collects the hex digits of s[0..n) into bytes, ignoring every other character (the
 * tkstool file rule). False on an odd digit count or overflow of out. */
static bool
hex_loose(const char *s, size_t n, uint8_t *out, size_t outmax, size_t *outlen)
{
    size_t digits = 0;

    for (size_t i = 0; i < n; i++) {
        int v = cmn_hex_value((unsigned char)s[i]);

        if (v < 0)
            continue;
        if (digits / 2 >= outmax)
            return false;
        if (digits % 2 == 0)
            out[digits / 2] = (uint8_t)(v << 4);
        else
            out[digits / 2] |= (uint8_t)v;
        digits++;
    }
    if (digits % 2 != 0)
        return false;
    *outlen = digits / 2;
    return true;
}

/* Iterates over the lines of text: on return (line, len) is the next line without its
 * newline; false at the end. */
static bool
next_line(const char **cur, const char *end, const char **line, size_t *len)
{
    const char *nl;

    if (*cur >= end)
        return false;
    *line = *cur;
    nl = memchr(*cur, '\n', (size_t)(end - *cur));
    *len = nl ? (size_t)(nl - *cur) : (size_t)(end - *cur);
    *cur = nl ? nl + 1 : end;
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    return true;
}

/* If line starts with "name:", sets (val, vlen) to the text after it (leading blanks
 * skipped) and returns true. */
static bool
field(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);

    if (len <= nl || memcmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    *val = line + nl + 1;
    *vlen = len - nl - 1;
    while (*vlen > 0 && (**val == ' ' || **val == '\t')) {
        (*val)++;
        (*vlen)--;
    }
    return true;
}

bool
kt_share_parse(const char *text, size_t n, struct kt_share *s, char *err, size_t errlen)
{
    const char *cur = text, *end = text + n, *line, *val;
    size_t len, vlen, kcvlen;
    bool have_share = false;

    memset(s, 0, sizeof(*s));
    while (next_line(&cur, end, &line, &len)) {
        if (field(line, len, "share", &val, &vlen)) {
            if (!hex_loose(val, vlen, s->key, sizeof(s->key), &s->len) ||
                (s->len != 16 && s->len != 24 && s->len != 32)) {
                snprintf(err, errlen, "share: expected 16, 24 or 32 bytes of hex digits");
                goto bad;
            }
            have_share = true;
        } else if (field(line, len, "kcv", &val, &vlen)) {
            uint8_t k[4];

            if (!hex_loose(val, vlen, k, sizeof(k), &kcvlen) || kcvlen < 3) {
                snprintf(err, errlen, "kcv: expected 3 or 4 bytes of hex digits");
                goto bad;
            }
            memcpy(s->kcv, k, 3);
            s->has_kcv = true;
        }
    }
    if (!have_share) {
        snprintf(err, errlen, "no 'share:' line found");
        goto bad;
    }
    return true;
bad:
    cmn_wipe(s, sizeof(*s));
    return false;
}

bool
kt_share_format(const struct kt_share *s, char *out, size_t outlen)
{
    size_t pos = 0;
    int n;

    n = snprintf(out, outlen, "share:");
    if (n < 0 || (size_t)n >= outlen)
        return false;
    pos = (size_t)n;
    for (size_t i = 0; i < s->len; i++) {
        n = snprintf(out + pos, outlen - pos, "%s%02X", i % 2 == 0 ? " " : "", s->key[i]);
        if (n < 0 || (size_t)n >= outlen - pos)
            return false;
        pos += (size_t)n;
    }
    n = snprintf(out + pos, outlen - pos, "\nkcv: %02X%02X %02X\n", s->kcv[0], s->kcv[1],
                 s->kcv[2]);
    return n >= 0 && (size_t)n < outlen - pos;
}

static bool
parse_kwp(const char *text, size_t n, struct kt_wrapped *w, char *err, size_t errlen)
{
    const char *cur = text, *end = text + n, *line, *val;
    size_t len, vlen;
    unsigned seen = 0;

    while (next_line(&cur, end, &line, &len)) {
        if (field(line, len, "format", &val, &vlen)) {
            if (vlen != 3 || memcmp(val, "kwp", 3) != 0) {
                snprintf(err, errlen, "format: only 'kwp' is known in this file form");
                return false;
            }
            seen |= 1;
        } else if (field(line, len, "key-type", &val, &vlen)) {
            char t[16];

            if (vlen >= sizeof(t)) {
                snprintf(err, errlen, "key-type: unknown");
                return false;
            }
            memcpy(t, val, vlen);
            t[vlen] = 0;
            if (!kt_keytype_parse(t, &w->type)) {
                snprintf(err, errlen, "key-type '%s': expected des2, des3, aes128 or aes256", t);
                return false;
            }
            seen |= 2;
        } else if (field(line, len, "label", &val, &vlen)) {
            if (vlen == 0 || vlen > KT_MAX_LABEL) {
                snprintf(err, errlen, "label: must be 1 to %d characters", KT_MAX_LABEL);
                return false;
            }
            memcpy(w->label, val, vlen);
            w->label[vlen] = 0;
            seen |= 4;
        } else if (field(line, len, "kcv", &val, &vlen)) {
            if (!hex_loose(val, vlen, w->kcv, sizeof(w->kcv), &w->kcv_len) || w->kcv_len != 3) {
                snprintf(err, errlen, "kcv: expected 6 hex digits");
                return false;
            }
            seen |= 8;
        } else if (field(line, len, "wrapped", &val, &vlen)) {
            if (!hex_loose(val, vlen, w->wrapped, sizeof(w->wrapped), &w->wrapped_len) ||
                w->wrapped_len < 16 || w->wrapped_len % 8 != 0) {
                snprintf(err, errlen, "wrapped: expected a multiple of 8 bytes (16 to %d) in hex",
                         KT_MAX_WRAPPED);
                return false;
            }
            seen |= 16;
        }
    }
    if (seen != 31) {
        snprintf(err, errlen, "missing field(s): need format, key-type, label, kcv, wrapped");
        return false;
    }
    return true;
}

bool
kt_wrapped_parse(const char *text, size_t n, struct kt_wrapped *w, char *err, size_t errlen)
{
    static const char magic[] = "tkskey-wrapped-key:";
    uint8_t all[16 + 4];
    size_t got;

    memset(w, 0, sizeof(*w));
    if (n >= sizeof(magic) - 1 && memcmp(text, magic, sizeof(magic) - 1) == 0) {
        w->fmt = KT_WRAP_KWP;
        if (parse_kwp(text, n, w, err, errlen))
            return true;
        memset(w, 0, sizeof(*w));
        return false;
    }
    /* tkstool form: 16 wrapped bytes then a 4-byte KCV, non-hex characters ignored */
    w->fmt = KT_WRAP_TKSTOOL;
    w->type = KT_KEY_DES2;
    if (!hex_loose(text, n, all, sizeof(all), &got) || got != sizeof(all)) {
        snprintf(err, errlen,
                 "not a tkskey file and not a tkstool file (32 hex digits of wrapped key, then "
                 "8 of KCV)");
        memset(w, 0, sizeof(*w));
        return false;
    }
    memcpy(w->wrapped, all, 16);
    w->wrapped_len = 16;
    memcpy(w->kcv, all + 16, 4);
    w->kcv_len = 4;
    return true;
}

static bool
put(char *out, size_t outlen, size_t *pos, const char *s)
{
    size_t n = strlen(s);

    if (n >= outlen - *pos)
        return false;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return true;
}

bool
kt_wrapped_format(const struct kt_wrapped *w, char *out, size_t outlen)
{
    char hex[2 * KT_MAX_WRAPPED + 1], line[256];
    size_t pos = 0;
    int n;

    if (outlen == 0)
        return false;
    out[0] = 0;
    if (w->fmt == KT_WRAP_TKSTOOL) {
        if (w->wrapped_len != 16 || w->kcv_len != 4)
            return false;
        for (size_t i = 0; i < 16; i += 2) {
            n = snprintf(line, sizeof(line), "%02X%02X%s", w->wrapped[i], w->wrapped[i + 1],
                         i == 14 ? "\n" : " ");
            if (n < 0 || !put(out, outlen, &pos, line))
                return false;
        }
        n = snprintf(line, sizeof(line), "%02X%02X %02X%02X\n", w->kcv[0], w->kcv[1], w->kcv[2],
                     w->kcv[3]);
        return n >= 0 && put(out, outlen, &pos, line);
    }
    if (cmn_hex_encode(w->wrapped, w->wrapped_len, hex, sizeof(hex)) != CMN_OK)
        return false;
    n = snprintf(line, sizeof(line),
                 "tkskey-wrapped-key: 1\nformat: kwp\nkey-type: %s\nlabel: %s\nkcv: %02X%02X%02X\n",
                 kt_keytype_name(w->type), w->label, w->kcv[0], w->kcv[1], w->kcv[2]);
    if (n < 0 || (size_t)n >= sizeof(line) || !put(out, outlen, &pos, line))
        return false;
    return put(out, outlen, &pos, "wrapped: ") && put(out, outlen, &pos, hex) &&
           put(out, outlen, &pos, "\n");
}
