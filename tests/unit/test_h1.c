/* tests/unit/test_h1.c — the HTTP/1.x parser (lib/h1.c) and the passive
 * decoder (replay/h1.c), with exact expected values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dec.h"
#include "mesh/err.h"
#include "mesh/evt.h"
#include "mesh/h1.h"
#include "mesh/hdrcap.h"
#include "test.h"

/* --- parser helpers ----------------------------------------------------------------------------
 */

/* Feeds |s| whole and records events as letters: B H D T E P, or '!' for an
 * error. Stops at PAUSED or an error. Returns the letters. */
static const char *parse_all(struct mesh_h1_parser *p, const char *s, size_t len,
                             uint64_t *body_bytes, int *err)
{
    static char trace[256];
    size_t n = 0, used;
    const uint8_t *buf = (const uint8_t *)s;
    *err = 0;
    for (;;) {
        int ev = mesh_h1_parse(p, buf, len, &used, NULL);
        buf += used;
        len -= used;
        if (ev < 0) {
            *err = ev;
            trace[n++] = '!';
            break;
        }
        if (ev == MESH_H1_NEED_MORE)
            break;
        trace[n++] = "-BHDTEP"[ev];
        if (ev == MESH_H1_DATA && body_bytes != NULL)
            *body_bytes += p->body_len;
        if (ev == MESH_H1_PAUSED || n > 200)
            break;
    }
    trace[n] = '\0';
    return trace;
}

#define PARSE(p, lit, bytes, err) parse_all((p), (lit), sizeof(lit) - 1, (bytes), (err))

static void test_parse_request(void)
{
    struct mesh_h1_parser p;
    uint64_t body = 0;
    int err;
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 1024, MESH_H1_LENIENT);
    const char *req = "POST /api/vote?choice=:doughnut: HTTP/1.1\r\n"
                      "Host:  127.0.0.1:18081 \r\n"
                      "Content-Length: 4\r\n"
                      "Connection: keep-alive, Upgrade\r\n"
                      "\r\n"
                      "abcd";
    size_t used;
    CHECK_EQ_INT(mesh_h1_parse(&p, (const uint8_t *)req, strlen(req), &used, NULL), MESH_H1_BEGIN);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_STR(parse_all(&p, req, strlen(req), &body, &err), "HDE");
    CHECK_EQ_STR(p.msg.method, "POST");
    CHECK_EQ_INT(p.msg.method_len, 4);
    CHECK_EQ_STR(p.msg.target, "/api/vote?choice=:doughnut:");
    CHECK_EQ_INT(p.msg.version, 11);
    CHECK_EQ_STR(p.msg.host, "127.0.0.1:18081");
    CHECK_EQ_INT(p.msg.host_len, 15);
    CHECK_EQ_INT(p.msg.content_length, 4);
    CHECK_EQ_INT(p.msg.framing, MESH_H1_LENGTH);
    CHECK_EQ_INT(p.msg.flags, MESH_H1_F_KEEP_ALIVE);
    CHECK_EQ_INT(body, 4);
    CHECK_EQ_STR(mesh_h1_field_get(p.msg.fields, p.msg.fields_len, "content-LENGTH"), "4");
    CHECK_EQ_STR(mesh_h1_field_get(p.msg.fields, p.msg.fields_len, "connection"),
                 "keep-alive, Upgrade");
    CHECK(mesh_h1_field_get(p.msg.fields, p.msg.fields_len, "cookie") == NULL);
    size_t pos = 0, nfields = 0;
    const char *name, *value;
    while (mesh_h1_field_next(p.msg.fields, p.msg.fields_len, &pos, &name, &value))
        nfields++;
    CHECK_EQ_INT(nfields, 3);

    /* the same parser reads the next message; CONNECT pauses after its head */
    body = 0;
    CHECK_EQ_STR(PARSE(&p, "\r\nCONNECT example.com:443 HTTP/1.1\r\n\r\nxyz", &body, &err), "BHEP");
    CHECK_EQ_STR(p.msg.target, "example.com:443");
    CHECK_EQ_INT(p.msg.method_id, MESH_H1_M_CONNECT);
    CHECK(p.msg.host == NULL);
    CHECK_EQ_STR(PARSE(&p, "xyz", &body, &err), "P");
    mesh_h1_parser_resume(&p);
    CHECK_EQ_STR(PARSE(&p, "GET / HTTP/1.0\r\n\r\n", &body, &err), "BHE");
    CHECK_EQ_INT(p.msg.version, 10);
    mesh_h1_parser_free(&p);
}

static void test_parse_lenient(void)
{
    struct mesh_h1_parser p;
    int err;
    /* LF-only lines, obs-fold, a line without colon, space before the colon,
     * an odd version and any method token */
    static const char odd[] = "CCM_POST  /x  HTTP/1.\n"
                              "Host:\n"
                              "  folded.example\n"
                              "X-Fold: a\n"
                              "\t b \n"
                              "no colon here\n"
                              "Content-Length : 2\n"
                              "\n"
                              "ok";
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 1024, MESH_H1_LENIENT);
    CHECK_EQ_STR(PARSE(&p, odd, NULL, &err), "BHDE");
    CHECK_EQ_STR(p.msg.method, "CCM_POST");
    CHECK_EQ_STR(p.msg.target, "/x");
    CHECK_EQ_INT(p.msg.version, -1);
    CHECK_EQ_STR(p.msg.host, "folded.example");
    CHECK_EQ_STR(mesh_h1_field_get(p.msg.fields, p.msg.fields_len, "x-fold"), "a b");
    CHECK_EQ_INT(p.msg.content_length, 2);
    mesh_h1_parser_free(&p);

    /* a proxy's strict reading refuses the same message */
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 1024, 0);
    CHECK_EQ_STR(PARSE(&p, odd, NULL, &err), "B!");
    CHECK_EQ_INT(err, MESH_EPROTO);
    mesh_h1_parser_free(&p);

    /* never HTTP/1.x, in either mode */
    static const char nul[] = "GET / HTTP/1.1\r\nA\0: b\r\n\r\n";
    static const char *const bad[] = {"GET /HTTP/1.1\r\n\r\n",
                                      "OPTIONS\r\n\r\n",
                                      "OPTIONS HTTP/1.1\r\n\r\n",
                                      "GET/ HTTP/1.1\r\n\r\n",
                                      "PRI * HTTP/2.0\r\n\r\n",
                                      "\x01\x02 / HTTP/1.1\r\n\r\n",
                                      nul};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mesh_h1_parser_init(&p, MESH_H1_REQUEST, 1024, MESH_H1_LENIENT);
        size_t len = bad[i] == nul ? sizeof(nul) - 1 : strlen(bad[i]);
        CHECK_EQ_STR(parse_all(&p, bad[i], len, NULL, &err), "B!");
        CHECK_EQ_INT(err, MESH_EPROTO);
        mesh_h1_parser_free(&p);
    }
}

