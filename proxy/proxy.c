/* proxy/proxy.c — mesh-proxy's core: listeners, protocol detection, routes,
 * upstream sockets, tap events and the graceful drain (contract in proxy.h).
 *
 * Detection reads the first bytes of every accepted connection: the HTTP/2
 * client preface means h2 on both sides, a request line's method token
 * followed by a space means HTTP/1.x, anything else (or nothing within the
 * detect timeout, as server-speaks-first protocols do) is opaque TCP. A
 * client still inside the preface or an upper-case method token when the
 * detect timeout ends is a slow HTTP client, and is closed (408). What was
 * read stays in conn->in for the module that takes the connection over.
 */
#define _GNU_SOURCE /* accept4 */
#include "proxy.h"

#include <ctype.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>             /* SO_ORIGINAL_DST */
#include <linux/netfilter_ipv6/ip6_tables.h> /* IP6T_SO_ORIGINAL_DST */
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/h1.h"
#include "mesh/tapsend.h"

#define PX_DETECT_CAP 1024u /* the preface is 24 bytes, a method token at most 32 */
#define ACCEPTS_PER_WAKEUP 64
#define ACCEPT_PAUSE_MS 100

static const char H2_PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(H2_PREFACE) - 1)
#define MAX_METHOD 32u

struct px_listener {
    struct px *px;
    int fd;
    enum mesh_direction dir;
    int64_t pause_timer;
};

/* A connection still being detected. */
struct px_detect {
    int64_t timer;
};

/* ---- routes ------------------------------------------------------------------------------ */

struct px_route *px_route_find(struct px *px, struct px_conn *conn, const char *authority,
                               size_t len)
{
    if (conn->has_orig && conn->dir == MESH_DIR_INBOUND)
        return &conn->orig_route;
    if (conn->dir == MESH_DIR_INBOUND)
        return px->inbound_route.neps > 0 ? &px->inbound_route : NULL;
    struct px_route *fallback = NULL;
    for (size_t i = 0; i < px->nroutes; i++) {
        struct px_route *route = &px->routes[i];
        const char *name = route->authority;
        size_t nlen = strlen(name);
        if (nlen == 1 && name[0] == '*') {
            fallback = route;
            continue;
        }
        if (authority == NULL)
            continue;
        if (nlen == len && strncasecmp(name, authority, len) == 0)
            return route;
        /* "host" asks for the default port: matches a route "host:80" */
        if (memchr(authority, ':', len) == NULL && nlen == len + 3 &&
            strncasecmp(name, authority, len) == 0 && memcmp(name + len, ":80", 3) == 0)
            return route;
    }
    return conn->has_orig ? &conn->orig_route : fallback;
}

/* ---- transparent: the original destination ------------------------------------------------ */

static int same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

int px_conn_set_orig(struct px_conn *conn, const struct sockaddr_storage *orig,
                     const struct sockaddr_storage *local)
{
    if ((orig->ss_family != AF_INET && orig->ss_family != AF_INET6) ||
        (local != NULL && same_sockaddr(orig, local)))
        return MESH_EINVAL;
    struct px_endpoint *ep = &conn->orig_ep;
    memset(ep, 0, sizeof(*ep));
    memset(&conn->orig_route, 0, sizeof(conn->orig_route));
    if (orig->ss_family == AF_INET) {
        struct sockaddr_in sin = *(const struct sockaddr_in *)orig;
        if (conn->dir == MESH_DIR_INBOUND)
            sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        memcpy(&ep->addr, &sin, sizeof(sin));
        ep->addrlen = sizeof(sin);
    } else {
        struct sockaddr_in6 sin6 = *(const struct sockaddr_in6 *)orig;
        if (conn->dir == MESH_DIR_INBOUND) {
            sin6.sin6_addr = in6addr_loopback;
            sin6.sin6_scope_id = 0;
        }
        memcpy(&ep->addr, &sin6, sizeof(sin6));
        ep->addrlen = sizeof(sin6);
    }
    struct mesh_addr addr;
    memcpy(&addr.ss, &ep->addr, sizeof(addr.ss));
    addr.len = ep->addrlen;
    mesh_addr_format(&addr, ep->name, sizeof(ep->name));
    conn->orig_route.authority = ep->name;
    conn->orig_route.eps = ep;
    conn->orig_route.neps = 1;
    conn->has_orig = 1;
    return 0;
}

