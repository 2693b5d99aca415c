/* attributes.c: the `attributes` processor. Applies insert / update /
 * upsert / delete / hash actions to the attributes of each span, log
 * record or data point (the pipeline's signal says which), optionally only
 * for items an `include` condition selects and no `exclude` condition
 * rejects. The collector selects items with match_type configs; here the
 * selection is OTTL conditions, the same language as the filter's. */
#include <stdlib.h>
#include <string.h>

#include "model/attrs.h"
#include "model/otlp_wire.h"
#include "model/pbedit.h"
#include "pipeline/factory.h"
#include "ottl/ottl.h"

typedef struct match_cfg {
    bool present;
    ot_strlist conditions;
} match_cfg;

typedef struct attributes_cfg {
    const ot_node *actions;
    match_cfg include;
    match_cfg exclude;
    int error_mode;
} attributes_cfg;

static const ot_key match_keys[] = {
    {.name = "conditions", .type = OT_KT_STRLIST, .offset = offsetof(match_cfg, conditions),
     .help = "OTTL conditions on the span / log / datapoint context (by pipeline signal)"},
    {0},
};

static const ot_key attributes_keys[] = {
    {.name = "actions", .type = OT_KT_NODE, .offset = offsetof(attributes_cfg, actions),
     .flags = OT_KF_REQUIRED,
     .help = "list of {key, action: insert|update|upsert|delete|hash|extract, "
             "value | from_attribute | pattern}, "
             "applied in order"},
    {.name = "include", .type = OT_KT_TABLE, .offset = offsetof(attributes_cfg, include),
     .sub = match_keys, .flags = OT_KF_PRESENCE,
     .help = "{conditions: [...]}: act only on items for which one condition holds"},
    {.name = "exclude", .type = OT_KT_TABLE, .offset = offsetof(attributes_cfg, exclude),
     .sub = match_keys, .flags = OT_KF_PRESENCE,
     .help = "{conditions: [...]}: leave items alone for which one condition holds"},
    {.name = "error_mode", .type = OT_KT_ENUM, .offset = offsetof(attributes_cfg, error_mode),
     .def = "propagate", .choices = ot_ottl_errmode_names,
     .help = "an include/exclude condition failing at run time: propagate refuses the batch, "
             "ignore logs and takes it as false, silent takes it as false"},
    {0},
};

/* Which OTTL context an item of each signal is seen in. */
static const ot_ottl_ctx signal_ctx[OT_SIGNAL_COUNT] = {OT_OTTL_SPAN, OT_OTTL_DATAPOINT,
                                                       OT_OTTL_LOG};

/* The pipeline's signal is not known when the config is checked, so a
 * condition passes if it is valid in the context of some signal; create
 * then parses it for the actual one. The error shown is from the context
 * where parsing got furthest, which is the likeliest intended. */
static void check_one(const char *t, size_t len, const ot_node *n, const char *ipath,
                      ot_diags *d)
{
    ot_diags tries[OT_SIGNAL_COUNT];
    size_t best = 0;
    int best_col = -1;
    bool ok = false;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        ot_diags_init(&tries[s]);
        if (ot_ottl_check(signal_ctx[s], t, len, n, ipath, &tries[s]) == 0)
            ok = true;
        else if (tries[s].n && tries[s].v[0].col > best_col)
            best = (size_t)s, best_col = tries[s].v[0].col;
    }
    if (!ok)
        for (size_t j = 0; j < tries[best].n; j++) {
            const ot_diag *g = &tries[best].v[j];
            ot_diag_add_at(d, g->sev, g->file, g->line, g->col, g->path, "%s", g->msg);
        }
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        ot_diags_free(&tries[s]);
}

static void check_conditions(const match_cfg *m, const ot_node *at, const char *path,
                             ot_diags *d)
{
    if (!m->present)
        return;
    const ot_node *seq = m->conditions.node;
    char ipath[512];
    if (m->conditions.n == 0) {
        /* "any of none" would select nothing, which nobody means */
        ot_diag_add(d, OT_SEV_ERROR, seq ? seq : at, path, "expected at least one condition");
        return;
    }
    if (seq && seq->kind == OT_NODE_SEQ) {
        for (size_t i = 0; i < seq->n; i++)
            if (seq->vals[i]->kind == OT_NODE_SCALAR) {
                snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
                check_one(seq->vals[i]->str, seq->vals[i]->len, seq->vals[i], ipath, d);
            }
        return;
    }
    for (size_t i = 0; i < m->conditions.n; i++) {
        snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
        check_one(m->conditions.v[i], strlen(m->conditions.v[i]), seq, ipath, d);
    }
}

