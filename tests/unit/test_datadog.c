/* test_datadog.c: the datadog exporter's parts one by one: the msgpack
 * writer against bytes worked out by hand from the MessagePack spec, the
 * DDSketch key mapping and bucket spreading, cumulative-to-delta rules,
 * the series, logs and traces encoders (JSON read back with jansson), and
 * the cutting of items into requests under limits, 413 halving and the
 * 403/429/503 outcomes. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/datadog/dd.h"
#include "base/arena.h"
#include "base/msgpack.h"
#include "otlp_samples.h"

static ot_arena *A;
static ot_counter nan_count;
static dd_opts O;

static void setup(void)
{
    A = ot_arena_new(0);
    atomic_store(&nan_count.v, 0);
    O = (dd_opts){.hostname = "box", .dropped_nan = &nan_count};
}
static void teardown(void) { ot_arena_free(A); }

TestSuite(datadog, .init = setup, .fini = teardown);

/* ---- msgpack ------------------------------------------------------------ */

static void expect_bytes(const ot_buf *b, const uint8_t *want, size_t n)
{
    cr_assert_eq(b->len, n, "length %zu, want %zu", b->len, n);
    cr_assert(memcmp(b->data, want, n) == 0);
}

Test(datadog, msgpack_ints_take_their_shortest_form)
{
    ot_buf b = OT_BUF_INIT;
    ot_mp_uint(&b, 0);
    ot_mp_uint(&b, 127);
    ot_mp_uint(&b, 128);
    ot_mp_uint(&b, 256);
    ot_mp_uint(&b, 65536);
    ot_mp_uint(&b, 1ull << 32);
    ot_mp_int(&b, -1);
    ot_mp_int(&b, -32);
    ot_mp_int(&b, -33);
    ot_mp_int(&b, -129);
    ot_mp_int(&b, -40000);
    ot_mp_int(&b, INT64_MIN);
    const uint8_t want[] = {0x00, 0x7f, 0xcc, 0x80, 0xcd, 0x01, 0x00, 0xce, 0x00, 0x01, 0x00,
                            0x00, 0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xff,
                            0xe0, 0xd0, 0xdf, 0xd1, 0xff, 0x7f, 0xd2, 0xff, 0xff, 0x63, 0xc0,
                            0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
    expect_bytes(&b, want, sizeof want);
    ot_buf_free(&b);
}

Test(datadog, msgpack_strings_containers_and_floats)
{
    ot_buf b = OT_BUF_INIT;
    ot_mp_cstr(&b, "abc");
    char s32[32];
    memset(s32, 'x', sizeof s32);
    ot_mp_str(&b, s32, 32);
    ot_mp_array(&b, 3);
    ot_mp_array(&b, 16);
    ot_mp_map(&b, 2);
    ot_mp_map(&b, 70000);
    ot_mp_double(&b, 1.5);
    ot_mp_bool(&b, true);
    ot_mp_nil(&b);
    size_t at = ot_mp_map32(&b);
    ot_mp_patch32(&b, at, 0x01020304);
    uint8_t want[4 + 2 + 32 + 1 + 3 + 1 + 5 + 9 + 1 + 1 + 5], *w = want;
    memcpy(w, "\xa3" "abc", 4), w += 4;
    *w++ = 0xd9, *w++ = 32;
    memset(w, 'x', 32), w += 32;
    *w++ = 0x93;
    *w++ = 0xdc, *w++ = 0, *w++ = 16;
    *w++ = 0x82;
    *w++ = 0xdf, *w++ = 0, *w++ = 1, *w++ = 0x11, *w++ = 0x70;
    memcpy(w, "\xcb\x3f\xf8\0\0\0\0\0\0", 9), w += 9;
    *w++ = 0xc3;
    *w++ = 0xc0;
    memcpy(w, "\xdf\x01\x02\x03\x04", 5), w += 5;
    expect_bytes(&b, want, (size_t)(w - want));
    ot_buf_free(&b);
}

/* ---- DDSketch ------------------------------------------------------------- */

Test(datadog, sketch_keys_bracket_their_values)
{
    cr_assert_eq(dd_sketch_key(0), 0);
    cr_assert_eq(dd_sketch_key(1e-10), 0);
    cr_assert_eq(dd_sketch_key(1e-9), 1, "the smallest value has key 1");
    double gamma = 1 + 2.0 / 128;
    int prev = 0;
    for (double v = 1e-8; v < 1e12; v *= 1.37) {
        int16_t k = dd_sketch_key(v);
        cr_assert_geq(k, prev, "keys grow with values");
        prev = k;
        double lo = dd_sketch_lower(k);
        cr_assert(lo <= v * (1 + 1e-12) && v < lo * gamma * (1 + 1e-12), "v=%g k=%d lo=%g", v, k,
                  lo);
        cr_assert_eq(dd_sketch_key(-v), -k);
    }
    cr_assert_eq(dd_sketch_key(INFINITY), 32767);
}

Test(datadog, sketch_from_histogram_keeps_counts_and_places_them)
{
    ot_histogram_point p = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    double bounds[] = {10, 20};
    uint64_t counts[] = {10, 40, 50};
    p.explicit_bounds = bounds;
    p.n_explicit_bounds = 2;
    p.bucket_counts = counts;
    p.n_bucket_counts = 3;
    p.count = 100;
    p.sum = 2500;
    p.sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
    p.min = 1;
    p.min_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
    p.max = 100;
    p.max_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
    dd_sketch s = {0};
    cr_assert_eq(dd_sketch_from_hist(&s, &p), 0);
    uint64_t total = 0;
    for (size_t i = 0; i < s.nbins; i++) {
        total += s.n[i];
        if (i)
            cr_assert_gt(s.k[i], s.k[i - 1], "sorted, one entry per key");
    }
    cr_assert_eq(total, 100);
    cr_assert_eq(s.cnt, 100);
    cr_assert_eq(s.min, 1);
    cr_assert_eq(s.max, 100);
    double q05 = dd_sketch_quantile(&s, 0.05), q30 = dd_sketch_quantile(&s, 0.3),
           q80 = dd_sketch_quantile(&s, 0.8);
    cr_assert(q05 >= 1 && q05 <= 10.1, "%g", q05);
    cr_assert(q30 >= 10 && q30 <= 20.2, "%g", q30);
    cr_assert(q80 >= 20 && q80 <= 100, "%g", q80);
    /* spread over the keys in proportion: the (20, 100] bucket's median
     * is near 60 on a linear spread */
    double q75 = dd_sketch_quantile(&s, 0.75);
    cr_assert(q75 > 45 && q75 < 75, "%g", q75);
    dd_sketch_free(&s);
}

Test(datadog, sketch_bins_are_capped_at_4096)
{
    dd_sketch s = {0};
    cr_assert_eq(dd_sketch_add_range(&s, 1e-9, 1e300, 10000000), 0);
    cr_assert_eq(dd_sketch_finish(&s), 0);
    cr_assert_leq(s.nbins, 4096);
    uint64_t total = 0;
    for (size_t i = 0; i < s.nbins; i++)
        total += s.n[i];
    cr_assert_eq(total, 10000000);
    dd_sketch_free(&s);
}

Test(datadog, sketch_from_exponential_histogram)
{
    ot_exphistogram_point p = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets pos =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT,
        neg = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    uint64_t pc[] = {3}, nc[] = {2};
    pos.offset = 4; /* scale 0: (16, 32] */
    pos.bucket_counts = pc;
    pos.n_bucket_counts = 1;
    neg.offset = 1; /* (-4, -2] */
    neg.bucket_counts = nc;
    neg.n_bucket_counts = 1;
    p.positive = &pos;
    p.negative = &neg;
    p.zero_count = 1;
    p.count = 6;
    dd_sketch s = {0};
    cr_assert_eq(dd_sketch_from_exphist(&s, &p), 0);
    uint64_t at0 = 0, neg_n = 0, pos_n = 0;
    for (size_t i = 0; i < s.nbins; i++) {
        if (s.k[i] == 0)
            at0 += s.n[i];
        else if (s.k[i] < 0) {
            neg_n += s.n[i];
            double v = dd_sketch_lower((int16_t)-s.k[i]); /* |value| */
            cr_assert(v >= 2 * 0.99 && v <= 4 * 1.01, "%g", v);
        } else {
            pos_n += s.n[i];
            double v = dd_sketch_lower(s.k[i]);
            cr_assert(v >= 16 * 0.99 && v <= 32, "%g", v);
        }
    }
    cr_assert_eq(at0, 1);
    cr_assert_eq(neg_n, 2);
    cr_assert_eq(pos_n, 3);
    dd_sketch_free(&s);
}

/* ---- cumulative to delta ------------------------------------------------ */

static ot_metrics_req *sum_req(const char *name, int temporality, bool mono, double v,
                               uint64_t start, uint64_t t)
{
    ot_metrics_req *r = ot_arena_calloc(A, sizeof *r);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(r);
    ot_resource_metrics *rm = ot_arena_calloc(A, sizeof *rm);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    ot_scope_metrics *sm = ot_arena_calloc(A, sizeof *sm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    ot_metric *m = ot_arena_calloc(A, sizeof *m);
    opentelemetry__proto__metrics__v1__metric__init(m);
    Opentelemetry__Proto__Metrics__V1__Sum *s = ot_arena_calloc(A, sizeof *s);
    opentelemetry__proto__metrics__v1__sum__init(s);
    ot_number_point *p = ot_arena_calloc(A, sizeof *p);
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    p->start_time_unix_nano = start;
    p->time_unix_nano = t;
    s->aggregation_temporality = temporality;
    s->is_monotonic = mono;
    s->n_data_points = 1;
    s->data_points = ot_arena_calloc(A, sizeof *s->data_points);
    s->data_points[0] = p;
    m->name = (char *)name;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = s;
    sm->n_metrics = 1;
    sm->metrics = ot_arena_calloc(A, sizeof *sm->metrics);
    sm->metrics[0] = m;
    rm->n_scope_metrics = 1;
    rm->scope_metrics = ot_arena_calloc(A, sizeof *rm->scope_metrics);
    rm->scope_metrics[0] = sm;
    r->n_resource_metrics = 1;
    r->resource_metrics = ot_arena_calloc(A, sizeof *r->resource_metrics);
    r->resource_metrics[0] = rm;
    return r;
}

static double only_value(const ot_metrics_req *r, long left)
{
    cr_assert_eq(left, 1);
    cr_assert_eq(r->resource_metrics[0]->scope_metrics[0]->n_metrics, 1);
    const ot_metric *m = r->resource_metrics[0]->scope_metrics[0]->metrics[0];
    cr_assert_eq(m->sum->aggregation_temporality,
                 OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA);
    return m->sum->data_points[0]->as_double;
}

#define CUM 2
#define SEC 1000000000ull

Test(datadog, cumulative_sums_become_deltas)
{
    ot_err err = {{0}};
    dd_delta *d = dd_delta_new(100, 0, 0, &err);
    cr_assert(d, "%s", err.msg);
    uint64_t old = 1000 * SEC; /* long before the exporter started */
    ot_metrics_req *r = sum_req("c", CUM, true, 100, old, 2000 * SEC);
    cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0), 0, "the first point is a base");
    cr_assert_eq(r->resource_metrics[0]->scope_metrics[0]->n_metrics, 0, "empty metric removed");
    r = sum_req("c", CUM, true, 130, old, 2010 * SEC);
    cr_assert_eq(only_value(r, dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0)), 30);
    cr_assert_eq(r->resource_metrics[0]->scope_metrics[0]->metrics[0]->sum->data_points[0]
                     ->start_time_unix_nano,
                 2000 * SEC, "the delta covers the time since the previous point");
    /* the same point again (a repeat) sends nothing */
    r = sum_req("c", CUM, true, 130, old, 2010 * SEC);
    cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0), 0);
    /* restarted: a new start time, the value counts from there */
    r = sum_req("c", CUM, true, 5, 2015 * SEC, 2020 * SEC);
    cr_assert_eq(only_value(r, dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0)), 5);
    r = sum_req("c", CUM, true, 12, 2015 * SEC, 2030 * SEC);
    cr_assert_eq(only_value(r, dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0)), 7);
    /* went down without a new start: a new base, not sent */
    r = sum_req("c", CUM, true, 3, 2015 * SEC, 2040 * SEC);
    cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0), 0);
    r = sum_req("c", CUM, true, 4, 2015 * SEC, 2050 * SEC);
    cr_assert_eq(only_value(r, dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0)), 1);
    /* other streams are their own */
    r = sum_req("other", CUM, true, 50, old, 2050 * SEC);
    cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0), 0);
    dd_delta_free(d);
}

