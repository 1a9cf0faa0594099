/* tests/unit/common/test_http.c - HTTP/1.1 connections over socketpairs, a byte-at-a-time
 * memory transport and TLS (in-memory self-signed certificate): heads good, oversize and bad;
 * chunked bodies both ways (tps-protocol §1.3, chunk sizes of §9); deadlines; early close;
 * Content-Length bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/http.h"

/* ---- a memory transport that hands out at most `step` bytes per read ---- */

struct memio {
    const uint8_t *p;
    size_t n, off, step;
    struct cmn_buf out;
};

static enum cmn_rc
mem_read(void *ctx, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
    struct memio *m = ctx;
    size_t k = m->n - m->off;

    (void)deadline;
    if (k == 0)
        return CMN_ECLOSED;
    if (k > m->step)
        k = m->step;
    if (k > n)
        k = n;
    memcpy(p, m->p + m->off, k);
    m->off += k;
    *got = k;
    return CMN_OK;
}

static enum cmn_rc
mem_write(void *ctx, const uint8_t *p, size_t n, int64_t deadline)
{
    struct memio *m = ctx;

    (void)deadline;
    return cmn_buf_append(&m->out, p, n);
}

static const struct cmn_http_io mem_ops = { mem_read, mem_write };

static struct cmn_http_conn *
mem_conn(struct memio *m, const char *text, size_t step, const struct cmn_http_limits *lim)
{
    struct cmn_http_conn *c = NULL;

    m->p = (const uint8_t *)text;
    m->n = strlen(text);
    m->off = 0;
    m->step = step;
    cmn_buf_init(&m->out, 1 << 20);
    assert_int_equal(cmn_http_conn_new_io(&mem_ops, m, lim, &c), CMN_OK);
    return c;
}

static void
mem_done(struct memio *m, struct cmn_http_conn *c)
{
    cmn_http_conn_free(c);
    cmn_buf_cleanup(&m->out);
}

static void
write_all(int fd, const char *s)
{
    size_t n = strlen(s);

    assert_int_equal(write(fd, s, n), (ssize_t)n);
}

/* The head and first chunk of §9.1 as ESC sends them: in one go. */
static const char begin_req[] =
    "POST /tps/tps?x=1 HTTP/1.1\r\n"
    "host: tps.example.org:8080\r\n"
    "Transfer-Encoding: chunked  \r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "73\r\ns=109&msg_type=2&operation=5&extensions=tokenType%3DuserKey%26clientVersion%3D"
    "TPSClient+1%2E0%26statusUpdate%3Dtrue\r\n"
    "2B\r\ns=38&msg_type=10&pdu_size=2&pdu_data=%90%00\r\n"
    "5;ext=1\r\nhello\r\n"
    "0\r\nTrailer: x\r\n\r\n";

static void
check_begin_req(struct cmn_http_conn *c)
{
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = true;

    cmn_http_head_init(&h);
    cmn_buf_init(&b, 4096);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    assert_true(h.is_request);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.target, "/tps/tps?x=1");
    assert_string_equal(h.path, "/tps/tps");
    assert_string_equal(h.query, "x=1");
    assert_int_equal(h.http_major, 1);
    assert_int_equal(h.http_minor, 1);
    assert_int_equal(h.nhdrs, 3);
    assert_string_equal(cmn_http_head_get(&h, "Host"), "tps.example.org:8080");
    assert_string_equal(cmn_http_head_get(&h, "TRANSFER-ENCODING"), "chunked");
    assert_null(cmn_http_head_get(&h, "Content-Length"));
    assert_true(h.chunked);
    assert_false(h.has_length);
    /* Exactly one chunk per call. */
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_false(last);
    assert_int_equal(b.len, 0x73);
    assert_memory_equal(b.data, "s=109&msg_type=2&", 17);
    cmn_buf_reset(&b);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_false(last);
    assert_string_equal(cmn_buf_cstr(&b), "s=38&msg_type=10&pdu_size=2&pdu_data=%90%00");
    cmn_buf_reset(&b);
    /* A chunk extension is ignored. */
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_false(last);
    assert_string_equal(cmn_buf_cstr(&b), "hello");
    cmn_buf_reset(&b);
    /* The last chunk; the trailer section is ignored. */
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_true(last);
    assert_int_equal(b.len, 0);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_EINVAL);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
}

