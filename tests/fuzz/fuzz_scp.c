/* tests/fuzz/fuzz_scp.c - the card-side secure-channel parsers of common/scp: INITIALIZE
 * UPDATE responses, key set data, EXTERNAL AUTHENTICATE and wrapped commands, for each
 * protocol. The first input byte picks the protocol; the rest is split into commands. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/apdu.h"
#include "common/scp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t hc[8] = {0x2F, 0xB7, 0x9F, 0xB7, 0x04, 0xFA, 0x60, 0xE8};
    static const uint8_t cc[8] = {0xB9, 0x69, 0xB0, 0xCA, 0x37, 0x27, 0x2F, 0x89};
    static const uint8_t seq[2] = {0x00, 0x0A};
    enum cmn_scp_proto proto;
    struct cmn_scp_iu iu;
    struct cmn_keyset dev, out;
    struct cmn_scp s;
    size_t pos = 1;
    uint16_t sw;

    if (size < 1)
        return 0;
    proto = (enum cmn_scp_proto)(1 + data[0] % 3);
    (void)cmn_scp_iu_parse(proto, data + 1, size - 1, &iu);
    cmn_keyset_developer(&dev, proto, 1);
    if (cmn_keyset_data_parse(proto, &dev.kek, data + 1, size - 1, &out) == CMN_OK)
        cmn_keyset_wipe(&out);
    if (cmn_scp_init(&s, proto) != CMN_OK)
        goto done;
    if (cmn_scp_set_challenges(&s, hc, cc, proto == CMN_SCP02 ? 6 : 8,
                               proto == CMN_SCP02 ? seq : NULL) != CMN_OK ||
        cmn_scp_derive(&s, &dev) != CMN_OK)
        goto done;
    /* commands: [len][bytes]...; the first goes to EXTERNAL AUTHENTICATE, the rest to unwrap */
    for (int i = 0; pos < size; i++) {
        size_t n = data[pos++];
        struct cmn_apdu cmd, plain;

        if (n > size - pos)
            n = size - pos;
        if (cmn_apdu_decode(data + pos, n, &cmd) == CMN_OK) {
            if (i == 0)
                (void)cmn_scp_card_ext_auth(&s, &cmd, &sw);
            else
                (void)cmn_scp_unwrap_ex(&s, &cmd, CMN_SCP_ACCEPT_PLAIN, &plain, &sw);
        }
        pos += n;
    }
done:
    cmn_scp_cleanup(&s);
    cmn_keyset_wipe(&dev);
    return 0;
}
