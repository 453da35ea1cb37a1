/* store/dashboard.c — `mesh dashboard` (dashboard.h).
 *
 * Lifetimes: a JSON answer (struct dq) lives from its request to the end of its gRPC
 * call or the browser leaving, whichever comes first, and the other side is cancelled;
 * an SSE subscriber (struct dsub) lives until its browser leaves (or, for a tap, its
 * Watch ends: the stream is closed and EventSource reconnects by itself). Stat pushes
 * share one query every 2 s: ten open pages cost the collector what one does.
 */
#define _GNU_SOURCE
#include "dashboard.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt.h"
#include "mesh/evt_pb.h"
#include "mesh/fmt.h"
#include "mesh/grpc.h"
#include "mesh/httpd.h"
#include "mesh/loop.h"
#include "mesh/tap/v1/tap.pb-c.h"

#define DASH_QUERY_TIMEOUT_MS 10000u
#define DASH_PUSH_MS          2000u
#define DASH_PING_US          15000000u /* an SSE comment keeps quiet streams open */
#define DASH_TAP_MAX_RPS      50.0
#define DASH_TOP_LIMIT        200u
#define DASH_MAX_ASSET        (4u << 20)
#define DASH_MAX_JSON         (16u << 20)
#define DASH_NAME_MAX         256

struct dash;

enum dq_kind { DQ_STAT, DQ_TOP };

/* One JSON answer waiting for its query. */
struct dq {
    struct dash *dash;
    struct mesh_httpd_req *req;
    struct mesh_grpc_call *call;
    enum dq_kind kind;
    struct mesh_buf json;
    int answered;
    struct dq *next, *prev;
};

/* One SSE subscriber: the stat push (call NULL) or a live tap (its Watch call). */
struct dsub {
    struct dash *dash;
    struct mesh_httpd_req *req;
    struct mesh_grpc_call *call;
    int is_tap;
    int busy, gone;                      /* a write in progress; the browser left meanwhile */
    uint64_t missed, last_write_us;
    uint64_t max_events, nevents, deadline_us; /* max=N, secs=S: 0 for none */
    struct dsub *next, *prev;
};

struct dash {
    struct mesh_loop *loop;
    struct mesh_httpd *httpd;
    struct mesh_grpc_client *client;
    const char *collector;
    char assets[PATH_MAX];
    uint64_t window_us;
    struct dq *queries;
    struct dsub *subs;
    struct mesh_grpc_call *push_call; /* the shared stat query in flight */
    struct mesh_buf push;             /* the last stat event, sent to newcomers */
    char lost[256];                   /* why the connection to the collector ended */
};

/* --- JSON ------------------------------------------------------------------------------- */

static void json_str(struct mesh_buf *out, const char *s)
{
    if (s == NULL)
        mesh_buf_appends(out, "null");
    else
        mesh_buf_json_str(out, s, strlen(s));
}

static void json_ms(struct mesh_buf *out, const char *name, int has, uint64_t us)
{
    if (has)
        mesh_buf_printf(out, ",\"%s\":%.3f", name, (double)us / 1000.0);
    else
        mesh_buf_printf(out, ",\"%s\":null", name);
}

/* {"window_s":60,"rows":[…]}: success is null without requests, latencies in ms. */
static void stat_json(const Mesh__Tap__V1__StatResponse *r, uint64_t window_us,
                      struct mesh_buf *out)
{
    mesh_buf_printf(out, "{\"window_s\":%.0f,\"rows\":[", (double)window_us / 1e6);
    for (size_t i = 0; i < r->n_rows; i++) {
        const Mesh__Tap__V1__StatRow *o = r->rows[i];
        mesh_buf_appends(out, i ? ",{\"namespace\":" : "{\"namespace\":");
        json_str(out, o->namespace_ && *o->namespace_ ? o->namespace_ : NULL);
        mesh_buf_appends(out, ",\"type\":");
        json_str(out, o->type);
        mesh_buf_appends(out, ",\"name\":");
        json_str(out, o->name);
        mesh_buf_printf(out, ",\"requests\":%llu,\"failures\":%llu,\"rps\":%.4f",
                        (unsigned long long)o->requests, (unsigned long long)o->failures, o->rps);
        if (o->requests)
            mesh_buf_printf(out, ",\"success\":%.6f",
                            (double)(o->requests - o->failures) / (double)o->requests);
        else
            mesh_buf_appends(out, ",\"success\":null");
        json_ms(out, "latency_p50_ms", o->has_latency_p50_us, o->latency_p50_us);
        json_ms(out, "latency_p95_ms", o->has_latency_p95_us, o->latency_p95_us);
        json_ms(out, "latency_p99_ms", o->has_latency_p99_us, o->latency_p99_us);
        mesh_buf_printf(out, ",\"tcp_conn\":%llu}", (unsigned long long)o->tcp_conn);
    }
    mesh_buf_appends(out, "]}");
}

