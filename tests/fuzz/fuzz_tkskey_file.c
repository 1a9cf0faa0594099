/* tests/fuzz/fuzz_tkskey_file.c - tkskey's share and wrapped-key file parsers. */
#include <stddef.h>
#include <stdint.h>

#include "tools/tkskey/keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kt_share s;
    struct kt_wrapped w;
    char err[160], out[512];

    if (kt_share_parse((const char *)data, size, &s, err, sizeof(err)))
        (void)kt_share_format(&s, out, sizeof(out));
    if (kt_wrapped_parse((const char *)data, size, &w, err, sizeof(err)))
        (void)kt_wrapped_format(&w, out, sizeof(out));
    return 0;
}
