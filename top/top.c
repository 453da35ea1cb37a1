#include "top/top.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "mesh/fmt.h"
#include "mesh/strmap.h"
#include "top/screen.h"

struct row {
    char src[128], dst[256], method[32], path[512];
    uint64_t count, failures;
    int64_t best, worst, last;      /* latency µs, -1 none */
    uint64_t last_ts;
};

struct mesh_top {
    struct mesh_top_opts opts;
    struct mesh_strmap rows;
    uint64_t over_cap;
};

struct mesh_top *mesh_top_new(const struct mesh_top_opts *opts)
{
    struct mesh_top *top = calloc(1, sizeof(*top));
    if (top == NULL)
        return NULL;
    top->opts = *opts;
    mesh_strmap_init(&top->rows, sizeof(struct row), MESH_TOP_MAX_ROWS);
    return top;
}

/* "host" of "host:port" and "[v6]:port" */
static void ip_only(char *out, size_t len, const char *addr)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    size_t n = colon ? (size_t)(colon - addr) : (addr ? strlen(addr) : 0);
    if (n > 1 && addr[0] == '[' && addr[n - 1] == ']')
        snprintf(out, len, "%.*s", (int)(n - 2), addr + 1);
    else
        snprintf(out, len, "%.*s", (int)n, addr ? addr : "-");
}

void mesh_top_add(struct mesh_top *top, const struct mesh_evt *evt)
{
    /* the server's proxy sees each request whole; the client's would count it again */
    if (evt->direction == MESH_DIR_OUTBOUND || !mesh_filter_match(&top->opts.filter, evt))
        return;
    char src[128], dst[256], key[1024];
    if (top->opts.hide_sources)
        snprintf(src, sizeof(src), "-");
    else if (evt->src_labels.deploy)
        snprintf(src, sizeof(src), "%s", evt->src_labels.deploy);
    else if (evt->src_labels.pod)
        snprintf(src, sizeof(src), "%s", evt->src_labels.pod);
    else
        ip_only(src, sizeof(src), evt->src);
    snprintf(dst, sizeof(dst), "%s",
             evt->dst_labels.deploy ? evt->dst_labels.deploy
             : evt->authority       ? evt->authority
             : evt->dst             ? evt->dst
                                    : "-");
    const char *method = evt->method ? evt->method : "-", *path = evt->path ? evt->path : "-";
    snprintf(key, sizeof(key), "%s\x1f%s\x1f%s\x1f%s", src, dst, method, path);
    int created;
    struct row *r = mesh_strmap_get(&top->rows, key, &created);
    if (r == NULL) {
        top->over_cap++;
        return;
    }
    if (created) {
        snprintf(r->src, sizeof(r->src), "%s", src);
        snprintf(r->dst, sizeof(r->dst), "%s", dst);
        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->path, sizeof(r->path), "%s", path);
        r->best = r->worst = r->last = -1;
    }
    r->count++;
    r->failures += (uint64_t)mesh_evt_failed(evt);
    int64_t lat = evt->latency_us;
    if (lat >= 0) {
        if (r->best < 0 || lat < r->best)
            r->best = lat;
        if (lat > r->worst)
            r->worst = lat;
        if (evt->ts_us >= r->last_ts) {
            r->last = lat;
            r->last_ts = evt->ts_us;
        }
    }
}

static enum mesh_top_sort sort_key;

static double success_of(const struct mesh_top_row *r)
{
    return r->count ? (double)(r->count - r->failures) / (double)r->count : 0;
}

static int cmp_rows(const void *a, const void *b)
{
    const struct mesh_top_row *x = a, *y = b;
    int c = 0;
    switch (sort_key) {
    case MESH_TOP_BY_COUNT: c = (y->count > x->count) - (y->count < x->count); break;
    case MESH_TOP_BY_BEST: c = (x->best_us > y->best_us) - (x->best_us < y->best_us); break;
    case MESH_TOP_BY_WORST: c = (y->worst_us > x->worst_us) - (y->worst_us < x->worst_us); break;
    case MESH_TOP_BY_LAST: c = (y->last_us > x->last_us) - (y->last_us < x->last_us); break;
    case MESH_TOP_BY_SUCCESS: c = (success_of(x) > success_of(y)) - (success_of(x) < success_of(y)); break;
    case MESH_TOP_BY_PATH: break;
    case MESH_TOP_BY_SOURCE: c = strcmp(x->source, y->source); break;
    case MESH_TOP_BY_DESTINATION: c = strcmp(x->destination, y->destination); break;
    case MESH_TOP_BY_METHOD: c = strcmp(x->method, y->method); break;
    }
    if (c == 0)
        c = strcmp(x->path, y->path);
    if (c == 0)
        c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->destination, y->destination);
}

