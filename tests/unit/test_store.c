/* Unit tests for store/: open/create/refuse, de-duplication, stat and top
 * against hand-computed numbers and against stat/ and top/ on the same
 * events, events(), retention, crash durability, SQL injection, file modes.
 * Ingest rate and Stat latency are printed for information, never checked. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/hist.h"
#include "stat/stat.h"
#include "tap/tap.h"
#include "store.h"
#include "test.h"
#include "top/top.h"

static char dir[] = "/tmp/mesh-store-test-XXXXXX";
static uint64_t fake_now;
static uint64_t clock_fake(void) { return fake_now; }

#define B 1700000000ull /* a second 20 s past a minute */
#define US(sec) ((uint64_t)(sec) * 1000000u)

static const char *path_of(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void rm_db(const char *path)
{
    char name[600];
    const char *suf[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "%s%s", path, suf[i]);
        unlink(name);
    }
}

static uint64_t rnd(uint64_t n);

static struct mesh_store *open_ok(const char *path, uint64_t flush_us)
{
    struct mesh_store_opts o;
    struct mesh_store *st = NULL;
    char err[256] = "";
    mesh_store_opts_init(&o);
    o.now_us = clock_fake;
    o.rollup_flush_us = flush_us;
    int rv = mesh_store_open(path, &o, &st, err, sizeof(err));
    CHECK_EQ_INT(rv, 0);
    if (rv != 0)
        fprintf(stderr, "open: %s\n", err);
    return st;
}

