/* content.c: what the generated telemetry looks like. Realistic requests
 * rather than minimal ones, because an agent's cost per item depends on the
 * shape: several services (resources) per request, traces of five spans
 * linked by parent ids, ten attributes and one event per span (about 440
 * bytes on the wire), metrics of every point type, log records with bodies.
 *
 * Times and trace ids are written as sentinels (LG_TIME_SENTINEL,
 * lg_id_sentinel) so the template code can find them in the encoded bytes
 * and rewrite them per request; the loadgen.seq values are real. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

typedef struct build {
    const lg_opts *o;
    ot_arena *a;
    uint64_t rng;
    lg_msg *m;
    size_t cap_times, cap_ids;
    ot_keyvalue *run_kv; /* shared by every item: same bytes each time */
    ot_keyvalue *payload_kv;
} build;

#define NEW(b, T) ((T *)ot_arena_calloc((b)->a, sizeof(T)))
#define NEWV(b, T, n) ((T *)ot_arena_calloc((b)->a, sizeof(T) * ((n) ? (n) : 1)))

static const char *const services[] = {"frontend", "checkout", "orders", "payments",
                                       "inventory", "shipping"};
#define N_SERVICES (sizeof services / sizeof services[0])

static const char *const routes[] = {"/api/v1/orders/{id}", "/api/v1/cart", "/api/v1/checkout",
                                     "/api/v1/products/{sku}", "/api/v1/users/{id}/orders",
                                     "/healthz"};
static const char *const methods[] = {"GET", "GET", "POST", "GET", "PUT", "GET"};

void lg_id_sentinel(uint8_t out[16], uint64_t k)
{
    static const uint8_t head[8] = {0xA5, 0x5A, 0xC3, 0x3C, 0x96, 0x69, 0x0F, 0xF0};
    memcpy(out, head, 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(k >> (56 - 8 * i));
}

static uint64_t time_marker(build *b, int64_t delta)
{
    lg_msg *m = b->m;
    if (m->n_times == b->cap_times) {
        size_t nc = b->cap_times ? b->cap_times * 2 : 256;
        int64_t *d = ot_arena_alloc(b->a, nc * sizeof *d);
        if (m->n_times)
            memcpy(d, m->time_delta, m->n_times * sizeof *d);
        m->time_delta = d;
        b->cap_times = nc;
    }
    m->time_delta[m->n_times] = delta;
    return LG_TIME_SENTINEL(m->n_times++);
}

static ProtobufCBinaryData id_marker(build *b, uint32_t group)
{
    lg_msg *m = b->m;
    if (m->n_ids == b->cap_ids) {
        size_t nc = b->cap_ids ? b->cap_ids * 2 : 64;
        uint32_t *g = ot_arena_alloc(b->a, nc * sizeof *g);
        if (m->n_ids)
            memcpy(g, m->id_group, m->n_ids * sizeof *g);
        m->id_group = g;
        b->cap_ids = nc;
    }
    m->id_group[m->n_ids] = group;
    if (group + 1 > m->n_groups)
        m->n_groups = group + 1;
    uint8_t *p = ot_arena_alloc(b->a, 16);
    lg_id_sentinel(p, m->n_ids++);
    return (ProtobufCBinaryData){16, p};
}

static ProtobufCBinaryData rand_bytes(build *b, size_t n)
{
    uint8_t *p = ot_arena_alloc(b->a, n);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = lg_rand(&b->rng);
        memcpy(p + i, &r, n - i < 8 ? n - i : 8);
    }
    return (ProtobufCBinaryData){n, p};
}

static ot_keyvalue *kv_str(build *b, const char *k, const char *v)
{
    ot_keyvalue *kv = NEW(b, ot_keyvalue);
    ot_anyvalue *av = NEW(b, ot_anyvalue);
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = ot_arena_strdup(b->a, v);
    kv->key = (char *)k;
    kv->value = av;
    return kv;
}

static ot_keyvalue *kv_int(build *b, const char *k, int64_t v)
{
    ot_keyvalue *kv = NEW(b, ot_keyvalue);
    ot_anyvalue *av = NEW(b, ot_anyvalue);
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av->int_value = v;
    kv->key = (char *)k;
    kv->value = av;
    return kv;
}

