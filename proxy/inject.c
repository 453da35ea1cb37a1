/* proxy/inject.c — `mesh inject` (contract in inject.h).
 *
 * Three steps: libyaml's events become a tree of nodes that only remember
 * where they are in the input (byte offsets, columns, flow or block); each
 * workload's pod template is looked up in the tree and the edits it needs
 * (an annotation, an init container, a sidecar) become insertions at byte
 * offsets; the input is copied with the insertions spliced in. New text
 * follows its neighbours: block YAML at the indentation of the keys or
 * dashes beside it, or JSON when it goes into a flow collection (a JSON
 * manifest stays JSON). New items go last: the application stays the pod's
 * first (default) container, and init containers the user wrote run before
 * the iptables rules exist, with their network as they expect it.
 */
#include "inject.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "mesh/err.h"

#define MAX_INPUT (16u << 20)
#define MAX_DEPTH 256
#define ANNOTATION "mesh.io/inject"
#define PROXY_NAME "mesh-proxy"
#define INIT_NAME "mesh-init"

/* ---- the tree: where each node is ------------------------------------------------------- */

enum { Y_SCALAR, Y_MAP, Y_SEQ, Y_ALIAS };

struct ynode {
    int kind;
    int flow;           /* a flow collection: { } or [ ] */
    size_t start, end;  /* bytes; a flow collection's end is after its bracket */
    size_t cend;        /* end of the last byte of content (block: of the last child) */
    size_t col;         /* column of the first byte */
    size_t key_col;     /* a block mapping's key: the column of its "?", if any, else |col| */
    char *val;          /* scalars: the value, NUL-terminated */
    struct ynode **kids; /* maps: key, value, key, value… */
    size_t nkids, cap;
};

struct ydoc {
    struct ynode *root; /* NULL: an empty document */
};

static void ynode_free(struct ynode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        ynode_free(n->kids[i]);
    free(n->kids);
    free(n->val);
    free(n);
}

static int ynode_add(struct ynode *parent, struct ynode *kid)
{
    if (parent->nkids == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct ynode **kids = realloc(parent->kids, cap * sizeof(*kids));
        if (kids == NULL)
            return MESH_ENOMEM;
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->nkids++] = kid;
    return 0;
}

/* libyaml counts characters (code points; CR and LF apart); the splice
 * needs bytes. Identity for ASCII input, a table otherwise. */
struct offsets {
    const char *in;
    size_t len, bom;
    uint32_t *byte_of; /* NULL: ASCII */
    size_t nchars;
};

static int offsets_init(struct offsets *o, const char *in, size_t len)
{
    memset(o, 0, sizeof(*o));
    o->in = in;
    o->len = len;
    if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0)
        o->bom = 3; /* the reader skips it without counting it */
    int ascii = 1;
    for (size_t i = 0; i < len && ascii; i++)
        ascii = (unsigned char)in[i] < 0x80;
    if (ascii)
        return 0;
    o->byte_of = malloc((len + 1) * sizeof(*o->byte_of));
    if (o->byte_of == NULL)
        return MESH_ENOMEM;
    for (size_t i = o->bom; i < len; i++)
        if (((unsigned char)in[i] & 0xC0) != 0x80)
            o->byte_of[o->nchars++] = (uint32_t)i;
    o->byte_of[o->nchars] = (uint32_t)len;
    return 0;
}

static size_t byte_at(const struct offsets *o, size_t index)
{
    if (o->byte_of == NULL)
        return index + o->bom < o->len ? index + o->bom : o->len;
    return o->byte_of[index < o->nchars ? index : o->nchars];
}

struct parse {
    yaml_parser_t parser;
    struct offsets off;
    struct ydoc *docs;
    size_t ndocs;
};

static struct ynode *node_new(struct parse *p, int kind, const yaml_event_t *ev)
{
    struct ynode *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->start = byte_at(&p->off, ev->start_mark.index);
    n->end = byte_at(&p->off, ev->end_mark.index);
    n->cend = n->end;
    n->col = ev->start_mark.column;
    n->key_col = n->col;
    return n;
}

/* Parses everything into p->docs. 0, MESH_EFORMAT with "LINE:COL: why" in
 * |err|, or MESH_ENOMEM. */
