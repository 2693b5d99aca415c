/* otlp_samples.c: builders for the sample requests of otlp_samples.h.
 * Shared by unit tests and benchmarks; holds no tests itself. Values come
 * from a fixed-seed generator so runs are repeatable. */
#include "otlp_samples.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(rng *r, uint64_t n)
{
    return next(r) % n;
}

static void *must(void *p)
{
    if (!p)
        abort(); /* test helper: out of memory ends the test run */
    return p;
}

static void *new_msg(ot_arena *a, const ProtobufCMessageDescriptor *d)
{
    void *p = must(ot_arena_alloc(a, d->sizeof_message));
    d->message_init(p);
    return p;
}

#define NEW(a, type, desc) ((type *)new_msg((a), &(desc)))
#define ARR(a, n, type) ((type *)must(ot_arena_calloc((a), (n) * sizeof(type) + 1)))

static char *str(ot_arena *a, const char *s)
{
    return must(ot_arena_strdup(a, s));
}

static ProtobufCBinaryData rand_bytes(ot_arena *a, rng *r, size_t n)
{
    ProtobufCBinaryData b;
    b.len = n;
    b.data = must(ot_arena_alloc(a, n));
    for (size_t i = 0; i < n; i++)
        b.data[i] = (uint8_t)next(r);
    return b;
}

/* ---- AnyValue / KeyValue builders ---- */

static ot_anyvalue *av_empty(ot_arena *a)
{
    return NEW(a, ot_anyvalue, opentelemetry__proto__common__v1__any_value__descriptor);
}

static ot_anyvalue *av_str(ot_arena *a, const char *s)
{
    ot_anyvalue *v = av_empty(a);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = str(a, s);
    return v;
}

static ot_anyvalue *av_int(ot_arena *a, int64_t x)
{
    ot_anyvalue *v = av_empty(a);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = x;
    return v;
}

static ot_anyvalue *av_double(ot_arena *a, double x)
{
    ot_anyvalue *v = av_empty(a);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = x;
    return v;
}

static ot_anyvalue *av_bool(ot_arena *a, int x)
{
    ot_anyvalue *v = av_empty(a);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = x;
    return v;
}

static ot_anyvalue *av_bytes(ot_arena *a, const void *p, size_t n)
{
    ot_anyvalue *v = av_empty(a);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v->bytes_value.len = n;
    v->bytes_value.data = n ? must(ot_arena_memdup(a, p, n)) : NULL;
    return v;
}

static ot_anyvalue *av_array(ot_arena *a, size_t n, ot_anyvalue **items)
{
    ot_anyvalue *v = av_empty(a);
    ot_arrayvalue *arr = NEW(a, ot_arrayvalue, opentelemetry__proto__common__v1__array_value__descriptor);
    arr->n_values = n;
    arr->values = ARR(a, n, ot_anyvalue *);
    if (n)
        memcpy(arr->values, items, n * sizeof *items);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = arr;
    return v;
}

static ot_keyvalue *kv(ot_arena *a, const char *key, ot_anyvalue *val)
{
    ot_keyvalue *k = NEW(a, ot_keyvalue, opentelemetry__proto__common__v1__key_value__descriptor);
    k->key = str(a, key);
    k->value = val;
    return k;
}

static ot_anyvalue *av_kvlist(ot_arena *a, size_t n, ot_keyvalue **items)
{
    ot_anyvalue *v = av_empty(a);
    ot_kvlist *l = NEW(a, ot_kvlist, opentelemetry__proto__common__v1__key_value_list__descriptor);
    l->n_values = n;
    l->values = ARR(a, n, ot_keyvalue *);
    if (n)
        memcpy(l->values, items, n * sizeof *items);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = l;
    return v;
}

static ot_keyvalue **kv_list(ot_arena *a, size_t n, ot_keyvalue **items)
{
    ot_keyvalue **l = ARR(a, n, ot_keyvalue *);
    if (n)
        memcpy(l, items, n * sizeof *items);
    return l;
}

static const char *const http_methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *const routes[] = {"/api/v1/users/{id}", "/api/v1/orders", "/checkout",
                                     "/api/v1/cart/{id}/items", "/healthz"};

