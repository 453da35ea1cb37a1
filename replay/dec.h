/* replay/dec.h — the contract between the flow table and a protocol decoder.
 *
 * A decoder sees one TCP connection as two ordered, reassembled byte streams:
 * MESH_C2S (client to server) and MESH_S2C (server to client). It does no I/O
 * and keeps no pointer to the bytes it is given past the call. For every
 * request/response exchange it calls the sink once, with the HTTP fields of
 * the event filled (proto, method, scheme, authority, path, status,
 * grpc_status, reset, error, ts_us, latency_us, duration_us, req_bytes,
 * rsp_bytes) and `stream` set to the exchange's number within the connection
 * (HTTP/2 stream id; HTTP/1 request index from 1). The flow table adds
 * addresses, labels, direction and id. The event and its strings are valid
 * only during the sink call.
 *
 * Exchanges still open when the connection closes are emitted by close(),
 * with what is known (no status when no response was seen) and `error` saying
 * why they are incomplete. A decoder never emits a value it is not sure of:
 * after lost bytes (gap) it drops what it cannot pair or decode and counts it.
 * Every buffer a decoder keeps has a hard cap (MESH_DEC_MAX_HEADER etc.).
 */
#ifndef MESH_REPLAY_DEC_H
#define MESH_REPLAY_DEC_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/evt.h"
#include "mesh/hdrcap.h"

enum { MESH_C2S = 0, MESH_S2C = 1 };

/* Caps on what one connection may make a decoder hold. */
#define MESH_DEC_MAX_HEADER (64u * 1024)   /* one header block / header section */
#define MESH_DEC_MAX_PENDING 1024u         /* open exchanges per connection */

typedef void (*mesh_dec_sink)(void *ctx, struct mesh_evt *evt, uint32_t stream);

/* What a decoder counts; the flow table sums them into the replay summary. */
struct mesh_dec_stats {
    uint64_t exchanges;     /* events emitted */
    uint64_t incomplete;    /* of those, without a complete response */
    uint64_t dropped;       /* exchanges seen in part but not emitted (e.g. HPACK context lost) */
    uint64_t proto_errors;  /* violations that stopped decoding of a direction */
};

struct mesh_dec_ops {
    const char *name;
    /* |midstream|: the capture began after the connection did (no SYN and no
     * preface seen), so the decoder must not assume it is at a message start
     * and (HTTP/2) has no HPACK context. |hdrs| (may be NULL, and must
     * outlive the decoder) chooses the headers events carry (mesh/hdrcap.h):
     * the request's, the final response's and its trailers. Returns NULL
     * when out of memory. */
    void *(*open)(mesh_dec_sink sink, void *sink_ctx, int midstream,
                  const struct mesh_hdr_sel *hdrs, struct mesh_dec_stats *stats);
    /* Feeds |len| bytes of direction |dir| seen at |ts_us|. Returns 0, or a
     * negative MESH_E* after which the decoder ignores that direction; then
     * *err_desc (if |err_desc| is not NULL) names the problem. */
    int (*data)(void *dec, int dir, const uint8_t *buf, size_t len, uint64_t ts_us,
                const char **err_desc);
    /* |nbytes| bytes of direction |dir| were lost (never captured, or given up). */
    void (*gap)(void *dec, int dir, uint64_t nbytes, uint64_t ts_us);
    /* Direction |dir| ended: FIN (|rst| = 0) or RST (|rst| = 1). */
    void (*fin)(void *dec, int dir, uint64_t ts_us, int rst);
    /* Emits what is still open, then frees the decoder. */
    void (*close)(void *dec, uint64_t ts_us);
};

extern const struct mesh_dec_ops mesh_h1_dec;
extern const struct mesh_dec_ops mesh_h2_dec;

/* Content sniffing (never by port). Returns 1 when |buf| starts with an HTTP/1.x
 * request line (method token, SP, target, SP, "HTTP/1."), 2 when it starts
 * with a status line ("HTTP/1.x NNN"), 0 when it does not, -1 when |len| is
 * too short to tell yet. */
int mesh_h1_sniff(const uint8_t *buf, size_t len);
/* 1 when |buf| starts with the HTTP/2 client preface, 0 when not, -1 when too short. */
int mesh_h2_sniff(const uint8_t *buf, size_t len);
/* For a connection seen mid-way (no SYN, no preface): 1 when |buf| starts
 * with at least two well-formed HTTP/2 frame headers in a row (plausible type,
 * flags, length and stream id), 0 otherwise. */
int mesh_h2_sniff_frames(const uint8_t *buf, size_t len);

#endif
