/* otlp.h: the OTLP data model as otelite names it. The generated protobuf-c
 * names are long; these aliases are what the rest of the code uses. */
#ifndef OT_OTLP_H
#define OT_OTLP_H

#include "trace_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "logs_service.pb-c.h"
#include "status.pb-c.h"

typedef enum ot_signal {
    OT_TRACES = 0,
    OT_METRICS = 1,
    OT_LOGS = 2,
    OT_SIGNAL_COUNT = 3
} ot_signal;

#define OT_SIGBIT(s) (1u << (s))
#define OT_SIG_ALL (OT_SIGBIT(OT_TRACES) | OT_SIGBIT(OT_METRICS) | OT_SIGBIT(OT_LOGS))

/* "traces", "metrics", "logs" */
const char *ot_signal_name(ot_signal s);
/* Accepts the pipeline type names; -1 when unknown. */
int ot_signal_parse(const char *name, size_t len);
/* Descriptor of the Export*ServiceRequest for a signal. */
const ProtobufCMessageDescriptor *ot_signal_request_desc(ot_signal s);
/* Unit name of the items of a signal: "spans", "metric_points", "log_records". */
const char *ot_signal_item_name(ot_signal s);

typedef Opentelemetry__Proto__Common__V1__AnyValue ot_anyvalue;
typedef Opentelemetry__Proto__Common__V1__KeyValue ot_keyvalue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ot_arrayvalue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList ot_kvlist;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope ot_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource ot_resource;

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest ot_trace_req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ot_resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ot_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span ot_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event ot_span_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link ot_span_link;
typedef Opentelemetry__Proto__Trace__V1__Status ot_span_status;

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest ot_metrics_req;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ot_resource_metrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ot_scope_metrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric ot_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint ot_number_point;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint ot_histogram_point;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ot_exphistogram_point;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint ot_summary_point;

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest ot_logs_req;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ot_resource_logs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ot_scope_logs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord ot_log_record;

/* Data points of a metric, whatever its type; 0 when it has no data. */
size_t ot_metric_point_count(const ot_metric *m);
/* Items (spans, data points, log records) in a decoded request. */
size_t ot_count_items(ot_signal s, const ProtobufCMessage *req);

#endif
