/* Unit tests for the prometheus exporter's core (exporters/prometheus): the
 * exact text a scrape shows for every OTLP metric type, delta accumulation
 * and resets, the name and label translation table, value formatting,
 * OpenMetrics, two resources with one metric name, expiry and the cap.
 * Input is OTLP JSON decoded by the agent's own decoder. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../exporters/prometheus/prom.h"
#include "../../exporters/prometheus/render_int.h"
#include "base/buf.h"
#include "model/batch.h"
#include "model/otlp_json.h"

static pm_core *core_with(pm_opts o)
{
    ot_err err = {0};
    pm_core *c = pm_core_new(&o, &err);
    cr_assert(c);
    return c;
}

static pm_core *core(void)
{
    return core_with((pm_opts){.suffixes = true});
}

static size_t ingest(pm_core *c, const char *json, int64_t now)
{
    ot_err err = {0};
    ot_batch *b = ot_batch_from_json(OT_METRICS, json, strlen(json), &err);
    cr_assert(b, "json: %s", json);
    const ot_metrics_req *req = (const ot_metrics_req *)ot_batch_msg(b, &err);
    cr_assert(req);
    size_t refused = pm_core_ingest(c, req, now);
    ot_batch_unref(b);
    return refused;
}

static char *scrape(pm_core *c, int fmt)
{
    static ot_buf out;
    ot_buf_free(&out);
    cr_assert_eq(pm_render_text(c, fmt, &out), 0);
    ot_buf_putc(&out, 0);
    return out.data;
}

/* One resource (service api, instance i1), one scope, the given metrics. */
#define RES(metrics)                                                                          \
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["                                   \
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}},"                         \
    "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"i1\"}}]},"                 \
    "\"scopeMetrics\":[{\"scope\":{\"name\":\"s\"},\"metrics\":[" metrics "]}]}]}"

#define L "job=\"api\",instance=\"i1\",otel_scope_name=\"s\""
/* RES's target: a job and an instance give a target_info series, as the
 * collector's exporter writes it, even with no other attribute. */
#define TI "# HELP target_info Target metadata\n# TYPE target_info gauge\n" \
           "target_info{job=\"api\",instance=\"i1\"} 1\n"

Test(prometheus, gauge_and_cumulative_counter)
{
    pm_core *c = core();
    ingest(c, RES("{\"name\":\"mem.used\",\"description\":\"Memory in use.\",\"unit\":\"By\","
                  "\"gauge\":{\"dataPoints\":[{\"asDouble\":0.25,\"timeUnixNano\":\"5\"}]}},"
                  "{\"name\":\"http.requests\",\"unit\":\"{request}\",\"sum\":{"
                  "\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":[{\"asInt\":\"7\","
                  "\"timeUnixNano\":\"5\",\"attributes\":[{\"key\":\"http.method\","
                  "\"value\":{\"stringValue\":\"GET\"}}]}]}}"),
           1);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT),
                     "# HELP http_requests_total http.requests\n"
                     "# TYPE http_requests_total counter\n"
                     "http_requests_total{http_method=\"GET\"," L "} 7\n"
                     "# HELP mem_used_bytes Memory in use.\n"
                     "# TYPE mem_used_bytes gauge\n"
                     "mem_used_bytes{" L "} 0.25\n" TI);
    pm_core_free(c);
}

#define DSUM(mono, v, t)                                                                       \
    RES("{\"name\":\"d\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":" mono            \
        ",\"dataPoints\":[{\"asDouble\":" v ",\"startTimeUnixNano\":\"1\",\"timeUnixNano\":\"" t \
        "\"}]}}")

Test(prometheus, delta_sums_accumulate)
{
    pm_core *c = core();
    ingest(c, DSUM("true", "2", "10"), 1);
    ingest(c, DSUM("true", "3", "20"), 2);
    ingest(c, DSUM("true", "3", "20"), 3); /* the same point again is not added twice */
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT), "# HELP d_total d\n# TYPE d_total counter\n"
                                             "d_total{" L "} 5\n" TI);
    pm_core_free(c);
    c = core();
    ingest(c, DSUM("false", "2", "10"), 1);
    ingest(c, DSUM("false", "-5", "20"), 2);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT), "# HELP d d\n# TYPE d gauge\nd{" L "} -3\n" TI);
    pm_core_free(c);
}

Test(prometheus, cumulative_reset_shows_the_new_value)
{
    pm_core *c = core();
    const char *a = RES("{\"name\":\"c\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
                        "\"dataPoints\":[{\"asInt\":\"100\",\"startTimeUnixNano\":\"1\",\"timeUnixNano\":\"9\"}]}}");
    const char *b = RES("{\"name\":\"c\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
                        "\"dataPoints\":[{\"asInt\":\"4\",\"startTimeUnixNano\":\"10\",\"timeUnixNano\":\"11\"}]}}");
    ingest(c, a, 1);
    ingest(c, b, 2);
    cr_assert(strstr(scrape(c, PM_FMT_TEXT), "c_total{" L "} 4\n"));
    pm_core_free(c);
}

#define HIST(temp, bounds, counts, cnt, sum)                                                   \
    RES("{\"name\":\"lat\",\"unit\":\"s\",\"histogram\":{\"aggregationTemporality\":" temp     \
        ",\"dataPoints\":[{\"count\":\"" cnt "\",\"sum\":" sum ",\"bucketCounts\":[" counts   \
        "],\"explicitBounds\":[" bounds "],\"timeUnixNano\":\"" cnt "\"}]}}")

