/* tests/unit/test_h2.c — the HTTP/2 replay decoder (replay/h2.c).
 *
 * Real HTTP/2: an nghttp2 client and server session talk in memory; every
 * flush of one side is recorded as a capture segment (direction, time,
 * bytes), then the capture is replayed into mesh_h2_dec and the events are
 * checked field by field. Hand-made frames cover what a conforming peer
 * never sends. `test_h2 --seeds DIR` writes the captures as fuzz seeds
 * (tests/fuzz/records.h format).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nghttp2/nghttp2.h>

#include "dec.h"
#include "mesh/err.h"
#include "mesh/evt.h"
#include "mesh/hdrcap.h"
#include "test.h"

/* ---- captures -------------------------------------------------------------- */

enum { SEG_DATA, SEG_GAP, SEG_FIN, SEG_RST };

struct seg {
    int kind, dir;
    uint64_t ts;
    size_t off, len;
};

struct capture {
    uint8_t *bytes;
    size_t len, alloc;
    struct seg *seg;
    size_t nseg, aseg;
};

static void cap_append(struct capture *cap, const uint8_t *data, size_t len)
{
    if (cap->len + len > cap->alloc) {
        size_t alloc = cap->alloc ? cap->alloc : 4096;
        while (alloc < cap->len + len)
            alloc *= 2;
        cap->bytes = realloc(cap->bytes, alloc);
        if (cap->bytes == NULL)
            abort();
        cap->alloc = alloc;
    }
    memcpy(cap->bytes + cap->len, data, len);
    cap->len += len;
}

static void cap_seg(struct capture *cap, int kind, int dir, uint64_t ts, size_t off, size_t len)
{
    if (cap->nseg == cap->aseg) {
        cap->aseg = cap->aseg ? cap->aseg * 2 : 64;
        cap->seg = realloc(cap->seg, cap->aseg * sizeof(*cap->seg));
        if (cap->seg == NULL)
            abort();
    }
    cap->seg[cap->nseg++] = (struct seg){kind, dir, ts, off, len};
}

static void cap_free(struct capture *cap)
{
    free(cap->bytes);
    free(cap->seg);
    memset(cap, 0, sizeof(*cap));
}

/* Counts the frames of |type| in direction |dir| that have all of |flags|. */
static int count_frames(const struct capture *cap, int dir, uint8_t type, uint8_t flags)
{
    uint8_t *all = malloc(cap->len + 1);
    size_t len = 0, off = dir == MESH_C2S ? 24 : 0;
    int n = 0;
    for (size_t i = 0; i < cap->nseg; i++)
        if (cap->seg[i].kind == SEG_DATA && cap->seg[i].dir == dir) {
            memcpy(all + len, cap->bytes + cap->seg[i].off, cap->seg[i].len);
            len += cap->seg[i].len;
        }
    while (off + 9 <= len) {
        size_t flen = (size_t)all[off] << 16 | (size_t)all[off + 1] << 8 | all[off + 2];
        if (all[off + 3] == type && (all[off + 4] & flags) == flags)
            n++;
        off += 9 + flen;
    }
    free(all);
    return n;
}

/* ---- two nghttp2 sessions connected in memory ---------------------------- */

#define MAX_BODIES 2048

struct body {
    size_t left;
    int hold;           /* answer NGHTTP2_ERR_DEFERRED until released */
    int grpc;           /* >= 0: end with trailers carrying this grpc-status */
    int plain_trailer;  /* end with a trailer that is not gRPC */
};

struct link {
    nghttp2_session *client, *server;
    struct capture cap;
    struct body body[MAX_BODIES];
    size_t nbody;
    size_t pad;    /* padding added to every HEADERS and DATA frame */
    int no_index;  /* send every header field as never-indexed literal */
};

static ssize_t body_read(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct body *b = source->ptr;
    if (b->hold)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = length < b->left ? length : b->left;
    memset(buf, 'b', n);
    b->left -= n;
    if (b->left == 0) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (b->grpc >= 0) {
            char code[16];
            snprintf(code, sizeof(code), "%d", b->grpc);
            nghttp2_nv trailer[] = {
                {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)"grpc-message", (uint8_t *)"msg", 12, 3, NGHTTP2_NV_FLAG_NONE},
            };
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(session, sid, trailer, 2);
        } else if (b->plain_trailer) {
            nghttp2_nv trailer[] = {
                {(uint8_t *)"x-checksum", (uint8_t *)"abc", 10, 3, NGHTTP2_NV_FLAG_NONE},
            };
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(session, sid, trailer, 1);
        }
    }
    return (ssize_t)n;
}

static ssize_t select_padding(nghttp2_session *session, const nghttp2_frame *frame,
                              size_t max_payloadlen, void *user_data)
{
    struct link *l = user_data;
    size_t want = frame->hd.length + l->pad;
    return (ssize_t)(want < max_payloadlen ? want : max_payloadlen);
}

/* |client_table|/|server_table|: SETTINGS_HEADER_TABLE_SIZE each side sends
 * (0: none), and with |server_table| the server's encoder may use that much. */
static void link_init(struct link *l, size_t pad, uint32_t client_table, uint32_t server_table)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    memset(l, 0, sizeof(*l));
    l->pad = pad;
    nghttp2_session_callbacks_new(&cbs);
    if (pad > 0)
        nghttp2_session_callbacks_set_select_padding_callback(cbs, select_padding);
    nghttp2_option_new(&opt);
    if (server_table > 0)
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, server_table);
    if (nghttp2_session_client_new(&l->client, cbs, l) != 0 ||
        nghttp2_session_server_new2(&l->server, cbs, l, opt) != 0)
        abort();
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry civ = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, client_table};
    nghttp2_settings_entry siv = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, server_table};
    nghttp2_submit_settings(l->client, NGHTTP2_FLAG_NONE, &civ, client_table ? 1 : 0);
    nghttp2_submit_settings(l->server, NGHTTP2_FLAG_NONE, &siv, server_table ? 1 : 0);
}

static void link_free(struct link *l)
{
    nghttp2_session_del(l->client);
    nghttp2_session_del(l->server);
    cap_free(&l->cap);
}

/* Sends what one side has to say at |ts|, as one capture segment; returns
 * the number of bytes. */
static size_t flush(struct link *l, int dir, uint64_t ts)
{
    nghttp2_session *from = dir == MESH_C2S ? l->client : l->server;
    nghttp2_session *to = dir == MESH_C2S ? l->server : l->client;
    size_t start = l->cap.len;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(from, &data);
        if (n < 0)
            abort();
        if (n == 0)
            break;
        cap_append(&l->cap, data, (size_t)n);
        if (nghttp2_session_mem_recv(to, data, (size_t)n) != n) {
            fprintf(stderr, "nghttp2 peer refused what was sent\n");
            abort();
        }
    }
    if (l->cap.len > start)
        cap_seg(&l->cap, SEG_DATA, dir, ts, start, l->cap.len - start);
    return l->cap.len - start;
}

/* Flushes both sides until both are quiet, advancing time by 10 µs a turn. */
static void pump(struct link *l, uint64_t ts)
{
    while (flush(l, MESH_C2S, ts) + flush(l, MESH_S2C, ts + 5) > 0)
        ts += 10;
}

static nghttp2_nv mknv(const struct link *l, const char *name, const char *value)
{
    nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                     l->no_index ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE};
    return nv;
}

static struct body *body_new(struct link *l, size_t len, int hold, int grpc)
{
    if (l->nbody == MAX_BODIES)
        abort();
    struct body *b = &l->body[l->nbody++];
    *b = (struct body){len, hold, grpc, 0};
    return b;
}

#define MAX_NV 16

/* Submits a request for http://example.org|path|; |extra| are "name", "value"
 * pairs ending with NULL. A body of |body_len| bytes is held with |hold|. */
static int32_t request_ex(struct link *l, const char *method, const char *path, size_t body_len,
                          int hold, struct body **body, const char *const *extra)
{
    nghttp2_nv nva[MAX_NV];
    size_t n = 0;
    nva[n++] = mknv(l, ":method", method);
    nva[n++] = mknv(l, ":scheme", "http");
    nva[n++] = mknv(l, ":authority", "example.org");
    nva[n++] = mknv(l, ":path", path);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
        nva[n++] = mknv(l, extra[i], extra[i + 1]);
    nghttp2_data_provider prd = {.read_callback = body_read};
    struct body *b = NULL;
    if (body_len > 0) {
        b = body_new(l, body_len, hold, -1);
        prd.source.ptr = b;
    }
    if (body != NULL)
        *body = b;
    int32_t sid = nghttp2_submit_request(l->client, NULL, nva, n, b ? &prd : NULL, NULL);
    if (sid < 0)
        abort();
    return sid;
}

static int32_t request(struct link *l, const char *method, const char *path, size_t body_len)
{
    return request_ex(l, method, path, body_len, 0, NULL, NULL);
}

static const char *const grpc_request_headers[] = {"content-type", "application/grpc", "te", "trailers", NULL};

/* Submits the response on |sid|: |status|, a body of |body_len| bytes (held
 * with |hold|), then trailers with grpc-status |grpc| when it is >= 0. */
