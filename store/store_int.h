/* store/store_int.h — what the store's files share; not part of the API.
 *
 * schema.c opens the file and prepares every statement once; ingest.c writes
 * raw rows (through the strings dictionary and the mesh_rows virtual table)
 * and keeps the rollup accumulator; sketch.c encodes histograms and
 * connection sketches; query.c answers stat, top and events (reading raw
 * rows through the `events` view); retain.c deletes.
 */
#ifndef MESH_STORE_INT_H
#define MESH_STORE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "store.h"

/* Every statement the store runs, prepared once at open (schema.c). */
enum store_stmt {
    S_BEGIN, S_BEGIN_READ, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
    S_BATCH_INS, S_EVT_INS,
    S_UP_R1S, S_UP_R1M, S_UP_T10S, S_UP_T1M,
    S_META_GET, S_META_SET, S_MAX_ROW, S_TAIL,
    S_SCAN_R, S_SCAN_T, S_EXT_MIN, S_EXT_MAX,
    S_EVT_ASC, S_EVT_DESC,
    S_DEL_EVT_AGE, S_DEL_EVT_OLDEST, S_MIN_TS,
    S_DEL_R1S, S_DEL_R1M, S_DEL_T10S, S_DEL_T1M, S_DEL_BATCH,
    S_PAGE_COUNT, S_PAGE_SIZE, S_FREELIST, S_INCR_VACUUM,
    S_STR_GET, S_STR_INS, S_STR_TOUCH, S_STR_GC, S_MIN_ROW,
    S_COUNT
};

/* Columns of S_TAIL, S_EVT_ASC and S_EVT_DESC, in order (EVT_COLS). */
enum evt_col {
    EC_ROW, EC_BATCH, EC_TS, EC_DIR, EC_SRC, EC_DST, EC_SRC_NS, EC_SRC_DEPLOY, EC_SRC_POD,
    EC_DST_NS, EC_DST_DEPLOY, EC_DST_POD, EC_PROTO, EC_METHOD, EC_SCHEME, EC_AUTHORITY,
    EC_PATH, EC_STATUS, EC_GRPC_STATUS, EC_RESET, EC_ERROR, EC_LATENCY, EC_DURATION,
    EC_REQ_BYTES, EC_RSP_BYTES, EC_ID, EC_SENDER /* S_TAIL only */
};

/* The rollup key of an event: the workload key (8 parts) is a prefix of
 * the route key (12 parts), so one packing serves both families. */
enum { KP_DIR, KP_SRC_NS, KP_SRC_DEPLOY, KP_SRC_POD, KP_DST_NS, KP_DST_DEPLOY, KP_DST_POD,
       KP_AUTHORITY, KP_SRC_IP, KP_DST_ADDR, KP_METHOD, KP_PATH, KP_COUNT };
#define KP_WORKLOAD 8
#define KEY_PART_MAX 1024 /* bytes of one key part kept in rollups */

enum { FAM_WORKLOAD = 0, FAM_ROUTE = 1 };
/* SPAN_FINE: 1 s for workloads (rollup_1s), 10 s for routes (route_10s) */
enum { SPAN_FINE = 0, SPAN_1M = 1 };
#define ROUTE_FINE_SECS 10

struct hb {                     /* one histogram bucket in memory */
    uint32_t bucket, count;
};

struct agg {                    /* one rollup row being accumulated */
    uint64_t hash;
    int64_t sec;                /* interval start, seconds since the epoch */
    uint32_t key_off, key_len;  /* NUL-terminated parts in acc.keys */
    uint8_t family, span, conn_hll;
    uint64_t requests, failures, lat_count, lat_sum, req_bytes, rsp_bytes;
    int64_t lat_min, lat_max;   /* -1: none */
    int64_t last_ts, last_lat;  /* -1: none */
    uint32_t hist_off, hist_n, hist_cap;    /* in acc.hb, sorted by bucket */
    uint32_t conn_off, conn_n, conn_cap;    /* in acc.cv: sorted hashes, or 256 HLL bytes */
};

struct acc {                    /* rollups not yet written (ingest.c) */
    struct agg *aggs;
    size_t naggs, aaggs;
    uint32_t *table;            /* open addressing: agg index + 1, 0 = empty */
    size_t tsize;
    char *keys;
    size_t keys_len, keys_alloc;
    struct hb *hb;
    size_t hb_len, hb_alloc;
    uint64_t *cv;
    size_t cv_len, cv_alloc;
    uint64_t events;            /* events added since the last flush */
    uint64_t first_us;          /* clock at the first of them */
};

/* The strings dictionary in memory (ingest.c): value -> strings.id, and
 * the last_row the file holds for it. Bounded: emptied when full. */
struct dict_ent {
    uint64_t hash;
    int64_t id;
    int64_t db_last_row;        /* strings.last_row as this connection last wrote or read it */
    uint32_t off, len;          /* value in dict.bytes */
};

