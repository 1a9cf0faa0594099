/* tests/unit/common/test_cfg.c - CS.cfg-style parser: line syntax, every error message shape,
 * patterns, typed lookups and defaults, host lists (IPv6), secret file permissions, children
 * enumeration, documentation output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cfg.h"

static const char *const modes[] = {"off", "on", "auto", NULL};

static const struct cmn_cfg_key gw_keys[] = {
    {.name = "service.securePort", .type = CFG_UINT, .min = 1, .max = 65535, .def = 7889,
     .doc = "HTTPS port"},
    {.name = "tps.maxSessions", .type = CFG_UINT, .min = 1, .max = 100000, .def = 2000},
    {.name = "tps.debug", .type = CFG_BOOL, .def = 0},
    {.name = "tps.mode", .type = CFG_ENUM, .words = modes, .defstr = "auto"},
    {.name = "tps.name", .type = CFG_STR, .defstr = "tpsgw"},
    {.name = "tps.logFile", .type = CFG_PATH},
    {.name = "tps.password", .type = CFG_STR, .secret = true},
    {.name = "conn.tks*.hostport", .type = CFG_HOSTLIST, .required = true,
     .doc = "TKS clones, in order"},
    {.name = "conn.ca*.hostport", .type = CFG_HOSTLIST},
    {.name = "conn.*.timeout", .type = CFG_UINT, .min = 1, .max = 600, .def = 30},
    {.name = "op.*.*.issuerinfo.value", .type = CFG_STR},
    {.name = "tks.*.mk_mappings.**", .type = CFG_STR},
    {.name = "tokendb.baseDN", .type = CFG_STR, .required = true},
    {0},
};
static const struct cmn_cfg_key ldap_keys[] = {
    {.name = "tokendb.bindPassword_file", .type = CFG_SECRET_FILE},
    {0},
};
static const struct cmn_cfg_key *const tables[] = {gw_keys, ldap_keys, NULL};

static enum cmn_rc
parse(const char *text, struct cmn_cfg **c, struct cmn_buf *errs)
{
    return cmn_cfg_parse("tpsgw.cfg", text, strlen(text), tables, c, errs);
}

static void
test_cfg_good_file_and_lookups(void **state)
{
    static const char text[] =
        "# CS.cfg style\n"
        "\n"
        "   # indented comment\n"
        "service.securePort=8443\n"
        "  tps.maxSessions = 50\r\n"
        "tps.debug=true\n"
        "tps.name=a = b  c   \t\n"
        "conn.tks1.hostport=tks1.example.org:8443 tks2.example.org:8443\n"
        "conn.tks2.hostport=[::1]:8443,127.0.0.1:9443\n"
        "conn.ca1.hostport=ca:8443\n"
        "conn.tks1.timeout=5\n"
        "op.enroll.userKey.issuerinfo.value=http://lb:8080/tps/phoneHome\n"
        "op.format.soKey.issuerinfo.value=\n"
        "tks.defKeySet.mk_mappings.#02#01=internal:new_master\n"
        "tokendb.baseDN=ou=Tokens,dc=example,dc=org";
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;
    struct cmn_cfg_hostlist hl;
    char where[64];

    (void)state;
    cmn_buf_init(&errs, 4096);
    assert_int_equal(parse(text, &c, &errs), CMN_OK);
    assert_int_equal(errs.len, 0);
    assert_non_null(c);
    assert_int_equal(cmn_cfg_uint(c, "service.securePort"), 8443);
    assert_int_equal(cmn_cfg_uint(c, "tps.maxSessions"), 50);
    assert_true(cmn_cfg_bool(c, "tps.debug"));
    assert_string_equal(cmn_cfg_str(c, "tps.name"), "a = b  c");
    assert_string_equal(cmn_cfg_str(c, "tokendb.baseDN"), "ou=Tokens,dc=example,dc=org");
    assert_string_equal(cmn_cfg_str(c, "op.format.soKey.issuerinfo.value"), "");
    assert_string_equal(cmn_cfg_str(c, "tks.defKeySet.mk_mappings.#02#01"),
                        "internal:new_master");
    /* defaults, exact and through patterns */
    assert_int_equal(cmn_cfg_enum(c, "tps.mode"), 2);
    assert_string_equal(cmn_cfg_str(c, "tps.mode"), "auto");
    assert_int_equal(cmn_cfg_uint(c, "conn.tks1.timeout"), 5);
    assert_int_equal(cmn_cfg_uint(c, "conn.kra7.timeout"), 30);
    assert_null(cmn_cfg_str(c, "tps.logFile"));
    assert_false(cmn_cfg_isset(c, "tps.mode"));
    assert_true(cmn_cfg_isset(c, "tps.debug"));
    assert_int_equal(cmn_cfg_uint(c, "no.such.key"), 0);
    /* host lists */
    assert_int_equal(cmn_cfg_hostlist(c, "conn.tks2.hostport", &hl), CMN_OK);
    assert_int_equal(hl.n, 2);
    assert_string_equal(hl.h[0].host, "::1");
    assert_true(hl.h[0].ipv6);
    assert_int_equal(hl.h[0].port, 8443);
    assert_string_equal(hl.h[1].host, "127.0.0.1");
    assert_int_equal(hl.h[1].port, 9443);
    assert_int_equal(cmn_cfg_hostlist(c, "conn.ca9.hostport", &hl), CMN_ENOTFOUND);
    assert_string_equal(cmn_cfg_where(c, "tps.debug", where, sizeof(where)), "tpsgw.cfg:6");
    assert_string_equal(cmn_cfg_where(c, "tps.mode", where, sizeof(where)), "tpsgw.cfg");
    assert_string_equal(cmn_cfg_name(c), "tpsgw.cfg");
    /* the snapshot outlives a second holder */
    assert_ptr_equal(cmn_cfg_ref(c), c);
    cmn_cfg_unref(c);
    assert_int_equal(cmn_cfg_uint(c, "tps.maxSessions"), 50);
    cmn_cfg_unref(c);
    cmn_cfg_unref(NULL);
    cmn_buf_cleanup(&errs);
}

