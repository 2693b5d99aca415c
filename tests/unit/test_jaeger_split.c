/* test_jaeger_split.c: the jaeger exporter's byte-level split of an OTLP
 * request into one request per distinct resource, checked by decoding what
 * it emits with protobuf-c: equal resources merge (their scope_spans kept
 * in order), different ones do not, and bad bytes are refused. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/jaeger/jaeger.h"
#include "base/arena.h"
#include "base/buf.h"
#include "otlp_samples.h"

static ot_arena *A;

static void setup(void) { A = ot_arena_new(0); }
static void teardown(void) { ot_arena_free(A); }

TestSuite(jaeger_split, .init = setup, .fini = teardown);

#define MAX_OUT 8

typedef struct got {
    ot_trace_req *req[MAX_OUT];
    size_t n;
    int stop_after; /* 0: never */
} got;

static int collect(void *vctx, const uint8_t *req, size_t len, size_t spans)
{
    got *g = vctx;
    cr_assert_lt(g->n, MAX_OUT);
    g->req[g->n] = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, len, req);
    cr_assert(g->req[g->n], "emitted request %zu does not decode", g->n);
    cr_assert_eq(ot_count_items(OT_TRACES, &g->req[g->n]->base), spans, "span count of %zu", g->n);
    g->n++;
    return g->stop_after && (int)g->n == g->stop_after ? 7 : 0;
}

static void got_free(got *g)
{
    for (size_t i = 0; i < g->n; i++)
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
            g->req[i], NULL);
}

static uint8_t *pack(const ot_trace_req *r, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *b = ot_arena_alloc(A, *len + 1);
    protobuf_c_message_pack(&r->base, b);
    return b;
}

