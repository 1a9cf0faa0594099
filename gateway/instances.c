/* gateway/instances.c - configuration digest of the effective cluster-wide configuration, its
 * instance entry in the token DB, and the drain-on-older-configuration rule (tokendb-ha §6). */
#include "gateway/instances.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/log.h"
#include "gateway/config.h"
#include "gateway/hooks.h"

const struct tps_inst_local_key tps_inst_local_keys[] = {
    {"tps.instanceId", "names the instance"},
    {"service.", "this host's listeners: bind address, ports, TLS files, PROXY"},
    {"log.", "this host's log and audit files and log level"},
    {"lb.agentPort", "this host's agent-check port"},
    {"lb.statusPort", "this host's status port"},
    {"lb.agentAddress", "this host's address of the agent and status ports"},
    {"tps.maxSessions", "sizing of this host (the agent weight follows it)"},
    {"tps.acceptQueue", "sizing of this host"},
    {NULL, NULL},
};

#define DIGEST_VERSION "tpsgw-config-digest 1\n" /* first line: a new format never matches */
#define CANON_MAX (CMN_CFG_MAX_HOSTS * (CMN_CFG_MAX_HOST + 10) + CMN_CFG_MAX_LINE)

/* ---- digest ---- */

static bool
is_local(const char *key)
{
    for (const struct tps_inst_local_key *l = tps_inst_local_keys; l->name != NULL; l++) {
        size_t n = strlen(l->name);
        if (l->name[n - 1] == '.' ? strncmp(key, l->name, n) == 0 : strcmp(key, l->name) == 0)
            return true;
    }
    return false;
}

/* conn.<id>.hostport: each instance may order a connector's clones its own way (docs/ha.md
 * §1), so the list is compared as a set. */
static bool
is_unordered(const char *key)
{
    static const char sfx[] = ".hostport";
    size_t kl = strlen(key), sl = sizeof(sfx) - 1;

    if (strncmp(key, "conn.", 5) != 0 || kl <= 5 + sl || strcmp(key + kl - sl, sfx) != 0)
        return false;
    return memchr(key + 5, '.', kl - 5 - sl) == NULL;
}

static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A host list spelt one way: "host:port" or "[v6]:port", blank-separated; sorted when the
 * order does not matter. Unparsable text (checked at load, so never) is kept as it is. */
