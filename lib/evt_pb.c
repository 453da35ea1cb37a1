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
    size_t nh = evt->headers != NULL ? evt->nheaders : 0, n[2] = {0, 0};
    if (nh > MESH_EVT_HEADERS_MAX)
        nh = MESH_EVT_HEADERS_MAX;
    void **ptrs[2] = {scratch->header_ptrs, scratch->rsp_header_ptrs};
    for (size_t i = 0; i < nh; i++) {
        Mesh__Tap__V1__Header *h = &scratch->headers[i];
        mesh__tap__v1__header__init(h);
        h->name = (char *)evt->headers[i].name;
        h->value = evt->headers[i].redacted ? NULL : (char *)evt->headers[i].value;
        h->has_redacted = evt->headers[i].redacted != 0;
        h->redacted = h->has_redacted;
        unsigned k = evt->headers[i].response;
        h->has_trailer = k && evt->headers[i].trailer;
        h->trailer = h->has_trailer;
        ptrs[k][n[k]++] = h;
    }
    m->n_headers = n[0];
    m->headers = n[0] ? (Mesh__Tap__V1__Header **)scratch->header_ptrs : NULL;
    m->n_response_headers = n[1];
    m->response_headers = n[1] ? (Mesh__Tap__V1__Header **)scratch->rsp_header_ptrs : NULL;
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

/* ---- the hand-written encoder (mesh_evt_pb_append) ------------------------------------ */

/* Every string field of a TapEvent in field order, with its tag byte(s). */
enum { F_SRC, F_DST, F_PROTO, F_METHOD, F_SCHEME, F_AUTHORITY, F_PATH, F_ERROR, F_ID, NSTR };

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *tag, size_t taglen, const char *s, size_t n)
{
    memcpy(p, tag, taglen);
    p = put_varint(p + taglen, n);
    memcpy(p, s, n);
    return p + n;
}

/* A labels map entry's size (key 1, value 2), 0 for an absent label. */
static size_t entry_len(size_t klen, size_t vlen)
{
    return 2 + varint_len(klen) + klen + varint_len(vlen) + vlen;
}

