/* tests/unit/common/test_log.c - log line shape, escaping against injection, redaction of
 * secret fields, APDU dump allow-list, file and audit sinks, concurrent writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

/* table-driven cases pass templates from arrays */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"

/* Captures lines from the sink callback. */
struct capture {
    char text[64 * 1024];
    size_t len;
    unsigned lines;
};
static struct capture cap;

static void
capture_sink(void *arg, enum cmn_log_level level, const char *line, size_t len)
{
    struct capture *c = arg;

    (void)level;
    assert_int_equal(strlen(line), len);
    assert_true(len > 0 && line[len - 1] == '\n');
    if (c->len + len < sizeof(c->text)) {
        memcpy(c->text + c->len, line, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    c->lines++;
}

static int
setup(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof(cap));
    cmn_log_set_sink(capture_sink, &cap);
    cmn_log_set_level(CMN_LOG_DEBUG);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    cmn_log_set_sink(NULL, NULL);
    return 0;
}

static unsigned
count_char(const char *s, char ch)
{
    unsigned n = 0;

    for (; *s; s++)
        n += *s == ch;
    return n;
}

static void
test_log_line_shape(void **state)
{
    (void)state;
    CMN_LOG(CMN_LOG_WARN, "backend.down", "7f3a", "svc=tks url=%s fails=%u", "https://tks2:8443",
            3u);
    assert_int_equal(cap.lines, 1);
    /* 2025-03-02T10:02:11.123Z warn backend.down sid=7f3a svc=tks url=... fails=3 */
    assert_int_equal(cap.text[4], '-');
    assert_int_equal(cap.text[10], 'T');
    assert_int_equal(cap.text[23], 'Z');
    assert_string_equal(cap.text + 24,
                        " warn backend.down sid=7f3a svc=tks url=https://tks2:8443 fails=3\n");
}

static void
test_log_level_filter_skips_formatting(void **state)
{
    int evaluated = 0;

    (void)state;
    cmn_log_set_level(CMN_LOG_NOTICE);
    CMN_LOG(CMN_LOG_DEBUG, "x", NULL, "n=%d", ++evaluated);
    assert_int_equal(evaluated, 0); /* the macro tests the level first */
    assert_int_equal(cap.lines, 0);
    CMN_LOG(CMN_LOG_NOTICE, "x", NULL, "n=%d", ++evaluated);
    assert_int_equal(evaluated, 1);
    assert_int_equal(cap.lines, 1);
    assert_true(cmn_log_enabled(CMN_LOG_ERROR));
    assert_false(cmn_log_enabled(CMN_LOG_INFO));
}

static void
test_log_level_parse(void **state)
{
    enum cmn_log_level l;

    (void)state;
    assert_int_equal(cmn_log_level_parse("DEBUG", &l), CMN_OK);
    assert_int_equal(l, CMN_LOG_DEBUG);
    assert_int_equal(cmn_log_level_parse("warn", &l), CMN_OK);
    assert_int_equal(l, CMN_LOG_WARN);
    assert_int_equal(cmn_log_level_parse("warning", &l), CMN_EINVAL);
    assert_int_equal(cmn_log_level_parse(NULL, &l), CMN_EINVAL);
    assert_string_equal(cmn_log_level_name(CMN_LOG_NOTICE), "notice");
}

/* Table: template + one string argument → exact formatted output. */
struct fmt_case {
    const char *fmt;
    const char *arg;
    const char *want;
};

static void
test_log_escaping_table(void **state)
{
    static const struct fmt_case cases[] = {
        {"user=%s", "alice", "ev user=alice"},
        {"user=%s", "", "ev user=\"\""},
        {"user=%s", "a b", "ev user=\"a b\""},
        /* a hostile value cannot end the line or add a field */
        {"user=%s", "x\n2025-01-01T00:00:00Z error forged", "ev user=\"x\\n2025-01-01T00:00:00Z error forged\""},
        {"user=%s", "x result=ok", "ev user=\"x result=ok\""},
        {"user=%s", "a\"b", "ev user=\"a\\\"b\""},
        {"user=%s", "back\\slash", "ev user=\"back\\\\slash\""},
        {"user=%s", "cr\rtab\tnul\x01", "ev user=\"cr\\rtab\\tnul\\x01\""},
        {"err=\"%s\"", "he said \"hi\"\n", "ev err=\"he said \\\"hi\\\"\\n\""},
        /* key position: only [A-Za-z0-9_.-] */
        {"%s=1", "a b=c", "ev a_b_c=1"},
        {"url=https://%s/x", "h", "ev url=https://h/x"},
        {"msg=%.3s", "abcdef", "ev msg=abc"},
        {"msg=%5s|", "ab", "ev msg=\"   ab\"|"},
        {"msg=%s", "caf\xc3\xa9", "ev msg=caf\xc3\xa9"},
    };

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char out[512];

        cmn_log_format(out, sizeof(out), "ev", NULL, cases[k].fmt, cases[k].arg);
        assert_string_equal(out, cases[k].want);
    }
}

