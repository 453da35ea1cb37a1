#include "mesh/hist.h"

#include <string.h>

#define SUB (1u << MESH_HIST_SUB_BITS)

void mesh_hist_init(struct mesh_hist *h)
{
    memset(h, 0, sizeof(*h));
}

unsigned mesh_hist_bucket(uint64_t v)
{
    if (v < 2 * SUB)
        return (unsigned)v;
    unsigned exp = 63u - (unsigned)__builtin_clzll(v); /* 2^exp <= v */
    if (exp >= MESH_HIST_MAX_EXP)
        return MESH_HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (exp - MESH_HIST_SUB_BITS)) - SUB; /* 0..63 */
    return 2 * SUB + (exp - MESH_HIST_SUB_BITS - 1) * SUB + sub;
}

uint64_t mesh_hist_bucket_low(unsigned b)
{
    if (b < 2 * SUB)
        return b;
    unsigned exp = (b - 2 * SUB) / SUB + MESH_HIST_SUB_BITS + 1;
    unsigned sub = (b - 2 * SUB) % SUB;
    return (uint64_t)(SUB + sub) << (exp - MESH_HIST_SUB_BITS);
}

uint64_t mesh_hist_bucket_high(unsigned b)
{
    if (b < 2 * SUB)
        return b;
    unsigned exp = (b - 2 * SUB) / SUB + MESH_HIST_SUB_BITS + 1;
    return mesh_hist_bucket_low(b) + ((uint64_t)1 << (exp - MESH_HIST_SUB_BITS)) - 1;
}

void mesh_hist_add(struct mesh_hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->buckets[mesh_hist_bucket(v)]++;
}

void mesh_hist_merge(struct mesh_hist *dst, const struct mesh_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    for (unsigned i = 0; i < MESH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

int64_t mesh_hist_quantile(const struct mesh_hist *h, double q)
{
    if (h->count == 0)
        return -1;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    /* the rank of the wanted value, 1-based, as "nearest rank" defines it */
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < MESH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t lo = mesh_hist_bucket_low(i), hi = mesh_hist_bucket_high(i);
            uint64_t mid = lo + (hi - lo) / 2;
            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return (int64_t)mid;
        }
    }
    return (int64_t)h->max;
}
