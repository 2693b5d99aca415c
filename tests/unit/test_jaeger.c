/* test_jaeger.c: the jaeger exporter's translation (OTLP to api_v2 structs)
 * field by field, and its Thrift encoder against bytes worked out by hand
 * from the binary protocol, so a mistake in the encoder cannot hide behind
 * a decoder that shares it. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/jaeger/jaeger.h"
#include "base/arena.h"
#include "base/buf.h"
#include "otlp_samples.h"

#define AVC(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define KIND(x) OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_##x
#define CODE(x) OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_##x
#define VT(x) JAEGER__API_V2__VALUE_TYPE__##x
#define REF(x) JAEGER__API_V2__SPAN_REF_TYPE__##x

static ot_arena *A;

static void setup(void) { A = ot_arena_new(0); }
static void teardown(void) { ot_arena_free(A); }

TestSuite(jaeger, .init = setup, .fini = teardown);

/* ---- OTLP builders -------------------------------------------------------- */

static void *mk(const ProtobufCMessageDescriptor *d)
{
    void *p = ot_arena_alloc(A, d->sizeof_message);
    cr_assert(p);
    d->message_init(p);
    return p;
}

static ot_anyvalue *av(int which)
{
    ot_anyvalue *v = mk(&opentelemetry__proto__common__v1__any_value__descriptor);
    v->value_case = which;
    return v;
}

static ot_anyvalue *av_str(const char *s)
{
    ot_anyvalue *v = av(AVC(STRING_VALUE));
    v->string_value = ot_arena_strdup(A, s);
    return v;
}

static ot_anyvalue *av_int(int64_t i)
{
    ot_anyvalue *v = av(AVC(INT_VALUE));
    v->int_value = i;
    return v;
}

static ot_anyvalue *av_bool(int b)
{
    ot_anyvalue *v = av(AVC(BOOL_VALUE));
    v->bool_value = b;
    return v;
}

static ot_anyvalue *av_dbl(double d)
{
    ot_anyvalue *v = av(AVC(DOUBLE_VALUE));
    v->double_value = d;
    return v;
}

static ot_keyvalue *kv(const char *k, ot_anyvalue *v)
{
    ot_keyvalue *p = mk(&opentelemetry__proto__common__v1__key_value__descriptor);
    p->key = ot_arena_strdup(A, k);
    p->value = v;
    return p;
}

/* Appends to a protobuf-c repeated field (pointer array and count). */
#define PUSH(arr, n, item)                                                        \
    do {                                                                          \
        void *np_ = ot_arena_alloc(A, ((n) + 1) * sizeof *(arr));                 \
        cr_assert(np_);                                                           \
        if (n)                                                                    \
            memcpy(np_, (arr), (n) * sizeof *(arr));                              \
        (arr) = np_;                                                              \
        (arr)[(n)++] = (item);                                                    \
    } while (0)

static ProtobufCBinaryData bytes(const char *hex)
{
    size_t n = strlen(hex) / 2;
    ProtobufCBinaryData b = {n, ot_arena_alloc(A, n + 1)};
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        sscanf(hex + 2 * i, "%2x", &x);
        b.data[i] = (uint8_t)x;
    }
    return b;
}

static const char *TRACE = "8000000000000001ff00000000000002";
static const char *SPAN = "8000000000000003";
static const char *PARENT = "fffffffffffffffe";

static ot_span *span(const char *name)
{
    ot_span *s = mk(&opentelemetry__proto__trace__v1__span__descriptor);
    s->name = ot_arena_strdup(A, name);
    s->trace_id = bytes(TRACE);
    s->span_id = bytes(SPAN);
    s->start_time_unix_nano = 1700000000123456789ull;
    s->end_time_unix_nano = 1700000001123457789ull; /* + 1 s 1001 ns */
    return s;
}

static ot_resource_spans *resource(ot_trace_req *req, const char *service)
{
    ot_resource_spans *rs = mk(&opentelemetry__proto__trace__v1__resource_spans__descriptor);
    rs->resource = mk(&opentelemetry__proto__resource__v1__resource__descriptor);
    if (service)
        PUSH(rs->resource->attributes, rs->resource->n_attributes,
             kv("service.name", av_str(service)));
    PUSH(req->resource_spans, req->n_resource_spans, rs);
    return rs;
}

static ot_scope_spans *scope(ot_resource_spans *rs, const char *name, const char *version)
{
    ot_scope_spans *ss = mk(&opentelemetry__proto__trace__v1__scope_spans__descriptor);
    if (name) {
        ss->scope = mk(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor);
        ss->scope->name = ot_arena_strdup(A, name);
        ss->scope->version = ot_arena_strdup(A, version ? version : "");
    }
    PUSH(rs->scope_spans, rs->n_scope_spans, ss);
    return ss;
}

