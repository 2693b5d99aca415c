/* direct_int.h: what the direct walk (direct.c) hands the writers
 * (direct_out.c): one span, or one process, as small flat views of the
 * request's bytes. They replace the api_v2 structs of the reference path
 * (translate.c): no KeyValue message per tag, no copy of each
 * string into an arena, no strlen in the encoders; the views live in
 * arrays the encoder reuses from span to span and from batch to batch.
 * Internal to the jaeger exporter. */
#ifndef OT_JAEGER_DIRECT_INT_H
#define OT_JAEGER_DIRECT_INT_H

#include "enc_int.h"
#include "jaeger.h"

#define JD_VT(x) JAEGER__API_V2__VALUE_TYPE__##x

/* A byte range; for strings already cut at the first NUL, as the
 * reference path's C strings are. */
typedef struct jd_str {
    const uint8_t *p;
    size_t n;
} jd_str;

/* One tag: type is api_v2's ValueType. s is the string or the binary. */
typedef struct jd_tag {
    jd_str key;
    jd_str s;
    int type;
    int vbool;
    int64_t vint;
    double vdbl;
    size_t size; /* its api_v2 KeyValue message, set by the proto writer */
} jd_tag;

typedef struct jd_ref {
    uint8_t tid[16], sid[8];
    int type; /* api_v2 SpanRefType */
} jd_ref;

typedef struct jd_log {
    uint64_t time;
    size_t tag0, n_tags; /* in jd_view.ltags */
    size_t size;         /* its api_v2 Log message */
} jd_log;

/* The span being written. Its tags are written as they are read, in the
 * encoding being made (Thrift Tag structs or api_v2 Span.tags fields), so
 * the writer copies them in one piece rather than measuring and writing
 * each again: tags are most of a span. */
typedef struct jd_view {
    uint8_t tid[16], sid[8];
    jd_str name;
    uint32_t flags;
    uint64_t start, dur;
    ot_buf tagb;   /* the span's tags, then its fixed ones, encoded */
    size_t n_tags; /* in tagb */
    jd_tag *ltags; /* every log's, each log a range */
    jd_ref *refs;
    jd_log *logs;
    size_t n_ltags, n_refs, n_logs;
    size_t cap_ltags, cap_refs, cap_logs;
} jd_view;

typedef struct jd_process {
    jd_str service;
    jd_tag *tags;
    size_t n_tags, cap_tags;
} jd_process;

/* ---- one tag ---------------------------------------------------------- */

/* Thrift: bytes of a jaeger.Tag struct, and the struct written at p. */
static inline size_t jd_thrift_tag_size(const jd_tag *t)
{
    switch (t->type) {
    case JD_VT(BOOL): return jt_tag_size(t->key.n, 1);
    case JD_VT(INT64):
    case JD_VT(FLOAT64): return jt_tag_size(t->key.n, 8);
    default: return jt_tag_size(t->key.n, 4 + t->s.n);
    }
}

static inline unsigned char *jd_thrift_tag_at(unsigned char *p, const jd_tag *t)
{
    p = jt_bytes_at(p, 1, t->key.p, t->key.n);
    switch (t->type) {
    case JD_VT(BOOL):
        p = jt_i32_at(p, 2, JTAG_BOOL);
        p = jt_head(p, JT_BOOL, 5);
        *p++ = t->vbool ? 1 : 0;
        break;
    case JD_VT(INT64):
        p = jt_i32_at(p, 2, JTAG_LONG);
        p = jt_i64_at(p, 6, t->vint);
        break;
    case JD_VT(FLOAT64): {
        uint64_t bits;
        memcpy(&bits, &t->vdbl, sizeof bits);
        p = jt_i32_at(p, 2, JTAG_DOUBLE);
        p = jt_head(p, JT_DOUBLE, 4);
        jt_put64(p, bits);
        p += 8;
        break;
    }
    case JD_VT(BINARY):
        p = jt_i32_at(p, 2, JTAG_BINARY);
        p = jt_bytes_at(p, 7, t->s.p, t->s.n);
        break;
    default:
        p = jt_i32_at(p, 2, JTAG_STRING);
        p = jt_bytes_at(p, 3, t->s.p, t->s.n);
        break;
    }
    *p++ = JT_STOP;
    return p;
}

/* api_v2: bytes of a KeyValue message (proto3: zero values left out), and
 * the message written at p as field `field` of size bytes. */
static inline size_t jd_proto_tag_size(const jd_tag *t)
{
    size_t n = (t->key.n ? jp_len_field(t->key.n) : 0) + (t->type ? 2 : 0);
    switch (t->type) {
    case JD_VT(BOOL): return n + (t->vbool ? 2 : 0);
    case JD_VT(INT64): return n + jp_i64_field(t->vint);
    case JD_VT(FLOAT64): return n + (t->vdbl != 0 ? 9 : 0);
    default: return n + (t->s.n ? jp_len_field(t->s.n) : 0); /* string or binary */
    }
}

static inline uint8_t *jd_proto_tag_at(uint8_t *p, int field, const jd_tag *t, size_t size)
{
    p = jp_len(p, field, size);
    p = jp_bytes(p, 1, t->key.p, t->key.n);
    p = jp_int(p, 2, t->type);
    switch (t->type) {
    case JD_VT(BOOL): p = jp_int(p, 4, t->vbool); break;
    case JD_VT(INT64): p = jp_int(p, 5, t->vint); break;
    case JD_VT(FLOAT64):
        if (t->vdbl != 0) {
            p = jp_tag(p, 6, JP_I64);
            memcpy(p, &t->vdbl, 8); /* little-endian, as the wire is */
            p += 8;
        }
        break;
    case JD_VT(BINARY): p = jp_bytes(p, 7, t->s.p, t->s.n); break;
    default: p = jp_bytes(p, 3, t->s.p, t->s.n); break;
    }
    return p;
}

/* api_v2's Span.tags field. */
#define JD_PROTO_SPAN_TAGS 8

/* Appends t to a span's encoded tags (jd_view.tagb). */
static inline void jd_put_tag(ot_buf *b, int thrift, const jd_tag *t)
{
    if (thrift) {
        unsigned char *p = jt_room(b, jd_thrift_tag_size(t));
        if (p)
            jd_thrift_tag_at(p, t);
        return;
    }
    size_t size = jd_proto_tag_size(t);
    uint8_t *p = jt_room(b, jp_len_field(size));
    if (p)
        jd_proto_tag_at(p, JD_PROTO_SPAN_TAGS, t, size);
}

/* The writers. Each appends to out and leaves failures to out->oom. */
/* Ends with the span list's header: its 4-byte count last. */
void ot_jd_thrift_process(ot_buf *out, const jd_process *p, size_t n_spans);
void ot_jd_thrift_span(ot_buf *out, const jd_view *v);
void ot_jd_thrift_end(ot_buf *out);
/* The api_v2 writer: spans first, then the process, then the header in
 * the room left before the first span (OT_JD_PROTO_HEAD bytes). */
#define OT_JD_PROTO_HEAD 12
void ot_jd_proto_span(ot_buf *out, jd_view *v);
/* Writes the process, then the PostSpansRequest and Batch headers for the
 * bytes from head (where the reserved room starts); returns the offset
 * the request starts at. */
size_t ot_jd_proto_end(ot_buf *out, jd_process *p, size_t head);

#endif
