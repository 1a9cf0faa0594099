/* common/proxy.c - PROXY protocol v1/v2 header parsing (HAProxy's proxy-protocol.txt). */
#include "common/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"

static const uint8_t v2sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static void
set_text(struct cmn_proxy *p)
{
    const void *a = p->family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&p->src)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&p->src)->sin6_addr;

    if (inet_ntop(p->family, a, p->src_text, sizeof(p->src_text)) == NULL)
        p->src_text[0] = 0;
}

static enum cmn_rc
parse_v2(const uint8_t *buf, size_t n, struct cmn_proxy *p, size_t *consumed)
{
    struct cmn_rd r;
    const uint8_t *b;
    uint8_t ver_cmd, fam;
    uint16_t len;

    if (n < 16)
        return CMN_ESHORT;
    ver_cmd = buf[12];
    fam = buf[13];
    len = (uint16_t)(buf[14] << 8 | buf[15]);
    if ((ver_cmd >> 4) != 2 || ((ver_cmd & 15) != 0 && (ver_cmd & 15) != 1))
        return CMN_EPROTO;
    if (16u + len > CMN_PROXY_V2_MAX)
        return CMN_ETOOBIG;
    if (n < 16u + len)
        return CMN_ESHORT;
    memset(p, 0, sizeof(*p));
    p->version = 2;
    p->family = AF_UNSPEC;
    *consumed = 16u + len;
    if ((ver_cmd & 15) == 0) { /* LOCAL: the proxy's own connection; addresses ignored */
        p->local = true;
        return CMN_OK;
    }
    cmn_rd_init(&r, buf + 16, len);
    switch (fam) {
    case 0x11: { /* TCP over IPv4 */
        struct sockaddr_in *s = (struct sockaddr_in *)&p->src, *d = (struct sockaddr_in *)&p->dst;

        if (!cmn_rd_take(&r, 12, &b))
            return CMN_EPROTO;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, b, 4);
        memcpy(&d->sin_addr, b + 4, 4);
        memcpy(&s->sin_port, b + 8, 2);
        memcpy(&d->sin_port, b + 10, 2);
        p->family = AF_INET;
        p->src_port = (uint16_t)(b[8] << 8 | b[9]);
        break;
    }
    case 0x21: { /* TCP over IPv6 */
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&p->src,
                            *d = (struct sockaddr_in6 *)&p->dst;

        if (!cmn_rd_take(&r, 36, &b))
            return CMN_EPROTO;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, b, 16);
        memcpy(&d->sin6_addr, b + 16, 16);
        memcpy(&s->sin6_port, b + 32, 2);
        memcpy(&d->sin6_port, b + 34, 2);
        p->family = AF_INET6;
        p->src_port = (uint16_t)(b[32] << 8 | b[33]);
        break;
    }
    case 0x00: /* UNSPEC with PROXY: treat like LOCAL, no client known */
        p->local = true;
        return CMN_OK;
    default:
        return CMN_EPROTO; /* UDP, UNIX: not for a TPS listener */
    }
    /* TLVs follow: well-formed type(1) len(2) value, skipped */
    while (r.left > 0) {
        uint8_t t;
        uint16_t l;

        if (!cmn_rd_u8(&r, &t) || !cmn_rd_u16(&r, &l) || !cmn_rd_take(&r, l, &b))
            return CMN_EPROTO;
    }
    set_text(p);
    return CMN_OK;
}

