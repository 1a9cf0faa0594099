/* tests/unit/common/test_tpsmsg.c - the TPS message codec: every chunk of the worked examples
 * of tps-protocol §9.1 and §9.2 (the failure variant included) parses and is re-serialised
 * byte for byte; round trips of every type; hostile bodies, prefixes and framer feeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdbool.h>

#include "common/tpsmsg.h"

/* The chunks of tps-protocol §9.1 (format) and §9.2 (enroll and its wrong-password variant):
 * the HTTP chunk size the example shows, and the chunk payload (one framed message). */
static const struct example {
    unsigned chunk; /* hex size shown in the example */
    const char *wire;
} examples[] = {
    /* §9.1 */
    { 0x73, "s=109&msg_type=2&operation=5&extensions=tokenType%3DuserKey%26clientVersion%3D"
            "TPSClient+1%2E0%26statusUpdate%3Dtrue" },
    { 0x33, "s=46&msg_type=9&pdu_size=5&pdu_data=%00%A4%04%00%00" },
    { 0x5e, "s=89&msg_type=10&pdu_size=20&pdu_data=o%10%84%08%A0%00%00%00%03%00%00%00%A5%04%9F"
            "e%01%FF%90%00" },
    { 0x4f, "s=74&msg_type=9&pdu_size=14&pdu_data=%00%A4%04%00%08%A0%00%00%00%03%00%00%00%00" },
    { 0x2b, "s=38&msg_type=10&pdu_size=2&pdu_data=%90%00" },
    { 0x33, "s=46&msg_type=9&pdu_size=5&pdu_data=%80%CA%9F%7F%2D" },
    { 0xac, "s=166&msg_type=10&pdu_size=47&pdu_data=%9F%7F%2A%A0%01%92%03G%91%01%03%00%00%124%"
            "06%07%08%C9%04%05G%90%01%12G%90%01%13%00%00%00%00%00%00%00%00%00%00%00%00%01%02%"
            "03%04%90%00" },
    { 0x4c, "s=71&msg_type=9&pdu_size=13&pdu_data=%00%A4%04%00%07%62%76%01%FF%00%00%00%00" },
    { 0x33, "s=46&msg_type=9&pdu_size=5&pdu_data=%B0%3C%00%00%10" },
    { 0x58, "s=83&msg_type=10&pdu_size=18&pdu_data=%01%01%01%04%00%00+%FF%01%00+%00%01%00%01%00"
            "%90%00" },
    { 0x33, "s=46&msg_type=9&pdu_size=5&pdu_data=%B0%70%00%00%04" },
    { 0x31, "s=44&msg_type=10&pdu_size=6&pdu_data=Xv%80r%90%00" },
    { 0x26, "s=33&msg_type=3&invalid_pw=0&blocked=0" },
    { 0x36, "s=49&msg_type=4&screen_name=jdoe&password=Secret%2E123" },
    { 0x33, "s=46&msg_type=9&pdu_size=5&pdu_data=%80%CA%00%66%2D" },
    { 0x29, "s=36&msg_type=10&pdu_size=2&pdu_data=j%88" },
    { 0x4c, "s=71&msg_type=9&pdu_size=13&pdu_data=%80%50%00%00%08%11%22%33%44%55%66%77%88" },
    { 0x7d, "s=119&msg_type=10&pdu_size=30&pdu_data=%A0%01%92%03%04%05%06%07%08%C9%01%01%88%99%"
            "AA%BB%CC%DD%EE%FF%01%23Eg%89%AB%CD%EF%90%00" },
    { 0x64, "s=95&msg_type=9&pdu_size=21&pdu_data=%84%82%03%00%10%FE%DC%BA%98%76%54%32%10%A1%B2"
            "%C3%D4%E5%F6%07%18" },
    { 0x46, "s=65&msg_type=14&current_state=10&next_task_name=PROGRESS_APPLET_BLOCK" },
    { 0x21, "s=28&msg_type=15&current_state=10" },
    { 0x3f, "s=58&msg_type=14&current_state=100&next_task_name=PROGRESS_DONE" },
    { 0x22, "s=29&msg_type=15&current_state=100" },
    { 0x2f, "s=42&msg_type=13&operation=5&result=0&message=0" },
    /* §9.2 */
    { 0xd2, "s=204&msg_type=2&operation=1&extensions=tokenType%3DuserKey%26clientVersion%3DESC"
            "+1%2E0%2E1%26tokenATR%3D3BFF1400FF8131FE458025A00000005657534336353003003B%26"
            "statusUpdate%3Dtrue%26extendedLoginRequest%3Dtrue%26" },
    { 0x33, "s=46&msg_type=9&pdu_size=5&pdu_data=%B0%F2%00%00%01" },
    { 0x2e, "s=41&msg_type=10&pdu_size=3&pdu_data=%07%90%00" },
    { 0x155, "s=335&msg_type=16&invalid_pw=0&blocked=0&title=LDAP+Authentication&description="
             "This+authenticates+user+against+the+LDAP+directory.&required_parameter0=id%3DUID"
             "%26name%3DLDAP+User+ID%26desc%3DLDAP+User+ID%26type%3Dstring%26option%3D&required_"
             "parameter1=id%3DPASSWORD%26name%3DLDAP+Password%26desc%3DLDAP+Password%26type%3D"
             "password%26option%3D" },
    { 0x2f, "s=42&msg_type=17&UID=jdoe&PASSWORD=Secret%2E123" },
    { 0x33, "s=46&msg_type=11&minimum_length=4&maximum_length=10" },
    { 0x21, "s=28&msg_type=12&new_pin=1234abcd" },
    { 0x49, "s=68&msg_type=14&current_state=10&next_task_name=PROGRESS_PROCESS_PROFILE" },
    { 0x48, "s=67&msg_type=14&current_state=15&next_task_name=PROGRESS_KEY_GENERATION" },
    { 0x21, "s=28&msg_type=15&current_state=10" },
    { 0x92, "s=140&msg_type=9&pdu_size=36&pdu_data=%84%0C%04%05%1F%00%08%00%00%01%10%5A%5A%5A%5A"
            "%5A%5A%5A%5A%5A%5A%5A%5A%5A%5A%5A%5A%00%01%02%03%04%05%06%07%08" },
    { 0x31, "s=44&msg_type=10&pdu_size=4&pdu_data=%01%0B%90%00" },
    { 0x45, "s=64&msg_type=14&current_state=52&next_task_name=PROGRESS_ENROLL_CERT" },
    { 0x21, "s=28&msg_type=15&current_state=52" },
    { 0x4c, "s=71&msg_type=9&pdu_size=13&pdu_data=%84%F0%0F%00%08%11%22%33%44%55%66%77%88" },
    { 0x4a, "s=69&msg_type=14&current_state=100&next_task_name=PROGRESS_DONE_ENROLLMENT" },
    { 0x2f, "s=42&msg_type=13&operation=1&result=0&message=0" },
    /* §9.2, failure variant */
    { 0x2b, "s=38&msg_type=17&UID=jdoe&PASSWORD=wrong%21" },
    { 0x30, "s=43&msg_type=13&operation=1&result=1&message=14" },
};

