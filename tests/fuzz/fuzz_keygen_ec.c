/* tests/fuzz/fuzz_keygen_ec.c - libFuzzer target for the GENERATE KEY ECC I/O buffer a card
 * returns (gateway/keygen.c tps_keygen_verify_proof_ec: framing, key blob, point, proof). The
 * first input byte picks the curve size asked (even: 256, odd: 384); the rest is the buffer. */
#include <stdint.h>
#include <stdlib.h>

#include "gateway/keygen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t challenge[TPS_KEYGEN_CHALLENGE_LEN] = {0};
    struct tps_keygen_pub pub;
    char err[256];

    if (size < 1)
        return 0;
    (void)tps_keygen_verify_proof_ec(data + 1, size - 1, challenge, (data[0] & 1) ? 384 : 256,
                                     &pub, err, sizeof(err));
    return 0;
}
