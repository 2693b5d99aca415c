/* series.c: OTLP metric points as /api/v2/series items, one JSON object per
 * series with one point:
 *   {"metric":"m","type":1,"points":[{"timestamp":s,"value":v}],
 *    "resources":[{"name":"host","type":"host"}],"tags":["k:v"],"interval":n}
 * type 1 is a count, 3 a gauge. Gauges and non-monotonic cumulative sums
 * are gauges; delta sums (and cumulative monotonic ones, made deltas by
 * delta.c) are counts; histograms are sketches (sketch.c), per-bucket
 * counts or a count and a sum, as configured; summaries a count, a sum and
 * a gauge per quantile. NaN and infinite values are dropped and counted. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dd.h"

enum { T_COUNT = 1, T_GAUGE = 3 };
#define NO_RECORDED_VALUE 1u

typedef struct enc {
    const dd_opts *o;
    dd_items *series, *sketches;
    ot_arena *scratch;
    dd_res res;
    dd_tags tags; /* the resource's, then a point's */
    ot_buf name;
    dd_sketch sk;
    int64_t now_s;
    ot_err *err;
} enc;

static int64_t secs(uint64_t ns, int64_t now_s)
{
    return ns ? (int64_t)(ns / 1000000000ull) : now_s;
}

static int oom(enc *e)
{
    return ot_err_set(e->err, "out of memory");
}

/* The point's tags: the resource's, then its attributes, then extra. */
static int point_tags(enc *e, ot_keyvalue *const *kv, size_t n)
{
    dd_tags_reset(&e->tags);
    for (size_t i = 0; i < e->res.tags.n; i++) {
        size_t len;
        const char *t = dd_tag(&e->res.tags, i, &len);
        if (dd_tags_add(&e->tags, t, len, NULL, 0) < 0)
            return -1;
    }
    return dd_tags_add_attrs(&e->tags, kv, n);
}

static int series(enc *e, const char *metric, size_t mlen, int type, double v, int64_t ts,
                  int64_t interval)
{
    if (!isfinite(v)) {
        ot_counter_add(e->o->dropped_nan, 1);
        return 0;
    }
    ot_buf *b = &e->series->data;
    ot_buf_puts(b, "{\"metric\":");
    ot_buf_json_str(b, metric, mlen);
    ot_buf_puts(b, ",\"type\":");
    dd_put_int(b, type);
    ot_buf_puts(b, ",\"points\":[{\"timestamp\":");
    dd_put_int(b, ts);
    ot_buf_puts(b, ",\"value\":");
    dd_json_double(b, v);
    ot_buf_puts(b, "}],\"resources\":[{\"name\":");
    const char *h = e->res.host ? e->res.host : "";
    ot_buf_json_str(b, h, strlen(h));
    ot_buf_puts(b, ",\"type\":\"host\"}],\"tags\":[");
    for (size_t i = 0; i < e->tags.n; i++) {
        size_t len;
        const char *t = dd_tag(&e->tags, i, &len);
        if (i)
            ot_buf_putc(b, ',');
        ot_buf_json_str(b, t, len);
    }
    ot_buf_putc(b, ']');
    if (interval > 0) {
        ot_buf_puts(b, ",\"interval\":");
        dd_put_int(b, interval);
    }
    ot_buf_putc(b, '}');
    if (dd_items_close(e->series) < 0)
        return oom(e);
    e->series->points++;
    return 0;
}

/* name + suffix in e->name. */
static const char *suffixed(enc *e, const char *name, const char *suffix, size_t *len)
{
    ot_buf_reset(&e->name);
    ot_buf_puts(&e->name, name);
    ot_buf_puts(&e->name, suffix);
    *len = e->name.len;
    return e->name.oom ? "" : e->name.data;
}

static int64_t interval_of(uint64_t start, uint64_t t)
{
    if (!start || t <= start)
        return 0;
    return (int64_t)((t - start + 500000000ull) / 1000000000ull);
}

static double number(const ot_number_point *p)
{
    return p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
               ? (double)p->as_int
               : p->as_double;
}

static int numbers(enc *e, const ot_metric *m, ot_number_point *const *pts, size_t n, int type,
                   bool delta)
{
    for (size_t i = 0; i < n; i++) {
        const ot_number_point *p = pts[i];
        if (p->flags & NO_RECORDED_VALUE)
            continue;
        if (point_tags(e, p->attributes, p->n_attributes) < 0)
            return oom(e);
        int64_t iv = delta ? interval_of(p->start_time_unix_nano, p->time_unix_nano) : 0;
        if (series(e, m->name, strlen(m->name), type, number(p), secs(p->time_unix_nano, e->now_s),
                   iv) < 0)
            return -1;
    }
    return 0;
}

