/* flush.c: the flush side of DogStatsD aggregation. Once per interval it
 * closes the epoch, reads every shard's closed slots, merges the series
 * several readers saw into one, adds the points that carried their own
 * timestamp, and builds OTLP metrics requests of a bounded number of
 * points each (a chunk): in a chunk, a ResourceMetrics per resource, a
 * Metric per name and type, a point per tag set. The OTLP
 * shapes of each DogStatsD type (Sum, Gauge, Summary, Histogram,
 * ExponentialHistogram) are decided here and nowhere else. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsdr.h"

#define M_(x) OPENTELEMETRY__PROTO__METRICS__V1__##x
#define T_(x) Opentelemetry__Proto__Metrics__V1__##x
#define C_(x) OPENTELEMETRY__PROTO__COMMON__V1__##x
#define OWN_TS 0x80 /* kind bit: a point with its own timestamp, never merged */

typedef struct fent {
    uint64_t h;
    size_t id_off, id_len, res_len, group_len;
    uint8_t kind;
    int64_t time_ns; /* own timestamp, or 0 */
    dsdr_state st;   /* merged: slot[0] holds the interval, epoch 1 when it has data */
} fent;

typedef struct fctx {
    dsdr_agg *a;
    uint64_t epoch;
    fent *v;
    size_t n, cap;
    uint32_t *map; /* index + 1; 0 empty */
    size_t map_cap;
    ot_buf ids;
    dsdr_pair res[OT_DSD_MAX_TAGS + 1], attrs[OT_DSD_MAX_TAGS + 1];
    int oom;
    /* the chunks: every max_points entries (give or take a stripe) become
     * a batch handed to fn, and the entries are freed */
    size_t max_points, npoints;
    uint64_t now, prev;
    dsdr_chunk_fn fn;
    void *fn_ctx;
    ot_err *err;
} fctx;

static ot_batch *build(fctx *c, uint64_t now, uint64_t prev, ot_err *err);

/* The samples a chunk's entries hold, in bytes: a copy of what the
 * readers kept, charged to the same budget while the chunk lives, so that
 * otelite_dogstatsd_sample_bytes shows it and the readers' accumulators
 * stop growing sooner while a flush holds many copies. */
static int64_t entry_sample_bytes(const fent *e)
{
    int t = e->st.type & ~OWN_TS;
    return dsdr_small_type(t) || t == OT_DSD_SET
               ? 0
               : (int64_t)e->st.slot[0].cap * (int64_t)sizeof(dsdr_sample);
}

static int merge_charged(fctx *c, fent *e, const dsdr_cstate *cs, unsigned w, bool has)
{
    int64_t before = entry_sample_bytes(e);
    int rc = ot_dsdr_cstate_merge(&e->st, cs, w, has);
    if (c->a->o.budget)
        atomic_fetch_add_explicit(&c->a->o.budget->held, entry_sample_bytes(e) - before,
                                  memory_order_relaxed);
    return rc;
}

/* The entries so far as one batch to fn, then an empty chunk. */
static void emit(fctx *c)
{
    if (c->n && !c->oom) {
        ot_batch *bt = build(c, c->now, c->prev, c->err);
        if (bt) {
            c->npoints += bt->items;
            c->fn(c->fn_ctx, bt);
        } else {
            c->oom = 1;
        }
    }
    int64_t held = 0;
    for (size_t i = 0; i < c->n; i++) {
        held += entry_sample_bytes(&c->v[i]);
        ot_dsdr_slot_free(&c->v[i].st.slot[0]);
    }
    if (held && c->a->o.budget)
        atomic_fetch_sub_explicit(&c->a->o.budget->held, held, memory_order_relaxed);
    c->n = 0;
    c->ids.len = 0;
    c->ids.oom = 0;
    if (c->map)
        memset(c->map, 0, c->map_cap * sizeof *c->map);
}

/* ---- identities -------------------------------------------------------- */

