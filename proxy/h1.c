/* proxy/h1.c — HTTP/1.x reverse proxying (px_h1_serve, contract in proxy.h).
 *
 * One request at a time per downstream connection (h1p_conn): pipelined requests
 * wait in |in| (capped) until the one in flight is answered. Heads are rebuilt
 * without hop-by-hop fields and sent upstream as HTTP/1.1 on keep-alive
 * connections pooled per endpoint (h1p_up in ep->h1_pool); bodies are streamed,
 * chunked ones re-chunked with trailers. A side is not read while the other
 * side's output is over H1P_OUT_SOFT. Upgrade is not tunnelled: the field is
 * dropped, so the request goes on as plain HTTP; CONNECT gets 501. Everything
 * reads into one module-wide buffer: an idle connection holds no I/O memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/h1.h"
#include "proxy.h"

#define H1P_READ_SIZE (64u * 1024u)
#define H1P_OUT_SOFT (256u * 1024u) /* above it, the side feeding this buffer is not read */
#define H1P_IN_SOFT (64u * 1024u)   /* pipelined bytes held while a request is in flight */
#define H1P_POOL_MAX 128u           /* idle upstream connections kept per endpoint */
#define H1P_POOL_IDLE_MS 15000u     /* under the usual backend keep-alive timeouts */
#define H1P_LINGER_MS 2000u
#define H1P_KEEP_BUF (64u * 1024u)  /* output buffers bigger than this are freed when idle */
#define H1P_MAX_CONN_TOKENS 16

/* One module-wide read buffer: the loop is single-threaded and input is
 * parsed before the next read, so only unparsed leftovers need a home. */
static uint8_t h1p_scratch[H1P_READ_SIZE];

struct h1p_conn;

/* An upstream connection: owned by one request, or idle in its endpoint's pool. */
struct h1p_up {
    int fd;
    struct px *px;
    struct px_endpoint *ep;
    struct h1p_pool *pool;
    struct h1p_conn *owner;     /* NULL while idle in the pool */
    struct mesh_h1_parser parser; /* responses */
    struct mesh_buf out;        /* request bytes not yet written */
    int64_t connect_timer;
    uint64_t idle_since_us;
    int connecting;
    int reused;                 /* came from the pool for the current request */
    struct h1p_up *next, *prev; /* pool->idle */
};

struct h1p_pool {
    struct px *px;
    struct px_endpoint *ep;
    struct h1p_up *idle; /* most recently used first */
    unsigned nidle;
    int64_t sweep_timer;
};

/* The request in flight on a connection (the "stream" of HTTP/1). */
struct h1p_req {
    int active;
    uint64_t n; /* request number on the connection: the tap id's stream part */
    uint64_t ts_us, start_us, done_us; /* done_us: the request was read whole */
    struct px_route *route;
    struct px_endpoint *ep;
    struct h1p_up *up;
    uint64_t req_bytes, rsp_bytes, up_sent;
    int64_t latency_us;
    int status;
    const char *error;
    int method_id, idempotent, has_body, req_chunked;
    int req_done;      /* the whole request was read and queued upstream */
    int rsp_started;   /* a response byte came from upstream */
    int rsp_head_sent; /* the final response head is queued downstream */
    int rsp_done;
    int rsp_chunked_out; /* re-chunk the response body downstream */
    int rsp_trailers_sent, req_trailers_sent;
    int up_reusable;
    int retried;
    char dst_hdr[128]; /* PX_DST_HEADER of the response (outbound), "" if none */
    struct mesh_hdrcap hdrs; /* --tap-header: the response head's until the tap, then the request's too */
};

struct h1p_conn {
    struct px_conn *conn;
    struct px *px;
    struct mesh_h1_parser parser; /* requests */
    struct mesh_buf in;           /* read, not yet parsed */
    struct mesh_buf out;          /* not yet written downstream */
    struct h1p_req req;
    int in_head;   /* a request head has begun and is not complete */
    int in_body;   /* a request head was seen, its END not yet */
    int version;   /* of the current request: 10, 11 */
    int keep_alive;
    int closing;   /* close once |out| is written and no request is in flight */
    int abort;     /* close now */
    int lingering; /* shut down for writing, discarding input until EOF */
    int client_eof;
    int draining;
    uint64_t head_start_us, last_active_us, linger_until_us, drain_until_us;
    int64_t timer;
    uint64_t timer_at_us;
};

static void h1p_settle(struct h1p_conn *hc);
static void h1p_up_close(struct h1p_up *up);
static void h1p_on_up(struct mesh_loop *loop, int fd, unsigned events, void *ctx);

/* ---- small writers ---------------------------------------------------------------------- */

static int h1p_put(struct mesh_buf *buf, const void *data, size_t len)
{
    return mesh_buf_append(buf, data, len);
}

static int h1p_puts(struct mesh_buf *buf, const char *str)
{
    return mesh_buf_append(buf, str, strlen(str));
}

static int h1p_put_hex(struct mesh_buf *buf, uint64_t n)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = "0123456789abcdef"[n & 15];
        n >>= 4;
    } while (n != 0);
    return h1p_put(buf, tmp + i, sizeof(tmp) - i);
}

static int h1p_put_dec(struct mesh_buf *buf, uint64_t n)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    return h1p_put(buf, tmp + i, sizeof(tmp) - i);
}

/* "name: value\r\n" for every field of |fields| ("name\0value\0"...). */
static int h1p_put_fields(struct mesh_buf *buf, const char *fields, size_t len)
{
    size_t pos = 0;
    const char *name, *value;
    int rv = 0;
    while (rv == 0 && mesh_h1_field_next(fields, len, &pos, &name, &value)) {
        rv |= h1p_puts(buf, name);
        rv |= h1p_put(buf, ": ", 2);
        rv |= h1p_puts(buf, value);
        rv |= h1p_put(buf, "\r\n", 2);
    }
    return rv;
}

/* ---- hop-by-hop fields ------------------------------------------------------------------- */

struct h1p_tokens {
    const char *tok[H1P_MAX_CONN_TOKENS];
    size_t len[H1P_MAX_CONN_TOKENS];
    int n;
};

/* The names listed by the Connection fields of |fields|: hop-by-hop too. */
static void h1p_conn_tokens(const char *fields, size_t flen, struct h1p_tokens *t)
{
    size_t pos = 0;
    const char *name, *value;
    t->n = 0;
    while (mesh_h1_field_next(fields, flen, &pos, &name, &value)) {
        if (strcasecmp(name, "connection") != 0)
            continue;
        for (const char *c = value; *c != 0 && t->n < H1P_MAX_CONN_TOKENS;) {
            while (*c == ' ' || *c == '\t' || *c == ',')
                c++;
            const char *e = c;
            while (*e != 0 && *e != ',' && *e != ' ' && *e != '\t')
                e++;
            if (e > c) {
                t->tok[t->n] = c;
                t->len[t->n++] = (size_t)(e - c);
            }
            c = e;
        }
    }
}

