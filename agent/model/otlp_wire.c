/* otlp_wire.c: OTLP field readers over protobuf bytes (see otlp_wire.h). */
#include "model/otlp_wire.h"

#include <stdlib.h>
#include <string.h>

#include "model/batch.h"

uint32_t ot_wire_item_attr_field(ot_signal s)
{
    switch (s) {
    case OT_TRACES: return 9;
    case OT_LOGS: return 6;
    default: return 0; /* metrics: per point type */
    }
}

uint32_t ot_wire_point_attr_field(uint32_t data_field)
{
    switch (data_field) {
    case 5:  /* gauge: NumberDataPoint */
    case 7:  /* sum: NumberDataPoint */
    case 11: /* summary */
        return 7;
    case 9: /* histogram */
        return 9;
    case 10: /* exponential histogram */
        return 1;
    default:
        return 0;
    }
}

int ot_wire_any_read(const uint8_t *p, size_t n, ot_wire_any *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *end = p + n;
    ot_pbfield f;
    int r;
    while ((r = ot_pb_next(&p, end, &f)) > 0) {
        if (f.num < 1 || f.num > 7)
            continue;
        if ((f.num == 5 || f.num == 6) && out->kind == (int)f.num)
            return -1; /* a list or map sent twice: protobuf-c merges them */
        out->kind = (int)f.num;
        out->p = f.val;
        out->n = f.len;
        switch (f.num) {
        case 2: out->b = f.v != 0; break;
        case 3: out->i = (int64_t)f.v; break;
        case 4: memcpy(&out->d, &f.v, 8); break;
        default: break;
        }
    }
    return r;
}

int ot_wire_kv_read_slow(const uint8_t *p, size_t n, ot_wire_kv *kv)
{
    const uint8_t *end = p + n;
    kv->key = (const uint8_t *)"";
    kv->klen = 0;
    kv->val = NULL;
    kv->vlen = 0;
    ot_pbfield f;
    int r;
    while ((r = ot_pb_next(&p, end, &f)) > 0) {
        if (f.num == 1 && f.wt == 2) {
            kv->key = f.val;
            kv->klen = f.len;
        } else if (f.num == 2 && f.wt == 2) {
            if (kv->val)
                return -1; /* merged by protobuf-c */
            kv->val = f.val;
            kv->vlen = f.len;
        }
    }
    return r;
}

int ot_wire_attr_find(const uint8_t *msg, const uint8_t *end, uint32_t num, const char *key,
                      size_t klen, ot_wire_kv *kv)
{
    const uint8_t *p = msg;
    ot_pbfield f;
    int r;
    while ((r = ot_pb_next(&p, end, &f)) > 0) {
        if (f.num != num || f.wt != 2)
            continue;
        if (ot_wire_kv_read(f.val, f.len, kv) < 0)
            return -1;
        if (ot_wire_key_is(kv->key, kv->klen, key, klen))
            return 1;
    }
    return r;
}

int ot_wire_field(const uint8_t *msg, const uint8_t *end, uint32_t num, ot_pbfield *out)
{
    const uint8_t *p = msg;
    ot_pbfield f;
    int r, found = 0;
    while ((r = ot_pb_next(&p, end, &f)) > 0)
        if (f.num == num) {
            *out = f;
            found = 1;
        }
    return r < 0 ? -1 : found;
}

int ot_wire_submsg(const uint8_t *msg, const uint8_t *end, uint32_t num, const uint8_t **sp,
                   const uint8_t **spe)
{
    const uint8_t *p = msg;
    ot_pbfield f;
    int r, found = 0;
    while ((r = ot_pb_next(&p, end, &f)) > 0)
        if (f.num == num && f.wt == 2) {
            if (found)
                return -1;
            *sp = f.val;
            *spe = f.val + f.len;
            found = 1;
        }
    return r < 0 ? -1 : found;
}

int ot_wire_metric_points(const uint8_t *m, const uint8_t *end, size_t *n)
{
    const uint8_t *p = m, *data = NULL, *data_end = NULL;
    ot_pbfield f;
    int r;
    *n = 0;
    while ((r = ot_pb_next(&p, end, &f)) > 0)
        if (ot_wire_point_attr_field(f.num) && f.wt == 2) {
            if (data)
                return -1; /* a second data member: protobuf-c merges or replaces */
            data = f.val;
            data_end = f.val + f.len;
        }
    if (r < 0)
        return -1;
    if (!data)
        return 0;
    p = data;
    while ((r = ot_pb_next(&p, data_end, &f)) > 0)
        if (f.num == 1 && f.wt == 2)
            (*n)++;
    return r < 0 ? -1 : 0;
}

