/* replay/h1.c — the passive HTTP/1.x decoder (replay/dec.h) on mesh/h1.h.
 *
 * Each direction has its own lib parser. A request head opens an exchange in
 * a FIFO ring (pipelining); the next final response pairs with the oldest
 * exchange that has none, provided that request's first byte was seen before
 * the response's first byte. An exchange is emitted once its request and its
 * response have both ended, or when the connection makes an end impossible
 * (FIN, RST, gap, protocol error, close). Exchanges are addressed by stream
 * number (1, 2, ...) so the ring may be reallocated under them.
 */
#include <stdlib.h>
#include <string.h>

#include "dec.h"
#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/h1.h"
#include "mesh/hdrcap.h"

#define H1_RING_MIN 4u

struct h1x {                   /* one request/response exchange */
    struct mesh_buf strs;      /* "method\0path\0authority\0", reused slot to slot */
    struct mesh_hdrcap hdrs;   /* --tap-header: the request's, the final response's, its trailers */
    size_t path_off, auth_off; /* auth_off 0: no Host */
    uint64_t ts_us, seq;       /* the request's first byte: time and data() call */
    uint64_t bytes[2];         /* body bytes: request (MESH_C2S), response (MESH_S2C) */
    int64_t latency_us, duration_us;
    int status; /* final response status, -1 until its head */
    int method_id;
    unsigned req_done : 1, req_cut : 1, rsp_done : 1, emitted : 1;
    unsigned maybe_answered : 1; /* server bytes were discarded after it began */
};

struct h1side {
    struct mesh_h1_parser parser;
    int err; /* sticky MESH_E* once this direction failed */
    const char *err_desc;
    int eof;
    uint64_t begin_ts, begin_seq; /* first byte of the message being read */
    uint64_t last_ts;             /* time of this direction's latest bytes */
    uint64_t discarded;           /* parser.discarded already accounted for */
    uint32_t cur;                 /* stream whose body is being read, 0 if none */
};

struct h1dec {
    mesh_dec_sink sink;
    void *sink_ctx;
    const struct mesh_hdr_sel *hdrs; /* NULL: no header is kept */
    struct mesh_dec_stats *stats;
    struct h1side side[2];
    struct h1x *ring;
    uint32_t ring_cap;        /* a power of two */
    uint32_t first;           /* oldest exchange still held */
    uint32_t nreq;            /* last stream opened */
    uint32_t rsp_next;        /* next exchange awaiting its final response */
    uint32_t upgrade;         /* upgrade request whose answer is awaited, or 0 */
    int client_paused;        /* the client parser stopped after that request */
    uint64_t seq;             /* data() calls so far */
    struct mesh_buf stash;    /* client bytes received while paused: records */
    uint64_t stash_lost;      /* client bytes that did not fit or were lost while paused */
    int fin_pending;          /* client FIN received while paused */
    int rsp_gone;             /* no response can come any more */
    const char *rsp_gone_why; /* NULL (FIN) or why the server side broke */
    int done;                 /* switched protocols or reset: nothing left to decode */
};

struct stash_rec {
    uint64_t ts_us, seq;
    size_t len;
};

static int feed(struct h1dec *dec, int dir, const uint8_t *buf, size_t len, uint64_t ts_us,
                uint64_t seq);
static void side_lost(struct h1dec *dec, int dir, uint64_t nbytes);
static void h1_fin(void *ctx, int dir, uint64_t ts_us, int rst);

static struct h1x *slot(struct h1dec *dec, uint32_t stream)
{
    return &dec->ring[(stream - 1) & (dec->ring_cap - 1)];
}

static uint32_t pending(const struct h1dec *dec)
{
    return dec->nreq + 1 - dec->first;
}

/* --- emission ------------------------------------------------------------------------------ */

