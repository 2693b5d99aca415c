/* fuzz_ottl.c: the OTTL condition parser must survive any text without
 * crashing, leaking or recursing without bound, and whatever it accepts
 * must evaluate on real items (every context, with and without the
 * optional parts) without faults. The first byte picks the context; the
 * rest is the condition. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "model/otlp_json.h"
#include "ottl/ottl.h"

static const char SPANS[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"checkout\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":["
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"name\":\"GET /cart\",\"kind\":2,\"attributes\":["
    "{\"key\":\"a\",\"value\":{\"stringValue\":\"aaaaaaaaaaaaaaaaaaaaaaaa!\"}},"
    "{\"key\":\"n\",\"value\":{\"intValue\":\"200\"}},"
    "{\"key\":\"d\",\"value\":{\"doubleValue\":1e300}},"
    "{\"key\":\"b\",\"value\":{\"bytesValue\":\"3q2+7w==\"}},"
    "{\"key\":\"l\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"x\"},"
    "{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"boolValue\":true}}]}}]}}}],"
    "\"events\":[{\"name\":\"e\"}],\"status\":{\"code\":2}}]}]}]}";

static const char METRICS[] =
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
    "{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1}]}},"
    "{\"name\":\"s\",\"sum\":{\"dataPoints\":[{\"asInt\":\"1\"}]}},"
    "{\"name\":\"h\",\"histogram\":{\"dataPoints\":[{\"count\":\"1\"}]}},"
    "{\"name\":\"x\",\"exponentialHistogram\":{\"dataPoints\":[{\"count\":\"1\"}]}},"
    "{\"name\":\"q\",\"summary\":{\"dataPoints\":[{\"count\":\"1\"}]}}]}]}]}";

static const char LOGS[] =
    "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
    "{\"body\":{\"stringValue\":\"hello\"},\"severityNumber\":9},"
    "{\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"intValue\":\"1\"}}]}}},"
    "{}]}]}]}";

static ot_arena *arena;
static ot_trace_req *traces;
static ot_metrics_req *metrics;
static ot_logs_req *logs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ot_err err;
    arena = ot_arena_new(0);
    traces = (ot_trace_req *)ot_json_decode(ot_signal_request_desc(OT_TRACES), SPANS,
                                            sizeof SPANS - 1, arena, &err);
    metrics = (ot_metrics_req *)ot_json_decode(ot_signal_request_desc(OT_METRICS), METRICS,
                                               sizeof METRICS - 1, arena, &err);
    logs = (ot_logs_req *)ot_json_decode(ot_signal_request_desc(OT_LOGS), LOGS, sizeof LOGS - 1,
                                         arena, &err);
    if (!traces || !metrics || !logs)
        abort();
    return 0;
}

static const void *point_of(const ot_metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return m->gauge->data_points[0];
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return m->sum->data_points[0];
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram->data_points[0];
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram->data_points[0];
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary->data_points[0];
    default: return NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ot_ottl_ctx ctx = (ot_ottl_ctx)(data[0] % OT_OTTL_CTX_COUNT);
    ot_ottl_diag err, warn;
    ot_ottl_cond *c = ot_ottl_parse(ctx, (const char *)data + 1, size - 1, &err, &warn);
    if (!c) {
        if (err.offset > size - 1 || !memchr(err.msg, '\0', sizeof err.msg))
            abort();
        return 0;
    }
    ot_err e;
    ot_scope_spans *ss = traces->resource_spans[0]->scope_spans[0];
    ot_span *sp = ss->spans[0];
    ot_ottl_item it = {0};
    switch (ctx) {
    case OT_OTTL_SPAN:
    case OT_OTTL_SPANEVENT:
        it.resource = traces->resource_spans[0]->resource;
        it.scope = ss->scope;
        it.span = sp;
        it.event = ctx == OT_OTTL_SPANEVENT ? sp->events[0] : NULL;
        ot_ottl_eval(c, &it, &e);
        break;
    case OT_OTTL_METRIC:
    case OT_OTTL_DATAPOINT: {
        ot_scope_metrics *sm = metrics->resource_metrics[0]->scope_metrics[0];
        for (size_t i = 0; i < sm->n_metrics; i++) {
            it.metric = sm->metrics[i];
            it.point = ctx == OT_OTTL_DATAPOINT ? point_of(sm->metrics[i]) : NULL;
            ot_ottl_eval(c, &it, &e);
        }
        break;
    }
    default: {
        ot_scope_logs *sl = logs->resource_logs[0]->scope_logs[0];
        for (size_t i = 0; i < sl->n_log_records; i++) {
            it.log = sl->log_records[i];
            ot_ottl_eval(c, &it, &e);
        }
        break;
    }
    }
    ot_ottl_free(c);
    return 0;
}
