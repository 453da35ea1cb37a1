/* mesh/fmt.h — human units and width-aware text columns for the views.
 *
 * Every function writes into a caller's buffer and returns it, so calls can
 * sit inside printf arguments. Widths are display columns (wcwidth), so paths
 * and authorities holding emoji line up.
 */
#ifndef MESH_FMT_H
#define MESH_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* 850µs, 12ms, 1.5ms, 2.35s; "-" when |us| < 0. */
char *mesh_fmt_latency(char *buf, size_t len, int64_t us);
/* 12.3rps; "-" when |rps| < 0. */
char *mesh_fmt_rps(char *buf, size_t len, double rps);
/* 85.00%; "-" when |ratio| < 0. */
char *mesh_fmt_pct(char *buf, size_t len, double ratio);
/* 1.2KiB/s style for byte rates. */
char *mesh_fmt_bytes_rate(char *buf, size_t len, double bytes_per_s);
/* Display width of a UTF-8 string (invalid bytes count 1). */
size_t mesh_str_width(const char *s);
/* Prints |s| left-aligned in |width| columns (cut with "…" if wider),
 * followed by |gap| spaces. */
void mesh_fput_col(FILE *out, const char *s, size_t width, size_t gap);
/* The same, right-aligned (|s| must fit; it is never cut). */
void mesh_fput_rcol(FILE *out, const char *s, size_t width, size_t gap);
/* Parses durations: "250ms", "10s", "1m", "1h", "100us"/"100µs", "1d". Returns 0
 * or MESH_EINVAL. */
int mesh_parse_duration_us(const char *s, uint64_t *us);

#endif
