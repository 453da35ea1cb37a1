#include "collector.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt_pb.h"
#include "mesh/filter.h"
#include "mesh/fmt.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"
#include "mesh/tap/v1/tap.pb-c.h"
#include "store.h"

#define MAX_PENDING_EVENTS 200000u   /* received, not yet committed: then stop reading */
/* Group commit: a transaction is committed once this many events wait, or
 * when the oldest has waited COMMIT_LINGER_MS. Each commit rewrites the
 * last, partly filled pages of the raw table, its index and the rollups
 * into the WAL; a proxy sends a batch per 1000 events, so committing each
 * one on arrival wrote those pages again every 1000 events. Acks (and live
 * taps) wait at most the linger. */
#define COMMIT_EVENTS 8192u
#define COMMIT_LINGER_MS 10
#define WATCH_MAX 256u               /* subscribers */
#define RETAIN_BUDGET 5000u          /* rows deleted per retention step */

struct report_call;

/* Every string of one batch (pb_report below) comes from one arena, freed
 * at once after the commit: a malloc and a free per string cost about a
 * quarter of the collector's time when protobuf-c did the unpacking. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

struct arena {
    struct arena_chunk *head;
};

#define ARENA_CHUNK (64u * 1024)

static void *arena_alloc(void *ctx, size_t size)
{
    struct arena *a = ctx;
    size = (size + 15) & ~(size_t)15;
    struct arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < size) {
        size_t want = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        if ((c = malloc(sizeof(*c) + want)) == NULL)
            return NULL;
        c->used = 0;
        c->size = want;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

static void arena_release(struct arena *a)
{
    while (a->head != NULL) {
        struct arena_chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
}

/* A received batch waiting for the next commit. */
struct pending {
    struct pending *next;
    struct arena arena;             /* owns sender_id and the events' strings */
    struct report_call *rc;         /* NULL once the call is gone: store, no ack */
    char *sender_id;
    uint64_t seq;
    size_t nevts;
    struct mesh_evt *evts;
    size_t stored;                  /* after the commit: events stored */
    int duplicate;                  /* after the commit: stored before */
};

struct report_call {
    struct mesh_grpc_call *call;
    struct collector *col;
    unsigned pending;               /* batches of this call in the pending list */
    int half_closed;
};

struct watcher {
    struct mesh_grpc_call *call;
    struct collector *col;
    Mesh__Tap__V1__WatchRequest *req; /* owns the filter's strings */
    struct mesh_filter filter;
    double max_rps, tokens;
    uint64_t last_refill_us;
    uint64_t missed;
};

struct collector {
    struct mesh_loop *loop;
    struct mesh_store *store;
    struct mesh_grpc_server *server;
    struct pending *head, **tail;
    size_t pending_events;
    uint64_t oldest_us;             /* when the first pending batch arrived */
    int64_t commit_timer;           /* group commit: armed while batches linger */
    int paused;                     /* report calls stopped reading */
    struct report_call *calls[1024];/* open Report calls, to pause and resume */
    size_t ncalls;
    struct watcher *watchers[WATCH_MAX];
    size_t nwatchers;
    uint64_t retention_us, max_db_bytes;
    int64_t retry_timer;
    int store_failing;
    int store_stalled;              /* said so on stderr; say when it resumes */
    struct mesh_buf out;            /* packing buffer */
};

/* --- conversions from the wire ------------------------------------------------------------ */

static int resource_from_pb(const Mesh__Tap__V1__Resource *r, struct mesh_resource *res)
{
    memset(res, 0, sizeof(*res));
    if (r == NULL)
        return 0;
    if (r->type == NULL || (res->type = mesh_rtype_parse(r->type)) == MESH_RT_NONE)
        return MESH_EINVAL;
    res->name = r->name && r->name[0] ? r->name : NULL;
    res->ns = r->namespace_ && r->namespace_[0] ? r->namespace_ : NULL;
    return 0;
}

static int filter_from_pb(const Mesh__Tap__V1__Filter *f, struct mesh_filter *out)
{
    mesh_filter_init(out);
    if (f == NULL)
        return 0;
    if (resource_from_pb(f->resource, &out->res) || resource_from_pb(f->to, &out->to) ||
        resource_from_pb(f->from, &out->from))
        return MESH_EINVAL;
    out->method = f->method && f->method[0] ? f->method : NULL;
    out->path_prefix = f->path_prefix && f->path_prefix[0] ? f->path_prefix : NULL;
    out->authority = f->authority && f->authority[0] ? f->authority : NULL;
    if (f->has_status_class && f->status_class > 5)
        return MESH_EINVAL;
    out->status_class = f->has_status_class ? (int)f->status_class : 0;
    out->status = f->has_status ? (int)f->status : 0;
    out->min_latency_us = f->has_min_latency_us ? f->min_latency_us : 0;
    return 0;
}

static void window_from_pb(const Mesh__Tap__V1__TimeWindow *w, struct mesh_store_window *out)
{
    memset(out, 0, sizeof(*out));
    if (w == NULL)
        return;
    out->last_us = w->has_last_us ? w->last_us : 0;
    out->since_us = w->has_since_us ? w->since_us : 0;
    out->until_us = w->has_until_us ? w->until_us : 0;
}

/* Packs |msg| and sends it on |call|. */
static int send_msg(struct collector *col, struct mesh_grpc_call *call, const ProtobufCMessage *msg)
{
    char *at;
    mesh_buf_reset(&col->out);
    int rv = mesh_buf_append_space(&col->out, protobuf_c_message_get_packed_size(msg), &at);
    if (rv == 0) {
        protobuf_c_message_pack(msg, (uint8_t *)at);
        rv = mesh_grpc_call_send(call, col->out.data, col->out.len);
    }
    return rv;
}

