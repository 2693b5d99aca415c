/* split.c: windows onto part of a request (see split.h), for the batch
 * processor's cuts at send_batch_max_size. Two forms of the same window:
 * on a decoded request (shallow copies sharing everything the window
 * leaves untouched) and on its protobuf bytes (copied field by field,
 * nothing decoded), which is what a cut costs when it goes well. Both walk
 * one table of the levels of a request (wlevel, by field number; the
 * decoded form reads the fields through the protobuf-c descriptors) and
 * place entries with one rule (place()), so they hold the same. */
#include "split.h"
#include "base/varint.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

typedef struct win {
    size_t lo, hi;
} win;

enum { SKIP, WHOLE, PART };

/* How an entry holding n items from item pos on falls in w. Its parent
 * spans items [ps, pe) with pe > ps. An entry without items goes with the
 * item before it inside the parent (the parent's first when none), which
 * lies in exactly one window that also takes the parent in. */
static int place(const win *w, size_t pos, size_t n, size_t ps, size_t pe)
{
    (void)pe;
    if (n == 0) {
        size_t c = pos > ps ? pos - 1 : ps;
        return w->lo <= c && c < w->hi ? WHOLE : SKIP;
    }
    if (pos + n <= w->lo || pos >= w->hi)
        return SKIP;
    if (w->lo <= pos && pos + n <= w->hi)
        return WHOLE;
    return PART;
}

static void *dup(ot_arena *a, const void *p, size_t n)
{
    return ot_arena_memdup(a, p, n);
}

static void *ptrs(ot_arena *a, size_t n)
{
    return ot_arena_alloc(a, (n ? n : 1) * sizeof(void *));
}

/* The part [lo', hi') of an array of n items that starts at item pos. */
static void overlap(const win *w, size_t pos, size_t n, size_t *a0, size_t *b0)
{
    size_t lo = w->lo > pos ? w->lo : pos;
    size_t hi = w->hi < pos + n ? w->hi : pos + n;
    *a0 = lo - pos;
    *b0 = hi - pos;
}

/* The window [lo, hi) cut to the *total items there are. Without items
 * there is nothing to split: the one window is all of it, and counts as
 * one item so that it takes in the entries. */
static win clamp(size_t lo, size_t hi, size_t *total)
{
    if (*total == 0) {
        *total = 1;
        return (win){0, 1};
    }
    if (hi > *total)
        hi = *total;
    if (lo > hi)
        lo = hi;
    return (win){lo, hi};
}

/* One level of a request: which fields hold the entries of the next level
 * (or, at the last level, the items). Both forms of window walk these. */
typedef struct wlevel {
    uint32_t kids[5];
    int n_kids;
    const struct wlevel *next; /* NULL: each kid is one item */
} wlevel;

/* Traces and logs: request.resource_* (1) → scope_* (2) → spans / log
 * records (2). Metrics: request (1) → scope_metrics (2) → metrics (2) →
 * the data holder (gauge 5, sum 7, histogram 9, exponential 10, summary
 * 11) → data_points (1). */
static const wlevel w_items2 = {{2}, 1, NULL};
static const wlevel w_scope = {{2}, 1, &w_items2};
static const wlevel w_req = {{1}, 1, &w_scope};
static const wlevel wm_points = {{1}, 1, NULL};
static const wlevel wm_metric = {{5, 7, 9, 10, 11}, 5, &wm_points};
static const wlevel wm_scope = {{2}, 1, &wm_metric};
static const wlevel wm_res = {{2}, 1, &wm_scope};
static const wlevel wm_req = {{1}, 1, &wm_res};

static const wlevel *root_level(ot_signal s)
{
    return s == OT_TRACES || s == OT_LOGS ? &w_req : s == OT_METRICS ? &wm_req : NULL;
}

/* ---- windows on a decoded request ---------------------------------------- */

static void *member(const ProtobufCMessage *m, size_t off)
{
    return (char *)m + off;
}

/* One cut of a decoded request: the window, where the copies go, and the
 * descriptors of the kid fields at each depth of the walk, looked up once
 * per message type rather than once per entry. */
