/* direct_out.c: the views of direct.c written as Jaeger's bytes, a span
 * at a time: Thrift binary (what thrift.c writes from the structs) or
 * api_v2 protobuf (what apiv2.c writes). Every length is in the views
 * already, so nothing is measured twice; api_v2's enclosing lengths are
 * known once a span is sized, and the one length that is not (the whole
 * Batch's) gets room reserved before the first span and is written
 * right-aligned into it at the end, so no byte is moved. */
#include "direct_int.h"

#include "enc_int.h"

#define VT(x) JAEGER__API_V2__VALUE_TYPE__##x

/* ---- Thrift --------------------------------------------------------------- */

static inline uint64_t be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline size_t t_tag_size(const jd_tag *t)
{
    switch (t->type) {
    case VT(BOOL): return jt_tag_size(t->key.n, 1);
    case VT(INT64):
    case VT(FLOAT64): return jt_tag_size(t->key.n, 8);
    default: return jt_tag_size(t->key.n, 4 + t->s.n);
    }
}

static inline unsigned char *t_tag(unsigned char *p, const jd_tag *t)
{
    p = jt_bytes_at(p, 1, t->key.p, t->key.n);
    switch (t->type) {
    case VT(BOOL):
        p = jt_i32_at(p, 2, JTAG_BOOL);
        p = jt_head(p, JT_BOOL, 5);
        *p++ = t->vbool ? 1 : 0;
        break;
    case VT(INT64):
        p = jt_i32_at(p, 2, JTAG_LONG);
        p = jt_i64_at(p, 6, t->vint);
        break;
    case VT(FLOAT64): {
        uint64_t bits;
        memcpy(&bits, &t->vdbl, sizeof bits);
        p = jt_i32_at(p, 2, JTAG_DOUBLE);
        p = jt_head(p, JT_DOUBLE, 4);
        jt_put64(p, bits);
        p += 8;
        break;
    }
    case VT(BINARY):
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

/* A list of tags as field id, always written or only when not empty (as
 * thrift.c's w_tags). */
static void t_tags(ot_buf *b, int id, const jd_tag *v, size_t n, int always)
{
    if (!n && !always)
        return;
    size_t total = 8;
    for (size_t i = 0; i < n; i++)
        total += t_tag_size(&v[i]);
    unsigned char *p = jt_room(b, total);
    if (!p)
        return;
    p = jt_list_at(p, id, JT_STRUCT, n);
    for (size_t i = 0; i < n; i++)
        p = t_tag(p, &v[i]);
}

void ot_jd_thrift_process(ot_buf *out, const jd_process *pr, size_t n_spans)
{
    unsigned char *p = jt_room(out, 3 + 7 + pr->service.n);
    if (!p)
        return;
    p = jt_head(p, JT_STRUCT, 1);
    jt_bytes_at(p, 1, pr->service.p, pr->service.n);
    t_tags(out, 2, pr->tags, pr->n_tags, 0);
    p = jt_room(out, 1 + 8);
    if (p) {
        *p++ = JT_STOP;
        jt_list_at(p, 2, JT_STRUCT, n_spans);
    }
}

void ot_jd_thrift_end(ot_buf *out)
{
    unsigned char *p = jt_room(out, 1);
    if (p)
        *p = JT_STOP;
}

void ot_jd_thrift_span(ot_buf *out, const jd_view *v)
{
    int64_t parent = 0;
    for (size_t i = 0; i < v->n_refs; i++) {
        const jd_ref *r = &v->refs[i];
        if (r->type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF && memcmp(r->tid, v->tid, 16) == 0) {
            parent = (int64_t)be64(r->sid);
            break;
        }
    }
    unsigned char *p = jt_room(out, 4 * 11 + 7 + v->name.n + 8 + v->n_refs * 41 + 7 + 2 * 11);
    if (!p)
        return;
    p = jt_i64_at(p, 1, (int64_t)be64(v->tid + 8));
    p = jt_i64_at(p, 2, (int64_t)be64(v->tid));
    p = jt_i64_at(p, 3, (int64_t)be64(v->sid));
    p = jt_i64_at(p, 4, parent);
    p = jt_bytes_at(p, 5, v->name.p, v->name.n);
    if (v->n_refs) {
        p = jt_list_at(p, 6, JT_STRUCT, v->n_refs);
        for (size_t i = 0; i < v->n_refs; i++) {
            const jd_ref *r = &v->refs[i];
            p = jt_i32_at(p, 1, r->type == JAEGER__API_V2__SPAN_REF_TYPE__FOLLOWS_FROM ? 1 : 0);
            p = jt_i64_at(p, 2, (int64_t)be64(r->tid + 8));
            p = jt_i64_at(p, 3, (int64_t)be64(r->tid));
            p = jt_i64_at(p, 4, (int64_t)be64(r->sid));
            *p++ = JT_STOP;
        }
    } else
        out->len -= 8; /* no list header */
    p = jt_i32_at(p, 7, (int32_t)v->flags);
    p = jt_i64_at(p, 8, (int64_t)(v->start / 1000));
    jt_i64_at(p, 9, (int64_t)(v->dur / 1000));
    t_tags(out, 10, v->tags, v->n_tags, 0);
    if (v->n_logs) {
        if (!(p = jt_room(out, 8)))
            return;
        jt_list_at(p, 11, JT_STRUCT, v->n_logs);
        for (size_t i = 0; i < v->n_logs; i++) {
            const jd_log *l = &v->logs[i];
            if (!(p = jt_room(out, 11)))
                return;
            jt_i64_at(p, 1, (int64_t)(l->time / 1000));
            t_tags(out, 2, v->ltags + l->tag0, l->n_tags, 1);
            ot_jd_thrift_end(out);
        }
    }
    ot_jd_thrift_end(out);
}

/* ---- api_v2 --------------------------------------------------------------- */

static inline size_t p_tag_size(const jd_tag *t)
{
    size_t n = (t->key.n ? jp_len_field(t->key.n) : 0) + (t->type ? 2 : 0);
    switch (t->type) {
    case VT(BOOL): return n + (t->vbool ? 2 : 0);
    case VT(INT64): return n + jp_i64_field(t->vint);
    case VT(FLOAT64): return n + (t->vdbl != 0 ? 9 : 0);
    default: return n + (t->s.n ? jp_len_field(t->s.n) : 0); /* string or binary */
    }
}

/* Sizes every tag (kept in the tag) and returns the bytes of them all as
 * repeated fields. */
static size_t p_tags_size(jd_tag *v, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].size = p_tag_size(&v[i]);
        total += jp_len_field(v[i].size);
    }
    return total;
}

