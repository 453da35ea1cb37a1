/* Unit tests for lib/: capped buffer, JSON strings, the event's JSON and
 * protobuf forms, the histogram's error bound, label maps, resources,
 * filters, human units and header capture. */
#define _GNU_SOURCE /* memmem */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt.h"
#include "mesh/evt_pb.h"
#include "mesh/filter.h"
#include "mesh/fmt.h"
#include "mesh/hdrcap.h"
#include "mesh/hist.h"
#include "mesh/labels.h"
#include "mesh/resource.h"
#include "test.h"

static void test_buf_cap(void)
{
    struct mesh_buf b;
    mesh_buf_init(&b, 8);
    CHECK_EQ_INT(mesh_buf_appends(&b, "12345"), 0);
    CHECK_EQ_INT(mesh_buf_appends(&b, "6789"), MESH_ETOOBIG);
    CHECK_EQ_INT(b.len, 5); /* a failed append leaves the buffer as it was */
    CHECK_EQ_INT(mesh_buf_appends(&b, "678"), 0);
    CHECK_EQ_STR(b.data, "12345678");
    mesh_buf_consume(&b, 3);
    CHECK_EQ_STR(b.data, "45678");
    CHECK_EQ_INT(mesh_buf_printf(&b, "%d", 123), 0);
    CHECK_EQ_STR(b.data, "45678123");
    mesh_buf_free(&b);
}

static void test_json_str(void)
{
    struct mesh_buf b;
    mesh_buf_init(&b, 1024);
    const char in[] = "a\"b\\c\n\x01 \xf0\x9f\x8d\xa9 \xff\xc3";
    CHECK_EQ_INT(mesh_buf_json_str(&b, in, sizeof(in) - 1), 0);
    /* escapes, the doughnut kept, bad bytes replaced by U+FFFD */
    CHECK_EQ_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001 \xf0\x9f\x8d\xa9 \xef\xbf\xbd\xef\xbf\xbd\"");
    mesh_buf_free(&b);
}

static struct mesh_evt sample_evt(void)
{
    struct mesh_evt e;
    mesh_evt_init(&e);
    e.ts_us = 1700000000123456ull;
    e.direction = MESH_DIR_INBOUND;
    e.src = "10.0.0.1:5000";
    e.dst = "[::1]:8080";
    e.dst_labels.ns = "emojivoto";
    e.dst_labels.deploy = "voting";
    e.proto = MESH_PROTO_GRPC;
    e.method = "POST";
    e.scheme = "http";
    e.authority = "voting:8080";
    e.path = "/emojivoto.v1.VotingService/VoteDoughnut";
    e.status = 200;
    e.grpc_status = 2;
    e.latency_us = 1500;
    e.duration_us = 1600;
    e.req_bytes = 5;
    e.rsp_bytes = 0;
    e.id = "3:7";
    return e;
}

static void test_evt_json(void)
{
    struct mesh_evt e = sample_evt();
    struct mesh_buf b;
    mesh_buf_init(&b, 4096);
    CHECK_EQ_INT(mesh_evt_to_json(&e, &b), 0);
    CHECK_EQ_STR(b.data,
                 "{\"ts\":1700000000123456,\"id\":\"3:7\",\"proxy_direction\":\"inbound\","
                 "\"src\":\"10.0.0.1:5000\",\"dst\":\"[::1]:8080\",\"dst_labels\":{\"namespace\":"
                 "\"emojivoto\",\"deployment\":\"voting\"},\"proto\":\"grpc\",\"method\":\"POST\","
                 "\"scheme\":\"http\",\"authority\":\"voting:8080\",\"path\":\"/emojivoto.v1."
                 "VotingService/VoteDoughnut\",\"status\":200,\"grpc_status\":2,\"latency_us\":"
                 "1500,\"duration_us\":1600,\"req_bytes\":5,\"rsp_bytes\":0,\"classification\":"
                 "\"failure\"}");
    /* absent values are omitted, never 0 */
    mesh_evt_init(&e);
    mesh_buf_reset(&b);
    CHECK_EQ_INT(mesh_evt_to_json(&e, &b), 0);
    CHECK(strstr(b.data, "status") == NULL);
    CHECK(strstr(b.data, "latency_us") == NULL);
    mesh_buf_free(&b);
}

