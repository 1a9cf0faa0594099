/* tokenclient/main.c - the tokenclient command line: enrollment station, security officer
 * workstation, phone-home watcher, and the emulated-card load generator. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/tpsmsg.h"
#include "tokenclient/tc.h"

struct cli {
    const char *server, *phone_home, *reader, *token_type, *cacert, *cert, *key;
    const char *emulate_dir, *cuid;
    int wait_s, timeout_s, emulate, op;
    unsigned retry_delay_ms; /* pause before the one retry: the balancer's time to notice */
    bool extended_login, no_retry, quiet, no_status, so;
    struct tc_ui ui;
    const char *params[16];
};

static void
usage(FILE *f)
{
    fputs("usage: tokenclient [options] COMMAND\n"
          "commands:\n"
          "  readers                 list card readers and whether a card is in them\n"
          "  status                  show the card: reader, ATR, CUID, phone-home URL and service\n"
          "  format | enroll | pin-reset\n"
          "                          run that operation on the card with the TPS\n"
          "  watch                   wait for cards; phone home for each (and run --op on it)\n"
          "  so enroll-user | enroll-temporary | format-user | format-officer | set-url\n"
          "                          security officer workstation operations on a user's card\n"
          "                          (https with the officer's --cert/--key)\n"
          "options:\n"
          "  --server URL            TPS operation URL (default: from the card's phone home)\n"
          "  --phone-home URL        phone-home URL for cards that carry none\n"
          "  --reader NAME           use this reader (default: the first with a card)\n"
          "  --wait SECONDS          wait that long for a card (default 0; -1 forever)\n"
          "  --token-type TYPE       tokenType extension (default: from phone home)\n"
          "  --user NAME             user name for login prompts\n"
          "  --password-file F       password (file mode 600) instead of a prompt\n"
          "  --new-pin-file F        new PIN (file mode 600) instead of a prompt\n"
          "  --param ID=VALUE        answer for an extended-login parameter\n"
          "  --extended-login        ask the TPS for its extended login form\n"
          "  --cacert F --cert F --key F   TLS trust anchors and client certificate\n"
          "  --timeout SECONDS       wait per TPS message (default 300)\n"
          "  --op format|enroll|pin-reset  operation for watch mode\n"
          "  --no-retry              do not restart an operation whose connection dropped\n"
          "  --retry-delay SECONDS   pause before that one restart (default 3)\n"
          "  --no-progress           do not ask the TPS for progress updates\n"
          "  --quiet                 print only errors and the result\n"
          "  --emulate N             load mode: N in-process emulated cards run COMMAND at once\n"
          "                          against --server, then a summary with latency percentiles\n"
          "  --emulate-dir DIR       keep the emulated cards' state files in DIR\n"
          "  --cuid HEX              CUID of the first emulated card (20 hex digits)\n"
          "exit status: 0 success, 1 usage, 2 no reader/card, 3 card removed or unreadable,\n"
          "4 TPS unreachable or connection lost, 5 protocol error, 6 cancelled, 10 refused by\n"
          "the TPS (the message says why and what to do)\n",
          f);
}

static int
op_from_name(const char *s)
{
    if (strcmp(s, "format") == 0)
        return CMN_TPS_OP_FORMAT;
    if (strcmp(s, "enroll") == 0)
        return CMN_TPS_OP_ENROLL;
    if (strcmp(s, "pin-reset") == 0)
        return CMN_TPS_OP_RESET_PIN;
    return -1;
}

/* Security officer workstation operations (tps-protocol §5.4): operation + token type. */
static bool
so_op(const char *s, int *op, const char **type)
{
    static const struct {
        const char *name;
        int op;
        const char *type;
    } t[] = {
        {"enroll-user", CMN_TPS_OP_ENROLL, "userKey"},
        {"enroll-temporary", CMN_TPS_OP_ENROLL, "userKeyTemporary"},
        {"format-user", CMN_TPS_OP_FORMAT, "soCleanUserToken"},
        {"format-officer", CMN_TPS_OP_FORMAT, "soCleanSOToken"},
        {"set-url", CMN_TPS_OP_FORMAT, "soUserKey"},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(s, t[i].name) == 0) {
            *op = t[i].op;
            *type = t[i].type;
            return true;
        }
    }
    return false;
}