/* What the NAT table says |fd| was connecting to: 0 with |orig| set, or -1
 * (no conntrack entry, not redirected). */
static int original_dst(int fd, const struct sockaddr_storage *local, struct sockaddr_storage *orig)
{
    socklen_t len = sizeof(*orig);
    memset(orig, 0, sizeof(*orig));
    if (local->ss_family == AF_INET6) {
        const struct sockaddr_in6 *l6 = (const void *)local;
        /* a v4 client on a dual-stack listener: the IPv4 NAT table knows it */
        if (!IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr))
            return getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, orig, &len) == 0 ? 0 : -1;
    }
    return getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, orig, &len) == 0 ? 0 : -1;
}

/* Ends the per-connection endpoint's life: h1.c may have pooled upstream
 * connections on it (ep->h1_pool). */
static void orig_route_free(struct px_conn *conn)
{
    if (conn->has_orig)
        px_h1_free_pool(&conn->orig_ep);
}

void px_route_free(struct px_route *route)
{
    free(route->authority);
    free((char *)route->labels.ns);
    free((char *)route->labels.deploy);
    free(route->eps);
    memset(route, 0, sizeof(*route));
}

/* "HOST:PORT[,HOST:PORT…]" (|len| bytes) into route->eps. */
static int parse_endpoints(const char *spec, const char *list, size_t len, struct px_route *route,
                           char *err, size_t errlen)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += list[i] == ',';
    route->eps = calloc(n, sizeof(*route->eps));
    if (route->eps == NULL) {
        snprintf(err, errlen, "route %s: out of memory", spec);
        return MESH_EINVAL;
    }
    for (const char *at = list, *end = list + len; at <= end;) {
        const char *comma = memchr(at, ',', (size_t)(end - at));
        size_t elen = (size_t)((comma ? comma : end) - at);
        char text[128], why[160];
        struct mesh_addr addr;
        if (elen == 0 || elen >= sizeof(text)) {
            snprintf(err, errlen, "route %s: an endpoint is empty or too long", spec);
            return MESH_EINVAL;
        }
        memcpy(text, at, elen);
        text[elen] = 0;
        if (mesh_addr_parse(text, &addr, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "route %s: %s", spec, why);
            return MESH_EINVAL;
        }
        struct px_endpoint *ep = &route->eps[route->neps++];
        memcpy(&ep->addr, &addr.ss, sizeof(ep->addr));
        ep->addrlen = addr.len;
        mesh_addr_format(&addr, ep->name, sizeof(ep->name));
        at += elen + 1;
    }
    return 0;
}

int px_route_parse(const char *spec, struct px_route *route, char *err, size_t errlen)
{
    memset(route, 0, sizeof(*route));
    const char *eq = strrchr(spec, '=');
    if (eq == NULL || eq == spec || eq[1] == 0) {
        snprintf(err, errlen, "route %s: expected AUTHORITY=HOST:PORT[,HOST:PORT…][@NS/DEPLOY]",
                 spec);
        return MESH_EINVAL;
    }
    const char *list = eq + 1, *at = strchr(list, '@');
    size_t listlen = at ? (size_t)(at - list) : strlen(list);
    route->authority = strndup(spec, (size_t)(eq - spec));
    if (route->authority == NULL)
        goto nomem;
    if (at != NULL) {
        const char *slash = strchr(at + 1, '/');
        if (slash == NULL || slash == at + 1 || slash[1] == 0 || strchr(slash + 1, '/')) {
            snprintf(err, errlen, "route %s: labels must read @NAMESPACE/DEPLOYMENT", spec);
            goto fail;
        }
        route->labels.ns = strndup(at + 1, (size_t)(slash - at - 1));
        route->labels.deploy = strdup(slash + 1);
        if (route->labels.ns == NULL || route->labels.deploy == NULL)
            goto nomem;
    }
    if (parse_endpoints(spec, list, listlen, route, err, errlen) != 0)
        goto fail;
    return 0;
nomem:
    snprintf(err, errlen, "route %s: out of memory", spec);
fail:
    px_route_free(route);
    return MESH_EINVAL;
}

