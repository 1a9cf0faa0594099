/* tokenclient/vtoken/gp.c - the card manager (ISD) of the emulated card: GET DATA, INITIALIZE
 * UPDATE, EXTERNAL AUTHENTICATE, PUT KEY, DELETE/INSTALL/LOAD (card spec §2, §4.6, §7.3). */
#include "tokenclient/vtoken/card.h"

#include <string.h>

#include "common/buf.h"
#include "common/crypto.h"

/* card spec §2.3: card recognition data; the last two bytes are (protocol, i) */
static const uint8_t card_rec[] = {
    0x66, 0x31, 0x73, 0x2F, 0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01,
    0x60, 0x0C, 0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x02, 0x02, 0x01,
    0x01, 0x63, 0x09, 0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x03, 0x64,
    0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x04, 0x02, 0x15};

uint16_t
vt_gp_init_update(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    struct cmn_keyset *ks;
    struct cmn_scp_iu iu;
    uint8_t challenge[8], seq2[2], out[32];
    size_t n;

    if (a->lc != 8)
        return VT_SW_WRONG_LENGTH;
    /* KV 00 = the default set; any other version must exist (§2.4, §4.6 item 1) */
    ks = vt_keyset_find(c, a->p1 == 0 ? c->default_kv : a->p1);
    if (ks == NULL) {
        cmn_scp_cleanup(&c->scp);
        return VT_SW_REF_NOT_FOUND;
    }
    if (c->fixed_challenge)
        memcpy(challenge, c->challenge, 8);
    else if (cmn_crypto_random(challenge, sizeof(challenge)) != CMN_OK)
        return VT_SW_INTERNAL;
    memset(&iu, 0, sizeof(iu));
    cmn_scp_cleanup(&c->scp);
    (void)cmn_scp_init(&c->scp, c->proto);
    seq2[0] = (uint8_t)(c->seq >> 8);
    seq2[1] = (uint8_t)c->seq;
    if (cmn_scp_set_challenges(&c->scp, a->data, challenge, c->proto == CMN_SCP02 ? 6 : 8,
                               c->proto == CMN_SCP02 ? seq2 : NULL) != CMN_OK ||
        cmn_scp_derive(&c->scp, ks) != CMN_OK ||
        cmn_scp_card_cryptogram(&c->scp, iu.card_cryptogram) != CMN_OK) {
        cmn_scp_cleanup(&c->scp);
        return VT_SW_INTERNAL;
    }
    memcpy(iu.kdd, c->cuid, 10); /* KDD = CUID (§2.4) */
    iu.key_version = ks->version;
    iu.scp_id = (uint8_t)c->proto;
    iu.i_param = c->scp03_i;
    memcpy(iu.card_challenge, challenge, 8);
    iu.card_challenge_len = c->proto == CMN_SCP02 ? 6 : 8;
    if (c->proto == CMN_SCP02) {
        memcpy(iu.seq, seq2, 2);
        iu.seq_len = 2;
    } else if (c->proto == CMN_SCP03 && (c->scp03_i & 0x10)) {
        iu.seq[0] = (uint8_t)(c->seq >> 16);
        iu.seq[1] = (uint8_t)(c->seq >> 8);
        iu.seq[2] = (uint8_t)c->seq;
        iu.seq_len = 3;
    }
    if (cmn_scp_iu_encode(c->proto, &iu, out, sizeof(out), &n) != CMN_OK ||
        !vt_resp_put(r, out, n)) {
        cmn_scp_cleanup(&c->scp);
        return VT_SW_INTERNAL;
    }
    c->sess_kv = ks->version;
    cmn_wipe(&iu, sizeof(iu));
    return VT_SW_OK;
}

