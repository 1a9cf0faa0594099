/* common/tpsmsg.c - the TPS message codec: parsing (tps-protocol §1.3), accessors, Begin Op
 * extensions (§2.2, §2.3), builders (§2.2, §9) and the server-side `s=` framer (§1.3). */
#include "common/tpsmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/pct.h"

/* ---- names ---- */

static const char *const msg_names[] = {
    [CMN_TPS_MSG_BEGIN_OP] = "BEGIN_OP",
    [CMN_TPS_MSG_LOGIN_REQUEST] = "LOGIN_REQUEST",
    [CMN_TPS_MSG_LOGIN_RESPONSE] = "LOGIN_RESPONSE",
    [CMN_TPS_MSG_SECUREID_REQUEST] = "SECUREID_REQUEST",
    [CMN_TPS_MSG_SECUREID_RESPONSE] = "SECUREID_RESPONSE",
    [CMN_TPS_MSG_ASQ_REQUEST] = "ASQ_REQUEST",
    [CMN_TPS_MSG_ASQ_RESPONSE] = "ASQ_RESPONSE",
    [CMN_TPS_MSG_TOKEN_PDU_REQUEST] = "TOKEN_PDU_REQUEST",
    [CMN_TPS_MSG_TOKEN_PDU_RESPONSE] = "TOKEN_PDU_RESPONSE",
    [CMN_TPS_MSG_NEW_PIN_REQUEST] = "NEW_PIN_REQUEST",
    [CMN_TPS_MSG_NEW_PIN_RESPONSE] = "NEW_PIN_RESPONSE",
    [CMN_TPS_MSG_END_OP] = "END_OP",
    [CMN_TPS_MSG_STATUS_UPDATE_REQUEST] = "STATUS_UPDATE_REQUEST",
    [CMN_TPS_MSG_STATUS_UPDATE_RESPONSE] = "STATUS_UPDATE_RESPONSE",
    [CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST] = "EXTENDED_LOGIN_REQUEST",
    [CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE] = "EXTENDED_LOGIN_RESPONSE",
};

static const char *const op_names[] = {
    [CMN_TPS_OP_UNKNOWN] = "unknown", [CMN_TPS_OP_ENROLL] = "enroll",
    [CMN_TPS_OP_UNBLOCK] = "unblock", [CMN_TPS_OP_RESET_PIN] = "reset_pin",
    [CMN_TPS_OP_RENEW] = "renew",     [CMN_TPS_OP_FORMAT] = "format",
};

static const char *const status_names[CMN_TPS_STATUS_MAX + 1] = {
    "NO_ERROR",
    "SNAC",
    "SEC_INIT_UPDATE",
    "CREATE_CARDMGR",
    "MAC_RESET_PIN_PDU",
    "MAC_CERT_PDU",
    "MAC_LIFESTYLE_PDU",
    "MAC_ENROLL_PDU",
    "READ_OBJECT_PDU",
    "BAD_STATUS",
    "CA_RESPONSE",
    "READ_BUFFER_OVERFLOW",
    "TOKEN_RESET_PIN_FAILED",
    "CONNECTION",
    "LOGIN",
    "DB",
    "TOKEN_DISABLED",
    "SECURE_CHANNEL",
    "MISCONFIGURATION",
    "UPGRADE_APPLET",
    "KEY_CHANGE_OVER",
    "EXTERNAL_AUTH",
    "DEFAULT_TOKENTYPE_NOT_FOUND",
    "DEFAULT_TOKENTYPE_PARAMS_NOT_FOUND",
    "PUBLISH",
    "LDAP_CONN",
    "DISABLED_TOKEN",
    "NOT_PIN_RESETABLE",
    "CONN_LOST",
    "CREATE_TUS_TOKEN_ENTRY",
    "NO_SUCH_TOKEN_STATE",
    "NO_SUCH_LOST_REASON",
    "UNUSABLE_TOKEN_KEYCOMPROMISE",
    "INACTIVE_TOKEN_NOT_FOUND",
    "HAS_AT_LEAST_ONE_ACTIVE_TOKEN",
    "CONTACT_ADMIN",
    "RECOVERY_IS_PROCESSED",
    "RECOVERY_FAILED",
    "NO_OPERATION_ON_LOST_TOKEN",
    "KEY_ARCHIVE_OFF",
    "NO_TKS_CONNID",
    "UPDATE_TOKENDB_FAILED",
    "REVOKE_CERTIFICATES_FAILED",
    "NOT_TOKEN_OWNER",
    "RENEWAL_IS_PROCESSED",
    "RENEWAL_FAILED",
    "SYMKEY_256_UPGRADE",
};

