/* test_jaeger_wire.c: the jaeger exporter's encoding straight from
 * protobuf bytes (exporters/jaeger/direct.c) against its reference,
 * protobuf-c's unpack, translate.c and the struct encoders, on bytes a
 * protobuf encoder may write but protobuf-c's own packer never does:
 * fields out of order, scalars sent twice, unknown fields. Where the walk
 * declines (a singular message sent twice, which protobuf-c merges; bytes
 * that do not parse) it must say so and write nothing, so the exporter
 * falls back to the reference.
 * (test_jaeger.c checks both paths agree on every request it builds.) */
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

TestSuite(jaeger_wire, .init = setup, .fini = teardown);

/* ---- a tiny protobuf writer ---------------------------------------------- */

static void varint(ot_buf *b, uint64_t v)
{
    do {
        ot_buf_putc(b, (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v);
}

static void f_len(ot_buf *b, int field, const void *d, size_t n)
{
    varint(b, (uint64_t)field << 3 | 2);
    varint(b, n);
    ot_buf_append(b, d, n);
}

static void f_str(ot_buf *b, int field, const char *s) { f_len(b, field, s, strlen(s)); }
static void f_msg(ot_buf *b, int field, const ot_buf *m) { f_len(b, field, m->data, m->len); }

static void f_varint(ot_buf *b, int field, uint64_t v)
{
    varint(b, (uint64_t)field << 3);
    varint(b, v);
}

static void f_fixed64(ot_buf *b, int field, uint64_t v)
{
    varint(b, (uint64_t)field << 3 | 1);
    for (int i = 0; i < 8; i++)
        ot_buf_putc(b, (char)(v >> (8 * i)));
}

/* KeyValue{key, AnyValue{string_value}} */
static void f_attr_str(ot_buf *b, int field, const char *k, const char *v)
{
    ot_buf av = OT_BUF_INIT, kv = OT_BUF_INIT;
    f_str(&av, 1, v);
    f_str(&kv, 1, k);
    f_msg(&kv, 2, &av);
    f_msg(b, field, &kv);
    ot_buf_free(&av);
    ot_buf_free(&kv);
}

static const uint8_t TID[16] = {0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff};
static const uint8_t SID[8] = {0xff, 1, 2, 3, 4, 5, 6, 7};
static const uint8_t PID[8] = {0x7f, 1, 2, 3, 4, 5, 6, 8};

/* ExportTraceServiceRequest{ResourceSpans{resource, ScopeSpans{scope,
 * span}}} with the span's bytes given. */
static void request(ot_buf *out, const ot_buf *span, int scope_last)
{
    ot_buf res = OT_BUF_INIT, scope = OT_BUF_INIT, ss = OT_BUF_INIT, rs = OT_BUF_INIT;
    f_attr_str(&res, 1, "service.name", "svc");
    f_attr_str(&res, 1, "host", "h1");
    f_str(&scope, 1, "lib");
    f_str(&scope, 2, "1.0");
    if (!scope_last)
        f_msg(&ss, 1, &scope);
    f_msg(&ss, 2, span);
    f_msg(&ss, 2, span);
    if (scope_last)
        f_msg(&ss, 1, &scope);
    f_msg(&rs, 2, &ss);
    f_msg(&rs, 1, &res);
    f_msg(out, 1, &rs);
    ot_buf_free(&res);
    ot_buf_free(&scope);
    ot_buf_free(&ss);
    ot_buf_free(&rs);
}

/* ---- comparing with the reference --------------------------------------- */

static void encode_all(const ot_jaeger_out *o, ot_buf *b)
{
    ot_err err;
    for (size_t i = 0; i < o->n_batches; i++) {
        cr_assert_eq(ot_jaeger_proto_pack(o->batches[i], b, &err), 0);
        cr_assert_eq(ot_jaeger_thrift_batch(o->batches[i], b, &err), 0);
    }
}

/* The direct encoder's bodies in encode_all's order (api_v2, then
 * Thrift, per batch); its rc, which must agree for both protocols. */
static int direct_all(const ot_buf *wire, ot_buf *b)
{
    ot_err err = {{0}};
    ot_jaeger_enc *e = ot_jaeger_enc_new();
    ot_buf pb = OT_BUF_INIT, tb = OT_BUF_INIT;
    const ot_jaeger_body *pv, *tv;
    size_t pn = 0, tn = 0;
    cr_assert(e);
    int rp = ot_jaeger_encode_wire(e, 0, (const uint8_t *)wire->data, wire->len, &pb, &pv, &pn,
                                   &err);
    ot_jaeger_body *pcopy = rp == 0 && pn ? malloc(pn * sizeof *pcopy) : NULL;
    if (pcopy)
        memcpy(pcopy, pv, pn * sizeof *pcopy);
    int rt = ot_jaeger_encode_wire(e, 1, (const uint8_t *)wire->data, wire->len, &tb, &tv, &tn,
                                   &err);
    cr_assert_eq(rp, rt, "api_v2 %d, Thrift %d", rp, rt);
    if (rp == 0) {
        cr_assert_eq(pn, tn);
        for (size_t i = 0; i < pn; i++) {
            cr_assert_eq(pcopy[i].spans, tv[i].spans);
            ot_buf_append(b, pb.data + pcopy[i].off, pcopy[i].len);
            ot_buf_append(b, tb.data + tv[i].off, tv[i].len);
        }
    } else {
        cr_assert_eq(pb.len, 0);
        cr_assert_eq(tb.len, 0);
    }
    free(pcopy);
    ot_buf_free(&pb);
    ot_buf_free(&tb);
    ot_jaeger_enc_free(e);
    return rp;
}

/* The direct encoder's rc; when 0, protobuf-c must take the bytes too and
 * its output must be the reference's, byte for byte; when 1, it wrote
 * nothing and the exporter decodes. */
static int compare(const ot_buf *wire)
{
    ot_err err = {{0}};
    ot_buf bd = OT_BUF_INIT;
    int rc = direct_all(wire, &bd);
    if (rc != 0) {
        cr_assert_eq(bd.len, 0);
        ot_buf_free(&bd);
        return rc;
    }
    ot_trace_req *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, wire->len, (const uint8_t *)wire->data);
    cr_assert(req, "protobuf-c refuses bytes the direct encoder accepted");
    ot_jaeger_out ref;
    cr_assert_eq(ot_jaeger_translate(req, A, &ref, &err), 0);
    ot_buf br = OT_BUF_INIT;
    encode_all(&ref, &br);
    cr_assert_eq(bd.len, br.len, "%zu bytes against the reference's %zu", bd.len, br.len);
    cr_assert(bd.len == 0 || memcmp(bd.data, br.data, bd.len) == 0,
              "the output differs from the reference");
    ot_buf_free(&bd);
    ot_buf_free(&br);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
    return 0;
}

/* A span with its fields in reverse order, lists interleaved. */
static void reversed_span(ot_buf *s)
{
    ot_buf st = OT_BUF_INIT, ev = OT_BUF_INIT, ln = OT_BUF_INIT;
    varint(s, 16u << 3 | 5);
    ot_buf_append(s, "\x01\x00\x00\x00", 4); /* flags: sampled */
    f_varint(&st, 3, 2);                      /* ERROR */
    f_str(&st, 2, "boom");
    f_msg(s, 15, &st);
    f_len(&ln, 2, PID, 8);
    f_len(&ln, 1, TID, 16);
    f_attr_str(&ln, 4, "opentracing.ref_type", "child_of");
    f_msg(s, 13, &ln);
    f_attr_str(s, 9, "b", "2");
    f_attr_str(&ev, 3, "k", "v");
    f_str(&ev, 2, "ev");
    f_fixed64(&ev, 1, 1700000000123456789ull);
    f_msg(s, 11, &ev);
    f_attr_str(s, 9, "a", "1");
    f_fixed64(s, 8, 1700000001000000000ull);
    f_fixed64(s, 7, 1700000000000000001ull);
    f_varint(s, 6, 3);
    f_str(s, 5, "op");
    f_len(s, 4, PID, 8);
    f_str(s, 3, "k=v");
    f_len(s, 2, SID, 8);
    f_len(s, 1, TID, 16);
    ot_buf_free(&st);
    ot_buf_free(&ev);
    ot_buf_free(&ln);
}

Test(jaeger_wire, fields_in_any_order_give_the_reference_output)
{
    ot_buf span = OT_BUF_INIT, w = OT_BUF_INIT;
    reversed_span(&span);
    request(&w, &span, 1);
    cr_assert_eq(compare(&w), 0);
    ot_buf_free(&span);
    ot_buf_free(&w);
}

Test(jaeger_wire, a_scalar_sent_twice_keeps_the_last_and_unknown_fields_are_skipped)
{
    ot_buf span = OT_BUF_INIT, w = OT_BUF_INIT;
    f_str(&span, 5, "first");
    reversed_span(&span);
    f_str(&span, 5, "last");
    f_varint(&span, 6, 2);
    f_varint(&span, 99, 12345);         /* unknown varint */
    f_str(&span, 98, "unknown payload"); /* unknown LEN */
    f_fixed64(&span, 97, 7);             /* unknown I64 */
    request(&w, &span, 0);
    cr_assert_eq(compare(&w), 0);
    ot_buf_free(&span);
    ot_buf_free(&w);
}

Test(jaeger_wire, values_of_every_type_and_a_nested_array)
{
    ot_buf span = OT_BUF_INIT, w = OT_BUF_INIT, kv = OT_BUF_INIT, av = OT_BUF_INIT,
           arr = OT_BUF_INIT, item = OT_BUF_INIT;
    f_len(&span, 1, TID, 16);
    f_len(&span, 2, SID, 8);
    f_str(&span, 5, "op");
    /* {int: -5}, {bool: true}, {double: 2.5}, {bytes}, {array: [1, "x"]}, {} */
    f_varint(&av, 3, (uint64_t)-5);
    f_str(&kv, 1, "i");
    f_msg(&kv, 2, &av);
    f_msg(&span, 9, &kv);
    ot_buf_reset(&av), ot_buf_reset(&kv);
    f_varint(&av, 2, 1);
    f_str(&kv, 1, "b");
    f_msg(&kv, 2, &av);
    f_msg(&span, 9, &kv);
    ot_buf_reset(&av), ot_buf_reset(&kv);
    double d = 2.5;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    f_fixed64(&av, 4, bits);
    f_str(&kv, 1, "d");
    f_msg(&kv, 2, &av);
    f_msg(&span, 9, &kv);
    ot_buf_reset(&av), ot_buf_reset(&kv);
    f_len(&av, 7, "\x00\x01\x02", 3);
    f_str(&kv, 1, "y");
    f_msg(&kv, 2, &av);
    f_msg(&span, 9, &kv);
    ot_buf_reset(&av), ot_buf_reset(&kv);
    f_varint(&item, 3, 1);
    f_msg(&arr, 1, &item);
    ot_buf_reset(&item);
    f_str(&item, 1, "x");
    f_msg(&arr, 1, &item);
    f_msg(&av, 5, &arr);
    f_str(&kv, 1, "arr");
    f_msg(&kv, 2, &av);
    f_msg(&span, 9, &kv);
    ot_buf_reset(&av), ot_buf_reset(&kv);
    f_str(&kv, 1, "unset");
    f_msg(&kv, 2, &av); /* an AnyValue with nothing set */
    f_msg(&span, 9, &kv);
    ot_buf_reset(&kv);
    f_str(&kv, 1, "novalue"); /* no AnyValue at all */
    f_msg(&span, 9, &kv);
    request(&w, &span, 0);
    cr_assert_eq(compare(&w), 0);
    ot_buf_free(&span);
    ot_buf_free(&w);
    ot_buf_free(&kv);
    ot_buf_free(&av);
    ot_buf_free(&arr);
    ot_buf_free(&item);
}

/* KeyValue{key, AnyValue{string_value}} with explicit lengths (zero
 * bytes allowed), and KeyValue{key, AnyValue{int_value}} with the value's
 * varint bytes as given (padded ones included). */
static void f_attr_raw(ot_buf *b, const char *k, size_t kl, const char *v, size_t vl)
{
    ot_buf av = OT_BUF_INIT, kv = OT_BUF_INIT;
    f_len(&av, 1, v, vl);
    f_len(&kv, 1, k, kl);
    f_msg(&kv, 2, &av);
    f_msg(b, 9, &kv);
    ot_buf_free(&av);
    ot_buf_free(&kv);
}

static void f_attr_int_bytes(ot_buf *b, const char *k, const uint8_t *varint_bytes, size_t n)
{
    ot_buf av = OT_BUF_INIT, kv = OT_BUF_INIT;
    ot_buf_putc(&av, 0x18);
    ot_buf_append(&av, varint_bytes, n);
    f_str(&kv, 1, k);
    f_msg(&kv, 2, &av);
    f_msg(b, 9, &kv);
    ot_buf_free(&av);
    ot_buf_free(&kv);
}

/* The attributes the direct encoder writes straight from their bytes
 * (short string and int values) and the ones just outside that shape,
 * which take the general path: both must give the reference's bytes. */
Test(jaeger_wire, attributes_at_the_edges_of_the_short_path)
{
    ot_buf span = OT_BUF_INIT, w = OT_BUF_INIT;
    f_len(&span, 1, TID, 16);
    f_len(&span, 2, SID, 8);
    f_str(&span, 5, "edges");
    char big[200];
    memset(big, 'x', sizeof big);
    f_attr_raw(&span, "k", 1, "", 0);              /* empty value: shorter than 8 bytes */
    f_attr_raw(&span, "key", 3, "", 0);
    f_attr_raw(&span, "", 0, "value-without-key", 17);
    f_attr_raw(&span, "a\0b-key", 7, "value", 5);  /* zero byte in the key: cut */
    f_attr_raw(&span, "key", 3, "va\0lue", 6);     /* and in the value */
    for (size_t vl = 0; vl < 130; vl++)            /* the KeyValue from 8 to over 128 bytes */
        f_attr_raw(&span, "len.key", 7, big, vl);
    f_attr_raw(&span, big, 127, "v", 1);           /* the longest one-byte key length */
    f_attr_raw(&span, big, 128, "v", 1);           /* a two-byte one */
    static const uint8_t zero[] = {0x00}, one_padded[] = {0x81, 0x00}, v127[] = {0x7f},
                         v128[] = {0x80, 0x01},
                         minus1[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
                         max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
                         too_long[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    f_attr_int_bytes(&span, "int.zero", zero, sizeof zero);
    f_attr_int_bytes(&span, "int.padded", one_padded, sizeof one_padded);
    f_attr_int_bytes(&span, "int.127", v127, sizeof v127);
    f_attr_int_bytes(&span, "int.128", v128, sizeof v128);
    f_attr_int_bytes(&span, "int.minus.one", minus1, sizeof minus1);
    f_attr_int_bytes(&span, "int.max", max, sizeof max);
    f_attr_int_bytes(&span, "i", v127, sizeof v127); /* shorter than 8 bytes */
    request(&w, &span, 0);
    cr_assert_eq(compare(&w), 0);
    /* An int of eleven varint bytes is not one protobuf-c reads. */
    ot_buf bad = OT_BUF_INIT, w2 = OT_BUF_INIT;
    f_len(&bad, 1, TID, 16);
    f_len(&bad, 2, SID, 8);
    f_attr_int_bytes(&bad, "int.too.long", too_long, sizeof too_long);
    request(&w2, &bad, 0);
    compare(&w2);
    ot_buf_free(&bad);
    ot_buf_free(&w2);
    ot_buf_free(&span);
    ot_buf_free(&w);
}

Test(jaeger_wire, what_protobuf_c_merges_is_left_to_the_reference)
{
    ot_buf span = OT_BUF_INIT, w = OT_BUF_INIT, st = OT_BUF_INIT;
    reversed_span(&span);
    f_varint(&st, 3, 1);
    f_msg(&span, 15, &st); /* a second Status: protobuf-c merges the two */
    request(&w, &span, 0);
    cr_assert_eq(compare(&w), 1);

    /* Two members of one AnyValue's oneof. */
    ot_buf_reset(&span), ot_buf_reset(&w);
    ot_buf kv = OT_BUF_INIT, av = OT_BUF_INIT;
    f_str(&av, 1, "s");
    f_varint(&av, 3, 4);
    f_str(&kv, 1, "k");
    f_msg(&kv, 2, &av);
    f_len(&span, 1, TID, 16);
    f_msg(&span, 9, &kv);
    request(&w, &span, 0);
    cr_assert_eq(compare(&w), 1);
    ot_buf_free(&span);
    ot_buf_free(&w);
    ot_buf_free(&st);
    ot_buf_free(&kv);
    ot_buf_free(&av);
}

Test(jaeger_wire, bytes_that_do_not_parse_are_left_to_the_reference)
{
    ot_buf span = OT_BUF_INIT, w = OT_BUF_INIT;
    reversed_span(&span);
    request(&w, &span, 0);
    for (size_t cut = 1; cut < w.len; cut += 7) {
        ot_buf t = OT_BUF_INIT;
        ot_buf_append(&t, w.data, w.len - cut);
        int rc = compare(&t); /* 0 only when the cut falls between fields */
        cr_assert(rc == 0 || rc == 1);
        ot_buf_free(&t);
    }
    ot_buf bad = OT_BUF_INIT;
    f_varint(&bad, 1, 5); /* ResourceSpans as a varint: the wrong wire type */
    cr_assert_eq(compare(&bad), 1);
    ot_buf_free(&bad);
    ot_buf_free(&span);
    ot_buf_free(&w);
}

Test(jaeger_wire, sample_requests_give_the_reference_output)
{
    const ot_trace_req *reqs[] = {ot_sample_traces(A, 300, 12), ot_sample_traces_rich(A),
                                  ot_sample_traces(A, 1, 0)};
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        ot_buf w = OT_BUF_INIT;
        size_t n = protobuf_c_message_get_packed_size(&reqs[i]->base);
        cr_assert_eq(ot_buf_reserve(&w, n), 0);
        w.len = protobuf_c_message_pack(&reqs[i]->base, (uint8_t *)w.data);
        cr_assert_eq(compare(&w), 0);
        ot_buf_free(&w);
    }
}
