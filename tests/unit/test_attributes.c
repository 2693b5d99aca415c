/* Unit tests for the attributes and resource processors and the shared
 * actions: insert / update / upsert / delete / hash with typed values and
 * from_attribute, include / exclude conditions, spans, log records and
 * data points, resource attributes for every signal, shared batches, and
 * config errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "model/attrs.h"
#include "proc_harness.h"

extern const ot_factory ot_attributes_processor, ot_resource_processor;

/* "k=s:v,k2=i:5" with type tags s i d b. */
static void render_attrs(ot_keyvalue *const *kv, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const ot_anyvalue *v = kv[i]->value;
        char val[128];
        switch (v ? v->value_case : 0) {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            snprintf(val, sizeof val, "s:%s", v->string_value);
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
            snprintf(val, sizeof val, "i:%lld", (long long)v->int_value);
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
            snprintf(val, sizeof val, "d:%g", v->double_value);
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
            snprintf(val, sizeof val, "b:%s", v->bool_value ? "true" : "false");
            break;
        default:
            snprintf(val, sizeof val, "?");
        }
        w += (size_t)snprintf(out + w, w < cap ? cap - w : 0, "%s%s=%s", i ? "," : "", kv[i]->key,
                              val);
    }
}

static const ot_span *span_at(ot_batch *b, size_t i)
{
    ot_err err;
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(b, &err);
    return r->resource_spans[0]->scope_spans[0]->spans[i];
}

static const char *span_attrs(ot_batch *b, size_t i)
{
    static char buf[1024];
    const ot_span *s = span_at(b, i);
    render_attrs(s->attributes, s->n_attributes, buf, sizeof buf);
    return buf;
}

#define SPAN(name, kind, attrs)                                                             \
    "{'traceId':'5b8efff798038103d269b633813fc60c','spanId':'eee19b7ec3c1b174','name':'" name \
    "','kind':" kind ",'attributes':[" attrs "]}"
#define S(k, v) "{'key':'" k "','value':{'stringValue':'" v "'}}"
#define I(k, v) "{'key':'" k "','value':{'intValue':'" v "'}}"
#define TRACES(spans)                                                                         \
    "{'resourceSpans':[{'resource':{'attributes':[" S("service.name", "cart") "]},"           \
    "'scopeSpans':[{'scope':{},'spans':[" spans "]}]}]}"

static const char TYPICAL[] =
    "actions:\n"
    "  - {key: deployment.environment, action: insert, value: production}\n"
    "  - {key: auth.token, action: delete}\n"
    "  - {key: user.id, action: hash}\n";

Test(attributes, typical_insert_delete_hash_on_spans)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_TRACES, TYPICAL);
    cr_expect(h.head->mutates);
    ot_batch *b = harness_batch(
        OT_TRACES, TRACES(SPAN("a", "2", S("user.id", "alice") "," S("auth.token", "secret") "," I("n", "1")) "," SPAN(
                       "b", "3", S("deployment.environment", "staging"))));
    ot_err err;
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_assert_eq(h.n_got, 1);
    cr_expect_str_eq(span_attrs(h.got[0], 0),
                     "user.id=s:2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90,"
                     "n=i:1,deployment.environment=s:production");
    /* insert leaves an existing value alone */
    cr_expect_str_eq(span_attrs(h.got[0], 1), "deployment.environment=s:staging");
    /* and the change survives encoding */
    char *json = harness_last_json(&h);
    cr_expect(strstr(json, "\"key\":\"deployment.environment\",\"value\":{\"stringValue\":"
                           "\"production\"}"),
              "%s", json);
    cr_expect(!strstr(json, "secret"), "%s", json);
    free(json);
    harness_stop(&h);
}

