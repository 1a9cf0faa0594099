/* tokenclient/vtoken/applet.c - the CoolKey applet v1.4 of the emulated card: identities and
 * nonces, PINs, objects, key generation with proof, key import, COMPUTE CRYPT (card spec §3);
 * the ECC instructions are in ecc.c. */
#include "tokenclient/vtoken/card.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/crypto.h"

#define IO_ID 0xFFFFFFFFu
#define IO_ID2 0xFFFFFFFEu

void
vt_keyslot_clear(struct vt_keyslot *k)
{
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
    k->mate = 0xFF;
}

static void
object_free(struct vt_object *o)
{
    if (o->data != NULL) {
        cmn_wipe(o->data, o->size);
        free(o->data);
    }
    memset(o, 0, sizeof(*o));
}

void
vt_applet_deselect(struct vt_card *c)
{
    cmn_wipe(c->io, sizeof(c->io));
    c->io_len = 0;
    c->list_obj_pos = 0;
    c->list_key_pos = 0;
}

void
vt_applet_remove(struct vt_card *c)
{
    for (size_t i = 0; i < c->nobjects; i++)
        object_free(&c->objects[i]);
    c->nobjects = 0;
    for (size_t i = 0; i < VT_MAX_KEYSLOTS; i++)
        vt_keyslot_clear(&c->keys[i]);
    cmn_wipe(c->pins, sizeof(c->pins));
    memset(c->issuer, 0, sizeof(c->issuer));
    c->applet_present = false;
    c->applet_aid[0] = 0;
    c->life_cycle = 0x00;
    memset(c->logged, 0, sizeof(c->logged));
    cmn_wipe(c->nonce, sizeof(c->nonce));
    c->nonce_valid = false;
    if (c->sel == VT_SEL_APPLET)
        c->sel = VT_SEL_ISD;
}

void
vt_applet_install(struct vt_card *c, const uint8_t *aid, size_t aid_len, uint16_t mem)
{
    vt_applet_remove(c);
    c->applet_present = true;
    c->applet_aid[0] = (uint8_t)aid_len;
    memcpy(&c->applet_aid[1], aid, aid_len);
    c->life_cycle = 0x07; /* SELECTABLE (§7.2) */
    c->mem_total = mem;
    /* the emulator cannot run the loaded code: the version comes from configuration (§7.3) */
    c->applet_major = c->upgrade_major;
    c->applet_minor = c->upgrade_minor;
    c->applet_build = c->upgrade_build;
}

struct vt_object *
vt_object_find(struct vt_card *c, uint32_t id)
{
    for (size_t i = 0; i < c->nobjects; i++)
        if (c->objects[i].id == id)
            return &c->objects[i];
    return NULL;
}

void
vt_object_delete(struct vt_card *c, uint32_t id)
{
    for (size_t i = 0; i < c->nobjects; i++) {
        if (c->objects[i].id != id)
            continue;
        object_free(&c->objects[i]);
        memmove(&c->objects[i], &c->objects[i + 1],
                (c->nobjects - i - 1) * sizeof(c->objects[0]));
        c->nobjects--;
        memset(&c->objects[c->nobjects], 0, sizeof(c->objects[0]));
        c->dirty = true;
        return;
    }
}

size_t
vt_mem_free(const struct vt_card *c)
{
    size_t used = 0;

    for (size_t i = 0; i < c->nobjects; i++)
        used += c->objects[i].size;
    return used >= c->mem_total ? 0 : c->mem_total - used;
}

static uint16_t
logged_mask(const struct vt_card *c)
{
    uint16_t m = 0;

    for (int i = 0; i < VT_MAX_PINS; i++)
        if (c->logged[i])
            m |= (uint16_t)(1u << i);
    return m;
}

/* After a logout or a failed VERIFY: the nonce dies with the last login (§7.2). */
static void
update_nonce(struct vt_card *c)
{
    if (logged_mask(c) == 0) {
        cmn_wipe(c->nonce, sizeof(c->nonce));
        c->nonce_valid = false;
    }
}

static uint32_t
get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

bool
vt_resp_put_u16(struct vt_resp *r, size_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

    return vt_resp_put(r, b, 2);
}

static size_t
npins(const struct vt_card *c)
{
    size_t n = 0;

    for (int i = 0; i < VT_MAX_PINS; i++)
        n += c->pins[i].present;
    return n;
}

static size_t
nkeys(const struct vt_card *c)
{
    size_t n = 0;

    for (int i = 0; i < VT_MAX_KEYSLOTS; i++)
        n += c->keys[i].present;
    return n;
}

/* --- status and lists --- */

