/* gateway/ca.c - CA client over libfailover (backends §4, §6, §9 ): form bodies,
 * strict XML/form answers, enrollment reconciled by a public-key lookup on an unknown outcome,
 * revoke/unrevoke reconciled with getcert, and the conn.ca<n>.* key table. */
#include "gateway/ca.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <libfailover/failover.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/pct.h"
#include "gateway/backend.h"
#include "gateway/xmlmini.h"

#define CA_BODY_MAX (64 * 1024)    /* request bodies we build */
#define CA_ANSWER_MAX (512 * 1024) /* answers we accept (libfailover body cap) */
#define CA_CERT_MAX (32 * 1024)    /* one DER certificate / PKCS#7 chain */
#define CA_TEXT_MAX (48 * 1024)    /* one decoded XML text (base64 of a chain) */
#define CA_PATH_MAX 256

#define U(n, lo, hi, d, doc_)                                                                    \
    {.name = n, .type = CFG_UINT, .min = lo, .max = hi, .def = d, .doc = doc_}
#define B(n, d, doc_) {.name = n, .type = CFG_BOOL, .def = d, .doc = doc_}
#define S(n, d, doc_) {.name = n, .type = CFG_STR, .defstr = d, .doc = doc_}
#define P(n, d, doc_) {.name = n, .type = CFG_PATH, .defstr = d, .doc = doc_}
#define SF(n, doc_) {.name = n, .type = CFG_SECRET_FILE, .doc = doc_}
#define H(n, doc_) {.name = n, .type = CFG_HOSTLIST, .doc = doc_}

const struct cmn_cfg_key tps_ca_cfg_keys[] = {
    H("conn.ca*.hostport", "CA clones, in order, host:port separated by blanks (Dogtag)"),
    S("conn.ca*.clientNickname", "", "client certificate label (Dogtag; label only)"),
    B("conn.ca*.SSLOn", 1, "HTTPS to the CA (Dogtag); false only for tests"),
    B("conn.ca*.keepAlive", 1, "accepted for compatibility (Dogtag); connections per §9 R-6"),
    U("conn.ca*.retryConnect", 0, 32, 0, "clones tried per call; 0 = all (Dogtag)"),
    U("conn.ca*.timeout", 1, 600, 60, "deadline of an enrollment or renewal over all clones, s "
                                      "(Dogtag name; §9 R-7 default)"),
    U("conn.ca*.callTimeout", 1, 600, 30, "deadline of getcert, revoke, unrevoke, lookup, s"),
    U("conn.ca*.connectTimeout", 100, 600000, 5000, "TCP+TLS connect timeout per clone, ms"),
    U("conn.ca*.reconcileDelay", 0, 600000, 2000,
      "ms to wait after an unknown enrollment outcome before looking the certificate up"),
    P("conn.ca*.clientCertFile", NULL, "client (subsystem) certificate PEM for the CA (ours)"),
    SF("conn.ca*.clientKeyFile", "its private key PEM, mode 0600 (ours)"),
    P("conn.ca*.caBundle", NULL, "CA bundle to verify the CA clones (ours)"),
    S("conn.ca*.servlet.enrollment", "/ca/ee/ca/profileSubmitSSLClient", "(Dogtag)"),
    S("conn.ca*.servlet.renewal", "/ca/ee/ca/profileSubmitSSLClient", "(Dogtag)"),
    S("conn.ca*.servlet.revoke", "/ca/ee/subsystem/ca/doRevoke", "(Dogtag)"),
    S("conn.ca*.servlet.unrevoke", "/ca/ee/subsystem/ca/doUnrevoke", "(Dogtag)"),
    S("conn.ca*.servlet.getcert", "/ca/ee/ca/displayBySerial", "(Java uri.getcert)"),
    S("conn.ca*.servlet.findByKey", "",
      "lookup of a certificate by public key (ours, docs/backends.md); empty = none"),
    S("op.enroll.*.keyGen.*.ca.conn", "ca1", "CA connector of a key type (Dogtag)"),
    S("op.enroll.*.keyGen.*.ca.profileId", "", "CA profile of a key type (Dogtag)"),
    S("op.enroll.*.renewal.*.ca.conn", "ca1", "CA connector of a renewal (Dogtag)"),
    S("op.enroll.*.renewal.*.ca.profileId", "", "CA renewal profile of a key type (Dogtag)"),
    B("op.enroll.*.keyGen.*.recovery.destroyed.revokeCert", 1,
      "revoke when the token becomes DAMAGED (Dogtag)"),
    U("op.enroll.*.keyGen.*.recovery.destroyed.revokeCert.reason", 0, 6, 0,
      "reason code for DAMAGED (Dogtag; shipped 0 unspecified)"),
    B("op.enroll.*.keyGen.*.recovery.keyCompromise.revokeCert", 1,
      "revoke when the token is permanently lost (Dogtag)"),
    U("op.enroll.*.keyGen.*.recovery.keyCompromise.revokeCert.reason", 0, 6, 1,
      "reason code for PERM_LOST (Dogtag; shipped 1 keyCompromise)"),
    B("op.enroll.*.keyGen.*.recovery.onHold.revokeCert", 1,
      "put on hold when the token is SUSPENDED (Dogtag)"),
    U("op.enroll.*.keyGen.*.recovery.onHold.revokeCert.reason", 0, 6, 6,
      "reason code for SUSPENDED (Dogtag; shipped 6 certificateHold)"),
    B("op.enroll.*.keyGen.*.recovery.terminated.revokeCert", 1,
      "revoke when the token is TERMINATED (Dogtag)"),
    U("op.enroll.*.keyGen.*.recovery.terminated.revokeCert.reason", 0, 6, 1,
      "reason code for TERMINATED (Dogtag; shipped 1 keyCompromise)"),
    {0},
};

#undef U
#undef B
#undef S
#undef P
#undef SF
#undef H

struct tps_ca {
    char id[32];
    char p_enroll[CA_PATH_MAX], p_renew[CA_PATH_MAX], p_revoke[CA_PATH_MAX];
    char p_unrevoke[CA_PATH_MAX], p_getcert[CA_PATH_MAX], p_find[CA_PATH_MAX];
    unsigned enroll_ms, call_ms, reconcile_delay_ms;
    struct fo_list *all;                   /* every clone, configured order */
    struct fo_list *one[FO_MAX_ENDPOINTS]; /* each clone alone: reconciliation asks one */
    size_t n;
};

const struct fo_list *
tps_ca_list(const struct tps_ca *ca)
{
    return ca->all;
}

/* ---- small helpers -------------------------------------------------------------------- */

const char *
tps_ca_reason_name(int reason)
{
    static const char *const names[] = {"unspecified",        "keyCompromise", "CACompromise",
                                        "affiliationChanged", "superseded",
                                        "cessationOfOperation", "certificateHold"};

    if (reason < 0 || reason > 6)
        return "unknown";
    return names[reason];
}

const char *
tps_ca_outcome_name(enum tps_ca_outcome o)
{
    switch (o) {
    case TPS_CA_DONE: return "done";
    case TPS_CA_REJECTED: return "rejected";
    case TPS_CA_PENDING: return "pending";
    case TPS_CA_NOT_DONE: return "not done";
    case TPS_CA_UNKNOWN: return "outcome unknown";
    case TPS_CA_AUTH: return "not authorised";
    }
    return "unknown";
}

void
tps_ca_sanitize(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    if (cap == 0)
        return;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    out[o] = '\0';
}

