/* Retention in bounded steps, and the counters.
 *
 * Each call deletes at most |budget| rows in one short transaction, then
 * hands at most |budget| free pages back to the filesystem (incremental
 * vacuum), so a timer can call it between batches without stalling ingest.
 * Rollups go with the raw rows: by age, those older than the limit; by
 * size, those older than the oldest raw row left. */
#include <string.h>

#include "mesh/err.h"
#include "store_int.h"

/* Deletes one second (or minute) of rollups at a time, oldest first, while
 * older than |cutoff| and the budget lasts. */
static int delete_rollups(struct mesh_store *st, enum store_stmt id, int64_t cutoff,
                          uint64_t *left, uint64_t *deleted, int *more)
{
    while (*left > 0) {
        sqlite3_bind_int64(st->stmt[id], 1, cutoff);
        int rv = store_exec(st, id, "deleting old rollups");
        if (rv != 0)
            return rv;
        uint64_t n = (uint64_t)sqlite3_changes(st->db);
        if (n == 0)
            return 0;
        *deleted += n;
        *left = n >= *left ? 0 : *left - n;
    }
    *more = 1; /* out of budget; there may be more */
    return 0;
}

/* Rollups of the minutes before |cutoff| (a minute's first second), the
 * minute tables first: a query never finds a second without its minute. */
static int delete_rollups_before(struct mesh_store *st, int64_t cutoff, uint64_t *left,
                                 uint64_t *deleted, int *more)
{
    int rv = delete_rollups(st, S_DEL_R1M, cutoff, left, deleted, more);
    if (rv == 0)
        rv = delete_rollups(st, S_DEL_T1M, cutoff, left, deleted, more);
    if (rv == 0)
        rv = delete_rollups(st, S_DEL_R1S, cutoff, left, deleted, more);
    if (rv == 0)
        rv = delete_rollups(st, S_DEL_T10S, cutoff, left, deleted, more);
    return rv;
}

static int64_t used_bytes(struct mesh_store *st)
{
    int64_t pages = store_int_query(st, S_PAGE_COUNT, 0);
    int64_t free_pages = store_int_query(st, S_FREELIST, 0);
    return (pages - free_pages) * store_int_query(st, S_PAGE_SIZE, 4096);
}

/* Strings no raw row refers to any more: a row refers only to strings
 * whose last_row is at least its row_id - DICT_REFRESH_ROWS (ingest.c). */
static int retain_strings(struct mesh_store *st, uint64_t *left, int *more,
                          struct mesh_store_retained *done)
{
    int64_t oldest = store_int_query(st, S_MIN_ROW, st->next_row);
    sqlite3_stmt *s = st->stmt[S_STR_GC];
    sqlite3_bind_int64(s, 1, oldest - DICT_REFRESH_ROWS);
    sqlite3_bind_int64(s, 2, (int64_t)*left);
    int rv = store_exec(st, S_STR_GC, "deleting unused strings");
    if (rv != 0)
        return rv;
    uint64_t n = (uint64_t)sqlite3_changes(st->db);
    done->strings += n;
    if (n >= *left) {
        *left = 0;
        *more = 1;
    } else {
        *left -= n;
    }
    return 0;
}

static int retain_rows(struct mesh_store *st, uint64_t max_age_us, uint64_t max_bytes,
                       uint64_t now_us, uint64_t *left, int *more,
                       struct mesh_store_retained *done)
{
    int rv;
    if (max_age_us > 0 && now_us > max_age_us) {
        /* whole minutes, so that the 1 s and 1 min rollups always agree */
        int64_t cutoff = (int64_t)((now_us - max_age_us) / 1000000u) / 60 * 60;
        sqlite3_stmt *s = st->stmt[S_DEL_EVT_AGE];
        sqlite3_bind_int64(s, 1, cutoff * 1000000);
        sqlite3_bind_int64(s, 2, (int64_t)*left);
        if ((rv = store_exec(st, S_DEL_EVT_AGE, "deleting old events")) != 0)
            return rv;
        uint64_t n = (uint64_t)sqlite3_changes(st->db);
        done->events += n;
        if (n >= *left) {
            *left = 0;
            *more = 1;
            return 0;
        }
        *left -= n;
        rv = delete_rollups_before(st, cutoff, left, &done->rollups, more);
        if (rv != 0 || *left == 0)
            return rv;
    }
    uint64_t dedup_cutoff = now_us > st->opts.dedup_keep_us ? now_us - st->opts.dedup_keep_us : 0;
    sqlite3_stmt *s = st->stmt[S_DEL_BATCH];
    sqlite3_bind_int64(s, 1, (int64_t)dedup_cutoff);
    sqlite3_bind_int64(s, 2, (int64_t)*left);
    if ((rv = store_exec(st, S_DEL_BATCH, "deleting old batch records")) != 0)
        return rv;
    uint64_t n = (uint64_t)sqlite3_changes(st->db);
    done->batches += n;
    if (n >= *left) {
        *left = 0;
        *more = 1;
        return 0;
    }
    *left -= n;