static void top_json(const Mesh__Tap__V1__TopResponse *r, uint64_t window_us, struct mesh_buf *out)
{
    mesh_buf_printf(out, "{\"window_s\":%.0f,\"rows\":[", (double)window_us / 1e6);
    for (size_t i = 0; i < r->n_rows; i++) {
        const Mesh__Tap__V1__TopRow *o = r->rows[i];
        mesh_buf_appends(out, i ? ",{\"source\":" : "{\"source\":");
        json_str(out, o->source);
        mesh_buf_appends(out, ",\"destination\":");
        json_str(out, o->destination);
        mesh_buf_appends(out, ",\"method\":");
        json_str(out, o->method);
        mesh_buf_appends(out, ",\"path\":");
        json_str(out, o->path);
        mesh_buf_printf(out, ",\"count\":%llu,\"failures\":%llu", (unsigned long long)o->count,
                        (unsigned long long)o->failures);
        if (o->count)
            mesh_buf_printf(out, ",\"success\":%.6f",
                            (double)(o->count - o->failures) / (double)o->count);
        else
            mesh_buf_appends(out, ",\"success\":null");
        json_ms(out, "best_ms", o->has_best_us, o->best_us);
        json_ms(out, "worst_ms", o->has_worst_us, o->worst_us);
        json_ms(out, "last_ms", o->has_last_us, o->last_us);
        mesh_buf_appends(out, "}");
    }
    mesh_buf_appends(out, "]}");
}

static void error_json(struct mesh_buf *out, const char *collector, const char *why)
{
    char line[512];
    snprintf(line, sizeof(line), "%s: %s", collector, why);
    mesh_buf_reset(out);
    mesh_buf_appends(out, "{\"error\":");
    json_str(out, line);
    mesh_buf_appends(out, "}");
}

/* --- requests to the collector ------------------------------------------------------------ */

static void client_lost(struct mesh_grpc_client *client, const char *why, void *ctx)
{
    struct dash *d = ctx;
    snprintf(d->lost, sizeof(d->lost), "%s", why);
}

/* Starts |method| with the packed |msg|: the call, or NULL with |why| set. */
static struct mesh_grpc_call *start_call(struct dash *d, const char *method,
                                         const ProtobufCMessage *msg,
                                         const struct mesh_grpc_client_cbs *cbs, unsigned timeout,
                                         void *ctx, char *why, size_t whylen)
{
    char err[256];
    if (d->client == NULL) {
        struct mesh_grpc_client_opts copts = {.on_lost = client_lost, .ctx = d,
                                              .max_recv_message = DASH_MAX_JSON};
        d->client = mesh_grpc_client_new(d->loop, d->collector, &copts, err, sizeof(err));
        if (d->client == NULL) {
            snprintf(why, whylen, "%s", err);
            return NULL;
        }
    } else if (mesh_grpc_client_state(d->client) == MESH_GRPC_DISCONNECTED) {
        mesh_grpc_client_reconnect(d->client);
    }
    struct mesh_buf packed;
    mesh_buf_init(&packed, DASH_MAX_JSON);
    char *at;
    struct mesh_grpc_call *call = NULL;
    if (mesh_buf_append_space(&packed, protobuf_c_message_get_packed_size(msg), &at) == 0) {
        protobuf_c_message_pack(msg, (uint8_t *)at);
        call = mesh_grpc_client_call(d->client, method, cbs, timeout, ctx);
    }
    if (call != NULL) {
        mesh_grpc_call_send(call, packed.data, packed.len);
        mesh_grpc_call_close_send(call);
    } else {
        snprintf(why, whylen, "%s", d->lost[0] ? d->lost : "cannot start a call");
    }
    mesh_buf_free(&packed);
    return call;
}

static void window_of(const struct dash *d, Mesh__Tap__V1__TimeWindow *w)
{
    mesh__tap__v1__time_window__init(w);
    w->has_last_us = 1;
    w->last_us = d->window_us;
}

/* --- JSON answers: /api/stat, /api/top ------------------------------------------------------ */

static void dq_free(struct dq *q)
{
    struct dash *d = q->dash;
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        d->queries = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    mesh_buf_free(&q->json);
    free(q);
}

