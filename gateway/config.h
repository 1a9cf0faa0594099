/* gateway/config.h - tpsgw's configuration: the key table (Dogtag CS.cfg names where they
 * exist), validation at start with errors naming file, line and key, and an immutable
 * snapshot with typed lookups that every thread may read without a lock (STYLE §5, §7). */
#ifndef TPS_CONFIG_H
#define TPS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/buf.h"
#include "gateway/gwerr.h"

/* Values read on every connection, parsed once at load. */
struct tps_settings {
    const char *bind_address;  /* service.bindAddress */
    unsigned http_port;        /* service.unsecurePort, 0 = no plain listener */
    unsigned https_port;       /* service.securePort, 0 = no TLS listener */
    const char *tls_cert_file; /* service.sslCertFile */
    const char *tls_key_file;  /* service.sslKeyFile */
    unsigned max_sessions;     /* tps.maxSessions: worker threads = live sessions */
    unsigned queue_size;       /* tps.acceptQueue: accepted connections waiting */
    unsigned max_message;      /* tps.connection.maxMessageSize */
    unsigned read_timeout_ms;  /* tps.connection.timeout (s) * 1000 */
    unsigned head_timeout_ms;  /* tps.connection.headTimeout (ms) */
    const char *log_file;      /* log.file ("" = stderr) */
    const char *log_level;     /* log.level */
    const char *audit_file;    /* log.audit.file */
};

/* The snapshot. Opaque; created by tps_config_load(), freed with tps_config_free(). */
struct tps_config;

/* Reads and validates `path`: every line must be a known key (or match a key pattern) with a
 * value of its type; cross-key rules are checked too. Every error is appended to errs as
 * one line "<file>:<line>: key '<k>' ...". [out] *out (NULL on failure).
 * TPS_OK, TPS_ECONFIG (at least one error), TPS_ENOMEM. */
enum tps_rc tps_config_load(const char *path, struct tps_config **out, struct cmn_buf *errs);
void tps_config_free(struct tps_config *c);

const struct tps_settings *tps_config_settings(const struct tps_config *c);
/* Path the snapshot was loaded from (borrowed). */
const char *tps_config_path(const struct tps_config *c);

/* Typed lookups; the key's table default when it is not set, "" / false / 0 when the table
 * has none. Strings are borrowed from the snapshot. Thread-safe. */
const char *tps_cfg_str(const struct tps_config *c, const char *key);
bool tps_cfg_bool(const struct tps_config *c, const char *key);
unsigned long tps_cfg_uint(const struct tps_config *c, const char *key);
/* True when the key is set in the file (not only defaulted). */
bool tps_cfg_isset(const struct tps_config *c, const char *key);

/* Per-operation, per-token-type keys "op.<op>.<type>.<leaf>" (tps-protocol §6.3). */
const char *tps_cfg_op_str(const struct tps_config *c, const char *op, const char *type,
                           const char *leaf);
bool tps_cfg_op_bool(const struct tps_config *c, const char *op, const char *type,
                     const char *leaf);
unsigned long tps_cfg_op_uint(const struct tps_config *c, const char *op, const char *type,
                              const char *leaf);

/* The underlying common/cfg snapshot (borrowed). */
struct cmn_cfg;
const struct cmn_cfg *tps_config_cfg(const struct tps_config *c);

/* Writes the key table as text: this module's keys (docs/tpsgw.md carries them), or with
 * all = true every module's table (tpsgw --keys). */
void tps_config_write_doc(FILE *out, bool all);

#endif