/* The attributes of item i (a span, point or record): loadgen.seq first,
 * loadgen.run, then --attributes - 2 from a pool of plausible ones. */
static ot_keyvalue **item_attrs(build *b, size_t i, uint64_t seq, size_t *n_out)
{
    size_t want = b->o->attributes < 2 ? 2 : (size_t)b->o->attributes;
    size_t n = want + (b->payload_kv ? 1 : 0);
    ot_keyvalue **v = NEWV(b, ot_keyvalue *, n);
    size_t k = 0;
    ot_keyvalue *s = kv_int(b, "loadgen.seq", (int64_t)seq);
    b->m->seq[i] = s->value;
    v[k++] = s;
    v[k++] = b->run_kv;
    size_t r = lg_rand(&b->rng) % 6;
    char tmp[96];
    for (size_t p = 0; k < want; p++) {
        switch (p) {
        case 0: v[k++] = kv_str(b, "http.request.method", methods[r]); break;
        case 1: v[k++] = kv_str(b, "http.route", routes[r]); break;
        case 2: v[k++] = kv_int(b, "http.response.status_code", (r == 4) ? 503 : 200); break;
        case 3:
            snprintf(tmp, sizeof tmp, "/api/v1/orders/%llu",
                     (unsigned long long)(lg_rand(&b->rng) % 100000));
            v[k++] = kv_str(b, "url.path", tmp);
            break;
        case 4: v[k++] = kv_str(b, "server.address", "orders.shop.internal"); break;
        case 5: v[k++] = kv_int(b, "server.port", 8080); break;
        case 6:
            v[k++] = kv_str(b, "user_agent.original", "okhttp/4.12.0");
            break;
        case 7:
            snprintf(tmp, sizeof tmp, "10.%u.%u.%u", (unsigned)(lg_rand(&b->rng) % 255),
                     (unsigned)(lg_rand(&b->rng) % 255), (unsigned)(lg_rand(&b->rng) % 255));
            v[k++] = kv_str(b, "client.address", tmp);
            break;
        case 8: v[k++] = kv_str(b, "network.protocol.version", "1.1"); break;
        case 9: v[k++] = kv_int(b, "http.request.body.size", (int64_t)(lg_rand(&b->rng) % 4096)); break;
        case 10: v[k++] = kv_int(b, "thread.id", (int64_t)(lg_rand(&b->rng) % 64)); break;
        default: {
            char *key = ot_arena_sprintf(b->a, "attr.extra_%zu", p);
            snprintf(tmp, sizeof tmp, "value-%llu", (unsigned long long)(lg_rand(&b->rng) % 1000));
            v[k++] = kv_str(b, key, tmp);
        }
        }
    }
    if (b->payload_kv)
        v[k++] = b->payload_kv;
    *n_out = k;
    return v;
}

static ot_resource *resource(build *b, size_t r)
{
    const char *svc = services[r % N_SERVICES];
    ot_resource *res = NEW(b, ot_resource);
    opentelemetry__proto__resource__v1__resource__init(res);
    res->attributes = NEWV(b, ot_keyvalue *, 8);
    size_t k = 0;
    res->attributes[k++] = kv_str(b, "service.name", svc);
    res->attributes[k++] = kv_str(b, "service.version", "1.8.2");
    res->attributes[k++] = kv_str(b, "service.instance.id",
                                  ot_arena_sprintf(b->a, "%s-7d9f8c%02zu", svc, r));
    res->attributes[k++] = kv_str(b, "host.name", ot_arena_sprintf(b->a, "node-%zu", r % 3));
    res->attributes[k++] = kv_str(b, "deployment.environment.name", "production");
    res->attributes[k++] = kv_str(b, "telemetry.sdk.name", "opentelemetry");
    res->attributes[k++] = kv_str(b, "telemetry.sdk.language", "go");
    res->attributes[k++] = kv_str(b, "telemetry.sdk.version", "1.28.0");
    res->n_attributes = k;
    return res;
}

static ot_scope *scope(build *b, const char *name)
{
    ot_scope *s = NEW(b, ot_scope);
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = (char *)name;
    s->version = "0.52.0";
    return s;
}

