/* proxy/h2.c — HTTP/2 and gRPC forwarding: px_h2_serve() (contract in proxy.h).
 *
 * A struct h2p_conn owns the downstream connection it was handed: its nghttp2
 * server session, one nghttp2 client session per endpoint it used (struct
 * h2p_up, opened on the first request, closed with the connection) and every
 * struct h2p_stream, which pairs a downstream stream with its upstream one and
 * is freed once both are closed, at a safe point (never under a callback).
 * Windows open (nghttp2_session_consume) only for bytes serialized into the
 * other side's output, which is written before more is made: a slow reader
 * slows its writer and a stream buffers at most one window per direction.
 * Sessions are flushed by one before-sleep hook for all connections.
 */
#include "proxy.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/grpc.h"

#define H2P_READ_CHUNK       (64u << 10)
#define H2P_READS_PER_WAKEUP 8
#define H2P_GATHER           (64u << 10)  /* serialized bytes gathered before a write */
#define H2P_OUT_CAP          (1u << 20)   /* never reached: GATHER plus one frame is the bound */
#define H2P_KEEP_OUT         (256u << 10) /* output buffers larger than this are freed once empty */
#define H2P_STREAM_WINDOW    (256u << 10) /* per stream and direction; the body buffer's cap */
#define H2P_CONN_WINDOW      (16u << 20)
#define H2P_BODY_FIRST       8192u
#define H2P_POOL_MAX         64u         /* closed streams kept for reuse per connection */
#define H2P_KEEP_ALLOC       (16u << 10) /* ... with the buffers no larger than this */
#define H2P_FLUSH_PASSES     8
#define H2P_FIELD_HDR        9u /* a stored field: u32 name length, u32 value length, flags */
#define H2P_WHY              128

/* One end of an nghttp2 session: its socket and what was serialized for it. */
struct h2p_side {
    struct h2p_conn *h2c;
    nghttp2_session *session;
    struct mesh_buf out; /* bytes [off, len) not yet written */
    size_t off;
    int fd;
    unsigned mask;
    struct px_conn *conn; /* downstream only: bytes are counted, idleness tracked */
};

/* DATA received on one side and not yet serialized on the other. */
struct h2p_body {
    uint8_t *data;
    size_t off, len, alloc; /* waiting: [off, len) */
};

/* One direction of a stream: request (downstream → upstream) or response. */
struct h2p_half {
    struct mesh_buf head;   /* the request's / final response's fields */
    struct mesh_buf tail;   /* trailers */
    struct mesh_buf *block; /* where the header block being received goes */
    size_t block_size;      /* as SETTINGS_MAX_HEADER_LIST_SIZE counts it */
    struct h2p_body body;
    uint64_t bytes;     /* DATA payload received (or made, for local answers) */
    unsigned ended : 1; /* END_STREAM received */
    unsigned has_tail : 1;
    unsigned overflow : 1; /* the header block went over max_header */
    unsigned deferred : 1; /* our data source said DEFERRED: resume on news */
    unsigned sink : 1;     /* nobody takes DATA any more: consumed as it comes */
    unsigned local : 1;    /* the body is ours, no window to give back */
};

struct h2p_stream {
    struct h2p_conn *h2c;
    struct h2p_up *up; /* the upstream connection, while it exists */
    struct h2p_stream *prev, *next;
    int32_t down_id, up_id;
    struct h2p_half req, rsp;
    struct px_route *route;
    struct px_endpoint *ep;
    uint64_t ts_us;                     /* wall clock, request start */
    uint64_t start_us, head_us, end_us; /* monotonic; 0: not (yet) */
    uint64_t req_end_us;                /* the request's END_STREAM came; 0: not yet */
    int status, grpc_status;
    int64_t reset;
    const char *method, *scheme, *authority, *path, *host; /* in req.head */
    const char *src_hdr; /* PX_SRC_HEADER on inbound, in req.head */
    size_t src_hdr_len;
    char error[H2P_WHY];
    unsigned down_open : 1, up_open : 1, dispatched : 1, is_grpc : 1, rsp_final : 1,
        rsp_submitted : 1, rsp_end_sent : 1, ep_pending : 1, tapped : 1, up_reset : 1;
};

struct h2p_up {
    struct h2p_side side;
    struct h2p_up *next;
    struct px_endpoint *ep;
    int64_t connect_timer;
    unsigned nstreams; /* upstream streams open */
    unsigned connecting : 1, goaway : 1, failed : 1;
    char why[H2P_WHY];
};

struct h2p_conn {
    struct h2p_side side;
    struct px_conn *conn;
    struct h2p_up *ups;
    struct h2p_stream *streams; /* every stream not yet freed */
    struct h2p_stream *pool;
    unsigned npool;
    unsigned nstreams; /* downstream streams open */
    uint64_t last_io_us;
    int64_t timer;
    uint64_t timer_at_us; /* when |timer| fires */
    int busy;
    unsigned failed : 1, draining : 1, goaway_sent : 1, got_request : 1, in_dirty : 1, reap : 1,
        flushing : 1;
    uint64_t flushed_pass;
    struct h2p_conn *dirty_prev, *dirty_next;
    nghttp2_nv *nva; /* scratch for submissions (nghttp2 copies what it keeps) */
    size_t nva_alloc;
    char why[H2P_WHY];
};

struct h2p_field {
    const char *name, *value;
    size_t namelen, valuelen;
    uint8_t flags;
};

/* Shared by every connection of the process (one loop, one thread). */
static struct {
    struct mesh_loop *loop;
    int64_t hook;
    unsigned nconns;
    uint64_t pass;
    struct h2p_conn *dirty_head, *dirty_tail;
    nghttp2_session_callbacks *down_cbs, *up_cbs;
    nghttp2_option *option;
    uint8_t rbuf[H2P_READ_CHUNK];
} h2p;

