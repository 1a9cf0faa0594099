/* common/log.c - one-line structured logging and the audit sink (STYLE §6): a small printf
 * interpreter that escapes every substituted value, redacts secret fields by name, and writes
 * each line with one write(2). */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Process-wide sink state. The descriptors are atomics so that a reopen (dup2 onto the same
 * number) never leaves a writer with a half-updated value; the sink callback is set before
 * threads start (log.h). */
static atomic_int g_level = CMN_LOG_INFO;
static atomic_int g_fd = 2;        /* stderr until cmn_log_open() names a file */
static atomic_int g_audit_fd = -1; /* no audit file until cmn_audit_open() */
static atomic_bool g_audit_sync;
static cmn_log_sink_fn *g_sink;
static void *g_sink_arg;

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

/* ------------------------------------------------------------------------------------------
 * Line buffer: a fixed array; overflow cuts the line and marks it with "...".
 * ------------------------------------------------------------------------------------------ */

#define TRUNC_MARK "..."

struct line {
    char *buf;
    size_t cap; /* usable bytes: total - room for "...\n" and NUL */
    size_t len;
    bool cut;
};

static void
line_init(struct line *l, char *buf, size_t size)
{
    l->buf = buf;
    l->cap = size > sizeof(TRUNC_MARK) + 1 ? size - sizeof(TRUNC_MARK) - 1 : 0;
    l->len = 0;
    l->cut = false;
    if (size > 0)
        buf[0] = '\0';
}

static void
line_putc(struct line *l, char c)
{
    if (l->len >= l->cap) {
        l->cut = true;
        return;
    }
    l->buf[l->len++] = c;
}

static void
line_puts(struct line *l, const char *s)
{
    while (*s != '\0')
        line_putc(l, *s++);
}

/* Ends the line: "..." when cut, then the optional newline and NUL. */
static size_t
line_end(struct line *l, size_t size, bool newline)
{
    if (size == 0)
        return 0;
    if (l->cut) {
        memcpy(l->buf + l->len, TRUNC_MARK, sizeof(TRUNC_MARK) - 1);
        l->len += sizeof(TRUNC_MARK) - 1;
    }
    if (newline)
        l->buf[l->len++] = '\n';
    l->buf[l->len] = '\0';
    return l->len;
}

static void
put_escaped(struct line *l, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";

    switch (c) {
    case '"':
        line_puts(l, "\\\"");
        break;
    case '\\':
        line_puts(l, "\\\\");
        break;
    case '\n':
        line_puts(l, "\\n");
        break;
    case '\r':
        line_puts(l, "\\r");
        break;
    case '\t':
        line_puts(l, "\\t");
        break;
    default:
        if (c < 0x20 || c == 0x7F) {
            line_puts(l, "\\x");
            line_putc(l, hex[c >> 4]);
            line_putc(l, hex[c & 0x0F]);
        } else {
            line_putc(l, (char)c);
        }
    }
}

static bool
needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];

        if (c <= 0x20 || c == 0x7F || c == '"' || c == '=' || c == '\\')
            return true;
    }
    return false;
}

static bool
key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* A value written outside a quoted part of the template: quoted and escaped when needed. */
static void
put_value(struct line *l, const char *s, size_t n)
{
    if (!needs_quotes(s, n)) {
        for (size_t k = 0; k < n; k++)
            line_putc(l, s[k]);
        return;
    }
    line_putc(l, '"');
    for (size_t k = 0; k < n; k++)
        put_escaped(l, (unsigned char)s[k]);
    line_putc(l, '"');
}

/* ------------------------------------------------------------------------------------------
 * Secret field names
 * ------------------------------------------------------------------------------------------ */

static bool
ieq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);

    return an == bn && strncasecmp(a, b, bn) == 0;
}

static bool
iends(const char *a, size_t an, const char *suffix)
{
    size_t sn = strlen(suffix);

    return an >= sn && strncasecmp(a + an - sn, suffix, sn) == 0;
}

