/* lib/grpc_client.c — the gRPC client (mesh/grpc.h): non-blocking connect, an
 * nghttp2 client session, calls and their final status, and the blocking
 * mesh_grpc_unary() for CLIs. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "grpc_impl.h"
#include "mesh/err.h"

#define CONN_WINDOW        (16u << 20)
#define STREAM_WINDOW      (1u << 20)
#define STATUS_MSG_CAP     4096
#define CONNECT_TIMEOUT_MS 10000

struct mesh_grpc_client {
    struct mesh_loop *loop;
    struct mesh_addr addr;
    char authority[64];
    struct mesh_grpc_client_opts opts;
    enum mesh_grpc_client_state state;
    struct gconn *conn;
    struct gflush flush;
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *option;
    int64_t fail_timer; /* reports a connect(2) that failed at once, from the loop */
    char fail_why[160];
    int freeing;
    char *authorization;
    char *call_authority; /* opts.authority, or NULL for |authority| */
    char host[48];        /* the address's IP, checked against the certificate */
    unsigned ncalls;
};

/* mesh_grpc_client_set_token(): "Bearer TOKEN", or NULL */
static char *default_authorization;
/* mesh_grpc_client_set_tls(): shared by every client; NULL for h2c */
static SSL_CTX *default_tls;

int mesh_grpc_client_set_tls(const char *ca_file, char *errbuf, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    if (ca_file != NULL) {
        static const unsigned char alpn[] = {2, 'h', '2'};
        if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
            SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1 ||
            SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0) {
            char msg[160];
            ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
            snprintf(errbuf, errlen, "TLS CA file %s: %s", ca_file, msg);
            SSL_CTX_free(ctx);
            return MESH_EIO;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    }
    SSL_CTX_free(default_tls);
    default_tls = ctx;
    return 0;
}

/* TLS on a new client connection: verify the peer against the address. */
static int client_tls(struct mesh_grpc_client *client, struct gconn *conn, int fd)
{
    if (default_tls == NULL)
        return 0;
    if ((conn->ssl = SSL_new(default_tls)) == NULL || SSL_set_fd(conn->ssl, fd) != 1)
        return MESH_ENOMEM;
    X509_VERIFY_PARAM *param = SSL_get0_param(conn->ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, client->host) != 1)
        X509_VERIFY_PARAM_set1_host(param, client->host, 0);
    SSL_set_connect_state(conn->ssl);
    conn->handshaking = 1;
    return 0;
}

int mesh_grpc_client_set_token(const char *token)
{
    char *value = NULL;
    if (token != NULL) {
        size_t n = strlen(token) + sizeof("Bearer ");
        if ((value = malloc(n)) == NULL)
            return MESH_ENOMEM;
        snprintf(value, n, "Bearer %s", token);
    }
    free(default_authorization);
    default_authorization = value;
    return 0;
}

int mesh_grpc_token_read(const char *path, char *token, size_t len, char *errbuf, size_t errlen)
{
    char buf[MESH_GRPC_TOKEN_MAX + 2];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errbuf, errlen, "token file %s: %s", path, strerror(errno));
        return MESH_EIO;
    }
    char *line = fgets(buf, sizeof(buf), f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(errbuf, errlen, "token file %s: cannot read it", path);
        return MESH_EIO;
    }
    size_t n = line != NULL ? strlen(line) : 0;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        n--;
    while (n > 0 && (*line == ' ' || *line == '\t'))
        line++, n--;
    int printable = 1;
    for (size_t i = 0; i < n; i++)
        printable &= line[i] > ' ' && line[i] < 0x7f;
    if (n < 16 || n > MESH_GRPC_TOKEN_MAX || !printable || n + 1 > len) {
        snprintf(errbuf, errlen, "token file %s: the first line must be a token of 16 to %d "
                 "printable characters without spaces", path, MESH_GRPC_TOKEN_MAX);
        memset(buf, 0, sizeof(buf));
        return MESH_EINVAL;
    }
    memcpy(token, line, n);
    token[n] = '\0';
    memset(buf, 0, sizeof(buf));
    return 0;
}

#define NV(name, value, vlen)                                                                      \
    {                                                                                              \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (vlen), NGHTTP2_NV_FLAG_NONE      \
    }