static void test_classification(void)
{
    struct mesh_evt e = sample_evt();
    CHECK_EQ_INT(mesh_evt_failed(&e), 1); /* grpc-status 2 */
    e.grpc_status = 0;
    e.status = 500;
    CHECK_EQ_INT(mesh_evt_failed(&e), 0); /* grpc status decides when present */
    e.grpc_status = -1;
    CHECK_EQ_INT(mesh_evt_failed(&e), 1);
    e.status = 404;
    CHECK_EQ_INT(mesh_evt_failed(&e), 0);
    e.reset = 8;
    CHECK_EQ_INT(mesh_evt_failed(&e), 1);
    e.reset = -1;
    e.duration_us = -1; /* response never ended */
    CHECK_EQ_INT(mesh_evt_failed(&e), 1);
}

static void test_evt_pb_roundtrip(void)
{
    struct mesh_evt e = sample_evt(), back;
    struct mesh_buf b;
    struct mesh_evt_pb pb;
    mesh_buf_init(&b, 4096);
    CHECK_EQ_INT(mesh_evt_pack(&e, &b), 0);
    CHECK_EQ_INT(mesh_evt_unpack((const uint8_t *)b.data, b.len, &pb, &back), 0);
    CHECK_EQ_INT(back.ts_us, e.ts_us);
    CHECK_EQ_INT(back.direction, MESH_DIR_INBOUND);
    CHECK_EQ_STR(back.dst_labels.deploy, "voting");
    CHECK(back.src_labels.deploy == NULL);
    CHECK_EQ_STR(back.path, e.path);
    CHECK_EQ_INT(back.grpc_status, 2);
    CHECK_EQ_INT(back.reset, -1);
    CHECK_EQ_INT(back.latency_us, 1500);
    CHECK_EQ_INT(back.proto, MESH_PROTO_GRPC);
    CHECK_EQ_STR(back.id, "3:7");
    CHECK_EQ_INT(back.nheaders, 0);
    mesh_evt_pb_free(&pb);

    /* captured headers: a redacted one travels without its value; the
     * response's come after the request's */
    struct mesh_header hs[4] = {{"set-cookie", "id=s3cret", 1, 1, 0},
                                {"user-agent", "curl/7.88.1", 0, 0, 0},
                                {"authorization", "Bearer s3cret", 1, 0, 0},
                                {"grpc-message", "no doughnut", 0, 1, 1}};
    e.headers = hs;
    e.nheaders = 4;
    mesh_buf_reset(&b);
    CHECK_EQ_INT(mesh_evt_pack(&e, &b), 0);
    CHECK(memmem(b.data, b.len, "s3cret", 6) == NULL);
    CHECK_EQ_INT(mesh_evt_unpack((const uint8_t *)b.data, b.len, &pb, &back), 0);
    CHECK_EQ_INT(back.nheaders, 4);
    if (back.nheaders == 4) {
        CHECK_EQ_STR(back.headers[0].name, "user-agent");
        CHECK_EQ_STR(back.headers[0].value, "curl/7.88.1");
        CHECK_EQ_INT(back.headers[0].redacted, 0);
        CHECK_EQ_INT(back.headers[0].response, 0);
        CHECK_EQ_STR(back.headers[1].name, "authorization");
        CHECK(back.headers[1].value == NULL);
        CHECK_EQ_INT(back.headers[1].redacted, 1);
        CHECK_EQ_STR(back.headers[2].name, "set-cookie");
        CHECK_EQ_INT(back.headers[2].response, 1);
        CHECK_EQ_INT(back.headers[2].redacted, 1);
        CHECK_EQ_INT(back.headers[2].trailer, 0);
        CHECK_EQ_STR(back.headers[3].name, "grpc-message");
        CHECK_EQ_INT(back.headers[3].response, 1);
        CHECK_EQ_INT(back.headers[3].trailer, 1);
    }
    struct mesh_buf j;
    mesh_buf_init(&j, 1u << 16);
    CHECK_EQ_INT(mesh_evt_to_json(&back, &j), 0);
    CHECK(strstr(j.data, "\"headers\":[{\"name\":\"user-agent\",\"value\":\"curl/7.88.1\"},"
                         "{\"name\":\"authorization\",\"redacted\":true}],"
                         "\"response_headers\":[{\"name\":\"set-cookie\",\"redacted\":true},"
                         "{\"name\":\"grpc-message\",\"value\":\"no doughnut\",\"trailer\":true}]") != NULL);
    struct mesh_evt_copy copy;
    CHECK_EQ_INT(mesh_evt_copy(&copy, &back), 0);
    mesh_evt_pb_free(&pb); /* the copy owns its strings */
    CHECK_EQ_INT(copy.evt.nheaders, 4);
    CHECK_EQ_INT(copy.evt.headers[3].trailer, 1);
    CHECK_EQ_STR(copy.evt.headers[0].value, "curl/7.88.1");
    CHECK_EQ_STR(copy.evt.headers[1].name, "authorization");
    CHECK(copy.evt.headers[1].value == NULL);
    CHECK_EQ_INT(copy.evt.headers[2].response, 1);
    /* none of one kind: no member for it */
    e.nheaders = 1;
    mesh_buf_reset(&j);
    CHECK_EQ_INT(mesh_evt_to_json(&e, &j), 0);
    CHECK(strstr(j.data, "\"response_headers\":[{") != NULL && strstr(j.data, "\"headers\"") == NULL);
    mesh_evt_copy_free(&copy);
    mesh_buf_free(&j);
    CHECK_EQ_INT(mesh_evt_unpack((const uint8_t *)"\xff\xff\xff", 3, &pb, &back), MESH_EPROTO);
    mesh_evt_pb_free(&pb);
    mesh_buf_free(&b);
}

