/* tests/unit/gateway/tdb_fixture.h - starts and stops the real slapd of the token DB and
 * LDAP-auth tests through slapd-fixture.sh, and reads what it reports (DIR/env). */
#ifndef TDB_FIXTURE_H
#define TDB_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "gateway/tokendb.h"

struct tdb_fx {
    char dir[64];
    char script[512];
    char uri1[128], uri2[128];
    int port1, port2, ports; /* ports: ldaps listener (single) */
    pid_t pid1, pid2;
    char basedn[128], rootdn[160], rootpw_file[256], gwdn[200], gwpw_file[256], ca_file[256];
};

static inline void
tdb_fx_copy(char *dst, size_t size, const char *v)
{
    snprintf(dst, size, "%s", v);
}

/* The fixture script sits next to this header; tests run from the repository root, where
 * __FILE__ is relative to. TPSGW_SRCDIR overrides the root. */
static inline void
tdb_fx_script(struct tdb_fx *fx)
{
    const char *root = getenv("TPSGW_SRCDIR");
    const char *f = __FILE__;
    const char *slash = strrchr(f, '/');
    int dl = slash ? (int)(slash - f) : 1;

    if (root != NULL)
        snprintf(fx->script, sizeof(fx->script), "%s/tests/unit/gateway/slapd-fixture.sh", root);
    else
        snprintf(fx->script, sizeof(fx->script), "%.*s/slapd-fixture.sh", dl, slash ? f : ".");
}

/* mode "pair" or "single". 0 on success. */
static inline int
tdb_fx_start(struct tdb_fx *fx, const char *mode)
{
    char cmd[1200], line[512];
    FILE *f;

    memset(fx, 0, sizeof(*fx));
    tdb_fx_script(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tdbtest.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "sh '%s' %s '%s' %ld", fx->script, mode, fx->dir, (long)getpid());
    if (system(cmd) != 0) {
        fprintf(stderr, "fixture: '%s' failed\n", cmd);
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "%s/env", fx->dir);
    f = fopen(cmd, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *eq = strchr(line, '='), *v;
        size_t n;
        if (eq == NULL)
            continue;
        *eq = '\0';
        v = eq + 1;
        n = strlen(v);
        if (n > 0 && v[n - 1] == '\n')
            v[n - 1] = '\0';
        if (strcmp(line, "URI1") == 0)
            tdb_fx_copy(fx->uri1, sizeof(fx->uri1), v);
        else if (strcmp(line, "URI2") == 0)
            tdb_fx_copy(fx->uri2, sizeof(fx->uri2), v);
        else if (strcmp(line, "PORT1") == 0)
            fx->port1 = (int)strtol(v, NULL, 10);
        else if (strcmp(line, "PORTS") == 0)
            fx->ports = (int)strtol(v, NULL, 10);
        else if (strcmp(line, "PORT2") == 0)
            fx->port2 = (int)strtol(v, NULL, 10);
        else if (strcmp(line, "PID1") == 0)
            fx->pid1 = (pid_t)strtol(v, NULL, 10);
        else if (strcmp(line, "PID2") == 0)
            fx->pid2 = (pid_t)strtol(v, NULL, 10);
        else if (strcmp(line, "BASEDN") == 0)
            tdb_fx_copy(fx->basedn, sizeof(fx->basedn), v);
        else if (strcmp(line, "ROOTDN") == 0)
            tdb_fx_copy(fx->rootdn, sizeof(fx->rootdn), v);
        else if (strcmp(line, "ROOTPW_FILE") == 0)
            tdb_fx_copy(fx->rootpw_file, sizeof(fx->rootpw_file), v);
        else if (strcmp(line, "GWDN") == 0)
            tdb_fx_copy(fx->gwdn, sizeof(fx->gwdn), v);
        else if (strcmp(line, "GWPW_FILE") == 0)
            tdb_fx_copy(fx->gwpw_file, sizeof(fx->gwpw_file), v);
        else if (strcmp(line, "CA_FILE") == 0)
            tdb_fx_copy(fx->ca_file, sizeof(fx->ca_file), v);
    }
    fclose(f);
    return fx->uri1[0] != '\0' && fx->pid1 > 0 ? 0 : -1;
}

