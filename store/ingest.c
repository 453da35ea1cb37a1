/* Ingest: raw rows per batch in one transaction, and the rollup accumulator.
 *
 * Rollups are aggregated in memory and written (upserted) at most
 * rollup_flush_us after the raw rows, in the same transaction as some
 * later commit, together with meta.rollup_row_id: every events.row_id up to
 * it is in the rollups, every one above it is not. A crash between the two
 * loses nothing: open (and rollback) re-aggregate the rows above the mark,
 * and a read-only reader adds them itself (query.c). This turns a per-batch
 * cost of one upsert per distinct route into one per route per second.
 *
 * Raw rows hold strings.id for their repeated strings (schema.c, version 2),
 * looked up in a bounded in-memory cache of the dictionary, so SQLite only
 * sees the first use of a string. The rows of a batch go in through the
 * eponymous virtual table mesh_rows, up to ROWS_MAX per INSERT ... SELECT:
 * one statement with its cursors kept open (appends find the end of the
 * table without a search) instead of one statement and 27 bindings per row. */
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "mesh/hist.h"
#include "store_int.h"

/* flush early, whatever the clock says, past these: the accumulator stays
 * under ~12 MB (arrays grow by doubling, so up to twice these) even when a
 * replay feeds it hours of history with many routes in one second of wall time */
#define ACC_MAX_AGGS 16384
#define ACC_MAX_HB (1u << 18)
#define ACC_MAX_CV (1u << 17)
#define ACC_MAX_KEYS (2u << 20)

/* --- hashing ----------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const void *data, size_t n, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull), w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, p, n);
    return mix64(h ^ w);
}

/* The connection of an event: the CONN of its "CONN:STREAM" id, per sender
 * (two proxies both have a connection 3). 40 bits, never 0; 0 = none. */
uint64_t store_conn_hash(const char *sender, const char *id)
{
    if (id == NULL)
        return 0;
    size_t n = strcspn(id, ":");
    uint64_t h = hash_bytes(id, n, hash_bytes(sender ? sender : "", sender ? strlen(sender) : 0, 7));
    h >>= 24;
    return h ? h : 1;
}

/* "host" of "host:port" and of "[v6]:port", as top/top.c shows a source */
const char *store_ip_only(char *out, size_t len, const char *addr)
{
    if (addr == NULL) {
        out[0] = '\0';
        return out;
    }
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    const char *from = addr;
    if (n > 1 && addr[0] == '[' && addr[n - 1] == ']') {
        from = addr + 1;
        n -= 2;
    }
    if (n >= len)
        n = len - 1;
    memcpy(out, from, n);
    out[n] = '\0';
    return out;
}

/* --- the accumulator ------------------------------------------------------------ */

static void acc_reset(struct acc *a)
{
    a->naggs = 0;
    a->keys_len = a->hb_len = a->cv_len = 0;
    a->events = 0;
    if (a->table)
        memset(a->table, 0, a->tsize * sizeof(*a->table));
}

void store_acc_free(struct acc *a)
{
    free(a->aggs);
    free(a->table);
    free(a->keys);
    free(a->hb);
    free(a->cv);
    memset(a, 0, sizeof(*a));
}

static int grow_array(void **arr, size_t *alloc, size_t want, size_t elem)
{
    if (want <= *alloc)
        return 0;
    size_t n = *alloc ? *alloc : 256;
    while (n < want)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (p == NULL)
        return MESH_ENOMEM;
    *arr = p;
    *alloc = n;
    return 0;
}

static uint64_t slot_hash(uint64_t key_hash, int64_t sec, int family, int span)
{
    return key_hash ^ mix64((uint64_t)sec * 4 + (uint64_t)family * 2 + (uint64_t)span);
}