/* The first example whose wire text contains `needle`. */
static const char *
ex_find(const char *needle)
{
    for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++)
        if (strstr(examples[i].wire, needle) != NULL)
            return examples[i].wire;
    fail_msg("no example with %s", needle);
    return NULL;
}

/* Parses the example containing `needle`. */
static void
parse_ex(struct cmn_tpsmsg *m, const char *needle)
{
    const char *w = ex_find(needle);

    if (cmn_tpsmsg_parse_framed(m, (const uint8_t *)w, strlen(w), 0) != CMN_OK)
        fail_msg("%s: %s", needle, m->err);
}

static unsigned long
get_u(struct cmn_tpsmsg *m, const char *name)
{
    unsigned long v = 0;

    assert_int_equal(cmn_tpsmsg_get_uint(m, name, 100000, &v), CMN_OK);
    return v;
}

/* Decoded text of a field, in a caller-freed string ("" if absent). */
static char *
get_s(struct cmn_tpsmsg *m, const char *name)
{
    struct cmn_buf b;
    char *s;
    enum cmn_rc rc;

    cmn_buf_init(&b, 4096);
    rc = cmn_tpsmsg_get_str(m, name, &b);
    assert_true(rc == CMN_OK || rc == CMN_ENOTFOUND);
    s = strdup(cmn_buf_cstr(&b));
    assert_non_null(s);
    cmn_buf_cleanup(&b);
    return s;
}

/* Re-serialises a parsed message with the builders, from its typed fields only. */
static enum cmn_rc
rebuild(struct cmn_tpsmsg *m, struct cmn_buf *out)
{
    uint8_t pdu[300];
    size_t n = 0;
    enum cmn_rc rc = CMN_EINVAL;
    char *a, *b;

    switch (m->type) {
    case CMN_TPS_MSG_BEGIN_OP:
        a = get_s(m, "extensions");
        rc = cmn_tpsmsg_build_begin_op(out, (int)get_u(m, "operation"), a);
        free(a);
        break;
    case CMN_TPS_MSG_LOGIN_REQUEST:
        rc = cmn_tpsmsg_build_login_request(out, get_u(m, "invalid_pw"), get_u(m, "blocked"));
        break;
    case CMN_TPS_MSG_LOGIN_RESPONSE:
        a = get_s(m, "screen_name");
        b = get_s(m, "password");
        rc = cmn_tpsmsg_build_login_response(out, a, b);
        free(a);
        free(b);
        break;
    case CMN_TPS_MSG_TOKEN_PDU_REQUEST:
        assert_int_equal(cmn_tpsmsg_get_pdu(m, pdu, sizeof(pdu), &n), CMN_OK);
        rc = cmn_tpsmsg_build_token_pdu_request(out, pdu, n);
        break;
    case CMN_TPS_MSG_TOKEN_PDU_RESPONSE:
        assert_int_equal(cmn_tpsmsg_get_pdu(m, pdu, sizeof(pdu), &n), CMN_OK);
        rc = cmn_tpsmsg_build_token_pdu_response(out, pdu, n);
        break;
    case CMN_TPS_MSG_NEW_PIN_REQUEST:
        rc = cmn_tpsmsg_build_new_pin_request(out, (unsigned)get_u(m, "minimum_length"),
                                              (unsigned)get_u(m, "maximum_length"));
        break;
    case CMN_TPS_MSG_NEW_PIN_RESPONSE:
        rc = cmn_tpsmsg_build_new_pin_response(out, cmn_tpsmsg_raw(m, "new_pin"));
        break;
    case CMN_TPS_MSG_END_OP:
        rc = cmn_tpsmsg_build_end_op(out, (int)get_u(m, "operation"), (int)get_u(m, "result"),
                                     (int)get_u(m, "message"));
        break;
    case CMN_TPS_MSG_STATUS_UPDATE_REQUEST:
        rc = cmn_tpsmsg_build_status_update_request(out, (unsigned)get_u(m, "current_state"),
                                                    cmn_tpsmsg_raw(m, "next_task_name"));
        break;
    case CMN_TPS_MSG_STATUS_UPDATE_RESPONSE:
        rc = cmn_tpsmsg_build_status_update_response(out, (unsigned)get_u(m, "current_state"));
        break;
    case CMN_TPS_MSG_EXTENDED_LOGIN_REQUEST: {
        struct cmn_tps_authparam params[4];
        struct cmn_tpsext parsed[4];
        char *texts[4];
        size_t np = 0;

        for (; np < 4; np++) {
            char name[32];

            snprintf(name, sizeof(name), "required_parameter%zu", np);
            if (cmn_tpsmsg_raw(m, name) == NULL)
                break;
            /* The inner text splits like the extensions blob: on '&', then at '='. */
            texts[np] = get_s(m, name);
            cmn_tpsext_init(&parsed[np]);
            assert_int_equal(cmn_tpsext_parse(&parsed[np], texts[np]), CMN_OK);
            params[np].id = cmn_tpsext_get(&parsed[np], "id");
            params[np].name = cmn_tpsext_get(&parsed[np], "name");
            params[np].desc = cmn_tpsext_get(&parsed[np], "desc");
            params[np].type = cmn_tpsext_get(&parsed[np], "type");
            params[np].option = cmn_tpsext_get(&parsed[np], "option");
        }
        a = get_s(m, "title");
        b = get_s(m, "description");
        rc = cmn_tpsmsg_build_ext_login_request(out, get_u(m, "invalid_pw"), get_u(m, "blocked"),
                                                a, b, params, np);
        free(a);
        free(b);
        for (size_t i = 0; i < np; i++) {
            cmn_tpsext_cleanup(&parsed[i]);
            free(texts[i]);
        }
        break;
    }
    case CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE: {
        struct cmn_tps_kv kv[CMN_TPSMSG_MAX_PAIRS];
        char *vals[CMN_TPSMSG_MAX_PAIRS];
        size_t nk = 0;

        for (size_t i = 0; i < m->npairs; i++) {
            if (strcmp(m->pairs[i].name, "msg_type") == 0)
                continue;
            vals[nk] = get_s(m, m->pairs[i].name);
            kv[nk].name = m->pairs[i].name;
            kv[nk].value = vals[nk];
            nk++;
        }
        rc = cmn_tpsmsg_build_ext_login_response(out, kv, nk);
        for (size_t i = 0; i < nk; i++)
            free(vals[i]);
        break;
    }
    default:
        fail_msg("unexpected type %d", m->type);
    }
    return rc;
}

