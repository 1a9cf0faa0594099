/* tools/tkskey/tkskey.c - TKS master-key changeover on any PKCS#11 module: transport keys from
 * custodians' shares, master keys under versioned labels, wrap/unwrap between TKS clones,
 * KCVs for the key ceremony. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "tools/tkskey/keyfile.h"
#include "tools/tkskey/p11.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

struct opts {
    const char *module, *token, *pin_file, *pin_env;
    const char *label, *to, *transport, *in, *out, *kcv, *share_out, *share_in;
    enum kt_keytype type;
    bool type_set;
    enum kt_wrapfmt fmt;
    bool exportable, readable, yes;
};

static void
usage(FILE *f)
{
    fputs("usage: tkskey [--module PATH] [--token LABEL] [--pin-file F | --pin-env VAR] COMMAND\n"
          "commands:\n"
          "  list                                         secret keys with type, length, KCV\n"
          "  kcv --label L                                show a key's KCV\n"
          "  verify --label L --kcv HEX                   exit 0 if the key has that KCV\n"
          "  gen-transport --label L [--type T] [--share-out PREFIX]\n"
          "                                               3 new shares (shown, or written to\n"
          "                                               PREFIX.1..3), transport key stored\n"
          "  input-transport --label L [--type T] [--share-in F1,F2,F3]\n"
          "                                               transport key from 3 shares (typed or\n"
          "                                               files), each share's KCV verified\n"
          "  gen-master --label L [--type T] [--exportable] [--readable]\n"
          "  wrap --label L --transport TL --out FILE [--format kwp|tkstool]\n"
          "  unwrap --label L --transport TL --in FILE [--readable]\n"
          "  rename --label L --to NEW [--yes]\n"
          "  delete --label L [--yes]\n"
          "types: des2 (default for master keys and tkstool), des3, aes128 (default for\n"
          "transport keys), aes256. The PIN is read from --pin-file, --pin-env, or typed.\n"
          "Default module: " DEFAULT_MODULE "\n",
          f);
}

/* Reads a line from the terminal without echo into buf. */
static bool
read_secret_tty(const char *prompt, char *buf, size_t n)
{
    struct termios old, noecho;
    FILE *tty = fopen("/dev/tty", "r+");
    bool ok = false;

    if (tty == NULL)
        return false;
    fputs(prompt, tty);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
        ok = fgets(buf, (int)n, tty) != NULL;
        (void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputs("\n", tty);
    }
    fclose(tty);
    if (ok)
        buf[strcspn(buf, "\r\n")] = 0;
    return ok;
}

/* Reads at most n-1 bytes of a file into buf (NUL-terminated). Secret files must not be
 * readable by group or others. */
static bool
read_file(const char *path, char *buf, size_t n, bool secret, size_t *len)
{
    struct stat st;
    ssize_t got;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "tkskey: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    if (secret && fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
        fprintf(stderr, "tkskey: %s is readable by others (mode %03o): chmod 600 it first\n",
                path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return false;
    }
    got = read(fd, buf, n - 1);
    close(fd);
    if (got < 0) {
        fprintf(stderr, "tkskey: cannot read %s: %s\n", path, strerror(errno));
        return false;
    }
    buf[got] = 0;
    *len = (size_t)got;
    return true;
}

static bool
get_pin(const struct opts *o, char *pin, size_t n)
{
    size_t len;

    if (o->pin_file != NULL) {
        if (!read_file(o->pin_file, pin, n, true, &len))
            return false;
        pin[strcspn(pin, "\r\n")] = 0;
        return true;
    }
    if (o->pin_env != NULL) {
        const char *v = getenv(o->pin_env);

        if (v == NULL || strlen(v) >= n) {
            fprintf(stderr, "tkskey: environment variable %s is not set\n", o->pin_env);
            return false;
        }
        memcpy(pin, v, strlen(v) + 1);
        return true;
    }
    if (!read_secret_tty("token PIN: ", pin, n)) {
        fprintf(stderr, "tkskey: no PIN: give --pin-file or --pin-env, or run on a terminal\n");
        return false;
    }
    return true;
}