typedef struct dwalk {
    const win *w;
    ot_arena *a;
    struct {
        const ProtobufCMessageDescriptor *msg;
        const ProtobufCFieldDescriptor *kid[5];
    } memo[5];
} dwalk;

static const ProtobufCFieldDescriptor *const *kid_fields(dwalk *dw, int depth, const wlevel *l,
                                                        const ProtobufCMessage *m)
{
    if (dw->memo[depth].msg != m->descriptor) {
        dw->memo[depth].msg = m->descriptor;
        for (int i = 0; i < l->n_kids; i++)
            dw->memo[depth].kid[i] = protobuf_c_message_descriptor_get_field(m->descriptor,
                                                                             l->kids[i]);
    }
    return dw->memo[depth].kid;
}

/* The entries the kid field f of m holds, as an array of *n pointers. A
 * repeated field is that already (protobuf-c keeps a count and an array of
 * pointers); a oneof member (a metric's data) is one pointer, there when
 * the case names it. */
static void **kids(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t *n)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        *n = *(const size_t *)member(m, f->quantifier_offset);
        return *(void ***)member(m, f->offset);
    }
    void **one = member(m, f->offset);
    *n = *(const uint32_t *)member(m, f->quantifier_offset) == f->id && *one ? 1 : 0;
    return one;
}

/* Items under the decoded entry m of level l. */
static size_t dcount(dwalk *dw, int depth, const wlevel *l, const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *const *f = kid_fields(dw, depth, l, m);
    size_t n = 0;
    for (int i = 0; i < l->n_kids; i++) {
        size_t nk;
        void **v = kids(m, f[i], &nk);
        if (!l->next) {
            n += nk;
            continue;
        }
        for (size_t j = 0; j < nk; j++)
            n += dcount(dw, depth + 1, l->next, v[j]);
    }
    return n;
}

/* The window of the decoded entry m of level l that holds items
 * [pos, pos + n): a shallow copy of m whose lists keep the entries in the
 * window, whole or themselves cut. The items are not copied: the copy's
 * list is the part of m's array that falls in the window. */
static ProtobufCMessage *dview(dwalk *dw, int depth, const wlevel *l, const ProtobufCMessage *m,
                               size_t pos, size_t n)
{
    ProtobufCMessage *c = dup(dw->a, m, m->descriptor->sizeof_message);
    if (!c)
        return NULL;
    const ProtobufCFieldDescriptor *const *fields = kid_fields(dw, depth, l, m);
    size_t q = pos;
    for (int i = 0; i < l->n_kids; i++) {
        const ProtobufCFieldDescriptor *f = fields[i];
        size_t nk, k = 0;
        void **v = kids(m, f, &nk), **out;
        bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        if (!l->next) {
            size_t a0, b0;
            overlap(dw->w, q, nk, &a0, &b0);
            out = v + a0;
            k = b0 - a0;
            q += nk;
        } else {
            out = repeated ? ptrs(dw->a, nk) : member(c, f->offset);
            if (!out)
                return NULL;
            for (size_t j = 0; j < nk; j++) {
                size_t items = dcount(dw, depth + 1, l->next, v[j]);
                int how = place(dw->w, q, items, pos, pos + n);
                if (how == WHOLE) {
                    out[k++] = v[j];
                } else if (how == PART) {
                    if (!(out[k++] = dview(dw, depth + 1, l->next, v[j], q, items)))
                        return NULL;
                }
                q += items;
            }
        }
        if (repeated) {
            *(size_t *)member(c, f->quantifier_offset) = k;
            *(void ***)member(c, f->offset) = out;
        }
    }
    return c;
}

ProtobufCMessage *ot_split_view(ot_signal s, const ProtobufCMessage *req, size_t lo, size_t hi,
                                ot_arena *a)
{
    const wlevel *root = root_level(s);
    if (!root)
        return NULL;
    size_t total = ot_count_items(s, req);
    win w = clamp(lo, hi, &total);
    dwalk dw = {.w = &w, .a = a};
    return dview(&dw, 0, root, req, 0, total);
}

/* ---- the same windows on protobuf bytes ---------------------------------- */

