/* common/scp.c - GlobalPlatform secure channels SCP01/02/03: session keys, cryptograms,
 * EXTERNAL AUTHENTICATE and C-MAC/C-DEC for the host (wrap) and the card (unwrap), which
 * share one chaining routine; PUT KEY key set data; TKS key transport (card spec §2.4-2.6, §4). */
#include "common/scp.h"

#include <string.h>

#include <openssl/crypto.h>

#include "common/buf.h"

static const uint8_t dev_key[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                    0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F};

void
cmn_keyset_wipe(struct cmn_keyset *ks)
{
    if (ks != NULL)
        OPENSSL_cleanse(ks, sizeof(*ks));
}

void
cmn_keyset_developer(struct cmn_keyset *ks, enum cmn_scp_proto proto, uint8_t version)
{
    enum cmn_key_alg alg = proto == CMN_SCP03 ? CMN_KEY_AES : CMN_KEY_DES3;

    memset(ks, 0, sizeof(*ks));
    ks->version = version;
    (void)cmn_key_set(&ks->enc, alg, dev_key, 16);
    (void)cmn_key_set(&ks->mac, alg, dev_key, 16);
    (void)cmn_key_set(&ks->kek, alg, dev_key, 16);
}

/* ---------------------------------------------------------------- INITIALIZE UPDATE */

void
cmn_scp_iu_apdu(uint8_t kv, uint8_t ki, const uint8_t host_challenge[8], int le,
                struct cmn_apdu *out)
{
    memset(out, 0, sizeof(*out));
    out->cla = 0x80;
    out->ins = 0x50;
    out->p1 = kv;
    out->p2 = ki;
    memcpy(out->data, host_challenge, 8);
    out->lc = 8;
    out->le = le;
}

enum cmn_rc
cmn_scp_iu_parse(enum cmn_scp_proto proto, const uint8_t *data, size_t n, struct cmn_scp_iu *iu)
{
    struct cmn_scp_iu t;
    struct cmn_rd r;
    bool ok;

    if (data == NULL || iu == NULL)
        return CMN_EINVAL;
    memset(&t, 0, sizeof(t));
    switch (proto) {
    case CMN_SCP01:
    case CMN_SCP02:
        if (n < 28)
            return CMN_ESHORT;
        if (n != 28)
            return CMN_EPROTO;
        break;
    case CMN_SCP03:
        if (n < 29)
            return CMN_ESHORT;
        if (n != 29 && n != 32)
            return CMN_EPROTO;
        break;
    default:
        return CMN_EINVAL;
    }
    cmn_rd_init(&r, data, n);
    ok = cmn_rd_copy(&r, t.kdd, 10) && cmn_rd_u8(&r, &t.key_version) && cmn_rd_u8(&r, &t.scp_id);
    if (proto == CMN_SCP02) {
        t.seq_len = 2;
        t.card_challenge_len = 6;
        ok = ok && cmn_rd_copy(&r, t.seq, 2);
    } else {
        t.card_challenge_len = 8;
        if (proto == CMN_SCP03)
            ok = ok && cmn_rd_u8(&r, &t.i_param);
    }
    ok = ok && cmn_rd_copy(&r, t.card_challenge, t.card_challenge_len) &&
         cmn_rd_copy(&r, t.card_cryptogram, 8);
    if (ok && proto == CMN_SCP03 && r.left == 3) {
        t.seq_len = 3;
        ok = cmn_rd_copy(&r, t.seq, 3);
    }
    if (!ok || r.left != 0)
        return CMN_EPROTO;
    *iu = t;
    return CMN_OK;
}

enum cmn_rc
cmn_scp_iu_encode(enum cmn_scp_proto proto, const struct cmn_scp_iu *iu, uint8_t *out, size_t cap,
                  size_t *out_len)
{
    size_t n = 0;

    if (iu == NULL || out == NULL || out_len == NULL)
        return CMN_EINVAL;
    if (proto != CMN_SCP01 && proto != CMN_SCP02 && proto != CMN_SCP03)
        return CMN_EINVAL;
    if (cap < 32)
        return CMN_ETOOBIG;
    memcpy(out, iu->kdd, 10);
    out[10] = iu->key_version;
    out[11] = iu->scp_id;
    n = 12;
    if (proto == CMN_SCP02) {
        memcpy(out + n, iu->seq, 2);
        memcpy(out + n + 2, iu->card_challenge, 6);
        n += 8;
    } else {
        if (proto == CMN_SCP03)
            out[n++] = iu->i_param;
        memcpy(out + n, iu->card_challenge, 8);
        n += 8;
    }
    memcpy(out + n, iu->card_cryptogram, 8);
    n += 8;
    if (proto == CMN_SCP03 && iu->seq_len == 3) {
        memcpy(out + n, iu->seq, 3);
        n += 3;
    }
    *out_len = n;
    return CMN_OK;
}

/* ---------------------------------------------------------------- session set-up */

