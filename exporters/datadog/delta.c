/* delta.c: cumulative OTLP data as the deltas Datadog counts and
 * distributions are, against the previous point of each stream, kept in
 * the metric stream store. It runs when a batch is handed to the exporter,
 * before the queue, so the batch that is queued (and retried, or kept on
 * disk) already holds deltas: a retry sends the same numbers again, never
 * a second difference.
 *
 * A stream's first point is only remembered, there being nothing to
 * subtract it from, unless the stream started after the exporter did:
 * then all it counted is new (a DogStatsD interval, an application
 * started after the agent) and the point is its own delta. A point whose
 * start time moved on is a restarted stream: its value counts from the new
 * start, so it is the delta. A value that went
 * down without a new start (or buckets that changed) restarts the stream
 * too, but from an unknown point: it becomes the new base and is not sent. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dd.h"

#define TEMP_DELTA \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define TEMP_CUMULATIVE \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets;

struct dd_delta {
    pthread_mutex_t mu; /* the store has one writer; consume runs on many threads */
    ot_mstore *store;
    ot_mstore_key key;
    uint64_t born_ns; /* wall clock at creation, as OTLP times are */
    ot_counter *refused; /* points of streams the caps kept out; may be NULL */
};

void dd_delta_count_refused(dd_delta *d, ot_counter *c)
{
    d->refused = c;
}

static void refused(dd_delta *d)
{
    if (d->refused)
        ot_counter_add(d->refused, 1);
}

/* What a stream remembers: its last point. Buckets follow: explicit
 * histograms nb counts; exponential ones npos then nneg. */
typedef struct dstate {
    uint64_t start_ns, time_ns;
    double value; /* sums; sum of histograms and summaries */
    uint64_t count, zero;
    int32_t scale, pos_off, neg_off;
    uint32_t nb, npos, nneg;
    uint64_t bounds_hash;
    uint64_t b[];
} dstate;