static uint16_t
get_status(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    uint8_t b[16];
    size_t fr = vt_mem_free(c);
    uint16_t lm = logged_mask(c);

    if (a->p1 != 0)
        return VT_SW_INS; /* B0 3C 01 00: the OpenSC probe wants 6D00 (§3.1) */
    b[0] = 1; /* protocol 1.1 */
    b[1] = 1;
    b[2] = c->applet_major;
    b[3] = c->applet_minor;
    b[4] = 0;
    b[5] = 0;
    b[6] = (uint8_t)(c->mem_total >> 8);
    b[7] = (uint8_t)c->mem_total;
    b[8] = 0;
    b[9] = 0;
    b[10] = (uint8_t)(fr >> 8);
    b[11] = (uint8_t)fr;
    b[12] = (uint8_t)npins(c);
    b[13] = (uint8_t)nkeys(c);
    b[14] = (uint8_t)(lm >> 8);
    b[15] = (uint8_t)lm;
    return vt_resp_put(r, b, 16) ? VT_SW_OK : VT_SW_INTERNAL;
}

static uint16_t
list_objects(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    uint8_t b[14];
    const struct vt_object *o;

    if (a->p1 == 0)
        c->list_obj_pos = 0;
    else if (a->p1 != 1)
        return VT_SW_BAD_P1;
    if (c->list_obj_pos >= c->nobjects)
        return VT_SW_SEQ_END; /* OpenSC needs exactly 9C12 (§3.2) */
    o = &c->objects[c->list_obj_pos++];
    cmn_put_u32(b, o->id);
    cmn_put_u32(b + 4, (uint32_t)o->size);
    cmn_put_u16(b + 8, o->acl[0]);
    cmn_put_u16(b + 10, o->acl[1]);
    cmn_put_u16(b + 12, o->acl[2]);
    return vt_resp_put(r, b, sizeof(b)) ? VT_SW_OK : VT_SW_INTERNAL;
}

static uint16_t
list_keys(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    uint8_t b[11];
    const struct vt_keyslot *k;

    if (a->p1 == 0)
        c->list_key_pos = 0;
    else if (a->p1 != 1)
        return VT_SW_BAD_P1;
    while (c->list_key_pos < VT_MAX_KEYSLOTS && !c->keys[c->list_key_pos].present)
        c->list_key_pos++;
    if (c->list_key_pos >= VT_MAX_KEYSLOTS)
        return VT_SW_OK; /* after the last: 9000 without data (§3.2) */
    k = &c->keys[c->list_key_pos];
    b[0] = (uint8_t)c->list_key_pos++;
    b[1] = k->type;
    b[2] = k->mate;
    cmn_put_u16(b + 3, k->bits);
    cmn_put_u16(b + 5, k->acl[0]);
    cmn_put_u16(b + 7, k->acl[1]);
    cmn_put_u16(b + 9, k->acl[2]);
    return vt_resp_put(r, b, sizeof(b)) ? VT_SW_OK : VT_SW_INTERNAL;
}

/* --- PINs (§7.2) --- */

static bool
pin_matches(const struct vt_pin *p, const uint8_t *v, size_t n)
{
    uint8_t buf[VT_PIN_MAX];
    bool same;

    if (n > VT_PIN_MAX)
        return false;
    /* compare a fixed-size copy so the time does not depend on where they differ */
    memset(buf, 0, sizeof(buf));
    memcpy(buf, v, n);
    same = cmn_ct_memcmp(buf, p->value, VT_PIN_MAX) == 0 && n == p->len;
    cmn_wipe(buf, sizeof(buf));
    return same;
}

/* Checks a PIN value against PIN n, counting tries. Returns the SW. */
static uint16_t
check_pin(struct vt_card *c, unsigned n, const uint8_t *v, size_t len)
{
    struct vt_pin *p = &c->pins[n];

    if (p->tries_left == 0)
        return VT_SW_BLOCKED;
    if (!pin_matches(p, v, len)) {
        p->tries_left--;
        c->logged[n] = 0; /* every login of this PIN is dropped */
        update_nonce(c);
        c->dirty = true;
        return VT_SW_AUTH_FAILED;
    }
    if (p->tries_left != p->max_tries) {
        p->tries_left = p->max_tries;
        c->dirty = true;
    }
    return VT_SW_OK;
}

static void
set_pin(struct vt_pin *p, const uint8_t *v, size_t n)
{
    memset(p->value, 0, sizeof(p->value));
    memcpy(p->value, v, n);
    p->len = (uint8_t)n;
    p->tries_left = p->max_tries;
    p->present = true;
}

static uint16_t
verify_pin(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    uint16_t sw;

    if (a->p1 >= VT_MAX_PINS || !c->pins[a->p1].present)
        return VT_SW_BAD_P1;
    sw = check_pin(c, a->p1, a->data, a->lc);
    if (sw != VT_SW_OK)
        return sw;
    if (c->logged[a->p1] < 255)
        c->logged[a->p1]++;
    if (!c->nonce_valid) {
        if (cmn_crypto_random(c->nonce, sizeof(c->nonce)) != CMN_OK)
            return VT_SW_INTERNAL;
        c->nonce[0] |= 0x01; /* never all-zero: that nonce means "default identity" */
        c->nonce_valid = true;
    }
    return vt_resp_put(r, c->nonce, 8) ? VT_SW_OK : VT_SW_INTERNAL;
}