static void
test_tpsmsg_examples_parse_and_rebuild_exactly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
        const struct example *ex = &examples[i];
        size_t len = strlen(ex->wire);
        struct cmn_tpsmsg m;
        struct cmn_buf out;

        /* The example's chunk size is the length of the whole framed message. */
        if (len != ex->chunk)
            fail_msg("example %zu: length %zu, chunk size 0x%x", i, len, ex->chunk);
        cmn_tpsmsg_init(&m);
        if (cmn_tpsmsg_parse_framed(&m, (const uint8_t *)ex->wire, len, 0) != CMN_OK)
            fail_msg("example %zu: %s", i, m.err);
        cmn_buf_init(&out, 8192);
        assert_int_equal(rebuild(&m, &out), CMN_OK);
        if (out.len != len || memcmp(out.data, ex->wire, len) != 0)
            fail_msg("example %zu:\n want %s\n got  %s", i, ex->wire, cmn_buf_cstr(&out));
        cmn_buf_cleanup(&out);
        cmn_tpsmsg_cleanup(&m);
    }
}

/* tests/vectors/tps-examples.txt holds the same messages with their direction; check it
 * against the list above so the two cannot drift apart. Run from the repository root. */
static void
test_tpsmsg_vectors_file_matches(void **state)
{
    FILE *f = fopen("tests/vectors/tps-examples.txt", "r");
    char line[1024];
    size_t i = 0;

    (void)state;
    if (f == NULL)
        fail_msg("cannot open tests/vectors/tps-examples.txt (run from the repository root)");
    while (fgets(line, sizeof(line), f) != NULL) {
        char dir, *sp, *wire;
        unsigned long chunk;
        size_t len = strlen(line);
        struct cmn_tpsmsg m;
        bool client;

        if (line[0] == '#' || line[0] == '\n')
            continue;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        dir = line[0];
        assert_true(dir == 'C' || dir == 'S');
        chunk = strtoul(line + 2, &sp, 16);
        assert_true(*sp == ' ');
        wire = sp + 1;
        assert_true(i < sizeof(examples) / sizeof(examples[0]));
        assert_int_equal(chunk, examples[i].chunk);
        assert_string_equal(wire, examples[i].wire);
        cmn_tpsmsg_init(&m);
        assert_int_equal(cmn_tpsmsg_parse_framed(&m, (const uint8_t *)wire, strlen(wire), 0),
                         CMN_OK);
        /* Directions of §2.1. */
        client = m.type == CMN_TPS_MSG_BEGIN_OP || m.type == CMN_TPS_MSG_LOGIN_RESPONSE ||
                 m.type == CMN_TPS_MSG_TOKEN_PDU_RESPONSE ||
                 m.type == CMN_TPS_MSG_NEW_PIN_RESPONSE ||
                 m.type == CMN_TPS_MSG_STATUS_UPDATE_RESPONSE ||
                 m.type == CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE;
        assert_int_equal(dir, client ? 'C' : 'S');
        cmn_tpsmsg_cleanup(&m);
        i++;
    }
    fclose(f);
    assert_int_equal(i, sizeof(examples) / sizeof(examples[0]));
}