/* Each bad config → the exact error text. */
struct bad_case {
    const char *text;
    const char *want;
};

static void
test_cfg_error_messages(void **state)
{
    static const char base[] = "tokendb.baseDN=dc=x\nconn.tks1.hostport=t:1\n";
    static const struct bad_case cases[] = {
        {"tps.maxSessions=0\n",
         "tpsgw.cfg:3: key 'tps.maxSessions' = 0: must be between 1 and 100000 (default 2000)\n"},
        {"tps.maxSessions=abc\n",
         "tpsgw.cfg:3: key 'tps.maxSessions' = abc: must be between 1 and 100000 (default "
         "2000)\n"},
        {"tps.maxSessions=-1\n",
         "tpsgw.cfg:3: key 'tps.maxSessions' = -1: must be between 1 and 100000 (default "
         "2000)\n"},
        {"tps.debug=yes\n",
         "tpsgw.cfg:3: key 'tps.debug' = yes: must be true or false (default false)\n"},
        {"tps.mode=maybe\n",
         "tpsgw.cfg:3: key 'tps.mode' = maybe: must be one of: off, on, auto (default auto)\n"},
        {"tps.x=1\n", "tpsgw.cfg:3: unknown key 'tps.x'\n"},
        {"conn.tks.hostport=a:1\n", "tpsgw.cfg:3: unknown key 'conn.tks.hostport'\n"},
        {"op.enroll.issuerinfo.value=x\n",
         "tpsgw.cfg:3: unknown key 'op.enroll.issuerinfo.value'\n"},
        {"tks.k.mk_mappings=x\n", "tpsgw.cfg:3: unknown key 'tks.k.mk_mappings'\n"},
        {"tps.name=a\ntps.name=b\n",
         "tpsgw.cfg:4: duplicate key 'tps.name' (first set at line 3)\n"},
        {"just a line\n", "tpsgw.cfg:3: expected key=value\n"},
        {" =value\n", "tpsgw.cfg:3: empty key before '='\n"},
        {"tps na me=1\n", "tpsgw.cfg:3: key 'tps na me' contains a blank or control character\n"},
        {"tps.logFile=\n", "tpsgw.cfg:3: key 'tps.logFile' = : must be a non-empty path\n"},
        {"tps.password=hunter2x\ntps.password=hunter3x\n",
         "tpsgw.cfg:4: duplicate key 'tps.password' (first set at line 3)\n"},
        {"conn.ca1.hostport=\n",
         "tpsgw.cfg:3: key 'conn.ca1.hostport' = : empty host list; expected host:port[ "
         "host:port ...]\n"},
        {"conn.ca1.hostport=ca1\n",
         "tpsgw.cfg:3: key 'conn.ca1.hostport' = ca1: entry 'ca1': missing port; expected "
         "host:port[ host:port ...]\n"},
        {"conn.ca1.hostport=ca1:\n",
         "tpsgw.cfg:3: key 'conn.ca1.hostport' = ca1:: entry 'ca1:': missing port; expected "
         "host:port[ host:port ...]\n"},
        {"conn.ca1.hostport=::1:80\n",
         "tpsgw.cfg:3: key 'conn.ca1.hostport' = ::1:80: entry '::1:80': IPv6 address must be "
         "in brackets; expected host:port[ host:port ...]\n"},
        {"conn.ca1.hostport=a:1 b:70000\n",
         "tpsgw.cfg:3: key 'conn.ca1.hostport' = a:1 b:70000: entry 'b:70000': port must be "
         "between 1 and 65535; expected host:port[ host:port ...]\n"},
        {"tps.name=bad\x01value\n", ""}, /* any text is a valid CFG_STR... */
        {"conn.tks1.timeout=0\n",
         "tpsgw.cfg:3: key 'conn.tks1.timeout' = 0: must be between 1 and 600 (default 30)\n"},
    };

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char text[1024];
        struct cmn_cfg *c = (struct cmn_cfg *)&c; /* must be reset to NULL */
        struct cmn_buf errs;
        enum cmn_rc rc;

        snprintf(text, sizeof(text), "%s%s", base, cases[k].text);
        cmn_buf_init(&errs, 4096);
        rc = parse(text, &c, &errs);
        if (cases[k].want[0] == '\0') {
            assert_int_equal(rc, CMN_OK);
            cmn_cfg_unref(c);
        } else {
            assert_int_equal(rc, CMN_ECONFIG);
            assert_null(c);
            assert_string_equal(cmn_buf_cstr(&errs), cases[k].want);
        }
        cmn_buf_cleanup(&errs);
    }
}

