/* replay/h2.c — the HTTP/2 (h2c prior knowledge, gRPC) decoder of dec.h.
 * We watch both directions of a connection we are not part of; nghttp2's
 * session API is an endpoint (it validates one side and answers it), so it
 * cannot follow both sides passively: frames are read here by a resumable
 * reader that counts DATA and never buffers it. HPACK is nghttp2's inflater,
 * one per direction, fed every header block in order, fragment by fragment,
 * so no block is buffered and the dynamic tables stay in sync. Streams are
 * pooled and hashed by id (at most MESH_DEC_MAX_PENDING). Lost bytes or a
 * protocol error stop one direction; what can then no longer be known is
 * dropped and counted in the stats, never guessed.
 */
#include "dec.h"

#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/evt.h"

#define H2_PREFACE_LEN 24u
#define H2_FRAME_HEADER_LEN 9u
#define H2_DEFAULT_MAX_FRAME 16384u    /* SETTINGS_MAX_FRAME_SIZE: initial value and floor */
#define H2_PROTO_MAX_FRAME 0xffffffu   /* the protocol maximum, 2^24 - 1 */
#define H2_DEFAULT_TABLE 4096u         /* SETTINGS_HEADER_TABLE_SIZE initial value */
#define H2_MAX_TABLE (64u * 1024)      /* largest HPACK dynamic table we mirror */
#define H2_POOL_STREAMS 64u            /* closed stream objects kept for reuse */
#define H2_POOL_STRS 1024u             /* ... with their string buffer, if no larger */
#define H2_MEMO_BLOCK 192u             /* largest header block remembered (struct h2_memo) */
#define H2_MEMO_FIELDS 12u             /* ... fields of interest (and kept headers) in it */
#define H2_MEMO_VALUES 384u            /* ... and their values (a kept header's name too) */

static const char h2_preface[H2_PREFACE_LEN + 1] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum h2_type {
    H2_DATA = 0x0,
    H2_HEADERS = 0x1,
    H2_PRIORITY = 0x2,
    H2_RST_STREAM = 0x3,
    H2_SETTINGS = 0x4,
    H2_PUSH_PROMISE = 0x5,
    H2_PING = 0x6,
    H2_GOAWAY = 0x7,
    H2_WINDOW_UPDATE = 0x8,
    H2_CONTINUATION = 0x9,
};

enum {
    H2_FLAG_END_STREAM = 0x01,
    H2_FLAG_ACK = 0x01,
    H2_FLAG_END_HEADERS = 0x04,
    H2_FLAG_PADDED = 0x08,
    H2_FLAG_PRIORITY = 0x20,
};

enum { H2_SET_HEADER_TABLE_SIZE = 0x1, H2_SET_MAX_FRAME_SIZE = 0x5 };

/* Where a direction's reader is: the parts of a frame after its header are
 * the front (pad length, priority, promised id, fixed fields: collected), the
 * body (counted, inflated or parsed as it arrives) and the padding (skipped). */
enum h2_rstate { RS_PREFACE, RS_HEADER, RS_FRONT, RS_BODY, RS_PAD, RS_OFF };

/* What the header block being inflated tells us about. */
enum h2_role { ROLE_NONE, ROLE_REQUEST, ROLE_RESPONSE };

/* The fields a header block is read for: a request's (kept in struct h2s),
 * then a response's. */
enum { FIELD_METHOD, FIELD_SCHEME, FIELD_AUTHORITY, FIELD_PATH, FIELD_COUNT,
       FIELD_STATUS = FIELD_COUNT, FIELD_GRPC_STATUS,
       FIELD_HEADER /* memo only: a field --tap-header keeps */ };

/* The last header block of a direction that left the HPACK dynamic table as
 * it was (only indexed fields and literals without indexing), with the fields
 * of interest (and those --tap-header keeps) it decoded to, in order; a
 * block whose fields do not fit is not remembered. The same bytes against the same table
 * decode to the same fields: a client sends the same request block again and
 * again (h2load, gRPC stubs), a server the same response block, and reading
 * them from here spares the inflater its per-field work. */
struct h2_memo {
    uint32_t table_gen;            /* the table it was decoded against */
    uint32_t len;                  /* of |block|; 0: nothing remembered */
    uint8_t block[H2_MEMO_BLOCK];
    unsigned nfields, values_len;
    struct {
        uint8_t kind;              /* FIELD_* */
        uint8_t namelen;           /* FIELD_HEADER: its name comes first in |values| */
        uint16_t off, len;         /* the value in |values| */
    } field[H2_MEMO_FIELDS];
    uint8_t values[H2_MEMO_VALUES];
};

/* One exchange (h2s), from its request headers (or push promise) to its end. */
struct h2s {
    uint32_t id;
    unsigned req_seen : 1;   /* its request headers (or push promise) were seen */
    unsigned req_done : 1;   /* the request side ended (END_STREAM seen) */
    unsigned rsp_final : 1;  /* final (non-1xx) response headers seen */
    unsigned has_grpc : 1;   /* a grpc-status was seen */
    unsigned rsp_ended : 1;  /* the response ended before the request was seen */
    int status, grpc_status;
    int64_t end_reset;       /* with rsp_ended: RST_STREAM code or -1 */
    uint64_t ts_us, rsp_ts_us, end_ts_us;
    uint64_t req_bytes, rsp_bytes;
    uint32_t field[FIELD_COUNT]; /* offset + 1 into |strs|, 0 when absent */
    struct mesh_buf strs;        /* the kept values, each NUL-terminated */
    struct mesh_hdrcap hdrs;     /* --tap-header: the request's and final response's */
    struct h2s *hnext;           /* hash chain, or the free list */
    struct h2s *prev, *next;     /* open streams, oldest first */
};

