/* lib/grpc_server.c — the gRPC server (mesh/grpc.h): listener, nghttp2 server
 * sessions, request validation, method dispatch, final status. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "grpc_impl.h"
#include "mesh/err.h"

#define ACCEPTS_PER_WAKEUP 64
#define ACCEPT_PAUSE_MS    100 /* out of fds: stop accepting for a while */
#define CONN_WINDOW        (16u << 20)
#define STATUS_MSG_CAP     4096

struct mesh_grpc_server {
    struct mesh_loop *loop;
    int lfd;
    int port;
    struct mesh_grpc_method *methods;
    size_t nmethods;
    struct mesh_grpc_server_opts opts; /* defaults filled in */
    SSL_CTX *tls;                      /* NULL: h2c */
    struct gconn *conns;
    unsigned nconns, ncalls;
    struct gflush flush;
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *option;
    int64_t accept_timer;
};

#define NV(name, value, vlen)                                                                      \
    {                                                                                              \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (vlen), NGHTTP2_NV_FLAG_NONE      \
    }

/* --- responses ---------------------------------------------------------------------------- */

int gserver_submit_headers(struct mesh_grpc_call *call)
{
    nghttp2_nv nva[] = {
        NV(":status", "200", 3),
        NV("content-type", "application/grpc", 16),
        NV("grpc-accept-encoding", "identity", 8),
    };
    nghttp2_data_provider prd = gcall_data_provider(call);
    int rv = nghttp2_submit_response(call->conn->session, call->stream_id, nva, 3, &prd);
    if (rv != 0)
        return MESH_ENOMEM;
    call->headers_sent = 1;
    return 0;
}

/* Called from the data source once the queue is empty after finish. */
int gserver_submit_trailers(struct mesh_grpc_call *call)
{
    char code[16];
    int n = snprintf(code, sizeof(code), "%d", call->status);
    nghttp2_nv nva[] = {
        NV("grpc-status", code, (size_t)n),
        NV("grpc-message", call->status_msg.data ? call->status_msg.data : "",
           call->status_msg.len),
    };
    return nghttp2_submit_trailer(call->conn->session, call->stream_id, nva,
                                  call->status_msg.len > 0 ? 2 : 1) == 0
               ? 0
               : MESH_ENOMEM;
}

/* One HEADERS frame with END_STREAM: the whole answer. */
static void trailers_only(struct mesh_grpc_call *call, int http_status)
{
    char code[16], http[8];
    int n = snprintf(code, sizeof(code), "%d", call->status);
    snprintf(http, sizeof(http), "%d", http_status);
    nghttp2_nv nva[] = {
        NV(":status", http, 3),
        NV("content-type", "application/grpc", 16),
        NV("grpc-accept-encoding", "identity", 8), /* after UNIMPLEMENTED for compression */
        NV("grpc-status", code, (size_t)n),
        NV("grpc-message", call->status_msg.data ? call->status_msg.data : "",
           call->status_msg.len),
    };
    call->headers_sent = 1;
    if (nghttp2_submit_response(call->conn->session, call->stream_id, nva,
                                call->status_msg.len > 0 ? 5 : 4, NULL) != 0)
        nghttp2_submit_rst_stream(call->conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
}

/* Queues the final status: trailers after the queued messages, or trailers-only. */
static void submit_final(struct mesh_grpc_call *call, int http_status, int status, const char *msg)
{
    call->send_closed = 1;
    call->status = status;
    mesh_buf_reset(&call->status_msg);
    if (msg != NULL)
        mesh_grpc_message_encode(&call->status_msg, msg); /* too long: cut at the cap */
    struct gconn *conn = call->conn;
    if (conn == NULL || conn->failed || call->stream_done)
        return;
    if (!call->headers_sent)
        trailers_only(call, http_status);
    else
        gcall_kick(call);
    gconn_mark_dirty(conn);
}

void gserver_abort(struct mesh_grpc_call *call, int status, const char *msg)
{
    if (call->send_closed)
        return;
    gcall_stop_deadline(call);
    submit_final(call, 200, status, msg);
    if (!call->handler_done && !call->cancelled) {
        call->cancelled = 1;
        if (call->method->handler->on_cancel != NULL)
            call->method->handler->on_cancel(call, call->ctx);
        call->handler_done = 1;
    }
    gcall_release(call);
}

int mesh_grpc_call_finish(struct mesh_grpc_call *call, int status, const char *message)
{
    if (!call->is_server || call->handler_done || call->cancelled)
        return MESH_EINVAL;
    call->handler_done = 1;
    gcall_stop_deadline(call);
    if (!call->send_closed)
        submit_final(call, 200, status, message);
    gcall_release(call);
    return 0;
}

/* --- what the peer sends ------------------------------------------------------------------ */

static int unary_request(const struct mesh_grpc_call *call)
{
    return call->method->kind == MESH_GRPC_UNARY || call->method->kind == MESH_GRPC_SERVER_STREAM;
}

void gserver_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len)
{
    if (unary_request(call) && call->nrecv > 1) {
        gserver_abort(call, MESH_GRPC_INTERNAL, "more than one request message for a unary method");
        return;
    }
    call->method->handler->on_message(call, msg, len, call->ctx);
}