static void
test_cfg_reports_every_error_in_line_order(void **state)
{
    static const char text[] = "tps.maxSessions=0\n"
                               "tps.zzz=1\n"
                               "tps.debug=1\n"
                               "tps.aaa=1\n"
                               "tps.password=topsecretvalue\n"
                               "tps.password=topsecretvalue2\n";
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;

    (void)state;
    cmn_buf_init(&errs, 4096);
    assert_int_equal(parse(text, &c, &errs), CMN_ECONFIG);
    assert_string_equal(
        cmn_buf_cstr(&errs),
        "tpsgw.cfg:1: key 'tps.maxSessions' = 0: must be between 1 and 100000 (default 2000)\n"
        "tpsgw.cfg:2: unknown key 'tps.zzz'\n"
        "tpsgw.cfg:3: key 'tps.debug' = 1: must be true or false (default false)\n"
        "tpsgw.cfg:4: unknown key 'tps.aaa'\n"
        "tpsgw.cfg:6: duplicate key 'tps.password' (first set at line 5)\n"
        "tpsgw.cfg: missing required key 'conn.tks*.hostport' (at least one)\n"
        "tpsgw.cfg: missing required key 'tokendb.baseDN'\n");
    assert_null(strstr(cmn_buf_cstr(&errs), "topsecret"));
    cmn_buf_cleanup(&errs);
}

