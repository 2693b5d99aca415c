/* Unit tests for the metric stream store (agent/store): what makes two
 * streams the same (attribute order, value types, resource vs point,
 * every metric field, nested values, plain-string builders), insert and
 * lookup, expiry, the stream and byte caps, memory accounting, reading an
 * identity back, and one writer against a reader and an expirer. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/clock.h"
#include "store/mstore.h"

/* ---- OTLP builders (arena-owned) ---------------------------------------- */

static ot_arena *A;

static void setup(void)
{
    A = ot_arena_new(0);
}

static void teardown(void)
{
    ot_arena_free(A);
}

static ot_anyvalue *val_new(void)
{
    ot_anyvalue *v = ot_arena_calloc(A, sizeof *v);
    opentelemetry__proto__common__v1__any_value__init(v);
    return v;
}

static ot_keyvalue *kv(const char *key, ot_anyvalue *v)
{
    ot_keyvalue *e = ot_arena_calloc(A, sizeof *e);
    opentelemetry__proto__common__v1__key_value__init(e);
    e->key = ot_arena_strdup(A, key);
    e->value = v;
    return e;
}

static ot_anyvalue *vs(const char *s)
{
    ot_anyvalue *v = val_new();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = ot_arena_strdup(A, s);
    return v;
}

static ot_anyvalue *vi(int64_t i)
{
    ot_anyvalue *v = val_new();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static ot_anyvalue *vd(double d)
{
    ot_anyvalue *v = val_new();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

static ot_anyvalue *vb(bool b)
{
    ot_anyvalue *v = val_new();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

static ot_anyvalue *varr(size_t n, ot_anyvalue **vals)
{
    ot_anyvalue *v = val_new();
    ot_arrayvalue *a = ot_arena_calloc(A, sizeof *a);
    opentelemetry__proto__common__v1__array_value__init(a);
    a->n_values = n;
    a->values = ot_arena_memdup(A, vals, n * sizeof *vals);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = a;
    return v;
}

static ot_anyvalue *vkvl(size_t n, ot_keyvalue **kvs)
{
    ot_anyvalue *v = val_new();
    ot_kvlist *l = ot_arena_calloc(A, sizeof *l);
    opentelemetry__proto__common__v1__key_value_list__init(l);
    l->n_values = n;
    l->values = ot_arena_memdup(A, kvs, n * sizeof *kvs);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = l;
    return v;
}

static ot_resource *resource(size_t n, ot_keyvalue **kvs)
{
    ot_resource *r = ot_arena_calloc(A, sizeof *r);
    opentelemetry__proto__resource__v1__resource__init(r);
    r->n_attributes = n;
    r->attributes = ot_arena_memdup(A, kvs, n * sizeof *kvs);
    return r;
}

static ot_scope *scope(const char *name, const char *version)
{
    ot_scope *s = ot_arena_calloc(A, sizeof *s);
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = ot_arena_strdup(A, name);
    s->version = ot_arena_strdup(A, version);
    return s;
}

/* A sum (temporality, monotonic), or a gauge when temporality < 0. */
static ot_metric *metric(const char *name, const char *unit, int temporality, bool monotonic)
{
    ot_metric *m = ot_arena_calloc(A, sizeof *m);
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = ot_arena_strdup(A, name);
    m->unit = ot_arena_strdup(A, unit);
    if (temporality < 0) {
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        m->gauge = ot_arena_calloc(A, sizeof *m->gauge);
        opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
    } else {
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        m->sum = ot_arena_calloc(A, sizeof *m->sum);
        opentelemetry__proto__metrics__v1__sum__init(m->sum);
        m->sum->aggregation_temporality = temporality;
        m->sum->is_monotonic = monotonic;
    }
    return m;
}

#define KVS(...) ((ot_keyvalue *[]){__VA_ARGS__})
#define NKV(...) (sizeof(KVS(__VA_ARGS__)) / sizeof(ot_keyvalue *))

/* Identity of one point; returns its hash and leaves its bytes in *out. */
typedef struct ident {
    uint64_t hash;
    char bytes[1024];
    size_t len;
} ident;

static ident id_of(const ot_resource *r, const ot_scope *s, const ot_metric *m,
                   ot_keyvalue **attrs, size_t n)
{
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    cr_assert_eq(ot_mstore_key_otlp(&k, r, s, m), 0);
    cr_assert_eq(ot_mstore_key_point(&k, attrs, n), 0);
    ident out = {k.hash, {0}, k.buf.len};
    cr_assert_lt(k.buf.len, sizeof out.bytes);
    memcpy(out.bytes, k.buf.data, k.buf.len);
    ot_mstore_key_free(&k);
    return out;
}

static bool same(ident a, ident b)
{
    bool eq = a.len == b.len && !memcmp(a.bytes, b.bytes, a.len);
    cr_assert_eq(eq, a.hash == b.hash, "bytes and hash disagree");
    return eq;
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, attribute_order_does_not_matter)
{
    ot_resource *r1 = resource(2, KVS(kv("service.name", vs("cart")), kv("host", vs("h1"))));
    ot_resource *r2 = resource(2, KVS(kv("host", vs("h1")), kv("service.name", vs("cart"))));
    ot_scope *s = scope("lib", "1.0");
    ot_metric *m = metric("requests", "1", 2, true);
    ident a = id_of(r1, s, m, KVS(kv("a", vi(1)), kv("b", vs("x")), kv("c", vb(true))), 3);
    ident b = id_of(r2, s, m, KVS(kv("c", vb(true)), kv("a", vi(1)), kv("b", vs("x"))), 3);
    cr_expect(same(a, b));
    ident c = id_of(r2, s, m, KVS(kv("c", vb(true)), kv("a", vi(2)), kv("b", vs("x"))), 3);
    cr_expect_not(same(a, c));
    /* many attributes take the other sort path */
    ot_keyvalue *fw[40], *bw[40];
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", i);
        fw[i] = kv(key, vi(i));
        bw[39 - i] = fw[i];
    }
    cr_expect(same(id_of(r1, s, m, fw, 40), id_of(r1, s, m, bw, 40)));
}

Test(store, value_types_matter)
{
    ot_scope *s = scope("lib", "");
    ot_metric *m = metric("g", "", -1, false);
    ident str1 = id_of(NULL, s, m, KVS(kv("k", vs("1"))), 1);
    ident int1 = id_of(NULL, s, m, KVS(kv("k", vi(1))), 1);
    ident dbl1 = id_of(NULL, s, m, KVS(kv("k", vd(1.0))), 1);
    ident bool1 = id_of(NULL, s, m, KVS(kv("k", vb(true))), 1);
    ident none = id_of(NULL, s, m, KVS(kv("k", NULL)), 1);
    ident empty = id_of(NULL, s, m, KVS(kv("k", vs(""))), 1);
    ident arr = id_of(NULL, s, m, KVS(kv("k", varr(1, (ot_anyvalue *[]){vs("1")}))), 1);
    ident all[] = {str1, int1, dbl1, bool1, none, empty, arr};
    for (size_t i = 0; i < 7; i++)
        for (size_t j = i + 1; j < 7; j++)
            cr_expect_not(same(all[i], all[j]), "%zu vs %zu", i, j);
    cr_expect(same(int1, id_of(NULL, s, m, KVS(kv("k", vi(1))), 1)));
}

Test(store, resource_and_point_attributes_differ)
{
    ot_scope *s = scope("lib", "");
    ot_metric *m = metric("g", "", -1, false);
    ident res = id_of(resource(1, KVS(kv("k", vs("v")))), s, m, NULL, 0);
    ident pt = id_of(resource(0, NULL), s, m, KVS(kv("k", vs("v"))), 1);
    cr_expect_not(same(res, pt));
    /* Moving bytes between key and value must not give the same stream. */
    cr_expect_not(same(id_of(NULL, s, m, KVS(kv("ab", vs("c"))), 1),
                       id_of(NULL, s, m, KVS(kv("a", vs("bc"))), 1)));
}

Test(store, every_metric_field_changes_identity)
{
    ot_resource *r = resource(1, KVS(kv("service.name", vs("cart"))));
    ot_scope *s = scope("lib", "1.0");
    ot_keyvalue **p = KVS(kv("route", vs("/a")));
    ident base = id_of(r, s, metric("req", "1", 2, true), p, 1);
    ident other[] = {
        id_of(r, s, metric("req2", "1", 2, true), p, 1),  /* name */
        id_of(r, s, metric("req", "ms", 2, true), p, 1),  /* unit */
        id_of(r, s, metric("req", "1", -1, false), p, 1), /* type */
        id_of(r, s, metric("req", "1", 1, true), p, 1),   /* temporality */
        id_of(r, s, metric("req", "1", 2, false), p, 1),  /* monotonic */
        id_of(r, scope("lib2", "1.0"), metric("req", "1", 2, true), p, 1),
        id_of(r, scope("lib", "1.1"), metric("req", "1", 2, true), p, 1),
        id_of(resource(1, KVS(kv("service.name", vs("cat")))), s, metric("req", "1", 2, true), p, 1),
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        cr_expect_not(same(base, other[i]), "field %zu", i);
    cr_expect(same(base, id_of(r, s, metric("req", "1", 2, true), p, 1)));
}

Test(store, nested_values_hash_structurally)
{
    ot_scope *s = scope("lib", "");
    ot_metric *m = metric("g", "", -1, false);
    ot_anyvalue *l1 = vkvl(2, KVS(kv("x", vi(1)), kv("y", vs("z"))));
    ot_anyvalue *l2 = vkvl(2, KVS(kv("y", vs("z")), kv("x", vi(1))));
    cr_expect(same(id_of(NULL, s, m, KVS(kv("k", l1)), 1), id_of(NULL, s, m, KVS(kv("k", l2)), 1)));
    ot_anyvalue *a1 = varr(2, (ot_anyvalue *[]){vi(1), vi(2)});
    ot_anyvalue *a2 = varr(2, (ot_anyvalue *[]){vi(2), vi(1)});
    cr_expect_not(same(id_of(NULL, s, m, KVS(kv("k", a1)), 1), id_of(NULL, s, m, KVS(kv("k", a2)), 1)));
    ot_anyvalue *deep1 = varr(1, (ot_anyvalue *[]){l1});
    ot_anyvalue *deep2 = varr(1, (ot_anyvalue *[]){l2});
    cr_expect(same(id_of(NULL, s, m, KVS(kv("k", deep1)), 1), id_of(NULL, s, m, KVS(kv("k", deep2)), 1)));
}

Test(store, plain_strings_build_the_same_identity_as_otlp)
{
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    ot_mstore_metric md = {.name = "page.views", .unit = "1", .type = OT_MSTORE_SUM,
                           .temporality = 1, .monotonic = true, .scope_name = "dogstatsd"};
    const char *rk[] = {"host"}, *rv[] = {"web-1"};
    const char *pk[] = {"env", "code"}, *pv[] = {"prod", "200"};
    cr_assert_eq(ot_mstore_key_base(&k, rk, rv, 1, &md), 0);
    cr_assert_eq(ot_mstore_key_point_strs(&k, pk, pv, 2), 0);
    ident raw = {k.hash, {0}, k.buf.len};
    memcpy(raw.bytes, k.buf.data, k.buf.len);
    ident otlp = id_of(resource(1, KVS(kv("host", vs("web-1")))), scope("dogstatsd", ""),
                       metric("page.views", "1", 1, true),
                       KVS(kv("code", vs("200")), kv("env", vs("prod"))), 2);
    cr_expect(same(raw, otlp));
    /* the base is kept: a second point rewrites only the point part */
    uint64_t base = k.base_hash;
    cr_assert_eq(ot_mstore_key_point_strs(&k, pk, pv, 1), 0);
    cr_expect_eq(k.base_hash, base);
    cr_expect_neq(k.hash, raw.hash);
    ot_mstore_key_free(&k);
}

/* ---- the store ----------------------------------------------------------- */

typedef struct counter_state {
    int64_t value;
    int64_t twice; /* always 2 * value when the writer is not inside */
} counter_state;

typedef struct removed_log {
    int n;
    int64_t values[16];
    ot_mstore_why why[16];
} removed_log;

static void on_remove(void *ctx, ot_mstore_stream *s, ot_mstore_why why)
{
    removed_log *log = ctx;
    if (log->n < 16) {
        log->values[log->n] = ((counter_state *)s->state)->value;
        log->why[log->n] = why;
    }
    log->n++;
}

/* test_store_compact.c runs this suite again with the memory options. */
#ifndef OT_TEST_STORE_COMPACT
#define OT_TEST_STORE_COMPACT false
#endif

static ot_mstore *store_new(removed_log *log, size_t max_streams, int64_t max_idle)
{
    ot_err err;
    ot_mstore_opts o = {.state_size = sizeof(counter_state), .max_streams = max_streams,
                        .max_idle_ns = max_idle, .on_remove = on_remove, .ctx = log,
                        .shared_keys = OT_TEST_STORE_COMPACT, .slab = OT_TEST_STORE_COMPACT};
    ot_mstore *st = ot_mstore_new(&o, &err);
    cr_assert(st, "%s", err.msg);
    return st;
}

/* The key of series i of one metric. */
static void key_series(ot_mstore_key *k, int i)
{
    char v[32];
    snprintf(v, sizeof v, "s%d", i);
    const char *keys[] = {"series"}, *vals[] = {v};
    ot_mstore_metric md = {.name = "m", .type = OT_MSTORE_GAUGE};
    cr_assert_eq(ot_mstore_key_base(k, NULL, NULL, 0, &md), 0);
    cr_assert_eq(ot_mstore_key_point_strs(k, keys, vals, 1), 0);
}

/* Adds add to series i at time now; returns what get said. */
static ot_mstore_res bump(ot_mstore *st, int i, int64_t now, int64_t add)
{
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    key_series(&k, i);
    ot_mstore_ref ref;
    ot_mstore_res r = ot_mstore_get(st, &k, now, 0, &ref);
    if (r == OT_MSTORE_FOUND || r == OT_MSTORE_NEW) {
        counter_state *c = ref.state;
        c->value += add;
        c->twice = 2 * c->value;
        ot_mstore_put(st, &ref, false);
    }
    ot_mstore_key_free(&k);
    return r;
}

Test(store, insert_then_lookup_returns_the_same_state)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 0);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    ot_mstore_ref ref;
    ot_resource *r = resource(1, KVS(kv("service.name", vs("cart"))));
    cr_assert_eq(ot_mstore_key_otlp(&k, r, scope("lib", "1"), metric("req", "1", 2, true)), 0);
    cr_assert_eq(ot_mstore_key_point(&k, KVS(kv("a", vi(1)), kv("b", vs("x"))), 2), 0);
    cr_assert_eq(ot_mstore_get(st, &k, 100, 0, &ref), OT_MSTORE_NEW);
    counter_state *c = ref.state;
    cr_expect_eq(c->value, 0);
    cr_expect_eq(ref.stream->first_ns, 100);
    c->value = 42;
    void *first = ref.state;
    ot_mstore_put(st, &ref, false);

    cr_assert_eq(ot_mstore_key_point(&k, KVS(kv("b", vs("x")), kv("a", vi(1))), 2), 0);
    cr_assert_eq(ot_mstore_get(st, &k, 200, 0, &ref), OT_MSTORE_FOUND);
    cr_expect_eq(ref.state, first);
    cr_expect_eq(((counter_state *)ref.state)->value, 42);
    cr_expect_eq(ref.stream->first_ns, 100);
    cr_expect_eq(ref.stream->last_ns, 200);
    ot_mstore_put(st, &ref, false);

    /* a different point of the same metric is a new stream, sized on request */
    cr_assert_eq(ot_mstore_key_point(&k, KVS(kv("a", vi(2)), kv("b", vs("x"))), 2), 0);
    cr_assert_eq(ot_mstore_get(st, &k, 300, 256, &ref), OT_MSTORE_NEW);
    cr_expect_eq(ref.stream->state_size, 256);
    for (int i = 0; i < 256; i++)
        cr_assert_eq(((unsigned char *)ref.state)[i], 0);
    ot_mstore_put(st, &ref, false);

    /* many streams, every one found again */
    for (int i = 0; i < 5000; i++)
        cr_assert_eq(bump(st, i, 1, i), OT_MSTORE_NEW);
    for (int i = 0; i < 5000; i++)
        cr_assert_eq(bump(st, i, 2, i), OT_MSTORE_FOUND);
    ot_mstore_stats stats;
    ot_mstore_stats_get(st, &stats);
    cr_expect_eq(stats.streams, 5002);
    ot_mstore_key_free(&k);
    ot_mstore_free(st);
    cr_expect_eq(log.n, 5002);
    cr_expect_eq(log.why[0], OT_MSTORE_CLOSED);
}

Test(store, a_hash_collision_never_merges_streams)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 0);
    ot_mstore_key a = OT_MSTORE_KEY_INIT, b = OT_MSTORE_KEY_INIT;
    ot_mstore_ref ref;
    key_series(&a, 1);
    key_series(&b, 2);
    b.hash = a.hash; /* as if the two identities hashed alike */
    cr_assert_eq(ot_mstore_get(st, &a, 1, 0, &ref), OT_MSTORE_NEW);
    ((counter_state *)ref.state)->value = 1;
    ot_mstore_put(st, &ref, false);
    cr_assert_eq(ot_mstore_get(st, &b, 1, 0, &ref), OT_MSTORE_NEW);
    ((counter_state *)ref.state)->value = 2;
    ot_mstore_put(st, &ref, false);
    cr_assert_eq(ot_mstore_get(st, &a, 1, 0, &ref), OT_MSTORE_FOUND);
    cr_expect_eq(((counter_state *)ref.state)->value, 1);
    ot_mstore_put(st, &ref, false);
    /* same point part, other metric, same hash: the base bytes decide */
    ot_mstore_metric md = {.name = "other", .type = OT_MSTORE_GAUGE};
    const char *keys[] = {"series"}, *vals[] = {"s1"};
    cr_assert_eq(ot_mstore_key_base(&b, NULL, NULL, 0, &md), 0);
    cr_assert_eq(ot_mstore_key_point_strs(&b, keys, vals, 1), 0);
    b.hash = a.hash;
    cr_assert_eq(ot_mstore_get(st, &b, 1, 0, &ref), OT_MSTORE_NEW);
    ot_mstore_put(st, &ref, false);
    ot_mstore_key_free(&a);
    ot_mstore_key_free(&b);
    ot_mstore_free(st);
    cr_expect_eq(log.n, 3);
}

