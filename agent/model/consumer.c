/* consumer.c: fan-out and swappable entry consumers (see consumer.h). */
#include "model/consumer.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *ot_status_name(ot_status s)
{
    switch (s) {
    case OT_OK:
        return "ok";
    case OT_RETRYABLE:
        return "retryable";
    case OT_PERMANENT:
        return "permanent";
    }
    return "unknown";
}

ot_status ot_edit_consumer_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    return ((ot_edit_consumer *)self)->consume(self, b, err);
}

struct ot_fanout {
    ot_consumer base;
    size_t n;
    ot_consumer *targets[];
};

static ot_status fanout_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    ot_fanout *f = (ot_fanout *)self;
    ot_status worst = OT_OK;
    /* One reference per target; each target owns its own. Mutating targets
     * see refs > 1 and clone, so siblings never see their changes. */
    for (size_t i = 1; i < f->n; i++)
        ot_batch_ref(b);
    for (size_t i = 0; i < f->n; i++) {
        ot_err e = {{0}};
        ot_status s = ot_consume(f->targets[i], b, &e);
        if (s > worst) {
            worst = s;
            if (err)
                *err = e;
        }
    }
    return worst;
}

ot_fanout *ot_fanout_new(ot_consumer *const *targets, size_t n)
{
    ot_fanout *f = calloc(1, sizeof *f + n * sizeof *targets);
    if (!f)
        return NULL;
    f->base.consume = fanout_consume;
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        f->targets[i] = targets[i];
        f->base.mutates |= targets[i]->mutates;
    }
    return f;
}

ot_consumer *ot_fanout_consumer(ot_fanout *f)
{
    return &f->base;
}

void ot_fanout_free(ot_fanout *f)
{
    free(f);
}

/* Each swap makes a new generation; callers pin the generation they entered
 * so the swapper waits only for those, never for callers that arrive after
 * the swap (which see the new target). `entering` covers the instant
 * between reading `cur` and pinning it: the swapper waits for it to drain
 * before it trusts a generation's user count. */
typedef struct entry_gen {
    ot_consumer *target;
    atomic_long users;
} entry_gen;

struct ot_entry {
    ot_consumer base;
    _Atomic(entry_gen *) cur;
    atomic_long entering;
};

static ot_status entry_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    ot_entry *e = (ot_entry *)self;
    atomic_fetch_add(&e->entering, 1);
    entry_gen *g = atomic_load(&e->cur);
    atomic_fetch_add(&g->users, 1);
    atomic_fetch_sub(&e->entering, 1);
    ot_status s;
    if (g->target) {
        s = ot_consume(g->target, b, err);
    } else {
        ot_batch_unref(b);
        ot_err_set(err, "pipeline is shutting down");
        s = OT_RETRYABLE;
    }
    atomic_fetch_sub(&g->users, 1);
    return s;
}

static entry_gen *gen_new(ot_consumer *target)
{
    entry_gen *g = malloc(sizeof *g);
    if (g) {
        g->target = target;
        atomic_init(&g->users, 0);
    }
    return g;
}

ot_entry *ot_entry_new(ot_consumer *target)
{
    ot_entry *e = calloc(1, sizeof *e);
    entry_gen *g = gen_new(target);
    if (!e || !g) {
        free(e);
        free(g);
        return NULL;
    }
    e->base.consume = entry_consume;
    atomic_init(&e->cur, g);
    atomic_init(&e->entering, 0);
    return e;
}

ot_consumer *ot_entry_consumer(ot_entry *e)
{
    return &e->base;
}

/* Frees a generation no longer reachable from cur, once nobody can still
 * be pinning it or about to. */
static void gen_retire(ot_entry *e, entry_gen *old)
{
    struct timespec ts = {0, 200000};
    while (atomic_load(&e->entering) != 0)
        sched_yield();
    while (atomic_load(&old->users) != 0)
        nanosleep(&ts, NULL);
    free(old);
}

void ot_entry_swap(ot_entry *e, ot_consumer *target)
{
    entry_gen *g = gen_new(target);
    while (!g) { /* 16 bytes; wait for memory rather than race callers */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        g = gen_new(target);
    }
    gen_retire(e, atomic_exchange(&e->cur, g));
}

void ot_entry_free(ot_entry *e)
{
    if (!e)
        return;
    gen_retire(e, atomic_load(&e->cur));
    free(e);
}