/* One direction of the connection: its frame reader and its HPACK context. */
struct h2_dir {
    enum h2_rstate state;
    unsigned pos;                  /* bytes of the preface or frame header read */
    uint8_t hdr[H2_FRAME_HEADER_LEN];
    /* the frame being read */
    uint32_t len, sid;
    uint8_t type, flags;
    uint32_t front_len, front, body, pad; /* front_len: size; the others: bytes left */
    uint8_t ctl[8];                /* front bytes, or one SETTINGS entry */
    unsigned nctl;
    uint64_t frame_ts;
    uint32_t max_frame;            /* largest frame the receiver allows */
    unsigned framed : 1;           /* a frame boundary was found */
    unsigned lost : 1;             /* bytes lost or a protocol error: nothing more is known */
    /* the header block being read */
    unsigned in_block : 1;
    unsigned skip_block : 1;       /* the tail of a block that began before the capture */
    unsigned blk_end : 1;          /* its HEADERS carried END_STREAM */
    unsigned blk_has_grpc : 1;
    unsigned blk_inflated : 1;     /* the inflater saw the end of the block */
    unsigned blk_fed : 1;          /* part of the block went to the inflater */
    enum h2_role role;
    uint32_t blk_sid;              /* stream of its frames */
    uint32_t blk_target;           /* stream it describes (the promised one for a push) */
    uint64_t blk_ts;
    int blk_status, blk_grpc;
    /* HPACK */
    nghttp2_hd_inflater *inflater;
    unsigned hpack_dead : 1;       /* the inflater failed: no header of this direction is known */
    unsigned hpack_used : 1;
    uint32_t table_set, table_want; /* SETTINGS_HEADER_TABLE_SIZE applied / to apply */
    uint32_t table_gen;            /* changes whenever the dynamic table may have */
    struct h2_memo memo;
};