Test(store, reads_an_identity_back)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 0);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    ot_mstore_ref ref;
    ot_resource *r = resource(1, KVS(kv("service.name", vs("cart"))));
    cr_assert_eq(ot_mstore_key_otlp(&k, r, scope("lib", "1.2"), metric("req", "ms", 2, true)), 0);
    ot_anyvalue *nested = vkvl(1, KVS(kv("x", vd(0.5))));
    cr_assert_eq(ot_mstore_key_point(&k, KVS(kv("code", vi(200)), kv("n", nested)), 2), 0);
    cr_assert_eq(ot_mstore_get(st, &k, 1, 0, &ref), OT_MSTORE_NEW);
    ot_mstore_info info;
    ot_mstore_stream_info(ref.stream, &info);
    cr_expect_eq(info.name.n, 3);
    cr_expect(!memcmp(info.name.p, "req", 3));
    cr_expect(!memcmp(info.unit.p, "ms", 2));
    cr_expect(!memcmp(info.scope_version.p, "1.2", 3));
    cr_expect_eq(info.type, OT_MSTORE_SUM);
    cr_expect_eq(info.temporality, 2);
    cr_expect(info.monotonic);
    ot_mstore_str key;
    ot_mstore_val v;
    cr_assert(ot_mstore_next_kv(&info.resource, &key, &v));
    cr_expect(key.n == 12 && !memcmp(key.p, "service.name", 12));
    cr_expect(v.type == 1 && v.s.n == 4 && !memcmp(v.s.p, "cart", 4));
    cr_expect_not(ot_mstore_next_kv(&info.resource, &key, &v));
    int seen = 0;
    while (ot_mstore_next_kv(&info.attrs, &key, &v)) {
        if (key.n == 4 && !memcmp(key.p, "code", 4)) {
            cr_expect(v.type == 3 && v.i == 200);
            seen |= 1;
        } else if (key.n == 1 && key.p[0] == 'n') {
            cr_assert_eq(v.type, 6);
            ot_mstore_val inner;
            cr_assert(ot_mstore_next_kv(&v.sub, &key, &inner));
            cr_expect(key.n == 1 && key.p[0] == 'x' && inner.type == 4 && inner.d == 0.5);
            seen |= 2;
        }
    }
    cr_expect_eq(seen, 3);
    ot_mstore_put(st, &ref, false);
    ot_mstore_key_free(&k);
    ot_mstore_free(st);
}

