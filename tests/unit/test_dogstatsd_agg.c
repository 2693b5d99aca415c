/* Unit tests for the DogStatsD aggregation (receivers/dogstatsd/agg.c and
 * flush.c), driven without sockets: datagrams go through the parser into
 * the aggregator as a reader would feed them, and each flush's OTLP is
 * checked for exact values of every type and mapping, the start times of
 * delta and cumulative points, resources from tags, merging of one series
 * seen by several readers, points with their own timestamp, the series
 * cap and expiry. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../receivers/dogstatsd/dsdr.h"

static ot_dsd_iter it;

static dsdr_agg *mk(dsdr_agg_opts o)
{
    if (!o.interval_ns)
        o.interval_ns = 1000000000LL;
    if (!o.start_unix_ns)
        o.start_unix_ns = 1000;
    ot_err err = {{0}};
    dsdr_agg *a = ot_dsdr_agg_new(&o, &err);
    cr_assert(a, "%s", err.msg);
    return a;
}

/* One reader callback with one datagram, through the look-ahead as the
 * receiver's readers feed it; returns how many adds failed. */
static int feed_r(dsdr_agg *a, unsigned r, const char *dgram, int64_t unix_ns, int64_t mono)
{
    unsigned fails = 0;
    ot_dsdr_agg_begin(a, r, unix_ns, mono);
    ot_dsd_iter_init(&it, dgram, strlen(dgram));
    ot_dsd_item item;
    while (ot_dsd_next(&it, &item))
        fails += ot_dsdr_agg_push(a, r, &item);
    fails += ot_dsdr_agg_end(a, r);
    return (int)fails;
}

static int feed(dsdr_agg *a, const char *dgram)
{
    return feed_r(a, 0, dgram, 5000, 5000);
}

static ot_batch *flush_at(dsdr_agg *a, int64_t unix_ns, int64_t mono)
{
    size_t n;
    ot_err err = {{0}};
    ot_batch *b = ot_dsdr_agg_flush(a, unix_ns, mono, &n, &err);
    cr_assert(b || !err.msg[0], "%s", err.msg);
    return b;
}

static const ot_metrics_req *req(ot_batch *b)
{
    cr_assert(b);
    return (const ot_metrics_req *)b->msg;
}

/* The one metric called name anywhere in the request. */
static const ot_metric *find(const ot_metrics_req *r, const char *name, size_t *ri)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++)
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++)
                if (strcmp(sm->metrics[k]->name, name) == 0) {
                    if (ri)
                        *ri = i;
                    return sm->metrics[k];
                }
        }
    cr_assert_fail("no metric %s", name);
    return NULL;
}

static const char *attr(ot_keyvalue **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i]->key, key) == 0)
            return kv[i]->value->string_value;
    return NULL;
}

