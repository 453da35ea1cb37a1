/* lib/httpd.c — the small HTTP/1.1 server (mesh/httpd.h).
 *
 * A connection is a little state machine run by conn_run(): READ (parse one request),
 * HELD (the handler has it; we only watch for the client leaving), RESPOND (write the
 * answer, or a stream's chunks as they come), LINGER (after an error answer). Nothing
 * is read into memory while a request is held beyond one small buffer, so a client
 * that pipelines or floods holds at most that much.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/h1.h"
#include "mesh/httpd.h"

#define HD_READ_CHUNK 4096u
#define HD_IN_CAP     16384u   /* read ahead while a request is held */
#define HD_LINGER_MS  2000u
#define HD_KEEP_OUT   65536u   /* an output buffer this big is kept between responses */
#define HD_MAX_HDRS   8192u    /* extra response headers of one response */
#define HD_MAX_OUT    (256u << 20)

enum hd_state { ST_READ, ST_HELD, ST_RESPOND, ST_LINGER };

struct hd_conn {
    struct mesh_httpd *srv;
    int fd;
    enum hd_state state;
    struct mesh_h1_parser parser;
    struct mesh_buf in;          /* read, not yet parsed */
    struct mesh_buf out;         /* response bytes from |out_off| on */
    size_t out_off;
    struct mesh_httpd_req *req;  /* being read, held, or streaming */
    uint64_t deadline_us;        /* 0: none */
    unsigned mask;
    int in_request;              /* the current request's first byte was read */
    int resp_done;               /* the whole response is in |out| */
    int close_after;
    int running, rerun;          /* conn_run() re-entered from a handler */
    int closed;                  /* freed at the end of conn_run() */
    char peer[48];
    SSL *ssl;                    /* NULL: plain HTTP */
    int handshaking;             /* TLS handshake not done yet */
    struct hd_conn *next, *prev;
};

struct mesh_httpd_req {
    struct hd_conn *conn;        /* NULL once the connection is gone */
    char *head;                  /* method\0target\0path\0fields (one allocation) */
    const char *method, *target, *path, *query, *fields;
    size_t fields_len;
    struct mesh_buf body;
    struct mesh_buf hdrs;        /* extra response header lines */
    int head_only, http10, streaming, want_writable;
    mesh_httpd_gone_cb on_gone;
    mesh_httpd_writable_cb on_writable;
    void *ctx;
    char peer[48];
};

struct mesh_httpd {
    struct mesh_loop *loop;
    struct mesh_httpd_opts opts;
    int lfd, port;
    int64_t sweep_timer;
    unsigned nconns;
    struct hd_conn *conns;
    SSL_CTX *tls;               /* NULL: plain HTTP */
};

static void conn_run(struct hd_conn *conn);

const char *mesh_httpd_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* --- requests ------------------------------------------------------------------------------ */

static void req_free(struct mesh_httpd_req *req)
{
    if (req == NULL)
        return;
    free(req->head);
    mesh_buf_free(&req->body);
    mesh_buf_free(&req->hdrs);
    free(req);
}

static struct mesh_httpd_req *req_new(struct hd_conn *conn, const struct mesh_h1_msg *msg)
{
    struct mesh_httpd_req *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    size_t plen = strcspn(msg->target, "?");
    size_t total = msg->method_len + 1 + msg->target_len + 1 + plen + 1 + msg->fields_len + 1;
    req->head = malloc(total);
    if (req->head == NULL) {
        free(req);
        return NULL;
    }
    char *at = req->head;
    req->method = memcpy(at, msg->method, msg->method_len);
    at[msg->method_len] = 0;
    at += msg->method_len + 1;
    req->target = memcpy(at, msg->target, msg->target_len);
    at[msg->target_len] = 0;
    req->query = msg->target[plen] == '?' ? at + plen + 1 : at + msg->target_len;
    at += msg->target_len + 1;
    req->path = memcpy(at, msg->target, plen);
    at[plen] = 0;
    at += plen + 1;
    req->fields = memcpy(at, msg->fields, msg->fields_len);
    at[msg->fields_len] = 0;
    req->fields_len = msg->fields_len;
    mesh_buf_init(&req->body, conn->srv->opts.max_body);
    mesh_buf_init(&req->hdrs, HD_MAX_HDRS);
    req->head_only = msg->method_id == MESH_H1_M_HEAD;
    req->http10 = msg->version < 11;
    req->conn = conn;
    snprintf(req->peer, sizeof(req->peer), "%s", conn->peer);
    return req;
}