static void test_parse_chunked(void)
{
    struct mesh_h1_parser p;
    uint64_t body = 0;
    int err;
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    static const char rsp[] = "HTTP/1.1 200 OK\r\n"
                              "Transfer-Encoding: gzip, chunked\r\n"
                              "Content-Length: 999\r\n"
                              "\r\n"
                              "5;name=value\r\nhello\r\n"
                              "6 ; ext=\"q\"\r\n world\r\n"
                              "0\r\n"
                              "X-Checksum: abc\r\n"
                              "X-Other: 1\r\n"
                              "\r\n";
    CHECK_EQ_STR(PARSE(&p, rsp, &body, &err), "BHDDTE");
    CHECK_EQ_INT(body, 11);
    CHECK_EQ_INT(p.msg.status, 200);
    CHECK_EQ_STR(p.msg.reason, "OK");
    CHECK_EQ_INT(p.msg.framing, MESH_H1_CHUNKED);
    CHECK_EQ_STR(mesh_h1_field_get(p.msg.trailers, p.msg.trailers_len, "x-checksum"), "abc");
    CHECK_EQ_STR(mesh_h1_field_get(p.msg.trailers, p.msg.trailers_len, "x-other"), "1");
    CHECK_EQ_STR(mesh_h1_field_get(p.msg.fields, p.msg.fields_len, "content-length"), "999");

    /* byte by byte, the same events in the same order (DATA once per byte) */
    mesh_h1_parser_free(&p);
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    body = 0;
    int trailers = 0, ends = 0;
    for (size_t i = 0; i < sizeof(rsp) - 1; i++) {
        const char *t = parse_all(&p, rsp + i, 1, &body, &err);
        trailers += strchr(t, 'T') != NULL;
        ends += strchr(t, 'E') != NULL;
        CHECK(strchr(t, '!') == NULL);
    }
    CHECK_EQ_INT(body, 11);
    CHECK_EQ_INT(trailers, 1);
    CHECK_EQ_INT(ends, 1);
    CHECK_EQ_STR(mesh_h1_field_get(p.msg.trailers, p.msg.trailers_len, "x-checksum"), "abc");

    /* no trailers, LF-only chunk lines */
    body = 0;
    CHECK_EQ_STR(
        PARSE(&p, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", &body, &err),
        "BHDE");
    CHECK_EQ_INT(body, 3);
    CHECK_EQ_INT(p.msg.trailers_len, 0);

    /* a bad size, and a missing line end after the data */
    CHECK_EQ_STR(
        PARSE(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &body, &err),
        "BH!");
    CHECK_EQ_INT(err, MESH_EPROTO);
    mesh_h1_parser_free(&p);
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    CHECK_EQ_STR(
        PARSE(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc", &body, &err),
        "BHD!");
    mesh_h1_parser_free(&p);
}

static void test_parse_response_framing(void)
{
    struct mesh_h1_parser p;
    uint64_t body = 0;
    int err;
    size_t used;
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    /* HEAD: the Content-Length describes a body that is not sent */
    static const char head_rsp[] = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    CHECK_EQ_INT(mesh_h1_parse(&p, (const uint8_t *)head_rsp, sizeof(head_rsp) - 1, &used, NULL),
                 MESH_H1_BEGIN);
    CHECK_EQ_INT(mesh_h1_parse(&p, (const uint8_t *)head_rsp, sizeof(head_rsp) - 1, &used, NULL),
                 MESH_H1_HEAD);
    CHECK_EQ_INT(p.msg.framing, MESH_H1_LENGTH);
    CHECK_EQ_INT(mesh_h1_parser_answer(&p, MESH_H1_M_HEAD), 0);
    CHECK_EQ_INT(p.msg.framing, MESH_H1_NO_BODY);
    CHECK_EQ_STR(PARSE(&p, "", &body, &err), "E");
    CHECK_EQ_INT(mesh_h1_parser_answer(&p, MESH_H1_M_HEAD), MESH_EINVAL);
    /* 1xx, 204 and 304 never have a body */
    CHECK_EQ_STR(PARSE(&p,
                       "HTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
                       "HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n",
                       &body, &err),
                 "BHEBHEBHE");
    CHECK_EQ_INT(body, 0);
    /* without a length, a response ends with the stream */
    CHECK_EQ_STR(PARSE(&p, "HTTP/1.0 200 OK\r\n\r\nall of this", &body, &err), "BHD");
    CHECK_EQ_INT(p.msg.framing, MESH_H1_UNTIL_CLOSE);
    CHECK_EQ_INT(p.msg.version, 10);
    CHECK_EQ_STR(PARSE(&p, " and more", &body, &err), "D");
    CHECK_EQ_INT(body, 20);
    CHECK_EQ_INT(mesh_h1_parse_eof(&p, NULL), MESH_H1_END);
    CHECK_EQ_STR(PARSE(&p, "x", &body, &err), "!");
    mesh_h1_parser_free(&p);

    /* a truncated body is reported at the end of the stream */
    const char *desc = NULL;
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    CHECK_EQ_STR(PARSE(&p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &body, &err), "BHD");
    CHECK_EQ_INT(mesh_h1_parse_eof(&p, &desc), MESH_EPROTO);
    CHECK_EQ_STR(desc, "message truncated");
    mesh_h1_parser_free(&p);

    /* 101 and a 2xx to CONNECT switch protocols: the parser pauses */
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    CHECK_EQ_STR(
        PARSE(&p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\nPRI", &body, &err),
        "BHEP");
    CHECK(p.msg.flags & MESH_H1_F_UPGRADE);
    mesh_h1_parser_resume(&p);
    CHECK_EQ_INT(mesh_h1_parse(&p, (const uint8_t *)"HTTP/1.1 200 OK\r\n\r\n", 19, &used, NULL),
                 MESH_H1_BEGIN);
    CHECK_EQ_INT(mesh_h1_parse(&p, (const uint8_t *)"HTTP/1.1 200 OK\r\n\r\n", 19, &used, NULL),
                 MESH_H1_HEAD);
    CHECK_EQ_INT(mesh_h1_parser_answer(&p, MESH_H1_M_CONNECT), 0);
    CHECK_EQ_STR(PARSE(&p, "\x16\x03\x01", &body, &err), "EP");
    mesh_h1_parser_free(&p);

    /* status lines: no reason phrase; garbage */
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    CHECK_EQ_STR(PARSE(&p, "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", &body, &err), "BHE");
    CHECK_EQ_INT(p.msg.status, 404);
    CHECK_EQ_STR(p.msg.reason, "");
    CHECK_EQ_STR(PARSE(&p, "HTTP/1.1 20x OK\r\n\r\n", &body, &err), "B!");
    mesh_h1_parser_free(&p);
}

static void test_parse_caps(void)
{
    struct mesh_h1_parser p;
    int err;
    const char *desc = NULL;
    size_t used;
    char big[300];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 256, MESH_H1_LENIENT);
    CHECK_EQ_STR(parse_all(&p, big, 200, NULL, &err), "B");
    CHECK_EQ_INT(mesh_h1_parse(&p, (const uint8_t *)big, 100, &used, &desc), MESH_ETOOBIG);
    CHECK_EQ_STR(desc, "header section too large");
    desc = NULL;
    CHECK_EQ_INT(mesh_h1_parse(&p, (const uint8_t *)"\r\n\r\n", 4, &used, &desc), MESH_ETOOBIG);
    CHECK_EQ_STR(desc, "header section too large");
    CHECK_EQ_INT(used, 0);
    mesh_h1_parser_free(&p);

    /* the same head within the cap */
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 256, MESH_H1_LENIENT);
    memcpy(big + 250, "\r\n\r\n", 4);
    CHECK_EQ_STR(parse_all(&p, big, 254, NULL, &err), "BHE");
    mesh_h1_parser_free(&p);

    /* chunk-size lines: extensions count, leading zeros too */
    static char line[MESH_H1_MAX_CHUNK_LINE + 200];
    size_t n = (size_t)snprintf(line, sizeof(line),
                                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    memset(line + n, 'e', MESH_H1_MAX_CHUNK_LINE);
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 256, MESH_H1_LENIENT);
    CHECK_EQ_STR(parse_all(&p, line, n + MESH_H1_MAX_CHUNK_LINE, NULL, &err), "BH!");
    CHECK_EQ_INT(err, MESH_ETOOBIG);
    mesh_h1_parser_free(&p);
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 256, MESH_H1_LENIENT);
    CHECK_EQ_STR(PARSE(&p,
                       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "10000000000000000\r\n",
                       NULL, &err),
                 "BH!");
    CHECK_EQ_INT(err, MESH_EPROTO);
    mesh_h1_parser_free(&p);

    /* framing that cannot be trusted */
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mesh_h1_parser_init(&p, MESH_H1_REQUEST, 256, MESH_H1_LENIENT);
        CHECK_EQ_STR(parse_all(&p, bad[i], strlen(bad[i]), NULL, &err), "B!");
        mesh_h1_parser_free(&p);
    }
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 256, MESH_H1_LENIENT);
    CHECK_EQ_STR(PARSE(&p, "GET / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nok", NULL, &err), "BHDE");
    mesh_h1_parser_free(&p);
}