bool
cmn_log_is_secret_key(const char *key, size_t len)
{
    static const char *const exact[] = {"cookie", "authorization", "pwd", "randomdata",
                                        "encrypteddata"};
    static const char *const suffix[] = {"key",    "pin",        "password",  "passwd",
                                         "secret", "cryptogram", "challenge", "nonce",
                                         "keysetdata", "pwd"};
    const char *seg = key;
    size_t seg_len = len;

    if (key == NULL)
        return false;
    /* the last dotted segment decides for the exact and prefix rules */
    for (size_t k = len; k > 0; k--) {
        if (key[k - 1] == '.') {
            seg = key + k;
            seg_len = len - k;
            break;
        }
    }
    for (size_t k = 0; k < sizeof(exact) / sizeof(exact[0]); k++)
        if (ieq(seg, seg_len, exact[k]))
            return true;
    for (size_t k = 0; k < sizeof(suffix) / sizeof(suffix[0]); k++)
        if (iends(key, len, suffix[k]))
            return true;
    return seg_len >= 3 && strncasecmp(seg, "kek", 3) == 0;
}

/* ------------------------------------------------------------------------------------------
 * The template interpreter
 * ------------------------------------------------------------------------------------------ */

struct tstate {
    bool quoted;    /* inside a literal "..." of the template */
    bool in_value;  /* after the '=' of the current field */
    bool redact;    /* the current field's value is being replaced */
    size_t key_at;  /* where the current field starts in the output */
};

static void
tstate_field_start(struct tstate *t, const struct line *l)
{
    t->in_value = false;
    t->redact = false;
    t->key_at = l->len;
}

static void
literal(struct line *l, struct tstate *t, char ch)
{
    unsigned char c = (unsigned char)ch;

    if (c == ' ' && !t->quoted) {
        line_putc(l, ' ');
        tstate_field_start(t, l);
        return;
    }
    if (c == '"') {
        t->quoted = !t->quoted;
        if (!t->redact)
            line_putc(l, '"');
        return;
    }
    if (c == '=' && !t->quoted && !t->in_value) {
        bool secret = cmn_log_is_secret_key(l->buf + t->key_at, l->len - t->key_at);

        t->in_value = true;
        line_putc(l, '=');
        if (secret) {
            line_puts(l, "<redacted>");
            t->redact = true;
        }
        return;
    }
    if (t->redact)
        return;
    if (c < 0x20 || c == 0x7F)
        put_escaped(l, c);
    else
        line_putc(l, (char)c);
}

/* Writes the text of one conversion according to where it stands in the template. */
static void
substituted(struct line *l, const struct tstate *t, const char *s, size_t n)
{
    if (t->redact)
        return;
    if (!t->in_value) {
        for (size_t k = 0; k < n; k++)
            line_putc(l, key_char((unsigned char)s[k]) ? s[k] : '_');
    } else if (t->quoted) {
        for (size_t k = 0; k < n; k++)
            put_escaped(l, (unsigned char)s[k]);
    } else {
        put_value(l, s, n);
    }
}

/* The conversion flags, width, precision and length of one printf directive. */
struct conv {
    char flags[8];
    size_t nflags;
    int width;     /* -1: none */
    int prec;      /* -1: none */
    char len[3];   /* "", "h", "hh", "l", "ll", "z", "j", "t", "L" */
    char type;
};

