/* split.c: one OTLP request becomes one request per distinct resource,
 * on the protobuf bytes, before the jaeger exporter queues anything.
 *
 * Why: Jaeger takes one process (resource) per call, so a request with N
 * resources is N calls; were they one queued batch, a retry after call k
 * failed would send calls 1..k-1 again. Split first, each queued batch is
 * one call and is retried alone. Why group: the batch processor merges
 * requests by concatenating their bytes, so a batch of 8192 spans from
 * clients with five services holds hundreds of copies of the same five
 * resources; one call per copy would make hundreds of small calls where
 * five do. Resources with the same bytes (resource and schema_url) are the
 * same process, so their spans can share one Jaeger Batch.
 *
 * The rewrite is byte-level: an entry's non-scope_spans fields are its key,
 * and a group is written as the first entry's key fields followed by every
 * member's scope_spans fields, in the order they came, straight into the
 * memory the caller gives it (the queued batch's own arena: one copy of
 * the spans, not two). Nothing decodes. A request with one resource entry
 * is emitted as it is. */
#include "jaeger.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "model/pbedit.h"

#define RS_SCOPE_SPANS 2 /* ResourceSpans.scope_spans */

typedef struct rs_entry {
    size_t start, end; /* the ResourceSpans message, without its tag and length */
    uint64_t hash;     /* of the key fields */
    size_t spans;      /* in its scope_spans */
    size_t group;      /* index of the group's first entry */
} rs_entry;

/* One field at *p with the agent's shared reader: its number and where
 * its payload starts; *p moves past it. -1 when malformed. */
static inline int next_field(const uint8_t **p, const uint8_t *end, uint64_t *num,
                             const uint8_t **payload)
{
    ot_pbfield f;
    if (ot_pb_next(p, end, &f) <= 0)
        return -1;
    *num = f.num;
    *payload = f.val;
    return 0;
}

/* The next key field (any but scope_spans) of an entry from *p: [*fs, *fe).
 * 0 at the end, 1 with a field, -1 when malformed. */
static int next_key_field(const uint8_t **p, const uint8_t *end, const uint8_t **fs,
                          const uint8_t **fe)
{
    while (*p < end) {
        const uint8_t *start = *p, *payload;
        uint64_t num;
        if (next_field(p, end, &num, &payload) < 0)
            return -1;
        if (num != RS_SCOPE_SPANS) {
            *fs = start;
            *fe = *p;
            return 1;
        }
    }
    return 0;
}

/* The entry's key hash and span count (ScopeSpans.spans entries, field 2:
 * counted without entering the spans, so the queued batch need not be
 * decoded to know its size). */
static int key_of(const uint8_t *w, rs_entry *e)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *p = w + e->start, *end = w + e->end;
    e->spans = 0;
    while (p < end) {
        const uint8_t *start = p, *payload;
        uint64_t num;
        if (next_field(&p, end, &num, &payload) < 0)
            return -1;
        if (num != RS_SCOPE_SPANS) {
            for (const uint8_t *c = start; c < p; c++)
                h = (h ^ *c) * 0x100000001b3ull;
            continue;
        }
        for (const uint8_t *q = payload; q < p;) {
            const uint8_t *inner;
            uint64_t n2;
            if (next_field(&q, p, &n2, &inner) < 0)
                return -1;
            e->spans += n2 == 2;
        }
    }
    e->hash = h;
    return 0;
}

static bool same_key(const uint8_t *w, const rs_entry *a, const rs_entry *b)
{
    if (a->hash != b->hash)
        return false;
    const uint8_t *pa = w + a->start, *ea = w + a->end, *pb = w + b->start, *eb = w + b->end;
    for (;;) {
        const uint8_t *as = NULL, *ae = NULL, *bs = NULL, *be = NULL;
        int ra = next_key_field(&pa, ea, &as, &ae), rb = next_key_field(&pb, eb, &bs, &be);
        if (ra != rb)
            return false;
        if (ra != 1)
            return true;
        if (ae - as != be - bs || memcmp(as, bs, (size_t)(ae - as)))
            return false;
    }
}

/* Writes the fields of entry e that are (want_key) or are not its key at
 * out; returns the byte after them. */
