/* ottl_wire.c: OTTL paths read from protobuf bytes instead of protobuf-c
 * structs (issue 19), so the filter and attributes processors can decide
 * on an item without decoding the batch. Each read finds its field in the
 * item's bytes (the last occurrence, as protobuf reads a scalar sent
 * twice) and gives the value ottl_eval.c would have read from the struct:
 * strings end at a NUL as protobuf-c's C strings do, enums and counters
 * widen the same way. Maps and lists are not built here: a path that
 * yields one declines and the caller evaluates on the decoded batch. */
#include "ottl/ottl_int.h"

#include <string.h>

#include "base/codec.h"
#include "model/otlp_wire.h"

#define SCRATCH 128 /* as ottl_eval.c */

static int decline(ot_ottl_wire *w, ot_err *err)
{
    w->declined = true;
    return ot_err_set(err, "needs the decoded form");
}

static void set_int(val *v, int64_t i)
{
    v->t = T_INT;
    v->u.i = i;
}

static void set_wstr(val *v, const uint8_t *p, size_t n)
{
    const uint8_t *nul = n ? memchr(p, 0, n) : NULL;
    v->t = T_STR;
    v->u.s.p = n ? (const char *)p : "";
    v->u.s.n = nul ? (size_t)(nul - p) : n;
}

/* The AnyValue content [p, p+n) as a value; maps and lists decline. */
static int any_val(ot_ottl_wire *w, const uint8_t *p, size_t n, val *v, ot_err *err)
{
    if (n >= 2 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 2 == n) {
        set_wstr(v, p + 2, p[1]); /* a short string and nothing else: most values */
        return 0;
    }
    ot_wire_any a;
    if (ot_wire_any_read(p, n, &a) < 0)
        return decline(w, err);
    v->t = T_NIL;
    switch (a.kind) {
    case 1: set_wstr(v, a.p, a.n); break;
    case 2: v->t = T_BOOL, v->u.b = a.b; break;
    case 3: set_int(v, a.i); break;
    case 4: v->t = T_DBL, v->u.d = a.d; break;
    case 5:
    case 6: return decline(w, err);
    case 7:
        v->t = T_BYTES;
        v->u.s.p = (const char *)a.p;
        v->u.s.n = a.n;
        break;
    default: break;
    }
    return 0;
}

/* Field kinds as ottl_eval.c widens them from the struct member. */
enum { W_STR, W_BYTES, W_HEX, W_ENUM, W_U32, W_U64, W_ATTRS, W_STATUS_CODE, W_STATUS_MSG,
       W_BODY, W_METRIC_TYPE, W_NONE };

typedef struct wdef {
    int field; /* F_* */
    uint32_t num;
    int kind;
} wdef;

static const wdef span_defs[] = {
    {F_TRACE_ID, 1, W_BYTES},     {F_SPAN_ID, 2, W_BYTES},      {F_PARENT_SPAN_ID, 4, W_BYTES},
    {F_TRACE_ID_STR, 1, W_HEX},   {F_SPAN_ID_STR, 2, W_HEX},    {F_PARENT_SPAN_ID_STR, 4, W_HEX},
    {F_TRACE_STATE, 3, W_STR},    {F_NAME, 5, W_STR},           {F_KIND, 6, W_ENUM},
    {F_START, 7, W_U64},          {F_END, 8, W_U64},            {F_ATTRS, 9, W_ATTRS},
    {F_DROPPED_ATTRS, 10, W_U32}, {F_DROPPED_EVENTS, 12, W_U32}, {F_DROPPED_LINKS, 14, W_U32},
    {F_STATUS_CODE, 15, W_STATUS_CODE}, {F_STATUS_MSG, 15, W_STATUS_MSG}, {F_FLAGS, 16, W_U32},
    {-1, 0, W_NONE},
};

static const wdef log_defs[] = {
    {F_TIME, 1, W_U64},         {F_OBSERVED, 11, W_U64},  {F_SEV_NUM, 2, W_ENUM},
    {F_SEV_TEXT, 3, W_STR},     {F_BODY, 5, W_BODY},      {F_ATTRS, 6, W_ATTRS},
    {F_DROPPED_ATTRS, 7, W_U32}, {F_FLAGS, 8, W_U32},     {F_TRACE_ID, 9, W_BYTES},
    {F_SPAN_ID, 10, W_BYTES},   {F_TRACE_ID_STR, 9, W_HEX}, {F_SPAN_ID_STR, 10, W_HEX},
    {F_EVENT_NAME, 12, W_STR},  {-1, 0, W_NONE},
};

static const wdef metric_defs[] = {
    {F_NAME, 1, W_STR}, {F_DESCRIPTION, 2, W_STR}, {F_UNIT, 3, W_STR},
    {F_TYPE, 0, W_METRIC_TYPE}, {-1, 0, W_NONE},
};

static const wdef resource_defs[] = {
    {F_ATTRS, 1, W_ATTRS}, {F_DROPPED_ATTRS, 2, W_U32}, {-1, 0, W_NONE},
};

