/* tests/sim/ca.c - the CA double: profileSubmitSSLClient (enrollment, renewal), doRevoke,
 * doUnrevoke and displayBySerial of backends §4, issuing real X.509 certificates with
 * OpenSSL from the clones' shared signing key, records in the replicated store. */
#include "tests/sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/log.h"

const struct cmn_cfg_key sim_ca_keys[] = {
    {.name = "pkisim.ca.signingCertFile", .type = CFG_PATH, .required = true,
     .doc = "CA signing certificate (PEM), identical on every clone (pki-sim --init-ca)"},
    {.name = "pkisim.ca.signingKeyFile", .type = CFG_PATH, .required = true,
     .doc = "CA signing key (PEM)"},
    {.name = "auths.instance.AgentCertAuth.agentGroup", .type = CFG_STR,
     .defstr = "Certificate Manager Agents", .doc = "group allowed to enroll and renew"},
    {.name = "pkisim.ca.validityDays", .type = CFG_UINT, .min = 1, .max = 36500, .def = 365},
    {0},
};

struct sim_ca {
    struct cmn_cfg *cfg;
    struct sim_store *st;
    X509 *cert;
    EVP_PKEY *key;
    const char *group;
    unsigned days;
};

/* Token profiles the gateway uses (backends §4.1): key usage, extended key usage, validity. */
struct profile {
    const char *id;
    const char *ku, *eku;
    unsigned days; /* 0: pkisim.ca.validityDays */
    bool renewal;
    bool device; /* subject CN=<cuid> instead of UID=<user>, O=Token Key User */
};
static const struct profile profiles[] = {
    {"caTokenUserSigningKeyEnrollment", "critical,digitalSignature,nonRepudiation",
     "clientAuth,emailProtection", 0, false, false},
    {"caTokenUserEncryptionKeyEnrollment", "critical,keyEncipherment,dataEncipherment",
     "emailProtection", 0, false, false},
    {"caTokenUserAuthenticationKeyEnrollment", "critical,digitalSignature", "clientAuth", 0,
     false, false},
    {"caTokenUserDelegateAuthKeyEnrollment", "critical,digitalSignature", "clientAuth", 0, false,
     false},
    {"caTokenUserDelegateSigningKeyEnrollment", "critical,digitalSignature,nonRepudiation",
     "clientAuth,emailProtection", 0, false, false},
    {"caTempTokenDeviceKeyEnrollment", "critical,digitalSignature,keyEncipherment", "clientAuth",
     7, false, true},
    {"caTempTokenUserSigningKeyEnrollment", "critical,digitalSignature,nonRepudiation",
     "clientAuth,emailProtection", 7, false, false},
    {"caTempTokenUserEncryptionKeyEnrollment", "critical,keyEncipherment,dataEncipherment",
     "emailProtection", 7, false, false},
    {"caTokenUserSigningKeyRenewal", "critical,digitalSignature,nonRepudiation",
     "clientAuth,emailProtection", 0, true, false},
    {"caTokenUserEncryptionKeyRenewal", "critical,keyEncipherment,dataEncipherment",
     "emailProtection", 0, true, false},
    {"caTokenUserAuthKeyRenewal", "critical,digitalSignature", "clientAuth", 0, true, false},
    {"caTokenUserDelegateAuthKeyRenewal", "critical,digitalSignature", "clientAuth", 0, true,
     false},
    {NULL, NULL, NULL, 0, false, false},
};

void
sim_ca_free(struct sim_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    cmn_cfg_unref(ca->cfg);
    free(ca);
}

enum cmn_rc
sim_ca_new(const struct cmn_cfg *cfg, struct sim_store *st, struct cmn_buf *errs,
           struct sim_ca **out)
{
    struct sim_ca *ca = calloc(1, sizeof(*ca));
    const char *cp = cmn_cfg_str(cfg, "pkisim.ca.signingCertFile");
    const char *kp = cmn_cfg_str(cfg, "pkisim.ca.signingKeyFile");
    FILE *f;

