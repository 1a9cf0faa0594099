/* tests/fuzz/fuzz_tks_resp.c - libFuzzer target for the TKS answer path of gateway/tks.c: the
 * input is what a TKS clone answers, fed to computeSessionKey for SCP01, SCP02 (four calls) and
 * SCP03, with and without serversideKeygen, and to encryptData. Exercises the field split,
 * #XX/%XX decoding, the status check, length checks and the unwrap with the shared secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "gateway/tks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct answer {
    const uint8_t *data;
    size_t size;
};

static enum tps_rc
answer_post(void *arg, const char *path, const char *body, size_t len, struct cmn_buf *resp,
            char *err, size_t errlen)
{
    const struct answer *a = arg;

    (void)path;
    (void)body;
    (void)len;
    (void)err;
    (void)errlen;
    (void)cmn_buf_append(resp, a->data, a->size);
    return TPS_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t raw[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const enum cmn_scp_proto protos[3] = {CMN_SCP01, CMN_SCP02, CMN_SCP03};
    struct answer a = {data, size};
    struct cmn_key shared;
    struct tps_tks *t = NULL;
    struct tps_tks_in in;
    struct tps_tks_keys k;
    uint8_t plain[16], wrapped[16], ki[3] = {1, 1, 0};
    char err[256];

    if (cmn_key_set(&shared, CMN_KEY_AES, raw, sizeof(raw)) != CMN_OK ||
        tps_tks_new_custom("tks1", &shared, "defKeySet", answer_post, &a, &t) != TPS_OK)
        abort();
    memset(&in, 0, sizeof(in));
    in.iu.key_version = 1;
    in.iu.card_challenge_len = 8;
    for (int keygen = 0; keygen < 2; keygen++) {
        t->server_keygen = keygen != 0;
        for (size_t i = 0; i < 3; i++) {
            in.proto = protos[i];
            in.iu.scp_id = (uint8_t)(i + 1);
            (void)tps_tks_session_keys(t, NULL, "fuzz", &in, &k, err, sizeof(err));
            tps_tks_keys_wipe(&k);
        }
    }
    (void)tps_tks_encrypt_data(t, NULL, NULL, "fuzz", CMN_SCP01, in.cuid, in.iu.kdd, ki, 2, plain,
                               wrapped, err, sizeof(err));
    tps_tks_free(t);
    return 0;
}