static void h2c_fail(struct h2p_conn *h2c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void up_fail(struct h2p_up *up, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stream_answer(struct h2p_stream *s, int http_status, int grpc_status, const char *msg);
static void h2c_response_due(struct h2p_conn *h2c, struct h2p_stream *s);

/* ---- the flush hook ---------------------------------------------------------------------- */

static void dirty_unlink(struct h2p_conn *h2c)
{
    if (!h2c->in_dirty)
        return;
    if (h2c->dirty_prev != NULL)
        h2c->dirty_prev->dirty_next = h2c->dirty_next;
    else
        h2p.dirty_head = h2c->dirty_next;
    if (h2c->dirty_next != NULL)
        h2c->dirty_next->dirty_prev = h2c->dirty_prev;
    else
        h2p.dirty_tail = h2c->dirty_prev;
    h2c->dirty_prev = h2c->dirty_next = NULL;
    h2c->in_dirty = 0;
}

static void h2c_dirty(struct h2p_conn *h2c)
{
    if (h2c->in_dirty || h2c->failed || h2c->flushing)
        return; /* a flush in progress goes round until its sessions are quiet */
    h2c->in_dirty = 1;
    h2c->dirty_next = NULL;
    h2c->dirty_prev = h2p.dirty_tail;
    if (h2p.dirty_tail != NULL)
        h2p.dirty_tail->dirty_next = h2c;
    else
        h2p.dirty_head = h2c;
    h2p.dirty_tail = h2c;
    mesh_loop_wake(h2p.loop); /* in case the hook has run in this iteration */
}

/* ---- small helpers ----------------------------------------------------------------------- */

static int field_next(const struct mesh_buf *fields, size_t *at, struct h2p_field *f)
{
    if (*at >= fields->len)
        return 0;
    const char *p = fields->data + *at;
    uint32_t namelen, valuelen;
    memcpy(&namelen, p, 4);
    memcpy(&valuelen, p + 4, 4);
    f->flags = (uint8_t)p[8];
    f->name = p + H2P_FIELD_HDR;
    f->namelen = namelen;
    f->value = f->name + namelen + 1;
    f->valuelen = valuelen;
    *at += H2P_FIELD_HDR + namelen + valuelen + 2;
    return 1;
}

static int name_is(const struct h2p_field *f, const char *name)
{
    size_t len = strlen(name);
    return f->namelen == len && memcmp(f->name, name, len) == 0;
}

/* Connection-specific fields (RFC 9113 8.2.2) stay on their hop. */
static int hop_by_hop(const struct h2p_field *f)
{
    switch (f->namelen) {
    case 2:
        return name_is(f, "te") && !(f->valuelen == 8 && memcmp(f->value, "trailers", 8) == 0);
    case 7:
        return name_is(f, "upgrade");
    case sizeof(PX_SRC_HEADER) - 1: /* ours to set: proxy.h "who is calling" */
        return name_is(f, PX_SRC_HEADER) || name_is(f, PX_DST_HEADER);
    case 10:
        return name_is(f, "connection") || name_is(f, "keep-alive");
    case 16:
        return name_is(f, "proxy-connection");
    case 17:
        return name_is(f, "transfer-encoding");
    default:
        return 0;
    }
}

/* |fields| as an nghttp2_nv array (the connection's scratch), minus the
 * hop-by-hop ones, plus |extra| when not NULL. NULL when out of memory. */
static nghttp2_nv *fields_nva(struct h2p_conn *h2c, const struct mesh_buf *fields, size_t *count,
                              const nghttp2_nv *extra)
{
    struct h2p_field f;
    size_t n = 0, at = 0;
    int more;
    while ((more = field_next(fields, &at, &f)) || extra != NULL) {
        if (!more) {
            f = (struct h2p_field){(const char *)extra->name, (const char *)extra->value,
                                   extra->namelen, extra->valuelen, 0};
            extra = NULL;
        } else if (hop_by_hop(&f)) {
            continue;
        }
        if (n == h2c->nva_alloc) {
            size_t alloc = h2c->nva_alloc ? h2c->nva_alloc * 2 : 32;
            nghttp2_nv *nva = realloc(h2c->nva, alloc * sizeof(*nva));
            if (nva == NULL)
                return NULL;
            h2c->nva = nva;
            h2c->nva_alloc = alloc;
        }
        h2c->nva[n++] = (nghttp2_nv){(uint8_t *)f.name, (uint8_t *)f.value, f.namelen, f.valuelen,
                                     (uint8_t)(f.flags & NGHTTP2_NV_FLAG_NO_INDEX)};
    }
    static nghttp2_nv none;
    *count = n;
    return n > 0 ? h2c->nva : &none;
}

static int parse_code(const char *value, size_t len)
{
    int code = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        code = code * 10 + (value[i] - '0');
    }
    return code;
}

/* The value of field |name| in |fields|, or -1 as a number. */
static int field_code(const struct mesh_buf *fields, const char *name)
{
    struct h2p_field f;
    size_t at = 0;
    while (field_next(fields, &at, &f))
        if (name_is(&f, name))
            return parse_code(f.value, f.valuelen);
    return -1;
}

/* The first field called |name| in |fields|, into |out|: 1, or 0 when none. */
static int field_get(const struct mesh_buf *fields, const char *name, struct h2p_field *out)
{
    size_t at = 0;
    while (field_next(fields, &at, out))
        if (name_is(out, name))
            return 1;
    return 0;
}

static const struct px_limits *h2c_limits(const struct h2p_conn *h2c)
{
    return &h2c->conn->px->cfg.limits;
}

/* ---- bodies ------------------------------------------------------------------------------ */

static int body_append(struct h2p_body *body, const uint8_t *data, size_t len)
{
    size_t held = body->len - body->off;
    if (len > H2P_STREAM_WINDOW - held)
        return MESH_ETOOBIG; /* more than the window we gave: the peer broke flow control */
    if (body->len + len > body->alloc && body->off > 0) {
        memmove(body->data, body->data + body->off, held);
        body->off = 0;
        body->len = held;
    }
    if (body->len + len > body->alloc) {
        size_t alloc = body->alloc ? body->alloc : H2P_BODY_FIRST;
        while (alloc < body->len + len)
            alloc *= 2;
        if (alloc > H2P_STREAM_WINDOW)
            alloc = H2P_STREAM_WINDOW;
        uint8_t *grown = realloc(body->data, alloc);
        if (grown == NULL)
            return MESH_ENOMEM;
        body->data = grown;
        body->alloc = alloc;
    }
    memcpy(body->data + body->len, data, len);
    body->len += len;
    return 0;
}

static void body_take(struct h2p_body *body, size_t len)
{
    body->off += len;
    if (body->off == body->len)
        body->off = body->len = 0;
}

/* ---- streams ----------------------------------------------------------------------------- */

static void half_init(struct h2p_half *half, size_t cap)
{
    struct mesh_buf head = half->head, tail = half->tail;
    struct h2p_body body = half->body;
    memset(half, 0, sizeof(*half));
    half->head = head;
    half->tail = tail;
    half->body = body;
    half->body.off = half->body.len = 0;
    mesh_buf_reset(&half->head);
    mesh_buf_reset(&half->tail);
    half->head.cap = half->tail.cap = cap;
}

static void half_free(struct h2p_half *half)
{
    mesh_buf_free(&half->head);
    mesh_buf_free(&half->tail);
    free(half->body.data);
    half->body.data = NULL;
    half->body.alloc = 0;
}

static void half_trim(struct h2p_half *half)
{
    if (half->head.alloc > H2P_KEEP_ALLOC)
        mesh_buf_free(&half->head);
    if (half->tail.alloc > H2P_KEEP_ALLOC)
        mesh_buf_free(&half->tail);
    if (half->body.alloc > H2P_KEEP_ALLOC) {
        free(half->body.data);
        half->body.data = NULL;
        half->body.alloc = 0;
    }
}

static struct h2p_stream *stream_new(struct h2p_conn *h2c)
{
    struct h2p_stream *s = h2c->pool;
    if (s != NULL) {
        h2c->pool = s->next;
        h2c->npool--;
    } else if ((s = calloc(1, sizeof(*s))) == NULL) {
        return NULL;
    }
    struct h2p_half req = s->req, rsp = s->rsp;
    memset(s, 0, sizeof(*s));
    s->req = req;
    s->rsp = rsp;
    /* the fields, their lengths and NULs: twice the list size always holds them */
    size_t cap = 2 * h2c_limits(h2c)->max_header + 4096;
    half_init(&s->req, cap);
    half_init(&s->rsp, cap);
    s->h2c = h2c;
    s->status = s->grpc_status = -1;
    s->reset = -1;
    s->next = h2c->streams;
    if (h2c->streams != NULL)
        h2c->streams->prev = s;
    h2c->streams = s;
    return s;
}

/* Where |half|'s DATA came from: the session whose window it holds. */
static nghttp2_session *half_origin(struct h2p_stream *s, struct h2p_half *half, int32_t *id)
{
    if (half->local)
        return NULL;
    if (half == &s->req) {
        *id = s->down_id;
        return s->h2c->side.session;
    }
    if (s->up == NULL)
        return NULL;
    *id = s->up_id;
    return s->up->side.session;
}

/* |len| bytes of |half| left us (or were dropped): the origin may send as many more. */
static void half_consumed(struct h2p_stream *s, struct h2p_half *half, size_t len)
{
    int32_t id;
    nghttp2_session *origin = half_origin(s, half, &id);
    if (origin == NULL || len == 0)
        return;
    if (nghttp2_session_consume(origin, id, len) == NGHTTP2_ERR_NOMEM)
        h2c_fail(s->h2c, "out of memory");
    h2c_dirty(s->h2c);
}

/* Nobody will take |half|'s DATA any more: what is held and what comes is dropped. */
static void half_sink(struct h2p_stream *s, struct h2p_half *half)
{
    if (half->sink)
        return;
    half->sink = 1;
    size_t held = half->body.len - half->body.off;
    half->body.off = half->body.len = 0;
    half_consumed(s, half, held);
}

static void stream_free(struct h2p_stream *s)
{
    struct h2p_conn *h2c = s->h2c;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h2c->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    if (h2c->npool < H2P_POOL_MAX && !h2c->failed) {
        half_trim(&s->req);
        half_trim(&s->rsp);
        s->next = h2c->pool;
        h2c->pool = s;
        h2c->npool++;
        return;
    }
    half_free(&s->req);
    half_free(&s->rsp);
    free(s);
}

static void stream_ep_done(struct h2p_stream *s, int failed)
{
    if (!s->ep_pending)
        return;
    s->ep_pending = 0;
    uint64_t now = mesh_loop_tick_us(h2p.loop);
    px_endpoint_done(s->ep, now, now - s->start_us, failed);
}

static void stream_error(struct h2p_stream *s, const char *why)
{
    if (s->error[0] == '\0')
        snprintf(s->error, sizeof(s->error), "%s", why);
}

static void stream_tap(struct h2p_stream *s)
{
    if (s->tapped || !s->dispatched)
        return; /* a header block that never completed is not a request */
    s->tapped = 1;
    struct mesh_evt evt;
    mesh_evt_init(&evt);
    evt.ts_us = s->ts_us;
    evt.proto = s->is_grpc || s->grpc_status >= 0 ? MESH_PROTO_GRPC : MESH_PROTO_H2;
    evt.method = s->method;
    evt.scheme = s->scheme;
    evt.authority = s->authority != NULL ? s->authority : s->host;
    evt.path = s->path;
    evt.status = s->status;
    evt.grpc_status = s->grpc_status;
    evt.reset = s->reset;
    evt.error = s->error[0] != '\0' ? s->error : NULL;
    evt.latency_us = s->head_us ? (int64_t)(s->head_us - s->start_us) : -1;
    evt.duration_us = s->end_us ? (int64_t)(s->end_us - s->start_us) : -1;
    evt.req_bytes = s->req.bytes;
    evt.rsp_bytes = s->rsp.bytes;
    evt.dst = s->ep != NULL ? s->ep->name : NULL;
    char src[256], dst[256];
    struct h2p_field f;
    if (s->src_hdr != NULL)
        px_src_parse(s->src_hdr, s->src_hdr_len, src, sizeof(src), &evt.src_labels);
    if (s->h2c->conn->dir == MESH_DIR_OUTBOUND && field_get(&s->rsp.head, PX_DST_HEADER, &f))
        px_src_parse(f.value, f.valuelen, dst, sizeof(dst), &evt.dst_labels);
    struct mesh_hdrcap cap = {0};
    struct mesh_header hs[MESH_EVT_HEADERS_MAX];
    if (px_hdrcap_on(s->h2c->conn->px)) {
        /* indexed by MESH_HDR_REQUEST, _RESPONSE (the final head), _TRAILER */
        const struct mesh_buf *fields[3] = {&s->req.head, &s->rsp.head,
                                            s->rsp.has_tail ? &s->rsp.tail : NULL};
        for (unsigned k = 0; k < 3 && fields[k] != NULL; k++) {
            for (size_t at = 0; field_next(fields[k], &at, &f);)
                mesh_hdrcap_offer(&s->h2c->conn->px->cfg.headers, &cap, k, f.name, f.namelen,
                                  f.value, f.valuelen);
        }
        mesh_hdrcap_apply(&cap, &evt, hs);
    }
    px_tap(s->h2c->conn, s->route, &evt, (uint64_t)s->down_id);
    mesh_hdrcap_free(&cap);
}

/* The other side may serialize more of |half|: its data source said DEFERRED. */
static void half_kick(struct h2p_stream *s, struct h2p_half *half)
{
    if (!half->deferred)
        return;
    nghttp2_session *target;
    int32_t id;
    if (half == &s->req) {
        if (!s->up_open)
            return;
        target = s->up->side.session;
        id = s->up_id;
    } else {
        if (!s->down_open || !s->rsp_submitted)
            return;
        target = s->h2c->side.session;
        id = s->down_id;
    }
    half->deferred = 0;
    nghttp2_session_resume_data(target, id);
    h2c_dirty(s->h2c);
}

static void half_end(struct h2p_stream *s, struct h2p_half *half)
{
    half->ended = 1;
    half_kick(s, half);
}

static void stream_rst_down(struct h2p_stream *s, uint32_t code)
{
    if (!s->down_open)
        return;
    if (s->reset < 0)
        s->reset = code;
    nghttp2_submit_rst_stream(s->h2c->side.session, NGHTTP2_FLAG_NONE, s->down_id, code);
    h2c_dirty(s->h2c);
}

static void stream_rst_up(struct h2p_stream *s, uint32_t code)
{
    if (!s->up_open || s->up_reset)
        return;
    s->up_reset = 1; /* its close is ours, not news for the client */
    nghttp2_submit_rst_stream(s->up->side.session, NGHTTP2_FLAG_NONE, s->up_id, code);
    h2c_dirty(s->h2c);
}

/* Both ways, with |code| downstream. */
static void stream_abort(struct h2p_stream *s, uint32_t code)
{
    stream_rst_down(s, code);
    stream_rst_up(s, NGHTTP2_CANCEL);
    half_sink(s, &s->req);
    half_sink(s, &s->rsp);
}

/* ---- data sources (both directions) ------------------------------------------------------ */

/* nghttp2 asks what to send of a half: the other side's DATA, then its trailers. */
static ssize_t body_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    (void)buf;
    (void)user_data;
    struct h2p_stream *s = source->ptr;
    struct h2p_half *half = session == s->h2c->side.session ? &s->rsp : &s->req;
    size_t held = half->body.len - half->body.off;
    if (held == 0 && !half->ended) {
        half->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = held < length ? held : length;
    if (n > 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY; /* body_send() writes it: one copy less */
    if (n == held && half->ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (half->has_tail) {
            size_t count;
            nghttp2_nv *nva = fields_nva(s->h2c, &half->tail, &count, NULL);
            if (nva != NULL && nghttp2_submit_trailer(session, stream_id, nva, count) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (ssize_t)n;
}

static struct h2p_side *session_side(nghttp2_session *session, struct h2p_stream *s,
                                     void *user_data)
{
    if (session == s->h2c->side.session)
        return &s->h2c->side;
    return &((struct h2p_up *)user_data)->side;
}

/* A DATA frame of |length| bytes goes out: straight from the body buffer into
 * the output, and the origin gets the window back. */
static int body_send(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *source, void *user_data)
{
    struct h2p_stream *s = source->ptr;
    struct h2p_half *half = session == s->h2c->side.session ? &s->rsp : &s->req;
    struct h2p_side *side = session_side(session, s, user_data);
    if (side->out.len - side->off >= H2P_GATHER)
        return NGHTTP2_ERR_WOULDBLOCK; /* written first; nghttp2 asks again */
    size_t padlen = frame->data.padlen;
    char *at;
    if (mesh_buf_append_space(&side->out, 9 + length + padlen, &at) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(at, framehd, 9);
    at += 9;
    if (padlen > 0)
        *at++ = (char)(padlen - 1);
    memcpy(at, half->body.data + half->body.off, length);
    if (padlen > 1)
        memset(at + length, 0, padlen - 1);
    body_take(&half->body, length);
    half_consumed(s, half, length);
    return 0;
}

/* ---- sides: reading and writing ---------------------------------------------------------- */

/* Reads what the socket has into the session. 0, or MESH_EIO with |why| set. */
static int side_read(struct h2p_side *side, char *why, size_t whylen)
{
    for (int round = 0; round < H2P_READS_PER_WAKEUP && !side->h2c->failed; round++) {
        ssize_t n = read(side->fd, h2p.rbuf, sizeof(h2p.rbuf));
        if (n == 0) {
            snprintf(why, whylen, "connection closed by peer");
            return MESH_EIO;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            snprintf(why, whylen, "read: %s", strerror(errno));
            return MESH_EIO;
        }
        if (side->conn != NULL) {
            px_conn_count(side->conn, (uint64_t)n, 0);
            side->h2c->last_io_us = mesh_loop_tick_us(h2p.loop);
        }
        ssize_t used = nghttp2_session_mem_recv(side->session, h2p.rbuf, (size_t)n);
        if (used < 0) {
            snprintf(why, whylen, "HTTP/2: %s", nghttp2_strerror((int)used));
            return MESH_EIO;
        }
        if ((size_t)n < sizeof(h2p.rbuf))
            break;
    }
    h2c_dirty(side->h2c);
    return 0;
}

static void side_mask(struct h2p_side *side, unsigned mask)
{
    if (side->mask != mask && mesh_loop_mod_fd(h2p.loop, side->fd, mask) == 0)
        side->mask = mask;
}

/* Serializes what the session has and writes it. Returns 1 when it made new
 * bytes (they may have given windows back to the other side), 0 when not,
 * MESH_EIO with |why| set when the connection is broken. */
static int side_flush(struct h2p_side *side, char *why, size_t whylen)
{
    int made = 0, blocked = 0;
    for (int round = 0; round < 64; round++) {
        size_t before = side->out.len;
        while (side->out.len - side->off < H2P_GATHER) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(side->session, &data);
            if (n < 0) {
                snprintf(why, whylen, "HTTP/2: %s", nghttp2_strerror((int)n));
                return MESH_EIO;
            }
            if (n == 0)
                break;
            if (mesh_buf_append(&side->out, data, (size_t)n) != 0) {
                snprintf(why, whylen, "out of memory");
                return MESH_EIO;
            }
        }
        if (side->out.len != before)
            made = 1;
        size_t pending = side->out.len - side->off;
        if (pending == 0)
            break;
        ssize_t w = send(side->fd, side->out.data + side->off, pending, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                blocked = 1;
                break;
            }
            snprintf(why, whylen, "write: %s", strerror(errno));
            return MESH_EIO;
        }
        if (side->conn != NULL) {
            px_conn_count(side->conn, 0, (uint64_t)w);
            side->h2c->last_io_us = mesh_loop_tick_us(h2p.loop);
        }
        side->off += (size_t)w;
        if (side->off == side->out.len) {
            side->off = 0;
            if (side->out.alloc > H2P_KEEP_OUT)
                mesh_buf_free(&side->out);
            else
                mesh_buf_reset(&side->out);
        } else {
            blocked = 1;
            break;
        }
    }
    side_mask(side, MESH_READ | (blocked ? MESH_WRITE : 0u));
    return made;
}

static int side_idle(const struct h2p_side *side)
{
    return side->out.len == side->off && !nghttp2_session_want_read(side->session) &&
           !nghttp2_session_want_write(side->session);
}

/* ---- connections: entering, failing, tearing down ----------------------------------------- */

static void h2c_enter(struct h2p_conn *h2c)
{
    h2c->busy++;
}

static void h2c_fail(struct h2p_conn *h2c, const char *fmt, ...)
{
    if (h2c->failed)
        return; /* the first reason is the one worth telling */
    h2c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h2c->why, sizeof(h2c->why), fmt, ap);
    va_end(ap);
    dirty_unlink(h2c);
}

static void up_fail(struct h2p_up *up, const char *fmt, ...)
{
    if (up->failed)
        return;
    up->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(up->why, sizeof(up->why), fmt, ap);
    va_end(ap);
    up->side.h2c->reap = 1;
}

/* The upstream stream of |s| is gone: closed with |code|, or its connection
 * broke (|broken|, the reason in s->error). What the client gets follows. */
static void stream_up_closed(struct h2p_stream *s, uint32_t code, int broken)
{
    if (!s->up_open)
        return;
    s->up_open = 0;
    s->up->nstreams--;
    s->h2c->reap = 1;
    half_sink(s, &s->req);
    if (s->up_reset || s->rsp.local || s->rsp.ended)
        return; /* we ended it, answered ourselves, or hold the whole response */
    stream_ep_done(s, 1);
    if (!s->down_open)
        return;
    if (!broken && code != NGHTTP2_NO_ERROR) {
        stream_abort(s, code); /* REFUSED_STREAM (after GOAWAY) included: the client retries */
        return;
    }
    if (!broken)
        stream_error(s, s->rsp_submitted ? "upstream reset the stream before the response ended"
                                         : "upstream closed the stream without a response");
    if (!s->rsp_submitted)
        stream_answer(s, 502, MESH_GRPC_UNAVAILABLE, s->error);
    else
        stream_abort(s, NGHTTP2_INTERNAL_ERROR);
}

static void up_free(struct h2p_up *up)
{
    if (up->connect_timer > 0)
        mesh_loop_del_timer(h2p.loop, up->connect_timer);
    if (up->side.fd >= 0) {
        mesh_loop_del_fd(h2p.loop, up->side.fd);
        close(up->side.fd);
    }
    nghttp2_session_del(up->side.session);
    mesh_buf_free(&up->side.out);
    free(up);
}

/* Closes |up| at a safe point; its streams still open learn why. */
static void up_close(struct h2p_up *up)
{
    struct h2p_conn *h2c = up->side.h2c;
    for (struct h2p_stream *s = h2c->streams; s != NULL; s = s->next) {
        if (s->up != up)
            continue;
        if (s->up_open) {
            stream_error(s, up->why[0] != '\0' ? up->why : "upstream connection closed");
            stream_up_closed(s, NGHTTP2_NO_ERROR, 1);
        }
        s->up = NULL; /* response bytes still held: no window left to give back */
    }
    up_free(up);
}

static void h2p_module_unref(void);

/* Ends the connection now: requests still open are reported as broken. */
static void h2c_destroy(struct h2p_conn *h2c)
{
    struct px_conn *conn = h2c->conn;
    const char *why = h2c->why[0] != '\0' ? h2c->why : "connection closed";
    h2c->failed = 1;
    h2c->busy++; /* nothing below may free us again */
    dirty_unlink(h2c);
    if (h2c->timer > 0)
        mesh_loop_del_timer(h2p.loop, h2c->timer);
    mesh_loop_del_fd(h2p.loop, h2c->side.fd);
    for (struct h2p_stream *s = h2c->streams; s != NULL; s = s->next) {
        if (!s->down_open)
            continue;
        s->down_open = 0;
        stream_error(s, why);
        stream_ep_done(s, 1);
        stream_tap(s);
    }
    while (h2c->ups != NULL) {
        struct h2p_up *up = h2c->ups;
        h2c->ups = up->next;
        for (struct h2p_stream *s = h2c->streams; s != NULL; s = s->next) {
            if (s->up == up) {
                stream_ep_done(s, 1);
                s->up = NULL;
            }
        }
        up_free(up);
    }
    while (h2c->streams != NULL) {
        struct h2p_stream *s = h2c->streams;
        h2c->streams = s->next;
        half_free(&s->req);
        half_free(&s->rsp);
        free(s);
    }
    while (h2c->pool != NULL) {
        struct h2p_stream *s = h2c->pool;
        h2c->pool = s->next;
        half_free(&s->req);
        half_free(&s->rsp);
        free(s);
    }
    nghttp2_session_del(h2c->side.session);
    mesh_buf_free(&h2c->side.out);
    free(h2c->nva);
    free(h2c);
    conn->proto = NULL;
    conn->on_drain = NULL;
    conn->on_close = NULL;
    px_conn_close(conn);
    h2p_module_unref();
}

/* Leaves a processing section; the outermost one frees what was closed and
 * tears the connection down if it failed. Returns -1 when |h2c| is gone. */
static int h2c_leave(struct h2p_conn *h2c)
{
    if (--h2c->busy > 0)
        return 0;
    h2c->busy++;
    for (struct h2p_up **link = &h2c->ups; *link != NULL && !h2c->failed;) {
        struct h2p_up *up = *link;
        if (up->failed || (up->goaway && up->nstreams == 0)) {
            *link = up->next;
            up_close(up);
        } else {
            link = &up->next;
        }
    }
    if (h2c->reap && !h2c->failed) {
        h2c->reap = 0;
        for (struct h2p_stream *s = h2c->streams, *next; s != NULL; s = next) {
            next = s->next;
            if (!s->down_open && !s->up_open) {
                half_sink(s, &s->req); /* windows back for bytes never forwarded */
                half_sink(s, &s->rsp);
                stream_free(s);
            }
        }
    }
    h2c->busy--;
    if (h2c->failed) {
        h2c_destroy(h2c);
        return -1;
    }
    return 0;
}

static void h2c_final_goaway(struct h2p_conn *h2c)
{
    if (h2c->goaway_sent)
        return;
    h2c->goaway_sent = 1;
    nghttp2_session *session = h2c->side.session;
    nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session), NGHTTP2_NO_ERROR, NULL,
                          0);
    h2c_dirty(h2c);
}

static void h2c_flush(struct h2p_conn *h2c)
{
    char why[H2P_WHY];
    int made = 1;
    h2c->flushing = 1;
    for (int pass = 0; pass < H2P_FLUSH_PASSES && made && !h2c->failed; pass++) {
        made = 0;
        for (struct h2p_up *up = h2c->ups; up != NULL; up = up->next) {
            if (up->failed || up->connecting)
                continue;
            int rv = side_flush(&up->side, why, sizeof(why));
            if (rv < 0)
                up_fail(up, "upstream %s: %s", up->ep->name, why);
            else if (side_idle(&up->side))
                up_fail(up, "upstream %s ended the HTTP/2 session", up->ep->name);
            else
                made |= rv;
        }
        int rv = side_flush(&h2c->side, why, sizeof(why));
        if (rv < 0)
            h2c_fail(h2c, "%s", why);
        else
            made |= rv;
    }
    h2c->flushing = 0;
    if (h2c->failed)
        return;
    if (made)
        h2c_dirty(h2c); /* out of passes, not out of work */
    if (side_idle(&h2c->side))
        h2c_fail(h2c, "HTTP/2 session ended");
    else if (h2c->goaway_sent && h2c->nstreams == 0 && h2c->side.out.len == h2c->side.off)
        h2c_fail(h2c, "drained");
}

static void h2p_hook(struct mesh_loop *loop, void *ctx)
{
    (void)loop;
    (void)ctx;
    uint64_t pass = ++h2p.pass;
    struct h2p_conn *h2c;
    while ((h2c = h2p.dirty_head) != NULL) {
        if (h2c->flushed_pass == pass)
            break; /* dirtied again in this pass: next iteration (the loop was woken) */
        dirty_unlink(h2c);
        h2c->flushed_pass = pass;
        h2c_enter(h2c);
        h2c_flush(h2c);
        h2c_leave(h2c);
    }
}

/* ---- upstream connections ---------------------------------------------------------------- */

static int up_connect_timeout(struct mesh_loop *loop, int64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    struct h2p_up *up = ctx;
    struct h2p_conn *h2c = up->side.h2c;
    up->connect_timer = 0;
    h2c_enter(h2c);
    up_fail(up, "connect to %s: timed out", up->ep->name);
    h2c_leave(h2c);
    return MESH_TIMER_DONE;
}

static void up_on_fd(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    struct h2p_up *up = ctx;
    struct h2p_conn *h2c = up->side.h2c;
    char why[H2P_WHY];
    h2c_enter(h2c);
    if (up->failed) {
        /* torn down at leave */
    } else if (up->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            up_fail(up, "connect to %s: %s", up->ep->name, strerror(err));
        } else {
            up->connecting = 0;
            if (up->connect_timer > 0)
                mesh_loop_del_timer(h2p.loop, up->connect_timer);
            up->connect_timer = 0;
            side_mask(&up->side, MESH_READ);
            h2c_dirty(h2c);
        }
    } else {
        if ((events & MESH_READ) && side_read(&up->side, why, sizeof(why)) != 0)
            up_fail(up, "upstream %s: %s", up->ep->name, why);
        if (events & MESH_WRITE)
            h2c_dirty(h2c);
    }
    h2c_leave(h2c);
}

