/* tests/unit/failmalloc.c — failing-allocation runs (nghttp2's
 * tests/failmalloc_test.c, curl's torture mode): each scenario is run again
 * and again with its Nth allocation failing, N = 1, 2, … until a run no
 * longer reaches N allocations. A run passes when it does not crash, returns
 * cleanly (success, or the error it was designed to give), and leaves as
 * many allocations outstanding as it found (no leak), and no fd open.
 *
 * malloc, calloc, realloc, free and the aligned variants are defined here,
 * so they replace glibc's for the whole process (ELF interposition): the
 * allocations of nghttp2, protobuf-c, libyaml and SQLite fail too. Plain
 * builds only: ASan brings its own allocator (tests.cmake leaves this test
 * out with MESH_SANITIZE or MESH_FUZZ).
 *
 * Usage: failmalloc [SCENARIO…] (all but store_open by default; see
 * scenarios[] for the names). Prints one line
 * per scenario: "NAME: K allocation points, K failed cleanly".
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "collector.h"
#include "inject.h"
#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt.h"
#include "mesh/evt_pb.h"
#include "mesh/grpc.h"
#include "mesh/h1.h"
#include "mesh/httpd.h"
#include "mesh/loop.h"
#include "mesh/tap/v1/tap.pb-c.h"
#include "mesh/tapsend.h"
#include "pxharness.h"
#include "store.h"

/* ---- the allocator ------------------------------------------------------------------------ */

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);
void *__libc_memalign(size_t align, size_t size);

static long fm_countdown = -1; /* allocations left before the failing one; -1: none fails */
static long fm_seen;           /* allocations asked for since fm_arm() */
static long fm_live;           /* allocations outstanding */
static int fm_hit;             /* the failing allocation happened */

static int fm_fail(void)
{
    fm_seen++;
    if (fm_countdown < 0)
        return 0;
    if (fm_countdown-- > 0)
        return 0;
    fm_hit = 1; /* only the Nth fails: later ones succeed again, as in curl's torture */
    fm_countdown = -1;
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *ptr, size_t size);
void free(void *ptr);
void *memalign(size_t align, size_t size);
void *aligned_alloc(size_t align, size_t size);
int posix_memalign(void **out, size_t align, size_t size);

void *malloc(size_t size)
{
    if (fm_fail())
        return NULL;
    void *p = __libc_malloc(size);
    fm_live += p != NULL;
    return p;
}

void *calloc(size_t n, size_t size)
{
    if (fm_fail())
        return NULL;
    void *p = __libc_calloc(n, size);
    fm_live += p != NULL;
    return p;
}

void *realloc(void *ptr, size_t size)
{
    if (ptr != NULL && size == 0) {
        fm_live--;
        __libc_free(ptr);
        return NULL;
    }
    if (fm_fail())
        return NULL;
    void *p = __libc_realloc(ptr, size);
    fm_live += p != NULL && ptr == NULL;
    return p;
}

void free(void *ptr)
{
    if (ptr == NULL)
        return;
    fm_live--;
    __libc_free(ptr);
}

void *memalign(size_t align, size_t size)
{
    if (fm_fail())
        return NULL;
    void *p = __libc_memalign(align, size);
    fm_live += p != NULL;
    return p;
}

void *aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p = memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

/* ---- scenarios ---------------------------------------------------------------------------- */

/* Each returns 0 when it did its work, 1 when it stopped at an error it
 * reported as it should (MESH_ENOMEM, a refused request…), and aborts on
 * anything else. Everything it allocates is freed before it returns. */

#define EXPECT(cond)                                                                  \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: %s (allocation %ld failed)\n", __FILE__, __LINE__, \
                    #cond, fm_fail_at);                                               \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static long fm_fail_at;

