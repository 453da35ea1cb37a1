/* mesh/filter.h — which events a tap, top or watch wants.
 *
 * One definition of matching for every view and, later, the collector's
 * Watch, so a filter means the same wherever it is evaluated. All strings
 * are borrowed from the caller (argv) and must outlive the filter.
 */
#ifndef MESH_FILTER_H
#define MESH_FILTER_H

#include <stdint.h>

#include "mesh/evt.h"
#include "mesh/resource.h"

struct mesh_filter {
    struct mesh_resource res;   /* type NONE = any: events to or from it */
    struct mesh_resource to;    /* destination, type NONE = any */
    struct mesh_resource from;  /* source, type NONE = any */
    const char *method;         /* exact, NULL = any */
    const char *path_prefix;
    const char *authority;      /* exact */
    int status_class;           /* 1..5 for 1xx..5xx, 0 = any */
    int status;                 /* exact HTTP status, 0 = any */
    uint64_t min_latency_us;
};

void mesh_filter_init(struct mesh_filter *f);
/* Parses "5xx", "4xx", "404". Returns 0 or MESH_EINVAL. */
int mesh_filter_set_status(struct mesh_filter *f, const char *arg);
/* 1 when |evt| passes every filter. The resource is the workload whose proxy
 * saw the event (the server of an inbound one, the client of an outbound one,
 * either side in a capture), as in linkerd viz tap RESOURCE. */
int mesh_filter_match(const struct mesh_filter *f, const struct mesh_evt *evt);

#endif