static void test_parse_resync_skip(void)
{
    struct mesh_h1_parser p;
    uint64_t body = 0;
    int err;
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, 1024, MESH_H1_LENIENT);
    /* a position that may be mid-line: only well-known methods count there */
    mesh_h1_parser_resync(&p, 0);
    CHECK_EQ_STR(PARSE(&p, "POST / HTTP/1.1\r\n\r\n", NULL, &err), "BHE");
    mesh_h1_parser_resync(&p, 0);
    /* two candidates (the request line, "Host"), both thrown away */
    CHECK_EQ_STR(PARSE(&p, "CCM_POST / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, &err), "BB");
    CHECK_EQ_INT(p.discarded, 32);
    /* at a certain line start any method does; body lines and lines that only
     * look like requests (odd version, no colon in a field) are skipped */
    CHECK_EQ_STR(PARSE(&p,
                       "tail of a body\r\n"
                       "GET /not HTTP/1.\r\n"
                       "FAKE / HTTP/1.1\r\nnot a field\r\n\r\n"
                       "CCM_POST /real HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
                       &body, &err),
                 "BBBHDE");
    CHECK_EQ_STR(p.msg.method, "CCM_POST");
    CHECK_EQ_STR(p.msg.target, "/real");
    CHECK_EQ_INT(body, 3);
    mesh_h1_parser_free(&p);

    /* lost bytes inside a counted body keep the framing */
    mesh_h1_parser_init(&p, MESH_H1_RESPONSE, 1024, MESH_H1_LENIENT);
    CHECK_EQ_STR(PARSE(&p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", &body, &err), "BHD");
    CHECK_EQ_INT(mesh_h1_parser_skip(&p, 8), MESH_EDESYNC); /* would take the last byte */
    CHECK_EQ_INT(mesh_h1_parser_skip(&p, 7), 0);
    CHECK_EQ_STR(PARSE(&p, "jHTTP/1.1 204 No Content\r\n\r\n", &body, &err), "DEBHE");
    CHECK_EQ_STR(
        PARSE(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", &body, &err),
        "BHD");
    CHECK_EQ_INT(mesh_h1_parser_skip(&p, 2), 0);
    CHECK_EQ_STR(PARSE(&p, "\r\n0\r\n\r\n", &body, &err), "E");
    CHECK_EQ_STR(PARSE(&p, "HTTP/1.1 200 OK\r\n", &body, &err), "B");
    CHECK_EQ_INT(mesh_h1_parser_skip(&p, 1), MESH_EDESYNC); /* inside a head */
    mesh_h1_parser_free(&p);
}

/* --- decoder helpers -----------------------------------------------------------------------------
 */

#define MAX_EVTS 1100

struct run {
    void *dec;
    struct mesh_dec_stats stats;
    struct mesh_evt_copy evts[MAX_EVTS];
    uint32_t streams[MAX_EVTS];
    int n;
};

static void sink(void *ctx, struct mesh_evt *evt, uint32_t stream)
{
    struct run *r = ctx;
    if (r->n < MAX_EVTS && mesh_evt_copy(&r->evts[r->n], evt) == 0)
        r->streams[r->n++] = stream;
}

static void run_open_hdrs(struct run *r, int midstream, const struct mesh_hdr_sel *hdrs)
{
    memset(r, 0, sizeof(*r));
    r->dec = mesh_h1_dec.open(sink, r, midstream, hdrs, &r->stats);
    CHECK(r->dec != NULL);
}

static void run_open(struct run *r, int midstream)
{
    run_open_hdrs(r, midstream, NULL);
}

static int feed_len(struct run *r, int dir, const char *s, size_t len, uint64_t ts)
{
    return mesh_h1_dec.data(r->dec, dir, (const uint8_t *)s, len, ts, NULL);
}

#define FEED(r, dir, lit, ts) CHECK_EQ_INT(feed_len((r), (dir), (lit), sizeof(lit) - 1, (ts)), 0)

static void run_free(struct run *r)
{
    for (int i = 0; i < r->n; i++)
        mesh_evt_copy_free(&r->evts[i]);
    r->n = 0;
}

static void run_close(struct run *r, uint64_t ts)
{
    mesh_h1_dec.close(r->dec, ts);
    r->dec = NULL;
}

/* Checks event |i| field by field. */
static void check_evt(struct run *r, int i, uint32_t stream, const char *method,
                      const char *authority, const char *path, int status, uint64_t ts,
                      int64_t latency, int64_t duration, uint64_t req_bytes, uint64_t rsp_bytes,
                      const char *error, int line)
{
    if (i >= r->n) {
        fprintf(stderr, "%s:%d: event %d missing (%d events)\n", __FILE__, line, i, r->n);
        test_failed_++;
        return;
    }
    const struct mesh_evt *e = &r->evts[i].evt;
    int before = test_failed_;
    CHECK_EQ_INT(r->streams[i], stream);
    CHECK_EQ_INT(e->proto, MESH_PROTO_HTTP1);
    CHECK_EQ_STR(e->scheme, "http");
    CHECK_EQ_STR(e->method, method);
    CHECK_EQ_STR(e->authority, authority);
    CHECK_EQ_STR(e->path, path);
    CHECK_EQ_INT(e->status, status);
    CHECK_EQ_INT(e->grpc_status, -1);
    CHECK_EQ_INT(e->ts_us, ts);
    CHECK_EQ_INT(e->latency_us, latency);
    CHECK_EQ_INT(e->duration_us, duration);
    CHECK_EQ_INT(e->req_bytes, req_bytes);
    CHECK_EQ_INT(e->rsp_bytes, rsp_bytes);
    CHECK_EQ_STR(e->error, error);
    if (test_failed_ != before)
        fprintf(stderr, "%s:%d: ^ in event %d\n", __FILE__, line, i);
}

#define EVT(r, i, stream, method, authority, path, status, ts, lat, dur, reqb, rspb, error)        \
    check_evt((r), (i), (stream), (method), (authority), (path), (status), (ts), (lat), (dur),     \
              (reqb), (rspb), (error), __LINE__)

#define C2S MESH_C2S
#define S2C MESH_S2C

/* --- decoder: exchanges
 * ---------------------------------------------------------------------------- */

static void test_keepalive(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S, "GET /api/vote?choice=:doughnut: HTTP/1.1\r\nHost: 127.0.0.1:18081\r\n\r\n",
         1000);
    FEED(&r, S2C, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nhel", 1500);
    CHECK_EQ_INT(r.n, 0);
    FEED(&r, S2C, "lo", 1700);
    CHECK_EQ_INT(r.n, 1);
    FEED(&r, C2S, "POST /b HTTP/1.1\r\nHost: [::1]:18081\r\nContent-Length: 3\r\n\r\nabc", 2000);
    FEED(&r, S2C, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 2600);
    /* latency runs to the response's first byte, not to the end of its head */
    FEED(&r, C2S, "GET /c HTTP/1.1\r\nHo", 3000);
    FEED(&r, C2S, "st: h\r\n\r\n", 3100);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nCont", 3500);
    FEED(&r, S2C, "ent-Length: 0\r\n\r\n", 3800);
    run_close(&r, 4000);
    CHECK_EQ_INT(r.n, 3);
    EVT(&r, 0, 1, "GET", "127.0.0.1:18081", "/api/vote?choice=:doughnut:", 500, 1000, 500, 700, 0,
        5, NULL);
    EVT(&r, 1, 2, "POST", "[::1]:18081", "/b", 201, 2000, 600, 600, 3, 0, NULL);
    EVT(&r, 2, 3, "GET", "h", "/c", 200, 3000, 500, 800, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.exchanges, 3);
    CHECK_EQ_INT(r.stats.incomplete, 0);
    CHECK(!mesh_evt_failed(&r.evts[1].evt));
    CHECK(mesh_evt_failed(&r.evts[0].evt));
    run_free(&r);
}

static void test_pipelined(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S,
         "GET /1 HTTP/1.1\r\nHost: www.mozilla.org\r\n\r\n"
         "GET /2 HTTP/1.1\r\nHost: www.mozilla.org\r\n\r\n"
         "HEAD /3 HTTP/1.1\r\nHost: www.mozilla.org\r\n\r\n",
         100);
    FEED(&r, S2C,
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
         "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
         200);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 300);
    FEED(&r, C2S, "GET /4 HTTP/1.1\r\nHost: www.mozilla.org\r\n\r\n", 400);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", 450);
    run_close(&r, 500);
    CHECK_EQ_INT(r.n, 4);
    EVT(&r, 0, 1, "GET", "www.mozilla.org", "/1", 200, 100, 100, 100, 0, 2, NULL);
    EVT(&r, 1, 2, "GET", "www.mozilla.org", "/2", 404, 100, 100, 100, 0, 0, NULL);
    EVT(&r, 2, 3, "HEAD", "www.mozilla.org", "/3", 200, 100, 200, 200, 0, 0, NULL);
    EVT(&r, 3, 4, "GET", "www.mozilla.org", "/4", 200, 400, 50, 50, 0, 1, NULL);
    run_free(&r);
}

static void test_chunked(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S,
         "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3;a=b\r\nabc\r\n",
         10);
    FEED(&r, C2S, "2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n", 20);
    FEED(&r, S2C,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5;name=value\r\nhello\r\n6 ; ext=\"q\"\r\n world\r\n",
         30);
    CHECK_EQ_INT(r.n, 0);
    FEED(&r, S2C, "0\r\nX-Checksum: abc\r\n\r\n", 45);
    CHECK_EQ_INT(r.n, 1);
    run_close(&r, 50);
    EVT(&r, 0, 1, "POST", "h", "/up", 200, 10, 20, 35, 5, 11, NULL);
    run_free(&r);
}

static void test_no_body_responses(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S, "GET /cached HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n", 20);
    FEED(&r, C2S, "DELETE /item HTTP/1.1\r\nHost: h\r\n\r\n", 30);
    FEED(&r, S2C, "HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n", 35);
    FEED(&r, C2S, "HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n", 40);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n", 42);
    FEED(&r, C2S, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n", 50);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody", 55);
    run_close(&r, 60);
    CHECK_EQ_INT(r.n, 4);
    EVT(&r, 0, 1, "GET", "h", "/cached", 304, 10, 10, 10, 0, 0, NULL);
    EVT(&r, 1, 2, "DELETE", "h", "/item", 204, 30, 5, 5, 0, 0, NULL);
    EVT(&r, 2, 3, "HEAD", "h", "/big", 200, 40, 2, 2, 0, 0, NULL);
    EVT(&r, 3, 4, "GET", "h", "/after", 200, 50, 5, 5, 0, 4, NULL);
    CHECK_EQ_INT(r.stats.proto_errors, 0);
    run_free(&r);
}

