/* points.c: the data points of the DogStatsD types that keep samples
 * (ms, h, d): Summary with exact quantiles, Histogram with explicit
 * bounds, ExponentialHistogram at the finest scale that fits 160 buckets.
 * Apart from flush.c so the arithmetic can be read (and tested) alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsdr.h"

#define M_(x) OPENTELEMETRY__PROTO__METRICS__V1__##x
#define T_(x) Opentelemetry__Proto__Metrics__V1__##x

static int cmp_sample(const void *pa, const void *pb)
{
    double a = ((const dsdr_sample *)pa)->v, b = ((const dsdr_sample *)pb)->v;
    return a < b ? -1 : a > b;
}

/* The weight of the kept samples and the factor that scales them to the
 * exact count (not 1 only when a reservoir had to choose). */
static double kept_scale(const dsdr_slot *s)
{
    double w = 0;
    for (uint32_t i = 0; i < s->n; i++)
        w += s->u.samples[i].w;
    return w > 0 ? s->count / w : 1;
}

ot_summary_point *ot_dsdr_summary_point(ot_arena *ar, dsdr_slot *s)
{
    static const double qs[] = {0, 0.5, 0.9, 0.95, 0.99, 1};
    ot_summary_point *p = ot_arena_alloc(ar, sizeof *p);
    T_(SummaryDataPoint__ValueAtQuantile) **qv = ot_arena_alloc(ar, 6 * sizeof *qv);
    if (!p || !qv)
        return NULL;
    *p = (ot_summary_point)M_(SUMMARY_DATA_POINT__INIT);
    p->count = (uint64_t)llround(s->count);
    p->sum = s->sum;
    qsort(s->u.samples, s->n, sizeof *s->u.samples, cmp_sample);
    double total = 0;
    for (uint32_t i = 0; i < s->n; i++)
        total += s->u.samples[i].w;
    for (int q = 0; q < 6; q++) {
        T_(SummaryDataPoint__ValueAtQuantile) *x = ot_arena_alloc(ar, sizeof *x);
        if (!x)
            return NULL;
        *x = (T_(SummaryDataPoint__ValueAtQuantile))M_(SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT);
        x->quantile = qs[q];
        if (qs[q] == 0) {
            x->value = s->min;
        } else if (qs[q] == 1) {
            x->value = s->max;
        } else {
            /* nearest rank on the weights: the first sample whose
             * cumulative weight reaches q of the total */
            double target = qs[q] * total, cum = 0;
            x->value = s->max;
            for (uint32_t i = 0; i < s->n; i++) {
                cum += s->u.samples[i].w;
                if (cum >= target * (1 - 1e-12)) {
                    x->value = s->u.samples[i].v;
                    break;
                }
            }
        }
        qv[q] = x;
    }
    p->n_quantile_values = 6;
    p->quantile_values = qv;
    return p;
}

ot_histogram_point *ot_dsdr_histogram_point(ot_arena *ar, const double *bounds, size_t nb,
                                            const dsdr_slot *s)
{
    ot_histogram_point *p = ot_arena_alloc(ar, sizeof *p);
    uint64_t *counts = ot_arena_calloc(ar, (nb + 1) * sizeof *counts);
    double *w = calloc(nb + 1, sizeof *w);
    if (!p || !counts || !w) {
        free(w);
        return NULL;
    }
    *p = (ot_histogram_point)M_(HISTOGRAM_DATA_POINT__INIT);
    for (uint32_t i = 0; i < s->n; i++) {
        size_t k = 0;
        while (k < nb && s->u.samples[i].v > bounds[k])
            k++;
        w[k] += s->u.samples[i].w;
    }
    double scale = kept_scale(s);
    uint64_t total = 0;
    for (size_t k = 0; k <= nb; k++)
        total += counts[k] = (uint64_t)llround(w[k] * scale);
    free(w);
    p->count = total;
    p->n_bucket_counts = nb + 1;
    p->bucket_counts = counts;
    p->n_explicit_bounds = nb;
    p->explicit_bounds = nb ? ot_arena_memdup(ar, bounds, nb * sizeof(double)) : NULL;
    p->sum_present_case = M_(HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM);
    p->sum = s->sum;
    p->min_present_case = M_(HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN);
    p->min = s->min;
    p->max_present_case = M_(HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX);
    p->max = s->max;
    return p;
}

