/* resource.c: the `resource` processor. Applies insert / update / upsert /
 * delete / hash actions to the resource attributes of every resource in a
 * batch, for all three signals: where a deployment names its environment,
 * region or cluster once for everything an agent forwards. */
#include <stdlib.h>
#include <string.h>

#include "model/attrs.h"
#include "pipeline/factory.h"

typedef struct resource_cfg {
    const ot_node *attributes;
    const ot_node *actions;
} resource_cfg;

/* The collector calls the action list `attributes` here; `actions`, as the
 * attributes processor spells it, is taken too. */
static const ot_key resource_keys[] = {
    {.name = "attributes", .type = OT_KT_NODE, .offset = offsetof(resource_cfg, attributes),
     .help = "list of {key, action: insert|update|upsert|delete|hash, value | from_attribute}, "
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
    ot_consumer base;
    ot_consumer *next;
    ot_signal signal;
    ot_attrs actions;
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

static ot_status resource_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    resource_proc *rp = (resource_proc *)self;
    if (!rp->actions.n)
        return ot_consume(rp->next, b, err);
    b = ot_batch_writable(b, err);
    if (!b)
        return OT_PERMANENT;
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
    rp->base.consume = resource_consume;
    rp->base.mutates = true;
    if (!rp->next) {
        ot_err_set(err, "no next consumer for %s", ot_signal_name(p->signal));
        resource_destroy(rp);
        return NULL;
    }
    if (ot_attrs_build(&rp->actions, action_list(cfg), err) < 0) {
        resource_destroy(rp);
        return NULL;
    }
    return rp;
}

static ot_consumer *resource_consumer(void *self, ot_signal s)
{
    resource_proc *rp = self;
    return s == rp->signal ? &rp->base : NULL;
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
