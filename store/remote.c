#include "remote.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt_pb.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"
#include "mesh/tap/v1/tap.pb-c.h"
#include "store.h"

#define QUERY_TIMEOUT_MS 10000u

static struct mesh_store *open_db(const struct mesh_remote *rm, const char *prog)
{
    struct mesh_store_opts opts;
    struct mesh_store *st = NULL;
    char err[512];
    mesh_store_opts_init(&opts);
    opts.readonly = 1;
    if (mesh_store_open(rm->db, &opts, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        return NULL;
    }
    return st;
}

static struct mesh_store_window store_window(const struct mesh_remote *rm)
{
    struct mesh_store_window w = {rm->last_us, rm->since_us, rm->until_us};
    return w;
}

/* --- the wire forms of resources, filters and windows ---------------------------------------- */

struct pb_resource {
    Mesh__Tap__V1__Resource msg;
};

static Mesh__Tap__V1__Resource *resource_pb(const struct mesh_resource *res,
                                            struct pb_resource *out)
{
    if (res->type == MESH_RT_NONE)
        return NULL;
    mesh__tap__v1__resource__init(&out->msg);
    out->msg.type = (char *)mesh_rtype_name(res->type);
    out->msg.name = (char *)res->name;
    out->msg.namespace_ = (char *)res->ns;
    return &out->msg;
}

static void window_pb(const struct mesh_remote *rm, Mesh__Tap__V1__TimeWindow *w)
{
    mesh__tap__v1__time_window__init(w);
    w->has_last_us = rm->last_us != 0;
    w->last_us = rm->last_us;
    w->has_since_us = rm->since_us != 0;
    w->since_us = rm->since_us;
    w->has_until_us = rm->until_us != 0;
    w->until_us = rm->until_us;
}

struct pb_filter {
    Mesh__Tap__V1__Filter msg;
    struct pb_resource res, to, from;
};

static void filter_pb(const struct mesh_filter *f, struct pb_filter *out)
{
    mesh__tap__v1__filter__init(&out->msg);
    out->msg.resource = resource_pb(&f->res, &out->res);
    out->msg.to = resource_pb(&f->to, &out->to);
    out->msg.from = resource_pb(&f->from, &out->from);
    out->msg.method = (char *)f->method;
    out->msg.path_prefix = (char *)f->path_prefix;
    out->msg.authority = (char *)f->authority;
    out->msg.has_status_class = f->status_class != 0;
    out->msg.status_class = (uint32_t)f->status_class;
    out->msg.has_status = f->status != 0;
    out->msg.status = (uint32_t)f->status;
    out->msg.has_min_latency_us = f->min_latency_us != 0;
    out->msg.min_latency_us = f->min_latency_us;
}

/* One unary Query call; the response bytes land in |resp|. */
static int query(const struct mesh_remote *rm, const char *prog, const char *method,
                 const ProtobufCMessage *req, struct mesh_buf *resp)
{
    struct mesh_buf reqb;
    char *at, err[512];
    int status = 0;
    mesh_buf_init(&reqb, 16u << 20);
    int rv = mesh_buf_append_space(&reqb, protobuf_c_message_get_packed_size(req), &at);
    if (rv == 0) {
        protobuf_c_message_pack(req, (uint8_t *)at);
        rv = mesh_grpc_unary(rm->collector, method, reqb.data, reqb.len, resp, QUERY_TIMEOUT_MS,
                             &status, err, sizeof(err));
    }
    mesh_buf_free(&reqb);
    if (rv != 0) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        return rv == MESH_EINVAL ? MESH_EXIT_USAGE : MESH_EXIT_RUNTIME;
    }
    return MESH_EXIT_OK;
}

/* --- stat ---------------------------------------------------------------------------------------- */

