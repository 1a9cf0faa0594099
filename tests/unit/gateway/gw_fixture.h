/* tests/unit/gateway/gw_fixture.h - shared fixtures of the gateway unit tests: a temporary
 * configuration, an in-process TKS (developer keys, computed with common/scp as the TKS would),
 * a fake authenticator and a fake token DB that remember what they were asked. */
#ifndef GW_FIXTURE_H
#define GW_FIXTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/scp.h"
#include "gateway/config.h"
#include "gateway/session.h"
#include "gateway/tks.h"

#define GW_UNUSED __attribute__((unused))

/* The shared secret of the fixtures (AES-128 000102..0F, backends §3.6 example). */
static const uint8_t gw_shared_raw[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

struct gw_fix {
    char dir[256];
    char cfg_path[300];
    struct tps_config *cfg;
};

GW_UNUSED static void
gw_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        perror(path);
        abort();
    }
    fchmod(fd, mode);
    close(fd);
}

/* True when `extra` sets `key` (a line starting with "key="). */
GW_UNUSED static bool
gw_sets(const char *extra, const char *key, size_t klen)
{
    for (const char *p = extra; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, klen) == 0 && p[klen] == '=')
            return true;
    return false;
}

/* Writes <dir>/tpsgw.cfg from a base plus `extra` lines (which replace base lines setting the
 * same key) and loads it. Returns the load rc; errs (may be NULL) gets the messages. */
GW_UNUSED static enum tps_rc
gw_fix_load(struct gw_fix *f, const char *extra, struct cmn_buf *errs)
{
    char path[400], base[8192], text[16384];
    size_t o = 0;

    snprintf(path, sizeof(path), "%s/shared.hex", f->dir);
    gw_write(path, "000102030405060708090A0B0C0D0E0F\n", 0600);
    snprintf(
        base, sizeof(base),
        "service.unsecurePort=1\n"
        "service.bindAddress=127.0.0.1\n"
        "log.audit.file=%s/audit.log\n"
        "tps.phoneHome.issuerName=Test <Org> & Co\n"
        "tps.phoneHome.operation=https://lb.example.org:7889/tps/tps\n"
        "conn.tks1.hostport=127.0.0.1:9\n"
        "conn.tks1.tksSharedSymKey_file=%s/shared.hex\n"
        "conn.tks1.SSLOn=false\n"
        "op.format.mappingResolver=formatMappingResolver\n"
        "mappingResolver.formatMappingResolver.mapping.order=0,1\n"
        "mappingResolver.formatMappingResolver.mapping.0.filter.tokenType=cleanToken\n"
        "mappingResolver.formatMappingResolver.mapping.0.target.tokenType=cleanToken\n"
        "mappingResolver.formatMappingResolver.mapping.1.target.tokenType=userKey\n"
        "op.format.userKey.auth.enable=true\n"
        "op.format.userKey.issuerinfo.enable=true\n"
        "op.format.userKey.issuerinfo.value=https://lb.example.org:7889/tps/phoneHome?c=$cuid$\n"
        "op.format.userKey.update.applet.requiredVersion=1.4.58768072\n"
        "op.format.userKey.update.applet.directory=conf/applets\n"
        "op.format.cleanToken.auth.enable=false\n"
        "op.format.cleanToken.issuerinfo.enable=true\n"
        "op.format.cleanToken.issuerinfo.value=\n"
        "op.format.cleanToken.update.applet.requiredVersion=1.4.58768072\n"
        "op.format.cleanToken.update.applet.directory=conf/applets\n"
        "auth.retries=1\n",
        f->dir, f->dir);
    for (const char *p = base; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p) + 1, klen = strcspn(p, "=");
        if (!gw_sets(extra, p, klen)) {
            memcpy(text + o, p, len);
            o += len;
        }
        p = nl + 1;
    }
    snprintf(text + o, sizeof(text) - o, "%s", extra ? extra : "");
    snprintf(f->cfg_path, sizeof(f->cfg_path), "%s/tpsgw.cfg", f->dir);
    gw_write(f->cfg_path, text, 0644);
    return tps_config_load(f->cfg_path, &f->cfg, errs);
}

GW_UNUSED static void
gw_fix_init(struct gw_fix *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gwtest.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        abort();
}