    *out = NULL;
    if (ca == NULL)
        return CMN_ENOMEM;
    ca->cfg = cmn_cfg_ref((struct cmn_cfg *)(uintptr_t)cfg);
    ca->st = st;
    ca->group = cmn_cfg_str(cfg, "auths.instance.AgentCertAuth.agentGroup");
    ca->days = (unsigned)cmn_cfg_uint(cfg, "pkisim.ca.validityDays");
    f = fopen(cp, "r");
    if (f != NULL) {
        ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    f = fopen(kp, "r");
    if (f != NULL) {
        ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (ca->cert == NULL || ca->key == NULL || X509_check_private_key(ca->cert, ca->key) != 1) {
        (void)cmn_buf_printf(errs, "pkisim.ca.signingCertFile/signingKeyFile: '%s' and '%s' "
                                   "are not a matching certificate and key (run pki-sim "
                                   "--init-ca DIR)\n",
                             cp, kp);
        ERR_clear_error();
        sim_ca_free(ca);
        return CMN_ECONFIG;
    }
    *out = ca;
    return CMN_OK;
}

/* ---- helpers ---- */

static void
xml_escape(struct cmn_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            (void)cmn_buf_puts(b, "&lt;");
            break;
        case '>':
            (void)cmn_buf_puts(b, "&gt;");
            break;
        case '&':
            (void)cmn_buf_puts(b, "&amp;");
            break;
        case '"':
            (void)cmn_buf_puts(b, "&quot;");
            break;
        default:
            (void)cmn_buf_putc(b, (uint8_t)*s);
        }
    }
}

static void
xml_fail(struct sim_resp *r, int status, const char *why)
{
    cmn_buf_reset(&r->body);
    r->ctype = "application/xml";
    (void)cmn_buf_printf(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\" "
                                   "standalone=\"no\"?><XMLResponse><Status>%d</Status><Error>",
                         status);
    xml_escape(&r->body, why);
    (void)cmn_buf_puts(&r->body, "</Error></XMLResponse>");
    sim_resp_note(r, "status=%d", status);
}

/* The non-XML answer the C++ TPS scrapes (errorCode="N", outputVal="<b64>";). */
static void
html_result(struct sim_resp *r, int code, const char *b64, const char *why)
{
    cmn_buf_reset(&r->body);
    r->ctype = "text/html";
    (void)cmn_buf_printf(&r->body,
                         "<html><head><script type=\"text/javascript\">\nvar result = new "
                         "Object();\nresult.errorCode=\"%d\";\nresult.errorReason=\"%s\";\n"
                         "result.outputVal=\"%s\";\n</script></head><body></body></html>\n"
                         "errorCode=\"%d\" outputVal=\"%s\";",
                         code, why, b64, code, b64);
}

static void
form_reply(struct sim_resp *r, int status, const char *errname, const char *err)
{
    cmn_buf_reset(&r->body);
    r->ctype = "application/x-www-form-urlencoded";
    (void)cmn_buf_printf(&r->body, "status=%d&%s=%s", status, errname, err);
    sim_resp_note(r, "status=%d", status);
}

/* A serial number as the spec writes it: decimal, or hex with 0x. */
static bool
parse_serial(const char *s, unsigned long long *v)
{
    char *end;

    if (s == NULL || s[0] == '\0' || s[0] == '-' || s[0] == '+')
        return false;
    errno = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        *v = strtoull(s + 2, &end, 16);
    else
        *v = strtoull(s, &end, 10);
    return *end == '\0' && errno == 0 && *v != 0;
}

void
sim_spki_hash(EVP_PKEY *pk, char out[65])
{
    uint8_t *der = NULL, md[32];
    int n = i2d_PUBKEY(pk, &der);
    unsigned ml = 0;

    out[0] = '\0';
    if (n > 0 && EVP_Digest(der, (size_t)n, md, &ml, EVP_sha256(), NULL) == 1 && ml == 32)
        for (int i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    OPENSSL_free(der);
}

/* Builds the subject: "UID=<user>, O=Token Key User", "CN=<cuid>" for device profiles, or an
 * explicit "A=x, B=y" (most specific first, as Dogtag prints DNs). [out] dn (printable). */
static X509_NAME *
make_subject(const char *dn, char *printable, size_t n)
{
    X509_NAME *name = X509_NAME_new();
    char copy[512];
    char *parts[16];
    int np = 0;

    snprintf(printable, n, "%s", dn);
    snprintf(copy, sizeof(copy), "%s", dn);
    for (char *p = copy; p != NULL && np < 16;) {
        char *c = strchr(p, ',');

        if (c != NULL)
            *c = '\0';
        while (*p == ' ')
            p++;
        parts[np++] = p;
        p = c != NULL ? c + 1 : NULL;
    }
    for (int i = np - 1; name != NULL && i >= 0; i--) { /* X.509 order: least specific first */
        char *eq = strchr(parts[i], '=');

        if (eq == NULL || eq == parts[i] || eq[1] == '\0') {
            X509_NAME_free(name);
            return NULL;
        }
        *eq = '\0';
        if (X509_NAME_add_entry_by_txt(name, parts[i], MBSTRING_UTF8,
                                       (const unsigned char *)eq + 1, -1, -1, 0) != 1) {
            X509_NAME_free(name);
            ERR_clear_error();
            return NULL;
        }
    }
    return name;
}

static bool
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    bool ok = e != NULL && X509_add_ext(x, e, -1) == 1;

    X509_EXTENSION_free(e);
    return ok;
}

