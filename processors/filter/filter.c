/* filter.c: the `filter` processor. Drops spans, span events, metrics,
 * data points and log records that match any of the OTTL conditions the
 * collector's filter processor takes, then removes what became empty
 * (metrics without points, scopes, resources). It runs inline on the
 * receiver's thread.
 *
 * A batch is only written to once something matches: until then it is
 * read as it is, so a batch that loses nothing keeps its protobuf bytes
 * and is forwarded without re-encoding. */
#include <stdlib.h>
#include <string.h>

#include "factory.h"
#include "log.h"
#include "ottl.h"
#include "telemetry.h"

typedef struct filter_traces {
    ot_strlist span;
    ot_strlist spanevent;
} filter_traces;

typedef struct filter_metrics {
    ot_strlist metric;
    ot_strlist datapoint;
} filter_metrics;

typedef struct filter_logs {
    ot_strlist log_record;
} filter_logs;

typedef struct filter_cfg {
    int error_mode;
    filter_traces traces;
    filter_metrics metrics;
    filter_logs logs;
} filter_cfg;

static const ot_key traces_keys[] = {
    {.name = "span", .type = OT_KT_STRLIST, .offset = offsetof(filter_traces, span),
     .help = "OTTL conditions (span context); a span matching any is dropped with its events"},
    {.name = "spanevent", .type = OT_KT_STRLIST, .offset = offsetof(filter_traces, spanevent),
     .help = "OTTL conditions (spanevent context); a matching span event is dropped"},
    {0},
};

static const ot_key metrics_keys[] = {
    {.name = "metric", .type = OT_KT_STRLIST, .offset = offsetof(filter_metrics, metric),
     .help = "OTTL conditions (metric context); a matching metric is dropped with its points"},
    {.name = "datapoint", .type = OT_KT_STRLIST, .offset = offsetof(filter_metrics, datapoint),
     .help = "OTTL conditions (datapoint context); a matching point is dropped, and a metric "
             "left without points with it"},
    {0},
};

static const ot_key logs_keys[] = {
    {.name = "log_record", .type = OT_KT_STRLIST, .offset = offsetof(filter_logs, log_record),
     .help = "OTTL conditions (log context); a matching log record is dropped"},
    {0},
};

static const ot_key filter_keys[] = {
    {.name = "error_mode", .type = OT_KT_ENUM, .offset = offsetof(filter_cfg, error_mode),
     .def = "propagate", .choices = ot_ottl_errmode_names,
     .help = "a condition failing at run time: propagate refuses the batch, ignore logs and "
             "keeps the item, silent keeps it quietly"},
    {.name = "traces", .type = OT_KT_TABLE, .offset = offsetof(filter_cfg, traces),
     .sub = traces_keys, .help = "conditions for spans and span events"},
    {.name = "metrics", .type = OT_KT_TABLE, .offset = offsetof(filter_cfg, metrics),
     .sub = metrics_keys, .help = "conditions for metrics and data points"},
    {.name = "logs", .type = OT_KT_TABLE, .offset = offsetof(filter_cfg, logs), .sub = logs_keys,
     .help = "conditions for log records"},
    {0},
};

static void filter_validate(const void *cfgp, const ot_node *node, const char *path, ot_diags *d)
{
    const filter_cfg *c = cfgp;
    char p[512];
    struct {
        const char *sub;
        const ot_strlist *l;
        ot_ottl_ctx ctx;
    } lists[] = {
        {"traces.span", &c->traces.span, OT_OTTL_SPAN},
        {"traces.spanevent", &c->traces.spanevent, OT_OTTL_SPANEVENT},
        {"metrics.metric", &c->metrics.metric, OT_OTTL_METRIC},
        {"metrics.datapoint", &c->metrics.datapoint, OT_OTTL_DATAPOINT},
        {"logs.log_record", &c->logs.log_record, OT_OTTL_LOG},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        snprintf(p, sizeof p, "%s.%s", path, lists[i].sub);
        ot_ottl_check_list(lists[i].ctx, lists[i].l, p, d);
        total += lists[i].l->n;
    }
    if (total == 0)
        ot_diag_add(d, OT_SEV_WARNING, node, path, "no conditions: this filter drops nothing");
}

