/* top/top.h — `mesh top`: requests aggregated per (source, destination,
 * method, path), with count, best/worst/last latency and success rate.
 *
 * The source is the client's deployment (or pod, or IP without port); the
 * destination the server's deployment (or the authority, or ip:port). Rows
 * are capped (MESH_TOP_MAX_ROWS); events past the cap are counted, not shown.
 */
#ifndef MESH_TOP_H
#define MESH_TOP_H

#include <stdio.h>

#include "mesh/evt.h"
#include "mesh/filter.h"
#include "mesh/view.h"

#define MESH_TOP_MAX_ROWS 10000

enum mesh_top_sort { MESH_TOP_BY_COUNT = 0, MESH_TOP_BY_BEST, MESH_TOP_BY_WORST,
                     MESH_TOP_BY_LAST, MESH_TOP_BY_SUCCESS, MESH_TOP_BY_PATH,
                     MESH_TOP_BY_SOURCE, MESH_TOP_BY_DESTINATION, MESH_TOP_BY_METHOD };

struct mesh_top_opts {
    struct mesh_filter filter;
    int hide_sources;
    enum mesh_output output;
    enum mesh_top_sort sort;
    int live;                   /* the screen (a terminal, not json): every second */
};

/* One row as every source gives it (a capture aggregated here, a store, a
 * collector's Query.Top). Strings are borrowed. */
struct mesh_top_row {
    const char *source, *destination, *method, *path;
    uint64_t count, failures;
    int64_t best_us, worst_us, last_us; /* -1: none */
};

/* Sorts |rows| by |opts->sort| and prints them as a table or a JSON array;
 * |over_cap| requests that did not fit in any row are mentioned. */
void mesh_top_print(FILE *out, struct mesh_top_row *rows, size_t n,
                    const struct mesh_top_opts *opts, uint64_t over_cap);

/* Sorts |rows| as mesh_top_print does. */
void mesh_top_sort(struct mesh_top_row *rows, size_t n, const struct mesh_top_opts *opts);

/* The live screen (top/screen.h): its columns (no Source with hide_sources),
 * and one update with |rows| (sorted here first, so ties keep that order). */
struct mesh_ui;
struct mesh_ui_col;
const struct mesh_ui_col *mesh_top_ui_cols(const struct mesh_top_opts *opts, size_t *ncols,
                                           int *sort);
void mesh_top_ui_rows(struct mesh_ui *ui, struct mesh_top_row *rows, size_t n,
                      const struct mesh_top_opts *opts);

struct mesh_top;

struct mesh_top *mesh_top_new(const struct mesh_top_opts *opts);
void mesh_top_add(struct mesh_top *top, const struct mesh_evt *evt);
void mesh_top_render(struct mesh_top *top, FILE *out);
/* The rows so far (strings borrowed from |top|), for the screen; free() the
 * array. *|over_cap|: requests past the row cap. NULL when out of memory. */
struct mesh_top_row *mesh_top_rows(struct mesh_top *top, size_t *n, uint64_t *over_cap);
void mesh_top_free(struct mesh_top *top);

#endif
