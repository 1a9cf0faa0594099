/* tests/fuzz/fuzz_fo_list.c - libFuzzer target for libfailover's endpoint-list parser (Dogtag
 * "host:port host:port", IPv6 in brackets): never crashes, and every accepted list re-parses
 * from its own canonical endpoint names to the same endpoints. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libfailover/failover.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fo_ep eps[FO_MAX_ENDPOINTS], again[FO_MAX_ENDPOINTS];
    char err[128], canon[FO_MAX_ENDPOINTS * (FO_ENDPOINT_MAX + 1) + 1];
    size_t n = 0, m = 0, len = 0;
    char *s;

    if (size > 16384)
        return 0;
    s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (fo_list_check(s, &n, err, sizeof(err)) != FO_OK) {
        if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
            abort(); /* a refusal always says why */
        goto out;
    }
    if (n == 0 || n > FO_MAX_ENDPOINTS ||
        fo_parse_list(s, eps, &m, err, sizeof(err)) != FO_OK || m != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(eps[i].name);

        if (eps[i].port == 0 || eps[i].port > 65535 || eps[i].host[0] == '\0')
            abort();
        memcpy(canon + len, eps[i].name, l);
        len += l;
        canon[len++] = ' ';
    }
    canon[len] = '\0';
    if (fo_parse_list(canon, again, &m, err, sizeof(err)) != FO_OK || m != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (strcmp(eps[i].name, again[i].name) != 0 || eps[i].port != again[i].port ||
            eps[i].v6 != again[i].v6)
            abort();
    }
out:
    free(s);
    return 0;
}
