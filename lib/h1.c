/* lib/h1.c — the incremental HTTP/1.x parser of mesh/h1.h.
 *
 * Lines are found with memchr. A head that arrives whole in one input (the
 * common case) is parsed where it lies and only its parts are copied, into
 * the head buffer, compacted to "start-line parts\0" + "name\0value\0"...;
 * a head that spans inputs is first copied whole into the head buffer, then
 * parsed and compacted there, which only ever moves bytes backwards, so no
 * second buffer is needed. Bodies are counted down in place.
 */
#include "mesh/h1.h"

#include <string.h>
#include <strings.h>

#include "mesh/err.h"

enum {
    S_IDLE,      /* between messages: skips blank lines */
    S_SKIP,      /* resynchronising: discards bytes up to a plausible line start */
    S_CAND,      /* resynchronising: collects a candidate start line */
    S_HEAD,      /* collects the head */
    S_HEAD_DONE, /* HEAD returned: framing starts on the next call */
    S_BODY_LEN,
    S_BODY_EOF,
    S_CHUNK_SIZE,
    S_CHUNK_EXT, /* the rest of a chunk-size line */
    S_CHUNK_DATA,
    S_CHUNK_CR, /* the line end after chunk data */
    S_CHUNK_LF,
    S_TRAILER,
    S_END, /* END to return */
    S_PAUSED,
    S_CLOSED,
    S_ERROR,
};

/* RFC 9110 tchar */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int mesh_h1_is_tchar(unsigned char c)
{
    return tchar[c];
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* |s| (|len| bytes, tchars) equals the lower-case literal |lit| (letters and
 * '-'): for tchars, c | 0x20 only folds A-Z onto a-z and '^' onto '~', so this
 * is exact. Eight bytes at a time while they last. */
static int name_is(const char *s, size_t len, const char *lit, size_t lit_len)
{
    if (len != lit_len)
        return 0;
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t a, b;
        memcpy(&a, s + i, 8);
        memcpy(&b, lit + i, 8);
        if ((a | 0x2020202020202020u) != b)
            return 0;
    }
    for (; i < len; i++)
        if (((unsigned char)s[i] | 0x20) != (unsigned char)lit[i])
            return 0;
    return 1;
}
#define NAME_IS(s, len, lit) name_is((s), (len), (lit), sizeof(lit) - 1)

