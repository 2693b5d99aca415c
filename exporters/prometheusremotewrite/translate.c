/* translate.c: OTLP metrics into remote-write series. Every point goes
 * through the stream store (store/pacc.h), which turns deltas into running
 * totals and tells whether the point is newer than its series' last one:
 * only those are sent, so each series' samples leave in time order and a
 * repeated point is not sent twice (Prometheus refuses a whole request for
 * one out-of-order sample). Names and labels follow the shared rules
 * (store/promname.h); a resource's labels are worked out once per scope,
 * a metric's name once per metric, a point's attribute labels through the
 * shared plan, then merged with __name__, le / quantile and the external
 * labels in name order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prw.h"

#define MAX_LABELS (OT_PROM_MAX_LABELS * 2 + 16)
#define TARGETS_MAX 4096 /* resources whose last target_info time is kept */

/* A list of labels whose strings live in one buffer (offsets until
 * prw_labels_fix turns them into pointers). */
typedef struct lset {
    ot_buf str;
    size_t off[MAX_LABELS][2];
    uint32_t len[MAX_LABELS][2];
    prw_label l[MAX_LABELS];
    size_t n;
} lset;

typedef struct target_ent {
    uint64_t hash; /* 0: empty */
    int64_t last_ms;
} target_ent;

struct prw_core {
    prw_opts o;
    pthread_mutex_t mu;
    ot_mstore *store;
    ot_mstore_key key;
    ot_prom_plan plan;
    ot_buf tmp, tmp2;

    /* The batch being translated. */
    prw_writer w;
    prw_stats *st;
    const ot_metric *metric;
    bool need_res, need_metric, need_target;
    lset res;    /* the resource's and scope's labels, and the external ones */
    lset target; /* target_info's labels */
    size_t n_other;
    uint64_t res_hash;
    int64_t res_max_ms; /* latest point sent of the current resource */
    ot_buf fam, unit;   /* the metric's family name, its unit suffix */
    int md_type;
    uint64_t md_gen;    /* the request its metadata went into, + 1 */
    lset pt;            /* a point's own labels */
    prw_label out[MAX_LABELS + 2];
    ot_buf sfx;         /* __name__ with a suffix */
    ot_buf lv;          /* an le or quantile value */
    target_ent *targets;
    size_t n_targets;
    int err;
};

static void lset_reset(lset *s)
{
    ot_buf_reset(&s->str);
    s->n = 0;
}

static void lset_add(void *ctx, const char *name, size_t nl, const char *val, size_t vl)
{
    lset *s = ctx;
    if (!vl || !nl || s->n >= MAX_LABELS) /* an empty value is no label in Prometheus */
        return;
    s->off[s->n][0] = s->str.len;
    s->len[s->n][0] = (uint32_t)nl;
    ot_buf_append(&s->str, name, nl);
    s->off[s->n][1] = s->str.len;
    s->len[s->n][1] = (uint32_t)vl;
    ot_buf_append(&s->str, val, vl);
    s->n++;
}

static int cmp_label(const prw_label *a, const prw_label *b)
{
    size_t m = a->nl < b->nl ? a->nl : b->nl;
    int c = memcmp(a->name, b->name, m);
    return c ? c : (a->nl > b->nl) - (a->nl < b->nl);
}

/* Pointers from offsets, sorted by name (stable), and later labels of a
 * name already there dropped: the first added wins. */
static void lset_fix(lset *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->l[i] = (prw_label){s->str.data + s->off[i][0], s->str.data + s->off[i][1],
                              s->len[i][0], s->len[i][1]};
    for (size_t i = 1; i < s->n; i++) { /* insertion sort: stable, n is small */
        prw_label x = s->l[i];
        size_t j = i;
        while (j > 0 && cmp_label(&s->l[j - 1], &x) > 0) {
            s->l[j] = s->l[j - 1];
            j--;
        }
        s->l[j] = x;
    }
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!o || cmp_label(&s->l[o - 1], &s->l[i]) != 0)
            s->l[o++] = s->l[i];
    s->n = o;
}

static void on_remove(void *ctx, ot_mstore_stream *s, ot_mstore_why why)
{
    (void)ctx, (void)s, (void)why;
}

