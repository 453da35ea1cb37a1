/* lib/grpc.c — what the gRPC server and client share (mesh/grpc.h): addresses,
 * wire helpers, connection I/O around an nghttp2 session, and calls (send
 * queue, message reassembly, flow control). */
#include "mesh/grpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_impl.h"
#include "mesh/err.h"

#define READ_CHUNK       16384
#define READS_PER_WAKEUP 8
#define WBUF_GATHER      65536 /* gather frames up to this much per write(2) */
#define WBUF_CAP         (1u << 20)
#define KEEP_ALLOC       16384 /* buffers larger than this are released when they empty */
#define DRAIN_MS         2000  /* how long an HTTP/1.x peer gets to read our 505 */

/* --- status names, wire helpers ----------------------------------------------------------- */

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *mesh_grpc_status_name(int status)
{
    if (status < 0 || status >= (int)(sizeof(status_names) / sizeof(status_names[0])))
        return "UNKNOWN_STATUS";
    return status_names[status];
}

int mesh_grpc_timeout_parse(const char *value, size_t len, uint64_t *us)
{
    if (len < 2 || len > 9)
        return MESH_EINVAL;
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return MESH_EINVAL;
        n = n * 10 + (uint64_t)(value[i] - '0');
    }
    switch (value[len - 1]) {
    case 'H':
        *us = n * 3600u * 1000000u;
        break;
    case 'M':
        *us = n * 60u * 1000000u;
        break;
    case 'S':
        *us = n * 1000000u;
        break;
    case 'm':
        *us = n * 1000u;
        break;
    case 'u':
        *us = n;
        break;
    case 'n':
        *us = (n + 999) / 1000;
        break;
    default:
        return MESH_EINVAL;
    }
    return 0;
}

int mesh_grpc_message_encode(struct mesh_buf *buf, const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        int rv;
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            rv = mesh_buf_append(buf, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rv = mesh_buf_append(buf, esc, 3);
        }
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mesh_grpc_message_decode(struct mesh_buf *buf, const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        int hi, lo;
        if (c == '%' && i + 2 < len && (hi = hexval(value[i + 1])) >= 0 &&
            (lo = hexval(value[i + 2])) >= 0) {
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        int rv = mesh_buf_append(buf, &c, 1);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* --- addresses ---------------------------------------------------------------------------- */

int mesh_addr_parse(const char *text, struct mesh_addr *addr, char *errbuf, size_t errlen)
{
    char host[64];
    const char *why = NULL, *port_str;
    memset(addr, 0, sizeof(*addr));
    if (text == NULL || text[0] == '\0') {
        snprintf(errbuf, errlen, "empty address: expected HOST:PORT (127.0.0.1:8088, [::1]:8088)");
        return MESH_EINVAL;
    }
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (end == NULL || end[1] != ':') {
            why = "expected [IPV6]:PORT";
            goto out;
        }
        if ((size_t)(end - text - 1) >= sizeof(host)) {
            why = "host too long";
            goto out;
        }
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = '\0';
        port_str = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || colon == text) {
            why = "expected HOST:PORT (127.0.0.1:8088, [::1]:8088)";
            goto out;
        }
        if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
            why = "an IPv6 address needs brackets ([::1]:8088)";
            goto out;
        }
        if ((size_t)(colon - text) >= sizeof(host)) {
            why = "host too long";
            goto out;
        }
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_str = colon + 1;
    }
    unsigned long port = 0;
    if (port_str[0] == '\0' || strlen(port_str) > 5 ||
        strspn(port_str, "0123456789") != strlen(port_str) ||
        (port = strtoul(port_str, NULL, 10)) > 65535) {
        why = "the port must be a number from 0 to 65535";
        goto out;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *sin = (struct sockaddr_in *)&addr->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr->ss;
    if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        addr->len = sizeof(*sin);
    } else if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        addr->len = sizeof(*sin6);
    } else {
        why = text[0] == '[' ? "not an IPv6 address"
                             : "the host must be an IPv4 address, [IPv6] or localhost";
    }
out:
    if (why != NULL) {
        snprintf(errbuf, errlen, "bad address \"%s\": %s", text, why);
        return MESH_EINVAL;
    }
    return 0;
}

