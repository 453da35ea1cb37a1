/* tests/unit/test_metrics.c — request metrics and their Prometheus text
 * (proxy/metrics.c): exact lines, escaping, histograms, the series cap.
 * With MESH_TEST_METRICS_OUT=FILE the main exposition is written there too,
 * for `promtool check metrics`. */
#define _GNU_SOURCE /* memrchr, memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "proxy.h"
#include "test.h"

static const struct mesh_labels self = {"emojivoto", "vote-bot", "vote-bot-1"};

static struct px *px_make(void)
{
    struct px *px = calloc(1, sizeof(*px));
    px->cfg.self = self;
    px->metrics = px_metrics_new();
    return px;
}

static void px_unmake(struct px *px)
{
    px_metrics_free(px->metrics);
    free(px);
}

static char *render(struct px *px)
{
    struct mesh_buf out;
    mesh_buf_init(&out, 64u << 20);
    CHECK_EQ_INT(px_metrics_render(px, &out), 0);
    if (out.data == NULL)
        return strdup("");
    return out.data; /* the caller frees */
}

/* 1 when |line| is a whole line of |text|. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define CHECK_LINE(text, line)                                                                     \
    do {                                                                                           \
        int found_ = has_line(text, line);                                                         \
        CHECK(found_);                                                                             \
        if (!found_)                                                                               \
            fprintf(stderr, "  missing: %s\n", line);                                              \
    } while (0)

static struct mesh_evt evt_make(enum mesh_direction dir, const char *authority, int status,
                                int64_t latency_us)
{
    struct mesh_evt evt;
    mesh_evt_init(&evt);
    evt.direction = dir;
    evt.authority = authority;
    evt.status = status;
    evt.latency_us = latency_us;
    evt.duration_us = latency_us >= 0 ? latency_us + 100 : 5000;
    return evt;
}

#define OUT_WEB                                                                                    \
    "direction=\"outbound\",authority=\"web.emojivoto:80\",namespace=\"emojivoto\","               \
    "deployment=\"vote-bot\",pod=\"vote-bot-1\",dst_namespace=\"emojivoto\","                      \
    "dst_deployment=\"web\""
#define IN_VOTING                                                                                  \
    "direction=\"inbound\",authority=\"voting.emojivoto:8080\",namespace=\"emojivoto\","           \
    "deployment=\"vote-bot\",pod=\"vote-bot-1\""

/* Every histogram: buckets never decrease, +Inf equals _count. Returns the sum
 * of every _count. */
static uint64_t check_histograms(const char *text)
{
    uint64_t total = 0, prev = 0;
    int in_series = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            break;
        const char *sp = memrchr(line, ' ', (size_t)(end - line));
        uint64_t value = sp ? strtoull(sp + 1, NULL, 10) : 0;
        if (strncmp(line, "response_latency_ms_bucket{", 27) == 0) {
            if (in_series)
                CHECK(value >= prev);
            in_series = 1;
            prev = value;
            if (memmem(line, (size_t)(end - line), "le=\"+Inf\"", 9) != NULL)
                in_series = 0;
        } else if (strncmp(line, "response_latency_ms_count{", 26) == 0) {
            CHECK_EQ_INT(value, prev);
            total += value;
        }
    }
    return total;
}

