/* otlp.c: small facts about the three signals shared by every layer. */
#include "model/otlp.h"

#include <string.h>

static const char *const signal_names[OT_SIGNAL_COUNT] = {"traces", "metrics", "logs"};
static const char *const item_names[OT_SIGNAL_COUNT] = {"spans", "metric_points", "log_records"};

const char *ot_signal_name(ot_signal s)
{
    return (unsigned)s < OT_SIGNAL_COUNT ? signal_names[s] : "unknown";
}

const char *ot_signal_item_name(ot_signal s)
{
    return (unsigned)s < OT_SIGNAL_COUNT ? item_names[s] : "items";
}

int ot_signal_parse(const char *name, size_t len)
{
    for (int i = 0; i < OT_SIGNAL_COUNT; i++)
        if (strlen(signal_names[i]) == len && memcmp(signal_names[i], name, len) == 0)
            return i;
    return -1;
}

const ProtobufCMessageDescriptor *ot_signal_request_desc(ot_signal s)
{
    switch (s) {
    case OT_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    case OT_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    case OT_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    default:
        return NULL;
    }
}

size_t ot_metric_point_count(const ot_metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

size_t ot_count_items(ot_signal s, const ProtobufCMessage *req)
{
    size_t n = 0;
    if (!req)
        return 0;
    if (s == OT_TRACES) {
        const ot_trace_req *r = (const ot_trace_req *)req;
        for (size_t i = 0; i < r->n_resource_spans; i++)
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                n += r->resource_spans[i]->scope_spans[j]->n_spans;
    } else if (s == OT_METRICS) {
        const ot_metrics_req *r = (const ot_metrics_req *)req;
        for (size_t i = 0; i < r->n_resource_metrics; i++)
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++)
                    n += ot_metric_point_count(sm->metrics[k]);
            }
    } else if (s == OT_LOGS) {
        const ot_logs_req *r = (const ot_logs_req *)req;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
                n += r->resource_logs[i]->scope_logs[j]->n_log_records;
    }
    return n;
}
