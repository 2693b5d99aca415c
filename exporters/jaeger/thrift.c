/* thrift.c: the Thrift binary protocol, write side only, for the one
 * message the jaeger exporter posts: a jaeger.Batch (Process, Span, Tag,
 * Log, SpanRef). Debian's Thrift C library needs GLib and generated GObject
 * code, which is far more than the handful of writers below.
 *
 * This file writes the api_v2 structs of the reference path (translate.c);
 * the exporter's own path writes Thrift from the request's bytes
 * (direct_out.c) and is compared with this one byte for byte. The binary protocol writes a struct as a run of
 * fields, each a type byte, a big-endian 16-bit id and the value, then a
 * stop byte (enc_int.h has the writers, shared with direct_out.c). */
#include "jaeger.h"

#include <string.h>

#include "enc_int.h"


/* Whole fields through the shared writers (enc_int.h); each takes its
 * room first, so a buffer out of memory only stops writing. */
static inline void w_field(ot_buf *b, int type, int id)
{
    unsigned char *p = jt_room(b, 3);
    if (p)
        jt_head(p, type, id);
}

static inline void w_stop(ot_buf *b)
{
    unsigned char *p = jt_room(b, 1);
    if (p)
        *p = JT_STOP;
}

static inline void f_i64(ot_buf *b, int id, int64_t v)
{
    unsigned char *p = jt_room(b, 11);
    if (p)
        jt_i64_at(p, id, v);
}

static inline void f_i32(ot_buf *b, int id, int32_t v)
{
    unsigned char *p = jt_room(b, 7);
    if (p)
        jt_i32_at(p, id, v);
}

static inline void f_bool(ot_buf *b, int id, int v)
{
    unsigned char *p = jt_room(b, 4);
    if (p)
        jt_head(p, JT_BOOL, id)[0] = v ? 1 : 0;
}

static inline void f_double(ot_buf *b, int id, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    unsigned char *p = jt_room(b, 11);
    if (p)
        jt_put64(jt_head(p, JT_DOUBLE, id), bits);
}

static inline void f_bytes(ot_buf *b, int id, const void *s, size_t n)
{
    unsigned char *p = jt_room(b, 7 + n);
    if (p)
        jt_bytes_at(p, id, s, n);
}

static inline void f_str(ot_buf *b, int id, const char *s)
{
    s = s ? s : "";
    f_bytes(b, id, s, strlen(s));
}

static inline void f_list(ot_buf *b, int id, int elem, size_t n)
{
    unsigned char *p = jt_room(b, 8);
    if (p)
        jt_list_at(p, id, elem, n);
}

/* Bytes [off, off + 8) of an id as a big-endian signed number; bytes past
 * the end of a malformed id count as zero. */
static int64_t id64(const ProtobufCBinaryData *id, size_t off)
{
    uint64_t v = 0;
    for (size_t i = off; i < off + 8; i++)
        v = (v << 8) | (i < id->len ? id->data[i] : 0);
    return (int64_t)v;
}

static int64_t ts_us(const Jaeger__ApiV2__Timestamp *t)
{
    return t ? t->seconds * 1000000 + t->nanos / 1000 : 0;
}

static int64_t dur_us(const Jaeger__ApiV2__Duration *d)
{
    return d ? d->seconds * 1000000 + d->nanos / 1000 : 0;
}

/* ---- structs ---------------------------------------------------------- */

static void w_tag(ot_buf *b, const ot_jaeger_kv *kv)
{
    f_str(b, 1, kv->key);
    switch (kv->v_type) {
    case JAEGER__API_V2__VALUE_TYPE__BOOL:
        f_i32(b, 2, JTAG_BOOL);
        f_bool(b, 5, kv->v_bool);
        break;
    case JAEGER__API_V2__VALUE_TYPE__INT64:
        f_i32(b, 2, JTAG_LONG);
        f_i64(b, 6, kv->v_int64);
        break;
    case JAEGER__API_V2__VALUE_TYPE__FLOAT64:
        f_i32(b, 2, JTAG_DOUBLE);
        f_double(b, 4, kv->v_float64);
        break;
    case JAEGER__API_V2__VALUE_TYPE__BINARY:
        f_i32(b, 2, JTAG_BINARY);
        f_bytes(b, 7, kv->v_binary.data, kv->v_binary.len);
        break;
    default:
        f_i32(b, 2, JTAG_STRING);
        f_str(b, 3, kv->v_str);
        break;
    }
    w_stop(b);
}

static void w_tags(ot_buf *b, int id, ot_jaeger_kv *const *v, size_t n, int always)
{
    if (!n && !always)
        return;
    f_list(b, id, JT_STRUCT, n);
    for (size_t i = 0; i < n; i++)
        w_tag(b, v[i]);
}

static void w_span(ot_buf *b, const ot_jaeger_span *s)
{
    int64_t parent = 0;
    for (size_t i = 0; i < s->n_references; i++) {
        const Jaeger__ApiV2__SpanRef *r = s->references[i];
        if (r->ref_type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF &&
            r->trace_id.len == s->trace_id.len &&
            (!r->trace_id.len || memcmp(r->trace_id.data, s->trace_id.data, r->trace_id.len) == 0)) {
            parent = id64(&r->span_id, 0);
            break;
        }
    }
    f_i64(b, 1, id64(&s->trace_id, 8));
    f_i64(b, 2, id64(&s->trace_id, 0));
    f_i64(b, 3, id64(&s->span_id, 0));
    f_i64(b, 4, parent);
    f_str(b, 5, s->operation_name);
    if (s->n_references) {
        f_list(b, 6, JT_STRUCT, s->n_references);
        for (size_t i = 0; i < s->n_references; i++) {
            const Jaeger__ApiV2__SpanRef *r = s->references[i];
            f_i32(b, 1, r->ref_type == JAEGER__API_V2__SPAN_REF_TYPE__FOLLOWS_FROM ? 1 : 0);
            f_i64(b, 2, id64(&r->trace_id, 8));
            f_i64(b, 3, id64(&r->trace_id, 0));
            f_i64(b, 4, id64(&r->span_id, 0));
            w_stop(b);
        }
    }
    f_i32(b, 7, (int32_t)s->flags);
    f_i64(b, 8, ts_us(s->start_time));
    f_i64(b, 9, dur_us(s->duration));
    w_tags(b, 10, s->tags, s->n_tags, 0);
    if (s->n_logs) {
        f_list(b, 11, JT_STRUCT, s->n_logs);
        for (size_t i = 0; i < s->n_logs; i++) {
            const Jaeger__ApiV2__Log *l = s->logs[i];
            f_i64(b, 1, ts_us(l->timestamp));
            w_tags(b, 2, l->fields, l->n_fields, 1);
            w_stop(b);
        }
    }
    w_stop(b);
}

int ot_jaeger_thrift_batch(const ot_jaeger_batch *b, ot_buf *out, ot_err *err)
{
    size_t start = out->len;
    const Jaeger__ApiV2__Process *p = b->process;
    w_field(out, JT_STRUCT, 1);
    f_str(out, 1, p ? p->service_name : OT_JAEGER_UNKNOWN_SERVICE);
    if (p)
        w_tags(out, 2, p->tags, p->n_tags, 0);
    w_stop(out);
    f_list(out, 2, JT_STRUCT, b->n_spans);
    for (size_t i = 0; i < b->n_spans; i++)
        w_span(out, b->spans[i]);
    w_stop(out);
    if (out->oom) {
        size_t n = out->len - start;
        out->len = start;
        return ot_err_set(err, "jaeger: out of memory writing a Thrift batch (%zu bytes so far)", n);
    }
    return 0;
}