static void
test_log_numeric_conversions(void **state)
{
    char out[512];

    (void)state;
    cmn_log_format(out, sizeof(out), "ev", "s1",
                   "a=%d b=%u c=%ld d=%llu e=%zu f=%x g=%04X h=%c i=%% j=%.2f k=%*d l=%-3d|",
                   -5, 7u, -9L, 18446744073709551615ULL, (size_t)42, 255u, 0xabu, 'q', 1.5, 4,
                   12, 1);
    assert_string_equal(out, "ev sid=s1 a=-5 b=7 c=-9 d=18446744073709551615 e=42 f=ff g=00AB "
                             "h=q i=% j=1.50 k=\"  12\" l=\"1  \"|");
    /* an unsupported directive ends the line visibly instead of misreading arguments */
    cmn_log_format(out, sizeof(out), "ev", NULL, "a=%d b=%q c=%s", 1, "x");
    assert_string_equal(out, "ev a=1 b= <bad-format>");
    /* %c with a newline cannot break the line either */
    cmn_log_format(out, sizeof(out), "ev", NULL, "c=%c", '\n');
    assert_string_equal(out, "ev c=\"\\n\"");
}

static void
test_log_pin_never_reaches_output(void **state)
{
    static const char *const secret_fields[] = {
        "pin",           "new_pin",    "PIN",         "password",        "PASSWORD",
        "key",           "master_key", "sessionKey",  "encSessionKey",   "kek_wrapped_desKey",
        "kekKey",        "kek",        "cryptogram",  "hostCryptogram",  "card_cryptogram",
        "challenge",     "host_challenge", "nonce",   "keySetData",      "userPassword",
        "tks.sharedSecret", "drm_trans_desKey", "old_pin", "authorization", "cookie",
    };
    const char *pin = "482913";

    (void)state;
    for (size_t k = 0; k < sizeof(secret_fields) / sizeof(secret_fields[0]); k++) {
        char fmt[128], out[512];

        /* the name given literally, quoted, and through a %s key */
        snprintf(fmt, sizeof(fmt), "op=enroll %s=%%s cuid=40907901001F12345678",
                 secret_fields[k]);
        memset(&cap, 0, sizeof(cap));
        cmn_log_write(CMN_LOG_INFO, "login", "s", fmt, pin);
        assert_null(strstr(cap.text, pin));
        assert_non_null(strstr(cap.text, "=<redacted> cuid=40907901001F12345678"));

        cmn_log_format(out, sizeof(out), "ev", NULL, "%s=\"%s\" n=%d", secret_fields[k], pin, 5);
        assert_null(strstr(out, pin));
        assert_non_null(strstr(out, "=<redacted> n=5"));
    }
    /* several conversions in one secret value are all consumed and hidden */
    {
        char out[256];

        cmn_log_format(out, sizeof(out), "ev", NULL, "pin=%s%d%s after=%s", "48", 29, "13",
                       "ok");
        assert_string_equal(out, "ev pin=<redacted> after=ok");
    }
}

static void
test_log_non_secret_names_shown(void **state)
{
    static const char *const names[] = {"keyVersion", "key_info", "keySet", "cuid", "msn",
                                        "pin_reset", "tokenType", "newKeyInfo"};

    (void)state;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        assert_false(cmn_log_is_secret_key(names[k], strlen(names[k])));
    assert_true(cmn_log_is_secret_key("PASSWORD", 8));
    assert_true(cmn_log_is_secret_key("kekSessionKey", 13));
}

