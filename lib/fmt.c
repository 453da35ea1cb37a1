#define _XOPEN_SOURCE 700
#include "mesh/fmt.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "mesh/err.h"

char *mesh_fmt_latency(char *buf, size_t len, int64_t us)
{
    if (us < 0)
        snprintf(buf, len, "-");
    else if (us < 1000)
        snprintf(buf, len, "%lldµs", (long long)us);
    else if (us < 10000)
        snprintf(buf, len, "%.2fms", (double)us / 1e3);
    else if (us < 1000000)
        snprintf(buf, len, "%.0fms", (double)us / 1e3);
    else
        snprintf(buf, len, "%.2fs", (double)us / 1e6);
    return buf;
}

char *mesh_fmt_rps(char *buf, size_t len, double rps)
{
    if (rps < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, rps < 10 ? "%.2frps" : "%.1frps", rps);
    return buf;
}

char *mesh_fmt_pct(char *buf, size_t len, double ratio)
{
    if (ratio < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.2f%%", ratio * 100);
    return buf;
}

char *mesh_fmt_bytes_rate(char *buf, size_t len, double b)
{
    static const char *const units[] = {"B/s", "KiB/s", "MiB/s", "GiB/s"};
    int u = 0;
    while (b >= 1024 && u < 3) {
        b /= 1024;
        u++;
    }
    snprintf(buf, len, u == 0 ? "%.0f%s" : "%.1f%s", b, units[u]);
    return buf;
}

/* Decodes one UTF-8 character; returns its byte length (1 for a bad byte). */
static size_t next_char(const char *s, wchar_t *wc)
{
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    size_t n = mbrtowc(wc, s, strlen(s), &st);
    if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
        *wc = L'?';
        return 1;
    }
    return n;
}

size_t mesh_str_width(const char *s)
{
    size_t width = 0;
    while (*s) {
        wchar_t wc;
        s += next_char(s, &wc);
        int w = wcwidth(wc);
        width += w < 0 ? 1 : (size_t)w;
    }
    return width;
}

void mesh_fput_col(FILE *out, const char *s, size_t width, size_t gap)
{
    size_t used = 0;
    const char *p = s;
    if (mesh_str_width(s) <= width) {
        fputs(s, out);
        used = mesh_str_width(s);
    } else {
        while (*p) {
            wchar_t wc;
            size_t n = next_char(p, &wc);
            int w = wcwidth(wc);
            size_t cw = w < 0 ? 1 : (size_t)w;
            if (used + cw + 1 > width)
                break;
            fwrite(p, 1, n, out);
            used += cw;
            p += n;
        }
        fputs("…", out);
        used++;
    }
    for (size_t i = used; i < width + gap; i++)
        fputc(' ', out);
}

void mesh_fput_rcol(FILE *out, const char *s, size_t width, size_t gap)
{
    for (size_t used = mesh_str_width(s); used < width; used++)
        fputc(' ', out);
    fputs(s, out);
    for (size_t i = 0; i < gap; i++)
        fputc(' ', out);
}

int mesh_parse_duration_us(const char *s, uint64_t *us)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return MESH_EINVAL;
    double mult;
    if (strcmp(end, "us") == 0 || strcmp(end, "µs") == 0)
        mult = 1;
    else if (strcmp(end, "ms") == 0)
        mult = 1e3;
    else if (strcmp(end, "s") == 0)
        mult = 1e6;
    else if (strcmp(end, "m") == 0)
        mult = 60e6;
    else if (strcmp(end, "h") == 0)
        mult = 3600e6;
    else if (strcmp(end, "d") == 0)
        mult = 86400e6;
    else
        return MESH_EINVAL;
    if (v * mult > 1e18)
        return MESH_EINVAL;
    *us = (uint64_t)(v * mult);
    return 0;
}
