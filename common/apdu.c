/* common/apdu.c - APDU encoding and decoding by case (card spec §1.2), GP and CoolKey command
 * builders (§2, §3), bounded response parsers, the status-word table, applet version text. */
#include "common/apdu.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

enum cmn_rc
cmn_apdu_encode(const struct cmn_apdu *a, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t n = 4;

    if (a->lc > CMN_APDU_MAX_DATA || a->le < -1 || a->le > 256)
        return CMN_EINVAL;
    n += a->lc ? 1 + a->lc : 0;
    n += a->le >= 0 ? 1 : 0;
    if (n > out_size)
        return CMN_ETOOBIG;
    out[0] = a->cla;
    out[1] = a->ins;
    out[2] = a->p1;
    out[3] = a->p2;
    n = 4;
    if (a->lc) {
        out[n++] = (uint8_t)a->lc;
        memcpy(out + n, a->data, a->lc);
        n += a->lc;
    }
    if (a->le >= 0)
        out[n++] = (uint8_t)(a->le & 0xFF); /* 256 travels as 00 */
    *out_len = n;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_decode(const uint8_t *in, size_t n, struct cmn_apdu *a)
{
    size_t p3;

    if (n < 4)
        return CMN_EINVAL;
    a->cla = in[0];
    a->ins = in[1];
    a->p1 = in[2];
    a->p2 = in[3];
    a->lc = 0;
    a->le = -1;
    if (n == 4)
        return CMN_OK;
    p3 = in[4];
    if (n == 5) {
        /* SELECT by AID with an empty AID is case 3 with Lc 0, not Le */
        if (a->ins == 0xA4 && a->p1 == 0x04 && p3 == 0)
            return CMN_OK;
        a->le = p3 == 0 ? 256 : (int)p3;
        return CMN_OK;
    }
    if (p3 == 0)
        return CMN_EINVAL; /* extended lengths are not used (card spec §8.2) */
    if (n == 5 + p3 || n == 6 + p3) {
        a->lc = p3;
        memcpy(a->data, in + 5, p3);
        if (n == 6 + p3)
            a->le = in[5 + p3] == 0 ? 256 : in[5 + p3];
        return CMN_OK;
    }
    return CMN_EINVAL;
}

enum cmn_rc
cmn_rapdu_decode(const uint8_t *in, size_t n, struct cmn_rapdu *r)
{
    if (n < 2)
        return CMN_ESHORT;
    if (n - 2 > CMN_RAPDU_MAX_DATA)
        return CMN_ETOOBIG;
    r->len = n - 2;
    memcpy(r->data, in, r->len);
    r->sw = (uint16_t)(in[n - 2] << 8 | in[n - 1]);
    return CMN_OK;
}

enum cmn_rc
cmn_rapdu_encode(const struct cmn_rapdu *r, uint8_t *out, size_t out_size, size_t *out_len)
{
    if (r->len > CMN_RAPDU_MAX_DATA)
        return CMN_EINVAL;
    if (r->len + 2 > out_size)
        return CMN_ETOOBIG;
    memcpy(out, r->data, r->len);
    out[r->len] = (uint8_t)(r->sw >> 8);
    out[r->len + 1] = (uint8_t)r->sw;
    *out_len = r->len + 2;
    return CMN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Builders (card spec §2, §3)
 * ------------------------------------------------------------------------------------------ */

const uint8_t cmn_aid_isd_gp201[7] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00};
const uint8_t cmn_aid_isd_gp211[8] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00};
const uint8_t cmn_aid_isd_gp22[7] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00};
const uint8_t cmn_aid_coolkey[7] = {0x62, 0x76, 0x01, 0xFF, 0x00, 0x00, 0x00};
const uint8_t cmn_aid_coolkey_pkg[6] = {0x62, 0x76, 0x01, 0xFF, 0x00, 0x00};

#define CLA_ISO 0x00
#define CLA_GP 0x80
#define CLA_SEC 0x84
#define CLA_CK 0xB0

void
cmn_apdu_wipe(struct cmn_apdu *a)
{
    if (a != NULL)
        cmn_wipe(a, sizeof(*a));
}

static void
hdr(struct cmn_apdu *a, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2)
{
    cmn_wipe(a, sizeof(*a));
    a->cla = cla;
    a->ins = ins;
    a->p1 = p1;
    a->p2 = p2;
    a->lc = 0;
    a->le = -1;
}

/* Appends n bytes to the data field; false if the field would exceed 255 bytes. */
static bool
put(struct cmn_apdu *a, const void *p, size_t n)
{
    if (n > CMN_APDU_MAX_DATA - a->lc)
        return false;
    if (n > 0)
        memcpy(a->data + a->lc, p, n);
    a->lc += n;
    return true;
}

static bool
put8(struct cmn_apdu *a, uint8_t v)
{
    return put(a, &v, 1);
}

static bool
put16(struct cmn_apdu *a, uint16_t v)
{
    uint8_t b[2];

    cmn_put_u16(b, v);
    return put(a, b, 2);
}

static bool
put32(struct cmn_apdu *a, uint32_t v)
{
    uint8_t b[4];

    cmn_put_u32(b, v);
    return put(a, b, 4);
}

/* The CoolKey nonce rule (§3.1): CLA B0 with the nonce last, or CLA 84 without it. */
static bool
put_nonce(struct cmn_apdu *a, const uint8_t *nonce)
{
    return nonce == NULL || put(a, nonce, CMN_APDU_NONCE_LEN);
}

static enum cmn_rc
fail(struct cmn_apdu *a, enum cmn_rc rc)
{
    cmn_wipe(a, sizeof(*a));
    a->le = -1;
    return rc;
}

bool
cmn_apdu_secure_le(unsigned scp)
{
    return scp == 2 || scp == 3;
}