static void dq_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct dq *q = ctx;
    mesh_buf_reset(&q->json);
    if (q->kind == DQ_STAT) {
        Mesh__Tap__V1__StatResponse *r = mesh__tap__v1__stat_response__unpack(NULL, len, msg);
        if (r == NULL)
            return;
        stat_json(r, q->dash->window_us, &q->json);
        mesh__tap__v1__stat_response__free_unpacked(r, NULL);
    } else {
        Mesh__Tap__V1__TopResponse *r = mesh__tap__v1__top_response__unpack(NULL, len, msg);
        if (r == NULL)
            return;
        top_json(r, q->dash->window_us, &q->json);
        mesh__tap__v1__top_response__free_unpacked(r, NULL);
    }
    q->answered = 1;
}

static void dq_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct dq *q = ctx;
    int code = 200;
    if (status != MESH_GRPC_OK || !q->answered) {
        char why[384];
        snprintf(why, sizeof(why), "%s%s%s",
                 status != MESH_GRPC_OK ? mesh_grpc_status_name(status) : "not a response",
                 message && *message ? ": " : "", message ? message : "");
        error_json(&q->json, q->dash->collector, why);
        code = 502;
    }
    mesh_httpd_add_header(q->req, "Cache-Control", "no-store");
    mesh_httpd_respond(q->req, code, "application/json", q->json.data, q->json.len);
    dq_free(q);
}

static void dq_gone(struct mesh_httpd_req *req, void *ctx)
{
    struct dq *q = ctx;
    if (q->call != NULL)
        mesh_grpc_call_cancel(q->call);
    dq_free(q);
}

static const struct mesh_grpc_client_cbs dq_cbs = {.on_message = dq_message, .on_close = dq_close};

static void respond_json_error(struct mesh_httpd_req *req, int code, const char *why)
{
    struct mesh_buf b;
    mesh_buf_init(&b, 4096);
    mesh_buf_appends(&b, "{\"error\":");
    json_str(&b, why);
    mesh_buf_appends(&b, "}");
    mesh_httpd_respond(req, code, "application/json", b.data, b.len);
    mesh_buf_free(&b);
}

/* A query parameter into |buf| ("" when absent); -1 when it is too long. */
static int param(struct mesh_httpd_req *req, const char *name, char *buf, size_t len)
{
    int rv = mesh_httpd_query_param(mesh_httpd_query(req), name, buf, len);
    if (rv == MESH_EINVAL) {
        buf[0] = 0;
        return 0;
    }
    return rv < 0 ? -1 : 0;
}

/* GET /api/stat?type=ns|deploy|po|au[&ns=NS]; GET /api/top?ns=NS&deploy=NAME */
static void start_query(struct dash *d, struct mesh_httpd_req *req, enum dq_kind kind)
{
    char type[16], ns[DASH_NAME_MAX], name[DASH_NAME_MAX], why[512];
    if (param(req, "type", type, sizeof(type)) != 0 || param(req, "ns", ns, sizeof(ns)) != 0 ||
        param(req, "deploy", name, sizeof(name)) != 0) {
        respond_json_error(req, 400, "a parameter is too long");
        return;
    }
    struct dq *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        mesh_httpd_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    q->dash = d;
    q->req = req;
    q->kind = kind;
    mesh_buf_init(&q->json, DASH_MAX_JSON);
    q->next = d->queries;
    if (q->next != NULL)
        q->next->prev = q;
    d->queries = q;

    Mesh__Tap__V1__Resource res = MESH__TAP__V1__RESOURCE__INIT;
    Mesh__Tap__V1__TimeWindow window;
    window_of(d, &window);
    res.namespace_ = ns[0] ? ns : NULL;
    if (kind == DQ_STAT) {
        Mesh__Tap__V1__StatRequest sr = MESH__TAP__V1__STAT_REQUEST__INIT;
        Mesh__Tap__V1__Resource *ptrs[1] = {&res};
        res.type = type[0] ? type : "deploy";
        sr.n_resources = 1;
        sr.resources = ptrs;
        sr.window = &window;
        q->call = start_call(d, "/mesh.tap.v1.Query/Stat", &sr.base, &dq_cbs,
                             DASH_QUERY_TIMEOUT_MS, q, why, sizeof(why));
    } else {
        if (name[0] == 0) {
            respond_json_error(req, 400, "/api/top needs deploy=NAME");
            dq_free(q);
            return;
        }
        Mesh__Tap__V1__TopRequest tr = MESH__TAP__V1__TOP_REQUEST__INIT;
        Mesh__Tap__V1__Filter filter = MESH__TAP__V1__FILTER__INIT;
        res.type = "deploy";
        res.name = name;
        filter.resource = &res;
        tr.filter = &filter;
        tr.window = &window;
        tr.has_limit = 1;
        tr.limit = DASH_TOP_LIMIT;
        q->call = start_call(d, "/mesh.tap.v1.Query/Top", &tr.base, &dq_cbs, DASH_QUERY_TIMEOUT_MS,
                             q, why, sizeof(why));
    }
    if (q->call == NULL) {
        error_json(&q->json, d->collector, why);
        mesh_httpd_respond(req, 502, "application/json", q->json.data, q->json.len);
        dq_free(q);
        return;
    }
    mesh_httpd_set_ctx(req, q);
    mesh_httpd_watch(req, dq_gone, NULL);
}