static int pair_key_cmp(const void *pa, const void *pb)
{
    const dsdr_pair *a = pa, *b = pb;
    size_t n = a->k.n < b->k.n ? a->k.n : b->k.n;
    int c = memcmp(a->k.p, b->k.p, n);
    if (c)
        return c;
    return a->k.n < b->k.n ? -1 : a->k.n > b->k.n;
}

static void put_str(ot_buf *b, const char *p, size_t n)
{
    uint32_t l = (uint32_t)n;
    ot_buf_append(b, &l, sizeof l);
    ot_buf_append(b, p, n);
}

static void put_pairs(ot_buf *b, dsdr_pair *p, size_t n)
{
    qsort(p, n, sizeof *p, pair_key_cmp);
    uint32_t c = (uint32_t)n;
    ot_buf_append(b, &c, sizeof c);
    for (size_t i = 0; i < n; i++) {
        put_str(b, p[i].k.p, p[i].k.n);
        put_str(b, p[i].v.p, p[i].v.n);
    }
}

/* Appends an identity to ctx->ids as a new entry (not yet in the map). */
static fent *new_entry(fctx *c, ot_dsd_str name, uint8_t kind, size_t nres, size_t nattrs)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        fent *nv = realloc(c->v, ncap * sizeof *nv);
        if (!nv) {
            c->oom = 1;
            return NULL;
        }
        c->v = nv;
        c->cap = ncap;
    }
    fent *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    ot_buf *b = &c->ids;
    e->id_off = b->len;
    put_pairs(b, c->res, nres);
    e->res_len = b->len - e->id_off;
    put_str(b, name.p, name.n);
    ot_buf_append(b, &kind, 1);
    e->group_len = b->len - e->id_off;
    put_pairs(b, c->attrs, nattrs);
    e->id_len = b->len - e->id_off;
    e->kind = kind;
    if (b->oom) {
        c->oom = 1;
        return NULL;
    }
    e->h = ot_mstore_hash(b->data + e->id_off, e->id_len, 0xd5d);
    c->n++;
    return e;
}

static bool same_id(const fctx *c, const fent *a, const fent *b)
{
    return a->h == b->h && a->id_len == b->id_len &&
           memcmp(c->ids.data + a->id_off, c->ids.data + b->id_off, a->id_len) == 0;
}

static int map_grow(fctx *c)
{
    size_t ncap = c->map_cap ? c->map_cap * 2 : 1024;
    uint32_t *m = calloc(ncap, sizeof *m);
    if (!m)
        return -1;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = c->v[i].h & (ncap - 1);
        while (m[j])
            j = (j + 1) & (ncap - 1);
        m[j] = (uint32_t)i + 1;
    }
    free(c->map);
    c->map = m;
    c->map_cap = ncap;
    return 0;
}

/* The entry just appended, or an earlier one with the same identity (the
 * appended one is then taken back). */
static fent *intern(fctx *c, fent *e)
{
    if ((c->n + 1) * 2 > c->map_cap && map_grow(c) < 0) {
        c->oom = 1;
        return NULL;
    }
    size_t j = e->h & (c->map_cap - 1);
    while (c->map[j]) {
        fent *o = &c->v[c->map[j] - 1];
        if (o != e && same_id(c, o, e)) {
            c->ids.len = e->id_off;
            c->n--;
            return o;
        }
        j = (j + 1) & (c->map_cap - 1);
    }
    c->map[j] = (uint32_t)(e - c->v) + 1;
    return e;
}

/* ---- merging shards (cstate.c merges a stream into an entry) ---------- */

