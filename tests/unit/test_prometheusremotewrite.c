/* Unit tests for the prometheusremotewrite exporter's core
 * (exporters/prometheusremotewrite): what WriteRequests a batch becomes,
 * read back with protobuf-c from the exporter's .proto (not with its own
 * writer): every metric type, deltas made cumulative, repeated and older
 * points not sent, labels sorted with resource, external and extra labels,
 * target_info once per resource, native histogram buckets, the size cap,
 * metadata, and the snappy round trip. Input is OTLP JSON decoded by the
 * agent's own decoder. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../exporters/prometheusremotewrite/prw.h"
#include "base/buf.h"
#include "model/batch.h"
#include "model/otlp_json.h"
#include "prw_remote_write.pb-c.h"

typedef Otelite__Prw__WriteRequest wr_t;

/* Every request a translation flushed, as text: one line per series,
 * "name=value,... value@ts" (labels in wire order), histograms as
 * "... h{count,sum,schema,zc,pos:off+n[deltas]}@ts"; metadata as
 * "# TYPE name help unit". */
typedef struct sink {
    ot_buf text;
    size_t requests, max_len, samples;
} sink;

static int collect(void *ctx, const uint8_t *p, size_t n, size_t samples)
{
    sink *s = ctx;
    s->requests++;
    s->samples += samples;
    if (n > s->max_len)
        s->max_len = n;
    wr_t *w = otelite__prw__write_request__unpack(NULL, n, p);
    cr_assert(w, "a request does not decode");
    size_t got = 0;
    for (size_t i = 0; i < w->n_metadata; i++) {
        Otelite__Prw__MetricMetadata *m = w->metadata[i];
        ot_buf_printf(&s->text, "# %d %s %s %s\n", m->type, m->metric_family_name, m->help,
                      m->unit);
    }
    for (size_t i = 0; i < w->n_timeseries; i++) {
        Otelite__Prw__TimeSeries *t = w->timeseries[i];
        for (size_t j = 0; j < t->n_labels; j++) {
            if (j)
                cr_assert_lt(strcmp(t->labels[j - 1]->name, t->labels[j]->name), 0,
                             "labels not sorted");
            ot_buf_printf(&s->text, "%s%s=%s", j ? "," : "", t->labels[j]->name,
                          t->labels[j]->value);
        }
        for (size_t j = 0; j < t->n_samples; j++) {
            double v = t->samples[j]->value;
            uint64_t u;
            memcpy(&u, &v, 8);
            if (u == PRW_STALE_NAN_BITS)
                ot_buf_printf(&s->text, " stale@%lld", (long long)t->samples[j]->timestamp);
            else
                ot_buf_printf(&s->text, " %g@%lld", v, (long long)t->samples[j]->timestamp);
            got++;
        }
        for (size_t j = 0; j < t->n_histograms; j++) {
            Otelite__Prw__Histogram *h = t->histograms[j];
            ot_buf_printf(&s->text, " h{%llu,%g,%d,%llu", (unsigned long long)h->count_int, h->sum,
                          h->schema, (unsigned long long)h->zero_count_int);
            for (size_t k = 0; k < h->n_negative_spans; k++)
                ot_buf_printf(&s->text, ",neg:%d+%u", h->negative_spans[k]->offset,
                              h->negative_spans[k]->length);
            for (size_t k = 0; k < h->n_negative_deltas; k++)
                ot_buf_printf(&s->text, "%s%lld", k ? " " : "[", (long long)h->negative_deltas[k]);
            if (h->n_negative_deltas)
                ot_buf_puts(&s->text, "]");
            for (size_t k = 0; k < h->n_positive_spans; k++)
                ot_buf_printf(&s->text, ",pos:%d+%u", h->positive_spans[k]->offset,
                              h->positive_spans[k]->length);
            for (size_t k = 0; k < h->n_positive_deltas; k++)
                ot_buf_printf(&s->text, "%s%lld", k ? " " : "[", (long long)h->positive_deltas[k]);
            if (h->n_positive_deltas)
                ot_buf_puts(&s->text, "]");
            ot_buf_printf(&s->text, "}@%lld", (long long)h->timestamp);
            got++;
        }
        ot_buf_putc(&s->text, '\n');
    }
    cr_assert_eq(got, samples, "the count handed over is the request's");
    otelite__prw__write_request__free_unpacked(w, NULL);
    return 0;
}

static prw_core *core_with(prw_opts o)
{
    ot_err err = {0};
    prw_core *c = prw_core_new(&o, &err);
    cr_assert(c, "%s", err.msg);
    return c;
}

static const char *run(prw_core *c, sink *s, const char *json, prw_stats *st)
{
    ot_err err = {0};
    ot_batch *b = ot_batch_from_json(OT_METRICS, json, strlen(json), &err);
    cr_assert(b, "json: %s", json);
    const ot_metrics_req *req = (const ot_metrics_req *)ot_batch_msg(b, &err);
    cr_assert(req);
    ot_buf_reset(&s->text);
    cr_assert_eq(prw_core_translate(c, req, 1000, collect, s, st), 0);
    ot_batch_unref(b);
    ot_buf_putc(&s->text, 0);
    return s->text.data;
}