/* 1 when |name| must not cross the proxy. */
static int h1p_hop_by_hop(const char *name, const struct h1p_tokens *t)
{
    switch (name[0] | 0x20) {
    case 'c':
        if (strcasecmp(name, "connection") == 0)
            return 1;
        break;
    case 'k':
        if (strcasecmp(name, "keep-alive") == 0)
            return 1;
        break;
    case 'm': /* ours to set: proxy.h "who is calling" */
        if (strcasecmp(name, PX_SRC_HEADER) == 0 || strcasecmp(name, PX_DST_HEADER) == 0)
            return 1;
        break;
    case 'p':
        if (strcasecmp(name, "proxy-connection") == 0)
            return 1;
        break;
    case 't':
        if (strcasecmp(name, "te") == 0 || strcasecmp(name, "trailer") == 0)
            return 1;
        break;
    case 'u':
        if (strcasecmp(name, "upgrade") == 0)
            return 1;
        break;
    default:
        break;
    }
    size_t nlen = strlen(name);
    for (int i = 0; i < t->n; i++)
        if (t->len[i] == nlen && strncasecmp(t->tok[i], name, nlen) == 0)
            return 1;
    return 0;
}

/* ---- timers ------------------------------------------------------------------------------ */

/* When the connection must act next (0: nothing to wait for). */
/* --response-timeout: when the request in flight, sent whole with no
 * response byte yet, times out; 0 when none applies. */
static uint64_t h1p_response_deadline(const struct h1p_conn *hc)
{
    unsigned ms = hc->px->cfg.limits.response_timeout_ms;
    const struct h1p_req *req = &hc->req;
    if (ms == 0 || !req->active || !req->req_done || req->rsp_started)
        return 0;
    return req->done_us + (uint64_t)ms * 1000u;
}

static uint64_t h1p_deadline(const struct h1p_conn *hc)
{
    const struct px_limits *lim = &hc->px->cfg.limits;
    if (hc->lingering)
        return hc->linger_until_us;
    if (hc->drain_until_us != 0)
        return hc->drain_until_us;
    /* The client closed its side with a request in flight: it may be a
     * half-close (still reading) or a client gone for good (its own timeout
     * ran out), which only a write would tell. Without a response timeout an
     * upstream that never answers would hold both sockets for ever; the idle
     * timeout bounds it: nothing moved either way for that long ends it. */
    if (hc->req.active) {
        uint64_t at = 0;
        if (hc->client_eof)
            at = hc->last_active_us + (uint64_t)lim->idle_timeout_ms * 1000u;
        uint64_t rsp = h1p_response_deadline(hc);
        if (rsp != 0 && (at == 0 || rsp < at))
            at = rsp;
        return at;
    }
    if (hc->in_head)
        return hc->head_start_us + (uint64_t)lim->header_timeout_ms * 1000u;
    return hc->last_active_us + (uint64_t)lim->idle_timeout_ms * 1000u;
}

static int h1p_on_timer(struct mesh_loop *loop, int64_t id, void *ctx);

/* Arms the one timer of |hc| lazily: a timer due before the deadline only
 * re-arms itself, so activity never touches the timer heap. */
static void h1p_arm(struct h1p_conn *hc)
{
    uint64_t at = h1p_deadline(hc);
    if (at == 0 || (hc->timer > 0 && hc->timer_at_us <= at))
        return;
    if (hc->timer > 0)
        mesh_loop_del_timer(hc->px->loop, hc->timer);
    uint64_t now = mesh_loop_now_us();
    uint64_t ms = at > now ? (at - now + 999) / 1000 : 0;
    hc->timer = mesh_loop_add_timer(hc->px->loop, ms, h1p_on_timer, hc);
    hc->timer_at_us = at;
    if (hc->timer < 0)
        hc->timer = 0;
}

/* ---- the upstream pool ------------------------------------------------------------------- */

static struct h1p_pool *h1p_pool_of(struct px *px, struct px_endpoint *ep)
{
    if (ep->h1_pool == NULL) {
        struct h1p_pool *pool = calloc(1, sizeof(*pool));
        if (pool == NULL)
            return NULL;
        pool->px = px;
        pool->ep = ep;
        ep->h1_pool = pool;
    }
    return ep->h1_pool;
}

static void h1p_pool_unlink(struct h1p_up *up)
{
    struct h1p_pool *pool = up->pool;
    if (up->prev != NULL)
        up->prev->next = up->next;
    else
        pool->idle = up->next;
    if (up->next != NULL)
        up->next->prev = up->prev;
    up->next = up->prev = NULL;
    pool->nidle--;
}

static int h1p_pool_sweep(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct h1p_pool *pool = ctx;
    uint64_t now = mesh_loop_now_us();
    for (struct h1p_up *up = pool->idle, *next; up != NULL; up = next) {
        next = up->next;
        if (pool->px->draining || now - up->idle_since_us >= H1P_POOL_IDLE_MS * 1000ull) {
            h1p_pool_unlink(up);
            h1p_up_close(up);
        }
    }
    if (pool->nidle > 0)
        return H1P_POOL_IDLE_MS / 4;
    pool->sweep_timer = 0;
    return MESH_TIMER_DONE;
}

static void h1p_pool_drain(struct h1p_pool *pool)
{
    if (pool == NULL)
        return;
    while (pool->idle != NULL) {
        struct h1p_up *up = pool->idle;
        h1p_pool_unlink(up);
        h1p_up_close(up);
    }
    if (pool->sweep_timer > 0)
        mesh_loop_del_timer(pool->px->loop, pool->sweep_timer);
    pool->sweep_timer = 0;
}

void px_h1_free_pool(struct px_endpoint *ep)
{
    h1p_pool_drain(ep->h1_pool);
    free(ep->h1_pool);
    ep->h1_pool = NULL;
}

void px_h1_free_pools(struct px *px)
{
    for (size_t i = 0; i <= px->nroutes; i++) {
        struct px_route *route = i < px->nroutes ? &px->routes[i] : &px->inbound_route;
        for (size_t k = 0; k < route->neps; k++)
            px_h1_free_pool(&route->eps[k]);
    }
}