static bool
confirm(const struct opts *o, const char *what)
{
    char line[KT_MAX_LABEL + 8];
    FILE *tty;

    if (o->yes)
        return true;
    tty = fopen("/dev/tty", "r+");
    if (tty == NULL) {
        fprintf(stderr, "tkskey: %s needs confirmation: run on a terminal or add --yes\n", what);
        return false;
    }
    fprintf(tty, "%s '%s': type the label again to confirm: ", what, o->label);
    fflush(tty);
    if (fgets(line, sizeof(line), tty) == NULL)
        line[0] = 0;
    fclose(tty);
    line[strcspn(line, "\r\n")] = 0;
    return strcmp(line, o->label) == 0;
}

static void
print_kcv(const char *prefix, const uint8_t *kcv, size_t n)
{
    printf("%s", prefix);
    for (size_t i = 0; i < n; i++)
        printf("%s%02X", i == 2 ? " " : "", kcv[i]);
    printf("\n");
}

static void
list_cb(const struct kt_keyinfo *k, void *arg)
{
    const char *type = k->type == CKK_DES2   ? "des2"
                       : k->type == CKK_DES3 ? "des3"
                       : k->type == CKK_AES  ? "aes"
                                             : "other";
    char kcv[16] = "-";

    (void)arg;
    if (k->kcv_len >= 3)
        snprintf(kcv, sizeof(kcv), "%02X%02X%02X", k->kcv[0], k->kcv[1], k->kcv[2]);
    printf("%-24s %-6s %3zu  kcv=%s  id=%s\n", k->label[0] ? k->label : "(no label)", type,
           k->len, kcv, k->id_hex[0] ? k->id_hex : "-");
}

/* KCV of a clear share or key, computed in software (it is in host memory anyway). */
static bool
soft_kcv(enum kt_keytype t, const uint8_t *key, uint8_t kcv[3])
{
    size_t n = kt_keytype_len(t);

    if (t == KT_KEY_AES128 || t == KT_KEY_AES256)
        return cmn_crypto_kcv_aes(key, n, kcv) == CMN_OK;
    return cmn_crypto_kcv_des(key, n, kcv) == CMN_OK;
}

/* The shares of one transport key and their XOR, kept in locked memory. */
struct ceremony {
    struct kt_share share[3];
    uint8_t key[KT_MAX_KEY];
};

static struct ceremony *
ceremony_new(void)
{
    struct ceremony *c = calloc(1, sizeof(*c));

    if (c != NULL)
        (void)mlock(c, sizeof(*c)); /* best effort: keep shares out of swap */
    return c;
}

static void
ceremony_free(struct ceremony *c)
{
    if (c == NULL)
        return;
    cmn_wipe(c, sizeof(*c));
    (void)munlock(c, sizeof(*c));
    free(c);
}

static bool
write_share(const char *prefix, int i, const struct kt_share *s)
{
    char path[4096], text[256];
    int fd, n;
    bool ok;

    n = snprintf(path, sizeof(path), "%s.%d", prefix, i);
    if (n < 0 || (size_t)n >= sizeof(path) || !kt_share_format(s, text, sizeof(text)))
        return false;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "tkskey: cannot create %s: %s (it must not exist yet)\n", path,
                strerror(errno));
        return false;
    }
    ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    ok = close(fd) == 0 && ok;
    cmn_wipe(text, sizeof(text));
    return ok;
}

