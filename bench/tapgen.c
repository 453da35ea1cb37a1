/* tapgen — a load generator for bench/collector.sh: streams emojivoto-shaped
 * tap events to a collector with mesh_tapsend (Collector.Report) as fast as
 * the acknowledgements allow, and says how many were acknowledged and how fast.
 *
 * Events look like those of bench/store_bench.c: vote-bot -> web (/api/vote,
 * /api/list), web -> emoji (2 gRPC methods), web -> voting (one gRPC method per
 * emoji, VoteDoughnut failing ~15%), each web request seen twice (outbound and
 * inbound proxies), latencies from ~0.3 ms to ~200 ms, on a few long-lived
 * connections per proxy with growing stream ids. Timestamps are "now", or
 * with --spread-seconds N back-dated: the first event N seconds back, the
 * back-dating shrinking to 0 at the end of the run, so that a run of K events
 * covers the last N seconds of history.
 *
 *   tapgen --addr HOST:PORT [--seconds S] [--count N] [--spread-seconds N]
 *          [--sender ID] [--batch N] [--window N] [--seed N]
 *   tapgen --stat-db DB [--runs N]
 *
 * The first form stops after S seconds or N events, whichever comes first,
 * then waits for the last acknowledgements; every 10 s it prints the rate of
 * the last interval on stderr; at the end one line on stdout:
 *   acked=N added=N dropped=N seconds=S rate=EVENTS_PER_S cpu=S min10=R max10=R
 * (min10/max10: slowest and fastest 10-second interval). Several generators may
 * run at once: each has its own sender id. Exit 1 when the collector stops
 * acknowledging for 15 s.
 *
 * The second form times mesh_store_stat() (deploy in emojivoto, -t 1m and -t 1h)
 * on a store opened read-only next to a running collector: the store's own
 * share of a Query.Stat call. Prints "stat_1m median=MS p95=MS requests=N"
 * and the same for stat_1h.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mesh/evt.h"
#include "mesh/loop.h"
#include "mesh/tapsend.h"
#include "store.h"

#define PATIENCE_US 15000000ull /* no acknowledgement for this long: give up */
#define INTERVAL_US 10000000ull /* progress lines */
#define NCONN 24

static const char *const emojis[] = {
    "doughnut", "pizza", "100", "bacon", "balloon", "basketball", "beer", "bicyclist", "bike",
    "birthday_cake", "blossom", "boom", "bowling", "burrito", "cactus", "camera", "candy",
    "car", "cat", "champagne", "chicken", "christmas_tree", "cloud", "clown_face", "cocktail",
    "coffee", "confetti_ball", "cookie", "cool", "crab", "crown", "cupcake", "dancer",
    "dog", "dolphin", "dove", "dragon", "eagle", "earth_americas", "eggplant", "fire",
    "fireworks", "fish", "flag_us", "football", "fox_face", "frog", "ghost", "gift", "grapes",
    "guitar", "hamburger", "heart", "hibiscus", "honeybee", "hot_pepper", "icecream",
    "jack_o_lantern", "joy", "kangaroo", "key", "kiwi", "koala", "laughing", "lemon", "lion",
    "lollipop", "mage", "mango", "money_mouth_face", "moon", "mountain", "mushroom", "ok_hand",
    "owl", "panda_face", "peach", "penguin", "pig", "pineapple", "popcorn", "rabbit", "rainbow",
    "rocket", "rose", "sailboat", "santa", "seedling", "shark", "snail", "snowflake",
    "star", "strawberry", "sunflower", "sushi", "taco", "tiger", "trophy", "tulip", "unicorn",
};
#define NEMOJI (sizeof(emojis) / sizeof(emojis[0]))

static char vote_paths[NEMOJI][96], bot_paths[NEMOJI][64];

struct gen {
    struct mesh_loop *loop;
    struct mesh_tapsend *ts;
    uint64_t rng;
    uint64_t streams[NCONN];      /* next stream id per connection */
    char ids[2][32];              /* the ids of the request being built */
    /* the run */
    uint64_t max_events;          /* 0: no limit */
    uint64_t duration_us;         /* 0: no limit */
    uint64_t spread_us;
    size_t window;                /* batches in flight */
    size_t batch_events;
    uint64_t start_us, last_ack_us, last_progress_us, prev_acked;
    int generating, gave_up;
    /* 10-second intervals */
    uint64_t interval_start_us, interval_acked;
    double min10, max10;
};

static uint64_t rnd(struct gen *g, uint64_t n)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng % n;
}

static uint64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

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