static int stat_db(const struct mesh_remote *rm, const char *prog, const struct mesh_stat_opts *opts)
{
    struct mesh_store *st = open_db(rm, prog);
    if (st == NULL)
        return MESH_EXIT_USAGE;
    struct mesh_store_stat_req req = {.resources = opts->res, .nresources = opts->nres,
                                      .from = opts->from, .to = opts->to,
                                      .window = store_window(rm)};
    struct mesh_store_stat_result res;
    int status = MESH_EXIT_OK;
    if (mesh_store_stat(st, &req, mesh_wall_now_us(), &res) != 0) {
        fprintf(stderr, "mesh %s: %s: %s\n", prog, rm->db, mesh_store_errmsg(st));
        mesh_store_close(st);
        return MESH_EXIT_RUNTIME;
    }
    struct mesh_stat_row *rows = calloc(res.nrows ? res.nrows : 1, sizeof(*rows));
    for (size_t i = 0; rows != NULL && i < res.nrows; i++) {
        const struct mesh_store_stat_row *r = &res.rows[i];
        rows[i] = (struct mesh_stat_row){r->ns, r->type, r->name, r->requests, r->failures,
                                         r->rps, r->latency_p50_us, r->latency_p95_us,
                                         r->latency_p99_us, r->tcp_conn, r->read_bytes_per_sec,
                                         r->write_bytes_per_sec};
    }
    if (rows != NULL)
        mesh_stat_print(stdout, rows, res.nrows, opts->output);
    else
        status = MESH_EXIT_RUNTIME;
    free(rows);
    mesh_store_stat_result_free(&res);
    mesh_store_close(st);
    return status;
}

static int stat_collector(const struct mesh_remote *rm, const char *prog,
                          const struct mesh_stat_opts *opts)
{
    Mesh__Tap__V1__StatRequest req = MESH__TAP__V1__STAT_REQUEST__INIT;
    struct pb_resource res[MESH_STAT_MAX_RES], from, to;
    Mesh__Tap__V1__Resource *ptrs[MESH_STAT_MAX_RES];
    Mesh__Tap__V1__TimeWindow window;
    for (size_t i = 0; i < opts->nres; i++)
        ptrs[i] = resource_pb(&opts->res[i], &res[i]);
    req.n_resources = opts->nres;
    req.resources = ptrs;
    req.from = resource_pb(&opts->from, &from);
    req.to = resource_pb(&opts->to, &to);
    window_pb(rm, &window);
    req.window = &window;
    struct mesh_buf resp;
    mesh_buf_init(&resp, 64u << 20);
    int status = query(rm, prog, "/mesh.tap.v1.Query/Stat", &req.base, &resp);
    Mesh__Tap__V1__StatResponse *r = NULL;
    if (status == MESH_EXIT_OK &&
        (r = mesh__tap__v1__stat_response__unpack(NULL, resp.len, (uint8_t *)resp.data)) == NULL) {
        fprintf(stderr, "mesh %s: %s: not a StatResponse\n", prog, rm->collector);
        status = MESH_EXIT_RUNTIME;
    }
    if (r != NULL) {
        struct mesh_stat_row *rows = calloc(r->n_rows ? r->n_rows : 1, sizeof(*rows));
        for (size_t i = 0; rows != NULL && i < r->n_rows; i++) {
            const Mesh__Tap__V1__StatRow *o = r->rows[i];
            rows[i] = (struct mesh_stat_row){
                .ns = o->namespace_ ? o->namespace_ : "",
                .type = o->type ? mesh_rtype_parse(o->type) : MESH_RT_NONE,
                .name = o->name ? o->name : "",
                .requests = o->requests,
                .failures = o->failures,
                .rps = o->rps,
                .p50_us = o->has_latency_p50_us ? (int64_t)o->latency_p50_us : -1,
                .p95_us = o->has_latency_p95_us ? (int64_t)o->latency_p95_us : -1,
                .p99_us = o->has_latency_p99_us ? (int64_t)o->latency_p99_us : -1,
                .tcp_conn = o->tcp_conn,
                .read_bytes_per_sec = o->read_bytes_per_sec,
                .write_bytes_per_sec = o->write_bytes_per_sec,
            };
        }
        if (rows != NULL)
            mesh_stat_print(stdout, rows, r->n_rows, opts->output);
        free(rows);
        mesh__tap__v1__stat_response__free_unpacked(r, NULL);
    }
    mesh_buf_free(&resp);
    return status;
}

int mesh_remote_stat(const struct mesh_remote *rm, const char *prog,
                     const struct mesh_stat_opts *opts)
{
    return rm->db ? stat_db(rm, prog, opts) : stat_collector(rm, prog, opts);
}

/* --- top ------------------------------------------------------------------------------------------ */

