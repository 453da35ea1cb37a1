#include "flow.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dec.h"
#include "mesh/buf.h"
#include "mesh/err.h"
#include "mesh/labels.h"

/* How much of each direction is kept while the protocol is not known yet,
 * and in how many pieces: each piece keeps its time and its place in capture
 * order, so the decoder later sees them as they came. */
#define SNIFF_MAX 16384u
#define SNIFF_CHUNKS 64u

struct sniff_chunk {
    uint64_t ts_us;
    uint32_t len;
    uint8_t side;
};

enum flow_state { FLOW_UNDECIDED, FLOW_DECODING, FLOW_OPAQUE };

struct flow;

/* A segment held back until the peer's bytes it acknowledges are delivered. */
struct ackwait {
    struct ackwait *next;
    uint32_t seq, ack;
    uint8_t flags;
    size_t len, missing;
    uint64_t ts_us;
    uint8_t data[];
};

/* One direction of a connection, named by the endpoint that sends it. */
struct flow_side {
    struct flow *flow;
    int idx;                        /* 0: sent by endpoint a; 1: by endpoint b */
    struct mesh_reasm reasm;
    struct mesh_buf sniff;          /* bytes held until the protocol is known */
    uint32_t fin_seq;               /* sequence after the FIN, when fin_seen */
    struct ackwait *waiting;        /* in arrival order */
    size_t waiting_bytes;
    unsigned fin_seen : 1, fin_done : 1, dead : 1;
};

struct flow {
    struct flow *hnext;             /* hash chain */
    struct flow *prev, *next;       /* in the active (LRU) or the closing list */
    int family;
    uint8_t ip[2][16];
    uint16_t port[2];
    uint32_t hash;
    uint64_t conn;                  /* connection number, the first half of event ids */
    uint64_t last_ts;
    int closing;                    /* on the closing list */
    int client;                     /* index of the client endpoint, -1 unknown */
    int syn_seen;
    enum flow_state state;
    int midstream;
    const struct mesh_dec_ops *ops;
    void *dec;
    struct flow_side side[2];
    struct sniff_chunk *chunks;     /* pieces of side[].sniff in capture order */
    unsigned nchunks;
    char addr[2][INET6_ADDRSTRLEN + 8];
    char id_prefix[24];             /* "CONN:" */
    size_t id_prefix_len;
    const struct mesh_labels *labels[2];
    struct mesh_flows *ft;
};

struct flow_list {
    struct flow *head, *tail;       /* head = oldest */
};

struct mesh_flows {
    struct flow **buckets;
    struct flow *last;              /* of the previous segment: segments come in runs */
    size_t nbuckets;                /* power of two */
    size_t nflows;
    uint64_t next_conn;
    struct flow_list active, closing;
    struct mesh_reasm_budget budget;
    struct mesh_dec_stats dec_stats;
    const struct mesh_labelmap *labels;
    const struct mesh_hdr_sel *hdrs;
    mesh_replay_cb cb;
    void *cb_ctx;
    struct mesh_replay_stats *stats;
};

static void list_remove(struct flow_list *l, struct flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
}

static void list_append(struct flow_list *l, struct flow *f)
{
    f->next = NULL;
    f->prev = l->tail;
    if (l->tail)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
}

static uint32_t hash_bytes(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u; /* FNV-1a */
    return h;
}

/* The same hash for both directions of a connection. */
static uint32_t seg_hash(const struct mesh_tcp_seg *seg)
{
    size_t alen = seg->family == AF_INET ? 4 : 16;
    uint32_t a = hash_bytes(2166136261u, seg->src_ip, alen) ^ seg->sport;
    uint32_t b = hash_bytes(2166136261u, seg->dst_ip, alen) ^ seg->dport;
    return (a ^ b) * 2654435761u + (a + b);
}

/* |a| and |b| are the same address of |family| (constant sizes: compared inline). */
static int ip_eq(int family, const uint8_t *a, const uint8_t *b)
{
    return family == AF_INET ? memcmp(a, b, 4) == 0 : memcmp(a, b, 16) == 0;
}