bool
tps_ca_form_field(const char *body, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name), i = 0;

    while (i < len) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j - i >= nl + 1 && memcmp(body + i, name, nl) == 0 && body[i + nl] == '=') {
            *v = body + i + nl + 1;
            *vlen = j - i - nl - 1;
            return true;
        }
        i = j + 1;
    }
    return false;
}

static int
b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

enum tps_rc
tps_ca_b64_decode(const char *s, size_t n, struct cmn_buf *out)
{
    uint32_t acc = 0;
    unsigned bits = 0, pad = 0;
    size_t start = out->len;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v;

        if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64val(c);
        if (v < 0 || pad > 0)
            goto bad; /* bad character, or data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (cmn_buf_putc(out, (uint8_t)(acc >> bits)) != CMN_OK) {
                out->len = start;
                return TPS_ETOOBIG;
            }
        }
    }
    /* Leftover bits must be zero and fewer than a byte; at most two '='. */
    if (pad > 2 || bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
        goto bad;
    return TPS_OK;
bad:
    out->len = start;
    return TPS_EPROTO;
}

enum tps_rc
tps_ca_b64_append(struct cmn_buf *out, const uint8_t *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        char q[4];
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        q[0] = tab[v >> 18 & 63];
        q[1] = tab[v >> 12 & 63];
        q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        if (cmn_buf_append(out, q, 4) != CMN_OK)
            return TPS_ETOOBIG;
    }
    return TPS_OK;
}

/* Normalises a hex serial ("0x1F", "001f") to lower case without prefix or leading zeros.
 * false when it is not 1..64 hex digits. */
static bool
serial_norm(const char *in, size_t n, char out[TPS_CA_SERIAL_MAX])
{
    size_t o = 0;

    if (n >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
        in += 2;
        n -= 2;
    }
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        if (o == 0 && c == '0' && i + 1 < n)
            continue;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

/* Hex serial -> decimal text (backends §4.2: the full decimal, never a 32-bit cast). */
static bool
serial_dec(const char *hex, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    char *d = NULL;
    bool ok = false;

    if (BN_hex2bn(&bn, hex) == 0)
        goto out;
    d = BN_bn2dec(bn);
    if (d == NULL || strlen(d) >= cap)
        goto out;
    memcpy(out, d, strlen(d) + 1);
    ok = true;
out:
    OPENSSL_free(d);
    BN_free(bn);
    return ok;
}

static void
cert_serial_hex(const X509 *x, char out[TPS_CA_SERIAL_MAX])
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *h = bn != NULL ? BN_bn2hex(bn) : NULL;

    out[0] = '\0';
    if (h != NULL && !serial_norm(h, strlen(h), out))
        out[0] = '\0';
    OPENSSL_free(h);
    BN_free(bn);
}

/* DER of the certificate's SubjectPublicKeyInfo; caller frees with OPENSSL_free. */
static int
cert_spki(X509 *x, uint8_t **der)
{
    *der = NULL;
    return i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), der);
}

static void
sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned mdl = 0;

    out[0] = '\0';
    if (EVP_Digest(p, n, md, &mdl, EVP_sha256(), NULL) != 1 || mdl != 32)
        return;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Re-encodes a SubjectPublicKeyInfo; false when it is not exactly one valid SPKI. */
static bool
spki_canon(const uint8_t *in, size_t n, uint8_t **der, int *der_len)
{
    const uint8_t *p = in;
    X509_PUBKEY *pk = d2i_X509_PUBKEY(NULL, &p, (long)n);
    bool ok = pk != NULL && p == in + n && X509_PUBKEY_get0(pk) != NULL;

    *der = NULL;
    *der_len = 0;
    if (ok) {
        *der_len = i2d_X509_PUBKEY(pk, der);
        ok = *der_len > 0;
    }
    X509_PUBKEY_free(pk);
    return ok;
}

void
tps_ca_result_init(struct tps_ca_result *r)
{
    memset(r, 0, sizeof(*r));
    r->outcome = TPS_CA_NOT_DONE;
    r->app_status = -1;
    r->revocation_reason = -1;
}

void
tps_ca_result_cleanup(struct tps_ca_result *r)
{
    if (r == NULL)
        return;
    free(r->cert);
    r->cert = NULL;
    r->cert_len = 0;
}

static void
set_msg(struct tps_ca_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_msg(struct tps_ca_result *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

/* Keeps the certificate x in r (DER, serial, subject). */
static enum tps_rc
keep_cert(struct tps_ca_result *r, X509 *x)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    X509_NAME *nm = X509_get_subject_name(x);

    if (n <= 0)
        return TPS_EPROTO;
    free(r->cert);
    r->cert = malloc((size_t)n);
    if (r->cert == NULL) {
        OPENSSL_free(der);
        return TPS_ENOMEM;
    }
    memcpy(r->cert, der, (size_t)n);
    r->cert_len = (size_t)n;
    OPENSSL_free(der);
    cert_serial_hex(x, r->serial);
    r->subject[0] = '\0';
    if (nm != NULL) {
        char tmp[sizeof(r->subject)];
        BIO *b = BIO_new(BIO_s_mem());
        if (b != NULL && X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
            int k = BIO_read(b, tmp, (int)sizeof(tmp) - 1);
            if (k > 0)
                tps_ca_sanitize(tmp, (size_t)k, r->subject, sizeof(r->subject));
        }
        BIO_free(b);
    }
    return TPS_OK;
}

/* Decodes the base64 text of leaf idx into a certificate: an X.509 certificate, or a PKCS#7
 * chain from which the one with serial `want` (NULL: the only/first leaf) is taken. */
static enum tps_rc
text_cert(const struct tps_xml *x, int idx, const char *want, X509 **out)
{
    char *txt = malloc(CA_TEXT_MAX);
    struct cmn_buf der;
    const uint8_t *p;
    enum tps_rc rc;
    size_t tl = 0;

    *out = NULL;
    cmn_buf_init(&der, CA_CERT_MAX);
    if (txt == NULL)
        return TPS_ENOMEM;
    rc = tps_xml_text(x, idx, txt, CA_TEXT_MAX, &tl);
    if (rc != TPS_OK)
        goto out;
    rc = tps_ca_b64_decode(txt, tl, &der);
    if (rc != TPS_OK || der.len == 0) {
        rc = TPS_EPROTO;
        goto out;
    }
    p = der.data;
    *out = d2i_X509(NULL, &p, (long)der.len);
    if (*out != NULL && p != der.data + der.len) {
        X509_free(*out);
        *out = NULL;
    }
    if (*out == NULL) {
        PKCS7 *p7;
        STACK_OF(X509) *certs = NULL;

        p = der.data;
        p7 = d2i_PKCS7(NULL, &p, (long)der.len);
        if (p7 != NULL && p == der.data + der.len && PKCS7_type_is_signed(p7) &&
            p7->d.sign != NULL)
            certs = p7->d.sign->cert;
        for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
            X509 *c = sk_X509_value(certs, i);
            char s[TPS_CA_SERIAL_MAX];
            cert_serial_hex(c, s);
            if (want == NULL ? sk_X509_num(certs) == 1 : strcmp(s, want) == 0) {
                *out = X509_dup(c);
                break;
            }
        }
        PKCS7_free(p7);
    }
    rc = *out != NULL ? TPS_OK : TPS_EPROTO;
out:
    free(txt);
    cmn_buf_cleanup(&der);
    return rc;
}