static int sc_h1(void)
{
    static const char req[] =
        "POST /emojivoto.v1.VotingService/VoteDoughnut?x=1 HTTP/1.1\r\n"
        "Host: web.emojivoto:80\r\nUser-Agent: failmalloc\r\nTransfer-Encoding: chunked\r\n"
        "Accept: */*\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n"
        "GET /api/list HTTP/1.1\r\nHost: web\r\n\r\n";
    static const char rsp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    int result = 0;
    for (int type = 0; type < 2; type++) {
        struct mesh_h1_parser p;
        const char *in = type == 0 ? req : rsp;
        size_t len = strlen(in), off = 0;
        mesh_h1_parser_init(&p, type == 0 ? MESH_H1_REQUEST : MESH_H1_RESPONSE, 4096, 0);
        while (off < len) {
            size_t slice = len - off < 7 ? len - off : 7, used = 0;
            int ev = mesh_h1_parse(&p, (const uint8_t *)in + off, slice, &used, NULL);
            off += used;
            if (ev == MESH_ENOMEM || ev == MESH_ETOOBIG) {
                result = 1;
                break;
            }
            EXPECT(ev >= 0);
            if (ev == MESH_H1_HEAD)
                EXPECT(p.msg.method != NULL || type == 1);
        }
        mesh_h1_parser_free(&p);
    }
    return result;
}

static void sample_evt(struct mesh_evt *e, int i)
{
    static char id[32];
    mesh_evt_init(e);
    e->ts_us = 1700000000000000ull + (uint64_t)i * 1000;
    e->direction = MESH_DIR_OUTBOUND;
    e->src = "10.0.0.1:40000";
    e->dst = "10.0.0.2:8080";
    e->src_labels.ns = "emojivoto";
    e->src_labels.deploy = "web";
    e->dst_labels.ns = "emojivoto";
    e->dst_labels.deploy = "voting";
    e->dst_labels.pod = "voting-0";
    e->proto = MESH_PROTO_GRPC;
    e->method = "POST";
    e->scheme = "http";
    e->authority = "voting-svc.emojivoto:8080";
    e->path = i % 2 ? "/emojivoto.v1.VotingService/VoteDoughnut" : "/emojivoto.v1.EmojiService/ListAll";
    e->status = 200;
    e->grpc_status = i % 3 == 0 ? 2 : 0;
    e->latency_us = 900 + i;
    e->duration_us = 1200 + i;
    e->req_bytes = 5;
    e->rsp_bytes = 17;
    snprintf(id, sizeof(id), "%d:%d", 1 + i / 4, 1 + 2 * (i % 4));
    e->id = id;
}

static int sc_evt(void)
{
    struct mesh_evt e, back;
    struct mesh_buf b;
    struct mesh_evt_pb pb;
    sample_evt(&e, 1);
    mesh_buf_init(&b, 4096);
    int rv = mesh_evt_pack(&e, &b);
    EXPECT(rv == 0 || rv == MESH_ENOMEM);
    if (rv == 0) {
        rv = mesh_evt_unpack((const uint8_t *)b.data, b.len, &pb, &back);
        /* protobuf-c says "not a message" when it runs out of memory */
        EXPECT(rv == 0 || rv == MESH_EPROTO || rv == MESH_ENOMEM);
        if (rv == 0)
            EXPECT(strcmp(back.path, e.path) == 0 && back.grpc_status == e.grpc_status);
        mesh_evt_pb_free(&pb);
    }
    struct mesh_evt_copy copy;
    int rv2 = mesh_evt_copy(&copy, &e);
    EXPECT(rv2 == 0 || rv2 == MESH_ENOMEM);
    if (rv2 == 0) {
        EXPECT(strcmp(copy.evt.authority, e.authority) == 0);
        mesh_evt_copy_free(&copy);
    }
    mesh_buf_free(&b);
    return rv != 0 || rv2 != 0;
}

static int stop_loop(struct mesh_loop *loop, int64_t id, void *ctx)
{
    mesh_loop_stop(loop);
    return MESH_TIMER_DONE;
}

/* Runs |loop| for about |ms|. 1 when the timer could not be armed. */
static int run_for(struct mesh_loop *loop, unsigned ms)
{
    int64_t id = mesh_loop_add_timer(loop, ms, stop_loop, NULL);
    if (id < 0)
        return 1;
    mesh_loop_run(loop);
    return 0;
}