Test(datadog, what_delta_leaves_alone)
{
    ot_err err = {{0}};
    dd_delta *d = dd_delta_new(100, 0, 0, &err);
    ot_metrics_req *r = sum_req("raw", CUM, true, 100, SEC, 2000 * SEC);
    cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_RAW, 0), 1);
    cr_assert_eq(r->resource_metrics[0]->scope_metrics[0]->metrics[0]->sum->data_points[0]->as_double,
                 100);
    r = sum_req("updown", CUM, false, -3, SEC, 2000 * SEC);
    cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0), 1);
    r = sum_req("delta", 1, true, 9, SEC, 2000 * SEC);
    cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0), 1);
    /* a stream that started after the exporter: its first value is new */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
    r = sum_req("young", CUM, true, 11, now + 1, now + 2);
    cr_assert_eq(only_value(r, dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0)), 11);
    dd_delta_free(d);
}

/* ---- encoders ---------------------------------------------------------------- */

static json_t *item_json(const dd_items *it, size_t i)
{
    size_t s = dd_item_start(it, i);
    json_error_t e;
    json_t *j = json_loadb(it->data.data + s, it->end[i] - s, 0, &e);
    cr_assert(j, "item %zu is not JSON: %s: %.*s", i, e.text, (int)(it->end[i] - s),
              it->data.data + s);
    return j;
}

