/* ddsketch.c: OTLP histograms as the DDSketch Datadog stores
 * distributions in. Datadog's sketch has logarithmic bins of relative
 * accuracy 1/128 (gamma = 1 + 2/128) keyed by a signed 16-bit integer:
 * key 0 holds |v| below 1e-9, key k > 0 the values in
 * [gamma^(k-bias), gamma^(k-bias+1)), negative keys mirror them. An OTLP
 * bucket knows only its bounds and count, so its count is spread over the
 * keys its range covers in proportion to how much of the range each bin
 * holds (the bins' own width is what makes that fair on a log scale). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dd.h"

#define EPS (1.0 / 128.0)
#define MIN_VALUE 1e-9
#define MAX_KEY 32767 /* decoders read it as infinity */
#define BIN_LIMIT 4096
#define SPREAD 32

static double gamma_ln(void)
{
    return log1p(2 * EPS);
}

static int bias(void)
{
    return 1 - (int)floor(log(MIN_VALUE) / gamma_ln());
}

int16_t dd_sketch_key(double v)
{
    if (v < 0)
        return (int16_t)-dd_sketch_key(-v);
    if (!(v >= MIN_VALUE)) /* 0, tiny, NaN */
        return 0;
    if (isinf(v))
        return MAX_KEY;
    double k = floor(log(v) / gamma_ln()) + bias();
    if (k >= MAX_KEY - 1)
        return MAX_KEY - 1;
    if (k < 1)
        return 1;
    return (int16_t)k;
}

/* gamma^(k - bias) for k > 0. */
static double lower_pos(int k)
{
    return exp((double)(k - bias()) * gamma_ln());
}

double dd_sketch_lower(int16_t k)
{
    if (k == 0)
        return 0;
    if (k < 0)
        return -lower_pos(-k + 1);
    return lower_pos(k);
}

/* The interval of values a key holds, as [lo, hi). */
static void bin_range(int k, double *lo, double *hi)
{
    if (k == 0) {
        *lo = -lower_pos(1);
        *hi = lower_pos(1);
    } else if (k > 0) {
        *lo = lower_pos(k);
        *hi = lower_pos(k + 1);
    } else {
        *lo = -lower_pos(-k + 1);
        *hi = -lower_pos(-k);
    }
}

static int compact(dd_sketch *s);

/* Entries before they are sorted and merged: with keys in [-32767, 32767]
 * a compaction leaves at most 65535, so memory stays bounded whatever the
 * histogram. */
#define COMPACT_AT (1u << 17)

/* A bin holds at most UINT32_MAX (the wire's uint32): counts past that
 * saturate, which no real histogram reaches and no hostile one can use to
 * make entries without end. */
static int push(dd_sketch *s, int k, uint64_t n)
{
    if (!n)
        return 0;
    if (s->nbins && s->k[s->nbins - 1] == k) { /* buckets come in order: most merge here */
        uint64_t t = (uint64_t)s->n[s->nbins - 1] + n;
        s->n[s->nbins - 1] = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
        return 0;
    }
    if (s->nbins && k < s->k[s->nbins - 1])
        s->unsorted = true;
    if (s->nbins >= COMPACT_AT && compact(s) < 0)
        return -1;
    if (s->nbins == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        int16_t *nk = realloc(s->k, cap * sizeof *nk);
        if (!nk)
            return -1;
        s->k = nk;
        uint32_t *nn = realloc(s->n, cap * sizeof *nn);
        if (!nn)
            return -1;
        s->n = nn;
        s->cap = cap;
    }
    s->k[s->nbins] = (int16_t)k;
    s->n[s->nbins] = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    s->nbins++;
    return 0;
}

