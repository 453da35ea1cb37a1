#include "stat/stat.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "mesh/fmt.h"
#include "mesh/hist.h"
#include "mesh/strmap.h"

#define STAT_MAX_ROWS 100000
#define STAT_MAX_CONNS 65536

struct row {
    enum mesh_rtype type;
    char ns[128], name[256];
    uint64_t requests, failures;
    uint64_t req_bytes, rsp_bytes;
    struct mesh_hist hist;
    struct mesh_strmap conns;       /* distinct connections, keys only */
    int init;
};

struct mesh_stat {
    struct mesh_stat_opts opts;
    struct mesh_strmap rows;
    struct mesh_window window;
    int many_ns;                    /* rows from more than one namespace */
    char first_ns[128];
};

struct mesh_stat *mesh_stat_new(const struct mesh_stat_opts *opts)
{
    struct mesh_stat *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->opts = *opts;
    mesh_strmap_init(&st->rows, sizeof(struct row), STAT_MAX_ROWS);
    return st;
}

static void count(struct mesh_stat *st, const struct mesh_evt *evt, enum mesh_rtype type,
                  int src_side)
{
    const char *name = mesh_resource_of(evt, type, src_side);
    const char *ns = type == MESH_RT_AUTH || type == MESH_RT_NS
                         ? ""
                         : (src_side ? evt->src_labels.ns : evt->dst_labels.ns);
    char key[512];
    if (ns == NULL)
        ns = "";
    /* "TYPE\x1fNS\x1fNAME", built without printf: this runs once per request */
    size_t nslen = strlen(ns), namelen = strlen(name);
    if (nslen > 120)
        nslen = 120;
    if (namelen > sizeof(key) - nslen - 4)
        namelen = sizeof(key) - nslen - 4;
    key[0] = (char)('0' + type);
    key[1] = '\x1f';
    memcpy(key + 2, ns, nslen);
    key[2 + nslen] = '\x1f';
    memcpy(key + 3 + nslen, name, namelen);
    key[3 + nslen + namelen] = '\0';
    int created;
    struct row *r = mesh_strmap_get(&st->rows, key, &created);
    if (r == NULL)
        return;
    if (created) {
        r->type = type;
        snprintf(r->ns, sizeof(r->ns), "%s", ns);
        snprintf(r->name, sizeof(r->name), "%s", name);
        mesh_hist_init(&r->hist);
        mesh_strmap_init(&r->conns, 1, STAT_MAX_CONNS);
        if (st->rows.n == 1)
            snprintf(st->first_ns, sizeof(st->first_ns), "%s", ns);
        else if (strcmp(st->first_ns, ns) != 0)
            st->many_ns = 1;
    }
    r->requests++;
    r->failures += (uint64_t)mesh_evt_failed(evt);
    r->req_bytes += evt->req_bytes;
    r->rsp_bytes += evt->rsp_bytes;
    if (evt->latency_us >= 0)
        mesh_hist_add(&r->hist, (uint64_t)evt->latency_us);
    if (evt->id != NULL) {
        char conn[64];
        size_t n = strcspn(evt->id, ":");
        if (n > sizeof(conn) - 1)
            n = sizeof(conn) - 1;
        memcpy(conn, evt->id, n);
        conn[n] = '\0';
        mesh_strmap_get(&r->conns, conn, NULL);
    }
}

void mesh_stat_add(struct mesh_stat *st, const struct mesh_evt *evt)
{
    const struct mesh_stat_opts *o = &st->opts;
    int by_src = o->to.type != MESH_RT_NONE;
    if (evt->direction == (by_src ? MESH_DIR_INBOUND : MESH_DIR_OUTBOUND))
        return;
    mesh_window_add(&st->window, evt->ts_us);
    if (evt->duration_us > 0)
        mesh_window_add(&st->window, evt->ts_us + (uint64_t)evt->duration_us);
    if (by_src && !mesh_resource_match(&o->to, evt, 0))
        return;
    if (o->from.type != MESH_RT_NONE && !mesh_resource_match(&o->from, evt, 1))
        return;
    for (size_t i = 0; i < o->nres; i++)
        if (mesh_resource_match(&o->res[i], evt, by_src))
            count(st, evt, o->res[i].type, by_src);
}