enum cmn_rc
cmn_apdu_select_aid(struct cmn_apdu *a, const uint8_t *aid, size_t aid_len, bool le)
{
    if (aid == NULL || aid_len == 0 || aid_len > CMN_AID_MAX)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_ISO, 0xA4, 0x04, 0x00);
    (void)put(a, aid, aid_len);
    a->le = le ? 256 : -1;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_select_default(struct cmn_apdu *a)
{
    hdr(a, CLA_ISO, 0xA4, 0x04, 0x00);
    a->le = 256; /* encodes as the single P3 byte 00 (§2.2) */
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_get_data(struct cmn_apdu *a, uint16_t tag)
{
    hdr(a, CLA_GP, 0xCA, (uint8_t)(tag >> 8), (uint8_t)tag);
    a->le = 0x2D; /* both TPS send 2D whatever the tag (§2.3) */
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_get_response(struct cmn_apdu *a, unsigned le)
{
    if (le == 0 || le > 256)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_ISO, 0xC0, 0x00, 0x00);
    a->le = (int)le;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_init_update(struct cmn_apdu *a, uint8_t key_version, uint8_t key_index,
                     const uint8_t host_challenge[8], bool le)
{
    if (host_challenge == NULL)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_GP, 0x50, key_version, key_index);
    (void)put(a, host_challenge, 8);
    a->le = le ? 256 : -1;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_ext_auth(struct cmn_apdu *a, uint8_t level, const uint8_t host_cryptogram[8])
{
    if (host_cryptogram == NULL)
        return fail(a, CMN_EINVAL);
    switch (level) {
    case 0x00:
    case 0x01:
    case 0x03:
    case 0x11:
    case 0x13:
    case 0x33:
        break;
    default:
        return fail(a, CMN_EINVAL);
    }
    hdr(a, CLA_SEC, 0x82, level, 0x00);
    (void)put(a, host_cryptogram, 8);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_put_key(struct cmn_apdu *a, uint8_t p1, uint8_t p2, const uint8_t *keyset, size_t len,
                 bool le)
{
    if (keyset == NULL || len == 0)
        return fail(a, CMN_EINVAL);
    if (len > CMN_APDU_MAX_DATA - 8)
        return fail(a, CMN_ETOOBIG);
    hdr(a, CLA_SEC, 0xD8, p1, p2);
    (void)put(a, keyset, len);
    a->le = le ? 256 : -1;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_delete(struct cmn_apdu *a, const uint8_t *aid, size_t aid_len, bool gp211, bool le)
{
    if (aid == NULL || aid_len == 0 || aid_len > CMN_AID_MAX)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_SEC, 0xE4, 0x00, gp211 ? 0x80 : 0x00);
    (void)put8(a, 0x4F);
    (void)put8(a, (uint8_t)aid_len);
    (void)put(a, aid, aid_len);
    a->le = le ? 256 : -1;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_delete_keys(struct cmn_apdu *a, uint8_t key_version)
{
    static const uint8_t d2[] = {0xD2, 0x01};

    hdr(a, CLA_SEC, 0xE4, 0x00, 0x00);
    (void)put(a, d2, sizeof(d2));
    (void)put8(a, key_version);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_install_load(struct cmn_apdu *a, const uint8_t *pkg, size_t pkg_len, const uint8_t *sd,
                      size_t sd_len, size_t file_len, bool le)
{
    /* EF 04 C6 02 HH LL: system parameters, non-volatile code space (§2.7) */
    static const uint8_t params[] = {0x06, 0xEF, 0x04, 0xC6, 0x02};
    size_t total;

    if (pkg == NULL || pkg_len == 0 || pkg_len > CMN_AID_MAX || sd_len > CMN_AID_MAX ||
        (sd == NULL && sd_len != 0) || file_len == 0)
        return fail(a, CMN_EINVAL);
    if (file_len > 0xFFFF)
        return fail(a, CMN_ETOOBIG);
    total = file_len + 24 + sd_len;
    if (total > 0xFFFF)
        return fail(a, CMN_ETOOBIG);
    hdr(a, CLA_SEC, 0xE6, 0x02, 0x00);
    (void)put8(a, (uint8_t)pkg_len);
    (void)put(a, pkg, pkg_len);
    (void)put8(a, (uint8_t)sd_len);
    (void)put(a, sd, sd_len);
    (void)put8(a, 0x00); /* no load file data block hash */
    (void)put(a, params, sizeof(params));
    (void)put16(a, (uint16_t)total);
    (void)put8(a, 0x00); /* no load token */
    a->le = le ? 256 : -1;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_install_install(struct cmn_apdu *a, const uint8_t *pkg, size_t pkg_len,
                         const uint8_t *module, size_t module_len, const uint8_t *instance,
                         size_t instance_len, uint16_t instance_size, uint16_t applet_memory,
                         bool le)
{
    /* privileges: length 1, value 00; install parameters of length 0C (§2.7) */
    static const uint8_t priv[] = {0x01, 0x00, 0x0C, 0xEF, 0x04, 0xC8, 0x02};
    static const uint8_t c9[] = {0xC9, 0x04, 0x00, 0x02};

    if (pkg == NULL || module == NULL || instance == NULL || pkg_len == 0 ||
        pkg_len > CMN_AID_MAX || module_len == 0 || module_len > CMN_AID_MAX ||
        instance_len == 0 || instance_len > CMN_AID_MAX)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_SEC, 0xE6, 0x0C, 0x00);
    (void)put8(a, (uint8_t)pkg_len);
    (void)put(a, pkg, pkg_len);
    (void)put8(a, (uint8_t)module_len);
    (void)put(a, module, module_len);
    (void)put8(a, (uint8_t)instance_len);
    (void)put(a, instance, instance_len);
    (void)put(a, priv, sizeof(priv));
    (void)put16(a, instance_size);
    /* C9: issuer-info length 00, memory-size length 02, memory size (applet constructor) */
    (void)put(a, c9, sizeof(c9));
    (void)put16(a, applet_memory);
    (void)put8(a, 0x00); /* no install token */
    a->le = le ? 256 : -1;
    return CMN_OK;
}

size_t
cmn_apdu_load_block_size(size_t channel_blocksize, unsigned scp, bool encrypted)
{
    size_t cut = (scp == 1 && encrypted) ? 16 : 8;

    if (channel_blocksize <= cut)
        return 0;
    channel_blocksize -= cut;
    return channel_blocksize > CMN_APDU_MAX_DATA ? CMN_APDU_MAX_DATA : channel_blocksize;
}

enum cmn_rc
cmn_apdu_load_init(struct cmn_apdu_loader *ld, const uint8_t *file, size_t file_len,
                   size_t block)
{
    size_t blocks;

    memset(ld, 0, sizeof(*ld));
    if (file == NULL || file_len == 0 || file_len > 0xFFFF || block == 0 ||
        block > CMN_APDU_MAX_DATA)
        return CMN_EINVAL;
    /* C4 ‖ BER length (§2.7): < 80 one byte, <= FF 81 xx, else 82 xx xx */
    ld->hdr[0] = 0xC4;
    if (file_len < 0x80) {
        ld->hdr[1] = (uint8_t)file_len;
        ld->hdr_len = 2;
    } else if (file_len <= 0xFF) {
        ld->hdr[1] = 0x81;
        ld->hdr[2] = (uint8_t)file_len;
        ld->hdr_len = 3;
    } else {
        ld->hdr[1] = 0x82;
        cmn_put_u16(ld->hdr + 2, (uint16_t)file_len);
        ld->hdr_len = 4;
    }
    ld->total = ld->hdr_len + file_len;
    blocks = (ld->total + block - 1) / block;
    if (blocks > 256) {
        memset(ld, 0, sizeof(*ld));
        return CMN_ETOOBIG;
    }
    ld->file = file;
    ld->file_len = file_len;
    ld->block = block;
    return CMN_OK;
}

unsigned
cmn_apdu_load_count(const struct cmn_apdu_loader *ld)
{
    if (ld->block == 0)
        return 0;
    return (unsigned)((ld->total + ld->block - 1) / ld->block);
}

enum cmn_rc
cmn_apdu_load_next(struct cmn_apdu_loader *ld, struct cmn_apdu *a, bool *last)
{
    size_t n, take;

    if (ld->block == 0 || ld->off >= ld->total)
        return CMN_ENOTFOUND;
    n = ld->total - ld->off;
    if (n > ld->block)
        n = ld->block;
    hdr(a, CLA_SEC, 0xE8, 0x00, (uint8_t)ld->next_no);
    /* the part of the C4 header still to send, then file bytes */
    if (ld->off < ld->hdr_len) {
        take = ld->hdr_len - ld->off;
        if (take > n)
            take = n;
        (void)put(a, ld->hdr + ld->off, take);
        ld->off += take;
        n -= take;
    }
    if (n > 0) {
        (void)put(a, ld->file + (ld->off - ld->hdr_len), n);
        ld->off += n;
    }
    if (ld->off == ld->total)
        a->p1 = 0x80; /* last block (§9 item 8) */
    if (last != NULL)
        *last = ld->off == ld->total;
    ld->next_no++;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_set_lifecycle(struct cmn_apdu *a, uint8_t state)
{
    hdr(a, CLA_SEC, 0xF0, state, 0x00);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_get_lifecycle(struct cmn_apdu *a, unsigned le)
{
    if (le != 1 && le != 4)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_CK, 0xF2, 0x00, 0x00);
    a->le = (int)le;
    return CMN_OK;
}

static enum cmn_rc
case2(struct cmn_apdu *a, uint8_t ins, uint8_t p1, uint8_t p2, int le)
{
    hdr(a, CLA_CK, ins, p1, p2);
    a->le = le;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_get_status(struct cmn_apdu *a)
{
    return case2(a, 0x3C, 0x00, 0x00, 0x10);
}

enum cmn_rc
cmn_apdu_get_version(struct cmn_apdu *a)
{
    return case2(a, 0x70, 0x00, 0x00, 0x04);
}

enum cmn_rc
cmn_apdu_get_issuer_info(struct cmn_apdu *a)
{
    return case2(a, 0xF6, 0x00, 0x00, CMN_CK_ISSUER_INFO_LEN);
}

enum cmn_rc
cmn_apdu_set_issuer_info(struct cmn_apdu *a, const uint8_t *info, size_t len)
{
    if (info == NULL && len != 0)
        return fail(a, CMN_EINVAL);
    if (len > CMN_CK_ISSUER_INFO_LEN)
        return fail(a, CMN_ETOOBIG);
    hdr(a, CLA_SEC, 0xF4, 0x00, 0x00);
    (void)put(a, info, len);
    a->lc = CMN_CK_ISSUER_INFO_LEN; /* hdr() zeroed the rest: zero padding (§6.5) */
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_list_objects(struct cmn_apdu *a, bool first)
{
    return case2(a, 0x58, first ? 0x00 : 0x01, 0x00, 0x0E);
}

enum cmn_rc
cmn_apdu_list_pins(struct cmn_apdu *a)
{
    return case2(a, 0x48, 0x00, 0x00, 0x02);
}

enum cmn_rc
cmn_apdu_list_keys(struct cmn_apdu *a, bool first)
{
    return case2(a, 0x3A, first ? 0x00 : 0x01, 0x00, 0x0B);
}

enum cmn_rc
cmn_apdu_get_pin_tries(struct cmn_apdu *a, uint8_t pin_no)
{
    return case2(a, 0x4A, pin_no, 0x00, 0x01);
}

enum cmn_rc
cmn_apdu_get_builtin_acl(struct cmn_apdu *a)
{
    return case2(a, 0xFA, 0x00, 0x00, 0x07);
}

enum cmn_rc
cmn_apdu_get_random(struct cmn_apdu *a, unsigned n)
{
    if (n == 0 || n > 256)
        return fail(a, CMN_EINVAL);
    return case2(a, 0x72, 0x00, 0x00, (int)n);
}

enum cmn_rc
cmn_apdu_read_object(struct cmn_apdu *a, uint32_t id, uint32_t offset, unsigned n,
                     const uint8_t *nonce, bool le)
{
    if (n == 0 || n > 255)
        return fail(a, CMN_EINVAL);
    hdr(a, nonce ? CLA_CK : CLA_SEC, 0x56, 0x00, 0x00);
    (void)put32(a, id);
    (void)put32(a, offset);
    (void)put8(a, (uint8_t)n);
    (void)put_nonce(a, nonce);
    a->le = le ? 256 : -1;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_write_object(struct cmn_apdu *a, uint32_t id, uint32_t offset, const uint8_t *data,
                      size_t n, const uint8_t *nonce)
{
    if (data == NULL || n == 0)
        return fail(a, CMN_EINVAL);
    if (n > CMN_APDU_MAX_DATA - 9 - (nonce ? CMN_APDU_NONCE_LEN : 0))
        return fail(a, CMN_ETOOBIG);
    hdr(a, nonce ? CLA_CK : CLA_SEC, 0x54, 0x00, 0x00);
    (void)put32(a, id);
    (void)put32(a, offset);
    (void)put8(a, (uint8_t)n);
    (void)put(a, data, n);
    (void)put_nonce(a, nonce);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_create_object(struct cmn_apdu *a, uint32_t id, uint32_t size, uint16_t acl_read,
                       uint16_t acl_write, uint16_t acl_delete, const uint8_t *nonce)
{
    hdr(a, nonce ? CLA_CK : CLA_SEC, 0x5A, 0x00, 0x00);
    (void)put32(a, id);
    (void)put32(a, size);
    (void)put16(a, acl_read);
    (void)put16(a, acl_write);
    (void)put16(a, acl_delete);
    (void)put_nonce(a, nonce);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_delete_object(struct cmn_apdu *a, uint32_t id, bool zero_first, const uint8_t *nonce)
{
    hdr(a, nonce ? CLA_CK : CLA_SEC, 0x52, 0x00, zero_first ? 0x01 : 0x00);
    (void)put32(a, id);
    (void)put_nonce(a, nonce);
    return CMN_OK;
}

static enum cmn_rc
pin_cmd(struct cmn_apdu *a, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *pin,
        size_t pin_len)
{
    if (pin == NULL || pin_len == 0 || pin_len > CMN_CK_PIN_MAX)
        return fail(a, CMN_EINVAL);
    hdr(a, cla, ins, p1, p2);
    (void)put(a, pin, pin_len);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_create_pin(struct cmn_apdu *a, uint8_t pin_no, uint8_t max_tries, const uint8_t *pin,
                    size_t pin_len)
{
    return pin_cmd(a, CLA_SEC, 0x40, pin_no, max_tries, pin, pin_len);
}

enum cmn_rc
cmn_apdu_set_pin(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *pin, size_t pin_len)
{
    return pin_cmd(a, CLA_SEC, 0x04, pin_no, 0x00, pin, pin_len);
}

enum cmn_rc
cmn_apdu_verify_pin(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *pin, size_t pin_len,
                    bool le)
{
    enum cmn_rc rc = pin_cmd(a, CLA_CK, 0x42, pin_no, 0x00, pin, pin_len);

    if (rc == CMN_OK && le)
        a->le = CMN_APDU_NONCE_LEN;
    return rc;
}

enum cmn_rc
cmn_apdu_change_pin(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *old_pin, size_t old_len,
                    const uint8_t *new_pin, size_t new_len)
{
    if (old_pin == NULL || new_pin == NULL || old_len == 0 || old_len > CMN_CK_PIN_MAX ||
        new_len == 0 || new_len > CMN_CK_PIN_MAX)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_CK, 0x44, pin_no, 0x00);
    (void)put8(a, (uint8_t)old_len); /* 1-byte lengths (§9 item 7) */
    (void)put(a, old_pin, old_len);
    (void)put8(a, (uint8_t)new_len);
    (void)put(a, new_pin, new_len);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_logout(struct cmn_apdu *a, uint8_t pin_no, const uint8_t *nonce)
{
    hdr(a, CLA_CK, 0x61, pin_no, 0x00);
    (void)put_nonce(a, nonce);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_generate_key(struct cmn_apdu *a, const struct cmn_ck_keygen *kg, bool le)
{
    if (kg == NULL || kg->key_user > 0x0F || kg->priv_no > 0x0F || kg->key_usage > 0x0F ||
        kg->pub_no > 0x0F || kg->key_bits == 0)
        return fail(a, CMN_EINVAL);
    hdr(a, CLA_SEC, 0x0C, (uint8_t)(kg->key_user << 4 | kg->priv_no),
        (uint8_t)(kg->key_usage << 4 | kg->pub_no));
    (void)put8(a, kg->alg);
    (void)put16(a, kg->key_bits);
    (void)put8(a, kg->option);
    (void)put8(a, kg->type);
    (void)put8(a, 0x10); /* wrapped challenge length */
    (void)put(a, kg->wrapped_challenge, 16);
    (void)put8(a, 0x00); /* Lc 17 for the v1.4 applet (§3.4) */
    a->le = le ? 256 : -1;
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_import_key_enc(struct cmn_apdu *a, uint8_t p1, uint8_t p2, uint32_t object_id,
                        uint8_t alg, const uint8_t *wrapped, size_t wrapped_len,
                        const uint8_t *kcv, size_t kcv_len, const uint8_t iv[8])
{
    if (wrapped == NULL || wrapped_len == 0 || wrapped_len > 255 || (kcv == NULL && kcv_len) ||
        kcv_len > 255 || iv == NULL)
        return fail(a, CMN_EINVAL);
    if (4 + 2 + wrapped_len + 1 + kcv_len + 1 + 8 > CMN_APDU_MAX_DATA)
        return fail(a, CMN_ETOOBIG);
    hdr(a, CLA_SEC, 0x0A, p1, p2);
    (void)put32(a, object_id);
    (void)put8(a, alg);
    (void)put8(a, (uint8_t)wrapped_len);
    (void)put(a, wrapped, wrapped_len);
    (void)put8(a, (uint8_t)kcv_len);
    (void)put(a, kcv, kcv_len);
    (void)put8(a, 8);
    (void)put(a, iv, 8);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_clear_key_slots(struct cmn_apdu *a, const uint8_t *slots, size_t n)
{
    if (slots == NULL || n == 0)
        return fail(a, CMN_EINVAL);
    if (n > CMN_APDU_MAX_DATA)
        return fail(a, CMN_ETOOBIG);
    hdr(a, CLA_SEC, 0x55, 0x00, 0x00);
    (void)put(a, slots, n);
    return CMN_OK;
}

enum cmn_rc
cmn_apdu_compute_crypt(struct cmn_apdu *a, uint8_t key_no, uint8_t mode, uint8_t dir,
                       uint8_t loc, const uint8_t *data, size_t len, const uint8_t nonce[8])
{
    if (nonce == NULL || (loc == 0x01 && (data == NULL || len == 0)) ||
        (loc == 0x02 && (data != NULL || len != 0)) || (loc != 0x01 && loc != 0x02))
        return fail(a, CMN_EINVAL);
    if (len > CMN_APDU_MAX_DATA - 13)
        return fail(a, CMN_ETOOBIG);
    hdr(a, CLA_CK, 0x36, key_no, 0x04); /* P2 04: one-step (§3.6) */
    (void)put8(a, mode);
    (void)put8(a, dir);
    (void)put8(a, loc);
    (void)put16(a, (uint16_t)len);
    (void)put(a, data, len);
    (void)put(a, nonce, CMN_APDU_NONCE_LEN);
    return CMN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Response parsers
 * ------------------------------------------------------------------------------------------ */

/* One BER-TLV with a 1-byte tag or a 2-byte tag (first byte with low 5 bits set) and a
 * length of up to 2 bytes; [out] tag, value cursor. */
static bool
rd_tlv(struct cmn_rd *r, uint16_t *tag, struct cmn_rd *val)
{
    uint8_t t, l, b;
    size_t len;
    const uint8_t *p;

    if (!cmn_rd_u8(r, &t))
        return false;
    *tag = t;
    if ((t & 0x1F) == 0x1F) {
        if (!cmn_rd_u8(r, &b) || (b & 0x80))
            return false;
        *tag = (uint16_t)(t << 8 | b);
    }
    if (!cmn_rd_u8(r, &l))
        return false;
    if (l < 0x80) {
        len = l;
    } else if (l == 0x81) {
        if (!cmn_rd_u8(r, &b))
            return false;
        len = b;
    } else if (l == 0x82) {
        uint16_t v;

        if (!cmn_rd_u16(r, &v))
            return false;
        len = v;
    } else {
        return false;
    }
    if (!cmn_rd_take(r, len, &p))
        return false;
    cmn_rd_init(val, p, len);
    return true;
}

/* Finds `want` among the TLVs of r (one level). */
static enum cmn_rc
find_tlv(struct cmn_rd r, uint16_t want, struct cmn_rd *val)
{
    uint16_t tag;

    while (r.left > 0) {
        if (!rd_tlv(&r, &tag, val))
            return CMN_EPROTO;
        if (tag == want)
            return CMN_OK;
    }
    return CMN_ENOTFOUND;
}

enum cmn_rc
cmn_fci_parse_aid(const uint8_t *data, size_t len, uint8_t aid[CMN_AID_MAX], size_t *aid_len)
{
    struct cmn_rd r, fci, v;
    uint16_t tag;
    enum cmn_rc rc;

    if (len == 0 || data == NULL)
        return CMN_ENOTFOUND;
    cmn_rd_init(&r, data, len);
    if (!rd_tlv(&r, &tag, &fci))
        return CMN_EPROTO;
    if (tag != 0x6F)
        return CMN_ENOTFOUND;
    rc = find_tlv(fci, 0x84, &v);
    if (rc != CMN_OK)
        return rc;
    if (v.left == 0 || v.left > CMN_AID_MAX)
        return CMN_EPROTO;
    *aid_len = v.left;
    (void)cmn_rd_copy(&v, aid, v.left);
    return CMN_OK;
}

enum cmn_rc
cmn_cplc_parse(const uint8_t *data, size_t len, struct cmn_cplc *out)
{
    struct cmn_rd r;
    const uint8_t *d;

    cmn_rd_init(&r, data, len);
    if (!cmn_rd_take(&r, 45, &d))
        return CMN_ESHORT;
    /* CUID = d[3..6] ‖ d[19..20] ‖ d[15..18], MSN = d[41..44] (§2.3) */
    memcpy(out->cuid, d + 3, 4);
    memcpy(out->cuid + 4, d + 19, 2);
    memcpy(out->cuid + 6, d + 15, 4);
    memcpy(out->msn, d + 41, 4);
    return CMN_OK;
}

/* The OID prefixes of card recognition data: 1.2.840.114283.<n> = 2A 86 48 86 FC 6B <n>. */
static const uint8_t gp_oid[6] = {0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B};

/* Reads the OID (tag 06) in a template; [out] the bytes after the GP prefix and <n>. */
static enum cmn_rc
crd_oid(struct cmn_rd tmpl, uint8_t n, struct cmn_rd *rest)
{
    struct cmn_rd oid;
    const uint8_t *p;
    uint8_t b;
    enum cmn_rc rc;

    rc = find_tlv(tmpl, 0x06, &oid);
    if (rc != CMN_OK)
        return rc == CMN_ENOTFOUND ? CMN_EPROTO : rc;
    if (!cmn_rd_take(&oid, sizeof(gp_oid), &p) || memcmp(p, gp_oid, sizeof(gp_oid)) != 0 ||
        !cmn_rd_u8(&oid, &b) || b != n)
        return CMN_EPROTO;
    *rest = oid;
    return CMN_OK;
}

enum cmn_rc
cmn_gp_crd_parse(const uint8_t *data, size_t len, uint16_t sw, struct cmn_gp_crd *out)
{
    struct cmn_rd r, t66, t73, t60, t64, rest;
    uint16_t tag;
    struct cmn_gp_crd c;
    enum cmn_rc rc;

    memset(&c, 0, sizeof(c));
    /* Java fallback (§2.3): non-9000, answer+SW < 5 bytes, byte 1 = 00 or >= answer+SW. */
    if (sw != 0x9000 || data == NULL || len + 2 < 5 || data[1] == 0x00 || data[1] >= len + 2) {
        c.fallback = true;
        c.gp_version[0] = 2;
        c.gp_version[1] = 0;
        c.gp_version[2] = 1;
        c.scp = 1;
        *out = c;
        return CMN_OK;
    }
    cmn_rd_init(&r, data, len);
    if (!rd_tlv(&r, &tag, &t66) || tag != 0x66)
        return CMN_EPROTO;
    if (!rd_tlv(&t66, &tag, &t73) || tag != 0x73)
        return CMN_EPROTO;
    /* 60: GP version OID 1.2.840.114283.2.v.v.v */
    rc = find_tlv(t73, 0x60, &t60);
    if (rc != CMN_OK)
        return CMN_EPROTO;
    rc = crd_oid(t60, 0x02, &rest);
    if (rc != CMN_OK)
        return rc;
    for (size_t k = 0; k < 3 && rest.left > 0; k++)
        (void)cmn_rd_u8(&rest, &c.gp_version[k]);
    /* 64: secure channel OID 1.2.840.114283.4.<scp>.<i> */
    rc = find_tlv(t73, 0x64, &t64);
    if (rc != CMN_OK)
        return CMN_EPROTO;
    rc = crd_oid(t64, 0x04, &rest);
    if (rc != CMN_OK)
        return rc;
    if (rest.left != 2 || !cmn_rd_u8(&rest, &c.scp) || !cmn_rd_u8(&rest, &c.i))
        return CMN_EPROTO;
    if (c.scp < 1 || c.scp > 3 || (c.scp == 2 && c.i != 0x15))
        return CMN_EUNSUPP;
    *out = c;
    return CMN_OK;
}

enum cmn_rc
cmn_gp_keyinfo_parse(const uint8_t *data, size_t len, struct cmn_gp_keyinfo *out)
{
    struct cmn_rd r, v;
    uint8_t t, l, b[4];
    size_t n = 0;

    cmn_rd_init(&r, data, len);
    if (!cmn_rd_u8(&r, &t) || !cmn_rd_u8(&r, &l))
        return CMN_ESHORT;
    if (t != 0xE0 || l % 6 != 0)
        return CMN_EPROTO;
    if (l > r.left)
        return CMN_EPROTO;
    cmn_rd_init(&v, r.p, l);
    while (v.left > 0) {
        if (!cmn_rd_u8(&v, &t) || !cmn_rd_u8(&v, &l) || t != 0xC0 || l != 4 ||
            !cmn_rd_copy(&v, b, 4))
            return CMN_EPROTO;
        if (n == CMN_GP_KEYINFO_MAX)
            return CMN_ETOOBIG;
        out->e[n].id = b[0];
        out->e[n].version = b[1];
        out->e[n].type = b[2];
        out->e[n].len = b[3];
        n++;
    }
    out->n = n;
    return CMN_OK;
}

enum cmn_rc
cmn_gp_iu_parse(const uint8_t *data, size_t len, unsigned scp, struct cmn_gp_iu *out)
{
    struct cmn_rd r;
    struct cmn_gp_iu iu;
    bool ok;

    if (scp > 3)
        return CMN_EINVAL;
    if (len < 28)
        return CMN_ESHORT;
    if (scp == 0) {
        if (len == 29 || len == 32)
            scp = 3;
        else if (len == 28 && data[11] == 0x02)
            scp = 2;
        else
            scp = 1;
    }
    if ((scp != 3 && len != 28) || (scp == 3 && len != 29 && len != 32))
        return CMN_EPROTO;
    memset(&iu, 0, sizeof(iu));
    iu.scp = (uint8_t)scp;
    cmn_rd_init(&r, data, len);
    ok = cmn_rd_copy(&r, iu.kdd, 10) && cmn_rd_u8(&r, &iu.key_version) &&
         cmn_rd_u8(&r, &iu.protocol);
    if (scp == 1) {
        iu.challenge_len = 8;
        ok = ok && cmn_rd_copy(&r, iu.card_challenge, 8);
    } else if (scp == 2) {
        iu.seq_len = 2;
        iu.challenge_len = 6;
        ok = ok && cmn_rd_copy(&r, iu.seq, 2) && cmn_rd_copy(&r, iu.card_challenge, 6);
    } else {
        iu.challenge_len = 8;
        ok = ok && cmn_rd_u8(&r, &iu.i) && cmn_rd_copy(&r, iu.card_challenge, 8);
    }
    ok = ok && cmn_rd_copy(&r, iu.card_cryptogram, 8);
    if (ok && scp == 3 && len == 32) {
        iu.seq_len = 3;
        ok = cmn_rd_copy(&r, iu.seq, 3);
    }
    if (!ok || r.left != 0) {
        cmn_wipe(&iu, sizeof(iu));
        return CMN_EPROTO;
    }
    *out = iu;
    cmn_wipe(&iu, sizeof(iu));
    return CMN_OK;
}

/* Checks that a fixed-size answer has exactly n bytes. */
static enum cmn_rc
exact(size_t len, size_t n)
{
    if (len < n)
        return CMN_ESHORT;
    return len == n ? CMN_OK : CMN_EPROTO;
}

enum cmn_rc
cmn_ck_status_parse(const uint8_t *data, size_t len, struct cmn_ck_status *out)
{
    struct cmn_rd r;
    struct cmn_ck_status s;
    enum cmn_rc rc = exact(len, 16);

    if (rc != CMN_OK)
        return rc;
    cmn_rd_init(&r, data, len);
    if (!cmn_rd_u8(&r, &s.proto_major) || !cmn_rd_u8(&r, &s.proto_minor) ||
        !cmn_rd_u8(&r, &s.applet_major) || !cmn_rd_u8(&r, &s.applet_minor) ||
        !cmn_rd_u32(&r, &s.total_mem) || !cmn_rd_u32(&r, &s.free_mem) ||
        !cmn_rd_u8(&r, &s.num_pins) || !cmn_rd_u8(&r, &s.num_keys) ||
        !cmn_rd_u16(&r, &s.logged_ids))
        return CMN_ESHORT;
    *out = s;
    return CMN_OK;
}

enum cmn_rc
cmn_ck_version_parse(const uint8_t *data, size_t len, uint32_t *build_id)
{
    struct cmn_rd r;
    enum cmn_rc rc = exact(len, 4);

    if (rc != CMN_OK)
        return rc;
    cmn_rd_init(&r, data, len);
    return cmn_rd_u32(&r, build_id) ? CMN_OK : CMN_ESHORT;
}

enum cmn_rc
cmn_ck_lifecycle_parse(const uint8_t *data, size_t len, struct cmn_ck_lifecycle *out)
{
    struct cmn_rd r;
    struct cmn_ck_lifecycle l;

    memset(&l, 0, sizeof(l));
    if (len == 0)
        return CMN_ESHORT;
    if (len != 1 && len != 4)
        return CMN_EPROTO;
    cmn_rd_init(&r, data, len);
    (void)cmn_rd_u8(&r, &l.state);
    if (len == 4) {
        l.extended = true;
        (void)cmn_rd_u8(&r, &l.flags);
        (void)cmn_rd_u8(&r, &l.proto_major);
        (void)cmn_rd_u8(&r, &l.proto_minor);
    }
    *out = l;
    return CMN_OK;
}

enum cmn_rc
cmn_ck_object_parse(const uint8_t *data, size_t len, struct cmn_ck_object *out)
{
    struct cmn_rd r;
    struct cmn_ck_object o;
    enum cmn_rc rc = exact(len, 14);

    if (rc != CMN_OK)
        return rc;
    cmn_rd_init(&r, data, len);
    if (!cmn_rd_u32(&r, &o.id) || !cmn_rd_u32(&r, &o.size) || !cmn_rd_u16(&r, &o.acl_read) ||
        !cmn_rd_u16(&r, &o.acl_write) || !cmn_rd_u16(&r, &o.acl_delete))
        return CMN_ESHORT;
    *out = o;
    return CMN_OK;
}

enum cmn_rc
cmn_ck_pins_parse(const uint8_t *data, size_t len, uint16_t *mask)
{
    struct cmn_rd r;
    enum cmn_rc rc = exact(len, 2);

    if (rc != CMN_OK)
        return rc;
    cmn_rd_init(&r, data, len);
    return cmn_rd_u16(&r, mask) ? CMN_OK : CMN_ESHORT;
}

enum cmn_rc
cmn_ck_nonce_parse(const uint8_t *data, size_t len, uint8_t nonce[8])
{
    struct cmn_rd r;
    enum cmn_rc rc = exact(len, CMN_APDU_NONCE_LEN);

    if (rc != CMN_OK)
        return rc;
    cmn_rd_init(&r, data, len);
    return cmn_rd_copy(&r, nonce, CMN_APDU_NONCE_LEN) ? CMN_OK : CMN_ESHORT;
}

enum cmn_rc
cmn_ck_keygen_len_parse(const uint8_t *data, size_t len, uint16_t *total)
{
    struct cmn_rd r;
    enum cmn_rc rc = exact(len, 2);

    if (rc != CMN_OK)
        return rc;
    cmn_rd_init(&r, data, len);
    return cmn_rd_u16(&r, total) ? CMN_OK : CMN_ESHORT;
}

/* len(2) ‖ bytes; [out] p, n. */
static bool
rd_lv16(struct cmn_rd *r, const uint8_t **p, size_t *n)
{
    uint16_t l;

    if (!cmn_rd_u16(r, &l) || !cmn_rd_take(r, l, p))
        return false;
    *n = l;
    return true;
}

enum cmn_rc
cmn_ck_keygen_parse(const uint8_t *data, size_t len, struct cmn_ck_keygen_out *out)
{
    struct cmn_rd r, b;
    struct cmn_ck_keygen_out o;
    uint8_t enc, type;

    memset(&o, 0, sizeof(o));
    cmn_rd_init(&r, data, len);
    if (!rd_lv16(&r, &o.blob, &o.blob_len) || !rd_lv16(&r, &o.proof, &o.proof_len))
        return CMN_ESHORT;
    if (r.left != 0)
        return CMN_EPROTO;
    /* blob = 00 01 keySize(2) modLen(2) modulus expLen(2) exponent (§3.4) */
    cmn_rd_init(&b, o.blob, o.blob_len);
    if (!cmn_rd_u8(&b, &enc) || !cmn_rd_u8(&b, &type) || !cmn_rd_u16(&b, &o.key_bits) ||
        !rd_lv16(&b, &o.modulus, &o.mod_len) || !rd_lv16(&b, &o.exponent, &o.exp_len))
        return CMN_EPROTO;
    if (enc != 0x00 || type != 0x01 || b.left != 0 || o.mod_len == 0 || o.exp_len == 0 ||
        o.key_bits == 0 || o.mod_len > (size_t)(o.key_bits + 7) / 8 || o.proof_len == 0)
        return CMN_EPROTO;
    *out = o;
    return CMN_OK;
}

enum cmn_rc
cmn_ck_crypt_parse(const uint8_t *data, size_t len, const uint8_t **result, size_t *result_len)
{
    struct cmn_rd r;
    const uint8_t *p;
    size_t n;

    cmn_rd_init(&r, data, len);
    if (!rd_lv16(&r, &p, &n))
        return CMN_ESHORT;
    if (r.left != 0)
        return CMN_EPROTO;
    *result = p;
    *result_len = n;
    return CMN_OK;
}

enum cmn_rc
cmn_ck_issuer_info_parse(const uint8_t *data, size_t len, char *out, size_t out_size)
{
    struct cmn_rd r;
    uint8_t c;
    size_t n = 0;

    if (out_size > 0)
        out[0] = '\0';
    cmn_rd_init(&r, data, len);
    while (cmn_rd_u8(&r, &c) && c != 0x00) {
        if (c < 0x20 || c > 0x7E)
            goto bad;
        if (n + 1 >= out_size) {
            if (out_size > 0)
                out[0] = '\0';
            return CMN_ETOOBIG;
        }
        out[n++] = (char)c;
    }
    if (out_size == 0)
        return CMN_ETOOBIG;
    out[n] = '\0';
    return CMN_OK;
bad:
    if (out_size > 0)
        out[0] = '\0';
    return CMN_EPROTO;
}

enum cmn_rc
cmn_ck_builtin_acl_parse(const uint8_t *data, size_t len, struct cmn_ck_builtin_acl *out)
{
    struct cmn_rd r;
    struct cmn_ck_builtin_acl b;
    enum cmn_rc rc = exact(len, 7);

    if (rc != CMN_OK)
        return rc;
    cmn_rd_init(&r, data, len);
    if (!cmn_rd_u16(&r, &b.create_object) || !cmn_rd_u16(&r, &b.create_key) ||
        !cmn_rd_u16(&r, &b.create_pin) || !cmn_rd_u8(&r, &b.change_enable))
        return CMN_ESHORT;
    *out = b;
    return CMN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Status words (card spec §1.4; ISO 7816-4 and CoolKey applet SW_* values)
 * ------------------------------------------------------------------------------------------ */

struct sw_entry {
    uint16_t sw;
    const char *name;
    const char *msg;
};

static const struct sw_entry sw_table[] = {
    {0x9000, "SW_OK", "success"},
    {0x6283, "SW_SELECTED_FILE_INVALIDATED", "selected file or application invalidated"},
    {0x6300, "SW_AUTH_CRYPTOGRAM", "authentication failed (host cryptogram did not verify)"},
    {0x6400, "SW_EXEC_ERROR", "execution error, card state unchanged"},
    {0x6581, "SW_MEMORY_FAILURE", "memory failure"},
    {0x6700, "SW_WRONG_LENGTH", "wrong length"},
    {0x6881, "SW_LOGICAL_CHANNEL", "logical channel not supported"},
    {0x6882, "SW_SM_NOT_SUPPORTED", "secure messaging not supported"},
    {0x6982, "SW_SECURITY_STATUS", "security status not satisfied (bad or missing C-MAC, no "
                                   "session); the secure channel is closed"},
    {0x6983, "SW_AUTH_BLOCKED", "authentication method blocked"},
    {0x6984, "SW_DATA_INVALID", "referenced data invalidated"},
    {0x6985, "SW_CONDITIONS", "conditions of use not satisfied"},
    {0x6986, "SW_NOT_ALLOWED", "command not allowed (no current file)"},
    {0x6999, "SW_SELECT_FAILED", "applet selection failed"},
    {0x6A80, "SW_WRONG_DATA", "incorrect data (e.g. bad PUT KEY check value)"},
    {0x6A81, "SW_FUNC_NOT_SUPPORTED", "function not supported"},
    {0x6A82, "SW_NOT_FOUND", "application or file not found"},
    {0x6A84, "SW_NO_SPACE", "not enough memory space"},
    {0x6A86, "SW_INCORRECT_P1P2", "incorrect P1/P2"},
    {0x6A88, "SW_REF_NOT_FOUND", "referenced data not found (key version, AID or tag)"},
    {0x6B00, "SW_WRONG_P1P2", "wrong parameters P1/P2"},
    {0x6D00, "SW_INS_NOT_SUPPORTED", "instruction not supported"},
    {0x6E00, "SW_CLA_NOT_SUPPORTED", "class not supported"},
    {0x6F00, "SW_UNKNOWN_ERROR", "no precise diagnosis"},
    {0x9C01, "SW_NO_MEMORY_LEFT", "applet: no memory left"},
    {0x9C02, "SW_AUTH_FAILED", "applet: authentication failed (wrong PIN; tries decremented)"},
    {0x9C03, "SW_OPERATION_NOT_ALLOWED", "applet: operation not allowed"},
    {0x9C05, "SW_UNSUPPORTED_FEATURE", "applet: unsupported feature"},
    {0x9C06, "SW_UNAUTHORIZED", "applet: unauthorized (ACL, nonce or identity check failed)"},
    {0x9C07, "SW_OBJECT_NOT_FOUND", "applet: object not found"},
    {0x9C08, "SW_OBJECT_EXISTS", "applet: object exists"},
    {0x9C09, "SW_INCORRECT_ALG", "applet: incorrect algorithm"},
    {0x9C0B, "SW_SIGNATURE_INVALID", "applet: signature invalid"},
    {0x9C0C, "SW_IDENTITY_BLOCKED", "applet: identity blocked (PIN tries exhausted)"},
    {0x9C0F, "SW_INVALID_PARAMETER", "applet: invalid parameter (offset beyond object end, PIN "
                                     "length outside 4..16)"},
    {0x9C10, "SW_INCORRECT_P1", "applet: incorrect P1 (or PIN already exists)"},
    {0x9C11, "SW_INCORRECT_P2", "applet: incorrect P2"},
    {0x9C12, "SW_SEQUENCE_END", "applet: no more entries (end of list)"},
    {0x9C13, "SW_INVALID_DIRECTION", "applet: invalid direction"},
    {0x9C14, "SW_INVALID_LOCATION", "applet: invalid data location"},
    {0x9C15, "SW_INVALID_KEY_TYPE", "applet: invalid key type"},
    {0x9C16, "SW_INVALID_CHUNK_SIZE", "applet: invalid chunk size"},
    {0x9C17, "SW_INVALID_KEY_SIZE", "applet: invalid key size"},
    {0x9C18, "SW_INVALID_CIPHER_MODE", "applet: invalid cipher mode"},
    {0x9C19, "SW_BUFFER_ERROR", "applet: I/O buffer error"},
    {0x9C20, "SW_KEY_PAIRING", "applet: key pairing error"},
    {0x9C21, "SW_WRAPPED_KEY_LENGTH", "applet: wrapped key length error"},
    {0x9C22, "SW_WRAPPED_KEY", "applet: wrapped key error"},
    {0x9CFF, "SW_INTERNAL_ERROR", "applet: internal error"},
};

static const struct sw_entry *
sw_find(uint16_t sw)
{
    static const struct sw_entry more = {0x6100, "SW_MORE_DATA", "more response data available "
                                                                 "(send GET RESPONSE)"};
    static const struct sw_entry wrong_le = {0x6C00, "SW_WRONG_LE",
                                             "wrong Le (SW2 = available length)"};
    static const struct sw_entry verify = {0x63C0, "SW_VERIFY_FAILED",
                                           "verification failed (SW2 low nibble = tries left)"};

    for (size_t k = 0; k < sizeof(sw_table) / sizeof(sw_table[0]); k++)
        if (sw_table[k].sw == sw)
            return &sw_table[k];
    if ((sw & 0xFF00) == 0x6100)
        return &more;
    if ((sw & 0xFF00) == 0x6C00)
        return &wrong_le;
    if ((sw & 0xFFF0) == 0x63C0)
        return &verify;
    return NULL;
}

const char *
cmn_sw_name(uint16_t sw)
{
    const struct sw_entry *e = sw_find(sw);

    return e ? e->name : "SW_UNKNOWN";
}

const char *
cmn_sw_str(uint16_t sw)
{
    const struct sw_entry *e = sw_find(sw);

    return e ? e->msg : "unknown status word";
}

const char *
cmn_sw_format(uint16_t sw, char *out, size_t out_size)
{
    if (out_size > 0)
        (void)snprintf(out, out_size, "%04X %s: %s", sw, cmn_sw_name(sw), cmn_sw_str(sw));
    return out;
}

enum cmn_rc
cmn_sw_rc(uint16_t sw)
{
    return sw == 0x9000 ? CMN_OK : CMN_ECARD;
}

/* ------------------------------------------------------------------------------------------
 * Applet version text (tps-protocol §6.1)
 * ------------------------------------------------------------------------------------------ */

enum cmn_rc
cmn_applet_version_format(uint8_t major, uint8_t minor, uint32_t build_id, char *out,
                          size_t out_size)
{
    int n;

    if (out == NULL || out_size == 0)
        return CMN_ETOOBIG;
    n = snprintf(out, out_size, "%u.%u.%08" PRIx32, (unsigned)major, (unsigned)minor, build_id);
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        return CMN_ETOOBIG;
    }
    return CMN_OK;
}

bool
cmn_applet_version_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    return strcasecmp(a, b) == 0;
}
