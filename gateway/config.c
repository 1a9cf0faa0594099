/* gateway/config.c - tpsgw's key table and the snapshot built on common/cfg: every key tpsgw
 * (and its token DB and authenticator modules) reads, with Dogtag's CS.cfg name where one
 * exists, type, range, default and one line of documentation (STYLE §7). */
#include "gateway/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "gateway/admin.h"
#include "gateway/ca.h"
#include "gateway/enroll.h"
#include "gateway/kra.h"
#include "gateway/lb.h"

static const char *const log_levels[] = {"error", "warn", "notice", "info", "debug", NULL};
static const char *const key_types[] = {"AES", "DES3", NULL};
static const char *const profile_states[] = {"Enabled", "Disabled", NULL};

/* U(name, min, max, def, doc) etc. keep the table readable. */
#define U(n, lo, hi, d, doc_)                                                                      \
    {                                                                                              \
        .name = n, .type = CFG_UINT, .min = lo, .max = hi, .def = d, .doc = doc_                   \
    }
#define B(n, d, doc_)                                                                              \
    {                                                                                              \
        .name = n, .type = CFG_BOOL, .def = d, .doc = doc_                                         \
    }
#define S(n, d, doc_)                                                                              \
    {                                                                                              \
        .name = n, .type = CFG_STR, .defstr = d, .doc = doc_                                       \
    }
#define P(n, d, doc_)                                                                              \
    {                                                                                              \
        .name = n, .type = CFG_PATH, .defstr = d, .doc = doc_                                      \
    }
#define SF(n, doc_)                                                                                \
    {                                                                                              \
        .name = n, .type = CFG_SECRET_FILE, .doc = doc_                                            \
    }
#define H(n, doc_)                                                                                 \
    {                                                                                              \
        .name = n, .type = CFG_HOSTLIST, .doc = doc_                                               \
    }

