/* Unit tests for the data model's plumbing: arena, buffer, batch lifetime
 * and lazy decode, fan-out and the swappable entry consumer. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "model/batch.h"
#include "base/buf.h"
#include "model/consumer.h"

/* ---- arena */

Test(arena, aligned_and_distinct)
{
    ot_arena *a = ot_arena_new(64);
    char *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = ot_arena_alloc(a, (size_t)(i % 37) + 1);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % 16, 0);
        memset(p[i], i & 0xff, (size_t)(i % 37) + 1);
    }
    for (int i = 0; i < 1000; i++)
        cr_assert_eq((unsigned char)p[i][0], (unsigned char)(i & 0xff));
    cr_assert_geq(ot_arena_reserved(a), 1000);
    ot_arena_free(a);
}

Test(arena, big_blocks_and_reset)
{
    ot_arena *a = ot_arena_new(0);
    char *small = ot_arena_strdup(a, "hello");
    char *big = ot_arena_calloc(a, 1 << 20);
    cr_assert_not_null(big);
    cr_assert_eq(big[(1 << 20) - 1], 0);
    char *after = ot_arena_strdup(a, "world");
    cr_assert_str_eq(small, "hello");
    cr_assert_str_eq(after, "world");
    size_t before = ot_arena_reserved(a);
    ot_arena_reset(a);
    cr_assert_lt(ot_arena_reserved(a), before);
    cr_assert_str_eq(ot_arena_sprintf(a, "%d-%s", 7, "x"), "7-x");
    ot_arena_free(a);
}

/* ---- buf */

Test(buf, json_string_escapes_and_utf8)
{
    ot_buf b = OT_BUF_INIT;
    const char in[] = "a\"b\\c\n\x01 \xc3\xa9 \xff";
    ot_buf_json_str(&b, in, sizeof in - 1);
    cr_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9 \xef\xbf\xbd\"");
    ot_buf_reset(&b);
    ot_buf_printf(&b, "%0300d", 5);
    cr_assert_eq(b.len, 300);
    ot_buf_free(&b);
}

/* ---- batch */

static ot_batch *one_span_batch(const char *name)
{
    ot_batch *b = ot_batch_new(OT_TRACES);
    ot_arena *a = b->arena;
    ot_trace_req *r = (ot_trace_req *)b->msg;
    ot_resource_spans *rs = ot_arena_alloc(a, sizeof *rs);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    ot_scope_spans *ss = ot_arena_alloc(a, sizeof *ss);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    ot_span *sp = ot_arena_alloc(a, sizeof *sp);
    opentelemetry__proto__trace__v1__span__init(sp);
    sp->name = ot_arena_strdup(a, name);
    ss->spans = ot_arena_alloc(a, sizeof *ss->spans);
    ss->spans[0] = sp;
    ss->n_spans = 1;
    rs->scope_spans = ot_arena_alloc(a, sizeof *rs->scope_spans);
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    r->resource_spans = ot_arena_alloc(a, sizeof *r->resource_spans);
    r->resource_spans[0] = rs;
    r->n_resource_spans = 1;
    ot_batch_recount(b);
    return b;
}

Test(batch, wire_roundtrip_and_lazy_decode)
{
    ot_batch *b = one_span_batch("root");
    cr_assert_eq(b->items, 1);
    const uint8_t *w;
    size_t n;
    cr_assert_eq(ot_batch_wire(b, &w, &n, NULL), 0);
    cr_assert_gt(n, 0);

    ot_batch *c = ot_batch_from_wire(OT_TRACES, w, n, 1, NULL);
    cr_assert_null(c->msg, "bytes-only batch must not decode eagerly");
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(c, NULL);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->resource_spans[0]->scope_spans[0]->spans[0]->name, "root");
    ot_batch_unref(c);
    ot_batch_unref(b);
}