/* --- ending calls ------------------------------------------------------------------------- */

/* Gives the holder its last callback. */
static void deliver_close(struct mesh_grpc_call *call, int status, const char *msg)
{
    if (call->handler_done || call->cancelled)
        return;
    call->cancelled = 1;
    gcall_stop_deadline(call);
    if (call->cbs->on_close != NULL)
        call->cbs->on_close(call, status, msg != NULL ? msg : "", call->ctx);
    call->handler_done = 1;
    gcall_release(call);
}

void gclient_end_local(struct mesh_grpc_call *call, int status, const char *msg)
{
    if (call->handler_done || call->cancelled)
        return;
    struct gconn *conn = call->conn;
    call->send_closed = 1;
    if (conn != NULL && !conn->failed && !call->stream_done) {
        nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_CANCEL);
        gconn_mark_dirty(conn);
    }
    deliver_close(call, status, msg);
}

/* gRPC's HTTP-to-status mapping, for answers without grpc-status. */
static int http_to_grpc(int http)
{
    switch (http) {
    case 400:
        return MESH_GRPC_INTERNAL;
    case 401:
        return MESH_GRPC_UNAUTHENTICATED;
    case 403:
        return MESH_GRPC_PERMISSION_DENIED;
    case 404:
        return MESH_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return MESH_GRPC_UNAVAILABLE;
    default:
        return MESH_GRPC_UNKNOWN;
    }
}

/* The stream is closed: work out its status and tell the holder. */
static void finish_closed(struct mesh_grpc_call *call)
{
    char msg[160];
    call->close_pending = 0;
    if (call->got_status) {
        deliver_close(call, call->status, call->status_msg.data);
    } else if (call->rst_code == NGHTTP2_REFUSED_STREAM) {
        deliver_close(call, MESH_GRPC_UNAVAILABLE, "stream refused by the server");
    } else if (call->rst_code == NGHTTP2_CANCEL) {
        deliver_close(call, MESH_GRPC_CANCELLED, "stream cancelled by the server");
    } else if (call->rst_code != NGHTTP2_NO_ERROR) {
        snprintf(msg, sizeof(msg), "stream reset by the server: %s",
                 nghttp2_http2_strerror((uint32_t)call->rst_code));
        deliver_close(call, MESH_GRPC_INTERNAL, msg);
    } else if (call->http_status != 200 && call->http_status != 0) {
        snprintf(msg, sizeof(msg), "HTTP status %d", call->http_status);
        deliver_close(call, http_to_grpc(call->http_status), msg);
    } else {
        deliver_close(call, MESH_GRPC_INTERNAL, "the server ended the call without a grpc-status");
    }
}

void gclient_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len)
{
    if (call->cbs->on_message != NULL)
        call->cbs->on_message(call, msg, len, call->ctx);
}

static void client_resume(struct mesh_grpc_call *call)
{
    gcall_resume(call);
    if (call->close_pending && !call->paused)
        finish_closed(call); /* an incomplete message left over is dropped */
}

static void client_writable(struct mesh_grpc_call *call)
{
    if (gcall_accepting(call) && call->cbs->on_writable != NULL)
        call->cbs->on_writable(call, call->ctx);
}

static int deadline_fired(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_grpc_call *call = ctx;
    struct gconn *conn = call->conn;
    char msg[64];
    call->deadline_timer = 0;
    snprintf(msg, sizeof(msg), "deadline exceeded (client, %u ms)", call->timeout_ms);
    gconn_enter(conn);
    gclient_end_local(call, MESH_GRPC_DEADLINE_EXCEEDED, msg);
    gconn_leave(conn);
    return MESH_TIMER_DONE;
}

/* --- session callbacks -------------------------------------------------------------------- */

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct mesh_grpc_call *call =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        call->http_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            call->http_status = call->http_status * 10 + (value[i] - '0');
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int status = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++) {
            if (value[i] < '0' || value[i] > '9') {
                status = MESH_GRPC_UNKNOWN;
                break;
            }
            status = status * 10 + (value[i] - '0');
        }
        call->status = valuelen > 0 ? status : MESH_GRPC_UNKNOWN;
        call->got_status = 1;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        mesh_buf_reset(&call->status_msg);
        mesh_grpc_message_decode(&call->status_msg, (const char *)value, valuelen);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        struct mesh_grpc_call *call =
            nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (call != NULL)
            call->remote_closed = 1;
    }
    return 0;
}