/* Sets ids[which] to "CONN:STREAM" on one of connections [first, first+n). */
static const char *next_id(struct gen *g, int which, unsigned first, unsigned n)
{
    unsigned conn = first + (unsigned)rnd(g, n);
    snprintf(g->ids[which], sizeof(g->ids[which]), "%u:%llu", conn + 1,
             (unsigned long long)g->streams[conn]);
    g->streams[conn] += 2; /* client-initiated HTTP/2 streams are odd */
    return g->ids[which];
}

/* One request: fills 1 (vote-bot's, seen by web's inbound proxy only) or
 * 2 events (web's outbound and the server's inbound). Strings borrowed from
 * |g| and static tables, valid until the next call. */
static size_t make_request(struct gen *g, struct mesh_evt *out, uint64_t ts)
{
    struct mesh_evt *e = &out[0];
    mesh_evt_init(e);
    e->ts_us = ts;
    e->scheme = "http";
    e->req_bytes = 20 + rnd(g, 200);
    e->rsp_bytes = 50 + rnd(g, 2000);
    unsigned kind = (unsigned)rnd(g, 10);
    unsigned emoji = (unsigned)rnd(g, NEMOJI);
    e->latency_us = (int64_t)(300 + rnd(g, 3000) + (rnd(g, 100) == 0 ? rnd(g, 200000) : 0));
    e->duration_us = e->latency_us + (int64_t)rnd(g, 100);
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
        e->status = emoji == 0 && kind != 0 && rnd(g, 100) < 15 ? 500 : 200;
        e->id = next_id(g, 0, 0, 8);
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
        e->id = next_id(g, 1, 8, 4);
    } else {
        e->dst = "10.1.0.30:8080";
        labels(&e->dst_labels, "voting", "voting-7b5c4-m3n8v");
        e->authority = "voting-svc.emojivoto:8080";
        e->path = kind == 9 ? "/emojivoto.v1.VotingService/Results" : vote_paths[emoji];
        if (emoji == 0 && kind != 9 && rnd(g, 100) < 15)
            e->grpc_status = 2;
        e->id = next_id(g, 1, 12, 4);
    }
    out[1] = *e;
    out[0].direction = MESH_DIR_OUTBOUND;
    out[0].latency_us += 150; /* the client's proxy sees a little more */
    out[0].id = next_id(g, 0, 16, 8);
    out[1].direction = MESH_DIR_INBOUND;
    return 2;
}

/* Back-dating: from spread_us at the start down to 0 at the end of the run. */
static uint64_t back_us(const struct gen *g, uint64_t added, uint64_t now)
{
    double left = 1.0;
    if (g->spread_us == 0)
        return 0;
    if (g->max_events)
        left = 1.0 - (double)added / (double)g->max_events;
    else if (g->duration_us)
        left = 1.0 - (double)(now - g->start_us) / (double)g->duration_us;
    return (uint64_t)((double)g->spread_us * (left > 0 ? left : 0));
}

static int done_generating(const struct gen *g, uint64_t added, uint64_t now)
{
    return (g->max_events && added >= g->max_events) ||
           (g->duration_us && now - g->start_us >= g->duration_us);
}

/* Before each sleep: while fewer than |window| batches wait for an ack, adds
 * one more batch and keeps the loop awake; otherwise the loop sleeps until
 * an ack (or a timer) comes. */
static void generate(struct mesh_loop *loop, void *ctx)
{
    struct gen *g = ctx;
    struct mesh_tapsend_counters c;
    if (!g->generating)
        return;
    mesh_tapsend_counters(g->ts, &c);
    uint64_t now = mesh_loop_now_us();
    if (done_generating(g, c.added, now)) {
        g->generating = 0;
        mesh_tapsend_flush(g->ts);
        if (mesh_tapsend_unacked(g->ts) == 0)
            mesh_loop_stop(loop); /* nothing left to wait for */
        return;
    }
    if (mesh_tapsend_unacked(g->ts) >= g->window)
        return;
    struct mesh_evt evts[2];
    uint64_t added = c.added;
    for (size_t n = 0; n < g->batch_events && !(g->max_events && added >= g->max_events); ) {
        size_t k = make_request(g, evts, wall_us() - back_us(g, added, now));
        for (size_t i = 0; i < k; i++)
            if (mesh_tapsend_add(g->ts, &evts[i]) == 0)
                added++;
        n += k;
    }
    mesh_loop_wake(loop);
}

