/* tests/sim/pki_sim.c - pki-sim: one Dogtag CA, KRA or TKS clone as a test double.
 *   pki-sim --role ca|kra|tks --config FILE [--check]
 *   pki-sim --init-ca DIR [--subject DN]      CA signing key + certificate, shared by clones
 *   pki-sim --init-kra DIR                    KRA transport (issued by DIR/ca.*) + storage keys
 *   pki-sim --p11-import --module SO --token LABEL --label L --type des3|aes --key-file F
 *           [--pin-file F]                    a readable master key for the TKS (tests) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/crypto.h"
#include "common/log.h"
#include "tests/sim/p11.h"
#include "tests/sim/server.h"
#include "tests/sim/sim.h"

static void
usage(void)
{
    fprintf(stderr,
            "usage: pki-sim --role ca|kra|tks --config FILE [--check]\n"
            "       pki-sim --init-ca DIR [--subject DN]\n"
            "       pki-sim --init-kra DIR\n"
            "       pki-sim --p11-import --module SO --token LABEL --label L --type des3|aes\n"
            "               --key-file HEXFILE [--pin-file FILE]\n");
}

static void
tks_fn(void *ctx, const struct sim_user *u, const char *path, const struct sim_form *f,
       struct sim_resp *r)
{
    sim_tks_handle(ctx, u, path, f, r);
}

static void
ca_fn(void *ctx, const struct sim_user *u, const char *path, const struct sim_form *f,
      struct sim_resp *r)
{
    sim_ca_handle(ctx, u, path, f, r);
}

static void
kra_fn(void *ctx, const struct sim_user *u, const char *path, const struct sim_form *f,
       struct sim_resp *r)
{
    sim_kra_handle(ctx, u, path, f, r);
}

/* Reads a whole small file (a key in hex, a PIN) with its trailing newline removed. */
static bool
read_small(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t got;

    if (f == NULL)
        return false;
    got = fread(out, 1, n - 1, f);
    fclose(f);
    out[got] = '\0';
    while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r'))
        out[--got] = '\0';
    return true;
}

static int
p11_import(int argc, char **argv)
{
    const char *module = NULL, *token = NULL, *label = NULL, *type = NULL, *keyfile = NULL,
               *pinfile = NULL;
    char hex[256], pin[256] = "", why[256];
    uint8_t raw[32];
    size_t rl = 0;
    struct cmn_key key;
    struct sim_p11 *p = NULL;
    int ret = 1;

    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--module") == 0)
            module = argv[i + 1];
        else if (strcmp(argv[i], "--token") == 0)
            token = argv[i + 1];
        else if (strcmp(argv[i], "--label") == 0)
            label = argv[i + 1];
        else if (strcmp(argv[i], "--type") == 0)
            type = argv[i + 1];
        else if (strcmp(argv[i], "--key-file") == 0)
            keyfile = argv[i + 1];
        else if (strcmp(argv[i], "--pin-file") == 0)
            pinfile = argv[i + 1];
    }
    if (module == NULL || token == NULL || label == NULL || type == NULL || keyfile == NULL) {
        usage();
        return 2;
    }
    memset(&key, 0, sizeof(key));
    if (!read_small(keyfile, hex, sizeof(hex)) ||
        cmn_hex_decode(hex, strlen(hex), true, raw, sizeof(raw), &rl) != CMN_OK ||
        cmn_key_set(&key, strcmp(type, "aes") == 0 ? CMN_KEY_AES : CMN_KEY_DES3, raw, rl) !=
            CMN_OK) {
        fprintf(stderr, "pki-sim: %s: not a %s key in hex\n", keyfile, type);
        goto out;
    }
    if (pinfile != NULL && !read_small(pinfile, pin, sizeof(pin))) {
        fprintf(stderr, "pki-sim: cannot read %s\n", pinfile);
        goto out;
    }
    if (sim_p11_open(module, pinfile != NULL ? pin : NULL, &p, why, sizeof(why)) != CMN_OK ||
        sim_p11_import_key(p, token, label, &key, why, sizeof(why)) != CMN_OK) {
        fprintf(stderr, "pki-sim: %s\n", why);
        goto out;
    }
    ret = 0;
out:
    sim_p11_free(p);
    cmn_key_wipe(&key);
    cmn_wipe(hex, sizeof(hex));
    cmn_wipe(raw, sizeof(raw));
    cmn_wipe(pin, sizeof(pin));
    return ret;
}