int ot_wire_commit(ot_batch *b, ot_pbedit *e, size_t items, ot_err *err)
{
    const uint8_t *out;
    size_t len;
    int r = ot_pbedit_apply(e, &out, &len);
    ot_pbedit_free(e);
    if (r < 0)
        return ot_err_set(err, "out of memory editing a %zu-byte %s request", b->wire_len,
                          ot_signal_name(b->signal));
    ot_batch_set_wire(b, out, len, items);
    return 0;
}

/* ---- the item index ------------------------------------------------------- */

static inline unsigned ld_tag(uint32_t num)
{
    return num < 16 ? (num << 3) | 2 : 0x100; /* 0x100: no one-byte tag */
}

/* The field at *p of [*p, end), moved past: 1 when it is an entry of
 * repeated KeyValue field num (tag: num's one-byte tag), read into a (a
 * short one, as protobuf-c writes it, without the general reader), 0 when
 * it is another field, -1 on bad bytes or a KeyValue protobuf-c would
 * merge. */
static inline int next_entry(const uint8_t **pp, const uint8_t *end, uint32_t num, unsigned tag,
                             ot_wire_attr *a)
{
    const uint8_t *p = *pp;
    if (end - p >= 6 && p[0] == tag) {
        const uint8_t *c = p + 2;
        size_t n = p[1], kl = c[1];
        if (n >= 4 && n < 0x80 && n <= (size_t)(end - c) && c[0] == 0x0a && kl + 4 <= n &&
            c[2 + kl] == 0x12 && kl + 4 + c[3 + kl] == n) {
            a->at = p;
            a->end = c + n;
            a->key = c + 2;
            a->klen = (uint32_t)kl;
            a->val = c + 4 + kl;
            a->vlen = c[3 + kl];
            *pp = a->end;
            return 1;
        }
    }
    ot_pbfield f;
    if (ot_pb_next(pp, end, &f) < 0)
        return -1;
    if (f.num != num || f.wt != 2)
        return 0;
    ot_wire_kv kv;
    if (ot_wire_kv_read(f.val, f.len, &kv) < 0)
        return -1;
    a->at = f.at;
    a->end = f.end;
    a->key = kv.key;
    a->klen = (uint32_t)kv.klen;
    a->val = kv.val;
    a->vlen = (uint32_t)kv.vlen;
    return 1;
}

/* Whether the n bytes at c are a KeyValue as protobuf-c writes a short
 * one: key, then value, one-byte lengths, nothing else. */
static inline bool short_kv(const uint8_t *c, size_t n)
{
    size_t kl = n >= 4 ? c[1] : 0x80;
    return n < 0x80 && c[0] == 0x0a && kl + 4 <= n && c[2 + kl] == 0x12 && kl + 4 + c[3 + kl] == n;
}