static void
test_http_request_head_and_chunks_socketpair(void **state)
{
    struct cmn_http_conn *c = NULL;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    write_all(sv[1], begin_req);
    assert_int_equal(cmn_http_conn_new_fd(sv[0], NULL, &c), CMN_OK);
    check_begin_req(c);
    cmn_http_conn_free(c);
    close(sv[0]);
    close(sv[1]);
}

static void
test_http_request_one_byte_at_a_time(void **state)
{
    /* Every split the push parser can see: names, values, sizes and CRLFs cut anywhere. */
    for (size_t step = 1; step <= 7; step++) {
        struct memio m;
        struct cmn_http_conn *c = mem_conn(&m, begin_req, step, NULL);

        (void)state;
        check_begin_req(c);
        mem_done(&m, c);
    }
}

static void
test_http_bad_heads(void **state)
{
    static const struct {
        const char *text;
        enum cmn_rc rc;
        const char *err; /* substring of the detail */
    } cases[] = {
        { "GARBAGE\r\n\r\n", CMN_EPROTO, "bad HTTP head" },
        { "POST /tps/tps HTTP/1.1\r\nHost: a\r\n", CMN_ECLOSED, "before the end of the head" },
        { "", CMN_ECLOSED, "before the end of the head" },
        { "POST /x HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", CMN_ETOOBIG, "more than 2 header" },
        { "POST /x HTTP/1.1\r\nA: 01234567890123456789012345678901234567890123456789\r\n\r\n", CMN_ETOOBIG,
          "head larger than 70 bytes" },
        { "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
          CMN_EPROTO, "bad HTTP head" },
        { "GET /x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", CMN_EPROTO,
          "upgrade" },
        { "POST /x HTTP/1.1\r\nBad Name: 1\r\n\r\n", CMN_EPROTO, "bad HTTP head" },
    };
    struct cmn_http_limits lim = { .max_head = 70, .max_headers = 2 };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct memio m;
        struct cmn_http_conn *c = mem_conn(&m, cases[i].text, 5, &lim);
        struct cmn_http_head h;
        enum cmn_rc rc;

        cmn_http_head_init(&h);
        rc = cmn_http_read_request_head(c, &h);
        if (rc != cases[i].rc || strstr(cmn_http_conn_errmsg(c), cases[i].err) == NULL)
            fail_msg("case %zu: rc %d (%s)", i, rc, cmn_http_conn_errmsg(c));
        assert_null(h.store);
        assert_int_equal(h.nhdrs, 0);
        /* The connection is not usable afterwards. */
        assert_int_equal(cmn_http_read_request_head(c, &h), CMN_EINVAL);
        cmn_http_head_cleanup(&h);
        mem_done(&m, c);
    }
}

static void
test_http_response_head_uppercase_chunks(void **state)
{
    const char *text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "2F\r\ns=42&msg_type=13&operation=5&result=0&message=0\r\n"
                       "0\r\n\r\n";
    struct memio m;
    struct cmn_http_conn *c = mem_conn(&m, text, 3, NULL);
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = true;

    (void)state;
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 100);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    assert_false(h.is_request);
    assert_int_equal(h.status, 200);
    assert_true(h.chunked);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_false(last);
    assert_string_equal(cmn_buf_cstr(&b), "s=42&msg_type=13&operation=5&result=0&message=0");
    cmn_buf_reset(&b);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_true(last);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
    mem_done(&m, c);
}

static void
test_http_chunk_limits(void **state)
{
    struct cmn_http_limits lim = { .max_chunk = 16 };
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = false;
    int sv[2];
    int64_t t0;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* Only the size line of a too-big chunk: refused at once, without waiting for payload. */
    write_all(sv[1], "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n");
    lim.timeout_ms = 5000;
    assert_int_equal(cmn_http_conn_new_fd(sv[0], &lim, &c), CMN_OK);
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 100);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    t0 = cmn_http_now_ms();
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_ETOOBIG);
    assert_true(cmn_http_now_ms() - t0 < 1000);
    assert_string_equal(cmn_http_conn_errmsg(c), "chunk of 17 bytes exceeds maximum 16");
    assert_int_equal(b.len, 0);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    close(sv[0]);
    close(sv[1]);

    /* The output buffer's cap counts too; a bad hex size is a protocol error. */
    {
        struct memio m;
        struct cmn_http_conn *mc =
            mem_conn(&m, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n",
                     100, NULL);

        cmn_http_head_init(&h);
        cmn_buf_init(&b, 4);
        assert_int_equal(cmn_http_read_request_head(mc, &h), CMN_OK);
        assert_int_equal(cmn_http_read_chunk(mc, &b, &last), CMN_ETOOBIG);
        cmn_buf_cleanup(&b);
        cmn_http_head_cleanup(&h);
        mem_done(&m, mc);
        mc = mem_conn(&m, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100,
                      NULL);
        cmn_buf_init(&b, 100);
        assert_int_equal(cmn_http_read_request_head(mc, &h), CMN_OK);
        assert_int_equal(cmn_http_read_chunk(mc, &b, &last), CMN_EPROTO);
        cmn_buf_cleanup(&b);
        cmn_http_head_cleanup(&h);
        mem_done(&m, mc);
    }
}