/* Like NAME_IS for any bytes (token lists in values). */
static int token_is(const char *s, size_t len, const char *lit, size_t lit_len)
{
    if (len != lit_len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}
#define TOKEN_IS(s, len, lit) token_is((s), (len), (lit), sizeof(lit) - 1)

/* Steps through a comma-separated list: sets |tok| to the next trimmed,
 * non-empty element. Returns 0 at the end. */
static int next_token(const char **cur, const char *end, const char **tok, size_t *tok_len)
{
    while (*cur < end) {
        const char *c = *cur, *comma = memchr(c, ',', (size_t)(end - c));
        const char *e = comma != NULL ? comma : end;
        *cur = comma != NULL ? comma + 1 : end;
        while (c < e && (*c == ' ' || *c == '\t'))
            c++;
        while (e > c && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > c) {
            *tok = c;
            *tok_len = (size_t)(e - c);
            return 1;
        }
    }
    return 0;
}

void mesh_h1_parser_init(struct mesh_h1_parser *p, enum mesh_h1_type type, size_t max_head,
                         unsigned flags)
{
    memset(p, 0, sizeof(*p));
    mesh_buf_init(&p->head, max_head);
    p->type = (unsigned char)type;
    p->lenient = (flags & MESH_H1_LENIENT) != 0;
    p->no_fields = (flags & MESH_H1_NO_FIELDS) != 0;
    p->state = S_IDLE;
    p->msg.status = -1;
    p->msg.content_length = -1;
}

void mesh_h1_parser_free(struct mesh_h1_parser *p)
{
    mesh_buf_free(&p->head);
}

static void begin_message(struct mesh_h1_parser *p)
{
    mesh_buf_reset(&p->head);
    memset(&p->msg, 0, sizeof(p->msg));
    p->msg.status = -1;
    p->msg.content_length = -1;
    p->line_start = 0;
    p->nlines = 0;
    p->answer = MESH_H1_M_OTHER;
    p->target_off = p->reason_off = p->host_off = p->fields_off = p->trailers_off = 0;
}

/* Points |msg|'s strings into the head buffer (again: it may have moved). */
static void point_msg(struct mesh_h1_parser *p)
{
    struct mesh_h1_msg *m = &p->msg;
    char *d = p->head.data;
    if (p->type == MESH_H1_REQUEST) {
        m->method = d;
        m->target = d + p->target_off;
    } else {
        m->reason = d + p->reason_off;
    }
    m->host = p->host_off != 0 ? d + p->host_off : NULL; /* offset 0 is the start line */
    m->fields = d + p->fields_off;
    if (m->trailers_len > 0)
        m->trailers = d + p->trailers_off;
}

/* Copies input into the head buffer up to and including the next LF; with
 * |one_line| stops there, else goes on until a blank line. Notes where lines
 * end, so they are not searched for twice. Returns 1 when done, 0 when the
 * input ran out first, or MESH_ETOOBIG/MESH_ENOMEM.
 * With |whole| (not NULL), a section that starts and ends in this input is
 * not copied: *|whole| then points to it in the input, and the head buffer
 * only has room for it (so the same caps apply and the same errors come). */
static int collect(struct mesh_h1_parser *p, const uint8_t *buf, size_t len, size_t *pos,
                   int one_line, const uint8_t **whole)
{
    const uint8_t *start = buf + *pos, *end = buf + len, *cur = start;
    size_t base = p->head.len; /* where |start| lands in the buffer */
    int done = 0;
    while (cur < end) {
        const uint8_t *nl = memchr(cur, '\n', (size_t)(end - cur));
        if (nl == NULL) {
            cur = end;
            break;
        }
        size_t nl_off = base + (size_t)(nl - start), line_len = nl_off + 1 - p->line_start;
        int first =
            p->line_start >= base ? start[p->line_start - base] : p->head.data[p->line_start];
        if (p->nlines < sizeof(p->lines) / sizeof(p->lines[0]))
            p->lines[p->nlines++] = (uint32_t)nl_off;
        p->line_start = nl_off + 1;
        cur = nl + 1;
        if (one_line || line_len == 1 || (line_len == 2 && first == '\r')) {
            done = 1;
            break;
        }
    }
    int rv;
    if (whole != NULL && done && base == 0) {
        char *room;
        if ((rv = mesh_buf_append_space(&p->head, (size_t)(cur - start), &room)) != 0)
            return rv;
        p->head.len = 0;
        *whole = start;
    } else if ((rv = mesh_buf_append(&p->head, start, (size_t)(cur - start))) != 0) {
        return rv;
    }
    *pos += (size_t)(cur - start);
    return done;
}

/* The LF ending the line at |pos| of |src| (the |*idx|th of the section). */
static size_t line_end(const struct mesh_h1_parser *p, const char *src, uint32_t *idx, size_t pos,
                       size_t end)
{
    if (*idx < p->nlines)
        return p->lines[(*idx)++];
    const char *nl = memchr(src + pos, '\n', end - pos);
    return (size_t)(nl - src);
}

/* "HTTP/" version: strict wants DIGIT "." DIGIT, lenient any digits and dots
 * after major 0 or 1 ("HTTP/1." as some clients send; never "HTTP/2.0", which is
 * the HTTP/2 preface). Returns 10 * major + minor, -1 for an odd one, -2 when not
 * a version. */
static int parse_version(const char *s, size_t len, int strict)
{
    if (len < 6 || memcmp(s, "HTTP/", 5) != 0 || (s[5] != '0' && s[5] != '1'))
        return -2;
    if (len == 8 && s[6] == '.' && is_digit(s[7]))
        return (s[5] - '0') * 10 + (s[7] - '0');
    if (strict)
        return -2;
    for (size_t i = 5; i < len; i++)
        if (!is_digit(s[i]) && s[i] != '.')
            return -2;
    return -1;
}

static int method_id(const char *m, size_t len)
{
    if (len == 4 && memcmp(m, "HEAD", 4) == 0)
        return MESH_H1_M_HEAD;
    if (len == 7 && memcmp(m, "CONNECT", 7) == 0)
        return MESH_H1_M_CONNECT;
    return MESH_H1_M_OTHER;
}

/* method SP request-target SP HTTP-version in |d|, compacted to
 * "method\0target\0" at the start of the head buffer (which |d| may be). */
static int parse_request_line(struct mesh_h1_parser *p, const char *d, size_t len, int strict,
                              size_t *out, const char **desc)
{
    struct mesh_h1_msg *m = &p->msg;
    char *dst = p->head.data;
    size_t i = 0;
    while (i < len && tchar[(unsigned char)d[i]])
        i++;
    if (i == 0 || i == len || d[i] != ' ') {
        *desc = "invalid method in request line";
        return MESH_EPROTO;
    }
    size_t method_len = i;
    if (!strict)
        while (len > method_len && d[len - 1] == ' ')
            len--;
    size_t ver = len;
    while (ver > method_len && d[ver - 1] != ' ')
        ver--;
    size_t t = method_len + 1, te = ver > 0 ? ver - 1 : 0;
    if (!strict) {
        while (t < te && d[t] == ' ')
            t++;
        while (te > t && d[te - 1] == ' ')
            te--;
    }
    if (ver <= method_len + 1 || te <= t) {
        *desc = "request line without target or version";
        return MESH_EPROTO;
    }
    for (size_t k = t; k < te; k++) {
        unsigned char c = (unsigned char)d[k];
        if ((c < 0x21 || c == 0x7f) && (strict || c != ' ')) {
            *desc = "invalid character in request target";
            return MESH_EPROTO;
        }
    }
    m->version = parse_version(d + ver, len - ver, strict);
    if (m->version == -2) {
        *desc = "invalid HTTP version in request line";
        return MESH_EPROTO;
    }
    m->method_id = method_id(d, method_len);
    m->method_len = method_len;
    m->target_len = te - t;
    if (dst != d)
        memcpy(dst, d, method_len);
    dst[method_len] = '\0';
    memmove(dst + method_len + 1, d + t, te - t);
    p->target_off = method_len + 1;
    dst[p->target_off + m->target_len] = '\0';
    *out = p->target_off + m->target_len + 1;
    return 0;
}

/* HTTP-version SP 3DIGIT [SP reason] in |d|, compacted to "reason\0" at the
 * start of the head buffer (which |d| may be). */
static int parse_status_line(struct mesh_h1_parser *p, const char *d, size_t len, int strict,
                             size_t *out, const char **desc)
{
    struct mesh_h1_msg *m = &p->msg;
    const char *sp = memchr(d, ' ', len);
    size_t i = sp != NULL ? (size_t)(sp - d) : len;
    m->version = parse_version(d, i, strict);
    if (m->version == -2 || i == len) {
        *desc = "invalid status line";
        return MESH_EPROTO;
    }
    i++;
    if (!strict)
        while (i < len && d[i] == ' ')
            i++;
    if (len - i < 3 || d[i] < '1' || d[i] > '9' || !is_digit(d[i + 1]) || !is_digit(d[i + 2]) ||
        (len - i > 3 && d[i + 3] != ' ')) {
        *desc = "invalid status code";
        return MESH_EPROTO;
    }
    m->status = (d[i] - '0') * 100 + (d[i + 1] - '0') * 10 + (d[i + 2] - '0');
    i += 3;
    if (i < len)
        i++;
    memmove(p->head.data, d + i, len - i);
    p->head.data[len - i] = '\0';
    p->reason_off = 0;
    *out = len - i + 1;
    return 0;
}

/* Content-Length: 1*DIGIT; lenient also "N, N" with equal values. */
static int parse_content_length(const char *v, size_t len, int strict, int64_t *cl)
{
    int64_t n = -1;
    size_t i = 0;
    for (;;) {
        int64_t x = 0;
        size_t start = i;
        while (i < len && is_digit(v[i])) {
            if (x > (INT64_MAX - 9) / 10)
                return -1;
            x = x * 10 + (v[i++] - '0');
        }
        if (i == start || (n >= 0 && x != n))
            return -1;
        n = x;
        if (i == len)
            break;
        if (strict || v[i] != ',')
            return -1;
        i++;
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
    }
    *cl = n;
    return 0;
}

/* The fields that change framing or that callers always want (may_use()
 * knows them too, by length and first letter: keep both in step). */
static int use_field(struct mesh_h1_parser *p, size_t name_off, size_t name_len, size_t value_off,
                     size_t value_len, int strict, const char **desc)
{
    struct mesh_h1_msg *m = &p->msg;
    const char *name = p->head.data + name_off, *value = p->head.data + value_off;
    const char *cur = value, *end = value + value_len, *tok;
    size_t tok_len;
    switch (name_len) {
    case 4:
        if (NAME_IS(name, name_len, "host") && p->host_off == 0) {
            p->host_off = value_off;
            m->host_len = value_len;
        }
        break;
    case 6:
        if (NAME_IS(name, name_len, "expect") && TOKEN_IS(value, value_len, "100-continue"))
            m->flags |= MESH_H1_F_EXPECT_CONTINUE;
        break;
    case 7:
        if (NAME_IS(name, name_len, "upgrade") && p->type == MESH_H1_REQUEST)
            m->flags |= MESH_H1_F_UPGRADE;
        break;
    case 10:
        if (NAME_IS(name, name_len, "connection"))
            while (next_token(&cur, end, &tok, &tok_len)) {
                if (TOKEN_IS(tok, tok_len, "close"))
                    m->flags |= MESH_H1_F_CLOSE;
                else if (TOKEN_IS(tok, tok_len, "keep-alive"))
                    m->flags |= MESH_H1_F_KEEP_ALIVE;
            }
        break;
    case 14:
        if (NAME_IS(name, name_len, "content-length")) {
            int64_t cl;
            if (parse_content_length(value, value_len, strict, &cl) != 0 ||
                (m->content_length >= 0 && m->content_length != cl)) {
                *desc = "invalid Content-Length";
                return MESH_EPROTO;
            }
            m->content_length = cl;
        }
        break;
    case 17:
        if (NAME_IS(name, name_len, "transfer-encoding")) {
            /* only the last coding counts: chunked must be the final one */
            int chunked = -1;
            while (next_token(&cur, end, &tok, &tok_len))
                chunked = TOKEN_IS(tok, tok_len, "chunked");
            if (chunked >= 0) {
                m->flags |= MESH_H1_F_TE;
                m->framing = chunked ? MESH_H1_CHUNKED : MESH_H1_UNTIL_CLOSE;
            }
        }
        break;
    }
    return 0;
}

/* Whether a field name starting with |c| may be one that use_field() reads
 * (host, expect, upgrade, connection, content-length, transfer-encoding). */
static int may_use_start(int c)
{
    c |= 0x20;
    return c == 'h' || c == 'e' || c == 'u' || c == 'c' || c == 't';
}

/* The same knowing the name's length (|name| not yet known to be a token). */
static int may_use(const char *name, size_t len)
{
    int c = name[0] | 0x20;
    switch (len) {
    case 4:
        return c == 'h';
    case 6:
        return c == 'e';
    case 7:
        return c == 'u';
    case 10:
    case 14:
        return c == 'c';
    case 17:
        return c == 't';
    default:
        return 0;
    }
}

/* Parses the field lines in [from, end) of |src| (each ends with LF, the last
 * one is blank) and compacts them to "name\0value\0"... from *|out| on in the
 * head buffer, which |src| may be: writing never overtakes reading. With
 * |skip| (lenient, and nobody reads the list), a line that cannot be a field
 * use_field() reads is passed over unchecked: checked, it would be used for
 * nothing or skipped as invalid. */
static int parse_fields(struct mesh_h1_parser *p, const char *src, size_t from, uint32_t idx,
                        size_t end, size_t *out, int strict, int trailer, int skip,
                        const char **desc)
{
    char *d = p->head.data;
    size_t w = *out, pos = from;
    size_t name_off = 0, name_len = 0, value_off = 0;
    int open = 0, rv;
    while (pos < end) {
        size_t e = line_end(p, src, &idx, pos, end), next = e + 1;
        if (e > pos && src[e - 1] == '\r')
            e--;
        if (e == pos)
            break; /* the blank line */
        size_t s = pos;
        pos = next;
        if (src[s] == ' ' || src[s] == '\t') {
            /* obs-fold: joins the previous value with one space */
            while (s < e && (src[s] == ' ' || src[s] == '\t'))
                s++;
            while (e > s && (src[e - 1] == ' ' || src[e - 1] == '\t'))
                e--;
            if (!open || s == e)
                continue;
            if (w > value_off)
                d[w++] = ' ';
            memmove(d + w, src + s, e - s);
            w += e - s;
            continue;
        }
        if (open) {
            d[w] = '\0';
            if (!trailer && (rv = use_field(p, name_off, name_len, value_off, w - value_off, strict,
                                            desc)) != 0)
                return rv;
            w++;
            open = 0;
        }
        if (skip) {
            if (!may_use_start((unsigned char)src[s]))
                continue;
            const char *colon = memchr(src + s, ':', e - s);
            size_t ne = colon != NULL ? (size_t)(colon - src) : s;
            while (ne > s && (src[ne - 1] == ' ' || src[ne - 1] == '\t'))
                ne--;
            if (ne == s || !may_use(src + s, ne - s))
                continue;
        }
        size_t k = s, ne;
        while (k < e && tchar[(unsigned char)src[k]])
            k++;
        const char *colon = k < e && src[k] == ':' ? src + k : NULL;
        if (colon != NULL) {
            ne = k;
        } else {
            /* not "token:": maybe space before the colon */
            colon = memchr(src + s, ':', e - s);
            ne = colon != NULL ? (size_t)(colon - src) : s;
            if (!strict)
                while (ne > s && (src[ne - 1] == ' ' || src[ne - 1] == '\t'))
                    ne--;
        }
        if (colon == NULL || ne == s || k < ne) {
            if (!strict)
                continue;
            *desc = "invalid header field line";
            return MESH_EPROTO;
        }
        size_t vs = (size_t)(colon - src) + 1;
        while (vs < e && (src[vs] == ' ' || src[vs] == '\t'))
            vs++;
        while (e > vs && (src[e - 1] == ' ' || src[e - 1] == '\t'))
            e--;
        if (strict)
            for (size_t c = vs; c < e; c++)
                if (((unsigned char)src[c] < 0x20 && src[c] != '\t') || src[c] == 0x7f) {
                    *desc = "invalid character in header field value";
                    return MESH_EPROTO;
                }
        memmove(d + w, src + s, ne - s);
        name_off = w;
        name_len = ne - s;
        w += name_len;
        d[w++] = '\0';
        memmove(d + w, src + vs, e - vs);
        value_off = w;
        w += e - vs;
        open = 1;
    }
    if (open) {
        d[w] = '\0';
        if (!trailer &&
            (rv = use_field(p, name_off, name_len, value_off, w - value_off, strict, desc)) != 0)
            return rv;
        w++;
    }
    *out = w;
    return 0;
}

static void set_framing(struct mesh_h1_parser *p)
{
    struct mesh_h1_msg *m = &p->msg;
    int te = (m->flags & MESH_H1_F_TE) != 0;
    int chunked = te && m->framing == MESH_H1_CHUNKED;
    int by_length = m->content_length > 0 ? MESH_H1_LENGTH : MESH_H1_NO_BODY;
    if (p->type == MESH_H1_REQUEST) {
        m->framing = chunked ? MESH_H1_CHUNKED : by_length;
        if (m->method_id == MESH_H1_M_CONNECT)
            m->flags |= MESH_H1_F_UPGRADE;
        return;
    }
    int s = m->status;
    m->flags &= ~MESH_H1_F_UPGRADE;
    if (s == 101 || (p->answer == MESH_H1_M_CONNECT && s >= 200 && s < 300)) {
        m->framing = MESH_H1_NO_BODY;
        m->flags |= MESH_H1_F_UPGRADE;
    } else if (s < 200 || s == 204 || s == 304 || p->answer == MESH_H1_M_HEAD) {
        m->framing = MESH_H1_NO_BODY;
    } else if (te) {
        m->framing = chunked ? MESH_H1_CHUNKED : MESH_H1_UNTIL_CLOSE;
    } else if (m->content_length >= 0) {
        m->framing = by_length;
    } else {
        m->framing = MESH_H1_UNTIL_CLOSE;
    }
}

/* Parses the head in |src| (|end| bytes up to the blank line: the head
 * buffer, or the input when the head came whole) into |msg| and the head buffer. */
static int parse_head(struct mesh_h1_parser *p, const char *src, size_t end, int strict,
                      const char **desc)
{
    size_t out = 0;
    if (memchr(src, '\0', end) != NULL) {
        *desc = "NUL byte in header section";
        return MESH_EPROTO;
    }
    uint32_t idx = 0;
    size_t first_end = line_end(p, src, &idx, 0, end), len = first_end;
    if (len > 0 && src[len - 1] == '\r')
        len--;
    int rv = p->type == MESH_H1_REQUEST ? parse_request_line(p, src, len, strict, &out, desc)
                                        : parse_status_line(p, src, len, strict, &out, desc);
    if (rv != 0)
        return rv;
    p->fields_off = out;
    int skip = p->no_fields && !strict;
    if ((rv = parse_fields(p, src, first_end + 1, idx, end, &out, strict, 0, skip, desc)) != 0)
        return rv;
    p->msg.fields_len = p->no_fields ? 0 : out - p->fields_off;
    p->head.len = out;
    struct mesh_h1_msg *m = &p->msg;
    if (p->type == MESH_H1_REQUEST && (m->flags & MESH_H1_F_TE) && m->framing != MESH_H1_CHUNKED) {
        *desc = "request body with a Transfer-Encoding other than chunked";
        return MESH_EPROTO;
    }
    if (strict && (m->flags & MESH_H1_F_TE) && m->content_length >= 0) {
        *desc = "both Transfer-Encoding and Content-Length";
        return MESH_EPROTO;
    }
    set_framing(p);
    point_msg(p);
    return 0;
}

static const char *const known_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                            "CONNECT", "OPTIONS", "TRACE", "PATCH"};

