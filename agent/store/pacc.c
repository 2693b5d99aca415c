/* pacc.c: the accumulation of store/pacc.h, point by point: each OTLP
 * point kind has its own layout in the stream's state (pacc.h), made at the
 * size the point needs and made again when a histogram's layout changes. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store/pacc.h"

#define MAX_EXP_BUCKETS 320
#define MAX_BUCKETS 4096

typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets;

typedef struct acc {
    ot_mstore *store;
    ot_mstore_key *key;
    ot_pacc_fn fn;
    void *ctx;
} acc;

/* Hands the updated point to the caller, then releases its stream. */
static void done(const acc *c, ot_mstore_ref *ref, int64_t ts, bool fresh)
{
    if (c->fn)
        c->fn(c->ctx, ref->stream, ref->state, ts, fresh);
    ot_mstore_put(c->store, ref, false);
}

typedef struct hist_in {
    size_t n;            /* bounds */
    const double *bounds;
    const uint64_t *counts; /* n + 1 */
    uint64_t count;
    double sum;
    bool has_sum;
} hist_in;

/* Gets the stream of the key's current point, sized for a histogram or
 * summary of n entries; a stream held at a smaller size grows (its layout
 * starts again from this point), or, when it cannot, is dropped and made
 * again. */
static ot_mstore_res get_sized(const acc *c, int64_t now, size_t size, bool ex, ot_mstore_ref *ref)
{
    size_t want = size + (ex ? sizeof(ot_pacc_exemplar) : 0);
    ot_mstore_res r = ot_mstore_get(c->store, c->key, now, want, ref);
    if (r == OT_MSTORE_FOUND && ref->stream->state_size < size &&
        ot_mstore_grow(c->store, ref, want) < 0) {
        ot_mstore_put(c->store, ref, true);
        r = ot_mstore_get(c->store, c->key, now, want, ref);
    }
    return r;
}

typedef Opentelemetry__Proto__Metrics__V1__Exemplar otlp_exemplar;

/* Keeps the point's last exemplar; a stream made without room for one
 * (its first points had none) grows to hold it, running totals kept, and
 * goes without only when the store cannot grow it. keep: the state's
 * layout did not change, so an older exemplar still stands when this
 * point has none. The stream may move: ref->state is read again after. */
static void note_exemplar(const acc *c, ot_mstore_ref *ref, otlp_exemplar *const *ex, size_t n,
                          bool keep)
{
    ot_pacc_state *s = ref->state;
    if (!keep)
        s->flags &= (uint8_t)~OT_PACC_F_EXEMPLAR;
    if (!n)
        return;
    size_t need = ot_pacc_state_len(s) + sizeof(ot_pacc_exemplar);
    if (need > ref->stream->state_size && ot_mstore_grow(c->store, ref, need) < 0)
        return;
    s = ref->state;
    const otlp_exemplar *e = ex[n - 1];
    s->flags |= OT_PACC_F_EXEMPLAR;
    ot_pacc_exemplar *d = ot_pacc_ex(s);
    memset(d, 0, sizeof *d);
    if (e->trace_id.len == 16)
        memcpy(d->trace_id, e->trace_id.data, 16);
    if (e->span_id.len == 8)
        memcpy(d->span_id, e->span_id.data, 8);
    d->value = e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                   ? (double)e->as_int
                   : e->as_double;
    d->ts_ns = (int64_t)e->time_unix_nano;
}

