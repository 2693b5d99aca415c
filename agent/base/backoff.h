/* backoff.h: when to try again after a retryable send failure. Kept apart
 * from the exporter helper so the schedule is a pure function that tests can
 * check to the nanosecond with a fixed clock and a fixed random sequence.
 *
 * The schedule is the collector's: the base interval starts at
 * initial_interval and grows by multiplier after each failure up to
 * max_interval; each delay is drawn uniformly from base*(1 ± randomization)
 * (so, as in the collector, a delay may exceed max_interval by up to the
 * randomization factor); an attempt that would start after max_elapsed_time
 * is not made. A server's Retry-After / RetryInfo replaces the computed
 * delay, under the same max_elapsed_time limit. */
#ifndef OT_BACKOFF_H
#define OT_BACKOFF_H

#include <stdint.h>

typedef struct ot_backoff_cfg {
    int64_t initial_interval; /* ns */
    double randomization_factor;
    double multiplier;
    int64_t max_interval;     /* ns */
    int64_t max_elapsed_time; /* ns; 0 = retry forever */
} ot_backoff_cfg;

#define OT_BACKOFF_STOP ((int64_t)-1)

/* Delay before the next attempt after `failures` failed attempts (1 after the
 * first failure), `elapsed_ns` after the first attempt started. rnd is a
 * uniform draw in [0, 1). server_ns > 0 is the delay the server asked for and
 * is used as is. Returns OT_BACKOFF_STOP when the next attempt would start
 * after max_elapsed_time. */
int64_t ot_backoff_delay(const ot_backoff_cfg *c, unsigned failures, int64_t elapsed_ns,
                         double rnd, int64_t server_ns);

/* The schedule of one batch, with the clock and random source injectable. */
typedef struct ot_backoff {
    const ot_backoff_cfg *cfg;
    int64_t (*now)(void *ctx);  /* NULL: ot_now_ns (factory.h) */
    double (*rand)(void *ctx);  /* NULL: an internal generator; [0, 1) */
    void *ctx;
    int64_t start_ns;
    unsigned failures;
    uint64_t rng;
} ot_backoff;

/* Starts the elapsed-time clock (call just before the first attempt). seed
 * feeds the internal generator when rand is NULL. */
void ot_backoff_start(ot_backoff *b, const ot_backoff_cfg *cfg, uint64_t seed);
/* Records one failure and returns the delay before the next attempt, or
 * OT_BACKOFF_STOP. */
int64_t ot_backoff_next(ot_backoff *b, int64_t server_ns);

#endif
