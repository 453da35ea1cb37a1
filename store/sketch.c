/* Histogram and connection-count blobs of the rollup tables, their merge
 * functions for the upserts (mesh_hist_merge, mesh_conns_merge) and the
 * reading side's accumulators. Blobs come from a file anyone can edit with
 * sqlite3, so every decoder is bounds-checked and stops at the first bad
 * byte instead of trusting it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "mesh/hist.h"
#include "store_int.h"

#define CONN_HASH_BYTES 5 /* conn hashes are 40-bit */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* 0 at the end or on a bad varint */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

size_t sketch_hist_encode(const struct hb *hb, size_t n, uint8_t *out)
{
    uint8_t *p = out;
    uint32_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        p = put_varint(p, hb[i].bucket - prev);
        p = put_varint(p, hb[i].count);
        prev = hb[i].bucket;
    }
    return (size_t)(p - out);
}

/* The next (bucket, count) of a blob; 0 at its end or at a bad entry. */
struct hist_reader {
    const uint8_t *p, *end;
    uint64_t bucket;
};

static int hist_next(struct hist_reader *r, uint32_t *bucket, uint64_t *count)
{
    uint64_t delta, c;
    if (!get_varint(&r->p, r->end, &delta) || !get_varint(&r->p, r->end, &c))
        return 0;
    if (delta > MESH_HIST_BUCKETS || r->bucket + delta >= MESH_HIST_BUCKETS)
        return 0;
    r->bucket += delta;
    *bucket = (uint32_t)r->bucket;
    *count = c;
    return 1;
}

/* --- connection sketches --------------------------------------------------- */

void sketch_hll_add(uint8_t *regs, uint64_t hash)
{
    unsigned idx = (unsigned)(hash >> 32) & (HLL_REGS - 1);
    uint32_t w = (uint32_t)hash;
    uint8_t rank = (uint8_t)(w ? __builtin_clz(w) + 1 : 33);
    if (rank > regs[idx])
        regs[idx] = rank;
}

double sketch_hll_estimate(const uint8_t *regs)
{
    double sum = 0, m = HLL_REGS;
    unsigned zeros = 0;
    for (unsigned i = 0; i < HLL_REGS; i++) {
        sum += ldexp(1.0, -regs[i]);
        zeros += regs[i] == 0;
    }
    double est = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (est <= 2.5 * m && zeros > 0)
        est = m * log(m / zeros); /* linear counting for small sets */
    return est;
}

static void put_hash(uint8_t *p, uint64_t h)
{
    for (int i = 0; i < CONN_HASH_BYTES; i++)
        p[i] = (uint8_t)(h >> (8 * i));
}

static uint64_t get_hash(const uint8_t *p)
{
    uint64_t h = 0;
    for (int i = 0; i < CONN_HASH_BYTES; i++)
        h |= (uint64_t)p[i] << (8 * i);
    return h;
}

size_t sketch_conns_encode(const uint64_t *hashes, size_t n, const uint8_t *hll, uint8_t *out)
{
    if (hll != NULL) {
        out[0] = 'H';
        memcpy(out + 1, hll, HLL_REGS);
        return 1 + HLL_REGS;
    }
    if (n == 0)
        return 0;
    out[0] = 'E';
    for (size_t i = 0; i < n; i++)
        put_hash(out + 1 + i * CONN_HASH_BYTES, hashes[i]);
    return 1 + n * CONN_HASH_BYTES;
}

/* --- SQL functions for the upserts ------------------------------------------- */