uint16_t
vt_gp_ext_auth(struct vt_card *c, const struct cmn_apdu *a)
{
    uint16_t sw = VT_SW_CONDITIONS;

    if (cmn_scp_card_ext_auth(&c->scp, a, &sw) != CMN_OK)
        return sw == VT_SW_OK ? VT_SW_SECURITY : sw;
    /* one more session opened with this counter (GP; §4.4) */
    c->seq = (c->seq + 1) & 0xFFFFFF;
    c->dirty = true;
    return VT_SW_OK;
}

static uint16_t
get_data(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    uint8_t b[64];
    struct cmn_keyset *ks;

    switch ((a->p1 << 8) | a->p2) {
    case 0x9F7F: /* CPLC: CUID and MSN at the offsets of §2.3 */
        memset(b, 0, 45);
        b[0] = 0x9F;
        b[1] = 0x7F;
        b[2] = 0x2A;
        memcpy(b + 3, c->cuid, 4);      /* IC fabricator, IC type */
        memcpy(b + 15, c->cuid + 6, 4); /* IC serial number */
        memcpy(b + 19, c->cuid + 4, 2); /* IC batch identifier */
        memcpy(b + 41, c->msn, 4);      /* IC personalization equipment ID */
        return vt_resp_put(r, b, 45) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0x0066: /* card recognition data: SCP01 cards have none */
        if (c->proto == CMN_SCP01)
            return VT_SW_REF_NOT_FOUND;
        memcpy(b, card_rec, sizeof(card_rec));
        b[sizeof(card_rec) - 2] = (uint8_t)c->proto;
        b[sizeof(card_rec) - 1] = c->proto == CMN_SCP02 ? 0x15 : c->scp03_i;
        return vt_resp_put(r, b, sizeof(card_rec)) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0x00E0: /* key information template of the default set */
        ks = vt_keyset_find(c, c->default_kv);
        if (ks == NULL)
            return VT_SW_REF_NOT_FOUND;
        b[0] = 0xE0;
        b[1] = 18;
        for (int i = 0; i < 3; i++) {
            b[2 + 6 * i] = 0xC0;
            b[3 + 6 * i] = 0x04;
            b[4 + 6 * i] = (uint8_t)(i + 1);
            b[5 + 6 * i] = ks->version;
            b[6 + 6 * i] = ks->enc.alg == CMN_KEY_AES ? 0x88 : 0x80;
            b[7 + 6 * i] = (uint8_t)ks->enc.len;
        }
        return vt_resp_put(r, b, 20) ? VT_SW_OK : VT_SW_INTERNAL;
    default:
        return VT_SW_REF_NOT_FOUND;
    }
}

static uint16_t
put_key(struct vt_card *c, const struct cmn_apdu *a)
{
    struct cmn_keyset ks, *old;
    size_t i;

    if ((a->p2 & 0x80) == 0)
        return VT_SW_WRONG_P1P2;
    if (cmn_keyset_data_parse(c->proto, &c->scp.dek, a->data, a->lc, &ks) != CMN_OK)
        return VT_SW_WRONG_DATA;
    if (ks.version == 0 || ks.version == 0xFF) {
        cmn_keyset_wipe(&ks);
        return VT_SW_WRONG_DATA;
    }
    /* P1 = version replaced; 00 = add a set (§2.6) */
    old = vt_keyset_find(c, a->p1 != 0 ? a->p1 : ks.version);
    if (old == NULL && a->p1 != 0) {
        cmn_keyset_wipe(&ks);
        return VT_SW_REF_NOT_FOUND;
    }
    if (old == NULL) {
        if (c->nkeysets == VT_MAX_KEYSETS) {
            cmn_keyset_wipe(&ks);
            return VT_SW_NO_MEMORY;
        }
        old = &c->keysets[c->nkeysets++];
    }
    /* replacing set P1 by a version another set already has: that other set goes */
    for (i = 0; i < c->nkeysets; i++) {
        if (&c->keysets[i] != old && c->keysets[i].version == ks.version) {
            size_t keep = (size_t)(old - c->keysets);

            cmn_keyset_wipe(&c->keysets[i]);
            c->keysets[i] = c->keysets[c->nkeysets - 1];
            c->nkeysets--;
            if (keep == c->nkeysets)
                keep = i; /* the moved entry was the target */
            old = &c->keysets[keep];
            break;
        }
    }
    *old = ks;
    c->default_kv = ks.version;
    cmn_keyset_wipe(&ks);
    c->dirty = true;
    return VT_SW_OK;
}