static ot_trace_req *request(void)
{
    return mk(&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor);
}

/* One request, one resource, one scope, one span. */
static ot_span *single(ot_trace_req **req_out)
{
    ot_trace_req *req = request();
    ot_scope_spans *ss = scope(resource(req, "svc"), NULL, NULL);
    ot_span *s = span("op");
    PUSH(ss->spans, ss->n_spans, s);
    *req_out = req;
    return s;
}

/* The exporter encodes the request's bytes without decoding them
 * (direct.c); on every request a test builds, each body must be what
 * translate.c's structs encode to. */
static void assert_wire_path_agrees(const ot_trace_req *req, const ot_jaeger_out *ref)
{
    if (!req)
        return;
    size_t n = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *w = ot_arena_alloc(A, n + 1);
    cr_assert(w);
    cr_assert_eq(protobuf_c_message_pack(&req->base, w), n);
    ot_err err = {{0}};
    ot_jaeger_enc *e = ot_jaeger_enc_new();
    cr_assert(e);
    for (int thrift = 0; thrift <= 1; thrift++) {
        ot_buf got = OT_BUF_INIT, want = OT_BUF_INIT;
        const ot_jaeger_body *bodies;
        size_t nb = 0;
        cr_assert_eq(ot_jaeger_encode_wire(e, thrift, w, n, &got, &bodies, &nb, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(nb, ref->n_batches);
        for (size_t i = 0; i < nb; i++) {
            ot_buf_reset(&want);
            cr_assert_eq(thrift ? ot_jaeger_thrift_batch(ref->batches[i], &want, &err)
                                : ot_jaeger_proto_pack(ref->batches[i], &want, &err),
                         0);
            cr_assert_eq(bodies[i].spans, ref->batches[i]->n_spans);
            cr_assert_eq(bodies[i].len, want.len, "%s body %zu: %zu bytes against %zu",
                         thrift ? "Thrift" : "api_v2", i, bodies[i].len, want.len);
            cr_assert(want.len == 0 || memcmp(got.data + bodies[i].off, want.data, want.len) == 0,
                      "%s body %zu differs from the structs' encoding",
                      thrift ? "Thrift" : "api_v2", i);
        }
        ot_buf_free(&got);
        ot_buf_free(&want);
    }
    ot_jaeger_enc_free(e);
}

static ot_jaeger_out translate(const ot_trace_req *req)
{
    ot_jaeger_out out;
    ot_err err = {{0}};
    cr_assert_eq(ot_jaeger_translate(req, A, &out, &err), 0, "%s", err.msg);
    assert_wire_path_agrees(req, &out);
    return out;
}

static const ot_jaeger_span *only_span(const ot_trace_req *req)
{
    ot_jaeger_out out = translate(req);
    cr_assert_eq(out.n_batches, 1);
    cr_assert_eq(out.batches[0]->n_spans, 1);
    return out.batches[0]->spans[0];
}

static const ot_jaeger_kv *find(ot_jaeger_kv *const *tags, size_t n, const char *key)
{
    const ot_jaeger_kv *hit = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(tags[i]->key, key) == 0) {
            cr_assert_null(hit, "tag %s twice", key);
            hit = tags[i];
        }
    return hit;
}

static const ot_jaeger_kv *tag(const ot_jaeger_span *s, const char *key)
{
    return find(s->tags, s->n_tags, key);
}

static void assert_str_tag(const ot_jaeger_kv *t, const char *key, const char *want)
{
    cr_assert(t, "no tag %s", key);
    cr_assert_eq(t->v_type, VT(STRING), "%s: type %d", key, t->v_type);
    cr_assert_str_eq(t->v_str, want, "%s", key);
}

static int id_eq(ProtobufCBinaryData b, const char *hex)
{
    ProtobufCBinaryData w = bytes(hex);
    return b.len == w.len && memcmp(b.data, w.data, w.len) == 0;
}

/* ---- process and batches ---------------------------------------------- */

Test(jaeger, one_batch_per_resource_service_name_and_process_tags)
{
    ot_trace_req *req = request();
    ot_resource_spans *r1 = resource(req, "checkout");
    PUSH(r1->resource->attributes, r1->resource->n_attributes, kv("host.name", av_str("h1")));
    PUSH(r1->resource->attributes, r1->resource->n_attributes, kv("pid", av_int(42)));
    ot_scope_spans *s1 = scope(r1, NULL, NULL);
    PUSH(s1->spans, s1->n_spans, span("a"));
    ot_scope_spans *s1b = scope(r1, NULL, NULL);
    PUSH(s1b->spans, s1b->n_spans, span("b"));
    resource(req, "idle"); /* no spans: no batch */
    ot_resource_spans *r3 = resource(req, NULL);
    ot_scope_spans *s3 = scope(r3, NULL, NULL);
    PUSH(s3->spans, s3->n_spans, span("c"));
    ot_resource_spans *r4 = mk(&opentelemetry__proto__trace__v1__resource_spans__descriptor);
    PUSH(req->resource_spans, req->n_resource_spans, r4); /* no resource at all */
    ot_scope_spans *s4 = scope(r4, NULL, NULL);
    PUSH(s4->spans, s4->n_spans, span("d"));
    ot_resource_spans *r5 = resource(req, NULL);
    PUSH(r5->resource->attributes, r5->resource->n_attributes, kv("service.name", av_int(7)));
    ot_scope_spans *s5 = scope(r5, NULL, NULL);
    PUSH(s5->spans, s5->n_spans, span("e"));

    ot_jaeger_out out = translate(req);
    cr_assert_eq(out.n_batches, 4);
    cr_assert_eq(out.n_spans, 5);
    const ot_jaeger_batch *b = out.batches[0];
    cr_assert_str_eq(b->process->service_name, "checkout");
    cr_assert_eq(b->n_spans, 2);
    cr_assert_str_eq(b->spans[0]->operation_name, "a");
    cr_assert_str_eq(b->spans[1]->operation_name, "b");
    cr_assert_null(b->spans[0]->process, "the process is the batch's");
    cr_assert_eq(b->process->n_tags, 2, "service.name is not repeated as a tag");
    assert_str_tag(b->process->tags[0], "host.name", "h1");
    cr_assert_str_eq(b->process->tags[1]->key, "pid");
    cr_assert_eq(b->process->tags[1]->v_type, VT(INT64));
    cr_assert_eq(b->process->tags[1]->v_int64, 42);

    cr_assert_str_eq(out.batches[1]->process->service_name, OT_JAEGER_UNKNOWN_SERVICE);
    cr_assert_eq(out.batches[1]->process->n_tags, 0);
    cr_assert_str_eq(out.batches[2]->process->service_name, "unknown_service");
    /* A service.name that is not a string is not a name; it stays a tag. */
    cr_assert_str_eq(out.batches[3]->process->service_name, "unknown_service");
    cr_assert_eq(out.batches[3]->process->n_tags, 1);
    cr_assert_eq(out.batches[3]->process->tags[0]->v_int64, 7);
}

Test(jaeger, empty_request_gives_no_batches)
{
    ot_jaeger_out out = translate(request());
    cr_assert_eq(out.n_batches, 0);
    cr_assert_eq(out.n_spans, 0);
}

/* ---- ids, references, times --------------------------------------------- */

Test(jaeger, ids_with_the_top_bit_set_are_kept_exactly)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    const ot_jaeger_span *j = only_span(req);
    cr_assert(id_eq(j->trace_id, TRACE));
    cr_assert(id_eq(j->span_id, SPAN));
    (void)s;
}