const char *mesh_httpd_method(const struct mesh_httpd_req *req) { return req->method; }
const char *mesh_httpd_target(const struct mesh_httpd_req *req) { return req->target; }
const char *mesh_httpd_path(const struct mesh_httpd_req *req) { return req->path; }
const char *mesh_httpd_query(const struct mesh_httpd_req *req) { return req->query; }
const char *mesh_httpd_peer(const struct mesh_httpd_req *req) { return req->peer; }
void mesh_httpd_set_ctx(struct mesh_httpd_req *req, void *ctx) { req->ctx = ctx; }
void *mesh_httpd_ctx(const struct mesh_httpd_req *req) { return req->ctx; }

const char *mesh_httpd_header(const struct mesh_httpd_req *req, const char *name)
{
    return mesh_h1_field_get(req->fields, req->fields_len, name);
}

const char *mesh_httpd_body(const struct mesh_httpd_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data != NULL ? req->body.data : "";
}

void mesh_httpd_watch(struct mesh_httpd_req *req, mesh_httpd_gone_cb on_gone,
                      mesh_httpd_writable_cb on_writable)
{
    req->on_gone = on_gone;
    req->on_writable = on_writable;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mesh_httpd_query_param(const char *query, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = query;
    while (p != NULL && *p) {
        size_t klen = strcspn(p, "=&");
        if (klen == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = p[klen] == '=' ? p + klen + 1 : p + klen;
            size_t n = 0;
            for (; *v && *v != '&'; v++) {
                int c = (unsigned char)*v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    c = hexval(v[1]) * 16 + hexval(v[2]);
                    v += 2;
                }
                if (n + 1 >= outlen)
                    return MESH_ETOOBIG;
                out[n++] = (char)c;
            }
            if (outlen == 0)
                return MESH_ETOOBIG;
            out[n] = 0;
            return (int)n;
        }
        p = strchr(p, '&');
        if (p != NULL)
            p++;
    }
    return MESH_EINVAL;
}

/* --- connections --------------------------------------------------------------------------- */

static void watch(struct hd_conn *conn, unsigned mask)
{
    if (conn->mask != mask && mesh_loop_mod_fd(conn->srv->loop, conn->fd, mask) == 0)
        conn->mask = mask;
}

static uint64_t after_ms(unsigned ms)
{
    return mesh_loop_now_us() + ms * 1000ull;
}

