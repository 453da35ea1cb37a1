#include "stat/stat.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "mesh/fmt.h"
#include "mesh/hist.h"
#include "mesh/strmap.h"
#include "top/screen.h"

#define STAT_MAX_ROWS 100000
#define STAT_MAX_CONNS 65536
#define STAT_MAX_PODS 256

struct row {
    enum mesh_rtype type;
    char ns[128], name[256];
    uint64_t requests, failures;
    uint64_t req_bytes, rsp_bytes;
    struct mesh_hist hist;
    struct mesh_strmap conns;       /* distinct connections, keys only */
    struct mesh_strmap pods;        /* meshed pods: those whose proxy reported */
    int init;
};

struct mesh_stat {
    struct mesh_stat_opts opts;
    struct mesh_strmap rows;
    struct mesh_window window;
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

/* Adds |evt| to its row for |type| (the source's with |src_side|); with
 * |tally| 0 only makes sure the row exists and notes the reporting pod. */
static void count(struct mesh_stat *st, const struct mesh_evt *evt, enum mesh_rtype type,
                  int src_side, int tally)
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
        mesh_strmap_init(&r->pods, 1, STAT_MAX_PODS);
    }
    /* the pod of the proxy that reported it (none for captures) */
    const char *pod = evt->direction == MESH_DIR_INBOUND    ? evt->dst_labels.pod
                      : evt->direction == MESH_DIR_OUTBOUND ? evt->src_labels.pod
                                                            : NULL;
    if (pod != NULL)
        mesh_strmap_get(&r->pods, pod, NULL);
    if (!tally)
        return;
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
    if (evt->direction == (by_src ? MESH_DIR_INBOUND : MESH_DIR_OUTBOUND)) {
        /* Not counted here; but the caller's proxy says its workload is
         * meshed, and one that only calls others has no other way in. */
        if (by_src || o->from.type != MESH_RT_NONE)
            return;
        for (size_t i = 0; i < o->nres; i++)
            if (o->res[i].type != MESH_RT_AUTH && mesh_resource_match(&o->res[i], evt, 1))
                count(st, evt, o->res[i].type, 1, 0);
        return;
    }
    mesh_window_add(&st->window, evt->ts_us);
    if (evt->duration_us > 0)
        mesh_window_add(&st->window, evt->ts_us + (uint64_t)evt->duration_us);
    if (by_src && !mesh_resource_match(&o->to, evt, 0))
        return;
    if (o->from.type != MESH_RT_NONE && !mesh_resource_match(&o->from, evt, 1))
        return;
    for (size_t i = 0; i < o->nres; i++)
        if (mesh_resource_match(&o->res[i], evt, by_src))
            count(st, evt, o->res[i].type, by_src, 1);
}