Test(jaeger, short_ids_are_right_aligned)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    s->trace_id = bytes("8000000000000001"); /* a 64-bit trace id */
    s->span_id = bytes("");
    const ot_jaeger_span *j = only_span(req);
    cr_assert(id_eq(j->trace_id, "00000000000000008000000000000001"));
    cr_assert(id_eq(j->span_id, "0000000000000000"));
}

Test(jaeger, root_span_has_no_references)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    s->parent_span_id = bytes("0000000000000000"); /* all zero is no parent */
    cr_assert_eq(only_span(req)->n_references, 0);
}

Test(jaeger, parent_is_the_first_child_of_and_links_follow)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    s->parent_span_id = bytes(PARENT);
    const char *other = "0102030405060708090a0b0c0d0e0f10";
    struct {
        const char *trace, *span, *ref_type;
    } links[] = {
        {other, "1111111111111111", NULL},              /* plain link */
        {TRACE, "2222222222222222", "child_of"},        /* same trace */
        {other, "3333333333333333", "child_of"},        /* other trace */
        {TRACE, "4444444444444444", "follows_from"},
        {TRACE, PARENT, "child_of"},                    /* the parent again */
        {TRACE, "5555555555555555", NULL},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        ot_span_link *l = mk(&opentelemetry__proto__trace__v1__span__link__descriptor);
        l->trace_id = bytes(links[i].trace);
        l->span_id = bytes(links[i].span);
        PUSH(l->attributes, l->n_attributes, kv("peer", av_str("x")));
        if (links[i].ref_type)
            PUSH(l->attributes, l->n_attributes,
                 kv("opentracing.ref_type", av_str(links[i].ref_type)));
        PUSH(s->links, s->n_links, l);
    }
    const ot_jaeger_span *j = only_span(req);
    cr_assert_eq(j->n_references, 6, "got %zu", j->n_references);
    struct {
        const char *trace, *span;
        int type;
    } want[] = {
        {TRACE, PARENT, REF(CHILD_OF)},
        {other, "1111111111111111", REF(FOLLOWS_FROM)},
        {TRACE, "2222222222222222", REF(CHILD_OF)},
        {other, "3333333333333333", REF(FOLLOWS_FROM)},
        {TRACE, "4444444444444444", REF(FOLLOWS_FROM)},
        {TRACE, "5555555555555555", REF(FOLLOWS_FROM)},
    };
    for (size_t i = 0; i < 6; i++) {
        cr_assert(id_eq(j->references[i]->trace_id, want[i].trace), "ref %zu trace", i);
        cr_assert(id_eq(j->references[i]->span_id, want[i].span), "ref %zu span", i);
        cr_assert_eq(j->references[i]->ref_type, want[i].type, "ref %zu type", i);
    }
}