static int collect(void *ctx, const ot_mstore_stream *s)
{
    fctx *c = ctx;
    const dsdr_cstate *cs = (const dsdr_cstate *)s->state;
    unsigned w = (unsigned)(c->epoch & 1);
    bool has = cs->epoch[w] == (uint32_t)c->epoch;
    bool cum = cs->type == OT_DSD_COUNTER && c->a->o.temporality == DSDR_CUMULATIVE &&
               (cs->flags & DSDR_F_CUM_LIVE);
    if (!has && !cum)
        return 0;
    ot_mstore_info info;
    ot_mstore_stream_info(s, &info);
    size_t nres = 0, nat = 0;
    ot_mstore_str k;
    ot_mstore_val v;
    while (nres <= OT_DSD_MAX_TAGS && ot_mstore_next_kv(&info.resource, &k, &v))
        c->res[nres++] = (dsdr_pair){{k.p, k.n}, {v.s.p, v.s.n}};
    while (nat <= OT_DSD_MAX_TAGS && ot_mstore_next_kv(&info.attrs, &k, &v))
        c->attrs[nat++] = (dsdr_pair){{k.p, k.n}, {v.s.p, v.s.n}};
    fent *e = new_entry(c, (ot_dsd_str){info.name.p, info.name.n}, cs->type, nres, nat);
    if (!e || !(e = intern(c, e)) || merge_charged(c, e, cs, w, has) < 0) {
        c->oom = 1;
        return 1;
    }
    return 0;
}

static void take_timestamped(fctx *c, dsdr_shard *sh, double *vals, uint8_t *signs)
{
    pthread_mutex_lock(&sh->ts_lock);
    ot_buf lines = sh->ts_lines;
    sh->ts_lines = (ot_buf)OT_BUF_INIT;
    pthread_mutex_unlock(&sh->ts_lock);
    uint64_t rng = 1;
    for (size_t off = 0; off + 4 <= lines.len && !c->oom;) {
        uint32_t n;
        memcpy(&n, lines.data + off, 4);
        const char *line = lines.data + off + 4;
        off += 4 + (size_t)n;
        ot_dsd_item it;
        if (ot_dsd_parse_line(line, n, vals, signs, &it) != OT_DSD_OK || it.kind != OT_DSD_METRIC)
            continue;
        size_t nres, nat;
        ot_dsdr_split_tags(&it, c->res, &nres, c->attrs, &nat);
        fent *e = new_entry(c, it.u.metric.name, (uint8_t)(it.u.metric.type | OWN_TS), nres, nat);
        if (!e)
            break;
        e->time_ns = it.timestamp * 1000000000LL;
        /* the readers' rule for the value, then merged as theirs are */
        dsdr_cstate one;
        memset(&one, 0, sizeof one);
        if (ot_dsdr_cstate_add(&c->a->o, &one, 0, 1, &it, e->time_ns, &rng) < 0 ||
            merge_charged(c, e, &one, 0, true) < 0)
            c->oom = 1;
        ot_dsdr_cstate_free(&c->a->o, &one);
        if (c->n >= c->max_points)
            emit(c);
    }
    ot_buf_free(&lines);
}

/* ---- building OTLP ----------------------------------------------------- */

typedef struct bctx {
    ot_arena *ar;
    const dsdr_agg_opts *o;
    uint64_t now, prev;
    const char *ids;
} bctx;

static const char *rd_str(const char **p, size_t *n)
{
    uint32_t l;
    memcpy(&l, *p, 4);
    const char *s = *p + 4;
    *p += 4 + l;
    *n = l;
    return s;
}

static ot_keyvalue *kv_str(ot_arena *ar, const char *k, size_t kn, const char *v, size_t vn)
{
    ot_keyvalue *kv = ot_arena_alloc(ar, sizeof *kv);
    ot_anyvalue *av = ot_arena_alloc(ar, sizeof *av);
    if (!kv || !av)
        return NULL;
    *kv = (ot_keyvalue)C_(KEY_VALUE__INIT);
    *av = (ot_anyvalue)C_(ANY_VALUE__INIT);
    kv->key = ot_arena_strndup(ar, k, kn);
    av->value_case = C_(ANY_VALUE__VALUE_STRING_VALUE);
    av->string_value = ot_arena_strndup(ar, v, vn);
    kv->value = av;
    return kv->key && av->string_value ? kv : NULL;
}