/* mesh_evt_pb_append (by hand) against mesh_evt_pack (protobuf-c): the same
 * bytes for 5000 random events, every field present or absent, values across
 * varint lengths, strings from empty to past 127 bytes; and inside a
 * ReportRequest that protobuf-c unpacks to the same events. */
static void test_evt_pb_hand_encoder(void)
{
    static const char *const strs[] = {NULL, "", "a", "GET", "10.0.0.1:80", "voting",
                                       "/emojivoto.v1.VotingService/VoteDoughnut?x=\xc3\xa9",
                                       NULL};
    char longs[2][300];
    memset(longs[0], 'x', 127), longs[0][127] = '\0';
    memset(longs[1], 'y', 299), longs[1][299] = '\0';
    const char *pool[10];
    memcpy(pool, strs, 7 * sizeof(*pool));
    pool[7] = longs[0], pool[8] = longs[1], pool[9] = NULL;
    static const int64_t nums[] = {-1, 0, 1, 127, 128, 16383, 16384, 2097152, 4294967295LL,
                                   (int64_t)1 << 40};
    unsigned seed = 12345;
#define PICK(n) (seed = seed * 1103515245u + 12345u, (seed >> 8) % (n))
    struct mesh_buf a, h, report;
    mesh_buf_init(&a, 1u << 20);
    mesh_buf_init(&h, 1u << 20);
    mesh_buf_init(&report, 64u << 20);
    int same = 1;
    for (int i = 0; i < 5000; i++) {
        struct mesh_evt e;
        mesh_evt_init(&e);
        e.ts_us = (uint64_t)nums[1 + PICK(9)];
        e.direction = (enum mesh_direction)PICK(4);
        e.proto = (enum mesh_proto)PICK(4);
        const char **fields[] = {&e.src,        &e.dst,          &e.method,
                                 &e.scheme,     &e.authority,    &e.path,
                                 &e.error,      &e.id,           &e.src_labels.ns,
                                 &e.src_labels.deploy, &e.src_labels.pod, &e.dst_labels.ns,
                                 &e.dst_labels.deploy, &e.dst_labels.pod};
        for (size_t f = 0; f < sizeof(fields) / sizeof(*fields); f++)
            *fields[f] = pool[PICK(10)];
        e.status = (int)(nums[PICK(5)]);
        e.grpc_status = (int)(nums[PICK(4)]);
        e.reset = nums[PICK(6)];
        e.latency_us = nums[PICK(10)];
        e.duration_us = nums[PICK(10)];
        e.req_bytes = (uint64_t)nums[1 + PICK(9)];
        e.rsp_bytes = (uint64_t)nums[1 + PICK(9)];
        struct mesh_header hs[MESH_EVT_HEADERS_MAX];
        e.nheaders = PICK(8) == 0 ? MESH_EVT_HEADERS_MAX : PICK(3);
        for (size_t k = 0; k < e.nheaders; k++) {
            hs[k].name = pool[PICK(10)];
            hs[k].value = pool[PICK(10)];
            hs[k].redacted = PICK(3) == 0;
            hs[k].response = PICK(2);
            hs[k].trailer = PICK(3) == 0; /* sent only with response */
        }
        e.headers = e.nheaders ? hs : NULL;
        mesh_buf_reset(&a);
        mesh_buf_reset(&h);
        CHECK_EQ_INT(mesh_evt_pack(&e, &a), 0);
        CHECK_EQ_INT(mesh_evt_pb_append(&e, &h, 0), 0);
        if (a.len != h.len || memcmp(a.data, h.data, a.len) != 0) {
            if (same)
                fprintf(stderr, "  event %d: protobuf-c %zu bytes, by hand %zu\n", i, a.len, h.len);
            same = 0;
        }
        CHECK_EQ_INT(mesh_evt_pb_append(&e, &report, 3), 0);
    }
    CHECK(same);
    Mesh__Tap__V1__ReportRequest *rr =
        mesh__tap__v1__report_request__unpack(NULL, report.len, (const uint8_t *)report.data);
    CHECK(rr != NULL);
    if (rr != NULL) {
        CHECK_EQ_INT(rr->n_events, 5000);
        mesh__tap__v1__report_request__free_unpacked(rr, NULL);
    }
#undef PICK
    mesh_buf_free(&a);
    mesh_buf_free(&h);
    mesh_buf_free(&report);
}