Test(jaeger, start_and_duration_keep_nanoseconds)
{
    ot_trace_req *req;
    single(&req);
    const ot_jaeger_span *j = only_span(req);
    cr_assert_eq(j->start_time->seconds, 1700000000);
    cr_assert_eq(j->start_time->nanos, 123456789);
    cr_assert_eq(j->duration->seconds, 1);
    cr_assert_eq(j->duration->nanos, 1000);
}

Test(jaeger, end_before_start_is_zero_duration)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    s->end_time_unix_nano = s->start_time_unix_nano - 5;
    const ot_jaeger_span *j = only_span(req);
    cr_assert_eq(j->duration->seconds, 0);
    cr_assert_eq(j->duration->nanos, 0);
}

Test(jaeger, flags_are_the_w3c_trace_flags_byte)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    s->flags = 0x301; /* sampled, plus OTLP's has-is-remote bits */
    cr_assert_eq(only_span(req)->flags, 1);
}

/* ---- tags ------------------------------------------------------------- */

Test(jaeger, attributes_keep_their_types)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    ot_anyvalue *by = av(AVC(BYTES_VALUE));
    by->bytes_value = bytes("00ff10");
    ot_anyvalue *arr = av(AVC(ARRAY_VALUE));
    arr->array_value = mk(&opentelemetry__proto__common__v1__array_value__descriptor);
    ot_anyvalue *inner = av(AVC(BYTES_VALUE));
    inner->bytes_value = bytes("00ff10");
    ot_anyvalue *items[] = {av_int(-1), av_str("a\"b"), av_bool(1), av_dbl(0.5), inner,
                            av(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)};
    for (size_t i = 0; i < 6; i++)
        PUSH(arr->array_value->values, arr->array_value->n_values, items[i]);
    ot_anyvalue *map = av(AVC(KVLIST_VALUE));
    map->kvlist_value = mk(&opentelemetry__proto__common__v1__key_value_list__descriptor);
    PUSH(map->kvlist_value->values, map->kvlist_value->n_values, kv("k", av_str("v")));
    PUSH(map->kvlist_value->values, map->kvlist_value->n_values, kv("n", arr));
    ot_anyvalue *empty_arr = av(AVC(ARRAY_VALUE));
    empty_arr->array_value = mk(&opentelemetry__proto__common__v1__array_value__descriptor);

    PUSH(s->attributes, s->n_attributes, kv("s", av_str("text")));
    PUSH(s->attributes, s->n_attributes, kv("b", av_bool(1)));
    PUSH(s->attributes, s->n_attributes, kv("i", av_int(INT64_MIN)));
    PUSH(s->attributes, s->n_attributes, kv("d", av_dbl(-2.25)));
    PUSH(s->attributes, s->n_attributes, kv("y", by));
    PUSH(s->attributes, s->n_attributes, kv("arr", arr));
    PUSH(s->attributes, s->n_attributes, kv("map", map));
    PUSH(s->attributes, s->n_attributes, kv("earr", empty_arr));
    PUSH(s->attributes, s->n_attributes, kv("unset", av(OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)));
    PUSH(s->attributes, s->n_attributes, kv("null", NULL));

    const ot_jaeger_span *j = only_span(req);
    cr_assert_eq(j->n_tags, 10, "only the attributes: %zu", j->n_tags);
    cr_assert_str_eq(j->tags[0]->key, "s", "attributes come first, in order");
    assert_str_tag(tag(j, "s"), "s", "text");
    cr_assert_eq(tag(j, "b")->v_type, VT(BOOL));
    cr_assert_eq(tag(j, "b")->v_bool, 1);
    cr_assert_eq(tag(j, "i")->v_type, VT(INT64));
    cr_assert_eq(tag(j, "i")->v_int64, INT64_MIN);
    cr_assert_eq(tag(j, "d")->v_type, VT(FLOAT64));
    cr_assert_eq(tag(j, "d")->v_float64, -2.25);
    cr_assert_eq(tag(j, "y")->v_type, VT(BINARY));
    cr_assert(id_eq(tag(j, "y")->v_binary, "00ff10"));
    assert_str_tag(tag(j, "arr"), "arr", "[-1,\"a\\\"b\",true,0.5,\"AP8Q\",null]");
    assert_str_tag(tag(j, "map"), "map",
                   "{\"k\":\"v\",\"n\":[-1,\"a\\\"b\",true,0.5,\"AP8Q\",null]}");
    assert_str_tag(tag(j, "earr"), "earr", "[]");
    assert_str_tag(tag(j, "unset"), "unset", "");
    assert_str_tag(tag(j, "null"), "null", "");
}