/* A start line good enough to resynchronise on: version exactly HTTP/1.0 or
 * HTTP/1.1; where the line start is not certain, only well-known methods. */
static int plausible_start(const struct mesh_h1_parser *p, const char *d, size_t len, int unsure)
{
    if (len > 0 && d[len - 1] == '\r')
        len--;
    if (p->type == MESH_H1_RESPONSE)
        return len >= 12 && memcmp(d, "HTTP/1.", 7) == 0 && (d[7] == '0' || d[7] == '1') &&
               d[8] == ' ' && d[9] >= '1' && d[9] <= '5' && is_digit(d[10]) && is_digit(d[11]) &&
               (len == 12 || d[12] == ' ');
    size_t i = 0;
    while (i < len && tchar[(unsigned char)d[i]])
        i++;
    if (i == 0 || i == len || d[i] != ' ')
        return 0;
    if (unsure) {
        size_t k;
        for (k = 0; k < sizeof(known_methods) / sizeof(known_methods[0]); k++)
            if (strlen(known_methods[k]) == i && memcmp(known_methods[k], d, i) == 0)
                break;
        if (k == sizeof(known_methods) / sizeof(known_methods[0]))
            return 0;
    }
    size_t t = i + 1;
    if (len < t + 1 + 9)
        return 0;
    size_t v = len - 8;
    if (d[v - 1] != ' ' || memcmp(d + v, "HTTP/1.", 7) != 0 ||
        (d[len - 1] != '0' && d[len - 1] != '1'))
        return 0;
    for (size_t k = t; k < v - 1; k++)
        if ((unsigned char)d[k] < 0x21 || d[k] == 0x7f)
            return 0;
    return v - 1 > t;
}

