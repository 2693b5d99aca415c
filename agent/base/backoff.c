/* backoff.c: the retry schedule of the exporter helper (see backoff.h). */
#include "base/backoff.h"

#include <math.h>

#include "base/clock.h" /* ot_now_ns */

/* Base interval after `failures` failures, computed in double so that a long
 * outage cannot overflow; the cap keeps it finite. */
static double base_interval(const ot_backoff_cfg *c, unsigned failures)
{
    double base = (double)c->initial_interval;
    double cap = c->max_interval > 0 ? (double)c->max_interval : INFINITY;
    double mult = c->multiplier >= 1.0 ? c->multiplier : 1.0;
    for (unsigned i = 1; i < failures && base < cap; i++)
        base *= mult;
    return base < cap ? base : cap;
}

int64_t ot_backoff_delay(const ot_backoff_cfg *c, unsigned failures, int64_t elapsed_ns,
                         double rnd, int64_t server_ns)
{
    double delay;
    if (server_ns > 0) {
        delay = (double)server_ns;
    } else {
        double base = base_interval(c, failures ? failures : 1);
        double rf = c->randomization_factor;
        if (rf < 0)
            rf = 0;
        if (rf > 1)
            rf = 1;
        if (rnd < 0 || rnd >= 1)
            rnd = 0.5;
        double lo = base - rf * base, hi = base + rf * base;
        delay = lo + rnd * (hi - lo);
    }
    if (delay > 9.0e18)
        delay = 9.0e18;
    int64_t d = (int64_t)delay;
    if (c->max_elapsed_time > 0 && elapsed_ns + d > c->max_elapsed_time)
        return OT_BACKOFF_STOP;
    return d;
}

void ot_backoff_start(ot_backoff *b, const ot_backoff_cfg *cfg, uint64_t seed)
{
    b->cfg = cfg;
    b->failures = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    b->start_ns = b->now ? b->now(b->ctx) : ot_now_ns();
}

/* splitmix64: enough for jitter, no shared state between sender threads. */
static double next_rand(ot_backoff *b)
{
    uint64_t z = (b->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0; /* 2^53 */
}

int64_t ot_backoff_next(ot_backoff *b, int64_t server_ns)
{
    int64_t now = b->now ? b->now(b->ctx) : ot_now_ns();
    double r = b->rand ? b->rand(b->ctx) : next_rand(b);
    b->failures++;
    return ot_backoff_delay(b->cfg, b->failures, now - b->start_ns, r, server_ns);
}