/* The connection (h2c). */
struct h2c {
    mesh_dec_sink sink;
    void *sink_ctx;
    const struct mesh_hdr_sel *hdrs; /* NULL: no header is kept */
    struct mesh_dec_stats *stats;
    int midstream;
    struct h2_dir dir[2];
    struct h2s **bucket;
    uint32_t nbucket, bucket_bits, nstreams;
    struct h2s *head, *tail;
    struct h2s *pool;
    uint32_t npool;
    /* per initiator (index: id & 1, so 1 = client, 0 = server push): the
     * first and the last stream whose opening we saw */
    uint32_t first_id[2], max_id[2];
    /* per direction that sent one */
    int goaway[2];
    uint32_t goaway_last[2];
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int fail(const char **why, const char *desc)
{
    *why = desc;
    return MESH_EPROTO;
}

/* ---- streams ------------------------------------------------------------ */

static uint32_t bucket_of(const struct h2c *conn, uint32_t id)
{
    return (id * 2654435761u) >> (32 - conn->bucket_bits); /* Knuth's multiplicative hash */
}

static struct h2s *stream_find(const struct h2c *conn, uint32_t id)
{
    struct h2s *s = conn->bucket[bucket_of(conn, id)];
    while (s != NULL && s->id != id)
        s = s->hnext;
    return s;
}

static void stream_rehash(struct h2c *conn)
{
    uint32_t nbucket = conn->nbucket * 2;
    struct h2s **bucket = calloc(nbucket, sizeof(*bucket));
    if (bucket == NULL)
        return; /* longer chains, still correct */
    free(conn->bucket);
    conn->bucket = bucket;
    conn->nbucket = nbucket;
    conn->bucket_bits++;
    for (struct h2s *s = conn->head; s != NULL; s = s->next) {
        uint32_t b = bucket_of(conn, s->id);
        s->hnext = bucket[b];
        bucket[b] = s;
    }
}

/* Returns a new open stream, or NULL when MESH_DEC_MAX_PENDING are open or
 * memory ran out (the caller counts the exchange as dropped). */
static struct h2s *stream_new(struct h2c *conn, uint32_t id)
{
    if (conn->nstreams >= MESH_DEC_MAX_PENDING)
        return NULL;
    struct h2s *s = conn->pool;
    if (s != NULL) {
        conn->pool = s->hnext;
        conn->npool--;
        mesh_buf_reset(&s->strs);
    } else {
        s = malloc(sizeof(*s));
        if (s == NULL)
            return NULL;
        mesh_buf_init(&s->strs, MESH_DEC_MAX_HEADER);
    }
    struct mesh_buf strs = s->strs;
    memset(s, 0, sizeof(*s));
    s->strs = strs;
    s->id = id;
    s->status = -1;
    s->grpc_status = -1;
    if (conn->nstreams >= conn->nbucket && conn->nbucket < MESH_DEC_MAX_PENDING)
        stream_rehash(conn);
    uint32_t b = bucket_of(conn, id);
    s->hnext = conn->bucket[b];
    conn->bucket[b] = s;
    s->prev = conn->tail;
    if (conn->tail != NULL)
        conn->tail->next = s;
    else
        conn->head = s;
    conn->tail = s;
    conn->nstreams++;
    return s;
}

static void stream_free(struct h2c *conn, struct h2s *s)
{
    struct h2s **link = &conn->bucket[bucket_of(conn, s->id)];
    while (*link != s)
        link = &(*link)->hnext;
    *link = s->hnext;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        conn->head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    else
        conn->tail = s->prev;
    conn->nstreams--;
    mesh_hdrcap_free(&s->hdrs);
    if (conn->npool < H2_POOL_STREAMS) {
        if (s->strs.alloc > H2_POOL_STRS)
            mesh_buf_free(&s->strs);
        s->hnext = conn->pool;
        conn->pool = s;
        conn->npool++;
        return;
    }
    mesh_buf_free(&s->strs);
    free(s);
}

/* An exchange seen in part that will not be emitted. */
static void stream_drop(struct h2c *conn, struct h2s *s)
{
    conn->stats->dropped++;
    stream_free(conn, s);
}

static int64_t elapsed(uint64_t from, uint64_t to)
{
    return to > from ? (int64_t)(to - from) : 0;
}

/* Emits |s| and frees it. |ended|: |end_ts| is when its response ended or it
 * was reset; |reset|: RST_STREAM code or -1; |error|: why it is incomplete. */
static void stream_emit(struct h2c *conn, struct h2s *s, int ended, uint64_t end_ts,
                        int64_t reset, const char *error)
{
    struct mesh_evt evt;
    const char *field[FIELD_COUNT];
    for (int i = 0; i < FIELD_COUNT; i++)
        field[i] = s->field[i] ? s->strs.data + s->field[i] - 1 : NULL;
    mesh_evt_init(&evt);
    evt.ts_us = s->ts_us;
    evt.proto = s->has_grpc ? MESH_PROTO_GRPC : MESH_PROTO_H2;
    evt.method = field[FIELD_METHOD];
    evt.scheme = field[FIELD_SCHEME];
    evt.authority = field[FIELD_AUTHORITY];
    evt.path = field[FIELD_PATH];
    evt.status = s->rsp_final ? s->status : -1;
    evt.grpc_status = s->has_grpc ? s->grpc_status : -1;
    evt.reset = reset;
    evt.error = error;
    evt.latency_us = s->rsp_final ? elapsed(s->ts_us, s->rsp_ts_us) : -1;
    evt.duration_us = ended ? elapsed(s->ts_us, end_ts) : -1;
    evt.req_bytes = s->req_bytes;
    evt.rsp_bytes = s->rsp_bytes;
    struct mesh_header hs[MESH_EVT_HEADERS_MAX];
    mesh_hdrcap_apply(&s->hdrs, &evt, hs);
    conn->stats->exchanges++;
    if (!ended || reset >= 0 || error != NULL || !s->rsp_final)
        conn->stats->incomplete++;
    conn->sink(conn->sink_ctx, &evt, s->id);
    stream_free(conn, s);
}

/* Why |s| never completed, when the connection ends under it. */
static const char *open_error(const struct h2c *conn, const struct h2s *s)
{
    int refuser = (s->id & 1) ? MESH_S2C : MESH_C2S; /* who would refuse it by GOAWAY */
    if (!s->rsp_final && conn->goaway[refuser] && s->id > conn->goaway_last[refuser])
        return "refused by GOAWAY";
    return s->rsp_final ? "connection closed" : "no response";
}

/* Ends every open stream: emitted with |error| (NULL: open_error()). */
static void streams_end_all(struct h2c *conn, const char *error)
{
    struct h2s *next;
    for (struct h2s *s = conn->head; s != NULL; s = next) {
        next = s->next;
        if (!s->req_seen)
            stream_drop(conn, s);
        else
            stream_emit(conn, s, 0, 0, -1, error != NULL ? error : open_error(conn, s));
    }
}

/* A response whose request we have not seen: the stream began before the
 * capture, or its request is still to come from the other direction (each
 * direction is in order, but packets may reach us swapped across them;
 * HPACK contexts are per direction, so the response decodes all the same).
 * Returns NULL when |id| is a stream we are done with, or the table is full. */
static struct h2s *waiting_new(struct h2c *conn, uint32_t id)
{
    int initiator = id & 1;
    if (id == 0 || stream_find(conn, id) != NULL ||
        (conn->first_id[initiator] != 0 && id >= conn->first_id[initiator] &&
         id <= conn->max_id[initiator]))
        return NULL;
    return stream_new(conn, id);
}

/* Whether the request of |s|, whose response we saw first, may still come:
 * client streams open in order, so not once a later one has. */
static int request_may_come(const struct h2c *conn, const struct h2s *s)
{
    return (s->id & 1) && s->id > conn->max_id[1] && conn->dir[MESH_C2S].state != RS_OFF;
}

/* The response of |s| ended before its request was seen: it waits for the
 * request if that may still come, else it is counted as dropped. */
static void waiting_end(struct h2c *conn, struct h2s *s, uint64_t ts, int64_t reset)
{
    if (!request_may_come(conn, s)) {
        stream_drop(conn, s);
        return;
    }
    s->rsp_ended = 1;
    s->end_ts_us = ts;
    s->end_reset = reset;
}

/* The first request of the connection is |first|: responses that ended
 * waiting for a request below it waited for nothing. */
static void waiting_prune(struct h2c *conn, uint32_t first)
{
    struct h2s *next;
    for (struct h2s *s = conn->head; s != NULL; s = next) {
        next = s->next;
        if (!s->req_seen && s->rsp_ended && s->id < first)
            stream_drop(conn, s);
    }
}

static void on_end_stream(struct h2c *conn, int dir, uint32_t id, uint64_t ts)
{
    struct h2s *s = stream_find(conn, id);
    if (s == NULL)
        return;
    if (dir == MESH_C2S) {
        if (s->req_seen)
            s->req_done = 1;
    } else if (!s->req_seen) {
        waiting_end(conn, s, ts, -1);
    } else {
        stream_emit(conn, s, 1, ts, -1, s->rsp_final ? NULL : "no response");
    }
}

static void on_rst_stream(struct h2c *conn, uint32_t id, uint32_t code, uint64_t ts)
{
    struct h2s *s = stream_find(conn, id);
    if (s == NULL)
        return;
    if (!s->req_seen)
        waiting_end(conn, s, ts, code);
    else
        stream_emit(conn, s, 1, ts, code, NULL);
}

/* GOAWAY sent by |dir|: streams the other side opened above |last| were
 * never processed, so those without a response are over. */
static void on_goaway(struct h2c *conn, int dir, uint32_t last)
{
    if (!conn->goaway[dir] || last < conn->goaway_last[dir])
        conn->goaway_last[dir] = last;
    conn->goaway[dir] = 1;
    uint32_t initiator = dir == MESH_S2C ? 1 : 0;
    struct h2s *next;
    for (struct h2s *s = conn->head; s != NULL; s = next) {
        next = s->next;
        if (s->req_seen && (s->id & 1) == initiator && s->id > conn->goaway_last[dir] && !s->rsp_final)
            stream_emit(conn, s, 0, 0, -1, "refused by GOAWAY");
    }
}

/* Direction |dir| can no longer be read: keep only the exchanges whose part
 * in that direction is already complete, drop (and count) the others.
 * Responses waiting for their request stay until they end (waiting_end()
 * then drops them), so that each is counted once. */
static void dir_lose(struct h2c *conn, int dir)
{
    struct h2_dir *d = &conn->dir[dir];
    d->state = RS_OFF;
    d->lost = 1;
    d->in_block = 0;
    d->role = ROLE_NONE;
    struct h2s *next;
    for (struct h2s *s = conn->head; s != NULL; s = next) {
        next = s->next;
        if (dir == MESH_S2C || (s->req_seen && !s->req_done))
            stream_drop(conn, s);
    }
}

/* ---- header blocks ------------------------------------------------------- */

/* The inflater of |dir| failed (a reference to a table entry we never saw,
 * or bad HPACK): no header of this direction can be known from now on. */
static void hpack_fail(struct h2c *conn, int dir)
{
    struct h2_dir *d = &conn->dir[dir];
    d->hpack_dead = 1;
    if (d->role != ROLE_NONE) {
        struct h2s *s = stream_find(conn, d->blk_target);
        if (s != NULL)
            stream_drop(conn, s);
    }
    d->role = ROLE_NONE;
}

static void request_begin(struct h2c *conn, int dir, uint32_t id)
{
    struct h2_dir *d = &conn->dir[dir];
    /* trailers, a stream we are done with, or a client pushing: HPACK only */
    if ((id & 1) == 0 || id <= conn->max_id[1])
        return;
    conn->max_id[1] = id;
    if (conn->first_id[1] == 0) {
        conn->first_id[1] = id;
        waiting_prune(conn, id);
    }
    struct h2s *s = stream_find(conn, id); /* its response may have come first */
    if (d->hpack_dead || conn->dir[MESH_S2C].lost) {
        if (s != NULL)
            stream_drop(conn, s);
        else
            conn->stats->dropped++;
        return;
    }
    if (s == NULL && (s = stream_new(conn, id)) == NULL) {
        conn->stats->dropped++;
        return;
    }
    s->req_seen = 1;
    s->ts_us = d->blk_ts;
    d->role = ROLE_REQUEST;
    d->blk_target = id;
}

static void response_begin(struct h2c *conn, int dir, uint32_t id)
{
    struct h2_dir *d = &conn->dir[dir];
    struct h2s *s = stream_find(conn, id);
    if (s == NULL && (s = waiting_new(conn, id)) == NULL)
        return;
    if (d->hpack_dead) {
        stream_drop(conn, s);
        return;
    }
    d->role = ROLE_RESPONSE;
    d->blk_target = id;
}

static int push_begin(struct h2c *conn, int dir, uint32_t promised, const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    if (promised == 0 || (promised & 1))
        return fail(why, "PUSH_PROMISE of an invalid stream id");
    /* not a new stream (a pushed stream's headers come after its promise) */
    if (promised <= conn->max_id[0] || stream_find(conn, promised) != NULL)
        return 0;
    conn->max_id[0] = promised;
    if (conn->first_id[0] == 0)
        conn->first_id[0] = promised;
    struct h2s *s = d->hpack_dead ? NULL : stream_new(conn, promised);
    if (s == NULL) {
        conn->stats->dropped++;
        return 0;
    }
    s->req_seen = 1;
    s->ts_us = d->blk_ts;
    s->req_done = 1;
    d->role = ROLE_REQUEST;
    d->blk_target = promised;
    return 0;
}

static int block_begin(struct h2c *conn, int dir, uint32_t promised, const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    d->in_block = 1;
    d->skip_block = 0;
    d->blk_sid = d->sid;
    d->blk_end = d->type == H2_HEADERS && (d->flags & H2_FLAG_END_STREAM);
    d->blk_ts = d->frame_ts;
    d->blk_status = -1;
    d->blk_grpc = -1;
    d->blk_has_grpc = 0;
    d->blk_inflated = 0;
    d->blk_fed = 0;
    d->blk_target = 0;
    d->role = ROLE_NONE;
    /* Only ever raised: a mirror table larger than the encoder's keeps just
     * entries the encoder no longer references (HPACK indexes newest first),
     * while lowering it before the encoder did would make nghttp2 demand a
     * size update that an encoder already within the new limit never sends. */
    if (!d->hpack_dead && d->table_want > d->table_set) {
        if (nghttp2_hd_inflate_change_table_size(d->inflater, d->table_want) == 0)
            d->table_set = d->table_want;
        d->table_gen++; /* the memo is not to be trusted across this */
    }
    if (d->type == H2_PUSH_PROMISE)
        return push_begin(conn, dir, promised, why);
    if (dir == MESH_C2S)
        request_begin(conn, dir, d->sid);
    else
        response_begin(conn, dir, d->sid);
    return 0;
}

static int parse_status(const uint8_t *v, size_t len)
{
    if (len != 3 || v[0] < '1' || v[0] > '9' || v[1] < '0' || v[1] > '9' || v[2] < '0' || v[2] > '9')
        return -1;
    return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

static int parse_grpc_status(const uint8_t *v, size_t len)
{
    int n = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* FIELD_* of a header field called |name|, or -1 for one we do not read. */
static int field_kind(const uint8_t *name, size_t len)
{
    switch (len) {
    case 5:
        return memcmp(name, ":path", 5) == 0 ? FIELD_PATH : -1;
    case 7:
        if (memcmp(name, ":method", 7) == 0)
            return FIELD_METHOD;
        if (memcmp(name, ":scheme", 7) == 0)
            return FIELD_SCHEME;
        return memcmp(name, ":status", 7) == 0 ? FIELD_STATUS : -1;
    case 10:
        return memcmp(name, ":authority", 10) == 0 ? FIELD_AUTHORITY : -1;
    case 11:
        return memcmp(name, "grpc-status", 11) == 0 ? FIELD_GRPC_STATUS : -1;
    default:
        return -1;
    }
}

static void request_field(struct h2c *conn, struct h2_dir *d, int field, const uint8_t *value,
                          size_t len)
{
    struct h2s *s = stream_find(conn, d->blk_target);
    /* the first one counts; a value with a NUL cannot be shown faithfully */
    if (s == NULL || s->field[field] != 0 || memchr(value, '\0', len) != NULL)
        return;
    size_t off = s->strs.len;
    char *at;
    if (mesh_buf_append_space(&s->strs, len + 1, &at) != 0) {
        stream_drop(conn, s); /* over MESH_DEC_MAX_HEADER, or out of memory */
        d->role = ROLE_NONE;
        return;
    }
    memcpy(at, value, len);
    at[len] = '\0';
    s->field[field] = (uint32_t)off + 1;
}

static void response_field(struct h2_dir *d, int field, const uint8_t *value, size_t len)
{
    if (field == FIELD_STATUS) {
        if (d->blk_status < 0)
            d->blk_status = parse_status(value, len);
    } else if (field == FIELD_GRPC_STATUS) {
        if (!d->blk_has_grpc) {
            d->blk_has_grpc = 1;
            d->blk_grpc = parse_grpc_status(value, len);
        }
    }
}

/* One decoded field of interest (|field|: FIELD_*) of the current block. */
static void block_field(struct h2c *conn, int dir, int field, const uint8_t *value, size_t len)
{
    struct h2_dir *d = &conn->dir[dir];
    if (d->role == ROLE_REQUEST && field < FIELD_COUNT)
        request_field(conn, d, field, value, len);
    else if (d->role == ROLE_RESPONSE)
        response_field(d, field, value, len);
}

/* --tap-header: a field of the current block, kept when it belongs to a
 * request, to a final response head (:status comes first, so it is known by
 * now) or to the trailers (a block after the final head, without :status). */
static void block_header(struct h2c *conn, int dir, const nghttp2_nv *nv)
{
    struct h2_dir *d = &conn->dir[dir];
    if (d->role == ROLE_NONE || (nv->namelen > 0 && nv->name[0] == ':'))
        return;
    struct h2s *s = stream_find(conn, d->blk_target);
    if (s == NULL)
        return;
    unsigned kind = MESH_HDR_REQUEST;
    if (d->role == ROLE_RESPONSE) {
        if (s->rsp_final && d->blk_status < 0)
            kind = MESH_HDR_TRAILER;
        else if (!s->rsp_final && d->blk_status >= 200)
            kind = MESH_HDR_RESPONSE;
        else
            return; /* an interim response's */
    }
    mesh_hdrcap_offer(conn->hdrs, &s->hdrs, kind, (const char *)nv->name, nv->namelen,
                      (const char *)nv->value, nv->valuelen);
}

/* ---- the memo of the last header block (struct h2_memo) ---- */

/* Reads the HPACK integer with an |nbits| prefix at *|pos| into *|value| and
 * steps over it. Returns 0 when it does not end inside |len| bytes (or is
 * absurdly long). */
static int hpack_skip_int(const uint8_t *in, size_t len, size_t *pos, unsigned nbits,
                          uint32_t *value)
{
    uint32_t mask = (1u << nbits) - 1, v = in[*pos] & mask;
    (*pos)++;
    if (v < mask) {
        *value = v;
        return 1;
    }
    for (unsigned shift = 0; shift <= 21; shift += 7) {
        if (*pos >= len)
            return 0;
        uint8_t b = in[(*pos)++];
        v += (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return 1;
        }
    }
    return 0;
}

static int hpack_skip_str(const uint8_t *in, size_t len, size_t *pos)
{
    uint32_t slen;
    if (*pos >= len || !hpack_skip_int(in, len, pos, 7, &slen) || slen > len - *pos)
        return 0;
    *pos += slen;
    return 1;
}

/* Whether the header block |in| (which the inflater decoded without error)
 * left the dynamic table as it was: RFC 7541 section 6, only indexed fields
 * (1xxxxxxx) and literals without indexing (0000xxxx) or never indexed
 * (0001xxxx); no incremental indexing (01xxxxxx), no size update (001xxxxx). */
static int hpack_keeps_table(const uint8_t *in, size_t len)
{
    size_t pos = 0;
    uint32_t v;
    while (pos < len) {
        uint8_t b = in[pos];
        if (b & 0x80) {
            if (!hpack_skip_int(in, len, &pos, 7, &v))
                return 0;
            continue;
        }
        if (b & 0x60)
            return 0;
        if (!hpack_skip_int(in, len, &pos, 4, &v) || (v == 0 && !hpack_skip_str(in, len, &pos)) ||
            !hpack_skip_str(in, len, &pos))
            return 0;
    }
    return 1;
}

/* Notes a field of the block being decoded for the memo (|name| only for
 * FIELD_HEADER); 0 when it does not fit. */
static int memo_add(struct h2_memo *m, int field, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t len)
{
    if (m->nfields == H2_MEMO_FIELDS || namelen > UINT8_MAX ||
        namelen + len > H2_MEMO_VALUES - m->values_len)
        return 0;
    if (namelen > 0) { /* memcpy's source may not be NULL, even for 0 bytes */
        memcpy(m->values + m->values_len, name, namelen);
        m->values_len += (unsigned)namelen;
    }
    m->field[m->nfields].kind = (uint8_t)field;
    m->field[m->nfields].namelen = (uint8_t)namelen;
    m->field[m->nfields].off = (uint16_t)m->values_len;
    m->field[m->nfields].len = (uint16_t)len;
    m->nfields++;
    memcpy(m->values + m->values_len, value, len);
    m->values_len += (unsigned)len;
    return 1;
}

/* A whole block equal to the memo's, against the same table: its fields are
 * the memo's. Returns 1 when they were used. */
static int memo_replay(struct h2c *conn, int dir, const uint8_t *in, size_t len)
{
    struct h2_dir *d = &conn->dir[dir];
    const struct h2_memo *m = &d->memo;
    if (m->len != len || m->table_gen != d->table_gen || len == 0 || memcmp(m->block, in, len) != 0)
        return 0;
    for (unsigned i = 0; i < m->nfields; i++) {
        const uint8_t *value = m->values + m->field[i].off;
        if (m->field[i].kind == FIELD_HEADER) {
            nghttp2_nv nv = {(uint8_t *)value - m->field[i].namelen, (uint8_t *)value,
                             m->field[i].namelen, m->field[i].len, 0};
            block_header(conn, dir, &nv);
        } else {
            block_field(conn, dir, m->field[i].kind, value, m->field[i].len);
        }
    }
    return 1;
}

/* Feeds a fragment of the current block to the inflater of |dir|. */
static void block_feed(struct h2c *conn, int dir, const uint8_t *in, size_t len, int final)
{
    struct h2_dir *d = &conn->dir[dir];
    static const uint8_t empty[1];
    if (d->skip_block || d->hpack_dead)
        return;
    d->hpack_used = 1;
    if (in == NULL)
        in = empty;
    /* the block in one piece may be the memo's; only such a block is remembered */
    int whole = final && !d->blk_fed;
    if (whole && memo_replay(conn, dir, in, len)) {
        d->blk_inflated = 1;
        return;
    }
    const uint8_t *block = in;
    size_t block_len = len;
    struct h2_memo *memo = whole && len <= H2_MEMO_BLOCK ? &d->memo : NULL;
    if (!d->blk_fed) {
        d->blk_fed = 1;
        d->table_gen++; /* until hpack_keeps_table() says otherwise */
        d->memo.len = 0;
    }
    if (memo != NULL)
        memo->nfields = memo->values_len = 0;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t nread = nghttp2_hd_inflate_hd2(d->inflater, &nv, &flags, in, len, final);
        if (nread < 0 || (size_t)nread > len) {
            hpack_fail(conn, dir);
            return;
        }
        in += nread;
        len -= (size_t)nread;
        if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            int field = field_kind(nv.name, nv.namelen);
            if (field >= 0) {
                if (memo != NULL && !memo_add(memo, field, NULL, 0, nv.value, nv.valuelen))
                    memo = NULL;
                block_field(conn, dir, field, nv.value, nv.valuelen);
            }
            if (conn->hdrs != NULL && nv.namelen > 0 && nv.name[0] != ':' &&
                mesh_hdr_sel_wants(conn->hdrs, (const char *)nv.name, nv.namelen)) {
                if (memo != NULL && !memo_add(memo, FIELD_HEADER, nv.name, nv.namelen, nv.value,
                                              nv.valuelen))
                    memo = NULL;
                block_header(conn, dir, &nv);
            }
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(d->inflater);
            d->blk_inflated = 1;
            if (memo != NULL && hpack_keeps_table(block, block_len)) {
                memcpy(memo->block, block, block_len);
                memo->len = (uint32_t)block_len;
                memo->table_gen = d->table_gen;
            }
            return;
        }
        if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && len == 0) {
            if (final) /* nghttp2 promises FINAL once all input is in */
                hpack_fail(conn, dir);
            return;
        }
    }
}

