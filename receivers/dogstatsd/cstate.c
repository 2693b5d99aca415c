/* cstate.c: what a reader keeps per series, packed, since it is most of
 * the receiver's memory: a million live series at a few hundred bytes
 * each is hundreds of MiB. A stream's state is a 16-byte header (the
 * interval of each of its two slots, the type) and then only what its
 * type needs: a counter two sums and its running total (48 bytes), a
 * gauge two values and their times (56), a set two member tables (48), a
 * sampled type (ms h d) two slots that hold one sample inline and point to
 * an accumulator only from the second sample of an interval on (64). The
 * flush merges these into the full dsdr_state of its entries (merge
 * below), which the point builders read. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsdr.h"

size_t ot_dsdr_cstate_size(int type)
{
    size_t h = offsetof(dsdr_cstate, u);
    switch (type) {
    case OT_DSD_COUNTER:
        return h + sizeof(((dsdr_cstate *)0)->u.c);
    case OT_DSD_GAUGE:
        return h + sizeof(((dsdr_cstate *)0)->u.g);
    case OT_DSD_SET:
        return h + sizeof(((dsdr_cstate *)0)->u.s);
    default:
        return h + sizeof(((dsdr_cstate *)0)->u.h);
    }
}

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64*: the reservoir needs speed, not quality */
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void acc_reset(dsdr_acc *a)
{
    a->sum = a->count = 0;
    a->min = INFINITY;
    a->max = -INFINITY;
    a->seen = 0;
    a->n = 0;
}

static size_t acc_bytes(uint32_t cap)
{
    return sizeof(dsdr_acc) + (size_t)cap * sizeof(dsdr_sample);
}

static void acc_free(const dsdr_agg_opts *o, dsdr_acc *a)
{
    if (a && o->budget)
        atomic_fetch_sub_explicit(&o->budget->held, (int64_t)acc_bytes(a->cap),
                                  memory_order_relaxed);
    free(a);
}

/* Room to grow from cap to ncap samples under max_sample_bytes, taken
 * from the shared count when there is. */
static bool budget_take(const dsdr_agg_opts *o, uint32_t cap, uint32_t ncap)
{
    if (!o->budget)
        return true;
    int64_t add = (int64_t)(acc_bytes(ncap) - acc_bytes(cap));
    int64_t was = atomic_fetch_add_explicit(&o->budget->held, add, memory_order_relaxed);
    if (!o->max_sample_bytes || was + add <= (int64_t)o->max_sample_bytes)
        return true;
    atomic_fetch_sub_explicit(&o->budget->held, add, memory_order_relaxed);
    return false;
}

static int acc_add(const dsdr_agg_opts *o, dsdr_acc **ap, double v, double w, uint64_t *rng)
{
    dsdr_acc *a = *ap;
    /* the room is the cap, or a smaller size the budget stopped at */
    if (a->n == a->cap && a->n < DSDR_MAX_SAMPLES && a->seen == a->n) {
        uint32_t ncap = a->cap * 2;
        if (ncap > DSDR_MAX_SAMPLES)
            ncap = DSDR_MAX_SAMPLES;
        if (budget_take(o, a->cap, ncap)) {
            dsdr_acc *na = realloc(a, acc_bytes(ncap));
            if (!na) {
                if (o->budget)
                    atomic_fetch_sub_explicit(&o->budget->held,
                                              (int64_t)(acc_bytes(ncap) - acc_bytes(a->cap)),
                                              memory_order_relaxed);
                return -1;
            }
            *ap = a = na;
            a->cap = ncap;
        }
    }
    a->sum += v * w;
    a->count += w;
    if (v < a->min)
        a->min = v;
    if (v > a->max)
        a->max = v;
    a->seen++;
    if (a->n < a->cap) {
        a->s[a->n++] = (dsdr_sample){v, w};
        return 0;
    }
    if (o->budget)
        atomic_fetch_add_explicit(&o->budget->sampled, 1, memory_order_relaxed);
    uint64_t j = next_rand(rng) % a->seen; /* Algorithm R */
    if (j < a->n)
        a->s[j] = (dsdr_sample){v, w};
    return 0;
}