/* Early rejection of a candidate line still being collected, so that scanning a
 * body does not copy every line of it. */
static int candidate_may_fit(const struct mesh_h1_parser *p)
{
    const char *d = p->head.data;
    size_t len = p->head.len;
    if (p->type == MESH_H1_RESPONSE)
        return memcmp(d, "HTTP/1.", len < 7 ? len : 7) == 0;
    size_t n = len < 24 ? len : 24;
    for (size_t i = 0; i < n; i++)
        if (d[i] == ' ')
            return i > 0;
        else if (!tchar[(unsigned char)d[i]])
            return 0;
    return len < 24;
}

static int fail(struct mesh_h1_parser *p, int err, const char *desc, const char **err_desc)
{
    p->state = S_ERROR;
    p->err = err;
    p->err_desc = desc;
    if (err_desc != NULL)
        *err_desc = desc;
    return err;
}

int mesh_h1_parse(struct mesh_h1_parser *p, const uint8_t *buf, size_t len, size_t *used,
                  const char **err_desc)
{
    size_t pos = 0;
    int ev = MESH_H1_NEED_MORE, rv;
    const char *desc = NULL;
    for (;;) {
        switch (p->state) {
        case S_IDLE:
            while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
                pos++;
            if (pos == len)
                goto out;
            begin_message(p);
            p->state = S_HEAD;
            ev = MESH_H1_BEGIN;
            goto out;

        case S_SKIP: {
            size_t from = pos;
            while (pos < len) {
                if (p->skip_bol) {
                    unsigned char c = buf[pos];
                    if (c == '\n' || c == '\r') {
                        pos++;
                        p->skip_unsure = 0;
                        continue;
                    }
                    if (p->type == MESH_H1_RESPONSE ? c == 'H' : (c >= 'A' && c <= 'Z')) {
                        p->discarded += pos - from;
                        begin_message(p);
                        p->state = S_CAND;
                        ev = MESH_H1_BEGIN;
                        goto out;
                    }
                    p->skip_bol = 0;
                }
                const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
                if (nl == NULL) {
                    pos = len;
                    break;
                }
                pos = (size_t)(nl - buf) + 1;
                p->skip_bol = 1;
                p->skip_unsure = 0;
            }
            p->discarded += pos - from;
            goto out;
        }

        case S_CAND:
            if (pos == len)
                goto out;
            rv = collect(p, buf, len, &pos, 1, NULL);
            if (rv < 0 || !candidate_may_fit(p) ||
                (rv == 1 && !plausible_start(p, p->head.data, p->head.len - 1, p->skip_unsure))) {
                /* not a start line: keep looking from the next line start */
                p->discarded += p->head.len;
                p->state = S_SKIP;
                p->skip_bol = rv == 1;
                p->skip_unsure = 0;
                break;
            }
            if (rv == 0)
                goto out;
            p->state = S_HEAD;
            p->tentative = 1;
            break;

        case S_HEAD: {
            /* a candidate from a resync is in the buffer already */
            const uint8_t *whole = NULL;
            rv = collect(p, buf, len, &pos, 0, p->tentative ? NULL : &whole);
            if (rv == 0)
                goto out;
            if (rv == 1)
                rv = parse_head(p, whole != NULL ? (const char *)whole : p->head.data,
                                whole != NULL ? (size_t)(buf + pos - whole) : p->head.len,
                                p->tentative || !p->lenient, &desc);
            else
                desc = rv == MESH_ETOOBIG ? "header section too large" : "out of memory";
            if (rv != 0) {
                if (!p->tentative || rv == MESH_ENOMEM)
                    return *used = pos, fail(p, rv, desc, err_desc);
                /* the candidate was not a message after all */
                p->discarded += p->head.len;
                p->skip_bol = p->state == S_HEAD && pos > 0 && buf[pos - 1] == '\n';
                p->state = S_SKIP;
                p->skip_unsure = 0;
                break;
            }
            p->tentative = 0;
            p->state = S_HEAD_DONE;
            ev = MESH_H1_HEAD;
            goto out;
        }

        case S_HEAD_DONE:
            switch (p->msg.framing) {
            case MESH_H1_LENGTH:
                p->remaining = (uint64_t)p->msg.content_length;
                p->state = S_BODY_LEN;
                break;
            case MESH_H1_CHUNKED:
                p->chunk_size = 0;
                p->chunk_line = 0;
                p->state = S_CHUNK_SIZE;
                break;
            case MESH_H1_UNTIL_CLOSE:
                p->state = S_BODY_EOF;
                break;
            default:
                p->state = S_END;
                break;
            }
            break;

        case S_BODY_LEN:
        case S_CHUNK_DATA:
            if (pos == len)
                goto out;
            p->body = buf + pos;
            p->body_len = len - pos < p->remaining ? len - pos : (size_t)p->remaining;
            pos += p->body_len;
            p->remaining -= p->body_len;
            if (p->remaining == 0)
                p->state = p->state == S_BODY_LEN ? S_END : S_CHUNK_CR;
            ev = MESH_H1_DATA;
            goto out;

        case S_BODY_EOF:
            if (pos == len)
                goto out;
            p->body = buf + pos;
            p->body_len = len - pos;
            pos = len;
            ev = MESH_H1_DATA;
            goto out;

        case S_CHUNK_SIZE:
            while (pos < len) {
                int v = hex_value(buf[pos]);
                if (v < 0)
                    break;
                if (p->chunk_size >> 59)
                    return *used = pos, fail(p, MESH_EPROTO, "chunk size too large", err_desc);
                p->chunk_size = p->chunk_size << 4 | (uint64_t)v;
                pos++;
                if (++p->chunk_line > MESH_H1_MAX_CHUNK_LINE)
                    return *used = pos, fail(p, MESH_ETOOBIG, "chunk-size line too long", err_desc);
            }
            if (pos == len)
                goto out;
            if (p->chunk_line == 0 || (buf[pos] != ';' && buf[pos] != ' ' && buf[pos] != '\t' &&
                                       buf[pos] != '\r' && buf[pos] != '\n'))
                return *used = pos, fail(p, MESH_EPROTO, "invalid chunk size", err_desc);
            p->state = S_CHUNK_EXT;
            break;

        case S_CHUNK_EXT: {
            const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
            size_t n = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;
            p->chunk_line += n;
            pos += n;
            if (p->chunk_line > MESH_H1_MAX_CHUNK_LINE)
                return *used = pos, fail(p, MESH_ETOOBIG, "chunk-size line too long", err_desc);
            if (nl == NULL)
                goto out;
            pos++;
            if (p->chunk_size == 0) {
                p->state = S_TRAILER;
                p->trailers_off = p->line_start = p->head.len;
                p->nlines = 0;
            } else {
                p->remaining = p->chunk_size;
                p->state = S_CHUNK_DATA;
            }
            break;
        }

        case S_CHUNK_CR:
        case S_CHUNK_LF:
            if (pos == len)
                goto out;
            if (buf[pos] == '\r' && p->state == S_CHUNK_CR) {
                pos++;
                p->state = S_CHUNK_LF;
                break;
            }
            if (buf[pos] != '\n')
                return *used = pos, fail(p, MESH_EPROTO, "no line end after chunk data", err_desc);
            pos++;
            p->chunk_size = 0;
            p->chunk_line = 0;
            p->state = S_CHUNK_SIZE;
            break;

        case S_TRAILER: {
            char *old = p->head.data;
            rv = collect(p, buf, len, &pos, 0, NULL);
            /* the head's strings stay valid while the trailers come in
             * pieces: the buffer may move on any append, done or not */
            if (p->head.data != old)
                point_msg(p);
            if (rv == 0)
                goto out;
            if (rv < 0)
                return *used = pos,
                       fail(p, rv,
                            rv == MESH_ETOOBIG ? "trailer section too large" : "out of memory",
                            err_desc);
            size_t start = p->trailers_off, out = start;
            p->state = S_END;
            if (p->head.len - start <= 2)
                break; /* no trailer fields */
            if (memchr(p->head.data + start, '\0', p->head.len - start) != NULL)
                return *used = pos, fail(p, MESH_EPROTO, "NUL byte in trailer section", err_desc);
            rv = parse_fields(p, p->head.data, start, 0, p->head.len, &out, !p->lenient, 1, 0,
                              &desc);
            if (rv != 0)
                return *used = pos, fail(p, rv, desc, err_desc);
            p->head.len = out;
            p->msg.trailers_len = out - start;
            point_msg(p);
            if (p->msg.trailers_len == 0)
                break;
            ev = MESH_H1_TRAILERS;
            goto out;
        }

        case S_END:
            p->state = (p->msg.flags & MESH_H1_F_UPGRADE) ? S_PAUSED : S_IDLE;
            ev = MESH_H1_END;
            goto out;

        case S_PAUSED:
            ev = MESH_H1_PAUSED;
            goto out;

        case S_CLOSED:
            if (pos == len)
                goto out;
            return *used = pos, fail(p, MESH_EPROTO, "data after the end of the stream", err_desc);

        default: /* S_ERROR */
            *used = 0;
            if (err_desc != NULL)
                *err_desc = p->err_desc;
            return p->err;
        }
    }
out:
    *used = pos;
    return ev;
}