int ot_wire_index_of(ot_wire_index *x, const uint8_t *item, const uint8_t *end)
{
    if (x->of == item && x->end == end)
        return 0;
    x->of = NULL;
    /* A lean step over the fields: only where each starts and ends
     * matters here. Entries of the attribute lists readers look up keys in
     * (kv_fields) come one after the other with the same tag: a run of
     * those is stepped over in one loop, which also notes whether every
     * one is a short KeyValue (then a key is looked up without reading
     * each entry the general way). */
    uint32_t seen = 0, first_high = 0, kvok = 0, kv_fields = x->kv_fields;
    const uint8_t *p = item;
    while (p < end) {
        const uint8_t *at = p, *last = p;
        unsigned t = *p;
        uint32_t num;
        bool kv = false;
        if ((t & 0x80) || t < 8) {
            ot_pbfield f;
            const uint8_t *q = p;
            if (ot_pb_next_slow(&q, end, &f) < 0)
                return -1;
            p = q;
            num = f.num;
        } else {
            p++;
            num = t >> 3;
            switch (t & 7) {
            case 0:
                while (p < end && (*p & 0x80))
                    p++;
                if (p++ >= end)
                    return -1;
                break;
            case 1:
                if (end - p < 8)
                    return -1;
                p += 8;
                break;
            case 5:
                if (end - p < 4)
                    return -1;
                p += 4;
                break;
            case 2: {
                size_t len;
                if (p < end && !(*p & 0x80)) {
                    len = *p++;
                } else if (end - p >= 2 && !(p[1] & 0x80)) {
                    len = (size_t)(p[0] & 0x7f) | ((size_t)p[1] << 7);
                    p += 2;
                } else {
                    ot_pbfield f;
                    const uint8_t *q = at;
                    if (ot_pb_next_slow(&q, end, &f) < 0)
                        return -1;
                    p = q;
                    break;
                }
                if (len > (size_t)(end - p))
                    return -1;
                p += len;
                if (!((kv_fields >> num) & 1)) /* (num < 16 here) */
                    break;
                kv = short_kv(p - len, len);
                /* The first byte of each key goes into kfirst (bit b:
                 * a key starts with b modulo 64): the first byte of a
                 * key's bytes is the first of what protobuf-c reads as
                 * its C string too (unless that is empty, which only the
                 * empty key matches), so a key whose first byte is not
                 * there is not there, and its lookup steps over nothing. */
                uint64_t m = (uint64_t)1 << (p[len >= 3 ? 2 - (ptrdiff_t)len : -1] & 63);
                while (end - p >= 2 && *p == t && p[1] < 0x80 && p[1] <= end - p - 2) {
                    size_t n = p[1];
                    kv = kv && short_kv(p + 2, n);
                    m |= (uint64_t)1 << (p[n >= 3 ? 4 : 1] & 63);
                    last = p;
                    p += 2 + n;
                }
                x->kfirst[num] = m;
                break;
            }
            default:
                return -1;
            }
        }
        if (num < OT_WIRE_IDX) {
            uint32_t bit = 1u << num;
            if (!(seen & bit)) {
                seen |= bit;
                x->first[num] = (uint32_t)(at - item) + 1;
                kvok |= kv ? bit : 0;
            } else {
                kvok &= ~bit; /* not one run */
            }
            x->last[num] = (uint32_t)(last - item) + 1;
            x->lend[num] = (uint32_t)(p - item);
        } else if (!first_high) {
            first_high = (uint32_t)(at - item) + 1;
        }
    }
    x->seen = seen;
    x->kvok = kvok;
    x->first_high = first_high;
    x->attr_num = 0;
    x->n_attrs = -1;
    x->of = item;
    x->end = end;
    return 0;
}

int ot_wire_index_field(const ot_wire_index *x, uint32_t num, ot_pbfield *f)
{
    if (num >= OT_WIRE_IDX)
        return ot_wire_field(x->of, x->end, num, f);
    if (!(x->seen & (1u << num)))
        return 0;
    const uint8_t *p = x->of + x->last[num] - 1;
    if (num < 16 && p[0] == ((num << 3) | 2) && p[1] < 0x80) { /* a short string: no reader */
        f->num = num;
        f->wt = 2;
        f->at = p;
        f->lenp = p + 1;
        f->val = p + 2;
        f->len = p[1];
        f->end = p + 2 + p[1];
        f->v = 0;
        return 1;
    }
    return ot_pb_next(&p, x->end, f) > 0 ? 1 : -1;
}

int ot_wire_index_submsg(const ot_wire_index *x, uint32_t num, const uint8_t **sp,
                         const uint8_t **se)
{
    if (num >= OT_WIRE_IDX)
        return ot_wire_submsg(x->of, x->end, num, sp, se);
    if (!(x->seen & (1u << num)))
        return 0;
    if (x->first[num] != x->last[num])
        return -1; /* protobuf-c would merge the two */
    ot_pbfield f;
    int r = ot_wire_index_field(x, num, &f);
    if (r <= 0)
        return r;
    if (f.wt != 2)
        return 0;
    *sp = f.val;
    *se = f.val + f.len;
    return 1;
}

void ot_wire_index_range(const ot_wire_index *x, uint32_t num, const uint8_t **p,
                         const uint8_t **pe)
{
    *p = *pe = x->of;
    if (num >= OT_WIRE_IDX) {
        *pe = x->end;
        return;
    }
    if (!(x->seen & (1u << num)))
        return;
    *p = x->of + x->first[num] - 1;
    *pe = x->of + x->lend[num];
}

const uint8_t *ot_wire_index_insert_at(const ot_wire_index *x, uint32_t num)
{
    if (num < OT_WIRE_IDX && (x->seen & (1u << num)))
        return x->of + x->lend[num];
    uint32_t at = 0;
    for (uint32_t k = num + 1; k < OT_WIRE_IDX; k++)
        if ((x->seen & (1u << k)) && (!at || x->first[k] < at))
            at = x->first[k];
    if (x->first_high && (!at || x->first_high < at))
        at = x->first_high;
    return at ? x->of + at - 1 : x->end;
}