static void
test_cfg_secret_values_never_shown(void **state)
{
    static const struct cmn_cfg_key k[] = {
        {.name = "a.password", .type = CFG_STR, .secret = true, .required = true},
        {.name = "a.n", .type = CFG_UINT, .min = 1, .max = 2, .secret = true},
        {0},
    };
    static const struct cmn_cfg_key *const t[] = {k, NULL};
    static const char text[] = "a.password=\na.n=hunter2\n";
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;

    (void)state;
    cmn_buf_init(&errs, 4096);
    assert_int_equal(cmn_cfg_parse("x.cfg", text, strlen(text), t, &c, &errs), CMN_ECONFIG);
    assert_string_equal(cmn_buf_cstr(&errs),
                        "x.cfg:1: key 'a.password' = <redacted>: must not be empty\n"
                        "x.cfg:2: key 'a.n' = <redacted>: must be between 1 and 2 (default 0)\n");
    cmn_buf_cleanup(&errs);
}

static void
test_cfg_line_and_size_caps(void **state)
{
    size_t big = CMN_CFG_MAX_LINE + 100;
    char *text = malloc(big + 64);
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;

    (void)state;
    assert_non_null(text);
    memcpy(text, "tps.name=", 9);
    memset(text + 9, 'x', big - 9);
    memcpy(text + big, "\n", 2);
    cmn_buf_init(&errs, 4096);
    assert_int_equal(parse(text, &c, &errs), CMN_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs), "tpsgw.cfg:1: line longer than 4096 bytes\n"));
    cmn_buf_reset(&errs);
    assert_int_equal(cmn_cfg_parse("big", text, CMN_CFG_MAX_FILE + 1, tables, &c, &errs),
                     CMN_ETOOBIG);
    assert_null(c);
    /* a NUL byte inside a line */
    cmn_buf_reset(&errs);
    assert_int_equal(cmn_cfg_parse("nul", "tps.name=a\0b\n", 13, tables, &c, &errs),
                     CMN_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs), "nul:1: line contains a NUL byte\n"));
    free(text);
    cmn_buf_cleanup(&errs);
}

struct hl_case {
    const char *in;
    enum cmn_rc rc;
    size_t n;
    const char *host0;
    unsigned port0;
    const char *why;
};

static void
test_cfg_hostlist_table(void **state)
{
    static const struct hl_case cases[] = {
        {"a:1", CMN_OK, 1, "a", 1, ""},
        {"tks1.example.org:8443 tks2.example.org:8443", CMN_OK, 2, "tks1.example.org", 8443, ""},
        {"  a:1 ,, b:2\t", CMN_OK, 2, "a", 1, ""},
        {"[::1]:8443", CMN_OK, 1, "::1", 8443, ""},
        {"[fe80::1%eth0]:443,[2001:db8::2]:80", CMN_OK, 2, "fe80::1%eth0", 443, ""},
        {"", CMN_EINVAL, 0, NULL, 0, "empty host list"},
        {" , ", CMN_EINVAL, 0, NULL, 0, "empty host list"},
        {"a", CMN_EINVAL, 0, NULL, 0, "entry 'a': missing port"},
        {":80", CMN_EINVAL, 0, NULL, 0, "entry ':80': empty host"},
        {"a:0", CMN_EINVAL, 0, NULL, 0, "entry 'a:0': port must be between 1 and 65535"},
        {"a:65536", CMN_EINVAL, 0, NULL, 0, "entry 'a:65536': port must be between 1 and 65535"},
        {"a:8x", CMN_EINVAL, 0, NULL, 0, "entry 'a:8x': port must be between 1 and 65535"},
        {"[::1]", CMN_EINVAL, 0, NULL, 0, "entry '[::1]': missing port"},
        {"[::1:80", CMN_EINVAL, 0, NULL, 0, "entry '[::1:80': missing ']'"},
        {"[]:80", CMN_EINVAL, 0, NULL, 0, "entry '[]:80': bad IPv6 address"},
        {"[host]:80", CMN_EINVAL, 0, NULL, 0, "entry '[host]:80': bad IPv6 address"},
        {"::1:80", CMN_EINVAL, 0, NULL, 0, "entry '::1:80': IPv6 address must be in brackets"},
        {"a/b:80", CMN_EINVAL, 0, NULL, 0, "entry 'a/b:80': bad character in host name"},
        {"a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1 a:1", CMN_ETOOBIG, 0,
         NULL, 0, "more than 16 entries"},
    };

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct cmn_cfg_hostlist hl;
        char why[200];

        memset(&hl, 0x55, sizeof(hl));
        assert_int_equal(cmn_cfg_hostlist_parse(cases[k].in, &hl, why, sizeof(why)),
                         cases[k].rc);
        assert_string_equal(why, cases[k].why);
        if (cases[k].rc == CMN_OK) {
            assert_int_equal(hl.n, cases[k].n);
            assert_string_equal(hl.h[0].host, cases[k].host0);
            assert_int_equal(hl.h[0].port, cases[k].port0);
        }
    }
}