static uint16_t
change_pin(struct vt_card *c, const struct cmn_apdu *a)
{
    const uint8_t *d = a->data;
    size_t n = a->lc, lo, ln, off_new;
    uint16_t sw;

    if (a->p1 >= VT_MAX_PINS || !c->pins[a->p1].present)
        return VT_SW_BAD_P1;
    /* the applet uses 1-byte lengths; libckyapplet writes 2-byte ones (§9 item 7) */
    if (n >= 2 && d[0] != 0 && (size_t)d[0] + 2 <= n && (size_t)d[0] + 2 + d[1 + d[0]] == n) {
        lo = d[0];
        ln = d[1 + lo];
        off_new = 2 + lo; /* lenOld old lenNew new */
        d += 1;
    } else if (n >= 4 && d[0] == 0 && (size_t)d[1] + 4 <= n &&
               (size_t)d[1] + 4 + (size_t)((d[2 + d[1]] << 8) | d[3 + d[1]]) == n) {
        lo = d[1];
        ln = (size_t)((d[2 + lo] << 8) | d[3 + lo]);
        off_new = 4 + lo; /* lenOld(2) old lenNew(2) new */
        d += 2;
    } else {
        return VT_SW_INVALID_PARAM;
    }
    if (ln < VT_PIN_MIN || ln > VT_PIN_MAX)
        return VT_SW_INVALID_PARAM;
    sw = check_pin(c, a->p1, d, lo);
    if (sw != VT_SW_OK)
        return sw;
    set_pin(&c->pins[a->p1], a->data + off_new, ln);
    c->dirty = true;
    return VT_SW_OK;
}

static uint16_t
logout(struct vt_card *c, const struct cmn_apdu *a)
{
    if (a->p1 >= VT_MAX_PINS)
        return VT_SW_BAD_P1;
    if (c->logged[a->p1] > 0)
        c->logged[a->p1]--;
    update_nonce(c);
    return VT_SW_OK;
}

static uint16_t
create_pin(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids)
{
    if (!(ids & VT_ID_RA)) /* create_pin_ACL = 4000 */
        return VT_SW_UNAUTHORIZED;
    if (a->p1 >= VT_MAX_PINS || c->pins[a->p1].present)
        return VT_SW_BAD_P1; /* 9C10 also means "PIN exists" (§1.4) */
    if (a->lc < VT_PIN_MIN || a->lc > VT_PIN_MAX || a->p2 == 0)
        return VT_SW_INVALID_PARAM;
    c->pins[a->p1].max_tries = a->p2;
    set_pin(&c->pins[a->p1], a->data, a->lc);
    c->dirty = true;
    return VT_SW_OK;
}

static uint16_t
reset_pin(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids)
{
    if (!(ids & VT_ID_RA))
        return VT_SW_UNAUTHORIZED;
    if (a->p1 >= VT_MAX_PINS || !c->pins[a->p1].present)
        return VT_SW_BAD_P1;
    if (a->lc < VT_PIN_MIN || a->lc > VT_PIN_MAX)
        return VT_SW_INVALID_PARAM;
    set_pin(&c->pins[a->p1], a->data, a->lc); /* unblocks, tries = max */
    c->logged[a->p1] = 0;
    update_nonce(c);
    c->dirty = true;
    return VT_SW_OK;
}

/* --- objects (§3.2, §6) --- */

static uint16_t
create_object(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids)
{
    uint32_t id, size;
    struct vt_object *o;

    if (!(ids & VT_ID_RA)) /* create_object_ACL = 4000 */
        return VT_SW_UNAUTHORIZED;
    if (a->lc != 14)
        return VT_SW_INVALID_PARAM;
    id = get_u32(a->data);
    size = get_u32(a->data + 4);
    if (id == IO_ID || id == IO_ID2) { /* the I/O buffer is not a real object */
        if (size > VT_IOBUF_MAX)
            return VT_SW_NO_MEMORY;
        c->io_len = 0;
        return VT_SW_OK;
    }
    if (vt_object_find(c, id) != NULL)
        vt_object_delete(c, id); /* the RA replaces an existing object */
    if (size == 0 || size > vt_mem_free(c) || c->nobjects == VT_MAX_OBJECTS)
        return VT_SW_NO_MEMORY;
    memmove(&c->objects[1], &c->objects[0], c->nobjects * sizeof(c->objects[0]));
    o = &c->objects[0]; /* newest first, like the applet */
    memset(o, 0, sizeof(*o));
    o->data = calloc(1, size);
    if (o->data == NULL) {
        memmove(&c->objects[0], &c->objects[1], c->nobjects * sizeof(c->objects[0]));
        return VT_SW_NO_MEMORY;
    }
    c->nobjects++;
    o->id = id;
    o->size = size;
    o->acl[0] = (uint16_t)((a->data[8] << 8) | a->data[9]);
    o->acl[1] = (uint16_t)((a->data[10] << 8) | a->data[11]);
    o->acl[2] = (uint16_t)((a->data[12] << 8) | a->data[13]);
    c->dirty = true;
    return VT_SW_OK;
}