static const char *authority_of(const char *deploy)
{
    static const char *const names[][2] = {
        {"web", "web-svc.emojivoto:80"}, {"voting", "voting-svc.emojivoto:8080"},
        {"emoji", "emoji-svc.emojivoto:8080"}, {"vote-bot", "vote-bot.emojivoto:80"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (deploy && strcmp(deploy, names[i][0]) == 0)
            return names[i][1];
    return NULL;
}

static const char *pod_of(const char *deploy)
{
    static const char *const names[][2] = {
        {"web", "web-0"}, {"voting", "voting-0"}, {"emoji", "emoji-0"}, {"vote-bot", "vote-bot-0"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (deploy && strcmp(deploy, names[i][0]) == 0)
            return names[i][1];
    return NULL;
}

static struct mesh_evt ev(uint64_t ts, enum mesh_direction d, const char *from, const char *to,
                          const char *path, int status, int grpc, int64_t lat, const char *id)
{
    struct mesh_evt e;
    mesh_evt_init(&e);
    e.ts_us = ts;
    e.direction = d;
    e.src = "10.0.0.1:40000";
    e.dst = "10.0.0.2:8080";
    e.src_labels.ns = from ? "emojivoto" : NULL;
    e.src_labels.deploy = from;
    e.src_labels.pod = pod_of(from);
    e.dst_labels.ns = to ? "emojivoto" : NULL;
    e.dst_labels.deploy = to;
    e.dst_labels.pod = pod_of(to);
    e.proto = grpc >= 0 ? MESH_PROTO_GRPC : MESH_PROTO_HTTP1;
    e.method = "POST";
    e.scheme = "http";
    e.authority = authority_of(to);
    e.path = path;
    e.status = status;
    e.grpc_status = grpc;
    e.latency_us = lat;
    e.duration_us = lat >= 0 ? lat + 100 : -1;
    e.req_bytes = 10;
    e.rsp_bytes = 100;
    e.id = id;
    return e;
}

static int64_t scalar(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -999;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return v;
}

static void exec_raw(const char *path, const char *sql)
{
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static int same_bytes(const char *path, const char *want, size_t wantlen)
{
    size_t len;
    char *have = slurp(path, &len);
    int same = have != NULL && len == wantlen && memcmp(have, want, len) == 0;
    free(have);
    return same;
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int file_mode(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

static const struct mesh_store_stat_row *find_row(const struct mesh_store_stat_result *r,
                                                  enum mesh_rtype type, const char *name)
{
    for (size_t i = 0; i < r->nrows; i++)
        if (r->rows[i].type == type && strcmp(r->rows[i].name, name) == 0)
            return &r->rows[i];
    return NULL;
}

static uint64_t stat_total(struct mesh_store *st, struct mesh_store_window w, uint64_t now)
{
    struct mesh_resource res = {MESH_RT_NS, NULL, NULL};
    struct mesh_store_stat_req req = {.resources = &res, .nresources = 1, .window = w};
    struct mesh_store_stat_result r;
    uint64_t total = 0;
    CHECK_EQ_INT(mesh_store_stat(st, &req, now, &r), 0);
    for (size_t i = 0; i < r.nrows; i++)
        total += r.rows[i].requests;
    mesh_store_stat_result_free(&r);
    return total;
}

static int count_cb(void *arg, const struct mesh_evt *e)
{
    (void)e;
    ++*(size_t *)arg;
    return 0;
}

static size_t count_events(struct mesh_store *st)
{
    size_t n = 0;
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 0, 0, count_cb, &n), 0);
    return n;
}

/* --- open, create, refuse ------------------------------------------------------- */

static void test_create_reopen(void)
{
    const char *path = path_of("create.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    CHECK_EQ_INT(file_mode(path), 0600);
    struct mesh_evt e = ev(US(B), MESH_DIR_INBOUND, "web", "voting", "/v", 200, 0, 1000, "1:1");
    size_t stored = 9;
    int dup = 9;
    CHECK_EQ_INT(mesh_store_ingest(st, "proxy-a", 1, &e, 1, &stored, &dup), 0);
    CHECK_EQ_INT(stored, 1);
    CHECK_EQ_INT(dup, 0);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    CHECK_EQ_INT(file_mode(wal), 0600); /* SQLite gives the WAL the main file's mode */
    mesh_store_close(st);

    CHECK_EQ_INT(scalar(path, "PRAGMA user_version"), MESH_STORE_SCHEMA_VERSION);
    CHECK_EQ_INT(scalar(path, "PRAGMA application_id"), MESH_STORE_APP_ID);
    CHECK_EQ_INT(scalar(path, "PRAGMA auto_vacuum"), 2); /* incremental */
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM events"), 1);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM rollup_1s"), 1);
    CHECK_EQ_INT(scalar(path, "SELECT value FROM meta WHERE key = 'rollup_row_id'"), 1);

    st = open_ok(path, 0);
    if (st == NULL)
        return;
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 1);
    CHECK_EQ_INT(mesh_store_ingest(st, "proxy-a", 1, &e, 1, &stored, &dup), 0);
    CHECK_EQ_INT(dup, 1); /* de-duplication survives a reopen */
    struct mesh_store_counters c;
    mesh_store_counters(st, &c);
    CHECK_EQ_INT(c.events, 0);
    CHECK_EQ_INT(c.duplicates, 1);
    CHECK(c.db_bytes > 0);
    mesh_store_close(st);

    /* an existing empty file (touch mesh.db) becomes a store */
    const char *empty = path_of("empty.db");
    int fd = open(empty, O_CREAT | O_WRONLY, 0600);
    close(fd);
    st = open_ok(empty, 0);
    mesh_store_close(st);
    CHECK_EQ_INT(scalar(empty, "PRAGMA user_version"), MESH_STORE_SCHEMA_VERSION);

    /* read-only: a missing file is an error, not a new store */
    struct mesh_store_opts o;
    mesh_store_opts_init(&o);
    o.readonly = 1;
    char err[256] = "";
    CHECK_EQ_INT(mesh_store_open(path_of("missing.db"), &o, &st, err, sizeof(err)), MESH_EIO);
    CHECK(!exists(path_of("missing.db")));
    CHECK_EQ_INT(mesh_store_open(path, &o, &st, err, sizeof(err)), 0);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 1);
    CHECK_EQ_INT(mesh_store_ingest(st, "x", 1, &e, 1, &stored, &dup), MESH_EINVAL);
    mesh_store_close(st);
}

static void test_future_version(void)
{
    const char *path = path_of("future.db");
    struct mesh_store *st = open_ok(path, 0);
    mesh_store_close(st);
    exec_raw(path, "PRAGMA user_version = 99");
    size_t len;
    char *before = slurp(path, &len);
    char err[256] = "";
    CHECK_EQ_INT(mesh_store_open(path, NULL, &st, err, sizeof(err)), MESH_ENOTSUP);
    CHECK(st == NULL);
    CHECK(strstr(err, "newer") != NULL);
    CHECK(strstr(err, path) == err); /* "PATH: ..." */
    CHECK(same_bytes(path, before, len));
    free(before);
}

static void test_refuse_foreign(void)
{
    char err[256] = "";
    struct mesh_store *st = NULL;
    char wal[600];

    /* not a database at all */
    const char *text = path_of("notes.txt");
    FILE *f = fopen(text, "wb");
    for (int i = 0; i < 300; i++)
        fprintf(f, "line %d: this is not a database, do not overwrite me\n", i);
    fclose(f);
    size_t len;
    char *before = slurp(text, &len);
    CHECK_EQ_INT(mesh_store_open(text, NULL, &st, err, sizeof(err)), MESH_EFORMAT);
    CHECK(strstr(err, "not a SQLite database") != NULL);
    CHECK(same_bytes(text, before, len));
    snprintf(wal, sizeof(wal), "%s-wal", text);
    CHECK(!exists(wal));
    free(before);

    /* some other application's database */
    const char *other = path_of("other.db");
    exec_raw(other, "CREATE TABLE accounts (id INTEGER, secret TEXT); "
                    "INSERT INTO accounts VALUES (1, 'x');");
    before = slurp(other, &len);
    CHECK_EQ_INT(mesh_store_open(other, NULL, &st, err, sizeof(err)), MESH_EFORMAT);
    CHECK(strstr(err, "not a mesh store") != NULL);
    CHECK(same_bytes(other, before, len));
    free(before);

    /* a mesh store whose pages were overwritten */
    const char *bad = path_of("corrupt.db");
    fake_now = US(B);
    st = open_ok(bad, 0);
    struct mesh_evt evts[200];
    char paths[200][32];
    for (int i = 0; i < 200; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/path/%d", i);
        evts[i] = ev(US(B) + (uint64_t)i * 1000, MESH_DIR_INBOUND, "web", "voting", paths[i], 200,
                     0, 100 + i, "1:1");
    }
    CHECK_EQ_INT(mesh_store_ingest(st, "p", 1, evts, 200, NULL, NULL), 0);
    mesh_store_close(st);
    st = NULL;
    before = slurp(bad, &len);
    CHECK(len > 8 * 4096);
    memset(before + 3 * 4096, 0xa5, 4 * 4096); /* pages 4..7: b-tree pages */
    f = fopen(bad, "wb");
    fwrite(before, 1, len, f);
    fclose(f);
    struct mesh_store_opts o;
    mesh_store_opts_init(&o);
    o.quick_check = 1;
    int rv = mesh_store_open(bad, &o, &st, err, sizeof(err));
    CHECK_EQ_INT(rv, MESH_EFORMAT);
    CHECK(strstr(err, "corrupt") != NULL || strstr(err, "malformed") != NULL);
    CHECK(same_bytes(bad, before, len));
    mesh_store_close(st);

    /* a damaged header: SQLite no longer sees a database */
    memcpy(before, "SQLite format 9", 15);
    f = fopen(bad, "wb");
    fwrite(before, 1, len, f);
    fclose(f);
    CHECK_EQ_INT(mesh_store_open(bad, NULL, &st, err, sizeof(err)), MESH_EFORMAT);
    CHECK(same_bytes(bad, before, len));
    free(before);
}

/* --- ingest --------------------------------------------------------------------- */

static void test_duplicates(void)
{
    const char *path = path_of("dup.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    struct mesh_evt e[3];
    for (int i = 0; i < 3; i++)
        e[i] = ev(US(B) + (uint64_t)i, MESH_DIR_INBOUND, "web", "voting", "/v", 200, 0, 100, "1:1");
    size_t stored;
    int dup;
    CHECK_EQ_INT(mesh_store_ingest(st, "a", 1, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(stored, 3);
    CHECK_EQ_INT(mesh_store_ingest(st, "a", 1, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(stored, 0);
    CHECK_EQ_INT(dup, 1);
    CHECK_EQ_INT(mesh_store_ingest(st, "a", 2, e, 2, &stored, &dup), 0);
    CHECK_EQ_INT(stored, 2);
    CHECK_EQ_INT(mesh_store_ingest(st, "b", 1, e, 1, &stored, &dup), 0); /* another sender */
    CHECK_EQ_INT(dup, 0);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 6);

    /* grouped: one transaction, a duplicate inside it, acks after commit */
    CHECK_EQ_INT(mesh_store_begin(st), 0);
    CHECK_EQ_INT(mesh_store_in_transaction(st), 1);
    CHECK_EQ_INT(mesh_store_ingest(st, "c", 1, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "c", 2, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "c", 1, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(dup, 1);
    CHECK_EQ_INT(mesh_store_begin(st), MESH_EINVAL);
    CHECK_EQ_INT(mesh_store_commit(st), 0);
    CHECK_EQ_INT(mesh_store_commit(st), MESH_EINVAL);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 12);

    /* a rolled-back group leaves nothing, not even its de-dup records */
    CHECK_EQ_INT(mesh_store_begin(st), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "d", 1, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(mesh_store_flush(st), 0); /* rollups written inside the group, then undone */
    CHECK_EQ_INT(mesh_store_rollback(st), 0);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 12);
    CHECK_EQ_INT(mesh_store_ingest(st, "d", 1, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(dup, 0);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 15);
    CHECK_EQ_INT(count_events(st), 15);

    struct mesh_store_counters c;
    mesh_store_counters(st, &c);
    CHECK_EQ_INT(c.events, 15);
    CHECK_EQ_INT(c.batches, 6);
    CHECK_EQ_INT(c.duplicates, 2);
    CHECK_EQ_INT(c.rollbacks, 1);
    mesh_store_close(st);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM batches"), 6);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM rollup_1m"), 15);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM route_10s"), 15);
}

/* A committed batch survives the process being killed, rollups included
 * (rebuilt from raw rows at open); an uncommitted one leaves no trace. */
static void test_crash(void)
{
    const char *path = path_of("crash.db");
    struct mesh_evt e[4];
    for (int i = 0; i < 4; i++)
        e[i] = ev(US(B) + (uint64_t)i, MESH_DIR_INBOUND, "web", "voting", "/v", 200, 0, 100, "1:1");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct mesh_store_opts o;
        struct mesh_store *st;
        mesh_store_opts_init(&o);
        o.rollup_flush_us = 3600ull * 1000000; /* rollups not yet written at the kill */
        if (mesh_store_open(path, &o, &st, NULL, 0) != 0 ||
            mesh_store_ingest(st, "a", 1, e, 4, NULL, NULL) != 0 || mesh_store_begin(st) != 0 ||
            mesh_store_ingest(st, "a", 2, e, 3, NULL, NULL) != 0)
            _exit(1);
        kill(getpid(), SIGKILL);
        _exit(2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM rollup_1s"), 0);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 4);
    size_t stored;
    int dup;
    CHECK_EQ_INT(mesh_store_ingest(st, "a", 1, e, 4, &stored, &dup), 0);
    CHECK_EQ_INT(dup, 1);
    CHECK_EQ_INT(mesh_store_ingest(st, "a", 2, e, 3, &stored, &dup), 0);
    CHECK_EQ_INT(dup, 0);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 7);
    mesh_store_close(st);
}

/* The disk fills up (RLIMIT_FSIZE) at random points of ingest, rollup
 * writes and commits, with a cache small enough that pages spill in the
 * middle of statements: every failure rolls back cleanly, nothing that was
 * acknowledged is lost, nothing is counted twice, and once there is room
 * again the same batches go in. In a child: the limit is per process. */
static int disk_full_child(const char *path)
{
    struct mesh_store_opts o;
    struct mesh_store *st;
    mesh_store_opts_init(&o);
    o.now_us = clock_fake;
    o.cache_kib = 64;
    fake_now = US(B);
    if (mesh_store_open(path, &o, &st, NULL, 0) != 0)
        return 10;
    signal(SIGXFSZ, SIG_IGN);
    static struct mesh_evt e[400];
    static char paths[400][40], ids[400][16];
    uint64_t acked = 0, failures = 0, seq = 0;
    struct rlimit unlimited;
    getrlimit(RLIMIT_FSIZE, &unlimited);
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < 400; i++) {
            snprintf(paths[i], sizeof(paths[i]), "/p/%d", (round * 7 + i) % 300);
            snprintf(ids[i], sizeof(ids[i]), "%d:%d", i % 40, round);
            e[i] = ev(US(B + round * 5) + (uint64_t)i * 10000, MESH_DIR_INBOUND, "web", "voting",
                      paths[i], 200, i % 9 == 0 ? 2 : 0, 100 + i, ids[i]);
        }
        /* room for a little more than what is there now, in most rounds */
        struct stat sb;
        char wal[600];
        snprintf(wal, sizeof(wal), "%s-wal", path);
        off_t have = stat(wal, &sb) == 0 ? sb.st_size : 0;
        if (stat(path, &sb) == 0 && sb.st_size > have)
            have = sb.st_size;
        struct rlimit lim = unlimited;
        if (round % 3 != 2)
            lim.rlim_cur = (rlim_t)have + (rlim_t)(rnd(200) * 1024);
        setrlimit(RLIMIT_FSIZE, &lim);
        fake_now += US(2); /* every commit also writes rollups */
        /* 4 batches, grouped in one transaction or one transaction each;
         * |done| of them acknowledged */
        int grouped = round % 2, rv = 0, done = 0;
        if (grouped) {
            rv = mesh_store_begin(st);
            for (int b = 0; b < 4 && rv == 0; b++)
                rv = mesh_store_ingest(st, "s", seq + 1 + (uint64_t)b, e + b * 100, 100, NULL, NULL);
            if (rv == 0)
                rv = mesh_store_commit(st);
            else if (mesh_store_in_transaction(st))
                return 11; /* a failed ingest ends the group */
            done = rv == 0 ? 4 : 0;
        } else {
            for (; done < 4; done++)
                if ((rv = mesh_store_ingest(st, "s", seq + 1 + (uint64_t)done, e + done * 100, 100,
                                            NULL, NULL)) != 0)
                    break;
        }
        failures += rv != 0;
        /* room again: the sender resends what was not acknowledged */
        setrlimit(RLIMIT_FSIZE, &unlimited);
        for (int b = done; b < 4; b++) {
            int dup = 1;
            if (mesh_store_ingest(st, "s", seq + 1 + (uint64_t)b, e + b * 100, 100, NULL, &dup) != 0)
                return 12;
            if (dup)
                return 13; /* it had been stored after all */
        }
        seq += 4;
        acked += 400;
    }
    setrlimit(RLIMIT_FSIZE, &unlimited);
    if (failures == 0)
        return 14; /* the test did not test anything */
    uint64_t total = stat_total(st, (struct mesh_store_window){0, 0, 0}, 0);
    size_t raw = count_events(st);
    mesh_store_close(st);
    printf("info: disk full %llu times; %llu events acknowledged, %zu stored, %llu in rollups\n",
           (unsigned long long)failures, (unsigned long long)acked, raw,
           (unsigned long long)total);
    return total == acked && raw == acked ? 0 : 15;
}

static void test_disk_full(void)
{
    const char *path = path_of("full.db");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int rv = disk_full_child(path);
        fflush(NULL);
        _exit(rv);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ_INT(WEXITSTATUS(status), 0);
    /* and the file is sound */
    CHECK_EQ_INT(scalar(path, "PRAGMA integrity_check") == -999, 0);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM rollup_1s"),
                 scalar(path, "SELECT count(*) FROM events"));
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM route_1m"),
                 scalar(path, "SELECT count(*) FROM events"));
}

/* A reader in another connection sees rows the writer has not rolled up
 * yet, once, and still once after the writer's flush. */
static void test_readonly_reader(void)
{
    const char *path = path_of("reader.db");
    fake_now = US(B);
    struct mesh_store *w = open_ok(path, 3600ull * 1000000);
    if (w == NULL)
        return;
    struct mesh_evt e[5];
    for (int i = 0; i < 5; i++)
        e[i] = ev(US(B) + (uint64_t)i, MESH_DIR_INBOUND, "web", "voting", "/v", 200, 0, 100, "1:1");
    CHECK_EQ_INT(mesh_store_ingest(w, "a", 1, e, 5, NULL, NULL), 0);
    struct mesh_store_opts o;
    struct mesh_store *r = NULL;
    mesh_store_opts_init(&o);
    o.readonly = 1;
    CHECK_EQ_INT(mesh_store_open(path, &o, &r, NULL, 0), 0);
    if (r == NULL) {
        mesh_store_close(w);
        return;
    }
    CHECK_EQ_INT(stat_total(r, (struct mesh_store_window){0, 0, 0}, 0), 5);
    CHECK_EQ_INT(mesh_store_flush(w), 0);
    CHECK_EQ_INT(stat_total(r, (struct mesh_store_window){0, 0, 0}, 0), 5);
    CHECK_EQ_INT(mesh_store_ingest(w, "a", 2, e, 2, NULL, NULL), 0);
    CHECK_EQ_INT(stat_total(r, (struct mesh_store_window){0, 0, 0}, 0), 7);
    struct mesh_store_top_req tq;
    memset(&tq, 0, sizeof(tq));
    struct mesh_store_top_result tr;
    CHECK_EQ_INT(mesh_store_top(r, &tq, 0, &tr), 0);
    CHECK_EQ_INT(tr.nrows, 1);
    if (tr.nrows == 1)
        CHECK_EQ_INT(tr.rows[0].count, 7);
    mesh_store_top_result_free(&tr);
    mesh_store_close(r);
    mesh_store_close(w);
}

/* --- stat and top by hand ---------------------------------------------------------- */

/* The emojivoto story in 26 events, one second apart from B:
 *   web -> voting, seen inbound (by voting's proxy) and outbound (by web's):
 *     10 requests, latencies 1..10 ms, grpc-status 2 on two of them, 3 connections
 *   vote-bot -> web, replayed from a capture: 4 requests, one HTTP 500
 *   web -> emoji, inbound: 2 requests, one without a response (a failure) */
static void load_story(struct mesh_store *st)
{
    struct mesh_evt in[10], out[10], bot[4], emoji[2];
    static const char *const in_ids[10] = {"1:1", "1:3", "1:5", "2:1", "2:3",
                                           "2:5", "3:1", "3:3", "3:5", "3:7"};
    static const char *const out_ids[10] = {"7:1", "7:3", "7:5", "7:7", "7:9",
                                            "7:11", "7:13", "7:15", "7:17", "7:19"};
    for (int i = 0; i < 10; i++) {
        const char *path = i % 2 ? "/emojivoto.v1.VotingService/VotePizza"
                                 : "/emojivoto.v1.VotingService/VoteDoughnut";
        int grpc = i == 3 || i == 8 ? 2 : 0;
        in[i] = ev(US(B + i), MESH_DIR_INBOUND, "web", "voting", path, 200, grpc,
                   1000 * (i + 1), in_ids[i]);
        out[i] = in[i];
        out[i].direction = MESH_DIR_OUTBOUND;
        out[i].id = out_ids[i];
    }
    for (int i = 0; i < 4; i++) {
        bot[i] = ev(US(B + 10 + i), MESH_DIR_REPLAY, "vote-bot", "web", "/api/vote", 200, -1,
                    500 + 100 * i, "4:1");
        bot[i].method = "GET";
    }
    bot[2].status = 500;
    emoji[0] = ev(US(B + 14), MESH_DIR_INBOUND, "web", "emoji",
                  "/emojivoto.v1.EmojiService/ListAll", 200, 0, 300, "5:1");
    emoji[1] = ev(US(B + 15), MESH_DIR_INBOUND, "web", "emoji",
                  "/emojivoto.v1.EmojiService/ListAll", -1, -1, -1, "5:3");
    CHECK_EQ_INT(mesh_store_ingest(st, "voting-proxy", 1, in, 10, NULL, NULL), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "web-proxy", 1, out, 10, NULL, NULL), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "replay", 1, bot, 4, NULL, NULL), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "emoji-proxy", 1, emoji, 2, NULL, NULL), 0);
}