static void test_100_continue(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S,
         "POST / HTTP/1.1\r\nHost: www.osu.edu\r\nContent-Length: 4\r\n"
         "Expect: 100-continue\r\n\r\n",
         10);
    FEED(&r, S2C, "HTTP/1.1 100 Continue\r\n\r\n", 20);
    FEED(&r, C2S, "data", 30);
    FEED(&r, S2C,
         "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
         "2\r\nok\r\n0\r\n\r\n",
         40);
    run_close(&r, 50);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "POST", "www.osu.edu", "/", 200, 10, 30, 30, 4, 2, NULL);
    run_free(&r);
}

/* --tap-header: the request's and the final response's fields and the
 * response's trailers, never an interim response's; redacted by name; each exchange its
 * own, across the ring's growth (more than H1_RING_MIN pipelined). */
static void test_headers(void)
{
    static struct mesh_hdr_sel sel;
    const char *why;
    memset(&sel, 0, sizeof(sel));
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.tap, "user-agent,cookie,set-cookie,x-resp,x-interim,x-trailer,x-key", &why), 0);
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.redact, "X-Key", &why), 0);
    struct run r;
    run_open_hdrs(&r, 0, &sel);
    char req[256], rsp[256];
    for (int i = 1; i <= 6; i++) {
        int n = snprintf(req, sizeof(req),
                         "GET /%d HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/%d\r\nCookie: c=%d\r\n"
                         "Accept: */*\r\n\r\n", i, i, i);
        CHECK_EQ_INT(feed_len(&r, C2S, req, (size_t)n, 10), 0);
    }
    FEED(&r, S2C, "HTTP/1.1 103 Early Hints\r\nX-Interim: no\r\n\r\n", 20);
    for (int i = 1; i <= 6; i++) {
        int n = i == 6 ? snprintf(rsp, sizeof(rsp),
                                  "HTTP/1.1 200 OK\r\nX-Resp: r%d\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "1\r\nz\r\n0\r\nX-Trailer: t%d\r\n\r\n", i, i)
                       : snprintf(rsp, sizeof(rsp),
                                  "HTTP/1.1 200 OK\r\nSet-Cookie: s=%d\r\nX-Resp: r%d\r\nX-Key: k\r\n"
                                  "Content-Length: 0\r\n\r\n", i, i);
        CHECK_EQ_INT(feed_len(&r, S2C, rsp, (size_t)n, 30), 0);
    }
    run_close(&r, 50);
    CHECK_EQ_INT(r.n, 6);
    char buf[512], want[512];
    for (int i = 0; i < r.n && i < 6; i++) {
        if (i < 5)
            snprintf(want, sizeof(want),
                     "q:user-agent=ua/%d q:cookie=<redacted> s:set-cookie=<redacted> s:x-resp=r%d "
                     "s:x-key=<redacted>", i + 1, i + 1);
        else
            snprintf(want, sizeof(want), "q:user-agent=ua/6 q:cookie=<redacted> s:x-resp=r6 t:x-trailer=t6");
        CHECK_EQ_STR(test_hdrs_str(&r.evts[i].evt, buf, sizeof(buf)), want);
    }
    run_free(&r);

    /* without a selection, nothing */
    run_open(&r, 0);
    FEED(&r, C2S, "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20);
    run_close(&r, 30);
    CHECK_EQ_INT(r.n, 1);
    CHECK(r.n == 1 && r.evts[0].evt.nheaders == 0 && r.evts[0].evt.headers == NULL);
    run_free(&r);
}

static void test_http10_until_close(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S, "GET /old HTTP/1.0\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome", 20);
    FEED(&r, S2C, " body", 35);
    CHECK_EQ_INT(r.n, 0);
    mesh_h1_dec.fin(r.dec, S2C, 50, 0);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", NULL, "/old", 200, 10, 10, 25, 0, 9, NULL);
    run_close(&r, 60);
    run_free(&r);

    /* the capture ends without the FIN: the end of the body is unknown */
    run_open(&r, 0);
    FEED(&r, C2S, "GET /old HTTP/1.0\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.0 200 OK\r\n\r\nsome", 20);
    run_close(&r, 60);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", "h", "/old", 200, 10, 10, -1, 0, 4, "response incomplete");
    CHECK_EQ_INT(r.stats.incomplete, 1);
    run_free(&r);
}

