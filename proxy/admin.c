/* proxy/admin.c — the admin server: GET /metrics, /ready, /live over HTTP/1.1.
 *
 * One request at a time per connection: the next is not parsed (nor read) before the
 * response to the previous one is fully written, so a slow or pipelining reader holds
 * at most one response and one read's worth of input. Heads are parsed strictly
 * (mesh_h1, 8 KiB → 431); bodies are read and dropped. At most ADM_MAX_CONNS at once
 * (more are accepted and closed, so they do not sit in the backlog); a connection
 * that goes ADM_TIMEOUT_MS without a complete request or without write progress is
 * closed, swept once a second. The state is file-static: one admin server a process.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/h1.h"
#include "proxy.h"

#define ADM_MAX_CONNS    64u
#define ADM_MAX_HEAD     8192u
#define ADM_TIMEOUT_MS   10000u
#define ADM_READ_CHUNK   4096u
#define ADM_LINGER_MS    2000u
#define ADM_HEAD_ROOM    256u         /* reserved before a body for the status line and fields */
#define ADM_MAX_RESPONSE (256u << 20) /* /metrics with 10000 series is a few MB */
#define ADM_KEEP_OUT     65536u       /* keep an output buffer this big between responses */

struct adm_conn {
    struct adm *adm;
    int fd;
    struct mesh_h1_parser parser;
    struct mesh_buf in;  /* read, not yet parsed: at most one read */
    struct mesh_buf out; /* the response being written, from |out_off| */
    size_t out_off;
    uint64_t deadline_us;
    int responded;   /* the current request has its response queued */
    int close_after; /* close once |out| is written */
    int lingering;   /* written and shut down: reading until the peer closes */
    unsigned mask;   /* what the loop watches for */
    struct adm_conn *next, *prev;
};

struct adm {
    struct px *px;
    int lfd;
    int64_t sweep_timer;
    unsigned nconns;
    struct adm_conn *conns;
};

static struct adm *the_adm;

static void conn_close(struct adm_conn *conn)
{
    struct adm *adm = conn->adm;
    mesh_loop_del_fd(adm->px->loop, conn->fd);
    close(conn->fd);
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        adm->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    adm->nconns--;
    mesh_h1_parser_free(&conn->parser);
    mesh_buf_free(&conn->in);
    mesh_buf_free(&conn->out);
    free(conn);
}

/* ---- responses --------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* Queues a response whose body is already in |conn->out| after ADM_HEAD_ROOM
 * bytes: writes the head right before the body. |head_only|: HEAD, the body is
 * dropped but its length announced. */
static void finish_response(struct adm_conn *conn, int status, const char *ctype, int head_only)
{
    size_t body_len = conn->out.len - ADM_HEAD_ROOM;
    char head[ADM_HEAD_ROOM];
    int n = snprintf(
        head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
        status, reason(status), ctype, body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "",
        conn->close_after ? "Connection: close\r\n" : "");
    memcpy(conn->out.data + ADM_HEAD_ROOM - (size_t)n, head, (size_t)n);
    conn->out_off = ADM_HEAD_ROOM - (size_t)n;
    if (head_only)
        conn->out.len = ADM_HEAD_ROOM;
    conn->responded = 1;
}

static int start_body(struct adm_conn *conn)
{
    char *at;
    mesh_buf_reset(&conn->out);
    return mesh_buf_append_space(&conn->out, ADM_HEAD_ROOM, &at);
}

static void respond_text(struct adm_conn *conn, int status, const char *text, int head_only)
{
    if (start_body(conn) != 0 || mesh_buf_appends(&conn->out, text) != 0) {
        conn->close_after = 1; /* out of memory: nothing sensible to say */
        mesh_buf_reset(&conn->out);
        conn->out_off = 0;
        conn->responded = 1;
        return;
    }
    finish_response(conn, status, "text/plain; charset=utf-8", head_only);
}

static void respond(struct adm_conn *conn, const struct mesh_h1_msg *msg)
{
    struct px *px = conn->adm->px;
    size_t path_len = strcspn(msg->target, "?");
    int head_only = msg->method_len == 4 && memcmp(msg->method, "HEAD", 4) == 0;
    int get = head_only || (msg->method_len == 3 && memcmp(msg->method, "GET", 3) == 0);
#define PATH_IS(p) (path_len == sizeof(p) - 1 && memcmp(msg->target, p, path_len) == 0)
    int metrics = PATH_IS("/metrics"), ready = PATH_IS("/ready"), live = PATH_IS("/live");
#undef PATH_IS
    if (!metrics && !ready && !live)
        respond_text(conn, 404, "not found\n", head_only);
    else if (!get)
        respond_text(conn, 405, "method not allowed\n", 0);
    else if (live)
        respond_text(conn, 200, "live\n", head_only);
    else if (ready && px->ready && !px->draining)
        respond_text(conn, 200, "ready\n", head_only);
    else if (ready)
        respond_text(conn, 503, "not ready\n", head_only);
    else if (start_body(conn) == 0 && px_metrics_render(px, &conn->out) == 0)
        finish_response(conn, 200, "text/plain; version=0.0.4; charset=utf-8", head_only);
    else
        respond_text(conn, 500, "metrics unavailable\n", head_only);
}

