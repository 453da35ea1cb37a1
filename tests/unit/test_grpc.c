/* tests/unit/test_grpc.c — gRPC over h2c (lib/grpc*.c): an in-process server
 * on 127.0.0.1 port 0, our client, and a raw nghttp2 client for what our client
 * never sends (odd framing, compressed flag, bad headers). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"
#include "mesh/tap/v1/tap.pb-c.h"
#include "test.h"

/* --- running the loop until something happened -------------------------------------------- */

static void check_flag(struct mesh_loop *loop, void *ctx)
{
    const int *flag = ctx;
    if (*flag)
        mesh_loop_stop(loop);
}

static int guard_fired(struct mesh_loop *loop, int64_t id, void *ctx)
{
    *(int *)ctx = 1;
    mesh_loop_stop(loop);
    return MESH_TIMER_DONE;
}

/* Runs |loop| until *|flag| is non-zero or |ms| passed; returns *|flag|. */
static int run_until(struct mesh_loop *loop, const int *flag, unsigned ms)
{
    int timed_out = 0;
    int64_t hook = mesh_loop_on_before_sleep(loop, check_flag, (void *)flag);
    int64_t guard = mesh_loop_add_timer(loop, ms, guard_fired, &timed_out);
    while (!*flag && !timed_out)
        mesh_loop_run(loop);
    mesh_loop_del_before_sleep(loop, hook);
    if (!timed_out)
        mesh_loop_del_timer(loop, guard);
    return *flag;
}

static void run_for(struct mesh_loop *loop, unsigned ms)
{
    int never = 0;
    run_until(loop, &never, ms);
}

/* --- the test server's methods ------------------------------------------------------------ */

static struct {
    int started, messages, half_closes, cancels, writables, etoobig;
    struct mesh_grpc_call *held;
    char auth[128];
    struct mesh_grpc_call *slow;
    int slow_msgs;
    size_t slow_bytes;
    int flood_sent, flood_target;
    size_t flood_bytes;
} S;

static void echo_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    mesh_grpc_call_send(call, msg, len);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

/* server streaming: the request is a count N in ASCII; answers "msg-0" … */
struct sstream {
    int n, i;
};

static void sstream_pump(struct mesh_grpc_call *call, struct sstream *st)
{
    char buf[32];
    while (st->i < st->n) {
        int len = snprintf(buf, sizeof(buf), "msg-%d", st->i);
        int rv = mesh_grpc_call_send(call, buf, (size_t)len);
        if (rv == MESH_ETOOBIG) {
            S.etoobig++;
            return; /* on_writable goes on */
        }
        if (rv != 0)
            break;
        st->i++;
    }
    free(st);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static void sstream_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct sstream *st = calloc(1, sizeof(*st));
    char num[16] = {0};
    memcpy(num, msg, len < 15 ? len : 15);
    st->n = atoi(num);
    mesh_grpc_call_set_ctx(call, st);
    sstream_pump(call, st);
}

static void sstream_writable(struct mesh_grpc_call *call, void *ctx)
{
    S.writables++;
    sstream_pump(call, ctx);
}

static void free_ctx_cancel(struct mesh_grpc_call *call, void *ctx)
{
    S.cancels++;
    free(ctx);
}

/* client streaming: answers "count=N bytes=B" */
struct cstream {
    int count;
    size_t bytes;
};

static void cstream_start(struct mesh_grpc_call *call, void *ctx)
{
    mesh_grpc_call_set_ctx(call, calloc(1, sizeof(struct cstream)));
}

static void cstream_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct cstream *st = ctx;
    st->count++;
    st->bytes += len;
}

static void cstream_half_close(struct mesh_grpc_call *call, void *ctx)
{
    struct cstream *st = ctx;
    char buf[64];
    int len = snprintf(buf, sizeof(buf), "count=%d bytes=%zu", st->count, st->bytes);
    free(st);
    mesh_grpc_call_send(call, buf, (size_t)len);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

/* bidi: echoes each message; OK at half-close */
static void bidi_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    if (mesh_grpc_call_send(call, msg, len) != 0)
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, "send failed");
}

static void finish_ok(struct mesh_grpc_call *call, void *ctx)
{
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

/* Collector.Report: acks every batch with its seq and event count */
static void report_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Mesh__Tap__V1__ReportRequest *req = mesh__tap__v1__report_request__unpack(NULL, len, msg);
    if (req == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "bad ReportRequest");
        return;
    }
    Mesh__Tap__V1__ReportAck ack = MESH__TAP__V1__REPORT_ACK__INIT;
    ack.sender_id = req->sender_id;
    ack.has_seq = 1;
    ack.seq = req->seq;
    ack.has_stored = 1;
    ack.stored = (uint32_t)req->n_events;
    uint8_t buf[256];
    size_t n = mesh__tap__v1__report_ack__pack(&ack, buf);
    mesh__tap__v1__report_request__free_unpacked(req, NULL);
    mesh_grpc_call_send(call, buf, n);
}

/* hold: keeps the call, never answers by itself */
static void hold_start(struct mesh_grpc_call *call, void *ctx)
{
    S.started++;
    S.held = call;
    const char *auth = mesh_grpc_call_header(call, "authorization");
    snprintf(S.auth, sizeof(S.auth), "%s", auth ? auth : "");
}

static void hold_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    S.messages++;
}

static void hold_half_close(struct mesh_grpc_call *call, void *ctx)
{
    S.half_closes++;
}

static void hold_cancel(struct mesh_grpc_call *call, void *ctx)
{
    S.cancels++;
    /* still valid here */
    CHECK(mesh_grpc_call_send(call, "x", 1) == MESH_EINVAL);
    CHECK(mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL) == MESH_EINVAL);
    if (S.held == call)
        S.held = NULL;
}

/* flood: sends flood_target messages of 16 KiB as fast as it is allowed */
static void flood_pump(struct mesh_grpc_call *call)
{
    static uint8_t chunk[16384];
    while (S.flood_sent < S.flood_target) {
        int rv = mesh_grpc_call_send(call, chunk, sizeof(chunk));
        if (rv == MESH_ETOOBIG) {
            S.etoobig++;
            return;
        }
        if (rv != 0)
            return;
        S.flood_sent++;
        S.flood_bytes += sizeof(chunk);
    }
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static void flood_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    flood_pump(call);
}

static void flood_writable(struct mesh_grpc_call *call, void *ctx)
{
    S.writables++;
    flood_pump(call);
}

/* slow: pauses receiving at the first message; the test resumes it */
static void slow_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    S.slow_msgs++;
    S.slow_bytes += len;
    if (S.slow_msgs == 1) {
        S.slow = call;
        mesh_grpc_call_pause_recv(call, 1);
    }
}

