/* mesh/hist.h — a latency histogram with at most 1% relative error.
 *
 * Log-linear buckets (HdrHistogram's idea): values below 128 µs are exact;
 * above, each power of two is split into 64 equal buckets, so a bucket's
 * midpoint is within 1/128 (0.8%) of any value in it. Fixed size, no
 * allocation; values up to 2^40 µs (12 days) are kept, larger ones clamp.
 * Histograms merge by adding bucket counts, so per-second rollups combine.
 */
#ifndef MESH_HIST_H
#define MESH_HIST_H

#include <stdint.h>

#define MESH_HIST_SUB_BITS 6
#define MESH_HIST_MAX_EXP 40
#define MESH_HIST_BUCKETS ((MESH_HIST_MAX_EXP - MESH_HIST_SUB_BITS) * (1 << MESH_HIST_SUB_BITS) + (2 << MESH_HIST_SUB_BITS))

struct mesh_hist {
    uint64_t count;
    uint64_t min, max;
    uint64_t buckets[MESH_HIST_BUCKETS];
};

void mesh_hist_init(struct mesh_hist *h);
void mesh_hist_add(struct mesh_hist *h, uint64_t value);
void mesh_hist_merge(struct mesh_hist *dst, const struct mesh_hist *src);
/* The value at quantile |q| (0..1): a bucket midpoint, clamped to [min, max].
 * Returns -1 when the histogram is empty. */
int64_t mesh_hist_quantile(const struct mesh_hist *h, double q);
/* Bucket index of |value| and the range a bucket covers (for stores). */
unsigned mesh_hist_bucket(uint64_t value);
uint64_t mesh_hist_bucket_low(unsigned bucket);
uint64_t mesh_hist_bucket_high(unsigned bucket);

#endif