Test(store, expiry_removes_only_idle_streams)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 1000);
    cr_assert_eq(bump(st, 1, 0, 11), OT_MSTORE_NEW);
    cr_assert_eq(bump(st, 2, 0, 22), OT_MSTORE_NEW);
    cr_assert_eq(bump(st, 3, 0, 33), OT_MSTORE_NEW);
    cr_assert_eq(bump(st, 2, 900, 0), OT_MSTORE_FOUND); /* 2 stays busy */
    cr_expect_eq(ot_mstore_expire(st, 999), 0);
    cr_expect_eq(log.n, 0);
    cr_expect_eq(ot_mstore_expire(st, 1500), 2);
    cr_assert_eq(log.n, 2);
    cr_expect_eq(log.why[0], OT_MSTORE_EXPIRED);
    cr_expect_eq(log.why[1], OT_MSTORE_EXPIRED);
    cr_expect(log.values[0] + log.values[1] == 44 &&
              (log.values[0] == 11 || log.values[0] == 33));
    ot_mstore_stats stats;
    ot_mstore_stats_get(st, &stats);
    cr_expect_eq(stats.streams, 1);
    cr_expect_eq(stats.removed, 2);
    cr_expect_eq(bump(st, 2, 1600, 0), OT_MSTORE_FOUND);
    cr_expect_eq(bump(st, 1, 1600, 0), OT_MSTORE_NEW); /* starts again from zero */
    cr_expect_eq(ot_mstore_expire(st, 2599), 0);
    cr_expect_eq(ot_mstore_expire(st, 2600), 2);
    ot_mstore_free(st);
    cr_expect_eq(log.n, 4);
}

