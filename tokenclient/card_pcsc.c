/* tokenclient/card_pcsc.c - cards through PC/SC (libpcsclite): readers, insertion, T=0/T=1
 * transmission with GET RESPONSE, removal detection. */
#include "tokenclient/tc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

struct pcsc {
    SCARDCONTEXT ctx;
    SCARDHANDLE h;
    DWORD proto;
    char reader[128];
};

/* Fills err with the PC/SC failure and what to do about it. */
static void
pcsc_err(char *err, size_t errlen, const char *what, LONG rv)
{
    const char *hint = "";

    if (rv == SCARD_E_NO_SERVICE)
        hint = ": pcscd is not running (start it, e.g. 'pcscd' or 'systemctl start pcscd')";
    else if (rv == SCARD_E_NO_READERS_AVAILABLE)
        hint = ": no card reader is connected";
    else if (rv == SCARD_W_REMOVED_CARD || rv == SCARD_E_NO_SMARTCARD)
        hint = ": the card was removed; put it back and start again";
    else if (rv == SCARD_E_SHARING_VIOLATION)
        hint = ": another program holds the card; close it and retry";
    snprintf(err, errlen, "%s: %s (0x%08lX)%s", what, pcsc_stringify_error(rv),
             (unsigned long)rv, hint);
}

enum tc_rc
tc_pcsc_list(FILE *out, char *err, size_t errlen)
{
    SCARDCONTEXT ctx;
    char *readers = NULL;
    DWORD len = SCARD_AUTOALLOCATE;
    LONG rv;

    rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS) {
        pcsc_err(err, errlen, "PC/SC", rv);
        return TC_ENOCARD;
    }
    rv = SCardListReaders(ctx, NULL, (LPSTR)&readers, &len);
    if (rv != SCARD_S_SUCCESS) {
        pcsc_err(err, errlen, "listing readers", rv);
        SCardReleaseContext(ctx);
        return TC_ENOCARD;
    }
    for (char *r = readers; r != NULL && *r; r += strlen(r) + 1) {
        SCARD_READERSTATE st;

        memset(&st, 0, sizeof(st));
        st.szReader = r;
        st.dwCurrentState = SCARD_STATE_UNAWARE;
        (void)SCardGetStatusChange(ctx, 0, &st, 1);
        fprintf(out, "%s: %s\n", r,
                (st.dwEventState & SCARD_STATE_PRESENT) ? "card present" : "empty");
    }
    SCardFreeMemory(ctx, readers);
    SCardReleaseContext(ctx);
    return TC_OK;
}

static enum tc_rc
pcsc_transmit(struct tc_card *c, const uint8_t *apdu, size_t n, uint8_t *resp, size_t cap,
              size_t *resp_len)
{
    struct pcsc *p = c->impl;
    const SCARD_IO_REQUEST *pci = p->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    uint8_t cmd[5 + 255 + 1], buf[258];
    size_t total = 0, cmd_len = n;
    LONG rv;

    if (n > sizeof(cmd)) {
        snprintf(c->err, sizeof(c->err), "command APDU of %zu bytes is too long", n);
        return TC_ECARD;
    }
    memcpy(cmd, apdu, n);
    for (int rounds = 0; rounds < 16; rounds++) {
        DWORD got = sizeof(buf);

        rv = SCardTransmit(p->h, pci, cmd, (DWORD)cmd_len, NULL, buf, &got);
        if (rv != SCARD_S_SUCCESS) {
            pcsc_err(c->err, sizeof(c->err), "card", rv);
            return TC_ECARD;
        }
        if (got < 2) {
            snprintf(c->err, sizeof(c->err), "card answered %lu bytes, not even a status word",
                     (unsigned long)got);
            return TC_ECARD;
        }
        /* 61xx: more data waits; fetch it with GET RESPONSE and keep what came before
         * (card spec §1.3). The final SW is the last answer's. */
        if (buf[got - 2] == 0x61) {
            if (total + got - 2 > cap) {
                snprintf(c->err, sizeof(c->err), "card answer larger than %zu bytes", cap);
                return TC_ECARD;
            }
            memcpy(resp + total, buf, got - 2);
            total += got - 2;
            cmd[0] = 0x00;
            cmd[1] = 0xC0;
            cmd[2] = 0x00;
            cmd[3] = 0x00;
            cmd[4] = buf[got - 1];
            cmd_len = 5;
            continue;
        }
        if (total + got > cap) {
            snprintf(c->err, sizeof(c->err), "card answer larger than %zu bytes", cap);
            return TC_ECARD;
        }
        memcpy(resp + total, buf, got);
        *resp_len = total + got;
        return TC_OK;
    }
    snprintf(c->err, sizeof(c->err), "card kept answering 61xx: giving up");
    return TC_ECARD;
}

static enum tc_rc
pcsc_reset(struct tc_card *c)
{
    struct pcsc *p = c->impl;
    LONG rv = SCardReconnect(p->h, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                             SCARD_RESET_CARD, &p->proto);

    if (rv != SCARD_S_SUCCESS) {
        pcsc_err(c->err, sizeof(c->err), "resetting the card", rv);
        return TC_ECARD;
    }
    return TC_OK;
}

