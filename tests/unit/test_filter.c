/* Unit tests for the filter processor: what is dropped for each signal
 * (spans with their events, span events, metrics, data points, metrics
 * left without points, log records), removal of empty scopes and
 * resources, the all-dropped batch, dropped counts in self-telemetry,
 * error_mode, untouched batches keeping their bytes, shared batches left
 * intact, and config checking. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "proc_harness.h"
#include "telemetry/telemetry.h"

extern const ot_factory ot_filter_processor;

/* A compact picture of a request: R{S{item item}} per resource and scope.
 * Spans are "name" or "name(event,event)"; metrics "name:points"; logs
 * their string body. */
static void summary(ot_batch *b, char *out, size_t cap)
{
    ot_err err;
    const ProtobufCMessage *m = ot_batch_msg(b, &err);
    cr_assert_not_null(m);
    size_t w = 0;
#define PUT(...) (w += (size_t)snprintf(out + w, w < cap ? cap - w : 0, __VA_ARGS__))
    out[0] = '\0';
    if (b->signal == OT_TRACES) {
        const ot_trace_req *r = (const ot_trace_req *)m;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            PUT("%sR{", i ? " " : "");
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                const ot_scope_spans *ss = r->resource_spans[i]->scope_spans[j];
                PUT("%sS{", j ? " " : "");
                for (size_t k = 0; k < ss->n_spans; k++) {
                    const ot_span *sp = ss->spans[k];
                    PUT("%s%s", k ? " " : "", sp->name);
                    for (size_t e = 0; e < sp->n_events; e++)
                        PUT("%s%s", e ? "," : "(", sp->events[e]->name);
                    if (sp->n_events)
                        PUT(")");
                }
                PUT("}");
            }
            PUT("}");
        }
    } else if (b->signal == OT_METRICS) {
        const ot_metrics_req *r = (const ot_metrics_req *)m;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            PUT("%sR{", i ? " " : "");
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[j];
                PUT("%sS{", j ? " " : "");
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    const ot_metric *mt = sm->metrics[k];
                    size_t n = 0;
                    switch (mt->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        n = mt->gauge->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        n = mt->sum->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        n = mt->histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        n = mt->exponential_histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        n = mt->summary->n_data_points;
                        break;
                    default:
                        break;
                    }
                    PUT("%s%s:%zu", k ? " " : "", mt->name, n);
                }
                PUT("}");
            }
            PUT("}");
        }
    } else {
        const ot_logs_req *r = (const ot_logs_req *)m;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            PUT("%sR{", i ? " " : "");
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
                const ot_scope_logs *sl = r->resource_logs[i]->scope_logs[j];
                PUT("%sS{", j ? " " : "");
                for (size_t k = 0; k < sl->n_log_records; k++) {
                    const ot_log_record *lr = sl->log_records[k];
                    PUT("%s%s", k ? " " : "", lr->body ? lr->body->string_value : "-");
                }
                PUT("}");
            }
            PUT("}");
        }
    }
#undef PUT
}

static uint64_t counter(const char *name)
{
    ot_counter *c = ot_tel_counter(name, "test", "processor=\"filter\"");
    return atomic_load(&c->v);
}

#define SPAN(name, route, events)                                                           \
    "{'traceId':'5b8efff798038103d269b633813fc60c','spanId':'eee19b7ec3c1b174','name':'" name \
    "','attributes':[{'key':'http.route','value':{'stringValue':'" route "'}}],'events':[" events \
    "]}"
#define EVENT(name) "{'name':'" name "'}"
#define SCOPE(name, spans) "{'scope':{'name':'" name "'},'spans':[" spans "]}"
#define RES(svc, scopes)                                                                     \
    "{'resource':{'attributes':[{'key':'service.name','value':{'stringValue':'" svc "'}}]},"   \
    "'scopeSpans':[" scopes "]}"
#define TRACES(res) "{'resourceSpans':[" res "]}"