typedef struct filter_proc {
    ot_consumer base;
    ot_consumer *next;
    ot_signal signal;
    char *id;
    ot_ottl_set sets[2]; /* traces: span, spanevent; metrics: metric, datapoint; logs: record */
    ot_counter *dropped;        /* spans / metric points / log records */
    ot_counter *dropped_extra;  /* span events / whole metrics */
} filter_proc;

/* The batch is written to only from the first drop on. Before that the
 * walk changed nothing, so when the batch is ours it goes on in place;
 * when it was shared, ot_batch_writable gave a copy and the walk starts
 * over on the copy. Every write below happens after a drop, so after
 * need_mut. */
typedef struct walk {
    ot_batch *b;
    ProtobufCMessage *msg;
    bool mut;
    ot_err *err;
} walk;

enum { W_OK = 0, W_ERR = -1, W_RESTART = 1 };

static int need_mut(walk *w)
{
    if (w->mut)
        return W_OK;
    ot_batch *nb = ot_batch_writable(w->b, w->err);
    w->b = nb;
    if (!nb)
        return W_ERR;
    ProtobufCMessage *m = ot_batch_msg_mut(nb, w->err);
    if (!m)
        return W_ERR;
    w->mut = true;
    if (m == w->msg)
        return W_OK;
    w->msg = m;
    return W_RESTART;
}

typedef struct counts {
    size_t items, extra;
} counts;

/* Evaluates set on it and, on a match, makes the walk mutable: W_OK with
 * *drop set, or W_ERR / W_RESTART. */
static int decide(ot_ottl_set *set, const ot_ottl_item *it, walk *w, bool *drop)
{
    *drop = false;
    if (!set->n)
        return W_OK;
    int m = ot_ottl_set_eval(set, it, w->err);
    if (m < 0)
        return W_ERR;
    if (!m)
        return W_OK;
    *drop = true;
    return need_mut(w);
}

/* ---- traces -------------------------------------------------------------- */

static int walk_span(filter_proc *fp, walk *w, ot_ottl_item *it, ot_span *sp, counts *c,
                     bool *drop)
{
    it->span = sp;
    int r = decide(&fp->sets[0], it, w, drop);
    if (r || *drop || !fp->sets[1].n)
        return r;
    size_t k = 0, n = sp->n_events;
    for (size_t i = 0; i < n; i++) {
        bool d;
        it->event = sp->events[i];
        if ((r = decide(&fp->sets[1], it, w, &d)))
            return r;
        if (d) {
            c->extra++;
            continue;
        }
        if (k != i)
            sp->events[k] = sp->events[i];
        k++;
    }
    it->event = NULL;
    if (k != n)
        sp->n_events = k;
    return W_OK;
}

static int walk_traces(filter_proc *fp, walk *w, counts *c)
{
    ot_trace_req *req = (ot_trace_req *)w->msg;
    ot_ottl_item it;
    memset(&it, 0, sizeof it);
    size_t rk = 0, rn = req->n_resource_spans;
    for (size_t ri = 0; ri < rn; ri++) {
        ot_resource_spans *rs = req->resource_spans[ri];
        it.resource = rs->resource;
        size_t sk = 0, sn = rs->n_scope_spans;
        for (size_t si = 0; si < sn; si++) {
            ot_scope_spans *ss = rs->scope_spans[si];
            it.scope = ss->scope;
            size_t k = 0, n = ss->n_spans;
            for (size_t i = 0; i < n; i++) {
                bool d;
                int r = walk_span(fp, w, &it, ss->spans[i], c, &d);
                if (r)
                    return r;
                if (d) {
                    c->items++;
                    continue;
                }
                if (k != i)
                    ss->spans[k] = ss->spans[i];
                k++;
            }
            if (k != n)
                ss->n_spans = k;
            if (k == 0) {
                int r = need_mut(w);
                if (r)
                    return r;
                continue;
            }
            if (sk != si)
                rs->scope_spans[sk] = ss;
            sk++;
        }
        if (sk != sn)
            rs->n_scope_spans = sk;
        if (sk == 0) {
            int r = need_mut(w);
            if (r)
                return r;
            continue;
        }
        if (rk != ri)
            req->resource_spans[rk] = rs;
        rk++;
    }
    if (rk != rn)
        req->n_resource_spans = rk;
    return W_OK;
}

