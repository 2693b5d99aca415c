/* Unit tests for the OTTL condition subset: every path of every context,
 * operators and their precedence, OTTL's comparison rules (nil, mixed
 * types, int vs float), the converters, enums, parse and type errors with
 * their offsets, and error_mode in condition sets. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/arena.h"
#include "base/log.h"
#include "model/otlp_json.h"
#include "ottl/ottl.h"

static const char SPANS[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
    "{\"key\":\"host.cpus\",\"value\":{\"intValue\":\"8\"}}],\"droppedAttributesCount\":3},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\",\"version\":\"1.2.3\",\"attributes\":["
    "{\"key\":\"sa\",\"value\":{\"boolValue\":true}}]},"
    "\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"parentSpanId\":\"eee19b7ec3c1b173\",\"traceState\":\"k=v\",\"name\":\"GET /cart\","
    "\"kind\":2,\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"3000\",\"flags\":1,"
    "\"droppedAttributesCount\":4,\"droppedEventsCount\":5,\"droppedLinksCount\":6,"
    "\"attributes\":["
    "{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/cart\"}},"
    "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}},"
    "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.5}},"
    "{\"key\":\"ok\",\"value\":{\"boolValue\":true}},"
    "{\"key\":\"tags\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
    "{\"intValue\":\"2\"}]}}},"
    "{\"key\":\"m\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"inner\",\"value\":"
    "{\"stringValue\":\"v\"}}]}}},"
    "{\"key\":\"empty\",\"value\":{}},"
    "{\"key\":\"s\",\"value\":{\"stringValue\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"}},"
    "{\"key\":\"raw\",\"value\":{\"bytesValue\":\"3q2+7w==\"}}],"
    "\"events\":[{\"name\":\"exception\",\"timeUnixNano\":\"2000\",\"droppedAttributesCount\":1,"
    "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"IOError\"}}]}],"
    "\"status\":{\"code\":2,\"message\":\"boom\"}},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b173\","
    "\"name\":\"root\"}]}]}]}";

static const char METRICS[] =
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"node\"}}]},\"scopeMetrics\":[{\"scope\":{\"name\":\"hostmetrics\"},"
    "\"metrics\":["
    "{\"name\":\"cpu\",\"description\":\"CPU use\",\"unit\":\"1\",\"gauge\":{\"dataPoints\":["
    "{\"attributes\":[{\"key\":\"core\",\"value\":{\"stringValue\":\"0\"}}],"
    "\"startTimeUnixNano\":\"10\",\"timeUnixNano\":\"20\",\"asDouble\":0.75,\"flags\":1}]}},"
    "{\"name\":\"requests\",\"unit\":\"{request}\",\"sum\":{\"aggregationTemporality\":2,"
    "\"isMonotonic\":true,\"dataPoints\":[{\"asInt\":\"42\",\"timeUnixNano\":\"30\"}]}},"
    "{\"name\":\"latency\",\"histogram\":{\"aggregationTemporality\":1,\"dataPoints\":["
    "{\"count\":\"7\",\"sum\":12.5,\"bucketCounts\":[\"3\",\"4\"],\"explicitBounds\":[1]}]}},"
    "{\"name\":\"sizes\",\"exponentialHistogram\":{\"dataPoints\":[{\"count\":\"2\",\"sum\":3,"
    "\"scale\":1}]}},"
    "{\"name\":\"rtt\",\"summary\":{\"dataPoints\":[{\"count\":\"5\",\"sum\":9}]}}]}]}]}";

static const char LOGS[] =
    "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"api\"}}]},\"scopeLogs\":[{\"scope\":{\"name\":\"app\"},\"logRecords\":["
    "{\"timeUnixNano\":\"100\",\"observedTimeUnixNano\":\"200\",\"severityNumber\":13,"
    "\"severityText\":\"WARN\",\"body\":{\"stringValue\":\"hello world\"},\"flags\":1,"
    "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"attributes\":[{\"key\":\"user\",\"value\":{\"stringValue\":\"ann\"}}]},"
    "{\"severityNumber\":9,\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"msg\",\"value\":"
    "{\"stringValue\":\"structured\"}}]}}}]}]}]}";

static ot_arena *arena;
static ot_trace_req *traces;
static ot_metrics_req *metrics;
static ot_logs_req *logs;

static void setup(void)
{
    ot_err err;
    arena = ot_arena_new(0);
    traces = (ot_trace_req *)ot_json_decode(ot_signal_request_desc(OT_TRACES), SPANS,
                                            sizeof SPANS - 1, arena, &err);
    cr_assert_not_null(traces, "%s", err.msg);
    metrics = (ot_metrics_req *)ot_json_decode(ot_signal_request_desc(OT_METRICS), METRICS,
                                               sizeof METRICS - 1, arena, &err);
    cr_assert_not_null(metrics, "%s", err.msg);
    logs = (ot_logs_req *)ot_json_decode(ot_signal_request_desc(OT_LOGS), LOGS, sizeof LOGS - 1,
                                         arena, &err);
    cr_assert_not_null(logs, "%s", err.msg);
}

static void teardown(void)
{
    ot_arena_free(arena);
}

static ot_ottl_item span_item(size_t i)
{
    ot_resource_spans *rs = traces->resource_spans[0];
    ot_scope_spans *ss = rs->scope_spans[0];
    return (ot_ottl_item){.resource = rs->resource, .scope = ss->scope, .span = ss->spans[i]};
}

static ot_ottl_item event_item(void)
{
    ot_ottl_item it = span_item(0);
    it.event = it.span->events[0];
    return it;
}

static ot_ottl_item metric_item(size_t m, size_t p)
{
    ot_resource_metrics *rm = metrics->resource_metrics[0];
    ot_scope_metrics *sm = rm->scope_metrics[0];
    ot_metric *mt = sm->metrics[m];
    const void *pt = NULL;
    switch (mt->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: pt = mt->gauge->data_points[p]; break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: pt = mt->sum->data_points[p]; break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        pt = mt->histogram->data_points[p];
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        pt = mt->exponential_histogram->data_points[p];
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        pt = mt->summary->data_points[p];
        break;
    default: break;
    }
    return (ot_ottl_item){.resource = rm->resource, .scope = sm->scope, .metric = mt, .point = pt};
}

static ot_ottl_item log_item(size_t i)
{
    ot_resource_logs *rl = logs->resource_logs[0];
    ot_scope_logs *sl = rl->scope_logs[0];
    return (ot_ottl_item){.resource = rl->resource, .scope = sl->scope, .log = sl->log_records[i]};
}

/* Parses (must succeed) and evaluates: 1, 0, or -1 with msg filled. */
static int eval(ot_ottl_ctx ctx, const char *text, ot_ottl_item it, char *msg)
{
    ot_ottl_diag d;
    ot_ottl_cond *c = ot_ottl_parse(ctx, text, strlen(text), &d, NULL);
    cr_assert_not_null(c, "`%s` does not parse: %s at offset %zu", text, d.msg, d.offset);
    ot_err err;
    err.msg[0] = '\0';
    int r = ot_ottl_eval(c, &it, &err);
    if (msg)
        strcpy(msg, err.msg);
    ot_ottl_free(c);
    return r;
}