#define RES(metrics)                                                                          \
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["                                   \
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}},"                         \
    "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"i1\"}}]},"                 \
    "\"scopeMetrics\":[{\"scope\":{\"name\":\"s\"},\"metrics\":[" metrics "]}]}]}"

#define L "instance=i1,job=api,otel_scope_name=s"
#define MS(x) "\"timeUnixNano\":\"" #x "000000\""

Test(prw, gauge_and_counter_with_sorted_labels)
{
    prw_core *c = core_with((prw_opts){.suffixes = true, .target_info = true});
    sink s = {0};
    const char *out = run(c, &s, RES("{\"name\":\"mem.used\",\"unit\":\"By\",\"gauge\":{"
                                     "\"dataPoints\":[{\"asDouble\":0.25," MS(5) "}]}},"
                                     "{\"name\":\"http.requests\",\"sum\":{"
                                     "\"aggregationTemporality\":2,\"isMonotonic\":true,"
                                     "\"dataPoints\":[{\"asInt\":\"7\"," MS(6) ",\"attributes\":["
                                     "{\"key\":\"Zeta\",\"value\":{\"stringValue\":\"z\"}},"
                                     "{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}}"
                                     "]}]}}"),
                          NULL);
    /* Upper case sorts before '_'; no target_info: the resource says nothing
     * beyond job and instance. */
    cr_assert_str_eq(out, "__name__=mem_used_bytes," L " 0.25@5\n"
                          "Zeta=z,__name__=http_requests_total,http_method=GET," L " 7@6\n");
    cr_assert_eq(s.requests, 1);
    prw_core_free(c);
    ot_buf_free(&s.text);
}

#define DSUM(v, t)                                                                              \
    RES("{\"name\":\"d\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"           \
        "\"dataPoints\":[{\"asInt\":\"" #v "\"," MS(t) "}]}}")

Test(prw, deltas_add_up_and_old_or_repeated_points_are_not_sent)
{
    prw_core *c = core_with((prw_opts){.suffixes = true});
    sink s = {0};
    prw_stats st = {0};
    cr_assert_str_eq(run(c, &s, DSUM(2, 10), &st), "__name__=d_total," L " 2@10\n");
    cr_assert_str_eq(run(c, &s, DSUM(3, 20), &st), "__name__=d_total," L " 5@20\n");
    cr_assert_str_eq(run(c, &s, DSUM(3, 20), &st), ""); /* the same point again */
    cr_assert_str_eq(run(c, &s, DSUM(4, 15), &st), ""); /* older than the last */
    cr_assert_eq(st.stale, 2);
    cr_assert_str_eq(run(c, &s, DSUM(1, 30), &st), "__name__=d_total," L " 6@30\n");
    cr_assert_str_eq(run(c, &s, DSUM(1, 0), &st), ""); /* no time at all */
    cr_assert_eq(st.invalid, 1);
    prw_core_free(c);
    ot_buf_free(&s.text);
}

Test(prw, histogram_summary_and_no_value)
{
    prw_core *c = core_with((prw_opts){.suffixes = true});
    sink s = {0};
    const char *out = run(
        c, &s,
        RES("{\"name\":\"lat\",\"unit\":\"s\",\"histogram\":{\"aggregationTemporality\":2,"
            "\"dataPoints\":[{\"count\":\"3\",\"sum\":1.5,\"bucketCounts\":[\"1\",\"1\",\"1\"],"
            "\"explicitBounds\":[0.1,1]," MS(7) "}]}},"
            "{\"name\":\"rpc\",\"summary\":{\"dataPoints\":[{\"count\":\"2\",\"sum\":3," MS(7) ","
            "\"quantileValues\":[{\"quantile\":0.5,\"value\":1}]}]}},"
            "{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"flags\":1," MS(8) "}]}}"),
        NULL);
    cr_assert_str_eq(out, "__name__=lat_seconds_bucket,instance=i1,job=api,le=0.1,otel_scope_name=s 1@7\n"
                          "__name__=lat_seconds_bucket,instance=i1,job=api,le=1,otel_scope_name=s 2@7\n"
                          "__name__=lat_seconds_bucket,instance=i1,job=api,le=+Inf,otel_scope_name=s 3@7\n"
                          "__name__=lat_seconds_sum," L " 1.5@7\n"
                          "__name__=lat_seconds_count," L " 3@7\n"
                          "__name__=rpc," L ",quantile=0.5 1@7\n"
                          "__name__=rpc_sum," L " 3@7\n"
                          "__name__=rpc_count," L " 2@7\n"
                          "__name__=g," L " stale@8\n");
    prw_core_free(c);
    ot_buf_free(&s.text);
}

Test(prw, exponential_histogram_is_native)
{
    prw_core *c = core_with((prw_opts){.suffixes = true});
    sink s = {0};
    const char *out = run(
        c, &s,
        RES("{\"name\":\"size\",\"exponentialHistogram\":{\"aggregationTemporality\":2,"
            "\"dataPoints\":[{\"count\":\"9\",\"sum\":10,\"scale\":2,\"zeroCount\":\"1\","
            "\"positive\":{\"offset\":-1,\"bucketCounts\":[\"1\",\"4\",\"2\"]},"
            "\"negative\":{\"offset\":3,\"bucketCounts\":[\"1\"]}," MS(9) "}]}}"),
        NULL);
    /* OTLP bucket i of offset o is Prometheus bucket o + i + 1. */
    cr_assert_str_eq(out, "__name__=size," L " h{9,10,2,1,neg:4+1[1],pos:0+3[1 3 -2]}@9\n");
    prw_core_free(c);
    ot_buf_free(&s.text);
}

Test(prw, namespace_external_labels_resource_labels_and_target_info)
{
    const char *ek[] = {"cluster", "job"}, *ev[] = {"c1", "ignored"};
    prw_core *c = core_with((prw_opts){.ns = "ns", .suffixes = false, .target_info = true,
                                       .resource_to_labels = true, .ext_keys = ek,
                                       .ext_vals = ev, .n_ext = 2});
    sink s = {0};
    const char *json =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}},"
        "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"n1\"}}]},"
        "\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"a.b\",\"unit\":\"s\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1," MS(3) ","
        "\"attributes\":[{\"key\":\"host.name\",\"value\":{\"stringValue\":\"point\"}}]}]}},"
        "{\"name\":\"c\",\"gauge\":{\"dataPoints\":[{\"asDouble\":2," MS(4) "}]}}]}]}]}";
    /* The resource's host_name wins over the point's; the external job gives
     * way to the resource's; target_info at the resource's latest time. */
    cr_assert_str_eq(run(c, &s, json, NULL),
                     "__name__=ns_a_b,cluster=c1,host_name=n1,job=api 1@3\n"
                     "__name__=ns_c,cluster=c1,host_name=n1,job=api 2@4\n"
                     "__name__=target_info,cluster=c1,host_name=n1,job=api 1@4\n");
    /* The same batch again: nothing newer, not even target_info. */
    cr_assert_str_eq(run(c, &s, json, NULL), "");
    prw_core_free(c);
    ot_buf_free(&s.text);
}