static void slow_half_close(struct mesh_grpc_call *call, void *ctx)
{
    char buf[64];
    int len = snprintf(buf, sizeof(buf), "count=%d bytes=%zu", S.slow_msgs, S.slow_bytes);
    S.slow = NULL;
    mesh_grpc_call_send(call, buf, (size_t)len);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static void slow_cancel(struct mesh_grpc_call *call, void *ctx)
{
    S.slow = NULL;
    S.cancels++;
}

static const struct mesh_grpc_handler h_echo = {.on_message = echo_message};
static const struct mesh_grpc_handler h_sstream = {
    .on_message = sstream_message, .on_writable = sstream_writable, .on_cancel = free_ctx_cancel};
static const struct mesh_grpc_handler h_cstream = {.on_start = cstream_start,
                                                   .on_message = cstream_message,
                                                   .on_half_close = cstream_half_close,
                                                   .on_cancel = free_ctx_cancel};
static const struct mesh_grpc_handler h_bidi = {.on_message = bidi_message,
                                                .on_half_close = finish_ok};
static const struct mesh_grpc_handler h_report = {.on_message = report_message,
                                                  .on_half_close = finish_ok};
static const struct mesh_grpc_handler h_hold = {.on_start = hold_start,
                                                .on_message = hold_message,
                                                .on_half_close = hold_half_close,
                                                .on_cancel = hold_cancel};
static const struct mesh_grpc_handler h_flood = {.on_message = flood_message,
                                                 .on_writable = flood_writable};
static const struct mesh_grpc_handler h_slow = {
    .on_message = slow_message, .on_half_close = slow_half_close, .on_cancel = slow_cancel};

static const struct mesh_grpc_method methods[] = {
    {"/test.Echo/Unary", MESH_GRPC_UNARY, &h_echo, NULL},
    {"/test.Echo/ServerStream", MESH_GRPC_SERVER_STREAM, &h_sstream, NULL},
    {"/test.Echo/ClientStream", MESH_GRPC_CLIENT_STREAM, &h_cstream, NULL},
    {"/test.Echo/Bidi", MESH_GRPC_BIDI, &h_bidi, NULL},
    {"/mesh.tap.v1.Collector/Report", MESH_GRPC_BIDI, &h_report, NULL},
    {"/test.Echo/Hold", MESH_GRPC_BIDI, &h_hold, NULL},
    {"/test.Echo/HoldUnary", MESH_GRPC_UNARY, &h_hold, NULL},
    {"/test.Echo/Flood", MESH_GRPC_SERVER_STREAM, &h_flood, NULL},
    {"/test.Echo/Slow", MESH_GRPC_CLIENT_STREAM, &h_slow, NULL},
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* --- environment: a loop, a server, a client ---------------------------------------------- */

struct env {
    struct mesh_loop *loop;
    struct mesh_grpc_server *server;
    struct mesh_grpc_client *client;
    char addr[32];
    int connected, lost;
    char lost_why[256];
};

static void env_connected(struct mesh_grpc_client *client, void *ctx)
{
    struct env *env = ctx;
    env->connected++;
}

static void env_lost(struct mesh_grpc_client *client, const char *why, void *ctx)
{
    struct env *env = ctx;
    env->lost++;
    snprintf(env->lost_why, sizeof(env->lost_why), "%s", why);
}

static struct mesh_grpc_client *env_client(struct env *env, const char *authorization)
{
    char err[256];
    struct mesh_grpc_client_opts copts = {.on_connected = env_connected,
                                          .on_lost = env_lost,
                                          .ctx = env,
                                          .authorization = authorization};
    struct mesh_grpc_client *client =
        mesh_grpc_client_new(env->loop, env->addr, &copts, err, sizeof(err));
    if (client == NULL)
        fprintf(stderr, "client: %s\n", err);
    return client;
}

static int env_init(struct env *env, const struct mesh_grpc_server_opts *opts)
{
    char err[256];
    memset(env, 0, sizeof(*env));
    memset(&S, 0, sizeof(S));
    env->loop = mesh_loop_new();
    env->server =
        mesh_grpc_server_new(env->loop, "127.0.0.1:0", methods, NMETHODS, opts, err, sizeof(err));
    if (env->server == NULL) {
        fprintf(stderr, "server: %s\n", err);
        return -1;
    }
    snprintf(env->addr, sizeof(env->addr), "127.0.0.1:%d", mesh_grpc_server_port(env->server));
    env->client = env_client(env, NULL);
    return env->client != NULL ? 0 : -1;
}

static void env_free(struct env *env)
{
    mesh_grpc_client_free(env->client);
    mesh_grpc_server_free(env->server);
    mesh_loop_free(env->loop);
}

/* What a client call received. */
struct got {
    int msgs;
    struct mesh_buf all; /* every message, each followed by '\n' */
    char last[512];
    size_t last_len;
    int closed, status;
    char message[256];
    int pause_first; /* pause receiving at the first message */
    struct mesh_grpc_call *call;
    int writables;
    int decode_acks; /* messages are ReportAcks: keep their seq and stored */
    uint64_t ack_seq[8];
    uint32_t ack_stored[8];
    int bad_acks;
};

static void got_init(struct got *g)
{
    memset(g, 0, sizeof(*g));
    mesh_buf_init(&g->all, 64u << 20);
    g->status = -1;
}

static void got_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct got *g = ctx;
    g->msgs++;
    mesh_buf_append(&g->all, msg, len);
    mesh_buf_append(&g->all, "\n", 1);
    g->last_len = len < sizeof(g->last) ? len : sizeof(g->last);
    memcpy(g->last, msg, g->last_len);
    if (g->pause_first && g->msgs == 1)
        mesh_grpc_call_pause_recv(call, 1);
    if (g->decode_acks) {
        Mesh__Tap__V1__ReportAck *ack = mesh__tap__v1__report_ack__unpack(NULL, len, msg);
        if (ack == NULL || g->msgs > 8 || ack->sender_id == NULL ||
            strcmp(ack->sender_id, "proxy-1") != 0) {
            g->bad_acks++;
        } else {
            g->ack_seq[g->msgs - 1] = ack->seq;
            g->ack_stored[g->msgs - 1] = ack->stored;
        }
        mesh__tap__v1__report_ack__free_unpacked(ack, NULL);
    }
}

static void got_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct got *g = ctx;
    g->closed = 1;
    g->status = status;
    g->call = NULL;
    snprintf(g->message, sizeof(g->message), "%s", message);
}

static void got_writable(struct mesh_grpc_call *call, void *ctx)
{
    struct got *g = ctx;
    g->writables++;
}

static const struct mesh_grpc_client_cbs got_cbs = {got_message, got_close, got_writable};

static struct mesh_grpc_call *start(struct env *env, struct got *g, const char *method,
                                    unsigned timeout_ms)
{
    got_init(g);
    g->call = mesh_grpc_client_call(env->client, method, &got_cbs, timeout_ms, g);
    CHECK(g->call != NULL);
    return g->call;
}

/* One unary call: |req| in, the status out. */
static int call_unary(struct env *env, struct got *g, const char *method, const void *req,
                      size_t len)
{
    struct mesh_grpc_call *call = start(env, g, method, 0);
    if (call == NULL)
        return -1;
    CHECK_EQ_INT(mesh_grpc_call_send(call, req, len), 0);
    CHECK_EQ_INT(mesh_grpc_call_close_send(call), 0);
    CHECK(run_until(env->loop, &g->closed, 5000));
    return g->status;
}

/* --- a raw HTTP/2 client ------------------------------------------------------------------ */

struct raw_stream {
    int32_t id;
    const uint8_t *body;
    size_t len, off, chunk; /* DATA frames of at most |chunk| bytes */
    int end_stream;         /* END_STREAM after the body */
    int http_status, grpc_status, header_frames, end_seen, closed;
    uint32_t rst;
    char grpc_message[256];
    struct mesh_buf data;
};

struct raw {
    struct mesh_loop *loop;
    int fd;
    nghttp2_session *session;
    struct mesh_buf out;
    int eof;
    int64_t hook;
};

static ssize_t raw_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct raw_stream *rs = source->ptr;
    size_t n = rs->len - rs->off;
    if (n > rs->chunk)
        n = rs->chunk;
    if (n > length)
        n = length;
    memcpy(buf, rs->body + rs->off, n);
    rs->off += n;
    if (rs->off == rs->len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!rs->end_stream)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