static void test_hist_error_bound(void)
{
    static struct mesh_hist h;
    mesh_hist_init(&h);
    CHECK_EQ_INT(mesh_hist_quantile(&h, 0.5), -1);
    /* every single value comes back within 1% */
    for (uint64_t v = 1; v < 50000000; v = v * 1.37 + 1) {
        mesh_hist_init(&h);
        mesh_hist_add(&h, v);
        mesh_hist_add(&h, v + 1000000000); /* so min/max clamping does not help */
        int64_t got = mesh_hist_quantile(&h, 0.5);
        CHECK(fabs((double)got - (double)v) <= 0.01 * (double)v);
    }
    /* quantiles of 1..10000 */
    mesh_hist_init(&h);
    for (uint64_t v = 1; v <= 10000; v++)
        mesh_hist_add(&h, v);
    int64_t p50 = mesh_hist_quantile(&h, 0.5), p99 = mesh_hist_quantile(&h, 0.99);
    CHECK(fabs((double)p50 - 5000) <= 50);
    CHECK(fabs((double)p99 - 9900) <= 99);
    CHECK_EQ_INT(mesh_hist_quantile(&h, 1.0), 10000);
    CHECK_EQ_INT(mesh_hist_quantile(&h, 0.0), 1);
    /* buckets tile the line */
    for (unsigned b = 0; b + 1 < MESH_HIST_BUCKETS - 1; b++)
        CHECK(mesh_hist_bucket_high(b) + 1 == mesh_hist_bucket_low(b + 1));
}