/* Works out the operation URL and token type: --server, else the card's phone home. */
static enum tc_rc
resolve_service(struct cli *c, struct tc_card *card, char *url, size_t urllen, char *type,
                size_t typelen, bool verbose)
{
    char cuid[21], issuer[232], err[256];
    struct tc_service svc;
    enum tc_rc rc;

    rc = tc_card_identify(card, cuid, issuer, sizeof(issuer));
    if (rc != TC_OK) {
        fprintf(stderr, "tokenclient: %s\n", card->err);
        return rc;
    }
    if (verbose)
        tc_ui_say(&c->ui, "card %s in %s", cuid, card->name);
    snprintf(type, typelen, "%s", c->token_type ? c->token_type : "");
    if (c->server != NULL) {
        snprintf(url, urllen, "%s", c->server);
        return TC_OK;
    }
    if (issuer[0] == 0 && c->phone_home == NULL) {
        fprintf(stderr, "tokenclient: the card carries no phone-home URL: give --server URL "
                        "(or --phone-home URL)\n");
        return TC_EUSAGE;
    }
    rc = tc_phonehome(issuer[0] ? issuer : c->phone_home, cuid, c->cacert, 30000, &svc, err,
                      sizeof(err));
    if (rc != TC_OK) {
        fprintf(stderr, "tokenclient: %s\n", err);
        return rc;
    }
    if (verbose)
        tc_ui_say(&c->ui, "phone home %s: issuer '%s', operation %s%s%s",
                  issuer[0] ? issuer : c->phone_home, svc.issuer, svc.operation,
                  svc.token_type[0] ? ", token type " : "", svc.token_type);
    snprintf(url, urllen, "%s", svc.operation);
    if (c->token_type == NULL)
        snprintf(type, typelen, "%s", svc.token_type);
    return TC_OK;
}

/* Runs one operation on one card, restarting it once if the connection dropped. */
static enum tc_rc
run_op(struct cli *c, struct tc_card *card, int op, struct tc_result *res, bool verbose)
{
    char url[512], type[64];
    struct tc_opts o;
    enum tc_rc rc;

    rc = resolve_service(c, card, url, sizeof(url), type, sizeof(type), verbose);
    if (rc != TC_OK)
        return rc;
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.op = op;
    o.token_type = type[0] ? type : NULL;
    o.cacert = c->cacert;
    o.cert = c->cert;
    o.key = c->key;
    o.timeout_ms = c->timeout_s * 1000;
    o.extended_login = c->extended_login;
    o.status_update = !c->no_status;
    for (int attempt = 0;; attempt++) {
        rc = tc_session_run(&o, card, &c->ui, res);
        if (rc != TC_ENET || c->no_retry || attempt == 1)
            break;
        /* a dropped connection (an instance died): one more attempt, which the balancer
         * sends to a healthy instance; the card is reset so no channel half-remains */
        tc_ui_say(&c->ui, "tokenclient: %s; restarting the operation once in %u s", res->err,
                  (c->retry_delay_ms + 999) / 1000);
        {
            /* an immediate retry can reach the dying instance again, which the balancer has
             * not yet marked down: wait longer than its health checks take to notice */
            struct timespec ts = {(time_t)(c->retry_delay_ms / 1000),
                                  (long)(c->retry_delay_ms % 1000) * 1000000L};

            while (nanosleep(&ts, &ts) != 0)
                ;
        }
        if (card->ops->reset(card) != TC_OK) {
            snprintf(res->err, sizeof(res->err), "%s", card->err);
            return TC_ECARD;
        }
    }
    return rc;
}