static size_t put_number(const acc *c, const ot_number_point *p, int kind, bool delta, int64_t now)
{
    ot_mstore_ref ref;
    if (ot_mstore_key_point(c->key, p->attributes, p->n_attributes) < 0)
        return 0;
    size_t size = p->n_exemplars && kind == OT_PACC_COUNTER ? sizeof(ot_pacc_state) + sizeof(ot_pacc_exemplar) : 0;
    ot_mstore_res r = ot_mstore_get(c->store, c->key, now, size, &ref);
    if (r == OT_MSTORE_REFUSED)
        return 1;
    if (r == OT_MSTORE_ERR)
        return 0;
    ot_pacc_state *s = ref.state;
    double v = p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
                   ? (double)p->as_int
                   : p->as_double;
    bool novalue = (p->flags & 1) != 0;
    int64_t ts = (int64_t)p->time_unix_nano;
    bool fresh = r == OT_MSTORE_NEW || ts > s->ts_ns;
    if (r == OT_MSTORE_NEW || !delta) {
        s->start_ns = (int64_t)p->start_time_unix_nano;
        s->value = novalue ? 0 : v;
    } else if (!novalue && (ts == 0 || ts > s->ts_ns)) {
        s->value += v; /* a delta after the last one; a repeat or older one is not added twice */
    }
    bool keep = s->kind == kind;
    s->kind = (uint8_t)kind;
    s->flags = (uint8_t)((s->flags & OT_PACC_F_EXEMPLAR) | (novalue ? OT_PACC_F_NO_VALUE : 0));
    if (ts > s->ts_ns || !delta)
        s->ts_ns = ts;
    if (kind == OT_PACC_COUNTER)
        note_exemplar(c, &ref, p->exemplars, p->n_exemplars, keep);
    done(c, &ref, ts, fresh);
    return 0;
}

static size_t put_hist(const acc *c, const ot_histogram_point *p, const hist_in *h, bool delta,
                       int64_t now)
{
    ot_mstore_ref ref;
    int64_t start = (int64_t)p->start_time_unix_nano, ts = (int64_t)p->time_unix_nano;
    if (h->n > MAX_BUCKETS || ot_mstore_key_point(c->key, p->attributes, p->n_attributes) < 0)
        return 0;
    ot_mstore_res r = get_sized(c, now, sizeof(ot_pacc_state) + h->n * 16 + 8, p->n_exemplars > 0, &ref);
    if (r == OT_MSTORE_REFUSED)
        return 1;
    if (r == OT_MSTORE_ERR)
        return 0;
    ot_pacc_state *s = ref.state;
    bool fresh = r == OT_MSTORE_NEW || ts > s->ts_ns;
    bool same = r == OT_MSTORE_FOUND && s->kind == OT_PACC_HISTOGRAM && s->n == h->n &&
                memcmp(ot_pacc_bounds(s), h->bounds, h->n * sizeof(double)) == 0;
    if (delta && same) {
        if (ts == 0 || ts > s->ts_ns) {
            uint64_t *cn = ot_pacc_counts(s);
            for (size_t i = 0; i <= h->n; i++)
                cn[i] += h->counts[i];
            s->count += h->count;
            s->value += h->sum;
        }
    } else { /* cumulative, the first delta, or new bounds: start from this point */
        s->kind = OT_PACC_HISTOGRAM;
        s->n = (uint32_t)h->n;
        memcpy(ot_pacc_bounds(s), h->bounds, h->n * sizeof(double));
        memcpy(ot_pacc_counts(s), h->counts, (h->n + 1) * sizeof(uint64_t));
        s->count = h->count;
        s->value = h->sum;
        s->start_ns = start;
    }
    s->flags = (uint8_t)((s->flags & OT_PACC_F_EXEMPLAR) | (h->has_sum ? OT_PACC_F_HAS_SUM : 0));
    if (ts > s->ts_ns || !delta)
        s->ts_ns = ts;
    note_exemplar(c, &ref, p->exemplars, p->n_exemplars, same);
    done(c, &ref, ts, fresh);
    return 0;
}