static int64_t floor_shift(int64_t i, int k)
{
    return i >= 0 ? i >> k : -((-i - 1) >> k) - 1;
}

/* Bucket index at scale 20 of |v| > 0: upper-inclusive boundaries. */
static int64_t exp_index20(double v)
{
    return (int64_t)ceil(log2(fabs(v)) * 1048576.0) - 1;
}

static int exp_side(ot_arena *ar, const dsdr_slot *s, int sign, int k, double scale,
                    T_(ExponentialHistogramDataPoint__Buckets) **out, uint64_t *total)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t i = 0; i < s->n; i++) {
        double v = s->u.samples[i].v;
        if (sign > 0 ? v <= 0 : v >= 0)
            continue;
        int64_t x = floor_shift(exp_index20(v), k);
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    T_(ExponentialHistogramDataPoint__Buckets) *bk = ot_arena_alloc(ar, sizeof *bk);
    if (!bk)
        return -1;
    *bk = (T_(ExponentialHistogramDataPoint__Buckets))
        M_(EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT);
    *out = bk;
    if (lo > hi)
        return 0;
    size_t n = (size_t)(hi - lo + 1);
    double *w = calloc(n, sizeof *w);
    uint64_t *c = ot_arena_calloc(ar, n * sizeof *c);
    if (!w || !c) {
        free(w);
        return -1;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        double v = s->u.samples[i].v;
        if (sign > 0 ? v <= 0 : v >= 0)
            continue;
        w[floor_shift(exp_index20(v), k) - lo] += s->u.samples[i].w;
    }
    for (size_t i = 0; i < n; i++)
        *total += c[i] = (uint64_t)llround(w[i] * scale);
    free(w);
    bk->offset = (int32_t)lo;
    bk->n_bucket_counts = n;
    bk->bucket_counts = c;
    return 0;
}

ot_exphistogram_point *ot_dsdr_exp_point(ot_arena *ar, const dsdr_slot *s)
{
    ot_exphistogram_point *p = ot_arena_alloc(ar, sizeof *p);
    if (!p)
        return NULL;
    *p = (ot_exphistogram_point)M_(EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT);
    /* the largest scale (<= 20) at which each side fits in 160 buckets */
    int64_t lo[2] = {INT64_MAX, INT64_MAX}, hi[2] = {INT64_MIN, INT64_MIN};
    double zero = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        double v = s->u.samples[i].v;
        if (v == 0) {
            zero += s->u.samples[i].w;
            continue;
        }
        int side = v < 0;
        int64_t x = exp_index20(v);
        lo[side] = x < lo[side] ? x : lo[side];
        hi[side] = x > hi[side] ? x : hi[side];
    }
    int k = 0;
    for (; k < 30; k++) {
        bool fits = true;
        for (int side = 0; side < 2; side++)
            if (lo[side] <= hi[side] &&
                floor_shift(hi[side], k) - floor_shift(lo[side], k) + 1 > DSDR_EXP_MAX_BUCKETS)
                fits = false;
        if (fits)
            break;
    }
    double scale = kept_scale(s);
    uint64_t total = (uint64_t)llround(zero * scale);
    p->zero_count = total;
    if (exp_side(ar, s, 1, k, scale, &p->positive, &total) < 0 ||
        exp_side(ar, s, -1, k, scale, &p->negative, &total) < 0)
        return NULL;
    p->scale = 20 - k;
    p->count = total;
    p->sum_present_case = M_(EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM);
    p->sum = s->sum;
    p->min_present_case = M_(EXPONENTIAL_HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN);
    p->min = s->min;
    p->max_present_case = M_(EXPONENTIAL_HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX);
    p->max = s->max;
    return p;
}