static int within_1pct(int64_t have, int64_t want)
{
    return have >= 0 && llabs(have - want) * 100 <= want;
}

static void test_stat_story(void)
{
    const char *path = path_of("story.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    load_story(st);
    struct mesh_resource deploy = {MESH_RT_DEPLOY, NULL, NULL};
    struct mesh_store_stat_req req = {.resources = &deploy, .nresources = 1};
    struct mesh_store_stat_result r;

    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 3);
    CHECK_EQ_INT(r.since_us, US(B));
    CHECK_EQ_INT(r.until_us, US(B + 16));
    const struct mesh_store_stat_row *voting = find_row(&r, MESH_RT_DEPLOY, "voting");
    CHECK(voting != NULL);
    if (voting != NULL) {
        CHECK_EQ_STR(voting->ns, "emojivoto");
        CHECK_EQ_INT(voting->requests, 10); /* the outbound copies are not counted again */
        CHECK_EQ_INT(voting->failures, 2);
        CHECK(within_1pct(voting->latency_p50_us, 5000));
        CHECK_EQ_INT(voting->latency_p95_us, 10000); /* the max: clamped exactly */
        CHECK_EQ_INT(voting->latency_p99_us, 10000);
        CHECK_EQ_INT(voting->tcp_conn, 3);
        CHECK_EQ_INT(voting->tcp_conn_estimated, 0);
        CHECK(fabs(voting->rps - 10.0 / 16) < 1e-9);
        CHECK(fabs(voting->read_bytes_per_sec - 100.0 / 16) < 1e-9);
        CHECK(fabs(voting->write_bytes_per_sec - 1000.0 / 16) < 1e-9);
    }
    const struct mesh_store_stat_row *web = find_row(&r, MESH_RT_DEPLOY, "web");
    CHECK(web != NULL);
    if (web != NULL) {
        CHECK_EQ_INT(web->requests, 4);
        CHECK_EQ_INT(web->failures, 1);
        CHECK(within_1pct(web->latency_p50_us, 600)); /* 600's bucket: [600, 607] */
        CHECK_EQ_INT(web->tcp_conn, 1);
    }
    const struct mesh_store_stat_row *emoji = find_row(&r, MESH_RT_DEPLOY, "emoji");
    CHECK(emoji != NULL);
    if (emoji != NULL) {
        CHECK_EQ_INT(emoji->requests, 2);
        CHECK_EQ_INT(emoji->failures, 1);
        CHECK_EQ_INT(emoji->latency_p50_us, 300); /* one latency: min = max */
        CHECK_EQ_INT(emoji->tcp_conn, 1); /* "5:1" and "5:3": one connection */
    }
    /* sorted by type, namespace, name */
    if (r.nrows == 3) {
        CHECK_EQ_STR(r.rows[0].name, "emoji");
        CHECK_EQ_STR(r.rows[2].name, "web");
    }
    mesh_store_stat_result_free(&r);

    /* --to deploy/voting: keyed by the source, outbound (and replay) events */
    req.to = (struct mesh_resource){MESH_RT_DEPLOY, "voting", NULL};
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 1);
    if (r.nrows == 1) {
        CHECK_EQ_STR(r.rows[0].name, "web");
        CHECK_EQ_INT(r.rows[0].requests, 10);
        CHECK_EQ_INT(r.rows[0].failures, 2);
        CHECK_EQ_INT(r.rows[0].tcp_conn, 1); /* web's proxy used one connection */
    }
    mesh_store_stat_result_free(&r);

    /* --from deploy/vote-bot: only the replayed requests */
    req.to.type = MESH_RT_NONE;
    req.from = (struct mesh_resource){MESH_RT_DEPLOY, "vote-bot", NULL};
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 1);
    if (r.nrows == 1) {
        CHECK_EQ_STR(r.rows[0].name, "web");
        CHECK_EQ_INT(r.rows[0].requests, 4);
    }
    mesh_store_stat_result_free(&r);

    /* several resources and types at once; au rows have no namespace */
    struct mesh_resource many[3] = {{MESH_RT_NS, NULL, NULL},
                                    {MESH_RT_AUTH, "voting-svc.emojivoto:8080", NULL},
                                    {MESH_RT_POD, "emoji-0", "emojivoto"}};
    struct mesh_store_stat_req req2 = {.resources = many, .nresources = 3};
    CHECK_EQ_INT(mesh_store_stat(st, &req2, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 3);
    if (r.nrows == 3) {
        CHECK_EQ_INT(r.rows[0].type, MESH_RT_NS);
        CHECK_EQ_INT(r.rows[0].requests, 16);
        CHECK_EQ_INT(r.rows[1].type, MESH_RT_POD);
        CHECK_EQ_INT(r.rows[1].requests, 2);
        CHECK_EQ_INT(r.rows[2].type, MESH_RT_AUTH);
        CHECK_EQ_STR(r.rows[2].ns, "");
        CHECK_EQ_INT(r.rows[2].requests, 10);
    }
    mesh_store_stat_result_free(&r);

    /* windows: [B+5, B+8) holds voting's seconds 5, 6 and 7 */
    req.from.type = MESH_RT_NONE;
    req.window = (struct mesh_store_window){0, US(B + 5), US(B + 8)};
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    voting = find_row(&r, MESH_RT_DEPLOY, "voting");
    CHECK(voting != NULL && voting->requests == 3 && voting->failures == 0);
    CHECK(voting != NULL && fabs(voting->rps - 1.0) < 1e-9);
    CHECK(voting != NULL && within_1pct(voting->latency_p50_us, 7000));
    /* and web, which only calls voting in that window: meshed, no requests */
    CHECK_EQ_INT(r.nrows, 2);
    web = find_row(&r, MESH_RT_DEPLOY, "web");
    CHECK(web != NULL && web->requests == 0 && web->latency_p50_us < 0);
    mesh_store_stat_result_free(&r);
    /* -t 3s at B+10.5: the seconds B+8, B+9 and B+10 */
    req.window = (struct mesh_store_window){US(3), 0, 0};
    CHECK_EQ_INT(mesh_store_stat(st, &req, US(B + 10) + 500000, &r), 0);
    CHECK_EQ_INT(r.since_us, US(B + 8));
    CHECK_EQ_INT(r.until_us, US(B + 11));
    voting = find_row(&r, MESH_RT_DEPLOY, "voting");
    CHECK(voting != NULL && voting->requests == 2 && voting->failures == 1);
    web = find_row(&r, MESH_RT_DEPLOY, "web");
    CHECK(web != NULL && web->requests == 1);
    mesh_store_stat_result_free(&r);
    /* an open end: from B+12 to the last data */
    req.window = (struct mesh_store_window){0, US(B + 12), 0};
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.until_us, US(B + 16));
    CHECK_EQ_INT(r.nrows, 2);
    mesh_store_stat_result_free(&r);
    mesh_store_close(st);
}

