/* Unit tests for the batch processor (processors/batch): the size and time
 * triggers, cuts at send_batch_max_size that keep every item once with its
 * resource and scope (also the windows of split.h on their own), batchers
 * per metadata value, the flush at shutdown, byte concatenation of
 * bytes-only requests, and the bounded push-back when the next consumer
 * refuses. Items are identified by a hash of their resource, scope and own
 * bytes, so "every item exactly once, in order" is checked literally. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../processors/batch/split.h"
#include "model/batch.h"
#include "config/config.h"
#include "model/consumer.h"
#include "pipeline/factory.h"
#include "otlp_samples.h"
#include "telemetry/telemetry.h"

extern const ot_factory ot_batch_processor;

/* ---- a consumer that keeps what it gets -------------------------------- */

typedef struct sink {
    ot_consumer base;
    pthread_mutex_t mu;
    atomic_int answer;
    ot_batch *got[4096];
    size_t n;
    size_t items;
    int calls;
    int64_t first_at;
} sink;

static ot_status sink_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    sink *s = (sink *)self;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    ot_status st = (ot_status)atomic_load(&s->answer);
    if (st == OT_OK && s->n < 4096) {
        if (!s->n)
            s->first_at = ot_now_ns();
        s->got[s->n++] = b;
        s->items += b->items;
        b = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (b) {
        ot_batch_unref(b);
        ot_err_set(err, "sink says %s", ot_status_name(st));
    }
    return st;
}

static void sink_init(sink *s)
{
    memset(s, 0, sizeof *s);
    s->base.consume = sink_consume;
    pthread_mutex_init(&s->mu, NULL);
}

static void sink_free(sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        ot_batch_unref(s->got[i]);
    pthread_mutex_destroy(&s->mu);
}

static size_t sink_count(sink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static size_t sink_items(sink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->items;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Polls until the sink holds n batches or ms pass; true when it does. */
static bool wait_batches(sink *s, size_t n, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (sink_count(s) >= n)
            return true;
        usleep(1000);
    }
    return sink_count(s) >= n;
}

/* ---- a processor from YAML --------------------------------------------- */

typedef struct proc_h {
    ot_arena *a;
    void *self;
    ot_consumer *c;
    sink sk;
    ot_signal sig;
} proc_h;

static size_t fill(const char *yaml, void *cfg, ot_arena *a, ot_diags *d)
{
    const ot_node *n = ot_node_parse(a, "test.yaml", yaml, strlen(yaml), d);
    ot_keys_fill(ot_batch_processor.keys, n, cfg, a, "processors.batch", d);
    ot_batch_processor.validate(cfg, n, "processors.batch", d);
    return d->errors;
}

static void open_proc(proc_h *h, ot_signal s, const char *yaml)
{
    h->a = ot_arena_new(0);
    h->sig = s;
    sink_init(&h->sk);
    ot_diags d;
    ot_diags_init(&d);
    void *cfg = ot_arena_calloc(h->a, ot_batch_processor.config_size);
    if (fill(yaml, cfg, h->a, &d)) {
        ot_diags_print(&d, stderr);
        cr_assert_fail("config refused: %s", yaml);
    }
    ot_diags_free(&d);
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = "batch/test";
    p.config = cfg;
    p.signal = s;
    p.next[s] = &h->sk.base;
    ot_err err = {{0}};
    h->self = ot_batch_processor.create(&p, &err);
    cr_assert_not_null(h->self, "%s", err.msg);
    cr_assert_eq(ot_batch_processor.start(h->self, &err), 0, "%s", err.msg);
    h->c = ot_batch_processor.consumer(h->self, s);
}

static void stop_proc(proc_h *h)
{
    ot_batch_processor.shutdown(h->self, ot_now_ns() + 2000000000LL);
}

static void close_proc(proc_h *h)
{
    ot_batch_processor.destroy(h->self);
    sink_free(&h->sk);
    ot_arena_free(h->a);
}

/* ---- requests and item identities ------------------------------------- */

/* Marks every resource and scope entry of a sample with its own tag, so
 * items of different requests can be told apart. */
static void tag_request(ot_signal s, ProtobufCMessage *m, int tag, ot_arena *a)
{
    if (s == OT_TRACES) {
        ot_trace_req *r = (ot_trace_req *)m;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            r->resource_spans[i]->schema_url = ot_arena_sprintf(a, "r%d.%zu", tag, i);
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                r->resource_spans[i]->scope_spans[j]->schema_url =
                    ot_arena_sprintf(a, "s%d.%zu.%zu", tag, i, j);
        }
    } else if (s == OT_METRICS) {
        ot_metrics_req *r = (ot_metrics_req *)m;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            r->resource_metrics[i]->schema_url = ot_arena_sprintf(a, "r%d.%zu", tag, i);
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++)
                r->resource_metrics[i]->scope_metrics[j]->schema_url =
                    ot_arena_sprintf(a, "s%d.%zu.%zu", tag, i, j);
        }
    } else {
        ot_logs_req *r = (ot_logs_req *)m;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            r->resource_logs[i]->schema_url = ot_arena_sprintf(a, "r%d.%zu", tag, i);
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
                r->resource_logs[i]->scope_logs[j]->schema_url =
                    ot_arena_sprintf(a, "s%d.%zu.%zu", tag, i, j);
        }
    }
}

