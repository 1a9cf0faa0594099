/* tests/integration/vtoken-personalise.c - test helper: personalises a CoolKey card through
 * PC/SC the way a TPS does (card spec §7.3 "Enroll"), with common/ code for the secure channel
 * and the z0 object: developer keys, PIN 0, on-card RSA key generation (proof checked), a
 * certificate from a throwaway test CA, z0 written, life cycle 0F.
 *
 *   vtoken-personalise --reader NAME --pin-file F --out DIR [--proto 1|2|3] [--bits 1024|2048]
 *                      [--label L] [--token-name N] [--url URL]
 * Writes DIR/cert.pem (the card's certificate), DIR/ca.pem and DIR/pub.pem. Exit 0 on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <winscard.h>

#include "common/apdu.h"
#include "common/buf.h"
#include "common/crypto.h"
#include "common/p11obj.h"
#include "common/scp.h"

#define CHUNK 0xD0 /* WRITE/READ OBJECT chunk of the TPS (§6.3) */

struct conn {
    SCARDCONTEXT ctx;
    SCARDHANDLE h;
    DWORD proto;
    struct cmn_scp scp;
};

static void
die(const char *what, long code)
{
    fprintf(stderr, "vtoken-personalise: %s (%lX)\n", what, code);
    exit(1);
}

/* Sends an APDU; returns the SW and copies the data. */
static uint16_t
xmit(struct conn *c, const struct cmn_apdu *a, uint8_t *resp, size_t *rlen)
{
    uint8_t w[CMN_APDU_MAX_WIRE], r[600];
    size_t n = 0;
    DWORD rl = sizeof(r);
    SCARD_IO_REQUEST pci = {c->proto, sizeof(SCARD_IO_REQUEST)};
    LONG rv;

    if (cmn_apdu_encode(a, w, sizeof(w), &n) != CMN_OK)
        die("cannot encode APDU", a->ins);
    rv = SCardTransmit(c->h, &pci, w, (DWORD)n, NULL, r, &rl);
    if (rv != SCARD_S_SUCCESS || rl < 2)
        die("SCardTransmit failed", (long)rv);
    if (resp != NULL)
        memcpy(resp, r, rl - 2);
    if (rlen != NULL)
        *rlen = rl - 2;
    return (uint16_t)(r[rl - 2] << 8 | r[rl - 1]);
}

static void
mk(struct cmn_apdu *a, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const void *d, size_t lc)
{
    memset(a, 0, sizeof(*a));
    a->cla = cla;
    a->ins = ins;
    a->p1 = p1;
    a->p2 = p2;
    if (lc > 0)
        memcpy(a->data, d, lc);
    a->lc = lc;
    a->le = -1;
}

static uint16_t
plain(struct conn *c, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const void *d, size_t lc,
      int le, uint8_t *resp, size_t *rlen)
{
    struct cmn_apdu a;

    mk(&a, cla, ins, p1, p2, d, lc);
    a.le = le;
    return xmit(c, &a, resp, rlen);
}

static uint16_t
secure(struct conn *c, uint8_t ins, uint8_t p1, uint8_t p2, const void *d, size_t lc,
       uint8_t *resp, size_t *rlen)
{
    struct cmn_apdu a, w;

    mk(&a, 0x84, ins, p1, p2, d, lc);
    if (cmn_scp_wrap(&c->scp, &a, &w) != CMN_OK)
        die("cannot wrap", ins);
    return xmit(c, &w, resp, rlen);
}

static void
expect(uint16_t sw, uint16_t want, const char *what)
{
    if (sw != want) {
        fprintf(stderr, "vtoken-personalise: %s: SW %04X, expected %04X\n", what, sw, want);
        exit(1);
    }
}

