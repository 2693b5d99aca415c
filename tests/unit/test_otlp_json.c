/* test_otlp_json.c: the OTLP JSON codec. Round trips through protobuf prove
 * nothing is lost or invented; the rest pins the OTLP JSON rules (hex ids,
 * 64-bit strings, enums, omitted defaults) and the error messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/otlp_check.h"
#include "model/otlp_json.h"
#include "otlp_samples.h"

#define TRACE_REQ_DESC opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor
#define METRICS_REQ_DESC opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor
#define LOGS_REQ_DESC opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor
#define ANYVALUE_DESC opentelemetry__proto__common__v1__any_value__descriptor

static ot_arena *arena;

static void setup(void)
{
    arena = ot_arena_new(0);
    cr_assert_not_null(arena);
}

static void teardown(void)
{
    ot_arena_free(arena);
}

TestSuite(otlp_json, .init = setup, .fini = teardown);

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = ot_arena_alloc(arena, *len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

static char *encode(const ProtobufCMessage *m)
{
    ot_buf b = OT_BUF_INIT;
    ot_err err = {{0}};
    cr_assert_eq(ot_json_encode(m, &b, &err), 0, "encode: %s", err.msg);
    char *s = ot_arena_strndup(arena, b.data, b.len);
    ot_buf_free(&b);
    return s;
}

static ProtobufCMessage *decode_ok(const ProtobufCMessageDescriptor *d, const char *json)
{
    ot_err err = {{0}};
    ProtobufCMessage *m = ot_json_decode(d, json, strlen(json), arena, &err);
    cr_assert_not_null(m, "decode failed: %s\ninput: %s", err.msg, json);
    return m;
}

/* Returns the error message of a decode that must fail. */
static const char *decode_err(const ProtobufCMessageDescriptor *d, const char *json)
{
    static ot_err err;
    memset(&err, 0, sizeof err);
    ProtobufCMessage *m = ot_json_decode(d, json, strlen(json), arena, &err);
    cr_assert_null(m, "decode should fail: %s", json);
    cr_assert(err.msg[0], "no error message");
    return err.msg;
}

/* protobuf pack -> unpack -> JSON -> decode -> pack must give the same
 * bytes; JSON of the decoded message must equal the first JSON. */
static void roundtrip(const ProtobufCMessage *orig)
{
    const ProtobufCMessageDescriptor *d = orig->descriptor;
    size_t len1, len2;
    uint8_t *wire1 = pack(orig, &len1);
    ProtobufCMessage *unpacked =
        protobuf_c_message_unpack(d, ot_arena_pb_allocator(arena), len1, wire1);
    cr_assert_not_null(unpacked);
    char *json1 = encode(unpacked);
    ProtobufCMessage *back = decode_ok(d, json1);
    uint8_t *wire2 = pack(back, &len2);
    cr_assert_eq(len2, len1, "packed sizes differ: %zu vs %zu\njson: %.2000s", len2, len1, json1);
    cr_assert(memcmp(wire1, wire2, len1) == 0, "packed bytes differ\njson: %.2000s", json1);
    char *json2 = encode(back);
    cr_assert_str_eq(json2, json1);
}

Test(otlp_json, roundtrip_traces_rich)
{
    roundtrip(&ot_sample_traces_rich(arena)->base);
}

Test(otlp_json, roundtrip_traces_many)
{
    roundtrip(&ot_sample_traces(arena, 200, 12)->base);
}

Test(otlp_json, roundtrip_metrics_every_kind)
{
    ot_metrics_req *req = ot_sample_metrics(arena, 64, 3);
    /* the sample must really contain every point type for this to mean much */
    int seen[16] = {0};
    ot_scope_metrics *sm = req->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < sm->n_metrics; i++)
        seen[sm->metrics[i]->data_case] = 1;
    cr_assert(seen[5] && seen[7] && seen[9] && seen[10] && seen[11]);
    roundtrip(&req->base);
}

Test(otlp_json, roundtrip_logs)
{
    roundtrip(&ot_sample_logs(arena, 48, 4)->base);
}

