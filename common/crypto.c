/* common/crypto.c - symmetric primitives of the secure channels on OpenSSL 3 EVP: ciphers,
 * ISO 9797-1 padding/MACs, AES-CMAC, HMAC-SHA256, KCVs and the two KDFs (card spec §4.1). */
#include "common/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/buf.h"

#define KDF_CTX_MAX 64

enum cmn_rc
cmn_key_set(struct cmn_key *k, enum cmn_key_alg alg, const uint8_t *v, size_t len)
{
    struct cmn_key t = {.alg = alg, .len = len};

    if (len > CMN_KEY_MAX || v == NULL)
        return CMN_EINVAL;
    memcpy(t.v, v, len);
    if (!cmn_key_valid(&t)) {
        OPENSSL_cleanse(&t, sizeof(t));
        return CMN_EINVAL;
    }
    *k = t;
    OPENSSL_cleanse(&t, sizeof(t));
    return CMN_OK;
}

void
cmn_key_wipe(struct cmn_key *k)
{
    if (k != NULL)
        OPENSSL_cleanse(k, sizeof(*k));
}

bool
cmn_key_valid(const struct cmn_key *k)
{
    if (k == NULL)
        return false;
    switch (k->alg) {
    case CMN_KEY_DES3:
        return k->len == 16 || k->len == 24;
    case CMN_KEY_AES:
        return k->len == 16 || k->len == 24 || k->len == 32;
    }
    return false;
}

/* Runs one EVP cipher without padding over whole blocks. */
static enum cmn_rc
evp_run(const EVP_CIPHER *c, const uint8_t *key, const uint8_t *iv, bool encrypt,
        const uint8_t *in, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    enum cmn_rc rc = CMN_ECRYPTO;
    int outl = 0, finl = 0;

    if (n == 0)
        return CMN_OK;
    if (n > INT_MAX)
        return CMN_ETOOBIG;
    if (c == NULL)
        goto out;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto out;
    if (EVP_CipherInit_ex(ctx, c, NULL, key, iv, encrypt ? 1 : 0) != 1)
        goto out;
    if (EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)n) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + outl, &finl) != 1)
        goto out;
    if ((size_t)outl + (size_t)finl != n)
        goto out;
    rc = CMN_OK;
out:
    if (rc != CMN_OK)
        ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx); /* wipes its key schedule */
    return rc;
}

/* Expands a 16-byte (K1K2) or 24-byte key to the 24 bytes DES-EDE3 takes. */
static bool
des3_key24(const uint8_t *key, size_t key_len, uint8_t k24[24])
{
    if (key == NULL)
        return false;
    if (key_len == 16) {
        memcpy(k24, key, 16);
        memcpy(k24 + 16, key, 8);
        return true;
    }
    if (key_len == 24) {
        memcpy(k24, key, 24);
        return true;
    }
    return false;
}

enum cmn_rc
cmn_crypto_des3_ecb(const uint8_t *key, size_t key_len, bool encrypt, const uint8_t *in, size_t n,
                    uint8_t *out)
{
    uint8_t k24[24];
    enum cmn_rc rc;

    if (n % CMN_DES_BLOCK != 0 || !des3_key24(key, key_len, k24))
        return CMN_EINVAL;
    rc = evp_run(EVP_des_ede3_ecb(), k24, NULL, encrypt, in, n, out);
    OPENSSL_cleanse(k24, sizeof(k24));
    return rc;
}

enum cmn_rc
cmn_crypto_des3_cbc(const uint8_t *key, size_t key_len, const uint8_t *iv, bool encrypt,
                    const uint8_t *in, size_t n, uint8_t *out)
{
    static const uint8_t zero[CMN_DES_BLOCK];
    uint8_t k24[24];
    enum cmn_rc rc;

    if (n % CMN_DES_BLOCK != 0 || !des3_key24(key, key_len, k24))
        return CMN_EINVAL;
    rc = evp_run(EVP_des_ede3_cbc(), k24, iv != NULL ? iv : zero, encrypt, in, n, out);
    OPENSSL_cleanse(k24, sizeof(k24));
    return rc;
}

enum cmn_rc
cmn_crypto_des_ecb(const uint8_t key[8], bool encrypt, const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t k24[24];
    enum cmn_rc rc;

    if (key == NULL || n % CMN_DES_BLOCK != 0)
        return CMN_EINVAL;
    /* K1=K2=K3: EDE collapses to single DES, without the legacy provider. */
    memcpy(k24, key, 8);
    memcpy(k24 + 8, key, 8);
    memcpy(k24 + 16, key, 8);
    rc = evp_run(EVP_des_ede3_ecb(), k24, NULL, encrypt, in, n, out);
    OPENSSL_cleanse(k24, sizeof(k24));
    return rc;
}