static void emit(struct h1dec *dec, struct h1x *x, const char *why, uint32_t stream)
{
    struct mesh_evt evt;
    mesh_evt_init(&evt);
    int complete = x->req_done && !x->req_cut && x->rsp_done;
    evt.proto = MESH_PROTO_HTTP1;
    evt.method = x->strs.data;
    evt.scheme = "http";
    evt.path = x->strs.data + x->path_off;
    evt.authority = x->auth_off != 0 ? x->strs.data + x->auth_off : NULL;
    evt.status = x->status;
    evt.ts_us = x->ts_us;
    evt.latency_us = x->latency_us;
    evt.duration_us = x->rsp_done ? x->duration_us : -1;
    evt.req_bytes = x->bytes[MESH_C2S];
    evt.rsp_bytes = x->bytes[MESH_S2C];
    struct mesh_header hs[MESH_EVT_HEADERS_MAX];
    mesh_hdrcap_apply(&x->hdrs, &evt, hs);
    if (!complete)
        evt.error = why != NULL     ? why
                    : x->status < 0 ? "no response"
                    : !x->rsp_done  ? "response incomplete"
                                    : "request incomplete";
    x->emitted = 1;
    dec->stats->exchanges++;
    if (!x->rsp_done)
        dec->stats->incomplete++;
    dec->sink(dec->sink_ctx, &evt, stream);
}

/* Emits, oldest first, the exchanges that are over, and forgets them. */
static void try_emit(struct h1dec *dec)
{
    while (dec->first <= dec->nreq) {
        struct h1x *x = slot(dec, dec->first);
        if (!x->emitted) {
            if (!x->req_done || !(x->rsp_done || dec->rsp_gone))
                break;
            emit(dec, x, x->rsp_done ? NULL : dec->rsp_gone_why, dec->first);
        } else if (!x->rsp_done && !dec->rsp_gone) {
            break; /* emitted early, still waits for its response to keep the FIFO in step */
        }
        dec->first++;
        if (dec->rsp_next < dec->first)
            dec->rsp_next = dec->first;
    }
}

/* Emits every exchange not yet emitted, with |why| as the error of those that
 * are not complete (NULL: say what is missing). They stay in the ring. */
static void emit_all(struct h1dec *dec, const char *why)
{
    for (uint32_t s = dec->first; s <= dec->nreq; s++) {
        struct h1x *x = slot(dec, s);
        if (!x->emitted)
            emit(dec, x, why, s);
    }
}

static void drop_all(struct h1dec *dec)
{
    dec->first = dec->rsp_next = dec->nreq + 1;
    dec->side[MESH_C2S].cur = dec->side[MESH_S2C].cur = 0;
    dec->upgrade = 0; /* a paused client resumes at its next bytes: nobody can answer */
}

/* --- exchanges ------------------------------------------------------------------------------ */

static int grow_ring(struct h1dec *dec)
{
    uint32_t cap = dec->ring_cap ? dec->ring_cap * 2 : H1_RING_MIN;
    struct h1x *ring = calloc(cap, sizeof(*ring));
    if (ring == NULL)
        return MESH_ENOMEM;
    for (uint32_t i = 0; i < cap; i++)
        mesh_buf_init(&ring[i].strs, MESH_DEC_MAX_HEADER);
    for (uint32_t i = 0; i < dec->ring_cap; i++) {
        /* held exchanges move to their new place, the others' memory goes */
        uint32_t s = dec->first + ((i - (dec->first - 1)) & (dec->ring_cap - 1));
        struct h1x *old = slot(dec, s);
        if (s <= dec->nreq) {
            mesh_buf_free(&ring[(s - 1) & (cap - 1)].strs);
            ring[(s - 1) & (cap - 1)] = *old;
        } else {
            mesh_buf_free(&old->strs);
            mesh_hdrcap_free(&old->hdrs);
        }
    }
    free(dec->ring);
    dec->ring = ring;
    dec->ring_cap = cap;
    return 0;
}

/* --tap-header: the fields of a request head, a final response head or the
 * response's trailers (|kind|, MESH_HDR_*). */
static void offer_fields(const struct h1dec *dec, struct h1x *x, const char *fields,
                         size_t fields_len, unsigned kind)
{
    if (mesh_hdr_sel_on(dec->hdrs))
        mesh_hdrcap_offer_h1(dec->hdrs, &x->hdrs, kind, fields, fields_len);
}

