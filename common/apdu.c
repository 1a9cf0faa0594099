/* common/apdu.c - APDU encoding and decoding by case (card spec §1.2). */
#include "common/apdu.h"

#include <string.h>

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
