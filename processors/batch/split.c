/* split.c: windows onto part of a request (see split.h), for the batch
 * processor's cuts at send_batch_max_size. Two forms of the same window:
 * on a decoded request (shallow copies sharing everything the window
 * leaves untouched) and on its protobuf bytes (copied field by field,
 * nothing decoded), which is what a cut costs when it goes well. Both place
 * entries with one rule (place()), so they hold the same. */
#include "split.h"

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

/* ---- traces ------------------------------------------------------------ */

static size_t rs_items(const ot_resource_spans *rs)
{
    size_t n = 0;
    for (size_t j = 0; j < rs->n_scope_spans; j++)
        n += rs->scope_spans[j]->n_spans;
    return n;
}

static ot_resource_spans *part_rs(ot_arena *a, const win *w, const ot_resource_spans *rs,
                                  size_t pos, size_t n)
{
    ot_resource_spans *c = dup(a, rs, sizeof *rs);
    if (!c || !(c->scope_spans = ptrs(a, rs->n_scope_spans)))
        return NULL;
    c->n_scope_spans = 0;
    size_t q = pos;
    for (size_t j = 0; j < rs->n_scope_spans; j++) {
        ot_scope_spans *ss = rs->scope_spans[j];
        size_t m = ss->n_spans;
        int how = place(w, q, m, pos, pos + n);
        if (how == WHOLE) {
            c->scope_spans[c->n_scope_spans++] = ss;
        } else if (how == PART) {
            ot_scope_spans *cs = dup(a, ss, sizeof *ss);
            if (!cs)
                return NULL;
            size_t a0, b0;
            overlap(w, q, m, &a0, &b0);
            cs->spans = ss->spans + a0;
            cs->n_spans = b0 - a0;
            c->scope_spans[c->n_scope_spans++] = cs;
        }
        q += m;
    }
    return c;
}

static ProtobufCMessage *view_traces(const ot_trace_req *r, const win *w, size_t total,
                                     ot_arena *a)
{
    ot_trace_req *v = dup(a, r, sizeof *r);
    if (!v || !(v->resource_spans = ptrs(a, r->n_resource_spans)))
        return NULL;
    v->n_resource_spans = 0;
    size_t pos = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        ot_resource_spans *rs = r->resource_spans[i];
        size_t n = rs_items(rs);
        int how = place(w, pos, n, 0, total);
        if (how == WHOLE) {
            v->resource_spans[v->n_resource_spans++] = rs;
        } else if (how == PART) {
            ot_resource_spans *c = part_rs(a, w, rs, pos, n);
            if (!c)
                return NULL;
            v->resource_spans[v->n_resource_spans++] = c;
        }
        pos += n;
    }
    return &v->base;
}

/* ---- logs -------------------------------------------------------------- */

static size_t rl_items(const ot_resource_logs *rl)
{
    size_t n = 0;
    for (size_t j = 0; j < rl->n_scope_logs; j++)
        n += rl->scope_logs[j]->n_log_records;
    return n;
}

static ot_resource_logs *part_rl(ot_arena *a, const win *w, const ot_resource_logs *rl,
                                 size_t pos, size_t n)
{
    ot_resource_logs *c = dup(a, rl, sizeof *rl);
    if (!c || !(c->scope_logs = ptrs(a, rl->n_scope_logs)))
        return NULL;
    c->n_scope_logs = 0;
    size_t q = pos;
    for (size_t j = 0; j < rl->n_scope_logs; j++) {
        ot_scope_logs *sl = rl->scope_logs[j];
        size_t m = sl->n_log_records;
        int how = place(w, q, m, pos, pos + n);
        if (how == WHOLE) {
            c->scope_logs[c->n_scope_logs++] = sl;
        } else if (how == PART) {
            ot_scope_logs *cs = dup(a, sl, sizeof *sl);
            if (!cs)
                return NULL;
            size_t a0, b0;
            overlap(w, q, m, &a0, &b0);
            cs->log_records = sl->log_records + a0;
            cs->n_log_records = b0 - a0;
            c->scope_logs[c->n_scope_logs++] = cs;
        }
        q += m;
    }
    return c;
}