static int on_request(struct h1dec *dec, struct h1side *side, const char **desc)
{
    const struct mesh_h1_msg *m = &side->parser.msg;
    int rv;
    if (pending(dec) >= MESH_DEC_MAX_PENDING) {
        *desc = "too many pending requests";
        return MESH_ETOOBIG;
    }
    if (pending(dec) >= dec->ring_cap && (rv = grow_ring(dec)) != 0) {
        *desc = "out of memory";
        return rv;
    }
    uint32_t stream = dec->nreq + 1;
    struct h1x *x = slot(dec, stream);
    mesh_buf_reset(&x->strs);
    x->path_off = m->method_len + 1;
    x->auth_off = m->host != NULL ? x->path_off + m->target_len + 1 : 0;
    if ((rv = mesh_buf_append(&x->strs, m->method, m->method_len + 1)) != 0 ||
        (rv = mesh_buf_append(&x->strs, m->target, m->target_len + 1)) != 0 ||
        (m->host != NULL && (rv = mesh_buf_append(&x->strs, m->host, m->host_len + 1)) != 0)) {
        *desc = "out of memory";
        return rv;
    }
    mesh_hdrcap_reset(&x->hdrs);
    offer_fields(dec, x, m->fields, m->fields_len, MESH_HDR_REQUEST);
    x->ts_us = side->begin_ts;
    x->seq = side->begin_seq;
    x->bytes[0] = x->bytes[1] = 0;
    x->latency_us = x->duration_us = -1;
    x->status = -1;
    x->method_id = m->method_id;
    x->req_done = x->req_cut = x->rsp_done = x->emitted = x->maybe_answered = 0;
    dec->nreq = stream;
    side->cur = stream;
    if (m->flags & MESH_H1_F_UPGRADE)
        dec->upgrade = stream; /* the parser pauses after it until the answer says */
    return 0;
}

/* The client side paused after an upgrade request that was not granted: it
 * speaks HTTP/1 again, starting with what it sent meanwhile. */
static void resume_client(struct h1dec *dec)
{
    struct h1side *side = &dec->side[MESH_C2S];
    struct mesh_buf stash = dec->stash;
    uint64_t lost = dec->stash_lost;
    int fin = dec->fin_pending;
    mesh_buf_init(&dec->stash, stash.cap);
    dec->stash_lost = 0;
    dec->fin_pending = 0;
    dec->client_paused = 0;
    mesh_h1_parser_resume(&side->parser);
    for (size_t off = 0; off < stash.len;) {
        struct stash_rec rec;
        memcpy(&rec, stash.data + off, sizeof(rec));
        off += sizeof(rec);
        /* paused again? feed() stashes, so the order is kept */
        feed(dec, MESH_C2S, (const uint8_t *)stash.data + off, rec.len, rec.ts_us, rec.seq);
        off += rec.len;
    }
    mesh_buf_free(&stash);
    if (lost > 0 && dec->client_paused)
        dec->stash_lost += lost; /* paused again by a request in the stash */
    else if (lost > 0 && !dec->done && side->err == 0)
        side_lost(dec, MESH_C2S, lost);
    if (fin)
        h1_fin(dec, MESH_C2S, side->last_ts, 0);
}

/* The server parser threw bytes away since last asked (resynchronising): any
 * response among them answered a request that had begun by then. */
static void note_discarded(struct h1dec *dec, uint64_t seq)
{
    struct h1side *side = &dec->side[MESH_S2C];
    if (side->parser.discarded == side->discarded)
        return;
    side->discarded = side->parser.discarded;
    for (uint32_t s = dec->rsp_next; s <= dec->nreq; s++)
        if (slot(dec, s)->seq < seq)
            slot(dec, s)->maybe_answered = 1;
}

/* A response never answers a request that began after it. */
static int began_before(const struct h1x *x, const struct h1side *rsp)
{
    return x->seq < rsp->begin_seq && x->ts_us <= rsp->begin_ts;
}

/* The exchange that the response beginning now answers: the oldest without a
 * response, if it began before this one. Returns its stream, or 0. */
static uint32_t pair_response(struct h1dec *dec, const struct h1side *side, int final)
{
    while (dec->rsp_next <= dec->nreq) {
        uint32_t stream = dec->rsp_next;
        struct h1x *x = slot(dec, stream);
        if (!began_before(x, side))
            return 0;
        if (!x->maybe_answered || stream == dec->nreq || !began_before(slot(dec, stream + 1), side))
            return stream;
        /* Its response may be among the bytes the resync threw away, and the
         * next request began before this response too. A client that waits
         * for each response sent that one after receiving this one's, which
         * then must have been thrown away (it would be paired otherwise): this
         * exchange lost its response, drop it rather than shift the FIFO. */
        if (!final)
            return 0;
        x->rsp_done = x->emitted = 1;
        dec->stats->dropped++;
        dec->rsp_next++;
    }
    return 0;
}

