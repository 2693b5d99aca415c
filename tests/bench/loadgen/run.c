/* run.c: the schedule every worker follows. Requests are numbered from one
 * shared counter, so seqs are unique across workers (request r carries
 * seqs r*batch ..); --rate is split evenly over workers, each pacing its
 * own requests open-loop (a late request is sent at once and its latency
 * counts from when it was due, so overload shows up as latency rather than
 * as a slower offered rate). */
#include <time.h>

#include "loadgen.h"

int64_t lg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t lg_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool lg_time_over(lg_worker *w, int64_t now)
{
    return atomic_load_explicit(&w->run->stop, memory_order_relaxed) ||
           (w->run->t_end && now >= w->run->t_end);
}

size_t lg_claim(lg_worker *w, uint64_t *seq0)
{
    lg_run *r = w->run;
    if (lg_time_over(w, lg_now()))
        return 0;
    uint64_t q = atomic_fetch_add_explicit(&r->next_req, 1, memory_order_relaxed);
    if (q >= r->total_reqs)
        return 0;
    size_t b = r->o->batch;
    *seq0 = q * b;
    if (r->o->count && *seq0 + b > r->o->count)
        return (size_t)(r->o->count - *seq0);
    return b;
}

int64_t lg_due_in(lg_worker *w, int64_t now)
{
    if (!w->interval_ns)
        return 0;
    return w->next_due - now;
}

int64_t lg_take_due(lg_worker *w, int64_t now)
{
    if (!w->interval_ns)
        return now;
    int64_t due = w->next_due;
    w->next_due += w->interval_ns;
    return due;
}