int mesh_remote_top(const struct mesh_remote *rm, const char *prog, const struct mesh_top_opts *opts)
{
    int status = MESH_EXIT_OK;
    if (rm->db != NULL) {
        struct mesh_store *st = open_db(rm, prog);
        if (st == NULL)
            return MESH_EXIT_USAGE;
        struct mesh_store_top_req req = {.filter = opts->filter, .window = store_window(rm),
                                         .hide_sources = opts->hide_sources};
        struct mesh_store_top_result res;
        if (mesh_store_top(st, &req, mesh_wall_now_us(), &res) != 0) {
            fprintf(stderr, "mesh %s: %s: %s\n", prog, rm->db, mesh_store_errmsg(st));
            mesh_store_close(st);
            return MESH_EXIT_RUNTIME;
        }
        struct mesh_top_row *rows = calloc(res.nrows ? res.nrows : 1, sizeof(*rows));
        for (size_t i = 0; rows != NULL && i < res.nrows; i++) {
            const struct mesh_store_top_row *r = &res.rows[i];
            rows[i] = (struct mesh_top_row){r->source, r->destination, r->method, r->path,
                                            r->count,  r->failures,    r->best_us, r->worst_us,
                                            r->last_us};
        }
        if (rows != NULL)
            mesh_top_print(stdout, rows, res.nrows, opts, res.over_cap);
        free(rows);
        mesh_store_top_result_free(&res);
        mesh_store_close(st);
        return rows ? status : MESH_EXIT_RUNTIME;
    }
    Mesh__Tap__V1__TopRequest req = MESH__TAP__V1__TOP_REQUEST__INIT;
    struct pb_filter filter;
    Mesh__Tap__V1__TimeWindow window;
    filter_pb(&opts->filter, &filter);
    window_pb(rm, &window);
    req.filter = &filter.msg;
    req.window = &window;
    req.has_hide_sources = 1;
    req.hide_sources = opts->hide_sources;
    struct mesh_buf resp;
    mesh_buf_init(&resp, 64u << 20);
    status = query(rm, prog, "/mesh.tap.v1.Query/Top", &req.base, &resp);
    Mesh__Tap__V1__TopResponse *r = NULL;
    if (status == MESH_EXIT_OK &&
        (r = mesh__tap__v1__top_response__unpack(NULL, resp.len, (uint8_t *)resp.data)) == NULL) {
        fprintf(stderr, "mesh %s: %s: not a TopResponse\n", prog, rm->collector);
        status = MESH_EXIT_RUNTIME;
    }
    if (r != NULL) {
        struct mesh_top_row *rows = calloc(r->n_rows ? r->n_rows : 1, sizeof(*rows));
        for (size_t i = 0; rows != NULL && i < r->n_rows; i++) {
            const Mesh__Tap__V1__TopRow *o = r->rows[i];
            rows[i] = (struct mesh_top_row){
                o->source ? o->source : "-", o->destination ? o->destination : "-",
                o->method ? o->method : "-", o->path ? o->path : "-", o->count, o->failures,
                o->has_best_us ? (int64_t)o->best_us : -1,
                o->has_worst_us ? (int64_t)o->worst_us : -1,
                o->has_last_us ? (int64_t)o->last_us : -1};
        }
        if (rows != NULL)
            mesh_top_print(stdout, rows, r->n_rows, opts, 0);
        free(rows);
        mesh__tap__v1__top_response__free_unpacked(r, NULL);
    }
    mesh_buf_free(&resp);
    return status;
}

/* --- tap ------------------------------------------------------------------------------------------ */

static int tap_db_event(void *arg, const struct mesh_evt *evt)
{
    mesh_tap_add(arg, evt);
    return 0;
}

struct watch {
    struct mesh_loop *loop;
    struct mesh_tap *tap;
    int status;
    char why[256];
};

static void watch_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct watch *w = ctx;
    Mesh__Tap__V1__WatchEvent *we = mesh__tap__v1__watch_event__unpack(NULL, len, msg);
    if (we == NULL)
        return;
    w->tap->missed += we->missed;
    if (we->event != NULL) {
        struct mesh_evt evt;
        mesh_evt_from_pb(we->event, &evt);
        if (mesh_tap_add(w->tap, &evt))
            fflush(w->tap->out); /* live: a line as soon as it is known */
    }
    mesh__tap__v1__watch_event__free_unpacked(we, NULL);
}

