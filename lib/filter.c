#include "mesh/filter.h"

#include <string.h>

#include "mesh/err.h"

void mesh_filter_init(struct mesh_filter *f)
{
    memset(f, 0, sizeof(*f));
}

int mesh_filter_set_status(struct mesh_filter *f, const char *arg)
{
    size_t len = strlen(arg);
    if (len == 3 && arg[0] >= '1' && arg[0] <= '5' && (arg[1] == 'x' || arg[1] == 'X') &&
        (arg[2] == 'x' || arg[2] == 'X')) {
        f->status_class = arg[0] - '0';
        return 0;
    }
    if (len == 3 && arg[0] >= '1' && arg[0] <= '5' && arg[1] >= '0' && arg[1] <= '9' &&
        arg[2] >= '0' && arg[2] <= '9') {
        f->status = (arg[0] - '0') * 100 + (arg[1] - '0') * 10 + (arg[2] - '0');
        return 0;
    }
    return MESH_EINVAL;
}

static int str_eq(const char *want, const char *have)
{
    return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

/* Whether |res| is the workload whose proxy saw |evt| (tap RESOURCE means
 * what RESOURCE's proxies see, as in linkerd viz tap): the server for an
 * inbound event, the client for an outbound one; either side of a capture. */
static int res_match(const struct mesh_resource *res, const struct mesh_evt *evt)
{
    switch (evt->direction) {
    case MESH_DIR_INBOUND: return mesh_resource_match(res, evt, 0);
    case MESH_DIR_OUTBOUND: return mesh_resource_match(res, evt, 1);
    default: return mesh_resource_match(res, evt, 0) || mesh_resource_match(res, evt, 1);
    }
}

int mesh_filter_match(const struct mesh_filter *f, const struct mesh_evt *evt)
{
    if (f->res.type != MESH_RT_NONE && !res_match(&f->res, evt))
        return 0;
    if (f->to.type != MESH_RT_NONE && !mesh_resource_match(&f->to, evt, 0))
        return 0;
    if (f->from.type != MESH_RT_NONE && !mesh_resource_match(&f->from, evt, 1))
        return 0;
    if (!str_eq(f->method, evt->method) || !str_eq(f->authority, evt->authority))
        return 0;
    if (f->path_prefix != NULL &&
        (evt->path == NULL || strncmp(evt->path, f->path_prefix, strlen(f->path_prefix)) != 0))
        return 0;
    if (f->status_class && (evt->status < 0 || evt->status / 100 != f->status_class))
        return 0;
    if (f->status && evt->status != f->status)
        return 0;
    if (f->min_latency_us &&
        (evt->latency_us < 0 || (uint64_t)evt->latency_us < f->min_latency_us))
        return 0;
    return 1;
}
