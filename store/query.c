/* Stat, top and events over a store.
 *
 * Stat and top read rollups: whole minutes from the _1m tables, the seconds
 * either side from rollup_1s (stat) or the 10-second steps from route_10s
 * (top), then the raw rows above the rollup mark
 * (none after a flush; a read-only reader may see some). Each rollup row is
 * turned into a partial struct mesh_evt (labels, authority, method, path) so
 * that resource and filter matching is lib/'s own, as in stat/ and top/. */
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "mesh/strmap.h"
#include "store_int.h"

/* --- windows ------------------------------------------------------------------ */

struct qwin {
    int64_t s0, s1;           /* whole seconds [s0, s1), multiples of |g| */
    int64_t g;                /* 1 for stat, ROUTE_FINE_SECS for top */
    int lo_open, hi_open;     /* an end the request left open */
};

/* The first multiple of |g| seconds at or after |us|. */
static int64_t ceil_to(uint64_t us, int64_t g)
{
    uint64_t step = (uint64_t)g * 1000000u;
    return (int64_t)((us + step - 1) / step) * g;
}

static int64_t floor_to(int64_t sec, int64_t g)
{
    return sec - sec % g;
}

static void window_secs(struct mesh_store *st, const struct mesh_store_window *w, uint64_t now,
                        int64_t g, struct qwin *q)
{
    memset(q, 0, sizeof(*q));
    q->g = g;
    if (w->last_us) {
        q->s0 = ceil_to(now > w->last_us ? now - w->last_us : 0, g);
        q->s1 = ceil_to(now, g);
        return;
    }
    q->lo_open = w->since_us == 0;
    q->hi_open = w->until_us == 0;
    q->s0 = q->lo_open ? floor_to(store_int_query(st, S_EXT_MIN, 0), g) : ceil_to(w->since_us, g);
    q->s1 = q->hi_open ? floor_to(store_int_query(st, S_EXT_MAX, -1), g) + g
                       : ceil_to(w->until_us, g);
}

/* Binds the three ranges of S_SCAN_R / S_SCAN_T. */
static void bind_ranges(sqlite3_stmt *s, const struct qwin *q)
{
    int64_t m0 = (q->s0 + 59) / 60 * 60, m1 = q->s1 / 60 * 60;
    int64_t r[6] = {q->s0, q->s1, 0, 0, 0, 0};
    if (m0 < m1) {
        r[1] = m0;
        r[2] = m0;
        r[3] = m1;
        r[4] = m1;
        r[5] = q->s1;
    }
    for (int i = 0; i < 6; i++)
        sqlite3_bind_int64(s, i + 1, r[i]);
}

/* Tail rows (above the rollup mark) inside the window; an open end takes
 * them all and widens the window to them. */
static int tail_in_window(struct qwin *q, const struct mesh_evt *e)
{
    int64_t sec = (int64_t)(e->ts_us / 1000000u);
    if ((!q->lo_open && sec < q->s0) || (!q->hi_open && sec >= q->s1))
        return 0;
    if (q->lo_open && sec < q->s0)
        q->s0 = floor_to(sec, q->g);
    if (q->hi_open && sec >= q->s1)
        q->s1 = floor_to(sec, q->g) + q->g;
    return 1;
}

static const char *nz(sqlite3_stmt *s, int col)
{
    const char *v = (const char *)sqlite3_column_text(s, col);
    return v == NULL || v[0] == '\0' ? NULL : v;
}

/* The columns both scans start with: sec, direction, labels, authority. */
static void rollup_view(sqlite3_stmt *s, struct mesh_evt *e)
{
    mesh_evt_init(e);
    const char *dir = nz(s, 1);
    e->direction = dir ? mesh_direction_parse(dir) : MESH_DIR_UNSPEC;
    e->src_labels.ns = nz(s, 2);
    e->src_labels.deploy = nz(s, 3);
    e->src_labels.pod = nz(s, 4);
    e->dst_labels.ns = nz(s, 5);
    e->dst_labels.deploy = nz(s, 6);
    e->dst_labels.pod = nz(s, 7);
    e->authority = nz(s, 8);
}