/* recv(2)/send(2) or TLS: > 0 bytes, 0 at EOF, -1 with errno (EAGAIN: wait). */
static ssize_t hd_recv(struct hd_conn *conn, void *buf, size_t len)
{
    if (conn->ssl == NULL)
        return recv(conn->fd, buf, len, 0);
    ERR_clear_error();
    int n = SSL_read(conn->ssl, buf, (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(conn->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL: if (errno == 0) return 0; return -1;
    default: errno = EPROTO; return -1;
    }
}

static ssize_t hd_send(struct hd_conn *conn, const void *buf, size_t len)
{
    if (conn->ssl == NULL)
        return send(conn->fd, buf, len, MSG_NOSIGNAL);
    ERR_clear_error();
    int n = SSL_write(conn->ssl, buf, (int)(len > INT_MAX ? INT_MAX : len));
    if (n > 0)
        return n;
    switch (SSL_get_error(conn->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
    default: if (errno == 0) errno = EPROTO; return -1;
    }
}

/* 1 done (go on), 0 wait for the socket, -1 failed: close. */
static int hd_handshake(struct hd_conn *conn)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(conn->ssl);
    if (rc == 1) {
        conn->handshaking = 0;
        watch(conn, MESH_READ);
        return 1;
    }
    switch (SSL_get_error(conn->ssl, rc)) {
    case SSL_ERROR_WANT_READ: watch(conn, MESH_READ); return 0;
    case SSL_ERROR_WANT_WRITE: watch(conn, MESH_READ | MESH_WRITE); return 0;
    default: return -1;
    }
}

static void conn_release(struct hd_conn *conn)
{
    SSL_free(conn->ssl);
    mesh_h1_parser_free(&conn->parser);
    mesh_buf_free(&conn->in);
    mesh_buf_free(&conn->out);
    free(conn);
}

/* Closes the connection. A request the handler holds gets on_gone (then is freed)
 * or, without on_gone, lives on orphaned until the handler ends it. Inside
 * conn_run() the memory is freed when it returns. */
static void conn_close(struct hd_conn *conn)
{
    struct mesh_httpd *srv = conn->srv;
    if (conn->closed)
        return;
    conn->closed = 1;
    struct mesh_httpd_req *req = conn->req;
    int held = req != NULL && conn->state != ST_READ;
    conn->req = NULL;
    mesh_loop_del_fd(srv->loop, conn->fd);
    close(conn->fd);
    conn->fd = -1;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    srv->nconns--;
    if (req != NULL) {
        req->conn = NULL;
        if (!held) {
            req_free(req);
        } else if (req->on_gone != NULL) {
            req->on_gone(req, req->ctx);
            req_free(req);
        }
    }
    if (!conn->running)
        conn_release(conn);
}

/* Runs |conn| now, or once more when it is running already (a handler answered). */
static void conn_kick(struct hd_conn *conn)
{
    if (conn->running)
        conn->rerun = 1;
    else
        conn_run(conn);
}

/* Queues a response head (the body, if any, follows in |out|). */
static int queue_head(struct hd_conn *conn, struct mesh_httpd_req *req, int status,
                      const char *ctype, int chunked, size_t body_len)
{
    struct mesh_buf *out = &conn->out;
    int no_body = status < 200 || status == 204 || status == 304;
    int rv = mesh_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, mesh_httpd_reason(status));
    if (rv == 0 && ctype != NULL && !no_body)
        rv = mesh_buf_printf(out, "Content-Type: %s\r\n", ctype);
    if (rv == 0 && chunked)
        rv = mesh_buf_appends(out, "Transfer-Encoding: chunked\r\n");
    else if (rv == 0 && !no_body && body_len != (size_t)-1)
        rv = mesh_buf_printf(out, "Content-Length: %zu\r\n", body_len);
    if (rv == 0 && req != NULL && req->hdrs.len > 0)
        rv = mesh_buf_append(out, req->hdrs.data, req->hdrs.len);
    if (rv == 0 && conn->close_after)
        rv = mesh_buf_appends(out, "Connection: close\r\n");
    else if (rv == 0 && req != NULL && req->http10)
        rv = mesh_buf_appends(out, "Connection: keep-alive\r\n");
    if (rv == 0)
        rv = mesh_buf_appends(out, "\r\n");
    return rv;
}

/* An answer of our own (400, 413, 431, 503): then close. */
static void answer_error(struct hd_conn *conn, int status, const char *text)
{
    conn->close_after = 1;
    mesh_buf_reset(&conn->out);
    conn->out_off = 0;
    if (queue_head(conn, NULL, status, "text/plain; charset=utf-8", 0, strlen(text)) != 0 ||
        mesh_buf_appends(&conn->out, text) != 0)
        mesh_buf_reset(&conn->out);
    if (conn->req != NULL) {
        req_free(conn->req);
        conn->req = NULL;
    }
    conn->state = ST_RESPOND;
    conn->resp_done = 1;
    conn->deadline_us = after_ms(conn->srv->opts.idle_timeout_ms);
}

/* Writes what is queued: 0 all out, 1 the socket is full, -1 broken. */
static int flush_out(struct hd_conn *conn)
{
    while (conn->out_off < conn->out.len) {
        ssize_t n = hd_send(conn, conn->out.data + conn->out_off, conn->out.len - conn->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n <= 0)
            return -1;
        conn->out_off += (size_t)n;
        conn->deadline_us = after_ms(conn->srv->opts.idle_timeout_ms);
    }
    if (conn->out.alloc > HD_KEEP_OUT) {
        mesh_buf_free(&conn->out);
        mesh_buf_init(&conn->out, HD_MAX_OUT);
    } else {
        mesh_buf_reset(&conn->out);
    }
    conn->out_off = 0;
    return 0;
}

/* Reads what is there into |in| (up to its cap). 1 read something, 0 would block or
 * the buffer is full, -1 the peer closed or the socket broke. */
static int read_in(struct hd_conn *conn)
{
    size_t room = HD_IN_CAP - conn->in.len;
    if (room == 0)
        return 0;
    if (room > HD_READ_CHUNK)
        room = HD_READ_CHUNK;
    char *at;
    if (mesh_buf_append_space(&conn->in, room, &at) != 0)
        return -1;
    ssize_t n;
    do
        n = hd_recv(conn, at, room);
    while (n < 0 && errno == EINTR);
    conn->in.len -= room - (n > 0 ? (size_t)n : 0);
    conn->in.data[conn->in.len] = 0;
    if (n > 0)
        return 1;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return -1;
}

/* Parses buffered input. 1 the state changed (a request is complete, or an error
 * answer is queued), 0 more input is needed, -1 close now. */
static int parse_in(struct hd_conn *conn)
{
    struct mesh_httpd *srv = conn->srv;
    for (;;) {
        size_t used = 0;
        int ev = mesh_h1_parse(&conn->parser, (const uint8_t *)conn->in.data, conn->in.len, &used,
                               NULL);
        if (ev == MESH_H1_DATA && conn->req != NULL &&
            mesh_buf_append(&conn->req->body, conn->parser.body, conn->parser.body_len) != 0) {
            answer_error(conn, 413, "request body too large\n");
            return 1;
        }
        mesh_buf_consume(&conn->in, used);
        switch (ev) {
        case MESH_H1_NEED_MORE: return 0;
        case MESH_H1_BEGIN:
            if (!conn->in_request) {
                conn->in_request = 1;
                conn->deadline_us = after_ms(srv->opts.header_timeout_ms);
            }
            break;
        case MESH_H1_HEAD: {
            const struct mesh_h1_msg *msg = &conn->parser.msg;
            if (msg->flags & MESH_H1_F_CLOSE || (msg->version < 11 && !(msg->flags & MESH_H1_F_KEEP_ALIVE)))
                conn->close_after = 1;
            if (msg->content_length > (int64_t)srv->opts.max_body) {
                answer_error(conn, 413, "request body too large\n");
                return 1;
            }
            conn->req = req_new(conn, msg);
            if (conn->req == NULL) {
                answer_error(conn, 503, "out of memory\n");
                return 1;
            }
            if ((msg->flags & MESH_H1_F_EXPECT_CONTINUE) && msg->framing != MESH_H1_NO_BODY)
                mesh_buf_appends(&conn->out, "HTTP/1.1 100 Continue\r\n\r\n");
            break;
        }
        case MESH_H1_PAUSED: mesh_h1_parser_resume(&conn->parser); break; /* no upgrades */
        case MESH_H1_END:
            conn->state = ST_HELD;
            conn->in_request = 0;
            conn->deadline_us = 0; /* the handler's business now */
            return 1;
        case MESH_ETOOBIG: answer_error(conn, 431, "request head too large\n"); return 1;
        case MESH_EPROTO: answer_error(conn, 400, "bad request\n"); return 1;
        case MESH_H1_DATA:
        case MESH_H1_TRAILERS: break;
        default: return -1;
        }
    }
}

/* After an error answer the peer may still be sending: closing with unread input
 * would reset the connection and could destroy the answer before it is read. */
static int linger(struct hd_conn *conn)
{
    char sink[4096];
    for (;;) {
        ssize_t n = hd_recv(conn, sink, sizeof(sink));
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(conn, MESH_READ);
            return 0;
        }
        return -1;
    }
}