static void test_top_story(void)
{
    const char *path = path_of("story.db"); /* written by test_stat_story */
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    struct mesh_store_top_req req;
    struct mesh_store_top_result r;
    memset(&req, 0, sizeof(req));
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.from_raw, 0);
    CHECK_EQ_INT(r.nrows, 4);
    if (r.nrows == 4) {
        /* 5, 5, 4, 2 requests; ties by path */
        CHECK_EQ_STR(r.rows[0].path, "/emojivoto.v1.VotingService/VoteDoughnut");
        CHECK_EQ_STR(r.rows[0].source, "web");
        CHECK_EQ_STR(r.rows[0].destination, "voting");
        CHECK_EQ_STR(r.rows[0].method, "POST");
        CHECK_EQ_INT(r.rows[0].count, 5);
        CHECK_EQ_INT(r.rows[0].failures, 1);   /* i = 8 */
        CHECK_EQ_INT(r.rows[0].best_us, 1000);
        CHECK_EQ_INT(r.rows[0].worst_us, 9000);
        CHECK_EQ_INT(r.rows[0].last_us, 9000); /* the latest request's */
        CHECK_EQ_STR(r.rows[1].path, "/emojivoto.v1.VotingService/VotePizza");
        CHECK_EQ_INT(r.rows[1].failures, 1);   /* i = 3 */
        CHECK_EQ_INT(r.rows[1].last_us, 10000);
        CHECK_EQ_STR(r.rows[2].source, "vote-bot");
        CHECK_EQ_STR(r.rows[2].destination, "web");
        CHECK_EQ_STR(r.rows[2].method, "GET");
        CHECK_EQ_INT(r.rows[2].count, 4);
        CHECK_EQ_INT(r.rows[2].last_us, 800);
        CHECK_EQ_INT(r.rows[3].count, 2);
        CHECK_EQ_INT(r.rows[3].best_us, 300);
        CHECK_EQ_INT(r.rows[3].worst_us, 300);
    }
    mesh_store_top_result_free(&r);

    req.limit = 2;
    req.hide_sources = 1;
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 2);
    if (r.nrows == 2)
        CHECK_EQ_STR(r.rows[0].source, "-");
    mesh_store_top_result_free(&r);

    /* filters top/ understands: resource, path prefix; status from raw rows */
    memset(&req, 0, sizeof(req));
    req.filter.to = (struct mesh_resource){MESH_RT_DEPLOY, "voting", NULL};
    req.filter.path_prefix = "/emojivoto.v1.VotingService/VoteP";
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 1);
    if (r.nrows == 1)
        CHECK_EQ_INT(r.rows[0].count, 5);
    mesh_store_top_result_free(&r);
    memset(&req, 0, sizeof(req));
    req.filter.status_class = 5;
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.from_raw, 1);
    CHECK_EQ_INT(r.nrows, 1);
    if (r.nrows == 1) {
        CHECK_EQ_STR(r.rows[0].path, "/api/vote");
        CHECK_EQ_INT(r.rows[0].count, 1);
        CHECK_EQ_INT(r.rows[0].last_us, 700);
    }
    mesh_store_top_result_free(&r);
    memset(&req, 0, sizeof(req));
    req.filter.min_latency_us = 9000;
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 2); /* i = 8 and 9 */
    mesh_store_top_result_free(&r);
    /* top's windows are 10-second steps: [B+1, B+9) is [B+10, B+10) */
    memset(&req, 0, sizeof(req));
    req.window = (struct mesh_store_window){0, US(B + 1), US(B + 9)};
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 0);
    mesh_store_top_result_free(&r);
    req.window = (struct mesh_store_window){0, US(B + 1), US(B + 11)};
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.since_us, US(B + 10));
    CHECK_EQ_INT(r.until_us, US(B + 20));
    CHECK_EQ_INT(r.nrows, 2); /* vote-bot's 4 and emoji's 2, in [B+10, B+20) */
    mesh_store_top_result_free(&r);
    mesh_store_close(st);
}

