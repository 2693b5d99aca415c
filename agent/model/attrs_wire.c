/* attrs_wire.c: the attribute actions of attrs.h applied to protobuf bytes
 * (issue 19), so the attributes and resource processors can change a
 * batch without decoding it. The list of one message's entries is read
 * once into a small table pointing into the bytes, the actions run on that
 * table exactly as ot_attrs_apply runs on protobuf-c arrays (first match
 * wins, delete removes every match, new entries go last), and the table
 * becomes edits: untouched entries stay where they are, replaced ones are
 * re-encoded, deleted ones cut, new ones inserted after the last entry.
 * On canonical input the result is what protobuf-c would encode after
 * ot_attrs_apply, byte for byte. */
#include "model/attrs.h"

#include <string.h>

#include "model/otlp_wire.h"
#include "model/pbedit.h"

#define AV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define MAX_ENTRIES 64

typedef struct went {
    ot_wire_attr a; /* a.at NULL: a new entry; key and val point into nb once re-encoded */
    const uint8_t *nb; /* re-encoded field (replaced or new) */
    size_t nlen;
    bool deleted;
} went;

/* An action's entry with its constant value, encoded once per field
 * number (the same for every item of a batch). */
typedef struct wenc {
    uint32_t num; /* 0: not yet */
    went e;
} wenc;

/* The AnyValue content of a scalar from the config. */
static uint8_t *encode_scalar(ot_arena *a, const ot_anyvalue *v, size_t *n)
{
    uint8_t *b;
    switch (v->value_case) {
    case AV(STRING_VALUE): {
        size_t sl = v->string_value ? strlen(v->string_value) : 0;
        if (!(b = ot_arena_alloc(a, sl + 10)))
            return NULL;
        size_t w = ot_pb_put_ld_head(b, 1, sl);
        if (sl)
            memcpy(b + w, v->string_value, sl);
        *n = w + sl;
        return b;
    }
    case AV(BOOL_VALUE):
        if (!(b = ot_arena_alloc(a, 2)))
            return NULL;
        b[0] = 0x10;
        b[1] = v->bool_value ? 1 : 0;
        *n = 2;
        return b;
    case AV(INT_VALUE):
        if (!(b = ot_arena_alloc(a, 11)))
            return NULL;
        b[0] = 0x18;
        *n = 1 + ot_pb_put_varint(b + 1, (uint64_t)v->int_value);
        return b;
    case AV(DOUBLE_VALUE):
        if (!(b = ot_arena_alloc(a, 9)))
            return NULL;
        b[0] = 0x21;
        memcpy(b + 1, &v->double_value, 8);
        *n = 9;
        return b;
    default:
        /* from_attribute actions and delete/hash have no value of their own */
        *n = 0;
        return ot_arena_alloc(a, 1);
    }
}

int ot_attrs_wire_begin(ot_attrs_wire *aw, const ot_attrs *a, ot_arena *arena)
{
    memset(aw, 0, sizeof *aw);
    aw->a = a;
    aw->arena = arena;
    size_t n = a->n ? a->n : 1;
    aw->val = ot_arena_alloc(arena, n * sizeof *aw->val);
    aw->vlen = ot_arena_alloc(arena, n * sizeof *aw->vlen);
    aw->klen = ot_arena_alloc(arena, n * sizeof *aw->klen);
    aw->flen = ot_arena_alloc(arena, n * sizeof *aw->flen);
    aw->cache = ot_arena_calloc(arena, n * sizeof(wenc));
    if (!aw->val || !aw->vlen || !aw->klen || !aw->flen || !aw->cache)
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        if (!(aw->val[i] = encode_scalar(arena, &a->v[i].value, &aw->vlen[i])))
            return -1;
        aw->klen[i] = strlen(a->v[i].key);
        aw->flen[i] = a->v[i].from ? strlen(a->v[i].from) : 0;
    }
    aw->adds_only = a->n > 0;
    for (size_t i = 0; i < a->n; i++)
        if ((a->v[i].op != OT_ATTRS_INSERT && a->v[i].op != OT_ATTRS_UPSERT) || a->v[i].from)
            aw->adds_only = false;
    return 0;
}

static ssize_t find(const went *t, size_t n, const char *key, size_t klen)
{
    for (size_t i = 0; i < n; i++)
        if (!t[i].deleted && ot_wire_key_is(t[i].a.key, t[i].a.klen, key, klen))
            return (ssize_t)i;
    return -1;
}

