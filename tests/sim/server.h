/* tests/sim/server.h - pki-sim's HTTP(S) server: TLS with client-certificate authentication,
 * an acceptor and a bounded worker pool, fault injection, the request log and the admin
 * endpoint (/sim/fault, /sim/stats). */
#ifndef SIM_SERVER_H
#define SIM_SERVER_H

#include "common/buf.h"
#include "common/cfg.h"
#include "common/rc.h"
#include "tests/sim/sim.h"

struct sim_srv;

/* The role's handler: one request, one response. Called from worker threads. */
typedef void sim_handler_fn(void *ctx, const struct sim_user *u, const char *path,
                            const struct sim_form *f, struct sim_resp *r);

/* Builds the server from cfg (TLS context, agents, fault, request log, and with `bind` the
 * listeners). Nothing runs yet. errs gets every problem. [out] *out. CMN_ECONFIG, CMN_EIO. */
enum cmn_rc sim_srv_new(const struct cmn_cfg *cfg, enum sim_role role, sim_handler_fn *fn,
                        void *ctx, bool bind, struct cmn_buf *errs, struct sim_srv **out);
/* Starts the acceptor, the admin thread and the workers. */
enum cmn_rc sim_srv_start(struct sim_srv *s);
/* Stops accepting, wakes hanging workers and waits for the threads (bounded by their I/O
 * deadlines). Then frees. NULL is a no-op. */
void sim_srv_stop_free(struct sim_srv *s);

#endif
