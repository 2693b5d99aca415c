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

#include "pipeline/factory.h"
#include "base/log.h"
#include "ottl/ottl.h"
#include "telemetry/telemetry.h"
#include "filter_int.h"
#include "model/otlp_wire.h"

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

/* The batch is written to only from the first drop on. Before that the
 * walk changed nothing, so when the batch is ours it goes on in place;
 * when it was shared, ot_batch_writable gave a copy and the walk starts
 * over on the copy. Every write below happens after a drop, so after
 * need_mut. */
typedef struct walk {
    filter_proc *fp;
    ot_batch *b;
    ProtobufCMessage *msg;
    bool mut;
    ot_err *err;
    ot_ottl_item it;
    size_t items, extra; /* dropped, for the two counters */
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

/* Evaluates set on the current item and, on a match, makes the walk
 * mutable: W_OK with *drop set, or W_ERR / W_RESTART. */
static int decide(ot_ottl_set *set, walk *w, bool *drop)
{
    *drop = false;
    if (!set->n)
        return W_OK;
    int m = ot_ottl_set_eval(set, &w->it, w->err);
    if (m < 0)
        return W_ERR;
    if (!m)
        return W_OK;
    *drop = true;
    return need_mut(w);
}

/* Looks at one entry of a list: W_OK with *drop saying whether it goes. */
typedef int (*visit_fn)(walk *w, void *entry, bool *drop);

/* Visits the entries v[0..*n) in order and closes the list up over the
 * ones dropped. Every level of a request is such a list: protobuf-c keeps
 * a repeated message field as an array of pointers, handled here as
 * void * as protobuf-c itself does. */
static int sweep(walk *w, void **v, size_t *n, visit_fn visit)
{
    size_t k = 0, len = *n;
    for (size_t i = 0; i < len; i++) {
        bool drop;
        int r = visit(w, v[i], &drop);
        if (r)
            return r;
        if (drop)
            continue;
        if (k != i)
            v[k] = v[i];
        k++;
    }
    if (k != len)
        *n = k;
    return W_OK;
}

/* After the walk below an entry (r: how it went): a resource, scope or
 * metric left with nothing in it goes too. */
static int drop_if_empty(walk *w, int r, size_t left, bool *drop)
{
    *drop = false;
    if (r || left)
        return r;
    *drop = true;
    return need_mut(w);
}

/* ---- traces -------------------------------------------------------------- */

static int visit_event(walk *w, void *e, bool *drop)
{
    w->it.event = e;
    int r = decide(&w->fp->sets[1], w, drop);
    if (!r && *drop)
        w->extra++;
    return r;
}

static int visit_span(walk *w, void *e, bool *drop)
{
    ot_span *sp = e;
    w->it.span = sp;
    int r = decide(&w->fp->sets[0], w, drop);
    if (!r && *drop)
        w->items++;
    if (r || *drop || !w->fp->sets[1].n)
        return r;
    r = sweep(w, (void **)sp->events, &sp->n_events, visit_event);
    w->it.event = NULL;
    return r;
}

static int visit_scope_spans(walk *w, void *e, bool *drop)
{
    ot_scope_spans *ss = e;
    w->it.scope = ss->scope;
    int r = sweep(w, (void **)ss->spans, &ss->n_spans, visit_span);
    return drop_if_empty(w, r, ss->n_spans, drop);
}

static int visit_resource_spans(walk *w, void *e, bool *drop)
{
    ot_resource_spans *rs = e;
    w->it.resource = rs->resource;
    int r = sweep(w, (void **)rs->scope_spans, &rs->n_scope_spans, visit_scope_spans);
    return drop_if_empty(w, r, rs->n_scope_spans, drop);
}

/* ---- metrics -------------------------------------------------------------- */

/* The points of m (of the type m->data_case says) and where their count is. */
static void **metric_points(ot_metric *m, size_t **n)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        if (!m->gauge)
            return NULL;
        *n = &m->gauge->n_data_points;
        return (void **)m->gauge->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (!m->sum)
            return NULL;
        *n = &m->sum->n_data_points;
        return (void **)m->sum->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        if (!m->histogram)
            return NULL;
        *n = &m->histogram->n_data_points;
        return (void **)m->histogram->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        if (!m->exponential_histogram)
            return NULL;
        *n = &m->exponential_histogram->n_data_points;
        return (void **)m->exponential_histogram->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        if (!m->summary)
            return NULL;
        *n = &m->summary->n_data_points;
        return (void **)m->summary->data_points;
    default:
        return NULL;
    }
}

static int visit_point(walk *w, void *e, bool *drop)
{
    w->it.point = e;
    int r = decide(&w->fp->sets[1], w, drop);
    if (!r && *drop)
        w->items++;
    return r;
}

static int visit_metric(walk *w, void *e, bool *drop)
{
    ot_metric *m = e;
    w->it.metric = m;
    int r = decide(&w->fp->sets[0], w, drop);
    if (r)
        return r;
    if (*drop) {
        w->items += ot_metric_point_count(m);
        w->extra++;
        return W_OK;
    }
    if (!w->fp->sets[1].n)
        return W_OK;
    size_t *n;
    void **points = metric_points(m, &n);
    if (points) {
        r = sweep(w, points, n, visit_point);
        w->it.point = NULL;
    }
    /* a metric left without points has nothing left to say: it goes too */
    r = drop_if_empty(w, r, ot_metric_point_count(m), drop);
    if (!r && *drop)
        w->extra++;
    return r;
}