static void response_apply(struct h2_dir *d, struct h2s *s)
{
    if (!s->rsp_final) {
        if (d->blk_status >= 100 && d->blk_status < 200)
            return; /* informational: the final response is still to come */
        s->rsp_final = 1;
        s->status = d->blk_status;
        s->rsp_ts_us = d->blk_ts;
    }
    if (d->blk_has_grpc && !s->has_grpc) {
        s->has_grpc = 1;
        s->grpc_status = d->blk_grpc;
    }
}

static void block_end(struct h2c *conn, int dir, uint64_t ts)
{
    struct h2_dir *d = &conn->dir[dir];
    int skipped = d->skip_block;
    if (!d->blk_inflated)
        block_feed(conn, dir, NULL, 0, 1);
    d->in_block = 0;
    d->skip_block = 0;
    if (skipped)
        return;
    struct h2s *s = d->role != ROLE_NONE ? stream_find(conn, d->blk_target) : NULL;
    if (s != NULL && d->role == ROLE_REQUEST && s->field[FIELD_METHOD] == 0) {
        /* no :method: not a request we can report (midstream, most likely the
         * trailers of a stream that began before the capture) */
        stream_drop(conn, s);
    } else if (s != NULL && d->role == ROLE_REQUEST && s->rsp_ended) {
        /* its response came first and is over: complete now */
        const char *error = s->end_reset < 0 && !s->rsp_final ? "no response" : NULL;
        stream_emit(conn, s, 1, s->end_ts_us, s->end_reset, error);
    } else if (s != NULL && d->role == ROLE_RESPONSE) {
        response_apply(d, s);
    }
    d->role = ROLE_NONE;
    if (d->blk_end)
        on_end_stream(conn, dir, d->blk_sid, ts);
}

