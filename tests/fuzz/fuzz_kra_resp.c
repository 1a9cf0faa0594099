/* tests/fuzz/fuzz_kra_resp.c - libFuzzer target for the KRA answer parser of gateway/kra.c
 * (GenerateKeyPair and TokenKeyRecovery form answers: status, public key, wrapped key, IV). */
#include <stdint.h>
#include <stdlib.h>

#include "gateway/kra.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tps_kra_result r;

    tps_kra_result_init(&r);
    (void)tps_kra_parse((const char *)data, size, false, &r);
    tps_kra_result_cleanup(&r);
    tps_kra_result_init(&r);
    (void)tps_kra_parse((const char *)data, size, true, &r);
    tps_kra_result_cleanup(&r);
    return 0;
}