dd_delta *dd_delta_new(size_t max_streams, size_t max_bytes, int64_t max_idle_ns, ot_err *err)
{
    dd_delta *d = calloc(1, sizeof *d);
    if (!d) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    ot_mstore_opts o = {.state_size = sizeof(dstate), .max_streams = max_streams,
                        .max_bytes = max_bytes, .max_idle_ns = max_idle_ns};
    if (!(d->store = ot_mstore_new(&o, err))) {
        free(d);
        return NULL;
    }
    if (max_idle_ns > 0 &&
        ot_mstore_sweeper_start(d->store, max_idle_ns / 4 > 1000000000 ? max_idle_ns / 4 : 1000000000,
                                err) < 0) {
        ot_mstore_free(d->store);
        free(d);
        return NULL;
    }
    d->key = (ot_mstore_key)OT_MSTORE_KEY_INIT;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    d->born_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

void dd_delta_free(dd_delta *d)
{
    if (!d)
        return;
    ot_mstore_free(d->store);
    ot_mstore_key_free(&d->key);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* What to do with a point: send it (now a delta), or drop it. */
enum { KEEP = 0, DROP = 1, ERR = -1 };

/* The stream of the point, with room for nbuckets; a stream whose state
 * is too small for them is started again. */
static ot_mstore_res get(dd_delta *d, ot_keyvalue *const *attrs, size_t n, size_t nbuckets,
                         int64_t now, ot_mstore_ref *ref)
{
    if (ot_mstore_key_point(&d->key, attrs, n) < 0)
        return OT_MSTORE_ERR;
    size_t need = sizeof(dstate) + nbuckets * sizeof(uint64_t);
    ot_mstore_res r = ot_mstore_get(d->store, &d->key, now, need, ref);
    if (r == OT_MSTORE_FOUND && ref->stream->state_size < need) {
        ot_mstore_put(d->store, ref, true);
        r = ot_mstore_get(d->store, &d->key, now, need, ref);
    }
    return r;
}

static double number(const ot_number_point *p)
{
    return p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
               ? (double)p->as_int
               : p->as_double;
}

static void set_number(ot_number_point *p, double v)
{
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        p->as_int = (int64_t)v;
    else
        p->as_double = v;
}

/* Common to every kind: KEEP when prev is a base this point can be
 * subtracted from, DROP (and the caller stores the point) when not, and
 * restarted when the start time moved on (the point is its own delta). */
static int judge(const dd_delta *d, ot_mstore_res r, const dstate *s, uint64_t start, uint64_t t,
                 bool *restarted)
{
    *restarted = false;
    if (r == OT_MSTORE_NEW) {
        /* A stream that started after this exporter did: everything it
         * counted is new, and nothing of it was sent yet. */
        if (start && start > d->born_ns) {
            *restarted = true;
            return KEEP;
        }
        return DROP;
    }
    if (t <= s->time_ns && t != 0)
        return -2; /* older or repeated: leave the base alone, send nothing */
    if (start && s->start_ns && start != s->start_ns) {
        *restarted = true;
        return KEEP;
    }
    return KEEP;
}

/* The stream of a point, judged: 1 with ref held and *j, *restarted set;
 * 0 when the point goes (its stream did not fit, or it repeats one sent:
 * nothing held); -1 out of memory. */
static int open_stream(dd_delta *d, ot_keyvalue *const *attrs, size_t n, size_t nbuckets,
                       uint64_t start, uint64_t t, int64_t now, ot_mstore_ref *ref, int *j,
                       bool *restarted)
{
    ot_mstore_res r = get(d, attrs, n, nbuckets, now, ref);
    if (r == OT_MSTORE_ERR)
        return -1;
    if (r == OT_MSTORE_REFUSED) {
        refused(d);
        return 0;
    }
    *j = judge(d, r, ref->state, start, t, restarted);
    if (*j == -2) {
        ot_mstore_put(d->store, ref, false);
        return 0;
    }
    return 1;
}

static int sum_point(dd_delta *d, ot_number_point *p, int64_t now)
{
    ot_mstore_ref ref;
    int j;
    bool restarted;
    int o = open_stream(d, p->attributes, p->n_attributes, 0, p->start_time_unix_nano,
                        p->time_unix_nano, now, &ref, &j, &restarted);
    if (o <= 0)
        return o < 0 ? ERR : DROP;
    dstate *s = ref.state;
    double v = number(p), prev = s->value;
    uint64_t prev_t = s->time_ns;
    s->start_ns = p->start_time_unix_nano;
    s->time_ns = p->time_unix_nano;
    s->value = v;
    ot_mstore_put(d->store, &ref, false);
    if (j == DROP)
        return DROP;
    if (!restarted) {
        if (v < prev)
            return DROP; /* reset without a new start time: a new base */
        set_number(p, v - prev);
        p->start_time_unix_nano = prev_t;
    }
    return KEEP;
}

static uint64_t bounds_hash(const ot_histogram_point *p)
{
    return ot_mstore_hash(p->explicit_bounds, p->n_explicit_bounds * sizeof(double),
                          p->n_explicit_bounds + 1);
}

static int hist_point(dd_delta *d, ot_histogram_point *p, int64_t now)
{
    ot_mstore_ref ref;
    size_t nb = p->n_bucket_counts;
    int j;
    bool restarted;
    int o = open_stream(d, p->attributes, p->n_attributes, nb, p->start_time_unix_nano,
                        p->time_unix_nano, now, &ref, &j, &restarted);
    if (o <= 0)
        return o < 0 ? ERR : DROP;
    dstate *s = ref.state;
    uint64_t bh = bounds_hash(p);
    bool same = j == KEEP && s->nb == nb && s->bounds_hash == bh && p->count >= s->count;
    for (size_t i = 0; same && i < nb; i++)
        same = p->bucket_counts[i] >= s->b[i];
    uint64_t prev_t = s->time_ns, prev_count = s->count;
    double prev_sum = s->value;
    /* the new base; the old buckets are read first when they are subtracted */
    for (size_t i = 0; i < nb; i++) {
        uint64_t c = p->bucket_counts[i];
        if (same && !restarted)
            p->bucket_counts[i] = c - s->b[i];
        s->b[i] = c;
    }
    s->nb = (uint32_t)nb;
    s->bounds_hash = bh;
    s->start_ns = p->start_time_unix_nano;
    s->time_ns = p->time_unix_nano;
    s->count = p->count;
    s->value = p->sum;
    ot_mstore_put(d->store, &ref, false);
    if (j == DROP)
        return DROP;
    if (restarted)
        return KEEP;
    if (!same)
        return DROP;
    p->count -= prev_count;
    p->sum -= prev_sum;
    /* min and max are of the whole cumulative span: not this interval's */
    p->min_present_case = 0;
    p->max_present_case = 0;
    p->start_time_unix_nano = prev_t;
    return KEEP;
}

static size_t nbuck(const exp_buckets *b)
{
    return b ? b->n_bucket_counts : 0;
}

static int exp_point(dd_delta *d, ot_exphistogram_point *p, int64_t now)
{
    ot_mstore_ref ref;
    size_t np = nbuck(p->positive), nn = nbuck(p->negative);
    int j;
    bool restarted;
    int o = open_stream(d, p->attributes, p->n_attributes, np + nn, p->start_time_unix_nano,
                        p->time_unix_nano, now, &ref, &j, &restarted);
    if (o <= 0)
        return o < 0 ? ERR : DROP;
    dstate *s = ref.state;
    int32_t po = p->positive ? p->positive->offset : 0, no = p->negative ? p->negative->offset : 0;
    bool same = j == KEEP && s->scale == p->scale && s->npos == np && s->nneg == nn &&
                s->pos_off == po && s->neg_off == no && p->count >= s->count &&
                p->zero_count >= s->zero;
    for (size_t i = 0; same && i < np; i++)
        same = p->positive->bucket_counts[i] >= s->b[i];
    for (size_t i = 0; same && i < nn; i++)
        same = p->negative->bucket_counts[i] >= s->b[np + i];
    bool sub = same && !restarted && j == KEEP;
    for (size_t i = 0; i < np; i++) {
        uint64_t c = p->positive->bucket_counts[i];
        if (sub)
            p->positive->bucket_counts[i] = c - s->b[i];
        s->b[i] = c;
    }
    for (size_t i = 0; i < nn; i++) {
        uint64_t c = p->negative->bucket_counts[i];
        if (sub)
            p->negative->bucket_counts[i] = c - s->b[np + i];
        s->b[np + i] = c;
    }
    uint64_t prev_t = s->time_ns, prev_count = s->count, prev_zero = s->zero;
    double prev_sum = s->value;
    s->scale = p->scale;
    s->npos = (uint32_t)np;
    s->nneg = (uint32_t)nn;
    s->pos_off = po;
    s->neg_off = no;
    s->start_ns = p->start_time_unix_nano;
    s->time_ns = p->time_unix_nano;
    s->count = p->count;
    s->zero = p->zero_count;
    s->value = p->sum;
    ot_mstore_put(d->store, &ref, false);
    if (j == DROP)
        return DROP;
    if (restarted)
        return KEEP;
    if (!same)
        return DROP;
    p->count -= prev_count;
    p->zero_count -= prev_zero;
    p->sum -= prev_sum;
    p->min_present_case = 0;
    p->max_present_case = 0;
    p->start_time_unix_nano = prev_t;
    return KEEP;
}

/* Summaries keep every point (their quantiles are gauges); only count and
 * sum become deltas, or are marked as not yet known. */
static int summary_point(dd_delta *d, ot_summary_point *p, int64_t now)
{
    ot_mstore_ref ref;
    ot_mstore_res r = get(d, p->attributes, p->n_attributes, 0, now, &ref);
    if (r == OT_MSTORE_ERR)
        return ERR;
    p->flags |= DD_FLAG_DELTA;
    if (r == OT_MSTORE_REFUSED) {
        refused(d);
        p->flags |= DD_FLAG_NO_DELTA;
        return KEEP;
    }
    dstate *s = ref.state;
    bool restarted;
    int j = judge(d, r, s, p->start_time_unix_nano, p->time_unix_nano, &restarted);
    if (j == -2) {
        ot_mstore_put(d->store, &ref, false);
        return DROP;
    }
    uint64_t prev_t = s->time_ns, prev_count = s->count;
    double prev_sum = s->value;
    s->start_ns = p->start_time_unix_nano;
    s->time_ns = p->time_unix_nano;
    s->count = p->count;
    s->value = p->sum;
    ot_mstore_put(d->store, &ref, false);
    if (j == DROP || (!restarted && p->count < prev_count)) {
        p->flags |= DD_FLAG_NO_DELTA;
        return KEEP;
    }
    if (!restarted) {
        p->count -= prev_count;
        p->sum -= prev_sum;
        p->start_time_unix_nano = prev_t;
    }
    return KEEP;
}

/* Runs fn over a point array, compacting away what it drops. */
#define FILTER(arr, n, fn)                                   \
    do {                                                     \
        size_t o_ = 0;                                       \
        for (size_t i_ = 0; i_ < (n); i_++) {                \
            int rc_ = fn(d, (arr)[i_], now);                 \
            if (rc_ == ERR)                                  \
                return -1;                                   \
            if (rc_ == KEEP)                                 \
                (arr)[o_++] = (arr)[i_];                     \
        }                                                    \
        (n) = o_;                                            \
        left += o_;                                          \
    } while (0)

static long metric(dd_delta *d, ot_metric *m, int sums_mode, int64_t now)
{
    long left = 0;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (m->sum->aggregation_temporality == TEMP_CUMULATIVE && m->sum->is_monotonic &&
            sums_mode == DD_SUMS_TO_DELTA) {
            FILTER(m->sum->data_points, m->sum->n_data_points, sum_point);
            m->sum->aggregation_temporality = TEMP_DELTA;
            return left;
        }
        return (long)m->sum->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        if (m->histogram->aggregation_temporality == TEMP_CUMULATIVE) {
            FILTER(m->histogram->data_points, m->histogram->n_data_points, hist_point);
            m->histogram->aggregation_temporality = TEMP_DELTA;
            return left;
        }
        return (long)m->histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h = m->exponential_histogram;
        if (h->aggregation_temporality == TEMP_CUMULATIVE) {
            FILTER(h->data_points, h->n_data_points, exp_point);
            h->aggregation_temporality = TEMP_DELTA;
            return left;
        }
        return (long)h->n_data_points;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        FILTER(m->summary->data_points, m->summary->n_data_points, summary_point);
        return left;
    default:
        return (long)ot_metric_point_count(m);
    }
}

long dd_delta_apply(dd_delta *d, ot_metrics_req *req, int sums_mode, int64_t now_ns)
{
    long total = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t r = 0; r < req->n_resource_metrics; r++) {
        ot_resource_metrics *rm = req->resource_metrics[r];
        for (size_t s = 0; s < rm->n_scope_metrics; s++) {
            ot_scope_metrics *sm = rm->scope_metrics[s];
            size_t o = 0;
            for (size_t i = 0; i < sm->n_metrics; i++) {
                ot_metric *m = sm->metrics[i];
                if (ot_mstore_key_otlp(&d->key, rm->resource, sm->scope, m) < 0) {
                    pthread_mutex_unlock(&d->mu);
                    return -1;
                }
                long n = metric(d, m, sums_mode, now_ns);
                if (n < 0) {
                    pthread_mutex_unlock(&d->mu);
                    return -1;
                }
                total += n;
                if (n > 0 || ot_metric_point_count(m) > 0)
                    sm->metrics[o++] = m;
            }
            sm->n_metrics = o;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return total;
}

/* Whether metric() would change m: only cumulative sums (monotonic, in
 * to_delta mode), cumulative histograms and summaries keep state. */
static bool needs_state(const ot_metric *m, int sums_mode)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum->aggregation_temporality == TEMP_CUMULATIVE && m->sum->is_monotonic &&
               sums_mode == DD_SUMS_TO_DELTA;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram->aggregation_temporality == TEMP_CUMULATIVE;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram->aggregation_temporality == TEMP_CUMULATIVE;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return true;
    default:
        return false;
    }
}