/* ---- metrics -------------------------------------------------------------- */

static size_t point_count(const ot_metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

/* One function per point type: the arrays have different element types. */
#define DEFINE_POINTS(fname, T)                                                       \
    static int fname(filter_proc *fp, walk *w, ot_ottl_item *it, T **v, size_t *np,   \
                     counts *c)                                                       \
    {                                                                                 \
        size_t k = 0, n = *np;                                                        \
        for (size_t i = 0; i < n; i++) {                                              \
            bool d;                                                                   \
            it->point = v[i];                                                         \
            int r = decide(&fp->sets[1], it, w, &d);                                  \
            if (r)                                                                    \
                return r;                                                             \
            if (d) {                                                                  \
                c->items++;                                                           \
                continue;                                                             \
            }                                                                         \
            if (k != i)                                                               \
                v[k] = v[i];                                                          \
            k++;                                                                      \
        }                                                                             \
        it->point = NULL;                                                             \
        if (k != n)                                                                   \
            *np = k;                                                                  \
        return W_OK;                                                                  \
    }

DEFINE_POINTS(number_points, ot_number_point)
DEFINE_POINTS(histogram_points, ot_histogram_point)
DEFINE_POINTS(exphistogram_points, ot_exphistogram_point)
DEFINE_POINTS(summary_points, ot_summary_point)

static int walk_metric(filter_proc *fp, walk *w, ot_ottl_item *it, ot_metric *m, counts *c,
                       bool *drop)
{
    it->metric = m;
    int r = decide(&fp->sets[0], it, w, drop);
    if (r)
        return r;
    if (*drop) {
        c->items += point_count(m);
        c->extra++;
        return W_OK;
    }
    if (!fp->sets[1].n)
        return W_OK;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        if (m->gauge)
            r = number_points(fp, w, it, m->gauge->data_points, &m->gauge->n_data_points, c);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (m->sum)
            r = number_points(fp, w, it, m->sum->data_points, &m->sum->n_data_points, c);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        if (m->histogram)
            r = histogram_points(fp, w, it, m->histogram->data_points,
                                 &m->histogram->n_data_points, c);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        if (m->exponential_histogram)
            r = exphistogram_points(fp, w, it, m->exponential_histogram->data_points,
                                    &m->exponential_histogram->n_data_points, c);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        if (m->summary)
            r = summary_points(fp, w, it, m->summary->data_points, &m->summary->n_data_points,
                               c);
        break;
    default:
        break;
    }
    if (r)
        return r;
    if (point_count(m) == 0) {
        /* nothing left to say: the metric goes too */
        if ((r = need_mut(w)))
            return r;
        *drop = true;
        c->extra++;
    }
    return W_OK;
}

