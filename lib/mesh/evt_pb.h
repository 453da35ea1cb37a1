/* mesh/evt_pb.h — the tap event on the wire (proto/mesh/tap/v1/tap.proto).
 *
 * mesh_evt_pack() serialises an event with protobuf-c; mesh_evt_unpack()
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

struct mesh_buf;
struct Mesh__Tap__V1__TapEvent;

/* Appends the serialised |evt| to |out|. Returns 0, MESH_ETOOBIG or MESH_ENOMEM. */
int mesh_evt_pack(const struct mesh_evt *evt, struct mesh_buf *out);

struct mesh_evt_pb {
    struct Mesh__Tap__V1__TapEvent *msg;
};
/* Parses |len| bytes into |evt|. Returns 0 or MESH_EPROTO (not a TapEvent). */
int mesh_evt_unpack(const uint8_t *data, size_t len, struct mesh_evt_pb *pb, struct mesh_evt *evt);
void mesh_evt_pb_free(struct mesh_evt_pb *pb);

#endif