/* Renders a numeric/char/pointer conversion through snprintf with a rebuilt directive. The
 * directive is built from a parsed whitelist, never from caller text, so it is safe although
 * not a literal. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static size_t
render_one(char *out, size_t size, const struct conv *cv, va_list *ap)
{
    char spec[48];
    size_t p = 0;
    int n = 0;

    spec[p++] = '%';
    for (size_t k = 0; k < cv->nflags; k++)
        spec[p++] = cv->flags[k];
    if (cv->width >= 0)
        p += (size_t)snprintf(spec + p, sizeof(spec) - p, "%d", cv->width);
    if (cv->prec >= 0)
        p += (size_t)snprintf(spec + p, sizeof(spec) - p, ".%d", cv->prec);
    for (size_t k = 0; cv->len[k] != '\0'; k++)
        spec[p++] = cv->len[k];
    spec[p++] = cv->type;
    spec[p] = '\0';

    switch (cv->type) {
    case 'd':
    case 'i':
        if (strcmp(cv->len, "ll") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, long long));
        else if (strcmp(cv->len, "l") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, long));
        else if (strcmp(cv->len, "z") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, ptrdiff_t)); /* signed size_t */
        else if (strcmp(cv->len, "j") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, intmax_t));
        else if (strcmp(cv->len, "t") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, ptrdiff_t));
        else
            n = snprintf(out, size, spec, va_arg(*ap, int));
        break;
    case 'u':
    case 'x':
    case 'X':
    case 'o':
        if (strcmp(cv->len, "ll") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, unsigned long long));
        else if (strcmp(cv->len, "l") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, unsigned long));
        else if (strcmp(cv->len, "z") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, size_t));
        else if (strcmp(cv->len, "j") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, uintmax_t));
        else if (strcmp(cv->len, "t") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, ptrdiff_t));
        else
            n = snprintf(out, size, spec, va_arg(*ap, unsigned int));
        break;
    case 'c':
        n = snprintf(out, size, spec, va_arg(*ap, int));
        break;
    case 'p':
        n = snprintf(out, size, spec, va_arg(*ap, void *));
        break;
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
        if (strcmp(cv->len, "L") == 0)
            n = snprintf(out, size, spec, va_arg(*ap, long double));
        else
            n = snprintf(out, size, spec, va_arg(*ap, double));
        break;
    default:
        n = 0;
    }
    if (n < 0)
        return 0;
    return (size_t)n >= size ? size - 1 : (size_t)n;
}
#pragma GCC diagnostic pop

/* Parses the directive at *pf (just after '%'); advances *pf. False for an unknown one. */
static bool
parse_conv(const char **pf, struct conv *cv, va_list *ap)
{
    const char *f = *pf;

    memset(cv, 0, sizeof(*cv));
    cv->width = -1;
    cv->prec = -1;
    while (*f != '\0' && strchr("-+ #0", *f) != NULL && cv->nflags < sizeof(cv->flags))
        cv->flags[cv->nflags++] = *f++;
    if (*f == '*') {
        cv->width = va_arg(*ap, int);
        if (cv->width < 0) {
            cv->width = -cv->width;
            if (cv->nflags < sizeof(cv->flags))
                cv->flags[cv->nflags++] = '-';
        }
        f++;
    } else {
        while (*f >= '0' && *f <= '9') {
            cv->width = (cv->width < 0 ? 0 : cv->width) * 10 + (*f - '0');
            if (cv->width > 1000)
                cv->width = 1000;
            f++;
        }
    }
    if (*f == '.') {
        f++;
        cv->prec = 0;
        if (*f == '*') {
            cv->prec = va_arg(*ap, int);
            f++;
        } else {
            while (*f >= '0' && *f <= '9') {
                cv->prec = cv->prec * 10 + (*f - '0');
                if (cv->prec > 100000)
                    cv->prec = 100000;
                f++;
            }
        }
    }
    if (cv->width > 1000)
        cv->width = 1000;
    if ((f[0] == 'h' && f[1] == 'h') || (f[0] == 'l' && f[1] == 'l')) {
        cv->len[0] = f[0];
        cv->len[1] = f[1];
        f += 2;
    } else if (*f != '\0' && strchr("hlzjtL", *f) != NULL) {
        cv->len[0] = *f++;
    }
    if (*f == '\0' || strchr("diuxXocspnfFeEgGaA", *f) == NULL) {
        *pf = f;
        return false;
    }
    cv->type = *f++;
    *pf = f;
    return true;
}