Test(attributes, update_upsert_and_value_types)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_TRACES,
                  "actions:\n"
                  "  - {key: a, action: update, value: 5}\n"        /* present: int */
                  "  - {key: missing, action: update, value: x}\n"  /* absent: nothing */
                  "  - {key: b, action: upsert, value: \"5\"}\n"    /* quoted: string */
                  "  - {key: c, action: upsert, value: 1.5}\n"
                  "  - {key: d, action: insert, value: true}\n"
                  "  - {key: e, action: insert, value: '007'}\n"
                  "  - {key: f, action: insert, value: -3}\n"
                  "  - {key: g, action: insert, value: 0x1F}\n"
                  "  - {key: h, action: insert, value: 1e3}\n"
                  "  - {key: i, action: insert, value: 1.2.3}\n");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(SPAN("x", "1", S("a", "old") "," S("b", "old")))), &err),
                 OT_OK);
    cr_expect_str_eq(span_attrs(h.got[0], 0), "a=i:5,b=s:5,c=d:1.5,d=b:true,e=s:007,f=i:-3,g=i:31,h=d:1000,i=s:1.2.3");
    harness_stop(&h);
}

Test(attributes, from_attribute_and_hash_of_typed_values)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_TRACES,
                  "actions:\n"
                  "  - {key: copy, action: insert, from_attribute: n}\n"
                  "  - {key: nothing, action: upsert, from_attribute: absent}\n"
                  "  - {key: n, action: hash}\n"
                  "  - {key: absent, action: hash}\n");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(SPAN("x", "1", I("n", "42")))), &err),
                 OT_OK);
    cr_expect_str_eq(span_attrs(h.got[0], 0),
                     "n=s:73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049,"
                     "copy=i:42");
    harness_stop(&h);
}

Test(attributes, include_and_exclude_conditions)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_TRACES,
                  "actions: [{key: tagged, action: insert, value: yes}]\n"
                  "include: {conditions: ['kind == SPAN_KIND_SERVER', 'name == \"c\"']}\n"
                  "exclude: {conditions: ['attributes[\"skip\"] == true']}\n");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(
                                                        SPAN("a", "2", "") "," SPAN("b", "3", "") "," SPAN("c", "3", "") "," SPAN("d", "2", "{'key':'skip','value':{'boolValue':true}}"))),
                              &err),
                 OT_OK);
    cr_expect_str_eq(span_attrs(h.got[0], 0), "tagged=s:yes");
    cr_expect_str_eq(span_attrs(h.got[0], 1), "");
    cr_expect_str_eq(span_attrs(h.got[0], 2), "tagged=s:yes");
    cr_expect_str_eq(span_attrs(h.got[0], 3), "skip=b:true");
    harness_stop(&h);
}

Test(attributes, log_records_and_data_points)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_LOGS,
                  "actions: [{key: env, action: upsert, value: prod}, {key: user, action: delete}]\n"
                  "include: {conditions: ['severity_number >= SEVERITY_NUMBER_WARN']}\n");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_LOGS,
                                                "{'resourceLogs':[{'scopeLogs':[{'logRecords':["
                                                "{'severityNumber':13,'attributes':[" S("user", "ann") "]},"
                                                "{'severityNumber':9,'attributes':[" S("user", "bob") "]}]}]}]}"),
                              &err),
                 OT_OK);
    const ot_logs_req *lr = (const ot_logs_req *)ot_batch_msg(h.got[0], &err);
    const ot_scope_logs *sl = lr->resource_logs[0]->scope_logs[0];
    char buf[256];
    render_attrs(sl->log_records[0]->attributes, sl->log_records[0]->n_attributes, buf, sizeof buf);
    cr_expect_str_eq(buf, "env=s:prod");
    render_attrs(sl->log_records[1]->attributes, sl->log_records[1]->n_attributes, buf, sizeof buf);
    cr_expect_str_eq(buf, "user=s:bob");
    harness_stop(&h);

    harness_start(&h, &ot_attributes_processor, OT_METRICS,
                  "actions: [{key: host, action: insert, value: h1}]\n"
                  "exclude: {conditions: ['metric.name == \"skip\"']}\n");
    cr_assert_eq(harness_push(&h, harness_batch(OT_METRICS,
                                                "{'resourceMetrics':[{'scopeMetrics':[{'metrics':["
                                                "{'name':'cpu','gauge':{'dataPoints':[{'asInt':'1'},{'asInt':'2'}]}},"
                                                "{'name':'lat','histogram':{'dataPoints':[{'count':'1'}]}},"
                                                "{'name':'skip','sum':{'dataPoints':[{'asInt':'1'}]}}]}]}]}"),
                              &err),
                 OT_OK);
    const ot_metrics_req *mr = (const ot_metrics_req *)ot_batch_msg(h.got[0], &err);
    ot_metric **m = mr->resource_metrics[0]->scope_metrics[0]->metrics;
    render_attrs(m[0]->gauge->data_points[1]->attributes, m[0]->gauge->data_points[1]->n_attributes,
                 buf, sizeof buf);
    cr_expect_str_eq(buf, "host=s:h1");
    render_attrs(m[1]->histogram->data_points[0]->attributes,
                 m[1]->histogram->data_points[0]->n_attributes, buf, sizeof buf);
    cr_expect_str_eq(buf, "host=s:h1");
    cr_expect_eq(m[2]->sum->data_points[0]->n_attributes, 0);
    harness_stop(&h);
}