static int acc_rehash(struct acc *a, size_t tsize)
{
    uint32_t *t = calloc(tsize, sizeof(*t));
    if (t == NULL)
        return MESH_ENOMEM;
    for (size_t i = 0; i < a->naggs; i++) {
        const struct agg *g = &a->aggs[i];
        size_t j = slot_hash(g->hash, g->sec, g->family, g->span) & (tsize - 1);
        while (t[j] != 0)
            j = (j + 1) & (tsize - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(a->table);
    a->table = t;
    a->tsize = tsize;
    return 0;
}

/* Re-inserts aggs[0, naggs) into the table as it is, allocating nothing. */
static void acc_reindex(struct acc *a)
{
    memset(a->table, 0, a->tsize * sizeof(*a->table));
    for (size_t i = 0; i < a->naggs; i++) {
        const struct agg *g = &a->aggs[i];
        size_t j = slot_hash(g->hash, g->sec, g->family, g->span) & (a->tsize - 1);
        while (a->table[j] != 0)
            j = (j + 1) & (a->tsize - 1);
        a->table[j] = (uint32_t)i + 1;
    }
}

/* The aggregate of (key, sec, family, span), created empty if missing. The
 * key is |key_len| bytes at |key|, or already in a->keys at |key_off|
 * (UINT32_MAX: copy it). Returns its index, or -1 when out of memory. */
static long acc_find(struct acc *a, uint64_t key_hash, int64_t sec, int family, int span,
                     const char *key, uint32_t key_len, uint32_t key_off)
{
    uint64_t h = slot_hash(key_hash, sec, family, span);
    if (a->tsize > 0) {
        for (size_t j = h & (a->tsize - 1); a->table[j] != 0; j = (j + 1) & (a->tsize - 1)) {
            struct agg *g = &a->aggs[a->table[j] - 1];
            if (g->hash == key_hash && g->sec == sec && g->family == family && g->span == span &&
                g->key_len == key_len &&
                (key_off == g->key_off || memcmp(a->keys + g->key_off, key, key_len) == 0))
                return (long)(a->table[j] - 1);
        }
    }
    if ((a->naggs + 1) * 2 > a->tsize && acc_rehash(a, a->tsize ? a->tsize * 2 : 1024) != 0)
        return -1;
    if (grow_array((void **)&a->aggs, &a->aaggs, a->naggs + 1, sizeof(*a->aggs)) != 0)
        return -1;
    if (key_off == UINT32_MAX) {
        if (grow_array((void **)&a->keys, &a->keys_alloc, a->keys_len + key_len, 1) != 0)
            return -1;
        memcpy(a->keys + a->keys_len, key, key_len);
        key_off = (uint32_t)a->keys_len;
        a->keys_len += key_len;
    }
    struct agg *g = &a->aggs[a->naggs];
    memset(g, 0, sizeof(*g));
    g->hash = key_hash;
    g->sec = sec;
    g->family = (uint8_t)family;
    g->span = (uint8_t)span;
    g->key_off = key_off;
    g->key_len = key_len;
    g->lat_min = g->lat_max = g->last_ts = g->last_lat = -1;
    size_t j = h & (a->tsize - 1);
    while (a->table[j] != 0)
        j = (j + 1) & (a->tsize - 1);
    a->table[j] = (uint32_t)a->naggs + 1;
    return (long)a->naggs++;
}

static int agg_hist_add(struct acc *a, struct agg *g, uint32_t bucket, uint32_t count)
{
    size_t lo = 0, hi = g->hist_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a->hb[g->hist_off + mid].bucket < bucket)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < g->hist_n && a->hb[g->hist_off + lo].bucket == bucket) {
        a->hb[g->hist_off + lo].count += count;
        return 0;
    }
    if (g->hist_n == g->hist_cap) {
        /* move to a block twice the size at the arena's end; the old one is
         * garbage until the next flush resets the arena */
        uint32_t cap = g->hist_cap ? g->hist_cap * 2 : 4;
        if (grow_array((void **)&a->hb, &a->hb_alloc, a->hb_len + cap, sizeof(*a->hb)) != 0)
            return MESH_ENOMEM;
        memcpy(a->hb + a->hb_len, a->hb + g->hist_off, g->hist_n * sizeof(*a->hb));
        g->hist_off = (uint32_t)a->hb_len;
        g->hist_cap = cap;
        a->hb_len += cap;
    }
    struct hb *v = a->hb + g->hist_off;
    memmove(v + lo + 1, v + lo, (g->hist_n - lo) * sizeof(*v));
    v[lo].bucket = bucket;
    v[lo].count = count;
    g->hist_n++;
    return 0;
}

#define HLL_WORDS (HLL_REGS / sizeof(uint64_t))

static int agg_conn_to_hll(struct acc *a, struct agg *g)
{
    if (grow_array((void **)&a->cv, &a->cv_alloc, a->cv_len + HLL_WORDS, sizeof(*a->cv)) != 0)
        return MESH_ENOMEM;
    uint8_t *regs = (uint8_t *)(a->cv + a->cv_len);
    memset(regs, 0, HLL_REGS);
    for (uint32_t i = 0; i < g->conn_n; i++)
        sketch_hll_add(regs, a->cv[g->conn_off + i]);
    g->conn_off = (uint32_t)a->cv_len;
    g->conn_n = 0;
    g->conn_cap = HLL_WORDS;
    g->conn_hll = 1;
    a->cv_len += HLL_WORDS;
    return 0;
}

static int agg_conn_add(struct acc *a, struct agg *g, uint64_t hash)
{
    if (g->conn_hll) {
        sketch_hll_add((uint8_t *)(a->cv + g->conn_off), hash);
        return 0;
    }
    size_t lo = 0, hi = g->conn_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a->cv[g->conn_off + mid] < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < g->conn_n && a->cv[g->conn_off + lo] == hash)
        return 0;
    if (g->conn_n == CONN_EXACT_MAX) {
        int rv = agg_conn_to_hll(a, g);
        if (rv == 0)
            sketch_hll_add((uint8_t *)(a->cv + g->conn_off), hash);
        return rv;
    }
    if (g->conn_n == g->conn_cap) {
        uint32_t cap = g->conn_cap ? g->conn_cap * 2 : 4;
        if (grow_array((void **)&a->cv, &a->cv_alloc, a->cv_len + cap, sizeof(*a->cv)) != 0)
            return MESH_ENOMEM;
        memcpy(a->cv + a->cv_len, a->cv + g->conn_off, g->conn_n * sizeof(*a->cv));
        g->conn_off = (uint32_t)a->cv_len;
        g->conn_cap = cap;
        a->cv_len += cap;
    }
    uint64_t *v = a->cv + g->conn_off;
    memmove(v + lo + 1, v + lo, (g->conn_n - lo) * sizeof(*v));
    v[lo] = hash;
    g->conn_n++;
    return 0;
}

static void agg_count(struct agg *g, const struct mesh_evt *e, int failed)
{
    g->requests++;
    g->failures += (uint64_t)failed;
    g->req_bytes += e->req_bytes;
    g->rsp_bytes += e->rsp_bytes;
    if (e->latency_us >= 0) {
        int64_t lat = e->latency_us;
        g->lat_count++;
        g->lat_sum += (uint64_t)lat;
        if (g->lat_min < 0 || lat < g->lat_min)
            g->lat_min = lat;
        if (lat > g->lat_max)
            g->lat_max = lat;
        if ((int64_t)e->ts_us >= g->last_ts) {
            g->last_ts = (int64_t)e->ts_us;
            g->last_lat = lat;
        }
    }
}

static char *put_part(char *p, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > KEY_PART_MAX)
        n = KEY_PART_MAX;
    memcpy(p, s ? s : "", n);
    p[n] = '\0';
    return p + n + 1;
}