/* --- ReportRequest, decoded straight into events ------------------------------------- */

/* protobuf-c's generic unpack, a TapEvent message and a string for each
 * field, then a copy into struct mesh_evt, was a sixth of the collector's
 * time. This reads the wire format once, with protobuf-c's rules: the last
 * occurrence of a field wins, unknown fields are skipped, a known field
 * with the wrong wire type or a truncated one makes the message invalid.
 * Strings are copied, NUL-terminated, into the batch's arena. */
struct pbr {
    const uint8_t *p, *end;
};

static int pb_varint(struct pbr *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return -1;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int pb_bytes(struct pbr *r, struct pbr *sub)
{
    uint64_t n;
    const uint8_t *start = r->p;
    /* a length prefix takes at most 5 bytes, as protobuf-c reads them: a
     * longer, overlong one ("80 80 … 00") is malformed there, so here too */
    if (pb_varint(r, &n) != 0 || r->p - start > 5 || n > (uint64_t)(r->end - r->p))
        return -1;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

static int pb_skip(struct pbr *r, unsigned wire)
{
    uint64_t v;
    struct pbr sub;
    size_t n = wire == 1 ? 8 : 4;
    switch (wire) {
    case 0: return pb_varint(r, &v);
    case 2: return pb_bytes(r, &sub);
    case 1:
    case 5:
        if ((size_t)(r->end - r->p) < n)
            return -1;
        r->p += n;
        return 0;
    default: return -1; /* groups: protobuf-c refuses them too */
    }
}

/* The next field's number and wire type; 0 at the end, -1 when malformed. */
static int pb_tag(struct pbr *r, uint32_t *field, unsigned *wire)
{
    uint64_t tag;
    const uint8_t *start = r->p;
    if (r->p == r->end)
        return 0;
    /* a tag takes at most 5 bytes, as protobuf-c reads them (a longer,
     * overlong one is malformed there, so here too) */
    if (pb_varint(r, &tag) != 0 || r->p - start > 5 || (tag >> 3) == 0 ||
        (tag >> 3) > UINT32_MAX)
        return -1;
    *field = (uint32_t)(tag >> 3);
    *wire = (unsigned)(tag & 7);
    return 1;
}

static char *pb_str(struct arena *a, const struct pbr *sub)
{
    size_t n = (size_t)(sub->end - sub->p);
    char *s = arena_alloc(a, n + 1);
    if (s != NULL) {
        memcpy(s, sub->p, n);
        s[n] = '\0';
    }
    return s;
}

static int pb_is(const struct pbr *sub, const char *word, size_t len)
{
    return (size_t)(sub->end - sub->p) == len && memcmp(sub->p, word, len) == 0;
}

/* One src_labels / dst_labels entry (key = 1, value = 2) into |l|. Keys
 * other than these three are not kept (the store has no column for them),
 * so neither they nor their values are copied. */
static int pb_label(struct arena *a, struct pbr *r, struct mesh_labels *l)
{
    struct pbr key = {NULL, NULL}, value = {NULL, NULL};
    uint32_t field;
    unsigned wire;
    int more, has_key = 0, has_value = 0;
    while ((more = pb_tag(r, &field, &wire)) > 0) {
        if (field == 1 || field == 2) {
            if (wire != 2 || pb_bytes(r, field == 1 ? &key : &value) != 0)
                return -1;
            *(field == 1 ? &has_key : &has_value) = 1;
        } else if (pb_skip(r, wire) != 0) {
            return -1;
        }
    }
    if (more < 0)
        return -1;
    const char **slot = !has_key                          ? NULL
                        : pb_is(&key, "namespace", 9)     ? &l->ns
                        : pb_is(&key, "deployment", 10)   ? &l->deploy
                        : pb_is(&key, "pod", 3)           ? &l->pod
                                                          : NULL;
    if (slot == NULL)
        return 0;
    *slot = NULL; /* an entry without a value clears the label, as protobuf-c's NULL did */
    if (has_value && (*slot = pb_str(a, &value)) == NULL)
        return -1;
    return 0;
}

/* One Header (name = 1, value = 2, redacted = 3, trailer = 4) of a TapEvent's headers
 * (21) or response_headers (22) into |e|'s: live only (Watch), never
 * stored. Past MESH_EVT_HEADERS_MAX, and without a name, a header is checked
 * and skipped, as mesh_evt_from_pb(). */
static int pb_header(struct arena *a, struct pbr *r, struct mesh_evt *e, unsigned response)
{
    struct pbr name = {NULL, NULL}, value = {NULL, NULL};
    uint32_t field;
    unsigned wire;
    uint64_t redacted = 0, trailer = 0;
    int more;
    while ((more = pb_tag(r, &field, &wire)) > 0) {
        if (field == 1 || field == 2) {
            if (wire != 2 || pb_bytes(r, field == 1 ? &name : &value) != 0)
                return -1;
        } else if (field == 3 || field == 4) {
            if (wire != 0 || pb_varint(r, field == 3 ? &redacted : &trailer) != 0)
                return -1;
        } else if (pb_skip(r, wire) != 0) {
            return -1;
        }
    }
    if (more < 0)
        return -1;
    if (name.p == NULL || e->nheaders == MESH_EVT_HEADERS_MAX)
        return 0;
    struct mesh_header *h = (struct mesh_header *)e->headers;
    if (h == NULL && (h = arena_alloc(a, MESH_EVT_HEADERS_MAX * sizeof(*h))) == NULL)
        return -1;
    e->headers = h;
    h += e->nheaders;
    h->redacted = redacted != 0;
    h->response = response;
    h->trailer = response && trailer != 0;
    h->value = NULL;
    if ((h->name = pb_str(a, &name)) == NULL ||
        (!h->redacted && value.p != NULL && (h->value = pb_str(a, &value)) == NULL))
        return -1;
    e->nheaders++;
    return 0;
}

/* A TapEvent into |e|, as lib/evt_pb.c's mesh_evt_from_pb() reads one. */
static int pb_event(struct arena *a, struct pbr *r, struct mesh_evt *e)
{
    uint32_t field;
    unsigned wire;
    int more;
    mesh_evt_init(e);
    while ((more = pb_tag(r, &field, &wire)) > 0) {
        struct pbr sub;
        uint64_t v = 0;
        const char **str = NULL;
        switch (field) {
        case 3: str = &e->src; break;
        case 4: str = &e->dst; break;
        case 8: str = &e->method; break;
        case 9: str = &e->scheme; break;
        case 10: str = &e->authority; break;
        case 11: str = &e->path; break;
        case 15: str = &e->error; break;
        case 20: str = &e->id; break;
        case 5:
        case 6:
            if (wire != 2 || pb_bytes(r, &sub) != 0 ||
                pb_label(a, &sub, field == 5 ? &e->src_labels : &e->dst_labels) != 0)
                return -1;
            continue;
        case 21:
        case 22:
            if (wire != 2 || pb_bytes(r, &sub) != 0 || pb_header(a, &sub, e, field == 22) != 0)
                return -1;
            continue;
        case 7: {
            char *name;
            if (wire != 2 || pb_bytes(r, &sub) != 0 || (name = pb_str(a, &sub)) == NULL)
                return -1;
            e->proto = mesh_proto_parse(name);
            continue;
        }
        case 1: case 2: case 12: case 13: case 14: case 16: case 17: case 18: case 19:
            if (wire != 0 || pb_varint(r, &v) != 0)
                return -1;
            break;
        default:
            if (pb_skip(r, wire) != 0)
                return -1;
            continue;
        }
        if (str != NULL) {
            char *copy;
            if (wire != 2 || pb_bytes(r, &sub) != 0 || (copy = pb_str(a, &sub)) == NULL)
                return -1;
            *str = copy;
            continue;
        }
        switch (field) {
        case 1: e->ts_us = v; break;
        case 2:
            e->direction = v <= MESH_DIR_REPLAY ? (enum mesh_direction)v : MESH_DIR_UNSPEC;
            break;
        case 12: e->status = (uint32_t)v <= 999 ? (int)(uint32_t)v : -1; break;
        case 13: e->grpc_status = (uint32_t)v <= 1000 ? (int)(uint32_t)v : -1; break;
        case 14: e->reset = (int64_t)(uint32_t)v; break;
        case 16: e->latency_us = v < INT64_MAX ? (int64_t)v : -1; break;
        case 17: e->duration_us = v < INT64_MAX ? (int64_t)v : -1; break;
        case 18: e->req_bytes = v; break;
        case 19: e->rsp_bytes = v; break;
        }
    }
    return more < 0 ? -1 : 0;
}

/* A ReportRequest into |p|: sender_id, seq and the events. Returns 0,
 * MESH_EPROTO (malformed, or no sender_id or seq) or MESH_ENOMEM. */
static int pb_report(struct pending *p, const uint8_t *msg, size_t len)
{
    struct pbr r = {msg, msg + len}, sub;
    uint32_t field;
    unsigned wire;
    int more, has_seq = 0;
    size_t n = 0;
    /* count the events first: one array, sized once */
    while ((more = pb_tag(&r, &field, &wire)) > 0) {
        if (field == 3 && wire == 2)
            n++;
        if (pb_skip(&r, wire) != 0)
            return MESH_EPROTO;
    }
    if (more < 0)
        return MESH_EPROTO;
    if ((p->evts = calloc(n ? n : 1, sizeof(*p->evts))) == NULL)
        return MESH_ENOMEM;
    r.p = msg;
    while ((more = pb_tag(&r, &field, &wire)) > 0) {
        if (field == 1) {
            if (wire != 2 || pb_bytes(&r, &sub) != 0)
                return MESH_EPROTO;
            if ((p->sender_id = pb_str(&p->arena, &sub)) == NULL)
                return MESH_ENOMEM;
        } else if (field == 2) {
            if (wire != 0 || pb_varint(&r, &p->seq) != 0)
                return MESH_EPROTO;
            has_seq = 1;
        } else if (field == 3) {
            if (wire != 2 || pb_bytes(&r, &sub) != 0 ||
                pb_event(&p->arena, &sub, &p->evts[p->nevts]) != 0)
                return MESH_EPROTO;
            p->nevts++;
        } else if (pb_skip(&r, wire) != 0) {
            return MESH_EPROTO;
        }
    }
    if (more < 0 || p->sender_id == NULL || p->sender_id[0] == '\0' || !has_seq)
        return MESH_EPROTO;
    return 0;
}

int mesh_collector_ingest_report(struct mesh_store *st, const uint8_t *msg, size_t len,
                                 size_t *stored, int *duplicate)
{
    struct pending p;
    memset(&p, 0, sizeof(p));
    int rv = pb_report(&p, msg, len);
    if (rv == 0)
        rv = mesh_store_ingest(st, p.sender_id, p.seq, p.evts, p.nevts, stored, duplicate);
    arena_release(&p.arena);
    free(p.evts);
    return rv;
}

/* --- Watch ------------------------------------------------------------------------------------ */

static void watch_remove(struct collector *col, struct watcher *w)
{
    for (size_t i = 0; i < col->nwatchers; i++) {
        if (col->watchers[i] == w) {
            col->watchers[i] = col->watchers[--col->nwatchers];
            break;
        }
    }
    if (w->req)
        mesh__tap__v1__watch_request__free_unpacked(w->req, NULL);
    free(w);
}

/* Offers one committed event to every subscriber it matches. */
static void watch_publish(struct collector *col, const struct mesh_evt *evt, uint64_t now)
{
    Mesh__Tap__V1__TapEvent pb = MESH__TAP__V1__TAP_EVENT__INIT;
    struct mesh_evt_pb_scratch scratch;
    int have_pb = 0;
    for (size_t i = 0; i < col->nwatchers; i++) {
        struct watcher *w = col->watchers[i];
        if (!mesh_filter_match(&w->filter, evt))
            continue;
        if (w->max_rps > 0) {
            w->tokens += (double)(now - w->last_refill_us) / 1e6 * w->max_rps;
            if (w->tokens > w->max_rps)
                w->tokens = w->max_rps;
            w->last_refill_us = now;
            if (w->tokens < 1) {
                w->missed++;
                continue;
            }
            w->tokens -= 1;
        }
        if (!have_pb) {
            mesh_evt_to_pb(evt, &pb, &scratch);
            have_pb = 1;
        }
        Mesh__Tap__V1__WatchEvent we = MESH__TAP__V1__WATCH_EVENT__INIT;
        we.event = &pb;
        we.has_missed = w->missed > 0;
        we.missed = w->missed;
        if (send_msg(col, w->call, &we.base) == 0)
            w->missed = 0;
        else
            w->missed++; /* its queue is full: it is slow, ingest is not */
    }
}

/* Every Watch call gets its watcher at once, so on_cancel always has one,
 * even when the client goes away before sending its request. */
static void watch_on_start(struct mesh_grpc_call *call, void *ctx)
{
    struct collector *col = ctx;
    struct watcher *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->call = call;
    w->col = col;
    mesh_grpc_call_set_ctx(call, w);
}

static void watch_on_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct watcher *w = ctx;
    struct collector *col = w->col;
    const char *problem = NULL;
    int status = MESH_GRPC_INVALID_ARGUMENT;
    if ((w->req = mesh__tap__v1__watch_request__unpack(NULL, len, msg)) == NULL)
        problem = "not a WatchRequest";
    else if (filter_from_pb(w->req->filter, &w->filter) != 0 ||
             (w->req->has_max_rps && w->req->max_rps < 0))
        problem = "bad filter";
    else if (col->nwatchers == WATCH_MAX) {
        problem = "too many watchers";
        status = MESH_GRPC_RESOURCE_EXHAUSTED;
    }
    if (problem != NULL) {
        watch_remove(col, w); /* not on the list yet: frees it */
        mesh_grpc_call_finish(call, status, problem);
        return;
    }
    w->max_rps = w->req->has_max_rps ? w->req->max_rps : 0;
    w->tokens = w->max_rps;
    w->last_refill_us = mesh_loop_now_us();
    col->watchers[col->nwatchers++] = w;
}

static void watch_on_cancel(struct mesh_grpc_call *call, void *ctx)
{
    struct watcher *w = ctx;
    watch_remove(w->col, w);
}

/* --- Report ----------------------------------------------------------------------------------- */

static void set_paused(struct collector *col, int paused)
{
    if (col->paused == paused)
        return;
    col->paused = paused;
    for (size_t i = 0; i < col->ncalls; i++)
        mesh_grpc_call_pause_recv(col->calls[i]->call, paused);
}

static void report_on_start(struct mesh_grpc_call *call, void *ctx)
{
    struct collector *col = ctx;
    struct report_call *rc = calloc(1, sizeof(*rc));
    if (rc == NULL || col->ncalls == sizeof(col->calls) / sizeof(col->calls[0])) {
        free(rc);
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "too many senders");
        return;
    }
    rc->call = call;
    rc->col = col;
    col->calls[col->ncalls++] = rc;
    mesh_grpc_call_set_ctx(call, rc);
    if (col->paused)
        mesh_grpc_call_pause_recv(call, 1);
}

