/* common/http.c - HTTP/1.1 connections: heads and bodies parsed by libhttp-parser (a push parser
 * fed from a capped read buffer, paused at the end of the head and of each chunk so that bytes
 * read ahead stay for the next call), writes as single units, deadlines through poll(). */
#include "common/http.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>

#define RBUF_SIZE 16384
#define ERR_SIZE 200

enum phase {
    PH_IDLE = 0, /* no head read yet */
    PH_HEAD = 1, /* reading a head */
    PH_BODY = 2, /* head read; body not complete */
    PH_DONE = 3, /* message complete */
    PH_BROKEN = 4,
};

struct cmn_http_conn {
    const struct cmn_http_io *io;
    void *io_ctx;
    int fd;
    bool is_sock;
    SSL *ssl;
    struct cmn_http_limits lim;

    /* read side */
    http_parser parser;
    http_parser_settings settings;
    uint8_t *rbuf;
    size_t rpos, rlen;
    bool eof;
    enum phase phase;
    size_t head_bytes;

    /* state shared with the parser callbacks */
    struct cmn_http_head *head; /* during a head read */
    int last_cb;                /* 0 none, 1 url, 2 field, 3 value */
    struct cmn_buf *sink;       /* body bytes go here */
    size_t sink_limit;          /* max bytes this call may add to sink */
    size_t sink_got;
    bool stop_at_chunk;         /* read_chunk: pause after each chunk */
    bool stop;                  /* a callback paused the parser on purpose */
    bool last_chunk;            /* the zero-size chunk was seen */
    enum cmn_rc cb_rc;          /* why a callback failed */

    char err[ERR_SIZE];
};

static void seterr(struct cmn_http_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
seterr(struct cmn_http_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static bool
is_tchar(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool
is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

int64_t
cmn_http_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes. */
static enum cmn_rc
wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = events, .revents = 0 };
        int64_t left = deadline - cmn_http_now_ms();
        int r;

        if (left <= 0)
            return CMN_ETIMEDOUT;
        r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return CMN_OK; /* ready, or POLLERR/POLLHUP: the next call tells which */
        if (r == 0)
            return CMN_ETIMEDOUT;
        if (errno != EINTR)
            return CMN_EIO;
    }
}

/* ---- plain fd transport ---- */

static enum cmn_rc
fd_read(void *ctx, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
    struct cmn_http_conn *c = ctx;

    for (;;) {
        ssize_t r = read(c->fd, p, n);
        enum cmn_rc rc;

        if (r > 0) {
            *got = (size_t)r;
            return CMN_OK;
        }
        if (r == 0)
            return CMN_ECLOSED;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET) {
            seterr(c, "connection reset by peer");
            return CMN_ECLOSED;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            seterr(c, "read: %s", strerror(errno));
            return CMN_EIO;
        }
        rc = wait_fd(c->fd, POLLIN, deadline);
        if (rc != CMN_OK)
            return rc;
    }
}

static enum cmn_rc
fd_write(void *ctx, const uint8_t *p, size_t n, int64_t deadline)
{
    struct cmn_http_conn *c = ctx;
    size_t off = 0;

    while (off < n) {
        ssize_t r;
        enum cmn_rc rc;

        /* MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill the process. */
        if (c->is_sock)
            r = send(c->fd, p + off, n - off, MSG_NOSIGNAL);
        else
            r = write(c->fd, p + off, n - off);
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            seterr(c, "peer closed the connection while we were writing");
            return CMN_ECLOSED;
        }
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            seterr(c, "write: %s", strerror(errno));
            return CMN_EIO;
        }
        rc = wait_fd(c->fd, POLLOUT, deadline);
        if (rc != CMN_OK)
            return rc;
    }
    return CMN_OK;
}

static const struct cmn_http_io fd_io = { fd_read, fd_write };

/* ---- TLS transport ---- */