static void test_render(void)
{
    struct px *px = px_make();
    struct px_route web = {.authority = "web.emojivoto:80", .labels = {"emojivoto", "web", NULL}};
    struct mesh_evt evt;

    evt = evt_make(MESH_DIR_OUTBOUND, "web.emojivoto:80", 200, 1500); /* le=2 */
    px_metrics_request(px->metrics, &self, &evt, &web);
    evt = evt_make(MESH_DIR_OUTBOUND, "web.emojivoto:80", 200, 2000); /* le=2, exactly */
    px_metrics_request(px->metrics, &self, &evt, &web);
    evt = evt_make(MESH_DIR_OUTBOUND, "web.emojivoto:80", 500, 12000); /* le=20 */
    px_metrics_request(px->metrics, &self, &evt, &web);
    evt = evt_make(MESH_DIR_OUTBOUND, "web.emojivoto:80", 200, -1); /* no latency sample */
    px_metrics_request(px->metrics, &self, &evt, &web);
    evt = evt_make(MESH_DIR_OUTBOUND, "web.emojivoto:80", -1, -1); /* reset, no response */
    evt.reset = 8;
    evt.duration_us = -1;
    px_metrics_request(px->metrics, &self, &evt, &web);
    evt = evt_make(MESH_DIR_OUTBOUND, "web.emojivoto:80", 200, 70000000); /* over 50 s */
    px_metrics_request(px->metrics, &self, &evt, &web);

    /* inbound gRPC: status 200, grpc-status 2 fails; grpc-status 0 succeeds.
     * The route's labels are the other side's only when outbound. */
    evt = evt_make(MESH_DIR_INBOUND, "voting.emojivoto:8080", 200, 3000);
    evt.grpc_status = 2;
    px_metrics_request(px->metrics, &self, &evt, &web);
    evt.grpc_status = 0;
    px_metrics_request(px->metrics, &self, &evt, &web);
    px_metrics_request(px->metrics, &self, &evt, NULL);

    /* label values chosen by a peer */
    evt = evt_make(MESH_DIR_OUTBOUND, "we\"ird\\host\nx:80 \xf0\x9f\x8d\xa9 \xff!", 204, 100);
    px_metrics_request(px->metrics, &self, &evt, NULL);

    px->tcp[0] = (struct px_tcp_stats){
        .open_total = 5, .close_total = 3, .open_now = 2, .read_bytes = 1000, .write_bytes = 2000};
    px->tcp[1].open_total = 7;
    px->tap_off_events = 10;

    char *text = render(px);
    const char *dump = getenv("MESH_TEST_METRICS_OUT");
    if (dump != NULL) {
        FILE *f = fopen(dump, "w");
        if (f != NULL) {
            fputs(text, f);
            fclose(f);
        }
    }

    CHECK_LINE(text, "# HELP request_total Total count of HTTP requests.");
    CHECK_LINE(text, "# TYPE request_total counter");
    CHECK_LINE(text, "request_total{" OUT_WEB "} 6");
    CHECK_LINE(text, "request_total{" IN_VOTING "} 3");
    CHECK_LINE(text, "# TYPE response_total counter");
    CHECK_LINE(text,
               "response_total{" OUT_WEB ",classification=\"success\",status_code=\"200\"} 4");
    CHECK_LINE(text,
               "response_total{" OUT_WEB ",classification=\"failure\",status_code=\"500\"} 1");
    CHECK_LINE(text, "response_total{" OUT_WEB ",classification=\"failure\"} 1");
    CHECK_LINE(text, "response_total{" IN_VOTING
                     ",classification=\"failure\",status_code=\"200\",grpc_status_code=\"2\"} 1");
    CHECK_LINE(text, "response_total{" IN_VOTING
                     ",classification=\"success\",status_code=\"200\",grpc_status_code=\"0\"} 2");
    CHECK_LINE(text, "# TYPE response_latency_ms histogram");
    CHECK_LINE(text, "response_latency_ms_bucket{" OUT_WEB ",le=\"1\"} 0");
    CHECK_LINE(text, "response_latency_ms_bucket{" OUT_WEB ",le=\"2\"} 2");
    CHECK_LINE(text, "response_latency_ms_bucket{" OUT_WEB ",le=\"10\"} 2");
    CHECK_LINE(text, "response_latency_ms_bucket{" OUT_WEB ",le=\"20\"} 3");
    CHECK_LINE(text, "response_latency_ms_bucket{" OUT_WEB ",le=\"50000\"} 3");
    CHECK_LINE(text, "response_latency_ms_bucket{" OUT_WEB ",le=\"+Inf\"} 4");
    CHECK_LINE(text, "response_latency_ms_sum{" OUT_WEB "} 70015.500");
    CHECK_LINE(text, "response_latency_ms_count{" OUT_WEB "} 4");
    CHECK_LINE(text, "response_latency_ms_count{" IN_VOTING "} 3");
    CHECK_LINE(text, "response_latency_ms_sum{" IN_VOTING "} 9.000");
    CHECK_LINE(text, "request_total{direction=\"outbound\","
                     "authority=\"we\\\"ird\\\\host\\nx:80 \xf0\x9f\x8d\xa9 \xef\xbf\xbd!\","
                     "namespace=\"emojivoto\",deployment=\"vote-bot\",pod=\"vote-bot-1\"} 1");
    CHECK_LINE(text, "# TYPE tcp_open_connections gauge");
    CHECK_LINE(text, "tcp_open_total{direction=\"inbound\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 5");
    CHECK_LINE(text, "tcp_open_total{direction=\"outbound\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 7");
    CHECK_LINE(text, "tcp_open_connections{direction=\"inbound\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 2");
    CHECK_LINE(text, "tcp_read_bytes_total{direction=\"inbound\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 1000");
    CHECK_LINE(text, "tcp_write_bytes_total{direction=\"inbound\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 2000");
    CHECK_LINE(text, "tcp_close_total{direction=\"inbound\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 3");
    CHECK_LINE(text, "tap_events_sent_total{namespace=\"emojivoto\",deployment=\"vote-bot\","
                     "pod=\"vote-bot-1\"} 0");
    CHECK_LINE(text, "tap_events_dropped_total{namespace=\"emojivoto\",deployment=\"vote-bot\","
                     "pod=\"vote-bot-1\"} 10");

    /* 8 of the 10 requests had a latency */
    CHECK_EQ_INT(check_histograms(text), 8);
    /* one HELP and one TYPE per family, families not interleaved */
    const char *families[] = {"request_total",         "response_total",
                              "response_latency_ms",   "tcp_open_total",
                              "tcp_close_total",       "tcp_open_connections",
                              "tcp_read_bytes_total",  "tcp_write_bytes_total",
                              "tap_events_sent_total", "tap_events_dropped_total"};
    const char *prev = text;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char help[96];
        snprintf(help, sizeof(help), "# TYPE %s ", families[i]);
        const char *at = strstr(text, help);
        CHECK(at != NULL && at >= prev && strstr(at + 1, help) == NULL);
        if (at != NULL)
            prev = at;
    }
    /* no raw newline inside a label value: every line is a comment or a sample */
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        CHECK(line[0] == '#' || (line[0] >= 'a' && line[0] <= 'z'));
        if (strchr(line, '\n') == NULL)
            break;
    }
    free(text);
    px_unmake(px);
}

