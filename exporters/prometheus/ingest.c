/* ingest.c: OTLP points into the prometheus exporter's stream store, where
 * each stream keeps what a scrape shows: the last value of gauges and
 * cumulative data, and running totals of delta data (sums monotonic or not,
 * histograms while their bounds stay the same), so every OTLP metric has a
 * cumulative Prometheus form. Exponential histograms are kept native
 * (render.c turns them into classic buckets for the text formats). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

#define MAX_EXP_BUCKETS 320
#define MAX_BUCKETS 4096

typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets;

static void on_remove(void *ctx, ot_mstore_stream *s, ot_mstore_why why)
{
    (void)s;
    pm_core *c = ctx;
    if (why == OT_MSTORE_EXPIRED)
        atomic_fetch_add(&c->expired, 1);
}

pm_core *pm_core_new(const pm_opts *o, ot_err *err)
{
    pm_core *c = calloc(1, sizeof *c);
    if (!c) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    c->o = *o;
    ot_mstore_opts so = {
        .state_size = PM_NUMBER_STATE, /* what most streams are */
        .max_streams = o->max_series,
        .max_idle_ns = o->expiration_ns,
        .on_remove = on_remove,
        .ctx = c,
    };
    if (!(c->store = ot_mstore_new(&so, err))) {
        free(c);
        return NULL;
    }
    c->key = (ot_mstore_key)OT_MSTORE_KEY_INIT;
    pthread_mutex_init(&c->ingest, NULL);
    pthread_mutex_init(&c->help_mu, NULL);
    return c;
}

void pm_core_free(pm_core *c)
{
    if (!c)
        return;
    ot_mstore_free(c->store);
    ot_mstore_key_free(&c->key);
    for (size_t i = 0; i < c->cap_help; i++) {
        free(c->help[i].name);
        free(c->help[i].desc);
    }
    free(c->help);
    pthread_mutex_destroy(&c->ingest);
    pthread_mutex_destroy(&c->help_mu);
    free(c);
}

/* ---- descriptions ------------------------------------------------------ */

static size_t help_slot(pm_help *t, size_t cap, const char *name, size_t n)
{
    size_t i = (size_t)ot_mstore_hash(name, n, 7) & (cap - 1);
    while (t[i].name && !(strlen(t[i].name) == n && memcmp(t[i].name, name, n) == 0))
        i = (i + 1) & (cap - 1);
    return i;
}

static int help_grow(pm_core *c, size_t cap)
{
    pm_help *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < c->cap_help; i++)
        if (c->help[i].name)
            t[help_slot(t, cap, c->help[i].name, strlen(c->help[i].name))] = c->help[i];
    free(c->help);
    c->help = t;
    c->cap_help = cap;
    return 0;
}

/* Under help_mu. */
static void help_note(pm_core *c, const char *name, const char *desc, int64_t now)
{
    if (!desc)
        desc = "";
    if ((c->n_help + 1) * 2 > c->cap_help && help_grow(c, c->cap_help ? c->cap_help * 2 : 64) < 0)
        return;
    size_t n = strlen(name);
    pm_help *h = &c->help[help_slot(c->help, c->cap_help, name, n)];
    if (!h->name) {
        if (!(h->name = strdup(name)))
            return;
        c->n_help++;
    }
    if (!h->desc || strcmp(h->desc, desc) != 0) {
        char *d = strdup(desc);
        if (d) {
            free(h->desc);
            h->desc = d;
        }
    }
    h->last_ns = now;
}

void pm_core_help(pm_core *c, const char *name, size_t n, ot_buf *out)
{
    pthread_mutex_lock(&c->help_mu);
    if (c->cap_help) {
        pm_help *h = &c->help[help_slot(c->help, c->cap_help, name, n)];
        if (h->name && h->desc)
            ot_buf_puts(out, h->desc);
    }
    pthread_mutex_unlock(&c->help_mu);
}

size_t pm_core_expire(pm_core *c, int64_t now_ns)
{
    size_t n = ot_mstore_expire(c->store, now_ns);
    if (c->o.expiration_ns <= 0)
        return n;
    pthread_mutex_lock(&c->help_mu);
    size_t old = 0;
    for (size_t i = 0; i < c->cap_help; i++)
        old += c->help[i].name && now_ns - c->help[i].last_ns >= c->o.expiration_ns;
    if (old) { /* rebuild without them: open addressing has no cheap delete */
        pm_help *t = c->help;
        size_t cap = c->cap_help;
        c->help = NULL;
        c->cap_help = c->n_help = 0;
        for (size_t i = 0; i < cap; i++) {
            if (t[i].name && now_ns - t[i].last_ns < c->o.expiration_ns) {
                help_note(c, t[i].name, t[i].desc, t[i].last_ns);
            }
            free(t[i].name);
            free(t[i].desc);
        }
        free(t);
    }
    pthread_mutex_unlock(&c->help_mu);
    return n;
}