static struct body *respond_ex(struct link *l, int32_t sid, int status, size_t body_len, int grpc,
                               int hold, const char *const *extra)
{
    nghttp2_nv nva[MAX_NV];
    char code[8];
    size_t n = 0;
    snprintf(code, sizeof(code), "%d", status);
    nva[n++] = mknv(l, ":status", code);
    if (grpc >= 0)
        nva[n++] = mknv(l, "content-type", "application/grpc");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
        nva[n++] = mknv(l, extra[i], extra[i + 1]);
    struct body *b = body_new(l, body_len, hold, grpc);
    nghttp2_data_provider prd = {.source.ptr = b, .read_callback = body_read};
    if (nghttp2_submit_response(l->server, sid, nva, n, &prd) != 0)
        abort();
    return b;
}

static struct body *respond(struct link *l, int32_t sid, int status, size_t body_len, int grpc, int hold)
{
    return respond_ex(l, sid, status, body_len, grpc, hold, NULL);
}

static void release(struct link *l, int dir, int32_t sid, struct body *b)
{
    b->hold = 0;
    nghttp2_session_resume_data(dir == MESH_C2S ? l->client : l->server, sid);
}

/* ---- replaying a capture into the decoder ------------------------------- */

#define MAX_EVENTS 1200

struct got {
    struct mesh_evt_copy ev[MAX_EVENTS];
    uint32_t sid[MAX_EVENTS];
    size_t seg_at[MAX_EVENTS]; /* segment being fed when it was emitted */
    size_t n;
    int errors;          /* data() calls that failed */
    int last_rv;
    const char *last_err;
};

static struct got got_a, got_b;
static size_t replay_seg; /* segment replay() is feeding; nseg during close() */

static void got_sink(void *ctx, struct mesh_evt *evt, uint32_t sid)
{
    struct got *got = ctx;
    if (got->n == MAX_EVENTS) {
        fprintf(stderr, "too many events\n");
        abort();
    }
    if (mesh_evt_copy(&got->ev[got->n], evt) != 0)
        abort();
    got->seg_at[got->n] = replay_seg;
    got->sid[got->n++] = sid;
}

static void got_reset(struct got *got)
{
    for (size_t i = 0; i < got->n; i++)
        mesh_evt_copy_free(&got->ev[i]);
    got->n = 0;
    got->errors = 0;
    got->last_rv = 0;
    got->last_err = NULL;
}

/* The event of stream |sid|, NULL if none (and a failure if more than one). */
static const struct mesh_evt *got_find(const struct got *got, uint32_t sid)
{
    const struct mesh_evt *found = NULL;
    for (size_t i = 0; i < got->n; i++)
        if (got->sid[i] == sid) {
            CHECK(found == NULL);
            found = &got->ev[i].evt;
        }
    return found;
}

struct how {
    int midstream;
    size_t chunk;  /* bytes per data() call; 0: a segment at a time */
    size_t from;   /* first segment fed */
    const struct mesh_hdr_sel *hdrs; /* --tap-header; NULL: none */
};

static struct mesh_dec_stats replay(const struct capture *cap, const struct how *how, struct got *got)
{
    struct mesh_dec_stats stats = {0};
    got_reset(got);
    void *dec = mesh_h2_dec.open(got_sink, got, how->midstream, how->hdrs, &stats);
    CHECK(dec != NULL);
    if (dec == NULL)
        return stats;
    uint64_t ts = 0;
    for (size_t i = how->from; i < cap->nseg; i++) {
        const struct seg *seg = &cap->seg[i];
        ts = seg->ts;
        replay_seg = i;
        switch (seg->kind) {
        case SEG_DATA: {
            size_t chunk = how->chunk ? how->chunk : seg->len;
            for (size_t off = 0; off < seg->len; off += chunk) {
                size_t n = seg->len - off < chunk ? seg->len - off : chunk;
                const char *err = NULL;
                int rv = mesh_h2_dec.data(dec, seg->dir, cap->bytes + seg->off + off, n, seg->ts, &err);
                if (rv != 0) {
                    got->errors++;
                    got->last_rv = rv;
                    got->last_err = err;
                }
            }
            break;
        }
        case SEG_GAP:
            mesh_h2_dec.gap(dec, seg->dir, seg->len, seg->ts);
            break;
        default:
            mesh_h2_dec.fin(dec, seg->dir, seg->ts, seg->kind == SEG_RST);
            break;
        }
    }
    replay_seg = cap->nseg;
    mesh_h2_dec.close(dec, ts + 1000);
    return stats;
}

static struct mesh_dec_stats replay_whole(const struct capture *cap, struct got *got)
{
    struct how how = {0, 0, 0, NULL};
    return replay(cap, &how, got);
}

/* Checks every field the decoder fills; reports the caller's line. */
static void check_evt(int line, const struct got *got, uint32_t sid, enum mesh_proto proto,
                      const char *method, const char *path, int status, int grpc, int64_t reset,
                      const char *error, uint64_t ts, int64_t latency, int64_t duration,
                      uint64_t req_bytes, uint64_t rsp_bytes)
{
    int before = test_failed_;
    const struct mesh_evt *e = got_find(got, sid);
    CHECK(e != NULL);
    if (e != NULL) {
        CHECK_EQ_INT(e->proto, proto);
        CHECK_EQ_STR(e->method, method);
        CHECK_EQ_STR(e->scheme, method ? "http" : NULL);
        CHECK_EQ_STR(e->authority, method ? "example.org" : NULL);
        CHECK_EQ_STR(e->path, path);
        CHECK_EQ_INT(e->status, status);
        CHECK_EQ_INT(e->grpc_status, grpc);
        CHECK_EQ_INT(e->reset, reset);
        CHECK_EQ_STR(e->error, error);
        CHECK_EQ_INT(e->ts_us, ts);
        CHECK_EQ_INT(e->latency_us, latency);
        CHECK_EQ_INT(e->duration_us, duration);
        CHECK_EQ_INT(e->req_bytes, req_bytes);
        CHECK_EQ_INT(e->rsp_bytes, rsp_bytes);
    }
    if (test_failed_ != before)
        fprintf(stderr, "  (event of stream %u, checked at line %d)\n", sid, line);
}

#define CHECK_EVT(got, sid, ...) check_evt(__LINE__, got, (uint32_t)(sid), __VA_ARGS__)

#define CHECK_STATS(st, exch, incompl, drop, perr)                                 \
    do {                                                                          \
        CHECK_EQ_INT((st).exchanges, exch);                                       \
        CHECK_EQ_INT((st).incomplete, incompl);                                   \
        CHECK_EQ_INT((st).dropped, drop);                                         \
        CHECK_EQ_INT((st).proto_errors, perr);                                    \
    } while (0)

static int str_same(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static int evt_same(const struct mesh_evt *a, const struct mesh_evt *b)
{
    return a->ts_us == b->ts_us && a->proto == b->proto && str_same(a->method, b->method) &&
           str_same(a->scheme, b->scheme) && str_same(a->authority, b->authority) &&
           str_same(a->path, b->path) && a->status == b->status && a->grpc_status == b->grpc_status &&
           a->reset == b->reset && str_same(a->error, b->error) && a->latency_us == b->latency_us &&
           a->duration_us == b->duration_us && a->req_bytes == b->req_bytes &&
           a->rsp_bytes == b->rsp_bytes;
}

/* Every event of |part| equals the event of the same stream in |whole|. */
static int events_subset(const struct got *part, const struct got *whole)
{
    for (size_t i = 0; i < part->n; i++) {
        const struct mesh_evt *w = NULL;
        for (size_t j = 0; j < whole->n; j++)
            if (whole->sid[j] == part->sid[i])
                w = &whole->ev[j].evt;
        if (w == NULL || !evt_same(&part->ev[i].evt, w)) {
            fprintf(stderr, "  event of stream %u differs from the full run\n", part->sid[i]);
            return 0;
        }
    }
    return 1;
}

/* ---- scenarios --------------------------------------------------------------- */

static void test_unary(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    int32_t s1 = request(&l, "GET", "/index.html", 0);
    int32_t s3 = request(&l, "POST", "/upload", 3000);
    flush(&l, MESH_C2S, 1000);
    struct body *b1 = respond(&l, s1, 200, 1234, -1, 1);
    struct body *b3 = respond(&l, s3, 201, 10, -1, 1);
    flush(&l, MESH_S2C, 2000);
    release(&l, MESH_S2C, s1, b1);
    flush(&l, MESH_S2C, 5000);
    release(&l, MESH_S2C, s3, b3);
    flush(&l, MESH_S2C, 9000);
    pump(&l, 10000);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.errors, 0);
    CHECK_EQ_INT(got_a.n, 2);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/index.html", 200, -1, -1, NULL, 1000, 1000, 4000, 0, 1234);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "POST", "/upload", 201, -1, -1, NULL, 1000, 1000, 8000, 3000, 10);
    CHECK_EQ_INT(got_a.sid[0], s1); /* emitted when each response ended */
    CHECK_STATS(st, 2, 0, 0, 0);
    link_free(&l);
}

static void test_grpc_trailers(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    int32_t s1 = request_ex(&l, "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 5, 0, NULL,
                            grpc_request_headers);
    int32_t s3 = request_ex(&l, "POST", "/emojivoto.v1.EmojiService/ListAll", 5, 0, NULL,
                            grpc_request_headers);
    flush(&l, MESH_C2S, 1000);
    struct body *b1 = respond(&l, s1, 200, 5, 2, 1);
    struct body *b3 = respond(&l, s3, 200, 189, 0, 1);
    flush(&l, MESH_S2C, 2000);
    release(&l, MESH_S2C, s1, b1);
    release(&l, MESH_S2C, s3, b3);
    flush(&l, MESH_S2C, 4000);
    pump(&l, 5000);
    CHECK(count_frames(&l.cap, MESH_S2C, 0x1, 0x1 | 0x4) == 2); /* two trailers */

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_GRPC, "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 200, 2, -1,
              NULL, 1000, 1000, 3000, 5, 5);
    CHECK_EVT(&got_a, s3, MESH_PROTO_GRPC, "POST", "/emojivoto.v1.EmojiService/ListAll", 200, 0, -1, NULL,
              1000, 1000, 3000, 5, 189);
    CHECK_STATS(st, 2, 0, 0, 0);
    link_free(&l);
}