Test(attributes, shared_batch_is_not_changed)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_TRACES, TYPICAL);
    ot_batch *b = harness_batch(OT_TRACES, TRACES(SPAN("a", "1", S("auth.token", "t"))));
    ot_batch_ref(b);
    ot_err err;
    cr_assert_eq(harness_push(&h, b, &err), OT_OK);
    cr_expect_neq(h.got[0], b);
    cr_expect_str_eq(span_attrs(b, 0), "auth.token=s:t");
    cr_expect_str_eq(span_attrs(h.got[0], 0), "deployment.environment=s:production");
    ot_batch_unref(b);
    harness_stop(&h);
}

Test(attributes, include_condition_errors_with_error_mode)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_TRACES,
                  "actions: [{key: x, action: insert, value: 1}]\n"
                  "include: {conditions: ['Len(attributes[\"n\"]) > 1']}\n");
    ot_err err;
    cr_expect_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(SPAN("a", "1", I("n", "1")))), &err),
                 OT_PERMANENT);
    cr_expect_eq(h.n_got, 0);
    harness_stop(&h);
    harness_start(&h, &ot_attributes_processor, OT_TRACES,
                  "actions: [{key: x, action: insert, value: 1}]\n"
                  "error_mode: silent\n"
                  "include: {conditions: ['Len(attributes[\"n\"]) > 1']}\n");
    cr_expect_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(SPAN("a", "1", I("n", "1")))), &err),
                 OT_OK);
    cr_expect_str_eq(span_attrs(h.got[0], 0), "n=i:1");
    harness_stop(&h);
}

Test(attributes, config_errors)
{
    harness h;
    size_t e = harness_check(&h, &ot_attributes_processor,
                             "actions:\n"
                             "  - {key: a, action: insert}\n"
                             "  - {key: b, action: delete, value: 1}\n"
                             "  - {key: c, action: upsrt, value: 1}\n"
                             "  - {key: d, action: upsert, value: {x: 1}}\n"
                             "  - {key: e, action: upsert, value: 1, from_attribute: f}\n"
                             "  - {action: delete}\n"
                             "  - {key: g, action: upsert, value: }\n"
                             "include:\n"
                             "  conditions: ['nope == 1']\n");
    ot_diags_sort(&h.diags);
    cr_expect_eq(e, 8);
    static const char *const want[] = {
        "insert needs value or from_attribute",
        "delete takes no value",
        "expected one of insert, update, upsert, delete, hash",
        "expected a string, number or bool, found a map",
        "not both",
        "missing required key \"key\"",
        "found nothing",
        "unknown path \"nope\"",
    };
    for (size_t i = 0; i < 8 && i < h.diags.n; i++)
        cr_expect(strstr(h.diags.v[i].msg, want[i]), "diag %zu: %s:%d:%d %s: %s (want %s)", i,
                  h.diags.v[i].file, h.diags.v[i].line, h.diags.v[i].col, h.diags.v[i].path,
                  h.diags.v[i].msg, want[i]);
    cr_expect_eq(h.diags.v[7].line, 10);
    cr_expect_eq(h.diags.v[7].col, 16 + 1);
    harness_stop(&h);

    cr_expect_eq(harness_check(&h, &ot_attributes_processor,
                               "actions: [{key: a, action: delete}]\n"
                               "exclude: {conditions: []}"),
                 1);
    cr_expect(strstr(h.diags.v[0].msg, "at least one condition"), "%s", h.diags.v[0].msg);
    harness_stop(&h);
    cr_expect_gt(harness_check(&h, &ot_attributes_processor, "actions: {key: a}"), 0);
    harness_stop(&h);
}

