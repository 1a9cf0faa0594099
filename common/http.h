/* common/http.h - HTTP/1.1 for the gateway, pki-sim and the token client: request and response
 * heads parsed by libhttp-parser, Content-Length and chunked bodies read chunk by chunk, heads
 * and chunks written as units, over a plain fd, an OpenSSL SSL* or a caller-supplied transport,
 * with a deadline on every read and write and a cap on every size. */
#ifndef CMN_HTTP_H
#define CMN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/buf.h"
#include "common/rc.h"

/* Caps and the default deadline of a connection. Zero fields take the defaults below. */
struct cmn_http_limits {
    size_t max_head;    /* bytes of a request/response head, start line included */
    size_t max_headers; /* header fields per head */
    size_t max_body;    /* a whole Content-Length / until-EOF / de-chunked body */
    size_t max_chunk;   /* one chunk's payload */
    int timeout_ms;     /* deadline of each read/write call, from its start */
};
#define CMN_HTTP_DEF_MAX_HEAD 16384
#define CMN_HTTP_DEF_MAX_HEADERS 64
#define CMN_HTTP_DEF_MAX_BODY ((size_t)1024 * 1024)
#define CMN_HTTP_DEF_MAX_CHUNK 65536
#define CMN_HTTP_DEF_TIMEOUT_MS 30000

/* A transport: how the connection moves bytes. Both functions must honour the absolute
 * deadline `deadline_ms` (CLOCK_MONOTONIC milliseconds, see cmn_http_now_ms()).
 * read: reads 1..n bytes into p; *got = count. Returns CMN_OK, CMN_ECLOSED (orderly EOF),
 *       CMN_ETIMEDOUT, CMN_EIO. Must not return CMN_OK with *got == 0.
 * write: writes all n bytes. Returns CMN_OK, CMN_ETIMEDOUT, CMN_ECLOSED, CMN_EIO. */
typedef enum cmn_rc cmn_http_read_fn(void *ctx, uint8_t *p, size_t n, int64_t deadline_ms,
                                     size_t *got);
typedef enum cmn_rc cmn_http_write_fn(void *ctx, const uint8_t *p, size_t n,
                                      int64_t deadline_ms);
struct cmn_http_io {
    cmn_http_read_fn *read;
    cmn_http_write_fn *write;
};

/* One HTTP connection; opaque. One thread at a time. */
struct cmn_http_conn;

/* Creates a connection over the socket/pipe `fd` (borrowed: never closed here). The fd is
 * switched to O_NONBLOCK so that deadlines hold. lim may be NULL (defaults).
 * [out] *out, caller frees with cmn_http_conn_free(). CMN_EINVAL (fd < 0), CMN_EIO, CMN_ENOMEM. */
enum cmn_rc cmn_http_conn_new_fd(int fd, const struct cmn_http_limits *lim,
                                 struct cmn_http_conn **out);
/* Same over an OpenSSL connection (borrowed; its fd must be set with SSL_set_fd and is switched
 * to O_NONBLOCK). If no handshake has started, the side is set here: the caller's
 * SSL_set_accept_state()/SSL_set_connect_state() choice if made, else server for a
 * TLS_server_method (or generic TLS_method) context and client for TLS_client_method. The
 * handshake is done by cmn_http_conn_handshake(), or implicitly by the first read/write.
 * Reads are SSL_pending-aware: buffered TLS bytes are used before polling. OpenSSL's socket
 * BIO writes with write(2): a process using TLS must ignore SIGPIPE (plain fds use
 * MSG_NOSIGNAL and need not). */
enum cmn_rc cmn_http_conn_new_ssl(SSL *ssl, const struct cmn_http_limits *lim,
                                  struct cmn_http_conn **out);
/* Same over a caller transport (memory buffers in tests and fuzzing). io and ctx are borrowed
 * for the connection's life. */
enum cmn_rc cmn_http_conn_new_io(const struct cmn_http_io *io, void *ctx,
                                 const struct cmn_http_limits *lim, struct cmn_http_conn **out);
/* Frees the connection (not the fd, not the SSL). NULL is a no-op. */
void cmn_http_conn_free(struct cmn_http_conn *c);

/* Runs the TLS handshake (SSL_accept for a server SSL, SSL_connect for a client) within the
 * connection's deadline. CMN_EUNSUPP on a plain connection, CMN_ETIMEDOUT, CMN_ECRYPTO (the
 * OpenSSL reason is in the detail), CMN_ECLOSED. */
enum cmn_rc cmn_http_conn_handshake(struct cmn_http_conn *c);

/* Changes the deadline used by the following calls (ms, > 0); e.g. the server's idle read
 * timeout while waiting for the client's next message (tps-protocol §1.7). */
void cmn_http_conn_set_timeout(struct cmn_http_conn *c, int timeout_ms);
/* Detail of the last failure on c ("head larger than 16384 bytes", "read timed out after
 * 250 ms", ...), "" if none. Borrowed until the next call on c. Never NULL. */
const char *cmn_http_conn_errmsg(const struct cmn_http_conn *c);

/* Current CLOCK_MONOTONIC time in milliseconds. */
int64_t cmn_http_now_ms(void);

/* A header field. In a parsed head both strings are owned by the head. */
struct cmn_http_hdr {
    const char *name;
    const char *value; /* leading/trailing blanks removed by the parser */
};

/* A parsed request or response head. cmn_http_head_init() before use, cleanup after.
 * All strings are NUL-terminated and owned by the head. */