/* Issues a certificate for pk with subject name under profile p. [out] der (OPENSSL_free),
 * der_len. */
static enum cmn_rc
issue(struct sim_ca *ca, const struct profile *p, X509_NAME *subject, EVP_PKEY *pk,
      unsigned long long serial, uint8_t **der, int *der_len, long long *not_after)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    long days = (long)(p->days != 0 ? p->days : ca->days);
    enum cmn_rc rc = CMN_ECRYPTO;

    *der = NULL;
    if (x == NULL)
        return CMN_ENOMEM;
    if (X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), days * 86400) == NULL ||
        X509_set_subject_name(x, subject) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
        X509_set_pubkey(x, pk) != 1)
        goto out;
    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, &ctx, NID_key_usage, p->ku) ||
        !add_ext(x, &ctx, NID_ext_key_usage, p->eku) ||
        !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
        goto out;
    if (X509_sign(x, ca->key, EVP_sha256()) <= 0)
        goto out;
    *der_len = i2d_X509(x, der);
    if (*der_len <= 0)
        goto out;
    *not_after = (long long)time(NULL) + days * 86400;
    rc = CMN_OK;
out:
    X509_free(x);
    ERR_clear_error();
    return rc;
}

static const struct profile *
find_profile(const char *id)
{
    for (const struct profile *p = profiles; p->id != NULL; p++)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

/* ---- servlets ---- */

static void
enroll(struct sim_ca *ca, const struct sim_user *u, const struct sim_form *f,
       struct sim_resp *r)
{
    const struct sim_param *xml = sim_form_get2(f, "xml", "xmlOutput");
    const struct sim_param *renew = sim_form_get(f, "renewal");
    const struct sim_param *pid = sim_form_get(f, "profileId");
    const struct sim_param *sn = sim_form_get(f, "screenname");
    const struct sim_param *cuid = sim_form_get(f, "tokencuid");
    const struct sim_param *pkp = sim_form_get(f, "publickey");
    const struct sim_param *subj = sim_form_get(f, "subject");
    bool want_xml = xml != NULL && strcmp(xml->val, "true") == 0;
    bool renewal = renew != NULL && strcmp(renew->val, "true") == 0;
    const struct profile *p;
    struct sim_cert_rec *rec = calloc(1, sizeof(*rec));
    struct sim_cert_rec *old = NULL;
    struct cmn_buf spki, b64;
    EVP_PKEY *pk = NULL;
    X509_NAME *name = NULL;
    uint8_t *der = NULL;
    int der_len = 0;
    char dn[512], why[160];
    unsigned long long serial = 0, reqid = 0, oldser = 0;
    int status = 1;

    cmn_buf_init(&spki, 65536);
    cmn_buf_init(&b64, 65536);
    snprintf(r->op, sizeof(r->op), "%s", renewal ? "renewal" : "enrollment");
    why[0] = '\0';
    if (rec == NULL) {
        snprintf(why, sizeof(why), "out of memory");
        goto fail;
    }
    /* The key is logged first, whatever the outcome: tests count the enrollment requests
     * each clone received per public key (duplicates after a resend). */
    if (!renewal && pkp != NULL && sim_b64_decode(pkp->val, pkp->len, &spki) == CMN_OK) {
        const unsigned char *q = spki.data;

        pk = d2i_PUBKEY(NULL, &q, (long)spki.len);
        if (pk != NULL) {
            sim_spki_hash(pk, rec->pubhash);
            sim_resp_note(r, "pubkey=%.16s", rec->pubhash);
        }
    }
    if (!sim_user_in_group(u, ca->group)) {
        snprintf(why, sizeof(why), "unauthorized");
        goto fail;
    }
    if (pid == NULL || (p = find_profile(pid->val)) == NULL || p->renewal != renewal) {
        snprintf(why, sizeof(why), "Profile %s not found", pid != NULL ? pid->val : "");
        goto fail;
    }
    if (renewal) {
        const struct sim_param *sp = sim_form_get(f, "serial_num");
        const unsigned char *q;
        X509 *ox;

        old = calloc(1, sizeof(*old));
        if (old == NULL || sp == NULL || !parse_serial(sp->val, &oldser) ||
            sim_store_cert_get(ca->st, oldser, old) != CMN_OK) {
            snprintf(why, sizeof(why), "Certificate to renew not found");
            goto fail;
        }
        if (sim_b64_decode(old->cert_b64, strlen(old->cert_b64), &spki) != CMN_OK) {
            snprintf(why, sizeof(why), "Cannot read the certificate to renew");
            goto fail;
        }
        q = spki.data;
        ox = d2i_X509(NULL, &q, (long)spki.len);
        if (ox == NULL) {
            snprintf(why, sizeof(why), "Cannot read the certificate to renew");
            goto fail;
        }
        pk = X509_get_pubkey(ox);
        name = X509_NAME_dup(X509_get_subject_name(ox));
        X509_free(ox);
        snprintf(dn, sizeof(dn), "%s", old->subject);
        snprintf(rec->cuid, sizeof(rec->cuid), "%s", old->cuid);
        snprintf(rec->user, sizeof(rec->user), "%s", old->user);
        sim_resp_note(r, "renews=%llu", oldser);
    } else {
        char tmp[512];

        if (pk == NULL) {
            snprintf(why, sizeof(why), "Invalid key: publickey missing or not a base64 "
                                       "SubjectPublicKeyInfo");
            goto fail;
        }
        if (subj != NULL && subj->len > 0)
            snprintf(tmp, sizeof(tmp), "%s", subj->val);
        else if (p->device && cuid != NULL && cuid->len > 0)
            snprintf(tmp, sizeof(tmp), "CN=%s", cuid->val);
        else if (sn != NULL && sn->len > 0)
            snprintf(tmp, sizeof(tmp), "UID=%s, O=Token Key User", sn->val);
        else {
            snprintf(why, sizeof(why), "Missing screenname");
            goto fail;
        }
        name = make_subject(tmp, dn, sizeof(dn));
        if (name == NULL) {
            snprintf(why, sizeof(why), "Invalid subject name");
            goto fail;
        }
        if (cuid != NULL)
            snprintf(rec->cuid, sizeof(rec->cuid), "%s", cuid->val);
        if (sn != NULL)
            snprintf(rec->user, sizeof(rec->user), "%s", sn->val);
    }
    if (pk == NULL || name == NULL) {
        snprintf(why, sizeof(why), "Invalid key");
        goto fail;
    }
    sim_spki_hash(pk, rec->pubhash);
    if (renewal)
        sim_resp_note(r, "pubkey=%.16s", rec->pubhash);
    sim_resp_note(r, "profile=%s cuid=%s", p->id, rec->cuid);
    if (sim_store_next(ca->st, false, &serial) != CMN_OK ||
        sim_store_next(ca->st, true, &reqid) != CMN_OK) {
        snprintf(why, sizeof(why), "Serial number range of this clone is used up");
        goto fail;
    }
    if (issue(ca, p, name, pk, serial, &der, &der_len, &rec->not_after) != CMN_OK ||
        sim_b64_append(&b64, der, (size_t)der_len) != CMN_OK) {
        snprintf(why, sizeof(why), "Certificate signing failed");
        goto fail;
    }
    rec->serial = serial;
    rec->reqid = reqid;
    rec->renewed_from = oldser;
    rec->reason = -1;
    snprintf(rec->status, sizeof(rec->status), "VALID");
    snprintf(rec->profile, sizeof(rec->profile), "%s", p->id);
    snprintf(rec->subject, sizeof(rec->subject), "%s", dn);
    snprintf(rec->clone, sizeof(rec->clone), "%s", sim_store_clone(ca->st));
    if (b64.len >= sizeof(rec->cert_b64)) {
        snprintf(why, sizeof(why), "Certificate too large");
        goto fail;
    }
    memcpy(rec->cert_b64, cmn_buf_cstr(&b64), b64.len + 1);
    if (sim_store_cert_add(ca->st, rec) != CMN_OK) {
        snprintf(why, sizeof(why), "Cannot store the certificate record");
        goto fail;
    }
    status = 0;
    sim_resp_note(r, "status=0 serial=%llu", serial);
    if (want_xml) {
        r->ctype = "application/xml";
        (void)cmn_buf_printf(&r->body,
                             "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>"
                             "<XMLResponse><Status>0</Status><Requests><Request><Id>%llu</Id>"
                             "<SubjectDN>",
                             reqid);
        xml_escape(&r->body, dn);
        (void)cmn_buf_printf(&r->body,
                             "</SubjectDN><serialno>%llx</serialno><b64>%s</b64></Request>"
                             "</Requests></XMLResponse>",
                             serial, rec->cert_b64);
    } else {
        html_result(r, 0, rec->cert_b64, "");
    }
fail:
    if (status != 0) {
        if (want_xml) {
            xml_fail(r, 1, why);
        } else {
            html_result(r, 1, "", why);
            sim_resp_note(r, "status=1");
        }
    }
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    X509_NAME_free(name);
    cmn_buf_cleanup(&spki);
    cmn_buf_cleanup(&b64);
    free(rec);
    free(old);
    ERR_clear_error();
}

static bool
may_revoke(const struct sim_ca *ca, const struct sim_user *u)
{
    return sim_user_in_group(u, ca->group) || sim_user_in_group(u, "Registration Manager Agents");
}

static void
do_revoke(struct sim_ca *ca, const struct sim_user *u, const struct sim_form *f,
       struct sim_resp *r)
{
    const struct sim_param *op = sim_form_get(f, "op");
    const struct sim_param *rr = sim_form_get(f, "revocationReason");
    const struct sim_param *all = sim_form_get(f, "revokeAll");
    struct sim_cert_rec *rec = calloc(1, sizeof(*rec));
    unsigned long long reason = 0, serial = 0;
    const char *id;
    char num[32];
    size_t l;
    enum cmn_rc rc;

    snprintf(r->op, sizeof(r->op), "revoke");
    if (rec == NULL) {
        form_reply(r, 3, "error", "out of memory");
        return;
    }
    if (!may_revoke(ca, u)) {
        form_reply(r, 3, "error", "unauthorized");
        goto out;
    }
    if (op == NULL || strcmp(op->val, "revoke") != 0 || rr == NULL ||
        cmn_parse_uint(rr->val, 0, 6, &reason) != CMN_OK || all == NULL) {
        form_reply(r, 3, "error", "Invalid revocation request");
        goto out;
    }
    /* revokeAll=(certRecordId=<serial>) */
    id = strstr(all->val, "certRecordId=");
    if (id == NULL) {
        form_reply(r, 3, "error", "Invalid revokeAll filter");
        goto out;
    }
    id += strlen("certRecordId=");
    l = strcspn(id, ")");
    snprintf(num, sizeof(num), "%.*s", (int)(l < sizeof(num) ? l : sizeof(num) - 1), id);
    if (!parse_serial(num, &serial)) {
        form_reply(r, 3, "error", "Invalid certRecordId");
        goto out;
    }
    sim_resp_note(r, "serial=%llu reason=%llu", serial, reason);
    rc = sim_store_cert_get(ca->st, serial, rec);
    if (rc == CMN_ENOTFOUND) {
        form_reply(r, 2, "error", "No certificates are revoked.");
        goto out;
    }
    if (rc != CMN_OK) {
        form_reply(r, 3, "error", "Internal database error");
        goto out;
    }
    if (strcmp(rec->status, "VALID") == 0) {
        rc = sim_store_cert_set_status(ca->st, serial, "VALID", -1, "REVOKED", (int)reason);
    } else if (reason == 1) {
        /* keyCompromise on a revoked certificate: success; superseded or on hold is raised
         * to keyCompromise (§4.3). */
        rc = CMN_OK;
        if (rec->reason == 4 || rec->reason == 6)
            rc = sim_store_cert_set_status(ca->st, serial, "REVOKED", rec->reason, "REVOKED",
                                           1);
    } else {
        form_reply(r, 3, "error", "Certificate already revoked.");
        goto out;
    }
    if (rc != CMN_OK)
        form_reply(r, 3, "error", "Certificate changed meanwhile; retry");
    else
        form_reply(r, 0, "error", "");
out:
    free(rec);
}

static void
unrevoke(struct sim_ca *ca, const struct sim_user *u, const struct sim_form *f,
         struct sim_resp *r)
{
    const struct sim_param *sn = sim_form_get(f, "serialNumber");
    struct sim_cert_rec *rec = calloc(1, sizeof(*rec));
    unsigned long long serial = 0;

    snprintf(r->op, sizeof(r->op), "unrevoke");
    if (rec == NULL) {
        form_reply(r, 3, "error", "out of memory");
        return;
    }
    if (!sim_user_in_group(u, ca->group)) {
        form_reply(r, 3, "error", "unauthorized");
        goto out;
    }
    if (sn == NULL || !parse_serial(sn->val, &serial)) {
        form_reply(r, 3, "error", "Invalid serialNumber");
        goto out;
    }
    sim_resp_note(r, "serial=%llu", serial);
    if (sim_store_cert_get(ca->st, serial, rec) != CMN_OK) {
        form_reply(r, 3, "error", "Certificate not found");
        goto out;
    }
    if (strcmp(rec->status, "REVOKED") != 0 || rec->reason != 6) {
        form_reply(r, 3, "error", "Certificate is not on hold");
        goto out;
    }
    if (sim_store_cert_set_status(ca->st, serial, "REVOKED", 6, "VALID", -1) != CMN_OK)
        form_reply(r, 3, "error", "Certificate changed meanwhile; retry");
    else
        form_reply(r, 0, "error", "");
out:
    free(rec);
}

static void
display(struct sim_ca *ca, const struct sim_form *f, struct sim_resp *r)
{
    const struct sim_param *sn = sim_form_get(f, "serialNumber");
    struct sim_cert_rec *rec = calloc(1, sizeof(*rec));
    unsigned long long serial = 0;

    snprintf(r->op, sizeof(r->op), "getcert");
    r->ctype = "application/xml";
    cmn_buf_reset(&r->body);
    if (rec == NULL || sn == NULL || !parse_serial(sn->val, &serial) ||
        sim_store_cert_get(ca->st, serial, rec) != CMN_OK) {
        (void)cmn_buf_puts(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\" "
                                     "standalone=\"no\"?><xml><header/><fixed><errorDescription>"
                                     "Certificate not found</errorDescription></fixed><records/>"
                                     "</xml>");
        sim_resp_note(r, "found=false");
        free(rec);
        return;
    }
    (void)cmn_buf_printf(&r->body,
                         "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><xml>"
                         "<header><certChainBase64>%s</certChainBase64>",
                         rec->cert_b64);
    if (strcmp(rec->status, "REVOKED") == 0)
        (void)cmn_buf_printf(&r->body, "<revocationReason>%d</revocationReason>", rec->reason);
    (void)cmn_buf_printf(&r->body, "<serialNumber>%llx</serialNumber></header><fixed/>"
                                   "<records/></xml>",
                         serial);
    sim_resp_note(r, "serial=%llu status=%s", serial, rec->status);
    free(rec);
}

void
sim_ca_handle(struct sim_ca *ca, const struct sim_user *u, const char *path,
              const struct sim_form *f, struct sim_resp *r)
{
    if (strcmp(path, "/ca/ee/ca/profileSubmitSSLClient") == 0 ||
        strcmp(path, "/ca/eeca/ca/profileSubmitSSLClient") == 0)
        enroll(ca, u, f, r);
    else if (strcmp(path, "/ca/ee/subsystem/ca/doRevoke") == 0)
        do_revoke(ca, u, f, r);
    else if (strcmp(path, "/ca/ee/subsystem/ca/doUnrevoke") == 0)
        unrevoke(ca, u, f, r);
    else if (strcmp(path, "/ca/ee/ca/displayBySerial") == 0)
        display(ca, f, r);
    else {
        snprintf(r->op, sizeof(r->op), "notfound");
        sim_resp_error_page(r, 404, "The requested resource is not available.");
    }
}

/* ---- setup: the signing key pair the clones share ---- */

static bool
write_pem_key(const char *path, EVP_PKEY *k)
{
    FILE *f;
    bool ok;
    int fd;

    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return false;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return false;
    }
    ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    return fclose(f) == 0 && ok;
}