static struct h2p_up *up_new(struct h2p_conn *h2c, struct px_endpoint *ep, char *why, size_t len)
{
    int fd = px_connect(ep);
    if (fd < 0) {
        snprintf(why, len, "connect to %s: %s", ep->name, strerror(errno));
        return NULL;
    }
    struct h2p_up *up = calloc(1, sizeof(*up));
    if (up == NULL) {
        close(fd);
        snprintf(why, len, "out of memory");
        return NULL;
    }
    up->ep = ep;
    up->side.h2c = h2c;
    up->side.fd = fd;
    mesh_buf_init(&up->side.out, H2P_OUT_CAP);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2P_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)h2c_limits(h2c)->max_header},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_session_client_new2(&up->side.session, h2p.up_cbs, up, h2p.option) != 0) {
        up->side.session = NULL;
        goto fail;
    }
    if (nghttp2_submit_settings(up->side.session, NGHTTP2_FLAG_NONE, iv, 4) != 0 ||
        nghttp2_session_set_local_window_size(up->side.session, NGHTTP2_FLAG_NONE, 0,
                                              H2P_CONN_WINDOW) != 0)
        goto fail;
    if (mesh_loop_add_fd(h2p.loop, fd, MESH_WRITE, up_on_fd, up) != 0)
        goto fail;
    up->side.mask = MESH_WRITE;
    up->connecting = 1;
    unsigned timeout_ms = h2c_limits(h2c)->connect_timeout_ms;
    int64_t timer =
        timeout_ms > 0 ? mesh_loop_add_timer(h2p.loop, timeout_ms, up_connect_timeout, up) : 0;
    if (timer < 0) {
        mesh_loop_del_fd(h2p.loop, fd);
        goto fail;
    }
    up->connect_timer = timer;
    up->next = h2c->ups;
    h2c->ups = up;
    return up;