static void test_trailers_only(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    int32_t s1 = request_ex(&l, "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 5, 0, NULL,
                            grpc_request_headers);
    int32_t s3 = request(&l, "GET", "/plain", 0);
    flush(&l, MESH_C2S, 1000);
    nghttp2_nv nva[] = {mknv(&l, ":status", "200"), mknv(&l, "content-type", "application/grpc"),
                        mknv(&l, "grpc-status", "12"), mknv(&l, "grpc-message", "unimplemented")};
    nghttp2_submit_response(l.server, s1, nva, 4, NULL);
    struct body *b3 = respond(&l, s3, 200, 7, -1, 0);
    b3->plain_trailer = 1; /* trailers, but not gRPC ones */
    flush(&l, MESH_S2C, 3000);
    pump(&l, 4000);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_GRPC, "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 200, 12, -1,
              NULL, 1000, 2000, 2000, 5, 0);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/plain", 200, -1, -1, NULL, 1000, 2000, 2000, 0, 7);
    CHECK_STATS(st, 2, 0, 0, 0);
    link_free(&l);
}

static void test_concurrent(void)
{
    enum { N = 100 };
    struct link l;
    int32_t sid[N];
    char path[32];
    link_init(&l, 0, 0, 0);
    pump(&l, 500);
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/s/%d", i);
        sid[i] = request(&l, i % 3 ? "GET" : "POST", path, i % 3 ? 0 : 1000u + (size_t)i);
    }
    flush(&l, MESH_C2S, 1000);
    for (int i = N - 1; i >= 0; i--) /* answered in reverse, bodies interleave */
        respond(&l, sid[i], 200 + i % 4, 20000u + 37u * (size_t)i, -1, 0);
    pump(&l, 2000);
    CHECK(count_frames(&l.cap, MESH_S2C, 0x0, 0) > 2 * N);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, N);
    for (int i = 0; i < N; i++) {
        const struct mesh_evt *e = got_find(&got_a, (uint32_t)sid[i]);
        snprintf(path, sizeof(path), "/s/%d", i);
        CHECK(e != NULL);
        if (e == NULL)
            continue;
        CHECK_EQ_STR(e->path, path);
        CHECK_EQ_STR(e->method, i % 3 ? "GET" : "POST");
        CHECK_EQ_INT(e->status, 200 + i % 4);
        CHECK_EQ_INT(e->req_bytes, i % 3 ? 0 : 1000 + i);
        CHECK_EQ_INT(e->rsp_bytes, 20000 + 37 * i);
        CHECK_EQ_INT(e->ts_us, 1000);
        CHECK(e->latency_us >= 1000 && e->latency_us <= e->duration_us);
    }
    CHECK_STATS(st, N, 0, 0, 0);
    link_free(&l);
}

static void test_padding(void)
{
    struct link l;
    link_init(&l, 37, 0, 0);
    int32_t s1 = request(&l, "POST", "/pad", 1000);
    flush(&l, MESH_C2S, 1000);
    respond(&l, s1, 200, 2500, -1, 0);
    flush(&l, MESH_S2C, 2000);
    pump(&l, 3000);
    for (int dir = 0; dir < 2; dir++) {
        CHECK(count_frames(&l.cap, dir, 0x0, 0x8) > 0);
        CHECK(count_frames(&l.cap, dir, 0x1, 0x8) > 0);
    }
    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "POST", "/pad", 200, -1, -1, NULL, 1000, 1000, 1000, 1000, 2500);
    CHECK_STATS(st, 1, 0, 0, 0);
    link_free(&l);
}

static void test_continuation(void)
{
    struct link l;
    static char path[20001], big_req[20001], big_rsp[40001];
    link_init(&l, 0, 0, 0);
    path[0] = '/';
    memset(path + 1, 'p', sizeof(path) - 2);
    memset(big_req, 'a', sizeof(big_req) - 1);
    memset(big_rsp, 'b', sizeof(big_rsp) - 1);
    const char *const req_extra[] = {"x-big", big_req, NULL};
    const char *const rsp_extra[] = {"x-big", big_rsp, NULL};
    int32_t s1 = request_ex(&l, "GET", path, 0, 0, NULL, req_extra);
    flush(&l, MESH_C2S, 1000);
    respond_ex(&l, s1, 200, 3, -1, 0, rsp_extra);
    flush(&l, MESH_S2C, 2000);
    pump(&l, 3000);
    CHECK(count_frames(&l.cap, MESH_C2S, 0x9, 0) > 0);
    CHECK(count_frames(&l.cap, MESH_S2C, 0x9, 0) > 0);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", path, 200, -1, -1, NULL, 1000, 1000, 1000, 0, 3);
    CHECK_STATS(st, 1, 0, 0, 0);
    link_free(&l);
}

static void test_rst_stream(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    int32_t s1 = request(&l, "GET", "/refused", 0);
    int32_t s3 = request(&l, "GET", "/half", 0);
    int32_t s5 = request(&l, "GET", "/cancel", 0);
    flush(&l, MESH_C2S, 1000);
    nghttp2_submit_rst_stream(l.server, NGHTTP2_FLAG_NONE, s1, NGHTTP2_REFUSED_STREAM);
    respond(&l, s3, 503, 100, -1, 1);
    flush(&l, MESH_S2C, 3000);
    nghttp2_submit_rst_stream(l.server, NGHTTP2_FLAG_NONE, s3, NGHTTP2_INTERNAL_ERROR);
    flush(&l, MESH_S2C, 4000);
    nghttp2_submit_rst_stream(l.client, NGHTTP2_FLAG_NONE, s5, NGHTTP2_CANCEL);
    flush(&l, MESH_C2S, 6000);
    pump(&l, 7000);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/refused", -1, -1, 7, NULL, 1000, -1, 2000, 0, 0);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/half", 503, -1, 2, NULL, 1000, 2000, 3000, 0, 0);
    CHECK_EVT(&got_a, s5, MESH_PROTO_H2, "GET", "/cancel", -1, -1, 8, NULL, 1000, -1, 5000, 0, 0);
    CHECK_STATS(st, 3, 3, 0, 0);
    link_free(&l);
}

static void test_goaway(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    pump(&l, 500);
    int32_t s1 = request(&l, "GET", "/a", 0);
    int32_t s3 = request(&l, "GET", "/b", 0);
    int32_t s5 = request(&l, "GET", "/c", 0);
    flush(&l, MESH_C2S, 1000);
    struct body *b1 = respond(&l, s1, 200, 10, -1, 1);
    flush(&l, MESH_S2C, 2000);
    nghttp2_submit_goaway(l.server, NGHTTP2_FLAG_NONE, s1, NGHTTP2_NO_ERROR, NULL, 0);
    flush(&l, MESH_S2C, 3000);
    size_t goaway_seg = l.cap.nseg - 1;
    release(&l, MESH_S2C, s1, b1);
    flush(&l, MESH_S2C, 4000);
    pump(&l, 5000);
    CHECK(count_frames(&l.cap, MESH_S2C, 0x7, 0) == 1);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/a", 200, -1, -1, NULL, 1000, 1000, 3000, 0, 10);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/b", -1, -1, -1, "refused by GOAWAY", 1000, -1, -1, 0, 0);
    CHECK_EVT(&got_a, s5, MESH_PROTO_H2, "GET", "/c", -1, -1, -1, "refused by GOAWAY", 1000, -1, -1, 0, 0);
    CHECK(got_a.n == 3 && got_a.seg_at[0] == goaway_seg && got_a.seg_at[1] == goaway_seg);
    CHECK_EQ_INT(got_a.sid[2], s1);
    CHECK_STATS(st, 3, 2, 0, 0);
    link_free(&l);
}

/* Each response carries a 300-byte header value it adds to the server's
 * HPACK table, and from the 30th on repeats the one of 30 responses before,
 * which only a table larger than the default 4096 bytes still holds. */
static void table_round(struct link *l, int first, int count, uint64_t ts, int32_t *sid)
{
    static char value[64][301];
    char path[32];
    for (int i = first; i < first + count; i++) {
        memset(value[i], 'a' + i % 26, 300);
        snprintf(value[i], 12, "v%03u-", (unsigned)i % 1000u);
        value[i][strlen(value[i])] = 'x';
        snprintf(path, sizeof(path), "/t/%d", i);
        sid[i] = request(l, "GET", path, 0);
        flush(l, MESH_C2S, ts);
        const char *const extra[] = {"x-r", value[i], i >= 30 ? "x-old" : NULL, i >= 30 ? value[i - 30] : NULL,
                                     NULL};
        respond_ex(l, sid[i], 200, 5, -1, 0, extra);
        flush(l, MESH_S2C, ts + 100);
        ts += 1000;
    }
}