/* Adds one event to the second it started in, for both families. */
static int acc_add(struct mesh_store *st, const struct mesh_evt *e, uint64_t conn_hash)
{
    struct acc *a = &st->acc;
    char ip[128];
    int rv = store_scratch(st, KP_COUNT * (KEY_PART_MAX + 1));
    if (rv != 0)
        return rv;
    /* top's fallbacks: the source's IP only when it has no deployment or
     * pod; the destination's address only when it has no deployment or
     * authority. Elsewhere they would split rows by client port for nothing. */
    int src_named = e->src_labels.deploy || e->src_labels.pod;
    int dst_named = e->dst_labels.deploy || e->authority;
    char *p = st->scratch;
    p = put_part(p, mesh_direction_name(e->direction));
    p = put_part(p, e->src_labels.ns);
    p = put_part(p, e->src_labels.deploy);
    p = put_part(p, e->src_labels.pod);
    p = put_part(p, e->dst_labels.ns);
    p = put_part(p, e->dst_labels.deploy);
    p = put_part(p, e->dst_labels.pod);
    p = put_part(p, e->authority);
    uint32_t wlen = (uint32_t)(p - st->scratch);
    p = put_part(p, src_named ? NULL : store_ip_only(ip, sizeof(ip), e->src));
    p = put_part(p, dst_named ? NULL : e->dst);
    p = put_part(p, e->method);
    p = put_part(p, e->path);
    uint32_t rlen = (uint32_t)(p - st->scratch);
    uint64_t wh = hash_bytes(st->scratch, wlen, 0);
    uint64_t rh = hash_bytes(st->scratch + wlen, rlen - wlen, wh);
    int64_t sec = (int64_t)(e->ts_us / 1000000u);
    int failed = mesh_evt_failed(e);

    long wi = acc_find(a, wh, sec, FAM_WORKLOAD, SPAN_FINE, st->scratch, wlen, UINT32_MAX);
    if (wi < 0)
        return MESH_ENOMEM;
    /* routes in 10 s: at low rates and many paths, 1 s rows cost as much
     * to write as the raw rows they sum */
    long ri = acc_find(a, rh, sec - sec % ROUTE_FINE_SECS, FAM_ROUTE, SPAN_FINE, st->scratch,
                       rlen, UINT32_MAX);
    if (ri < 0)
        return MESH_ENOMEM;
    struct agg *w = &a->aggs[wi], *r = &a->aggs[ri];
    agg_count(w, e, failed);
    agg_count(r, e, failed);
    if (e->latency_us >= 0) {
        uint32_t bucket = mesh_hist_bucket((uint64_t)e->latency_us);
        if (agg_hist_add(a, w, bucket, 1) != 0 || agg_hist_add(a, r, bucket, 1) != 0)
            return MESH_ENOMEM;
    }
    if (conn_hash != 0 && agg_conn_add(a, w, conn_hash) != 0)
        return MESH_ENOMEM;
    if (a->events++ == 0)
        a->first_us = store_now(st);
    return 0;
}

static int acc_full(const struct acc *a)
{
    return a->naggs > ACC_MAX_AGGS || a->hb_len > ACC_MAX_HB || a->cv_len > ACC_MAX_CV ||
           a->keys_len > ACC_MAX_KEYS;
}

static int flush_due(struct mesh_store *st)
{
    const struct acc *a = &st->acc;
    return a->events > 0 &&
           (acc_full(a) || store_now(st) - a->first_us >= st->opts.rollup_flush_us);
}

/* --- flushing -------------------------------------------------------------------- */

/* Folds every 1 s (10 s) aggregate into its minute's. */
static int acc_derive_minutes(struct acc *a)
{
    size_t n1 = a->naggs;
    for (size_t i = 0; i < n1; i++) {
        struct agg *g = &a->aggs[i];
        long mi = acc_find(a, g->hash, g->sec - g->sec % 60, g->family, SPAN_1M,
                           a->keys + g->key_off, g->key_len, g->key_off);
        if (mi < 0)
            return MESH_ENOMEM;
        g = &a->aggs[i]; /* acc_find may have moved the array */
        struct agg *m = &a->aggs[mi];
        m->requests += g->requests;
        m->failures += g->failures;
        m->lat_count += g->lat_count;
        m->lat_sum += g->lat_sum;
        m->req_bytes += g->req_bytes;
        m->rsp_bytes += g->rsp_bytes;
        if (g->lat_min >= 0 && (m->lat_min < 0 || g->lat_min < m->lat_min))
            m->lat_min = g->lat_min;
        if (g->lat_max > m->lat_max)
            m->lat_max = g->lat_max;
        if (g->last_ts >= 0 && g->last_ts >= m->last_ts) {
            m->last_ts = g->last_ts;
            m->last_lat = g->last_lat;
        }
        for (uint32_t k = 0; k < g->hist_n; k++) {
            struct hb b = a->hb[g->hist_off + k];
            if (agg_hist_add(a, m, b.bucket, b.count) != 0)
                return MESH_ENOMEM;
        }
        if (g->conn_hll) {
            if (!m->conn_hll && agg_conn_to_hll(a, m) != 0)
                return MESH_ENOMEM;
            g = &a->aggs[i];
            const uint8_t *src = (const uint8_t *)(a->cv + g->conn_off);
            uint8_t *dst = (uint8_t *)(a->cv + m->conn_off);
            for (unsigned k = 0; k < HLL_REGS; k++)
                if (src[k] > dst[k])
                    dst[k] = src[k];
        } else {
            for (uint32_t k = 0; k < g->conn_n; k++)
                if (agg_conn_add(a, m, a->cv[g->conn_off + k]) != 0)
                    return MESH_ENOMEM;
        }
    }
    return 0;
}

static void bind_opt(sqlite3_stmt *s, int idx, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(s, idx);
    else
        sqlite3_bind_int64(s, idx, v);
}