static void
test_tpsmsg_example_fields(void **state)
{
    struct cmn_tpsmsg m;
    struct cmn_tpsext ext;
    uint8_t pdu[64];
    size_t n = 0;
    char *s;

    (void)state;
    cmn_tpsmsg_init(&m);
    cmn_tpsext_init(&ext);

    /* §9.1 Begin Op: format with three extensions. */
    parse_ex(&m, "operation=5&extensions");
    assert_int_equal(m.type, CMN_TPS_MSG_BEGIN_OP);
    assert_int_equal(get_u(&m, "operation"), CMN_TPS_OP_FORMAT);
    assert_int_equal(cmn_tpsext_parse(&ext, cmn_tpsmsg_raw(&m, "extensions")), CMN_OK);
    assert_int_equal(ext.n, 3);
    assert_string_equal(cmn_tpsext_get(&ext, "tokenType"), "userKey");
    assert_string_equal(cmn_tpsext_get(&ext, "clientVersion"), "TPSClient 1.0");
    assert_true(cmn_tpsext_is_true(&ext, "statusUpdate"));
    assert_false(cmn_tpsext_has(&ext, "extendedLoginRequest"));

    /* §9.1 CPLC answer: CUID and MSN bytes. */
    parse_ex(&m, "pdu_size=47");
    assert_int_equal(cmn_tpsmsg_get_pdu(&m, pdu, sizeof(pdu), &n), CMN_OK);
    assert_int_equal(n, 47);
    assert_memory_equal(pdu, "\x9f\x7f\x2a\xa0\x01\x92\x03\x47\x91", 9);
    assert_memory_equal(pdu + 41, "\x01\x02\x03\x04\x90\x00", 6);

    /* §9.1 Get Status answer: 0x20 travels as '+'. */
    parse_ex(&m, "pdu_size=18");
    assert_int_equal(cmn_tpsmsg_get_pdu(&m, pdu, sizeof(pdu), &n), CMN_OK);
    assert_int_equal(n, 18);
    assert_int_equal(pdu[6], 0x20);
    assert_int_equal(pdu[10], 0x20);

    /* §9.1 login. */
    parse_ex(&m, "screen_name=jdoe");
    s = get_s(&m, "password");
    assert_string_equal(s, "Secret.123");
    free(s);

    /* §9.2 Begin Op: ESC's trailing '&' leaves no empty extension. */
    parse_ex(&m, "operation=1&extensions");
    assert_int_equal(get_u(&m, "operation"), CMN_TPS_OP_ENROLL);
    assert_int_equal(cmn_tpsext_parse(&ext, cmn_tpsmsg_raw(&m, "extensions")), CMN_OK);
    assert_int_equal(ext.n, 5);
    assert_string_equal(cmn_tpsext_get(&ext, "clientVersion"), "ESC 1.0.1");
    assert_string_equal(cmn_tpsext_get(&ext, "tokenATR"),
                        "3BFF1400FF8131FE458025A00000005657534336353003003B");
    assert_true(cmn_tpsext_has(&ext, "extendedLoginRequest"));

    /* §9.2 extended login answer and the failure End Op. */
    parse_ex(&m, "wrong%21");
    assert_int_equal(m.type, CMN_TPS_MSG_EXTENDED_LOGIN_RESPONSE);
    s = get_s(&m, "PASSWORD");
    assert_string_equal(s, "wrong!");
    free(s);
    parse_ex(&m, "message=14");
    assert_int_equal(get_u(&m, "result"), CMN_TPS_RESULT_FAILURE);
    assert_int_equal(get_u(&m, "message"), CMN_TPS_STATUS_LOGIN);
    assert_string_equal(cmn_tps_status_name(CMN_TPS_STATUS_LOGIN), "LOGIN");

    cmn_tpsext_cleanup(&ext);
    cmn_tpsmsg_cleanup(&m);
}