/* Sources and destinations without labels fall back as top/ does. */
static void test_top_fallbacks(void)
{
    const char *path = path_of("fallback.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    struct mesh_evt e[4];
    e[0] = ev(US(B), MESH_DIR_INBOUND, NULL, NULL, "/a", 200, -1, 10, "1:1");
    e[0].src = "10.1.2.3:5555";
    e[0].authority = "web-svc:80";
    e[1] = e[0];
    e[1].src = "10.1.2.3:6666"; /* another client port: the same source */
    e[2] = ev(US(B + 1), MESH_DIR_INBOUND, NULL, NULL, "/b", 200, -1, 10, "1:3");
    e[2].src = "[fe80::1]:4000";
    e[2].dst = "10.0.0.9:8080";
    e[3] = e[2];
    e[3].src = NULL;
    CHECK_EQ_INT(mesh_store_ingest(st, "p", 1, e, 4, NULL, NULL), 0);
    struct mesh_store_top_req req;
    struct mesh_store_top_result r;
    memset(&req, 0, sizeof(req));
    CHECK_EQ_INT(mesh_store_top(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 3);
    if (r.nrows == 3) {
        CHECK_EQ_STR(r.rows[0].source, "10.1.2.3");
        CHECK_EQ_STR(r.rows[0].destination, "web-svc:80");
        CHECK_EQ_INT(r.rows[0].count, 2);
        CHECK_EQ_STR(r.rows[1].source, "");
        CHECK_EQ_STR(r.rows[2].source, "fe80::1");
        CHECK_EQ_STR(r.rows[2].destination, "10.0.0.9:8080");
    }
    mesh_store_top_result_free(&r);
    mesh_store_close(st);
}

/* --- stat and top against stat/ and top/ on random events -------------------------- */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(uint64_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state % n;
}

#define NRAND 4000
static struct mesh_evt rand_evts[NRAND];
static char rand_ids[NRAND][16];

static void make_random(void)
{
    static const char *const deploys[] = {"web", "voting", "emoji", "vote-bot", NULL};
    static const char *const paths[] = {"/a", "/b", "/c/d", "/api/vote", NULL};
    static const char *const methods[] = {"GET", "POST", NULL};
    static const char *const auths[] = {"web-svc:80", "voting-svc:8080", NULL};
    for (int i = 0; i < NRAND; i++) {
        struct mesh_evt *e = &rand_evts[i];
        mesh_evt_init(e);
        /* unique timestamps over ~7 minutes, so "last" is well defined */
        e->ts_us = US(B) + (uint64_t)i * 100000 + rnd(90000);
        e->direction = (enum mesh_direction)rnd(4);
        const char *from = deploys[rnd(5)], *to = deploys[rnd(5)];
        e->src_labels.ns = from ? (rnd(4) ? "emojivoto" : "other") : NULL;
        e->src_labels.deploy = from;
        e->src_labels.pod = from && rnd(2) ? pod_of(from) : NULL;
        e->dst_labels.ns = to ? "emojivoto" : NULL;
        e->dst_labels.deploy = to;
        e->dst_labels.pod = to ? pod_of(to) : NULL;
        e->src = rnd(2) ? "10.0.0.7:41000" : "10.0.0.8:41001";
        e->dst = "10.0.0.2:8080";
        e->authority = auths[rnd(3)];
        e->method = methods[rnd(3)];
        e->path = paths[rnd(5)];
        int kind = (int)rnd(10);
        e->status = kind == 0 ? -1 : kind == 1 ? 503 : kind == 2 ? 404 : 200;
        e->grpc_status = kind == 3 ? 2 : kind == 4 ? 0 : -1;
        e->latency_us = kind == 0 ? -1 : (int64_t)(rnd(3) == 0 ? rnd(200) : rnd(2000000));
        e->duration_us = kind == 0 ? -1 : e->latency_us + 5;
        e->req_bytes = rnd(1000);
        e->rsp_bytes = rnd(5000);
        snprintf(rand_ids[i], sizeof(rand_ids[i]), "%d:%d", (int)rnd(12), i);
        e->id = rand_ids[i];
    }
}

static const char *json_field(const char *line, const char *name, char *out, size_t len)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = strstr(line, key);
    if (p == NULL)
        return NULL;
    p += strlen(key);
    if (*p == '"') {
        const char *end = strchr(p + 1, '"');
        snprintf(out, len, "%.*s", (int)(end - p - 1), p + 1);
    } else {
        size_t n = strcspn(p, ",}");
        snprintf(out, len, "%.*s", (int)n, p);
    }
    return out;
}

static int64_t json_int(const char *line, const char *name)
{
    char v[64];
    if (json_field(line, name, v, sizeof(v)) == NULL || strcmp(v, "null") == 0)
        return -1;
    return strtoll(v, NULL, 10);
}

/* Splits mesh_stat/mesh_top JSON output into its row lines. */
static size_t json_rows(char *out, char **lines, size_t max)
{
    size_t n = 0;
    for (char *line = strtok(out, "\n"); line && n < max; line = strtok(NULL, "\n"))
        if (strncmp(line, " {", 2) == 0)
            lines[n++] = line;
    return n;
}

static void compare_stat(struct mesh_store *st, const struct mesh_store_stat_req *req,
                         int64_t s0, int64_t s1)
{
    struct mesh_stat_opts o;
    memset(&o, 0, sizeof(o));
    for (size_t i = 0; i < req->nresources; i++)
        o.res[i] = req->resources[i];
    o.nres = req->nresources;
    o.to = req->to;
    o.from = req->from;
    o.output = MESH_OUT_JSON;
    struct mesh_stat *ref = mesh_stat_new(&o);
    for (int i = 0; i < NRAND; i++) {
        int64_t sec = (int64_t)(rand_evts[i].ts_us / 1000000);
        if (sec >= s0 && sec < s1)
            mesh_stat_add(ref, &rand_evts[i]);
    }
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    mesh_stat_render(ref, f);
    fclose(f);
    mesh_stat_free(ref);
    char *lines[100];
    size_t n = json_rows(out, lines, 100);

    struct mesh_store_stat_req q = *req;
    q.window = (struct mesh_store_window){0, US(s0), US(s1)};
    struct mesh_store_stat_result r;
    CHECK_EQ_INT(mesh_store_stat(st, &q, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, n);
    CHECK(n > 0);
    for (size_t i = 0; i < n && i < r.nrows; i++) {
        const struct mesh_store_stat_row *row = &r.rows[i];
        char name[128], type[16];
        json_field(lines[i], "name", name, sizeof(name));
        json_field(lines[i], "type", type, sizeof(type));
        CHECK_EQ_STR(row->name, name);
        CHECK_EQ_STR(mesh_rtype_name(row->type), type);
        CHECK_EQ_INT(row->requests, json_int(lines[i], "requests"));
        CHECK_EQ_INT(row->failures, json_int(lines[i], "failures"));
        /* the same buckets merged in another order: the same percentiles */
        CHECK_EQ_INT(row->latency_p50_us, json_int(lines[i], "latency_p50_us"));
        CHECK_EQ_INT(row->latency_p95_us, json_int(lines[i], "latency_p95_us"));
        CHECK_EQ_INT(row->latency_p99_us, json_int(lines[i], "latency_p99_us"));
        /* stat/ counts connections by id; the store by sender and id:
         * the same here, one sender. Exact while rollup rows hold <= 32. */
        if (!row->tcp_conn_estimated)
            CHECK_EQ_INT(row->tcp_conn, json_int(lines[i], "tcp_conn"));
    }
    mesh_store_stat_result_free(&r);
    free(out);
}

static void compare_top(struct mesh_store *st, const struct mesh_store_top_req *req, int64_t s0,
                        int64_t s1)
{
    struct mesh_top_opts o;
    memset(&o, 0, sizeof(o));
    o.filter = req->filter;
    o.hide_sources = req->hide_sources;
    o.output = MESH_OUT_JSON;
    struct mesh_top *ref = mesh_top_new(&o);
    size_t nadded = 0;
    /* top's windows are whole 10-second steps */
    int64_t a0 = (s0 + 9) / 10 * 10, a1 = (s1 + 9) / 10 * 10;
    for (int i = 0; i < NRAND; i++) {
        int64_t sec = (int64_t)(rand_evts[i].ts_us / 1000000);
        if (sec >= a0 && sec < a1) {
            mesh_top_add(ref, &rand_evts[i]);
            nadded += rand_evts[i].direction != MESH_DIR_OUTBOUND &&
                      mesh_filter_match(&o.filter, &rand_evts[i]);
        }
    }
    char *out = NULL;
    size_t outlen = 0;
    static char *lines[2000];
    size_t n = 0;
    /* top/'s render hands qsort a NULL array when it has no rows (UB) */
    if (nadded > 0) {
        FILE *f = open_memstream(&out, &outlen);
        mesh_top_render(ref, f);
        fclose(f);
        n = json_rows(out, lines, 2000);
    }
    mesh_top_free(ref);

    struct mesh_store_top_req q = *req;
    q.window = (struct mesh_store_window){0, US(s0), US(s1)};
    struct mesh_store_top_result r;
    CHECK_EQ_INT(mesh_store_top(st, &q, 0, &r), 0);
    CHECK_EQ_INT(r.since_us, US(a0));
    CHECK_EQ_INT(r.nrows, n);
    int bad = 0;
    for (size_t i = 0; i < n && i < r.nrows && bad < 5; i++) {
        const struct mesh_store_top_row *row = &r.rows[i];
        /* the same order by count; rows top/ leaves tied (method) may swap */
        CHECK_EQ_INT(row->count, json_int(lines[i], "count"));
        size_t k;
        char v[4][128];
        for (k = 0; k < n; k++) {
            json_field(lines[k], "source", v[0], sizeof(v[0]));
            json_field(lines[k], "destination", v[1], sizeof(v[1]));
            json_field(lines[k], "method", v[2], sizeof(v[2]));
            json_field(lines[k], "path", v[3], sizeof(v[3]));
            if (strcmp(row->source, v[0]) == 0 && strcmp(row->destination, v[1]) == 0 &&
                strcmp(row->method, v[2]) == 0 && strcmp(row->path, v[3]) == 0)
                break;
        }
        int ok = k < n && row->count == (uint64_t)json_int(lines[k], "count") &&
                 row->failures == (uint64_t)json_int(lines[k], "failures") &&
                 row->best_us == json_int(lines[k], "best_us") &&
                 row->worst_us == json_int(lines[k], "worst_us") &&
                 row->last_us == json_int(lines[k], "last_us");
        CHECK(ok);
        if (!ok) {
            bad++;
            fprintf(stderr, "  top row %zu: store %s|%s|%s|%s %llu %llu %lld %lld %lld\n"
                            "  top/ says %s\n",
                    i, row->source, row->destination, row->method, row->path,
                    (unsigned long long)row->count, (unsigned long long)row->failures,
                    (long long)row->best_us, (long long)row->worst_us, (long long)row->last_us,
                    k < n ? lines[k] : "(no such row)");
        }
    }
    mesh_store_top_result_free(&r);
    free(out);
}

static void test_against_views(void)
{
    const char *path = path_of("random.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    make_random();
    /* batches of random sizes, timestamps shuffled across them a little */
    for (size_t i = 0, seq = 1; i < NRAND; seq++) {
        size_t n = 1 + rnd(300);
        if (n > NRAND - i)
            n = NRAND - i;
        fake_now += 300000; /* some flushes happen between batches, some not */
        CHECK_EQ_INT(mesh_store_ingest(st, "rand", seq, rand_evts + i, n, NULL, NULL), 0);
        i += n;
    }
    int64_t first = (int64_t)B, last = (int64_t)(rand_evts[NRAND - 1].ts_us / 1000000) + 1;
    /* whole range; seconds only; minutes plus edges; aligned minutes */
    int64_t windows[][2] = {{first, last}, {first + 3, first + 50}, {first + 17, first + 333},
                            {first + 40, first + 280}, {first + 100, first + 101}};
    struct mesh_resource res[] = {{MESH_RT_DEPLOY, NULL, NULL},
                                  {MESH_RT_NS, NULL, NULL},
                                  {MESH_RT_POD, NULL, "emojivoto"},
                                  {MESH_RT_AUTH, NULL, NULL}};
    for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
        struct mesh_store_stat_req req = {.resources = res, .nresources = 4};
        compare_stat(st, &req, windows[w][0], windows[w][1]);
        req.to = (struct mesh_resource){MESH_RT_DEPLOY, "voting", NULL};
        compare_stat(st, &req, windows[w][0], windows[w][1]);
        req.to.type = MESH_RT_NONE;
        req.from = (struct mesh_resource){MESH_RT_NS, "other", NULL};
        compare_stat(st, &req, windows[w][0], windows[w][1]);

        struct mesh_store_top_req tq;
        memset(&tq, 0, sizeof(tq));
        compare_top(st, &tq, windows[w][0], windows[w][1]);
        tq.hide_sources = 1;
        tq.filter.res = (struct mesh_resource){MESH_RT_DEPLOY, "web", NULL};
        compare_top(st, &tq, windows[w][0], windows[w][1]);
        memset(&tq, 0, sizeof(tq));
        tq.filter.path_prefix = "/c";
        tq.filter.method = "GET";
        compare_top(st, &tq, windows[w][0], windows[w][1]);
        memset(&tq, 0, sizeof(tq));
        tq.filter.status = 503;
        compare_top(st, &tq, windows[w][0], windows[w][1]);
        memset(&tq, 0, sizeof(tq));
        tq.filter.min_latency_us = 1000000;
        tq.filter.from = (struct mesh_resource){MESH_RT_NS, "emojivoto", NULL};
        compare_top(st, &tq, windows[w][0], windows[w][1]);
    }
    /* the 1m tables hold what the 1s tables hold */
    mesh_store_close(st);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM rollup_1s"), NRAND);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM rollup_1m"), NRAND);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM route_1m"), NRAND);
    CHECK_EQ_INT(scalar(path, "SELECT sum(lat_count) FROM route_1m"),
                 scalar(path, "SELECT count(latency_us) FROM events"));
    CHECK_EQ_INT(scalar(path, "SELECT sum(failures) FROM rollup_1m"),
                 scalar(path, "SELECT sum(failed) FROM events"));
}

/* Many connections: exact up to 32 per rollup row, then HyperLogLog. */
static void test_many_connections(void)
{
    const char *path = path_of("conns.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    static struct mesh_evt e[5000];
    static char ids[5000][16];
    for (int i = 0; i < 5000; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%d:1", i % 2000);
        e[i] = ev(US(B) + (uint64_t)i * 20000, MESH_DIR_INBOUND, "web", "voting", "/v", 200, 0,
                  100, ids[i]);
    }
    CHECK_EQ_INT(mesh_store_ingest(st, "p", 1, e, 5000, NULL, NULL), 0);
    struct mesh_resource deploy = {MESH_RT_DEPLOY, "voting", NULL};
    struct mesh_store_stat_req req = {.resources = &deploy, .nresources = 1};
    struct mesh_store_stat_result r;
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 1);
    if (r.nrows == 1) {
        CHECK_EQ_INT(r.rows[0].tcp_conn_estimated, 1);
        CHECK(fabs((double)r.rows[0].tcp_conn - 2000) < 2000 * 0.2);
        printf("info: 2000 connections estimated as %llu\n",
               (unsigned long long)r.rows[0].tcp_conn);
    }
    mesh_store_stat_result_free(&r);
    /* one second holds 50 requests on 50 connections: 50 is over 32 */
    req.window = (struct mesh_store_window){0, US(B + 1), US(B + 2)};
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    if (r.nrows == 1)
        CHECK(fabs((double)r.rows[0].tcp_conn - 50) <= 5);
    mesh_store_stat_result_free(&r);
    /* another sender, later: 200 requests on 20 connections, exact */
    for (int i = 0; i < 200; i++) {
        e[i].ts_us = US(B + 1000) + (uint64_t)i * 20000;
        e[i].id = ids[i % 20];
    }
    CHECK_EQ_INT(mesh_store_ingest(st, "q", 1, e, 200, NULL, NULL), 0);
    req.window = (struct mesh_store_window){0, US(B + 1000), US(B + 1010)};
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 1);
    if (r.nrows == 1) {
        CHECK_EQ_INT(r.rows[0].tcp_conn, 20);
        CHECK_EQ_INT(r.rows[0].tcp_conn_estimated, 0);
    }
    mesh_store_stat_result_free(&r);
    mesh_store_close(st);
}

/* --- events ---------------------------------------------------------------------- */