int px_connect(const struct px_endpoint *ep)
{
    int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return MESH_EIO;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) != 0 &&
        errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return MESH_EIO;
    }
    return fd;
}

/* ---- who is calling ----------------------------------------------------------------------- */

size_t px_src_value(const struct px *px, char *buf, size_t len)
{
    const struct mesh_labels *self = &px->cfg.self;
    if (self->ns == NULL && self->deploy == NULL && self->pod == NULL)
        return 0;
    int n = snprintf(buf, len, "%s/%s/%s", self->ns ? self->ns : "",
                     self->deploy ? self->deploy : "", self->pod ? self->pod : "");
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

void px_src_parse(const char *value, size_t len, char *store, size_t storelen,
                  struct mesh_labels *labels)
{
    const char **parts[3] = {&labels->ns, &labels->deploy, &labels->pod};
    memset(labels, 0, sizeof(*labels));
    if (storelen == 0)
        return;
    if (len >= storelen)
        len = storelen - 1;
    memcpy(store, value, len);
    store[len] = 0;
    char *at = store;
    for (int i = 0; i < 3 && at != NULL; i++) {
        char *slash = i < 2 ? strchr(at, '/') : NULL;
        if (slash != NULL)
            *slash = 0;
        if (*at != 0)
            *parts[i] = at;
        at = slash != NULL ? slash + 1 : NULL;
    }
}

/* ---- tap --------------------------------------------------------------------------------- */

/* Writes |v| in decimal at |out| (20 bytes at most, no NUL); returns the length. */
static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void px_tap(struct px_conn *conn, const struct px_route *route, struct mesh_evt *evt,
            uint64_t stream)
{
    struct px *px = conn->px;
    char id[48]; /* "CONN:STREAM", without snprintf's cost on every request */
    size_t n = fmt_u64(id, conn->id);
    id[n++] = ':';
    id[n + fmt_u64(id + n, stream)] = '\0';
    evt->id = id;
    evt->direction = conn->dir;
    evt->src = conn->peer;
    if (evt->dst == NULL)
        evt->dst = conn->local;
    static const struct mesh_labels none;
    const struct mesh_labels *other = route != NULL ? &route->labels : &none;
    if (conn->dir == MESH_DIR_OUTBOUND) {
        evt->src_labels = px->cfg.self;
        const struct mesh_labels *said = &evt->dst_labels; /* PX_DST_HEADER */
        if (said->ns == NULL && said->deploy == NULL && said->pod == NULL)
            evt->dst_labels = *other;
    } else {
        evt->dst_labels = px->cfg.self; /* src_labels: what the caller's proxy said, if any */
    }
    if (px->tap != NULL)
        mesh_tapsend_add(px->tap, evt); /* a full queue drops and counts; never blocks */
    else
        px->tap_off_events++;
    px_metrics_request(px->metrics, &px->cfg.self, evt, route);
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_unlink(struct px_conn *conn)
{
    struct px *px = conn->px;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        px->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    conn->next = conn->prev = NULL;
}

void px_conn_close(struct px_conn *conn)
{
    struct px *px = conn->px;
    struct px_tcp_stats *st = px_conn_stats(conn);
    mesh_loop_del_fd(px->loop, conn->fd);
    close(conn->fd);
    orig_route_free(conn);
    conn_unlink(conn);
    st->close_total++;
    st->open_now--;
    px->nconns--;
    mesh_buf_free(&conn->in);
    free(conn);
    if (px->draining)
        mesh_loop_wake(px->loop); /* the drain check runs before the next sleep */
}

static void detect_done(struct px_conn *conn, void (*serve)(struct px_conn *))
{
    struct px_detect *det = conn->proto;
    if (det->timer > 0)
        mesh_loop_del_timer(conn->px->loop, det->timer);
    free(det);
    conn->proto = NULL;
    conn->detecting = 0;
    mesh_loop_del_fd(conn->px->loop, conn->fd);
    serve(conn);
}

static void detect_fail(struct px_conn *conn)
{
    struct px_detect *det = conn->proto;
    if (det->timer > 0)
        mesh_loop_del_timer(conn->px->loop, det->timer);
    free(det);
    conn->proto = NULL;
    conn->detecting = 0;
    px_conn_close(conn);
}

int px_detect(const uint8_t *buf, size_t len)
{
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
    if (memcmp(buf, H2_PREFACE, n) == 0)
        return len >= H2_PREFACE_LEN ? PX_DETECT_H2 : PX_DETECT_MORE;
    for (size_t i = 0; i < len && i <= MAX_METHOD; i++) {
        if (buf[i] == ' ')
            return i > 0 ? PX_DETECT_H1 : PX_DETECT_TCP;
        if (!mesh_h1_is_tchar(buf[i]))
            return PX_DETECT_TCP;
    }
    return len > MAX_METHOD ? PX_DETECT_TCP : PX_DETECT_MORE;
}

static void detect_decide(struct px_conn *conn, int what)
{
    switch (what) {
    case PX_DETECT_H2: detect_done(conn, px_h2_serve); break;
    case PX_DETECT_H1: detect_done(conn, px_h1_serve); break;
    case PX_DETECT_TCP: detect_done(conn, px_tcp_serve); break;
    default: break;
    }
}

static void on_detect_read(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct px_conn *conn = ctx;
    char *at;
    size_t room = PX_DETECT_CAP - conn->in.len;
    if (mesh_buf_append_space(&conn->in, room, &at) != 0) {
        detect_fail(conn);
        return;
    }
    ssize_t n = read(fd, at, room);
    conn->in.len -= room - (n > 0 ? (size_t)n : 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        detect_fail(conn); /* gone before saying anything we could forward */
        return;
    }
    if (n < 0)
        return;
    px_conn_count(conn, (uint64_t)n, 0);
    int what = px_detect((const uint8_t *)conn->in.data, conn->in.len);
    if (what == PX_DETECT_MORE && conn->in.len >= PX_DETECT_CAP)
        what = PX_DETECT_TCP;
    detect_decide(conn, what);
}

/* Whether |buf| can only be the slow start of HTTP: a part of the h2 client
 * preface, or of a method token as methods are spelled (upper case). */
static int detect_http_start(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (memcmp(buf, H2_PREFACE, len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN) == 0)
        return 1;
    for (size_t i = 0; i < len; i++)
        if (buf[i] < 'A' || buf[i] > 'Z')
            return 0;
    return 1;
}

static int on_detect_timeout(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct px_conn *conn = ctx;
    struct px_detect *det = conn->proto;
    det->timer = 0;
    if (detect_http_start((const uint8_t *)conn->in.data, conn->in.len)) {
        /* An HTTP client trickling its first bytes (slowloris before
         * detection): told so and closed, not forwarded opaque to hold an
         * upstream connection for as long as it keeps trickling. */
        static const char rsp[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                  "Content-Length: 0\r\n\r\n";
        if (conn->in.len < 3 || memcmp(conn->in.data, H2_PREFACE, 3) != 0) /* not "PRI" */
            (void)!send(conn->fd, rsp, sizeof(rsp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        detect_fail(conn);
        return MESH_TIMER_DONE;
    }
    /* Nothing said (a server-speaks-first protocol), or bytes no HTTP
     * request starts with: forwarded opaque. */
    detect_done(conn, px_tcp_serve);
    return MESH_TIMER_DONE;
}

static void fmt_sockaddr(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t buflen)
{
    struct mesh_addr addr;
    memcpy(&addr.ss, ss, sizeof(addr.ss));
    addr.len = len;
    mesh_addr_format(&addr, buf, buflen);
}

/* The accept path and px_conn_adopt(): |peer| as accept(2) gave it. */
static int conn_start(struct px *px, int fd, enum mesh_direction dir,
                      const struct sockaddr_storage *peer, socklen_t peerlen,
                      void (*serve)(struct px_conn *conn))
{
    struct px_conn *conn = calloc(1, sizeof(*conn));
    struct px_detect *det = serve == NULL ? calloc(1, sizeof(*det)) : NULL;
    if (conn == NULL || (serve == NULL && det == NULL)) {
        free(conn);
        free(det);
        close(fd);
        return MESH_ENOMEM;
    }
    conn->px = px;
    conn->fd = fd;
    conn->id = ++px->next_conn_id;
    conn->dir = dir;
    conn->accepted_us = mesh_loop_now_us();
    conn->proto = det;
    conn->detecting = serve == NULL;
    if (peer != NULL)
        fmt_sockaddr(peer, peerlen, conn->peer, sizeof(conn->peer));
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
        fmt_sockaddr(&ss, sslen, conn->local, sizeof(conn->local));
        struct sockaddr_storage orig;
        if (px->cfg.transparent && original_dst(fd, &ss, &orig) == 0)
            px_conn_set_orig(conn, &orig, &ss); /* not redirected: routes as usual */
    }
    mesh_buf_init(&conn->in, PX_DETECT_CAP);
    if (serve == NULL && mesh_loop_add_fd(px->loop, fd, MESH_READ, on_detect_read, conn) != 0) {
        mesh_buf_free(&conn->in);
        free(det);
        free(conn);
        close(fd);
        return MESH_ENOMEM;
    }
    if (serve == NULL)
        det->timer = mesh_loop_add_timer(px->loop, px->cfg.limits.detect_timeout_ms,
                                         on_detect_timeout, conn);
    conn->next = px->conns;
    if (px->conns != NULL)
        px->conns->prev = conn;
    px->conns = conn;
    px->nconns++;
    struct px_tcp_stats *st = px_conn_stats(conn);
    st->open_total++;
    st->open_now++;
    if (serve != NULL)
        serve(conn); /* may close it at once */
    return 0;
}

int px_conn_adopt(struct px *px, int fd, enum mesh_direction dir,
                  void (*serve)(struct px_conn *conn))
{
    struct sockaddr_storage peer;
    socklen_t peerlen = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &peerlen) != 0)
        return conn_start(px, fd, dir, NULL, 0, serve);
    return conn_start(px, fd, dir, &peer, peerlen, serve);
}

static int accept_resume(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct px_listener *lst = ctx;
    lst->pause_timer = 0;
    if (lst->fd >= 0)
        mesh_loop_mod_fd(loop, lst->fd, MESH_READ);
    return MESH_TIMER_DONE;
}

static void on_accept(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct px_listener *lst = ctx;
    struct px *px = lst->px;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        int cfd = accept4(fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && lst->pause_timer == 0) {
                /* EMFILE and friends: the backlog waits rather than spinning */
                int64_t id = mesh_loop_add_timer(loop, ACCEPT_PAUSE_MS, accept_resume, lst);
                if (id > 0) {
                    lst->pause_timer = id;
                    mesh_loop_mod_fd(loop, fd, 0);
                }
            }
            return;
        }
        if (px->nconns >= px->cfg.limits.max_conns) {
            px->refused_conns++;
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_start(px, cfd, lst->dir, &peer, peerlen, NULL); /* closes |cfd| when it fails */
    }
}

static struct px_listener *listen_on(struct px *px, const char *spec, enum mesh_direction dir,
                                     char *err, size_t errlen)
{
    struct mesh_addr addr;
    if (mesh_addr_parse(spec, &addr, err, errlen) != 0)
        return NULL;
    struct px_listener *lst = calloc(1, sizeof(*lst));
    if (lst == NULL) {
        snprintf(err, errlen, "listen on %s: out of memory", spec);
        return NULL;
    }
    lst->px = px;
    lst->dir = dir;
    lst->fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lst->fd < 0 || setsockopt(lst->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lst->fd, (struct sockaddr *)&addr.ss, addr.len) != 0 || listen(lst->fd, 1024) != 0) {
        snprintf(err, errlen, "listen on %s: %s", spec, strerror(errno));
        goto fail;
    }
    if (mesh_loop_add_fd(px->loop, lst->fd, MESH_READ, on_accept, lst) != 0) {
        snprintf(err, errlen, "listen on %s: cannot watch the socket", spec);
        goto fail;
    }
    return lst;
fail:
    if (lst->fd >= 0)
        close(lst->fd);
    free(lst);
    return NULL;
}

