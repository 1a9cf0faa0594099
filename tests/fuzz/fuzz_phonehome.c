/* tests/fuzz/fuzz_phonehome.c - tokenclient's phone-home document parser (expat). */
#include <stddef.h>
#include <stdint.h>

#include "tokenclient/tc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tc_service svc;
    char err[256];

    (void)tc_phonehome_parse((const char *)data, size, &svc, err, sizeof(err));
    return 0;
}