/* One step; 1 to go on, 0 to wait for the socket (or the handler), -1 to close. */
static int conn_step(struct hd_conn *conn)
{
    struct mesh_httpd *srv = conn->srv;
    if (conn->handshaking)
        return hd_handshake(conn);
    switch (conn->state) {
    case ST_READ: {
        int rc = parse_in(conn);
        if (rc < 0)
            return rc;
        if (conn->out.len > conn->out_off && flush_out(conn) < 0) /* 100 Continue */
            return -1;
        if (rc > 0) {
            if (conn->state == ST_HELD) {
                struct mesh_httpd_req *req = conn->req;
                srv->opts.handler(req, srv->opts.ctx);
            }
            return 1;
        }
        rc = read_in(conn);
        if (rc == 0)
            watch(conn, MESH_READ);
        return rc;
    }
    case ST_HELD: break;
    case ST_RESPOND: {
        int rc = flush_out(conn);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            watch(conn, MESH_WRITE);
            return 0;
        }
        if (!conn->resp_done) {
            struct mesh_httpd_req *req = conn->req;
            conn->deadline_us = 0; /* a quiet stream may stay open */
            if (req != NULL && req->want_writable && req->on_writable != NULL) {
                req->want_writable = 0;
                req->on_writable(req, req->ctx);
                if (conn->out.len > 0 || conn->resp_done)
                    return 1;
            }
            break;
        }
        if (conn->close_after) {
            if (conn->ssl != NULL)
                SSL_shutdown(conn->ssl); /* close_notify; the peer's is not waited for */
            shutdown(conn->fd, SHUT_WR);
            conn->state = ST_LINGER;
            conn->deadline_us = after_ms(HD_LINGER_MS);
            return 1;
        }
        conn->state = ST_READ;
        conn->resp_done = 0;
        conn->deadline_us = after_ms(srv->opts.idle_timeout_ms);
        return 1;
    }
    case ST_LINGER: return linger(conn);
    }
    /* held, or a stream waiting for data: read ahead to see the client leave */
    int rc = read_in(conn);
    if (rc < 0)
        return -1;
    watch(conn, conn->in.len < HD_IN_CAP ? MESH_READ : 0);
    return rc;
}