static uint16_t
write_object(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids)
{
    uint32_t id, off;
    size_t n;
    struct vt_object *o;

    if (a->lc < 9)
        return VT_SW_INVALID_PARAM;
    id = get_u32(a->data);
    off = get_u32(a->data + 4);
    n = a->data[8];
    if (a->lc != 9 + n)
        return VT_SW_INVALID_PARAM;
    if (id == IO_ID || id == IO_ID2) {
        /* each write sets the I/O buffer size to offset + n (§3.6) */
        if (off > VT_IOBUF_MAX || n > VT_IOBUF_MAX - off)
            return VT_SW_INVALID_PARAM;
        memcpy(c->io + off, a->data + 9, n);
        c->io_len = off + n;
        return VT_SW_OK;
    }
    o = vt_object_find(c, id);
    if (o == NULL)
        return VT_SW_OBJ_NOT_FOUND;
    if (!(o->acl[1] & ids))
        return VT_SW_UNAUTHORIZED;
    if (off > o->size || n > o->size - off)
        return VT_SW_INVALID_PARAM;
    memcpy(o->data + off, a->data + 9, n);
    c->dirty = true;
    return VT_SW_OK;
}

static uint16_t
read_object(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids, struct vt_resp *r)
{
    uint32_t id, off;
    size_t n;
    const struct vt_object *o;

    if (a->lc != 9)
        return VT_SW_INVALID_PARAM;
    id = get_u32(a->data);
    off = get_u32(a->data + 4);
    n = a->data[8];
    if (id == IO_ID || id == IO_ID2) {
        if (off > c->io_len || n > c->io_len - off)
            return VT_SW_INVALID_PARAM;
        return vt_resp_put(r, c->io + off, n) ? VT_SW_OK : VT_SW_INTERNAL;
    }
    o = vt_object_find(c, id);
    if (o == NULL)
        return VT_SW_OBJ_NOT_FOUND;
    if (!(o->acl[0] & ids))
        return VT_SW_UNAUTHORIZED;
    if (off > o->size || n > o->size - off)
        return VT_SW_INVALID_PARAM; /* beyond the end: 9C0F (§3.2) */
    return vt_resp_put(r, o->data + off, n) ? VT_SW_OK : VT_SW_INTERNAL;
}

static uint16_t
delete_object(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids)
{
    struct vt_object *o;

    if (a->lc != 4)
        return VT_SW_INVALID_PARAM;
    o = vt_object_find(c, get_u32(a->data));
    if (o == NULL)
        return VT_SW_OBJ_NOT_FOUND;
    if (!(o->acl[2] & ids))
        return VT_SW_UNAUTHORIZED;
    vt_object_delete(c, o->id); /* content is wiped either way (P2 01 asks for it) */
    return VT_SW_OK;
}

/* --- keys (§3.4-3.6) --- */

static uint16_t
key_bits(const EVP_PKEY *pk)
{
    int b = EVP_PKEY_get_bits(pk);

    return b > 0 && b < 65536 ? (uint16_t)b : 0;
}

uint16_t
vt_key_install_pair(struct vt_card *c, EVP_PKEY *pkey, unsigned priv, unsigned pub,
                    unsigned user)
{
    struct vt_keyslot *kp = &c->keys[priv], *ku = &c->keys[pub];
    unsigned char *der = NULL;
    const unsigned char *p;
    int n;
    EVP_PKEY *pubonly;
    bool ec = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC;

    n = i2d_PUBKEY(pkey, &der);
    if (n <= 0) {
        EVP_PKEY_free(pkey);
        return VT_SW_INTERNAL;
    }
    p = der;
    pubonly = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    if (pubonly == NULL) {
        EVP_PKEY_free(pkey);
        return VT_SW_INTERNAL;
    }
    vt_keyslot_clear(kp);
    vt_keyslot_clear(ku);
    kp->present = true;
    kp->type = ec ? VT_KEY_EC_PRIVATE : VT_KEY_RSA_PRIVATE_CRT;
    kp->mate = (uint8_t)pub;
    kp->bits = key_bits(pkey);
    kp->acl[0] = 0x0000;
    kp->acl[1] = VT_ID_RA;
    kp->acl[2] = user == 0xF ? 0xFFFF : (uint16_t)(1u << user);
    kp->pkey = pkey;
    ku->present = true;
    ku->type = ec ? VT_KEY_EC_PUBLIC : VT_KEY_RSA_PUBLIC;
    ku->mate = (uint8_t)priv;
    ku->bits = kp->bits;
    ku->acl[0] = 0xFFFF;
    ku->acl[1] = VT_ID_RA;
    ku->acl[2] = 0xFFFF;
    ku->pkey = pubonly;
    c->dirty = true;
    return VT_SW_OK;
}