static void
test_http_stalled_peer_times_out(void **state)
{
    struct cmn_http_limits lim = { .timeout_ms = 150 };
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = false;
    int sv[2];
    int64_t t0, dt;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[0], &lim, &c), CMN_OK);
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 100);
    /* Half a head, then silence. */
    write_all(sv[1], "POST /tps/tps HTTP/1.1\r\nHo");
    t0 = cmn_http_now_ms();
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_ETIMEDOUT);
    dt = cmn_http_now_ms() - t0;
    assert_true(dt >= 140 && dt < 1000);
    assert_string_equal(cmn_http_conn_errmsg(c), "timed out after 150 ms waiting for the head");
    cmn_http_conn_free(c);

    /* A whole head, half a chunk, then silence: the chunk read times out. */
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[0], &lim, &c), CMN_OK);
    write_all(sv[1], "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    cmn_http_conn_set_timeout(c, 100);
    t0 = cmn_http_now_ms();
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_ETIMEDOUT);
    dt = cmn_http_now_ms() - t0;
    assert_true(dt >= 90 && dt < 1000);
    assert_string_equal(cmn_http_conn_errmsg(c), "timed out after 100 ms waiting for the chunk");
    assert_int_equal(b.len, 0);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    close(sv[0]);
    close(sv[1]);
}

static void
test_http_peer_closes_mid_chunk(void **state)
{
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = false;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    write_all(sv[1], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\na\r\nhello");
    close(sv[1]);
    assert_int_equal(cmn_http_conn_new_fd(sv[0], NULL, &c), CMN_OK);
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 100);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "abc");
    cmn_buf_reset(&b);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_ECLOSED);
    assert_string_equal(cmn_http_conn_errmsg(c), "connection closed before the end of the chunk");
    assert_int_equal(b.len, 0);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    close(sv[0]);
}

static void
test_http_content_length_bodies(void **state)
{
    struct cmn_http_limits lim = { .max_body = 10 };
    struct memio m;
    struct cmn_http_conn *c;
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last;

    (void)state;
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 100);
    c = mem_conn(&m, "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloEXTRA", 2, &lim);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    assert_true(h.has_length);
    assert_int_equal(h.content_length, 5);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_EINVAL); /* not chunked */
    assert_int_equal(cmn_http_read_body(c, &b), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "hello");
    assert_int_equal(cmn_http_read_body(c, &b), CMN_EINVAL); /* already complete */
    mem_done(&m, c);
    cmn_buf_reset(&b);

    /* Too long for max_body: refused from the header. */
    c = mem_conn(&m, "POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", 100, &lim);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    assert_int_equal(cmn_http_read_body(c, &b), CMN_ETOOBIG);
    assert_string_equal(cmn_http_conn_errmsg(c), "Content-Length 11 exceeds maximum 10");
    mem_done(&m, c);

    /* Short body: EOF first. */
    c = mem_conn(&m, "POST /x HTTP/1.1\r\nContent-Length: 9\r\n\r\nhello", 100, &lim);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    assert_int_equal(cmn_http_read_body(c, &b), CMN_ECLOSED);
    assert_int_equal(b.len, 0);
    mem_done(&m, c);

    /* A request without a body. */
    c = mem_conn(&m, "GET /tps/phoneHome HTTP/1.1\r\nHost: h\r\n\r\n", 100, &lim);
    assert_int_equal(cmn_http_read_request_head(c, &h), CMN_OK);
    assert_string_equal(h.method, "GET");
    assert_null(h.query);
    assert_int_equal(cmn_http_read_body(c, &b), CMN_OK);
    assert_int_equal(b.len, 0);
    mem_done(&m, c);

    /* A response delimited by the end of the connection, and one too big for it. */
    c = mem_conn(&m, "HTTP/1.0 200 OK\r\n\r\n<xml/>", 4, &lim);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    assert_int_equal(cmn_http_read_body(c, &b), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "<xml/>");
    mem_done(&m, c);
    cmn_buf_reset(&b);
    c = mem_conn(&m, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789A", 4, &lim);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    assert_int_equal(cmn_http_read_body(c, &b), CMN_ETOOBIG);
    assert_int_equal(b.len, 0);
    mem_done(&m, c);

    /* A whole chunked body through read_body. */
    c = mem_conn(&m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
                     "2\r\nde\r\n0\r\n\r\n", 3, &lim);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    assert_int_equal(cmn_http_read_body(c, &b), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "abcde");
    mem_done(&m, c);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
}

