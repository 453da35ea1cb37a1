/* mesh/tapsend.h — streams tap events to a collector (Collector.Report).
 *
 * Events are packed into batches as they are added; a batch is sealed when
 * full, flushed, or when its first event has waited |flush_ms| while the
 * collector is connected (so a quiet sender's events still show up live;
 * while it is not, the batch keeps filling, so that an outage costs the
 * queue's full capacity in events, not in tiny batches), numbered (sender
 * id + sequence) and sent on one Report
 * stream. Sealed batches are kept until the collector acknowledges them
 * (after its commit); after a lost connection the sender reconnects with
 * exponential backoff and jitter and resends every unacknowledged batch, which
 * the collector de-duplicates. The queue is bounded: mesh_tapsend_add() drops
 * (and counts) events past it rather than block the caller. Runs on the
 * caller's mesh_loop; nothing here blocks.
 */
#ifndef MESH_TAPSEND_H
#define MESH_TAPSEND_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/evt.h"
#include "mesh/loop.h"

struct mesh_tapsend;

struct mesh_tapsend_opts {
    const char *addr;           /* collector, "127.0.0.1:8088" */
    const char *sender_id;      /* stable for this sender's life; copied */
    size_t batch_events;        /* 0: 1000 */
    size_t max_batches;         /* sealed and unacknowledged; 0: 64 */
    unsigned flush_ms;          /* 0: 100 */
    /* Called after each acknowledgement and each connection loss, so a
     * caller waiting on the loop can check on progress. */
    void (*on_progress)(struct mesh_tapsend *ts, void *ctx);
    void *ctx;
};

struct mesh_tapsend_counters {
    uint64_t added, acked, dropped, batches_sent, batches_acked, duplicates, reconnects;
};

/* NULL with one line in |err| for a bad address or no memory. */
struct mesh_tapsend *mesh_tapsend_new(struct mesh_loop *loop, const struct mesh_tapsend_opts *opts,
                                      char *err, size_t errlen);
void mesh_tapsend_free(struct mesh_tapsend *ts);
/* Queues |evt| (copied). 0, or MESH_ETOOBIG when the queue is full (the
 * event is dropped and counted). */
int mesh_tapsend_add(struct mesh_tapsend *ts, const struct mesh_evt *evt);
/* Seals the partial batch, so it goes out now. */
void mesh_tapsend_flush(struct mesh_tapsend *ts);
/* Sealed batches not yet acknowledged. */
size_t mesh_tapsend_unacked(const struct mesh_tapsend *ts);
/* The last connection problem in words ("" when none). */
const char *mesh_tapsend_last_error(const struct mesh_tapsend *ts);
void mesh_tapsend_counters(const struct mesh_tapsend *ts, struct mesh_tapsend_counters *out);

#endif
