/* tests/unit/gateway/test_ca.c - gateway/ca.c and gateway/xmlmini.c: the strict XML reader
 * (good, short and hostile documents), every CA answer shape and status, the key table, the
 * token-status -> revocation mapping, and calls against two in-process CA "clones" sharing one
 * certificate store, with faults: the enrollment received and then dropped must never reach
 * the second clone and must be reconciled by lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <libfailover/failover.h>

#include "common/cfg.h"
#include "gateway/ca.h"
#include "gateway/xmlmini.h"
#include "tests/unit/gateway/be_testsrv.h"

/* ---- helpers: keys and certificates ------------------------------------------------------ */

static EVP_PKEY *
new_ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static int
spki_of(EVP_PKEY *k, uint8_t **der)
{
    *der = NULL;
    return i2d_PUBKEY(k, der);
}

static X509 *
make_cert(EVP_PKEY *subject_key, EVP_PKEY *ca_key, unsigned long serial, const char *uid)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)serial);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Token Key User", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(n, "UID", MBSTRING_ASC, (const unsigned char *)uid, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, subject_key);
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
    X509_NAME_free(n);
    return x;
}

static void
b64_of_cert(X509 *x, struct cmn_buf *out, bool breaks)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    struct cmn_buf t;

    cmn_buf_init(&t, 64 * 1024);
    assert_int_equal(tps_ca_b64_append(&t, der, (size_t)n), TPS_OK);
    for (size_t i = 0; i < t.len; i++) {
        if (breaks && i > 0 && i % 64 == 0)
            assert_int_equal(cmn_buf_puts(out, "\r\n"), CMN_OK);
        assert_int_equal(cmn_buf_putc(out, t.data[i]), CMN_OK);
    }
    OPENSSL_free(der);
    cmn_buf_cleanup(&t);
}

/* ---- the fake CA: two clones, one store -------------------------------------------------- */

enum fault {
    F_NONE = 0,
    F_ISSUE_DROP,  /* enrollment: issue, record, then drop the connection */
    F_DROP,        /* drop without doing anything */
    F_STATUS,      /* answer Status=status_code with error_text */
    F_HTTP503,     /* answer HTTP 503 */
    F_GARBAGE,     /* answer 200 with something that is not XML */
    F_OTHER_KEY,   /* enrollment: issue a certificate for another key */
    F_APPLY_DROP,  /* revoke/unrevoke: change the status, then drop */
    F_NO_CHANGE,   /* revoke: answer status=2 without changing anything */
    F_UNAUTH,      /* revoke: status=3&error=unauthorized */
};

#define MAX_CERTS 16

struct fake_ca {
    pthread_mutex_t mu;
    EVP_PKEY *ca_key, *other_key;
    struct {
        X509 *cert;
        uint8_t *spki;
        int spki_len;
        int reason;
    } c[MAX_CERTS];
    size_t n;
    unsigned long next_serial;
    /* faults per clone and operation */
    enum fault enroll_fault[2], find_fault[2], status_fault[2], getcert_fault[2];
    int status_code;
    const char *error_text;
    /* counters per clone */
    unsigned enrolls[2], finds[2], getcerts[2], revokes[2], unrevokes[2];
    char last_body[4096];
};

static struct fake_ca *g_ca;

static void
xml_request(struct cmn_buf *o, size_t i, struct fake_ca *ca)
{
    char hex[40];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca->c[i].cert), NULL);
    char *h = BN_bn2hex(bn);

    snprintf(hex, sizeof(hex), "%s", h);
    for (char *p = hex; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    cmn_buf_printf(o, "<Request><Id>%zu</Id><SubjectDN>UID=x, O=Token Key User</SubjectDN>"
                      "<serialno>%s</serialno><b64>", 100 + i, hex);
    b64_of_cert(ca->c[i].cert, o, true);
    cmn_buf_puts(o, "</b64></Request>");
    OPENSSL_free(h);
    BN_free(bn);
}

static ssize_t
find_serial(struct fake_ca *ca, unsigned long serial)
{
    for (size_t i = 0; i < ca->n; i++)
        if ((unsigned long)ASN1_INTEGER_get(X509_get0_serialNumber(ca->c[i].cert)) == serial)
            return (ssize_t)i;
    return -1;
}

static size_t
issue(struct fake_ca *ca, EVP_PKEY *key, const uint8_t *spki, int spki_len)
{
    size_t i = ca->n++;

    assert_true(i < MAX_CERTS);
    ca->c[i].cert = make_cert(key, ca->ca_key, ca->next_serial++, "joe");
    ca->c[i].spki = malloc((size_t)spki_len);
    memcpy(ca->c[i].spki, spki, (size_t)spki_len);
    ca->c[i].spki_len = spki_len;
    ca->c[i].reason = -1;
    return i;
}

/* Decodes the publickey parameter into an EVP_PKEY and its DER. */
static EVP_PKEY *
form_key(const char *body, size_t len, struct cmn_buf *der)
{
    char b64[8192];
    const uint8_t *p;

    if (!be_form(body, len, "publickey", b64, sizeof(b64)))
        return NULL;
    if (tps_ca_b64_decode(b64, strlen(b64), der) != TPS_OK)
        return NULL;
    p = der->data;
    return d2i_PUBKEY(NULL, &p, (long)der->len);
}