static int64_t opt_col(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, col);
}

/* --- stat -------------------------------------------------------------------- */

#define SROW_MAX_PODS 256 /* meshed pods told apart per row; more count as this */

struct srow {
    enum mesh_rtype type;
    size_t nslen;                   /* the key is "T\x1fNS\x1fNAME" */
    uint64_t requests, failures, req_bytes, rsp_bytes;
    struct shist hist;
    struct cunion conns;
    uint64_t *pods;                 /* hashes of the meshed pods seen, unsorted */
    uint32_t npods;
};

/* What one rollup row or one raw event adds to a row. */
struct contrib {
    uint64_t requests, failures, req_bytes, rsp_bytes;
    const void *hist;               /* rollup: blob, min, max */
    size_t hist_len;
    int64_t lat_min, lat_max;
    int64_t latency;                /* raw: one latency, -1 none */
    const void *conns;              /* rollup: blob */
    size_t conns_len;
    uint64_t conn;                  /* raw: one connection hash, 0 none */
};

struct stat_ctx {
    struct mesh_store *st;
    const struct mesh_store_stat_req *req;
    struct mesh_strmap rows;
    uint64_t over_cap;
    char *key;
    size_t key_alloc;
    int err;
};

/* Notes that |pod| (a proxy's own pod) serves the workload of row |r|. */
static int srow_pod(struct srow *r, const char *pod)
{
    if (pod == NULL || r->npods >= SROW_MAX_PODS)
        return 0;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)pod; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    for (uint32_t i = 0; i < r->npods; i++)
        if (r->pods[i] == h)
            return 0;
    if ((r->npods & (r->npods - 1)) == 0) { /* 0, 1, 2, 4, …: grow */
        uint64_t *p = realloc(r->pods, (r->npods ? r->npods * 2 : 1) * sizeof(*p));
        if (p == NULL)
            return MESH_ENOMEM;
        r->pods = p;
    }
    r->pods[r->npods++] = h;
    return 0;
}

/* The pod of the proxy that reported |e|, NULL for captures. */
static const char *proxy_pod(const struct mesh_evt *e)
{
    if (e->direction == MESH_DIR_INBOUND)
        return e->dst_labels.pod;
    return e->direction == MESH_DIR_OUTBOUND ? e->src_labels.pod : NULL;
}

static void stat_count(struct stat_ctx *c, const struct mesh_evt *e, enum mesh_rtype type,
                       int src_side, const struct contrib *k)
{
    const char *name = mesh_resource_of(e, type, src_side);
    const char *ns = type == MESH_RT_AUTH || type == MESH_RT_NS
                         ? ""
                         : (src_side ? e->src_labels.ns : e->dst_labels.ns);
    if (ns == NULL)
        ns = "";
    size_t nslen = strlen(ns), namelen = strlen(name), need = nslen + namelen + 4;
    if (need > c->key_alloc) {
        char *p = realloc(c->key, need * 2);
        if (p == NULL) {
            c->err = MESH_ENOMEM;
            return;
        }
        c->key = p;
        c->key_alloc = need * 2;
    }
    c->key[0] = (char)('0' + type);
    c->key[1] = '\x1f';
    memcpy(c->key + 2, ns, nslen);
    c->key[2 + nslen] = '\x1f';
    memcpy(c->key + 3 + nslen, name, namelen + 1);
    int created;
    struct srow *r = mesh_strmap_get(&c->rows, c->key, &created);
    if (r == NULL) {
        if (c->rows.n < c->rows.max)
            c->err = MESH_ENOMEM;
        c->over_cap += k->requests;
        return;
    }
    if (created) {
        r->type = type;
        r->nslen = nslen;
        shist_init(&r->hist);
    }
    r->requests += k->requests;
    r->failures += k->failures;
    r->req_bytes += k->req_bytes;
    r->rsp_bytes += k->rsp_bytes;
    int rv = srow_pod(r, proxy_pod(e));
    if (rv == 0 && k->hist != NULL)
        rv = shist_merge_blob(&r->hist, k->hist, k->hist_len, k->lat_min, k->lat_max);
    else if (rv == 0 && k->latency >= 0)
        rv = shist_add(&r->hist, (uint64_t)k->latency);
    if (rv == 0 && k->conns != NULL)
        rv = cunion_merge_blob(&r->conns, k->conns, k->conns_len);
    else if (rv == 0 && k->conn != 0)
        rv = cunion_add(&r->conns, k->conn);
    if (rv != 0)
        c->err = rv;
}