static void
test_http_writers_exact_bytes(void **state)
{
    static const struct cmn_http_hdr hdrs[] = { { "Transfer-Encoding", "chunked" } };
    static const struct cmn_http_hdr bad[] = { { "X-A", "v\r\nInjected: 1" } };
    static const struct cmn_http_hdr badname[] = { { "X A", "v" } };
    const char *msg = "s=46&msg_type=9&pdu_size=5&pdu_data=%00%A4%04%00%00";
    const char *ans = "s=89&msg_type=10&pdu_size=20&pdu_data=o%10%84%08%A0%00%00%00%03%00%00%00"
                      "%A5%04%9Fe%01%FF%90%00";
    struct memio m;
    struct cmn_http_conn *c = mem_conn(&m, "", 1, NULL);

    (void)state;
    assert_int_equal(cmn_http_write_response_head(c, 200, NULL, hdrs, 1), CMN_OK);
    assert_int_equal(cmn_http_write_chunk(c, msg, strlen(msg)), CMN_OK);
    assert_int_equal(cmn_http_write_chunk(c, ans, strlen(ans)), CMN_OK);
    assert_int_equal(cmn_http_write_last_chunk(c), CMN_OK);
    /* The chunk sizes are the ones of §9.1, in lowercase hex. */
    assert_string_equal(cmn_buf_cstr(&m.out),
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "33\r\ns=46&msg_type=9&pdu_size=5&pdu_data=%00%A4%04%00%00\r\n"
                        "5e\r\ns=89&msg_type=10&pdu_size=20&pdu_data=o%10%84%08%A0%00%00%00%03%00"
                        "%00%00%A5%04%9Fe%01%FF%90%00\r\n"
                        "0\r\n\r\n");
    cmn_buf_reset(&m.out);
    assert_int_equal(cmn_http_write_request_head(c, "POST", "/tps/tps", hdrs, 1), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&m.out),
                        "POST /tps/tps HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    cmn_buf_reset(&m.out);
    assert_int_equal(cmn_http_write_response(c, 405, NULL, "text/plain", NULL, 0, "no\n", 3),
                     CMN_OK);
    assert_string_equal(cmn_buf_cstr(&m.out),
                        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
    cmn_buf_reset(&m.out);
    /* Refusals: nothing is written. */
    assert_int_equal(cmn_http_write_chunk(c, "", 0), CMN_EINVAL);
    assert_int_equal(cmn_http_write_response_head(c, 200, NULL, bad, 1), CMN_EINVAL);
    assert_int_equal(cmn_http_write_response_head(c, 200, NULL, badname, 1), CMN_EINVAL);
    assert_int_equal(cmn_http_write_response_head(c, 99, NULL, NULL, 0), CMN_EINVAL);
    assert_int_equal(cmn_http_write_request_head(c, "PO ST", "/", NULL, 0), CMN_EINVAL);
    assert_int_equal(cmn_http_write_request_head(c, "POST", "/a b", NULL, 0), CMN_EINVAL);
    assert_int_equal(m.out.len, 0);
    assert_string_equal(cmn_http_reason(503), "Service Unavailable");
    mem_done(&m, c);
}

/* Client writes request + chunks on one end, server reads them on the other, and back. */
static void
test_http_roundtrip_socketpair(void **state)
{
    static const struct cmn_http_hdr req_h[] = { { "Host", "tps.example.org:8080" },
                                                 { "Transfer-Encoding", "chunked" } };
    static const struct cmn_http_hdr resp_h[] = { { "Transfer-Encoding", "chunked" } };
    struct cmn_http_conn *cli = NULL, *srv = NULL;
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = false;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[0], NULL, &cli), CMN_OK);
    assert_int_equal(cmn_http_conn_new_fd(sv[1], NULL, &srv), CMN_OK);
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 4096);
    assert_int_equal(cmn_http_write_request_head(cli, "POST", "/nk_service", req_h, 2), CMN_OK);
    assert_int_equal(cmn_http_write_chunk(cli, "s=10&msg_type=3", 15), CMN_OK);
    assert_int_equal(cmn_http_read_request_head(srv, &h), CMN_OK);
    assert_string_equal(h.path, "/nk_service");
    assert_true(h.chunked);
    assert_int_equal(cmn_http_read_chunk(srv, &b, &last), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "s=10&msg_type=3");
    cmn_http_head_cleanup(&h);
    assert_int_equal(cmn_http_write_response_head(srv, 200, NULL, resp_h, 1), CMN_OK);
    assert_int_equal(cmn_http_write_chunk(srv, "abc", 3), CMN_OK);
    assert_int_equal(cmn_http_write_last_chunk(srv), CMN_OK);
    assert_int_equal(cmn_http_read_response_head(cli, &h), CMN_OK);
    assert_int_equal(h.status, 200);
    cmn_buf_reset(&b);
    assert_int_equal(cmn_http_read_chunk(cli, &b, &last), CMN_OK);
    assert_string_equal(cmn_buf_cstr(&b), "abc");
    assert_int_equal(cmn_http_read_chunk(cli, &b, &last), CMN_OK);
    assert_true(last);
    /* Writing to a peer that has gone: an error, not SIGPIPE. */
    cmn_http_conn_free(srv);
    close(sv[1]);
    assert_int_equal(cmn_http_write_chunk(cli, "x", 1), CMN_ECLOSED);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(cli);
    close(sv[0]);
}

