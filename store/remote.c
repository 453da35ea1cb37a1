#include "remote.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt_pb.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"
#include "mesh/tap/v1/tap.pb-c.h"
#include "store.h"
#include "top/screen.h"

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

static int pack(const ProtobufCMessage *msg, struct mesh_buf *out)
{
    char *at;
    mesh_buf_reset(out);
    int rv = mesh_buf_append_space(out, protobuf_c_message_get_packed_size(msg), &at);
    if (rv == 0)
        protobuf_c_message_pack(msg, (uint8_t *)at);
    return rv;
}

/* One unary Query call with the packed |req|; the response bytes land in |resp|. */
static int query(const struct mesh_remote *rm, const char *prog, const char *method,
                 const struct mesh_buf *req, struct mesh_buf *resp)
{
    char err[512];
    int status = 0;
    int rv = mesh_grpc_unary(rm->collector, method, req->data, req->len, resp, QUERY_TIMEOUT_MS,
                             &status, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        return rv == MESH_EINVAL ? MESH_EXIT_USAGE : MESH_EXIT_RUNTIME;
    }
    return MESH_EXIT_OK;
}

/* --- stat ---------------------------------------------------------------------------------------- */

/* mesh_store_stat's rows as the views'; free() them. */
static struct mesh_stat_row *stat_rows_db(const struct mesh_store_stat_result *res)
{
    struct mesh_stat_row *rows = calloc(res->nrows ? res->nrows : 1, sizeof(*rows));
    for (size_t i = 0; rows != NULL && i < res->nrows; i++) {
        const struct mesh_store_stat_row *r = &res->rows[i];
        rows[i] = (struct mesh_stat_row){r->ns, r->type, r->name, r->requests, r->failures,
                                         r->rps, r->latency_p50_us, r->latency_p95_us,
                                         r->latency_p99_us, r->tcp_conn, r->read_bytes_per_sec,
                                         r->write_bytes_per_sec, r->meshed_pods, r->meshed_pods};
    }
    return rows;
}

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
    struct mesh_stat_row *rows = stat_rows_db(&res);
    if (rows != NULL)
        mesh_stat_print(stdout, rows, res.nrows, opts->output);
    else
        status = MESH_EXIT_RUNTIME;
    free(rows);
    mesh_store_stat_result_free(&res);
    mesh_store_close(st);
    return status;
}

/* The StatRequest of |opts|, packed into |out|. */
static int pack_stat_req(const struct mesh_remote *rm, const struct mesh_stat_opts *opts,
                         struct mesh_buf *out)
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
    return pack(&req.base, out);
}

/* Rows borrowing |r|'s strings; free() them. NULL when out of memory. */
static struct mesh_stat_row *stat_rows_pb(const Mesh__Tap__V1__StatResponse *r)
{
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
            .meshed_pods = o->has_meshed_pods ? o->meshed_pods : 0,
            .total_pods = o->has_total_pods ? o->total_pods : 0,
        };
    }
    return rows;
}

static int stat_collector(const struct mesh_remote *rm, const char *prog,
                          const struct mesh_stat_opts *opts)
{
    struct mesh_buf req, resp;
    mesh_buf_init(&req, 16u << 20);
    mesh_buf_init(&resp, 64u << 20);
    int status = pack_stat_req(rm, opts, &req) == 0
                     ? query(rm, prog, "/mesh.tap.v1.Query/Stat", &req, &resp)
                     : MESH_EXIT_RUNTIME;
    Mesh__Tap__V1__StatResponse *r = NULL;
    if (status == MESH_EXIT_OK &&
        (r = mesh__tap__v1__stat_response__unpack(NULL, resp.len, (uint8_t *)resp.data)) == NULL) {
        fprintf(stderr, "mesh %s: %s: not a StatResponse\n", prog, rm->collector);
        status = MESH_EXIT_RUNTIME;
    }
    if (r != NULL) {
        struct mesh_stat_row *rows = stat_rows_pb(r);
        if (rows != NULL)
            mesh_stat_print(stdout, rows, r->n_rows, opts->output);
        free(rows);
        mesh__tap__v1__stat_response__free_unpacked(r, NULL);
    }
    mesh_buf_free(&req);
    mesh_buf_free(&resp);
    return status;
}