static void report_forget(struct report_call *rc)
{
    struct collector *col = rc->col;
    for (size_t i = 0; i < col->ncalls; i++)
        if (col->calls[i] == rc) {
            col->calls[i] = col->calls[--col->ncalls];
            break;
        }
    rc->call = NULL;
    if (rc->pending == 0)
        free(rc);
}

static void report_on_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len,
                              void *ctx)
{
    struct report_call *rc = ctx;
    struct collector *col = rc->col;
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        report_forget(rc);
        return;
    }
    int rv = pb_report(p, msg, len);
    if (rv != 0) {
        arena_release(&p->arena);
        free(p->evts);
        free(p);
        if (rv == MESH_ENOMEM)
            mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        else
            mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT,
                                  "not a ReportRequest with sender_id and seq");
        report_forget(rc);
        return;
    }
    p->rc = rc;
    if (col->head == NULL)
        col->oldest_us = mesh_loop_now_us();
    *col->tail = p;
    col->tail = &p->next;
    rc->pending++;
    col->pending_events += p->nevts;
    if (col->pending_events > MAX_PENDING_EVENTS)
        set_paused(col, 1); /* the store is behind: let TCP push back on senders */
}

static void report_on_half_close(struct mesh_grpc_call *call, void *ctx)
{
    struct report_call *rc = ctx;
    rc->half_closed = 1;
    if (rc->pending == 0) {
        mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
        report_forget(rc);
    }
}