static enum tps_rc
leaf_text(const struct tps_xml *x, int parent, const char *name, char *out, size_t cap)
{
    int i = tps_xml_child(x, parent, name, -1);

    if (i < 0)
        return TPS_ENOTFOUND;
    if (tps_xml_child(x, parent, name, i) >= 0)
        return TPS_EPROTO; /* a field given twice is ambiguous */
    return tps_xml_text(x, i, out, cap, NULL);
}

static bool
parse_long(const char *s, long lo, long hi, long *v)
{
    unsigned long long u;

    if (cmn_parse_uint(s, (unsigned long long)lo, (unsigned long long)hi, &u) != CMN_OK)
        return false;
    *v = (long)u;
    return true;
}

/* ---- response parsers ----------------------------------------------------------------- */

/* One <Request>: Id, serialno, b64 (SubjectDN optional). [out] *x509 and *serial. */
static enum tps_rc
parse_request(const struct tps_xml *x, int req, X509 **cert, char serial[TPS_CA_SERIAL_MAX],
              char *reqid, size_t reqid_cap, char *why, size_t why_cap)
{
    char tmp[TPS_CA_SERIAL_MAX + 8];
    char cs[TPS_CA_SERIAL_MAX];
    int b64;
    enum tps_rc rc;

    *cert = NULL;
    rc = leaf_text(x, req, "Id", reqid, reqid_cap);
    if (rc != TPS_OK) {
        snprintf(why, why_cap, "Request without a single Id");
        return rc == TPS_ETOOBIG ? TPS_EPROTO : rc == TPS_ENOMEM ? rc : TPS_EPROTO;
    }
    rc = leaf_text(x, req, "serialno", tmp, sizeof(tmp));
    if (rc != TPS_OK || !serial_norm(tmp, strlen(tmp), serial)) {
        snprintf(why, why_cap, "Request without a valid serialno");
        return TPS_EPROTO;
    }
    b64 = tps_xml_child(x, req, "b64", -1);
    if (b64 < 0 || tps_xml_child(x, req, "b64", b64) >= 0) {
        snprintf(why, why_cap, "Request without a single b64 certificate");
        return TPS_EPROTO;
    }
    rc = text_cert(x, b64, serial, cert);
    if (rc != TPS_OK) {
        snprintf(why, why_cap, "b64 is not a certificate");
        return rc;
    }
    cert_serial_hex(*cert, cs);
    if (strcmp(cs, serial) != 0) {
        snprintf(why, why_cap, "serialno %s differs from the certificate's serial %s", serial,
                 cs);
        X509_free(*cert);
        *cert = NULL;
        return TPS_EPROTO;
    }
    return TPS_OK;
}

enum tps_rc
tps_ca_parse_enroll(const char *body, size_t len, bool allow_many, const char *exclude_serial,
                    unsigned *matches, struct tps_ca_result *out)
{
    struct tps_xml *x = malloc(sizeof(*x));
    char st[24], err[512], excl[TPS_CA_SERIAL_MAX] = "";
    int root, reqs;
    unsigned found = 0;
    X509 *keep = NULL;
    enum tps_rc rc;

    if (matches != NULL)
        *matches = 0;
    if (x == NULL)
        return TPS_ENOMEM;
    if (exclude_serial != NULL && !serial_norm(exclude_serial, strlen(exclude_serial), excl))
        excl[0] = '\0';
    rc = tps_xml_parse(x, body, len);
    if (rc != TPS_OK) {
        set_msg(out, "answer is not well-formed XML (%s)", x->err);
        rc = TPS_EPROTO;
        goto out;
    }
    root = tps_xml_path(x, "XMLResponse");
    rc = TPS_EPROTO;
    if (root < 0) {
        set_msg(out, "answer is not an XMLResponse");
        goto out;
    }
    if (leaf_text(x, root, "Status", st, sizeof(st)) != TPS_OK ||
        !parse_long(st, 0, 1000000, &out->app_status)) {
        set_msg(out, "XMLResponse without a valid Status");
        goto out;
    }
    if (out->app_status != 0) {
        int e = tps_xml_child(x, root, "Error", -1);
        char rid[32];
        err[0] = '\0';
        if (e >= 0 && tps_xml_text(x, e, err, sizeof(err), NULL) != TPS_OK)
            err[0] = '\0';
        tps_ca_sanitize(err, strlen(err), out->msg, sizeof(out->msg));
        if (leaf_text(x, root, "RequestId", rid, sizeof(rid)) == TPS_OK)
            tps_ca_sanitize(rid, strlen(rid), out->request_id, sizeof(out->request_id));
        rc = TPS_OK;
        goto out;
    }
    reqs = tps_xml_child(x, root, "Requests", -1);
    if (reqs < 0 || tps_xml_child(x, root, "Requests", reqs) >= 0) {
        set_msg(out, "Status 0 without a single Requests element");
        goto out;
    }
    for (int r = tps_xml_child(x, reqs, "Request", -1); r >= 0;
         r = tps_xml_child(x, reqs, "Request", r)) {
        X509 *c = NULL;
        char serial[TPS_CA_SERIAL_MAX], rid[32], why[200];

        rc = parse_request(x, r, &c, serial, rid, sizeof(rid), why, sizeof(why));
        if (rc != TPS_OK) {
            set_msg(out, "%s", why);
            goto out;
        }
        if (excl[0] != '\0' && strcmp(serial, excl) == 0) {
            X509_free(c);
            continue;
        }
        found++;
        if (keep == NULL) {
            keep = c;
            tps_ca_sanitize(rid, strlen(rid), out->request_id, sizeof(out->request_id));
        } else {
            X509_free(c);
        }
    }
    rc = TPS_EPROTO;
    if (!allow_many && found != 1) {
        set_msg(out, "Status 0 with %u certificates (one expected)", found);
        goto out;
    }
    if (matches != NULL)
        *matches = found;
    rc = keep != NULL ? keep_cert(out, keep) : TPS_OK;
out:
    X509_free(keep);
    free(x);
    return rc;
}

enum tps_rc
tps_ca_parse_getcert(const char *body, size_t len, struct tps_ca_result *out)
{
    struct tps_xml *x = malloc(sizeof(*x));
    char tmp[TPS_CA_SERIAL_MAX + 8], serial[TPS_CA_SERIAL_MAX];
    int hdr, chain;
    X509 *c = NULL;
    enum tps_rc rc = TPS_EPROTO;

    if (x == NULL)
        return TPS_ENOMEM;
    if (tps_xml_parse(x, body, len) != TPS_OK) {
        set_msg(out, "answer is not well-formed XML (%s)", x->err);
        goto out;
    }
    hdr = tps_xml_path(x, "xml/header");
    if (tps_xml_path(x, "xml") < 0) {
        set_msg(out, "answer is not an <xml> document");
        goto out;
    }
    chain = hdr < 0 ? -1 : tps_xml_child(x, hdr, "certChainBase64", -1);
    if (chain < 0) {
        set_msg(out, "no certChainBase64: no such certificate");
        rc = TPS_ENOTFOUND;
        goto out;
    }
    if (tps_xml_child(x, hdr, "certChainBase64", chain) >= 0) {
        set_msg(out, "certChainBase64 given twice");
        goto out;
    }
    serial[0] = '\0';
    if (leaf_text(x, hdr, "serialNumber", tmp, sizeof(tmp)) == TPS_OK &&
        !serial_norm(tmp, strlen(tmp), serial)) {
        set_msg(out, "bad serialNumber");
        goto out;
    }
    if (text_cert(x, chain, serial[0] != '\0' ? serial : NULL, &c) != TPS_OK) {
        set_msg(out, "certChainBase64 holds no usable certificate");
        goto out;
    }
    out->revocation_reason = -1;
    {
        char rr[16];
        long v;
        enum tps_rc r2 = leaf_text(x, hdr, "revocationReason", rr, sizeof(rr));
        if (r2 == TPS_OK) {
            if (!parse_long(rr, 0, 10, &v)) {
                set_msg(out, "bad revocationReason");
                goto out;
            }
            out->revocation_reason = (int)v;
        } else if (r2 != TPS_ENOTFOUND) {
            set_msg(out, "bad revocationReason");
            goto out;
        }
    }
    rc = keep_cert(out, c);
    if (rc == TPS_OK && serial[0] != '\0' && strcmp(serial, out->serial) != 0) {
        set_msg(out, "serialNumber %s differs from the certificate's serial %s", serial,
                out->serial);
        rc = TPS_EPROTO;
    }
out:
    X509_free(c);
    free(x);
    return rc;
}