static int cmp_rows(const void *a, const void *b)
{
    const struct mesh_stat_row *x = a, *y = b;
    int c = (int)x->type - (int)y->type;
    if (c == 0)
        c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static void print_json(FILE *out, const struct mesh_stat_row *rows, size_t n)
{
    struct mesh_buf b;
    mesh_buf_init(&b, (size_t)1 << 30);
    mesh_buf_appends(&b, "[");
    for (size_t i = 0; i < n; i++) {
        const struct mesh_stat_row *r = &rows[i];
        mesh_buf_appends(&b, i ? ",\n {" : "\n {");
        if (r->ns[0]) {
            mesh_buf_appends(&b, "\"namespace\":");
            mesh_buf_json_str(&b, r->ns, strlen(r->ns));
            mesh_buf_appends(&b, ",");
        }
        mesh_buf_printf(&b, "\"type\":\"%s\",\"name\":", mesh_rtype_name(r->type));
        mesh_buf_json_str(&b, r->name, strlen(r->name));
        if (r->total_pods > 0)
            mesh_buf_printf(&b, ",\"meshed\":\"%u/%u\"", r->meshed_pods, r->total_pods);
        else
            mesh_buf_appends(&b, ",\"meshed\":null");
        mesh_buf_printf(&b, ",\"requests\":%llu,\"failures\":%llu",
                        (unsigned long long)r->requests, (unsigned long long)r->failures);
        if (r->requests > 0)
            mesh_buf_printf(&b, ",\"success\":%.6f",
                            (double)(r->requests - r->failures) / (double)r->requests);
        else
            mesh_buf_appends(&b, ",\"success\":null");
        mesh_buf_printf(&b, ",\"rps\":%.4f", r->rps);
        const int64_t q[] = {r->p50_us, r->p95_us, r->p99_us};
        static const char *const qn[] = {"p50", "p95", "p99"};
        for (int k = 0; k < 3; k++) {
            if (q[k] < 0)
                mesh_buf_printf(&b, ",\"latency_%s_us\":null", qn[k]);
            else
                mesh_buf_printf(&b, ",\"latency_%s_us\":%lld", qn[k], (long long)q[k]);
        }
        mesh_buf_printf(&b,
                        ",\"tcp_conn\":%llu,\"read_bytes_per_sec\":%.1f,"
                        "\"write_bytes_per_sec\":%.1f}",
                        (unsigned long long)r->tcp_conn, r->read_bytes_per_sec,
                        r->write_bytes_per_sec);
    }
    mesh_buf_appends(&b, n ? "\n]\n" : "]\n");
    fwrite(b.data, 1, b.len, out);
    mesh_buf_free(&b);
}

/* MESHED: "1/1", or "-" where no proxy reported (captures). */
static const char *meshed_str(const struct mesh_stat_row *r, char *buf, size_t len)
{
    if (r->total_pods == 0)
        return "-";
    snprintf(buf, len, "%u/%u", r->meshed_pods, r->total_pods);
    return buf;
}

void mesh_stat_print(FILE *out, struct mesh_stat_row *rows, size_t n, enum mesh_output mode)
{
    if (n > 1) /* qsort(NULL, 0, …) is undefined */
        qsort(rows, n, sizeof(*rows), cmp_rows);
    if (mode == MESH_OUT_JSON) {
        print_json(out, rows, n);
        return;
    }
    if (n == 0) {
        fprintf(out, "No traffic found.\n");
        return;
    }
    int wide = mode == MESH_OUT_WIDE, many_ns = 0;
    size_t wns = 9, wname = 4;
    for (size_t i = 0; i < n; i++) {
        char full[300];
        snprintf(full, sizeof(full), "%s/%s", mesh_rtype_name(rows[i].type), rows[i].name);
        if (mesh_str_width(full) > wname)
            wname = mesh_str_width(full);
        if (mesh_str_width(rows[i].ns) > wns)
            wns = mesh_str_width(rows[i].ns);
        many_ns |= strcmp(rows[i].ns, rows[0].ns) != 0;
    }
    if (wname > 60)
        wname = 60;
    if (many_ns)
        mesh_fput_col(out, "NAMESPACE", wns, 3);
    mesh_fput_col(out, "NAME", wname, 3);
    fprintf(out, "%-6s   %8s   %9s   %11s   %11s   %11s   %8s", "MESHED", "SUCCESS", "RPS",
            "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN");
    if (wide)
        fprintf(out, "   %14s   %15s", "READ_BYTES/SEC", "WRITE_BYTES/SEC");
    fputc('\n', out);
    for (size_t i = 0; i < n; i++) {
        const struct mesh_stat_row *r = &rows[i];
        char full[300], succ[16], rps[24], p[3][24], rb[24], wb[24], meshed[24];
        snprintf(full, sizeof(full), "%s/%s", mesh_rtype_name(r->type), r->name);
        if (many_ns)
            mesh_fput_col(out, r->ns[0] ? r->ns : "-", wns, 3);
        mesh_fput_col(out, full, wname, 3);
        mesh_fput_col(out, meshed_str(r, meshed, sizeof(meshed)), 6, 3);
        mesh_fput_rcol(out, mesh_fmt_pct(succ, sizeof(succ),
                                         r->requests ? (double)(r->requests - r->failures) /
                                                           (double)r->requests
                                                     : -1),
                       8, 3);
        mesh_fput_rcol(out, mesh_fmt_rps(rps, sizeof(rps), r->rps), 9, 3);
        mesh_fput_rcol(out, mesh_fmt_latency(p[0], sizeof(p[0]), r->p50_us), 11, 3);
        mesh_fput_rcol(out, mesh_fmt_latency(p[1], sizeof(p[1]), r->p95_us), 11, 3);
        mesh_fput_rcol(out, mesh_fmt_latency(p[2], sizeof(p[2]), r->p99_us), 11, 3);
        fprintf(out, "%8llu", (unsigned long long)r->tcp_conn);
        if (wide)
            fprintf(out, "   %14s   %15s",
                    mesh_fmt_bytes_rate(rb, sizeof(rb), r->read_bytes_per_sec),
                    mesh_fmt_bytes_rate(wb, sizeof(wb), r->write_bytes_per_sec));
        fputc('\n', out);
    }
}

struct mesh_stat_row *mesh_stat_rows(struct mesh_stat *st, size_t *n)
{
    double secs = mesh_window_seconds(&st->window);
    struct mesh_stat_row *rows = calloc(st->rows.n ? st->rows.n : 1, sizeof(*rows));
    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < st->rows.n; i++) {
        const struct row *r = st->rows.order[i]->val;
        rows[i] = (struct mesh_stat_row){
            .ns = r->ns,
            .type = r->type,
            .name = r->name,
            .requests = r->requests,
            .failures = r->failures,
            .rps = (double)r->requests / secs,
            .p50_us = mesh_hist_quantile(&r->hist, 0.5),
            .p95_us = mesh_hist_quantile(&r->hist, 0.95),
            .p99_us = mesh_hist_quantile(&r->hist, 0.99),
            .tcp_conn = r->conns.n,
            .read_bytes_per_sec = (double)r->req_bytes / secs,
            .write_bytes_per_sec = (double)r->rsp_bytes / secs,
            .meshed_pods = (uint32_t)r->pods.n,
            .total_pods = (uint32_t)r->pods.n,
        };
    }
    *n = st->rows.n;
    return rows;
}