Test(dogstatsd_agg, counter_rate_and_packing_delta)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "hits:1|c\nhits:2:3|c\nhits:1|c|@0.5\nother:4|c|#a:b");
    ot_batch *b = flush_at(a, 2000000000, 1000000000);
    const ot_metric *m = find(req(b), "hits", NULL);
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    cr_assert(m->sum->is_monotonic);
    cr_assert_eq(m->sum->aggregation_temporality, 1);
    cr_assert_eq(m->sum->n_data_points, 1);
    cr_expect_float_eq(m->sum->data_points[0]->as_double, 8.0, 1e-12);
    cr_expect_eq(m->sum->data_points[0]->start_time_unix_nano, 1000);
    cr_expect_eq(m->sum->data_points[0]->time_unix_nano, 2000000000);
    const ot_metric *o = find(req(b), "other", NULL);
    cr_expect_str_eq(attr(o->sum->data_points[0]->attributes, o->sum->data_points[0]->n_attributes, "a"), "b");
    ot_batch_unref(b);
    /* the next interval starts at this flush and holds only what came since */
    feed(a, "hits:5|c");
    b = flush_at(a, 3000000000, 2000000000);
    m = find(req(b), "hits", NULL);
    cr_expect_float_eq(m->sum->data_points[0]->as_double, 5.0, 1e-12);
    cr_expect_eq(m->sum->data_points[0]->start_time_unix_nano, 2000000000);
    cr_expect_eq(req(b)->n_resource_metrics, 1);
    ot_batch_unref(b);
    /* nothing new: nothing sent */
    cr_expect_null(flush_at(a, 4000000000, 3000000000));
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, counter_cumulative)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1, .temporality = DSDR_CUMULATIVE});
    feed_r(a, 0, "c:2|c", 1500, 10);
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metric *m = find(req(b), "c", NULL);
    cr_expect_eq(m->sum->aggregation_temporality, 2);
    cr_expect_float_eq(m->sum->data_points[0]->as_double, 2.0, 1e-12);
    cr_expect_eq(m->sum->data_points[0]->start_time_unix_nano, 1500);
    ot_batch_unref(b);
    feed_r(a, 0, "c:3|c", 2500, 30);
    b = flush_at(a, 3000, 40);
    m = find(req(b), "c", NULL);
    cr_expect_float_eq(m->sum->data_points[0]->as_double, 5.0, 1e-12);
    cr_expect_eq(m->sum->data_points[0]->start_time_unix_nano, 1500);
    ot_batch_unref(b);
    /* still reported while alive, with no new samples */
    b = flush_at(a, 4000, 50);
    cr_expect_float_eq(find(req(b), "c", NULL)->sum->data_points[0]->as_double, 5.0, 1e-12);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, gauges_last_and_relative)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "g:10|g\ng:-5|g\ng:+3|g");
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metric *m = find(req(b), "g", NULL);
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    cr_expect_float_eq(m->gauge->data_points[0]->as_double, 3.0, 1e-12);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);

    a = mk((dsdr_agg_opts){.readers = 1, .relative_gauges = true});
    feed(a, "g:10|g\ng:-4|g\ng:+1.5|g");
    b = flush_at(a, 2000, 20);
    cr_expect_float_eq(find(req(b), "g", NULL)->gauge->data_points[0]->as_double, 7.5, 1e-12);
    ot_batch_unref(b);
    /* the value carries over to the next interval for adjustments */
    feed(a, "g:+2|g");
    b = flush_at(a, 3000, 30);
    cr_expect_float_eq(find(req(b), "g", NULL)->gauge->data_points[0]->as_double, 9.5, 1e-12);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

/* The look-ahead holds lines back; what it adds must be what adding each
 * line at once gives: a series' lines in their order (a gauge's last value
 * wins) across packed and timestamped lines that skip the queue, and
 * exact totals when the key cache evicts entries that queued lines had
 * found (more series in one callback than the cache holds). */