/* A request that never left (cancelled while queued, or refused after GOAWAY):
 * nghttp2 may have no stream to close for it, so it ends here. */
static int on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame, int lib_error,
                             void *user_data)
{
    struct gconn *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    for (struct mesh_grpc_call *call = conn->calls; call != NULL; call = call->next) {
        if (call->stream_id != frame->hd.stream_id || call->stream_done)
            continue;
        call->stream_done = 1;
        if (!call->handler_done && !call->cancelled)
            deliver_close(call, MESH_GRPC_UNAVAILABLE, nghttp2_strerror(lib_error));
        gcall_release(call);
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct mesh_grpc_call *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL)
        return 0;
    call->stream_done = 1;
    call->rst_code = (int)error_code;
    if (!call->handler_done && !call->cancelled) {
        call->close_pending = 1;
        /* paused with messages buffered: they come first, on resume */
        if (!call->paused || call->in.len == call->in_off)
            finish_closed(call);
    }
    gcall_release(call);
    return 0;
}

/* --- connections -------------------------------------------------------------------------- */

static void client_teardown(struct gconn *conn, const char *why)
{
    struct mesh_grpc_client *client = conn->owner;
    char msg[256];
    /* detached first: a callback below may start calls or reconnect */
    client->conn = NULL;
    client->state = MESH_GRPC_DISCONNECTED;
    if (client->freeing)
        snprintf(msg, sizeof(msg), "client closed");
    else
        snprintf(msg, sizeof(msg), "%s: %s", client->authority, why);
    for (struct mesh_grpc_call *call = conn->calls; call != NULL; call = call->next) {
        if (call->close_pending)
            finish_closed(call);
        else
            deliver_close(call, client->freeing ? MESH_GRPC_CANCELLED : MESH_GRPC_UNAVAILABLE, msg);
    }
}

static void client_after_free(void *owner, const char *why)
{
    struct mesh_grpc_client *client = owner;
    char msg[256];
    if (client->freeing || client->opts.on_lost == NULL)
        return;
    snprintf(msg, sizeof(msg), "%s: %s", client->authority, why);
    client->opts.on_lost(client, msg, client->opts.ctx);
}

static void client_connected(struct gconn *conn)
{
    struct mesh_grpc_client *client = conn->owner;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        gconn_fail(conn, "connect: %s", strerror(err));
        return;
    }
    if (err == 0 && conn->timer > 0 && !conn->handshaking) { /* TLS: when it is done */
        mesh_loop_del_timer(conn->loop, conn->timer);
        conn->timer = 0;
    }
    conn->connecting = 0;
    client->state = MESH_GRPC_CONNECTED;
    gconn_set_mask(conn, MESH_READ);
    gconn_mark_dirty(conn); /* the preface, SETTINGS and the calls made so far */
    if (client->opts.on_connected != NULL)
        client->opts.on_connected(client, client->opts.ctx);
}

static const struct gconn_ops client_ops = {
    .on_teardown = client_teardown,
    .after_free = client_after_free,
    .resume = client_resume,
    .writable = client_writable,
    .connected = client_connected,
};

static int connect_timeout(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct gconn *conn = ctx;
    conn->timer = 0;
    gconn_enter(conn);
    gconn_fail(conn, "connect: timed out");
    gconn_leave(conn);
    return MESH_TIMER_DONE;
}

static int report_fail(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_grpc_client *client = ctx;
    client->fail_timer = 0;
    client->state = MESH_GRPC_DISCONNECTED;
    if (client->opts.on_lost != NULL)
        client->opts.on_lost(client, client->fail_why, client->opts.ctx);
    return MESH_TIMER_DONE;
}

/* A failure before there is a connection is still told from the loop, never
 * from inside mesh_grpc_client_new() or _reconnect(). */