/* Reads a pair list at *p into an arena array; extra is room for more. */
static ot_keyvalue **rd_pairs(ot_arena *ar, const char **p, size_t *n, size_t extra)
{
    uint32_t c;
    memcpy(&c, *p, 4);
    *p += 4;
    ot_keyvalue **v = ot_arena_alloc(ar, (c + extra + 1) * sizeof *v);
    if (!v)
        return NULL;
    for (uint32_t i = 0; i < c; i++) {
        size_t kn, vn;
        const char *k = rd_str(p, &kn);
        const char *s = rd_str(p, &vn);
        if (!(v[i] = kv_str(ar, k, kn, s, vn)))
            return NULL;
    }
    *n = c;
    return v;
}

static const char *type_attr(int t)
{
    static const char *const n[] = {"counter", "gauge", "timing", "histogram", "distribution",
                                    "set"};
    return n[t];
}

/* Which OTLP shape a kind becomes. */
typedef enum { SH_SUM, SH_GAUGE, SH_SUMMARY, SH_HIST, SH_EXP } shape;

static shape shape_of(const dsdr_agg_opts *o, int t)
{
    switch (t) {
    case OT_DSD_COUNTER:
        return SH_SUM;
    case OT_DSD_GAUGE:
    case OT_DSD_SET:
        return SH_GAUGE;
    case OT_DSD_DISTRIBUTION:
        return SH_EXP;
    default:
        return o->mapping == DSDR_SUMMARY ? SH_SUMMARY
               : o->mapping == DSDR_HISTOGRAM ? SH_HIST
                                               : SH_EXP;
    }
}