/* ---- points ------------------------------------------------------------ */

typedef struct hist_in {
    size_t n;            /* bounds */
    const double *bounds;
    const uint64_t *counts; /* n + 1 */
    uint64_t count;
    double sum;
    bool has_sum;
} hist_in;

/* Gets the stream of the key's current point, sized for a histogram or
 * summary of n entries; a stream held at another size is dropped and made
 * again. */
static ot_mstore_res get_sized(pm_core *c, int64_t now, size_t size, bool ex, ot_mstore_ref *ref)
{
    size_t want = size + (ex ? sizeof(pm_exemplar) : 0);
    ot_mstore_res r = ot_mstore_get(c->store, &c->key, now, want, ref);
    if (r == OT_MSTORE_FOUND && ref->stream->state_size < size) {
        ot_mstore_put(c->store, ref, true);
        r = ot_mstore_get(c->store, &c->key, now, want, ref);
    }
    return r;
}

typedef Opentelemetry__Proto__Metrics__V1__Exemplar otlp_exemplar;

/* Keeps the point's last exemplar when the stream has room for it; a
 * stream made without room goes without (remaking it would lose its
 * running totals). keep: the state's layout did not change, so an older
 * exemplar still stands when this point has none. */
static void note_exemplar(ot_mstore_ref *ref, otlp_exemplar *const *ex, size_t n, bool keep)
{
    pm_state *s = ref->state;
    if (!keep)
        s->flags &= (uint8_t)~PM_F_EXEMPLAR;
    if (!n || pm_state_len(s) + sizeof(pm_exemplar) > ref->stream->state_size)
        return;
    const otlp_exemplar *e = ex[n - 1];
    s->flags |= PM_F_EXEMPLAR;
    pm_exemplar *d = pm_ex(s);
    memset(d, 0, sizeof *d);
    if (e->trace_id.len == 16)
        memcpy(d->trace_id, e->trace_id.data, 16);
    if (e->span_id.len == 8)
        memcpy(d->span_id, e->span_id.data, 8);
    d->value = e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                   ? (double)e->as_int
                   : e->as_double;
    d->ts_ns = (int64_t)e->time_unix_nano;
}

static size_t put_number(pm_core *c, const ot_number_point *p, int kind, bool delta, int64_t now)
{
    ot_mstore_ref ref;
    if (ot_mstore_key_point(&c->key, p->attributes, p->n_attributes) < 0)
        return 0;
    size_t size = p->n_exemplars && kind == PM_COUNTER ? sizeof(pm_state) + sizeof(pm_exemplar) : 0;
    ot_mstore_res r = ot_mstore_get(c->store, &c->key, now, size, &ref);
    if (r == OT_MSTORE_REFUSED)
        return 1;
    if (r == OT_MSTORE_ERR)
        return 0;
    pm_state *s = ref.state;
    double v = p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
                   ? (double)p->as_int
                   : p->as_double;
    bool novalue = (p->flags & 1) != 0;
    int64_t ts = (int64_t)p->time_unix_nano;
    if (r == OT_MSTORE_NEW || !delta) {
        s->start_ns = (int64_t)p->start_time_unix_nano;
        s->value = novalue ? 0 : v;
    } else if (!novalue && (ts == 0 || ts > s->ts_ns)) {
        s->value += v; /* a delta after the last one; a repeat or older one is not added twice */
    }
    bool keep = s->kind == kind;
    s->kind = (uint8_t)kind;
    s->flags = (uint8_t)((s->flags & PM_F_EXEMPLAR) | (novalue ? PM_F_NO_VALUE : 0));
    if (ts > s->ts_ns || !delta)
        s->ts_ns = ts;
    if (kind == PM_COUNTER)
        note_exemplar(&ref, p->exemplars, p->n_exemplars, keep);
    ot_mstore_put(c->store, &ref, false);
    return 0;
}