Test(prometheus, histogram_cumulative_buckets)
{
    pm_core *c = core();
    ingest(c, HIST("2", "0.1,1", "\"1\",\"2\",\"3\"", "6", "7.5"), 1);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT),
                     "# HELP lat_seconds lat\n# TYPE lat_seconds histogram\n"
                     "lat_seconds_bucket{" L ",le=\"0.1\"} 1\n"
                     "lat_seconds_bucket{" L ",le=\"1\"} 3\n"
                     "lat_seconds_bucket{" L ",le=\"+Inf\"} 6\n"
                     "lat_seconds_sum{" L "} 7.5\n"
                     "lat_seconds_count{" L "} 6\n" TI);
    cr_assert(strstr(scrape(c, PM_FMT_OPENMETRICS),
                     "# UNIT lat_seconds seconds\nlat_seconds_bucket{" L ",le=\"0.1\"} 1\n"
                     "lat_seconds_bucket{" L ",le=\"1.0\"} 3\n"));
    pm_core_free(c);
}

Test(prometheus, delta_histograms_accumulate_while_bounds_match)
{
    pm_core *c = core();
    ingest(c, HIST("1", "1", "\"1\",\"1\"", "2", "3"), 1);
    ingest(c, HIST("1", "1", "\"2\",\"1\"", "3", "4"), 2);
    char *t = scrape(c, PM_FMT_TEXT);
    cr_assert(strstr(t, "lat_seconds_bucket{" L ",le=\"1\"} 3\n"), "%s", t);
    cr_assert(strstr(t, "lat_seconds_bucket{" L ",le=\"+Inf\"} 5\n"), "%s", t);
    cr_assert(strstr(t, "lat_seconds_sum{" L "} 7\n"), "%s", t);
    /* New bounds: the running total starts again from this point. */
    ingest(c, HIST("1", "0.5,2", "\"1\",\"0\",\"0\"", "4", "0.25"), 3);
    t = scrape(c, PM_FMT_TEXT);
    cr_assert(strstr(t, "lat_seconds_bucket{" L ",le=\"0.5\"} 1\n"), "%s", t);
    cr_assert(strstr(t, "lat_seconds_count{" L "} 4\n"), "%s", t);
    cr_assert_null(strstr(t, "le=\"1\""), "%s", t);
    pm_core_free(c);
}

Test(prometheus, summary)
{
    pm_core *c = core();
    ingest(c, RES("{\"name\":\"rpc\",\"unit\":\"ms\",\"summary\":{\"dataPoints\":[{\"count\":\"4\","
                  "\"sum\":10,\"quantileValues\":[{\"quantile\":0.5,\"value\":2},"
                  "{\"quantile\":0.99,\"value\":4.5}],\"timeUnixNano\":\"1\"}]}}"),
           1);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT),
                     "# HELP rpc_milliseconds rpc\n# TYPE rpc_milliseconds summary\n"
                     "rpc_milliseconds{" L ",quantile=\"0.5\"} 2\n"
                     "rpc_milliseconds{" L ",quantile=\"0.99\"} 4.5\n"
                     "rpc_milliseconds_sum{" L "} 10\n"
                     "rpc_milliseconds_count{" L "} 4\n" TI);
    pm_core_free(c);
}

Test(prometheus, exponential_histogram_as_classic_buckets)
{
    pm_core *c = core();
    /* scale 0: base 2. Positive buckets 1 and 2 are (2,4] and (4,8];
     * negative bucket 0 is [-2,-1). */
    ingest(c, RES("{\"name\":\"e\",\"exponentialHistogram\":{\"aggregationTemporality\":2,"
                  "\"dataPoints\":[{\"count\":\"6\",\"sum\":12,\"scale\":0,\"zeroCount\":\"1\","
                  "\"positive\":{\"offset\":1,\"bucketCounts\":[\"2\",\"2\"]},"
                  "\"negative\":{\"offset\":0,\"bucketCounts\":[\"1\"]},\"timeUnixNano\":\"1\"}]}}"),
           1);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT),
                     "# HELP e e\n# TYPE e histogram\n"
                     "e_bucket{" L ",le=\"-1\"} 1\n"
                     "e_bucket{" L ",le=\"0\"} 2\n"
                     "e_bucket{" L ",le=\"4\"} 4\n"
                     "e_bucket{" L ",le=\"8\"} 6\n"
                     "e_bucket{" L ",le=\"+Inf\"} 6\n"
                     "e_sum{" L "} 12\n"
                     "e_count{" L "} 6\n" TI);
    pm_core_free(c);
}

