/* tests/unit/gateway/test_config.c - tpsgw configuration: the shipped sample passes, and every
 * kind of error is reported with file, line and key (unknown key, bad value, cross-key rules,
 * missing required keys); typed per-operation lookups fall back to the table defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/hooks.h"
#include "gw_fixture.h"

/* Replaces every occurrence of `from` in s (in place, into out). */
static void
replace_all(const char *s, const char *from, const char *to, char *out, size_t cap)
{
    size_t o = 0, fl = strlen(from), tl = strlen(to);

    while (*s && o + tl + 1 < cap) {
        if (strncmp(s, from, fl) == 0) {
            memcpy(out + o, to, tl);
            o += tl;
            s += fl;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
}

static void
test_config_sample_passes(void **state)
{
    struct gw_fix f;
    static char text[65536], t1[65536], t2[65536];
    char path[400], sub[300];
    FILE *in;
    size_t n;
    struct cmn_buf errs;
    struct tps_config *cfg = NULL;
    struct tps_tks *tks = NULL;
    struct tps_hooks *hooks = NULL;
    char err[1024] = "";
    const char *secrets[] = {"tls/server.key", "tks-shared.hex", "tls/tps-subsystem.key",
                             "tokendb.pw"};

    (void)state;
    gw_fix_init(&f);
    in = fopen("conf/tpsgw.cfg", "r");
    assert_non_null(in);
    n = fread(text, 1, sizeof(text) - 1, in);
    text[n] = '\0';
    fclose(in);
    /* Install paths become the test directory. */
    snprintf(sub, sizeof(sub), "%s/", f.dir);
    replace_all(text, "/etc/tpsgw/", sub, t1, sizeof(t1));
    replace_all(t1, "/var/log/tpsgw/", sub, t2, sizeof(t2));
    replace_all(t2, "/usr/share/tpsgw/applets", "conf/applets", t1, sizeof(t1));
    snprintf(path, sizeof(path), "%s/tls", f.dir);
    assert_int_equal(mkdir(path, 0700), 0);
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", f.dir, secrets[i]);
        gw_write(path, i == 1 ? "000102030405060708090A0B0C0D0E0F\n" : "secret\n", 0600);
    }
    snprintf(path, sizeof(path), "%s/tpsgw.cfg", f.dir);
    gw_write(path, t1, 0644);
    cmn_buf_init(&errs, 65536);
    if (tps_config_load(path, &cfg, &errs) != TPS_OK)
        fail_msg("sample config: %s", cmn_buf_cstr(&errs));
    /* what tpsgw -t checks beyond the table */
    if (tps_tks_new(cfg, "tks1", &tks, err, sizeof(err)) != TPS_OK)
        fail_msg("tks: %s", err);
    if (tps_hooks_new(cfg, &hooks, err, sizeof(err)) != TPS_OK)
        fail_msg("hooks: %s", err);
    assert_int_equal(tks->shared.alg, CMN_KEY_AES);
    assert_string_equal(tks->keyset, "defKeySet");
    assert_int_equal(tps_config_settings(cfg)->https_port, 7889);
    assert_int_equal(tps_config_settings(cfg)->read_timeout_ms, 300000);
    assert_string_equal(tps_cfg_op_str(cfg, "format", "userKey", "update.applet.requiredVersion"),
                        "1.4.58768072");
    /* defaults of the table for keys the sample does not set */
    assert_true(tps_cfg_op_bool(cfg, "format", "soKey", "update.applet.enable"));
    assert_false(tps_cfg_op_bool(cfg, "format", "other", "issuerinfo.enable"));
    assert_string_equal(tps_cfg_str(cfg, "conn.tks1.servlet.computeSessionKey"),
                        "/tks/agent/tks/computeSessionKey");
    tps_hooks_free(hooks);
    tps_tks_free(tks);
    tps_config_free(cfg);
    cmn_buf_cleanup(&errs);
    gw_fix_cleanup(&f);
}

/* Loads the fixture base plus `extra` and expects failure with every `want` in the errors. */
static void
expect_errors(const char *extra, const char *const *want)
{
    struct gw_fix f;
    struct cmn_buf errs;

    gw_fix_init(&f);
    cmn_buf_init(&errs, 65536);
    assert_int_equal(gw_fix_load(&f, extra, &errs), TPS_ECONFIG);
    assert_null(f.cfg);
    for (size_t i = 0; want[i] != NULL; i++)
        if (strstr(cmn_buf_cstr(&errs), want[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", want[i], cmn_buf_cstr(&errs));
    cmn_buf_cleanup(&errs);
    gw_fix_cleanup(&f);
}

static void
test_config_errors_name_file_line_key(void **state)
{
    const char *const unknown[] = {"tpsgw.cfg:25: unknown key 'tps.noSuchKey'", NULL};
    const char *const range[] = {"tpsgw.cfg:25: key 'tps.maxSessions'", "between", NULL};
    const char *const both[] = {"tpsgw.cfg:25: unknown key 'foo'",
                                "tpsgw.cfg:26: key 'channel.encryption'", NULL};
    const char *const tls[] = {"key 'service.securePort': needs service.sslCertFile", NULL};
    const char *const hosts[] = {"tpsgw.cfg:25: key 'conn.tks2.hostport'", NULL};

    (void)state;
    expect_errors("tps.noSuchKey=1\n", unknown);
    expect_errors("tps.maxSessions=0\n", range);
    expect_errors("foo=bar\nchannel.encryption=maybe\n", both); /* every error is reported */
    expect_errors("service.securePort=7889\n", tls);
    expect_errors("conn.tks2.hostport=nohostport\n", hosts);
}

static void
test_config_missing_required(void **state)
{
    struct gw_fix f;
    struct cmn_buf errs;
    struct tps_config *cfg = NULL;
    char path[400];

    (void)state;
    gw_fix_init(&f);
    cmn_buf_init(&errs, 65536);
    snprintf(path, sizeof(path), "%s/min.cfg", f.dir);
    gw_write(path, "service.unsecurePort=7888\n", 0644);
    assert_int_equal(tps_config_load(path, &cfg, &errs), TPS_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs), "log.audit.file"));
    assert_non_null(strstr(cmn_buf_cstr(&errs), "tps.phoneHome.operation"));
    assert_non_null(strstr(cmn_buf_cstr(&errs), "conn.tks1.hostport"));
    cmn_buf_cleanup(&errs);
    gw_fix_cleanup(&f);
}

static void
test_config_doc_lists_keys(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);

    (void)state;
    tps_config_write_doc(m, false);
    fclose(m);
    assert_non_null(strstr(text, "conn.tks*.hostport"));
    assert_non_null(strstr(text, "tps.connection.maxMessageSize"));
    assert_non_null(strstr(text, "op.*.*.issuerinfo.value"));
    /* docs/tpsgw.md carries the generated list verbatim */
    {
        static char doc[262144];
        FILE *in = fopen("docs/tpsgw.md", "r");
        size_t n;
        assert_non_null(in);
        n = fread(doc, 1, sizeof(doc) - 1, in);
        doc[n] = '\0';
        fclose(in);
        if (strstr(doc, text) == NULL)
            fail_msg("docs/tpsgw.md is out of date: regenerate its key list with tpsgw --keys");
    }
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_sample_passes),
        cmocka_unit_test(test_config_errors_name_file_line_key),
        cmocka_unit_test(test_config_missing_required),
        cmocka_unit_test(test_config_doc_lists_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
