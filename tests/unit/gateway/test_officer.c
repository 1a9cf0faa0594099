/* tests/unit/gateway/test_officer.c - officer-only token types (gateway/officer.h) as the
 * mapping applies them: a type without officerOnly passes untouched; an officer-only type over
 * plain HTTP, or over TLS without a verified client certificate, or without a staff directory,
 * ends with status 26 and a why naming the officer check. The LDAP mapping itself is exercised
 * by tests/integration/73-admin-so.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "gw_fixture.h"

static const char officer_cfg[] = "op.format.mappingResolver=none\n"
                                  "op.format.soKey.officerOnly=true\n"
                                  "op.format.userKey.officerOnly=false\n";

/* Resolves the type asked for in tokenType for format over ssl (NULL: plain HTTP). Returns
 * the END_OP status (0 = allowed); [out] why. */
static int
check(struct tps_env *env, const char *type, SSL *ssl, char *why, size_t cap)
{
    struct tps_session s;
    char ext[80];
    enum tps_rc rc;
    int status;

    tps_session_init(&s, env, NULL, "127.0.0.1");
    snprintf(s.tok.cuid_hex, sizeof(s.tok.cuid_hex), "40907901001F00000001");
    s.tok.have_cuid = true;
    s.ssl = ssl;
    snprintf(ext, sizeof(ext), "tokenType=%s", type);
    assert_int_equal(cmn_tpsext_parse(&s.ext, ext), CMN_OK);
    rc = tps_resolve_type(&s, "format");
    assert_string_equal(s.tok.type, type);
    assert_string_equal(s.officer, "");
    snprintf(why, cap, "%s", s.why);
    status = rc == TPS_OK ? 0 : s.end_status;
    tps_session_cleanup(&s);
    return status;
}

static void
test_officer_only_refusals(void **state)
{
    struct gw_fix f;
    struct tps_env env;
    SSL_CTX *ctx;
    SSL *ssl;
    char why[400];

    (void)state;
    gw_fix_init(&f);
    assert_int_equal(gw_fix_load(&f, officer_cfg, NULL), TPS_OK);
    memset(&env, 0, sizeof(env));
    env.cfg = f.cfg;
    ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    ssl = SSL_new(ctx);
    assert_non_null(ssl);

    /* not officer-only: allowed over plain HTTP, no officer recorded */
    assert_int_equal(check(&env, "userKey", NULL, why, sizeof(why)), 0);
    assert_string_equal(why, "");
    /* officer-only over plain HTTP */
    assert_int_equal(check(&env, "soKey", NULL, why, sizeof(why)), 26);
    assert_non_null(strstr(why, "officer check"));
    assert_non_null(strstr(why, "op.format.soKey.officerOnly"));
    assert_non_null(strstr(why, "plain HTTP"));
    /* over TLS, but the client sent no certificate */
    assert_int_equal(check(&env, "soKey", ssl, why, sizeof(why)), 26);
    assert_non_null(strstr(why, "no verified client certificate"));

    SSL_free(ssl);
    SSL_CTX_free(ctx);
    tps_config_free(f.cfg);
    f.cfg = NULL;
    gw_fix_cleanup(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_officer_only_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