static inline void
tdb_fx_stop(struct tdb_fx *fx)
{
    char cmd[800];

    if (fx->dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "sh '%s' stop '%s'", fx->script, fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fixture: '%s' failed\n", cmd);
    fx->dir[0] = '\0';
}

/* True when pid no longer runs (gone, or a zombie nobody reaped yet: the daemon is not our
 * child and PID 1 of a container may not reap). */
static inline int
tdb_fx_gone(pid_t pid)
{
    char path[64], buf[256];
    FILE *f;
    const char *rp;

    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 1;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && rp[2] == 'Z';
}

/* Waits until pid has exited (polls). 0 when gone. */
static inline int
tdb_fx_wait_gone(pid_t pid, int ms)
{
    struct timespec ts = {0, 50 * 1000 * 1000};

    for (int i = 0; i < ms / 50; i++) {
        if (tdb_fx_gone(pid))
            return 0;
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Waits until every thread of pid is stopped (state T): kill(SIGSTOP) returns before a
 * multi-threaded process has actually stopped. 0 when stopped. */
static inline int
tdb_fx_wait_stopped(pid_t pid, int ms)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    char dir[64], path[400], buf[256];

    snprintf(dir, sizeof(dir), "/proc/%ld/task", (long)pid);
    for (int i = 0; i < ms / 10; i++) {
        int running = 0, seen = 0;
        DIR *d = opendir(dir);
        struct dirent *de;

        if (d == NULL)
            return -1;
        while ((de = readdir(d)) != NULL) {
            FILE *f;
            const char *rp;

            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s/stat", dir, de->d_name);
            f = fopen(path, "r");
            if (f == NULL)
                continue;
            if (fgets(buf, sizeof(buf), f) == NULL)
                buf[0] = '\0';
            fclose(f);
            seen++;
            rp = strrchr(buf, ')');
            if (rp == NULL || rp[1] != ' ' || (rp[2] != 'T' && rp[2] != 't'))
                running++;
        }
        closedir(d);
        if (seen > 0 && running == 0)
            return 0;
        nanosleep(&ts, NULL);
    }
    return -1;
}

static inline long long
tdb_fx_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A token DB configuration on fx's DIT (ou=Tokens, ou=Certificates, ou=Activities under the
 * base DN), bound as the gateway, 3 s timeouts, at hostport (NULL: fx->uri1). NULL on error
 * (printed). Free with tps_tokendb_cfg_free(). */
static inline struct tps_tokendb_cfg *
tdb_fx_tokendb_cfg(const struct tdb_fx *fx, const char *hostport, const char *instance)
{
    char tokens[200], certs[200], acts[200], err[512];
    struct tps_tokendb_conf c;
    struct tps_tokendb_cfg *cfg = NULL;

    memset(&c, 0, sizeof(c));
    snprintf(tokens, sizeof(tokens), "ou=Tokens,%s", fx->basedn);
    snprintf(certs, sizeof(certs), "ou=Certificates,%s", fx->basedn);
    snprintf(acts, sizeof(acts), "ou=Activities,%s", fx->basedn);
    c.ldap.hostport = hostport != NULL ? hostport : fx->uri1;
    c.ldap.bind_dn = fx->gwdn;
    c.ldap.bind_pw_file = fx->gwpw_file;
    c.ldap.network_timeout_ms = 3000;
    c.ldap.op_timeout_ms = 3000;
    c.base_dn = tokens;
    c.cert_base_dn = certs;
    c.activity_base_dn = acts;
    c.instance_id = instance;
    if (tps_tokendb_cfg_new(&c, &cfg, err, sizeof(err)) != TPS_TDB_OK) {
        fprintf(stderr, "token DB config: %s\n", err);
        return NULL;
    }
    return cfg;
}

#endif