Test(store, expiry_in_a_crowded_stripe_keeps_every_live_stream)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 10);
    for (int i = 0; i < 3000; i++)
        cr_assert_eq(bump(st, i, i % 2 ? 100 : 0, 1), OT_MSTORE_NEW);
    cr_expect_eq(ot_mstore_expire(st, 50), 1500);
    for (int i = 1; i < 3000; i += 2)
        cr_assert_eq(bump(st, i, 100, 1), OT_MSTORE_FOUND, "series %d", i);
    ot_mstore_free(st);
}

Test(store, dropping_a_held_stream)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 0);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    ot_mstore_ref ref;
    key_series(&k, 7);
    cr_assert_eq(ot_mstore_get(st, &k, 1, 0, &ref), OT_MSTORE_NEW);
    ot_mstore_put(st, &ref, true);
    cr_expect_eq(log.n, 1);
    cr_expect_eq(log.why[0], OT_MSTORE_DROPPED);
    cr_assert_eq(ot_mstore_get(st, &k, 1, 0, &ref), OT_MSTORE_NEW);
    ot_mstore_put(st, &ref, false);
    ot_mstore_key_free(&k);
    ot_mstore_free(st);
}

typedef struct grown_seen {
    int n;
    uint32_t state_size;
    int64_t value, first_ns;
    uint8_t tail;
    char attrs[64];
} grown_seen;