static const struct cmn_cfg_key gw_keys[] = {
    /* listeners and sessions */
    S("service.bindAddress", "127.0.0.1", "address the listeners bind to (ours)"),
    U("service.unsecurePort", 0, 65535, 0, "plain HTTP port (Dogtag); unset = none, 0 = ephemeral"),
    U("service.securePort", 0, 65535, 0, "HTTPS port (Dogtag); unset = none, 0 = ephemeral"),
    P("service.sslCertFile", NULL, "PEM certificate (chain) of the HTTPS listener (ours)"),
    SF("service.sslKeyFile", "PEM private key of the HTTPS listener, mode 0600 (ours)"),
    P("service.clientCAFile", NULL,
      "PEM CA(s) of staff client certificates: the HTTPS listener asks for one (optional; "
      "the admin API needs it, TPS operations do not) (ours)"),
    B("service.acceptProxy", 0,
      "every connection starts with a PROXY v1/v2 header (HAProxy "
      "send-proxy-v2); its source address is the client IP (ours)"),
    U("tps.maxSessions", 1, 10000, 64, "live sessions = worker threads; beyond them 503 (ours)"),
    U("tps.acceptQueue", 1, 10000, 16, "accepted connections waiting for a worker; full = 503"),
    U("tps.connection.maxMessageSize", 64, 99999, 9999, "largest client message body (Java)"),
    U("tps.connection.timeout", 1, 3600, 300, "idle read timeout in seconds (tps-protocol §1.7)"),
    U("tps.connection.headTimeout", 100, 600000, 10000,
      "ms to receive a request head and the Begin Op (ours)"),
    S("tps.instanceId", "tps1", "cluster-unique instance id, [a-z0-9-] (token DB names)"),
    /* logs */
    P("log.file", NULL, "log file; unset = stderr (ours)"),
    {.name = "log.level",
     .type = CFG_ENUM,
     .words = log_levels,
     .defstr = "info",
     .doc = "error | warn | notice | info | debug"},
    {.name = "log.audit.file",
     .type = CFG_PATH,
     .required = true,
     .doc = "audit log, one line per operation and state change (ours)"},
    B("log.audit.sync", 1, "fdatasync the audit log after each line"),
    /* phone home (tps-protocol §5.2) */
    S("tps.phoneHome.issuerName", "tpsgw", "IssuerName of the phone-home document"),
    {.name = "tps.phoneHome.operation",
     .type = CFG_STR,
     .required = true,
     .doc = "Operation URL in the phone-home document: the load balancer, with explicit port"},
    S("tps.phoneHome.ui", "", "UI element of the phone-home document"),
    S("tps.phoneHome.enrolledTokenBrowserURL", "", "EnrolledTokenBrowserURL element"),
    S("tps.phoneHome.enrolledTokenURL", "", "EnrolledTokenURL element"),
    S("tps.phoneHome.tokenType", "userKey", "TokenType element"),
    /* card and channel (tps-protocol §6.3, card spec §2) */
    S("applet.aid.cardmgr_instance", "A0000000030000,A000000003000000,A0000001510000",
      "card manager AIDs, comma-separated hex (Dogtag)"),
    S("applet.aid.netkey_instance", "627601FF000000", "CoolKey applet instance AID (Dogtag)"),
    S("applet.aid.netkey_file", "627601FF0000", "CoolKey package AID (Dogtag)"),
    U("channel.defKeyVersion", 0, 255, 0, "INITIALIZE UPDATE key version (Dogtag)"),
    U("channel.defKeyIndex", 0, 255, 0, "INITIALIZE UPDATE key index (Dogtag)"),
    U("channel.blocksize", 32, 248, 224, "applet LOAD block size incl. overhead (Dogtag)"),
    U("channel.instanceSize", 1, 65535, 18000, "applet instance size (Dogtag)"),
    U("channel.appletMemorySize", 1, 65535, 5000, "applet object memory (Dogtag)"),
    B("channel.encryption", 1, "EXTERNAL AUTHENTICATE level 03 (C-MAC + C-DEC) vs 01 (Dogtag)"),
    B("channel.scp01.no.le.byte", 1, "no Le after a C-MAC on SCP01 (Dogtag)"),
    S("general.applet_ext", "ijc", "extension of applet load files (Dogtag)"),
    /* TKS connectors (backends §10.1) */
    {.name = "conn.tks1.hostport",
     .type = CFG_HOSTLIST,
     .required = true,
     .doc = "TKS clones of the connector every token type uses by default (Dogtag)"},
    {.name = "conn.tks1.tksSharedSymKey_file",
     .type = CFG_SECRET_FILE,
     .required = true,
     .doc = "file holding the TPS<->TKS shared secret in hex, mode 0600 (ours)"},
    H("conn.tks*.hostport", "TKS clones, in order (Dogtag)"),
    S("conn.tks*.keySet", "defKeySet", "TKS key set (Dogtag)"),
    S("conn.tks*.tksSharedSymKeyName", "sharedSecret", "shared secret name (Dogtag; label only)"),
    SF("conn.tks*.tksSharedSymKey_file", "file holding the shared secret in hex (ours)"),
    {.name = "conn.tks*.tksSharedSymKeyType",
     .type = CFG_ENUM,
     .words = key_types,
     .defstr = "AES",
     .doc = "AES (current Dogtag) or DES3 (legacy) shared secret (ours)"},
    B("conn.tks*.SSLOn", 1, "HTTPS to the TKS (Dogtag)"),
    B("conn.tks*.serverKeygen", 0, "ask for server-side keygen material (Dogtag)"),
    B("conn.tks*.generateHostChallenge", 1, "host challenge generated by tpsgw (Dogtag)"),
    B("conn.tks*.keepAlive", 0,
      "reuse connections between TKS calls; false = a fresh TLS "
      "connection per call (Dogtag; stock TKS value false)"),
    U("conn.tks*.timeout", 1, 600, 15, "deadline of one TKS call over all clones, s (Dogtag)"),
    U("conn.tks*.retryConnect", 0, 32, 0, "clones tried per call; 0 = all (Dogtag)"),
    U("conn.tks*.connectTimeout", 100, 600000, 5000, "connect timeout per clone, ms (ours)"),
    U("conn.tks*.responseTimeout", 0, 600000, 5000,
      "answer timeout per clone, ms: a hung clone costs this much, then the next clone is asked "
      "(TKS calls are idempotent); 0 = wait until the call's deadline (ours)"),
    S("conn.tks*.clientNickname", "", "client certificate label (Dogtag; label only)"),
    P("conn.tks*.clientCertFile", NULL, "client certificate PEM for the TKS (ours)"),
    SF("conn.tks*.clientKeyFile", "its private key PEM, mode 0600 (ours)"),
    P("conn.tks*.caBundle", NULL, "CA bundle to verify the TKS clones (ours)"),
    S("conn.tks*.servlet.computeSessionKey", "/tks/agent/tks/computeSessionKey", "(Dogtag)"),
    S("conn.tks*.servlet.encryptData", "/tks/agent/tks/encryptData", "(Dogtag)"),
    S("conn.tks*.servlet.createKeySetData", "/tks/agent/tks/createKeySetData", "(Dogtag)"),
    S("conn.tks*.servlet.computeRandomData", "/tks/agent/tks/computeRandomData", "(Dogtag)"),
    /* token type resolution (tps-protocol §6.2, Java keys) */
    S("op.*.mappingResolver", "", "resolver instance of an operation; none = tokenType ext."),
    S("mappingResolver.list", "", "resolver instances (Java)"),
    S("mappingResolver.*.class_id", "filterMappingResolverImpl", "resolver class (Java)"),
    S("mappingResolver.*.mapping.order", "", "entry ids in order (Java)"),
    S("mappingResolver.*.mapping.*.filter.tokenType", "", "filter: tokenType extension"),
    S("mappingResolver.*.mapping.*.filter.tokenATR", "", "filter: tokenATR extension"),
    S("mappingResolver.*.mapping.*.filter.keySet", "", "filter: keySet extension"),
    S("mappingResolver.*.mapping.*.filter.tokenCUID.start", "", "filter: lowest CUID"),
    S("mappingResolver.*.mapping.*.filter.tokenCUID.end", "", "filter: highest CUID"),
    S("mappingResolver.*.mapping.*.filter.appletMajorVersion", "", "filter: protocol major"),
    S("mappingResolver.*.mapping.*.filter.appletMinorVersion", "", "filter: protocol minor"),
    S("mappingResolver.*.mapping.*.target.tokenType", "", "token type of the entry"),
    {.name = "config.Profiles.*.state",
     .type = CFG_ENUM,
     .words = profile_states,
     .defstr = "Enabled",
     .doc = "Enabled | Disabled: a disabled token type ends with 26 (Dogtag)"},
    /* per-operation, per-type policy (tps-protocol §6.3) */
    B("op.*.allowUnknownToken", 1, "accept tokens the DB does not know (Dogtag)"),
    B("op.*.*.auth.enable", 1, "authenticate the user (Dogtag)"),
    B("op.*.*.officerOnly", 0,
      "only for a security officer: HTTPS, client certificate of a tps.officerGroup member (ours)"),
    S("tps.officerGroup", "TPS Officers",
      "cn of the officers group under ou=Groups, for op.*.*.officerOnly (ours)"),
    S("op.*.*.auth.id", "ldap1", "authenticator id (Dogtag)"),
    B("op.*.*.loginRequest.enable", 1, "accepted for compatibility (C++ Dogtag)"),
    S("op.*.*.tks.conn", "tks1", "TKS connector of the type (Dogtag)"),
    B("op.*.*.issuerinfo.enable", 0, "write the phone-home URL (Dogtag)"),
    S("op.*.*.issuerinfo.value", "", "phone-home URL, $cuid$ $msn$ $userid$ $profileId$ (Dogtag)"),
    B("op.*.*.update.applet.enable", 1, "load the applet when its version differs (Dogtag)"),
    S("op.*.*.update.applet.requiredVersion", "", "applet version, e.g. 1.4.58768072 (Dogtag)"),
    S("op.*.*.update.applet.directory", "/usr/share/tpsgw/applets", "applet files (Dogtag)"),
    S("op.*.*.update.applet.encryption", "true", "accepted for compatibility (Dogtag)"),
    B("op.*.*.update.applet.emptyToken.enable", 1, "allow cards without applet (Dogtag)"),
    B("op.*.*.update.symmetricKeys.enable", 0, "check the card key version (Dogtag)"),
    U("op.*.*.update.symmetricKeys.requiredVersion", 0, 255, 1, "required key version (Dogtag)"),
    B("op.*.*.lifeCycle.reset", 1, "format leaves the applet in state 07 (ours)"),
    B("op.format.*.revokeCert", 0, "revoke the token's active certificates at format (Dogtag)"),
    U("op.format.*.revokeCert.reason", 0, 6, 0, "revocation reason at format, 0..6 (Dogtag)"),
    S("op.format.*.ca.conn", "ca1", "CA connector of the revocations at format (Dogtag)"),
    S("op.*.*.cardmgr_instance", "", "accepted for compatibility (Dogtag)"),
    /* user authentication (tokendb §1.8, legacy names) */
    S("auth.instance.*.type", "LDAP_Authentication", "authenticator plugin (Dogtag)"),
    S("auth.instance.*.authId", "", "authenticator id used by op.*.*.auth.id (Dogtag)"),
    H("auth.instance.*.hostport", "LDAP servers of the auth DB (Dogtag)"),
    B("auth.instance.*.SSLOn", 0, "ldaps (Dogtag)"),
    B("auth.instance.*.startTLS", 0, "StartTLS (ours)"),
    P("auth.instance.*.caFile", NULL, "CA bundle for LDAP TLS (ours)"),
    S("auth.instance.*.baseDN", "", "user search base (Dogtag)"),
    S("auth.instance.*.bindDN", "", "service bind DN; empty = anonymous (Dogtag)"),
    SF("auth.instance.*.bindPassword_file", "service bind password file (ours)"),
    S("auth.instance.*.attributes", "mail,cn,uid", "user attributes exported (Dogtag)"),
    U("auth.instance.*.retries", 0, 10, 1, "login re-prompts after a failure (Dogtag)"),
    U("auth.instance.*.retryConnect", 0, 10, 3, "accepted for compatibility (Dogtag)"),
    U("auth.instance.*.timeout", 100, 600000, 5000, "LDAP operation timeout, ms (ours)"),
    U("auth.retries", 0, 10, 1, "login re-prompts when the instance gives none (ours)"),
    /* token DB (tokendb §1, legacy/Java names) */
    H("tokendb.hostport", "LDAP servers of the token DB, the write target first (Dogtag)"),
    B("tokendb.ssl", 0, "ldaps (Dogtag)"),
    B("tokendb.startTLS", 0, "StartTLS (ours)"),
    P("tokendb.caFile", NULL, "CA bundle for LDAP TLS (ours)"),
    S("tokendb.bindDN", "", "bind DN (Dogtag)"),
    SF("tokendb.bindPassword_file", "bind password file, mode 0600 (ours)"),
    S("tokendb.baseDN", "", "ou=Tokens,<root> (Dogtag)"),
    S("tokendb.certBaseDN", "", "ou=Certificates,<root> (Dogtag)"),
    S("tokendb.activityBaseDN", "", "ou=Activities,<root> (Dogtag)"),
    S("tokendb.allowedTransitions", "", "agent transitions; empty = default (Dogtag)"),
    S("tps.operations.allowedTransitions", "", "operation transitions (Java)"),
    S("tokendb.defaultPolicy", "", "policy of new records (Dogtag)"),
    U("tokendb.leaseSeconds", 0, 86400, 600, "operation lease length (ours)"),
    U("tokendb.networkTimeout", 100, 600000, 3000, "LDAP connect timeout, ms (ours)"),
    U("tokendb.opTimeout", 100, 600000, 5000, "LDAP operation timeout, ms (ours)"),
    B("tokenservice.status.unformatted.clearUserID", 1, "(Java)"),
    B("tokenservice.status.unformatted.clearType", 1, "(Java)"),
    B("tokenservice.status.unformatted.clearAppletID", 1, "(Java)"),
    B("tokenservice.status.unformatted.clearKeyInfo", 1, "(Java)"),
    B("tokenservice.status.unformatted.clearPolicy", 1, "(Java)"),
    {0},
};