static void
test_log_truncates_long_lines(void **state)
{
    char *big = malloc(10000);

    (void)state;
    assert_non_null(big);
    memset(big, 'A', 9999);
    big[9999] = '\0';
    CMN_LOG(CMN_LOG_INFO, "big", NULL, "v=%s", big);
    assert_int_equal(cap.lines, 1);
    assert_true(cap.len <= CMN_LOG_LINE_MAX);
    assert_int_equal(count_char(cap.text, '\n'), 1);
    assert_memory_equal(cap.text + cap.len - 4, "...\n", 4);
    free(big);
}

static void
test_log_event_and_sid_sanitised(void **state)
{
    char out[256];

    (void)state;
    cmn_log_format(out, sizeof(out), "bad event\n", "a b\nc", "x=1");
    assert_string_equal(out, "bad_event_ sid=\"a b\\nc\" x=1");
    cmn_log_format(out, sizeof(out), NULL, NULL, "literal\nnewline=1");
    assert_string_equal(out, "- literal\\nnewline=1");
}

static void
test_log_apdu_dump_allow_list(void **state)
{
    /* CREATE PIN with the PIN "password" in clear (plain, before wrapping) */
    static const uint8_t create_pin[] = {0x84, 0x40, 0x00, 0x7F, 0x08, 'p', 'a', 's', 's',
                                         'w',  'o',  'r',  'd'};
    static const uint8_t verify[] = {0xB0, 0x42, 0x00, 0x00, 0x04, '1', '2', '3', '4'};
    static const uint8_t get_data[] = {0x80, 0xCA, 0x9F, 0x7F, 0x2D};
    static const uint8_t select[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0x62, 0x76,
                                     0x01, 0xFF, 0x00, 0x00, 0x00};
    static const uint8_t nonce_resp[] = {1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00};
    static const uint8_t status_resp[] = {0x01, 0x01, 0x90, 0x00};
    static const uint8_t ins_secret[] = {0x42, 0x40, 0x04, 0x44, 0xD8, 0x0A, 0x82, 0x50};

    (void)state;
    cmn_log_apdu_cmd(CMN_LOG_DEBUG, "s1", create_pin, sizeof(create_pin));
    assert_null(strstr(cap.text, "7061737377"));
    assert_null(strstr(cap.text, "password"));
    assert_non_null(strstr(cap.text, "apdu.cmd sid=s1 cla=84 ins=40 p1=00 p2=7F lc=08 len=13 "
                                     "data=<redacted>\n"));
    cmn_log_apdu_cmd(CMN_LOG_DEBUG, "s1", verify, sizeof(verify));
    assert_null(strstr(cap.text, "31323334"));
    cmn_log_apdu_cmd(CMN_LOG_DEBUG, "s1", get_data, sizeof(get_data));
    assert_non_null(strstr(cap.text, "ins=CA p1=9F p2=7F le=2D\n"));
    cmn_log_apdu_cmd(CMN_LOG_DEBUG, NULL, select, sizeof(select));
    assert_non_null(strstr(cap.text, "data=627601FF000000\n"));
    cmn_log_apdu_resp(CMN_LOG_DEBUG, NULL, 0x42, nonce_resp, sizeof(nonce_resp));
    assert_non_null(strstr(cap.text, "ins=42 sw=9000 len=8 data=<redacted>\n"));
    assert_null(strstr(cap.text, "0102030405060708"));
    cmn_log_apdu_resp(CMN_LOG_DEBUG, NULL, 0x3C, status_resp, sizeof(status_resp));
    assert_non_null(strstr(cap.text, "ins=3C sw=9000 len=2 data=0101\n"));
    for (size_t k = 0; k < sizeof(ins_secret); k++) {
        assert_false(cmn_log_apdu_shows(ins_secret[k], false));
        assert_false(cmn_log_apdu_shows(ins_secret[k], true));
    }
    assert_true(cmn_log_apdu_shows(0xA4, false));
    /* disabled level: nothing */
    cmn_log_set_level(CMN_LOG_INFO);
    cap.lines = 0;
    cmn_log_apdu_cmd(CMN_LOG_DEBUG, NULL, select, sizeof(select));
    assert_int_equal(cap.lines, 0);
}