static int raw_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                      void *user_data)
{
    struct raw_stream *rs = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (rs == NULL)
        return 0;
    char v[256];
    snprintf(v, sizeof(v), "%.*s", (int)valuelen, value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        rs->http_status = atoi(v);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        rs->grpc_status = atoi(v);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(rs->grpc_message, sizeof(rs->grpc_message), "%s", v);
    return 0;
}

static int raw_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct raw_stream *rs = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (rs == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS)
        rs->header_frames++;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        rs->end_seen = 1;
    return 0;
}

static int raw_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                    size_t len, void *user_data)
{
    struct raw_stream *rs = nghttp2_session_get_stream_user_data(session, stream_id);
    if (rs != NULL)
        mesh_buf_append(&rs->data, data, len);
    return 0;
}

static int raw_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                     void *user_data)
{
    struct raw_stream *rs = nghttp2_session_get_stream_user_data(session, stream_id);
    if (rs != NULL) {
        rs->closed = 1;
        rs->rst = error_code;
    }
    return 0;
}

static void raw_flush(struct raw *raw)
{
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(raw->session, &data)) > 0)
        mesh_buf_append(&raw->out, data, (size_t)n);
    while (raw->out.len > 0) {
        ssize_t w = send(raw->fd, raw->out.data, raw->out.len, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        mesh_buf_consume(&raw->out, (size_t)w);
    }
    mesh_loop_mod_fd(raw->loop, raw->fd, MESH_READ | (raw->out.len > 0 ? MESH_WRITE : 0u));
}

static void raw_hook(struct mesh_loop *loop, void *ctx)
{
    struct raw *raw = ctx;
    if (raw->fd >= 0)
        raw_flush(raw);
}

static void raw_on_fd(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct raw *raw = ctx;
    if (events & MESH_READ) {
        uint8_t buf[16384];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                raw->eof = 1;
                mesh_loop_mod_fd(loop, fd, 0);
            }
            return;
        }
        nghttp2_session_mem_recv(raw->session, buf, (size_t)n);
    }
    raw_flush(raw);
}

static int tcp_connect(const char *addr_text)
{
    struct mesh_addr addr;
    char err[128];
    if (mesh_addr_parse(addr_text, &addr, err, sizeof(err)) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&addr.ss, addr.len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void raw_open(struct raw *raw, struct env *env)
{
    memset(raw, 0, sizeof(*raw));
    raw->loop = env->loop;
    raw->fd = tcp_connect(env->addr);
    CHECK(raw->fd >= 0);
    fcntl(raw->fd, F_SETFL, fcntl(raw->fd, F_GETFL) | O_NONBLOCK);
    mesh_buf_init(&raw->out, 64u << 20);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, raw_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, raw_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, raw_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, raw_close);
    nghttp2_session_client_new(&raw->session, cbs, raw);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(raw->session, NGHTTP2_FLAG_NONE, NULL, 0);
    mesh_loop_add_fd(env->loop, raw->fd, MESH_READ, raw_on_fd, raw);
    raw->hook = mesh_loop_on_before_sleep(env->loop, raw_hook, raw);
}

static void raw_close_conn(struct raw *raw)
{
    mesh_loop_del_before_sleep(raw->loop, raw->hook);
    mesh_loop_del_fd(raw->loop, raw->fd);
    close(raw->fd);
    raw->fd = -1;
    nghttp2_session_del(raw->session);
    mesh_buf_free(&raw->out);
}

/* Starts a request; |extra| is NULL or {name, value, …, NULL}. */
static void raw_request(struct raw *raw, struct raw_stream *rs, const char *method,
                        const char *path, const char *content_type, const char *const *extra,
                        const void *body, size_t len, size_t chunk, int end_stream)
{
    nghttp2_nv nva[16];
    size_t n = 0;
#define RAW_NV(nm, v)                                                                              \
    nva[n++] =                                                                                     \
        (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), strlen(nm), strlen(v), NGHTTP2_NV_FLAG_NONE}
    RAW_NV(":method", method);
    RAW_NV(":scheme", "http");
    RAW_NV(":path", path);
    RAW_NV(":authority", "test");
    if (content_type != NULL)
        RAW_NV("content-type", content_type);
    RAW_NV("te", "trailers");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
        RAW_NV(extra[i], extra[i + 1]);
    memset(rs, 0, sizeof(*rs));
    mesh_buf_init(&rs->data, 64u << 20);
    rs->body = body;
    rs->len = len;
    rs->chunk = chunk ? chunk : 16384;
    rs->end_stream = end_stream;
    rs->grpc_status = -1;
    nghttp2_data_provider prd = {.source.ptr = rs, .read_callback = raw_read};
    rs->id = nghttp2_submit_request(raw->session, NULL, nva, n, body != NULL ? &prd : NULL, rs);
    CHECK(rs->id > 0);
}

/* A gRPC frame: flag byte, length, payload. */
static size_t frame_msg(uint8_t *out, uint8_t flag, const void *msg, size_t len)
{
    out[0] = flag;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    memcpy(out + 5, msg, len);
    return len + 5;
}

/* --- tests -------------------------------------------------------------------------------- */

static void test_addr_parse(void)
{
    struct mesh_addr addr;
    char err[256], text[64];
    CHECK_EQ_INT(mesh_addr_parse("127.0.0.1:8088", &addr, err, sizeof(err)), 0);
    CHECK_EQ_STR(mesh_addr_format(&addr, text, sizeof(text)), "127.0.0.1:8088");
    CHECK_EQ_INT(mesh_addr_parse("[::1]:8088", &addr, err, sizeof(err)), 0);
    CHECK_EQ_STR(mesh_addr_format(&addr, text, sizeof(text)), "[::1]:8088");
    CHECK_EQ_INT(mesh_addr_parse("0.0.0.0:0", &addr, err, sizeof(err)), 0);
    CHECK_EQ_STR(mesh_addr_format(&addr, text, sizeof(text)), "0.0.0.0:0");
    CHECK_EQ_INT(mesh_addr_parse("localhost:4191", &addr, err, sizeof(err)), 0);
    CHECK_EQ_STR(mesh_addr_format(&addr, text, sizeof(text)), "127.0.0.1:4191");
    const char *bad[] = {"",
                         "8088",
                         ":8088",
                         "1.2.3.4:",
                         "1.2.3.4:x",
                         "1.2.3.4:65536",
                         "::1:8088",
                         "[::1]8088",
                         "[1.2.3.4]:80",
                         "example.com:80",
                         "1.2.3.4:123456",
                         "[::1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ_INT(mesh_addr_parse(bad[i], &addr, err, sizeof(err)), MESH_EINVAL);
        CHECK(strchr(err, '\n') == NULL);
        if (bad[i][0] != '\0')
            CHECK(strstr(err, bad[i]) != NULL); /* names the input */
    }
    mesh_addr_parse("::1:8088", &addr, err, sizeof(err));
    CHECK(strstr(err, "brackets") != NULL);
}

