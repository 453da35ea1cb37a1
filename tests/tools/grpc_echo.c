/* tests/tools/grpc_echo.c — a gRPC test server on lib/grpc for interop tests
 * with stock clients (tests/integration/grpc_python.sh).
 *
 * Usage: grpc_echo [--listen ADDR] [--max-message BYTES]
 * Listens on ADDR (default 127.0.0.1:0), prints the bound port on stdout,
 * serves until SIGINT or SIGTERM. Messages are tap.proto's:
 *   /mesh.test.Echo/Unary         TapEvent -> the same TapEvent, status set to 200
 *   /mesh.test.Echo/ServerStream  TapEvent{status: N} -> N WatchEvents (event.path "/n/I", missed
 * I) /mesh.test.Echo/ClientStream  stream TapEvent -> ReportAck{stored: count, seq: sum of
 * req_bytes} /mesh.test.Echo/Fail          TapEvent{grpc_status: S, error: M} -> status S, message
 * M /mesh.test.Echo/Hold          never answers (deadlines) /mesh.test.Echo/Stats         anything
 * -> TapEvent{status: calls cancelled so far} /mesh.tap.v1.Collector/Report stream ReportRequest ->
 * an ReportAck per batch
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"
#include "mesh/tap/v1/tap.pb-c.h"

static unsigned cancels;

static void send_packed(struct mesh_grpc_call *call, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    int rv = mesh_grpc_call_send(call, buf, len);
    free(buf);
    if (rv != 0)
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, "send failed");
}

static Mesh__Tap__V1__TapEvent *unpack_event(struct mesh_grpc_call *call, const uint8_t *msg,
                                             size_t len)
{
    Mesh__Tap__V1__TapEvent *ev = mesh__tap__v1__tap_event__unpack(NULL, len, msg);
    if (ev == NULL)
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "not a TapEvent");
    return ev;
}

static void unary_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Mesh__Tap__V1__TapEvent *ev = unpack_event(call, msg, len);
    if (ev == NULL)
        return;
    ev->has_status = 1;
    ev->status = 200;
    send_packed(call, &ev->base);
    mesh__tap__v1__tap_event__free_unpacked(ev, NULL);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

/* server streaming, with the send queue's flow control */
struct sstream {
    uint32_t n, i;
};

static void sstream_pump(struct mesh_grpc_call *call, struct sstream *st)
{
    while (st->i < st->n) {
        char path[32];
        snprintf(path, sizeof(path), "/n/%u", st->i);
        Mesh__Tap__V1__TapEvent ev = MESH__TAP__V1__TAP_EVENT__INIT;
        Mesh__Tap__V1__WatchEvent we = MESH__TAP__V1__WATCH_EVENT__INIT;
        ev.path = path;
        we.event = &ev;
        we.has_missed = 1;
        we.missed = st->i;
        uint8_t buf[128];
        size_t len = mesh__tap__v1__watch_event__pack(&we, buf);
        int rv = mesh_grpc_call_send(call, buf, len);
        if (rv == MESH_ETOOBIG)
            return; /* on_writable goes on */
        if (rv != 0)
            break;
        st->i++;
    }
    free(st);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static void sstream_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Mesh__Tap__V1__TapEvent *ev = unpack_event(call, msg, len);
    if (ev == NULL)
        return;
    struct sstream *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        mesh__tap__v1__tap_event__free_unpacked(ev, NULL);
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    st->n = ev->status;
    mesh__tap__v1__tap_event__free_unpacked(ev, NULL);
    mesh_grpc_call_set_ctx(call, st);
    sstream_pump(call, st);
}

static void sstream_writable(struct mesh_grpc_call *call, void *ctx)
{
    sstream_pump(call, ctx);
}

static void cancel_free(struct mesh_grpc_call *call, void *ctx)
{
    cancels++;
    free(ctx);
}

struct cstream {
    uint32_t count;
    uint64_t bytes;
};

static void cstream_start(struct mesh_grpc_call *call, void *ctx)
{
    struct cstream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    else
        mesh_grpc_call_set_ctx(call, st);
}

static void cstream_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct cstream *st = ctx;
    Mesh__Tap__V1__TapEvent *ev = mesh__tap__v1__tap_event__unpack(NULL, len, msg);
    if (ev == NULL) {
        free(st);
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "not a TapEvent");
        return;
    }
    st->count++;
    st->bytes += ev->req_bytes;
    mesh__tap__v1__tap_event__free_unpacked(ev, NULL);
}