const char *
cmn_tps_msg_type_name(int type)
{
    if (type < 0 || (size_t)type >= sizeof(msg_names) / sizeof(msg_names[0]) ||
        msg_names[type] == NULL)
        return "UNKNOWN";
    return msg_names[type];
}

const char *
cmn_tps_op_name(int op)
{
    if (op < 0 || (size_t)op >= sizeof(op_names) / sizeof(op_names[0]))
        return "unknown";
    return op_names[op];
}

const char *
cmn_tps_status_name(int status)
{
    if (status < 0 || status > CMN_TPS_STATUS_MAX)
        return "UNKNOWN";
    return status_names[status];
}

/* ---- helpers ---- */

static void seterr(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
seterr(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(err, CMN_TPSMSG_ERR_MAX, fmt, ap);
    va_end(ap);
}

static bool
is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool
is_token_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
           c == '.' || c == '-';
}

static bool
is_token(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!is_token_char((uint8_t)*s))
            return false;
    return true;
}

/* Frees and wipes a text copy of n bytes. */
static void
free_text(char *t, size_t n)
{
    if (t != NULL) {
        cmn_wipe(t, n + 1);
        free(t);
    }
}

/* ---- parsed messages ---- */

void
cmn_tpsmsg_init(struct cmn_tpsmsg *m)
{
    m->type = CMN_TPS_MSG_NONE;
    m->text = NULL;
    m->text_len = 0;
    m->npairs = 0;
    m->err[0] = '\0';
}

void
cmn_tpsmsg_cleanup(struct cmn_tpsmsg *m)
{
    free_text(m->text, m->text_len);
    m->text = NULL;
    m->text_len = 0;
    m->npairs = 0;
    m->type = CMN_TPS_MSG_NONE;
}