static void
test_cfg_secret_file_permissions(void **state)
{
    char dir[] = "/tmp/test_cfg_XXXXXX", path[128], text[300];
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;
    uint8_t secret[64];
    size_t n;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bind.pw", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("s3cret\n", f);
    fclose(f);
    snprintf(text, sizeof(text),
             "tokendb.baseDN=dc=x\nconn.tks1.hostport=t:1\ntokendb.bindPassword_file=%s\n",
             path);
    cmn_buf_init(&errs, 4096);

    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(parse(text, &c, &errs), CMN_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs),
                           "secret file is accessible by group or other (mode 0644): chmod 600 "
                           "it\n"));
    assert_non_null(strstr(cmn_buf_cstr(&errs), "tpsgw.cfg:3: key 'tokendb.bindPassword_file' = "));

    assert_int_equal(chmod(path, 0620), 0); /* group-writable is refused too */
    cmn_buf_reset(&errs);
    assert_int_equal(parse(text, &c, &errs), CMN_ECONFIG);

    assert_int_equal(chmod(path, 0600), 0);
    cmn_buf_reset(&errs);
    assert_int_equal(parse(text, &c, &errs), CMN_OK);
    assert_int_equal(cmn_cfg_secret_read(c, "tokendb.bindPassword_file", secret, sizeof(secret),
                                         &n),
                     CMN_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(secret, "s3cret", 6);
    assert_int_equal(cmn_cfg_secret_read(c, "tokendb.bindPassword_file", secret, 3, &n),
                     CMN_ETOOBIG);
    /* permissions changed after validation: refused at read time */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(cmn_cfg_secret_read(c, "tokendb.bindPassword_file", secret, sizeof(secret),
                                         &n),
                     CMN_ECONFIG);
    cmn_cfg_unref(c);
    c = NULL;

    /* missing file, and a directory */
    unlink(path);
    cmn_buf_reset(&errs);
    assert_int_equal(parse(text, &c, &errs), CMN_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs),
                           "cannot use secret file: No such file or directory\n"));
    snprintf(text, sizeof(text),
             "tokendb.baseDN=dc=x\nconn.tks1.hostport=t:1\ntokendb.bindPassword_file=%s\n", dir);
    cmn_buf_reset(&errs);
    assert_int_equal(parse(text, &c, &errs), CMN_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs), "secret file must be a regular file\n"));
    rmdir(dir);
    cmn_buf_cleanup(&errs);
}

struct names {
    char v[16][64];
    size_t n;
};

static bool
collect(void *arg, const char *child)
{
    struct names *ns = arg;

    if (ns->n < 16)
        snprintf(ns->v[ns->n++], sizeof(ns->v[0]), "%s", child);
    return true;
}

static bool
count_each(void *arg, const char *key, const char *value)
{
    (void)key;
    (void)value;
    (*(unsigned *)arg)++;
    return true;
}