static int fail_later(struct mesh_grpc_client *client, const char *what, int err)
{
    snprintf(client->fail_why, sizeof(client->fail_why), "%s: %s: %s", client->authority, what,
             strerror(err));
    client->state = MESH_GRPC_CONNECTING;
    int64_t id = mesh_loop_add_timer(client->loop, 0, report_fail, client);
    if (id < 0)
        return (int)id;
    client->fail_timer = id;
    return 0;
}

static int start_connect(struct mesh_grpc_client *client)
{
    int fd = socket(client->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_later(client, "socket", errno);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&client->addr.ss, client->addr.len) != 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return fail_later(client, "connect", err);
    }
    struct gconn *conn = gconn_new(client->loop, fd, 0, &client_ops, client, &client->flush);
    if (conn == NULL) {
        close(fd);
        return MESH_ENOMEM;
    }
    snprintf(conn->peer, sizeof(conn->peer), "%s", client->authority);
    conn->connecting = 1;
    if (client_tls(client, conn, fd) != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    if (nghttp2_session_client_new2(&conn->session, client->callbacks, conn, client->option) != 0 ||
        nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) !=
            0 ||
        mesh_loop_add_fd(client->loop, fd, MESH_WRITE, gconn_on_fd, conn) != 0)
        goto fail;
    conn->fd_mask = MESH_WRITE;
    int64_t id =
        mesh_loop_add_timer(client->loop, client->opts.connect_timeout_ms, connect_timeout, conn);
    if (id < 0) {
        mesh_loop_del_fd(client->loop, fd);
        goto fail;
    }
    conn->timer = id;
    client->conn = conn;
    client->state = MESH_GRPC_CONNECTING;
    return 0;
fail:
    nghttp2_session_del(conn->session);
    SSL_free(conn->ssl);
    mesh_buf_free(&conn->wbuf);
    free(conn);
    close(fd);
    return MESH_ENOMEM;
}

/* --- the client --------------------------------------------------------------------------- */