char *mesh_addr_format(const struct mesh_addr *addr, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr->ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

/* --- the flush hook ----------------------------------------------------------------------- */

static void dirty_unlink(struct gconn *conn)
{
    struct gflush *flush = conn->flush;
    if (!conn->in_dirty)
        return;
    if (conn->dirty_prev != NULL)
        conn->dirty_prev->dirty_next = conn->dirty_next;
    else
        flush->head = conn->dirty_next;
    if (conn->dirty_next != NULL)
        conn->dirty_next->dirty_prev = conn->dirty_prev;
    else
        flush->tail = conn->dirty_prev;
    conn->dirty_prev = conn->dirty_next = NULL;
    conn->in_dirty = 0;
}

void gconn_mark_dirty(struct gconn *conn)
{
    struct gflush *flush = conn->flush;
    if (conn->in_dirty)
        return;
    conn->in_dirty = 1;
    conn->dirty_next = NULL;
    conn->dirty_prev = flush->tail;
    if (flush->tail != NULL)
        flush->tail->dirty_next = conn;
    else
        flush->head = conn;
    flush->tail = conn;
    mesh_loop_wake(flush->loop); /* in case our hook has already run this time */
}

static void flush_hook(struct mesh_loop *loop, void *ctx)
{
    struct gflush *flush = ctx;
    uint64_t pass = ++flush->pass;
    struct gconn *conn;
    while ((conn = flush->head) != NULL) {
        if (conn->flushed_pass == pass)
            break; /* dirtied again by a callback of this pass: next iteration (woken) */
        dirty_unlink(conn);
        conn->flushed_pass = pass;
        gconn_flush(conn);
    }
}

void gflush_init(struct gflush *flush, struct mesh_loop *loop)
{
    memset(flush, 0, sizeof(*flush));
    flush->loop = loop;
}

int gflush_start(struct gflush *flush)
{
    int64_t id = mesh_loop_on_before_sleep(flush->loop, flush_hook, flush);
    if (id < 0)
        return (int)id;
    flush->hook_id = id;
    return 0;
}

void gflush_stop(struct gflush *flush)
{
    if (flush->hook_id > 0)
        mesh_loop_del_before_sleep(flush->loop, flush->hook_id);
    flush->hook_id = 0;
}

/* --- connections -------------------------------------------------------------------------- */

struct gconn *gconn_new(struct mesh_loop *loop, int fd, int is_server, const struct gconn_ops *ops,
                        void *owner, struct gflush *flush)
{
    struct gconn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return NULL;
    conn->loop = loop;
    conn->fd = fd;
    conn->is_server = is_server;
    conn->ops = ops;
    conn->owner = owner;
    conn->flush = flush;
    mesh_buf_init(&conn->wbuf, WBUF_CAP);
    return conn;
}

void gconn_fail(struct gconn *conn, const char *fmt, ...)
{
    if (conn->failed)
        return; /* the first reason is the one worth telling */
    conn->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(conn->why, sizeof(conn->why), fmt, ap);
    va_end(ap);
}

void gconn_enter(struct gconn *conn)
{
    conn->busy++;
}

static void reap(struct gconn *conn)
{
    conn->reap_pending = 0;
    struct mesh_grpc_call *call = conn->calls, *next;
    for (; call != NULL; call = next) {
        next = call->next;
        if (call->handler_done && call->stream_done)
            gcall_free(call);
    }
}

int gconn_leave(struct gconn *conn)
{
    if (--conn->busy > 0)
        return 0;
    if (conn->failed) {
        gconn_destroy(conn, conn->why);
        return -1;
    }
    if (conn->reap_pending)
        reap(conn);
    return 0;
}

void gconn_destroy(struct gconn *conn, const char *why)
{
    char reason[sizeof(conn->why)];
    snprintf(reason, sizeof(reason), "%s", why != NULL && why[0] != '\0' ? why : "closed");
    conn->failed = 1;
    conn->busy++; /* nothing is freed under the callbacks below */
    dirty_unlink(conn);
    if (conn->timer > 0)
        mesh_loop_del_timer(conn->loop, conn->timer);
    conn->timer = 0;
    if (conn->idle_timer > 0)
        mesh_loop_del_timer(conn->loop, conn->idle_timer);
    conn->idle_timer = 0;
    if (conn->fd >= 0) {
        mesh_loop_del_fd(conn->loop, conn->fd);
        close(conn->fd);
        conn->fd = -1;
    }
    /* every call a holder still has gets its last callback; the stream is gone */
    conn->ops->on_teardown(conn, reason);
    while (conn->calls != NULL) {
        conn->calls->stream_done = 1;
        conn->calls->handler_done = 1;
        gcall_free(conn->calls);
    }
    nghttp2_session_del(conn->session);
    SSL_free(conn->ssl);
    mesh_buf_free(&conn->wbuf);
    void *owner = conn->owner;
    const struct gconn_ops *ops = conn->ops;
    free(conn);
    if (ops->after_free != NULL)
        ops->after_free(owner, reason);
}

void gconn_set_mask(struct gconn *conn, unsigned mask)
{
    if (conn->fd >= 0 && conn->fd_mask != mask && mesh_loop_mod_fd(conn->loop, conn->fd, mask) == 0)
        conn->fd_mask = mask;
}

static int drain_timeout(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct gconn *conn = ctx;
    conn->timer = 0;
    gconn_destroy(conn, "HTTP/1.x peer did not close");
    return MESH_TIMER_DONE;
}

/* h2c with prior knowledge only: anything but the HTTP/2 preface (an HTTP/1.1
 * request, h2c Upgrade included) gets a 505 and the connection closes once
 * the peer has read it. */
static ssize_t conn_send(struct gconn *conn, const void *buf, size_t len);

static void reply_http1(struct gconn *conn)
{
    static const char body[] = "this is a gRPC server: HTTP/2 (h2c, prior knowledge) only\n";
    char rsp[256];
    int n = snprintf(rsp, sizeof(rsp),
                     "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
    /* a fresh socket's buffer takes this whole; a peer that does not read gets less */
    if (conn_send(conn, rsp, (size_t)n) < 0) {
        gconn_fail(conn, "write: %s", strerror(errno));
        return;
    }
    shutdown(conn->fd, SHUT_WR);
    conn->draining = 1;
    dirty_unlink(conn);
    gconn_set_mask(conn, MESH_READ);
    int64_t id = mesh_loop_add_timer(conn->loop, DRAIN_MS, drain_timeout, conn);
    if (id < 0)
        gconn_fail(conn, "out of memory");
    else
        conn->timer = id;
}

/* read(2)/send(2), or their TLS equivalents: > 0 bytes, 0 at EOF, -1 with
 * errno (EAGAIN when TLS wants the socket either way first). */
static ssize_t conn_recv(struct gconn *conn, void *buf, size_t len)
{
    if (conn->ssl == NULL)
        return read(conn->fd, buf, len);
    ERR_clear_error();
    int n = SSL_read(conn->ssl, buf, (int)(len > INT_MAX ? INT_MAX : len));
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

static ssize_t conn_send(struct gconn *conn, const void *buf, size_t len)
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

/* Drives the TLS handshake; once done, HTTP/2 starts (the client's preface
 * goes out from the flush). ALPN must have agreed on "h2". */
static void conn_handshake(struct gconn *conn)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(conn->ssl);
    if (rc == 1) {
        const unsigned char *proto = NULL;
        unsigned plen = 0;
        SSL_get0_alpn_selected(conn->ssl, &proto, &plen);
        if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
            gconn_fail(conn, "TLS: the peer did not agree to ALPN h2");
            return;
        }
        conn->handshaking = 0;
        if (conn->timer > 0) { /* client: the connect timeout; server: the handshake's */
            mesh_loop_del_timer(conn->loop, conn->timer);
            conn->timer = 0;
        }
        gconn_set_mask(conn, MESH_READ);
        gconn_mark_dirty(conn);
        return;
    }
    switch (SSL_get_error(conn->ssl, rc)) {
    case SSL_ERROR_WANT_READ: gconn_set_mask(conn, MESH_READ); return;
    case SSL_ERROR_WANT_WRITE: gconn_set_mask(conn, MESH_READ | MESH_WRITE); return;
    default: {
        unsigned long e = ERR_peek_last_error();
        char msg[120];
        ERR_error_string_n(e, msg, sizeof(msg));
        gconn_fail(conn, "TLS handshake: %s", e != 0 ? msg : "connection closed");
    }
    }
}

static void conn_read(struct gconn *conn)
{
    uint8_t buf[READ_CHUNK];
    /* TLS may hold decrypted bytes the socket no longer signals: never stop
     * while it does (what is still in the socket wakes us again) */
    for (int round = 0;
         (round < READS_PER_WAKEUP || (conn->ssl != NULL && SSL_pending(conn->ssl) > 0)) &&
         !conn->failed;
         round++) {
        ssize_t n = conn_recv(conn, buf, sizeof(buf));
        if (n == 0) {
            gconn_fail(conn, "connection closed by peer");
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                gconn_fail(conn, "read: %s", strerror(errno));
            return;
        }
        if (conn->draining)
            continue;
        if (conn->is_server && conn->magic_seen < NGHTTP2_CLIENT_MAGIC_LEN) {
            size_t cmp = NGHTTP2_CLIENT_MAGIC_LEN - conn->magic_seen;
            if (cmp > (size_t)n)
                cmp = (size_t)n;
            if (memcmp(buf, &NGHTTP2_CLIENT_MAGIC[conn->magic_seen], cmp) != 0) {
                reply_http1(conn);
                return;
            }
            conn->magic_seen += cmp;
        }
        ssize_t used = nghttp2_session_mem_recv(conn->session, buf, (size_t)n);
        if (used < 0) {
            gconn_fail(conn, "HTTP/2: %s", nghttp2_strerror((int)used));
            return;
        }
        gconn_mark_dirty(conn);
        if ((size_t)n < sizeof(buf) && conn->ssl == NULL)
            return;
    }
}

/* Delivers what resumed calls had buffered, then on_writable to calls that asked. */
static void run_pending(struct gconn *conn)
{
    if (conn->resume_pending) {
        conn->resume_pending = 0;
        for (struct mesh_grpc_call *call = conn->calls; call != NULL; call = call->next) {
            if (call->resume_pending) {
                call->resume_pending = 0;
                conn->ops->resume(call);
            }
        }
    }
    if (conn->writable_pending) {
        conn->writable_pending = 0;
        for (struct mesh_grpc_call *call = conn->calls; call != NULL; call = call->next) {
            if (call->writable_pending) {
                call->writable_pending = 0;
                conn->ops->writable(call);
            }
        }
    }
}

static void flush_inner(struct gconn *conn)
{
    int blocked = 0;
    /* a server says nothing before the client's preface: an HTTP/1.x client
     * gets a readable 505, not our SETTINGS first */
    if (conn->connecting || conn->handshaking || conn->draining || conn->failed ||
        (conn->is_server && conn->magic_seen < NGHTTP2_CLIENT_MAGIC_LEN))
        return;
    run_pending(conn);
    for (int round = 0; !conn->failed; round++) {
        while (conn->wbuf.len - conn->woff < WBUF_GATHER) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(conn->session, &data);
            if (n < 0) {
                gconn_fail(conn, "HTTP/2: %s", nghttp2_strerror((int)n));
                return;
            }
            if (n == 0)
                break;
            if (mesh_buf_append(&conn->wbuf, data, (size_t)n) != 0) {
                gconn_fail(conn, "out of memory");
                return;
            }
        }
        size_t pending = conn->wbuf.len - conn->woff;
        if (pending == 0) {
            /* on_writable may have queued more: go round again, a few times */
            if (!conn->writable_pending || round > 4)
                break;
            run_pending(conn);
            continue;
        }
        ssize_t w = conn_send(conn, conn->wbuf.data + conn->woff, pending);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                blocked = 1;
                break;
            }
            gconn_fail(conn, "write: %s", strerror(errno));
            return;
        }
        conn->woff += (size_t)w;
        if (conn->woff == conn->wbuf.len) {
            conn->woff = 0;
            if (conn->wbuf.alloc > KEEP_ALLOC)
                mesh_buf_free(&conn->wbuf);
            else
                mesh_buf_reset(&conn->wbuf);
        } else if ((size_t)w < pending) {
            blocked = 1;
            break;
        }
    }
    if (conn->writable_pending)
        gconn_mark_dirty(conn);
    gconn_set_mask(conn, MESH_READ | (blocked ? MESH_WRITE : 0u));
    if (!blocked && conn->wbuf.len == conn->woff && !nghttp2_session_want_read(conn->session) &&
        !nghttp2_session_want_write(conn->session))
        gconn_fail(conn, "HTTP/2 session ended");
}