/* A request of n items; bytes only (as the OTLP receiver hands them on) or
 * decoded (as after a processor that changed it). */
static ot_batch *req_batch(ot_signal s, size_t n, int tag, bool wire)
{
    ot_arena *a = ot_arena_new(0);
    ProtobufCMessage *m = ot_sample_request(a, s, n, 2);
    tag_request(s, m, tag, a);
    if (!wire)
        return ot_batch_adopt(s, a, m);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(m, buf);
    ot_batch *b = ot_batch_from_wire(s, buf, len, ot_count_items(s, m), NULL);
    free(buf);
    ot_arena_free(a);
    cr_assert_null(b->msg);
    return b;
}

typedef struct idlist {
    uint64_t v[100000];
    size_t n;
} idlist;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}

static uint64_t hmsg(uint64_t h, const ProtobufCMessage *m)
{
    if (!m)
        return fnv(h, "-", 1);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    protobuf_c_message_pack(m, b);
    h = fnv(h, b, n);
    free(b);
    return h;
}

static uint64_t hstr(uint64_t h, const char *s)
{
    return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

#define METRIC_POINTS(m, f)                                                        \
    do {                                                                           \
        if ((m)->f)                                                                \
            for (size_t q = 0; q < (m)->f->n_data_points; q++)                     \
                ids->v[ids->n++] = hmsg(hm, &(m)->f->data_points[q]->base);         \
    } while (0)

/* The identity of every item of m, in document order: its resource entry,
 * scope entry (and metric) and its own bytes. */
static void item_ids(ot_signal s, const ProtobufCMessage *msg, idlist *ids)
{
    const uint64_t h0 = 1469598103934665603ULL;
    if (s == OT_TRACES) {
        const ot_trace_req *r = (const ot_trace_req *)msg;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            ot_resource_spans *rs = r->resource_spans[i];
            uint64_t hr = hmsg(hstr(h0, rs->schema_url), rs->resource ? &rs->resource->base : NULL);
            for (size_t j = 0; j < rs->n_scope_spans; j++) {
                ot_scope_spans *ss = rs->scope_spans[j];
                uint64_t hs = hmsg(hstr(hr, ss->schema_url), ss->scope ? &ss->scope->base : NULL);
                for (size_t k = 0; k < ss->n_spans; k++)
                    ids->v[ids->n++] = hmsg(hs, &ss->spans[k]->base);
            }
        }
    } else if (s == OT_LOGS) {
        const ot_logs_req *r = (const ot_logs_req *)msg;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            ot_resource_logs *rl = r->resource_logs[i];
            uint64_t hr = hmsg(hstr(h0, rl->schema_url), rl->resource ? &rl->resource->base : NULL);
            for (size_t j = 0; j < rl->n_scope_logs; j++) {
                ot_scope_logs *sl = rl->scope_logs[j];
                uint64_t hs = hmsg(hstr(hr, sl->schema_url), sl->scope ? &sl->scope->base : NULL);
                for (size_t k = 0; k < sl->n_log_records; k++)
                    ids->v[ids->n++] = hmsg(hs, &sl->log_records[k]->base);
            }
        }
    } else {
        const ot_metrics_req *r = (const ot_metrics_req *)msg;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            ot_resource_metrics *rm = r->resource_metrics[i];
            uint64_t hr = hmsg(hstr(h0, rm->schema_url), rm->resource ? &rm->resource->base : NULL);
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                ot_scope_metrics *sm = rm->scope_metrics[j];
                uint64_t hs = hmsg(hstr(hr, sm->schema_url), sm->scope ? &sm->scope->base : NULL);
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    ot_metric *m = sm->metrics[k];
                    uint64_t hm = hstr(hstr(hstr(hs, m->name), m->unit), m->description);
                    hm = fnv(hm, &m->data_case, sizeof m->data_case);
                    if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
                        hm = fnv(hm, &m->sum->aggregation_temporality,
                                 sizeof m->sum->aggregation_temporality);
                        hm = fnv(hm, &m->sum->is_monotonic, sizeof m->sum->is_monotonic);
                    }
                    switch (m->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        METRIC_POINTS(m, gauge);
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        METRIC_POINTS(m, sum);
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        METRIC_POINTS(m, histogram);
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        METRIC_POINTS(m, exponential_histogram);
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        METRIC_POINTS(m, summary);
                        break;
                    default:
                        break;
                    }
                }
            }
        }
    }
}

static void batch_ids(ot_batch *b, idlist *ids)
{
    ot_err err = {{0}};
    const ProtobufCMessage *m = ot_batch_msg(b, &err);
    cr_assert_not_null(m, "%s", err.msg);
    size_t before = ids->n;
    item_ids(b->signal, m, ids);
    cr_assert_eq(ids->n - before, b->items, "batch says %zu items, holds %zu", b->items,
                 ids->n - before);
}

static void assert_same_ids(const idlist *want, const idlist *got)
{
    cr_assert_eq(got->n, want->n, "items: sent %zu, got %zu", want->n, got->n);
    for (size_t i = 0; i < want->n; i++)
        cr_assert_eq(got->v[i], want->v[i], "item %zu differs (lost, duplicated or moved)", i);
}