Test(prometheus, families_group_across_resources_and_target_info)
{
    pm_core *c = core();
    /* Resource 0 and 1 are one target (job shop/svc0, instance i0; their
     * series differ by scope), 2 has no instance, 3 a job and an instance
     * and nothing else. */
    static const char *inst[] = {"i0", "i0", NULL, "i3"}, *svc[] = {"0", "0", "2", "3"};
    for (int i = 0; i < 4; i++) {
        char json[1024], ia[128] = "", host[96] = "";
        if (inst[i])
            snprintf(ia, sizeof ia, "{\"key\":\"service.instance.id\",\"value\":"
                                    "{\"stringValue\":\"%s\"}},", inst[i]);
        if (i < 3)
            snprintf(host, sizeof host, ",{\"key\":\"host.name\",\"value\":"
                                        "{\"stringValue\":\"h%d\"}}", i);
        snprintf(json, sizeof json,
                 "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[%s"
                 "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc%s\"}},"
                 "{\"key\":\"service.namespace\",\"value\":{\"stringValue\":\"shop\"}}%s]},"
                 "\"scopeMetrics\":[{\"scope\":{\"name\":\"%s\"},\"metrics\":["
                 "{\"name\":\"up\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"%d\"}]}},"
                 "{\"name\":\"other\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\"}]}}]}]}]}",
                 ia, svc[i], host, i == 1 ? "lib" : "", i);
        ingest(c, json, 1);
    }
    /* Series of a family come in store order; families in name order,
     * each one block with one HELP and TYPE. */
    char *t = scrape(c, PM_FMT_TEXT);
    const char *want[] = {
        "# HELP other other\n# TYPE other gauge\nother{",
        "other{job=\"shop/svc0\",instance=\"i0\"} 1\n", "other{job=\"shop/svc2\"} 1\n",
        "# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{",
        "target_info{job=\"shop/svc3\",instance=\"i3\"} 1\n",
        "# HELP up up\n# TYPE up gauge\nup{", "up{job=\"shop/svc0\",instance=\"i0\"} 0\n",
        "up{job=\"shop/svc0\",instance=\"i0\",otel_scope_name=\"lib\"} 1\n",
        "up{job=\"shop/svc2\"} 2\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(t, want[i]), "%s not in\n%s", want[i], t);
    /* One target_info a target: resource 0's or 1's host, not both. */
    bool h0 = strstr(t, "target_info{job=\"shop/svc0\",instance=\"i0\",host_name=\"h0\"} 1\n");
    bool h1 = strstr(t, "target_info{job=\"shop/svc0\",instance=\"i0\",host_name=\"h1\"} 1\n");
    cr_assert(h0 != h1, "%s", t);
    cr_assert_null(strstr(t, "target_info{job=\"shop/svc2\""), "%s", t);
    cr_assert(strstr(t, "# TYPE other") < strstr(t, "# TYPE target_info"));
    cr_assert(strstr(t, "# TYPE target_info") < strstr(t, "# TYPE up"));
    cr_assert(strstr(t, "target_info{job=\"shop/svc3") < strstr(t, "# TYPE up"));
    size_t lines = 0;
    for (const char *p = t; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 16, "%s", t); /* 3 families of 2 lines, 4 + 2 + 4 series */
    pm_core_free(c);
}

/* With a namespace, target_info is named as the collector names it: the
 * namespace sanitised as a label name, "_", then target_info; metric
 * names take the namespace too; target_info carries no const_labels. */
Test(prometheus, namespace_prefixes_target_info)
{
    static const char *ck[] = {"env"}, *cv[] = {"prod"};
    pm_core *c = core_with((pm_opts){.suffixes = true, .ns = "my-app.ns", .const_keys = ck,
                                     .const_vals = cv, .n_const = 1});
    ingest(c, "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["
              "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}},"
              "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"i0\"}},"
              "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h0\"}}]},"
              "\"scopeMetrics\":[{\"metrics\":["
              "{\"name\":\"up\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\"}]}}]}]}]}",
           1);
    for (int fmt = PM_FMT_TEXT; fmt <= PM_FMT_OPENMETRICS; fmt++) {
        char *t = scrape(c, fmt);
        cr_assert(strstr(t, "# HELP my_app_ns_target_info Target metadata\n"
                            "# TYPE my_app_ns_target_info gauge\n"
                            "my_app_ns_target_info{job=\"api\",instance=\"i0\","
                            "host_name=\"h0\"} 1\n"),
                  "%s", t);
        cr_assert(strstr(t, "\nmy_app_ns_up{job=\"api\",instance=\"i0\",env=\"prod\"} 1\n"),
                  "%s", t);
        cr_assert_null(strstr(t, "\ntarget_info"), "%s", t);
    }
    ot_buf pb = OT_BUF_INIT;
    cr_assert_eq(pm_render_text(c, PM_FMT_PROTOBUF, &pb), 0);
    ot_buf_putc(&pb, 0);
    cr_assert(memmem(pb.data, pb.len, "\x0a\x15my_app_ns_target_info", 23));
    ot_buf_free(&pb);
    pm_core_free(c);
}

Test(prometheus, label_sanitising_and_collisions)
{
    pm_core *c = core_with((pm_opts){.suffixes = true, .ns = "app"});
    ingest(c, RES("{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\",\"attributes\":["
                  "{\"key\":\"a.b\",\"value\":{\"stringValue\":\"x\"}},"
                  "{\"key\":\"a_b\",\"value\":{\"stringValue\":\"y\"}},"
                  "{\"key\":\"1st\",\"value\":{\"intValue\":\"3\"}},"
                  "{\"key\":\"_p\",\"value\":{\"boolValue\":true}},"
                  "{\"key\":\"q\",\"value\":{\"stringValue\":\"say \\\"hi\\\"\\n\"}}]}]}}"),
           1);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT),
                     "# HELP app_g g\n# TYPE app_g gauge\n"
                     "app_g{a_b=\"x;y\",key_1st=\"3\",key_p=\"true\",q=\"say \\\"hi\\\"\\n\"," L
                     "} 1\n# HELP app_target_info Target metadata\n# TYPE app_target_info gauge\n"
                     "app_target_info{job=\"api\",instance=\"i1\"} 1\n");
    pm_core_free(c);
}

static char *name_of(const char *name, const char *unit, ot_mstore_type t, bool mono, bool sfx)
{
    static ot_buf b;
    ot_buf_reset(&b);
    ot_prom_metric_name(&b, NULL, name, strlen(name), unit, strlen(unit), t, mono, sfx, NULL);
    ot_buf_putc(&b, 0);
    return b.data;
}