static void
open_channel(struct conn *c, enum cmn_scp_proto proto)
{
    uint8_t hc[8], r[64];
    size_t rl = 0;
    struct cmn_scp_iu iu;
    struct cmn_keyset dev;
    struct cmn_apdu a;

    if (cmn_crypto_random(hc, sizeof(hc)) != CMN_OK)
        die("no random", 0);
    cmn_scp_iu_apdu(0, 0, hc, -1, &a);
    expect(xmit(c, &a, r, &rl), 0x9000, "INITIALIZE UPDATE");
    if (cmn_scp_iu_parse(proto, r, rl, &iu) != CMN_OK)
        die("bad INITIALIZE UPDATE answer (wrong --proto?)", (long)rl);
    cmn_keyset_developer(&dev, proto, iu.key_version);
    if (cmn_scp_init(&c->scp, proto) != CMN_OK ||
        cmn_scp_set_challenges(&c->scp, hc, iu.card_challenge, iu.card_challenge_len,
                               proto == CMN_SCP02 ? iu.seq : NULL) != CMN_OK ||
        cmn_scp_derive(&c->scp, &dev) != CMN_OK)
        die("cannot derive session keys", 0);
    if (cmn_scp_verify_card_cryptogram(&c->scp, iu.card_cryptogram) != CMN_OK)
        die("card cryptogram does not verify", 0);
    if (cmn_scp_ext_auth_build(&c->scp, CMN_SCP_LEVEL_MAC_ENC, NULL, &a) != CMN_OK)
        die("cannot build EXTERNAL AUTHENTICATE", 0);
    expect(xmit(c, &a, NULL, NULL), 0x9000, "EXTERNAL AUTHENTICATE");
    cmn_keyset_wipe(&dev);
}

static EVP_PKEY *
rsa_from(const uint8_t *n, size_t nl, const uint8_t *e, size_t el)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);

    if (b != NULL && bn != NULL && be != NULL &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) == 1 &&
        (p = OSSL_PARAM_BLD_to_param(b)) != NULL && ctx != NULL &&
        EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, p);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn);
    BN_free(be);
    return pk;
}

static X509 *
make_cert(EVP_PKEY *subject_key, const char *cn, EVP_PKEY *issuer_key, X509 *issuer, bool ca)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    if (x == NULL || nm == NULL)
        die("no memory", 0);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 30);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"tpsgw test", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, nm);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : nm);
    X509_set_pubkey(x, subject_key);
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE"
                                                                   : "critical,CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
                              ca ? "critical,keyCertSign,cRLSign"
                                 : "critical,digitalSignature,nonRepudiation");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
        die("cannot sign certificate", 0);
    X509_NAME_free(nm);
    return x;
}

static void
write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *pub)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL)
        die("cannot write output", 0);
    if (x != NULL)
        PEM_write_X509(f, x);
    else
        PEM_write_PUBKEY(f, pub);
    fclose(f);
}

static void
read_pin(const char *path, char *pin, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL || fgets(pin, (int)cap, f) == NULL)
        die("cannot read the PIN file", 0);
    fclose(f);
    n = strcspn(pin, "\r\n");
    pin[n] = '\0';
    if (n < 4 || n > 16)
        die("PIN must be 4..16 characters", (long)n);
}

