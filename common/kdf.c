/* common/kdf.c - card static key diversification (VISA2, EMV, NIST SP800-108, GP-KMC, none)
 * and the TKS rule choosing developer keys or a master key (card spec §4.2, backends §3.2). */
#include "common/kdf.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "common/buf.h"

enum cmn_rc
cmn_kdf_divers_parse(const char *name, enum cmn_divers *out)
{
    static const struct {
        const char *name;
        enum cmn_divers m;
    } tbl[] = {
        {"none", CMN_DIVERS_NONE},   {"visa2", CMN_DIVERS_VISA2},
        {"emv", CMN_DIVERS_EMV},     {"gpkmc", CMN_DIVERS_GPKMC},
        {"nist", CMN_DIVERS_NIST},   {"nistsp800-108", CMN_DIVERS_NIST},
    };

    if (name == NULL || out == NULL)
        return CMN_EINVAL;
    for (size_t i = 0; i < sizeof(tbl) / sizeof(tbl[0]); i++) {
        if (strcasecmp(name, tbl[i].name) == 0) {
            *out = tbl[i].m;
            return CMN_OK;
        }
    }
    return CMN_EINVAL;
}

/* VISA2 / EMV: 3DES-ECB(MK, 16 bytes of diversification data). */
static enum cmn_rc
divers_3des(enum cmn_divers method, const struct cmn_key *mk, uint8_t t, const uint8_t kdd[10],
            enum cmn_key_alg out_alg, struct cmn_key *out)
{
    uint8_t d[16], k[16];
    enum cmn_rc rc;

    if (mk->alg != CMN_KEY_DES3 || kdd == NULL)
        return CMN_EINVAL;
    if (method == CMN_DIVERS_VISA2) {
        /* §4.2: KDD[0..1] || KDD[4..7] || F0 || t, then the same with 0F */
        d[0] = kdd[0];
        d[1] = kdd[1];
        memcpy(d + 2, kdd + 4, 4);
    } else {
        /* EMV: KDD[4..9] || F0 || t, then the same with 0F */
        memcpy(d, kdd + 4, 6);
    }
    d[6] = 0xF0;
    d[7] = t;
    memcpy(d + 8, d, 6);
    d[14] = 0x0F;
    d[15] = t;
    rc = cmn_crypto_des3_ecb(mk->v, mk->len, true, d, 16, k);
    if (rc == CMN_OK)
        rc = cmn_key_set(out, out_alg, k, 16);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(d, sizeof(d));
    return rc;
}

/* NIST SP800-108 (HMAC-SHA256, label 04, L 384 bits): enc, mac, kek = 3 x 16 bytes. */
static enum cmn_rc
divers_nist(const struct cmn_key *mk, uint8_t t, const uint8_t ctx[10], enum cmn_key_alg out_alg,
            struct cmn_key *out)
{
    uint8_t k[48];
    enum cmn_rc rc;