int gconn_flush(struct gconn *conn)
{
    gconn_enter(conn);
    flush_inner(conn);
    return gconn_leave(conn);
}

void gconn_on_fd(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct gconn *conn = ctx;
    gconn_enter(conn);
    if (conn->connecting) {
        if (events & (MESH_WRITE | MESH_READ))
            conn->ops->connected(conn);
        if (!conn->connecting && conn->handshaking && !conn->failed)
            conn_handshake(conn);
    } else if (conn->handshaking) {
        conn_handshake(conn);
        if (!conn->handshaking && !conn->failed) {
            conn_read(conn); /* what came with the last handshake record */
            if (!conn->failed)
                flush_inner(conn);
        }
    } else {
        if (events & MESH_READ)
            conn_read(conn);
        if ((events & MESH_WRITE) && !conn->failed)
            flush_inner(conn);
    }
    gconn_leave(conn);
}

/* --- calls -------------------------------------------------------------------------------- */

void gcall_link(struct gconn *conn, struct mesh_grpc_call *call)
{
    call->conn = conn;
    call->loop = conn->loop;
    call->prev = NULL;
    call->next = conn->calls;
    if (conn->calls != NULL)
        conn->calls->prev = call;
    conn->calls = call;
}

void gcall_free(struct mesh_grpc_call *call)
{
    struct gconn *conn = call->conn;
    if (conn != NULL) {
        if (call->prev != NULL)
            call->prev->next = call->next;
        else
            conn->calls = call->next;
        if (call->next != NULL)
            call->next->prev = call->prev;
        if (!call->stream_done && conn->session != NULL)
            nghttp2_session_set_stream_user_data(conn->session, call->stream_id, NULL);
    }
    if (call->deadline_timer > 0)
        mesh_loop_del_timer(call->loop, call->deadline_timer);
    if (call->on_free != NULL)
        call->on_free(call);
    mesh_buf_free(&call->out);
    mesh_buf_free(&call->in);
    mesh_buf_free(&call->hdrs);
    mesh_buf_free(&call->status_msg);
    free(call->method_name);
    free(call);
}

