/* bench_store.c: what the metric stream store costs on the writer's hot
 * path and in memory, the two numbers its users size themselves by.
 *
 *   1. lookups/s of existing streams on one core: a realistic identity
 *      (resource of 6 attributes, scope, cumulative sum; the metric part
 *      hashed once, as a caller does per metric) with 3 point attributes
 *      encoded and hashed per lookup, then get + state update + put. Once
 *      for one stream over and over, once rotating over many streams.
 *   2. store bytes per stream beyond the user state and the identity
 *      bytes (headers, slots, malloc's own overhead).
 *   3. the same lookups while a second thread visits every stream in a
 *      loop, formatting a text line for each (a scrape that never stops):
 *      writer lookups/s, reader passes/s and the longest sampled lookup.
 *      On a machine with fewer free cores than threads, that longest wait
 *      is the scheduler's (a preempted lock holder), not the store's.
 *
 * Built and run by `make bench` ($(BUILD)/bench-store).
 * Run: bench-store [lookups (20000000)] [streams (200000)] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/mstore.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct cum_state {
    double value;
    int64_t start_ns;
} cum_state;

/* ---- a realistic identity ----------------------------------------------- */

static ot_anyvalue sval(const char *s)
{
    ot_anyvalue v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = (char *)s;
    return v;
}

static ot_anyvalue ival(int64_t i)
{
    ot_anyvalue v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v.int_value = i;
    return v;
}

static const char *RES_KEYS[] = {"service.name", "service.version", "host.name",
                                 "k8s.pod.name", "k8s.namespace.name", "deployment.environment"};
static const char *RES_VALS[] = {"checkout", "2.14.1", "ip-10-0-3-17.ec2.internal",
                                 "checkout-7d9f8b6c5-x2kq9", "shop", "production"};

typedef struct fixture {
    ot_anyvalue rv[6];
    ot_keyvalue rkv[6];
    ot_keyvalue *rp[6];
    ot_resource res;
    ot_scope scope;
    Opentelemetry__Proto__Metrics__V1__Sum sum;
    ot_metric metric;
    /* point attributes per stream i: route, method, status */
    size_t n_points;
    char (*routes)[32];
    ot_anyvalue *pv;
    ot_keyvalue *pkv;
    ot_keyvalue **pp;
} fixture;

static const char *METHODS[] = {"GET", "POST", "PUT", "DELETE"};

