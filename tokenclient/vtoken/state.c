/* tokenclient/vtoken/state.c - the card's state file (a readable text file, one item per line,
 * written atomically with mode 0600) and `vtoken --show`. */
#include "tokenclient/vtoken/card.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/p11obj.h"

#define STATE_MAGIC "vtoken-state 1"
#define STATE_MAX (4u * 1024 * 1024)
#define MAX_TOK 12

static enum cmn_rc err_set(char *err, size_t err_size, enum cmn_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum cmn_rc
err_set(char *err, size_t err_size, enum cmn_rc rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && err_size > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* --- save --- */

static void
put_hex(struct cmn_buf *b, const uint8_t *p, size_t n)
{
    (void)cmn_buf_putc(b, ' ');
    if (n == 0)
        (void)cmn_buf_putc(b, '-');
    else
        (void)cmn_hex_append(b, p, n);
}

static const char *
alg_name(enum cmn_key_alg a)
{
    return a == CMN_KEY_AES ? "AES" : "DES3";
}

static void
put_aid(struct cmn_buf *b, const uint8_t *aid)
{
    put_hex(b, aid + 1, aid[0]);
}

static bool
key_der(const struct vt_keyslot *k, struct cmn_buf *b)
{
    unsigned char *der = NULL;
    int n = vt_key_is_public(k->type) ? i2d_PUBKEY(k->pkey, &der)
                                      : i2d_PrivateKey(k->pkey, &der);

    if (n <= 0)
        return false;
    put_hex(b, der, (size_t)n);
    OPENSSL_clear_free(der, (size_t)n);
    return true;
}

static enum cmn_rc
render(const struct vt_card *c, struct cmn_buf *b)
{
    (void)cmn_buf_printf(b, "%s\n", STATE_MAGIC);
    (void)cmn_buf_printf(b, "proto %d\ncuid", (int)c->proto);
    put_hex(b, c->cuid, 10);
    (void)cmn_buf_puts(b, "\nmsn");
    put_hex(b, c->msn, 4);
    (void)cmn_buf_puts(b, "\natr");
    put_hex(b, c->atr, c->atr_len);
    (void)cmn_buf_printf(b, "\ndefault_kv %02X\nseq %lu\nscp03_i %02X\n", c->default_kv,
                         (unsigned long)c->seq, c->scp03_i);
    (void)cmn_buf_printf(b, "upgrade %u.%u.%08x\n", c->upgrade_major, c->upgrade_minor,
                         (unsigned)c->upgrade_build);
    for (size_t i = 0; i < c->nkeysets; i++) {
        const struct cmn_keyset *ks = &c->keysets[i];

        (void)cmn_buf_printf(b, "keyset %02X %s", ks->version, alg_name(ks->enc.alg));
        put_hex(b, ks->enc.v, ks->enc.len);
        put_hex(b, ks->mac.v, ks->mac.len);
        put_hex(b, ks->kek.v, ks->kek.len);
        (void)cmn_buf_putc(b, '\n');
    }
    for (size_t i = 0; i < c->npackages; i++) {
        (void)cmn_buf_puts(b, "package");
        put_aid(b, c->packages[i]);
        (void)cmn_buf_putc(b, '\n');
    }
    if (!c->applet_present)
        return cmn_buf_puts(b, "end\n");
    (void)cmn_buf_puts(b, "applet");
    put_aid(b, c->applet_aid);
    (void)cmn_buf_printf(b, " %u.%u.%08x %02X %u\nissuer", c->applet_major, c->applet_minor,
                         (unsigned)c->applet_build, c->life_cycle, (unsigned)c->mem_total);
    put_hex(b, c->issuer, VT_ISSUER_LEN);
    (void)cmn_buf_putc(b, '\n');
    for (int i = 0; i < VT_MAX_PINS; i++) {
        const struct vt_pin *p = &c->pins[i];

        if (!p->present)
            continue;
        (void)cmn_buf_printf(b, "pin %d %02X %02X", i, p->max_tries, p->tries_left);
        put_hex(b, p->value, p->len);
        (void)cmn_buf_putc(b, '\n');
    }
    for (size_t i = 0; i < c->nobjects; i++) {
        const struct vt_object *o = &c->objects[i];

        (void)cmn_buf_printf(b, "object %08X %04X %04X %04X %zu", (unsigned)o->id, o->acl[0],
                             o->acl[1], o->acl[2], o->size);
        put_hex(b, o->data, o->size);
        (void)cmn_buf_putc(b, '\n');
    }
    for (int i = 0; i < VT_MAX_KEYSLOTS; i++) {
        const struct vt_keyslot *k = &c->keys[i];

        if (!k->present)
            continue;
        (void)cmn_buf_printf(b, "key %d %u %u %u %04X %04X %04X", i, k->type, k->mate, k->bits,
                             k->acl[0], k->acl[1], k->acl[2]);
        if (!key_der(k, b))
            return CMN_ECRYPTO;
        (void)cmn_buf_putc(b, '\n');
    }
    return cmn_buf_puts(b, "end\n");
}

enum cmn_rc
vt_state_save(struct vt_card *c, char *err, size_t err_size)
{
    struct cmn_buf b;
    char tmp[4096];
    int fd, n;
    enum cmn_rc rc;
    size_t off = 0, total;

    if (c->path == NULL)
        return CMN_OK;
    n = snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return err_set(err, err_size, CMN_EIO, "%s: path too long", c->path);
    cmn_buf_init_secret(&b, STATE_MAX);
    rc = render(c, &b);
    if (rc != CMN_OK || b.len == 0) {
        cmn_buf_cleanup(&b);
        return err_set(err, err_size, rc == CMN_OK ? CMN_EIO : rc,
                       "%s: cannot render the state (too large?)", c->path);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        cmn_buf_cleanup(&b);
        return err_set(err, err_size, CMN_EIO, "%s: cannot create (%s)", tmp, strerror(errno));
    }
    while (off < b.len) {
        ssize_t w = write(fd, b.data + off, b.len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    total = b.len;
    cmn_buf_cleanup(&b);
    if (off != total) {
        (void)close(fd);
        (void)unlink(tmp);
        return err_set(err, err_size, CMN_EIO, "%s: short write (%s)", tmp, strerror(errno));
    }
    if (close(fd) != 0 || rename(tmp, c->path) != 0) {
        (void)unlink(tmp);
        return err_set(err, err_size, CMN_EIO, "%s: cannot write (%s)", c->path, strerror(errno));
    }
    c->dirty = false;
    return CMN_OK;
}

/* --- load --- */

static size_t
split(char *line, char **tok)
{
    size_t n = 0;
    char *p = line;

    while (*p != '\0' && n < MAX_TOK) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        tok[n++] = p;
        while (*p != '\0' && *p != ' ')
            p++;
        if (*p == ' ')
            *p++ = '\0';
    }
    return n;
}

static bool
hexv(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    if (strcmp(s, "-") == 0) {
        *n = 0;
        return true;
    }
    return cmn_hex_decode(s, strlen(s), false, out, cap, n) == CMN_OK;
}

static bool
hexn(const char *s, uint8_t *out, size_t want)
{
    size_t n;

    return hexv(s, out, want, &n) && n == want;
}

static bool
ulong_of(const char *s, int base, unsigned long max, unsigned long *v)
{
    char *end;

    errno = 0;
    *v = strtoul(s, &end, base);
    return errno == 0 && end != s && *end == '\0' && *v <= max;
}

static bool
version_of(const char *s, uint8_t *maj, uint8_t *min, uint32_t *build)
{
    unsigned a, b, x;
    int used = 0;

    if (sscanf(s, "%u.%u.%x%n", &a, &b, &x, &used) != 3 || s[used] != '\0' || a > 255 ||
        b > 255)
        return false;
    *maj = (uint8_t)a;
    *min = (uint8_t)b;
    *build = x;
    return true;
}

static bool
aid_of(const char *s, uint8_t *aid)
{
    size_t n;

    if (!hexv(s, aid + 1, VT_AID_MAX, &n) || n == 0)
        return false;
    aid[0] = (uint8_t)n;
    return true;
}

static bool
load_key(struct vt_keyslot *k, const char *hex)
{
    size_t n = strlen(hex) / 2;
    uint8_t *der = malloc(n + 1);
    const unsigned char *p;
    bool ok = false;

    if (der == NULL)
        return false;
    if (hexv(hex, der, n + 1, &n) && n > 0) {
        p = der;
        k->pkey = vt_key_is_public(k->type) ? d2i_PUBKEY(NULL, &p, (long)n)
                                            : d2i_AutoPrivateKey(NULL, &p, (long)n);
        ok = k->pkey != NULL;
    }
    cmn_wipe(der, n);
    free(der);
    return ok;
}

static bool
load_line(struct vt_card *c, char **t, size_t nt)
{
    unsigned long v, w;
    size_t n;

    if (strcmp(t[0], "proto") == 0 && nt == 2) {
        if (!ulong_of(t[1], 10, 3, &v) || v == 0)
            return false;
        c->proto = (enum cmn_scp_proto)v;
        return true;
    }
    if (strcmp(t[0], "cuid") == 0 && nt == 2)
        return hexn(t[1], c->cuid, 10);
    if (strcmp(t[0], "msn") == 0 && nt == 2)
        return hexn(t[1], c->msn, 4);
    if (strcmp(t[0], "atr") == 0 && nt == 2)
        return hexv(t[1], c->atr, VT_ATR_MAX, &c->atr_len) && c->atr_len >= 2;
    if (strcmp(t[0], "default_kv") == 0 && nt == 2)
        return hexn(t[1], &c->default_kv, 1);
    if (strcmp(t[0], "seq") == 0 && nt == 2) {
        if (!ulong_of(t[1], 10, 0xFFFFFF, &v))
            return false;
        c->seq = (uint32_t)v;
        return true;
    }
    if (strcmp(t[0], "scp03_i") == 0 && nt == 2)
        return hexn(t[1], &c->scp03_i, 1);
    if (strcmp(t[0], "upgrade") == 0 && nt == 2)
        return version_of(t[1], &c->upgrade_major, &c->upgrade_minor, &c->upgrade_build);
    if (strcmp(t[0], "keyset") == 0 && nt == 6) {
        struct cmn_keyset *ks;
        enum cmn_key_alg alg;
        uint8_t kb[32];
        bool ok;

        if (c->nkeysets == VT_MAX_KEYSETS)
            return false;
        ks = &c->keysets[c->nkeysets];
        if (!hexn(t[1], &ks->version, 1))
            return false;
        alg = strcmp(t[2], "AES") == 0 ? CMN_KEY_AES : CMN_KEY_DES3;
        ok = hexv(t[3], kb, sizeof(kb), &n) && cmn_key_set(&ks->enc, alg, kb, n) == CMN_OK &&
             hexv(t[4], kb, sizeof(kb), &n) && cmn_key_set(&ks->mac, alg, kb, n) == CMN_OK &&
             hexv(t[5], kb, sizeof(kb), &n) && cmn_key_set(&ks->kek, alg, kb, n) == CMN_OK;
        cmn_wipe(kb, sizeof(kb));
        if (ok)
            c->nkeysets++;
        return ok;
    }
    if (strcmp(t[0], "package") == 0 && nt == 2) {
        if (c->npackages == VT_MAX_PACKAGES)
            return false;
        return aid_of(t[1], c->packages[c->npackages++]);
    }
    if (strcmp(t[0], "applet") == 0 && nt == 5) {
        if (!aid_of(t[1], c->applet_aid) ||
            !version_of(t[2], &c->applet_major, &c->applet_minor, &c->applet_build) ||
            !hexn(t[3], &c->life_cycle, 1) || !ulong_of(t[4], 10, 0x7FFF, &v))
            return false;
        c->mem_total = (uint16_t)v;
        c->applet_present = true;
        return true;
    }
    if (strcmp(t[0], "issuer") == 0 && nt == 2)
        return hexn(t[1], c->issuer, VT_ISSUER_LEN);
    if (strcmp(t[0], "pin") == 0 && nt == 5) {
        struct vt_pin *p;

        if (!ulong_of(t[1], 10, VT_MAX_PINS - 1, &v))
            return false;
        p = &c->pins[v];
        if (!hexn(t[2], &p->max_tries, 1) || !hexn(t[3], &p->tries_left, 1) ||
            !hexv(t[4], p->value, VT_PIN_MAX, &n) || n < 1)
            return false;
        p->len = (uint8_t)n;
        p->present = true;
        return true;
    }
    if (strcmp(t[0], "object") == 0 && nt == 7) {
        struct vt_object *o;
        unsigned long acl[3];

        if (c->nobjects == VT_MAX_OBJECTS || !ulong_of(t[5], 10, 0x7FFF, &w) || w == 0)
            return false;
        o = &c->objects[c->nobjects];
        for (int i = 0; i < 3; i++)
            if (!ulong_of(t[2 + i], 16, 0xFFFF, &acl[i]))
                return false;
        if (!ulong_of(t[1], 16, 0xFFFFFFFFul, &v))
            return false;
        o->data = calloc(1, w);
        if (o->data == NULL)
            return false;
        o->id = (uint32_t)v;
        o->size = w;
        for (int i = 0; i < 3; i++)
            o->acl[i] = (uint16_t)acl[i];
        c->nobjects++;
        return hexn(t[6], o->data, w);
    }
    if (strcmp(t[0], "key") == 0 && nt == 9) {
        struct vt_keyslot *k;
        unsigned long f[4], acl[3];

        if (!ulong_of(t[1], 10, VT_MAX_KEYSLOTS - 1, &v) || !ulong_of(t[2], 10, 255, &f[0]) ||
            !ulong_of(t[3], 10, 255, &f[1]) || !ulong_of(t[4], 10, 0xFFFF, &f[2]))
            return false;
        for (int i = 0; i < 3; i++)
            if (!ulong_of(t[5 + i], 16, 0xFFFF, &acl[i]))
                return false;
        k = &c->keys[v];
        vt_keyslot_clear(k);
        k->type = (uint8_t)f[0];
        k->mate = (uint8_t)f[1];
        k->bits = (uint16_t)f[2];
        for (int i = 0; i < 3; i++)
            k->acl[i] = (uint16_t)acl[i];
        if (!load_key(k, t[8]))
            return false;
        k->present = true;
        return true;
    }
    return false;
}

enum cmn_rc
vt_state_load(struct vt_card *c, const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    struct cmn_buf b;
    char chunk[4096], *line, *next, *tok[MAX_TOK];
    size_t n;
    long lineno = 0;
    enum cmn_rc rc = CMN_OK;
    bool ended = false;

    if (f == NULL)
        return err_set(err, err_size, CMN_EIO, "%s: cannot open (%s)", path, strerror(errno));
    cmn_buf_init_secret(&b, STATE_MAX);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (cmn_buf_append(&b, chunk, n) != CMN_OK) {
            rc = CMN_ETOOBIG;
            break;
        }
    }
    fclose(f);
    cmn_wipe(chunk, sizeof(chunk));
    if (rc != CMN_OK) {
        cmn_buf_cleanup(&b);
        return err_set(err, err_size, rc, "%s: state file too large", path);
    }
    for (size_t i = 0; i < VT_MAX_KEYSLOTS; i++)
        c->keys[i].mate = 0xFF;
    line = (char *)(uintptr_t)cmn_buf_cstr(&b);
    for (; line != NULL && *line != '\0'; line = next) {
        size_t nt;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, STATE_MAGIC) != 0) {
                rc = CMN_EINVAL;
                break;
            }
            continue;
        }
        if (line[0] == '#' || line[0] == '\0')
            continue;
        nt = split(line, tok);
        if (nt == 1 && strcmp(tok[0], "end") == 0) {
            ended = true;
            break;
        }
        if (nt == 0 || !load_line(c, tok, nt)) {
            rc = CMN_EINVAL;
            break;
        }
    }
    cmn_buf_cleanup(&b);
    if (rc == CMN_OK && (!ended || c->nkeysets == 0 || vt_keyset_find(c, c->default_kv) == NULL))
        rc = CMN_EINVAL;
    if (rc != CMN_OK)
        return err_set(err, err_size, rc, "%s:%ld: corrupt state file", path, lineno);
    (void)cmn_scp_init(&c->scp, c->proto);
    c->dirty = false;
    return CMN_OK;
}