/* Which endpoint of |f| sent |seg|: 0 or 1, or -1 when |seg| is not of |f|. */
static int seg_side(const struct flow *f, const struct mesh_tcp_seg *seg)
{
    if (f->family != seg->family)
        return -1;
    if (f->port[0] == seg->sport && f->port[1] == seg->dport &&
        ip_eq(f->family, f->ip[0], seg->src_ip) && ip_eq(f->family, f->ip[1], seg->dst_ip))
        return 0;
    if (f->port[1] == seg->sport && f->port[0] == seg->dport &&
        ip_eq(f->family, f->ip[1], seg->src_ip) && ip_eq(f->family, f->ip[0], seg->dst_ip))
        return 1;
    return -1;
}

/* --- events -------------------------------------------------------------------- */

static void on_event(void *ctx, struct mesh_evt *evt, uint32_t stream)
{
    struct flow *f = ctx;
    struct mesh_flows *ft = f->ft;
    int cl = f->client < 0 ? 0 : f->client;
    /* "CONN:STREAM" without printf: this runs once per request */
    char id[48], digits[12], *d = digits + sizeof(digits);
    size_t plen = f->id_prefix_len;
    do {
        *--d = (char)('0' + stream % 10);
        stream /= 10;
    } while (stream != 0);
    memcpy(id, f->id_prefix, plen);
    memcpy(id + plen, d, (size_t)(digits + sizeof(digits) - d));
    id[plen + (size_t)(digits + sizeof(digits) - d)] = '\0';
    evt->id = id;
    evt->direction = MESH_DIR_REPLAY;
    evt->src = f->addr[cl];
    evt->dst = f->addr[!cl];
    if (f->labels[cl] != NULL)
        evt->src_labels = *f->labels[cl];
    if (f->labels[!cl] != NULL)
        evt->dst_labels = *f->labels[!cl];
    ft->stats->requests++;
    ft->cb(ft->cb_ctx, evt);
}

/* --- protocol detection ----------------------------------------------------- */

static int dec_dir(const struct flow *f, int idx)
{
    return idx == f->client ? MESH_C2S : MESH_S2C;
}

static void feed(struct flow_side *s, const uint8_t *data, size_t len, uint64_t ts_us)
{
    struct flow *f = s->flow;
    if (s->dead || len == 0)
        return;
    if (f->ops->data(f->dec, dec_dir(f, s->idx), data, len, ts_us, NULL) != 0) {
        s->dead = 1;
        f->ft->stats->undecodable++;
    }
}

static void free_sniff(struct flow *f)
{
    for (int i = 0; i < 2; i++)
        mesh_buf_free(&f->side[i].sniff);
    free(f->chunks);
    f->chunks = NULL;
    f->nchunks = 0;
}

/* Starts decoding with |ops|: replays what was held while sniffing, piece by
 * piece in capture order, each with its own time. */
static void start_decoder(struct flow *f, const struct mesh_dec_ops *ops, int client,
                          int midstream)
{
    struct mesh_flows *ft = f->ft;
    f->client = client;
    f->midstream = midstream;
    f->ops = ops;
    f->dec = ops->open(on_event, f, midstream, ft->hdrs, &ft->dec_stats);
    if (f->dec == NULL) {
        f->state = FLOW_OPAQUE;
        ft->stats->flows_opaque++;
        return;
    }
    f->state = FLOW_DECODING;
    if (ops == &mesh_h2_dec)
        ft->stats->flows_h2++;
    else
        ft->stats->flows_h1++;
    if (midstream)
        ft->stats->flows_midstream++;
    size_t off[2] = {0, 0};
    for (unsigned i = 0; i < f->nchunks; i++) {
        const struct sniff_chunk *c = &f->chunks[i];
        struct flow_side *s = &f->side[c->side];
        feed(s, (const uint8_t *)s->sniff.data + off[c->side], c->len, c->ts_us);
        off[c->side] += c->len;
    }
    free_sniff(f);
    for (int i = 0; i < 2; i++)
        if (f->side[i].fin_done)
            ops->fin(f->dec, dec_dir(f, i), f->last_ts, 0);
}

static void make_opaque(struct flow *f)
{
    f->state = FLOW_OPAQUE;
    f->ft->stats->flows_opaque++;
    for (int i = 0; i < 2; i++)
        f->ft->stats->opaque_bytes += f->side[i].sniff.len;
    free_sniff(f);
}

/* Looks for an HTTP/1 message start after a line end in |buf| (a capture that
 * began inside a body). Returns the sniff result (1 request, 2 status) or 0. */