static void
canon_hostlist(const char *v, bool sorted, char *out, size_t cap)
{
    struct cmn_cfg_hostlist hl;
    char e[CMN_CFG_MAX_HOSTS][CMN_CFG_MAX_HOST + 10];
    const char *p[CMN_CFG_MAX_HOSTS];
    size_t used = 0;

    if (cmn_cfg_hostlist_parse(v, &hl, NULL, 0) != CMN_OK) {
        snprintf(out, cap, "%s", v);
        return;
    }
    for (size_t i = 0; i < hl.n; i++) {
        snprintf(e[i], sizeof(e[i]), hl.h[i].ipv6 ? "[%s]:%u" : "%s:%u", hl.h[i].host,
                 (unsigned)hl.h[i].port);
        p[i] = e[i];
    }
    if (sorted)
        qsort(p, hl.n, sizeof(p[0]), str_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < hl.n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? " " : "", p[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

/* The declared default of d as canonical text; false when d has none. */
static bool
canon_default(const char *key, const struct cmn_cfg_key *d, char *out, size_t cap)
{
    switch (d->type) {
    case CFG_UINT:
        snprintf(out, cap, "%llu", d->def);
        return true;
    case CFG_BOOL: /* as cmn_cfg_bool reads it */
        snprintf(out, cap, "%s",
                 (d->defstr != NULL ? strcmp(d->defstr, "true") == 0 : d->def != 0) ? "true"
                                                                                      : "false");
        return true;
    case CFG_HOSTLIST:
        if (d->defstr == NULL)
            return false;
        canon_hostlist(d->defstr, is_unordered(key), out, cap);
        return true;
    default:
        if (d->defstr == NULL)
            return false;
        snprintf(out, cap, "%s", d->defstr);
        return true;
    }
}

/* The value written in the file, as canonical text. */
static void
canon_present(const struct cmn_cfg *c, const char *key, const struct cmn_cfg_key *d, char *out,
              size_t cap)
{
    switch (d->type) {
    case CFG_UINT:
        snprintf(out, cap, "%llu", cmn_cfg_uint(c, key));
        break;
    case CFG_BOOL:
        snprintf(out, cap, "%s", cmn_cfg_bool(c, key) ? "true" : "false");
        break;
    case CFG_HOSTLIST:
        canon_hostlist(cmn_cfg_str(c, key), is_unordered(key), out, cap);
        break;
    default:
        snprintf(out, cap, "%s", cmn_cfg_str(c, key));
        break;
    }
}

struct lines {
    const struct cmn_cfg *c;
    char **v;
    size_t n, cap;
    bool oom;
    char val[CANON_MAX];
};

static void
lines_add(struct lines *l, const char *key, const char *val)
{
    size_t len = strlen(key) + 1 + strlen(val) + 1;
    char *s;

    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    s = malloc(len);
    if (s == NULL) {
        l->oom = true;
        return;
    }
    snprintf(s, len, "%s=%s", key, val);
    l->v[l->n++] = s;
}

/* Every exact key of the tables, present or defaulted. */
static void
add_exact_keys(struct lines *l)
{
    const struct cmn_cfg_key *const *t = cmn_cfg_tables(l->c);

    for (size_t i = 0; t != NULL && t[i] != NULL; i++) {
        for (const struct cmn_cfg_key *d = t[i]; d->name != NULL; d++) {
            /* a name declared twice counts once: the declaration lookups use */
            if (strchr(d->name, '*') != NULL || d->secret || is_local(d->name) ||
                cmn_cfg_decl(l->c, d->name) != d)
                continue;
            if (cmn_cfg_isset(l->c, d->name))
                canon_present(l->c, d->name, d, l->val, sizeof(l->val));
            else if (!canon_default(d->name, d, l->val, sizeof(l->val)))
                continue;
            lines_add(l, d->name, l->val);
        }
    }
}

/* A present key that matched a pattern, unless it only repeats the pattern's default. */
static bool
add_pattern_key(void *arg, const char *key, const char *value)
{
    struct lines *l = arg;
    const struct cmn_cfg_key *d = cmn_cfg_decl(l->c, key);
    char def[CANON_MAX];

    (void)value;
    if (d == NULL || strchr(d->name, '*') == NULL || d->secret || is_local(key))
        return true;
    canon_present(l->c, key, d, l->val, sizeof(l->val));
    if (canon_default(key, d, def, sizeof(def)) && strcmp(def, l->val) == 0)
        return true;
    lines_add(l, key, l->val);
    return true;
}

static bool
sha256_lines(char *const *v, size_t n, uint8_t md[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned mdlen = 0;
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, DIGEST_VERSION, strlen(DIGEST_VERSION)) == 1;

    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, v[i], strlen(v[i])) == 1 && EVP_DigestUpdate(ctx, "\n", 1) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    return ok;
}

enum tps_rc
tps_inst_config_digest(const struct cmn_cfg *c, char hex[TPS_INST_DIGEST_HEX + 1])
{
    struct lines *l = calloc(1, sizeof(*l));
    uint8_t md[32];
    enum tps_rc rc = TPS_ENOMEM;

    hex[0] = '\0';
    if (l == NULL)
        return TPS_ENOMEM;
    l->c = c;
    add_exact_keys(l);
    cmn_cfg_each(c, "", add_pattern_key, l);
    if (!l->oom) {
        qsort(l->v, l->n, sizeof(l->v[0]), str_cmp);
        if (sha256_lines(l->v, l->n, md) &&
            cmn_hex_encode(md, sizeof(md), hex, TPS_INST_DIGEST_HEX + 1) == CMN_OK) {
            for (size_t i = 0; hex[i] != '\0'; i++)
                hex[i] = (char)tolower((unsigned char)hex[i]);
            rc = TPS_OK;
        }
    }
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l);
    return rc;
}

/* ---- decision ---- */

static bool
is_live(const struct tps_instance_rec *r, time_t now, unsigned refresh_s)
{
    return r->seen != 0 && (r->seen >= now || now - r->seen <= 3 * (time_t)refresh_s);
}

/* a's configuration is newer than b's: later since, or the same second and a greater id. */
static bool
newer(const struct tps_instance_rec *a, const struct tps_instance_rec *b)
{
    return a->since > b->since || (a->since == b->since && strcmp(a->id, b->id) > 0);
}

enum tps_inst_verdict
tps_inst_decide(const struct tps_instance_rec *me, const struct tps_instance_rec *all, size_t n,
                time_t now, unsigned refresh_s, size_t *peer)
{
    const struct tps_instance_rec *best = NULL;
    size_t bi = 0;

    for (size_t i = 0; i < n; i++) {
        const struct tps_instance_rec *r = &all[i];
        /* our own entry, a malformed one (nothing to compare), a dead peer, an equal digest */
        if (strcmp(r->id, me->id) == 0 || r->id[0] == '\0' || r->digest[0] == '\0' ||
            !is_live(r, now, refresh_s) || strcmp(r->digest, me->digest) == 0)
            continue;
        if (best == NULL || newer(r, best)) {
            best = r;
            bi = i;
        }
    }
    if (best == NULL)
        return TPS_INST_MATCH;
    if (peer != NULL)
        *peer = bi;
    return newer(best, me) ? TPS_INST_DRAIN : TPS_INST_SERVE;
}

time_t
tps_inst_since(const struct tps_instance_rec *all, size_t n, const char *me_id,
               const char *digest, time_t start, time_t now, unsigned refresh_s)
{
    time_t since = start;

    for (size_t i = 0; i < n; i++) {
        const struct tps_instance_rec *r = &all[i];
        if (r->since == 0 || strcmp(r->digest, digest) != 0)
            continue;
        if ((strcmp(r->id, me_id) == 0 || is_live(r, now, refresh_s)) && r->since < since)
            since = r->since;
    }
    return since;
}

/* ---- the periodic round ---- */

struct tps_inst {
    struct tps_tokendb_cfg *tcfg;
    struct tps_tokendb *db; /* the health thread's handle */
    char id[33];
    char digest[TPS_INST_DIGEST_HEX + 1];
    unsigned refresh_s;
    time_t start, since;
    bool published; /* since is fixed once the entry was written */
    bool ran;
    struct timespec last;
    bool ldap_failing;
    struct tps_instance_rec recs[TPS_INSTANCES_MAX];

    pthread_mutex_t lock; /* guards verdict, peer */
    enum tps_inst_verdict verdict;
    struct tps_instance_rec peer;
};

enum tps_rc
tps_inst_new(const struct tps_config *cfg, unsigned timeout_ms, struct tps_inst **out, char *err,
             size_t errlen)
{
    struct tps_tokendb_conf tc;
    struct tps_inst *in;
    char since[16];
    enum tps_tdb_rc r;

    *out = NULL;
    if (tps_cfg_uint(cfg, "lb.instanceRefresh") == 0 || !tps_cfg_isset(cfg, "tokendb.hostport"))
        return TPS_OK;
    in = calloc(1, sizeof(*in));
    if (in == NULL)
        return TPS_ENOMEM;
    pthread_mutex_init(&in->lock, NULL);
    in->refresh_s = (unsigned)tps_cfg_uint(cfg, "lb.instanceRefresh");
    in->start = time(NULL);
    snprintf(in->id, sizeof(in->id), "%s", tps_cfg_str(cfg, "tps.instanceId"));
    if (tps_inst_config_digest(tps_config_cfg(cfg), in->digest) != TPS_OK) {
        tps_inst_free(in);
        return TPS_ENOMEM;
    }
    tps_hooks_tokendb_conf(tps_config_cfg(cfg), &tc);
    tc.ldap.network_timeout_ms = timeout_ms;
    tc.ldap.op_timeout_ms = timeout_ms;
    tc.ldap.failback_s = 10;
    r = tps_tokendb_cfg_new(&tc, &in->tcfg, err, errlen);
    if (r == TPS_TDB_OK)
        r = tps_tokendb_open(in->tcfg, &in->db);
    if (r != TPS_TDB_OK) {
        tps_inst_free(in);
        return r == TPS_TDB_ENOMEM ? TPS_ENOMEM : TPS_ECONFIG;
    }
    tps_tdb_utc(in->start, since, sizeof(since));
    CMN_LOG(CMN_LOG_NOTICE, "lb.config_digest", NULL, "instance=%s digest=%s start=%s refresh=%u",
            in->id, in->digest, since, in->refresh_s);
    *out = in;
    return TPS_OK;
}

void
tps_inst_free(struct tps_inst *in)
{
    if (in == NULL)
        return;
    tps_tokendb_close(in->db);
    tps_tokendb_cfg_free(in->tcfg);
    pthread_mutex_destroy(&in->lock);
    free(in);
}

static bool
due(struct tps_inst *in)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(now.tv_sec - in->last.tv_sec) * 1000 + (now.tv_nsec - in->last.tv_nsec) / 1000000;
    if (in->ran && ms < (long long)in->refresh_s * 1000)
        return false;
    in->ran = true;
    in->last = now;
    return true;
}