Test(datadog, series_items_are_json_with_host_and_tags)
{
    ot_metrics_req *r = sum_req("req", 1, true, 7, 10 * SEC, 20 * SEC);
    ot_resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    ot_keyvalue kv[3], *kvp[3];
    ot_anyvalue v[3];
    const char *keys[] = {"host.name", "service.name", "team"}, *vals[] = {"h1", "svc", "a\"b"};
    for (int i = 0; i < 3; i++) {
        opentelemetry__proto__common__v1__key_value__init(&kv[i]);
        opentelemetry__proto__common__v1__any_value__init(&v[i]);
        v[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v[i].string_value = (char *)vals[i];
        kv[i].key = (char *)keys[i];
        kv[i].value = &v[i];
        kvp[i] = &kv[i];
    }
    res.attributes = kvp;
    res.n_attributes = 3;
    r->resource_metrics[0]->resource = &res;
    dd_items se = {0}, sk = {0};
    ot_err err = {{0}};
    cr_assert_eq(dd_series_encode(r, &O, &se, &sk, A, &err), 0);
    cr_assert_eq(se.n, 1);
    json_t *j = item_json(&se, 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "metric")), "req");
    cr_assert_eq(json_integer_value(json_object_get(j, "type")), 1);
    json_t *pt = json_array_get(json_object_get(j, "points"), 0);
    cr_assert_eq(json_integer_value(json_object_get(pt, "timestamp")), 20);
    cr_assert_eq(json_number_value(json_object_get(pt, "value")), 7);
    cr_assert_eq(json_integer_value(json_object_get(j, "interval")), 10);
    json_t *host = json_array_get(json_object_get(j, "resources"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(host, "name")), "h1");
    json_t *tags = json_object_get(j, "tags");
    cr_assert_eq(json_array_size(tags), 2);
    cr_assert_str_eq(json_string_value(json_array_get(tags, 0)), "service:svc");
    cr_assert_str_eq(json_string_value(json_array_get(tags, 1)), "team:a\"b");
    json_decref(j);
    /* the framed body is one JSON document */
    ot_buf body = OT_BUF_INIT;
    cr_assert_eq(dd_frame(DD_SERIES, &se, 0, se.n, &body), 0);
    json_error_t e;
    json_t *doc = json_loadb(body.data, body.len, 0, &e);
    cr_assert(doc && json_array_size(json_object_get(doc, "series")) == 1);
    json_decref(doc);
    ot_buf_free(&body);
    dd_items_free(&se);
    dd_items_free(&sk);
}