enum cmn_rc
cmn_scp_init(struct cmn_scp *s, enum cmn_scp_proto proto)
{
    if (s == NULL)
        return CMN_EINVAL;
    memset(s, 0, sizeof(*s));
    if (proto != CMN_SCP01 && proto != CMN_SCP02 && proto != CMN_SCP03)
        return CMN_EINVAL;
    s->proto = proto;
    return CMN_OK;
}

/* Forgets the session (keys, chain), keeping protocol and options. */
static void
end_session(struct cmn_scp *s)
{
    cmn_key_wipe(&s->s_enc);
    cmn_key_wipe(&s->s_mac);
    cmn_key_wipe(&s->s_rmac);
    cmn_key_wipe(&s->dek);
    OPENSSL_cleanse(s->icv, sizeof(s->icv));
    OPENSSL_cleanse(s->counter, sizeof(s->counter));
    OPENSSL_cleanse(s->host_challenge, sizeof(s->host_challenge));
    OPENSSL_cleanse(s->card_challenge, sizeof(s->card_challenge));
    OPENSSL_cleanse(s->seq, sizeof(s->seq));
    s->card_challenge_len = 0;
    s->level = 0;
    s->state = CMN_SCP_NONE;
}

void
cmn_scp_cleanup(struct cmn_scp *s)
{
    if (s != NULL)
        end_session(s);
}

enum cmn_rc
cmn_scp_set_challenges(struct cmn_scp *s, const uint8_t host_challenge[8],
                       const uint8_t *card_challenge, size_t card_challenge_len,
                       const uint8_t *seq)
{
    if (s == NULL || host_challenge == NULL || card_challenge == NULL)
        return CMN_EINVAL;
    if (s->proto == CMN_SCP02 ? (card_challenge_len != 6 || seq == NULL)
                              : card_challenge_len != 8)
        return CMN_EINVAL;
    s->state = CMN_SCP_NONE;
    s->level = 0;
    OPENSSL_cleanse(s->icv, sizeof(s->icv));
    OPENSSL_cleanse(s->counter, sizeof(s->counter));
    memset(s->card_challenge, 0, sizeof(s->card_challenge));
    memcpy(s->host_challenge, host_challenge, 8);
    memcpy(s->card_challenge, card_challenge, card_challenge_len);
    s->card_challenge_len = card_challenge_len;
    if (s->proto == CMN_SCP02)
        memcpy(s->seq, seq, 2);
    return CMN_OK;
}

/* Keys a protocol can use: DES3-16/24 for SCP01/02, AES for SCP03. */
static bool
key_fits(const struct cmn_scp *s, const struct cmn_key *k)
{
    if (!cmn_key_valid(k))
        return false;
    return s->proto == CMN_SCP03 ? k->alg == CMN_KEY_AES : k->alg == CMN_KEY_DES3;
}

/* SCP02 session key: 3DES-CBC(K, IV 0, constant || seq || 00x12) (§4.4). */
static enum cmn_rc
scp02_session_key(const struct cmn_key *k, uint16_t constant, const uint8_t seq[2],
                  struct cmn_key *out)
{
    uint8_t dd[16] = {0}, sk[16];
    enum cmn_rc rc;

    cmn_put_u16(dd, constant);
    dd[2] = seq[0];
    dd[3] = seq[1];
    rc = cmn_crypto_des3_cbc(k->v, k->len, NULL, true, dd, 16, sk);
    if (rc == CMN_OK)
        rc = cmn_key_set(out, CMN_KEY_DES3, sk, 16);
    OPENSSL_cleanse(sk, sizeof(sk));
    return rc;
}

/* SCP03 session key: KDF(K, constant, L = key bits, host || card challenge) (§4.5). */
static enum cmn_rc
scp03_session_key(const struct cmn_scp *s, const struct cmn_key *k, uint8_t constant,
                  struct cmn_key *out)
{
    uint8_t ctx[16], sk[CMN_KEY_MAX];
    enum cmn_rc rc;

    memcpy(ctx, s->host_challenge, 8);
    memcpy(ctx + 8, s->card_challenge, 8);
    rc = cmn_kdf_scp03(k->v, k->len, constant, ctx, 16, (unsigned)k->len * 8, sk);
    if (rc == CMN_OK)
        rc = cmn_key_set(out, CMN_KEY_AES, sk, k->len);
    OPENSSL_cleanse(sk, sizeof(sk));
    return rc;
}