Test(dogstatsd_agg, lookahead_keeps_order_and_totals)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "g:1|g\nc:1|c\ng:2|g\nc:2|c\nc:3:4|c\ng:3|g\nx:1|c\ny:1|c\nz:1|c\n"
            "w:1|c\nv:1|c\nu:1|c\ng:4|g\nc:5|c|T1700000000\ng:5|g\ng:6:7|g\nc:6|c\n"
            "g:11|g\ng:12|g\ng:13|g");
    ot_batch *b = flush_at(a, 2000, 20);
    cr_expect_float_eq(find(req(b), "g", NULL)->gauge->data_points[0]->as_double, 13.0, 1e-12);
    cr_expect_float_eq(find(req(b), "c", NULL)->sum->data_points[0]->as_double, 16.0, 1e-12);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);

    enum { SERIES = DSDR_KCACHE + DSDR_KCACHE / 4, ROUNDS = 3 };
    a = mk((dsdr_agg_opts){.readers = 1});
    static char dg[SERIES * ROUNDS * 16];
    size_t len = 0;
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < SERIES; i++)
            len += (size_t)snprintf(dg + len, sizeof dg - len, "%s%d:%d|c\n", "s",
                                    (i * 7919 + round * 13) % SERIES, round + 1);
    cr_assert_lt(len, sizeof dg);
    cr_expect_eq(feed(a, dg), 0);
    b = flush_at(a, 2000, 20);
    const ot_metrics_req *r = req(b);
    size_t points = 0;
    double total = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++)
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                cr_assert_eq(sm->metrics[k]->sum->n_data_points, 1);
                double v = sm->metrics[k]->sum->data_points[0]->as_double;
                cr_expect_float_eq(v, 6.0, 1e-12, "%s: %g", sm->metrics[k]->name, v);
                total += v;
                points++;
            }
        }
    cr_expect_eq(points, (size_t)SERIES);
    cr_expect_float_eq(total, 6.0 * SERIES, 1e-6);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, sets_count_distinct_per_interval)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "u:alice|s\nu:bob|s\nu:alice|s\nu:a:b|s");
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metric *m = find(req(b), "u", NULL);
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    cr_expect_eq(m->gauge->data_points[0]->as_int, 3);
    ot_batch_unref(b);
    feed(a, "u:carol|s");
    b = flush_at(a, 3000, 30);
    cr_expect_eq(find(req(b), "u", NULL)->gauge->data_points[0]->as_int, 1);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, timer_summary_exact_quantiles)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "t:10:9:8:7:6|ms\nt:1:2:3:4:5|ms\nh:4|h|@0.25");
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metric *m = find(req(b), "t", NULL);
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY);
    const ot_summary_point *p = m->summary->data_points[0];
    cr_expect_eq(p->count, 10);
    cr_expect_float_eq(p->sum, 55.0, 1e-12);
    cr_assert_eq(p->n_quantile_values, 6);
    const double want_q[] = {0, .5, .9, .95, .99, 1}, want_v[] = {1, 5, 9, 10, 10, 10};
    for (int i = 0; i < 6; i++) {
        cr_expect_float_eq(p->quantile_values[i]->quantile, want_q[i], 1e-12);
        cr_expect_float_eq(p->quantile_values[i]->value, want_v[i], 1e-12, "q%g", want_q[i]);
    }
    cr_expect_eq(p->start_time_unix_nano, 1000);
    /* a sample at rate 0.25 weighs 4 */
    const ot_summary_point *h = find(req(b), "h", NULL)->summary->data_points[0];
    cr_expect_eq(h->count, 4);
    cr_expect_float_eq(h->sum, 16.0, 1e-12);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, timer_explicit_histogram)
{
    const double bounds[] = {1, 5, 10};
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1, .mapping = DSDR_HISTOGRAM, .bounds = bounds,
                                     .n_bounds = 3});
    feed(a, "t:0.5:1:2:5:7:100|ms\nt:3|ms|@0.5");
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metric *m = find(req(b), "t", NULL);
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    cr_expect_eq(m->histogram->aggregation_temporality, 1);
    const ot_histogram_point *p = m->histogram->data_points[0];
    cr_assert_eq(p->n_bucket_counts, 4);
    const uint64_t want[] = {2, 4, 1, 1}; /* (..1] (1..5] (5..10] (10..) */
    for (int i = 0; i < 4; i++)
        cr_expect_eq(p->bucket_counts[i], want[i], "bucket %d: %lu", i,
                     (unsigned long)p->bucket_counts[i]);
    cr_expect_eq(p->count, 8);
    cr_expect_float_eq(p->sum, 0.5 + 1 + 2 + 5 + 7 + 100 + 6, 1e-9);
    cr_expect_float_eq(p->min, 0.5, 1e-12);
    cr_expect_float_eq(p->max, 100, 1e-12);
    cr_expect_eq(p->n_explicit_bounds, 3);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, distribution_exponential_histogram)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "d:1:2:4|d\nz:0:-2|d");
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metric *m = find(req(b), "d", NULL);
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    const ot_exphistogram_point *p = m->exponential_histogram->data_points[0];
    /* the largest scale at which 1, 2 and 4 fit in 160 buckets is 6:
     * indexes -1, 63 and 127 (boundaries are upper-inclusive) */
    cr_expect_eq(p->scale, 6);
    cr_expect_eq(p->count, 3);
    cr_expect_float_eq(p->sum, 7, 1e-12);
    cr_assert_eq(p->positive->offset, -1);
    cr_assert_eq(p->positive->n_bucket_counts, 129);
    cr_expect_eq(p->positive->bucket_counts[0], 1);
    cr_expect_eq(p->positive->bucket_counts[64], 1);
    cr_expect_eq(p->positive->bucket_counts[128], 1);
    cr_expect_leq(p->positive->n_bucket_counts, DSDR_EXP_MAX_BUCKETS);
    const ot_exphistogram_point *z = find(req(b), "z", NULL)->exponential_histogram->data_points[0];
    cr_expect_eq(z->zero_count, 1);
    cr_expect_eq(z->count, 2);
    cr_expect_eq(z->scale, 20);
    cr_expect_eq(z->negative->n_bucket_counts, 1);
    cr_expect_eq(z->negative->offset, 1048575);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);

    /* a wide range still fits in 160 buckets */
    a = mk((dsdr_agg_opts){.readers = 1, .mapping = DSDR_EXPHIST});
    feed(a, "w:0.001:1:1000000:1e12|ms");
    b = flush_at(a, 2000, 20);
    p = find(req(b), "w", NULL)->exponential_histogram->data_points[0];
    cr_expect_leq(p->positive->n_bucket_counts, DSDR_EXP_MAX_BUCKETS);
    cr_expect_eq(p->count, 4);
    uint64_t sum = 0;
    for (size_t i = 0; i < p->positive->n_bucket_counts; i++)
        sum += p->positive->bucket_counts[i];
    cr_expect_eq(sum, 4);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, resource_tags_and_grouping)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1, .metric_type_attr = true});
    feed(a, "r:1|c|#host:h1,env:prod,service:web,version:1.2,zone:a,bare|c:cid\n"
            "r:1|c|#zone:a,bare,host:h1,env:prod,service:web,version:1.2|c:cid\n"
            "r:1|c|#host:h2");
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metrics_req *r = req(b);
    cr_assert_eq(r->n_resource_metrics, 2);
    size_t found = 0;
    for (size_t i = 0; i < 2; i++) {
        const ot_resource_metrics *rm = r->resource_metrics[i];
        const char *host = attr(rm->resource->attributes, rm->resource->n_attributes, "host.name");
        const ot_number_point *p = rm->scope_metrics[0]->metrics[0]->sum->data_points[0];
        if (strcmp(host, "h1") == 0) {
            found++;
            cr_expect_str_eq(attr(rm->resource->attributes, rm->resource->n_attributes,
                                  "deployment.environment.name"), "prod");
            cr_expect_str_eq(attr(rm->resource->attributes, rm->resource->n_attributes,
                                  "service.name"), "web");
            cr_expect_str_eq(attr(rm->resource->attributes, rm->resource->n_attributes,
                                  "service.version"), "1.2");
            cr_expect_str_eq(attr(rm->resource->attributes, rm->resource->n_attributes,
                                  "container.id"), "cid");
            cr_expect_float_eq(p->as_double, 2, 1e-12); /* tag order does not split series */
            cr_expect_str_eq(attr(p->attributes, p->n_attributes, "zone"), "a");
            cr_expect_str_eq(attr(p->attributes, p->n_attributes, "bare"), "");
            cr_expect_str_eq(attr(p->attributes, p->n_attributes, "metric_type"), "counter");
            cr_expect_eq(p->n_attributes, 3);
        } else {
            found += 10;
            cr_expect_str_eq(host, "h2");
            cr_expect_float_eq(p->as_double, 1, 1e-12);
        }
    }
    cr_expect_eq(found, 11);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, readers_merge_one_series)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 3});
    feed_r(a, 0, "m:1|c\ng:1|g\ns:x|s\nt:1|ms", 100, 1);
    feed_r(a, 1, "m:2|c\ng:2|g\ns:y|s\nt:2|ms", 300, 1);
    feed_r(a, 2, "m:4|c\ng:3|g\ns:x|s\nt:3|ms", 200, 1);
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metrics_req *r = req(b);
    cr_expect_eq(b->items, 4);
    cr_expect_float_eq(find(r, "m", NULL)->sum->data_points[0]->as_double, 7, 1e-12);
    cr_expect_eq(find(r, "m", NULL)->sum->n_data_points, 1);
    /* the gauge written last (reader 1 at t=300) wins */
    cr_expect_float_eq(find(r, "g", NULL)->gauge->data_points[0]->as_double, 2, 1e-12);
    cr_expect_eq(find(r, "s", NULL)->gauge->data_points[0]->as_int, 2);
    const ot_summary_point *t = find(r, "t", NULL)->summary->data_points[0];
    cr_expect_eq(t->count, 3);
    cr_expect_float_eq(t->quantile_values[1]->value, 2, 1e-12);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, own_timestamps_not_merged)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "c:1|c|T1700000000\nc:2|c|T1700000001\nc:5|c\ng:3|g|T1700000002");
    ot_batch *b = flush_at(a, 2000, 20);
    const ot_metrics_req *r = req(b);
    cr_expect_eq(b->items, 4);
    size_t pts = 0;
    double total = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[0];
        for (size_t k = 0; k < sm->n_metrics; k++) {
            const ot_metric *m = sm->metrics[k];
            if (strcmp(m->name, "c") || m->data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM)
                continue;
            for (size_t q = 0; q < m->sum->n_data_points; q++) {
                const ot_number_point *p = m->sum->data_points[q];
                pts++;
                total += p->as_double;
                if (p->as_double == 1)
                    cr_expect_eq(p->time_unix_nano, 1700000000000000000ull);
                if (p->as_double == 2)
                    cr_expect_eq(p->time_unix_nano, 1700000001000000000ull);
                if (p->as_double == 5)
                    cr_expect_eq(p->time_unix_nano, 2000);
            }
        }
    }
    cr_expect_eq(pts, 3);
    cr_expect_float_eq(total, 8, 1e-12);
    cr_expect_eq(find(r, "g", NULL)->gauge->data_points[0]->time_unix_nano, 1700000002000000000ull);
    ot_batch_unref(b);
    cr_expect_null(flush_at(a, 3000, 30));
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, series_cap_and_expiry)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1, .max_series = 2, .interval_ns = 1000});
    cr_expect_eq(feed_r(a, 0, "a:1|c\nb:1|c\nc:1|c\na:1|c", 10, 10), 1);
    dsdr_agg_stats st;
    ot_dsdr_agg_stats(a, &st);
    cr_expect_eq(st.series, 2);
    cr_expect_eq(st.refused, 1);
    ot_batch *b = flush_at(a, 2000, 500);
    cr_expect_eq(b->items, 2);
    ot_batch_unref(b);
    /* idle for 2 intervals: gone, and room for a new one */
    cr_expect_null(flush_at(a, 3000, 2020));
    ot_dsdr_agg_stats(a, &st);
    cr_expect_eq(st.series, 0);
    cr_expect_eq(feed_r(a, 0, "c:1|c", 2030, 2030), 0);
    ot_dsdr_agg_free(a);
}

