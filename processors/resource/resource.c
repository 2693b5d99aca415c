/* resource.c: the `resource` processor. Applies insert / update / upsert /
 * delete / hash actions to the resource attributes of every resource in a
 * batch, for all three signals: where a deployment names its environment,
 * region or cluster once for everything an agent forwards. */
#include <stdlib.h>
#include <string.h>

#include "model/attrs.h"
#include "model/otlp_wire.h"
#include "model/pbedit.h"
#include "pipeline/factory.h"

typedef struct resource_cfg {
    const ot_node *attributes;
    const ot_node *actions;
} resource_cfg;

/* The collector calls the action list `attributes` here; `actions`, as the
 * attributes processor spells it, is taken too. */
static const ot_key resource_keys[] = {
    {.name = "attributes", .type = OT_KT_NODE, .offset = offsetof(resource_cfg, attributes),
     .help = "list of {key, action: insert|update|upsert|delete|hash|extract, "
             "value | from_attribute | pattern}, "
             "applied in order to resource attributes"},
    {.name = "actions", .type = OT_KT_NODE, .offset = offsetof(resource_cfg, actions),
     .help = "another name for attributes"},
    {0},
};

static const ot_node *action_list(const resource_cfg *c)
{
    return c->attributes ? c->attributes : c->actions;
}

static void resource_validate(const void *cfgp, const ot_node *node, const char *path,
                              ot_diags *d)
{
    const resource_cfg *c = cfgp;
    char p[512];
    if (c->attributes && c->actions) {
        snprintf(p, sizeof p, "%s.actions", path);
        ot_diag_add(d, OT_SEV_ERROR, c->actions, p,
                    "write the actions under attributes or under actions, not both");
        return;
    }
    if (!action_list(c)) {
        ot_diag_add(d, OT_SEV_ERROR, node, path, "missing required key \"attributes\"");
        return;
    }
    snprintf(p, sizeof p, "%s.%s", path, c->attributes ? "attributes" : "actions");
    ot_attrs_check(action_list(c), p, d);
}

typedef struct resource_proc {
    ot_wire_stage stage; /* first: its base is the processor's consumer */
    ot_consumer *next;
    ot_signal signal;
    ot_attrs actions;
    bool wire_ok;
} resource_proc;

/* A resource to act on; an absent one is made when an action may add. */
static ot_resource *resource_of(ot_resource **slot, ot_arena *a)
{
    if (!*slot) {
        ot_resource init = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        ot_resource *r = ot_arena_alloc(a, sizeof *r);
        if (!r)
            return NULL;
        *r = init;
        *slot = r;
    }
    return *slot;
}

static int apply(ot_attrs_batch *ab, ot_resource **slot, ot_arena *a)
{
    ot_resource *r = resource_of(slot, a);
    if (!r)
        return -1;
    return ot_attrs_apply(ab, &r->attributes, &r->n_attributes);
}

/* One resource entry rf (entered in e): its Resource res acted on, or a
 * new one first in the entry when res is NULL. idx: an index kept for the
 * walk (what it learns of the first resource makes the others cheaper). */
static int edit_resource(ot_attrs_wire *aw, ot_pbedit *e, const ot_pbfield *rf,
                         const ot_pbfield *res, ot_arena *a, ot_wire_index *idx)
{
    if (res) {
        const uint8_t *end = res->val + res->len;
        if (ot_wire_index_of(idx, res->val, end) < 0)
            return OT_WIRE_DECLINED;
        ot_pbedit_enter(e, res);
        int r = ot_attrs_wire_apply_idx(aw, e, res->val, end, OT_WF_RESOURCE_ATTRS, idx);
        ot_pbedit_leave(e, false);
        return r < 0 ? OT_WIRE_DECLINED : 0;
    }
    const uint8_t *fresh;
    size_t n;
    uint8_t *ins;
    if (ot_attrs_wire_fresh(aw, OT_WF_RESOURCE_ATTRS, &fresh, &n) < 0 ||
        !(ins = ot_arena_alloc(a, n + 6)))
        return OT_WIRE_DECLINED;
    size_t w = ot_pb_put_ld_head(ins, OT_WF_RESOURCE, n);
    if (n)
        memcpy(ins + w, fresh, n);
    ot_pbedit_replace(e, rf->val, 0, ins, w + n);
    return 0;
}

/* As a stage of a longer walk (ot_wire_chain). */
typedef struct rstage {
    ot_attrs_wire aw;
    ot_arena *arena;
    ot_wire_index idx;
} rstage;

_Static_assert(sizeof(rstage) <= OT_WIRE_SCRATCH, "rstage must fit a stage's scratch");

static int stage_begin(void *self, ot_batch *b, void *scratch, ot_err *err)
{
    (void)err;
    resource_proc *rp = self;
    rstage *r = scratch;
    r->arena = b->arena;
    memset(&r->idx, 0, sizeof r->idx);
    return ot_attrs_wire_begin(&r->aw, &rp->actions, b->arena) < 0 ? -1 : 0;
}

static int stage_resource(void *scratch, ot_pbedit *e, const ot_pbfield *rf,
                          const ot_pbfield *res)
{
    rstage *r = scratch;
    return edit_resource(&r->aw, e, rf, res, r->arena, &r->idx);
}

/* The same on the protobuf bytes (issue 19): each resource's attribute
 * list is edited where it lies, a missing resource is inserted first in
 * its entry (where protobuf-c writes field 1), and nothing else of the
 * request is looked at: scope entries are skipped by their length. 0 done,
 * OT_WIRE_DECLINED (b untouched), -1 out of memory. */