static bool same_msg(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
    if (la != lb)
        return false;
    uint8_t *x = malloc(la + 1), *y = malloc(lb + 1);
    protobuf_c_message_pack(a, x);
    protobuf_c_message_pack(b, y);
    bool same = memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

Test(jaeger_split, equal_resources_merge_in_order_and_different_ones_stay_apart)
{
    /* Two copies of a two-resource request, concatenated as the batch
     * processor merges: resources A, B, A, B. */
    ot_trace_req *r = ot_sample_traces_rich(A);
    cr_assert_eq(r->n_resource_spans, 2);
    cr_assert(!same_msg(&r->resource_spans[0]->resource->base, &r->resource_spans[1]->resource->base));
    size_t len;
    uint8_t *one = pack(r, &len);
    uint8_t *two = ot_arena_alloc(A, 2 * len);
    memcpy(two, one, len);
    memcpy(two + len, one, len);

    ot_buf scratch = {0};
    got g = {0};
    ot_err err = {{0}};
    cr_assert_eq(ot_jaeger_split(two, 2 * len, &scratch, collect, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(g.n, 2, "one request per distinct resource");
    for (size_t i = 0; i < 2; i++) {
        const ot_resource_spans *want = r->resource_spans[i];
        cr_assert_eq(g.req[i]->n_resource_spans, 1);
        const ot_resource_spans *rs = g.req[i]->resource_spans[0];
        cr_expect(same_msg(&rs->resource->base, &want->resource->base));
        cr_expect_str_eq(rs->schema_url, want->schema_url);
        cr_assert_eq(rs->n_scope_spans, 2 * want->n_scope_spans);
        for (size_t k = 0; k < rs->n_scope_spans; k++)
            cr_expect(same_msg(&rs->scope_spans[k]->base,
                               &want->scope_spans[k % want->n_scope_spans]->base),
                      "resource %zu scope_spans %zu", i, k);
    }
    got_free(&g);
    ot_buf_free(&scratch);
}

Test(jaeger_split, a_single_resource_comes_back_unchanged)
{
    ot_trace_req *r = ot_sample_traces(A, 50, 4);
    cr_assert_eq(r->n_resource_spans, 1);
    size_t len;
    uint8_t *b = pack(r, &len);
    ot_buf scratch = {0};
    got g = {0};
    ot_err err = {{0}};
    cr_assert_eq(ot_jaeger_split(b, len, &scratch, collect, &g, &err), 0);
    cr_assert_eq(g.n, 1);
    cr_expect(same_msg(&g.req[0]->base, &r->base));
    got_free(&g);
    ot_buf_free(&scratch);
}

Test(jaeger_split, schema_url_is_part_of_the_resource)
{
    ot_trace_req *r = ot_sample_traces_rich(A);
    ot_trace_req *r2 = ot_sample_traces_rich(A);
    r2->resource_spans[0]->schema_url = "https://opentelemetry.io/schemas/9.9.9";
    size_t l1, l2;
    uint8_t *b1 = pack(r, &l1), *b2 = pack(r2, &l2);
    uint8_t *both = ot_arena_alloc(A, l1 + l2);
    memcpy(both, b1, l1);
    memcpy(both + l1, b2, l2);
    ot_buf scratch = {0};
    got g = {0};
    ot_err err = {{0}};
    cr_assert_eq(ot_jaeger_split(both, l1 + l2, &scratch, collect, &g, &err), 0);
    cr_expect_eq(g.n, 3, "A, B merged with B; A with another schema_url apart");
    got_free(&g);
    ot_buf_free(&scratch);
}

Test(jaeger_split, emit_can_stop_and_its_value_is_returned)
{
    ot_trace_req *r = ot_sample_traces_rich(A);
    size_t len;
    uint8_t *b = pack(r, &len);
    ot_buf scratch = {0};
    got g = {.stop_after = 1};
    ot_err err = {{0}};
    cr_expect_eq(ot_jaeger_split(b, len, &scratch, collect, &g, &err), 7);
    cr_expect_eq(g.n, 1);
    got_free(&g);
    ot_buf_free(&scratch);
}

Test(jaeger_split, bytes_that_do_not_parse_are_refused)
{
    static const uint8_t truncated[] = {0x0a, 0x10, 0x0a, 0x02};
    static const uint8_t bad_wire_type[] = {0x0f, 0x00};
    static const uint8_t bad_inner[] = {0x0a, 0x02, 0x0a, 0x7f};
    ot_buf scratch = {0};
    got g = {0};
    ot_err err = {{0}};
    cr_expect_eq(ot_jaeger_split(truncated, sizeof truncated, &scratch, collect, &g, &err), -1);
    cr_expect_eq(ot_jaeger_split(bad_wire_type, sizeof bad_wire_type, &scratch, collect, &g, &err), -1);
    cr_expect_eq(ot_jaeger_split(bad_inner, sizeof bad_inner, &scratch, collect, &g, &err), -1);
    cr_expect(strstr(err.msg, "protobuf"));
    cr_expect_eq(g.n, 0);
    cr_expect_eq(ot_jaeger_split(NULL, 0, &scratch, collect, &g, &err), 0, "empty: nothing to emit");
    cr_expect_eq(g.n, 0);
    ot_buf_free(&scratch);
}

/* split_to: each request written where dst says (the exporter's queued
 * batch), and a one-resource request handed on as it is, not rewritten. */
typedef struct dst_ctx {
    uint8_t *given[MAX_OUT];
    size_t n_given, n_emitted;
    const uint8_t *emitted[MAX_OUT];
    size_t spans;
} dst_ctx;

static uint8_t *give(void *vctx, size_t n)
{
    dst_ctx *d = vctx;
    cr_assert_lt(d->n_given, MAX_OUT);
    return d->given[d->n_given++] = ot_arena_alloc(A, n);
}

static int took(void *vctx, const uint8_t *req, size_t len, size_t spans)
{
    dst_ctx *d = vctx;
    cr_assert_lt(d->n_emitted, MAX_OUT);
    ot_trace_req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, len, req);
    cr_assert(r, "emitted request does not decode");
    cr_assert_eq(ot_count_items(OT_TRACES, &r->base), spans);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    d->emitted[d->n_emitted++] = req;
    d->spans += spans;
    return 0;
}

Test(jaeger_split, split_to_writes_where_it_is_told_and_passes_one_resource_through)
{
    ot_err err = {{0}};
    size_t len;
    uint8_t *rich = pack(ot_sample_traces_rich(A), &len); /* two resources */
    dst_ctx d = {0};
    cr_assert_eq(ot_jaeger_split_to(rich, len, give, took, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n_emitted, 2);
    cr_assert_eq(d.n_given, 2);
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(d.emitted[i], d.given[i], "request %zu was not written where dst said", i);

    ot_trace_req *one = ot_sample_traces(A, 20, 3);
    uint8_t *w = pack(one, &len);
    dst_ctx e = {0};
    cr_assert_eq(ot_jaeger_split_to(w, len, give, took, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(e.n_emitted, 1);
    cr_assert_eq(e.n_given, 0, "a one-resource request was copied");
    cr_assert_eq(e.emitted[0], w);
    cr_assert_eq(e.spans, 20);
}