static void test_incomplete_at_close(void)
{
    struct run r;
    /* zeek multipart-form-data: the server never answered */
    run_open(&r, 0);
    FEED(&r, C2S, "POST / HTTP/1.1\r\nHost: localhost:8000\r\nContent-Length: 5\r\n\r\nab", 10);
    FEED(&r, C2S, "cde", 11);
    run_close(&r, 99);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "POST", "localhost:8000", "/", -1, 10, -1, -1, 5, 0, "no response");
    CHECK(mesh_evt_failed(&r.evts[0].evt));
    CHECK_EQ_INT(r.stats.incomplete, 1);
    run_free(&r);

    /* the server closed: pending requests are emitted at its FIN; the client's
     * FIN cuts a request body short */
    run_open(&r, 0);
    FEED(&r, C2S, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 20);
    mesh_h1_dec.fin(r.dec, S2C, 30, 0);
    CHECK_EQ_INT(r.n, 2);
    EVT(&r, 0, 1, "GET", "h", "/a", 200, 10, 10, -1, 0, 3, "response incomplete");
    EVT(&r, 1, 2, "GET", "h", "/b", -1, 10, -1, -1, 0, 0, "no response");
    FEED(&r, C2S, "PUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc", 40);
    mesh_h1_dec.fin(r.dec, C2S, 50, 0);
    CHECK_EQ_INT(r.n, 3);
    EVT(&r, 2, 3, "PUT", "h", "/c", -1, 40, -1, -1, 3, 0, "no response");
    run_close(&r, 60);
    run_free(&r);
}

