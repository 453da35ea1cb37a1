/* mesh/evt_pb.h — the tap event on the wire (proto/mesh/tap/v1/tap.proto).
 *
 * mesh_evt_pack() serialises an event with protobuf-c (mesh_evt_pb_append()
 * by hand, for the per-request path); mesh_evt_unpack()
 * parses one and fills a struct mesh_evt whose strings point into the
 * unpacked message, so the message (struct mesh_evt_pb) must outlive the
 * event and is freed with mesh_evt_pb_free(). Absent fields stay absent in
 * both directions (proto2 presence).
 */
#ifndef MESH_EVT_PB_H
#define MESH_EVT_PB_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/evt.h"

#include "mesh/tap/v1/tap.pb-c.h"

struct mesh_buf;

/* Appends the serialised |evt| to |out|. Returns 0, MESH_ETOOBIG or MESH_ENOMEM. */
int mesh_evt_pack(const struct mesh_evt *evt, struct mesh_buf *out);
/* The same bytes as mesh_evt_pack(), written by hand in one pass without
 * protobuf-c's descriptor walks (twice per event: size, then pack), which
 * were most of the proxy's tap cost per request; with |field| > 0 they come
 * as that length-delimited field of an enclosing message (ReportRequest's
 * events = 3). tests/unit/test_lib.c holds it byte for byte to protobuf-c's
 * output. Returns 0, MESH_ETOOBIG or MESH_ENOMEM. */
int mesh_evt_pb_append(const struct mesh_evt *evt, struct mesh_buf *out, unsigned field);

struct mesh_evt_pb {
    struct Mesh__Tap__V1__TapEvent *msg;
    struct mesh_header headers[MESH_EVT_HEADERS_MAX];
};
/* Fills |evt| from an unpacked message; |evt|'s strings point into |msg|,
 * its headers into |headers| (MESH_EVT_HEADERS_MAX of them: the request's,
 * then the response's, the first ones named kept), or none with |headers|
 * NULL. */
void mesh_evt_from_pb(const struct Mesh__Tap__V1__TapEvent *msg, struct mesh_evt *evt,
                      struct mesh_header *headers);
/* Fills |msg| (initialised by the caller) from |evt|, pointing at |evt|'s
 * strings; |scratch| holds the label entries and must outlive |msg|. */
struct mesh_evt_pb_scratch {
    Mesh__Tap__V1__TapEvent__SrcLabelsEntry src[3];
    Mesh__Tap__V1__TapEvent__DstLabelsEntry dst[3];
    void *src_ptrs[3], *dst_ptrs[3];
    Mesh__Tap__V1__Header headers[MESH_EVT_HEADERS_MAX];
    void *header_ptrs[MESH_EVT_HEADERS_MAX], *rsp_header_ptrs[MESH_EVT_HEADERS_MAX];
};
void mesh_evt_to_pb(const struct mesh_evt *evt, struct Mesh__Tap__V1__TapEvent *msg,
                    struct mesh_evt_pb_scratch *scratch);
/* Parses |len| bytes into |evt|. Returns 0 or MESH_EPROTO (not a TapEvent). */
int mesh_evt_unpack(const uint8_t *data, size_t len, struct mesh_evt_pb *pb, struct mesh_evt *evt);
void mesh_evt_pb_free(struct mesh_evt_pb *pb);

#endif