static void
test_cfg_children_and_each(void **state)
{
    static const char text[] = "tokendb.baseDN=dc=x\n"
                               "conn.tks2.hostport=t:2\n"
                               "conn.tks1.hostport=t:1\n"
                               "conn.tks1.timeout=3\n"
                               "conn.ca1.hostport=c:1\n"
                               "conn.ca1-b.hostport=c:2\n"
                               "op.enroll.userKey.issuerinfo.value=x\n"
                               "op.enroll.soKey.issuerinfo.value=y\n"
                               "op.format.userKey.issuerinfo.value=z\n";
    struct cmn_cfg *c = NULL;
    struct names ns;
    unsigned n = 0;

    (void)state;
    assert_int_equal(parse(text, &c, NULL), CMN_OK);
    memset(&ns, 0, sizeof(ns));
    cmn_cfg_children(c, "conn.", collect, &ns);
    assert_int_equal(ns.n, 4);
    assert_string_equal(ns.v[0], "ca1");
    assert_string_equal(ns.v[1], "ca1-b");
    assert_string_equal(ns.v[2], "tks1");
    assert_string_equal(ns.v[3], "tks2");
    memset(&ns, 0, sizeof(ns));
    cmn_cfg_children(c, "op.enroll.", collect, &ns);
    assert_int_equal(ns.n, 2);
    assert_string_equal(ns.v[0], "soKey");
    assert_string_equal(ns.v[1], "userKey");
    memset(&ns, 0, sizeof(ns));
    cmn_cfg_children(c, "op.", collect, &ns);
    assert_int_equal(ns.n, 2);
    cmn_cfg_each(c, "conn.tks1.", count_each, &n);
    assert_int_equal(n, 2);
    n = 0;
    cmn_cfg_each(c, "", count_each, &n);
    assert_int_equal(n, 9);
    cmn_cfg_unref(c);
}

static void
test_cfg_load_from_file(void **state)
{
    char dir[] = "/tmp/test_cfgf_XXXXXX", path[128];
    struct cmn_cfg *c = NULL;
    struct cmn_buf errs;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tpsgw.cfg", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("tokendb.baseDN=dc=x\nconn.tks1.hostport=t:1\ntps.maxSessions=100001\n", f);
    fclose(f);
    cmn_buf_init(&errs, 4096);
    assert_int_equal(cmn_cfg_load(path, tables, &c, &errs), CMN_ECONFIG);
    assert_non_null(strstr(cmn_buf_cstr(&errs), "/tpsgw.cfg:3: key 'tps.maxSessions' = 100001: "
                                                "must be between 1 and 100000 (default 2000)\n"));
    unlink(path);
    cmn_buf_reset(&errs);
    assert_int_equal(cmn_cfg_load(path, tables, &c, &errs), CMN_EIO);
    assert_non_null(strstr(cmn_buf_cstr(&errs), "cannot open: No such file or directory"));
    rmdir(dir);
    cmn_buf_cleanup(&errs);
}

static void
test_cfg_doc_output(void **state)
{
    struct cmn_buf out;

    (void)state;
    cmn_buf_init(&out, 16384);
    assert_int_equal(cmn_cfg_doc(gw_keys, false, &out), CMN_OK);
    assert_non_null(strstr(cmn_buf_cstr(&out),
                           "service.securePort  integer 1..65535 (default 7889)\n    HTTPS port\n"));
    assert_non_null(strstr(cmn_buf_cstr(&out),
                           "conn.tks*.hostport  host list, required\n    TKS clones, in order\n"));
    assert_non_null(strstr(cmn_buf_cstr(&out), "tps.mode  word off|on|auto (default auto)\n"));
    cmn_buf_reset(&out);
    assert_int_equal(cmn_cfg_doc(gw_keys, true, &out), CMN_OK);
    assert_non_null(strstr(cmn_buf_cstr(&out), ".TP\n.B service.securePort\ninteger 1..65535 "
                                               "(default 7889)\nHTTPS port\n"));
    assert_non_null(strstr(cmn_buf_cstr(&out), ".B op.*.*.issuerinfo.value\n"));
    cmn_buf_cleanup(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_good_file_and_lookups),
        cmocka_unit_test(test_cfg_error_messages),
        cmocka_unit_test(test_cfg_reports_every_error_in_line_order),
        cmocka_unit_test(test_cfg_secret_values_never_shown),
        cmocka_unit_test(test_cfg_line_and_size_caps),
        cmocka_unit_test(test_cfg_hostlist_table),
        cmocka_unit_test(test_cfg_secret_file_permissions),
        cmocka_unit_test(test_cfg_children_and_each),
        cmocka_unit_test(test_cfg_load_from_file),
        cmocka_unit_test(test_cfg_doc_output),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
