/* common/p11obj.c - the combined PKCS#11 object z0: builder, zlib compression, parser
 * (card spec §6.3). */
#include "common/p11obj.h"

#include <string.h>

#include <zlib.h>

void
cmn_p11obj_init(struct cmn_p11obj *o, const uint8_t cuid[10], const char *token_name,
                uint16_t object_version)
{
    size_t n = token_name != NULL ? strlen(token_name) : 0;

    memset(o, 0, sizeof(*o));
    o->format_version = 0x0100;
    o->object_version = object_version;
    if (cuid != NULL)
        memcpy(o->cuid, cuid, 10);
    if (n > sizeof(o->name))
        n = sizeof(o->name);
    if (n > 0)
        memcpy(o->name, token_name, n);
    o->name_len = n;
    cmn_buf_init(&o->store, 0);
}

void
cmn_p11obj_cleanup(struct cmn_p11obj *o)
{
    cmn_buf_cleanup(&o->store);
    o->nrecs = 0;
}

enum cmn_rc
cmn_p11obj_add(struct cmn_p11obj *o, const struct cmn_p11obj_rec *rec)
{
    if (rec->nattrs > CMN_P11OBJ_MAX_ATTRS)
        return CMN_EINVAL;
    if (o->nrecs == CMN_P11OBJ_MAX_RECS)
        return CMN_ETOOBIG;
    o->recs[o->nrecs++] = *rec;
    return CMN_OK;
}

enum cmn_rc
cmn_p11obj_add_cert(struct cmn_p11obj *o, unsigned n, const char *label, const uint8_t *der,
                    size_t der_len, uint32_t key_type, unsigned usage)
{
    struct cmn_p11obj_rec c, pub, priv;
    uint32_t upub = 0, upriv = 0;

    if (n > 4 || der == NULL || der_len == 0)
        return CMN_EINVAL;
    if (o->nrecs + 3 > CMN_P11OBJ_MAX_RECS)
        return CMN_ETOOBIG;
    if (usage == 0)
        usage = CMN_P11OBJ_USE_SIGN;
    if (usage & CMN_P11OBJ_USE_SIGN) {
        upub |= CMN_P11OBJ_F_VERIFY | CMN_P11OBJ_F_VERIFY_RECOVER;
        upriv |= CMN_P11OBJ_F_SIGN | CMN_P11OBJ_F_SIGN_RECOVER;
    }
    if (usage & CMN_P11OBJ_USE_ENCRYPT) {
        upub |= CMN_P11OBJ_F_ENCRYPT | CMN_P11OBJ_F_WRAP;
        upriv |= CMN_P11OBJ_F_DECRYPT | CMN_P11OBJ_F_UNWRAP;
    }
    memset(&c, 0, sizeof(c));
    c.id = CMN_P11OBJ_ID('c', n);
    c.fixed = (CMN_P11_CKO_CERTIFICATE << CMN_P11OBJ_F_CLASS_SHIFT) | CMN_P11OBJ_F_TOKEN | n;
    if (label != NULL) {
        c.attrs[c.nattrs].type = CMN_P11_CKA_LABEL;
        c.attrs[c.nattrs].dtype = CMN_P11OBJ_DT_STRING;
        c.attrs[c.nattrs].val = (const uint8_t *)label;
        c.attrs[c.nattrs].len = strlen(label);
        c.nattrs++;
    }
    c.attrs[c.nattrs].type = CMN_P11_CKA_VALUE;
    c.attrs[c.nattrs].dtype = CMN_P11OBJ_DT_STRING;
    c.attrs[c.nattrs].val = der;
    c.attrs[c.nattrs].len = der_len;
    c.nattrs++;

    memset(&pub, 0, sizeof(pub));
    pub.id = CMN_P11OBJ_ID('k', 2 * n + 1);
    pub.fixed =
        (CMN_P11_CKO_PUBLIC_KEY << CMN_P11OBJ_F_CLASS_SHIFT) | CMN_P11OBJ_F_TOKEN | upub | n;

    memset(&priv, 0, sizeof(priv));
    priv.id = CMN_P11OBJ_ID('k', 2 * n);
    priv.fixed = (CMN_P11_CKO_PRIVATE_KEY << CMN_P11OBJ_F_CLASS_SHIFT) | CMN_P11OBJ_F_TOKEN |
                 CMN_P11OBJ_F_PRIVATE | CMN_P11OBJ_F_SENSITIVE | upriv | n;
    priv.attrs[0].type = CMN_P11_CKA_KEY_TYPE;
    priv.attrs[0].dtype = CMN_P11OBJ_DT_INT;
    priv.attrs[0].ival = key_type;
    priv.nattrs = 1;

    /* order per certificate: cN, its public key, its private key (§6.3) */
    o->recs[o->nrecs++] = c;
    o->recs[o->nrecs++] = pub;
    o->recs[o->nrecs++] = priv;
    return CMN_OK;
}