static void test_wire_helpers(void)
{
    uint64_t us;
    CHECK_EQ_INT(mesh_grpc_timeout_parse("100m", 4, &us), 0);
    CHECK_EQ_INT(us, 100000);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("2S", 2, &us), 0);
    CHECK_EQ_INT(us, 2000000);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("1H", 2, &us), 0);
    CHECK_EQ_INT(us, 3600000000ull);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("3M", 2, &us), 0);
    CHECK_EQ_INT(us, 180000000ull);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("7u", 2, &us), 0);
    CHECK_EQ_INT(us, 7);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("1500n", 5, &us), 0);
    CHECK_EQ_INT(us, 2); /* rounded up */
    CHECK_EQ_INT(mesh_grpc_timeout_parse("99999999S", 9, &us), 0);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("123456789S", 10, &us), MESH_EINVAL); /* 9 digits */
    CHECK_EQ_INT(mesh_grpc_timeout_parse("10", 2, &us), MESH_EINVAL);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("S", 1, &us), MESH_EINVAL);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("1x", 2, &us), MESH_EINVAL);
    CHECK_EQ_INT(mesh_grpc_timeout_parse("-1S", 3, &us), MESH_EINVAL);

    struct mesh_buf buf, dec;
    mesh_buf_init(&buf, 1024);
    mesh_buf_init(&dec, 1024);
    CHECK_EQ_INT(mesh_grpc_message_encode(&buf, "50% off\n\xc3\xa9t\xc3\xa9"), 0);
    CHECK_EQ_STR(buf.data, "50%25 off%0A%C3%A9t%C3%A9");
    CHECK_EQ_INT(mesh_grpc_message_decode(&dec, buf.data, buf.len), 0);
    CHECK_EQ_STR(dec.data, "50% off\n\xc3\xa9t\xc3\xa9");
    mesh_buf_reset(&dec);
    CHECK_EQ_INT(mesh_grpc_message_decode(&dec, "bad %zz %4", 10), 0);
    CHECK_EQ_STR(dec.data, "bad %zz %4"); /* kept as they are */
    mesh_buf_free(&buf);
    mesh_buf_free(&dec);

    CHECK_EQ_STR(mesh_grpc_status_name(MESH_GRPC_OK), "OK");
    CHECK_EQ_STR(mesh_grpc_status_name(4), "DEADLINE_EXCEEDED");
    CHECK_EQ_STR(mesh_grpc_status_name(16), "UNAUTHENTICATED");
    CHECK_EQ_STR(mesh_grpc_status_name(17), "UNKNOWN_STATUS");
    CHECK_EQ_STR(mesh_grpc_status_name(-1), "UNKNOWN_STATUS");
}

static void test_unary(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    CHECK(mesh_grpc_server_port(env.server) > 0);
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", "hello", 5), MESH_GRPC_OK);
    CHECK_EQ_INT(g.msgs, 1);
    CHECK(g.last_len == 5 && memcmp(g.last, "hello", 5) == 0);
    CHECK_EQ_INT(env.connected, 1);
    CHECK_EQ_INT(mesh_grpc_client_state(env.client), MESH_GRPC_CONNECTED);
    mesh_buf_free(&g.all);
    /* an empty message is a message */
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", "", 0), MESH_GRPC_OK);
    CHECK_EQ_INT(g.msgs, 1);
    CHECK_EQ_INT(g.last_len, 0);
    mesh_buf_free(&g.all);
    /* 200 at once on one connection, over the 100-stream limit: nghttp2 queues them */
    static struct got many[200];
    int closed = 0;
    for (int i = 0; i < 200; i++) {
        char req[16];
        int n = snprintf(req, sizeof(req), "req-%d", i);
        start(&env, &many[i], "/test.Echo/Unary", 0);
        mesh_grpc_call_send(many[i].call, req, (size_t)n);
        mesh_grpc_call_close_send(many[i].call);
    }
    for (int round = 0; round < 500 && closed < 200; round++) {
        run_for(env.loop, 10);
        closed = 0;
        for (int i = 0; i < 200; i++)
            closed += many[i].closed;
    }
    CHECK_EQ_INT(closed, 200);
    int good = 0;
    for (int i = 0; i < 200; i++) {
        char req[16];
        int n = snprintf(req, sizeof(req), "req-%d", i);
        good += many[i].status == MESH_GRPC_OK && many[i].last_len == (size_t)n &&
                memcmp(many[i].last, req, (size_t)n) == 0;
        mesh_buf_free(&many[i].all);
    }
    CHECK_EQ_INT(good, 200);
    CHECK_EQ_INT(mesh_grpc_server_nconns(env.server), 1);
    run_for(env.loop, 10);
    CHECK_EQ_INT(mesh_grpc_server_ncalls(env.server), 0);
    env_free(&env);
}

static void test_server_stream(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/ServerStream", "1000", 4), MESH_GRPC_OK);
    CHECK_EQ_INT(g.msgs, 1000);
    /* in order, each intact */
    const char *p = g.all.data;
    int in_order = 1;
    for (int i = 0; i < 1000 && p != NULL; i++) {
        char want[32];
        int n = snprintf(want, sizeof(want), "msg-%d\n", i);
        if (strncmp(p, want, (size_t)n) != 0) {
            in_order = 0;
            break;
        }
        p += n;
    }
    CHECK(in_order);
    mesh_buf_free(&g.all);
    /* zero messages, then OK */
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/ServerStream", "0", 1), MESH_GRPC_OK);
    CHECK_EQ_INT(g.msgs, 0);
    mesh_buf_free(&g.all);
    env_free(&env);
}

static void test_client_stream(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/ClientStream", 0);
    static uint8_t blob[70000];
    size_t total = 0;
    for (int i = 0; i < 500; i++) {
        size_t len = (size_t)(i * 131) % sizeof(blob);
        int rv;
        while ((rv = mesh_grpc_call_send(call, blob, len)) == MESH_ETOOBIG)
            run_for(env.loop, 1); /* the queue is full: let it drain */
        CHECK_EQ_INT(rv, 0);
        total += len;
    }
    CHECK_EQ_INT(mesh_grpc_call_close_send(call), 0);
    CHECK_EQ_INT(mesh_grpc_call_send(call, "x", 1), MESH_EINVAL); /* half-closed */
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_OK);
    char want[64];
    snprintf(want, sizeof(want), "count=500 bytes=%zu", total);
    CHECK_EQ_INT(g.msgs, 1);
    CHECK_EQ_STR(g.last, want);
    mesh_buf_free(&g.all);
    env_free(&env);
}

