/* tests/unit/test_balance.c — endpoint choice (proxy/balance.c): peak-EWMA with
 * power of two choices, pending load, ejection and its backoff, with time driven
 * by hand and a fixed seed. */
#include <stdint.h>
#include <string.h>

#include "proxy.h"
#include "test.h"

#define MS  1000ull
#define SEC 1000000ull

static void route_init(struct px_route *route, struct px_endpoint *eps, size_t n)
{
    memset(route, 0, sizeof(*route));
    memset(eps, 0, n * sizeof(*eps));
    route->authority = "svc:80";
    route->eps = eps;
    route->neps = n;
}

/* |n| requests, one at a time, |step| µs apart; endpoint i answers in lat[i] µs. */
static void drive(struct px_route *route, const uint64_t *lat, unsigned n, uint64_t *now,
                  uint64_t step, unsigned *picks)
{
    for (unsigned i = 0; i < n; i++) {
        struct px_endpoint *ep = px_endpoint_pick(route, *now);
        size_t idx = (size_t)(ep - route->eps);
        if (picks != NULL)
            picks[idx]++;
        px_endpoint_start(ep);
        *now += step;
        px_endpoint_done(ep, *now, lat[idx], 0);
    }
}

static void test_slow_endpoint_avoided(void)
{
    struct px_endpoint eps[2];
    struct px_route route;
    route_init(&route, eps, 2);
    px_balance_seed(42);
    uint64_t lat[2] = {10 * MS, 50 * MS}, now = 1 * SEC;
    /* warm-up: 20 s, long enough for the untried one to be tried (its default
     * 30 ms estimate decays below the other's 10 ms after about 11 s) */
    drive(&route, lat, 2000, &now, 10 * MS, NULL);
    CHECK(eps[0].ewma_us > 0 && eps[1].ewma_us > 0);
    unsigned picks[2] = {0};
    drive(&route, lat, 1000, &now, 10 * MS, picks);
    CHECK(picks[1] < 200);
    CHECK(picks[0] + picks[1] == 1000);
    CHECK(eps[0].ewma_us > 9 * MS && eps[0].ewma_us < 11 * MS);

    /* three endpoints, the slow one in the middle: still avoided */
    struct px_endpoint eps3[3];
    route_init(&route, eps3, 3);
    uint64_t lat3[3] = {10 * MS, 80 * MS, 12 * MS};
    drive(&route, lat3, 100, &now, 10 * MS, NULL);
    unsigned picks3[3] = {0};
    drive(&route, lat3, 1000, &now, 10 * MS, picks3);
    CHECK(picks3[1] < 200);
    CHECK(picks3[0] > 100 && picks3[2] > 100);
}

static void test_new_endpoints_tried(void)
{
    /* an endpoint without a sample costs the default 30 ms: cheaper than a 50 ms one */
    struct px_endpoint eps[2];
    struct px_route route;
    route_init(&route, eps, 2);
    px_balance_seed(1);
    eps[0].ewma_us = 50 * MS;
    eps[0].stamp_us = 5 * SEC;
    CHECK(px_endpoint_pick(&route, 5 * SEC) == &eps[1]);
    /* and dearer than a 10 ms one */
    eps[0].ewma_us = 10 * MS;
    CHECK(px_endpoint_pick(&route, 5 * SEC) == &eps[0]);
}

static void test_peak_and_decay(void)
{
    struct px_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    px_endpoint_start(&ep);
    px_endpoint_done(&ep, 1 * SEC, 10 * MS, 0);
    CHECK(ep.ewma_us == 10 * MS);
    CHECK_EQ_INT(ep.pending, 0);
    /* a peak is taken at once */
    px_endpoint_done(&ep, 1 * SEC + 1, 100 * MS, 0);
    CHECK(ep.ewma_us == 100 * MS);
    /* a lower sample 10 s (τ) later: 1/e of the old estimate remains */
    px_endpoint_done(&ep, 11 * SEC + 1, 10 * MS, 0);
    double want = 100 * MS * 0.36787944 + 10 * MS * (1 - 0.36787944);
    CHECK(ep.ewma_us > want - 10 && ep.ewma_us < want + 10);
    /* pending never underflows */
    px_endpoint_done(&ep, 12 * SEC, 10 * MS, 0);
    CHECK_EQ_INT(ep.pending, 0);
}

static void test_pending_raises_cost(void)
{
    struct px_endpoint eps[2];
    struct px_route route;
    route_init(&route, eps, 2);
    px_balance_seed(7);
    uint64_t now = 1 * SEC;
    for (int i = 0; i < 2; i++) {
        px_endpoint_start(&eps[i]);
        px_endpoint_done(&eps[i], now, 10 * MS, 0);
    }
    /* equal latency: the one with requests in flight loses every time */
    px_endpoint_start(&eps[0]);
    px_endpoint_start(&eps[0]);
    for (int i = 0; i < 50; i++)
        CHECK(px_endpoint_pick(&route, now) == &eps[1]);
    /* 3 in flight at 10 ms cost 40 ms: worse than 25 ms idle */
    eps[1].ewma_us = 25 * MS;
    px_endpoint_start(&eps[0]);
    CHECK(px_endpoint_pick(&route, now) == &eps[1]);
    /* with 1 in flight (20 ms) the 10 ms one is cheaper than 25 ms */
    eps[0].pending = 1;
    CHECK(px_endpoint_pick(&route, now) == &eps[0]);

    /* concurrent load spreads over equal endpoints */
    route_init(&route, eps, 2);
    unsigned picks[2] = {0};
    for (int i = 0; i < 100; i++) {
        struct px_endpoint *ep = px_endpoint_pick(&route, now);
        picks[ep - eps]++;
        px_endpoint_start(ep);
    }
    CHECK(picks[0] >= 45 && picks[0] <= 55);
}