static int on_response(struct h1dec *dec, struct h1side *side, uint64_t seq)
{
    struct mesh_h1_parser *p = &side->parser;
    int status = p->msg.status, final = status >= 200 || status == 101;
    note_discarded(dec, seq);
    uint32_t stream = pair_response(dec, side, final);
    struct h1x *x = stream != 0 ? slot(dec, stream) : NULL;
    mesh_h1_parser_answer(p, x != NULL ? x->method_id : MESH_H1_M_OTHER);
    side->cur = 0;
    if (!final)
        return 0; /* interim: the final response is still to come */
    try_emit(dec);
    if (x == NULL) {
        dec->stats->dropped++; /* its request was never seen */
        return 0;
    }
    dec->rsp_next++;
    side->cur = stream;
    if (!x->emitted) {
        x->status = status;
        x->latency_us = (int64_t)(side->begin_ts - x->ts_us);
        offer_fields(dec, x, p->msg.fields, p->msg.fields_len, MESH_HDR_RESPONSE);
    }
    if (stream == dec->upgrade) {
        dec->upgrade = 0;
        if (!(p->msg.flags & MESH_H1_F_UPGRADE))
            resume_client(dec);
    }
    return 0;
}

static void on_end(struct h1dec *dec, int dir, uint64_t ts_us)
{
    struct h1side *side = &dec->side[dir];
    if (side->cur == 0)
        return;
    struct h1x *x = slot(dec, side->cur);
    side->cur = 0;
    if (dir == MESH_C2S) {
        x->req_done = 1;
    } else {
        x->rsp_done = 1;
        x->duration_us = (int64_t)(ts_us - x->ts_us);
    }
    try_emit(dec);
}

/* A direction stopped on an error: what it was reading is cut short. */
static int side_failed(struct h1dec *dec, int dir, int err, const char *desc)
{
    struct h1side *side = &dec->side[dir];
    side->err = err;
    side->err_desc = desc != NULL ? desc : mesh_strerror(err);
    if (err != MESH_ENOMEM)
        dec->stats->proto_errors++;
    if (dir == MESH_C2S) {
        if (side->cur != 0) {
            struct h1x *x = slot(dec, side->cur);
            x->req_done = x->req_cut = 1;
        }
    } else {
        dec->rsp_gone = 1;
        dec->rsp_gone_why = "undecodable response";
    }
    side->cur = 0;
    try_emit(dec);
    return err;
}

static void stash_put(struct h1dec *dec, const uint8_t *buf, size_t len, uint64_t ts_us,
                      uint64_t seq)
{
    struct stash_rec rec = {ts_us, seq, len};
    if (len == 0)
        return;
    /* after a loss the order of what follows is unknown: count, do not keep */
    if (dec->stash_lost == 0 && dec->stash.len + sizeof(rec) + len <= dec->stash.cap &&
        mesh_buf_append(&dec->stash, &rec, sizeof(rec)) == 0) {
        if (mesh_buf_append(&dec->stash, buf, len) == 0)
            return;
        dec->stash.len -= sizeof(rec);
    }
    dec->stash_lost += len;
}