/* Resources per request: one per 20 items, 1 to 6. */
static size_t n_resources(size_t n)
{
    size_t r = n / 20;
    return r < 1 ? 1 : r > N_SERVICES ? N_SERVICES : r;
}

/* ---- traces ---------------------------------------------------------------- */

#define SPANS_PER_TRACE 5

static ot_span *span(build *b, size_t i, uint64_t seq, uint32_t trace, size_t pos,
                     ProtobufCBinaryData *trace_span_ids)
{
    static const char *const names[SPANS_PER_TRACE] = {
        "GET /api/v1/orders/{id}", "SELECT orders", "orders.lookup", "GET inventory",
        "publish order.viewed"};
    static const int kinds[SPANS_PER_TRACE] = {2, 3, 1, 3, 4}; /* server client internal client producer */
    ot_span *s = NEW(b, ot_span);
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id = id_marker(b, trace);
    s->span_id = trace_span_ids[pos];
    if (pos > 0)
        s->parent_span_id = trace_span_ids[pos == 4 ? 2 : 0];
    s->name = (char *)names[pos];
    s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)kinds[pos];
    int64_t start = -50000000 + (int64_t)pos * 1500000;
    int64_t dur = pos == 0 ? 12000000 : 800000 + (int64_t)(lg_rand(&b->rng) % 3000000);
    s->start_time_unix_nano = time_marker(b, start);
    s->end_time_unix_nano = time_marker(b, start + dur);
    s->attributes = item_attrs(b, i, seq, &s->n_attributes);
    ot_span_event *e = NEW(b, ot_span_event);
    opentelemetry__proto__trace__v1__span__event__init(e);
    e->time_unix_nano = time_marker(b, start + dur / 2);
    e->name = pos == 1 ? "db.query.retry" : "cache.miss";
    s->events = NEWV(b, ot_span_event *, 1);
    s->events[0] = e;
    s->n_events = 1;
    ot_span_status *st = NEW(b, ot_span_status);
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = (lg_rand(&b->rng) % 50 == 0) ? OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
                                             : OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_UNSET;
    s->status = st;
    return s;
}

static ProtobufCMessage *build_traces(build *b, size_t n, uint64_t seq0)
{
    ot_trace_req *req = NEW(b, ot_trace_req);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    size_t nr = n_resources(n);
    size_t ntraces = (n + SPANS_PER_TRACE - 1) / SPANS_PER_TRACE;
    req->resource_spans = NEWV(b, ot_resource_spans *, nr);
    req->n_resource_spans = nr;
    ot_scope_spans **ss = NEWV(b, ot_scope_spans *, nr);
    for (size_t r = 0; r < nr; r++) {
        ot_resource_spans *rs = NEW(b, ot_resource_spans);
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        rs->resource = resource(b, r);
        rs->schema_url = "https://opentelemetry.io/schemas/1.26.0";
        ss[r] = NEW(b, ot_scope_spans);
        opentelemetry__proto__trace__v1__scope_spans__init(ss[r]);
        ss[r]->scope = scope(b, "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
        /* traces go round-robin over resources; this is an upper bound */
        size_t cap = ((ntraces + nr - 1) / nr) * SPANS_PER_TRACE;
        ss[r]->spans = NEWV(b, ot_span *, cap);
        rs->scope_spans = NEWV(b, ot_scope_spans *, 1);
        rs->scope_spans[0] = ss[r];
        rs->n_scope_spans = 1;
        req->resource_spans[r] = rs;
    }
    size_t i = 0;
    for (uint32_t t = 0; i < n; t++) {
        ProtobufCBinaryData ids[SPANS_PER_TRACE];
        for (size_t p = 0; p < SPANS_PER_TRACE; p++)
            ids[p] = rand_bytes(b, 8);
        ot_scope_spans *sc = ss[t % nr];
        for (size_t p = 0; p < SPANS_PER_TRACE && i < n; p++, i++)
            sc->spans[sc->n_spans++] = span(b, i, seq0 + i, t, p, ids);
    }
    return &req->base;
}

/* ---- metrics ----------------------------------------------------------- */

enum { M_GAUGE, M_SUM, M_HIST, M_EXPHIST, M_SUMMARY, M_TYPES };

static ot_metric *metric(build *b, int type, size_t cap)
{
    static const char *const names[M_TYPES] = {"system.cpu.utilization", "http.server.request.count",
                                               "http.server.request.duration",
                                               "rpc.server.duration", "db.client.latency"};
    static const char *const units[M_TYPES] = {"1", "{request}", "s", "ms", "ms"};
    ot_metric *m = NEW(b, ot_metric);
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)names[type];
    m->unit = (char *)units[type];
    m->description = "generated by otelite-loadgen";
    switch (type) {
    case M_GAUGE:
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        m->gauge = NEW(b, Opentelemetry__Proto__Metrics__V1__Gauge);
        opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
        m->gauge->data_points = NEWV(b, ot_number_point *, cap);
        break;
    case M_SUM:
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        m->sum = NEW(b, Opentelemetry__Proto__Metrics__V1__Sum);
        opentelemetry__proto__metrics__v1__sum__init(m->sum);
        m->sum->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        m->sum->is_monotonic = 1;
        m->sum->data_points = NEWV(b, ot_number_point *, cap);
        break;
    case M_HIST:
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        m->histogram = NEW(b, Opentelemetry__Proto__Metrics__V1__Histogram);
        opentelemetry__proto__metrics__v1__histogram__init(m->histogram);
        m->histogram->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        m->histogram->data_points = NEWV(b, ot_histogram_point *, cap);
        break;
    case M_EXPHIST:
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
        m->exponential_histogram = NEW(b, Opentelemetry__Proto__Metrics__V1__ExponentialHistogram);
        opentelemetry__proto__metrics__v1__exponential_histogram__init(m->exponential_histogram);
        m->exponential_histogram->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
        m->exponential_histogram->data_points = NEWV(b, ot_exphistogram_point *, cap);
        break;
    default:
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
        m->summary = NEW(b, Opentelemetry__Proto__Metrics__V1__Summary);
        opentelemetry__proto__metrics__v1__summary__init(m->summary);
        m->summary->data_points = NEWV(b, ot_summary_point *, cap);
        break;
    }
    return m;
}