/* on_start gave every call that was not refused its report_call. */
static void report_on_cancel(struct mesh_grpc_call *call, void *ctx)
{
    report_forget(ctx);
}

/* Commits every pending batch in one transaction, then acknowledges them and
 * publishes their events to watchers. On a store error nothing is
 * acknowledged; the batches stay pending and are tried again. */
static void commit_pending(struct mesh_loop *loop, void *ctx)
{
    struct collector *col = ctx;
    if (col->head == NULL || col->store_failing)
        return;
    int rv = mesh_store_begin(col->store);
    for (struct pending *p = col->head; rv == 0 && p != NULL; p = p->next) {
        rv = mesh_store_ingest(col->store, p->sender_id, p->seq, p->evts, p->nevts, &p->stored,
                               &p->duplicate);
    }
    if (rv == 0)
        rv = mesh_store_commit(col->store);
    if (rv != 0) {
        /* once, not every retry: a full disk may last */
        if (!col->store_stalled)
            fprintf(stderr, "mesh collector: store: %s; ingest paused, holding %zu events "
                    "(not acknowledged), retrying every second\n",
                    mesh_store_errmsg(col->store), col->pending_events);
        col->store_stalled = 1;
        if (mesh_store_in_transaction(col->store))
            mesh_store_rollback(col->store);
        col->store_failing = 1;
        set_paused(col, 1);
        return;
    }
    if (col->store_stalled) {
        fprintf(stderr, "mesh collector: store: writable again, %zu held events committed; "
                "ingest resumed\n", col->pending_events);
        col->store_stalled = 0;
    }
    uint64_t now = mesh_loop_now_us();
    while (col->head != NULL) {
        struct pending *p = col->head;
        col->head = p->next;
        struct report_call *rc = p->rc;
        if (rc != NULL && rc->call != NULL) {
            Mesh__Tap__V1__ReportAck ack = MESH__TAP__V1__REPORT_ACK__INIT;
            ack.sender_id = p->sender_id;
            ack.has_seq = ack.has_stored = ack.has_duplicate = 1;
            ack.seq = p->seq;
            ack.stored = (uint32_t)p->stored;
            ack.duplicate = p->duplicate;
            send_msg(col, rc->call, &ack.base);
        }
        /* watchers see each event once: not again when a batch is resent */
        for (size_t i = 0; !p->duplicate && i < p->nevts && col->nwatchers > 0; i++)
            watch_publish(col, &p->evts[i], now);
        if (rc != NULL && --rc->pending == 0) {
            if (rc->call == NULL)
                free(rc);
            else if (rc->half_closed) {
                mesh_grpc_call_finish(rc->call, MESH_GRPC_OK, NULL);
                report_forget(rc);
            }
        }
        arena_release(&p->arena);
        free(p->evts);
        free(p);
    }
    col->tail = &col->head;
    col->pending_events = 0;
    set_paused(col, 0);
    (void)loop;
}