static void fn_hist_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const uint8_t *a = sqlite3_value_blob(argv[0]), *b = sqlite3_value_blob(argv[1]);
    size_t alen = (size_t)sqlite3_value_bytes(argv[0]), blen = (size_t)sqlite3_value_bytes(argv[1]);
    if (a == NULL || alen == 0 || b == NULL || blen == 0) {
        sqlite3_result_value(ctx, a == NULL || alen == 0 ? argv[1] : argv[0]);
        return;
    }
    /* each entry of the result costs at most the bytes of its inputs plus
     * a count grown by one varint byte at worst */
    size_t cap = alen + blen + 32;
    uint8_t *out = sqlite3_malloc64(cap), *p = out;
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    struct hist_reader ra = {a, a + alen, 0}, rb = {b, b + blen, 0};
    uint32_t ba = 0, bb = 0, prev = 0;
    uint64_t ca = 0, cb = 0;
    int ha = hist_next(&ra, &ba, &ca), hb_ = hist_next(&rb, &bb, &cb);
    while (ha || hb_) {
        uint32_t bucket;
        uint64_t count;
        if (ha && (!hb_ || ba < bb)) {
            bucket = ba, count = ca;
            ha = hist_next(&ra, &ba, &ca);
        } else if (hb_ && (!ha || bb < ba)) {
            bucket = bb, count = cb;
            hb_ = hist_next(&rb, &bb, &cb);
        } else {
            bucket = ba, count = ca + cb;
            ha = hist_next(&ra, &ba, &ca);
            hb_ = hist_next(&rb, &bb, &cb);
        }
        if ((size_t)(p - out) + 20 > cap) { /* only a malformed input gets here */
            uint8_t *grown = sqlite3_realloc64(out, cap * 2);
            if (grown == NULL) {
                sqlite3_free(out);
                sqlite3_result_error_nomem(ctx);
                return;
            }
            p = grown + (p - out);
            out = grown;
            cap *= 2;
        }
        p = put_varint(p, bucket - prev);
        p = put_varint(p, count);
        prev = bucket;
    }
    sqlite3_result_blob64(ctx, out, (sqlite3_uint64)(p - out), sqlite3_free);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Adds a conns blob to |hashes| (room for CONN_EXACT_MAX*2) or to |regs|;
 * returns the new number of hashes, or SIZE_MAX once |regs| is in use. */
static size_t conns_collect(const uint8_t *blob, size_t len, uint64_t *hashes, size_t n,
                            uint8_t *regs)
{
    if (len == 1 + HLL_REGS && blob[0] == 'H') {
        for (size_t i = 0; i < n && n != SIZE_MAX; i++)
            sketch_hll_add(regs, hashes[i]);
        for (unsigned i = 0; i < HLL_REGS; i++)
            if (blob[1 + i] > regs[i])
                regs[i] = blob[1 + i];
        return SIZE_MAX;
    }
    if (len < 1 || blob[0] != 'E')
        return n;
    size_t k = (len - 1) / CONN_HASH_BYTES;
    if (k > CONN_EXACT_MAX)
        k = CONN_EXACT_MAX;
    for (size_t i = 0; i < k; i++) {
        uint64_t h = get_hash(blob + 1 + i * CONN_HASH_BYTES);
        if (n == SIZE_MAX)
            sketch_hll_add(regs, h);
        else
            hashes[n++] = h;
    }
    return n;
}

static void fn_conns_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const uint8_t *a = sqlite3_value_blob(argv[0]), *b = sqlite3_value_blob(argv[1]);
    size_t alen = (size_t)sqlite3_value_bytes(argv[0]), blen = (size_t)sqlite3_value_bytes(argv[1]);
    if (a == NULL || alen == 0 || b == NULL || blen == 0) {
        sqlite3_result_value(ctx, a == NULL || alen == 0 ? argv[1] : argv[0]);
        return;
    }
    uint64_t hashes[2 * CONN_EXACT_MAX];
    uint8_t regs[HLL_REGS] = {0}, out[1 + HLL_REGS > 1 + 2 * CONN_EXACT_MAX * CONN_HASH_BYTES
                                           ? 1 + HLL_REGS
                                           : 1 + 2 * CONN_EXACT_MAX * CONN_HASH_BYTES];
    size_t n = conns_collect(a, alen, hashes, 0, regs);
    n = conns_collect(b, blen, hashes, n, regs);
    size_t len;
    if (n == SIZE_MAX) {
        len = sketch_conns_encode(NULL, 0, regs, out);
    } else {
        qsort(hashes, n, sizeof(hashes[0]), cmp_u64);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (k == 0 || hashes[i] != hashes[k - 1])
                hashes[k++] = hashes[i];
        if (k > CONN_EXACT_MAX) {
            for (size_t i = 0; i < k; i++)
                sketch_hll_add(regs, hashes[i]);
            len = sketch_conns_encode(NULL, 0, regs, out);
        } else {
            len = sketch_conns_encode(hashes, k, NULL, out);
        }
    }
    sqlite3_result_blob(ctx, out, (int)len, SQLITE_TRANSIENT);
}