static size_t put_hist(pm_core *c, const ot_histogram_point *p, const hist_in *h, bool delta,
                       int64_t now)
{
    ot_mstore_ref ref;
    int64_t start = (int64_t)p->start_time_unix_nano, ts = (int64_t)p->time_unix_nano;
    if (h->n > MAX_BUCKETS || ot_mstore_key_point(&c->key, p->attributes, p->n_attributes) < 0)
        return 0;
    ot_mstore_res r = get_sized(c, now, sizeof(pm_state) + h->n * 16 + 8, p->n_exemplars > 0, &ref);
    if (r == OT_MSTORE_REFUSED)
        return 1;
    if (r == OT_MSTORE_ERR)
        return 0;
    pm_state *s = ref.state;
    bool same = r == OT_MSTORE_FOUND && s->kind == PM_HISTOGRAM && s->n == h->n &&
                memcmp(pm_bounds(s), h->bounds, h->n * sizeof(double)) == 0;
    if (delta && same) {
        if (ts == 0 || ts > s->ts_ns) {
            uint64_t *cn = pm_counts(s);
            for (size_t i = 0; i <= h->n; i++)
                cn[i] += h->counts[i];
            s->count += h->count;
            s->value += h->sum;
        }
    } else { /* cumulative, the first delta, or new bounds: start from this point */
        s->kind = PM_HISTOGRAM;
        s->n = (uint32_t)h->n;
        memcpy(pm_bounds(s), h->bounds, h->n * sizeof(double));
        memcpy(pm_counts(s), h->counts, (h->n + 1) * sizeof(uint64_t));
        s->count = h->count;
        s->value = h->sum;
        s->start_ns = start;
    }
    s->flags = (uint8_t)((s->flags & PM_F_EXEMPLAR) | (h->has_sum ? PM_F_HAS_SUM : 0));
    if (ts > s->ts_ns || !delta)
        s->ts_ns = ts;
    note_exemplar(&ref, p->exemplars, p->n_exemplars, same);
    ot_mstore_put(c->store, &ref, false);
    return 0;
}

static size_t put_classic(pm_core *c, const ot_histogram_point *p, bool delta, int64_t now)
{
    static const uint64_t zero = 0;
    uint64_t one;
    hist_in h = {.n = p->n_explicit_bounds, .bounds = p->explicit_bounds,
                 .counts = p->bucket_counts, .count = p->count, .sum = p->sum,
                 .has_sum = p->sum_present_case != 0};
    if (p->n_bucket_counts == 0) { /* count and sum only: one +Inf bucket */
        one = p->count;
        h.n = 0;
        h.counts = p->count ? &one : &zero;
    } else if (p->n_bucket_counts != p->n_explicit_bounds + 1) {
        return 0; /* not a histogram OTLP allows */
    }
    return put_hist(c, p, &h, delta, now);
}

/* Bucket counts of one side shifted down (scale - shift), merged pairwise. */
static int32_t downscale(const exp_buckets *b, int32_t shift, uint64_t *out, uint32_t *n_out)
{
    *n_out = 0;
    if (!b || !b->n_bucket_counts)
        return 0;
    int32_t first = b->offset >> shift;
    for (size_t i = 0; i < b->n_bucket_counts; i++) {
        uint32_t k = (uint32_t)(((b->offset + (int32_t)i) >> shift) - first);
        if (k >= *n_out) {
            memset(out + *n_out, 0, (k + 1 - *n_out) * sizeof *out);
            *n_out = k + 1;
        }
        out[k] += b->bucket_counts[i];
    }
    return first;
}

/* Exponential histograms stay native, downscaled to schema 8 at most (what
 * Prometheus takes) and to MAX_EXP_BUCKETS buckets. */
static size_t put_exp(pm_core *c, const ot_exphistogram_point *p, bool delta, int64_t now)
{
    size_t np = p->positive ? p->positive->n_bucket_counts : 0;
    size_t nn = p->negative ? p->negative->n_bucket_counts : 0;
    int32_t shift = p->scale > 8 ? p->scale - 8 : 0;
    while ((np >> shift) + (nn >> shift) + 2 > MAX_EXP_BUCKETS && shift < 62)
        shift++;
    size_t cap = (np >> shift) + (nn >> shift) + 2;
    uint64_t *tmp = calloc(cap, sizeof *tmp);
    if (!tmp)
        return 0;
    pm_exph h = {.scale = p->scale - shift, .zero_threshold = p->zero_threshold,
                 .zero_count = p->zero_count};
    h.neg_off = downscale(p->negative, shift, tmp, &h.nneg);
    h.pos_off = downscale(p->positive, shift, tmp + h.nneg, &h.npos);
    size_t n = h.nneg + h.npos;
    ot_mstore_ref ref;
    size_t refused = 0;
    if (ot_mstore_key_point(&c->key, p->attributes, p->n_attributes) < 0)
        goto out;
    ot_mstore_res r = get_sized(c, now, sizeof(pm_state) + sizeof(pm_exph) + n * 8,
                                p->n_exemplars > 0, &ref);
    if (r == OT_MSTORE_REFUSED)
        refused = 1;
    if (r == OT_MSTORE_REFUSED || r == OT_MSTORE_ERR)
        goto out;
    pm_state *s = ref.state;
    pm_exph *e = pm_exph_of(s);
    int64_t ts = (int64_t)p->time_unix_nano;
    bool same = r == OT_MSTORE_FOUND && s->kind == PM_EXPHIST && e->scale == h.scale &&
                e->pos_off == h.pos_off && e->neg_off == h.neg_off && e->npos == h.npos &&
                e->nneg == h.nneg && e->zero_threshold == h.zero_threshold;
    if (delta && same) {
        if (ts == 0 || ts > s->ts_ns) {
            uint64_t *cn = pm_exp_counts(s);
            for (size_t i = 0; i < n; i++)
                cn[i] += tmp[i];
            e->zero_count += h.zero_count;
            s->count += p->count;
            s->value += p->sum;
        }
    } else { /* cumulative, the first delta, or a new layout: start from this point */
        s->kind = PM_EXPHIST;
        s->n = (uint32_t)n;
        *e = h;
        memcpy(pm_exp_counts(s), tmp, n * sizeof *tmp);
        s->count = p->count;
        s->value = p->sum;
        s->start_ns = (int64_t)p->start_time_unix_nano;
    }
    s->flags = (uint8_t)((s->flags & PM_F_EXEMPLAR) | (p->sum_present_case ? PM_F_HAS_SUM : 0));
    if (ts > s->ts_ns || !delta)
        s->ts_ns = ts;
    note_exemplar(&ref, p->exemplars, p->n_exemplars, same);
    ot_mstore_put(c->store, &ref, false);
out:
    free(tmp);
    return refused;
}