static void test_labelmap(void)
{
    char path[] = "/tmp/mesh-labels-XXXXXX", err[256];
    int fd = mkstemp(path);
    const char text[] = "# demo\n127.0.0.1:8080 emojivoto/web/web-0\n[::1]:9090 emojivoto/voting\n"
                        "10.0.0.9 emojivoto/vote-bot  # any port\n";
    CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
    close(fd);
    struct mesh_labelmap *m = NULL;
    CHECK_EQ_INT(mesh_labelmap_load(path, &m, err, sizeof(err)), 0);
    const struct mesh_labels *l = mesh_labelmap_find(m, "127.0.0.1", 8080);
    CHECK(l != NULL && strcmp(l->deploy, "web") == 0 && strcmp(l->pod, "web-0") == 0);
    l = mesh_labelmap_find(m, "::1", 9090);
    CHECK(l != NULL && strcmp(l->deploy, "voting") == 0 && l->pod == NULL);
    l = mesh_labelmap_find(m, "10.0.0.9", 41234);
    CHECK(l != NULL && strcmp(l->deploy, "vote-bot") == 0);
    CHECK(mesh_labelmap_find(m, "127.0.0.1", 8081) == NULL);
    mesh_labelmap_free(m);
    FILE *fp = fopen(path, "w");
    fputs("127.0.0.1:8080 emojivoto/web\nnot-an-ip emojivoto/web\n", fp);
    fclose(fp);
    CHECK_EQ_INT(mesh_labelmap_load(path, &m, err, sizeof(err)), MESH_EFORMAT);
    CHECK(strstr(err, ":2: ") != NULL);
    unlink(path);
    CHECK_EQ_INT(mesh_labelmap_load(path, &m, err, sizeof(err)), MESH_EIO);
}

static void test_resource_filter(void)
{
    struct mesh_resource r;
    const char *desc;
    char a1[] = "deploy/voting", a2[] = "bogus/x", a3[] = "ns";
    CHECK_EQ_INT(mesh_resource_parse(a1, &r, &desc), 0);
    CHECK_EQ_INT(r.type, MESH_RT_DEPLOY);
    CHECK_EQ_STR(r.name, "voting");
    CHECK_EQ_INT(mesh_resource_parse(a2, &r, &desc), MESH_EINVAL);
    CHECK_EQ_INT(mesh_resource_parse(a3, &r, &desc), 0);
    CHECK(r.type == MESH_RT_NS && r.name == NULL);

    struct mesh_evt e = sample_evt();
    struct mesh_filter f;
    mesh_filter_init(&f);
    CHECK_EQ_INT(mesh_filter_match(&f, &e), 1);
    f.to.type = MESH_RT_DEPLOY;
    f.to.name = "voting";
    CHECK_EQ_INT(mesh_filter_match(&f, &e), 1);
    f.to.ns = "other";
    CHECK_EQ_INT(mesh_filter_match(&f, &e), 0);
    f.to.ns = NULL;
    f.path_prefix = "/emojivoto.v1.VotingService/";
    CHECK_EQ_INT(mesh_filter_match(&f, &e), 1);
    CHECK_EQ_INT(mesh_filter_set_status(&f, "5xx"), 0);
    CHECK_EQ_INT(mesh_filter_match(&f, &e), 0); /* 200 */
    CHECK_EQ_INT(mesh_filter_set_status(&f, "2xx"), 0);
    CHECK_EQ_INT(mesh_filter_match(&f, &e), 1);
    CHECK_EQ_INT(mesh_filter_set_status(&f, "2x"), MESH_EINVAL);
    f.min_latency_us = 2000;
    CHECK_EQ_INT(mesh_filter_match(&f, &e), 0);
}