struct dict {
    struct dict_ent *ents;      /* open addressing, id 0 = empty */
    size_t tsize, n;
    char *bytes;
    size_t bytes_len, bytes_alloc;
    int64_t enum_id[2][4];      /* [0] direction, [1] proto -> id; 0: look it up */
    int64_t enum_row[2][4];     /* their db_last_row */
    unsigned gen;               /* +1 whenever bytes are dropped */
    struct {                    /* per raw column, the last string: often the next one */
        uint32_t off, len;
        unsigned gen;
        int64_t id, last_row;
    } memo[32];
};
/* A row refers to a string whose strings.last_row is at least its own
 * row_id minus this: ingest raises last_row when it falls further behind. */
#define DICT_REFRESH_ROWS (1 << 17)

/* Raw rows on their way into events_raw: S_EVT_INS reads up to ROWS_MAX
 * of them at once through the mesh_rows virtual table (ingest.c), one
 * statement per chunk instead of one per row. Columns as in events_raw. */
#define RAW_COLS 27
#define RAW_COL_ERROR 20        /* the two text columns */
#define RAW_COL_ID 25
#define ROWS_MAX 1024
struct rawrow {
    int64_t v[RAW_COLS];
    uint32_t null;              /* bit i: column i is NULL */
    const char *error, *id;     /* borrowed from the event being stored */
};

struct mesh_store {
    sqlite3 *db;
    char *path;
    struct mesh_store_opts opts;
    sqlite3_stmt *stmt[S_COUNT];
    int in_txn;                 /* mesh_store_begin() or an ingest's own */
    int user_txn;               /* opened by mesh_store_begin() */
    int64_t next_row;           /* events.row_id of the next insert */
    int64_t rolled_row;         /* meta rollup_row_id: rows <= it are in rollups */
    struct acc acc;
    struct dict dict;
    struct rawrow *rows;        /* ROWS_MAX, allocated at the first ingest */
    size_t nrows;
    struct mesh_store_counters counters, pending;
    char *scratch;              /* key packing, blob encoding */
    size_t scratch_alloc;
    char errmsg[512];
};

/* schema.c */
int store_set_err(struct mesh_store *st, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int store_sqlite_err(struct mesh_store *st, int rc, const char *what);
int store_exec(struct mesh_store *st, enum store_stmt id, const char *what);
int64_t store_int_query(struct mesh_store *st, enum store_stmt id, int64_t dflt);
int store_scratch(struct mesh_store *st, size_t len);

/* ingest.c */
int store_recover(struct mesh_store *st);
int store_flush(struct mesh_store *st);
void store_acc_free(struct acc *acc);
void store_row_to_evt(sqlite3_stmt *s, struct mesh_evt *evt);
uint64_t store_conn_hash(const char *sender, const char *id);
const char *store_ip_only(char *out, size_t len, const char *addr);
uint64_t store_now(const struct mesh_store *st);
int store_begin_internal(struct mesh_store *st);
int store_finish_internal(struct mesh_store *st, int rv);
int store_txn_lost(struct mesh_store *st);
void store_dict_clear(struct mesh_store *st);
int store_register_rows(sqlite3 *db, struct mesh_store *st);
void store_dict_free(struct dict *d);

/* sketch.c: lat_hist blobs are varint pairs (bucket delta, count); conns
 * blobs are 'E' + 5-byte hashes or 'H' + 256 HyperLogLog registers. */
#define CONN_EXACT_MAX 32
#define HLL_REGS 256
size_t sketch_hist_encode(const struct hb *hb, size_t n, uint8_t *out); /* out: 15*n */
size_t sketch_conns_encode(const uint64_t *hashes, size_t n, const uint8_t *hll, uint8_t *out);
void sketch_hll_add(uint8_t *regs, uint64_t hash);
double sketch_hll_estimate(const uint8_t *regs);
int sketch_register_functions(sqlite3 *db);

/* Reading side: a histogram and a connection count merged over many rows. */
struct hb64 {
    uint32_t bucket;
    uint64_t count;
};
struct shist {
    struct hb64 *v;
    size_t n, cap;
    int64_t min, max;           /* -1: empty */
    uint64_t count;
};
void shist_init(struct shist *h);
int shist_merge_blob(struct shist *h, const void *blob, size_t len, int64_t min, int64_t max);
int shist_add(struct shist *h, uint64_t value);
int64_t shist_quantile(const struct shist *h, double q);
void shist_free(struct shist *h);

struct cunion {
    uint64_t *set;              /* open addressing, 0 = empty (hashes are never 0) */
    size_t n, cap;
    uint8_t *hll;               /* non-NULL: switched to HyperLogLog */
};
int cunion_merge_blob(struct cunion *u, const void *blob, size_t len);
int cunion_add(struct cunion *u, uint64_t hash);
uint64_t cunion_count(const struct cunion *u);
void cunion_free(struct cunion *u);

#endif