/* --- server-sent events: /api/live, /api/tap ------------------------------------------------
 *
 * Both take max=N (end the stream after N events) and secs=S (after S seconds): a
 * bounded stream is what a page fetch()es when it cannot keep one open (a snapshot for
 * a screenshot or a wall screen behind a buffering proxy; curl in a script). */

static void dsub_free(struct dsub *s)
{
    struct dash *d = s->dash;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        d->subs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    free(s);
}

static void dsub_gone(struct mesh_httpd_req *req, void *ctx)
{
    struct dsub *s = ctx;
    s->req = NULL;
    if (s->busy) {
        s->gone = 1; /* inside dsub_write: it frees |s| on return */
        return;
    }
    if (s->call != NULL)
        mesh_grpc_call_cancel(s->call);
    dsub_free(s);
}

/* Queues |len| bytes on |s|'s stream: 0; MESH_ETOOBIG when the browser is slow (nothing
 * queued: the next push replaces a stat, a tap counts it missed); MESH_EIO when the
 * connection ended meanwhile: |s| is freed, its call cancelled. */
static int dsub_write(struct dsub *s, const char *data, size_t len)
{
    s->last_write_us = mesh_loop_now_us();
    s->busy = 1;
    int rv = mesh_httpd_stream_write(s->req, data, len);
    s->busy = 0;
    if (s->gone) {
        if (s->call != NULL)
            mesh_grpc_call_cancel(s->call);
        dsub_free(s);
        return MESH_EIO;
    }
    return rv == MESH_ETOOBIG ? rv : 0;
}

/* Ends |s|'s stream (after |last|, if any) and frees it, its call cancelled. */
static void dsub_end(struct dsub *s, const char *last, size_t len)
{
    struct mesh_httpd_req *req = s->req;
    if (s->call != NULL)
        mesh_grpc_call_cancel(s->call);
    mesh_httpd_watch(req, NULL, NULL); /* from here on the request is ours to end */
    dsub_free(s);
    if (last != NULL)
        mesh_httpd_stream_write(req, last, len);
    mesh_httpd_stream_end(req);
}

/* Counts one event written to |s|; ends the stream at its max. 1 when it ended. */
static int dsub_count(struct dsub *s)
{
    if (s->max_events && ++s->nevents >= s->max_events) {
        dsub_end(s, NULL, 0);
        return 1;
    }
    return 0;
}

static struct dsub *dsub_new(struct dash *d, struct mesh_httpd_req *req, int is_tap)
{
    char max[24], secs[24];
    long maxv = 0, secsv = 0;
    char *end;
    if (param(req, "max", max, sizeof(max)) != 0 || param(req, "secs", secs, sizeof(secs)) != 0 ||
        (max[0] && ((maxv = strtol(max, &end, 10)) <= 0 || *end)) ||
        (secs[0] && ((secsv = strtol(secs, &end, 10)) <= 0 || *end || secsv > 86400))) {
        respond_json_error(req, 400, "max and secs are positive whole numbers");
        return NULL;
    }
    struct dsub *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        mesh_httpd_respond(req, 503, "text/plain", "out of memory\n", 14);
        return NULL;
    }
    s->dash = d;
    s->req = req;
    s->is_tap = is_tap;
    s->max_events = (uint64_t)maxv;
    s->deadline_us = secsv ? mesh_loop_now_us() + (uint64_t)secsv * 1000000u : 0;
    s->next = d->subs;
    if (s->next != NULL)
        s->next->prev = s;
    d->subs = s;
    mesh_httpd_set_ctx(req, s);
    mesh_httpd_watch(req, dsub_gone, NULL);
    mesh_httpd_add_header(req, "Cache-Control", "no-store");
    mesh_httpd_stream_start(req, 200, "text/event-stream");
    return s;
}

/* Sends the last stat to every /api/live subscriber (only |only| when not NULL). */
static void push_all(struct dash *d, struct dsub *only)
{
    for (struct dsub *s = d->subs, *next; s != NULL; s = next) {
        next = s->next; /* |s| may go inside the write */
        if (s->is_tap || (only != NULL && s != only))
            continue;
        if (dsub_write(s, d->push.data, d->push.len) == 0)
            dsub_count(s);
    }
}