/* tapsend: batching and sealing, with no collector listening (127.0.0.1:1). */
static int sc_tapsend(void)
{
    char err[256];
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL)
        return 1;
    struct mesh_tapsend_opts opts = {
        .addr = "127.0.0.1:1",
        .sender_id = "failmalloc/1",
        .batch_events = 3,
        .max_batches = 3,
        .flush_ms = 1,
    };
    int result = 0;
    struct mesh_tapsend *ts = mesh_tapsend_new(loop, &opts, err, sizeof(err));
    if (ts == NULL) {
        result = 1;
        goto out;
    }
    size_t dropped = 0;
    for (int i = 0; i < 10; i++) {
        struct mesh_evt e;
        sample_evt(&e, i);
        if (mesh_tapsend_add(ts, &e) != 0)
            dropped++;
    }
    mesh_tapsend_flush(ts);
    result |= run_for(loop, 3);
    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(ts, &c);
    EXPECT(c.added + c.dropped == 10 || c.added + dropped == 10);
    EXPECT(mesh_tapsend_unacked(ts) <= 3);
    result |= c.dropped > 1 || dropped > 1; /* 9 fit in three batches; one more is dropped */
    mesh_tapsend_free(ts);
out:
    mesh_loop_free(loop);
    return result;
}

/* tapsend to an in-process Collector.Report on the same loop: the gRPC
 * client and server, batches sent and acknowledged. */
static void ack_on_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Mesh__Tap__V1__ReportRequest *req = mesh__tap__v1__report_request__unpack(NULL, len, msg);
    if (req == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_RESOURCE_EXHAUSTED, "cannot unpack");
        return;
    }
    Mesh__Tap__V1__ReportAck ack = MESH__TAP__V1__REPORT_ACK__INIT;
    ack.sender_id = req->sender_id;
    ack.has_seq = ack.has_stored = 1;
    ack.seq = req->seq;
    ack.stored = (uint32_t)req->n_events;
    uint8_t buf[512];
    size_t n = mesh__tap__v1__report_ack__get_packed_size(&ack);
    if (n <= sizeof(buf)) {
        mesh__tap__v1__report_ack__pack(&ack, buf);
        (void)mesh_grpc_call_send(call, buf, n);
    }
    mesh__tap__v1__report_request__free_unpacked(req, NULL);
}

static void ack_on_half_close(struct mesh_grpc_call *call, void *ctx)
{
    mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
}

static const struct mesh_grpc_handler ack_handler = {
    .on_message = ack_on_message,
    .on_half_close = ack_on_half_close,
};

static int all_acked(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_tapsend *ts = ctx;
    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(ts, &c);
    if (mesh_tapsend_unacked(ts) == 0 && c.acked > 0) {
        mesh_loop_stop(loop);
        return MESH_TIMER_DONE;
    }
    return 1;
}

static int sc_tapsend_collector(void)
{
    char err[256], where[64];
    int result = 1;
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL)
        return 1;
    const struct mesh_grpc_method methods[] = {
        {"/mesh.tap.v1.Collector/Report", MESH_GRPC_BIDI, &ack_handler, NULL},
    };
    struct mesh_grpc_server *srv =
        mesh_grpc_server_new(loop, "127.0.0.1:0", methods, 1, NULL, err, sizeof(err));
    struct mesh_tapsend *ts = NULL;
    if (srv == NULL)
        goto out;
    snprintf(where, sizeof(where), "127.0.0.1:%d", mesh_grpc_server_port(srv));
    struct mesh_tapsend_opts opts = {
        .addr = where, .sender_id = "failmalloc/2", .batch_events = 4, .flush_ms = 1,
    };
    if ((ts = mesh_tapsend_new(loop, &opts, err, sizeof(err))) == NULL)
        goto out;
    for (int i = 0; i < 10; i++) {
        struct mesh_evt e;
        sample_evt(&e, i);
        (void)mesh_tapsend_add(ts, &e);
    }
    mesh_tapsend_flush(ts);
    if (mesh_loop_add_timer(loop, 1, all_acked, ts) < 0 || run_for(loop, 50) != 0)
        goto out;
    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(ts, &c);
    result = !(c.acked == 10 && mesh_tapsend_unacked(ts) == 0);
out:
    if (ts != NULL)
        mesh_tapsend_free(ts);
    if (srv != NULL)
        mesh_grpc_server_free(srv);
    mesh_loop_free(loop);
    return result;
}

/* The store ingesting one ReportRequest (the collector's path) into a new file. */
static char store_path[256];

static int put_varint(struct mesh_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return mesh_buf_append(b, tmp, n);
}

static struct mesh_buf report; /* made once, before any run: not counted */