/* "PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n" */
static enum cmn_rc
parse_v1(const uint8_t *buf, size_t n, struct cmn_proxy *p, size_t *consumed)
{
    char line[CMN_PROXY_V1_MAX + 1], *f[6], *save = NULL;
    const uint8_t *crlf = NULL;
    size_t len, nf = 0;
    unsigned long long sport, dport;
    int fam;

    for (size_t i = 0; i + 1 < n && i < CMN_PROXY_V1_MAX; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            crlf = buf + i;
            break;
        }
    }
    if (crlf == NULL)
        return n >= CMN_PROXY_V1_MAX ? CMN_EPROTO : CMN_ESHORT;
    len = (size_t)(crlf - buf);
    memcpy(line, buf, len);
    line[len] = 0;
    for (char *t = strtok_r(line, " ", &save); t != NULL && nf < 6; t = strtok_r(NULL, " ", &save))
        f[nf++] = t;
    memset(p, 0, sizeof(*p));
    p->version = 1;
    p->family = AF_UNSPEC;
    *consumed = len + 2;
    if (nf >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
        p->local = true;
        return CMN_OK;
    }
    if (nf != 6)
        return CMN_EPROTO;
    if (strcmp(f[1], "TCP4") == 0)
        fam = AF_INET;
    else if (strcmp(f[1], "TCP6") == 0)
        fam = AF_INET6;
    else
        return CMN_EPROTO;
    if (cmn_parse_uint(f[4], 0, 65535, &sport) != CMN_OK ||
        cmn_parse_uint(f[5], 0, 65535, &dport) != CMN_OK)
        return CMN_EPROTO;
    if (fam == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&p->src, *d = (struct sockaddr_in *)&p->dst;

        if (inet_pton(AF_INET, f[2], &s->sin_addr) != 1 ||
            inet_pton(AF_INET, f[3], &d->sin_addr) != 1)
            return CMN_EPROTO;
        s->sin_family = d->sin_family = AF_INET;
        s->sin_port = htons((uint16_t)sport);
        d->sin_port = htons((uint16_t)dport);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&p->src,
                            *d = (struct sockaddr_in6 *)&p->dst;

        if (inet_pton(AF_INET6, f[2], &s->sin6_addr) != 1 ||
            inet_pton(AF_INET6, f[3], &d->sin6_addr) != 1)
            return CMN_EPROTO;
        s->sin6_family = d->sin6_family = AF_INET6;
        s->sin6_port = htons((uint16_t)sport);
        d->sin6_port = htons((uint16_t)dport);
    }
    p->family = fam;
    p->src_port = (uint16_t)sport;
    set_text(p);
    return CMN_OK;
}

enum cmn_rc
cmn_proxy_parse(const uint8_t *buf, size_t n, struct cmn_proxy *p, size_t *consumed)
{
    size_t m = n < sizeof(v2sig) ? n : sizeof(v2sig);

    if (n == 0)
        return CMN_ESHORT;
    if (memcmp(buf, v2sig, m) == 0)
        return n < sizeof(v2sig) ? CMN_ESHORT : parse_v2(buf, n, p, consumed);
    m = n < 6 ? n : 6;
    if (memcmp(buf, "PROXY ", m) == 0)
        return n < 6 ? CMN_ESHORT : parse_v1(buf, n, p, consumed);
    return CMN_EPROTO;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum cmn_rc
cmn_proxy_read_fd(int fd, int timeout_ms, struct cmn_proxy *p)
{
    uint8_t buf[CMN_PROXY_V2_MAX];
    int64_t deadline = now_ms() + timeout_ms;
    size_t consumed = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        ssize_t got;
        enum cmn_rc rc;

        if (left <= 0)
            return CMN_ETIMEDOUT;
        if (poll(&pfd, 1, (int)left) <= 0)
            return CMN_ETIMEDOUT;
        /* peek: only the header's own bytes are taken off the socket below */
        got = recv(fd, buf, sizeof(buf), MSG_PEEK);
        if (got == 0)
            return CMN_ECLOSED;
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return CMN_EIO;
        }
        rc = cmn_proxy_parse(buf, (size_t)got, p, &consumed);
        if (rc == CMN_ESHORT) {
            /* wait for more bytes (a slow proxy); avoid spinning on the same peek */
            struct timespec ts = {0, 1000000};

            nanosleep(&ts, NULL);
            continue;
        }
        if (rc != CMN_OK)
            return CMN_EPROTO;
        while (consumed > 0) {
            got = recv(fd, buf, consumed, 0);
            if (got <= 0) {
                if (got < 0 && errno == EINTR)
                    continue;
                return CMN_EIO;
            }
            consumed -= (size_t)got;
        }
        return CMN_OK;
    }
}