static void check_table_round(const struct got *got, int first, int count, const int32_t *sid)
{
    char path[32];
    for (int i = first; i < first + count; i++) {
        const struct mesh_evt *e = got_find(got, (uint32_t)sid[i]);
        snprintf(path, sizeof(path), "/t/%d", i);
        CHECK(e != NULL);
        if (e != NULL) {
            CHECK_EQ_STR(e->path, path);
            CHECK_EQ_INT(e->status, 200);
        }
    }
}

static void test_header_table_size(void)
{
    struct link l;
    int32_t sid[64];
    /* the client lets the server's encoder use 64 KiB */
    link_init(&l, 0, 65536, 65536);
    pump(&l, 500);
    table_round(&l, 0, 40, 1000, sid);
    pump(&l, 100000);
    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    check_table_round(&got_a, 0, 40, sid);
    CHECK_STATS(st, 40, 0, 0, 0);

    /* control: with the client's SETTINGS_HEADER_TABLE_SIZE hidden from the
     * decoder (its id made unknown), the server's 64 KiB table size update
     * is refused by the inflater and the responses are dropped, not guessed */
    struct capture patched = l.cap;
    patched.bytes = malloc(l.cap.len);
    memcpy(patched.bytes, l.cap.bytes, l.cap.len);
    static const uint8_t entry[] = {0x00, 0x01, 0x00, 0x01, 0x00, 0x00};
    uint8_t *at = NULL;
    for (size_t i = 24; at == NULL && i + sizeof(entry) <= l.cap.seg[0].len; i++)
        if (memcmp(patched.bytes + i, entry, sizeof(entry)) == 0)
            at = patched.bytes + i;
    CHECK(at != NULL);
    if (at != NULL)
        at[1] = 0x7f;
    st = replay_whole(&patched, &got_b);
    CHECK(got_b.n == 0 && st.dropped == 40);
    free(patched.bytes);

    /* lowered to 0 and raised again: the encoder signals it, decoding goes on */
    nghttp2_settings_entry zero = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 0};
    nghttp2_settings_entry back = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096};
    nghttp2_submit_settings(l.client, NGHTTP2_FLAG_NONE, &zero, 1);
    nghttp2_submit_settings(l.server, NGHTTP2_FLAG_NONE, &zero, 1);
    pump(&l, 200000);
    table_round(&l, 40, 5, 210000, sid);
    nghttp2_submit_settings(l.client, NGHTTP2_FLAG_NONE, &back, 1);
    nghttp2_submit_settings(l.server, NGHTTP2_FLAG_NONE, &back, 1);
    pump(&l, 300000);
    table_round(&l, 45, 5, 310000, sid);
    pump(&l, 400000);
    st = replay_whole(&l.cap, &got_a);
    check_table_round(&got_a, 0, 50, sid);
    CHECK_STATS(st, 50, 0, 0, 0);
    link_free(&l);
}

static void test_informational(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    const char *const expect[] = {"expect", "100-continue", NULL};
    struct body *req;
    int32_t s1 = request_ex(&l, "PUT", "/upload", 50, 1, &req, expect);
    flush(&l, MESH_C2S, 1000);
    nghttp2_nv cont = mknv(&l, ":status", "100");
    nghttp2_submit_headers(l.server, NGHTTP2_FLAG_NONE, s1, NULL, &cont, 1, NULL);
    flush(&l, MESH_S2C, 1500);
    release(&l, MESH_C2S, s1, req);
    flush(&l, MESH_C2S, 2000);
    respond(&l, s1, 204, 0, -1, 0);
    flush(&l, MESH_S2C, 3000);
    pump(&l, 4000);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "PUT", "/upload", 204, -1, -1, NULL, 1000, 2000, 2000, 50, 0);
    CHECK_STATS(st, 1, 0, 0, 0);
    link_free(&l);
}

/* --tap-header: the request's and the final response head's fields and the
 * trailers, not an interim response's; redacted by name; the same whether
 * blocks come whole (the memo is not used then) or a byte at a time, and
 * the other fields the same as without capture. */
static void test_headers(void)
{
    static struct mesh_hdr_sel sel;
    const char *why;
    memset(&sel, 0, sizeof(sel));
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.tap, "user-agent,set-cookie,x-resp,x-interim,grpc-status,"
                                              "grpc-message,x-key,content-type", &why), 0);
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.redact, "x-key", &why), 0);
    struct link l;
    link_init(&l, 0, 0, 0);
    const char *const ua[] = {"user-agent", "grpc-python/1.51", "x-key", "s3cret", NULL};
    int32_t sid[4];
    for (int i = 0; i < 3; i++) /* the same block three times: the memo's case */
        sid[i] = request_ex(&l, "GET", "/same", 0, 0, NULL, ua);
    sid[3] = request_ex(&l, "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 5, 0, NULL,
                        grpc_request_headers);
    flush(&l, MESH_C2S, 1000);
    nghttp2_nv early[] = {mknv(&l, ":status", "103"), mknv(&l, "x-interim", "no")};
    nghttp2_submit_headers(l.server, NGHTTP2_FLAG_NONE, sid[0], NULL, early, 2, NULL);
    const char *const rsp[] = {"set-cookie", "id=1", "x-resp", "r", NULL};
    for (int i = 0; i < 3; i++)
        respond_ex(&l, sid[i], 200, 3, -1, 0, rsp);
    respond(&l, sid[3], 200, 5, 2, 0); /* grpc-status 2 in the trailers */
    flush(&l, MESH_S2C, 2000);
    pump(&l, 3000);

    static const char want_get[] = "q:user-agent=grpc-python/1.51 q:x-key=<redacted> "
                                   "s:set-cookie=<redacted> s:x-resp=r";
    static const char want_grpc[] = "q:content-type=application/grpc s:content-type=application/grpc "
                                    "t:grpc-status=2 t:grpc-message=msg";
    char buf[512];
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        struct how how = {0, chunk, 0, &sel};
        struct mesh_dec_stats st = replay(&l.cap, &how, &got_a);
        CHECK_STATS(st, 4, 0, 0, 0);
        for (int i = 0; i < 4; i++) {
            const struct mesh_evt *e = got_find(&got_a, (uint32_t)sid[i]);
            CHECK(e != NULL);
            if (e != NULL)
                CHECK_EQ_STR(test_hdrs_str(e, buf, sizeof(buf)), i < 3 ? want_get : want_grpc);
        }
        CHECK_EVT(&got_a, sid[3], MESH_PROTO_GRPC, "POST", "/emojivoto.v1.VotingService/VoteDoughnut",
                  200, 2, -1, NULL, 1000, 1000, 1000, 5, 5);
    }
    /* without a selection: no headers, every other field the same */
    replay_whole(&l.cap, &got_b);
    CHECK_EQ_INT(got_b.n, got_a.n);
    for (size_t i = 0; i < got_b.n && i < got_a.n; i++) {
        CHECK_EQ_INT(got_b.ev[i].evt.nheaders, 0);
        struct mesh_evt a = got_a.ev[i].evt;
        a.headers = NULL;
        a.nheaders = 0;
        CHECK(evt_same(&a, &got_b.ev[i].evt));
    }
    link_free(&l);
}

static void test_push(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    pump(&l, 500);
    int32_t s1 = request(&l, "GET", "/index.html", 0);
    flush(&l, MESH_C2S, 1000);
    nghttp2_nv promise[] = {mknv(&l, ":method", "GET"), mknv(&l, ":scheme", "http"),
                            mknv(&l, ":authority", "example.org"), mknv(&l, ":path", "/style.css")};
    int32_t s2 = nghttp2_submit_push_promise(l.server, NGHTTP2_FLAG_NONE, s1, promise, 4, NULL);
    CHECK(s2 == 2);
    respond(&l, s1, 200, 100, -1, 0);
    flush(&l, MESH_S2C, 2000);
    respond(&l, s2, 200, 300, -1, 0);
    flush(&l, MESH_S2C, 3000);
    pump(&l, 4000);
    CHECK(count_frames(&l.cap, MESH_S2C, 0x5, 0) == 1);

    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/index.html", 200, -1, -1, NULL, 1000, 1000, 1000, 0, 100);
    CHECK_EVT(&got_a, s2, MESH_PROTO_H2, "GET", "/style.css", 200, -1, -1, NULL, 2000, 1000, 1000, 0, 300);
    CHECK_STATS(st, 2, 0, 0, 0);
    link_free(&l);
}

/* A capture with a bit of everything, for the feeding-pattern and seed runs. */
static void build_mixed(struct link *l)
{
    static char big[20001];
    memset(big, 'z', sizeof(big) - 1);
    const char *const big_extra[] = {"x-big", big, NULL};
    link_init(l, 11, 0, 0);
    int32_t s1 = request(l, "GET", "/index.html", 0);
    int32_t s3 = request_ex(l, "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 5, 0, NULL,
                            grpc_request_headers);
    int32_t s5 = request_ex(l, "GET", "/big", 0, 0, NULL, big_extra);
    int32_t s7 = request(l, "GET", "/reset", 0);
    int32_t s9 = request(l, "POST", "/upload", 70000);
    flush(l, MESH_C2S, 1000);
    respond(l, s1, 200, 1234, -1, 0);
    struct body *b3 = respond(l, s3, 200, 5, 2, 1);
    respond_ex(l, s5, 404, 0, -1, 0, big_extra);
    nghttp2_submit_rst_stream(l->server, NGHTTP2_FLAG_NONE, s7, NGHTTP2_CANCEL);
    flush(l, MESH_S2C, 2000);
    release(l, MESH_S2C, s3, b3);
    pump(l, 3000);
    respond(l, s9, 201, 3, -1, 0);
    pump(l, 4000);
}

