/* route.c: one request split into one request per backend by routing key,
 * on the protobuf bytes, as jaeger/split.c splits by resource.
 *
 * The request is walked as a tree: request → resource entries → scope
 * entries → items (metrics go two levels further: metric → its data →
 * data points). The walk stops at the routing key's level: there the key
 * is read, the ring names a backend, and that whole subtree belongs to it
 * (only its items are counted, never decoded). Above that level a node
 * whose children all went to one backend is that backend's too; only a
 * node whose children went to several is rewritten, once per backend: its
 * own fields other than the children (resource, scope, schema_url, ...)
 * followed by the children for that backend. A request whose items all go
 * to one backend is passed on as it came. */
#include "lb.h"
#include "base/varint.h"
#include "model/pbedit.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 6
#define MIXED (-1)
#define NONE (-2)

typedef struct rnode {
    uint32_t fstart;       /* the field's tag in the request */
    uint32_t pstart, pend; /* its payload */
    uint32_t size;         /* nodes in its subtree, itself included */
    uint32_t keylen;       /* bytes of its fields that are not children (mixed nodes) */
    int32_t owner;         /* backend, MIXED or NONE */
    uint32_t items;        /* owned: items in it */
    uint8_t depth;
    uint8_t fnum;
    uint64_t mask;         /* bit (backend % 64) of every backend below */
} rnode;

/* What a key needs from the levels above it (streamID). */
typedef struct kctx {
    const uint8_t *res, *scope, *name;
    size_t res_len, scope_len, name_len;
    uint8_t data_kind; /* Metric's data field: 5 gauge, 7 sum, 9, 10, 11 */
} kctx;

typedef struct walker {
    ot_signal sig;
    lb_key key;
    int key_depth, leaf_depth;
    const lb_ring *ring;
    const uint8_t *w;
    rnode *v;
    size_t n, cap;
    int oom, bad;
} walker;

/* Is field num of a message at depth one of its children? */
static bool is_child(ot_signal s, int depth, uint64_t num)
{
    if (depth <= 2)
        return num == (depth == 0 ? 1u : 2u);
    if (s == OT_METRICS && depth == 3)
        return num == 5 || num == 7 || num == 9 || num == 10 || num == 11;
    if (s == OT_METRICS && depth == 4)
        return num == 1;
    return false;
}

bool lb_key_valid(ot_signal s, lb_key k)
{
    switch (k) {
    case LB_KEY_TRACEID:
        return s != OT_METRICS;
    case LB_KEY_SERVICE:
    case LB_KEY_RESOURCE:
        return true;
    case LB_KEY_METRIC:
    case LB_KEY_STREAMID:
        return s == OT_METRICS;
    }
    return false;
}

static int key_depth(ot_signal s, lb_key k)
{
    switch (k) {
    case LB_KEY_SERVICE:
    case LB_KEY_RESOURCE:
        return 1;
    case LB_KEY_METRIC:
        return 3;
    case LB_KEY_STREAMID:
        return 5;
    case LB_KEY_TRACEID:
    default:
        return s == OT_METRICS ? 5 : 3;
    }
}

/* The first LEN field num of [p, end). */
static const uint8_t *find_len_field(const uint8_t *p, const uint8_t *end, uint64_t want,
                                     size_t *len)
{
    while (p < end) {
        ot_pbfield f;
        if (ot_pb_next(&p, end, &f) < 0)
            return NULL;
        if (f.num == want && f.wt == 2) {
            *len = f.len;
            return f.val;
        }
    }
    return NULL;
}

/* The string value of resource attribute service.name (Resource.attributes
 * 1 → KeyValue{key 1, value 2 → AnyValue.string_value 1}). */
static const uint8_t *service_name(const uint8_t *res, size_t rlen, size_t *out)
{
    const uint8_t *p = res, *end = res + rlen;
    while (p < end) {
        ot_pbfield f;
        if (ot_pb_next(&p, end, &f) < 0)
            return NULL;
        if (f.num != 1 || f.wt != 2)
            continue;
        const uint8_t *kv = f.val;
        size_t kvlen = f.len;
        size_t klen = 0, vlen = 0;
        const uint8_t *k = find_len_field(kv, kv + kvlen, 1, &klen);
        if (!k || klen != 12 || memcmp(k, "service.name", 12))
            continue;
        const uint8_t *v = find_len_field(kv, kv + kvlen, 2, &vlen);
        const uint8_t *sv = v ? find_len_field(v, v + vlen, 1, out) : NULL;
        if (sv)
            return sv;
        *out = 0;
        return kv; /* present but not a string: all such go together */
    }
    *out = 0;
    return NULL;
}