static bool
bn_param(const EVP_PKEY *pk, const char *name, uint8_t *out, size_t cap, size_t *n)
{
    BIGNUM *bn = NULL;
    int len;

    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
        return false;
    len = BN_num_bytes(bn);
    if (len <= 0 || (size_t)len > cap) {
        BN_free(bn);
        return false;
    }
    *n = (size_t)BN_bn2bin(bn, out);
    BN_free(bn);
    return true;
}

uint16_t
vt_key_slots(const struct cmn_apdu *a, unsigned *priv, unsigned *pub, unsigned *user)
{
    if (a->p1 == 0 && a->p2 == 0) { /* legacy defaults: 0/1, owner F */
        *priv = 0;
        *pub = 1;
        *user = 0xF;
    } else {
        *priv = a->p1 & 0x0F;
        *user = a->p1 >> 4;
        *pub = a->p2 & 0x0F;
    }
    if (*priv == *pub)
        return VT_SW_BAD_P2;
    if (*user != 0xF && *user >= VT_MAX_PINS)
        return VT_SW_BAD_P1;
    return VT_SW_OK;
}

static uint16_t
generate_key(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    const uint8_t *d = a->data;
    unsigned priv, pub, user, bits;
    uint8_t challenge[16], mod[512], exp[8];
    size_t nmod, nexp, blob_len, proof_len, total;
    struct cmn_keyset *ks;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *md = NULL;
    uint16_t sw = VT_SW_INTERNAL;

    if (a->lc != 23) /* the v1.4 applet wants exactly 17 (§3.4) */
        return VT_SW_WRONG_LENGTH;
    if (d[0] != 0x80 && d[0] != 0x81)
        return VT_SW_BAD_ALG;
    bits = (unsigned)((d[1] << 8) | d[2]);
    if (bits != 1024 && bits != 2048)
        return VT_SW_INVALID_PARAM;
    if (d[5] != 0x10)
        return VT_SW_INVALID_PARAM;
    sw = vt_key_slots(a, &priv, &pub, &user);
    if (sw != VT_SW_OK)
        return sw;
    sw = VT_SW_INTERNAL;
    /* the challenge comes encrypted under the static KEK of the session's set */
    ks = vt_keyset_find(c, c->sess_kv);
    if (ks == NULL || cmn_scp_challenge_decrypt(&ks->kek, d + 6, challenge) != CMN_OK)
        return VT_SW_INTERNAL;
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (pk == NULL || !bn_param(pk, OSSL_PKEY_PARAM_RSA_N, mod, sizeof(mod), &nmod) ||
        !bn_param(pk, OSSL_PKEY_PARAM_RSA_E, exp, sizeof(exp), &nexp))
        goto out;
    /* I/O buffer: blobLen ‖ blob ‖ proofLen ‖ proof, blob = 00 01 keySize modLen modulus
     * expLen exponent; proof = RSA-SHA1(blob ‖ challenge) (§3.4, §9 item 11) */
    blob_len = 2 + 2 + 2 + nmod + 2 + nexp;
    total = 2 + blob_len + 2 + nmod;
    if (total > VT_IOBUF_MAX)
        goto out;
    {
        uint8_t *io = c->io, *blob = io + 2;
        size_t siglen = nmod;

        cmn_put_u16(io, (uint16_t)blob_len);
        blob[0] = 0x00;
        blob[1] = 0x01;
        cmn_put_u16(blob + 2, (uint16_t)bits);
        cmn_put_u16(blob + 4, (uint16_t)nmod);
        memcpy(blob + 6, mod, nmod);
        cmn_put_u16(blob + 6 + nmod, (uint16_t)nexp);
        memcpy(blob + 8 + nmod, exp, nexp);
        md = EVP_MD_CTX_new();
        if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha1(), NULL, pk) != 1 ||
            EVP_DigestSignUpdate(md, blob, blob_len) != 1 ||
            EVP_DigestSignUpdate(md, challenge, sizeof(challenge)) != 1 ||
            EVP_DigestSignFinal(md, io + 2 + blob_len + 2, &siglen) != 1 || siglen != nmod)
            goto out;
        proof_len = siglen;
        cmn_put_u16(io + 2 + blob_len, (uint16_t)proof_len);
        c->io_len = total;
    }
    sw = vt_key_install_pair(c, pk, priv, pub, user);
    pk = NULL;
    if (sw == VT_SW_OK && !vt_resp_put_u16(r, total))
        sw = VT_SW_INTERNAL;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    cmn_wipe(challenge, sizeof(challenge));
    return sw;
}

