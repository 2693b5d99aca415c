/* test_otlp_json_wire.c: JSON written from protobuf bytes must be, byte for
 * byte, what the struct encoder writes for the same bytes decoded by
 * protobuf-c, and bytes it does not take the fast road for must be handed
 * back untouched (1), never written differently. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "model/otlp_json.h"
#include "otlp_samples.h"

static ot_arena *arena;

static void setup(void)
{
    arena = ot_arena_new(0);
    cr_assert_not_null(arena);
}

static void teardown(void)
{
    ot_arena_free(arena);
}

TestSuite(otlp_json_wire, .init = setup, .fini = teardown);

/* The reference: decode with protobuf-c, encode the structs. */
static int reference(ot_signal s, const uint8_t *p, size_t n, ot_buf *out)
{
    ProtobufCMessage *m =
        protobuf_c_message_unpack(ot_signal_request_desc(s), ot_arena_pb_allocator(arena), n, p);
    if (!m)
        return -1;
    ot_err err = {{0}};
    return ot_json_encode(m, out, &err);
}

/* Returns what ot_json_encode_wire returned; when 0, checks the output. */
static int compare(ot_signal s, const uint8_t *p, size_t n)
{
    ot_buf want = OT_BUF_INIT, got = OT_BUF_INIT;
    ot_err err = {{0}};
    ot_buf_append(&got, "x", 1); /* appends, keeps what was there */
    int rc = ot_json_encode_wire(s, p, n, &got, &err);
    if (rc == 0) {
        cr_assert_eq(reference(s, p, n, &want), 0);
        cr_assert_eq(got.len, want.len + 1, "lengths %zu vs %zu:\n%s\n%s", got.len - 1, want.len,
                     got.data + 1, want.data);
        cr_assert(memcmp(got.data + 1, want.data, want.len) == 0, "differs:\n%s\n%s", got.data + 1,
                  want.data);
        cr_assert_eq(got.data[got.len], '\0');
    } else {
        cr_assert_eq(rc, 1, "%s", err.msg);
        cr_assert_eq(got.len, 1, "output left behind on fallback");
        cr_assert_str_eq(got.data, "x");
    }
    ot_buf_free(&want);
    ot_buf_free(&got);
    return rc;
}

static int compare_msg(ot_signal s, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = ot_arena_alloc(arena, n + 1);
    protobuf_c_message_pack(m, buf);
    return compare(s, buf, n);
}

Test(otlp_json_wire, samples_take_the_fast_road_and_match)
{
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t n = 0; n <= 64; n += 8)
            for (size_t a = 0; a <= 10; a += 5)
                cr_assert_eq(compare_msg((ot_signal)s, ot_sample_request(arena, (ot_signal)s, n, a)),
                             0, "%s n=%zu", ot_signal_name((ot_signal)s), n);
    cr_assert_eq(compare_msg(OT_TRACES, &ot_sample_traces_rich(arena)->base), 0);
}

Test(otlp_json_wire, concatenated_requests_match)
{
    /* what the batch processor's wire join hands the exporter */
    const ProtobufCMessage *a = ot_sample_request(arena, OT_METRICS, 40, 3);
    const ProtobufCMessage *b = ot_sample_request(arena, OT_METRICS, 7, 1);
    size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
    uint8_t *buf = ot_arena_alloc(arena, na + nb);
    protobuf_c_message_pack(a, buf);
    protobuf_c_message_pack(b, buf + na);
    cr_assert_eq(compare(OT_METRICS, buf, na + nb), 0);
}

/* A span (ResourceSpans 1 > ScopeSpans 2 > Span 2) around the span's bytes. */
static size_t in_span(const uint8_t *span, size_t n, uint8_t *out)
{
    cr_assert(n < 100);
    size_t o = 0;
    out[o++] = 0x0a; /* resource_spans */
    out[o++] = (uint8_t)(n + 4);
    out[o++] = 0x12; /* scope_spans */
    out[o++] = (uint8_t)(n + 2);
    out[o++] = 0x12; /* spans */
    out[o++] = (uint8_t)n;
    memcpy(out + o, span, n);
    return o + n;
}

static int span_case(const uint8_t *span, size_t n)
{
    uint8_t buf[128];
    return compare(OT_TRACES, buf, in_span(span, n, buf));
}