static void
ca_handler(void *arg, int srv, const char *path, const char *body, size_t len, struct be_resp *r)
{
    struct fake_ca *ca = arg;
    struct cmn_buf der;
    char v[256];

    cmn_buf_init(&der, 8192);
    pthread_mutex_lock(&ca->mu);
    snprintf(ca->last_body, sizeof(ca->last_body), "%.*s", (int)len, body);
    r->ctype = "application/xml";
    if (strcmp(path, "/ca/ee/ca/profileSubmitSSLClient") == 0) {
        enum fault f = ca->enroll_fault[srv];
        EVP_PKEY *k = NULL;
        ca->enrolls[srv]++;
        if (f == F_DROP || f == F_HTTP503 || f == F_GARBAGE || f == F_STATUS) {
            r->drop = f == F_DROP;
            r->status = f == F_HTTP503 ? 503 : 200;
            if (f == F_GARBAGE)
                cmn_buf_puts(&r->body, "<html>oops</html");
            if (f == F_STATUS)
                cmn_buf_printf(&r->body, "<XMLResponse><Status>%d</Status><Error>%s</Error>"
                                         "<RequestId>42</RequestId></XMLResponse>",
                               ca->status_code, ca->error_text);
            goto out;
        }
        if (be_form(body, len, "renewal", v, sizeof(v)) && strcmp(v, "true") == 0) {
            unsigned long long s = 0;
            ssize_t old;
            if (!be_form(body, len, "serial_num", v, sizeof(v)) ||
                cmn_parse_uint(v, 0, 1ULL << 62, &s) != CMN_OK ||
                (old = find_serial(ca, (unsigned long)s)) < 0) {
                cmn_buf_puts(&r->body, "<XMLResponse><Status>1</Status><Error>no such "
                                       "certificate</Error></XMLResponse>");
                goto out;
            }
            {
                EVP_PKEY *pk = X509_get_pubkey(ca->c[old].cert);
                uint8_t *sp = NULL;
                int sl = i2d_PUBKEY(pk, &sp);
                size_t i = issue(ca, pk, sp, sl);
                cmn_buf_puts(&r->body, "<XMLResponse><Status>0</Status><Requests>");
                xml_request(&r->body, i, ca);
                cmn_buf_puts(&r->body, "</Requests></XMLResponse>");
                OPENSSL_free(sp);
                EVP_PKEY_free(pk);
            }
            r->drop = f == F_ISSUE_DROP;
            goto out;
        }
        k = form_key(body, len, &der);
        if (k == NULL || !be_form(body, len, "profileId", v, sizeof(v)) ||
            !be_form(body, len, "xml", v, sizeof(v))) {
            cmn_buf_puts(&r->body, "<XMLResponse><Status>1</Status><Error>bad request</Error>"
                                   "</XMLResponse>");
            EVP_PKEY_free(k);
            goto out;
        }
        {
            size_t i = issue(ca, f == F_OTHER_KEY ? ca->other_key : k, der.data, (int)der.len);
            cmn_buf_puts(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<XMLResponse>\n"
                                   "  <Status>0</Status>\n  <Requests>");
            xml_request(&r->body, i, ca);
            cmn_buf_puts(&r->body, "</Requests>\n</XMLResponse>\n");
        }
        EVP_PKEY_free(k);
        r->drop = f == F_ISSUE_DROP;
    } else if (strcmp(path, "/ca/ee/ca/findByKey") == 0) {
        EVP_PKEY *k;
        ca->finds[srv]++;
        if (ca->find_fault[srv] == F_HTTP503) {
            r->status = 503;
            goto out;
        }
        k = form_key(body, len, &der);
        EVP_PKEY_free(k);
        if (k == NULL) {
            cmn_buf_puts(&r->body, "<XMLResponse><Status>1</Status></XMLResponse>");
            goto out;
        }
        cmn_buf_puts(&r->body, "<XMLResponse><Status>0</Status><Requests>");
        for (size_t i = 0; i < ca->n; i++)
            if ((size_t)ca->c[i].spki_len == der.len &&
                memcmp(ca->c[i].spki, der.data, der.len) == 0)
                xml_request(&r->body, i, ca);
        cmn_buf_puts(&r->body, "</Requests></XMLResponse>");
    } else if (strcmp(path, "/ca/ee/ca/displayBySerial") == 0) {
        unsigned long long s = 0;
        ssize_t i;
        ca->getcerts[srv]++;
        if (ca->getcert_fault[srv] == F_HTTP503) {
            r->status = 503;
            goto out;
        }
        if (!be_form(body, len, "serialNumber", v, sizeof(v)) ||
            cmn_parse_uint(v, 0, 1ULL << 62, &s) != CMN_OK ||
            (i = find_serial(ca, (unsigned long)s)) < 0) {
            cmn_buf_puts(&r->body, "<xml><fixed><errorDescription>not found</errorDescription>"
                                   "</fixed></xml>");
            goto out;
        }
        cmn_buf_puts(&r->body, "<xml><header><certChainBase64>");
        b64_of_cert(ca->c[i].cert, &r->body, true);
        cmn_buf_puts(&r->body, "</certChainBase64>");
        if (ca->c[i].reason >= 0)
            cmn_buf_printf(&r->body, "<revocationReason>%d</revocationReason>", ca->c[i].reason);
        cmn_buf_printf(&r->body, "<serialNumber>0x%llX</serialNumber></header><fixed/><records/>"
                                 "</xml>", s);
    } else if (strcmp(path, "/ca/ee/subsystem/ca/doRevoke") == 0 ||
               strcmp(path, "/ca/ee/subsystem/ca/doUnrevoke") == 0) {
        bool revoke = strstr(path, "doRevoke") != NULL;
        enum fault f = ca->status_fault[srv];
        unsigned long long s = 0, reason = 0;
        ssize_t i = -1;
        r->ctype = "application/x-www-form-urlencoded";
        if (revoke)
            ca->revokes[srv]++;
        else
            ca->unrevokes[srv]++;
        if (f == F_DROP) {
            r->drop = true;
            goto out;
        }
        if (f == F_UNAUTH) {
            cmn_buf_puts(&r->body, "status=3&error=unauthorized");
            goto out;
        }
        if (revoke) {
            if (be_form(body, len, "revokeAll", v, sizeof(v)) &&
                sscanf(v, "(certRecordId=%llu)", &s) == 1 &&
                be_form(body, len, "revocationReason", v, sizeof(v)))
                (void)cmn_parse_uint(v, 0, 6, &reason);
        } else if (be_form(body, len, "serialNumber", v, sizeof(v))) {
            (void)cmn_parse_uint(v, 0, 1ULL << 62, &s);
        }
        i = find_serial(ca, (unsigned long)s);
        if (f == F_NO_CHANGE || i < 0) {
            cmn_buf_puts(&r->body, "status=2&error=No+certificates+are+revoked.");
            goto out;
        }
        if (f == F_STATUS) {
            cmn_buf_printf(&r->body, "status=%d&error=%s", ca->status_code, ca->error_text);
            goto out;
        }
        if (revoke && ca->c[i].reason >= 0 && ca->c[i].reason == (int)reason) {
            cmn_buf_puts(&r->body, "status=2&error=No+certificates+are+revoked.");
            goto out;
        }
        ca->c[i].reason = revoke ? (int)reason : -1;
        cmn_buf_puts(&r->body, "status=0&error=");
        r->drop = f == F_APPLY_DROP;
    } else {
        r->status = 404;
    }
out:
    pthread_mutex_unlock(&ca->mu);
    cmn_buf_cleanup(&der);
}

/* ---- fixture: two clones + a connector ----------------------------------------------------- */

struct fix {
    struct fake_ca ca;
    struct be_srv srv[2];
    struct cmn_cfg *cfg;
    struct tps_ca *conn;
    struct fo_req *req;
    EVP_PKEY *key;
    uint8_t *spki;
    int spki_len;
};

static const struct cmn_cfg_key *const ca_tables[] = {tps_ca_cfg_keys, NULL};