Test(datadog, every_sample_metric_kind_encodes)
{
    ot_metrics_req *r = ot_sample_metrics(A, 64, 3);
    dd_items se = {0}, sk = {0};
    ot_err err = {{0}};
    for (int mode = 0; mode < 3; mode++) {
        dd_items_reset(&se);
        dd_items_reset(&sk);
        O.hist_mode = mode;
        cr_assert_eq(dd_series_encode(r, &O, &se, &sk, A, &err), 0);
        cr_assert_gt(se.n, 0);
        for (size_t i = 0; i < se.n; i++)
            json_decref(item_json(&se, i));
        if (mode == DD_HIST_DISTRIBUTIONS)
            cr_assert_gt(sk.n, 0);
    }
    dd_items_free(&se);
    dd_items_free(&sk);
}

Test(datadog, logs_map_severity_ids_and_cut_big_messages)
{
    ot_logs_req *r = ot_sample_logs(A, 16, 3);
    dd_items it = {0};
    ot_err err = {{0}};
    cr_assert_eq(dd_logs_encode(r, &O, &it, &err), 0);
    cr_assert_eq(it.n, 16);
    const ot_log_record *lr = r->resource_logs[0]->scope_logs[0]->log_records[0];
    for (size_t i = 0; i < it.n; i++)
        json_decref(item_json(&it, i));
    /* a 3 MB body */
    ot_log_record *big = r->resource_logs[0]->scope_logs[0]->log_records[1];
    size_t n = 3u << 20;
    char *s = ot_arena_alloc(A, n + 1);
    memset(s, '"', n); /* escaped, each becomes two bytes */
    s[n] = '\0';
    ot_anyvalue *body = ot_arena_calloc(A, sizeof *body);
    opentelemetry__proto__common__v1__any_value__init(body);
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body->string_value = s;
    big->body = body;
    dd_items_reset(&it);
    cr_assert_eq(dd_logs_encode(r, &O, &it, &err), 0);
    size_t len = it.end[1] - it.end[0];
    cr_assert_leq(len, DD_LOG_MAX_BYTES);
    cr_assert_gt(len, DD_LOG_MAX_BYTES / 16);
    json_t *j = item_json(&it, 1);
    cr_assert(json_string_length(json_object_get(j, "message")) > 0);
    json_decref(j);
    j = item_json(&it, 0);
    if (lr->trace_id.len == 16) {
        char want[32];
        snprintf(want, sizeof want, "%llu", (unsigned long long)dd_id64(&lr->trace_id, false));
        cr_assert_str_eq(json_string_value(json_object_get(j, "dd.trace_id")), want);
    }
    cr_assert(json_string_value(json_object_get(j, "status")));
    json_decref(j);
    dd_items_free(&it);
}