Test(prometheus, name_translation_table)
{
    struct {
        const char *name, *unit;
        ot_mstore_type t;
        bool mono;
        const char *want;
    } cases[] = {
        {"http.server.duration", "s", OT_MSTORE_HISTOGRAM, false, "http_server_duration_seconds"},
        {"system.memory.usage", "By", OT_MSTORE_SUM, false, "system_memory_usage_bytes"},
        {"net.io", "By", OT_MSTORE_SUM, true, "net_io_bytes_total"},
        {"rx", "By/s", OT_MSTORE_GAUGE, false, "rx_bytes_per_second"},
        {"cpu.utilization", "1", OT_MSTORE_GAUGE, false, "cpu_utilization_ratio"},
        {"requests", "{request}", OT_MSTORE_SUM, true, "requests_total"},
        {"requests_total", "1", OT_MSTORE_SUM, true, "requests_total"},
        {"total.requests", "", OT_MSTORE_SUM, true, "requests_total"},
        {"latency_seconds", "s", OT_MSTORE_GAUGE, false, "latency_seconds"},
        {"2xx", "", OT_MSTORE_GAUGE, false, "_2xx"},
        {"temp", "Cel", OT_MSTORE_GAUGE, false, "temp_celsius"},
        {"odd..name__x", "m/h", OT_MSTORE_GAUGE, false, "odd_name_x_meters_per_hour"},
        {"custom", "widgets", OT_MSTORE_GAUGE, false, "custom_widgets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_str_eq(name_of(cases[i].name, cases[i].unit, cases[i].t, cases[i].mono, true),
                         cases[i].want, "%s [%s]", cases[i].name, cases[i].unit);
    cr_expect_str_eq(name_of("net.io", "By", OT_MSTORE_SUM, true, false), "net_io");
}

static char *val(double v, bool om)
{
    static ot_buf b;
    ot_buf_reset(&b);
    ot_prom_value(&b, v, om);
    ot_buf_putc(&b, 0);
    return b.data;
}

Test(prometheus, value_formatting)
{
    cr_expect_str_eq(val(NAN, false), "NaN");
    cr_expect_str_eq(val(INFINITY, false), "+Inf");
    cr_expect_str_eq(val(-INFINITY, false), "-Inf");
    cr_expect_str_eq(val(1e6, false), "1000000");
    cr_expect_str_eq(val(123456789012.0, false), "123456789012");
    cr_expect_str_eq(val(0.1, false), "0.1");
    cr_expect_str_eq(val(0.1 + 0.2, false), "0.30000000000000004");
    cr_expect_str_eq(val(1e-7, false), "1e-07");
    cr_expect_str_eq(val(1e300, false), "1e+300");
    cr_expect_str_eq(val(2, true), "2.0");
    cr_expect_str_eq(val(-0.5, false), "-0.5");
    /* the integer path at its digit-count edges and its range's ends */
    cr_expect_str_eq(val(0, false), "0");
    cr_expect_str_eq(val(-0.0, false), "-0");
    cr_expect_str_eq(val(9, false), "9");
    cr_expect_str_eq(val(10, false), "10");
    cr_expect_str_eq(val(99, false), "99");
    cr_expect_str_eq(val(100, false), "100");
    cr_expect_str_eq(val(-7, true), "-7.0");
    cr_expect_str_eq(val(999999999999999.0, false), "999999999999999");
    cr_expect_str_eq(val(9007199254740991.0, false), "9007199254740991");
    cr_expect_str_eq(val(-9007199254740991.0, false), "-9007199254740991");
    cr_expect_str_eq(val(9007199254740992.0, false), "9007199254740992");
    cr_expect_str_eq(val(1e19, false), "1e+19");
}

/* Integer attributes as label values, in full, sign and all. */
Test(prometheus, integer_attribute_values)
{
    static const struct {
        int64_t i;
        const char *want;
    } cases[] = {
        {0, "0"}, {7, "7"}, {10, "10"}, {99, "99"}, {100, "100"}, {12345, "12345"},
        {-1, "-1"}, {-1000, "-1000"}, {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ot_mstore_val v = {.type = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE,
                           .i = cases[i].i};
        ot_buf b = OT_BUF_INIT;
        ot_prom_attr_text(&b, &v);
        ot_buf_putc(&b, 0);
        cr_expect_str_eq(b.data, cases[i].want);
        ot_buf_free(&b);
    }
}

Test(prometheus, openmetrics_counter_and_eof)
{
    pm_core *c = core();
    ingest(c, RES("{\"name\":\"io\",\"unit\":\"By\",\"sum\":{\"aggregationTemporality\":2,"
                  "\"isMonotonic\":true,\"dataPoints\":[{\"asInt\":\"9\"}]}}"),
           1);
    cr_assert_str_eq(scrape(c, PM_FMT_OPENMETRICS),
                     "# HELP io_bytes io\n# TYPE io_bytes counter\n# UNIT io_bytes bytes\n"
                     "io_bytes_total{" L "} 9\n" TI "# EOF\n");
    pm_core_free(c);
}

Test(prometheus, timestamps_and_const_labels)
{
    const char *k[] = {"region"}, *v[] = {"eu"};
    pm_core *c = core_with((pm_opts){.suffixes = true, .send_timestamps = true,
                                     .const_keys = k, .const_vals = v, .n_const = 1});
    ingest(c, RES("{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\","
                  "\"timeUnixNano\":\"1700000000123456789\"}]}}"),
           1);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT), "# HELP g g\n# TYPE g gauge\n"
                                             "g{" L ",region=\"eu\"} 1 1700000000123\n" TI);
    pm_core_free(c);
}