/* stat/stat.c's mesh_stat_add, for a row of events at once */
static void stat_feed(struct stat_ctx *c, const struct mesh_evt *e, const struct contrib *k)
{
    const struct mesh_store_stat_req *q = c->req;
    int by_src = q->to.type != MESH_RT_NONE;
    if (e->direction == (by_src ? MESH_DIR_INBOUND : MESH_DIR_OUTBOUND)) {
        /* Not counted here; but the caller's proxy says its workload is
         * meshed, and one that only calls others has no other way in. */
        static const struct contrib none = {.latency = -1};
        if (by_src || q->from.type != MESH_RT_NONE)
            return;
        for (size_t i = 0; i < q->nresources; i++)
            if (q->resources[i].type != MESH_RT_AUTH && mesh_resource_match(&q->resources[i], e, 1))
                stat_count(c, e, q->resources[i].type, 1, &none);
        return;
    }
    if (by_src && !mesh_resource_match(&q->to, e, 0))
        return;
    if (q->from.type != MESH_RT_NONE && !mesh_resource_match(&q->from, e, 1))
        return;
    for (size_t i = 0; i < q->nresources; i++)
        if (mesh_resource_match(&q->resources[i], e, by_src))
            stat_count(c, e, q->resources[i].type, by_src, k);
}

static int cmp_srows(const void *a, const void *b)
{
    const struct mesh_strmap_entry *x = *(struct mesh_strmap_entry *const *)a;
    const struct mesh_strmap_entry *y = *(struct mesh_strmap_entry *const *)b;
    const struct srow *rx = x->val, *ry = y->val;
    int c = (int)rx->type - (int)ry->type;
    if (c == 0) {
        size_t n = rx->nslen < ry->nslen ? rx->nslen : ry->nslen;
        c = memcmp(x->key + 2, y->key + 2, n);
        if (c == 0)
            c = (rx->nslen > ry->nslen) - (rx->nslen < ry->nslen);
    }
    return c ? c : strcmp(x->key + 3 + rx->nslen, y->key + 3 + ry->nslen);
}

/* Queries flush first, so that the raw tail they read is empty unless
 * another process wrote the rows (a read-only reader), and read in one
 * transaction: the rollup mark, the rollups and the rows above the mark
 * from one snapshot, or a concurrent flush would count rows twice.
 * Returns the mark, or -1 after a failure (errmsg set). */
static int64_t query_begin(struct mesh_store *st, int *began)
{
    *began = 0;
    if (!st->opts.readonly && st->acc.events > 0 && store_flush(st) != 0)
        store_txn_lost(st); /* else the rows are read raw instead */
    if (st->in_txn)
        return st->rolled_row;
    if (store_exec(st, S_BEGIN_READ, "beginning a read") != 0)
        return -1;
    *began = 1;
    return st->opts.readonly ? store_int_query(st, S_META_GET, 0) : st->rolled_row;
}

static void query_end(struct mesh_store *st, int began)
{
    if (began) {
        sqlite3_step(st->stmt[S_COMMIT]);
        sqlite3_reset(st->stmt[S_COMMIT]);
    }
}