Test(prw, requests_stay_under_the_cap_and_metadata_goes_with_each)
{
    prw_core *c = core_with((prw_opts){.suffixes = true, .metadata = true, .max_bytes = 1024});
    sink s = {0};
    ot_buf j = OT_BUF_INIT;
    ot_buf_puts(&j, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"w\","
                    "\"description\":\"Width.\",\"unit\":\"m\",\"gauge\":{\"dataPoints\":[");
    for (int i = 0; i < 300; i++)
        ot_buf_printf(&j, "%s{\"asDouble\":%d," MS(5) ",\"attributes\":[{\"key\":\"k\","
                          "\"value\":{\"stringValue\":\"v%04d\"}}]}",
                      i ? "," : "", i, i);
    ot_buf_puts(&j, "]}}]}]}]}");
    ot_buf_putc(&j, 0);
    const char *out = run(c, &s, j.data, NULL);
    cr_assert_gt(s.requests, 10);
    cr_assert_leq(s.max_len, 1024);
    cr_assert_eq(s.samples, 300);
    size_t md = 0;
    for (const char *p = out; (p = strstr(p, "# 2 w_meters Width. meters")); p++)
        md++;
    cr_assert_eq(md, s.requests, "one metadata entry in each request");
    for (int i = 0; i < 300; i += 37) {
        char want[64];
        snprintf(want, sizeof want, "k=v%04d %d@5\n", i, i);
        cr_assert(strstr(out, want), "%s missing", want);
    }
    prw_core_free(c);
    ot_buf_free(&s.text);
    ot_buf_free(&j);
}

Test(prw, snappy_round_trip)
{
    ot_buf in = OT_BUF_INIT, z = OT_BUF_INIT, back = OT_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        ot_buf_printf(&in, "series-%d ", i % 97);
    cr_assert_eq(prw_snappy(&z, in.data, in.len), 0);
    cr_assert_lt(z.len, in.len / 2);
    cr_assert_eq(prw_unsnappy(&back, z.data, z.len, in.len), 0);
    cr_assert_eq(back.len, in.len);
    cr_assert_eq(memcmp(back.data, in.data, in.len), 0);
    cr_assert_eq(prw_unsnappy(&back, z.data, z.len, in.len - 1), -1, "over the cap");
    cr_assert_eq(prw_unsnappy(&back, "\xff\xff\xff", 3, 1 << 20), -1, "not snappy");
    ot_buf_free(&in);
    ot_buf_free(&z);
    ot_buf_free(&back);
}
