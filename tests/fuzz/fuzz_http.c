/* tests/fuzz/fuzz_http.c - libFuzzer target for the HTTP reader: request and response heads,
 * chunk-by-chunk and whole-body reads, over a memory transport whose read sizes come from the
 * input, so that the push parser sees every possible split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct memio {
    const uint8_t *p;
    size_t n, off, step;
};

static enum cmn_rc
mem_read(void *ctx, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
    struct memio *m = ctx;
    size_t k = m->n - m->off;

    (void)deadline;
    if (k == 0)
        return CMN_ECLOSED;
    if (k > m->step)
        k = m->step;
    if (k > n)
        k = n;
    memcpy(p, m->p + m->off, k);
    m->off += k;
    *got = k;
    return CMN_OK;
}

static enum cmn_rc
mem_write(void *ctx, const uint8_t *p, size_t n, int64_t deadline)
{
    (void)ctx;
    (void)p;
    (void)n;
    (void)deadline;
    return CMN_OK;
}

static const struct cmn_http_io mem_ops = { mem_read, mem_write };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmn_http_limits lim = { .max_head = 2048, .max_headers = 16, .max_body = 8192,
                                   .max_chunk = 4096, .timeout_ms = 1000 };
    struct memio m;
    struct cmn_http_conn *c = NULL;
    struct cmn_http_head h;
    struct cmn_buf b;
    uint8_t mode;

    if (size < 1)
        return 0;
    mode = data[0];
    m.p = data + 1;
    m.n = size - 1;
    m.off = 0;
    m.step = (size_t)(mode >> 3) + 1; /* 1..32 bytes per read */
    if (cmn_http_conn_new_io(&mem_ops, &m, &lim, &c) != CMN_OK)
        return 0;
    cmn_http_head_init(&h);
    cmn_buf_init(&b, 8192);
    if (((mode & 1) ? cmn_http_read_response_head(c, &h) : cmn_http_read_request_head(c, &h)) ==
        CMN_OK) {
        (void)cmn_http_head_get(&h, "Host");
        (void)cmn_http_head_get(&h, "transfer-encoding");
        if (mode & 2) {
            (void)cmn_http_read_body(c, &b);
        } else {
            for (int i = 0; i < 64; i++) {
                bool last = false;

                cmn_buf_reset(&b);
                if (cmn_http_read_chunk(c, &b, &last) != CMN_OK || last)
                    break;
            }
        }
    }
    cmn_buf_cleanup(&b);
    cmn_http_head_cleanup(&h);
    cmn_http_conn_free(c);
    return 0;
}
