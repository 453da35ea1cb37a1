#include "mesh/evt_pb.h"

#include <string.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/tap/v1/tap.pb-c.h"

/* The two map entry types protoc-c generates are laid out alike. */
typedef Mesh__Tap__V1__TapEvent__SrcLabelsEntry SrcEntry;
typedef Mesh__Tap__V1__TapEvent__DstLabelsEntry DstEntry;

static const char *const label_keys[3] = {"namespace", "deployment", "pod"};

static size_t labels_to_entries(const struct mesh_labels *l, SrcEntry *src, DstEntry *dst,
                                void **ptrs)
{
    const char *vals[3] = {l->ns, l->deploy, l->pod};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (vals[i] == NULL)
            continue;
        if (src != NULL) {
            mesh__tap__v1__tap_event__src_labels_entry__init(&src[n]);
            src[n].key = (char *)label_keys[i];
            src[n].value = (char *)vals[i];
            ptrs[n] = &src[n];
        } else {
            mesh__tap__v1__tap_event__dst_labels_entry__init(&dst[n]);
            dst[n].key = (char *)label_keys[i];
            dst[n].value = (char *)vals[i];
            ptrs[n] = &dst[n];
        }
        n++;
    }
    return n;
}

static void label_set(struct mesh_labels *l, const char *key, const char *value)
{
    if (key == NULL)
        return;
    if (strcmp(key, label_keys[0]) == 0)
        l->ns = value;
    else if (strcmp(key, label_keys[1]) == 0)
        l->deploy = value;
    else if (strcmp(key, label_keys[2]) == 0)
        l->pod = value;
}

void mesh_evt_to_pb(const struct mesh_evt *evt, Mesh__Tap__V1__TapEvent *m,
                    struct mesh_evt_pb_scratch *scratch)
{
    m->has_ts = 1;
    m->ts = evt->ts_us;
    m->has_proxy_direction = evt->direction != MESH_DIR_UNSPEC;
    m->proxy_direction = (Mesh__Tap__V1__ProxyDirection)evt->direction;
    m->src = (char *)evt->src;
    m->dst = (char *)evt->dst;
    m->n_src_labels = labels_to_entries(&evt->src_labels, scratch->src, NULL, scratch->src_ptrs);
    m->src_labels = (SrcEntry **)scratch->src_ptrs;
    m->n_dst_labels = labels_to_entries(&evt->dst_labels, NULL, scratch->dst, scratch->dst_ptrs);
    m->dst_labels = (DstEntry **)scratch->dst_ptrs;
    m->proto = evt->proto ? (char *)mesh_proto_name(evt->proto) : NULL;
    m->method = (char *)evt->method;
    m->scheme = (char *)evt->scheme;
    m->authority = (char *)evt->authority;
    m->path = (char *)evt->path;
    m->has_status = evt->status >= 0;
    m->status = (uint32_t)evt->status;
    m->has_grpc_status = evt->grpc_status >= 0;
    m->grpc_status = (uint32_t)evt->grpc_status;
    m->has_reset = evt->reset >= 0;
    m->reset = (uint32_t)evt->reset;
    m->error = (char *)evt->error;
    m->has_latency_us = evt->latency_us >= 0;
    m->latency_us = (uint64_t)evt->latency_us;
    m->has_duration_us = evt->duration_us >= 0;
    m->duration_us = (uint64_t)evt->duration_us;
    m->has_req_bytes = m->has_rsp_bytes = 1;
    m->req_bytes = evt->req_bytes;
    m->rsp_bytes = evt->rsp_bytes;
    m->id = (char *)evt->id;
}

int mesh_evt_pack(const struct mesh_evt *evt, struct mesh_buf *out)
{
    Mesh__Tap__V1__TapEvent m;
    struct mesh_evt_pb_scratch scratch;
    mesh__tap__v1__tap_event__init(&m);
    mesh_evt_to_pb(evt, &m, &scratch);
    char *at;
    int rv = mesh_buf_append_space(out, mesh__tap__v1__tap_event__get_packed_size(&m), &at);
    if (rv == 0)
        mesh__tap__v1__tap_event__pack(&m, (uint8_t *)at);
    return rv;
}

int mesh_evt_unpack(const uint8_t *data, size_t len, struct mesh_evt_pb *pb, struct mesh_evt *evt)
{
    Mesh__Tap__V1__TapEvent *m = mesh__tap__v1__tap_event__unpack(NULL, len, data);
    pb->msg = m;
    mesh_evt_init(evt);
    if (m == NULL)
        return MESH_EPROTO;
    mesh_evt_from_pb(m, evt);
    return 0;
}

void mesh_evt_from_pb(const Mesh__Tap__V1__TapEvent *m, struct mesh_evt *evt)
{
    mesh_evt_init(evt);
    evt->ts_us = m->ts;
    evt->direction = m->has_proxy_direction && m->proxy_direction <= MESH__TAP__V1__PROXY_DIRECTION__REPLAY
                         ? (enum mesh_direction)m->proxy_direction
                         : MESH_DIR_UNSPEC;
    evt->src = m->src;
    evt->dst = m->dst;
    for (size_t i = 0; i < m->n_src_labels; i++)
        label_set(&evt->src_labels, m->src_labels[i]->key, m->src_labels[i]->value);
    for (size_t i = 0; i < m->n_dst_labels; i++)
        label_set(&evt->dst_labels, m->dst_labels[i]->key, m->dst_labels[i]->value);
    evt->proto = m->proto ? mesh_proto_parse(m->proto) : MESH_PROTO_UNKNOWN;
    evt->method = m->method;
    evt->scheme = m->scheme;
    evt->authority = m->authority;
    evt->path = m->path;
    evt->status = m->has_status && m->status <= 999 ? (int)m->status : -1;
    evt->grpc_status = m->has_grpc_status && m->grpc_status <= 1000 ? (int)m->grpc_status : -1;
    evt->reset = m->has_reset ? (int64_t)m->reset : -1;
    evt->error = m->error;
    evt->latency_us = m->has_latency_us && m->latency_us < INT64_MAX ? (int64_t)m->latency_us : -1;
    evt->duration_us = m->has_duration_us && m->duration_us < INT64_MAX ? (int64_t)m->duration_us : -1;
    evt->req_bytes = m->req_bytes;
    evt->rsp_bytes = m->rsp_bytes;
    evt->id = m->id;
}

void mesh_evt_pb_free(struct mesh_evt_pb *pb)
{
    if (pb->msg != NULL)
        mesh__tap__v1__tap_event__free_unpacked(pb->msg, NULL);
    pb->msg = NULL;
}