int dd_sketch_add_range(dd_sketch *s, double lo, double hi, uint64_t count)
{
    if (count == 0)
        return 0;
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    int kl = dd_sketch_key(lo), kh = dd_sketch_key(hi);
    if (kl == kh || !(hi > lo))
        return push(s, kh, count);
    double width = hi - lo;
    uint64_t given = 0;
    double cum = 0;
    /* A bucket spread over more than SPREAD keys goes to SPREAD groups of
     * keys (each to its middle key): the work per bucket stays bounded
     * when a client sends buckets wider than anything measured. */
    int span = kh - kl + 1, step = (span + SPREAD - 1) / SPREAD;
    for (int k = kl; k <= kh; k += step) {
        int last = k + step - 1 < kh ? k + step - 1 : kh;
        double blo, bhi, tlo, thi;
        bin_range(k, &blo, &thi);
        bin_range(last, &tlo, &bhi);
        double a = blo > lo ? blo : lo, b = bhi < hi ? bhi : hi;
        if (b > a)
            cum += b - a;
        uint64_t upto = last == kh ? count : (uint64_t)llround((double)count * (cum / width));
        if (upto > count)
            upto = count;
        if (upto > given) {
            if (push(s, k + (last - k) / 2, upto - given) < 0)
                return -1;
            given = upto;
        }
    }
    return 0;
}

typedef struct bin {
    int32_t k;
    uint32_t n;
} bin;

static int cmp_bin(const void *a, const void *b)
{
    const bin *x = a, *y = b;
    return (x->k > y->k) - (x->k < y->k);
}

static int compact(dd_sketch *s)
{
    if (s->nbins == 0 || !s->unsorted)
        return 0; /* in order, and push merged equal neighbours */
    s->unsorted = false;
    bin *v = malloc(s->nbins * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < s->nbins; i++)
        v[i] = (bin){s->k[i], s->n[i]};
    qsort(v, s->nbins, sizeof *v, cmp_bin);
    size_t n = s->nbins;
    s->nbins = 0;
    for (size_t i = 0; i < n; i++) {
        size_t o = s->nbins;
        if (o && s->k[o - 1] == v[i].k) {
            uint64_t t = (uint64_t)s->n[o - 1] + v[i].n;
            s->n[o - 1] = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
            continue;
        }
        s->k[o] = (int16_t)v[i].k;
        s->n[o] = v[i].n;
        s->nbins++;
    }
    free(v);
    return 0;
}

int dd_sketch_finish(dd_sketch *s)
{
    if (compact(s) < 0)
        return -1;
    if (s->nbins > BIN_LIMIT) {
        /* Datadog's sketch collapses its lowest bins first. */
        size_t drop = s->nbins - BIN_LIMIT;
        uint64_t sum = 0;
        for (size_t i = 0; i <= drop; i++)
            sum += s->n[i];
        if (sum > UINT32_MAX)
            sum = UINT32_MAX;
        s->n[drop] = (uint32_t)sum;
        memmove(s->k, s->k + drop, BIN_LIMIT * sizeof *s->k);
        memmove(s->n, s->n + drop, BIN_LIMIT * sizeof *s->n);
        s->nbins = BIN_LIMIT;
    }
    return 0;
}

void dd_sketch_reset(dd_sketch *s)
{
    s->nbins = 0;
    s->unsorted = false;
    s->cnt = 0;
    s->min = s->max = s->sum = 0;
}

void dd_sketch_free(dd_sketch *s)
{
    free(s->k);
    free(s->n);
    memset(s, 0, sizeof *s);
}

/* Min and max from the bins when the point has none. */
static void bounds_from_bins(dd_sketch *s, bool has_min, bool has_max)
{
    if (!s->nbins)
        return;
    if (!has_min)
        s->min = dd_sketch_lower(s->k[0]);
    if (!has_max) {
        double lo, hi;
        bin_range(s->k[s->nbins - 1], &lo, &hi);
        s->max = s->k[s->nbins - 1] < 0 ? hi : lo;
    }
}