static int commit_due(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct collector *col = ctx;
    (void)id;
    col->commit_timer = 0;
    commit_pending(loop, col);
    return MESH_TIMER_DONE;
}

/* Before the loop sleeps: commit what waits if there is enough of it, or it
 * has waited long enough; otherwise come back when it has. */
static void commit_group(struct mesh_loop *loop, void *ctx)
{
    struct collector *col = ctx;
    if (col->head == NULL || col->store_failing)
        return;
    uint64_t waited_ms = (mesh_loop_now_us() - col->oldest_us) / 1000;
    if (col->pending_events >= COMMIT_EVENTS || waited_ms >= COMMIT_LINGER_MS) {
        commit_pending(loop, col);
        return;
    }
    if (col->commit_timer == 0) {
        int64_t t = mesh_loop_add_timer(loop, (unsigned)(COMMIT_LINGER_MS - waited_ms), commit_due, col);
        if (t > 0)
            col->commit_timer = t;
        else
            commit_pending(loop, col); /* no timer: do not let batches wait unbounded */
    }
}

static int retry_store(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct collector *col = ctx;
    if (col->store_failing) {
        col->store_failing = 0;
        commit_pending(loop, col);
    }
    return 1000;
}

/* Ends a unary call with |msg| (NULL: we ran out of memory building it). */
static void reply(struct collector *col, struct mesh_grpc_call *call, const ProtobufCMessage *msg)
{
    if (msg == NULL)
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    else if (send_msg(col, call, msg) == 0)
        mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
    else
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "response too large");
}

/* --- Stat and Top ------------------------------------------------------------------------------ */