/* Runs |len| bytes of |dir| through its parser and acts on each event. */
static int feed(struct h1dec *dec, int dir, const uint8_t *buf, size_t len, uint64_t ts_us,
                uint64_t seq)
{
    struct h1side *side = &dec->side[dir];
    struct mesh_h1_parser *p = &side->parser;
    if (side->err != 0 || dec->done)
        return side->err;
    for (;;) {
        size_t used = 0;
        const char *desc = NULL;
        int ev = mesh_h1_parse(p, buf, len, &used, &desc), rv;
        buf += used;
        len -= used;
        switch (ev) {
        case MESH_H1_NEED_MORE:
            if (dir == MESH_S2C)
                note_discarded(dec, seq);
            return 0;
        case MESH_H1_BEGIN:
            side->begin_ts = ts_us;
            side->begin_seq = seq;
            break;
        case MESH_H1_HEAD:
            rv = dir == MESH_C2S ? on_request(dec, side, &desc) : on_response(dec, side, seq);
            if (rv != 0)
                return side_failed(dec, dir, rv, desc);
            break;
        case MESH_H1_DATA:
            if (side->cur != 0)
                slot(dec, side->cur)->bytes[dir] += p->body_len;
            break;
        case MESH_H1_TRAILERS:
            if (dir == MESH_S2C && side->cur != 0)
                offer_fields(dec, slot(dec, side->cur), p->msg.trailers, p->msg.trailers_len,
                             MESH_HDR_TRAILER);
            break;
        case MESH_H1_END:
            on_end(dec, dir, ts_us);
            break;
        case MESH_H1_PAUSED:
            if (dir == MESH_S2C) {
                dec->done = 1; /* 101 or CONNECT 2xx: the connection is no longer HTTP/1 */
                return 0;
            }
            if (dec->upgrade == 0) {
                /* answered already without a switch, or it never will be */
                mesh_h1_parser_resume(p);
                break;
            }
            dec->client_paused = 1;
            stash_put(dec, buf, len, ts_us, seq);
            return 0;
        default:
            return side_failed(dec, dir, ev, desc);
        }
        if (dec->done)
            return 0;
    }
}

/* --- lost bytes ---------------------------------------------------------------------------- */

/* Bytes of |dir| were lost and the parser cannot tell where it is: nothing
 * pending can be paired with certainty any more, so it is emitted now. */
static void desync(struct h1dec *dec, int dir)
{
    emit_all(dec, "capture gap");
    if (dir == MESH_S2C) {
        /* responses were lost: which request the next one answers is unknown */
        if (dec->upgrade != 0)
            dec->done = 1; /* and whether the protocol switched */
        drop_all(dec);
    } else {
        /* the server side is intact: exchanges waiting for a response stay,
         * already emitted, so that their responses are consumed in order */
        struct h1side *side = &dec->side[MESH_C2S];
        if (side->cur != 0)
            slot(dec, side->cur)->req_done = 1;
        side->cur = 0;
        try_emit(dec);
    }
    mesh_h1_parser_resync(&dec->side[dir].parser, 0);
}

static void side_lost(struct h1dec *dec, int dir, uint64_t nbytes)
{
    struct h1side *side = &dec->side[dir];
    if (mesh_h1_parser_skip(&side->parser, nbytes) == 0) {
        /* inside a counted body: the framing survives, the bytes were payload */
        if (side->cur != 0)
            slot(dec, side->cur)->bytes[dir] += nbytes;
        return;
    }
    desync(dec, dir);
}

/* --- mesh_dec_ops ---------------------------------------------------------------------------- */

static void *h1_open(mesh_dec_sink sink, void *sink_ctx, int midstream,
                     const struct mesh_hdr_sel *hdrs, struct mesh_dec_stats *stats)
{
    struct h1dec *dec = calloc(1, sizeof(*dec));
    if (dec == NULL)
        return NULL;
    dec->sink = sink;
    dec->sink_ctx = sink_ctx;
    dec->stats = stats;
    dec->hdrs = mesh_hdr_sel_on(hdrs) ? hdrs : NULL;
    dec->first = dec->rsp_next = 1;
    mesh_buf_init(&dec->stash, MESH_DEC_MAX_HEADER);
    /* events need the start line and what framing takes; the field list
     * only when headers are kept */
    unsigned flags = MESH_H1_LENIENT | (dec->hdrs != NULL ? 0 : MESH_H1_NO_FIELDS);
    mesh_h1_parser_init(&dec->side[MESH_C2S].parser, MESH_H1_REQUEST, MESH_DEC_MAX_HEADER, flags);
    mesh_h1_parser_init(&dec->side[MESH_S2C].parser, MESH_H1_RESPONSE, MESH_DEC_MAX_HEADER, flags);
    if (midstream)
        for (int dir = 0; dir < 2; dir++)
            mesh_h1_parser_resync(&dec->side[dir].parser, 0);
    return dec;
}

static int h1_data(void *ctx, int dir, const uint8_t *buf, size_t len, uint64_t ts_us,
                   const char **err_desc)
{
    struct h1dec *dec = ctx;
    struct h1side *side = &dec->side[dir & 1];
    dir &= 1;
    if (side->err != 0) {
        if (err_desc != NULL)
            *err_desc = side->err_desc;
        return side->err;
    }
    if (dec->done || side->eof || len == 0)
        return 0;
    dec->seq++;
    side->last_ts = ts_us;
    int rv = feed(dec, dir, buf, len, ts_us, dec->seq);
    if (rv != 0 && err_desc != NULL)
        *err_desc = side->err_desc;
    return rv;
}