Test(otlp_json, roundtrip_empty_request)
{
    roundtrip(&ot_sample_traces(arena, 0, 0)->base);
    ot_trace_req r = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    cr_assert_str_eq(encode(&r.base), "{}");
}

Test(otlp_json, samples_are_deterministic)
{
    size_t l1, l2;
    uint8_t *a1 = pack(&ot_sample_metrics(arena, 50, 4)->base, &l1);
    uint8_t *a2 = pack(&ot_sample_metrics(arena, 50, 4)->base, &l2);
    cr_assert_eq(l1, l2);
    cr_assert(memcmp(a1, a2, l1) == 0);
    cr_assert_eq(ot_count_items(OT_METRICS, &ot_sample_metrics(arena, 50, 4)->base), 50);
    cr_assert_eq(ot_count_items(OT_TRACES, ot_sample_request(arena, OT_TRACES, 33, 2)), 33);
    cr_assert_eq(ot_count_items(OT_LOGS, ot_sample_request(arena, OT_LOGS, 7, 2)), 7);
}

static const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
static const uint8_t sid[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};

/* One span wrapped in a request, built by hand. */
static ot_trace_req *one_span(ot_span *sp)
{
    static ot_trace_req req;
    static ot_resource_spans rs;
    static ot_scope_spans ss;
    static ot_resource_spans *rsp[1];
    static ot_scope_spans *ssp[1];
    static ot_span *spp[1];
    ot_trace_req r0 = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    ot_resource_spans rs0 = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    ot_scope_spans ss0 = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    req = r0;
    rs = rs0;
    ss = ss0;
    spp[0] = sp;
    ss.n_spans = 1;
    ss.spans = spp;
    ssp[0] = &ss;
    rs.n_scope_spans = 1;
    rs.scope_spans = ssp;
    rsp[0] = &rs;
    req.n_resource_spans = 1;
    req.resource_spans = rsp;
    return &req;
}

Test(otlp_json, exact_text_of_small_span)
{
    ot_span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    ot_span_status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    ot_keyvalue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    ot_anyvalue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    ot_keyvalue *kvs[1] = {&kv};
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av.string_value = "GET";
    kv.key = "http.method";
    kv.value = &av;
    sp.trace_id.data = (uint8_t *)tid;
    sp.trace_id.len = 16;
    sp.span_id.data = (uint8_t *)sid;
    sp.span_id.len = 8;
    sp.name = "GET /users";
    sp.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    sp.start_time_unix_nano = 1700000000000000000ULL;
    sp.end_time_unix_nano = 1700000000012345678ULL;
    sp.n_attributes = 1;
    sp.attributes = kvs;
    sp.status = &st;
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    sp.flags = 257;
    const char *want =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
        "\"traceId\":\"5b8efff798038103d269b633813fc60c\","
        "\"spanId\":\"eee19b7ec3c1b174\","
        "\"name\":\"GET /users\",\"kind\":2,"
        "\"startTimeUnixNano\":\"1700000000000000000\","
        "\"endTimeUnixNano\":\"1700000000012345678\","
        "\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}}],"
        "\"status\":{\"code\":2},\"flags\":257}]}]}]}";
    cr_assert_str_eq(encode(&one_span(&sp)->base), want);
}

Test(otlp_json, encode_appends_to_buffer)
{
    ot_anyvalue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av.int_value = -7;
    ot_buf b = OT_BUF_INIT;
    ot_buf_puts(&b, "x=");
    cr_assert_eq(ot_json_encode(&av.base, &b, NULL), 0);
    cr_assert_str_eq(b.data, "x={\"intValue\":\"-7\"}");
    ot_buf_free(&b);
}

/* Encodes one AnyValue. */
static const char *av_json(ot_anyvalue *av)
{
    return encode(&av->base);
}

