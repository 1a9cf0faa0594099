/* gateway/backend.h - what the CA and KRA connectors share: the failover options read from
 * their conn.<id>.* keys, logged under their own event name. */
#ifndef TPS_BACKEND_H
#define TPS_BACKEND_H

#include <stddef.h>

#include <libfailover/failover.h>

struct cmn_cfg;

/* Fills o (fo_opts_init first) from conn.<id>.SSLOn, connectTimeout, retryConnect,
 * clientCertFile, clientKeyFile and caBundle, with deadline_ms and body_max; libfailover's log
 * lines go to the gateway log as `event` (a string that outlives the list, e.g.
 * "ca.failover"). o->name is left to the caller (it must outlive the list too). */
void tps_backend_fo_opts(const struct cmn_cfg *cfg, const char *id, const char *event,
                         unsigned deadline_ms, size_t body_max, struct fo_opts *o);

#endif