static int
cmd_transport(struct kt_p11 *p, const struct opts *o, bool generate)
{
    enum kt_keytype t = o->type_set ? o->type : KT_KEY_AES128;
    size_t n = kt_keytype_len(t);
    struct ceremony *c = ceremony_new();
    CK_OBJECT_HANDLE h;
    uint8_t kcv[4];
    size_t kcv_len;
    enum kt_rc rc;

    if (c == NULL)
        return KT_EP11;
    rc = kt_p11_refuse_existing(p, o->label);
    if (rc != KT_OK)
        goto out;
    for (int i = 0; i < 3; i++) {
        struct kt_share *s = &c->share[i];

        if (generate) {
            if (cmn_crypto_random(s->key, n) != CMN_OK) {
                rc = KT_EP11;
                goto out;
            }
            if (t == KT_KEY_DES2 || t == KT_KEY_DES3)
                cmn_crypto_des_parity(s->key, n);
            s->len = n;
            if (!soft_kcv(t, s->key, s->kcv)) {
                rc = KT_EP11;
                goto out;
            }
            if (o->share_out != NULL) {
                if (!write_share(o->share_out, i + 1, s)) {
                    rc = KT_EFILE;
                    goto out;
                }
                printf("share %d written to %s.%d", i + 1, o->share_out, i + 1);
                print_kcv("  kcv ", s->kcv, 3);
            } else {
                char text[256];

                /* the shares are the one secret this tool prints: custodians copy them */
                (void)kt_share_format(s, text, sizeof(text));
                printf("--- share %d of 3 (give to custodian %d) ---\n%s", i + 1, i + 1, text);
                cmn_wipe(text, sizeof(text));
            }
        } else {
            char text[512], err[128], path[4096];
            const char *files = o->share_in;
            size_t len = 0;
            uint8_t want[3];
            bool ok;

            if (files != NULL) {
                const char *start = files;

                for (int k = 0; k < i && start; k++) {
                    start = strchr(start, ',');
                    start = start ? start + 1 : NULL;
                }
                len = start ? strcspn(start, ",") : 0;
                if (start == NULL || len == 0 || len >= sizeof(path)) {
                    fprintf(stderr, "tkskey: --share-in needs three files: F1,F2,F3\n");
                    rc = KT_EUSAGE;
                    goto out;
                }
                memcpy(path, start, len);
                path[len] = 0;
                ok = read_file(path, text, sizeof(text), true, &len);
            } else {
                char prompt[64];

                snprintf(prompt, sizeof(prompt), "share %d (hex, then ' kcv ' and its KCV): ",
                         i + 1);
                ok = read_secret_tty(prompt, text, sizeof(text));
                if (ok) {
                    /* accept "HEX kcv HEX" typed on one line */
                    char *k = strstr(text, "kcv");
                    char line[600];

                    if (k != NULL) {
                        *k = 0;
                        snprintf(line, sizeof(line), "share: %s\nkcv: %s\n", text, k + 3);
                    } else {
                        snprintf(line, sizeof(line), "share: %s\n", text);
                    }
                    memcpy(text, line, sizeof(text) - 1);
                    text[sizeof(text) - 1] = 0;
                    cmn_wipe(line, sizeof(line));
                    len = strlen(text);
                }
            }
            if (!ok) {
                rc = KT_EFILE;
                goto out;
            }
            ok = kt_share_parse(text, len, s, err, sizeof(err));
            cmn_wipe(text, sizeof(text));
            if (!ok) {
                fprintf(stderr, "tkskey: share %d: %s\n", i + 1, err);
                rc = KT_EFILE;
                goto out;
            }
            if (s->len != n) {
                fprintf(stderr, "tkskey: share %d has %zu bytes, a %s key needs %zu\n", i + 1,
                        s->len, kt_keytype_name(t), n);
                rc = KT_EFILE;
                goto out;
            }
            if (!s->has_kcv) {
                fprintf(stderr, "tkskey: share %d has no KCV: the custodian must give it\n", i + 1);
                rc = KT_EFILE;
                goto out;
            }
            if (!soft_kcv(t, s->key, want)) {
                rc = KT_EP11;
                goto out;
            }
            if (cmn_ct_memcmp(want, s->kcv, 3) != 0) {
                fprintf(stderr, "tkskey: share %d: KCV mismatch (typed %02X%02X%02X, share "
                        "gives %02X%02X%02X): re-enter the share\n", i + 1, s->kcv[0],
                        s->kcv[1], s->kcv[2], want[0], want[1], want[2]);
                rc = KT_EKCV;
                goto out;
            }
            print_kcv("share verified, kcv ", s->kcv, 3);
        }
    }
    for (size_t i = 0; i < n; i++)
        c->key[i] = c->share[0].key[i] ^ c->share[1].key[i] ^ c->share[2].key[i];
    rc = kt_p11_import_transport(p, t, c->key, o->label, &h);
    if (rc != KT_OK)
        goto out;
    rc = kt_p11_kcv(p, h, kcv, &kcv_len);
    if (rc != KT_OK)
        goto out;
    printf("transport key '%s' (%s) stored; ", o->label, kt_keytype_name(t));
    print_kcv("kcv ", kcv, 3);
out:
    ceremony_free(c);
    return rc;
}