Test(jaeger, span_kind_except_internal_and_unspecified)
{
    struct {
        int kind;
        const char *want;
    } cases[] = {
        {KIND(UNSPECIFIED), NULL}, {KIND(INTERNAL), NULL},    {KIND(SERVER), "server"},
        {KIND(CLIENT), "client"},  {KIND(PRODUCER), "producer"}, {KIND(CONSUMER), "consumer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ot_trace_req *req;
        ot_span *s = single(&req);
        s->kind = cases[i].kind;
        const ot_jaeger_span *j = only_span(req);
        if (cases[i].want)
            assert_str_tag(tag(j, "span.kind"), "span.kind", cases[i].want);
        else
            cr_assert_eq(j->n_tags, 0, "kind %d gives no tag", cases[i].kind);
    }
}

Test(jaeger, statuses)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    cr_assert_eq(only_span(req)->n_tags, 0, "no status");

    s->status = mk(&opentelemetry__proto__trace__v1__status__descriptor);
    s->status->code = CODE(UNSET);
    cr_assert_eq(only_span(req)->n_tags, 0, "UNSET writes nothing");

    s->status->code = CODE(OK);
    const ot_jaeger_span *j = only_span(req);
    cr_assert_eq(j->n_tags, 1);
    assert_str_tag(tag(j, "otel.status_code"), "otel.status_code", "OK");
    cr_assert_null(tag(j, "error"));

    s->status->code = CODE(ERROR);
    s->status->message = ot_arena_strdup(A, "boom");
    j = only_span(req);
    cr_assert_eq(j->n_tags, 3);
    assert_str_tag(tag(j, "otel.status_code"), "otel.status_code", "ERROR");
    cr_assert_eq(tag(j, "error")->v_type, VT(BOOL));
    cr_assert_eq(tag(j, "error")->v_bool, 1);
    assert_str_tag(tag(j, "otel.status_description"), "otel.status_description", "boom");

    s->status->message = "";
    cr_assert_null(tag(only_span(req), "otel.status_description"), "empty: no tag");
}

Test(jaeger, scope_tracestate_and_dropped_counts)
{
    ot_trace_req *req = request();
    ot_scope_spans *ss = scope(resource(req, "svc"), "io.lib", "1.2.3");
    ot_span *s = span("op");
    s->trace_state = ot_arena_strdup(A, "vendor=a,other=b");
    s->dropped_attributes_count = 1;
    s->dropped_events_count = 2;
    s->dropped_links_count = 3;
    PUSH(ss->spans, ss->n_spans, s);
    ot_scope_spans *ss2 = scope(req->resource_spans[0], "noversion", NULL);
    PUSH(ss2->spans, ss2->n_spans, span("op2"));

    ot_jaeger_out out = translate(req);
    const ot_jaeger_span *j = out.batches[0]->spans[0];
    cr_assert_eq(j->n_tags, 6);
    assert_str_tag(tag(j, "otel.scope.name"), "otel.scope.name", "io.lib");
    assert_str_tag(tag(j, "otel.scope.version"), "otel.scope.version", "1.2.3");
    assert_str_tag(tag(j, "w3c.tracestate"), "w3c.tracestate", "vendor=a,other=b");
    const char *dropped[] = {"otel.dropped_attributes_count", "otel.dropped_events_count",
                             "otel.dropped_links_count"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tag(j, dropped[i])->v_type, VT(INT64));
        cr_assert_eq(tag(j, dropped[i])->v_int64, i + 1);
    }
    const ot_jaeger_span *j2 = out.batches[0]->spans[1];
    cr_assert_eq(j2->n_tags, 1);
    assert_str_tag(tag(j2, "otel.scope.name"), "otel.scope.name", "noversion");
}

