/* common/apdu.h - ISO 7816 command and response APDUs that carry their own lengths. */
#ifndef CMN_APDU_H
#define CMN_APDU_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

#define CMN_APDU_MAX_DATA 255 /* short APDUs only (card spec §8.2) */
#define CMN_APDU_MAX_WIRE (5 + CMN_APDU_MAX_DATA + 1)
#define CMN_RAPDU_MAX_DATA 256

/* A command APDU. `lc` is the number of bytes in data; `le` is -1 when absent, else the
 * expected length 0..256 (256 travels as 00). */
struct cmn_apdu {
    uint8_t cla, ins, p1, p2;
    uint8_t data[CMN_APDU_MAX_DATA];
    size_t lc;
    int le;
};

/* A response APDU: data then the status word. */
struct cmn_rapdu {
    uint8_t data[CMN_RAPDU_MAX_DATA];
    size_t len;
    uint16_t sw;
};

/* Encodes a by its case (1: no data no Le, 2: Le, 3: data, 4: data + Le) into out.
 * [out] out, out_len. CMN_EINVAL if lc > 255 or le out of range; CMN_ETOOBIG if out_size is
 * too small. Never writes past out_size. */
enum cmn_rc cmn_apdu_encode(const struct cmn_apdu *a, uint8_t *out, size_t out_size,
                            size_t *out_len);

/* Decodes a command as a card must (card spec §1.2): n=4 case 1; n=5 case 2 (P3 = Le);
 * n=5+P3 case 3; n=6+P3 case 4. `00 A4 04 00` with no P3 is SELECT with an empty AID.
 * [out] a. CMN_EINVAL when the length matches no case. */
enum cmn_rc cmn_apdu_decode(const uint8_t *in, size_t n, struct cmn_apdu *a);

/* Splits a card answer into data and SW. CMN_ESHORT if n < 2, CMN_ETOOBIG if the data
 * exceeds CMN_RAPDU_MAX_DATA. */
enum cmn_rc cmn_rapdu_decode(const uint8_t *in, size_t n, struct cmn_rapdu *r);

/* Encodes data || SW into out. */
enum cmn_rc cmn_rapdu_encode(const struct cmn_rapdu *r, uint8_t *out, size_t out_size,
                             size_t *out_len);

#endif