int ot_wire_index_attrs(ot_wire_index *x, uint32_t num, const ot_wire_attr **out)
{
    if (!x->attrs || !num)
        return -1;
    if (x->attr_num == num) {
        *out = x->attrs;
        return x->n_attrs;
    }
    x->attr_num = num;
    x->n_attrs = -1;
    const uint8_t *p, *end;
    ot_wire_index_range(x, num, &p, &end);
    unsigned tag = ld_tag(num);
    int n = 0;
    while (p < end) {
        if (n == OT_WIRE_ATTRS)
            return -1;
        int r = next_entry(&p, end, num, tag, &x->attrs[n]);
        if (r < 0)
            return -1;
        n += r;
    }
    x->n_attrs = n;
    *out = x->attrs;
    return n;
}

int ot_wire_index_key(ot_wire_index *x, uint32_t num, const char *key, size_t klen,
                      ot_wire_kv *kv)
{
    if (num < 16)
        x->kv_fields |= 1u << num; /* the run noted from the walk's next item on */
    if (x->attrs && x->attr_num == num && x->n_attrs >= 0) {
        for (int i = 0; i < x->n_attrs; i++) {
            const ot_wire_attr *a = &x->attrs[i];
            if (ot_wire_key_is(a->key, a->klen, key, klen)) {
                kv->key = a->key;
                kv->klen = a->klen;
                kv->val = a->val;
                kv->vlen = a->vlen;
                return 1;
            }
        }
        return 0;
    }
    if (klen && num < 16 && (x->kvok & (1u << num)) &&
        !((x->kfirst[num] >> ((uint8_t)key[0] & 63)) & 1))
        return 0; /* no key of the run starts as this one does */
    const uint8_t *p, *end;
    ot_wire_index_range(x, num, &p, &end);
    if (klen && num < OT_WIRE_IDX && (x->kvok & (1u << num))) {
        /* one run of short KeyValues: only the keys need looking at */
        const uint8_t k0 = (uint8_t)key[0];
        for (; p < end; p += 2 + p[1]) {
            size_t kl = p[3];
            if (kl >= klen && p[4] == k0 && (kl == klen || p[4 + klen] == 0) &&
                memcmp(p + 4, key, klen) == 0) {
                kv->key = p + 4;
                kv->klen = kl;
                kv->val = p + 6 + kl;
                kv->vlen = p[5 + kl];
                return 1;
            }
        }
        return 0;
    }
    unsigned tag = ld_tag(num);
    while (p < end) {
        ot_wire_attr a;
        int r = next_entry(&p, end, num, tag, &a);
        if (r < 0)
            return -1;
        if (r && ot_wire_key_is(a.key, a.klen, key, klen)) {
            kv->key = a.key;
            kv->klen = a.klen;
            kv->val = a.val;
            kv->vlen = a.vlen;
            return 1;
        }
    }
    return 0;
}

/* ---- the walk --------------------------------------------------------------- */

typedef struct wwalk {
    ot_wire_res_fn res;
    ot_wire_item_fn fn;
    void *ctx;
    bool drop_empty;
    ot_wire_index idx;
    ot_wire_attr attrs[OT_WIRE_ATTRS];
} wwalk;

/* The single message field 1 of [p, end) (a Resource, a scope), as
 * ot_wire_submsg finds it: when it is the first field, as protobuf-c
 * writes it, without a step over the rest (*first then says so, and the
 * caller's walk declines on meeting a second one); else by that step. */
static int first_submsg(const uint8_t *p, const uint8_t *end, const uint8_t **sp,
                        const uint8_t **se, const uint8_t **first)
{
    ot_pbfield f;
    const uint8_t *q = p;
    *first = NULL;
    if (ot_pb_next(&q, end, &f) > 0 && f.num == 1 && f.wt == 2) {
        *sp = f.val;
        *se = f.val + f.len;
        *first = f.at;
        return 1;
    }
    return ot_wire_submsg(p, end, 1, sp, se);
}

