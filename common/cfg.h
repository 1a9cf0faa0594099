/* common/cfg.h - the one parser of Dogtag CS.cfg-style `dotted.key=value` files (STYLE §7):
 * components declare typed key tables; loading validates every line against them, reports
 * every error with file, line and key, and yields an immutable snapshot for typed lookups. */
#ifndef CMN_CFG_H
#define CMN_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rc.h"

#define CMN_CFG_MAX_LINE 4096       /* bytes per line, newline excluded */
#define CMN_CFG_MAX_FILE (1u << 20) /* bytes per file */
#define CMN_CFG_MAX_KEYS 20000      /* key=value lines per file */
#define CMN_CFG_MAX_KEY 256         /* bytes per key name */
#define CMN_CFG_MAX_HOSTS 16        /* entries in one CFG_HOSTLIST value */
#define CMN_CFG_MAX_HOST 255        /* bytes of one host name or IPv6 literal */

/* Value types. The names are those of STYLE §7. */
enum cmn_cfg_type {
    CFG_STR = 0,     /* any text (may be empty unless required) */
    CFG_UINT = 1,    /* decimal in [min, max] */
    CFG_BOOL = 2,    /* exactly "true" or "false" */
    CFG_HOSTLIST = 3, /* "host:port host:port" or commas; IPv6 as [::1]:port; >= 1 entry */
    CFG_PATH = 4,    /* non-empty path, no control characters */
    CFG_SECRET_FILE = 5, /* a path (key name should end in _file) to an existing regular file
                          * that neither group nor other may read or write */
    CFG_ENUM = 6,    /* one of .words */
};

/* One declared key. A table is an array ending with an entry whose name is NULL ({ 0 }).
 *
 * Names are exact dotted keys or patterns. In a pattern, '*' inside a segment matches one or
 * more characters other than '.', so `conn.tks*.hostport` matches conn.tks1.hostport and
 * `op.*.*.issuerinfo.value` matches op.enroll.userKey.issuerinfo.value; a last segment of
 * exactly `**` matches one or more whole segments (`tks.*.mk_mappings.**`). An exact name wins
 * over a pattern; among patterns the first in table order wins.
 *
 * Tables are static data, borrowed by the snapshot for its whole life. */
struct cmn_cfg_key {
    const char *name;
    enum cmn_cfg_type type;
    unsigned long long min, max; /* CFG_UINT range (inclusive) */
    unsigned long long def;      /* CFG_UINT default; CFG_BOOL default (0/1) */
    const char *defstr;          /* default of the text types (NULL: none) */
    const char *const *words;    /* CFG_ENUM: allowed words, NULL-terminated */
    bool required;               /* absence is an error */
    bool secret;                 /* CFG_STR: value never appears in messages */
    const char *doc;             /* one line for the man page */
};

/* One entry of a host list. */
struct cmn_cfg_host {
    char host[CMN_CFG_MAX_HOST + 1]; /* name or IPv6 literal without brackets */
    uint16_t port;                   /* 1..65535 */
    bool ipv6;                       /* was written in brackets */
};
struct cmn_cfg_hostlist {
    size_t n;
    struct cmn_cfg_host h[CMN_CFG_MAX_HOSTS];
};

/* Parses a Dogtag host list: entries separated by spaces and/or commas, each `host:port` or
 * `[v6addr]:port`. Refuses an empty list, a missing or zero port, an empty host, a bare IPv6
 * address, more than CMN_CFG_MAX_HOSTS entries. [out] out; on failure `why` (may be NULL)
 * receives a short reason. CMN_EINVAL or CMN_ETOOBIG. Thread-safe. */
enum cmn_rc cmn_cfg_hostlist_parse(const char *s, struct cmn_cfg_hostlist *out, char *why,
                                   size_t why_size);

/* File syntax (Dogtag CS.cfg): one `key=value` per line, split at the first '='. Blank lines
 * and lines whose first non-blank character is '#' are ignored. Blanks (space, tab) around the
 * key are dropped; the value starts after the blanks that follow '=' (as Dogtag's loader does)
 * and keeps everything else verbatim, including '=' and inner spaces, except trailing CR,
 * spaces and tabs. Keys are printable ASCII without blanks or '=' (Dogtag uses '#' in
 * `mk_mappings.#01#01`). No continuation lines. Limits: CMN_CFG_MAX_LINE, CMN_CFG_MAX_FILE,
 * CMN_CFG_MAX_KEYS, CMN_CFG_MAX_KEY; a NUL byte is an error.
 *
 * The immutable snapshot: every key=value of one file, validated. Once returned it is never
 * modified, so any number of threads may read it at once; lifetime is reference counted so a
 * SIGHUP reload can swap the pointer while old readers finish. */
struct cmn_cfg;