/* Every module of the daemon declares its own keys; the file is validated against all. */
static const struct cmn_cfg_key *const gw_tables[] = {
    gw_keys,         tps_ca_cfg_keys, tps_kra_cfg_keys, tps_admin_cfg_keys, tps_enroll_cfg_keys,
    tps_lb_cfg_keys, NULL,
};

struct tps_config {
    struct cmn_cfg *cfg;
    struct tps_settings st;
    char path[1024];
};

static const char *
str_or_empty(const struct cmn_cfg *c, const char *key)
{
    const char *v = cmn_cfg_str(c, key);
    return v ? v : "";
}

/* Cross-key rules that a per-key table cannot express. */
static void
cross_checks(struct tps_config *c, struct cmn_buf *errs)
{
    const struct tps_settings *st = &c->st;
    char where[300];

    bool https = cmn_cfg_isset(c->cfg, "service.securePort");

    if (!cmn_cfg_isset(c->cfg, "service.unsecurePort") && !https)
        (void)cmn_buf_printf(errs, "%s: set service.unsecurePort or service.securePort\n", c->path);
    if (https && (st->tls_cert_file[0] == '\0' || st->tls_key_file[0] == '\0'))
        (void)cmn_buf_printf(errs,
                             "%s: key 'service.securePort': needs service.sslCertFile and "
                             "service.sslKeyFile\n",
                             cmn_cfg_where(c->cfg, "service.securePort", where, sizeof(where)));
    (void)tps_enroll_cfg_check(c->cfg, errs); /* key algorithms of the token types */
    if (st->http_port != 0 && st->http_port == st->https_port)
        (void)cmn_buf_printf(errs,
                             "%s: key 'service.securePort': same port as "
                             "service.unsecurePort\n",
                             cmn_cfg_where(c->cfg, "service.securePort", where, sizeof(where)));
}

