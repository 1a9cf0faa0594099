/* tokenclient/vtoken/vpcd.h - serving emulated cards to pcscd's vpcd driver over TCP (card spec
 * §8): the card is the TCP client, one connection per reader slot, 2-byte length framing. */
#ifndef VT_VPCD_H
#define VT_VPCD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"
#include "tokenclient/vtoken/vtoken.h"

#define VT_VPCD_PORT 35963 /* slot 0 of channel 0x8C7B; slot s listens on 35963 + s */

/* One card on one vpcd slot. The card belongs to the thread running vt_vpcd_serve(). */
struct vt_vpcd_slot {
    struct vt_card *card; /* borrowed */
    const char *name;     /* for log lines (the state file) */
    char host[64];        /* vpcd address, normally 127.0.0.1 */
    uint16_t port;
    int fd;               /* -1 while disconnected */
    uint64_t retry_at_ms; /* next connection attempt (monotonic ms) */
    unsigned long apdus;  /* APDUs served on this slot */
};

/* Initialises a slot (not connected yet). */
void vt_vpcd_slot_init(struct vt_vpcd_slot *s, struct vt_card *card, const char *name,
                       const char *host, uint16_t port);

/* Connects to vpcd: a TCP client socket with TCP_NODELAY. Returns the descriptor or -1
 * (errno set). */
int vt_vpcd_connect(const char *host, uint16_t port);

/* Reads one message from fd and answers it (power off/on/reset, get ATR, or an APDU).
 * Re-arms TCP_QUICKACK before each read (test-environment: delayed ACKs cost ~48 ms per APDU).
 * CMN_ECLOSED when vpcd closed the connection, CMN_EIO/CMN_EPROTO on a broken link
 * (close it), CMN_OK otherwise. */
enum cmn_rc vt_vpcd_handle(struct vt_card *card, int fd, unsigned long *apdus);

/* Serves every slot until *stop becomes non-zero: connects (retrying every 500 ms while vpcd
 * is away, e.g. pcscd restarting), answers messages, reconnects after a drop (the card then
 * shows as removed and re-inserted). Logs connection changes through common/log.h.
 * Returns when *stop is set; closes the sockets. */
void vt_vpcd_serve(struct vt_vpcd_slot *slots, size_t n, volatile sig_atomic_t *stop);

#endif