/* ---- the connection ---------------------------------------------------------------------- */

static void conn_io(struct mesh_loop *loop, int fd, unsigned events, void *ctx);

/* Writes what is queued. 0 when all is out, 1 when the socket is full, -1 to close. */
static int flush_out(struct adm_conn *conn)
{
    while (conn->out_off < conn->out.len) {
        ssize_t n = send(conn->fd, conn->out.data + conn->out_off, conn->out.len - conn->out_off,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n <= 0)
            return -1;
        conn->out_off += (size_t)n;
        conn->deadline_us = mesh_loop_now_us() + ADM_TIMEOUT_MS * 1000ull;
    }
    if (conn->out.alloc > ADM_KEEP_OUT) {
        mesh_buf_free(&conn->out);
        mesh_buf_init(&conn->out, ADM_MAX_RESPONSE);
    } else {
        mesh_buf_reset(&conn->out);
    }
    conn->out_off = 0;
    return 0;
}

/* Parses buffered input up to the end of one request and answers it. 0: more
 * input wanted; 1: a response is queued; -1: close now. */
static int parse_in(struct adm_conn *conn)
{
    while (!conn->responded) {
        size_t used = 0;
        int ev =
            mesh_h1_parse(&conn->parser, (const uint8_t *)conn->in.data, conn->in.len, &used, NULL);
        mesh_buf_consume(&conn->in, used);
        if (ev == MESH_ETOOBIG || ev == MESH_EPROTO) {
            conn->close_after = 1;
            respond_text(conn, ev == MESH_ETOOBIG ? 431 : 400,
                         ev == MESH_ETOOBIG ? "request head too large\n" : "bad request\n", 0);
            return 1;
        }
        if (ev < 0)
            return -1;
        if (ev == MESH_H1_NEED_MORE)
            return 0;
        if (ev == MESH_H1_PAUSED) {
            mesh_h1_parser_resume(&conn->parser); /* no protocol switch here */
        } else if (ev == MESH_H1_END) {
            const struct mesh_h1_msg *msg = &conn->parser.msg;
            if (msg->flags & MESH_H1_F_CLOSE ||
                (msg->version < 11 && !(msg->flags & MESH_H1_F_KEEP_ALIVE)) ||
                conn->adm->px->draining)
                conn->close_after = 1;
            respond(conn, msg);
            return 1;
        }
    }
    return 1;
}

static void watch(struct adm_conn *conn, unsigned mask)
{
    if (conn->mask != mask && mesh_loop_mod_fd(conn->adm->px->loop, conn->fd, mask) == 0)
        conn->mask = mask;
}

/* After an error answer the peer may still be sending: closing with unread input
 * would reset the connection and could destroy the answer before it is read. */
static int linger(struct adm_conn *conn)
{
    char sink[4096];
    for (;;) {
        ssize_t n = recv(conn->fd, sink, sizeof(sink), 0);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(conn, MESH_READ);
            return 1;
        }
        return -1;
    }
}