static int live_run(const struct mesh_remote *rm, const char *prog,
                    const struct mesh_stat_opts *sopts, const struct mesh_top_opts *topts);
static int watch_plain(const struct mesh_remote *rm, const char *prog,
                       const struct mesh_stat_opts *opts);

int mesh_remote_stat(const struct mesh_remote *rm, const char *prog,
                     const struct mesh_stat_opts *opts)
{
    if (opts->watch)
        return opts->live ? live_run(rm, prog, opts, NULL) : watch_plain(rm, prog, opts);
    return rm->db ? stat_db(rm, prog, opts) : stat_collector(rm, prog, opts);
}

/* --- top ------------------------------------------------------------------------------------------ */

static int pack_top_req(const struct mesh_remote *rm, const struct mesh_top_opts *opts,
                        struct mesh_buf *out)
{
    Mesh__Tap__V1__TopRequest req = MESH__TAP__V1__TOP_REQUEST__INIT;
    struct pb_filter filter;
    Mesh__Tap__V1__TimeWindow window;
    filter_pb(&opts->filter, &filter);
    window_pb(rm, &window);
    req.filter = &filter.msg;
    req.window = &window;
    req.has_hide_sources = 1;
    req.hide_sources = opts->hide_sources;
    return pack(&req.base, out);
}

static struct mesh_top_row *top_rows_pb(const Mesh__Tap__V1__TopResponse *r)
{
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
    return rows;
}

/* mesh_store_top's rows as the views' */
static struct mesh_top_row *top_rows_db(const struct mesh_store_top_result *res)
{
    struct mesh_top_row *rows = calloc(res->nrows ? res->nrows : 1, sizeof(*rows));
    for (size_t i = 0; rows != NULL && i < res->nrows; i++) {
        const struct mesh_store_top_row *r = &res->rows[i];
        rows[i] = (struct mesh_top_row){r->source, r->destination, r->method, r->path,
                                        r->count,  r->failures,    r->best_us, r->worst_us,
                                        r->last_us};
    }
    return rows;
}

int mesh_remote_top(const struct mesh_remote *rm, const char *prog, const struct mesh_top_opts *opts)
{
    int status = MESH_EXIT_OK;
    if (opts->live)
        return live_run(rm, prog, NULL, opts);
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
        struct mesh_top_row *rows = top_rows_db(&res);
        if (rows != NULL)
            mesh_top_print(stdout, rows, res.nrows, opts, res.over_cap);
        free(rows);
        mesh_store_top_result_free(&res);
        mesh_store_close(st);
        return rows ? status : MESH_EXIT_RUNTIME;
    }
    struct mesh_buf req, resp;
    mesh_buf_init(&req, 16u << 20);
    mesh_buf_init(&resp, 64u << 20);
    status = pack_top_req(rm, opts, &req) == 0
                 ? query(rm, prog, "/mesh.tap.v1.Query/Top", &req, &resp)
                 : MESH_EXIT_RUNTIME;
    Mesh__Tap__V1__TopResponse *r = NULL;
    if (status == MESH_EXIT_OK &&
        (r = mesh__tap__v1__top_response__unpack(NULL, resp.len, (uint8_t *)resp.data)) == NULL) {
        fprintf(stderr, "mesh %s: %s: not a TopResponse\n", prog, rm->collector);
        status = MESH_EXIT_RUNTIME;
    }
    if (r != NULL) {
        struct mesh_top_row *rows = top_rows_pb(r);
        if (rows != NULL)
            mesh_top_print(stdout, rows, r->n_rows, opts, 0);
        free(rows);
        mesh__tap__v1__top_response__free_unpacked(r, NULL);
    }
    mesh_buf_free(&req);
    mesh_buf_free(&resp);
    return status;
}