fail:
    snprintf(why, len, "out of memory");
    up->side.fd = -1;
    close(fd);
    up_free(up);
    return NULL;
}

/* The upstream connection to |ep| that takes new streams, opened if need be. */
static struct h2p_up *up_get(struct h2p_conn *h2c, struct px_endpoint *ep, char *why, size_t len)
{
    for (struct h2p_up *up = h2c->ups; up != NULL; up = up->next) {
        if (up->ep != ep || up->failed || up->goaway)
            continue;
        if (nghttp2_session_check_request_allowed(up->side.session))
            return up;
        up->goaway = 1; /* stream ids spent or GOAWAY seen: closes once its streams end */
    }
    return up_new(h2c, ep, why, len);
}

/* ---- requests ---------------------------------------------------------------------------- */

#define NV(name, value, vlen)                                                                      \
    {                                                                                              \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (vlen), NGHTTP2_NV_FLAG_NONE      \
    }

/* Answers |s| ourselves: gRPC gets a trailers-only response with |grpc_status|,
 * anything else |http_status| with |msg| as a short text body. */
static void stream_answer(struct h2p_stream *s, int http_status, int grpc_status, const char *msg)
{
    struct h2p_conn *h2c = s->h2c;
    if (!s->down_open)
        return;
    if (s->rsp_submitted) {
        stream_abort(s, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    half_sink(s, &s->req);
    stream_rst_up(s, NGHTTP2_CANCEL);
    s->rsp_submitted = s->rsp_final = 1;
    s->head_us = mesh_loop_tick_us(h2p.loop);
    struct h2p_half *rsp = &s->rsp;
    rsp->body.off = rsp->body.len = 0;
    rsp->local = 1;
    rsp->sink = 0;
    rsp->has_tail = 0;
    int rv;
    if (s->is_grpc) {
        char code[16], text[512];
        struct mesh_buf enc;
        mesh_buf_init(&enc, sizeof(text) - 1);
        mesh_grpc_message_encode(&enc, msg); /* too long: cut at the cap */
        snprintf(text, sizeof(text), "%s", enc.data != NULL ? enc.data : "");
        mesh_buf_free(&enc);
        int n = snprintf(code, sizeof(code), "%d", grpc_status);
        nghttp2_nv nva[] = {
            NV(":status", "200", 3),
            NV("content-type", "application/grpc", 16),
            NV("grpc-status", code, (size_t)n),
            NV("grpc-message", text, strlen(text)),
        };
        s->status = 200;
        s->grpc_status = grpc_status;
        rsp->ended = 1;
        rv = nghttp2_submit_response(h2c->side.session, s->down_id, nva, 4, NULL);
    } else {
        char status[8], text[H2P_WHY + 8], length[16];
        int n = snprintf(text, sizeof(text), "%s\n", msg);
        if (n >= (int)sizeof(text))
            n = (int)sizeof(text) - 1;
        snprintf(status, sizeof(status), "%d", http_status);
        int ln = snprintf(length, sizeof(length), "%d", n);
        nghttp2_nv nva[] = {
            NV(":status", status, strlen(status)),
            NV("content-type", "text/plain; charset=utf-8", 25),
            NV("content-length", length, (size_t)ln),
        };
        s->status = http_status;
        rsp->ended = 1;
        rsp->bytes = (uint64_t)n;
        if (body_append(&rsp->body, (const uint8_t *)text, (size_t)n) != 0) {
            stream_abort(s, NGHTTP2_INTERNAL_ERROR);
            return;
        }
        nghttp2_data_provider prd = {.source.ptr = s, .read_callback = body_read};
        rv = nghttp2_submit_response(h2c->side.session, s->down_id, nva, 3, &prd);
    }
    if (rv != 0)
        stream_rst_down(s, NGHTTP2_INTERNAL_ERROR);
    h2c_dirty(h2c);
}

/* The request head is complete: route it and open its upstream stream. */
static void stream_dispatch(struct h2p_stream *s)
{
    struct h2p_conn *h2c = s->h2c;
    struct px *px = h2c->conn->px;
    struct h2p_field f;
    size_t at = 0;
    s->dispatched = 1;
    while (field_next(&s->req.head, &at, &f)) {
        if (f.name[0] == ':') {
            if (name_is(&f, ":method"))
                s->method = f.value;
            else if (name_is(&f, ":scheme"))
                s->scheme = f.value;
            else if (name_is(&f, ":authority"))
                s->authority = f.value;
            else if (name_is(&f, ":path"))
                s->path = f.value;
        } else if (name_is(&f, "host")) {
            s->host = f.value;
        } else if (name_is(&f, "content-type")) {
            s->is_grpc = f.valuelen >= 16 && memcmp(f.value, "application/grpc", 16) == 0;
        } else if (name_is(&f, PX_SRC_HEADER) && h2c->conn->dir == MESH_DIR_INBOUND) {
            s->src_hdr = f.value;
            s->src_hdr_len = f.valuelen;
        }
    }
    if (s->req.overflow) {
        stream_answer(s, 431, MESH_GRPC_RESOURCE_EXHAUSTED, "request header list too large");
        return;
    }
    char why[H2P_WHY];
    const char *authority = s->authority != NULL ? s->authority : s->host;
    s->route = px_route_find(px, h2c->conn, authority, authority ? strlen(authority) : 0);
    if (s->route == NULL || s->route->neps == 0) {
        snprintf(why, sizeof(why), "no route for authority %.80s",
                 authority ? authority : "(none)");
        stream_error(s, why);
        stream_answer(s, 502, MESH_GRPC_UNAVAILABLE, why);
        return;
    }
    s->ep = px_endpoint_pick(s->route, mesh_loop_tick_us(h2p.loop));
    px_endpoint_start(s->ep);
    s->ep_pending = 1;
    struct h2p_up *up = up_get(h2c, s->ep, why, sizeof(why));
    size_t count = 0;
    char src[256];
    nghttp2_nv src_nv = {(uint8_t *)PX_SRC_HEADER, (uint8_t *)src, sizeof(PX_SRC_HEADER) - 1, 0,
                         NGHTTP2_NV_FLAG_NONE};
    if (h2c->conn->dir == MESH_DIR_OUTBOUND)
        src_nv.valuelen = px_src_value(px, src, sizeof(src));
    nghttp2_nv *nva =
        up != NULL ? fields_nva(h2c, &s->req.head, &count, src_nv.valuelen ? &src_nv : NULL)
                   : NULL;
    if (up != NULL && nva == NULL)
        snprintf(why, sizeof(why), "out of memory");
    if (nva != NULL) {
        nghttp2_data_provider prd = {.source.ptr = s, .read_callback = body_read};
        int32_t id = nghttp2_submit_request(up->side.session, NULL, nva, count,
                                            s->req.ended ? NULL : &prd, s);
        if (id > 0) {
            s->up = up;
            s->up_id = id;
            s->up_open = 1;
            up->nstreams++;
            h2c_dirty(h2c);
            return;
        }
        snprintf(why, sizeof(why), "upstream %s: %s", s->ep->name, nghttp2_strerror(id));
    }
    stream_error(s, why);
    stream_ep_done(s, 1);
    stream_answer(s, 502, MESH_GRPC_UNAVAILABLE, why);
}

/* ---- nghttp2 callbacks: both sessions ------------------------------------------------------ */

static void block_begin(struct h2p_half *half, struct mesh_buf *block)
{
    half->block = block;
    half->block_size = 0;
    half->overflow = 0;
    mesh_buf_reset(block);
}

static int half_field(struct h2p_stream *s, struct h2p_half *half, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags)
{
    if (half->block == NULL || half->overflow)
        return 0;
    half->block_size += namelen + valuelen + 32;
    char *at;
    if (half->block_size > h2c_limits(s->h2c)->max_header ||
        mesh_buf_append_space(half->block, H2P_FIELD_HDR + namelen + valuelen + 2, &at) != 0) {
        half->overflow = 1; /* answered once the block is complete */
        return 0;
    }
    uint32_t nlen = (uint32_t)namelen, vlen = (uint32_t)valuelen;
    memcpy(at, &nlen, 4);
    memcpy(at + 4, &vlen, 4);
    at[8] = (char)flags;
    at += H2P_FIELD_HDR;
    memcpy(at, name, namelen);
    at[namelen] = '\0';
    memcpy(at + namelen + 1, value, valuelen);
    at[namelen + 1 + valuelen] = '\0';
    return 0;
}

/* DATA for |half| arrived from |origin|. */
static int half_data(struct h2p_stream *s, struct h2p_half *half, nghttp2_session *origin,
                     int32_t id, const uint8_t *data, size_t len)
{
    if (half->sink || half->local) {
        nghttp2_session_consume(origin, id, len);
        return 0;
    }
    half->bytes += len;
    int rv = body_append(&half->body, data, len);
    if (rv != 0) {
        nghttp2_session_consume(origin, id, len);
        stream_abort(s, rv == MESH_ETOOBIG ? NGHTTP2_FLOW_CONTROL_ERROR : NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    half_kick(s, half);
    return 0;
}

/* ---- nghttp2 callbacks: the downstream (server) session ------------------------------------ */

static int down_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2p_conn *h2c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    int32_t id = frame->hd.stream_id;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, id);
        if (s != NULL)
            block_begin(&s->req, &s->req.tail);
        return 0;
    }
    struct h2p_stream *s = stream_new(h2c);
    if (s == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
    s->down_id = id;
    s->down_open = 1;
    s->ts_us = mesh_loop_tick_wall_us(h2p.loop);
    s->start_us = mesh_loop_tick_us(h2p.loop);
    h2c->nstreams++;
    nghttp2_session_set_stream_user_data(session, id, s);
    block_begin(&s->req, &s->req.head);
    return 0;
}

static int down_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *user_data)
{
    (void)user_data;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    return half_field(s, &s->req, name, namelen, value, valuelen, flags);
}

static int down_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2p_conn *h2c = user_data;
    if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (end && s->req_end_us == 0)
        h2c_response_due(h2c, s);
    if (frame->hd.type == NGHTTP2_HEADERS) {
        s->req.block = NULL;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            h2c->got_request = 1;
            s->req.ended = end;
            stream_dispatch(s);
            return 0;
        }
        if (s->req.overflow) {
            stream_abort(s, NGHTTP2_INTERNAL_ERROR);
            return 0;
        }
        s->req.has_tail = 1;
    }
    if (end)
        half_end(s, &s->req);
    return 0;
}