struct cmn_http_head {
    bool is_request;
    char method[16];        /* request: "POST", "GET", ... */
    const char *target;     /* request: the request-target as sent ("/tps/tps?x=1") */
    const char *path;       /* request: the path part ("/tps/tps") */
    const char *query;      /* request: the query without '?', or NULL */
    int status;             /* response: status code */
    unsigned http_major, http_minor;
    struct cmn_http_hdr *hdrs; /* nhdrs entries, in arrival order */
    size_t nhdrs;
    bool chunked;           /* Transfer-Encoding ends in chunked */
    bool has_length;        /* Content-Length present */
    uint64_t content_length;
    char *store;            /* owned storage for every string above */
    size_t store_len, store_cap;
};

void cmn_http_head_init(struct cmn_http_head *h);
void cmn_http_head_cleanup(struct cmn_http_head *h);
/* Value of the first header called `name` (case-insensitive), or NULL. Borrowed from h. */
const char *cmn_http_head_get(const struct cmn_http_head *h, const char *name);

/* Reads and parses a request head (libhttp-parser). Bytes read past the head stay in the
 * connection for the body. [out] h (previous contents released). Returns CMN_OK;
 * CMN_ETOOBIG (head > max_head, more than max_headers), CMN_EPROTO (not HTTP, upgrade or
 * CONNECT), CMN_ETIMEDOUT, CMN_ECLOSED (EOF before the head ended), CMN_EIO. The detail names
 * the problem. A connection carries one message each way: call this once. */
enum cmn_rc cmn_http_read_request_head(struct cmn_http_conn *c, struct cmn_http_head *h);
/* Same for a response head (status line). */
enum cmn_rc cmn_http_read_response_head(struct cmn_http_conn *c, struct cmn_http_head *h);

/* Reads the rest of the body into out (appended): Content-Length bytes, all chunks of a
 * chunked body, or - for a response with neither - everything until EOF. Capped by
 * lim.max_body and out->max (CMN_ETOOBIG). A body without length and not chunked is empty for
 * a request. CMN_EPROTO (bad chunk syntax), CMN_ECLOSED (EOF inside the body), CMN_ETIMEDOUT
 * (the deadline is for the whole body), CMN_EIO. */
enum cmn_rc cmn_http_read_body(struct cmn_http_conn *c, struct cmn_buf *out);

/* Reads exactly one chunk of a chunked body; its payload is appended to out. *last is set
 * when the zero-size chunk (and the trailer section, which is ignored) has been read; out gets
 * nothing then. Hex sizes in either case; chunk extensions are ignored. CMN_EINVAL (body not
 * chunked, or already complete), CMN_ETOOBIG (chunk > lim.max_chunk or out->max: detected from
 * the size line before the payload is read), CMN_EPROTO, CMN_ECLOSED (EOF before or inside
 * the chunk), CMN_ETIMEDOUT (the deadline covers this one chunk), CMN_EIO. */
enum cmn_rc cmn_http_read_chunk(struct cmn_http_conn *c, struct cmn_buf *out, bool *last);

/* True when a call to read would find bytes without waiting (buffered in the connection or
 * pending in TLS). */
bool cmn_http_conn_has_buffered(const struct cmn_http_conn *c);

/* Writes "<method> <target> HTTP/1.1\r\n", the n headers, and "\r\n" in one write.
 * Names must be tokens, values free of CR/LF/NUL, method a token: CMN_EINVAL otherwise.
 * CMN_ETOOBIG if the head exceeds max_head. */
enum cmn_rc cmn_http_write_request_head(struct cmn_http_conn *c, const char *method,
                                        const char *target, const struct cmn_http_hdr *hdrs,
                                        size_t n);
/* Writes "HTTP/1.1 <status> <reason>\r\n", the n headers, and "\r\n" in one write.
 * status 100..599; reason NULL takes the standard phrase. */
enum cmn_rc cmn_http_write_response_head(struct cmn_http_conn *c, int status,
                                         const char *reason, const struct cmn_http_hdr *hdrs,
                                         size_t n);
/* Writes one chunk "<hex>\r\n<payload>\r\n" in one write (so one message = one chunk,
 * tps-protocol §1.3). The size is written in lowercase hex, as the §9 examples show.
 * n must be 1..max_chunk (CMN_EINVAL for 0: use cmn_http_write_last_chunk()). */
enum cmn_rc cmn_http_write_chunk(struct cmn_http_conn *c, const void *p, size_t n);
/* Writes the last chunk "0\r\n\r\n" (no trailers). */
enum cmn_rc cmn_http_write_last_chunk(struct cmn_http_conn *c);
/* Writes a whole response: status line, Content-Type (if not NULL), Content-Length,
 * "Connection: close", the n extra headers, the blank line and the body, in one write. */
enum cmn_rc cmn_http_write_response(struct cmn_http_conn *c, int status, const char *reason,
                                    const char *content_type, const struct cmn_http_hdr *hdrs,
                                    size_t n, const void *body, size_t len);
/* Writes raw bytes (tests of broken peers). */
enum cmn_rc cmn_http_write_raw(struct cmn_http_conn *c, const void *p, size_t n);

/* Standard reason phrase of an HTTP status ("OK", "Bad Request", ...); "Unknown" otherwise. */
const char *cmn_http_reason(int status);

/* Sets TCP_NODELAY on a TCP socket (tps-protocol §1.7). CMN_EIO (errno kept) on failure. */
enum cmn_rc cmn_http_set_nodelay(int fd);

#endif