#define TRUE_IN(ctx, it, text) cr_expect_eq(eval(ctx, text, it, NULL), 1, "`%s` should hold", text)
#define FALSE_IN(ctx, it, text) cr_expect_eq(eval(ctx, text, it, NULL), 0, "`%s` should not hold", text)
#define SPAN_T(text) TRUE_IN(OT_OTTL_SPAN, span_item(0), text)
#define SPAN_F(text) FALSE_IN(OT_OTTL_SPAN, span_item(0), text)

/* Parse must fail: returns the message, checks the offset. */
static const char *perr(ot_ottl_ctx ctx, const char *text, size_t offset)
{
    static ot_ottl_diag d;
    ot_ottl_cond *c = ot_ottl_parse(ctx, text, strlen(text), &d, NULL);
    cr_assert_null(c, "`%s` should not parse", text);
    cr_expect_eq(d.offset, offset, "`%s`: offset %zu, expected %zu (%s)", text, d.offset, offset,
                 d.msg);
    return d.msg;
}

#define PERR(text, off, needle)                                                        \
    do {                                                                               \
        const char *m_ = perr(OT_OTTL_SPAN, text, off);                                \
        cr_expect(strstr(m_, needle) != NULL, "`%s`: \"%s\" lacks \"%s\"", text, m_, needle); \
    } while (0)

TestSuite(ottl, .init = setup, .fini = teardown);