static size_t put_classic(const acc *c, const ot_histogram_point *p, bool delta, int64_t now)
{
    static const uint64_t zero = 0;
    uint64_t one;
    hist_in h = {.n = p->n_explicit_bounds, .bounds = p->explicit_bounds,
                 .counts = p->bucket_counts, .count = p->count, .sum = p->sum,
                 .has_sum = p->sum_present_case != 0};
    if (p->n_bucket_counts == 0) { /* count and sum only: one +Inf bucket */
        one = p->count;
        h.n = 0;
        h.counts = p->count ? &one : &zero;
    } else if (p->n_bucket_counts != p->n_explicit_bounds + 1) {
        return 0; /* not a histogram OTLP allows */
    }
    return put_hist(c, p, &h, delta, now);
}

/* Bucket counts of one side shifted down (scale - shift), merged pairwise. */
static int32_t downscale(const exp_buckets *b, int32_t shift, uint64_t *out, uint32_t *n_out)
{
    *n_out = 0;
    if (!b || !b->n_bucket_counts)
        return 0;
    int32_t first = b->offset >> shift;
    for (size_t i = 0; i < b->n_bucket_counts; i++) {
        uint32_t k = (uint32_t)(((b->offset + (int32_t)i) >> shift) - first);
        if (k >= *n_out) {
            memset(out + *n_out, 0, (k + 1 - *n_out) * sizeof *out);
            *n_out = k + 1;
        }
        out[k] += b->bucket_counts[i];
    }
    return first;
}

/* Exponential histograms stay native, downscaled to schema 8 at most (what
 * Prometheus takes) and to MAX_EXP_BUCKETS buckets. */
static size_t put_exp(const acc *c, const ot_exphistogram_point *p, bool delta, int64_t now)
{
    size_t np = p->positive ? p->positive->n_bucket_counts : 0;
    size_t nn = p->negative ? p->negative->n_bucket_counts : 0;
    int32_t shift = p->scale > 8 ? p->scale - 8 : 0;
    while ((np >> shift) + (nn >> shift) + 2 > MAX_EXP_BUCKETS && shift < 62)
        shift++;
    size_t cap = (np >> shift) + (nn >> shift) + 2;
    uint64_t *tmp = calloc(cap, sizeof *tmp);
    if (!tmp)
        return 0;
    ot_pacc_exph h = {.scale = p->scale - shift, .zero_threshold = p->zero_threshold,
                 .zero_count = p->zero_count};
    h.neg_off = downscale(p->negative, shift, tmp, &h.nneg);
    h.pos_off = downscale(p->positive, shift, tmp + h.nneg, &h.npos);
    size_t n = h.nneg + h.npos;
    ot_mstore_ref ref;
    size_t refused = 0;
    if (ot_mstore_key_point(c->key, p->attributes, p->n_attributes) < 0)
        goto out;
    ot_mstore_res r = get_sized(c, now, sizeof(ot_pacc_state) + sizeof(ot_pacc_exph) + n * 8,
                                p->n_exemplars > 0, &ref);
    if (r == OT_MSTORE_REFUSED)
        refused = 1;
    if (r == OT_MSTORE_REFUSED || r == OT_MSTORE_ERR)
        goto out;
    ot_pacc_state *s = ref.state;
    ot_pacc_exph *e = ot_pacc_exph_of(s);
    int64_t ts = (int64_t)p->time_unix_nano;
    bool fresh = r == OT_MSTORE_NEW || ts > s->ts_ns;
    bool same = r == OT_MSTORE_FOUND && s->kind == OT_PACC_EXPHIST && e->scale == h.scale &&
                e->pos_off == h.pos_off && e->neg_off == h.neg_off && e->npos == h.npos &&
                e->nneg == h.nneg && e->zero_threshold == h.zero_threshold;
    if (delta && same) {
        if (ts == 0 || ts > s->ts_ns) {
            uint64_t *cn = ot_pacc_exp_counts(s);
            for (size_t i = 0; i < n; i++)
                cn[i] += tmp[i];
            e->zero_count += h.zero_count;
            s->count += p->count;
            s->value += p->sum;
        }
    } else { /* cumulative, the first delta, or a new layout: start from this point */
        s->kind = OT_PACC_EXPHIST;
        s->n = (uint32_t)n;
        *e = h;
        memcpy(ot_pacc_exp_counts(s), tmp, n * sizeof *tmp);
        s->count = p->count;
        s->value = p->sum;
        s->start_ns = (int64_t)p->start_time_unix_nano;
    }
    s->flags = (uint8_t)((s->flags & OT_PACC_F_EXEMPLAR) | (p->sum_present_case ? OT_PACC_F_HAS_SUM : 0));
    if (ts > s->ts_ns || !delta)
        s->ts_ns = ts;
    note_exemplar(c, &ref, p->exemplars, p->n_exemplars, same);
    done(c, &ref, ts, fresh);
out:
    free(tmp);
    return refused;
}

