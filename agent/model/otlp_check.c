/* otlp_check.c: the per-item rules of otlp_check.h on decoded requests.
 * Removal compacts the arrays in place: the arena owns them, nothing is
 * freed or copied. */
#include "model/otlp_check.h"

#include <stdio.h>

static const char *const names[OT_REJ_REASONS] = {
    "trace_id", "span_id", "parent_span_id", "no_value", "bucket_counts",
};

static const char *const texts[OT_REJ_REASONS] = {
    "invalid trace_id (a span's must be 16 bytes, a log record's empty or 16)",
    "invalid span_id (a span's must be 8 bytes, a log record's empty or 8)",
    "invalid parent_span_id (must be empty or 8 bytes)",
    "a number data point without a value (neither as_int nor as_double)",
    "an exponential histogram point whose zero_count and bucket counts do not add up to its count",
};

const char *ot_reject_name(ot_reject_reason r)
{
    return (unsigned)r < OT_REJ_REASONS ? names[r] : "unknown";
}

const char *ot_reject_text(ot_reject_reason r)
{
    return (unsigned)r < OT_REJ_REASONS ? texts[r] : "unknown";
}

void ot_rejects_add(ot_rejects *r, ot_reject_reason why)
{
    if (r->first < 0)
        r->first = (int)why;
    r->n++;
    r->by_reason[why]++;
}

void ot_rejects_message(const ot_rejects *r, ot_signal s, char *out, size_t cap)
{
    if (!r->n) {
        if (cap)
            out[0] = '\0';
        return;
    }
    snprintf(out, cap, "%llu %s rejected; first reason: %s", (unsigned long long)r->n,
             ot_signal_item_name(s), ot_reject_text((ot_reject_reason)r->first));
}

int ot_check_span(const ot_span *sp)
{
    if (sp->trace_id.len != 16)
        return OT_REJ_TRACE_ID;
    if (sp->span_id.len != 8)
        return OT_REJ_SPAN_ID;
    if (sp->parent_span_id.len != 0 && sp->parent_span_id.len != 8)
        return OT_REJ_PARENT_SPAN_ID;
    return -1;
}

int ot_check_log_record(const ot_log_record *lr)
{
    if (lr->trace_id.len != 0 && lr->trace_id.len != 16)
        return OT_REJ_TRACE_ID;
    if (lr->span_id.len != 0 && lr->span_id.len != 8)
        return OT_REJ_SPAN_ID;
    return -1;
}

int ot_check_number_point(const ot_number_point *p)
{
    if (p->value_case != OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE &&
        p->value_case != OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        return OT_REJ_NO_VALUE;
    return -1;
}

/* Sums with wrap-around counted as a mismatch: a total that overflows 64
 * bits cannot equal any count. */
static int add_buckets(const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *b,
                       uint64_t *sum)
{
    if (!b)
        return 0;
    for (size_t i = 0; i < b->n_bucket_counts; i++)
        if (__builtin_add_overflow(*sum, b->bucket_counts[i], sum))
            return -1;
    return 0;
}

int ot_check_exphistogram_point(const ot_exphistogram_point *p)
{
    uint64_t sum = p->zero_count;
    if (add_buckets(p->positive, &sum) < 0 || add_buckets(p->negative, &sum) < 0 || sum != p->count)
        return OT_REJ_BUCKET_COUNTS;
    return -1;
}

/* Keeps the elements of arr whose check passes; returns the new count. */
#define COMPACT(arr, n, check, r, removed)                                                         \
    do {                                                                                           \
        size_t k_ = 0;                                                                             \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            int why_ = check((arr)[i_]);                                                           \
            if (why_ >= 0) {                                                                       \
                ot_rejects_add((r), (ot_reject_reason)why_);                                       \
                (removed)++;                                                                       \
                continue;                                                                          \
            }                                                                                      \
            (arr)[k_++] = (arr)[i_];                                                               \
        }                                                                                          \
        (n) = k_;                                                                                  \
    } while (0)

static size_t drop_metric(ot_metric *m, ot_rejects *r)
{
    size_t removed = 0;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        if (m->gauge)
            COMPACT(m->gauge->data_points, m->gauge->n_data_points, ot_check_number_point, r,
                    removed);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (m->sum)
            COMPACT(m->sum->data_points, m->sum->n_data_points, ot_check_number_point, r, removed);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        if (m->exponential_histogram)
            COMPACT(m->exponential_histogram->data_points,
                    m->exponential_histogram->n_data_points, ot_check_exphistogram_point, r,
                    removed);
        break;
    default:
        break;
    }
    return removed;
}

size_t ot_drop_invalid(ot_signal s, ProtobufCMessage *msg, ot_rejects *r)
{
    size_t removed = 0;
    switch (s) {
    case OT_TRACES: {
        ot_trace_req *t = (ot_trace_req *)msg;
        for (size_t i = 0; i < t->n_resource_spans; i++)
            for (size_t j = 0; j < t->resource_spans[i]->n_scope_spans; j++) {
                ot_scope_spans *ss = t->resource_spans[i]->scope_spans[j];
                COMPACT(ss->spans, ss->n_spans, ot_check_span, r, removed);
            }
        break;
    }
    case OT_METRICS: {
        ot_metrics_req *m = (ot_metrics_req *)msg;
        for (size_t i = 0; i < m->n_resource_metrics; i++)
            for (size_t j = 0; j < m->resource_metrics[i]->n_scope_metrics; j++) {
                ot_scope_metrics *sm = m->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++)
                    removed += drop_metric(sm->metrics[k], r);
            }
        break;
    }
    case OT_LOGS: {
        ot_logs_req *l = (ot_logs_req *)msg;
        for (size_t i = 0; i < l->n_resource_logs; i++)
            for (size_t j = 0; j < l->resource_logs[i]->n_scope_logs; j++) {
                ot_scope_logs *sl = l->resource_logs[i]->scope_logs[j];
                COMPACT(sl->log_records, sl->n_log_records, ot_check_log_record, r, removed);
            }
        break;
    }
    default:
        break;
    }
    return removed;
}