/* Maps the result of an SSL call: CMN_OK to retry after waiting (done here), or the error. */
static enum cmn_rc
ssl_wait(struct cmn_http_conn *c, int r, int64_t deadline, const char *what)
{
    int e = SSL_get_error(c->ssl, r);
    unsigned long q;

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(c->fd, POLLIN, deadline);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(c->fd, POLLOUT, deadline);
    case SSL_ERROR_ZERO_RETURN:
        return CMN_ECLOSED;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() != 0)
            break; /* an OpenSSL failure reported this way: its reason is in the queue */
        if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
            seterr(c, "TLS %s: peer closed the connection", what);
            return CMN_ECLOSED;
        }
        seterr(c, "TLS %s: %s", what, strerror(errno));
        return CMN_EIO;
    default:
        break;
    }
    q = ERR_peek_last_error();
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
    if (ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        seterr(c, "TLS %s: peer closed the connection without close_notify", what);
        ERR_clear_error();
        return CMN_ECLOSED;
    }
#endif
    {
        char buf[120];

        ERR_error_string_n(q, buf, sizeof(buf));
        seterr(c, "TLS %s failed: %s", what, q ? buf : "unknown error");
    }
    ERR_clear_error();
    return CMN_ECRYPTO;
}

static enum cmn_rc
ssl_read(void *ctx, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
    struct cmn_http_conn *c = ctx;

    for (;;) {
        int r;
        enum cmn_rc rc;

        /* SSL_read first: bytes already decrypted (SSL_pending) need no poll. */
        ERR_clear_error();
        errno = 0;
        r = SSL_read(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
        if (r > 0) {
            *got = (size_t)r;
            return CMN_OK;
        }
        rc = ssl_wait(c, r, deadline, "read");
        if (rc != CMN_OK)
            return rc;
    }
}

static enum cmn_rc
ssl_write(void *ctx, const uint8_t *p, size_t n, int64_t deadline)
{
    struct cmn_http_conn *c = ctx;
    size_t off = 0;

    while (off < n) {
        size_t k = n - off > INT_MAX ? INT_MAX : n - off;
        int r;
        enum cmn_rc rc;

        ERR_clear_error();
        errno = 0;
        r = SSL_write(c->ssl, p + off, (int)k); /* retried with the same arguments */
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        rc = ssl_wait(c, r, deadline, "write");
        if (rc != CMN_OK)
            return rc;
    }
    return CMN_OK;
}

static const struct cmn_http_io ssl_io = { ssl_read, ssl_write };

/* ---- parser callbacks ---- */

static struct cmn_http_conn *
conn_of(http_parser *p)
{
    return p->data;
}

/* Appends a piece of a head string; a new string starts when the callback kind changes. */
static int
head_piece(struct cmn_http_conn *c, int kind, const char *at, size_t len)
{
    struct cmn_http_head *h = c->head;

    if (h == NULL)
        return 0; /* trailer fields after the last chunk: ignored (tps-protocol §1.3) */
    if (c->last_cb != kind) {
        if (c->last_cb != 0)
            h->store[h->store_len++] = '\0'; /* end the previous string */
        if (kind == 2) {
            if (h->nhdrs == c->lim.max_headers) {
                seterr(c, "more than %zu header fields", c->lim.max_headers);
                c->cb_rc = CMN_ETOOBIG;
                return -1;
            }
            h->hdrs[h->nhdrs].name = h->store + h->store_len;
            h->hdrs[h->nhdrs].value = "";
            h->nhdrs++;
        } else if (kind == 3) {
            h->hdrs[h->nhdrs - 1].value = h->store + h->store_len;
        } else {
            h->target = h->store + h->store_len;
        }
        c->last_cb = kind;
    }
    /* The store was sized for a whole head plus its NULs: this only trips on a bug. */
    if (len > h->store_cap - h->store_len - 1) {
        seterr(c, "head storage exhausted");
        c->cb_rc = CMN_ETOOBIG;
        return -1;
    }
    memcpy(h->store + h->store_len, at, len);
    h->store_len += len;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    return head_piece(conn_of(p), 1, at, len);
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    return head_piece(conn_of(p), 2, at, len);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    return head_piece(conn_of(p), 3, at, len);
}

static int
on_headers_complete(http_parser *p)
{
    struct cmn_http_conn *c = conn_of(p);
    struct cmn_http_head *h = c->head;

    if (c->last_cb != 0)
        h->store[h->store_len++] = '\0';
    c->last_cb = 0;
    c->stop = true;
    http_parser_pause(p, 1); /* the body is read by later calls */
    (void)h;
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct cmn_http_conn *c = conn_of(p);
    enum cmn_rc rc;

    if (c->sink == NULL || len > c->sink_limit - c->sink_got) {
        seterr(c, "body larger than %zu bytes", c->sink_limit);
        c->cb_rc = CMN_ETOOBIG;
        return -1;
    }
    rc = cmn_buf_append(c->sink, at, len);
    if (rc != CMN_OK) {
        seterr(c, rc == CMN_ETOOBIG ? "body larger than the output buffer (%zu bytes)"
                                    : "out of memory reading %zu body bytes",
               rc == CMN_ETOOBIG ? c->sink->max : len);
        c->cb_rc = rc;
        return -1;
    }
    c->sink_got += len;
    return 0;
}

static int
on_chunk_header(http_parser *p)
{
    struct cmn_http_conn *c = conn_of(p);
    uint64_t size = p->content_length;

    if (size == 0) {
        c->last_chunk = true;
        return 0;
    }
    /* Refuse an oversize chunk from its size line, before reading its payload. */
    if (c->stop_at_chunk && size > c->lim.max_chunk) {
        seterr(c, "chunk of %llu bytes exceeds maximum %zu", (unsigned long long)size,
               c->lim.max_chunk);
        c->cb_rc = CMN_ETOOBIG;
        return -1;
    }
    if (size > c->sink_limit - c->sink_got || size > c->sink->max - c->sink->len) {
        seterr(c, "chunk of %llu bytes does not fit (limit %zu)", (unsigned long long)size,
               c->sink_limit);
        c->cb_rc = CMN_ETOOBIG;
        return -1;
    }
    return 0;
}

static int
on_chunk_complete(http_parser *p)
{
    struct cmn_http_conn *c = conn_of(p);

    if (c->stop_at_chunk && !c->last_chunk) {
        c->stop = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct cmn_http_conn *c = conn_of(p);

    c->phase = PH_DONE;
    c->stop = true;
    http_parser_pause(p, 1);
    return 0;
}

/* ---- connection ---- */

static void
fill_limits(struct cmn_http_limits *l, const struct cmn_http_limits *in)
{
    struct cmn_http_limits z = { 0 };

    if (in == NULL)
        in = &z;
    l->max_head = in->max_head ? in->max_head : CMN_HTTP_DEF_MAX_HEAD;
    l->max_headers = in->max_headers ? in->max_headers : CMN_HTTP_DEF_MAX_HEADERS;
    l->max_body = in->max_body ? in->max_body : CMN_HTTP_DEF_MAX_BODY;
    l->max_chunk = in->max_chunk ? in->max_chunk : CMN_HTTP_DEF_MAX_CHUNK;
    l->timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : CMN_HTTP_DEF_TIMEOUT_MS;
}

static enum cmn_rc
conn_alloc(const struct cmn_http_limits *lim, struct cmn_http_conn **out)
{
    struct cmn_http_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return CMN_ENOMEM;
    c->rbuf = malloc(RBUF_SIZE);
    if (c->rbuf == NULL) {
        free(c);
        return CMN_ENOMEM;
    }
    fill_limits(&c->lim, lim);
    c->fd = -1;
    http_parser_settings_init(&c->settings);
    c->settings.on_url = on_url;
    c->settings.on_header_field = on_header_field;
    c->settings.on_header_value = on_header_value;
    c->settings.on_headers_complete = on_headers_complete;
    c->settings.on_body = on_body;
    c->settings.on_chunk_header = on_chunk_header;
    c->settings.on_chunk_complete = on_chunk_complete;
    c->settings.on_message_complete = on_message_complete;
    *out = c;
    return CMN_OK;
}

static enum cmn_rc
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl == -1)
        return CMN_EIO;
    if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
        return CMN_EIO;
    return CMN_OK;
}