static void
fix_connect(struct fix *f, const char *hostport, bool with_find)
{
    char text[1024], err[512];
    struct cmn_buf errs;

    snprintf(text, sizeof(text),
             "conn.ca1.hostport=%s\nconn.ca1.SSLOn=false\nconn.ca1.reconcileDelay=0\n"
             "conn.ca1.callTimeout=5\nconn.ca1.timeout=5\nconn.ca1.connectTimeout=1000\n%s",
             hostport, with_find ? "conn.ca1.servlet.findByKey=/ca/ee/ca/findByKey\n" : "");
    cmn_buf_init(&errs, 4096);
    assert_int_equal(cmn_cfg_parse("test.cfg", text, strlen(text), ca_tables, &f->cfg, &errs),
                     CMN_OK);
    assert_int_equal(tps_ca_new(f->cfg, "ca1", &f->conn, err, sizeof(err)), TPS_OK);
    cmn_buf_cleanup(&errs);
}

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    char hp[128];

    pthread_mutex_init(&f->ca.mu, NULL);
    f->ca.ca_key = new_ec_key();
    f->ca.other_key = new_ec_key();
    f->ca.next_serial = 0x1a;
    f->key = new_ec_key();
    f->spki_len = spki_of(f->key, &f->spki);
    g_ca = &f->ca;
    be_srv_start(&f->srv[0], 0, ca_handler, &f->ca);
    be_srv_start(&f->srv[1], 1, ca_handler, &f->ca);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u 127.0.0.1:%u", f->srv[0].port, f->srv[1].port);
    fix_connect(f, hp, true);
    assert_int_equal(fo_req_new(&f->req), FO_OK);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    be_srv_stop(&f->srv[0]);
    be_srv_stop(&f->srv[1]);
    fo_req_free(f->req);
    tps_ca_free(f->conn);
    cmn_cfg_unref(f->cfg);
    for (size_t i = 0; i < f->ca.n; i++) {
        X509_free(f->ca.c[i].cert);
        free(f->ca.c[i].spki);
    }
    EVP_PKEY_free(f->ca.ca_key);
    EVP_PKEY_free(f->ca.other_key);
    EVP_PKEY_free(f->key);
    OPENSSL_free(f->spki);
    pthread_mutex_destroy(&f->ca.mu);
    free(f);
    return 0;
}

static struct tps_ca_enroll_req
enroll_req(struct fix *f)
{
    struct tps_ca_enroll_req in = {
        .profile_id = "caTokenUserSigningKeyEnrollment",
        .cuid = "40906145C76224192D2B",
        .user_id = "joe user&co",
        .token_type = "userKey",
        .spki = f->spki,
        .spki_len = (size_t)f->spki_len,
        .sid = "t1",
    };
    return in;
}

/* ---- xmlmini ----------------------------------------------------------------------------- */

static void
test_ca_xml_good(void **state)
{
    static const char doc[] =
        "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- c -->\n<a x=\"1\" y='&amp;'>\n <b>t&lt;&#65;"
        "&#x263A;&quot;&apos;&gt;</b>\n <c/>\n <b>second</b>\n <d><e>deep</e></d>\n</a>\n<?pi?>\n";
    struct tps_xml *x = malloc(sizeof(*x));
    char out[64];
    size_t n;
    int b;

    (void)state;
    assert_int_equal(tps_xml_parse(x, doc, strlen(doc)), TPS_OK);
    assert_int_equal(x->count, 6);
    b = tps_xml_path(x, "a/b");
    assert_true(b > 0);
    assert_int_equal(tps_xml_text(x, b, out, sizeof(out), &n), TPS_OK);
    assert_string_equal(out, "t<A\xE2\x98\xBA\"'>");
    assert_int_equal(n, strlen(out));
    assert_int_equal(tps_xml_count(x, 0, "b"), 2);
    assert_true(tps_xml_child(x, 0, "b", b) > b);
    assert_true(tps_xml_path(x, "a/d/e") > 0);
    assert_int_equal(tps_xml_path(x, "a/z"), -1);
    assert_int_equal(tps_xml_path(x, "b"), -1);
    assert_true(tps_xml_is(x, tps_xml_path(x, "a/c"), "c"));
    assert_false(tps_xml_is(x, tps_xml_path(x, "a/d"), "d")); /* not a leaf */
    assert_int_equal(tps_xml_text(x, tps_xml_path(x, "a/d"), out, sizeof(out), NULL),
                     TPS_EPROTO);
    assert_int_equal(tps_xml_text(x, b, out, 5, NULL), TPS_ETOOBIG);
    assert_string_equal(out, "");
    assert_int_equal(tps_xml_text(x, 99, out, sizeof(out), NULL), TPS_EINVAL);
    free(x);
}

static void
test_ca_xml_hostile(void **state)
{
    static const struct {
        const char *doc;
        enum tps_rc rc;
    } cases[] = {
        {"", TPS_EPROTO},
        {"   ", TPS_EPROTO},
        {"text", TPS_EPROTO},
        {"<a>", TPS_EPROTO},
        {"<a></b>", TPS_EPROTO},
        {"<a><b></a></b>", TPS_EPROTO},
        {"<a></a><b></b>", TPS_EPROTO},
        {"<a></a>junk", TPS_EPROTO},
        {"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", TPS_EPROTO},
        {"<a>&x;</a>", TPS_EPROTO},
        {"<a>&#0;</a>", TPS_EPROTO},
        {"<a>&#xD800;</a>", TPS_EPROTO},
        {"<a>&#99999999;</a>", TPS_EPROTO},
        {"<a>&amp</a>", TPS_EPROTO},
        {"<a>x<b/></a>", TPS_EPROTO},
        {"<a><b/>x</a>", TPS_EPROTO},
        {"<a><![CDATA[x]]></a>", TPS_EPROTO},
        {"<a><!-- c --></a>", TPS_EPROTO},
        {"<a>\x01</a>", TPS_EPROTO},
        {"<a b></a>", TPS_EPROTO},
        {"<a b=c></a>", TPS_EPROTO},
        {"<a b=\"<\"></a>", TPS_EPROTO},
        {"<a b=\"x\"c=\"y\"></a>", TPS_EPROTO},
        {"<1a></1a>", TPS_EPROTO},
        {"<a>]]></a>", TPS_EPROTO},
        {"<!-- unterminated <a></a>", TPS_EPROTO},
        {"</a>", TPS_EPROTO},
    };
    struct tps_xml *x = malloc(sizeof(*x));
    struct cmn_buf b;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum tps_rc rc = tps_xml_parse(x, cases[i].doc, strlen(cases[i].doc));
        if (rc != cases[i].rc)
            fail_msg("case %zu '%s': got %d", i, cases[i].doc, rc);
        assert_true(x->err[0] != '\0');
    }
    /* Embedded NUL: the length counts, not the terminator. */
    assert_int_equal(tps_xml_parse(x, "<a>\0</a>", 8), TPS_EPROTO);
    /* Depth limit exactly: 16 levels pass, 17 do not. */
    cmn_buf_init(&b, 1 << 20);
    for (int i = 0; i < TPS_XML_MAX_DEPTH; i++)
        cmn_buf_puts(&b, "<a>");
    for (int i = 0; i < TPS_XML_MAX_DEPTH; i++)
        cmn_buf_puts(&b, "</a>");
    assert_int_equal(tps_xml_parse(x, (const char *)b.data, b.len), TPS_OK);
    cmn_buf_reset(&b);
    for (int i = 0; i <= TPS_XML_MAX_DEPTH; i++)
        cmn_buf_puts(&b, "<a>");
    for (int i = 0; i <= TPS_XML_MAX_DEPTH; i++)
        cmn_buf_puts(&b, "</a>");
    assert_int_equal(tps_xml_parse(x, (const char *)b.data, b.len), TPS_ETOOBIG);
    /* Element count limit exactly. */
    cmn_buf_reset(&b);
    cmn_buf_puts(&b, "<r>");
    for (int i = 0; i < TPS_XML_MAX_NODES - 1; i++)
        cmn_buf_puts(&b, "<e/>");
    cmn_buf_puts(&b, "</r>");
    assert_int_equal(tps_xml_parse(x, (const char *)b.data, b.len), TPS_OK);
    assert_int_equal(x->count, TPS_XML_MAX_NODES);
    b.len -= 4;
    cmn_buf_puts(&b, "<e/></r>");
    assert_int_equal(tps_xml_parse(x, (const char *)b.data, b.len), TPS_ETOOBIG);
    cmn_buf_cleanup(&b);
    free(x);
}