/* A sampled slot: the first sample inline, from the second on (or when an
 * accumulator is kept from a busy interval) all of them in the
 * accumulator. */
static int sampled_add(const dsdr_agg_opts *o, dsdr_cstate *cs, unsigned w, double v, double wt,
                       uint64_t *rng)
{
    dsdr_acc **ap = &cs->u.h.acc[w];
    dsdr_sample *one = &cs->u.h.one[w];
    if (!*ap) {
        if (one->w == 0) { /* weights are >= 1, so 0 marks "none" */
            *one = (dsdr_sample){v, wt};
            return 0;
        }
        /* the first four are always taken (a series' own floor, bounded
         * by max_series); the budget governs growth past them */
        dsdr_acc *a = malloc(acc_bytes(4));
        if (!a)
            return -1;
        if (o->budget)
            atomic_fetch_add_explicit(&o->budget->held, (int64_t)acc_bytes(4),
                                      memory_order_relaxed);
        a->cap = 4;
        acc_reset(a);
        *ap = a;
    }
    if (one->w != 0) {
        dsdr_sample first = *one;
        one->w = 0;
        if (acc_add(o, ap, first.v, first.w, rng) < 0)
            return -1;
    }
    return acc_add(o, ap, v, wt, rng);
}

static void slot_reset(const dsdr_agg_opts *o, dsdr_cstate *cs, unsigned w, uint32_t epoch)
{
    cs->epoch[w] = epoch;
    switch (cs->type) {
    case OT_DSD_COUNTER:
        cs->u.c.sum[w] = 0;
        return;
    case OT_DSD_GAUGE:
        return; /* value and time are set by the add */
    case OT_DSD_SET:
        if (cs->u.s.t[w]) {
            /* a table that grew large for one burst is not kept forever */
            if (cs->u.s.cap[w] > 1024) {
                free(cs->u.s.t[w]);
                cs->u.s.t[w] = NULL;
                cs->u.s.cap[w] = 0;
            } else {
                memset(cs->u.s.t[w], 0, (size_t)cs->u.s.cap[w] * sizeof(uint64_t));
            }
        }
        cs->u.s.n[w] = 0;
        return;
    default: {
        dsdr_acc *a = cs->u.h.acc[w];
        cs->u.h.one[w].w = 0;
        /* kept only for a series that needed it (and not a burst's worth):
         * one sample an interval stays inline */
        if (a && (a->n < 2 || a->cap > 1024)) {
            acc_free(o, a);
            cs->u.h.acc[w] = NULL;
        } else if (a) {
            acc_reset(a);
        }
        return;
    }
    }
}

int ot_dsdr_cstate_add(const dsdr_agg_opts *o, dsdr_cstate *cs, unsigned w, uint64_t epoch,
                       const ot_dsd_item *it, int64_t unix_ns, uint64_t *rng)
{
    const ot_dsd_metric *m = &it->u.metric;
    cs->type = (uint8_t)m->type;
    uint32_t e = (uint32_t)epoch;
    if (cs->epoch[w] != e)
        slot_reset(o, cs, w, e);
    switch (m->type) {
    case OT_DSD_COUNTER: {
        double add = 0;
        if (m->rate == 1) /* most lines: no division on the way */
            for (uint32_t i = 0; i < m->nvalues; i++)
                add += m->values[i];
        else
            for (uint32_t i = 0; i < m->nvalues; i++)
                add += m->values[i] / m->rate;
        cs->u.c.sum[w] += add;
        cs->u.c.cum += add;
        if (!(cs->flags & DSDR_F_CUM_LIVE)) {
            cs->flags |= DSDR_F_CUM_LIVE;
            cs->u.c.cum_start = unix_ns;
        }
        return 0;
    }
    case OT_DSD_GAUGE:
        for (uint32_t i = 0; i < m->nvalues; i++) {
            double v = m->values[i];
            if (o->relative_gauges && m->explicit_sign[i])
                v += (cs->flags & DSDR_F_GAUGE_HAS) ? cs->u.g.cur : 0;
            cs->u.g.cur = v;
            cs->flags |= DSDR_F_GAUGE_HAS;
        }
        cs->u.g.v[w] = cs->u.g.cur;
        cs->u.g.last[w] = unix_ns;
        return 0;
    case OT_DSD_SET:
        return ot_dsdr_table_insert(&cs->u.s.t[w], &cs->u.s.n[w], &cs->u.s.cap[w],
                                    ot_mstore_hash(m->set_value.p, m->set_value.n, 0x5e7));
    default: {
        double wt = m->rate == 1 ? 1.0 : 1.0 / m->rate;
        for (uint32_t i = 0; i < m->nvalues; i++)
            if (sampled_add(o, cs, w, m->values[i], wt, rng) < 0)
                return -1;
        return 0;
    }
    }
}