static void test_no_labels(void)
{
    /* no workload labels, no authority: still valid lines */
    struct px *px = calloc(1, sizeof(*px));
    px->metrics = px_metrics_new();
    struct mesh_evt evt = evt_make(MESH_DIR_INBOUND, NULL, 200, 1000);
    px_metrics_request(px->metrics, NULL, &evt, NULL);
    char *text = render(px);
    CHECK_LINE(text, "request_total{direction=\"inbound\"} 1");
    CHECK_LINE(text, "response_total{direction=\"inbound\",classification=\"success\","
                     "status_code=\"200\"} 1");
    CHECK_LINE(text, "tap_events_dropped_total 0");
    free(text);
    px_unmake(px);
}

static void test_overflow(void)
{
    struct px *px = px_make();
    char auth[64];
    struct mesh_evt evt;
    /* each authority takes two series (request and its response): 5000 fit */
    for (int i = 0; i < 6000; i++) {
        snprintf(auth, sizeof(auth), "svc-%d:80", i);
        evt = evt_make(MESH_DIR_INBOUND, auth, 200, 1000);
        px_metrics_request(px->metrics, &self, &evt, NULL);
    }
    /* known series go on counting; a new response kind of a known one overflows */
    evt = evt_make(MESH_DIR_INBOUND, "svc-0:80", 200, 1000);
    px_metrics_request(px->metrics, &self, &evt, NULL);
    evt = evt_make(MESH_DIR_INBOUND, "svc-1:80", 503, 1000);
    px_metrics_request(px->metrics, &self, &evt, NULL);

    char *text = render(px);
    const char *lab = "namespace=\"emojivoto\",deployment=\"vote-bot\",pod=\"vote-bot-1\"";
    char line[512];
    snprintf(line, sizeof(line), "request_total{direction=\"inbound\",authority=\"svc-0:80\",%s} 2",
             lab);
    CHECK_LINE(text, line);
    snprintf(line, sizeof(line),
             "request_total{direction=\"inbound\",authority=\"svc-4999:80\",%s} 1", lab);
    CHECK_LINE(text, line);
    snprintf(line, sizeof(line),
             "request_total{direction=\"inbound\",authority=\"svc-5000:80\",%s} 1", lab);
    CHECK(!has_line(text, line));
    snprintf(line, sizeof(line), "request_total{direction=\"inbound\",authority=\"svc-1:80\",%s} 1",
             lab);
    CHECK_LINE(text, line);
    snprintf(line, sizeof(line),
             "request_total{direction=\"inbound\",authority=\"overflow\",%s} 1001", lab);
    CHECK_LINE(text, line);
    snprintf(line, sizeof(line),
             "response_total{direction=\"inbound\",authority=\"overflow\",%s,"
             "classification=\"failure\",status_code=\"503\"} 1",
             lab);
    CHECK_LINE(text, line);
    CHECK_EQ_INT(check_histograms(text), 6002);
    size_t nreq = 0;
    /* by hand: sanitizers' strstr measures the whole rest of the text each call */
    for (const char *p = text; *p; p++)
        if (p[0] == '\n' && strncmp(p + 1, "request_total{", 14) == 0)
            nreq++;
    CHECK_EQ_INT(nreq, 5001);
    free(text);

    /* responses of one series are capped too: 64 kinds, then overflow (the
     * overflow series keeps only the classification past its own 64) */
    struct px *px2 = px_make();
    for (int status = 100; status < 300; status++) {
        evt = evt_make(MESH_DIR_OUTBOUND, "many:80", status, 1000);
        px_metrics_request(px2->metrics, &self, &evt, NULL);
    }
    text = render(px2);
    snprintf(line, sizeof(line),
             "request_total{direction=\"outbound\",authority=\"many:80\",%s} 64", lab);
    CHECK_LINE(text, line);
    snprintf(line, sizeof(line),
             "request_total{direction=\"outbound\",authority=\"overflow\",%s} 136", lab);
    CHECK_LINE(text, line);
    snprintf(line, sizeof(line),
             "response_total{direction=\"outbound\",authority=\"overflow\",%s,"
             "classification=\"success\"} 72",
             lab);
    CHECK_LINE(text, line);
    free(text);
    px_unmake(px2);
    px_unmake(px);
}