static int acc_write(struct mesh_store *st, const struct agg *g)
{
    static const enum store_stmt which[2][2] = {{S_UP_R1S, S_UP_R1M}, {S_UP_T10S, S_UP_T1M}};
    sqlite3_stmt *s = st->stmt[which[g->family][g->span]];
    int rv = store_scratch(st, (size_t)g->hist_n * 15 + HLL_REGS + 8);
    if (rv != 0)
        return rv;
    const char *part = st->acc.keys + g->key_off;
    int nparts = g->family == FAM_ROUTE ? KP_COUNT : KP_WORKLOAD, i = 1;
    sqlite3_bind_int64(s, i++, g->sec);
    for (int k = 0; k < nparts; k++) {
        size_t len = strlen(part);
        sqlite3_bind_text(s, i++, part, (int)len, SQLITE_STATIC);
        part += len + 1;
    }
    sqlite3_bind_int64(s, i++, (int64_t)g->requests);
    sqlite3_bind_int64(s, i++, (int64_t)g->failures);
    sqlite3_bind_int64(s, i++, (int64_t)g->lat_count);
    sqlite3_bind_int64(s, i++, (int64_t)g->lat_sum);
    bind_opt(s, i++, g->lat_min);
    bind_opt(s, i++, g->lat_max);
    uint8_t *blob = (uint8_t *)st->scratch;
    /* no latency yet: hb may still be NULL, and NULL + 0 is undefined */
    size_t hlen = sketch_hist_encode(g->hist_n > 0 ? st->acc.hb + g->hist_off : NULL,
                                     g->hist_n, blob);
    if (hlen > 0)
        sqlite3_bind_blob(s, i++, blob, (int)hlen, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i++);
    sqlite3_bind_int64(s, i++, (int64_t)g->req_bytes);
    sqlite3_bind_int64(s, i++, (int64_t)g->rsp_bytes);
    if (g->family == FAM_WORKLOAD) {
        uint8_t *cblob = blob + hlen;
        const uint64_t *conns = st->acc.cv != NULL ? st->acc.cv + g->conn_off : NULL;
        size_t clen = sketch_conns_encode(conns, g->conn_n,
                                          g->conn_hll ? (const uint8_t *)conns : NULL, cblob);
        if (clen > 0)
            sqlite3_bind_blob(s, i++, cblob, (int)clen, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, i++);
    } else {
        bind_opt(s, i++, g->last_ts);
        bind_opt(s, i++, g->last_ts >= 0 ? g->last_lat : -1);
    }
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(st, rc, "writing rollups");
}

/* Writes the accumulator and the row mark inside the open transaction, in
 * a savepoint: a failure half-way leaves neither half-written rollups (a
 * second try would count them twice) nor a changed accumulator. */
static int acc_flush_in_txn(struct mesh_store *st)
{
    struct acc *a = &st->acc;
    int rv = store_exec(st, S_SAVEPOINT, "writing rollups");
    if (rv != 0)
        return rv;
    size_t naggs = a->naggs, keys_len = a->keys_len, hb_len = a->hb_len, cv_len = a->cv_len;
    if ((rv = acc_derive_minutes(a)) != 0)
        store_set_err(st, rv, "out of memory");
    for (size_t i = 0; i < a->naggs && rv == 0; i++)
        rv = acc_write(st, &a->aggs[i]);
    if (rv == 0) {
        sqlite3_bind_int64(st->stmt[S_META_SET], 1, st->next_row - 1);
        rv = store_exec(st, S_META_SET, "writing the rollup mark");
    }
    if (rv == 0)
        rv = store_exec(st, S_RELEASE, "writing rollups");
    if (rv != 0) {
        /* drop the minute aggregates derived above: they are derived again
         * from the (untouched) per-second ones next time */
        if (a->naggs > naggs) {
            a->naggs = naggs;
            acc_reindex(a);
        }
        a->keys_len = keys_len;
        a->hb_len = hb_len;
        a->cv_len = cv_len;
        if (!sqlite3_get_autocommit(st->db)) {
            store_exec(st, S_ROLLBACK_TO, "undoing rollups");
            store_exec(st, S_RELEASE, "undoing rollups");
        }
        return rv;
    }
    st->pending.rollup_flushes++;
    st->pending.rollup_rows += a->naggs;
    st->rolled_row = st->next_row - 1;
    acc_reset(a);
    return 0;
}

/* --- transactions ------------------------------------------------------------------ */

int store_begin_internal(struct mesh_store *st)
{
    if (st->opts.readonly)
        return store_set_err(st, MESH_EINVAL, "%s: opened read-only", st->path);
    if (st->in_txn)
        return store_set_err(st, MESH_EINVAL, "a transaction is already open");
    int rv = store_exec(st, S_BEGIN, "beginning a transaction");
    if (rv == 0)
        st->in_txn = 1;
    return rv;
}

/* Re-reads the mark and aggregates every committed row above it again:
 * after open (a crash) and after a rollback (the accumulator may hold
 * rows that are gone, and miss a flush that was undone). */
int store_recover(struct mesh_store *st)
{
    acc_reset(&st->acc);
    store_dict_clear(st);
    st->rolled_row = store_int_query(st, S_META_GET, 0);
    st->next_row = store_int_query(st, S_MAX_ROW, 0);
    if (st->next_row < st->rolled_row)
        st->next_row = st->rolled_row;
    st->next_row++;
    sqlite3_stmt *s = st->stmt[S_TAIL];
    sqlite3_bind_int64(s, 1, st->rolled_row);
    int rc, rv = 0;
    while (rv == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mesh_evt e;
        store_row_to_evt(s, &e);
        rv = acc_add(st, &e, store_conn_hash((const char *)sqlite3_column_text(s, EC_SENDER), e.id));
    }
    sqlite3_reset(s);
    if (rv != 0)
        return store_set_err(st, rv, "out of memory re-aggregating rollups");
    if (rc != SQLITE_DONE)
        return store_sqlite_err(st, rc, "re-aggregating rollups");
    return 0;
}

