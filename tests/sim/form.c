/* tests/sim/form.c - pki-sim request bodies and responses: form decoding, the HASH and
 * base64 encodings of backends §0, caller groups, response buffers. */
#include "tests/sim/sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/pct.h"

static void
param_free(struct sim_param *p)
{
    if (p->val != NULL)
        cmn_wipe(p->val, p->len); /* values carry wrapped keys and challenges */
    free(p->name);
    free(p->val);
    p->name = NULL;
    p->val = NULL;
    p->len = 0;
}

void
sim_form_free(struct sim_form *f)
{
    for (size_t i = 0; i < f->n; i++)
        param_free(&f->p[i]);
    f->n = 0;
}

/* Decodes in[0..n) into a fresh NUL-terminated heap string; *len excludes the NUL. */
static enum cmn_rc
decode_dup(const char *in, size_t n, char **out, size_t *len)
{
    struct cmn_buf b;
    enum cmn_rc rc;

    cmn_buf_init(&b, SIM_BODY_MAX);
    rc = cmn_pct_decode(&b, in, n, CMN_PCT_LENIENT, NULL);
    if (rc == CMN_OK)
        rc = cmn_buf_putc(&b, 0);
    if (rc != CMN_OK) {
        cmn_buf_cleanup(&b);
        return rc;
    }
    *len = b.len - 1;
    *out = (char *)b.data; /* ownership moves to the caller */
    return CMN_OK;
}

enum cmn_rc
sim_form_parse(const char *body, size_t n, struct sim_form *f)
{
    size_t i = 0;
    enum cmn_rc rc;

    f->n = 0;
    while (i < n) {
        size_t end = i, eq;
        size_t nlen;
        struct sim_param *p;

        while (end < n && body[end] != '&')
            end++;
        if (end > i) {
            if (f->n == SIM_FORM_MAX)
                return CMN_ETOOBIG;
            eq = i;
            while (eq < end && body[eq] != '=')
                eq++;
            p = &f->p[f->n];
            rc = decode_dup(body + i, eq - i, &p->name, &nlen);
            if (rc != CMN_OK)
                return rc;
            if (eq < end)
                rc = decode_dup(body + eq + 1, end - eq - 1, &p->val, &p->len);
            else
                rc = decode_dup("", 0, &p->val, &p->len);
            if (rc != CMN_OK) {
                free(p->name);
                p->name = NULL;
                return rc;
            }
            f->n++;
        }
        i = end + 1;
    }
    return CMN_OK;
}

const struct sim_param *
sim_form_get(const struct sim_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->p[i].name, name) == 0)
            return &f->p[i];
    return NULL;
}

const struct sim_param *
sim_form_get2(const struct sim_form *f, const char *a, const char *b)
{
    const struct sim_param *p = sim_form_get(f, a);

    return p != NULL ? p : sim_form_get(f, b);
}

enum cmn_rc
sim_hash_decode(const char *s, size_t n, uint8_t *out, size_t out_size, size_t *len)
{
    return cmn_pct_hash_decode(s, n, false, out, out_size, len);
}

enum cmn_rc
sim_hash_encode(struct cmn_buf *out, const uint8_t *in, size_t n)
{
    return cmn_pct_hash_append(out, in, n);
}

enum cmn_rc
sim_b64_append(struct cmn_buf *out, const uint8_t *in, size_t n)
{
    uint8_t *dst;
    size_t need = 4 * ((n + 2) / 3) + 1;
    enum cmn_rc rc;
    int w;

    if (n > (size_t)1 << 28)
        return CMN_ETOOBIG;
    rc = cmn_buf_reserve(out, need, &dst);
    if (rc != CMN_OK)
        return rc;
    w = EVP_EncodeBlock(dst, in, (int)n);
    if (w < 0)
        return CMN_ECRYPTO;
    out->len += (size_t)w;
    return CMN_OK;
}

enum cmn_rc
sim_b64_decode(const char *s, size_t n, struct cmn_buf *out)
{
    struct cmn_buf clean;
    uint8_t *dst;
    size_t pad = 0;
    enum cmn_rc rc;
    int w;

    cmn_buf_init(&clean, SIM_BODY_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
            continue;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=')) {
            rc = CMN_EINVAL;
            goto out;
        }
        rc = cmn_buf_putc(&clean, (uint8_t)c);
        if (rc != CMN_OK)
            goto out;
    }
    while (clean.len % 4 != 0) { /* tolerate missing padding */
        rc = cmn_buf_putc(&clean, '=');
        if (rc != CMN_OK)
            goto out;
    }
    if (clean.len == 0) {
        rc = CMN_EINVAL;
        goto out;
    }
    for (size_t i = clean.len; i > 0 && clean.data[i - 1] == '=' && pad < 2; i--)
        pad++;
    rc = cmn_buf_reserve(out, clean.len / 4 * 3, &dst);
    if (rc != CMN_OK)
        goto out;
    w = EVP_DecodeBlock(dst, clean.data, (int)clean.len);
    if (w < 0 || (size_t)w < pad) {
        rc = CMN_EINVAL;
        goto out;
    }
    out->len += (size_t)w - pad;
    rc = CMN_OK;
out:
    cmn_buf_cleanup(&clean);
    return rc;
}

bool
sim_user_in_group(const struct sim_user *u, const char *group)
{
    size_t gl = strlen(group);
    const char *p = u->groups;

    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);

        while (l > 0 && *p == ' ') {
            p++;
            l--;
        }
        while (l > 0 && p[l - 1] == ' ')
            l--;
        if (l == gl && strncmp(p, group, gl) == 0)
            return true;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return false;
}

void
sim_resp_init(struct sim_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->http = 200;
    r->ctype = "text/html";
    cmn_buf_init(&r->body, SIM_RESP_MAX);
}

void
sim_resp_cleanup(struct sim_resp *r)
{
    cmn_buf_cleanup(&r->body);
}

void
sim_resp_error_page(struct sim_resp *r, int http, const char *why)
{
    cmn_buf_reset(&r->body);
    r->http = http;
    r->ctype = "text/html";
    (void)cmn_buf_printf(&r->body,
                         "<html><head><title>Error</title></head><body><h1>HTTP Status %d</h1>"
                         "<p>%s</p></body></html>",
                         http, why);
    sim_resp_note(r, "http=%d", http);
}

void
sim_resp_note(struct sim_resp *r, const char *fmt, ...)
{
    size_t used = strlen(r->note);
    va_list ap;
    int w;

    if (used + 2 >= sizeof(r->note))
        return;
    if (used > 0)
        r->note[used++] = ' ';
    va_start(ap, fmt);
    w = vsnprintf(r->note + used, sizeof(r->note) - used, fmt, ap);
    va_end(ap);
    if (w < 0)
        r->note[used] = '\0';
}