void mesh_stat_render(struct mesh_stat *st, FILE *out)
{
    size_t n;
    struct mesh_stat_row *rows = mesh_stat_rows(st, &n);
    if (rows == NULL)
        return;
    mesh_stat_print(out, rows, n, st->opts.output);
    free(rows);
}

/* --- the live screen (--watch) ---------------------------------------------------------------- */

static const struct mesh_ui_col stat_cols[] = {
    {"NAMESPACE", 'N', MESH_UI_SHRINK},
    {"NAME", 'n', MESH_UI_SHRINK | MESH_UI_KEEP},
    {"MESHED", 0, 0},
    {"SUCCESS", 's', MESH_UI_RIGHT | MESH_UI_NUM},
    {"RPS", 'r', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"LATENCY_P50", '1', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"LATENCY_P95", '2', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"LATENCY_P99", '3', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"TCP_CONN", 't', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"READ_BYTES/SEC", 'i', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"WRITE_BYTES/SEC", 'o', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
};

const struct mesh_ui_col *mesh_stat_ui_cols(enum mesh_output mode, size_t *ncols)
{
    *ncols = sizeof(stat_cols) / sizeof(stat_cols[0]) - (mode == MESH_OUT_WIDE ? 0 : 2);
    return stat_cols;
}

void mesh_stat_ui_rows(struct mesh_ui *ui, struct mesh_stat_row *rows, size_t n,
                       enum mesh_output mode)
{
    if (n > 1)
        qsort(rows, n, sizeof(*rows), cmp_rows);
    mesh_ui_begin(ui);
    for (size_t i = 0; i < n; i++) {
        const struct mesh_stat_row *r = &rows[i];
        char full[300], succ[16], rps[24], p[3][24], conn[24], rb[24], wb[24], meshed[24];
        double success = r->requests ? (double)(r->requests - r->failures) / (double)r->requests : -1;
        snprintf(full, sizeof(full), "%s/%s", mesh_rtype_name(r->type), r->name);
        snprintf(conn, sizeof(conn), "%llu", (unsigned long long)r->tcp_conn);
        struct mesh_ui_cell cells[] = {
            {r->ns[0] ? r->ns : "-", 0, 0},
            {full, 0, 0},
            {meshed_str(r, meshed, sizeof(meshed)), (double)r->meshed_pods, r->total_pods > 0},
            {mesh_fmt_pct(succ, sizeof(succ), success), success, success >= 0},
            {mesh_fmt_rps(rps, sizeof(rps), r->rps), r->rps, 1},
            {mesh_fmt_latency(p[0], sizeof(p[0]), r->p50_us), (double)r->p50_us, r->p50_us >= 0},
            {mesh_fmt_latency(p[1], sizeof(p[1]), r->p95_us), (double)r->p95_us, r->p95_us >= 0},
            {mesh_fmt_latency(p[2], sizeof(p[2]), r->p99_us), (double)r->p99_us, r->p99_us >= 0},
            {conn, (double)r->tcp_conn, 1},
            {mesh_fmt_bytes_rate(rb, sizeof(rb), r->read_bytes_per_sec), r->read_bytes_per_sec, 1},
            {mesh_fmt_bytes_rate(wb, sizeof(wb), r->write_bytes_per_sec), r->write_bytes_per_sec, 1},
        };
        (void)mode; /* the screen shows as many cells as it has columns */
        mesh_ui_add(ui, cells, r->failures > 0 ? MESH_UI_FAIL : 0);
    }
    mesh_ui_commit(ui);
}

void mesh_stat_free(struct mesh_stat *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->rows.n; i++)
    {
        struct row *r = st->rows.order[i]->val;
        mesh_strmap_free(&r->conns);
        mesh_strmap_free(&r->pods);
    }
    mesh_strmap_free(&st->rows);
    free(st);
}
