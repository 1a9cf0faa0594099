/* tests/fuzz/fuzz_tpsmsg.c - libFuzzer target for the TPS message codec: body parsing, typed
 * accessors, framed parsing, the server-side `s=` framer fed in pieces, Begin Op extensions,
 * and a rebuild-and-reparse property for TOKEN_PDU messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/tpsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Exercises every accessor on a parsed message. */
static void
poke(struct cmn_tpsmsg *m)
{
    static const char *const names[] = { "msg_type", "operation", "pdu_size", "pdu_data",
                                          "result",   "message",   "password", "extensions",
                                          "current_state", "new_pin", "UID" };
    uint8_t pdu[300];
    size_t n = 0;
    unsigned long v;
    struct cmn_buf b;
    struct cmn_tpsext e;

    cmn_buf_init_secret(&b, 512);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        (void)cmn_tpsmsg_get_uint(m, names[i], 100000, &v);
        cmn_buf_reset(&b);
        (void)cmn_tpsmsg_get_str(m, names[i], &b);
        (void)cmn_tpsmsg_get_bytes(m, names[i], pdu, sizeof(pdu), &n);
    }
    cmn_buf_cleanup(&b);
    if (cmn_tpsmsg_get_pdu(m, pdu, sizeof(pdu), &n) == CMN_OK) {
        /* Property: what we build from the decoded bytes parses back to the same bytes. */
        struct cmn_buf out;
        struct cmn_tpsmsg back;
        uint8_t again[300];
        size_t n2 = 0;
        enum cmn_rc rc;

        cmn_buf_init(&out, 4096);
        cmn_tpsmsg_init(&back);
        if (m->type == CMN_TPS_MSG_TOKEN_PDU_RESPONSE)
            rc = cmn_tpsmsg_build_token_pdu_response(&out, pdu, n);
        else
            rc = cmn_tpsmsg_build_token_pdu_request(&out, pdu, n);
        if (rc == CMN_OK) {
            if (cmn_tpsmsg_parse_framed(&back, out.data, out.len, 0) != CMN_OK ||
                cmn_tpsmsg_get_pdu(&back, again, sizeof(again), &n2) != CMN_OK || n2 != n ||
                memcmp(again, pdu, n) != 0)
                abort();
        }
        cmn_tpsmsg_cleanup(&back);
        cmn_buf_cleanup(&out);
    }
    cmn_tpsext_init(&e);
    if (cmn_tpsext_parse(&e, cmn_tpsmsg_raw(m, "extensions")) == CMN_OK) {
        (void)cmn_tpsext_is_true(&e, "statusUpdate");
        (void)cmn_tpsext_get(&e, "tokenType");
        (void)cmn_tpsext_has(&e, "extendedLoginRequest");
    }
    cmn_tpsext_cleanup(&e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmn_tpsmsg m;
    struct cmn_tpsframer f;
    struct cmn_tpsext e;
    size_t step, off = 0;
    char *s;

    cmn_tpsmsg_init(&m);
    if (cmn_tpsmsg_parse(&m, data, size, 0) == CMN_OK)
        poke(&m);
    if (cmn_tpsmsg_parse_framed(&m, data, size, 0) == CMN_OK)
        poke(&m);

    /* The framer, fed in pieces whose size comes from the first byte. */
    step = size > 0 ? (size_t)(data[0] % 16) + 1 : 1;
    cmn_tpsframer_init(&f, size > 1 && (data[1] & 1) ? 200 : 0);
    for (;;) {
        enum cmn_rc rc = cmn_tpsframer_next(&f, &m);

        if (rc == CMN_OK) {
            poke(&m);
            continue;
        }
        if (rc != CMN_ESHORT || off == size)
            break;
        {
            size_t k = size - off < step ? size - off : step;

            if (cmn_tpsframer_feed(&f, data + off, k) != CMN_OK)
                break;
            off += k;
        }
    }
    cmn_tpsframer_cleanup(&f);

    /* The input as an extensions value. */
    s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
        cmn_tpsext_init(&e);
        (void)cmn_tpsext_parse(&e, s);
        cmn_tpsext_cleanup(&e);
        free(s);
    }
    cmn_tpsmsg_cleanup(&m);
    return 0;
}
