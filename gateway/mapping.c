/* gateway/mapping.c - token type resolution by the filter mapping resolver (tps-protocol §6.2,
 * Java keys): op.<op>.mappingResolver names an instance whose mapping.order lists entries; the
 * first entry whose filters all pass gives target.tokenType. */
#include "gateway/session.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "gateway/config.h"
#include "gateway/officer.h"
#include "common/log.h"

static const char *
entry_key(const struct tps_config *cfg, const char *inst, const char *id, const char *leaf,
          char *key, size_t cap)
{
    snprintf(key, cap, "mappingResolver.%s.mapping.%s.%s", inst, id, leaf);
    return tps_cfg_str(cfg, key);
}

/* Does decimal filter `want` equal byte v? Empty passes. */
static bool
byte_filter(const char *want, uint8_t v)
{
    unsigned long long x;

    if (want[0] == '\0')
        return true;
    return cmn_parse_uint(want, 0, 255, &x) == CMN_OK && x == v;
}

static bool
entry_matches(struct tps_session *s, const char *inst, const char *id)
{
    const struct tps_config *cfg = s->env->cfg;
    static const char *const exact[] = {"tokenType", "tokenATR", "keySet"};
    char key[256], leaf[64];
    const char *want, *have, *start, *end;

    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        snprintf(leaf, sizeof(leaf), "filter.%s", exact[i]);
        want = entry_key(cfg, inst, id, leaf, key, sizeof(key));
        if (want[0] == '\0')
            continue;
        have = cmn_tpsext_get(&s->ext, exact[i]);
        if (have == NULL || strcmp(have, want) != 0)
            return false;
    }
    start = entry_key(cfg, inst, id, "filter.tokenCUID.start", key, sizeof(key));
    if (start[0] != '\0' && (strlen(start) != 20 || strcasecmp(s->tok.cuid_hex, start) < 0))
        return false;
    end = entry_key(cfg, inst, id, "filter.tokenCUID.end", key, sizeof(key));
    if (end[0] != '\0' && (strlen(end) != 20 || strcasecmp(s->tok.cuid_hex, end) > 0))
        return false;
    if (!byte_filter(entry_key(cfg, inst, id, "filter.appletMajorVersion", key, sizeof(key)),
                     s->tok.proto_major))
        return false;
    if (!byte_filter(entry_key(cfg, inst, id, "filter.appletMinorVersion", key, sizeof(key)),
                     s->tok.proto_minor))
        return false;
    return true;
}

enum tps_rc
tps_resolve_type(struct tps_session *s, const char *op)
{
    const struct tps_config *cfg = s->env->cfg;
    char key[256], id[64];
    const char *inst, *order, *p, *target;

    snprintf(key, sizeof(key), "op.%s.mappingResolver", op);
    inst = tps_cfg_str(cfg, key);
    if (inst[0] == '\0' || strcmp(inst, "none") == 0) {
        /* No resolver: the client's tokenType, as the Java TPS without mapping. */
        const char *t = cmn_tpsext_get(&s->ext, "tokenType");
        if (t == NULL || t[0] == '\0' || strlen(t) >= sizeof(s->tok.type))
            return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_MISCONFIGURATION,
                                    "no mapping resolver for %s and no tokenType extension", op);
        snprintf(s->tok.type, sizeof(s->tok.type), "%s", t);
        goto found;
    }
    snprintf(key, sizeof(key), "mappingResolver.%s.mapping.order", inst);
    order = tps_cfg_str(cfg, key);
    for (p = order; *p;) {
        size_t n = strcspn(p, ",");
        size_t b = 0;
        while (b < n && p[b] == ' ')
            b++;
        if (n - b > 0 && n - b < sizeof(id)) {
            memcpy(id, p + b, n - b);
            id[n - b] = '\0';
            while (n - b > 0 && id[strlen(id) - 1] == ' ')
                id[strlen(id) - 1] = '\0';
            if (entry_matches(s, inst, id)) {
                target = entry_key(cfg, inst, id, "target.tokenType", key, sizeof(key));
                if (target[0] == '\0' || strlen(target) >= sizeof(s->tok.type))
                    return tps_session_fail(s, TPS_ECONFIG, CMN_TPS_STATUS_MISCONFIGURATION,
                                            "mapping %s.%s has no target.tokenType", inst, id);
                snprintf(s->tok.type, sizeof(s->tok.type), "%s", target);
                goto found;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_MISCONFIGURATION,
                            "mapping resolver %s: no entry matches token %s", inst,
                            s->tok.cuid_hex);
found:
    /* The type names configuration keys: keep it to a safe alphabet. */
    for (const char *c = s->tok.type; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-'))
            return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_MISCONFIGURATION,
                                    "token type contains '%c'", *c);
    }
    snprintf(key, sizeof(key), "config.Profiles.%s.state", s->tok.type);
    if (strcmp(tps_cfg_str(cfg, key), "Disabled") == 0)
        return tps_session_fail(s, TPS_EPOLICY, CMN_TPS_STATUS_DISABLED_TOKEN,
                                "token type %s is disabled (%s)", s->tok.type, key);
    CMN_LOG(CMN_LOG_INFO, "token.type", s->sid, "cuid=%s op=%s type=%s", s->tok.cuid_hex, op,
            s->tok.type);
    return tps_officer_check(s, op); /* officer-only types (gateway/officer.h) */
}