static enum cmn_rc
conn_new_on_fd(int fd, SSL *ssl, const struct cmn_http_limits *lim, struct cmn_http_conn **out)
{
    struct cmn_http_conn *c;
    struct stat st;
    enum cmn_rc rc;

    if (fd < 0)
        return CMN_EINVAL;
    if (fstat(fd, &st) != 0 || set_nonblock(fd) != CMN_OK)
        return CMN_EIO;
    rc = conn_alloc(lim, &c);
    if (rc != CMN_OK)
        return rc;
    c->fd = fd;
    c->is_sock = S_ISSOCK(st.st_mode);
    c->ssl = ssl;
    c->io = ssl != NULL ? &ssl_io : &fd_io;
    c->io_ctx = c;
    *out = c;
    return CMN_OK;
}

enum cmn_rc
cmn_http_conn_new_fd(int fd, const struct cmn_http_limits *lim, struct cmn_http_conn **out)
{
    return conn_new_on_fd(fd, NULL, lim, out);
}

enum cmn_rc
cmn_http_conn_new_ssl(SSL *ssl, const struct cmn_http_limits *lim, struct cmn_http_conn **out)
{
    if (ssl == NULL)
        return CMN_EINVAL;
    /* OpenSSL refuses to move bytes until the side is chosen ("connection type not set"):
     * keep the caller's choice, else take the one of the SSL_CTX's method. */
    if (SSL_in_before(ssl)) {
        if (SSL_is_server(ssl))
            SSL_set_accept_state(ssl);
        else
            SSL_set_connect_state(ssl);
    }
    return conn_new_on_fd(SSL_get_fd(ssl), ssl, lim, out);
}

