/* tests/chaos/chaos_card.c - reads vtoken state files for the chaos audit: per card its life
 * cycle and, from the z0 object, every certificate with the SHA-256 of its DER and of its SPKI. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/p11obj.h"

/* Output, one line per certificate (or one "-" line for a card without z0):
 *   CUID LIFECYCLE cN DER_SHA256 SPKI_SHA256
 *   CUID LIFECYCLE - - -
 * Exit 0 when every file was read, 1 otherwise (the bad file is named on stderr). */

#define LINE_MAX_BYTES (256 * 1024) /* a state-file line: z0 is at most ~40 KB of hex */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes hex [in] s into [out] out (cap bytes); returns the length or -1. */
static long
unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s), i;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

static void
sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        snprintf(out, 65, "error");
        return;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Prints one line per certificate of the z0 object [in] z (n bytes). */
static int
print_z0(const char *cuid, const char *lc, const uint8_t *z, size_t n)
{
    struct cmn_p11obj o;
    enum cmn_rc rc;
    int found = 0;

    rc = cmn_p11obj_parse(&o, z, n, 0);
    if (rc != CMN_OK) {
        cmn_p11obj_cleanup(&o);
        printf("%s %s z0-unreadable:%s - -\n", cuid, lc, cmn_strerror(rc));
        return 0;
    }
    for (size_t i = 0; i < o.nrecs; i++) {
        const struct cmn_p11obj_rec *r = &o.recs[i];
        const struct cmn_p11obj_attr *v;
        const unsigned char *p;
        X509 *x;
        char dh[65], kh[65];

        if ((r->id >> 24) != 'c')
            continue;
        v = cmn_p11obj_attr(r, CMN_P11_CKA_VALUE);
        if (v == NULL || v->val == NULL) {
            printf("%s %s c%c no-value -\n", cuid, lc, (char)(r->id >> 16));
            found++;
            continue;
        }
        sha256_hex(v->val, v->len, dh);
        p = v->val;
        x = d2i_X509(NULL, &p, (long)v->len);
        snprintf(kh, sizeof(kh), "bad-der");
        if (x != NULL) {
            unsigned char *spki = NULL;
            int sl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);

            if (sl > 0)
                sha256_hex(spki, (size_t)sl, kh);
            OPENSSL_free(spki);
            X509_free(x);
        }
        printf("%s %s c%c %s %s\n", cuid, lc, (char)(r->id >> 16), dh, kh);
        found++;
    }
    cmn_p11obj_cleanup(&o);
    if (found == 0)
        printf("%s %s - - -\n", cuid, lc);
    return 0;
}

/* Reads one state file; 0 on success. */
static int
read_card(const char *path, char *line, uint8_t *z)
{
    FILE *f = fopen(path, "r");
    char cuid[32] = "?", lc[8] = "--";
    long zlen = -1;
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "chaos-card: %s: cannot open\n", path);
        return 1;
    }
    while (fgets(line, LINE_MAX_BYTES, f) != NULL) {
        if (strncmp(line, "cuid ", 5) == 0) {
            snprintf(cuid, sizeof(cuid), "%.20s", line + 5);
        } else if (strncmp(line, "applet ", 7) == 0) {
            /* applet AID VERSION LIFECYCLE MEMORY */
            char aid[40], ver[40], l[8];

            if (sscanf(line + 7, "%39s %39s %7s", aid, ver, l) == 3)
                snprintf(lc, sizeof(lc), "%s", l);
        } else if (strncmp(line, "object 7A300000 ", 16) == 0) {
            /* object ID ACL ACL ACL SIZE HEX */
            const char *h = line;

            for (int k = 0; k < 6 && h != NULL; k++) {
                h = strchr(h, ' ');
                if (h != NULL)
                    h++;
            }
            zlen = h != NULL ? unhex(h, z, LINE_MAX_BYTES / 2) : -1;
            if (zlen < 0) {
                fprintf(stderr, "chaos-card: %s: z0 line is not hex\n", path);
                rc = 1;
            }
        }
    }
    fclose(f);
    if (rc != 0)
        return rc;
    if (zlen <= 0)
        printf("%s %s - - -\n", cuid, lc);
    else
        print_z0(cuid, lc, z, (size_t)zlen);
    return 0;
}

int
main(int argc, char **argv)
{
    char *line = malloc(LINE_MAX_BYTES);
    uint8_t *z = malloc(LINE_MAX_BYTES / 2);
    int bad = 0;

    if (line == NULL || z == NULL || argc < 2) {
        fprintf(stderr, "usage: chaos-card STATE_FILE...\n");
        free(line);
        free(z);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        bad |= read_card(argv[i], line, z);
    free(line);
    free(z);
    return bad;
}