static int count_sum(enc *e, const char *name, double count, double sum, bool has_sum,
                     int64_t ts, int64_t iv, int type)
{
    size_t len;
    const char *nm = suffixed(e, name, ".count", &len);
    if (series(e, nm, len, type, count, ts, iv) < 0)
        return -1;
    if (!has_sum)
        return 0;
    nm = suffixed(e, name, ".sum", &len);
    return series(e, nm, len, type, sum, ts, iv);
}

static int sketch_out(enc *e, const char *name, int64_t ts)
{
    if (dd_sketch_item(e->sketches, name, e->res.host, &e->tags, ts, &e->sk, e->scratch,
                       e->err) < 0)
        return -1;
    e->sketches->points++;
    return 0;
}

static int bound_tag(dd_tags *t, const char *key, double v)
{
    char tmp[48];
    if (isinf(v))
        snprintf(tmp, sizeof tmp, "%s", v > 0 ? "inf" : "-inf");
    else {
        ot_buf b = OT_BUF_INIT;
        dd_json_double(&b, v);
        snprintf(tmp, sizeof tmp, "%s", b.data ? b.data : "0");
        ot_buf_free(&b);
    }
    return dd_tags_add(t, key, strlen(key), tmp, strlen(tmp));
}

static int histograms(enc *e, const ot_metric *m)
{
    const Opentelemetry__Proto__Metrics__V1__Histogram *h = m->histogram;
    for (size_t i = 0; h && i < h->n_data_points; i++) {
        const ot_histogram_point *p = h->data_points[i];
        if (p->flags & NO_RECORDED_VALUE)
            continue;
        if (point_tags(e, p->attributes, p->n_attributes) < 0)
            return oom(e);
        int64_t ts = secs(p->time_unix_nano, e->now_s);
        int64_t iv = interval_of(p->start_time_unix_nano, p->time_unix_nano);
        if (e->o->hist_mode == DD_HIST_DISTRIBUTIONS) {
            if ((p->sum_present_case != 0) && !isfinite(p->sum)) {
                ot_counter_add(e->o->dropped_nan, 1);
                continue;
            }
            if (dd_sketch_from_hist(&e->sk, p) < 0)
                return oom(e);
            if (sketch_out(e, m->name, ts) < 0)
                return -1;
            continue;
        }
        if (count_sum(e, m->name, (double)p->count, p->sum, (p->sum_present_case != 0), ts, iv, T_COUNT) < 0)
            return -1;
        if (e->o->hist_mode != DD_HIST_COUNTERS || p->n_bucket_counts != p->n_explicit_bounds + 1)
            continue;
        size_t base = e->tags.n, len;
        for (size_t j = 0; j < p->n_bucket_counts; j++) {
            dd_tags_truncate(&e->tags, base);
            double lo = j ? p->explicit_bounds[j - 1] : -INFINITY;
            double hi = j < p->n_explicit_bounds ? p->explicit_bounds[j] : INFINITY;
            if (bound_tag(&e->tags, "lower_bound", lo) < 0 ||
                bound_tag(&e->tags, "upper_bound", hi) < 0)
                return oom(e);
            const char *nm = suffixed(e, m->name, ".bucket", &len);
            if (series(e, nm, len, T_COUNT, (double)p->bucket_counts[j], ts, iv) < 0)
                return -1;
        }
    }
    return 0;
}

static int exphistograms(enc *e, const ot_metric *m)
{
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h = m->exponential_histogram;
    for (size_t i = 0; h && i < h->n_data_points; i++) {
        const ot_exphistogram_point *p = h->data_points[i];
        if (p->flags & NO_RECORDED_VALUE)
            continue;
        if (point_tags(e, p->attributes, p->n_attributes) < 0)
            return oom(e);
        int64_t ts = secs(p->time_unix_nano, e->now_s);
        if (e->o->hist_mode == DD_HIST_NOBUCKETS) {
            int64_t iv = interval_of(p->start_time_unix_nano, p->time_unix_nano);
            if (count_sum(e, m->name, (double)p->count, p->sum, (p->sum_present_case != 0), ts, iv, T_COUNT) < 0)
                return -1;
            continue;
        }
        if ((p->sum_present_case != 0) && !isfinite(p->sum)) {
            ot_counter_add(e->o->dropped_nan, 1);
            continue;
        }
        if (dd_sketch_from_exphist(&e->sk, p) < 0)
            return oom(e);
        if (sketch_out(e, m->name, ts) < 0)
            return -1;
    }
    return 0;
}