    if (t < CMN_KDF_ENC || t > CMN_KDF_KEK || out_alg != CMN_KEY_DES3 || ctx == NULL)
        return CMN_EINVAL;
    rc = cmn_kdf_sp800_108_hmac(mk->v, mk->len, 0x04, ctx, 10, k, sizeof(k));
    if (rc == CMN_OK) {
        cmn_crypto_des_parity(k, sizeof(k));
        rc = cmn_key_set(out, CMN_KEY_DES3, k + 16 * (t - 1), 16);
    }
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

/* GP-KMC: per 16-byte block n, AES-CMAC(MK, n 000000 c 000000 CUID6..9 CUID4..5 L(2)). */
static enum cmn_rc
divers_gpkmc(const struct cmn_key *mk, uint8_t t, const uint8_t cuid[10], struct cmn_key *out)
{
    uint8_t m[16], k[CMN_KEY_MAX], blk[16];
    enum cmn_rc rc = CMN_OK;

    if (mk->alg != CMN_KEY_AES || (mk->len != 16 && mk->len != 32) || t < CMN_KDF_ENC ||
        t > CMN_KDF_KEK || cuid == NULL)
        return CMN_EINVAL;
    memset(m, 0, sizeof(m));
    m[4] = t;
    memcpy(m + 8, cuid + 6, 4);
    memcpy(m + 12, cuid + 4, 2);
    cmn_put_u16(m + 14, (uint16_t)(mk->len * 8));
    for (size_t n = 0; n < mk->len / 16 && rc == CMN_OK; n++) {
        m[0] = (uint8_t)(n + 1);
        rc = cmn_crypto_aes_cmac(mk->v, mk->len, m, 16, blk);
        if (rc == CMN_OK)
            memcpy(k + 16 * n, blk, 16);
    }
    if (rc == CMN_OK)
        rc = cmn_key_set(out, CMN_KEY_AES, k, mk->len);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(blk, sizeof(blk));
    return rc;
}

enum cmn_rc
cmn_kdf_diversify(enum cmn_divers method, const struct cmn_key *mk, enum cmn_kdf_type t,
                  const uint8_t kdd[10], const uint8_t cuid[10], enum cmn_key_alg out_alg,
                  struct cmn_key *out)
{
    if (!cmn_key_valid(mk) || out == NULL || t < CMN_KDF_ENC || t > CMN_KDF_RMAC)
        return CMN_EINVAL;
    switch (method) {
    case CMN_DIVERS_VISA2:
    case CMN_DIVERS_EMV:
        return divers_3des(method, mk, (uint8_t)t, kdd, out_alg, out);
    case CMN_DIVERS_NIST:
        return divers_nist(mk, (uint8_t)t, kdd, out_alg, out);
    case CMN_DIVERS_GPKMC:
        return divers_gpkmc(mk, (uint8_t)t, cuid, out);
    case CMN_DIVERS_NONE:
        return cmn_key_set(out, out_alg, mk->v, mk->len);
    }
    return CMN_EINVAL;
}

enum cmn_rc
cmn_kdf_diversify_set(enum cmn_divers method, const struct cmn_key *mk_enc,
                      const struct cmn_key *mk_mac, const struct cmn_key *mk_kek,
                      const uint8_t kdd[10], const uint8_t cuid[10], enum cmn_key_alg out_alg,
                      uint8_t version, struct cmn_keyset *out)
{
    struct cmn_keyset t;
    enum cmn_rc rc;

    if (out == NULL)
        return CMN_EINVAL;
    memset(&t, 0, sizeof(t));
    t.version = version;
    rc = cmn_kdf_diversify(method, mk_enc, CMN_KDF_ENC, kdd, cuid, out_alg, &t.enc);
    if (rc == CMN_OK)
        rc = cmn_kdf_diversify(method, mk_mac, CMN_KDF_MAC, kdd, cuid, out_alg, &t.mac);
    if (rc == CMN_OK)
        rc = cmn_kdf_diversify(method, mk_kek, CMN_KDF_KEK, kdd, cuid, out_alg, &t.kek);
    if (rc == CMN_OK)
        *out = t;
    cmn_keyset_wipe(&t);
    return rc;
}

bool
cmn_kdf_is_developer(enum cmn_scp_proto proto, const uint8_t *keyinfo, size_t keyinfo_len)
{
    if (keyinfo == NULL || keyinfo_len < 2)
        return false;
    if (keyinfo[0] == 0xFF)
        return true;
    if (proto == CMN_SCP03)
        return keyinfo[0] == 0x01;
    return keyinfo[0] == 0x01 && keyinfo[1] == 0x01;
}

void
cmn_kdf_cfg_default(struct cmn_kdf_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nist_on_version = 0x00;
    cfg->nist_use_cuid = false;
    cfg->prot3_divers = CMN_DIVERS_EMV;
    cfg->prot3_dev = CMN_DIVERS_EMV;
    cfg->prot3_dev_alg = CMN_KEY_DES3;
    cfg->prot3_master_alg = CMN_KEY_DES3;
}

/* Copies k with another algorithm label (the TKS config says how to read key bytes). */
static enum cmn_rc
relabel(const struct cmn_key *k, enum cmn_key_alg alg, struct cmn_key *out)
{
    if (!cmn_key_valid(k))
        return CMN_EINVAL;
    return cmn_key_set(out, alg, k->v, k->len);
}

enum cmn_rc
cmn_kdf_card_keys(const struct cmn_kdf_cfg *cfg, enum cmn_scp_proto proto,
                  const uint8_t *keyinfo, size_t keyinfo_len, const struct cmn_keyset *dev,
                  const struct cmn_key *master, const uint8_t kdd[10], const uint8_t cuid[10],
                  struct cmn_keyset *out)
{
    struct cmn_key e, m, k;
    enum cmn_divers method;
    enum cmn_key_alg in_alg;
    enum cmn_rc rc = CMN_EINVAL;
    uint8_t version;