static int see_grown(void *ctx, const ot_mstore_stream *s)
{
    grown_seen *g = ctx;
    g->n++;
    g->state_size = s->state_size;
    g->value = ((const counter_state *)(const void *)s->state)->value;
    g->first_ns = s->first_ns;
    g->tail = s->state[s->state_size - 1];
    ot_mstore_info in;
    ot_mstore_stream_info(s, &in);
    ot_mstore_str k;
    ot_mstore_val v;
    g->attrs[0] = 0;
    if (ot_mstore_next_kv(&in.attrs, &k, &v))
        snprintf(g->attrs, sizeof g->attrs, "%.*s=%.*s", (int)k.n, k.p, (int)v.s.n, v.s.p);
    return 0;
}

/* A held stream made larger keeps its state, identity and times, is found
 * again at its new size, and is paid for at it; the byte cap stops it. */
Test(store, growing_a_held_stream_keeps_it)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 0);
    for (int i = 0; i < 50; i++) /* neighbours in the stripes, for the slot search */
        cr_assert_eq(bump(st, i, 5, i), OT_MSTORE_NEW);
    size_t before = ot_mstore_bytes(st);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    ot_mstore_ref ref;
    key_series(&k, 7);
    cr_assert_eq(ot_mstore_get(st, &k, 9, 0, &ref), OT_MSTORE_FOUND);
    size_t big = sizeof(counter_state) + 200;
    cr_assert_eq(ot_mstore_grow(st, &ref, big), 0);
    cr_expect_eq(ref.stream->state_size, big);
    cr_expect_eq(((counter_state *)ref.state)->value, 7);
    ((unsigned char *)ref.state)[big - 1] = 0xab;
    cr_assert_eq(ot_mstore_grow(st, &ref, 8), 0, "smaller: nothing to do");
    cr_expect_eq(ref.stream->state_size, big);
    ot_mstore_put(st, &ref, false);
    cr_expect_gt(ot_mstore_bytes(st), before);
    cr_assert_eq(ot_mstore_get(st, &k, 10, 0, &ref), OT_MSTORE_FOUND);
    cr_expect_eq(ref.stream->state_size, big);
    ot_mstore_put(st, &ref, false);
    grown_seen g = {0};
    uint64_t h = k.hash;
    cr_assert_eq(ot_mstore_visit_hashes(st, &h, 1, see_grown, &g), 0);
    cr_expect_eq(g.n, 1);
    cr_expect_eq(g.state_size, big);
    cr_expect_eq(g.value, 7);
    cr_expect_eq(g.first_ns, 5);
    cr_expect_eq(g.tail, 0xab);
    cr_expect_str_eq(g.attrs, "series=s7");
    ot_mstore_stats stats;
    ot_mstore_stats_get(st, &stats);
    cr_expect_eq(stats.streams, 50);
    cr_expect_eq(stats.removed, 0);
    cr_expect_eq(log.n, 0);
    for (int i = 0; i < 50; i++)
        cr_expect_eq(bump(st, i, 11, 0), OT_MSTORE_FOUND, "series %d", i);
    ot_mstore_key_free(&k);
    ot_mstore_free(st);
    cr_expect_eq(log.n, 50, "each removed once at close, the grown one too");

    ot_err err;
    ot_mstore_opts o = {.state_size = sizeof(counter_state), .slab = OT_TEST_STORE_COMPACT,
                        .shared_keys = OT_TEST_STORE_COMPACT};
    st = ot_mstore_new(&o, &err);
    cr_assert(st);
    o.max_bytes = ot_mstore_bytes(st) + 2 * OT_MSTORE_SLAB_PAGE;
    ot_mstore_free(st);
    st = ot_mstore_new(&o, &err);
    cr_assert(st);
    k = (ot_mstore_key)OT_MSTORE_KEY_INIT;
    key_series(&k, 1);
    cr_assert_eq(ot_mstore_get(st, &k, 1, 0, &ref), OT_MSTORE_NEW);
    ((counter_state *)ref.state)->value = 3;
    ot_mstore_stream *was = ref.stream;
    cr_expect_eq(ot_mstore_grow(st, &ref, 4 * OT_MSTORE_SLAB_PAGE), -1);
    cr_expect_eq(ref.stream, was, "refused: as it was");
    cr_expect_eq(((counter_state *)ref.state)->value, 3);
    ot_mstore_put(st, &ref, false);
    cr_expect_leq(ot_mstore_bytes(st), o.max_bytes);
    ot_mstore_key_free(&k);
    ot_mstore_free(st);
}