void gcall_release(struct mesh_grpc_call *call)
{
    if (!call->handler_done || !call->stream_done)
        return;
    if (call->conn != NULL && call->conn->busy > 0) {
        call->conn->reap_pending = 1;
        return;
    }
    gcall_free(call);
}

void gcall_stop_deadline(struct mesh_grpc_call *call)
{
    if (call->deadline_timer > 0)
        mesh_loop_del_timer(call->loop, call->deadline_timer);
    call->deadline_timer = 0;
}

int gcall_accepting(const struct mesh_grpc_call *call)
{
    if (call->handler_done || call->cancelled)
        return 0;
    return !call->is_server || !call->send_closed;
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    struct mesh_grpc_call *call = source->ptr;
    size_t queued = call->out.len - call->out_off;
    size_t n = queued < length ? queued : length;
    if (n > 0) {
        memcpy(buf, call->out.data + call->out_off, n);
        call->out_off += n;
        queued -= n;
        if (queued == 0) {
            call->out_off = 0;
            if (call->out.alloc > KEEP_ALLOC)
                mesh_buf_free(&call->out);
            else
                mesh_buf_reset(&call->out);
        }
        if (call->want_writable && queued <= call->send_cap / 2) {
            call->want_writable = 0;
            call->writable_pending = 1;
            call->conn->writable_pending = 1; /* told after mem_send, never inside it */
        }
    }
    if (queued == 0 && call->send_closed) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (call->is_server) {
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (gserver_submit_trailers(call) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        call->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

nghttp2_data_provider gcall_data_provider(struct mesh_grpc_call *call)
{
    nghttp2_data_provider prd;
    prd.source.ptr = call;
    prd.read_callback = data_read_cb;
    return prd;
}

void gcall_kick(struct mesh_grpc_call *call)
{
    struct gconn *conn = call->conn;
    if (conn == NULL || conn->failed)
        return;
    if (call->deferred && !call->stream_done) {
        nghttp2_session_resume_data(conn->session, call->stream_id);
        call->deferred = 0;
    }
    gconn_mark_dirty(conn);
}

static void call_abort(struct mesh_grpc_call *call, int status, const char *msg)
{
    if (call->is_server)
        gserver_abort(call, status, msg);
    else
        gclient_end_local(call, status, msg);
}

/* Parses one message at |p| (|avail| bytes). Returns its total size (prefix
 * included) once delivered, 0 when incomplete, -1 when the call was ended. */
static ssize_t deliver_one(struct mesh_grpc_call *call, const uint8_t *p, size_t avail)
{
    if (avail < 5)
        return 0;
    uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (p[0] & 1) {
        call_abort(call, call->is_server ? MESH_GRPC_UNIMPLEMENTED : MESH_GRPC_INTERNAL,
                   "compression not supported");
        return -1;
    }
    if (len > call->max_msg) {
        char msg[128];
        snprintf(msg, sizeof(msg), "message of %u bytes is larger than the limit of %zu bytes", len,
                 call->max_msg);
        call_abort(call, MESH_GRPC_RESOURCE_EXHAUSTED, msg);
        return -1;
    }
    if (avail - 5 < len)
        return 0;
    call->nrecv++;
    if (call->is_server)
        gserver_message(call, p + 5, len);
    else
        gclient_message(call, p + 5, len);
    return (ssize_t)len + 5;
}

static void gcall_deliver(struct mesh_grpc_call *call)
{
    /* in.data is NULL while nothing is buffered: no pointer made from it then */
    while (!call->paused && gcall_accepting(call) && call->in.len > call->in_off) {
        ssize_t used = deliver_one(call, (const uint8_t *)call->in.data + call->in_off,
                                   call->in.len - call->in_off);
        if (used <= 0)
            break;
        call->in_off += (size_t)used;
    }
    if (call->in_off == call->in.len) {
        call->in_off = 0;
        if (call->in.alloc > KEEP_ALLOC)
            mesh_buf_free(&call->in);
        else
            mesh_buf_reset(&call->in);
    } else if (call->in_off > 0 && call->in_off >= call->in.len / 2) {
        mesh_buf_consume(&call->in, call->in_off);
        call->in_off = 0;
    }
}

static void call_recv(struct mesh_grpc_call *call, const uint8_t *data, size_t len)
{
    if (!gcall_accepting(call))
        return; /* the call has ended: what the peer still sends is dropped */
    /* fast path: whole messages straight from nghttp2's buffer */
    while (!call->paused && call->in.len == call->in_off && gcall_accepting(call)) {
        ssize_t used = deliver_one(call, data, len);
        if (used <= 0)
            break;
        data += used;
        len -= (size_t)used;
    }
    if (len == 0 || !gcall_accepting(call))
        return;
    if (mesh_buf_append(&call->in, data, len) != 0) {
        call_abort(call, MESH_GRPC_RESOURCE_EXHAUSTED, "too much unread data buffered");
        return;
    }
    gcall_deliver(call);
}

int gconn_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                        const uint8_t *data, size_t len, void *user_data)
{
    nghttp2_session_consume_connection(session, len);
    struct mesh_grpc_call *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call != NULL)
        call_recv(call, data, len);
    /* while paused the stream's window stays closed: the peer stops once it is used */
    if (call != NULL && call->paused && gcall_accepting(call))
        call->unconsumed += len;
    else
        nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
}

/* After a resume: deliver what is buffered and reopen the stream's window. */
void gcall_resume(struct mesh_grpc_call *call)
{
    gcall_deliver(call);
    if (!call->paused && call->unconsumed > 0) {
        if (!call->stream_done && call->conn != NULL)
            nghttp2_session_consume_stream(call->conn->session, call->stream_id, call->unconsumed);
        call->unconsumed = 0;
    }
}

/* --- the call API ------------------------------------------------------------------------- */

int mesh_grpc_call_send(struct mesh_grpc_call *call, const void *msg, size_t len)
{
    struct gconn *conn = call->conn;
    if (call->handler_done || call->cancelled || call->send_closed || call->stream_done ||
        conn == NULL || conn->failed || len > UINT32_MAX)
        return MESH_EINVAL;
    if (call->is_server && call->nsent > 0 &&
        (call->method->kind == MESH_GRPC_UNARY || call->method->kind == MESH_GRPC_CLIENT_STREAM))
        return MESH_EINVAL;
    size_t queued = call->out.len - call->out_off;
    if (queued > 0 && (queued + 5 + len > call->send_cap || queued + 5 + len < queued)) {
        call->want_writable = 1;
        return MESH_ETOOBIG;
    }
    if (call->out_off > 0 && call->out_off >= call->out.len / 2) {
        mesh_buf_consume(&call->out, call->out_off);
        call->out_off = 0;
    }
    uint8_t prefix[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                         (uint8_t)len};
    size_t before = call->out.len;
    if (mesh_buf_append(&call->out, prefix, 5) != 0 ||
        (len > 0 && mesh_buf_append(&call->out, msg, len) != 0)) {
        call->out.len = before;
        return MESH_ENOMEM;
    }
    call->nsent++;
    if (call->is_server && !call->headers_sent) {
        int rv = gserver_submit_headers(call);
        if (rv != 0)
            return rv;
    }
    gcall_kick(call);
    return 0;
}

size_t mesh_grpc_call_queued(const struct mesh_grpc_call *call)
{
    return call->out.len - call->out_off;
}

int mesh_grpc_call_close_send(struct mesh_grpc_call *call)
{
    if (call->is_server || call->handler_done || call->cancelled || call->send_closed)
        return MESH_EINVAL;
    call->send_closed = 1;
    gcall_kick(call);
    return 0;
}

void mesh_grpc_call_cancel(struct mesh_grpc_call *call)
{
    if (call->handler_done || call->cancelled)
        return;
    call->handler_done = 1;
    call->send_closed = 1;
    gcall_stop_deadline(call);
    struct gconn *conn = call->conn;
    if (conn != NULL && !conn->failed && !call->stream_done) {
        nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_CANCEL);
        gconn_mark_dirty(conn);
    }
    gcall_release(call);
}