/* Interprets fmt with its arguments into l. */
static void
render(struct line *l, const char *fmt, va_list *ap)
{
    struct tstate t;
    struct conv cv;
    char tmp[512];

    memset(&t, 0, sizeof(t));
    tstate_field_start(&t, l);
    for (const char *f = fmt; *f != '\0';) {
        if (*f != '%') {
            literal(l, &t, *f++);
            continue;
        }
        f++;
        if (*f == '%') {
            literal(l, &t, '%');
            f++;
            continue;
        }
        if (!parse_conv(&f, &cv, ap)) {
            /* unknown directive (%m, %'d...): stop rather than misread the arguments */
            line_puts(l, " <bad-format>");
            break;
        }
        if (cv.type == 's') {
            const char *s = va_arg(*ap, const char *);
            size_t n;

            if (s == NULL)
                s = "(null)";
            n = cv.prec >= 0 ? strnlen(s, (size_t)cv.prec) : strlen(s);
            /* width pads with spaces when the padded text fits the scratch buffer */
            if (cv.width > 0 && (size_t)cv.width > n && (size_t)cv.width < sizeof(tmp)) {
                size_t pad = (size_t)cv.width - n;
                bool left = memchr(cv.flags, '-', cv.nflags) != NULL;

                memset(tmp, ' ', (size_t)cv.width);
                memcpy(tmp + (left ? 0 : pad), s, n);
                s = tmp;
                n = (size_t)cv.width;
            }
            substituted(l, &t, s, n);
        } else if (cv.type == 'n') {
            (void)va_arg(*ap, void *); /* never written through */
        } else {
            size_t n = render_one(tmp, sizeof(tmp), &cv, ap);

            substituted(l, &t, tmp, n);
        }
    }
}

static void
put_event(struct line *l, const char *event)
{
    if (event == NULL || *event == '\0') {
        line_putc(l, '-');
        return;
    }
    for (; *event != '\0'; event++)
        line_putc(l, key_char((unsigned char)*event) ? *event : '_');
}

/* "[time level ]event [sid=..][ fields]" */
static void
build(struct line *l, const char *word, const char *event, const char *sid, const char *fmt,
      va_list *ap)
{
    if (word != NULL) {
        struct timespec ts;
        struct tm tm;
        char tbuf[96];

        if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
            memset(&tm, 0, sizeof(tm));
            ts.tv_nsec = 0;
        }
        (void)snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, (int)(ts.tv_nsec / 1000000));
        line_puts(l, tbuf);
        line_puts(l, word);
        line_putc(l, ' ');
    }
    put_event(l, event);
    if (sid != NULL) {
        line_puts(l, " sid=");
        put_value(l, sid, strlen(sid));
    }
    if (fmt != NULL && *fmt != '\0') {
        line_putc(l, ' ');
        render(l, fmt, ap);
    }
}

/* One write(2) for the whole line; retried only on EINTR or a short write. */
static bool
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (w == 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------------------------ */

const char *
cmn_log_level_name(enum cmn_log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
}

enum cmn_rc
cmn_log_level_parse(const char *s, enum cmn_log_level *out)
{
    if (s == NULL)
        return CMN_EINVAL;
    for (size_t k = 0; k < sizeof(level_names) / sizeof(level_names[0]); k++) {
        if (strcasecmp(s, level_names[k]) == 0) {
            *out = (enum cmn_log_level)k;
            return CMN_OK;
        }
    }
    return CMN_EINVAL;
}

void
cmn_log_set_level(enum cmn_log_level level)
{
    atomic_store(&g_level, (int)level);
}

bool
cmn_log_enabled(enum cmn_log_level level)
{
    return (int)level <= atomic_load_explicit(&g_level, memory_order_relaxed);
}

/* Opens path for appending and installs it on *slot (dup2 onto the old number when there is
 * one, so concurrent writers never see a closed descriptor). */
static enum cmn_rc
open_sink(const char *path, mode_t mode, atomic_int *slot, int keep)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, mode);
    int old;

    if (fd < 0)
        return CMN_EIO;
    old = atomic_load(slot);
    if (old >= 0 && old != keep) {
        if (dup2(fd, old) < 0) {
            (void)close(fd);
            return CMN_EIO;
        }
        (void)close(fd);
        return CMN_OK;
    }
    atomic_store(slot, fd);
    return CMN_OK;
}