static void test_feeding_patterns(void)
{
    struct link l;
    build_mixed(&l);
    struct mesh_dec_stats whole = replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, 5);
    CHECK_EVT(&got_a, 1, MESH_PROTO_H2, "GET", "/index.html", 200, -1, -1, NULL, 1000, 1000, 1000, 0, 1234);
    CHECK_EVT(&got_a, 3, MESH_PROTO_GRPC, "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 200, 2, -1,
              NULL, 1000, 1000, 2005, 5, 5);
    CHECK_EVT(&got_a, 7, MESH_PROTO_H2, "GET", "/reset", -1, -1, 8, NULL, 1000, -1, 1000, 0, 0);
    CHECK_EVT(&got_a, 9, MESH_PROTO_H2, "POST", "/upload", 201, -1, -1, NULL, 1000, 3005, 3005, 70000, 3);
    const struct mesh_evt *e5 = got_find(&got_a, 5);
    CHECK(e5 != NULL && e5->status == 404 && strcmp(e5->path, "/big") == 0);

    static const size_t chunks[] = {1, 2, 7, 9, 10, 4096};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct how how = {0, chunks[c], 0, NULL};
        struct mesh_dec_stats st = replay(&l.cap, &how, &got_b);
        int same = got_b.n == got_a.n && memcmp(&st, &whole, sizeof(st)) == 0;
        for (size_t i = 0; same && i < got_a.n; i++)
            same = got_a.sid[i] == got_b.sid[i] && evt_same(&got_a.ev[i].evt, &got_b.ev[i].evt);
        if (!same)
            fprintf(stderr, "  feeding %zu bytes at a time differs\n", chunks[c]);
        CHECK(same);
    }
    link_free(&l);
}

/* Ten exchanges, one after another; |seg_of[i]| is the segment of request i. */
static void build_sequence(struct link *l, int no_index, int reset_tables_after, size_t *seg_of,
                           int32_t *sid)
{
    char path[32];
    const char *const extra_req[] = {"user-agent", "mesh-test/1.0", "x-session", "s3cr3t-session-id", NULL};
    const char *const extra_rsp[] = {"server", "mesh-origin", "x-served-by", "node-17", NULL};
    link_init(l, 0, 0, 0);
    l->no_index = no_index;
    for (int i = 0; i < 10; i++) {
        uint64_t ts = 1000u * (uint64_t)(i + 1);
        if (i == reset_tables_after) {
            /* each side shrinks the other's table to nothing and back */
            nghttp2_settings_entry zero = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 0};
            nghttp2_settings_entry back = {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096};
            nghttp2_submit_settings(l->client, NGHTTP2_FLAG_NONE, &zero, 1);
            nghttp2_submit_settings(l->client, NGHTTP2_FLAG_NONE, &back, 1);
            nghttp2_submit_settings(l->server, NGHTTP2_FLAG_NONE, &zero, 1);
            nghttp2_submit_settings(l->server, NGHTTP2_FLAG_NONE, &back, 1);
            pump(l, ts - 500);
        }
        snprintf(path, sizeof(path), "/seq/%d", i);
        sid[i] = request_ex(l, "GET", path, 0, 0, NULL, extra_req);
        seg_of[i] = l->cap.nseg;
        flush(l, MESH_C2S, ts);
        respond_ex(l, sid[i], 200, 10u + (size_t)i, -1, 0, extra_rsp);
        flush(l, MESH_S2C, ts + 100);
        pump(l, ts + 200);
    }
}

static void test_midstream(void)
{
    struct link l;
    size_t seg_of[10];
    int32_t sid[10];

    /* literals only: everything after the cut decodes */
    build_sequence(&l, 1, -1, seg_of, sid);
    replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, 10);
    struct how how = {1, 0, seg_of[4], NULL};
    struct mesh_dec_stats st = replay(&l.cap, &how, &got_b);
    CHECK_EQ_INT(got_b.n, 6);
    CHECK(events_subset(&got_b, &got_a));
    CHECK(got_find(&got_b, (uint32_t)sid[3]) == NULL);
    CHECK_STATS(st, 6, 0, 0, 0);
    /* cut between request 3 and its response: that response is counted */
    how.from = seg_of[3] + 1;
    st = replay(&l.cap, &how, &got_b);
    CHECK_EQ_INT(got_b.n, 6);
    CHECK(events_subset(&got_b, &got_a));
    CHECK_STATS(st, 6, 0, 1, 0);
    /* byte by byte, same answer */
    how.chunk = 1;
    st = replay(&l.cap, &how, &got_b);
    CHECK_EQ_INT(got_b.n, 6);
    CHECK_STATS(st, 6, 0, 1, 0);
    link_free(&l);

    /* indexed fields learnt before the cut: nothing can be decoded, all is
     * counted, nothing is guessed */
    build_sequence(&l, 0, -1, seg_of, sid);
    replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, 10);
    for (size_t cut = 1; cut < l.cap.nseg; cut++) {
        struct how at = {1, 0, cut, NULL};
        st = replay(&l.cap, &at, &got_b);
        CHECK(events_subset(&got_b, &got_a));
        CHECK(st.exchanges == got_b.n && st.proto_errors == 0);
    }
    how = (struct how){1, 0, seg_of[4], NULL};
    st = replay(&l.cap, &how, &got_b);
    CHECK_EQ_INT(got_b.n, 0);
    CHECK_EQ_INT(st.dropped, 6);
    link_free(&l);

    /* both tables emptied (SETTINGS_HEADER_TABLE_SIZE 0, then 4096) before
     * request 4: a capture starting there knows every entry it needs */
    build_sequence(&l, 0, 4, seg_of, sid);
    replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, 10);
    how = (struct how){1, 0, seg_of[4], NULL};
    st = replay(&l.cap, &how, &got_b);
    CHECK_EQ_INT(got_b.n, 6);
    CHECK(events_subset(&got_b, &got_a));
    CHECK_STATS(st, 6, 0, 0, 0);
    link_free(&l);
}

/* Swaps each client segment with the server segment right after it: the
 * response can reach the decoder before its request (packets swapped
 * across directions), yet the events must not change. */
static void swap_across(struct capture *cap)
{
    for (size_t i = 0; i + 1 < cap->nseg; i++)
        if (cap->seg[i].dir == MESH_C2S && cap->seg[i + 1].dir == MESH_S2C) {
            struct seg tmp = cap->seg[i];
            cap->seg[i] = cap->seg[i + 1];
            cap->seg[i + 1] = tmp;
            i++;
        }
}

static void test_reordered(void)
{
    struct link l;
    size_t seg_of[10];
    int32_t sid[10];
    for (int round = 0; round < 3; round++) {
        if (round == 0)
            build_mixed(&l);
        else
            build_sequence(&l, round == 2, -1, seg_of, sid);
        struct mesh_dec_stats in_order = replay_whole(&l.cap, &got_a);
        swap_across(&l.cap);
        struct mesh_dec_stats swapped = replay_whole(&l.cap, &got_b);
        CHECK_EQ_INT(got_b.n, got_a.n);
        CHECK(got_a.n > 0 && events_subset(&got_b, &got_a) && events_subset(&got_a, &got_b));
        CHECK(memcmp(&in_order, &swapped, sizeof(swapped)) == 0);
        link_free(&l);
    }
}

static void test_gap(void)
{
    struct link l;
    struct body *b5;

    /* server to client lost: nothing that needs it is emitted */
    link_init(&l, 0, 0, 0);
    int32_t s1 = request(&l, "GET", "/a", 0);
    flush(&l, MESH_C2S, 1000);
    respond(&l, s1, 200, 10, -1, 0);
    flush(&l, MESH_S2C, 2000);
    int32_t s3 = request(&l, "GET", "/b", 0);
    int32_t s5 = request(&l, "POST", "/c", 100);
    flush(&l, MESH_C2S, 3000);
    struct body *b3 = respond(&l, s3, 200, 10, -1, 1);
    flush(&l, MESH_S2C, 4000);
    size_t lost = l.cap.nseg - 1;
    release(&l, MESH_S2C, s3, b3);
    respond(&l, s5, 200, 10, -1, 0);
    flush(&l, MESH_S2C, 5000);
    int32_t s7 = request(&l, "GET", "/d", 0);
    flush(&l, MESH_C2S, 6000);
    respond(&l, s7, 200, 10, -1, 0);
    pump(&l, 7000);
    l.cap.seg[lost].kind = SEG_GAP;
    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, 1);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/a", 200, -1, -1, NULL, 1000, 1000, 1000, 0, 10);
    CHECK_STATS(st, 1, 0, 3, 0);
    CHECK_EQ_INT(got_a.errors, 0);
    link_free(&l);

    /* client to server lost: complete requests still pair with their responses */
    link_init(&l, 0, 0, 0);
    s1 = request(&l, "GET", "/a", 0);
    flush(&l, MESH_C2S, 1000);
    respond(&l, s1, 200, 10, -1, 0);
    flush(&l, MESH_S2C, 2000);
    s3 = request(&l, "GET", "/b", 0);
    s5 = request_ex(&l, "POST", "/c", 100, 1, &b5, NULL);
    flush(&l, MESH_C2S, 3000);
    s7 = request(&l, "GET", "/d", 0);
    flush(&l, MESH_C2S, 4000);
    lost = l.cap.nseg - 1;
    release(&l, MESH_C2S, s5, b5);
    flush(&l, MESH_C2S, 5000);
    respond(&l, s3, 200, 20, -1, 0);
    respond(&l, s5, 201, 30, -1, 0);
    respond(&l, s7, 202, 40, -1, 0);
    flush(&l, MESH_S2C, 6000);
    pump(&l, 7000);
    l.cap.seg[lost].kind = SEG_GAP;
    st = replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, 2);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/a", 200, -1, -1, NULL, 1000, 1000, 1000, 0, 10);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/b", 200, -1, -1, NULL, 3000, 3000, 3000, 0, 20);
    CHECK_STATS(st, 2, 0, 2, 0); /* /c (request body unknown) and /d (request never seen) */
    link_free(&l);
}

