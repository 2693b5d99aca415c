/* test_pbwalk.c: the protobuf wire walker against protobuf-c's encoder and
 * decoder, and against hand-made invalid inputs. The invariant that
 * matters: whatever the walker accepts, protobuf-c unpacks, with the same
 * item count. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "otlp_samples.h"
#include "model/pbwalk.h"

typedef struct packed {
    uint8_t *p;
    size_t n;
} packed;

static packed pack(const ProtobufCMessage *m)
{
    packed r;
    r.n = protobuf_c_message_get_packed_size(m);
    r.p = malloc(r.n ? r.n : 1);
    cr_assert(r.p);
    protobuf_c_message_pack(m, r.p);
    return r;
}

/* Walks and unpacks; asserts they agree when the walker accepts. Returns
 * the walker's result. */
static int walk_and_check(ot_signal s, const uint8_t *p, size_t n, size_t *items, ot_err *err)
{
    size_t got = 0;
    int rc = ot_pbwalk(s, p, n, &got, err);
    if (rc == 0) {
        ProtobufCMessage *m = protobuf_c_message_unpack(ot_signal_request_desc(s), NULL, n, p);
        cr_assert(m, "walker accepted what protobuf-c refuses (%zu bytes)", n);
        cr_assert_eq(got, ot_count_items(s, m), "walker counted %zu, decoder %zu", got,
                     ot_count_items(s, m));
        protobuf_c_message_free_unpacked(m, NULL);
        if (items)
            *items = got;
    }
    return rc;
}

static packed sample(ot_signal s, size_t n, size_t attrs)
{
    ot_arena *a = ot_arena_new(0);
    packed r = pack(ot_sample_request(a, s, n, attrs));
    ot_arena_free(a);
    return r;
}

Test(pbwalk, accepts_samples_and_counts_items)
{
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        size_t sizes[] = {0, 1, 7, 64, 500};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            packed b = sample((ot_signal)s, sizes[i], 3);
            ot_err err = {{0}};
            size_t items = 99;
            cr_assert_eq(walk_and_check((ot_signal)s, b.p, b.n, &items, &err), 0, "%s: %s",
                         ot_signal_name((ot_signal)s), err.msg);
            cr_assert_eq(items, sizes[i], "%s n=%zu: counted %zu", ot_signal_name((ot_signal)s),
                         sizes[i], items);
            free(b.p);
        }
    }
}

Test(pbwalk, accepts_rich_traces)
{
    ot_arena *a = ot_arena_new(0);
    packed b = pack(&ot_sample_traces_rich(a)->base);
    ot_err err = {{0}};
    size_t items = 0;
    cr_assert_eq(walk_and_check(OT_TRACES, b.p, b.n, &items, &err), 0, "%s", err.msg);
    cr_assert_gt(items, 0);
    free(b.p);
    ot_arena_free(a);
}

Test(pbwalk, empty_request_is_valid)
{
    size_t items = 5;
    cr_assert_eq(ot_pbwalk(OT_LOGS, "", 0, &items, NULL), 0);
    cr_assert_eq(items, 0);
}

Test(pbwalk, concatenation_joins_requests)
{
    packed a = sample(OT_TRACES, 10, 2), b = sample(OT_TRACES, 25, 1);
    uint8_t *cat = malloc(a.n + b.n);
    memcpy(cat, a.p, a.n);
    memcpy(cat + a.n, b.p, b.n);
    size_t items = 0;
    cr_assert_eq(walk_and_check(OT_TRACES, cat, a.n + b.n, &items, NULL), 0);
    cr_assert_eq(items, 35);
    free(cat);
    free(a.p);
    free(b.p);
}

/* A request with one resource, one scope and one span named name. */
static packed one_span(const char *name)
{
    ot_span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    ot_span *sps[1] = {&sp};
    ot_scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ot_scope_spans *sss[1] = {&ss};
    ot_resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    ot_resource_spans *rss[1] = {&rs};
    ot_trace_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    sp.name = (char *)name;
    ss.n_spans = 1;
    ss.spans = sps;
    rs.n_scope_spans = 1;
    rs.scope_spans = sss;
    req.n_resource_spans = 1;
    req.resource_spans = rss;
    return pack(&req.base);
}