enum cmn_rc
cmn_scp_derive(struct cmn_scp *s, const struct cmn_keyset *statics)
{
    struct cmn_key enc, mac, rmac, dek;
    uint8_t dd[16], sk[16];
    enum cmn_rc rc = CMN_EINVAL;

    memset(&enc, 0, sizeof(enc));
    memset(&mac, 0, sizeof(mac));
    memset(&rmac, 0, sizeof(rmac));
    memset(&dek, 0, sizeof(dek));
    if (s == NULL || statics == NULL || s->card_challenge_len == 0)
        goto out;
    if (!key_fits(s, &statics->enc) || !key_fits(s, &statics->mac) ||
        !key_fits(s, &statics->kek))
        goto out;
    switch (s->proto) {
    case CMN_SCP01:
        /* §4.3: DD = cc[4..7] || hc[0..3] || cc[0..3] || hc[4..7] */
        memcpy(dd, s->card_challenge + 4, 4);
        memcpy(dd + 4, s->host_challenge, 4);
        memcpy(dd + 8, s->card_challenge, 4);
        memcpy(dd + 12, s->host_challenge + 4, 4);
        rc = cmn_crypto_des3_ecb(statics->enc.v, statics->enc.len, true, dd, 16, sk);
        if (rc == CMN_OK)
            rc = cmn_key_set(&enc, CMN_KEY_DES3, sk, 16);
        if (rc == CMN_OK)
            rc = cmn_crypto_des3_ecb(statics->mac.v, statics->mac.len, true, dd, 16, sk);
        if (rc == CMN_OK)
            rc = cmn_key_set(&mac, CMN_KEY_DES3, sk, 16);
        dek = statics->kek;
        break;
    case CMN_SCP02:
        rc = scp02_session_key(&statics->enc, 0x0182, s->seq, &enc);
        if (rc == CMN_OK)
            rc = scp02_session_key(&statics->mac, 0x0101, s->seq, &mac);
        if (rc == CMN_OK)
            rc = scp02_session_key(&statics->mac, 0x0102, s->seq, &rmac);
        if (rc == CMN_OK)
            rc = scp02_session_key(&statics->kek, 0x0181, s->seq, &dek);
        break;
    case CMN_SCP03:
        rc = scp03_session_key(s, &statics->enc, 0x04, &enc);
        if (rc == CMN_OK)
            rc = scp03_session_key(s, &statics->mac, 0x06, &mac);
        if (rc == CMN_OK)
            rc = scp03_session_key(s, &statics->mac, 0x07, &rmac);
        dek = statics->kek;
        break;
    }
    if (rc != CMN_OK)
        goto out;
    rc = cmn_scp_set_session_keys(s, &enc, &mac, rmac.len != 0 ? &rmac : NULL, &dek);
out:
    OPENSSL_cleanse(dd, sizeof(dd));
    OPENSSL_cleanse(sk, sizeof(sk));
    cmn_key_wipe(&enc);
    cmn_key_wipe(&mac);
    cmn_key_wipe(&rmac);
    cmn_key_wipe(&dek);
    return rc;
}

enum cmn_rc
cmn_scp_set_session_keys(struct cmn_scp *s, const struct cmn_key *enc, const struct cmn_key *mac,
                         const struct cmn_key *rmac, const struct cmn_key *dek)
{
    if (s == NULL || s->card_challenge_len == 0 || !key_fits(s, enc) || !key_fits(s, mac))
        return CMN_EINVAL;
    if ((rmac != NULL && !key_fits(s, rmac)) || (dek != NULL && !key_fits(s, dek)))
        return CMN_EINVAL;
    /* The MAC algorithms of SCP02 (retail MAC) take exactly 16 bytes. */
    if (s->proto == CMN_SCP02 && mac->len != 16)
        return CMN_EINVAL;
    s->s_enc = *enc;
    s->s_mac = *mac;
    if (rmac != NULL)
        s->s_rmac = *rmac;
    else
        cmn_key_wipe(&s->s_rmac);
    if (dek != NULL)
        s->dek = *dek;
    else
        cmn_key_wipe(&s->dek);
    OPENSSL_cleanse(s->icv, sizeof(s->icv));
    OPENSSL_cleanse(s->counter, sizeof(s->counter));
    s->level = 0;
    s->state = CMN_SCP_INIT;
    return CMN_OK;
}

/* ---------------------------------------------------------------- cryptograms */

static enum cmn_rc
cryptogram(const struct cmn_scp *s, bool card, uint8_t out[8])
{
    uint8_t m[24], full[8];
    size_t n = 0;
    enum cmn_rc rc;

    if (s == NULL || out == NULL || s->card_challenge_len == 0 || !key_fits(s, &s->s_enc) ||
        !key_fits(s, &s->s_mac))
        return CMN_EINVAL;
    switch (s->proto) {
    case CMN_SCP01:
        /* §4.3: card = MAC3(S-ENC, hc || cc), host = MAC3(S-ENC, cc || hc) */
        memcpy(m, card ? s->host_challenge : s->card_challenge, 8);
        memcpy(m + 8, card ? s->card_challenge : s->host_challenge, 8);
        n = 16;
        break;
    case CMN_SCP02:
        /* §4.4: card = hc || seq || cc(6); host = seq || cc(6) || hc */
        if (card) {
            memcpy(m, s->host_challenge, 8);
            memcpy(m + 8, s->seq, 2);
            memcpy(m + 10, s->card_challenge, 6);
        } else {
            memcpy(m, s->seq, 2);
            memcpy(m + 2, s->card_challenge, 6);
            memcpy(m + 8, s->host_challenge, 8);
        }
        n = 16;
        break;
    case CMN_SCP03:
        /* §4.5: KDF(S-MAC, 00 card / 01 host, L 64, hc || cc) */
        memcpy(m, s->host_challenge, 8);
        memcpy(m + 8, s->card_challenge, 8);
        rc = cmn_kdf_scp03(s->s_mac.v, s->s_mac.len, card ? 0x00 : 0x01, m, 16, 64, full);
        goto done;
    }
    rc = cmn_crypto_mac3(s->s_enc.v, s->s_enc.len, NULL, m, n, full);
done:
    if (rc == CMN_OK)
        memcpy(out, full, 8);
    OPENSSL_cleanse(full, sizeof(full));
    OPENSSL_cleanse(m, sizeof(m));
    return rc;
}