/* ---- size and time ----------------------------------------------------- */

Test(batch_proc, size_trigger_sends_once_enough_items_are_held)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "send_batch_size: 10\ntimeout: 10s\n");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ot_consume(h.c, req_batch(OT_TRACES, 3, i, true), NULL), OT_OK);
        cr_assert_eq(sink_count(&h.sk), 0, "sent before send_batch_size");
    }
    cr_assert_eq(ot_consume(h.c, req_batch(OT_TRACES, 3, 3, true), NULL), OT_OK);
    /* Sent on the caller's thread, before consume returned. */
    cr_assert_eq(sink_count(&h.sk), 1);
    cr_assert_eq(h.sk.got[0]->items, 12);
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(h.sk.got[0], NULL);
    cr_assert_eq(r->n_resource_spans, 4);
    cr_assert_str_eq(r->resource_spans[3]->schema_url, "r3.0");
    stop_proc(&h);
    cr_assert_eq(sink_count(&h.sk), 1, "nothing left to flush");
    close_proc(&h);
}

Test(batch_proc, timeout_sends_a_partial_batch_without_more_input)
{
    proc_h h;
    open_proc(&h, OT_LOGS, "send_batch_size: 1000\ntimeout: 100ms\n");
    ot_counter *timeouts = ot_tel_counter("otelite_processor_batch_flushes_total", "x",
                                          "processor=\"batch/test\",trigger=\"timeout\"");
    uint64_t before = atomic_load(&timeouts->v);
    int64_t t0 = ot_now_ns();
    cr_assert_eq(ot_consume(h.c, req_batch(OT_LOGS, 5, 0, true), NULL), OT_OK);
    cr_assert_eq(sink_count(&h.sk), 0);
    cr_assert(wait_batches(&h.sk, 1, 2000), "no batch after the timeout");
    int64_t waited = h.sk.first_at - t0;
    cr_assert_geq(waited, 95000000, "sent after %lld ns, before the timeout", (long long)waited);
    cr_assert_lt(waited, 1100000000, "sent after %lld ns", (long long)waited);
    cr_assert_eq(h.sk.got[0]->items, 5);
    cr_assert_eq(atomic_load(&timeouts->v) - before, 1);
    /* The timer keeps going: a second partial batch is sent as well. */
    cr_assert_eq(ot_consume(h.c, req_batch(OT_LOGS, 2, 1, true), NULL), OT_OK);
    cr_assert(wait_batches(&h.sk, 2, 2000));
    cr_assert_eq(h.sk.got[1]->items, 2);
    stop_proc(&h);
    close_proc(&h);
}

Test(batch_proc, shutdown_flushes_what_is_held)
{
    proc_h h;
    open_proc(&h, OT_METRICS, "send_batch_size: 100000\ntimeout: 1h\n");
    idlist *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    for (int i = 0; i < 3; i++) {
        ot_batch *b = req_batch(OT_METRICS, 40, i, i != 1);
        batch_ids(b, want);
        cr_assert_eq(ot_consume(h.c, b, NULL), OT_OK);
    }
    usleep(20000);
    cr_assert_eq(sink_count(&h.sk), 0);
    stop_proc(&h);
    cr_assert_eq(sink_count(&h.sk), 1);
    batch_ids(h.sk.got[0], got);
    assert_same_ids(want, got);
    /* After shutdown data passes straight through. */
    cr_assert_eq(ot_consume(h.c, req_batch(OT_METRICS, 4, 9, true), NULL), OT_OK);
    cr_assert_eq(sink_count(&h.sk), 2);
    close_proc(&h);
    free(want);
    free(got);
}

Test(batch_proc, timeout_zero_passes_requests_through_uncopied)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "timeout: 0s\n");
    ot_batch *b = req_batch(OT_TRACES, 3, 0, true);
    cr_assert_eq(ot_consume(h.c, b, NULL), OT_OK);
    cr_assert_eq(sink_count(&h.sk), 1);
    cr_assert_eq(h.sk.got[0], b, "the same batch, not a copy");
    stop_proc(&h);
    close_proc(&h);
}

/* ---- bytes ------------------------------------------------------------- */

Test(batch_proc, bytes_only_requests_are_concatenated_into_one_request)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "send_batch_size: 6\ntimeout: 10s\n");
    ot_batch *a = req_batch(OT_TRACES, 2, 0, true);
    ot_batch *b = req_batch(OT_TRACES, 4, 1, true);
    const uint8_t *wa, *wb;
    size_t la, lb;
    ot_batch_wire(a, &wa, &la, NULL);
    ot_batch_wire(b, &wb, &lb, NULL);
    uint8_t *joined = malloc(la + lb);
    memcpy(joined, wa, la);
    memcpy(joined + la, wb, lb);
    ot_consume(h.c, a, NULL);
    ot_consume(h.c, b, NULL);
    cr_assert_eq(sink_count(&h.sk), 1);
    ot_batch *out = h.sk.got[0];
    cr_assert_null(out->msg, "merged without decoding");
    cr_assert_eq(out->wire_len, la + lb);
    cr_assert_eq(memcmp(out->wire, joined, la + lb), 0, "the bytes, concatenated");
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(out, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->n_resource_spans, 2);
    cr_assert_str_eq(r->resource_spans[0]->schema_url, "r0.0");
    cr_assert_str_eq(r->resource_spans[1]->schema_url, "r1.0");
    cr_assert_eq(r->resource_spans[0]->scope_spans[0]->n_spans, 2);
    cr_assert_eq(r->resource_spans[1]->scope_spans[0]->n_spans, 4);
    free(joined);
    stop_proc(&h);
    close_proc(&h);
}

