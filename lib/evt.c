#include "mesh/evt.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "mesh/err.h"

void mesh_evt_init(struct mesh_evt *evt)
{
    memset(evt, 0, sizeof(*evt));
    evt->status = -1;
    evt->grpc_status = -1;
    evt->reset = -1;
    evt->latency_us = -1;
    evt->duration_us = -1;
}

int mesh_evt_failed(const struct mesh_evt *evt)
{
    if (evt->grpc_status >= 0)
        return evt->grpc_status != 0;
    if (evt->status >= 500)
        return 1;
    /* reset, broken connection, or no end of response seen */
    return evt->reset >= 0 || evt->error != NULL || evt->duration_us < 0;
}

static const char *const dir_names[] = {"unspecified", "inbound", "outbound", "replay"};
static const char *const proto_names[] = {"unknown", "http/1.1", "h2", "grpc"};

const char *mesh_direction_name(enum mesh_direction dir)
{
    return (unsigned)dir < 4 ? dir_names[dir] : dir_names[0];
}

const char *mesh_proto_name(enum mesh_proto proto)
{
    return (unsigned)proto < 4 ? proto_names[proto] : proto_names[0];
}

enum mesh_direction mesh_direction_parse(const char *name)
{
    for (int i = 1; i < 4; i++)
        if (strcmp(name, dir_names[i]) == 0)
            return (enum mesh_direction)i;
    return MESH_DIR_UNSPEC;
}

enum mesh_proto mesh_proto_parse(const char *name)
{
    for (int i = 1; i < 4; i++)
        if (strcmp(name, proto_names[i]) == 0)
            return (enum mesh_proto)i;
    return MESH_PROTO_UNKNOWN;
}

/* The string members of an event, for copying them all the same way. */
#define EVT_STRINGS(e)                                                            \
    &(e)->src, &(e)->dst, &(e)->src_labels.ns, &(e)->src_labels.deploy,           \
        &(e)->src_labels.pod, &(e)->dst_labels.ns, &(e)->dst_labels.deploy,       \
        &(e)->dst_labels.pod, &(e)->method, &(e)->scheme, &(e)->authority,        \
        &(e)->path, &(e)->error, &(e)->id

int mesh_evt_copy(struct mesh_evt_copy *dst, const struct mesh_evt *src)
{
    const char **from[] = {EVT_STRINGS((struct mesh_evt *)src)};
    size_t n = sizeof(from) / sizeof(from[0]), total = 0;
    for (size_t i = 0; i < n; i++)
        if (*from[i] != NULL)
            total += strlen(*from[i]) + 1;
    dst->evt = *src;
    dst->strings = malloc(total ? total : 1);
    if (dst->strings == NULL)
        return MESH_ENOMEM;
    const char **to[] = {EVT_STRINGS(&dst->evt)};
    char *p = dst->strings;
    for (size_t i = 0; i < n; i++) {
        if (*from[i] == NULL)
            continue;
        size_t len = strlen(*from[i]) + 1;
        memcpy(p, *from[i], len);
        *to[i] = p;
        p += len;
    }
    return 0;
}

void mesh_evt_copy_free(struct mesh_evt_copy *copy)
{
    free(copy->strings);
    copy->strings = NULL;
}

/* Appends `,"name":"value"` (or without the comma for the first member). */
static int json_str_member(struct mesh_buf *out, int *first, const char *name, const char *val)
{
    if (val == NULL)
        return 0;
    int rv = mesh_buf_printf(out, "%s\"%s\":", *first ? "" : ",", name);
    *first = 0;
    return rv ? rv : mesh_buf_json_str(out, val, strlen(val));
}

static int json_int_member(struct mesh_buf *out, int *first, const char *name, int64_t val)
{
    if (val < 0)
        return 0;
    int rv = mesh_buf_printf(out, "%s\"%s\":%" PRId64, *first ? "" : ",", name, val);
    *first = 0;
    return rv;
}

static int json_labels(struct mesh_buf *out, int *first, const char *name,
                       const struct mesh_labels *labels)
{
    if (labels->ns == NULL && labels->deploy == NULL && labels->pod == NULL)
        return 0;
    int rv = mesh_buf_printf(out, "%s\"%s\":{", *first ? "" : ",", name);
    int inner = 1;
    *first = 0;
    if (rv == 0)
        rv = json_str_member(out, &inner, "namespace", labels->ns);
    if (rv == 0)
        rv = json_str_member(out, &inner, "deployment", labels->deploy);
    if (rv == 0)
        rv = json_str_member(out, &inner, "pod", labels->pod);
    return rv ? rv : mesh_buf_append(out, "}", 1);
}

int mesh_evt_to_json(const struct mesh_evt *evt, struct mesh_buf *out)
{
    int first = 1, rv = mesh_buf_append(out, "{", 1);
    if (rv == 0)
        rv = json_int_member(out, &first, "ts", (int64_t)evt->ts_us);
    if (rv == 0 && evt->id != NULL)
        rv = json_str_member(out, &first, "id", evt->id);
    if (rv == 0)
        rv = json_str_member(out, &first, "proxy_direction",
                             evt->direction ? mesh_direction_name(evt->direction) : NULL);
    if (rv == 0)
        rv = json_str_member(out, &first, "src", evt->src);
    if (rv == 0)
        rv = json_str_member(out, &first, "dst", evt->dst);
    if (rv == 0)
        rv = json_labels(out, &first, "src_labels", &evt->src_labels);
    if (rv == 0)
        rv = json_labels(out, &first, "dst_labels", &evt->dst_labels);
    if (rv == 0)
        rv = json_str_member(out, &first, "proto",
                             evt->proto ? mesh_proto_name(evt->proto) : NULL);
    if (rv == 0)
        rv = json_str_member(out, &first, "method", evt->method);
    if (rv == 0)
        rv = json_str_member(out, &first, "scheme", evt->scheme);
    if (rv == 0)
        rv = json_str_member(out, &first, "authority", evt->authority);
    if (rv == 0)
        rv = json_str_member(out, &first, "path", evt->path);
    if (rv == 0)
        rv = json_int_member(out, &first, "status", evt->status);
    if (rv == 0)
        rv = json_int_member(out, &first, "grpc_status", evt->grpc_status);
    if (rv == 0)
        rv = json_int_member(out, &first, "reset", evt->reset);
    if (rv == 0)
        rv = json_str_member(out, &first, "error", evt->error);
    if (rv == 0)
        rv = json_int_member(out, &first, "latency_us", evt->latency_us);
    if (rv == 0)
        rv = json_int_member(out, &first, "duration_us", evt->duration_us);
    if (rv == 0)
        rv = json_int_member(out, &first, "req_bytes", (int64_t)evt->req_bytes);
    if (rv == 0)
        rv = json_int_member(out, &first, "rsp_bytes", (int64_t)evt->rsp_bytes);
    if (rv == 0)
        rv = json_str_member(out, &first, "classification",
                             mesh_evt_failed(evt) ? "failure" : "success");
    return rv ? rv : mesh_buf_append(out, "}", 1);
}