Test(datadog, log_status_follows_severity_ranges)
{
    static const struct { int sev; const char *want; } cases[] = {
        {1, "trace"}, {5, "debug"}, {9, "info"}, {12, "info"}, {13, "warn"},
        {17, "error"}, {21, "fatal"}, {24, "fatal"}, {0, "info"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ot_logs_req *r = ot_sample_logs(A, 1, 0);
        ot_log_record *lr = r->resource_logs[0]->scope_logs[0]->log_records[0];
        lr->severity_number = cases[c].sev;
        lr->severity_text = (char *)"";
        dd_items it = {0};
        ot_err err = {{0}};
        cr_assert_eq(dd_logs_encode(r, &O, &it, &err), 0);
        json_t *j = item_json(&it, 0);
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")), cases[c].want,
                         "severity %d", cases[c].sev);
        json_decref(j);
        dd_items_free(&it);
    }
}

Test(datadog, spans_are_grouped_by_trace)
{
    ot_trace_req *r = ot_sample_traces(A, 40, 4);
    dd_items it = {0};
    ot_err err = {{0}};
    cr_assert_eq(dd_traces_encode(r, &O, &it, A, &err), 0);
    cr_assert_eq(it.points, 40);
    cr_assert_geq(it.n, 10, "traces of up to 4 spans");
    for (size_t i = 0; i < it.n; i++) {
        uint8_t h = (uint8_t)it.data.data[dd_item_start(&it, i)];
        cr_assert(h >= 0x91 && h <= 0x94, "each item is an array of 1-4 spans, not 0x%02x", h);
    }
    dd_items_free(&it);
}

/* ---- requests ---------------------------------------------------------------- */

typedef struct fake {
    int refuse_over;  /* 413 for more items than this (0: never) */
    int status;       /* answer otherwise */
    size_t calls, items;
    size_t sizes[64];
} fake;

static void fake_post(void *ctx, dd_kind k, const uint8_t *body, size_t len,
                      ot_compression coding, size_t items, dd_post_result *r)
{
    fake *f = ctx;
    if (f->calls < 64)
        f->sizes[f->calls] = items;
    f->calls++;
    if (f->refuse_over && items > (size_t)f->refuse_over) {
        r->status = 413;
        return;
    }
    r->status = f->status;
    if (f->status == 503)
        r->retry_after_ns = 2000000000;
    if (r->status == 202)
        f->items += items;
}

/* n items of len letters that do not compress much (an LCG's). */
static void fill(dd_items *it, size_t n, size_t len)
{
    dd_items_reset(it);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < len; j++) {
            x = x * 1103515245u + 12345u;
            ot_buf_putc(&it->data, (char)('a' + (x >> 16) % 26));
        }
        dd_items_close(it);
    }
}