Test(batch_proc, decoded_and_bytes_only_requests_merge_in_order)
{
    proc_h h;
    open_proc(&h, OT_LOGS, "send_batch_size: 1000\ntimeout: 10s\n");
    idlist *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    for (int i = 0; i < 6; i++) {
        ot_batch *b = req_batch(OT_LOGS, (size_t)(i + 1) * 3, i, i % 2 == 0);
        batch_ids(b, want);
        ot_consume(h.c, b, NULL);
    }
    stop_proc(&h);
    cr_assert_eq(sink_count(&h.sk), 1);
    batch_ids(h.sk.got[0], got);
    assert_same_ids(want, got);
    close_proc(&h);
    free(want);
    free(got);
}

/* ---- send_batch_max_size ----------------------------------------------- */

static void max_size_case(ot_signal s, size_t max, const size_t *sizes, size_t n)
{
    proc_h h;
    char yaml[128];
    snprintf(yaml, sizeof yaml, "send_batch_size: %zu\nsend_batch_max_size: %zu\ntimeout: 1h\n",
             max, max);
    open_proc(&h, s, yaml);
    idlist *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        ot_batch *b = req_batch(s, sizes[i], (int)i, i % 3 != 2);
        batch_ids(b, want);
        total += b->items;
        cr_assert_eq(ot_consume(h.c, b, NULL), OT_OK);
    }
    stop_proc(&h);
    size_t sum = 0;
    for (size_t i = 0; i < h.sk.n; i++) {
        cr_assert_leq(h.sk.got[i]->items, max, "batch %zu holds %zu > %zu items", i,
                      h.sk.got[i]->items, max);
        /* Every batch but the last one is full. */
        if (i + 1 < h.sk.n)
            cr_assert_eq(h.sk.got[i]->items, max);
        batch_ids(h.sk.got[i], got);
        sum += h.sk.got[i]->items;
    }
    cr_assert_eq(sum, total);
    assert_same_ids(want, got);
    close_proc(&h);
    free(want);
    free(got);
}

Test(batch_proc, max_size_cuts_spans_keeping_each_once_with_resource_and_scope)
{
    const size_t sizes[] = {5, 13, 2, 40, 1, 7, 7, 100, 3};
    max_size_case(OT_TRACES, 7, sizes, sizeof sizes / sizeof sizes[0]);
    max_size_case(OT_TRACES, 1, sizes, 4);
}

Test(batch_proc, max_size_cuts_metric_points_inside_metrics)
{
    /* Metrics hold up to 4 points each, so cuts of 3 fall inside them. */
    const size_t sizes[] = {33, 5, 64, 2, 9};
    max_size_case(OT_METRICS, 3, sizes, sizeof sizes / sizeof sizes[0]);
    max_size_case(OT_METRICS, 50, sizes, sizeof sizes / sizeof sizes[0]);
}

Test(batch_proc, max_size_cuts_log_records)
{
    const size_t sizes[] = {10, 10, 1, 25, 8};
    max_size_case(OT_LOGS, 9, sizes, sizeof sizes / sizeof sizes[0]);
}

Test(batch_proc, size_trigger_with_max_keeps_the_remainder)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "send_batch_size: 8\nsend_batch_max_size: 10\ntimeout: 1h\n");
    idlist *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    ot_batch *b = req_batch(OT_TRACES, 25, 0, true);
    batch_ids(b, want);
    ot_consume(h.c, b, NULL);
    /* 10 + 10 go at once; 5 < send_batch_size wait. */
    cr_assert_eq(sink_count(&h.sk), 2);
    cr_assert_eq(h.sk.got[0]->items, 10);
    cr_assert_eq(h.sk.got[1]->items, 10);
    b = req_batch(OT_TRACES, 2, 1, true);
    batch_ids(b, want);
    ot_consume(h.c, b, NULL);
    cr_assert_eq(sink_count(&h.sk), 2);
    b = req_batch(OT_TRACES, 1, 2, false);
    batch_ids(b, want);
    ot_consume(h.c, b, NULL);
    cr_assert_eq(sink_count(&h.sk), 3, "5 + 2 + 1 reach send_batch_size");
    cr_assert_eq(h.sk.got[2]->items, 8);
    stop_proc(&h);
    for (size_t i = 0; i < h.sk.n; i++)
        batch_ids(h.sk.got[i], got);
    assert_same_ids(want, got);
    close_proc(&h);
    free(want);
    free(got);
}

/* ---- windows (split.h) on their own ------------------------------------ */

static ot_resource_spans *empty_rs(ot_arena *a, const char *url)
{
    ot_resource_spans *rs = ot_arena_alloc(a, sizeof *rs);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->schema_url = (char *)url;
    return rs;
}

