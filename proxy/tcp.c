/* proxy/tcp.c — opaque TCP forwarding (px_tcp_serve, contract in proxy.h).
 *
 * The route is px_route_find(px, conn, NULL, 0); none, or a failed connect,
 * closes the client. Bytes move both ways through one bounded buffer per
 * direction: a side is not read while its buffer holds TCPP_SOFT bytes, so a
 * slow reader slows the writer instead of growing memory. An EOF is passed on
 * as shutdown(SHUT_WR) once its direction is written out (half-close); the
 * tunnel ends when both directions ended, on an error, or after idle_timeout_ms
 * with no byte moved. No tap event: the core counts TCP metrics.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/err.h"
#include "proxy.h"

#define TCPP_READ_SIZE (64u * 1024u)
#define TCPP_SOFT (256u * 1024u)

/* One direction of the tunnel: what was read from one side, for the other. */
struct tcpp_dir {
    struct mesh_buf buf;
    size_t off;   /* written so far from buf.data */
    int eof;      /* the source ended */
    int shut;     /* the sink was shut down for writing */
};

struct tcpp_conn {
    struct px_conn *conn;
    struct px *px;
    struct px_endpoint *ep;
    int up_fd;
    int connecting;
    uint64_t connect_start_us, last_active_us, drain_until_us;
    int64_t timer;
    struct tcpp_dir c2u, u2c; /* client → upstream, upstream → client */
};

static void tcpp_free(struct tcpp_conn *tc)
{
    struct px_conn *conn = tc->conn;
    struct px *px = tc->px;
    if (tc->connecting && tc->ep != NULL) {
        uint64_t now = mesh_loop_now_us();
        px_endpoint_done(tc->ep, now, now - tc->connect_start_us, 1);
    }
    if (tc->timer > 0)
        mesh_loop_del_timer(px->loop, tc->timer);
    if (tc->up_fd >= 0) {
        mesh_loop_del_fd(px->loop, tc->up_fd);
        close(tc->up_fd);
    }
    mesh_buf_free(&tc->c2u.buf);
    mesh_buf_free(&tc->u2c.buf);
    free(tc);
    conn->proto = NULL;
    px_conn_close(conn);
}

/* Reads from |fd| into |d|. Returns 0, or -1 when the tunnel must end. */
static int tcpp_read(struct tcpp_conn *tc, int fd, struct tcpp_dir *d, int downstream)
{
    if (d->off > 0 && d->off == d->buf.len) {
        mesh_buf_reset(&d->buf);
        d->off = 0;
    }
    if (d->off > TCPP_SOFT / 2) {
        mesh_buf_consume(&d->buf, d->off);
        d->off = 0;
    }
    char *at;
    if (mesh_buf_append_space(&d->buf, TCPP_READ_SIZE, &at) != 0)
        return -1;
    ssize_t n = read(fd, at, TCPP_READ_SIZE);
    d->buf.len -= TCPP_READ_SIZE - (n > 0 ? (size_t)n : 0);
    if (n > 0) {
        if (downstream)
            px_conn_count(tc->conn, (uint64_t)n, 0);
        tc->last_active_us = mesh_loop_now_us();
        return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n < 0)
        return -1;
    d->eof = 1;
    return 0;
}