int mesh_h1_parse_eof(struct mesh_h1_parser *p, const char **err_desc)
{
    switch (p->state) {
    case S_ERROR:
        if (err_desc != NULL)
            *err_desc = p->err_desc;
        return p->err;
    case S_IDLE:
    case S_SKIP:
    case S_CAND:
    case S_PAUSED:
    case S_CLOSED:
        p->state = S_CLOSED;
        return MESH_H1_NEED_MORE;
    case S_HEAD:
        if (p->tentative) {
            p->state = S_CLOSED;
            return MESH_H1_NEED_MORE;
        }
        break;
    case S_BODY_EOF:
        p->state = S_CLOSED;
        return MESH_H1_END;
    case S_HEAD_DONE:
        if (p->msg.framing == MESH_H1_NO_BODY || p->msg.framing == MESH_H1_UNTIL_CLOSE) {
            p->state = S_CLOSED;
            return MESH_H1_END;
        }
        break;
    case S_END:
        p->state = S_CLOSED;
        return MESH_H1_END;
    default:
        break;
    }
    p->state = S_CLOSED;
    if (err_desc != NULL)
        *err_desc = "message truncated";
    return MESH_EPROTO;
}

int mesh_h1_parser_answer(struct mesh_h1_parser *p, int method)
{
    if (p->type != MESH_H1_RESPONSE || p->state != S_HEAD_DONE)
        return MESH_EINVAL;
    p->answer = (unsigned char)method;
    set_framing(p);
    return 0;
}