/* n attributes with realistic keys and mixed value types. */
static ot_keyvalue **attrs(ot_arena *a, rng *r, size_t n)
{
    if (n == 0)
        return NULL;
    ot_keyvalue **l = ARR(a, n, ot_keyvalue *);
    for (size_t i = 0; i < n; i++) {
        char key[48], val[64];
        switch (i % 8) {
        case 0:
            l[i] = kv(a, "http.request.method", av_str(a, http_methods[below(r, 4)]));
            break;
        case 1:
            l[i] = kv(a, "http.response.status_code", av_int(a, below(r, 10) ? 200 : 503));
            break;
        case 2:
            l[i] = kv(a, "http.route", av_str(a, routes[below(r, 5)]));
            break;
        case 3:
            l[i] = kv(a, "server.port", av_int(a, 8080 + (int64_t)below(r, 4)));
            break;
        case 4:
            snprintf(val, sizeof val, "10.42.%u.%u", (unsigned)below(r, 256),
                     (unsigned)below(r, 256));
            l[i] = kv(a, "client.address", av_str(a, val));
            break;
        case 5:
            l[i] = kv(a, "sampler.ratio", av_double(a, (double)(below(r, 1000) + 1) / 1000.0));
            break;
        case 6:
            l[i] = kv(a, "cache.hit", av_bool(a, (int)below(r, 2)));
            break;
        default:
            snprintf(key, sizeof key, "app.attr_%zu", i);
            snprintf(val, sizeof val, "value-%016llx", (unsigned long long)next(r));
            l[i] = kv(a, key, av_str(a, val));
            break;
        }
    }
    return l;
}

static ot_resource *resource(ot_arena *a, const char *service, const char *pod)
{
    ot_resource *res = NEW(a, ot_resource, opentelemetry__proto__resource__v1__resource__descriptor);
    ot_keyvalue *items[] = {
        kv(a, "service.name", av_str(a, service)),
        kv(a, "service.version", av_str(a, "1.4.2")),
        kv(a, "deployment.environment.name", av_str(a, "production")),
        kv(a, "host.name", av_str(a, "node-7.eu-west-1.compute.internal")),
        kv(a, "k8s.pod.name", av_str(a, pod)),
        kv(a, "telemetry.sdk.language", av_str(a, "go")),
        kv(a, "telemetry.sdk.version", av_str(a, "1.28.0")),
    };
    res->n_attributes = sizeof items / sizeof items[0];
    res->attributes = kv_list(a, res->n_attributes, items);
    return res;
}

static ot_scope *scope(ot_arena *a, const char *name)
{
    ot_scope *s = NEW(a, ot_scope, opentelemetry__proto__common__v1__instrumentation_scope__descriptor);
    s->name = str(a, name);
    s->version = str(a, "0.52.0");
    return s;
}

#define T0 1700000000000000000ULL /* 2023-11-14T22:13:20Z */

/* ---------------------------------------------------------------- traces */

static const char *const span_names[] = {"GET /api/v1/users/{id}", "SELECT orders", "POST /checkout",
                                         "redis GET", "publish order.created",
                                         "HTTP GET inventory"};

