/* mesh/evt.h — the tap event in memory, its classification and its JSON form.
 *
 * struct mesh_evt is what producers (replay decoders, later the proxy) fill and
 * consumers (views, encoders, the collector client) read. Every string member
 * is borrowed: it belongs to the producer and is valid only during the call that
 * hands the event over; a consumer that keeps an event copies it
 * (mesh_evt_copy). A NULL string, a negative status/grpc_status/reset or
 * latency/duration means "absent"; absent values are never printed as 0.
 */
#ifndef MESH_EVT_H
#define MESH_EVT_H

#include <stddef.h>
#include <stdint.h>

enum mesh_direction { MESH_DIR_UNSPEC = 0, MESH_DIR_INBOUND, MESH_DIR_OUTBOUND, MESH_DIR_REPLAY };
enum mesh_proto { MESH_PROTO_UNKNOWN = 0, MESH_PROTO_HTTP1, MESH_PROTO_H2, MESH_PROTO_GRPC };

/* The well-known labels of a workload; NULL when unknown. */
struct mesh_labels {
    const char *ns;
    const char *deploy;
    const char *pod;
};

/* A captured header (mesh-proxy --tap-header): lower-case name, and its
 * value unless the header is on the redaction list (then value is NULL and
 * redacted is 1); |response|: of the final response, else of the request
 * (TapEvent headers / response_headers); |trailer| (with |response|): one of
 * the response's trailers, not its head. */
struct mesh_header {
    const char *name, *value;
    unsigned redacted : 1, response : 1, trailer : 1;
};
/* At most this many per event, requests' and responses' together (a proxy
 * captures up to 16 of each): decoders ignore more. */
#define MESH_EVT_HEADERS_MAX 32
/* A captured value longer than this is cut to it. */
#define MESH_EVT_HEADER_VALUE_MAX 256

struct mesh_evt {
    uint64_t ts_us;                  /* request start, µs since the epoch */
    enum mesh_direction direction;
    const char *src, *dst;           /* "ip:port" / "[v6]:port" */
    struct mesh_labels src_labels, dst_labels;
    enum mesh_proto proto;
    const char *method, *scheme, *authority, *path;
    int status;                      /* HTTP status, -1 if none */
    int grpc_status;                 /* -1 if none */
    int64_t reset;                   /* RST_STREAM error code, -1 if none */
    const char *error;               /* connection-level error, NULL if none */
    int64_t latency_us;              /* request start -> response headers, -1 if none */
    int64_t duration_us;             /* request start -> response end, -1 if none */
    uint64_t req_bytes, rsp_bytes;   /* body bytes */
    const char *id;                  /* "CONN:STREAM" */
    const struct mesh_header *headers; /* captured headers, NULL if none */
    size_t nheaders;                 /* ≤ MESH_EVT_HEADERS_MAX */
};

/* Sets every field to "absent". */
void mesh_evt_init(struct mesh_evt *evt);

/* DESIGN.md "Classification": 1 when the exchange failed, 0 when it succeeded. */
int mesh_evt_failed(const struct mesh_evt *evt);

const char *mesh_direction_name(enum mesh_direction dir);
const char *mesh_proto_name(enum mesh_proto proto);
/* Parses "inbound"/"outbound"/"replay" and "http/1.1"/"h2"/"grpc"; unknown → 0. */
enum mesh_direction mesh_direction_parse(const char *name);
enum mesh_proto mesh_proto_parse(const char *name);

/* A self-contained copy: |dst| owns its strings in one allocation, freed by
 * mesh_evt_copy_free(). Returns 0 or MESH_ENOMEM. */
struct mesh_evt_copy {
    struct mesh_evt evt;
    char *strings;
};
int mesh_evt_copy(struct mesh_evt_copy *dst, const struct mesh_evt *src);
void mesh_evt_copy_free(struct mesh_evt_copy *copy);

struct mesh_buf;
/* Appends |evt| as one JSON object (no newline) to |out|: field names as in
 * DESIGN.md, absent values omitted. Strings that are not valid UTF-8 have the
 * bad bytes replaced by U+FFFD so the output is always valid JSON.
 * Returns 0, or MESH_ETOOBIG/MESH_ENOMEM from the buffer. */
int mesh_evt_to_json(const struct mesh_evt *evt, struct mesh_buf *out);

#endif