static int walk_scope(wwalk *ww, ot_pbedit *e, ot_wire_pos *pos, const ot_pbfield *sf,
                      bool *kept)
{
    const uint8_t *p = sf->val, *end = sf->val + sf->len, *first;
    pos->scope = pos->scope_end = NULL;
    if (first_submsg(p, end, &pos->scope, &pos->scope_end, &first) < 0)
        return OT_WIRE_DECLINED;
    size_t left = 0;
    ot_pbedit_enter(e, sf);
    ot_pbfield f;
    int r, s = 0;
    while ((r = ot_pb_next(&p, end, &f)) > 0) {
        if (f.num == OT_WF_SCOPE && f.wt == 2 && first && f.at != first) {
            s = OT_WIRE_DECLINED; /* a second scope: protobuf-c merges the two */
            break;
        }
        if (f.num != OT_WF_ITEMS || f.wt != 2)
            continue;
        bool drop = false;
        if ((s = ww->fn(ww->ctx, e, pos, &f, &drop)) != 0)
            break;
        if (drop)
            ot_pbedit_cut(e, &f);
        else
            left++;
    }
    *kept = left > 0;
    ot_pbedit_leave(e, s == 0 && ww->drop_empty && !*kept);
    return s ? s : r < 0 ? OT_WIRE_DECLINED : 0;
}

static int walk_resource(wwalk *ww, ot_pbedit *e, const ot_pbfield *rf, bool *kept)
{
    const uint8_t *p = rf->val, *end = rf->val + rf->len, *first;
    ot_wire_pos pos = {0};
    pos.idx = &ww->idx;
    if (first_submsg(p, end, &pos.resource, &pos.resource_end, &first) < 0)
        return OT_WIRE_DECLINED;
    size_t left = 0;
    ot_pbedit_enter(e, rf);
    ot_pbfield f;
    int r, s = 0;
    if (ww->res && !pos.resource)
        s = ww->res(ww->ctx, e, rf, NULL);
    while (s == 0 && (r = ot_pb_next(&p, end, &f)) > 0) {
        if (f.num == OT_WF_RESOURCE && f.wt == 2 && first && f.at != first) {
            s = OT_WIRE_DECLINED; /* a second Resource: protobuf-c merges the two */
            break;
        }
        if (f.num == OT_WF_RESOURCE && f.wt == 2 && ww->res) {
            s = ww->res(ww->ctx, e, rf, &f);
            continue;
        }
        if (f.num != OT_WF_SCOPE_ENTRIES || f.wt != 2)
            continue;
        bool k;
        if ((s = walk_scope(ww, e, &pos, &f, &k)) != 0)
            break;
        left += k;
    }
    *kept = left > 0;
    ot_pbedit_leave(e, s == 0 && ww->drop_empty && !*kept);
    return s ? s : r < 0 ? OT_WIRE_DECLINED : 0;
}

int ot_wire_walk_items_res(ot_pbedit *e, ot_wire_res_fn res, ot_wire_item_fn fn, void *ctx,
                           bool drop_empty, size_t *n_res, size_t *kept_res)
{
    wwalk ww; /* attrs is written before it is read: no need to clear it */
    ww.res = res;
    ww.fn = fn;
    ww.ctx = ctx;
    ww.drop_empty = drop_empty;
    memset(&ww.idx, 0, sizeof ww.idx);
    ww.idx.attrs = ww.attrs;
    const uint8_t *p = e->base, *end = e->base + e->len;
    size_t n = 0, kept = 0;
    ot_pbfield f;
    int r, s = 0;
    while ((r = ot_pb_next(&p, end, &f)) > 0) {
        if (f.num != OT_WF_RESOURCE_ENTRIES || f.wt != 2)
            continue;
        bool k;
        n++;
        if ((s = walk_resource(&ww, e, &f, &k)) != 0)
            break;
        kept += k;
    }
    if (n_res)
        *n_res = n;
    if (kept_res)
        *kept_res = kept;
    return s ? s : r < 0 ? OT_WIRE_DECLINED : 0;
}

int ot_wire_walk_items(ot_pbedit *e, ot_wire_item_fn fn, void *ctx, bool drop_empty,
                       size_t *n_res, size_t *kept_res)
{
    return ot_wire_walk_items_res(e, NULL, fn, ctx, drop_empty, n_res, kept_res);
}

/* ---- several stages in one walk ------------------------------------------ */

#define MAX_STAGES 6

typedef struct chain {
    const ot_wire_stage *st[MAX_STAGES];
    _Alignas(16) unsigned char scratch[MAX_STAGES][OT_WIRE_SCRATCH];
    size_t n;
} chain;