    if ((rv = retain_strings(st, left, more, done)) != 0 || *left == 0)
        return rv;

    if (max_bytes > 0 && used_bytes(st) > (int64_t)max_bytes) {
        /* half the budget for raw rows, the rest for the rollups they leave
         * behind: with many distinct paths the route rollups are as big */
        uint64_t chunk = *left > 1 ? *left / 2 : 1;
        s = st->stmt[S_DEL_EVT_OLDEST];
        sqlite3_bind_int64(s, 1, (int64_t)chunk);
        if ((rv = store_exec(st, S_DEL_EVT_OLDEST, "deleting the oldest events")) != 0)
            return rv;
        n = (uint64_t)sqlite3_changes(st->db);
        done->events += n;
        *left = n >= *left ? 0 : *left - n;
        if (*left == 0) {
            *more = 1;
            return 0;
        }
        /* rollups of the minutes before the oldest raw row left; with no
         * raw rows left the rollups alone are too big, and go oldest first */
        int64_t oldest = store_int_query(st, S_MIN_TS, -1);
        int64_t cutoff = oldest >= 0 ? oldest / 1000000 / 60 * 60 : INT64_MAX;
        rv = delete_rollups_before(st, cutoff, left, &done->rollups, more);
        if (rv != 0)
            return rv;
    }
    return 0;
}

int mesh_store_retain(struct mesh_store *st, uint64_t max_age_us, uint64_t max_bytes,
                      uint64_t now_us, unsigned budget, int *more,
                      struct mesh_store_retained *done)
{
    struct mesh_store_retained local;
    int more_local = 0, rv;
    if (done == NULL)
        done = &local;
    memset(done, 0, sizeof(*done));
    if (more == NULL)
        more = &more_local;
    *more = 0;
    if (st->opts.readonly || st->in_txn)
        return store_set_err(st, MESH_EINVAL, "retain: %s",
                             st->opts.readonly ? "store opened read-only" : "transaction open");
    if (budget == 0)
        budget = 1000;
    /* raw rows may only go once their rollups are written */
    if ((rv = store_flush(st)) != 0)
        return rv;
    if ((rv = store_begin_internal(st)) != 0)
        return rv;
    uint64_t left = budget;
    rv = retain_rows(st, max_age_us, max_bytes, now_us, &left, more, done);
    if (rv == 0)
        rv = store_exec(st, S_COMMIT, "committing retention");
    if (rv != 0) {
        char saved[sizeof(st->errmsg)];
        memcpy(saved, st->errmsg, sizeof(saved));
        mesh_store_rollback(st);
        memcpy(st->errmsg, saved, sizeof(saved));
        return rv;
    }
    st->in_txn = 0;
    st->counters.retained_events += done->events;

    /* each step of the pragma moves one page and frees it; stopping early
     * commits what was done and leaves the rest for the next call */
    sqlite3_stmt *s = st->stmt[S_INCR_VACUUM];
    while (done->pages < budget && sqlite3_step(s) == SQLITE_ROW)
        done->pages++;
    sqlite3_reset(s);
    /* over the size still: worth another call only if this one got somewhere */
    uint64_t deleted = done->events + done->rollups + done->batches + done->strings;
    if (store_int_query(st, S_FREELIST, 0) > 0 ||
        (max_bytes > 0 && deleted > 0 && used_bytes(st) > (int64_t)max_bytes))
        *more = 1;
    return 0;
}

void mesh_store_counters(struct mesh_store *st, struct mesh_store_counters *out)
{
    *out = st->counters;
    out->db_bytes = (uint64_t)(store_int_query(st, S_PAGE_COUNT, 0) *
                               store_int_query(st, S_PAGE_SIZE, 4096));
}
