/* proxy/metrics.c — request metrics and their Prometheus text (format 0.0.4).
 *
 * A series' label set is rendered once, escaped, and is its own hash key (escaping
 * is injective, the label order fixed), so render writes keys as they are. A request
 * series holds its counters, latency histogram (Linkerd's buckets, ms) and up to 64
 * response series. 10000 series in all: a request needing a new one past that counts
 * under authority="overflow", whose response kinds past 64 keep only the classification.
 * Label values are cut to 256 bytes and made valid UTF-8: a peer chooses the authority,
 * and Prometheus rejects a whole scrape over one bad byte. Rendering and escaping a
 * key costs more than the rest of a request's accounting, so a small direct-mapped
 * cache maps the raw label values (cut the same way) to their series first.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "mesh/strmap.h"
#include "mesh/tapsend.h"
#include "proxy.h"

#define MAX_SERIES     10000u
#define RSP_PER_SERIES 64u
#define LABEL_MAX      256u /* bytes of one label value, before escaping */

static const unsigned bucket_ms[] = {1,    2,    3,     4,     5,     10,    20,   30,   40,
                                     50,   100,  200,   300,   400,   500,   1000, 2000, 3000,
                                     4000, 5000, 10000, 20000, 30000, 40000, 50000};
#define NBUCKETS (sizeof(bucket_ms) / sizeof(bucket_ms[0]))

struct rsp_series {
    int status, grpc_status, failed; /* status/grpc_status -1: label left out */
    uint64_t count;
};

struct req_series {
    uint64_t requests;
    uint64_t buckets[NBUCKETS + 1]; /* not cumulative; the last is +Inf */
    uint64_t lat_count, lat_sum_us;
    struct rsp_series *rsp;
    size_t nrsp, rsp_alloc;
};

/* The raw values of a series' labels: direction, authority, dst namespace and
 * deployment, each cut at LABEL_MAX and NUL-terminated (self is the caller's). */
#define RAW_MAX (1 + 3 * (LABEL_MAX + 1))
#define KCACHE  32u

struct kcache_ent {
    const struct mesh_labels *self;
    struct req_series *series;
    size_t len;
    char raw[RAW_MAX];
};

struct px_metrics {
    struct mesh_strmap series; /* escaped label set → struct req_series */
    size_t nseries;            /* request and response series, overflow's included */
    struct kcache_ent kcache[KCACHE]; /* series are never freed: pointers stay valid */
};

struct px_metrics *px_metrics_new(void)
{
    struct px_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    /* room past the cap for the overflow series themselves */
    mesh_strmap_init(&m->series, sizeof(struct req_series), MAX_SERIES + 64);
    return m;
}

void px_metrics_free(struct px_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->series.n; i++)
        free(((struct req_series *)m->series.order[i]->val)->rsp);
    mesh_strmap_free(&m->series);
    free(m);
}

/* ---- label sets ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at |s| (|n| bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Appends `,name="value"` (no comma first when |buf| is empty), |value| escaped
 * per the text format and cleaned as the header says. NULL |value|: nothing. */
static int put_label(struct mesh_buf *buf, const char *name, const char *value)
{
    if (value == NULL)
        return 0;
    int rc = mesh_buf_printf(buf, "%s%s=\"", buf->len ? "," : "", name);
    const unsigned char *s = (const unsigned char *)value;
    size_t n = strnlen(value, LABEL_MAX + 1), taken = 0;
    if (n > LABEL_MAX)
        n = LABEL_MAX; /* a sequence cut here becomes U+FFFD below */
    while (rc == 0 && taken < n) {
        size_t len = utf8_seq(s + taken, n - taken);
        if (len == 0) {
            rc = mesh_buf_append(buf, "\xef\xbf\xbd", 3);
            taken++;
        } else if (s[taken] == '\\') {
            rc = mesh_buf_append(buf, "\\\\", 2), taken++;
        } else if (s[taken] == '"') {
            rc = mesh_buf_append(buf, "\\\"", 2), taken++;
        } else if (s[taken] == '\n') {
            rc = mesh_buf_append(buf, "\\n", 2), taken++;
        } else {
            rc = mesh_buf_append(buf, s + taken, len);
            taken += len;
        }
    }
    return rc != 0 ? rc : mesh_buf_append(buf, "\"", 1);
}