static int walk_metrics(filter_proc *fp, walk *w, counts *c)
{
    ot_metrics_req *req = (ot_metrics_req *)w->msg;
    ot_ottl_item it;
    memset(&it, 0, sizeof it);
    size_t rk = 0, rn = req->n_resource_metrics;
    for (size_t ri = 0; ri < rn; ri++) {
        ot_resource_metrics *rm = req->resource_metrics[ri];
        it.resource = rm->resource;
        size_t sk = 0, sn = rm->n_scope_metrics;
        for (size_t si = 0; si < sn; si++) {
            ot_scope_metrics *sm = rm->scope_metrics[si];
            it.scope = sm->scope;
            size_t k = 0, n = sm->n_metrics;
            for (size_t i = 0; i < n; i++) {
                bool d;
                int r = walk_metric(fp, w, &it, sm->metrics[i], c, &d);
                if (r)
                    return r;
                if (d)
                    continue;
                if (k != i)
                    sm->metrics[k] = sm->metrics[i];
                k++;
            }
            if (k != n)
                sm->n_metrics = k;
            if (k == 0) {
                int r = need_mut(w);
                if (r)
                    return r;
                continue;
            }
            if (sk != si)
                rm->scope_metrics[sk] = sm;
            sk++;
        }
        if (sk != sn)
            rm->n_scope_metrics = sk;
        if (sk == 0) {
            int r = need_mut(w);
            if (r)
                return r;
            continue;
        }
        if (rk != ri)
            req->resource_metrics[rk] = rm;
        rk++;
    }
    if (rk != rn)
        req->n_resource_metrics = rk;
    return W_OK;
}

/* ---- logs ------------------------------------------------------------------ */

static int walk_logs(filter_proc *fp, walk *w, counts *c)
{
    ot_logs_req *req = (ot_logs_req *)w->msg;
    ot_ottl_item it;
    memset(&it, 0, sizeof it);
    size_t rk = 0, rn = req->n_resource_logs;
    for (size_t ri = 0; ri < rn; ri++) {
        ot_resource_logs *rl = req->resource_logs[ri];
        it.resource = rl->resource;
        size_t sk = 0, sn = rl->n_scope_logs;
        for (size_t si = 0; si < sn; si++) {
            ot_scope_logs *sl = rl->scope_logs[si];
            it.scope = sl->scope;
            size_t k = 0, n = sl->n_log_records;
            for (size_t i = 0; i < n; i++) {
                bool d;
                it.log = sl->log_records[i];
                int r = decide(&fp->sets[0], &it, w, &d);
                if (r)
                    return r;
                if (d) {
                    c->items++;
                    continue;
                }
                if (k != i)
                    sl->log_records[k] = sl->log_records[i];
                k++;
            }
            if (k != n)
                sl->n_log_records = k;
            if (k == 0) {
                int r = need_mut(w);
                if (r)
                    return r;
                continue;
            }
            if (sk != si)
                rl->scope_logs[sk] = sl;
            sk++;
        }
        if (sk != sn)
            rl->n_scope_logs = sk;
        if (sk == 0) {
            int r = need_mut(w);
            if (r)
                return r;
            continue;
        }
        if (rk != ri)
            req->resource_logs[rk] = rl;
        rk++;
    }
    if (rk != rn)
        req->n_resource_logs = rk;
    return W_OK;
}

static size_t n_resources(ot_signal s, const ProtobufCMessage *m)
{
    switch (s) {
    case OT_TRACES: return ((const ot_trace_req *)m)->n_resource_spans;
    case OT_METRICS: return ((const ot_metrics_req *)m)->n_resource_metrics;
    default: return ((const ot_logs_req *)m)->n_resource_logs;
    }
}

static ot_status filter_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    filter_proc *fp = (filter_proc *)self;
    if (!fp->sets[0].n && !fp->sets[1].n)
        return ot_consume(fp->next, b, err);
    const ProtobufCMessage *m = ot_batch_msg(b, err);
    if (!m) {
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    if (n_resources(fp->signal, m) == 0)
        return ot_consume(fp->next, b, err);
    walk w = {.b = b, .msg = (ProtobufCMessage *)m, .err = err};
    counts c;
    int r;
    do {
        memset(&c, 0, sizeof c);
        switch (fp->signal) {
        case OT_TRACES: r = walk_traces(fp, &w, &c); break;
        case OT_METRICS: r = walk_metrics(fp, &w, &c); break;
        default: r = walk_logs(fp, &w, &c); break;
        }
    } while (r == W_RESTART);
    if (r < 0) {
        ot_batch_unref(w.b); /* NULL-safe: a failed copy already dropped it */
        return OT_PERMANENT;
    }
    if (!w.mut)
        return ot_consume(fp->next, w.b, err);
    ot_batch_recount(w.b);
    ot_counter_add(fp->dropped, c.items);
    if (fp->dropped_extra)
        ot_counter_add(fp->dropped_extra, c.extra);
    if (n_resources(fp->signal, w.msg) == 0) {
        ot_batch_unref(w.b);
        return OT_OK; /* all of it filtered out: consumed */
    }
    return ot_consume(fp->next, w.b, err);
}