/* ---- parsers ------------------------------------------------------------------------------- */

static void
test_ca_b64_and_form(void **state)
{
    struct cmn_buf b;
    const char *v;
    size_t vl;

    (void)state;
    cmn_buf_init(&b, 64);
    assert_int_equal(tps_ca_b64_decode("TW\r\nFu", 6, &b), TPS_OK); /* no padding */
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "Man", 3);
    cmn_buf_reset(&b);
    assert_int_equal(tps_ca_b64_decode("TWE=", 4, &b), TPS_OK);
    assert_int_equal(b.len, 2);
    cmn_buf_reset(&b);
    assert_int_equal(tps_ca_b64_decode("TW=E", 4, &b), TPS_EPROTO);
    assert_int_equal(tps_ca_b64_decode("TW%E", 4, &b), TPS_EPROTO);
    assert_int_equal(tps_ca_b64_decode("TWF", 3, &b), TPS_EPROTO); /* non-zero leftover bits */
    assert_int_equal(tps_ca_b64_decode("T", 1, &b), TPS_EPROTO);
    assert_int_equal(b.len, 0);
    cmn_buf_cleanup(&b);
    cmn_buf_init(&b, 2);
    assert_int_equal(tps_ca_b64_decode("TWFu", 4, &b), TPS_ETOOBIG);
    cmn_buf_cleanup(&b);
    /* Fields split at the first '=', trailing '=' kept (backends §1). */
    assert_true(tps_ca_form_field("a=1&b=x==&c", 11, "b", &v, &vl));
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "x==", 3);
    assert_false(tps_ca_form_field("a=1&b=x==&c", 11, "c", &v, &vl));
    assert_false(tps_ca_form_field("ab=1", 4, "a", &v, &vl));
}

static void
test_ca_parse_enroll_shapes(void **state)
{
    struct fix *f = *state;
    struct tps_ca_result r;
    struct cmn_buf doc;
    X509 *c = make_cert(f->key, f->ca.ca_key, 0x1f, "joe");
    unsigned m;

    cmn_buf_init(&doc, 64 * 1024);
    /* Success. */
    cmn_buf_puts(&doc, "<XMLResponse><Status>0</Status><Requests><Request><Id>9</Id>"
                       "<SubjectDN>UID=joe</SubjectDN><serialno>1F</serialno><b64>");
    b64_of_cert(c, &doc, true);
    cmn_buf_puts(&doc, "</b64></Request></Requests></XMLResponse>");
    (void)cmn_buf_cstr(&doc);
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_parse_enroll((const char *)doc.data, doc.len, false, NULL, NULL, &r),
                     TPS_OK);
    assert_int_equal(r.app_status, 0);
    assert_string_equal(r.serial, "1f");
    assert_string_equal(r.request_id, "9");
    assert_non_null(strstr(r.subject, "UID=joe"));
    assert_true(r.cert_len > 100);
    tps_ca_result_cleanup(&r);
    /* Lookup: the only request excluded -> 0 matches, still well-formed. */
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_parse_enroll((const char *)doc.data, doc.len, true, "0x1F", &m, &r),
                     TPS_OK);
    assert_int_equal(m, 0);
    assert_null(r.cert);
    tps_ca_result_cleanup(&r);
    /* Two requests where one is expected. */
    {
        struct cmn_buf two;
        const char *s = (const char *)doc.data;
        const char *a = strstr(s, "<Request>"), *e = strstr(s, "</Requests>");
        cmn_buf_init(&two, 128 * 1024);
        cmn_buf_append(&two, s, (size_t)(e - s));
        cmn_buf_append(&two, a, (size_t)(e - a));
        cmn_buf_puts(&two, e);
        tps_ca_result_init(&r);
        assert_int_equal(tps_ca_parse_enroll((const char *)two.data, two.len, false, NULL, NULL,
                                             &r),
                         TPS_EPROTO);
        tps_ca_result_cleanup(&r);
        tps_ca_result_init(&r);
        assert_int_equal(tps_ca_parse_enroll((const char *)two.data, two.len, true, NULL, &m,
                                             &r),
                         TPS_OK);
        assert_int_equal(m, 2);
        tps_ca_result_cleanup(&r);
        cmn_buf_cleanup(&two);
    }
    /* Error statuses. */
    {
        static const char *const bad[] = {
            "<XMLResponse><Status>1</Status><Error>profile not found</Error></XMLResponse>",
            "<XMLResponse><Status>2</Status><Error>deferred</Error><RequestId>77</RequestId>"
            "</XMLResponse>",
            "<XMLResponse><Status>3</Status><Error>rejected &amp; 'quoted'</Error></XMLResponse>",
        };
        for (int i = 0; i < 3; i++) {
            tps_ca_result_init(&r);
            assert_int_equal(tps_ca_parse_enroll(bad[i], strlen(bad[i]), false, NULL, NULL, &r),
                             TPS_OK);
            assert_int_equal(r.app_status, i + 1);
            tps_ca_result_cleanup(&r);
        }
        tps_ca_result_init(&r);
        (void)tps_ca_parse_enroll(bad[1], strlen(bad[1]), false, NULL, NULL, &r);
        assert_string_equal(r.request_id, "77");
        assert_string_equal(r.msg, "deferred");
        tps_ca_result_cleanup(&r);
        tps_ca_result_init(&r);
        (void)tps_ca_parse_enroll(bad[2], strlen(bad[2]), false, NULL, NULL, &r);
        assert_string_equal(r.msg, "rejected & ?quoted?"); /* quotes sanitised */
        tps_ca_result_cleanup(&r);
    }
    /* Broken shapes. */
    {
        static const char *const broken[] = {
            "<XMLResponse></XMLResponse>",
            "<XMLResponse><Status>x</Status></XMLResponse>",
            "<XMLResponse><Status>0</Status><Status>1</Status></XMLResponse>",
            "<XMLResponse><Status>0</Status></XMLResponse>",
            "<XMLResponse><Status>0</Status><Requests/></XMLResponse>",
            "<XMLResponse><Status>0</Status><Requests><Request><Id>1</Id><serialno>1f"
            "</serialno><b64>AAAA</b64></Request></Requests></XMLResponse>",
            "<XMLResponse><Status>0</Status><Requests><Request><Id>1</Id><serialno>zz"
            "</serialno><b64>AAAA</b64></Request></Requests></XMLResponse>",
            "<Other><Status>0</Status></Other>",
            "Status=0",
        };
        for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
            tps_ca_result_init(&r);
            if (tps_ca_parse_enroll(broken[i], strlen(broken[i]), false, NULL, NULL, &r) !=
                TPS_EPROTO)
                fail_msg("broken case %zu accepted", i);
            assert_true(r.msg[0] != '\0');
            tps_ca_result_cleanup(&r);
        }
    }
    /* serialno that is not the certificate's serial. */
    {
        char *s = strstr((char *)doc.data, "<serialno>1F");
        s[11] = 'E';
        tps_ca_result_init(&r);
        assert_int_equal(tps_ca_parse_enroll((const char *)doc.data, doc.len, false, NULL, NULL,
                                             &r),
                         TPS_EPROTO);
        assert_non_null(strstr(r.msg, "differs"));
        tps_ca_result_cleanup(&r);
    }
    X509_free(c);
    cmn_buf_cleanup(&doc);
}