static void half_close(struct mesh_grpc_call *call)
{
    if (!gcall_accepting(call) || call->half_close_done || call->paused)
        return; /* paused: comes after the buffered messages, on resume */
    if (call->in.len > call->in_off) {
        gserver_abort(call, MESH_GRPC_INTERNAL, "the request ended inside a message");
        return;
    }
    if (unary_request(call) && call->nrecv == 0) {
        gserver_abort(call, MESH_GRPC_INTERNAL, "no request message for a unary method");
        return;
    }
    call->half_close_done = 1;
    if (call->method->handler->on_half_close != NULL)
        call->method->handler->on_half_close(call, call->ctx);
}

static void server_resume(struct mesh_grpc_call *call)
{
    gcall_resume(call);
    if (call->remote_closed)
        half_close(call);
}

static void server_writable(struct mesh_grpc_call *call)
{
    if (gcall_accepting(call) && call->method->handler->on_writable != NULL)
        call->method->handler->on_writable(call, call->ctx);
}

static int deadline_fired(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_grpc_call *call = ctx;
    struct gconn *conn = call->conn;
    call->deadline_timer = 0;
    gconn_enter(conn);
    gserver_abort(call, MESH_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    gconn_leave(conn);
    return MESH_TIMER_DONE;
}

static const struct mesh_grpc_method *find_method(const struct mesh_grpc_server *server,
                                                  const char *path)
{
    for (size_t i = 0; path != NULL && i < server->nmethods; i++)
        if (strcmp(server->methods[i].name, path) == 0)
            return &server->methods[i];
    return NULL;
}

/* "application/grpc", "application/grpc+proto", "application/grpc;charset=…" */
static int grpc_content_type(const char *ct)
{
    return ct != NULL && strncmp(ct, "application/grpc", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == '+' || ct[16] == ';');
}

/* The request's headers are complete: check them and hand the call over. */
static void start_call(struct mesh_grpc_server *server, struct mesh_grpc_call *call)
{
    char msg[256];
    const char *method = mesh_grpc_call_header(call, ":method");
    const char *path = mesh_grpc_call_header(call, ":path");
    if (call->hdrs_overflow) {
        snprintf(msg, sizeof(msg), "request headers larger than %u bytes",
                 server->opts.max_header_list);
        submit_final(call, 431, MESH_GRPC_RESOURCE_EXHAUSTED, msg);
        return;
    }
    if (method == NULL || strcmp(method, "POST") != 0) {
        submit_final(call, 405, MESH_GRPC_UNIMPLEMENTED, "gRPC requests are POST");
        return;
    }
    /* HTTP 415 as the gRPC spec asks, so a plain HTTP client does not take a 200 */
    if (!grpc_content_type(mesh_grpc_call_header(call, "content-type"))) {
        submit_final(call, 415, MESH_GRPC_INTERNAL, "content-type must be application/grpc");
        return;
    }
    const struct mesh_grpc_method *m = find_method(server, path);
    if (m == NULL) {
        snprintf(msg, sizeof(msg), "unknown method %s", path != NULL ? path : "(none)");
        submit_final(call, 200, MESH_GRPC_UNIMPLEMENTED, msg);
        return;
    }
    call->method = m;
    call->ctx = m->ctx;
    const char *timeout = mesh_grpc_call_header(call, "grpc-timeout");
    uint64_t us;
    if (timeout != NULL && mesh_grpc_timeout_parse(timeout, strlen(timeout), &us) == 0) {
        call->deadline_us = mesh_loop_now_us() + us;
        int64_t id = mesh_loop_add_timer(call->loop, (us + 999) / 1000, deadline_fired, call);
        if (id < 0) {
            submit_final(call, 200, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        call->deadline_timer = id;
    }
    if (server->opts.authorize != NULL) {
        const char *why = NULL;
        int status = server->opts.authorize(call, &why, server->opts.authorize_ctx);
        if (status != MESH_GRPC_OK) {
            gcall_stop_deadline(call);
            submit_final(call, 200, status, why);
            return;
        }
    }
    call->handler_done = 0; /* the handler holds it from here */
    if (m->handler->on_start != NULL)
        m->handler->on_start(call, call->ctx);
}

/* ALPN: h2 or nothing (a gRPC server speaks no HTTP/1.1) */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (in[i] == 2 && i + 3 <= inlen && memcmp(&in[i + 1], "h2", 2) == 0) {
            *out = &in[i + 1];
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *errbuf, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *what = "cannot create a TLS context";
    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    what = cert;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        goto fail;
    what = key;
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
fail: {
    char msg[160];
    ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
    snprintf(errbuf, errlen, "TLS: %s: %s", what, msg);
    SSL_CTX_free(ctx);
    return NULL;
}
}

int mesh_grpc_bearer_authorize(struct mesh_grpc_call *call, const char **message, void *ctx)
{
    const char *want = ctx;
    const char *got = mesh_grpc_call_header(call, "authorization");
    static const char bearer[] = "Bearer ";
    if (got == NULL || strncmp(got, bearer, sizeof(bearer) - 1) != 0) {
        *message = "missing authorization: Bearer token";
        return MESH_GRPC_UNAUTHENTICATED;
    }
    got += sizeof(bearer) - 1;
    /* constant time in the token's content: every byte of |want| is looked
     * at whatever |got| holds, and no branch depends on where they differ */
    size_t glen = strlen(got), wlen = strlen(want);
    unsigned char diff = glen != wlen;
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < glen ? got[i] : 0);
    if (diff != 0) {
        *message = "wrong bearer token";
        return MESH_GRPC_UNAUTHENTICATED;
    }
    return MESH_GRPC_OK;
}

static void server_call_freed(struct mesh_grpc_call *call)
{
    call->server->ncalls--;
    if (call->conn != NULL && call->conn->calls == NULL)
        call->conn->idle_since_us = mesh_loop_now_us();
}

/* idle_ms / first_call_ms (struct mesh_grpc_server_opts): re-armed for the
 * time left, and every idle_ms while calls are open. */
static int idle_timeout(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct gconn *conn = ctx;
    struct mesh_grpc_server *server = conn->owner;
    if (conn->failed) {
        conn->idle_timer = 0;
        return MESH_TIMER_DONE;
    }
    if (conn->calls != NULL)
        return (int)server->opts.idle_ms;
    uint64_t limit = conn->ever_called ? server->opts.idle_ms : server->opts.first_call_ms;
    uint64_t due = conn->idle_since_us + limit * 1000, now = mesh_loop_now_us();
    if (now < due)
        return (int)((due - now) / 1000 + 1);
    conn->idle_timer = 0;
    if (!conn->ever_called) {
        gconn_destroy(conn, "no call begun within the first-call timeout");
        return MESH_TIMER_DONE;
    }
    /* GOAWAY first: a client that sends its next call now learns the
     * connection is going and retries on a new one; the session then ends
     * once the frame is out, which closes the connection */
    snprintf(conn->why, sizeof(conn->why), "idle: no call open for the idle timeout");
    if (nghttp2_session_terminate_session(conn->session, NGHTTP2_NO_ERROR) != 0)
        gconn_destroy(conn, conn->why);
    else
        gconn_flush(conn);
    return MESH_TIMER_DONE;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct gconn *conn = user_data;
    struct mesh_grpc_server *server = conn->owner;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct mesh_grpc_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    call->is_server = 1;
    call->server = server;
    call->stream_id = frame->hd.stream_id;
    call->handler_done = 1; /* library's until start_call() hands it over */
    call->max_msg = server->opts.max_recv_message;
    call->send_cap = server->opts.send_queue;
    mesh_buf_init(&call->hdrs, server->opts.max_header_list);
    mesh_buf_init(&call->status_msg, STATUS_MSG_CAP);
    /* one partial message, plus a window's worth while paused */
    mesh_buf_init(&call->in, server->opts.max_recv_message + 5 + server->opts.stream_window);
    mesh_buf_init(&call->out, SIZE_MAX / 2);
    snprintf(call->peer, sizeof(call->peer), "%s", conn->peer);
    call->on_free = server_call_freed;
    conn->ever_called = 1;
    gcall_link(conn, call);
    server->ncalls++;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* request trailers carry nothing gRPC needs */
    struct mesh_grpc_call *call =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL || call->hdrs_overflow)
        return 0;
    size_t before = call->hdrs.len;
    if (mesh_buf_append(&call->hdrs, name, namelen) != 0 ||
        mesh_buf_append(&call->hdrs, "", 1) != 0 ||
        mesh_buf_append(&call->hdrs, value, valuelen) != 0 ||
        mesh_buf_append(&call->hdrs, "", 1) != 0) {
        call->hdrs.len = before;
        call->hdrs_overflow = 1;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct gconn *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct mesh_grpc_call *call =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        start_call(conn->owner, call);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        call->remote_closed = 1;
        half_close(call);
    }
    return 0;
}

/* A response that ended while the client is still sending: tell it to stop. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct mesh_grpc_call *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL)
        return 0;
    call->stream_done = 1;
    gcall_stop_deadline(call);
    if (!call->handler_done && !call->cancelled) {
        call->cancelled = 1;
        if (call->method->handler->on_cancel != NULL)
            call->method->handler->on_cancel(call, call->ctx);
        call->handler_done = 1;
    }
    gcall_release(call);
    return 0;
}

/* --- connections -------------------------------------------------------------------------- */

static void server_teardown(struct gconn *conn, const char *why)
{
    struct mesh_grpc_server *server = conn->owner;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        server->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    server->nconns--;
    for (struct mesh_grpc_call *call = conn->calls; call != NULL; call = call->next) {
        gcall_stop_deadline(call);
        if (!call->handler_done && !call->cancelled) {
            call->cancelled = 1;
            if (call->method->handler->on_cancel != NULL)
                call->method->handler->on_cancel(call, call->ctx);
            call->handler_done = 1;
        }
    }
}

static const struct gconn_ops server_ops = {
    .on_teardown = server_teardown,
    .resume = server_resume,
    .writable = server_writable,
};

#define TLS_HANDSHAKE_MS 10000 /* a client that starts TLS and stalls is dropped */

static int handshake_timeout(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct gconn *conn = ctx;
    conn->timer = 0;
    if (conn->handshaking)
        gconn_destroy(conn, "TLS handshake not finished in time");
    return MESH_TIMER_DONE;
}

static int new_conn(struct mesh_grpc_server *server, int fd, const struct mesh_addr *peer)
{
    struct gconn *conn = gconn_new(server->loop, fd, 1, &server_ops, server, &server->flush);
    if (conn == NULL)
        return MESH_ENOMEM;
    if (server->tls != NULL) {
        if ((conn->ssl = SSL_new(server->tls)) == NULL || SSL_set_fd(conn->ssl, fd) != 1)
            goto fail;
        SSL_set_accept_state(conn->ssl);
        conn->handshaking = 1;
        if ((conn->timer = mesh_loop_add_timer(server->loop, TLS_HANDSHAKE_MS, handshake_timeout,
                                               conn)) < 0) {
            conn->timer = 0;
            goto fail;
        }
    }
    mesh_addr_format(peer, conn->peer, sizeof(conn->peer));
    if (nghttp2_session_server_new2(&conn->session, server->callbacks, conn, server->option) != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server->opts.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, server->opts.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, server->opts.max_header_list},
    };
    if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) !=
            0)
        goto fail;
    conn->idle_since_us = mesh_loop_now_us();
    if ((conn->idle_timer = mesh_loop_add_timer(server->loop, server->opts.first_call_ms,
                                                idle_timeout, conn)) < 0) {
        conn->idle_timer = 0;
        goto fail;
    }
    if (mesh_loop_add_fd(server->loop, fd, MESH_READ, gconn_on_fd, conn) != 0)
        goto fail;
    conn->fd_mask = MESH_READ;
    conn->next = server->conns;
    if (server->conns != NULL)
        server->conns->prev = conn;
    server->conns = conn;
    server->nconns++;
    /* our SETTINGS wait for the client's preface: an HTTP/1.x client gets a
     * readable 505, not binary frames first */
    return 0;