static int h1_after_line(const struct mesh_buf *buf)
{
    const char *p = buf->data, *end = buf->data + buf->len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        int r = mesh_h1_sniff((const uint8_t *)p, (size_t)(end - p));
        if (r > 0)
            return r;
    }
    return 0;
}

/* Decides the protocol from what each side sent so far, never from ports. */
static void try_decide(struct flow *f)
{
    struct flow_side *sd = f->side;
    int undecided_short = 0;
    for (int i = 0; i < 2; i++) {
        const struct mesh_buf *b = &sd[i].sniff;
        if (b->len == 0)
            continue;
        if (f->client >= 0 && i != f->client)
            continue; /* the client speaks first in HTTP */
        int h2 = mesh_h2_sniff((const uint8_t *)b->data, b->len);
        int h1 = mesh_h1_sniff((const uint8_t *)b->data, b->len);
        if (h2 == 1) {
            start_decoder(f, &mesh_h2_dec, i, 0);
            return;
        }
        if (h1 == 1) {
            start_decoder(f, &mesh_h1_dec, i, !f->syn_seen);
            return;
        }
        if (h2 < 0 || h1 < 0)
            undecided_short = 1;
    }
    if (f->syn_seen && f->client >= 0) {
        /* a connection seen from its start that opens with neither */
        if (!undecided_short && sd[f->client].sniff.len > 0)
            make_opaque(f);
        else if (sd[!f->client].sniff.len > SNIFF_MAX / 4 && sd[f->client].sniff.len == 0)
            make_opaque(f); /* the server speaks first: not HTTP */
        return;
    }
    /* began mid-connection: look harder, but only at content */
    for (int i = 0; i < 2; i++) {
        const struct mesh_buf *b = &sd[i].sniff;
        if (b->len == 0)
            continue;
        int h1 = mesh_h1_sniff((const uint8_t *)b->data, b->len);
        if (h1 == 2) {
            start_decoder(f, &mesh_h1_dec, !i, 1);
            return;
        }
        if (mesh_h2_sniff_frames((const uint8_t *)b->data, b->len) == 1) {
            /* both sides send frames; the ephemeral (higher) port is the client */
            int client = f->client >= 0 ? f->client : (f->port[0] > f->port[1] ? 0 : 1);
            start_decoder(f, &mesh_h2_dec, client, 1);
            return;
        }
        if ((h1 = h1_after_line(b)) != 0) {
            start_decoder(f, &mesh_h1_dec, h1 == 1 ? i : !i, 1);
            return;
        }
    }
    if (sd[0].sniff.len + sd[1].sniff.len >= SNIFF_MAX)
        make_opaque(f);
}

/* --- reassembled bytes ---------------------------------------------------------- */

static void on_bytes(void *ctx, const uint8_t *data, size_t len, uint64_t ts_us)
{
    struct flow_side *s = ctx;
    struct flow *f = s->flow;
    switch (f->state) {
    case FLOW_DECODING:
        feed(s, data, len, ts_us);
        break;
    case FLOW_OPAQUE:
        f->ft->stats->opaque_bytes += len;
        break;
    case FLOW_UNDECIDED:
        if (f->chunks == NULL && (f->chunks = malloc(SNIFF_CHUNKS * sizeof(*f->chunks))) == NULL) {
            make_opaque(f);
            break;
        }
        if (f->nchunks == SNIFF_CHUNKS || mesh_buf_append(&s->sniff, data, len) != 0) {
            /* this long without a recognisable start: not HTTP we can read */
            make_opaque(f);
            f->ft->stats->opaque_bytes += len;
            break;
        }
        f->chunks[f->nchunks++] = (struct sniff_chunk){ts_us, (uint32_t)len, (uint8_t)s->idx};
        try_decide(f);
        break;
    }
}

static void on_gap(void *ctx, uint64_t nbytes, uint64_t ts_us)
{
    struct flow_side *s = ctx;
    struct flow *f = s->flow;
    if (f->state == FLOW_DECODING && !s->dead)
        f->ops->gap(f->dec, dec_dir(f, s->idx), nbytes, ts_us);
    else if (f->state == FLOW_UNDECIDED)
        make_opaque(f); /* cannot sniff across a hole */
}

/* Delivers a FIN once every byte before it has been delivered. */
static void check_fin(struct flow_side *s, uint64_t ts_us)
{
    struct flow *f = s->flow;
    if (!s->fin_seen || s->fin_done || s->reasm.next_seq != s->fin_seq)
        return;
    s->fin_done = 1;
    if (f->state == FLOW_DECODING && !s->dead)
        f->ops->fin(f->dec, dec_dir(f, s->idx), ts_us, 0);
}