enum tps_rc
tps_ca_parse_status(const char *body, size_t len, long *status, bool *unauthorized,
                    char *errtext, size_t cap)
{
    const char *v;
    size_t vl;
    char tmp[24], dec[512];
    size_t dl = 0;

    *unauthorized = false;
    if (errtext != NULL && cap > 0)
        errtext[0] = '\0';
    if (!tps_ca_form_field(body, len, "status", &v, &vl) || vl == 0 || vl >= sizeof(tmp))
        return TPS_EPROTO;
    memcpy(tmp, v, vl);
    tmp[vl] = '\0';
    if (!parse_long(tmp, 0, 1000000, status))
        return TPS_EPROTO;
    if (tps_ca_form_field(body, len, "error", &v, &vl) ||
        tps_ca_form_field(body, len, "errorString", &v, &vl)) {
        if (cmn_pct_decode_mem(v, vl, CMN_PCT_LENIENT, (uint8_t *)dec, sizeof(dec) - 1, &dl) !=
            CMN_OK)
            dl = 0;
        dec[dl] = '\0';
        if (strcmp(dec, "unauthorized") == 0)
            *unauthorized = true;
        if (errtext != NULL)
            tps_ca_sanitize(dec, dl, errtext, cap);
    }
    return TPS_OK;
}

/* ---- libfailover checks ---------------------------------------------------------------- */

static enum fo_verdict
check_enroll(void *arg, long http, const uint8_t *body, size_t len)
{
    struct tps_ca_result r;
    enum tps_rc rc;
    enum fo_verdict v;

    (void)arg;
    if (http != 200)
        return FO_VERDICT_BAD;
    tps_ca_result_init(&r);
    rc = tps_ca_parse_enroll((const char *)body, len, false, NULL, NULL, &r);
    if (rc != TPS_OK)
        v = FO_VERDICT_BAD;
    else
        v = r.app_status == 0 ? FO_VERDICT_ACCEPT : FO_VERDICT_REJECT;
    tps_ca_result_cleanup(&r);
    return v;
}

static enum fo_verdict
check_find(void *arg, long http, const uint8_t *body, size_t len)
{
    struct tps_ca_result r;
    enum fo_verdict v;
    unsigned m;

    (void)arg;
    if (http != 200)
        return FO_VERDICT_BAD;
    tps_ca_result_init(&r);
    if (tps_ca_parse_enroll((const char *)body, len, true, NULL, &m, &r) != TPS_OK)
        v = FO_VERDICT_BAD;
    else
        v = r.app_status == 0 ? FO_VERDICT_ACCEPT : FO_VERDICT_REJECT;
    tps_ca_result_cleanup(&r);
    return v;
}

static enum fo_verdict
check_getcert(void *arg, long http, const uint8_t *body, size_t len)
{
    struct tps_ca_result r;
    enum tps_rc rc;

    (void)arg;
    if (http != 200)
        return FO_VERDICT_BAD;
    tps_ca_result_init(&r);
    rc = tps_ca_parse_getcert((const char *)body, len, &r);
    tps_ca_result_cleanup(&r);
    if (rc == TPS_OK)
        return FO_VERDICT_ACCEPT;
    return rc == TPS_ENOTFOUND ? FO_VERDICT_REJECT : FO_VERDICT_BAD;
}

static enum fo_verdict
check_status(void *arg, long http, const uint8_t *body, size_t len)
{
    long st;
    bool unauth;

    (void)arg;
    if (http != 200)
        return FO_VERDICT_BAD;
    if (tps_ca_parse_status((const char *)body, len, &st, &unauth, NULL, 0) != TPS_OK)
        return FO_VERDICT_BAD;
    if (unauth)
        return FO_VERDICT_AUTH;
    return st == 0 ? FO_VERDICT_ACCEPT : FO_VERDICT_REJECT;
}

/* ---- connector -------------------------------------------------------------------------- */

static bool
copy_path(char *dst, const char *v, bool may_be_empty)
{
    if (v == NULL)
        v = "";
    if (strlen(v) >= CA_PATH_MAX || (v[0] != '/' && !(may_be_empty && v[0] == '\0')))
        return false;
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

enum tps_rc
tps_ca_new(const struct cmn_cfg *cfg, const char *id, struct tps_ca **out, char *err,
           size_t errlen)
{
    static const struct {
        const char *leaf;
        size_t off;
        bool opt;
    } paths[] = {
        {"servlet.enrollment", offsetof(struct tps_ca, p_enroll), false},
        {"servlet.renewal", offsetof(struct tps_ca, p_renew), false},
        {"servlet.revoke", offsetof(struct tps_ca, p_revoke), false},
        {"servlet.unrevoke", offsetof(struct tps_ca, p_unrevoke), false},
        {"servlet.getcert", offsetof(struct tps_ca, p_getcert), false},
        {"servlet.findByKey", offsetof(struct tps_ca, p_find), true},
    };
    struct tps_ca *ca;
    struct fo_opts o;
    char k[CMN_CFG_MAX_KEY], fe[FO_ERRMSG_MAX], where[300];
    const char *hp;
    enum tps_rc rc = TPS_ECONFIG;

    *out = NULL;
    if (strlen(id) == 0 || strlen(id) >= sizeof(ca->id) || strchr(id, '.') != NULL) {
        snprintf(err, errlen, "CA connector id '%s' is not valid", id);
        return TPS_EINVAL;
    }
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL)
        return TPS_ENOMEM;
    memcpy(ca->id, id, strlen(id) + 1);
#define K(leaf) (snprintf(k, sizeof(k), "conn.%s.%s", id, leaf), k)
    hp = cmn_cfg_str(cfg, K("hostport"));
    if (hp == NULL || hp[0] == '\0') {
        snprintf(err, errlen, "%s: missing required key 'conn.%s.hostport'", cmn_cfg_name(cfg),
                 id);
        goto out;
    }
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (!copy_path((char *)ca + paths[i].off, cmn_cfg_str(cfg, K(paths[i].leaf)),
                       paths[i].opt)) {
            snprintf(err, errlen, "%s: key '%s': a servlet path starts with '/' and is shorter "
                     "than %d bytes", cmn_cfg_where(cfg, k, where, sizeof(where)), k, CA_PATH_MAX);
            goto out;
        }
    }
    ca->enroll_ms = (unsigned)cmn_cfg_uint(cfg, K("timeout")) * 1000u;
    ca->call_ms = (unsigned)cmn_cfg_uint(cfg, K("callTimeout")) * 1000u;
    ca->reconcile_delay_ms = (unsigned)cmn_cfg_uint(cfg, K("reconcileDelay"));
    tps_backend_fo_opts(cfg, id, "ca.failover", ca->call_ms, CA_ANSWER_MAX, &o);
    o.name = ca->id;
    if (fo_list_new(hp, &o, &ca->all, fe, sizeof(fe)) != FO_OK) {
        snprintf(err, errlen, "%s: key 'conn.%s.hostport': %s",
                 cmn_cfg_where(cfg, K("hostport"), where, sizeof(where)), id, fe);
        goto out;
    }
    ca->n = fo_list_count(ca->all);
    o.max_attempts = 0;
    for (size_t i = 0; i < ca->n; i++) {
        if (fo_list_new(fo_list_endpoint(ca->all, i), &o, &ca->one[i], fe, sizeof(fe)) !=
            FO_OK) {
            snprintf(err, errlen, "conn.%s: clone %zu: %s", id, i + 1, fe);
            goto out;
        }
    }