static int put_workload(struct mesh_buf *buf, const struct mesh_labels *self)
{
    int rc = put_label(buf, "namespace", self->ns);
    if (rc == 0)
        rc = put_label(buf, "deployment", self->deploy);
    if (rc == 0)
        rc = put_label(buf, "pod", self->pod);
    return rc;
}

static int make_key(struct mesh_buf *key, enum mesh_direction dir, const char *authority,
                    const struct mesh_labels *self, const struct mesh_labels *dst)
{
    mesh_buf_reset(key);
    int rc = put_label(key, "direction", mesh_direction_name(dir));
    if (rc == 0)
        rc = put_label(key, "authority", authority);
    if (rc == 0 && self != NULL)
        rc = put_workload(key, self);
    if (rc == 0 && dst != NULL)
        rc = put_label(key, "dst_namespace", dst->ns);
    if (rc == 0 && dst != NULL)
        rc = put_label(key, "dst_deployment", dst->deploy);
    return rc;
}

/* ---- recording --------------------------------------------------------------------------- */

static struct rsp_series *rsp_find(struct req_series *s, int status, int grpc, int failed)
{
    for (size_t i = 0; i < s->nrsp; i++)
        if (s->rsp[i].status == status && s->rsp[i].grpc_status == grpc &&
            s->rsp[i].failed == failed)
            return &s->rsp[i];
    return NULL;
}

static struct rsp_series *rsp_add(struct px_metrics *m, struct req_series *s, int status, int grpc,
                                  int failed)
{
    if (s->nrsp == s->rsp_alloc) {
        size_t na = s->rsp_alloc ? s->rsp_alloc * 2 : 4;
        struct rsp_series *r = realloc(s->rsp, na * sizeof(*r));
        if (r == NULL)
            return NULL;
        s->rsp = r;
        s->rsp_alloc = na;
    }
    struct rsp_series *r = &s->rsp[s->nrsp++];
    *r = (struct rsp_series){.status = status, .grpc_status = grpc, .failed = failed};
    m->nseries++;
    return r;
}

static void count(struct req_series *s, struct rsp_series *r, const struct mesh_evt *evt)
{
    s->requests++;
    r->count++;
    if (evt->latency_us < 0)
        return;
    uint64_t us = (uint64_t)evt->latency_us;
    size_t b = 0;
    while (b < NBUCKETS && us > (uint64_t)bucket_ms[b] * 1000u)
        b++;
    s->buckets[b]++;
    s->lat_count++;
    s->lat_sum_us += us;
}

/* The request series for |key|; a new one only when there is room for it and one
 * response series (|capped|), so a series never stays without responses. */
static struct req_series *series_get(struct px_metrics *m, const char *key, int capped)
{
    size_t saved = m->series.max;
    if (capped && m->nseries + 2 > MAX_SERIES)
        m->series.max = m->series.n; /* look up, never create */
    int created = 0;
    struct req_series *s = mesh_strmap_get(&m->series, key, &created);
    m->series.max = saved;
    if (created)
        m->nseries++;
    return s;
}

static void raw_put(char *raw, size_t *len, const char *value)
{
    size_t n = value != NULL ? strnlen(value, LABEL_MAX) : 0;
    memcpy(raw + *len, value != NULL ? value : "", n);
    raw[*len + n] = value != NULL ? '\0' : '\1'; /* NULL (no label) differs from "" */
    *len += n + 1;
}

/* The cache slot for these labels; *hit when it already holds their series. */
static struct kcache_ent *kcache_slot(struct px_metrics *m, enum mesh_direction dir,
                                      const char *authority, const struct mesh_labels *self,
                                      const struct mesh_labels *dst, char *raw, size_t *len,
                                      int *hit)
{
    *len = 0;
    raw[(*len)++] = (char)('0' + (int)dir);
    raw_put(raw, len, authority);
    raw_put(raw, len, dst != NULL ? dst->ns : NULL);
    raw_put(raw, len, dst != NULL ? dst->deploy : NULL);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < *len; i++)
        h = (h ^ (unsigned char)raw[i]) * 16777619u;
    struct kcache_ent *e = &m->kcache[h % KCACHE];
    *hit = e->series != NULL && e->self == self && e->len == *len && memcmp(e->raw, raw, *len) == 0;
    return e;
}