#define GPT(attr) RES("{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\",\"attributes\":[" \
                      "{\"key\":\"k\",\"value\":{\"stringValue\":\"" attr "\"}}]}]}}")

Test(prometheus, expiry_without_a_scrape)
{
    pm_core *c = core_with((pm_opts){.suffixes = true, .expiration_ns = 1000});
    ingest(c, GPT("a"), 100);
    ingest(c, GPT("b"), 600);
    cr_assert_eq(pm_core_expire(c, 1200), 1); /* a: idle 1100 */
    cr_assert_eq(atomic_load(&c->expired), 1);
    char *t = scrape(c, PM_FMT_TEXT);
    cr_assert_null(strstr(t, "k=\"a\""), "%s", t);
    cr_assert(strstr(t, "k=\"b\""), "%s", t);
    cr_assert_eq(pm_core_expire(c, 5000), 1);
    cr_assert_str_eq(scrape(c, PM_FMT_TEXT), "");
    ot_mstore_stats st;
    ot_mstore_stats_get(c->store, &st);
    cr_assert_eq(st.streams, 0);
    pm_core_free(c);
}

Test(prometheus, cap_refuses_new_series_and_keeps_updating_old)
{
    pm_core *c = core_with((pm_opts){.suffixes = true, .max_series = 1});
    cr_assert_eq(ingest(c, GPT("a"), 1), 0);
    cr_assert_eq(ingest(c, GPT("b"), 2), 1);
    cr_assert_eq(ingest(c, GPT("a"), 3), 0);
    ot_mstore_stats st;
    ot_mstore_stats_get(c->store, &st);
    cr_assert_eq(st.streams, 1);
    cr_assert_eq(st.refused, 1);
    char *t = scrape(c, PM_FMT_TEXT);
    cr_assert(strstr(t, "k=\"a\""));
    cr_assert_null(strstr(t, "k=\"b\""));
    pm_core_free(c);
}

#define EXEMPLAR(v)                                                                            \
    "\"exemplars\":[{\"asDouble\":" v ",\"timeUnixNano\":\"1700000000500000000\","             \
    "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\"}]"

Test(prometheus, openmetrics_exemplars)
{
    pm_core *c = core();
    ingest(c, RES("{\"name\":\"req\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
                  "\"dataPoints\":[{\"asInt\":\"3\"," EXEMPLAR("1") "}]}},"
                  "{\"name\":\"lat\",\"histogram\":{\"aggregationTemporality\":2,\"dataPoints\":[{"
                  "\"count\":\"2\",\"sum\":1,\"bucketCounts\":[\"1\",\"1\"],\"explicitBounds\":[0.5],"
                  EXEMPLAR("0.75") "}]}}"),
           1);
    char *t = scrape(c, PM_FMT_OPENMETRICS);
    const char *ex = " # {trace_id=\"5b8efff798038103d269b633813fc60c\","
                     "span_id=\"eee19b7ec3c1b174\"}";
    char want[512];
    snprintf(want, sizeof want, "req_total{" L "} 3%s 1 1700000000.500000000\n", ex);
    cr_assert(strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "lat_bucket{" L ",le=\"0.5\"} 1\nlat_bucket{" L
             ",le=\"+Inf\"} 2%s 0.75 1700000000.500000000\n", ex);
    cr_assert(strstr(t, want), "%s", t);
    /* Not in the 0.0.4 text format, which has no exemplars. */
    cr_assert_null(strstr(scrape(c, PM_FMT_TEXT), "trace_id"));
    /* A later point without exemplars keeps the last one. */
    ingest(c, RES("{\"name\":\"req\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
                  "\"dataPoints\":[{\"asInt\":\"4\"}]}}"),
           2);
    snprintf(want, sizeof want, "req_total{" L "} 4%s 1 1700000000.500000000\n", ex);
    cr_assert(strstr(scrape(c, PM_FMT_OPENMETRICS), want));
    pm_core_free(c);
}

/* A series made from a point without exemplars takes the exemplar a later
 * point brings: its state grows to hold it, running totals kept. */