/* --- live: stat --watch and top, re-queried every second ------------------------------------------ *
 *
 * The screens ask Query.Stat/Top (or the store) again every second rather
 * than aggregate the Watch stream: the store answers from its rollups in a
 * millisecond or two whatever the event rate, the numbers are those of the
 * plain snapshot for the same window, and nothing is undercounted when a
 * Watch subscriber falls behind (the collector drops what does not fit its
 * queue). A query is asynchronous on the screen's loop, one at a time, so
 * keys stay answered while the collector is slow.
 */

struct live {
    const struct mesh_remote *rm;
    const char *prog;
    const struct mesh_stat_opts *sopts;     /* stat --watch, or */
    const struct mesh_top_opts *topts;      /* top */
    struct mesh_ui *ui;
    struct mesh_store *store;
    struct mesh_grpc_client *client;
    struct mesh_grpc_call *call;            /* the query in flight */
    struct mesh_buf req;
    int answered;                           /* once: later failures stay on screen */
    char error[512], window[96];
    uint64_t refreshed_us, over_cap;
};

static void live_fail(struct live *lv, const char *why)
{
    snprintf(lv->error, sizeof(lv->error), "%.500s", why);
    if (!lv->answered) { /* never worked: an error, as the plain output's */
        char line[640];
        snprintf(line, sizeof(line), "mesh %s: %s", lv->prog, why);
        mesh_ui_stop(lv->ui, MESH_EXIT_RUNTIME, line);
    }
}

static void live_answered(struct live *lv)
{
    lv->answered = 1;
    lv->error[0] = '\0';
    lv->refreshed_us = mesh_wall_now_us();
}

static void live_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct live *lv = ctx;
    if (lv->sopts != NULL) {
        Mesh__Tap__V1__StatResponse *r = mesh__tap__v1__stat_response__unpack(NULL, len, msg);
        struct mesh_stat_row *rows = r ? stat_rows_pb(r) : NULL;
        if (rows != NULL) {
            mesh_stat_ui_rows(lv->ui, rows, r->n_rows, lv->sopts->output);
            live_answered(lv);
        }
        free(rows);
        if (r != NULL)
            mesh__tap__v1__stat_response__free_unpacked(r, NULL);
        else
            live_fail(lv, "not a StatResponse");
        return;
    }
    Mesh__Tap__V1__TopResponse *r = mesh__tap__v1__top_response__unpack(NULL, len, msg);
    struct mesh_top_row *rows = r ? top_rows_pb(r) : NULL;
    if (rows != NULL) {
        mesh_top_ui_rows(lv->ui, rows, r->n_rows, lv->topts);
        live_answered(lv);
    }
    free(rows);
    if (r != NULL)
        mesh__tap__v1__top_response__free_unpacked(r, NULL);
    else
        live_fail(lv, "not a TopResponse");
}

static void live_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct live *lv = ctx;
    lv->call = NULL;
    if (status != MESH_GRPC_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s: %s%s%s", lv->rm->collector, mesh_grpc_status_name(status),
                 message && *message ? ": " : "", message ? message : "");
        live_fail(lv, why);
    }
}

static void live_lost(struct mesh_grpc_client *client, const char *why, void *ctx)
{
    live_fail(ctx, why); /* reconnected at the next tick */
}

static const struct mesh_grpc_client_cbs live_cbs = {.on_message = live_message,
                                                     .on_close = live_close};

static void live_db(struct live *lv)
{
    uint64_t now = mesh_wall_now_us();
    if (lv->sopts != NULL) {
        const struct mesh_stat_opts *o = lv->sopts;
        struct mesh_store_stat_req req = {.resources = o->res, .nresources = o->nres,
                                          .from = o->from, .to = o->to,
                                          .window = store_window(lv->rm)};
        struct mesh_store_stat_result res;
        if (mesh_store_stat(lv->store, &req, now, &res) != 0) {
            live_fail(lv, mesh_store_errmsg(lv->store));
            return;
        }
        struct mesh_stat_row *rows = stat_rows_db(&res);
        if (rows != NULL) {
            mesh_stat_ui_rows(lv->ui, rows, res.nrows, o->output);
            live_answered(lv);
            lv->over_cap = res.over_cap;
        }
        free(rows);
        mesh_store_stat_result_free(&res);
        return;
    }
    struct mesh_store_top_req req = {.filter = lv->topts->filter, .window = store_window(lv->rm),
                                     .hide_sources = lv->topts->hide_sources};
    struct mesh_store_top_result res;
    if (mesh_store_top(lv->store, &req, now, &res) != 0) {
        live_fail(lv, mesh_store_errmsg(lv->store));
        return;
    }
    struct mesh_top_row *rows = top_rows_db(&res);
    if (rows != NULL) {
        mesh_top_ui_rows(lv->ui, rows, res.nrows, lv->topts);
        live_answered(lv);
        lv->over_cap = res.over_cap;
    }
    free(rows);
    mesh_store_top_result_free(&res);
}