static void test_fin_close(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    int32_t s1 = request(&l, "GET", "/slow", 0);
    int32_t s3 = request(&l, "GET", "/none", 0);
    flush(&l, MESH_C2S, 1000);
    struct body *b1 = respond(&l, s1, 200, 10, -1, 1);
    flush(&l, MESH_S2C, 2000);
    size_t open_end = l.cap.nseg;
    respond(&l, s3, 200, 10, -1, 0);
    release(&l, MESH_S2C, s1, b1);
    flush(&l, MESH_S2C, 3000);

    /* the capture ends with both streams open */
    struct capture cut = l.cap;
    cut.nseg = open_end;
    struct mesh_dec_stats st = replay_whole(&cut, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/slow", 200, -1, -1, "connection closed", 1000, 1000, -1, 0, 0);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/none", -1, -1, -1, "no response", 1000, -1, -1, 0, 0);
    CHECK_STATS(st, 2, 2, 0, 0);

    /* the server's FIN ends them: what it "sends" after is ignored */
    struct capture fin = l.cap;
    fin.seg = malloc((l.cap.nseg + 1) * sizeof(*fin.seg));
    memcpy(fin.seg, l.cap.seg, open_end * sizeof(*fin.seg));
    fin.seg[open_end] = (struct seg){SEG_FIN, MESH_S2C, 2500, 0, 0};
    memcpy(fin.seg + open_end + 1, l.cap.seg + open_end, (l.cap.nseg - open_end) * sizeof(*fin.seg));
    fin.nseg = l.cap.nseg + 1;
    st = replay_whole(&fin, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/slow", 200, -1, -1, "connection closed", 1000, 1000, -1, 0, 0);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/none", -1, -1, -1, "no response", 1000, -1, -1, 0, 0);
    CHECK(got_a.n == 2 && got_a.seg_at[0] == open_end && got_a.seg_at[1] == open_end);
    CHECK_STATS(st, 2, 2, 0, 0);

    /* a reset connection ends them too */
    fin.seg[open_end] = (struct seg){SEG_RST, MESH_C2S, 2500, 0, 0};
    st = replay_whole(&fin, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/slow", 200, -1, -1, "connection reset", 1000, 1000, -1, 0, 0);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/none", -1, -1, -1, "connection reset", 1000, -1, -1, 0, 0);
    CHECK(got_a.n == 2 && got_a.seg_at[0] == open_end && got_a.seg_at[1] == open_end);

    /* the client's FIN does not: responses may still come */
    fin.seg[open_end] = (struct seg){SEG_FIN, MESH_C2S, 2500, 0, 0};
    st = replay_whole(&fin, &got_a);
    CHECK_EVT(&got_a, s1, MESH_PROTO_H2, "GET", "/slow", 200, -1, -1, NULL, 1000, 1000, 2000, 0, 10);
    CHECK_EVT(&got_a, s3, MESH_PROTO_H2, "GET", "/none", 200, -1, -1, NULL, 1000, 2000, 2000, 0, 10);
    CHECK_STATS(st, 2, 0, 0, 0);
    free(fin.seg);
    link_free(&l);
}

static void test_pending_cap(void)
{
    enum { N = MESH_DEC_MAX_PENDING + 76 };
    static int32_t sid[N];
    struct link l;
    link_init(&l, 0, 0, 0);
    pump(&l, 500);
    for (int i = 0; i < N; i++)
        sid[i] = request(&l, "GET", "/p", 0);
    flush(&l, MESH_C2S, 1000);
    for (int i = 0; i < N; i++)
        respond(&l, sid[i], 200, 1, -1, 0);
    pump(&l, 2000);
    struct mesh_dec_stats st = replay_whole(&l.cap, &got_a);
    CHECK_EQ_INT(got_a.n, MESH_DEC_MAX_PENDING);
    CHECK(got_find(&got_a, (uint32_t)sid[MESH_DEC_MAX_PENDING - 1]) != NULL);
    CHECK(got_find(&got_a, (uint32_t)sid[MESH_DEC_MAX_PENDING]) == NULL);
    CHECK_STATS(st, MESH_DEC_MAX_PENDING, 0, 76, 0);
    link_free(&l);
}

/* ---- hand-made frames ---------------------------------------------------- */

struct raw {
    uint8_t b[40000];
    size_t len;
};

static void raw_put(struct raw *r, const void *data, size_t len)
{
    memcpy(r->b + r->len, data, len);
    r->len += len;
}

static void raw_frame(struct raw *r, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid,
                      const void *payload, size_t plen)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    raw_put(r, h, 9);
    if (plen > 0)
        raw_put(r, payload, plen);
}

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* Opens a decoder, feeds |c2s| then |s2c|, returns data()'s result for the
 * direction that failed (0 if none) and its description. */
static int raw_run(const struct raw *c2s, const struct raw *s2c, int midstream, const char **err,
                   struct mesh_dec_stats *st, struct got *got)
{
    int rv = 0;
    memset(st, 0, sizeof(*st));
    got_reset(got);
    *err = NULL;
    void *dec = mesh_h2_dec.open(got_sink, got, midstream, NULL, st);
    if (s2c != NULL && s2c->len > 0)
        rv = mesh_h2_dec.data(dec, MESH_S2C, s2c->b, s2c->len, 1000, err);
    if (rv == 0 && c2s != NULL && c2s->len > 0)
        rv = mesh_h2_dec.data(dec, MESH_C2S, c2s->b, c2s->len, 2000, err);
    mesh_h2_dec.close(dec, 3000);
    return rv;
}

static void test_frame_errors(void)
{
    static struct raw c2s, s2c;
    static const uint8_t zeros[20000];
    /* a GET / request: :method GET, :scheme http, :path /, :authority (literal) */
    static const uint8_t get_block[] = {0x82, 0x86, 0x84, 0x41, 0x03, 'a', '.', 'b'};
    struct mesh_dec_stats st;
    const char *err;

    /* frame longer than SETTINGS_MAX_FRAME_SIZE (16384 by default) */
    c2s.len = 0;
    raw_put(&c2s, PREFACE, 24);
    raw_frame(&c2s, 0, 0x4, 0, 0, NULL, 0);
    raw_frame(&c2s, sizeof(get_block), 0x1, 0x4, 1, get_block, sizeof(get_block));
    raw_frame(&c2s, 16385, 0x0, 0, 1, zeros, 16385);
    CHECK_EQ_INT(raw_run(&c2s, NULL, 0, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "frame larger than SETTINGS_MAX_FRAME_SIZE");
    CHECK_STATS(st, 0, 0, 1, 1); /* the open request (body unknown) is dropped */

    /* ... unless the server allowed it */
    s2c.len = 0;
    static const uint8_t max_frame[] = {0x00, 0x05, 0x00, 0x00, 0x80, 0x00};
    raw_frame(&s2c, 6, 0x4, 0, 0, max_frame, 6);
    CHECK_EQ_INT(raw_run(&c2s, &s2c, 0, &err, &st, &got_a), 0);
    /* ... and a frame length is never more than the protocol's 2^24 - 1 */
    c2s.len = 0;
    raw_frame(&c2s, 0xffffff, 0x0, 0, 1, NULL, 0);
    CHECK_EQ_INT(raw_run(&c2s, NULL, 1, &err, &st, &got_a), 0);
    s2c.len = 0;
    static const uint8_t max_frame_bad[] = {0x00, 0x05, 0x01, 0x00, 0x00, 0x00};
    raw_frame(&s2c, 6, 0x4, 0, 0, max_frame_bad, 6);
    CHECK_EQ_INT(raw_run(NULL, &s2c, 0, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "SETTINGS_MAX_FRAME_SIZE out of range");

    struct {
        const char *desc;
        uint32_t len;
        uint8_t type, flags;
        uint32_t sid;
        size_t plen;
    } bad[] = {
        {"stream frame on stream 0", 8, 0x1, 0x4, 0, 8},
        {"connection frame on a stream", 0, 0x4, 0, 1, 0},
        {"SETTINGS frame of a wrong size", 5, 0x4, 0, 0, 5},
        {"SETTINGS frame of a wrong size", 6, 0x4, 0x1, 0, 6},
        {"PING frame of a wrong size", 7, 0x6, 0, 0, 7},
        {"RST_STREAM frame of a wrong size", 3, 0x3, 0, 1, 3},
        {"WINDOW_UPDATE frame of a wrong size", 5, 0x8, 0, 0, 5},
        {"GOAWAY frame too short", 4, 0x7, 0, 0, 4},
        {"PRIORITY frame of a wrong size", 4, 0x2, 0, 1, 4},
        {"CONTINUATION without HEADERS", 1, 0x9, 0x4, 1, 1},
        {"PUSH_PROMISE from the client", 4, 0x5, 0x4, 1, 4},
        {"frame too short for its flags", 4, 0x1, 0x20 | 0x4, 1, 4},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c2s.len = 0;
        raw_put(&c2s, PREFACE, 24);
        raw_frame(&c2s, bad[i].len, bad[i].type, bad[i].flags, bad[i].sid, zeros, bad[i].plen);
        CHECK_EQ_INT(raw_run(&c2s, NULL, 0, &err, &st, &got_a), MESH_EPROTO);
        CHECK_EQ_STR(err, bad[i].desc);
        CHECK_EQ_INT(st.proto_errors, 1);
    }

    /* padding longer than the frame */
    c2s.len = 0;
    raw_put(&c2s, PREFACE, 24);
    static const uint8_t pad5[] = {5, 0, 0};
    raw_frame(&c2s, 3, 0x0, 0x8, 1, pad5, 3);
    CHECK_EQ_INT(raw_run(&c2s, NULL, 0, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "padding longer than the frame");

    /* a header block cut by another frame */
    c2s.len = 0;
    raw_put(&c2s, PREFACE, 24);
    raw_frame(&c2s, 3, 0x1, 0, 1, get_block, 3);
    raw_frame(&c2s, 0, 0x4, 0, 0, NULL, 0);
    CHECK_EQ_INT(raw_run(&c2s, NULL, 0, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "header block not followed by its CONTINUATION");

    /* no preface */
    c2s.len = 0;
    raw_frame(&c2s, 0, 0x4, 0, 0, NULL, 0);
    CHECK_EQ_INT(raw_run(&c2s, NULL, 0, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "no HTTP/2 client preface");

    /* midstream bytes that are no frame */
    c2s.len = 0;
    raw_put(&c2s, "GET / HTTP/1.1\r\n\r\n", 18);
    CHECK_EQ_INT(raw_run(&c2s, NULL, 1, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "midstream bytes do not start with a frame");

    /* the direction is ignored after its error; the other goes on */
    struct mesh_dec_stats st2 = {0};
    got_reset(&got_a);
    void *dec = mesh_h2_dec.open(got_sink, &got_a, 0, NULL, &st2);
    static const uint8_t status_200[] = {0x88};
    c2s.len = 0;
    raw_put(&c2s, PREFACE, 24);
    raw_frame(&c2s, sizeof(get_block), 0x1, 0x5, 1, get_block, sizeof(get_block));
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_C2S, c2s.b, c2s.len, 100, NULL), 0);
    c2s.len = 0;
    raw_frame(&c2s, 5, 0x4, 0, 0, zeros, 5);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_C2S, c2s.b, c2s.len, 200, NULL), MESH_EPROTO);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_C2S, c2s.b, c2s.len, 300, NULL), 0);
    s2c.len = 0;
    raw_frame(&s2c, 1, 0x1, 0x5, 1, status_200, 1);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_S2C, s2c.b, s2c.len, 400, NULL), 0);
    mesh_h2_dec.close(dec, 500);
    CHECK_EQ_INT(got_a.n, 1);
    if (got_a.n == 1) {
        CHECK_EQ_STR(got_a.ev[0].evt.authority, "a.b");
        CHECK_EQ_INT(got_a.ev[0].evt.status, 200);
        CHECK_EQ_INT(got_a.ev[0].evt.latency_us, 300);
    }
    CHECK_STATS(st2, 1, 0, 0, 1);
}

