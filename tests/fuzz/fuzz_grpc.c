/* tests/fuzz/fuzz_grpc.c — the gRPC server (lib/grpc_server.c, lib/grpc.c):
 * message framing (the 5-byte length prefixes split over DATA frames),
 * pausing, echoing, and the HTTP/2 session around it.
 *
 * One server, built once, with an echo service in three kinds (unary,
 * server-streaming, bidi). Per input a socketpair(2) whose one end the
 * server adopts (gserver_adopt, as if accepted); the other gets the bytes,
 * is read from, and shut down for writing after a few loop iterations; the
 * loop runs until the server closed the connection or 50 ms passed. A
 * connection, call or fd that outlives the input aborts.
 *
 * Input: byte 0 says how to read the rest.
 *   bit 7 set: raw mode, the rest follows the client preface as it is
 *     (frames of any kind: the session and the request header checks).
 *   bit 7 clear: framing mode. Bits 0-1 the method (0 unary, 1 server
 *     stream, 2 and 3 bidi); bit 2 a grpc-timeout of 1 ms; bit 3 end with
 *     RST_STREAM instead of END_STREAM; bit 4 the same body again on a
 *     second stream, its frames interleaved. Byte 1: DATA frame size (0: 1
 *     byte, else n * 8). The rest is the request body: gRPC messages
 *     (flag byte, 4-byte length, bytes). A message starting with 0xFF makes
 *     the handler pause the call until the next loop iteration; one starting
 *     with 0xFE makes it finish the call with an error at once.
 * Seeds: tests/fuzz/corpus/grpc/ (mkseeds_grpc.py: the client stream of the
 * emojivoto gRPC capture in raw mode, its request bodies in framing mode,
 * and hand-made framing edge cases).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_impl.h"
#include "mesh/buf.h"
#include "mesh/grpc.h"
#include "mesh/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEADLINE_MS 50
#define SHUT_AFTER 3 /* loop iterations before the client half-closes */
#define MAX_PAUSED 16

static struct mesh_loop *loop;
static struct mesh_grpc_server *server;
static struct mesh_grpc_call *paused[MAX_PAUSED];
static size_t npaused;
static int client_fd = -1, iterations, timed_out;
static struct mesh_buf wire;
static int fd_mark; /* the lowest free fd before the input: an fd leaked moves it */

static int lowest_free_fd(void)
{
    int fd = dup(0);
    if (fd >= 0)
        close(fd);
    return fd;
}

static void unpause_forget(struct mesh_grpc_call *call)
{
    for (size_t i = 0; i < npaused; i++)
        if (paused[i] == call) {
            paused[i] = paused[--npaused];
            return;
        }
}

static void echo_on_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    if (len > 0 && msg[0] == 0xfe) {
        unpause_forget(call);
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "fuzz: \xfe asks to fail");
        return;
    }
    if (len > 0 && msg[0] == 0xff && npaused < MAX_PAUSED) {
        mesh_grpc_call_pause_recv(call, 1);
        unpause_forget(call);
        paused[npaused++] = call;
    }
    /* echo: both directions of the framing, and the send queue */
    (void)mesh_grpc_call_send(call, msg, len);
}

static void echo_on_half_close(struct mesh_grpc_call *call, void *ctx)
{
    unpause_forget(call);
    if ((uintptr_t)ctx == MESH_GRPC_SERVER_STREAM) {
        (void)mesh_grpc_call_send(call, "one", 3);
        (void)mesh_grpc_call_send(call, "", 0);
    }
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static void echo_on_cancel(struct mesh_grpc_call *call, void *ctx)
{
    unpause_forget(call);
}

static const struct mesh_grpc_handler echo = {
    .on_message = echo_on_message,
    .on_half_close = echo_on_half_close,
    .on_cancel = echo_on_cancel,
};

static const struct mesh_grpc_method methods[] = {
    {"/fuzz.Echo/Unary", MESH_GRPC_UNARY, &echo, (void *)(uintptr_t)MESH_GRPC_UNARY},
    {"/fuzz.Echo/Server", MESH_GRPC_SERVER_STREAM, &echo, (void *)(uintptr_t)MESH_GRPC_SERVER_STREAM},
    {"/fuzz.Echo/Bidi", MESH_GRPC_BIDI, &echo, (void *)(uintptr_t)MESH_GRPC_BIDI},
};

static void client_close(void)
{
    if (client_fd >= 0) {
        mesh_loop_del_fd(loop, client_fd);
        close(client_fd);
        client_fd = -1;
    }
}

static void on_client(struct mesh_loop *l, int fd, unsigned events, void *ctx)
{
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        client_close();
}

static void before_sleep(struct mesh_loop *l, void *ctx)
{
    /* paused calls resume on the next iteration */
    while (npaused > 0)
        mesh_grpc_call_pause_recv(paused[--npaused], 0);
    if (mesh_grpc_server_nconns(server) == 0 || timed_out) {
        mesh_loop_stop(l);
        mesh_loop_wake(l);
        return;
    }
    if (client_fd >= 0 && ++iterations < SHUT_AFTER)
        mesh_loop_wake(l);
    else if (client_fd >= 0 && iterations == SHUT_AFTER)
        shutdown(client_fd, SHUT_WR);
}

static int on_deadline(struct mesh_loop *l, int64_t id, void *ctx)
{
    timed_out = 1;
    mesh_loop_stop(l);
    return MESH_TIMER_DONE;
}

static void init(void)
{
    char err[256];
    if (loop != NULL)
        return;
    loop = mesh_loop_new();
    struct mesh_grpc_server_opts opts = {
        .max_recv_message = 1024,  /* small caps: the limits are reached */
        .send_queue = 4096,
        .stream_window = 16384,
        .max_header_list = 2048,
    };
    server = mesh_grpc_server_new(loop, "127.0.0.1:0", methods, 3, &opts, err, sizeof(err));
    if (loop == NULL || server == NULL || mesh_loop_on_before_sleep(loop, before_sleep, NULL) <= 0)
        abort();
    mesh_buf_init(&wire, 1u << 24);
}

static void put_frame(struct mesh_buf *b, uint8_t type, uint8_t flags, uint32_t stream,
                      const void *payload, size_t len)
{
    uint8_t hd[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                     (uint8_t)(stream >> 24), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8),
                     (uint8_t)stream};
    if (mesh_buf_append(b, hd, 9) != 0 || (len > 0 && mesh_buf_append(b, payload, len) != 0))
        abort();
}

/* HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2). */
static size_t hpack_lit(uint8_t *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), n = 0;
    out[n++] = 0;
    out[n++] = (uint8_t)nl;
    memcpy(out + n, name, nl), n += nl;
    out[n++] = (uint8_t)vl;
    memcpy(out + n, value, vl), n += vl;
    return n;
}

static void put_headers(struct mesh_buf *b, uint32_t stream, const char *path, int timeout)
{
    uint8_t block[512];
    size_t n = 0;
    n += hpack_lit(block + n, ":method", "POST");
    n += hpack_lit(block + n, ":scheme", "http");
    n += hpack_lit(block + n, ":path", path);
    n += hpack_lit(block + n, ":authority", "collector:8088");
    n += hpack_lit(block + n, "content-type", "application/grpc");
    n += hpack_lit(block + n, "te", "trailers");
    if (timeout)
        n += hpack_lit(block + n, "grpc-timeout", "1m");
    put_frame(b, 1 /* HEADERS */, 4 /* END_HEADERS */, stream, block, n);
}

static void make_wire(const uint8_t *data, size_t size)
{
    mesh_buf_reset(&wire);
    if (mesh_buf_append(&wire, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN) != 0)
        abort();
    if (data[0] & 0x80) {
        if (size > 1 && mesh_buf_append(&wire, data + 1, size - 1) != 0)
            abort();
        return;
    }
    put_frame(&wire, 4 /* SETTINGS */, 0, 0, NULL, 0);
    unsigned flags = data[0];
    const char *path = methods[(flags & 3) == 3 ? 2 : flags & 3].name;
    int two = (flags & 0x10) != 0;
    size_t frame = size > 1 ? (data[1] == 0 ? 1 : (size_t)data[1] * 8) : 16384;
    const uint8_t *body = size > 2 ? data + 2 : data;
    size_t len = size > 2 ? size - 2 : 0;
    put_headers(&wire, 1, path, flags & 4);
    if (two)
        put_headers(&wire, 3, path, flags & 4);
    size_t off = 0;
    do {
        size_t n = len - off < frame ? len - off : frame;
        int last = off + n == len;
        uint8_t end = last && !(flags & 8) ? 1 /* END_STREAM */ : 0;
        put_frame(&wire, 0 /* DATA */, end, 1, body + off, n);
        if (two)
            put_frame(&wire, 0, end, 3, body + off, n);
        off += n;
    } while (off < len);
    if (flags & 8) {
        static const uint8_t cancel[4] = {0, 0, 0, 8};
        put_frame(&wire, 3 /* RST_STREAM */, 0, 1, cancel, 4);
        if (two)
            put_frame(&wire, 3, 0, 3, cancel, 4);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    init();
    make_wire(data, size);
    /* per input, not once: the sanitizers' symbolizer opens pipes between inputs */
    fd_mark = lowest_free_fd();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    /* the whole input fits the socket buffer: written at once */
    int bufsize = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    (void)!send(sv[1], wire.data, wire.len, MSG_NOSIGNAL);
    client_fd = sv[1];
    iterations = 0;
    timed_out = 0;
    if (mesh_loop_add_fd(loop, sv[1], MESH_READ, on_client, NULL) != 0 ||
        gserver_adopt(server, sv[0]) != 0)
        abort();
    int64_t deadline = mesh_loop_add_timer(loop, DEADLINE_MS, on_deadline, NULL);
    if (deadline <= 0)
        abort();
    mesh_loop_run(loop);
    if (!timed_out)
        mesh_loop_del_timer(loop, deadline);
    else if (getenv("FUZZ_DEBUG") != NULL)
        fprintf(stderr, "fuzz_grpc: deadline passed\n");
    /* the server end goes with the connection; closing ours makes it go */
    client_close();
    for (int i = 0; i < 100 && mesh_grpc_server_nconns(server) > 0; i++) {
        int64_t t = mesh_loop_add_timer(loop, 1, on_deadline, NULL);
        timed_out = 0;
        mesh_loop_run(loop);
        if (!timed_out)
            mesh_loop_del_timer(loop, t);
    }
    if (mesh_grpc_server_nconns(server) != 0 || mesh_grpc_server_ncalls(server) != 0 ||
        npaused != 0 || lowest_free_fd() != fd_mark) {
        char link[64] = "", proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd_mark);
        (void)!readlink(proc, link, sizeof(link) - 1);
        fprintf(stderr, "fuzz_grpc: left behind: %u connections, %u calls, %zu paused, fd %d/%d (%s)\n",
                mesh_grpc_server_nconns(server), mesh_grpc_server_ncalls(server), npaused,
                lowest_free_fd(), fd_mark, link);
        abort();
    }
    return 0;
}