static void test_bidi(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    /* ping-pong: each answer before the next question */
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Bidi", 0);
    int pongs = 0;
    for (int i = 0; i < 100; i++) {
        char ping[16];
        int n = snprintf(ping, sizeof(ping), "ping-%d", i);
        CHECK_EQ_INT(mesh_grpc_call_send(call, ping, (size_t)n), 0);
        int want = i + 1;
        for (int spin = 0; spin < 200 && g.msgs < want; spin++)
            run_for(env.loop, 2);
        pongs += g.msgs == want && g.last_len == (size_t)n && memcmp(g.last, ping, (size_t)n) == 0;
    }
    CHECK_EQ_INT(pongs, 100);
    mesh_grpc_call_close_send(call);
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_OK);
    mesh_buf_free(&g.all);

    /* Collector.Report with the real messages: an ack per batch */
    call = start(&env, &g, "/mesh.tap.v1.Collector/Report", 0);
    g.decode_acks = 1;
    for (uint64_t seq = 1; seq <= 3; seq++) {
        Mesh__Tap__V1__TapEvent ev[4], *evp[4];
        Mesh__Tap__V1__ReportRequest req = MESH__TAP__V1__REPORT_REQUEST__INIT;
        for (size_t i = 0; i < seq + 1; i++) {
            mesh__tap__v1__tap_event__init(&ev[i]);
            ev[i].path = (char *)"/emojivoto.v1.VotingService/VoteDoughnut";
            ev[i].has_grpc_status = 1;
            ev[i].grpc_status = 2;
            evp[i] = &ev[i];
        }
        req.sender_id = (char *)"proxy-1";
        req.has_seq = 1;
        req.seq = seq;
        req.n_events = seq + 1;
        req.events = evp;
        uint8_t buf[2048];
        size_t n = mesh__tap__v1__report_request__pack(&req, buf);
        CHECK_EQ_INT(mesh_grpc_call_send(call, buf, n), 0);
    }
    for (int spin = 0; spin < 500 && g.msgs < 3; spin++)
        run_for(env.loop, 2);
    CHECK_EQ_INT(g.msgs, 3);
    /* the acks, in order, each for its batch */
    CHECK_EQ_INT(g.bad_acks, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(g.ack_seq[i], i + 1);
        CHECK_EQ_INT(g.ack_stored[i], i + 2);
    }
    /* a batch that is not a ReportRequest ends the call */
    CHECK_EQ_INT(mesh_grpc_call_send(call, "\xff\xff\xff", 3), 0);
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_INVALID_ARGUMENT);
    CHECK_EQ_STR(g.message, "bad ReportRequest");
    mesh_buf_free(&g.all);
    env_free(&env);
}

/* Message boundaries are not frame boundaries. */
static void test_framing(void)
{
    struct env env;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    struct raw raw;
    raw_open(&raw, &env);
    /* one 3000-byte message in 1-byte DATA frames */
    static uint8_t body[200000], payload[3000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    size_t len = frame_msg(body, 0, payload, sizeof(payload));
    struct raw_stream rs;
    raw_request(&raw, &rs, "POST", "/test.Echo/Unary", "application/grpc", NULL, body, len, 1, 1);
    CHECK(run_until(env.loop, &rs.closed, 10000));
    CHECK_EQ_INT(rs.http_status, 200);
    CHECK_EQ_INT(rs.grpc_status, 0);
    CHECK_EQ_INT(rs.data.len, len);
    CHECK(rs.data.len == len && memcmp(rs.data.data, body, len) == 0);
    mesh_buf_free(&rs.data);

    /* 1000 messages, many per DATA frame, and a frame boundary inside prefixes */
    static uint8_t many[1000 * 40];
    size_t off = 0, first40 = 0;
    for (int i = 0; i < 1000; i++) {
        char m[32];
        int n = snprintf(m, sizeof(m), "bidi-%d", i);
        off += frame_msg(many + off, 0, m, (size_t)n);
        if (i == 39)
            first40 = off;
    }
    raw_request(&raw, &rs, "POST", "/test.Echo/Bidi", "application/grpc", NULL, many, off, 16381,
                1);
    CHECK(run_until(env.loop, &rs.closed, 10000));
    CHECK_EQ_INT(rs.grpc_status, 0);
    CHECK_EQ_INT(rs.data.len, off); /* every message echoed, byte for byte */
    CHECK(rs.data.len == off && memcmp(rs.data.data, many, off) == 0);
    mesh_buf_free(&rs.data);

    /* the same with 3-byte frames: prefixes split every way */
    raw_request(&raw, &rs, "POST", "/test.Echo/Bidi", "application/grpc", NULL, many, first40, 3,
                1);
    CHECK(run_until(env.loop, &rs.closed, 10000));
    CHECK_EQ_INT(rs.grpc_status, 0);
    CHECK_EQ_INT(rs.data.len, first40);
    CHECK(rs.data.len == first40 && memcmp(rs.data.data, many, first40) == 0);
    mesh_buf_free(&rs.data);
    raw_close_conn(&raw);
    env_free(&env);
}

static void test_unknown_method(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Nope/Missing", "x", 1), MESH_GRPC_UNIMPLEMENTED);
    CHECK(strstr(g.message, "/test.Nope/Missing") != NULL);
    CHECK_EQ_INT(g.msgs, 0);
    mesh_buf_free(&g.all);

    /* trailers-only: a single HEADERS frame with END_STREAM */
    struct raw raw;
    raw_open(&raw, &env);
    uint8_t body[16];
    size_t len = frame_msg(body, 0, "x", 1);
    struct raw_stream rs;
    raw_request(&raw, &rs, "POST", "/test.Nope/Missing", "application/grpc", NULL, body, len, 0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.http_status, 200);
    CHECK_EQ_INT(rs.grpc_status, MESH_GRPC_UNIMPLEMENTED);
    CHECK_EQ_INT(rs.header_frames, 1);
    CHECK(rs.end_seen);
    CHECK_EQ_INT(rs.data.len, 0);
    CHECK(strstr(rs.grpc_message, "unknown method") != NULL);
    mesh_buf_free(&rs.data);
    raw_close_conn(&raw);
    env_free(&env);
}

static void test_oversize(void)
{
    struct env env;
    struct got g;
    struct mesh_grpc_server_opts opts = {.max_recv_message = 100000};
    if (env_init(&env, &opts) != 0) {
        CHECK(0);
        return;
    }
    static uint8_t big[2000000];
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", big, 100000), MESH_GRPC_OK);
    mesh_buf_free(&g.all);
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", big, 100001),
                 MESH_GRPC_RESOURCE_EXHAUSTED);
    CHECK(strstr(g.message, "100001") != NULL);
    mesh_buf_free(&g.all);
    /* much larger than the stream window, mid-stream on a bidi call: the
     * server stops it early and tells the client to stop sending */
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Bidi", 0);
    CHECK_EQ_INT(mesh_grpc_call_send(call, "ok", 2), 0);
    CHECK(run_until(env.loop, &g.msgs, 5000));
    CHECK_EQ_INT(mesh_grpc_call_send(call, big, sizeof(big)), 0); /* an empty queue takes it */
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_RESOURCE_EXHAUSTED);
    CHECK_EQ_INT(g.msgs, 1);
    mesh_buf_free(&g.all);
    /* the connection is fine afterwards */
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", "again", 5), MESH_GRPC_OK);
    mesh_buf_free(&g.all);
    CHECK_EQ_INT(env.lost, 0);

    /* our client's receive cap: a response over it */
    struct mesh_grpc_client_opts copts = {.max_recv_message = 1000};
    char err[256];
    struct mesh_grpc_client *small =
        mesh_grpc_client_new(env.loop, env.addr, &copts, err, sizeof(err));
    got_init(&g);
    g.call = mesh_grpc_client_call(small, "/test.Echo/Unary", &got_cbs, 0, &g);
    mesh_grpc_call_send(g.call, big, 1001);
    mesh_grpc_call_close_send(g.call);
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_RESOURCE_EXHAUSTED);
    mesh_buf_free(&g.all);
    mesh_grpc_client_free(small);
    env_free(&env);
}

static void test_compressed(void)
{
    struct env env;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    struct raw raw;
    raw_open(&raw, &env);
    uint8_t body[64];
    size_t len = frame_msg(body, 1, "gzipped?", 8);
    struct raw_stream rs;
    const char *enc[] = {"grpc-encoding", "gzip", NULL};
    raw_request(&raw, &rs, "POST", "/test.Echo/Unary", "application/grpc", enc, body, len, 0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.http_status, 200);
    CHECK_EQ_INT(rs.grpc_status, MESH_GRPC_UNIMPLEMENTED);
    CHECK(strstr(rs.grpc_message, "compression") != NULL);
    mesh_buf_free(&rs.data);
    raw_close_conn(&raw);
    env_free(&env);
}