static void make_report(void)
{
    struct mesh_buf ev;
    mesh_buf_init(&report, 1u << 20);
    mesh_buf_init(&ev, 1u << 20);
    static const char sender[] = "failmalloc/1";
    put_varint(&report, 1 << 3 | 2);
    put_varint(&report, sizeof(sender) - 1);
    mesh_buf_append(&report, sender, sizeof(sender) - 1);
    put_varint(&report, 2 << 3);
    put_varint(&report, 7);
    for (int i = 0; i < 6; i++) {
        struct mesh_evt e;
        sample_evt(&e, i);
        mesh_buf_reset(&ev);
        if (mesh_evt_pack(&e, &ev) != 0)
            abort();
        put_varint(&report, 3 << 3 | 2);
        put_varint(&report, ev.len);
        mesh_buf_append(&report, ev.data, ev.len);
    }
    mesh_buf_free(&ev);
}

static void unlink_store(void)
{
    char p[300];
    unlink(store_path);
    snprintf(p, sizeof(p), "%s-wal", store_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", store_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-journal", store_path);
    unlink(p);
}

/* |full|: the open (schema creation: ~11000 allocation points, minutes)
 * fails too; else only the ingest and the rollup flush do. */
static int store_run(int full)
{
    char err[512];
    struct mesh_store *st = NULL;
    unlink_store();
    long armed = fm_countdown;
    if (!full)
        fm_countdown = -1;
    int rv = mesh_store_open(store_path, NULL, &st, err, sizeof(err));
    if (!full)
        fm_countdown = armed;
    if (rv != 0) {
        EXPECT(st == NULL);
        EXPECT(rv == MESH_ENOMEM || rv == MESH_EIO || rv == MESH_EFORMAT);
        return 1;
    }
    size_t stored = 0;
    int dup = 0;
    rv = mesh_collector_ingest_report(st, (const uint8_t *)report.data, report.len, &stored, &dup);
    EXPECT(rv == 0 || rv == MESH_ENOMEM || rv == MESH_EIO);
    if (rv == 0)
        EXPECT(stored == 6 && !dup);
    int rv2 = mesh_store_flush(st);
    EXPECT(rv2 == 0 || rv2 == MESH_ENOMEM || rv2 == MESH_EIO);
    mesh_store_close(st);
    return rv != 0 || rv2 != 0;
}

static int sc_store(void)
{
    return store_run(0);
}

static int sc_store_open(void)
{
    return store_run(1);
}

/* The proxy's HTTP/1 and HTTP/2 paths on one exchange each, through the
 * fuzz harness (tests/fuzz/pxharness.h), on a proxy made afresh each run. */
static int proxy_run(const uint8_t *in, size_t len, void (*serve)(struct px_conn *conn),
                     uint64_t events)
{
    int rv = pxh_run(in, len, serve);
    /* the pipelined second HTTP/1 request may go unanswered: the client
     * half-closed while the first was in flight */
    uint64_t done = pxh.px != NULL ? pxh.px->tap_off_events : 0;
    if (fm_countdown < 0 && !fm_hit && rv == 0 && done < events) {
        fprintf(stderr, "proxy: %llu requests done, expected %llu\n", (unsigned long long)done,
                (unsigned long long)events);
        rv = 1;
    }
    pxh_fini();
    return rv != 0;
}

static void put_record(struct mesh_buf *b, int dir, const void *data, size_t len)
{
    uint8_t hd[3] = {(uint8_t)dir, (uint8_t)(len >> 8), (uint8_t)len};
    mesh_buf_append(b, hd, 3);
    mesh_buf_append(b, data, len);
}

static struct mesh_buf h1_input, h2_input; /* made once, before any run */