Test(datadog, items_are_cut_by_count_and_size)
{
    dd_items it = {0};
    ot_buf body = OT_BUF_INIT;
    ot_compressor comp = {0};
    fill(&it, 2500, 10);
    fake f = {.status = 202};
    ot_send_result out = {0};
    dd_send_stats st = {0};
    dd_send_items(DD_LOGS, &it, &dd_default_limits[DD_LOGS], OT_COMPRESS_NONE, &comp, &body,
                  fake_post, &f, &out, &st);
    cr_assert_eq(out.status, OT_OK);
    cr_assert_eq(f.calls, 3);
    cr_assert_eq(f.sizes[0], 1000);
    cr_assert_eq(f.sizes[2], 500);
    cr_assert_eq(f.items, 2500);
    /* by raw size: 100 items of 100 bytes under 1000 bytes a request */
    fill(&it, 100, 100);
    dd_limits lim = {.max_raw = 1000};
    f = (fake){.status = 202};
    dd_send_items(DD_LOGS, &it, &lim, OT_COMPRESS_NONE, &comp, &body, fake_post, &f, &out, &st);
    cr_assert_eq(f.items, 100);
    cr_assert_eq(f.calls, 100 / 9 + 1, "9 items of 100 bytes and their commas fit");
    /* by compressed size: halved until each fits */
    dd_limits clim = {.max_raw = 1u << 20, .max_compressed = 300};
    f = (fake){.status = 202};
    memset(&st, 0, sizeof st);
    dd_send_items(DD_SERIES, &it, &clim, OT_COMPRESS_GZIP, &comp, &body, fake_post, &f, &out, &st);
    cr_assert_eq(f.items, 100);
    cr_assert_gt(st.splits, 0);
    ot_buf_free(&body);
    ot_compressor_free(&comp);
    dd_items_free(&it);
}

Test(datadog, a_413_halves_until_the_intake_takes_it)
{
    dd_items it = {0};
    ot_buf body = OT_BUF_INIT;
    ot_compressor comp = {0};
    fill(&it, 10, 5);
    fake f = {.status = 202, .refuse_over = 3};
    ot_send_result out = {0};
    dd_send_stats st = {0};
    dd_send_items(DD_SERIES, &it, &dd_default_limits[DD_SERIES], OT_COMPRESS_NONE, &comp, &body,
                  fake_post, &f, &out, &st);
    cr_assert_eq(out.status, OT_OK);
    cr_assert_eq(f.items, 10, "every item, once");
    cr_assert_geq(st.splits, 3);
    /* one item refused on its own is dropped, the rest still go */
    f = (fake){.status = 202, .refuse_over = -1};
    f.refuse_over = 0;
    fill(&it, 3, 5);
    fake g = {.status = 413};
    memset(&st, 0, sizeof st);
    dd_send_items(DD_SERIES, &it, &dd_default_limits[DD_SERIES], OT_COMPRESS_NONE, &comp, &body,
                  fake_post, &g, &out, &st);
    cr_assert_eq(out.status, OT_OK);
    cr_assert_eq(st.dropped_items, 3);
    ot_buf_free(&body);
    ot_compressor_free(&comp);
    dd_items_free(&it);
}

Test(datadog, answers_403_429_503_and_400)
{
    dd_items it = {0};
    ot_buf body = OT_BUF_INIT;
    ot_compressor comp = {0};
    fill(&it, 5, 5);
    struct { int status; ot_status want; } cases[] = {
        {403, OT_PERMANENT}, {429, OT_RETRYABLE}, {503, OT_RETRYABLE}, {400, OT_PERMANENT},
        {408, OT_RETRYABLE}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        fake f = {.status = cases[c].status};
        ot_send_result out = {0};
        dd_send_stats st = {0};
        dd_send_items(DD_LOGS, &it, &dd_default_limits[DD_LOGS], OT_COMPRESS_NONE, &comp, &body,
                      fake_post, &f, &out, &st);
        cr_assert_eq(out.status, cases[c].want, "status %d", cases[c].status);
        cr_assert_eq(f.calls, 1, "no halving or retry inside for %d", cases[c].status);
        if (cases[c].status == 403)
            cr_assert(strstr(out.msg, "API key"), "%s", out.msg);
        if (cases[c].status == 503)
            cr_assert_eq(out.retry_after_ns, 2000000000);
    }
    ot_buf_free(&body);
    ot_compressor_free(&comp);
    dd_items_free(&it);
}

/* ---- the bytes path gives the same items as the decoded one ------------ */