static void test_bad_requests(void)
{
    struct env env;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    struct raw raw;
    raw_open(&raw, &env);
    uint8_t body[64], two[64];
    size_t len = frame_msg(body, 0, "x", 1);
    size_t len2 = frame_msg(two, 0, "a", 1);
    len2 += frame_msg(two + len2, 0, "b", 1);
    struct raw_stream rs;

    raw_request(&raw, &rs, "POST", "/test.Echo/Unary", "text/plain", NULL, body, len, 0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.http_status, 415);
    mesh_buf_free(&rs.data);

    raw_request(&raw, &rs, "POST", "/test.Echo/Unary", "application/grpcx", NULL, body, len, 0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.http_status, 415);
    mesh_buf_free(&rs.data);

    raw_request(&raw, &rs, "POST", "/test.Echo/Unary", "application/grpc+proto", NULL, body, len, 0,
                1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.http_status, 200);
    CHECK_EQ_INT(rs.grpc_status, 0);
    mesh_buf_free(&rs.data);

    raw_request(&raw, &rs, "GET", "/test.Echo/Unary", "application/grpc", NULL, NULL, 0, 0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.http_status, 405);
    mesh_buf_free(&rs.data);

    /* a unary method with two requests, or none */
    raw_request(&raw, &rs, "POST", "/test.Echo/HoldUnary", "application/grpc", NULL, two, len2, 0,
                1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.grpc_status, MESH_GRPC_INTERNAL);
    CHECK_EQ_INT(S.cancels, 1); /* the handler held it and was told */
    mesh_buf_free(&rs.data);
    raw_request(&raw, &rs, "POST", "/test.Echo/HoldUnary", "application/grpc", NULL, NULL, 0, 0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.grpc_status, MESH_GRPC_INTERNAL);
    CHECK_EQ_INT(S.cancels, 2);
    mesh_buf_free(&rs.data);

    /* ends inside a message */
    raw_request(&raw, &rs, "POST", "/test.Echo/Hold", "application/grpc", NULL, body, len - 1, 0,
                1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.grpc_status, MESH_GRPC_INTERNAL);
    mesh_buf_free(&rs.data);

    /* headers over the cap */
    static char huge[20000];
    memset(huge, 'a', sizeof(huge) - 1);
    const char *hdr[] = {"x-huge", huge, NULL};
    raw_request(&raw, &rs, "POST", "/test.Echo/Unary", "application/grpc", hdr, body, len, 0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.http_status, 431);
    mesh_buf_free(&rs.data);
    CHECK(!raw.eof); /* none of these closed the connection */
    raw_close_conn(&raw);

    /* HTTP/1.1: a 505 and a polite close */
    int fd = tcp_connect(env.addr);
    CHECK(fd >= 0);
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
    run_for(env.loop, 50);
    char rsp[512] = {0};
    ssize_t n = recv(fd, rsp, sizeof(rsp) - 1, MSG_DONTWAIT);
    CHECK(n > 0 && strncmp(rsp, "HTTP/1.1 505 ", 13) == 0);
    n = recv(fd, rsp, sizeof(rsp) - 1, MSG_DONTWAIT);
    CHECK_EQ_INT(n, 0); /* it shut down its side */
    close(fd);
    run_for(env.loop, 20);
    CHECK_EQ_INT(mesh_grpc_server_nconns(env.server), 1); /* only our client's */
    env_free(&env);
}

static void test_deadline(void)
{
    struct env env;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    struct raw raw;
    raw_open(&raw, &env);
    uint8_t body[16];
    size_t len = frame_msg(body, 0, "x", 1);
    struct raw_stream rs;
    const char *timeout[] = {"grpc-timeout", "50m", NULL};
    /* the client waits for an answer that never comes in time */
    uint64_t t0 = mesh_loop_now_us();
    raw_request(&raw, &rs, "POST", "/test.Echo/HoldUnary", "application/grpc", timeout, body, len,
                0, 1);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    uint64_t took = mesh_loop_now_us() - t0;
    CHECK(took >= 50000 && took < 2000000);
    CHECK_EQ_INT(rs.grpc_status, MESH_GRPC_DEADLINE_EXCEEDED);
    CHECK_EQ_INT(S.started, 1);
    CHECK_EQ_INT(S.half_closes, 1);
    CHECK_EQ_INT(S.cancels, 1);
    CHECK(S.held == NULL);
    mesh_buf_free(&rs.data);

    /* the client still sending: trailers, then RST_STREAM so it stops */
    raw_request(&raw, &rs, "POST", "/test.Echo/Hold", "application/grpc", timeout, body, len, 0, 0);
    CHECK(run_until(env.loop, &rs.closed, 5000));
    CHECK_EQ_INT(rs.grpc_status, MESH_GRPC_DEADLINE_EXCEEDED);
    CHECK(rs.end_seen);
    CHECK_EQ_INT(rs.rst, NGHTTP2_NO_ERROR);
    CHECK_EQ_INT(S.cancels, 2);
    mesh_buf_free(&rs.data);
    raw_close_conn(&raw);

    /* our client's own deadline */
    struct got g;
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Hold", 30);
    mesh_grpc_call_send(call, "x", 1);
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_DEADLINE_EXCEEDED);
    run_for(env.loop, 30);
    CHECK_EQ_INT(S.cancels, 3); /* the server let go too */
    mesh_buf_free(&g.all);
    env_free(&env);
}

static void test_client_cancel(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Hold", 0);
    mesh_grpc_call_send(call, "one", 3);
    CHECK(run_until(env.loop, &S.messages, 5000));
    CHECK(S.held != NULL);
    CHECK_EQ_INT(mesh_grpc_server_ncalls(env.server), 1);
    mesh_grpc_call_cancel(call); /* no callback for us after this */
    CHECK(run_until(env.loop, &S.cancels, 5000));
    CHECK(S.held == NULL);
    run_for(env.loop, 10);
    CHECK_EQ_INT(g.closed, 0);
    CHECK_EQ_INT(mesh_grpc_server_ncalls(env.server), 0);
    mesh_buf_free(&g.all);

    /* the server side cancels: the client hears CANCELLED */
    call = start(&env, &g, "/test.Echo/Hold", 0);
    mesh_grpc_call_send(call, "one", 3);
    S.messages = 0;
    CHECK(run_until(env.loop, &S.messages, 5000));
    mesh_grpc_call_cancel(S.held);
    S.held = NULL;
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_CANCELLED);
    mesh_buf_free(&g.all);

    /* cancelled before the connection is even up: nothing is left behind */
    env.connected = 0;
    struct mesh_grpc_client *early = env_client(&env, NULL);
    got_init(&g);
    call = mesh_grpc_client_call(early, "/test.Echo/Hold", &got_cbs, 0, &g);
    CHECK(call != NULL);
    CHECK_EQ_INT(mesh_grpc_client_ncalls(early), 1);
    mesh_grpc_call_cancel(call);
    CHECK(run_until(env.loop, &env.connected, 5000));
    run_for(env.loop, 20);
    CHECK_EQ_INT(mesh_grpc_client_ncalls(early), 0);
    CHECK_EQ_INT(g.closed, 0);
    mesh_grpc_client_free(early);
    mesh_buf_free(&g.all);

    /* a handler that answers later, from a timer */
    call = start(&env, &g, "/test.Echo/Hold", 0);
    mesh_grpc_call_send(call, "q", 1);
    mesh_grpc_call_close_send(call);
    S.half_closes = 0;
    CHECK(run_until(env.loop, &S.half_closes, 5000));
    run_for(env.loop, 20);
    CHECK_EQ_INT(mesh_grpc_call_send(S.held, "late", 4), 0);
    CHECK_EQ_INT(mesh_grpc_call_finish(S.held, MESH_GRPC_NOT_FOUND, "no such thing"), 0);
    S.held = NULL;
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_INT(g.status, MESH_GRPC_NOT_FOUND);
    CHECK_EQ_STR(g.message, "no such thing");
    CHECK_EQ_INT(g.msgs, 1);
    mesh_buf_free(&g.all);
    env_free(&env);
}

