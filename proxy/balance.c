/* proxy/balance.c — endpoint choice: power of two choices over peak-EWMA latency.
 *
 * As linkerd2-proxy (tower's PeakEwma, default RTT 30 ms, decay τ = 10 s): a sample
 * above the estimate replaces it (peak), one below pulls it down with weight
 * 1 - exp(-elapsed/τ); at pick time the estimate decays toward 0 with idle time, so
 * a slow endpoint is retried now and then. cost = estimate × (pending + 1). Failures
 * only ever raise the estimate: a fast error is not a fast answer. Five consecutive
 * failures eject for 10 s, doubling per further five (up to 5 min); a success resets.
 * The PRNG is module state (one thread, one loop); px_balance_seed() makes tests repeatable.
 */
#include <math.h>

#include "proxy.h"

#define BAL_DEFAULT_RTT_US 30000.0 /* linkerd2-proxy's EWMA_DEFAULT_RTT */
#define BAL_DECAY_US       10e6    /* linkerd2-proxy's EWMA_DECAY */
#define BAL_EJECT_FAILURES 5u
#define BAL_EJECT_BASE_US  10000000ull
#define BAL_EJECT_MAX_US   300000000ull

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

void px_balance_seed(uint64_t seed)
{
    /* splitmix64 step, so that small or similar seeds give unrelated streams
     * and the xorshift state is never 0 */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    rng_state = z ? z : 0x9e3779b97f4a7c15ull;
}

/* xorshift64*: uniform in [0, n) for n ≤ 2^32 (Lemire's multiply, bias ≤ n/2^32). */
static size_t rng_below(size_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = (rng_state * 0x2545f4914f6cdd1dull) >> 32;
    return (size_t)((r * (uint64_t)n) >> 32);
}

static int ejected(const struct px_endpoint *ep, uint64_t now_us)
{
    return ep->ejected_until_us != 0 && now_us < ep->ejected_until_us;
}

static double cost(struct px_endpoint *ep, uint64_t now_us)
{
    /* as tower, the default estimate decays from when the endpoint was first
     * seen, so one never tried is tried before long even beside a fast one */
    if (ep->ewma_us <= 0 && ep->stamp_us == 0)
        ep->stamp_us = now_us;
    double est = ep->ewma_us > 0 ? ep->ewma_us : BAL_DEFAULT_RTT_US;
    double idle = now_us > ep->stamp_us ? (double)(now_us - ep->stamp_us) : 0.0;
    return est * exp(-idle / BAL_DECAY_US) * ((double)ep->pending + 1.0);
}

/* The |k|-th endpoint among those that count (not ejected, unless |all|). */
static struct px_endpoint *nth(struct px_route *route, size_t k, int all, uint64_t now_us)
{
    for (size_t i = 0; i < route->neps; i++) {
        if (!all && ejected(&route->eps[i], now_us))
            continue;
        if (k-- == 0)
            return &route->eps[i];
    }
    return NULL;
}

struct px_endpoint *px_endpoint_pick(struct px_route *route, uint64_t now_us)
{
    if (route == NULL || route->neps == 0)
        return NULL;
    if (route->neps == 1)
        return &route->eps[0];
    size_t navail = 0;
    for (size_t i = 0; i < route->neps; i++)
        navail += !ejected(&route->eps[i], now_us);
    int all = navail == 0;
    if (all)
        navail = route->neps;
    if (navail == 1)
        return nth(route, 0, all, now_us);
    size_t a = rng_below(navail), b = rng_below(navail - 1);
    if (b >= a)
        b++;
    struct px_endpoint *epa = nth(route, a, all, now_us), *epb = nth(route, b, all, now_us);
    return cost(epb, now_us) < cost(epa, now_us) ? epb : epa;
}

void px_endpoint_start(struct px_endpoint *ep)
{
    ep->pending++;
}

void px_endpoint_done(struct px_endpoint *ep, uint64_t now_us, uint64_t latency_us, int failed)
{
    if (ep->pending > 0)
        ep->pending--;
    double sample = latency_us > 0 ? (double)latency_us : 1.0; /* 0 means "no sample" */
    if (ep->ewma_us <= 0) {
        ep->ewma_us = failed && sample < BAL_DEFAULT_RTT_US ? BAL_DEFAULT_RTT_US : sample;
    } else if (sample > ep->ewma_us) {
        ep->ewma_us = sample;
    } else if (!failed) {
        double elapsed = now_us > ep->stamp_us ? (double)(now_us - ep->stamp_us) : 0.0;
        double decay = exp(-elapsed / BAL_DECAY_US);
        ep->ewma_us = ep->ewma_us * decay + sample * (1.0 - decay);
    }
    ep->stamp_us = now_us;

    if (!failed) {
        ep->failures = 0;
        ep->ejected_until_us = 0;
        return;
    }
    /* failures of requests already in flight when it was ejected say nothing new */
    if (ejected(ep, now_us))
        return;
    ep->failures++;
    if (ep->failures % BAL_EJECT_FAILURES == 0) {
        unsigned level = ep->failures / BAL_EJECT_FAILURES - 1; /* 0 for the first */
        uint64_t span = level >= 5 ? BAL_EJECT_MAX_US : BAL_EJECT_BASE_US << level;
        if (span > BAL_EJECT_MAX_US)
            span = BAL_EJECT_MAX_US;
        ep->ejected_until_us = now_us + span;
    }
}