Test(dogstatsd_agg, type_keeps_series_apart)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1});
    feed(a, "x:5|g\nx:v|s\nx:2|c");
    ot_batch *b = flush_at(a, 2000, 20);
    cr_expect_eq(b->items, 3);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

/* Readers keep writing while the flusher closes intervals: every value
 * lands in exactly one flush (the epoch protocol loses and doubles
 * nothing), whatever the interleaving. */
typedef struct writer_arg {
    dsdr_agg *a;
    unsigned r;
    int rounds;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *w = p;
    static __thread ot_dsd_iter tit;
    for (int i = 0; i < w->rounds; i++) {
        const char *d = "w:1|c\nw:2|c|#k:v\nt:3|ms\nu:x|s";
        ot_dsdr_agg_begin(w->a, w->r, 100 + i, 100 + i);
        ot_dsd_iter_init(&tit, d, strlen(d));
        ot_dsd_item item;
        while (ot_dsd_next(&tit, &item))
            ot_dsdr_agg_push(w->a, w->r, &item);
        ot_dsdr_agg_end(w->a, w->r);
    }
    return NULL;
}

static void tally(ot_batch *b, double *w, double *wk, uint64_t *tcount)
{
    if (!b)
        return;
    const ot_metrics_req *r = req(b);
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[0];
        for (size_t k = 0; k < sm->n_metrics; k++) {
            const ot_metric *m = sm->metrics[k];
            if (strcmp(m->name, "w") == 0)
                for (size_t q = 0; q < m->sum->n_data_points; q++)
                    *(m->sum->data_points[q]->n_attributes ? wk : w) +=
                        m->sum->data_points[q]->as_double;
            if (strcmp(m->name, "t") == 0)
                *tcount += m->summary->data_points[0]->count;
        }
    }
    ot_batch_unref(b);
}