/* Encodes field num = KeyValue{key, value}; the entry points into it. */
static int encode_entry(ot_arena *a, went *e, uint32_t num, const char *key, size_t klen,
                        const uint8_t *val, size_t vlen)
{
    size_t kv_len = 1 + ot_pb_varint_size(klen) + klen + 1 + ot_pb_varint_size(vlen) + vlen;
    uint8_t *b = ot_arena_alloc(a, kv_len + 15);
    if (!b)
        return -1;
    size_t w = ot_pb_put_ld_head(b, num, kv_len);
    w += ot_pb_put_ld_head(b + w, 1, klen);
    memcpy(b + w, key, klen);
    e->a.key = b + w;
    e->a.klen = (uint32_t)klen;
    w += klen;
    w += ot_pb_put_ld_head(b + w, 2, vlen);
    if (vlen)
        memcpy(b + w, val, vlen);
    e->a.val = b + w;
    e->a.vlen = (uint32_t)vlen;
    w += vlen;
    e->nb = b;
    e->nlen = w;
    return 0;
}

/* Entry e becomes action i's constant entry as field num (encoded on the
 * first use for num, then shared by every item). */
static int const_entry(ot_attrs_wire *aw, size_t i, went *e, uint32_t num)
{
    wenc *c = &((wenc *)aw->cache)[i];
    if (c->num != num) {
        const ot_attrs_action *act = &aw->a->v[i];
        if (encode_entry(aw->arena, &c->e, num, act->key, aw->klen[i], aw->val[i], aw->vlen[i]) < 0)
            return -1;
        c->num = num;
    }
    e->a.key = c->e.a.key;
    e->a.klen = c->e.a.klen;
    e->a.val = c->e.a.val;
    e->a.vlen = c->e.a.vlen;
    e->nb = c->e.nb;
    e->nlen = c->e.nlen;
    return 0;
}

/* The hash action's new value (AnyValue content): 0 made, 1 left alone. */
static int hash_entry(ot_arena *a, const went *e, uint8_t **out, size_t *n)
{
    ot_wire_any v;
    if (ot_wire_any_read(e->a.val, e->a.vlen, &v) < 0)
        return -1;
    size_t len = v.n;
    if (v.kind == AV(STRING_VALUE)) {
        const uint8_t *nul = memchr(v.p, 0, v.n); /* what protobuf-c's C string holds */
        if (nul)
            len = (size_t)(nul - v.p);
    }
    char hex[65];
    int r = ot_attrs_hash_hex(v.kind, v.p, len, v.i, v.d, v.b, hex);
    if (r)
        return r;
    uint8_t *b = ot_arena_alloc(a, 66);
    if (!b)
        return -1;
    b[0] = 0x0a;
    b[1] = 64;
    memcpy(b + 2, hex, 64);
    *out = b;
    *n = 66;
    return 0;
}

/* The extract action on entry t[at]: each group of the pattern upserted
 * as a string entry named after it (run_actions' flags, -1 on error). */
static int extract_entries(ot_attrs_wire *aw, const ot_attrs_action *act, went *t, size_t *np,
                           ssize_t at, size_t orig, uint32_t num)
{
    ot_wire_any v;
    if (ot_wire_any_read(t[at].a.val, t[at].a.vlen, &v) < 0)
        return -1;
    if (v.kind != AV(STRING_VALUE))
        return 0;
    size_t sl = v.n;
    const uint8_t *nul = sl ? memchr(v.p, 0, sl) : NULL; /* what protobuf-c's C string holds */
    if (nul)
        sl = (size_t)(nul - v.p);
    const char *str = sl ? (const char *)v.p : "";
    size_t st[OT_ATTRS_GROUPS + 1], ln[OT_ATTRS_GROUPS + 1];
    uint32_t g = ot_attrs_extract(act, str, sl, st, ln);
    int changed = 0;
    for (uint32_t k = 1; k <= g; k++) {
        const char *name = act->names[k];
        size_t nlen = strlen(name);
        uint8_t *vb = ot_arena_alloc(aw->arena, ln[k] + 6);
        if (!vb)
            return -1;
        size_t w = ot_pb_put_ld_head(vb, 1, ln[k]);
        if (ln[k])
            memcpy(vb + w, str + st[k], ln[k]);
        ssize_t to = find(t, *np, name, nlen);
        went *e;
        if (to >= 0) {
            e = &t[to];
        } else {
            if (*np == MAX_ENTRIES)
                return -1;
            e = &t[(*np)++];
            memset(e, 0, sizeof *e);
        }
        if (encode_entry(aw->arena, e, num, name, nlen, vb, w + ln[k]) < 0)
            return -1;
        changed |= to >= 0 && (size_t)to < orig ? 3 : 1;
    }
    return changed;
}

