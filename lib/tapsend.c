#include "mesh/tapsend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt_pb.h"
#include "mesh/grpc.h"
#include "mesh/tap/v1/tap.pb-c.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define BATCH_MAX_BYTES (2u << 20) /* under the collector's 4 MiB message cap */

static const char report_method[] = "/mesh.tap.v1.Collector/Report";

/* A sealed batch: a packed ReportRequest. */
struct batch {
    struct batch *next;
    uint64_t seq;
    size_t nevents;
    struct mesh_buf bytes;
};

struct mesh_tapsend {
    struct mesh_loop *loop;
    struct mesh_grpc_client *client;
    struct mesh_grpc_call *call;
    struct mesh_tapsend_opts opts;
    char *sender_id;
    struct mesh_buf open;           /* events of the batch being filled, as field 3 */
    size_t open_events;
    struct batch *head, **tail;     /* sealed, oldest first */
    struct batch *next_to_send;     /* first not yet sent on the current call */
    size_t nbatches;
    uint64_t next_seq;
    int64_t flush_timer;            /* armed while the open batch has events */
    unsigned backoff_ms;
    int64_t reconnect_timer;
    char last_error[256];
    struct mesh_tapsend_counters counters;
};

static void progress(struct mesh_tapsend *ts)
{
    if (ts->opts.on_progress)
        ts->opts.on_progress(ts, ts->opts.ctx);
}

/* Appends a protobuf varint. */
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

static void send_pending(struct mesh_tapsend *ts)
{
    while (ts->call != NULL && ts->next_to_send != NULL) {
        struct batch *b = ts->next_to_send;
        int rv = mesh_grpc_call_send(ts->call, b->bytes.data, b->bytes.len);
        if (rv == MESH_ETOOBIG)
            return; /* on_writable resumes */
        if (rv != 0)
            return;
        ts->counters.batches_sent++;
        ts->next_to_send = b->next;
    }
}

static void on_ack(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct mesh_tapsend *ts = ctx;
    Mesh__Tap__V1__ReportAck *ack = mesh__tap__v1__report_ack__unpack(NULL, len, msg);
    if (ack == NULL)
        return;
    /* acks come in order; drop every batch up to the acknowledged one */
    while (ts->head != NULL && ack->has_seq && ts->head->seq <= ack->seq) {
        struct batch *b = ts->head;
        ts->head = b->next;
        if (ts->next_to_send == b)
            ts->next_to_send = b->next;
        ts->counters.acked += b->nevents;
        ts->counters.batches_acked++;
        mesh_buf_free(&b->bytes);
        free(b);
        ts->nbatches--;
    }
    if (ts->head == NULL)
        ts->tail = &ts->head;
    if (ack->has_duplicate && ack->duplicate)
        ts->counters.duplicates++;
    ts->backoff_ms = BACKOFF_MIN_MS; /* the collector is working */
    mesh__tap__v1__report_ack__free_unpacked(ack, NULL);
    progress(ts);
}

static void start_call(struct mesh_tapsend *ts);

static int on_flush_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_tapsend *ts = ctx;
    if (ts->open_events == 0) {
        ts->flush_timer = 0;
        return MESH_TIMER_DONE;
    }
    /* Seal only what can go out now, and not while half the queue waits for
     * acks: small batches then would eat the capacity meant for an outage. */
    if (ts->call != NULL && mesh_grpc_client_state(ts->client) == MESH_GRPC_CONNECTED &&
        ts->nbatches < (ts->opts.max_batches + 1) / 2) {
        ts->flush_timer = 0;
        mesh_tapsend_flush(ts);
        return MESH_TIMER_DONE;
    }
    return (int)ts->opts.flush_ms;
}

static int reconnect(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_tapsend *ts = ctx;
    ts->reconnect_timer = 0;
    ts->counters.reconnects++;
    if (mesh_grpc_client_state(ts->client) == MESH_GRPC_DISCONNECTED)
        mesh_grpc_client_reconnect(ts->client);
    start_call(ts);
    return MESH_TIMER_DONE;
}

/* Tries again later: backoff doubling to BACKOFF_MAX_MS, ±25% jitter so that
 * many proxies do not come back at the same instant. */
static void schedule_reconnect(struct mesh_tapsend *ts)
{
    if (ts->reconnect_timer != 0)
        return;
    unsigned jitter = ts->backoff_ms / 4;
    unsigned delay = ts->backoff_ms - jitter + (unsigned)(rand() % (int)(2 * jitter + 1));
    ts->reconnect_timer = mesh_loop_add_timer(ts->loop, delay, reconnect, ts);
    ts->backoff_ms = ts->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ts->backoff_ms * 2;
}

static void on_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct mesh_tapsend *ts = ctx;
    ts->call = NULL;
    ts->next_to_send = ts->head; /* unacknowledged batches go again on the next call */
    if (status != 0)
        snprintf(ts->last_error, sizeof(ts->last_error), "%s: %s%s%s", ts->opts.addr,
                 mesh_grpc_status_name(status), message && *message ? ": " : "",
                 message ? message : "");
    schedule_reconnect(ts);
    progress(ts);
}

static void on_writable(struct mesh_grpc_call *call, void *ctx)
{
    send_pending(ctx);
}

static const struct mesh_grpc_client_cbs report_cbs = {
    .on_message = on_ack,
    .on_close = on_close,
    .on_writable = on_writable,
};