static int chain_res(void *ctx, ot_pbedit *e, const ot_pbfield *rf, const ot_pbfield *res)
{
    chain *c = ctx;
    for (size_t i = 0; i < c->n; i++)
        if (c->st[i]->resource) {
            int s = c->st[i]->resource(c->scratch[i], e, rf, res);
            if (s)
                return s;
        }
    return 0;
}

static int chain_item(void *ctx, ot_pbedit *e, const ot_wire_pos *pos, const ot_pbfield *f,
                      bool *drop)
{
    chain *c = ctx;
    *drop = false;
    for (size_t i = 0; i < c->n && !*drop; i++)
        if (c->st[i]->item) {
            int s = c->st[i]->item(c->scratch[i], e, pos, f, drop);
            if (s)
                return s;
        }
    return 0;
}

ot_status ot_wire_stage_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    ot_wire_stage *s = (ot_wire_stage *)self;
    return s->consume(s, b, err);
}

static ot_wire_stage *as_stage(ot_consumer *c)
{
    if (!c || c->consume != ot_wire_stage_consume)
        return NULL;
    ot_wire_stage *s = (ot_wire_stage *)c;
    return s->on ? s : NULL;
}

int ot_wire_chain(ot_wire_stage *first, ot_batch *b, ot_status *st, ot_err *err)
{
    if (!b->wire || b->items == (size_t)-1 ||
        atomic_load_explicit(&b->refs, memory_order_acquire) != 1)
        return OT_WIRE_DECLINED;
    chain c;
    c.n = 0;
    unsigned written = 0;
    bool drops = false, any_res = false;
    ot_consumer *next = &first->base;
    /* The run: stages that read nothing an earlier one writes; a filter
     * only ahead of every writer (its drops must not cut an edited item). */
    const ot_wire_stage *s;
    while ((s = as_stage(next)) && c.n < MAX_STAGES) {
        if ((s->reads & written) || (s->drops && written) || (s->resource && any_res))
            break;
        if (s->begin(s->self, b, c.scratch[c.n], err) != 0)
            break;
        c.st[c.n++] = s;
        written |= s->writes;
        drops |= s->drops;
        any_res |= s->resource != NULL;
        next = s->next;
    }
    if (c.n < 2)
        return OT_WIRE_DECLINED;
    ot_pbedit e;
    ot_pbedit_init(&e, b->wire, b->wire_len, b->arena);
    size_t n_res = 0, kept_res = 0, dropped = 0;
    int r = ot_wire_walk_items_res(&e, any_res ? chain_res : NULL, chain_item, &c, drops, &n_res,
                                   &kept_res);
    if (r == OT_WIRE_DECLINED) {
        ot_pbedit_free(&e);
        return OT_WIRE_DECLINED;
    }
    if (r) {
        ot_pbedit_free(&e);
        ot_batch_unref(b);
        *st = OT_PERMANENT;
        return -1;
    }
    for (size_t i = 0; i < c.n; i++)
        if (c.st[i]->dropped)
            dropped += c.st[i]->dropped(c.scratch[i]);
    bool all_gone = drops && n_res && !kept_res;
    size_t left = b->items >= dropped ? b->items - dropped : 0;
    ot_edit_consumer *ec = ot_as_edit_consumer(next);
    if (!all_gone && ot_pbedit_changed(&e) && ec && ot_pbedit_out_len(&e) != (size_t)-1) {
        /* The next one copies the bytes anyway: it takes the edits. */
        for (size_t i = 0; i < c.n; i++)
            if (c.st[i]->done)
                c.st[i]->done(c.scratch[i]);
        *st = ec->consume_edited(next, b, &e, left, err);
        ot_pbedit_free(&e);
        return 0;
    }
    if (!all_gone && ot_pbedit_changed(&e)) {
        if (ot_wire_commit(b, &e, left, err) < 0) {
            ot_batch_unref(b);
            *st = OT_PERMANENT;
            return -1;
        }
    } else {
        ot_pbedit_free(&e);
    }
    for (size_t i = 0; i < c.n; i++)
        if (c.st[i]->done)
            c.st[i]->done(c.scratch[i]);
    if (all_gone) {
        ot_batch_unref(b);
        *st = OT_OK; /* all of it filtered out: consumed */
        return 0;
    }
    *st = ot_consume(next, b, err);
    return 0;
}

bool ot_wire_processors_enabled(void)
{
    return getenv("OTELITE_DECODED_PROCESSORS") == NULL; /* read when a processor is made */
}