static void same_items(ot_signal s, size_t n, size_t attrs)
{
    ot_arena *ra = ot_arena_new(0);
    ProtobufCMessage *req = ot_sample_request(ra, s, n, attrs);
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *wire = malloc(len);
    protobuf_c_message_pack(req, wire);
    dd_items a = {0}, b = {0}, c = {0}, d = {0};
    ot_arena *keep = ot_arena_new(0), *chunk = ot_arena_new(0);
    ot_err err = {{0}};
    int r1, r2;
    if (s == OT_TRACES) {
        r1 = dd_traces_encode((ot_trace_req *)req, &O, &a, A, &err);
        r2 = dd_traces_encode_wire(wire, len, &O, &c, keep, chunk, &err);
    } else if (s == OT_LOGS) {
        r1 = dd_logs_encode((ot_logs_req *)req, &O, &a, &err);
        r2 = dd_logs_encode_wire(wire, len, &O, &c, keep, chunk, &err);
    } else {
        r1 = dd_series_encode((ot_metrics_req *)req, &O, &a, &b, A, &err);
        r2 = dd_series_encode_wire(wire, len, &O, &c, &d, keep, chunk, &err);
    }
    cr_assert_eq(r1, 0);
    cr_assert_eq(r2, 0, "%s", err.msg);
    cr_assert_eq(a.n, c.n);
    cr_assert_gt(a.n, 0);
    cr_assert_eq(a.data.len, c.data.len);
    cr_assert(memcmp(a.data.data, c.data.data, a.data.len) == 0);
    cr_assert_eq(b.data.len, d.data.len);
    if (b.data.len)
        cr_assert(memcmp(b.data.data, d.data.data, b.data.len) == 0);
    dd_items_free(&a);
    dd_items_free(&b);
    dd_items_free(&c);
    dd_items_free(&d);
    ot_arena_free(keep);
    ot_arena_free(chunk);
    ot_arena_free(ra);
    free(wire);
}

Test(datadog, bytes_path_matches_decoded_path)
{
    same_items(OT_TRACES, 300, 6);
    same_items(OT_METRICS, 200, 4);
    same_items(OT_LOGS, 100, 5);
    ot_arena *ra = ot_arena_new(0);
    ot_trace_req *rich = ot_sample_traces_rich(ra);
    size_t len = protobuf_c_message_get_packed_size(&rich->base);
    uint8_t *wire = malloc(len);
    protobuf_c_message_pack(&rich->base, wire);
    dd_items a = {0}, c = {0};
    ot_arena *keep = ot_arena_new(0), *chunk = ot_arena_new(0);
    ot_err err = {{0}};
    cr_assert_eq(dd_traces_encode(rich, &O, &a, A, &err), 0);
    cr_assert_eq(dd_traces_encode_wire(wire, len, &O, &c, keep, chunk, &err), 0);
    cr_assert_eq(a.data.len, c.data.len);
    cr_assert(memcmp(a.data.data, c.data.data, a.data.len) == 0);
    dd_items_free(&a);
    dd_items_free(&c);
    ot_arena_free(keep);
    ot_arena_free(chunk);
    ot_arena_free(ra);
    free(wire);
}

Test(datadog, a_resource_written_twice_is_left_to_the_decoder)
{
    /* ExportLogsServiceRequest{resource_logs{resource{}, resource{}}} */
    const uint8_t wire[] = {0x0a, 0x04, 0x0a, 0x00, 0x0a, 0x00};
    dd_items it = {0};
    ot_arena *keep = ot_arena_new(0), *chunk = ot_arena_new(0);
    ot_err err = {{0}};
    cr_assert_eq(dd_logs_encode_wire(wire, sizeof wire, &O, &it, keep, chunk, &err), 1);
    cr_assert_eq(it.n, 0);
    dd_items_free(&it);
    ot_arena_free(keep);
    ot_arena_free(chunk);
}