static void test_upgrade(void)
{
    struct run r;
    /* 101: the exchange is emitted, the rest is not HTTP/1 */
    run_open(&r, 0);
    FEED(&r, C2S,
         "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 10);
    FEED(&r, S2C,
         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\n\r\n\x81\x05hello",
         20);
    CHECK_EQ_INT(r.n, 1);
    FEED(&r, C2S, "\x81\x85garbage that is not HTTP", 30);
    FEED(&r, S2C, "more frames", 40);
    mesh_h1_dec.fin(r.dec, S2C, 50, 0);
    run_close(&r, 60);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", "h", "/ws", 101, 10, 10, 10, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.proto_errors, 0);
    run_free(&r);

    /* CONNECT 2xx: a tunnel */
    run_open(&r, 0);
    FEED(&r, C2S, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 200 Connection Established\r\n\r\n", 20);
    FEED(&r, C2S, "\x16\x03\x01\x02\x00", 30);
    FEED(&r, S2C, "\x16\x03\x03\x00\x7a", 40);
    run_close(&r, 60);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "CONNECT", "example.com:443", "example.com:443", 200, 10, 10, 10, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.proto_errors, 0);
    run_free(&r);

    /* not granted: the client's next request, sent meanwhile, is HTTP/1 */
    run_open(&r, 0);
    FEED(&r, C2S, "CONNECT example.com:443 HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n", 10);
    FEED(&r, C2S, "GET /third HTTP/1.1\r\n\r\n", 15);
    FEED(&r, S2C,
         "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno"
         "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
         20);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 25);
    run_close(&r, 60);
    CHECK_EQ_INT(r.n, 3);
    EVT(&r, 0, 1, "CONNECT", NULL, "example.com:443", 407, 10, 10, 10, 0, 2, NULL);
    EVT(&r, 1, 2, "GET", NULL, "/after", 404, 10, 10, 10, 0, 0, NULL);
    EVT(&r, 2, 3, "GET", NULL, "/third", 200, 15, 10, 10, 0, 0, NULL);
    run_free(&r);

    /* h2c upgrade ignored by the server */
    run_open(&r, 0);
    FEED(&r, C2S,
         "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
         "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
         10);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 20);
    FEED(&r, C2S, "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n", 30);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 40);
    run_close(&r, 60);
    CHECK_EQ_INT(r.n, 2);
    EVT(&r, 1, 2, "GET", "h", "/2", 200, 30, 10, 10, 0, 0, NULL);
    run_free(&r);
}

static void test_tolerant(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S, "CCM_POST /x HTTP/1.\nHost:\n  folded.example\nContent-Length: 2\n\nok", 10);
    FEED(&r, S2C, "HTTP/1.1 405 Method Not Allowed\nContent-Length: 3\n\nno!", 20);
    FEED(&r, C2S, "\r\nOPTIONS * HTTP/1.1\r\nHost: www.google.com\r\n\r\n", 30);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 40);
    FEED(&r, C2S, "GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n", 50);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 60);
    run_close(&r, 70);
    CHECK_EQ_INT(r.n, 3);
    EVT(&r, 0, 1, "CCM_POST", "folded.example", "/x", 405, 10, 10, 10, 2, 3, NULL);
    EVT(&r, 1, 2, "OPTIONS", "www.google.com", "*", 200, 30, 10, 10, 0, 0, NULL);
    EVT(&r, 2, 3, "GET", "example.com", "http://example.com/p?q", 200, 50, 10, 10, 0, 0, NULL);
    run_free(&r);

    /* zeek edge-methods: request lines that are not HTTP/1.x stop the client
     * side; the responses are dropped and nothing is emitted */
    static const char *const odd[] = {"GET /HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
                                      "OPTIONS\r\nHost: www.google.com\r\n\r\n",
                                      "OPTIONS HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
                                      "OPTIONSHTTP/1.1\r\nHost: www.google.com\r\n\r\n",
                                      "\xd0\x9f\xd0\x9e / HTTP/1.\r\nHost: www.google.com\r\n\r\n"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        const char *desc = NULL;
        run_open(&r, 0);
        CHECK_EQ_INT(
            mesh_h1_dec.data(r.dec, C2S, (const uint8_t *)odd[i], strlen(odd[i]), 10, &desc),
            MESH_EPROTO);
        CHECK(desc != NULL);
        FEED(&r, S2C, "HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad", 20);
        FEED(&r, S2C, "HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad", 21);
        mesh_h1_dec.fin(r.dec, S2C, 30, 0);
        run_close(&r, 40);
        CHECK_EQ_INT(r.n, 0);
        CHECK_EQ_INT(r.stats.dropped, 2);
        CHECK_EQ_INT(r.stats.proto_errors, 1);
        run_free(&r);
    }
}

/* --- decoder: caps
 * ---------------------------------------------------------------------------------- */

static void test_header_cap(void)
{
    struct run r;
    const char *desc = NULL;
    size_t big = MESH_DEC_MAX_HEADER + 10;
    char *buf = malloc(big);
    memset(buf, 'a', big);
    memcpy(buf, "GET / HTTP/1.1\r\nX-Big: ", 23);
    run_open(&r, 0);
    FEED(&r, C2S, "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n", 5);
    /* in pieces, so the cap is hit while collecting, not in one append */
    CHECK_EQ_INT(feed_len(&r, C2S, buf, big / 2, 10), 0);
    CHECK_EQ_INT(mesh_h1_dec.data(r.dec, C2S, (const uint8_t *)buf, big / 2, 11, &desc),
                 MESH_ETOOBIG);
    CHECK_EQ_STR(desc, "header section too large");
    desc = NULL;
    CHECK_EQ_INT(mesh_h1_dec.data(r.dec, C2S, (const uint8_t *)"\r\n\r\n", 4, 12, &desc),
                 MESH_ETOOBIG);
    CHECK_EQ_STR(desc, "header section too large");
    CHECK_EQ_INT(r.stats.proto_errors, 1);
    /* the server side goes on: the first request is answered, the second is not known */
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20);
    FEED(&r, S2C, "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n", 21);
    run_close(&r, 30);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", "h", "/ok", 200, 5, 15, 15, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.dropped, 1);
    run_free(&r);

    /* a response head over the cap: what waits for it cannot be decoded */
    run_open(&r, 0);
    FEED(&r, C2S, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 5);
    memcpy(buf, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    CHECK_EQ_INT(mesh_h1_dec.data(r.dec, S2C, (const uint8_t *)buf, big, 10, &desc), MESH_ETOOBIG);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", "h", "/a", -1, 5, -1, -1, 0, 0, "undecodable response");
    run_close(&r, 30);
    run_free(&r);
    free(buf);
}