static struct cmn_p11obj_rec *
find_rec(struct cmn_p11obj *o, uint32_t id)
{
    for (size_t i = 0; i < o->nrecs; i++)
        if (o->recs[i].id == id)
            return &o->recs[i];
    return NULL;
}

static void
put_string(struct cmn_p11obj_rec *r, uint32_t type, const uint8_t *v, size_t len)
{
    struct cmn_p11obj_attr *a = &r->attrs[r->nattrs++];

    a->type = type;
    a->dtype = CMN_P11OBJ_DT_STRING;
    a->val = v;
    a->len = len;
}

enum cmn_rc
cmn_p11obj_add_ec(struct cmn_p11obj *o, unsigned n, const uint8_t *params, size_t params_len,
                  const uint8_t *point, size_t point_len)
{
    struct cmn_p11obj_rec *pub, *priv;

    if (n > 4 || params == NULL || params_len == 0 || point == NULL || point_len == 0)
        return CMN_EINVAL;
    pub = find_rec(o, CMN_P11OBJ_ID('k', 2 * n + 1));
    priv = find_rec(o, CMN_P11OBJ_ID('k', 2 * n));
    if (pub == NULL || priv == NULL)
        return CMN_EINVAL;
    if (pub->nattrs + 3 > CMN_P11OBJ_MAX_ATTRS || priv->nattrs + 1 > CMN_P11OBJ_MAX_ATTRS)
        return CMN_ETOOBIG;
    /* the public record gets its key type too: a reader that looks at it alone sees EC */
    pub->attrs[pub->nattrs].type = CMN_P11_CKA_KEY_TYPE;
    pub->attrs[pub->nattrs].dtype = CMN_P11OBJ_DT_INT;
    pub->attrs[pub->nattrs].ival = CMN_P11_CKK_EC;
    pub->nattrs++;
    put_string(pub, CMN_P11_CKA_EC_PARAMS, params, params_len);
    put_string(pub, CMN_P11_CKA_EC_POINT, point, point_len);
    put_string(priv, CMN_P11_CKA_EC_PARAMS, params, params_len);
    /* an EC key does not decrypt: its "encryption" use is key agreement (coolkey maps decrypt
     * to CKA_DERIVE for EC keys the same way) */
    if (priv->fixed & CMN_P11OBJ_F_DECRYPT)
        priv->fixed |= CMN_P11OBJ_F_DERIVE;
    if (pub->fixed & CMN_P11OBJ_F_ENCRYPT)
        pub->fixed |= CMN_P11OBJ_F_DERIVE;
    return CMN_OK;
}

static enum cmn_rc
put16(struct cmn_buf *b, size_t v)
{
    uint8_t x[2];

    if (v > 0xFFFF)
        return CMN_ETOOBIG;
    cmn_put_u16(x, (uint16_t)v);
    return cmn_buf_append(b, x, 2);
}

static enum cmn_rc
put32(struct cmn_buf *b, uint32_t v)
{
    uint8_t x[4];

    cmn_put_u32(x, v);
    return cmn_buf_append(b, x, 4);
}