int mesh_store_stat(struct mesh_store *st, const struct mesh_store_stat_req *req,
                    uint64_t now_us, struct mesh_store_stat_result *res)
{
    struct stat_ctx c = {.st = st, .req = req};
    struct qwin q;
    int rc, rv = 0;
    memset(res, 0, sizeof(*res));
    mesh_strmap_init(&c.rows, sizeof(struct srow), MESH_STORE_STAT_MAX_ROWS);
    int began;
    int64_t mark = query_begin(st, &began);
    if (mark < 0)
        return MESH_EIO;
    window_secs(st, &req->window, now_us, 1, &q);

    sqlite3_stmt *s = st->stmt[S_SCAN_R];
    bind_ranges(s, &q);
    while (c.err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mesh_evt e;
        rollup_view(s, &e);
        struct contrib k = {
            .requests = (uint64_t)sqlite3_column_int64(s, 9),
            .failures = (uint64_t)sqlite3_column_int64(s, 10),
            .lat_min = opt_col(s, 11),
            .lat_max = opt_col(s, 12),
            .hist = sqlite3_column_blob(s, 13),
            .hist_len = (size_t)sqlite3_column_bytes(s, 13),
            .req_bytes = (uint64_t)sqlite3_column_int64(s, 14),
            .rsp_bytes = (uint64_t)sqlite3_column_int64(s, 15),
            .conns = sqlite3_column_blob(s, 16),
            .conns_len = (size_t)sqlite3_column_bytes(s, 16),
            .latency = -1,
        };
        stat_feed(&c, &e, &k);
    }
    sqlite3_reset(s);
    if (c.err == 0 && rc != SQLITE_DONE)
        rv = store_sqlite_err(st, rc, "reading rollups");

    s = st->stmt[S_TAIL];
    sqlite3_bind_int64(s, 1, mark);
    while (rv == 0 && c.err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mesh_evt e;
        store_row_to_evt(s, &e);
        if (!tail_in_window(&q, &e))
            continue;
        struct contrib k = {
            .requests = 1,
            .failures = (uint64_t)mesh_evt_failed(&e),
            .req_bytes = e.req_bytes,
            .rsp_bytes = e.rsp_bytes,
            .latency = e.latency_us,
            .conn = store_conn_hash((const char *)sqlite3_column_text(s, EC_SENDER), e.id),
        };
        stat_feed(&c, &e, &k);
    }
    sqlite3_reset(s);
    if (rv == 0 && c.err == 0 && rc != SQLITE_DONE)
        rv = store_sqlite_err(st, rc, "reading events");
    if (rv == 0 && c.err != 0)
        rv = store_set_err(st, c.err, "out of memory");
    query_end(st, began);

    if (q.s1 <= q.s0)
        q.s1 = q.s0 + 1;
    double secs = (double)(q.s1 - q.s0);
    res->since_us = (uint64_t)q.s0 * 1000000u;
    res->until_us = (uint64_t)q.s1 * 1000000u;
    res->over_cap = c.over_cap;
    if (rv == 0 && c.rows.n > 0) {
        size_t total = 0;
        qsort(c.rows.order, c.rows.n, sizeof(*c.rows.order), cmp_srows);
        for (size_t i = 0; i < c.rows.n; i++)
            total += strlen(c.rows.order[i]->key) + 1;
        res->rows = calloc(c.rows.n, sizeof(*res->rows));
        res->strings = malloc(total);
        if (res->rows == NULL || res->strings == NULL) {
            rv = store_set_err(st, MESH_ENOMEM, "out of memory");
        } else {
            char *p = res->strings;
            for (size_t i = 0; i < c.rows.n; i++) {
                const struct mesh_strmap_entry *ent = c.rows.order[i];
                const struct srow *r = ent->val;
                struct mesh_store_stat_row *out = &res->rows[i];
                out->type = r->type;
                out->ns = p;
                memcpy(p, ent->key + 2, r->nslen);
                p += r->nslen;
                *p++ = '\0';
                out->name = p;
                size_t nlen = strlen(ent->key + 3 + r->nslen) + 1;
                memcpy(p, ent->key + 3 + r->nslen, nlen);
                p += nlen;
                out->requests = r->requests;
                out->failures = r->failures;
                out->rps = (double)r->requests / secs;
                out->latency_p50_us = shist_quantile(&r->hist, 0.5);
                out->latency_p95_us = shist_quantile(&r->hist, 0.95);
                out->latency_p99_us = shist_quantile(&r->hist, 0.99);
                out->tcp_conn = cunion_count(&r->conns);
                out->tcp_conn_estimated = r->conns.hll != NULL;
                out->read_bytes_per_sec = (double)r->req_bytes / secs;
                out->write_bytes_per_sec = (double)r->rsp_bytes / secs;
                out->meshed_pods = r->npods;
            }
            res->nrows = c.rows.n;
        }
    }
    for (size_t i = 0; i < c.rows.n; i++) {
        struct srow *r = c.rows.order[i]->val;
        free(r->pods);
        shist_free(&r->hist);
        cunion_free(&r->conns);
    }
    mesh_strmap_free(&c.rows);
    free(c.key);
    if (rv != 0)
        mesh_store_stat_result_free(res);
    return rv;
}