static void make_proxy_inputs(void)
{
    static const char req[] = "POST /api/vote?choice=joy HTTP/1.1\r\nHost: web.emojivoto:80\r\n"
                              "Content-Length: 3\r\nmesh-src: emojivoto/vote-bot/vb-0\r\n\r\nabc"
                              "GET /api/list HTTP/1.1\r\nHost: web.emojivoto\r\n\r\n";
    static const char rsp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                              "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nnot\r\n0\r\n\r\n";
    mesh_buf_init(&h1_input, 1u << 20);
    mesh_buf_append(&h1_input, "\0", 1);
    put_record(&h1_input, 0, req, sizeof(req) - 1);
    put_record(&h1_input, 1, rsp, sizeof(rsp) - 1);

    /* h2: the client preface, SETTINGS, one GET (HPACK: static-table
     * indexes and literals), and the upstream's SETTINGS, a 200 and DATA */
    static const uint8_t c2s[] =
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        "\x00\x00\x00\x04\x00\x00\x00\x00\x00"                  /* SETTINGS */
        "\x00\x00\x15\x01\x05\x00\x00\x00\x01"                  /* HEADERS, END_STREAM|END_HEADERS */
        "\x82\x86\x84"                                          /* GET, http, / */
        "\x01\x10web.emojivoto:80"                               /* :authority (literal) */
        "\x00\x00\x00\x04\x01\x00\x00\x00\x00";                 /* SETTINGS ACK */
    static const uint8_t s2c[] =
        "\x00\x00\x00\x04\x00\x00\x00\x00\x00"                  /* SETTINGS */
        "\x00\x00\x00\x04\x01\x00\x00\x00\x00"                  /* SETTINGS ACK */
        "\x00\x00\x01\x01\x04\x00\x00\x00\x01\x88"               /* HEADERS :status 200 */
        "\x00\x00\x02\x00\x01\x00\x00\x00\x01ok";               /* DATA, END_STREAM */
    mesh_buf_init(&h2_input, 1u << 20);
    mesh_buf_append(&h2_input, "\0", 1);
    put_record(&h2_input, 0, c2s, sizeof(c2s) - 1);
    put_record(&h2_input, 1, s2c, sizeof(s2c) - 1);
}

static int sc_proxy_h1(void)
{
    return proxy_run((const uint8_t *)h1_input.data, h1_input.len, px_h1_serve, 1);
}

static int sc_proxy_h2(void)
{
    return proxy_run((const uint8_t *)h2_input.data, h2_input.len, px_h2_serve, 1);
}

/* httpd: one GET over loopback, answered by a handler. */
static void httpd_handler(struct mesh_httpd_req *req, void *ctx)
{
    mesh_httpd_add_header(req, "X-Mesh", "failmalloc");
    mesh_httpd_respond(req, 200, "text/plain", "ok\n", 3);
}

struct http_client {
    int fd;
    char got[1024];
    size_t len;
    int done;
};

static void on_http_client(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct http_client *c = ctx;
    ssize_t n = read(fd, c->got + c->len, sizeof(c->got) - 1 - c->len);
    if (n > 0)
        c->len += (size_t)n;
    if (n == 0 || (n < 0 && errno != EAGAIN) || memmem(c->got, c->len, "ok\n", 3) != NULL) {
        c->done = 1;
        mesh_loop_stop(loop);
    }
}

static int sc_httpd(void)
{
    char err[256];
    int result = 1;
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL)
        return 1;
    struct mesh_httpd_opts opts = {.handler = httpd_handler};
    struct mesh_httpd *srv = mesh_httpd_new(loop, "127.0.0.1:0", &opts, err, sizeof(err));
    struct http_client c = {.fd = -1};
    if (srv == NULL)
        goto out;
    struct mesh_addr addr;
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1:%d", mesh_httpd_port(srv));
    if (mesh_addr_parse(where, &addr, err, sizeof(err)) != 0)
        goto out;
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&addr.ss, addr.len) != 0)
        goto out;
    static const char get[] = "GET /metrics?x=1 HTTP/1.1\r\nHost: admin\r\nAccept: */*\r\n\r\n";
    if (write(c.fd, get, sizeof(get) - 1) != (ssize_t)(sizeof(get) - 1))
        goto out;
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    if (mesh_loop_add_fd(loop, c.fd, MESH_READ, on_http_client, &c) != 0)
        goto out;
    if (run_for(loop, 200) != 0)
        goto out;
    mesh_loop_del_fd(loop, c.fd);
    result = !(c.done && c.len > 12 && memcmp(c.got, "HTTP/1.1 200", 12) == 0);
out:
    if (c.fd >= 0) {
        /* RST, not FIN: thousands of runs leave no TIME_WAIT behind */
        struct linger lg = {1, 0};
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c.fd);
    }
    mesh_httpd_free(srv);
    mesh_loop_free(loop);
    return result;
}