static int down_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                           const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    return half_data(s, &s->req, session, stream_id, data, len);
}

static int down_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s != NULL && !s->rsp_end_sent) {
        s->rsp_end_sent = 1;
        s->end_us = mesh_loop_tick_us(h2p.loop);
    }
    return 0;
}

static int down_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                             void *user_data)
{
    struct h2p_conn *h2c = user_data;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL)
        return 0;
    s->down_open = 0;
    h2c->nstreams--;
    h2c->reap = 1;
    if (!s->rsp_end_sent) {
        /* the client reset it (or broke the protocol) before the response ended */
        if (s->reset < 0)
            s->reset = error_code;
        stream_rst_up(s, error_code != NGHTTP2_NO_ERROR ? error_code : NGHTTP2_CANCEL);
        half_sink(s, &s->req);
    } else if (error_code != NGHTTP2_NO_ERROR && s->reset < 0) {
        s->reset = error_code;
    }
    half_sink(s, &s->rsp);
    stream_ep_done(s, 1);
    stream_tap(s);
    if (h2c->draining && h2c->nstreams == 0)
        h2c_final_goaway(h2c);
    return 0;
}

/* ---- nghttp2 callbacks: the upstream (client) sessions ------------------------------------- */

static int up_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s != NULL)
        block_begin(&s->rsp, s->rsp_final ? &s->rsp.tail : &s->rsp.head);
    return 0;
}