/* Reads a §1.3 integer: leading digits, then end or CR/LF/space (the rest ignored). */
static enum cmn_rc
parse_int(const char *s, unsigned long max, unsigned long *v)
{
    unsigned long n = 0;
    size_t i = 0;
    bool big = false;

    if (!is_digit((uint8_t)s[0]))
        return CMN_EPROTO;
    for (; is_digit((uint8_t)s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (big || n > (max - d) / 10)
            big = true;
        else
            n = n * 10 + d;
    }
    if (s[i] != '\0' && s[i] != '\r' && s[i] != '\n' && s[i] != ' ')
        return CMN_EPROTO;
    if (big)
        return CMN_ETOOBIG;
    *v = n;
    return CMN_OK;
}

static struct cmn_tpsmsg_pair *
find_pair(struct cmn_tpsmsg *m, const char *name)
{
    for (size_t i = 0; i < m->npairs; i++)
        if (strcmp(m->pairs[i].name, name) == 0)
            return &m->pairs[i];
    return NULL;
}

enum cmn_rc
cmn_tpsmsg_parse(struct cmn_tpsmsg *m, const uint8_t *body, size_t len, size_t max)
{
    size_t seen = 0, pos = 0;
    unsigned long type;
    const char *mt;
    enum cmn_rc rc;

    cmn_tpsmsg_cleanup(m);
    m->err[0] = '\0';
    if (max == 0)
        max = CMN_TPSMSG_DEFAULT_MAX;
    if (len > max) {
        seterr(m->err, "message length %zu exceeds maximum %zu", len, max);
        return CMN_ETOOBIG;
    }
    if (len > 0 && memchr(body, '\0', len) != NULL) {
        seterr(m->err, "message contains a NUL byte at offset %zu",
               (size_t)((const uint8_t *)memchr(body, '\0', len) - body));
        return CMN_EPROTO;
    }
    m->text = malloc(len + 1);
    if (m->text == NULL) {
        seterr(m->err, "out of memory");
        return CMN_ENOMEM;
    }
    if (len > 0)
        memcpy(m->text, body, len);
    m->text[len] = '\0';
    m->text_len = len;

    while (pos <= len) {
        char *seg = m->text + pos, *amp, *eq;
        size_t seglen;
        struct cmn_tpsmsg_pair *p;

        amp = memchr(seg, '&', len - pos);
        seglen = amp != NULL ? (size_t)(amp - seg) : len - pos;
        pos += seglen + 1;
        seg[seglen] = '\0'; /* the '&' or the final NUL */
        eq = memchr(seg, '=', seglen);
        if (eq == NULL || eq == seg)
            continue; /* no '=' or empty name: skipped (§1.3) */
        *eq = '\0';
        if (++seen > CMN_TPSMSG_MAX_PAIRS) {
            seterr(m->err, "message has more than %d pairs", CMN_TPSMSG_MAX_PAIRS);
            rc = CMN_EPROTO;
            goto fail;
        }
        if (strcmp(seg, "s") == 0 || eq[1] == '\0')
            continue; /* the length pair is not a field; an empty value is absent */
        p = find_pair(m, seg);
        if (p == NULL)
            p = &m->pairs[m->npairs++];
        p->name = seg;
        p->value = eq + 1;
        p->value_len = seglen - (size_t)(eq + 1 - seg);
    }

    mt = cmn_tpsmsg_raw(m, "msg_type");
    if (mt == NULL) {
        seterr(m->err, "msg_type missing");
        rc = CMN_EPROTO;
        goto fail;
    }
    rc = parse_int(mt, 1000, &type);
    if (rc != CMN_OK || type < CMN_TPS_MSG_BEGIN_OP ||
        type > CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE) {
        seterr(m->err, "msg_type '%.12s' is not a known message type (2..17)", mt);
        rc = CMN_EPROTO;
        goto fail;
    }
    m->type = (int)type;
    return CMN_OK;
fail:
    {
        char keep[CMN_TPSMSG_ERR_MAX];

        memcpy(keep, m->err, sizeof(keep));
        cmn_tpsmsg_cleanup(m);
        memcpy(m->err, keep, sizeof(keep));
    }
    return rc;
}

/* Reads "s=<1-5 digits>&" at the start of p[0..n). Returns CMN_OK with the body length and
 * prefix length, CMN_ESHORT when n ends inside a possible prefix, CMN_EPROTO otherwise. */
static enum cmn_rc
read_prefix(const uint8_t *p, size_t n, size_t *body_len, size_t *prefix_len, char *err)
{
    size_t i, v = 0;

    if (n >= 1 && p[0] != 's') {
        seterr(err, "message does not start with \"s=\" (first byte 0x%02X)", p[0]);
        return CMN_EPROTO;
    }
    if (n >= 2 && p[1] != '=') {
        seterr(err, "message does not start with \"s=\" (second byte 0x%02X)", p[1]);
        return CMN_EPROTO;
    }
    for (i = 2; i < n && is_digit(p[i]); i++) {
        if (i - 2 == 5) {
            seterr(err, "length prefix has more than 5 digits");
            return CMN_EPROTO;
        }
        v = v * 10 + (size_t)(p[i] - '0');
    }
    if (i >= n)
        return CMN_ESHORT;
    if (i == 2) {
        seterr(err, "no digit after \"s=\" (byte 0x%02X)", p[i]);
        return CMN_EPROTO;
    }
    if (p[i] != '&') {
        seterr(err, "length prefix ends with byte 0x%02X instead of '&'", p[i]);
        return CMN_EPROTO;
    }
    *body_len = v;
    *prefix_len = i + 1;
    return CMN_OK;
}

enum cmn_rc
cmn_tpsmsg_parse_framed(struct cmn_tpsmsg *m, const uint8_t *msg, size_t len, size_t max)
{
    size_t blen = 0, plen = 0;
    enum cmn_rc rc;

    cmn_tpsmsg_cleanup(m);
    m->err[0] = '\0';
    if (max == 0)
        max = CMN_TPSMSG_DEFAULT_MAX;
    rc = read_prefix(msg, len, &blen, &plen, m->err);
    if (rc == CMN_ESHORT) {
        seterr(m->err, "message shorter than its \"s=<length>&\" prefix");
        return CMN_EPROTO;
    }
    if (rc != CMN_OK)
        return rc;
    if (blen != len - plen) {
        seterr(m->err, "length prefix s=%zu does not match body length %zu", blen, len - plen);
        return CMN_EPROTO;
    }
    return cmn_tpsmsg_parse(m, msg + plen, blen, max);
}

const char *
cmn_tpsmsg_raw(const struct cmn_tpsmsg *m, const char *name)
{
    for (size_t i = 0; i < m->npairs; i++)
        if (strcmp(m->pairs[i].name, name) == 0)
            return m->pairs[i].value;
    return NULL;
}

enum cmn_rc
cmn_tpsmsg_get_uint(struct cmn_tpsmsg *m, const char *name, unsigned long max, unsigned long *v)
{
    const char *s = cmn_tpsmsg_raw(m, name);
    enum cmn_rc rc;

    if (s == NULL) {
        seterr(m->err, "%.40s missing", name);
        return CMN_ENOTFOUND;
    }
    rc = parse_int(s, max, v);
    if (rc == CMN_EPROTO)
        seterr(m->err, "%.40s '%.12s' is not a decimal number", name, s);
    else if (rc == CMN_ETOOBIG)
        seterr(m->err, "%.40s '%.12s' is larger than %lu", name, s, max);
    return rc;
}

static const struct cmn_tpsmsg_pair *
pair_of(struct cmn_tpsmsg *m, const char *name)
{
    const struct cmn_tpsmsg_pair *p = find_pair(m, name);

    if (p == NULL)
        seterr(m->err, "%.40s missing", name);
    return p;
}

enum cmn_rc
cmn_tpsmsg_get_str(struct cmn_tpsmsg *m, const char *name, struct cmn_buf *out)
{
    const struct cmn_tpsmsg_pair *p = pair_of(m, name);
    size_t bad = 0, start = out->len;
    enum cmn_rc rc;

    if (p == NULL)
        return CMN_ENOTFOUND;
    rc = cmn_pct_decode(out, p->value, p->value_len, CMN_PCT_STRICT, &bad);
    if (rc == CMN_EINVAL) {
        /* No value in the message: it may be a password. */
        seterr(m->err, "%.40s: bad %% sequence at offset %zu", name, bad);
        return CMN_EPROTO;
    }
    if (rc == CMN_ETOOBIG) {
        seterr(m->err, "%.40s: decoded value longer than %zu bytes", name, out->max - start);
        return rc;
    }
    if (rc != CMN_OK) {
        seterr(m->err, "%.40s: out of memory", name);
        return rc;
    }
    (void)cmn_buf_cstr(out); /* NUL-terminate; room for it is kept by buf.c */
    return CMN_OK;
}

enum cmn_rc
cmn_tpsmsg_get_bytes(struct cmn_tpsmsg *m, const char *name, uint8_t *out, size_t out_size,
                     size_t *out_len)
{
    const struct cmn_tpsmsg_pair *p = pair_of(m, name);
    enum cmn_rc rc;

    if (p == NULL)
        return CMN_ENOTFOUND;
    rc = cmn_pct_decode_mem(p->value, p->value_len, CMN_PCT_STRICT, out, out_size, out_len);
    if (rc == CMN_EINVAL) {
        seterr(m->err, "%.40s: bad %% sequence", name);
        return CMN_EPROTO;
    }
    if (rc == CMN_ETOOBIG)
        seterr(m->err, "%.40s: decoded value longer than %zu bytes", name, out_size);
    return rc;
}

enum cmn_rc
cmn_tpsmsg_get_pdu(struct cmn_tpsmsg *m, uint8_t *out, size_t out_size, size_t *out_len)
{
    unsigned long size;
    size_t got = 0;
    enum cmn_rc rc;

    rc = cmn_tpsmsg_get_uint(m, "pdu_size", 65535, &size);
    if (rc != CMN_OK)
        return CMN_EPROTO;
    rc = cmn_tpsmsg_get_bytes(m, "pdu_data", out, out_size, &got);
    if (rc == CMN_ENOTFOUND)
        return CMN_EPROTO;
    if (rc != CMN_OK)
        return rc;
    if (got != size) {
        seterr(m->err, "pdu_size %lu does not match decoded pdu_data length %zu", size, got);
        return CMN_EPROTO;
    }
    if (m->type == CMN_TPS_MSG_TOKEN_PDU_RESPONSE && got < 2) {
        seterr(m->err, "card answer of %zu bytes has no status word", got);
        return CMN_EPROTO;
    }
    *out_len = got;
    return CMN_OK;
}

/* ---- extensions ---- */

#define EXT_MAX_RAW 4096

void
cmn_tpsext_init(struct cmn_tpsext *e)
{
    e->text = NULL;
    e->text_len = 0;
    e->n = 0;
    e->err[0] = '\0';
}

void
cmn_tpsext_cleanup(struct cmn_tpsext *e)
{
    free_text(e->text, e->text_len);
    e->text = NULL;
    e->text_len = 0;
    e->n = 0;
}

enum cmn_rc
cmn_tpsext_parse(struct cmn_tpsext *e, const char *raw)
{
    size_t rawlen, dlen = 0, pos = 0;
    char *t;
    enum cmn_rc rc;

    cmn_tpsext_cleanup(e);
    e->err[0] = '\0';
    if (raw == NULL)
        return CMN_OK;
    rawlen = strlen(raw);
    if (rawlen > EXT_MAX_RAW) {
        seterr(e->err, "extensions longer than %d bytes", EXT_MAX_RAW);
        return CMN_ETOOBIG;
    }
    t = malloc(rawlen + 1);
    if (t == NULL) {
        seterr(e->err, "out of memory");
        return CMN_ENOMEM;
    }
    e->text = t;
    e->text_len = rawlen;
    /* Lenient: a '%' that starts no %XX stands for itself (tpsclient's "%%26", §7.3). The
     * decoding is never longer than rawlen, so this cannot fail. */
    rc = cmn_pct_decode_mem(raw, rawlen, CMN_PCT_LENIENT, (uint8_t *)t, rawlen, &dlen);
    if (rc != CMN_OK) {
        seterr(e->err, "extensions cannot be decoded");
        goto fail;
    }
    t[dlen] = '\0';
    if (memchr(t, '\0', dlen) != NULL) {
        seterr(e->err, "extensions contain a NUL byte");
        rc = CMN_EPROTO;
        goto fail;
    }
    while (pos <= dlen) {
        char *seg = t + pos, *amp, *eq;
        size_t seglen, i;

        amp = memchr(seg, '&', dlen - pos);
        seglen = amp != NULL ? (size_t)(amp - seg) : dlen - pos;
        pos += seglen + 1;
        seg[seglen] = '\0';
        eq = memchr(seg, '=', seglen);
        if (eq == NULL || eq == seg)
            continue; /* empty pair (ESC's trailing '&'), no '=', or empty name */
        *eq = '\0';
        for (i = 0; i < e->n; i++)
            if (strcmp(e->items[i].name, seg) == 0)
                break;
        if (i == e->n) {
            if (e->n == CMN_TPSEXT_MAX) {
                seterr(e->err, "more than %d extensions", CMN_TPSEXT_MAX);
                rc = CMN_EPROTO;
                goto fail;
            }
            e->n++;
        }
        e->items[i].name = seg;
        e->items[i].value = eq + 1;
    }
    return CMN_OK;
fail:
    {
        char keep[CMN_TPSMSG_ERR_MAX];

        memcpy(keep, e->err, sizeof(keep));
        cmn_tpsext_cleanup(e);
        memcpy(e->err, keep, sizeof(keep));
    }
    return rc;
}

const char *
cmn_tpsext_get(const struct cmn_tpsext *e, const char *name)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->items[i].name, name) == 0)
            return e->items[i].value;
    return NULL;
}

