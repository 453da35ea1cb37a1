/* tap/tap.h — `mesh tap`: every matching request as it happens.
 *
 * Plain output is Linkerd's three lines per exchange (req, rsp, end); wide
 * adds the labels; json is one mesh_evt_to_json object per line. --max-rps
 * limits the events shown per second of event time (a token bucket), and
 * what it holds back is counted as missed. With a screen (|ui|, ui/screen.h)
 * each shown exchange is one line of it, failures marked; paused, arrivals
 * are counted in |held|, not kept.
 */
#ifndef MESH_TAP_H
#define MESH_TAP_H

#include <stdio.h>

#include "mesh/buf.h"
#include "mesh/evt.h"
#include "mesh/filter.h"
#include "mesh/view.h"

struct mesh_tap_opts {
    struct mesh_filter filter;
    enum mesh_output output;    /* TABLE (= the tap lines), WIDE or JSON */
    double max_rps;             /* 0 = no limit */
    int live;                   /* on the screen (a terminal, not json) */
};

struct mesh_ui;
struct mesh_ui_col;

struct mesh_tap {
    struct mesh_tap_opts opts;
    FILE *out;                  /* plain output, or */
    struct mesh_ui *ui;         /* the screen (mesh_tap_ui_open) */
    const char *source;         /* named on the screen */
    uint64_t shown, missed, held;
    double tokens;
    uint64_t last_ts;
    struct mesh_buf json;       /* reused for every JSON line */
};

void mesh_tap_init(struct mesh_tap *tap, const struct mesh_tap_opts *opts, FILE *out);
void mesh_tap_free(struct mesh_tap *tap);
/* Prints |evt| if it matches. Returns 1 when printed. */
int mesh_tap_add(struct mesh_tap *tap, const struct mesh_evt *evt);
/* Opens the screen for |tap| (sets tap->ui): its lines and counters, with
 * |source| on the top line. NULL with one line in |err|. */
struct mesh_ui *mesh_tap_ui_open(struct mesh_tap *tap, const char *source, char *err,
                                 size_t errlen);
/* Writes the three tap lines of |evt| (the format, for other outputs too). */
void mesh_tap_format(FILE *out, const struct mesh_evt *evt, int wide);

#endif