enum cmn_rc
cmn_http_conn_new_io(const struct cmn_http_io *io, void *ctx, const struct cmn_http_limits *lim,
                     struct cmn_http_conn **out)
{
    struct cmn_http_conn *c;
    enum cmn_rc rc;

    if (io == NULL || io->read == NULL || io->write == NULL)
        return CMN_EINVAL;
    rc = conn_alloc(lim, &c);
    if (rc != CMN_OK)
        return rc;
    c->io = io;
    c->io_ctx = ctx;
    *out = c;
    return CMN_OK;
}

void
cmn_http_conn_free(struct cmn_http_conn *c)
{
    if (c == NULL)
        return;
    /* Request bodies carry PINs and passwords: wipe what was read. */
    cmn_wipe(c->rbuf, RBUF_SIZE);
    free(c->rbuf);
    free(c);
}

void
cmn_http_conn_set_timeout(struct cmn_http_conn *c, int timeout_ms)
{
    if (timeout_ms > 0)
        c->lim.timeout_ms = timeout_ms;
}

const char *
cmn_http_conn_errmsg(const struct cmn_http_conn *c)
{
    return c->err;
}

static int64_t
deadline_of(const struct cmn_http_conn *c)
{
    return cmn_http_now_ms() + c->lim.timeout_ms;
}

enum cmn_rc
cmn_http_conn_handshake(struct cmn_http_conn *c)
{
    int64_t deadline = deadline_of(c);

    c->err[0] = '\0';
    if (c->ssl == NULL) {
        seterr(c, "TLS handshake on a plain connection");
        return CMN_EUNSUPP;
    }
    for (;;) {
        int r;
        enum cmn_rc rc;

        ERR_clear_error();
        errno = 0;
        r = SSL_do_handshake(c->ssl);
        if (r == 1)
            return CMN_OK;
        rc = ssl_wait(c, r, deadline, "handshake");
        if (rc == CMN_ETIMEDOUT)
            seterr(c, "TLS handshake timed out after %d ms", c->lim.timeout_ms);
        else if (rc == CMN_ECLOSED && c->err[0] == '\0')
            seterr(c, "peer closed the connection during the TLS handshake");
        if (rc != CMN_OK)
            return rc;
    }
}

bool
cmn_http_conn_has_buffered(const struct cmn_http_conn *c)
{
    if (c->rpos < c->rlen)
        return true;
    return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}

/* Reads more bytes into the (drained) read buffer. */
static enum cmn_rc
fill(struct cmn_http_conn *c, int64_t deadline)
{
    size_t got = 0;
    enum cmn_rc rc;

    c->rpos = 0;
    c->rlen = 0;
    rc = c->io->read(c->io_ctx, c->rbuf, RBUF_SIZE, deadline, &got);
    if (rc == CMN_OK && got == 0)
        rc = CMN_EIO; /* a transport breaking its contract */
    if (rc == CMN_OK)
        c->rlen = got;
    return rc;
}

static const char *
phase_what(const struct cmn_http_conn *c)
{
    if (c->phase == PH_HEAD)
        return "head";
    return c->stop_at_chunk ? "chunk" : "body";
}