enum cmn_rc
cmn_crypto_des_cbc(const uint8_t key[8], const uint8_t *iv, bool encrypt, const uint8_t *in,
                   size_t n, uint8_t *out)
{
    static const uint8_t zero[CMN_DES_BLOCK];
    uint8_t k24[24];
    enum cmn_rc rc;

    if (key == NULL || n % CMN_DES_BLOCK != 0)
        return CMN_EINVAL;
    memcpy(k24, key, 8);
    memcpy(k24 + 8, key, 8);
    memcpy(k24 + 16, key, 8);
    rc = evp_run(EVP_des_ede3_cbc(), k24, iv != NULL ? iv : zero, encrypt, in, n, out);
    OPENSSL_cleanse(k24, sizeof(k24));
    return rc;
}

static const EVP_CIPHER *
aes_cipher(size_t key_len, bool cbc)
{
    switch (key_len) {
    case 16:
        return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ecb();
    case 24:
        return cbc ? EVP_aes_192_cbc() : EVP_aes_192_ecb();
    case 32:
        return cbc ? EVP_aes_256_cbc() : EVP_aes_256_ecb();
    default:
        return NULL;
    }
}

enum cmn_rc
cmn_crypto_aes_ecb(const uint8_t *key, size_t key_len, bool encrypt, const uint8_t *in, size_t n,
                   uint8_t *out)
{
    if (key == NULL || aes_cipher(key_len, false) == NULL || n % CMN_AES_BLOCK != 0)
        return CMN_EINVAL;
    return evp_run(aes_cipher(key_len, false), key, NULL, encrypt, in, n, out);
}

enum cmn_rc
cmn_crypto_aes_cbc(const uint8_t *key, size_t key_len, const uint8_t *iv, bool encrypt,
                   const uint8_t *in, size_t n, uint8_t *out)
{
    static const uint8_t zero[CMN_AES_BLOCK];

    if (key == NULL || aes_cipher(key_len, true) == NULL || n % CMN_AES_BLOCK != 0)
        return CMN_EINVAL;
    return evp_run(aes_cipher(key_len, true), key, iv != NULL ? iv : zero, encrypt, in, n, out);
}

static enum cmn_rc
key_crypt(const struct cmn_key *k, bool encrypt, const uint8_t *in, size_t n, uint8_t *out)
{
    if (!cmn_key_valid(k))
        return CMN_EINVAL;
    if (k->alg == CMN_KEY_DES3)
        return cmn_crypto_des3_ecb(k->v, k->len, encrypt, in, n, out);
    return cmn_crypto_aes_cbc(k->v, k->len, NULL, encrypt, in, n, out);
}

enum cmn_rc
cmn_key_encrypt(const struct cmn_key *k, const uint8_t *in, size_t n, uint8_t *out)
{
    return key_crypt(k, true, in, n, out);
}

enum cmn_rc
cmn_key_decrypt(const struct cmn_key *k, const uint8_t *in, size_t n, uint8_t *out)
{
    return key_crypt(k, false, in, n, out);
}

enum cmn_rc
cmn_pad80(uint8_t *buf, size_t len, size_t cap, size_t block, bool always, size_t *out_len)
{
    size_t n;

    if (buf == NULL || out_len == NULL || (block != 8 && block != 16) || len > cap)
        return CMN_EINVAL;
    if (!always && len % block == 0) {
        *out_len = len;
        return CMN_OK;
    }
    n = (len / block + 1) * block;
    if (n > cap)
        return CMN_ETOOBIG;
    buf[len] = 0x80;
    memset(buf + len + 1, 0, n - len - 1);
    *out_len = n;
    return CMN_OK;
}

enum cmn_rc
cmn_unpad80(const uint8_t *buf, size_t len, size_t block, size_t *plain_len)
{
    size_t i;

    if (buf == NULL || plain_len == NULL || (block != 8 && block != 16))
        return CMN_EINVAL;
    if (len == 0 || len % block != 0)
        return CMN_EINVAL;
    i = len;
    while (i > 0 && buf[i - 1] == 0x00 && len - i < block)
        i--;
    if (i == 0 || buf[i - 1] != 0x80 || len - (i - 1) > block)
        return CMN_EINVAL;
    *plain_len = i - 1;
    return CMN_OK;
}

enum mac_kind { MAC_FULL3DES, MAC_RETAIL };

/* CBC-MAC over msg padded with method 2, block by block without allocation. MAC3 encrypts
 * every block with 3DES; the retail MAC uses single DES (key[0..7]) for all but the last. */