static void
read_file(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void
test_log_file_sink(void **state)
{
    char dir[] = "/tmp/test_log_XXXXXX", path[128], text[4096];
    struct stat st;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tpsgw.log", dir);
    cmn_log_set_sink(NULL, NULL);
    assert_int_equal(cmn_log_open(path, CMN_LOG_INFO), CMN_OK);
    CMN_LOG(CMN_LOG_INFO, "one", NULL, "a=1");
    CMN_LOG(CMN_LOG_DEBUG, "hidden", NULL, "a=2");
    /* reopen (SIGHUP after rotation) keeps appending */
    assert_int_equal(cmn_log_open(path, CMN_LOG_INFO), CMN_OK);
    CMN_LOG(CMN_LOG_ERROR, "two", NULL, "pin=%s", "1234");
    cmn_log_close();
    read_file(path, text, sizeof(text));
    assert_non_null(strstr(text, " info one a=1\n"));
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, " error two pin=<redacted>\n"));
    assert_null(strstr(text, "1234"));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 007, 0);
    assert_int_equal(cmn_log_open("/nonexistent-dir/x.log", CMN_LOG_INFO), CMN_EIO);
    unlink(path);
    rmdir(dir);
}

static void
test_log_audit_sink(void **state)
{
    char dir[] = "/tmp/test_audit_XXXXXX", path[128], text[4096];
    struct stat st;

    (void)state;
    cmn_audit_close();
    /* no audit file: the operation must be told */
    assert_int_equal(cmn_audit("enroll", NULL, "cuid=%s", "X"), CMN_EIO);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    assert_int_equal(cmn_audit_open(path, true), CMN_OK);
    assert_int_equal(cmn_audit("enroll", "s9", "actor=%s cuid=%s outcome=success new_pin=%s",
                               "jdoe", "40907901001F12345678", "9999"),
                     CMN_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    read_file(path, text, sizeof(text));
    assert_non_null(strstr(text, " audit enroll sid=s9 actor=jdoe cuid=40907901001F12345678 "
                                 "outcome=success new_pin=<redacted>\n"));
    assert_null(strstr(text, "9999"));
    cmn_audit_close();
    unlink(path);
    rmdir(dir);
    /* a full device makes the write fail and the caller learns it */
    if (access("/dev/full", W_OK) == 0) {
        assert_int_equal(cmn_audit_open("/dev/full", false), CMN_OK);
        assert_int_equal(cmn_audit("format", NULL, "cuid=%s", "X"), CMN_EIO);
        cmn_audit_close();
    }
}

#define THREADS 8
#define PER_THREAD 200

static void *
writer(void *arg)
{
    for (int k = 0; k < PER_THREAD; k++)
        CMN_LOG(CMN_LOG_INFO, "thr", NULL, "t=%ld k=%d pad=%s", (long)(intptr_t)arg, k,
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    return NULL;
}

static void
test_log_threads_never_interleave(void **state)
{
    char dir[] = "/tmp/test_logt_XXXXXX", path[128];
    pthread_t th[THREADS];
    char *text = malloc(1 << 20);
    FILE *f;
    size_t n;
    unsigned lines = 0;

    (void)state;
    assert_non_null(text);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.log", dir);
    cmn_log_set_sink(NULL, NULL);
    assert_int_equal(cmn_log_open(path, CMN_LOG_INFO), CMN_OK);
    for (long k = 0; k < THREADS; k++)
        assert_int_equal(pthread_create(&th[k], NULL, writer, (void *)(intptr_t)k), 0);
    for (int k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    cmn_log_close();
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = '\0';
    for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        assert_non_null(strstr(p, " info thr t="));
        assert_non_null(strstr(p, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
        assert_int_equal(count_char(p, '='), 3);
        lines++;
    }
    assert_int_equal(lines, THREADS * PER_THREAD);
    free(text);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_line_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_level_filter_skips_formatting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_level_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_escaping_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_numeric_conversions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_pin_never_reaches_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_non_secret_names_shown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_truncates_long_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_event_and_sid_sanitised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_apdu_dump_allow_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_file_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_audit_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_threads_never_interleave, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
