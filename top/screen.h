/* top/screen.h — the live ncurses screens of stat --watch, top and tap.
 *
 * One screen owns the terminal (ncursesw) and a mesh_loop; views feed it rows
 * of cells and it does layout (width-aware), sorting, scrolling, pausing, keys,
 * resize, colour (or markers under NO_COLOR) and redraws at most every 200 ms,
 * so the cost of a redraw does not grow with the event rate. Cells are copied
 * (control characters and bad UTF-8 replaced) and rows are capped. The
 * terminal is restored by mesh_ui_close(), at exit() and on SIGINT/SIGTERM/SIGHUP.
 * Single-threaded; it lives in top/ (DESIGN.md fixes the top-level layout)
 * and serves stat and tap too; lib/ never includes it (mesh-proxy links no
 * ncurses).
 */
#ifndef MESH_UI_SCREEN_H
#define MESH_UI_SCREEN_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/loop.h"

#define MESH_UI_MAX_COLS 16
#define MESH_UI_MAX_ROWS 10000      /* rows kept: a table's, or a log's newest */
#define MESH_UI_DRAW_MS 200         /* at most this often for data; keys at once */

/* column flags */
#define MESH_UI_RIGHT  1u           /* right-aligned */
#define MESH_UI_NUM    2u           /* sorts by the cells' numbers, absent ones last */
#define MESH_UI_DESC   4u           /* sorts largest first */
#define MESH_UI_SHRINK 8u           /* may be cut (with …) when the screen is narrow */
#define MESH_UI_KEEP   16u          /* with SHRINK: cut only once the others are at their least */

/* row flags */
#define MESH_UI_FAIL   1u           /* red, or "!" in the margin under NO_COLOR */

struct mesh_ui_col {
    const char *name;
    char key;                       /* sorts by this column; 0: not sortable */
    unsigned flags;
};

struct mesh_ui_cell {
    const char *text;               /* NULL: "-" */
    double num;                     /* the sort value when has_num */
    int has_num;
};

enum mesh_ui_mode { MESH_UI_TABLE = 0, MESH_UI_LOG };

struct mesh_ui;

struct mesh_ui_opts {
    const char *title;              /* left of the top line, e.g. "mesh top deploy/web" */
    enum mesh_ui_mode mode;         /* TABLE: rows replaced on each update; LOG: appended */
    const struct mesh_ui_col *cols;
    size_t ncols;
    int sort;                       /* column sorted on at start, -1: none */
    unsigned tick_ms;               /* on_tick period (0: never); skipped while paused */
    void (*on_tick)(struct mesh_ui *ui, void *ctx);
    /* the right part of the top line (counters, errors), asked before each redraw */
    void (*status)(struct mesh_ui *ui, char *buf, size_t len, void *ctx);
    void *ctx;
};

/* Takes the terminal (stdout must be one). NULL with one line in |err|. */
struct mesh_ui *mesh_ui_open(const struct mesh_ui_opts *opts, char *err, size_t errlen);
/* The loop the screen runs on: watch the views' own fds and calls on it. */
struct mesh_loop *mesh_ui_loop(struct mesh_ui *ui);
/* Runs until q, SIGINT/SIGTERM/SIGHUP or mesh_ui_stop(); calls on_tick once first.
 * Returns the status given to mesh_ui_stop(), else MESH_EXIT_OK. */
int mesh_ui_run(struct mesh_ui *ui);
/* Ends the run; |why| (copied, may be NULL) goes to stderr once the terminal is back. */
void mesh_ui_stop(struct mesh_ui *ui, int status, const char *why);
/* Restores the terminal, prints the stop reason, writes MESH_UI_STATS. NULL is fine. */
void mesh_ui_close(struct mesh_ui *ui);

/* TABLE: begin, add rows in the view's own order (ties keep it), commit. */
void mesh_ui_begin(struct mesh_ui *ui);
/* Copies |cells| (opts.ncols of them). LOG: the oldest row goes past
 * MESH_UI_MAX_ROWS; TABLE: rows past it are counted, not kept. */
void mesh_ui_add(struct mesh_ui *ui, const struct mesh_ui_cell *cells, unsigned flags);
void mesh_ui_commit(struct mesh_ui *ui);
/* 1 while the user paused (space): LOG views count, not add, what arrives. */
int mesh_ui_paused(const struct mesh_ui *ui);
/* Rows kept, and rows cut by the cap since the screen opened (LOG) or in
 * the last update (TABLE). */
size_t mesh_ui_rows(const struct mesh_ui *ui);
uint64_t mesh_ui_cut(const struct mesh_ui *ui);
/* Something on the top line changed (counters): redraw at the next turn. */
void mesh_ui_touch(struct mesh_ui *ui);
/* Counts events the view received (for MESH_UI_STATS). */
void mesh_ui_count_events(struct mesh_ui *ui, uint64_t n);

#endif