Test(prometheus, an_exemplar_on_a_later_point_is_kept)
{
    pm_core *c = core();
    ingest(c, RES("{\"name\":\"req\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"
                  "\"dataPoints\":[{\"asInt\":\"3\",\"timeUnixNano\":\"1\"}]}},"
                  "{\"name\":\"lat\",\"histogram\":{\"aggregationTemporality\":1,\"dataPoints\":[{"
                  "\"count\":\"2\",\"sum\":1,\"bucketCounts\":[\"1\",\"1\"],\"explicitBounds\":[0.5],"
                  "\"timeUnixNano\":\"1\"}]}},"
                  "{\"name\":\"e\",\"exponentialHistogram\":{\"aggregationTemporality\":1,"
                  "\"dataPoints\":[{\"count\":\"1\",\"sum\":1,\"scale\":0,"
                  "\"positive\":{\"offset\":0,\"bucketCounts\":[\"1\"]},\"timeUnixNano\":\"1\"}]}}"),
           1);
    cr_assert_null(strstr(scrape(c, PM_FMT_OPENMETRICS), "trace_id"));
    /* deltas, so the totals show whether the grown state kept them */
    ingest(c, RES("{\"name\":\"req\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"
                  "\"dataPoints\":[{\"asInt\":\"4\",\"timeUnixNano\":\"2\"," EXEMPLAR("1") "}]}},"
                  "{\"name\":\"lat\",\"histogram\":{\"aggregationTemporality\":1,\"dataPoints\":[{"
                  "\"count\":\"1\",\"sum\":0.75,\"bucketCounts\":[\"0\",\"1\"],\"explicitBounds\":[0.5],"
                  "\"timeUnixNano\":\"2\"," EXEMPLAR("0.75") "}]}},"
                  "{\"name\":\"e\",\"exponentialHistogram\":{\"aggregationTemporality\":1,"
                  "\"dataPoints\":[{\"count\":\"1\",\"sum\":1,\"scale\":0,"
                  "\"positive\":{\"offset\":0,\"bucketCounts\":[\"1\"]},\"timeUnixNano\":\"2\","
                  EXEMPLAR("1.5") "}]}}"),
           2);
    char *t = scrape(c, PM_FMT_OPENMETRICS);
    const char *ex = " # {trace_id=\"5b8efff798038103d269b633813fc60c\","
                     "span_id=\"eee19b7ec3c1b174\"}";
    char want[512];
    snprintf(want, sizeof want, "req_total{" L "} 7%s 1 1700000000.500000000\n", ex);
    cr_assert(strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "lat_bucket{" L ",le=\"0.5\"} 1\nlat_bucket{" L
             ",le=\"+Inf\"} 3%s 0.75 1700000000.500000000\n", ex);
    cr_assert(strstr(t, want), "%s", t);
    cr_assert(strstr(t, "lat_sum{" L "} 1.75\n"), "%s", t);
    cr_assert(strstr(t, "e_count{" L "} 2\n"), "%s", t);
    /* protobuf: the counter's, lat's on an explicit +Inf bucket (above
     * every bound), and the exponential histogram's as a native exemplar
     * (the text formats' classic buckets of it show none) */
    ot_buf pb = OT_BUF_INIT;
    cr_assert_eq(pm_render_text(c, PM_FMT_PROTOBUF, &pb), 0);
    size_t hits = 0;
    for (size_t i = 0; i + 32 <= pb.len; i++)
        hits += memcmp(pb.data + i, "5b8efff798038103d269b633813fc60c", 32) == 0;
    cr_assert_eq(hits, 3, "req, lat and e carry it in protobuf: %zu", hits);
    ot_buf_free(&pb);
    /* a third point without exemplars keeps the last one */
    ingest(c, RES("{\"name\":\"req\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"
                  "\"dataPoints\":[{\"asInt\":\"1\",\"timeUnixNano\":\"3\"}]}}"),
           3);
    snprintf(want, sizeof want, "req_total{" L "} 8%s 1 1700000000.500000000\n", ex);
    cr_assert(strstr(scrape(c, PM_FMT_OPENMETRICS), want));
    ot_mstore_stats st;
    ot_mstore_stats_get(c->store, &st);
    cr_assert_eq(st.streams, 3);
    cr_assert_eq(st.removed, 0, "grown in place, not dropped and made again");
    pm_core_free(c);
}

Test(prometheus, exponential_histogram_downscaled_to_schema_8)
{
    pm_core *c = core();
    /* scale 9, buckets 0..3: at scale 8 they are buckets 0 and 1. */
    ingest(c, RES("{\"name\":\"e\",\"exponentialHistogram\":{\"aggregationTemporality\":1,"
                  "\"dataPoints\":[{\"count\":\"4\",\"sum\":4.2,\"scale\":9,"
                  "\"positive\":{\"offset\":0,\"bucketCounts\":[\"1\",\"1\",\"1\",\"1\"]},"
                  "\"timeUnixNano\":\"1\"}]}}"),
           1);
    /* the same layout again: a delta, added */
    ingest(c, RES("{\"name\":\"e\",\"exponentialHistogram\":{\"aggregationTemporality\":1,"
                  "\"dataPoints\":[{\"count\":\"4\",\"sum\":4.2,\"scale\":9,"
                  "\"positive\":{\"offset\":0,\"bucketCounts\":[\"1\",\"1\",\"1\",\"1\"]},"
                  "\"timeUnixNano\":\"2\"}]}}"),
           2);
    char *t = scrape(c, PM_FMT_TEXT);
    /* base 2^(2^-8): bounds base^1 and base^2 */
    cr_assert(strstr(t, "e_bucket{" L ",le=\"0\"} 0\n"), "%s", t);
    cr_assert(strstr(t, "e_bucket{" L ",le=\"1.0027112750502025\"} 4\n"), "%s", t);
    cr_assert(strstr(t, "e_bucket{" L ",le=\"1.0054299011128027\"} 8\n"), "%s", t);
    cr_assert(strstr(t, "e_count{" L "} 8\n"), "%s", t);
    cr_assert(strstr(t, "e_sum{" L "} 8.4\n"), "%s", t);
    pm_core_free(c);
}

Test(prometheus, protobuf_gauge_bytes)
{
    pm_core *c = core();
    ingest(c, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\","
              "\"description\":\"G.\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1.5,"
              "\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"v\"}}]}]}}]}]}]}",
           1);
    ot_buf out = OT_BUF_INIT;
    cr_assert_eq(pm_render_text(c, PM_FMT_PROTOBUF, &out), 0);
    /* MetricFamily{name "g", help "G.", type GAUGE, metric{label{k,v},
     * gauge{value 1.5}}}, length-delimited. */
    static const unsigned char want[] = {
        30,   0x0a, 1,    'g',  0x12, 2,    'G',  '.',  0x18, 1,    0x22, 19,
        0x0a, 6,    0x0a, 1,    'k',  0x12, 1,    'v',  0x12, 9,    0x09, 0,
        0,    0,    0,    0,    0,    0xf8, 0x3f,
    };
    cr_assert_eq(out.len, sizeof want);
    cr_assert_eq(memcmp(out.data, want, sizeof want), 0);
    ot_buf_free(&out);
    pm_core_free(c);
}