enum cmn_rc
cmn_log_open(const char *path, enum cmn_log_level level)
{
    cmn_log_set_level(level);
    if (path == NULL || strcmp(path, "-") == 0) {
        cmn_log_close();
        return CMN_OK;
    }
    return open_sink(path, 0640, &g_fd, 2);
}

void
cmn_log_close(void)
{
    int old = atomic_exchange(&g_fd, 2);

    if (old != 2 && old >= 0)
        (void)close(old);
}

void
cmn_log_set_sink(cmn_log_sink_fn *fn, void *arg)
{
    g_sink = fn;
    g_sink_arg = arg;
}

static void
vwrite_line(enum cmn_log_level level, const char *event, const char *sid, const char *fmt,
            va_list *ap)
{
    char buf[CMN_LOG_LINE_MAX];
    struct line l;
    size_t n;

    line_init(&l, buf, sizeof(buf));
    build(&l, cmn_log_level_name(level), event, sid, fmt, ap);
    n = line_end(&l, sizeof(buf), true);
    if (g_sink != NULL)
        g_sink(g_sink_arg, level, buf, n);
    else
        (void)write_all(atomic_load(&g_fd), buf, n);
}

void
cmn_log_write(enum cmn_log_level level, const char *event, const char *sid, const char *fmt,
              ...)
{
    va_list ap;

    if (!cmn_log_enabled(level))
        return;
    va_start(ap, fmt);
    vwrite_line(level, event, sid, fmt, &ap);
    va_end(ap);
}

size_t
cmn_log_format(char *out, size_t out_size, const char *event, const char *sid, const char *fmt,
               ...)
{
    struct line l;
    va_list ap;

    if (out == NULL || out_size == 0)
        return 0;
    line_init(&l, out, out_size);
    va_start(ap, fmt);
    build(&l, NULL, event, sid, fmt, &ap);
    va_end(ap);
    return line_end(&l, out_size, false);
}

enum cmn_rc
cmn_audit_open(const char *path, bool sync)
{
    if (path == NULL)
        return CMN_EINVAL;
    atomic_store(&g_audit_sync, sync);
    return open_sink(path, 0600, &g_audit_fd, -1);
}

void
cmn_audit_close(void)
{
    int old = atomic_exchange(&g_audit_fd, -1);

    if (old >= 0)
        (void)close(old);
}

enum cmn_rc
cmn_audit(const char *event, const char *sid, const char *fmt, ...)
{
    char buf[CMN_LOG_LINE_MAX];
    struct line l;
    va_list ap;
    size_t n;
    int fd = atomic_load(&g_audit_fd);

    if (fd < 0)
        return CMN_EIO;
    line_init(&l, buf, sizeof(buf));
    va_start(ap, fmt);
    build(&l, "audit", event, sid, fmt, &ap);
    va_end(ap);
    n = line_end(&l, sizeof(buf), true);
    if (!write_all(fd, buf, n))
        return CMN_EIO;
    if (atomic_load(&g_audit_sync) && fdatasync(fd) != 0)
        return CMN_EIO;
    return CMN_OK;
}

/* ------------------------------------------------------------------------------------------
 * APDU dumps
 * ------------------------------------------------------------------------------------------ */

