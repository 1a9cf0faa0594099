/* gateway/main.c - tpsgw: `tpsgw -c tpsgw.cfg` serves the TPS protocol; `tpsgw -t -c FILE`
 * only checks a configuration; `tpsgw --keys` prints the configuration key table. The main
 * thread parses the config and initialises libraries, then waits for signals in sigwait while
 * the acceptor and the workers run (STYLE §5). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libfailover/failover.h>

#include "common/log.h"
#include "gateway/config.h"
#include "gateway/hooks.h"
#include "gateway/lb.h"
#include "gateway/server.h"
#include "gateway/tks.h"
#include "gateway/tokendb.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: tpsgw -c FILE        serve the TPS protocol\n"
               "       tpsgw -t -c FILE     check the configuration and exit\n"
               "       tpsgw --keys         print the configuration keys\n");
}

/* Everything -t checks beyond the key table: files, TKS lists, token DB configuration, the
 * load-balancer settings and the admin API stack. */
static int
check_deep(const struct tps_config *cfg)
{
    struct tps_tks *tks = NULL;
    struct tps_hooks *hooks = NULL;
    char err[1024] = "";
    int bad = 0;

    if (tps_tks_new(cfg, "tks1", &tks, err, sizeof(err)) != TPS_OK) {
        fprintf(stderr, "%s\n", err);
        bad = 1;
    }
    err[0] = '\0';
    if (tps_hooks_new(cfg, &hooks, err, sizeof(err)) != TPS_OK) {
        fprintf(stderr, "%s: %s\n", tps_config_path(cfg), err);
        bad = 1;
    }
    err[0] = '\0';
    {
        /* lb.*: trusted networks, the public URL rule, connector TLS files */
        struct tps_lb *lb = NULL;
        if (tps_lb_new_from_config(cfg, &lb, err, sizeof(err)) != TPS_OK) {
            fprintf(stderr, "%s: %s\n", tps_config_path(cfg), err);
            bad = 1;
        }
        tps_lb_free(lb);
    }
    err[0] = '\0';
    if (tps_server_check_admin(cfg, err, sizeof(err)) != TPS_OK) {
        fprintf(stderr, "%s: admin API: %s\n", tps_config_path(cfg), err);
        bad = 1;
    }
    tps_tks_free(tks);
    tps_hooks_free(hooks);
    return bad;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {
        /* EINTR: sleep the rest */
    }
}

/* SIGTERM (or POST /drain): the agent says "drain" and /health 503 so HAProxy stops sending
 * (lb.drainGrace), then the listeners close and running operations get lb.drainTimeout to
 * finish (docs/ha.md). Returns true when every operation finished. */
static bool
drain(struct tps_server *srv)
{
    struct tps_lb *lb = tps_server_lb(srv);
    unsigned waited = 0, left;

    tps_lb_drain(lb, "SIGTERM");
    sleep_ms(tps_lb_drain_grace_ms(lb));
    tps_server_close_listeners(srv);
    CMN_LOG(CMN_LOG_NOTICE, "lb.drain_listeners_closed", NULL, "pending=%u",
            tps_server_pending(srv));
    while ((left = tps_server_pending(srv)) > 0 && waited < tps_lb_drain_timeout_ms(lb)) {
        sleep_ms(50);
        waited += 50;
    }
    if (left > 0) {
        CMN_LOG(CMN_LOG_WARN, "lb.drain_timeout", NULL, "abandoned=%u timeout_ms=%u", left,
                tps_lb_drain_timeout_ms(lb));
        return false;
    }
    CMN_LOG(CMN_LOG_NOTICE, "lb.drained", NULL, "ms=%u", waited);
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"keys", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool test_only = false;
    struct tps_config *cfg = NULL;
    struct tps_server *srv = NULL;
    struct cmn_buf errs;
    enum cmn_log_level lvl = CMN_LOG_INFO;
    const struct tps_settings *st;
    sigset_t set;
    char err[1024] = "";
    int opt, sig, status = 1;

    while ((opt = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'k':
            tps_config_write_doc(stdout, true);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    cmn_buf_init(&errs, 1 << 20);
    if (tps_config_load(path, &cfg, &errs) != TPS_OK) {
        fprintf(stderr, "%s", cmn_buf_cstr(&errs));
        fprintf(stderr, "tpsgw: %s: configuration has errors\n", path);
        goto out;
    }
    if (fo_global_init() != FO_OK || tps_ldap_global_init() != 0) {
        fprintf(stderr, "tpsgw: cannot initialise libcurl / libldap\n");
        goto out;
    }
    if (test_only) {
        if (check_deep(cfg) == 0) {
            printf("%s: configuration OK\n", path);
            status = 0;
        }
        goto out;
    }
    st = tps_config_settings(cfg);
    (void)cmn_log_level_parse(st->log_level, &lvl);
    if (cmn_log_open(st->log_file[0] ? st->log_file : NULL, lvl) != CMN_OK ||
        cmn_audit_open(st->audit_file, tps_cfg_bool(cfg, "log.audit.sync")) != CMN_OK) {
        fprintf(stderr, "tpsgw: cannot open the log (%s) or audit file (%s)\n",
                st->log_file[0] ? st->log_file : "stderr", st->audit_file);
        goto out;
    }
    /* Signals: SIGPIPE ignored; the rest blocked in every thread and taken here by sigwait. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (tps_server_new(cfg, &srv, err, sizeof(err)) != TPS_OK ||
        tps_server_start(srv, err, sizeof(err)) != TPS_OK) {
        fprintf(stderr, "tpsgw: %s\n", err);
        CMN_LOG(CMN_LOG_ERROR, "server.fail", NULL, "err=\"%s\"", err);
        goto out;
    }
    printf("tpsgw: listening http=%u https=%u\n", tps_server_port(srv, false),
           tps_server_port(srv, true));
    fflush(stdout);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            CMN_LOG(CMN_LOG_NOTICE, "server.sighup", NULL,
                    "msg=\"configuration reload is not supported; restart to apply\"");
            continue;
        }
        CMN_LOG(CMN_LOG_NOTICE, "server.stop", NULL, "signal=%d live=%u", sig,
                tps_server_live(srv));
        break;
    }
    if (sig == SIGTERM && !drain(srv)) {
        /* Sessions still running after lb.drainTimeout: leave without joining them (their
         * clients retry through the balancer). */
        cmn_audit_close();
        cmn_log_close();
        _exit(1);
    }
    tps_server_stop(srv);
    status = 0;
out:
    tps_server_free(srv);
    tps_config_free(cfg);
    cmn_buf_cleanup(&errs);
    cmn_audit_close();
    cmn_log_close();
    return status;
}
