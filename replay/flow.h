/* replay/flow.h — the flow table: TCP segments in, decoder calls out.
 *
 * Internal to replay/. Owns every connection's two reassemblers, decides its
 * protocol by content, runs its decoder (dec.h) and fills the connection
 * fields of each event (addresses, labels, direction, id) before handing it
 * to the replay callback. Bounded: at most MESH_FLOWS_MAX connections (the
 * least recently active is expired first) and a shared budget of held
 * out-of-order bytes.
 */
#ifndef MESH_REPLAY_FLOW_H
#define MESH_REPLAY_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "replay.h"

#define MESH_FLOWS_MAX (256u * 1024)
#define MESH_FLOW_IDLE_US (300ull * 1000000)      /* idle connections expire */
#define MESH_FLOW_LINGER_US (2ull * 1000000)      /* closed ones wait for stragglers */
#define MESH_REASM_DIR_CAP (1u << 20)             /* held bytes per direction */
#define MESH_REASM_TOTAL_CAP (64u << 20)          /* held bytes in all */
#define MESH_ACKWAIT_CAP (1u << 20)               /* bytes held for causal order, per direction */

enum { MESH_TCP_FIN = 0x01, MESH_TCP_SYN = 0x02, MESH_TCP_RST = 0x04, MESH_TCP_ACK = 0x10 };

struct mesh_tcp_seg {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t src_ip[16], dst_ip[16];
    uint16_t sport, dport;
    uint32_t seq;
    uint32_t ack;               /* valid when flags has MESH_TCP_ACK */
    uint8_t flags;
    const uint8_t *payload;
    size_t len;                 /* captured payload bytes */
    size_t missing;             /* payload bytes sent but not captured */
    uint64_t ts_us;
};

struct mesh_flows;

/* |hdrs|: the headers events carry (NULL: none); it must outlive the table. */
struct mesh_flows *mesh_flows_new(const struct mesh_labelmap *labels,
                                  const struct mesh_hdr_sel *hdrs, mesh_replay_cb cb, void *ctx,
                                  struct mesh_replay_stats *stats);
void mesh_flows_segment(struct mesh_flows *ft, const struct mesh_tcp_seg *seg);
/* Zeroes the decoders' counters (between captures). */
void mesh_flows_reset_stats(struct mesh_flows *ft);
/* Closes every flow (end of a capture). */
void mesh_flows_close_all(struct mesh_flows *ft);
void mesh_flows_free(struct mesh_flows *ft);

#endif