static void release_all(struct flow *f);

/* --- lifetime ----------------------------------------------------------------------- */

static struct flow *flow_new(struct mesh_flows *ft, const struct mesh_tcp_seg *seg, uint32_t hash)
{
    struct flow *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->ft = ft;
    f->family = seg->family;
    f->hash = hash;
    memcpy(f->ip[0], seg->src_ip, 16);
    memcpy(f->ip[1], seg->dst_ip, 16);
    f->port[0] = seg->sport;
    f->port[1] = seg->dport;
    f->client = -1;
    f->conn = ft->next_conn++;
    int plen = snprintf(f->id_prefix, sizeof(f->id_prefix), "%llu:", (unsigned long long)f->conn);
    f->id_prefix_len = plen > 0 ? (size_t)plen : 0; /* 21 at most: it fits */
    for (int i = 0; i < 2; i++) {
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(f->family, f->ip[i], ip, sizeof(ip));
        snprintf(f->addr[i], sizeof(f->addr[i]), f->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
                 ip, f->port[i]);
        f->labels[i] = mesh_labelmap_find(ft->labels, ip, f->port[i]);
        f->side[i].flow = f;
        f->side[i].idx = i;
        mesh_buf_init(&f->side[i].sniff, SNIFF_MAX);
        mesh_reasm_init(&f->side[i].reasm, MESH_REASM_DIR_CAP, &ft->budget, &ft->stats->reasm,
                        on_bytes, on_gap, &f->side[i]);
    }
    f->hnext = ft->buckets[hash & (ft->nbuckets - 1)];
    ft->buckets[hash & (ft->nbuckets - 1)] = f;
    list_append(&ft->active, f);
    ft->nflows++;
    ft->stats->flows++;
    return f;
}

static void flow_close(struct mesh_flows *ft, struct flow *f)
{
    release_all(f);
    for (int i = 0; i < 2; i++) {
        mesh_reasm_flush(&f->side[i].reasm, f->last_ts);
        check_fin(&f->side[i], f->last_ts);
    }
    if (f->state == FLOW_UNDECIDED && (f->side[0].sniff.len || f->side[1].sniff.len))
        make_opaque(f);
    if (f->state == FLOW_DECODING)
        f->ops->close(f->dec, f->last_ts);
    for (int i = 0; i < 2; i++)
        mesh_reasm_free(&f->side[i].reasm);
    free_sniff(f);
    struct flow **pp = &ft->buckets[f->hash & (ft->nbuckets - 1)];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    list_remove(f->closing ? &ft->closing : &ft->active, f);
    ft->nflows--;
    if (ft->last == f)
        ft->last = NULL;
    free(f);
}

/* Closes flows that finished a while ago, and those idle too long. */
static void sweep(struct mesh_flows *ft, uint64_t now)
{
    struct flow *f;
    while ((f = ft->closing.head) != NULL && f->last_ts + MESH_FLOW_LINGER_US < now)
        flow_close(ft, f);
    while ((f = ft->active.head) != NULL && f->last_ts + MESH_FLOW_IDLE_US < now) {
        ft->stats->expired++;
        flow_close(ft, f);
    }
}

static void mark_closing(struct mesh_flows *ft, struct flow *f)
{
    if (f->closing)
        return;
    list_remove(&ft->active, f);
    f->closing = 1;
    list_append(&ft->closing, f);
}

static void touch(struct mesh_flows *ft, struct flow *f, uint64_t ts)
{
    if (ts > f->last_ts)
        f->last_ts = ts;
    struct flow_list *l = f->closing ? &ft->closing : &ft->active;
    if (!f->closing && l->tail != f) {
        list_remove(l, f);
        list_append(l, f);
    }
}

/* --- causal order across directions ------------------------------------------------ */

/* A capture may hold a response before the request it answers (packets
 * reordered on the way to the capture). A segment's ACK number says how much
 * of the peer's stream its sender had received, so a segment is delivered
 * only after those peer bytes have been: the decoders then see each side's
 * bytes in an order that could have happened. */