static enum cmn_rc
des_cbc_mac(enum mac_kind kind, const uint8_t *key, size_t key_len, const uint8_t *icv,
            const uint8_t *msg, size_t n, uint8_t mac[8])
{
    uint8_t chain[8], blk[8];
    size_t off = 0, total;
    enum cmn_rc rc = CMN_OK;

    if (mac == NULL || (msg == NULL && n != 0))
        return CMN_EINVAL;
    if (kind == MAC_RETAIL && key_len != 16)
        return CMN_EINVAL;
    if (kind == MAC_FULL3DES && key_len != 16 && key_len != 24)
        return CMN_EINVAL;
    if (icv != NULL)
        memcpy(chain, icv, 8);
    else
        memset(chain, 0, 8);
    total = (n / 8 + 1) * 8; /* method 2 always adds at least the 80 byte */
    while (off < total) {
        size_t take = n > off ? n - off : 0;

        if (take >= 8) {
            memcpy(blk, msg + off, 8);
        } else {
            memset(blk, 0, 8);
            if (take > 0)
                memcpy(blk, msg + off, take);
            if (n >= off) /* the 80 falls in this block */
                blk[take] = 0x80;
        }
        for (size_t i = 0; i < 8; i++)
            blk[i] ^= chain[i];
        off += 8;
        if (kind == MAC_RETAIL && off < total)
            rc = cmn_crypto_des_ecb(key, true, blk, 8, chain);
        else
            rc = cmn_crypto_des3_ecb(key, key_len, true, blk, 8, chain);
        if (rc != CMN_OK)
            goto out;
    }
    memcpy(mac, chain, 8);
out:
    OPENSSL_cleanse(chain, sizeof(chain));
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

enum cmn_rc
cmn_crypto_mac3(const uint8_t *key, size_t key_len, const uint8_t *icv, const uint8_t *msg,
                size_t n, uint8_t mac[8])
{
    if (key == NULL)
        return CMN_EINVAL;
    return des_cbc_mac(MAC_FULL3DES, key, key_len, icv, msg, n, mac);
}

enum cmn_rc
cmn_crypto_retail_mac(const uint8_t key[16], const uint8_t *icv, const uint8_t *msg, size_t n,
                      uint8_t mac[8])
{
    if (key == NULL)
        return CMN_EINVAL;
    return des_cbc_mac(MAC_RETAIL, key, 16, icv, msg, n, mac);
}

/* One-shot EVP_MAC (CMAC or HMAC). */
static enum cmn_rc
q_mac(const char *name, const char *sub, const uint8_t *key, size_t key_len, const uint8_t *msg,
      size_t n, uint8_t *out, size_t out_len)
{
    uint8_t tmp[64];
    size_t got = 0;
    static const uint8_t empty[1];
    enum cmn_rc rc = CMN_ECRYPTO;

    if (EVP_Q_mac(NULL, name, NULL, sub, NULL, key, key_len, n != 0 ? msg : empty, n, tmp,
                  sizeof(tmp), &got) == NULL ||
        got != out_len) {
        ERR_clear_error();
        goto out;
    }
    memcpy(out, tmp, out_len);
    rc = CMN_OK;
out:
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return rc;
}

enum cmn_rc
cmn_crypto_aes_cmac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t n,
                    uint8_t mac[16])
{
    const char *c;

    if (key == NULL || mac == NULL || (msg == NULL && n != 0))
        return CMN_EINVAL;
    switch (key_len) {
    case 16:
        c = "AES-128-CBC";
        break;
    case 24:
        c = "AES-192-CBC";
        break;
    case 32:
        c = "AES-256-CBC";
        break;
    default:
        return CMN_EINVAL;
    }
    return q_mac("CMAC", c, key, key_len, msg, n, mac, 16);
}

enum cmn_rc
cmn_crypto_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t n,
                       uint8_t mac[32])
{
    if (key == NULL || key_len == 0 || key_len > 1024 || mac == NULL || (msg == NULL && n != 0))
        return CMN_EINVAL;
    return q_mac("HMAC", "SHA256", key, key_len, msg, n, mac, 32);
}

enum cmn_rc
cmn_crypto_kcv_des(const uint8_t *key, size_t key_len, uint8_t kcv[3])
{
    static const uint8_t zero[8];
    uint8_t out[8];
    enum cmn_rc rc;

    rc = cmn_crypto_des3_ecb(key, key_len, true, zero, 8, out);
    if (rc == CMN_OK)
        memcpy(kcv, out, 3);
    OPENSSL_cleanse(out, sizeof(out));
    return rc;
}