static int resource_wire(resource_proc *rp, ot_batch *b, ot_err *err)
{
    ot_attrs_wire aw;
    if (ot_attrs_wire_begin(&aw, &rp->actions, b->arena) < 0)
        return ot_err_set(err, "out of memory");
    ot_wire_index idx;
    memset(&idx, 0, sizeof idx);
    ot_pbedit e;
    ot_pbedit_init(&e, b->wire, b->wire_len, b->arena);
    const uint8_t *p = b->wire, *end = b->wire + b->wire_len;
    ot_pbfield f;
    int r, s = 0;
    while (s == 0 && (r = ot_pb_next(&p, end, &f)) > 0) {
        if (f.num != OT_WF_RESOURCE_ENTRIES || f.wt != 2)
            continue;
        const uint8_t *q = f.val, *qe = f.val + f.len;
        ot_pbfield g, res = {0};
        int n_res = 0, rr;
        while ((rr = ot_pb_next(&q, qe, &g)) > 0)
            if (g.num == OT_WF_RESOURCE && g.wt == 2)
                res = g, n_res++;
        if (rr < 0 || n_res > 1) {
            s = OT_WIRE_DECLINED; /* protobuf-c would merge the two */
            break;
        }
        ot_pbedit_enter(&e, &f);
        if (edit_resource(&aw, &e, &f, n_res ? &res : NULL, b->arena, &idx) != 0)
            s = OT_WIRE_DECLINED;
        ot_pbedit_leave(&e, false);
    }
    if (s == 0 && r < 0)
        s = OT_WIRE_DECLINED;
    if (s || !ot_pbedit_changed(&e)) {
        ot_pbedit_free(&e);
        return s;
    }
    return ot_wire_commit(b, &e, b->items, err);
}

static ot_status resource_consume(ot_consumer *self, ot_batch *b, ot_err *err);

static ot_status stage_consume(ot_wire_stage *self, ot_batch *b, ot_err *err)
{
    return resource_consume(&self->base, b, err);
}

static ot_status resource_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    resource_proc *rp = (resource_proc *)self;
    if (!rp->actions.n)
        return ot_consume(rp->next, b, err);
    b = ot_batch_writable(b, err);
    if (!b)
        return OT_PERMANENT;
    if (rp->wire_ok && b->wire) {
        ot_status st;
        if (ot_wire_chain(&rp->stage, b, &st, err) != OT_WIRE_DECLINED)
            return st; /* with the processors after it, in one walk */
        int w = resource_wire(rp, b, err);
        if (w < 0) {
            ot_batch_unref(b);
            return OT_PERMANENT;
        }
        if (w == 0)
            return ot_consume(rp->next, b, err);
    }
    ProtobufCMessage *m = ot_batch_msg_mut(b, err);
    ot_attrs_batch ab;
    if (!m || ot_attrs_begin(&ab, &rp->actions, b->arena) < 0) {
        if (m)
            ot_err_set(err, "out of memory");
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    int r = 0;
    switch (rp->signal) {
    case OT_TRACES: {
        ot_trace_req *q = (ot_trace_req *)m;
        for (size_t i = 0; r == 0 && i < q->n_resource_spans; i++)
            r = apply(&ab, &q->resource_spans[i]->resource, b->arena);
        break;
    }
    case OT_METRICS: {
        ot_metrics_req *q = (ot_metrics_req *)m;
        for (size_t i = 0; r == 0 && i < q->n_resource_metrics; i++)
            r = apply(&ab, &q->resource_metrics[i]->resource, b->arena);
        break;
    }
    default: {
        ot_logs_req *q = (ot_logs_req *)m;
        for (size_t i = 0; r == 0 && i < q->n_resource_logs; i++)
            r = apply(&ab, &q->resource_logs[i]->resource, b->arena);
        break;
    }
    }
    if (r < 0) {
        ot_err_set(err, "out of memory");
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    return ot_consume(rp->next, b, err);
}

static void resource_destroy(void *self)
{
    resource_proc *rp = self;
    if (!rp)
        return;
    ot_attrs_free(&rp->actions);
    free(rp);
}

static void *resource_create(const ot_create_params *p, ot_err *err)
{
    const resource_cfg *cfg = p->config;
    resource_proc *rp = calloc(1, sizeof *rp);
    if (!rp) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    rp->signal = p->signal;
    rp->next = p->next[p->signal];
    rp->stage.base.consume = ot_wire_stage_consume;
    rp->stage.consume = stage_consume;
    rp->stage.base.mutates = true;
    if (!rp->next) {
        ot_err_set(err, "no next consumer for %s", ot_signal_name(p->signal));
        resource_destroy(rp);
        return NULL;
    }
    if (ot_attrs_build(&rp->actions, action_list(cfg), err) < 0) {
        resource_destroy(rp);
        return NULL;
    }
    rp->wire_ok = ot_wire_processors_enabled();
    ot_wire_stage *st = &rp->stage;
    st->on = rp->wire_ok;
    st->reads = OT_WIRE_RES_ATTRS;
    st->writes = OT_WIRE_RES_ATTRS;
    st->next = rp->next;
    st->self = rp;
    st->begin = stage_begin;
    st->resource = stage_resource;
    return rp;
}

static ot_consumer *resource_consumer(void *self, ot_signal s)
{
    resource_proc *rp = self;
    return s == rp->signal ? &rp->stage.base : NULL;
}

const ot_factory ot_resource_processor = {
    .type = "resource",
    .kind = OT_PROCESSOR,
    .signals = OT_SIG_ALL,
    .help = "inserts, updates, deletes or hashes resource attributes",
    .keys = resource_keys,
    .config_size = sizeof(resource_cfg),
    .validate = resource_validate,
    .create = resource_create,
    .destroy = resource_destroy,
    .consumer = resource_consumer,
};
