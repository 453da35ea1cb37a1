/* tests/fuzz/records.h — drives a protocol decoder (replay/dec.h) from one
 * fuzz input, so every decoder is fuzzed the same way.
 *
 * Input: byte 0 bit 0 = midstream flag, bit 1 = keep every header
 * (--tap-header '*', x-secret redacted); then records, each a 3-byte header
 * [op][len_hi][len_lo] followed, for data records, by len bytes:
 *   op & 1    direction (0 = client to server, 1 = server to client)
 *   op & 6 == 0  data: the next len bytes
 *   op & 6 == 2  gap of len bytes
 *   op & 6 == 4  FIN of the direction;  op & 6 == 6  RST
 * Timestamps advance by 1 ms per record. A truncated record feeds what is left.
 */
#ifndef MESH_FUZZ_RECORDS_H
#define MESH_FUZZ_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "dec.h"

static void fuzz_sink_(void *ctx, struct mesh_evt *evt, uint32_t stream)
{
    /* touch every string so ASan sees a use of freed or unterminated memory */
    const char *strs[] = {evt->method, evt->scheme, evt->authority, evt->path, evt->error};
    size_t *total = ctx;
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        for (const char *p = strs[i]; p != NULL && *p; p++)
            (*total)++;
    for (size_t i = 0; i < evt->nheaders; i++) {
        for (const char *p = evt->headers[i].name; *p; p++)
            (*total)++;
        for (const char *p = evt->headers[i].value; p != NULL && *p; p++)
            (*total)++;
    }
    (void)stream;
}

static inline void fuzz_records_run(const struct mesh_dec_ops *ops, const uint8_t *data, size_t size)
{
    struct mesh_dec_stats stats = {0};
    size_t total = 0;
    if (size < 1)
        return;
    static struct mesh_hdr_sel all;
    const char *why;
    if (!all.tap.all && (mesh_hdr_names_add(&all.tap, "*", &why) != 0 ||
                         mesh_hdr_names_add(&all.redact, "x-secret", &why) != 0))
        return;
    void *dec = ops->open(fuzz_sink_, &total, data[0] & 1, (data[0] & 2) ? &all : NULL, &stats);
    if (dec == NULL)
        return;
    uint64_t ts = 1700000000000000ull;
    size_t off = 1;
    while (off + 3 <= size) {
        unsigned op = data[off];
        size_t len = ((size_t)data[off + 1] << 8) | data[off + 2];
        int dir = op & 1;
        off += 3;
        ts += 1000;
        switch (op & 6) {
        case 0:
            if (len > size - off)
                len = size - off;
            ops->data(dec, dir, data + off, len, ts, NULL);
            off += len;
            break;
        case 2:
            ops->gap(dec, dir, len, ts);
            break;
        default:
            ops->fin(dec, dir, ts, (op & 6) == 6);
            break;
        }
    }
    ops->close(dec, ts + 1000);
}

#endif