/* Feeds the parser until a callback pauses it (c->stop) or something fails. */
static enum cmn_rc
pump(struct cmn_http_conn *c, int64_t deadline)
{
    c->stop = false;
    c->cb_rc = CMN_OK;
    for (;;) {
        size_t avail = c->rlen - c->rpos, give, n;
        enum http_errno he;

        if (avail == 0 && !c->eof) {
            enum cmn_rc rc = fill(c, deadline);

            if (rc == CMN_ECLOSED) {
                c->eof = true;
            } else if (rc == CMN_ETIMEDOUT) {
                seterr(c, "timed out after %d ms waiting for the %s", c->lim.timeout_ms,
                       phase_what(c));
                return rc;
            } else if (rc != CMN_OK) {
                if (c->err[0] == '\0')
                    seterr(c, "read failed: %s", cmn_strerror(rc));
                return rc;
            }
            continue;
        }
        if (avail == 0) {
            /* EOF: tell the parser (ends a body delimited by the connection's end). */
            (void)http_parser_execute(&c->parser, &c->settings, NULL, 0);
            if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
                http_parser_pause(&c->parser, 0);
                if (c->stop)
                    return CMN_OK;
            }
            if (c->cb_rc != CMN_OK)
                return c->cb_rc;
            seterr(c, "connection closed before the end of the %s", phase_what(c));
            return CMN_ECLOSED;
        }
        give = avail;
        if (c->phase == PH_HEAD) {
            size_t room = c->lim.max_head - c->head_bytes;

            if (room == 0) {
                seterr(c, "head larger than %zu bytes", c->lim.max_head);
                return CMN_ETOOBIG;
            }
            if (give > room)
                give = room;
        }
        n = http_parser_execute(&c->parser, &c->settings, (const char *)c->rbuf + c->rpos, give);
        if (n > give)
            n = give;
        c->rpos += n;
        if (c->phase == PH_HEAD)
            c->head_bytes += n;
        he = HTTP_PARSER_ERRNO(&c->parser);
        if (he == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->stop)
                return CMN_OK;
            continue;
        }
        if (he != HPE_OK) {
            if (c->cb_rc != CMN_OK)
                return c->cb_rc;
            seterr(c, "bad HTTP %s: %s", phase_what(c), http_errno_description(he));
            return CMN_EPROTO;
        }
        if (n < give) {
            /* The parser stopped without error: an upgrade or CONNECT. */
            seterr(c, "HTTP upgrade/CONNECT is not supported");
            return CMN_EPROTO;
        }
    }
}

void
cmn_http_head_init(struct cmn_http_head *h)
{
    memset(h, 0, sizeof(*h));
}

void
cmn_http_head_cleanup(struct cmn_http_head *h)
{
    free(h->hdrs);
    free(h->store);
    cmn_http_head_init(h);
}

const char *
cmn_http_head_get(const struct cmn_http_head *h, const char *name)
{
    for (size_t i = 0; i < h->nhdrs; i++)
        if (strcasecmp(h->hdrs[i].name, name) == 0)
            return h->hdrs[i].value;
    return NULL;
}

/* Copies url[off..off+len) into the store as a new string. */
static const char *
store_copy(struct cmn_http_head *h, const char *s, size_t len)
{
    char *d = h->store + h->store_len;

    memcpy(d, s, len);
    d[len] = '\0';
    h->store_len += len + 1;
    return d;
}

/* Strips trailing blanks from header values (the parser strips the leading ones). */
static void
trim_values(struct cmn_http_head *h)
{
    for (size_t i = 0; i < h->nhdrs; i++) {
        char *v = (char *)(uintptr_t)h->hdrs[i].value;
        size_t n = strlen(v);

        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            v[--n] = '\0';
    }
}

