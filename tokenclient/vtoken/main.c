/* tokenclient/vtoken/main.c - `vtoken`: emulated CoolKey cards served to pcscd through vpcd,
 * one card per slot, several cards per process; `--show` prints a card's state file. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "tokenclient/vtoken/vpcd.h"
#include "tokenclient/vtoken/vtoken.h"

#define MAX_CARDS 16

struct card_arg {
    const char *state;
    unsigned port; /* 0 = 35963 + index */
    struct vt_config cfg;
};

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: vtoken [--host ADDR] [--log FILE] [--log-level LEVEL]\n"
            "              --state FILE [--port N] [--set KEY=VALUE]... [--config FILE]\n"
            "              [--state FILE [--port N] ...]...\n"
            "       vtoken --init FILE [--set KEY=VALUE]... [--config FILE]\n"
            "       vtoken --show FILE\n"
            "Serves each card (a state file, created with the settings when absent) to the\n"
            "vpcd reader slot on ADDR:N (default 127.0.0.1, port 35963 + card index).\n"
            "Settings: proto cuid msn atr key.version key.enc key.mac key.kek applet.version\n"
            "applet.upgrade applet.present scp03.i seq memory (see docs/vtoken.md).\n");
}

static int
set_kv(struct vt_config *cfg, const char *kv, const char *where)
{
    char key[64], err[256];
    const char *eq = strchr(kv, '=');

    if (eq == NULL || (size_t)(eq - kv) >= sizeof(key) || eq == kv) {
        fprintf(stderr, "vtoken: %s: '%s' is not KEY=VALUE\n", where, kv);
        return -1;
    }
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    if (vt_config_set(cfg, key, eq + 1, err, sizeof(err)) != CMN_OK) {
        fprintf(stderr, "vtoken: %s: %s\n", where, err);
        return -1;
    }
    return 0;
}

static int
load_config(struct vt_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512], where[600];
    int lineno = 0, bad = 0;

    if (f == NULL) {
        fprintf(stderr, "vtoken: cannot open %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(line);

        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        bad |= set_kv(cfg, line, where);
    }
    fclose(f);
    return bad ? -1 : 0;
}

static int
show(const char *path)
{
    struct vt_card *c = NULL;
    char err[512];
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        fprintf(stderr, "vtoken: %s: no such state file\n", path);
        return 1;
    }
    fclose(f);
    if (vt_card_inspect(path, &c, err, sizeof(err)) != CMN_OK) {
        fprintf(stderr, "vtoken: %s\n", err);
        return 1;
    }
    vt_card_show(c, stdout);
    vt_card_close(c);
    return 0;
}

int
main(int argc, char **argv)
{
    static struct card_arg cards[MAX_CARDS];
    static struct vt_vpcd_slot slots[MAX_CARDS];
    struct vt_card *open_cards[MAX_CARDS] = {0};
    size_t ncards = 0;
    const char *host = "127.0.0.1", *logpath = NULL, *init = NULL;
    enum cmn_log_level level = CMN_LOG_NOTICE;
    struct sigaction sa;
    char err[512];
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        struct card_arg *cur = ncards > 0 ? &cards[ncards - 1] : NULL;
        unsigned long long n;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--show") == 0)
            return show(v);
        if (strcmp(a, "--state") == 0 || strcmp(a, "--init") == 0) {
            if (ncards == MAX_CARDS || (init != NULL) || (strcmp(a, "--init") == 0 && ncards)) {
                fprintf(stderr, "vtoken: at most %d cards, --init takes one\n", MAX_CARDS);
                return 2;
            }
            cur = &cards[ncards++];
            cur->state = v;
            vt_config_default(&cur->cfg);
            if (strcmp(a, "--init") == 0)
                init = v;
        } else if (strcmp(a, "--port") == 0 && cur != NULL) {
            if (cmn_parse_uint(v, 1, 65535, &n) != CMN_OK) {
                fprintf(stderr, "vtoken: --port %s: must be 1..65535\n", v);
                return 2;
            }
            cur->port = (unsigned)n;
        } else if (strcmp(a, "--set") == 0 && cur != NULL) {
            if (set_kv(&cur->cfg, v, "--set") != 0)
                return 2;
        } else if (strcmp(a, "--config") == 0 && cur != NULL) {
            if (load_config(&cur->cfg, v) != 0)
                return 2;
        } else if (strcmp(a, "--host") == 0) {
            host = v;
        } else if (strcmp(a, "--log") == 0) {
            logpath = v;
        } else if (strcmp(a, "--log-level") == 0) {
            if (cmn_log_level_parse(v, &level) != CMN_OK) {
                fprintf(stderr, "vtoken: --log-level %s: error|warn|notice|info|debug\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "vtoken: unknown or misplaced option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (ncards == 0) {
        usage(stderr);
        return 2;
    }
    if (cmn_log_open(logpath, level) != CMN_OK) {
        fprintf(stderr, "vtoken: cannot open log %s\n", logpath);
        return 1;
    }
    for (size_t i = 0; i < ncards; i++) {
        if (vt_config_finish(&cards[i].cfg, err, sizeof(err)) != CMN_OK ||
            vt_card_open(cards[i].state, &cards[i].cfg, &open_cards[i], err, sizeof(err)) !=
                CMN_OK) {
            fprintf(stderr, "vtoken: %s: %s\n", cards[i].state, err);
            rc = 1;
            goto out;
        }
        vt_vpcd_slot_init(&slots[i], open_cards[i], cards[i].state, host,
                          (uint16_t)(cards[i].port ? cards[i].port : VT_VPCD_PORT + i));
    }
    if (init != NULL)
        goto out; /* the state file is written */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() must return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    CMN_LOG(CMN_LOG_NOTICE, "vtoken.start", NULL, "cards=%zu host=%s", ncards, host);
    vt_vpcd_serve(slots, ncards, &stop_flag);
    CMN_LOG(CMN_LOG_NOTICE, "vtoken.stop", NULL, "cards=%zu", ncards);
out:
    for (size_t i = 0; i < ncards; i++) {
        if (open_cards[i] != NULL && vt_card_save(open_cards[i], err, sizeof(err)) != CMN_OK) {
            fprintf(stderr, "vtoken: %s\n", err);
            rc = 1;
        }
        vt_card_close(open_cards[i]);
    }
    cmn_log_close();
    return rc;
}
