/* gateway/instances.h - the configuration-digest check between tpsgw instances (tokendb-ha §6
 * "Identical configuration", §3.5 agent word `drain` on a config-digest mismatch): a SHA-256 of
 * the effective cluster-wide configuration, published in cn=<instanceId>,ou=Instances,<root>,
 * and the rule that tells an instance whose configuration is older than a live peer's to drain.
 * docs/ha.md "Identical configuration" explains the design. */
#ifndef TPS_INSTANCES_H
#define TPS_INSTANCES_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "gateway/gwerr.h"
#include "gateway/tokendb.h"

struct cmn_cfg;
struct tps_config;

#define TPS_INST_DIGEST_HEX 64 /* lowercase hex characters of a digest */

/* Keys that may (or must) differ between instances and are left out of the digest. A name
 * ending in '.' is a prefix. The same table is in docs/ha.md. */
struct tps_inst_local_key {
    const char *name;
    const char *why;
};
extern const struct tps_inst_local_key tps_inst_local_keys[];

/* SHA-256 over the effective cluster-wide configuration of c: one line `key=value` per key,
 * sorted, after a version line. Every exact key of c's tables is digested with its effective
 * value (the file's, else the declared default, so writing a default explicitly changes
 * nothing; a key with neither is left out); a key that matches a pattern (`op.*.*...`) is
 * digested when present with a value other than the pattern's default. Values are canonical
 * (numbers in decimal, booleans true/false, host lists re-spelt; `conn.<id>.hostport` is a
 * set, since each instance may order its clones differently). Left out: the keys of
 * tps_inst_local_keys and the values of secret keys (the digest is published; a secret must
 * not be guessable from it). [out] hex: 64 characters and a NUL. TPS_OK, TPS_ENOMEM.
 * Thread-safe. */
enum tps_rc tps_inst_config_digest(const struct cmn_cfg *c, char hex[TPS_INST_DIGEST_HEX + 1]);

/* What an instance should do about the configurations of its peers. */
enum tps_inst_verdict {
    TPS_INST_MATCH = 0, /* every live peer has our digest (or none is live) */
    TPS_INST_DRAIN = 1, /* a live peer's configuration is newer than ours: drain */
    TPS_INST_SERVE = 2, /* live peers differ, but ours is the newest: keep serving */
};

/* The decision rule, a pure function. A peer (an entry of all[] whose id is not me->id) is
 * live when now - seen <= 3 * refresh_s (a seen in the future counts as live). A live peer
 * with another digest is newer when its since is later than ours, or equal and its id is
 * lexically greater than ours (so of two instances started in the same second, the smaller
 * id drains). DRAIN when some live peer is newer, else SERVE when some live peer differs,
 * else MATCH. [out] *peer (may be NULL): the index in all[] of the newest differing live peer
 * (DRAIN, SERVE), unchanged for MATCH. */
enum tps_inst_verdict tps_inst_decide(const struct tps_instance_rec *me,
                                      const struct tps_instance_rec *all, size_t n, time_t now,
                                      unsigned refresh_s, size_t *peer);

/* The `since` an instance publishes with `digest` on its first round: the earliest since of an
 * entry with the same digest that is ours (a restart with an unchanged configuration) or a
 * live peer's (the configuration is already in service), else start (our start time). */
time_t tps_inst_since(const struct tps_instance_rec *all, size_t n, const char *me_id,
                      const char *digest, time_t start, time_t now, unsigned refresh_s);

/* The periodic publisher and its last verdict. Opaque. */
struct tps_inst;

/* With lb.instanceRefresh > 0 and a token DB: computes the digest and prepares an LDAP handle
 * whose connect and operation timeouts are timeout_ms (a round never holds the health thread
 * longer than a probe). *out is NULL when the feature is off. Main thread. TPS_ECONFIG with err,
 * TPS_ENOMEM. cfg must outlive *out. */
enum tps_rc tps_inst_new(const struct tps_config *cfg, unsigned timeout_ms, struct tps_inst **out,
                         char *err, size_t errlen);
void tps_inst_free(struct tps_inst *in);

/* One round when lb.instanceRefresh seconds have passed since the last (the first call always
 * runs): read the instance entries, publish ours (digest, since, seen = now), decide, and log
 * `lb.config_mismatch` / `lb.config_match` when the verdict or the peer changes. An LDAP error
 * keeps the last verdict (logged once as `lb.instances_unreachable`). Health thread only. */
void tps_inst_tick(struct tps_inst *in);

/* True while the last verdict is TPS_INST_DRAIN; why (may be NULL) names the peer and both
 * digests. Thread-safe. */
bool tps_inst_mismatch(struct tps_inst *in, char *why, size_t whylen);

#endif