static void live_tick(struct mesh_ui *ui, void *ctx)
{
    struct live *lv = ctx;
    char err[512];
    if (lv->store != NULL) {
        live_db(lv);
        return;
    }
    if (lv->call != NULL)
        return; /* the last one has not answered yet: no pile-up */
    if (lv->client == NULL) {
        struct mesh_grpc_client_opts copts = {.on_lost = live_lost, .ctx = lv};
        lv->client = mesh_grpc_client_new(mesh_ui_loop(ui), lv->rm->collector, &copts, err,
                                          sizeof(err));
        if (lv->client == NULL) {
            live_fail(lv, err);
            return;
        }
    } else if (mesh_grpc_client_state(lv->client) == MESH_GRPC_DISCONNECTED) {
        mesh_grpc_client_reconnect(lv->client);
    }
    lv->call = mesh_grpc_client_call(lv->client,
                                     lv->sopts ? "/mesh.tap.v1.Query/Stat" : "/mesh.tap.v1.Query/Top",
                                     &live_cbs, QUERY_TIMEOUT_MS, lv);
    if (lv->call != NULL) {
        mesh_grpc_call_send(lv->call, lv->req.data, lv->req.len);
        mesh_grpc_call_close_send(lv->call);
    }
}

static void live_status(struct mesh_ui *ui, char *buf, size_t len, void *ctx)
{
    const struct live *lv = ctx;
    char when[16] = "-", cut[64] = "";
    if (lv->refreshed_us) {
        time_t secs = (time_t)(lv->refreshed_us / 1000000u);
        struct tm tm;
        localtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
    }
    uint64_t over = lv->over_cap + mesh_ui_cut(ui);
    if (over)
        snprintf(cut, sizeof(cut), "  %llu not shown (row cap)", (unsigned long long)over);
    snprintf(buf, len, "%s  %s  %s%s%s", lv->rm->db ? lv->rm->db : lv->rm->collector, lv->window,
             lv->error[0] ? "error: " : "updated ", lv->error[0] ? lv->error : when, cut);
}

static void describe_window(const struct mesh_remote *rm, char *buf, size_t len)
{
    if (rm->last_us) {
        uint64_t s = rm->last_us / 1000000u;
        if (s % 3600 == 0)
            snprintf(buf, len, "last %lluh", (unsigned long long)(s / 3600));
        else if (s % 60 == 0)
            snprintf(buf, len, "last %llum", (unsigned long long)(s / 60));
        else
            snprintf(buf, len, "last %llus", (unsigned long long)s);
    } else if (rm->until_us) {
        snprintf(buf, len, "since %.0f until %.0f", (double)rm->since_us / 1e6,
                 (double)rm->until_us / 1e6);
    } else {
        snprintf(buf, len, "since %.0f", (double)rm->since_us / 1e6);
    }
}