static void push_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct dash *d = ctx;
    Mesh__Tap__V1__StatResponse *r = mesh__tap__v1__stat_response__unpack(NULL, len, msg);
    if (r == NULL)
        return;
    mesh_buf_reset(&d->push);
    mesh_buf_appends(&d->push, "event: stat\ndata: ");
    stat_json(r, d->window_us, &d->push);
    mesh_buf_appends(&d->push, "\n\n");
    mesh__tap__v1__stat_response__free_unpacked(r, NULL);
}

static void push_error(struct dash *d, const char *why)
{
    struct mesh_buf json;
    mesh_buf_init(&json, 4096);
    error_json(&json, d->collector, why);
    mesh_buf_reset(&d->push);
    mesh_buf_printf(&d->push, "event: failure\ndata: %s\n\n", json.data);
    mesh_buf_free(&json);
}

static void push_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct dash *d = ctx;
    d->push_call = NULL;
    if (status != MESH_GRPC_OK) {
        char why[384];
        snprintf(why, sizeof(why), "%s%s%s", mesh_grpc_status_name(status),
                 message && *message ? ": " : "", message ? message : "");
        push_error(d, why);
    }
    push_all(d, NULL);
}

static const struct mesh_grpc_client_cbs push_cbs = {.on_message = push_message,
                                                     .on_close = push_close};

/* One Stat of every namespace and deployment for every /api/live page. */
static void push_query(struct dash *d)
{
    char why[512];
    if (d->push_call != NULL)
        return; /* the last one has not answered yet: no pile-up */
    Mesh__Tap__V1__StatRequest sr = MESH__TAP__V1__STAT_REQUEST__INIT;
    Mesh__Tap__V1__Resource ns = MESH__TAP__V1__RESOURCE__INIT, deploy = MESH__TAP__V1__RESOURCE__INIT;
    Mesh__Tap__V1__Resource *ptrs[2] = {&ns, &deploy};
    Mesh__Tap__V1__TimeWindow window;
    window_of(d, &window);
    ns.type = "ns";
    deploy.type = "deploy";
    sr.n_resources = 2;
    sr.resources = ptrs;
    sr.window = &window;
    d->push_call = start_call(d, "/mesh.tap.v1.Query/Stat", &sr.base, &push_cbs,
                              DASH_QUERY_TIMEOUT_MS, d, why, sizeof(why));
    if (d->push_call == NULL) {
        push_error(d, why);
        push_all(d, NULL);
    }
}

static int push_tick(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct dash *d = ctx;
    int stat_subs = 0;
    uint64_t now = mesh_loop_now_us();
    for (struct dsub *s = d->subs, *next; s != NULL; s = next) {
        next = s->next;
        if (s->deadline_us && now >= s->deadline_us)
            dsub_end(s, NULL, 0);
        else if (!s->is_tap)
            stat_subs++;
        else if (now - s->last_write_us > DASH_PING_US)
            dsub_write(s, ": ping\n\n", 8);
    }
    if (stat_subs > 0)
        push_query(d);
    return DASH_PUSH_MS;
}

static void start_live(struct dash *d, struct mesh_httpd_req *req)
{
    struct dsub *s = dsub_new(d, req, 0);
    if (s == NULL || dsub_write(s, "retry: 2000\n\n", 13) == MESH_EIO)
        return;
    if (d->push.len > 0)
        push_all(d, s); /* the last snapshot at once */
    else
        push_query(d);
}

static void tap_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct dsub *s = ctx;
    Mesh__Tap__V1__WatchEvent *we = mesh__tap__v1__watch_event__unpack(NULL, len, msg);
    if (we == NULL)
        return;
    s->missed += we->missed;
    if (we->event != NULL) {
        struct mesh_evt evt;
        struct mesh_buf line;
        mesh_buf_init(&line, 1u << 20);
        struct mesh_header headers[MESH_EVT_HEADERS_MAX];
        mesh_evt_from_pb(we->event, &evt, headers);
        mesh_buf_printf(&line, "event: tap\ndata: {\"failed\":%s,\"missed\":%llu,\"event\":",
                        mesh_evt_failed(&evt) ? "true" : "false", (unsigned long long)s->missed);
        if (mesh_evt_to_json(&evt, &line) == 0 && mesh_buf_appends(&line, "}\n\n") == 0) {
            int rv = dsub_write(s, line.data, line.len);
            if (rv == 0) {
                s->missed = 0;
                dsub_count(s);
            } else if (rv == MESH_ETOOBIG) {
                s->missed++;
            }
        } else {
            s->missed++;
        }
        mesh_buf_free(&line);
    }
    mesh__tap__v1__watch_event__free_unpacked(we, NULL);
}