struct collected {
    uint64_t ts[64];
    char paths[64][64];
    size_t n;
    struct mesh_evt_copy first;
};

static int collect_cb(void *arg, const struct mesh_evt *e)
{
    struct collected *c = arg;
    if (c->n == 0)
        mesh_evt_copy(&c->first, e);
    if (c->n < 64) {
        c->ts[c->n] = e->ts_us;
        snprintf(c->paths[c->n], sizeof(c->paths[c->n]), "%s", e->path ? e->path : "(null)");
    }
    c->n++;
    return 0;
}

static void test_events(void)
{
    const char *path = path_of("events.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    /* out of order across batches: events() sorts by time */
    struct mesh_evt a[3], b[3];
    a[0] = ev(US(B + 5), MESH_DIR_INBOUND, "web", "voting", "/x/5", 200, 0, 5, "1:1");
    a[1] = ev(US(B + 1), MESH_DIR_INBOUND, "web", "voting", "/x/1", 200, 0, 1, "1:3");
    a[2] = ev(US(B + 3), MESH_DIR_OUTBOUND, "web", "voting", "/y/3", 200, 0, 3, "1:5");
    b[0] = ev(US(B + 4), MESH_DIR_INBOUND, "web", "voting", "/x/4", 200, 0, 4, "2:1");
    b[1] = ev(US(B + 2), MESH_DIR_INBOUND, "web", "voting", "/y/2", 503, -1, 2, "2:3");
    b[2] = ev(US(B + 6), MESH_DIR_INBOUND, "web", "voting", "/x/6", 200, 0, 6, "2:5");
    CHECK_EQ_INT(mesh_store_ingest(st, "s", 1, a, 3, NULL, NULL), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "s", 2, b, 3, NULL, NULL), 0);

    struct collected c;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 6);
    for (size_t i = 0; i < 6; i++)
        CHECK_EQ_INT(c.ts[i], US(B + 1 + i));
    mesh_evt_copy_free(&c.first);

    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 2, 1, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_STR(c.paths[0], "/x/6");
    CHECK_EQ_STR(c.paths[1], "/x/5");
    mesh_evt_copy_free(&c.first);

    struct mesh_filter f;
    mesh_filter_init(&f);
    f.path_prefix = "/x/";
    struct mesh_store_window w = {0, US(B + 2), US(B + 6)};
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, &f, &w, 0, 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_STR(c.paths[0], "/x/4");
    CHECK_EQ_STR(c.paths[1], "/x/5");
    mesh_evt_copy_free(&c.first);

    mesh_filter_init(&f);
    CHECK_EQ_INT(mesh_filter_set_status(&f, "5xx"), 0);
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, &f, NULL, 0, 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_STR(c.paths[0], "/y/2");
    mesh_evt_copy_free(&c.first);
    w = (struct mesh_store_window){US(3), 0, 0}; /* last 3 s before B+6: B+3, B+4, B+5 */
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, &w, US(B + 6), 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 3);
    mesh_evt_copy_free(&c.first);

    /* every field round-trips, absent ones stay absent */
    struct mesh_evt full;
    mesh_evt_init(&full);
    full.ts_us = US(B - 100);
    full.direction = MESH_DIR_REPLAY;
    full.src = "[::1]:5000";
    full.dst = "10.0.0.2:80";
    full.src_labels = (struct mesh_labels){"ns1", "dep1", "pod1"};
    full.dst_labels = (struct mesh_labels){"ns2", "dep2", "pod2"};
    full.proto = MESH_PROTO_H2;
    full.method = "PUT";
    full.scheme = "https";
    full.authority = "a:1";
    full.path = "/p?q=\xf0\x9f\x8d\xa9";
    full.status = 204;
    full.grpc_status = 14;
    full.reset = 8;
    full.error = "connection reset";
    full.latency_us = 1234;
    full.duration_us = 5678;
    full.req_bytes = 1ull << 40;
    full.rsp_bytes = 7;
    full.id = "9:11";
    struct mesh_evt bare;
    mesh_evt_init(&bare);
    bare.ts_us = US(B - 50);
    CHECK_EQ_INT(mesh_store_ingest(st, "s", 3, &full, 1, NULL, NULL), 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "s", 4, &bare, 1, NULL, NULL), 0);
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 1, 0, collect_cb, &c), 0);
    const struct mesh_evt *g = &c.first.evt;
    CHECK_EQ_INT(g->ts_us, full.ts_us);
    CHECK_EQ_INT(g->direction, MESH_DIR_REPLAY);
    CHECK_EQ_STR(g->src, full.src);
    CHECK_EQ_STR(g->dst, full.dst);
    CHECK_EQ_STR(g->src_labels.ns, "ns1");
    CHECK_EQ_STR(g->src_labels.deploy, "dep1");
    CHECK_EQ_STR(g->src_labels.pod, "pod1");
    CHECK_EQ_STR(g->dst_labels.ns, "ns2");
    CHECK_EQ_STR(g->dst_labels.deploy, "dep2");
    CHECK_EQ_STR(g->dst_labels.pod, "pod2");
    CHECK_EQ_INT(g->proto, MESH_PROTO_H2);
    CHECK_EQ_STR(g->method, "PUT");
    CHECK_EQ_STR(g->scheme, "https");
    CHECK_EQ_STR(g->authority, "a:1");
    CHECK_EQ_STR(g->path, full.path);
    CHECK_EQ_INT(g->status, 204);
    CHECK_EQ_INT(g->grpc_status, 14);
    CHECK_EQ_INT(g->reset, 8);
    CHECK_EQ_STR(g->error, "connection reset");
    CHECK_EQ_INT(g->latency_us, 1234);
    CHECK_EQ_INT(g->duration_us, 5678);
    CHECK_EQ_INT(g->req_bytes, 1ull << 40);
    CHECK_EQ_INT(g->rsp_bytes, 7);
    CHECK_EQ_STR(g->id, "9:11");
    mesh_evt_copy_free(&c.first);
    w = (struct mesh_store_window){0, US(B - 60), US(B - 40)};
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, &w, 0, 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 1);
    g = &c.first.evt;
    CHECK_EQ_INT(g->direction, MESH_DIR_UNSPEC);
    CHECK(g->src == NULL && g->dst == NULL && g->src_labels.ns == NULL && g->path == NULL);
    CHECK(g->method == NULL && g->authority == NULL && g->error == NULL && g->id == NULL);
    CHECK_EQ_INT(g->proto, MESH_PROTO_UNKNOWN);
    CHECK_EQ_INT(g->status, -1);
    CHECK_EQ_INT(g->grpc_status, -1);
    CHECK_EQ_INT(g->reset, -1);
    CHECK_EQ_INT(g->latency_us, -1);
    CHECK_EQ_INT(g->duration_us, -1);
    mesh_evt_copy_free(&c.first);
    mesh_store_close(st);
}

static void test_injection(void)
{
    const char *path = path_of("inject.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    const char *evil_path = "/'); DROP TABLE events; --";
    const char *evil_sender = "x'; DELETE FROM batches; --";
    struct mesh_evt e = ev(US(B), MESH_DIR_INBOUND, "web", "voting", evil_path, 200, 0, 10, "1:1");
    e.method = "GET\" OR 1=1 --";
    e.authority = "a'b\"c`d";
    e.dst_labels.deploy = "dep'); DROP TABLE rollup_1s; --";
    CHECK_EQ_INT(mesh_store_ingest(st, evil_sender, 1, &e, 1, NULL, NULL), 0);
    struct collected c;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_STR(c.paths[0], evil_path);
    CHECK_EQ_STR(c.first.evt.method, e.method);
    CHECK_EQ_STR(c.first.evt.authority, e.authority);
    mesh_evt_copy_free(&c.first);
    struct mesh_store_top_req tq;
    memset(&tq, 0, sizeof(tq));
    tq.filter.path_prefix = "/')";
    struct mesh_store_top_result tr;
    CHECK_EQ_INT(mesh_store_top(st, &tq, 0, &tr), 0);
    CHECK_EQ_INT(tr.nrows, 1);
    if (tr.nrows == 1) {
        CHECK_EQ_STR(tr.rows[0].path, evil_path);
        CHECK_EQ_STR(tr.rows[0].destination, e.dst_labels.deploy);
    }
    mesh_store_top_result_free(&tr);
    struct mesh_resource res = {MESH_RT_DEPLOY, e.dst_labels.deploy, NULL};
    struct mesh_store_stat_req req = {.resources = &res, .nresources = 1};
    struct mesh_store_stat_result r;
    CHECK_EQ_INT(mesh_store_stat(st, &req, 0, &r), 0);
    CHECK_EQ_INT(r.nrows, 1);
    mesh_store_stat_result_free(&r);
    int dup = 0;
    CHECK_EQ_INT(mesh_store_ingest(st, evil_sender, 1, &e, 1, NULL, &dup), 0);
    CHECK_EQ_INT(dup, 1);
    mesh_store_close(st);
    /* meta, batches, strings, sqlite_sequence, events_raw and four rollup tables */
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 9);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM batches WHERE sender_id = "
                              "'x''; DELETE FROM batches; --'"), 1);
}

/* --- retention ------------------------------------------------------------------- */