Test(batch, invalid_bytes_are_refused)
{
    ot_err err = {{0}};
    const uint8_t junk[] = {0x0a, 0x05, 0x01};
    cr_assert_null(ot_batch_decode(OT_TRACES, junk, sizeof junk, &err));
    cr_assert(strstr(err.msg, "invalid protobuf traces") != NULL, "%s", err.msg);
}

Test(batch, writable_clones_only_when_shared)
{
    ot_batch *b = one_span_batch("a");
    cr_assert_eq(ot_batch_writable(b, NULL), b);
    ot_batch_ref(b);
    ot_batch *w = ot_batch_writable(b, NULL);
    cr_assert_neq(w, b);
    ot_trace_req *r = (ot_trace_req *)ot_batch_msg_mut(w, NULL);
    r->resource_spans[0]->scope_spans[0]->spans[0]->name = "changed";
    const ot_trace_req *orig = (const ot_trace_req *)ot_batch_msg(b, NULL);
    cr_assert_str_eq(orig->resource_spans[0]->scope_spans[0]->spans[0]->name, "a");
    /* The changed copy re-encodes with the change. */
    const uint8_t *wire;
    size_t n;
    ot_batch_wire(w, &wire, &n, NULL);
    ot_batch *again = ot_batch_decode(OT_TRACES, wire, n, NULL);
    const ot_trace_req *ar = (const ot_trace_req *)again->msg;
    cr_assert_str_eq(ar->resource_spans[0]->scope_spans[0]->spans[0]->name, "changed");
    ot_batch_unref(again);
    ot_batch_unref(w);
    ot_batch_unref(b);
}

Test(batch, metadata)
{
    ot_batch *b = ot_batch_new(OT_LOGS);
    ot_batch_set_meta(b, "x-tenant", "a");
    ot_batch_set_meta(b, "x-tenant", "b");
    ot_batch_set_meta(b, "x-other", "c");
    cr_assert_str_eq(ot_batch_get_meta(b, "x-tenant"), "b");
    cr_assert_eq(b->n_meta, 2);
    ot_batch *c = ot_batch_clone(b, NULL);
    cr_assert_str_eq(ot_batch_get_meta(c, "x-other"), "c");
    cr_assert_null(ot_batch_get_meta(c, "nope"));
    ot_batch_unref(c);
    ot_batch_unref(b);
}

/* ---- consumers */

typedef struct sink {
    ot_consumer base;
    ot_status answer;
    int calls;
    int refs_seen;
    char name_seen[32];
} sink;

static ot_status sink_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    sink *s = (sink *)self;
    s->calls++;
    s->refs_seen = atomic_load(&b->refs);
    if (s->base.mutates) {
        b = ot_batch_writable(b, err);
        ot_trace_req *r = (ot_trace_req *)ot_batch_msg_mut(b, err);
        r->resource_spans[0]->scope_spans[0]->spans[0]->name = "mutated";
    }
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(b, err);
    snprintf(s->name_seen, sizeof s->name_seen, "%s", r->resource_spans[0]->scope_spans[0]->spans[0]->name);
    ot_batch_unref(b);
    if (s->answer != OT_OK)
        ot_err_set(err, "sink says %s", ot_status_name(s->answer));
    return s->answer;
}

Test(fanout, every_target_gets_it_and_worst_status_wins)
{
    sink a = {{sink_consume, false}, OT_OK, 0, 0, ""};
    sink b = {{sink_consume, false}, OT_RETRYABLE, 0, 0, ""};
    sink c = {{sink_consume, false}, OT_OK, 0, 0, ""};
    ot_consumer *t[] = {&a.base, &b.base, &c.base};
    ot_fanout *f = ot_fanout_new(t, 3);
    ot_err err = {{0}};
    ot_status s = ot_consume(ot_fanout_consumer(f), one_span_batch("x"), &err);
    cr_assert_eq(s, OT_RETRYABLE);
    cr_assert_str_eq(err.msg, "sink says retryable");
    cr_assert_eq(a.calls + b.calls + c.calls, 3);
    ot_fanout_free(f);
}