/* Runs the actions on the table t of *n entries: 0 nothing changed, 1
 * entries were added, 3 an original entry changed too; -1 error. */
static int run_actions(ot_attrs_wire *aw, went *t, size_t *np, uint32_t num)
{
    ot_arena *a = aw->arena;
    size_t n = *np, orig = n;
    int changed = 0;
    for (size_t i = 0; i < aw->a->n; i++) {
        const ot_attrs_action *act = &aw->a->v[i];
        size_t klen = aw->klen[i];
        ssize_t at = find(t, n, act->key, klen);
        const uint8_t *src = aw->val[i];
        size_t slen = aw->vlen[i];
        if (act->from) {
            ssize_t f = find(t, n, act->from, aw->flen[i]);
            src = f >= 0 ? t[f].a.val : NULL;
            slen = f >= 0 ? t[f].a.vlen : 0;
        }
        switch (act->op) {
        case OT_ATTRS_INSERT:
        case OT_ATTRS_UPDATE:
        case OT_ATTRS_UPSERT: {
            if (!src || (act->op == OT_ATTRS_INSERT && at >= 0) ||
                (act->op == OT_ATTRS_UPDATE && at < 0))
                break;
            went *e;
            if (at >= 0) {
                e = &t[at];
            } else {
                if (n == MAX_ENTRIES)
                    return -1;
                e = &t[n++];
                memset(e, 0, sizeof *e);
            }
            if ((act->from ? encode_entry(a, e, num, act->key, klen, src, slen)
                           : const_entry(aw, i, e, num)) < 0)
                return -1;
            changed |= at >= 0 && (size_t)at < orig ? 3 : 1;
            break;
        }
        case OT_ATTRS_DELETE:
            for (size_t r = 0; r < n; r++)
                if (!t[r].deleted && ot_wire_key_is(t[r].a.key, t[r].a.klen, act->key, klen)) {
                    t[r].deleted = true;
                    changed |= r < orig ? 3 : 1;
                }
            break;
        case OT_ATTRS_EXTRACT: {
            int r = at >= 0 && t[at].a.val ? extract_entries(aw, act, t, &n, at, orig, num) : 0;
            if (r < 0)
                return -1;
            changed |= r;
            break;
        }
        case OT_ATTRS_HASH: {
            if (at < 0 || !t[at].a.val)
                break;
            uint8_t *hv;
            size_t hn;
            int r = hash_entry(a, &t[at], &hv, &hn);
            if (r < 0)
                return -1;
            if (r > 0)
                break;
            if (encode_entry(a, &t[at], num, act->key, klen, hv, hn) < 0)
                return -1;
            changed |= (size_t)at < orig ? 3 : 1;
            break;
        }
        }
    }
    *np = n;
    return changed;
}

/* The new entries of t (those after the originals) in one buffer. */
static int join_new(ot_arena *a, const went *t, size_t from, size_t n, const uint8_t **out,
                    size_t *len)
{
    size_t total = 0, live = 0, last = 0;
    for (size_t i = from; i < n; i++)
        if (!t[i].deleted)
            total += t[i].nlen, live++, last = i;
    *len = total;
    *out = NULL;
    if (!total)
        return 0;
    if (live == 1) { /* the one new entry as it was encoded */
        *out = t[last].nb;
        return 0;
    }
    uint8_t *b = ot_arena_alloc(a, total);
    if (!b)
        return -1;
    size_t w = 0;
    for (size_t i = from; i < n; i++)
        if (!t[i].deleted) {
            memcpy(b + w, t[i].nb, t[i].nlen);
            w += t[i].nlen;
        }
    *out = b;
    return 0;
}

int ot_attrs_wire_apply(ot_attrs_wire *aw, ot_pbedit *e, const uint8_t *msg, const uint8_t *end,
                        uint32_t num)
{
    return ot_attrs_wire_apply_idx(aw, e, msg, end, num, NULL);
}

/* The common case on an indexed item: every action inserts a constant (or
 * upserts one) and none of the keys is there yet, so the entries only
 * gain new ones where field num goes, and the table need not be built.
 * 1 or 0 as ot_attrs_wire_apply_idx, -1 out of memory, -2 not this case. */