static void test_long_label(void)
{
    /* a 64 KiB authority is cut: metrics memory does not follow peer input */
    struct px *px = px_make();
    char *auth = malloc(65536);
    memset(auth, 'a', 65535);
    auth[65535] = '\0';
    auth[255] = '\xc3'; /* a two-byte sequence cut at the limit */
    auth[256] = '\xa9';
    struct mesh_evt evt = evt_make(MESH_DIR_INBOUND, auth, 200, 1000);
    px_metrics_request(px->metrics, &self, &evt, NULL);
    char *text = render(px);
    char want[300];
    memset(want, 'a', 255);
    memcpy(want + 255, "\xef\xbf\xbd\"", 5);
    CHECK(strstr(text, want) != NULL);
    CHECK(strlen(text) < 16384);
    free(text);
    free(auth);
    px_unmake(px);
}

static void test_series_cache(void)
{
    /* proxy/metrics.c finds series through a small cache of raw label values:
     * 100 authorities (every cache slot shared), the same authority under two
     * routes with different destination labels, NULL and "" authorities, in
     * both directions, interleaved; every series must count exactly its own. */
    struct px *px = px_make();
    struct px_route a = {.authority = "x", .labels = {"ns-a", "dep-a", NULL}};
    struct px_route b = {.authority = "x", .labels = {"ns-a", "dep-b", NULL}};
    char auth[100][16];
    for (int i = 0; i < 100; i++)
        snprintf(auth[i], sizeof(auth[i]), "svc-%d", i);
    for (int round = 0; round < 7; round++) {
        for (int i = 0; i < 100; i++) {
            struct mesh_evt evt = evt_make(MESH_DIR_INBOUND, auth[i], 200, 1000);
            for (int k = 0; k <= i % 3; k++) /* svc-i: (i % 3 + 1) × 7 requests */
                px_metrics_request(px->metrics, &self, &evt, NULL);
            evt = evt_make(MESH_DIR_OUTBOUND, "x", 200, 1000);
            px_metrics_request(px->metrics, &self, &evt, i % 2 ? &a : &b);
        }
        struct mesh_evt evt = evt_make(MESH_DIR_INBOUND, NULL, 200, 1000);
        px_metrics_request(px->metrics, &self, &evt, NULL);
        evt = evt_make(MESH_DIR_INBOUND, "", 200, 1000);
        px_metrics_request(px->metrics, &self, &evt, NULL);
        px_metrics_request(px->metrics, &self, &evt, NULL);
    }
    char *text = render(px);
    char line[512];
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof(line),
                 "request_total{direction=\"inbound\",authority=\"svc-%d\",namespace=\"emojivoto\","
                 "deployment=\"vote-bot\",pod=\"vote-bot-1\"} %d",
                 i, (i % 3 + 1) * 7);
        CHECK_LINE(text, line);
    }
    for (int d = 0; d < 2; d++) {
        snprintf(line, sizeof(line),
                 "request_total{direction=\"outbound\",authority=\"x\",namespace=\"emojivoto\","
                 "deployment=\"vote-bot\",pod=\"vote-bot-1\",dst_namespace=\"ns-a\","
                 "dst_deployment=\"dep-%c\"} 350",
                 d ? 'a' : 'b');
        CHECK_LINE(text, line);
    }
    CHECK_LINE(text, "request_total{direction=\"inbound\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 7");
    CHECK_LINE(text, "request_total{direction=\"inbound\",authority=\"\",namespace=\"emojivoto\","
                     "deployment=\"vote-bot\",pod=\"vote-bot-1\"} 14");
    free(text);
    px_unmake(px);
}

int main(void)
{
    RUN(test_render);
    RUN(test_no_labels);
    RUN(test_overflow);
    RUN(test_long_label);
    RUN(test_series_cache);
    return TEST_REPORT();
}