/* --- show --- */

static void
show_hex(FILE *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02X", p[i]);
}

static void
show_z0(FILE *out, const struct vt_object *o)
{
    struct cmn_p11obj z;
    enum cmn_rc rc = cmn_p11obj_parse(&z, o->data, o->size, 0);

    if (rc != CMN_OK) {
        fprintf(out, "      (not a valid combined object: %s)\n", cmn_strerror(rc));
        cmn_p11obj_cleanup(&z);
        return;
    }
    fprintf(out, "      z0: format %04X version %u compression %u cuid ", z.format_version,
            z.object_version, z.compression);
    show_hex(out, z.cuid, 10);
    fprintf(out, " token \"%.*s\" records %zu\n", (int)z.name_len, (const char *)z.name,
            z.nrecs);
    for (size_t i = 0; i < z.nrecs; i++) {
        const struct cmn_p11obj_rec *r = &z.recs[i];
        const struct cmn_p11obj_attr *lab = cmn_p11obj_attr(r, CMN_P11_CKA_LABEL);
        const struct cmn_p11obj_attr *val = cmn_p11obj_attr(r, CMN_P11_CKA_VALUE);

        fprintf(out, "        %c%c fixed %08X class %u id %u attrs %zu", (char)(r->id >> 24),
                (char)(r->id >> 16), (unsigned)r->fixed,
                (unsigned)((r->fixed & CMN_P11OBJ_F_CLASS_MASK) >> 4),
                (unsigned)(r->fixed & CMN_P11OBJ_F_ID_MASK), r->nattrs);
        if (lab != NULL && lab->dtype == CMN_P11OBJ_DT_STRING)
            fprintf(out, " label \"%.*s\"", (int)lab->len, (const char *)lab->val);
        if (val != NULL && val->dtype == CMN_P11OBJ_DT_STRING)
            fprintf(out, " value %zu bytes", val->len);
        fputc('\n', out);
    }
    cmn_p11obj_cleanup(&z);
}