Test(datadog, deltas_from_bytes_match_deltas_from_structs)
{
    ot_err err = {{0}};
    dd_delta *d1 = dd_delta_new(10000, 0, 0, &err), *d2 = dd_delta_new(10000, 0, 0, &err);
    for (int round = 0; round < 3; round++) {
        ot_arena *ra = ot_arena_new(0);
        ot_metrics_req *req = ot_sample_metrics(ra, 200, 3);
        /* a later interval of the same streams */
        for (size_t r = 0; r < req->n_resource_metrics; r++)
            for (size_t s = 0; s < req->resource_metrics[r]->n_scope_metrics; s++) {
                ot_scope_metrics *sm = req->resource_metrics[r]->scope_metrics[s];
                for (size_t i = 0; i < sm->n_metrics; i++)
                    if (sm->metrics[i]->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM)
                        for (size_t p = 0; p < sm->metrics[i]->sum->n_data_points; p++) {
                            ot_number_point *pt = sm->metrics[i]->sum->data_points[p];
                            pt->time_unix_nano += (uint64_t)round * 10 * SEC;
                            pt->as_int += round * 5;
                            pt->as_double += round * 2.5;
                        }
            }
        size_t len = protobuf_c_message_get_packed_size(&req->base);
        uint8_t *wire = malloc(len);
        protobuf_c_message_pack(&req->base, wire);
        ot_buf out = OT_BUF_INIT;
        size_t points = 0;
        ot_arena *scratch = ot_arena_new(0);
        cr_assert_eq(dd_delta_apply_wire(d1, wire, len, DD_SUMS_TO_DELTA, 0, scratch, &out, &points,
                                         &err), 0, "%s", err.msg);
        long left = dd_delta_apply(d2, req, DD_SUMS_TO_DELTA, 0);
        cr_assert_eq((long)points, left, "round %d", round);
        /* the same request, as the decoded pass left it */
        ot_arena *da = ot_arena_new(0);
        ot_metrics_req *back = (ot_metrics_req *)protobuf_c_message_unpack(
            ot_signal_request_desc(OT_METRICS), ot_arena_pb_allocator(da), out.len,
            (const uint8_t *)out.data);
        cr_assert(back);
        dd_items a = {0}, b = {0}, c = {0}, e = {0};
        O.now_s = 1;
        cr_assert_eq(dd_series_encode(back, &O, &a, &b, A, &err), 0);
        cr_assert_eq(dd_series_encode(req, &O, &c, &e, A, &err), 0);
        cr_assert_eq(a.data.len, c.data.len, "round %d", round);
        cr_assert(a.data.len == 0 || memcmp(a.data.data, c.data.data, a.data.len) == 0);
        cr_assert_eq(b.data.len, e.data.len);
        dd_items_free(&a);
        dd_items_free(&b);
        dd_items_free(&c);
        dd_items_free(&e);
        ot_buf_free(&out);
        ot_arena_free(scratch);
        ot_arena_free(da);
        ot_arena_free(ra);
        free(wire);
    }
    dd_delta_free(d1);
    dd_delta_free(d2);
}

/* ---- cutting a request into pieces -------------------------------------- */

typedef struct pieces {
    ot_signal s;
    size_t n, items, walked;
    int bad;
} pieces;

static int got_piece(void *ctx, const uint8_t *req, size_t len, size_t items)
{
    pieces *p = ctx;
    ot_arena *a = ot_arena_new(0);
    ProtobufCMessage *m = protobuf_c_message_unpack(ot_signal_request_desc(p->s),
                                                    ot_arena_pb_allocator(a), len, req);
    if (!m || ot_count_items(p->s, m) != items)
        p->bad++;
    if (m)
        p->walked += ot_count_items(p->s, m);
    p->n++;
    p->items += items;
    ot_arena_free(a);
    return 0;
}

Test(datadog, requests_are_cut_into_pieces_that_keep_every_item)
{
    for (int s = 0; s < 3; s++) {
        ot_arena *ra = ot_arena_new(0);
        ProtobufCMessage *req = ot_sample_request(ra, (ot_signal)s, 2500, 4);
        size_t len = protobuf_c_message_get_packed_size(req);
        uint8_t *wire = malloc(len);
        protobuf_c_message_pack(req, wire);
        pieces p = {.s = (ot_signal)s};
        ot_err err = {{0}};
        cr_assert_eq(dd_wire_split((ot_signal)s, wire, len, 300, 1u << 20, got_piece, &p, &err), 0);
        size_t want = ot_count_items((ot_signal)s, req);
        cr_assert_eq(p.bad, 0, "signal %d: a piece does not decode or miscounts", s);
        cr_assert_eq(p.items, want, "signal %d", s);
        cr_assert_eq(p.walked, want);
        cr_assert_geq(p.n, s == OT_METRICS ? 2 : 8, "signal %d: %zu pieces", s, p.n);
        /* by bytes */
        p = (pieces){.s = (ot_signal)s};
        cr_assert_eq(dd_wire_split((ot_signal)s, wire, len, SIZE_MAX, len / 5, got_piece, &p, &err), 0);
        cr_assert_eq(p.items, want);
        cr_assert_geq(p.n, 5);
        free(wire);
        ot_arena_free(ra);
    }
}

Test(datadog, streams_over_the_cap_are_counted)
{
    ot_err err = {{0}};
    ot_counter c = {0};
    dd_delta *d = dd_delta_new(2, 0, 0, &err);
    dd_delta_count_refused(d, &c);
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        ot_metrics_req *r = sum_req(names[i], CUM, true, 1, SEC, 2000 * SEC);
        cr_assert_eq(dd_delta_apply(d, r, DD_SUMS_TO_DELTA, 0), 0);
    }
    cr_assert_eq(atomic_load(&c.v), 2, "c and d did not fit");
    dd_delta_free(d);
}