static void
test_ca_parse_getcert_shapes(void **state)
{
    struct fix *f = *state;
    struct tps_ca_result r;
    struct cmn_buf doc;
    X509 *c = make_cert(f->key, f->ca.ca_key, 0x2b, "joe");
    X509 *other = make_cert(f->ca.other_key, f->ca.ca_key, 0x99, "ca");

    cmn_buf_init(&doc, 64 * 1024);
    cmn_buf_puts(&doc, "<xml><header><certChainBase64>");
    b64_of_cert(c, &doc, true);
    cmn_buf_puts(&doc, "</certChainBase64><revocationReason>6</revocationReason><serialNumber>"
                       "0x2B</serialNumber></header><fixed/><records/></xml>");
    (void)cmn_buf_cstr(&doc);
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_parse_getcert((const char *)doc.data, doc.len, &r), TPS_OK);
    assert_string_equal(r.serial, "2b");
    assert_int_equal(r.revocation_reason, 6);
    tps_ca_result_cleanup(&r);
    /* A PKCS#7 chain holding the certificate and its issuer. */
    {
        PKCS7 *p7 = PKCS7_new();
        uint8_t *der = NULL;
        int n;
        struct cmn_buf d2;
        assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_signed), 1);
        assert_int_equal(PKCS7_content_new(p7, NID_pkcs7_data), 1);
        PKCS7_add_certificate(p7, other);
        PKCS7_add_certificate(p7, c);
        n = i2d_PKCS7(p7, &der);
        assert_true(n > 0);
        cmn_buf_init(&d2, 64 * 1024);
        cmn_buf_puts(&d2, "<xml><header><certChainBase64>");
        tps_ca_b64_append(&d2, der, (size_t)n);
        cmn_buf_puts(&d2, "</certChainBase64><serialNumber>2b</serialNumber></header></xml>");
        tps_ca_result_init(&r);
        assert_int_equal(tps_ca_parse_getcert((const char *)d2.data, d2.len, &r), TPS_OK);
        assert_string_equal(r.serial, "2b");
        assert_int_equal(r.revocation_reason, -1);
        tps_ca_result_cleanup(&r);
        cmn_buf_cleanup(&d2);
        OPENSSL_free(der);
        PKCS7_free(p7);
    }
    {
        static const struct {
            const char *doc;
            enum tps_rc rc;
        } bad[] = {
            {"<xml><fixed><errorDescription>x</errorDescription></fixed></xml>", TPS_ENOTFOUND},
            {"<xml><header><serialNumber>1</serialNumber></header></xml>", TPS_ENOTFOUND},
            {"<xml><header><certChainBase64>AAAA</certChainBase64></header></xml>", TPS_EPROTO},
            {"<XMLResponse/>", TPS_EPROTO},
            {"<html><body>Error</body></html", TPS_EPROTO},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            tps_ca_result_init(&r);
            assert_int_equal(tps_ca_parse_getcert(bad[i].doc, strlen(bad[i].doc), &r), bad[i].rc);
            tps_ca_result_cleanup(&r);
        }
    }
    /* Bad reason and a serial that is not the certificate's. */
    {
        char *s = strstr((char *)doc.data, "<revocationReason>6");
        s[18] = 'x';
        tps_ca_result_init(&r);
        assert_int_equal(tps_ca_parse_getcert((const char *)doc.data, doc.len, &r), TPS_EPROTO);
        tps_ca_result_cleanup(&r);
        s[18] = '1';
        s = strstr((char *)doc.data, "0x2B");
        s[3] = 'C';
        tps_ca_result_init(&r);
        assert_int_equal(tps_ca_parse_getcert((const char *)doc.data, doc.len, &r), TPS_EPROTO);
        tps_ca_result_cleanup(&r);
    }
    X509_free(c);
    X509_free(other);
    cmn_buf_cleanup(&doc);
}