static void test_retain_age(void)
{
    const char *path = path_of("age.db");
    struct mesh_store_opts o;
    struct mesh_store *st = NULL;
    mesh_store_opts_init(&o);
    o.now_us = clock_fake;
    o.dedup_keep_us = US(30);
    fake_now = US(B);
    CHECK_EQ_INT(mesh_store_open(path, &o, &st, NULL, 0), 0);
    if (st == NULL)
        return;
    /* 2000 events, 50 ms apart: [B, B+100 s), 20 batches received 5 s apart */
    static struct mesh_evt e[2000];
    for (int i = 0; i < 2000; i++)
        e[i] = ev(US(B) + (uint64_t)i * 50000, MESH_DIR_INBOUND, "web", "voting", "/v", 200, 0,
                  100 + i, "1:1");
    for (int b = 0; b < 20; b++) {
        fake_now = US(B + 5 * b);
        CHECK_EQ_INT(mesh_store_ingest(st, "p", (uint64_t)b + 1, e + b * 100, 100, NULL, NULL), 0);
    }
    fake_now = US(B + 100);
    int more = 1, calls = 0;
    struct mesh_store_retained done, total = {0};
    while (more && calls < 1000) {
        CHECK_EQ_INT(mesh_store_retain(st, US(50), 0, fake_now, 100, &more, &done), 0);
        CHECK(done.events + done.rollups + done.batches <= 100);
        total.events += done.events;
        total.rollups += done.rollups;
        total.batches += done.batches;
        calls++;
    }
    CHECK(calls >= 9); /* small steps: 800 events, 100 at a time */
    /* B+100 - 50 s is B+50, rounded down to a whole minute: B+40 */
    CHECK_EQ_INT(total.events, 800);
    CHECK_EQ_INT(total.batches, 14); /* received before B+70: 0..13 */
    CHECK_EQ_INT(count_events(st), 1200);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 1200);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, US(B), US(B + 200)}, 0), 1200);
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, US(B + 40), US(B + 45)}, 0), 100);
    CHECK_EQ_INT(scalar(path, "SELECT min(sec) FROM rollup_1s"), (int64_t)B + 40);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM rollup_1m WHERE sec < 1700000040"), 0);
    /* a batch whose record aged out is stored again: the de-dup window */
    int dup = 1;
    CHECK_EQ_INT(mesh_store_ingest(st, "p", 1, e, 1, NULL, &dup), 0);
    CHECK_EQ_INT(dup, 0);
    CHECK_EQ_INT(mesh_store_ingest(st, "p", 20, e, 1, NULL, &dup), 0);
    CHECK_EQ_INT(dup, 1);
    /* retention needs no transaction of the caller's */
    CHECK_EQ_INT(mesh_store_begin(st), 0);
    CHECK_EQ_INT(mesh_store_retain(st, US(50), 0, fake_now, 100, &more, NULL), MESH_EINVAL);
    CHECK_EQ_INT(mesh_store_rollback(st), 0);
    mesh_store_close(st);
}

static void test_retain_size(void)
{
    const char *path = path_of("size.db");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    /* bulky raw rows (a long error text each), few routes: the raw rows
     * are most of the file, as in real traffic */
    static struct mesh_evt e[1000];
    static char errors[1000][200];
    for (int b = 0; b < 30; b++) {
        for (int i = 0; i < 1000; i++) {
            snprintf(errors[i], sizeof(errors[i]), "upstream said: %0150d", b * 1000 + i);
            e[i] = ev(US(B) + (uint64_t)(b * 1000 + i) * 10000, MESH_DIR_INBOUND, "web", "voting",
                      i % 2 ? "/emojivoto.v1.VotingService/VotePizza" : "/emojivoto.v1.x/List",
                      200, 0, 100 + i, "1:1");
            e[i].error = errors[i];
        }
        CHECK_EQ_INT(mesh_store_ingest(st, "p", (uint64_t)b + 1, e, 1000, NULL, NULL), 0);
    }
    struct mesh_store_counters c;
    mesh_store_counters(st, &c);
    uint64_t full = c.db_bytes, max = full / 2;
    int more = 1, calls = 0;
    while (more && calls < 10000) {
        CHECK_EQ_INT(mesh_store_retain(st, 0, max, fake_now, 500, &more, NULL), 0);
        calls++;
    }
    mesh_store_counters(st, &c);
    printf("info: size retention: %llu -> %llu bytes (limit %llu) in %d calls\n",
           (unsigned long long)full, (unsigned long long)c.db_bytes, (unsigned long long)max,
           calls);
    CHECK(c.db_bytes <= max);
    CHECK(c.db_bytes > max / 4); /* not everything went */
    size_t left = count_events(st);
    printf("info: %zu of 30000 events left\n", left);
    CHECK(left > 3000 && left < 20000);
    /* the oldest went first: what is left is the newest */
    struct collected col;
    memset(&col, 0, sizeof(col));
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 1, 0, collect_cb, &col), 0);
    CHECK_EQ_INT(col.ts[0], US(B) + (uint64_t)(30000 - left) * 10000);
    mesh_evt_copy_free(&col.first);
    /* rollups were cut with them, in whole minutes (100 events a second) */
    uint64_t rolled = stat_total(st, (struct mesh_store_window){0, 0, 0}, 0);
    CHECK(rolled >= left && rolled < left + 6000);
    mesh_store_close(st);
}

/* --- schema versions and the strings dictionary ---------------------------------- */

#define V1_ROLLUP_W(name)                                                                    \
    "CREATE TABLE " name " (sec INTEGER NOT NULL, proxy_direction TEXT NOT NULL, src_ns TEXT " \
    "NOT NULL, src_deploy TEXT NOT NULL, src_pod TEXT NOT NULL, dst_ns TEXT NOT NULL, "       \
    "dst_deploy TEXT NOT NULL, dst_pod TEXT NOT NULL, authority TEXT NOT NULL, requests "     \
    "INTEGER NOT NULL, failures INTEGER NOT NULL, lat_count INTEGER NOT NULL, lat_sum_us "    \
    "INTEGER NOT NULL, lat_min_us INTEGER, lat_max_us INTEGER, lat_hist BLOB, req_bytes "     \
    "INTEGER NOT NULL, rsp_bytes INTEGER NOT NULL, conns BLOB, PRIMARY KEY (sec, "            \
    "proxy_direction, src_ns, src_deploy, src_pod, dst_ns, dst_deploy, dst_pod, authority)) " \
    "WITHOUT ROWID;"
#define V1_ROUTE(name)                                                                       \
    "CREATE TABLE " name " (sec INTEGER NOT NULL, proxy_direction TEXT NOT NULL, src_ns TEXT " \
    "NOT NULL, src_deploy TEXT NOT NULL, src_pod TEXT NOT NULL, dst_ns TEXT NOT NULL, "       \
    "dst_deploy TEXT NOT NULL, dst_pod TEXT NOT NULL, authority TEXT NOT NULL, src_ip TEXT "   \
    "NOT NULL, dst_addr TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, requests "   \
    "INTEGER NOT NULL, failures INTEGER NOT NULL, lat_count INTEGER NOT NULL, lat_sum_us "    \
    "INTEGER NOT NULL, lat_min_us INTEGER, lat_max_us INTEGER, lat_hist BLOB, req_bytes "     \
    "INTEGER NOT NULL, rsp_bytes INTEGER NOT NULL, last_ts INTEGER, last_latency_us INTEGER, " \
    "PRIMARY KEY (sec, proxy_direction, src_ns, src_deploy, src_pod, dst_ns, dst_deploy, "    \
    "dst_pod, authority, src_ip, dst_addr, method, path)) WITHOUT ROWID;"

/* A version 1 store, as `sqlite3 .schema` shows one that mesh wrote then,
 * with three rows not yet in the rollups: open migrates it, re-aggregates
 * them through the new view, and every field reads back as stored. */
static void test_migrate_v1(void)
{
    const char *path = path_of("v1.db");
    rm_db(path);
    exec_raw(path,
             "PRAGMA page_size = 8192; PRAGMA auto_vacuum = INCREMENTAL; "
             "PRAGMA journal_mode = WAL; PRAGMA application_id = 1296388936; "
             "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
             "INSERT INTO meta (key, value) VALUES ('rollup_row_id', 0);"
             "CREATE TABLE batches (id INTEGER PRIMARY KEY, sender_id TEXT NOT NULL, seq INTEGER "
             "NOT NULL, received_us INTEGER NOT NULL, events INTEGER NOT NULL, UNIQUE (sender_id, "
             "seq));"
             "CREATE INDEX batches_received ON batches (received_us);"
             "CREATE TABLE events (row_id INTEGER PRIMARY KEY, batch INTEGER, ts INTEGER NOT NULL, "
             "proxy_direction TEXT NOT NULL, src TEXT, dst TEXT, src_ns TEXT, src_deploy TEXT, "
             "src_pod TEXT, dst_ns TEXT, dst_deploy TEXT, dst_pod TEXT, proto TEXT, method TEXT, "
             "scheme TEXT, authority TEXT, path TEXT, status INTEGER, grpc_status INTEGER, reset "
             "INTEGER, error TEXT, latency_us INTEGER, duration_us INTEGER, req_bytes INTEGER NOT "
             "NULL, rsp_bytes INTEGER NOT NULL, id TEXT, failed INTEGER NOT NULL);"
             "CREATE INDEX events_ts ON events (ts);" V1_ROLLUP_W("rollup_1s")
                 V1_ROLLUP_W("rollup_1m") V1_ROUTE("route_10s") V1_ROUTE("route_1m")
             "INSERT INTO batches VALUES (1, 'proxy-a', 1, 1700000000000000, 3);"
             "INSERT INTO events VALUES "
             "(1, 1, 1700000001000000, 'inbound', '10.0.0.1:40000', '10.0.0.2:8080', 'emojivoto', "
             "'web', 'web-0', 'emojivoto', 'voting', 'voting-0', 'grpc', 'POST', 'http', "
             "'voting-svc.emojivoto:8080', '/v', 200, 0, NULL, NULL, 1000, 1100, 10, 100, '1:1', 0),"
             "(2, 1, 1700000000500000, 'outbound', '10.0.0.2:41000', NULL, NULL, NULL, NULL, NULL, "
             "NULL, NULL, NULL, 'GET', NULL, NULL, '/v', NULL, NULL, 8, 'reset by peer', NULL, "
             "NULL, 0, 0, NULL, 1),"
             "(3, 1, 1700000002000000, 'replay', '10.0.0.1:40000', '10.0.0.2:8080', 'emojivoto', "
             "'web', 'web-0', 'emojivoto', 'voting', 'voting-0', 'h2', 'POST', 'http', "
             "'voting-svc.emojivoto:8080', '/w', 503, NULL, NULL, NULL, 20, 30, 1, 2, '1:3', 1);"
             "PRAGMA user_version = 1;");
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    CHECK_EQ_INT(scalar(path, "PRAGMA user_version"), 2);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM events"), 3);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM events_raw"), 3);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'events_ts'"), 0);
    /* 19 distinct strings in the dictionary, each once */
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM strings"), 19);
    CHECK_EQ_INT(scalar(path, "SELECT last_row FROM strings WHERE value = '/v'"), 2);
    /* stat counts the server side: the inbound and the replayed row */
    CHECK_EQ_INT(stat_total(st, (struct mesh_store_window){0, 0, 0}, 0), 2);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM rollup_1s"), 3);

    struct collected c;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 3);
    const struct mesh_evt *e = &c.first.evt; /* the oldest: row 2 */
    CHECK_EQ_INT(e->ts_us, 1700000000500000ull);
    CHECK_EQ_INT(e->direction, MESH_DIR_OUTBOUND);
    CHECK_EQ_STR(e->src, "10.0.0.2:41000");
    CHECK(e->dst == NULL && e->src_labels.ns == NULL && e->dst_labels.deploy == NULL);
    CHECK(e->proto == MESH_PROTO_UNKNOWN && e->scheme == NULL && e->authority == NULL);
    CHECK_EQ_STR(e->method, "GET");
    CHECK_EQ_STR(e->error, "reset by peer");
    CHECK_EQ_INT(e->reset, 8);
    CHECK(e->status < 0 && e->latency_us < 0 && e->id == NULL);
    CHECK_EQ_STR(c.paths[1], "/v");
    CHECK_EQ_STR(c.paths[2], "/w");
    mesh_evt_copy_free(&c.first);

    /* ingest goes on after the migrated rows; de-duplication survived */
    struct mesh_evt ne = ev(US(B), MESH_DIR_INBOUND, "web", "voting", "/w", 200, 0, 5, "2:1");
    int dup = 9;
    CHECK_EQ_INT(mesh_store_ingest(st, "proxy-a", 1, &ne, 1, NULL, &dup), 0);
    CHECK_EQ_INT(dup, 1);
    CHECK_EQ_INT(mesh_store_ingest(st, "proxy-a", 2, &ne, 1, NULL, &dup), 0);
    CHECK_EQ_INT(dup, 0);
    mesh_store_close(st);
    CHECK_EQ_INT(scalar(path, "SELECT max(row_id) FROM events"), 4);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM strings"), 19);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM events WHERE path = '/w'"), 2);
    CHECK_EQ_INT(scalar(path, "SELECT sum(requests) FROM rollup_1s"), 4);
}