static const char *const TWO_SERVICES =
    TRACES(RES("a", SCOPE("s1", SPAN("health", "/healthz", "") "," SPAN(
                                    "cart", "/cart", EVENT("ok") "," EVENT("debug"))) ","
                        SCOPE("s2", SPAN("health2", "/healthz", ""))) ","
           RES("b", SCOPE("s3", SPAN("health3", "/healthz", ""))));

static const char HEALTH_CFG[] = "traces:\n"
                                 "  span: ['attributes[\"http.route\"] == \"/healthz\"']\n"
                                 "  spanevent: ['name == \"debug\"']\n";

Test(filter, spans_events_and_empty_scopes_and_resources)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_TRACES, HEALTH_CFG);
    cr_expect(h.head->mutates);
    ot_batch *b = harness_batch(OT_TRACES, TWO_SERVICES);
    cr_expect_eq(b->items, 4);
    ot_err err;
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_assert_eq(h.n_got, 1);
    char s[512];
    summary(h.got[0], s, sizeof s);
    cr_expect_str_eq(s, "R{S{cart(ok)}}");
    cr_expect_eq(h.got[0]->items, 1);
    cr_expect_eq(counter("otelite_processor_filter_dropped_spans_total"), 3);
    cr_expect_eq(counter("otelite_processor_filter_dropped_span_events_total"), 1);
    /* what was dropped is gone from the wire form too */
    const uint8_t *wire;
    size_t len;
    cr_assert_eq(ot_batch_wire(h.got[0], &wire, &len, &err), 0);
    ot_batch *again = ot_batch_decode(OT_TRACES, wire, len, &err);
    cr_assert_not_null(again);
    summary(again, s, sizeof s);
    cr_expect_str_eq(s, "R{S{cart(ok)}}");
    ot_batch_unref(again);
    harness_stop(&h);
}

Test(filter, a_dropped_span_takes_its_events_uncounted)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_TRACES,
                  "traces: {span: ['name == \"cart\"'], spanevent: ['name == \"debug\"']}");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_TRACES, TWO_SERVICES), &err), OT_OK);
    char s[512];
    summary(h.got[0], s, sizeof s);
    cr_expect_str_eq(s, "R{S{health} S{health2}} R{S{health3}}");
    cr_expect_eq(counter("otelite_processor_filter_dropped_spans_total"), 1);
    cr_expect_eq(counter("otelite_processor_filter_dropped_span_events_total"), 0);
    harness_stop(&h);
}

Test(filter, all_dropped_is_consumed_and_nothing_is_sent)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_TRACES, "traces: {span: ['true']}");
    ot_err err;
    cr_expect_eq(harness_push(&h, harness_batch(OT_TRACES, TWO_SERVICES), &err), OT_OK);
    cr_expect_eq(h.n_got, 0);
    cr_expect_eq(counter("otelite_processor_filter_dropped_spans_total"), 4);
    harness_stop(&h);
}

Test(filter, untouched_batch_keeps_its_bytes_and_identity)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_TRACES, HEALTH_CFG);
    ot_batch *src = harness_batch(OT_TRACES, TRACES(RES("a", SCOPE("s", SPAN("cart", "/cart", "")))));
    const uint8_t *wire;
    size_t len;
    ot_err err;
    cr_assert_eq(ot_batch_wire(src, &wire, &len, &err), 0);
    ot_batch *b = ot_batch_from_wire(OT_TRACES, wire, len, 1, &err);
    ot_batch_unref(src);
    cr_assert_not_null(b);
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_assert_eq(h.n_got, 1);
    cr_expect_eq(h.got[0], b);
    cr_expect_not_null(h.got[0]->wire, "a batch that lost nothing must keep its protobuf bytes");
    cr_expect_eq(counter("otelite_processor_filter_dropped_spans_total"), 0);
    harness_stop(&h);
}