Test(jaeger, events_become_logs)
{
    ot_trace_req *req;
    ot_span *s = single(&req);
    ot_span_event *e = mk(&opentelemetry__proto__trace__v1__span__event__descriptor);
    e->time_unix_nano = 1700000000500000001ull;
    e->name = ot_arena_strdup(A, "exception");
    PUSH(e->attributes, e->n_attributes, kv("exception.type", av_str("IOError")));
    PUSH(e->attributes, e->n_attributes, kv("attempt", av_int(3)));
    PUSH(s->events, s->n_events, e);
    ot_span_event *e2 = mk(&opentelemetry__proto__trace__v1__span__event__descriptor);
    e2->name = ot_arena_strdup(A, "named");
    PUSH(e2->attributes, e2->n_attributes, kv("event", av_str("from-attr")));
    PUSH(s->events, s->n_events, e2);
    ot_span_event *e3 = mk(&opentelemetry__proto__trace__v1__span__event__descriptor);
    PUSH(s->events, s->n_events, e3); /* no name, no attributes */

    const ot_jaeger_span *j = only_span(req);
    cr_assert_eq(j->n_logs, 3);
    const Jaeger__ApiV2__Log *l = j->logs[0];
    cr_assert_eq(l->timestamp->seconds, 1700000000);
    cr_assert_eq(l->timestamp->nanos, 500000001);
    cr_assert_eq(l->n_fields, 3);
    assert_str_tag(l->fields[0], "event", "exception");
    assert_str_tag(l->fields[1], "exception.type", "IOError");
    cr_assert_eq(l->fields[2]->v_int64, 3);
    cr_assert_eq(j->logs[1]->n_fields, 1, "an event attribute wins over the name");
    assert_str_tag(j->logs[1]->fields[0], "event", "from-attr");
    cr_assert_eq(j->logs[2]->n_fields, 0);
}

/* ---- encodings ---------------------------------------------------------- */

Test(jaeger, proto_pack_round_trips)
{
    ot_trace_req *req = ot_sample_traces_rich(A);
    ot_jaeger_out out = translate(req);
    cr_assert_gt(out.n_batches, 0);
    ot_buf buf = OT_BUF_INIT;
    ot_err err;
    for (size_t i = 0; i < out.n_batches; i++) {
        ot_buf_reset(&buf);
        cr_assert_eq(ot_jaeger_proto_pack(out.batches[i], &buf, &err), 0);
        Jaeger__ApiV2__PostSpansRequest *r =
            jaeger__api_v2__post_spans_request__unpack(NULL, buf.len, (uint8_t *)buf.data);
        cr_assert(r);
        cr_assert_eq(r->batch->n_spans, out.batches[i]->n_spans);
        cr_assert_str_eq(r->batch->process->service_name,
                         out.batches[i]->process->service_name);
        for (size_t k = 0; k < r->batch->n_spans; k++) {
            cr_assert_eq(r->batch->spans[k]->n_tags, out.batches[i]->spans[k]->n_tags);
            cr_assert_eq(r->batch->spans[k]->n_references,
                         out.batches[i]->spans[k]->n_references);
            cr_assert_eq(r->batch->spans[k]->n_logs, out.batches[i]->spans[k]->n_logs);
        }
        jaeger__api_v2__post_spans_request__free_unpacked(r, NULL);
    }
    ot_buf_free(&buf);
}

/* apiv2.c writes by hand what protobuf-c would pack; the bytes must be the
 * same, zero values and negative numbers included. */