static size_t put_summary(pm_core *c, const ot_summary_point *p, int64_t now)
{
    ot_mstore_ref ref;
    if (p->n_quantile_values > MAX_BUCKETS ||
        ot_mstore_key_point(&c->key, p->attributes, p->n_attributes) < 0)
        return 0;
    ot_mstore_res r = get_sized(c, now, sizeof(pm_state) + p->n_quantile_values * 16, false, &ref);
    if (r == OT_MSTORE_REFUSED)
        return 1;
    if (r == OT_MSTORE_ERR)
        return 0;
    pm_state *s = ref.state;
    s->kind = PM_SUMMARY;
    s->flags = PM_F_HAS_SUM;
    s->n = (uint32_t)p->n_quantile_values;
    double *qv = pm_bounds(s);
    for (size_t i = 0; i < p->n_quantile_values; i++) {
        qv[2 * i] = p->quantile_values[i]->quantile;
        qv[2 * i + 1] = p->quantile_values[i]->value;
    }
    s->count = p->count;
    s->value = p->sum;
    s->start_ns = (int64_t)p->start_time_unix_nano;
    s->ts_ns = (int64_t)p->time_unix_nano;
    ot_mstore_put(c->store, &ref, false);
    return 0;
}

static size_t put_metric(pm_core *c, const ot_metric *m, int64_t now)
{
    size_t refused = 0;
    const int DELTA =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        for (size_t i = 0; m->gauge && i < m->gauge->n_data_points; i++)
            refused += put_number(c, m->gauge->data_points[i], PM_GAUGE, false, now);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        const Opentelemetry__Proto__Metrics__V1__Sum *s = m->sum;
        if (!s || s->aggregation_temporality == 0)
            break; /* unspecified temporality: nothing a scrape could say */
        int kind = s->is_monotonic ? PM_COUNTER : PM_GAUGE;
        bool delta = (int)s->aggregation_temporality == DELTA;
        for (size_t i = 0; i < s->n_data_points; i++)
            refused += put_number(c, s->data_points[i], kind, delta, now);
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__Histogram *h = m->histogram;
        if (!h || h->aggregation_temporality == 0)
            break;
        for (size_t i = 0; i < h->n_data_points; i++)
            refused += put_classic(c, h->data_points[i],
                                   (int)h->aggregation_temporality == DELTA, now);
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h =
            m->exponential_histogram;
        if (!h || h->aggregation_temporality == 0)
            break;
        for (size_t i = 0; i < h->n_data_points; i++)
            refused += put_exp(c, h->data_points[i], (int)h->aggregation_temporality == DELTA, now);
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        for (size_t i = 0; m->summary && i < m->summary->n_data_points; i++)
            refused += put_summary(c, m->summary->data_points[i], now);
        break;
    default:
        break;
    }
    return refused;
}

size_t pm_core_ingest(pm_core *c, const ot_metrics_req *req, int64_t now_ns)
{
    size_t refused = 0;
    pthread_mutex_lock(&c->ingest);
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const ot_resource_metrics *rm = req->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const ot_scope_metrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const ot_metric *m = sm->metrics[k];
                if (!m->name || !*m->name ||
                    ot_mstore_key_otlp(&c->key, rm->resource, sm->scope, m) < 0)
                    continue;
                pthread_mutex_lock(&c->help_mu);
                help_note(c, m->name, m->description, now_ns);
                pthread_mutex_unlock(&c->help_mu);
                refused += put_metric(c, m, now_ns);
            }
        }
    }
    pthread_mutex_unlock(&c->ingest);
    return refused;
}