Test(filter, shared_batch_is_copied_not_changed)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_TRACES, HEALTH_CFG);
    ot_batch *b = harness_batch(OT_TRACES, TWO_SERVICES);
    ot_batch_ref(b); /* someone else holds it too */
    ot_err err;
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_assert_eq(h.n_got, 1);
    cr_expect_neq(h.got[0], b);
    char s[512];
    summary(h.got[0], s, sizeof s);
    cr_expect_str_eq(s, "R{S{cart(ok)}}");
    summary(b, s, sizeof s);
    cr_expect_str_eq(s, "R{S{health cart(ok,debug)} S{health2}} R{S{health3}}");
    cr_expect_eq(b->items, 4);
    /* counted once, though the walk started over on the copy */
    cr_expect_eq(counter("otelite_processor_filter_dropped_spans_total"), 3);
    ot_batch_unref(b);
    harness_stop(&h);
}

Test(filter, next_consumer_status_is_passed_back)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_TRACES, HEALTH_CFG);
    h.answer = OT_RETRYABLE;
    ot_err err;
    cr_expect_eq(harness_push(&h, harness_batch(OT_TRACES, TWO_SERVICES), &err), OT_RETRYABLE);
    harness_stop(&h);
}

/* ---- metrics */

#define PT(core) "{'asDouble':1,'attributes':[{'key':'core','value':{'stringValue':'" core "'}}]}"
#define GAUGE(name, pts) "{'name':'" name "','gauge':{'dataPoints':[" pts "]}}"
#define SUMM(name, pts) "{'name':'" name "','sum':{'isMonotonic':true,'dataPoints':[" pts "]}}"
#define HPT(core) "{'count':'1','attributes':[{'key':'core','value':{'stringValue':'" core "'}}]}"
#define HIST(name, pts) "{'name':'" name "','histogram':{'dataPoints':[" pts "]}}"
#define EHIST(name, pts) "{'name':'" name "','exponentialHistogram':{'dataPoints':[" pts "]}}"
#define SUMMARY(name, pts) "{'name':'" name "','summary':{'dataPoints':[" pts "]}}"
#define MRES(metrics)                                                                          \
    "{'resourceMetrics':[{'resource':{},'scopeMetrics':[{'scope':{'name':'m'},'metrics':[" metrics \
    "]}]}]}"

Test(filter, metrics_and_points_and_metrics_left_empty)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_METRICS,
                  "metrics:\n"
                  "  metric: ['name == \"debug.metric\"']\n"
                  "  datapoint: ['attributes[\"core\"] == \"1\"']\n");
    ot_batch *b = harness_batch(
        OT_METRICS,
        MRES(GAUGE("cpu", PT("0") "," PT("1")) "," GAUGE("mem", PT("1")) "," GAUGE(
            "debug.metric", PT("0") "," PT("0")) "," SUMM("reqs", PT("1") "," PT("2")) "," HIST("lat", HPT("0") "," HPT("1")) "," EHIST("size", HPT("1") "," HPT("3")) "," SUMMARY("rtt", HPT("1"))));
    cr_expect_eq(b->items, 12);
    ot_err err;
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_assert_eq(h.n_got, 1);
    char s[512];
    summary(h.got[0], s, sizeof s);
    cr_expect_str_eq(s, "R{S{cpu:1 reqs:1 lat:1 size:1}}");
    cr_expect_eq(h.got[0]->items, 4);
    /* cpu 1 + mem 1 + debug.metric 2 + reqs 1 + lat 1 + size 1 + rtt 1 */
    cr_expect_eq(counter("otelite_processor_filter_dropped_metric_points_total"), 8);
    /* mem and rtt (left empty) and debug.metric (matched) */
    cr_expect_eq(counter("otelite_processor_filter_dropped_metrics_total"), 3);
    harness_stop(&h);
}

Test(filter, metric_conditions_on_type_and_all_metrics_gone)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_METRICS,
                  "metrics: {metric: ['type == METRIC_DATA_TYPE_GAUGE', "
                  "'type == METRIC_DATA_TYPE_SUMMARY']}");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_METRICS, MRES(GAUGE("cpu", PT("0")) "," SUMMARY("rtt", HPT("1")))), &err),
                 OT_OK);
    cr_expect_eq(h.n_got, 0);
    cr_assert_eq(harness_push(&h, harness_batch(OT_METRICS, MRES(GAUGE("cpu", PT("0")) "," SUMM("reqs", PT("1")))), &err),
                 OT_OK);
    cr_assert_eq(h.n_got, 1);
    char s[256];
    summary(h.got[0], s, sizeof s);
    cr_expect_str_eq(s, "R{S{reqs:1}}");
    harness_stop(&h);
}

