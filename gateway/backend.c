/* gateway/backend.c - failover options shared by the CA and KRA connectors. */
#include "gateway/backend.h"

#include <stdint.h>
#include <stdio.h>

#include "common/cfg.h"
#include "common/log.h"

static void
fo_log(void *arg, enum fo_log_level level, const char *line)
{
    CMN_LOG((enum cmn_log_level)level, (const char *)arg, NULL, "detail=\"%s\"", line);
}

void
tps_backend_fo_opts(const struct cmn_cfg *cfg, const char *id, const char *event,
                    unsigned deadline_ms, size_t body_max, struct fo_opts *o)
{
    char k[CMN_CFG_MAX_KEY];
#define K(leaf) (snprintf(k, sizeof(k), "conn.%s.%s", id, leaf), k)
    fo_opts_init(o);
    o->tls = cmn_cfg_bool(cfg, K("SSLOn"));
    o->deadline_ms = deadline_ms;
    o->connect_timeout_ms = (unsigned)cmn_cfg_uint(cfg, K("connectTimeout"));
    o->max_attempts = (unsigned)cmn_cfg_uint(cfg, K("retryConnect"));
    o->cert_file = cmn_cfg_str(cfg, K("clientCertFile"));
    o->key_file = cmn_cfg_str(cfg, K("clientKeyFile"));
    o->ca_file = cmn_cfg_str(cfg, K("caBundle"));
#undef K
    o->body_max = body_max;
    o->log = fo_log;
    o->log_arg = (void *)(uintptr_t)event;
    o->log_level = cmn_log_enabled(CMN_LOG_DEBUG) ? FO_LOG_DEBUG : FO_LOG_NOTICE;
}