static const wdef scope_defs[] = {
    {F_NAME, 1, W_STR}, {F_VERSION, 2, W_STR}, {F_ATTRS, 3, W_ATTRS},
    {F_DROPPED_ATTRS, 4, W_U32}, {-1, 0, W_NONE},
};

static const wdef *defs_of(int obj)
{
    switch (obj) {
    case O_SPAN: return span_defs;
    case O_LOG: return log_defs;
    case O_METRIC: return metric_defs;
    case O_RESOURCE: return resource_defs;
    case O_SCOPE: return scope_defs;
    default: return NULL;
    }
}

static const wdef *find_def(int obj, int field)
{
    const wdef *d = defs_of(obj);
    for (; d && d->field >= 0; d++)
        if (d->field == field)
            return d;
    return NULL;
}

static bool path_ok(node *n)
{
    const wdef *d = find_def(n->obj, n->field);
    n->wire_def = d; /* made once, when the processor is made; read per item */
    if (!d)
        return false;
    if (d->kind == W_ATTRS)
        return n->nkeys >= 1 && !n->keys[0].is_int;
    return true;
}

/* Marks `path == "text"` and `path != "text"` on a string field or an
 * attribute of the item itself, which ottl_wire_cmp decides directly. */
static void mark_cmp(node *n)
{
    if (n->kind != K_CMP || (n->op != OP_EQ && n->op != OP_NE) || n->n != 2)
        return;
    for (int k = 0; k < 2; k++) {
        const node *p = n->kids[k], *l = n->kids[1 - k];
        if (p->kind != K_PATH || l->kind != K_LIT || l->lit.t != T_STR || !p->wire_def ||
            p->obj == O_RESOURCE || p->obj == O_SCOPE ||
            (l->lit.u.s.n && memchr(l->lit.u.s.p, 0, l->lit.u.s.n)))
            continue; /* (a text with a NUL in it: the evaluator says what equals it) */
        const wdef *d = p->wire_def;
        if (d->kind == W_STR || (d->kind == W_ATTRS && p->nkeys == 1 && !p->keys[0].is_int)) {
            n->wire_cmp = k + 1;
            return;
        }
    }
}

static bool tree_ok(node *n)
{
    if (!n)
        return true;
    if (n->kind == K_PATH)
        return path_ok(n);
    for (size_t i = 0; i < n->n; i++)
        if (!tree_ok(n->kids[i]))
            return false;
    mark_cmp(n);
    return true;
}

bool ot_ottl_wire_ok(const ot_ottl_cond *c)
{
    if (c->ctx != OT_OTTL_SPAN && c->ctx != OT_OTTL_LOG && c->ctx != OT_OTTL_METRIC)
        return false;
    return tree_ok(c->root); /* the tree is the condition's own: caching in it is safe */
}

static int64_t metric_type_of(const uint8_t *p, const uint8_t *end)
{
    /* protobuf-c keeps the last data member sent */
    int64_t t = 0;
    ot_pbfield f;
    while (ot_pb_next(&p, end, &f) > 0)
        switch (f.num) {
        case 5: t = 1; break;
        case 7: t = 2; break;
        case 9: t = 3; break;
        case 10: t = 4; break;
        case 11: t = 5; break;
        default: break;
        }
    return t;
}

static ot_wire_index *idx_of(ot_ottl_wire *w)
{
    return w->idx ? w->idx : &w->own;
}