static int visit_scope_metrics(walk *w, void *e, bool *drop)
{
    ot_scope_metrics *sm = e;
    w->it.scope = sm->scope;
    int r = sweep(w, (void **)sm->metrics, &sm->n_metrics, visit_metric);
    return drop_if_empty(w, r, sm->n_metrics, drop);
}

static int visit_resource_metrics(walk *w, void *e, bool *drop)
{
    ot_resource_metrics *rm = e;
    w->it.resource = rm->resource;
    int r = sweep(w, (void **)rm->scope_metrics, &rm->n_scope_metrics, visit_scope_metrics);
    return drop_if_empty(w, r, rm->n_scope_metrics, drop);
}

/* ---- logs ------------------------------------------------------------------ */

static int visit_log(walk *w, void *e, bool *drop)
{
    w->it.log = e;
    int r = decide(&w->fp->sets[0], w, drop);
    if (!r && *drop)
        w->items++;
    return r;
}

static int visit_scope_logs(walk *w, void *e, bool *drop)
{
    ot_scope_logs *sl = e;
    w->it.scope = sl->scope;
    int r = sweep(w, (void **)sl->log_records, &sl->n_log_records, visit_log);
    return drop_if_empty(w, r, sl->n_log_records, drop);
}

static int visit_resource_logs(walk *w, void *e, bool *drop)
{
    ot_resource_logs *rl = e;
    w->it.resource = rl->resource;
    int r = sweep(w, (void **)rl->scope_logs, &rl->n_scope_logs, visit_scope_logs);
    return drop_if_empty(w, r, rl->n_scope_logs, drop);
}

/* One pass over the request, from the top. */
static int walk_request(walk *w)
{
    memset(&w->it, 0, sizeof w->it);
    w->items = w->extra = 0;
    switch (w->fp->signal) {
    case OT_TRACES: {
        ot_trace_req *r = (ot_trace_req *)w->msg;
        return sweep(w, (void **)r->resource_spans, &r->n_resource_spans, visit_resource_spans);
    }
    case OT_METRICS: {
        ot_metrics_req *r = (ot_metrics_req *)w->msg;
        return sweep(w, (void **)r->resource_metrics, &r->n_resource_metrics,
                     visit_resource_metrics);
    }
    default: {
        ot_logs_req *r = (ot_logs_req *)w->msg;
        return sweep(w, (void **)r->resource_logs, &r->n_resource_logs, visit_resource_logs);
    }
    }
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
    if (fp->wire_ok && b->wire) {
        ot_status st;
        if (ot_wire_chain(&fp->stage, b, &st, err) != OT_WIRE_DECLINED)
            return st; /* with the processors after it, in one walk */
        ot_batch *nb;
        size_t items = 0, extra = 0;
        int r = filter_wire(fp, b, &nb, &items, &extra, err);
        if (r < 0)
            return OT_PERMANENT;
        if (r == 0) {
            ot_counter_add(fp->dropped, items);
            if (fp->dropped_extra)
                ot_counter_add(fp->dropped_extra, extra);
            return nb ? ot_consume(fp->next, nb, err) : OT_OK;
        }
        b = nb; /* declined: the decoded walk below decides */
    }
    const ProtobufCMessage *m = ot_batch_msg(b, err);
    if (!m) {
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    if (n_resources(fp->signal, m) == 0)
        return ot_consume(fp->next, b, err);
    walk w = {.fp = fp, .b = b, .msg = (ProtobufCMessage *)m, .err = err};
    int r;
    while ((r = walk_request(&w)) == W_RESTART)
        ;
    if (r < 0) {
        ot_batch_unref(w.b); /* NULL-safe: a failed copy already dropped it */
        return OT_PERMANENT;
    }
    if (!w.mut)
        return ot_consume(fp->next, w.b, err);
    ot_batch_recount(w.b);
    ot_counter_add(fp->dropped, w.items);
    if (fp->dropped_extra)
        ot_counter_add(fp->dropped_extra, w.extra);
    if (n_resources(fp->signal, w.msg) == 0) {
        ot_batch_unref(w.b);
        return OT_OK; /* all of it filtered out: consumed */
    }
    return ot_consume(fp->next, w.b, err);
}

static ot_status filter_stage_consume(ot_wire_stage *self, ot_batch *b, ot_err *err)
{
    return filter_consume(&self->base, b, err);
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
    fp->stage.base.consume = ot_wire_stage_consume;
    fp->stage.consume = filter_stage_consume;
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
    fp->stage.base.mutates = fp->sets[0].n || fp->sets[1].n;
    /* The wire walk decides on spans, metrics and log records; span event
     * and data point conditions take the decoded walk. */
    fp->wire_ok = fp->sets[0].n && !fp->sets[1].n && ot_ottl_set_wire_ok(&fp->sets[0]) &&
                  ot_wire_processors_enabled();
    filter_wire_stage(fp);
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
    return s == fp->signal ? &fp->stage.base : NULL;
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