static enum cmn_rc
read_head(struct cmn_http_conn *c, struct cmn_http_head *h, bool request)
{
    int64_t deadline = deadline_of(c);
    enum cmn_rc rc;

    c->err[0] = '\0';
    cmn_http_head_cleanup(h);
    if (c->phase != PH_IDLE) {
        seterr(c, "a head was already read on this connection");
        return CMN_EINVAL;
    }
    /* Every head byte lands at most once in the store, plus NULs and the path/query copies. */
    h->store_cap = 2 * c->lim.max_head + 2 * c->lim.max_headers + 16;
    h->store = malloc(h->store_cap);
    h->hdrs = calloc(c->lim.max_headers, sizeof(*h->hdrs));
    if (h->store == NULL || h->hdrs == NULL) {
        cmn_http_head_cleanup(h);
        seterr(c, "out of memory");
        return CMN_ENOMEM;
    }
    h->is_request = request;
    http_parser_init(&c->parser, request ? HTTP_REQUEST : HTTP_RESPONSE);
    c->parser.data = c;
    c->head = h;
    c->last_cb = 0;
    c->head_bytes = 0;
    c->phase = PH_HEAD;
    c->sink = NULL;
    c->sink_limit = 0;
    c->sink_got = 0;
    rc = pump(c, deadline);
    c->head = NULL;
    if (rc != CMN_OK)
        goto fail;
    if (c->parser.upgrade) {
        seterr(c, "HTTP upgrade/CONNECT is not supported");
        rc = CMN_EPROTO;
        goto fail;
    }
    h->http_major = c->parser.http_major;
    h->http_minor = c->parser.http_minor;
    h->chunked = (c->parser.flags & F_CHUNKED) != 0;
    h->has_length = (c->parser.flags & F_CONTENTLENGTH) != 0;
    h->content_length = h->has_length ? c->parser.content_length : 0;
    trim_values(h);
    /* libhttp-parser as built by Debian is lenient (HTTP_PARSER_STRICT=0) about blanks in
     * field names; a name must be a token (RFC 9110 5.1). */
    for (size_t i = 0; i < h->nhdrs; i++) {
        if (!is_token(h->hdrs[i].name)) {
            seterr(c, "bad HTTP head: header field %zu has an invalid name", i + 1);
            rc = CMN_EPROTO;
            goto fail;
        }
    }
    if (request) {
        struct http_parser_url u;
        const char *m = http_method_str((enum http_method)c->parser.method);

        (void)snprintf(h->method, sizeof(h->method), "%s", m);
        if (h->target == NULL) {
            seterr(c, "request without a target");
            rc = CMN_EPROTO;
            goto fail;
        }
        http_parser_url_init(&u);
        if (http_parser_parse_url(h->target, strlen(h->target), 0, &u) != 0) {
            seterr(c, "bad request-target");
            rc = CMN_EPROTO;
            goto fail;
        }
        if (u.field_set & (1 << UF_PATH))
            h->path = store_copy(h, h->target + u.field_data[UF_PATH].off,
                                 u.field_data[UF_PATH].len);
        else
            h->path = store_copy(h, "/", 1);
        if (u.field_set & (1 << UF_QUERY))
            h->query = store_copy(h, h->target + u.field_data[UF_QUERY].off,
                                  u.field_data[UF_QUERY].len);
    } else {
        h->status = (int)c->parser.status_code;
    }
    c->phase = PH_BODY;
    return CMN_OK;
fail:
    c->phase = PH_BROKEN;
    cmn_http_head_cleanup(h);
    return rc;
}

enum cmn_rc
cmn_http_read_request_head(struct cmn_http_conn *c, struct cmn_http_head *h)
{
    return read_head(c, h, true);
}

enum cmn_rc
cmn_http_read_response_head(struct cmn_http_conn *c, struct cmn_http_head *h)
{
    return read_head(c, h, false);
}

static enum cmn_rc
body_ready(struct cmn_http_conn *c)
{
    if (c->phase == PH_BODY)
        return CMN_OK;
    if (c->phase == PH_DONE)
        seterr(c, "the body is already complete");
    else if (c->phase == PH_IDLE)
        seterr(c, "no head was read on this connection");
    else
        seterr(c, "the connection failed earlier");
    return CMN_EINVAL;
}

enum cmn_rc
cmn_http_read_body(struct cmn_http_conn *c, struct cmn_buf *out)
{
    int64_t deadline = deadline_of(c);
    size_t start = out->len;
    enum cmn_rc rc;

    c->err[0] = '\0';
    rc = body_ready(c);
    if (rc != CMN_OK)
        return rc;
    if ((c->parser.flags & F_CONTENTLENGTH) && c->parser.content_length > c->lim.max_body) {
        seterr(c, "Content-Length %llu exceeds maximum %zu",
               (unsigned long long)c->parser.content_length, c->lim.max_body);
        c->phase = PH_BROKEN;
        return CMN_ETOOBIG;
    }
    c->sink = out;
    c->sink_limit = c->lim.max_body;
    c->sink_got = 0;
    c->stop_at_chunk = false;
    while (c->phase == PH_BODY) {
        rc = pump(c, deadline);
        if (rc != CMN_OK)
            break;
    }
    c->sink = NULL;
    if (rc != CMN_OK) {
        out->len = start;
        c->phase = PH_BROKEN;
    }
    return rc;
}

