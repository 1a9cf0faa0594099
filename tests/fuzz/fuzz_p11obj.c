/* tests/fuzz/fuzz_p11obj.c - the z0 parser (common/p11obj.c) on arbitrary card data. */
#include <stddef.h>
#include <stdint.h>

#include "common/p11obj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmn_p11obj o;

    /* same cap as the C++ TPS and vtoken --show */
    if (cmn_p11obj_parse(&o, data, size, CMN_P11OBJ_DEFAULT_MAX) == CMN_OK) {
        for (size_t i = 0; i < o.nrecs; i++)
            (void)cmn_p11obj_attr(&o.recs[i], CMN_P11_CKA_VALUE);
    }
    cmn_p11obj_cleanup(&o);
    return 0;
}
