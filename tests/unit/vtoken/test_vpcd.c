/* tests/unit/vtoken/test_vpcd.c - the vpcd link (card spec §8): framing, control bytes, ATR,
 * APDUs, and a closed or broken connection, over a socketpair standing in for vpcd. */
#include "vt_test.h"

#include <sys/socket.h>
#include <unistd.h>

#include "tokenclient/vtoken/vpcd.h"

static void
put(int fd, const char *hex)
{
    uint8_t m[300];
    size_t n = vt_hex(hex, m, sizeof(m));

    assert_int_equal(write(fd, m, n), (ssize_t)n);
}

static void
get(int fd, const char *hex)
{
    uint8_t want[300], got[300];
    size_t n = vt_hex(hex, want, sizeof(want));
    size_t have = 0;

    while (have < n) {
        ssize_t r = read(fd, got + have, n - have);

        assert_true(r > 0);
        have += (size_t)r;
    }
    assert_memory_equal(got, want, n);
}

static void
test_vpcd_framing(void **state)
{
    struct vt_card *c = vt_new_card(CMN_SCP01, NULL);
    int sv[2];
    unsigned long apdus = 0;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* §8.3: power on, get ATR, SELECT CoolKey */
    put(sv[0], "00 01 01");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    put(sv[0], "00 01 04");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    get(sv[0], "00 0C 3B 96 13 81 01 FF 62 76 01 00 00 EF");
    put(sv[0], "00 0C 00 A4 04 00 07 62 76 01 FF 00 00 00");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    get(sv[0], "00 02 90 00");
    put(sv[0], "00 05 B0 F2 00 00 01");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    get(sv[0], "00 03 07 90 00");
    assert_int_equal(apdus, 2);
    /* reset: back to the card manager (GET VERSION is an applet command) */
    put(sv[0], "00 01 02");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    put(sv[0], "00 05 B0 70 00 00 04");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    get(sv[0], "00 02 6E 00");
    /* power off, unknown control byte: no answer; a 3-byte "APDU" gets 6700 */
    put(sv[0], "00 01 00");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    put(sv[0], "00 01 09");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    put(sv[0], "00 03 B0 70 00");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_OK);
    get(sv[0], "00 02 67 00");
    /* a message cut short breaks the link; a clean close is "closed" */
    put(sv[0], "00 05 B0 70");
    shutdown(sv[0], SHUT_WR);
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_EPROTO);
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_ECLOSED);
    close(sv[0]);
    close(sv[1]);
    /* an oversized message breaks the link too */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    put(sv[0], "FF FF 00");
    assert_int_equal(vt_vpcd_handle(c, sv[1], &apdus), CMN_EPROTO);
    close(sv[0]);
    close(sv[1]);
    vt_card_close(c);
}

static void
test_vpcd_connect_refused(void **state)
{
    (void)state;
    /* nothing listens on port 1 of loopback; a bad address is refused before connecting */
    assert_int_equal(vt_vpcd_connect("127.0.0.1", 1), -1);
    assert_int_equal(vt_vpcd_connect("not-an-address", 35963), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vpcd_framing),
        cmocka_unit_test(test_vpcd_connect_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