static void add_point(build *b, ot_metric *m, int type, size_t i, uint64_t seq)
{
    uint64_t start = type == M_GAUGE ? 0 : time_marker(b, -60000000000LL);
    uint64_t now = time_marker(b, 0);
    double v = (double)(lg_rand(&b->rng) % 100000) / 100.0;
    switch (type) {
    case M_GAUGE:
    case M_SUM: {
        ot_number_point *p = NEW(b, ot_number_point);
        opentelemetry__proto__metrics__v1__number_data_point__init(p);
        p->start_time_unix_nano = type == M_SUM ? start : 0;
        p->time_unix_nano = now;
        if (type == M_GAUGE) {
            p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
            p->as_double = v / 1000.0;
        } else {
            p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
            p->as_int = (int64_t)(lg_rand(&b->rng) % 1000000);
        }
        p->attributes = item_attrs(b, i, seq, &p->n_attributes);
        if (type == M_GAUGE)
            m->gauge->data_points[m->gauge->n_data_points++] = p;
        else
            m->sum->data_points[m->sum->n_data_points++] = p;
        break;
    }
    case M_HIST: {
        static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
        ot_histogram_point *p = NEW(b, ot_histogram_point);
        opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
        p->start_time_unix_nano = start;
        p->time_unix_nano = now;
        p->n_explicit_bounds = sizeof bounds / sizeof bounds[0];
        p->explicit_bounds = (double *)bounds;
        p->n_bucket_counts = p->n_explicit_bounds + 1;
        p->bucket_counts = NEWV(b, uint64_t, p->n_bucket_counts);
        for (size_t k = 0; k < p->n_bucket_counts; k++) {
            p->bucket_counts[k] = lg_rand(&b->rng) % 500;
            p->count += p->bucket_counts[k];
        }
        p->sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
        p->sum = v;
        p->min_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
        p->min = 0.001;
        p->max_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
        p->max = 7.5;
        p->attributes = item_attrs(b, i, seq, &p->n_attributes);
        m->histogram->data_points[m->histogram->n_data_points++] = p;
        break;
    }
    case M_EXPHIST: {
        ot_exphistogram_point *p = NEW(b, ot_exphistogram_point);
        opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(p);
        p->start_time_unix_nano = start;
        p->time_unix_nano = now;
        p->scale = 3;
        p->zero_count = lg_rand(&b->rng) % 4;
        p->count = p->zero_count;
        Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *pos =
            NEW(b, Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets);
        opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(pos);
        pos->offset = 10;
        pos->n_bucket_counts = 12;
        pos->bucket_counts = NEWV(b, uint64_t, 12);
        for (size_t k = 0; k < 12; k++) {
            pos->bucket_counts[k] = lg_rand(&b->rng) % 100;
            p->count += pos->bucket_counts[k];
        }
        p->positive = pos;
        p->sum_present_case =
            OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
        p->sum = v * 10;
        p->attributes = item_attrs(b, i, seq, &p->n_attributes);
        m->exponential_histogram->data_points[m->exponential_histogram->n_data_points++] = p;
        break;
    }
    default: {
        ot_summary_point *p = NEW(b, ot_summary_point);
        opentelemetry__proto__metrics__v1__summary_data_point__init(p);
        p->start_time_unix_nano = start;
        p->time_unix_nano = now;
        p->count = 1000 + lg_rand(&b->rng) % 1000;
        p->sum = v * 100;
        static const double qs[] = {0.5, 0.9, 0.99};
        p->quantile_values = NEWV(b, Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *, 3);
        for (size_t k = 0; k < 3; k++) {
            Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q =
                NEW(b, Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile);
            opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(q);
            q->quantile = qs[k];
            q->value = v * (double)(k + 1);
            p->quantile_values[k] = q;
        }
        p->n_quantile_values = 3;
        p->attributes = item_attrs(b, i, seq, &p->n_attributes);
        m->summary->data_points[m->summary->n_data_points++] = p;
        break;
    }
    }
}