    memset(&e, 0, sizeof(e));
    memset(&m, 0, sizeof(m));
    memset(&k, 0, sizeof(k));
    if (cfg == NULL || keyinfo == NULL || keyinfo_len < 2 || keyinfo_len > 3 || out == NULL ||
        kdd == NULL || cuid == NULL)
        return CMN_EINVAL;
    if (proto != CMN_SCP01 && proto != CMN_SCP02 && proto != CMN_SCP03)
        return CMN_EINVAL;
    version = keyinfo[0];
    if (cmn_kdf_is_developer(proto, keyinfo, keyinfo_len)) {
        if (dev == NULL)
            goto out;
        if (proto != CMN_SCP03) {
            /* SCP01/02 developer keys are used as they are */
            rc = relabel(&dev->enc, CMN_KEY_DES3, &e);
            if (rc == CMN_OK)
                rc = relabel(&dev->mac, CMN_KEY_DES3, &m);
            if (rc == CMN_OK)
                rc = relabel(&dev->kek, CMN_KEY_DES3, &k);
            if (rc != CMN_OK)
                goto out;
            memset(out, 0, sizeof(*out));
            out->version = version;
            out->enc = e;
            out->mac = m;
            out->kek = k;
            goto out;
        }
        method = cfg->prot3_dev;
        in_alg = cfg->prot3_dev_alg;
        rc = relabel(&dev->enc, in_alg, &e);
        if (rc == CMN_OK)
            rc = relabel(&dev->mac, in_alg, &m);
        if (rc == CMN_OK)
            rc = relabel(&dev->kek, in_alg, &k);
    } else {
        if (master == NULL)
            goto out;
        if (proto == CMN_SCP01) {
            method = version >= cfg->nist_on_version ? CMN_DIVERS_NIST : CMN_DIVERS_VISA2;
            in_alg = CMN_KEY_DES3;
        } else if (proto == CMN_SCP02) {
            method = CMN_DIVERS_VISA2;
            in_alg = CMN_KEY_DES3;
        } else {
            method = cfg->prot3_divers;
            in_alg = cfg->prot3_master_alg;
            if (method == CMN_DIVERS_NONE && in_alg == CMN_KEY_DES3)
                goto out; /* backends §3.2: refused */
        }
        /* The NIST KDF keys HMAC with the master key bytes as stored (card spec §5.1 vector:
         * the 16-byte value). */
        rc = method == CMN_DIVERS_NIST ? cmn_key_set(&e, master->alg, master->v, master->len)
                                       : relabel(master, in_alg, &e);
        if (rc == CMN_OK) {
            m = e;
            k = e;
        }
    }
    if (rc != CMN_OK)
        goto out;
    if (method == CMN_DIVERS_NIST && cfg->nist_use_cuid)
        kdd = cuid;
    rc = cmn_kdf_diversify_set(method, &e, &m, &k, kdd, cuid,
                               proto == CMN_SCP03 ? CMN_KEY_AES : CMN_KEY_DES3, version, out);
out:
    cmn_key_wipe(&e);
    cmn_key_wipe(&m);
    cmn_key_wipe(&k);
    return rc;
}
