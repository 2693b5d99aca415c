/* direct_int.h: what the direct walk (direct.c) hands the writers
 * (direct_out.c): one span, or one process, as small flat views of the
 * request's bytes. They replace the api_v2 structs of the reference path
 * (translate.c): no KeyValue message per tag, no copy of each
 * string into an arena, no strlen in the encoders; the views live in
 * arrays the encoder reuses from span to span and from batch to batch.
 * Internal to the jaeger exporter. */
#ifndef OT_JAEGER_DIRECT_INT_H
#define OT_JAEGER_DIRECT_INT_H

#include "jaeger.h"

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

/* The span being written, or (tags only) the process. */
typedef struct jd_view {
    uint8_t tid[16], sid[8];
    jd_str name;
    uint32_t flags;
    uint64_t start, dur;
    jd_tag *tags;  /* the span's, then its fixed ones */
    jd_tag *ltags; /* every log's, each log a range */
    jd_ref *refs;
    jd_log *logs;
    size_t n_tags, n_ltags, n_refs, n_logs;
    size_t cap_tags, cap_ltags, cap_refs, cap_logs;
} jd_view;

typedef struct jd_process {
    jd_str service;
    jd_tag *tags;
    size_t n_tags, cap_tags;
} jd_process;

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