/* mesh inject on a small Deployment. */
static int sc_inject(void)
{
    static const char yml[] = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                              "spec:\n  template:\n    spec:\n      containers:\n"
                              "      - name: web\n        image: web:1\n";
    const struct mesh_inject_opts opts = {"ghcr.io/mesh/mesh:0.1.0", "collector.mesh:8088", 2102};
    struct mesh_buf out, notes;
    char err[256];
    mesh_buf_init(&out, 1u << 20);
    mesh_buf_init(&notes, 1u << 20);
    int rv = mesh_inject(&opts, yml, sizeof(yml) - 1, &out, &notes, err, sizeof(err));
    EXPECT(rv == 0 || rv == MESH_ENOMEM || rv == MESH_EFORMAT);
    if (rv == 0)
        EXPECT(memmem(out.data, out.len, "mesh-proxy", 10) != NULL);
    mesh_buf_free(&out);
    mesh_buf_free(&notes);
    return rv != 0;
}

/* ---- the runs ----------------------------------------------------------------------------- */

struct scenario {
    const char *name;
    int (*run)(void);
    int by_name_only; /* too long for ctest: run when named */
};

static const struct scenario scenarios[] = {
    {"h1", sc_h1, 0},           {"evt", sc_evt, 0},           {"tapsend", sc_tapsend, 0},
    {"tapsend_collector", sc_tapsend_collector, 0},
    {"store", sc_store, 0},     {"store_open", sc_store_open, 1},
    {"httpd", sc_httpd, 0},     {"inject", sc_inject, 0},     {"proxy_h1", sc_proxy_h1, 0},
    {"proxy_h2", sc_proxy_h2, 0},
};

#define MAX_POINTS 100000

static int verbose; /* FAILMALLOC_VERBOSE set: one line per run */

/* The lowest fd number free now: an fd a run left open moves it. */
static int lowest_free_fd(void)
{
    int fd = dup(0);
    if (fd >= 0)
        close(fd);
    return fd;
}

static int run_scenario(const struct scenario *sc)
{
    /* once without failures: lazily made globals (SQLite's, stdio's) are made */
    long before = fm_live;
    fm_fail_at = 0;
    if (sc->run() != 0) {
        fprintf(stderr, "%s: fails without a failing allocation\n", sc->name);
        return 1;
    }
    long warm_leak = fm_live - before;
    int bad = 0;
    long n;
    for (n = 1; n <= MAX_POINTS; n++) {
        before = fm_live;
        int fd_before = lowest_free_fd();
        fm_hit = 0;
        fm_seen = 0;
        fm_fail_at = n;
        fm_countdown = n - 1;
        if (verbose)
            fprintf(stderr, "%s: allocation %ld fails\n", sc->name, n);
        int rv = sc->run();
        fm_countdown = -1;
        long leaked = fm_live - before;
        if (leaked != 0) {
            fprintf(stderr, "%s: allocation %ld failing leaks %ld allocation(s)\n", sc->name, n,
                    leaked);
            bad++;
        }
        if (lowest_free_fd() != fd_before) {
            fprintf(stderr, "%s: allocation %ld failing leaks an fd\n", sc->name, n);
            bad++;
        }
        if (!fm_hit) {
            if (rv != 0) {
                fprintf(stderr, "%s: fails with no allocation failing\n", sc->name);
                bad++;
            }
            break;
        }
    }
    printf("%s: %ld allocation points, %ld failed cleanly%s\n", sc->name, n - 1,
           n - 1 - bad, warm_leak != 0 ? " (warm-up kept globals)" : "");
    return bad != 0;
}

int main(int argc, char **argv)
{
    snprintf(store_path, sizeof(store_path), "%s/mesh-failmalloc-%ld.db",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
    setvbuf(stdout, NULL, _IOLBF, 0);
    verbose = getenv("FAILMALLOC_VERBOSE") != NULL;
    make_report();
    make_proxy_inputs();
    int failed = 0;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        int chosen = argc == 1 && !scenarios[i].by_name_only;
        for (int j = 1; j < argc; j++)
            chosen |= strcmp(argv[j], scenarios[i].name) == 0;
        if (chosen)
            failed += run_scenario(&scenarios[i]);
    }
    unlink_store();
    mesh_buf_free(&report);
    mesh_buf_free(&h1_input);
    mesh_buf_free(&h2_input);
    printf("%s\n", failed ? "FAILED" : "all scenarios failed cleanly at every allocation");
    return failed != 0;
}