/* Items in an owned subtree: leaves counted, nothing below them read. */
static uint32_t count_items(walker *w, int depth, const uint8_t *p, const uint8_t *end)
{
    uint32_t n = 0;
    while (p < end) {
        ot_pbfield f;
        if (ot_pb_next(&p, end, &f) < 0) {
            w->bad = 1;
            return n;
        }
        if (f.wt != 2 || !is_child(w->sig, depth, f.num))
            continue;
        n += depth + 1 == w->leaf_depth ? 1 : count_items(w, depth + 1, f.val, f.val + f.len);
    }
    return n;
}

static uint64_t key_hash(walker *w, int depth, const uint8_t *p, const uint8_t *end,
                         const kctx *c)
{
    size_t n = 0;
    const uint8_t *v;
    switch (w->key) {
    case LB_KEY_SERVICE:
        v = c->res ? service_name(c->res, c->res_len, &n) : NULL;
        return lb_hash(v, v ? n : 0, 1);
    case LB_KEY_RESOURCE:
        return lb_hash(c->res, c->res ? c->res_len : 0, 2);
    case LB_KEY_METRIC:
        return lb_hash(c->name, c->name ? c->name_len : 0, 3);
    case LB_KEY_STREAMID: {
        /* attributes: NumberDataPoint 7, HistogramDataPoint 9,
         * ExponentialHistogramDataPoint 1, SummaryDataPoint 7 */
        uint64_t af = c->data_kind == 9 ? 9 : c->data_kind == 10 ? 1 : 7;
        uint64_t h = lb_hash(c->res, c->res ? c->res_len : 0, 4);
        h = lb_hash(c->scope, c->scope ? c->scope_len : 0, h);
        h = lb_hash(c->name, c->name ? c->name_len : 0, h);
        h = lb_hash(&c->data_kind, 1, h);
        while (p < end) {
            ot_pbfield f;
            if (ot_pb_next(&p, end, &f) < 0)
                break;
            if (f.num == af && f.wt == 2)
                h = lb_hash(f.val, f.len, h);
        }
        return h;
    }
    case LB_KEY_TRACEID:
    default: {
        /* Span.trace_id 1; LogRecord.trace_id 9 (a record without one is
         * routed by its own bytes). */
        uint64_t want = w->sig == OT_LOGS ? 9 : 1;
        v = find_len_field(p, end, want, &n);
        if (v && n)
            return lb_hash(v, n, 5);
        (void)depth;
        return lb_hash(p, (size_t)(end - p), 6);
    }
    }
}

static int32_t push(walker *w, rnode nd)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        rnode *nv = realloc(w->v, nc * sizeof *nv);
        if (!nv) {
            w->oom = 1;
            return -1;
        }
        w->v = nv;
        w->cap = nc;
    }
    w->v[w->n] = nd;
    return (int32_t)w->n++;
}

static void walk(walker *w, int depth, uint8_t fnum, const uint8_t *fstart, const uint8_t *p,
                 const uint8_t *end, kctx c)
{
    rnode nd = {.fstart = (uint32_t)(fstart - w->w), .pstart = (uint32_t)(p - w->w),
                .pend = (uint32_t)(end - w->w), .size = 1, .owner = NONE,
                .depth = (uint8_t)depth, .fnum = fnum};
    /* What the keys below need from this level. */
    size_t l = 0;
    const uint8_t *v;
    if (depth == 1 && (v = find_len_field(p, end, 1, &l)))
        c.res = v, c.res_len = l;
    else if (depth == 2 && (v = find_len_field(p, end, 1, &l)))
        c.scope = v, c.scope_len = l;
    else if (depth == 3 && w->sig == OT_METRICS && (v = find_len_field(p, end, 1, &l)))
        c.name = v, c.name_len = l;
    else if (depth == 4)
        c.data_kind = fnum;
    if (depth == w->key_depth) {
        uint32_t b = lb_ring_get(w->ring, key_hash(w, depth, p, end, &c));
        nd.owner = (int32_t)b;
        nd.mask = 1ull << (b & 63);
        nd.items = depth == w->leaf_depth ? 1 : count_items(w, depth, p, end);
        push(w, nd);
        return;
    }
    int32_t me = push(w, nd);
    if (me < 0)
        return;
    uint32_t keylen = 0;
    int32_t owner = NONE;
    uint64_t mask = 0;
    while (p < end && !w->oom && !w->bad) {
        ot_pbfield f;
        if (ot_pb_next(&p, end, &f) < 0) {
            w->bad = 1;
            break;
        }
        if (f.wt != 2 || !is_child(w->sig, depth, f.num)) {
            keylen += (uint32_t)(f.end - f.at);
            continue;
        }
        size_t child = w->n;
        walk(w, depth + 1, (uint8_t)f.num, f.at, f.val, f.val + f.len, c);
        if (w->oom || w->bad)
            break;
        rnode *cn = &w->v[child];
        mask |= cn->mask;
        if (cn->owner == NONE)
            continue;
        owner = owner == NONE ? cn->owner : owner == cn->owner ? owner : MIXED;
    }
    rnode *m = &w->v[me];
    m->size = (uint32_t)(w->n - (size_t)me);
    m->keylen = keylen;
    m->owner = owner;
    m->mask = mask;
    if (owner >= 0) {
        /* One backend below: a leaf of it, children forgotten. */
        uint32_t items = 0;
        for (size_t j = (size_t)me + 1; j < w->n; j += w->v[j].size)
            items += w->v[j].items;
        m->items = items;
        m->size = 1;
        w->n = (size_t)me + 1;
    }
}