static uint16_t
import_key_encrypted(struct vt_card *c, const struct cmn_apdu *a)
{
    struct cmn_rd rd;
    uint32_t id;
    uint8_t alg, wl, kl, il;
    const uint8_t *wrapped, *kcv, *iv;
    struct cmn_key tk;
    struct cmn_keyset *ks;
    struct vt_object *o;
    uint8_t raw[32], chk[3], *plain = NULL;
    size_t n, pad;
    const unsigned char *p;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *pk = NULL;
    uint16_t sw = VT_SW_WRONG_DATA;
    unsigned priv = a->p1 & 0x0F, user = a->p1 >> 4, pub = a->p2 & 0x0F;

    memset(&tk, 0, sizeof(tk));
    cmn_rd_init(&rd, a->data, a->lc);
    if (!cmn_rd_u32(&rd, &id) || !cmn_rd_u8(&rd, &alg) || !cmn_rd_u8(&rd, &wl) ||
        !cmn_rd_take(&rd, wl, &wrapped) || !cmn_rd_u8(&rd, &kl) || !cmn_rd_take(&rd, kl, &kcv) ||
        !cmn_rd_u8(&rd, &il) || !cmn_rd_take(&rd, il, &iv) || kl > 3)
        return VT_SW_INVALID_PARAM;
    if (priv == pub || (user != 0xF && user >= VT_MAX_PINS))
        return VT_SW_BAD_P1;
    o = vt_object_find(c, id);
    if (o == NULL)
        return VT_SW_OBJ_NOT_FOUND;
    ks = vt_keyset_find(c, c->sess_kv);
    if (ks == NULL)
        return VT_SW_INTERNAL;
    /* the transport key comes wrapped under the static KEK (§3.5) */
    if ((alg == 0x81 && wl == 16 && il == 8 && ks->kek.alg == CMN_KEY_DES3) ||
        ((alg == 0x88 || alg == 0x89) && (wl == 16 || wl == 32) && il == 16 &&
         ks->kek.alg == CMN_KEY_AES)) {
        if (cmn_key_decrypt(&ks->kek, wrapped, wl, raw) != CMN_OK ||
            cmn_key_set(&tk, alg == 0x81 ? CMN_KEY_DES3 : CMN_KEY_AES, raw, wl) != CMN_OK)
            goto out;
    } else {
        sw = VT_SW_BAD_ALG;
        goto out;
    }
    if (kl > 0 && (cmn_key_kcv(&tk, chk) != CMN_OK || cmn_ct_memcmp(chk, kcv, kl) != 0))
        goto out;
    /* object: 01 09 keySize(2) ‖ PKCS#8 encrypted (CBC, PKCS#5 padding) */
    if (o->size < 4 + 8)
        goto out;
    n = o->size - 4;
    plain = malloc(n);
    if (plain == NULL)
        goto out;
    if ((alg == 0x81 ? cmn_crypto_des3_cbc(tk.v, tk.len, iv, false, o->data + 4, n, plain)
                     : cmn_crypto_aes_cbc(tk.v, tk.len, iv, false, o->data + 4, n, plain)) !=
        CMN_OK)
        goto out;
    pad = plain[n - 1];
    if (pad == 0 || pad > (alg == 0x81 ? 8u : 16u) || pad > n)
        goto out;
    p = plain;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)(n - pad));
    if (p8 == NULL || (pk = EVP_PKCS82PKEY(p8)) == NULL)
        goto out;
    if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        sw = VT_SW_BAD_ALG;
        goto out;
    }
    sw = vt_key_install_pair(c, pk, priv, pub, user);
    pk = NULL;
    cmn_wipe(o->data, o->size); /* the applet zeroes the wrapped key object */
    c->dirty = true;
out:
    if (plain != NULL) {
        cmn_wipe(plain, n);
        free(plain);
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(pk);
    cmn_wipe(raw, sizeof(raw));
    cmn_key_wipe(&tk);
    return sw;
}