static int
find_package(const struct vt_card *c, const uint8_t *aid, size_t n)
{
    for (size_t i = 0; i < c->npackages; i++)
        if (c->packages[i][0] == n && memcmp(&c->packages[i][1], aid, n) == 0)
            return (int)i;
    return -1;
}

static void
add_package(struct vt_card *c, const uint8_t *aid, size_t n)
{
    if (n > VT_AID_MAX || find_package(c, aid, n) >= 0 || c->npackages == VT_MAX_PACKAGES)
        return;
    c->packages[c->npackages][0] = (uint8_t)n;
    memcpy(&c->packages[c->npackages][1], aid, n);
    c->npackages++;
    c->dirty = true;
}

static uint16_t
delete_cmd(struct vt_card *c, const struct cmn_apdu *a)
{
    struct cmn_rd rd;
    uint8_t tag, len;
    const uint8_t *v;
    struct cmn_keyset *ks;
    int i;

    cmn_rd_init(&rd, a->data, a->lc);
    if (!cmn_rd_u8(&rd, &tag) || !cmn_rd_u8(&rd, &len) || !cmn_rd_take(&rd, len, &v))
        return VT_SW_WRONG_DATA;
    if (tag == 0xD2) { /* DELETE KEY: D2 01 version (§2.6, optional) */
        if (len != 1 || (ks = vt_keyset_find(c, v[0])) == NULL)
            return VT_SW_REF_NOT_FOUND;
        if (c->nkeysets == 1 || ks->version == c->default_kv)
            return VT_SW_CONDITIONS;
        cmn_keyset_wipe(ks);
        *ks = c->keysets[c->nkeysets - 1];
        c->nkeysets--;
        c->dirty = true;
        return VT_SW_OK;
    }
    if (tag != 0x4F || len == 0 || len > VT_AID_MAX)
        return VT_SW_WRONG_DATA;
    if (c->applet_present && c->applet_aid[0] == len && memcmp(&c->applet_aid[1], v, len) == 0) {
        vt_applet_remove(c);
        c->dirty = true;
        return VT_SW_OK;
    }
    i = find_package(c, v, len);
    if (i < 0)
        return VT_SW_REF_NOT_FOUND; /* absent AID (§1.4); the TPS ignores it */
    memmove(c->packages[i], c->packages[i + 1],
            (c->npackages - (size_t)i - 1) * sizeof(c->packages[0]));
    c->npackages--;
    c->dirty = true;
    return VT_SW_OK;
}