typedef struct wfield {
    const uint8_t *start, *end; /* the whole field, tag included */
    const uint8_t *payload;     /* length-delimited: the contents */
    size_t plen;
    uint32_t num;
    int wt;
} wfield;

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* The field at *p; 1 when one was read, 0 at the end, -1 on bad bytes. */
static int next_field(const uint8_t **p, const uint8_t *end, wfield *f)
{
    if (*p >= end)
        return 0;
    f->start = *p;
    uint64_t tag, v;
    if (get_varint(p, end, &tag) < 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    f->payload = NULL;
    switch (f->wt) {
    case 0:
        if (get_varint(p, end, &v) < 0)
            return -1;
        break;
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8;
        break;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4;
        break;
    case 2:
        if (get_varint(p, end, &v) < 0 || v > (uint64_t)(end - *p))
            return -1;
        f->payload = *p;
        f->plen = (size_t)v;
        *p += v;
        break;
    default: /* groups: not in OTLP */
        return -1;
    }
    f->end = *p;
    return 1;
}

static bool is_kid(const wlevel *l, const wfield *f)
{
    for (int i = 0; i < l->n_kids; i++)
        if (f->num == l->kids[i])
            return f->wt == 2;
    return false;
}

/* Items under one entry of level l; -1 on bad bytes. */
static long wcount(const wlevel *l, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    long n = 0;
    wfield f;
    int rc;
    while ((rc = next_field(&p, end, &f)) > 0) {
        if (!is_kid(l, &f))
            continue;
        long k = l->next ? wcount(l->next, f.payload, f.plen) : 1;
        if (k < 0)
            return -1;
        n += k;
    }
    return rc < 0 ? -1 : n;
}

static inline uint8_t *put_varint(uint8_t *o, uint64_t v) { return o + ot_varint_put(o, v); }

/* The window w of one entry of level l that holds items [pos, pos + n):
 * its size, and its bytes at out when out is not NULL. Fields that are
 * not entries are kept as they are; entries are placed as in the decoded
 * windows (place()), so both kinds of window hold the same. */
static long wwindow(const wlevel *l, const uint8_t *p, size_t len, size_t pos, size_t n,
                    const win *w, uint8_t *out)
{
    const uint8_t *end = p + len;
    size_t size = 0, q = pos;
    wfield f;
    int rc;
    while ((rc = next_field(&p, end, &f)) > 0) {
        size_t flen = (size_t)(f.end - f.start);
        if (!is_kid(l, &f)) {
            if (out)
                memcpy(out + size, f.start, flen);
            size += flen;
            continue;
        }
        long m = l->next ? wcount(l->next, f.payload, f.plen) : 1;
        if (m < 0)
            return -1;
        int how = place(w, q, (size_t)m, pos, pos + n);
        if (how == WHOLE) {
            if (out)
                memcpy(out + size, f.start, flen);
            size += flen;
        } else if (how == PART) {
            /* Only levels above the items have entries that split. */
            long inner = wwindow(l->next, f.payload, f.plen, q, (size_t)m, w, NULL);
            if (inner < 0)
                return -1;
            size_t head = ot_varint_size((uint64_t)f.num << 3 | 2) + ot_varint_size((uint64_t)inner);
            if (out) {
                uint8_t *o = put_varint(out + size, (uint64_t)f.num << 3 | 2);
                o = put_varint(o, (uint64_t)inner);
                wwindow(l->next, f.payload, f.plen, q, (size_t)m, w, o);
            }
            size += head + (size_t)inner;
        }
        q += (size_t)m;
    }
    return rc < 0 ? -1 : (long)size;
}

long ot_split_wire(ot_signal s, const uint8_t *buf, size_t len, size_t total, size_t lo,
                   size_t hi, uint8_t *out)
{
    const wlevel *root = root_level(s);
    if (!root || len > (size_t)LONG_MAX)
        return -1;
    long counted = wcount(root, buf, len);
    if (counted < 0 || (size_t)counted != total)
        return -1;
    win w = clamp(lo, hi, &total);
    return wwindow(root, buf, len, 0, total, &w, out);
}