static void attributes_validate(const void *cfgp, const ot_node *node, const char *path,
                                ot_diags *d)
{
    const attributes_cfg *c = cfgp;
    char p[512];
    snprintf(p, sizeof p, "%s.actions", path);
    ot_attrs_check(c->actions, p, d);
    snprintf(p, sizeof p, "%s.include.conditions", path);
    check_conditions(&c->include, ot_node_get(node, "include"), p, d);
    snprintf(p, sizeof p, "%s.exclude.conditions", path);
    check_conditions(&c->exclude, ot_node_get(node, "exclude"), p, d);
}

typedef struct attributes_proc {
    ot_wire_stage stage; /* first: its base is the processor's consumer */
    ot_consumer *next;
    ot_signal signal;
    char *id;
    ot_attrs actions;
    ot_ottl_set include, exclude;
    bool has_include, has_exclude;
    bool wire_ok; /* the actions run on the protobuf bytes (see attributes_wire) */
} attributes_proc;

/* 1 when the actions apply to the item, 0 when not, -1 on a propagated
 * condition error. */
static int selected(attributes_proc *ap, const ot_ottl_item *it, ot_err *err)
{
    if (ap->has_include) {
        int r = ot_ottl_set_eval(&ap->include, it, err);
        if (r <= 0)
            return r;
    }
    if (ap->has_exclude) {
        int r = ot_ottl_set_eval(&ap->exclude, it, err);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    return 1;
}

/* Applies to one item's attributes if it is selected. */
static int act(attributes_proc *ap, ot_attrs_batch *ab, const ot_ottl_item *it,
               ot_keyvalue ***kv, size_t *n, ot_err *err)
{
    int s = selected(ap, it, err);
    if (s <= 0)
        return s;
    if (ot_attrs_apply(ab, kv, n) < 0)
        return ot_err_set(err, "out of memory");
    return 0;
}

static int do_traces(attributes_proc *ap, ot_attrs_batch *ab, ot_trace_req *req, ot_err *err)
{
    ot_ottl_item it;
    memset(&it, 0, sizeof it);
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        ot_resource_spans *rs = req->resource_spans[i];
        it.resource = rs->resource;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            ot_scope_spans *ss = rs->scope_spans[j];
            it.scope = ss->scope;
            for (size_t k = 0; k < ss->n_spans; k++) {
                ot_span *sp = ss->spans[k];
                it.span = sp;
                if (act(ap, ab, &it, &sp->attributes, &sp->n_attributes, err) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static int do_logs(attributes_proc *ap, ot_attrs_batch *ab, ot_logs_req *req, ot_err *err)
{
    ot_ottl_item it;
    memset(&it, 0, sizeof it);
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        ot_resource_logs *rl = req->resource_logs[i];
        it.resource = rl->resource;
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            ot_scope_logs *sl = rl->scope_logs[j];
            it.scope = sl->scope;
            for (size_t k = 0; k < sl->n_log_records; k++) {
                ot_log_record *lr = sl->log_records[k];
                it.log = lr;
                if (act(ap, ab, &it, &lr->attributes, &lr->n_attributes, err) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

#define EACH_POINT(holder)                                                                  \
    do {                                                                                    \
        for (size_t p_ = 0; (holder) && p_ < (holder)->n_data_points; p_++) {               \
            it.point = (holder)->data_points[p_];                                           \
            if (act(ap, ab, &it, &(holder)->data_points[p_]->attributes,                    \
                    &(holder)->data_points[p_]->n_attributes, err) < 0)                     \
                return -1;                                                                  \
        }                                                                                   \
    } while (0)

static int do_metrics(attributes_proc *ap, ot_attrs_batch *ab, ot_metrics_req *req, ot_err *err)
{
    ot_ottl_item it;
    memset(&it, 0, sizeof it);
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        ot_resource_metrics *rm = req->resource_metrics[i];
        it.resource = rm->resource;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            ot_scope_metrics *sm = rm->scope_metrics[j];
            it.scope = sm->scope;
            for (size_t k = 0; k < sm->n_metrics; k++) {
                ot_metric *m = sm->metrics[k];
                it.metric = m;
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    EACH_POINT(m->gauge);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    EACH_POINT(m->sum);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    EACH_POINT(m->histogram);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    EACH_POINT(m->exponential_histogram);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    EACH_POINT(m->summary);
                    break;
                default:
                    break;
                }
            }
        }
    }
    return 0;
}

/* ---- the same on the protobuf bytes (issue 19) ---------------------------
 * Each item's attribute list is edited where it lies (ot_attrs_wire_apply)
 * and the length prefixes around it are fixed once (pbedit), so nothing is
 * decoded; the decoded functions above stay the reference that the tests
 * and fuzz_wireproc compare this with. A selection condition or a value
 * the bytes cannot answer declines before anything changed, and the batch
 * takes the decoded path. */

enum { AW_OK = 0, AW_DECLINE = OT_WIRE_DECLINED, AW_ERR = 2 };

typedef struct awalk {
    attributes_proc *ap;
    ot_attrs_wire aw;
    ot_ottl_wire wire;
    ot_ottl_item it;
    ot_err *err;
} awalk;

/* One attribute list inside the field f, which is entered for it; idx
 * (may be NULL) is f's index. */
static int wire_attrs(awalk *w, ot_pbedit *e, const ot_pbfield *f, uint32_t num,
                      ot_wire_index *idx)
{
    ot_pbedit_enter(e, f);
    int r = ot_attrs_wire_apply_idx(&w->aw, e, f->val, f->val + f->len, num, idx);
    ot_pbedit_leave(e, false);
    return r < 0 ? AW_DECLINE : AW_OK;
}

/* The points of one metric: metric -> data (gauge, sum, ...) -> point. */
static int wire_metric(awalk *w, ot_pbedit *e, const ot_pbfield *mf, ot_wire_index *idx)
{
    const uint8_t *p = mf->val, *end = mf->val + mf->len;
    ot_pbfield f, data = {0};
    int r, n_data = 0;
    while ((r = ot_pb_next(&p, end, &f)) > 0)
        if (ot_wire_point_attr_field(f.num) && f.wt == 2)
            data = f, n_data++;
    if (r < 0 || n_data > 1)
        return AW_DECLINE; /* protobuf-c keeps one data member only */
    if (!n_data)
        return AW_OK;
    uint32_t num = ot_wire_point_attr_field(data.num);
    ot_pbedit_enter(e, mf);
    ot_pbedit_enter(e, &data);
    p = data.val, end = data.val + data.len;
    int s = AW_OK;
    /* Each point is indexed in the walk's index (a cache of one item's
     * fields: whoever reads the metric next has it rebuilt). */
    while (s == AW_OK && (r = ot_pb_next(&p, end, &f)) > 0)
        if (f.num == 1 && f.wt == 2) {
            if (ot_wire_index_of(idx, f.val, f.val + f.len) < 0)
                s = AW_DECLINE;
            else
                s = wire_attrs(w, e, &f, num, idx);
        }
    ot_pbedit_leave(e, false);
    ot_pbedit_leave(e, false);
    return s != AW_OK ? s : r < 0 ? AW_DECLINE : AW_OK;
}

static int wire_item(void *ctx, ot_pbedit *e, const ot_wire_pos *pos, const ot_pbfield *f,
                     bool *drop)
{
    awalk *w = ctx;
    *drop = false;
    if (w->ap->has_include || w->ap->has_exclude) {
        ot_ottl_wire_at(&w->wire, pos, f);
        int s = selected(w->ap, &w->it, w->err);
        if (w->wire.declined)
            return AW_DECLINE;
        if (s < 0)
            return AW_ERR;
        if (!s)
            return AW_OK;
    }
    if (w->ap->signal == OT_METRICS)
        return wire_metric(w, e, f, pos->idx);
    if (ot_wire_index_of(pos->idx, f->val, f->val + f->len) < 0)
        return AW_DECLINE;
    return wire_attrs(w, e, f, ot_wire_item_attr_field(w->ap->signal), pos->idx);
}

/* 0 done (b edited or not), AW_DECLINE (b untouched), -1 error (err set). */
static int attributes_wire(attributes_proc *ap, ot_batch *b, ot_err *err)
{
    if (b->items == (size_t)-1)
        return AW_DECLINE;
    awalk w = {.ap = ap, .err = err};
    w.it.wire = &w.wire;
    if (ot_attrs_wire_begin(&w.aw, &ap->actions, b->arena) < 0)
        return ot_err_set(err, "out of memory");
    ot_pbedit e;
    ot_pbedit_init(&e, b->wire, b->wire_len, b->arena);
    int s = ot_wire_walk_items(&e, wire_item, &w, false, NULL, NULL);
    if (s != AW_OK || !ot_pbedit_changed(&e)) {
        ot_pbedit_free(&e);
        return s == AW_ERR ? -1 : s;
    }
    return ot_wire_commit(b, &e, b->items, err);
}

/* As a stage of a longer walk (ot_wire_chain). */
_Static_assert(sizeof(awalk) <= OT_WIRE_SCRATCH, "awalk must fit a stage's scratch");

static int stage_begin(void *self, ot_batch *b, void *scratch, ot_err *err)
{
    awalk *w = scratch;
    memset(w, 0, sizeof *w);
    w->ap = self;
    w->err = err;
    w->it.wire = &w->wire;
    return ot_attrs_wire_begin(&w->aw, &w->ap->actions, b->arena) < 0 ? -1 : 0;
}

static ot_status attributes_consume(ot_consumer *self, ot_batch *b, ot_err *err);

static ot_status stage_consume(ot_wire_stage *self, ot_batch *b, ot_err *err)
{
    return attributes_consume(&self->base, b, err);
}

static ot_status attributes_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    attributes_proc *ap = (attributes_proc *)self;
    if (!ap->actions.n || b->items == 0)
        return ot_consume(ap->next, b, err);
    b = ot_batch_writable(b, err);
    if (!b)
        return OT_PERMANENT;
    if (ap->wire_ok && b->wire) {
        ot_status st;
        if (ot_wire_chain(&ap->stage, b, &st, err) != OT_WIRE_DECLINED)
            return st; /* with the processors after it, in one walk */
        int w = attributes_wire(ap, b, err);
        if (w < 0) {
            ot_batch_unref(b);
            return OT_PERMANENT;
        }
        if (w == 0)
            return ot_consume(ap->next, b, err);
    }
    ProtobufCMessage *m = ot_batch_msg_mut(b, err);
    ot_attrs_batch ab;
    int r = -1;
    if (m && ot_attrs_begin(&ab, &ap->actions, b->arena) < 0)
        ot_err_set(err, "out of memory");
    else if (m) {
        switch (ap->signal) {
        case OT_TRACES: r = do_traces(ap, &ab, (ot_trace_req *)m, err); break;
        case OT_METRICS: r = do_metrics(ap, &ab, (ot_metrics_req *)m, err); break;
        default: r = do_logs(ap, &ab, (ot_logs_req *)m, err); break;
        }
    }
    if (r < 0) {
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    return ot_consume(ap->next, b, err);
}

static void attributes_destroy(void *self)
{
    attributes_proc *ap = self;
    if (!ap)
        return;
    ot_attrs_free(&ap->actions);
    ot_ottl_set_free(&ap->include);
    ot_ottl_set_free(&ap->exclude);
    free(ap->id);
    free(ap);
}

static void *attributes_create(const ot_create_params *p, ot_err *err)
{
    const attributes_cfg *cfg = p->config;
    attributes_proc *ap = calloc(1, sizeof *ap);
    if (!ap || !(ap->id = strdup(p->id))) {
        free(ap);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    ap->signal = p->signal;
    ap->next = p->next[p->signal];
    ap->stage.base.consume = ot_wire_stage_consume;
    ap->stage.consume = stage_consume;
    ap->stage.base.mutates = true;
    ot_ottl_ctx ctx = signal_ctx[p->signal];
    ot_ottl_errmode mode = (ot_ottl_errmode)cfg->error_mode;
    ap->has_include = cfg->include.present && cfg->include.conditions.n;
    ap->has_exclude = cfg->exclude.present && cfg->exclude.conditions.n;
    if (!ap->next)
        ot_err_set(err, "no next consumer for %s", ot_signal_name(p->signal));
    if (!ap->next || ot_attrs_build(&ap->actions, cfg->actions, err) < 0 ||
        ot_ottl_set_init(&ap->include, ctx, &cfg->include.conditions, mode, ap->id, err) < 0 ||
        ot_ottl_set_init(&ap->exclude, ctx, &cfg->exclude.conditions, mode, ap->id, err) < 0) {
        attributes_destroy(ap);
        return NULL;
    }
    /* Data point conditions take the decoded path (ottl_wire.c reads
     * spans, logs and metrics). */
    ap->wire_ok = ot_wire_processors_enabled() &&
                  (p->signal != OT_METRICS || (!ap->has_include && !ap->has_exclude)) &&
                  (!ap->has_include || ot_ottl_set_wire_ok(&ap->include)) &&
                  (!ap->has_exclude || ot_ottl_set_wire_ok(&ap->exclude));
    ot_wire_stage *st = &ap->stage;
    st->on = ap->wire_ok;
    st->reads = OT_WIRE_ITEM_ATTRS |
                (ap->has_include || ap->has_exclude ? OT_WIRE_RES_ATTRS | OT_WIRE_FIELDS : 0);
    st->writes = OT_WIRE_ITEM_ATTRS;
    st->next = ap->next;
    st->self = ap;
    st->begin = stage_begin;
    st->item = wire_item;
    return ap;
}

static ot_consumer *attributes_consumer(void *self, ot_signal s)
{
    attributes_proc *ap = self;
    return s == ap->signal ? &ap->stage.base : NULL;
}

const ot_factory ot_attributes_processor = {
    .type = "attributes",
    .kind = OT_PROCESSOR,
    .signals = OT_SIG_ALL,
    .help = "inserts, updates, deletes or hashes attributes of spans, log records and data "
            "points",
    .keys = attributes_keys,
    .config_size = sizeof(attributes_cfg),
    .validate = attributes_validate,
    .create = attributes_create,
    .destroy = attributes_destroy,
    .consumer = attributes_consumer,
};