fail:
    if (conn->timer > 0)
        mesh_loop_del_timer(server->loop, conn->timer);
    if (conn->idle_timer > 0)
        mesh_loop_del_timer(server->loop, conn->idle_timer);
    nghttp2_session_del(conn->session);
    SSL_free(conn->ssl);
    mesh_buf_free(&conn->wbuf);
    free(conn);
    return MESH_ENOMEM;
}

int gserver_adopt(struct mesh_grpc_server *server, int fd)
{
    struct mesh_addr peer;
    peer.len = sizeof(peer.ss);
    if (getpeername(fd, (struct sockaddr *)&peer.ss, &peer.len) != 0)
        peer.ss.ss_family = AF_UNSPEC;
    return new_conn(server, fd, &peer);
}

static void on_accept(struct mesh_loop *loop, int fd, unsigned events, void *ctx);

static int accept_resume(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_grpc_server *server = ctx;
    server->accept_timer = 0;
    mesh_loop_mod_fd(loop, server->lfd, MESH_READ);
    return MESH_TIMER_DONE;
}

static void on_accept(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct mesh_grpc_server *server = ctx;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        struct mesh_addr peer;
        peer.len = sizeof(peer.ss);
        int cfd = accept4(fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && server->accept_timer == 0) {
                /* EMFILE and friends: the backlog waits rather than spinning */
                int64_t id = mesh_loop_add_timer(loop, ACCEPT_PAUSE_MS, accept_resume, server);
                if (id > 0) {
                    server->accept_timer = id;
                    mesh_loop_mod_fd(loop, fd, 0);
                }
            }
            return;
        }
        if (server->nconns >= server->opts.max_connections) {
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (new_conn(server, cfd, &peer) != 0)
            close(cfd);
    }
}