/* The server's send queue fills: the handler is told, and told again when it drains. */
static void test_send_queue_full(void)
{
    struct env env;
    struct got g;
    struct mesh_grpc_server_opts opts = {.send_queue = 256 * 1024};
    if (env_init(&env, &opts) != 0) {
        CHECK(0);
        return;
    }
    S.flood_target = 400; /* 6.4 MB in 16 KiB messages */
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Flood", 0);
    g.pause_first = 1; /* our client stops reading: the stream window closes */
    mesh_grpc_call_send(call, "go", 2);
    mesh_grpc_call_close_send(call);
    run_for(env.loop, 200);
    CHECK(S.etoobig >= 1);
    CHECK_EQ_INT(g.msgs, 1);
    /* the server got no further than the window (1 MiB) and its queue (256 KiB) */
    CHECK(S.flood_bytes <= (1u << 20) + 256 * 1024 + 4 * 16384);
    CHECK(S.flood_sent < S.flood_target);
    int sent_while_paused = S.flood_sent;
    run_for(env.loop, 50);
    CHECK_EQ_INT(S.flood_sent, sent_while_paused); /* stuck, not spinning */
    mesh_grpc_call_pause_recv(call, 0);
    CHECK(run_until(env.loop, &g.closed, 10000));
    CHECK_EQ_INT(g.status, MESH_GRPC_OK);
    CHECK_EQ_INT(g.msgs, 400);
    CHECK(S.writables >= 1);
    mesh_buf_free(&g.all);

    /* the client's side: its queue over the cap says MESH_ETOOBIG, then on_writable */
    struct mesh_grpc_client_opts copts = {.send_queue = 100000};
    char err[256];
    struct mesh_grpc_client *small =
        mesh_grpc_client_new(env.loop, env.addr, &copts, err, sizeof(err));
    got_init(&g);
    g.call = mesh_grpc_client_call(small, "/test.Echo/ClientStream", &got_cbs, 0, &g);
    static uint8_t chunk[30000];
    int accepted = 0, rv = 0;
    while ((rv = mesh_grpc_call_send(g.call, chunk, sizeof(chunk))) == 0)
        accepted++;
    CHECK_EQ_INT(rv, MESH_ETOOBIG);
    CHECK_EQ_INT(accepted, 3);
    CHECK(mesh_grpc_call_queued(g.call) <= 100000);
    CHECK(run_until(env.loop, &g.writables, 5000));
    CHECK_EQ_INT(mesh_grpc_call_send(g.call, chunk, sizeof(chunk)), 0);
    mesh_grpc_call_close_send(g.call);
    CHECK(run_until(env.loop, &g.closed, 5000));
    CHECK_EQ_STR(g.last, "count=4 bytes=120000");
    mesh_buf_free(&g.all);
    mesh_grpc_client_free(small);
    env_free(&env);
}

/* A server handler that pauses: the peer is held back by flow control. */
static void test_recv_pause(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Slow", 0);
    static uint8_t chunk[65536];
    int sent = 0, rv = 0;
    for (int i = 0; i < 64; i++) { /* up to 4 MiB */
        for (int tries = 0; tries < 40; tries++) {
            if ((rv = mesh_grpc_call_send(call, chunk, sizeof(chunk))) != MESH_ETOOBIG)
                break;
            run_for(env.loop, 5);
        }
        if (rv != 0)
            break;
        sent++;
    }
    /* held back: the server's window stayed closed, our queue filled up */
    CHECK_EQ_INT(rv, MESH_ETOOBIG);
    CHECK(sent < 64);
    CHECK(mesh_grpc_call_queued(call) > 0);
    CHECK(S.slow != NULL);
    CHECK_EQ_INT(S.slow_msgs, 1); /* nothing delivered while paused */
    mesh_grpc_call_close_send(call);
    run_for(env.loop, 50);
    CHECK_EQ_INT(S.slow_msgs, 1);
    mesh_grpc_call_pause_recv(S.slow, 0);
    CHECK(run_until(env.loop, &g.closed, 10000));
    CHECK_EQ_INT(g.status, MESH_GRPC_OK);
    char want[64];
    snprintf(want, sizeof(want), "count=%d bytes=%zu", sent, (size_t)sent * sizeof(chunk));
    CHECK_EQ_STR(g.last, want);
    mesh_buf_free(&g.all);
    env_free(&env);
}

static void test_connection_drop(void)
{
    struct env env;
    struct got g;
    if (env_init(&env, NULL) != 0) {
        CHECK(0);
        return;
    }
    int port = mesh_grpc_server_port(env.server);
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Hold", 0);
    mesh_grpc_call_send(call, "x", 1);
    CHECK(run_until(env.loop, &S.messages, 5000));
    /* the server goes away under a call */
    mesh_grpc_server_free(env.server);
    env.server = NULL;
    CHECK_EQ_INT(S.cancels, 1); /* its handler was told */
    CHECK(run_until(env.loop, &env.lost, 5000));
    CHECK(g.closed);
    CHECK_EQ_INT(g.status, MESH_GRPC_UNAVAILABLE);
    CHECK(strstr(env.lost_why, env.addr) != NULL);
    CHECK_EQ_INT(mesh_grpc_client_state(env.client), MESH_GRPC_DISCONNECTED);
    CHECK(mesh_grpc_client_call(env.client, "/test.Echo/Unary", &got_cbs, 0, &g) == NULL);
    mesh_buf_free(&g.all);

    /* reconnecting to nobody: refused, told through on_lost */
    CHECK_EQ_INT(mesh_grpc_client_reconnect(env.client), 0);
    CHECK_EQ_INT(mesh_grpc_client_reconnect(env.client), MESH_EINVAL); /* already on it */
    env.lost = 0;
    CHECK(run_until(env.loop, &env.lost, 5000));
    CHECK(strstr(env.lost_why, "refused") != NULL);

    /* a server again on the same port: reconnect, and calls work */
    char err[256], listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    env.server = mesh_grpc_server_new(env.loop, listen, methods, NMETHODS, NULL, err, sizeof(err));
    CHECK(env.server != NULL);
    env.connected = 0;
    CHECK_EQ_INT(mesh_grpc_client_reconnect(env.client), 0);
    CHECK(run_until(env.loop, &env.connected, 5000));
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", "back", 4), MESH_GRPC_OK);
    mesh_buf_free(&g.all);

    /* the server's listener in use: a one-line error */
    struct mesh_grpc_server *dup =
        mesh_grpc_server_new(env.loop, listen, methods, NMETHODS, NULL, err, sizeof(err));
    CHECK(dup == NULL);
    CHECK(strstr(err, listen) != NULL && strstr(err, "in use") != NULL);
    env_free(&env);
}