/* 1 when the peer of side |idx| has delivered everything before |ack|. */
static int peer_has(const struct flow *f, int idx, uint32_t ack)
{
    const struct flow_side *peer = &f->side[!idx];
    if (!peer->reasm.started)
        return 1; /* nothing known of the peer: nothing to wait for */
    uint32_t have = peer->reasm.next_seq;
    if (peer->fin_seen && have == peer->fin_seq)
        have++; /* the FIN takes a sequence number too */
    return (int32_t)(ack - have) <= 0;
}

/* Reassembles one segment of side |idx|. */
static void deliver_seg(struct flow *f, int idx, uint32_t seq, uint8_t flags,
                        const uint8_t *payload, size_t len, size_t missing, uint64_t ts_us)
{
    struct mesh_flows *ft = f->ft;
    struct flow_side *s = &f->side[idx];
    if (len > 0 && mesh_reasm_segment(&s->reasm, seq, payload, len, ts_us) != 0)
        on_gap(s, len, ts_us);
    if (missing > 0 && s->reasm.started && s->reasm.next_seq == seq + (uint32_t)len) {
        /* sent but cut by the snap length: a hole we know will never be filled */
        s->reasm.next_seq += (uint32_t)missing;
        ft->stats->reasm.gaps++;
        ft->stats->reasm.gap_bytes += missing;
        on_gap(s, missing, ts_us);
    }
    if ((flags & MESH_TCP_FIN) && !s->fin_seen) {
        s->fin_seen = 1;
        s->fin_seq = seq + (uint32_t)(len + missing);
        if (!s->reasm.started) {
            s->reasm.started = 1;
            s->reasm.next_seq = s->fin_seq;
        }
    }
    check_fin(s, ts_us);
    if (f->side[0].fin_done && f->side[1].fin_done)
        mark_closing(ft, f);
}

static void hold(struct flow *f, struct flow_side *s, uint32_t seq, const struct mesh_tcp_seg *seg)
{
    struct ackwait *w = malloc(sizeof(*w) + seg->len);
    if (w == NULL) {
        deliver_seg(f, s->idx, seq, seg->flags, seg->payload, seg->len, seg->missing, seg->ts_us);
        return;
    }
    w->next = NULL;
    w->seq = seq;
    w->ack = seg->ack;
    w->flags = seg->flags;
    w->len = seg->len;
    w->missing = seg->missing;
    w->ts_us = seg->ts_us;
    memcpy(w->data, seg->payload, seg->len);
    struct ackwait **tail = &s->waiting;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = w;
    s->waiting_bytes += seg->len;
    /* the peer's bytes may be lost for good: do not wait past the cap */
    while (s->waiting != NULL && s->waiting_bytes > MESH_ACKWAIT_CAP) {
        w = s->waiting;
        s->waiting = w->next;
        s->waiting_bytes -= w->len;
        deliver_seg(f, s->idx, w->seq, w->flags, w->data, w->len, w->missing, w->ts_us);
        free(w);
    }
}

/* Delivers the held segments of side |idx| whose acknowledged peer bytes are
 * in; each one delivered may unblock the peer's, so both sides are tried
 * until nothing moves. Any held segment may go, not only the first: one
 * that arrived late but was sent early must not wait behind a later one. */
static void release(struct flow *f, int idx)
{
    int moved = 1;
    while (moved) {
        moved = 0;
        for (int k = 0; k < 2; k++, idx = !idx) {
            struct flow_side *s = &f->side[idx];
            struct ackwait **pp = &s->waiting;
            while (*pp != NULL) {
                struct ackwait *w = *pp;
                if (!peer_has(f, idx, w->ack)) {
                    pp = &w->next;
                    continue;
                }
                *pp = w->next;
                s->waiting_bytes -= w->len;
                deliver_seg(f, idx, w->seq, w->flags, w->data, w->len, w->missing, w->ts_us);
                free(w);
                moved = 1;
            }
        }
    }
}

/* Delivers every held segment regardless (end of the flow, or a reset). */
static void release_all(struct flow *f)
{
    release(f, 0);
    for (int i = 0; i < 2; i++) {
        struct flow_side *s = &f->side[i];
        while (s->waiting != NULL) {
            struct ackwait *w = s->waiting;
            s->waiting = w->next;
            s->waiting_bytes -= w->len;
            deliver_seg(f, i, w->seq, w->flags, w->data, w->len, w->missing, w->ts_us);
            free(w);
            release(f, !i);
        }
    }
}