/* HPACK that nghttp2 cannot inflate stops that direction's headers only. */
static void test_hpack_failure(void)
{
    static struct raw c2s, s2c;
    static const uint8_t get_block[] = {0x82, 0x86, 0x84, 0x41, 0x03, 'a', '.', 'b'};
    static const uint8_t bad_block[] = {0x82, 0x86, 0xc6}; /* index 70: no such entry */
    static const uint8_t status_200[] = {0x88}, status_404[] = {0x8d};
    struct mesh_dec_stats st;
    const char *err;

    c2s.len = 0;
    raw_put(&c2s, PREFACE, 24);
    raw_frame(&c2s, 0, 0x4, 0, 0, NULL, 0);
    raw_frame(&c2s, sizeof(get_block), 0x1, 0x5, 1, get_block, sizeof(get_block));
    raw_frame(&c2s, sizeof(bad_block), 0x1, 0x5, 3, bad_block, sizeof(bad_block));
    raw_frame(&c2s, sizeof(get_block), 0x1, 0x5, 5, get_block, sizeof(get_block));
    s2c.len = 0;
    raw_frame(&s2c, 0, 0x4, 0, 0, NULL, 0);
    raw_frame(&s2c, 1, 0x1, 0x4, 1, status_200, 1);
    raw_frame(&s2c, sizeof(bad_block), 0x1, 0x5, 3, bad_block, sizeof(bad_block));
    raw_frame(&s2c, 1, 0x1, 0x5, 5, status_404, 1);
    /* stream 1 needs no more headers: it still ends, and is right */
    raw_frame(&s2c, 4, 0x0, 0x1, 1, "body", 4);
    /* responses first in the buffer order would be orphans: feed C2S first */
    memset(&st, 0, sizeof(st));
    got_reset(&got_a);
    void *dec = mesh_h2_dec.open(got_sink, &got_a, 0, NULL, &st);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_C2S, c2s.b, c2s.len, 1000, &err), 0);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_S2C, s2c.b, s2c.len, 2000, &err), 0);
    mesh_h2_dec.close(dec, 3000);
    CHECK_EQ_INT(got_a.n, 1);
    if (got_a.n == 1) {
        CHECK_EQ_INT(got_a.sid[0], 1);
        CHECK_EQ_STR(got_a.ev[0].evt.method, "GET");
        CHECK_EQ_STR(got_a.ev[0].evt.path, "/");
        CHECK_EQ_INT(got_a.ev[0].evt.status, 200);
        CHECK_EQ_INT(got_a.ev[0].evt.rsp_bytes, 4);
    }
    CHECK_STATS(st, 1, 0, 2, 0);
}

/* Seen mid-way: a block tail to skip, extension frames, a preface after all. */
static void test_midstream_raw(void)
{
    static struct raw c2s, s2c;
    static const uint8_t get_block[] = {0x82, 0x86, 0x84, 0x41, 0x03, 'a', '.', 'b'};
    static const uint8_t status_200[] = {0x88};
    struct mesh_dec_stats st;
    const char *err;

    c2s.len = 0;
    raw_frame(&c2s, 5, 0x9, 0x4, 1, "\xff\xff\xff\xff\x0f", 5); /* the tail of a block of stream 1 */
    raw_frame(&c2s, 3, 0xfa, 0x3, 0, "ext", 3);                /* an extension frame: ignored */
    raw_frame(&c2s, sizeof(get_block), 0x1, 0x5, 3, get_block, sizeof(get_block));
    s2c.len = 0;
    raw_frame(&s2c, 4, 0x0, 0x1, 1, "done", 4); /* the end of stream 1: counted */
    raw_frame(&s2c, 1, 0x1, 0x5, 3, status_200, 1);
    memset(&st, 0, sizeof(st));
    got_reset(&got_a);
    void *dec = mesh_h2_dec.open(got_sink, &got_a, 1, NULL, &st);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_C2S, c2s.b, c2s.len, 1000, &err), 0);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_S2C, s2c.b, s2c.len, 2000, &err), 0);
    mesh_h2_dec.close(dec, 3000);
    CHECK_EQ_INT(got_a.n, 1);
    if (got_a.n == 1) {
        CHECK_EQ_INT(got_a.sid[0], 3);
        CHECK_EQ_STR(got_a.ev[0].evt.path, "/");
        CHECK_EQ_INT(got_a.ev[0].evt.status, 200);
    }
    CHECK_STATS(st, 1, 0, 1, 0);

    /* a tail is only skippable before the first block */
    c2s.len = 0;
    raw_frame(&c2s, sizeof(get_block), 0x1, 0x5, 3, get_block, sizeof(get_block));
    raw_frame(&c2s, 5, 0x9, 0x4, 3, "\xff\xff\xff\xff\x0f", 5);
    CHECK_EQ_INT(raw_run(&c2s, NULL, 1, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "CONTINUATION without HEADERS");

    /* a capture that began just before the preface */
    c2s.len = 0;
    raw_put(&c2s, PREFACE, 24);
    raw_frame(&c2s, sizeof(get_block), 0x1, 0x5, 1, get_block, sizeof(get_block));
    s2c.len = 0;
    raw_frame(&s2c, 1, 0x1, 0x5, 1, status_200, 1);
    memset(&st, 0, sizeof(st));
    got_reset(&got_a);
    dec = mesh_h2_dec.open(got_sink, &got_a, 1, NULL, &st);
    for (size_t i = 0; i < c2s.len; i++) /* the preface split everywhere */
        CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_C2S, c2s.b + i, 1, 1000, &err), 0);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_S2C, s2c.b, s2c.len, 2000, &err), 0);
    mesh_h2_dec.close(dec, 3000);
    CHECK_EQ_INT(got_a.n, 1);
    CHECK_STATS(st, 1, 0, 0, 0);

    /* a server promising an odd stream */
    s2c.len = 0;
    raw_frame(&s2c, 5, 0x5, 0x4, 1, "\0\0\0\3\x82", 5);
    CHECK_EQ_INT(raw_run(NULL, &s2c, 1, &err, &st, &got_a), MESH_EPROTO);
    CHECK_EQ_STR(err, "PUSH_PROMISE of an invalid stream id");
}