GW_UNUSED static void
gw_fix_cleanup(struct gw_fix *f)
{
    char cmd[400];

    tps_config_free(f->cfg);
    f->cfg = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
}

/* ---- in-process TKS ---- */

struct gw_tks {
    int calls;
    int fail_status;  /* answer status=N (N != 0) instead of keys */
    bool down;        /* every call fails as if no clone answered */
    bool no_validate; /* do not check the card cryptogram (cardcryptogram.validate.enable=false) */
    char last_body[2048];
};

static bool
gw_field(const char *body, size_t len, const char *name, uint8_t *out, size_t cap, size_t *n)
{
    const char *v;
    size_t vl;

    return tps_tks_field(body, len, name, &v, &vl) &&
           tps_tks_value_decode(v, vl, out, cap, n) == TPS_OK;
}

static void
gw_put_key(struct cmn_buf *b, const char *name, const struct cmn_key *shared,
           const struct cmn_key *k)
{
    uint8_t w[32];
    size_t n;

    if (cmn_scp_session_key_wrap(shared, k, w, sizeof(w), &n) != CMN_OK)
        abort();
    (void)cmn_buf_printf(b, "&%s=", name);
    (void)tps_tks_hash_append(b, w, n);
}

/* The TKS side of computeSessionKey with developer keys (backends §3.3-3.5). */
GW_UNUSED static enum tps_rc
gw_tks_post(void *arg, const char *path, const char *body, size_t len, struct cmn_buf *resp,
            char *err, size_t errlen)
{
    struct gw_tks *t = arg;
    uint8_t cc[8], hc[8], ccrypt[8], ki[3], seq[2], dc[2], want[8];
    size_t n, kin;
    struct cmn_keyset ks;
    struct cmn_scp s;
    struct cmn_key shared;
    enum cmn_scp_proto proto = CMN_SCP01;
    const char *v;
    size_t vl;

    (void)path;
    t->calls++;
    snprintf(t->last_body, sizeof(t->last_body), "%.*s", (int)len, body);
    if (t->down) {
        snprintf(err, errlen, "tks1: all 2 clones failed (test)");
        return TPS_EBACKEND;
    }
    if (t->fail_status) {
        (void)cmn_buf_printf(resp, "status=%d", t->fail_status);
        return TPS_OK;
    }
    (void)cmn_key_set(&shared, CMN_KEY_AES, gw_shared_raw, 16);
    if (tps_tks_field(body, len, "protocol", &v, &vl))
        proto = v[0] == '2' ? CMN_SCP02 : CMN_SCP03;
    if (!gw_field(body, len, "KeyInfo", ki, sizeof(ki), &kin)) {
        (void)cmn_buf_puts(resp, "status=3");
        return TPS_OK;
    }
    cmn_keyset_developer(&ks, proto, ki[0]);
    cmn_scp_init(&s, proto);
    if (proto == CMN_SCP02) {
        if (!gw_field(body, len, "sequenceCounter", seq, 2, &n) ||
            !gw_field(body, len, "derivationConstant", dc, 2, &n)) {
            (void)cmn_buf_puts(resp, "status=3");
            return TPS_OK;
        }
        memset(hc, 0, 8);
        memset(cc, 0, 8);
        cmn_scp_set_challenges(&s, hc, cc, 6, seq);
        cmn_scp_derive(&s, &ks);
        (void)cmn_buf_puts(resp, "status=0");
        gw_put_key(resp, "sessionKey", &shared,
                   dc[1] == 0x82   ? &s.s_enc
                   : dc[1] == 0x01 ? &s.s_mac
                   : dc[1] == 0x02 ? &s.s_rmac
                                   : &s.dek);
        cmn_scp_cleanup(&s);
        return TPS_OK;
    }
    if (!gw_field(body, len, "card_challenge", cc, 8, &n) ||
        !gw_field(body, len, "host_challenge", hc, 8, &n) ||
        !gw_field(body, len, "card_cryptogram", ccrypt, 8, &n)) {
        (void)cmn_buf_puts(resp, "status=3");
        return TPS_OK;
    }
    cmn_scp_set_challenges(&s, hc, cc, 8, NULL);
    cmn_scp_derive(&s, &ks);
    cmn_scp_card_cryptogram(&s, want);
    if (!t->no_validate && memcmp(want, ccrypt, 8) != 0) {
        (void)cmn_buf_puts(resp, "status=5");
        cmn_scp_cleanup(&s);
        return TPS_OK;
    }
    cmn_scp_host_cryptogram(&s, want);
    (void)cmn_buf_puts(resp, "status=0");
    if (proto == CMN_SCP01) {
        gw_put_key(resp, "sessionKey", &shared, &s.s_mac);
        gw_put_key(resp, "encSessionKey", &shared, &s.s_enc);
    } else {
        gw_put_key(resp, "macSessionKey", &shared, &s.s_mac);
        gw_put_key(resp, "encSessionKey", &shared, &s.s_enc);
        gw_put_key(resp, "kekSessionKey", &shared, &ks.kek);
    }
    (void)cmn_buf_puts(resp, "&hostCryptogram=");
    (void)tps_tks_hash_append(resp, want, 8);
    cmn_scp_cleanup(&s);
    return TPS_OK;
}