static uint8_t *p_tags(uint8_t *p, int field, const jd_tag *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const jd_tag *t = &v[i];
        p = jp_len(p, field, t->size);
        p = jp_bytes(p, 1, t->key.p, t->key.n);
        p = jp_int(p, 2, t->type);
        switch (t->type) {
        case VT(BOOL): p = jp_int(p, 4, t->vbool); break;
        case VT(INT64): p = jp_int(p, 5, t->vint); break;
        case VT(FLOAT64):
            if (t->vdbl != 0) {
                p = jp_tag(p, 6, JP_I64);
                memcpy(p, &t->vdbl, 8); /* little-endian, as the wire is */
                p += 8;
            }
            break;
        case VT(BINARY): p = jp_bytes(p, 7, t->s.p, t->s.n); break;
        default: p = jp_bytes(p, 3, t->s.p, t->s.n); break;
        }
    }
    return p;
}

static inline int64_t secs(uint64_t ns) { return (int64_t)(ns / 1000000000u); }
static inline int32_t nanos(uint64_t ns) { return (int32_t)(ns % 1000000000u); }

static inline size_t time_field(uint64_t ns) { return jp_len_field(jp_time_size(secs(ns), nanos(ns))); }

void ot_jd_proto_span(ot_buf *out, jd_view *v)
{
    size_t size = jp_len_field(16) + jp_len_field(8) + (v->name.n ? jp_len_field(v->name.n) : 0);
    for (size_t i = 0; i < v->n_refs; i++)
        size += jp_len_field(jp_len_field(16) + jp_len_field(8) + (v->refs[i].type ? 2 : 0));
    size += (v->flags ? 1 + jp_vlen(v->flags) : 0) + time_field(v->start) + time_field(v->dur);
    size += p_tags_size(v->tags, v->n_tags);
    for (size_t i = 0; i < v->n_logs; i++) {
        jd_log *l = &v->logs[i];
        l->size = time_field(l->time) + p_tags_size(v->ltags + l->tag0, l->n_tags);
        size += jp_len_field(l->size);
    }
    size_t total = jp_len_field(size);
    if (ot_buf_reserve(out, total) < 0)
        return;
    uint8_t *p = (uint8_t *)out->data + out->len;
    p = jp_len(p, 1, size); /* Batch.spans */
    p = jp_bytes(p, 1, v->tid, 16);
    p = jp_bytes(p, 2, v->sid, 8);
    p = jp_bytes(p, 3, v->name.p, v->name.n);
    for (size_t i = 0; i < v->n_refs; i++) {
        const jd_ref *r = &v->refs[i];
        p = jp_len(p, 4, jp_len_field(16) + jp_len_field(8) + (r->type ? 2 : 0));
        p = jp_bytes(p, 1, r->tid, 16);
        p = jp_bytes(p, 2, r->sid, 8);
        p = jp_int(p, 3, r->type);
    }
    p = jp_int(p, 5, v->flags);
    p = jp_time(p, 6, secs(v->start), nanos(v->start));
    p = jp_time(p, 7, secs(v->dur), nanos(v->dur));
    p = p_tags(p, 8, v->tags, v->n_tags);
    for (size_t i = 0; i < v->n_logs; i++) {
        const jd_log *l = &v->logs[i];
        p = jp_len(p, 9, l->size);
        p = jp_time(p, 1, secs(l->time), nanos(l->time));
        p = p_tags(p, 2, v->ltags + l->tag0, l->n_tags);
    }
    out->len += total;
}

size_t ot_jd_proto_end(ot_buf *out, jd_process *pr, size_t head)
{
    size_t psize = (pr->service.n ? jp_len_field(pr->service.n) : 0) +
                   p_tags_size(pr->tags, pr->n_tags);
    size_t total = jp_len_field(psize);
    if (ot_buf_reserve(out, total) < 0)
        return head;
    uint8_t *p = (uint8_t *)out->data + out->len;
    p = jp_len(p, 2, psize); /* Batch.process */
    p = jp_bytes(p, 1, pr->service.p, pr->service.n);
    p_tags(p, 2, pr->tags, pr->n_tags);
    out->len += total;
    /* PostSpansRequest.batch, right-aligned in the room before the spans. */
    size_t batch_len = out->len - head - OT_JD_PROTO_HEAD;
    uint8_t hdr[OT_JD_PROTO_HEAD];
    size_t hl = (size_t)(jp_len(hdr, 1, batch_len) - hdr);
    size_t off = head + OT_JD_PROTO_HEAD - hl;
    memcpy(out->data + off, hdr, hl);
    return off;
}
