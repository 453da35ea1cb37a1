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

/* Bytes |s| takes in a copy, and the copy at *|p| (NULL stays NULL). */
static size_t str_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static char *copy_str(char **p, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t len = strlen(s) + 1;
    char *to = memcpy(*p, s, len);
    *p += len;
    return to;
}

int mesh_evt_copy(struct mesh_evt_copy *dst, const struct mesh_evt *src)
{
    const char **from[] = {EVT_STRINGS((struct mesh_evt *)src)};
    size_t n = sizeof(from) / sizeof(from[0]), nh = src->headers != NULL ? src->nheaders : 0;
    /* one allocation: the header array first (malloc's alignment), then
     * every string */
    size_t total = nh * sizeof(struct mesh_header);
    for (size_t i = 0; i < n; i++)
        total += str_size(*from[i]);
    for (size_t i = 0; i < nh; i++)
        total += str_size(src->headers[i].name) + str_size(src->headers[i].value);
    dst->evt = *src;
    dst->strings = malloc(total ? total : 1);
    if (dst->strings == NULL)
        return MESH_ENOMEM;
    const char **to[] = {EVT_STRINGS(&dst->evt)};
    struct mesh_header *headers = (struct mesh_header *)(void *)dst->strings;
    char *p = dst->strings + nh * sizeof(struct mesh_header);
    for (size_t i = 0; i < n; i++)
        *to[i] = copy_str(&p, *from[i]);
    for (size_t i = 0; i < nh; i++) {
        headers[i] = src->headers[i];
        headers[i].name = copy_str(&p, src->headers[i].name);
        headers[i].value = copy_str(&p, src->headers[i].value);
    }
    dst->evt.headers = nh ? headers : NULL;
    dst->evt.nheaders = nh;
    return 0;
}

void mesh_evt_copy_free(struct mesh_evt_copy *copy)
{
    free(copy->strings);
    copy->strings = NULL;
}

/* The JSON form is written into one reservation sized for the worst case,
 * not with a formatted print per field: replay prints one object per
 * request, and printf was most of its time. Each member is written with its
 * leading comma; the first comma then becomes the opening brace. */

/* A string member and its length, measured once for the bound and the copy. */
struct json_str {
    const char *s;
    size_t len;
};

static struct json_str json_str(const char *s)
{
    return (struct json_str){s, s != NULL ? strlen(s) : 0};
}

static size_t str_bound(struct json_str str)
{
    return str.s != NULL ? MESH_JSON_STR_MAX(str.len) : 0;
}

/* ,"name": — |lit| is a literal, so its length is a constant */
#define KEY(p, lit) (memcpy((p), ",\"" lit "\":", sizeof(",\"" lit "\":") - 1), \
                     (p) + sizeof(",\"" lit "\":") - 1)

static char *put_true(char *p)
{
    memcpy(p, "true", 4);
    return p + 4;
}

static char *put_str(char *p, struct json_str str)
{
    return mesh_json_put_str(p, str.s, str.len);
}

/* Our own names (direction, protocol, classification): nothing to escape. */
static char *put_name(char *p, const char *name)
{
    size_t len = strlen(name);
    *p++ = '"';
    memcpy(p, name, len);
    p += len;
    *p++ = '"';
    return p;
}

/* Decimal digits of |v|, written from the last, two at a time from a table. */
static char *put_u64(char *p, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    /* 10^k, except 0 for k = 0 so that 0 has one digit too */
    static const uint64_t pow10[20] = {0, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                       100000000, 1000000000, 10000000000u, 100000000000u,
                                       1000000000000u, 10000000000000u, 100000000000000u,
                                       1000000000000000u, 10000000000000000u,
                                       100000000000000000u, 1000000000000000000u,
                                       10000000000000000000u};
    /* digits from the bit length: 1233 / 4096 is just below log10(2) */
    size_t n = (size_t)(64 - __builtin_clzll(v | 1)) * 1233 >> 12;
    n += v >= pow10[n];
    char *end = p + n;
    while (v >= 100) {
        end -= 2;
        memcpy(end, pairs + v % 100 * 2, 2);
        v /= 100;
    }
    if (v >= 10)
        memcpy(end - 2, pairs + v * 2, 2);
    else
        end[-1] = (char)('0' + v);
    return p + n;
}

/* Members whose absent value is NULL or negative are left out. */
#define STR(p, lit, str) ((str).s != NULL ? put_str(KEY(p, lit), (str)) : (p))
#define INT(p, lit, val) ((val) >= 0 ? put_u64(KEY(p, lit), (uint64_t)(val)) : (p))