/* Loads and validates `path` against `tables` (an array of key tables ending with NULL).
 * Every problem is appended to `errs` (may be NULL) as one line ending in '\n':
 *   path:line: key 'name' = value: must be between 1 and 100000 (default 2000)
 *   path:line: unknown key 'x'
 *   path:line: duplicate key 'k' (first set at line 3)
 *   path: missing required key 'k'
 * Values of `.secret` keys are shown as <redacted>; other values are shown escaped.
 * [out] *out: new snapshot with one reference (cmn_cfg_unref), NULL on failure.
 * Returns CMN_OK, CMN_ECONFIG (errors listed), CMN_EIO (cannot read: errs says why),
 * CMN_ETOOBIG (file over CMN_CFG_MAX_FILE), CMN_ENOMEM. Thread-safe. */
enum cmn_rc cmn_cfg_load(const char *path, const struct cmn_cfg_key *const *tables,
                         struct cmn_cfg **out, struct cmn_buf *errs);
/* The same from memory; `name` stands for the file in messages. text need not be
 * NUL-terminated. */
enum cmn_rc cmn_cfg_parse(const char *name, const char *text, size_t len,
                          const struct cmn_cfg_key *const *tables, struct cmn_cfg **out,
                          struct cmn_buf *errs);

/* Takes one more reference; returns c. Thread-safe (atomic). */
struct cmn_cfg *cmn_cfg_ref(struct cmn_cfg *c);
/* Drops a reference; frees at zero. NULL does nothing. Thread-safe (atomic). */
void cmn_cfg_unref(struct cmn_cfg *c);

/* Typed lookups. A key is looked up among those present, then falls back to the default of
 * the declaration that matches it. Values were validated at load, so these cannot fail on
 * type; a key matching no declaration is a programming error and yields the zero value.
 * Returned strings are borrowed from the snapshot (valid until the last unref). */
const char *cmn_cfg_str(const struct cmn_cfg *c, const char *key); /* NULL: absent, no default */
unsigned long long cmn_cfg_uint(const struct cmn_cfg *c, const char *key);
bool cmn_cfg_bool(const struct cmn_cfg *c, const char *key);
/* CFG_ENUM: index of the value in .words (default's index when absent), -1 if neither. */
int cmn_cfg_enum(const struct cmn_cfg *c, const char *key);
/* True when the key was written in the file (not a default). */
bool cmn_cfg_isset(const struct cmn_cfg *c, const char *key);
/* CFG_HOSTLIST: [out] out. CMN_ENOTFOUND if absent without default. */
enum cmn_rc cmn_cfg_hostlist(const struct cmn_cfg *c, const char *key,
                             struct cmn_cfg_hostlist *out);
/* CFG_SECRET_FILE: opens the file, re-checks it (regular, not group/other accessible, through
 * the open descriptor), reads at most out_size bytes and strips one trailing "\n" or "\r\n".
 * [out] out, *out_len (the caller wipes out). CMN_ENOTFOUND, CMN_EIO, CMN_ECONFIG (mode),
 * CMN_ETOOBIG (file larger than out_size). */
enum cmn_rc cmn_cfg_secret_read(const struct cmn_cfg *c, const char *key, uint8_t *out,
                                size_t out_size, size_t *out_len);

/* The declaration `key` matches (an exact name first, then patterns in table order), NULL when
 * none does; and the NULL-terminated table list the snapshot was validated against. Both are
 * borrowed from the static tables. Thread-safe. */
const struct cmn_cfg_key *cmn_cfg_decl(const struct cmn_cfg *c, const char *key);
const struct cmn_cfg_key *const *cmn_cfg_tables(const struct cmn_cfg *c);

/* Where a key was set, for cross-key error messages: writes "file:line" (or "file" when the
 * key is absent) into out. Returns out. */
const char *cmn_cfg_where(const struct cmn_cfg *c, const char *key, char *out, size_t out_size);
/* The name given to cmn_cfg_load/parse. */
const char *cmn_cfg_name(const struct cmn_cfg *c);

/* Enumeration. Callbacks run in the caller's thread, unlocked; returning false stops. */
typedef bool cmn_cfg_each_fn(void *arg, const char *key, const char *value);
/* Calls fn for each key present that starts with prefix ("" = all), in sorted key order. */
void cmn_cfg_each(const struct cmn_cfg *c, const char *prefix, cmn_cfg_each_fn *fn, void *arg);
typedef bool cmn_cfg_child_fn(void *arg, const char *child);
/* Calls fn once for each distinct segment that follows `prefix` in a present key, sorted:
 * prefix "conn." → "ca1", "kra1", "tks1", "tks2"; prefix "op.enroll." → the token types.
 * The prefix should end with '.'; child is a NUL-terminated copy valid during the call. */
void cmn_cfg_children(const struct cmn_cfg *c, const char *prefix, cmn_cfg_child_fn *fn,
                      void *arg);

/* Documents a key table: one entry per key with type, range or words, default, "required",
 * and the doc line. man = true: roff (.TP / .B) for a man page; false: plain text.
 * Appends to out. CMN_ETOOBIG/CMN_ENOMEM from the buffer. */
enum cmn_rc cmn_cfg_doc(const struct cmn_cfg_key *table, bool man, struct cmn_buf *out);

#endif