enum cmn_rc
cmn_scp_card_cryptogram(const struct cmn_scp *s, uint8_t out[8])
{
    return cryptogram(s, true, out);
}

enum cmn_rc
cmn_scp_host_cryptogram(const struct cmn_scp *s, uint8_t out[8])
{
    return cryptogram(s, false, out);
}

enum cmn_rc
cmn_scp_verify_card_cryptogram(const struct cmn_scp *s, const uint8_t got[8])
{
    uint8_t want[8];
    enum cmn_rc rc;

    if (got == NULL)
        return CMN_EINVAL;
    rc = cryptogram(s, true, want);
    if (rc == CMN_OK && CRYPTO_memcmp(want, got, 8) != 0)
        rc = CMN_EAUTH;
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}

/* ---------------------------------------------------------------- C-MAC chaining */

/* The one place where the C-MAC and its chaining are computed, for both ends.
 * Covers `84 ins p1 p2 (n+8) d[0..n)`; `first` = EXTERNAL AUTHENTICATE (ICV/chain zero).
 * [out] mac (8 bytes) and next (the chaining value to commit on success: the MAC itself on
 * SCP01/02, the full CMAC on SCP03). Does not change s. */
static enum cmn_rc
cmac_compute(const struct cmn_scp *s, bool first, uint8_t ins, uint8_t p1, uint8_t p2,
             const uint8_t *d, size_t n, uint8_t mac[8], uint8_t next[16])
{
    uint8_t m[16 + 5 + CMN_APDU_MAX_DATA], icv[8], full[16];
    size_t off = 0;
    enum cmn_rc rc;

    if (n + 8 > CMN_APDU_MAX_DATA)
        return CMN_ETOOBIG;
    memset(icv, 0, sizeof(icv));
    memset(full, 0, sizeof(full));
    if (s->proto == CMN_SCP03) {
        /* §4.5: CMAC over chain || header || data' */
        if (first)
            memset(m, 0, 16);
        else
            memcpy(m, s->icv, 16);
        off = 16;
    }
    m[off] = 0x84;
    m[off + 1] = ins;
    m[off + 2] = p1;
    m[off + 3] = p2;
    m[off + 4] = (uint8_t)(n + 8);
    if (n > 0)
        memcpy(m + off + 5, d, n);
    switch (s->proto) {
    case CMN_SCP01:
        /* §4.3: ICV = previous C-MAC, no ICV encryption */
        if (!first)
            memcpy(icv, s->icv, 8);
        rc = cmn_crypto_mac3(s->s_mac.v, s->s_mac.len, icv, m, 5 + n, full);
        break;
    case CMN_SCP02:
        /* §4.4: ICV = single-DES(C-MAC key[0..7], previous C-MAC) after EXT AUTH */
        rc = CMN_OK;
        if (!first)
            rc = cmn_crypto_des_ecb(s->s_mac.v, true, s->icv, 8, icv);
        if (rc == CMN_OK)
            rc = cmn_crypto_retail_mac(s->s_mac.v, icv, m, 5 + n, full);
        break;
    case CMN_SCP03:
        rc = cmn_crypto_aes_cmac(s->s_mac.v, s->s_mac.len, m, 16 + 5 + n, full);
        break;
    default:
        rc = CMN_EINVAL;
        break;
    }
    if (rc == CMN_OK) {
        memcpy(mac, full, 8);
        memset(next, 0, 16);
        memcpy(next, full, s->proto == CMN_SCP03 ? 16 : 8);
    }
    OPENSSL_cleanse(m, sizeof(m));
    OPENSSL_cleanse(icv, sizeof(icv));
    OPENSSL_cleanse(full, sizeof(full));
    return rc;
}

static bool
level_ok(enum cmn_scp_proto proto, uint8_t level)
{
    if (level == 0x00 || level == 0x01 || level == 0x03)
        return true;
    return proto == CMN_SCP03 && (level == 0x11 || level == 0x13 || level == 0x33);
}

static void
counter_inc(uint8_t c[16])
{
    for (int i = 15; i >= 0; i--)
        if (++c[i] != 0)
            break;
}

/* SCP03 C-DEC IV: AES-ECB(S-ENC, counter). */
static enum cmn_rc
scp03_iv(const struct cmn_scp *s, const uint8_t counter[16], uint8_t iv[16])
{
    return cmn_crypto_aes_ecb(s->s_enc.v, s->s_enc.len, true, counter, 16, iv);
}

enum cmn_rc
cmn_scp_ext_auth_build(struct cmn_scp *s, uint8_t level, const uint8_t *host_cryptogram,
                       struct cmn_apdu *out)
{
    uint8_t hc[8], mac[8], next[16];
    enum cmn_rc rc;

