/* replay/replay.h — a packet capture in, tap events out (`mesh replay`).
 *
 * mesh_replay_file() reads a pcap or pcapng file with libpcap, decodes the
 * link layer (Ethernet with 802.1Q tags, Linux cooked v1/v2, BSD loopback,
 * raw IP), IPv4/IPv6 and TCP, reassembles each direction, finds the
 * protocol by content (HTTP/2 preface, HTTP/1 request line, else opaque TCP)
 * and calls |cb| once per request/response exchange. The event is borrowed
 * for the call. One struct mesh_replay may read several files in turn; flows
 * are closed at the end of each file. Single-threaded; no global state.
 */
#ifndef MESH_REPLAY_H
#define MESH_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mesh/evt.h"
#include "mesh/hdrcap.h"
#include "reasm.h"

struct mesh_labelmap;

typedef void (*mesh_replay_cb)(void *ctx, const struct mesh_evt *evt);

struct mesh_replay_stats {
    uint64_t packets;           /* packets read */
    uint64_t skipped;           /* not TCP over IP, or malformed */
    uint64_t truncated;         /* captured shorter than sent (snap length) */
    uint64_t fragments;         /* IP fragments (not reassembled) */
    uint64_t flows;             /* TCP connections seen */
    uint64_t flows_h1, flows_h2, flows_opaque, flows_midstream;
    uint64_t opaque_bytes;      /* payload of connections counted, not decoded */
    uint64_t requests;          /* events emitted */
    uint64_t incomplete;        /* of those, without a complete response */
    uint64_t dropped;           /* exchanges seen in part and not emitted */
    uint64_t undecodable;       /* connection directions given up on a protocol error */
    uint64_t expired;           /* flows closed because idle or over the flow cap */
    struct mesh_reasm_counters reasm;
};

struct mesh_replay;

/* |labels| and |hdrs| (the headers events carry, mesh/hdrcap.h) may be NULL;
 * they must outlive the replay. Returns NULL when out of memory. */
struct mesh_replay *mesh_replay_new(const struct mesh_labelmap *labels,
                                    const struct mesh_hdr_sel *hdrs, mesh_replay_cb cb, void *ctx);
void mesh_replay_free(struct mesh_replay *rp);

/* Reads a whole capture. Returns 0; MESH_EIO when the file cannot be opened or
 * is cut short (every exchange that completed before the cut has been
 * reported); MESH_EFORMAT when it is not a capture or its link type is not
 * supported. *err_desc (static or owned by |rp|, valid until the next call)
 * says what is wrong. */
int mesh_replay_file(struct mesh_replay *rp, const char *path, const char **err_desc);
/* The same for an open stream ("-" as |path| above means stdin). Takes
 * |fp|: it is closed in every case. */
int mesh_replay_stream(struct mesh_replay *rp, FILE *fp, const char **err_desc);

/* One captured frame of link type |linktype| (a DLT_ value). Lower level than
 * mesh_replay_file, for tests and fuzzing. |wirelen| is the length on the wire. */
void mesh_replay_packet(struct mesh_replay *rp, int linktype, const uint8_t *data,
                        size_t caplen, size_t wirelen, uint64_t ts_us);
/* Closes every open flow, emitting what is still pending. */
void mesh_replay_finish(struct mesh_replay *rp);

/* The counters of the capture read last (or being read). */
const struct mesh_replay_stats *mesh_replay_stats(const struct mesh_replay *rp);

#endif