void ot_dsdr_cstate_free(const dsdr_agg_opts *o, dsdr_cstate *cs)
{
    for (unsigned w = 0; w < 2; w++) {
        if (cs->type == OT_DSD_SET) {
            free(cs->u.s.t[w]);
            cs->u.s.t[w] = NULL;
        } else if (!dsdr_small_type(cs->type)) {
            acc_free(o, cs->u.h.acc[w]);
            cs->u.h.acc[w] = NULL;
        }
    }
}

static void push(dsdr_slot *d, dsdr_sample s)
{
    d->u.samples[d->n++] = s;
    if (s.v < d->min)
        d->min = s.v;
    if (s.v > d->max)
        d->max = s.v;
}

int ot_dsdr_cstate_merge(dsdr_state *m, const dsdr_cstate *cs, unsigned w, bool has)
{
    dsdr_slot *d = &m->slot[0];
    m->type = cs->type;
    if (cs->type == OT_DSD_COUNTER && (cs->flags & DSDR_F_CUM_LIVE)) {
        if (!m->cum_live || cs->u.c.cum_start < m->cum_start_unix_ns)
            m->cum_start_unix_ns = cs->u.c.cum_start;
        m->cum_live = true;
        m->cum += cs->u.c.cum;
    }
    if (!has)
        return 0;
    if (d->epoch == 0) {
        d->epoch = 1;
        d->min = INFINITY;
        d->max = -INFINITY;
    }
    switch (cs->type) {
    case OT_DSD_COUNTER:
        d->sum += cs->u.c.sum[w];
        return 0;
    case OT_DSD_GAUGE:
        if (cs->u.g.last[w] >= d->last_unix_ns) {
            d->last_unix_ns = cs->u.g.last[w];
            d->gauge = cs->u.g.v[w];
        }
        return 0;
    case OT_DSD_SET:
        for (uint32_t i = 0; i < cs->u.s.cap[w]; i++)
            if (cs->u.s.t[w][i] && ot_dsdr_set_insert(d, cs->u.s.t[w][i]) < 0)
                return -1;
        return 0;
    default: {
        const dsdr_acc *a = cs->u.h.acc[w];
        const dsdr_sample *one = &cs->u.h.one[w];
        size_t add = (a ? a->n : 0) + (one->w != 0);
        if (!add)
            return 0;
        dsdr_sample *p = realloc(d->u.samples, ((size_t)d->n + add) * sizeof *p);
        if (!p)
            return -1;
        d->u.samples = p;
        d->cap = d->n + (uint32_t)add;
        if (a && a->seen) {
            /* sum, count, min, max stay exact past the kept samples */
            for (uint32_t i = 0; i < a->n; i++)
                push(d, a->s[i]);
            d->sum += a->sum;
            d->count += a->count;
            if (a->min < d->min)
                d->min = a->min;
            if (a->max > d->max)
                d->max = a->max;
        }
        if (one->w != 0) {
            push(d, *one);
            d->sum += one->v * one->w;
            d->count += one->w;
        }
        return 0;
    }
    }
}
