/* tests/fuzz/fuzz_xmlmini.c - libFuzzer target for gateway/xmlmini.c: parse, walk every element
 * by path and by child lookups, decode every leaf's text with a small and a large buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/xmlmini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tps_xml *x = malloc(sizeof(*x));
    char small[8], big[4096];

    if (x == NULL)
        return 0;
    if (tps_xml_parse(x, (const char *)data, size) == TPS_OK) {
        for (size_t i = 0; i < x->count; i++) {
            char name[TPS_XML_MAX_NAME + 1];
            const struct tps_xml_node *e = &x->node[i];

            (void)tps_xml_text(x, (int)i, small, sizeof(small), NULL);
            (void)tps_xml_text(x, (int)i, big, sizeof(big), NULL);
            memcpy(name, e->name, e->name_len);
            name[e->name_len] = '\0';
            (void)tps_xml_child(x, e->parent, name, -1);
            (void)tps_xml_count(x, e->parent, name);
            (void)tps_xml_is(x, (int)i, name);
        }
        (void)tps_xml_path(x, "XMLResponse/Requests/Request/b64");
        (void)tps_xml_path(x, "xml/header/certChainBase64");
    }
    free(x);
    return 0;
}