static void test_pending_cap(void)
{
    struct run r;
    const char *desc = NULL;
    static const char req[] = "GET / HTTP/1.1\r\n\r\n";
    run_open(&r, 0);
    for (unsigned i = 0; i < MESH_DEC_MAX_PENDING; i++)
        CHECK_EQ_INT(feed_len(&r, C2S, req, sizeof(req) - 1, 10 + i), 0);
    CHECK_EQ_INT(mesh_h1_dec.data(r.dec, C2S, (const uint8_t *)req, sizeof(req) - 1, 5000, &desc),
                 MESH_ETOOBIG);
    CHECK_EQ_STR(desc, "too many pending requests");
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 6000);
    CHECK_EQ_INT(r.n, 1);
    run_close(&r, 7000);
    CHECK_EQ_INT(r.n, (int)MESH_DEC_MAX_PENDING);
    EVT(&r, 0, 1, "GET", NULL, "/", 200, 10, 5990, 5990, 0, 0, NULL);
    EVT(&r, 1, 2, "GET", NULL, "/", -1, 11, -1, -1, 0, 0, "no response");
    EVT(&r, (int)MESH_DEC_MAX_PENDING - 1, MESH_DEC_MAX_PENDING, "GET", NULL, "/", -1,
        10 + MESH_DEC_MAX_PENDING - 1, -1, -1, 0, 0, "no response");
    run_free(&r);
}

/* --- decoder: midstream, gaps, resets
 * ----------------------------------------------------------------- */