static size_t put_summary(const acc *c, const ot_summary_point *p, int64_t now)
{
    ot_mstore_ref ref;
    if (p->n_quantile_values > MAX_BUCKETS ||
        ot_mstore_key_point(c->key, p->attributes, p->n_attributes) < 0)
        return 0;
    ot_mstore_res r = get_sized(c, now, sizeof(ot_pacc_state) + p->n_quantile_values * 16, false, &ref);
    if (r == OT_MSTORE_REFUSED)
        return 1;
    if (r == OT_MSTORE_ERR)
        return 0;
    ot_pacc_state *s = ref.state;
    int64_t ts = (int64_t)p->time_unix_nano;
    bool fresh = r == OT_MSTORE_NEW || ts > s->ts_ns;
    s->kind = OT_PACC_SUMMARY;
    s->flags = OT_PACC_F_HAS_SUM;
    s->n = (uint32_t)p->n_quantile_values;
    double *qv = ot_pacc_bounds(s);
    for (size_t i = 0; i < p->n_quantile_values; i++) {
        qv[2 * i] = p->quantile_values[i]->quantile;
        qv[2 * i + 1] = p->quantile_values[i]->value;
    }
    s->count = p->count;
    s->value = p->sum;
    s->start_ns = (int64_t)p->start_time_unix_nano;
    s->ts_ns = ts;
    done(c, &ref, ts, fresh);
    return 0;
}

static size_t put_metric(const acc *c, const ot_metric *m, int64_t now)
{
    size_t refused = 0;
    const int DELTA =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        for (size_t i = 0; m->gauge && i < m->gauge->n_data_points; i++)
            refused += put_number(c, m->gauge->data_points[i], OT_PACC_GAUGE, false, now);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        const Opentelemetry__Proto__Metrics__V1__Sum *s = m->sum;
        if (!s || s->aggregation_temporality == 0)
            break; /* unspecified temporality: nothing a scrape could say */
        int kind = s->is_monotonic ? OT_PACC_COUNTER : OT_PACC_GAUGE;
        bool delta = (int)s->aggregation_temporality == DELTA;
        for (size_t i = 0; i < s->n_data_points; i++)
            refused += put_number(c, s->data_points[i], kind, delta, now);
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__Histogram *h = m->histogram;
        if (!h || h->aggregation_temporality == 0)
            break;
        for (size_t i = 0; i < h->n_data_points; i++)
            refused += put_classic(c, h->data_points[i],
                                   (int)h->aggregation_temporality == DELTA, now);
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h =
            m->exponential_histogram;
        if (!h || h->aggregation_temporality == 0)
            break;
        for (size_t i = 0; i < h->n_data_points; i++)
            refused += put_exp(c, h->data_points[i], (int)h->aggregation_temporality == DELTA, now);
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        for (size_t i = 0; m->summary && i < m->summary->n_data_points; i++)
            refused += put_summary(c, m->summary->data_points[i], now);
        break;
    default:
        break;
    }
    return refused;
}


size_t ot_pacc_metric(ot_mstore *st, ot_mstore_key *k, const ot_metric *m, int64_t now_ns,
                      ot_pacc_fn fn, void *ctx)
{
    acc c = {st, k, fn, ctx};
    return put_metric(&c, m, now_ns);
}