enum tps_rc
tps_config_load(const char *path, struct tps_config **out, struct cmn_buf *errs)
{
    struct tps_config *c;
    enum cmn_rc crc;
    size_t before = errs ? errs->len : 0;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return TPS_ENOMEM;
    snprintf(c->path, sizeof(c->path), "%s", path);
    crc = cmn_cfg_load(path, gw_tables, &c->cfg, errs);
    if (crc != CMN_OK) {
        free(c);
        return crc == CMN_ENOMEM ? TPS_ENOMEM : TPS_ECONFIG;
    }
    c->st.bind_address = str_or_empty(c->cfg, "service.bindAddress");
    c->st.http_port = (unsigned)cmn_cfg_uint(c->cfg, "service.unsecurePort");
    c->st.https_port = (unsigned)cmn_cfg_uint(c->cfg, "service.securePort");
    c->st.tls_cert_file = str_or_empty(c->cfg, "service.sslCertFile");
    c->st.tls_key_file = str_or_empty(c->cfg, "service.sslKeyFile");
    c->st.max_sessions = (unsigned)cmn_cfg_uint(c->cfg, "tps.maxSessions");
    c->st.queue_size = (unsigned)cmn_cfg_uint(c->cfg, "tps.acceptQueue");
    c->st.max_message = (unsigned)cmn_cfg_uint(c->cfg, "tps.connection.maxMessageSize");
    c->st.read_timeout_ms = (unsigned)cmn_cfg_uint(c->cfg, "tps.connection.timeout") * 1000u;
    c->st.head_timeout_ms = (unsigned)cmn_cfg_uint(c->cfg, "tps.connection.headTimeout");
    c->st.log_file = str_or_empty(c->cfg, "log.file");
    c->st.log_level = str_or_empty(c->cfg, "log.level");
    c->st.audit_file = str_or_empty(c->cfg, "log.audit.file");
    cross_checks(c, errs);
    if (errs != NULL && errs->len > before) {
        tps_config_free(c);
        return TPS_ECONFIG;
    }
    *out = c;
    return TPS_OK;
}