static void print_json(FILE *out, const struct mesh_top_row *rows, size_t n)
{
    struct mesh_buf b;
    mesh_buf_init(&b, (size_t)1 << 30);
    mesh_buf_appends(&b, "[");
    for (size_t i = 0; i < n; i++) {
        const struct mesh_top_row *r = &rows[i];
        const char *names[] = {"source", "destination", "method", "path"};
        const char *vals[] = {r->source, r->destination, r->method, r->path};
        mesh_buf_appends(&b, i ? ",\n {" : "\n {");
        for (int k = 0; k < 4; k++) {
            mesh_buf_printf(&b, "%s\"%s\":", k ? "," : "", names[k]);
            mesh_buf_json_str(&b, vals[k], strlen(vals[k]));
        }
        mesh_buf_printf(&b, ",\"count\":%llu,\"failures\":%llu,\"success\":%.6f",
                        (unsigned long long)r->count, (unsigned long long)r->failures,
                        success_of(r));
        const char *ln[] = {"best_us", "worst_us", "last_us"};
        int64_t lv[] = {r->best_us, r->worst_us, r->last_us};
        for (int k = 0; k < 3; k++) {
            if (lv[k] < 0)
                mesh_buf_printf(&b, ",\"%s\":null", ln[k]);
            else
                mesh_buf_printf(&b, ",\"%s\":%lld", ln[k], (long long)lv[k]);
        }
        mesh_buf_appends(&b, "}");
    }
    mesh_buf_appends(&b, n ? "\n]\n" : "]\n");
    fwrite(b.data, 1, b.len, out);
    mesh_buf_free(&b);
}

void mesh_top_sort(struct mesh_top_row *rows, size_t n, const struct mesh_top_opts *opts)
{
    sort_key = opts->sort;
    if (n > 1) /* qsort(NULL, 0, …) is undefined */
        qsort(rows, n, sizeof(*rows), cmp_rows);
}

void mesh_top_print(FILE *out, struct mesh_top_row *rows, size_t n,
                    const struct mesh_top_opts *opts, uint64_t over_cap)
{
    mesh_top_sort(rows, n, opts);
    if (opts->output == MESH_OUT_JSON) {
        print_json(out, rows, n);
        return;
    }
    if (n == 0) {
        fprintf(out, "No traffic found.\n");
        return;
    }
    size_t w[4] = {6, 11, 6, 4};
    for (size_t i = 0; i < n; i++) {
        const char *v[] = {rows[i].source, rows[i].destination, rows[i].method, rows[i].path};
        for (int k = 0; k < 4; k++)
            if (mesh_str_width(v[k]) > w[k])
                w[k] = mesh_str_width(v[k]);
    }
    for (int k = 0; k < 4; k++)
        if (w[k] > 60)
            w[k] = 60;
    int hide = opts->hide_sources;
    if (!hide)
        mesh_fput_col(out, "Source", w[0], 2);
    mesh_fput_col(out, "Destination", w[1], 2);
    mesh_fput_col(out, "Method", w[2], 2);
    mesh_fput_col(out, "Path", w[3], 2);
    fprintf(out, "%8s  %9s  %9s  %9s  %12s\n", "Count", "Best", "Worst", "Last",
            "Success Rate");
    for (size_t i = 0; i < n; i++) {
        const struct mesh_top_row *r = &rows[i];
        char b[3][24], pct[16];
        if (!hide)
            mesh_fput_col(out, r->source, w[0], 2);
        mesh_fput_col(out, r->destination, w[1], 2);
        mesh_fput_col(out, r->method, w[2], 2);
        mesh_fput_col(out, r->path, w[3], 2);
        fprintf(out, "%8llu  ", (unsigned long long)r->count);
        mesh_fput_rcol(out, mesh_fmt_latency(b[0], sizeof(b[0]), r->best_us), 9, 2);
        mesh_fput_rcol(out, mesh_fmt_latency(b[1], sizeof(b[1]), r->worst_us), 9, 2);
        mesh_fput_rcol(out, mesh_fmt_latency(b[2], sizeof(b[2]), r->last_us), 9, 2);
        mesh_fput_rcol(out, mesh_fmt_pct(pct, sizeof(pct), success_of(r)), 12, 0);
        fputc('\n', out);
    }
    if (over_cap)
        fprintf(out, "(%llu requests not shown: more than %u rows)\n",
                (unsigned long long)over_cap, MESH_TOP_MAX_ROWS);
}