void mesh_h1_parser_resume(struct mesh_h1_parser *p)
{
    if (p->state == S_PAUSED)
        p->state = S_IDLE;
}

void mesh_h1_parser_resync(struct mesh_h1_parser *p, int at_line_start)
{
    begin_message(p);
    p->state = S_SKIP;
    p->tentative = 0;
    p->skip_bol = 1;
    p->skip_unsure = !at_line_start;
    p->err = 0;
    p->err_desc = NULL;
}

int mesh_h1_parser_skip(struct mesh_h1_parser *p, uint64_t nbytes)
{
    switch (p->state) {
    case S_BODY_LEN: /* the last byte must still come, or its time is unknown */
        if (nbytes >= p->remaining)
            return MESH_EDESYNC;
        p->remaining -= nbytes;
        return 0;
    case S_CHUNK_DATA:
        if (nbytes > p->remaining)
            return MESH_EDESYNC;
        p->remaining -= nbytes;
        if (p->remaining == 0)
            p->state = S_CHUNK_CR;
        return 0;
    case S_BODY_EOF:
        return 0;
    default:
        return MESH_EDESYNC;
    }
}

int mesh_h1_field_next(const char *fields, size_t fields_len, size_t *pos, const char **name,
                       const char **value)
{
    if (*pos >= fields_len)
        return 0;
    *name = fields + *pos;
    *value = *name + strlen(*name) + 1;
    *pos = (size_t)(*value - fields) + strlen(*value) + 1;
    return 1;
}

const char *mesh_h1_field_get(const char *fields, size_t fields_len, const char *name)
{
    size_t pos = 0;
    const char *n, *v;
    while (mesh_h1_field_next(fields, fields_len, &pos, &n, &v))
        if (strcasecmp(n, name) == 0)
            return v;
    return NULL;
}