static ProtobufCMessage *build_metrics(build *b, size_t n, uint64_t seq0)
{
    ot_metrics_req *req = NEW(b, ot_metrics_req);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(req);
    size_t nr = n_resources(n);
    req->resource_metrics = NEWV(b, ot_resource_metrics *, nr);
    req->n_resource_metrics = nr;
    size_t per = (n + nr - 1) / nr;
    size_t i = 0;
    for (size_t r = 0; r < nr; r++) {
        ot_resource_metrics *rm = NEW(b, ot_resource_metrics);
        opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
        rm->resource = resource(b, r);
        ot_scope_metrics *sm = NEW(b, ot_scope_metrics);
        opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
        sm->scope = scope(b, "go.opentelemetry.io/otel/sdk/metric");
        size_t here = n - i < per ? n - i : per;
        /* --point-type: every point of one type, else the types in turn */
        int only = b->o->point_type - 1;
        size_t cap = only >= 0 ? here + 1 : here / M_TYPES + 1, used[M_TYPES] = {0};
        sm->metrics = NEWV(b, ot_metric *, M_TYPES);
        ot_metric *ms[M_TYPES];
        for (int t = 0; t < M_TYPES; t++)
            ms[t] = metric(b, t, cap);
        for (size_t k = 0; k < here; k++, i++) {
            int t = only >= 0 ? only : (int)(k % M_TYPES);
            add_point(b, ms[t], t, i, seq0 + i);
            used[t]++;
        }
        for (int t = 0; t < M_TYPES; t++)
            if (used[t])
                sm->metrics[sm->n_metrics++] = ms[t];
        rm->scope_metrics = NEWV(b, ot_scope_metrics *, 1);
        rm->scope_metrics[0] = sm;
        rm->n_scope_metrics = 1;
        req->resource_metrics[r] = rm;
    }
    return &req->base;
}

/* ---- logs -------------------------------------------------------------- */

