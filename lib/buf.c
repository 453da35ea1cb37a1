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

/* Makes room for |extra| more bytes plus the terminating NUL. */
static int reserve(struct mesh_buf *buf, size_t extra)
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

char *mesh_json_put_str(char *at, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    *at++ = '"';
    for (size_t i = 0; i < len;) {
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