prw_core *prw_core_new(const prw_opts *o, ot_err *err)
{
    prw_core *c = calloc(1, sizeof *c);
    if (!c || !(c->targets = calloc(TARGETS_MAX * 2, sizeof *c->targets))) {
        free(c);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    c->o = *o;
    ot_mstore_opts so = {
        .state_size = OT_PACC_NUMBER_STATE,
        .max_bytes = o->max_store_bytes,
        .max_idle_ns = o->expiration_ns,
        .on_remove = on_remove,
        .ctx = c,
    };
    if (!(c->store = ot_mstore_new(&so, err))) {
        free(c->targets);
        free(c);
        return NULL;
    }
    c->key = (ot_mstore_key)OT_MSTORE_KEY_INIT;
    prw_writer_init(&c->w, o->max_bytes, NULL, NULL);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void lset_free(lset *s) { ot_buf_free(&s->str); }

void prw_core_free(prw_core *c)
{
    if (!c)
        return;
    ot_mstore_free(c->store);
    ot_mstore_key_free(&c->key);
    ot_prom_plan_free(&c->plan);
    ot_buf_free(&c->tmp);
    ot_buf_free(&c->tmp2);
    lset_free(&c->res);
    lset_free(&c->target);
    lset_free(&c->pt);
    ot_buf_free(&c->fam);
    ot_buf_free(&c->unit);
    ot_buf_free(&c->sfx);
    ot_buf_free(&c->lv);
    prw_writer_free(&c->w);
    free(c->targets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

size_t prw_core_expire(prw_core *c, int64_t now_ns) { return ot_mstore_expire(c->store, now_ns); }

int prw_core_sweeper_start(prw_core *c, int64_t interval_ns, ot_err *err)
{
    return ot_mstore_sweeper_start(c->store, interval_ns, err);
}

size_t prw_core_series(prw_core *c)
{
    ot_mstore_stats s;
    ot_mstore_stats_get(c->store, &s);
    return s.streams;
}

/* ---- per resource and per metric ------------------------------------------ */

static void add_external(prw_core *c, lset *s)
{
    for (size_t i = 0; i < c->o.n_ext; i++) {
        ot_buf_reset(&c->tmp2);
        ot_prom_label_name(&c->tmp2, c->o.ext_keys[i], strlen(c->o.ext_keys[i]));
        if (!c->tmp2.oom)
            lset_add(s, c->tmp2.data, c->tmp2.len, c->o.ext_vals[i], strlen(c->o.ext_vals[i]));
    }
}

static void resolve_resource(prw_core *c, const ot_mstore_info *in)
{
    lset_reset(&c->res);
    bool target = c->need_target;
    if (target) {
        lset_reset(&c->target);
        c->res_hash = ot_mstore_hash(in->resource.p, (size_t)(in->resource.end - in->resource.p), 5);
        c->res_max_ms = 0;
    }
    ot_prom_resource(in, c->o.resource_to_labels, lset_add, NULL, &c->res, &c->tmp);
    if (target) {
        c->n_other = ot_prom_resource(in, false, NULL, lset_add, &c->target, &c->tmp);
        lset_add(&c->target, "__name__", 8, "target_info", 11);
        add_external(c, &c->target);
        lset_fix(&c->target);
        c->need_target = false;
    }
    add_external(c, &c->res);
    lset_fix(&c->res);
    c->need_res = false;
}

static int md_type_of(const ot_mstore_info *in)
{
    switch (in->type) {
    case OT_MSTORE_SUM:
        return in->monotonic ? PRW_MD_COUNTER : PRW_MD_GAUGE;
    case OT_MSTORE_HISTOGRAM:
    case OT_MSTORE_EXP_HISTOGRAM:
        return PRW_MD_HISTOGRAM;
    case OT_MSTORE_SUMMARY:
        return PRW_MD_SUMMARY;
    default:
        return PRW_MD_GAUGE;
    }
}

static void resolve_metric(prw_core *c, const ot_mstore_info *in)
{
    ot_buf_reset(&c->fam);
    ot_prom_metric_name(&c->fam, c->o.ns, in->name.p, in->name.n, in->unit.p, in->unit.n, in->type,
                        in->monotonic, c->o.suffixes, &c->unit);
    c->md_type = md_type_of(in);
    c->md_gen = 0;
    c->need_metric = false;
}

/* ---- series --------------------------------------------------------------- */

/* The labels of one series into c->out: the resource's, the point's (a
 * point attribute of a resource label's name gives way), __name__ (the
 * family name and suffix) and the extra label (le, quantile; it wins over
 * a point attribute of its name). */
static size_t series_labels(prw_core *c, const char *suffix, const char *xname, const char *xval,
                            size_t xl)
{
    ot_buf_reset(&c->sfx);
    ot_buf_append(&c->sfx, c->fam.data ? c->fam.data : "", c->fam.len);
    ot_buf_puts(&c->sfx, suffix);
    if (c->sfx.oom)
        return 0;
    prw_label extra[2] = {{"__name__", c->sfx.data, 8, (uint32_t)c->sfx.len}};
    size_t ne = 1;
    if (xname) {
        extra[1] = (prw_label){xname, xval, (uint32_t)strlen(xname), (uint32_t)xl};
        if (cmp_label(&extra[0], &extra[1]) > 0) {
            prw_label t = extra[0];
            extra[0] = extra[1];
            extra[1] = t;
        }
        ne = 2;
    }
    /* Three sorted lists merged: extras first on a tie, then resource, then point. */
    const prw_label *a = c->res.l, *b = c->pt.l;
    size_t na = c->res.n, nb = c->pt.n, i = 0, j = 0, k = 0, n = 0;
    while (i < ne || j < na || k < nb) {
        const prw_label *best = NULL;
        int from = 0;
        if (i < ne)
            best = &extra[i], from = 0;
        if (j < na && (!best || cmp_label(&a[j], best) < 0))
            best = &a[j], from = 1;
        if (k < nb && (!best || cmp_label(&b[k], best) < 0))
            best = &b[k], from = 2;
        if (!n || cmp_label(&c->out[n - 1], best) != 0)
            c->out[n++] = *best;
        if (from == 0)
            i++;
        else if (from == 1)
            j++;
        else
            k++;
    }
    return n;
}

static void sample(prw_core *c, const char *suffix, const char *xname, double xv, double v,
                   int64_t ts_ms)
{
    size_t xl = 0;
    if (xname) {
        ot_buf_reset(&c->lv);
        ot_prom_value(&c->lv, xv, false);
        xl = c->lv.len;
    }
    size_t n = series_labels(c, suffix, xname, c->lv.data, xl);
    if (n && prw_sample(&c->w, c->out, n, v, ts_ms) < 0)
        c->err = -1;
}

static double stale_nan(void)
{
    uint64_t u = PRW_STALE_NAN_BITS;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void native(prw_core *c, ot_pacc_state *s, int64_t ts_ms)
{
    ot_pacc_exph *e = ot_pacc_exph_of(s);
    if (e->scale < -4) { /* coarser than any schema Prometheus has */
        c->st->invalid++;
        return;
    }
    const uint64_t *cn = ot_pacc_exp_counts(s);
    /* OTLP bucket i of offset o is (base^(o+i), base^(o+i+1)]: Prometheus'
     * bucket o+i+1. */
    prw_nhist h = {.count = s->count, .zero_count = e->zero_count,
                   .sum = (s->flags & OT_PACC_F_HAS_SUM) ? s->value : 0,
                   .zero_threshold = e->zero_threshold, .schema = e->scale,
                   .neg_off = e->neg_off + 1, .pos_off = e->pos_off + 1,
                   .neg = cn, .pos = cn + e->nneg, .nneg = e->nneg, .npos = e->npos,
                   .ts_ms = ts_ms};
    size_t n = series_labels(c, "", NULL, NULL, 0);
    if (n && prw_histogram(&c->w, c->out, n, &h) < 0)
        c->err = -1;
}

static void on_point(void *ctx, const ot_mstore_stream *st, ot_pacc_state *s, int64_t ts_ns,
                     bool fresh)
{
    prw_core *c = ctx;
    if (ts_ns <= 0) { /* no time: Prometheus would refuse the whole request */
        c->st->invalid++;
        return;
    }
    if (!fresh) {
        c->st->stale++;
        return;
    }
    if (c->need_res || c->need_metric) {
        ot_mstore_info in;
        ot_mstore_stream_info(st, &in);
        if (c->need_res)
            resolve_resource(c, &in);
        if (c->need_metric)
            resolve_metric(c, &in);
    }
    if (c->o.metadata && c->md_gen != c->w.gen + 1) {
        const char *help = c->metric->description ? c->metric->description : "";
        if (prw_metadata(&c->w, c->md_type, c->fam.data, c->fam.len, help, strlen(help),
                         c->unit.data ? c->unit.data : "", c->unit.len) < 0)
            c->err = -1;
        c->md_gen = c->w.gen + 1;
    }
    ot_mstore_iter it;
    ot_mstore_stream_attrs(st, &it);
    ot_mstore_val vals[OT_PROM_MAX_LABELS];
    lset_reset(&c->pt);
    if (ot_prom_plan_for(&c->plan, it, NULL, NULL, 0, vals, &c->tmp))
        ot_prom_plan_labels(&c->plan, vals, lset_add, &c->pt, &c->tmp);
    lset_fix(&c->pt);
    if (c->pt.str.oom || c->res.str.oom) {
        c->err = -1;
        return;
    }
    int64_t ts = ts_ns / 1000000;
    if (ts > c->res_max_ms)
        c->res_max_ms = ts;
    bool none = (s->flags & OT_PACC_F_NO_VALUE) != 0;
    switch (s->kind) {
    case OT_PACC_GAUGE:
    case OT_PACC_COUNTER:
        sample(c, "", NULL, 0, none ? stale_nan() : s->value, ts);
        break;
    case OT_PACC_HISTOGRAM: {
        const double *bd = ot_pacc_bounds(s);
        const uint64_t *cn = ot_pacc_counts(s);
        uint64_t cum = 0;
        for (uint32_t i = 0; i < s->n; i++) {
            cum += cn[i];
            sample(c, "_bucket", "le", bd[i], (double)cum, ts);
        }
        sample(c, "_bucket", "le", INFINITY, (double)s->count, ts);
        if (s->flags & OT_PACC_F_HAS_SUM)
            sample(c, "_sum", NULL, 0, s->value, ts);
        sample(c, "_count", NULL, 0, (double)s->count, ts);
        break;
    }
    case OT_PACC_EXPHIST:
        native(c, s, ts);
        break;
    case OT_PACC_SUMMARY: {
        const double *qv = ot_pacc_bounds(s);
        for (uint32_t i = 0; i < s->n; i++)
            sample(c, "", "quantile", qv[2 * i], qv[2 * i + 1], ts);
        sample(c, "_sum", NULL, 0, s->value, ts);
        sample(c, "_count", NULL, 0, (double)s->count, ts);
        break;
    }
    default:
        break;
    }
}

/* ---- target_info -------------------------------------------------------- */

/* Sent once per resource and batch, at the resource's latest sample time,
 * and only when that is later than the last one sent for the resource. */
static void target_info(prw_core *c)
{
    if (!c->o.target_info || !c->n_other || !c->res_max_ms || c->need_target)
        return;
    size_t cap = TARGETS_MAX * 2;
    uint64_t h = c->res_hash ? c->res_hash : 1;
    size_t i = (size_t)h & (cap - 1);
    while (c->targets[i].hash && c->targets[i].hash != h)
        i = (i + 1) & (cap - 1);
    if (!c->targets[i].hash) {
        if (c->n_targets >= TARGETS_MAX) { /* forget them all rather than grow */
            memset(c->targets, 0, cap * sizeof *c->targets);
            c->n_targets = 0;
            i = (size_t)h & (cap - 1);
        }
        c->targets[i].hash = h;
        c->n_targets++;
    } else if (c->targets[i].last_ms >= c->res_max_ms) {
        return;
    }
    c->targets[i].last_ms = c->res_max_ms;
    if (prw_sample(&c->w, c->target.l, c->target.n, 1, c->res_max_ms) < 0)
        c->err = -1;
}

int prw_core_translate(prw_core *c, const ot_metrics_req *req, int64_t now_ns, prw_flush_fn fn,
                       void *ctx, prw_stats *st)
{
    prw_stats local = {0};
    pthread_mutex_lock(&c->mu);
    c->w.flush = fn;
    c->w.ctx = ctx;
    c->w.rc = 0;
    c->w.oom = false;
    c->st = &local;
    c->err = 0;
    for (size_t i = 0; i < req->n_resource_metrics && !c->err; i++) {
        const ot_resource_metrics *rm = req->resource_metrics[i];
        c->need_target = true;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const ot_scope_metrics *sm = rm->scope_metrics[j];
            c->need_res = true;
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const ot_metric *m = sm->metrics[k];
                if (!m->name || !*m->name ||
                    ot_mstore_key_otlp(&c->key, rm->resource, sm->scope, m) < 0)
                    continue;
                c->metric = m;
                c->need_metric = true;
                local.refused += ot_pacc_metric(c->store, &c->key, m, now_ns, on_point, c);
            }
        }
        target_info(c);
    }
    prw_flush(&c->w);
    int rc = c->err ? c->err : c->w.oom ? -1 : c->w.rc;
    if (st) {
        st->stale += local.stale;
        st->refused += local.refused;
        st->invalid += local.invalid;
    }
    c->st = NULL;
    pthread_mutex_unlock(&c->mu);
    return rc;
}
