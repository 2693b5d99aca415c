/* subcomp.c: components made by another component from a config node (see
 * subcomp.h). The same steps the service takes for a component written in
 * the file: find the factory, walk the keys, run its checks, create. */
#include "pipeline/subcomp.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"

struct ot_subcomp {
    const ot_factory *f;
    ot_arena *arena; /* the config struct, its strings, the id */
    void *self;
    bool started, shut;
};

static const ot_factory *find(ot_kind kind, const char *type)
{
    return ot_factory_find(kind, type, strlen(type));
}

/* The config struct in a, walked and checked; diagnostics to d. */
static void *fill(const ot_factory *f, const ot_node *node, const char *path, ot_arena *a,
                  ot_diags *d)
{
    void *cfg = ot_arena_calloc(a, f->config_size ? f->config_size : 1);
    if (!cfg)
        return NULL;
    ot_keys_fill(f->keys, node, cfg, a, path, d);
    if (f->validate)
        f->validate(cfg, node, path, d);
    return cfg;
}

size_t ot_subcomp_check(ot_kind kind, const char *type, const ot_node *node, const char *path,
                        ot_diags *d)
{
    const ot_factory *f = find(kind, type);
    size_t before = d->errors;
    if (!f) {
        ot_diag_add(d, OT_SEV_ERROR, node, path, "no %s of type \"%s\" is built in",
                    ot_kind_name(kind), type);
        return 1;
    }
    ot_arena *a = ot_arena_new(0);
    if (!a || !fill(f, node, path, a, d))
        ot_diag_add(d, OT_SEV_ERROR, node, path, "out of memory");
    ot_arena_free(a);
    return d->errors - before;
}

ot_subcomp *ot_subcomp_create(ot_kind kind, const char *type, const char *id, const ot_node *node,
                              ot_host *host, ot_err *err)
{
    const ot_factory *f = find(kind, type);
    if (!f) {
        ot_err_set(err, "no %s of type \"%s\" is built in", ot_kind_name(kind), type);
        return NULL;
    }
    ot_subcomp *c = calloc(1, sizeof *c);
    ot_arena *a = c ? ot_arena_new(0) : NULL;
    if (!a) {
        free(c);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    c->f = f;
    c->arena = a;
    ot_diags d;
    ot_diags_init(&d);
    char *cid = ot_arena_strdup(a, id);
    void *cfg = cid ? fill(f, node, cid, a, &d) : NULL;
    if (!cfg || d.errors) {
        const ot_diag *first = NULL;
        for (size_t i = 0; i < d.n && !first; i++)
            if (d.v[i].sev == OT_SEV_ERROR)
                first = &d.v[i];
        if (first)
            ot_err_set(err, "%s: %s", first->path, first->msg);
        else
            ot_err_set(err, "out of memory");
        ot_diags_free(&d);
        ot_subcomp_free(c);
        return NULL;
    }
    ot_diags_free(&d);
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = cid;
    p.config = cfg;
    p.host = host;
    c->self = f->create(&p, err);
    if (!c->self) {
        ot_subcomp_free(c);
        return NULL;
    }
    return c;
}

int ot_subcomp_start(ot_subcomp *c, ot_err *err)
{
    if (c->started)
        return 0;
    if (c->f->start && c->f->start(c->self, err) < 0)
        return -1;
    c->started = true;
    return 0;
}

ot_consumer *ot_subcomp_consumer(ot_subcomp *c, ot_signal s)
{
    return c->f->consumer && (c->f->signals & OT_SIGBIT(s)) ? c->f->consumer(c->self, s) : NULL;
}

void ot_subcomp_shutdown(ot_subcomp *c, int64_t deadline_ns)
{
    if (!c || c->shut)
        return;
    c->shut = true;
    if (c->started && c->f->shutdown)
        c->f->shutdown(c->self, deadline_ns);
}

void ot_subcomp_free(ot_subcomp *c)
{
    if (!c)
        return;
    ot_subcomp_shutdown(c, ot_now_ns());
    if (c->self && c->f->destroy)
        c->f->destroy(c->self);
    ot_arena_free(c->arena);
    free(c);
}
