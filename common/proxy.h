/* common/proxy.h - the PROXY protocol header (v2 binary and v1 text) that HAProxy puts in
 * front of each connection, so the gateway learns the real client address. */
#ifndef CMN_PROXY_H
#define CMN_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "common/rc.h"

#define CMN_PROXY_V2_MAX (16 + 216) /* header + the largest address block we accept (+TLVs) */
#define CMN_PROXY_V1_MAX 107        /* "PROXY TCP6 <39> <39> <5> <5>\r\n" */

/* What a PROXY header said. */
struct cmn_proxy {
    int version;         /* 1 or 2 */
    bool local;          /* LOCAL command (v2) or "UNKNOWN" (v1): a health check, no client */
    int family;          /* AF_INET, AF_INET6, or AF_UNSPEC when local/unknown */
    struct sockaddr_storage src, dst; /* client and the address it connected to */
    char src_text[64];   /* "127.0.0.2" / "::1" (no port), "" when local */
    uint16_t src_port;
};

/* Parses a header at the start of buf[0..n). [out] p, consumed (bytes of the header).
 * CMN_OK; CMN_ESHORT: a header has started but more bytes are needed; CMN_EPROTO: not a
 * PROXY header, or a malformed one (bad signature, version, command, family, lengths,
 * addresses); CMN_ETOOBIG: a v2 header longer than CMN_PROXY_V2_MAX. Never reads past n. */
enum cmn_rc cmn_proxy_parse(const uint8_t *buf, size_t n, struct cmn_proxy *p, size_t *consumed);

/* Reads exactly one header from a connected socket, never consuming a byte past it (so TLS
 * or HTTP can follow), within timeout_ms. [out] p. CMN_EPROTO (no or bad header: the caller
 * must close the connection), CMN_ETIMEDOUT, CMN_ECLOSED, CMN_EIO. */
enum cmn_rc cmn_proxy_read_fd(int fd, int timeout_ms, struct cmn_proxy *p);

#endif