void mesh_store_stat_result_free(struct mesh_store_stat_result *res)
{
    if (res == NULL)
        return;
    free(res->rows);
    free(res->strings);
    memset(res, 0, sizeof(*res));
}

/* --- top ---------------------------------------------------------------------- */

struct trow {
    size_t srclen, dstlen, methodlen;   /* the key is "SRC\x1fDST\x1fMETHOD\x1fPATH" */
    uint64_t count, failures;
    int64_t best, worst, last, last_ts;
};

struct top_ctx {
    const struct mesh_store_top_req *req;
    struct mesh_strmap rows;
    uint64_t over_cap;
    char *key;
    size_t key_alloc;
    int err;
};

/* top/top.c's mesh_top_add. |src_ip| is the source as top shows an
 * unlabelled client (rollups store it so already). */
static void top_feed(struct top_ctx *c, const struct mesh_evt *e, const char *src_ip,
                     uint64_t count, uint64_t failures, int64_t best, int64_t worst,
                     int64_t last_ts, int64_t last)
{
    if (e->direction == MESH_DIR_OUTBOUND || !mesh_filter_match(&c->req->filter, e))
        return;
    const char *src = c->req->hide_sources   ? "-"
                      : e->src_labels.deploy ? e->src_labels.deploy
                      : e->src_labels.pod    ? e->src_labels.pod
                      : src_ip               ? src_ip
                                             : "";
    const char *dst = e->dst_labels.deploy ? e->dst_labels.deploy
                      : e->authority       ? e->authority
                      : e->dst             ? e->dst
                                           : "-";
    const char *method = e->method ? e->method : "-", *path = e->path ? e->path : "-";
    size_t ls = strlen(src), ld = strlen(dst), lm = strlen(method), lp = strlen(path);
    size_t need = ls + ld + lm + lp + 4;
    if (need > c->key_alloc) {
        char *p = realloc(c->key, need * 2);
        if (p == NULL) {
            c->err = MESH_ENOMEM;
            return;
        }
        c->key = p;
        c->key_alloc = need * 2;
    }
    char *p = c->key;
    memcpy(p, src, ls);
    p += ls;
    *p++ = '\x1f';
    memcpy(p, dst, ld);
    p += ld;
    *p++ = '\x1f';
    memcpy(p, method, lm);
    p += lm;
    *p++ = '\x1f';
    memcpy(p, path, lp + 1);
    int created;
    struct trow *r = mesh_strmap_get(&c->rows, c->key, &created);
    if (r == NULL) {
        if (c->rows.n < c->rows.max)
            c->err = MESH_ENOMEM;
        c->over_cap += count;
        return;
    }
    if (created) {
        r->srclen = ls;
        r->dstlen = ld;
        r->methodlen = lm;
        r->best = r->worst = r->last = r->last_ts = -1;
    }
    r->count += count;
    r->failures += failures;
    if (best >= 0 && (r->best < 0 || best < r->best))
        r->best = best;
    if (worst > r->worst)
        r->worst = worst;
    if (last_ts >= 0 && last_ts >= r->last_ts) {
        r->last_ts = last_ts;
        r->last = last;
    }
}