static void fixture_init(fixture *f, size_t n_points)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 6; i++) {
        f->rv[i] = sval(RES_VALS[i]);
        f->rkv[i] = (ot_keyvalue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        f->rkv[i].key = (char *)RES_KEYS[i];
        f->rkv[i].value = &f->rv[i];
        f->rp[i] = &f->rkv[i];
    }
    f->res = (ot_resource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    f->res.attributes = f->rp;
    f->res.n_attributes = 6;
    f->scope = (ot_scope)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    f->scope.name = "io.opentelemetry.http";
    f->scope.version = "1.32.0";
    f->sum = (Opentelemetry__Proto__Metrics__V1__Sum)OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    f->sum.aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    f->sum.is_monotonic = 1;
    f->metric = (ot_metric)OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    f->metric.name = "http.server.request.count";
    f->metric.unit = "{request}";
    f->metric.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    f->metric.sum = &f->sum;

    f->n_points = n_points;
    f->routes = calloc(n_points, sizeof *f->routes);
    f->pv = calloc(n_points * 3, sizeof *f->pv);
    f->pkv = calloc(n_points * 3, sizeof *f->pkv);
    f->pp = calloc(n_points * 3, sizeof *f->pp);
    if (!f->routes || !f->pv || !f->pkv || !f->pp) {
        fprintf(stderr, "bench-store: out of memory\n");
        exit(1);
    }
    static const char *keys[3] = {"http.route", "http.request.method", "http.response.status_code"};
    for (size_t i = 0; i < n_points; i++) {
        snprintf(f->routes[i], sizeof f->routes[i], "/api/v1/orders/%zu", i / 16);
        f->pv[3 * i] = sval(f->routes[i]);
        f->pv[3 * i + 1] = sval(METHODS[i % 4]);
        f->pv[3 * i + 2] = ival(200 + (int64_t)(i / 4 % 4));
        for (int j = 0; j < 3; j++) {
            f->pkv[3 * i + j] = (ot_keyvalue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
            f->pkv[3 * i + j].key = (char *)keys[j];
            f->pkv[3 * i + j].value = &f->pv[3 * i + j];
            f->pp[3 * i + j] = &f->pkv[3 * i + j];
        }
    }
}

static void fixture_free(fixture *f)
{
    free(f->routes);
    free(f->pv);
    free(f->pkv);
    free(f->pp);
}

static ot_mstore *store_new(void)
{
    ot_err err;
    ot_mstore_opts o = {.state_size = sizeof(cum_state)};
    ot_mstore *st = ot_mstore_new(&o, &err);
    if (!st) {
        fprintf(stderr, "bench-store: %s\n", err.msg);
        exit(1);
    }
    return st;
}

/* One point as a caller handles it: encode + hash its attributes, find the
 * stream, update the state. */
static inline int one_lookup(ot_mstore *st, ot_mstore_key *k, fixture *f, size_t i, int64_t now)
{
    ot_mstore_ref ref;
    if (ot_mstore_key_point(k, &f->pp[3 * i], 3) < 0)
        return -1;
    ot_mstore_res r = ot_mstore_get(st, k, now, 0, &ref);
    if (r != OT_MSTORE_FOUND && r != OT_MSTORE_NEW)
        return -1;
    cum_state *c = ref.state;
    c->value += 1.0;
    if (r == OT_MSTORE_NEW)
        c->start_ns = now;
    ot_mstore_put(st, &ref, false);
    return 0;
}

static double run_lookups(ot_mstore *st, fixture *f, size_t n, size_t streams, int64_t *max_ns)
{
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    if (ot_mstore_key_otlp(&k, &f->res, &f->scope, &f->metric) < 0)
        exit(1);
    for (size_t i = 0; i < streams; i++) /* warm: every stream exists */
        if (one_lookup(st, &k, f, i, 1) < 0)
            exit(1);
    int64_t worst = 0;
    int64_t t0 = now_ns();
    for (size_t i = 0, s = 0; i < n; i++) {
        int64_t a = max_ns && (i & 63) == 0 ? now_ns() : 0;
        if (one_lookup(st, &k, f, s, 2) < 0)
            exit(1);
        if (a) {
            int64_t d = now_ns() - a;
            if (d > worst)
                worst = d;
        }
        if (++s == streams)
            s = 0;
    }
    int64_t t1 = now_ns();
    ot_mstore_key_free(&k);
    if (max_ns)
        *max_ns = worst;
    return (double)n / ((double)(t1 - t0) / 1e9);
}

/* ---- a reader that never stops ------------------------------------------- */

typedef struct reader {
    ot_mstore *st;
    atomic_bool stop;
    long passes;
    double sink;
} reader;

/* What a scrape does per stream: read the identity back and format a
 * Prometheus-style line. */
static int visit_one(void *ctx, const ot_mstore_stream *s)
{
    reader *r = ctx;
    ot_mstore_info in;
    ot_mstore_stream_info(s, &in);
    char line[512];
    int w = snprintf(line, sizeof line, "%.*s{", (int)in.name.n, in.name.p);
    ot_mstore_str key;
    ot_mstore_val v;
    while (ot_mstore_next_kv(&in.attrs, &key, &v) && w < 400) {
        if (v.type == 1)
            w += snprintf(line + w, sizeof line - (size_t)w, "%.*s=\"%.*s\",", (int)key.n,
                          key.p, (int)v.s.n, v.s.p);
        else
            w += snprintf(line + w, sizeof line - (size_t)w, "%.*s=\"%lld\",", (int)key.n,
                          key.p, (long long)v.i);
    }
    snprintf(line + w, sizeof line - (size_t)w, "} %g", ((const cum_state *)s->state)->value);
    r->sink += (double)line[w - 1];
    return 0;
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    while (!atomic_load(&r->stop)) {
        ot_mstore_visit(r->st, visit_one, r);
        r->passes++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    size_t lookups = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000000;
    size_t streams = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
    if (!lookups || streams < 16) {
        fprintf(stderr, "usage: bench-store [lookups] [streams >= 16]\n");
        return 2;
    }
    fixture f;
    fixture_init(&f, streams);

    /* 1. hot path */
    ot_mstore *st = store_new();
    double one = run_lookups(st, &f, lookups, 1, NULL);
    ot_mstore_free(st);
    st = store_new();
    size_t rot = streams < 10000 ? streams : 10000;
    double many = run_lookups(st, &f, lookups, rot, NULL);
    ot_mstore_free(st);

    /* 2. memory per stream */
    st = store_new();
    size_t before = ot_mstore_bytes(st);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    if (ot_mstore_key_otlp(&k, &f.res, &f.scope, &f.metric) < 0)
        return 1;
    size_t base_bytes = k.base_len, id_bytes = 0;
    for (size_t i = 0; i < streams; i++) {
        if (one_lookup(st, &k, &f, i, 1) < 0)
            return 1;
        id_bytes += k.buf.len - k.base_len;
    }
    ot_mstore_key_free(&k);
    size_t after = ot_mstore_bytes(st);
    double per = (double)(after - before - base_bytes - id_bytes - streams * sizeof(cum_state)) /
                 (double)streams;
    double id_avg = (double)id_bytes / (double)streams;
    ot_mstore_free(st);

    /* 3. against a reader */
    st = store_new();
    reader r = {.st = st};
    atomic_init(&r.stop, false);
    size_t cstreams = streams < 100000 ? streams : 100000;
    ot_mstore_key w = OT_MSTORE_KEY_INIT;
    if (ot_mstore_key_otlp(&w, &f.res, &f.scope, &f.metric) < 0)
        return 1;
    for (size_t i = 0; i < cstreams; i++)
        one_lookup(st, &w, &f, i, 1);
    ot_mstore_key_free(&w);
    pthread_t th;
    if (pthread_create(&th, NULL, reader_main, &r) != 0)
        return 1;
    int64_t worst = 0;
    int64_t t0 = now_ns();
    double contended = run_lookups(st, &f, lookups / 2 ? lookups / 2 : 1, cstreams, &worst);
    double secs = (double)(now_ns() - t0) / 1e9;
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    ot_mstore_free(st);

    printf("metric stream store (tests/bench/bench_store.c), 6 resource + 3 point attributes:\n");
    printf("  lookups, one stream:          %.1f M/s (%.1f ns each)\n", one / 1e6, 1e9 / one);
    printf("  lookups, %zu streams:       %.1f M/s (%.1f ns each)\n", rot, many / 1e6, 1e9 / many);
    printf("  overhead per stream:          %.1f bytes (beyond %zu B state, %.1f B identity; %zu streams)\n",
           per, sizeof(cum_state), id_avg, streams);
    printf("  with a reader visiting %zu streams nonstop: writer %.1f M/s, reader %.1f passes/s, "
           "slowest sampled lookup %.1f us\n",
           cstreams, contended / 1e6, (double)r.passes / secs, (double)worst / 1e3);
    fixture_free(&f);
    return 0;
}