/* SQLite rolls a whole transaction back by itself after some errors
 * (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM): catch up with it before
 * anything runs outside the transaction the caller believes open. */
int store_txn_lost(struct mesh_store *st)
{
    if (!st->in_txn || !sqlite3_get_autocommit(st->db))
        return 0;
    mesh_store_rollback(st);
    store_set_err(st, MESH_EIO, "%s: the transaction was rolled back after an error", st->path);
    return 1;
}

int mesh_store_rollback(struct mesh_store *st)
{
    if (!st->in_txn)
        return store_set_err(st, MESH_EINVAL, "no transaction is open");
    /* SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR) */
    if (!sqlite3_get_autocommit(st->db))
        store_exec(st, S_ROLLBACK, "rolling back");
    st->in_txn = st->user_txn = 0;
    memset(&st->pending, 0, sizeof(st->pending));
    st->counters.rollbacks++;
    return store_recover(st);
}

/* Ends an ingest's or a group's transaction: rollups if due, COMMIT; on any
 * failure (|rv| or the commit's) everything since BEGIN is rolled back. */
int store_finish_internal(struct mesh_store *st, int rv)
{
    if (rv == 0 && flush_due(st))
        rv = acc_flush_in_txn(st);
    if (rv == 0)
        rv = store_exec(st, S_COMMIT, "committing");
    if (rv != 0) {
        char saved[sizeof(st->errmsg)];
        memcpy(saved, st->errmsg, sizeof(saved));
        mesh_store_rollback(st);
        memcpy(st->errmsg, saved, sizeof(saved));
        return rv;
    }
    st->in_txn = st->user_txn = 0;
    struct mesh_store_counters *c = &st->counters, *p = &st->pending;
    c->events += p->events;
    c->batches += p->batches;
    c->duplicates += p->duplicates;
    c->rollup_flushes += p->rollup_flushes;
    c->rollup_rows += p->rollup_rows;
    c->commits++;
    memset(p, 0, sizeof(*p));
    return 0;
}

int mesh_store_begin(struct mesh_store *st)
{
    int rv = store_begin_internal(st);
    if (rv == 0)
        st->user_txn = 1;
    return rv;
}

int mesh_store_commit(struct mesh_store *st)
{
    if (!st->user_txn)
        return store_set_err(st, MESH_EINVAL, "no transaction is open");
    if (store_txn_lost(st))
        return MESH_EIO;
    return store_finish_internal(st, 0);
}

int mesh_store_in_transaction(const struct mesh_store *st)
{
    return st->in_txn;
}

int store_flush(struct mesh_store *st)
{
    if (st->opts.readonly || st->acc.events == 0)
        return 0;
    if (st->in_txn)
        return acc_flush_in_txn(st);
    int rv = store_begin_internal(st);
    if (rv != 0)
        return rv;
    rv = acc_flush_in_txn(st);
    if (rv == 0)
        rv = store_exec(st, S_COMMIT, "committing rollups");
    if (rv != 0) {
        char saved[sizeof(st->errmsg)];
        memcpy(saved, st->errmsg, sizeof(saved));
        mesh_store_rollback(st);
        memcpy(st->errmsg, saved, sizeof(saved));
        return rv;
    }
    st->in_txn = 0;
    st->counters.rollup_flushes += st->pending.rollup_flushes;
    st->counters.rollup_rows += st->pending.rollup_rows;
    memset(&st->pending, 0, sizeof(st->pending));
    return 0;
}

int mesh_store_flush(struct mesh_store *st)
{
    return store_flush(st);
}

/* --- the strings dictionary ------------------------------------------------------ */

/* Past these the cache is emptied and refilled from the file: clients'
 * ephemeral ports or paths with ids in them must not grow it for ever. */
#define DICT_MAX_ENTS 65536u
#define DICT_MAX_BYTES (4u << 20)

void store_dict_free(struct dict *d)
{
    free(d->ents);
    free(d->bytes);
    memset(d, 0, sizeof(*d));
}

/* After a rollback the cache may name ids that are gone (and that
 * AUTOINCREMENT, rolled back too, hands out again): forget everything. */
void store_dict_clear(struct mesh_store *st)
{
    struct dict *d = &st->dict;
    if (d->ents)
        memset(d->ents, 0, d->tsize * sizeof(*d->ents));
    d->n = 0;
    d->bytes_len = 0;
    d->gen++;
    memset(d->enum_id, 0, sizeof(d->enum_id));
}

static int dict_rehash(struct dict *d, size_t tsize)
{
    struct dict_ent *t = calloc(tsize, sizeof(*t));
    if (t == NULL)
        return MESH_ENOMEM;
    for (size_t i = 0; i < d->tsize; i++) {
        if (d->ents[i].id == 0)
            continue;
        size_t j = d->ents[i].hash & (tsize - 1);
        while (t[j].id != 0)
            j = (j + 1) & (tsize - 1);
        t[j] = d->ents[i];
    }
    free(d->ents);
    d->ents = t;
    d->tsize = tsize;
    return 0;
}