/* Field values a conforming client would not send, in hand-made blocks. */
static void test_odd_fields(void)
{
    static struct raw c2s, s2c;
    /* GET http://a.b/ with :path twice (the first counts) */
    static const uint8_t dup_path[] = {0x82, 0x86, 0x84, 0x85, 0x41, 0x03, 'a', '.', 'b'};
    /* :path with a NUL: not kept rather than cut short */
    static const uint8_t nul_path[] = {0x82, 0x86, 0x04, 0x03, '/', 0, 'x'};
    /* no :method: not a request we can report */
    static const uint8_t no_method[] = {0x86, 0x84};
    static const uint8_t bad_status[] = {0x08, 0x04, '2', '0', '0', '0', 0x00, 0x0b, 'g', 'r', 'p', 'c',
                                         '-', 's', 't', 'a', 't', 'u', 's', 0x03, 'a', 'b', 'c'};
    static const uint8_t status_200[] = {0x88};
    struct mesh_dec_stats st = {0};
    got_reset(&got_a);
    void *dec = mesh_h2_dec.open(got_sink, &got_a, 0, NULL, &st);
    c2s.len = 0;
    raw_put(&c2s, PREFACE, 24);
    raw_frame(&c2s, sizeof(dup_path), 0x1, 0x5, 1, dup_path, sizeof(dup_path));
    raw_frame(&c2s, sizeof(nul_path), 0x1, 0x5, 3, nul_path, sizeof(nul_path));
    raw_frame(&c2s, sizeof(no_method), 0x1, 0x5, 5, no_method, sizeof(no_method));
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_C2S, c2s.b, c2s.len, 1000, NULL), 0);
    s2c.len = 0;
    raw_frame(&s2c, sizeof(bad_status), 0x1, 0x5, 1, bad_status, sizeof(bad_status));
    raw_frame(&s2c, 1, 0x1, 0x5, 3, status_200, 1);
    raw_frame(&s2c, 1, 0x1, 0x5, 5, status_200, 1);
    CHECK_EQ_INT(mesh_h2_dec.data(dec, MESH_S2C, s2c.b, s2c.len, 2000, NULL), 0);
    mesh_h2_dec.close(dec, 3000);
    CHECK_EQ_INT(got_a.n, 2);
    const struct mesh_evt *e1 = got_find(&got_a, 1), *e3 = got_find(&got_a, 3);
    CHECK(e1 != NULL && e3 != NULL);
    if (e1 != NULL && e3 != NULL) {
        CHECK_EQ_STR(e1->path, "/");
        CHECK_EQ_STR(e1->authority, "a.b");
        CHECK_EQ_INT(e1->status, -1);      /* "2000" is no status */
        CHECK_EQ_INT(e1->proto, MESH_PROTO_GRPC);
        CHECK_EQ_INT(e1->grpc_status, -1); /* "abc" is no gRPC status */
        CHECK_EQ_STR(e3->path, NULL);
        CHECK_EQ_STR(e3->method, "GET");
        CHECK_EQ_INT(e3->status, 200);
    }
    CHECK_STATS(st, 2, 0, 1, 0);
}

static void test_sniff(void)
{
    struct link l;
    link_init(&l, 0, 0, 0);
    request(&l, "GET", "/", 0);
    flush(&l, MESH_C2S, 1000);
    flush(&l, MESH_S2C, 2000);
    const uint8_t *c2s = l.cap.bytes + l.cap.seg[0].off, *s2c = l.cap.bytes + l.cap.seg[1].off;
    CHECK_EQ_INT(mesh_h2_sniff(c2s, l.cap.seg[0].len), 1);
    CHECK_EQ_INT(mesh_h2_sniff(c2s, 10), -1);
    CHECK_EQ_INT(mesh_h2_sniff(c2s, 0), -1);
    CHECK_EQ_INT(mesh_h2_sniff((const uint8_t *)"GET / HTTP/1.1\r\n", 16), 0);
    CHECK_EQ_INT(mesh_h2_sniff(s2c, l.cap.seg[1].len), 0);
    CHECK_EQ_INT(mesh_h2_sniff_frames(s2c, l.cap.seg[1].len), 1);
    CHECK_EQ_INT(mesh_h2_sniff_frames(c2s + 24, l.cap.seg[0].len - 24), 1);
    CHECK_EQ_INT(mesh_h2_sniff_frames(c2s, l.cap.seg[0].len), 0);
    CHECK_EQ_INT(mesh_h2_sniff_frames((const uint8_t *)"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38), 0);
    /* one frame is not enough; a second one with undefined flags is no frame */
    struct raw r = {.len = 0};
    raw_frame(&r, 0, 0x4, 0, 0, NULL, 0);
    CHECK_EQ_INT(mesh_h2_sniff_frames(r.b, r.len), 0);
    CHECK_EQ_INT(mesh_h2_sniff_frames(r.b, 5), 0);
    raw_frame(&r, 4, 0x8, 0x10, 0, "\0\0\0\1", 4);
    CHECK_EQ_INT(mesh_h2_sniff_frames(r.b, r.len), 0);
    r.b[9 + 4] = 0;
    CHECK_EQ_INT(mesh_h2_sniff_frames(r.b, r.len), 1);
    link_free(&l);
}

/* ---- fuzz seeds ------------------------------------------------------------ */

static int write_seed(const char *dir, const char *name, const struct capture *cap, size_t from,
                      int midstream)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        return -1;
    fputc(midstream ? 1 : 0, fp);
    for (size_t i = from; i < cap->nseg; i++) {
        const struct seg *seg = &cap->seg[i];
        size_t off = 0;
        do {
            size_t n = seg->len - off > 65535 ? 65535 : seg->len - off;
            int op = seg->dir | (seg->kind == SEG_GAP ? 2 : seg->kind == SEG_FIN ? 4 : seg->kind == SEG_RST ? 6 : 0);
            fputc(op, fp);
            fputc((int)(n >> 8), fp);
            fputc((int)(n & 255), fp);
            if (seg->kind == SEG_DATA)
                fwrite(cap->bytes + seg->off + off, 1, n, fp);
            off += n;
        } while (seg->kind == SEG_DATA && off < seg->len);
    }
    return fclose(fp);
}

static int write_seeds(const char *dir)
{
    struct link l;
    size_t seg_of[10];
    int32_t sid[64];
    int rv = 0;
    mkdir(dir, 0755);
    build_mixed(&l);
    rv |= write_seed(dir, "mem-mixed", &l.cap, 0, 0);
    link_free(&l);
    build_sequence(&l, 0, 4, seg_of, sid);
    rv |= write_seed(dir, "mem-sequence", &l.cap, 0, 0);
    rv |= write_seed(dir, "mem-midstream", &l.cap, seg_of[4], 1);
    link_free(&l);
    build_sequence(&l, 1, -1, seg_of, sid);
    rv |= write_seed(dir, "mem-midstream-literal", &l.cap, seg_of[3] + 1, 1);
    link_free(&l);
    link_init(&l, 0, 65536, 65536);
    pump(&l, 500);
    table_round(&l, 0, 34, 1000, sid);
    rv |= write_seed(dir, "mem-table-size", &l.cap, 0, 0);
    link_free(&l);
    link_init(&l, 0, 0, 0);
    int32_t s1 = request(&l, "GET", "/index.html", 0);
    int32_t s3 = request(&l, "GET", "/b", 0);
    flush(&l, MESH_C2S, 1000);
    nghttp2_nv promise[] = {mknv(&l, ":method", "GET"), mknv(&l, ":scheme", "http"),
                            mknv(&l, ":authority", "example.org"), mknv(&l, ":path", "/style.css")};
    int32_t s2 = nghttp2_submit_push_promise(l.server, NGHTTP2_FLAG_NONE, s1, promise, 4, NULL);
    respond(&l, s1, 200, 100, -1, 0);
    respond(&l, s2, 200, 300, -1, 0);
    nghttp2_nv cont = mknv(&l, ":status", "103");
    nghttp2_submit_headers(l.server, NGHTTP2_FLAG_NONE, s3, NULL, &cont, 1, NULL);
    flush(&l, MESH_S2C, 2000);
    nghttp2_submit_goaway(l.server, NGHTTP2_FLAG_NONE, s1, NGHTTP2_NO_ERROR, NULL, 0);
    pump(&l, 3000);
    cap_seg(&l.cap, SEG_GAP, MESH_S2C, 4000, 0, 100);
    cap_seg(&l.cap, SEG_FIN, MESH_C2S, 5000, 0, 0);
    rv |= write_seed(dir, "mem-push-goaway-gap", &l.cap, 0, 0);
    link_free(&l);
    return rv;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
        if (write_seeds(argv[2]) != 0) {
            fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        return 0;
    }
    RUN(test_unary);
    RUN(test_grpc_trailers);
    RUN(test_trailers_only);
    RUN(test_concurrent);
    RUN(test_padding);
    RUN(test_continuation);
    RUN(test_rst_stream);
    RUN(test_goaway);
    RUN(test_header_table_size);
    RUN(test_informational);
    RUN(test_headers);
    RUN(test_push);
    RUN(test_feeding_patterns);
    RUN(test_midstream);
    RUN(test_reordered);
    RUN(test_gap);
    RUN(test_fin_close);
    RUN(test_pending_cap);
    RUN(test_frame_errors);
    RUN(test_hpack_failure);
    RUN(test_midstream_raw);
    RUN(test_odd_fields);
    RUN(test_sniff);
    got_reset(&got_a);
    got_reset(&got_b);
    return TEST_REPORT();
}