static int live_run(const struct mesh_remote *rm, const char *prog,
                    const struct mesh_stat_opts *sopts, const struct mesh_top_opts *topts)
{
    struct live lv = {.rm = rm, .prog = prog, .sopts = sopts, .topts = topts};
    struct mesh_ui_opts o = {.title = sopts ? "mesh stat --watch" : "mesh top", .tick_ms = 1000,
                             .on_tick = live_tick, .status = live_status, .ctx = &lv};
    char err[512];
    int status;
    if (sopts != NULL) {
        o.cols = mesh_stat_ui_cols(sopts->output, &o.ncols);
        o.sort = -1; /* as the plain table: type, namespace, name */
    } else {
        o.cols = mesh_top_ui_cols(topts, &o.ncols, &o.sort);
    }
    describe_window(rm, lv.window, sizeof(lv.window));
    mesh_buf_init(&lv.req, 16u << 20);
    if (rm->db != NULL) {
        if ((lv.store = open_db(rm, prog)) == NULL) {
            mesh_buf_free(&lv.req);
            return MESH_EXIT_USAGE;
        }
    } else if ((sopts ? pack_stat_req(rm, sopts, &lv.req) : pack_top_req(rm, topts, &lv.req)) != 0) {
        mesh_buf_free(&lv.req);
        return MESH_EXIT_RUNTIME;
    }
    signal(SIGPIPE, SIG_IGN);
    if ((lv.ui = mesh_ui_open(&o, err, sizeof(err))) == NULL) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        status = MESH_EXIT_RUNTIME;
    } else {
        status = mesh_ui_run(lv.ui);
        if (lv.call != NULL)
            mesh_grpc_call_cancel(lv.call);
        mesh_grpc_client_free(lv.client); /* before the loop it lives on */
        mesh_ui_close(lv.ui);
    }
    mesh_store_close(lv.store);
    mesh_buf_free(&lv.req);
    return status;
}

/* --watch without a terminal (or -o json): the plain output again every
 * second, until SIGINT/SIGTERM; a failed query ends it. */
struct watch_plain {
    const struct mesh_remote *rm;
    const char *prog;
    const struct mesh_stat_opts *opts;
    int status;
};

static int watch_plain_tick(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct watch_plain *wp = ctx;
    if (id > 0 && wp->opts->output != MESH_OUT_JSON)
        fputc('\n', stdout); /* tables apart */
    wp->status = wp->rm->db ? stat_db(wp->rm, wp->prog, wp->opts)
                            : stat_collector(wp->rm, wp->prog, wp->opts);
    fflush(stdout);
    if (wp->status != MESH_EXIT_OK) {
        mesh_loop_stop(loop);
        return MESH_TIMER_DONE;
    }
    return 1000;
}

static void watch_plain_signal(struct mesh_loop *loop, int signo, void *ctx)
{
    mesh_loop_stop(loop);
}

static int watch_plain(const struct mesh_remote *rm, const char *prog,
                       const struct mesh_stat_opts *opts)
{
    struct watch_plain wp = {.rm = rm, .prog = prog, .opts = opts};
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL)
        return MESH_EXIT_RUNTIME;
    signal(SIGPIPE, SIG_IGN);
    mesh_loop_on_signal(loop, SIGINT, watch_plain_signal, &wp);
    mesh_loop_on_signal(loop, SIGTERM, watch_plain_signal, &wp);
    if (watch_plain_tick(loop, 0, &wp) == 1000) {
        mesh_loop_add_timer(loop, 1000, watch_plain_tick, &wp);
        mesh_loop_run(loop);
    }
    mesh_loop_free(loop);
    return wp.status;
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
        struct mesh_header headers[MESH_EVT_HEADERS_MAX];
        mesh_evt_from_pb(we->event, &evt, headers);
        if (w->tap->ui != NULL) {
            mesh_ui_count_events(w->tap->ui, 1);
            mesh_ui_touch(w->tap->ui); /* counters move even when no line is added */
        }
        if (mesh_tap_add(w->tap, &evt) && w->tap->out != NULL)
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

/* With a screen, the window's events from a store fill it, then it stays
 * until q; live events come as they arrive. */
