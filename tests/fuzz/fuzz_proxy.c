/* tests/fuzz/fuzz_proxy.c - PROXY protocol header parser. */
#include <stddef.h>
#include <stdint.h>

#include "common/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmn_proxy p;
    size_t used = 0;

    if (cmn_proxy_parse(data, size, &p, &used) == CMN_OK && used > size)
        __builtin_trap(); /* a header can never be longer than the input */
    return 0;
}