static void on_progress(struct mesh_tapsend *ts, void *ctx)
{
    struct gen *g = ctx;
    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(ts, &c);
    uint64_t now = mesh_loop_now_us();
    if (c.acked != g->prev_acked) {
        g->prev_acked = c.acked;
        g->last_progress_us = now;
        g->last_ack_us = now;
    }
    if (!g->generating && mesh_tapsend_unacked(ts) == 0)
        mesh_loop_stop(g->loop);
}

static void interval_done(struct gen *g, uint64_t now, uint64_t acked)
{
    double rate = (double)(acked - g->interval_acked) / ((double)(now - g->interval_start_us) / 1e6);
    fprintf(stderr, "tapgen: %6.1f s: %llu acked, %.0f events/s in the last %.1f s\n",
            (double)(now - g->start_us) / 1e6, (unsigned long long)acked, rate,
            (double)(now - g->interval_start_us) / 1e6);
    if (g->min10 < 0 || rate < g->min10)
        g->min10 = rate;
    if (rate > g->max10)
        g->max10 = rate;
    g->interval_start_us = now;
    g->interval_acked = acked;
}

static int tick(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct gen *g = ctx;
    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(g->ts, &c);
    uint64_t now = mesh_loop_now_us();
    if (now - g->interval_start_us >= INTERVAL_US && g->generating)
        interval_done(g, now, c.acked);
    if (now - g->last_progress_us > PATIENCE_US) {
        g->gave_up = 1;
        mesh_loop_stop(loop);
    }
    if (g->generating)
        mesh_loop_wake(loop); /* past a deadline with the window full */
    return 100;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_s(void)
{
    struct timespec tsp;
    clock_gettime(CLOCK_MONOTONIC, &tsp);
    return (double)tsp.tv_sec + (double)tsp.tv_nsec / 1e9;
}

/* --stat-db: mesh_store_stat() alone, on a read-only connection. */
static int stat_db(const char *path, int runs)
{
    struct mesh_store_opts sopts;
    struct mesh_store *st;
    char err[512];
    mesh_store_opts_init(&sopts);
    sopts.readonly = 1;
    if (mesh_store_open(path, &sopts, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "tapgen: %s\n", err);
        return 1;
    }
    struct mesh_resource deploy = {MESH_RT_DEPLOY, NULL, "emojivoto"};
    struct mesh_store_stat_req req = {.resources = &deploy, .nresources = 1};
    const struct {
        const char *name;
        uint64_t last_us;
    } cases[] = {{"stat_1m", 60000000ull}, {"stat_1h", 3600000000ull}};
    double *times = calloc((size_t)runs, sizeof(*times));
    int status = 0;
    for (size_t c = 0; times && c < sizeof(cases) / sizeof(cases[0]); c++) {
        uint64_t requests = 0;
        req.window.last_us = cases[c].last_us;
        for (int r = 0; r <= runs; r++) { /* run 0 warms the page cache, untimed */
            struct mesh_store_stat_result res;
            double t0 = now_s();
            if (mesh_store_stat(st, &req, wall_us(), &res) != 0) {
                fprintf(stderr, "tapgen: stat: %s\n", mesh_store_errmsg(st));
                status = 1;
                goto out;
            }
            if (r > 0)
                times[r - 1] = now_s() - t0;
            requests = 0;
            for (size_t i = 0; i < res.nrows; i++)
                requests += res.rows[i].requests;
            mesh_store_stat_result_free(&res);
        }
        qsort(times, (size_t)runs, sizeof(*times), cmp_double);
        int p95 = (int)((runs * 95 + 99) / 100) - 1;
        printf("%s median=%.2f p95=%.2f requests=%llu\n", cases[c].name,
               times[runs / 2] * 1e3, times[p95 < 0 ? 0 : p95] * 1e3,
               (unsigned long long)requests);
    }
out:
    free(times);
    mesh_store_close(st);
    return status;
}

static const char usage[] =
    "Usage: tapgen --addr HOST:PORT [--seconds S] [--count N] [--spread-seconds N]\n"
    "              [--sender ID] [--batch N] [--window N] [--seed N]\n"
    "       tapgen --stat-db DB [--runs N]\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"addr", required_argument, NULL, 'a'},    {"seconds", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},   {"spread-seconds", required_argument, NULL, 'S'},
        {"sender", required_argument, NULL, 'i'},  {"batch", required_argument, NULL, 'b'},
        {"window", required_argument, NULL, 'w'},  {"seed", required_argument, NULL, 'r'},
        {"stat-db", required_argument, NULL, 'd'}, {"runs", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    struct gen g;
    memset(&g, 0, sizeof(g));
    g.rng = 0x9e3779b97f4a7c15ull;
    g.window = 32;
    g.batch_events = 1000;
    g.min10 = -1;
    const char *addr = NULL, *sender = NULL, *db = NULL;
    char sender_buf[128];
    int runs = 20, opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 's': g.duration_us = (uint64_t)(atof(optarg) * 1e6); break;
        case 'n': g.max_events = strtoull(optarg, NULL, 10); break;
        case 'S': g.spread_us = (uint64_t)(atof(optarg) * 1e6); break;
        case 'i': sender = optarg; break;
        case 'b': g.batch_events = strtoul(optarg, NULL, 10); break;
        case 'w': g.window = strtoul(optarg, NULL, 10); break;
        case 'r': g.rng ^= strtoull(optarg, NULL, 10) * 0x2545f4914f6cdd1dull; break;
        case 'd': db = optarg; break;
        case 'R': runs = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc || (db == NULL) == (addr == NULL) || runs <= 0 || g.batch_events == 0 ||
        g.window == 0 || (addr && g.duration_us == 0 && g.max_events == 0)) {
        fputs(usage, stderr);
        return 2;
    }
    if (db != NULL)
        return stat_db(db, runs);
    if (g.rng == 0)
        g.rng = 1;
    for (size_t i = 0; i < NEMOJI; i++) {
        char camel[64];
        snprintf(camel, sizeof(camel), "%s", emojis[i]);
        camel[0] = (char)(camel[0] >= 'a' && camel[0] <= 'z' ? camel[0] - 'a' + 'A' : camel[0]);
        snprintf(vote_paths[i], sizeof(vote_paths[i]), "/emojivoto.v1.VotingService/Vote%s", camel);
        snprintf(bot_paths[i], sizeof(bot_paths[i]), "/api/vote?choice=:%s:", emojis[i]);
    }
    for (int i = 0; i < NCONN; i++)
        g.streams[i] = 1;
    if (sender == NULL) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        snprintf(sender_buf, sizeof(sender_buf), "tapgen/%ld/%ld.%06ld", (long)getpid(),
                 (long)tv.tv_sec, (long)tv.tv_usec);
        sender = sender_buf;
    }
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    if ((g.loop = mesh_loop_new()) == NULL) {
        fprintf(stderr, "tapgen: cannot create the event loop\n");
        return 1;
    }
    struct mesh_tapsend_opts topts = {
        .addr = addr,
        .sender_id = sender,
        .batch_events = g.batch_events,
        .max_batches = g.window + 2, /* the partial batch sealed at the end fits too */
        .on_progress = on_progress,
        .ctx = &g,
    };
    if ((g.ts = mesh_tapsend_new(g.loop, &topts, err, sizeof(err))) == NULL) {
        fprintf(stderr, "tapgen: %s\n", err);
        mesh_loop_free(g.loop);
        return 2;
    }
    double cpu0 = cpu_s();
    g.start_us = g.interval_start_us = g.last_progress_us = mesh_loop_now_us();
    g.generating = 1;
    mesh_loop_on_before_sleep(g.loop, generate, &g);
    mesh_loop_add_timer(g.loop, 100, tick, &g);
    mesh_loop_run(g.loop);
    double cpu = cpu_s() - cpu0;

    struct mesh_tapsend_counters c;
    mesh_tapsend_counters(g.ts, &c);
    uint64_t end = g.last_ack_us > g.start_us ? g.last_ack_us : mesh_loop_now_us();
    double secs = (double)(end - g.start_us) / 1e6;
    if (g.min10 < 0) /* shorter than one interval */
        g.min10 = g.max10 = (double)c.acked / secs;
    printf("acked=%llu added=%llu dropped=%llu seconds=%.3f rate=%.0f cpu=%.2f min10=%.0f "
           "max10=%.0f reconnects=%llu duplicates=%llu\n",
           (unsigned long long)c.acked, (unsigned long long)c.added, (unsigned long long)c.dropped,
           secs, (double)c.acked / secs, cpu, g.min10, g.max10, (unsigned long long)c.reconnects,
           (unsigned long long)c.duplicates);
    int status = 0;
    if (g.gave_up) {
        fprintf(stderr, "tapgen: no acknowledgement for %llu s (%llu of %llu events acked)%s%s\n",
                PATIENCE_US / 1000000, (unsigned long long)c.acked, (unsigned long long)c.added,
                *mesh_tapsend_last_error(g.ts) ? ": " : "", mesh_tapsend_last_error(g.ts));
        status = 1;
    }
    mesh_tapsend_free(g.ts);
    mesh_loop_free(g.loop);
    return status;
}