enum cmn_rc
cmn_http_read_chunk(struct cmn_http_conn *c, struct cmn_buf *out, bool *last)
{
    int64_t deadline = deadline_of(c);
    size_t start = out->len;
    enum cmn_rc rc;

    c->err[0] = '\0';
    *last = false;
    rc = body_ready(c);
    if (rc != CMN_OK)
        return rc;
    if ((c->parser.flags & F_CHUNKED) == 0) {
        seterr(c, "the body is not chunked");
        return CMN_EINVAL;
    }
    c->sink = out;
    c->sink_limit = c->lim.max_chunk;
    c->sink_got = 0;
    c->stop_at_chunk = true;
    rc = pump(c, deadline);
    c->sink = NULL;
    if (rc != CMN_OK) {
        out->len = start;
        c->phase = PH_BROKEN;
        return rc;
    }
    *last = c->phase == PH_DONE;
    return CMN_OK;
}

/* ---- writing ---- */

static enum cmn_rc
send_buf(struct cmn_http_conn *c, const uint8_t *p, size_t n)
{
    enum cmn_rc rc;

    rc = c->io->write(c->io_ctx, p, n, deadline_of(c));
    if (rc == CMN_ETIMEDOUT)
        seterr(c, "write timed out after %d ms", c->lim.timeout_ms);
    else if (rc != CMN_OK && c->err[0] == '\0')
        seterr(c, "write failed: %s", cmn_strerror(rc));
    return rc;
}

enum cmn_rc
cmn_http_write_raw(struct cmn_http_conn *c, const void *p, size_t n)
{
    c->err[0] = '\0';
    return send_buf(c, p, n);
}

/* Field values and targets: no CR, LF, NUL or other controls except HT. */
static bool
is_clean(const char *s, bool allow_space)
{
    if (s == NULL)
        return false;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f || (!allow_space && (ch == ' ' || ch == '\t')))
            return false;
    }
    return true;
}

static enum cmn_rc
put_headers(struct cmn_http_conn *c, struct cmn_buf *b, const struct cmn_http_hdr *hdrs,
            size_t n)
{
    enum cmn_rc rc = CMN_OK;

    for (size_t i = 0; i < n && rc == CMN_OK; i++) {
        if (!is_token(hdrs[i].name) || !is_clean(hdrs[i].value, true)) {
            seterr(c, "header %zu: bad name or value", i);
            return CMN_EINVAL;
        }
        rc = cmn_buf_printf(b, "%s: %s\r\n", hdrs[i].name, hdrs[i].value);
    }
    return rc;
}

static enum cmn_rc
finish_head(struct cmn_http_conn *c, struct cmn_buf *b, enum cmn_rc rc)
{
    if (rc == CMN_OK)
        rc = cmn_buf_puts(b, "\r\n");
    if (rc == CMN_ETOOBIG)
        seterr(c, "head larger than %zu bytes", c->lim.max_head);
    if (rc == CMN_OK)
        rc = send_buf(c, b->data, b->len);
    cmn_buf_cleanup(b);
    return rc;
}

enum cmn_rc
cmn_http_write_request_head(struct cmn_http_conn *c, const char *method, const char *target,
                            const struct cmn_http_hdr *hdrs, size_t n)
{
    struct cmn_buf b;
    enum cmn_rc rc;

    c->err[0] = '\0';
    if (!is_token(method) || !is_clean(target, false) || target[0] == '\0' ||
        (n > 0 && hdrs == NULL)) {
        seterr(c, "bad method or request-target");
        return CMN_EINVAL;
    }
    cmn_buf_init(&b, c->lim.max_head);
    rc = cmn_buf_printf(&b, "%s %s HTTP/1.1\r\n", method, target);
    if (rc == CMN_OK)
        rc = put_headers(c, &b, hdrs, n);
    if (rc == CMN_EINVAL) {
        cmn_buf_cleanup(&b);
        return rc;
    }
    return finish_head(c, &b, rc);
}

