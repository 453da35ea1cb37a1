#include "reasm.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"

struct mesh_reasm_seg {
    struct mesh_reasm_seg *next;
    uint32_t seq;
    uint32_t len;
    uint64_t ts_us;
    uint8_t data[];
};

/* Sequence arithmetic modulo 2^32 (RFC 1982 style). */
static inline int32_t seq_diff(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

void mesh_reasm_init(struct mesh_reasm *r, size_t cap, struct mesh_reasm_budget *budget,
                     struct mesh_reasm_counters *counters, mesh_reasm_deliver_cb deliver,
                     mesh_reasm_gap_cb gap, void *ctx)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap;
    r->budget = budget;
    r->counters = counters;
    r->deliver = deliver;
    r->gap = gap;
    r->ctx = ctx;
}

void mesh_reasm_syn(struct mesh_reasm *r, uint32_t isn)
{
    /* a retransmitted SYN, or one seen after data, changes nothing */
    if (!r->started) {
        r->started = 1;
        r->next_seq = isn + 1;
    }
}

/* Delivers the part of [seq, seq+len) at or after next_seq; returns 1 when
 * anything was delivered, 0 when all of it was old. */
static int deliver_from(struct mesh_reasm *r, uint32_t seq, const uint8_t *data, size_t len,
                        uint64_t ts_us)
{
    int32_t behind = seq_diff(r->next_seq, seq);
    if (behind > 0) {
        if ((size_t)behind >= len) {
            r->counters->dup_bytes += len;
            return 0;
        }
        r->counters->dup_bytes += (size_t)behind;
        data += behind;
        len -= (size_t)behind;
    }
    r->next_seq += (uint32_t)len;
    r->deliver(r->ctx, data, len, ts_us);
    return 1;
}

static void drop_seg(struct mesh_reasm *r, struct mesh_reasm_seg *seg)
{
    r->held -= seg->len;
    if (r->budget != NULL)
        r->budget->held -= seg->len;
    free(seg);
}

/* Delivers held segments that have become contiguous. */
static void drain(struct mesh_reasm *r)
{
    struct mesh_reasm_seg *seg;
    while ((seg = r->ooo) != NULL && seq_diff(seg->seq, r->next_seq) <= 0) {
        r->ooo = seg->next;
        deliver_from(r, seg->seq, seg->data, seg->len, seg->ts_us);
        drop_seg(r, seg);
    }
}

/* Gives up the hole before the first held segment. */
static void skip_hole(struct mesh_reasm *r, uint64_t ts_us)
{
    if (r->ooo == NULL)
        return;
    int32_t hole = seq_diff(r->ooo->seq, r->next_seq);
    if (hole > 0) {
        r->counters->gaps++;
        r->counters->gap_bytes += (uint32_t)hole;
        r->gap(r->ctx, (uint32_t)hole, ts_us);
        r->next_seq = r->ooo->seq;
    }
    drain(r);
}

int mesh_reasm_segment(struct mesh_reasm *r, uint32_t seq, const uint8_t *data, size_t len,
                       uint64_t ts_us)
{
    if (len == 0)
        return 0;
    if (!r->started) {
        /* capture began mid-connection: the first segment defines the stream */
        r->started = 1;
        r->next_seq = seq;
    }
    int32_t ahead = seq_diff(seq, r->next_seq);
    if (ahead <= 0) {
        if (deliver_from(r, seq, data, len, ts_us))
            drain(r);
        return 0;
    }
    /* out of order: hold it, sorted by sequence */
    r->counters->ooo_segments++;
    struct mesh_reasm_seg *seg = malloc(sizeof(*seg) + len);
    if (seg == NULL)
        return MESH_ENOMEM;
    seg->seq = seq;
    seg->len = (uint32_t)len;
    seg->ts_us = ts_us;
    memcpy(seg->data, data, len);
    struct mesh_reasm_seg **pos = &r->ooo;
    while (*pos != NULL && seq_diff((*pos)->seq, seq) <= 0)
        pos = &(*pos)->next;
    seg->next = *pos;
    *pos = seg;
    r->held += len;
    if (r->budget != NULL)
        r->budget->held += len;
    /* over a cap: the hole is not going to be filled in time */
    while (r->ooo != NULL &&
           (r->held > r->cap || (r->budget != NULL && r->budget->held > r->budget->cap)))
        skip_hole(r, ts_us);
    return 0;
}

void mesh_reasm_flush(struct mesh_reasm *r, uint64_t ts_us)
{
    while (r->ooo != NULL)
        skip_hole(r, ts_us);
}

void mesh_reasm_free(struct mesh_reasm *r)
{
    while (r->ooo != NULL) {
        struct mesh_reasm_seg *seg = r->ooo;
        r->ooo = seg->next;
        drop_seg(r, seg);
    }
}