static int summaries(enc *e, const ot_metric *m)
{
    const Opentelemetry__Proto__Metrics__V1__Summary *s = m->summary;
    for (size_t i = 0; s && i < s->n_data_points; i++) {
        const ot_summary_point *p = s->data_points[i];
        if (p->flags & NO_RECORDED_VALUE)
            continue;
        if (point_tags(e, p->attributes, p->n_attributes) < 0)
            return oom(e);
        int64_t ts = secs(p->time_unix_nano, e->now_s);
        if (!(p->flags & DD_FLAG_NO_DELTA)) {
            bool delta = p->flags & DD_FLAG_DELTA;
            int64_t iv = delta ? interval_of(p->start_time_unix_nano, p->time_unix_nano) : 0;
            if (count_sum(e, m->name, (double)p->count, p->sum, true, ts, iv,
                          delta ? T_COUNT : T_GAUGE) < 0)
                return -1;
        }
        if (e->o->summary_mode != DD_SUMMARY_GAUGES)
            continue;
        size_t base = e->tags.n, len;
        for (size_t j = 0; j < p->n_quantile_values; j++) {
            dd_tags_truncate(&e->tags, base);
            if (bound_tag(&e->tags, "quantile", p->quantile_values[j]->quantile) < 0)
                return oom(e);
            const char *nm = suffixed(e, m->name, ".quantile", &len);
            if (series(e, nm, len, T_GAUGE, p->quantile_values[j]->value, ts, 0) < 0)
                return -1;
        }
    }
    return 0;
}

static int metric(enc *e, const ot_metric *m)
{
    if (!m->name || !*m->name)
        return 0;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return numbers(e, m, m->gauge->data_points, m->gauge->n_data_points, T_GAUGE, false);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        const Opentelemetry__Proto__Metrics__V1__Sum *s = m->sum;
        bool delta = s->aggregation_temporality ==
                     OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
        return numbers(e, m, s->data_points, s->n_data_points, delta ? T_COUNT : T_GAUGE, delta);
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return histograms(e, m);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return exphistograms(e, m);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return summaries(e, m);
    default:
        return 0;
    }
}

int dd_series_encode(const ot_metrics_req *req, const dd_opts *o, dd_items *series,
                     dd_items *sketches, ot_arena *scratch, ot_err *err)
{
    enc e = {.o = o, .series = series, .sketches = sketches, .scratch = scratch, .err = err};
    e.now_s = o->now_s ? o->now_s : (int64_t)time(NULL);
    int rc = 0;
    for (size_t r = 0; r < req->n_resource_metrics && rc == 0; r++) {
        const ot_resource_metrics *rm = req->resource_metrics[r];
        if (dd_res_load(&e.res, rm->resource, o) < 0) {
            rc = oom(&e);
            break;
        }
        for (size_t s = 0; s < rm->n_scope_metrics && rc == 0; s++)
            for (size_t i = 0; i < rm->scope_metrics[s]->n_metrics && rc == 0; i++)
                rc = metric(&e, rm->scope_metrics[s]->metrics[i]);
    }
    dd_res_free(&e.res);
    dd_tags_free(&e.tags);
    ot_buf_free(&e.name);
    dd_sketch_free(&e.sk);
    return rc;
}

typedef struct wseries {
    enc e;
    size_t ri;
    bool loaded;
    ot_arena *chunk;
} wseries;

static int wire_metric(void *ctx, const ot_resource *rsc, size_t ri, const ot_scope *scope,
                       const uint8_t *leaf, size_t len)
{
    (void)scope;
    wseries *w = ctx;
    if (!w->loaded || ri != w->ri) {
        if (dd_res_load(&w->e.res, rsc, w->e.o) < 0)
            return oom(&w->e);
        w->ri = ri;
        w->loaded = true;
    }
    ot_arena_reset(w->chunk);
    const ot_metric *m =
        opentelemetry__proto__metrics__v1__metric__unpack(ot_arena_pb_allocator(w->chunk), len, leaf);
    if (!m)
        return ot_err_set(w->e.err, "a metric does not decode");
    return metric(&w->e, m);
}

int dd_series_encode_wire(const uint8_t *wire, size_t len, const dd_opts *o, dd_items *series,
                          dd_items *sketches, ot_arena *keep, ot_arena *chunk, ot_err *err)
{
    wseries w = {.e = {.o = o, .series = series, .sketches = sketches, .scratch = chunk,
                       .err = err},
                 .chunk = chunk};
    w.e.now_s = o->now_s ? o->now_s : (int64_t)time(NULL);
    int rc = dd_wire_leaves(OT_METRICS, wire, len, keep, wire_metric, &w, err);
    dd_res_free(&w.e.res);
    dd_tags_free(&w.e.tags);
    ot_buf_free(&w.e.name);
    dd_sketch_free(&w.e.sk);
    return rc == 2 ? -1 : rc;
}
