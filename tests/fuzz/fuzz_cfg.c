/* tests/fuzz/fuzz_cfg.c - the CS.cfg parser and validator on arbitrary file contents, against
 * a sample key table with every type except CFG_SECRET_FILE (which would stat() fuzz paths);
 * then every lookup on the snapshot and the host-list parser on the raw text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const words[] = {"none", "visa2", "emv", NULL};

static const struct cmn_cfg_key keys[] = {
    {.name = "service.securePort", .type = CFG_UINT, .min = 1, .max = 65535, .def = 7889},
    {.name = "tps.debug", .type = CFG_BOOL},
    {.name = "tps.divers", .type = CFG_ENUM, .words = words, .defstr = "emv"},
    {.name = "tps.logFile", .type = CFG_PATH},
    {.name = "tps.password", .type = CFG_STR, .secret = true},
    {.name = "conn.*.hostport", .type = CFG_HOSTLIST, .required = true},
    {.name = "conn.t*s*.timeout", .type = CFG_UINT, .min = 1, .max = 600, .def = 30},
    {.name = "op.*.*.issuerinfo.value", .type = CFG_STR},
    {.name = "tks.*.mk_mappings.**", .type = CFG_STR},
    {0},
};
static const struct cmn_cfg_key *const tables[] = {keys, NULL};

static bool
on_key(void *arg, const char *key, const char *value)
{
    (*(size_t *)arg) += strlen(key) + strlen(value);
    return true;
}

static bool
on_child(void *arg, const char *child)
{
    (*(size_t *)arg) += strlen(child);
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;
    struct cmn_cfg_hostlist hl;
    char why[256], where[300];
    char *s;
    size_t sum = 0;

    cmn_buf_init(&errs, 1 << 20);
    if (cmn_cfg_parse("fuzz.cfg", (const char *)data, size, tables, &c, &errs) == CMN_OK) {
        (void)cmn_cfg_uint(c, "service.securePort");
        (void)cmn_cfg_bool(c, "tps.debug");
        (void)cmn_cfg_enum(c, "tps.divers");
        (void)cmn_cfg_str(c, "tps.logFile");
        (void)cmn_cfg_uint(c, "conn.tks1.timeout");
        (void)cmn_cfg_hostlist(c, "conn.tks1.hostport", &hl);
        (void)cmn_cfg_where(c, "tps.debug", where, sizeof(where));
        cmn_cfg_each(c, "conn.", on_key, &sum);
        cmn_cfg_children(c, "conn.", on_child, &sum);
        cmn_cfg_children(c, "", on_child, &sum);
        cmn_cfg_children(c, "op.", on_child, &sum);
        cmn_cfg_unref(c);
    }
    cmn_buf_cleanup(&errs);

    /* the host-list grammar on the raw text */
    s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
        (void)cmn_cfg_hostlist_parse(s, &hl, why, sizeof(why));
        free(s);
    }
    return 0;
}