static ProtobufCMessage *view_logs(const ot_logs_req *r, const win *w, size_t total, ot_arena *a)
{
    ot_logs_req *v = dup(a, r, sizeof *r);
    if (!v || !(v->resource_logs = ptrs(a, r->n_resource_logs)))
        return NULL;
    v->n_resource_logs = 0;
    size_t pos = 0;
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        ot_resource_logs *rl = r->resource_logs[i];
        size_t n = rl_items(rl);
        int how = place(w, pos, n, 0, total);
        if (how == WHOLE) {
            v->resource_logs[v->n_resource_logs++] = rl;
        } else if (how == PART) {
            ot_resource_logs *c = part_rl(a, w, rl, pos, n);
            if (!c)
                return NULL;
            v->resource_logs[v->n_resource_logs++] = c;
        }
        pos += n;
    }
    return &v->base;
}

/* ---- metrics ----------------------------------------------------------- */

#define MCASE(x) OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_##x

static size_t metric_points(const ot_metric *m)
{
    switch (m->data_case) {
    case MCASE(GAUGE):
        return m->gauge ? m->gauge->n_data_points : 0;
    case MCASE(SUM):
        return m->sum ? m->sum->n_data_points : 0;
    case MCASE(HISTOGRAM):
        return m->histogram ? m->histogram->n_data_points : 0;
    case MCASE(EXPONENTIAL_HISTOGRAM):
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case MCASE(SUMMARY):
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

/* The metric with only points [a0, b0): its own copy of the metric and of
 * its data holder, the points themselves shared. */
#define SLICE(field)                                                 \
    do {                                                             \
        c->field = dup(a, m->field, sizeof *m->field);               \
        if (!c->field)                                               \
            return NULL;                                             \
        c->field->data_points = m->field->data_points + a0;          \
        c->field->n_data_points = b0 - a0;                           \
    } while (0)

static ot_metric *slice_metric(ot_arena *a, const ot_metric *m, size_t a0, size_t b0)
{
    ot_metric *c = dup(a, m, sizeof *m);
    if (!c)
        return NULL;
    switch (m->data_case) {
    case MCASE(GAUGE):
        SLICE(gauge);
        break;
    case MCASE(SUM):
        SLICE(sum);
        break;
    case MCASE(HISTOGRAM):
        SLICE(histogram);
        break;
    case MCASE(EXPONENTIAL_HISTOGRAM):
        SLICE(exponential_histogram);
        break;
    case MCASE(SUMMARY):
        SLICE(summary);
        break;
    default:
        break;
    }
    return c;
}

static size_t sm_items(const ot_scope_metrics *sm)
{
    size_t n = 0;
    for (size_t k = 0; k < sm->n_metrics; k++)
        n += metric_points(sm->metrics[k]);
    return n;
}

static size_t rm_items(const ot_resource_metrics *rm)
{
    size_t n = 0;
    for (size_t j = 0; j < rm->n_scope_metrics; j++)
        n += sm_items(rm->scope_metrics[j]);
    return n;
}

static ot_scope_metrics *part_sm(ot_arena *a, const win *w, const ot_scope_metrics *sm,
                                 size_t pos, size_t n)
{
    ot_scope_metrics *c = dup(a, sm, sizeof *sm);
    if (!c || !(c->metrics = ptrs(a, sm->n_metrics)))
        return NULL;
    c->n_metrics = 0;
    size_t q = pos;
    for (size_t k = 0; k < sm->n_metrics; k++) {
        ot_metric *m = sm->metrics[k];
        size_t p = metric_points(m);
        int how = place(w, q, p, pos, pos + n);
        if (how == WHOLE) {
            c->metrics[c->n_metrics++] = m;
        } else if (how == PART) {
            size_t a0, b0;
            overlap(w, q, p, &a0, &b0);
            ot_metric *cm = slice_metric(a, m, a0, b0);
            if (!cm)
                return NULL;
            c->metrics[c->n_metrics++] = cm;
        }
        q += p;
    }
    return c;
}

static ot_resource_metrics *part_rm(ot_arena *a, const win *w, const ot_resource_metrics *rm,
                                    size_t pos, size_t n)
{
    ot_resource_metrics *c = dup(a, rm, sizeof *rm);
    if (!c || !(c->scope_metrics = ptrs(a, rm->n_scope_metrics)))
        return NULL;
    c->n_scope_metrics = 0;
    size_t q = pos;
    for (size_t j = 0; j < rm->n_scope_metrics; j++) {
        ot_scope_metrics *sm = rm->scope_metrics[j];
        size_t m = sm_items(sm);
        int how = place(w, q, m, pos, pos + n);
        if (how == WHOLE) {
            c->scope_metrics[c->n_scope_metrics++] = sm;
        } else if (how == PART) {
            ot_scope_metrics *cs = part_sm(a, w, sm, q, m);
            if (!cs)
                return NULL;
            c->scope_metrics[c->n_scope_metrics++] = cs;
        }
        q += m;
    }
    return c;
}

static ProtobufCMessage *view_metrics(const ot_metrics_req *r, const win *w, size_t total,
                                      ot_arena *a)
{
    ot_metrics_req *v = dup(a, r, sizeof *r);
    if (!v || !(v->resource_metrics = ptrs(a, r->n_resource_metrics)))
        return NULL;
    v->n_resource_metrics = 0;
    size_t pos = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        ot_resource_metrics *rm = r->resource_metrics[i];
        size_t n = rm_items(rm);
        int how = place(w, pos, n, 0, total);
        if (how == WHOLE) {
            v->resource_metrics[v->n_resource_metrics++] = rm;
        } else if (how == PART) {
            ot_resource_metrics *c = part_rm(a, w, rm, pos, n);
            if (!c)
                return NULL;
            v->resource_metrics[v->n_resource_metrics++] = c;
        }
        pos += n;
    }
    return &v->base;
}

ProtobufCMessage *ot_split_view(ot_signal s, const ProtobufCMessage *req, size_t lo, size_t hi,
                                ot_arena *a)
{
    size_t total = ot_count_items(s, req);
    if (hi > total)
        hi = total;
    if (lo > hi)
        lo = hi;
    /* Without items there is nothing to split: the one window is all of it. */
    if (total == 0) {
        lo = 0;
        hi = 1;
        total = 1;
    }
    win w = {lo, hi};
    switch (s) {
    case OT_TRACES:
        return view_traces((const ot_trace_req *)req, &w, total, a);
    case OT_METRICS:
        return view_metrics((const ot_metrics_req *)req, &w, total, a);
    case OT_LOGS:
        return view_logs((const ot_logs_req *)req, &w, total, a);
    default:
        return NULL;
    }
}

/* ---- the same windows on protobuf bytes -------------------------------- */

/* One level of a request, as the wire sees it: which fields hold the
 * entries of the next level (or, at the last level, the items). */
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

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

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
            size_t head = varint_len((uint64_t)f.num << 3 | 2) + varint_len((uint64_t)inner);
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
    const wlevel *root = s == OT_TRACES || s == OT_LOGS ? &w_req
                         : s == OT_METRICS              ? &wm_req
                                                        : NULL;
    if (!root || len > (size_t)LONG_MAX)
        return -1;
    long counted = wcount(root, buf, len);
    if (counted < 0 || (size_t)counted != total)
        return -1;
    if (hi > total)
        hi = total;
    if (lo > hi)
        lo = hi;
    if (total == 0) {
        lo = 0;
        hi = 1;
        total = 1;
    }
    win w = {lo, hi};
    return wwindow(root, buf, len, 0, total, &w, out);
}