static int
cmd_wrap(struct kt_p11 *p, const struct opts *o)
{
    struct kt_wrapped w;
    CK_OBJECT_HANDLE tk, h;
    char text[512];
    size_t len = sizeof(w.wrapped), kcv_len;
    enum kt_rc rc;
    FILE *f;
    int fd;

    memset(&w, 0, sizeof(w));
    rc = kt_p11_find(p, o->transport, &tk);
    if (rc == KT_OK)
        rc = kt_p11_find(p, o->label, &h);
    if (rc != KT_OK)
        return rc;
    w.fmt = o->fmt;
    rc = kt_p11_wrap(p, tk, h, o->fmt, w.wrapped, &len);
    if (rc != KT_OK)
        return rc;
    w.wrapped_len = len;
    rc = kt_p11_kcv(p, h, w.kcv, &kcv_len);
    if (rc != KT_OK)
        return rc;
    {
        CK_KEY_TYPE kt;
        CK_ULONG vlen = 0;
        CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
        CK_ATTRIBUTE b = {CKA_VALUE_LEN, &vlen, sizeof(vlen)};

        if (p->f->C_GetAttributeValue(p->s, h, &a, 1) != CKR_OK) {
            snprintf(p->err, sizeof(p->err), "cannot read the key type of '%s'", o->label);
            return KT_EP11;
        }
        if (kt == CKK_AES)
            (void)p->f->C_GetAttributeValue(p->s, h, &b, 1);
        w.type = kt == CKK_DES2 ? KT_KEY_DES2
                 : kt == CKK_DES3 ? KT_KEY_DES3
                 : vlen == 32     ? KT_KEY_AES256
                                  : KT_KEY_AES128;
    }
    if (o->fmt == KT_WRAP_TKSTOOL) {
        if (w.type != KT_KEY_DES2 || w.wrapped_len != 16 || kcv_len != 4) {
            fprintf(stderr, "tkskey: the tkstool format holds only 2-key 3DES master keys: use "
                            "--format kwp\n");
            return KT_EUSAGE;
        }
        w.kcv_len = 4;
    } else {
        w.kcv_len = 3;
    }
    snprintf(w.label, sizeof(w.label), "%s", o->label);
    if (!kt_wrapped_format(&w, text, sizeof(text)))
        return KT_EFILE;
    fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        fprintf(stderr, "tkskey: cannot create %s: %s (it must not exist yet)\n", o->out,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return KT_EFILE;
    }
    fputs(text, f);
    if (fclose(f) != 0)
        return KT_EFILE;
    printf("master key '%s' wrapped under '%s' into %s; ", o->label, o->transport, o->out);
    print_kcv("kcv ", w.kcv, 3);
    return KT_OK;
}

static int
cmd_unwrap(struct kt_p11 *p, const struct opts *o)
{
    struct kt_wrapped w;
    CK_OBJECT_HANDLE tk, h;
    char text[1024], err[160];
    size_t len;
    enum kt_rc rc;

    if (!read_file(o->in, text, sizeof(text), false, &len))
        return KT_EFILE;
    if (!kt_wrapped_parse(text, len, &w, err, sizeof(err))) {
        fprintf(stderr, "tkskey: %s: %s\n", o->in, err);
        return KT_EFILE;
    }
    if (w.fmt == KT_WRAP_KWP && strcmp(w.label, o->label) != 0)
        fprintf(stderr, "tkskey: note: the file names the key '%s', storing it as '%s'\n",
                w.label, o->label);
    rc = kt_p11_refuse_existing(p, o->label);
    if (rc == KT_OK)
        rc = kt_p11_find(p, o->transport, &tk);
    if (rc == KT_OK)
        rc = kt_p11_unwrap(p, tk, &w, o->label, o->readable, &h);
    if (rc != KT_OK)
        return rc;
    printf("master key '%s' unwrapped and stored; ", o->label);
    print_kcv("kcv ", w.kcv, 3);
    return KT_OK;
}