static void test_midstream(void)
{
    struct run r;
    /* the capture began inside an upload and inside its response's body */
    run_open(&r, 1);
    FEED(&r, S2C, "ld\"}\n{\"tail\": \"of a response body\"}\nHTTP/1.1 is mentioned here\n", 5);
    FEED(&r, C2S, "dy bytes of an upload\r\nHost: fake\r\n\r\nmore\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 20);
    FEED(&r, C2S, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n", 30);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 40);
    run_close(&r, 50);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", "h", "/next", 200, 30, 10, 10, 0, 3, NULL);
    CHECK_EQ_INT(r.stats.dropped, 1); /* the 201 answered a request never seen */
    run_free(&r);

    /* a response that began before the request cannot answer it, even when
     * its head is complete only after the request was seen */
    run_open(&r, 1);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Le", 5);
    FEED(&r, C2S, "GET /mine HTTP/1.1\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "ngth: 6\r\n\r\nformer", 15);
    FEED(&r, S2C, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 20);
    run_close(&r, 50);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", "h", "/mine", 404, 10, 10, 10, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.dropped, 1);
    run_free(&r);

    /* the resync skipped a response (it did not begin at a line start) whose
     * request was seen: that request is dropped, the FIFO does not shift */
    run_open(&r, 1);
    FEED(&r, C2S, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "x\":1}HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", 20);
    FEED(&r, C2S, "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n", 30);
    FEED(&r, S2C, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 40);
    FEED(&r, C2S, "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n", 50);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 60);
    run_close(&r, 70);
    CHECK_EQ_INT(r.n, 2);
    EVT(&r, 0, 2, "GET", "h", "/2", 404, 30, 10, 10, 0, 0, NULL);
    EVT(&r, 1, 3, "GET", "h", "/3", 200, 50, 10, 10, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.dropped, 1);
    run_free(&r);

    /* where the start may be mid-line, an unknown method may be cut (from
     * CCM_POST): not trusted; after a line end it is */
    run_open(&r, 1);
    FEED(&r, C2S, "CM_POST /cut HTTP/1.1\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20);
    FEED(&r, C2S, "CCM_POST /whole HTTP/1.1\r\nHost: h\r\n\r\n", 30);
    FEED(&r, S2C, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 40);
    run_close(&r, 50);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "CCM_POST", "h", "/whole", 201, 30, 10, 10, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.dropped, 1);
    run_free(&r);
}

static void test_gap(void)
{
    struct run r;
    /* lost server bytes beyond the body: pending exchanges are emitted, the
     * server side resynchronises, and its next response answers nothing */
    run_open(&r, 0);
    FEED(&r, C2S, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234", 30);
    mesh_h1_dec.gap(r.dec, S2C, 100, 40);
    CHECK_EQ_INT(r.n, 2);
    EVT(&r, 0, 1, "GET", "h", "/a", 200, 10, 20, -1, 0, 5, "capture gap");
    EVT(&r, 1, 2, "GET", "h", "/b", -1, 10, -1, -1, 0, 0, "capture gap");
    FEED(&r, S2C, "d of something\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", 50);
    FEED(&r, C2S, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n", 60);
    FEED(&r, S2C, "HTTP/1.1 204 No Content\r\n\r\n", 70);
    run_close(&r, 80);
    CHECK_EQ_INT(r.n, 3);
    EVT(&r, 2, 3, "GET", "h", "/c", 204, 60, 10, 10, 0, 0, NULL);
    CHECK_EQ_INT(r.stats.dropped, 1);
    CHECK_EQ_INT(r.stats.incomplete, 2);
    run_free(&r);

    /* lost client bytes: the upload is emitted, its response (after the gap)
     * is not paired with the request that follows */
    run_open(&r, 0);
    FEED(&r, C2S, "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789", 10);
    mesh_h1_dec.gap(r.dec, C2S, 200, 20);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "POST", "h", "/up", -1, 10, -1, -1, 10, 0, "capture gap");
    FEED(&r, C2S, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n", 30);
    FEED(&r, S2C, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n\r\nno", 40);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 50);
    run_close(&r, 60);
    CHECK_EQ_INT(r.n, 2);
    EVT(&r, 1, 2, "GET", "h", "/next", 200, 30, 20, 20, 0, 0, NULL);
    run_free(&r);

    /* lost bytes inside a body of known length change nothing but the count */
    run_open(&r, 0);
    FEED(&r, C2S, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 20);
    mesh_h1_dec.gap(r.dec, S2C, 50, 30);
    FEED(&r, S2C, "0123456789012345678901234567890123456789", 40);
    run_close(&r, 50);
    CHECK_EQ_INT(r.n, 1);
    EVT(&r, 0, 1, "GET", "h", "/big", 200, 10, 10, 30, 0, 100, NULL);
    run_free(&r);
}

static void test_reset(void)
{
    struct run r;
    run_open(&r, 0);
    FEED(&r, C2S, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", 10);
    FEED(&r, S2C, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12", 20);
    mesh_h1_dec.fin(r.dec, S2C, 30, 1);
    CHECK_EQ_INT(r.n, 2);
    EVT(&r, 0, 1, "GET", "h", "/a", 200, 10, 10, -1, 0, 2, "connection reset");
    EVT(&r, 1, 2, "GET", "h", "/b", -1, 10, -1, -1, 0, 0, "connection reset");
    FEED(&r, S2C, "345678", 40);
    FEED(&r, C2S, "GET /c HTTP/1.1\r\n\r\n", 40);
    run_close(&r, 50);
    CHECK_EQ_INT(r.n, 2);
    CHECK_EQ_INT(r.stats.incomplete, 2);
    run_free(&r);
}

/* --- whole vs byte by byte
 * -------------------------------------------------------------------------- */

struct step {
    int dir;
    uint64_t ts;
    const char *bytes;
};

static const struct step script[] = {
    {C2S, 100,
     "GET /style/enhanced.css HTTP/1.1\r\nHost: www.mozilla.org\r\nConnection: keep-alive\r\n\r\n"
     "POST /form HTTP/1.1\nHost: www.mozilla.org\nContent-Length: 5\nExpect: 100-continue\n\n"},
    {S2C, 150, "HTTP/1.1 200 OK\r\nContent-Length:        5\r\n\r\nbody!"},
    {S2C, 160, "HTTP/1.1 100 Continue\r\n\r\n"},
    {C2S, 170, "hello\r\nHEAD /h HTTP/1.1\r\nHost: www.mozilla.org\r\n\r\n"},
    {S2C, 180,
     "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n0\r\nT: 1\r\n\r\n"
     "HTTP/1.1 200 OK\r\nContent-Length: 77\r\n\r\n"},
    {C2S, 200, "GET /close HTTP/1.0\r\nHost: h\r\n\r\n"},
    {S2C, 210, "HTTP/1.0 200 OK\r\nX-Folded: a\r\n b\r\n\r\nuntil the end"},
    {S2C, 220, NULL}, /* FIN */
};

static void play(struct run *r, int bytewise)
{
    run_open(r, 0);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
        const struct step *s = &script[i];
        if (s->bytes == NULL) {
            mesh_h1_dec.fin(r->dec, s->dir, s->ts, 0);
            continue;
        }
        size_t len = strlen(s->bytes);
        if (!bytewise)
            CHECK_EQ_INT(feed_len(r, s->dir, s->bytes, len, s->ts), 0);
        else
            for (size_t k = 0; k < len; k++)
                CHECK_EQ_INT(feed_len(r, s->dir, s->bytes + k, 1, s->ts), 0);
    }
    run_close(r, 300);
}

static void test_whole_vs_bytewise(void)
{
    static struct run whole, bytes;
    play(&whole, 0);
    play(&bytes, 1);
    CHECK_EQ_INT(whole.n, 4);
    EVT(&whole, 0, 1, "GET", "www.mozilla.org", "/style/enhanced.css", 200, 100, 50, 50, 0, 5,
        NULL);
    EVT(&whole, 1, 2, "POST", "www.mozilla.org", "/form", 201, 100, 80, 80, 5, 4, NULL);
    EVT(&whole, 2, 3, "HEAD", "www.mozilla.org", "/h", 200, 170, 10, 10, 0, 0, NULL);
    EVT(&whole, 3, 4, "GET", "h", "/close", 200, 200, 10, 10, 0, 13, NULL);
    CHECK_EQ_INT(bytes.n, whole.n);
    for (int i = 0; i < whole.n && i < bytes.n; i++) {
        const struct mesh_evt *a = &whole.evts[i].evt;
        EVT(&bytes, i, whole.streams[i], a->method, a->authority, a->path, a->status, a->ts_us,
            a->latency_us, a->duration_us, a->req_bytes, a->rsp_bytes, a->error);
    }
    CHECK_EQ_INT(bytes.stats.exchanges, whole.stats.exchanges);
    CHECK_EQ_INT(bytes.stats.dropped, whole.stats.dropped);
    run_free(&whole);
    run_free(&bytes);
}

/* --- sniffing
 * --------------------------------------------------------------------------------------- */

static void test_sniff(void)
{
    static const struct {
        const char *s;
        int want;
    } cases[] = {
        {"GET / HTTP/1.1\r\n", 1},
        {"CCM_POST / HTTP/1.1", 1},
        {"GET / HTTP/1.", 1},
        {"OPTIONS * HTTP/1.0", 1},
        {"GET / HTTP/1", -1},
        {"GET /", -1},
        {"GET", -1},
        {"", -1},
        {"H", -1},
        {"HTTP/1.1 200 OK\r\n", 2},
        {"HTTP/1.0 404", 2},
        {"HTTP/1.1 2", -1},
        {"HTTP/1.1 abc", 0},
        {"HTTP/2 200", 0},
        {"PRI * HTTP/2.0\r\n", 0},
        {"\x16\x03\x01\x02\x00", 0},
        {"GET /HTTP/1.1\r\n", 0},
        {"GET  / HTTP/1.1", 0},
        {"OPTIONS HTTP/1.1\r\n", 0},
        {"GET / SIP/2.0", 0},
        {"get / HTTP/1.1", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = mesh_h1_sniff((const uint8_t *)cases[i].s, strlen(cases[i].s));
        if (got != cases[i].want)
            fprintf(stderr, "sniff \"%s\": %d, want %d\n", cases[i].s, got, cases[i].want);
        CHECK_EQ_INT(got, cases[i].want);
    }
}

int main(void)
{
    RUN(test_parse_request);
    RUN(test_parse_lenient);
    RUN(test_parse_chunked);
    RUN(test_parse_response_framing);
    RUN(test_parse_caps);
    RUN(test_parse_resync_skip);
    RUN(test_keepalive);
    RUN(test_pipelined);
    RUN(test_chunked);
    RUN(test_no_body_responses);
    RUN(test_100_continue);
    RUN(test_headers);
    RUN(test_http10_until_close);
    RUN(test_incomplete_at_close);
    RUN(test_upgrade);
    RUN(test_tolerant);
    RUN(test_header_cap);
    RUN(test_pending_cap);
    RUN(test_midstream);
    RUN(test_gap);
    RUN(test_reset);
    RUN(test_whole_vs_bytewise);
    RUN(test_sniff);
    return TEST_REPORT();
}