typedef struct wdelta {
    dd_delta *d;
    int sums_mode;
    int64_t now;
    ot_arena *chunk;
    size_t points;
} wdelta;

static int wire_metric(void *ctx, const ot_resource *res, const ot_scope *scope,
                       const uint8_t *leaf, size_t len, ot_buf *out)
{
    wdelta *w = ctx;
    ot_arena_reset(w->chunk);
    ot_metric *m = opentelemetry__proto__metrics__v1__metric__unpack(
        ot_arena_pb_allocator(w->chunk), len, leaf);
    if (!m)
        return -1;
    if (!needs_state(m, w->sums_mode)) { /* passes as it came: no repacking */
        if (ot_metric_point_count(m) == 0)
            return 0;
        w->points += ot_metric_point_count(m);
        return ot_buf_append(out, leaf, len);
    }
    pthread_mutex_lock(&w->d->mu);
    long n = ot_mstore_key_otlp(&w->d->key, res, scope, m) < 0
                 ? -1
                 : metric(w->d, m, w->sums_mode, w->now);
    pthread_mutex_unlock(&w->d->mu);
    if (n < 0)
        return -1;
    if (n == 0 && ot_metric_point_count(m) == 0)
        return 0; /* nothing left to send */
    w->points += (size_t)n;
    size_t sz = opentelemetry__proto__metrics__v1__metric__get_packed_size(m);
    if (ot_buf_reserve(out, sz + 1) < 0)
        return -1;
    out->len += opentelemetry__proto__metrics__v1__metric__pack(m, (uint8_t *)out->data + out->len);
    return 0;
}

int dd_delta_apply_wire(dd_delta *d, const uint8_t *wire, size_t len, int sums_mode,
                        int64_t now_ns, ot_arena *scratch, ot_buf *out, size_t *points,
                        ot_err *err)
{
    ot_arena *chunk = ot_arena_new(16u << 10);
    if (!chunk)
        return ot_err_set(err, "out of memory");
    wdelta w = {d, sums_mode, now_ns, chunk, 0};
    size_t leaves;
    int rc = dd_wire_rewrite(wire, len, scratch, wire_metric, &w, out, &leaves, err);
    ot_arena_free(chunk);
    *points = w.points;
    return rc;
}
