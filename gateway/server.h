/* gateway/server.h - tpsgw's listeners and worker pool: HTTP and HTTPS listeners, one acceptor
 * thread feeding N worker threads through a bounded queue (503 when full), request routing
 * (TPS protocol, phone home, health), and the per-worker resources (STYLE §5). */
#ifndef TPS_SERVER_H
#define TPS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "gateway/gwerr.h"
#include "gateway/session.h"

struct cmn_http_conn;
struct tps_config;
struct tps_server;

/* Builds everything the workers share from the configuration: the TKS connector, the token
 * DB and authenticator configurations, the SSL_CTX; binds the listeners (port 0 binds an
 * ephemeral port, see tps_server_port()). Call from the main thread before any other thread.
 * [out] *out. TPS_ECONFIG / TPS_EIO with a message in err. cfg is borrowed for the server's
 * life. */
/* Builds and frees the admin API stack of cfg (tps.admin.*, its CA connector, its token DB
 * configuration), as tpsgw would at start: for `tpsgw -t`. TPS_OK when disabled. */
enum tps_rc tps_server_check_admin(const struct tps_config *cfg, char *err, size_t errlen);
enum tps_rc tps_server_new(const struct tps_config *cfg, struct tps_server **out, char *err,
                           size_t errlen);
/* Starts the acceptor and the workers. */
enum tps_rc tps_server_start(struct tps_server *srv, char *err, size_t errlen);
/* Stops accepting, lets running sessions finish (their deadlines bound them), joins every
 * thread. Safe to call once from the thread that handles signals. */
void tps_server_stop(struct tps_server *srv);
void tps_server_free(struct tps_server *srv);
/* The bound port of the plain (tls false) or TLS listener, 0 when absent. */
unsigned tps_server_port(const struct tps_server *srv, bool tls);
/* Live sessions right now. */
unsigned tps_server_live(const struct tps_server *srv);
/* Drain step (docs/ha.md): stops accepting and closes the listeners; queued and running
 * connections are still served. Call from the signal thread; tps_server_stop() follows. */
void tps_server_close_listeners(struct tps_server *srv);
/* Connections queued or being served. Thread-safe. */
unsigned tps_server_pending(struct tps_server *srv);
/* The load-balancer side of the server (gateway/lb.h): readiness, agent, drain, metrics.
 * Borrowed for the server's life. */
struct tps_lb;
struct tps_lb *tps_server_lb(const struct tps_server *srv);

/* Serves one accepted connection whose transport is ready (TLS handshake done): reads the
 * request head within the head timeout and routes it (POST /tps/tps and /nk_service: a TPS
 * session; GET /tps/phoneHome; GET /health; 405 / 400 / 404 otherwise). env is the worker's.
 * ready: what /health answers on this listener (200 "ok" / 503: the instance serves and is not
 * draining; dependency readiness is on lb.statusPort). Returns the outcome for logs. */
enum tps_rc tps_conn_serve(const struct tps_env *env, struct cmn_http_conn *c,
                           const char *client_ip, bool ready);

/* Appends the phone-home document (tps-protocol §5.2) built from tps.phoneHome.* keys, XML-
 * escaped, with declaration. */
enum tps_rc tps_phonehome_xml(const struct tps_config *cfg, struct cmn_buf *out);

#endif