/* Runs the connection until it waits on the socket; closes it when done. */
static void conn_run(struct adm_conn *conn)
{
    if (conn->lingering) {
        if (linger(conn) < 0)
            conn_close(conn);
        return;
    }
    for (;;) {
        if (conn->responded) {
            int rc = flush_out(conn);
            if (rc < 0)
                goto close;
            if (rc > 0) {
                watch(conn, MESH_WRITE);
                return;
            }
            if (conn->close_after) {
                shutdown(conn->fd, SHUT_WR);
                conn->lingering = 1;
                conn->deadline_us = mesh_loop_now_us() + ADM_LINGER_MS * 1000ull;
                if (linger(conn) < 0)
                    goto close;
                return;
            }
            conn->responded = 0;
            conn->deadline_us = mesh_loop_now_us() + ADM_TIMEOUT_MS * 1000ull;
        }
        int rc = parse_in(conn);
        if (rc < 0)
            goto close;
        if (rc > 0)
            continue;
        /* input used up: read one more chunk */
        char *at;
        if (mesh_buf_append_space(&conn->in, ADM_READ_CHUNK, &at) != 0)
            goto close;
        ssize_t n;
        do
            n = recv(conn->fd, at, ADM_READ_CHUNK, 0);
        while (n < 0 && errno == EINTR);
        conn->in.len -= ADM_READ_CHUNK - (n > 0 ? (size_t)n : 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            goto close; /* a truncated request gets no answer: its sender is gone */
        if (n < 0) {
            watch(conn, MESH_READ);
            return;
        }
    }
close:
    conn_close(conn);
}

static void conn_io(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    conn_run(ctx);
}

static void on_accept(struct mesh_loop *loop, int lfd, unsigned events, void *ctx)
{
    struct adm *adm = ctx;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of fds: the next readiness tries again */
        }
        struct adm_conn *conn = adm->nconns < ADM_MAX_CONNS ? calloc(1, sizeof(*conn)) : NULL;
        if (conn == NULL) {
            close(fd);
            continue;
        }
        conn->adm = adm;
        conn->fd = fd;
        mesh_h1_parser_init(&conn->parser, MESH_H1_REQUEST, ADM_MAX_HEAD, 0);
        mesh_buf_init(&conn->in, ADM_READ_CHUNK);
        mesh_buf_init(&conn->out, ADM_MAX_RESPONSE);
        conn->deadline_us = mesh_loop_now_us() + ADM_TIMEOUT_MS * 1000ull;
        conn->mask = MESH_READ;
        if (mesh_loop_add_fd(loop, fd, MESH_READ, conn_io, conn) != 0) {
            mesh_h1_parser_free(&conn->parser);
            mesh_buf_free(&conn->in);
            mesh_buf_free(&conn->out);
            free(conn);
            close(fd);
            continue;
        }
        conn->next = adm->conns;
        if (adm->conns != NULL)
            adm->conns->prev = conn;
        adm->conns = conn;
        adm->nconns++;
    }
}

static int sweep(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct adm *adm = ctx;
    uint64_t now = mesh_loop_now_us();
    for (struct adm_conn *conn = adm->conns, *next; conn != NULL; conn = next) {
        next = conn->next;
        if (now >= conn->deadline_us)
            conn_close(conn);
    }
    return 1000;
}

/* ---- start and stop ---------------------------------------------------------------------- */

int px_admin_start(struct px *px, const char *listen_addr, char *err, size_t errlen)
{
    if (the_adm != NULL) {
        snprintf(err, errlen, "admin %s: an admin server is running already", listen_addr);
        return MESH_EIO;
    }
    struct mesh_addr addr;
    if (mesh_addr_parse(listen_addr, &addr, err, errlen) != 0)
        return MESH_EIO;
    struct adm *adm = calloc(1, sizeof(*adm));
    if (adm == NULL) {
        snprintf(err, errlen, "admin %s: out of memory", listen_addr);
        return MESH_EIO;
    }
    adm->px = px;
    adm->sweep_timer = -1;
    int one = 1;
    adm->lfd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (adm->lfd < 0 || setsockopt(adm->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(adm->lfd, (const struct sockaddr *)&addr.ss, addr.len) != 0 ||
        listen(adm->lfd, 128) != 0) {
        snprintf(err, errlen, "admin %s: %s", listen_addr, strerror(errno));
        goto fail;
    }
    if (mesh_loop_add_fd(px->loop, adm->lfd, MESH_READ, on_accept, adm) != 0 ||
        (adm->sweep_timer = mesh_loop_add_timer(px->loop, 1000, sweep, adm)) < 0) {
        snprintf(err, errlen, "admin %s: cannot watch the listener", listen_addr);
        goto fail;
    }
    the_adm = adm;
    return 0;
fail:
    if (adm->lfd >= 0) {
        mesh_loop_del_fd(px->loop, adm->lfd);
        close(adm->lfd);
    }
    free(adm);
    return MESH_EIO;
}

int px_admin_port(const struct px *px)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (the_adm == NULL || the_adm->px != px ||
        getsockname(the_adm->lfd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

void px_admin_stop(struct px *px)
{
    struct adm *adm = the_adm;
    if (adm == NULL || adm->px != px)
        return;
    while (adm->conns != NULL)
        conn_close(adm->conns);
    mesh_loop_del_timer(px->loop, adm->sweep_timer);
    mesh_loop_del_fd(px->loop, adm->lfd);
    close(adm->lfd);
    free(adm);
    the_adm = NULL;
}