bool
cmn_tpsext_is_true(const struct cmn_tpsext *e, const char *name)
{
    const char *v = cmn_tpsext_get(e, name);

    return v != NULL && strcasecmp(v, "true") == 0;
}

bool
cmn_tpsext_has(const struct cmn_tpsext *e, const char *name)
{
    return cmn_tpsext_get(e, name) != NULL;
}

enum cmn_rc
cmn_tpsext_join(struct cmn_buf *out, const struct cmn_tpsext_item *items, size_t n)
{
    size_t start = out->len;
    enum cmn_rc rc = CMN_OK;

    for (size_t i = 0; i < n; i++) {
        const char *nm = items[i].name, *v = items[i].value ? items[i].value : "";

        if (nm == NULL || nm[0] == '\0' || strpbrk(nm, "&=") != NULL || strchr(v, '&')) {
            rc = CMN_EINVAL;
            break;
        }
        rc = cmn_buf_printf(out, "%s%s=%s", i ? "&" : "", nm, v);
        if (rc != CMN_OK)
            break;
    }
    if (rc != CMN_OK)
        out->len = start;
    return rc;
}

/* ---- builders ---- */

/* A message body under construction: scratch memory wiped at the end (it may hold a
 * password or a PIN). */
struct body {
    struct cmn_buf b;
    enum cmn_rc rc; /* first failure; later puts do nothing */
};