static void
test_ca_parse_status_shapes(void **state)
{
    static const struct {
        const char *body;
        enum tps_rc rc;
        long status;
        bool unauth;
        const char *text;
    } cases[] = {
        {"status=0&error=", TPS_OK, 0, false, ""},
        {"status=2&error=No+certificates+are+revoked.", TPS_OK, 2, false,
         "No certificates are revoked."},
        {"status=3&error=unauthorized", TPS_OK, 3, true, "unauthorized"},
        {"status=3&error=Cert%20%27x%27", TPS_OK, 3, false, "Cert ?x?"},
        {"status=1&errorString=Missing+authentication+manager.", TPS_OK, 1, false,
         "Missing authentication manager."},
        {"error=x", TPS_EPROTO, -1, false, ""},
        {"status=&error=", TPS_EPROTO, -1, false, ""},
        {"status=-1", TPS_EPROTO, -1, false, ""},
        {"status=0x", TPS_EPROTO, -1, false, ""},
        {"<html>500</html>", TPS_EPROTO, -1, false, ""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long st = -1;
        bool un = false;
        char text[64];
        enum tps_rc rc = tps_ca_parse_status(cases[i].body, strlen(cases[i].body), &st, &un,
                                             text, sizeof(text));
        assert_int_equal(rc, cases[i].rc);
        if (rc == TPS_OK) {
            assert_int_equal(st, cases[i].status);
            assert_int_equal(un, cases[i].unauth);
            assert_string_equal(text, cases[i].text);
        }
    }
}

/* ---- config and status mapping -------------------------------------------------------------- */

static void
test_ca_config(void **state)
{
    static const struct {
        const char *text;
        bool load_ok, new_ok;
    } cases[] = {
        {"conn.ca1.hostport=ca1:8443 ca2:8443\n", true, true},
        {"conn.ca1.hostport=[::1]:8443,ca2:8443\nconn.ca1.timeout=600\n", true, true},
        {"conn.ca1.SSLOn=false\n", true, false},                      /* no hostport */
        {"conn.ca1.hostport=ca1\n", false, false},                    /* no port */
        {"conn.ca1.hostport=ca1:1\nconn.ca1.timeout=0\n", false, false},
        {"conn.ca1.hostport=ca1:1\nconn.ca1.servlet.revoke=doRevoke\n", true, false},
        {"conn.ca1.hostport=ca1:1\nconn.ca1.bogus=1\n", false, false},
        {"op.enroll.userKey.keyGen.signing.ca.profileId=caTokenUserSigningKeyEnrollment\n"
         "op.enroll.userKey.keyGen.signing.recovery.onHold.revokeCert.reason=7\n",
         false, false},
    };
    struct fix *f = *state;

    (void)f;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_cfg *cfg = NULL;
        struct tps_ca *ca = NULL;
        char err[512] = "";
        enum cmn_rc crc = cmn_cfg_parse("t.cfg", cases[i].text, strlen(cases[i].text),
                                        ca_tables, &cfg, NULL);

        if ((crc == CMN_OK) != cases[i].load_ok)
            fail_msg("case %zu: load %d", i, crc);
        if (crc != CMN_OK)
            continue;
        if ((tps_ca_new(cfg, "ca1", &ca, err, sizeof(err)) == TPS_OK) != cases[i].new_ok)
            fail_msg("case %zu: new: %s", i, err);
        if (!cases[i].new_ok)
            assert_non_null(strstr(err, "conn.ca1."));
        tps_ca_free(ca);
        cmn_cfg_unref(cfg);
    }
}

static void
test_ca_status_action(void **state)
{
    static const struct {
        enum tps_token_status from, to;
        enum tps_ca_action act;
        int reason;
    } cases[] = {
        {TPS_TOKEN_ACTIVE, TPS_TOKEN_DAMAGED, TPS_CA_ACTION_REVOKE, 0},
        {TPS_TOKEN_ACTIVE, TPS_TOKEN_PERM_LOST, TPS_CA_ACTION_REVOKE, 1},
        {TPS_TOKEN_ACTIVE, TPS_TOKEN_SUSPENDED, TPS_CA_ACTION_REVOKE, 6},
        {TPS_TOKEN_SUSPENDED, TPS_TOKEN_ACTIVE, TPS_CA_ACTION_UNREVOKE, 0},
        {TPS_TOKEN_SUSPENDED, TPS_TOKEN_PERM_LOST, TPS_CA_ACTION_REVOKE, 1},
        {TPS_TOKEN_SUSPENDED, TPS_TOKEN_TEMP_LOST_PERM_LOST, TPS_CA_ACTION_REVOKE, 1},
        {TPS_TOKEN_ACTIVE, TPS_TOKEN_TERMINATED, TPS_CA_ACTION_REVOKE, 1},
        {TPS_TOKEN_TERMINATED, TPS_TOKEN_UNFORMATTED, TPS_CA_ACTION_NONE, 0},
        {TPS_TOKEN_FORMATTED, TPS_TOKEN_ACTIVE, TPS_CA_ACTION_NONE, 0},
        {TPS_TOKEN_ACTIVE, TPS_TOKEN_FORMATTED, TPS_CA_ACTION_NONE, 0},
    };
    static const char cfgtext[] =
        "op.enroll.userKey.keyGen.signing.recovery.onHold.revokeCert=false\n"
        "op.enroll.userKey.keyGen.signing.recovery.destroyed.revokeCert.reason=5\n";
    struct cmn_cfg *cfg;
    enum tps_ca_action act;
    int reason;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(tps_ca_status_action(NULL, NULL, NULL, cases[i].from, cases[i].to, &act,
                                              &reason),
                         TPS_OK);
        if (act != cases[i].act || reason != cases[i].reason)
            fail_msg("case %zu: act %d reason %d", i, act, reason);
    }
    assert_int_equal(tps_ca_status_action(NULL, NULL, NULL, TPS_TOKEN_UNKNOWN, TPS_TOKEN_ACTIVE,
                                          &act, &reason),
                     TPS_EINVAL);
    assert_int_equal(cmn_cfg_parse("t.cfg", cfgtext, strlen(cfgtext), ca_tables, &cfg, NULL),
                     CMN_OK);
    assert_int_equal(tps_ca_status_action(cfg, "userKey", "signing", TPS_TOKEN_ACTIVE,
                                          TPS_TOKEN_SUSPENDED, &act, &reason),
                     TPS_OK);
    assert_int_equal(act, TPS_CA_ACTION_NONE);
    assert_int_equal(tps_ca_status_action(cfg, "userKey", "signing", TPS_TOKEN_ACTIVE,
                                          TPS_TOKEN_DAMAGED, &act, &reason),
                     TPS_OK);
    assert_int_equal(act, TPS_CA_ACTION_REVOKE);
    assert_int_equal(reason, 5);
    /* Another key type keeps the shipped defaults. */
    assert_int_equal(tps_ca_status_action(cfg, "userKey", "encryption", TPS_TOKEN_ACTIVE,
                                          TPS_TOKEN_SUSPENDED, &act, &reason),
                     TPS_OK);
    assert_int_equal(act, TPS_CA_ACTION_REVOKE);
    assert_int_equal(reason, 6);
    assert_string_equal(tps_ca_reason_name(6), "certificateHold");
    assert_string_equal(tps_ca_reason_name(9), "unknown");
    cmn_cfg_unref(cfg);
}

/* ---- calls against the clones ----------------------------------------------------------------- */

static void
test_ca_enroll_ok(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;
    char want[80];

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    assert_int_equal(r.outcome, TPS_CA_DONE);
    assert_false(r.reconciled);
    assert_string_equal(r.serial, "1a");
    assert_string_equal(r.msg, "");
    snprintf(want, sizeof(want), "ca1 127.0.0.1:%u", f->srv[0].port);
    assert_string_equal(r.clone, want);
    assert_int_equal(strlen(r.key_hash), 64);
    assert_int_equal(f->ca.enrolls[0], 1);
    assert_int_equal(f->ca.enrolls[1], 0);
    /* backends §4.1: the body carries xml=true, the escaped user id, CUID, type. */
    assert_non_null(strstr(f->ca.last_body, "xml=true"));
    assert_non_null(strstr(f->ca.last_body, "screenname=joe+user%26co"));
    assert_non_null(strstr(f->ca.last_body, "tokencuid=40906145C76224192D2B"));
    assert_non_null(strstr(f->ca.last_body, "tokentype=userKey"));
    assert_non_null(strstr(f->ca.last_body, "profileId=caTokenUserSigningKeyEnrollment"));
    tps_ca_result_cleanup(&r);
}

