/* apiv2.c: the protobuf bytes of a PostSpansRequest, written by hand from
 * the api_v2 structs translate.c builds. protobuf-c's generic packer walks
 * every field of every descriptor and sizes each submessage again at each
 * level it packs; on real spans that costs about six times the Thrift
 * writer. This file writes the same bytes (proto3: zero values left out,
 * fields in number order; a unit test and the fuzz target compare it with
 * protobuf-c byte for byte) with one sizing pass and one writing pass. */
#include "jaeger.h"

#include <stdlib.h>
#include <string.h>

#include "enc_int.h"

typedef Jaeger__ApiV2__SpanRef jg_ref;
typedef Jaeger__ApiV2__Log jg_log;
typedef Jaeger__ApiV2__Process jg_process;

static size_t str_field(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n ? jp_len_field(n) : 0;
}

/* ---- sizes ------------------------------------------------------------
 * The sizing pass measures every string once and keeps the lengths, with
 * each tag's and each log's and process's size, in two queues the writing
 * pass then reads in the same order: strlen on every key and value, done
 * again for each enclosing length prefix, was a tenth of the agent's CPU.
 * kvq holds three numbers per tag (key length, string length, size); mq
 * one per log or process (its size). */

typedef struct lenq {
    size_t *v;
    size_t n, cap, rd;
} lenq;

typedef struct sizer {
    lenq kvq, mq;
    int oom;
} sizer;

static void q_push(sizer *z, lenq *q, size_t x)
{
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 256;
        size_t *nv = realloc(q->v, nc * sizeof *nv);
        if (!nv) {
            z->oom = 1;
            return;
        }
        q->v = nv, q->cap = nc;
    }
    q->v[q->n++] = x;
}

/* The writing pass only runs when sizing did not run out of memory, so
 * every pop has its push. */
static size_t q_pop(lenq *q) { return q->v[q->rd++]; }

static size_t kv_size_of(const ot_jaeger_kv *kv, size_t klen, size_t slen)
{
    return (klen ? jp_len_field(klen) : 0) +
           (kv->v_type ? 1 + jp_vlen((uint64_t)(int64_t)kv->v_type) : 0) +
           (slen ? jp_len_field(slen) : 0) + (kv->v_bool ? 2 : 0) + jp_i64_field(kv->v_int64) +
           (kv->v_float64 != 0 ? 9 : 0) + (kv->v_binary.len ? jp_len_field(kv->v_binary.len) : 0);
}

static size_t kvs_size(sizer *z, ot_jaeger_kv *const *v, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        const ot_jaeger_kv *kv = v[i];
        size_t klen = kv->key ? strlen(kv->key) : 0;
        size_t slen = kv->v_str ? strlen(kv->v_str) : 0;
        size_t sz = kv_size_of(kv, klen, slen);
        q_push(z, &z->kvq, klen);
        q_push(z, &z->kvq, slen);
        q_push(z, &z->kvq, sz);
        t += jp_len_field(sz);
    }
    return t;
}

static size_t ref_size(const jg_ref *r)
{
    return (r->trace_id.len ? jp_len_field(r->trace_id.len) : 0) +
           (r->span_id.len ? jp_len_field(r->span_id.len) : 0) +
           (r->ref_type ? 1 + jp_vlen((uint64_t)(int64_t)r->ref_type) : 0);
}

static size_t log_size(sizer *z, const jg_log *l)
{
    size_t t = (l->timestamp ? jp_len_field(jp_time_size(l->timestamp->seconds, l->timestamp->nanos))
                             : 0) +
               kvs_size(z, l->fields, l->n_fields);
    q_push(z, &z->mq, t);
    return t;
}

static size_t process_size(sizer *z, const jg_process *p)
{
    size_t t = str_field(p->service_name) + kvs_size(z, p->tags, p->n_tags);
    q_push(z, &z->mq, t);
    return t;
}

static size_t span_size(sizer *z, const ot_jaeger_span *s)
{
    size_t t = (s->trace_id.len ? jp_len_field(s->trace_id.len) : 0) +
               (s->span_id.len ? jp_len_field(s->span_id.len) : 0) + str_field(s->operation_name);
    for (size_t i = 0; i < s->n_references; i++)
        t += jp_len_field(ref_size(s->references[i]));
    t += s->flags ? 1 + jp_vlen(s->flags) : 0;
    if (s->start_time)
        t += jp_len_field(jp_time_size(s->start_time->seconds, s->start_time->nanos));
    if (s->duration)
        t += jp_len_field(jp_time_size(s->duration->seconds, s->duration->nanos));
    t += kvs_size(z, s->tags, s->n_tags);
    for (size_t i = 0; i < s->n_logs; i++)
        t += jp_len_field(log_size(z, s->logs[i]));
    if (s->process)
        t += jp_len_field(process_size(z, s->process));
    t += str_field(s->process_id);
    for (size_t i = 0; i < s->n_warnings; i++)
        t += jp_len_field(s->warnings[i] ? strlen(s->warnings[i]) : 0);
    return t;
}