Test(pbwalk, skips_unknown_fields_of_every_wire_type)
{
    /* Unknown fields at top level: varint, 64-bit, length-delimited,
     * 32-bit, with field numbers small and large. Then a real span. */
    packed s = one_span("x");
    uint8_t buf[256];
    size_t n = 0;
    const uint8_t unk[] = {
        0x10, 0x96, 0x01,                               /* field 2 varint 150 */
        0x19, 1, 2, 3, 4, 5, 6, 7, 8,                   /* field 3 fixed64 */
        0x22, 0x03, 'a', 'b', 'c',                      /* field 4 bytes */
        0x2d, 1, 2, 3, 4,                               /* field 5 fixed32 */
        0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01,             /* field 2^29-1 varint */
        0xa2, 0x06, 0x02, 0xff, 0xfe,                   /* field 100: not UTF-8, but unknown */
    };
    memcpy(buf, unk, sizeof unk);
    n = sizeof unk;
    memcpy(buf + n, s.p, s.n);
    n += s.n;
    size_t items = 0;
    ot_err err = {{0}};
    cr_assert_eq(walk_and_check(OT_TRACES, buf, n, &items, &err), 0, "%s", err.msg);
    cr_assert_eq(items, 1);
    free(s.p);
}

Test(pbwalk, skips_unknown_fields_inside_span)
{
    /* ResourceSpans{ScopeSpans{Span{name:"ab", field 99: "zz"}}} by hand. */
    const uint8_t msg[] = {
        0x0a, 0x0f,             /* resource_spans, 15 */
        0x12, 0x0d,             /* scope_spans, 13 */
        0x12, 0x0b,             /* spans, 11 */
        0x2a, 0x02, 'a', 'b',   /* name */
        0x9a, 0x06, 0x02, 'z', 'z', /* field 99 */
        0x50, 0x01,             /* dropped_attributes_count 1 */
    };
    size_t items = 0;
    ot_err err = {{0}};
    cr_assert_eq(walk_and_check(OT_TRACES, msg, sizeof msg, &items, &err), 0, "%s", err.msg);
    cr_assert_eq(items, 1);
}

static void expect_invalid(ot_signal s, const uint8_t *p, size_t n, const char *needle)
{
    ot_err err = {{0}};
    cr_assert_eq(ot_pbwalk(s, p, n, NULL, &err), -1, "accepted; expected '%s'", needle);
    cr_assert(strstr(err.msg, needle), "error '%s' lacks '%s'", err.msg, needle);
    cr_assert(strstr(err.msg, "offset "), "error '%s' has no offset", err.msg);
}

Test(pbwalk, refuses_invalid_utf8_in_strings)
{
    const char *bad[] = {"\xff", "a\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe2\x82",
                         "\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        packed s = one_span(bad[i]);
        expect_invalid(OT_TRACES, s.p, s.n, "invalid UTF-8");
        free(s.p);
    }
    const char *good[] = {"", "plain ascii longer than eight bytes", "\xc3\xa9t\xc3\xa9",
                          "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbf\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        packed s = one_span(good[i]);
        cr_assert_eq(walk_and_check(OT_TRACES, s.p, s.n, NULL, NULL), 0, "good[%zu]", i);
        free(s.p);
    }
}

Test(pbwalk, error_names_field_and_offset)
{
    packed s = one_span("\xff");
    ot_err err = {{0}};
    cr_assert_eq(ot_pbwalk(OT_TRACES, s.p, s.n, NULL, &err), -1);
    cr_assert_str_eq(err.msg, "offset 6: Span.name (field 5): invalid UTF-8 in string");
    free(s.p);
}