static int reject_auth(struct mesh_grpc_call *call, const char **message, void *ctx)
{
    const char *auth = mesh_grpc_call_header(call, "authorization");
    if (auth != NULL && strcmp(auth, "Bearer s3cret") == 0)
        return MESH_GRPC_OK;
    *message = "bad token";
    return MESH_GRPC_UNAUTHENTICATED;
}

static void test_authorize(void)
{
    struct env env;
    struct got g;
    struct mesh_grpc_server_opts opts = {.authorize = reject_auth};
    if (env_init(&env, &opts) != 0) {
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", "x", 1), MESH_GRPC_UNAUTHENTICATED);
    CHECK_EQ_STR(g.message, "bad token");
    mesh_buf_free(&g.all);
    struct mesh_grpc_client *with = env_client(&env, "Bearer s3cret");
    mesh_grpc_client_free(env.client);
    env.client = with;
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", "x", 1), MESH_GRPC_OK);
    mesh_buf_free(&g.all);
    struct mesh_grpc_call *call = start(&env, &g, "/test.Echo/Hold", 0);
    (void)call;
    CHECK(run_until(env.loop, &S.started, 5000));
    CHECK_EQ_STR(S.auth, "Bearer s3cret"); /* handlers see the headers */
    CHECK(strncmp(mesh_grpc_call_peer(S.held), "127.0.0.1:", 10) == 0);
    CHECK_EQ_STR(mesh_grpc_call_method(S.held), "/test.Echo/Hold");
    CHECK_EQ_INT(mesh_grpc_call_deadline_us(S.held), 0);
    mesh_grpc_call_finish(S.held, MESH_GRPC_OK, NULL);
    CHECK(run_until(env.loop, &g.closed, 5000));
    mesh_buf_free(&g.all);
    env_free(&env);
}

static void test_max_connections(void)
{
    struct env env;
    struct mesh_grpc_server_opts opts = {.max_connections = 2};
    if (env_init(&env, &opts) != 0) {
        CHECK(0);
        return;
    }
    struct got g;
    CHECK_EQ_INT(call_unary(&env, &g, "/test.Echo/Unary", "x", 1), MESH_GRPC_OK);
    mesh_buf_free(&g.all);
    struct raw a, b;
    raw_open(&a, &env);
    raw_open(&b, &env);
    run_for(env.loop, 50);
    CHECK_EQ_INT(mesh_grpc_server_nconns(env.server), 2);
    CHECK(!a.eof);
    CHECK(b.eof); /* the third was closed at once */
    raw_close_conn(&a);
    raw_close_conn(&b);
    run_for(env.loop, 20);
    CHECK_EQ_INT(mesh_grpc_server_nconns(env.server), 1);
    env_free(&env);
}

/* mesh_grpc_unary against a server on its own thread. */
struct thread_server {
    struct mesh_loop *loop;
    struct mesh_grpc_server *server;
    int port;
    int stop_fd[2];
    pthread_mutex_t mu;
    pthread_cond_t ready;
    int started;
};

static void on_stop_fd(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    mesh_loop_stop(loop);
}

static void *server_thread(void *arg)
{
    struct thread_server *ts = arg;
    char err[256];
    ts->loop = mesh_loop_new();
    ts->server =
        mesh_grpc_server_new(ts->loop, "127.0.0.1:0", methods, NMETHODS, NULL, err, sizeof(err));
    mesh_loop_add_fd(ts->loop, ts->stop_fd[0], MESH_READ, on_stop_fd, ts);
    pthread_mutex_lock(&ts->mu);
    ts->port = ts->server ? mesh_grpc_server_port(ts->server) : -1;
    ts->started = 1;
    pthread_cond_signal(&ts->ready);
    pthread_mutex_unlock(&ts->mu);
    mesh_loop_run(ts->loop);
    mesh_loop_del_fd(ts->loop, ts->stop_fd[0]);
    mesh_grpc_server_free(ts->server);
    mesh_loop_free(ts->loop);
    return NULL;
}

static void test_blocking_unary(void)
{
    struct thread_server ts = {.mu = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER};
    pthread_t tid;
    CHECK(pipe(ts.stop_fd) == 0);
    pthread_create(&tid, NULL, server_thread, &ts);
    pthread_mutex_lock(&ts.mu);
    while (!ts.started)
        pthread_cond_wait(&ts.ready, &ts.mu);
    pthread_mutex_unlock(&ts.mu);
    CHECK(ts.port > 0);
    char addr[32], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ts.port);
    struct mesh_buf resp;
    mesh_buf_init(&resp, 1 << 20);
    int status = -1;
    CHECK_EQ_INT(mesh_grpc_unary(addr, "/test.Echo/Unary", "ping", 4, &resp, 2000, &status, err,
                                 sizeof(err)),
                 0);
    CHECK_EQ_INT(status, MESH_GRPC_OK);
    CHECK_EQ_STR(resp.data, "ping");
    mesh_buf_reset(&resp);
    CHECK_EQ_INT(
        mesh_grpc_unary(addr, "/test.Nope/X", "ping", 4, &resp, 2000, &status, err, sizeof(err)),
        MESH_EPROTO);
    CHECK_EQ_INT(status, MESH_GRPC_UNIMPLEMENTED);
    CHECK(strstr(err, addr) != NULL && strstr(err, "UNIMPLEMENTED") != NULL);
    CHECK(strchr(err, '\n') == NULL);
    CHECK_EQ_INT(mesh_grpc_unary(addr, "/test.Echo/HoldUnary", "x", 1, &resp, 100, &status, err,
                                 sizeof(err)),
                 MESH_EIO);
    CHECK_EQ_INT(status, MESH_GRPC_DEADLINE_EXCEEDED);
    /* response larger than |resp| may hold */
    struct mesh_buf tiny;
    mesh_buf_init(&tiny, 2);
    CHECK_EQ_INT(mesh_grpc_unary(addr, "/test.Echo/Unary", "ping", 4, &tiny, 2000, &status, err,
                                 sizeof(err)),
                 MESH_ETOOBIG);
    mesh_buf_free(&tiny);
    CHECK(write(ts.stop_fd[1], "x", 1) == 1);
    pthread_join(tid, NULL);
    close(ts.stop_fd[0]);
    close(ts.stop_fd[1]);
    /* nobody there */
    CHECK_EQ_INT(mesh_grpc_unary(addr, "/test.Echo/Unary", "ping", 4, &resp, 2000, &status, err,
                                 sizeof(err)),
                 MESH_EIO);
    CHECK_EQ_INT(status, MESH_GRPC_UNAVAILABLE);
    CHECK(strstr(err, "refused") != NULL);
    CHECK_EQ_INT(mesh_grpc_unary("nowhere", "/test.Echo/Unary", "ping", 4, &resp, 2000, &status,
                                 err, sizeof(err)),
                 MESH_EINVAL);
    CHECK(strstr(err, "nowhere") != NULL);
    mesh_buf_free(&resp);
}

int main(void)
{
    RUN(test_addr_parse);
    RUN(test_wire_helpers);
    RUN(test_unary);
    RUN(test_server_stream);
    RUN(test_client_stream);
    RUN(test_bidi);
    RUN(test_framing);
    RUN(test_unknown_method);
    RUN(test_oversize);
    RUN(test_compressed);
    RUN(test_bad_requests);
    RUN(test_deadline);
    RUN(test_client_cancel);
    RUN(test_send_queue_full);
    RUN(test_recv_pause);
    RUN(test_connection_drop);
    RUN(test_authorize);
    RUN(test_max_connections);
    RUN(test_blocking_unary);
    return TEST_REPORT();
}