static void watch_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct watch *w = ctx;
    w->status = status;
    snprintf(w->why, sizeof(w->why), "%s%s%s", mesh_grpc_status_name(status),
             message && *message ? ": " : "", message ? message : "");
    mesh_loop_stop(w->loop);
}

static void watch_lost(struct mesh_grpc_client *client, const char *why, void *ctx)
{
    struct watch *w = ctx;
    w->status = MESH_GRPC_UNAVAILABLE;
    snprintf(w->why, sizeof(w->why), "%s", why);
    mesh_loop_stop(w->loop);
}

static void watch_signal(struct mesh_loop *loop, int signo, void *ctx)
{
    mesh_loop_stop(loop);
}

static const struct mesh_grpc_client_cbs watch_cbs = {.on_message = watch_message,
                                                      .on_close = watch_close};

int mesh_remote_tap(const struct mesh_remote *rm, const char *prog, struct mesh_tap *tap)
{
    if (rm->db != NULL) {
        struct mesh_store *st = open_db(rm, prog);
        if (st == NULL)
            return MESH_EXIT_USAGE;
        struct mesh_store_window window = store_window(rm);
        int rv = mesh_store_events(st, &tap->opts.filter, &window, mesh_wall_now_us(), 0, 0, tap_db_event, tap);
        if (rv != 0)
            fprintf(stderr, "mesh %s: %s: %s\n", prog, rm->db, mesh_store_errmsg(st));
        mesh_store_close(st);
        return rv ? MESH_EXIT_RUNTIME : MESH_EXIT_OK;
    }
    struct watch w = {.tap = tap, .status = -1};
    char err[512];
    signal(SIGPIPE, SIG_IGN);
    if ((w.loop = mesh_loop_new()) == NULL)
        return MESH_EXIT_RUNTIME;
    struct mesh_grpc_client_opts copts = {.on_lost = watch_lost, .ctx = &w};
    struct mesh_grpc_client *client = mesh_grpc_client_new(w.loop, rm->collector, &copts, err, sizeof(err));
    if (client == NULL) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        mesh_loop_free(w.loop);
        return MESH_EXIT_USAGE;
    }
    Mesh__Tap__V1__WatchRequest req = MESH__TAP__V1__WATCH_REQUEST__INIT;
    struct pb_filter filter;
    filter_pb(&tap->opts.filter, &filter);
    req.filter = &filter.msg;
    req.has_max_rps = tap->opts.max_rps > 0;
    req.max_rps = tap->opts.max_rps;
    struct mesh_buf reqb;
    char *at;
    mesh_buf_init(&reqb, 1u << 20);
    struct mesh_grpc_call *call = mesh_grpc_client_call(client, "/mesh.tap.v1.Query/Watch", &watch_cbs, 0, &w);
    if (call != NULL && mesh_buf_append_space(&reqb, protobuf_c_message_get_packed_size(&req.base), &at) == 0) {
        protobuf_c_message_pack(&req.base, (uint8_t *)at);
        mesh_grpc_call_send(call, reqb.data, reqb.len);
        mesh_grpc_call_close_send(call);
    }
    mesh_loop_on_signal(w.loop, SIGINT, watch_signal, &w);
    mesh_loop_on_signal(w.loop, SIGTERM, watch_signal, &w);
    mesh_loop_run(w.loop);
    int status = MESH_EXIT_OK;
    if (w.status > 0) {
        const char *why = w.why;
        size_t alen = strlen(rm->collector);
        if (strncmp(why, rm->collector, alen) == 0 && strncmp(why + alen, ": ", 2) == 0)
            why += alen + 2; /* it names the address already */
        fprintf(stderr, "mesh %s: %s: %s\n", prog, rm->collector, why);
        status = MESH_EXIT_RUNTIME;
    }
    if (w.status < 0 && call != NULL)
        mesh_grpc_call_cancel(call); /* interrupted: the call is still ours */
    mesh_buf_free(&reqb);
    mesh_grpc_client_free(client);
    mesh_loop_free(w.loop);
    return status;
}
