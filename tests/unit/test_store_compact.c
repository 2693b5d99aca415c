/* Unit tests for the store's memory options (shared_keys, slab): the
 * whole store suite again with both on (suite store_compact; the suite
 * name is the one token renamed), then what only they can get wrong: two
 * streams whose values match but whose key lists differ, key lists shared
 * and released, readers of copies, pages given back. */
#define OT_TEST_STORE_COMPACT true
#define store store_compact
#include "test_store.c"
#undef store

static ot_mstore *compact_new(bool on, int64_t max_idle)
{
    ot_err err;
    ot_mstore_opts o = {.state_size = sizeof(counter_state), .max_idle_ns = max_idle,
                        .shared_keys = on, .slab = on};
    ot_mstore *st = ot_mstore_new(&o, &err);
    cr_assert(st, "%s", err.msg);
    return st;
}

/* Point attributes as text, in the order a reader gets them. */
static void attrs_text(const ot_mstore_stream *s, char *out, size_t cap)
{
    ot_mstore_iter it;
    ot_mstore_stream_attrs(s, &it);
    ot_mstore_str k;
    ot_mstore_val v;
    size_t n = 0;
    out[0] = 0;
    while (ot_mstore_next_kv(&it, &k, &v) && n < cap) {
        if (v.type == 1 || v.type == 7)
            n += (size_t)snprintf(out + n, cap - n, "%.*s=%.*s;", (int)k.n, k.p, (int)v.s.n,
                                  v.s.p);
        else
            n += (size_t)snprintf(out + n, cap - n, "%.*s:%d:%lld;", (int)k.n, k.p, v.type,
                                  (long long)v.i);
    }
}

typedef struct text_log {
    char t[8][256];
    int n;
} text_log;

static int log_text(void *ctx, const ot_mstore_stream *s)
{
    text_log *l = ctx;
    if (l->n < 8)
        attrs_text(s, l->t[l->n], sizeof l->t[0]);
    l->n++;
    return 0;
}

static void get_put(ot_mstore *st, ot_mstore_key *k, ot_mstore_res want, int64_t value)
{
    ot_mstore_ref ref;
    cr_assert_eq(ot_mstore_get(st, k, 1, 0, &ref), want);
    ((counter_state *)ref.state)->value = value;
    ot_mstore_put(st, &ref, false);
}

Test(store_compact_only, values_alike_keys_apart_are_two_streams)
{
    ot_mstore *st = compact_new(true, 0);
    ot_mstore_key a = OT_MSTORE_KEY_INIT, b = OT_MSTORE_KEY_INIT;
    ot_mstore_metric md = {.name = "m", .type = OT_MSTORE_GAUGE};
    const char *ka[] = {"ab"}, *kb[] = {"ba"}, *v[] = {"x"};
    cr_assert_eq(ot_mstore_key_base(&a, NULL, NULL, 0, &md), 0);
    cr_assert_eq(ot_mstore_key_base(&b, NULL, NULL, 0, &md), 0);
    cr_assert_eq(ot_mstore_key_point_strs(&a, ka, v, 1), 0);
    cr_assert_eq(ot_mstore_key_point_strs(&b, kb, v, 1), 0);
    b.hash = a.hash; /* only the key list tells them apart */
    get_put(st, &a, OT_MSTORE_NEW, 1);
    get_put(st, &b, OT_MSTORE_NEW, 2);
    ot_mstore_ref ref;
    cr_assert_eq(ot_mstore_get(st, &a, 2, 0, &ref), OT_MSTORE_FOUND);
    cr_expect_eq(((counter_state *)ref.state)->value, 1);
    char t[256];
    attrs_text(ref.stream, t, sizeof t);
    cr_expect_str_eq(t, "ab=x;");
    ot_mstore_put(st, &ref, false);
    cr_assert_eq(ot_mstore_get(st, &b, 2, 0, &ref), OT_MSTORE_FOUND);
    cr_expect_eq(((counter_state *)ref.state)->value, 2);
    attrs_text(ref.stream, t, sizeof t);
    cr_expect_str_eq(t, "ba=x;");
    ot_mstore_put(st, &ref, false);
    ot_mstore_key_free(&a);
    ot_mstore_key_free(&b);
    ot_mstore_free(st);
}

/* Every kind of value, duplicate keys and no attributes read back the same
 * from a compact store as from a plain one, in place and from copies. */
