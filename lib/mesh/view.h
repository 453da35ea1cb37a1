/* mesh/view.h — what the three frontends (stat, top, tap) share.
 *
 * Output modes, and the window an aggregate covers. A view is fed events one
 * by one (from a capture now; from a collector or a store later) and renders
 * once at the end (plain text or JSON) when stdout is not a terminal.
 */
#ifndef MESH_VIEW_H
#define MESH_VIEW_H

#include <stdint.h>

enum mesh_output { MESH_OUT_TABLE = 0, MESH_OUT_WIDE, MESH_OUT_JSON, MESH_OUT_TAP };

/* The time span the events cover, in µs since the epoch. */
struct mesh_window {
    uint64_t first_us, last_us;
    int any;
};

static inline void mesh_window_add(struct mesh_window *w, uint64_t ts)
{
    if (!w->any || ts < w->first_us)
        w->first_us = ts;
    if (!w->any || ts > w->last_us)
        w->last_us = ts;
    w->any = 1;
}

/* Seconds the window covers: a capture's events span less than a second
 * often, and a rate over the real span is the honest one; a millisecond at
 * least, so one lone request does not make an absurd rate. */
static inline double mesh_window_seconds(const struct mesh_window *w)
{
    double s = w->any ? (double)(w->last_us - w->first_us) / 1e6 : 0;
    return s < 0.001 ? 0.001 : s;
}

#endif