/* Builds, frames through the server framer, parses: the types not in §9 included. */
static void
test_tpsmsg_every_type_roundtrips(void **state)
{
    static const uint8_t apdu[] = { 0x84, 0x82, 0x03, 0x00, 0x10, 0x26, 0x3D, 0x25 };
    static const uint8_t ans[] = { 0x26, 0x3D, 0x25, 0x20, 0x2B, 0x90, 0x00 };
    static const struct cmn_tps_kv kv[] = { { "UID", "j doe&x" }, { "PASSWORD", "p=w%d+" } };
    static const struct cmn_tps_authparam ap[] = { { "UID", "User & ID", "d=1", "string", "" } };
    struct cmn_buf out;
    struct cmn_tpsframer f;
    struct cmn_tpsmsg m;
    uint8_t pdu[32];
    size_t n = 0;
    int types[20], nt = 0;
    char *s;

    (void)state;
    cmn_buf_init(&out, 65536);
    assert_int_equal(cmn_tpsmsg_build_begin_op(&out, 3, NULL), CMN_OK);
    types[nt++] = 2;
    assert_int_equal(cmn_tpsmsg_build_login_request(&out, true, false), CMN_OK);
    types[nt++] = 3;
    assert_int_equal(cmn_tpsmsg_build_login_response(&out, "a&b", "p w"), CMN_OK);
    types[nt++] = 4;
    assert_int_equal(cmn_tpsmsg_build_secureid_request(&out, true, true), CMN_OK);
    types[nt++] = 5;
    assert_int_equal(cmn_tpsmsg_build_secureid_response(&out, "123456", "99"), CMN_OK);
    types[nt++] = 6;
    assert_int_equal(cmn_tpsmsg_build_asq_request(&out, "Pet's name?"), CMN_OK);
    types[nt++] = 7;
    assert_int_equal(cmn_tpsmsg_build_asq_response(&out, "Rex & co"), CMN_OK);
    types[nt++] = 8;
    assert_int_equal(cmn_tpsmsg_build_token_pdu_request(&out, apdu, sizeof(apdu)), CMN_OK);
    types[nt++] = 9;
    assert_int_equal(cmn_tpsmsg_build_token_pdu_response(&out, ans, sizeof(ans)), CMN_OK);
    types[nt++] = 10;
    assert_int_equal(cmn_tpsmsg_build_new_pin_request(&out, 4, 10), CMN_OK);
    types[nt++] = 11;
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&out, "Ab1!#$"), CMN_OK);
    types[nt++] = 12;
    assert_int_equal(cmn_tpsmsg_build_end_op(&out, 0, 1, 1), CMN_OK);
    types[nt++] = 13;
    assert_int_equal(cmn_tpsmsg_build_status_update_request(&out, 0, "PROGRESS_X"), CMN_OK);
    types[nt++] = 14;
    assert_int_equal(cmn_tpsmsg_build_status_update_response(&out, 55), CMN_OK);
    types[nt++] = 15;
    assert_int_equal(cmn_tpsmsg_build_ext_login_request(&out, false, true, "T i&t", NULL, ap, 1),
                     CMN_OK);
    types[nt++] = 16;
    assert_int_equal(cmn_tpsmsg_build_ext_login_response(&out, kv, 2), CMN_OK);
    types[nt++] = 17;

    /* Feed the whole stream in 7-byte pieces: the framer must not care how it is cut. */
    cmn_tpsframer_init(&f, 0);
    cmn_tpsmsg_init(&m);
    {
        size_t off = 0;
        int got = 0;

        while (got < nt) {
            enum cmn_rc rc = cmn_tpsframer_next(&f, &m);

            if (rc == CMN_ESHORT) {
                size_t k = out.len - off < 7 ? out.len - off : 7;

                assert_true(k > 0);
                assert_int_equal(cmn_tpsframer_feed(&f, out.data + off, k), CMN_OK);
                off += k;
                continue;
            }
            if (rc != CMN_OK)
                fail_msg("message %d: %s", got, f.err);
            assert_int_equal(m.type, types[got]);
            switch (m.type) {
            case 4:
                s = get_s(&m, "screen_name");
                assert_string_equal(s, "a&b");
                free(s);
                s = get_s(&m, "password");
                assert_string_equal(s, "p w");
                free(s);
                break;
            case 5:
                assert_int_equal(get_u(&m, "pin_required"), 1);
                assert_int_equal(get_u(&m, "next_value"), 1);
                break;
            case 6:
                assert_string_equal(cmn_tpsmsg_raw(&m, "value"), "123456");
                break;
            case 7:
                s = get_s(&m, "question");
                assert_string_equal(s, "Pet's name?");
                free(s);
                break;
            case 8:
                s = get_s(&m, "answer");
                assert_string_equal(s, "Rex & co");
                free(s);
                break;
            case 9:
                assert_int_equal(cmn_tpsmsg_get_pdu(&m, pdu, sizeof(pdu), &n), CMN_OK);
                assert_int_equal(n, sizeof(apdu));
                assert_memory_equal(pdu, apdu, n);
                break;
            case 10:
                assert_int_equal(cmn_tpsmsg_get_pdu(&m, pdu, sizeof(pdu), &n), CMN_OK);
                assert_int_equal(n, sizeof(ans));
                assert_memory_equal(pdu, ans, n);
                break;
            case 12:
                assert_string_equal(cmn_tpsmsg_raw(&m, "new_pin"), "Ab1!#$");
                break;
            case 13:
                assert_int_equal(get_u(&m, "operation"), 0);
                assert_int_equal(get_u(&m, "message"), 1);
                break;
            case 15:
                assert_int_equal(get_u(&m, "current_state"), 55);
                break;
            case 16: {
                struct cmn_tpsext e;

                cmn_tpsext_init(&e);
                s = get_s(&m, "required_parameter0");
                assert_string_equal(s, "id=UID&name=User & ID&desc=d=1&type=string&option=");
                free(s);
                s = get_s(&m, "title");
                assert_string_equal(s, "T i&t");
                free(s);
                assert_null(cmn_tpsmsg_raw(&m, "description"));
                cmn_tpsext_cleanup(&e);
                break;
            }
            case 17:
                s = get_s(&m, "UID");
                assert_string_equal(s, "j doe&x");
                free(s);
                s = get_s(&m, "PASSWORD");
                assert_string_equal(s, "p=w%d+");
                free(s);
                break;
            default:
                break;
            }
            got++;
        }
        assert_int_equal(off, out.len);
    }
    assert_int_equal(cmn_tpsframer_pending(&f), 0);
    assert_int_equal(cmn_tpsframer_next(&f, &m), CMN_ESHORT);
    cmn_tpsmsg_cleanup(&m);
    cmn_tpsframer_cleanup(&f);
    cmn_buf_cleanup(&out);
}

static void
test_tpsmsg_parse_rules(void **state)
{
    struct cmn_tpsmsg m;
    unsigned long v = 0;
    const char *body;

    (void)state;
    cmn_tpsmsg_init(&m);
    /* Pairs without '=', with an empty name, and `s` are skipped; order does not matter
     * (tpsclient sends pdu_data first); empty values are absent; the last duplicate wins. */
    body = "pdu_data=%90%00&&noeq&=x&s=999&msg_type=10&pdu_size=7&pdu_size=2&extra=&extra2=1";
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)body, strlen(body), 0), CMN_OK);
    assert_int_equal(m.type, 10);
    assert_null(cmn_tpsmsg_raw(&m, "s"));
    assert_null(cmn_tpsmsg_raw(&m, "noeq"));
    assert_null(cmn_tpsmsg_raw(&m, "extra"));
    assert_string_equal(cmn_tpsmsg_raw(&m, "extra2"), "1");
    assert_string_equal(cmn_tpsmsg_raw(&m, "pdu_size"), "2");
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "extra", 10, &v), CMN_ENOTFOUND);
    assert_string_equal(m.err, "extra missing");
    /* A value keeps every '=' after the first. */
    body = "msg_type=4&password=a=b==";
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)body, strlen(body), 0), CMN_OK);
    assert_string_equal(cmn_tpsmsg_raw(&m, "password"), "a=b==");
    /* The C++ End Op quirk: CR LF "0" CR LF after the number is ignored (§8). */
    body = "msg_type=13&operation=5&result=0&message=0\r\n0\r\n";
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)body, strlen(body), 0), CMN_OK);
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "message", 46, &v), CMN_OK);
    assert_int_equal(v, 0);
    body = "msg_type=13&result=1x&message=99&operation=-1";
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)body, strlen(body), 0), CMN_OK);
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "result", 1, &v), CMN_EPROTO);
    assert_string_equal(m.err, "result '1x' is not a decimal number");
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "message", 46, &v), CMN_ETOOBIG);
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "operation", 5, &v), CMN_EPROTO);
    body = "msg_type=13&message=99999999999999999999999999";
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)body, strlen(body), 0), CMN_OK);
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "message", (unsigned long)-1, &v), CMN_ETOOBIG);
    cmn_tpsmsg_cleanup(&m);
}