/* The heart of R-5: clone 1 receives the enrollment, issues, and dies before answering. */
static void
test_ca_enroll_dropped_is_reconciled_not_resent(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;

    f->ca.enroll_fault[0] = F_ISSUE_DROP;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    assert_int_equal(r.outcome, TPS_CA_DONE);
    assert_true(r.reconciled);
    assert_int_equal(f->ca.n, 1);                 /* exactly one certificate exists */
    assert_int_equal(f->ca.enrolls[0] + f->ca.enrolls[1], 1); /* exactly one enrollment */
    assert_int_equal(f->ca.enrolls[1], 0);
    assert_int_equal(f->ca.finds[0], 1);          /* looked up on the clone that received it */
    assert_string_equal(r.serial, "1a");
    assert_non_null(r.cert);
    tps_ca_result_cleanup(&r);
}

static void
test_ca_enroll_dropped_not_issued(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;

    f->ca.enroll_fault[0] = F_DROP;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_NOT_DONE); /* the receiving clone proved it */
    assert_int_equal(f->ca.enrolls[1], 0);
    assert_int_equal(f->ca.finds[0], 1);
    assert_int_equal(f->ca.finds[1], 0);
    assert_non_null(strstr(r.msg, "no certificate carries key"));
    tps_ca_result_cleanup(&r);
}

static void
test_ca_enroll_reconcile_on_other_clone(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;

    /* The receiving clone cannot answer the lookup; its replica can and has it. */
    f->ca.enroll_fault[0] = F_ISSUE_DROP;
    f->ca.find_fault[0] = F_HTTP503;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    assert_true(r.reconciled);
    assert_int_equal(f->ca.enrolls[1], 0);
    assert_int_equal(f->ca.finds[1], 1);
    tps_ca_result_cleanup(&r);

    /* Not issued, receiving clone cannot answer, replica says none: not certain. */
    f->ca.enroll_fault[0] = F_DROP;
    tps_ca_result_init(&r);
    in.spki = NULL;
    {
        EVP_PKEY *k2 = new_ec_key();
        uint8_t *s2 = NULL;
        int l2 = spki_of(k2, &s2);
        in.spki = s2;
        in.spki_len = (size_t)l2;
        assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
        assert_int_equal(r.outcome, TPS_CA_UNKNOWN);
        assert_int_equal(strlen(r.key_hash), 64);
        assert_non_null(strstr(r.msg, "could not establish"));
        assert_int_equal(f->ca.enrolls[1], 0);
        OPENSSL_free(s2);
        EVP_PKEY_free(k2);
    }
    tps_ca_result_cleanup(&r);
}

static void
test_ca_enroll_unknown_without_lookup(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;
    char hp[128];

    tps_ca_free(f->conn);
    cmn_cfg_unref(f->cfg);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u 127.0.0.1:%u", f->srv[0].port, f->srv[1].port);
    fix_connect(f, hp, false);
    f->ca.enroll_fault[0] = F_ISSUE_DROP;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_UNKNOWN);
    assert_non_null(strstr(r.msg, "findByKey is not set"));
    assert_int_equal(f->ca.enrolls[1], 0);
    tps_ca_result_cleanup(&r);
}

static void
test_ca_enroll_connect_failover(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;
    char hp[128], want[80];

    tps_ca_free(f->conn);
    cmn_cfg_unref(f->cfg);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u 127.0.0.1:%u", be_dead_port(), f->srv[1].port);
    fix_connect(f, hp, true);
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    assert_false(r.reconciled);
    snprintf(want, sizeof(want), "ca1 127.0.0.1:%u", f->srv[1].port);
    assert_string_equal(r.clone, want);
    assert_int_equal(f->ca.enrolls[1], 1);
    tps_ca_result_cleanup(&r);

    /* Every clone refuses: certainly not done. */
    tps_ca_free(f->conn);
    cmn_cfg_unref(f->cfg);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", be_dead_port());
    fix_connect(f, hp, true);
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_NOT_DONE);
    assert_non_null(strstr(r.msg, "CA enrollment: "));
    tps_ca_result_cleanup(&r);
}

static void
test_ca_enroll_statuses(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;
    char want[200];

    f->ca.enroll_fault[0] = F_STATUS;
    f->ca.status_code = 1;
    f->ca.error_text = "profile not found";
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_REJECTED);
    assert_int_equal(r.app_status, 1);
    snprintf(want, sizeof(want),
             "CA enrollment: clone ca1 127.0.0.1:%u answered Status=1 'profile not found'",
             f->srv[0].port);
    assert_non_null(strstr(r.msg, want));
    assert_int_equal(f->ca.enrolls[1], 0); /* an application error never fails over */
    tps_ca_result_cleanup(&r);

    f->ca.status_code = 2;
    f->ca.error_text = "deferred";
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_PENDING);
    assert_string_equal(r.request_id, "42");
    tps_ca_result_cleanup(&r);

    f->ca.status_code = 3;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_REJECTED);
    tps_ca_result_cleanup(&r);

    /* Garbage after delivery: may have issued; the lookup proves it did not. */
    f->ca.enroll_fault[0] = F_GARBAGE;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_NOT_DONE);
    assert_int_equal(f->ca.enrolls[1], 0);
    tps_ca_result_cleanup(&r);

    /* A certificate for another key is refused (and named, so it can be revoked). */
    f->ca.enroll_fault[0] = F_OTHER_KEY;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_REJECTED);
    assert_non_null(strstr(r.msg, "another public key"));
    tps_ca_result_cleanup(&r);

    /* Bad input never reaches a clone. */
    in.user_id = NULL;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EINVAL);
    in = enroll_req(f);
    in.spki_len -= 1;
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_EINVAL);
    tps_ca_result_cleanup(&r);
    assert_int_equal(f->ca.enrolls[0], 5);
}

static void
test_ca_renew(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_renew_req rn = {.profile_id = "caTokenUserSigningKeyRenewal", .sid = "t2"};
    struct tps_ca_result r, r2;

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    rn.old_cert = r.cert;
    rn.old_cert_len = r.cert_len;
    tps_ca_result_init(&r2);
    assert_int_equal(tps_ca_renew(f->conn, f->req, &rn, &r2), TPS_OK);
    assert_string_equal(r2.serial, "1b");
    assert_non_null(strstr(f->ca.last_body, "renewal=true"));
    assert_non_null(strstr(f->ca.last_body, "serial_num=26")); /* 0x1a, in decimal */
    tps_ca_result_cleanup(&r2);

    /* Dropped renewal: the lookup skips the old certificate... but two others now carry
     * the key (1b and the new 1c): ambiguous, so unknown. */
    f->ca.enroll_fault[0] = F_ISSUE_DROP;
    tps_ca_result_init(&r2);
    assert_int_equal(tps_ca_renew(f->conn, f->req, &rn, &r2), TPS_EBACKEND);
    assert_int_equal(r2.outcome, TPS_CA_UNKNOWN);
    assert_non_null(strstr(r2.msg, "2 certificates"));
    assert_int_equal(f->ca.enrolls[1], 0);
    tps_ca_result_cleanup(&r2);
    tps_ca_result_cleanup(&r);
}

