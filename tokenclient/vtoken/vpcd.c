/* tokenclient/vtoken/vpcd.c - the vpcd link of the emulated card: connect, framing, control
 * bytes, reconnect (card spec §8, test-environment "PC/SC without hardware"). */
#include "tokenclient/vtoken/vpcd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

#define RETRY_MS 500
#define MSG_MAX 4096 /* short APDUs only (§8.2); anything larger breaks the link */

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
vt_vpcd_slot_init(struct vt_vpcd_slot *s, struct vt_card *card, const char *name,
                  const char *host, uint16_t port)
{
    memset(s, 0, sizeof(*s));
    s->card = card;
    s->name = name;
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = port;
    s->fd = -1;
}

int
vt_vpcd_connect(const char *host, uint16_t port)
{
    struct sockaddr_in sa;
    int fd, one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static enum cmn_rc
read_all(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return got == 0 ? CMN_ECLOSED : CMN_EPROTO;
        if (r < 0)
            return CMN_EIO;
        got += (size_t)r;
    }
    return CMN_OK;
}

static enum cmn_rc
write_all(int fd, const uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = send(fd, p + off, n - off, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CMN_EIO;
        off += (size_t)w;
    }
    return CMN_OK;
}

static enum cmn_rc
reply(int fd, const uint8_t *p, size_t n)
{
    uint8_t out[2 + VT_RESP_MAX];

    if (n > VT_RESP_MAX)
        return CMN_ETOOBIG;
    out[0] = (uint8_t)(n >> 8);
    out[1] = (uint8_t)n;
    memcpy(out + 2, p, n);
    return write_all(fd, out, 2 + n);
}

enum cmn_rc
vt_vpcd_handle(struct vt_card *card, int fd, unsigned long *apdus)
{
    uint8_t hdr[2], msg[MSG_MAX], resp[VT_RESP_MAX];
    size_t len, rlen = 0;
    int one = 1;
    enum cmn_rc rc;

    /* TCP_QUICKACK is not sticky: re-arm it before every read */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    rc = read_all(fd, hdr, 2);
    if (rc != CMN_OK)
        return rc;
    len = (size_t)(hdr[0] << 8 | hdr[1]);
    if (len > sizeof(msg))
        return CMN_EPROTO;
    rc = read_all(fd, msg, len);
    if (rc != CMN_OK)
        return rc == CMN_ECLOSED ? CMN_EPROTO : rc;
    if (len == 1) {
        switch (msg[0]) {
        case 0x00: /* power off */
            vt_card_power_off(card);
            return CMN_OK;
        case 0x01: /* power on */
        case 0x02: /* reset */
            vt_card_reset(card);
            return CMN_OK;
        case 0x04: /* get ATR: asked after every power on and on every presence poll */
            rlen = vt_card_atr(card, resp, sizeof(resp));
            return reply(fd, resp, rlen);
        default:
            return CMN_OK; /* unknown control byte: no answer */
        }
    }
    rc = vt_card_transmit(card, msg, len, resp, sizeof(resp), &rlen);
    if (rc == CMN_EIO)
        CMN_LOG(CMN_LOG_ERROR, "vtoken.save_failed", NULL, "msg=%s",
                "state file not written; the card answered anyway");
    else if (rc != CMN_OK)
        return rc;
    if (apdus != NULL)
        (*apdus)++;
    cmn_wipe(msg, len);
    return reply(fd, resp, rlen);
}

static void
drop(struct vt_vpcd_slot *s, enum cmn_rc why)
{
    CMN_LOG(CMN_LOG_NOTICE, "vtoken.disconnected", NULL, "card=%s port=%u apdus=%lu why=%s",
            s->name, (unsigned)s->port, s->apdus, cmn_strerror(why));
    close(s->fd);
    s->fd = -1;
    vt_card_power_off(s->card);
    s->retry_at_ms = now_ms() + RETRY_MS;
}

void
vt_vpcd_serve(struct vt_vpcd_slot *slots, size_t n, volatile sig_atomic_t *stop)
{
    struct pollfd pfd[16];
    size_t idx[16];
    int last_errno[16];

    if (n > 16)
        n = 16;
    for (size_t i = 0; i < n; i++)
        last_errno[i] = -1;
    while (!*stop) {
        size_t np = 0;
        uint64_t now = now_ms();
        int timeout = RETRY_MS;

        for (size_t i = 0; i < n; i++) {
            struct vt_vpcd_slot *s = &slots[i];

            if (s->fd < 0 && now >= s->retry_at_ms) {
                s->fd = vt_vpcd_connect(s->host, s->port);
                if (s->fd < 0) {
                    /* log once per failure kind, not every 500 ms */
                    if (last_errno[i] != errno)
                        CMN_LOG(CMN_LOG_INFO, "vtoken.waiting", NULL,
                                "card=%s host=%s port=%u err=\"%s\"", s->name, s->host,
                                (unsigned)s->port, strerror(errno));
                    last_errno[i] = errno;
                    s->retry_at_ms = now + RETRY_MS;
                } else {
                    last_errno[i] = -1;
                    CMN_LOG(CMN_LOG_NOTICE, "vtoken.connected", NULL, "card=%s host=%s port=%u",
                            s->name, s->host, (unsigned)s->port);
                }
            }
            if (s->fd >= 0) {
                pfd[np].fd = s->fd;
                pfd[np].events = POLLIN;
                pfd[np].revents = 0;
                idx[np++] = i;
            }
        }
        if (poll(pfd, (nfds_t)np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (size_t k = 0; k < np; k++) {
            struct vt_vpcd_slot *s = &slots[idx[k]];
            enum cmn_rc rc;

            if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
                continue;
            rc = vt_vpcd_handle(s->card, s->fd, &s->apdus);
            if (rc != CMN_OK)
                drop(s, rc);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (slots[i].fd >= 0) {
            close(slots[i].fd);
            slots[i].fd = -1;
        }
    }
}