static int parse_all(struct parse *p, const char *in, size_t len, char *err, size_t errlen)
{
    struct ynode *stack[MAX_DEPTH];
    int depth = 0, rv = 0, done = 0;
    if (offsets_init(&p->off, in, len) != 0)
        return MESH_ENOMEM;
    if (!yaml_parser_initialize(&p->parser))
        return MESH_ENOMEM; /* it freed what it had; the offsets go in parse_free() */
    yaml_parser_set_input_string(&p->parser, (const unsigned char *)in, len);
    while (!done && rv == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p->parser, &ev)) {
            const yaml_parser_t *yp = &p->parser;
            const yaml_mark_t *m = yp->problem ? &yp->problem_mark : &yp->mark;
            snprintf(err, errlen, "%zu:%zu: %s%s%s", m->line + 1, m->column + 1,
                     yp->problem ? yp->problem : "not YAML", yp->context ? " " : "",
                     yp->context ? yp->context : "");
            rv = MESH_EFORMAT;
            break;
        }
        struct ynode *n = NULL;
        switch (ev.type) {
        case YAML_NO_EVENT: /* a parser in an error state says "OK" and nothing more */
            snprintf(err, errlen, "out of memory");
            rv = MESH_ENOMEM;
            break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT: {
            struct ydoc *docs = realloc(p->docs, (p->ndocs + 1) * sizeof(*docs));
            if (docs == NULL) {
                rv = MESH_ENOMEM;
                break;
            }
            p->docs = docs;
            p->docs[p->ndocs++].root = NULL;
            break;
        }
        case YAML_SCALAR_EVENT:
            n = node_new(p, Y_SCALAR, &ev);
            if (n != NULL && (n->val = strndup((const char *)ev.data.scalar.value,
                                               ev.data.scalar.length)) == NULL) {
                free(n);
                n = NULL;
            }
            if (n == NULL)
                rv = MESH_ENOMEM;
            break;
        case YAML_ALIAS_EVENT:
            if ((n = node_new(p, Y_ALIAS, &ev)) == NULL)
                rv = MESH_ENOMEM;
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT: {
            int map = ev.type == YAML_MAPPING_START_EVENT;
            struct ynode *c = node_new(p, map ? Y_MAP : Y_SEQ, &ev);
            if (c == NULL) {
                rv = MESH_ENOMEM;
                break;
            }
            c->flow = map ? ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                          : ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
            if (depth == MAX_DEPTH) {
                free(c);
                snprintf(err, errlen, "%zu:%zu: nested more than %d deep",
                         ev.start_mark.line + 1, ev.start_mark.column + 1, MAX_DEPTH);
                rv = MESH_EFORMAT;
                break;
            }
            stack[depth++] = c;
            break;
        }
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT: {
            n = stack[--depth];
            n->end = byte_at(&p->off, ev.end_mark.index);
            n->cend = n->flow || n->nkids == 0 ? n->end : n->kids[n->nkids - 1]->cend;
            break;
        }
        default: break;
        }
        yaml_event_delete(&ev);
        if (n == NULL || rv != 0)
            continue;
        /* a finished node goes to its parent, or is the document's root */
        if (depth > 0) {
            struct ynode *parent = stack[depth - 1];
            if (parent->kind == Y_MAP && !parent->flow && parent->nkids % 2 == 0) {
                /* an explicit key "? k": the mapping's column is the '?' */
                size_t at = n->start;
                while (at > 0 && in[at - 1] == ' ')
                    at--;
                if (at > 0 && in[at - 1] == '?' && n->start - at + 1 <= n->col)
                    n->key_col = n->col - (n->start - at + 1);
            }
            if (ynode_add(parent, n) != 0) {
                ynode_free(n);
                rv = MESH_ENOMEM;
            }
        } else if (p->ndocs > 0) {
            p->docs[p->ndocs - 1].root = n;
        } else {
            ynode_free(n);
        }
    }
    while (depth > 0)
        ynode_free(stack[--depth]);
    yaml_parser_delete(&p->parser);
    return rv;
}

static void parse_free(struct parse *p)
{
    for (size_t i = 0; i < p->ndocs; i++)
        ynode_free(p->docs[i].root);
    free(p->docs);
    free(p->off.byte_of);
}

static struct ynode *map_get(const struct ynode *map, const char *key)
{
    if (map == NULL || map->kind != Y_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->nkids; i += 2)
        if (map->kids[i]->kind == Y_SCALAR && strcmp(map->kids[i]->val, key) == 0)
            return map->kids[i + 1];
    return NULL;
}

static const char *map_str(const struct ynode *map, const char *key)
{
    const struct ynode *v = map_get(map, key);
    return v != NULL && v->kind == Y_SCALAR ? v->val : NULL;
}