#undef K
    rc = TPS_OK;
out:
    if (rc != TPS_OK)
        tps_ca_free(ca);
    else
        *out = ca;
    return rc;
}

void
tps_ca_free(struct tps_ca *ca)
{
    if (ca == NULL)
        return;
    for (size_t i = 0; i < ca->n; i++)
        fo_list_free(ca->one[i]);
    fo_list_free(ca->all);
    free(ca);
}

const char *
tps_ca_id(const struct tps_ca *ca)
{
    return ca->id;
}

/* ---- calls ------------------------------------------------------------------------------ */

static enum tps_rc
form_add(struct cmn_buf *b, const char *name, const char *value)
{
    if ((b->len > 0 && cmn_buf_putc(b, '&') != CMN_OK) || cmn_buf_puts(b, name) != CMN_OK ||
        cmn_buf_putc(b, '=') != CMN_OK || cmn_pct_encode_str(b, value) != CMN_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}

static void
name_clone(const struct tps_ca *ca, const struct fo_list *l, struct fo_req *req,
           struct tps_ca_result *out)
{
    const char *ep = fo_req_endpoint_name(req);

    (void)l;
    snprintf(out->clone, sizeof(out->clone), "%s %s", ca->id, ep != NULL ? ep : "(none)");
}

/* Performs one call and classifies the libfailover result into out->outcome (for calls whose
 * answer parsing the caller does). Returns the fo_rc. */
static enum fo_rc
perform(struct tps_ca *ca, struct fo_list *l, struct fo_req *req, const char *path,
        const struct cmn_buf *body, enum fo_idem idem, unsigned deadline_ms, const char *name,
        const char *sid, fo_check_fn *check)
{
    struct fo_call c = {
        .method = FO_POST,
        .path = path,
        .body = body->data,
        .body_len = body->len,
        .idem = idem,
        .deadline_ms = deadline_ms,
        .name = name,
        .req_id = sid,
        .check = check,
    };

    (void)ca;
    return fo_req_perform(req, l, &c);
}

/* A failure message for non-answers: "CA enrollment: <libfailover's explanation>". */
static void
msg_transport(struct tps_ca_result *out, const char *what, struct fo_req *req, enum fo_rc frc)
{
    const char *m = fo_req_errmsg(req);
    set_msg(out, "CA %s: %s", what, m[0] != '\0' ? m : fo_strerror(frc));
}

static int
clone_of(struct tps_ca *ca, struct fo_req *req)
{
    int e = fo_req_endpoint(req);
    return (e >= 0 && (size_t)e < ca->n) ? e : -1;
}

/* The lookup on one clone. Returns 1 found (out filled), 0 answered none, -1 could not ask. */
static int
find_on(struct tps_ca *ca, struct fo_req *req, const char *sid, size_t i, const char *spki_b64,
        const char *exclude, struct tps_ca_result *out, unsigned *matches)
{
    struct cmn_buf body;
    struct tps_ca_result r;
    enum fo_rc frc;
    int ret = -1;
    const uint8_t *ans;
    size_t alen;

    cmn_buf_init(&body, CA_BODY_MAX);
    tps_ca_result_init(&r);
    if (form_add(&body, "xml", "true") != TPS_OK || form_add(&body, "publickey", spki_b64) != TPS_OK)
        goto out;
    frc = perform(ca, ca->one[i], req, ca->p_find, &body, FO_IDEMPOTENT, ca->call_ms, "findByKey",
                  sid, check_find);
    if (frc != FO_OK)
        goto out;
    ans = fo_req_body(req, &alen);
    if (tps_ca_parse_enroll((const char *)ans, alen, true, exclude, matches, &r) != TPS_OK ||
        r.app_status != 0)
        goto out;
    if (*matches == 0) {
        ret = 0;
        goto out;
    }
    ret = 1;
    if (*matches == 1) {
        free(out->cert);
        out->cert = r.cert;
        out->cert_len = r.cert_len;
        r.cert = NULL;
        memcpy(out->serial, r.serial, sizeof(out->serial));
        memcpy(out->subject, r.subject, sizeof(out->subject));
        memcpy(out->request_id, r.request_id, sizeof(out->request_id));
        snprintf(out->clone, sizeof(out->clone), "%s %s", ca->id, fo_list_endpoint(ca->all, i));
    }
out:
    tps_ca_result_cleanup(&r);
    cmn_buf_cleanup(&body);
    return ret;
}

enum tps_rc
tps_ca_find_by_key(struct tps_ca *ca, struct fo_req *req, const char *sid, const uint8_t *spki,
                   size_t spki_len, const char *exclude_serial, int clone_index,
                   struct tps_ca_result *out)
{
    struct cmn_buf b64;
    uint8_t *canon = NULL;
    int canon_len = 0;
    char asked[300] = "";
    enum tps_rc rc = TPS_EBACKEND;
    bool first_none = false;

    cmn_buf_init(&b64, CA_BODY_MAX);
    out->outcome = TPS_CA_UNKNOWN;
    out->reconciled = true;
    if (spki == NULL || !spki_canon(spki, spki_len, &canon, &canon_len)) {
        out->outcome = TPS_CA_NOT_DONE;
        set_msg(out, "CA lookup: the public key is not a SubjectPublicKeyInfo");
        rc = TPS_EINVAL;
        goto out;
    }
    sha256_hex(canon, (size_t)canon_len, out->key_hash);
    if (ca->p_find[0] == '\0') {
        set_msg(out, "CA lookup: conn.%s.servlet.findByKey is not set: cannot look the "
                "certificate of key %s up", ca->id, out->key_hash);
        goto out;
    }
    if (tps_ca_b64_append(&b64, canon, (size_t)canon_len) != TPS_OK ||
        cmn_buf_cstr(&b64) == NULL) {
        rc = TPS_ETOOBIG;
        goto out;
    }
    for (size_t k = 0; k < ca->n; k++) {
        /* The clone that may have received the request first: only its "none" counts. */
        size_t i = clone_index >= 0 ? (k == 0 ? (size_t)clone_index
                                              : (k <= (size_t)clone_index ? k - 1 : k))
                                    : k;
        unsigned m = 0;
        int r = find_on(ca, req, sid, i, (const char *)b64.data, exclude_serial, out, &m);
        size_t al = strlen(asked);

        snprintf(asked + al, sizeof(asked) - al, "%s%s: %s", al ? "; " : "",
                 fo_list_endpoint(ca->all, i),
                 r < 0 ? "no answer" : r == 0 ? "none" : m == 1 ? "found" : "several");
        if (r == 1 && m == 1) {
            out->outcome = TPS_CA_DONE;
            out->msg[0] = '\0';
            rc = TPS_OK;
            goto out;
        }
        if (r == 1) {
            set_msg(out, "CA lookup: %u certificates carry key %s (%s); resolve by hand", m,
                    out->key_hash, asked);
            goto out;
        }
        if (r == 0 && k == 0 && clone_index >= 0) {
            /* The clone that may have received the request has no such certificate: it
             * would have written it to its own database first, so no replica can have it. */
            first_none = true;
            break;
        }
    }
    if (first_none) {
        out->outcome = TPS_CA_NOT_DONE;
        set_msg(out, "CA lookup: no certificate carries key %s (%s)", out->key_hash, asked);
    } else {
        set_msg(out, "CA lookup: could not establish whether a certificate carries key %s (%s)",
                out->key_hash, asked);
    }
out:
    OPENSSL_free(canon);
    cmn_buf_cleanup(&b64);
    return rc;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Shared tail of enrollment and renewal: body sent NON_IDEMPOTENT, answer parsed, the
 * certificate's key compared with spki, reconciliation on an unknown outcome. */
static enum tps_rc
submit(struct tps_ca *ca, struct fo_req *req, const char *what, const char *path,
       const struct cmn_buf *body, const uint8_t *spki, size_t spki_len, const char *exclude,
       const char *sid, struct tps_ca_result *out)
{
    enum fo_rc frc;
    const uint8_t *ans;
    size_t alen;
    enum tps_rc rc;
    int clone;

    frc = perform(ca, ca->all, req, path, body, FO_NON_IDEMPOTENT, ca->enroll_ms, what, sid,
                  check_enroll);
    name_clone(ca, ca->all, req, out);
    clone = clone_of(ca, req);
    switch (frc) {
    case FO_OK:
    case FO_EREJECTED: {
        long http = fo_req_status(req);
        ans = fo_req_body(req, &alen);
        if (http != 200) {
            out->outcome = TPS_CA_REJECTED;
            set_msg(out, "CA %s: clone %s answered HTTP %ld", what, out->clone, http);
            return TPS_EBACKEND;
        }
        rc = tps_ca_parse_enroll((const char *)ans, alen, false, NULL, NULL, out);
        if (rc == TPS_ENOMEM)
            return rc;
        if (rc != TPS_OK) {
            /* The check accepted it, so this cannot happen; be safe: unknown. */
            out->outcome = TPS_CA_UNKNOWN;
            return TPS_EBACKEND;
        }
        if (out->app_status != 0) {
            char text[TPS_CA_MSG_MAX];
            memcpy(text, out->msg, sizeof(text));
            out->outcome = out->app_status == 2 ? TPS_CA_PENDING : TPS_CA_REJECTED;
            set_msg(out, "CA %s: clone %s answered Status=%ld '%s'%s%s", what, out->clone,
                    out->app_status, text, out->request_id[0] ? " request " : "",
                    out->request_id);
            return TPS_EBACKEND;
        }
        break;
    }
    case FO_EAUTH:
        out->outcome = TPS_CA_AUTH;
        msg_transport(out, what, req, frc);
        return TPS_EBACKEND;
    case FO_EUNKNOWN:
    case FO_EPROTO: {
        char first[TPS_CA_MSG_MAX];
        msg_transport(out, what, req, frc);
        memcpy(first, out->msg, sizeof(first));
        CMN_LOG(CMN_LOG_WARN, "ca.reconcile", sid, "conn=%s call=%s clone=\"%s\" delay_ms=%u",
                ca->id, what, out->clone, ca->reconcile_delay_ms);
        if (ca->reconcile_delay_ms > 0)
            sleep_ms(ca->reconcile_delay_ms);
        rc = tps_ca_find_by_key(ca, req, sid, spki, spki_len, exclude, clone, out);
        if (rc == TPS_OK) {
            CMN_LOG(CMN_LOG_NOTICE, "ca.reconciled", sid, "conn=%s call=%s serial=%s clone=\"%s\"",
                    ca->id, what, out->serial, out->clone);
            return TPS_OK;
        }
        {
            char look[TPS_CA_MSG_MAX];
            memcpy(look, out->msg, sizeof(look));
            set_msg(out, "%.300s; %.400s", first, look);
        }
        return rc == TPS_EBACKEND ? TPS_EBACKEND : rc;
    }
    case FO_EUNAVAILABLE:
        out->outcome = TPS_CA_NOT_DONE;
        msg_transport(out, what, req, frc);
        return TPS_EBACKEND;
    default:
        out->outcome = TPS_CA_NOT_DONE;
        msg_transport(out, what, req, frc);
        return frc == FO_ENOMEM ? TPS_ENOMEM : TPS_EBACKEND;
    }
    /* Status 0: the certificate must carry the key we sent. */
    {
        const uint8_t *p = out->cert;
        X509 *x = d2i_X509(NULL, &p, (long)out->cert_len);
        uint8_t *got = NULL, *want = NULL;
        int gl = x != NULL ? cert_spki(x, &got) : -1, wl = 0;
        bool same = spki_canon(spki, spki_len, &want, &wl) && gl == wl && gl > 0 &&
                    memcmp(got, want, (size_t)gl) == 0;
        X509_free(x);
        OPENSSL_free(got);
        OPENSSL_free(want);
        if (!same) {
            /* Issued, but not for our key: record it so it can be revoked. */
            out->outcome = TPS_CA_REJECTED;
            set_msg(out, "CA %s: clone %s issued serial %s for another public key than the one "
                    "sent; revoke it", what, out->clone, out->serial);
            return TPS_EBACKEND;
        }
    }
    out->outcome = TPS_CA_DONE;
    out->msg[0] = '\0';
    CMN_LOG(CMN_LOG_INFO, "ca.issued", sid, "conn=%s call=%s serial=%s clone=\"%s\"", ca->id,
            what, out->serial, out->clone);
    return TPS_OK;
}

enum tps_rc
tps_ca_enroll(struct tps_ca *ca, struct fo_req *req, const struct tps_ca_enroll_req *in,
              struct tps_ca_result *out)
{
    struct cmn_buf body, b64;
    uint8_t *canon = NULL;
    int canon_len = 0;
    enum tps_rc rc = TPS_EINVAL;

    cmn_buf_init(&body, CA_BODY_MAX);
    cmn_buf_init(&b64, CA_BODY_MAX);
    out->outcome = TPS_CA_NOT_DONE;
    if (in->profile_id == NULL || in->profile_id[0] == '\0' || in->cuid == NULL ||
        in->cuid[0] == '\0' || in->user_id == NULL || in->user_id[0] == '\0') {
        set_msg(out, "CA enrollment: profile id, CUID and user id are required");
        goto out;
    }
    if (in->spki == NULL || !spki_canon(in->spki, in->spki_len, &canon, &canon_len)) {
        set_msg(out, "CA enrollment: the public key is not a DER SubjectPublicKeyInfo");
        goto out;
    }
    sha256_hex(canon, (size_t)canon_len, out->key_hash);
    rc = TPS_ETOOBIG;
    if (tps_ca_b64_append(&b64, canon, (size_t)canon_len) != TPS_OK || !cmn_buf_cstr(&b64))
        goto out;
    /* backends §4.1: xml=true selects the XML answer; every value form-encoded. */
    if (form_add(&body, "xml", "true") != TPS_OK ||
        form_add(&body, "profileId", in->profile_id) != TPS_OK ||
        form_add(&body, "tokencuid", in->cuid) != TPS_OK ||
        form_add(&body, "screenname", in->user_id) != TPS_OK ||
        form_add(&body, "publickey", (const char *)b64.data) != TPS_OK ||
        (in->token_type != NULL && form_add(&body, "tokentype", in->token_type) != TPS_OK) ||
        (in->subject != NULL && form_add(&body, "subject", in->subject) != TPS_OK))
        goto out;
    rc = submit(ca, req, "enrollment", ca->p_enroll, &body, canon, (size_t)canon_len, NULL,
                in->sid, out);
out:
    OPENSSL_free(canon);
    cmn_buf_cleanup(&b64);
    cmn_buf_cleanup(&body);
    return rc;
}

enum tps_rc
tps_ca_renew(struct tps_ca *ca, struct fo_req *req, const struct tps_ca_renew_req *in,
             struct tps_ca_result *out)
{
    struct cmn_buf body;
    const uint8_t *p = in->old_cert;
    X509 *old = NULL;
    uint8_t *spki = NULL;
    int spki_len = 0;
    char serial[TPS_CA_SERIAL_MAX], dec[100];
    enum tps_rc rc = TPS_EINVAL;

    cmn_buf_init(&body, CA_BODY_MAX);
    out->outcome = TPS_CA_NOT_DONE;
    if (in->profile_id == NULL || in->profile_id[0] == '\0' || p == NULL) {
        set_msg(out, "CA renewal: profile id and the certificate to renew are required");
        goto out;
    }
    old = d2i_X509(NULL, &p, (long)in->old_cert_len);
    if (old == NULL || p != in->old_cert + in->old_cert_len ||
        (spki_len = cert_spki(old, &spki)) <= 0) {
        set_msg(out, "CA renewal: the certificate to renew is not DER X.509");
        goto out;
    }
    cert_serial_hex(old, serial);
    if (serial[0] == '\0' || !serial_dec(serial, dec, sizeof(dec))) {
        set_msg(out, "CA renewal: the certificate to renew has no usable serial");
        goto out;
    }
    sha256_hex(spki, (size_t)spki_len, out->key_hash);
    rc = TPS_ETOOBIG;
    /* backends §4.2: the full decimal serial. */
    if (form_add(&body, "xml", "true") != TPS_OK || form_add(&body, "renewal", "true") != TPS_OK ||
        form_add(&body, "serial_num", dec) != TPS_OK ||
        form_add(&body, "profileId", in->profile_id) != TPS_OK)
        goto out;
    rc = submit(ca, req, "renewal", ca->p_renew, &body, spki, (size_t)spki_len, serial, in->sid,
                out);
    if (rc == TPS_OK && strcmp(out->serial, serial) == 0) {
        out->outcome = TPS_CA_REJECTED;
        set_msg(out, "CA renewal: clone %s returned the old certificate %s", out->clone, serial);
        rc = TPS_EBACKEND;
    }
out:
    OPENSSL_free(spki);
    X509_free(old);
    cmn_buf_cleanup(&body);
    return rc;
}

/* getcert without touching out->outcome semantics of the caller: fills cert and reason. */
static enum tps_rc
getcert(struct tps_ca *ca, struct fo_req *req, const char *sid, const char *hex,
        struct tps_ca_result *out)
{
    struct cmn_buf body;
    char dec[100];
    enum fo_rc frc;
    enum tps_rc rc = TPS_ETOOBIG;
    const uint8_t *ans;
    size_t alen;

    cmn_buf_init(&body, CA_BODY_MAX);
    if (!serial_dec(hex, dec, sizeof(dec))) {
        rc = TPS_EINVAL;
        goto out;
    }
    if (form_add(&body, "xml", "true") != TPS_OK ||
        form_add(&body, "b64CertOnly", "true") != TPS_OK ||
        form_add(&body, "serialNumber", dec) != TPS_OK)
        goto out;
    frc = perform(ca, ca->all, req, ca->p_getcert, &body, FO_IDEMPOTENT, ca->call_ms, "getcert",
                  sid, check_getcert);
    name_clone(ca, ca->all, req, out);
    rc = TPS_EBACKEND;
    if (frc == FO_OK) {
        ans = fo_req_body(req, &alen);
        rc = tps_ca_parse_getcert((const char *)ans, alen, out);
        if (rc == TPS_OK && strcmp(out->serial, hex) != 0) {
            set_msg(out, "CA getcert: clone %s answered serial %s for %s", out->clone,
                    out->serial, hex);
            rc = TPS_EPROTO;
        }
        out->outcome = rc == TPS_OK ? TPS_CA_DONE : TPS_CA_REJECTED;
        if (rc != TPS_OK && rc != TPS_ENOMEM)
            rc = TPS_EBACKEND;
    } else if (frc == FO_EREJECTED) {
        out->outcome = TPS_CA_REJECTED;
        set_msg(out, "CA getcert: clone %s has no certificate %s (HTTP %ld)", out->clone, hex,
                fo_req_status(req));
    } else {
        out->outcome = frc == FO_EAUTH ? TPS_CA_AUTH : TPS_CA_NOT_DONE;
        msg_transport(out, "getcert", req, frc);
        if (frc == FO_ENOMEM)
            rc = TPS_ENOMEM;
    }
out:
    cmn_buf_cleanup(&body);
    return rc;
}

enum tps_rc
tps_ca_getcert(struct tps_ca *ca, struct fo_req *req, const char *sid, const char *serial,
               struct tps_ca_result *out)
{
    char hex[TPS_CA_SERIAL_MAX];

    out->outcome = TPS_CA_NOT_DONE;
    if (serial == NULL || !serial_norm(serial, strlen(serial), hex)) {
        set_msg(out, "CA getcert: serial '%.80s' is not hexadecimal", serial ? serial : "");
        return TPS_EINVAL;
    }
    return getcert(ca, req, sid, hex, out);
}

/* Revoke (reason >= 0) or unrevoke (reason < 0), with reconciliation through getcert. */
static enum tps_rc
change_status(struct tps_ca *ca, struct fo_req *req, const char *sid, const char *serial,
              int reason, struct tps_ca_result *out)
{
    const char *what = reason >= 0 ? "revoke" : "unrevoke";
    struct cmn_buf body;
    char hex[TPS_CA_SERIAL_MAX], dec[100], text[256], first[TPS_CA_MSG_MAX];
    enum fo_rc frc;
    enum tps_rc rc = TPS_EINVAL;
    bool unauth = false, resent;
    const uint8_t *ans;
    size_t alen;

    cmn_buf_init(&body, CA_BODY_MAX);
    out->outcome = TPS_CA_NOT_DONE;
    if (serial == NULL || !serial_norm(serial, strlen(serial), hex) ||
        !serial_dec(hex, dec, sizeof(dec))) {
        set_msg(out, "CA %s: serial '%.80s' is not hexadecimal", what, serial ? serial : "");
        goto out;
    }
    if (reason > 6) {
        set_msg(out, "CA revoke: reason %d is not 0..6", reason);
        goto out;
    }
    rc = TPS_ETOOBIG;
    if (reason >= 0) {
        char all[128], rs[4];
        /* backends §4.3 */
        snprintf(all, sizeof(all), "(certRecordId=%s)", dec);
        snprintf(rs, sizeof(rs), "%d", reason);
        if (form_add(&body, "op", "revoke") != TPS_OK ||
            form_add(&body, "revocationReason", rs) != TPS_OK ||
            form_add(&body, "revokeAll", all) != TPS_OK ||
            form_add(&body, "totalRecordCount", "1") != TPS_OK)
            goto out;
    } else if (form_add(&body, "serialNumber", dec) != TPS_OK) { /* §4.4 */
        goto out;
    }
    frc = perform(ca, ca->all, req, reason >= 0 ? ca->p_revoke : ca->p_unrevoke, &body,
                  FO_CONDITIONAL, ca->call_ms, what, sid, check_status);
    resent = fo_req_resent(req);
    name_clone(ca, ca->all, req, out);
    ans = fo_req_body(req, &alen);
    text[0] = '\0';
    if ((frc == FO_OK || frc == FO_EREJECTED || frc == FO_EAUTH) && fo_req_status(req) == 200)
        (void)tps_ca_parse_status((const char *)ans, alen, &out->app_status, &unauth, text,
                                  sizeof(text));
    if (frc == FO_OK && !resent) {
        out->outcome = TPS_CA_DONE;
        out->revocation_reason = reason;
        out->msg[0] = '\0';
        rc = TPS_OK;
        goto out;
    }
    if (frc == FO_EAUTH) {
        out->outcome = TPS_CA_AUTH;
        set_msg(out, "CA %s: clone %s refused our credentials (%s)", what, out->clone,
                text[0] ? text : "HTTP 401/403");
        rc = TPS_EBACKEND;
        goto out;
    }
    if (frc == FO_EINVAL || frc == FO_ENOMEM || frc == FO_EINTERNAL) {
        msg_transport(out, what, req, frc);
        rc = frc == FO_ENOMEM ? TPS_ENOMEM : TPS_EBACKEND;
        goto out;
    }
    /* Anything else may hide a status change already made (resent, status 2 "no certificates
     * are revoked", an answer lost after delivery): read the state back (§6). */
    if (frc == FO_OK)
        set_msg(out, "CA %s: resent to another clone", what);
    else if (frc == FO_EREJECTED)
        set_msg(out, "CA %s: clone %s answered status=%ld '%s'", what, out->clone,
                out->app_status, text);
    else
        msg_transport(out, what, req, frc);
    memcpy(first, out->msg, sizeof(first));
    {
        struct tps_ca_result g;
        enum tps_rc grc;

        tps_ca_result_init(&g);
        grc = getcert(ca, req, sid, hex, &g);
        if (grc == TPS_OK) {
            bool done;
            if (reason < 0)
                done = g.revocation_reason < 0;
            else
                done = g.revocation_reason == reason ||
                       (reason == TPS_CA_REASON_CERTIFICATE_HOLD && g.revocation_reason >= 0 &&
                        g.revocation_reason != TPS_CA_REASON_CERTIFICATE_HOLD);
            out->revocation_reason = g.revocation_reason;
            if (done) {
                out->outcome = TPS_CA_DONE;
                out->reconciled = true;
                out->msg[0] = '\0';
                CMN_LOG(CMN_LOG_NOTICE, "ca.reconciled", sid, "conn=%s call=%s serial=%s "
                        "reason=%d", ca->id, what, hex, g.revocation_reason);
                rc = TPS_OK;
            } else {
                out->outcome = frc == FO_EREJECTED ? TPS_CA_REJECTED : TPS_CA_NOT_DONE;
                set_msg(out, "%.500s; getcert shows %s", first,
                        g.revocation_reason < 0 ? "not revoked"
                                                : tps_ca_reason_name(g.revocation_reason));
                rc = TPS_EBACKEND;
            }
        } else {
            out->outcome = frc == FO_EREJECTED && !resent ? TPS_CA_REJECTED : TPS_CA_UNKNOWN;
            set_msg(out, "%.380s; reconciliation failed: %.300s", first, g.msg);
            rc = grc == TPS_ENOMEM ? TPS_ENOMEM : TPS_EBACKEND;
        }
        tps_ca_result_cleanup(&g);
    }
out:
    cmn_buf_cleanup(&body);
    return rc;
}

enum tps_rc
tps_ca_revoke(struct tps_ca *ca, struct fo_req *req, const char *sid, const char *serial,
              int reason, struct tps_ca_result *out)
{
    if (reason < 0 || reason > 6) {
        out->outcome = TPS_CA_NOT_DONE;
        set_msg(out, "CA revoke: reason %d is not 0..6", reason);
        return TPS_EINVAL;
    }
    return change_status(ca, req, sid, serial, reason, out);
}

enum tps_rc
tps_ca_unrevoke(struct tps_ca *ca, struct fo_req *req, const char *sid, const char *serial,
                struct tps_ca_result *out)
{
    return change_status(ca, req, sid, serial, -1, out);
}

/* ---- token status -> certificate action (tokendb §1.7) ------------------------------------ */

enum tps_rc
tps_ca_status_action(const struct cmn_cfg *cfg, const char *token_type, const char *key_type,
                     enum tps_token_status from, enum tps_token_status to,
                     enum tps_ca_action *act, int *reason)
{
    static const struct {
        enum tps_token_status st;
        const char *why; /* tokenReason of the state */
        int def;         /* shipped reason code */
    } rev[] = {
        {TPS_TOKEN_DAMAGED, "destroyed", 0},
        {TPS_TOKEN_PERM_LOST, "keyCompromise", 1},
        {TPS_TOKEN_SUSPENDED, "onHold", 6},
        {TPS_TOKEN_TEMP_LOST_PERM_LOST, "keyCompromise", 1},
        {TPS_TOKEN_TERMINATED, "terminated", 1},
    };
    char k[CMN_CFG_MAX_KEY];

    *act = TPS_CA_ACTION_NONE;
    *reason = 0;
    if (from == TPS_TOKEN_UNKNOWN || to == TPS_TOKEN_UNKNOWN)
        return TPS_EINVAL;
    if (from == TPS_TOKEN_SUSPENDED && to == TPS_TOKEN_ACTIVE) {
        *act = TPS_CA_ACTION_UNREVOKE;
        return TPS_OK;
    }
    for (size_t i = 0; i < sizeof(rev) / sizeof(rev[0]); i++) {
        bool on = true;
        unsigned long long r = (unsigned long long)rev[i].def;

        if (rev[i].st != to)
            continue;
        if (cfg != NULL && token_type != NULL && key_type != NULL) {
            int n = snprintf(k, sizeof(k), "op.enroll.%s.keyGen.%s.recovery.%s.revokeCert",
                             token_type, key_type, rev[i].why);
            if (n < 0 || (size_t)n + sizeof(".reason") >= sizeof(k))
                return TPS_EINVAL;
            on = cmn_cfg_bool(cfg, k);
            memcpy(k + n, ".reason", sizeof(".reason"));
            r = cmn_cfg_uint(cfg, k);
            if (r > 6)
                return TPS_EINVAL;
        }
        if (on) {
            *act = TPS_CA_ACTION_REVOKE;
            *reason = (int)r;
        }
        return TPS_OK;
    }
    return TPS_OK;
}