Test(otlp_json_wire, defaults_are_left_out_as_the_struct_encoder_does)
{
    /* name "" (5), kind 0 (6), start 0 (7), dropped counts 0: all omitted;
     * flags (16, two-byte tag) 0 too */
    static const uint8_t s1[] = {0x2a, 0x00, 0x30, 0x00, 0x39, 0, 0, 0, 0, 0, 0, 0, 0, 0x85, 0x01, 0, 0, 0, 0};
    cr_assert_eq(span_case(s1, sizeof s1), 0);
    /* a name whose first byte is NUL decodes to "" (protobuf-c strings end
     * at the NUL); one with a NUL later is cut there */
    static const uint8_t s2[] = {0x2a, 0x02, 0x00, 'a'};
    cr_assert_eq(span_case(s2, sizeof s2), 0);
    static const uint8_t s3[] = {0x2a, 0x03, 'a', 0x00, 'b'};
    cr_assert_eq(span_case(s3, sizeof s3), 0);
    /* kind as a 10-byte varint: only the low 32 bits count (negative int32) */
    static const uint8_t s4[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(span_case(s4, sizeof s4), 0);
    /* 2^32 as kind: the low 32 bits are zero, so it is left out */
    static const uint8_t s5[] = {0x30, 0x80, 0x80, 0x80, 0x80, 0x10};
    cr_assert_eq(span_case(s5, sizeof s5), 0);
    /* empty messages are written as {} */
    static const uint8_t s6[] = {0x5a, 0x00, 0x7a, 0x00}; /* events [{}], status {} */
    cr_assert_eq(span_case(s6, sizeof s6), 0);
}

Test(otlp_json_wire, escapes_and_non_ascii_strings_match)
{
    static const uint8_t s1[] = {0x2a, 0x0b, 'a', '"', 'b', '\\', '\n', 0x01, 0xc3, 0xa9, 0xff, 'z', 0x7f};
    cr_assert_eq(span_case(s1, sizeof s1), 0);
    static const uint8_t s2[] = {0x2a, 0x11, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', '"'};
    cr_assert_eq(span_case(s2, sizeof s2), 0);
}

Test(otlp_json_wire, unknown_fields_are_skipped)
{
    /* field 99 varint, field 30 fixed64, field 31 bytes between known fields */
    static const uint8_t s1[] = {0x2a, 0x01, 'n', 0x98, 0x06, 0x05, 0xf1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,
                                 0xfa, 0x01, 0x01, 'x', 0x30, 0x02};
    cr_assert_eq(span_case(s1, sizeof s1), 0);
}

Test(otlp_json_wire, what_protobuf_c_merges_or_replaces_falls_back)
{
    /* name twice: the last wins in protobuf-c */
    static const uint8_t s1[] = {0x2a, 0x01, 'a', 0x2a, 0x01, 'b'};
    cr_assert_eq(span_case(s1, sizeof s1), 1);
    /* kind before name: out of order */
    static const uint8_t s2[] = {0x30, 0x01, 0x2a, 0x01, 'a'};
    cr_assert_eq(span_case(s2, sizeof s2), 1);
    /* status twice: merged */
    static const uint8_t s3[] = {0x7a, 0x02, 0x18, 0x01, 0x7a, 0x02, 0x12, 0x00};
    cr_assert_eq(span_case(s3, sizeof s3), 1);
    /* a truncated field */
    static const uint8_t s4[] = {0x2a, 0x05, 'a'};
    uint8_t buf[64];
    size_t n = in_span(s4, sizeof s4, buf);
    ot_buf out = OT_BUF_INIT;
    ot_err err = {{0}};
    cr_assert_eq(ot_json_encode_wire(OT_TRACES, buf, n, &out, &err), 1);
    cr_assert_eq(out.len, 0);
    ot_buf_free(&out);
}

/* An attribute on a span: KeyValue{key "k", value AnyValue{...}}. */
static int attr_case(const uint8_t *any, size_t n)
{
    uint8_t span[96];
    size_t o = 0;
    span[o++] = 0x4a; /* attributes (9) */
    span[o++] = (uint8_t)(n + 5);
    span[o++] = 0x0a;
    span[o++] = 0x01;
    span[o++] = 'k';
    span[o++] = 0x12;
    span[o++] = (uint8_t)n;
    memcpy(span + o, any, n);
    return span_case(span, o + n);
}

Test(otlp_json_wire, oneof_members_are_written_even_when_zero)
{
    static const uint8_t str0[] = {0x0a, 0x00};         /* string_value "" */
    static const uint8_t bool0[] = {0x10, 0x00};        /* bool_value false */
    static const uint8_t int0[] = {0x18, 0x00};         /* int_value 0 */
    static const uint8_t intneg[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t dbl0[] = {0x21, 0, 0, 0, 0, 0, 0, 0, 0x80}; /* -0.0 */
    static const uint8_t nan[] = {0x21, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
    static const uint8_t bytes0[] = {0x3a, 0x00};
    static const uint8_t bytes3[] = {0x3a, 0x03, 0xff, 0x00, 0x10};
    static const uint8_t boolbig[] = {0x10, 0x80, 0x01};   /* 128: true */
    static const uint8_t arr[] = {0x2a, 0x06, 0x0a, 0x02, 0x18, 0x05, 0x0a, 0x00}; /* [5, {}] */
    static const uint8_t none[] = {0};
    cr_assert_eq(attr_case(str0, sizeof str0), 0);
    cr_assert_eq(attr_case(bool0, sizeof bool0), 0);
    cr_assert_eq(attr_case(int0, sizeof int0), 0);
    cr_assert_eq(attr_case(intneg, sizeof intneg), 0);
    cr_assert_eq(attr_case(dbl0, sizeof dbl0), 0);
    cr_assert_eq(attr_case(nan, sizeof nan), 0);
    cr_assert_eq(attr_case(bytes0, sizeof bytes0), 0);
    cr_assert_eq(attr_case(bytes3, sizeof bytes3), 0);
    cr_assert_eq(attr_case(boolbig, sizeof boolbig), 0);
    cr_assert_eq(attr_case(arr, sizeof arr), 0);
    cr_assert_eq(attr_case(none, 0), 0); /* value {} */
    /* two members of the oneof: protobuf-c keeps the last */
    static const uint8_t two[] = {0x0a, 0x01, 'a', 0x18, 0x01};
    cr_assert_eq(attr_case(two, sizeof two), 1);
}

/* A histogram point inside Metric > Histogram. */
static int hist_point_case(const uint8_t *pt, size_t n)
{
    uint8_t buf[160];
    size_t o = 0;
    cr_assert(n < 100);
    buf[o++] = 0x0a; /* resource_metrics */
    buf[o++] = (uint8_t)(n + 8);
    buf[o++] = 0x12; /* scope_metrics */
    buf[o++] = (uint8_t)(n + 6);
    buf[o++] = 0x12; /* metrics */
    buf[o++] = (uint8_t)(n + 4);
    buf[o++] = 0x4a; /* histogram (9) */
    buf[o++] = (uint8_t)(n + 2);
    buf[o++] = 0x0a; /* data_points */
    buf[o++] = (uint8_t)n;
    memcpy(buf + o, pt, n);
    return compare(OT_METRICS, buf, o + n);
}

Test(otlp_json_wire, repeated_scalars_packed_unpacked_and_empty)
{
    /* bucket_counts (6, fixed64) packed then unpacked, explicit_bounds (7,
     * double) packed empty then packed */
    static const uint8_t p1[] = {0x32, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                 0x31, 5, 0, 0, 0, 0, 0, 0, 0,
                                 0x3a, 0x00, 0x3a, 0x08, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    cr_assert_eq(hist_point_case(p1, sizeof p1), 0);
    /* only an empty packed field: no key at all */
    static const uint8_t p2[] = {0x32, 0x00};
    cr_assert_eq(hist_point_case(p2, sizeof p2), 0);
    /* sum (5, optional double) 0.0 is written: it is a oneof member */
    static const uint8_t p3[] = {0x29, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(hist_point_case(p3, sizeof p3), 0);
    /* a packed length that is not a multiple of 8: protobuf-c refuses */
    static const uint8_t p4[] = {0x32, 0x03, 1, 2, 3};
    cr_assert_eq(hist_point_case(p4, sizeof p4), 1);
    /* repeated field interrupted by another: fall back */
    static const uint8_t p5[] = {0x31, 5, 0, 0, 0, 0, 0, 0, 0, 0x3a, 0x00, 0x31, 6, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(hist_point_case(p5, sizeof p5), 1);
}

static size_t put_varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (uint8_t)v;
    return n;
}

/* A length-delimited field of number fn around len bytes at body (moved). */
static size_t wrap(uint8_t *buf, size_t len, unsigned fn)
{
    uint8_t head[12];
    size_t h = put_varint(head, fn << 3 | 2);
    h += put_varint(head + h, len);
    memmove(buf + h, buf, len);
    memcpy(buf, head, h);
    return len + h;
}

Test(otlp_json_wire, doubles_are_written_as_the_struct_encoder_writes_them)
{
    /* decimals of every length, integers, tiny and huge values, random bits */
    enum { N = 4000 };
    static double vals[N];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double scale[] = {1, 10, 100, 1000, 1e4, 1e6, 1e9, 1e12, 1e15, 1e-3};
        switch (i % 5) {
        case 0: vals[i] = (double)(int64_t)(x % 2000000001) / scale[(x >> 40) % 10] - 1e5; break;
        case 1: vals[i] = (double)(x % 1000) / 1000.0; break;
        case 2: memcpy(&vals[i], &x, 8); break;
        case 3: vals[i] = (double)(x >> 11) / (double)(1ull << 53) * scale[(x >> 3) % 10]; break;
        default: vals[i] = (double)(x % 100000000) / scale[(x >> 50) % 10]; break;
        }
    }
    size_t cap = N * 16 + 64;
    uint8_t *buf = ot_arena_alloc(arena, cap);
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        buf[n++] = 0x0a; /* data_points */
        buf[n++] = 9;
        buf[n++] = 0x21; /* as_double */
        memcpy(buf + n, &vals[i], 8);
        n += 8;
    }
    n = wrap(buf, n, 5); /* Metric.gauge */
    n = wrap(buf, n, 2); /* ScopeMetrics.metrics */
    n = wrap(buf, n, 2); /* ResourceMetrics.scope_metrics */
    n = wrap(buf, n, 1); /* request.resource_metrics */
    cr_assert(n <= cap);
    cr_assert_eq(compare(OT_METRICS, buf, n), 0);
}