enum cmn_rc
cmn_crypto_kcv_aes(const uint8_t *key, size_t key_len, uint8_t kcv[3])
{
    uint8_t in[16], out[16];
    enum cmn_rc rc;

    memset(in, 0x01, sizeof(in));
    rc = cmn_crypto_aes_cbc(key, key_len, NULL, true, in, 16, out);
    if (rc == CMN_OK)
        memcpy(kcv, out, 3);
    OPENSSL_cleanse(out, sizeof(out));
    return rc;
}

enum cmn_rc
cmn_key_kcv(const struct cmn_key *k, uint8_t kcv[3])
{
    if (!cmn_key_valid(k))
        return CMN_EINVAL;
    if (k->alg == CMN_KEY_DES3)
        return cmn_crypto_kcv_des(k->v, k->len, kcv);
    return cmn_crypto_kcv_aes(k->v, k->len, kcv);
}

void
cmn_crypto_des_parity(uint8_t *key, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = key[i] & 0xFE;
        unsigned ones = 0;

        for (unsigned bit = 1; bit < 8; bit++)
            ones += (b >> bit) & 1u;
        key[i] = (uint8_t)(b | ((ones & 1u) == 0 ? 1u : 0u));
    }
}

enum cmn_rc
cmn_crypto_random(uint8_t *out, size_t n)
{
    if (out == NULL || n > INT_MAX)
        return CMN_EINVAL;
    if (n == 0)
        return CMN_OK;
    if (RAND_bytes(out, (int)n) != 1) {
        ERR_clear_error();
        return CMN_ECRYPTO;
    }
    return CMN_OK;
}

enum cmn_rc
cmn_kdf_sp800_108_hmac(const uint8_t *key, size_t key_len, uint8_t label, const uint8_t *ctx,
                       size_t ctx_len, uint8_t *out, size_t out_len)
{
    uint8_t msg[3 + KDF_CTX_MAX + 2], blk[32];
    size_t done = 0, mlen;
    unsigned i = 1;
    enum cmn_rc rc = CMN_OK;

    if (out == NULL || out_len == 0 || out_len > 8191 || ctx_len > KDF_CTX_MAX ||
        (ctx == NULL && ctx_len != 0))
        return CMN_EINVAL;
    /* card spec §4.2: i || label || 00 || context || L(2, bits) */
    msg[1] = label;
    msg[2] = 0x00;
    if (ctx_len > 0)
        memcpy(msg + 3, ctx, ctx_len);
    cmn_put_u16(msg + 3 + ctx_len, (uint16_t)(out_len * 8));
    mlen = 3 + ctx_len + 2;
    while (done < out_len) {
        size_t take = out_len - done < 32 ? out_len - done : 32;

        if (i > 255) {
            rc = CMN_EINVAL;
            goto out;
        }
        msg[0] = (uint8_t)i;
        rc = cmn_crypto_hmac_sha256(key, key_len, msg, mlen, blk);
        if (rc != CMN_OK)
            goto out;
        memcpy(out + done, blk, take);
        done += take;
        i++;
    }
out:
    OPENSSL_cleanse(blk, sizeof(blk));
    OPENSSL_cleanse(msg, sizeof(msg));
    return rc;
}

enum cmn_rc
cmn_kdf_scp03(const uint8_t *key, size_t key_len, uint8_t constant, const uint8_t *ctx,
              size_t ctx_len, unsigned l_bits, uint8_t *out)
{
    uint8_t msg[16 + KDF_CTX_MAX], blk[16];
    size_t out_len = l_bits / 8, done = 0;
    enum cmn_rc rc = CMN_OK;

    if (out == NULL || (l_bits != 64 && l_bits != 128 && l_bits != 192 && l_bits != 256) ||
        ctx_len > KDF_CTX_MAX || (ctx == NULL && ctx_len != 0))
        return CMN_EINVAL;
    /* card spec §4.5: 00x11 || constant || 00 || L(2) || i || context */
    memset(msg, 0, 11);
    msg[11] = constant;
    msg[12] = 0x00;
    cmn_put_u16(msg + 13, (uint16_t)l_bits);
    if (ctx_len > 0)
        memcpy(msg + 16, ctx, ctx_len);
    for (uint8_t i = 1; done < out_len; i++) {
        size_t take = out_len - done < 16 ? out_len - done : 16;

        msg[15] = i;
        rc = cmn_crypto_aes_cmac(key, key_len, msg, 16 + ctx_len, blk);
        if (rc != CMN_OK)
            goto out;
        memcpy(out + done, blk, take);
        done += take;
    }
out:
    OPENSSL_cleanse(blk, sizeof(blk));
    OPENSSL_cleanse(msg, sizeof(msg));
    return rc;
}

const char *
cmn_ec_curve(unsigned key_bits)
{
    switch (key_bits) {
    case 256:
        return "P-256";
    case 384:
        return "P-384";
    default:
        return NULL;
    }
}