/* Adds the point of e to metric m (whose data was set up by the caller). */
static int add_point(bctx *b, ot_metric *m, fent *e)
{
    int t = e->kind & 0x7f;
    bool own = e->kind & OWN_TS;
    const char *p = b->ids + e->id_off + e->group_len;
    size_t na = 0;
    ot_keyvalue **attrs = rd_pairs(b->ar, &p, &na, 1);
    if (!attrs)
        return -1;
    if (b->o->metric_type_attr) {
        const char *tn = type_attr(t);
        if (!(attrs[na++] = kv_str(b->ar, "metric_type", 11, tn, strlen(tn))))
            return -1;
    }
    dsdr_slot *s = &e->st.slot[0];
    uint64_t time = own ? (uint64_t)e->time_ns : b->now;
    uint64_t start = own ? time : b->prev;
    shape sh = shape_of(b->o, t);
    if (sh == SH_SUM || sh == SH_GAUGE) {
        ot_number_point *np = ot_arena_alloc(b->ar, sizeof *np);
        if (!np)
            return -1;
        *np = (ot_number_point)M_(NUMBER_DATA_POINT__INIT);
        np->time_unix_nano = time;
        np->attributes = attrs;
        np->n_attributes = na;
        if (t == OT_DSD_SET) {
            np->value_case = M_(NUMBER_DATA_POINT__VALUE_AS_INT);
            np->as_int = s->n;
        } else {
            np->value_case = M_(NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
            np->as_double = t == OT_DSD_GAUGE ? s->gauge : s->sum;
        }
        if (sh == SH_SUM) {
            bool cum = !own && b->o->temporality == DSDR_CUMULATIVE;
            np->start_time_unix_nano = cum ? (uint64_t)e->st.cum_start_unix_ns : start;
            if (cum)
                np->as_double = e->st.cum;
            m->sum->data_points[m->sum->n_data_points++] = np;
        } else {
            m->gauge->data_points[m->gauge->n_data_points++] = np;
        }
        return 0;
    }
    if (sh == SH_SUMMARY) {
        ot_summary_point *sp = ot_dsdr_summary_point(b->ar, s);
        if (!sp)
            return -1;
        sp->start_time_unix_nano = start;
        sp->time_unix_nano = time;
        sp->attributes = attrs;
        sp->n_attributes = na;
        m->summary->data_points[m->summary->n_data_points++] = sp;
    } else if (sh == SH_HIST) {
        ot_histogram_point *hp = ot_dsdr_histogram_point(b->ar, b->o->bounds, b->o->n_bounds, s);
        if (!hp)
            return -1;
        hp->start_time_unix_nano = start;
        hp->time_unix_nano = time;
        hp->attributes = attrs;
        hp->n_attributes = na;
        m->histogram->data_points[m->histogram->n_data_points++] = hp;
    } else {
        ot_exphistogram_point *xp = ot_dsdr_exp_point(b->ar, s);
        if (!xp)
            return -1;
        xp->start_time_unix_nano = start;
        xp->time_unix_nano = time;
        xp->attributes = attrs;
        xp->n_attributes = na;
        m->exponential_histogram->data_points[m->exponential_histogram->n_data_points++] = xp;
    }
    return 0;
}

/* A metric for the group starting at entry i of npts points. */
static ot_metric *new_metric(bctx *b, fent *e, size_t npts)
{
    int t = e->kind & 0x7f;
    bool own = e->kind & OWN_TS;
    const char *p = b->ids + e->id_off + e->res_len;
    size_t nn;
    const char *name = rd_str(&p, &nn);
    ot_metric *m = ot_arena_alloc(b->ar, sizeof *m);
    if (!m)
        return NULL;
    *m = (ot_metric)M_(METRIC__INIT);
    m->name = ot_arena_strndup(b->ar, name, nn);
    void **pts = ot_arena_alloc(b->ar, npts * sizeof(void *));
    if (!m->name || !pts)
        return NULL;
    int delta = M_(AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA);
    switch (shape_of(b->o, t)) {
    case SH_SUM:
        m->data_case = M_(METRIC__DATA_SUM);
        m->sum = ot_arena_alloc(b->ar, sizeof *m->sum);
        if (!m->sum)
            return NULL;
        *m->sum = (T_(Sum))M_(SUM__INIT);
        m->sum->is_monotonic = 1;
        m->sum->aggregation_temporality =
            (!own && b->o->temporality == DSDR_CUMULATIVE)
                ? M_(AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE)
                : delta;
        m->sum->data_points = (ot_number_point **)pts;
        break;
    case SH_GAUGE:
        m->data_case = M_(METRIC__DATA_GAUGE);
        m->gauge = ot_arena_alloc(b->ar, sizeof *m->gauge);
        if (!m->gauge)
            return NULL;
        *m->gauge = (T_(Gauge))M_(GAUGE__INIT);
        m->gauge->data_points = (ot_number_point **)pts;
        break;
    case SH_SUMMARY:
        m->data_case = M_(METRIC__DATA_SUMMARY);
        m->summary = ot_arena_alloc(b->ar, sizeof *m->summary);
        if (!m->summary)
            return NULL;
        *m->summary = (T_(Summary))M_(SUMMARY__INIT);
        m->summary->data_points = (ot_summary_point **)pts;
        break;
    case SH_HIST:
        m->data_case = M_(METRIC__DATA_HISTOGRAM);
        m->histogram = ot_arena_alloc(b->ar, sizeof *m->histogram);
        if (!m->histogram)
            return NULL;
        *m->histogram = (T_(Histogram))M_(HISTOGRAM__INIT);
        m->histogram->aggregation_temporality = delta;
        m->histogram->data_points = (ot_histogram_point **)pts;
        break;
    case SH_EXP:
        m->data_case = M_(METRIC__DATA_EXPONENTIAL_HISTOGRAM);
        m->exponential_histogram = ot_arena_alloc(b->ar, sizeof *m->exponential_histogram);
        if (!m->exponential_histogram)
            return NULL;
        *m->exponential_histogram = (T_(ExponentialHistogram))M_(EXPONENTIAL_HISTOGRAM__INIT);
        m->exponential_histogram->aggregation_temporality = delta;
        m->exponential_histogram->data_points = (ot_exphistogram_point **)pts;
        break;
    }
    return m;
}

static const char *g_ids; /* for qsort's comparator; the flush thread only */

static int cmp_entry(const void *pa, const void *pb)
{
    const fent *a = pa, *b = pb;
    size_t n = a->id_len < b->id_len ? a->id_len : b->id_len;
    int c = memcmp(g_ids + a->id_off, g_ids + b->id_off, n);
    if (c)
        return c;
    if (a->id_len != b->id_len)
        return a->id_len < b->id_len ? -1 : 1;
    return a->time_ns < b->time_ns ? -1 : a->time_ns > b->time_ns;
}

static bool same_prefix(const char *ids, const fent *a, const fent *b, size_t la, size_t lb)
{
    return la == lb && memcmp(ids + a->id_off, ids + b->id_off, la) == 0;
}

static ot_batch *build(fctx *c, uint64_t now, uint64_t prev, ot_err *err)
{
    g_ids = c->ids.data;
    qsort(c->v, c->n, sizeof *c->v, cmp_entry);
    size_t nres = 0;
    for (size_t i = 0; i < c->n; i++)
        if (i == 0 || !same_prefix(c->ids.data, &c->v[i], &c->v[i - 1], c->v[i].res_len,
                                   c->v[i - 1].res_len))
            nres++;
    ot_arena *ar = ot_arena_new(64 * 1024);
    ot_metrics_req *req = ar ? ot_arena_alloc(ar, sizeof *req) : NULL;
    ot_resource_metrics **rms = req ? ot_arena_alloc(ar, nres * sizeof *rms) : NULL;
    if (!rms)
        goto oom;
    *req = (ot_metrics_req)OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req->resource_metrics = rms;
    bctx b = {.ar = ar, .o = &c->a->o, .now = now, .prev = prev, .ids = c->ids.data};
    for (size_t i = 0; i < c->n;) {
        size_t j = i, nmet = 0;
        while (j < c->n && same_prefix(c->ids.data, &c->v[i], &c->v[j], c->v[i].res_len,
                                       c->v[j].res_len)) {
            if (j == i || !same_prefix(c->ids.data, &c->v[j], &c->v[j - 1], c->v[j].group_len,
                                       c->v[j - 1].group_len))
                nmet++;
            j++;
        }
        ot_resource_metrics *rm = ot_arena_alloc(ar, sizeof *rm);
        ot_resource *res = ot_arena_alloc(ar, sizeof *res);
        ot_scope_metrics *sm = ot_arena_alloc(ar, sizeof *sm);
        ot_scope_metrics **sms = ot_arena_alloc(ar, sizeof *sms);
        ot_scope *scope = ot_arena_alloc(ar, sizeof *scope);
        ot_metric **ms = ot_arena_alloc(ar, nmet * sizeof *ms);
        if (!rm || !res || !sm || !sms || !scope || !ms)
            goto oom;
        *rm = (ot_resource_metrics)M_(RESOURCE_METRICS__INIT);
        *res = (ot_resource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        *sm = (ot_scope_metrics)M_(SCOPE_METRICS__INIT);
        *scope = (ot_scope)C_(INSTRUMENTATION_SCOPE__INIT);
        scope->name = "otelite/dogstatsd";
        const char *p = c->ids.data + c->v[i].id_off;
        if (!(res->attributes = rd_pairs(ar, &p, &res->n_attributes, 0)))
            goto oom;
        rm->resource = res;
        rm->n_scope_metrics = 1;
        rm->scope_metrics = sms;
        sms[0] = sm;
        sm->scope = scope;
        sm->metrics = ms;
        for (size_t k = i; k < j;) {
            size_t l = k;
            while (l < j && same_prefix(c->ids.data, &c->v[k], &c->v[l], c->v[k].group_len,
                                        c->v[l].group_len))
                l++;
            ot_metric *m = new_metric(&b, &c->v[k], l - k);
            if (!m)
                goto oom;
            for (size_t q = k; q < l; q++)
                if (add_point(&b, m, &c->v[q]) < 0)
                    goto oom;
            ms[sm->n_metrics++] = m;
            k = l;
        }
        rms[req->n_resource_metrics++] = rm;
        i = j;
    }
    ot_batch *bt = ot_batch_adopt(OT_METRICS, ar, &req->base);
    if (!bt)
        ot_err_set(err, "out of memory");
    return bt;
oom:
    ot_arena_free(ar);
    ot_err_set(err, "out of memory");
    return NULL;
}

int ot_dsdr_agg_flush_chunks(dsdr_agg *a, int64_t unix_ns, int64_t mono_ns, size_t max_points,
                             dsdr_chunk_fn fn, void *ctx, size_t *npoints, ot_err *err)
{
    fctx *c = calloc(1, sizeof *c);
    double *vals = malloc(OT_DSD_MAX_VALUES * sizeof *vals);
    uint8_t *signs = malloc(OT_DSD_MAX_VALUES);
    int rc = 0;
    *npoints = 0;
    if (!c || !vals || !signs) {
        ot_err_set(err, "out of memory");
        rc = -1;
        goto out;
    }
    c->a = a;
    c->ids = (ot_buf)OT_BUF_INIT;
    c->max_points = max_points ? max_points : 1;
    c->now = (uint64_t)unix_ns;
    c->prev = (uint64_t)a->last_flush_unix_ns;
    c->fn = fn;
    c->fn_ctx = ctx;
    c->err = err;
    c->epoch = ot_dsdr_agg_close_epoch(a);
    /* Stripe by stripe across every shard: one series seen by several
     * readers is in the same stripe of each (the key hash is the store's,
     * not the shard's), so it is merged whole before its chunk goes, and
     * the flush holds a chunk and a stripe's share of the series rather
     * than all of them. */
    for (size_t k = 0; k < OT_MSTORE_STRIPES && !c->oom; k++) {
        for (unsigned i = 0; i < a->n && !c->oom; i++)
            for (int s = 0; s < 2 && !c->oom; s++)
                ot_mstore_visit_stripe(a->sh[i].st[s], k, collect, c);
        if (c->n >= c->max_points)
            emit(c);
    }
    for (unsigned i = 0; i < a->n && !c->oom; i++)
        take_timestamped(c, &a->sh[i], vals, signs);
    emit(c);
    if (c->oom) {
        if (err && !err->msg[0])
            ot_err_set(err, "out of memory");
        rc = -1;
    }
    *npoints = c->npoints;
    free(c->v);
    free(c->map);
    ot_buf_free(&c->ids);
out:
    a->last_flush_unix_ns = unix_ns;
    /* expiry here, on the thread that reads the closed slots: a series'
     * buffers are never freed while this flush still reads them */
    for (unsigned i = 0; i < a->n; i++)
        for (int k = 0; k < 2; k++)
            ot_mstore_expire(a->sh[i].st[k], mono_ns);
    free(c);
    free(vals);
    free(signs);
    return rc;
}

static void keep_one(void *ctx, ot_batch *b)
{
    *(ot_batch **)ctx = b; /* one chunk: max_points is unbounded */
}

ot_batch *ot_dsdr_agg_flush(dsdr_agg *a, int64_t unix_ns, int64_t mono_ns, size_t *npoints,
                            ot_err *err)
{
    ot_batch *b = NULL;
    if (ot_dsdr_agg_flush_chunks(a, unix_ns, mono_ns, SIZE_MAX, keep_one, &b, npoints, err) < 0 &&
        b) {
        ot_batch_unref(b);
        b = NULL;
    }
    return b;
}