static void stat_on_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct collector *col = ctx;
    Mesh__Tap__V1__StatRequest *req = mesh__tap__v1__stat_request__unpack(NULL, len, msg);
    struct mesh_resource res[64];
    struct mesh_store_stat_req sreq;
    memset(&sreq, 0, sizeof(sreq));
    int bad = req == NULL || req->n_resources > 64;
    for (size_t i = 0; !bad && i < req->n_resources; i++)
        bad = resource_from_pb(req->resources[i], &res[i]) != 0;
    if (!bad)
        bad = resource_from_pb(req->from, &sreq.from) != 0 || resource_from_pb(req->to, &sreq.to) != 0;
    if (bad) {
        if (req)
            mesh__tap__v1__stat_request__free_unpacked(req, NULL);
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "not a valid StatRequest");
        return;
    }
    sreq.resources = res;
    sreq.nresources = req->n_resources;
    window_from_pb(req->window, &sreq.window);
    commit_pending(col->loop, col); /* a query sees every batch received before it */
    struct mesh_store_stat_result r;
    if (mesh_store_stat(col->store, &sreq, mesh_wall_now_us(), &r) != 0) {
        mesh__tap__v1__stat_request__free_unpacked(req, NULL);
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, mesh_store_errmsg(col->store));
        return;
    }
    Mesh__Tap__V1__StatResponse resp = MESH__TAP__V1__STAT_RESPONSE__INIT;
    Mesh__Tap__V1__StatRow *rows = calloc(r.nrows ? r.nrows : 1, sizeof(*rows));
    Mesh__Tap__V1__StatRow **ptrs = calloc(r.nrows ? r.nrows : 1, sizeof(*ptrs));
    for (size_t i = 0; rows && ptrs && i < r.nrows; i++) {
        const struct mesh_store_stat_row *s = &r.rows[i];
        Mesh__Tap__V1__StatRow *o = &rows[i];
        mesh__tap__v1__stat_row__init(o);
        o->namespace_ = s->ns && s->ns[0] ? (char *)s->ns : NULL;
        o->type = (char *)mesh_rtype_name(s->type);
        o->name = (char *)s->name;
        o->has_requests = o->has_failures = o->has_rps = o->has_tcp_conn = 1;
        o->requests = s->requests;
        o->failures = s->failures;
        o->rps = s->rps;
        o->tcp_conn = s->tcp_conn;
        o->has_latency_p50_us = s->latency_p50_us >= 0;
        o->latency_p50_us = (uint64_t)s->latency_p50_us;
        o->has_latency_p95_us = s->latency_p95_us >= 0;
        o->latency_p95_us = (uint64_t)s->latency_p95_us;
        o->has_latency_p99_us = s->latency_p99_us >= 0;
        o->latency_p99_us = (uint64_t)s->latency_p99_us;
        o->has_read_bytes_per_sec = o->has_write_bytes_per_sec = 1;
        o->read_bytes_per_sec = s->read_bytes_per_sec;
        o->write_bytes_per_sec = s->write_bytes_per_sec;
        /* every pod seen is meshed: the store only hears of pods through their proxies */
        o->has_meshed_pods = o->has_total_pods = s->meshed_pods > 0;
        o->meshed_pods = o->total_pods = s->meshed_pods;
        ptrs[i] = o;
    }
    resp.n_rows = rows && ptrs ? r.nrows : 0;
    resp.rows = ptrs;
    resp.has_since_us = resp.has_until_us = 1;
    resp.since_us = r.since_us;
    resp.until_us = r.until_us;
    reply(col, call, rows && ptrs ? &resp.base : NULL);
    free(rows);
    free(ptrs);
    mesh_store_stat_result_free(&r);
    mesh__tap__v1__stat_request__free_unpacked(req, NULL);
}

static void top_on_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct collector *col = ctx;
    Mesh__Tap__V1__TopRequest *req = mesh__tap__v1__top_request__unpack(NULL, len, msg);
    struct mesh_store_top_req treq;
    memset(&treq, 0, sizeof(treq));
    if (req == NULL || filter_from_pb(req->filter, &treq.filter) != 0) {
        if (req)
            mesh__tap__v1__top_request__free_unpacked(req, NULL);
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "not a valid TopRequest");
        return;
    }
    window_from_pb(req->window, &treq.window);
    treq.hide_sources = req->has_hide_sources && req->hide_sources;
    treq.limit = req->has_limit ? req->limit : 0;
    commit_pending(col->loop, col);
    struct mesh_store_top_result r;
    if (mesh_store_top(col->store, &treq, mesh_wall_now_us(), &r) != 0) {
        mesh__tap__v1__top_request__free_unpacked(req, NULL);
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, mesh_store_errmsg(col->store));
        return;
    }
    Mesh__Tap__V1__TopResponse resp = MESH__TAP__V1__TOP_RESPONSE__INIT;
    Mesh__Tap__V1__TopRow *rows = calloc(r.nrows ? r.nrows : 1, sizeof(*rows));
    Mesh__Tap__V1__TopRow **ptrs = calloc(r.nrows ? r.nrows : 1, sizeof(*ptrs));
    for (size_t i = 0; rows && ptrs && i < r.nrows; i++) {
        const struct mesh_store_top_row *s = &r.rows[i];
        Mesh__Tap__V1__TopRow *o = &rows[i];
        mesh__tap__v1__top_row__init(o);
        o->source = (char *)s->source;
        o->destination = (char *)s->destination;
        o->method = (char *)s->method;
        o->path = (char *)s->path;
        o->has_count = o->has_failures = 1;
        o->count = s->count;
        o->failures = s->failures;
        o->has_best_us = s->best_us >= 0;
        o->best_us = (uint64_t)s->best_us;
        o->has_worst_us = s->worst_us >= 0;
        o->worst_us = (uint64_t)s->worst_us;
        o->has_last_us = s->last_us >= 0;
        o->last_us = (uint64_t)s->last_us;
        ptrs[i] = o;
    }
    resp.n_rows = rows && ptrs ? r.nrows : 0;
    resp.rows = ptrs;
    reply(col, call, rows && ptrs ? &resp.base : NULL);
    free(rows);
    free(ptrs);
    mesh_store_top_result_free(&r);
    mesh__tap__v1__top_request__free_unpacked(req, NULL);
}