/* ---- TLS over a socketpair, with a certificate made in memory ---- */

struct tls_server {
    SSL_CTX *ctx;
    int fd;
    enum cmn_rc rc;
    char got[256];
};

static void *
tls_server_main(void *arg)
{
    static const struct cmn_http_hdr resp_h[] = { { "Transfer-Encoding", "chunked" } };
    struct tls_server *s = arg;
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = false;
    SSL *ssl = SSL_new(s->ctx);

    cmn_http_head_init(&h);
    cmn_buf_init(&b, 200);
    SSL_set_fd(ssl, s->fd); /* no SSL_set_accept_state(): the connection picks the side */
    s->rc = cmn_http_conn_new_ssl(ssl, NULL, &c);
    if (s->rc == CMN_OK)
        s->rc = cmn_http_conn_handshake(c);
    if (s->rc == CMN_OK)
        s->rc = cmn_http_read_request_head(c, &h);
    if (s->rc == CMN_OK)
        s->rc = cmn_http_read_chunk(c, &b, &last);
    if (s->rc == CMN_OK) {
        snprintf(s->got, sizeof(s->got), "%s %s", h.path, cmn_buf_cstr(&b));
        s->rc = cmn_http_write_response_head(c, 200, NULL, resp_h, 1);
    }
    if (s->rc == CMN_OK)
        s->rc = cmn_http_write_chunk(c, "s=42&msg_type=13&operation=5&result=0&message=0", 47);
    if (s->rc == CMN_OK)
        s->rc = cmn_http_write_last_chunk(c);
    SSL_shutdown(ssl);
    cmn_http_conn_free(c);
    SSL_free(ssl);
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
    return NULL;
}