static ot_scope_spans *empty_ss(ot_arena *a, const char *url)
{
    ot_scope_spans *ss = ot_arena_alloc(a, sizeof *ss);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    ss->schema_url = (char *)url;
    return ss;
}

static void wire_equals_view(ot_signal s, const ProtobufCMessage *m);

Test(split, windows_partition_items_and_carry_empty_entries_once)
{
    ot_arena *a = ot_arena_new(0);
    ot_trace_req *x = ot_sample_traces(a, 7, 1);
    ot_trace_req *y = ot_sample_traces(a, 3, 1);
    ot_resource_spans *rs1 = x->resource_spans[0];
    ot_scope_spans *s_a = rs1->scope_spans[0];
    /* rs1: [3 spans][empty][4 spans][empty]; before it an empty resource,
     * after it y's resource, then an empty resource at the very end. */
    ot_scope_spans *s_b = ot_arena_alloc(a, sizeof *s_b);
    *s_b = *s_a;
    s_b->spans = s_a->spans + 3;
    s_b->n_spans = 4;
    s_a->n_spans = 3;
    ot_scope_spans **scopes = ot_arena_alloc(a, 4 * sizeof *scopes);
    scopes[0] = s_a;
    scopes[1] = empty_ss(a, "empty-scope-1");
    scopes[2] = s_b;
    scopes[3] = empty_ss(a, "empty-scope-2");
    rs1->scope_spans = scopes;
    rs1->n_scope_spans = 4;
    ot_trace_req req = *x;
    ot_resource_spans *all[4] = {empty_rs(a, "empty-res-1"), rs1, y->resource_spans[0],
                                 empty_rs(a, "empty-res-2")};
    req.resource_spans = all;
    req.n_resource_spans = 4;
    cr_assert_eq(ot_count_items(OT_TRACES, &req.base), 10);

    idlist *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    item_ids(OT_TRACES, &req.base, want);
    for (size_t k = 1; k <= 11; k++) {
        got->n = 0;
        int empty_res = 0, empty_scope = 0, windows = 0;
        for (size_t lo = 0; lo < 10; lo += k) {
            ot_arena *w = ot_arena_new(0);
            const ot_trace_req *v =
                (const ot_trace_req *)ot_split_view(OT_TRACES, &req.base, lo, lo + k, w);
            cr_assert_not_null(v);
            windows++;
            size_t n = ot_count_items(OT_TRACES, &v->base);
            cr_assert_eq(n, lo + k <= 10 ? k : 10 - lo);
            /* Packed and read back, as the processor sends it. */
            size_t len = protobuf_c_message_get_packed_size(&v->base);
            uint8_t *buf = malloc(len + 1);
            protobuf_c_message_pack(&v->base, buf);
            ot_batch *b = ot_batch_decode(OT_TRACES, buf, len, NULL);
            cr_assert_not_null(b);
            batch_ids(b, got);
            const ot_trace_req *r = (const ot_trace_req *)b->msg;
            for (size_t i = 0; i < r->n_resource_spans; i++) {
                empty_res += strncmp(r->resource_spans[i]->schema_url, "empty-res", 9) == 0;
                for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                    empty_scope += strncmp(r->resource_spans[i]->scope_spans[j]->schema_url,
                                           "empty-scope", 11) == 0;
            }
            ot_batch_unref(b);
            free(buf);
            ot_arena_free(w);
        }
        assert_same_ids(want, got);
        cr_assert_eq(empty_res, 2, "window size %zu: empty resources seen %d times", k, empty_res);
        cr_assert_eq(empty_scope, 2, "window size %zu: empty scopes seen %d times", k,
                     empty_scope);
    }
    wire_equals_view(OT_TRACES, &req.base);
    /* The original is untouched by taking windows. */
    cr_assert_eq(rs1->n_scope_spans, 4);
    cr_assert_eq(s_b->n_spans, 4);
    free(want);
    free(got);
    ot_arena_free(a);
}

Test(split, metric_windows_share_points_and_copy_only_holders)
{
    ot_arena *a = ot_arena_new(0);
    ot_metrics_req *m = ot_sample_metrics(a, 40, 1);
    idlist *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    item_ids(OT_METRICS, &m->base, want);
    for (size_t k = 1; k <= 40; k += 3) {
        got->n = 0;
        for (size_t lo = 0; lo < 40; lo += k) {
            ot_arena *w = ot_arena_new(0);
            ProtobufCMessage *v = ot_split_view(OT_METRICS, &m->base, lo, lo + k, w);
            cr_assert_not_null(v);
            item_ids(OT_METRICS, v, got);
            ot_arena_free(w);
        }
        assert_same_ids(want, got);
    }
    free(want);
    free(got);
    ot_arena_free(a);
}