static int dict_put(struct mesh_store *st, uint64_t h, const char *s, size_t n, int64_t id,
                    int64_t last_row)
{
    struct dict *d = &st->dict;
    if (d->n >= DICT_MAX_ENTS || d->bytes_len + n > DICT_MAX_BYTES)
        store_dict_clear(st);
    if ((d->n + 1) * 2 > d->tsize && dict_rehash(d, d->tsize ? d->tsize * 2 : 1024) != 0)
        return MESH_ENOMEM;
    if (grow_array((void **)&d->bytes, &d->bytes_alloc, d->bytes_len + n + 1, 1) != 0)
        return MESH_ENOMEM;
    memcpy(d->bytes + d->bytes_len, s, n);
    size_t j = h & (d->tsize - 1);
    while (d->ents[j].id != 0)
        j = (j + 1) & (d->tsize - 1);
    d->ents[j] = (struct dict_ent){h, id, last_row, (uint32_t)d->bytes_len, (uint32_t)n};
    d->bytes_len += n;
    d->n++;
    return 0;
}

/* Raises strings.last_row of |id| to the row being written. Returns 1
 * when done, 0 when the string is gone (another connection's retention),
 * or a negative MESH_E*. */
static int dict_touch(struct mesh_store *st, int64_t id)
{
    sqlite3_stmt *s = st->stmt[S_STR_TOUCH];
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, st->next_row);
    int rv = store_exec(st, S_STR_TOUCH, "updating a string");
    return rv != 0 ? rv : sqlite3_changes(st->db) > 0;
}

/* strings.id of the |n| bytes at |s|, added to the file when new; *|last_row|
 * is then at least next_row - DICT_REFRESH_ROWS in the open transaction. */
static int dict_id(struct mesh_store *st, const char *s, size_t n, int64_t *id, int64_t *last_row,
                   uint32_t *off)
{
    struct dict *d = &st->dict;
    uint64_t h = hash_bytes(s, n, 0x5157);
    int rv;
    if (d->tsize > 0) {
        for (size_t j = h & (d->tsize - 1); d->ents[j].id != 0; j = (j + 1) & (d->tsize - 1)) {
            struct dict_ent *e = &d->ents[j];
            if (e->hash != h || e->len != n || memcmp(d->bytes + e->off, s, n) != 0)
                continue;
            *off = e->off;
            if (st->next_row - e->db_last_row <= DICT_REFRESH_ROWS) {
                *id = e->id;
                *last_row = e->db_last_row;
                return 0;
            }
            if ((rv = dict_touch(st, e->id)) < 0)
                return rv;
            if (rv == 1) {
                e->db_last_row = st->next_row;
                *id = e->id;
                *last_row = e->db_last_row;
                return 0;
            }
            store_dict_clear(st); /* gone: look it up (and add it) again */
            break;
        }
    }
    sqlite3_stmt *q = st->stmt[S_STR_GET];
    sqlite3_bind_text(q, 1, s, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *id = 0;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        *last_row = sqlite3_column_int64(q, 1);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sqlite_err(st, rc, "reading a string");
    if (*id != 0 && st->next_row - *last_row > DICT_REFRESH_ROWS) {
        if ((rv = dict_touch(st, *id)) < 0)
            return rv;
        *last_row = st->next_row;
    }
    if (*id == 0) {
        q = st->stmt[S_STR_INS];
        sqlite3_bind_text(q, 1, s, (int)n, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, st->next_row);
        if ((rv = store_exec(st, S_STR_INS, "adding a string")) != 0)
            return rv;
        *id = sqlite3_last_insert_rowid(st->db);
        *last_row = st->next_row;
    }
    if (dict_put(st, h, s, n, *id, *last_row) != 0)
        return store_set_err(st, MESH_ENOMEM, "out of memory");
    *off = (uint32_t)(st->dict.bytes_len - n);
    return 0;
}

/* --- ingest ---------------------------------------------------------------------- */

/* --- the mesh_rows virtual table: st->rows as a table S_EVT_INS selects from --- */

struct rows_vtab {
    sqlite3_vtab base;
    struct mesh_store *st;
};

struct rows_cursor {
    sqlite3_vtab_cursor base;
    size_t i;
};

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **err)
{
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(
        db, "CREATE TABLE x(row_id, batch, ts, proxy_direction, src, dst, src_ns, src_deploy, "
            "src_pod, dst_ns, dst_deploy, dst_pod, proto, method, scheme, authority, path, status, "
            "grpc_status, reset, error, latency_us, duration_us, req_bytes, rsp_bytes, id, failed)");
    if (rc != SQLITE_OK)
        return rc;
    struct rows_vtab *v = sqlite3_malloc(sizeof(*v));
    if (v == NULL)
        return SQLITE_NOMEM;
    memset(v, 0, sizeof(*v));
    v->st = aux;
    *out = &v->base;
    /* only our own statements may read it, never a view or trigger in a file */
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *vt)
{
    sqlite3_free(vt);
    return SQLITE_OK;
}

static int rows_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    (void)vt;
    info->estimatedCost = ROWS_MAX;
    info->estimatedRows = ROWS_MAX;
    return SQLITE_OK;
}

static int rows_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    (void)vt;
    struct rows_cursor *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    *out = &c->base;
    return SQLITE_OK;
}

static int rows_close(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
                       sqlite3_value **argv)
{
    (void)idx_num;
    (void)idx_str;
    (void)argc;
    (void)argv;
    ((struct rows_cursor *)cur)->i = 0;
    return SQLITE_OK;
}

static int rows_next(sqlite3_vtab_cursor *cur)
{
    ((struct rows_cursor *)cur)->i++;
    return SQLITE_OK;
}

static int rows_eof(sqlite3_vtab_cursor *cur)
{
    const struct mesh_store *st = ((struct rows_vtab *)cur->pVtab)->st;
    return ((struct rows_cursor *)cur)->i >= st->nrows;
}

