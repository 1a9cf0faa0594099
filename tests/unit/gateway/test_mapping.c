/* tests/unit/gateway/test_mapping.c - token type resolution (tps-protocol §6.2): entries in
 * mapping.order, the first whose filters all pass wins; CUID ranges need 20 characters and
 * compare case-insensitively; applet version filters; no match ends with status 18. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw_fixture.h"

static const char mapping_cfg[] =
    "op.enroll.mappingResolver=enrollMap\n"
    "mappingResolver.enrollMap.mapping.order=range, atr ,proto,short\n"
    "mappingResolver.enrollMap.mapping.range.filter.tokenCUID.start=40907901001F00000000\n"
    "mappingResolver.enrollMap.mapping.range.filter.tokenCUID.end=40907901001fFFFFFFFF\n"
    "mappingResolver.enrollMap.mapping.range.filter.tokenType=soKey\n"
    "mappingResolver.enrollMap.mapping.range.target.tokenType=soKey\n"
    "mappingResolver.enrollMap.mapping.atr.filter.tokenATR=3BFF14\n"
    "mappingResolver.enrollMap.mapping.atr.target.tokenType=atrKey\n"
    "mappingResolver.enrollMap.mapping.proto.filter.appletMajorVersion=1\n"
    "mappingResolver.enrollMap.mapping.proto.filter.appletMinorVersion=1\n"
    "mappingResolver.enrollMap.mapping.proto.target.tokenType=userKey\n"
    "mappingResolver.enrollMap.mapping.short.filter.tokenCUID.start=40\n"
    "mappingResolver.enrollMap.mapping.short.target.tokenType=never\n";

/* Resolves for a token with the given CUID, protocol version and extensions blob. */
static int
resolve(struct tps_env *env, const char *cuid, uint8_t major, uint8_t minor, const char *ext,
        char *type, size_t cap)
{
    struct tps_session s;
    enum tps_rc rc;
    int status;

    tps_session_init(&s, env, NULL, "127.0.0.1");
    snprintf(s.tok.cuid_hex, sizeof(s.tok.cuid_hex), "%s", cuid);
    s.tok.have_cuid = true;
    s.tok.proto_major = major;
    s.tok.proto_minor = minor;
    assert_int_equal(cmn_tpsext_parse(&s.ext, ext), CMN_OK);
    rc = tps_resolve_type(&s, "enroll");
    snprintf(type, cap, "%s", s.tok.type);
    status = rc == TPS_OK ? 0 : s.end_status;
    tps_session_cleanup(&s);
    return status;
}

static void
test_mapping_first_match_wins(void **state)
{
    struct gw_fix f;
    struct tps_env env;
    char type[64];

    (void)state;
    gw_fix_init(&f);
    assert_int_equal(gw_fix_load(&f, mapping_cfg, NULL), TPS_OK);
    memset(&env, 0, sizeof(env));
    env.cfg = f.cfg;
    /* in the range and asking for soKey */
    assert_int_equal(resolve(&env, "40907901001F12345678", 1, 1, "tokenType=soKey", type, 64), 0);
    assert_string_equal(type, "soKey");
    /* outside the range: the ATR entry, then the protocol entry */
    assert_int_equal(
        resolve(&env, "50907901001F12345678", 1, 1, "tokenType=soKey&tokenATR=3BFF14", type, 64),
        0);
    assert_string_equal(type, "atrKey");
    assert_int_equal(resolve(&env, "50907901001F12345678", 1, 1, "tokenType=soKey", type, 64), 0);
    assert_string_equal(type, "userKey");
    /* nothing matches: protocol 2.0, and the entry with a short CUID bound never passes */
    assert_int_equal(resolve(&env, "40907901001F12345678", 2, 0, "tokenType=userKey", type, 64),
                     18);
    tps_config_free(f.cfg);
    f.cfg = NULL;
    gw_fix_cleanup(&f);
}

static void
test_mapping_without_resolver_uses_extension(void **state)
{
    struct gw_fix f;
    struct tps_env env;
    char type[64];

    (void)state;
    gw_fix_init(&f);
    assert_int_equal(gw_fix_load(&f,
                                 "op.enroll.mappingResolver=none\n"
                                 "config.Profiles.soKey.state=Disabled\n"
                                 "config.Profiles.userKey.state=Enabled\n",
                                 NULL),
                     TPS_OK);
    memset(&env, 0, sizeof(env));
    env.cfg = f.cfg;
    assert_int_equal(resolve(&env, "40907901001F12345678", 1, 1, "tokenType=userKey", type, 64), 0);
    assert_string_equal(type, "userKey");
    assert_int_equal(resolve(&env, "40907901001F12345678", 1, 1, "clientVersion=x", type, 64), 18);
    /* a disabled profile (tps-protocol §6.2, Java status 26) */
    assert_int_equal(resolve(&env, "40907901001F12345678", 1, 1, "tokenType=soKey", type, 64), 26);
    /* a type that could escape its configuration key is refused */
    assert_int_equal(resolve(&env, "40907901001F12345678", 1, 1, "tokenType=a.b", type, 64), 18);
    gw_fix_cleanup(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping_first_match_wins),
        cmocka_unit_test(test_mapping_without_resolver_uses_extension),
    };
    cmn_log_set_level(CMN_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