void px_metrics_request(struct px_metrics *m, const struct mesh_labels *self,
                        const struct mesh_evt *evt, const struct px_route *route)
{
    if (m == NULL || evt == NULL)
        return;
    static const struct mesh_labels none;
    if (self == NULL)
        self = &none;
    const struct mesh_labels *dst =
        evt->direction == MESH_DIR_OUTBOUND && route != NULL ? &route->labels : NULL;
    int failed = mesh_evt_failed(evt) != 0;
    int status = evt->status >= 0 ? evt->status : -1;
    int grpc = evt->grpc_status >= 0 ? evt->grpc_status : -1;

    char raw[RAW_MAX];
    size_t rawlen;
    int hit;
    struct kcache_ent *ent =
        kcache_slot(m, evt->direction, evt->authority, self, dst, raw, &rawlen, &hit);
    struct mesh_buf key;
    mesh_buf_init(&key, 4096);
    struct req_series *s = hit ? ent->series : NULL;
    struct rsp_series *r = NULL;
    if (s == NULL && make_key(&key, evt->direction, evt->authority, self, dst) == 0 &&
        (s = series_get(m, key.data, 1)) != NULL) {
        ent->self = self;
        ent->series = s;
        ent->len = rawlen;
        memcpy(ent->raw, raw, rawlen);
    }
    if (s != NULL) {
        r = rsp_find(s, status, grpc, failed);
        if (r == NULL && s->nrsp < RSP_PER_SERIES && m->nseries < MAX_SERIES)
            r = rsp_add(m, s, status, grpc, failed);
    }
    if (r == NULL) {
        if (make_key(&key, evt->direction, "overflow", self, NULL) != 0 ||
            (s = series_get(m, key.data, 0)) == NULL)
            goto out;
        r = rsp_find(s, status, grpc, failed);
        if (r == NULL && s->nrsp < RSP_PER_SERIES)
            r = rsp_add(m, s, status, grpc, failed);
        if (r == NULL) {
            status = grpc = -1;
            if ((r = rsp_find(s, status, grpc, failed)) == NULL)
                r = rsp_add(m, s, status, grpc, failed);
        }
        if (r == NULL)
            goto out; /* out of memory: this request goes uncounted */
    }
    count(s, r, evt);
out:
    mesh_buf_free(&key);
}

/* ---- rendering --------------------------------------------------------------------------- */