Test(prometheus, a_big_family_spans_blocks_and_stays_one_family)
{
    pm_core *c = core();
    ot_buf json = OT_BUF_INIT;
    for (int round = 0; round < 10; round++) {
        ot_buf_reset(&json);
        ot_buf_puts(&json, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":"
                           "\"many\",\"gauge\":{\"dataPoints\":[");
        for (int i = 0; i < 1000; i++)
            ot_buf_printf(&json, "%s{\"asInt\":\"%d\",\"attributes\":[{\"key\":\"a_fairly_long"
                                 "_attribute_name\",\"value\":{\"stringValue\":\"value-%06d-pad"
                                 "ding-padding-padding\"}}]}",
                          i ? "," : "", i, round * 1000 + i);
        ot_buf_puts(&json, "]}}]}]}]}");
        ot_buf_putc(&json, 0);
        ingest(c, json.data, 1);
    }
    ot_buf_free(&json);
    pm_scrape s;
    cr_assert_eq(pm_render(c, PM_FMT_TEXT, &s), 0);
    cr_assert_gt(s.n, 2, "one family in several blocks");
    ot_buf all = OT_BUF_INIT;
    for (size_t i = 0; i < s.n; i++)
        ot_buf_append(&all, s.parts[i].data, s.parts[i].len);
    pm_scrape_free(&s);
    ot_buf_putc(&all, 0);
    size_t lines = 0, helps = 0;
    for (const char *p = all.data; (p = strchr(p, '\n')); p++)
        lines++;
    for (const char *p = all.data; (p = strstr(p, "# HELP")); p++)
        helps++;
    cr_assert_eq(lines, 10002);
    cr_assert_eq(helps, 1);
    cr_assert(strstr(all.data, "many{a_fairly_long_attribute_name=\"value-009999-padding-padding-"
                               "padding\"} 999\n"));
    ot_buf_free(&all);
    pm_core_free(c);
}

/* ---- protobuf, read back by the format's rules ---------------------------- */

static bool pb_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

typedef struct pb_seen {
    int families;     /* MetricFamily messages */
    int metrics;      /* Metric fields, all families */
    int fillers;      /* fields the format does not define (skipped by parsers) */
    char names[8][64]; /* family names, in order */
} pb_seen;

/* Reads a delimited MetricFamily stream; fails the test on bytes that are
 * not one. */
static pb_seen pb_read(const ot_buf *b)
{
    pb_seen r = {0};
    const unsigned char *p = (const unsigned char *)b->data, *end = p + b->len;
    while (p < end) {
        uint64_t len, key, n;
        cr_assert(pb_varint(&p, end, &len) && len <= (uint64_t)(end - p), "family length");
        const unsigned char *fe = p + len;
        while (p < fe) {
            cr_assert(pb_varint(&p, fe, &key));
            if ((key & 7) == 0) {
                cr_assert(pb_varint(&p, fe, &n));
                continue;
            }
            cr_assert_eq(key & 7, 2, "field %llu wire type", (unsigned long long)(key >> 3));
            cr_assert(pb_varint(&p, fe, &n) && n <= (uint64_t)(fe - p));
            if (key >> 3 == 1 && r.families < 8)
                snprintf(r.names[r.families], sizeof r.names[0], "%.*s", (int)n, (const char *)p);
            r.metrics += key >> 3 == 4;
            r.fillers += key >> 3 > 5;
            p += n;
        }
        cr_assert_eq(p, fe, "a field ran past its family");
        r.families++;
    }
    return r;
}

/* n series of one gauge family, labels long enough that their protobuf
 * outgrows a part several times. */
static void ingest_many(pm_core *c, int n, int64_t now)
{
    ot_buf json = OT_BUF_INIT;
    for (int at = 0; at < n; at += 1000) {
        ot_buf_reset(&json);
        ot_buf_puts(&json, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":"
                           "\"many\",\"gauge\":{\"dataPoints\":[");
        for (int i = at; i < at + 1000 && i < n; i++)
            ot_buf_printf(&json, "%s{\"asInt\":\"%d\",\"attributes\":[{\"key\":\"a_fairly_long"
                                 "_attribute_name\",\"value\":{\"stringValue\":\"value-%06d-pad"
                                 "ding-padding-padding\"}}]}",
                          i > at ? "," : "", i, i);
        ot_buf_puts(&json, "]}}]}]}]}");
        ot_buf_putc(&json, 0);
        ingest(c, json.data, now);
    }
    ot_buf_free(&json);
}

/* A protobuf family larger than a part is one MetricFamily (its name once
 * in the exposition), written a part at a time rather than held whole. */
Test(prometheus, protobuf_big_family_is_one_message_in_bounded_parts)
{
    pm_core *c = core();
    ingest_many(c, 20000, 1);
    ingest(c, GPT("a"), 1); /* a small family after it */
    pm_scrape sc;
    cr_assert_eq(pm_render(c, PM_FMT_PROTOBUF, &sc), 0);
    cr_assert_gt(sc.n, 4, "written in parts: %zu", sc.n);
    ot_buf all = OT_BUF_INIT;
    for (size_t i = 0; i < sc.n; i++) {
        cr_expect_lt(sc.parts[i].len, (256u << 10) + (64u << 10), "part %zu: %zu bytes", i,
                     sc.parts[i].len);
        ot_buf_append(&all, sc.parts[i].data, sc.parts[i].len);
    }
    pm_scrape_free(&sc);
    cr_assert_gt(all.len, 1u << 20);
    pb_seen r = pb_read(&all);
    cr_expect_eq(r.families, 3);
    cr_expect_str_eq(r.names[0], "g");
    cr_expect_str_eq(r.names[1], "many");
    cr_expect_str_eq(r.names[2], "target_info");
    cr_expect_eq(r.metrics, 20002);
    cr_expect_eq(r.fillers, 0);
    cr_assert(memmem(all.data, all.len, "value-019999-padding", 20));
    ot_buf_free(&all);
    pm_core_free(c);
}