static bool
write_pem_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    bool ok;

    if (f == NULL)
        return false;
    ok = PEM_write_X509(f, x) == 1;
    return fclose(f) == 0 && ok;
}

enum cmn_rc
sim_ca_init_dir(const char *dir, const char *subject, struct cmn_buf *errs)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX ctx;
    char dn[512], kp[4096], cp[4096];
    enum cmn_rc rc = CMN_ECRYPTO;

    (void)mkdir(dir, 0700);
    snprintf(kp, sizeof(kp), "%s/ca.key", dir);
    snprintf(cp, sizeof(cp), "%s/ca.crt", dir);
    name = make_subject(subject, dn, sizeof(dn));
    if (k == NULL || x == NULL || name == NULL) {
        (void)cmn_buf_printf(errs, "--init-ca: cannot make a key or the name '%s'\n", subject);
        goto out;
    }
    if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400) == NULL ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        X509_set_pubkey(x, k) != 1)
        goto out;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
        !add_ext(x, &ctx, NID_subject_key_identifier, "hash") || X509_sign(x, k, EVP_sha256()) <= 0)
        goto out;
    if (!write_pem_key(kp, k) || !write_pem_cert(cp, x)) {
        (void)cmn_buf_printf(errs, "--init-ca: cannot write %s and %s\n", kp, cp);
        rc = CMN_EIO;
        goto out;
    }
    rc = CMN_OK;