static void assert_packs_like_protobuf_c(const ot_jaeger_out *out)
{
    ot_buf mine = OT_BUF_INIT;
    ot_err err;
    for (size_t i = 0; i < out->n_batches; i++) {
        ot_buf_reset(&mine);
        cr_assert_eq(ot_jaeger_proto_pack(out->batches[i], &mine, &err), 0);
        Jaeger__ApiV2__PostSpansRequest req = JAEGER__API_V2__POST_SPANS_REQUEST__INIT;
        req.batch = out->batches[i];
        size_t n = jaeger__api_v2__post_spans_request__get_packed_size(&req);
        uint8_t *ref = malloc(n + 1);
        cr_assert(ref);
        cr_assert_eq(jaeger__api_v2__post_spans_request__pack(&req, ref), n);
        cr_assert_eq(mine.len, n, "batch %zu: %zu bytes, protobuf-c %zu", i, mine.len, n);
        cr_assert_eq(memcmp(mine.data, ref, n), 0, "batch %zu differs from protobuf-c", i);
        free(ref);
    }
    ot_buf_free(&mine);
}

Test(jaeger, proto_bytes_are_protobuf_c_bytes)
{
    assert_packs_like_protobuf_c(&(ot_jaeger_out){0});
    ot_jaeger_out rich = translate(ot_sample_traces_rich(A));
    assert_packs_like_protobuf_c(&rich);
    ot_jaeger_out many = translate(ot_sample_traces(A, 300, 12)); /* past 64 spans a batch */
    assert_packs_like_protobuf_c(&many);

    ot_trace_req *req;
    ot_span *s = single(&req);
    PUSH(s->attributes, s->n_attributes, kv("negzero", av_dbl(-0.0)));
    PUSH(s->attributes, s->n_attributes, kv("zero", av_dbl(0.0)));
    PUSH(s->attributes, s->n_attributes, kv("neg", av_int(-5)));
    PUSH(s->attributes, s->n_attributes, kv("f", av_bool(0)));
    PUSH(s->attributes, s->n_attributes, kv("", av_str("")));
    ot_anyvalue *by = av(AVC(BYTES_VALUE));
    PUSH(s->attributes, s->n_attributes, kv("nobytes", by));
    s->parent_span_id = bytes(PARENT);
    s->start_time_unix_nano = 0;
    s->end_time_unix_nano = 0;
    ot_span_event *e = mk(&opentelemetry__proto__trace__v1__span__event__descriptor);
    PUSH(s->events, s->n_events, e);
    ot_jaeger_out out = translate(req);
    out.batches[0]->spans[0]->process_id = "p1";
    char *warnings[] = {"w", ""};
    out.batches[0]->spans[0]->warnings = warnings;
    out.batches[0]->spans[0]->n_warnings = 2;
    out.batches[0]->spans[0]->process = out.batches[0]->process;
    out.batches[0]->spans[0]->references[0]->ref_type = 7; /* not a known enum value */
    assert_packs_like_protobuf_c(&out);
    out.batches[0]->process = NULL;
    out.batches[0]->spans[0]->start_time = NULL;
    assert_packs_like_protobuf_c(&out);
}

/* A batch small enough to write out by hand: service "s" with one LONG
 * process tag, one child span whose ids have the top bit set, one bool tag
 * and one log with one field. */
