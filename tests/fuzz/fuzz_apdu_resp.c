/* tests/fuzz/fuzz_apdu_resp.c - every card-response parser of common/apdu.c on the same bytes,
 * as a card (or a hostile relay) could answer them; also the SW table and APDU decoding. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <stdlib.h>

#include "common/apdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs every parser on data[0..size) (response data without SW). */
static void
run_all(const uint8_t *data, size_t size, uint16_t sw)
{
    uint8_t aid[CMN_AID_MAX];
    size_t aid_len;
    struct cmn_cplc cplc;
    struct cmn_gp_crd crd;
    struct cmn_gp_keyinfo ki;
    struct cmn_gp_iu iu;
    struct cmn_ck_status st;
    struct cmn_ck_lifecycle lc;
    struct cmn_ck_object ob;
    struct cmn_ck_keygen_out kg;
    struct cmn_ck_builtin_acl acl;
    uint32_t build;
    uint16_t v16;
    uint8_t nonce[8];
    const uint8_t *res;
    size_t rn;
    char text[CMN_CK_ISSUER_INFO_LEN + 1], swbuf[128];

    (void)cmn_fci_parse_aid(data, size, aid, &aid_len);
    (void)cmn_cplc_parse(data, size, &cplc);
    (void)cmn_gp_crd_parse(data, size, sw, &crd);
    (void)cmn_gp_crd_parse(data, size, 0x9000, &crd);
    (void)cmn_gp_keyinfo_parse(data, size, &ki);
    for (unsigned scp = 0; scp <= 4; scp++)
        (void)cmn_gp_iu_parse(data, size, scp, &iu);
    (void)cmn_ck_status_parse(data, size, &st);
    (void)cmn_ck_version_parse(data, size, &build);
    (void)cmn_ck_lifecycle_parse(data, size, &lc);
    (void)cmn_ck_object_parse(data, size, &ob);
    (void)cmn_ck_pins_parse(data, size, &v16);
    (void)cmn_ck_nonce_parse(data, size, nonce);
    (void)cmn_ck_keygen_len_parse(data, size, &v16);
    if (cmn_ck_keygen_parse(data, size, &kg) == CMN_OK) {
        /* the borrowed pointers must lie inside the input */
        if (kg.modulus < data || kg.modulus + kg.mod_len > data + size ||
            kg.exponent + kg.exp_len > data + size || kg.proof + kg.proof_len > data + size)
            __builtin_trap();
    }
    if (cmn_ck_crypt_parse(data, size, &res, &rn) == CMN_OK && res + rn > data + size)
        __builtin_trap();
    (void)cmn_ck_issuer_info_parse(data, size, text, sizeof(text));
    (void)cmn_ck_issuer_info_parse(data, size, text, 8);
    (void)cmn_ck_builtin_acl_parse(data, size, &acl);
    if (size >= 2) {
        uint16_t w = (uint16_t)(data[0] << 8 | data[1]);

        (void)cmn_sw_name(w);
        (void)cmn_sw_str(w);
        (void)cmn_sw_format(w, swbuf, (size_t)(data[0] % 64));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmn_rapdu r;
    struct cmn_apdu a;
    uint8_t *copy;

    (void)cmn_apdu_decode(data, size, &a);
    run_all(data, size, 0x9000);
    /* the input as data ‖ SW, with the data in an exact-size heap copy so that ASan sees any
     * read past its end */
    if (cmn_rapdu_decode(data, size, &r) == CMN_OK) {
        copy = malloc(r.len ? r.len : 1);
        if (copy != NULL) {
            memcpy(copy, r.data, r.len);
            run_all(copy, r.len, r.sw);
            free(copy);
        }
    }
    return 0;
}