static void conn_run(struct hd_conn *conn)
{
    conn->running = 1;
    for (;;) {
        conn->rerun = 0;
        int rc = conn_step(conn);
        if (conn->closed)
            break;
        if (rc < 0) {
            conn_close(conn);
            break;
        }
        if (rc == 0 && !conn->rerun)
            break;
    }
    conn->running = 0;
    if (conn->closed)
        conn_release(conn);
}

static void conn_io(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    conn_run(ctx);
}

/* --- answers ------------------------------------------------------------------------------- */

/* The connection |req| may still answer on, or NULL. */
static struct hd_conn *live_conn(struct mesh_httpd_req *req)
{
    struct hd_conn *conn = req->conn;
    return conn != NULL && !conn->closed ? conn : NULL;
}

int mesh_httpd_add_header(struct mesh_httpd_req *req, const char *name, const char *value)
{
    if (req->streaming || strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return MESH_EINVAL;
    int rv = mesh_buf_printf(&req->hdrs, "%s: %s\r\n", name, value);
    return rv == MESH_ETOOBIG ? MESH_EINVAL : rv;
}

int mesh_httpd_respond(struct mesh_httpd_req *req, int status, const char *content_type,
                       const void *body, size_t len)
{
    if (req->streaming)
        return MESH_EINVAL;
    struct hd_conn *conn = live_conn(req);
    if (conn == NULL) {
        req_free(req);
        return MESH_EIO;
    }
    conn->req = NULL;
    if (queue_head(conn, req, status, content_type, 0, len) != 0 ||
        (!req->head_only && len > 0 && mesh_buf_append(&conn->out, body, len) != 0)) {
        conn->close_after = 1; /* out of memory: nothing sensible to say */
        mesh_buf_reset(&conn->out);
        conn->out_off = 0;
    }
    req_free(req);
    conn->state = ST_RESPOND;
    conn->resp_done = 1;
    conn->deadline_us = after_ms(conn->srv->opts.idle_timeout_ms);
    conn_kick(conn);
    return 0;
}

int mesh_httpd_stream_start(struct mesh_httpd_req *req, int status, const char *content_type)
{
    if (req->streaming)
        return MESH_EINVAL;
    struct hd_conn *conn = live_conn(req);
    if (conn == NULL) {
        req->streaming = 1;
        return MESH_EIO;
    }
    if (req->http10)
        conn->close_after = 1; /* no chunked encoding: the body ends with the connection */
    if (queue_head(conn, req, status, content_type, !req->http10, (size_t)-1) != 0)
        return MESH_ENOMEM;
    req->streaming = 1;
    conn->state = ST_RESPOND;
    conn->resp_done = 0;
    conn->deadline_us = after_ms(conn->srv->opts.idle_timeout_ms);
    conn_kick(conn);
    return 0;
}

int mesh_httpd_stream_write(struct mesh_httpd_req *req, const void *data, size_t len)
{
    if (!req->streaming)
        return MESH_EINVAL;
    struct hd_conn *conn = live_conn(req);
    if (conn == NULL)
        return MESH_EIO;
    if (len == 0 || req->head_only)
        return 0;
    size_t pending = conn->out.len - conn->out_off;
    if (pending > 0 && pending + len > conn->srv->opts.max_pending) {
        req->want_writable = 1;
        return MESH_ETOOBIG;
    }
    int rv = 0;
    if (!req->http10)
        rv = mesh_buf_printf(&conn->out, "%zx\r\n", len);
    if (rv == 0)
        rv = mesh_buf_append(&conn->out, data, len);
    if (rv == 0 && !req->http10)
        rv = mesh_buf_appends(&conn->out, "\r\n");
    if (rv != 0)
        return MESH_ENOMEM;
    if (pending == 0)
        conn->deadline_us = after_ms(conn->srv->opts.idle_timeout_ms);
    conn_kick(conn);
    return 0;
}

int mesh_httpd_stream_end(struct mesh_httpd_req *req)
{
    struct hd_conn *conn = live_conn(req);
    if (conn == NULL) {
        req_free(req);
        return MESH_EIO;
    }
    if (!req->streaming)
        return MESH_EINVAL;
    if (!req->http10 && !req->head_only && mesh_buf_appends(&conn->out, "0\r\n\r\n") != 0)
        conn->close_after = 1;
    conn->req = NULL;
    req_free(req);
    conn->resp_done = 1;
    conn->deadline_us = after_ms(conn->srv->opts.idle_timeout_ms);
    conn_kick(conn);
    return 0;
}

/* --- the server ---------------------------------------------------------------------------- */

static void on_accept(struct mesh_loop *loop, int lfd, unsigned events, void *ctx)
{
    struct mesh_httpd *srv = ctx;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of fds: the next readiness tries again */
        }
        struct hd_conn *conn =
            srv->nconns < srv->opts.max_conns ? calloc(1, sizeof(*conn)) : NULL;
        if (conn == NULL) {
            close(fd); /* over the cap: closed rather than left in the backlog */
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn->srv = srv;
        conn->fd = fd;
        if (srv->tls != NULL) {
            if ((conn->ssl = SSL_new(srv->tls)) == NULL || SSL_set_fd(conn->ssl, fd) != 1) {
                SSL_free(conn->ssl);
                free(conn);
                close(fd);
                continue;
            }
            SSL_set_accept_state(conn->ssl);
            conn->handshaking = 1;
        }
        struct mesh_addr peer = {.ss = ss, .len = sslen};
        mesh_addr_format(&peer, conn->peer, sizeof(conn->peer));
        mesh_h1_parser_init(&conn->parser, MESH_H1_REQUEST, srv->opts.max_head, 0);
        mesh_buf_init(&conn->in, HD_IN_CAP + 1);
        mesh_buf_init(&conn->out, HD_MAX_OUT);
        conn->deadline_us = after_ms(srv->opts.idle_timeout_ms);
        conn->mask = MESH_READ;
        if (mesh_loop_add_fd(loop, fd, MESH_READ, conn_io, conn) != 0) {
            mesh_h1_parser_free(&conn->parser);
            SSL_free(conn->ssl);
            free(conn);
            close(fd);
            continue;
        }
        conn->next = srv->conns;
        if (srv->conns != NULL)
            srv->conns->prev = conn;
        srv->conns = conn;
        srv->nconns++;
    }
}