static void listener_close(struct px *px, struct px_listener *lst)
{
    if (lst == NULL)
        return;
    if (lst->pause_timer > 0)
        mesh_loop_del_timer(px->loop, lst->pause_timer);
    mesh_loop_del_fd(px->loop, lst->fd);
    close(lst->fd);
    free(lst);
}

int px_listener_port(const struct px_listener *lst)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (lst == NULL || getsockname(lst->fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- the proxy --------------------------------------------------------------------------- */

static void make_sender_id(const struct px_cfg *cfg, char *buf, size_t len)
{
    uint64_t now = mesh_wall_now_us();
    char host[64] = "";
    if (cfg->self.pod == NULL)
        gethostname(host, sizeof(host) - 1);
    /* a restarted proxy numbers its batches from 1 again: a new id keeps the
     * collector from taking them for resends */
    snprintf(buf, len, "mesh-proxy/%s/%ld/%llu.%06llu", cfg->self.pod ? cfg->self.pod : host,
             (long)getpid(), (unsigned long long)(now / 1000000u),
             (unsigned long long)(now % 1000000u));
}

struct px *px_new(struct mesh_loop *loop, const struct px_cfg *cfg, char *err, size_t errlen)
{
    struct px *px = calloc(1, sizeof(*px));
    if (px == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    px->loop = loop;
    px->cfg = *cfg;
    px->metrics = px_metrics_new();
    if (px->metrics == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->collector != NULL) {
        char sender[160];
        make_sender_id(cfg, sender, sizeof(sender));
        struct mesh_tapsend_opts topts = {
            .addr = cfg->collector,
            .sender_id = sender,
            .max_batches = cfg->tap_queue_batches,
        };
        px->tap = mesh_tapsend_new(loop, &topts, err, errlen);
        if (px->tap == NULL)
            goto fail;
    }
    return px;
fail:
    px_free(px);
    return NULL;
}

int px_start(struct px *px, char *err, size_t errlen)
{
    const struct px_cfg *cfg = &px->cfg;
    if (cfg->inbound != NULL &&
        (px->inbound = listen_on(px, cfg->inbound, MESH_DIR_INBOUND, err, errlen)) == NULL)
        return MESH_EIO;
    if (cfg->outbound != NULL &&
        (px->outbound = listen_on(px, cfg->outbound, MESH_DIR_OUTBOUND, err, errlen)) == NULL)
        return MESH_EIO;
    if (cfg->admin != NULL && px_admin_start(px, cfg->admin, err, errlen) != 0)
        return MESH_EIO;
    px->ready = 1;
    return 0;
}

static void stop_listeners(struct px *px)
{
    listener_close(px, px->inbound);
    listener_close(px, px->outbound);
    px->inbound = px->outbound = NULL;
}

void px_drain(struct px *px)
{
    if (px->draining)
        return;
    px->draining = 1;
    stop_listeners(px);
    /* on_drain may close the connection: walk with the next pointer saved */
    for (struct px_conn *conn = px->conns, *next; conn != NULL; conn = next) {
        next = conn->next;
        if (conn->detecting)
            detect_fail(conn); /* nothing forwarded yet */
        else if (conn->on_drain != NULL)
            conn->on_drain(conn);
    }
    if (px->tap != NULL)
        mesh_tapsend_flush(px->tap);
}

int px_drained(const struct px *px)
{
    return px->nconns == 0 && (px->tap == NULL || mesh_tapsend_unacked(px->tap) == 0);
}

void px_close_all(struct px *px)
{
    while (px->conns != NULL) {
        struct px_conn *conn = px->conns;
        if (conn->detecting)
            detect_fail(conn);
        else if (conn->on_close != NULL)
            conn->on_close(conn); /* the module frees its state, then px_conn_close() */
        else
            px_conn_close(conn);
    }
}

void px_free(struct px *px)
{
    if (px == NULL)
        return;
    stop_listeners(px);
    px_admin_stop(px);
    if (px->tap != NULL)
        mesh_tapsend_free(px->tap);
    px_metrics_free(px->metrics);
    px_h1_free_pools(px);
    for (size_t i = 0; i < px->nroutes; i++)
        px_route_free(&px->routes[i]);
    free(px->routes);
    px_route_free(&px->inbound_route);
    free(px);
}