out:
    EVP_PKEY_free(k);
    X509_free(x);
    X509_NAME_free(name);
    ERR_clear_error();
    return rc;
}

/* The KRA's transport certificate is issued by the CA of DIR, so the setup lives here. */
enum cmn_rc
sim_kra_init_dir(const char *dir, struct cmn_buf *errs)
{
    EVP_PKEY *tk = EVP_RSA_gen(2048), *sk = EVP_RSA_gen(2048);
    struct sim_ca ca;
    X509_NAME *name;
    X509 *x = NULL;
    const unsigned char *q;
    uint8_t *der = NULL;
    int der_len = 0;
    long long na;
    char dn[256], p[4096];
    FILE *f;
    static const struct profile transport = {"transport", "critical,keyEncipherment",
                                             "clientAuth", 0, false, false};
    enum cmn_rc rc = CMN_EIO;

    memset(&ca, 0, sizeof(ca));
    ca.days = 3650;
    snprintf(p, sizeof(p), "%s/ca.crt", dir);
    f = fopen(p, "r");
    if (f != NULL) {
        ca.cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/ca.key", dir);
    f = fopen(p, "r");
    if (f != NULL) {
        ca.key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    name = make_subject("CN=DRM Transport Certificate, OU=pki-sim, O=Example", dn, sizeof(dn));
    if (ca.cert == NULL || ca.key == NULL || tk == NULL || sk == NULL || name == NULL) {
        (void)cmn_buf_printf(errs, "--init-kra: needs %s/ca.crt and ca.key (run --init-ca "
                                   "first)\n", dir);
        goto out;
    }
    if (issue(&ca, &transport, name, tk, 2, &der, &der_len, &na) != CMN_OK)
        goto out;
    q = der;
    x = d2i_X509(NULL, &q, der_len);
    snprintf(p, sizeof(p), "%s/kra-transport.crt", dir);
    if (x == NULL || !write_pem_cert(p, x))
        goto out;
    snprintf(p, sizeof(p), "%s/kra-transport.key", dir);
    if (!write_pem_key(p, tk))
        goto out;
    snprintf(p, sizeof(p), "%s/kra-storage.key", dir);
    if (!write_pem_key(p, sk))
        goto out;
    rc = CMN_OK;
out:
    if (rc != CMN_OK && errs->len == 0)
        (void)cmn_buf_printf(errs, "--init-kra: cannot create the KRA keys in %s\n", dir);
    OPENSSL_free(der);
    X509_free(x);
    X509_free(ca.cert);
    EVP_PKEY_free(ca.key);
    EVP_PKEY_free(tk);
    EVP_PKEY_free(sk);
    X509_NAME_free(name);
    ERR_clear_error();
    return rc;
}