static int up_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    (void)user_data;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    return half_field(s, &s->rsp, name, namelen, value, valuelen, flags);
}

/* The final response head from upstream: on to the client. */
static void stream_respond(struct h2p_stream *s, int end)
{
    struct h2p_conn *h2c = s->h2c;
    s->rsp_final = 1;
    s->head_us = mesh_loop_tick_us(h2p.loop);
    s->grpc_status = field_code(&s->rsp.head, "grpc-status"); /* a trailers-only response */
    stream_ep_done(s, s->status >= 500);
    s->rsp.ended = end;
    if (!s->down_open)
        return;
    size_t count;
    char dst[256];
    nghttp2_nv dst_nv = {(uint8_t *)PX_DST_HEADER, (uint8_t *)dst, sizeof(PX_DST_HEADER) - 1, 0,
                         NGHTTP2_NV_FLAG_NONE};
    if (h2c->conn->dir == MESH_DIR_INBOUND)
        dst_nv.valuelen = px_src_value(h2c->conn->px, dst, sizeof(dst));
    nghttp2_nv *nva = fields_nva(h2c, &s->rsp.head, &count, dst_nv.valuelen ? &dst_nv : NULL);
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = body_read};
    if (nva == NULL || nghttp2_submit_response(h2c->side.session, s->down_id, nva, count,
                                               end ? NULL : &prd) != 0) {
        stream_abort(s, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    s->rsp_submitted = 1;
    h2c_dirty(h2c);
}

static int up_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2p_up *up = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        up->goaway = 1; /* new requests go to a new connection */
        return 0;
    }
    if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        s->rsp.block = NULL;
        if (s->rsp.overflow) {
            stream_error(s, "upstream response header list too large");
            stream_rst_up(s, NGHTTP2_CANCEL);
            stream_ep_done(s, 1);
            stream_answer(s, 502, MESH_GRPC_UNAVAILABLE, s->error);
            return 0;
        }
        if (!s->rsp_final) {
            int status = field_code(&s->rsp.head, ":status");
            if (status >= 100 && status < 200)
                return 0; /* informational: the final response follows */
            s->status = status;
            stream_respond(s, end);
            return 0;
        }
        int grpc_status = field_code(&s->rsp.tail, "grpc-status");
        if (grpc_status >= 0)
            s->grpc_status = grpc_status;
        s->rsp.has_tail = 1;
    }
    if (end)
        half_end(s, &s->rsp);
    return 0;
}

