/* stat/stat.h — `mesh stat`: success rate, RPS and latency per resource.
 *
 * Rows are keyed by the destination's resource (traffic a resource serves),
 * or, with `--to`, by the source's resource (traffic it sends to the --to
 * resource), as `linkerd viz stat` does. Inbound and replayed events count
 * for destination rows, outbound and replayed ones for --to rows, so a
 * request seen by two proxies is counted once. Percentiles come from
 * mesh_hist (≤1% error).
 */
#ifndef MESH_STAT_H
#define MESH_STAT_H

#include <stdio.h>

#include "mesh/evt.h"
#include "mesh/resource.h"
#include "mesh/view.h"

#define MESH_STAT_MAX_RES 16

struct mesh_stat_opts {
    struct mesh_resource res[MESH_STAT_MAX_RES];
    size_t nres;
    struct mesh_resource to, from;
    enum mesh_output output;
    int watch;                  /* --watch: again every second until Ctrl-C */
    int live;                   /* on the screen (a terminal, not json) */
};

/* One row as every source gives it: a capture (aggregated here), a store or
 * a collector (Query.Stat). Strings are borrowed. */
struct mesh_stat_row {
    const char *ns;             /* "" for ns and au rows */
    enum mesh_rtype type;
    const char *name;
    uint64_t requests, failures;
    double rps;
    int64_t p50_us, p95_us, p99_us; /* -1: no latency */
    uint64_t tcp_conn;
    double read_bytes_per_sec, write_bytes_per_sec;
    uint32_t meshed_pods, total_pods; /* MESHED "1/1"; total 0: unknown ("-", captures) */
};

/* Prints |rows| (sorted here by type, namespace, name) as a table, wide
 * table or JSON array. */
void mesh_stat_print(FILE *out, struct mesh_stat_row *rows, size_t n, enum mesh_output mode);

/* The live screen of --watch (top/screen.h): its columns, and one update
 * with |rows| (sorted as mesh_stat_print first); success < 100% is marked. */
struct mesh_ui;
struct mesh_ui_col;
const struct mesh_ui_col *mesh_stat_ui_cols(enum mesh_output mode, size_t *ncols);
void mesh_stat_ui_rows(struct mesh_ui *ui, struct mesh_stat_row *rows, size_t n,
                       enum mesh_output mode);

struct mesh_stat;

struct mesh_stat *mesh_stat_new(const struct mesh_stat_opts *opts);
void mesh_stat_add(struct mesh_stat *st, const struct mesh_evt *evt);
/* Prints the table (or JSON array) over the events added so far. */
void mesh_stat_render(struct mesh_stat *st, FILE *out);
/* The rows so far (strings borrowed from |st|); free() the array. NULL when
 * out of memory. */
struct mesh_stat_row *mesh_stat_rows(struct mesh_stat *st, size_t *n);
void mesh_stat_free(struct mesh_stat *st);

#endif