static int sweep(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_httpd *srv = ctx;
    uint64_t now = mesh_loop_now_us();
    /* from the start after each close: an on_gone may have closed others */
    for (struct hd_conn *conn = srv->conns; conn != NULL;) {
        if (conn->deadline_us != 0 && now >= conn->deadline_us) {
            conn_close(conn);
            conn = srv->conns;
        } else {
            conn = conn->next;
        }
    }
    unsigned t = srv->opts.header_timeout_ms < srv->opts.idle_timeout_ms
                     ? srv->opts.header_timeout_ms
                     : srv->opts.idle_timeout_ms;
    t /= 4;
    return t < 10 ? 10 : t > 1000 ? 1000 : (int)t;
}

struct mesh_httpd *mesh_httpd_new(struct mesh_loop *loop, const char *listen_addr,
                                  const struct mesh_httpd_opts *opts, char *errbuf, size_t errlen)
{
    struct mesh_addr addr;
    if (opts == NULL || opts->handler == NULL) {
        snprintf(errbuf, errlen, "%s: no handler", listen_addr);
        return NULL;
    }
    if (mesh_addr_parse(listen_addr, &addr, errbuf, errlen) != 0)
        return NULL;
    struct mesh_httpd *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(errbuf, errlen, "%s: out of memory", listen_addr);
        return NULL;
    }
    srv->loop = loop;
    srv->opts = *opts;
    struct mesh_httpd_opts *o = &srv->opts;
    if (o->max_conns == 0)
        o->max_conns = 256;
    if (o->max_head == 0)
        o->max_head = 8192;
    if (o->max_body == 0)
        o->max_body = 64 * 1024;
    if (o->max_pending == 0)
        o->max_pending = 256 * 1024;
    if (o->header_timeout_ms == 0)
        o->header_timeout_ms = 10000;
    if (o->idle_timeout_ms == 0)
        o->idle_timeout_ms = 60000;
    srv->lfd = -1;
    if (o->tls_cert != NULL && o->tls_key != NULL) {
        const char *what = o->tls_cert;
        if ((srv->tls = SSL_CTX_new(TLS_server_method())) == NULL ||
            SSL_CTX_use_certificate_chain_file(srv->tls, o->tls_cert) != 1 ||
            (what = o->tls_key, SSL_CTX_use_PrivateKey_file(srv->tls, o->tls_key,
                                                            SSL_FILETYPE_PEM) != 1) ||
            SSL_CTX_check_private_key(srv->tls) != 1) {
            char msg[160];
            ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
            snprintf(errbuf, errlen, "TLS: %s: %s", what, msg);
            goto fail;
        }
        SSL_CTX_set_min_proto_version(srv->tls, TLS1_2_VERSION);
        SSL_CTX_set_options(srv->tls, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
        SSL_CTX_set_mode(srv->tls, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                       SSL_MODE_ENABLE_PARTIAL_WRITE);
    }
    o->tls_cert = o->tls_key = NULL; /* not kept */
    int one = 1;
    srv->lfd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->lfd < 0 || setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(srv->lfd, (const struct sockaddr *)&addr.ss, addr.len) != 0 ||
        listen(srv->lfd, 128) != 0) {
        snprintf(errbuf, errlen, "%s: %s", listen_addr, strerror(errno));
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(srv->lfd, (struct sockaddr *)&bound, &blen) == 0)
        srv->port = ntohs(bound.ss_family == AF_INET6
                              ? ((struct sockaddr_in6 *)&bound)->sin6_port
                              : ((struct sockaddr_in *)&bound)->sin_port);
    srv->sweep_timer = -1;
    if (mesh_loop_add_fd(loop, srv->lfd, MESH_READ, on_accept, srv) != 0 ||
        (srv->sweep_timer = mesh_loop_add_timer(loop, 10, sweep, srv)) < 0) {
        snprintf(errbuf, errlen, "%s: cannot watch the listener", listen_addr);
        mesh_loop_del_fd(loop, srv->lfd);
        goto fail;
    }
    return srv;
fail:
    if (srv->lfd >= 0)
        close(srv->lfd);
    SSL_CTX_free(srv->tls);
    free(srv);
    return NULL;
}

int mesh_httpd_port(const struct mesh_httpd *srv)
{
    return srv->port;
}

unsigned mesh_httpd_nconns(const struct mesh_httpd *srv)
{
    return srv->nconns;
}

void mesh_httpd_free(struct mesh_httpd *srv)
{
    if (srv == NULL)
        return;
    while (srv->conns != NULL) {
        struct hd_conn *conn = srv->conns;
        conn_close(conn);
    }
    if (srv->sweep_timer > 0)
        mesh_loop_del_timer(srv->loop, srv->sweep_timer);
    mesh_loop_del_fd(srv->loop, srv->lfd);
    close(srv->lfd);
    SSL_CTX_free(srv->tls);
    free(srv);
}
