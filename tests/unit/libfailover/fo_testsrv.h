/* tests/unit/libfailover/fo_testsrv.h - misbehaving HTTP(S) clones on 127.0.0.1 for the
 * libfailover tests and bench: answer, answer slowly, hang, close after reading, 500, stall
 * the TLS handshake; each counts the requests it received completely. */
#ifndef FO_TESTSRV_H
#define FO_TESTSRV_H

#include <stdbool.h>
#include <stddef.h>

enum fo_ts_mode {
    FO_TS_OK = 0,        /* 200 "srv=<id>&n=<count>" (keep-alive) */
    FO_TS_SLOW = 1,      /* same, after delay_ms */
    FO_TS_HANG = 2,      /* reads the request, never answers */
    FO_TS_CLOSE = 3,     /* reads the request, closes the connection */
    FO_TS_500 = 4,       /* 500 Internal Server Error */
    FO_TS_STALL = 5,     /* accepts, never reads (TLS: handshake never completes) */
    FO_TS_GARBAGE = 6,   /* reads the request, answers bytes that are not HTTP */
    FO_TS_CODE = 7,      /* answers HTTP <delay_ms> (the status code, e.g. 403) */
};

struct fo_ts;

/* TLS material for a server (NULL = plain HTTP). require_client_cert verifies the client
 * against ca_file. */
struct fo_ts_tls {
    const char *cert_file;
    const char *key_file;
    const char *ca_file;
    bool require_client_cert;
};

/* Starts a server on 127.0.0.1 (port 0 = any free port). Returns NULL on failure (message on
 * stderr: this is test code). */
struct fo_ts *fo_ts_start(int id, unsigned port, enum fo_ts_mode mode, unsigned delay_ms,
                          const struct fo_ts_tls *tls);
/* Stops it: closes the listener and every connection, joins every thread, frees. */
void fo_ts_stop(struct fo_ts *ts);
unsigned fo_ts_port(const struct fo_ts *ts);
/* Complete requests (headers + Content-Length body) received so far. */
unsigned fo_ts_requests(const struct fo_ts *ts);
/* Requests whose body started with "id=<id>" (id < FO_TS_MAX_IDS): how many times each
 * id was received, so tests can prove a call was delivered exactly once. */
#define FO_TS_MAX_IDS 8192
unsigned fo_ts_id_hits(const struct fo_ts *ts, unsigned id);
/* TCP connections accepted so far. */
unsigned fo_ts_conns(const struct fo_ts *ts);
void fo_ts_set_mode(struct fo_ts *ts, enum fo_ts_mode mode, unsigned delay_ms);
/* Clone dies: closes its listener (connections are refused) and every live connection. */
void fo_ts_down(struct fo_ts *ts);
/* Clone comes back on the same port. Returns false if the port cannot be bound again. */
bool fo_ts_up(struct fo_ts *ts);

/* A port on 127.0.0.1 with nothing listening (bound once, then closed). */
unsigned fo_ts_refused_port(void);

/* Test PKI made with the openssl CLI in a fresh temp dir: ca.crt, srv.crt/srv.key (CA-signed,
 * SAN IP:127.0.0.1 and DNS:localhost), cli.crt/cli.key (client auth), rogue.crt/rogue.key
 * (self-signed, same names). Returns the directory (static storage) or NULL. */
const char *fo_ts_pki(void);
/* Removes the PKI directory. */
void fo_ts_pki_cleanup(void);
/* Joins dir and name into a static rotating buffer (for test brevity). */
const char *fo_ts_path(const char *name);

/* Ignores SIGPIPE and blocks it in the calling thread (and threads it creates later). */
void fo_ts_block_sigpipe(void);

/* Monotonic milliseconds, for test assertions on time. */
unsigned long long fo_ts_now_ms(void);

#endif