/* Strings no row uses any more go with retention, at most DICT_REFRESH_ROWS
 * (131072) rows after their last use; a string used again after that is
 * added again, and every row reads back its own strings throughout. */
static void test_strings_gc(void)
{
    const char *path = path_of("strings.db");
    rm_db(path);
    fake_now = US(B);
    struct mesh_store *st = open_ok(path, 0);
    if (st == NULL)
        return;
    static struct mesh_evt e[1000];
    static char paths[1000][32];
    uint64_t seq = 0;
    /* 1000 rows with a path each, then 140 000 with one shared path, all old */
    for (int i = 0; i < 1000; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/unique/%d", i);
        e[i] = ev(US(B - 7200) + (uint64_t)i, MESH_DIR_INBOUND, "web", "voting", paths[i], 200, 0,
                  10, "1:1");
    }
    CHECK_EQ_INT(mesh_store_ingest(st, "p", ++seq, e, 1000, NULL, NULL), 0);
    for (int b = 0; b < 140; b++) {
        for (int i = 0; i < 1000; i++)
            e[i] = ev(US(B - 7000) + (uint64_t)(b * 1000 + i), MESH_DIR_INBOUND, "web", "voting",
                      "/shared", 200, 0, 10, "1:1");
        CHECK_EQ_INT(mesh_store_ingest(st, "p", ++seq, e, 1000, NULL, NULL), 0);
    }
    /* and a recent one that keeps some strings in use */
    e[0] = ev(US(B), MESH_DIR_INBOUND, "web", "voting", "/recent", 200, 0, 10, "1:1");
    CHECK_EQ_INT(mesh_store_ingest(st, "p", ++seq, e, 1, NULL, NULL), 0);
    int64_t before = scalar(path, "SELECT count(*) FROM strings");
    CHECK(before >= 1002);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM strings WHERE value LIKE '/unique/%'"), 1000);

    struct mesh_store_retained done, total = {0};
    int more = 1, calls = 0;
    while (more && calls < 1000) {
        CHECK_EQ_INT(mesh_store_retain(st, 3600ull * 1000000, 0, fake_now, 5000, &more, &done), 0);
        total.events += done.events;
        total.strings += done.strings;
        calls++;
    }
    CHECK_EQ_INT(total.events, 141000);
    CHECK_EQ_INT(total.strings, 1000);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM strings WHERE value LIKE '/unique/%'"), 0);
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM strings WHERE value = '/recent'"), 1);
    /* every string a row refers to is there */
    CHECK_EQ_INT(scalar(path, "SELECT count(*) FROM events WHERE path IS NULL OR src_deploy IS NULL "
                              "OR dst_pod IS NULL OR proxy_direction IS NULL"), 0);

    /* a collected string comes back with a new id, through the same cache */
    e[0] = ev(US(B) + 1, MESH_DIR_INBOUND, "web", "voting", "/unique/7", 200, 0, 10, "1:2");
    CHECK_EQ_INT(mesh_store_ingest(st, "p", ++seq, e, 1, NULL, NULL), 0);
    struct collected c;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(mesh_store_events(st, NULL, NULL, 0, 0, 0, collect_cb, &c), 0);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_STR(c.paths[0], "/recent");
    CHECK_EQ_STR(c.paths[1], "/unique/7");
    mesh_evt_copy_free(&c.first);
    mesh_store_close(st);
    CHECK(scalar(path, "SELECT id FROM strings WHERE value = '/unique/7'") > 1000);
}

/* --- information: rates ---------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_rates(void)
{
    const char *path = path_of("rates.db");
    struct mesh_store_opts o;
    struct mesh_store *st = NULL;
    mesh_store_opts_init(&o);
    CHECK_EQ_INT(mesh_store_open(path, &o, &st, NULL, 0), 0);
    if (st == NULL)
        return;
    enum { N = 100000, BATCH = 1000 };
    static struct mesh_evt e[BATCH];
    static char paths[100][48];
    for (int i = 0; i < 100; i++)
        snprintf(paths[i], sizeof(paths[i]), "/emojivoto.v1.VotingService/Vote%d", i);
    uint64_t t0 = US(B);
    double start = now_s();
    for (int b = 0; b < N / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            int k = b * BATCH + i;
            e[i] = ev(t0 + (uint64_t)k * 3600, k % 2 ? MESH_DIR_INBOUND : MESH_DIR_OUTBOUND,
                      "web", "voting", paths[k % 100], 200, k % 7 == 0 ? 2 : 0, 500 + k % 5000,
                      "1:1");
        }
        CHECK_EQ_INT(mesh_store_ingest(st, "bench", (uint64_t)b + 1, e, BATCH, NULL, NULL), 0);
    }
    double secs = now_s() - start;
    struct mesh_resource res = {MESH_RT_DEPLOY, NULL, NULL};
    struct mesh_store_stat_req req = {.resources = &res, .nresources = 1};
    req.window.last_us = US(3600);
    struct mesh_store_stat_result r;
    uint64_t end = t0 + (uint64_t)N * 3600;
    CHECK_EQ_INT(mesh_store_stat(st, &req, end, &r), 0); /* includes the last flush */
    mesh_store_stat_result_free(&r);
    start = now_s();
    CHECK_EQ_INT(mesh_store_stat(st, &req, end, &r), 0);
    double stat_1h = now_s() - start;
    CHECK_EQ_INT(r.nrows, 2); /* voting, and web (meshed, only calls voting) */
    const struct mesh_store_stat_row *voting = find_row(&r, MESH_RT_DEPLOY, "voting");
    CHECK(voting != NULL && voting->requests == N / 2);
    mesh_store_stat_result_free(&r);
    req.window.last_us = US(60);
    start = now_s();
    CHECK_EQ_INT(mesh_store_stat(st, &req, end, &r), 0);
    double stat_1m = now_s() - start;
    mesh_store_stat_result_free(&r);
    printf("info: ingest %d events in batches of %d: %.0f events/s; stat -t 1h %.2f ms, "
           "-t 1m %.2f ms\n",
           N, BATCH, N / secs, stat_1h * 1e3, stat_1m * 1e3);
    mesh_store_close(st);
}

/* mesh tap's text lines with captured headers: the request's on the req
 * line, the response's on the rsp line, its trailers on the end line; a name or value cannot put a
 * control byte on the terminal */
static void test_tap_headers_text(void)
{
    struct mesh_header hs[5] = {{"user-agent", "curl/8 (x \"y\")", 0, 0, 0},
                                {"authorization", NULL, 1, 0, 0},
                                {"x-\x1b[2J", "a\x1b]0;b", 0, 0, 0},
                                {"set-cookie", NULL, 1, 1, 0},
                                {"grpc-message", "no doughnut", 0, 1, 1}};
    struct mesh_evt e;
    mesh_evt_init(&e);
    e.id = "1:1";
    e.method = "GET";
    e.path = "/";
    e.status = 200;
    e.latency_us = e.duration_us = 10;
    e.headers = hs;
    e.nheaders = 5;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(out != NULL);
    if (out == NULL)
        return;
    mesh_tap_format(out, &e, 0);
    fclose(out);
    CHECK(strstr(text, ":path=/ user-agent=\"curl/8 (x \\\"y\\\")\" authorization=<redacted> "
                       "x-\\x1b[2J=a\\x1b]0;b\n") != NULL);
    CHECK(strstr(text, "latency=10µs set-cookie=<redacted>\n") != NULL);
    CHECK(strstr(text, "response-length=0B grpc-message=\"no doughnut\"\n") != NULL); /* trailers */
    CHECK(strchr(text, 0x1b) == NULL);
    free(text);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    umask(022);
    RUN(test_create_reopen);
    RUN(test_future_version);
    RUN(test_refuse_foreign);
    RUN(test_duplicates);
    RUN(test_crash);
    RUN(test_disk_full);
    RUN(test_readonly_reader);
    RUN(test_stat_story);
    RUN(test_top_story);
    RUN(test_top_fallbacks);
    RUN(test_against_views);
    RUN(test_many_connections);
    RUN(test_events);
    RUN(test_injection);
    RUN(test_retain_age);
    RUN(test_retain_size);
    RUN(test_migrate_v1);
    RUN(test_strings_gc);
    RUN(test_rates);
    RUN(test_tap_headers_text);
    const char *names[] = {"create.db", "empty.db", "future.db", "notes.txt", "other.db",
                           "corrupt.db", "dup.db", "crash.db", "full.db", "reader.db", "story.db",
                           "fallback.db", "random.db", "conns.db", "events.db", "inject.db",
                           "age.db", "size.db", "rates.db"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        rm_db(path_of(names[i]));
    rmdir(dir);
    return TEST_REPORT();
}