static void
body_start(struct body *bd, int type)
{
    cmn_buf_init_secret(&bd->b, CMN_TPSMSG_HARD_MAX);
    bd->rc = cmn_buf_printf(&bd->b, "msg_type=%d", type);
}

static void
put_uint(struct body *bd, const char *name, unsigned long v)
{
    if (bd->rc == CMN_OK)
        bd->rc = cmn_buf_printf(&bd->b, "&%s=%lu", name, v);
}

static void
put_raw(struct body *bd, const char *name, const char *v)
{
    if (bd->rc == CMN_OK && v != NULL)
        bd->rc = cmn_buf_printf(&bd->b, "&%s=%s", name, v);
}

enum enc { ENC_FORM, ENC_JAVA, ENC_ALL };

static void
put_enc_mem(struct body *bd, const char *name, const uint8_t *v, size_t n, enum enc how)
{
    if (bd->rc == CMN_OK)
        bd->rc = cmn_buf_printf(&bd->b, "&%s=", name);
    if (bd->rc != CMN_OK)
        return;
    if (how == ENC_ALL)
        bd->rc = cmn_pct_encode_all(&bd->b, v, n);
    else if (how == ENC_JAVA)
        bd->rc = cmn_pct_encode_java(&bd->b, v, n);
    else
        bd->rc = cmn_pct_encode(&bd->b, v, n);
}