static void
test_tpsmsg_parse_hostile(void **state)
{
    static const struct {
        const char *body;
        enum cmn_rc rc;
        const char *err;
    } cases[] = {
        { "", CMN_EPROTO, "msg_type missing" },
        { "operation=1", CMN_EPROTO, "msg_type missing" },
        { "msg_type=&operation=1", CMN_EPROTO, "msg_type missing" },
        { "msg_type=1", CMN_EPROTO, "msg_type '1' is not a known message type (2..17)" },
        { "msg_type=18", CMN_EPROTO, "msg_type '18' is not a known message type (2..17)" },
        { "msg_type=abc", CMN_EPROTO, "msg_type 'abc' is not a known message type (2..17)" },
        { "msg_type=99999999999999999999", CMN_EPROTO, NULL },
        { "msg_type=2 ", CMN_OK, NULL },
    };
    struct cmn_tpsmsg m;
    char big[10001];

    (void)state;
    cmn_tpsmsg_init(&m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)cases[i].body,
                                          strlen(cases[i].body), 0),
                         cases[i].rc);
        if (cases[i].err != NULL)
            assert_string_equal(m.err, cases[i].err);
        if (cases[i].rc != CMN_OK)
            assert_int_equal(m.type, CMN_TPS_MSG_NONE);
    }
    /* NUL byte. */
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)"msg_type=3\0x", 12, 0), CMN_EPROTO);
    assert_string_equal(m.err, "message contains a NUL byte at offset 10");
    /* Too long for the default maximum, fine with a larger one. */
    memset(big, 'a', sizeof(big));
    memcpy(big, "msg_type=3&x=", 13);
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)big, 10000, 0), CMN_ETOOBIG);
    assert_string_equal(m.err, "message length 10000 exceeds maximum 9999");
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)big, 9999, 0), CMN_OK);
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)big, 10001, 20000), CMN_OK);
    /* 50 pairs are fine, 51 are not (duplicates count). */
    {
        struct cmn_buf b;

        cmn_buf_init(&b, 4096);
        assert_int_equal(cmn_buf_puts(&b, "msg_type=15"), CMN_OK);
        for (int i = 1; i < 50; i++)
            assert_int_equal(cmn_buf_printf(&b, "&k%d=v", i % 3), CMN_OK);
        assert_int_equal(cmn_tpsmsg_parse(&m, b.data, b.len, 0), CMN_OK);
        assert_int_equal(m.npairs, 4);
        assert_int_equal(cmn_buf_puts(&b, "&k=v"), CMN_OK);
        assert_int_equal(cmn_tpsmsg_parse(&m, b.data, b.len, 0), CMN_EPROTO);
        assert_string_equal(m.err, "message has more than 50 pairs");
        cmn_buf_cleanup(&b);
    }
    cmn_tpsmsg_cleanup(&m);
}

static void
test_tpsmsg_pdu_checks(void **state)
{
    static const struct {
        const char *body;
        enum cmn_rc rc;
        const char *err;
    } cases[] = {
        { "msg_type=10&pdu_size=5&pdu_data=%01%02%90%00", CMN_EPROTO,
          "pdu_size 5 does not match decoded pdu_data length 4" },
        { "msg_type=10&pdu_size=1&pdu_data=%90", CMN_EPROTO,
          "card answer of 1 bytes has no status word" },
        { "msg_type=10&pdu_data=%90%00", CMN_EPROTO, "pdu_size missing" },
        { "msg_type=10&pdu_size=2", CMN_EPROTO, "pdu_data missing" },
        { "msg_type=10&pdu_size=2&pdu_data=%9", CMN_EPROTO, "pdu_data: bad % sequence" },
        { "msg_type=10&pdu_size=two&pdu_data=%90%00", CMN_EPROTO,
          "pdu_size 'two' is not a decimal number" },
        { "msg_type=9&pdu_size=1&pdu_data=%00", CMN_OK, "" },
        { "msg_type=10&pdu_size=2&pdu_data=%9f%0a", CMN_OK, "" }, /* lowercase accepted */
        { "msg_type=10&pdu_size=9&pdu_data=123456789", CMN_ETOOBIG,
          "pdu_data: decoded value longer than 8 bytes" },
    };
    struct cmn_tpsmsg m;
    uint8_t out[8];
    size_t n = 0;

    (void)state;
    cmn_tpsmsg_init(&m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)cases[i].body,
                                          strlen(cases[i].body), 0),
                         CMN_OK);
        m.err[0] = '\0';
        assert_int_equal(cmn_tpsmsg_get_pdu(&m, out, sizeof(out), &n), cases[i].rc);
        assert_string_equal(m.err, cases[i].err);
    }
    cmn_tpsmsg_cleanup(&m);
}

static void
test_tpsmsg_bad_percent_in_text(void **state)
{
    struct cmn_tpsmsg m;
    struct cmn_buf b;
    const char *body = "msg_type=4&screen_name=jd%ZZoe&password=Qz%2";

    (void)state;
    cmn_tpsmsg_init(&m);
    cmn_buf_init_secret(&b, 64);
    assert_int_equal(cmn_tpsmsg_parse(&m, (const uint8_t *)body, strlen(body), 0), CMN_OK);
    assert_int_equal(cmn_tpsmsg_get_str(&m, "screen_name", &b), CMN_EPROTO);
    assert_string_equal(m.err, "screen_name: bad % sequence at offset 2");
    assert_int_equal(cmn_tpsmsg_get_str(&m, "password", &b), CMN_EPROTO);
    /* The error never shows the value (it may be a password). */
    assert_null(strstr(m.err, "Qz"));
    assert_string_equal(m.err, "password: bad % sequence at offset 2");
    assert_int_equal(b.len, 0);
    cmn_buf_cleanup(&b);
    cmn_tpsmsg_cleanup(&m);
}