/* Closes every idle upstream connection of |px| (it drains or stops). */
static void h1p_pools_drain(struct px *px)
{
    for (size_t i = 0; i < px->nroutes; i++)
        for (size_t k = 0; k < px->routes[i].neps; k++)
            h1p_pool_drain(px->routes[i].eps[k].h1_pool);
    for (size_t k = 0; k < px->inbound_route.neps; k++)
        h1p_pool_drain(px->inbound_route.eps[k].h1_pool);
}

/* Keeps |up| for the next request to its endpoint, or closes it. */
static void h1p_pool_put(struct h1p_up *up)
{
    struct h1p_pool *pool = up->pool;
    up->owner = NULL;
    up->reused = 0;
    if (pool == NULL || up->px->draining || pool->nidle >= H1P_POOL_MAX ||
        mesh_loop_mod_fd(up->px->loop, up->fd, MESH_READ) != 0) {
        h1p_up_close(up);
        return;
    }
    if (up->out.alloc > H1P_KEEP_BUF)
        mesh_buf_free(&up->out);
    up->idle_since_us = mesh_loop_now_us();
    up->prev = NULL;
    up->next = pool->idle;
    if (pool->idle != NULL)
        pool->idle->prev = up;
    pool->idle = up;
    pool->nidle++;
    if (pool->sweep_timer == 0) {
        int64_t id = mesh_loop_add_timer(up->px->loop, H1P_POOL_IDLE_MS / 4, h1p_pool_sweep, pool);
        pool->sweep_timer = id > 0 ? id : 0;
    }
}

static void h1p_up_close(struct h1p_up *up)
{
    if (up->connect_timer > 0)
        mesh_loop_del_timer(up->px->loop, up->connect_timer);
    mesh_loop_del_fd(up->px->loop, up->fd);
    close(up->fd);
    mesh_h1_parser_free(&up->parser);
    mesh_buf_free(&up->out);
    free(up);
}

static int h1p_on_connect_timeout(struct mesh_loop *loop, int64_t id, void *ctx);

/* A new connection to |ep|; NULL when the socket cannot even be made. */
static struct h1p_up *h1p_up_new(struct h1p_conn *hc, struct px_endpoint *ep)
{
    struct px *px = hc->px;
    struct h1p_up *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->fd = px_connect(ep);
    if (up->fd < 0) {
        free(up);
        return NULL;
    }
    up->px = px;
    up->ep = ep;
    up->pool = h1p_pool_of(px, ep);
    up->owner = hc;
    up->connecting = 1;
    size_t max_head = px->cfg.limits.max_header;
    mesh_h1_parser_init(&up->parser, MESH_H1_RESPONSE, max_head, 0);
    mesh_buf_init(&up->out, H1P_OUT_SOFT + 2 * H1P_READ_SIZE + 2 * max_head + 4096);
    if (mesh_loop_add_fd(px->loop, up->fd, MESH_WRITE, h1p_on_up, up) != 0) {
        close(up->fd);
        mesh_h1_parser_free(&up->parser);
        free(up);
        return NULL;
    }
    up->connect_timer = mesh_loop_add_timer(px->loop, px->cfg.limits.connect_timeout_ms,
                                            h1p_on_connect_timeout, up);
    if (up->connect_timer < 0)
        up->connect_timer = 0;
    return up;
}

/* An idle connection to |ep| from the pool, else a new one. */
static struct h1p_up *h1p_up_get(struct h1p_conn *hc, struct px_endpoint *ep)
{
    struct h1p_pool *pool = ep->h1_pool;
    if (pool != NULL && pool->idle != NULL) {
        struct h1p_up *up = pool->idle;
        h1p_pool_unlink(up);
        up->owner = hc;
        up->reused = 1;
        return up;
    }
    return h1p_up_new(hc, ep);
}

/* ---- requests ---------------------------------------------------------------------------- */