static uint8_t *packed(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* Every window of size k over m, cut from the bytes, equals the decoded
 * window packed: byte for byte (protobuf-c writes fields in order, and so
 * does the cut), hence also item for item. */
static void wire_equals_view(ot_signal s, const ProtobufCMessage *m)
{
    size_t len, total = ot_count_items(s, m);
    uint8_t *bytes = packed(m, &len);
    for (size_t k = 1; k <= total + 1; k += (k < 8 ? 1 : 7)) {
        for (size_t lo = 0; lo < (total ? total : 1); lo += k) {
            ot_arena *w = ot_arena_new(0);
            ProtobufCMessage *v = ot_split_view(s, m, lo, lo + k, w);
            size_t vlen;
            uint8_t *vb = packed(v, &vlen);
            long n = ot_split_wire(s, bytes, len, total, lo, lo + k, NULL);
            cr_assert_eq(n, (long)vlen, "%s window [%zu,+%zu): wire %ld bytes, view %zu",
                         ot_signal_name(s), lo, k, n, vlen);
            uint8_t *wb = malloc(len + 1);
            cr_assert_eq(ot_split_wire(s, bytes, len, total, lo, lo + k, wb), n);
            cr_assert_eq(memcmp(wb, vb, vlen), 0, "%s window [%zu,+%zu) differs",
                         ot_signal_name(s), lo, k);
            free(wb);
            free(vb);
            ot_arena_free(w);
        }
    }
    free(bytes);
}

Test(split, wire_windows_equal_decoded_windows)
{
    ot_arena *a = ot_arena_new(0);
    wire_equals_view(OT_TRACES, &ot_sample_traces_rich(a)->base);
    wire_equals_view(OT_TRACES, ot_sample_request(a, OT_TRACES, 30, 2));
    wire_equals_view(OT_METRICS, ot_sample_request(a, OT_METRICS, 40, 1));
    wire_equals_view(OT_LOGS, ot_sample_request(a, OT_LOGS, 30, 2));
    /* Two requests in one (bytes concatenated: resources joined). */
    ot_metrics_req *m2 = ot_sample_metrics(a, 9, 1);
    ot_metrics_req *m3 = ot_sample_metrics(a, 33, 0);
    ot_resource_metrics *rms[2] = {m2->resource_metrics[0], m3->resource_metrics[0]};
    ot_metrics_req both = *m2;
    both.resource_metrics = rms;
    both.n_resource_metrics = 2;
    wire_equals_view(OT_METRICS, &both.base);
    /* An empty request: the one window is all of it. */
    ot_trace_req *empty = (ot_trace_req *)ot_sample_request(a, OT_TRACES, 1, 0);
    empty->n_resource_spans = 0;
    wire_equals_view(OT_TRACES, &empty->base);
    cr_assert_eq(ot_split_wire(OT_TRACES, (const uint8_t *)"", 0, 0, 0, 0, NULL), 0);
    ot_arena_free(a);
}

/* A metric that holds a gauge and then a sum: protobuf-c keeps the sum
 * only (a oneof), so its items are the sum's points. */
static uint8_t *oneof_twice(size_t *len, size_t *items)
{
    ot_arena *a = ot_arena_new(0);
    ot_metrics_req *g = ot_sample_metrics(a, 4, 1); /* first metric: a gauge */
    ot_metric *mg = g->resource_metrics[0]->scope_metrics[0]->metrics[0];
    ot_metrics_req *s = ot_sample_metrics(a, 12, 1);
    ot_metric *ms = NULL;
    ot_scope_metrics *ssm = s->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < ssm->n_metrics && !ms; i++)
        if (ssm->metrics[i]->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM)
            ms = ssm->metrics[i];
    cr_assert(mg->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE && ms);
    ot_metric sum_only = *ms;
    sum_only.name = (char *)protobuf_c_empty_string;
    sum_only.description = (char *)protobuf_c_empty_string;
    sum_only.unit = (char *)protobuf_c_empty_string;
    size_t la, lb;
    uint8_t *ba = packed(&mg->base, &la), *bb = packed(&sum_only.base, &lb);
    /* request { resource_metrics { scope_metrics { metrics: A ++ B } } } */
    uint8_t *buf = malloc(la + lb + 64), *o = buf + 32;
    memcpy(o, ba, la);
    memcpy(o + la, bb, lb);
    size_t n = la + lb;
    for (int level = 0; level < 3; level++) {
        uint32_t field = level == 2 ? 1 : 2;
        uint8_t hdr[12];
        size_t h = 0;
        hdr[h++] = (uint8_t)(field << 3 | 2);
        for (size_t v = n; ; v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
            if (v < 0x80)
                break;
        }
        o -= h;
        memcpy(o, hdr, h);
        n += h;
    }
    uint8_t *out = malloc(n);
    memcpy(out, o, n);
    *len = n;
    ot_batch *d = ot_batch_decode(OT_METRICS, out, n, NULL);
    cr_assert_not_null(d);
    *items = d->items;
    cr_assert_eq(*items, ms->sum->n_data_points, "the sum wins");
    cr_assert_neq(*items, mg->gauge->n_data_points + ms->sum->n_data_points);
    ot_batch_unref(d);
    free(ba);
    free(bb);
    free(buf);
    ot_arena_free(a);
    return out;
}

Test(split, wire_cut_gives_way_when_a_oneof_comes_twice)
{
    size_t len, items;
    uint8_t *b = oneof_twice(&len, &items);
    cr_assert_eq(ot_split_wire(OT_METRICS, b, len, items, 0, 1, NULL), -1);
    free(b);
}