/* ---- frames ---------------------------------------------------------------- */

/* Whether the 9 bytes at |h| look like a frame header a conforming peer
 * would send: known type, only defined flags, a fitting length and stream. */
static int frame_plausible(const uint8_t *h)
{
    uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    uint8_t type = h[3], flags = h[4];
    if (h[5] & 0x80)
        return 0;
    uint32_t sid = be32(h + 5);
    switch (type) {
    case H2_DATA:
        return sid != 0 && !(flags & ~(H2_FLAG_END_STREAM | H2_FLAG_PADDED));
    case H2_HEADERS:
        return sid != 0 &&
               !(flags & ~(H2_FLAG_END_STREAM | H2_FLAG_END_HEADERS | H2_FLAG_PADDED | H2_FLAG_PRIORITY));
    case H2_PRIORITY:
        return sid != 0 && len == 5 && flags == 0;
    case H2_RST_STREAM:
        return sid != 0 && len == 4 && flags == 0;
    case H2_SETTINGS:
        return sid == 0 && !(flags & ~H2_FLAG_ACK) && (flags ? len == 0 : len % 6 == 0);
    case H2_PUSH_PROMISE:
        return sid != 0 && len >= 4 && !(flags & ~(H2_FLAG_END_HEADERS | H2_FLAG_PADDED));
    case H2_PING:
        return sid == 0 && len == 8 && !(flags & ~H2_FLAG_ACK);
    case H2_GOAWAY:
        return sid == 0 && len >= 8 && flags == 0;
    case H2_WINDOW_UPDATE:
        return len == 4 && flags == 0;
    case H2_CONTINUATION:
        return sid != 0 && !(flags & ~H2_FLAG_END_HEADERS);
    default:
        return 0;
    }
}