static void
put_enc_how(struct body *bd, const char *name, const char *v, enum enc how)
{
    if (v != NULL)
        put_enc_mem(bd, name, (const uint8_t *)v, strlen(v), how);
}

static void
put_enc(struct body *bd, const char *name, const char *v)
{
    put_enc_how(bd, name, v, ENC_FORM);
}

/* Frames the body into out ("s=<len>&" + body) atomically, and releases the scratch. */
static enum cmn_rc
body_finish(struct body *bd, struct cmn_buf *out)
{
    size_t start = out->len;
    enum cmn_rc rc = bd->rc;

    if (rc == CMN_OK)
        rc = cmn_buf_printf(out, "s=%zu&", bd->b.len);
    if (rc == CMN_OK)
        rc = cmn_buf_append(out, bd->b.data, bd->b.len);
    if (rc != CMN_OK)
        out->len = start;
    cmn_buf_cleanup(&bd->b);
    return rc;
}

static enum cmn_rc
body_abort(struct body *bd, enum cmn_rc rc)
{
    cmn_buf_cleanup(&bd->b);
    return rc;
}

enum cmn_rc
cmn_tpsmsg_build_begin_op(struct cmn_buf *out, int op, const char *ext_blob)
{
    struct body bd;

    if (op < 0 || op > CMN_TPS_OP_FORMAT)
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_BEGIN_OP);
    put_uint(&bd, "operation", (unsigned long)op);
    if (ext_blob != NULL && ext_blob[0] != '\0')
        put_enc(&bd, "extensions", ext_blob);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_login_request(struct cmn_buf *out, bool invalid_pw, bool blocked)
{
    struct body bd;

    body_start(&bd, CMN_TPS_MSG_LOGIN_REQUEST);
    put_uint(&bd, "invalid_pw", invalid_pw);
    put_uint(&bd, "blocked", blocked);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_login_response(struct cmn_buf *out, const char *screen_name,
                                const char *password)
{
    struct body bd;

    body_start(&bd, CMN_TPS_MSG_LOGIN_RESPONSE);
    put_enc(&bd, "screen_name", screen_name);
    put_enc(&bd, "password", password);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_secureid_request(struct cmn_buf *out, bool pin_required, bool next_value)
{
    struct body bd;

    body_start(&bd, CMN_TPS_MSG_SECUREID_REQUEST);
    put_uint(&bd, "pin_required", pin_required);
    put_uint(&bd, "next_value", next_value);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_secureid_response(struct cmn_buf *out, const char *value, const char *pin)
{
    struct body bd;

    body_start(&bd, CMN_TPS_MSG_SECUREID_RESPONSE);
    put_enc(&bd, "value", value);
    put_enc(&bd, "pin", pin);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_asq_request(struct cmn_buf *out, const char *question)
{
    struct body bd;

    if (question == NULL)
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_ASQ_REQUEST);
    put_enc(&bd, "question", question);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_asq_response(struct cmn_buf *out, const char *answer)
{
    struct body bd;

    if (answer == NULL)
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_ASQ_RESPONSE);
    put_enc(&bd, "answer", answer);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_token_pdu_request(struct cmn_buf *out, const uint8_t *apdu, size_t n)
{
    struct body bd;

    if (apdu == NULL || n < 1 || n > 261) /* §1.5: never an APDU > 261 bytes */
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_TOKEN_PDU_REQUEST);
    put_uint(&bd, "pdu_size", n);
    put_enc_mem(&bd, "pdu_data", apdu, n, ENC_ALL);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_token_pdu_response(struct cmn_buf *out, const uint8_t *rapdu, size_t n)
{
    struct body bd;

    if (rapdu == NULL || n < 2 || n > 258)
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_TOKEN_PDU_RESPONSE);
    put_uint(&bd, "pdu_size", n);
    put_enc_mem(&bd, "pdu_data", rapdu, n, ENC_FORM);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_new_pin_request(struct cmn_buf *out, unsigned min_len, unsigned max_len)
{
    struct body bd;

    if (min_len > max_len)
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_NEW_PIN_REQUEST);
    put_uint(&bd, "minimum_length", min_len);
    put_uint(&bd, "maximum_length", max_len);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_new_pin_response(struct cmn_buf *out, const char *pin)
{
    struct body bd;

    if (pin == NULL || pin[0] == '\0')
        return CMN_EINVAL;
    for (const char *p = pin; *p != '\0'; p++) {
        uint8_t c = (uint8_t)*p;

        /* Sent raw (§1.4): refuse what would change the message's structure or meaning. */
        if (c <= 0x20 || c >= 0x7f || c == '&' || c == '=' || c == '%' || c == '+')
            return CMN_EINVAL;
    }
    body_start(&bd, CMN_TPS_MSG_NEW_PIN_RESPONSE);
    put_raw(&bd, "new_pin", pin);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_end_op(struct cmn_buf *out, int op, int result, int status)
{
    struct body bd;

    if (op < 0 || op > CMN_TPS_OP_FORMAT || result < 0 || result > 1 || status < 0 ||
        status > CMN_TPS_STATUS_MAX)
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_END_OP);
    put_uint(&bd, "operation", (unsigned long)op);
    put_uint(&bd, "result", (unsigned long)result);
    put_uint(&bd, "message", (unsigned long)status);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_status_update_request(struct cmn_buf *out, unsigned state, const char *task)
{
    struct body bd;

    if (state > 100 || !is_token(task))
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_STATUS_UPDATE_REQUEST);
    put_uint(&bd, "current_state", state);
    put_raw(&bd, "next_task_name", task);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_status_update_response(struct cmn_buf *out, unsigned state)
{
    struct body bd;

    if (state > 100)
        return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_STATUS_UPDATE_RESPONSE);
    put_uint(&bd, "current_state", state);
    return body_finish(&bd, out);
}

#define MAX_PARAMS 40

enum cmn_rc
cmn_tpsmsg_build_ext_login_request(struct cmn_buf *out, bool invalid_pw, bool blocked,
                                   const char *title, const char *description,
                                   const struct cmn_tps_authparam *params, size_t n)
{
    struct body bd;
    struct cmn_buf inner;

    if (n > MAX_PARAMS || (n > 0 && params == NULL))
        return CMN_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (params[i].id == NULL || params[i].id[0] == '\0')
            return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST);
    put_uint(&bd, "invalid_pw", invalid_pw);
    put_uint(&bd, "blocked", blocked);
    /* Java's encoding for this message, as the Java TPS sends it (§8, §9.2). */
    put_enc_how(&bd, "title", title, ENC_JAVA);
    put_enc_how(&bd, "description", description, ENC_JAVA);
    cmn_buf_init(&inner, CMN_TPSMSG_HARD_MAX);
    for (size_t i = 0; i < n && bd.rc == CMN_OK; i++) {
        const struct cmn_tps_authparam *p = &params[i];
        char name[32];

        cmn_buf_reset(&inner);
        bd.rc = cmn_buf_printf(&inner, "id=%s&name=%s&desc=%s&type=%s&option=%s", p->id,
                               p->name ? p->name : "", p->desc ? p->desc : "",
                               p->type ? p->type : "", p->option ? p->option : "");
        if (bd.rc != CMN_OK)
            break;
        (void)snprintf(name, sizeof(name), "required_parameter%zu", i);
        put_enc_mem(&bd, name, inner.data, inner.len, ENC_JAVA);
    }
    cmn_buf_cleanup(&inner);
    return body_finish(&bd, out);
}

enum cmn_rc
cmn_tpsmsg_build_ext_login_response(struct cmn_buf *out, const struct cmn_tps_kv *kv, size_t n)
{
    struct body bd;

    if (n > MAX_PARAMS || (n > 0 && kv == NULL))
        return CMN_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!is_token(kv[i].name) || strcmp(kv[i].name, "msg_type") == 0 ||
            strcmp(kv[i].name, "s") == 0)
            return CMN_EINVAL;
    body_start(&bd, CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE);
    for (size_t i = 0; i < n; i++)
        put_enc(&bd, kv[i].name, kv[i].value ? kv[i].value : "");
    if (bd.rc != CMN_OK)
        return body_abort(&bd, bd.rc);
    return body_finish(&bd, out);
}

/* ---- framer ---- */

void
cmn_tpsframer_init(struct cmn_tpsframer *f, size_t max)
{
    if (max == 0)
        max = CMN_TPSMSG_DEFAULT_MAX;
    if (max > CMN_TPSMSG_HARD_MAX)
        max = CMN_TPSMSG_HARD_MAX;
    f->max = max;
    /* Room for two whole messages: a client that merges is tolerated, one that floods is not. */
    cmn_buf_init_secret(&f->in, 2 * (max + 8));
    f->err[0] = '\0';
}

void
cmn_tpsframer_cleanup(struct cmn_tpsframer *f)
{
    cmn_buf_cleanup(&f->in);
}

enum cmn_rc
cmn_tpsframer_feed(struct cmn_tpsframer *f, const uint8_t *p, size_t n)
{
    enum cmn_rc rc = cmn_buf_append(&f->in, p, n);

    if (rc == CMN_ETOOBIG)
        seterr(f->err, "more than %zu request bytes pending", f->in.max);
    else if (rc != CMN_OK)
        seterr(f->err, "out of memory");
    return rc;
}

enum cmn_rc
cmn_tpsframer_next(struct cmn_tpsframer *f, struct cmn_tpsmsg *m)
{
    size_t blen = 0, plen = 0;
    enum cmn_rc rc;

    f->err[0] = '\0';
    if (f->in.len == 0)
        return CMN_ESHORT;
    rc = read_prefix(f->in.data, f->in.len, &blen, &plen, f->err);
    if (rc != CMN_OK)
        return rc;
    if (blen > f->max) {
        seterr(f->err, "announced message length %zu exceeds maximum %zu", blen, f->max);
        return CMN_ETOOBIG;
    }
    if (f->in.len - plen < blen)
        return CMN_ESHORT;
    rc = cmn_tpsmsg_parse(m, f->in.data + plen, blen, f->max);
    if (rc != CMN_OK)
        memcpy(f->err, m->err, sizeof(f->err));
    cmn_buf_consume(&f->in, plen + blen);
    return rc;
}

size_t
cmn_tpsframer_pending(const struct cmn_tpsframer *f)
{
    return f->in.len;
}