Test(dogstatsd_agg, concurrent_readers_and_flushes)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 2, .interval_ns = 1000000000000LL});
    enum { ROUNDS = 20000 };
    writer_arg w[2] = {{a, 0, ROUNDS}, {a, 1, ROUNDS}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, writer, &w[i]);
    double sw = 0, swk = 0;
    uint64_t tc = 0;
    int flushes = 0;
    for (; flushes < 200; flushes++)
        tally(flush_at(a, 2000 + flushes, 2000 + flushes), &sw, &swk, &tc);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    tally(flush_at(a, 9000, 9000), &sw, &swk, &tc);
    cr_expect_float_eq(sw, 2.0 * ROUNDS, 1e-6);
    cr_expect_float_eq(swk, 4.0 * ROUNDS, 1e-6);
    cr_expect_eq(tc, 2 * ROUNDS);
    ot_dsdr_agg_free(a);
}

/* A flush in chunks: every point once, in batches of a bounded size, one
 * series seen by three readers merged whole though the readers' stores
 * are walked a stripe at a time. */
typedef struct chunks {
    size_t batches, points, max_batch;
    double sum;
} chunks;

static void take_chunk(void *ctx, ot_batch *b)
{
    chunks *c = ctx;
    c->batches++;
    c->points += b->items;
    if (b->items > c->max_batch)
        c->max_batch = b->items;
    const ot_metrics_req *r = req(b);
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[0];
        for (size_t k = 0; k < sm->n_metrics; k++)
            for (size_t q = 0; q < sm->metrics[k]->sum->n_data_points; q++)
                c->sum += sm->metrics[k]->sum->data_points[q]->as_double;
    }
    ot_batch_unref(b);
}