Test(jaeger, thrift_bytes_match_the_binary_protocol_by_hand)
{
    ot_trace_req *req = request();
    ot_resource_spans *rs = resource(req, "s");
    PUSH(rs->resource->attributes, rs->resource->n_attributes, kv("k", av_int(1)));
    ot_scope_spans *ss = scope(rs, NULL, NULL);
    ot_span *s = span("op");
    s->parent_span_id = bytes(PARENT);
    s->flags = 1;
    s->start_time_unix_nano = 2000999; /* 2000 us; the 999 ns are below Thrift's unit */
    s->end_time_unix_nano = 5000999;   /* 3000 us */
    PUSH(s->attributes, s->n_attributes, kv("b", av_bool(1)));
    ot_span_event *e = mk(&opentelemetry__proto__trace__v1__span__event__descriptor);
    e->time_unix_nano = 7000;
    PUSH(e->attributes, e->n_attributes, kv("d", av_dbl(1.0)));
    PUSH(s->events, s->n_events, e);
    PUSH(ss->spans, ss->n_spans, s);

    static const uint8_t want[] = {
        /* Batch.process: STRUCT(12) field 1 */
        0x0c, 0x00, 0x01,
        /*   serviceName: STRING(11) 1, length 1, "s" */
        0x0b, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 's',
        /*   tags: LIST(15) 2 of STRUCT, 1 element */
        0x0f, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x01,
        /*     Tag key "k", vType I32(8) 2 = LONG(3), vLong I64(10) 6 = 1, STOP */
        0x0b, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 'k',
        0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
        0x0a, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 1,
        0x00,
        /*   end of Process */
        0x00,
        /* Batch.spans: LIST 2 of STRUCT, 1 element */
        0x0f, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x01,
        /*   traceIdLow (1) = 0xff00000000000002, traceIdHigh (2) = 0x8000000000000001 */
        0x0a, 0x00, 0x01, 0xff, 0, 0, 0, 0, 0, 0, 0x02,
        0x0a, 0x00, 0x02, 0x80, 0, 0, 0, 0, 0, 0, 0x01,
        /*   spanId (3), parentSpanId (4) */
        0x0a, 0x00, 0x03, 0x80, 0, 0, 0, 0, 0, 0, 0x03,
        0x0a, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        /*   operationName (5) "op" */
        0x0b, 0x00, 0x05, 0x00, 0x00, 0x00, 0x02, 'o', 'p',
        /*   references (6): one SpanRef CHILD_OF(0) to the parent */
        0x0f, 0x00, 0x06, 0x0c, 0x00, 0x00, 0x00, 0x01,
        0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x0a, 0x00, 0x02, 0xff, 0, 0, 0, 0, 0, 0, 0x02,
        0x0a, 0x00, 0x03, 0x80, 0, 0, 0, 0, 0, 0, 0x01,
        0x0a, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        0x00,
        /*   flags (7) I32 = 1, startTime (8) = 2000, duration (9) = 3000 */
        0x08, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01,
        0x0a, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0x07, 0xd0,
        0x0a, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8,
        /*   tags (10): key "b", vType BOOL(2), vBool BOOL(2) 5 = 1 */
        0x0f, 0x00, 0x0a, 0x0c, 0x00, 0x00, 0x00, 0x01,
        0x0b, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 'b',
        0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02,
        0x02, 0x00, 0x05, 0x01,
        0x00,
        /*   logs (11): timestamp 7 us, fields: key "d", DOUBLE(1), vDouble 4 = 1.0 */
        0x0f, 0x00, 0x0b, 0x0c, 0x00, 0x00, 0x00, 0x01,
        0x0a, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x07,
        0x0f, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x01,
        0x0b, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 'd',
        0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
        0x04, 0x00, 0x04, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
        0x00,
        0x00, /* end of Log */
        0x00, /* end of Span */
        0x00, /* end of Batch */
    };
    ot_jaeger_out out = translate(req);
    ot_buf buf = OT_BUF_INIT;
    ot_buf_puts(&buf, "x"); /* appends after what is there */
    ot_err err;
    cr_assert_eq(ot_jaeger_thrift_batch(out.batches[0], &buf, &err), 0);
    cr_assert_eq(buf.len, 1 + sizeof want, "length %zu, want %zu", buf.len - 1, sizeof want);
    for (size_t i = 0; i < sizeof want; i++)
        cr_assert_eq((uint8_t)buf.data[1 + i], want[i], "byte %zu: %02x, want %02x", i,
                     (uint8_t)buf.data[1 + i], want[i]);
    ot_buf_free(&buf);
}

Test(jaeger, thrift_root_span_writes_parent_zero_and_no_optional_lists)
{
    ot_trace_req *req;
    single(&req);
    req->resource_spans[0]->resource->n_attributes = 0; /* unknown_service, no tags */
    ot_jaeger_out out = translate(req);
    ot_buf buf = OT_BUF_INIT;
    ot_err err;
    cr_assert_eq(ot_jaeger_thrift_batch(out.batches[0], &buf, &err), 0);
    static const uint8_t process[] = {0x0c, 0, 1, 0x0b, 0, 1, 0, 0, 0, 15};
    cr_assert_eq(memcmp(buf.data, process, sizeof process), 0);
    cr_assert_eq(memcmp(buf.data + sizeof process, "unknown_service", 15), 0);
    const uint8_t *p = (const uint8_t *)buf.data + sizeof process + 15;
    cr_assert_eq(p[0], 0x00, "Process has no tags list");
    p += 1 + 8 + 33; /* spans list header; ids 1-3 */
    static const uint8_t parent0[] = {0x0a, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(memcmp(p, parent0, sizeof parent0), 0, "parentSpanId 0 is written");
    p += sizeof parent0 + 9; /* operationName "op" */
    cr_assert_eq(p[0], 0x08, "no references list: flags come next");
    cr_assert_eq(p[2], 7);
    /* flags, startTime, duration, then the Span's and the Batch's stops */
    cr_assert_eq((size_t)(p + 7 + 11 + 11 + 2 - (const uint8_t *)buf.data), buf.len);
    ot_buf_free(&buf);
}