static int
report(struct cli *c, int op, enum tc_rc rc, const struct tc_result *res)
{
    if (rc == TC_OK) {
        tc_ui_say(&c->ui, "%s: success (%u APDUs)", cmn_tps_op_name(op), res->apdus);
        if (c->ui.quiet)
            printf("%s: success\n", cmn_tps_op_name(op));
        return 0;
    }
    if (rc == TC_EREFUSED)
        fprintf(stderr, "tokenclient: %s failed: %s (status %d): %s\n", cmn_tps_op_name(op),
                cmn_tps_status_name(res->status), res->status, tc_status_advice(res->status));
    else
        fprintf(stderr, "tokenclient: %s failed: %s\n", cmn_tps_op_name(op),
                res->err[0] ? res->err : "error");
    return rc;
}

/* ---- load mode ---- */

struct emu_job {
    struct cli *c;
    int op, index;
    double ms;
    enum tc_rc rc;
    int status;
    char err[256];
};

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void *
emu_thread(void *arg)
{
    struct emu_job *j = arg;
    struct tc_card card;
    struct tc_result res;
    char cuid[21], path[4096], *statep = NULL;
    unsigned long long base = 0x40907901001FULL;
    double t0;

    /* distinct CUIDs: the configured one (or a fixed prefix) plus the card's index */
    if (j->c->cuid != NULL && strlen(j->c->cuid) == 20) {
        memcpy(cuid, j->c->cuid, 12);
        snprintf(cuid + 12, 9, "%08X",
                 (unsigned)(strtoul(j->c->cuid + 12, NULL, 16) + (unsigned)j->index));
    } else {
        snprintf(cuid, sizeof(cuid), "%012llX%08X", base, 0x10000000u + (unsigned)j->index);
    }
    if (j->c->emulate_dir != NULL) {
        snprintf(path, sizeof(path), "%s/card-%s.vtoken", j->c->emulate_dir, cuid);
        statep = path;
    }
    j->rc = tc_emu_open(statep, cuid, &card);
    if (j->rc != TC_OK) {
        snprintf(j->err, sizeof(j->err), "%s", card.err);
        return NULL;
    }
    t0 = now_ms();
    j->rc = run_op(j->c, &card, j->op, &res, false);
    j->ms = now_ms() - t0;
    j->status = res.status;
    snprintf(j->err, sizeof(j->err), "%s", res.err);
    card.ops->close(&card);
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int
run_emulated(struct cli *c, int op)
{
    struct emu_job *jobs = calloc((size_t)c->emulate, sizeof(*jobs));
    pthread_t *th = calloc((size_t)c->emulate, sizeof(*th));
    double *lat = calloc((size_t)c->emulate, sizeof(*lat));
    int ok = 0, nlat = 0, failed = 0;
    double t0 = now_ms(), wall;

    if (jobs == NULL || th == NULL || lat == NULL) {
        fprintf(stderr, "tokenclient: out of memory\n");
        return TC_EUSAGE;
    }
    c->ui.interactive = false;
    c->ui.quiet = true;
    for (int i = 0; i < c->emulate; i++) {
        jobs[i] = (struct emu_job){.c = c, .op = op, .index = i};
        if (pthread_create(&th[i], NULL, emu_thread, &jobs[i]) != 0) {
            fprintf(stderr, "tokenclient: cannot start thread %d\n", i);
            c->emulate = i;
            break;
        }
    }
    for (int i = 0; i < c->emulate; i++)
        pthread_join(th[i], NULL);
    wall = now_ms() - t0;
    for (int i = 0; i < c->emulate; i++) {
        if (jobs[i].rc == TC_OK) {
            ok++;
            lat[nlat++] = jobs[i].ms;
        } else {
            failed++;
            if (failed <= 10)
                fprintf(stderr, "card %d: %s\n", i,
                        jobs[i].rc == TC_EREFUSED ? cmn_tps_status_name(jobs[i].status)
                                                  : jobs[i].err);
        }
    }
    qsort(lat, (size_t)nlat, sizeof(*lat), cmp_double);
    printf("emulated %s: %d cards, %d succeeded, %d failed, %.1f s wall, %.2f ops/s\n",
           cmn_tps_op_name(op), c->emulate, ok, failed, wall / 1000.0,
           wall > 0 ? ok * 1000.0 / wall : 0.0);
    if (nlat > 0)
        printf("latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", lat[(nlat - 1) / 2],
               lat[(nlat * 9 - 1) / 10], lat[(nlat * 99 - 1) / 100], lat[nlat - 1]);
    printf("%d passed, %d failed\n", ok, failed);
    free(jobs);
    free(th);
    free(lat);
    return failed ? TC_EREFUSED : TC_OK;
}

/* ---- watch mode ---- */

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int
run_watch(struct cli *c)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    tc_ui_say(&c->ui, "watching for cards (Ctrl-C to stop)");
    while (!stop) {
        struct tc_card card;
        struct tc_result res;
        char url[512], type[64];
        enum tc_rc rc = tc_pcsc_open(c->reader, 1000, &card);

        if (rc != TC_OK) {
            if (card.ops != NULL && card.impl != NULL)
                card.ops->close(&card);
            if (strstr(card.err, "within") == NULL) { /* not a mere timeout: a real problem */
                fprintf(stderr, "tokenclient: %s\n", card.err);
                sleep(1);
            }
            continue;
        }
        if (c->op > 0) {
            rc = run_op(c, &card, c->op, &res, true);
            (void)report(c, c->op, rc, &res);
        } else {
            (void)resolve_service(c, &card, url, sizeof(url), type, sizeof(type), true);
        }
        tc_ui_say(&c->ui, "remove the card to continue");
        (void)tc_pcsc_wait_removed(&card);
        card.ops->close(&card);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", required_argument, NULL, 's'},
        {"phone-home", required_argument, NULL, 'H'},
        {"reader", required_argument, NULL, 'r'},
        {"wait", required_argument, NULL, 'w'},
        {"token-type", required_argument, NULL, 't'},
        {"user", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'p'},
        {"new-pin-file", required_argument, NULL, 'n'},
        {"param", required_argument, NULL, 'P'},
        {"extended-login", no_argument, NULL, 'x'},
        {"cacert", required_argument, NULL, 'C'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 'T'},
        {"op", required_argument, NULL, 'o'},
        {"no-retry", no_argument, NULL, 'R'},
        {"retry-delay", required_argument, NULL, 'D'},
        {"no-progress", no_argument, NULL, 'N'},
        {"quiet", no_argument, NULL, 'q'},
        {"emulate", required_argument, NULL, 'e'},
        {"emulate-dir", required_argument, NULL, 'E'},
        {"cuid", required_argument, NULL, 'U'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    const char *cmd;
    int opt, op = -1;
    unsigned long long v;

    memset(&c, 0, sizeof(c));
    c.timeout_s = 300;
    c.retry_delay_ms = 3000;
    c.ui.out = stderr;
    c.ui.last_pct = -1;
    c.ui.params = c.params;
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (opt) {
        case 's':
            c.server = optarg;
            break;
        case 'H':
            c.phone_home = optarg;
            break;
        case 'r':
            c.reader = optarg;
            break;
        case 'w':
            c.wait_s = strcmp(optarg, "-1") == 0                        ? -1
                       : cmn_parse_uint(optarg, 0, 86400, &v) == CMN_OK ? (int)v
                                                                        : -2;
            if (c.wait_s == -2) {
                fprintf(stderr, "tokenclient: --wait takes seconds (0..86400, or -1)\n");
                return TC_EUSAGE;
            }
            break;
        case 't':
            c.token_type = optarg;
            break;
        case 'u':
            c.ui.user = optarg;
            break;
        case 'p':
            c.ui.password_file = optarg;
            break;
        case 'n':
            c.ui.new_pin_file = optarg;
            break;
        case 'P':
            if (strchr(optarg, '=') == NULL || c.ui.nparams >= 16) {
                fprintf(stderr, "tokenclient: --param takes ID=VALUE (at most 16)\n");
                return TC_EUSAGE;
            }
            c.params[c.ui.nparams++] = optarg;
            break;
        case 'x':
            c.extended_login = true;
            break;
        case 'C':
            c.cacert = optarg;
            break;
        case 'c':
            c.cert = optarg;
            break;
        case 'k':
            c.key = optarg;
            break;
        case 'T':
            if (cmn_parse_uint(optarg, 1, 3600, &v) != CMN_OK) {
                fprintf(stderr, "tokenclient: --timeout takes 1..3600 seconds\n");
                return TC_EUSAGE;
            }
            c.timeout_s = (int)v;
            break;
        case 'o':
            c.op = op_from_name(optarg);
            if (c.op < 0) {
                fprintf(stderr, "tokenclient: --op takes format, enroll or pin-reset\n");
                return TC_EUSAGE;
            }
            break;
        case 'R':
            c.no_retry = true;
            break;
        case 'D':
            if (cmn_parse_uint(optarg, 0, 600, &v) != CMN_OK) {
                fprintf(stderr, "tokenclient: --retry-delay takes 0..600 seconds\n");
                return TC_EUSAGE;
            }
            c.retry_delay_ms = (unsigned)v * 1000u;
            break;
        case 'N':
            c.no_status = true;
            break;
        case 'q':
            c.ui.quiet = true;
            break;
        case 'e':
            if (cmn_parse_uint(optarg, 1, 10000, &v) != CMN_OK) {
                fprintf(stderr, "tokenclient: --emulate takes 1..10000 cards\n");
                return TC_EUSAGE;
            }
            c.emulate = (int)v;
            break;
        case 'E':
            c.emulate_dir = optarg;
            break;
        case 'U':
            c.cuid = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return TC_EUSAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return TC_EUSAGE;
    }
    cmd = argv[optind];
    c.ui.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
    c.ui.progress_bar = isatty(STDERR_FILENO);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    if (strcmp(cmd, "so") == 0) {
        const char *type;

        if (optind + 1 >= argc || !so_op(argv[optind + 1], &op, &type)) {
            fprintf(stderr, "tokenclient: so needs one of enroll-user, enroll-temporary, "
                            "format-user, format-officer, set-url\n");
            return TC_EUSAGE;
        }
        if (c.cert == NULL) {
            fprintf(stderr, "tokenclient: security officer operations need the officer's "
                            "--cert and --key (https)\n");
            return TC_EUSAGE;
        }
        c.token_type = type;
        c.so = true;
    } else if (optind + 1 != argc) {
        usage(stderr);
        return TC_EUSAGE;
    } else if (strcmp(cmd, "readers") == 0) {
        char err[256];
        enum tc_rc rc = tc_pcsc_list(stdout, err, sizeof(err));

        if (rc != TC_OK)
            fprintf(stderr, "tokenclient: %s\n", err);
        return rc;
    } else if (strcmp(cmd, "watch") == 0) {
        return run_watch(&c);
    } else if (strcmp(cmd, "status") != 0) {
        op = op_from_name(cmd);
        if (op < 0) {
            fprintf(stderr, "tokenclient: unknown command '%s'\n", cmd);
            usage(stderr);
            return TC_EUSAGE;
        }
    }

    if (c.emulate > 0) {
        if (op < 0 || c.server == NULL) {
            fprintf(stderr, "tokenclient: --emulate runs format, enroll or pin-reset against "
                            "--server URL\n");
            return TC_EUSAGE;
        }
        return run_emulated(&c, op);
    }

    {
        struct tc_card card;
        struct tc_result res;
        enum tc_rc rc;
        int ret;

        rc = tc_pcsc_open(c.reader, c.wait_s < 0 ? -1 : c.wait_s * 1000, &card);
        if (rc != TC_OK) {
            fprintf(stderr, "tokenclient: %s\n", card.err);
            if (card.ops != NULL && card.impl != NULL)
                card.ops->close(&card);
            return rc;
        }
        if (op < 0) { /* status */
            char url[512], type[64];

            printf("reader: %s\nATR:", card.name);
            for (size_t i = 0; i < card.atr_len; i++)
                printf(" %02X", card.atr[i]);
            printf("\n");
            c.ui.out = stdout;
            rc = resolve_service(&c, &card, url, sizeof(url), type, sizeof(type), true);
            card.ops->close(&card);
            return rc;
        }
        rc = run_op(&c, &card, op, &res, !c.ui.quiet);
        ret = report(&c, op, rc, &res);
        card.ops->close(&card);
        curl_global_cleanup();
        return ret;
    }
}