static int family(struct mesh_buf *out, const char *name, const char *type, const char *help)
{
    return mesh_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_requests(const struct px_metrics *m, struct mesh_buf *out)
{
    const struct mesh_strmap *map = &m->series;
    int rc = family(out, "request_total", "counter", "Total count of HTTP requests.");
    for (size_t i = 0; rc == 0 && i < map->n; i++) {
        const struct req_series *s = map->order[i]->val;
        rc = mesh_buf_printf(out, "request_total{%s} %" PRIu64 "\n", map->order[i]->key,
                             s->requests);
    }
    if (rc == 0)
        rc = family(out, "response_total", "counter", "Total count of HTTP responses.");
    for (size_t i = 0; rc == 0 && i < map->n; i++) {
        const struct req_series *s = map->order[i]->val;
        for (size_t j = 0; rc == 0 && j < s->nrsp; j++) {
            const struct rsp_series *r = &s->rsp[j];
            rc = mesh_buf_printf(out, "response_total{%s,classification=\"%s\"", map->order[i]->key,
                                 r->failed ? "failure" : "success");
            if (rc == 0 && r->status >= 0)
                rc = mesh_buf_printf(out, ",status_code=\"%d\"", r->status);
            if (rc == 0 && r->grpc_status >= 0)
                rc = mesh_buf_printf(out, ",grpc_status_code=\"%d\"", r->grpc_status);
            if (rc == 0)
                rc = mesh_buf_printf(out, "} %" PRIu64 "\n", r->count);
        }
    }
    if (rc == 0)
        rc = family(out, "response_latency_ms", "histogram",
                    "Elapsed times between a request's headers being received and its "
                    "response's headers being sent, in milliseconds.");
    for (size_t i = 0; rc == 0 && i < map->n; i++) {
        const struct req_series *s = map->order[i]->val;
        const char *key = map->order[i]->key;
        uint64_t cumulative = 0;
        for (size_t b = 0; rc == 0 && b < NBUCKETS; b++) {
            cumulative += s->buckets[b];
            rc = mesh_buf_printf(out, "response_latency_ms_bucket{%s,le=\"%u\"} %" PRIu64 "\n", key,
                                 bucket_ms[b], cumulative);
        }
        if (rc == 0)
            rc = mesh_buf_printf(out,
                                 "response_latency_ms_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n"
                                 "response_latency_ms_sum{%s} %" PRIu64 ".%03u\n"
                                 "response_latency_ms_count{%s} %" PRIu64 "\n",
                                 key, s->lat_count, key, s->lat_sum_us / 1000,
                                 (unsigned)(s->lat_sum_us % 1000), key, s->lat_count);
    }
    return rc;
}

/* One line per direction of |name|, from the px_tcp_stats member at |offset|. */
static int render_tcp(const struct px *px, struct mesh_buf *out, const char *name, const char *type,
                      const char *help, size_t offset)
{
    struct mesh_buf labels;
    int rc = family(out, name, type, help);
    mesh_buf_init(&labels, 4096);
    for (int d = 0; rc == 0 && d < 2; d++) {
        rc = make_key(&labels, d ? MESH_DIR_OUTBOUND : MESH_DIR_INBOUND, NULL, &px->cfg.self, NULL);
        uint64_t value;
        memcpy(&value, (const char *)&px->tcp[d] + offset, sizeof(value));
        if (rc == 0)
            rc = mesh_buf_printf(out, "%s{%s} %" PRIu64 "\n", name, labels.data, value);
    }
    mesh_buf_free(&labels);
    return rc;
}

int px_metrics_render(const struct px *px, struct mesh_buf *out)
{
    int rc = 0;
    if (px->metrics != NULL)
        rc = render_requests(px->metrics, out);
    if (rc == 0)
        rc = render_tcp(px, out, "tcp_open_total", "counter", "Total count of opened connections.",
                        offsetof(struct px_tcp_stats, open_total));
    if (rc == 0)
        rc = render_tcp(px, out, "tcp_close_total", "counter", "Total count of closed connections.",
                        offsetof(struct px_tcp_stats, close_total));
    if (rc == 0)
        rc = render_tcp(px, out, "tcp_open_connections", "gauge",
                        "Number of currently-open connections.",
                        offsetof(struct px_tcp_stats, open_now));
    if (rc == 0)
        rc = render_tcp(px, out, "tcp_read_bytes_total", "counter",
                        "Total count of bytes read from peers.",
                        offsetof(struct px_tcp_stats, read_bytes));
    if (rc == 0)
        rc = render_tcp(px, out, "tcp_write_bytes_total", "counter",
                        "Total count of bytes written to peers.",
                        offsetof(struct px_tcp_stats, write_bytes));

    struct mesh_tapsend_counters tc = {0};
    if (px->tap != NULL)
        mesh_tapsend_counters(px->tap, &tc);
    uint64_t dropped = tc.dropped + px->tap_off_events; /* tap off: nothing is sent */
    struct mesh_buf labels;
    mesh_buf_init(&labels, 4096);
    if (rc == 0)
        rc = put_workload(&labels, &px->cfg.self);
    const char *lb = labels.len ? "{" : "", *le = labels.len ? "}" : "";
    const char *lv = labels.len ? labels.data : "";
    if (rc == 0)
        rc = family(out, "tap_events_sent_total", "counter",
                    "Total count of tap events the collector acknowledged.");
    if (rc == 0)
        rc =
            mesh_buf_printf(out, "tap_events_sent_total%s%s%s %" PRIu64 "\n", lb, lv, le, tc.acked);
    if (rc == 0)
        rc = family(out, "tap_events_dropped_total", "counter",
                    "Total count of tap events dropped: queue full, or tap off.");
    if (rc == 0)
        rc = mesh_buf_printf(out, "tap_events_dropped_total%s%s%s %" PRIu64 "\n", lb, lv, le,
                             dropped);
    mesh_buf_free(&labels);
    return rc;
}