/* At least one of the three |labels| is present. */
static char *put_labels(char *p, const struct json_str *labels)
{
    /* the object's members are written like the event's, comma first */
    char *open = p;
    p = STR(p, "namespace", labels[0]);
    p = STR(p, "deployment", labels[1]);
    p = STR(p, "pod", labels[2]);
    *open = '{';
    *p++ = '}';
    return p;
}

int mesh_evt_to_json(const struct mesh_evt *evt, struct mesh_buf *out)
{
    struct json_str id = json_str(evt->id), src = json_str(evt->src), dst = json_str(evt->dst);
    struct json_str method = json_str(evt->method), scheme = json_str(evt->scheme);
    struct json_str authority = json_str(evt->authority), path = json_str(evt->path);
    struct json_str error = json_str(evt->error);
    const struct mesh_labels *side[2] = {&evt->src_labels, &evt->dst_labels};
    struct json_str labels[2][3];
    int labeled[2];
    /* every name and number fits in 512 bytes; strings at their worst case */
    size_t bound = 512 + str_bound(id) + str_bound(src) + str_bound(dst) + str_bound(method) +
                   str_bound(scheme) + str_bound(authority) + str_bound(path) + str_bound(error);
    size_t nh = evt->headers != NULL ? evt->nheaders : 0;
    bound += 48; /* ,"headers":[ ,"response_headers":[ */
    for (size_t i = 0; i < nh; i++) /* {"name":…,"value":…} or "redacted":true, "trailer":true */
        bound += 64 + str_bound(json_str(evt->headers[i].name)) +
                 str_bound(json_str(evt->headers[i].value));
    for (int i = 0; i < 2; i++) {
        labeled[i] = side[i]->ns != NULL || side[i]->deploy != NULL || side[i]->pod != NULL;
        if (!labeled[i])
            continue;
        labels[i][0] = json_str(side[i]->ns);
        labels[i][1] = json_str(side[i]->deploy);
        labels[i][2] = json_str(side[i]->pod);
        for (int k = 0; k < 3; k++)
            bound += str_bound(labels[i][k]);
    }
    size_t start = out->len;
    char *p;
    int rv = mesh_buf_append_space(out, bound, &p);
    if (rv != 0)
        return rv;
    char *begin = p;
    p = INT(p, "ts", (int64_t)evt->ts_us);
    p = STR(p, "id", id);
    if (evt->direction)
        p = put_name(KEY(p, "proxy_direction"), mesh_direction_name(evt->direction));
    p = STR(p, "src", src);
    p = STR(p, "dst", dst);
    if (labeled[0])
        p = put_labels(KEY(p, "src_labels"), labels[0]);
    if (labeled[1])
        p = put_labels(KEY(p, "dst_labels"), labels[1]);
    if (evt->proto)
        p = put_name(KEY(p, "proto"), mesh_proto_name(evt->proto));
    p = STR(p, "method", method);
    p = STR(p, "scheme", scheme);
    p = STR(p, "authority", authority);
    p = STR(p, "path", path);
    p = INT(p, "status", evt->status);
    p = INT(p, "grpc_status", evt->grpc_status);
    p = INT(p, "reset", evt->reset);
    p = STR(p, "error", error);
    p = INT(p, "latency_us", evt->latency_us);
    p = INT(p, "duration_us", evt->duration_us);
    p = INT(p, "req_bytes", (int64_t)evt->req_bytes);
    p = INT(p, "rsp_bytes", (int64_t)evt->rsp_bytes);
    for (unsigned response = 0; response < 2; response++) {
        char *list = p;
        if (response)
            p = KEY(p, "response_headers");
        else
            p = KEY(p, "headers");
        *p++ = '[';
        size_t n = 0;
        for (size_t i = 0; i < nh; i++) {
            const struct mesh_header *h = &evt->headers[i];
            if (h->response != response)
                continue;
            n++;
            char *open = p;
            p = STR(p, "name", json_str(h->name));
            if (h->redacted)
                p = put_true(KEY(p, "redacted"));
            else
                p = STR(p, "value", json_str(h->value));
            if (h->trailer && response)
                p = put_true(KEY(p, "trailer"));
            if (p == open)
                *p++ = '{';
            else
                *open = '{';
            *p++ = '}';
            *p++ = ',';
        }
        if (n == 0)
            p = list; /* none of this kind: no member */
        else
            p[-1] = ']';
    }
    p = put_name(KEY(p, "classification"), mesh_evt_failed(evt) ? "failure" : "success");
    *begin = '{'; /* over the first member's comma */
    *p++ = '}';
    out->len = start + (size_t)(p - begin);
    out->data[out->len] = '\0';
    return 0;
}