Test(otlp_json, oneof_members_written_even_when_default)
{
    ot_anyvalue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    cr_assert_str_eq(av_json(&av), "{}");
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av.string_value = "";
    cr_assert_str_eq(av_json(&av), "{\"stringValue\":\"\"}");
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av.int_value = 0;
    cr_assert_str_eq(av_json(&av), "{\"intValue\":\"0\"}");
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    av.bool_value = 0;
    cr_assert_str_eq(av_json(&av), "{\"boolValue\":false}");
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    av.double_value = 0;
    cr_assert_str_eq(av_json(&av), "{\"doubleValue\":0}");
    av.double_value = -0.0;
    cr_assert_str_eq(av_json(&av), "{\"doubleValue\":-0.0}");
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    av.bytes_value.len = 0;
    av.bytes_value.data = NULL;
    cr_assert_str_eq(av_json(&av), "{\"bytesValue\":\"\"}");

    ot_histogram_point hp = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    cr_assert_str_eq(encode(&hp.base), "{}");
    hp.sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
    hp.sum = 0;
    hp.max_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
    hp.max = 2.5;
    cr_assert_str_eq(encode(&hp.base), "{\"sum\":0,\"max\":2.5}");
}

Test(otlp_json, numbers_and_bytes_formats)
{
    ot_histogram_point hp = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    uint64_t counts[] = {0, 18446744073709551615ULL, 3};
    double bounds[] = {0.1, -2, 1e300};
    hp.count = 18446744073709551615ULL;
    hp.n_bucket_counts = 3;
    hp.bucket_counts = counts;
    hp.n_explicit_bounds = 3;
    hp.explicit_bounds = bounds;
    hp.flags = 4294967295u;
    cr_assert_str_eq(encode(&hp.base),
                     "{\"count\":\"18446744073709551615\","
                     "\"bucketCounts\":[\"0\",\"18446744073709551615\",\"3\"],"
                     "\"explicitBounds\":[0.1,-2,1e+300],\"flags\":4294967295}");

    ot_anyvalue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    av.bytes_value.data = (uint8_t *)"\xfb\xff\x00hi";
    av.bytes_value.len = 5;
    cr_assert_str_eq(av_json(&av), "{\"bytesValue\":\"+/8AaGk=\"}");
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av.int_value = INT64_MIN;
    cr_assert_str_eq(av_json(&av), "{\"intValue\":\"-9223372036854775808\"}");
}

Test(otlp_json, nan_and_infinity)
{
    ot_anyvalue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    av.double_value = NAN;
    cr_assert_str_eq(av_json(&av), "{\"doubleValue\":\"NaN\"}");
    av.double_value = INFINITY;
    cr_assert_str_eq(av_json(&av), "{\"doubleValue\":\"Infinity\"}");
    av.double_value = -INFINITY;
    cr_assert_str_eq(av_json(&av), "{\"doubleValue\":\"-Infinity\"}");

    ot_anyvalue *d = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, "{\"doubleValue\":\"NaN\"}");
    cr_assert(isnan(d->double_value));
    d = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, "{\"doubleValue\":\"-Infinity\"}");
    cr_assert(isinf(d->double_value) && d->double_value < 0);
    d = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, "{\"doubleValue\":\"2.5\"}");
    cr_assert_eq(d->double_value, 2.5);
    decode_err(&ANYVALUE_DESC, "{\"doubleValue\":\"nan\"}");
    decode_err(&ANYVALUE_DESC, "{\"doubleValue\":\"0x10\"}");
}

Test(otlp_json, doubles_roundtrip_exactly)
{
    static const double vals[] = {0.1, 1.0 / 3, 2.0 / 3, 1e-310, 5e-324, 1.7976931348623157e308,
                                  123456789.123456789, -0.000001234, 9007199254740993.0,
                                  1e15, 1e16, 12345678901234567890.0, 0.30000000000000004};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        ot_anyvalue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        av.double_value = vals[i];
        const char *js = av_json(&av);
        ot_anyvalue *d = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, js);
        cr_assert(memcmp(&d->double_value, &vals[i], sizeof(double)) == 0, "%s", js);
    }
    ot_anyvalue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    av.double_value = 0.1;
    cr_assert_str_eq(av_json(&av), "{\"doubleValue\":0.1}", "shortest form expected");
}