static void
test_tpsmsg_framer_prefixes(void **state)
{
    static const struct {
        const char *in;
        enum cmn_rc rc;
        const char *err;
    } cases[] = {
        { "x=5&", CMN_EPROTO, "message does not start with \"s=\" (first byte 0x78)" },
        { "s:5&", CMN_EPROTO, "message does not start with \"s=\" (second byte 0x3A)" },
        { "s=&msg_type=3", CMN_EPROTO, "no digit after \"s=\" (byte 0x26)" },
        { "s=123456&", CMN_EPROTO, "length prefix has more than 5 digits" },
        { "s=12a&", CMN_EPROTO, "length prefix ends with byte 0x61 instead of '&'" },
        { "s=10000&", CMN_ETOOBIG, "announced message length 10000 exceeds maximum 9999" },
        { "s=99999&", CMN_ETOOBIG, "announced message length 99999 exceeds maximum 9999" },
        { "s", CMN_ESHORT, "" },
        { "s=", CMN_ESHORT, "" },
        { "s=12345", CMN_ESHORT, "" },
        { "s=33&msg_type=3", CMN_ESHORT, "" },
        { "s=0&", CMN_EPROTO, "msg_type missing" },
        { "s=11&msg_type=2", CMN_ESHORT, "" },
        { "s=00010&msg_type=3", CMN_OK, "" }, /* leading zeros are digits */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmn_tpsframer f;
        struct cmn_tpsmsg m;
        enum cmn_rc rc;

        cmn_tpsframer_init(&f, 0);
        cmn_tpsmsg_init(&m);
        assert_int_equal(cmn_tpsframer_feed(&f, (const uint8_t *)cases[i].in,
                                            strlen(cases[i].in)),
                         CMN_OK);
        rc = cmn_tpsframer_next(&f, &m);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d want %d (%s)", i, cases[i].in, rc, cases[i].rc,
                     f.err);
        assert_string_equal(f.err, cases[i].err);
        cmn_tpsmsg_cleanup(&m);
        cmn_tpsframer_cleanup(&f);
    }
}

static void
test_tpsmsg_framer_merged_and_flood(void **state)
{
    const char *two = "s=28&msg_type=15&current_state=10s=29&msg_type=15&current_state=100";
    struct cmn_tpsframer f;
    struct cmn_tpsmsg m;
    unsigned long v = 0;
    uint8_t junk[300];

    (void)state;
    cmn_tpsframer_init(&f, 100);
    cmn_tpsmsg_init(&m);
    assert_int_equal(cmn_tpsframer_feed(&f, (const uint8_t *)two, strlen(two)), CMN_OK);
    assert_int_equal(cmn_tpsframer_next(&f, &m), CMN_OK);
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "current_state", 100, &v), CMN_OK);
    assert_int_equal(v, 10);
    assert_int_equal(cmn_tpsframer_next(&f, &m), CMN_OK);
    assert_int_equal(cmn_tpsmsg_get_uint(&m, "current_state", 100, &v), CMN_OK);
    assert_int_equal(v, 100);
    assert_int_equal(cmn_tpsframer_next(&f, &m), CMN_ESHORT);
    /* A client that floods is cut off: at most two maximal messages may be pending. */
    memset(junk, 'a', sizeof(junk));
    assert_int_equal(cmn_tpsframer_feed(&f, junk, 200), CMN_OK);
    assert_int_equal(cmn_tpsframer_feed(&f, junk, 100), CMN_ETOOBIG);
    assert_string_equal(f.err, "more than 216 request bytes pending");
    cmn_tpsmsg_cleanup(&m);
    cmn_tpsframer_cleanup(&f);
}

static void
test_tpsmsg_parse_framed_checks_length(void **state)
{
    struct cmn_tpsmsg m;

    (void)state;
    cmn_tpsmsg_init(&m);
    assert_int_equal(cmn_tpsmsg_parse_framed(&m, (const uint8_t *)"s=11&msg_type=3", 15, 0),
                     CMN_EPROTO);
    assert_string_equal(m.err, "length prefix s=11 does not match body length 10");
    assert_int_equal(cmn_tpsmsg_parse_framed(&m, (const uint8_t *)"s=10", 4, 0), CMN_EPROTO);
    assert_int_equal(cmn_tpsmsg_parse_framed(&m, (const uint8_t *)"msg_type=3", 10, 0),
                     CMN_EPROTO);
    assert_int_equal(cmn_tpsmsg_parse_framed(&m, (const uint8_t *)"s=10&msg_type=3", 15, 0),
                     CMN_OK);
    assert_int_equal(m.type, 3);
    cmn_tpsmsg_cleanup(&m);
}