int
main(int argc, char **argv)
{
    const char *role_s = NULL, *cfgpath = NULL;
    bool check = false;
    enum sim_role role;
    const struct cmn_cfg_key *tables[4] = {sim_common_keys, NULL, NULL, NULL};
    struct cmn_cfg *cfg = NULL;
    struct cmn_buf errs;
    struct sim_store *store = NULL;
    struct sim_tks *tks = NULL;
    struct sim_ca *ca = NULL;
    struct sim_kra *kra = NULL;
    struct sim_srv *srv = NULL;
    sim_handler_fn *fn;
    void *ctx;
    enum cmn_log_level lvl;
    sigset_t set;
    int sig, ret = 1;

    cmn_buf_init(&errs, 65536);
    if (argc >= 3 && strcmp(argv[1], "--init-ca") == 0) {
        const char *subj = argc >= 5 && strcmp(argv[3], "--subject") == 0
                               ? argv[4]
                               : "CN=CA Signing Certificate,OU=pki-sim,O=Example";

        ret = sim_ca_init_dir(argv[2], subj, &errs) == CMN_OK ? 0 : 1;
        fputs(cmn_buf_cstr(&errs), stderr);
        cmn_buf_cleanup(&errs);
        return ret;
    }
    if (argc >= 3 && strcmp(argv[1], "--init-kra") == 0) {
        ret = sim_kra_init_dir(argv[2], &errs) == CMN_OK ? 0 : 1;
        fputs(cmn_buf_cstr(&errs), stderr);
        cmn_buf_cleanup(&errs);
        return ret;
    }
    if (argc >= 2 && strcmp(argv[1], "--p11-import") == 0) {
        cmn_buf_cleanup(&errs);
        return p11_import(argc, argv);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role_s = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            cfgpath = argv[++i];
        else if (strcmp(argv[i], "--check") == 0)
            check = true;
        else {
            usage();
            return 2;
        }
    }
    if (role_s == NULL || cfgpath == NULL) {
        usage();
        return 2;
    }
    if (strcmp(role_s, "ca") == 0) {
        role = SIM_ROLE_CA;
        tables[1] = sim_ca_keys;
        fn = ca_fn;
    } else if (strcmp(role_s, "kra") == 0) {
        role = SIM_ROLE_KRA;
        tables[1] = sim_kra_keys;
        fn = kra_fn;
    } else if (strcmp(role_s, "tks") == 0) {
        role = SIM_ROLE_TKS;
        tables[1] = sim_tks_keys;
        fn = tks_fn;
    } else {
        usage();
        return 2;
    }
    if (role != SIM_ROLE_TKS)
        tables[2] = sim_store_keys;
    if (cmn_cfg_load(cfgpath, tables, &cfg, &errs) != CMN_OK)
        goto out;
    if (cmn_log_level_parse(cmn_cfg_str(cfg, "pkisim.logLevel"), &lvl) != CMN_OK ||
        cmn_log_open(cmn_cfg_str(cfg, "pkisim.log"), lvl) != CMN_OK) {
        (void)cmn_buf_printf(&errs, "pkisim.log: cannot open '%s'\n",
                             cmn_cfg_str(cfg, "pkisim.log"));
        goto out;
    }
    switch (role) {
    case SIM_ROLE_TKS:
        if (sim_tks_new(cfg, &errs, &tks) != CMN_OK)
            goto out;
        ctx = tks;
        break;
    case SIM_ROLE_CA:
        if (sim_store_new(cfg, role_s, &errs, &store) != CMN_OK ||
            sim_ca_new(cfg, store, &errs, &ca) != CMN_OK)
            goto out;
        ctx = ca;
        break;
    default:
        if (sim_store_new(cfg, role_s, &errs, &store) != CMN_OK ||
            sim_kra_new(cfg, store, &errs, &kra) != CMN_OK)
            goto out;
        ctx = kra;
        break;
    }
    if (sim_srv_new(cfg, role, fn, ctx, !check, &errs, &srv) != CMN_OK)
        goto out;
    if (check) {
        ret = 0;
        goto out;
    }
    /* Signals go to this thread only; every other thread starts with them blocked. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sim_srv_start(srv) != CMN_OK) {
        (void)cmn_buf_puts(&errs, "cannot start the server threads\n");
        goto out;
    }
    CMN_LOG(CMN_LOG_NOTICE, "sim.started", NULL, "role=%s config=%s", role_s, cfgpath);
    do {
        if (sigwait(&set, &sig) != 0)
            break;
    } while (sig == SIGHUP);
    CMN_LOG(CMN_LOG_NOTICE, "sim.stopping", NULL, "role=%s signal=%d", role_s, sig);
    /* A test double may hold connections in an injected hang: do not wait for them. */
    fflush(NULL);
    _exit(0);
out:
    if (errs.len > 0)
        fprintf(stderr, "pki-sim: %s", cmn_buf_cstr(&errs));
    sim_srv_stop_free(srv);
    sim_tks_free(tks);
    sim_ca_free(ca);
    sim_kra_free(kra);
    sim_store_free(store);
    cmn_cfg_unref(cfg);
    cmn_buf_cleanup(&errs);
    return ret;
}