/* The Watch ended (collector gone or stopped): tell the page, end the stream;
 * EventSource connects again after its retry delay, and so starts a new Watch. */
static void tap_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct dsub *s = ctx;
    char why[384];
    struct mesh_buf json, ev;
    snprintf(why, sizeof(why), "%s%s%s", mesh_grpc_status_name(status),
             message && *message ? ": " : "", message ? message : "");
    mesh_buf_init(&json, 4096);
    mesh_buf_init(&ev, 8192);
    error_json(&json, s->dash->collector, why);
    mesh_buf_printf(&ev, "event: failure\ndata: %s\n\n", json.data);
    s->call = NULL; /* ended: nothing to cancel */
    dsub_end(s, ev.data, ev.len);
    mesh_buf_free(&json);
    mesh_buf_free(&ev);
}

static const struct mesh_grpc_client_cbs tap_cbs = {.on_message = tap_message,
                                                    .on_close = tap_close};

/* GET /api/tap?ns=NS&deploy=NAME[&max=N][&secs=S] */
static void start_tap(struct dash *d, struct mesh_httpd_req *req)
{
    char ns[DASH_NAME_MAX], name[DASH_NAME_MAX], why[512];
    if (param(req, "ns", ns, sizeof(ns)) != 0 || param(req, "deploy", name, sizeof(name)) != 0 ||
        name[0] == 0) {
        respond_json_error(req, 400, "/api/tap needs deploy=NAME (and ns=NS)");
        return;
    }
    struct dsub *s = dsub_new(d, req, 1);
    if (s == NULL || dsub_write(s, "retry: 3000\n\n", 13) == MESH_EIO)
        return;
    Mesh__Tap__V1__WatchRequest wr = MESH__TAP__V1__WATCH_REQUEST__INIT;
    Mesh__Tap__V1__Filter filter = MESH__TAP__V1__FILTER__INIT;
    Mesh__Tap__V1__Resource res = MESH__TAP__V1__RESOURCE__INIT;
    res.type = "deploy";
    res.name = name;
    res.namespace_ = ns[0] ? ns : NULL;
    filter.resource = &res;
    wr.filter = &filter;
    wr.has_max_rps = 1;
    wr.max_rps = DASH_TAP_MAX_RPS;
    s->call = start_call(d, "/mesh.tap.v1.Query/Watch", &wr.base, &tap_cbs, 0, s, why, sizeof(why));
    if (s->call == NULL)
        tap_close(NULL, MESH_GRPC_UNAVAILABLE, why, s);
}