/* Logs an LDAP failure once; the verdict stays what it was. */
static void
ldap_trouble(struct tps_inst *in, const char *what)
{
    if (!in->ldap_failing)
        CMN_LOG(CMN_LOG_WARN, "lb.instances_unreachable", NULL,
                "what=\"%s\" err=\"%s\" msg=\"keeping the last configuration verdict; check the "
                "token DB\"",
                what, tps_tokendb_errmsg(in->db));
    in->ldap_failing = true;
}

/* Stores the verdict; logs when it or the peer (id, digest) changed. Never logs values. */
static void
set_verdict(struct tps_inst *in, enum tps_inst_verdict v, const struct tps_instance_rec *peer)
{
    struct tps_instance_rec none;
    bool changed;
    char ps[16], ms[16];

    memset(&none, 0, sizeof(none));
    if (peer == NULL)
        peer = &none;
    pthread_mutex_lock(&in->lock);
    changed = v != in->verdict || strcmp(peer->id, in->peer.id) != 0 ||
              strcmp(peer->digest, in->peer.digest) != 0;
    in->verdict = v;
    in->peer = *peer;
    pthread_mutex_unlock(&in->lock);
    if (!changed)
        return;
    tps_tdb_utc(peer->since, ps, sizeof(ps));
    tps_tdb_utc(in->since, ms, sizeof(ms));
    if (v == TPS_INST_MATCH)
        CMN_LOG(CMN_LOG_NOTICE, "lb.config_match", NULL,
                "action=ready instance=%s digest=%s msg=\"every live instance has this "
                "configuration\"",
                in->id, in->digest);
    else
        CMN_LOG(CMN_LOG_WARN, "lb.config_mismatch", NULL,
                "action=%s instance=%s digest=%s since=%s peer=%s peer_digest=%s peer_since=%s "
                "msg=\"%s\"",
                v == TPS_INST_DRAIN ? "drain" : "serve", in->id, in->digest, ms, peer->id,
                peer->digest, ps,
                v == TPS_INST_DRAIN
                    ? "the peer's configuration is newer: draining until the configurations agree"
                    : "the peer's configuration is older: it drains; roll it out everywhere");
}