Test(ottl, span_paths)
{
    SPAN_T("name == \"GET /cart\"");
    SPAN_T("span.name == \"GET /cart\"");
    SPAN_T("kind == SPAN_KIND_SERVER");
    SPAN_T("kind == 2");
    SPAN_F("kind == SPAN_KIND_CLIENT");
    SPAN_T("status.code == STATUS_CODE_ERROR");
    SPAN_T("status.message == \"boom\"");
    SPAN_T("trace_state == \"k=v\"");
    SPAN_T("start_time_unix_nano == 1000");
    SPAN_T("end_time_unix_nano > start_time_unix_nano");
    SPAN_T("flags == 1");
    SPAN_T("dropped_attributes_count == 4");
    SPAN_T("dropped_events_count == 5");
    SPAN_T("dropped_links_count == 6");
    SPAN_T("attributes[\"http.route\"] == \"/cart\"");
    SPAN_T("attributes[\"http.status_code\"] == 200");
    SPAN_T("resource.attributes[\"service.name\"] == \"checkout\"");
    SPAN_T("resource.attributes[\"host.cpus\"] == 8");
    SPAN_T("resource.dropped_attributes_count == 3");
    SPAN_T("instrumentation_scope.name == \"lib\"");
    SPAN_T("instrumentation_scope.version == \"1.2.3\"");
    SPAN_T("instrumentation_scope.attributes[\"sa\"] == true");
    SPAN_T("attributes[\"tags\"][0] == \"a\"");
    SPAN_T("attributes[\"tags\"][1] == 2");
    SPAN_T("attributes[\"m\"][\"inner\"] == \"v\"");
    SPAN_T("attributes[\"m\"][\"nope\"] == nil");
    SPAN_T("attributes[\"nope\"][\"deeper\"] == nil");
    SPAN_T("attributes[\"raw\"] == 0xdeadbeef");
}

Test(ottl, ids_as_bytes_hex_strings_and_converters)
{
    SPAN_T("trace_id == TraceID(0x5b8efff798038103d269b633813fc60c)");
    SPAN_F("trace_id == TraceID(0x5b8efff798038103d269b633813fc60d)");
    SPAN_T("trace_id == \"5b8efff798038103d269b633813fc60c\"");
    SPAN_T("\"5B8EFFF798038103D269B633813FC60C\" == trace_id");
    SPAN_T("span_id == SpanID(0xeee19b7ec3c1b174)");
    SPAN_T("span_id == \"eee19b7ec3c1b174\"");
    SPAN_T("parent_span_id == \"eee19b7ec3c1b173\"");
    SPAN_T("parent_span_id != nil");
    SPAN_T("trace_id.string == \"5b8efff798038103d269b633813fc60c\"");
    SPAN_T("IsMatch(span_id.string, \"^eee1\")");
    SPAN_T("IsMatch(trace_id, \"^5b8e\")");
    SPAN_F("IsRootSpan()");
    TRUE_IN(OT_OTTL_SPAN, span_item(1), "IsRootSpan()");
    TRUE_IN(OT_OTTL_SPAN, span_item(1), "parent_span_id == nil");
    TRUE_IN(OT_OTTL_SPAN, span_item(1), "parent_span_id == \"\"");
}

Test(ottl, spanevent_paths)
{
    ot_ottl_item it = event_item();
    TRUE_IN(OT_OTTL_SPANEVENT, it, "name == \"exception\"");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "spanevent.name == \"exception\"");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "span.name == \"GET /cart\"");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "attributes[\"exception.type\"] == \"IOError\"");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "attributes[\"http.route\"] == nil");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "span.attributes[\"http.route\"] == \"/cart\"");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "time_unix_nano == 2000");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "dropped_attributes_count == 1");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "span.kind == SPAN_KIND_SERVER");
    TRUE_IN(OT_OTTL_SPANEVENT, it, "resource.attributes[\"service.name\"] == \"checkout\"");
}

Test(ottl, metric_paths)
{
    ot_ottl_item cpu = metric_item(0, 0), req = metric_item(1, 0), lat = metric_item(2, 0);
    TRUE_IN(OT_OTTL_METRIC, cpu, "name == \"cpu\"");
    TRUE_IN(OT_OTTL_METRIC, cpu, "metric.name == \"cpu\"");
    TRUE_IN(OT_OTTL_METRIC, cpu, "description == \"CPU use\"");
    TRUE_IN(OT_OTTL_METRIC, cpu, "unit == \"1\"");
    TRUE_IN(OT_OTTL_METRIC, cpu, "type == METRIC_DATA_TYPE_GAUGE");
    TRUE_IN(OT_OTTL_METRIC, req, "type == METRIC_DATA_TYPE_SUM");
    TRUE_IN(OT_OTTL_METRIC, lat, "type == METRIC_DATA_TYPE_HISTOGRAM");
    TRUE_IN(OT_OTTL_METRIC, metric_item(3, 0), "type == METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM");
    TRUE_IN(OT_OTTL_METRIC, metric_item(4, 0), "type == METRIC_DATA_TYPE_SUMMARY");
    FALSE_IN(OT_OTTL_METRIC, cpu, "type == METRIC_DATA_TYPE_NONE");
    TRUE_IN(OT_OTTL_METRIC, req, "aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE");
    TRUE_IN(OT_OTTL_METRIC, lat, "aggregation_temporality == AGGREGATION_TEMPORALITY_DELTA");
    TRUE_IN(OT_OTTL_METRIC, req, "is_monotonic == true");
    TRUE_IN(OT_OTTL_METRIC, cpu, "is_monotonic == false");
    TRUE_IN(OT_OTTL_METRIC, cpu, "instrumentation_scope.name == \"hostmetrics\"");
}