static void h1_gap(void *ctx, int dir, uint64_t nbytes, uint64_t ts_us)
{
    struct h1dec *dec = ctx;
    dir &= 1;
    struct h1side *side = &dec->side[dir];
    if (dec->done || side->err != 0 || side->eof || nbytes == 0)
        return;
    if (dir == MESH_C2S && dec->client_paused) {
        dec->stash_lost += nbytes; /* settled when the answer comes */
        return;
    }
    side_lost(dec, dir, nbytes);
    (void)ts_us;
}

static void h1_fin(void *ctx, int dir, uint64_t ts_us, int rst)
{
    struct h1dec *dec = ctx;
    dir &= 1;
    struct h1side *side = &dec->side[dir];
    if (dec->done)
        return;
    if (rst) {
        emit_all(dec, "connection reset");
        drop_all(dec);
        dec->done = 1;
        return;
    }
    if (side->eof)
        return;
    if (dir == MESH_C2S && dec->client_paused) {
        dec->fin_pending = 1; /* after what the paused parser still has to read */
        return;
    }
    side->eof = 1;
    if (side->err == 0) {
        const char *desc = NULL;
        int ev = mesh_h1_parse_eof(&side->parser, &desc);
        if (ev == MESH_H1_END) {
            on_end(dec, dir, side->last_ts);
        } else if (ev < 0 && side->cur != 0 && dir == MESH_C2S) {
            struct h1x *x = slot(dec, side->cur);
            x->req_done = x->req_cut = 1;
        }
        side->cur = 0;
    }
    if (dir == MESH_S2C) {
        dec->rsp_gone = 1;
        dec->side[MESH_S2C].cur = 0;
    }
    try_emit(dec);
    (void)ts_us;
}

static void h1_close(void *ctx, uint64_t ts_us)
{
    struct h1dec *dec = ctx;
    (void)ts_us;
    emit_all(dec, NULL);
    for (uint32_t i = 0; i < dec->ring_cap; i++) {
        mesh_buf_free(&dec->ring[i].strs);
        mesh_hdrcap_free(&dec->ring[i].hdrs);
    }
    free(dec->ring);
    mesh_buf_free(&dec->stash);
    for (int dir = 0; dir < 2; dir++)
        mesh_h1_parser_free(&dec->side[dir].parser);
    free(dec);
}

const struct mesh_dec_ops mesh_h1_dec = {
    .name = "http/1",
    .open = h1_open,
    .data = h1_data,
    .gap = h1_gap,
    .fin = h1_fin,
    .close = h1_close,
};

/* --- sniffing ----------------------------------------------------------------------------------
 */

#define SNIFF_METHOD_MAX 32u

int mesh_h1_sniff(const uint8_t *buf, size_t len)
{
    static const char ver[] = "HTTP/1.";
    if (len == 0)
        return -1;
    size_t n = len < 7 ? len : 7;
    if (memcmp(buf, ver, n) == 0) {
        /* "HTTP/1.x NNN" */
        static const char shape[] = "HTTP/1.d ddd";
        for (size_t i = 7; i < 12; i++) {
            if (i >= len)
                return -1;
            int digit = buf[i] >= '0' && buf[i] <= '9';
            if (shape[i] == 'd' ? !digit : buf[i] != ' ')
                return 0;
        }
        return 2;
    }
    size_t i = 0;
    while (i < len && i <= SNIFF_METHOD_MAX && mesh_h1_is_tchar(buf[i]))
        i++;
    if (i > SNIFF_METHOD_MAX)
        return 0;
    if (i == len)
        return -1;
    if (i == 0 || buf[i] != ' ')
        return 0;
    size_t target = ++i;
    while (i < len && buf[i] > ' ' && buf[i] != 0x7f)
        i++;
    if (i == len)
        return len >= MESH_DEC_MAX_HEADER ? 0 : -1;
    if (i == target || buf[i] != ' ')
        return 0;
    i++;
    n = len - i < 7 ? len - i : 7;
    if (memcmp(buf + i, ver, n) != 0)
        return 0;
    return n == 7 ? 1 : -1;
}
