#include "mesh/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"

void mesh_buf_init(struct mesh_buf *buf, size_t cap)
{
    buf->data = NULL;
    buf->len = 0;
    buf->alloc = 0;
    buf->cap = cap;
}

void mesh_buf_free(struct mesh_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->alloc = 0;
}

void mesh_buf_reset(struct mesh_buf *buf)
{
    buf->len = 0;
    if (buf->data != NULL)
        buf->data[0] = '\0';
}

/* reserve() when the allocation has to grow, or the cap is hit. */
static int grow(struct mesh_buf *buf, size_t extra)
{
    if (extra > buf->cap || buf->len > buf->cap - extra)
        return MESH_ETOOBIG;
    size_t need = buf->len + extra + 1;
    if (need <= buf->alloc)
        return 0;
    size_t alloc = buf->alloc ? buf->alloc : 64;
    while (alloc < need)
        alloc *= 2;
    if (alloc > buf->cap + 1)
        alloc = buf->cap + 1;
    char *data = realloc(buf->data, alloc);
    if (data == NULL)
        return MESH_ENOMEM;
    buf->data = data;
    buf->alloc = alloc;
    return 0;
}

/* Makes room for |extra| more bytes plus the terminating NUL. Inline for the
 * common case, room under the cap in what is allocated already: every event
 * and header value goes through here. */
static inline int reserve(struct mesh_buf *buf, size_t extra)
{
    if (extra <= buf->cap && buf->len <= buf->cap - extra && buf->len + extra < buf->alloc)
        return 0;
    return grow(buf, extra);
}

int mesh_buf_append(struct mesh_buf *buf, const void *data, size_t len)
{
    int rv = reserve(buf, len);
    if (rv != 0)
        return rv;
    if (len > 0)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

int mesh_buf_append_space(struct mesh_buf *buf, size_t len, char **at)
{
    int rv = reserve(buf, len);
    if (rv != 0)
        return rv;
    *at = buf->data + buf->len;
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

int mesh_buf_appends(struct mesh_buf *buf, const char *str)
{
    return mesh_buf_append(buf, str, strlen(str));
}

int mesh_buf_printf(struct mesh_buf *buf, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return MESH_EINVAL;
    if ((size_t)n < sizeof(small))
        return mesh_buf_append(buf, small, (size_t)n);
    int rv = reserve(buf, (size_t)n);
    if (rv != 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return 0;
}

void mesh_buf_consume(struct mesh_buf *buf, size_t n)
{
    if (n >= buf->len) {
        mesh_buf_reset(buf);
        return;
    }
    memmove(buf->data, buf->data + n, buf->len - n);
    buf->len -= n;
    buf->data[buf->len] = '\0';
}

/* Length of the valid UTF-8 sequence at |s| (at most |len| bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* overlong forms, surrogates and values past U+10FFFF are invalid */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* 1 when none of the 8 bytes in |x| needs escaping: each is printable ASCII
 * (0x20..0x7e) and neither '"' nor '\\'. Bit tricks from "Bit Twiddling
 * Hacks" (haszero, hasless, hasmore); each test is exact for "any byte". */
static inline int json_plain8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');
    uint64_t bad = ((x - ones * 0x20) & ~x) |           /* below 0x20 */
                   ((x + ones) | x) |                   /* 0x7f and above */
                   ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash);
    return (bad & highs) == 0;
}

/* mesh_json_put_str() after the opening quote, byte by byte where needed. */
static char *put_escaped(char *at, const unsigned char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len;) {
        /* runs of plain ASCII between escapes, a word at a time */
        uint64_t word;
        while (len - i >= 8 && (memcpy(&word, s + i, 8), json_plain8(word))) {
            memcpy(at, &word, 8);
            at += 8;
            i += 8;
        }
        if (i == len)
            break;
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *at++ = (char)c;
            i++;
            continue;
        }
        size_t seq = 1;
        switch (c) {
        case '"': *at++ = '\\'; *at++ = '"'; break;
        case '\\': *at++ = '\\'; *at++ = '\\'; break;
        case '\n': *at++ = '\\'; *at++ = 'n'; break;
        case '\r': *at++ = '\\'; *at++ = 'r'; break;
        case '\t': *at++ = '\\'; *at++ = 't'; break;
        default:
            if (c < 0x80) { /* other control characters and DEL */
                memcpy(at, "\\u00", 4);
                at[4] = hex[c >> 4];
                at[5] = hex[c & 15];
                at += 6;
            } else if ((seq = utf8_seq(s + i, len - i)) != 0) {
                memcpy(at, s + i, seq);
                at += seq;
            } else { /* U+FFFD for a byte that is not UTF-8 */
                memcpy(at, "\xef\xbf\xbd", 3);
                at += 3;
                seq = 1;
            }
        }
        i += seq;
    }
    *at++ = '"';
    return at;
}

char *mesh_json_put_str(char *at, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    *at++ = '"';
    /* Addresses, hosts, paths, methods are plain ASCII: the bytes of a string
     * are checked and copied a word at a time, the last word overlapping the
     * one before, and only a string with a byte to escape goes byte by byte.
     * Shorter strings fill one word: their first and last 4 bytes (4 to 7
     * bytes), or their first, middle and last byte (1 to 3) with spaces. */
    uint64_t word;
    if (len >= 8) {
        size_t i = 0;
        while (len - i > 8 && (memcpy(&word, s + i, 8), json_plain8(word))) {
            memcpy(at + i, &word, 8);
            i += 8;
        }
        if (len - i > 8 || (memcpy(&word, s + len - 8, 8), !json_plain8(word)))
            return put_escaped(at, s, len);
        memcpy(at + len - 8, &word, 8);
    } else if (len >= 4) {
        uint32_t head, tail;
        memcpy(&head, s, 4);
        memcpy(&tail, s + len - 4, 4);
        if (!json_plain8((uint64_t)head << 32 | tail))
            return put_escaped(at, s, len);
        memcpy(at, &head, 4);
        memcpy(at + len - 4, &tail, 4);
    } else if (len > 0) {
        word = 0x2020202020000000u | (uint64_t)s[0] | (uint64_t)s[len / 2] << 8 |
               (uint64_t)s[len - 1] << 16;
        if (!json_plain8(word))
            return put_escaped(at, s, len);
        at[0] = (char)s[0];
        at[len / 2] = (char)s[len / 2];
        at[len - 1] = (char)s[len - 1];
    }
    at[len] = '"';
    return at + len + 1;
}

int mesh_buf_json_str(struct mesh_buf *buf, const char *str, size_t len)
{
    char *at;
    size_t start = buf->len;
    int rv = mesh_buf_append_space(buf, MESH_JSON_STR_MAX(len), &at);
    if (rv != 0)
        return rv;
    buf->len = start + (size_t)(mesh_json_put_str(at, str, len) - at);
    buf->data[buf->len] = '\0';
    return 0;
}