/* The frame whose 9-byte header is |h| begins. */
static int frame_begin(struct h2c *conn, int dir, const uint8_t *h, uint64_t ts, const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    d->len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    d->type = h[3];
    d->flags = h[4];
    d->sid = be32(h + 5) & 0x7fffffffu;
    d->frame_ts = ts;
    d->nctl = 0;
    d->front = d->body = d->pad = 0;
    d->state = RS_FRONT;
    if (conn->midstream && !d->framed && !frame_plausible(h))
        return fail(why, "midstream bytes do not start with a frame");
    d->framed = 1;
    if (d->len > d->max_frame)
        return fail(why, "frame larger than SETTINGS_MAX_FRAME_SIZE");
    if (d->in_block && (d->type != H2_CONTINUATION || d->sid != d->blk_sid))
        return fail(why, "header block not followed by its CONTINUATION");

    uint32_t padded = (d->flags & H2_FLAG_PADDED) ? 1 : 0, front = 0;
    int need_stream = 1;
    switch (d->type) {
    case H2_DATA:
        front = padded;
        break;
    case H2_HEADERS:
        front = padded + ((d->flags & H2_FLAG_PRIORITY) ? 5 : 0);
        break;
    case H2_PRIORITY:
        if (d->len != 5)
            return fail(why, "PRIORITY frame of a wrong size");
        break;
    case H2_RST_STREAM:
        if (d->len != 4)
            return fail(why, "RST_STREAM frame of a wrong size");
        front = 4;
        break;
    case H2_SETTINGS:
        need_stream = 0;
        if ((d->flags & H2_FLAG_ACK) ? d->len != 0 : d->len % 6 != 0)
            return fail(why, "SETTINGS frame of a wrong size");
        break;
    case H2_PUSH_PROMISE:
        if (dir == MESH_C2S)
            return fail(why, "PUSH_PROMISE from the client");
        front = padded + 4;
        break;
    case H2_PING:
        need_stream = 0;
        if (d->len != 8)
            return fail(why, "PING frame of a wrong size");
        break;
    case H2_GOAWAY:
        need_stream = 0;
        if (d->len < 8)
            return fail(why, "GOAWAY frame too short");
        front = 8;
        break;
    case H2_WINDOW_UPDATE:
        need_stream = -1;
        if (d->len != 4)
            return fail(why, "WINDOW_UPDATE frame of a wrong size");
        break;
    case H2_CONTINUATION:
        if (!d->in_block) {
            if (!conn->midstream || d->hpack_used)
                return fail(why, "CONTINUATION without HEADERS");
            /* the tail of a block that began before the capture: skipping it
             * loses only table entries older than any we will learn */
            d->in_block = 1;
            d->skip_block = 1;
            d->blk_sid = d->sid;
            d->blk_end = 0;
            d->role = ROLE_NONE;
        }
        break;
    default: /* extension frames are ignored (RFC 9113, 5.5) */
        need_stream = -1;
        break;
    }
    if (need_stream == 1 && d->sid == 0)
        return fail(why, "stream frame on stream 0");
    if (need_stream == 0 && d->sid != 0)
        return fail(why, "connection frame on a stream");
    if (front > d->len)
        return fail(why, "frame too short for its flags");
    d->front = d->front_len = front;
    return 0;
}

