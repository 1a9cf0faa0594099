/* tests/unit/common/test_proxy.c - PROXY protocol v1/v2 headers: good, short, hostile, and
 * reading exactly the header off a socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <sys/socket.h>
#include <unistd.h>

#include "common/proxy.h"

/* PROXY v2, TCP4 127.0.0.2:40000 -> 127.0.0.1:8443 (HAProxy's send-proxy-v2) */
static const uint8_t v2_tcp4[] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00,
    0x0C, 127, 0, 0, 2, 127, 0, 0, 1, 0x9C, 0x40, 0x20, 0xFB,
};

static void
test_proxy_v2_tcp4(void **state)
{
    struct cmn_proxy p;
    size_t used = 0;

    (void)state;
    assert_int_equal(cmn_proxy_parse(v2_tcp4, sizeof(v2_tcp4), &p, &used), CMN_OK);
    assert_int_equal(used, sizeof(v2_tcp4));
    assert_int_equal(p.version, 2);
    assert_false(p.local);
    assert_string_equal(p.src_text, "127.0.0.2");
    assert_int_equal(p.src_port, 40000);
    /* every strict prefix is "need more" */
    for (size_t n = 1; n < sizeof(v2_tcp4); n++)
        assert_int_equal(cmn_proxy_parse(v2_tcp4, n, &p, &used), CMN_ESHORT);
}

static void
test_proxy_v2_local_and_tlv(void **state)
{
    uint8_t local[16], tlv[sizeof(v2_tcp4) + 7];
    struct cmn_proxy p;
    size_t used;

    (void)state;
    memcpy(local, v2_tcp4, 16);
    local[12] = 0x20; /* LOCAL: health check connection */
    local[13] = 0x00;
    local[14] = local[15] = 0;
    assert_int_equal(cmn_proxy_parse(local, sizeof(local), &p, &used), CMN_OK);
    assert_true(p.local);
    assert_int_equal(used, 16);

    memcpy(tlv, v2_tcp4, sizeof(v2_tcp4));
    tlv[15] = 0x0C + 7;
    memcpy(tlv + sizeof(v2_tcp4), "\x04\x00\x04" "abcd", 7); /* a NOOP TLV */
    assert_int_equal(cmn_proxy_parse(tlv, sizeof(tlv), &p, &used), CMN_OK);
    assert_int_equal(used, sizeof(tlv));
    tlv[sizeof(v2_tcp4) + 2] = 9; /* TLV longer than the block */
    assert_int_equal(cmn_proxy_parse(tlv, sizeof(tlv), &p, &used), CMN_EPROTO);
}

static void
test_proxy_hostile(void **state)
{
    static const char *v1bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 111\r\n",
        "PROXY TCP4 1.2.3.999 5.6.7.8 111 222\r\n",
        "PROXY TCP5 1.2.3.4 5.6.7.8 111 222\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 111 99999\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 111 222 extra-words-here-and-more-and-more-and-more-and-"
        "more-and-more-and-more-and-more-and-more\r\n",
        "GET / HTTP/1.1\r\n",
    };
    uint8_t v2[sizeof(v2_tcp4)];
    struct cmn_proxy p;
    size_t used;

    (void)state;
    for (size_t i = 0; i < sizeof(v1bad) / sizeof(v1bad[0]); i++)
        assert_int_equal(cmn_proxy_parse((const uint8_t *)v1bad[i], strlen(v1bad[i]), &p, &used),
                         CMN_EPROTO);
    memcpy(v2, v2_tcp4, sizeof(v2));
    v2[12] = 0x31; /* version 3 */
    assert_int_equal(cmn_proxy_parse(v2, sizeof(v2), &p, &used), CMN_EPROTO);
    memcpy(v2, v2_tcp4, sizeof(v2));
    v2[13] = 0x12; /* UDP */
    assert_int_equal(cmn_proxy_parse(v2, sizeof(v2), &p, &used), CMN_EPROTO);
    memcpy(v2, v2_tcp4, sizeof(v2));
    v2[14] = 0xFF; /* 65k announced */
    assert_int_equal(cmn_proxy_parse(v2, sizeof(v2), &p, &used), CMN_ETOOBIG);
    memcpy(v2, v2_tcp4, sizeof(v2));
    v2[15] = 4; /* address block too short for TCP4 */
    assert_int_equal(cmn_proxy_parse(v2, 20, &p, &used), CMN_EPROTO);
}

static void
test_proxy_v1(void **state)
{
    static const char l4[] = "PROXY TCP4 192.0.2.7 127.0.0.1 51000 8080\r\nPOST /tps/tps";
    static const char l6[] = "PROXY TCP6 ::1 ::1 51000 8080\r\n";
    static const char unk[] = "PROXY UNKNOWN\r\n";
    struct cmn_proxy p;
    size_t used;

    (void)state;
    assert_int_equal(cmn_proxy_parse((const uint8_t *)l4, strlen(l4), &p, &used), CMN_OK);
    assert_int_equal(used, strlen("PROXY TCP4 192.0.2.7 127.0.0.1 51000 8080\r\n"));
    assert_string_equal(p.src_text, "192.0.2.7");
    assert_int_equal(p.src_port, 51000);
    assert_int_equal(cmn_proxy_parse((const uint8_t *)l6, strlen(l6), &p, &used), CMN_OK);
    assert_string_equal(p.src_text, "::1");
    assert_int_equal(cmn_proxy_parse((const uint8_t *)unk, strlen(unk), &p, &used), CMN_OK);
    assert_true(p.local);
    assert_int_equal(cmn_proxy_parse((const uint8_t *)"PROXY TCP4 1.2", 14, &p, &used),
                     CMN_ESHORT);
}

static void
test_proxy_read_fd_exact(void **state)
{
    int sv[2];
    uint8_t rest[16];
    struct cmn_proxy p;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[0], v2_tcp4, sizeof(v2_tcp4)), (ssize_t)sizeof(v2_tcp4));
    assert_int_equal(write(sv[0], "POST", 4), 4);
    assert_int_equal(cmn_proxy_read_fd(sv[1], 1000, &p), CMN_OK);
    assert_string_equal(p.src_text, "127.0.0.2");
    /* what follows the header is still there for HTTP/TLS */
    assert_int_equal(read(sv[1], rest, sizeof(rest)), 4);
    assert_memory_equal(rest, "POST", 4);
    /* no header at all: refused; silence: timed out */
    assert_int_equal(write(sv[0], "GET / HTTP/1.1\r\n", 16), 16);
    assert_int_equal(cmn_proxy_read_fd(sv[1], 1000, &p), CMN_EPROTO);
    assert_int_equal(read(sv[1], rest, sizeof(rest)), 16);
    assert_int_equal(cmn_proxy_read_fd(sv[1], 100, &p), CMN_ETIMEDOUT);
    close(sv[0]);
    assert_int_equal(cmn_proxy_read_fd(sv[1], 1000, &p), CMN_ECLOSED);
    close(sv[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_v2_tcp4),
        cmocka_unit_test(test_proxy_v2_local_and_tlv),
        cmocka_unit_test(test_proxy_hostile),
        cmocka_unit_test(test_proxy_v1),
        cmocka_unit_test(test_proxy_read_fd_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
