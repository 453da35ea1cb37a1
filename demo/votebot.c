/* demo/votebot.c — the vote bot: like emojivoto's, it lists the emoji and votes, over and
 * over, choosing :doughnut: about 15% of the time and a random emoji otherwise.
 *
 * Blocking on purpose: one request at a time on one kept-alive connection is what the bot
 * is, and SIGTERM's default action ends it. Doughnuts are spread evenly (error diffusion
 * from a random start) rather than drawn by coin: a short run shows 15%, not 9% or 22%.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "app.h"
#include "mesh/err.h"
#include "mesh/loop.h"

#define MAX_CODES 256
#define DOUGHNUT_SHARE 0.15

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

/* The shortcodes of /api/list's JSON: every "shortcode":"…" value. */
static size_t parse_shortcodes(const char *json, char codes[][64], size_t max)
{
    size_t n = 0;
    const char *key = "\"shortcode\":\"";
    for (const char *p = strstr(json, key); p != NULL && n < max; p = strstr(p, key)) {
        p += strlen(key);
        size_t len = strcspn(p, "\"");
        if (len > 0 && len < 64) {
            memcpy(codes[n], p, len);
            codes[n][len] = 0;
            n++;
        }
        p += len;
    }
    return n;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static const char usage[] =
    "Usage: mesh demo-app vote-bot [--web ADDR] [--host HOST] [--rate N]\n"
    "Lists the emoji and votes N times a second (default 4) at ADDR (default\n"
    "127.0.0.1:8082), with Host HOST (default web-svc.emojivoto:80).\n";

int demo_votebot_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"web", required_argument, NULL, 'w'},
        {"host", required_argument, NULL, 'H'},
        {"rate", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *web = "127.0.0.1:8082", *host = "web-svc.emojivoto:80";
    double rate = 4;
    int opt;
    char *end;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'w': web = optarg; break;
        case 'H': host = optarg; break;
        case 'r':
            rate = strtod(optarg, &end);
            if (end == optarg || *end != 0 || !(rate > 0 && rate <= 1000))
                return demo_usage_error("vote-bot", optarg, "not a rate between 0 and 1000");
            break;
        case 'h': fputs(usage, stdout); return MESH_EXIT_OK;
        default:
            return demo_usage_error("vote-bot", argv[optind - 1], "unknown option or missing value");
        }
    }
    if (optind < argc)
        return demo_usage_error("vote-bot", argv[optind], "unexpected argument");
    if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state))
        rng_state = mesh_wall_now_us();
    static char codes[MAX_CODES][64];
    struct mesh_buf body;
    mesh_buf_init(&body, 1u << 20);
    char err[256], target[128];
    int fd = -1;
    double doughnut_acc = rng_unit(); /* error diffusion toward DOUGHNUT_SHARE */
    uint64_t period_us = (uint64_t)(1e6 / rate), next = mesh_loop_now_us();
    unsigned long votes = 0, failed = 0, errors = 0;
    fprintf(stderr, "vote-bot: ready, voting %.3g times a second at %s (Host %s)\n", rate, web,
            host);
    for (;;) {
        uint64_t now = mesh_loop_now_us();
        if (now < next)
            sleep_us(next - now);
        next += period_us;
        if (mesh_loop_now_us() > next + 10 * period_us)
            next = mesh_loop_now_us(); /* fell far behind: do not burst to catch up */
        int status = demo_http_get(&fd, web, host, "/api/list", &body, 5000, err, sizeof(err));
        size_t n = status == 200 ? parse_shortcodes(body.data ? body.data : "", codes, MAX_CODES) : 0;
        if (n == 0) {
            if (errors++ % 20 == 0)
                fprintf(stderr, "vote-bot: /api/list: %s\n",
                        status < 0 ? err : status == 200 ? "no emoji in the answer" : "failed");
            continue;
        }
        const char *choice;
        doughnut_acc += DOUGHNUT_SHARE;
        if (doughnut_acc >= 1) {
            doughnut_acc -= 1;
            choice = ":doughnut:";
        } else {
            choice = codes[rng_next() % n];
        }
        /* ':' needs no escaping in a query; shortcodes are [a-z0-9_] */
        snprintf(target, sizeof(target), "/api/vote?choice=%s", choice);
        status = demo_http_get(&fd, web, host, target, &body, 5000, err, sizeof(err));
        votes++;
        if (status != 200)
            failed++;
        if (status < 0 && errors++ % 20 == 0)
            fprintf(stderr, "vote-bot: %s\n", err);
        if (votes % 500 == 0)
            fprintf(stderr, "vote-bot: %lu votes, %lu failed\n", votes, failed);
    }
}