static int rows_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    const struct mesh_store *st = ((struct rows_vtab *)cur->pVtab)->st;
    const struct rawrow *r = &st->rows[((struct rows_cursor *)cur)->i];
    if (col == RAW_COL_ID || col == RAW_COL_ERROR) {
        const char *text = col == RAW_COL_ID ? r->id : r->error;
        if (text)
            sqlite3_result_text(ctx, text, -1, SQLITE_STATIC);
        else
            sqlite3_result_null(ctx);
    } else if (r->null & (1u << col)) {
        sqlite3_result_null(ctx);
    } else {
        sqlite3_result_int64(ctx, r->v[col]);
    }
    return SQLITE_OK;
}

static int rows_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((struct rows_cursor *)cur)->i;
    return SQLITE_OK;
}

static const sqlite3_module rows_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: no CREATE VIRTUAL TABLE in any file */
    .xConnect = rows_connect,
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xDestroy = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

int store_register_rows(sqlite3 *db, struct mesh_store *st)
{
    return sqlite3_create_module_v2(db, "mesh_rows", &rows_module, st, NULL);
}

/* --- ingest ---------------------------------------------------------------------- */

enum {
    RC_ROW, RC_BATCH, RC_TS, RC_DIR, RC_SRC, RC_DST, RC_SRC_NS, RC_SRC_DEPLOY, RC_SRC_POD,
    RC_DST_NS, RC_DST_DEPLOY, RC_DST_POD, RC_PROTO, RC_METHOD, RC_SCHEME, RC_AUTHORITY,
    RC_PATH, RC_STATUS, RC_GRPC_STATUS, RC_RESET, RC_ERROR, RC_LATENCY, RC_DURATION,
    RC_REQ_BYTES, RC_RSP_BYTES, RC_ID, RC_FAILED
};
_Static_assert(RC_ID == RAW_COL_ID && RC_ERROR == RAW_COL_ERROR && RC_FAILED + 1 == RAW_COLS,
               "events_raw columns");

static void row_opt(struct rawrow *r, int col, int64_t v)
{
    if (v < 0)
        r->null |= 1u << col;
    else
        r->v[col] = v;
}

/* Column |col| = the id of string |v| (NULL: NULL). Neighbouring events
 * often share labels and addresses: the column's previous string is
 * compared first, which saves hashing and probing. */
static int row_str(struct mesh_store *st, struct rawrow *r, int col, const char *v)
{
    struct dict *d = &st->dict;
    if (v == NULL) {
        r->null |= 1u << col;
        return 0;
    }
    size_t n = strlen(v);
    if (d->memo[col].gen == d->gen && d->memo[col].len == n &&
        st->next_row - d->memo[col].last_row <= DICT_REFRESH_ROWS &&
        memcmp(d->bytes + d->memo[col].off, v, n) == 0) {
        r->v[col] = d->memo[col].id;
        return 0;
    }
    int64_t last_row;
    uint32_t off;
    int rv = dict_id(st, v, n, &r->v[col], &last_row, &off);
    if (rv == 0) {
        d->memo[col].off = off;
        d->memo[col].len = (uint32_t)n;
        d->memo[col].gen = d->gen;
        d->memo[col].id = r->v[col];
        d->memo[col].last_row = last_row;
    }
    return rv;
}

/* The same for the names of enum values (direction, proto), without hashing. */
static int row_enum(struct mesh_store *st, struct rawrow *r, int col, int which, unsigned value,
                    const char *name)
{
    struct dict *d = &st->dict;
    if (value < 4 && d->enum_id[which][value] != 0 &&
        st->next_row - d->enum_row[which][value] <= DICT_REFRESH_ROWS) {
        r->v[col] = d->enum_id[which][value];
        return 0;
    }
    int64_t last_row;
    uint32_t off;
    int rv = dict_id(st, name, strlen(name), &r->v[col], &last_row, &off);
    if (rv == 0 && value < 4) {
        d->enum_id[which][value] = r->v[col];
        d->enum_row[which][value] = last_row;
    }
    return rv;
}

/* Writes st->rows to events_raw with one statement. */
static int rows_insert(struct mesh_store *st)
{
    if (st->nrows == 0)
        return 0;
    int rv = store_exec(st, S_EVT_INS, "storing events");
    st->nrows = 0;
    return rv;
}

/* Adds |e| as row next_row to st->rows, writing them first when full. */
static int row_add(struct mesh_store *st, int64_t batch, const struct mesh_evt *e)
{
    int rv;
    if (st->rows == NULL && (st->rows = malloc(ROWS_MAX * sizeof(*st->rows))) == NULL)
        return store_set_err(st, MESH_ENOMEM, "out of memory");
    if (st->nrows == ROWS_MAX && (rv = rows_insert(st)) != 0)
        return rv;
    struct rawrow *r = &st->rows[st->nrows];
    r->null = 0;
    r->v[RC_ROW] = st->next_row;
    r->v[RC_BATCH] = batch;
    r->v[RC_TS] = (int64_t)e->ts_us;
    if ((rv = row_enum(st, r, RC_DIR, 0, (unsigned)e->direction,
                       mesh_direction_name(e->direction))) != 0 ||
        (rv = row_str(st, r, RC_SRC, e->src)) != 0 || (rv = row_str(st, r, RC_DST, e->dst)) != 0 ||
        (rv = row_str(st, r, RC_SRC_NS, e->src_labels.ns)) != 0 ||
        (rv = row_str(st, r, RC_SRC_DEPLOY, e->src_labels.deploy)) != 0 ||
        (rv = row_str(st, r, RC_SRC_POD, e->src_labels.pod)) != 0 ||
        (rv = row_str(st, r, RC_DST_NS, e->dst_labels.ns)) != 0 ||
        (rv = row_str(st, r, RC_DST_DEPLOY, e->dst_labels.deploy)) != 0 ||
        (rv = row_str(st, r, RC_DST_POD, e->dst_labels.pod)) != 0)
        return rv;
    if (e->proto)
        rv = row_enum(st, r, RC_PROTO, 1, (unsigned)e->proto, mesh_proto_name(e->proto));
    else
        r->null |= 1u << RC_PROTO;
    if (rv != 0 || (rv = row_str(st, r, RC_METHOD, e->method)) != 0 ||
        (rv = row_str(st, r, RC_SCHEME, e->scheme)) != 0 ||
        (rv = row_str(st, r, RC_AUTHORITY, e->authority)) != 0 ||
        (rv = row_str(st, r, RC_PATH, e->path)) != 0)
        return rv;
    row_opt(r, RC_STATUS, e->status);
    row_opt(r, RC_GRPC_STATUS, e->grpc_status);
    row_opt(r, RC_RESET, e->reset);
    row_opt(r, RC_LATENCY, e->latency_us);
    row_opt(r, RC_DURATION, e->duration_us);
    r->v[RC_REQ_BYTES] = (int64_t)e->req_bytes;
    r->v[RC_RSP_BYTES] = (int64_t)e->rsp_bytes;
    r->error = e->error;
    r->id = e->id;
    r->v[RC_FAILED] = mesh_evt_failed(e);
    st->nrows++;
    st->next_row++;
    return 0;
}