static int
run(struct kt_p11 *p, const char *cmd, struct opts *o)
{
    CK_OBJECT_HANDLE h;
    uint8_t kcv[4];
    size_t kcv_len;
    enum kt_rc rc;

    if (strcmp(cmd, "list") == 0)
        return kt_p11_list(p, list_cb, NULL);
    if (o->label == NULL) {
        fprintf(stderr, "tkskey: %s needs --label\n", cmd);
        return KT_EUSAGE;
    }
    if (strcmp(cmd, "kcv") == 0 || strcmp(cmd, "verify") == 0) {
        rc = kt_p11_find(p, o->label, &h);
        if (rc == KT_OK)
            rc = kt_p11_kcv(p, h, kcv, &kcv_len);
        if (rc != KT_OK)
            return rc;
        if (strcmp(cmd, "kcv") == 0) {
            printf("%s ", o->label);
            print_kcv("kcv ", kcv, 3);
            return KT_OK;
        } else {
            uint8_t want[4];
            size_t wl;

            if (o->kcv == NULL ||
                cmn_hex_decode(o->kcv, strlen(o->kcv), true, want, sizeof(want), &wl) !=
                    CMN_OK ||
                wl < 3) {
                fprintf(stderr, "tkskey: verify needs --kcv with 6 hex digits\n");
                return KT_EUSAGE;
            }
            if (cmn_ct_memcmp(want, kcv, 3) != 0) {
                printf("%s: KCV mismatch: token has %02X%02X%02X, expected %02X%02X%02X\n",
                       o->label, kcv[0], kcv[1], kcv[2], want[0], want[1], want[2]);
                return KT_EKCV;
            }
            printf("%s: KCV %02X%02X%02X matches\n", o->label, kcv[0], kcv[1], kcv[2]);
            return KT_OK;
        }
    }
    if (strcmp(cmd, "gen-transport") == 0)
        return cmd_transport(p, o, true);
    if (strcmp(cmd, "input-transport") == 0)
        return cmd_transport(p, o, false);
    if (strcmp(cmd, "gen-master") == 0) {
        rc = kt_p11_refuse_existing(p, o->label);
        if (rc == KT_OK)
            rc = kt_p11_gen_master(p, o->type_set ? o->type : KT_KEY_DES2, o->label,
                                   o->exportable, o->readable, &h);
        if (rc == KT_OK)
            rc = kt_p11_kcv(p, h, kcv, &kcv_len);
        if (rc == KT_OK) {
            printf("master key '%s' (%s) generated; ", o->label,
                   kt_keytype_name(o->type_set ? o->type : KT_KEY_DES2));
            print_kcv("kcv ", kcv, 3);
        }
        return rc;
    }
    if (strcmp(cmd, "wrap") == 0 || strcmp(cmd, "unwrap") == 0) {
        if (o->transport == NULL || (cmd[0] == 'w' ? o->out : o->in) == NULL) {
            fprintf(stderr, "tkskey: %s needs --transport and %s\n", cmd,
                    cmd[0] == 'w' ? "--out" : "--in");
            return KT_EUSAGE;
        }
        return cmd[0] == 'w' ? cmd_wrap(p, o) : cmd_unwrap(p, o);
    }
    if (strcmp(cmd, "rename") == 0 || strcmp(cmd, "delete") == 0) {
        bool del = cmd[0] == 'd';

        if (!del && o->to == NULL) {
            fprintf(stderr, "tkskey: rename needs --to NEW\n");
            return KT_EUSAGE;
        }
        rc = kt_p11_find(p, o->label, &h);
        if (rc == KT_OK && !del)
            rc = kt_p11_refuse_existing(p, o->to);
        if (rc != KT_OK)
            return rc;
        if (!confirm(o, del ? "delete" : "rename"))
            return KT_ECANCEL;
        rc = del ? kt_p11_destroy(p, h) : kt_p11_rename(p, h, o->to);
        if (rc == KT_OK)
            printf("%s '%s'%s%s\n", del ? "deleted" : "renamed", o->label, del ? "" : " to ",
                   del ? "" : o->to);
        return rc;
    }
    fprintf(stderr, "tkskey: unknown command '%s'\n", cmd);
    usage(stderr);
    return KT_EUSAGE;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"module", required_argument, NULL, 'm'},  {"token", required_argument, NULL, 't'},
        {"pin-file", required_argument, NULL, 'P'}, {"pin-env", required_argument, NULL, 'E'},
        {"label", required_argument, NULL, 'l'},   {"to", required_argument, NULL, 'r'},
        {"transport", required_argument, NULL, 'T'}, {"in", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},     {"kcv", required_argument, NULL, 'k'},
        {"type", required_argument, NULL, 'y'},    {"format", required_argument, NULL, 'f'},
        {"share-out", required_argument, NULL, 'S'}, {"share-in", required_argument, NULL, 'I'},
        {"exportable", no_argument, NULL, 'x'},    {"readable", no_argument, NULL, 'R'},
        {"yes", no_argument, NULL, 'Y'},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o;
    struct kt_p11 p;
    char pin[256];
    const char *cmd;
    int c, rc;

    memset(&o, 0, sizeof(o));
    o.module = getenv("TKSKEY_MODULE") ? getenv("TKSKEY_MODULE") : DEFAULT_MODULE;
    o.fmt = KT_WRAP_KWP;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o.module = optarg; break;
        case 't': o.token = optarg; break;
        case 'P': o.pin_file = optarg; break;
        case 'E': o.pin_env = optarg; break;
        case 'l': o.label = optarg; break;
        case 'r': o.to = optarg; break;
        case 'T': o.transport = optarg; break;
        case 'i': o.in = optarg; break;
        case 'o': o.out = optarg; break;
        case 'k': o.kcv = optarg; break;
        case 'S': o.share_out = optarg; break;
        case 'I': o.share_in = optarg; break;
        case 'x': o.exportable = true; break;
        case 'R': o.readable = true; break;
        case 'Y': o.yes = true; break;
        case 'y':
            if (!kt_keytype_parse(optarg, &o.type)) {
                fprintf(stderr, "tkskey: --type '%s': use des2, des3, aes128 or aes256\n",
                        optarg);
                return KT_EUSAGE;
            }
            o.type_set = true;
            break;
        case 'f':
            if (strcmp(optarg, "kwp") == 0) {
                o.fmt = KT_WRAP_KWP;
            } else if (strcmp(optarg, "tkstool") == 0) {
                o.fmt = KT_WRAP_TKSTOOL;
            } else {
                fprintf(stderr, "tkskey: --format '%s': use kwp or tkstool\n", optarg);
                return KT_EUSAGE;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return KT_EUSAGE;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return KT_EUSAGE;
    }
    cmd = argv[optind];
    if (o.label != NULL && (strlen(o.label) == 0 || strlen(o.label) > KT_MAX_LABEL)) {
        fprintf(stderr, "tkskey: --label must be 1 to %d characters\n", KT_MAX_LABEL);
        return KT_EUSAGE;
    }
    if (!get_pin(&o, pin, sizeof(pin)))
        return KT_ELOGIN;
    rc = kt_p11_open(&p, o.module, o.token, pin);
    cmn_wipe(pin, sizeof(pin));
    if (rc == KT_OK)
        rc = run(&p, cmd, &o);
    if (rc != KT_OK && p.err[0])
        fprintf(stderr, "tkskey: %s\n", p.err);
    kt_p11_close(&p);
    return rc;
}