    if (s == NULL || out == NULL || s->state != CMN_SCP_INIT || !level_ok(s->proto, level))
        return CMN_EINVAL;
    if (host_cryptogram != NULL) {
        memcpy(hc, host_cryptogram, 8);
        rc = CMN_OK;
    } else {
        rc = cmn_scp_host_cryptogram(s, hc);
    }
    if (rc == CMN_OK)
        rc = cmac_compute(s, true, 0x82, level, 0x00, hc, 8, mac, next);
    if (rc != CMN_OK)
        goto out;
    memset(out, 0, sizeof(*out));
    out->cla = 0x84;
    out->ins = 0x82;
    out->p1 = level;
    out->p2 = 0x00;
    memcpy(out->data, hc, 8);
    memcpy(out->data + 8, mac, 8);
    out->lc = 16;
    out->le = -1;
    memcpy(s->icv, next, 16);
    memset(s->counter, 0, sizeof(s->counter));
    s->level = level;
    s->state = CMN_SCP_AUTH;
out:
    OPENSSL_cleanse(hc, sizeof(hc));
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(next, sizeof(next));
    return rc;
}

enum cmn_rc
cmn_scp_wrap(struct cmn_scp *s, const struct cmn_apdu *plain, struct cmn_apdu *wire)
{
    return cmn_scp_wrap_ex(s, plain, 0, wire);
}

enum cmn_rc
cmn_scp_wrap_ex(struct cmn_scp *s, const struct cmn_apdu *plain, unsigned flags,
                struct cmn_apdu *wire)
{
    uint8_t buf[CMN_APDU_MAX_DATA + 16], mac[8], next[16], ctr[16], iv[16];
    size_t n = 0;
    const uint8_t *macd;
    size_t macn;
    bool enc;
    enum cmn_rc rc = CMN_EINVAL;

    if (s == NULL || plain == NULL || wire == NULL || wire == plain || s->state != CMN_SCP_AUTH ||
        plain->lc > CMN_APDU_MAX_DATA)
        return CMN_EINVAL;
    if ((s->level & 0x01) == 0) {
        /* level 00: no secure messaging after authentication; still CLA 84 so the card
         * runs it as the authenticated host */
        *wire = *plain;
        wire->cla = 0x84;
        return CMN_OK;
    }
    enc = (s->level & 0x02) != 0 && (flags & CMN_SCP_NO_ENC) == 0;
    memcpy(ctr, s->counter, 16);
    if ((s->level & 0x02) != 0 && s->proto == CMN_SCP03)
        counter_inc(ctr); /* §4.5: before every command, with or without data */
    macd = plain->data;
    macn = plain->lc;
    if (!enc) {
        if (plain->lc + 8 > CMN_APDU_MAX_DATA) {
            rc = CMN_ETOOBIG;
            goto out;
        }
        memcpy(buf, plain->data, plain->lc);
        n = plain->lc;
    } else if (plain->lc > 239) {
        rc = CMN_ETOOBIG;
        goto out;
    } else if (s->proto == CMN_SCP01) {
        /* §4.3: X = Lc || data, padded only when not aligned, 3DES-CBC IV 0 */
        buf[0] = (uint8_t)plain->lc;
        memcpy(buf + 1, plain->data, plain->lc);
        rc = cmn_pad80(buf, 1 + plain->lc, sizeof(buf), 8, false, &n);
        if (rc == CMN_OK)
            rc = cmn_crypto_des3_cbc(s->s_enc.v, s->s_enc.len, NULL, true, buf, n, buf);
        if (rc != CMN_OK)
            goto out;
    } else if (s->proto == CMN_SCP02) {
        /* §4.4: always padded; no data field when there is no data (GP, §9 item 9) */
        if (plain->lc > 0) {
            memcpy(buf, plain->data, plain->lc);
            rc = cmn_pad80(buf, plain->lc, sizeof(buf), 8, true, &n);
            if (rc == CMN_OK)
                rc = cmn_crypto_des3_cbc(s->s_enc.v, s->s_enc.len, NULL, true, buf, n, buf);
            if (rc != CMN_OK)
                goto out;
        }
    } else {
        /* §4.5: encrypt, then MAC over the ciphertext */
        if (plain->lc > 0) {
            memcpy(buf, plain->data, plain->lc);
            rc = cmn_pad80(buf, plain->lc, sizeof(buf), 16, true, &n);
            if (rc == CMN_OK)
                rc = scp03_iv(s, ctr, iv);
            if (rc == CMN_OK)
                rc = cmn_crypto_aes_cbc(s->s_enc.v, s->s_enc.len, iv, true, buf, n, buf);
            if (rc != CMN_OK)
                goto out;
        }
        macd = buf;
        macn = n;
    }
    rc = cmac_compute(s, false, plain->ins, plain->p1, plain->p2, macd, macn, mac, next);
    if (rc != CMN_OK)
        goto out;
    memset(wire, 0, sizeof(*wire));
    wire->cla = 0x84;
    wire->ins = plain->ins;
    wire->p1 = plain->p1;
    wire->p2 = plain->p2;
    memcpy(wire->data, buf, n);
    memcpy(wire->data + n, mac, 8);
    wire->lc = n + 8;
    /* Le is never MACed; SCP01 may drop it (§9 item 1) */
    wire->le = (s->proto == CMN_SCP01 && s->scp01_omit_le) ? -1 : plain->le;
    memcpy(s->icv, next, 16);
    memcpy(s->counter, ctr, 16);
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(next, sizeof(next));
    OPENSSL_cleanse(ctr, sizeof(ctr));
    OPENSSL_cleanse(iv, sizeof(iv));
    return rc;
}