static void
test_tpsmsg_extensions(void **state)
{
    struct cmn_tpsext e;
    struct cmn_buf b;
    static const struct cmn_tpsext_item items[] = {
        { "tokenType", "userKey" }, { "statusUpdate", "true" }, { "locale", "" } };
    static const struct cmn_tpsext_item bad[] = { { "a&b", "x" } };

    (void)state;
    cmn_tpsext_init(&e);
    /* The legacy raclient's half-raw blob (§2.2). */
    assert_int_equal(cmn_tpsext_parse(&e, "tokenType=userKey%26statusUpdate%3DTRUE"), CMN_OK);
    assert_string_equal(cmn_tpsext_get(&e, "tokenType"), "userKey");
    assert_true(cmn_tpsext_is_true(&e, "statusUpdate"));
    /* tpsclient's "%%26" joiner (§7.3): decodes to "true%", which is not "true". */
    assert_int_equal(cmn_tpsext_parse(&e, "statusUpdate%3Dtrue%%26tokenType%3DuserKey"), CMN_OK);
    assert_string_equal(cmn_tpsext_get(&e, "statusUpdate"), "true%");
    assert_false(cmn_tpsext_is_true(&e, "statusUpdate"));
    assert_string_equal(cmn_tpsext_get(&e, "tokenType"), "userKey");
    /* Empty pairs, no '=', empty names skipped; inner values not decoded twice; last wins. */
    assert_int_equal(cmn_tpsext_parse(&e, "%26%26a%3D1%26noeq%26%3Dv%26b%3Dx%2541%26a%3D2%26c%3D"),
                     CMN_OK);
    assert_int_equal(e.n, 3);
    assert_string_equal(cmn_tpsext_get(&e, "a"), "2");
    assert_string_equal(cmn_tpsext_get(&e, "b"), "x%41");
    assert_string_equal(cmn_tpsext_get(&e, "c"), "");
    assert_true(cmn_tpsext_has(&e, "c"));
    assert_null(cmn_tpsext_get(&e, "noeq"));
    assert_int_equal(cmn_tpsext_parse(&e, NULL), CMN_OK);
    assert_int_equal(e.n, 0);
    assert_int_equal(cmn_tpsext_parse(&e, "a%3D%00"), CMN_EPROTO);
    assert_string_equal(e.err, "extensions contain a NUL byte");
    /* Too many distinct names. */
    cmn_buf_init(&b, 4096);
    for (int i = 0; i <= CMN_TPSEXT_MAX; i++)
        assert_int_equal(cmn_buf_printf(&b, "n%d%%3Dv%%26", i), CMN_OK);
    assert_int_equal(cmn_tpsext_parse(&e, cmn_buf_cstr(&b)), CMN_EPROTO);
    assert_string_equal(e.err, "more than 32 extensions");
    cmn_buf_reset(&b);
    /* Join, then build: the form the §9.1 Begin Op uses. */
    assert_int_equal(cmn_tpsext_join(&b, items, 3), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "tokenType=userKey&statusUpdate=true&locale=");
    assert_int_equal(cmn_tpsext_join(&b, bad, 1), CMN_EINVAL);
    assert_int_equal(b.len, strlen("tokenType=userKey&statusUpdate=true&locale="));
    cmn_buf_cleanup(&b);
    cmn_tpsext_cleanup(&e);
}

static void
test_tpsmsg_builders_refuse(void **state)
{
    struct cmn_buf b;
    uint8_t apdu[262] = { 0 };
    static const struct cmn_tps_kv badkv[] = { { "msg_type", "3" } };
    static const struct cmn_tps_kv badkv2[] = { { "a b", "3" } };
    static const struct cmn_tps_authparam noid[] = { { "", "n", "d", "string", "" } };

    (void)state;
    cmn_buf_init(&b, 100);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, "12 34"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, "12&34"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, "12=34"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, "12%34"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, "12+34"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, "12\x01"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, "12\xc3\xa9"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_response(&b, ""), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_token_pdu_request(&b, apdu, 0), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_token_pdu_request(&b, apdu, 262), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_token_pdu_response(&b, apdu, 1), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_end_op(&b, 6, 0, 0), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_end_op(&b, 1, 2, 0), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_end_op(&b, 1, 1, 47), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_status_update_request(&b, 101, "X"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_status_update_request(&b, 1, "A B"), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_status_update_request(&b, 1, NULL), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_new_pin_request(&b, 5, 4), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_ext_login_response(&b, badkv, 1), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_ext_login_response(&b, badkv2, 1), CMN_EINVAL);
    assert_int_equal(cmn_tpsmsg_build_ext_login_request(&b, 0, 0, "t", "d", noid, 1), CMN_EINVAL);
    assert_int_equal(b.len, 0);
    /* Output cap: the message does not fit, out stays unchanged. */
    assert_int_equal(cmn_buf_puts(&b, "keep"), CMN_OK);
    assert_int_equal(cmn_tpsmsg_build_token_pdu_request(&b, apdu, 100), CMN_ETOOBIG);
    assert_int_equal(b.len, 4);
    cmn_buf_cleanup(&b);
}

static void
test_tpsmsg_names(void **state)
{
    (void)state;
    assert_string_equal(cmn_tps_msg_type_name(2), "BEGIN_OP");
    assert_string_equal(cmn_tps_msg_type_name(17), "EXTENDED_LOGIN_RESPONSE");
    assert_string_equal(cmn_tps_msg_type_name(1), "UNKNOWN");
    assert_string_equal(cmn_tps_msg_type_name(-1), "UNKNOWN");
    assert_string_equal(cmn_tps_msg_type_name(18), "UNKNOWN");
    assert_string_equal(cmn_tps_op_name(3), "reset_pin");
    assert_string_equal(cmn_tps_op_name(9), "unknown");
    assert_string_equal(cmn_tps_status_name(28), "CONN_LOST");
    assert_string_equal(cmn_tps_status_name(46), "SYMKEY_256_UPGRADE");
    assert_string_equal(cmn_tps_status_name(47), "UNKNOWN");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tpsmsg_examples_parse_and_rebuild_exactly),
        cmocka_unit_test(test_tpsmsg_vectors_file_matches),
        cmocka_unit_test(test_tpsmsg_example_fields),
        cmocka_unit_test(test_tpsmsg_every_type_roundtrips),
        cmocka_unit_test(test_tpsmsg_parse_rules),
        cmocka_unit_test(test_tpsmsg_parse_hostile),
        cmocka_unit_test(test_tpsmsg_pdu_checks),
        cmocka_unit_test(test_tpsmsg_bad_percent_in_text),
        cmocka_unit_test(test_tpsmsg_framer_prefixes),
        cmocka_unit_test(test_tpsmsg_framer_merged_and_flood),
        cmocka_unit_test(test_tpsmsg_parse_framed_checks_length),
        cmocka_unit_test(test_tpsmsg_extensions),
        cmocka_unit_test(test_tpsmsg_builders_refuse),
        cmocka_unit_test(test_tpsmsg_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