static uint16_t
compute_crypt(struct vt_card *c, const struct cmn_apdu *a, uint16_t ids, struct vt_resp *r)
{
    const struct vt_keyslot *k;
    uint8_t mode, dir, loc;
    const uint8_t *in;
    size_t inlen, outlen, mlen;
    uint8_t out[512];
    EVP_PKEY_CTX *ctx = NULL;
    uint16_t sw = VT_SW_INVALID_PARAM;

    if (a->p2 != 0x04) /* only the one-step form; coolkey falls back on 9C11 (§3.6) */
        return VT_SW_BAD_P2;
    if (a->p1 >= VT_MAX_KEYSLOTS || !c->keys[a->p1].present)
        return VT_SW_BAD_P1;
    k = &c->keys[a->p1];
    if (!(k->acl[2] & ids))
        return VT_SW_UNAUTHORIZED;
    if (k->type != VT_KEY_RSA_PRIVATE_CRT)
        return VT_SW_BAD_P1;
    if (a->lc < 5)
        return VT_SW_INVALID_PARAM;
    mode = a->data[0];
    dir = a->data[1];
    loc = a->data[2];
    inlen = (size_t)((a->data[3] << 8) | a->data[4]);
    if (mode != 0x00 || (dir != 0x03 && dir != 0x04))
        return VT_SW_INVALID_PARAM;
    if (loc == 0x01) {
        if (a->lc != 5 + inlen)
            return VT_SW_INVALID_PARAM;
        in = a->data + 5;
    } else if (loc == 0x02) {
        if (!vt_io_input(c, &in, &inlen)) /* data in the I/O buffer (§3.6) */
            return VT_SW_INVALID_PARAM;
    } else {
        return VT_SW_INVALID_PARAM;
    }
    mlen = (k->bits + 7u) / 8u;
    if (inlen != mlen || mlen > sizeof(out))
        return VT_SW_INVALID_PARAM;
    /* raw RSA (mode 00): the middleware has padded already; sign and decrypt are both the
     * private-key operation */
    outlen = sizeof(out);
    ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) != 1 ||
        EVP_PKEY_decrypt(ctx, out, &outlen, in, inlen) != 1)
        goto done;
    sw = vt_crypt_output(c, r, loc, out, outlen);
done:
    EVP_PKEY_CTX_free(ctx);
    cmn_wipe(out, sizeof(out));
    return sw;
}

bool
vt_io_input(const struct vt_card *c, const uint8_t **in, size_t *len)
{
    if (c->io_len < 2)
        return false;
    *len = (size_t)((c->io[0] << 8) | c->io[1]);
    *in = c->io + 2;
    return *len <= c->io_len - 2;
}

uint16_t
vt_crypt_output(struct vt_card *c, struct vt_resp *r, uint8_t loc, const uint8_t *out, size_t n)
{
    if (loc == 0x01)
        return vt_resp_put_u16(r, n) && vt_resp_put(r, out, n) ? VT_SW_OK : VT_SW_INTERNAL;
    if (n > sizeof(c->io) - 2)
        return VT_SW_INTERNAL;
    cmn_put_u16(c->io, (uint16_t)n);
    memcpy(c->io + 2, out, n);
    c->io_len = 2 + n;
    return VT_SW_OK;
}

static uint16_t
clear_key_slots(struct vt_card *c, const struct cmn_apdu *a)
{
    for (unsigned i = 0; i < VT_MAX_KEYSLOTS; i++) {
        bool keep = false;

        for (size_t j = 0; j < a->lc; j++)
            keep |= a->data[j] == i;
        if (!keep && c->keys[i].present) {
            vt_keyslot_clear(&c->keys[i]);
            c->dirty = true;
        }
    }
    return VT_SW_OK;
}

/* CLA B0 commands whose last 8 data bytes are a nonce (§3.1) */
static bool
has_nonce(uint8_t ins)
{
    switch (ins) {
    case 0x32:
    case 0x36:
    case 0x37:
    case 0x38:
    case 0x40:
    case 0x52:
    case 0x54:
    case 0x56:
    case 0x5A:
        return true;
    default:
        return false;
    }
}