static void
pcsc_close(struct tc_card *c)
{
    struct pcsc *p = c->impl;

    if (p == NULL)
        return;
    if (p->h)
        (void)SCardDisconnect(p->h, SCARD_LEAVE_CARD);
    (void)SCardReleaseContext(p->ctx);
    free(p);
    c->impl = NULL;
}

static const struct tc_card_ops pcsc_ops = {
    .transmit = pcsc_transmit,
    .reset = pcsc_reset,
    .close = pcsc_close,
};

/* Finds a reader with a card (or the named reader); waits up to wait_ms for an insertion. */
static enum tc_rc
find_reader(struct pcsc *p, const char *want, int wait_ms, char *err, size_t errlen)
{
    char *readers = NULL;
    DWORD len = SCARD_AUTOALLOCATE;
    SCARD_READERSTATE st[16];
    DWORD n = 0;
    LONG rv;

    rv = SCardListReaders(p->ctx, NULL, (LPSTR)&readers, &len);
    if (rv != SCARD_S_SUCCESS) {
        pcsc_err(err, errlen, "listing readers", rv);
        return TC_ENOCARD;
    }
    for (char *r = readers; r != NULL && *r && n < 16; r += strlen(r) + 1) {
        if (want != NULL && strcmp(r, want) != 0)
            continue;
        memset(&st[n], 0, sizeof(st[n]));
        st[n].szReader = strdup(r);
        if (st[n].szReader == NULL)
            continue;
        st[n].dwCurrentState = SCARD_STATE_UNAWARE;
        n++;
    }
    SCardFreeMemory(p->ctx, readers);
    if (n == 0) {
        snprintf(err, errlen, "no reader named '%s' (see 'tokenclient readers')",
                 want ? want : "");
        return TC_ENOCARD;
    }
    enum tc_rc rc = TC_ENOCARD;
    (void)SCardGetStatusChange(p->ctx, 0, st, n);
    for (;;) {
        for (DWORD i = 0; i < n; i++) {
            if ((st[i].dwEventState & SCARD_STATE_PRESENT) &&
                !(st[i].dwEventState & SCARD_STATE_MUTE)) {
                snprintf(p->reader, sizeof(p->reader), "%s", st[i].szReader);
                rc = TC_OK;
                goto out;
            }
            st[i].dwCurrentState = st[i].dwEventState;
        }
        if (wait_ms == 0) {
            snprintf(err, errlen, "no card in %s: insert a card (or use --wait)",
                     n == 1 ? st[0].szReader : "any reader");
            goto out;
        }
        rv = SCardGetStatusChange(p->ctx, wait_ms < 0 ? INFINITE : (DWORD)wait_ms, st, n);
        if (rv == SCARD_E_TIMEOUT) {
            snprintf(err, errlen, "no card was inserted within %d ms", wait_ms);
            goto out;
        }
        if (rv != SCARD_S_SUCCESS) {
            pcsc_err(err, errlen, "waiting for a card", rv);
            goto out;
        }
    }
out:
    for (DWORD i = 0; i < n; i++)
        free((void *)(uintptr_t)st[i].szReader);
    return rc;
}

enum tc_rc
tc_pcsc_open(const char *reader, int wait_ms, struct tc_card *card)
{
    struct pcsc *p = calloc(1, sizeof(*p));
    DWORD atr_len = sizeof(card->atr), state, proto, rlen = 0;
    LONG rv;
    enum tc_rc rc;

    memset(card, 0, sizeof(*card));
    if (p == NULL)
        return TC_ENOCARD;
    card->ops = &pcsc_ops;
    card->impl = p;
    rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx);
    if (rv != SCARD_S_SUCCESS) {
        pcsc_err(card->err, sizeof(card->err), "PC/SC", rv);
        free(p);
        card->impl = NULL;
        return TC_ENOCARD;
    }
    rc = find_reader(p, reader, wait_ms, card->err, sizeof(card->err));
    if (rc != TC_OK)
        return rc;
    rv = SCardConnect(p->ctx, p->reader, SCARD_SHARE_SHARED,
                      SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &p->h, &p->proto);
    if (rv != SCARD_S_SUCCESS) {
        pcsc_err(card->err, sizeof(card->err), p->reader, rv);
        return TC_ENOCARD;
    }
    rv = SCardStatus(p->h, NULL, &rlen, &state, &proto, card->atr, &atr_len);
    card->atr_len = rv == SCARD_S_SUCCESS ? atr_len : 0;
    snprintf(card->name, sizeof(card->name), "%s", p->reader);
    return TC_OK;
}

enum tc_rc
tc_pcsc_wait_removed(struct tc_card *card)
{
    struct pcsc *p = card->impl;
    SCARD_READERSTATE st;
    LONG rv;

    memset(&st, 0, sizeof(st));
    st.szReader = p->reader;
    st.dwCurrentState = SCARD_STATE_UNAWARE;
    for (;;) {
        rv = SCardGetStatusChange(p->ctx, INFINITE, &st, 1);
        if (rv != SCARD_S_SUCCESS) {
            pcsc_err(card->err, sizeof(card->err), "watching the reader", rv);
            return TC_ENOCARD;
        }
        if (st.dwEventState & SCARD_STATE_EMPTY)
            return TC_OK;
        st.dwCurrentState = st.dwEventState;
    }
}