static void filter_destroy(void *self)
{
    filter_proc *fp = self;
    if (!fp)
        return;
    ot_ottl_set_free(&fp->sets[0]);
    ot_ottl_set_free(&fp->sets[1]);
    free(fp->id);
    free(fp);
}

static void *filter_create(const ot_create_params *p, ot_err *err)
{
    const filter_cfg *cfg = p->config;
    filter_proc *fp = calloc(1, sizeof *fp);
    if (!fp || !(fp->id = strdup(p->id))) {
        free(fp);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    fp->signal = p->signal;
    fp->next = p->next[p->signal];
    fp->base.consume = filter_consume;
    const ot_strlist *l0 = NULL, *l1 = NULL;
    ot_ottl_ctx c0 = OT_OTTL_LOG, c1 = OT_OTTL_LOG;
    const char *extra = NULL;
    switch (p->signal) {
    case OT_TRACES:
        l0 = &cfg->traces.span, c0 = OT_OTTL_SPAN;
        l1 = &cfg->traces.spanevent, c1 = OT_OTTL_SPANEVENT;
        extra = "otelite_processor_filter_dropped_span_events_total";
        break;
    case OT_METRICS:
        l0 = &cfg->metrics.metric, c0 = OT_OTTL_METRIC;
        l1 = &cfg->metrics.datapoint, c1 = OT_OTTL_DATAPOINT;
        extra = "otelite_processor_filter_dropped_metrics_total";
        break;
    default:
        l0 = &cfg->logs.log_record, c0 = OT_OTTL_LOG;
        break;
    }
    ot_ottl_errmode mode = (ot_ottl_errmode)cfg->error_mode;
    if (ot_ottl_set_init(&fp->sets[0], c0, l0, mode, fp->id, err) < 0 ||
        (l1 && ot_ottl_set_init(&fp->sets[1], c1, l1, mode, fp->id, err) < 0)) {
        filter_destroy(fp);
        return NULL;
    }
    fp->base.mutates = fp->sets[0].n || fp->sets[1].n;
    if (!fp->next) {
        filter_destroy(fp);
        ot_err_set(err, "no next consumer for %s", ot_signal_name(p->signal));
        return NULL;
    }
    char labels[300], name[128];
    snprintf(labels, sizeof labels, "processor=\"%s\"", p->id);
    snprintf(name, sizeof name, "otelite_processor_filter_dropped_%s_total",
             ot_signal_item_name(p->signal));
    fp->dropped = ot_tel_counter(name, "Items the filter processor dropped.", labels);
    if (extra)
        fp->dropped_extra = ot_tel_counter(
            extra,
            p->signal == OT_TRACES ? "Span events the filter processor dropped (spanevent "
                                     "conditions)."
                                   : "Whole metrics the filter processor dropped.",
            labels);
    return fp;
}

static ot_consumer *filter_consumer(void *self, ot_signal s)
{
    filter_proc *fp = self;
    return s == fp->signal ? &fp->base : NULL;
}

const ot_factory ot_filter_processor = {
    .type = "filter",
    .kind = OT_PROCESSOR,
    .signals = OT_SIG_ALL,
    .help = "drops spans, span events, metrics, data points and log records matching OTTL "
            "conditions",
    .keys = filter_keys,
    .config_size = sizeof(filter_cfg),
    .validate = filter_validate,
    .create = filter_create,
    .destroy = filter_destroy,
    .consumer = filter_consumer,
};