enum cmn_rc
cmn_http_write_response_head(struct cmn_http_conn *c, int status, const char *reason,
                             const struct cmn_http_hdr *hdrs, size_t n)
{
    struct cmn_buf b;
    enum cmn_rc rc;

    c->err[0] = '\0';
    if (reason == NULL)
        reason = cmn_http_reason(status);
    if (status < 100 || status > 599 || !is_clean(reason, true) || (n > 0 && hdrs == NULL)) {
        seterr(c, "bad status %d or reason", status);
        return CMN_EINVAL;
    }
    cmn_buf_init(&b, c->lim.max_head);
    rc = cmn_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, reason);
    if (rc == CMN_OK)
        rc = put_headers(c, &b, hdrs, n);
    if (rc == CMN_EINVAL) {
        cmn_buf_cleanup(&b);
        return rc;
    }
    return finish_head(c, &b, rc);
}

enum cmn_rc
cmn_http_write_chunk(struct cmn_http_conn *c, const void *p, size_t n)
{
    struct cmn_buf b;
    enum cmn_rc rc;

    c->err[0] = '\0';
    if (n == 0 || n > c->lim.max_chunk || p == NULL) {
        seterr(c, "chunk size %zu not in 1..%zu", n, c->lim.max_chunk);
        return CMN_EINVAL;
    }
    /* One buffer, one write: the chunk leaves as a unit (tps-protocol §1.3). It may hold a
     * PIN or password, so the buffer is wiped. */
    cmn_buf_init_secret(&b, n + 32);
    rc = cmn_buf_printf(&b, "%zx\r\n", n);
    if (rc == CMN_OK)
        rc = cmn_buf_append(&b, p, n);
    if (rc == CMN_OK)
        rc = cmn_buf_puts(&b, "\r\n");
    if (rc == CMN_OK)
        rc = send_buf(c, b.data, b.len);
    else
        seterr(c, "out of memory");
    cmn_buf_cleanup(&b);
    return rc;
}

enum cmn_rc
cmn_http_write_last_chunk(struct cmn_http_conn *c)
{
    c->err[0] = '\0';
    return send_buf(c, (const uint8_t *)"0\r\n\r\n", 5);
}

enum cmn_rc
cmn_http_write_response(struct cmn_http_conn *c, int status, const char *reason,
                        const char *content_type, const struct cmn_http_hdr *hdrs, size_t n,
                        const void *body, size_t len)
{
    struct cmn_buf b;
    enum cmn_rc rc;

    c->err[0] = '\0';
    if (reason == NULL)
        reason = cmn_http_reason(status);
    if (status < 100 || status > 599 || !is_clean(reason, true) || (n > 0 && hdrs == NULL) ||
        (len > 0 && body == NULL) || (content_type != NULL && !is_clean(content_type, true))) {
        seterr(c, "bad status, reason, content type or body");
        return CMN_EINVAL;
    }
    if (len > c->lim.max_body) {
        seterr(c, "body of %zu bytes exceeds maximum %zu", len, c->lim.max_body);
        return CMN_ETOOBIG;
    }
    cmn_buf_init(&b, c->lim.max_head + len);
    rc = cmn_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, reason);
    if (rc == CMN_OK && content_type != NULL)
        rc = cmn_buf_printf(&b, "Content-Type: %s\r\n", content_type);
    if (rc == CMN_OK)
        rc = cmn_buf_printf(&b, "Content-Length: %zu\r\nConnection: close\r\n", len);
    if (rc == CMN_OK)
        rc = put_headers(c, &b, hdrs, n);
    if (rc == CMN_OK)
        rc = cmn_buf_puts(&b, "\r\n");
    if (rc == CMN_OK && len > 0)
        rc = cmn_buf_append(&b, body, len);
    if (rc == CMN_OK)
        rc = send_buf(c, b.data, b.len);
    else if (rc == CMN_ETOOBIG)
        seterr(c, "head larger than %zu bytes", c->lim.max_head);
    cmn_buf_cleanup(&b);
    return rc;
}

const char *
cmn_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

enum cmn_rc
cmn_http_set_nodelay(int fd)
{
    int one = 1;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        return CMN_EIO;
    return CMN_OK;
}