int sketch_register_functions(sqlite3 *db)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
    int rc = sqlite3_create_function_v2(db, "mesh_hist_merge", 2, flags, NULL, fn_hist_merge,
                                        NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(db, "mesh_conns_merge", 2, flags, NULL, fn_conns_merge,
                                        NULL, NULL, NULL);
    return rc;
}

/* --- reading side ------------------------------------------------------------ */

static int shist_reserve(struct shist *h, size_t want)
{
    if (want <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 16;
    while (cap < want)
        cap *= 2;
    struct hb64 *v = realloc(h->v, cap * sizeof(*v));
    if (v == NULL)
        return MESH_ENOMEM;
    h->v = v;
    h->cap = cap;
    return 0;
}

static void shist_minmax(struct shist *h, int64_t min, int64_t max)
{
    if (min >= 0 && (h->min < 0 || min < h->min))
        h->min = min;
    if (max > h->max)
        h->max = max;
}

/* Merges in place from the back: the blob's entries are decoded into the
 * spare room past h->n first, then both sorted runs are merged downwards. */
void shist_init(struct shist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = h->max = -1;
}

int shist_merge_blob(struct shist *h, const void *blob, size_t len, int64_t min, int64_t max)
{
    if (blob == NULL || len == 0)
        return 0;
    /* a blob holds at most len/2 entries */
    int rv = shist_reserve(h, h->n + len / 2 + 1);
    if (rv != 0)
        return rv;
    struct hist_reader r = {blob, (const uint8_t *)blob + len, 0};
    size_t k = 0;
    uint32_t bucket;
    uint64_t count;
    struct hb64 *in = h->v + h->n;
    while (hist_next(&r, &bucket, &count)) {
        if (k > 0 && bucket <= in[k - 1].bucket)
            break; /* not ascending: malformed */
        in[k].bucket = bucket;
        in[k].count = count;
        h->count += count;
        k++;
    }
    /* the input moves to [n+k, n+2k); the merge writes [.., n+k) downwards */
    rv = shist_reserve(h, h->n + 2 * k);
    if (rv != 0)
        return rv;
    in = h->v + h->n;
    struct hb64 *hi = h->v + h->n + k;
    memmove(hi, in, k * sizeof(*in));
    size_t i = h->n, j = k, out = h->n + k;
    /* merge from the top down: no slot is overwritten before it is read */
    while (j > 0) {
        if (i > 0 && h->v[i - 1].bucket > hi[j - 1].bucket)
            h->v[--out] = h->v[--i];
        else if (i > 0 && h->v[i - 1].bucket == hi[j - 1].bucket) {
            h->v[--out] = h->v[--i];
            h->v[out].count += hi[--j].count;
        } else
            h->v[--out] = hi[--j];
    }
    /* entries h->v[0..i) are in place below |out|; close the gap */
    if (out != i)
        memmove(h->v + i, h->v + out, (h->n + k - out) * sizeof(*h->v));
    h->n = i + (h->n + k - out);
    shist_minmax(h, min, max);
    return 0;
}

int shist_add(struct shist *h, uint64_t value)
{
    uint8_t blob[24];
    struct hb one = {mesh_hist_bucket(value), 1};
    size_t len = sketch_hist_encode(&one, 1, blob);
    return shist_merge_blob(h, blob, len, (int64_t)value, (int64_t)value);
}

/* As mesh_hist_quantile: nearest rank, a bucket's midpoint clamped to
 * [min, max], so the store and the capture views agree to the microsecond. */
int64_t shist_quantile(const struct shist *h, double q)
{
    if (h->count == 0)
        return -1;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999), seen = 0;
    if (rank == 0)
        rank = 1;
    for (size_t i = 0; i < h->n; i++) {
        seen += h->v[i].count;
        if (seen >= rank) {
            uint64_t lo = mesh_hist_bucket_low(h->v[i].bucket);
            uint64_t hi = mesh_hist_bucket_high(h->v[i].bucket);
            int64_t mid = (int64_t)(lo + (hi - lo) / 2);
            if (h->min >= 0 && mid < h->min)
                mid = h->min;
            if (h->max >= 0 && mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max;
}

void shist_free(struct shist *h)
{
    free(h->v);
    memset(h, 0, sizeof(*h));
}

#define CUNION_EXACT_MAX 4096

static int cunion_to_hll(struct cunion *u)
{
    u->hll = calloc(1, HLL_REGS);
    if (u->hll == NULL)
        return MESH_ENOMEM;
    for (size_t i = 0; i < u->cap; i++)
        if (u->set[i] != 0)
            sketch_hll_add(u->hll, u->set[i]);
    free(u->set);
    u->set = NULL;
    u->n = u->cap = 0;
    return 0;
}

int cunion_add(struct cunion *u, uint64_t hash)
{
    if (u->hll != NULL) {
        sketch_hll_add(u->hll, hash);
        return 0;
    }
    if ((u->n + 1) * 2 > u->cap) {
        if (u->n + 1 > CUNION_EXACT_MAX) {
            int rv = cunion_to_hll(u);
            if (rv == 0)
                sketch_hll_add(u->hll, hash);
            return rv;
        }
        size_t cap = u->cap ? u->cap * 2 : 16;
        uint64_t *set = calloc(cap, sizeof(*set));
        if (set == NULL)
            return MESH_ENOMEM;
        for (size_t i = 0; i < u->cap; i++) {
            if (u->set[i] == 0)
                continue;
            size_t j = u->set[i] & (cap - 1);
            while (set[j] != 0)
                j = (j + 1) & (cap - 1);
            set[j] = u->set[i];
        }
        free(u->set);
        u->set = set;
        u->cap = cap;
    }
    size_t j = hash & (u->cap - 1);
    while (u->set[j] != 0) {
        if (u->set[j] == hash)
            return 0;
        j = (j + 1) & (u->cap - 1);
    }
    u->set[j] = hash;
    u->n++;
    return 0;
}

int cunion_merge_blob(struct cunion *u, const void *blob, size_t len)
{
    const uint8_t *b = blob;
    if (b == NULL || len == 0)
        return 0;
    if (len == 1 + HLL_REGS && b[0] == 'H') {
        if (u->hll == NULL) {
            int rv = cunion_to_hll(u);
            if (rv != 0)
                return rv;
        }
        for (unsigned i = 0; i < HLL_REGS; i++)
            if (b[1 + i] > u->hll[i])
                u->hll[i] = b[1 + i];
        return 0;
    }
    if (b[0] != 'E')
        return 0;
    for (size_t off = 1; off + CONN_HASH_BYTES <= len; off += CONN_HASH_BYTES) {
        int rv = cunion_add(u, get_hash(b + off));
        if (rv != 0)
            return rv;
    }
    return 0;
}

uint64_t cunion_count(const struct cunion *u)
{
    return u->hll ? (uint64_t)llround(sketch_hll_estimate(u->hll)) : u->n;
}

void cunion_free(struct cunion *u)
{
    free(u->set);
    free(u->hll);
    memset(u, 0, sizeof(*u));
}