int
main(int argc, char **argv)
{
    const char *reader = NULL, *out = NULL, *pinfile = NULL, *label = "Signing Cert";
    const char *token_name = "vtoken user", *url = "http://127.0.0.1:8080/tps/phoneHome";
    enum cmn_scp_proto proto = CMN_SCP01;
    unsigned bits = 1024;
    struct conn c;
    char pin[32];
    uint8_t r[600], d[256], cuid[10], challenge[16], wrapped[16], io[1024], issuer[224];
    size_t rl = 0, total, off;
    struct cmn_keyset dev;
    struct cmn_p11obj z;
    struct cmn_buf zb;
    DWORD active;
    LONG rv;
    EVP_PKEY *cardkey, *cakey;
    X509 *ca, *cert;
    unsigned char *der = NULL;
    int derlen;
    uint16_t objver;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--reader") == 0)
            reader = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--pin-file") == 0)
            pinfile = argv[i + 1];
        else if (strcmp(argv[i], "--proto") == 0)
            proto = (enum cmn_scp_proto)(argv[i + 1][0] - '0');
        else if (strcmp(argv[i], "--bits") == 0)
            bits = strcmp(argv[i + 1], "2048") == 0 ? 2048 : 1024;
        else if (strcmp(argv[i], "--label") == 0)
            label = argv[i + 1];
        else if (strcmp(argv[i], "--token-name") == 0)
            token_name = argv[i + 1];
        else if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else
            die("unknown option", i);
    }
    if (reader == NULL || out == NULL || pinfile == NULL || proto < CMN_SCP01 ||
        proto > CMN_SCP03) {
        fprintf(stderr, "usage: vtoken-personalise --reader NAME --pin-file F --out DIR "
                        "[--proto 1|2|3] [--bits 1024|2048] [--label L] [--token-name N]\n");
        return 2;
    }
    read_pin(pinfile, pin, sizeof(pin));
    memset(&c, 0, sizeof(c));
    rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c.ctx);
    if (rv != SCARD_S_SUCCESS)
        die("SCardEstablishContext", (long)rv);
    rv = SCardConnect(c.ctx, reader, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, &c.h, &active);
    if (rv != SCARD_S_SUCCESS)
        die("SCardConnect", (long)rv);
    c.proto = active;

    /* identify: ISD, CPLC → CUID (§2.3) */
    expect(plain(&c, 0x00, 0xA4, 0x04, 0x00, "\xA0\x00\x00\x00\x03\x00\x00", 7, -1, NULL, NULL),
           0x9000, "SELECT ISD");
    expect(plain(&c, 0x80, 0xCA, 0x9F, 0x7F, NULL, 0, 0x2D, r, &rl), 0x9000, "GET DATA CPLC");
    if (rl != 45)
        die("CPLC length", (long)rl);
    memcpy(cuid, r + 3, 4);
    memcpy(cuid + 4, r + 19, 2);
    memcpy(cuid + 6, r + 15, 4);
    expect(plain(&c, 0x00, 0xA4, 0x04, 0x00, "\x62\x76\x01\xFF\x00\x00\x00", 7, -1, NULL, NULL),
           0x9000, "SELECT CoolKey");
    open_channel(&c, proto);

    /* PIN 0: create, or reset it when it exists (§7.3 enroll, PIN reset) */
    if (secure(&c, 0x40, 0x00, 0x7F, pin, strlen(pin), NULL, NULL) != 0x9000)
        expect(secure(&c, 0x04, 0x00, 0x00, pin, strlen(pin), NULL, NULL), 0x9000, "SET PIN");

    /* GENERATE KEY: private 2 (user PIN 0), public 3, challenge under the static KEK (§3.4) */
    cmn_keyset_developer(&dev, proto, 1);
    if (cmn_crypto_random(challenge, sizeof(challenge)) != CMN_OK ||
        cmn_scp_challenge_encrypt(&dev.kek, challenge, wrapped) != CMN_OK)
        die("cannot wrap the challenge", 0);
    d[0] = 0x80;
    d[1] = (uint8_t)(bits >> 8);
    d[2] = (uint8_t)bits;
    d[3] = 0x00;
    d[4] = 0x00;
    d[5] = 0x10;
    memcpy(d + 6, wrapped, 16);
    d[22] = 0x00;
    expect(secure(&c, 0x0C, 0x02, 0x03, d, 23, r, &rl), 0x9000, "GENERATE KEY");
    if (rl != 2)
        die("GENERATE KEY answer", (long)rl);
    total = (size_t)(r[0] << 8 | r[1]);
    if (total > sizeof(io))
        die("key generation output too large", (long)total);
    for (off = 0; off < total; off += rl) {
        size_t n = total - off < CHUNK ? total - off : CHUNK;

        memcpy(d, "\xFF\xFF\xFF\xFF", 4);
        cmn_put_u32(d + 4, (uint32_t)off);
        d[8] = (uint8_t)n;
        expect(secure(&c, 0x56, 0x00, 0x00, d, 9, io + off, &rl), 0x9000, "READ OBJECT FFFFFFFF");
        if (rl != n)
            die("short read", (long)rl);
    }
    {
        /* blobLen blob proofLen proof; blob = 00 01 keySize modLen mod expLen exp */
        size_t bl = (size_t)(io[0] << 8 | io[1]), ml, el, pl;
        const uint8_t *blob = io + 2;
        EVP_MD_CTX *md = EVP_MD_CTX_new();

        ml = (size_t)(blob[4] << 8 | blob[5]);
        el = (size_t)(blob[6 + ml] << 8 | blob[7 + ml]);
        pl = (size_t)(io[2 + bl] << 8 | io[3 + bl]);
        if (bl != 8 + ml + el || 4 + bl + pl != total)
            die("malformed key generation output", (long)bl);
        cardkey = rsa_from(blob + 6, ml, blob + 8 + ml, el);
        if (cardkey == NULL || md == NULL ||
            EVP_DigestVerifyInit(md, NULL, EVP_sha1(), NULL, cardkey) != 1 ||
            EVP_DigestVerifyUpdate(md, blob, bl) != 1 ||
            EVP_DigestVerifyUpdate(md, challenge, sizeof(challenge)) != 1 ||
            EVP_DigestVerifyFinal(md, io + 4 + bl, pl) != 1)
            die("key generation proof does not verify", 0);
        EVP_MD_CTX_free(md);
    }

    /* a throwaway CA certifies the card's key */
    cakey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (cakey == NULL)
        die("CA key", 0);
    ca = make_cert(cakey, "vtoken test CA", cakey, NULL, true);
    cert = make_cert(cardkey, token_name, cakey, ca, false);
    write_pem(out, "ca.pem", ca, NULL);
    write_pem(out, "cert.pem", cert, NULL);
    write_pem(out, "pub.pem", NULL, cardkey);
    derlen = i2d_X509(cert, &der);
    if (derlen <= 0)
        die("certificate encoding", 0);

    /* z0: c1 + k3 + k2, zlib-compressed (§6.3), written in D0 chunks */
    if (cmn_crypto_random((uint8_t *)&objver, sizeof(objver)) != CMN_OK)
        die("no random", 0);
    cmn_p11obj_init(&z, cuid, token_name, (uint16_t)(objver % 1000));
    if (cmn_p11obj_add_cert(&z, 1, label, der, (size_t)derlen, CMN_P11_CKK_RSA,
                            CMN_P11OBJ_USE_SIGN) != CMN_OK)
        die("z0 build", 0);
    cmn_buf_init(&zb, 32768);
    if (cmn_p11obj_encode(&z, true, &zb) != CMN_OK)
        die("z0 encode", 0);
    if (zb.len < 255)
        die("z0 shorter than the 255 bytes coolkey reads first", (long)zb.len);
    cmn_put_u32(d, CMN_P11OBJ_Z0);
    cmn_put_u32(d + 4, (uint32_t)zb.len);
    memcpy(d + 8, "\xFF\xFF\x40\x00\x40\x00", 6);
    expect(secure(&c, 0x5A, 0x00, 0x00, d, 14, NULL, NULL), 0x9000, "CREATE OBJECT z0");
    for (off = 0; off < zb.len; off += CHUNK) {
        size_t n = zb.len - off < CHUNK ? zb.len - off : CHUNK;

        cmn_put_u32(d, CMN_P11OBJ_Z0);
        cmn_put_u32(d + 4, (uint32_t)off);
        d[8] = (uint8_t)n;
        memcpy(d + 9, zb.data + off, n);
        expect(secure(&c, 0x54, 0x00, 0x00, d, 9 + n, NULL, NULL), 0x9000, "WRITE OBJECT z0");
    }
    memset(issuer, 0, sizeof(issuer));
    memcpy(issuer, url, strlen(url) < sizeof(issuer) ? strlen(url) : sizeof(issuer));
    expect(secure(&c, 0xF4, 0x00, 0x00, issuer, sizeof(issuer), NULL, NULL), 0x9000,
           "SET ISSUER INFO");
    expect(secure(&c, 0xF0, 0x0F, 0x00, NULL, 0, NULL, NULL), 0x9000, "SET LIFE CYCLE");

    printf("personalised: cuid=");
    for (int i = 0; i < 10; i++)
        printf("%02X", cuid[i]);
    printf(" z0=%zu bytes rsa=%u\n", zb.len, bits);
    cmn_scp_cleanup(&c.scp);
    cmn_keyset_wipe(&dev);
    cmn_wipe(pin, sizeof(pin));
    cmn_buf_cleanup(&zb);
    cmn_p11obj_cleanup(&z);
    OPENSSL_free(der);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(cardkey);
    SCardDisconnect(c.h, SCARD_RESET_CARD);
    SCardReleaseContext(c.ctx);
    return 0;
}