/* ---- writing (into room already reserved) ------------------------------- */


static uint8_t *w_str(uint8_t *p, int field, const char *s)
{
    return jp_bytes(p, field, s, s ? strlen(s) : 0);
}

static uint8_t *w_kvs(sizer *z, uint8_t *p, int field, ot_jaeger_kv *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const ot_jaeger_kv *kv = v[i];
        size_t klen = q_pop(&z->kvq), slen = q_pop(&z->kvq);
        p = jp_len(p, field, q_pop(&z->kvq));
        p = jp_bytes(p, 1, kv->key, klen);
        p = jp_int(p, 2, kv->v_type);
        p = jp_bytes(p, 3, kv->v_str, slen);
        p = jp_int(p, 4, kv->v_bool ? 1 : 0);
        p = jp_int(p, 5, kv->v_int64);
        if (kv->v_float64 != 0) {
            p = jp_tag(p, 6, JP_I64);
            memcpy(p, &kv->v_float64, 8); /* little-endian, as the wire is */
            p += 8;
        }
        p = jp_bytes(p, 7, kv->v_binary.data, kv->v_binary.len);
    }
    return p;
}

static uint8_t *w_process(sizer *z, uint8_t *p, int field, const jg_process *pr)
{
    p = jp_len(p, field, q_pop(&z->mq));
    p = w_str(p, 1, pr->service_name);
    return w_kvs(z, p, 2, pr->tags, pr->n_tags);
}

static uint8_t *w_span(sizer *z, uint8_t *p, const ot_jaeger_span *s)
{
    p = jp_bytes(p, 1, s->trace_id.data, s->trace_id.len);
    p = jp_bytes(p, 2, s->span_id.data, s->span_id.len);
    p = w_str(p, 3, s->operation_name);
    for (size_t i = 0; i < s->n_references; i++) {
        const jg_ref *r = s->references[i];
        p = jp_len(p, 4, ref_size(r));
        p = jp_bytes(p, 1, r->trace_id.data, r->trace_id.len);
        p = jp_bytes(p, 2, r->span_id.data, r->span_id.len);
        p = jp_int(p, 3, r->ref_type);
    }
    p = jp_int(p, 5, s->flags);
    if (s->start_time)
        p = jp_time(p, 6, s->start_time->seconds, s->start_time->nanos);
    if (s->duration)
        p = jp_time(p, 7, s->duration->seconds, s->duration->nanos);
    p = w_kvs(z, p, 8, s->tags, s->n_tags);
    for (size_t i = 0; i < s->n_logs; i++) {
        const jg_log *l = s->logs[i];
        p = jp_len(p, 9, q_pop(&z->mq));
        if (l->timestamp)
            p = jp_time(p, 1, l->timestamp->seconds, l->timestamp->nanos);
        p = w_kvs(z, p, 2, l->fields, l->n_fields);
    }
    if (s->process)
        p = w_process(z, p, 10, s->process);
    p = w_str(p, 11, s->process_id);
    for (size_t i = 0; i < s->n_warnings; i++) {
        size_t n = s->warnings[i] ? strlen(s->warnings[i]) : 0;
        p = jp_len(p, 12, n); /* repeated: an empty string is still an element */
        if (n)
            memcpy(p, s->warnings[i], n);
        p += n;
    }
    return p;
}

int ot_jaeger_proto_pack(const ot_jaeger_batch *b, ot_buf *out, ot_err *err)
{
    /* Each span's size is needed twice (the batch's length, then its own
     * prefix); keeping them avoids sizing every span again. The queues are
     * per call: a sender packs one batch at a time, and a few kilobytes of
     * malloc per call is nothing beside the spans. */
    size_t stack[64];
    size_t *sz = b->n_spans <= 64 ? stack : malloc(b->n_spans * sizeof *sz);
    sizer z = {{0}, {0}, 0};
    size_t batch_len = 0, total = 0;
    if (!sz)
        goto oom;
    for (size_t i = 0; i < b->n_spans; i++) {
        sz[i] = span_size(&z, b->spans[i]);
        batch_len += jp_len_field(sz[i]);
    }
    if (b->process)
        batch_len += jp_len_field(process_size(&z, b->process));
    total = jp_len_field(batch_len);
    if (z.oom || ot_buf_reserve(out, total) < 0)
        goto oom;
    uint8_t *p = (uint8_t *)out->data + out->len;
    p = jp_len(p, 1, batch_len); /* PostSpansRequest.batch */
    for (size_t i = 0; i < b->n_spans; i++)
        p = w_span(&z, jp_len(p, 1, sz[i]), b->spans[i]);
    if (b->process)
        p = w_process(&z, p, 2, b->process);
    out->len += total;
    if (sz != stack)
        free(sz);
    free(z.kvq.v);
    free(z.mq.v);
    return 0;
oom:
    if (sz && sz != stack)
        free(sz);
    free(z.kvq.v);
    free(z.mq.v);
    return ot_err_set(err, "jaeger: out of memory for a %zu-byte request", total);
}
