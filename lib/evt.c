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

/* The JSON form is written into one reservation sized for the worst case,
 * not with a formatted print per field: replay prints one object per
 * request, and printf was most of its time. */

static char *put_key(char *p, int *first, const char *name, size_t len)
{
    if (!*first)
        *p++ = ',';
    *first = 0;
    *p++ = '"';
    memcpy(p, name, len);
    p += len;
    *p++ = '"';
    *p++ = ':';
    return p;
}

static char *put_str(char *p, int *first, const char *name, size_t nlen, const char *val)
{
    if (val == NULL)
        return p;
    p = put_key(p, first, name, nlen);
    return mesh_json_put_str(p, val, strlen(val));
}

static char *put_int(char *p, int *first, const char *name, size_t nlen, int64_t val)
{
    if (val < 0)
        return p;
    char digits[24], *d = digits + sizeof(digits);
    uint64_t v = (uint64_t)val;
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    p = put_key(p, first, name, nlen);
    memcpy(p, d, (size_t)(digits + sizeof(digits) - d));
    return p + (digits + sizeof(digits) - d);
}

#define STR(p, first, lit, val) put_str(p, first, lit, sizeof(lit) - 1, val)
#define INT(p, first, lit, val) put_int(p, first, lit, sizeof(lit) - 1, val)

static char *put_labels(char *p, int *first, const char *name, size_t nlen,
                        const struct mesh_labels *labels)
{
    if (labels->ns == NULL && labels->deploy == NULL && labels->pod == NULL)
        return p;
    int inner = 1;
    p = put_key(p, first, name, nlen);
    *p++ = '{';
    p = STR(p, &inner, "namespace", labels->ns);
    p = STR(p, &inner, "deployment", labels->deploy);
    p = STR(p, &inner, "pod", labels->pod);
    *p++ = '}';
    return p;
}

static size_t str_bound(const char *s)
{
    return s ? MESH_JSON_STR_MAX(strlen(s)) : 0;
}

int mesh_evt_to_json(const struct mesh_evt *evt, struct mesh_buf *out)
{
    /* every name and number fits in 512 bytes; strings at their worst case */
    size_t bound = 512 + str_bound(evt->id) + str_bound(evt->src) + str_bound(evt->dst) +
                   str_bound(evt->src_labels.ns) + str_bound(evt->src_labels.deploy) +
                   str_bound(evt->src_labels.pod) + str_bound(evt->dst_labels.ns) +
                   str_bound(evt->dst_labels.deploy) + str_bound(evt->dst_labels.pod) +
                   str_bound(evt->method) + str_bound(evt->scheme) + str_bound(evt->authority) +
                   str_bound(evt->path) + str_bound(evt->error);
    size_t start = out->len;
    char *p;
    int rv = mesh_buf_append_space(out, bound, &p), first = 1;
    if (rv != 0)
        return rv;
    char *begin = p;
    *p++ = '{';
    p = INT(p, &first, "ts", (int64_t)evt->ts_us);
    p = STR(p, &first, "id", evt->id);
    p = STR(p, &first, "proxy_direction",
            evt->direction ? mesh_direction_name(evt->direction) : NULL);
    p = STR(p, &first, "src", evt->src);
    p = STR(p, &first, "dst", evt->dst);
    p = put_labels(p, &first, "src_labels", 10, &evt->src_labels);
    p = put_labels(p, &first, "dst_labels", 10, &evt->dst_labels);
    p = STR(p, &first, "proto", evt->proto ? mesh_proto_name(evt->proto) : NULL);
    p = STR(p, &first, "method", evt->method);
    p = STR(p, &first, "scheme", evt->scheme);
    p = STR(p, &first, "authority", evt->authority);
    p = STR(p, &first, "path", evt->path);
    p = INT(p, &first, "status", evt->status);
    p = INT(p, &first, "grpc_status", evt->grpc_status);
    p = INT(p, &first, "reset", evt->reset);
    p = STR(p, &first, "error", evt->error);
    p = INT(p, &first, "latency_us", evt->latency_us);
    p = INT(p, &first, "duration_us", evt->duration_us);
    p = INT(p, &first, "req_bytes", (int64_t)evt->req_bytes);
    p = INT(p, &first, "rsp_bytes", (int64_t)evt->rsp_bytes);
    p = STR(p, &first, "classification", mesh_evt_failed(evt) ? "failure" : "success");
    *p++ = '}';
    out->len = start + (size_t)(p - begin);
    out->data[out->len] = '\0';
    return 0;
}
