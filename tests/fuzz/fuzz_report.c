/* tests/fuzz/fuzz_report.c — protobuf ingest in the collector: one
 * ReportRequest message (what a Collector.Report call carries) through the
 * collector's own wire reader into the store, as commit_pending() does it
 * (mesh_collector_ingest_report), then the rollups flushed.
 *
 * The collector's reader claims protobuf-c's rules, so the input is also
 * unpacked by protobuf-c and the two must agree: a message the collector
 * takes is one protobuf-c takes with the same sender_id and seq, and one
 * protobuf-c takes with a sender_id and a seq the collector does not call
 * malformed. Each event protobuf-c found also goes through mesh_evt_from_pb
 * (lib/evt_pb.c, what Watch clients use).
 *
 * The store is a file in /dev/shm (else $TMPDIR or /tmp) made once per
 * process and started afresh every 2000 inputs; removed at exit, and by the
 * next run when a crash left it behind.
 * Seeds: tests/fuzz/corpus/report/ (mkseeds_report.py: Report batches of
 * the emojivoto captures' events, as `mesh replay --collector` sends them).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt_pb.h"
#include "mesh/tap/v1/tap.pb-c.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REOPEN_EVERY 2000

static struct mesh_store *store;
static char path[256];
static unsigned inputs;

static uint64_t fixed_now(void)
{
    return 1700000000000000ull;
}

static void remove_store(void)
{
    char p[300];
    mesh_store_close(store);
    store = NULL;
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-journal", path);
    unlink(p);
}

/* A run that crashed (or was stopped) did not remove its store: remove the
 * stores of processes that are gone. */
static void sweep_stores(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        long pid;
        char rest[16], p[512];
        if (sscanf(de->d_name, "mesh-fuzz-report-%ld.db%15s", &pid, rest) < 1 || pid <= 0 ||
            (kill((pid_t)pid, 0) != 0 && errno == ESRCH) == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
}

static void open_store(void)
{
    char err[512];
    if (path[0] == '\0') {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        dir = dir != NULL ? dir : "/tmp";
        sweep_stores(dir);
        snprintf(path, sizeof(path), "%s/mesh-fuzz-report-%ld.db", dir, (long)getpid());
        atexit(remove_store);
    }
    remove_store();
    struct mesh_store_opts opts;
    mesh_store_opts_init(&opts);
    opts.now_us = fixed_now;
    if (mesh_store_open(path, &opts, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_report: %s\n", err);
        abort();
    }
}

static void agree_fail(const char *what)
{
    fprintf(stderr, "fuzz_report: %s\n", what);
    abort();
}

/* The last seq field of a ReportRequest (the collector took it: well-formed). */
static uint64_t seq_of(const uint8_t *data, size_t size)
{
    Mesh__Tap__V1__ReportRequest *req = mesh__tap__v1__report_request__unpack(NULL, size, data);
    uint64_t seq = req != NULL ? req->seq : UINT64_MAX;
    if (req != NULL)
        mesh__tap__v1__report_request__free_unpacked(req, NULL);
    return seq;
}

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

/* What a proxy would send for the events protobuf-c read: each one through
 * mesh_evt_from_pb and mesh_evt_pack, in a ReportRequest of its own. The
 * collector must take it whole (as a duplicate: same sender and seq). */
static void check_repacked(const Mesh__Tap__V1__ReportRequest *req)
{
    static struct mesh_buf msg, evbuf;
    static int ready;
    if (!ready) {
        mesh_buf_init(&msg, 1u << 26);
        mesh_buf_init(&evbuf, 1u << 26);
        ready = 1;
    }
    mesh_buf_reset(&msg);
    size_t idlen = strlen(req->sender_id);
    int rv = put_varint(&msg, 1 << 3 | 2) | put_varint(&msg, idlen) |
             mesh_buf_append(&msg, req->sender_id, idlen) | put_varint(&msg, 2 << 3 | 0) |
             put_varint(&msg, req->seq);
    for (size_t i = 0; rv == 0 && i < req->n_events; i++) {
        struct mesh_evt evt;
        struct mesh_header headers[MESH_EVT_HEADERS_MAX];
        mesh_evt_from_pb(req->events[i], &evt, headers);
        mesh_buf_reset(&evbuf);
        rv = mesh_evt_pack(&evt, &evbuf);
        rv = rv != 0 ? rv : put_varint(&msg, 3 << 3 | 2) | put_varint(&msg, evbuf.len) |
                                mesh_buf_append(&msg, evbuf.data, evbuf.len);
    }
    if (rv != 0)
        abort();
    size_t stored = 0;
    int duplicate = 0;
    if (mesh_collector_ingest_report(store, (const uint8_t *)msg.data, msg.len, &stored,
                                     &duplicate) != 0)
        agree_fail("the collector refuses what a proxy sends for a message protobuf-c takes");
    if (!duplicate && stored != req->n_events)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (store == NULL || ++inputs % REOPEN_EVERY == 0)
        open_store();

    Mesh__Tap__V1__ReportRequest *req = mesh__tap__v1__report_request__unpack(NULL, size, data);
    for (size_t i = 0; req != NULL && i < req->n_events; i++) {
        struct mesh_evt evt;
        struct mesh_header headers[MESH_EVT_HEADERS_MAX];
        mesh_evt_from_pb(req->events[i], &evt, headers);
    }

    size_t stored = 0;
    int duplicate = 0;
    int rv = mesh_collector_ingest_report(store, data, size, &stored, &duplicate);
    if (rv != 0 && rv != MESH_EPROTO) {
        fprintf(stderr, "fuzz_report: store: %s\n", mesh_store_errmsg(store));
        abort(); /* a store that takes batches must take any batch */
    }
    if (mesh_store_flush(store) != 0)
        abort();

    /* the collector's reader and protobuf-c agree: what the collector takes,
     * protobuf-c takes the same; what protobuf-c takes (with a sender_id and
     * a seq), packed again without the unknown fields, the collector takes.
     * Not the raw input: protobuf-c lets an overlong tag of field 0
     * ("80 00") through as an unknown field, which the collector refuses. */
    int pbc_ok = req != NULL && req->sender_id != NULL && req->sender_id[0] != '\0' && req->has_seq;
    if (rv == 0 && (!pbc_ok || req->seq != seq_of(data, size)))
        agree_fail("the collector takes a message protobuf-c refuses or reads otherwise");
    if (rv == 0 && !duplicate && stored != req->n_events)
        abort();
    if (pbc_ok)
        check_repacked(req);
    if (req != NULL)
        mesh__tap__v1__report_request__free_unpacked(req, NULL);
    return 0;
}