static int h1p_idempotent(const char *method)
{
    static const char *const list[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        if (strcmp(method, list[i]) == 0)
            return 1;
    return 0;
}

/* The request head as it goes upstream, into |out|. */
static int h1p_put_req_head(struct h1p_conn *hc, struct mesh_buf *out)
{
    const struct mesh_h1_msg *m = &hc->parser.msg;
    struct h1p_tokens tokens;
    int rv = 0;
    h1p_conn_tokens(m->fields, m->fields_len, &tokens);
    rv |= h1p_put(out, m->method, m->method_len);
    rv |= h1p_put(out, " ", 1);
    rv |= h1p_put(out, m->target, m->target_len);
    rv |= h1p_put(out, " HTTP/1.1\r\n", 11);
    if (m->host == NULL) /* an HTTP/1.0 client: HTTP/1.1 wants the field */
        rv |= h1p_puts(out, "Host: "), rv |= h1p_puts(out, hc->req.ep->name),
            rv |= h1p_put(out, "\r\n", 2);
    size_t pos = 0;
    const char *name, *value;
    while (mesh_h1_field_next(m->fields, m->fields_len, &pos, &name, &value)) {
        if (h1p_hop_by_hop(name, &tokens))
            continue;
        rv |= h1p_puts(out, name);
        rv |= h1p_put(out, ": ", 2);
        rv |= h1p_puts(out, value);
        rv |= h1p_put(out, "\r\n", 2);
    }
    char src[256];
    size_t srclen = hc->conn->dir == MESH_DIR_OUTBOUND ? px_src_value(hc->px, src, sizeof(src)) : 0;
    if (srclen > 0) {
        rv |= h1p_puts(out, PX_SRC_HEADER ": ");
        rv |= h1p_put(out, src, srclen);
        rv |= h1p_put(out, "\r\n", 2);
    }
    rv |= h1p_put(out, "\r\n", 2);
    return rv;
}

/* Queues a response of our own (an error) for the request in flight or, with
 * no request parsed, for the connection. */
static void h1p_put_error(struct h1p_conn *hc, int status, const char *reason, const char *body,
                          int close_after)
{
    struct mesh_buf *out = &hc->out;
    int rv = 0;
    size_t blen = strlen(body);
    rv |= h1p_put(out, "HTTP/1.1 ", 9);
    rv |= h1p_put_dec(out, (uint64_t)status);
    rv |= h1p_put(out, " ", 1);
    rv |= h1p_puts(out, reason);
    rv |= h1p_puts(out, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    rv |= h1p_put_dec(out, blen);
    rv |= h1p_puts(out, close_after ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
    if (hc->req.method_id != MESH_H1_M_HEAD || !hc->req.active)
        rv |= h1p_put(out, body, blen);
    if (rv != 0)
        hc->abort = 1;
    if (close_after)
        hc->closing = 1;
}

/* The request in flight ends: endpoint statistics, tap, the upstream
 * connection back to the pool or closed. */
static void h1p_req_finish(struct h1p_conn *hc)
{
    struct h1p_req *req = &hc->req;
    if (!req->active)
        return;
    uint64_t now = mesh_loop_tick_us(hc->px->loop);
    int64_t duration = (int64_t)(now - req->start_us);
    if (req->ep != NULL) {
        int failed = req->error != NULL || req->status >= 500 || req->status < 0;
        px_endpoint_done(req->ep, now, req->latency_us >= 0 ? (uint64_t)req->latency_us
                                                            : (uint64_t)duration,
                         failed);
    }
    const struct mesh_h1_msg *m = &hc->parser.msg;
    struct mesh_evt evt;
    mesh_evt_init(&evt);
    evt.ts_us = req->ts_us;
    evt.proto = MESH_PROTO_HTTP1;
    evt.method = m->method;
    evt.scheme = "http";
    evt.authority = m->host;
    evt.path = m->target;
    evt.status = req->status;
    evt.error = req->error;
    evt.latency_us = req->latency_us;
    evt.duration_us = duration;
    evt.req_bytes = req->req_bytes;
    evt.rsp_bytes = req->rsp_bytes;
    evt.dst = req->ep != NULL ? req->ep->name : NULL;
    char src[256];
    const char *src_hdr = hc->conn->dir == MESH_DIR_INBOUND
                              ? mesh_h1_field_get(m->fields, m->fields_len, PX_SRC_HEADER)
                              : NULL;
    if (src_hdr != NULL)
        px_src_parse(src_hdr, strlen(src_hdr), src, sizeof(src), &evt.src_labels);
    char dst[sizeof(req->dst_hdr)];
    if (req->dst_hdr[0] != 0)
        px_src_parse(req->dst_hdr, strlen(req->dst_hdr), dst, sizeof(dst), &evt.dst_labels);
    struct mesh_header hs[MESH_EVT_HEADERS_MAX];
    if (px_hdrcap_on(hc->px)) {
        mesh_hdrcap_offer_h1(&hc->px->cfg.headers, &req->hdrs, MESH_HDR_REQUEST, m->fields,
                             m->fields_len);
        mesh_hdrcap_apply(&req->hdrs, &evt, hs);
    }
    px_tap(hc->conn, req->route, &evt, req->n);
    mesh_hdrcap_free(&req->hdrs);

    struct h1p_up *up = req->up;
    if (up != NULL) {
        if (req->up_reusable && req->req_done && req->rsp_done && up->out.len == 0 && !hc->abort)
            h1p_pool_put(up);
        else
            h1p_up_close(up);
        req->up = NULL;
    }
    if (!req->req_done || !hc->keep_alive || hc->draining)
        hc->closing = 1;
    req->active = 0;
    hc->last_active_us = now;
    if (hc->out.len == 0 && hc->out.alloc > H1P_KEEP_BUF)
        mesh_buf_free(&hc->out);
}

/* The request failed before (or while) its response came: answers it with
 * |status| if no response head went downstream yet, else cuts the connection. */
static void h1p_req_fail(struct h1p_conn *hc, int status, const char *reason, const char *error)
{
    struct h1p_req *req = &hc->req;
    req->error = error;
    req->up_reusable = 0;
    if (!req->rsp_head_sent) {
        char body[256];
        snprintf(body, sizeof(body), "mesh-proxy: %.200s\n", error);
        req->status = status;
        if (req->latency_us < 0)
            req->latency_us = (int64_t)(mesh_loop_tick_us(hc->px->loop) - req->start_us);
        h1p_put_error(hc, status, reason, body, !req->req_done || !hc->keep_alive);
        req->rsp_head_sent = 1;
    } else {
        hc->closing = 1; /* what was written is flushed; the cut tells the client */
        hc->keep_alive = 0;
    }
    h1p_req_finish(hc);
}

/* Starts sending the current request on |up| (new or pooled). */
static int h1p_req_attach(struct h1p_conn *hc, struct h1p_up *up)
{
    struct h1p_req *req = &hc->req;
    req->up = up;
    req->up_sent = 0;
    req->rsp_started = 0;
    req->up_reusable = 1;
    return h1p_put_req_head(hc, &up->out);
}

/* A pooled connection died before answering: one more try on a fresh one,
 * when the request can be sent again whole. Returns 1 when retried. */
static int h1p_req_retry(struct h1p_conn *hc)
{
    struct h1p_req *req = &hc->req;
    struct h1p_up *old = req->up;
    if (old == NULL || !old->reused || req->retried || req->rsp_started)
        return 0;
    int unsent = req->up_sent == 0; /* everything so far is still in old->out */
    if (!unsent && !(req->idempotent && !req->has_body && req->req_done))
        return 0;
    struct h1p_up *up = h1p_up_new(hc, req->ep);
    if (up == NULL)
        return 0;
    req->retried = 1;
    if (unsent) {
        struct mesh_buf tmp = up->out;
        up->out = old->out;
        old->out = tmp;
        req->up = up;
        req->rsp_started = 0;
        req->up_reusable = 1;
    } else if (h1p_req_attach(hc, up) != 0) {
        req->up = old;
        h1p_up_close(up);
        return 0;
    }
    h1p_up_close(old);
    return 1;
}

/* The upstream connection broke (|err|: errno, 0 for EOF). */
static void h1p_up_broke(struct h1p_conn *hc, int err)
{
    if (h1p_req_retry(hc))
        return;
    struct h1p_req *req = &hc->req;
    if (!req->rsp_started)
        h1p_req_fail(hc, 502, "Bad Gateway",
                     err == 0 ? "upstream closed the connection before responding"
                              : "upstream connection reset before responding");
    else
        h1p_req_fail(hc, 502, "Bad Gateway",
                     err == 0 ? "upstream closed the connection mid-response"
                              : "upstream connection reset mid-response");
}

/* A request head was parsed: route it and start it upstream. */
static void h1p_req_start(struct h1p_conn *hc)
{
    struct px *px = hc->px;
    const struct mesh_h1_msg *m = &hc->parser.msg;
    struct h1p_req *req = &hc->req;
    uint64_t n = req->n + 1;
    mesh_hdrcap_free(&req->hdrs); /* already, unless the last one never reached the tap */
    memset(req, 0, sizeof(*req));
    req->active = 1;
    req->n = n;
    req->ts_us = mesh_loop_tick_wall_us(hc->px->loop);
    req->start_us = mesh_loop_tick_us(hc->px->loop);
    req->status = -1;
    req->latency_us = -1;
    req->method_id = m->method_id;
    req->idempotent = h1p_idempotent(m->method);
    req->has_body = m->framing != MESH_H1_NO_BODY;
    req->req_chunked = m->framing == MESH_H1_CHUNKED;
    hc->version = m->version;
    hc->keep_alive = m->version >= 11 ? !(m->flags & MESH_H1_F_CLOSE)
                                      : (m->flags & MESH_H1_F_KEEP_ALIVE) != 0;
    if (hc->draining)
        hc->keep_alive = 0;

    if (m->method_id == MESH_H1_M_CONNECT) {
        req->req_done = !req->has_body;
        h1p_req_fail(hc, 501, "Not Implemented", "CONNECT is not supported");
        hc->closing = 1;
        return;
    }
    if (m->host == NULL && m->version >= 11) {
        h1p_req_fail(hc, 400, "Bad Request", "no Host field in an HTTP/1.1 request");
        hc->closing = 1;
        return;
    }
    req->route = px_route_find(px, hc->conn, m->host, m->host ? m->host_len : 0);
    if (req->route == NULL || req->route->neps == 0) {
        char error[200];
        snprintf(error, sizeof(error), "no route to authority %.*s",
                 m->host ? (int)(m->host_len < 160 ? m->host_len : 160) : 6,
                 m->host ? m->host : "(none)");
        req->route = NULL;
        req->req_done = !req->has_body;
        h1p_req_fail(hc, 502, "Bad Gateway", error);
        return;
    }
    req->ep = px_endpoint_pick(req->route, req->start_us);
    px_endpoint_start(req->ep);
    struct h1p_up *up = h1p_up_get(hc, req->ep);
    if (up == NULL) {
        req->req_done = !req->has_body;
        h1p_req_fail(hc, 502, "Bad Gateway", "cannot open an upstream socket");
        return;
    }
    if (h1p_req_attach(hc, up) != 0) {
        req->req_done = !req->has_body;
        h1p_req_fail(hc, 500, "Internal Server Error", "out of memory");
        hc->closing = 1;
    }
}

/* Request body bytes (de-chunked) to forward. */
static void h1p_req_body(struct h1p_conn *hc, const uint8_t *data, size_t len)
{
    struct h1p_req *req = &hc->req;
    req->req_bytes += len;
    if (!req->active || req->up == NULL || len == 0)
        return;
    struct mesh_buf *out = &req->up->out;
    int rv = 0;
    if (req->req_chunked) {
        rv |= h1p_put_hex(out, len);
        rv |= h1p_put(out, "\r\n", 2);
    }
    rv |= h1p_put(out, data, len);
    if (req->req_chunked)
        rv |= h1p_put(out, "\r\n", 2);
    if (rv != 0)
        h1p_req_fail(hc, 500, "Internal Server Error", "request buffer overflow");
}

static void h1p_req_trailers(struct h1p_conn *hc)
{
    struct h1p_req *req = &hc->req;
    if (!req->active || req->up == NULL || !req->req_chunked)
        return;
    const struct mesh_h1_msg *m = &hc->parser.msg;
    struct mesh_buf *out = &req->up->out;
    int rv = h1p_put(out, "0\r\n", 3);
    rv |= h1p_put_fields(out, m->trailers, m->trailers_len);
    req->req_trailers_sent = 1;
    if (rv != 0)
        h1p_req_fail(hc, 500, "Internal Server Error", "request buffer overflow");
}

static void h1p_req_end(struct h1p_conn *hc)
{
    struct h1p_req *req = &hc->req;
    if (hc->parser.msg.flags & MESH_H1_F_UPGRADE)
        mesh_h1_parser_resume(&hc->parser); /* Upgrade was dropped: no switch */
    if (!req->active)
        return;
    req->req_done = 1;
    req->done_us = mesh_loop_tick_us(hc->px->loop);
    if (req->up != NULL && req->req_chunked) {
        int rv = req->req_trailers_sent ? h1p_put(&req->up->out, "\r\n", 2)
                                        : h1p_put(&req->up->out, "0\r\n\r\n", 5);
        if (rv != 0)
            h1p_req_fail(hc, 500, "Internal Server Error", "request buffer overflow");
    }
}

/* ---- responses --------------------------------------------------------------------------- */

/* The response head as it goes downstream. */
static int h1p_put_rsp_head(struct h1p_conn *hc, const struct mesh_h1_msg *m, int final)
{
    struct h1p_req *req = &hc->req;
    struct mesh_buf *out = &hc->out;
    struct h1p_tokens tokens;
    int rv = 0;
    int drop_te = final && m->framing == MESH_H1_CHUNKED && !req->rsp_chunked_out;
    h1p_conn_tokens(m->fields, m->fields_len, &tokens);
    rv |= h1p_put(out, "HTTP/1.1 ", 9);
    rv |= h1p_put_dec(out, (uint64_t)m->status);
    rv |= h1p_put(out, " ", 1);
    rv |= h1p_puts(out, m->reason);
    rv |= h1p_put(out, "\r\n", 2);
    size_t pos = 0;
    const char *name, *value;
    while (mesh_h1_field_next(m->fields, m->fields_len, &pos, &name, &value)) {
        if (h1p_hop_by_hop(name, &tokens) ||
            (drop_te && strcasecmp(name, "transfer-encoding") == 0))
            continue;
        rv |= h1p_puts(out, name);
        rv |= h1p_put(out, ": ", 2);
        rv |= h1p_puts(out, value);
        rv |= h1p_put(out, "\r\n", 2);
    }
    char dst[256];
    size_t dstlen =
        final && hc->conn->dir == MESH_DIR_INBOUND ? px_src_value(hc->px, dst, sizeof(dst)) : 0;
    if (dstlen > 0) {
        rv |= h1p_puts(out, PX_DST_HEADER ": ");
        rv |= h1p_put(out, dst, dstlen);
        rv |= h1p_put(out, "\r\n", 2);
    }
    if (final && !hc->keep_alive)
        rv |= h1p_puts(out, "Connection: close\r\n");
    else if (final && hc->version < 11)
        rv |= h1p_puts(out, "Connection: keep-alive\r\n");
    rv |= h1p_put(out, "\r\n", 2);
    return rv;
}

static void h1p_rsp_head(struct h1p_conn *hc, struct h1p_up *up)
{
    struct h1p_req *req = &hc->req;
    struct mesh_h1_parser *p = &up->parser;
    const struct mesh_h1_msg *m = &p->msg;
    if (m->status >= 100 && m->status < 200) {
        if (m->status == 101) { /* we never ask for a switch */
            h1p_req_fail(hc, 502, "Bad Gateway", "upstream switched protocols unasked");
            return;
        }
        if (hc->version >= 11 && h1p_put_rsp_head(hc, m, 0) != 0)
            hc->abort = 1;
        return;
    }
    mesh_h1_parser_answer(p, req->method_id);
    uint64_t now = mesh_loop_tick_us(hc->px->loop);
    req->latency_us = (int64_t)(now - req->start_us);
    req->status = m->status;
    const char *dst = hc->conn->dir == MESH_DIR_OUTBOUND
                          ? mesh_h1_field_get(m->fields, m->fields_len, PX_DST_HEADER)
                          : NULL;
    if (dst != NULL)
        snprintf(req->dst_hdr, sizeof(req->dst_hdr), "%s", dst);
    /* the response head is gone by the tap (the upstream may be too): its
     * captured headers are kept, the request's join them at the tap */
    if (px_hdrcap_on(hc->px) && req->hdrs.nkind[1] == 0)
        mesh_hdrcap_offer_h1(&hc->px->cfg.headers, &req->hdrs, MESH_HDR_RESPONSE, m->fields,
                             m->fields_len);
    if ((m->flags & MESH_H1_F_CLOSE) || (m->version < 11 && !(m->flags & MESH_H1_F_KEEP_ALIVE)) ||
        m->framing == MESH_H1_UNTIL_CLOSE)
        req->up_reusable = 0;
    if (m->framing == MESH_H1_UNTIL_CLOSE || (m->framing == MESH_H1_CHUNKED && hc->version < 11) ||
        !req->req_done)
        hc->keep_alive = 0; /* the end of the body is the end of the connection */
    req->rsp_chunked_out = m->framing == MESH_H1_CHUNKED && hc->version >= 11;
    if (h1p_put_rsp_head(hc, m, 1) != 0)
        hc->abort = 1;
    req->rsp_head_sent = 1;
}

static void h1p_rsp_body(struct h1p_conn *hc, const uint8_t *data, size_t len)
{
    struct h1p_req *req = &hc->req;
    struct mesh_buf *out = &hc->out;
    int rv = 0;
    req->rsp_bytes += len;
    if (req->rsp_chunked_out) {
        rv |= h1p_put_hex(out, len);
        rv |= h1p_put(out, "\r\n", 2);
    }
    rv |= h1p_put(out, data, len);
    if (req->rsp_chunked_out)
        rv |= h1p_put(out, "\r\n", 2);
    if (rv != 0)
        hc->abort = 1;
}

static void h1p_rsp_end(struct h1p_conn *hc)
{
    struct h1p_req *req = &hc->req;
    if (req->rsp_chunked_out &&
        (req->rsp_trailers_sent ? h1p_put(&hc->out, "\r\n", 2) : h1p_put(&hc->out, "0\r\n\r\n", 5)))
        hc->abort = 1;
    req->rsp_done = 1;
    h1p_req_finish(hc);
}

/* Feeds response bytes of |up| to its parser and forwards what comes out. */
static void h1p_rsp_feed(struct h1p_conn *hc, struct h1p_up *up, const uint8_t *buf, size_t len)
{
    struct h1p_req *req = &hc->req;
    size_t pos = 0;
    if (len > 0)
        req->rsp_started = 1;
    while (req->active && req->up == up && !hc->abort) {
        size_t used = 0;
        const char *desc = NULL;
        int ev = mesh_h1_parse(&up->parser, buf + pos, len - pos, &used, &desc);
        pos += used;
        switch (ev) {
        case MESH_H1_NEED_MORE:
            return;
        case MESH_H1_BEGIN:
            break;
        case MESH_H1_HEAD:
            h1p_rsp_head(hc, up);
            break;
        case MESH_H1_DATA:
            h1p_rsp_body(hc, up->parser.body, up->parser.body_len);
            break;
        case MESH_H1_TRAILERS:
            if (px_hdrcap_on(hc->px))
                mesh_hdrcap_offer_h1(&hc->px->cfg.headers, &req->hdrs, MESH_HDR_TRAILER,
                                     up->parser.msg.trailers, up->parser.msg.trailers_len);
            if (req->rsp_chunked_out) {
                const struct mesh_h1_msg *m = &up->parser.msg;
                if (h1p_put(&hc->out, "0\r\n", 3) != 0 ||
                    h1p_put_fields(&hc->out, m->trailers, m->trailers_len) != 0)
                    hc->abort = 1;
                req->rsp_trailers_sent = 1;
            }
            break;
        case MESH_H1_END:
            if (!req->rsp_head_sent)
                break; /* an interim 1xx */
            if (pos < len)
                req->up_reusable = 0; /* bytes nobody asked for */
            h1p_rsp_end(hc);
            return;
        default: /* PAUSED cannot come (101 fails first), errors */
            h1p_req_fail(hc, 502, "Bad Gateway",
                         req->rsp_head_sent ? "invalid response body from upstream"
                                            : "invalid response from upstream");
            return;
        }
    }
}

/* ---- upstream I/O ------------------------------------------------------------------------ */

/* Writes what is queued for |up|. 0, or the errno that broke it. */
static int h1p_up_flush(struct h1p_conn *hc, struct h1p_up *up)
{
    while (up->out.len > 0) {
        ssize_t n = send(up->fd, up->out.data, up->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            mesh_buf_consume(&up->out, (size_t)n);
            hc->req.up_sent += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return n < 0 ? errno : EPIPE;
    }
    return 0;
}

static void h1p_up_read(struct h1p_conn *hc, struct h1p_up *up)
{
    ssize_t n = read(up->fd, h1p_scratch, sizeof(h1p_scratch));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0) {
        hc->last_active_us = mesh_loop_tick_us(hc->px->loop); /* h1p_deadline: a client that left */
        h1p_rsp_feed(hc, up, h1p_scratch, (size_t)n);
        return;
    }
    int err = n < 0 ? errno : 0;
    struct h1p_req *req = &hc->req;
    if (err == 0 && req->rsp_head_sent) {
        const char *desc;
        if (mesh_h1_parse_eof(&up->parser, &desc) == MESH_H1_END) {
            req->up_reusable = 0;
            h1p_rsp_end(hc);
            return;
        }
    }
    h1p_up_broke(hc, err);
}

static int h1p_on_connect_timeout(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct h1p_up *up = ctx;
    struct h1p_conn *hc = up->owner;
    up->connect_timer = 0;
    if (hc != NULL && hc->req.up == up) {
        h1p_req_fail(hc, 504, "Gateway Timeout", "upstream connect timeout");
        h1p_settle(hc);
    }
    return MESH_TIMER_DONE;
}

static void h1p_on_up(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct h1p_up *up = ctx;
    struct h1p_conn *hc = up->owner;
    if (hc == NULL) {
        /* idle in the pool: EOF, an error or bytes nobody asked for all end it */
        h1p_pool_unlink(up);
        h1p_up_close(up);
        return;
    }
    if (up->connecting) {
        int soerr = 0;
        socklen_t slen = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0)
            soerr = errno;
        if (soerr == EINPROGRESS || soerr == EALREADY)
            return;
        if (soerr != 0) {
            static char why[96];
            snprintf(why, sizeof(why), "upstream connect: %s", strerror(soerr));
            h1p_req_fail(hc, 502, "Bad Gateway",
                         soerr == ECONNREFUSED ? "upstream connection refused" : why);
            h1p_settle(hc);
            return;
        }
        up->connecting = 0;
        if (up->connect_timer > 0)
            mesh_loop_del_timer(loop, up->connect_timer);
        up->connect_timer = 0;
    }
    if (events & MESH_WRITE) {
        int err = h1p_up_flush(hc, up);
        if (err != 0)
            h1p_up_broke(hc, err);
    }
    if ((events & MESH_READ) && hc->req.up == up && hc->out.len < H1P_OUT_SOFT)
        h1p_up_read(hc, up);
    h1p_settle(hc);
}

/* ---- downstream ------------------------------------------------------------------------ */

/* Parses requests from |buf| and acts on them; stops where one must wait.
 * Returns the bytes used. */
static size_t h1p_down_feed(struct h1p_conn *hc, const uint8_t *buf, size_t len)
{
    struct h1p_req *req = &hc->req;
    size_t pos = 0;
    while (!hc->closing && !hc->abort) {
        if (req->active && (req->req_done || (req->up != NULL && req->up->out.len >= H1P_OUT_SOFT)))
            break;
        size_t used = 0;
        const char *desc = NULL;
        int ev = mesh_h1_parse(&hc->parser, buf + pos, len - pos, &used, &desc);
        pos += used;
        switch (ev) {
        case MESH_H1_NEED_MORE:
            return pos;
        case MESH_H1_BEGIN:
            hc->in_head = 1;
            hc->head_start_us = mesh_loop_tick_us(hc->px->loop);
            break;
        case MESH_H1_HEAD:
            hc->in_head = 0;
            hc->in_body = 1;
            h1p_req_start(hc);
            break;
        case MESH_H1_DATA:
            h1p_req_body(hc, hc->parser.body, hc->parser.body_len);
            break;
        case MESH_H1_TRAILERS:
            h1p_req_trailers(hc);
            break;
        case MESH_H1_END:
            hc->in_body = 0;
            h1p_req_end(hc);
            break;
        case MESH_H1_PAUSED:
            return pos;
        default:
            if (req->active) {
                h1p_req_fail(hc, 400, "Bad Request", "invalid request body");
            } else if (!hc->in_body) {
                int big = ev == MESH_ETOOBIG;
                char body[160];
                snprintf(body, sizeof(body), "mesh-proxy: %s\n", desc ? desc : "bad request");
                req->method_id = MESH_H1_M_OTHER;
                h1p_put_error(hc, big ? 431 : 400,
                              big ? "Request Header Fields Too Large" : "Bad Request", body, 1);
            }
            hc->closing = 1;
            return pos;
        }
    }
    return pos;
}

/* Parses what waits in |in| (pipelined requests, input held back). */
static void h1p_down_pump(struct h1p_conn *hc)
{
    if (hc->in.len == 0 || hc->closing || hc->abort)
        return;
    size_t used = h1p_down_feed(hc, (const uint8_t *)hc->in.data, hc->in.len);
    mesh_buf_consume(&hc->in, used);
    if (hc->in.len == 0)
        mesh_buf_free(&hc->in);
}

static void h1p_down_read(struct h1p_conn *hc)
{
    int fd = hc->conn->fd;
    ssize_t n;
    if (hc->in.len == 0 || hc->lingering) {
        n = read(fd, h1p_scratch, sizeof(h1p_scratch));
        if (n > 0) {
            px_conn_count(hc->conn, (uint64_t)n, 0);
            hc->last_active_us = mesh_loop_tick_us(hc->px->loop);
            if (hc->lingering)
                return;
            size_t used = h1p_down_feed(hc, h1p_scratch, (size_t)n);
            if (used < (size_t)n && !hc->closing &&
                mesh_buf_append(&hc->in, h1p_scratch + used, (size_t)n - used) != 0)
                hc->abort = 1;
            return;
        }
    } else {
        char *at;
        size_t room = H1P_READ_SIZE;
        if (hc->in.len >= H1P_IN_SOFT)
            return; /* held back until the request in flight is answered */
        if (mesh_buf_append_space(&hc->in, room, &at) != 0) {
            hc->abort = 1;
            return;
        }
        n = read(fd, at, room);
        hc->in.len -= room - (n > 0 ? (size_t)n : 0);
        if (n > 0) {
            px_conn_count(hc->conn, (uint64_t)n, 0);
            hc->last_active_us = mesh_loop_tick_us(hc->px->loop);
            h1p_down_pump(hc);
            return;
        }
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    /* the client is gone (n == 0: at least for writing) */
    struct h1p_req *req = &hc->req;
    if (hc->lingering || n < 0) {
        if (req->active)
            req->error = "downstream connection reset";
        hc->abort = 1;
        return;
    }
    hc->client_eof = 1;
    if (req->active && !req->req_done) {
        h1p_req_fail(hc, 400, "Bad Request", "client closed the connection mid-request");
        hc->abort = 1;
    } else if (!req->active) {
        hc->abort = 1; /* nothing in flight; a partial head is dropped */
    } else {
        hc->closing = 1; /* answer what was asked, then close */
    }
}

/* Writes what is queued downstream. */
static void h1p_down_flush(struct h1p_conn *hc)
{
    while (hc->out.len > 0) {
        ssize_t n = send(hc->conn->fd, hc->out.data, hc->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            px_conn_count(hc->conn, 0, (uint64_t)n);
            mesh_buf_consume(&hc->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (hc->req.active)
            hc->req.error = "downstream connection closed";
        hc->abort = 1;
        return;
    }
}

static void h1p_conn_free(struct h1p_conn *hc)
{
    struct px_conn *conn = hc->conn;
    if (hc->req.active) {
        if (hc->req.error == NULL)
            hc->req.error = "connection closed";
        hc->req.up_reusable = 0;
        h1p_req_finish(hc);
    }
    if (hc->timer > 0)
        mesh_loop_del_timer(hc->px->loop, hc->timer);
    mesh_h1_parser_free(&hc->parser);
    mesh_buf_free(&hc->in);
    mesh_buf_free(&hc->out);
    free(hc);
    conn->proto = NULL;
    px_conn_close(conn);
}

/* Runs after every event: flushes both sides, parses held-back input, closes
 * what is done and sets what the loop watches. The only place that frees |hc|. */
static void h1p_settle(struct h1p_conn *hc)
{
    struct h1p_req *req = &hc->req;
    for (int round = 0; round < 8 && !hc->abort; round++) {
        size_t in_before = hc->in.len;
        int active_before = req->active;
        if (req->active && req->up != NULL && !req->up->connecting && req->up->out.len > 0) {
            int err = h1p_up_flush(hc, req->up);
            if (err != 0)
                h1p_up_broke(hc, err);
        }
        if (!req->active || !req->req_done)
            h1p_down_pump(hc);
        if (hc->in.len == in_before && req->active == active_before)
            break;
    }
    if (!hc->abort && hc->out.len > 0)
        h1p_down_flush(hc);
    int fd = hc->conn->fd;
    if (hc->abort || (hc->lingering && hc->client_eof)) {
        h1p_conn_free(hc);
        return;
    }
    if (hc->closing && !req->active && hc->out.len == 0 && !hc->lingering) {
        if (hc->client_eof) {
            h1p_conn_free(hc);
            return;
        }
        /* a close with unread input resets the connection, which can destroy
         * the response on the client's side: shut down and read until EOF */
        shutdown(fd, SHUT_WR);
        hc->lingering = 1;
        hc->linger_until_us = mesh_loop_now_us() + H1P_LINGER_MS * 1000ull;
    }

    unsigned down = 0, upm = 0;
    if (hc->out.len > 0)
        down |= MESH_WRITE;
    if (hc->lingering)
        down = MESH_READ;
    else if (!hc->client_eof && !hc->closing) {
        if (!req->active)
            down |= MESH_READ;
        else if (req->req_done)
            down |= hc->in.len < H1P_IN_SOFT ? MESH_READ : 0;
        else if (req->up == NULL || req->up->out.len < H1P_OUT_SOFT)
            down |= hc->in.len < H1P_IN_SOFT ? MESH_READ : 0;
    }
    if (mesh_loop_mod_fd(hc->px->loop, fd, down) != 0) {
        h1p_conn_free(hc);
        return;
    }
    if (req->active && req->up != NULL) {
        struct h1p_up *up = req->up;
        if (up->connecting || up->out.len > 0)
            upm |= MESH_WRITE;
        if (!up->connecting && hc->out.len < H1P_OUT_SOFT)
            upm |= MESH_READ;
        mesh_loop_mod_fd(hc->px->loop, up->fd, upm);
    }
    h1p_arm(hc);
}

static int h1p_on_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct h1p_conn *hc = ctx;
    hc->timer = 0;
    uint64_t at = h1p_deadline(hc), now = mesh_loop_now_us(), rsp = h1p_response_deadline(hc);
    if (at == 0 || at > now) {
        h1p_arm(hc);
        return MESH_TIMER_DONE;
    }
    if (hc->lingering || hc->drain_until_us != 0) {
        hc->abort = 1;
    } else if (rsp != 0 && now >= rsp) {
        h1p_req_fail(hc, 504, "Gateway Timeout", "no response within the response timeout");
    } else if (hc->req.active) { /* client_eof: see h1p_deadline() */
        hc->req.error = "client closed the connection; no response within the idle timeout";
        hc->abort = 1;
    } else if (hc->in_head) {
        h1p_put_error(hc, 408, "Request Timeout", "mesh-proxy: request head not complete in time\n",
                      1);
        hc->in_head = 0;
    } else {
        hc->abort = 1; /* idle */
    }
    h1p_settle(hc);
    return MESH_TIMER_DONE;
}

static void h1p_on_down(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct h1p_conn *hc = ctx;
    if (events & MESH_READ)
        h1p_down_read(hc);
    h1p_settle(hc);
}

static void h1p_on_drain(struct px_conn *conn)
{
    struct h1p_conn *hc = conn->proto;
    h1p_pools_drain(hc->px);
    hc->draining = 1;
    if (!hc->req.active) {
        hc->closing = 1; /* idle, or a head still coming: nothing was promised */
        hc->abort = hc->out.len == 0;
    } else {
        const struct px_limits *lim = &hc->px->cfg.limits;
        /* finish the request in flight, but before the core's own deadline */
        hc->drain_until_us = mesh_loop_now_us() + (uint64_t)lim->drain_ms * 750u;
        if (!hc->req.rsp_head_sent)
            hc->keep_alive = 0;
    }
    h1p_settle(hc);
}

static void h1p_on_close(struct px_conn *conn)
{
    struct h1p_conn *hc = conn->proto;
    h1p_pools_drain(hc->px);
    if (hc->req.active && hc->req.error == NULL)
        hc->req.error = "proxy shutting down";
    h1p_conn_free(hc);
}

void px_h1_serve(struct px_conn *conn)
{
    struct px *px = conn->px;
    struct h1p_conn *hc = calloc(1, sizeof(*hc));
    if (hc == NULL) {
        px_conn_close(conn);
        return;
    }
    size_t max_head = px->cfg.limits.max_header;
    hc->conn = conn;
    hc->px = px;
    mesh_h1_parser_init(&hc->parser, MESH_H1_REQUEST, max_head, 0);
    mesh_buf_init(&hc->in, H1P_IN_SOFT + H1P_READ_SIZE);
    mesh_buf_init(&hc->out, H1P_OUT_SOFT + 2 * H1P_READ_SIZE + 2 * max_head + 4096);
    hc->last_active_us = mesh_loop_tick_us(hc->px->loop);
    hc->keep_alive = 1;
    if (conn->in.len > 0 && mesh_buf_append(&hc->in, conn->in.data, conn->in.len) != 0) {
        mesh_h1_parser_free(&hc->parser);
        free(hc);
        px_conn_close(conn);
        return;
    }
    mesh_buf_free(&conn->in);
    conn->proto = hc;
    conn->on_drain = h1p_on_drain;
    conn->on_close = h1p_on_close;
    if (mesh_loop_add_fd(px->loop, conn->fd, MESH_READ, h1p_on_down, hc) != 0) {
        h1p_conn_free(hc);
        return;
    }
    if (px->draining)
        hc->draining = 1;
    h1p_settle(hc);
}