int mesh_store_ingest(struct mesh_store *st, const char *sender_id, uint64_t seq,
                      const struct mesh_evt *evts, size_t n, size_t *stored, int *duplicate)
{
    size_t nstored = 0;
    int dup = 0, rv = 0, own = !st->in_txn;
    if (stored)
        *stored = 0;
    if (duplicate)
        *duplicate = 0;
    if (sender_id == NULL || (evts == NULL && n > 0))
        return store_set_err(st, MESH_EINVAL, "ingest: sender id or events missing");
    if (!own && store_txn_lost(st))
        return MESH_EIO;
    if (own && (rv = store_begin_internal(st)) != 0)
        return rv;

    sqlite3_stmt *s = st->stmt[S_BATCH_INS];
    sqlite3_bind_text(s, 1, sender_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (int64_t)seq);
    sqlite3_bind_int64(s, 3, (int64_t)store_now(st));
    sqlite3_bind_int64(s, 4, (int64_t)n);
    if ((rv = store_exec(st, S_BATCH_INS, "recording the batch")) != 0)
        goto out;
    if (sqlite3_changes(st->db) == 0) {
        dup = 1;
        st->pending.duplicates++;
        goto out;
    }
    int64_t batch = sqlite3_last_insert_rowid(st->db);
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = row_add(st, batch, &evts[i]);
        if (rv == 0 && (rv = acc_add(st, &evts[i], store_conn_hash(sender_id, evts[i].id))) != 0)
            store_set_err(st, rv, "out of memory aggregating rollups");
        /* a huge group must not grow memory without bound; the rows first,
         * so that the rollup mark never passes a row not written */
        if (rv == 0 && acc_full(&st->acc) && (rv = rows_insert(st)) == 0)
            rv = acc_flush_in_txn(st);
    }
    if (rv == 0)
        rv = rows_insert(st);
    st->nrows = 0; /* borrowed ids must not outlive the call */
    if (rv == 0) {
        nstored = n;
        st->pending.events += n;
        st->pending.batches++;
    }
out:
    if (own) {
        rv = store_finish_internal(st, rv);
    } else if (rv != 0) {
        char saved[sizeof(st->errmsg)];
        memcpy(saved, st->errmsg, sizeof(saved));
        mesh_store_rollback(st);
        memcpy(st->errmsg, saved, sizeof(saved));
    }
    if (rv == 0) {
        if (stored)
            *stored = nstored;
        if (duplicate)
            *duplicate = dup;
    }
    return rv;
}

/* --- reading rows back ------------------------------------------------------------ */

static const char *col_str(sqlite3_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(s, col); /* NULL for NULL */
}

static int64_t col_opt(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, col);
}

void store_row_to_evt(sqlite3_stmt *s, struct mesh_evt *e)
{
    mesh_evt_init(e);
    e->ts_us = (uint64_t)sqlite3_column_int64(s, EC_TS);
    const char *dir = col_str(s, EC_DIR), *proto = col_str(s, EC_PROTO);
    e->direction = dir ? mesh_direction_parse(dir) : MESH_DIR_UNSPEC;
    e->proto = proto ? mesh_proto_parse(proto) : MESH_PROTO_UNKNOWN;
    e->src = col_str(s, EC_SRC);
    e->dst = col_str(s, EC_DST);
    e->src_labels.ns = col_str(s, EC_SRC_NS);
    e->src_labels.deploy = col_str(s, EC_SRC_DEPLOY);
    e->src_labels.pod = col_str(s, EC_SRC_POD);
    e->dst_labels.ns = col_str(s, EC_DST_NS);
    e->dst_labels.deploy = col_str(s, EC_DST_DEPLOY);
    e->dst_labels.pod = col_str(s, EC_DST_POD);
    e->method = col_str(s, EC_METHOD);
    e->scheme = col_str(s, EC_SCHEME);
    e->authority = col_str(s, EC_AUTHORITY);
    e->path = col_str(s, EC_PATH);
    int64_t v;
    e->status = (v = col_opt(s, EC_STATUS)) > INT32_MAX ? INT32_MAX : (int)v;
    e->grpc_status = (v = col_opt(s, EC_GRPC_STATUS)) > INT32_MAX ? INT32_MAX : (int)v;
    e->reset = col_opt(s, EC_RESET);
    e->error = col_str(s, EC_ERROR);
    e->latency_us = col_opt(s, EC_LATENCY);
    e->duration_us = col_opt(s, EC_DURATION);
    e->req_bytes = (uint64_t)sqlite3_column_int64(s, EC_REQ_BYTES);
    e->rsp_bytes = (uint64_t)sqlite3_column_int64(s, EC_RSP_BYTES);
    e->id = col_str(s, EC_ID);
}