int dd_sketch_from_hist(dd_sketch *s, const ot_histogram_point *p)
{
    dd_sketch_reset(s);
    size_t nb = p->n_bucket_counts, m = p->n_explicit_bounds;
    bool has_min = (p->min_present_case != 0) && isfinite(p->min), has_max = (p->max_present_case != 0) && isfinite(p->max);
    if (nb == 0 || nb != m + 1) {
        /* no usable buckets: all at the mean */
        double mean = p->count ? p->sum / (double)p->count : 0;
        if (push(s, dd_sketch_key(mean), p->count) < 0)
            return -1;
    } else {
        for (size_t i = 0; i < nb; i++) {
            uint64_t c = p->bucket_counts[i];
            if (!c)
                continue;
            double lo = i ? p->explicit_bounds[i - 1] : -INFINITY;
            double hi = i < m ? p->explicit_bounds[i] : INFINITY;
            if (has_min && lo < p->min)
                lo = p->min;
            if (has_max && hi > p->max)
                hi = p->max;
            if (!isfinite(lo))
                lo = hi;
            if (!isfinite(hi))
                hi = lo;
            if (!isfinite(lo) || hi < lo)
                lo = hi = (has_max ? p->max : 0);
            if (dd_sketch_add_range(s, lo, hi, c) < 0)
                return -1;
        }
    }
    if (dd_sketch_finish(s) < 0)
        return -1;
    s->cnt = (int64_t)p->count;
    s->sum = (p->sum_present_case != 0) ? p->sum : 0;
    s->min = has_min ? p->min : 0;
    s->max = has_max ? p->max : 0;
    bounds_from_bins(s, has_min, has_max);
    return 0;
}

typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets;

static int add_exp(dd_sketch *s, const exp_buckets *b, int scale, bool neg, double cap)
{
    if (!b)
        return 0;
    double f = ldexp(1.0, -scale); /* bucket i is (2^(i*f), 2^((i+1)*f)] */
    size_t nb = b->n_bucket_counts;
    for (size_t jj = 0; jj < nb; jj++) {
        size_t j = neg ? nb - 1 - jj : jj; /* in order of value, so keys come sorted */
        uint64_t c = b->bucket_counts[j];
        if (!c)
            continue;
        double i = (double)b->offset + (double)j;
        double lo = exp2(i * f), hi = exp2((i + 1) * f);
        if (!isfinite(hi))
            hi = cap > lo ? cap : lo;
        if (!isfinite(lo))
            lo = hi;
        if (dd_sketch_add_range(s, neg ? -hi : lo, neg ? -lo : hi, c) < 0)
            return -1;
    }
    return 0;
}

int dd_sketch_from_exphist(dd_sketch *s, const ot_exphistogram_point *p)
{
    dd_sketch_reset(s);
    bool has_min = (p->min_present_case != 0) && isfinite(p->min), has_max = (p->max_present_case != 0) && isfinite(p->max);
    double cap = 1.7e308;
    if (add_exp(s, p->negative, p->scale, true, has_min ? -p->min : cap) < 0 ||
        push(s, 0, p->zero_count) < 0 ||
        add_exp(s, p->positive, p->scale, false, has_max ? p->max : cap) < 0 ||
        dd_sketch_finish(s) < 0)
        return -1;
    s->cnt = (int64_t)p->count;
    s->sum = (p->sum_present_case != 0) ? p->sum : 0;
    s->min = has_min ? p->min : 0;
    s->max = has_max ? p->max : 0;
    bounds_from_bins(s, has_min, has_max);
    return 0;
}

double dd_sketch_quantile(const dd_sketch *s, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->nbins; i++)
        total += s->n[i];
    if (!total)
        return 0;
    double rank = q * (double)(total - 1);
    uint64_t cum = 0;
    for (size_t i = 0; i < s->nbins; i++) {
        cum += s->n[i];
        if ((double)cum > rank) {
            double lo, hi;
            bin_range(s->k[i], &lo, &hi);
            double v = s->k[i] == 0 ? 0 : (lo + hi) / 2;
            if (v < s->min)
                v = s->min;
            if (v > s->max)
                v = s->max;
            return v;
        }
    }
    return s->max;
}