static int setting_apply(struct h2c *conn, int dir, const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    struct h2_dir *peer = &conn->dir[!dir]; /* what this side's setting constrains */
    uint32_t id = (uint32_t)d->ctl[0] << 8 | d->ctl[1];
    uint32_t value = be32(d->ctl + 2);
    if (id == H2_SET_HEADER_TABLE_SIZE) {
        uint32_t want = value < H2_MAX_TABLE ? value : H2_MAX_TABLE;
        if (want > peer->table_want)
            peer->table_want = want;
    } else if (id == H2_SET_MAX_FRAME_SIZE) {
        if (value < H2_DEFAULT_MAX_FRAME || value > H2_PROTO_MAX_FRAME)
            return fail(why, "SETTINGS_MAX_FRAME_SIZE out of range");
        if (value > peer->max_frame)
            peer->max_frame = value;
    }
    return 0;
}

static int front_done(struct h2c *conn, int dir, uint64_t ts, const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    uint32_t padded = 0, pad = 0;
    if ((d->type == H2_DATA || d->type == H2_HEADERS || d->type == H2_PUSH_PROMISE) &&
        (d->flags & H2_FLAG_PADDED)) {
        padded = 1;
        pad = d->ctl[0];
        if (pad > d->len - d->front_len)
            return fail(why, "padding longer than the frame");
    }
    d->pad = pad;
    d->body = d->len - d->front_len - pad;
    d->nctl = 0;
    switch (d->type) {
    case H2_DATA:
        if (dir == MESH_S2C && stream_find(conn, d->sid) == NULL)
            waiting_new(conn, d->sid);
        return 0;
    case H2_HEADERS:
        return block_begin(conn, dir, 0, why);
    case H2_PUSH_PROMISE:
        return block_begin(conn, dir, be32(d->ctl + padded) & 0x7fffffffu, why);
    case H2_RST_STREAM:
        if (dir == MESH_S2C && stream_find(conn, d->sid) == NULL)
            waiting_new(conn, d->sid);
        on_rst_stream(conn, d->sid, be32(d->ctl), ts);
        return 0;
    case H2_GOAWAY:
        on_goaway(conn, dir, be32(d->ctl) & 0x7fffffffu);
        return 0;
    default:
        return 0;
    }
}

static int frame_body(struct h2c *conn, int dir, const uint8_t *buf, size_t len, const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    switch (d->type) {
    case H2_DATA: {
        struct h2s *s = stream_find(conn, d->sid);
        if (s != NULL) {
            if (dir == MESH_C2S)
                s->req_bytes += len;
            else
                s->rsp_bytes += len;
        }
        return 0;
    }
    case H2_HEADERS:
    case H2_PUSH_PROMISE:
    case H2_CONTINUATION:
        /* the block's last bytes go in as final: saves nghttp2 a call */
        block_feed(conn, dir, buf, len, (d->flags & H2_FLAG_END_HEADERS) && len == d->body);
        return 0;
    case H2_SETTINGS:
        while (len > 0) {
            size_t n = 6 - d->nctl < len ? 6 - d->nctl : len;
            memcpy(d->ctl + d->nctl, buf, n);
            d->nctl += (unsigned)n;
            buf += n;
            len -= n;
            if (d->nctl == 6) {
                d->nctl = 0;
                int rv = setting_apply(conn, dir, why);
                if (rv != 0)
                    return rv;
            }
        }
        return 0;
    default:
        return 0;
    }
}

static void frame_end(struct h2c *conn, int dir, uint64_t ts)
{
    struct h2_dir *d = &conn->dir[dir];
    switch (d->type) {
    case H2_DATA:
        if (d->flags & H2_FLAG_END_STREAM)
            on_end_stream(conn, dir, d->sid, ts);
        break;
    case H2_HEADERS:
    case H2_PUSH_PROMISE:
    case H2_CONTINUATION:
        if (d->flags & H2_FLAG_END_HEADERS)
            block_end(conn, dir, ts);
        break;
    default:
        break;
    }
}

/* Moves the reader over the parts of the current frame that are done, and
 * runs what is due at the end of the front and of the frame. */
static int advance(struct h2c *conn, int dir, uint64_t ts, const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    if (d->state == RS_FRONT && d->front == 0) {
        d->state = RS_BODY;
        int rv = front_done(conn, dir, ts, why);
        if (rv != 0)
            return rv;
    }
    if (d->state == RS_BODY && d->body == 0)
        d->state = RS_PAD;
    if (d->state == RS_PAD && d->pad == 0) {
        d->state = RS_HEADER;
        frame_end(conn, dir, ts);
    }
    return 0;
}

