/* tokenclient/tc.h - the desk-side token client: card access (PC/SC or an in-process emulated
 * card), phone home, the TPS protocol exchange, prompts and progress. */
#ifndef TC_H
#define TC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"

/* Exit codes of tokenclient: each tells the user a different thing to do. */
enum tc_rc {
    TC_OK = 0,
    TC_EUSAGE = 1,    /* bad command line or configuration */
    TC_ENOCARD = 2,   /* no reader, or no card in it */
    TC_ECARD = 3,     /* card removed or unreadable during the operation */
    TC_ENET = 4,      /* TPS (or phone-home server) unreachable, or connection lost */
    TC_EPROTO = 5,    /* the server broke the protocol */
    TC_ECANCEL = 6,   /* the user gave up at a prompt */
    TC_EREFUSED = 10, /* the server ended the operation with a failure status */
};

/* One card, whatever carries its APDUs. One thread at a time. */
struct tc_card {
    const struct tc_card_ops *ops;
    void *impl;
    char name[128];    /* reader name or "emulated card N" */
    uint8_t atr[33];
    size_t atr_len;
    char err[256];     /* why the last call failed */
};

struct tc_card_ops {
    /* Sends one command APDU, returns the card's answer (data + SW). For T=0 cards the
     * implementation collects 61xx answers with GET RESPONSE and returns 6Cxx as is (card
     * spec §1.3). TC_ECARD with card->err on failure or removal. */
    enum tc_rc (*transmit)(struct tc_card *c, const uint8_t *apdu, size_t n, uint8_t *resp,
                           size_t resp_cap, size_t *resp_len);
    /* Resets the card (warm reset): closes any secure channel on it. */
    enum tc_rc (*reset)(struct tc_card *c);
    void (*close)(struct tc_card *c);
};

/* ---- PC/SC (card_pcsc.c) ---- */

/* Lists readers to out, one per line, with "card present" or "empty". */
enum tc_rc tc_pcsc_list(FILE *out, char *err, size_t errlen);
/* Opens the card in `reader` (NULL: the first reader holding a card), waiting up to
 * wait_ms for one to be inserted (0: do not wait, -1: forever). */
enum tc_rc tc_pcsc_open(const char *reader, int wait_ms, struct tc_card *card);
/* Waits until the card in the opened reader is removed (watch mode). */
enum tc_rc tc_pcsc_wait_removed(struct tc_card *card);

/* ---- Emulated card (card_emu.c): vtoken in process ---- */

/* Opens an emulated CoolKey card. state_path: a vtoken state file (created with factory
 * state if missing) or NULL for a card in memory; cuid_hex: 20 hex digits or NULL. */
enum tc_rc tc_emu_open(const char *state_path, const char *cuid_hex, struct tc_card *card);

/* ---- Card helpers (card.c) ---- */

/* CUID (20 uppercase hex digits) and the issuer info (phone-home URL, "" if none) of a card,
 * read with plain APDUs (no secure channel). */
enum tc_rc tc_card_identify(struct tc_card *c, char cuid[21], char *issuer_url, size_t url_len);

/* ---- Prompts and progress (ui.c) ---- */

struct tc_ui {
    bool interactive;       /* prompts allowed (a terminal is there) */
    bool progress_bar;      /* draw a bar on stderr (a terminal) or print plain lines */
    bool quiet;
    const char *user;       /* --user */
    const char *password_file, *new_pin_file; /* non-interactive secrets */
    const char **params;    /* --param NAME=VALUE for extended login */
    size_t nparams;
    FILE *out;              /* messages (stderr) */
    int last_pct;
};

/* Asks for a value; `secret` turns echo off. Uses the matching non-interactive source first.
 * kind: "user", "password", "new_pin" or an extended-login parameter id. [out] out.
 * TC_ECANCEL when no value can be had. */
enum tc_rc tc_ui_ask(struct tc_ui *ui, const char *kind, const char *label, bool secret,
                     struct cmn_buf *out);
/* Asks for a new PIN twice, checks min/max length and the characters that can travel
 * (tps-protocol §1.4). [out] out. */
enum tc_rc tc_ui_new_pin(struct tc_ui *ui, unsigned min_len, unsigned max_len,
                         struct cmn_buf *out);
void tc_ui_progress(struct tc_ui *ui, unsigned pct, const char *task);
void tc_ui_progress_done(struct tc_ui *ui);
void tc_ui_say(struct tc_ui *ui, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Phone home (phonehome.c) ---- */

struct tc_service {
    char issuer[256];
    char operation[512];   /* TPS URL for this card */
    char ui[512];
    char enrolled_url[512];
    char browser_url[512];
    char token_type[64];
};

/* GETs `url`?cuid=CUID (libcurl; the document is capped at 64 KiB) and parses it with expat
 * (tps-protocol §5.2). [out] svc. TC_ENET (unreachable, HTTP error), TC_EPROTO (not a
 * ServiceInfo document). cacert may be NULL (system store). */
enum tc_rc tc_phonehome(const char *url, const char *cuid, const char *cacert, int timeout_ms,
                        struct tc_service *svc, char *err, size_t errlen);
/* Parses a phone-home document (for tests and fuzzing). */
enum tc_rc tc_phonehome_parse(const char *xml, size_t len, struct tc_service *svc, char *err,
                              size_t errlen);

/* ---- The TPS exchange (session.c) ---- */

struct tc_opts {
    const char *url;       /* operation URL: http(s)://host:port/tps/tps */
    int op;                /* enum cmn_tps_op */
    const char *token_type; /* tokenType extension, or NULL */
    const char *cacert;    /* CA bundle for https, NULL = system */
    const char *cert, *key; /* client certificate (security officer workstation) */
    int timeout_ms;        /* per server message (tps-protocol §1.7: 300 s) */
    bool extended_login;   /* ask the server for the extended login form */
    bool status_update;    /* ask for progress (default on) */
    const char *client_version;
};

struct tc_result {
    int end_op_result;  /* 0 success, 1 failure, -1 no END_OP */
    int status;         /* END_OP message */
    unsigned apdus;     /* APDUs relayed */
    bool conn_lost;     /* the stream ended before END_OP */
    char err[256];
};

/* Runs one operation: POST to o->url, relays APDUs between the TPS and the card, answers
 * prompts through ui. [out] res. Returns TC_OK on END_OP success, TC_EREFUSED on END_OP
 * failure, TC_ENET (connection failed or lost: res->conn_lost says which), TC_ECARD,
 * TC_EPROTO, TC_ECANCEL. */
enum tc_rc tc_session_run(const struct tc_opts *o, struct tc_card *card, struct tc_ui *ui,
                          struct tc_result *res);

/* What the user should do about an END_OP failure status. Never NULL. */
const char *tc_status_advice(int status);

#endif