Test(dogstatsd_agg, flush_in_chunks_merges_readers)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 3});
    enum { SERIES = 5000 };
    char line[64];
    for (unsigned r = 0; r < 3; r++)
        for (int i = 0; i < SERIES; i++) {
            snprintf(line, sizeof line, "m%d:%u|c|#k:%d", i % 7, r + 1, i);
            feed_r(a, r, line, 100, 1);
        }
    chunks c = {0};
    size_t n = 0;
    ot_err err = {{0}};
    cr_assert_eq(ot_dsdr_agg_flush_chunks(a, 2000, 20, 200, take_chunk, &c, &n, &err), 0, "%s",
                 err.msg);
    cr_expect_eq(c.points, SERIES, "one point per series, merged over readers");
    cr_expect_eq(n, SERIES);
    cr_expect_float_eq(c.sum, 6.0 * SERIES, 1e-6);
    cr_expect_geq(c.batches, SERIES / 400, "%zu batches", c.batches);
    /* a chunk closes at a stripe's end: 200 plus at most a stripe's share */
    cr_expect_lt(c.max_batch, 400, "largest batch %zu", c.max_batch);
    chunks c2 = {0};
    cr_assert_eq(ot_dsdr_agg_flush_chunks(a, 3000, 30, 200, take_chunk, &c2, &n, &err), 0);
    cr_expect_eq(c2.points, 0);
    cr_expect_eq(c2.batches, 0);
    ot_dsdr_agg_free(a);
}