static int up_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    return half_data(s, &s->rsp, session, stream_id, data, len);
}

static int up_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    (void)user_data;
    struct h2p_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s != NULL)
        stream_up_closed(s, error_code, 0);
    return 0;
}

/* A request that never left (GOAWAY came first): it was not processed. */
static int up_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
                             int lib_error_code, void *user_data)
{
    (void)session;
    (void)lib_error_code;
    struct h2p_up *up = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    for (struct h2p_stream *s = up->side.h2c->streams; s != NULL; s = s->next) {
        if (s->up == up && s->up_open && s->up_id == frame->hd.stream_id) {
            stream_up_closed(s, NGHTTP2_REFUSED_STREAM, 0);
            break;
        }
    }
    return 0;
}

/* ---- the module's shared state ------------------------------------------------------------- */

static void h2p_module_unref(void)
{
    if (--h2p.nconns > 0)
        return;
    if (h2p.hook > 0)
        mesh_loop_del_before_sleep(h2p.loop, h2p.hook);
    h2p.hook = 0;
    nghttp2_session_callbacks_del(h2p.down_cbs);
    nghttp2_session_callbacks_del(h2p.up_cbs);
    nghttp2_option_del(h2p.option);
    h2p.down_cbs = h2p.up_cbs = NULL;
    h2p.option = NULL;
}

