/* Fuzzes TCP reassembly: each record is [seq:4][len:1][flags:1] + len bytes;
 * flag 1 = SYN, 2 = flush. The delivered stream must never exceed what was
 * fed, and the held-byte accounting must return to zero. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reasm.h"

struct sink {
    uint64_t delivered, gap;
};

static void on_data(void *ctx, const uint8_t *data, size_t len, uint64_t ts)
{
    struct sink *s = ctx;
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= data[i]; /* ASan checks every delivered byte is readable */
    (void)x;
    s->delivered += len;
}

static void on_gap(void *ctx, uint64_t n, uint64_t ts)
{
    ((struct sink *)ctx)->gap += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mesh_reasm_counters counters = {0};
    struct mesh_reasm_budget budget = {0, 4096};
    struct sink s = {0, 0};
    struct mesh_reasm r;
    uint64_t fed = 0;
    mesh_reasm_init(&r, 2048, &budget, &counters, on_data, on_gap, &s);
    size_t off = 0;
    while (off + 6 <= size) {
        uint32_t seq = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
                       (uint32_t)data[off + 2] << 8 | data[off + 3];
        size_t len = data[off + 4];
        uint8_t flags = data[off + 5];
        off += 6;
        if (len > size - off)
            len = size - off;
        if (flags & 1)
            mesh_reasm_syn(&r, seq);
        mesh_reasm_segment(&r, seq, data + off, len, off);
        fed += len;
        off += len;
        if (flags & 2)
            mesh_reasm_flush(&r, off);
    }
    mesh_reasm_flush(&r, off);
    if (s.delivered > fed || r.held != 0 || budget.held != 0)
        abort();
    mesh_reasm_free(&r);
    return 0;
}
