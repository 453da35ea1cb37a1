/* store_bench — the store alone: ingest rate into SQLite on disk, then Stat
 * and Top latency over what was stored. No gRPC (bench/collector.sh measures
 * the collector end to end); this is the floor under it.
 *
 * Events look like emojivoto's: vote-bot -> web (/api/vote?choice=..., /api/list),
 * web -> emoji (2 gRPC methods), web -> voting (one gRPC method per emoji,
 * ~100, doughnut failing 15%), each web request seen twice (outbound and
 * inbound proxies), spread evenly over the last SPAN seconds before "now",
 * on a few long-lived connections per proxy.
 *
 *   cmake --build build --target mesh_store
 *   cc -O2 -Ilib -Istore -o store_bench bench/store_bench.c \
 *      build/libmesh_store.a build/libmesh_lib.a build/libmesh_proto.a \
 *      $(pkg-config --libs sqlite3 libprotobuf-c libnghttp2) -lm
 *   ./store_bench [-n EVENTS] [-b BATCH] [-s SPAN_SECONDS] [-r RUNS] [-c CACHE_KIB] DB
 *
 * DB is removed first. Prints events/s, Stat -t 1m / -t 1h (median of RUNS)
 * and Top -t 1m in ms, the file size and the peak RSS. Exit 1 on a failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mesh/err.h"
#include "store.h"

static const char *const emojis[] = {
    "doughnut", "pizza", "100", "bacon", "balloon", "basketball", "beer", "bicyclist", "bike",
    "birthday_cake", "blossom", "boom", "bowling", "burrito", "cactus", "camera", "candy",
    "car", "cat", "champagne", "chicken", "christmas_tree", "cloud", "clown_face", "cocktail",
    "coffee", "confetti_ball", "cookie", "cool", "crab", "crown", "cupcake", "dancer",
    "dog", "dolphin", "dove", "dragon", "eagle", "earth_americas", "eggplant", "fire",
    "fireworks", "fish", "flag_us", "football", "fox_face", "frog", "ghost", "gift", "grapes",
    "guitar", "hamburger", "heart", "hibiscus", "honeybee", "hot_pepper", "icecream", "jack_o_lantern",
    "joy", "kangaroo", "key", "kiwi", "koala", "laughing", "lemon", "lion", "lollipop",
    "mage", "mango", "money_mouth_face", "moon", "mountain", "mushroom", "ok_hand", "owl",
    "panda_face", "peach", "penguin", "pig", "pineapple", "popcorn", "rabbit", "rainbow",
    "rocket", "rose", "sailboat", "santa", "seedling", "shark", "snail", "snowflake",
    "star", "strawberry", "sunflower", "sushi", "taco", "tiger", "trophy", "tulip", "unicorn",
};
#define NEMOJI (sizeof(emojis) / sizeof(emojis[0]))

static char vote_paths[NEMOJI][96], bot_paths[NEMOJI][64];
static char conn_ids[64][16];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + system time: the machine may be shared, the work is one core's */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void labels(struct mesh_labels *l, const char *deploy, const char *pod)
{
    l->ns = "emojivoto";
    l->deploy = deploy;
    l->pod = pod;
}

/* One request: fills 1 (vote-bot's, seen by web's inbound proxy only) or
 * 2 events (web's outbound and the server's inbound). */