static void test_fmt(void)
{
    char b[32];
    uint64_t us;
    CHECK_EQ_STR(mesh_fmt_latency(b, sizeof(b), 850), "850µs");
    CHECK_EQ_STR(mesh_fmt_latency(b, sizeof(b), 1500), "1.50ms");
    CHECK_EQ_STR(mesh_fmt_latency(b, sizeof(b), 25000), "25ms");
    CHECK_EQ_STR(mesh_fmt_latency(b, sizeof(b), 2350000), "2.35s");
    CHECK_EQ_STR(mesh_fmt_latency(b, sizeof(b), -1), "-");
    CHECK_EQ_STR(mesh_fmt_pct(b, sizeof(b), 0.85), "85.00%");
    CHECK_EQ_INT(mesh_parse_duration_us("100ms", &us), 0);
    CHECK_EQ_INT(us, 100000);
    CHECK_EQ_INT(mesh_parse_duration_us("1m", &us), 0);
    CHECK_EQ_INT(us, 60000000);
    CHECK_EQ_INT(mesh_parse_duration_us("10 parsecs", &us), MESH_EINVAL);
    CHECK_EQ_INT(mesh_str_width("a\xf0\x9f\x8d\xa9"), 3); /* the doughnut is two columns */
}

/* Header capture (mesh/hdrcap.h): the names a command line gives, which
 * fields are kept, redaction by name only, the caps, the UTF-8 cut. */