static ProtobufCMessage *build_logs(build *b, size_t n, uint64_t seq0)
{
    static const char *const bodies[] = {
        "GET /api/v1/orders/12345 200 12.3ms",
        "payment authorized for order 88231 amount=42.10 currency=EUR",
        "cache miss for key product:sku-1182, loading from database",
        "POST /api/v1/checkout 503 upstream inventory timed out after 2000ms",
        "user 5521 signed in from 10.2.33.4",
        "retrying publish of order.viewed (attempt 2 of 5)"};
    static const char *const sevtext[] = {"INFO", "INFO", "DEBUG", "ERROR", "INFO", "WARN"};
    static const int sevnum[] = {9, 9, 5, 17, 9, 13};
    ot_logs_req *req = NEW(b, ot_logs_req);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(req);
    size_t nr = n_resources(n);
    req->resource_logs = NEWV(b, ot_resource_logs *, nr);
    req->n_resource_logs = nr;
    size_t per = (n + nr - 1) / nr;
    size_t i = 0;
    uint32_t trace = 0;
    for (size_t r = 0; r < nr; r++) {
        ot_resource_logs *rl = NEW(b, ot_resource_logs);
        opentelemetry__proto__logs__v1__resource_logs__init(rl);
        rl->resource = resource(b, r);
        ot_scope_logs *sl = NEW(b, ot_scope_logs);
        opentelemetry__proto__logs__v1__scope_logs__init(sl);
        sl->scope = scope(b, "go.opentelemetry.io/contrib/bridges/otelslog");
        size_t here = n - i < per ? n - i : per;
        sl->log_records = NEWV(b, ot_log_record *, here);
        for (size_t k = 0; k < here; k++, i++) {
            ot_log_record *lr = NEW(b, ot_log_record);
            opentelemetry__proto__logs__v1__log_record__init(lr);
            size_t which = lg_rand(&b->rng) % 6;
            int64_t d = -(int64_t)(lg_rand(&b->rng) % 5000000);
            lr->time_unix_nano = time_marker(b, d);
            lr->observed_time_unix_nano = time_marker(b, d + 200000);
            lr->severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)sevnum[which];
            lr->severity_text = (char *)sevtext[which];
            ot_anyvalue *body = NEW(b, ot_anyvalue);
            opentelemetry__proto__common__v1__any_value__init(body);
            body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            body->string_value = (char *)bodies[which];
            lr->body = body;
            lr->attributes = item_attrs(b, i, seq0 + i, &lr->n_attributes);
            if (k % 2 == 0) { /* half the records come from inside a span */
                lr->trace_id = id_marker(b, trace++);
                lr->span_id = rand_bytes(b, 8);
                lr->flags = 1;
            }
            sl->log_records[sl->n_log_records++] = lr;
        }
        rl->scope_logs = NEWV(b, ot_scope_logs *, 1);
        rl->scope_logs[0] = sl;
        rl->n_scope_logs = 1;
        req->resource_logs[r] = rl;
    }
    return &req->base;
}

lg_msg *lg_msg_build(const lg_opts *o, uint64_t seed, size_t n, ot_arena *a)
{
    build b = {.o = o, .a = a, .rng = seed};
    lg_msg *m = ot_arena_calloc(a, sizeof *m);
    if (!m)
        return NULL;
    b.m = m;
    m->n = n;
    m->seq = NEWV(&b, ot_anyvalue *, n);
    b.run_kv = kv_str(&b, "loadgen.run", o->run_id);
    if (o->payload_bytes) {
        char *p = ot_arena_alloc(a, o->payload_bytes + 1);
        for (size_t i = 0; i < o->payload_bytes; i++)
            p[i] = (char)('a' + lg_rand(&b.rng) % 26);
        p[o->payload_bytes] = '\0';
        b.payload_kv = kv_str(&b, "payload", p);
    }
    switch (o->sig) {
    case OT_TRACES: m->req = build_traces(&b, n, 0); break;
    case OT_METRICS: m->req = build_metrics(&b, n, 0); break;
    default: m->req = build_logs(&b, n, 0); break;
    }
    return m;
}