/* --- retention, signals, main ------------------------------------------------------------ */

static int retain_step(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct collector *col = ctx;
    int more = 0;
    struct mesh_store_retained done;
    if (col->store_failing || mesh_store_in_transaction(col->store))
        return 1000;
    if (mesh_store_retain(col->store, col->retention_us, col->max_db_bytes, mesh_wall_now_us(),
                          RETAIN_BUDGET, &more, &done) != 0)
        fprintf(stderr, "mesh collector: retention: %s\n", mesh_store_errmsg(col->store));
    return more ? 10 : 1000; /* small steps, so ingest never waits long */
}

static void on_signal(struct mesh_loop *loop, int signo, void *ctx)
{
    mesh_loop_stop(loop);
}

static const struct mesh_grpc_handler report_handler = {
    .on_start = report_on_start,
    .on_message = report_on_message,
    .on_half_close = report_on_half_close,
    .on_cancel = report_on_cancel,
};
static const struct mesh_grpc_handler stat_handler = {.on_message = stat_on_message};
static const struct mesh_grpc_handler top_handler = {.on_message = top_on_message};
static const struct mesh_grpc_handler watch_handler = {
    .on_start = watch_on_start,
    .on_message = watch_on_message,
    .on_cancel = watch_on_cancel,
};

static const char usage[] =
    "Usage: mesh collector [--listen ADDR] [--db PATH] [--retention DURATION] [--max-db-size SIZE]\n"
    "                      [--token-file FILE] [--tls-cert FILE --tls-key FILE] [--idle-timeout D]\n"
    "\n"
    "Receives tap events over gRPC (Collector.Report), stores them in SQLite and\n"
    "answers Query.Stat, Query.Top and Query.Watch.\n"
    "\n"
    "Options:\n"
    "  --listen ADDR          where to listen (default 127.0.0.1:8088)\n"
    "  --db PATH              the SQLite store (default mesh.db)\n"
    "  --retention DURATION   drop events older than this (default 24h)\n"
    "  --max-db-size SIZE     drop the oldest events past this size: 512MiB, 1GiB (default 1GiB)\n"
    "  --token-file FILE      every call must carry authorization: Bearer TOKEN, TOKEN the\n"
    "                         first line of FILE [MESH_TOKEN_FILE]; needed to listen on an\n"
    "                         address other than loopback (or --no-auth)\n"
    "  --no-auth              listen beyond loopback without a token: only on a network\n"
    "                         you trust (a pod network a NetworkPolicy guards)\n"
    "  --tls-cert FILE, --tls-key FILE\n"
    "                         TLS (ALPN h2) instead of h2c: PEM certificate chain and key;\n"
    "                         clients then need --tls-ca [MESH_TLS_CA]\n"
    "  --idle-timeout D       close connections with no call open for D (default 5m); one\n"
    "                         that has begun no call is closed after 10s (or D if less)\n"
    "\n"
    "Examples:\n"
    "  mesh collector\n"
    "  mesh collector --listen 127.0.0.1:9000 --db /var/lib/mesh/mesh.db --retention 1h\n"
    "  mesh collector --listen 0.0.0.0:8088 --token-file /etc/mesh/token\n";

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static int addr_is_loopback(const struct mesh_addr *addr)
{
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr->ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&addr->ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},         {"B", 1},         {"KiB", 1024.0},      {"MiB", 1048576.0},
                 {"GiB", 1073741824.0}, {"KB", 1e3}, {"MB", 1e6},           {"GB", 1e9}};
    if (end == s || v < 0)
        return MESH_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].suffix) == 0) {
            *out = (uint64_t)(v * units[i].mult);
            return 0;
        }
    return MESH_EINVAL;
}