/* Writes |d| to |fd|, and passes its EOF on once it is empty. */
static int tcpp_write(struct tcpp_conn *tc, int fd, struct tcpp_dir *d, int downstream)
{
    while (d->off < d->buf.len) {
        ssize_t n = send(fd, d->buf.data + d->off, d->buf.len - d->off, MSG_NOSIGNAL);
        if (n > 0) {
            d->off += (size_t)n;
            if (downstream)
                px_conn_count(tc->conn, 0, (uint64_t)n);
            tc->last_active_us = mesh_loop_now_us();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    if (d->eof && !d->shut) {
        shutdown(fd, SHUT_WR);
        d->shut = 1;
    }
    if (d->buf.alloc > TCPP_READ_SIZE * 2 && d->off == d->buf.len) {
        mesh_buf_free(&d->buf); /* an idle tunnel keeps no big buffers */
        d->off = 0;
    }
    return 0;
}

static size_t tcpp_pending(const struct tcpp_dir *d)
{
    return d->buf.len - d->off;
}

/* Flushes both ways, then sets what the loop watches; frees |tc| when done. */
static void tcpp_settle(struct tcpp_conn *tc)
{
    struct mesh_loop *loop = tc->px->loop;
    int cfd = tc->conn->fd;
    if (!tc->connecting &&
        (tcpp_write(tc, tc->up_fd, &tc->c2u, 0) != 0 || tcpp_write(tc, cfd, &tc->u2c, 1) != 0)) {
        tcpp_free(tc);
        return;
    }
    if (tc->c2u.shut && tc->u2c.shut) {
        tcpp_free(tc);
        return;
    }
    unsigned cm = 0, um = 0;
    if (!tc->c2u.eof && tcpp_pending(&tc->c2u) < TCPP_SOFT)
        cm |= MESH_READ;
    if (tcpp_pending(&tc->u2c) > 0)
        cm |= MESH_WRITE;
    if (tc->connecting) {
        um = MESH_WRITE;
    } else {
        if (!tc->u2c.eof && tcpp_pending(&tc->u2c) < TCPP_SOFT)
            um |= MESH_READ;
        if (tcpp_pending(&tc->c2u) > 0)
            um |= MESH_WRITE;
    }
    if (mesh_loop_mod_fd(loop, cfd, cm) != 0 || mesh_loop_mod_fd(loop, tc->up_fd, um) != 0)
        tcpp_free(tc);
}

static void tcpp_on_client(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct tcpp_conn *tc = ctx;
    if ((events & MESH_READ) && tcpp_read(tc, fd, &tc->c2u, 1) != 0) {
        tcpp_free(tc);
        return;
    }
    tcpp_settle(tc);
}

static void tcpp_on_upstream(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct tcpp_conn *tc = ctx;
    if (tc->connecting) {
        int soerr = 0;
        socklen_t slen = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0)
            soerr = errno;
        if (soerr == EINPROGRESS || soerr == EALREADY)
            return;
        uint64_t now = mesh_loop_now_us();
        tc->connecting = 0;
        px_endpoint_done(tc->ep, now, now - tc->connect_start_us, soerr != 0);
        if (soerr != 0) {
            tcpp_free(tc);
            return;
        }
        tc->last_active_us = now;
    }
    if ((events & MESH_READ) && tcpp_read(tc, fd, &tc->u2c, 0) != 0) {
        tcpp_free(tc);
        return;
    }
    tcpp_settle(tc);
}

static int tcpp_on_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct tcpp_conn *tc = ctx;
    const struct px_limits *lim = &tc->px->cfg.limits;
    uint64_t now = mesh_loop_now_us();
    uint64_t at = tc->connecting ? tc->connect_start_us + (uint64_t)lim->connect_timeout_ms * 1000u
                                 : tc->last_active_us + (uint64_t)lim->idle_timeout_ms * 1000u;
    if (tc->drain_until_us != 0 && tc->drain_until_us < at)
        at = tc->drain_until_us;
    if (now < at)
        return (int)((at - now + 999) / 1000); /* activity moved the deadline */
    tc->timer = 0;
    tcpp_free(tc);
    return MESH_TIMER_DONE;
}

/* Opaque bytes have no place to say "stop": let them flow, but end the
 * tunnel before the core's drain deadline does. */
static void tcpp_on_drain(struct px_conn *conn)
{
    struct tcpp_conn *tc = conn->proto;
    tc->drain_until_us = mesh_loop_now_us() + (uint64_t)tc->px->cfg.limits.drain_ms * 750u;
    if (tc->timer > 0)
        mesh_loop_del_timer(tc->px->loop, tc->timer);
    tc->timer = mesh_loop_add_timer(tc->px->loop, tc->px->cfg.limits.drain_ms * 3u / 4u,
                                    tcpp_on_timer, tc);
    if (tc->timer < 0)
        tc->timer = 0;
}

static void tcpp_on_close(struct px_conn *conn)
{
    tcpp_free(conn->proto);
}

void px_tcp_serve(struct px_conn *conn)
{
    struct px *px = conn->px;
    struct px_route *route = px_route_find(px, conn, NULL, 0);
    struct tcpp_conn *tc = route != NULL && route->neps > 0 ? calloc(1, sizeof(*tc)) : NULL;
    if (tc == NULL) {
        px_conn_close(conn);
        return;
    }
    tc->conn = conn;
    tc->px = px;
    tc->up_fd = -1;
    mesh_buf_init(&tc->c2u.buf, TCPP_SOFT + TCPP_READ_SIZE);
    mesh_buf_init(&tc->u2c.buf, TCPP_SOFT + TCPP_READ_SIZE);
    conn->proto = tc;
    conn->on_drain = tcpp_on_drain;
    conn->on_close = tcpp_on_close;
    if (conn->in.len > 0 && mesh_buf_append(&tc->c2u.buf, conn->in.data, conn->in.len) != 0) {
        tcpp_free(tc);
        return;
    }
    mesh_buf_free(&conn->in);
    uint64_t now = mesh_loop_now_us();
    tc->connect_start_us = tc->last_active_us = now;
    tc->ep = px_endpoint_pick(route, now);
    px_endpoint_start(tc->ep);
    tc->connecting = 1;
    tc->up_fd = px_connect(tc->ep);
    if (tc->up_fd < 0) {
        tcpp_free(tc);
        return;
    }
    if (mesh_loop_add_fd(px->loop, conn->fd, 0, tcpp_on_client, tc) != 0 ||
        mesh_loop_add_fd(px->loop, tc->up_fd, MESH_WRITE, tcpp_on_upstream, tc) != 0) {
        mesh_loop_del_fd(px->loop, conn->fd);
        tcpp_free(tc);
        return;
    }
    tc->timer = mesh_loop_add_timer(px->loop, px->cfg.limits.connect_timeout_ms, tcpp_on_timer, tc);
    if (tc->timer < 0)
        tc->timer = 0;
    if (px->draining)
        tcpp_on_drain(conn);
    tcpp_settle(tc);
}