static void start_call(struct mesh_tapsend *ts)
{
    if (ts->call != NULL)
        return;
    ts->call = mesh_grpc_client_call(ts->client, report_method, &report_cbs, 0, ts);
    if (ts->call == NULL) {
        schedule_reconnect(ts);
        return;
    }
    ts->next_to_send = ts->head;
    send_pending(ts);
}

static void on_lost(struct mesh_grpc_client *client, const char *why, void *ctx)
{
    struct mesh_tapsend *ts = ctx;
    snprintf(ts->last_error, sizeof(ts->last_error), "%s", why);
    ts->call = NULL;
    schedule_reconnect(ts);
    progress(ts);
}

struct mesh_tapsend *mesh_tapsend_new(struct mesh_loop *loop, const struct mesh_tapsend_opts *opts,
                                      char *err, size_t errlen)
{
    struct mesh_tapsend *ts = calloc(1, sizeof(*ts));
    if (ts == NULL || (ts->sender_id = strdup(opts->sender_id)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(ts);
        return NULL;
    }
    ts->loop = loop;
    ts->opts = *opts;
    if (ts->opts.batch_events == 0)
        ts->opts.batch_events = 1000;
    if (ts->opts.max_batches == 0)
        ts->opts.max_batches = 64;
    if (ts->opts.flush_ms == 0)
        ts->opts.flush_ms = 100;
    ts->tail = &ts->head;
    ts->next_seq = 1;
    ts->backoff_ms = BACKOFF_MIN_MS;
    mesh_buf_init(&ts->open, BATCH_MAX_BYTES);
    struct mesh_grpc_client_opts copts = {.on_lost = on_lost, .ctx = ts};
    ts->client = mesh_grpc_client_new(loop, opts->addr, &copts, err, errlen);
    if (ts->client == NULL) {
        free(ts->sender_id);
        free(ts);
        return NULL;
    }
    start_call(ts);
    return ts;
}

void mesh_tapsend_flush(struct mesh_tapsend *ts)
{
    if (ts->open_events == 0)
        return;
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        ts->counters.dropped += ts->open_events;
        ts->open_events = 0;
        mesh_buf_reset(&ts->open);
        return;
    }
    /* fields 1 (sender_id) and 2 (seq) after the events: protobuf does not
     * care about field order, and the batch is numbered only when sealed */
    size_t idlen = strlen(ts->sender_id);
    b->seq = ts->next_seq++;
    b->nevents = ts->open_events;
    b->bytes = ts->open;
    b->bytes.cap = BATCH_MAX_BYTES + idlen + 32;
    mesh_buf_append(&b->bytes, "\x0a", 1);
    put_varint(&b->bytes, idlen);
    mesh_buf_append(&b->bytes, ts->sender_id, idlen);
    mesh_buf_append(&b->bytes, "\x10", 1);
    put_varint(&b->bytes, b->seq);
    mesh_buf_init(&ts->open, BATCH_MAX_BYTES);
    ts->open_events = 0;
    *ts->tail = b;
    ts->tail = &b->next;
    ts->nbatches++;
    if (ts->next_to_send == NULL)
        ts->next_to_send = b;
    send_pending(ts);
}

int mesh_tapsend_add(struct mesh_tapsend *ts, const struct mesh_evt *evt)
{
    if (ts->nbatches >= ts->opts.max_batches) {
        ts->counters.dropped++;
        return MESH_ETOOBIG;
    }
    /* the event as ReportRequest field 3; the open batch is capped at
     * BATCH_MAX_BYTES, so an event that does not fit seals it first */
    size_t before = ts->open.len;
    int rv = mesh_evt_pb_append(evt, &ts->open, 3);
    if (rv == MESH_ETOOBIG && ts->open_events > 0) {
        ts->open.len = before;
        mesh_tapsend_flush(ts);
        before = ts->open.len;
        rv = mesh_evt_pb_append(evt, &ts->open, 3);
    }
    if (rv != 0) {
        ts->open.len = before; /* one event larger than a batch: dropped */
        ts->counters.dropped++;
        return MESH_ETOOBIG;
    }
    ts->counters.added++;
    if (ts->flush_timer == 0) {
        int64_t id = mesh_loop_add_timer(ts->loop, ts->opts.flush_ms, on_flush_timer, ts);
        ts->flush_timer = id > 0 ? id : 0;
    }
    if (++ts->open_events >= ts->opts.batch_events)
        mesh_tapsend_flush(ts);
    return 0;
}

size_t mesh_tapsend_unacked(const struct mesh_tapsend *ts)
{
    return ts->nbatches;
}

const char *mesh_tapsend_last_error(const struct mesh_tapsend *ts)
{
    return ts->last_error;
}

void mesh_tapsend_counters(const struct mesh_tapsend *ts, struct mesh_tapsend_counters *out)
{
    *out = ts->counters;
}

void mesh_tapsend_free(struct mesh_tapsend *ts)
{
    if (ts == NULL)
        return;
    if (ts->reconnect_timer)
        mesh_loop_del_timer(ts->loop, ts->reconnect_timer);
    if (ts->flush_timer)
        mesh_loop_del_timer(ts->loop, ts->flush_timer);
    if (ts->call)
        mesh_grpc_call_cancel(ts->call);
    mesh_grpc_client_free(ts->client);
    while (ts->head != NULL) {
        struct batch *b = ts->head;
        ts->head = b->next;
        mesh_buf_free(&b->bytes);
        free(b);
    }
    mesh_buf_free(&ts->open);
    free(ts->sender_id);
    free(ts);
}