Test(pbwalk, refuses_malformed_wire)
{
    /* wrong wire type for a known field: resource_spans as varint */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x08\x01", 2, "wire type");
    /* length past the end */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x0a\x05\x00", 3, "past the end");
    /* truncated tag */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x80", 1, "tag");
    /* field number 0 */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x02\x00", 2, "field number");
    /* groups */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x13\x14", 2, "groups");
    /* wire types 6 and 7 */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x16", 1, "wire type");
    expect_invalid(OT_TRACES, (const uint8_t *)"\x17", 1, "wire type");
    /* overlong varint (11 bytes) in an unknown field */
    expect_invalid(OT_TRACES,
                   (const uint8_t *)"\x10\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12,
                   "varint");
    /* truncated fixed64 / fixed32 */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x19\x01\x02", 3, "64-bit");
    expect_invalid(OT_TRACES, (const uint8_t *)"\x1d\x01", 2, "32-bit");
    /* length with 6 bytes (protobuf-c reads at most 5) */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x22\x80\x80\x80\x80\x80\x00", 7, "length");
    /* tag of 6 bytes */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x88\x80\x80\x80\x80\x00\x01", 7, "tag");
    /* field number above 2^29-1 */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x80\x80\x80\x80\x10\x01", 6, "field number");
    /* a span's fixed64 field sent as varint: ResourceSpans{ScopeSpans{Span{7: varint}}} */
    expect_invalid(OT_TRACES, (const uint8_t *)"\x0a\x06\x12\x04\x12\x02\x38\x01", 8, "64-bit");
}

Test(pbwalk, packed_and_unpacked_repeated_scalars)
{
    /* Metric{name, histogram{data_points{bucket_counts packed, explicit_bounds unpacked}}} */
    uint8_t hdp[64];
    size_t h = 0;
    hdp[h++] = 0x32; /* field 6, packed fixed64 */
    hdp[h++] = 16;
    memset(hdp + h, 1, 16);
    h += 16;
    hdp[h++] = 0x39; /* field 7 as wire 1 (unpacked double) */
    memset(hdp + h, 0, 8);
    h += 8;
    uint8_t req[128];
    size_t n = 0;
    req[n++] = 0x0a; /* resource_metrics */
    req[n++] = (uint8_t)(h + 8);
    req[n++] = 0x12; /* scope_metrics */
    req[n++] = (uint8_t)(h + 6);
    req[n++] = 0x12; /* metrics */
    req[n++] = (uint8_t)(h + 4);
    req[n++] = 0x4a; /* histogram (9) */
    req[n++] = (uint8_t)(h + 2);
    req[n++] = 0x0a; /* data_points */
    req[n++] = (uint8_t)h;
    memcpy(req + n, hdp, h);
    n += h;
    size_t items = 0;
    ot_err err = {{0}};
    cr_assert_eq(walk_and_check(OT_METRICS, req, n, &items, &err), 0, "%s", err.msg);
    cr_assert_eq(items, 1);
    /* Packed length not a multiple of 8. */
    req[10 + 1] = 15;
    expect_invalid(OT_METRICS, req, n, "multiple of 8");
}

Test(pbwalk, metric_oneof_keeps_the_last_member)
{
    /* Metric with gauge{2 points} then sum{3 points}: protobuf-c keeps the
     * sum only, so the count is 3. */
    const uint8_t metric[] = {
        0x2a, 0x04, 0x0a, 0x00, 0x0a, 0x00,             /* gauge: 2 empty points */
        0x3a, 0x06, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00, /* sum: 3 empty points */
    };
    uint8_t req[64];
    size_t n = 0;
    req[n++] = 0x0a;
    req[n++] = sizeof metric + 4;
    req[n++] = 0x12;
    req[n++] = sizeof metric + 2;
    req[n++] = 0x12;
    req[n++] = sizeof metric;
    memcpy(req + n, metric, sizeof metric);
    n += sizeof metric;
    size_t items = 0;
    cr_assert_eq(walk_and_check(OT_METRICS, req, n, &items, NULL), 0);
    cr_assert_eq(items, 3);
}

