/* tests/fuzz/fuzz_ca_resp.c - libFuzzer target for the CA answer parsers of gateway/ca.c:
 * enrollment/renewal/lookup XMLResponse (one and many requests), displayBySerial <xml>, and the
 * revoke/unrevoke form answer, all from the same input. */
#include <stdint.h>
#include <stdlib.h>

#include "gateway/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct tps_ca_result r;
    unsigned m;
    long st;
    bool un;
    char text[64];

    tps_ca_result_init(&r);
    (void)tps_ca_parse_enroll(s, size, false, NULL, NULL, &r);
    tps_ca_result_cleanup(&r);
    tps_ca_result_init(&r);
    (void)tps_ca_parse_enroll(s, size, true, "1a", &m, &r);
    tps_ca_result_cleanup(&r);
    tps_ca_result_init(&r);
    (void)tps_ca_parse_getcert(s, size, &r);
    tps_ca_result_cleanup(&r);
    (void)tps_ca_parse_status(s, size, &st, &un, text, sizeof(text));
    return 0;
}