/* --- the server --------------------------------------------------------------------------- */

static void fill_defaults(struct mesh_grpc_server_opts *opts)
{
    if (opts->max_connections == 0)
        opts->max_connections = 1024;
    if (opts->max_concurrent_streams == 0)
        opts->max_concurrent_streams = 100;
    if (opts->max_header_list == 0)
        opts->max_header_list = 16384;
    if (opts->max_recv_message == 0)
        opts->max_recv_message = MESH_GRPC_DEFAULT_MAX_MESSAGE;
    if (opts->send_queue == 0)
        opts->send_queue = MESH_GRPC_DEFAULT_SEND_QUEUE;
    if (opts->stream_window == 0)
        opts->stream_window = 1u << 20;
    if (opts->stream_window > NGHTTP2_MAX_WINDOW_SIZE)
        opts->stream_window = NGHTTP2_MAX_WINDOW_SIZE;
    if (opts->idle_ms == 0)
        opts->idle_ms = 5 * 60 * 1000;
    if (opts->first_call_ms == 0)
        opts->first_call_ms = 10 * 1000;
    if (opts->first_call_ms > opts->idle_ms)
        opts->first_call_ms = opts->idle_ms;
}

struct mesh_grpc_server *mesh_grpc_server_new(struct mesh_loop *loop, const char *listen_addr,
                                              const struct mesh_grpc_method *methods,
                                              size_t nmethods,
                                              const struct mesh_grpc_server_opts *opts,
                                              char *errbuf, size_t errlen)
{
    struct mesh_addr addr;
    if (mesh_addr_parse(listen_addr, &addr, errbuf, errlen) != 0)
        return NULL;
    struct mesh_grpc_server *server = calloc(1, sizeof(*server));
    if (server == NULL)
        goto nomem;
    server->loop = loop;
    server->lfd = -1;
    if (opts != NULL)
        server->opts = *opts;
    fill_defaults(&server->opts);
    gflush_init(&server->flush, loop);
    server->methods = calloc(nmethods ? nmethods : 1, sizeof(*methods));
    if (server->methods == NULL)
        goto nomem;
    if (nmethods > 0)
        memcpy(server->methods, methods, nmethods * sizeof(*methods));
    server->nmethods = nmethods;
    if (server->opts.tls_cert != NULL && server->opts.tls_key != NULL &&
        (server->tls = tls_server_ctx(server->opts.tls_cert, server->opts.tls_key, errbuf,
                                      errlen)) == NULL) {
        mesh_grpc_server_free(server);
        return NULL;
    }
    server->opts.tls_cert = server->opts.tls_key = NULL; /* not kept */

    if (nghttp2_session_callbacks_new(&server->callbacks) != 0 ||
        nghttp2_option_new(&server->option) != 0)
        goto nomem;
    nghttp2_session_callbacks_set_on_begin_headers_callback(server->callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(server->callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(server->callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(server->callbacks, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(server->callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(server->callbacks,
                                                              gconn_on_data_chunk);
    nghttp2_option_set_no_auto_window_update(server->option, 1);

    server->lfd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (server->lfd < 0)
        goto sys_fail;
    int one = 1;
    setsockopt(server->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(server->lfd, (struct sockaddr *)&addr.ss, addr.len) != 0 ||
        listen(server->lfd, 511) != 0)
        goto sys_fail;
    struct mesh_addr bound;
    bound.len = sizeof(bound.ss);
    if (getsockname(server->lfd, (struct sockaddr *)&bound.ss, &bound.len) != 0)
        goto sys_fail;
    server->port =
        ntohs(bound.ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound.ss)->sin6_port
                                             : ((struct sockaddr_in *)&bound.ss)->sin_port);
    if (mesh_loop_add_fd(loop, server->lfd, MESH_READ, on_accept, server) != 0 ||
        gflush_start(&server->flush) != 0)
        goto nomem;
    return server;

sys_fail:
    snprintf(errbuf, errlen, "listen on %s: %s", listen_addr, strerror(errno));
    mesh_grpc_server_free(server);
    return NULL;
nomem:
    snprintf(errbuf, errlen, "listen on %s: out of memory", listen_addr);
    mesh_grpc_server_free(server);
    return NULL;
}

int mesh_grpc_server_port(const struct mesh_grpc_server *server)
{
    return server->port;
}

unsigned mesh_grpc_server_nconns(const struct mesh_grpc_server *server)
{
    return server->nconns;
}

unsigned mesh_grpc_server_ncalls(const struct mesh_grpc_server *server)
{
    return server->ncalls;
}

void mesh_grpc_server_free(struct mesh_grpc_server *server)
{
    if (server == NULL)
        return;
    if (server->lfd >= 0) {
        mesh_loop_del_fd(server->loop, server->lfd);
        close(server->lfd);
    }
    if (server->accept_timer > 0)
        mesh_loop_del_timer(server->loop, server->accept_timer);
    while (server->conns != NULL)
        gconn_destroy(server->conns, "server shutting down");
    SSL_CTX_free(server->tls);
    gflush_stop(&server->flush);
    nghttp2_session_callbacks_del(server->callbacks);
    nghttp2_option_del(server->option);
    free(server->methods);
    free(server);
}
