/* store/store.h — the collector's SQLite store: ingest, queries, retention.
 *
 * One struct mesh_store owns one SQLite connection to one file (schema in
 * store/SCHEMA.md); single-threaded, no sockets. Everything the store hands
 * out through a callback is borrowed for that call; result structs are the
 * caller's and are released with their _free function. Functions return 0
 * or a negative MESH_E* (mesh/err.h); mesh_store_errmsg() says why. Ingest
 * returns only after COMMIT, so a caller may acknowledge on 0. Callbacks
 * must not call back into the same store.
 */
#ifndef MESH_STORE_H
#define MESH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/evt.h"
#include "mesh/filter.h"
#include "mesh/resource.h"

#define MESH_STORE_SCHEMA_VERSION 2
#define MESH_STORE_APP_ID 0x4d455348 /* "MESH", PRAGMA application_id */
#define MESH_STORE_STAT_MAX_ROWS 10000
#define MESH_STORE_TOP_MAX_ROWS 10000

struct mesh_store;

struct mesh_store_opts {
    int readonly;              /* no writes, no migrations (mesh stat --db) */
    int quick_check;           /* PRAGMA quick_check at open: O(file size) */
    int sync_full;             /* synchronous=FULL: commits survive power loss too */
    int cache_kib;             /* SQLite page cache; 0: 8192 */
    int busy_timeout_ms;       /* waiting on another writer; 0: 2000 */
    uint64_t dedup_keep_us;    /* batch records (sender_id, seq) kept; 0: 24 h */
    uint64_t rollup_flush_us;  /* rollups trail raw rows by at most this; 0: 1 s */
    uint64_t (*now_us)(void);  /* clock for batch receive times; NULL: realtime */
};
void mesh_store_opts_init(struct mesh_store_opts *opts);

/* Opens |path|, creating it (mode 0600) when missing, migrating an older
 * schema forward. Refuses, without writing a byte, a file that is not a
 * SQLite database, is corrupt, belongs to another application
 * (MESH_EFORMAT) or has a newer schema (MESH_ENOTSUP); MESH_EIO when it
 * cannot be opened. On failure |err| holds "PATH: problem". |opts| may be
 * NULL. Free *|out| with mesh_store_close(). */
int mesh_store_open(const char *path, const struct mesh_store_opts *opts,
                    struct mesh_store **out, char *err, size_t errlen);
/* Flushes pending rollups, closes. NULL is fine. */
void mesh_store_close(struct mesh_store *st);
/* The last error in words; valid until the next call on |st|. */
const char *mesh_store_errmsg(const struct mesh_store *st);

/* Stores one batch. Without an open transaction it is its own transaction
 * and returns after COMMIT. *|duplicate| = 1 (and *|stored| = 0) when
 * (|sender_id|, |seq|) was stored before. On failure the whole open
 * transaction (every batch since mesh_store_begin) is rolled back. */
int mesh_store_ingest(struct mesh_store *st, const char *sender_id, uint64_t seq,
                      const struct mesh_evt *evts, size_t n, size_t *stored, int *duplicate);
/* Group several ingests in one transaction: acknowledge them only after
 * mesh_store_commit() returned 0. A failed commit rolls everything back. */
int mesh_store_begin(struct mesh_store *st);
int mesh_store_commit(struct mesh_store *st);
int mesh_store_rollback(struct mesh_store *st);
int mesh_store_in_transaction(const struct mesh_store *st);
/* Writes pending rollups now (they are also written at most rollup_flush_us
 * after ingest, before every query and at close). */
int mesh_store_flush(struct mesh_store *st);

/* TimeWindow: last_us before |now_us|, else [since_us, until_us), 0 = open
 * end (then the data's first or last second). Stat counts whole seconds:
 * second S belongs to the window when S*1e6 is in it; top the same in
 * whole 10-second steps; events() the exact microseconds. */
struct mesh_store_window {
    uint64_t last_us, since_us, until_us;
};