int mesh_collector_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},     {"db", required_argument, NULL, 'd'},
        {"retention", required_argument, NULL, 'r'},  {"max-db-size", required_argument, NULL, 's'},
        {"token-file", required_argument, NULL, 't'}, {"no-auth", no_argument, NULL, 'N'}, {"help", no_argument, NULL, 'h'},
        {"tls-cert", required_argument, NULL, 'C'},   {"tls-key", required_argument, NULL, 'K'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:8088", *db = "mesh.db";
    const char *token_file = getenv("MESH_TOKEN_FILE");
    int no_auth = 0;
    const char *tls_cert = NULL, *tls_key = NULL;
    uint64_t idle_us = 0;
    static char token[MESH_GRPC_TOKEN_MAX + 1];
    struct collector col;
    memset(&col, 0, sizeof(col));
    /* Every batch allocates its events (~200 KiB per 1000) and arena and frees
     * them after the commit: with glibc's defaults that memory went back to the
     * kernel (mmap, heap trim) and was faulted in again for the next batch,
     * ~6% of ingest. Keep up to 16 MiB of freed heap. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    col.retention_us = 24ull * 3600 * 1000000;
    col.max_db_bytes = 1ull << 30;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': listen = optarg; break;
        case 'd': db = optarg; break;
        case 'r':
            if (mesh_parse_duration_us(optarg, &col.retention_us) != 0 || col.retention_us == 0) {
                fprintf(stderr, "mesh collector: --retention %s: not a duration (like 24h)\n", optarg);
                return MESH_EXIT_USAGE;
            }
            break;
        case 's':
            if (parse_size(optarg, &col.max_db_bytes) != 0) {
                fprintf(stderr, "mesh collector: --max-db-size %s: not a size (like 1GiB)\n", optarg);
                return MESH_EXIT_USAGE;
            }
            break;
        case 't': token_file = optarg; break;
        case 'N': no_auth = 1; break;
        case 'C': tls_cert = optarg; break;
        case 'K': tls_key = optarg; break;
        case 'I':
            if (mesh_parse_duration_us(optarg, &idle_us) != 0 || idle_us < 1000 ||
                idle_us > 86400ull * 1000000) {
                fprintf(stderr, "mesh collector: --idle-timeout %s: not a duration between 1ms and 24h (like 5m)\n",
                        optarg);
                return MESH_EXIT_USAGE;
            }
            break;
        case 'h': fputs(usage, stdout); return MESH_EXIT_OK;
        default:
            fprintf(stderr, "mesh collector: %s: unknown option or missing value (see `mesh collector --help`)\n",
                    argv[optind - 1]);
            return MESH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mesh collector: %s: unexpected argument\n", argv[optind]);
        return MESH_EXIT_USAGE;
    }
    char err[512];
    struct mesh_addr addr;
    if (mesh_addr_parse(listen, &addr, err, sizeof(err)) != 0) {
        fprintf(stderr, "mesh collector: %s\n", err);
        return MESH_EXIT_USAGE;
    }
    /* Who may report and query: anyone on this host over loopback; beyond
     * it, only callers with the token. */
    int have_token = token_file != NULL && token_file[0] != '\0';
    if (have_token && mesh_grpc_token_read(token_file, token, sizeof(token), err, sizeof(err)) != 0) {
        fprintf(stderr, "mesh collector: %s\n", err);
        return MESH_EXIT_USAGE;
    }
    if (!have_token && !no_auth && !addr_is_loopback(&addr)) {
        fprintf(stderr, "mesh collector: --listen %s: not a loopback address; listening beyond "
                "this host needs --token-file FILE (callers send authorization: Bearer TOKEN), or --no-auth\n",
                listen);
        return MESH_EXIT_USAGE;
    }
    if ((tls_cert == NULL) != (tls_key == NULL)) {
        fprintf(stderr, "mesh collector: --tls-cert and --tls-key go together\n");
        return MESH_EXIT_USAGE;
    }
    struct mesh_grpc_server_opts gopts = {.tls_cert = tls_cert, .tls_key = tls_key,
                                          .idle_ms = (unsigned)(idle_us / 1000)};
    if (have_token) {
        gopts.authorize = mesh_grpc_bearer_authorize;
        gopts.authorize_ctx = token;
    }
    /* A damaged store is refused at start, before anything is written to it
     * (quick_check costs about a second per GiB; the collector starts rarely). */
    struct mesh_store_opts sopts;
    mesh_store_opts_init(&sopts);
    sopts.quick_check = 1;
    if (mesh_store_open(db, &sopts, &col.store, err, sizeof(err)) != 0) {
        for (char *nl = strchr(err, '\n'); nl != NULL; nl = strchr(nl, '\n'))
            *nl = ' '; /* quick_check's report has lines: keep to one */
        fprintf(stderr, "mesh collector: %s\n", err);
        return MESH_EXIT_USAGE;
    }
    int status = MESH_EXIT_RUNTIME;
    col.tail = &col.head;
    mesh_buf_init(&col.out, 64u << 20);
    if ((col.loop = mesh_loop_new()) == NULL) {
        fprintf(stderr, "mesh collector: cannot create the event loop\n");
        goto out;
    }
    const struct mesh_grpc_method methods[] = {
        {"/mesh.tap.v1.Collector/Report", MESH_GRPC_BIDI, &report_handler, &col},
        {"/mesh.tap.v1.Query/Stat", MESH_GRPC_UNARY, &stat_handler, &col},
        {"/mesh.tap.v1.Query/Top", MESH_GRPC_UNARY, &top_handler, &col},
        {"/mesh.tap.v1.Query/Watch", MESH_GRPC_SERVER_STREAM, &watch_handler, &col},
    };
    col.server = mesh_grpc_server_new(col.loop, listen, methods, sizeof(methods) / sizeof(methods[0]),
                                      &gopts, err, sizeof(err));
    if (col.server == NULL) {
        fprintf(stderr, "mesh collector: %s\n", err);
        status = MESH_EXIT_USAGE;
        goto out;
    }
    mesh_loop_on_before_sleep(col.loop, commit_group, &col);
    mesh_loop_add_timer(col.loop, 1000, retain_step, &col);
    mesh_loop_add_timer(col.loop, 1000, retry_store, &col);
    mesh_loop_on_signal(col.loop, SIGINT, on_signal, &col);
    mesh_loop_on_signal(col.loop, SIGTERM, on_signal, &col);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "mesh collector: listening on %s, port %d (gRPC, %s%s), store %s\n", listen,
            mesh_grpc_server_port(col.server), tls_cert ? "TLS" : "h2c",
            have_token ? ", bearer token required" : "", db);
    status = mesh_loop_run(col.loop) == 0 ? MESH_EXIT_OK : MESH_EXIT_RUNTIME;
    col.store_failing = 0;
    commit_pending(col.loop, &col); /* what was received before the signal */
out:
    if (col.server)
        mesh_grpc_server_free(col.server);
    while (col.nwatchers > 0)
        watch_remove(&col, col.watchers[0]);
    while (col.head != NULL) { /* only after a failing store: not acknowledged */
        struct pending *p = col.head;
        col.head = p->next;
        arena_release(&p->arena);
        free(p->evts);
        free(p);
    }
    if (col.loop)
        mesh_loop_free(col.loop);
    mesh_store_close(col.store);
    mesh_buf_free(&col.out);
    return status;
}