void
tps_config_free(struct tps_config *c)
{
    if (c == NULL)
        return;
    cmn_cfg_unref(c->cfg);
    free(c);
}

const struct tps_settings *
tps_config_settings(const struct tps_config *c)
{
    return &c->st;
}

const char *
tps_config_path(const struct tps_config *c)
{
    return c->path;
}

const struct cmn_cfg *
tps_config_cfg(const struct tps_config *c)
{
    return c->cfg;
}

const char *
tps_cfg_str(const struct tps_config *c, const char *key)
{
    return str_or_empty(c->cfg, key);
}

bool
tps_cfg_bool(const struct tps_config *c, const char *key)
{
    return cmn_cfg_bool(c->cfg, key);
}

unsigned long
tps_cfg_uint(const struct tps_config *c, const char *key)
{
    return (unsigned long)cmn_cfg_uint(c->cfg, key);
}

bool
tps_cfg_isset(const struct tps_config *c, const char *key)
{
    return cmn_cfg_isset(c->cfg, key);
}

static const char *
op_key(const char *op, const char *type, const char *leaf, char *buf, size_t cap)
{
    snprintf(buf, cap, "op.%s.%s.%s", op, type[0] ? type : "_", leaf);
    return buf;
}

const char *
tps_cfg_op_str(const struct tps_config *c, const char *op, const char *type, const char *leaf)
{
    char k[CMN_CFG_MAX_KEY];
    return tps_cfg_str(c, op_key(op, type, leaf, k, sizeof(k)));
}