struct mesh_store_stat_req {                 /* StatRequest */
    const struct mesh_resource *resources;   /* borrowed; |nresources| of them */
    size_t nresources;
    struct mesh_resource from, to;           /* type MESH_RT_NONE: none */
    struct mesh_store_window window;
};
struct mesh_store_stat_row {                 /* StatRow */
    const char *ns;                          /* "" for ns and au rows */
    enum mesh_rtype type;
    const char *name;
    uint64_t requests, failures;
    double rps;
    int64_t latency_p50_us, latency_p95_us, latency_p99_us; /* -1: no latency */
    uint64_t tcp_conn;
    int tcp_conn_estimated;                  /* 1: HyperLogLog estimate (~6.5%) */
    double read_bytes_per_sec, write_bytes_per_sec;
    uint32_t meshed_pods;                    /* pods whose proxy reported; 0 for captures */
};
struct mesh_store_stat_result {
    struct mesh_store_stat_row *rows;        /* sorted by type, ns, name */
    size_t nrows;
    uint64_t since_us, until_us;             /* the whole seconds the rates cover */
    uint64_t over_cap;                       /* requests in rows past the cap */
    char *strings;                           /* internal */
};
/* Rows keyed by destination (inbound and replay events), or by source with
 * |to| set (outbound and replay), as stat/stat.c. A meshed workload that
 * only calls others (a vote bot) still gets a row, with no requests, as
 * linkerd viz stat shows it. Reads rollups only (and raw rows not yet rolled
 * up). Free |res| with mesh_store_stat_result_free. */
int mesh_store_stat(struct mesh_store *st, const struct mesh_store_stat_req *req,
                    uint64_t now_us, struct mesh_store_stat_result *res);
void mesh_store_stat_result_free(struct mesh_store_stat_result *res);

struct mesh_store_top_req {                  /* TopRequest */
    struct mesh_filter filter;               /* strings borrowed */
    struct mesh_store_window window;
    int hide_sources;
    uint32_t limit;                          /* 0: MESH_STORE_TOP_MAX_ROWS */
};
struct mesh_store_top_row {                  /* TopRow */
    const char *source, *destination, *method, *path;
    uint64_t count, failures;
    int64_t best_us, worst_us, last_us;      /* -1: no latency */
};
struct mesh_store_top_result {
    struct mesh_store_top_row *rows;         /* most requests first */
    size_t nrows;
    uint64_t since_us, until_us;             /* 10-second steps */
    uint64_t over_cap;                       /* requests not in any row */
    int from_raw;                            /* 1: status/latency filter read raw rows */
    char *strings;                           /* internal */
};
/* Grouped as top/top.c (outbound events skipped). Reads route rollups, or
 * raw events when the filter names a status or a minimum latency. */
int mesh_store_top(struct mesh_store *st, const struct mesh_store_top_req *req,
                   uint64_t now_us, struct mesh_store_top_result *res);
void mesh_store_top_result_free(struct mesh_store_top_result *res);

/* |evt| is borrowed for the call. Return non-zero to stop. */
typedef int (*mesh_store_evt_cb)(void *arg, const struct mesh_evt *evt);
/* Raw events in the µs window matching |filter| (NULL: all), oldest first
 * (|newest_first|: newest first), at most |limit| (0: no limit). */
int mesh_store_events(struct mesh_store *st, const struct mesh_filter *filter,
                      const struct mesh_store_window *window, uint64_t now_us, size_t limit,
                      int newest_first, mesh_store_evt_cb cb, void *arg);

/* One bounded step of retention, outside any transaction: deletes at most
 * |budget| rows (events older than |max_age_us|, cut at a whole minute, then
 * the oldest events while the file is over |max_bytes|; 0 = no limit) with
 * the rollups, batch records and strings that aged out, then returns up to |budget|
 * free pages to the filesystem. *|more| = 1 when another call has work. */
struct mesh_store_retained {
    uint64_t events, rollups, batches, pages;
    uint64_t strings;         /* dictionary strings no event uses any more */
};
int mesh_store_retain(struct mesh_store *st, uint64_t max_age_us, uint64_t max_bytes,
                      uint64_t now_us, unsigned budget, int *more,
                      struct mesh_store_retained *done);

/* Counters since open, for the collector's /metrics. */
struct mesh_store_counters {
    uint64_t events;          /* stored (committed) */
    uint64_t batches;         /* stored (committed) */
    uint64_t duplicates;      /* batches dropped as duplicates */
    uint64_t commits, rollbacks;
    uint64_t rollup_flushes, rollup_rows;
    uint64_t retained_events; /* deleted by retention */
    uint64_t db_bytes;        /* page_count * page_size now */
};
void mesh_store_counters(struct mesh_store *st, struct mesh_store_counters *out);

#endif
