/* direct_out.c: the views of direct.c written as Jaeger's bytes, a span
 * at a time: Thrift binary (what thrift.c writes from the structs) or
 * api_v2 protobuf (what apiv2.c writes). A span's tags come already
 * written (jd_view.tagb) and are copied whole; every other length is in
 * the views, so nothing is measured twice; api_v2's enclosing lengths are
 * known once a span is sized, and the one length that is not (the whole
 * Batch's) gets room reserved before the first span and is written
 * right-aligned into it at the end, so no byte is moved. */
#include "direct_int.h"

/* ---- Thrift --------------------------------------------------------------- */

static inline uint64_t be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

/* A list of tags as field id, always written or only when not empty (as
 * thrift.c's w_tags). */
static void t_tags(ot_buf *b, int id, const jd_tag *v, size_t n, int always)
{
    if (!n && !always)
        return;
    size_t total = 8;
    for (size_t i = 0; i < n; i++)
        total += jd_thrift_tag_size(&v[i]);
    unsigned char *p = jt_room(b, total);
    if (!p)
        return;
    p = jt_list_at(p, id, JT_STRUCT, n);
    for (size_t i = 0; i < n; i++)
        p = jd_thrift_tag_at(p, &v[i]);
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
    if (v->n_tags) {
        if (!(p = jt_room(out, 8 + v->tagb.len)))
            return;
        p = jt_list_at(p, 10, JT_STRUCT, v->n_tags);
        memcpy(p, v->tagb.data, v->tagb.len);
    }
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

/* Sizes every tag (kept in the tag) and returns the bytes of them all as
 * repeated fields. */
static size_t p_tags_size(jd_tag *v, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].size = jd_proto_tag_size(&v[i]);
        total += jp_len_field(v[i].size);
    }
    return total;
}

static uint8_t *p_tags(uint8_t *p, int field, const jd_tag *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p = jd_proto_tag_at(p, field, &v[i], v[i].size);
    return p;
}

static inline int64_t secs(uint64_t ns) { return (int64_t)(ns / 1000000000u); }
static inline int32_t nanos(uint64_t ns) { return (int32_t)(ns % 1000000000u); }

/* A Timestamp or Duration message written once into m (its seconds and
 * nanos varints, at most 17 bytes): its size and its bytes come from the
 * same pass, where measuring and then writing took every varint twice. */
typedef struct jd_time {
    uint8_t b[24];
    size_t n;
} jd_time;

static inline void time_msg(jd_time *m, uint64_t ns)
{
    m->n = (size_t)(jp_int(jp_int(m->b, 1, secs(ns)), 2, nanos(ns)) - m->b);
}

static inline uint8_t *time_at(uint8_t *p, int field, const jd_time *m)
{
    *p++ = (uint8_t)(field << 3 | JP_LEN);
    *p++ = (uint8_t)m->n; /* below 128 */
    jt_copy(p, m->b, m->n);
    return p + m->n;
}

void ot_jd_proto_span(ot_buf *out, jd_view *v)
{
    size_t size = jp_len_field(16) + jp_len_field(8) + (v->name.n ? jp_len_field(v->name.n) : 0);
    for (size_t i = 0; i < v->n_refs; i++)
        size += jp_len_field(jp_len_field(16) + jp_len_field(8) + (v->refs[i].type ? 2 : 0));
    jd_time start, dur;
    time_msg(&start, v->start);
    time_msg(&dur, v->dur);
    size += (v->flags ? 1 + jp_vlen(v->flags) : 0) + 2 + start.n + 2 + dur.n;
    size += v->tagb.len;
    for (size_t i = 0; i < v->n_logs; i++) {
        jd_log *l = &v->logs[i];
        jd_time t;
        time_msg(&t, l->time);
        l->size = 2 + t.n + p_tags_size(v->ltags + l->tag0, l->n_tags);
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
    p = time_at(p, 6, &start);
    p = time_at(p, 7, &dur);
    if (v->tagb.len) {
        memcpy(p, v->tagb.data, v->tagb.len);
        p += v->tagb.len;
    }
    for (size_t i = 0; i < v->n_logs; i++) {
        const jd_log *l = &v->logs[i];
        p = jp_len(p, 9, l->size);
        jd_time t;
        time_msg(&t, l->time); /* small: again rather than kept per log */
        p = time_at(p, 1, &t);
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