bool
tps_cfg_op_bool(const struct tps_config *c, const char *op, const char *type, const char *leaf)
{
    char k[CMN_CFG_MAX_KEY];
    return tps_cfg_bool(c, op_key(op, type, leaf, k, sizeof(k)));
}

unsigned long
tps_cfg_op_uint(const struct tps_config *c, const char *op, const char *type, const char *leaf)
{
    char k[CMN_CFG_MAX_KEY];
    return tps_cfg_uint(c, op_key(op, type, leaf, k, sizeof(k)));
}

void
tps_config_write_doc(FILE *out, bool all)
{
    static const char *const names[] = {"session, channel, TKS, token DB, authentication",
                                        "CA connectors", "KRA connectors", "admin interface",
                                        "enrollment and PIN reset",
                                        "load balancer (docs/ha.md)"};
    struct cmn_buf b;

    cmn_buf_init(&b, 1 << 20);
    for (size_t i = 0; gw_tables[i] != NULL && (all || i == 0); i++) {
        cmn_buf_reset(&b);
        if (all)
            fprintf(out, "%s# %s\n", i ? "\n" : "", names[i]);
        if (cmn_cfg_doc(gw_tables[i], false, &b) == CMN_OK)
            fwrite(b.data, 1, b.len, out);
    }
    cmn_buf_cleanup(&b);
}