enum cmn_rc
cmn_scp_card_ext_auth(struct cmn_scp *s, const struct cmn_apdu *cmd, uint16_t *sw)
{
    uint8_t want[8], mac[8], next[16];
    enum cmn_rc rc = CMN_EINVAL;
    uint16_t st = CMN_SW_SECURITY;

    if (s == NULL || cmd == NULL || sw == NULL)
        return CMN_EINVAL;
    if (s->state != CMN_SCP_INIT || cmd->ins != 0x82 || (cmd->cla & 0x04) == 0) {
        st = CMN_SW_CONDITIONS;
        goto out;
    }
    if (!level_ok(s->proto, cmd->p1)) {
        st = CMN_SW_WRONG_P1P2;
        goto out;
    }
    if (cmd->lc != 16) {
        st = CMN_SW_WRONG_LENGTH;
        goto out;
    }
    rc = cmn_scp_host_cryptogram(s, want);
    if (rc != CMN_OK)
        goto out;
    if (CRYPTO_memcmp(want, cmd->data, 8) != 0) {
        rc = CMN_EAUTH;
        st = CMN_SW_CRYPTOGRAM;
        goto out;
    }
    rc = cmac_compute(s, true, 0x82, cmd->p1, cmd->p2, cmd->data, 8, mac, next);
    if (rc != CMN_OK)
        goto out;
    if (CRYPTO_memcmp(mac, cmd->data + 8, 8) != 0) {
        rc = CMN_EAUTH;
        goto out;
    }
    memcpy(s->icv, next, 16);
    memset(s->counter, 0, sizeof(s->counter));
    s->level = cmd->p1;
    s->state = CMN_SCP_AUTH;
    st = CMN_SW_OK;
    rc = CMN_OK;
out:
    if (rc != CMN_OK)
        end_session(s);
    *sw = st;
    OPENSSL_cleanse(want, sizeof(want));
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(next, sizeof(next));
    return rc;
}

/* One reading of a wrapped command, without touching s: verifies the C-MAC (and decrypts
 * when `enc`). [out] buf/n the plaintext, next the chaining value, ctr the SCP03 counter.
 * CMN_EAUTH on a MAC mismatch, CMN_EINVAL on malformed lengths or padding. */
static enum cmn_rc
unwrap_try(const struct cmn_scp *s, const struct cmn_apdu *wire, bool enc, uint8_t *buf,
           size_t *n, uint8_t next[16], uint8_t ctr[16])
{
    uint8_t mac[8], iv[16];
    const uint8_t *d = wire->data, *got;
    size_t dn = wire->lc - 8;
    enum cmn_rc rc = CMN_EINVAL;

    got = wire->data + dn;
    *n = 0;
    memcpy(ctr, s->counter, 16);
    if ((s->level & 0x02) != 0 && s->proto == CMN_SCP03)
        counter_inc(ctr); /* §4.5: before every command */
    if (!enc) {
        memcpy(buf, d, dn);
        *n = dn;
    } else if (s->proto == CMN_SCP01) {
        /* §4.3: decrypt X = Lc || data [|| pad]; the MAC covers the plaintext */
        size_t xn;

        if (dn == 0 || dn % 8 != 0)
            goto out;
        rc = cmn_crypto_des3_cbc(s->s_enc.v, s->s_enc.len, NULL, false, d, dn, buf);
        if (rc != CMN_OK)
            goto out;
        rc = CMN_EINVAL;
        xn = (size_t)buf[0] + 1;
        if (xn > dn || dn - xn >= 8)
            goto out;
        *n = buf[0];
        memmove(buf, buf + 1, *n);
    } else if (s->proto == CMN_SCP02) {
        /* §4.4: no data field, or padded data (a lone pad block = no data) */
        if (dn % 8 != 0)
            goto out;
        if (dn > 0) {
            rc = cmn_crypto_des3_cbc(s->s_enc.v, s->s_enc.len, NULL, false, d, dn, buf);
            if (rc == CMN_OK)
                rc = cmn_unpad80(buf, dn, 8, n);
            if (rc != CMN_OK)
                goto out;
        }
    } else {
        /* §4.5: the MAC covers the ciphertext: check it before decrypting */
        if (dn % 16 != 0)
            goto out;
        rc = cmac_compute(s, false, wire->ins, wire->p1, wire->p2, d, dn, mac, next);
        if (rc != CMN_OK)
            goto out;
        if (CRYPTO_memcmp(mac, got, 8) != 0) {
            rc = CMN_EAUTH;
            goto out;
        }
        if (dn > 0) {
            rc = scp03_iv(s, ctr, iv);
            if (rc == CMN_OK)
                rc = cmn_crypto_aes_cbc(s->s_enc.v, s->s_enc.len, iv, false, d, dn, buf);
            if (rc == CMN_OK)
                rc = cmn_unpad80(buf, dn, 16, n);
        }
        goto out;
    }
    rc = cmac_compute(s, false, wire->ins, wire->p1, wire->p2, buf, *n, mac, next);
    if (rc == CMN_OK && CRYPTO_memcmp(mac, got, 8) != 0)
        rc = CMN_EAUTH;
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(iv, sizeof(iv));
    return rc;
}

