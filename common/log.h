/* common/log.h - one-line structured logging (STYLE §6) and the audit sink: levels, key=value
 * fields escaped so a hostile value cannot forge a line or a field, secret fields always
 * written as <redacted>, and APDU dumps that show data only for allow-listed INS values. */
#ifndef CMN_LOG_H
#define CMN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

enum cmn_log_level {
    CMN_LOG_ERROR = 0,
    CMN_LOG_WARN = 1,
    CMN_LOG_NOTICE = 2,
    CMN_LOG_INFO = 3,
    CMN_LOG_DEBUG = 4,
};

#define CMN_LOG_LINE_MAX 4096 /* bytes per line incl. newline; longer lines end "..." */

/* A line is:
 *   2025-03-02T10:02:11.123Z warn backend.down sid=7f3a svc=tks url=https://tks2:8443 fails=3
 * time (UTC, ms), level word, event name, then `sid=` when sid is not NULL, then the fields.
 *
 * Field template rules (the fmt of CMN_LOG / cmn_log_write / cmn_audit):
 *   - fmt is space-separated `key=value` fields; printf conversions are allowed anywhere
 *     (checked by the compiler). Free text goes in a field: `msg=%s`.
 *   - A substituted value is escaped: inside a literal "..." of fmt, `"` `\` and control bytes
 *     become \" \\ \n \r \t \xNN; outside quotes a value that is empty or contains a space,
 *     '"', '=', '\' or a control byte is written as a quoted, escaped string. Substituted text
 *     in a key position is reduced to [A-Za-z0-9_.-] (others become '_').
 *   - If the key of a field is a secret name (cmn_log_is_secret_key), the whole value is
 *     written `<redacted>` whatever was passed (its arguments are consumed, never formatted).
 *   - Control bytes in fmt itself are escaped too: one event is always one line.
 */

/* Opens the process log: path NULL or "-" = stderr, else the file is opened O_APPEND|O_CREAT
 * (mode 0640). Sets the level. Call from the main thread before other threads start; calling
 * again (SIGHUP reopen) swaps the descriptor atomically (dup2), safe while threads log.
 * CMN_EIO if the file cannot be opened (the previous sink stays). */
enum cmn_rc cmn_log_open(const char *path, enum cmn_log_level level);
/* Closes a file sink and returns to stderr. */
void cmn_log_close(void);
/* Sets / reads the most verbose level written. Thread-safe (atomic). */
void cmn_log_set_level(enum cmn_log_level level);
bool cmn_log_enabled(enum cmn_log_level level);
/* Parses "error" "warn" "notice" "info" "debug" (any case). CMN_EINVAL otherwise. */
enum cmn_rc cmn_log_level_parse(const char *s, enum cmn_log_level *out);
/* "error", "warn", ... (never NULL). */
const char *cmn_log_level_name(enum cmn_log_level level);

/* Replaces the file sink by a callback (tests, or a program that forwards lines elsewhere);
 * fn NULL restores the descriptor sink. line is NUL-terminated, ends with '\n', len counts it.
 * The callback may run in several threads at once. Set before threads start. */
typedef void cmn_log_sink_fn(void *arg, enum cmn_log_level level, const char *line, size_t len);
void cmn_log_set_sink(cmn_log_sink_fn *fn, void *arg);

/* Formats and writes one line if level is enabled. One write(2) per line: lines of concurrent
 * threads never interleave. Errors writing the log are ignored (use the audit sink for events
 * that must not be lost). event: [A-Za-z0-9_.-]; sid may be NULL. */
void cmn_log_write(enum cmn_log_level level, const char *event, const char *sid,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Tests the level before anything is formatted. */
#define CMN_LOG(level, event, sid, ...)                                                          \
    do {                                                                                         \
        if (cmn_log_enabled(level))                                                              \
            cmn_log_write((level), (event), (sid), __VA_ARGS__);                                 \
    } while (0)

/* True when field name `key` (len bytes) names a secret and is always redacted. Case-
 * insensitive: pin, new_pin, old_pin, newpin, password, passwd, pwd, secret, nonce, key,
 * cookie, authorization, keysetdata; any name ending in key, _pin, pin, password, passwd,
 * secret, cryptogram, challenge, nonce; any name beginning with kek. (Names such as
 * keyVersion, key_info and keySet are not secret.) */
bool cmn_log_is_secret_key(const char *key, size_t len);

/* Formats one line (without time) into out as the writers do: "<event> [sid=..] fields".
 * For tests and for callers that forward lines. Returns the length written (< out_size), the
 * text always NUL-terminated and cut with "..." when too long. */
size_t cmn_log_format(char *out, size_t out_size, const char *event, const char *sid,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* APDU dumps at `level` (no-op when disabled), event "apdu.cmd" / "apdu.resp":
 *   apdu.cmd sid=.. cla=84 ins=40 p1=00 p2=7F lc=24 data=<redacted>
 *   apdu.resp sid=.. ins=CA sw=9000 len=45 data=9F7F2A...
 * Command data is shown in hex only for INS on the command allow-list (SELECT A4, GET DATA
 * CA, GET STATUS 3C, GET VERSION 70, LIFE CYCLE F0/F2, ISSUER INFO F4/F6, LIST OBJECTS 58,
 * LIST PINS 48, LIST KEYS 3A, DELETE E4, INSTALL E6, LOAD E8, CREATE OBJECT 5A, READ OBJECT 56,
 * DELETE OBJECT 52, GET RESPONSE C0, GET BUILTIN ACL FA, GET PIN TRIES 4A); every other INS
 * (VERIFY 42, CREATE PIN 40, SET PIN 04, CHANGE PIN 44, PUT KEY D8, IMPORT KEY 0A, EXTERNAL
 * AUTHENTICATE 82, INITIALIZE UPDATE 50, GENERATE KEY 0C, WRITE OBJECT 54, COMPUTE CRYPT 36,
 * LOGOUT 61, ...) shows data=<redacted>. Response data is shown only for SELECT, GET DATA,
 * GET STATUS, GET VERSION, GET LIFE CYCLE, GET ISSUER INFO, LIST OBJECTS/PINS/KEYS, READ
 * OBJECT, GET BUILTIN ACL, GET PIN TRIES, GENERATE KEY (its 2-byte length), DELETE, INSTALL,
 * LOAD. Data longer than 64 bytes is cut (the length is always given). */
void cmn_log_apdu_cmd(enum cmn_log_level level, const char *sid, const uint8_t *apdu, size_t n);
/* ins: the command this answers; resp: data ‖ SW (n >= 2, else logged as short). */
void cmn_log_apdu_resp(enum cmn_log_level level, const char *sid, uint8_t ins,
                       const uint8_t *resp, size_t n);
/* True when INS's command data (resp false) or response data (resp true) may be logged. */
bool cmn_log_apdu_shows(uint8_t ins, bool resp);

/* The audit log: a separate append-only file for enroll, format, PIN reset, key changeover...
 * with actor, CUID, backend and outcome. Opened O_APPEND|O_CREAT mode 0600; sync = true adds
 * fdatasync() after each line. Call before threads start; reopening swaps atomically. */
enum cmn_rc cmn_audit_open(const char *path, bool sync);
void cmn_audit_close(void);
/* Writes one audit line ("<time> audit <event> [sid=..] fields", same escaping and redaction)
 * with one write(2). Returns CMN_OK only when the whole line reached the file (and was synced
 * when asked); CMN_EIO otherwise (also when no audit file is open): the caller must then fail
 * the operation. Thread-safe. */
enum cmn_rc cmn_audit(const char *event, const char *sid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