Test(attributes, condition_for_another_signal_fails_at_create)
{
    harness h;
    /* valid for logs, so the config check passes ... */
    cr_expect_eq(harness_check(&h, &ot_attributes_processor,
                               "actions: [{key: x, action: delete}]\n"
                               "include: {conditions: ['severity_number > 1']}\n"),
                 0);
    /* ... but a traces pipeline cannot use it */
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = "attributes";
    p.config = h.cfg;
    p.signal = OT_TRACES;
    p.next[OT_TRACES] = &h.rec;
    ot_err err;
    cr_expect_null(ot_attributes_processor.create(&p, &err));
    cr_expect(strstr(err.msg, "unknown path \"severity_number\" in the span context"), "%s",
              err.msg);
    harness_stop(&h);
}

/* ---- resource */

Test(resource, every_signal_and_missing_resources)
{
    static const char cfg[] = "attributes:\n"
                              "  - {key: deployment.environment, action: upsert, value: prod}\n"
                              "  - {key: secret, action: delete}\n"
                              "  - {key: host.id, action: hash}\n";
    static const char *const in[OT_SIGNAL_COUNT] = {
        "{'resourceSpans':[{'resource':{'attributes':[" S("secret", "x") "," S("host.id", "alice") "]},'scopeSpans':[{'spans':[{'name':'a'}]}]},"
        "{'scopeSpans':[{'spans':[{'name':'b'}]}]}]}",
        "{'resourceMetrics':[{'resource':{'attributes':[" S("secret", "x") "," S("host.id", "alice") "]},'scopeMetrics':[{'metrics':[{'name':'m','gauge':{'dataPoints':[{'asInt':'1'}]}}]}]},"
        "{'scopeMetrics':[{'metrics':[{'name':'m','gauge':{'dataPoints':[{'asInt':'1'}]}}]}]}]}",
        "{'resourceLogs':[{'resource':{'attributes':[" S("secret", "x") "," S("host.id", "alice") "]},'scopeLogs':[{'logRecords':[{}]}]},"
        "{'scopeLogs':[{'logRecords':[{}]}]}]}",
    };
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        harness h;
        harness_start(&h, &ot_resource_processor, (ot_signal)s, cfg);
        ot_err err;
        cr_assert_eq(harness_push(&h, harness_batch((ot_signal)s, in[s]), &err), OT_OK);
        const ProtobufCMessage *m = ot_batch_msg(h.got[0], &err);
        ot_resource *r[2];
        switch (s) {
        case OT_TRACES:
            r[0] = ((const ot_trace_req *)m)->resource_spans[0]->resource;
            r[1] = ((const ot_trace_req *)m)->resource_spans[1]->resource;
            break;
        case OT_METRICS:
            r[0] = ((const ot_metrics_req *)m)->resource_metrics[0]->resource;
            r[1] = ((const ot_metrics_req *)m)->resource_metrics[1]->resource;
            break;
        default:
            r[0] = ((const ot_logs_req *)m)->resource_logs[0]->resource;
            r[1] = ((const ot_logs_req *)m)->resource_logs[1]->resource;
            break;
        }
        char buf[512];
        cr_assert_not_null(r[1]);
        render_attrs(r[0]->attributes, r[0]->n_attributes, buf, sizeof buf);
        cr_expect_str_eq(buf,
                         "host.id=s:2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90,"
                         "deployment.environment=s:prod",
                         "signal %d", s);
        render_attrs(r[1]->attributes, r[1]->n_attributes, buf, sizeof buf);
        cr_expect_str_eq(buf, "deployment.environment=s:prod", "signal %d", s);
        harness_stop(&h);
    }
}