static void top_feed_event(struct top_ctx *c, const struct mesh_evt *e)
{
    char ip[128];
    store_ip_only(ip, sizeof(ip), e->src);
    int64_t lat = e->latency_us;
    top_feed(c, e, e->src ? ip : NULL, 1, (uint64_t)mesh_evt_failed(e), lat, lat,
             lat >= 0 ? (int64_t)e->ts_us : -1, lat);
}

static const char *trow_part(const struct mesh_strmap_entry *ent, int which, size_t *len)
{
    const struct trow *r = ent->val;
    const char *k = ent->key;
    switch (which) {
    case 0: *len = r->srclen; return k;
    case 1: *len = r->dstlen; return k + r->srclen + 1;
    case 2: *len = r->methodlen; return k + r->srclen + r->dstlen + 2;
    default: {
        const char *path = k + r->srclen + r->dstlen + r->methodlen + 3;
        *len = strlen(path);
        return path;
    }
    }
}

static int cmp_part(const struct mesh_strmap_entry *x, const struct mesh_strmap_entry *y, int which)
{
    size_t lx, ly;
    const char *px = trow_part(x, which, &lx), *py = trow_part(y, which, &ly);
    int c = memcmp(px, py, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* top/top.c's order by count: most first, then path, source, destination;
 * then method, which top/ leaves to qsort */
static int cmp_trows(const void *a, const void *b)
{
    const struct mesh_strmap_entry *x = *(struct mesh_strmap_entry *const *)a;
    const struct mesh_strmap_entry *y = *(struct mesh_strmap_entry *const *)b;
    const struct trow *rx = x->val, *ry = y->val;
    int c = (ry->count > rx->count) - (ry->count < rx->count);
    if (c == 0)
        c = cmp_part(x, y, 3);
    if (c == 0)
        c = cmp_part(x, y, 0);
    if (c == 0)
        c = cmp_part(x, y, 1);
    return c ? c : cmp_part(x, y, 2);
}

static int top_rollups(struct mesh_store *st, struct top_ctx *c, struct qwin *q, int64_t mark)
{
    int rc, rv = 0;
    sqlite3_stmt *s = st->stmt[S_SCAN_T];
    bind_ranges(s, q);
    while (c->err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mesh_evt e;
        rollup_view(s, &e);
        const char *src_ip = nz(s, 9);
        e.src = src_ip;
        e.dst = nz(s, 10);
        e.method = nz(s, 11);
        e.path = nz(s, 12);
        top_feed(c, &e, src_ip, (uint64_t)sqlite3_column_int64(s, 13),
                 (uint64_t)sqlite3_column_int64(s, 14), opt_col(s, 15), opt_col(s, 16),
                 opt_col(s, 17), opt_col(s, 18));
    }
    sqlite3_reset(s);
    if (c->err == 0 && rc != SQLITE_DONE)
        rv = store_sqlite_err(st, rc, "reading route rollups");
    s = st->stmt[S_TAIL];
    sqlite3_bind_int64(s, 1, mark);
    while (rv == 0 && c->err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mesh_evt e;
        store_row_to_evt(s, &e);
        if (tail_in_window(q, &e))
            top_feed_event(c, &e);
    }
    sqlite3_reset(s);
    if (rv == 0 && c->err == 0 && rc != SQLITE_DONE)
        rv = store_sqlite_err(st, rc, "reading events");
    return rv;
}

/* A status or a minimum latency is not in the rollups: read raw rows. */
static int top_raw(struct mesh_store *st, struct top_ctx *c, const struct qwin *q)
{
    int rc, rv = 0;
    sqlite3_stmt *s = st->stmt[S_EVT_ASC];
    sqlite3_bind_int64(s, 1, q->lo_open ? INT64_MIN : q->s0 * 1000000);
    sqlite3_bind_int64(s, 2, q->hi_open ? INT64_MAX : q->s1 * 1000000);
    while (c->err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mesh_evt e;
        store_row_to_evt(s, &e);
        top_feed_event(c, &e);
    }
    sqlite3_reset(s);
    if (c->err == 0 && rc != SQLITE_DONE)
        rv = store_sqlite_err(st, rc, "reading events");
    return rv;
}

int mesh_store_top(struct mesh_store *st, const struct mesh_store_top_req *req,
                   uint64_t now_us, struct mesh_store_top_result *res)
{
    struct top_ctx c = {.req = req};
    struct qwin q;
    int rv;
    memset(res, 0, sizeof(*res));
    mesh_strmap_init(&c.rows, sizeof(struct trow), MESH_STORE_TOP_MAX_ROWS);
    int began;
    int64_t mark = query_begin(st, &began);
    if (mark < 0)
        return MESH_EIO;
    window_secs(st, &req->window, now_us, ROUTE_FINE_SECS, &q);
    const struct mesh_filter *f = &req->filter;
    res->from_raw = f->status_class != 0 || f->status != 0 || f->min_latency_us != 0;
    rv = res->from_raw ? top_raw(st, &c, &q) : top_rollups(st, &c, &q, mark);
    if (rv == 0 && c.err != 0)
        rv = store_set_err(st, c.err, "out of memory");
    query_end(st, began);
    if (q.s1 <= q.s0)
        q.s1 = q.s0 + q.g;
    res->since_us = (uint64_t)q.s0 * 1000000u;
    res->until_us = (uint64_t)q.s1 * 1000000u;
    res->over_cap = c.over_cap;
    size_t n = c.rows.n, limit = req->limit ? req->limit : MESH_STORE_TOP_MAX_ROWS;
    if (rv == 0 && n > 0) {
        qsort(c.rows.order, n, sizeof(*c.rows.order), cmp_trows);
        if (n > limit)
            n = limit;
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += strlen(c.rows.order[i]->key) + 1;
        res->rows = calloc(n, sizeof(*res->rows));
        res->strings = malloc(total);
        if (res->rows == NULL || res->strings == NULL) {
            rv = store_set_err(st, MESH_ENOMEM, "out of memory");
        } else {
            char *p = res->strings;
            for (size_t i = 0; i < n; i++) {
                const struct mesh_strmap_entry *ent = c.rows.order[i];
                const struct trow *r = ent->val;
                struct mesh_store_top_row *out = &res->rows[i];
                const char **dst[4] = {&out->source, &out->destination, &out->method, &out->path};
                for (int k = 0; k < 4; k++) {
                    size_t len;
                    const char *part = trow_part(ent, k, &len);
                    *dst[k] = p;
                    memcpy(p, part, len);
                    p += len;
                    *p++ = '\0';
                }
                out->count = r->count;
                out->failures = r->failures;
                out->best_us = r->best;
                out->worst_us = r->worst;
                out->last_us = r->last;
            }
            res->nrows = n;
        }
    }
    mesh_strmap_free(&c.rows);
    free(c.key);
    if (rv != 0)
        mesh_store_top_result_free(res);
    return rv;
}

void mesh_store_top_result_free(struct mesh_store_top_result *res)
{
    if (res == NULL)
        return;
    free(res->rows);
    free(res->strings);
    memset(res, 0, sizeof(*res));
}

/* --- events ------------------------------------------------------------------- */

int mesh_store_events(struct mesh_store *st, const struct mesh_filter *filter,
                      const struct mesh_store_window *window, uint64_t now_us, size_t limit,
                      int newest_first, mesh_store_evt_cb cb, void *arg)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    if (window != NULL && window->last_us) {
        lo = now_us > window->last_us ? (int64_t)(now_us - window->last_us) : 0;
        hi = (int64_t)now_us;
    } else if (window != NULL) {
        if (window->since_us)
            lo = (int64_t)window->since_us;
        if (window->until_us)
            hi = (int64_t)window->until_us;
    }
    sqlite3_stmt *s = st->stmt[newest_first ? S_EVT_DESC : S_EVT_ASC];
    sqlite3_bind_int64(s, 1, lo);
    sqlite3_bind_int64(s, 2, hi);
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mesh_evt e;
        store_row_to_evt(s, &e);
        if (filter != NULL && !mesh_filter_match(filter, &e))
            continue;
        if (cb(arg, &e) != 0 || (limit && ++n >= limit)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(st, rc, "reading events");
}
