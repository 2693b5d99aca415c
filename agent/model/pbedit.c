/* pbedit.c: field reader and edit list over protobuf bytes (see pbedit.h).
 *
 * The edits are kept as a list of (offset, bytes cut, bytes inserted) in
 * the order of the walk, which is the order of the buffer: a length prefix
 * gets its slot in the list when the first edit inside its field is made,
 * and that slot is filled in when the walk leaves the field, so the list
 * never needs sorting and the result is written front to back once. */
#include "model/pbedit.h"
#include "base/varint.h"

#include <stdlib.h>
#include <string.h>

static inline size_t rd_varint(const uint8_t *p, const uint8_t *end, size_t maxlen, uint64_t *v)
{
    if (p < end && !(*p & 0x80)) {
        *v = *p;
        return 1;
    }
    size_t avail = (size_t)(end - p);
    if (avail > maxlen)
        avail = maxlen;
    uint64_t r = 0;
    for (size_t i = 0; i < avail; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

int ot_pb_next_slow(const uint8_t **pp, const uint8_t *end, ot_pbfield *f)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return 0;
    uint64_t tag;
    size_t u = rd_varint(p, end, 5, &tag);
    if (!u || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return -1;
    f->at = p;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (unsigned)(tag & 7);
    p += u;
    f->lenp = NULL;
    f->len = 0;
    switch (f->wt) {
    case 0:
        f->val = p;
        if (!(u = rd_varint(p, end, 10, &f->v)))
            return -1;
        p += u;
        break;
    case 1:
        if (end - p < 8)
            return -1;
        f->val = p;
        memcpy(&f->v, p, 8); /* little-endian hosts only, as the rest of the agent */
        p += 8;
        break;
    case 5: {
        if (end - p < 4)
            return -1;
        uint32_t x;
        memcpy(&x, p, 4);
        f->val = p;
        f->v = x;
        p += 4;
        break;
    }
    case 2: {
        uint64_t l;
        f->lenp = p;
        if (!(u = rd_varint(p, end, 5, &l)) || l > (uint64_t)(end - p - (ptrdiff_t)u))
            return -1;
        p += u;
        f->val = p;
        f->len = (size_t)l;
        p += l;
        break;
    }
    default:
        return -1;
    }
    f->end = p;
    *pp = p;
    return 1;
}

size_t ot_pb_varint_size(uint64_t v) { return ot_varint_size(v); }

size_t ot_pb_put_varint(uint8_t *out, uint64_t v) { return ot_varint_put(out, v); }

size_t ot_pb_put_ld_head(uint8_t *out, uint32_t num, size_t len)
{
    size_t n = ot_pb_put_varint(out, ((uint64_t)num << 3) | 2);
    return n + ot_pb_put_varint(out + n, len);
}

/* ---- the edit list -------------------------------------------------------- */

void ot_pbedit_init(ot_pbedit *e, const uint8_t *base, size_t len, ot_arena *arena)
{
    e->base = base;
    e->len = len;
    e->arena = arena;
    e->ops = e->inline_ops;
    e->n_ops = 0;
    e->cap_ops = OT_PBEDIT_INLINE;
    e->depth = 0;
    e->recorded = 0;
    e->delta = 0;
    e->failed = false;
}

void ot_pbedit_free(ot_pbedit *e)
{
    if (e->ops != e->inline_ops)
        free(e->ops);
    e->ops = e->inline_ops;
    e->n_ops = 0;
}

static bool grow_ops(ot_pbedit *e)
{
    size_t cap = e->cap_ops * 2;
    ot_pbedit_op *n = malloc(cap * sizeof *n);
    if (!n) {
        e->failed = true;
        return false;
    }
    memcpy(n, e->ops, e->n_ops * sizeof *n);
    if (e->ops != e->inline_ops)
        free(e->ops);
    e->ops = n;
    e->cap_ops = cap;
    return true;
}

static inline ot_pbedit_op *push_op(ot_pbedit *e)
{
    if (e->n_ops == e->cap_ops && !grow_ops(e))
        return NULL;
    return &e->ops[e->n_ops++];
}

void ot_pbedit_enter(ot_pbedit *e, const ot_pbfield *f)
{
    if (e->depth == OT_PBEDIT_DEPTH) {
        e->failed = true;
        e->depth++; /* leave still pairs with this */
        return;
    }
    if (e->depth > OT_PBEDIT_DEPTH) {
        e->depth++;
        return;
    }
    if (e->recorded > e->depth)
        e->recorded = e->depth;
    ot_pbedit_frame *fr = &e->fr[e->depth++];
    fr->at = f->at;
    fr->lenp = f->lenp;
    fr->content = f->val;
    fr->end = f->end;
    fr->delta = 0;
    fr->recorded = false;
}

/* Gives every entered field that has none yet its length-prefix slot,
 * outermost first (so the list stays in buffer order). */
static void record_frames(ot_pbedit *e, int upto)
{
    for (int i = e->recorded; i < upto; i++) {
        ot_pbedit_frame *fr = &e->fr[i];
        ot_pbedit_op *op = push_op(e);
        if (!op)
            return;
        op->off = (size_t)(fr->lenp - e->base);
        op->cut = 0;
        op->ins = NULL;
        op->ins_len = 0;
        fr->slot = e->n_ops - 1;
        fr->recorded = true;
    }
    if (upto > e->recorded)
        e->recorded = upto;
}

static ssize_t *delta_of(ot_pbedit *e, int depth)
{
    return depth > 0 ? &e->fr[depth - 1].delta : &e->delta;
}

void ot_pbedit_replace(ot_pbedit *e, const uint8_t *at, size_t cut, const uint8_t *ins, size_t n)
{
    if (e->failed || e->depth > OT_PBEDIT_DEPTH)
        return;
    size_t off = (size_t)(at - e->base);
    if (e->n_ops) {
        const ot_pbedit_op *last = &e->ops[e->n_ops - 1];
        if (off < last->off + last->cut) {
            e->failed = true; /* out of order: the caller's walk is wrong */
            return;
        }
    }
    if (e->recorded < e->depth)
        record_frames(e, e->depth);
    ot_pbedit_op *op = push_op(e);
    if (!op)
        return;
    op->off = off;
    op->cut = cut;
    op->ins = ins;
    op->ins_len = (uint32_t)n;
    *delta_of(e, e->depth) += (ssize_t)n - (ssize_t)cut;
}

void ot_pbedit_leave(ot_pbedit *e, bool drop)
{
    if (e->depth <= 0)
        return;
    if (e->depth > OT_PBEDIT_DEPTH) {
        e->depth--;
        return;
    }
    ot_pbedit_frame *fr = &e->fr[e->depth - 1];
    if (e->failed) {
        e->depth--;
        return;
    }
    if (drop) {
        size_t whole = (size_t)(fr->end - fr->at);
        if (fr->recorded) {
            /* What was edited inside goes with it. */
            e->n_ops = fr->slot + 1;
            ot_pbedit_op *op = &e->ops[fr->slot];
            op->off = (size_t)(fr->at - e->base);
            op->cut = whole;
            op->ins = NULL;
            op->ins_len = 0;
        } else {
            e->depth--;
            ot_pbedit_replace(e, fr->at, whole, NULL, 0);
            return;
        }
        e->depth--;
        *delta_of(e, e->depth) -= (ssize_t)whole;
        return;
    }
    e->depth--;
    if (!fr->recorded || fr->delta == 0)
        return;
    size_t old_len = (size_t)(fr->end - fr->content);
    size_t new_len = (size_t)((ssize_t)old_len + fr->delta);
    size_t old_pre = (size_t)(fr->content - fr->lenp);
    ot_pbedit_op *op = &e->ops[fr->slot];
    size_t new_pre = ot_pb_put_varint(op->pre, new_len);
    op->cut = old_pre;
    op->ins = NULL;
    op->ins_len = (uint32_t)new_pre;
    *delta_of(e, e->depth) += fr->delta + (ssize_t)new_pre - (ssize_t)old_pre;
}

size_t ot_pbedit_out_len(const ot_pbedit *e)
{
    if (e->failed || e->depth != 0)
        return (size_t)-1;
    return (size_t)((ssize_t)e->len + e->delta);
}

int ot_pbedit_write(const ot_pbedit *e, uint8_t *buf)
{
    size_t total = ot_pbedit_out_len(e), pos = 0, w = 0;
    if (total == (size_t)-1)
        return -1;
    for (size_t i = 0; i < e->n_ops; i++) {
        const ot_pbedit_op *op = &e->ops[i];
        if (op->off > pos) {
            memcpy(buf + w, e->base + pos, op->off - pos);
            w += op->off - pos;
            pos = op->off;
        }
        if (op->ins_len) {
            const uint8_t *src = op->ins ? op->ins : op->pre;
            if (op->ins_len <= 16) /* prefixes and small entries: no call */
                for (size_t k = 0; k < op->ins_len; k++)
                    buf[w + k] = src[k];
            else
                memcpy(buf + w, src, op->ins_len);
            w += op->ins_len;
        }
        pos += op->cut;
    }
    if (pos < e->len) {
        memcpy(buf + w, e->base + pos, e->len - pos);
        w += e->len - pos;
    }
    return w == total ? 0 : -1; /* else the deltas and the list disagree: a bug */
}

int ot_pbedit_apply(const ot_pbedit *e, const uint8_t **out, size_t *out_len)
{
    size_t total = ot_pbedit_out_len(e);
    if (total == (size_t)-1)
        return -1;
    if (!e->n_ops) {
        *out = e->base;
        *out_len = e->len;
        return 0;
    }
    uint8_t *buf = ot_arena_alloc(e->arena, total ? total : 1);
    if (!buf || ot_pbedit_write(e, buf) < 0)
        return -1; /* (a failed write leaves no bytes out) */
    *out = buf;
    *out_len = total;
    return 0;
}