static void test_header_capture(void)
{
    static struct mesh_hdr_sel sel; /* two name tables: not on the stack */
    memset(&sel, 0, sizeof(sel));
    const char *why = NULL;
    static const char *bad[] = {"", "a,", ",a", "x y", "a:b", "caf\xc3\xa9",
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mesh_hdr_names names;
        memset(&names, 0, sizeof(names));
        why = NULL;
        CHECK_EQ_INT(mesh_hdr_names_add(&names, bad[i], &why), -1);
        CHECK(why != NULL);
    }
    CHECK(!mesh_hdr_sel_on(&sel));
    CHECK(!mesh_hdr_sel_on((const struct mesh_hdr_sel *)NULL));
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.tap, "User-Agent,x-request-id,Authorization,X-Key,Cookie", &why), 0);
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.redact, "x-KEY", &why), 0);
    CHECK(mesh_hdr_sel_on(&sel));
    struct mesh_hdrcap cap = {0};
    char longv[600];
    memset(longv, 'v', sizeof(longv));
    memcpy(longv + 255, "\xc3\xa9", 2); /* a 2-byte character across the 256-byte cut */
    const char *fields[][2] = {{":path", "/x"}, {"USER-AGENT", "curl/8"}, {"accept", "*/*"},
                               {"authorization", "Bearer s3cret"}, {"x-key", "k3y"},
                               {"mesh-src", "ns/d/p"}, {"x-request-id", longv}, {"cookie", "a=b"}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        mesh_hdrcap_offer(&sel, &cap, 0, fields[i][0], strlen(fields[i][0]), fields[i][1],
                          fields[i][1] == longv ? sizeof(longv) : strlen(fields[i][1]));
    mesh_hdrcap_offer(&sel, &cap, 1, "x-key", 5, "k3y", 3); /* a response's, redacted too */
    mesh_hdrcap_offer(&sel, &cap, MESH_HDR_TRAILER, "x-request-id", 12, "t", 1); /* a trailer */
    struct mesh_evt evt;
    struct mesh_header hs[MESH_EVT_HEADERS_MAX];
    mesh_evt_init(&evt);
    mesh_hdrcap_apply(&cap, &evt, hs);
    CHECK_EQ_INT(evt.nheaders, 7);
    CHECK_EQ_INT(cap.nkind[1], 2); /* trailers count with the response's fields */
    if (evt.nheaders == 7) {
        CHECK_EQ_STR(evt.headers[0].name, "user-agent"); /* lower case */
        CHECK_EQ_STR(evt.headers[0].value, "curl/8");
        CHECK(!evt.headers[0].redacted && !evt.headers[0].response);
        CHECK_EQ_STR(evt.headers[1].name, "authorization");
        CHECK(evt.headers[1].redacted && evt.headers[1].value == NULL);
        CHECK_EQ_STR(evt.headers[2].name, "x-key"); /* --redact-header */
        CHECK(evt.headers[2].redacted && evt.headers[2].value == NULL);
        CHECK_EQ_STR(evt.headers[3].name, "x-request-id");
        CHECK_EQ_INT(strlen(evt.headers[3].value), 255); /* cut before the character */
        CHECK_EQ_STR(evt.headers[4].name, "cookie");
        CHECK(evt.headers[4].redacted);
        CHECK(evt.headers[5].response && evt.headers[5].redacted && !evt.headers[5].trailer);
        CHECK(evt.headers[6].response && evt.headers[6].trailer && !evt.headers[6].redacted);
        CHECK_EQ_STR(evt.headers[6].value, "t");
        CHECK(!evt.headers[0].trailer);
    }
    CHECK(memmem(cap.recs.data, cap.recs.len, "s3cret", 6) == NULL &&
          memmem(cap.recs.data, cap.recs.len, "k3y", 3) == NULL);

    /* "*": every header but pseudo-headers and mesh-src/mesh-dst, at most
     * 16 of each side; "*" redaction keeps names only */
    memset(&sel, 0, sizeof(sel));
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.tap, "*", &why), 0);
    CHECK_EQ_INT(mesh_hdr_names_add(&sel.redact, "*", &why), 0);
    mesh_hdrcap_reset(&cap);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "h%d", i);
        mesh_hdrcap_offer(&sel, &cap, 0, name, strlen(name), "value", 5);
        mesh_hdrcap_offer(&sel, &cap, 1, name, strlen(name), "value", 5);
    }
    mesh_hdrcap_offer(&sel, &cap, 1, "mesh-dst", 8, "ns/d/p", 6); /* full anyway, and ours */
    mesh_hdrcap_apply(&cap, &evt, hs);
    CHECK_EQ_INT(evt.nheaders, MESH_EVT_HEADERS_MAX); /* 16 of each */
    CHECK_EQ_INT(cap.nkind[0], 16);
    CHECK_EQ_INT(cap.nkind[1], 16);
    CHECK(hs[31].redacted && hs[31].value == NULL && hs[31].response);
    CHECK_EQ_STR(hs[31].name, "h15");
    CHECK(cap.recs.len <= MESH_HDRCAP_MAX);
    /* mesh-dst, a response header of ours, is never kept; nor a name with a NUL */
    mesh_hdrcap_reset(&cap);
    mesh_hdrcap_offer(&sel, &cap, 1, "Mesh-Dst", 8, "ns/d/p", 6);
    mesh_hdrcap_offer(&sel, &cap, 0, "a\0b", 3, "v", 1);
    mesh_hdrcap_apply(&cap, &evt, hs);
    CHECK_EQ_INT(evt.nheaders, 0);
    CHECK(evt.headers == NULL);
    mesh_hdrcap_free(&cap);
}

int main(void)
{
    setlocale(LC_ALL, "C.UTF-8");
    RUN(test_buf_cap);
    RUN(test_json_str);
    RUN(test_evt_json);
    RUN(test_classification);
    RUN(test_evt_pb_roundtrip);
    RUN(test_evt_pb_hand_encoder);
    RUN(test_hist_error_bound);
    RUN(test_labelmap);
    RUN(test_resource_filter);
    RUN(test_fmt);
    RUN(test_header_capture);
    return TEST_REPORT();
}