/* Does sequence |seq| hold a mapping whose name is |name|? */
static int seq_has_named(const struct ynode *seq, const char *name)
{
    for (size_t i = 0; seq != NULL && seq->kind == Y_SEQ && i < seq->nkids; i++) {
        const char *n = map_str(seq->kids[i], "name");
        if (n != NULL && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

static int has_alias(const struct ynode *n)
{
    if (n == NULL)
        return 0;
    if (n->kind == Y_ALIAS)
        return 1;
    for (size_t i = 0; i < n->nkids; i++)
        if (has_alias(n->kids[i]))
            return 1;
    return 0;
}

/* ---- what gets added: a little tree of our own, rendered as block YAML or JSON ----------- */

enum { K_STR, K_NUM, K_MAP, K_SEQ }; /* K_NUM: numbers and booleans, never quoted */

struct knode {
    int kind;
    const char *str;      /* K_STR, K_NUM; map keys too */
    struct knode **items; /* K_MAP: key nodes (K_STR) and values alternate */
    size_t n;
};

#define KPOOL 256
struct kpool {
    struct knode nodes[KPOOL];
    struct knode *ptrs[4 * KPOOL];
    size_t nnodes, nptrs;
    char strs[2048];
    size_t nstrs;
};

static struct knode *knew(struct kpool *kp, int kind, const char *str)
{
    if (kp->nnodes == KPOOL)
        abort(); /* the trees below are fixed in size: a programming error */
    struct knode *k = &kp->nodes[kp->nnodes++];
    memset(k, 0, sizeof(*k));
    k->kind = kind;
    k->str = str;
    return k;
}

static struct knode *kstr(struct kpool *kp, const char *s) { return knew(kp, K_STR, s); }

static struct knode *kbool(struct kpool *kp, int v) { return knew(kp, K_NUM, v ? "true" : "false"); }

static struct knode *knum(struct kpool *kp, unsigned v)
{
    int n = snprintf(kp->strs + kp->nstrs, sizeof(kp->strs) - kp->nstrs, "%u", v);
    if (n < 0 || (size_t)n >= sizeof(kp->strs) - kp->nstrs)
        abort();
    struct knode *k = knew(kp, K_NUM, kp->strs + kp->nstrs);
    kp->nstrs += (size_t)n + 1;
    return k;
}

/* A number as a string (container args are strings). */
static struct knode *kstrnum(struct kpool *kp, unsigned v)
{
    struct knode *k = knum(kp, v);
    k->kind = K_STR;
    return k;
}

/* kmap(kp, n, "key", node, "key", node…), kseq(kp, n, node, node…) */
static struct knode *kcoll(struct kpool *kp, int kind, size_t n, va_list ap)
{
    struct knode *k = knew(kp, kind, NULL);
    size_t nptrs = kind == K_MAP ? 2 * n : n;
    if (kp->nptrs + nptrs > sizeof(kp->ptrs) / sizeof(kp->ptrs[0]))
        abort();
    k->items = &kp->ptrs[kp->nptrs];
    kp->nptrs += nptrs;
    k->n = nptrs;
    for (size_t i = 0; i < nptrs; i++)
        k->items[i] = kind == K_MAP && i % 2 == 0 ? kstr(kp, va_arg(ap, const char *))
                                                  : va_arg(ap, struct knode *);
    return k;
}

static struct knode *kmap(struct kpool *kp, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    struct knode *k = kcoll(kp, K_MAP, n, ap);
    va_end(ap);
    return k;
}

static struct knode *kseq(struct kpool *kp, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    struct knode *k = kcoll(kp, K_SEQ, n, ap);
    va_end(ap);
    return k;
}

/* A string that reads back as itself (not a number, bool, null, or
 * something with YAML syntax in it) can go plain. */
static int plain_ok(const char *s)
{
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "null",
                                           "y", "n", "~"};
    if (*s == 0 || !(isalpha((unsigned char)*s) || *s == '/' || *s == '.' ||
                     (s[0] == '-' && s[1] == '-')))
        return 0;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(s, reserved[i]) == 0)
            return 0;
    for (const char *c = s; *c != 0; c++)
        if (!isalnum((unsigned char)*c) && strchr("._/:-,", *c) == NULL)
            return 0;
    return s[strlen(s) - 1] != ':';
}

/* JSON string escaping, which YAML's double quotes read the same way. */
static void put_quoted(struct mesh_buf *out, const char *s)
{
    mesh_buf_json_str(out, s, strlen(s));
}

static void put_scalar(struct mesh_buf *out, const struct knode *k, int json)
{
    if (k->kind == K_NUM || (!json && plain_ok(k->str)))
        mesh_buf_appends(out, k->str);
    else
        put_quoted(out, k->str);
}

static void put_json(struct mesh_buf *out, const struct knode *k)
{
    if (k->kind == K_STR || k->kind == K_NUM) {
        put_scalar(out, k, 1);
        return;
    }
    mesh_buf_appends(out, k->kind == K_MAP ? "{" : "[");
    for (size_t i = 0; i < k->n; i++) {
        if (i > 0)
            mesh_buf_appends(out, k->kind == K_MAP && i % 2 ? ": " : ", ");
        put_json(out, k->items[i]);
    }
    mesh_buf_appends(out, k->kind == K_MAP ? "}" : "]");
}

/* How the document indents: |step| for a nested mapping, a sequence's
 * dashes |seq_indent| past its key, an item's content |item_off| past its
 * dash ("- name": 2). */
struct style {
    size_t step, seq_indent, item_off;
};

static void put_spaces(struct mesh_buf *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mesh_buf_append(out, " ", 1);
}

static void put_block(struct mesh_buf *out, const struct knode *k, size_t indent,
                      const struct style *st, int first_done);

/* The value of a key at |indent|: on the key's line or below it. */
static void put_block_value(struct mesh_buf *out, const struct knode *v, size_t indent,
                            const struct style *st)
{
    if (v->kind == K_STR || v->kind == K_NUM) {
        mesh_buf_appends(out, " ");
        put_scalar(out, v, 0);
        mesh_buf_appends(out, "\n");
    } else {
        mesh_buf_appends(out, "\n");
        put_block(out, v, v->kind == K_MAP ? indent + st->step : indent + st->seq_indent, st, 0);
    }
}

/* |k| as block YAML, mappings' keys and sequences' dashes at |indent|;
 * |first_done|: the first line's indentation is already written. */
static void put_block(struct mesh_buf *out, const struct knode *k, size_t indent,
                      const struct style *st, int first_done)
{
    if (k->kind == K_MAP) {
        for (size_t i = 0; i + 1 < k->n; i += 2) {
            if (i > 0 || !first_done)
                put_spaces(out, indent);
            put_scalar(out, k->items[i], 0);
            mesh_buf_appends(out, ":");
            put_block_value(out, k->items[i + 1], indent, st);
        }
        return;
    }
    for (size_t i = 0; i < k->n; i++) {
        if (i > 0 || !first_done)
            put_spaces(out, indent);
        mesh_buf_appends(out, "-");
        put_spaces(out, st->item_off - 1);
        const struct knode *item = k->items[i];
        if (item->kind == K_MAP || item->kind == K_SEQ) {
            put_block(out, item, indent + st->item_off, st, 1);
        } else {
            put_scalar(out, item, 0);
            mesh_buf_appends(out, "\n");
        }
    }
}

/* ---- edits ------------------------------------------------------------------------------- */

struct edit {
    size_t pos, order;
    char *text;
};

struct injector {
    const struct mesh_inject_opts *opts;
    const char *in;
    size_t len;
    struct edit *edits;
    size_t nedits;
    struct mesh_buf *notes;
    int failed; /* out of memory */
};

static void add_edit(struct injector *inj, size_t pos, struct mesh_buf *text)
{
    struct edit *edits = realloc(inj->edits, (inj->nedits + 1) * sizeof(*edits));
    if (edits != NULL)
        inj->edits = edits;
    if (edits == NULL || text->data == NULL) {
        inj->failed = 1;
        mesh_buf_free(text);
        return;
    }
    edits[inj->nedits].pos = pos;
    edits[inj->nedits].order = inj->nedits;
    edits[inj->nedits].text = text->data; /* taken over */
    inj->nedits++;
}

/* Where a new line goes after a node ending at |pos|: the start of the next
 * line (after a trailing comment), or |pos| itself when only indentation
 * precedes it on its line (a block scalar ends at the next line's start).
 * *|need_nl| when the input ends without a newline there. */
static size_t line_after(const struct injector *inj, size_t pos, int *need_nl)
{
    *need_nl = 0;
    size_t bol = pos;
    while (bol > 0 && inj->in[bol - 1] == ' ')
        bol--;
    if (bol == 0 || inj->in[bol - 1] == '\n')
        return bol;
    while (pos < inj->len && inj->in[pos] != '\n')
        pos++;
    if (pos == inj->len) {
        *need_nl = 1;
        return pos;
    }
    return pos + 1;
}

/* The column a block collection's items start at, from the first one. */
static size_t first_col(const struct ynode *coll)
{
    if (coll->nkids == 0)
        return coll->col;
    if (coll->kind != Y_MAP)
        return coll->kids[0]->col;
    /* A block mapping's keys share a column, but an explicit key ("? k")
     * starts past its indicator (key_col has the '?'), and an empty one
     * ("? " alone) is marked where libyaml found nothing: the leftmost key
     * with bytes tells. */
    size_t col = SIZE_MAX;
    for (size_t i = 0; i < coll->nkids; i += 2)
        if (coll->kids[i]->end > coll->kids[i]->start && coll->kids[i]->key_col < col)
            col = coll->kids[i]->key_col;
    return col != SIZE_MAX ? col : coll->kids[0]->key_col;
}

/* A flow collection written "[a, b,]": its last entry has a comma after it
 * already, so what is added before the bracket needs none. */
static int trailing_comma(const struct injector *inj, const struct ynode *flow)
{
    size_t at = flow->end > 0 ? flow->end - 1 : 0; /* the closing bracket */
    while (at > 0 && (inj->in[at - 1] == ' ' || inj->in[at - 1] == '\t' ||
                      inj->in[at - 1] == '\n' || inj->in[at - 1] == '\r'))
        at--;
    return at > 0 && inj->in[at - 1] == ',';
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Where the '-' of block sequence |seq|'s first item is: just before the
 * item on its line, or, when the item starts a line, alone on an earlier
 * line (maybe with a comment after it; blank and comment lines between).
 * 1 with *|dash_col| and *|item_off| (the item's column past the dash, at
 * least 2: "- "), or 0 when there is no dash to see. */
static int first_dash(const struct injector *inj, const struct ynode *seq, size_t *dash_col,
                      size_t *item_off)
{
    const char *in = inj->in;
    size_t item_col = first_col(seq), start = seq->kids[0]->start, at = start;
    while (at > 0 && is_blank(in[at - 1]))
        at--;
    if (at > 0 && in[at - 1] == '-') {
        *dash_col = item_col >= start - at + 1 ? item_col - (start - at + 1) : 0;
    } else if (at > 0 && in[at - 1] == '\n') {
        size_t eol = at - 1, dash = SIZE_MAX, bol = 0;
        while (dash == SIZE_MAX) {
            bol = eol;
            while (bol > 0 && in[bol - 1] != '\n')
                bol--;
            size_t p = bol;
            while (p < eol && is_blank(in[p]))
                p++;
            if (p < eol && in[p] == '-') {
                size_t q = p + 1;
                while (q < eol && is_blank(in[q]))
                    q++;
                if (q < eol && (in[q] != '#' || q == p + 1))
                    return 0; /* "-x" or "- x": not a dash alone */
                dash = p;
            } else if (p < eol && in[p] != '#') {
                return 0;
            } else if (bol == 0) {
                return 0; /* blank and comment lines up to the start */
            } else {
                eol = bol - 1;
            }
        }
        *dash_col = dash - bol; /* only blanks before it: bytes are columns */
    } else {
        return 0;
    }
    *item_off = item_col >= *dash_col + 2 ? item_col - *dash_col : 2;
    return 1;
}

/* Appends |item| to sequence |seq|. */
static void seq_append(struct injector *inj, const struct ynode *seq, const struct knode *item,
                       const struct style *st)
{
    struct mesh_buf text;
    mesh_buf_init(&text, 1u << 20);
    if (seq->flow || seq->nkids == 0) {
        /* "[ … ]": before the bracket; an empty block sequence cannot be written */
        if (seq->nkids > 0 && !trailing_comma(inj, seq))
            mesh_buf_appends(&text, ", ");
        put_json(&text, item);
        add_edit(inj, seq->end > 0 ? seq->end - 1 : 0, &text);
        return;
    }
    /* the new item's dash goes under the first item's */
    size_t item_col = first_col(seq), dash_col = item_col >= 2 ? item_col - 2 : 0, item_off = 2;
    first_dash(inj, seq, &dash_col, &item_off);
    struct style item_st = *st;
    item_st.item_off = item_off;
    int need_nl;
    size_t pos = line_after(inj, seq->cend, &need_nl);
    if (need_nl)
        mesh_buf_appends(&text, "\n");
    const struct knode one = {.kind = K_SEQ, .items = (struct knode **)&item, .n = 1};
    put_block(&text, &one, dash_col, &item_st, 0);
    add_edit(inj, pos, &text);
}

/* Adds |key|: |val| to mapping |map| (which lacks |key|). */
static void map_add(struct injector *inj, const struct ynode *map, const char *key,
                    const struct knode *val, const struct style *st)
{
    struct mesh_buf text;
    mesh_buf_init(&text, 1u << 20);
    if (map->flow || map->nkids == 0) {
        if (map->nkids > 0 && !trailing_comma(inj, map))
            mesh_buf_appends(&text, ", ");
        put_quoted(&text, key);
        mesh_buf_appends(&text, ": ");
        put_json(&text, val);
        add_edit(inj, map->end > 0 ? map->end - 1 : 0, &text);
        return;
    }
    int need_nl;
    size_t pos = line_after(inj, map->cend, &need_nl);
    if (need_nl)
        mesh_buf_appends(&text, "\n");
    struct knode *items[2];
    struct knode keynode = {.kind = K_STR, .str = key};
    items[0] = &keynode;
    items[1] = (struct knode *)val;
    const struct knode one = {.kind = K_MAP, .items = items, .n = 2};
    put_block(&text, &one, first_col(map), st, 0);
    add_edit(inj, pos, &text);
}

/* ---- workloads ------------------------------------------------------------------------------ */

static void note(struct injector *inj, const char *kind, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void note(struct injector *inj, const char *kind, const char *name, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    char lower[64];
    size_t i;
    for (i = 0; kind[i] != 0 && i + 1 < sizeof(lower); i++)
        lower[i] = (char)tolower((unsigned char)kind[i]);
    lower[i] = 0;
    mesh_buf_printf(inj->notes, "%s/%s %s\n", lower, name ? name : "(unnamed)", what);
}

static struct knode *init_container(struct kpool *kp, const struct mesh_inject_opts *o)
{
    return kmap(kp, 5, "name", kstr(kp, INIT_NAME), "image", kstr(kp, o->image),
                "command", kseq(kp, 1, kstr(kp, "mesh")),
                "args",
                kseq(kp, 9, kstr(kp, "init"), kstr(kp, "--incoming-proxy-port"), kstr(kp, "4143"),
                     kstr(kp, "--outgoing-proxy-port"), kstr(kp, "4140"), kstr(kp, "--proxy-uid"),
                     kstrnum(kp, o->proxy_uid), kstr(kp, "--inbound-ports-to-ignore"),
                     kstr(kp, "4190,4191")),
                "securityContext",
                kmap(kp, 4, "allowPrivilegeEscalation", kbool(kp, 0),
                     "capabilities",
                     kmap(kp, 2, "add", kseq(kp, 2, kstr(kp, "NET_ADMIN"), kstr(kp, "NET_RAW")),
                          "drop", kseq(kp, 1, kstr(kp, "ALL"))),
                     "runAsNonRoot", kbool(kp, 0), "runAsUser", knum(kp, 0)));
}

static struct knode *field_env(struct kpool *kp, const char *name, const char *path)
{
    return kmap(kp, 2, "name", kstr(kp, name), "valueFrom",
                kmap(kp, 1, "fieldRef", kmap(kp, 1, "fieldPath", kstr(kp, path))));
}

static struct knode *proxy_container(struct kpool *kp, const struct mesh_inject_opts *o,
                                     const char *workload)
{
    struct knode *env = kseq(kp, 5, field_env(kp, "MESH_NAMESPACE", "metadata.namespace"),
                             field_env(kp, "MESH_POD", "metadata.name"),
                             kmap(kp, 2, "name", kstr(kp, "MESH_DEPLOYMENT"), "value",
                                  kstr(kp, workload)),
                             kmap(kp, 2, "name", kstr(kp, "MESH_COLLECTOR"), "value",
                                  kstr(kp, o->collector)),
                             kmap(kp, 2, "name", kstr(kp, "MESH_PROXY_TRANSPARENT"), "value",
                                  kstr(kp, "true")));
    struct knode *ports =
        kseq(kp, 2, kmap(kp, 2, "name", kstr(kp, "mesh-proxy"), "containerPort", knum(kp, 4143)),
             kmap(kp, 2, "name", kstr(kp, "mesh-admin"), "containerPort", knum(kp, 4191)));
    return kmap(
        kp, 9, "name", kstr(kp, PROXY_NAME), "image", kstr(kp, o->image), "command",
        kseq(kp, 1, kstr(kp, "mesh-proxy")), "args",
        kseq(kp, 5, kstr(kp, "--transparent"), kstr(kp, "--inbound"), kstr(kp, "0.0.0.0:4143"),
             kstr(kp, "--outbound"), kstr(kp, "127.0.0.1:4140")),
        "env", env, "ports", ports, "readinessProbe",
        kmap(kp, 1, "httpGet", kmap(kp, 2, "path", kstr(kp, "/ready"), "port", knum(kp, 4191))),
        "livenessProbe",
        kmap(kp, 1, "httpGet", kmap(kp, 2, "path", kstr(kp, "/live"), "port", knum(kp, 4191))),
        "securityContext",
        kmap(kp, 4, "allowPrivilegeEscalation", kbool(kp, 0), "readOnlyRootFilesystem",
             kbool(kp, 1), "runAsNonRoot", kbool(kp, 1), "runAsUser",
             knum(kp, o->proxy_uid)));
}

/* The document's indentation, from the pod spec and its containers. */
static struct style style_of(const struct injector *inj, const struct ynode *parent_map,
                             const struct ynode *podspec, const struct ynode *containers)
{
    struct style st = {2, 0, 2};
    if (parent_map != NULL && !parent_map->flow && !podspec->flow &&
        first_col(podspec) > first_col(parent_map))
        st.step = first_col(podspec) - first_col(parent_map);
    if (containers != NULL && !containers->flow && containers->nkids > 0 && !podspec->flow) {
        size_t dash_col, item_off;
        if (first_dash(inj, containers, &dash_col, &item_off)) {
            st.item_off = item_off;
            if (dash_col >= first_col(podspec))
                st.seq_indent = dash_col - first_col(podspec);
        }
    }
    return st;
}

static void inject_resource(struct injector *inj, const struct ynode *res);

static void inject_pod(struct injector *inj, const char *kind, const char *name,
                       const struct ynode *tmpl_parent, const struct ynode *podmeta,
                       const struct ynode *podspec)
{
    const struct ynode *containers = map_get(podspec, "containers");
    if (podspec == NULL || podspec->kind != Y_MAP || containers == NULL ||
        containers->kind != Y_SEQ || containers->nkids == 0) {
        note(inj, kind, name, "passed through: no pod spec with containers");
        return;
    }
    if (has_alias(podspec) || has_alias(podmeta)) {
        note(inj, kind, name, "passed through: its pod template uses YAML aliases");
        return;
    }
    const char *host_net = map_str(podspec, "hostNetwork");
    if (host_net != NULL && strcmp(host_net, "true") == 0) {
        note(inj, kind, name, "passed through: hostNetwork: true (the iptables rules would "
                              "capture the node's traffic)");
        return;
    }
    const struct ynode *annotations = map_get(podmeta, "annotations");
    const char *said = map_str(annotations, ANNOTATION);
    if (said != NULL && strcmp(said, "disabled") == 0) {
        note(inj, kind, name, "passed through: annotated " ANNOTATION ": disabled");
        return;
    }
    const struct ynode *inits = map_get(podspec, "initContainers");
    int has_proxy = seq_has_named(containers, PROXY_NAME);
    int has_init = seq_has_named(inits, INIT_NAME);
    if (said != NULL && has_proxy && has_init) {
        note(inj, kind, name, "already injected");
        return;
    }
    if ((podmeta != NULL && podmeta->kind != Y_MAP) ||
        (annotations != NULL && annotations->kind != Y_MAP) ||
        (inits != NULL && inits->kind != Y_SEQ)) {
        note(inj, kind, name, "passed through: metadata, annotations or initContainers of an "
                              "unexpected type");
        return;
    }
    struct kpool *kp = calloc(1, sizeof(*kp));
    if (kp == NULL) {
        inj->failed = 1;
        return;
    }
    struct style st = style_of(inj, tmpl_parent, podspec, containers);
    /* at one place, edits land in the order made: the sidecar right after
     * the last container, then whatever follows the containers key */
    if (!has_proxy)
        seq_append(inj, containers, proxy_container(kp, inj->opts, name ? name : ""), &st);
    if (!has_init) {
        if (inits != NULL)
            seq_append(inj, inits, init_container(kp, inj->opts), &st);
        else
            map_add(inj, podspec, "initContainers", kseq(kp, 1, init_container(kp, inj->opts)),
                    &st);
    }
    if (said == NULL) {
        struct knode *enabled = kstr(kp, "enabled");
        if (annotations != NULL) {
            map_add(inj, annotations, ANNOTATION, enabled, &st);
        } else if (podmeta != NULL) {
            map_add(inj, podmeta, "annotations", kmap(kp, 1, ANNOTATION, enabled), &st);
        } else {
            map_add(inj, tmpl_parent, "metadata",
                    kmap(kp, 1, "annotations", kmap(kp, 1, ANNOTATION, enabled)), &st);
        }
    }
    free(kp);
    note(inj, kind, name, "injected");
}

static void inject_resource(struct injector *inj, const struct ynode *res)
{
    if (res == NULL)
        return;
    const char *kind = map_str(res, "kind");
    const struct ynode *meta = map_get(res, "metadata");
    const char *name = map_str(meta, "name");
    if (res->kind != Y_MAP || kind == NULL) {
        mesh_buf_appends(inj->notes, "a document without a kind passed through\n");
        return;
    }
    if (strcmp(kind, "List") == 0 || (strlen(kind) > 4 && strcmp(kind + strlen(kind) - 4,
                                                                 "List") == 0)) {
        const struct ynode *items = map_get(res, "items");
        for (size_t i = 0; items != NULL && items->kind == Y_SEQ && i < items->nkids; i++)
            inject_resource(inj, items->kids[i]);
        return;
    }
    if (strcmp(kind, "Pod") == 0) {
        inject_pod(inj, kind, name, res, meta, map_get(res, "spec"));
        return;
    }
    static const char *const workloads[] = {"Deployment", "StatefulSet", "DaemonSet", "Job",
                                            "ReplicaSet"};
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
        if (strcmp(kind, workloads[i]) != 0)
            continue;
        const struct ynode *tmpl = map_get(map_get(res, "spec"), "template");
        if (tmpl == NULL || tmpl->kind != Y_MAP) {
            note(inj, kind, name, "passed through: no spec.template");
            return;
        }
        inject_pod(inj, kind, name, tmpl, map_get(tmpl, "metadata"), map_get(tmpl, "spec"));
        return;
    }
    note(inj, kind, name, "passed through: kind %s is not injected", kind);
}

static int cmp_edits(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* YAML breaks lines at LF, CRLF, and also at a CR alone, NEL, LS and PS;
 * the splicing here knows LF (and CRLF) only, so the others are refused
 * rather than injected into the wrong place. 0, or MESH_EFORMAT with
 * "LINE:COL: problem" in |err|. */
static int odd_line_breaks(const char *in, size_t len, char *err, size_t errlen)
{
    size_t line = 1, bol = 0;
    for (size_t i = 0; i < len; i++) {
        const unsigned char *u = (const unsigned char *)in + i;
        const char *what = NULL;
        if (u[0] == '\n') {
            line++;
            bol = i + 1;
        } else if (u[0] == '\r' && (i + 1 == len || u[1] != '\n')) {
            what = "a CR without LF";
        } else if (u[0] == 0xC2 && i + 1 < len && u[1] == 0x85) {
            what = "a NEL (U+0085)";
        } else if (u[0] == 0xE2 && i + 2 < len && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9)) {
            what = "a line or paragraph separator (U+2028/U+2029)";
        }
        if (what != NULL) {
            snprintf(err, errlen, "%zu:%zu: %s breaks the line: only LF and CRLF line ends are "
                     "supported", line, i - bol + 1, what);
            return MESH_EFORMAT;
        }
    }
    return 0;
}

int mesh_inject(const struct mesh_inject_opts *opts, const char *in, size_t len,
                struct mesh_buf *out, struct mesh_buf *notes, char *err, size_t errlen)
{
    struct parse p;
    memset(&p, 0, sizeof(p));
    if (odd_line_breaks(in, len, err, errlen) != 0)
        return MESH_EFORMAT;
    int rv = parse_all(&p, in, len, err, errlen);
    if (rv != 0) {
        if (rv == MESH_ENOMEM)
            snprintf(err, errlen, "out of memory");
        parse_free(&p);
        return rv;
    }
    struct injector inj = {.opts = opts, .in = in, .len = len, .notes = notes};
    for (size_t i = 0; i < p.ndocs; i++)
        inject_resource(&inj, p.docs[i].root);
    if (inj.nedits > 1)
        qsort(inj.edits, inj.nedits, sizeof(*inj.edits), cmp_edits);
    /* new lines end as the input's first line does */
    const char *nl = memchr(in, '\n', len);
    int crlf = nl != NULL && nl > in && nl[-1] == '\r';
    size_t at = 0;
    for (size_t i = 0; i < inj.nedits && rv == 0; i++) {
        rv = mesh_buf_append(out, in + at, inj.edits[i].pos - at);
        for (const char *t = inj.edits[i].text; rv == 0 && *t != 0; t++)
            rv = *t == '\n' && crlf ? mesh_buf_append(out, "\r\n", 2) : mesh_buf_append(out, t, 1);
        at = inj.edits[i].pos;
    }
    if (rv == 0)
        rv = mesh_buf_append(out, in + at, len - at);
    if (rv == 0 && out->data == NULL)
        rv = mesh_buf_append(out, "", 0);
    if (rv == 0 && inj.failed)
        rv = MESH_ENOMEM;
    if (rv != 0)
        snprintf(err, errlen, rv == MESH_ETOOBIG ? "the result is too big" : "out of memory");
    for (size_t i = 0; i < inj.nedits; i++)
        free(inj.edits[i].text);
    free(inj.edits);
    parse_free(&p);
    return rv;
}

/* ---- the command ---------------------------------------------------------------------------- */

static const char USAGE[] =
    "Usage: mesh inject FILE|- [--image IMAGE] [--collector ADDR] [--proxy-uid UID]\n"
    "\n"
    "Adds the mesh to the workloads in Kubernetes YAML (any number of documents;\n"
    "Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, Pod, and Lists of them):\n"
    "the " ANNOTATION ": enabled annotation, the " INIT_NAME " init container (`mesh init`,\n"
    "NET_ADMIN and NET_RAW) and the " PROXY_NAME " sidecar (--transparent, ports 4143\n"
    "and 4191, namespace and pod from the downward API, the workload's name). The\n"
    "rest of the text is left as written; injecting twice changes nothing. Other\n"
    "resources pass through; one line per resource on stderr says what happened.\n"
    "\n"
    "Options:\n"
    "      --image IMAGE     the mesh image [ghcr.io/mesh/mesh:0.1.0]\n"
    "      --collector ADDR  where the sidecars send tap events\n"
    "                        [mesh-collector.mesh.svc.cluster.local:8088]\n"
    "      --proxy-uid UID   the sidecar's user, exempt from redirection [2102]\n"
    "  -h, --help\n"
    "\n"
    "Examples:\n"
    "  mesh inject emojivoto.yml | kubectl apply -f -\n"
    "  kubectl get deploy -n emojivoto -o yaml | mesh inject - | kubectl apply -f -\n";

static int usage_error(const char *what, const char *why)
{
    fprintf(stderr, "mesh inject: %s: %s (see mesh inject --help)\n", what, why);
    return MESH_EXIT_USAGE;
}

int mesh_inject_main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"image", required_argument, NULL, 'i'},
        {"collector", required_argument, NULL, 'c'},
        {"proxy-uid", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mesh_inject_opts opts = {
        .image = "ghcr.io/mesh/mesh:0.1.0",
        .collector = "mesh-collector.mesh.svc.cluster.local:8088",
        .proxy_uid = 2102,
    };
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        char *end;
        unsigned long v;
        switch (opt) {
        case 'h': fputs(USAGE, stdout); return MESH_EXIT_OK;
        case 'i': opts.image = optarg; break;
        case 'c': opts.collector = optarg; break;
        case 'u':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != 0 || end == optarg || optarg[0] == '-' || v > 4294967294ul)
                return usage_error(optarg, "--proxy-uid: expected a number");
            opts.proxy_uid = (unsigned)v;
            break;
        default:
            return usage_error(argv[optind - 1], optopt ? "needs a value" : "unknown option");
        }
    }
    if (optind >= argc)
        return usage_error("FILE", "no input given (a file, or - for stdin)");
    if (optind + 1 < argc)
        return usage_error(argv[optind + 1], "unexpected argument");
    if (*opts.image == 0 || *opts.collector == 0)
        return usage_error("--image/--collector", "must not be empty");
    const char *path = argv[optind];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL)
        return usage_error(path, strerror(errno));
    struct mesh_buf in, out, notes;
    mesh_buf_init(&in, MAX_INPUT);
    mesh_buf_init(&out, 4 * MAX_INPUT);
    mesh_buf_init(&notes, 1u << 20);
    char chunk[65536], err[512];
    size_t n;
    int rv = 0;
    while (rv == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rv = mesh_buf_append(&in, chunk, n);
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    int status = MESH_EXIT_OK;
    if (rv != 0 || failed) {
        status = usage_error(path, rv != 0 ? "over 16 MiB" : "cannot read it");
        goto out;
    }
    if (memchr(in.data ? in.data : "", 0, in.len) != NULL) {
        status = usage_error(path, "holds a NUL byte: not YAML");
        goto out;
    }
    rv = mesh_inject(&opts, in.data ? in.data : "", in.len, &out, &notes, err, sizeof(err));
    if (rv == MESH_EFORMAT) {
        fprintf(stderr, "mesh inject: %s:%s\n", path, err);
        status = MESH_EXIT_USAGE;
        goto out;
    }
    if (rv != 0) {
        fprintf(stderr, "mesh inject: %s: %s\n", path, err);
        status = MESH_EXIT_RUNTIME;
        goto out;
    }
    fwrite(out.data, 1, out.len, stdout);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "mesh inject: stdout: %s\n", strerror(errno));
        status = MESH_EXIT_RUNTIME;
    }
    fputs(notes.data ? notes.data : "", stderr);
out:
    mesh_buf_free(&in);
    mesh_buf_free(&out);
    mesh_buf_free(&notes);
    return status;
}
