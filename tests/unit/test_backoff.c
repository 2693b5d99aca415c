/* Unit tests for the retry schedule: exact delays with a fixed random
 * sequence and an injected clock, the caps, giving up, and Retry-After. */
#include <criterion/criterion.h>

#include "base/backoff.h"

#define S(x) ((int64_t)((x) * 1e9))

static ot_backoff_cfg collector_defaults(void)
{
    return (ot_backoff_cfg){
        .initial_interval = S(5),
        .randomization_factor = 0.5,
        .multiplier = 1.5,
        .max_interval = S(30),
        .max_elapsed_time = S(300),
    };
}

Test(backoff, midpoint_draw_is_the_base_interval)
{
    ot_backoff_cfg c = collector_defaults();
    const int64_t want[] = {S(5), S(7.5), S(11.25), S(16.875), S(25.3125), S(30), S(30)};
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(ot_backoff_delay(&c, i + 1, 0, 0.5, 0), want[i], "failure %u: %lld", i + 1,
                     (long long)ot_backoff_delay(&c, i + 1, 0, 0.5, 0));
}

Test(backoff, jitter_spans_plus_minus_randomization)
{
    ot_backoff_cfg c = collector_defaults();
    cr_assert_eq(ot_backoff_delay(&c, 1, 0, 0.0, 0), S(2.5));
    cr_assert_eq(ot_backoff_delay(&c, 1, 0, 0.25, 0), S(3.75));
    cr_assert_eq(ot_backoff_delay(&c, 1, 0, 0.75, 0), S(6.25));
    cr_assert_eq(ot_backoff_delay(&c, 2, 0, 0.0, 0), S(3.75));
    /* Jitter applies after the cap, as in the collector: 30s ± 50%. */
    cr_assert_eq(ot_backoff_delay(&c, 20, 0, 0.0, 0), S(15));
    int64_t hi = ot_backoff_delay(&c, 20, 0, 0.999999, 0);
    cr_assert(hi > S(44.99) && hi < S(45));
    c.randomization_factor = 0;
    cr_assert_eq(ot_backoff_delay(&c, 1, 0, 0.9, 0), S(5));
}

typedef struct fixture {
    int64_t now;
    const double *r;
    size_t i, n;
} fixture;

static int64_t fake_now(void *ctx)
{
    return ((fixture *)ctx)->now;
}

static double fake_rand(void *ctx)
{
    fixture *f = ctx;
    return f->r[f->i++ % f->n];
}

Test(backoff, schedule_with_injected_clock_and_random_sequence)
{
    ot_backoff_cfg c = collector_defaults();
    const double seq[] = {0.0, 1.0 / 4, 0.5, 3.0 / 4};
    fixture f = {.now = S(1000), .r = seq, .n = 4};
    ot_backoff b = {.now = fake_now, .rand = fake_rand, .ctx = &f};
    ot_backoff_start(&b, &c, 1);
    /* base 5, 7.5, 11.25, 16.875, 25.3125, 30 ...; delay = base*(0.5 + r). */
    const int64_t want[] = {
        S(2.5),       S(7.5 * 0.75), S(11.25),     S(16.875 * 1.25), S(25.3125 * 0.5),
        S(30 * 0.75), S(30),         S(30 * 1.25), S(15),            S(22.5),
        S(30),        S(37.5),       S(15),            S(22.5),
    };
    int64_t elapsed = 0;
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t d = ot_backoff_next(&b, 0);
        cr_assert_eq(d, want[i], "retry %u: got %lld want %lld", i + 1, (long long)d,
                     (long long)want[i]);
        f.now += d + S(0.1); /* each attempt takes 100ms */
        elapsed += d + S(0.1);
    }
    /* 14 retries took 287.025s; the next draw (r = 0.5: 30s) would start
     * after 300s, so the schedule stops. */
    cr_assert(elapsed > S(287) && elapsed < S(287.05));
    cr_assert_eq(ot_backoff_delay(&c, 15, 0, 0.5, 0), S(30));
    cr_assert_eq(ot_backoff_next(&b, 0), OT_BACKOFF_STOP);
}

Test(backoff, gives_up_when_next_attempt_passes_max_elapsed)
{
    ot_backoff_cfg c = collector_defaults();
    const double mid[] = {0.5};
    fixture f = {.now = 0, .r = mid, .n = 1};
    ot_backoff b = {.now = fake_now, .rand = fake_rand, .ctx = &f};
    ot_backoff_start(&b, &c, 1);
    int retries = 0;
    int64_t d;
    while ((d = ot_backoff_next(&b, 0)) != OT_BACKOFF_STOP) {
        f.now += d;
        retries++;
        cr_assert_leq(f.now, S(300));
    }
    /* 5+7.5+11.25+16.875+25.3125 = 65.9375, then 7 × 30 = 275.9375. */
    cr_assert_eq(retries, 12);
    cr_assert_eq(f.now, S(275.9375));
}

Test(backoff, zero_max_elapsed_retries_forever)
{
    ot_backoff_cfg c = collector_defaults();
    c.max_elapsed_time = 0;
    cr_assert_eq(ot_backoff_delay(&c, 100000, S(1e6), 0.5, 0), S(30));
}

Test(backoff, server_delay_replaces_the_computed_one)
{
    ot_backoff_cfg c = collector_defaults();
    cr_assert_eq(ot_backoff_delay(&c, 1, 0, 0.5, S(42)), S(42));
    cr_assert_eq(ot_backoff_delay(&c, 9, 0, 0.0, S(0.05)), S(0.05));
    /* Retry-After still obeys max_elapsed_time. */
    cr_assert_eq(ot_backoff_delay(&c, 1, S(290), 0.5, S(20)), OT_BACKOFF_STOP);
    cr_assert_eq(ot_backoff_delay(&c, 1, S(270), 0.5, S(20)), S(20));

    fixture f = {.now = 0, .r = (const double[]){0.5}, .n = 1};
    ot_backoff b = {.now = fake_now, .rand = fake_rand, .ctx = &f};
    ot_backoff_start(&b, &c, 1);
    cr_assert_eq(ot_backoff_next(&b, S(60)), S(60));
    f.now = S(60);
    /* The computed schedule still advanced: second failure, base 7.5s. */
    cr_assert_eq(ot_backoff_next(&b, 0), S(7.5));
}

Test(backoff, internal_generator_stays_in_range)
{
    ot_backoff_cfg c = collector_defaults();
    c.max_elapsed_time = 0;
    ot_backoff b = {0};
    ot_backoff_start(&b, &c, 12345);
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        b.failures = 0; /* always the first interval */
        int64_t d = ot_backoff_next(&b, 0);
        cr_assert(d >= S(2.5) && d <= S(7.5));
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    /* It does jitter, across most of the range. */
    cr_assert_lt(lo, S(3));
    cr_assert_gt(hi, S(7));
}