Test(fanout, mutating_target_does_not_change_what_siblings_see)
{
    sink m = {{sink_consume, true}, OT_OK, 0, 0, ""};
    sink r = {{sink_consume, false}, OT_OK, 0, 0, ""};
    ot_consumer *t[] = {&m.base, &r.base};
    ot_fanout *f = ot_fanout_new(t, 2);
    cr_assert(ot_fanout_consumer(f)->mutates);
    cr_assert_eq(ot_consume(ot_fanout_consumer(f), one_span_batch("orig"), NULL), OT_OK);
    cr_assert_str_eq(m.name_seen, "mutated");
    cr_assert_str_eq(r.name_seen, "orig");
    cr_assert_eq(m.refs_seen, 2);
    ot_fanout_free(f);
}

typedef struct hammer {
    ot_entry *e;
    atomic_int stop;
    atomic_long sent;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *h = arg;
    while (!atomic_load(&h->stop)) {
        ot_consume(ot_entry_consumer(h->e), ot_batch_new(OT_TRACES), NULL);
        atomic_fetch_add(&h->sent, 1);
    }
    return NULL;
}

typedef struct counting {
    ot_consumer base;
    atomic_long n;
} counting;

static ot_status count_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    atomic_fetch_add(&((counting *)self)->n, 1);
    ot_batch_unref(b);
    return OT_OK;
}

Test(entry, swap_under_load_loses_nothing)
{
    counting a = {{count_consume, false}, 0}, b = {{count_consume, false}, 0};
    hammer h = {ot_entry_new(&a.base), 0, 0};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, hammer_run, &h);
    usleep(20000);
    ot_entry_swap(h.e, &b.base);
    long a_after_swap = atomic_load(&a.n);
    usleep(20000);
    atomic_store(&h.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    /* Once swap returned, nothing more reached the old target. */
    cr_assert_eq(atomic_load(&a.n), a_after_swap);
    cr_assert_gt(atomic_load(&b.n), 0);
    cr_assert_eq(atomic_load(&a.n) + atomic_load(&b.n), atomic_load(&h.sent));
    ot_entry_free(h.e);
}

/* ---- log rate limit */

#include "base/log.h"

Test(log, ratelimit_lets_one_through_per_interval)
{
    _Atomic int64_t last = 0;
    cr_assert(ot_log_ratelimit(&last, 10000000000LL));     /* first one passes */
    cr_assert_not(ot_log_ratelimit(&last, 10000000000LL)); /* within 10 s: held */
    usleep(20000);
    cr_assert(ot_log_ratelimit(&last, 10000000)); /* 20 ms later, 10 ms interval */
}

Test(log, once_names_each_reason_once_then_says_it_is_full)
{
    static ot_log_once o; /* zeroed: empty */
    cr_assert_eq(ot_log_once_check(&o, "dropped", "429"), OT_LOG_FIRST);
    cr_assert_eq(ot_log_once_check(&o, "dropped", "429"), OT_LOG_SEEN);
    cr_assert_eq(ot_log_once_check(&o, "dropped", "500"), OT_LOG_FIRST);
    cr_assert_eq(ot_log_once_check(&o, "dropped", NULL), OT_LOG_FIRST);
    char m[16];
    for (int i = 3; i < OT_LOG_ONCE_SLOTS; i++) {
        snprintf(m, sizeof m, "r%d", i);
        cr_assert_eq(ot_log_once_check(&o, "dropped", m), OT_LOG_FIRST);
    }
    cr_assert_eq(ot_log_once_check(&o, "dropped", "one more"), OT_LOG_NOW_FULL);
    cr_assert_eq(ot_log_once_check(&o, "dropped", "and another"), OT_LOG_SEEN);
    cr_assert_eq(ot_log_once_check(&o, "dropped", "429"), OT_LOG_SEEN);
}

Test(log, clean_makes_a_peer_message_safe_in_a_quoted_value)
{
    char out[12];
    ot_log_clean(out, sizeof out, "say \"hi\"\nnow and more");
    cr_assert_str_eq(out, "say 'hi' no");
}