Test(ottl, datapoint_paths)
{
    ot_ottl_item cpu = metric_item(0, 0), req = metric_item(1, 0), lat = metric_item(2, 0);
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "attributes[\"core\"] == \"0\"");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "datapoint.attributes[\"core\"] == \"0\"");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "metric.name == \"cpu\"");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "metric.type == METRIC_DATA_TYPE_GAUGE");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "metric.unit == \"1\"");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "value_double > 0.5");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "value_int == nil");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "start_time_unix_nano == 10");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "time_unix_nano == 20");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "flags == 1");
    TRUE_IN(OT_OTTL_DATAPOINT, req, "value_int == 42");
    TRUE_IN(OT_OTTL_DATAPOINT, req, "value_int >= 41.5");
    TRUE_IN(OT_OTTL_DATAPOINT, req, "metric.is_monotonic == true");
    TRUE_IN(OT_OTTL_DATAPOINT, lat, "count == 7 and sum == 12.5");
    TRUE_IN(OT_OTTL_DATAPOINT, metric_item(3, 0), "count == 2 and sum == 3");
    TRUE_IN(OT_OTTL_DATAPOINT, metric_item(4, 0), "count == 5 and sum == 9.0");
    TRUE_IN(OT_OTTL_DATAPOINT, lat, "attributes[\"core\"] == nil and Len(attributes) == 0");
    TRUE_IN(OT_OTTL_DATAPOINT, cpu, "resource.attributes[\"service.name\"] == \"node\"");
}

Test(ottl, log_paths)
{
    ot_ottl_item l = log_item(0), k = log_item(1);
    TRUE_IN(OT_OTTL_LOG, l, "body == \"hello world\"");
    TRUE_IN(OT_OTTL_LOG, l, "log.body == \"hello world\"");
    TRUE_IN(OT_OTTL_LOG, l, "IsMatch(body, \"wor\")");
    TRUE_IN(OT_OTTL_LOG, l, "severity_number >= SEVERITY_NUMBER_WARN");
    TRUE_IN(OT_OTTL_LOG, l, "severity_number < SEVERITY_NUMBER_ERROR");
    TRUE_IN(OT_OTTL_LOG, l, "severity_text == \"WARN\"");
    TRUE_IN(OT_OTTL_LOG, l, "time_unix_nano == 100 and observed_time_unix_nano == 200");
    TRUE_IN(OT_OTTL_LOG, l, "attributes[\"user\"] == \"ann\"");
    TRUE_IN(OT_OTTL_LOG, l, "flags == 1");
    TRUE_IN(OT_OTTL_LOG, l, "trace_id == \"5b8efff798038103d269b633813fc60c\"");
    TRUE_IN(OT_OTTL_LOG, l, "span_id == SpanID(0xeee19b7ec3c1b174)");
    TRUE_IN(OT_OTTL_LOG, l, "span_id.string == \"eee19b7ec3c1b174\"");
    TRUE_IN(OT_OTTL_LOG, l, "resource.attributes[\"service.name\"] == \"api\"");
    TRUE_IN(OT_OTTL_LOG, k, "severity_number == SEVERITY_NUMBER_INFO");
    TRUE_IN(OT_OTTL_LOG, k, "body[\"msg\"] == \"structured\"");
    TRUE_IN(OT_OTTL_LOG, k, "IsMap(body) and not IsString(body)");
    TRUE_IN(OT_OTTL_LOG, k, "trace_id == nil");
    FALSE_IN(OT_OTTL_LOG, k, "body == \"hello world\"");
}