Test(batch_proc, cuts_through_what_only_decoding_reads_right)
{
    proc_h h;
    open_proc(&h, OT_METRICS, "send_batch_size: 2\nsend_batch_max_size: 2\ntimeout: 1h\n");
    size_t len, items;
    uint8_t *bytes = oneof_twice(&len, &items);
    ot_batch *in = ot_batch_from_wire(OT_METRICS, bytes, len, items, NULL);
    idlist *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    batch_ids(in, want);
    ot_batch *more = req_batch(OT_METRICS, 3, 1, true);
    batch_ids(more, want);
    ot_consume(h.c, in, NULL);
    ot_consume(h.c, more, NULL);
    stop_proc(&h);
    for (size_t i = 0; i < h.sk.n; i++) {
        cr_assert_leq(h.sk.got[i]->items, 2);
        batch_ids(h.sk.got[i], got);
    }
    assert_same_ids(want, got);
    free(bytes);
    free(want);
    free(got);
    close_proc(&h);
}

/* ---- metadata ---------------------------------------------------------- */

static ot_batch *tenant_batch(size_t n, int tag, const char *tenant)
{
    ot_batch *b = req_batch(OT_TRACES, n, tag, true);
    if (tenant)
        ot_batch_set_meta(b, "x-tenant", tenant);
    ot_batch_set_meta(b, "x-other", "ignored");
    return b;
}

static ot_batch *find_out(sink *s, const char *tenant)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *t = ot_batch_get_meta(s->got[i], "x-tenant");
        if ((!t && !tenant) || (t && tenant && strcmp(t, tenant) == 0))
            return s->got[i];
    }
    return NULL;
}

Test(batch_proc, metadata_keys_make_one_batch_per_tenant)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "send_batch_size: 1000\ntimeout: 1h\nmetadata_keys: [X-Tenant]\n");
    ot_consume(h.c, tenant_batch(3, 0, "a"), NULL);
    ot_consume(h.c, tenant_batch(2, 1, "b"), NULL);
    ot_consume(h.c, tenant_batch(2, 2, "a"), NULL);
    ot_consume(h.c, tenant_batch(1, 3, NULL), NULL);
    ot_consume(h.c, tenant_batch(4, 4, ""), NULL);
    stop_proc(&h);
    cr_assert_eq(sink_count(&h.sk), 4, "a, b, unset and empty are four batchers");
    ot_batch *a = find_out(&h.sk, "a"), *b = find_out(&h.sk, "b");
    ot_batch *none = find_out(&h.sk, NULL), *empty = find_out(&h.sk, "");
    cr_assert(a && b && none && empty);
    cr_assert_eq(a->items, 5);
    cr_assert_eq(b->items, 2);
    cr_assert_eq(none->items, 1);
    cr_assert_eq(empty->items, 4);
    /* Only the batching keys travel on. */
    cr_assert_null(ot_batch_get_meta(a, "x-other"));
    const ot_trace_req *r = (const ot_trace_req *)ot_batch_msg(a, NULL);
    cr_assert_eq(r->n_resource_spans, 2);
    cr_assert_str_eq(r->resource_spans[0]->schema_url, "r0.0");
    cr_assert_str_eq(r->resource_spans[1]->schema_url, "r2.0");
    close_proc(&h);
}

Test(batch_proc, metadata_cardinality_limit_refuses_new_combinations)
{
    proc_h h;
    open_proc(&h, OT_TRACES,
              "send_batch_size: 1000\ntimeout: 1h\nmetadata_keys: [x-tenant]\n"
              "metadata_cardinality_limit: 2\n");
    ot_err err = {{0}};
    cr_assert_eq(ot_consume(h.c, tenant_batch(1, 0, "a"), &err), OT_OK);
    cr_assert_eq(ot_consume(h.c, tenant_batch(1, 1, "b"), &err), OT_OK);
    cr_assert_eq(ot_consume(h.c, tenant_batch(1, 2, "c"), &err), OT_PERMANENT);
    cr_assert(strstr(err.msg, "metadata_cardinality_limit (2)"), "%s", err.msg);
    cr_assert_eq(ot_consume(h.c, tenant_batch(1, 3, "a"), &err), OT_OK, "known ones still flow");
    stop_proc(&h);
    cr_assert_eq(sink_items(&h.sk), 3);
    close_proc(&h);
}

/* ---- back-pressure ----------------------------------------------------- */

Test(batch_proc, refusal_downstream_is_held_bounded_and_retried)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "send_batch_size: 10\nsend_batch_max_size: 10\ntimeout: 20ms\n");
    atomic_store(&h.sk.answer, OT_RETRYABLE);
    size_t accepted = 0, refused = 0;
    ot_err err = {{0}};
    for (int i = 0; i < 50; i++) {
        ot_status st = ot_consume(h.c, req_batch(OT_TRACES, 10, i, true), &err);
        if (st == OT_OK)
            accepted += 10;
        else if (st == OT_RETRYABLE)
            refused++;
        else
            cr_assert_fail("unexpected %s", ot_status_name(st));
    }
    /* Held: at most 2 x max(send_batch_size, send_batch_max_size) before a
     * refusal, plus the one request checked below the bound. */
    cr_assert_leq(accepted, 30, "accepted %zu items while the next consumer refused", accepted);
    cr_assert_gt(refused, 0);
    cr_assert(strstr(err.msg, "full"), "%s", err.msg);
    cr_assert_eq(sink_count(&h.sk), 0);
    /* The timer retries; once the next consumer takes data, all of it
     * arrives, and new data is accepted again. */
    atomic_store(&h.sk.answer, OT_OK);
    for (int i = 0; i < 2000 && sink_items(&h.sk) < accepted; i++)
        usleep(1000);
    cr_assert_eq(sink_items(&h.sk), accepted);
    cr_assert_eq(ot_consume(h.c, req_batch(OT_TRACES, 10, 99, true), NULL), OT_OK);
    stop_proc(&h);
    cr_assert_eq(sink_items(&h.sk), accepted + 10);
    close_proc(&h);
}