ot_trace_req *ot_sample_traces(ot_arena *a, size_t n_spans, size_t n_attrs)
{
    rng r = {0x9E3779B97F4A7C15ULL};
    ot_trace_req *req = NEW(a, ot_trace_req,
                            opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor);
    ot_resource_spans *rs = NEW(a, ot_resource_spans, opentelemetry__proto__trace__v1__resource_spans__descriptor);
    ot_scope_spans *ss = NEW(a, ot_scope_spans, opentelemetry__proto__trace__v1__scope_spans__descriptor);
    req->n_resource_spans = 1;
    req->resource_spans = ARR(a, 1, ot_resource_spans *);
    req->resource_spans[0] = rs;
    rs->resource = resource(a, "checkout", "checkout-7d9f8b6c5-x2x4q");
    rs->schema_url = str(a, "https://opentelemetry.io/schemas/1.26.0");
    rs->n_scope_spans = 1;
    rs->scope_spans = ARR(a, 1, ot_scope_spans *);
    rs->scope_spans[0] = ss;
    ss->scope = scope(a, "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
    ss->n_spans = n_spans;
    ss->spans = ARR(a, n_spans, ot_span *);

    ProtobufCBinaryData trace_id = {0, NULL}, prev_trace = {0, NULL}, parent = {0, NULL};
    for (size_t i = 0; i < n_spans; i++) {
        ot_span *sp = NEW(a, ot_span, opentelemetry__proto__trace__v1__span__descriptor);
        ss->spans[i] = sp;
        if (i % 4 == 0) {
            prev_trace = trace_id;
            trace_id = rand_bytes(a, &r, 16);
            parent.len = 0;
            parent.data = NULL;
        }
        sp->trace_id = trace_id;
        sp->span_id = rand_bytes(a, &r, 8);
        sp->parent_span_id = parent;
        parent = sp->span_id;
        sp->name = str(a, span_names[i % 6]);
        sp->kind = i % 4 == 0 ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
                              : (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(1 + i % 5);
        sp->start_time_unix_nano = T0 + i * 1000000ULL + below(&r, 1000);
        sp->end_time_unix_nano = sp->start_time_unix_nano + 50000 + below(&r, 200000000);
        sp->flags = 0x101;
        sp->n_attributes = n_attrs;
        sp->attributes = attrs(a, &r, n_attrs);
        sp->status = NEW(a, ot_span_status, opentelemetry__proto__trace__v1__status__descriptor);
        if (i % 10 == 9) {
            sp->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            sp->status->message = str(a, "upstream connect error or disconnect/reset before headers");
        }
        if (i % 5 == 4) {
            ot_span_event *ev = NEW(a, ot_span_event, opentelemetry__proto__trace__v1__span__event__descriptor);
            ev->name = str(a, "exception");
            ev->time_unix_nano = sp->start_time_unix_nano + 1000;
            ot_keyvalue *items[] = {
                kv(a, "exception.type", av_str(a, "java.net.SocketTimeoutException")),
                kv(a, "exception.message", av_str(a, "Read timed out after 30000 ms")),
            };
            ev->n_attributes = 2;
            ev->attributes = kv_list(a, 2, items);
            sp->n_events = 1;
            sp->events = ARR(a, 1, ot_span_event *);
            sp->events[0] = ev;
        }
        if (i % 7 == 6 && prev_trace.len) {
            ot_span_link *ln = NEW(a, ot_span_link, opentelemetry__proto__trace__v1__span__link__descriptor);
            ln->trace_id = prev_trace;
            ln->span_id = rand_bytes(a, &r, 8);
            ln->flags = 0x101;
            sp->n_links = 1;
            sp->links = ARR(a, 1, ot_span_link *);
            sp->links[0] = ln;
        }
    }
    return req;
}

/* Attributes that hold every AnyValue kind, nested. */
static ot_keyvalue **every_value(ot_arena *a, size_t *n)
{
    static const uint8_t raw[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 'o', 't'};
    ot_anyvalue *inner[] = {av_double(a, 3.0), av_bool(a, 1), av_str(a, "deep")};
    ot_anyvalue *arr_items[] = {av_int(a, 1), av_str(a, "two"), av_array(a, 3, inner),
                                av_empty(a), av_bytes(a, raw, 3)};
    ot_keyvalue *leaf[] = {kv(a, "b", av_array(a, 2, (ot_anyvalue *[]){av_int(a, -1), av_double(a, 0.25)})),
                           kv(a, "c", av_str(a, "C"))};
    ot_keyvalue *mid[] = {kv(a, "a", av_kvlist(a, 2, leaf)), kv(a, "empty", av_kvlist(a, 0, NULL))};
    ot_keyvalue *items[] = {
        kv(a, "str", av_str(a, "hello \"world\"\n\t\\ caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")),
        kv(a, "str.empty", av_str(a, "")),
        kv(a, "bool.true", av_bool(a, 1)),
        kv(a, "bool.false", av_bool(a, 0)),
        kv(a, "int.zero", av_int(a, 0)),
        kv(a, "int.neg", av_int(a, -42)),
        kv(a, "int.max", av_int(a, INT64_MAX)),
        kv(a, "int.min", av_int(a, INT64_MIN)),
        kv(a, "double.zero", av_double(a, 0.0)),
        kv(a, "double.negzero", av_double(a, -0.0)),
        kv(a, "double.pi", av_double(a, 3.141592653589793)),
        kv(a, "double.tenth", av_double(a, 0.1)),
        kv(a, "double.big", av_double(a, 1.7976931348623157e308)),
        kv(a, "double.tiny", av_double(a, 4.9406564584124654e-324)),
        kv(a, "double.neg", av_double(a, -123456.789)),
        kv(a, "double.int", av_double(a, 1e15)),
        kv(a, "array", av_array(a, 5, arr_items)),
        kv(a, "array.empty", av_array(a, 0, NULL)),
        kv(a, "kvlist", av_kvlist(a, 2, mid)),
        kv(a, "bytes", av_bytes(a, raw, sizeof raw)),
        kv(a, "bytes.1", av_bytes(a, raw, 1)),
        kv(a, "bytes.2", av_bytes(a, raw, 2)),
        kv(a, "bytes.empty", av_bytes(a, NULL, 0)),
        kv(a, "unset", av_empty(a)),
        kv(a, "novalue", NULL),
    };
    *n = sizeof items / sizeof items[0];
    return kv_list(a, *n, items);
}

ot_trace_req *ot_sample_traces_rich(ot_arena *a)
{
    ot_trace_req *req = ot_sample_traces(a, 12, 8);
    ot_resource_spans *rs0 = req->resource_spans[0];
    rs0->resource->dropped_attributes_count = 3;
    ot_scope_spans *ss0 = rs0->scope_spans[0];
    ss0->schema_url = str(a, "https://opentelemetry.io/schemas/1.21.0");
    ss0->scope->dropped_attributes_count = 1;
    ss0->scope->n_attributes = 1;
    ss0->scope->attributes = kv_list(a, 1, (ot_keyvalue *[]){kv(a, "scope.attr", av_bool(a, 1))});

    ot_span *sp = ss0->spans[1];
    sp->attributes = every_value(a, &sp->n_attributes);
    sp->trace_state = str(a, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    sp->dropped_attributes_count = 5;
    sp->dropped_events_count = 6;
    sp->dropped_links_count = 7;
    sp->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    sp->status->message = str(a, "fine");
    ot_span_event *evs[2];
    for (int i = 0; i < 2; i++) {
        evs[i] = NEW(a, ot_span_event, opentelemetry__proto__trace__v1__span__event__descriptor);
        evs[i]->time_unix_nano = sp->start_time_unix_nano + 10 + (uint64_t)i;
        evs[i]->name = str(a, i ? "retry" : "cache.miss");
        evs[i]->dropped_attributes_count = (uint32_t)i;
    }
    evs[1]->attributes = every_value(a, &evs[1]->n_attributes);
    sp->n_events = 2;
    sp->events = ARR(a, 2, ot_span_event *);
    memcpy(sp->events, evs, sizeof evs);
    ot_span_link *ln = NEW(a, ot_span_link, opentelemetry__proto__trace__v1__span__link__descriptor);
    ln->trace_id = ss0->spans[5]->trace_id;
    ln->span_id = ss0->spans[5]->span_id;
    ln->trace_state = str(a, "vendor=abc");
    ln->dropped_attributes_count = 2;
    ln->flags = 1;
    ln->n_attributes = 1;
    ln->attributes = kv_list(a, 1, (ot_keyvalue *[]){kv(a, "link.kind", av_str(a, "follows_from"))});
    sp->n_links = 1;
    sp->links = ARR(a, 1, ot_span_link *);
    sp->links[0] = ln;

    /* A second resource with a bare span: only the required ids. */
    ot_resource_spans *rs1 = NEW(a, ot_resource_spans, opentelemetry__proto__trace__v1__resource_spans__descriptor);
    ot_scope_spans *ss1 = NEW(a, ot_scope_spans, opentelemetry__proto__trace__v1__scope_spans__descriptor);
    ot_span *bare = NEW(a, ot_span, opentelemetry__proto__trace__v1__span__descriptor);
    rng r = {42};
    bare->trace_id = rand_bytes(a, &r, 16);
    bare->span_id = rand_bytes(a, &r, 8);
    rs1->resource = resource(a, "frontend", "frontend-5c7d-abcde");
    rs1->schema_url = str(a, "https://opentelemetry.io/schemas/1.24.0");
    rs1->n_scope_spans = 1;
    rs1->scope_spans = ARR(a, 1, ot_scope_spans *);
    rs1->scope_spans[0] = ss1;
    ss1->n_spans = 1;
    ss1->spans = ARR(a, 1, ot_span *);
    ss1->spans[0] = bare;
    ot_resource_spans **two = ARR(a, 2, ot_resource_spans *);
    two[0] = rs0;
    two[1] = rs1;
    req->resource_spans = two;
    req->n_resource_spans = 2;
    return req;
}

/* --------------------------------------------------------------- metrics */

typedef Opentelemetry__Proto__Metrics__V1__Gauge ot_gauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum ot_sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram ot_hist;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram ot_exphist;
typedef Opentelemetry__Proto__Metrics__V1__Summary ot_summary;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar ot_exemplar;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets ot_buckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile ot_quantile;

enum { K_GAUGE_D, K_SUM_I, K_HIST, K_EXPHIST, K_SUMMARY, K_GAUGE_I, K_SUM_D, K_HIST_BARE, K_COUNT };

static const char *const metric_names[K_COUNT] = {
    "system.cpu.utilization", "http.server.request.count", "http.server.request.duration",
    "rpc.server.duration", "jvm.gc.pause", "process.threads", "queue.size.change",
    "db.client.operation.duration"};
static const char *const metric_units[K_COUNT] = {"1", "{request}", "s", "ms", "s", "{thread}",
                                                  "{item}", "s"};

static ot_exemplar **exemplars(ot_arena *a, rng *r, size_t n, uint64_t t)
{
    ot_exemplar **l = ARR(a, n, ot_exemplar *);
    for (size_t i = 0; i < n; i++) {
        ot_exemplar *e = NEW(a, ot_exemplar, opentelemetry__proto__metrics__v1__exemplar__descriptor);
        e->time_unix_nano = t - 1000 * (i + 1);
        e->trace_id = rand_bytes(a, r, 16);
        e->span_id = rand_bytes(a, r, 8);
        if (i % 2) {
            e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT;
            e->as_int = (int64_t)below(r, 5000);
        } else {
            e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
            e->as_double = (double)below(r, 100000) / 1000.0;
        }
        e->filtered_attributes = kv_list(a, 1, (ot_keyvalue *[]){kv(a, "user.id", av_int(a, (int64_t)below(r, 1000000)))});
        e->n_filtered_attributes = 1;
        l[i] = e;
    }
    return l;
}

static ot_number_point *number_point(ot_arena *a, rng *r, size_t n_attrs, uint64_t t, int as_int)
{
    ot_number_point *p = NEW(a, ot_number_point, opentelemetry__proto__metrics__v1__number_data_point__descriptor);
    p->start_time_unix_nano = T0;
    p->time_unix_nano = t;
    p->attributes = attrs(a, r, n_attrs);
    p->n_attributes = n_attrs;
    if (as_int) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        p->as_int = (int64_t)below(r, 1000000) - 1000;
    } else {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        p->as_double = (double)below(r, 1000000) / 997.0;
    }
    return p;
}

static ot_histogram_point *hist_point(ot_arena *a, rng *r, size_t n_attrs, uint64_t t, int bare)
{
    static const double bounds[] = {0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
    size_t nb = sizeof bounds / sizeof bounds[0];
    ot_histogram_point *p = NEW(a, ot_histogram_point, opentelemetry__proto__metrics__v1__histogram_data_point__descriptor);
    p->start_time_unix_nano = T0;
    p->time_unix_nano = t;
    p->attributes = attrs(a, r, n_attrs);
    p->n_attributes = n_attrs;
    p->n_explicit_bounds = nb;
    p->explicit_bounds = must(ot_arena_memdup(a, bounds, sizeof bounds));
    p->n_bucket_counts = nb + 1;
    p->bucket_counts = ARR(a, nb + 1, uint64_t);
    uint64_t count = 0;
    for (size_t i = 0; i <= nb; i++) {
        p->bucket_counts[i] = below(r, 3) ? below(r, 500) : 0;
        count += p->bucket_counts[i];
    }
    p->count = count;
    if (!bare) {
        p->sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
        p->sum = (double)count * 0.137;
        p->min_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
        p->min = count ? 0.0012 : 0.0; /* a set min of 0 is still written */
        p->max_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
        p->max = 9.87;
        p->n_exemplars = 2;
        p->exemplars = exemplars(a, r, 2, t);
    } else {
        p->flags = 1; /* no recorded value */
    }
    return p;
}

static ot_buckets *buckets(ot_arena *a, rng *r, int32_t offset, size_t n)
{
    ot_buckets *b = NEW(a, ot_buckets, opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
    b->offset = offset;
    b->n_bucket_counts = n;
    b->bucket_counts = ARR(a, n, uint64_t);
    for (size_t i = 0; i < n; i++)
        b->bucket_counts[i] = below(r, 4) ? below(r, 1000) : 0;
    return b;
}

static ot_exphistogram_point *exphist_point(ot_arena *a, rng *r, size_t n_attrs, uint64_t t, int k)
{
    ot_exphistogram_point *p = NEW(a, ot_exphistogram_point,
                                   opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor);
    p->start_time_unix_nano = T0;
    p->time_unix_nano = t;
    p->attributes = attrs(a, r, n_attrs);
    p->n_attributes = n_attrs;
    p->scale = k % 2 ? -2 : 3;
    p->zero_count = below(r, 10);
    p->zero_threshold = k % 2 ? 0 : 1e-9;
    p->positive = buckets(a, r, k % 2 ? 5 : -3, 8 + (size_t)k % 5);
    if (k % 3 != 2)
        p->negative = buckets(a, r, -7, 4);
    /* a valid point: zero_count and the buckets add up to count */
    p->count = p->zero_count;
    for (size_t i = 0; i < p->positive->n_bucket_counts; i++)
        p->count += p->positive->bucket_counts[i];
    for (size_t i = 0; p->negative && i < p->negative->n_bucket_counts; i++)
        p->count += p->negative->bucket_counts[i];
    p->sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
    p->sum = -17.25 + k;
    if (k % 2 == 0) {
        p->min_present_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
        p->min = -3.5;
        p->max_present_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
        p->max = 812.0625;
        p->n_exemplars = 1;
        p->exemplars = exemplars(a, r, 1, t);
    }
    return p;
}

static ot_summary_point *summary_point(ot_arena *a, rng *r, size_t n_attrs, uint64_t t)
{
    static const double qs[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    ot_summary_point *p = NEW(a, ot_summary_point, opentelemetry__proto__metrics__v1__summary_data_point__descriptor);
    p->start_time_unix_nano = T0;
    p->time_unix_nano = t;
    p->attributes = attrs(a, r, n_attrs);
    p->n_attributes = n_attrs;
    p->count = 100 + below(r, 1000);
    p->sum = (double)p->count * 0.0421;
    p->n_quantile_values = 5;
    p->quantile_values = ARR(a, 5, ot_quantile *);
    double v = 0.001;
    for (size_t i = 0; i < 5; i++) {
        ot_quantile *q = NEW(a, ot_quantile, opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__descriptor);
        q->quantile = qs[i];
        v += (double)below(r, 100) / 1000.0;
        q->value = v;
        p->quantile_values[i] = q;
    }
    return p;
}

ot_metrics_req *ot_sample_metrics(ot_arena *a, size_t n_points, size_t n_attrs)
{
    rng r = {0xD1B54A32D192ED03ULL};
    ot_metrics_req *req = NEW(a, ot_metrics_req,
                              opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor);
    ot_resource_metrics *rm = NEW(a, ot_resource_metrics, opentelemetry__proto__metrics__v1__resource_metrics__descriptor);
    ot_scope_metrics *sm = NEW(a, ot_scope_metrics, opentelemetry__proto__metrics__v1__scope_metrics__descriptor);
    req->n_resource_metrics = 1;
    req->resource_metrics = ARR(a, 1, ot_resource_metrics *);
    req->resource_metrics[0] = rm;
    rm->resource = resource(a, "payments", "payments-6b8d9f-qq7zt");
    rm->schema_url = str(a, "https://opentelemetry.io/schemas/1.26.0");
    rm->n_scope_metrics = 1;
    rm->scope_metrics = ARR(a, 1, ot_scope_metrics *);
    rm->scope_metrics[0] = sm;
    sm->scope = scope(a, "go.opentelemetry.io/otel/sdk/metric");

    size_t n_metrics = (n_points + 3) / 4;
    sm->n_metrics = n_metrics;
    sm->metrics = ARR(a, n_metrics, ot_metric *);
    size_t left = n_points;
    for (size_t m = 0; m < n_metrics; m++) {
        size_t np = left < 4 ? left : 4;
        left -= np;
        int kind = (int)(m % K_COUNT);
        int round = (int)(m / K_COUNT);
        ot_metric *mt = NEW(a, ot_metric, opentelemetry__proto__metrics__v1__metric__descriptor);
        sm->metrics[m] = mt;
        char name[96];
        if (round)
            snprintf(name, sizeof name, "%s.%d", metric_names[kind], round);
        else
            snprintf(name, sizeof name, "%s", metric_names[kind]);
        mt->name = str(a, name);
        mt->unit = str(a, metric_units[kind]);
        if (kind != K_SUM_D)
            mt->description = str(a, "Sample metric for tests and benchmarks.");
        uint64_t t = T0 + 60000000000ULL * (uint64_t)(round + 1);
        switch (kind) {
        case K_GAUGE_D:
        case K_GAUGE_I: {
            ot_gauge *g = NEW(a, ot_gauge, opentelemetry__proto__metrics__v1__gauge__descriptor);
            g->n_data_points = np;
            g->data_points = ARR(a, np, ot_number_point *);
            for (size_t i = 0; i < np; i++)
                g->data_points[i] = number_point(a, &r, n_attrs, t, kind == K_GAUGE_I);
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
            mt->gauge = g;
            break;
        }
        case K_SUM_I:
        case K_SUM_D: {
            ot_sum *s = NEW(a, ot_sum, opentelemetry__proto__metrics__v1__sum__descriptor);
            s->n_data_points = np;
            s->data_points = ARR(a, np, ot_number_point *);
            for (size_t i = 0; i < np; i++)
                s->data_points[i] = number_point(a, &r, n_attrs, t, kind == K_SUM_I);
            s->aggregation_temporality =
                kind == K_SUM_I ? OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
                                : OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
            s->is_monotonic = kind == K_SUM_I;
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
            mt->sum = s;
            break;
        }
        case K_HIST:
        case K_HIST_BARE: {
            ot_hist *h = NEW(a, ot_hist, opentelemetry__proto__metrics__v1__histogram__descriptor);
            h->n_data_points = np;
            h->data_points = ARR(a, np, ot_histogram_point *);
            for (size_t i = 0; i < np; i++)
                h->data_points[i] = hist_point(a, &r, n_attrs, t, kind == K_HIST_BARE);
            h->aggregation_temporality =
                OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
            mt->histogram = h;
            break;
        }
        case K_EXPHIST: {
            ot_exphist *h = NEW(a, ot_exphist, opentelemetry__proto__metrics__v1__exponential_histogram__descriptor);
            h->n_data_points = np;
            h->data_points = ARR(a, np, ot_exphistogram_point *);
            for (size_t i = 0; i < np; i++)
                h->data_points[i] = exphist_point(a, &r, n_attrs, t, (int)i);
            h->aggregation_temporality =
                OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
            mt->exponential_histogram = h;
            break;
        }
        case K_SUMMARY: {
            ot_summary *s = NEW(a, ot_summary, opentelemetry__proto__metrics__v1__summary__descriptor);
            s->n_data_points = np;
            s->data_points = ARR(a, np, ot_summary_point *);
            for (size_t i = 0; i < np; i++)
                s->data_points[i] = summary_point(a, &r, n_attrs, t);
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
            mt->summary = s;
            break;
        }
        }
    }
    return req;
}

/* ------------------------------------------------------------------ logs */

typedef struct sev {
    int number;
    const char *text;
} sev;

static const sev severities[] = {{9, "INFO"}, {9, "INFO"}, {5, "DEBUG"}, {13, "WARN"},
                                 {9, "INFO"}, {17, "ERROR"}, {1, "TRACE"}, {21, "FATAL"}};

static const char *const messages[] = {
    "GET /api/v1/users/8812 200 12.4ms",
    "connection pool exhausted, waiting for a free connection",
    "order 5521 accepted: 3 items, total 129.90 EUR",
    "retrying request to inventory (attempt 2 of 5)",
    "user login succeeded",
};

static ot_anyvalue *log_body(ot_arena *a, rng *r, size_t i)
{
    switch (i % 8) {
    case 1: {
        ot_keyvalue *items[] = {
            kv(a, "msg", av_str(a, messages[below(r, 5)])),
            kv(a, "latency_ms", av_double(a, (double)below(r, 100000) / 100.0)),
            kv(a, "ok", av_bool(a, (int)below(r, 2))),
            kv(a, "tags", av_array(a, 2, (ot_anyvalue *[]){av_str(a, "edge"), av_str(a, "eu")})),
        };
        return av_kvlist(a, 4, items);
    }
    case 3:
        return av_int(a, (int64_t)below(r, 100000) - 500);
    case 5:
        return av_double(a, (double)below(r, 100000) / 64.0);
    case 6: {
        uint8_t raw[12];
        for (size_t k = 0; k < sizeof raw; k++)
            raw[k] = (uint8_t)next(r);
        return av_bytes(a, raw, sizeof raw);
    }
    case 7:
        if (i % 16 == 7)
            return av_bool(a, 1);
        return av_array(a, 3, (ot_anyvalue *[]){av_str(a, "a"), av_int(a, 2), av_double(a, 3.5)});
    default:
        return av_str(a, messages[below(r, 5)]);
    }
}

ot_logs_req *ot_sample_logs(ot_arena *a, size_t n_records, size_t n_attrs)
{
    rng r = {0x94D049BB133111EBULL};
    ot_logs_req *req = NEW(a, ot_logs_req,
                           opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor);
    ot_resource_logs *rl = NEW(a, ot_resource_logs, opentelemetry__proto__logs__v1__resource_logs__descriptor);
    ot_scope_logs *sl = NEW(a, ot_scope_logs, opentelemetry__proto__logs__v1__scope_logs__descriptor);
    req->n_resource_logs = 1;
    req->resource_logs = ARR(a, 1, ot_resource_logs *);
    req->resource_logs[0] = rl;
    rl->resource = resource(a, "api-gateway", "api-gateway-85f6c-7wq9m");
    rl->schema_url = str(a, "https://opentelemetry.io/schemas/1.26.0");
    rl->n_scope_logs = 1;
    rl->scope_logs = ARR(a, 1, ot_scope_logs *);
    rl->scope_logs[0] = sl;
    sl->scope = scope(a, "otelite.sample.logger");
    sl->n_log_records = n_records;
    sl->log_records = ARR(a, n_records, ot_log_record *);
    for (size_t i = 0; i < n_records; i++) {
        ot_log_record *lr = NEW(a, ot_log_record, opentelemetry__proto__logs__v1__log_record__descriptor);
        sl->log_records[i] = lr;
        const sev *s = &severities[i % 8];
        lr->time_unix_nano = i % 9 == 8 ? 0 : T0 + i * 250000ULL;
        lr->observed_time_unix_nano = T0 + i * 250000ULL + 1000 + below(&r, 5000);
        lr->severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)s->number;
        lr->severity_text = str(a, s->text);
        lr->body = log_body(a, &r, i);
        lr->n_attributes = n_attrs;
        lr->attributes = attrs(a, &r, n_attrs);
        if (i % 2 == 0) {
            lr->trace_id = rand_bytes(a, &r, 16);
            lr->span_id = rand_bytes(a, &r, 8);
            lr->flags = 1;
        }
        if (i % 6 == 5)
            lr->event_name = str(a, "browser.page_view");
        if (i % 11 == 10)
            lr->dropped_attributes_count = 2;
    }
    return req;
}

ProtobufCMessage *ot_sample_request(ot_arena *a, ot_signal s, size_t n_items, size_t n_attrs)
{
    switch (s) {
    case OT_TRACES:
        return &ot_sample_traces(a, n_items, n_attrs)->base;
    case OT_METRICS:
        return &ot_sample_metrics(a, n_items, n_attrs)->base;
    case OT_LOGS:
        return &ot_sample_logs(a, n_items, n_attrs)->base;
    default:
        return NULL;
    }
}