Test(ottl, enums)
{
    static const struct {
        const char *name;
        int v;
    } e[] = {
        {"SPAN_KIND_UNSPECIFIED", 0}, {"SPAN_KIND_INTERNAL", 1}, {"SPAN_KIND_SERVER", 2},
        {"SPAN_KIND_CLIENT", 3}, {"SPAN_KIND_PRODUCER", 4}, {"SPAN_KIND_CONSUMER", 5},
        {"STATUS_CODE_UNSET", 0}, {"STATUS_CODE_OK", 1}, {"STATUS_CODE_ERROR", 2},
        {"SEVERITY_NUMBER_UNSPECIFIED", 0}, {"SEVERITY_NUMBER_TRACE", 1},
        {"SEVERITY_NUMBER_DEBUG", 5}, {"SEVERITY_NUMBER_INFO", 9}, {"SEVERITY_NUMBER_INFO4", 12},
        {"SEVERITY_NUMBER_WARN", 13}, {"SEVERITY_NUMBER_ERROR", 17}, {"SEVERITY_NUMBER_FATAL", 21},
        {"SEVERITY_NUMBER_FATAL4", 24}, {"METRIC_DATA_TYPE_NONE", 0}, {"METRIC_DATA_TYPE_GAUGE", 1},
        {"METRIC_DATA_TYPE_SUM", 2}, {"METRIC_DATA_TYPE_HISTOGRAM", 3},
        {"METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4}, {"METRIC_DATA_TYPE_SUMMARY", 5},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        char t[128];
        snprintf(t, sizeof t, "%s == %d", e[i].name, e[i].v);
        SPAN_T(t);
        snprintf(t, sizeof t, "%s == %d", e[i].name, e[i].v + 1);
        SPAN_F(t);
    }
}

Test(ottl, operators)
{
    SPAN_T("1 < 2");
    SPAN_F("2 < 2");
    SPAN_T("2 <= 2");
    SPAN_T("3 > 2");
    SPAN_F("2 > 2");
    SPAN_T("2 >= 2");
    SPAN_T("1 != 2");
    SPAN_T("\"abc\" < \"abd\"");
    SPAN_T("\"ab\" < \"abc\"");
    SPAN_T("false < true");
    SPAN_T("-1 < +1");
    SPAN_T("-.5 == -0.5");
    SPAN_T("1e3 == 1000");
    SPAN_T("0x01 < 0x02");
    SPAN_T("name >= \"GET\"");
}

Test(ottl, comparison_rules_nil_and_mixed_types)
{
    /* int and float compare as numbers */
    SPAN_T("1 == 1.0");
    SPAN_T("attributes[\"http.status_code\"] == 200.0");
    SPAN_T("attributes[\"ratio\"] < 1");
    SPAN_T("attributes[\"ratio\"] > 0");
    /* mismatched types are "not equal": only != holds */
    SPAN_F("attributes[\"http.route\"] == 5");
    SPAN_T("attributes[\"http.route\"] != 5");
    SPAN_F("attributes[\"http.route\"] < 5");
    SPAN_F("attributes[\"http.route\"] >= 5");
    SPAN_F("attributes[\"http.status_code\"] == \"200\"");
    SPAN_F("attributes[\"ok\"] == 1");
    /* nil is a missing attribute, equal only to nil */
    SPAN_T("attributes[\"missing\"] == nil");
    SPAN_F("attributes[\"missing\"] != nil");
    SPAN_T("attributes[\"empty\"] == nil");
    SPAN_F("attributes[\"http.route\"] == nil");
    SPAN_T("attributes[\"http.route\"] != nil");
    SPAN_T("nil == nil");
    SPAN_F("nil != nil");
    SPAN_F("nil < nil");
    SPAN_F("attributes[\"missing\"] == \"\"");
    SPAN_F("attributes[\"missing\"] < 5");
    SPAN_F("attributes[\"missing\"] >= 5");
    SPAN_T("attributes[\"missing\"] != 5");
    /* maps and lists: equality only */
    SPAN_T("attributes[\"tags\"] == attributes[\"tags\"]");
    SPAN_F("attributes[\"tags\"] == attributes[\"m\"]");
    SPAN_F("attributes[\"tags\"] < attributes[\"tags\"]");
    SPAN_T("resource.attributes != attributes");
}

Test(ottl, precedence_not_and_or)
{
    SPAN_T("true or false and false");      /* and binds tighter */
    SPAN_F("(true or false) and false");
    SPAN_T("not false and true");           /* not binds tightest */
    SPAN_F("not (false or true)");
    SPAN_T("not true or true");
    SPAN_F("not not false");
    SPAN_T("false or false or true");
    SPAN_F("true and true and false");
    SPAN_T("name == \"x\" or kind == SPAN_KIND_SERVER and status.code == STATUS_CODE_ERROR");
    SPAN_F("(name == \"x\" or kind == SPAN_KIND_SERVER) and status.code == STATUS_CODE_OK");
    SPAN_T("not name == \"x\"");
    SPAN_T("((((true))))");
}

Test(ottl, converters)
{
    SPAN_T("IsMatch(name, \"^GET \")");
    SPAN_F("IsMatch(name, \"^POST \")");
    SPAN_T("IsMatch(name, \"cart$\") == true");
    SPAN_T("IsMatch(attributes[\"http.status_code\"], \"^2\\\\d\\\\d$\")");
    SPAN_T("IsMatch(attributes[\"ratio\"], \"^0\\\\.5$\")");
    SPAN_T("IsMatch(attributes[\"ok\"], \"^true$\")");
    SPAN_F("IsMatch(attributes[\"missing\"], \".*\")");
    SPAN_T("IsMatch(\"literal\", \"lit\")");
    SPAN_T("IsString(name)");
    SPAN_F("IsString(kind)");
    SPAN_T("IsInt(attributes[\"http.status_code\"])");
    SPAN_T("IsDouble(attributes[\"ratio\"])");
    SPAN_T("IsBool(attributes[\"ok\"])");
    SPAN_T("IsMap(attributes[\"m\"])");
    SPAN_T("IsList(attributes[\"tags\"])");
    SPAN_F("IsString(attributes[\"missing\"])");
    SPAN_T("IsMap(attributes)");
    SPAN_T("Len(name) == 9");
    SPAN_T("Len(attributes[\"tags\"]) == 2");
    SPAN_T("Len(attributes[\"m\"]) == 1");
    SPAN_T("Len(attributes) == 9");
    SPAN_T("Len(\"\") == 0");
    SPAN_T("Len(resource.attributes) > 1");
}

Test(ottl, string_escapes)
{
    SPAN_T("name == \"\\u0047ET /cart\"");
    SPAN_T("name == \"\\x47ET\\x20/cart\"");
    SPAN_T("name == \"GET \\/cart\"");
    SPAN_T("\"a\\\"b\" == \"a\\\"b\"");
    SPAN_T("Len(\"\\n\\t\\\\\") == 3");
    SPAN_T("Len(\"\\u00e9\") == 2");
    SPAN_T("Len(\"\\101\") == 1");
}

Test(ottl, runtime_errors_and_short_circuit)
{
    char msg[512];
    cr_expect_eq(eval(OT_OTTL_SPAN, "Len(attributes[\"http.status_code\"]) > 1", span_item(0), msg),
                 -1);
    cr_expect(strstr(msg, "Len") && strstr(msg, "an int"), "%s", msg);
    cr_expect_eq(eval(OT_OTTL_SPAN, "Len(attributes[\"missing\"]) > 1", span_item(0), msg), -1);
    cr_expect_eq(eval(OT_OTTL_SPAN, "attributes[\"tags\"][5] == 1", span_item(0), msg), -1);
    cr_expect(strstr(msg, "out of range"), "%s", msg);
    cr_expect_eq(eval(OT_OTTL_SPAN, "attributes[\"http.route\"][\"x\"] == 1", span_item(0), msg), -1);
    /* the right side is not evaluated once the answer is known */
    SPAN_T("true or Len(attributes[\"http.status_code\"]) > 1");
    SPAN_F("false and Len(attributes[\"http.status_code\"]) > 1");
}

Test(ottl, regex_match_limit_is_a_runtime_error)
{
    char msg[512];
    int r = eval(OT_OTTL_SPAN, "IsMatch(attributes[\"s\"], \"^(a+)+$\")", span_item(0), msg);
    cr_expect_eq(r, -1);
    cr_expect(strstr(msg, "limit") != NULL, "%s", msg);
}

Test(ottl, parse_errors_with_offsets)
{
    PERR("name = \"x\"", 5, "expected an operator, found \"=\"");
    PERR("name == ", 8, "expected a value, found end of condition");
    PERR("name == \"x\" and", 15, "expected a value");
    PERR("(name == \"x\"", 12, "expected \")\"");
    PERR("name == \"x\")", 11, "unbalanced \")\"");
    PERR("name == \"x\" && kind == 1", 12, "(use \"and\")");
    PERR("name == \"x\" || kind == 1", 12, "(use \"or\")");
    PERR("!(name == \"x\")", 0, "expected a value");
    PERR("nope == 1", 0, "unknown path \"nope\" in the span context");
    PERR("nme == 1", 0, "did you mean \"name\"");
    PERR("kind == SPAN_KIND_SERVR", 8, "unknown enum");
    PERR("name == \"a\\q\"", 10, "invalid escape");
    PERR("name == \"abc", 8, "unterminated string");
    PERR("attributes[\"a\" == 1", 15, "expected \"]\"");
    PERR("attributes[] == 1", 11, "expected a string key");
    PERR("attributes[0] == 1", 11, "index it with a string key");
    PERR("name[\"x\"] == 1", 4, "cannot be indexed");
    PERR("trace_id == \"abc\"", 12, "expected 32 hex digits");
    PERR("trace_id == \"zz8efff798038103d269b633813fc60c\"", 12, "hex");
    PERR("span_id == 0x123", 11, "even number of hex digits");
    PERR("", 0, "expected a condition");
    PERR("   ", 3, "expected a condition");
    PERR("name == \"x\" == \"y\"", 12, "do not chain");
    PERR("attributes[\"x\"]", 15, "expected an operator, found end of condition");
    PERR("name", 4, "expected an operator");
    PERR("name == 99999999999999999999", 8, "out of range");
    PERR("name == 12abc", 8, "expected a value");
    PERR("severity_number == 1", 0, "unknown path");
    PERR("and == 1", 0, "expected a value, found \"and\"");
    PERR("name == \"x\" name == \"y\"", 12, "expected \"and\", \"or\" or end of condition");
    PERR("set(name, \"x\")", 0, "unknown function");
    PERR("name.foo == 1", 0, "unknown path \"name.foo\"");
    PERR("span. == 1", 6, "expected a field name");
}

Test(ottl, type_errors_in_calls)
{
    PERR("IsMatch(1, \"x\")", 8, "IsMatch: expected a path or a string");
    PERR("IsMatch(name, name)", 14, "pattern must be a string literal");
    PERR("IsMatch(attributes, \"x\")", 8, "expected a string to match, found a map");
    PERR("IsMatch(name)", 0, "IsMatch takes 2 arguments, found 1");
    PERR("IsMatch(name, \"[a-\")", 18, "invalid regex");
    PERR("Len() == 1", 0, "Len takes 1 argument, found 0");
    PERR("Len(name, name) == 1", 0, "Len takes 1 argument, found 2");
    PERR("Len(5) == 1", 4, "Len: expected a string, a list or a map, found an int");
    PERR("Len(kind) == 1", 4, "found an int");
    PERR("Len(trace_id) == 1", 4, "found bytes");
    PERR("Foo(name)", 0, "unknown function \"Foo\"");
    PERR("TraceID(0x01) == trace_id", 8, "16 bytes");
    PERR("SpanID(\"abc\") == span_id", 7, "8 bytes");
    PERR("IsString(name, name)", 0, "IsString takes 1 argument");
    PERR("IsMatch(name \"x\")", 13, "expected \",\" or \")\"");
    const char *m = perr(OT_OTTL_LOG, "IsRootSpan()", 0);
    cr_expect(strstr(m, "span context"), "%s", m);
}

Test(ottl, nesting_is_bounded)
{
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '(';
    strcpy(deep + n, "true");
    n += 4;
    for (int i = 0; i < 100; i++)
        deep[n++] = ')';
    deep[n] = '\0';
    const char *m = perr(OT_OTTL_SPAN, deep, 32);
    cr_expect(strstr(m, "nested too deeply"), "%s", m);
    char nots[600] = "";
    for (int i = 0; i < 100; i++)
        strcat(nots, "not ");
    strcat(nots, "true");
    m = perr(OT_OTTL_SPAN, nots, 31 * 4);
    cr_expect(strstr(m, "nested too deeply"), "%s", m);
    /* long flat lists are fine: they do not nest */
    char flat[4000] = "true";
    for (int i = 0; i < 300; i++)
        strcat(flat, " and true");
    SPAN_T(flat);
}

Test(ottl, warnings_for_comparisons_that_never_hold)
{
    ot_ottl_diag d, w;
    ot_ottl_cond *c = ot_ottl_parse(OT_OTTL_SPAN, "kind == \"server\"", 16, &d, &w);
    cr_assert_not_null(c);
    cr_expect(strstr(w.msg, "comparing an int with a string"), "%s", w.msg);
    cr_expect_eq(w.offset, 0);
    ot_ottl_free(c);
    c = ot_ottl_parse(OT_OTTL_SPAN, "name < nil", 10, &d, &w);
    cr_assert_not_null(c);
    cr_expect(strstr(w.msg, "never true"), "%s", w.msg);
    ot_ottl_free(c);
    c = ot_ottl_parse(OT_OTTL_SPAN, "attributes[\"x\"] == 5", 20, &d, &w);
    cr_assert_not_null(c);
    cr_expect_str_eq(w.msg, "");
    ot_ottl_free(c);
}

Test(ottl, text_is_kept)
{
    ot_ottl_diag d;
    ot_ottl_cond *c = ot_ottl_parse(OT_OTTL_LOG, "body == \"x\"", 11, &d, NULL);
    cr_assert_not_null(c);
    cr_expect_str_eq(ot_ottl_text(c), "body == \"x\"");
    cr_expect_str_eq(ot_ottl_ctx_name(OT_OTTL_DATAPOINT), "datapoint");
    ot_ottl_free(c);
}

/* ---- condition sets and error_mode */

static int set_eval(ot_ottl_errmode mode, const char *const *conds, size_t n, char *msg)
{
    ot_strlist l = {(const char **)conds, n, NULL};
    ot_ottl_set s;
    ot_err err;
    cr_assert_eq(ot_ottl_set_init(&s, OT_OTTL_SPAN, &l, mode, "filter/test", &err), 0, "%s",
                 err.msg);
    ot_ottl_item it = span_item(0);
    err.msg[0] = '\0';
    int r = ot_ottl_set_eval(&s, &it, &err);
    if (msg)
        strcpy(msg, err.msg);
    ot_ottl_set_free(&s);
    return r;
}

Test(ottl, set_is_any_of)
{
    const char *c[] = {"name == \"x\"", "kind == SPAN_KIND_SERVER"};
    cr_expect_eq(set_eval(OT_OTTL_PROPAGATE, c, 2, NULL), 1);
    cr_expect_eq(set_eval(OT_OTTL_PROPAGATE, c, 1, NULL), 0);
    cr_expect_eq(set_eval(OT_OTTL_PROPAGATE, c, 0, NULL), 0);
}

Test(ottl, set_error_modes)
{
    char msg[512];
    const char *c[] = {"Len(kind) > 1" /* fails: kind is typed, so parse catches it */};
    ot_strlist l = {(const char **)c, 1, NULL};
    ot_ottl_set s;
    ot_err err;
    cr_expect_eq(ot_ottl_set_init(&s, OT_OTTL_SPAN, &l, OT_OTTL_PROPAGATE, "f", &err), -1);
    cr_expect(strstr(err.msg, "Len"), "%s", err.msg);

    const char *bad[] = {"Len(attributes[\"http.status_code\"]) > 1", "name == \"GET /cart\""};
    cr_expect_eq(set_eval(OT_OTTL_PROPAGATE, bad, 2, msg), -1);
    cr_expect(strstr(msg, "Len(attributes") && strstr(msg, "an int"), "%s", msg);
    /* ignore and silent take the failing condition as false and go on;
     * only ignore says so in the log */
    FILE *logf = tmpfile();
    cr_assert_not_null(logf);
    ot_log_set_fd(fileno(logf));
    cr_expect_eq(set_eval(OT_OTTL_SILENT, bad, 2, NULL), 1);
    cr_expect_eq(set_eval(OT_OTTL_SILENT, bad, 1, NULL), 0);
    cr_expect_eq(ftell(logf), 0, "silent wrote to the log");
    cr_expect_eq(set_eval(OT_OTTL_IGNORE, bad, 2, NULL), 1);
    cr_expect_eq(set_eval(OT_OTTL_IGNORE, bad, 1, NULL), 0);
    ot_log_set_fd(-1);
    char text[2048] = "";
    rewind(logf);
    size_t got = fread(text, 1, sizeof text - 1, logf);
    text[got] = '\0';
    fclose(logf);
    cr_expect(strstr(text, "level=warn component=filter/test msg=\"condition failed; taken as "
                           "false\" condition=\"Len(attributes[\\\"http.status_code\\\"]) > 1\""),
              "%s", text);
    cr_expect_str_eq(ot_ottl_errmode_names[OT_OTTL_IGNORE], "ignore");
}

/* ---- config check positions */

Test(ottl, check_list_points_into_the_yaml_string)
{
    const char yaml[] = "span:\n  - 'name == \"a\"'\n  - 'name = \"x\"'\n  - kind ==\n";
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    const ot_node *root = ot_node_parse(a, "f.yaml", yaml, sizeof yaml - 1, &d);
    cr_assert_not_null(root);
    const ot_node *seq = ot_node_get(root, "span");
    cr_assert_not_null(seq);
    const char *v[] = {"name == \"a\"", "name = \"x\"", "kind =="};
    ot_strlist l = {v, 3, seq};
    cr_expect_eq(ot_ottl_check_list(OT_OTTL_SPAN, &l, "processors.filter.traces.span", &d), 2);
    cr_assert_eq(d.n, 2);
    /* '=' is at offset 5 after the quote at column 5 */
    cr_expect_str_eq(d.v[0].file, "f.yaml");
    cr_expect_eq(d.v[0].line, 3);
    cr_expect_eq(d.v[0].col, 5 + 1 + 5);
    cr_expect_str_eq(d.v[0].path, "processors.filter.traces.span[1]");
    cr_expect(strstr(d.v[0].msg, "expected an operator, found \"=\" (use \"==\") at offset 5"),
              "%s", d.v[0].msg);
    /* a plain scalar has no quote */
    cr_expect_eq(d.v[1].line, 4);
    cr_expect_eq(d.v[1].col, 5 + 7);
    ot_diags_free(&d);
    ot_arena_free(a);
}

Test(ottl, ismatch_prints_tiny_and_huge_doubles_in_full)
{
    ot_anyvalue body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    ot_log_record lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    lr.body = &body;
    ot_ottl_item it = {0};
    it.log = &lr;
    body.double_value = 1e-300; /* ~300 decimals: more than a small buffer holds */
    TRUE_IN(OT_OTTL_LOG, it, "IsMatch(body, \"^0\\\\.0+1$\")");
    body.double_value = 1e300;
    TRUE_IN(OT_OTTL_LOG, it, "IsMatch(body, \"^10+$\")");
}