static uint16_t
install_cmd(struct vt_card *c, const struct cmn_apdu *a)
{
    struct cmn_rd rd;
    uint8_t n;
    const uint8_t *pkg, *mod, *inst, *priv, *params;
    uint8_t npkg, nmod, ninst, npriv, nparams;
    uint16_t mem = c->mem_total;

    cmn_rd_init(&rd, a->data, a->lc);
    if (!cmn_rd_u8(&rd, &npkg) || !cmn_rd_take(&rd, npkg, &pkg) || npkg > VT_AID_MAX)
        return VT_SW_WRONG_DATA;
    if (a->p1 == 0x02) { /* INSTALL [for load]: pkg, sd, hash, params, token (§2.7) */
        if (npkg == 0)
            return VT_SW_WRONG_DATA;
        c->loading = true;
        c->load_next = 0;
        c->load_bytes = 0;
        c->load_pkg[0] = npkg;
        memcpy(&c->load_pkg[1], pkg, npkg);
        return VT_SW_OK;
    }
    if ((a->p1 & 0x04) == 0)
        return VT_SW_WRONG_P1P2;
    /* INSTALL [for install (and make selectable)]: pkg, module, instance, privileges,
     * parameters, token */
    if (!cmn_rd_u8(&rd, &nmod) || !cmn_rd_take(&rd, nmod, &mod) || !cmn_rd_u8(&rd, &ninst) ||
        !cmn_rd_take(&rd, ninst, &inst) || !cmn_rd_u8(&rd, &npriv) ||
        !cmn_rd_take(&rd, npriv, &priv) || !cmn_rd_u8(&rd, &nparams) ||
        !cmn_rd_take(&rd, nparams, &params) || ninst == 0 || ninst > VT_AID_MAX)
        return VT_SW_WRONG_DATA;
    (void)mod;
    (void)priv;
    /* the TPS may never mark the last LOAD block (§2.7, Java bug): INSTALL completes it */
    if (c->loading && c->load_pkg[0] == npkg && memcmp(&c->load_pkg[1], pkg, npkg) == 0) {
        add_package(c, pkg, npkg);
        c->loading = false;
    }
    if (find_package(c, pkg, npkg) < 0)
        return VT_SW_REF_NOT_FOUND;
    if (c->applet_present)
        return VT_SW_CONDITIONS; /* delete the instance first */
    /* parameters: EF 04 C8 02 size, C9 04 issuerLen(00) memLen(02) mem(2) (§2.7) */
    cmn_rd_init(&rd, params, nparams);
    while (rd.left >= 2) {
        uint8_t tag;
        const uint8_t *v;

        if (!cmn_rd_u8(&rd, &tag) || !cmn_rd_u8(&rd, &n) || !cmn_rd_take(&rd, n, &v))
            break;
        if (tag == 0xC9 && n >= 2 && (size_t)v[0] + 2 <= n) {
            size_t off = 1 + v[0]; /* skip the issuer info */
            if (off < n && v[off] == 2 && off + 3 <= n) {
                uint16_t m = (uint16_t)((v[off + 1] << 8) | v[off + 2]);
                if (m >= 512 && m < 0x8000)
                    mem = m;
            }
        }
    }
    vt_applet_install(c, inst, ninst, mem);
    c->dirty = true;
    return VT_SW_OK;
}

static uint16_t
load_cmd(struct vt_card *c, const struct cmn_apdu *a)
{
    if (!c->loading)
        return VT_SW_CONDITIONS;
    if (a->p2 != (c->load_next & 0xFF))
        return VT_SW_WRONG_P1P2;
    c->load_next++;
    c->load_bytes += a->lc;
    if (a->p1 & 0x80) {
        add_package(c, &c->load_pkg[1], c->load_pkg[0]);
        c->loading = false;
    }
    return VT_SW_OK;
}

uint16_t
vt_gp_isd(struct vt_card *c, const struct cmn_apdu *a, bool via_sc, struct vt_resp *r)
{
    uint8_t rnd[256];
    size_t n;

    switch (a->ins) {
    case 0xCA: /* GET DATA */
        return get_data(c, a, r);
    case 0x84: /* GET CHALLENGE */
        n = a->le < 0 ? 8 : (size_t)a->le;
        if (n == 0 || cmn_crypto_random(rnd, n) != CMN_OK)
            return VT_SW_WRONG_LENGTH;
        return vt_resp_put(r, rnd, n) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0xD8:
        return via_sc ? put_key(c, a) : VT_SW_SECURITY;
    case 0xE4:
        return via_sc ? delete_cmd(c, a) : VT_SW_SECURITY;
    case 0xE6:
        return via_sc ? install_cmd(c, a) : VT_SW_SECURITY;
    case 0xE8:
        return via_sc ? load_cmd(c, a) : VT_SW_SECURITY;
    default:
        return VT_SW_INS;
    }
}