Test(batch_proc, byte_bound_refuses_when_nothing_can_be_sent)
{
    proc_h h;
    open_proc(&h, OT_LOGS, "send_batch_size: 1000000\ntimeout: 1h\nmax_pending_bytes: 64KiB\n");
    atomic_store(&h.sk.answer, OT_RETRYABLE);
    size_t accepted = 0;
    int first_refusal = -1;
    for (int i = 0; i < 400; i++) {
        ot_status st = ot_consume(h.c, req_batch(OT_LOGS, 8, i, true), NULL);
        if (st == OT_OK)
            accepted += 8;
        else if (first_refusal < 0)
            first_refusal = i;
    }
    cr_assert_geq(first_refusal, 0, "never refused");
    ot_gauge *held = ot_tel_gauge("otelite_processor_batch_held_bytes", "x",
                                  "processor=\"batch/test\"");
    int64_t hb = atomic_load(&held->v);
    cr_assert_leq(hb, 3 * 65536, "held %lld bytes with a 64KiB bound", (long long)hb);
    /* Downstream back: everything accepted gets through at shutdown. */
    atomic_store(&h.sk.answer, OT_OK);
    stop_proc(&h);
    cr_assert_eq(sink_items(&h.sk), accepted);
    cr_assert_eq(atomic_load(&held->v), 0);
    close_proc(&h);
}

Test(batch_proc, shutdown_gives_up_at_the_deadline)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "send_batch_size: 1000\ntimeout: 1h\n");
    atomic_store(&h.sk.answer, OT_RETRYABLE);
    ot_consume(h.c, req_batch(OT_TRACES, 5, 0, true), NULL);
    int64_t t0 = ot_now_ns();
    ot_batch_processor.shutdown(h.self, t0 + 200000000);
    int64_t took = ot_now_ns() - t0;
    cr_assert_geq(took, 150000000, "retried until the deadline");
    cr_assert_lt(took, 1000000000);
    cr_assert_gt(h.sk.calls, 1, "retried at shutdown");
    close_proc(&h);
}

/* ---- many threads ------------------------------------------------------ */

typedef struct feeder {
    ot_consumer *c;
    int tag;
    size_t sent;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)(i % 7) + 1;
        if (ot_consume(f->c, req_batch(OT_TRACES, n, f->tag * 1000 + i, i % 4 != 0), NULL) ==
            OT_OK)
            f->sent += n;
    }
    return NULL;
}

Test(batch_proc, concurrent_senders_lose_nothing)
{
    proc_h h;
    open_proc(&h, OT_TRACES, "send_batch_size: 50\nsend_batch_max_size: 64\ntimeout: 5ms\n");
    feeder f[3] = {{h.c, 1, 0}, {h.c, 2, 0}, {h.c, 3, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, feed, &f[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    stop_proc(&h);
    size_t sent = f[0].sent + f[1].sent + f[2].sent;
    cr_assert_eq(sink_items(&h.sk), sent);
    idlist *got = calloc(1, sizeof *got);
    for (size_t i = 0; i < h.sk.n; i++) {
        cr_assert_leq(h.sk.got[i]->items, 64);
        batch_ids(h.sk.got[i], got);
    }
    cr_assert_eq(got->n, sent);
    free(got);
    close_proc(&h);
}

/* ---- config ------------------------------------------------------------ */

static size_t config_errors(const char *yaml, char *first, size_t cap)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    void *cfg = ot_arena_calloc(a, ot_batch_processor.config_size);
    size_t n = fill(yaml, cfg, a, &d);
    if (first && cap) {
        first[0] = 0;
        if (d.n)
            snprintf(first, cap, "%s: %s", d.v[0].path, d.v[0].msg);
    }
    ot_diags_free(&d);
    ot_arena_free(a);
    return n;
}

Test(batch_proc, config_checks)
{
    char msg[512];
    cr_assert_eq(config_errors("", msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(config_errors("send_batch_size: 100\nsend_batch_max_size: 100\n", msg,
                               sizeof msg),
                 0, "%s", msg);
    cr_assert_eq(config_errors("send_batch_size: 100\nsend_batch_max_size: 99\n", msg, sizeof msg),
                 1);
    cr_assert(strstr(msg, "processors.batch.send_batch_max_size: must be 0 (no limit) or at "
                          "least send_batch_size (100); found 99"),
              "%s", msg);
    cr_assert_eq(config_errors("metadata_keys: [X-Tenant, x-tenant]\n", msg, sizeof msg), 1);
    cr_assert(strstr(msg, "metadata_keys[1]: duplicate metadata key"), "%s", msg);
    cr_assert_eq(config_errors("timeout: fast\n", msg, sizeof msg), 1);
}