struct mesh_top_row *mesh_top_rows(struct mesh_top *top, size_t *n, uint64_t *over_cap)
{
    struct mesh_top_row *rows = calloc(top->rows.n ? top->rows.n : 1, sizeof(*rows));
    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < top->rows.n; i++) {
        const struct row *r = top->rows.order[i]->val;
        rows[i] = (struct mesh_top_row){r->src,   r->dst,  r->method, r->path, r->count,
                                        r->failures, r->best, r->worst,  r->last};
    }
    *n = top->rows.n;
    *over_cap = top->over_cap;
    return rows;
}

void mesh_top_render(struct mesh_top *top, FILE *out)
{
    size_t n;
    uint64_t over_cap;
    struct mesh_top_row *rows = mesh_top_rows(top, &n, &over_cap);
    if (rows == NULL)
        return;
    mesh_top_print(out, rows, n, &top->opts, over_cap);
    free(rows);
}

/* --- the live screen ---------------------------------------------------------------------- */

/* DESIGN.md's columns; each sorts the way --sort does (counts and the worst
 * first, the best latency and the lowest success rate first). */
static const struct mesh_ui_col top_cols[] = {
    {"Source", 's', MESH_UI_SHRINK},
    {"Destination", 'd', MESH_UI_SHRINK},
    {"Method", 'm', 0},
    {"Path", 'p', MESH_UI_SHRINK | MESH_UI_KEEP},
    {"Count", 'c', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"Best", 'b', MESH_UI_RIGHT | MESH_UI_NUM},
    {"Worst", 'w', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"Last", 'l', MESH_UI_RIGHT | MESH_UI_NUM | MESH_UI_DESC},
    {"Success Rate", 'r', MESH_UI_RIGHT | MESH_UI_NUM},
};

const struct mesh_ui_col *mesh_top_ui_cols(const struct mesh_top_opts *opts, size_t *ncols,
                                           int *sort)
{
    /* enum mesh_top_sort → column of top_cols */
    static const int col_of[] = {4, 5, 6, 7, 8, 3, 0, 1, 2};
    int skip = opts->hide_sources ? 1 : 0;
    *ncols = sizeof(top_cols) / sizeof(top_cols[0]) - (size_t)skip;
    *sort = col_of[opts->sort] - skip;
    if (*sort < 0)
        *sort = -1;
    return top_cols + skip;
}

void mesh_top_ui_rows(struct mesh_ui *ui, struct mesh_top_row *rows, size_t n,
                      const struct mesh_top_opts *opts)
{
    int skip = opts->hide_sources ? 1 : 0;
    mesh_top_sort(rows, n, opts);
    mesh_ui_begin(ui);
    for (size_t i = 0; i < n; i++) {
        const struct mesh_top_row *r = &rows[i];
        char count[24], lat[3][24], pct[16];
        snprintf(count, sizeof(count), "%llu", (unsigned long long)r->count);
        struct mesh_ui_cell cells[] = {
            {r->source, 0, 0},
            {r->destination, 0, 0},
            {r->method, 0, 0},
            {r->path, 0, 0},
            {count, (double)r->count, 1},
            {mesh_fmt_latency(lat[0], sizeof(lat[0]), r->best_us), (double)r->best_us, r->best_us >= 0},
            {mesh_fmt_latency(lat[1], sizeof(lat[1]), r->worst_us), (double)r->worst_us, r->worst_us >= 0},
            {mesh_fmt_latency(lat[2], sizeof(lat[2]), r->last_us), (double)r->last_us, r->last_us >= 0},
            {mesh_fmt_pct(pct, sizeof(pct), success_of(r)), success_of(r), r->count > 0},
        };
        mesh_ui_add(ui, cells + skip, r->failures > 0 ? MESH_UI_FAIL : 0);
    }
    mesh_ui_commit(ui);
}

void mesh_top_free(struct mesh_top *top)
{
    if (top == NULL)
        return;
    mesh_strmap_free(&top->rows);
    free(top);
}