static const char *snake_json =
    "{\"resource_spans\":[{\"scope_spans\":[{\"spans\":[{"
    "\"trace_id\":\"5B8EFFF798038103D269B633813FC60C\",\"span_id\":\"eee19b7ec3c1b174\","
    "\"parent_span_id\":\"\",\"name\":\"GET /users\",\"kind\":2,"
    "\"start_time_unix_nano\":\"1700000000000000000\",\"end_time_unix_nano\":1700000000012345678,"
    "\"dropped_attributes_count\":3,"
    "\"attributes\":[{\"key\":\"http.method\",\"value\":{\"string_value\":\"GET\"}}],"
    "\"status\":{\"code\":\"STATUS_CODE_ERROR\"},\"flags\":257}]}]}]}";

Test(otlp_json, snake_case_and_enum_names_accepted)
{
    ot_trace_req *req = (ot_trace_req *)decode_ok(&TRACE_REQ_DESC, snake_json);
    cr_assert_eq(req->n_resource_spans, 1);
    ot_span *sp = req->resource_spans[0]->scope_spans[0]->spans[0];
    cr_assert_eq(sp->trace_id.len, 16);
    cr_assert(memcmp(sp->trace_id.data, tid, 16) == 0);
    cr_assert_eq(sp->span_id.len, 8);
    cr_assert(memcmp(sp->span_id.data, sid, 8) == 0);
    cr_assert_eq(sp->parent_span_id.len, 0);
    cr_assert_str_eq(sp->name, "GET /users");
    cr_assert_eq(sp->kind, 2);
    cr_assert_eq(sp->start_time_unix_nano, 1700000000000000000ULL);
    cr_assert_eq(sp->end_time_unix_nano, 1700000000012345678ULL);
    cr_assert_eq(sp->dropped_attributes_count, 3);
    cr_assert_eq(sp->flags, 257);
    cr_assert_eq(sp->status->code, 2);
    cr_assert_eq(sp->n_attributes, 1);
    cr_assert_str_eq(sp->attributes[0]->key, "http.method");
    cr_assert_eq(sp->attributes[0]->value->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    cr_assert_str_eq(sp->attributes[0]->value->string_value, "GET");
}

Test(otlp_json, enum_names_and_numbers)
{
    ot_trace_req *req = (ot_trace_req *)decode_ok(
        &TRACE_REQ_DESC,
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"kind\":\"SPAN_KIND_CONSUMER\"},{\"kind\":3},{\"kind\":\"4\"},{\"kind\":99}]}]}]}");
    ot_span **sp = req->resource_spans[0]->scope_spans[0]->spans;
    cr_assert_eq(sp[0]->kind, 5);
    cr_assert_eq(sp[1]->kind, 3);
    cr_assert_eq(sp[2]->kind, 4);
    cr_assert_eq(sp[3]->kind, 99, "proto3 enums are open");
    ot_logs_req *lr = (ot_logs_req *)decode_ok(
        &LOGS_REQ_DESC, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                        "{\"severityNumber\":\"SEVERITY_NUMBER_WARN\",\"severityText\":\"WARN\"}]}]}]}");
    cr_assert_eq(lr->resource_logs[0]->scope_logs[0]->log_records[0]->severity_number, 13);
    const char *msg = decode_err(&TRACE_REQ_DESC,
                                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                                 "{\"kind\":\"SPAN_KIND_SERVERX\"}]}]}]}");
    cr_assert(strstr(msg, "resourceSpans[0].scopeSpans[0].spans[0].kind: expected") != NULL, "%s", msg);
    cr_assert(strstr(msg, "SPAN_KIND_SERVERX") != NULL, "%s", msg);
}

Test(otlp_json, int64_as_number_or_string)
{
    ot_metrics_req *req = (ot_metrics_req *)decode_ok(
        &METRICS_REQ_DESC,
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"sum\":{"
        "\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_CUMULATIVE\",\"isMonotonic\":true,"
        "\"dataPoints\":[{\"asInt\":-5,\"timeUnixNano\":1700000000000000000},"
        "{\"asInt\":\"-9223372036854775808\",\"timeUnixNano\":\"18446744073709551615\"},"
        "{\"asInt\":12.0,\"startTimeUnixNano\":1e3}]}}]}]}]}");
    ot_metric *m = req->resource_metrics[0]->scope_metrics[0]->metrics[0];
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    cr_assert_eq(m->sum->aggregation_temporality, 2);
    cr_assert(m->sum->is_monotonic);
    ot_number_point **p = m->sum->data_points;
    cr_assert_eq(p[0]->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    cr_assert_eq(p[0]->as_int, -5);
    cr_assert_eq(p[0]->time_unix_nano, 1700000000000000000ULL);
    cr_assert_eq(p[1]->as_int, INT64_MIN);
    cr_assert_eq(p[1]->time_unix_nano, UINT64_MAX);
    cr_assert_eq(p[2]->as_int, 12);
    cr_assert_eq(p[2]->start_time_unix_nano, 1000);

    const char *msg = decode_err(&METRICS_REQ_DESC,
                                 "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{"
                                 "\"dataPoints\":[{\"timeUnixNano\":\"-1\"}]}}]}]}]}");
    cr_assert(strstr(msg, "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].timeUnixNano: "
                          "expected an unsigned 64-bit integer") != NULL,
              "%s", msg);
    decode_err(&METRICS_REQ_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{"
                                  "\"dataPoints\":[{\"timeUnixNano\":\"18446744073709551616\"}]}}]}]}]}");
    decode_err(&METRICS_REQ_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{"
                                  "\"dataPoints\":[{\"asInt\":\"12abc\"}]}}]}]}]}");
    decode_err(&METRICS_REQ_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{"
                                  "\"dataPoints\":[{\"asInt\":1.5}]}}]}]}]}");
    decode_err(&METRICS_REQ_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{"
                                  "\"dataPoints\":[{\"flags\":4294967296}]}}]}]}]}");
    /* 32-bit fields take numeric strings too */
    ot_metrics_req *r2 = (ot_metrics_req *)decode_ok(
        &METRICS_REQ_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{"
                           "\"dataPoints\":[{\"flags\":\"7\"}]}}]}]}]}");
    cr_assert_eq(r2->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points[0]->flags, 7);
}

Test(otlp_json, malformed_json_reports_position)
{
    const char *msg = decode_err(&TRACE_REQ_DESC, "{\n  \"resourceSpans\": [}\n");
    cr_assert(strstr(msg, "line 2") != NULL, "%s", msg);
    cr_assert(strstr(msg, "column") != NULL, "%s", msg);
    msg = decode_err(&TRACE_REQ_DESC, "");
    cr_assert(strstr(msg, "line") != NULL, "%s", msg);
    msg = decode_err(&TRACE_REQ_DESC, "{} trailing");
    cr_assert(strstr(msg, "column") != NULL, "%s", msg);
    msg = decode_err(&TRACE_REQ_DESC, "[1,2]");
    cr_assert(strstr(msg, "expected a JSON object, found an array") != NULL, "%s", msg);
}

Test(otlp_json, wrong_types_report_key_path)
{
    const char *msg = decode_err(&TRACE_REQ_DESC, "{\"resourceSpans\":{}}");
    cr_assert_str_eq(msg, "resourceSpans: expected an array, found an object");
    msg = decode_err(&TRACE_REQ_DESC,
                     "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"ok\"},{\"name\":5}]}]}]}");
    cr_assert_str_eq(msg, "resourceSpans[0].scopeSpans[0].spans[1].name: expected a string, found 5");
    msg = decode_err(&TRACE_REQ_DESC, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                                      "{\"key\":\"k\",\"value\":{\"boolValue\":\"yes\"}}]}}]}");
    cr_assert_str_eq(msg, "resourceSpans[0].resource.attributes[0].value.boolValue: "
                          "expected true or false, found \"yes\"");
    msg = decode_err(&TRACE_REQ_DESC, "{\"resourceSpans\":[7]}");
    cr_assert_str_eq(msg, "resourceSpans[0]: expected an object, found 7");
    msg = decode_err(&TRACE_REQ_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"status\":[]}]}]}]}");
    cr_assert_str_eq(msg, "resourceSpans[0].scopeSpans[0].spans[0].status: expected an object, found an array");
    msg = decode_err(&METRICS_REQ_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{"
                                        "\"histogram\":{\"dataPoints\":[{\"explicitBounds\":[1,\"x\"]}]}}]}]}]}");
    cr_assert(strstr(msg, "metrics[0].histogram.dataPoints[0].explicitBounds[1]: expected a number") != NULL,
              "%s", msg);
}

Test(otlp_json, bad_hex_ids_refused)
{
    const char *msg = decode_err(&TRACE_REQ_DESC,
                                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{\"traceId\":\"zz\"}]}]}]}");
    cr_assert_str_eq(msg, "resourceSpans[0].scopeSpans[0].spans[1].traceId: expected 32 hex digits, found \"zz\"");
    msg = decode_err(&TRACE_REQ_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                                      "{\"spanId\":\"eee19b7ec3c1b17g\"}]}]}]}");
    cr_assert(strstr(msg, "spans[0].spanId: expected 16 hex digits") != NULL, "%s", msg);
    msg = decode_err(&TRACE_REQ_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                                      "{\"parentSpanId\":\"eee19b7ec3c1b\"}]}]}]}");
    cr_assert(strstr(msg, "parentSpanId: expected 16 hex digits") != NULL, "%s", msg);
    /* hex of the wrong length decodes: the item check rejects the span */
    ot_trace_req *t = (ot_trace_req *)decode_ok(
        &TRACE_REQ_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                         "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
                         "\"parentSpanId\":\"eee19b7ec3c1b1\"}]}]}]}");
    ot_span *sp = t->resource_spans[0]->scope_spans[0]->spans[0];
    cr_assert_eq(sp->parent_span_id.len, 7);
    cr_assert_eq(ot_check_span(sp), OT_REJ_PARENT_SPAN_ID);
    msg = decode_err(&LOGS_REQ_DESC, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                                     "{\"traceId\":\"W47/95gDgQPSabYzgT/GDA==\"}]}]}]}");
    cr_assert(strstr(msg, "logRecords[0].traceId: expected 32 hex digits") != NULL, "%s", msg);
    msg = decode_err(&METRICS_REQ_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{"
                                        "\"dataPoints\":[{\"exemplars\":[{\"spanId\":12}]}]}}]}]}]}");
    cr_assert(strstr(msg, "exemplars[0].spanId: expected 16 hex digits, found 12") != NULL, "%s", msg);
}

Test(otlp_json, base64_variants_accepted)
{
    static const char *forms[] = {"+/8AaGk=", "+/8AaGk", "-_8AaGk=", "-_8AaGk"};
    for (size_t i = 0; i < 4; i++) {
        char js[64];
        snprintf(js, sizeof js, "{\"bytesValue\":\"%s\"}", forms[i]);
        ot_anyvalue *av = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, js);
        cr_assert_eq(av->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
        cr_assert_eq(av->bytes_value.len, 5, "%s", forms[i]);
        cr_assert(memcmp(av->bytes_value.data, "\xfb\xff\x00hi", 5) == 0);
    }
    ot_anyvalue *av = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, "{\"bytesValue\":\"\"}");
    cr_assert_eq(av->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    cr_assert_eq(av->bytes_value.len, 0);
    decode_err(&ANYVALUE_DESC, "{\"bytesValue\":\"a\"}");
    decode_err(&ANYVALUE_DESC, "{\"bytesValue\":\"ab!c\"}");
    decode_err(&ANYVALUE_DESC, "{\"bytesValue\":\"ab c\"}");
}

Test(otlp_json, unknown_keys_ignored)
{
    ot_trace_req *req = (ot_trace_req *)decode_ok(
        &TRACE_REQ_DESC,
        "{\"future\":{\"a\":[1,{\"b\":null}]},\"resourceSpans\":[{\"x\":1,\"scopeSpans\":[{"
        "\"spans\":[{\"name\":\"n\",\"unknownNumber\":1.5,\"unknownStr\":\"s\",\"unknownBool\":true,"
        "\"unknownNull\":null,\"unknownArr\":[[]],\"\":0,\"TraceId\":5,\"trace_Id\":6}]}]}],\"z\":false}");
    cr_assert_eq(req->n_resource_spans, 1);
    ot_span *sp = req->resource_spans[0]->scope_spans[0]->spans[0];
    cr_assert_str_eq(sp->name, "n");
    cr_assert_eq(sp->trace_id.len, 0);
}

Test(otlp_json, null_means_not_set)
{
    ot_trace_req *req = (ot_trace_req *)decode_ok(
        &TRACE_REQ_DESC, "{\"resourceSpans\":[{\"resource\":null,\"schemaUrl\":null,\"scopeSpans\":null}]}");
    cr_assert_eq(req->n_resource_spans, 1);
    cr_assert_null(req->resource_spans[0]->resource);
    cr_assert_eq(req->resource_spans[0]->n_scope_spans, 0);
    ot_anyvalue *av = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, "{\"stringValue\":null}");
    cr_assert_eq(av->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    /* null inside an array is not a value */
    decode_err(&TRACE_REQ_DESC, "{\"resourceSpans\":[null]}");
}

Test(otlp_json, oneof_last_member_wins)
{
    ot_anyvalue *av = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC, "{\"stringValue\":\"s\",\"intValue\":\"3\"}");
    cr_assert_eq(av->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    cr_assert_eq(av->int_value, 3);
    cr_assert_str_eq(av_json(av), "{\"intValue\":\"3\"}");
}

/* JSON of n AnyValues nested in arrays. */
static char *nested_arrays(int n)
{
    size_t cap = (size_t)n * 40 + 64;
    char *s = ot_arena_alloc(arena, cap);
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "{\"arrayValue\":{\"values\":[");
    o += (size_t)snprintf(s + o, cap - o, "{\"intValue\":\"1\"}");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "]}}");
    return s;
}

Test(otlp_json, depth_limit)
{
    /* 64 nested AnyValues inside a full request work */
    char *inner = nested_arrays(64);
    size_t cap = strlen(inner) + 256;
    char *js = ot_arena_alloc(arena, cap);
    snprintf(js, cap, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":%s}]}]}]}", inner);
    ProtobufCMessage *m = decode_ok(&LOGS_REQ_DESC, js);
    cr_assert_str_eq(encode(m), js);

    /* deeper is refused with a message, not a crash: by the codec's own
     * limit, and for absurd depths by the JSON parser's */
    const char *msg = decode_err(&ANYVALUE_DESC, nested_arrays(300));
    cr_assert(strstr(msg, "nested deeper") != NULL, "%s", msg);
    msg = decode_err(&ANYVALUE_DESC, nested_arrays(100000));
    cr_assert(strstr(msg, "nested deeper") != NULL, "%s", msg);
    /* an unknown key's value is skipped, but not without a bound either */
    size_t deep = 100000;
    char *unk = ot_arena_alloc(arena, 2 * deep + 32);
    size_t o = (size_t)sprintf(unk, "{\"x\":");
    memset(unk + o, '[', deep);
    memset(unk + o + deep, ']', deep);
    strcpy(unk + o + 2 * deep, "}");
    msg = decode_err(&ANYVALUE_DESC, unk);
    cr_assert(strstr(msg, "depth") != NULL, "%s", msg);

    /* a deep message built in C (e.g. from protobuf) fails to encode cleanly */
    ot_anyvalue *leaf = ot_arena_alloc(arena, sizeof *leaf);
    ot_anyvalue init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    *leaf = init;
    for (int i = 0; i < 500; i++) {
        ot_arrayvalue *arr = ot_arena_alloc(arena, sizeof *arr);
        ot_arrayvalue ainit = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
        *arr = ainit;
        arr->n_values = 1;
        arr->values = ot_arena_alloc(arena, sizeof *arr->values);
        arr->values[0] = leaf;
        ot_anyvalue *up = ot_arena_alloc(arena, sizeof *up);
        *up = init;
        up->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        up->array_value = arr;
        leaf = up;
    }
    ot_buf b = OT_BUF_INIT;
    ot_buf_puts(&b, "keep");
    ot_err err = {{0}};
    cr_assert_eq(ot_json_encode(&leaf->base, &b, &err), -1);
    cr_assert(strstr(err.msg, "nested deeper") != NULL, "%s", err.msg);
    cr_assert_str_eq(b.data, "keep", "a failed encode leaves the buffer as it was");
    ot_buf_free(&b);
}

Test(otlp_json, input_need_not_be_nul_terminated)
{
    const char *src = "{\"name\":\"scope\",\"version\":\"1\"}GARBAGE";
    size_t len = strlen("{\"name\":\"scope\",\"version\":\"1\"}");
    char *copy = malloc(len);
    memcpy(copy, src, len);
    ot_err err = {{0}};
    ot_scope *s = (ot_scope *)ot_json_decode(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor,
                                             copy, len, arena, &err);
    free(copy);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_str_eq(s->name, "scope");
    cr_assert_str_eq(s->version, "1");
}

Test(otlp_json, strings_escape_and_unicode)
{
    ot_anyvalue *av = (ot_anyvalue *)decode_ok(&ANYVALUE_DESC,
                                               "{\"stringValue\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\u0001\"}");
    cr_assert_str_eq(av->string_value, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80\x01");
    cr_assert_str_eq(av_json(av), "{\"stringValue\":\"a\\\"b\\\\c\\n\xc3\xa9\xf0\x9f\x98\x80\\u0001\"}");
}

Test(otlp_json, responses_and_rpc_status)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    ps.rejected_spans = 5;
    ps.error_message = "5 spans had no trace id";
    resp.partial_success = &ps;
    const char *js = encode(&resp.base);
    cr_assert_str_eq(js, "{\"partialSuccess\":{\"rejectedSpans\":\"5\",\"errorMessage\":\"5 spans had no trace id\"}}");
    roundtrip(&resp.base);

    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Google__Rpc__Any any = GOOGLE__RPC__ANY__INIT;
    Google__Rpc__Any *details[1] = {&any};
    st.code = 8;
    st.message = "queue full";
    any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
    any.value.data = (uint8_t *)"\x0a\x02\x08\x05";
    any.value.len = 4;
    st.n_details = 1;
    st.details = details;
    cr_assert_str_eq(encode(&st.base), "{\"code\":8,\"message\":\"queue full\",\"details\":[{\"typeUrl\":"
                                       "\"type.googleapis.com/google.rpc.RetryInfo\",\"value\":\"CgIIBQ==\"}]}");
    roundtrip(&st.base);
}

Test(otlp_json, batch_from_json)
{
    ot_err err = {{0}};
    ot_batch *b = ot_batch_from_json(OT_TRACES, snake_json, strlen(snake_json), &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert_eq(b->signal, OT_TRACES);
    cr_assert_eq(b->items, 1);
    const ot_trace_req *req = (const ot_trace_req *)ot_batch_msg(b, &err);
    cr_assert_not_null(req);
    cr_assert_str_eq(req->resource_spans[0]->scope_spans[0]->spans[0]->name, "GET /users");
    ot_batch_unref(b);

    /* a whole sample request through text and back */
    ot_buf buf = OT_BUF_INIT;
    cr_assert_eq(ot_json_encode(ot_sample_request(arena, OT_METRICS, 40, 2), &buf, &err), 0);
    b = ot_batch_from_json(OT_METRICS, buf.data, buf.len, &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert_eq(b->items, 40);
    ot_batch_unref(b);
    ot_buf_free(&buf);

    memset(&err, 0, sizeof err);
    b = ot_batch_from_json(OT_LOGS, "{\"resourceLogs\":3}", 18, &err);
    cr_assert_null(b);
    cr_assert_str_eq(err.msg, "resourceLogs: expected an array, found 3");
}