Test(store_compact_only, reads_back_as_a_plain_store, .init = setup, .fini = teardown)
{
    ot_mstore *plain = compact_new(false, 0), *compact = compact_new(true, 0);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    cr_assert_eq(ot_mstore_key_otlp(&k, NULL, NULL, metric("req", "1", 2, true)), 0);
    ot_keyvalue **lists[] = {
        KVS(kv("code", vi(200)), kv("route", vs("/a"))),
        KVS(kv("code", vi(201)), kv("route", vs("/a"))),
        KVS(kv("d", vd(0.25)), kv("b", vb(true)), kv("n", vkvl(1, KVS(kv("x", vs("y")))))),
        KVS(kv("dup", vs("1")), kv("dup", vs("2"))),
        NULL,
    };
    size_t ns[] = {2, 2, 3, 2, 0};
    text_log lp = {0}, lc = {0};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(ot_mstore_key_point(&k, lists[i], ns[i]), 0);
        ot_mstore_ref rp, rc;
        cr_assert_eq(ot_mstore_get(plain, &k, 1, 0, &rp), OT_MSTORE_NEW);
        cr_assert_eq(ot_mstore_get(compact, &k, 1, 0, &rc), OT_MSTORE_NEW);
        char tp[256], tc[256];
        attrs_text(rp.stream, tp, sizeof tp);
        attrs_text(rc.stream, tc, sizeof tc);
        cr_expect_str_eq(tc, tp, "list %d", i);
        ot_mstore_info info;
        ot_mstore_stream_info(rc.stream, &info);
        cr_expect_eq(info.attrs.left, ns[i]);
        cr_expect(info.name.n == 3 && !memcmp(info.name.p, "req", 3));
        ot_mstore_put(plain, &rp, false);
        ot_mstore_put(compact, &rc, false);
        get_put(compact, &k, OT_MSTORE_FOUND, i);
    }
    cr_assert_eq(ot_mstore_visit(plain, log_text, &lp), 0);
    cr_assert_eq(ot_mstore_visit(compact, log_text, &lc), 0);
    cr_assert_eq(lc.n, 5);
    /* both visit in hash order, and the hashes are the same */
    for (int i = 0; i < 5; i++)
        cr_expect_str_eq(lc.t[i], lp.t[i]);
    ot_mstore_key_free(&k);
    ot_mstore_free(plain);
    ot_mstore_free(compact);
}

/* Key lists are counted once per store, and lists and pages go with their
 * last stream. */
Test(store_compact_only, memory_is_smaller_and_comes_back)
{
    ot_mstore *plain = compact_new(false, 10), *compact = compact_new(true, 10);
    size_t p0 = ot_mstore_bytes(plain), c0 = ot_mstore_bytes(compact);
    ot_mstore_key k = OT_MSTORE_KEY_INIT;
    ot_mstore_metric md = {.name = "m", .type = OT_MSTORE_GAUGE};
    cr_assert_eq(ot_mstore_key_base(&k, NULL, NULL, 0, &md), 0);
    const char *keys[] = {"http.route", "http.status_code", "worker"};
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 20000; i++) {
            char r[24], c[8], w[8];
            snprintf(r, sizeof r, "/api/v1/items/%d", i % 1000);
            snprintf(c, sizeof c, "%d", 200 + i / 1000);
            snprintf(w, sizeof w, "w%d", i % 7);
            const char *vals[] = {r, c, w};
            cr_assert_eq(ot_mstore_key_point_strs(&k, keys, vals, 3), 0);
            ot_mstore_ref ref;
            cr_assert_eq(ot_mstore_get(plain, &k, 1, 0, &ref), OT_MSTORE_NEW);
            ot_mstore_put(plain, &ref, false);
            cr_assert_eq(ot_mstore_get(compact, &k, 1, 0, &ref), OT_MSTORE_NEW);
            ot_mstore_put(compact, &ref, false);
        }
        size_t pb = ot_mstore_bytes(plain) - p0, cb = ot_mstore_bytes(compact) - c0;
        /* 40 header + 16 state + 8 list pointer + 28 of values in 96, against
         * 64 bytes of point part in malloc's 128 */
        cr_expect_lt(cb + 20000 * 24, pb, "compact %zu, plain %zu", cb, pb);
        cr_assert_eq(ot_mstore_expire(plain, 100), 20000);
        cr_assert_eq(ot_mstore_expire(compact, 100), 20000);
        /* Both keep their grown slot tables (the same: the same hashes);
         * the compact one keeps one page of the size for the next stream,
         * and no key list. */
        size_t pl = ot_mstore_bytes(plain) - p0, cl = ot_mstore_bytes(compact) - c0;
        cr_expect_leq(cl, pl + OT_MSTORE_SLAB_PAGE, "compact %zu left, plain %zu", cl, pl);
        cr_expect_geq(cl, pl + OT_MSTORE_SLAB_PAGE - 1024, "compact %zu left, plain %zu", cl, pl);
    }
    ot_mstore_key_free(&k);
    ot_mstore_free(plain);
    ot_mstore_free(compact);
}