Test(store, cap_refuses_new_streams_and_existing_ones_update)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 2, 100);
    cr_expect_eq(bump(st, 1, 0, 1), OT_MSTORE_NEW);
    cr_expect_eq(bump(st, 2, 0, 1), OT_MSTORE_NEW);
    cr_expect_eq(bump(st, 3, 0, 1), OT_MSTORE_REFUSED);
    cr_expect_eq(bump(st, 4, 0, 1), OT_MSTORE_REFUSED);
    cr_expect_eq(bump(st, 1, 50, 1), OT_MSTORE_FOUND);
    cr_expect_eq(bump(st, 2, 50, 1), OT_MSTORE_FOUND);
    ot_mstore_stats stats;
    ot_mstore_stats_get(st, &stats);
    cr_expect_eq(stats.streams, 2);
    cr_expect_eq(stats.refused, 2);
    cr_expect_eq(stats.inserted, 2);
    /* room again once one expires */
    cr_expect_eq(bump(st, 2, 120, 1), OT_MSTORE_FOUND);
    cr_expect_eq(ot_mstore_expire(st, 150), 1);
    cr_expect_eq(bump(st, 3, 150, 1), OT_MSTORE_NEW);
    cr_expect_eq(bump(st, 4, 150, 1), OT_MSTORE_REFUSED);
    ot_mstore_free(st);
}

Test(store, byte_cap_refuses_new_streams)
{
    ot_err err;
    ot_mstore_opts o = {.state_size = 64};
    ot_mstore *st = ot_mstore_new(&o, &err);
    cr_assert(st);
    size_t empty = ot_mstore_bytes(st);
    ot_mstore_free(st);
    o.max_bytes = empty + 1024;
    st = ot_mstore_new(&o, &err);
    int made = 0;
    for (int i = 0; i < 100 && bump(st, i, 0, 1) == OT_MSTORE_NEW; i++)
        made++;
    cr_expect_gt(made, 0);
    cr_expect_lt(made, 100);
    cr_expect_leq(ot_mstore_bytes(st), o.max_bytes);
    cr_expect_eq(bump(st, 0, 1, 1), OT_MSTORE_FOUND);
    ot_mstore_stats stats;
    ot_mstore_stats_get(st, &stats);
    cr_expect_eq(stats.refused, 1);
    ot_mstore_free(st);
}

Test(store, memory_goes_up_on_insert_and_back_on_expiry)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 10);
    size_t empty = ot_mstore_bytes(st);
    cr_expect_gt(empty, 0);
    cr_assert_eq(bump(st, 1, 0, 1), OT_MSTORE_NEW);
    size_t one = ot_mstore_bytes(st);
    cr_expect_gt(one, empty + sizeof(counter_state));
    cr_assert_eq(bump(st, 2, 0, 1), OT_MSTORE_NEW);
    size_t two = ot_mstore_bytes(st);
    if (OT_TEST_STORE_COMPACT) /* the first stream's slab page holds the second */
        cr_expect_eq(two, one);
    else
        cr_expect_gt(two, one);
    cr_assert_eq(bump(st, 2, 0, 1), OT_MSTORE_FOUND);
    cr_expect_eq(ot_mstore_bytes(st), two);
    cr_expect_eq(ot_mstore_expire(st, 100), 2);
    /* too few streams to grow a table: every byte comes back, but for the
     * page a slab keeps for the next stream of the size */
    cr_expect_eq(ot_mstore_bytes(st), empty + (OT_TEST_STORE_COMPACT ? OT_MSTORE_SLAB_PAGE : 0));
    ot_mstore_free(st);
}

