/* gateway/xmlmini.c - strict bounded XML reader for the CA's flat answers: one pass over the
 * document with an explicit element stack, every byte read through an index checked against
 * the length; refuses everything the CA answers of backends §4 never contain. */
#include "gateway/xmlmini.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Parser state: a cursor over the document and the line for messages. */
struct xp {
    const char *d;
    size_t n, i;
    unsigned line;
    struct tps_xml *x;
};

static enum tps_rc
fail(struct xp *p, enum tps_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum tps_rc
fail(struct xp *p, enum tps_rc rc, const char *fmt, ...)
{
    va_list ap;
    int k = snprintf(p->x->err, sizeof(p->x->err), "line %u: ", p->line);

    if (k < 0 || (size_t)k >= sizeof(p->x->err))
        return rc;
    va_start(ap, fmt);
    (void)vsnprintf(p->x->err + k, sizeof(p->x->err) - (size_t)k, fmt, ap);
    va_end(ap);
    return rc;
}

static bool
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}

static bool
is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* Control bytes other than TAB, LF, CR are not XML characters. Bytes >= 0x80 are taken as
 * UTF-8 without validation: they are only ever copied into text, never interpreted. */
static bool
is_bad_byte(char c)
{
    unsigned char u = (unsigned char)c;
    return (u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7f;
}

static bool
starts(const struct xp *p, const char *s)
{
    size_t k = strlen(s);
    return p->n - p->i >= k && memcmp(p->d + p->i, s, k) == 0;
}

/* Advances one byte, counting lines. */
static void
adv(struct xp *p)
{
    if (p->d[p->i] == '\n')
        p->line++;
    p->i++;
}

static void
skip_ws(struct xp *p)
{
    while (p->i < p->n && is_ws(p->d[p->i]))
        adv(p);
}

/* Skips up to and including `end`; refuses bad bytes on the way. */
static enum tps_rc
skip_until(struct xp *p, const char *end, const char *what)
{
    while (p->i < p->n) {
        if (starts(p, end)) {
            p->i += strlen(end);
            return TPS_OK;
        }
        if (is_bad_byte(p->d[p->i]))
            return fail(p, TPS_EPROTO, "control byte 0x%02x in %s", (unsigned char)p->d[p->i],
                        what);
        adv(p);
    }
    return fail(p, TPS_EPROTO, "unterminated %s", what);
}

/* Comments and processing instructions, allowed only outside the root element. */
static enum tps_rc
skip_misc(struct xp *p)
{
    enum tps_rc rc;

    for (;;) {
        skip_ws(p);
        if (starts(p, "<!--")) {
            p->i += 4;
            rc = skip_until(p, "-->", "comment");
        } else if (starts(p, "<?")) {
            p->i += 2;
            rc = skip_until(p, "?>", "processing instruction");
        } else if (starts(p, "<!")) {
            return fail(p, TPS_EPROTO, "DOCTYPE and other declarations are refused");
        } else {
            return TPS_OK;
        }
        if (rc != TPS_OK)
            return rc;
    }
}

static enum tps_rc
read_name(struct xp *p, const char **name, size_t *len)
{
    size_t s = p->i;

    if (p->i >= p->n || !is_name_start(p->d[p->i]))
        return fail(p, TPS_EPROTO, "expected a name");
    while (p->i < p->n && is_name_char(p->d[p->i]))
        p->i++;
    if (p->i - s > TPS_XML_MAX_NAME)
        return fail(p, TPS_EPROTO, "name longer than %d bytes", TPS_XML_MAX_NAME);
    *name = p->d + s;
    *len = p->i - s;
    return TPS_OK;
}

/* Length of the entity or character reference at s[0] == '&' (through ';'), 0 if malformed.
 * [out] *cp its code point. */
static size_t
entity(const char *s, size_t n, uint32_t *cp)
{
    static const struct {
        const char *name;
        char c;
    } pre[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t i;
    uint32_t v = 0;
    bool hex;

    for (i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
        size_t k = strlen(pre[i].name);
        if (n >= k && memcmp(s, pre[i].name, k) == 0) {
            *cp = (uint32_t)(unsigned char)pre[i].c;
            return k;
        }
    }
    if (n < 4 || s[1] != '#')
        return 0;
    hex = s[2] == 'x';
    i = hex ? 3 : 2;
    if (i >= n || s[i] == ';')
        return 0;
    for (; i < n && s[i] != ';'; i++) {
        int d;
        char c = s[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v * (hex ? 16u : 10u) + (uint32_t)d;
        if (v > 0x10FFFF)
            return 0;
    }
    if (i >= n)
        return 0;
    /* Only XML characters: TAB, LF, CR, >= 0x20, no surrogates, no FFFE/FFFF. */
    if ((v < 0x20 && v != 9 && v != 10 && v != 13) || (v >= 0xD800 && v <= 0xDFFF) ||
        v == 0xFFFE || v == 0xFFFF)
        return 0;
    *cp = v;
    return i + 1;
}

/* Attributes are checked for syntax and skipped: nothing of §4 is carried in one. */
static enum tps_rc
skip_attributes(struct xp *p, bool *empty)
{
    for (;;) {
        const char *nm;
        size_t nl;
        char q;
        bool had_ws = p->i < p->n && is_ws(p->d[p->i]);
        enum tps_rc rc;

        skip_ws(p);
        if (p->i >= p->n)
            return fail(p, TPS_EPROTO, "unterminated start tag");
        if (p->d[p->i] == '>') {
            p->i++;
            *empty = false;
            return TPS_OK;
        }
        if (starts(p, "/>")) {
            p->i += 2;
            *empty = true;
            return TPS_OK;
        }
        if (!had_ws)
            return fail(p, TPS_EPROTO, "expected blank before attribute");
        rc = read_name(p, &nm, &nl);
        if (rc != TPS_OK)
            return rc;
        skip_ws(p);
        if (p->i >= p->n || p->d[p->i] != '=')
            return fail(p, TPS_EPROTO, "attribute '%.*s' without value", (int)nl, nm);
        p->i++;
        skip_ws(p);
        if (p->i >= p->n || (p->d[p->i] != '"' && p->d[p->i] != '\''))
            return fail(p, TPS_EPROTO, "attribute '%.*s': value not quoted", (int)nl, nm);
        q = p->d[p->i++];
        while (p->i < p->n && p->d[p->i] != q) {
            uint32_t cp;
            char c = p->d[p->i];
            if (c == '<' || is_bad_byte(c))
                return fail(p, TPS_EPROTO, "attribute '%.*s': bad character", (int)nl, nm);
            if (c == '&') {
                size_t k = entity(p->d + p->i, p->n - p->i, &cp);
                if (k == 0)
                    return fail(p, TPS_EPROTO, "bad entity reference");
                p->i += k;
                continue;
            }
            adv(p);
        }
        if (p->i >= p->n)
            return fail(p, TPS_EPROTO, "unterminated attribute value");
        p->i++;
    }
}

/* Scans character data up to the next '<'. [out] *nonblank: it had something but blanks. */
static enum tps_rc
scan_text(struct xp *p, bool *nonblank)
{
    while (p->i < p->n && p->d[p->i] != '<') {
        char c = p->d[p->i];
        uint32_t cp;

        if (is_bad_byte(c))
            return fail(p, TPS_EPROTO, "control byte 0x%02x in text", (unsigned char)c);
        if (c == '&') {
            size_t k = entity(p->d + p->i, p->n - p->i, &cp);
            if (k == 0)
                return fail(p, TPS_EPROTO, "bad entity reference");
            p->i += k;
            *nonblank = true;
            continue;
        }
        if (c == '>' && p->i >= 2 && p->d[p->i - 1] == ']' && p->d[p->i - 2] == ']')
            return fail(p, TPS_EPROTO, "']]>' in text");
        if (!is_ws(c))
            *nonblank = true;
        adv(p);
    }
    return TPS_OK;
}

enum tps_rc
tps_xml_parse(struct tps_xml *x, const char *doc, size_t len)
{
    struct xp p = {.d = doc, .n = len, .i = 0, .line = 1, .x = x};
    int stack[TPS_XML_MAX_DEPTH];
    bool text_seen[TPS_XML_MAX_DEPTH];
    size_t text_start[TPS_XML_MAX_DEPTH];
    unsigned depth = 0;
    enum tps_rc rc;

    x->count = 0;
    x->err[0] = '\0';
    if (len > TPS_XML_MAX_DOC)
        return fail(&p, TPS_ETOOBIG, "document larger than %d bytes", TPS_XML_MAX_DOC);
    if (doc == NULL)
        return fail(&p, TPS_EPROTO, "empty document");
    if (starts(&p, "\xEF\xBB\xBF"))
        p.i = 3;
    rc = skip_misc(&p);
    if (rc != TPS_OK)
        return rc;
    if (p.i >= p.n || p.d[p.i] != '<')
        return fail(&p, TPS_EPROTO, "no root element");

    for (;;) {
        /* Here p.i is at '<' of a start tag (depth < MAX) or an end tag (depth > 0). */
        if (starts(&p, "</")) {
            const char *nm;
            size_t nl;
            struct tps_xml_node *e;

            if (depth == 0)
                return fail(&p, TPS_EPROTO, "end tag without start tag");
            p.i += 2;
            rc = read_name(&p, &nm, &nl);
            if (rc != TPS_OK)
                return rc;
            e = &x->node[stack[depth - 1]];
            if (nl != e->name_len || memcmp(nm, e->name, nl) != 0)
                return fail(&p, TPS_EPROTO, "</%.*s> closes <%.*s>", (int)nl, nm,
                            (int)e->name_len, e->name);
            if (e->children == 0) {
                e->text = p.d + text_start[depth - 1];
                e->text_len = (size_t)(nm - 2 - e->text);
            } else if (text_seen[depth - 1]) {
                return fail(&p, TPS_EPROTO, "<%.*s> mixes text and elements", (int)nl, nm);
            }
            skip_ws(&p);
            if (p.i >= p.n || p.d[p.i] != '>')
                return fail(&p, TPS_EPROTO, "unterminated end tag");
            p.i++;
            depth--;
        } else if (starts(&p, "<!--") || starts(&p, "<?") || starts(&p, "<!")) {
            return fail(&p, TPS_EPROTO, "comments, PIs and CDATA are refused inside elements");
        } else {
            struct tps_xml_node *e;
            bool empty = false;

            if (depth >= TPS_XML_MAX_DEPTH)
                return fail(&p, TPS_ETOOBIG, "elements nested deeper than %d",
                            TPS_XML_MAX_DEPTH);
            if (x->count >= TPS_XML_MAX_NODES)
                return fail(&p, TPS_ETOOBIG, "more than %d elements", TPS_XML_MAX_NODES);
            e = &x->node[x->count];
            memset(e, 0, sizeof(*e));
            e->parent = depth == 0 ? -1 : stack[depth - 1];
            e->depth = depth;
            e->text = "";
            p.i++;
            rc = read_name(&p, &e->name, &e->name_len);
            if (rc != TPS_OK)
                return rc;
            rc = skip_attributes(&p, &empty);
            if (rc != TPS_OK)
                return rc;
            if (e->parent >= 0)
                x->node[e->parent].children++;
            x->count++;
            if (!empty) {
                stack[depth] = (int)(x->count - 1);
                text_seen[depth] = false;
                text_start[depth] = p.i;
                depth++;
            }
        }
        if (depth == 0)
            break;
        {
            bool nb = false;
            rc = scan_text(&p, &nb);
            if (rc != TPS_OK)
                return rc;
            if (nb)
                text_seen[depth - 1] = true;
            if (p.i >= p.n)
                return fail(&p, TPS_EPROTO, "document ends inside <%.*s>",
                            (int)x->node[stack[depth - 1]].name_len,
                            x->node[stack[depth - 1]].name);
        }
        /* Text before a child element: mixed content unless blank (checked at the end tag,
         * once we know whether children came). */
    }
    rc = skip_misc(&p);
    if (rc != TPS_OK)
        return rc;
    if (p.i != p.n)
        return fail(&p, TPS_EPROTO, "content after the root element");
    return TPS_OK;
}

int
tps_xml_child(const struct tps_xml *x, int parent, const char *name, int after)
{
    size_t nl = strlen(name);
    size_t from = after < 0 ? 0 : (size_t)after + 1;

    for (size_t i = from; i < x->count; i++) {
        const struct tps_xml_node *e = &x->node[i];
        if (e->parent == parent && e->name_len == nl && memcmp(e->name, name, nl) == 0)
            return (int)i;
    }
    return -1;
}

int
tps_xml_path(const struct tps_xml *x, const char *path)
{
    int cur = -1;
    const char *s = path;

    while (*s != '\0') {
        char seg[TPS_XML_MAX_NAME + 1];
        size_t k = strcspn(s, "/");

        if (k == 0 || k > TPS_XML_MAX_NAME)
            return -1;
        memcpy(seg, s, k);
        seg[k] = '\0';
        cur = tps_xml_child(x, cur, seg, -1);
        if (cur < 0)
            return -1;
        s += k;
        if (*s == '/')
            s++;
    }
    return cur;
}

unsigned
tps_xml_count(const struct tps_xml *x, int parent, const char *name)
{
    unsigned n = 0;

    for (int i = tps_xml_child(x, parent, name, -1); i >= 0; i = tps_xml_child(x, parent, name, i))
        n++;
    return n;
}

bool
tps_xml_is(const struct tps_xml *x, int idx, const char *name)
{
    if (idx < 0 || (size_t)idx >= x->count)
        return false;
    return x->node[idx].children == 0 && x->node[idx].name_len == strlen(name) &&
           memcmp(x->node[idx].name, name, x->node[idx].name_len) == 0;
}

enum tps_rc
tps_xml_text(const struct tps_xml *x, int idx, char *out, size_t cap, size_t *out_len)
{
    const struct tps_xml_node *e;
    size_t o = 0;

    if (cap == 0)
        return TPS_ETOOBIG;
    out[0] = '\0';
    if (idx < 0 || (size_t)idx >= x->count)
        return TPS_EINVAL;
    e = &x->node[idx];
    if (e->children != 0)
        return TPS_EPROTO;
    for (size_t i = 0; i < e->text_len;) {
        uint8_t u[4];
        size_t ul = 1;

        if (e->text[i] == '&') {
            uint32_t cp;
            size_t k = entity(e->text + i, e->text_len - i, &cp);
            if (k == 0)
                return TPS_EPROTO;
            i += k;
            if (cp < 0x80) {
                u[0] = (uint8_t)cp;
            } else if (cp < 0x800) {
                u[0] = (uint8_t)(0xC0 | cp >> 6);
                u[1] = (uint8_t)(0x80 | (cp & 0x3F));
                ul = 2;
            } else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xE0 | cp >> 12);
                u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (uint8_t)(0x80 | (cp & 0x3F));
                ul = 3;
            } else {
                u[0] = (uint8_t)(0xF0 | cp >> 18);
                u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (uint8_t)(0x80 | (cp & 0x3F));
                ul = 4;
            }
        } else {
            u[0] = (uint8_t)e->text[i++];
        }
        if (o + ul >= cap) {
            out[0] = '\0';
            return TPS_ETOOBIG;
        }
        memcpy(out + o, u, ul);
        o += ul;
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return TPS_OK;
}