static size_t make_request(struct mesh_evt *out, uint64_t ts)
{
    struct mesh_evt *e = &out[0];
    mesh_evt_init(e);
    e->ts_us = ts;
    e->scheme = "http";
    e->req_bytes = 20 + rnd(200);
    e->rsp_bytes = 50 + rnd(2000);
    unsigned kind = (unsigned)rnd(10);
    unsigned emoji = (unsigned)rnd(NEMOJI);
    e->latency_us = (int64_t)(300 + rnd(3000) + (rnd(100) == 0 ? rnd(200000) : 0));
    e->duration_us = e->latency_us + (int64_t)rnd(100);
    if (kind < 3) { /* vote-bot -> web */
        e->direction = MESH_DIR_INBOUND;
        e->src = "10.1.0.5:39000";
        e->dst = "10.1.0.10:8080";
        labels(&e->src_labels, "vote-bot", "vote-bot-7d9c8-x2k4q");
        labels(&e->dst_labels, "web", "web-5f7b6-8kq2z");
        e->proto = MESH_PROTO_HTTP1;
        e->method = "GET";
        e->authority = "web-svc.emojivoto:80";
        e->path = kind == 0 ? "/api/list" : bot_paths[emoji];
        e->status = emoji == 0 && kind != 0 && rnd(100) < 15 ? 500 : 200;
        e->id = conn_ids[rnd(8)];
        return 1;
    }
    e->src = "10.1.0.10:41000";
    labels(&e->src_labels, "web", "web-5f7b6-8kq2z");
    e->proto = MESH_PROTO_GRPC;
    e->method = "POST";
    e->status = 200;
    e->grpc_status = 0;
    if (kind < 6) {
        e->dst = "10.1.0.20:8080";
        labels(&e->dst_labels, "emoji", "emoji-6c8d9-p9r5t");
        e->authority = "emoji-svc.emojivoto:8080";
        e->path = kind == 3 ? "/emojivoto.v1.EmojiService/ListAll"
                            : "/emojivoto.v1.EmojiService/FindByShortcode";
        e->id = conn_ids[8 + rnd(4)];
    } else {
        e->dst = "10.1.0.30:8080";
        labels(&e->dst_labels, "voting", "voting-7b5c4-m3n8v");
        e->authority = "voting-svc.emojivoto:8080";
        e->path = kind == 9 ? "/emojivoto.v1.VotingService/Results" : vote_paths[emoji];
        if (emoji == 0 && kind != 9 && rnd(100) < 15)
            e->grpc_status = 2;
        e->id = conn_ids[12 + rnd(4)];
    }
    out[1] = *e;
    out[0].direction = MESH_DIR_OUTBOUND;
    out[0].latency_us += 150; /* the client's proxy sees a little more */
    out[0].id = conn_ids[16 + rnd(8)];
    out[1].direction = MESH_DIR_INBOUND;
    return 2;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    long long nevents = 1000000, batch = 1000, span = 3600;
    int runs = 7, opt;
    struct mesh_store_opts sopts;
    mesh_store_opts_init(&sopts);
    while ((opt = getopt(argc, argv, "n:b:s:r:c:")) != -1) {
        switch (opt) {
        case 'c': sopts.cache_kib = atoi(optarg); break;
        case 'n': nevents = atoll(optarg); break;
        case 'b': batch = atoll(optarg); break;
        case 's': span = atoll(optarg); break;
        case 'r': runs = atoi(optarg); break;
        default: goto usage;
        }
    }
    if (optind != argc - 1 || nevents <= 0 || batch <= 1 || span <= 0 || runs <= 0) {
    usage:
        fprintf(stderr, "Usage: store_bench [-n EVENTS] [-b BATCH] [-s SPAN_SECONDS] [-r RUNS] "
                        "[-c CACHE_KIB] DB\n");
        return 2;
    }
    const char *path = argv[optind];
    char name[4096];
    const char *suf[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s%s", path, suf[i]);
        unlink(name);
    }
    for (size_t i = 0; i < NEMOJI; i++) {
        char camel[64];
        snprintf(camel, sizeof(camel), "%s", emojis[i]);
        camel[0] = (char)(camel[0] - 'a' + 'A');
        snprintf(vote_paths[i], sizeof(vote_paths[i]), "/emojivoto.v1.VotingService/Vote%s", camel);
        snprintf(bot_paths[i], sizeof(bot_paths[i]), "/api/vote?choice=:%s:", emojis[i]);
    }
    for (int i = 0; i < 64; i++)
        snprintf(conn_ids[i], sizeof(conn_ids[i]), "%d:%d", i + 1, 2 * i + 1);

    struct mesh_store *st;
    char err[512];
    int rv = mesh_store_open(path, &sopts, &st, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 1;
    }
    struct mesh_evt *evts = calloc((size_t)batch + 1, sizeof(*evts));
    uint64_t now = (uint64_t)time(NULL) * 1000000u;
    uint64_t start_ts = now - (uint64_t)span * 1000000u;
    double step = (double)span * 1e6 / (double)nevents;
    long long done = 0;
    uint64_t seq = 0;
    double t0 = now_s(), gen = 0, cpu0 = cpu_s();
    while (done < nevents) {
        double g0 = now_s();
        size_t n = 0;
        while ((long long)n < batch - 1 && done + (long long)n < nevents)
            n += make_request(evts + n, start_ts + (uint64_t)((double)(done + (long long)n) * step));
        gen += now_s() - g0;
        size_t stored;
        int dup;
        if ((rv = mesh_store_ingest(st, "bench", ++seq, evts, n, &stored, &dup)) != 0) {
            fprintf(stderr, "store_bench: ingest: %s\n", mesh_store_errmsg(st));
            return 1;
        }
        done += (long long)n;
    }
    if (mesh_store_flush(st) != 0) {
        fprintf(stderr, "store_bench: flush: %s\n", mesh_store_errmsg(st));
        return 1;
    }
    double ingest = now_s() - t0 - gen, cpu = cpu_s() - cpu0 - gen;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss_ingest = ru.ru_maxrss;
    printf("ingest: %lld events in %llu batches of ~%lld over %llds: %.2f s (+%.2f s generating), "
           "%.0f events/s; CPU %.2f s, %.0f events per CPU second\n",
           done, (unsigned long long)seq, batch, span, ingest, gen, (double)done / ingest, cpu,
           (double)done / cpu);
    mesh_store_close(st);

    /* queries on a fresh open, as `mesh stat --db` or a restarted collector */
    if ((rv = mesh_store_open(path, &sopts, &st, err, sizeof(err))) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 1;
    }
    struct mesh_resource deploy = {MESH_RT_DEPLOY, NULL, NULL};
    struct mesh_store_stat_req req = {.resources = &deploy, .nresources = 1};
    const struct {
        const char *name;
        uint64_t last_us;
        int to_voting;
    } cases[] = {{"stat deploy -t 1m", 60000000ull, 0},
                 {"stat deploy -t 1h", 3600000000ull, 0},
                 {"stat deploy --to deploy/voting -t 1h", 3600000000ull, 1}};
    double *times = calloc((size_t)runs, sizeof(double));
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mesh_store_stat_result res;
        req.window.last_us = cases[c].last_us;
        req.to = cases[c].to_voting ? (struct mesh_resource){MESH_RT_DEPLOY, "voting", NULL}
                                    : (struct mesh_resource){MESH_RT_NONE, NULL, NULL};
        for (int r = 0; r < runs; r++) {
            double q0 = now_s();
            if (mesh_store_stat(st, &req, now, &res) != 0) {
                fprintf(stderr, "store_bench: stat: %s\n", mesh_store_errmsg(st));
                return 1;
            }
            times[r] = now_s() - q0;
            if (r + 1 < runs)
                mesh_store_stat_result_free(&res);
        }
        printf("%s: median %.2f ms (first %.2f ms)\n", cases[c].name, median(times, runs) * 1e3,
               times[0] * 1e3);
        for (size_t i = 0; i < res.nrows; i++)
            printf("  %s/%s requests %llu success %.2f%% rps %.1f p50 %lld p95 %lld p99 %lld "
                   "tcp_conn %llu\n",
                   mesh_rtype_name(res.rows[i].type), res.rows[i].name,
                   (unsigned long long)res.rows[i].requests,
                   100.0 * (double)(res.rows[i].requests - res.rows[i].failures) /
                       (double)res.rows[i].requests,
                   res.rows[i].rps, (long long)res.rows[i].latency_p50_us,
                   (long long)res.rows[i].latency_p95_us, (long long)res.rows[i].latency_p99_us,
                   (unsigned long long)res.rows[i].tcp_conn);
        mesh_store_stat_result_free(&res);
    }
    struct mesh_store_top_req tq;
    memset(&tq, 0, sizeof(tq));
    tq.window.last_us = 60000000ull;
    tq.limit = 20;
    for (int r = 0; r < runs; r++) {
        struct mesh_store_top_result tr;
        double q0 = now_s();
        if (mesh_store_top(st, &tq, now, &tr) != 0) {
            fprintf(stderr, "store_bench: top: %s\n", mesh_store_errmsg(st));
            return 1;
        }
        times[r] = now_s() - q0;
        mesh_store_top_result_free(&tr);
    }
    printf("top -t 1m (limit 20): median %.2f ms\n", median(times, runs) * 1e3);
    tq.window.last_us = 3600000000ull;
    for (int r = 0; r < runs; r++) {
        struct mesh_store_top_result tr;
        double q0 = now_s();
        if (mesh_store_top(st, &tq, now, &tr) != 0)
            return 1;
        times[r] = now_s() - q0;
        mesh_store_top_result_free(&tr);
    }
    printf("top -t 1h (limit 20): median %.2f ms\n", median(times, runs) * 1e3);
    struct mesh_store_counters cnt;
    mesh_store_counters(st, &cnt);
    getrusage(RUSAGE_SELF, &ru);
    printf("file: %.1f MB (%.0f bytes/event); peak RSS: %.1f MB after ingest, %.1f MB at end\n",
           (double)cnt.db_bytes / 1e6, (double)cnt.db_bytes / (double)done, rss_ingest / 1024.0,
           ru.ru_maxrss / 1024.0);
    mesh_store_close(st);
    free(times);
    free(evts);
    return 0;
}