int ottl_wire_path(ot_ottl_wire *w, ot_ottl_ctx ctx, const node *n, val *v, char *scratch,
                   ot_err *err)
{
    const uint8_t *p, *end;
    switch (n->obj) {
    case O_RESOURCE: p = w->resource, end = w->resource_end; break;
    case O_SCOPE: p = w->scope, end = w->scope_end; break;
    default: p = w->item, end = w->item_end; break;
    }
    const wdef *d = n->wire_def ? n->wire_def : find_def(n->obj, n->field);
    if (!d)
        return decline(w, err);
    v->t = T_NIL;
    ot_pbfield f;
    int found = 0;
    bool on_item = p && p == w->item;
    ot_wire_index *x = idx_of(w);
    if (on_item && ot_wire_index_of(x, w->item, w->item_end) < 0)
        return decline(w, err);
    if (p && d->kind != W_ATTRS && d->kind != W_STATUS_CODE && d->kind != W_STATUS_MSG &&
        d->kind != W_METRIC_TYPE && d->kind != W_BODY &&
        (found = on_item ? ot_wire_index_field(x, d->num, &f) : ot_wire_field(p, end, d->num, &f)) < 0)
        return decline(w, err);
    switch (d->kind) {
    case W_STR:
        set_wstr(v, found && f.wt == 2 ? f.val : NULL, found && f.wt == 2 ? f.len : 0);
        break;
    case W_BYTES:
        v->t = T_BYTES;
        v->u.s.p = found && f.wt == 2 ? (const char *)f.val : NULL;
        v->u.s.n = found && f.wt == 2 ? f.len : 0;
        break;
    case W_HEX: {
        size_t len = found && f.wt == 2 ? f.len : 0;
        size_t m = len < SCRATCH / 2 ? len : SCRATCH / 2 - 1;
        v->t = T_STR;
        v->u.s.p = scratch;
        v->u.s.n = m ? ot_hex_encode(f.val, m, scratch, false) : 0;
        break;
    }
    case W_ENUM: set_int(v, found ? (int64_t)(int32_t)(uint32_t)f.v : 0); break;
    case W_U32: set_int(v, found ? (int64_t)(uint32_t)f.v : 0); break;
    case W_U64: set_int(v, found ? (int64_t)f.v : 0); break;
    case W_METRIC_TYPE: set_int(v, p ? metric_type_of(p, end) : 0); break;
    case W_STATUS_CODE:
    case W_STATUS_MSG: {
        const uint8_t *sp = NULL, *se = NULL;
        int r = on_item ? ot_wire_index_submsg(x, 15, &sp, &se)
                : p     ? ot_wire_submsg(p, end, 15, &sp, &se)
                        : 0;
        if (r < 0)
            return decline(w, err);
        ot_pbfield sf;
        int sr = r ? ot_wire_field(sp, se, d->kind == W_STATUS_CODE ? 3 : 2, &sf) : 0;
        if (sr < 0)
            return decline(w, err);
        if (d->kind == W_STATUS_CODE)
            set_int(v, sr ? (int64_t)(int32_t)(uint32_t)sf.v : 0);
        else
            set_wstr(v, sr && sf.wt == 2 ? sf.val : NULL, sr && sf.wt == 2 ? sf.len : 0);
        break;
    }
    case W_BODY: {
        const uint8_t *bp = NULL, *be = NULL;
        int r = on_item ? ot_wire_index_submsg(x, d->num, &bp, &be)
                : p     ? ot_wire_submsg(p, end, d->num, &bp, &be)
                        : 0;
        if (r < 0)
            return decline(w, err);
        if (r && any_val(w, bp, (size_t)(be - bp), v, err) < 0)
            return -1;
        if (n->nkeys)
            return v->t == T_NIL ? 0 : decline(w, err);
        break;
    }
    case W_ATTRS: {
        if (!n->nkeys || n->keys[0].is_int)
            return decline(w, err);
        ot_wire_kv kv;
        int r = on_item ? ot_wire_index_key(x, d->num, n->keys[0].s, n->keys[0].slen, &kv)
                : p     ? ot_wire_attr_find(p, end, d->num, n->keys[0].s, n->keys[0].slen, &kv)
                        : 0;
        if (r < 0)
            return decline(w, err);
        if (r && kv.val && any_val(w, kv.val, kv.vlen, v, err) < 0)
            return -1;
        if (n->nkeys > 1 && v->t != T_NIL)
            return decline(w, err); /* indexing into a value: the decoded path says how */
        break;
    }
    default:
        return decline(w, err);
    }
    return 0;
}

int ottl_wire_cmp(ot_ottl_wire *w, ot_ottl_ctx ctx, const node *n)
{
    const node *pn = n->kids[n->wire_cmp - 1], *ln = n->kids[2 - n->wire_cmp];
    const wdef *d = pn->wire_def;
    ot_wire_index *x = idx_of(w);
    if (!w->item)
        return -1;
    if (ot_wire_index_of(x, w->item, w->item_end) < 0)
        return -1;
    const uint8_t *s = NULL;
    size_t sn = 0;
    bool str = true; /* else the value is nil, which no string equals */
    if (d->kind == W_STR) {
        ot_pbfield f;
        int r = ot_wire_index_field(x, d->num, &f);
        if (r < 0)
            return -1;
        if (r && f.wt == 2)
            s = f.val, sn = f.len;
    } else {
        ot_wire_kv kv;
        int r = ot_wire_index_key(x, d->num, pn->keys[0].s, pn->keys[0].slen, &kv);
        if (r < 0)
            return -1;
        str = false;
        if (r && kv.val) { /* no value: nil */
            const uint8_t *p = kv.val;
            size_t vn = kv.vlen;
            if (vn < 2 || p[0] != 0x0a || p[1] >= 0x80 || (size_t)p[1] + 2 != vn)
                return -1; /* not a lone short string: the usual way */
            s = p + 2, sn = p[1], str = true;
        }
    }
    /* The value reads as a C string (up to a NUL) and the text has no NUL:
     * equal when the text is its start, followed by its end or a NUL. */
    size_t L = ln->lit.u.s.n;
    bool eq = str && (sn == L || (sn > L && s[L] == 0)) && (!L || memcmp(s, ln->lit.u.s.p, L) == 0);
    return n->op == OP_EQ ? eq : !eq;
}

int ottl_wire_is_root(ot_ottl_wire *w, ot_err *err)
{
    ot_pbfield f;
    int r = w->item ? ot_wire_field(w->item, w->item_end, 4, &f) : 0;
    if (r < 0)
        return decline(w, err);
    if (!r || f.wt != 2)
        return 1;
    for (size_t i = 0; i < f.len; i++)
        if (f.val[i])
            return 0;
    return 1;
}