/* Post-order: bytes and items of every mixed node's share for backend b. */
static void sizes(const walker *w, uint32_t b, uint64_t *sz, uint32_t *items)
{
    uint64_t bit = 1ull << (b & 63);
    for (size_t i = w->n; i-- > 0;) {
        const rnode *m = &w->v[i];
        sz[i] = 0;
        items[i] = 0;
        if (m->owner != MIXED || !(m->mask & bit))
            continue;
        uint64_t s = m->keylen;
        uint32_t it = 0;
        for (size_t j = i + 1; j < i + m->size; j += w->v[j].size) {
            const rnode *c = &w->v[j];
            if (c->owner == (int32_t)b) {
                s += c->pend - c->fstart;
                it += c->items;
            } else if (c->owner == MIXED && items[j]) {
                s += ot_varint_size((uint64_t)c->fnum << 3 | 2) + ot_varint_size(sz[j]) + sz[j];
                it += items[j];
            }
        }
        sz[i] = s;
        items[i] = it;
    }
}

static uint8_t *write_node(const walker *w, size_t i, uint32_t b, const uint64_t *sz,
                           const uint32_t *items, uint8_t *o)
{
    const rnode *m = &w->v[i];
    /* Every child field became a node, so the bytes between children are
     * exactly the node's own fields: copied as they lie, order kept. */
    uint32_t cur = m->pstart;
    for (size_t j = i + 1; j < i + m->size; j += w->v[j].size) {
        const rnode *c = &w->v[j];
        memcpy(o, w->w + cur, c->fstart - cur);
        o += c->fstart - cur;
        cur = c->pend;
        if (c->owner == (int32_t)b) {
            memcpy(o, w->w + c->fstart, c->pend - c->fstart);
            o += c->pend - c->fstart;
        } else if (c->owner == MIXED && items[j]) {
            o += ot_pb_put_ld_head(o, c->fnum, sz[j]);
            o = write_node(w, j, b, sz, items, o);
        }
    }
    memcpy(o, w->w + cur, m->pend - cur);
    return o + (m->pend - cur);
}

int lb_route(ot_signal s, lb_key key, const lb_ring *ring, const uint8_t *wire, size_t len,
             lb_alloc_fn alloc, lb_emit_fn emit, void *ctx, ot_err *err)
{
    if (!ring || !ring->n_backends)
        return ot_err_set(err, "no backends");
    if (len >= UINT32_MAX)
        return ot_err_set(err, "request larger than 4 GiB");
    walker w = {.sig = s, .key = key, .ring = ring, .w = wire};
    w.leaf_depth = s == OT_METRICS ? 5 : 3;
    w.key_depth = key_depth(s, key);
    walk(&w, 0, 0, wire, wire, wire + len, (kctx){0});
    int rc = 0;
    if (w.oom || w.bad) {
        rc = ot_err_set(err, w.oom ? "out of memory" : "the request's bytes do not parse as protobuf");
        goto out;
    }
    const rnode *root = &w.v[0];
    if (root->owner == NONE)
        goto out; /* nothing to send */
    if (root->owner >= 0) {
        rc = emit(ctx, (uint32_t)root->owner, NULL, len, root->items);
        goto out;
    }
    uint64_t *sz = malloc(w.n * sizeof *sz);
    uint32_t *items = malloc(w.n * sizeof *items);
    /* a share is never larger than the whole */
    uint8_t *own = alloc ? NULL : malloc(len ? len : 1);
    if (!sz || !items || (!alloc && !own)) {
        rc = ot_err_set(err, "out of memory");
    } else {
        for (uint32_t b = 0; b < ring->n_backends && rc == 0; b++) {
            if (!(root->mask & (1ull << (b & 63))))
                continue;
            sizes(&w, b, sz, items);
            if (!items[0])
                continue;
            uint8_t *out = alloc ? alloc(ctx, sz[0]) : own;
            if (!out) {
                rc = ot_err_set(err, "out of memory");
                break;
            }
            uint8_t *e = write_node(&w, 0, b, sz, items, out);
            rc = emit(ctx, b, out, (size_t)(e - out), items[0]);
        }
    }
    free(sz);
    free(items);
    free(own);
out:
    free(w.v);
    return rc;
}