void
tps_inst_tick(struct tps_inst *in)
{
    struct tps_instance_rec me;
    time_t now;
    size_t n = 0, peer = 0;
    enum tps_inst_verdict v;

    if (in == NULL || !due(in))
        return;
    now = time(NULL);
    if (tps_tokendb_instance_list(in->db, in->recs, TPS_INSTANCES_MAX, &n) != TPS_TDB_OK) {
        ldap_trouble(in, "read the instance entries");
        return;
    }
    if (!in->published)
        in->since = tps_inst_since(in->recs, n, in->id, in->digest, in->start, now, in->refresh_s);
    if (tps_tokendb_instance_publish(in->db, in->digest, in->since, now) != TPS_TDB_OK) {
        ldap_trouble(in, "write this instance's entry");
        return;
    }
    if (in->ldap_failing)
        CMN_LOG(CMN_LOG_NOTICE, "lb.instances_reachable", NULL, "instance=%s", in->id);
    in->ldap_failing = false;
    in->published = true;
    memset(&me, 0, sizeof(me));
    snprintf(me.id, sizeof(me.id), "%s", in->id);
    memcpy(me.digest, in->digest, sizeof(me.digest));
    me.since = in->since;
    me.seen = now;
    v = tps_inst_decide(&me, in->recs, n, now, in->refresh_s, &peer);
    set_verdict(in, v, v == TPS_INST_MATCH ? NULL : &in->recs[peer]);
}

bool
tps_inst_mismatch(struct tps_inst *in, char *why, size_t whylen)
{
    bool drain;

    if (in == NULL)
        return false;
    pthread_mutex_lock(&in->lock);
    drain = in->verdict == TPS_INST_DRAIN;
    if (why != NULL && drain)
        snprintf(why, whylen,
                 "config mismatch: %s has a newer configuration (digest %.12s, ours %.12s)",
                 in->peer.id, in->peer.digest, in->digest);
    else if (why != NULL && whylen > 0)
        why[0] = '\0';
    pthread_mutex_unlock(&in->lock);
    return drain;
}