Test(resource, config_names_and_errors)
{
    harness h;
    /* `actions` is taken as another name for `attributes` */
    harness_start(&h, &ot_resource_processor, OT_TRACES,
                  "actions: [{key: k, action: insert, value: 1.5}]\n");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(SPAN("a", "1", ""))), &err), OT_OK);
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(h.got[0], &err);
    char buf[256];
    render_attrs(r->resource_spans[0]->resource->attributes,
                 r->resource_spans[0]->resource->n_attributes, buf, sizeof buf);
    cr_expect_str_eq(buf, "service.name=s:cart,k=d:1.5");
    harness_stop(&h);
    cr_expect_gt(harness_check(&h, &ot_resource_processor, "{}"), 0);
    cr_expect(strstr(h.diags.v[0].msg, "missing required key \"attributes\""), "%s",
              h.diags.v[0].msg);
    harness_stop(&h);
    cr_expect_gt(harness_check(&h, &ot_resource_processor,
                               "attributes: [{key: a, action: delete}]\n"
                               "actions: [{key: a, action: delete}]\n"),
                 0);
    harness_stop(&h);
    cr_expect_gt(harness_check(&h, &ot_resource_processor, "attributes: [{key: a, action: hash, value: 1}]"), 0);
    harness_stop(&h);
}

Test(attributes, extract_upserts_named_groups_of_a_string_value)
{
    harness h;
    harness_start(&h, &ot_attributes_processor, OT_TRACES,
                  "actions:\n"
                  "  - key: url\n"
                  "    action: extract\n"
                  "    pattern: '^(?P<scheme>[a-z]+)://(?P<host>[^/?]+)(?P<path>/[^?]*)?(?:[?](?P<query>.*))?$'\n"
                  "  - {key: n, action: extract, pattern: '(?P<digits>[0-9]+)'}\n");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(
                     SPAN("a", "1", S("url", "https://shop.example/cart/add?sku=9") "," S("host", "old"))
                     "," SPAN("b", "1", S("url", "ftp://files.example"))
                     "," SPAN("c", "1", S("url", "not a url") "," I("n", "42")))),
                              &err),
                 OT_OK);
    /* an existing target is replaced where it is, new ones go last */
    cr_expect_str_eq(span_attrs(h.got[0], 0),
                     "url=s:https://shop.example/cart/add?sku=9,host=s:shop.example,scheme=s:https,"
                     "path=s:/cart/add,query=s:sku=9");
    /* a group that took no part gives an empty string */
    cr_expect_str_eq(span_attrs(h.got[0], 1),
                     "url=s:ftp://files.example,scheme=s:ftp,host=s:files.example,path=s:,query=s:");
    /* no match, and a value that is not a string: left alone */
    cr_expect_str_eq(span_attrs(h.got[0], 2), "url=s:not a url,n=i:42");
    harness_stop(&h);
}

Test(attributes, extract_config_errors)
{
    harness h;
    size_t e = harness_check(&h, &ot_attributes_processor,
                             "actions:\n"
                             "  - {key: a, action: extract}\n"
                             "  - {key: b, action: extract, pattern: '(x)(?P<y>z)'}\n"
                             "  - {key: c, action: extract, pattern: 'xyz'}\n"
                             "  - {key: d, action: extract, pattern: '(?P<y>'}\n"
                             "  - {key: e, action: extract, pattern: '(?P<y>.)', value: 1}\n"
                             "  - {key: f, action: insert, value: 1, pattern: '(?P<y>.)'}\n");
    ot_diags_sort(&h.diags);
    cr_expect_eq(e, 6);
    static const char *const want[] = {
        "extract needs a pattern", "a group without a name", "no named group",
        "pattern: missing closing parenthesis", "extract takes no value", "insert takes no pattern",
    };
    for (size_t i = 0; i < 6 && i < h.diags.n; i++)
        cr_expect(strstr(h.diags.v[i].msg, want[i]), "diag %zu: %s (want %s)", i, h.diags.v[i].msg,
                  want[i]);
    harness_stop(&h);
}

Test(resource, extract_on_resource_attributes)
{
    harness h;
    harness_start(&h, &ot_resource_processor, OT_TRACES,
                  "attributes:\n"
                  "  - {key: service.name, action: extract, pattern: '^(?P<team>[a-z])(?P<rest>.*)$'}\n");
    ot_err err;
    cr_assert_eq(harness_push(&h, harness_batch(OT_TRACES, TRACES(SPAN("a", "1", S("k", "v")))), &err),
                 OT_OK);
    ot_err e2;
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(h.got[0], &e2);
    char buf[256];
    render_attrs(r->resource_spans[0]->resource->attributes,
                 r->resource_spans[0]->resource->n_attributes, buf, sizeof buf);
    cr_expect_str_eq(buf, "service.name=s:cart,team=s:c,rest=s:art");
    harness_stop(&h);
}