static int cmp_rows(const void *a, const void *b)
{
    const struct row *x = (*(struct mesh_strmap_entry *const *)a)->val;
    const struct row *y = (*(struct mesh_strmap_entry *const *)b)->val;
    int c = (int)x->type - (int)y->type;
    if (c == 0)
        c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static void render_json(struct mesh_stat *st, FILE *out, double secs)
{
    struct mesh_buf b;
    mesh_buf_init(&b, (size_t)1 << 30);
    mesh_buf_appends(&b, "[");
    for (size_t i = 0; i < st->rows.n; i++) {
        const struct row *r = st->rows.order[i]->val;
        mesh_buf_appends(&b, i ? ",\n {" : "\n {");
        if (r->ns[0]) {
            mesh_buf_appends(&b, "\"namespace\":");
            mesh_buf_json_str(&b, r->ns, strlen(r->ns));
            mesh_buf_appends(&b, ",");
        }
        mesh_buf_printf(&b, "\"type\":\"%s\",\"name\":", mesh_rtype_name(r->type));
        mesh_buf_json_str(&b, r->name, strlen(r->name));
        mesh_buf_printf(&b,
                        ",\"meshed\":null,\"requests\":%llu,\"failures\":%llu,"
                        "\"success\":%.6f,\"rps\":%.4f",
                        (unsigned long long)r->requests, (unsigned long long)r->failures,
                        (double)(r->requests - r->failures) / (double)r->requests,
                        (double)r->requests / secs);
        static const double qs[] = {0.5, 0.95, 0.99};
        static const char *const qn[] = {"p50", "p95", "p99"};
        for (int q = 0; q < 3; q++) {
            int64_t v = mesh_hist_quantile(&r->hist, qs[q]);
            if (v < 0)
                mesh_buf_printf(&b, ",\"latency_%s_us\":null", qn[q]);
            else
                mesh_buf_printf(&b, ",\"latency_%s_us\":%lld", qn[q], (long long)v);
        }
        mesh_buf_printf(&b,
                        ",\"tcp_conn\":%zu,\"read_bytes_per_sec\":%.1f,"
                        "\"write_bytes_per_sec\":%.1f}",
                        r->conns.n, (double)r->req_bytes / secs, (double)r->rsp_bytes / secs);
    }
    mesh_buf_appends(&b, st->rows.n ? "\n]\n" : "]\n");
    fwrite(b.data, 1, b.len, out);
    mesh_buf_free(&b);
}

void mesh_stat_render(struct mesh_stat *st, FILE *out)
{
    double secs = mesh_window_seconds(&st->window);
    if (st->rows.n > 1) /* qsort(NULL, 0, …) is undefined */
        qsort(st->rows.order, st->rows.n, sizeof(*st->rows.order), cmp_rows);
    if (st->opts.output == MESH_OUT_JSON) {
        render_json(st, out, secs);
        return;
    }
    if (st->rows.n == 0) {
        fprintf(out, "No traffic found.\n");
        return;
    }
    int wide = st->opts.output == MESH_OUT_WIDE;
    size_t wns = 9, wname = 4;
    for (size_t i = 0; i < st->rows.n; i++) {
        const struct row *r = st->rows.order[i]->val;
        char full[300];
        snprintf(full, sizeof(full), "%s/%s", mesh_rtype_name(r->type), r->name);
        size_t w = mesh_str_width(full);
        if (w > wname)
            wname = w;
        if (mesh_str_width(r->ns) > wns)
            wns = mesh_str_width(r->ns);
    }
    if (wname > 60)
        wname = 60;
    if (st->many_ns)
        mesh_fput_col(out, "NAMESPACE", wns, 3);
    mesh_fput_col(out, "NAME", wname, 3);
    fprintf(out, "%-6s   %8s   %9s   %11s   %11s   %11s   %8s", "MESHED", "SUCCESS", "RPS",
            "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN");
    if (wide)
        fprintf(out, "   %14s   %15s", "READ_BYTES/SEC", "WRITE_BYTES/SEC");
    fputc('\n', out);
    for (size_t i = 0; i < st->rows.n; i++) {
        const struct row *r = st->rows.order[i]->val;
        char full[300], succ[16], rps[24], p[3][24], rb[24], wb[24];
        snprintf(full, sizeof(full), "%s/%s", mesh_rtype_name(r->type), r->name);
        if (st->many_ns)
            mesh_fput_col(out, r->ns[0] ? r->ns : "-", wns, 3);
        mesh_fput_col(out, full, wname, 3);
        mesh_fput_col(out, "-", 6, 3);
        mesh_fput_rcol(out, mesh_fmt_pct(succ, sizeof(succ),
                                         (double)(r->requests - r->failures) / (double)r->requests),
                       8, 3);
        mesh_fput_rcol(out, mesh_fmt_rps(rps, sizeof(rps), (double)r->requests / secs), 9, 3);
        mesh_fput_rcol(out, mesh_fmt_latency(p[0], sizeof(p[0]), mesh_hist_quantile(&r->hist, 0.5)), 11, 3);
        mesh_fput_rcol(out, mesh_fmt_latency(p[1], sizeof(p[1]), mesh_hist_quantile(&r->hist, 0.95)), 11, 3);
        mesh_fput_rcol(out, mesh_fmt_latency(p[2], sizeof(p[2]), mesh_hist_quantile(&r->hist, 0.99)), 11, 3);
        fprintf(out, "%8zu", r->conns.n);
        if (wide)
            fprintf(out, "   %14s   %15s",
                    mesh_fmt_bytes_rate(rb, sizeof(rb), (double)r->req_bytes / secs),
                    mesh_fmt_bytes_rate(wb, sizeof(wb), (double)r->rsp_bytes / secs));
        fputc('\n', out);
    }
}

void mesh_stat_free(struct mesh_stat *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->rows.n; i++)
        mesh_strmap_free(&((struct row *)st->rows.order[i]->val)->conns);
    mesh_strmap_free(&st->rows);
    free(st);
}