/* ---- logs */

#define LOG(body, sev) "{'severityNumber':" sev ",'body':{'stringValue':'" body "'}}"
#define LRES(scopes) "{'resourceLogs':[{'resource':{},'scopeLogs':[" scopes "]}]}"
#define LSCOPE(recs) "{'scope':{},'logRecords':[" recs "]}"

Test(filter, log_records)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_LOGS,
                  "logs: {log_record: ['severity_number < SEVERITY_NUMBER_WARN', "
                  "'IsMatch(body, \"^health\")']}");
    ot_err err;
    ot_batch *b = harness_batch(
        OT_LOGS, LRES(LSCOPE(LOG("debug", "5") "," LOG("boom", "17") "," LOG("healthcheck", "13")) "," LSCOPE(LOG("info", "9"))));
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_assert_eq(h.n_got, 1);
    char s[256];
    summary(h.got[0], s, sizeof s);
    cr_expect_str_eq(s, "R{S{boom}}");
    cr_expect_eq(h.got[0]->items, 1);
    cr_expect_eq(counter("otelite_processor_filter_dropped_log_records_total"), 3);
    harness_stop(&h);
}

Test(filter, conditions_for_other_signals_pass_data_through)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_LOGS, HEALTH_CFG);
    cr_expect(!h.head->mutates);
    ot_err err;
    ot_batch *b = harness_batch(OT_LOGS, LRES(LSCOPE(LOG("x", "5"))));
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_assert_eq(h.n_got, 1);
    cr_expect_eq(h.got[0], b);
    harness_stop(&h);
}

/* ---- error_mode */

#define ERR_CFG(mode)                                                                       \
    "error_mode: " mode "\n"                                                                \
    "logs: {log_record: ['Len(attributes[\"n\"]) > 3', 'body == \"drop\"']}\n"

#define NLOG(body, n)                                                                       \
    "{'body':{'stringValue':'" body "'},'attributes':[{'key':'n','value':{'intValue':'" n   \
    "'}}]}"

Test(filter, error_mode_propagate_refuses_the_batch)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_LOGS, ERR_CFG("propagate"));
    ot_err err;
    cr_expect_eq(harness_push(&h, harness_batch(OT_LOGS, LRES(LSCOPE(NLOG("a", "1")))), &err),
                 OT_PERMANENT);
    cr_expect(strstr(err.msg, "Len(attributes[\"n\"])") && strstr(err.msg, "an int"), "%s",
              err.msg);
    cr_expect_eq(h.n_got, 0);
    harness_stop(&h);
}

Test(filter, error_mode_ignore_and_silent_keep_the_item)
{
    const char *modes[] = {ERR_CFG("ignore"), ERR_CFG("silent")};
    for (int i = 0; i < 2; i++) {
        harness h;
        harness_start(&h, &ot_filter_processor, OT_LOGS, modes[i]);
        ot_err err;
        cr_expect_eq(harness_push(&h, harness_batch(OT_LOGS, LRES(LSCOPE(NLOG("a", "1") "," NLOG("drop", "2")))), &err),
                     OT_OK);
        cr_assert_eq(h.n_got, 1);
        char s[256];
        summary(h.got[0], s, sizeof s);
        cr_expect_str_eq(s, "R{S{a}}");
        harness_stop(&h);
    }
}

Test(filter, default_error_mode_is_propagate)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_LOGS,
                  "logs: {log_record: ['Len(attributes[\"n\"]) > 3']}");
    ot_err err;
    cr_expect_eq(harness_push(&h, harness_batch(OT_LOGS, LRES(LSCOPE(NLOG("a", "1")))), &err),
                 OT_PERMANENT);
    harness_stop(&h);
}

/* ---- config check */