/* ---- fake authenticator: jdoe / Secret.123 ---- */

struct gw_auth {
    int calls;
    bool down;
};

GW_UNUSED static enum tps_rc
gw_auth_check(void *auth, const char *auth_id, const char *uid, const char *pw, char *err,
              size_t errlen)
{
    struct gw_auth *a = auth;

    (void)auth_id;
    a->calls++;
    if (a->down) {
        snprintf(err, errlen, "ldap://127.0.0.1:9: connection refused");
        return TPS_EBACKEND;
    }
    if (strcmp(uid, "jdoe") == 0 && strcmp(pw, "Secret.123") == 0)
        return TPS_OK;
    snprintf(err, errlen, "invalid credentials");
    return TPS_ELOGIN;
}

GW_UNUSED static const struct tps_auth_ops gw_auth_ops = {.check = gw_auth_check};

/* ---- fake token DB ---- */

struct gw_db {
    bool known;      /* the token exists */
    char status[32]; /* its status */
    int gets, leases, unleases, records, successes;
    char last_status[32]; /* status written by the last successful record */
    char last_applet[40];
    char last_msg[320];
    bool lease_busy;
};

GW_UNUSED static enum tps_rc
gw_db_get(void *db, const char *cuid, struct tps_db_token *out, char *err, size_t errlen)
{
    struct gw_db *d = db;

    (void)cuid;
    (void)err;
    (void)errlen;
    d->gets++;
    memset(out, 0, sizeof(*out));
    out->found = d->known;
    snprintf(out->status, sizeof(out->status), "%s", d->status);
    return TPS_OK;
}

GW_UNUSED static enum tps_rc
gw_db_transition(void *db, const char *from, const char *to)
{
    (void)db;
    (void)to;
    return strcmp(from, "TERMINATED") == 0 ? TPS_EPOLICY : TPS_OK;
}

GW_UNUSED static enum tps_rc
gw_db_lease(void *db, const char *cuid, const char *op, char *err, size_t errlen)
{
    struct gw_db *d = db;

    (void)cuid;
    (void)op;
    d->leases++;
    if (d->lease_busy) {
        snprintf(err, errlen, "held by tps2.abc until 20991231000000Z");
        return TPS_EBUSY;
    }
    return TPS_OK;
}

GW_UNUSED static void
gw_db_unlease(void *db, const char *cuid)
{
    (void)cuid;
    ((struct gw_db *)db)->unleases++;
}

GW_UNUSED static enum tps_rc
gw_db_record(void *db, const struct tps_db_result *r, char *err, size_t errlen)
{
    struct gw_db *d = db;

    (void)err;
    (void)errlen;
    d->records++;
    snprintf(d->last_msg, sizeof(d->last_msg), "%s", r->message);
    if (r->success) {
        d->successes++;
        snprintf(d->last_status, sizeof(d->last_status), "%s", r->new_status);
        snprintf(d->last_applet, sizeof(d->last_applet), "%s", r->applet_id);
    }
    return TPS_OK;
}

GW_UNUSED static const struct tps_db_ops gw_db_ops = {
    .token_get = gw_db_get,
    .transition_ok = gw_db_transition,
    .lease = gw_db_lease,
    .unlease = gw_db_unlease,
    .record = gw_db_record,
};

#endif