int mesh_evt_pb_append(const struct mesh_evt *evt, struct mesh_buf *out, unsigned field)
{
    static const uint8_t str_tag[NSTR][2] = {{0x1a}, {0x22}, {0x3a}, {0x42}, {0x4a},
                                             {0x52}, {0x5a}, {0x7a}, {0xa2, 0x01}};
    const char *str[NSTR] = {evt->src,    evt->dst,       NULL,      evt->method, evt->scheme,
                             evt->authority, evt->path, evt->error, evt->id};
    str[F_PROTO] = evt->proto ? mesh_proto_name(evt->proto) : NULL;
    const struct mesh_labels *labels[2] = {&evt->src_labels, &evt->dst_labels};
    size_t slen[NSTR], llen[2][3], klen[3], size = 1 + varint_len(evt->ts_us);
    for (int i = 0; i < NSTR; i++) {
        slen[i] = str[i] != NULL ? strlen(str[i]) : 0;
        if (str[i] != NULL)
            size += (i == F_ID ? 2 : 1) + varint_len(slen[i]) + slen[i];
    }
    for (int k = 0; k < 3; k++)
        klen[k] = strlen(label_keys[k]);
    for (int m = 0; m < 2; m++) {
        const char *vals[3] = {labels[m]->ns, labels[m]->deploy, labels[m]->pod};
        for (int k = 0; k < 3; k++) {
            llen[m][k] = vals[k] != NULL ? strlen(vals[k]) : 0;
            if (vals[k] != NULL) {
                size_t e = entry_len(klen[k], llen[m][k]);
                size += 1 + varint_len(e) + e;
            }
        }
    }
    if (evt->direction != MESH_DIR_UNSPEC)
        size += 1 + varint_len((uint64_t)evt->direction);
    if (evt->status >= 0)
        size += 1 + varint_len((uint32_t)evt->status);
    if (evt->grpc_status >= 0)
        size += 1 + varint_len((uint32_t)evt->grpc_status);
    if (evt->reset >= 0)
        size += 1 + varint_len((uint32_t)evt->reset);
    if (evt->latency_us >= 0)
        size += 2 + varint_len((uint64_t)evt->latency_us);
    if (evt->duration_us >= 0)
        size += 2 + varint_len((uint64_t)evt->duration_us);
    size += 4 + varint_len(evt->req_bytes) + varint_len(evt->rsp_bytes);
    /* headers = 21, response_headers = 22: each a Header message (name 1,
     * value 2, redacted 3, trailer 4: of the response's only) */
    size_t nh = evt->headers != NULL ? evt->nheaders : 0, hlen[MESH_EVT_HEADERS_MAX][3];
    if (nh > MESH_EVT_HEADERS_MAX)
        nh = MESH_EVT_HEADERS_MAX;
    for (size_t i = 0; i < nh; i++) {
        const struct mesh_header *h = &evt->headers[i];
        const char *value = h->redacted ? NULL : h->value; /* a redacted value is never sent */
        hlen[i][0] = h->name != NULL ? strlen(h->name) : 0;
        hlen[i][1] = value != NULL ? strlen(value) : 0;
        hlen[i][2] = (h->name != NULL ? 1 + varint_len(hlen[i][0]) + hlen[i][0] : 0) +
                     (value != NULL ? 1 + varint_len(hlen[i][1]) + hlen[i][1] : 0) +
                     (h->redacted ? 2 : 0) + (h->response && h->trailer ? 2 : 0);
        size += 2 + varint_len(hlen[i][2]) + hlen[i][2];
    }

    size_t head = field != 0 ? varint_len((uint64_t)field << 3 | 2) + varint_len(size) : 0;
    char *at;
    int rv = mesh_buf_append_space(out, head + size, &at);
    if (rv != 0)
        return rv;
    uint8_t *p = (uint8_t *)at;
    if (field != 0)
        p = put_varint(put_varint(p, (uint64_t)field << 3 | 2), size);
    *p++ = 0x08;
    p = put_varint(p, evt->ts_us);
    if (evt->direction != MESH_DIR_UNSPEC) {
        *p++ = 0x10;
        p = put_varint(p, (uint64_t)evt->direction);
    }
    for (int i = F_SRC; i <= F_DST; i++)
        if (str[i] != NULL)
            p = put_bytes(p, str_tag[i], 1, str[i], slen[i]);
    for (int m = 0; m < 2; m++) {
        const char *vals[3] = {labels[m]->ns, labels[m]->deploy, labels[m]->pod};
        for (int k = 0; k < 3; k++) {
            if (vals[k] == NULL)
                continue;
            *p++ = m == 0 ? 0x2a : 0x32;
            p = put_varint(p, entry_len(klen[k], llen[m][k]));
            p = put_bytes(p, (const uint8_t *)"\x0a", 1, label_keys[k], klen[k]);
            p = put_bytes(p, (const uint8_t *)"\x12", 1, vals[k], llen[m][k]);
        }
    }
    for (int i = F_PROTO; i <= F_PATH; i++)
        if (str[i] != NULL)
            p = put_bytes(p, str_tag[i], 1, str[i], slen[i]);
    if (evt->status >= 0)
        p = put_varint((*p = 0x60, p + 1), (uint32_t)evt->status);
    if (evt->grpc_status >= 0)
        p = put_varint((*p = 0x68, p + 1), (uint32_t)evt->grpc_status);
    if (evt->reset >= 0)
        p = put_varint((*p = 0x70, p + 1), (uint32_t)evt->reset);
    if (str[F_ERROR] != NULL)
        p = put_bytes(p, str_tag[F_ERROR], 1, str[F_ERROR], slen[F_ERROR]);
    if (evt->latency_us >= 0)
        p = put_varint((memcpy(p, "\x80\x01", 2), p + 2), (uint64_t)evt->latency_us);
    if (evt->duration_us >= 0)
        p = put_varint((memcpy(p, "\x88\x01", 2), p + 2), (uint64_t)evt->duration_us);
    p = put_varint((memcpy(p, "\x90\x01", 2), p + 2), evt->req_bytes);
    p = put_varint((memcpy(p, "\x98\x01", 2), p + 2), evt->rsp_bytes);
    if (str[F_ID] != NULL)
        p = put_bytes(p, str_tag[F_ID], 2, str[F_ID], slen[F_ID]);
    for (unsigned k = 0; k < 2; k++) { /* field order: all of 21, then all of 22 */
        for (size_t i = 0; i < nh; i++) {
            const struct mesh_header *h = &evt->headers[i];
            if (h->response != k)
                continue;
            p = put_varint((memcpy(p, k ? "\xb2\x01" : "\xaa\x01", 2), p + 2), hlen[i][2]);
            if (h->name != NULL)
                p = put_bytes(p, (const uint8_t *)"\x0a", 1, h->name, hlen[i][0]);
            if (h->redacted) {
                *p++ = 0x18;
                *p++ = 0x01;
            } else if (h->value != NULL) {
                p = put_bytes(p, (const uint8_t *)"\x12", 1, h->value, hlen[i][1]);
            }
            if (k && h->trailer) {
                *p++ = 0x20;
                *p++ = 0x01;
            }
        }
    }
    (void)p; /* == at + head + size: test_lib compares with protobuf-c's bytes */
    return 0;
}

int mesh_evt_unpack(const uint8_t *data, size_t len, struct mesh_evt_pb *pb, struct mesh_evt *evt)
{
    Mesh__Tap__V1__TapEvent *m = mesh__tap__v1__tap_event__unpack(NULL, len, data);
    pb->msg = m;
    mesh_evt_init(evt);
    if (m == NULL)
        return MESH_EPROTO;
    mesh_evt_from_pb(m, evt, pb->headers);
    return 0;
}

void mesh_evt_from_pb(const Mesh__Tap__V1__TapEvent *m, struct mesh_evt *evt,
                      struct mesh_header *headers)
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
    size_t nh = 0;
    for (unsigned k = 0; k < 2; k++) {
        size_t count = k ? m->n_response_headers : m->n_headers;
        Mesh__Tap__V1__Header *const *list = k ? m->response_headers : m->headers;
        for (size_t i = 0; headers != NULL && i < count && nh < MESH_EVT_HEADERS_MAX; i++) {
            const Mesh__Tap__V1__Header *h = list[i];
            if (h->name == NULL)
                continue;
            headers[nh].name = h->name;
            headers[nh].redacted = h->has_redacted && h->redacted;
            headers[nh].response = k;
            headers[nh].trailer = k && h->has_trailer && h->trailer;
            headers[nh].value = headers[nh].redacted ? NULL : h->value;
            nh++;
        }
    }
    evt->headers = nh ? headers : NULL;
    evt->nheaders = nh;
}

void mesh_evt_pb_free(struct mesh_evt_pb *pb)
{
    if (pb->msg != NULL)
        mesh__tap__v1__tap_event__free_unpacked(pb->msg, NULL);
    pb->msg = NULL;
}
