/* common/cfg.c - CS.cfg-style `dotted.key=value` parser and validator (STYLE §7): one pass
 * splits lines, a second matches each key to a declaration and checks its value; every error
 * is collected, sorted by line and reported; the result is an immutable, refcounted snapshot. */
#include "common/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
    const char *key;   /* points into cmn_cfg.text */
    const char *value; /* points into cmn_cfg.text */
    unsigned line;
    const struct cmn_cfg_key *decl;
    unsigned long long u; /* CFG_UINT value, CFG_BOOL 0/1 */
    int word;             /* CFG_ENUM index */
};

struct cmn_cfg {
    atomic_int refs;
    char *name;
    char *text;                         /* the file, cut into NUL-terminated keys and values */
    const struct cmn_cfg_key **tables;  /* copy of the NULL-terminated table list */
    struct entry *e;                    /* sorted by key */
    size_t n;
};

/* One collected error; sorted by line before being reported (line 0 = whole file, last). */
struct err {
    unsigned line;
    size_t seq;
    char *msg;
};

struct errs {
    struct err *v;
    size_t n, cap;
    bool oom;
};

static void
err_add(struct errs *es, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
err_add(struct errs *es, unsigned line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    struct err *nv;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (es->n == es->cap) {
        size_t ncap = es->cap ? es->cap * 2 : 16;

        nv = realloc(es->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            es->oom = true;
            return;
        }
        es->v = nv;
        es->cap = ncap;
    }
    es->v[es->n].line = line;
    es->v[es->n].seq = es->n;
    es->v[es->n].msg = strdup(msg);
    if (es->v[es->n].msg == NULL) {
        es->oom = true;
        return;
    }
    es->n++;
}

static int
err_cmp(const void *a, const void *b)
{
    const struct err *x = a, *y = b;
    unsigned lx = x->line ? x->line : ~0u, ly = y->line ? y->line : ~0u;

    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
errs_flush(struct errs *es, const char *name, struct cmn_buf *out)
{
    if (es->n > 0)
        qsort(es->v, es->n, sizeof(*es->v), err_cmp);
    for (size_t k = 0; k < es->n; k++) {
        if (out != NULL) {
            if (es->v[k].line)
                (void)cmn_buf_printf(out, "%s:%u: %s\n", name, es->v[k].line, es->v[k].msg);
            else
                (void)cmn_buf_printf(out, "%s: %s\n", name, es->v[k].msg);
        }
        free(es->v[k].msg);
    }
    free(es->v);
    es->v = NULL;
    es->n = es->cap = 0;
}

/* A value as shown in messages: printable ASCII kept, other bytes as \xNN, cut at 200. */
static const char *
shown(const struct cmn_cfg_key *d, const char *v, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (d != NULL && d->secret) {
        (void)snprintf(out, size, "<redacted>");
        return out;
    }
    for (; *v != '\0' && o + 5 < size; v++) {
        unsigned char c = (unsigned char)*v;

        if (o >= 200) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c > 0x7E || c == '\\' || c == '\'') {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------------------------------
 * Patterns
 * ------------------------------------------------------------------------------------------ */

/* Glob within one segment: '*' = one or more characters. p/k are not NUL-terminated. */
static bool
seg_match(const char *p, size_t pn, const char *k, size_t kn)
{
    while (pn > 0) {
        if (*p == '*') {
            /* one or more: try every split that leaves at least one char to the star */
            for (size_t take = 1; take <= kn; take++)
                if (seg_match(p + 1, pn - 1, k + take, kn - take))
                    return true;
            return false;
        }
        if (kn == 0 || *p != *k)
            return false;
        p++, pn--, k++, kn--;
    }
    return kn == 0;
}

static bool
pattern_match(const char *pat, const char *key)
{
    for (;;) {
        const char *pe = strchr(pat, '.'), *ke = strchr(key, '.');
        size_t pn = pe ? (size_t)(pe - pat) : strlen(pat);
        size_t kn = ke ? (size_t)(ke - key) : strlen(key);

        if (pe == NULL && pn == 2 && pat[0] == '*' && pat[1] == '*')
            return *key != '\0' && kn > 0; /* one or more whole segments */
        if (kn == 0 || !seg_match(pat, pn, key, kn))
            return false;
        if (pe == NULL || ke == NULL)
            return pe == NULL && ke == NULL;
        pat = pe + 1;
        key = ke + 1;
    }
}

static bool
is_pattern(const char *name)
{
    return strchr(name, '*') != NULL;
}

static const struct cmn_cfg_key *
decl_find(const struct cmn_cfg_key *const *tables, const char *key)
{
    if (tables == NULL || key == NULL)
        return NULL;
    for (size_t t = 0; tables[t] != NULL; t++)
        for (const struct cmn_cfg_key *d = tables[t]; d->name != NULL; d++)
            if (!is_pattern(d->name) && strcmp(d->name, key) == 0)
                return d;
    for (size_t t = 0; tables[t] != NULL; t++)
        for (const struct cmn_cfg_key *d = tables[t]; d->name != NULL; d++)
            if (is_pattern(d->name) && pattern_match(d->name, key))
                return d;
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Host lists
 * ------------------------------------------------------------------------------------------ */

static void
why_set(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
why_set(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || size == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

static bool
host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

static bool
v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
           c == ':' || c == '.' || c == '%' || host_char(c);
}

/* Parses one entry tok[0..n). */
static enum cmn_rc
host_parse(const char *tok, size_t n, struct cmn_cfg_host *h, char *why, size_t why_size)
{
    const char *host, *port;
    size_t hn, pn;
    char pbuf[8];
    unsigned long long v;

    memset(h, 0, sizeof(*h));
    if (tok[0] == '[') {
        const char *close = memchr(tok, ']', n);

        if (close == NULL) {
            why_set(why, why_size, "entry '%.*s': missing ']'", (int)n, tok);
            return CMN_EINVAL;
        }
        host = tok + 1;
        hn = (size_t)(close - host);
        if (close + 1 == tok + n || close[1] != ':') {
            why_set(why, why_size, "entry '%.*s': missing port", (int)n, tok);
            return CMN_EINVAL;
        }
        port = close + 2;
        for (size_t k = 0; k < hn; k++)
            if (!v6_char(host[k])) {
                why_set(why, why_size, "entry '%.*s': bad IPv6 address", (int)n, tok);
                return CMN_EINVAL;
            }
        if (hn == 0 || memchr(host, ':', hn) == NULL) {
            why_set(why, why_size, "entry '%.*s': bad IPv6 address", (int)n, tok);
            return CMN_EINVAL;
        }
        h->ipv6 = true;
    } else {
        const char *colon = NULL;

        for (size_t k = 0; k < n; k++)
            if (tok[k] == ':')
                colon = tok + k;
        if (colon == NULL) {
            why_set(why, why_size, "entry '%.*s': missing port", (int)n, tok);
            return CMN_EINVAL;
        }
        host = tok;
        hn = (size_t)(colon - tok);
        port = colon + 1;
        if (memchr(host, ':', hn) != NULL) {
            why_set(why, why_size, "entry '%.*s': IPv6 address must be in brackets", (int)n,
                    tok);
            return CMN_EINVAL;
        }
        for (size_t k = 0; k < hn; k++)
            if (!host_char(host[k])) {
                why_set(why, why_size, "entry '%.*s': bad character in host name", (int)n, tok);
                return CMN_EINVAL;
            }
    }
    if (hn == 0) {
        why_set(why, why_size, "entry '%.*s': empty host", (int)n, tok);
        return CMN_EINVAL;
    }
    if (hn > CMN_CFG_MAX_HOST) {
        why_set(why, why_size, "entry '%.*s...': host name too long", 20, tok);
        return CMN_EINVAL;
    }
    pn = (size_t)(tok + n - port);
    if (pn == 0) {
        why_set(why, why_size, "entry '%.*s': missing port", (int)n, tok);
        return CMN_EINVAL;
    }
    if (pn >= sizeof(pbuf) || (memcpy(pbuf, port, pn), pbuf[pn] = '\0',
                               cmn_parse_uint(pbuf, 1, 65535, &v) != CMN_OK)) {
        why_set(why, why_size, "entry '%.*s': port must be between 1 and 65535", (int)n, tok);
        return CMN_EINVAL;
    }
    memcpy(h->host, host, hn);
    h->host[hn] = '\0';
    h->port = (uint16_t)v;
    return CMN_OK;
}

enum cmn_rc
cmn_cfg_hostlist_parse(const char *s, struct cmn_cfg_hostlist *out, char *why, size_t why_size)
{
    struct cmn_cfg_hostlist *hl;
    enum cmn_rc rc = CMN_OK;

    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (s == NULL || out == NULL)
        return CMN_EINVAL;
    hl = calloc(1, sizeof(*hl));
    if (hl == NULL)
        return CMN_ENOMEM;
    while (*s != '\0') {
        size_t n;

        if (*s == ' ' || *s == '\t' || *s == ',') {
            s++;
            continue;
        }
        n = strcspn(s, " \t,");
        if (hl->n == CMN_CFG_MAX_HOSTS) {
            why_set(why, why_size, "more than %d entries", CMN_CFG_MAX_HOSTS);
            rc = CMN_ETOOBIG;
            goto out;
        }
        rc = host_parse(s, n, &hl->h[hl->n], why, why_size);
        if (rc != CMN_OK)
            goto out;
        hl->n++;
        s += n;
    }
    if (hl->n == 0) {
        why_set(why, why_size, "empty host list");
        rc = CMN_EINVAL;
        goto out;
    }
    *out = *hl;
out:
    free(hl);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Validation of one value
 * ------------------------------------------------------------------------------------------ */

static const char *
type_name(enum cmn_cfg_type t)
{
    switch (t) {
    case CFG_STR:
        return "string";
    case CFG_UINT:
        return "integer";
    case CFG_BOOL:
        return "boolean";
    case CFG_HOSTLIST:
        return "host list";
    case CFG_PATH:
        return "path";
    case CFG_SECRET_FILE:
        return "secret file";
    case CFG_ENUM:
        return "word";
    }
    return "?";
}

/* " (default X)" or "" for required keys and keys without default. */
static void
default_text(const struct cmn_cfg_key *d, char *out, size_t size)
{
    out[0] = '\0';
    if (d->required)
        return;
    if (d->type == CFG_UINT)
        (void)snprintf(out, size, " (default %llu)", d->def);
    else if (d->type == CFG_BOOL)
        (void)snprintf(out, size, " (default %s)",
                       d->defstr ? d->defstr : (d->def ? "true" : "false"));
    else if (d->defstr != NULL && !d->secret)
        (void)snprintf(out, size, " (default %s)", d->defstr);
}

static int
word_index(const struct cmn_cfg_key *d, const char *v)
{
    if (d->words == NULL || v == NULL)
        return -1;
    for (int k = 0; d->words[k] != NULL; k++)
        if (strcmp(d->words[k], v) == 0)
            return k;
    return -1;
}

/* Checks a secret file by path: exists, regular, no group/other access. */
static bool
secret_ok(const char *path, char *why, size_t size)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        why_set(why, size, "cannot use secret file: %s", strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        why_set(why, size, "secret file must be a regular file");
        return false;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        why_set(why, size,
                "secret file is accessible by group or other (mode %04o): chmod 600 it",
                (unsigned)(st.st_mode & 07777));
        return false;
    }
    return true;
}

/* Validates e->value against e->decl and fills the parsed fields; on failure writes why. */
static bool
value_ok(struct entry *e, char *why, size_t size)
{
    const struct cmn_cfg_key *d = e->decl;
    char dtext[300];
    unsigned long long v;
    struct cmn_cfg_hostlist *hl;
    enum cmn_rc rc;

    default_text(d, dtext, sizeof(dtext));
    switch (d->type) {
    case CFG_STR:
        if (d->required && e->value[0] == '\0') {
            why_set(why, size, "must not be empty");
            return false;
        }
        return true;
    case CFG_UINT:
        if (cmn_parse_uint(e->value, d->min, d->max, &v) != CMN_OK) {
            why_set(why, size, "must be between %llu and %llu%s", d->min, d->max, dtext);
            return false;
        }
        e->u = v;
        return true;
    case CFG_BOOL:
        if (strcmp(e->value, "true") == 0) {
            e->u = 1;
            return true;
        }
        if (strcmp(e->value, "false") == 0) {
            e->u = 0;
            return true;
        }
        why_set(why, size, "must be true or false%s", dtext);
        return false;
    case CFG_HOSTLIST: {
        char hwhy[300];

        hl = malloc(sizeof(*hl));
        if (hl == NULL) {
            why_set(why, size, "out of memory");
            return false;
        }
        rc = cmn_cfg_hostlist_parse(e->value, hl, hwhy, sizeof(hwhy));
        free(hl);
        if (rc != CMN_OK) {
            why_set(why, size, "%s; expected host:port[ host:port ...]", hwhy);
            return false;
        }
        return true;
    }
    case CFG_PATH:
        if (e->value[0] == '\0') {
            why_set(why, size, "must be a non-empty path");
            return false;
        }
        for (const char *p = e->value; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7F) {
                why_set(why, size, "path contains a control character");
                return false;
            }
        return true;
    case CFG_SECRET_FILE:
        if (e->value[0] == '\0') {
            why_set(why, size, "must name a secret file");
            return false;
        }
        return secret_ok(e->value, why, size);
    case CFG_ENUM:
        e->word = word_index(d, e->value);
        if (e->word < 0) {
            size_t o = 0;

            o += (size_t)snprintf(why + o, size - o, "must be one of:");
            for (size_t k = 0; d->words != NULL && d->words[k] != NULL && o < size; k++)
                o += (size_t)snprintf(why + o, size - o, "%s %s", k ? "," : "", d->words[k]);
            if (o < size)
                (void)snprintf(why + o, size - o, "%s", dtext);
            return false;
        }
        return true;
    }
    why_set(why, size, "bad declaration");
    return false;
}

/* ------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------ */

static int
entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void
cfg_free(struct cmn_cfg *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->text);
    free(c->tables);
    free(c->e);
    free(c);
}

static bool
key_byte_ok(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7F && ch != '=';
}

/* Splits the text into entries; syntax errors go to es. */
static enum cmn_rc
split_lines(struct cmn_cfg *c, size_t len, struct errs *es)
{
    char *p = c->text, *end = c->text + len;
    unsigned line = 0;
    size_t cap = 0;

    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *k, *ke, *eq, *v, *ve;

        line++;
        if ((size_t)(le - p) > CMN_CFG_MAX_LINE) {
            err_add(es, line, "line longer than %d bytes", CMN_CFG_MAX_LINE);
            goto next;
        }
        if (memchr(p, '\0', (size_t)(le - p)) != NULL) {
            err_add(es, line, "line contains a NUL byte");
            goto next;
        }
        /* trailing CR and blanks, leading blanks */
        ve = le;
        while (ve > p && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        k = p;
        while (k < ve && (*k == ' ' || *k == '\t'))
            k++;
        if (k == ve || *k == '#')
            goto next;
        eq = memchr(k, '=', (size_t)(ve - k));
        if (eq == NULL) {
            err_add(es, line, "expected key=value");
            goto next;
        }
        ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        if (ke == k) {
            err_add(es, line, "empty key before '='");
            goto next;
        }
        if ((size_t)(ke - k) > CMN_CFG_MAX_KEY) {
            err_add(es, line, "key longer than %d bytes", CMN_CFG_MAX_KEY);
            goto next;
        }
        for (char *q = k; q < ke; q++)
            if (!key_byte_ok((unsigned char)*q)) {
                err_add(es, line, "key '%.*s' contains a blank or control character",
                        (int)(ke - k > 80 ? 80 : ke - k), k);
                goto next;
            }
        v = eq + 1;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        if (c->n == CMN_CFG_MAX_KEYS) {
            err_add(es, line, "more than %d keys", CMN_CFG_MAX_KEYS);
            return CMN_ETOOBIG;
        }
        if (c->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct entry *ne = realloc(c->e, ncap * sizeof(*ne));

            if (ne == NULL)
                return CMN_ENOMEM;
            c->e = ne;
            cap = ncap;
        }
        *ke = '\0';
        *ve = '\0'; /* ve <= le: at worst overwrites the '\n' or the NUL after the text */
        memset(&c->e[c->n], 0, sizeof(c->e[0]));
        c->e[c->n].key = k;
        c->e[c->n].value = v;
        c->e[c->n].line = line;
        c->e[c->n].word = -1;
        c->n++;
    next:
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return CMN_OK;
}

static void
check_entries(struct cmn_cfg *c, struct errs *es)
{
    char why[600], vbuf[256];

    for (size_t k = 0; k < c->n; k++) {
        struct entry *e = &c->e[k];

        if (k > 0 && strcmp(c->e[k - 1].key, e->key) == 0) {
            size_t first = k - 1;

            while (first > 0 && strcmp(c->e[first - 1].key, e->key) == 0)
                first--;
            err_add(es, e->line, "duplicate key '%s' (first set at line %u)", e->key,
                    c->e[first].line);
            continue;
        }
        e->decl = decl_find((const struct cmn_cfg_key *const *)c->tables, e->key);
        if (e->decl == NULL) {
            err_add(es, e->line, "unknown key '%s'", e->key);
            continue;
        }
        if (!value_ok(e, why, sizeof(why)))
            err_add(es, e->line, "key '%s' = %s: %s", e->key,
                    shown(e->decl, e->value, vbuf, sizeof(vbuf)), why);
    }
}

static bool
present(const struct cmn_cfg *c, const struct cmn_cfg_key *d)
{
    for (size_t k = 0; k < c->n; k++)
        if (c->e[k].decl == d)
            return true;
    return false;
}

static void
check_required(const struct cmn_cfg *c, struct errs *es)
{
    for (size_t t = 0; c->tables[t] != NULL; t++)
        for (const struct cmn_cfg_key *d = c->tables[t]; d->name != NULL; d++)
            if (d->required && !present(c, d))
                err_add(es, 0, "missing required key '%s'%s", d->name,
                        is_pattern(d->name) ? " (at least one)" : "");
}

enum cmn_rc
cmn_cfg_parse(const char *name, const char *text, size_t len,
              const struct cmn_cfg_key *const *tables, struct cmn_cfg **out,
              struct cmn_buf *errs)
{
    struct cmn_cfg *c = NULL;
    struct errs es = {0};
    size_t nt = 0;
    enum cmn_rc rc;

    if (out == NULL || tables == NULL || (text == NULL && len > 0))
        return CMN_EINVAL;
    *out = NULL;
    if (name == NULL)
        name = "config";
    if (len > CMN_CFG_MAX_FILE) {
        if (errs != NULL)
            (void)cmn_buf_printf(errs, "%s: file larger than %u bytes\n", name,
                                 (unsigned)CMN_CFG_MAX_FILE);
        return CMN_ETOOBIG;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return CMN_ENOMEM;
    atomic_init(&c->refs, 1);
    while (tables[nt] != NULL)
        nt++;
    c->name = strdup(name);
    c->text = malloc(len + 1);
    c->tables = calloc(nt + 1, sizeof(*c->tables));
    if (c->name == NULL || c->text == NULL || c->tables == NULL) {
        rc = CMN_ENOMEM;
        goto out;
    }
    memcpy(c->tables, tables, nt * sizeof(*tables));
    if (len > 0)
        memcpy(c->text, text, len);
    c->text[len] = '\0';
    rc = split_lines(c, len, &es);
    if (rc != CMN_OK && rc != CMN_ETOOBIG)
        goto out;
    if (c->n > 0)
        qsort(c->e, c->n, sizeof(*c->e), entry_cmp);
    check_entries(c, &es);
    check_required(c, &es);
    if (es.oom)
        rc = CMN_ENOMEM;
    else if (es.n > 0)
        rc = CMN_ECONFIG;
out:
    errs_flush(&es, name, errs);
    if (rc != CMN_OK) {
        cfg_free(c);
        return rc;
    }
    *out = c;
    return CMN_OK;
}

enum cmn_rc
cmn_cfg_load(const char *path, const struct cmn_cfg_key *const *tables, struct cmn_cfg **out,
             struct cmn_buf *errs)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    enum cmn_rc rc;
    int fd;

    if (path == NULL || out == NULL)
        return CMN_EINVAL;
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errs != NULL)
            (void)cmn_buf_printf(errs, "%s: cannot open: %s\n", path, strerror(errno));
        return CMN_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (errs != NULL)
            (void)cmn_buf_printf(errs, "%s: not a regular file\n", path);
        rc = CMN_EIO;
        goto out;
    }
    if ((unsigned long long)st.st_size > CMN_CFG_MAX_FILE) {
        if (errs != NULL)
            (void)cmn_buf_printf(errs, "%s: file larger than %u bytes\n", path,
                                 (unsigned)CMN_CFG_MAX_FILE);
        rc = CMN_ETOOBIG;
        goto out;
    }
    /* read one byte more than allowed to notice a file that grew meanwhile */
    buf = malloc(CMN_CFG_MAX_FILE + 1);
    if (buf == NULL) {
        rc = CMN_ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, CMN_CFG_MAX_FILE + 1 - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (errs != NULL)
                (void)cmn_buf_printf(errs, "%s: read failed: %s\n", path, strerror(errno));
            rc = CMN_EIO;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > CMN_CFG_MAX_FILE)
            break;
    }
    rc = cmn_cfg_parse(path, buf, got, tables, out, errs);
out:
    free(buf);
    (void)close(fd);
    return rc;
}

struct cmn_cfg *
cmn_cfg_ref(struct cmn_cfg *c)
{
    if (c != NULL)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void
cmn_cfg_unref(struct cmn_cfg *c)
{
    if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
        cfg_free(c);
}

/* ------------------------------------------------------------------------------------------
 * Lookups
 * ------------------------------------------------------------------------------------------ */

static const struct entry *
find(const struct cmn_cfg *c, const char *key)
{
    size_t lo = 0, hi;

    if (c == NULL || key == NULL)
        return NULL;
    hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(key, c->e[mid].key);

        if (r == 0)
            return &c->e[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static const struct cmn_cfg_key *
decl_of(const struct cmn_cfg *c, const char *key)
{
    return c ? decl_find((const struct cmn_cfg_key *const *)c->tables, key) : NULL;
}

const struct cmn_cfg_key *
cmn_cfg_decl(const struct cmn_cfg *c, const char *key)
{
    return decl_of(c, key);
}

const struct cmn_cfg_key *const *
cmn_cfg_tables(const struct cmn_cfg *c)
{
    return c ? (const struct cmn_cfg_key *const *)c->tables : NULL;
}

const char *
cmn_cfg_str(const struct cmn_cfg *c, const char *key)
{
    const struct entry *e = find(c, key);
    const struct cmn_cfg_key *d;

    if (e != NULL)
        return e->value;
    d = decl_of(c, key);
    return d ? d->defstr : NULL;
}

unsigned long long
cmn_cfg_uint(const struct cmn_cfg *c, const char *key)
{
    const struct entry *e = find(c, key);
    const struct cmn_cfg_key *d;

    if (e != NULL && e->decl != NULL && e->decl->type == CFG_UINT)
        return e->u;
    d = decl_of(c, key);
    return d && d->type == CFG_UINT ? d->def : 0;
}

bool
cmn_cfg_bool(const struct cmn_cfg *c, const char *key)
{
    const struct entry *e = find(c, key);
    const struct cmn_cfg_key *d;

    if (e != NULL && e->decl != NULL && e->decl->type == CFG_BOOL)
        return e->u != 0;
    d = decl_of(c, key);
    if (d == NULL || d->type != CFG_BOOL)
        return false;
    if (d->defstr != NULL)
        return strcmp(d->defstr, "true") == 0;
    return d->def != 0;
}

int
cmn_cfg_enum(const struct cmn_cfg *c, const char *key)
{
    const struct entry *e = find(c, key);
    const struct cmn_cfg_key *d;

    if (e != NULL && e->decl != NULL && e->decl->type == CFG_ENUM)
        return e->word;
    d = decl_of(c, key);
    if (d == NULL || d->type != CFG_ENUM)
        return -1;
    return word_index(d, d->defstr);
}

bool
cmn_cfg_isset(const struct cmn_cfg *c, const char *key)
{
    return find(c, key) != NULL;
}

enum cmn_rc
cmn_cfg_hostlist(const struct cmn_cfg *c, const char *key, struct cmn_cfg_hostlist *out)
{
    const char *v = cmn_cfg_str(c, key);

    if (v == NULL)
        return CMN_ENOTFOUND;
    return cmn_cfg_hostlist_parse(v, out, NULL, 0);
}

enum cmn_rc
cmn_cfg_secret_read(const struct cmn_cfg *c, const char *key, uint8_t *out, size_t out_size,
                    size_t *out_len)
{
    const char *path = cmn_cfg_str(c, key);
    struct stat st;
    size_t got = 0;
    enum cmn_rc rc = CMN_OK;
    int fd;

    if (path == NULL || *path == '\0')
        return CMN_ENOTFOUND;
    if (out == NULL || out_len == NULL)
        return CMN_EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return CMN_EIO;
    /* re-check through the descriptor: the file may have changed since validation */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = CMN_EIO;
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = CMN_ECONFIG;
        goto out;
    }
    for (;;) {
        uint8_t extra;
        ssize_t r;

        if (got == out_size) {
            r = read(fd, &extra, 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r != 0) {
                cmn_wipe(&extra, 1);
                rc = r < 0 ? CMN_EIO : CMN_ETOOBIG;
                goto out;
            }
            break;
        }
        r = read(fd, out + got, out_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = CMN_EIO;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > 0 && out[got - 1] == '\n') {
        got--;
        if (got > 0 && out[got - 1] == '\r')
            got--;
    }
    *out_len = got;
out:
    if (rc != CMN_OK && out_size > 0)
        cmn_wipe(out, out_size);
    (void)close(fd);
    return rc;
}

const char *
cmn_cfg_where(const struct cmn_cfg *c, const char *key, char *out, size_t out_size)
{
    const struct entry *e = find(c, key);

    if (out == NULL || out_size == 0)
        return out;
    if (e != NULL)
        (void)snprintf(out, out_size, "%s:%u", c->name, e->line);
    else
        (void)snprintf(out, out_size, "%s", c ? c->name : "config");
    return out;
}

const char *
cmn_cfg_name(const struct cmn_cfg *c)
{
    return c ? c->name : NULL;
}

void
cmn_cfg_each(const struct cmn_cfg *c, const char *prefix, cmn_cfg_each_fn *fn, void *arg)
{
    size_t pl;

    if (c == NULL || fn == NULL)
        return;
    if (prefix == NULL)
        prefix = "";
    pl = strlen(prefix);
    for (size_t k = 0; k < c->n; k++)
        if (strncmp(c->e[k].key, prefix, pl) == 0 && !fn(arg, c->e[k].key, c->e[k].value))
            return;
}

struct child {
    const char *p;
    size_t n;
};

static int
child_cmp(const void *a, const void *b)
{
    const struct child *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->p, y->p, m);

    if (r != 0)
        return r;
    return x->n < y->n ? -1 : x->n > y->n;
}

void
cmn_cfg_children(const struct cmn_cfg *c, const char *prefix, cmn_cfg_child_fn *fn, void *arg)
{
    struct child *v;
    size_t pl, nv = 0;
    char seg[CMN_CFG_MAX_KEY + 1];

    if (c == NULL || fn == NULL || c->n == 0)
        return;
    if (prefix == NULL)
        prefix = "";
    pl = strlen(prefix);
    v = malloc(c->n * sizeof(*v));
    if (v == NULL)
        return;
    for (size_t k = 0; k < c->n; k++) {
        const char *key = c->e[k].key;

        if (strncmp(key, prefix, pl) != 0 || key[pl] == '\0')
            continue;
        v[nv].p = key + pl;
        v[nv].n = strcspn(key + pl, ".");
        if (v[nv].n > 0)
            nv++;
    }
    if (nv > 0)
        qsort(v, nv, sizeof(*v), child_cmp);
    for (size_t k = 0; k < nv; k++) {
        if (k > 0 && child_cmp(&v[k - 1], &v[k]) == 0)
            continue;
        memcpy(seg, v[k].p, v[k].n); /* n <= CMN_CFG_MAX_KEY: keys are capped at load */
        seg[v[k].n] = '\0';
        if (!fn(arg, seg))
            break;
    }
    free(v);
}

/* ------------------------------------------------------------------------------------------
 * Documentation
 * ------------------------------------------------------------------------------------------ */

/* roff-escapes text: backslash as \e, a leading '.' or '\'' guarded by \&, '-' as \-. */
static enum cmn_rc
roff(struct cmn_buf *out, const char *s)
{
    enum cmn_rc rc = CMN_OK;

    if (*s == '.' || *s == '\'')
        rc = cmn_buf_puts(out, "\\&");
    for (; *s != '\0' && rc == CMN_OK; s++) {
        if (*s == '\\')
            rc = cmn_buf_puts(out, "\\e");
        else if (*s == '-')
            rc = cmn_buf_puts(out, "\\-");
        else if (*s == '\n')
            rc = cmn_buf_putc(out, ' ');
        else
            rc = cmn_buf_putc(out, (uint8_t)*s);
    }
    return rc;
}

static enum cmn_rc
text(struct cmn_buf *out, bool man, const char *s)
{
    return man ? roff(out, s) : cmn_buf_puts(out, s);
}

enum cmn_rc
cmn_cfg_doc(const struct cmn_cfg_key *table, bool man, struct cmn_buf *out)
{
    char line[600];
    enum cmn_rc rc = CMN_OK;

    if (table == NULL || out == NULL)
        return CMN_EINVAL;
    for (const struct cmn_cfg_key *d = table; d->name != NULL && rc == CMN_OK; d++) {
        size_t o;

        rc = cmn_buf_puts(out, man ? ".TP\n.B " : "");
        if (rc == CMN_OK)
            rc = text(out, man, d->name);
        if (rc != CMN_OK)
            break;
        rc = cmn_buf_puts(out, man ? "\n" : "  ");
        if (rc != CMN_OK)
            break;
        o = (size_t)snprintf(line, sizeof(line), "%s", type_name(d->type));
        if (d->type == CFG_UINT && o < sizeof(line))
            o += (size_t)snprintf(line + o, sizeof(line) - o, " %llu..%llu", d->min, d->max);
        if (d->type == CFG_ENUM && d->words != NULL)
            for (size_t k = 0; d->words[k] != NULL && o < sizeof(line); k++)
                o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", k ? "|" : " ",
                                      d->words[k]);
        if (o < sizeof(line)) {
            if (d->required)
                (void)snprintf(line + o, sizeof(line) - o, ", required");
            else {
                char dtext[300];

                default_text(d, dtext, sizeof(dtext));
                (void)snprintf(line + o, sizeof(line) - o, "%s", dtext);
            }
        }
        rc = text(out, man, line);
        if (rc == CMN_OK)
            rc = cmn_buf_puts(out, man ? "\n" : "\n    ");
        if (rc == CMN_OK && d->doc != NULL)
            rc = text(out, man, d->doc);
        if (rc == CMN_OK)
            rc = cmn_buf_puts(out, "\n");
    }
    return rc;
}