Test(filter, config_errors_point_into_the_condition)
{
    harness h;
    size_t e = harness_check(&h, &ot_filter_processor,
                             "traces:\n"
                             "  span:\n"
                             "    - 'name == \"ok\"'\n"
                             "    - 'name = \"x\"'\n"
                             "metrics:\n"
                             "  datapoint: [\"Len() > 1\"]\n"
                             "logs:\n"
                             "  log_record: ['severity_number < SEVERITY_NUMBER_WARNING']\n");
    cr_expect_eq(e, 3);
    ot_diags_sort(&h.diags);
    cr_assert_eq(h.diags.n, 3);
    cr_expect_str_eq(h.diags.v[0].path, "processors.filter.traces.span[1]");
    cr_expect_eq(h.diags.v[0].line, 4);
    cr_expect_eq(h.diags.v[0].col, 7 + 1 + 5);
    cr_expect(strstr(h.diags.v[0].msg, "expected an operator, found \"=\""), "%s",
              h.diags.v[0].msg);
    cr_expect_str_eq(h.diags.v[1].path, "processors.filter.metrics.datapoint[0]");
    cr_expect(strstr(h.diags.v[1].msg, "Len takes 1 argument, found 0"), "%s", h.diags.v[1].msg);
    cr_expect_eq(h.diags.v[1].col, 15 + 1);
    cr_expect_str_eq(h.diags.v[2].path, "processors.filter.logs.log_record[0]");
    cr_expect(strstr(h.diags.v[2].msg, "unknown enum"), "%s", h.diags.v[2].msg);
    cr_expect_eq(h.diags.v[2].col, 16 + 1 + 18);
    harness_stop(&h);
}

Test(filter, config_key_typos_and_no_conditions)
{
    harness h;
    cr_expect_gt(harness_check(&h, &ot_filter_processor, "traces: {spans: ['true']}"), 0);
    cr_assert_geq(h.diags.n, 1);
    cr_expect(strstr(h.diags.v[0].msg, "did you mean \"span\""), "%s", h.diags.v[0].msg);
    harness_stop(&h);
    cr_expect_eq(harness_check(&h, &ot_filter_processor, "error_mode: ignore"), 0);
    cr_expect_eq(h.diags.warnings, 1);
    harness_stop(&h);
    cr_expect_gt(harness_check(&h, &ot_filter_processor, "error_mode: loud"), 0);
    harness_stop(&h);
}

/* ---- threads: the filter runs inline on every receiver thread at once */

typedef struct count_sink {
    ot_consumer base;
    atomic_size_t spans, batches;
} count_sink;

static ot_status count_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    count_sink *s = (count_sink *)self;
    atomic_fetch_add(&s->spans, b->items);
    atomic_fetch_add(&s->batches, 1);
    ot_batch_unref(b);
    return OT_OK;
}

typedef struct worker {
    ot_consumer *head;
    int fails;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        ot_err err;
        if (ot_consume(w->head, harness_batch(OT_TRACES, TWO_SERVICES), &err) != OT_OK)
            w->fails++;
    }
    return NULL;
}

Test(filter, concurrent_batches_on_many_threads)
{
    harness h;
    harness_start(&h, &ot_filter_processor, OT_TRACES,
                  "traces:\n"
                  "  span: ['IsMatch(attributes[\"http.route\"], \"^/health\")']\n"
                  "  spanevent: ['IsMatch(name, \"^deb\")']\n");
    /* rewire the processor's output to a thread-safe sink */
    h.f->destroy(h.self);
    count_sink sink = {{count_consume, false}, 0, 0};
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = "filter";
    p.config = h.cfg;
    p.signal = OT_TRACES;
    p.next[OT_TRACES] = &sink.base;
    ot_err err;
    h.self = h.f->create(&p, &err);
    cr_assert_not_null(h.self);
    h.head = h.f->consumer(h.self, OT_TRACES);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){h.head, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(w[i].fails, 0);
    }
    cr_expect_eq(atomic_load(&sink.batches), 200);
    cr_expect_eq(atomic_load(&sink.spans), 200);
    cr_expect_eq(counter("otelite_processor_filter_dropped_spans_total"), 600);
    cr_expect_eq(counter("otelite_processor_filter_dropped_span_events_total"), 200);
    harness_stop(&h);
}