bool
cmn_log_apdu_shows(uint8_t ins, bool resp)
{
    /* command data that carries no PIN, key, cryptogram, nonce or wrapped secret */
    static const uint8_t cmd_ok[] = {0xA4, 0xCA, 0x3C, 0x70, 0xF0, 0xF2, 0xF4, 0xF6, 0x58, 0x48,
                                     0x3A, 0xE4, 0xE6, 0xE8, 0x5A, 0x56, 0x52, 0xC0, 0xFA, 0x4A};
    /* response data that is public (VERIFY returns the nonce, INITIALIZE UPDATE the card
     * cryptogram, COMPUTE CRYPT plaintext, GET RANDOM key material: not listed) */
    static const uint8_t resp_ok[] = {0xA4, 0xCA, 0x3C, 0x70, 0xF2, 0xF6, 0x58, 0x48, 0x3A,
                                      0x56, 0xFA, 0x4A, 0x0C, 0xE4, 0xE6, 0xE8};
    const uint8_t *list = resp ? resp_ok : cmd_ok;
    size_t n = resp ? sizeof(resp_ok) : sizeof(cmd_ok);

    for (size_t k = 0; k < n; k++)
        if (list[k] == ins)
            return true;
    return false;
}

#define DUMP_MAX 64 /* bytes of data shown */

static void
hex_cut(const uint8_t *p, size_t n, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t shown = n > DUMP_MAX ? DUMP_MAX : n, o = 0;

    for (size_t k = 0; k < shown && o + 2 < out_size; k++) {
        out[o++] = hex[p[k] >> 4];
        out[o++] = hex[p[k] & 0x0F];
    }
    if (n > shown && o + 3 < out_size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

void
cmn_log_apdu_cmd(enum cmn_log_level level, const char *sid, const uint8_t *apdu, size_t n)
{
    char hex[2 * DUMP_MAX + 8];
    size_t lc, have;

    if (!cmn_log_enabled(level))
        return;
    if (apdu == NULL || n < 4) {
        cmn_log_write(level, "apdu.cmd", sid, "len=%zu err=short", n);
        return;
    }
    if (n == 4) {
        cmn_log_write(level, "apdu.cmd", sid, "cla=%02X ins=%02X p1=%02X p2=%02X", apdu[0],
                      apdu[1], apdu[2], apdu[3]);
        return;
    }
    if (n == 5) {
        cmn_log_write(level, "apdu.cmd", sid, "cla=%02X ins=%02X p1=%02X p2=%02X le=%02X",
                      apdu[0], apdu[1], apdu[2], apdu[3], apdu[4]);
        return;
    }
    lc = apdu[4];
    have = n - 5 < lc ? n - 5 : lc;
    if (!cmn_log_apdu_shows(apdu[1], false)) {
        cmn_log_write(level, "apdu.cmd", sid,
                      "cla=%02X ins=%02X p1=%02X p2=%02X lc=%02X len=%zu data=<redacted>",
                      apdu[0], apdu[1], apdu[2], apdu[3], apdu[4], n);
        return;
    }
    hex_cut(apdu + 5, have, hex, sizeof(hex));
    cmn_log_write(level, "apdu.cmd", sid, "cla=%02X ins=%02X p1=%02X p2=%02X lc=%02X len=%zu data=%s",
                  apdu[0], apdu[1], apdu[2], apdu[3], apdu[4], n, hex);
}

void
cmn_log_apdu_resp(enum cmn_log_level level, const char *sid, uint8_t ins, const uint8_t *resp,
                  size_t n)
{
    char hex[2 * DUMP_MAX + 8];
    unsigned sw;

    if (!cmn_log_enabled(level))
        return;
    if (resp == NULL || n < 2) {
        cmn_log_write(level, "apdu.resp", sid, "ins=%02X len=%zu err=short", ins, n);
        return;
    }
    sw = (unsigned)resp[n - 2] << 8 | resp[n - 1];
    if (n == 2) {
        cmn_log_write(level, "apdu.resp", sid, "ins=%02X sw=%04X len=0", ins, sw);
        return;
    }
    if (!cmn_log_apdu_shows(ins, true)) {
        cmn_log_write(level, "apdu.resp", sid, "ins=%02X sw=%04X len=%zu data=<redacted>", ins,
                      sw, n - 2);
        return;
    }
    hex_cut(resp, n - 2, hex, sizeof(hex));
    cmn_log_write(level, "apdu.resp", sid, "ins=%02X sw=%04X len=%zu data=%s", ins, sw, n - 2,
                  hex);
}