/* Series that go between the two walks of a big family leave fillers of
 * their first-walk length, so the family's length prefix stays true. */
Test(prometheus, protobuf_big_family_with_series_gone_meanwhile)
{
    pm_core *c = core_with((pm_opts){.suffixes = true, .expiration_ns = 1000});
    ingest_many(c, 20000, 1);
    pm_stream *st = pm_stream_new(c, PM_FMT_PROTOBUF);
    cr_assert(st);
    ot_buf all = OT_BUF_INIT;
    const char *p;
    size_t n;
    cr_assert_eq(pm_stream_next(st, &p, &n), 1);
    ot_buf_append(&all, p, n);
    cr_assert_eq(pm_core_expire(c, 5000), 20000);
    int rc;
    while ((rc = pm_stream_next(st, &p, &n)) > 0)
        ot_buf_append(&all, p, n);
    cr_assert_eq(rc, 0);
    pm_stream_free(st);
    pb_seen r = pb_read(&all);
    cr_expect_eq(r.families, 1);
    cr_expect_gt(r.metrics, 0, "the first part's series");
    cr_expect_lt(r.metrics, 20000);
    cr_expect_eq(r.metrics + r.fillers, 20000, "%d + %d", r.metrics, r.fillers);
    ot_buf_free(&all);
    pm_core_free(c);
}

/* Every filler length comes out exact. */
Test(prometheus, protobuf_filler_lengths)
{
    for (size_t n = 2; n < 20000; n++) {
        ot_buf b = OT_BUF_INIT;
        pm_pb_filler(&b, n);
        cr_assert_eq(b.len, n, "filler of %zu: %zu bytes", n, b.len);
        const unsigned char *p = (const unsigned char *)b.data, *end = p + b.len;
        uint64_t key, len;
        cr_assert(pb_varint(&p, end, &key) && (key & 7) == 2 && key >> 3 > 5);
        cr_assert(pb_varint(&p, end, &len) && len == (uint64_t)(end - p));
        ot_buf_free(&b);
    }
}

/* A scrape is written as it is sent: a series that expires between the
 * first walk and the writing is left out, one that comes in meanwhile
 * waits for the next scrape, and what is written is what one buffer
 * holds. */
Test(prometheus, streamed_scrape_between_its_two_walks)
{
    pm_core *c = core_with((pm_opts){.suffixes = true, .expiration_ns = 1000});
    ingest(c, GPT("a"), 100);
    ingest(c, GPT("b"), 600);
    pm_stream *s = pm_stream_new(c, PM_FMT_TEXT);
    cr_assert(s);
    cr_assert_eq(pm_core_expire(c, 1200), 1); /* a */
    ingest(c, GPT("c"), 1200);
    ot_buf all = OT_BUF_INIT;
    const char *p;
    size_t n;
    int rc;
    while ((rc = pm_stream_next(s, &p, &n)) > 0)
        ot_buf_append(&all, p, n);
    cr_assert_eq(rc, 0);
    pm_stream_free(s);
    ot_buf_putc(&all, 0);
    cr_assert_null(strstr(all.data, "k=\"a\""), "%s", all.data);
    cr_assert(strstr(all.data, "k=\"b\""), "%s", all.data);
    cr_assert_null(strstr(all.data, "k=\"c\""), "%s", all.data);
    char *t = scrape(c, PM_FMT_TEXT);
    cr_assert(strstr(t, "k=\"c\""), "%s", t);
    ot_buf_free(&all);
    pm_core_free(c);
}

/* A gauge and a histogram both named x: one family of one type per scrape
 * (text formats allow no more); the other type's series are left out and
 * counted, and come back once the name is theirs alone. */
Test(prometheus, conflicting_types_under_one_name_are_counted)
{
    pm_core *c = core();
    ingest(c, RES("{\"name\":\"x\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1,"
                  "\"timeUnixNano\":\"5\"}]}},"
                  "{\"name\":\"x\",\"histogram\":{\"aggregationTemporality\":2,\"dataPoints\":[{"
                  "\"count\":\"1\",\"sum\":1,\"bucketCounts\":[\"1\",\"0\"],"
                  "\"explicitBounds\":[1],\"timeUnixNano\":\"5\"}]}}"),
           1);
    char *t = scrape(c, PM_FMT_TEXT);
    bool gauge = strstr(t, "# TYPE x gauge\n") != NULL, hist = strstr(t, "# TYPE x histogram\n");
    cr_expect(gauge != hist, "exactly one type shown:\n%s", t);
    cr_expect_eq(atomic_load(&c->conflicts), 1);
    pm_core_free(c);
    c = core();
    ingest(c, RES("{\"name\":\"x\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1,"
                  "\"timeUnixNano\":\"5\"}]}}"),
           1);
    scrape(c, PM_FMT_TEXT);
    cr_expect_eq(atomic_load(&c->conflicts), 0);
    pm_core_free(c);
}