static uint8_t *put_fields(uint8_t *out, const uint8_t *w, const rs_entry *e, bool want_key)
{
    const uint8_t *p = w + e->start, *end = w + e->end;
    while (p < end) {
        const uint8_t *start = p, *payload;
        uint64_t num;
        if (next_field(&p, end, &num, &payload) < 0)
            break; /* checked by key_of already */
        if ((num != RS_SCOPE_SPANS) == want_key) {
            memcpy(out, start, (size_t)(p - start));
            out += p - start;
        }
    }
    return out;
}

static size_t fields_len(const uint8_t *w, const rs_entry *e, bool want_key)
{
    size_t n = 0;
    const uint8_t *p = w + e->start, *end = w + e->end;
    while (p < end) {
        const uint8_t *start = p, *payload;
        uint64_t num;
        if (next_field(&p, end, &num, &payload) < 0)
            break;
        if ((num != RS_SCOPE_SPANS) == want_key)
            n += (size_t)(p - start);
    }
    return n;
}

int ot_jaeger_split_to(const uint8_t *wire, size_t len, ot_jaeger_dst_fn dst, ot_jaeger_emit_fn emit,
                       void *ctx, ot_err *err)
{
    const uint8_t *p = wire, *end = wire + len;
    size_t n = 0, cap = 0;
    rs_entry *es = NULL;
    int rc = 0;
    while (p < end) {
        const uint8_t *payload;
        uint64_t num;
        if (next_field(&p, end, &num, &payload) < 0)
            goto malformed;
        if (num != 1) /* ExportTraceServiceRequest has no other field today */
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            rs_entry *ne = realloc(es, nc * sizeof *ne);
            if (!ne)
                goto oom;
            es = ne, cap = nc;
        }
        rs_entry *e = &es[n];
        e->start = (size_t)(payload - wire);
        e->end = (size_t)(p - wire);
        if (key_of(wire, e) < 0)
            goto malformed;
        e->group = n;
        for (size_t i = 0; i < n; i++)
            if (es[i].group == i && same_key(wire, &es[i], e)) {
                e->group = i;
                break;
            }
        n++;
    }
    if (n == 1) { /* already one resource: nothing to rewrite */
        rc = emit(ctx, wire, len, es[0].spans);
        free(es);
        return rc;
    }
    for (size_t g = 0; g < n && rc == 0; g++) {
        if (es[g].group != g)
            continue;
        size_t body = fields_len(wire, &es[g], true), spans = 0;
        for (size_t i = g; i < n; i++)
            if (es[i].group == g) {
                body += fields_len(wire, &es[i], false);
                spans += es[i].spans;
            }
        size_t total = 1 + ot_pb_varint_size(body) + body;
        uint8_t *out = dst(ctx, total), *q = out;
        if (!out)
            goto oom;
        q += ot_pb_put_ld_head(q, 1, body);
        q = put_fields(q, wire, &es[g], true);
        for (size_t i = g; i < n; i++)
            if (es[i].group == g)
                q = put_fields(q, wire, &es[i], false);
        rc = emit(ctx, out, total, spans);
    }
    free(es);
    return rc;
malformed:
    free(es);
    return ot_err_set(err, "the request's bytes do not parse as protobuf");
oom:
    free(es);
    return ot_err_set(err, "out of memory");
}

/* ot_jaeger_split's destination: the caller's scratch buffer. */
typedef struct scratch_ctx {
    ot_buf *scratch;
    ot_jaeger_emit_fn emit;
    void *ctx;
} scratch_ctx;

static uint8_t *scratch_dst(void *vctx, size_t n)
{
    scratch_ctx *s = vctx;
    ot_buf_reset(s->scratch);
    return ot_buf_reserve(s->scratch, n) < 0 ? NULL : (uint8_t *)s->scratch->data;
}

static int scratch_emit(void *vctx, const uint8_t *req, size_t len, size_t spans)
{
    scratch_ctx *s = vctx;
    return s->emit(s->ctx, req, len, spans);
}

int ot_jaeger_split(const uint8_t *wire, size_t len, ot_buf *scratch, ot_jaeger_emit_fn emit,
                    void *ctx, ot_err *err)
{
    scratch_ctx s = {scratch, emit, ctx};
    return ot_jaeger_split_to(wire, len, scratch_dst, scratch_emit, &s, err);
}