void lg_msg_materialize(lg_msg *m, uint64_t seq0, int64_t wall_ns, uint64_t rng_seed)
{
    /* The sentinels live in the struct's own fields; walk the request the
     * way the builders made it and put real values in their place. */
    uint64_t rng = rng_seed;
    size_t ng = m->n_groups;
    uint8_t (*ids)[16] = ng ? malloc(ng * 16) : NULL;
    for (size_t g = 0; ids && g < ng; g++)
        for (int k = 0; k < 16; k += 8) {
            uint64_t r = lg_rand(&rng);
            memcpy(ids[g] + k, &r, 8);
        }
    for (size_t i = 0; i < m->n; i++)
        m->seq[i]->int_value = (int64_t)(seq0 + i);
#define FIXT(field)                                                                          \
    do {                                                                                     \
        uint64_t v_ = (field);                                                               \
        if (v_ >= LG_TIME_SENTINEL(0) && v_ < LG_TIME_SENTINEL(m->n_times))                  \
            (field) = (uint64_t)(wall_ns + m->time_delta[v_ - LG_TIME_SENTINEL(0)]);          \
    } while (0)
#define FIXID(bd)                                                                            \
    do {                                                                                     \
        if ((bd).len == 16 && ids && (bd).data[0] == 0xA5 && (bd).data[1] == 0x5A) {         \
            uint64_t k_ = 0;                                                                 \
            for (int q_ = 8; q_ < 16; q_++)                                                  \
                k_ = (k_ << 8) | (bd).data[q_];                                              \
            if (k_ < m->n_ids)                                                               \
                memcpy((bd).data, ids[m->id_group[k_]], 16);                                 \
        }                                                                                    \
    } while (0)
    if (m->req->descriptor == &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor) {
        ot_trace_req *r = (ot_trace_req *)m->req;
        for (size_t a = 0; a < r->n_resource_spans; a++)
            for (size_t s = 0; s < r->resource_spans[a]->n_scope_spans; s++) {
                ot_scope_spans *ss = r->resource_spans[a]->scope_spans[s];
                for (size_t k = 0; k < ss->n_spans; k++) {
                    ot_span *sp = ss->spans[k];
                    FIXID(sp->trace_id);
                    FIXT(sp->start_time_unix_nano);
                    FIXT(sp->end_time_unix_nano);
                    for (size_t e = 0; e < sp->n_events; e++)
                        FIXT(sp->events[e]->time_unix_nano);
                }
            }
    } else if (m->req->descriptor == &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor) {
        ot_logs_req *r = (ot_logs_req *)m->req;
        for (size_t a = 0; a < r->n_resource_logs; a++)
            for (size_t s = 0; s < r->resource_logs[a]->n_scope_logs; s++) {
                ot_scope_logs *sl = r->resource_logs[a]->scope_logs[s];
                for (size_t k = 0; k < sl->n_log_records; k++) {
                    FIXT(sl->log_records[k]->time_unix_nano);
                    FIXT(sl->log_records[k]->observed_time_unix_nano);
                    FIXID(sl->log_records[k]->trace_id);
                }
            }
    } else {
        ot_metrics_req *r = (ot_metrics_req *)m->req;
        for (size_t a = 0; a < r->n_resource_metrics; a++)
            for (size_t s = 0; s < r->resource_metrics[a]->n_scope_metrics; s++) {
                ot_scope_metrics *sm = r->resource_metrics[a]->scope_metrics[s];
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    ot_metric *mt = sm->metrics[k];
                    switch (mt->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        for (size_t p = 0; p < mt->gauge->n_data_points; p++) {
                            FIXT(mt->gauge->data_points[p]->start_time_unix_nano);
                            FIXT(mt->gauge->data_points[p]->time_unix_nano);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        for (size_t p = 0; p < mt->sum->n_data_points; p++) {
                            FIXT(mt->sum->data_points[p]->start_time_unix_nano);
                            FIXT(mt->sum->data_points[p]->time_unix_nano);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        for (size_t p = 0; p < mt->histogram->n_data_points; p++) {
                            FIXT(mt->histogram->data_points[p]->start_time_unix_nano);
                            FIXT(mt->histogram->data_points[p]->time_unix_nano);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        for (size_t p = 0; p < mt->exponential_histogram->n_data_points; p++) {
                            FIXT(mt->exponential_histogram->data_points[p]->start_time_unix_nano);
                            FIXT(mt->exponential_histogram->data_points[p]->time_unix_nano);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        for (size_t p = 0; p < mt->summary->n_data_points; p++) {
                            FIXT(mt->summary->data_points[p]->start_time_unix_nano);
                            FIXT(mt->summary->data_points[p]->time_unix_nano);
                        }
                        break;
                    default:
                        break;
                    }
                }
            }
    }
#undef FIXT
#undef FIXID
    free(ids);
}