enum cmn_rc
cmn_scp_unwrap(struct cmn_scp *s, const struct cmn_apdu *wire, struct cmn_apdu *plain,
               uint16_t *sw)
{
    return cmn_scp_unwrap_ex(s, wire, 0, plain, sw);
}

enum cmn_rc
cmn_scp_unwrap_ex(struct cmn_scp *s, const struct cmn_apdu *wire, unsigned flags,
                  struct cmn_apdu *plain, uint16_t *sw)
{
    uint8_t buf[CMN_APDU_MAX_DATA + 16], next[16], ctr[16];
    size_t n = 0;
    bool enc;
    enum cmn_rc rc = CMN_EINVAL;

    if (s == NULL || wire == NULL || plain == NULL || sw == NULL || plain == wire)
        return CMN_EINVAL;
    if (s->state != CMN_SCP_AUTH || (wire->cla & 0x04) == 0 || wire->lc > CMN_APDU_MAX_DATA)
        goto out;
    if ((s->level & 0x01) == 0) {
        /* level 00: nothing to check */
        *plain = *wire;
        *sw = CMN_SW_OK;
        return CMN_OK;
    }
    if (wire->lc < 8)
        goto out;
    enc = (s->level & 0x02) != 0;
    rc = unwrap_try(s, wire, enc, buf, &n, next, ctr);
    if (rc != CMN_OK && rc != CMN_ECRYPTO && enc && s->proto != CMN_SCP03 &&
        (flags & CMN_SCP_ACCEPT_PLAIN) != 0)
        rc = unwrap_try(s, wire, false, buf, &n, next, ctr);
    if (rc != CMN_OK)
        goto out;
    memset(plain, 0, sizeof(*plain));
    plain->cla = wire->cla;
    plain->ins = wire->ins;
    plain->p1 = wire->p1;
    plain->p2 = wire->p2;
    memcpy(plain->data, buf, n);
    plain->lc = n;
    plain->le = wire->le;
    memcpy(s->icv, next, 16);
    memcpy(s->counter, ctr, 16);
out:
    if (rc != CMN_OK) {
        end_session(s);
        *sw = CMN_SW_SECURITY;
    } else {
        *sw = CMN_SW_OK;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(next, sizeof(next));
    OPENSSL_cleanse(ctr, sizeof(ctr));
    return rc;
}

/* ---------------------------------------------------------------- key set data */

enum cmn_rc
cmn_keyset_data_build(enum cmn_scp_proto proto, const struct cmn_key *wrap_key,
                      const struct cmn_keyset *newks, uint8_t *out, size_t cap, size_t *out_len)
{
    const struct cmn_key *keys[3];
    uint8_t blob[1 + 3 * (3 + CMN_KEY_MAX + 4)], kcv[3];
    size_t n = 0, klen;
    enum cmn_rc rc = CMN_EINVAL;
    enum cmn_key_alg alg = proto == CMN_SCP03 ? CMN_KEY_AES : CMN_KEY_DES3;

    if (newks == NULL || out == NULL || out_len == NULL || !cmn_key_valid(wrap_key) ||
        wrap_key->alg != alg)
        return CMN_EINVAL;
    if (proto != CMN_SCP01 && proto != CMN_SCP02 && proto != CMN_SCP03)
        return CMN_EINVAL;
    keys[0] = &newks->enc;
    keys[1] = &newks->mac;
    keys[2] = &newks->kek;
    klen = newks->enc.len;
    for (size_t i = 0; i < 3; i++) {
        if (!cmn_key_valid(keys[i]) || keys[i]->alg != alg || keys[i]->len != klen)
            return CMN_EINVAL;
    }
    if (alg == CMN_KEY_DES3 ? klen != 16 : (klen != 16 && klen != 32))
        return CMN_EINVAL;
    blob[n++] = newks->version;
    for (size_t i = 0; i < 3; i++) {
        /* §2.6: type len [component len] wrapped 03 KCV */
        if (proto == CMN_SCP03) {
            blob[n++] = 0x88;
            blob[n++] = (uint8_t)(klen + 1);
            blob[n++] = (uint8_t)klen;
        } else {
            blob[n++] = proto == CMN_SCP01 ? 0x81 : 0x80;
            blob[n++] = (uint8_t)klen;
        }
        rc = cmn_key_encrypt(wrap_key, keys[i]->v, klen, blob + n);
        if (rc == CMN_OK)
            rc = cmn_key_kcv(keys[i], kcv);
        if (rc != CMN_OK)
            goto out;
        n += klen;
        blob[n++] = 0x03;
        memcpy(blob + n, kcv, 3);
        n += 3;
    }
    if (n > cap) {
        rc = CMN_ETOOBIG;
        goto out;
    }
    memcpy(out, blob, n);
    *out_len = n;
    rc = CMN_OK;
out:
    OPENSSL_cleanse(blob, sizeof(blob));
    OPENSSL_cleanse(kcv, sizeof(kcv));
    return rc;
}

enum cmn_rc
cmn_keyset_data_parse(enum cmn_scp_proto proto, const struct cmn_key *wrap_key,
                      const uint8_t *data, size_t n, struct cmn_keyset *ks)
{
    struct cmn_keyset t;
    struct cmn_key *keys[3];
    struct cmn_rd r;
    uint8_t raw[CMN_KEY_MAX], kcv[3];
    const uint8_t *wrapped, *got;
    enum cmn_key_alg alg = proto == CMN_SCP03 ? CMN_KEY_AES : CMN_KEY_DES3;
    size_t first_len = 0;
    enum cmn_rc rc = CMN_EINVAL;

    memset(&t, 0, sizeof(t));
    if (data == NULL || ks == NULL || !cmn_key_valid(wrap_key) || wrap_key->alg != alg)
        return CMN_EINVAL;
    if (proto != CMN_SCP01 && proto != CMN_SCP02 && proto != CMN_SCP03)
        return CMN_EINVAL;
    keys[0] = &t.enc;
    keys[1] = &t.mac;
    keys[2] = &t.kek;
    cmn_rd_init(&r, data, n);
    if (!cmn_rd_u8(&r, &t.version))
        goto out;
    for (size_t i = 0; i < 3; i++) {
        uint8_t type, len, clen, kcvlen;
        size_t klen;

        if (!cmn_rd_u8(&r, &type) || !cmn_rd_u8(&r, &len))
            goto out;
        if (proto == CMN_SCP03) {
            if (type != 0x88 || !cmn_rd_u8(&r, &clen) || len != clen + 1 ||
                (clen != 16 && clen != 32))
                goto out;
            klen = clen;
        } else {
            /* accept both DES key types (80 GP, 81 Dogtag SCP01) */
            if ((type != 0x80 && type != 0x81) || len != 16)
                goto out;
            klen = len;
        }
        if (i == 0)
            first_len = klen;
        else if (klen != first_len)
            goto out;
        if (!cmn_rd_take(&r, klen, &wrapped) || !cmn_rd_u8(&r, &kcvlen) || kcvlen != 3 ||
            !cmn_rd_take(&r, 3, &got))
            goto out;
        rc = cmn_key_decrypt(wrap_key, wrapped, klen, raw);
        if (rc == CMN_OK)
            rc = cmn_key_set(keys[i], alg, raw, klen);
        if (rc == CMN_OK)
            rc = cmn_key_kcv(keys[i], kcv);
        if (rc != CMN_OK)
            goto out;
        if (CRYPTO_memcmp(kcv, got, 3) != 0) {
            rc = CMN_EAUTH;
            goto out;
        }
        rc = CMN_EINVAL;
    }
    if (r.left != 0)
        goto out;
    *ks = t;
    rc = CMN_OK;
out:
    cmn_keyset_wipe(&t);
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(kcv, sizeof(kcv));
    return rc;
}

/* ---------------------------------------------------------------- TKS key transport */

enum cmn_rc
cmn_scp_session_key_wrap(const struct cmn_key *shared, const struct cmn_key *key, uint8_t *out,
                         size_t cap, size_t *out_len)
{
    enum cmn_rc rc;

    if (!cmn_key_valid(key) || out == NULL || out_len == NULL)
        return CMN_EINVAL;
    if (cap < key->len)
        return CMN_ETOOBIG;
    rc = cmn_key_encrypt(shared, key->v, key->len, out);
    if (rc == CMN_OK)
        *out_len = key->len;
    return rc;
}

enum cmn_rc
cmn_scp_session_key_unwrap(const struct cmn_key *shared, const uint8_t *wrapped, size_t n,
                           enum cmn_key_alg alg, struct cmn_key *key)
{
    uint8_t raw[CMN_KEY_MAX];
    enum cmn_rc rc;

    if (wrapped == NULL || key == NULL || n == 0 || n > CMN_KEY_MAX)
        return CMN_EINVAL;
    rc = cmn_key_decrypt(shared, wrapped, n, raw);
    if (rc == CMN_OK)
        rc = cmn_key_set(key, alg, raw, n);
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

enum cmn_rc
cmn_scp_challenge_encrypt(const struct cmn_key *kek, const uint8_t in[16], uint8_t out[16])
{
    if (in == NULL || out == NULL)
        return CMN_EINVAL;
    return cmn_key_encrypt(kek, in, 16, out);
}

enum cmn_rc
cmn_scp_challenge_decrypt(const struct cmn_key *kek, const uint8_t in[16], uint8_t out[16])
{
    if (in == NULL || out == NULL)
        return CMN_EINVAL;
    return cmn_key_decrypt(kek, in, 16, out);
}