static int adds_only(ot_attrs_wire *aw, ot_pbedit *e, ot_wire_index *idx, uint32_t num)
{
    went nw[8];
    size_t k = 0;
    if (aw->a->n > sizeof nw / sizeof nw[0])
        return -2;
    for (size_t i = 0; i < aw->a->n; i++) {
        const ot_attrs_action *act = &aw->a->v[i];
        size_t klen = aw->klen[i];
        ot_wire_kv kv;
        int there = find(nw, k, act->key, klen) >= 0;
        if (!there && (there = ot_wire_index_key(idx, num, act->key, klen, &kv)) < 0)
            return -2; /* entries the lookup cannot read: the whole table says */
        if (there && act->op == OT_ATTRS_INSERT)
            continue;
        if (there)
            return -2; /* an upsert that replaces: the whole table */
        nw[k].deleted = false;
        if (const_entry(aw, i, &nw[k++], num) < 0)
            return -1;
    }
    if (!k)
        return 0;
    const uint8_t *nb = nw[0].nb;
    size_t nl = nw[0].nlen;
    if (k > 1 && join_new(aw->arena, nw, 0, k, &nb, &nl) < 0)
        return -1;
    ot_pbedit_replace(e, ot_wire_index_insert_at(idx, num), 0, nb, nl);
    return e->failed ? -1 : 1;
}

int ot_attrs_wire_apply_idx(ot_attrs_wire *aw, ot_pbedit *e, const uint8_t *msg,
                            const uint8_t *end, uint32_t num, ot_wire_index *idx)
{
    went t[MAX_ENTRIES];
    size_t n = 0;
    const uint8_t *p = msg, *ins_at = NULL;
    const ot_wire_attr *xa;
    if (idx && aw->adds_only) {
        int q = adds_only(aw, e, idx, num);
        if (q != -2)
            return q;
    }
    int nx = idx ? ot_wire_index_attrs(idx, num, &xa) : -1;
    int r = 0;
    _Static_assert(OT_WIRE_ATTRS <= MAX_ENTRIES, "the index's entries fit the table");
    if (nx >= 0) { /* read already */
        ins_at = ot_wire_index_insert_at(idx, num);
        for (int i = 0; i < nx; i++) {
            went *w = &t[n++];
            w->a = xa[i];
            w->nb = NULL;
            w->nlen = 0;
            w->deleted = false;
        }
    } else {
        if (idx) {
            /* only the entries' stretch; where new ones go is known */
            ot_wire_index_range(idx, num, &p, &end);
            ins_at = ot_wire_index_insert_at(idx, num);
        }
        ot_pbfield f;
        while ((r = ot_pb_next(&p, end, &f)) > 0) {
            if (f.num == num && f.wt == 2) {
                if (n == MAX_ENTRIES)
                    return -1;
                went *w = &t[n++];
                ot_wire_kv kv;
                if (ot_wire_kv_read(f.val, f.len, &kv) < 0)
                    return -1;
                w->a.at = f.at;
                w->a.end = f.end;
                w->a.key = kv.key;
                w->a.klen = (uint32_t)kv.klen;
                w->a.val = kv.val;
                w->a.vlen = (uint32_t)kv.vlen;
                w->nb = NULL;
                w->nlen = 0;
                w->deleted = false;
                if (!idx)
                    ins_at = f.end;
            } else if (!ins_at && f.num > num) {
                ins_at = f.at; /* where field num goes in field order */
            }
        }
    }
    if (r < 0)
        return -1;
    if (!ins_at)
        ins_at = end;
    size_t orig = n;
    r = run_actions(aw, t, &n, num);
    if (r <= 0)
        return r;
    for (size_t i = 0; (r & 2) && i < orig; i++) {
        if (t[i].deleted)
            ot_pbedit_replace(e, t[i].a.at, (size_t)(t[i].a.end - t[i].a.at), NULL, 0);
        else if (t[i].nb)
            ot_pbedit_replace(e, t[i].a.at, (size_t)(t[i].a.end - t[i].a.at), t[i].nb, t[i].nlen);
    }
    const uint8_t *nb;
    size_t nl;
    if (join_new(aw->arena, t, orig, n, &nb, &nl) < 0)
        return -1;
    if (nl)
        ot_pbedit_replace(e, ins_at, 0, nb, nl);
    return e->failed ? -1 : 1;
}

int ot_attrs_wire_fresh(ot_attrs_wire *aw, uint32_t num, const uint8_t **out, size_t *n)
{
    went t[MAX_ENTRIES];
    size_t cnt = 0;
    int r = run_actions(aw, t, &cnt, num);
    if (r < 0)
        return -1;
    return join_new(aw->arena, t, 0, cnt, out, n);
}