Test(store, sweeper_thread_expires_without_readers)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 1);
    ot_err err;
    cr_assert_eq(bump(st, 1, ot_now_ns(), 1), OT_MSTORE_NEW);
    cr_assert_eq(ot_mstore_sweeper_start(st, 1000000, &err), 0, "%s", err.msg);
    cr_expect_neq(ot_mstore_sweeper_start(st, 1000000, &err), 0);
    ot_mstore_stats stats;
    for (int i = 0; i < 10000; i++) { /* up to 10 s on a loaded machine */
        ot_mstore_stats_get(st, &stats);
        if (!stats.streams)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cr_expect_eq(stats.streams, 0);
    ot_mstore_free(st);
    cr_expect_eq(log.n, 1);
    cr_expect_eq(log.why[0], OT_MSTORE_EXPIRED);
}

/* ---- one writer, a reader and an expirer ---------------------------------- */

enum { CONC_SERIES = 500, CONC_ROUNDS = 40 };

typedef struct conc {
    ot_mstore *st;
    atomic_bool done;
    atomic_long bad;
    atomic_long visits;
} conc;

static int check_stream(void *ctx, const ot_mstore_stream *s)
{
    conc *c = ctx;
    const counter_state *cs = (const counter_state *)s->state;
    if (cs->twice != 2 * cs->value || s->last_ns < s->first_ns)
        atomic_fetch_add(&c->bad, 1);
    ot_mstore_info info;
    ot_mstore_stream_info(s, &info);
    if (info.name.n != 1 || info.name.p[0] != 'm')
        atomic_fetch_add(&c->bad, 1);
    return 0;
}

static void *reader_main(void *arg)
{
    conc *c = arg;
    while (!atomic_load(&c->done)) {
        ot_mstore_visit(c->st, check_stream, c);
        atomic_fetch_add(&c->visits, 1);
    }
    return NULL;
}

static void *expirer_main(void *arg)
{
    conc *c = arg;
    int64_t t = 0;
    while (!atomic_load(&c->done))
        ot_mstore_expire(c->st, t += 3);
    return NULL;
}

Test(store, one_writer_with_a_reader_and_an_expirer)
{
    removed_log log = {0};
    conc c = {.st = store_new(&log, 0, 5)};
    atomic_init(&c.done, false);
    atomic_init(&c.bad, 0);
    atomic_init(&c.visits, 0);
    pthread_t rd, ex;
    cr_assert_eq(pthread_create(&rd, NULL, reader_main, &c), 0);
    cr_assert_eq(pthread_create(&ex, NULL, expirer_main, &c), 0);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    /* Enough rounds that the reader overlaps the writer a few times,
     * however the threads are scheduled; bounded so it cannot hang. */
    for (int round = 0; round < 100 * CONC_ROUNDS &&
                        (round < CONC_ROUNDS || atomic_load(&c.visits) < 5);
         round++) {
        for (int i = 0; i < CONC_SERIES; i++) {
            key_series(&k, i);
            ot_mstore_ref ref;
            ot_mstore_res r = ot_mstore_get(c.st, &k, round, 0, &ref);
            cr_assert(r == OT_MSTORE_FOUND || r == OT_MSTORE_NEW);
            counter_state *cs = ref.state;
            cs->value++;
            cs->twice = 2 * cs->value;
            ot_mstore_put(c.st, &ref, round % 7 == 0 && i % 11 == 0);
        }
    }
    atomic_store(&c.done, true);
    pthread_join(rd, NULL);
    pthread_join(ex, NULL);
    ot_mstore_visit(c.st, check_stream, &c);
    cr_expect_eq(atomic_load(&c.bad), 0);
    ot_mstore_key_free(&k);
    ot_mstore_free(c.st);
}

typedef struct index_log {
    ot_mstore_idx v[4096];
    size_t n;
    int calls;
} index_log;

static int log_index(void *ctx, const ot_mstore_idx *v, size_t n)
{
    index_log *l = ctx;
    for (size_t i = 0; i < n && l->n < 4096; i++)
        l->v[l->n++] = v[i];
    l->calls++;
    return 0;
}

typedef struct seen_log {
    double sum;
    size_t n;
    uint64_t base_id;
    bool attrs_ok;
} seen_log;

static int log_seen(void *ctx, const ot_mstore_stream *s)
{
    seen_log *l = ctx;
    l->sum += ((const counter_state *)s->state)->value;
    l->n++;
    l->base_id = ot_mstore_stream_base_id(s);
    ot_mstore_iter it;
    ot_mstore_stream_attrs(s, &it);
    ot_mstore_str k;
    ot_mstore_val v;
    l->attrs_ok = ot_mstore_next_kv(&it, &k, &v) && k.n == 6 && !memcmp(k.p, "series", 6) &&
                  v.s.n >= 2 && v.s.p[0] == 's' && !ot_mstore_next_kv(&it, &k, &v);
    return 0;
}

