#include "export.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/loop.h"
#include "mesh/tapsend.h"
#include "store.h"

#define EXPORT_BATCH 1000u

/* A sender id of this run's own, so replaying the same file again adds to
 * the store instead of being taken for a resend. */
static void make_sender_id(char *buf, size_t len)
{
    uint64_t now = mesh_wall_now_us();
    snprintf(buf, len, "replay/%ld/%llu.%06llu", (long)getpid(),
             (unsigned long long)(now / 1000000u), (unsigned long long)(now % 1000000u));
}

/* --- into a store ------------------------------------------------------------------------------ */

struct db_sink {
    struct mesh_store *store;
    char sender[128];
    uint64_t seq;
    struct mesh_evt_copy copies[EXPORT_BATCH];
    struct mesh_evt evts[EXPORT_BATCH];
    size_t n;
    uint64_t stored;
    int failed;
};

static void db_flush(struct db_sink *s)
{
    size_t stored = 0;
    int dup = 0;
    if (s->n > 0 && !s->failed &&
        mesh_store_ingest(s->store, s->sender, ++s->seq, s->evts, s->n, &stored, &dup) != 0)
        s->failed = 1;
    s->stored += stored;
    for (size_t i = 0; i < s->n; i++)
        mesh_evt_copy_free(&s->copies[i]);
    s->n = 0;
}

static void db_add(void *ctx, const struct mesh_evt *evt)
{
    struct db_sink *s = ctx;
    if (s->failed || mesh_evt_copy(&s->copies[s->n], evt) != 0) {
        s->failed = 1;
        return;
    }
    s->evts[s->n] = s->copies[s->n].evt;
    if (++s->n == EXPORT_BATCH)
        db_flush(s);
}

int mesh_export_db(const struct mesh_source *src, const char *prog, const char *path)
{
    struct db_sink *s = calloc(1, sizeof(*s));
    char err[512];
    if (s == NULL)
        return MESH_EXIT_RUNTIME;
    if (mesh_store_open(path, NULL, &s->store, err, sizeof(err)) != 0) {
        fprintf(stderr, "mesh %s: %s\n", prog, err);
        free(s);
        return MESH_EXIT_USAGE;
    }
    make_sender_id(s->sender, sizeof(s->sender));
    int status = mesh_source_run(src, prog, db_add, s);
    db_flush(s);
    if (s->failed) {
        fprintf(stderr, "mesh %s: %s: %s\n", prog, path, mesh_store_errmsg(s->store));
        status = MESH_EXIT_RUNTIME;
    } else if (src->summary) {
        fprintf(stderr, "%s: %llu events stored\n", path, (unsigned long long)s->stored);
    }
    mesh_store_close(s->store);
    free(s);
    return status;
}

/* --- to a collector ----------------------------------------------------------------------------- */

struct col_sink {
    struct mesh_loop *loop;
    struct mesh_tapsend *ts;
    size_t window;              /* wait when this many batches are unacknowledged */
    uint64_t last_acked;
    uint64_t last_progress_us;
    unsigned patience_ms;
    int gave_up;
};

static void on_progress(struct mesh_tapsend *ts, void *ctx)
{
    struct col_sink *s = ctx;
    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(ts, &c);
    if (c.acked != s->last_acked) {
        s->last_acked = c.acked;
        s->last_progress_us = mesh_loop_now_us();
    }
    if (mesh_tapsend_unacked(ts) < s->window)
        mesh_loop_stop(s->loop);
}

static int patience(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct col_sink *s = ctx;
    if (mesh_loop_now_us() - s->last_progress_us > (uint64_t)s->patience_ms * 1000) {
        s->gave_up = 1;
        mesh_loop_stop(loop);
    }
    return 200;
}

/* Runs the loop until fewer than |window| batches wait for an ack. */
static void wait_acks(struct col_sink *s, size_t window)
{
    s->window = window;
    s->last_progress_us = mesh_loop_now_us();
    while (!s->gave_up && mesh_tapsend_unacked(s->ts) >= window)
        mesh_loop_run(s->loop);
}

static void col_add(void *ctx, const struct mesh_evt *evt)
{
    struct col_sink *s = ctx;
    if (s->gave_up)
        return;
    mesh_tapsend_add(s->ts, evt);
    if (mesh_tapsend_unacked(s->ts) >= 16)
        wait_acks(s, 8); /* a capture is read faster than a collector commits */
}

int mesh_export_collector(const struct mesh_source *src, const char *prog, const char *addr,
                          unsigned patience_ms)
{
    struct col_sink s;
    char err[512], sender[128];
    memset(&s, 0, sizeof(s));
    s.patience_ms = patience_ms;
    signal(SIGPIPE, SIG_IGN);
    if ((s.loop = mesh_loop_new()) == NULL)
        return MESH_EXIT_RUNTIME;
    make_sender_id(sender, sizeof(sender));
    struct mesh_tapsend_opts opts = {
        .addr = addr, .sender_id = sender, .max_batches = 64, .on_progress = on_progress, .ctx = &s};
    s.ts = mesh_tapsend_new(s.loop, &opts, err, sizeof(err));
    if (s.ts == NULL) {
        fprintf(stderr, "mesh %s: --collector %s\n", prog, err);
        mesh_loop_free(s.loop);
        return MESH_EXIT_USAGE;
    }
    mesh_loop_add_timer(s.loop, 200, patience, &s);
    int status = mesh_source_run(src, prog, col_add, &s);
    mesh_tapsend_flush(s.ts);
    wait_acks(&s, 1);
    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(s.ts, &c);
    if (s.gave_up) {
        const char *why = mesh_tapsend_last_error(s.ts);
        size_t alen = strlen(addr);
        if (strncmp(why, addr, alen) == 0 && strncmp(why + alen, ": ", 2) == 0)
            why += alen + 2; /* it names the address already */
        fprintf(stderr, "mesh %s: collector %s: %llu of %llu events not acknowledged after %us%s%s\n",
                prog, addr, (unsigned long long)(c.added - c.acked), (unsigned long long)c.added,
                patience_ms / 1000, *why ? ": " : "", why);
        status = MESH_EXIT_RUNTIME;
    } else if (src->summary) {
        fprintf(stderr, "%s: %llu events acknowledged in %llu batches (%llu resent as duplicates, %llu reconnects)\n",
                addr, (unsigned long long)c.acked, (unsigned long long)c.batches_acked,
                (unsigned long long)c.duplicates, (unsigned long long)c.reconnects);
    }
    mesh_tapsend_free(s.ts);
    mesh_loop_free(s.loop);
    return status;
}
