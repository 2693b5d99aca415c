/* fuzz_dogstatsd_agg.c: the DogStatsD aggregation on arbitrary datagrams.
 * Whatever lines a pod sends, the reader's updates and the flush that
 * follows must not crash, leak or read out of bounds (ASan), every
 * flushed batch must encode to protobuf and decode back with the same
 * number of points, histogram buckets must add up to their count, and
 * exponential histograms must stay within 160 buckets per side. The
 * first byte picks the timer mapping and the counter temporality. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../receivers/dogstatsd/dsdr.h"

static ot_dsd_iter it;

static void check(ot_batch *b)
{
    const uint8_t *w;
    size_t n;
    if (ot_batch_wire(b, &w, &n, NULL) < 0)
        abort();
    ot_err err;
    ot_batch *d = ot_batch_decode(OT_METRICS, w, n, &err);
    if (!d || d->items != b->items)
        abort();
    const ot_metrics_req *r = (const ot_metrics_req *)b->msg;
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[0];
        for (size_t k = 0; k < sm->n_metrics; k++) {
            const ot_metric *m = sm->metrics[k];
            if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM)
                for (size_t q = 0; q < m->histogram->n_data_points; q++) {
                    const ot_histogram_point *p = m->histogram->data_points[q];
                    uint64_t s = 0;
                    for (size_t j = 0; j < p->n_bucket_counts; j++)
                        s += p->bucket_counts[j];
                    if (s != p->count)
                        abort();
                }
            if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM)
                for (size_t q = 0; q < m->exponential_histogram->n_data_points; q++) {
                    const ot_exphistogram_point *p = m->exponential_histogram->data_points[q];
                    if (p->positive->n_bucket_counts > DSDR_EXP_MAX_BUCKETS ||
                        p->negative->n_bucket_counts > DSDR_EXP_MAX_BUCKETS)
                        abort();
                }
        }
    }
    ot_batch_unref(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const double bounds[] = {0, 1, 10, 100};
    dsdr_agg_opts o = {.readers = 2, .interval_ns = 1000, .temporality = data[0] & 1,
                       .mapping = (data[0] >> 1) % 3, .bounds = bounds, .n_bounds = 4,
                       .relative_gauges = data[0] & 8, .metric_type_attr = data[0] & 16,
                       .max_series = 64, .start_unix_ns = 1};
    dsdr_agg *a = ot_dsdr_agg_new(&o, NULL);
    if (!a)
        return 0;
    data++;
    size--;
    for (int round = 0; round < 2; round++) {
        for (unsigned r = 0; r < 2; r++) {
            ot_dsdr_agg_begin(a, r, 10 + round, 10 + round);
            ot_dsd_iter_init(&it, data, size);
            ot_dsd_item item;
            /* reader 0 through the look-ahead, reader 1 one line at a time */
            while (ot_dsd_next(&it, &item))
                if (r == 0)
                    ot_dsdr_agg_push(a, r, &item);
                else
                    ot_dsdr_agg_add(a, r, &item);
            ot_dsdr_agg_end(a, r);
        }
        size_t n;
        ot_batch *b = ot_dsdr_agg_flush(a, 100 + round, 100 + round, &n, NULL);
        if (b) {
            check(b);
            ot_batch_unref(b);
        }
    }
    ot_dsdr_agg_free(a);
    return 0;
}