static void
test_ca_renew_dropped_reconciled(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_renew_req rn = {.profile_id = "caTokenUserSigningKeyRenewal"};
    struct tps_ca_result r, r2;

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    rn.old_cert = r.cert;
    rn.old_cert_len = r.cert_len;
    f->ca.enroll_fault[0] = F_ISSUE_DROP;
    tps_ca_result_init(&r2);
    assert_int_equal(tps_ca_renew(f->conn, f->req, &rn, &r2), TPS_OK);
    assert_true(r2.reconciled);
    assert_string_equal(r2.serial, "1b");
    assert_int_equal(f->ca.enrolls[0], 2);
    assert_int_equal(f->ca.enrolls[1], 0);
    tps_ca_result_cleanup(&r2);
    tps_ca_result_cleanup(&r);
}

static void
test_ca_getcert(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    tps_ca_result_cleanup(&r);
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_getcert(f->conn, f->req, "t", "0x1A", &r), TPS_OK);
    assert_string_equal(r.serial, "1a");
    assert_int_equal(r.revocation_reason, -1);
    assert_non_null(strstr(f->ca.last_body, "serialNumber=26"));
    assert_non_null(strstr(f->ca.last_body, "b64CertOnly=true"));
    tps_ca_result_cleanup(&r);
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_getcert(f->conn, f->req, "t", "77", &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_REJECTED);
    tps_ca_result_cleanup(&r);
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_getcert(f->conn, f->req, "t", "xyz", &r), TPS_EINVAL);
    tps_ca_result_cleanup(&r);
    /* Idempotent: a failing clone is skipped. */
    f->ca.getcert_fault[0] = F_HTTP503;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_getcert(f->conn, f->req, "t", "1a", &r), TPS_OK);
    assert_int_equal(f->ca.getcerts[1], 1);
    tps_ca_result_cleanup(&r);
}

static void
test_ca_revoke_unrevoke(void **state)
{
    struct fix *f = *state;
    struct tps_ca_enroll_req in = enroll_req(f);
    struct tps_ca_result r;

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_enroll(f->conn, f->req, &in, &r), TPS_OK);
    tps_ca_result_cleanup(&r);

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_revoke(f->conn, f->req, "t", "1a", 6, &r), TPS_OK);
    assert_false(r.reconciled);
    assert_int_equal(f->ca.c[0].reason, 6);
    assert_non_null(strstr(f->ca.last_body, "op=revoke"));
    assert_non_null(strstr(f->ca.last_body, "revocationReason=6"));
    assert_non_null(strstr(f->ca.last_body, "revokeAll=%28certRecordId%3D26%29"));
    assert_non_null(strstr(f->ca.last_body, "totalRecordCount=1"));
    tps_ca_result_cleanup(&r);

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_unrevoke(f->conn, f->req, "t", "1a", &r), TPS_OK);
    assert_int_equal(f->ca.c[0].reason, -1);
    assert_string_equal(f->ca.last_body, "serialNumber=26");
    tps_ca_result_cleanup(&r);

    /* Applied on clone 1, answer lost; resent to clone 2 which says "No certificates are
     * revoked": getcert proves it is done. */
    f->ca.status_fault[0] = F_APPLY_DROP;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_revoke(f->conn, f->req, "t", "1a", 1, &r), TPS_OK);
    assert_true(r.reconciled);
    assert_int_equal(r.revocation_reason, 1);
    assert_int_equal(f->ca.revokes[1], 1);
    tps_ca_result_cleanup(&r);
    f->ca.status_fault[0] = F_NONE;

    /* Rejected without change: reported as rejected, with what getcert shows. */
    f->ca.status_fault[0] = F_STATUS;
    f->ca.status_code = 3;
    f->ca.error_text = "Internal+error";
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_unrevoke(f->conn, f->req, "t", "1a", &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_REJECTED);
    assert_non_null(strstr(r.msg, "status=3 'Internal error'"));
    assert_non_null(strstr(r.msg, "getcert shows keyCompromise"));
    tps_ca_result_cleanup(&r);

    /* Unauthorized is final, never reconciled into success. */
    f->ca.status_fault[0] = F_UNAUTH;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_revoke(f->conn, f->req, "t", "1a", 1, &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_AUTH);
    assert_int_equal(f->ca.revokes[1], 1);
    tps_ca_result_cleanup(&r);

    /* Both clones drop without acting, getcert shows still revoked: not done. */
    f->ca.status_fault[0] = F_DROP;
    f->ca.status_fault[1] = F_DROP;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_unrevoke(f->conn, f->req, "t", "1a", &r), TPS_EBACKEND);
    assert_int_equal(r.outcome, TPS_CA_NOT_DONE);
    assert_non_null(strstr(r.msg, "getcert shows keyCompromise"));
    tps_ca_result_cleanup(&r);

    /* Asking for a hold on a permanently revoked certificate counts as done. */
    f->ca.status_fault[0] = F_NO_CHANGE;
    f->ca.status_fault[1] = F_NO_CHANGE;
    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_revoke(f->conn, f->req, "t", "1a", 6, &r), TPS_OK);
    assert_true(r.reconciled);
    assert_int_equal(r.revocation_reason, 1);
    tps_ca_result_cleanup(&r);

    tps_ca_result_init(&r);
    assert_int_equal(tps_ca_revoke(f->conn, f->req, "t", "1a", 7, &r), TPS_EINVAL);
    assert_int_equal(tps_ca_revoke(f->conn, f->req, "t", "0x", 1, &r), TPS_EINVAL);
    tps_ca_result_cleanup(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_xml_good),
        cmocka_unit_test(test_ca_xml_hostile),
        cmocka_unit_test(test_ca_b64_and_form),
        cmocka_unit_test_setup_teardown(test_ca_parse_enroll_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_parse_getcert_shapes, setup, teardown),
        cmocka_unit_test(test_ca_parse_status_shapes),
        cmocka_unit_test_setup_teardown(test_ca_config, setup, teardown),
        cmocka_unit_test(test_ca_status_action),
        cmocka_unit_test_setup_teardown(test_ca_enroll_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_enroll_dropped_is_reconciled_not_resent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ca_enroll_dropped_not_issued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_enroll_reconcile_on_other_clone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ca_enroll_unknown_without_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_enroll_connect_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_enroll_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_renew_dropped_reconciled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_getcert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_revoke_unrevoke, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