/* --- static assets ------------------------------------------------------------------------- */

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".json", "application/json"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"},
                 {".ico", "image/x-icon"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* 1 when |path| ("/app.js") names a file under the assets: plain names only, no "..". */
static int safe_path(const char *path)
{
    if (path[0] != '/' || strlen(path) > 200)
        return 0;
    for (const char *p = path; *p; p++) {
        if (!(*p == '/' || *p == '.' || *p == '-' || *p == '_' || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
        if (*p == '/' && (p[1] == '.' || p[1] == '/'))
            return 0; /* no "..", no hidden files, no "//" */
    }
    return 1;
}

static void serve_file(struct dash *d, struct mesh_httpd_req *req, const char *path)
{
    char file[PATH_MAX + 256];
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    if (!safe_path(path)) {
        mesh_httpd_respond(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    snprintf(file, sizeof(file), "%s%s", d->assets, path);
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > DASH_MAX_ASSET) {
        if (fd >= 0)
            close(fd);
        mesh_httpd_respond(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    char *body = malloc((size_t)st.st_size + 1);
    ssize_t n = body != NULL ? read(fd, body, (size_t)st.st_size) : -1;
    close(fd);
    if (n < 0) {
        free(body);
        mesh_httpd_respond(req, 500, "text/plain", "cannot read the file\n", 21);
        return;
    }
    mesh_httpd_add_header(req, "Cache-Control", "no-cache");
    mesh_httpd_respond(req, 200, content_type(path), body, (size_t)n);
    free(body);
}

/* --- routing ------------------------------------------------------------------------------- */

static void handle(struct mesh_httpd_req *req, void *ctx)
{
    struct dash *d = ctx;
    const char *method = mesh_httpd_method(req), *path = mesh_httpd_path(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        mesh_httpd_add_header(req, "Allow", "GET, HEAD");
        mesh_httpd_respond(req, 405, "text/plain", "GET only\n", 9);
    } else if (strcmp(path, "/api/stat") == 0) {
        start_query(d, req, DQ_STAT);
    } else if (strcmp(path, "/api/top") == 0) {
        start_query(d, req, DQ_TOP);
    } else if (strcmp(path, "/api/live") == 0) {
        start_live(d, req);
    } else if (strcmp(path, "/api/tap") == 0) {
        start_tap(d, req);
    } else if (strcmp(path, "/api/info") == 0) {
        struct mesh_buf b;
        mesh_buf_init(&b, 4096);
        mesh_buf_appends(&b, "{\"collector\":");
        json_str(&b, d->collector);
        mesh_buf_printf(&b, ",\"window_s\":%.0f,\"push_ms\":%u}", (double)d->window_us / 1e6,
                        DASH_PUSH_MS);
        mesh_httpd_respond(req, 200, "application/json", b.data, b.len);
        mesh_buf_free(&b);
    } else if (strncmp(path, "/api/", 5) == 0) {
        respond_json_error(req, 404, "no such endpoint");
    } else {
        serve_file(d, req, path);
    }
}

/* --- the command ---------------------------------------------------------------------------- */

static int has_index(const char *dir)
{
    char file[PATH_MAX];
    if ((size_t)snprintf(file, sizeof(file), "%.*s/index.html", PATH_MAX - 16, dir) >= sizeof(file))
        return 0;
    return access(file, R_OK) == 0;
}

/* dashboards/web beside the build directory (build/mesh → ../dashboards/web), an
 * installed share/mesh/, or the checkout this file was compiled from. */
static int find_assets(char *out, size_t len, char *looked, size_t looked_len)
{
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    const char *const rel[] = {"/../dashboards/web", "/../share/mesh/dashboards/web",
                               "/../../dashboards/web"};
    looked[0] = 0;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash != NULL)
            *slash = 0;
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
            snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
            if (has_index(cand) && realpath(cand, out) != NULL && strlen(out) < len)
                return 0;
            if (i == 0)
                snprintf(looked, looked_len, "%s", cand);
        }
    }
    snprintf(cand, sizeof(cand), "%s", __FILE__); /* .../store/dashboard.c */
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(cand, '/');
        if (slash == NULL)
            return -1;
        *slash = 0;
    }
    if (cand[0] != '/')
        return -1;
    strncat(cand, "/dashboards/web", sizeof(cand) - strlen(cand) - 1);
    if (has_index(cand) && realpath(cand, out) != NULL && strlen(out) < len)
        return 0;
    return -1;
}

static const char usage[] =
    "Usage: mesh dashboard [--address 127.0.0.1] [--port 50750] [--collector ADDR] [options]\n"
    "\n"
    "The web dashboard: namespaces and deployments with success rate, RPS and latency,\n"
    "updated every 2 s; a deployment's page with its paths and a live tap; failing rows\n"
    "marked. Open http://ADDRESS:PORT/ in a browser. It asks a collector (default:\n"
    "$MESH_COLLECTOR, else a running `mesh demo`'s, else 127.0.0.1:8088) and needs no\n"
    "network beyond it (no CDN). Runs until Ctrl-C.\n"
    "\n"
    "Options:\n"
    "      --address A        listen on A [127.0.0.1]\n"
    "  -p, --port P           listen on port P (0: any free one) [50750]\n"
    "      --collector ADDR   the collector to ask\n"
    "      --assets DIR       serve the page from DIR [dashboards/web of the checkout]\n"
    "  -t, --time-window D    the window of the numbers [1m]\n"
    "      --tls-cert FILE, --tls-key FILE\n"
    "                         HTTPS with this PEM certificate chain and key\n"
    "\n"
    "Examples:\n"
    "  mesh demo &   mesh dashboard                # then open http://127.0.0.1:50750/\n"
    "  mesh dashboard --address 0.0.0.0 --port 8084 --collector 10.0.0.5:8088\n";

static void on_stop(struct mesh_loop *loop, int signo, void *ctx)
{
    mesh_loop_stop(loop);
}

int mesh_dashboard_main(int argc, char **argv, const char *default_collector)
{
    static const struct option opts[] = {
        {"address", required_argument, NULL, 'a'}, {"port", required_argument, NULL, 'p'},
        {"collector", required_argument, NULL, 'c'}, {"assets", required_argument, NULL, 's'},
        {"time-window", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"tls-cert", required_argument, NULL, 'C'},   {"tls-key", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    static struct dash dash;
    struct dash *d = &dash;
    const char *address = "127.0.0.1", *assets = NULL, *tls_cert = NULL, *tls_key = NULL;
    long port = 50750;
    char *end, err[512], listen[320], looked[PATH_MAX + 64];
    int opt;
    memset(d, 0, sizeof(*d));
    d->collector = default_collector;
    d->window_us = 60000000;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "hp:t:", opts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            if (*optarg == 0 || strlen(optarg) > 256) {
                fprintf(stderr, "mesh dashboard: --address %s: not an address\n", optarg);
                return MESH_EXIT_USAGE;
            }
            address = optarg;
            break;
        case 'p':
            port = strtol(optarg, &end, 10);
            if (end == optarg || *end != 0 || port < 0 || port > 65535) {
                fprintf(stderr, "mesh dashboard: --port %s: not a port (0-65535)\n", optarg);
                return MESH_EXIT_USAGE;
            }
            break;
        case 'c': d->collector = optarg; break;
        case 's': assets = optarg; break;
        case 'C': tls_cert = optarg; break;
        case 'K': tls_key = optarg; break;
        case 't':
            if (mesh_parse_duration_us(optarg, &d->window_us) != 0 || d->window_us < 1000000) {
                fprintf(stderr, "mesh dashboard: -t %s: not a time window of 1s or more\n", optarg);
                return MESH_EXIT_USAGE;
            }
            break;
        case 'h': fputs(usage, stdout); return MESH_EXIT_OK;
        default:
            fprintf(stderr, "mesh dashboard: %s: %s (see `mesh dashboard --help`)\n",
                    argv[optind - 1], optopt ? "option needs a value" : "unknown option");
            return MESH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mesh dashboard: %s: unexpected argument (see `mesh dashboard --help`)\n",
                argv[optind]);
        return MESH_EXIT_USAGE;
    }
    struct mesh_addr caddr;
    if (mesh_addr_parse(d->collector, &caddr, err, sizeof(err)) != 0) {
        fprintf(stderr, "mesh dashboard: --collector: %s\n", err);
        return MESH_EXIT_USAGE;
    }
    if (assets != NULL) {
        if (!has_index(assets) || realpath(assets, d->assets) == NULL) {
            fprintf(stderr, "mesh dashboard: --assets %s: no index.html there\n", assets);
            return MESH_EXIT_USAGE;
        }
    } else if (find_assets(d->assets, sizeof(d->assets), looked, sizeof(looked)) != 0) {
        fprintf(stderr, "mesh dashboard: the web assets are not in %s: give --assets DIR\n", looked);
        return MESH_EXIT_RUNTIME;
    }
    snprintf(listen, sizeof(listen), strchr(address, ':') ? "[%s]:%ld" : "%s:%ld", address, port);

    signal(SIGPIPE, SIG_IGN);
    int status = MESH_EXIT_RUNTIME;
    mesh_buf_init(&d->push, DASH_MAX_JSON);
    if ((d->loop = mesh_loop_new()) == NULL)
        goto out;
    if ((tls_cert == NULL) != (tls_key == NULL)) {
        fprintf(stderr, "mesh dashboard: --tls-cert and --tls-key go together\n");
        status = MESH_EXIT_USAGE;
        goto out;
    }
    struct mesh_httpd_opts hopts = {.handler = handle, .ctx = d, .max_pending = 1u << 20,
                                    .tls_cert = tls_cert, .tls_key = tls_key};
    d->httpd = mesh_httpd_new(d->loop, listen, &hopts, err, sizeof(err));
    if (d->httpd == NULL) {
        fprintf(stderr, "mesh dashboard: %s\n", err);
        status = MESH_EXIT_USAGE; /* the address given is bad or taken */
        goto out;
    }
    mesh_loop_on_signal(d->loop, SIGINT, on_stop, d);
    mesh_loop_on_signal(d->loop, SIGTERM, on_stop, d);
    mesh_loop_add_timer(d->loop, DASH_PUSH_MS, push_tick, d);
    snprintf(listen, sizeof(listen), strchr(address, ':') ? "[%s]:%d" : "%s:%d", address,
             mesh_httpd_port(d->httpd));
    printf("mesh dashboard: %s://%s/   (collector %s, assets %s)\n", tls_cert ? "https" : "http",
           listen, d->collector, d->assets);
    fflush(stdout);
    mesh_loop_run(d->loop);
    status = MESH_EXIT_OK;
out:
    mesh_httpd_free(d->httpd); /* every held request's on_gone: their calls are cancelled */
    if (d->push_call != NULL)
        mesh_grpc_call_cancel(d->push_call);
    mesh_grpc_client_free(d->client);
    mesh_loop_free(d->loop);
    mesh_buf_free(&d->push);
    return status;
}
