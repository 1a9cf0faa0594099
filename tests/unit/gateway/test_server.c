/* tests/unit/gateway/test_server.c - the listener, the acceptor and the bounded queue: a real
 * tpsgw server on an ephemeral loopback port answers /health and the phone-home document, and
 * answers 503 at once when every worker is busy and the queue is full. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "gateway/server.h"
#include "gw_fixture.h"

static int
dial(unsigned port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Sends req (may be NULL) and reads what comes within ms milliseconds. */
static void
exchange(int fd, const char *req, char *out, size_t cap, int ms)
{
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};

    if (req != NULL)
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    while (n + 1 < cap && poll(&p, 1, ms) == 1) {
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
}

static void
test_server_health_phonehome_and_busy(void **state)
{
    struct gw_fix f;
    struct cmn_buf errs;
    struct tps_server *srv = NULL;
    char err[512] = "", buf[4096];
    unsigned port;
    int a, b, c, d;

    (void)state;
    gw_fix_init(&f);
    cmn_buf_init(&errs, 65536);
    /* port 0: an ephemeral port */
    if (gw_fix_load(&f,
                    "service.unsecurePort=0\ntps.maxSessions=1\ntps.acceptQueue=1\n"
                    "tps.connection.headTimeout=3000\n",
                    &errs) != TPS_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    if (tps_server_new(f.cfg, &srv, err, sizeof(err)) != TPS_OK)
        fail_msg("server: %s", err);
    port = tps_server_port(srv, false);
    assert_true(port > 0);
    assert_int_equal(tps_server_start(srv, err, sizeof(err)), TPS_OK);

    a = dial(port);
    exchange(a, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf), 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    close(a);
    a = dial(port);
    exchange(a, "GET /tps/phoneHome HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf), 2000);
    assert_non_null(strstr(buf, "Content-Type: application/xml"));
    assert_non_null(strstr(buf, "<ServiceInfo>"));
    close(a);

    /* one worker busy (it waits for a head that never comes), one connection queued:
     * the third gets 503 at once */
    b = dial(port);
    exchange(b, NULL, buf, sizeof(buf), 200);
    c = dial(port);
    exchange(c, NULL, buf, sizeof(buf), 200);
    d = dial(port);
    exchange(d, NULL, buf, sizeof(buf), 1000);
    assert_non_null(strstr(buf, "HTTP/1.1 503"));
    close(d);
    close(b);
    close(c);
    tps_server_stop(srv);
    tps_server_free(srv);
    cmn_buf_cleanup(&errs);
    gw_fix_cleanup(&f);
}

static void
test_server_proxy_header_required(void **state)
{
    struct gw_fix f;
    struct cmn_buf errs;
    struct tps_server *srv = NULL;
    char err[512] = "", buf[4096];
    unsigned port;
    int a;

    (void)state;
    gw_fix_init(&f);
    cmn_buf_init(&errs, 65536);
    if (gw_fix_load(&f,
                    "service.unsecurePort=0\nservice.acceptProxy=true\n"
                    "tps.connection.headTimeout=2000\n",
                    &errs) != TPS_OK)
        fail_msg("config: %s", cmn_buf_cstr(&errs));
    assert_int_equal(tps_server_new(f.cfg, &srv, err, sizeof(err)), TPS_OK);
    port = tps_server_port(srv, false);
    assert_int_equal(tps_server_start(srv, err, sizeof(err)), TPS_OK);
    /* with a PROXY v1 header: served */
    a = dial(port);
    exchange(a,
             "PROXY TCP4 127.0.0.2 127.0.0.1 40000 7888\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
             buf, sizeof(buf), 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    close(a);
    /* a LOCAL v2 header (HAProxy health check): served */
    a = dial(port);
    {
        static const uint8_t v2local[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                            0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
        assert_int_equal(send(a, v2local, sizeof(v2local), MSG_NOSIGNAL), 16);
    }
    exchange(a, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf), 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    close(a);
    /* without a header: closed, nothing answered */
    a = dial(port);
    exchange(a, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf), 2000);
    assert_null(strstr(buf, "HTTP/1.1"));
    close(a);
    tps_server_free(srv);
    cmn_buf_cleanup(&errs);
    gw_fix_cleanup(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_health_phonehome_and_busy),
        cmocka_unit_test(test_server_proxy_header_required),
    };
    cmn_log_set_level(CMN_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