void mesh_flows_segment(struct mesh_flows *ft, const struct mesh_tcp_seg *seg)
{
    sweep(ft, seg->ts_us); /* first: it may close the flow this segment belongs to */
    /* a 4-tuple has at most one flow: the previous segment's, when it matches,
     * is the one the hash chain would give */
    struct flow *f = ft->last;
    int idx = f != NULL ? seg_side(f, seg) : -1;
    uint32_t hash;
    if (idx >= 0) {
        hash = f->hash;
    } else {
        hash = seg_hash(seg);
        for (f = ft->buckets[hash & (ft->nbuckets - 1)]; f != NULL; f = f->hnext)
            if (f->hash == hash && (idx = seg_side(f, seg)) >= 0)
                break;
    }
    if (f != NULL && f->closing && (seg->flags & (MESH_TCP_SYN | MESH_TCP_ACK)) == MESH_TCP_SYN) {
        /* the 4-tuple is reused by a new connection */
        flow_close(ft, f);
        f = NULL;
    }
    if (f == NULL) {
        if ((seg->flags & MESH_TCP_RST) && seg->len == 0)
            return; /* a reset of a connection we never saw */
        if (ft->nflows >= MESH_FLOWS_MAX) {
            struct flow *old = ft->closing.head ? ft->closing.head : ft->active.head;
            ft->stats->expired++;
            flow_close(ft, old);
        }
        if ((f = flow_new(ft, seg, hash)) == NULL)
            return;
        idx = 0;
    }
    ft->last = f;
    touch(ft, f, seg->ts_us);
    struct flow_side *s = &f->side[idx];
    uint32_t seq = seg->seq;
    if (seg->flags & MESH_TCP_SYN) {
        if (!f->syn_seen && f->state == FLOW_UNDECIDED)
            f->client = (seg->flags & MESH_TCP_ACK) ? !idx : idx;
        f->syn_seen = 1;
        mesh_reasm_syn(&s->reasm, seq);
        seq++;
    }
    if (seg->flags & MESH_TCP_RST) {
        release_all(f);
        for (int i = 0; i < 2; i++)
            mesh_reasm_flush(&f->side[i].reasm, seg->ts_us);
        if (f->state == FLOW_DECODING && !s->dead)
            f->ops->fin(f->dec, dec_dir(f, idx), seg->ts_us, 1);
        s->fin_done = 1;
        mark_closing(ft, f);
        return;
    }
    if (seg->len == 0 && seg->missing == 0 && !(seg->flags & MESH_TCP_FIN))
        return; /* a bare ACK carries nothing to deliver */
    if ((seg->flags & MESH_TCP_ACK) && (s->waiting != NULL || !peer_has(f, idx, seg->ack))) {
        hold(f, s, seq, seg);
        return;
    }
    deliver_seg(f, idx, seq, seg->flags, seg->payload, seg->len, seg->missing, seg->ts_us);
    release(f, !idx);
}

struct mesh_flows *mesh_flows_new(const struct mesh_labelmap *labels,
                                  const struct mesh_hdr_sel *hdrs, mesh_replay_cb cb, void *ctx,
                                  struct mesh_replay_stats *stats)
{
    struct mesh_flows *ft = calloc(1, sizeof(*ft));
    if (ft == NULL)
        return NULL;
    ft->nbuckets = 1u << 16;
    ft->buckets = calloc(ft->nbuckets, sizeof(*ft->buckets));
    if (ft->buckets == NULL) {
        free(ft);
        return NULL;
    }
    ft->budget.cap = MESH_REASM_TOTAL_CAP;
    ft->labels = labels;
    ft->hdrs = hdrs;
    ft->cb = cb;
    ft->cb_ctx = ctx;
    ft->stats = stats;
    return ft;
}

void mesh_flows_close_all(struct mesh_flows *ft)
{
    while (ft->closing.head != NULL)
        flow_close(ft, ft->closing.head);
    while (ft->active.head != NULL)
        flow_close(ft, ft->active.head);
    ft->stats->incomplete = ft->dec_stats.incomplete;
    ft->stats->dropped = ft->dec_stats.dropped;
}

void mesh_flows_reset_stats(struct mesh_flows *ft)
{
    memset(&ft->dec_stats, 0, sizeof(ft->dec_stats));
}

void mesh_flows_free(struct mesh_flows *ft)
{
    if (ft == NULL)
        return;
    mesh_flows_close_all(ft);
    free(ft->buckets);
    free(ft);
}