/* max_series holds over every reader and every type together: not a cap
 * per reader, nor one for counters and another for the rest. (A series
 * that reaches two readers is held, and counted, once by each.) */
Test(dogstatsd_agg, series_cap_is_the_receivers)
{
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 2, .max_series = 3});
    cr_expect_eq(feed_r(a, 0, "a:1|c\nb:1|g", 10, 10), 0);
    cr_expect_eq(feed_r(a, 1, "c:1|ms\nd:1|c", 10, 10), 1);
    cr_expect_eq(feed_r(a, 0, "b:2|g\na:1|c", 10, 10), 0, "held series still take values");
    cr_expect_eq(feed_r(a, 1, "c:2|ms", 10, 10), 0);
    dsdr_agg_stats st;
    ot_dsdr_agg_stats(a, &st);
    cr_expect_eq(st.refused, 1);
    cr_expect_eq(st.series, 3);
    ot_batch *b = flush_at(a, 2000, 20);
    cr_expect_eq(b->items, 3, "a, b, c; d refused");
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}

typedef struct budget_seen {
    dsdr_agg *a;
    ot_batch *b;
    int64_t held_in_chunk;
} budget_seen;

static void keep_chunk(void *ctx, ot_batch *b)
{
    budget_seen *s = ctx;
    dsdr_agg_stats st;
    ot_dsdr_agg_stats(s->a, &st);
    s->held_in_chunk = st.sample_bytes;
    cr_assert_null(s->b, "one chunk expected");
    s->b = b;
}

Test(dogstatsd_agg, sample_budget_keeps_a_reservoir_with_exact_totals)
{
    /* room for about a hundred samples over all series */
    dsdr_agg *a = mk((dsdr_agg_opts){.readers = 1, .max_sample_bytes = 2048});
    char dgram[2048];
    /* 1..10000 in an order that is neither rising nor falling */
    for (int d = 0; d < 100; d++) {
        size_t o = (size_t)snprintf(dgram, sizeof dgram, "lat");
        for (int i = 0; i < 100; i++)
            o += (size_t)snprintf(dgram + o, sizeof dgram - o, ":%d", (i * 100 + d * 37) % 10000 + 1);
        snprintf(dgram + o, sizeof dgram - o, "|ms");
        cr_assert_eq(feed(a, dgram), 0);
    }
    dsdr_agg_stats st;
    ot_dsdr_agg_stats(a, &st);
    cr_expect_gt(st.sampled, 9000, "sampled %llu", (unsigned long long)st.sampled);
    cr_expect_leq(st.sample_bytes, 2048 + 128, "held %lld", (long long)st.sample_bytes);
    /* the flush's merged copy counts while its chunk lives, and not after */
    budget_seen seen = {a, NULL, 0};
    size_t n = 0;
    ot_err err = {{0}};
    cr_assert_eq(ot_dsdr_agg_flush_chunks(a, 2000, 20, 4096, keep_chunk, &seen, &n, &err), 0,
                 "%s", err.msg);
    ot_batch *b = seen.b;
    cr_assert(b);
    cr_expect_gt(seen.held_in_chunk, st.sample_bytes, "%lld", (long long)seen.held_in_chunk);
    dsdr_agg_stats after;
    ot_dsdr_agg_stats(a, &after);
    cr_expect_eq(after.sample_bytes, st.sample_bytes);
    const ot_summary_point *p = find(req(b), "lat", NULL)->summary->data_points[0];
    cr_expect_eq(p->count, 10000);
    cr_expect_float_eq(p->sum, 50005000.0, 1e-6);
    cr_assert_eq(p->n_quantile_values, 6);
    /* min and max are exact; the median comes from the reservoir: a uniform
     * sample of ~100 puts it within a few percent of the true rank */
    cr_expect_float_eq(p->quantile_values[0]->value, 1.0, 1e-12);
    cr_expect_float_eq(p->quantile_values[5]->value, 10000.0, 1e-12);
    double med = p->quantile_values[1]->value;
    cr_expect(med > 3500 && med < 6500, "median %g", med);
    ot_batch_unref(b);
    ot_dsdr_agg_free(a);
}