static int read_bytes(struct h2c *conn, int dir, const uint8_t *buf, size_t len, uint64_t ts,
                      const char **why)
{
    struct h2_dir *d = &conn->dir[dir];
    while (len > 0 && d->state != RS_OFF) {
        size_t n;
        int rv = 0;
        switch (d->state) {
        case RS_PREFACE:
            n = H2_PREFACE_LEN - d->pos < len ? H2_PREFACE_LEN - d->pos : len;
            if (memcmp(buf, &h2_preface[d->pos], n) != 0) {
                if (!conn->midstream)
                    return fail(why, "no HTTP/2 client preface");
                /* seen mid-way: what matched so far was frame bytes after all */
                unsigned matched = d->pos;
                d->pos = 0;
                d->state = RS_HEADER;
                rv = read_bytes(conn, dir, (const uint8_t *)h2_preface, matched, ts, why);
                if (rv != 0)
                    return rv;
                continue;
            }
            d->pos += (unsigned)n;
            if (d->pos == H2_PREFACE_LEN) {
                d->pos = 0;
                d->state = RS_HEADER;
                d->framed = 1;
            }
            break;
        case RS_HEADER:
            if (d->pos == 0 && len >= H2_FRAME_HEADER_LEN) {
                /* the whole header is here: read it where it is */
                n = H2_FRAME_HEADER_LEN;
                rv = frame_begin(conn, dir, buf, ts, why);
                break;
            }
            n = H2_FRAME_HEADER_LEN - d->pos < len ? H2_FRAME_HEADER_LEN - d->pos : len;
            memcpy(d->hdr + d->pos, buf, n);
            d->pos += (unsigned)n;
            if (d->pos == H2_FRAME_HEADER_LEN) {
                d->pos = 0;
                rv = frame_begin(conn, dir, d->hdr, ts, why);
            }
            break;
        case RS_FRONT:
            n = d->front < len ? d->front : len;
            memcpy(d->ctl + d->nctl, buf, n);
            d->nctl += (unsigned)n;
            d->front -= (uint32_t)n;
            break;
        case RS_BODY:
            n = d->body < len ? d->body : len;
            rv = frame_body(conn, dir, buf, n, why);
            d->body -= (uint32_t)n;
            break;
        case RS_PAD:
            n = d->pad < len ? d->pad : len;
            d->pad -= (uint32_t)n;
            break;
        default:
            return 0;
        }
        buf += n;
        len -= n;
        if (rv == 0 && d->state != RS_PREFACE && d->state != RS_HEADER)
            rv = advance(conn, dir, ts, why);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* ---- dec.h ----------------------------------------------------------------- */

static void h2_free(struct h2c *conn)
{
    for (int dir = 0; dir < 2; dir++)
        if (conn->dir[dir].inflater != NULL)
            nghttp2_hd_inflate_del(conn->dir[dir].inflater);
    while (conn->head != NULL)
        stream_free(conn, conn->head);
    while (conn->pool != NULL) {
        struct h2s *s = conn->pool;
        conn->pool = s->hnext;
        mesh_buf_free(&s->strs);
        free(s);
    }
    free(conn->bucket);
    free(conn);
}

static void *h2_open(mesh_dec_sink sink, void *sink_ctx, int midstream,
                     const struct mesh_hdr_sel *hdrs, struct mesh_dec_stats *stats)
{
    struct h2c *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return NULL;
    conn->sink = sink;
    conn->sink_ctx = sink_ctx;
    conn->stats = stats;
    conn->hdrs = mesh_hdr_sel_on(hdrs) ? hdrs : NULL;
    conn->midstream = midstream != 0;
    conn->nbucket = 16;
    conn->bucket_bits = 4;
    conn->bucket = calloc(conn->nbucket, sizeof(*conn->bucket));
    if (conn->bucket == NULL)
        goto fail;
    for (int dir = 0; dir < 2; dir++) {
        struct h2_dir *d = &conn->dir[dir];
        d->state = dir == MESH_C2S ? RS_PREFACE : RS_HEADER;
        /* seen mid-way, the settings are unknown: allow what the protocol
         * allows, and mirror the largest table we accept */
        d->max_frame = midstream ? H2_PROTO_MAX_FRAME : H2_DEFAULT_MAX_FRAME;
        d->table_set = H2_DEFAULT_TABLE;
        d->table_want = midstream ? H2_MAX_TABLE : H2_DEFAULT_TABLE;
        if (nghttp2_hd_inflate_new(&d->inflater) != 0)
            goto fail;
    }
    return conn;
fail:
    h2_free(conn);
    return NULL;
}

static int h2_data(void *dec, int dir, const uint8_t *buf, size_t len, uint64_t ts_us,
                   const char **err_desc)
{
    struct h2c *conn = dec;
    const char *why = NULL;
    if (dir != MESH_C2S && dir != MESH_S2C) {
        if (err_desc != NULL)
            *err_desc = "no such direction";
        return MESH_EINVAL;
    }
    if (conn->dir[dir].state == RS_OFF)
        return 0;
    int rv = read_bytes(conn, dir, buf, len, ts_us, &why);
    if (rv != 0) {
        conn->stats->proto_errors++;
        dir_lose(conn, dir);
        if (err_desc != NULL)
            *err_desc = why;
    }
    return rv;
}

static void h2_gap(void *dec, int dir, uint64_t nbytes, uint64_t ts_us)
{
    struct h2c *conn = dec;
    if ((dir == MESH_C2S || dir == MESH_S2C) && conn->dir[dir].state != RS_OFF)
        dir_lose(conn, dir);
}

static void h2_fin(void *dec, int dir, uint64_t ts_us, int rst)
{
    struct h2c *conn = dec;
    if (dir != MESH_C2S && dir != MESH_S2C)
        return;
    if (rst) {
        /* a reset connection is over in both directions */
        for (int i = 0; i < 2; i++)
            conn->dir[i].state = RS_OFF;
        streams_end_all(conn, "connection reset");
        return;
    }
    conn->dir[dir].state = RS_OFF;
    /* after the server's FIN no response can come; after the client's, it still can */
    if (dir == MESH_S2C)
        streams_end_all(conn, NULL);
}

static void h2_close(void *dec, uint64_t ts_us)
{
    struct h2c *conn = dec;
    streams_end_all(conn, NULL);
    h2_free(conn);
}

const struct mesh_dec_ops mesh_h2_dec = {
    .name = "h2",
    .open = h2_open,
    .data = h2_data,
    .gap = h2_gap,
    .fin = h2_fin,
    .close = h2_close,
};

int mesh_h2_sniff(const uint8_t *buf, size_t len)
{
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
    if (memcmp(buf, h2_preface, n) != 0)
        return 0;
    return len < H2_PREFACE_LEN ? -1 : 1;
}

int mesh_h2_sniff_frames(const uint8_t *buf, size_t len)
{
    if (len < H2_FRAME_HEADER_LEN || !frame_plausible(buf))
        return 0;
    size_t next = H2_FRAME_HEADER_LEN + ((size_t)buf[0] << 16 | (size_t)buf[1] << 8 | buf[2]);
    if (len < next + H2_FRAME_HEADER_LEN)
        return 0;
    return frame_plausible(buf + next);
}