/* What a scrape does: an index of hashes, then streams looked up by hash. */
Test(store, index_then_visit_by_hash)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 0);
    for (int i = 0; i < 3000; i++)
        cr_assert_eq(bump(st, i, 1, i), OT_MSTORE_NEW);
    static index_log ix;
    memset(&ix, 0, sizeof ix);
    cr_assert_eq(ot_mstore_index(st, log_index, &ix), 0);
    cr_assert_eq(ix.n, 3000);
    for (size_t i = 1; i < ix.n; i++) {
        cr_assert_leq(ix.v[i - 1].hash >> 56, ix.v[i].hash >> 56, "grouped by stripe");
        cr_assert_eq(ix.v[i].base_id, ix.v[0].base_id, "one metric, one shared identity");
    }
    uint64_t *h = malloc(ix.n * sizeof *h);
    for (size_t i = 0; i < ix.n; i++)
        h[i] = ix.v[i].hash;
    seen_log seen = {0};
    cr_assert_eq(ot_mstore_visit_hashes(st, h, ix.n, log_seen, &seen), 0);
    cr_expect_eq(seen.n, 3000);
    cr_expect_eq(seen.sum, 3000.0 * 2999 / 2);
    cr_expect_eq(seen.base_id, ix.v[0].base_id);
    cr_expect(seen.attrs_ok);
    /* a stream gone since the index is skipped */
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    key_series(&k, 7);
    ot_mstore_ref ref;
    cr_assert_eq(ot_mstore_get(st, &k, 2, 0, &ref), OT_MSTORE_FOUND);
    ot_mstore_put(st, &ref, true);
    seen = (seen_log){0};
    cr_assert_eq(ot_mstore_visit_hashes(st, h, ix.n, log_seen, &seen), 0);
    cr_expect_eq(seen.n, 2999);
    cr_expect_eq(seen.sum, 3000.0 * 2999 / 2 - 7);
    /* two streams of one hash are both visited */
    ot_mstore_key a = OT_MSTORE_KEY_INIT, b = OT_MSTORE_KEY_INIT;
    key_series(&a, 5000);
    key_series(&b, 5001);
    b.hash = a.hash;
    cr_assert_eq(ot_mstore_get(st, &a, 1, 0, &ref), OT_MSTORE_NEW);
    ot_mstore_put(st, &ref, false);
    cr_assert_eq(ot_mstore_get(st, &b, 1, 0, &ref), OT_MSTORE_NEW);
    ot_mstore_put(st, &ref, false);
    seen = (seen_log){0};
    cr_assert_eq(ot_mstore_visit_hashes(st, &a.hash, 1, log_seen, &seen), 0);
    cr_expect_eq(seen.n, 2);
    free(h);
    ot_mstore_key_free(&k);
    ot_mstore_key_free(&a);
    ot_mstore_key_free(&b);
    ot_mstore_free(st);
}

/* ot_mstore_visit_stripe: each stream in exactly the stripe its hash
 * names (hash >> 56), and the stripes together are the whole store; two
 * stores keyed alike put one identity in the same stripe. */
typedef struct stripe_walk {
    size_t k, seen, wrong;
    uint64_t sum;
    bool has8; /* the stream of series 7 in st (value 8) */
} stripe_walk;

static int in_stripe(void *ctx, const ot_mstore_stream *s)
{
    stripe_walk *w = ctx;
    w->seen++;
    w->sum += (uint64_t)((const counter_state *)s->state)->value;
    w->has8 |= ((const counter_state *)s->state)->value == 8;
    if ((s->hash >> 56) != w->k)
        w->wrong++;
    return 0;
}

Test(store, visit_stripe_partitions_the_store)
{
    removed_log log = {0};
    ot_mstore *st = store_new(&log, 0, 0), *st2 = store_new(&log, 0, 0);
    enum { N = 3000 };
    uint64_t want = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(bump(st, i, 0, i + 1), OT_MSTORE_NEW);
        want += (uint64_t)i + 1;
    }
    cr_assert_eq(bump(st2, 7, 0, 1), OT_MSTORE_NEW);
    stripe_walk all = {0};
    size_t stripe_of_7 = OT_MSTORE_STRIPES, nonempty = 0;
    for (size_t k = 0; k < OT_MSTORE_STRIPES; k++) {
        stripe_walk w = {.k = k};
        cr_assert_eq(ot_mstore_visit_stripe(st, k, in_stripe, &w), 0);
        all.seen += w.seen;
        all.wrong += w.wrong;
        all.sum += w.sum;
        nonempty += w.seen > 0;
        stripe_walk w2 = {.k = k};
        ot_mstore_visit_stripe(st2, k, in_stripe, &w2);
        if (w2.seen)
            stripe_of_7 = k;
    }
    cr_expect_eq(all.seen, N);
    cr_expect_eq(all.wrong, 0);
    cr_expect_eq(all.sum, want);
    cr_expect_gt(nonempty, 200, "3000 streams over 256 stripes: %zu not empty", nonempty);
    stripe_walk none = {0};
    cr_expect_eq(ot_mstore_visit_stripe(st, OT_MSTORE_STRIPES, in_stripe, &none), 0);
    cr_expect_eq(none.seen, 0, "a stripe past the last is empty");
    /* series 7 of st2 sits in the stripe of series 7 of st */
    stripe_walk w7 = {.k = stripe_of_7};
    cr_assert_lt(stripe_of_7, OT_MSTORE_STRIPES);
    ot_mstore_visit_stripe(st, stripe_of_7, in_stripe, &w7);
    cr_expect(w7.has8, "the same identity, the same stripe in both stores");
    ot_mstore_free(st);
    ot_mstore_free(st2);
}