struct mesh_grpc_client *mesh_grpc_client_new(struct mesh_loop *loop, const char *addr,
                                              const struct mesh_grpc_client_opts *opts,
                                              char *errbuf, size_t errlen)
{
    struct mesh_grpc_client *client = calloc(1, sizeof(*client));
    if (client == NULL) {
        snprintf(errbuf, errlen, "%s: out of memory", addr);
        return NULL;
    }
    if (mesh_addr_parse(addr, &client->addr, errbuf, errlen) != 0) {
        free(client);
        return NULL;
    }
    client->loop = loop;
    mesh_addr_format(&client->addr, client->authority, sizeof(client->authority));
    if (client->addr.ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&client->addr.ss)->sin6_addr, client->host,
                  sizeof(client->host));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&client->addr.ss)->sin_addr, client->host,
                  sizeof(client->host));
    if (opts != NULL)
        client->opts = *opts;
    if (client->opts.max_recv_message == 0)
        client->opts.max_recv_message = MESH_GRPC_DEFAULT_MAX_MESSAGE;
    if (client->opts.send_queue == 0)
        client->opts.send_queue = MESH_GRPC_DEFAULT_SEND_QUEUE;
    if (client->opts.connect_timeout_ms == 0)
        client->opts.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    if (client->opts.authorization == NULL)
        client->opts.authorization = default_authorization;
    if (client->opts.authorization != NULL &&
        (client->authorization = strdup(client->opts.authorization)) == NULL)
        goto nomem;
    client->opts.authorization = NULL;
    if (client->opts.authority != NULL &&
        (client->call_authority = strdup(client->opts.authority)) == NULL)
        goto nomem;
    client->opts.authority = NULL;
    gflush_init(&client->flush, loop);
    if (nghttp2_session_callbacks_new(&client->callbacks) != 0 ||
        nghttp2_option_new(&client->option) != 0)
        goto nomem;
    nghttp2_session_callbacks_set_on_header_callback(client->callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(client->callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(client->callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(client->callbacks, on_frame_not_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(client->callbacks,
                                                              gconn_on_data_chunk);
    nghttp2_option_set_no_auto_window_update(client->option, 1);
    if (gflush_start(&client->flush) != 0 || start_connect(client) != 0)
        goto nomem;
    return client;
nomem:
    snprintf(errbuf, errlen, "%s: out of memory", addr);
    mesh_grpc_client_free(client);
    return NULL;
}

int mesh_grpc_client_reconnect(struct mesh_grpc_client *client)
{
    if (client->state != MESH_GRPC_DISCONNECTED || client->freeing)
        return MESH_EINVAL;
    return start_connect(client);
}

enum mesh_grpc_client_state mesh_grpc_client_state(const struct mesh_grpc_client *client)
{
    return client->state;
}

void mesh_grpc_client_free(struct mesh_grpc_client *client)
{
    if (client == NULL)
        return;
    client->freeing = 1;
    if (client->conn != NULL)
        gconn_destroy(client->conn, "client closed");
    if (client->fail_timer > 0)
        mesh_loop_del_timer(client->loop, client->fail_timer);
    gflush_stop(&client->flush);
    if (client->callbacks != NULL)
        nghttp2_session_callbacks_del(client->callbacks);
    if (client->option != NULL)
        nghttp2_option_del(client->option);
    free(client->authorization);
    free(client->call_authority);
    free(client);
}

unsigned mesh_grpc_client_ncalls(const struct mesh_grpc_client *client)
{
    return client->ncalls;
}

static void client_call_freed(struct mesh_grpc_call *call)
{
    call->client->ncalls--;
}

struct mesh_grpc_call *mesh_grpc_client_call(struct mesh_grpc_client *client, const char *method,
                                             const struct mesh_grpc_client_cbs *cbs,
                                             unsigned timeout_ms, void *ctx)
{
    struct gconn *conn = client->conn;
    if (conn == NULL || conn->failed || method == NULL || method[0] != '/')
        return NULL;
    struct mesh_grpc_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->client = client;
    call->cbs = cbs;
    call->ctx = ctx;
    call->max_msg = client->opts.max_recv_message;
    call->send_cap = client->opts.send_queue;
    call->timeout_ms = timeout_ms;
    call->loop = client->loop;
    mesh_buf_init(&call->status_msg, STATUS_MSG_CAP);
    mesh_buf_init(&call->in, client->opts.max_recv_message + 5 + STREAM_WINDOW);
    mesh_buf_init(&call->out, SIZE_MAX / 2);
    mesh_buf_init(&call->hdrs, 0);
    snprintf(call->peer, sizeof(call->peer), "%s", client->authority);
    call->method_name = strdup(method);
    if (call->method_name == NULL)
        goto fail;
    const char *authority = client->call_authority ? client->call_authority : client->authority;
    char timeout[16];
    int tlen =
        snprintf(timeout, sizeof(timeout), "%um", timeout_ms > 99999999u ? 99999999u : timeout_ms);
    nghttp2_nv nva[] = {
        NV(":method", "POST", 4),
        NV(":scheme", "http", 4),
        NV(":path", method, strlen(method)),
        NV(":authority", authority, strlen(authority)),
        NV("content-type", "application/grpc", 16),
        NV("te", "trailers", 8),
        NV("user-agent", "mesh-grpc/0.1", 13),
        NV("grpc-timeout", timeout, (size_t)tlen),
        NV("authorization", client->authorization ? client->authorization : "",
           client->authorization ? strlen(client->authorization) : 0),
    };
    size_t nnv = 7;
    if (timeout_ms > 0)
        nnv++;
    else
        nva[7] = nva[8];
    if (client->authorization != NULL)
        nnv++;
    nghttp2_data_provider prd = gcall_data_provider(call);
    int32_t stream_id = nghttp2_submit_request(conn->session, NULL, nva, nnv, &prd, call);
    if (stream_id < 0)
        goto fail;
    call->stream_id = stream_id;
    call->on_free = client_call_freed;
    client->ncalls++;
    gcall_link(conn, call);
    if (timeout_ms > 0) {
        int64_t id = mesh_loop_add_timer(client->loop, timeout_ms, deadline_fired, call);
        if (id > 0)
            call->deadline_timer = id;
    }
    gconn_mark_dirty(conn);
    return call;
fail:
    mesh_buf_free(&call->status_msg);
    free(call->method_name);
    free(call);
    return NULL;
}

/* --- the blocking unary call -------------------------------------------------------------- */

struct unary {
    struct mesh_loop *loop;
    struct mesh_buf *resp;
    int status;
    char msg[200];
    int done;
    int nmsgs;
    int err;
};

static void unary_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct unary *u = ctx;
    if (++u->nmsgs == 1 && mesh_buf_append(u->resp, msg, len) == 0)
        return;
    u->err = u->nmsgs == 1 ? MESH_ETOOBIG : MESH_EPROTO;
    u->status = MESH_GRPC_INTERNAL;
    snprintf(u->msg, sizeof(u->msg), "%s",
             u->nmsgs == 1 ? "response too large" : "more than one response message");
    u->done = 1;
    mesh_grpc_call_cancel(call);
    mesh_loop_stop(u->loop);
}

static void unary_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct unary *u = ctx;
    u->status = status;
    snprintf(u->msg, sizeof(u->msg), "%s", message);
    u->done = 1;
    mesh_loop_stop(u->loop);
}

static void unary_lost(struct mesh_grpc_client *client, const char *why, void *ctx)
{
    struct unary *u = ctx;
    if (!u->done) {
        u->status = MESH_GRPC_UNAVAILABLE;
        snprintf(u->msg, sizeof(u->msg), "%s", why);
        u->done = 1;
    }
    mesh_loop_stop(u->loop);
}

int mesh_grpc_unary(const char *addr, const char *method, const void *req, size_t req_len,
                    struct mesh_buf *resp, unsigned timeout_ms, int *status, char *errbuf,
                    size_t errlen)
{
    static const struct mesh_grpc_client_cbs cbs = {unary_message, unary_close, NULL};
    struct unary u = {.resp = resp, .status = MESH_GRPC_UNKNOWN};
    struct mesh_grpc_client *client = NULL;
    int rv = MESH_EIO;
    *status = MESH_GRPC_UNAVAILABLE;
    u.loop = mesh_loop_new();
    if (u.loop == NULL) {
        snprintf(errbuf, errlen, "%s %s: out of memory", addr, method);
        return MESH_ENOMEM;
    }
    struct mesh_grpc_client_opts opts = {
        .on_lost = unary_lost, .ctx = &u, .connect_timeout_ms = timeout_ms};
    client = mesh_grpc_client_new(u.loop, addr, &opts, errbuf, errlen);
    if (client == NULL) {
        rv = MESH_EINVAL;
        goto out;
    }
    struct mesh_grpc_call *call = mesh_grpc_client_call(client, method, &cbs, timeout_ms, &u);
    if (call == NULL && client->conn == NULL && client->fail_timer > 0) {
        /* connect(2) failed at once: the loop tells why */
    } else if (call == NULL) {
        snprintf(errbuf, errlen, "%s %s: cannot start the call", addr, method);
        goto out;
    } else if (mesh_grpc_call_send(call, req, req_len) != 0 ||
               mesh_grpc_call_close_send(call) != 0) {
        snprintf(errbuf, errlen, "%s %s: cannot send the request", addr, method);
        goto out;
    }
    while (!u.done)
        if (mesh_loop_run(u.loop) != 0)
            break;
    *status = u.status;
    if (!u.done) {
        snprintf(errbuf, errlen, "%s %s: event loop failed", addr, method);
    } else if (u.err != 0) {
        rv = u.err;
        snprintf(errbuf, errlen, "%s %s: %s", addr, method, u.msg);
    } else if (u.status == MESH_GRPC_OK && u.nmsgs == 1) {
        rv = 0;
    } else if (u.status == MESH_GRPC_OK) {
        rv = MESH_EPROTO;
        *status = MESH_GRPC_INTERNAL;
        snprintf(errbuf, errlen, "%s %s: no response message", addr, method);
    } else {
        rv = u.status == MESH_GRPC_UNAVAILABLE || u.status == MESH_GRPC_DEADLINE_EXCEEDED
                 ? MESH_EIO
                 : MESH_EPROTO;
        snprintf(errbuf, errlen, "%s %s: %s%s%s", addr, method, mesh_grpc_status_name(u.status),
                 u.msg[0] ? ": " : "", u.msg);
    }
out:
    mesh_grpc_client_free(client);
    mesh_loop_free(u.loop);
    return rv;
}