static uint16_t
run(struct vt_card *c, const struct cmn_apdu *ap, uint16_t ids, bool via_sc, struct vt_resp *r)
{
    uint16_t sw;
    uint8_t b[8];
    size_t n;

    switch (ap->ins) {
    case 0x3C:
        return get_status(c, ap, r);
    case 0x70: /* GET VERSION: build ID */
        cmn_put_u32(b, c->applet_build);
        return vt_resp_put(r, b, 4) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0xF2: /* GET LIFE CYCLE: Le 4 → state, #PINs, protocol 1.1 (§3.2) */
        b[0] = c->life_cycle;
        b[1] = (uint8_t)npins(c);
        b[2] = 1;
        b[3] = 1;
        return vt_resp_put(r, b, ap->le == 4 ? 4 : 1) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0xF6:
        return vt_resp_put(r, c->issuer, VT_ISSUER_LEN) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0xF4: /* SET ISSUER INFO (§6.5) */
        if (!via_sc)
            return VT_SW_UNAUTHORIZED;
        if (ap->lc == 0 || ap->lc > VT_ISSUER_LEN)
            return VT_SW_INVALID_PARAM;
        memset(c->issuer, 0, sizeof(c->issuer));
        memcpy(c->issuer, ap->data, ap->lc);
        c->dirty = true;
        return VT_SW_OK;
    case 0x58:
        return list_objects(c, ap, r);
    case 0x48: /* LIST PINS */
        n = 0;
        for (int i = 0; i < VT_MAX_PINS; i++)
            n |= c->pins[i].present ? 1u << i : 0;
        return vt_resp_put_u16(r, n) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0x3A:
        return list_keys(c, ap, r);
    case 0x42:
        return verify_pin(c, ap, r);
    case 0x44:
        return change_pin(c, ap);
    case 0x61:
        return logout(c, ap);
    case 0x4A: /* GET PIN TRIES */
        if (ap->p1 >= VT_MAX_PINS || !c->pins[ap->p1].present)
            return VT_SW_BAD_P1;
        return vt_resp_put(r, &c->pins[ap->p1].tries_left, 1) ? VT_SW_OK : VT_SW_INTERNAL;
    case 0x72: { /* GET RANDOM */
        uint8_t rnd[256];

        n = ap->le < 0 ? 8 : (size_t)ap->le;
        if (n == 0 || cmn_crypto_random(rnd, n) != CMN_OK)
            return VT_SW_WRONG_LENGTH;
        return vt_resp_put(r, rnd, n) ? VT_SW_OK : VT_SW_INTERNAL;
    }
    case 0x40:
        return create_pin(c, ap, ids);
    case 0x04:
        return reset_pin(c, ap, ids);
    case 0x5A:
        return create_object(c, ap, ids);
    case 0x54:
        return write_object(c, ap, ids);
    case 0x56:
        return read_object(c, ap, ids, r);
    case 0x52:
        return delete_object(c, ap, ids);
    case 0x0C:
        return via_sc ? generate_key(c, ap, r) : VT_SW_UNAUTHORIZED;
    case 0x0A:
        return via_sc ? import_key_encrypted(c, ap) : VT_SW_UNAUTHORIZED;
    case 0xF0: /* SET LIFE CYCLE: values with the low three bits set (§7.2) */
        if (!via_sc)
            return VT_SW_UNAUTHORIZED;
        if ((ap->p1 & 0x07) != 0x07)
            return VT_SW_INVALID_PARAM;
        c->life_cycle = ap->p1;
        c->dirty = true;
        return VT_SW_OK;
    case 0x55:
        return via_sc ? clear_key_slots(c, ap) : VT_SW_UNAUTHORIZED;
    case 0x36:
        sw = compute_crypt(c, ap, ids, r);
        return sw;
    case 0x0D:
        return via_sc ? vt_ecc_generate_key(c, ap, r) : VT_SW_UNAUTHORIZED;
    case 0x37: /* COMPUTE ECC SIGNATURE (libckyapplet numbering, docs/vtoken.md) */
    case 0x38: /* COMPUTE ECC KEY AGREEMENT, or OpenSC's signature */
        return vt_ecc_compute(c, ap, ids, r);
    case 0xFA: { /* GET BUILTIN ACL: create object/key/PIN ACLs, change-enable */
        static const uint8_t acl[7] = {0x40, 0x00, 0x40, 0x00, 0x40, 0x00, 0x00};

        return vt_resp_put(r, acl, sizeof(acl)) ? VT_SW_OK : VT_SW_INTERNAL;
    }
    default:
        /* READ I/O BUFFER 08, FORMAT 2A, UNBLOCK 02/46, IMPORT KEY 32 are not in the v1.4
         * applet (§3.2, §9 item 4) */
        return VT_SW_INS;
    }
}

uint16_t
vt_applet_cmd(struct vt_card *c, const struct cmn_apdu *in, bool via_sc, struct vt_resp *r)
{
    struct cmn_apdu *a;
    uint16_t ids, sw;
    static const uint8_t zero[8];

    a = malloc(sizeof(*a)); /* keeps PINs off a long-lived stack copy; wiped below */
    if (a == NULL)
        return VT_SW_INTERNAL;
    *a = *in;
    if (via_sc) {
        ids = VT_ID_RA; /* everything under the secure channel runs as the RA */
    } else if (has_nonce(a->ins)) {
        if (a->lc < 8) {
            sw = VT_SW_WRONG_LENGTH;
            goto out;
        }
        a->lc -= 8;
        if (memcmp(a->data + a->lc, zero, 8) == 0) {
            ids = VT_ID_DEFAULT;
        } else if (c->nonce_valid && cmn_ct_memcmp(a->data + a->lc, c->nonce, 8) == 0) {
            ids = logged_mask(c);
        } else {
            sw = VT_SW_UNAUTHORIZED;
            goto out;
        }
    } else {
        ids = VT_ID_DEFAULT | logged_mask(c);
    }
    sw = run(c, a, ids, via_sc, r);
out:
    cmn_wipe(a, sizeof(*a));
    free(a);
    return sw;
}