void mesh_grpc_call_pause_recv(struct mesh_grpc_call *call, int paused)
{
    if (paused) {
        call->paused = 1;
        return;
    }
    if (!call->paused)
        return;
    call->paused = 0;
    if (call->conn != NULL && !call->conn->failed) {
        call->resume_pending = 1;
        call->conn->resume_pending = 1;
        gconn_mark_dirty(call->conn);
    }
}

void mesh_grpc_call_set_ctx(struct mesh_grpc_call *call, void *ctx)
{
    call->ctx = ctx;
}

void *mesh_grpc_call_ctx(const struct mesh_grpc_call *call)
{
    return call->ctx;
}

const char *mesh_grpc_call_header(const struct mesh_grpc_call *call, const char *name)
{
    if (call->hdrs.data == NULL)
        return NULL;
    const char *p = call->hdrs.data, *end = p + call->hdrs.len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

const char *mesh_grpc_call_method(const struct mesh_grpc_call *call)
{
    if (call->method != NULL)
        return call->method->name;
    if (call->method_name != NULL)
        return call->method_name;
    const char *path = mesh_grpc_call_header(call, ":path");
    return path != NULL ? path : "";
}

const char *mesh_grpc_call_peer(const struct mesh_grpc_call *call)
{
    return call->peer;
}

uint64_t mesh_grpc_call_deadline_us(const struct mesh_grpc_call *call)
{
    return call->deadline_us;
}