void
vt_card_show(const struct vt_card *c, FILE *out)
{
    uint8_t kcv[3];

    fprintf(out, "card\n  protocol   SCP0%d\n  cuid       ", (int)c->proto);
    show_hex(out, c->cuid, 10);
    fprintf(out, "\n  msn        ");
    show_hex(out, c->msn, 4);
    fprintf(out, "\n  atr        ");
    show_hex(out, c->atr, c->atr_len);
    fprintf(out, "\n  sequence   %lu\n  default key set %02X\n", (unsigned long)c->seq,
            c->default_kv);
    for (size_t i = 0; i < c->nkeysets; i++) {
        const struct cmn_keyset *ks = &c->keysets[i];

        fprintf(out, "  key set %02X %s-%zu KCV", ks->version, alg_name(ks->enc.alg),
                ks->enc.len * 8);
        if (cmn_key_kcv(&ks->enc, kcv) == CMN_OK) {
            fprintf(out, " enc ");
            show_hex(out, kcv, 3);
        }
        if (cmn_key_kcv(&ks->mac, kcv) == CMN_OK) {
            fprintf(out, " mac ");
            show_hex(out, kcv, 3);
        }
        if (cmn_key_kcv(&ks->kek, kcv) == CMN_OK) {
            fprintf(out, " kek ");
            show_hex(out, kcv, 3);
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < c->npackages; i++) {
        fprintf(out, "  package    ");
        show_hex(out, &c->packages[i][1], c->packages[i][0]);
        fputc('\n', out);
    }
    fprintf(out, "  upgrade to %u.%u.%08x\n", c->upgrade_major, c->upgrade_minor,
            (unsigned)c->upgrade_build);
    if (!c->applet_present) {
        fprintf(out, "applet absent\n");
        return;
    }
    fprintf(out, "applet ");
    show_hex(out, &c->applet_aid[1], c->applet_aid[0]);
    fprintf(out, "\n  version    %u.%u.%08x\n  life cycle %02X\n  memory     %u total, %zu free\n",
            c->applet_major, c->applet_minor, (unsigned)c->applet_build, c->life_cycle,
            (unsigned)c->mem_total, vt_mem_free(c));
    fprintf(out, "  issuer     \"");
    for (size_t i = 0; i < VT_ISSUER_LEN && c->issuer[i] != 0; i++)
        fputc(c->issuer[i] >= 0x20 && c->issuer[i] < 0x7F ? c->issuer[i] : '.', out);
    fprintf(out, "\"\n");
    for (int i = 0; i < VT_MAX_PINS; i++)
        if (c->pins[i].present)
            fprintf(out, "  pin %d      tries %u of %u%s\n", i, c->pins[i].tries_left,
                    c->pins[i].max_tries, c->pins[i].tries_left == 0 ? " (blocked)" : "");
    for (size_t i = 0; i < c->nobjects; i++) {
        const struct vt_object *o = &c->objects[i];
        char id[5];

        for (int j = 0; j < 4; j++) {
            uint8_t ch = (uint8_t)(o->id >> (24 - 8 * j));
            id[j] = ch >= 0x21 && ch < 0x7F ? (char)ch : '.';
        }
        id[4] = '\0';
        fprintf(out, "  object %08X \"%s\" size %zu acl r=%04X w=%04X d=%04X\n",
                (unsigned)o->id, id, o->size, o->acl[0], o->acl[1], o->acl[2]);
        if (o->id == CMN_P11OBJ_Z0)
            show_z0(out, o);
    }
    for (int i = 0; i < VT_MAX_KEYSLOTS; i++) {
        const struct vt_keyslot *k = &c->keys[i];
        unsigned char *der = NULL, md[32];
        unsigned mdlen = 0;
        int n;

        if (!k->present)
            continue;
        fprintf(out, "  key %-2d     %s %s-%u mate %u acl r=%04X w=%04X u=%04X",
                i, vt_key_is_public(k->type) ? "public " : "private",
                EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_EC ? "EC" : "RSA", k->bits, k->mate,
                k->acl[0], k->acl[1], k->acl[2]);
        /* a digest of the public half identifies the pair without showing private data */
        n = i2d_PUBKEY(k->pkey, &der);
        if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1) {
            fprintf(out, " spki-sha256 ");
            show_hex(out, md, 8);
            fprintf(out, "...");
        }
        OPENSSL_free(der);
        fputc('\n', out);
    }
}