static int tap_db(const struct mesh_remote *rm, const char *prog, struct mesh_tap *tap)
{
    char err[512];
    struct mesh_store *st = open_db(rm, prog);
    if (st == NULL)
        return MESH_EXIT_USAGE;
    if (tap->opts.live && mesh_tap_ui_open(tap, rm->db, err, sizeof(err)) == NULL) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        mesh_store_close(st);
        return MESH_EXIT_RUNTIME;
    }
    struct mesh_store_window window = store_window(rm);
    int rv = mesh_store_events(st, &tap->opts.filter, &window, mesh_wall_now_us(), 0, 0, tap_db_event, tap);
    snprintf(err, sizeof(err), "mesh %s: %s: %s", prog, rm->db, rv ? mesh_store_errmsg(st) : "");
    mesh_store_close(st);
    if (tap->ui != NULL) {
        if (rv == 0)
            mesh_ui_run(tap->ui);
        mesh_ui_close(tap->ui);
        tap->ui = NULL;
    }
    if (rv != 0)
        fprintf(stderr, "%s\n", err);
    return rv ? MESH_EXIT_RUNTIME : MESH_EXIT_OK;
}

int mesh_remote_tap(const struct mesh_remote *rm, const char *prog, struct mesh_tap *tap)
{
    if (rm->db != NULL)
        return tap_db(rm, prog, tap);
    struct watch w = {.tap = tap, .status = -1};
    char err[512];
    int status = MESH_EXIT_OK;
    signal(SIGPIPE, SIG_IGN);
    if (tap->opts.live) {
        if (mesh_tap_ui_open(tap, rm->collector, err, sizeof(err)) == NULL) {
            fprintf(stderr, "mesh %s: %s\n", prog, err);
            return MESH_EXIT_RUNTIME;
        }
        w.loop = mesh_ui_loop(tap->ui); /* the screen's signals: q and Ctrl-C end it */
    } else if ((w.loop = mesh_loop_new()) == NULL) {
        return MESH_EXIT_RUNTIME;
    }
    struct mesh_grpc_client_opts copts = {.on_lost = watch_lost, .ctx = &w};
    struct mesh_grpc_client *client = mesh_grpc_client_new(w.loop, rm->collector, &copts, err, sizeof(err));
    struct mesh_grpc_call *call = NULL;
    struct mesh_buf reqb;
    mesh_buf_init(&reqb, 1u << 20);
    if (client == NULL) {
        snprintf(w.why, sizeof(w.why), "%.250s", err);
        status = MESH_EXIT_USAGE;
        goto out;
    }
    Mesh__Tap__V1__WatchRequest req = MESH__TAP__V1__WATCH_REQUEST__INIT;
    struct pb_filter filter;
    filter_pb(&tap->opts.filter, &filter);
    req.filter = &filter.msg;
    req.has_max_rps = tap->opts.max_rps > 0;
    req.max_rps = tap->opts.max_rps;
    call = mesh_grpc_client_call(client, "/mesh.tap.v1.Query/Watch", &watch_cbs, 0, &w);
    if (call != NULL && pack(&req.base, &reqb) == 0) {
        mesh_grpc_call_send(call, reqb.data, reqb.len);
        mesh_grpc_call_close_send(call);
    }
    if (tap->ui != NULL) {
        mesh_ui_run(tap->ui);
    } else {
        mesh_loop_on_signal(w.loop, SIGINT, watch_signal, &w);
        mesh_loop_on_signal(w.loop, SIGTERM, watch_signal, &w);
        mesh_loop_run(w.loop);
    }
    if (w.status > 0) {
        const char *why = w.why;
        size_t alen = strlen(rm->collector);
        if (strncmp(why, rm->collector, alen) == 0 && strncmp(why + alen, ": ", 2) == 0)
            why += alen + 2; /* it names the address already */
        snprintf(err, sizeof(err), "%s: %s", rm->collector, why);
        snprintf(w.why, sizeof(w.why), "%.250s", err);
        status = MESH_EXIT_RUNTIME;
    }
    if (w.status < 0 && call != NULL)
        mesh_grpc_call_cancel(call); /* interrupted: the call is still ours */
out:
    mesh_buf_free(&reqb);
    mesh_grpc_client_free(client);
    if (tap->ui != NULL) {
        mesh_ui_close(tap->ui); /* the terminal is back before the error line */
        tap->ui = NULL;
    } else {
        mesh_loop_free(w.loop);
    }
    if (status != MESH_EXIT_OK)
        fprintf(stderr, "mesh %s: %s\n", prog, w.why);
    return status;
}