static void fail_n(struct px_endpoint *ep, uint64_t now, int n)
{
    for (int i = 0; i < n; i++) {
        px_endpoint_start(ep);
        px_endpoint_done(ep, now, 1 * MS, 1);
    }
}

static void test_ejection(void)
{
    struct px_endpoint eps[2];
    struct px_route route;
    route_init(&route, eps, 2);
    px_balance_seed(3);
    uint64_t now = 100 * SEC;
    fail_n(&eps[0], now, 4);
    CHECK_EQ_INT(eps[0].ejected_until_us, 0);
    /* a failure does not make it look fast */
    CHECK(eps[0].ewma_us >= 30 * MS);
    fail_n(&eps[0], now, 1);
    CHECK_EQ_INT(eps[0].ejected_until_us, now + 10 * SEC);
    /* ejected: never picked, even though eps[1] is much slower */
    eps[1].ewma_us = 5000 * MS;
    eps[1].stamp_us = now;
    eps[0].ewma_us = 1 * MS;
    eps[0].stamp_us = now;
    for (int i = 0; i < 100; i++)
        CHECK(px_endpoint_pick(&route, now + 9 * SEC) == &eps[1]);
    /* failures of requests in flight while ejected do not extend it */
    fail_n(&eps[0], now + 1, 7);
    CHECK_EQ_INT(eps[0].ejected_until_us, now + 10 * SEC);
    /* back after 10 s */
    now += 10 * SEC;
    CHECK(px_endpoint_pick(&route, now) == &eps[0]);
    /* five more failures: 20 s, then 40 s, ... up to 5 min */
    fail_n(&eps[0], now, 5);
    CHECK_EQ_INT(eps[0].ejected_until_us, now + 20 * SEC);
    uint64_t want[] = {40, 80, 160, 300, 300, 300};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        now = eps[0].ejected_until_us;
        fail_n(&eps[0], now, 5);
        CHECK_EQ_INT(eps[0].ejected_until_us, now + want[i] * SEC);
    }
    /* a success ends the ejection and the backoff */
    px_endpoint_done(&eps[0], now, 1 * MS, 0);
    CHECK_EQ_INT(eps[0].ejected_until_us, 0);
    CHECK_EQ_INT(eps[0].failures, 0);
    fail_n(&eps[0], now, 5);
    CHECK_EQ_INT(eps[0].ejected_until_us, now + 10 * SEC);
    /* a success between failures restarts the count */
    px_endpoint_done(&eps[1], now, 1 * MS, 0);
    fail_n(&eps[1], now, 4);
    px_endpoint_done(&eps[1], now, 1 * MS, 0);
    fail_n(&eps[1], now, 4);
    CHECK_EQ_INT(eps[1].ejected_until_us, 0);
}

static void test_all_ejected(void)
{
    struct px_endpoint eps[3];
    struct px_route route;
    route_init(&route, eps, 3);
    px_balance_seed(11);
    uint64_t now = 50 * SEC;
    for (int i = 0; i < 3; i++)
        fail_n(&eps[i], now, 5);
    unsigned picks[3] = {0};
    for (int i = 0; i < 300; i++) {
        struct px_endpoint *ep = px_endpoint_pick(&route, now + 1);
        CHECK(ep != NULL);
        if (ep != NULL)
            picks[ep - eps]++;
    }
    CHECK(picks[0] > 0 && picks[1] > 0 && picks[2] > 0);
    /* two ejected, one left: only that one */
    px_endpoint_done(&eps[2], now, 1 * MS, 0);
    for (int i = 0; i < 50; i++)
        CHECK(px_endpoint_pick(&route, now + 1) == &eps[2]);
}

static void test_single_and_empty(void)
{
    struct px_endpoint ep;
    struct px_route route;
    route_init(&route, &ep, 1);
    fail_n(&ep, 1 * SEC, 5);
    CHECK(ep.ejected_until_us != 0);
    CHECK(px_endpoint_pick(&route, 1 * SEC) == &ep);
    ep.pending = 1000;
    CHECK(px_endpoint_pick(&route, 1 * SEC) == &ep);
    route.neps = 0;
    CHECK(px_endpoint_pick(&route, 1 * SEC) == NULL);
}

static void picks_for_seed(uint64_t seed, size_t *out, int n)
{
    struct px_endpoint eps[4];
    struct px_route route;
    route_init(&route, eps, 4);
    px_balance_seed(seed);
    for (int i = 0; i < n; i++)
        out[i] = (size_t)(px_endpoint_pick(&route, 1 * SEC) - eps);
}

static void test_seeded(void)
{
    size_t a[64], b[64], c[64];
    picks_for_seed(5, a, 64);
    picks_for_seed(5, b, 64);
    picks_for_seed(6, c, 64);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    CHECK(memcmp(a, c, sizeof(a)) != 0);
    /* all equal and idle: ties go to the first drawn, so every endpoint comes up */
    unsigned seen[4] = {0};
    for (int i = 0; i < 64; i++)
        seen[a[i]]++;
    CHECK(seen[0] && seen[1] && seen[2] && seen[3]);
}

int main(void)
{
    RUN(test_slow_endpoint_avoided);
    RUN(test_new_endpoints_tried);
    RUN(test_peak_and_decay);
    RUN(test_pending_raises_cost);
    RUN(test_ejection);
    RUN(test_all_ejected);
    RUN(test_single_and_empty);
    RUN(test_seeded);
    return TEST_REPORT();
}