static void cstream_half_close(struct mesh_grpc_call *call, void *ctx)
{
    struct cstream *st = ctx;
    Mesh__Tap__V1__ReportAck ack = MESH__TAP__V1__REPORT_ACK__INIT;
    ack.has_stored = 1;
    ack.stored = st->count;
    ack.has_seq = 1;
    ack.seq = st->bytes;
    free(st);
    send_packed(call, &ack.base);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static void fail_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Mesh__Tap__V1__TapEvent *ev = unpack_event(call, msg, len);
    if (ev == NULL)
        return;
    mesh_grpc_call_finish(call, (int)ev->grpc_status, ev->error);
    mesh__tap__v1__tap_event__free_unpacked(ev, NULL);
}

static void hold_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
}

static void hold_cancel(struct mesh_grpc_call *call, void *ctx)
{
    cancels++;
}

static void stats_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Mesh__Tap__V1__TapEvent ev = MESH__TAP__V1__TAP_EVENT__INIT;
    ev.has_status = 1;
    ev.status = cancels;
    send_packed(call, &ev.base);
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static void report_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Mesh__Tap__V1__ReportRequest *req = mesh__tap__v1__report_request__unpack(NULL, len, msg);
    if (req == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "not a ReportRequest");
        return;
    }
    Mesh__Tap__V1__ReportAck ack = MESH__TAP__V1__REPORT_ACK__INIT;
    ack.sender_id = req->sender_id;
    ack.has_seq = 1;
    ack.seq = req->seq;
    ack.has_stored = 1;
    ack.stored = (uint32_t)req->n_events;
    send_packed(call, &ack.base);
    mesh__tap__v1__report_request__free_unpacked(req, NULL);
}

static void finish_ok(struct mesh_grpc_call *call, void *ctx)
{
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static const struct mesh_grpc_handler h_unary = {.on_message = unary_message};
static const struct mesh_grpc_handler h_sstream = {
    .on_message = sstream_message, .on_writable = sstream_writable, .on_cancel = cancel_free};
static const struct mesh_grpc_handler h_cstream = {.on_start = cstream_start,
                                                   .on_message = cstream_message,
                                                   .on_half_close = cstream_half_close,
                                                   .on_cancel = cancel_free};
static const struct mesh_grpc_handler h_fail = {.on_message = fail_message};
static const struct mesh_grpc_handler h_hold = {.on_message = hold_message,
                                                .on_cancel = hold_cancel};
static const struct mesh_grpc_handler h_stats = {.on_message = stats_message};
static const struct mesh_grpc_handler h_report = {
    .on_message = report_message, .on_half_close = finish_ok, .on_cancel = hold_cancel};

static const struct mesh_grpc_method methods[] = {
    {"/mesh.test.Echo/Unary", MESH_GRPC_UNARY, &h_unary, NULL},
    {"/mesh.test.Echo/ServerStream", MESH_GRPC_SERVER_STREAM, &h_sstream, NULL},
    {"/mesh.test.Echo/ClientStream", MESH_GRPC_CLIENT_STREAM, &h_cstream, NULL},
    {"/mesh.test.Echo/Fail", MESH_GRPC_UNARY, &h_fail, NULL},
    {"/mesh.test.Echo/Hold", MESH_GRPC_UNARY, &h_hold, NULL},
    {"/mesh.test.Echo/Stats", MESH_GRPC_UNARY, &h_stats, NULL},
    {"/mesh.tap.v1.Collector/Report", MESH_GRPC_BIDI, &h_report, NULL},
};

static void on_signal(struct mesh_loop *loop, int signo, void *ctx)
{
    mesh_loop_stop(loop);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    struct mesh_grpc_server_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--max-message") == 0 && i + 1 < argc) {
            opts.max_recv_message = strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: grpc_echo [--listen ADDR] [--max-message BYTES]\n");
            return 2;
        }
    }
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL) {
        fprintf(stderr, "grpc_echo: out of memory\n");
        return 1;
    }
    char err[256];
    struct mesh_grpc_server *server = mesh_grpc_server_new(
        loop, listen, methods, sizeof(methods) / sizeof(methods[0]), &opts, err, sizeof(err));
    if (server == NULL) {
        fprintf(stderr, "grpc_echo: %s\n", err);
        mesh_loop_free(loop);
        return 2;
    }
    mesh_loop_on_signal(loop, SIGINT, on_signal, NULL);
    mesh_loop_on_signal(loop, SIGTERM, on_signal, NULL);
    printf("%d\n", mesh_grpc_server_port(server));
    fflush(stdout);
    int rv = mesh_loop_run(loop);
    mesh_grpc_server_free(server);
    mesh_loop_free(loop);
    return rv == 0 ? 0 : 1;
}
