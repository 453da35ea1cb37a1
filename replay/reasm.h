/* replay/reasm.h — TCP reassembly of one direction of one connection.
 *
 * I/O-free: segments go in (mesh_reasm_segment), ordered bytes come out
 * through the deliver callback, lost bytes through the gap callback. Handles
 * out-of-order segments, retransmissions and duplicates, overlaps (the bytes
 * seen first win), sequence wrap, and a stream that starts without a SYN.
 * Out-of-order bytes are held up to a per-direction cap and a shared budget
 * (struct mesh_reasm_budget); past either, the oldest hole is given up as a
 * gap. Hand-written because libpcap only reads packets and no Debian library
 * offers passive TCP reassembly without pulling in a whole IDS.
 */
#ifndef MESH_REPLAY_REASM_H
#define MESH_REPLAY_REASM_H

#include <stddef.h>
#include <stdint.h>

typedef void (*mesh_reasm_deliver_cb)(void *ctx, const uint8_t *data, size_t len, uint64_t ts_us);
typedef void (*mesh_reasm_gap_cb)(void *ctx, uint64_t nbytes, uint64_t ts_us);

/* Held out-of-order bytes, shared by every direction of a flow table. */
struct mesh_reasm_budget {
    size_t held;
    size_t cap;
};

struct mesh_reasm_counters {
    uint64_t gaps, gap_bytes;       /* holes given up */
    uint64_t dup_bytes;             /* retransmitted or overlapping bytes dropped */
    uint64_t ooo_segments;          /* segments that arrived ahead of a hole */
};

struct mesh_reasm_seg;

struct mesh_reasm {
    int started;                    /* next_seq is known */
    uint32_t next_seq;              /* sequence number of the next byte to deliver */
    struct mesh_reasm_seg *ooo;     /* held segments, sorted by sequence */
    size_t held;                    /* bytes in ooo */
    size_t cap;                     /* per-direction cap on held */
    struct mesh_reasm_budget *budget;
    struct mesh_reasm_counters *counters;
    mesh_reasm_deliver_cb deliver;
    mesh_reasm_gap_cb gap;
    void *ctx;
};

void mesh_reasm_init(struct mesh_reasm *r, size_t cap, struct mesh_reasm_budget *budget,
                     struct mesh_reasm_counters *counters, mesh_reasm_deliver_cb deliver,
                     mesh_reasm_gap_cb gap, void *ctx);
/* A SYN with sequence |isn| was seen: the first data byte is isn + 1. */
void mesh_reasm_syn(struct mesh_reasm *r, uint32_t isn);
/* A segment with |len| payload bytes at sequence |seq|. Returns 0 or MESH_ENOMEM
 * (the segment is then treated as lost). */
int mesh_reasm_segment(struct mesh_reasm *r, uint32_t seq, const uint8_t *data, size_t len,
                       uint64_t ts_us);
/* The direction ends (FIN, RST, expiry, end of capture): holes before held
 * data become gaps, held data is delivered. */
void mesh_reasm_flush(struct mesh_reasm *r, uint64_t ts_us);
/* Frees held segments without delivering them. */
void mesh_reasm_free(struct mesh_reasm *r);

#endif