/* AnyValue nested through array_value depth times, inside a log body. */
static packed nested_log(int depth)
{
    uint8_t *inner = malloc(16);
    size_t n = 0;
    inner[n++] = 0x0a; /* string_value "" */
    inner[n++] = 0x00;
    for (int i = 0; i < depth; i++) {
        /* ArrayValue{values: inner} then AnyValue{array_value: that} */
        uint8_t *next = malloc(n + 24);
        size_t m = 0;
        uint8_t arr[16];
        size_t al = 0;
        /* ArrayValue field 1 header */
        arr[al++] = 0x0a;
        size_t v = n;
        while (v >= 0x80) {
            arr[al++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        arr[al++] = (uint8_t)v;
        size_t arr_total = al + n;
        next[m++] = 0x2a; /* AnyValue.array_value */
        v = arr_total;
        while (v >= 0x80) {
            next[m++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        next[m++] = (uint8_t)v;
        memcpy(next + m, arr, al);
        m += al;
        memcpy(next + m, inner, n);
        m += n;
        free(inner);
        inner = next;
        n = m;
    }
    ot_anyvalue *body = (ot_anyvalue *)protobuf_c_message_unpack(
        &opentelemetry__proto__common__v1__any_value__descriptor, NULL, n, inner);
    cr_assert(body);
    ot_log_record lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    ot_log_record *lrs[1] = {&lr};
    ot_scope_logs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    ot_scope_logs *sls[1] = {&sl};
    ot_resource_logs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    ot_resource_logs *rls[1] = {&rl};
    ot_logs_req req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    lr.body = body;
    sl.n_log_records = 1;
    sl.log_records = lrs;
    rl.n_scope_logs = 1;
    rl.scope_logs = sls;
    req.n_resource_logs = 1;
    req.resource_logs = rls;
    packed r = pack(&req.base);
    protobuf_c_message_free_unpacked(&body->base, NULL);
    free(inner);
    return r;
}

Test(pbwalk, nesting_depth_is_bounded)
{
    /* request, resource_logs, scope_logs, log_record, body: 5 levels, then
     * two per array level. */
    packed ok = nested_log(40);
    cr_assert_eq(walk_and_check(OT_LOGS, ok.p, ok.n, NULL, NULL), 0);
    free(ok.p);
    packed deep = nested_log(60);
    expect_invalid(OT_LOGS, deep.p, deep.n, "nested too deeply");
    free(deep.p);
}

Test(pbwalk, every_truncation_is_consistent)
{
    packed b = sample(OT_METRICS, 40, 2);
    for (size_t n = 0; n < b.n; n++)
        walk_and_check(OT_METRICS, b.p, n, NULL, NULL);
    free(b.p);
}

Test(pbwalk, random_mutations_never_fool_the_walker)
{
    unsigned seed = 12345;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        packed b = sample((ot_signal)s, 24, 2);
        uint8_t *m = malloc(b.n);
        for (int round = 0; round < 3000; round++) {
            memcpy(m, b.p, b.n);
            int flips = 1 + rand_r(&seed) % 4;
            for (int k = 0; k < flips; k++)
                m[rand_r(&seed) % b.n] = (uint8_t)rand_r(&seed);
            walk_and_check((ot_signal)s, m, b.n, NULL, NULL);
        }
        free(m);
        free(b.p);
    }
}

Test(pbwalk, refuses_a_repeated_singular_anyvalue)
{
    /* KeyValue{key:"k", value:{}, value:{}} in a log record: protobuf-c
     * would merge the two AnyValues and cannot when neither is set. */
    const uint8_t req[] = {0x0a, 0x0d, 0x12, 0x0b, 0x12, 0x09, 0x32, 0x07,
                           0x0a, 0x01, 'k',  0x12, 0x00, 0x12, 0x00};
    expect_invalid(OT_LOGS, req, sizeof req, "more than once");
    /* once is fine */
    const uint8_t ok[] = {0x0a, 0x0b, 0x12, 0x09, 0x12, 0x07, 0x32, 0x05,
                          0x0a, 0x01, 'k',  0x12, 0x00};
    size_t items = 0;
    cr_assert_eq(walk_and_check(OT_LOGS, ok, sizeof ok, &items, NULL), 0);
    cr_assert_eq(items, 1);
}