static enum cmn_rc
encode_payload(const struct cmn_p11obj *o, struct cmn_buf *p)
{
    enum cmn_rc rc;

    rc = put16(p, o->name_len + 5);
    if (rc == CMN_OK)
        rc = put16(p, o->nrecs);
    if (rc == CMN_OK)
        rc = cmn_buf_putc(p, (uint8_t)o->name_len);
    if (rc == CMN_OK)
        rc = cmn_buf_append(p, o->name, o->name_len);
    for (size_t i = 0; i < o->nrecs && rc == CMN_OK; i++) {
        const struct cmn_p11obj_rec *r = &o->recs[i];

        rc = put32(p, r->id);
        if (rc == CMN_OK)
            rc = put32(p, r->fixed);
        if (rc == CMN_OK)
            rc = put16(p, r->nattrs);
        for (size_t j = 0; j < r->nattrs && rc == CMN_OK; j++) {
            const struct cmn_p11obj_attr *a = &r->attrs[j];

            rc = put32(p, a->type);
            if (rc == CMN_OK)
                rc = cmn_buf_putc(p, a->dtype);
            if (rc != CMN_OK)
                break;
            switch (a->dtype) {
            case CMN_P11OBJ_DT_STRING:
                rc = put16(p, a->len);
                if (rc == CMN_OK && a->len > 0)
                    rc = cmn_buf_append(p, a->val, a->len);
                break;
            case CMN_P11OBJ_DT_INT:
                rc = put32(p, a->ival);
                break;
            case CMN_P11OBJ_DT_FALSE:
            case CMN_P11OBJ_DT_TRUE:
                break;
            default:
                rc = CMN_EINVAL;
            }
        }
    }
    return rc;
}

enum cmn_rc
cmn_p11obj_encode(const struct cmn_p11obj *o, bool compress, struct cmn_buf *out)
{
    struct cmn_buf p;
    uint8_t hdr[CMN_P11OBJ_HDR_LEN];
    uint8_t *z = NULL;
    uLongf zlen = 0;
    const uint8_t *body;
    size_t body_len;
    size_t start = out->len;
    enum cmn_rc rc;

    cmn_buf_init(&p, 0x10000 * 4);
    rc = encode_payload(o, &p);
    if (rc != CMN_OK)
        goto done;
    body = p.data;
    body_len = p.len;
    if (compress) {
        /* RFC 1950 stream (78 9C ...), what Dogtag writes */
        zlen = compressBound((uLong)p.len);
        rc = cmn_buf_reserve(out, CMN_P11OBJ_HDR_LEN + zlen, &z);
        if (rc != CMN_OK)
            goto done;
        z += CMN_P11OBJ_HDR_LEN;
        if (compress2(z, &zlen, p.data, (uLong)p.len, Z_DEFAULT_COMPRESSION) != Z_OK) {
            rc = CMN_EIO;
            goto done;
        }
        body = z;
        body_len = zlen;
    }
    if (body_len > 0xFFFF) {
        rc = CMN_ETOOBIG;
        goto done;
    }
    cmn_put_u16(hdr, o->format_version);
    cmn_put_u16(hdr + 2, o->object_version);
    memcpy(hdr + 4, o->cuid, 10);
    cmn_put_u16(hdr + 14, compress ? 1 : 0);
    cmn_put_u16(hdr + 16, (uint16_t)body_len);
    cmn_put_u16(hdr + 18, CMN_P11OBJ_HDR_LEN);
    if (compress) {
        /* the compressed bytes already sit right after the header's place in out */
        memcpy(out->data + out->len, hdr, sizeof(hdr));
        out->len += sizeof(hdr) + body_len;
    } else {
        rc = cmn_buf_append(out, hdr, sizeof(hdr));
        if (rc == CMN_OK)
            rc = cmn_buf_append(out, body, body_len);
    }
done:
    if (rc != CMN_OK)
        out->len = start;
    cmn_buf_cleanup(&p);
    return rc;
}

static enum cmn_rc
inflate_capped(const uint8_t *in, size_t n, size_t max, struct cmn_buf *out)
{
    z_stream zs;
    uint8_t chunk[4096];
    int zr;
    enum cmn_rc rc = CMN_OK;

    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK)
        return CMN_ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    do {
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            rc = zr == Z_BUF_ERROR ? CMN_ESHORT : CMN_EINVAL;
            break;
        }
        if (out->len + (sizeof(chunk) - zs.avail_out) > max) {
            rc = CMN_ETOOBIG;
            break;
        }
        rc = cmn_buf_append(out, chunk, sizeof(chunk) - zs.avail_out);
        if (rc != CMN_OK)
            break;
        if (zr == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            rc = CMN_ESHORT; /* input ended before the stream did */
            break;
        }
    } while (zr != Z_STREAM_END);
    inflateEnd(&zs);
    return rc;
}