static void
make_cert(EVP_PKEY **key, X509 **cert)
{
    X509_NAME *name;

    *key = EVP_EC_gen("P-256");
    assert_non_null(*key);
    *cert = X509_new();
    assert_non_null(*cert);
    assert_int_equal(X509_set_version(*cert, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(*cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(*cert), 3600);
    assert_int_equal(X509_set_pubkey(*cert, *key), 1);
    name = X509_get_subject_name(*cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"tps.test", -1, -1,
                               0);
    assert_int_equal(X509_set_issuer_name(*cert, name), 1);
    assert_true(X509_sign(*cert, *key, EVP_sha256()) > 0);
}

static void
test_http_tls_socketpair(void **state)
{
    static const struct cmn_http_hdr req_h[] = { { "Host", "tps.test" },
                                                 { "Transfer-Encoding", "chunked" } };
    struct tls_server srv = { 0 };
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    SSL_CTX *cctx;
    SSL *ssl;
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf b;
    bool last = false;
    pthread_t th;
    int sv[2];

    (void)state;
    make_cert(&key, &cert);
    srv.ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(srv.ctx);
    assert_int_equal(SSL_CTX_use_certificate(srv.ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(srv.ctx, key), 1);
    cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    /* Trust exactly our self-signed certificate. */
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    srv.fd = sv[1];
    assert_int_equal(pthread_create(&th, NULL, tls_server_main, &srv), 0);

    ssl = SSL_new(cctx);
    SSL_set_fd(ssl, sv[0]);
    assert_int_equal(SSL_set1_host(ssl, "tps.test"), 1);
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 200);
    assert_int_equal(cmn_http_conn_new_ssl(ssl, NULL, &c), CMN_OK);
    assert_int_equal(cmn_http_conn_handshake(c), CMN_OK);
    assert_int_equal(cmn_http_write_request_head(c, "POST", "/tps/tps", req_h, 2), CMN_OK);
    assert_int_equal(cmn_http_write_chunk(c, "s=10&msg_type=3", 15), CMN_OK);
    assert_int_equal(cmn_http_read_response_head(c, &h), CMN_OK);
    assert_int_equal(h.status, 200);
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_false(last);
    assert_string_equal(cmn_buf_cstr(&b), "s=42&msg_type=13&operation=5&result=0&message=0");
    assert_int_equal(cmn_http_read_chunk(c, &b, &last), CMN_OK);
    assert_true(last);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(srv.rc, CMN_OK);
    assert_string_equal(srv.got, "/tps/tps s=10&msg_type=3");

    cmn_http_head_cleanup(&h);
    cmn_buf_cleanup(&b);
    cmn_http_conn_free(c);
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv.ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    close(sv[0]);
    close(sv[1]);
}

static void
test_http_tls_handshake_failures(void **state)
{
    struct cmn_http_limits lim = { .timeout_ms = 150 };
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    struct cmn_http_conn *c = NULL;
    SSL *ssl;
    int sv[2];
    int64_t t0;

    (void)state;
    assert_non_null(cctx);
    /* A peer that never answers the ClientHello: the deadline fires. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ssl = SSL_new(cctx);
    SSL_set_fd(ssl, sv[0]);
    SSL_set_connect_state(ssl);
    assert_int_equal(cmn_http_conn_new_ssl(ssl, &lim, &c), CMN_OK);
    t0 = cmn_http_now_ms();
    assert_int_equal(cmn_http_conn_handshake(c), CMN_ETIMEDOUT);
    assert_true(cmn_http_now_ms() - t0 < 1000);
    cmn_http_conn_free(c);
    SSL_free(ssl);
    close(sv[0]);
    close(sv[1]);
    /* A peer that answers with plain HTTP: a TLS error with a reason, not a hang. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    write_all(sv[1], "HTTP/1.1 400 Bad Request\r\n\r\n");
    ssl = SSL_new(cctx);
    SSL_set_fd(ssl, sv[0]);
    SSL_set_connect_state(ssl);
    assert_int_equal(cmn_http_conn_new_ssl(ssl, &lim, &c), CMN_OK);
    assert_int_equal(cmn_http_conn_handshake(c), CMN_ECRYPTO);
    assert_non_null(strstr(cmn_http_conn_errmsg(c), "TLS handshake failed"));
    cmn_http_conn_free(c);
    SSL_free(ssl);
    close(sv[0]);
    close(sv[1]);
    /* Plain connection. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(cmn_http_conn_new_fd(sv[0], NULL, &c), CMN_OK);
    assert_int_equal(cmn_http_conn_handshake(c), CMN_EUNSUPP);
    cmn_http_conn_free(c);
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(cctx);
    assert_int_equal(cmn_http_conn_new_fd(-1, NULL, &c), CMN_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_request_head_and_chunks_socketpair),
        cmocka_unit_test(test_http_request_one_byte_at_a_time),
        cmocka_unit_test(test_http_bad_heads),
        cmocka_unit_test(test_http_response_head_uppercase_chunks),
        cmocka_unit_test(test_http_chunk_limits),
        cmocka_unit_test(test_http_stalled_peer_times_out),
        cmocka_unit_test(test_http_peer_closes_mid_chunk),
        cmocka_unit_test(test_http_content_length_bodies),
        cmocka_unit_test(test_http_writers_exact_bytes),
        cmocka_unit_test(test_http_roundtrip_socketpair),
        cmocka_unit_test(test_http_tls_socketpair),
        cmocka_unit_test(test_http_tls_handshake_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