static int h2p_module_ref(struct px *px)
{
    if (h2p.nconns > 0) {
        h2p.nconns++;
        return 0;
    }
    h2p.loop = px->loop;
    nghttp2_session_callbacks *down = NULL, *up = NULL;
    nghttp2_option *option = NULL;
    if (nghttp2_session_callbacks_new(&down) != 0 || nghttp2_session_callbacks_new(&up) != 0 ||
        nghttp2_option_new(&option) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_begin_headers_callback(down, down_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(down, down_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(down, down_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(down, down_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(down, down_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(down, down_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(down, body_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(up, up_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(up, up_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(up, up_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(up, up_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(up, up_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(up, up_frame_not_send);
    nghttp2_session_callbacks_set_send_data_callback(up, body_send);
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_option_set_no_closed_streams(option, 1);
    /* what we accept we must be able to forward */
    size_t block = px->cfg.limits.max_header + (16u << 10);
    nghttp2_option_set_max_send_header_block_length(option, block > 65536 ? block : 65536);
    int64_t hook = mesh_loop_on_before_sleep(px->loop, h2p_hook, NULL);
    if (hook < 0)
        goto fail;
    h2p.hook = hook;
    h2p.down_cbs = down;
    h2p.up_cbs = up;
    h2p.option = option;
    h2p.nconns = 1;
    return 0;
fail:
    nghttp2_session_callbacks_del(down);
    nghttp2_session_callbacks_del(up);
    nghttp2_option_del(option);
    return MESH_ENOMEM;
}

/* ---- the downstream connection ------------------------------------------------------------- */

static void down_on_fd(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)fd;
    struct h2p_conn *h2c = ctx;
    char why[H2P_WHY];
    h2c_enter(h2c);
    if ((events & MESH_READ) && side_read(&h2c->side, why, sizeof(why)) != 0)
        h2c_fail(h2c, "%s", why);
    if (events & MESH_WRITE)
        h2c_dirty(h2c);
    h2c_leave(h2c);
}

/* Sends GOAWAY, writes what it can at once and closes. */
static void h2c_goaway_close(struct h2p_conn *h2c, const char *why)
{
    nghttp2_session *session = h2c->side.session;
    nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session), NGHTTP2_NO_ERROR, NULL,
                          0);
    char ignored[H2P_WHY];
    side_flush(&h2c->side, ignored, sizeof(ignored));
    h2c_fail(h2c, "%s", why);
}

/* --response-timeout: streams whose request went whole and whose response
 * head has not come are answered 504 (gRPC: DEADLINE_EXCEEDED); returns the
 * time until the next such deadline, UINT64_MAX for none. */
static uint64_t h2c_response_timeouts(struct h2p_conn *h2c, uint64_t now)
{
    uint64_t rt = (uint64_t)h2c_limits(h2c)->response_timeout_ms * 1000, next = UINT64_MAX;
    if (rt == 0)
        return next;
    for (struct h2p_stream *s = h2c->streams, *n; s != NULL && !h2c->failed; s = n) {
        n = s->next;
        if (s->req_end_us == 0 || s->head_us != 0 || s->rsp_submitted || !s->down_open)
            continue;
        if (now >= s->req_end_us + rt) {
            stream_error(s, "no response within the response timeout");
            stream_ep_done(s, 1);
            stream_answer(s, 504, MESH_GRPC_DEADLINE_EXCEEDED, s->error);
        } else if (s->req_end_us + rt - now < next) {
            next = s->req_end_us + rt - now;
        }
    }
    return next;
}

/* Header, idle and response timeouts; re-armed for whichever comes first. */
static int h2c_on_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    struct h2p_conn *h2c = ctx;
    const struct px_limits *lim = h2c_limits(h2c);
    uint64_t now = mesh_loop_now_us();
    h2c_enter(h2c);
    uint64_t next = h2c_response_timeouts(h2c, now);
    if (!h2c->got_request && lim->header_timeout_ms > 0) {
        uint64_t due = h2c->conn->accepted_us + (uint64_t)lim->header_timeout_ms * 1000;
        if (now >= due)
            h2c_goaway_close(h2c, "no request within the header timeout");
        else
            next = due - now;
    }
    if (!h2c->failed && lim->idle_timeout_ms > 0) {
        uint64_t idle = (uint64_t)lim->idle_timeout_ms * 1000, due = h2c->last_io_us + idle;
        if (h2c->nstreams > 0)
            next = next < idle ? next : idle;
        else if (now >= due)
            h2c_goaway_close(h2c, "idle timeout");
        else
            next = next < due - now ? next : due - now;
    }
    int done = h2c->failed || next == UINT64_MAX;
    if (done)
        h2c->timer = 0;
    else
        h2c->timer_at_us = now + (next / 1000 + 1) * 1000;
    if (h2c_leave(h2c) != 0 || done)
        return MESH_TIMER_DONE;
    return (int)(next / 1000 + 1);
}

/* |s|'s request has ended: with a response timeout, the timer must fire by
 * its deadline (re-armed only when it would fire later). */
static void h2c_response_due(struct h2p_conn *h2c, struct h2p_stream *s)
{
    s->req_end_us = mesh_loop_tick_us(h2p.loop);
    unsigned ms = h2c_limits(h2c)->response_timeout_ms;
    uint64_t at = s->req_end_us + (uint64_t)ms * 1000;
    if (ms == 0 || h2c->failed || (h2c->timer > 0 && h2c->timer_at_us <= at))
        return;
    if (h2c->timer > 0)
        mesh_loop_del_timer(h2p.loop, h2c->timer);
    int64_t timer = mesh_loop_add_timer(h2p.loop, ms, h2c_on_timer, h2c);
    h2c->timer = timer > 0 ? timer : 0;
    h2c->timer_at_us = at;
}

static void h2p_on_drain(struct px_conn *conn)
{
    struct h2p_conn *h2c = conn->proto;
    h2c_enter(h2c);
    if (!h2c->draining) {
        h2c->draining = 1;
        nghttp2_submit_shutdown_notice(h2c->side.session);
        if (h2c->nstreams == 0)
            h2c_final_goaway(h2c);
        h2c_dirty(h2c);
    }
    h2c_leave(h2c);
}

static void h2p_on_close(struct px_conn *conn)
{
    struct h2p_conn *h2c = conn->proto;
    if (h2c->why[0] == '\0')
        snprintf(h2c->why, sizeof(h2c->why), "proxy shutting down");
    h2c_destroy(h2c);
}

void px_h2_serve(struct px_conn *conn)
{
    struct px *px = conn->px;
    const struct px_limits *lim = &px->cfg.limits;
    if (h2p_module_ref(px) != 0) {
        px_conn_close(conn);
        return;
    }
    struct h2p_conn *h2c = calloc(1, sizeof(*h2c));
    if (h2c == NULL) {
        px_conn_close(conn);
        h2p_module_unref();
        return;
    }
    h2c->conn = conn;
    h2c->side.h2c = h2c;
    h2c->side.fd = conn->fd;
    h2c->side.conn = conn;
    h2c->last_io_us = mesh_loop_tick_us(h2p.loop);
    mesh_buf_init(&h2c->side.out, H2P_OUT_CAP);
    conn->proto = h2c;
    conn->on_drain = h2p_on_drain;
    conn->on_close = h2p_on_close;
    h2c->busy = 1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2P_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)lim->max_header},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_session_server_new2(&h2c->side.session, h2p.down_cbs, h2c, h2p.option) != 0) {
        h2c->side.session = NULL;
        h2c_fail(h2c, "out of memory");
    } else if (nghttp2_submit_settings(h2c->side.session, NGHTTP2_FLAG_NONE, iv, 4) != 0 ||
               nghttp2_session_set_local_window_size(h2c->side.session, NGHTTP2_FLAG_NONE, 0,
                                                     H2P_CONN_WINDOW) != 0 ||
               mesh_loop_add_fd(h2p.loop, conn->fd, MESH_READ, down_on_fd, h2c) != 0) {
        h2c_fail(h2c, "out of memory");
    } else {
        h2c->side.mask = MESH_READ;
        unsigned first = lim->header_timeout_ms;
        if (first == 0 || (lim->idle_timeout_ms > 0 && lim->idle_timeout_ms < first))
            first = lim->idle_timeout_ms;
        if (first > 0) {
            int64_t timer = mesh_loop_add_timer(h2p.loop, first, h2c_on_timer, h2c);
            h2c->timer = timer > 0 ? timer : 0;
            h2c->timer_at_us = h2c->last_io_us + (uint64_t)first * 1000;
        }
        /* the preface and whatever followed it were read during detection */
        ssize_t used = nghttp2_session_mem_recv(h2c->side.session, (const uint8_t *)conn->in.data,
                                                conn->in.len);
        mesh_buf_free(&conn->in);
        if (used < 0)
            h2c_fail(h2c, "HTTP/2: %s", nghttp2_strerror((int)used));
        h2c_dirty(h2c);
    }
    h2c_leave(h2c);
}