static enum cmn_rc
parse_records(struct cmn_p11obj *o, struct cmn_rd *rd)
{
    for (unsigned i = 0; i < o->obj_count && rd->left > 0; i++) {
        struct cmn_p11obj_rec *r;
        uint16_t na;

        if (o->nrecs == CMN_P11OBJ_MAX_RECS)
            return CMN_ETOOBIG;
        r = &o->recs[o->nrecs];
        memset(r, 0, sizeof(*r));
        if (!cmn_rd_u32(rd, &r->id) || !cmn_rd_u32(rd, &r->fixed) || !cmn_rd_u16(rd, &na))
            return CMN_ESHORT;
        if (na > CMN_P11OBJ_MAX_ATTRS)
            return CMN_ETOOBIG;
        for (unsigned j = 0; j < na; j++) {
            struct cmn_p11obj_attr *a = &r->attrs[j];
            uint16_t len;

            if (!cmn_rd_u32(rd, &a->type) || !cmn_rd_u8(rd, &a->dtype))
                return CMN_ESHORT;
            switch (a->dtype) {
            case CMN_P11OBJ_DT_STRING:
                if (!cmn_rd_u16(rd, &len) || !cmn_rd_take(rd, len, &a->val))
                    return CMN_ESHORT;
                a->len = len;
                break;
            case CMN_P11OBJ_DT_INT:
                if (!cmn_rd_u32(rd, &a->ival))
                    return CMN_ESHORT;
                break;
            case CMN_P11OBJ_DT_FALSE:
            case CMN_P11OBJ_DT_TRUE:
                break;
            default:
                return CMN_EINVAL;
            }
        }
        r->nattrs = na;
        o->nrecs++;
    }
    return CMN_OK;
}

enum cmn_rc
cmn_p11obj_parse(struct cmn_p11obj *o, const uint8_t *in, size_t n, size_t max_payload)
{
    struct cmn_rd rd;
    uint16_t clen, off, obj_off;
    uint8_t nlen;
    const uint8_t *name;
    enum cmn_rc rc;

    if (max_payload == 0)
        max_payload = CMN_P11OBJ_DEFAULT_MAX;
    cmn_p11obj_init(o, NULL, NULL, 0);
    cmn_buf_init(&o->store, max_payload);
    if (n < CMN_P11OBJ_HDR_LEN)
        return CMN_ESHORT;
    o->format_version = (uint16_t)((in[0] << 8) | in[1]);
    o->object_version = (uint16_t)((in[2] << 8) | in[3]);
    memcpy(o->cuid, in + 4, 10);
    o->compression = (uint16_t)((in[14] << 8) | in[15]);
    clen = (uint16_t)((in[16] << 8) | in[17]);
    off = (uint16_t)((in[18] << 8) | in[19]);
    if (off < CMN_P11OBJ_HDR_LEN)
        return CMN_EINVAL;
    if ((size_t)off + clen > n)
        return CMN_ESHORT;
    if (o->compression == 1) {
        rc = inflate_capped(in + off, clen, max_payload, &o->store);
        if (rc != CMN_OK)
            return rc;
    } else if (o->compression == 0) {
        if (clen > max_payload)
            return CMN_ETOOBIG;
        rc = cmn_buf_append(&o->store, in + off, clen);
        if (rc != CMN_OK)
            return rc;
    } else {
        return CMN_EUNSUPP;
    }
    cmn_rd_init(&rd, o->store.data, o->store.len);
    if (!cmn_rd_u16(&rd, &obj_off) || !cmn_rd_u16(&rd, &o->obj_count) || !cmn_rd_u8(&rd, &nlen) ||
        !cmn_rd_take(&rd, nlen, &name))
        return CMN_ESHORT;
    memcpy(o->name, name, nlen);
    o->name_len = nlen;
    /* records start at objOffset, normally right after the name */
    if (obj_off < 5u + nlen || obj_off > o->store.len)
        return CMN_EINVAL;
    cmn_rd_init(&rd, o->store.data + obj_off, o->store.len - obj_off);
    return parse_records(o, &rd);
}

const struct cmn_p11obj_rec *
cmn_p11obj_find(const struct cmn_p11obj *o, uint32_t id)
{
    for (size_t i = 0; i < o->nrecs; i++)
        if (o->recs[i].id == id)
            return &o->recs[i];
    return NULL;
}

const struct cmn_p11obj_attr *
cmn_p11obj_attr(const struct cmn_p11obj_rec *rec, uint32_t type)
{
    for (size_t i = 0; i < rec->nattrs; i++)
        if (rec->attrs[i].type == type)
            return &rec->attrs[i];
    return NULL;
}
