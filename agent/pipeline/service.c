/* service.c: instances and wiring (see service.h).
 *
 * Receivers talk to the pipelines through one ot_entry per signal, never
 * directly: that indirection is what lets a reload swap every processor
 * behind a receiver whose listener stays open. A "generation" is one set of
 * processor instances and fan-outs built from one plan; a reload builds the
 * next generation, swaps the entries, and retires the old one after it has
 * flushed. */
#include "pipeline/service.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "export/exphelper.h"
#include "export/segment_log.h"

typedef struct inst {
    ot_plan_comp *comp; /* in plan, which this instance holds a reference to */
    ot_plan *plan;
    void *self;
    int started;
    int kept;                         /* carried over from the previous plan */
    unsigned signals;                 /* receivers: wired signals */
    unsigned want;                    /* receivers: signals the new plan wires */
    unsigned fresh;                   /* receivers: entries made by this reload */
    int bridge;                       /* receivers: replaced, running until the new one starts */
    ot_entry *entry[OT_SIGNAL_COUNT]; /* receivers */
} inst;

typedef struct pipe_run {
    ot_plan_pipe *pp;
    inst *procs; /* n = pp->n_processors */
    ot_fanout *exp_fan;
    ot_consumer *head;
} pipe_run;

typedef struct generation {
    ot_plan *plan;
    pipe_run *pipes;
    size_t n_pipes;
    ot_fanout **fans; /* receiver fan-outs to several pipelines */
    size_t n_fans, cap_fans;
} generation;

struct ot_host {
    inst *ext; /* the extensions components created now may use */
    size_t n_ext;
};

struct ot_service {
    ot_host host;
    inst *ext;
    size_t n_ext;
    inst *recv;
    size_t n_recv;
    inst *exp;
    size_t n_exp;
    generation *gen;
    ot_service_stats stats;
};

static void inst_stop(inst *in, int64_t deadline)
{
    if (in->self && in->started && in->comp->factory->shutdown)
        in->comp->factory->shutdown(in->self, deadline);
    in->started = 0;
}

static void inst_free(inst *in)
{
    if (in->self && in->comp->factory->destroy)
        in->comp->factory->destroy(in->self);
    in->self = NULL;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        ot_entry_free(in->entry[s]);
        in->entry[s] = NULL;
    }
    ot_plan_unref(in->plan);
    in->plan = NULL;
}

static int inst_create(inst *in, ot_plan *plan, ot_plan_comp *c, ot_signal sig,
                       ot_consumer *const next[OT_SIGNAL_COUNT], ot_host *host, ot_err *err)
{
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.host = host;
    p.id = c->id;
    p.config = c->cfg;
    p.signal = sig;
    if (next)
        memcpy(p.next, next, sizeof p.next);
    in->comp = c;
    in->self = c->factory->create(&p, err);
    if (!in->self)
        return ot_err_prefix(err, "%s %s", ot_kind_name(c->kind), c->id);
    in->plan = ot_plan_ref(plan);
    return 0;
}

static int inst_start(inst *in, ot_err *err)
{
    if (in->started)
        return 0;
    if (in->comp->factory->start && in->comp->factory->start(in->self, err) < 0)
        return ot_err_prefix(err, "%s %s", ot_kind_name(in->comp->kind), in->comp->id);
    in->started = 1;
    return 0;
}

static inst *find_inst(inst *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].comp && strcmp(v[i].comp->id, id) == 0)
            return &v[i];
    return NULL;
}

/* ---- generations ------------------------------------------------------- */

static void gen_stop(generation *g, int64_t deadline)
{
    /* Head to tail, so what a processor flushes meets live processors. */
    for (size_t i = 0; g && i < g->n_pipes; i++)
        for (size_t j = 0; j < g->pipes[i].pp->n_processors; j++)
            inst_stop(&g->pipes[i].procs[j], deadline);
}

static void gen_free(generation *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_pipes; i++) {
        pipe_run *pr = &g->pipes[i];
        for (size_t j = 0; pr->procs && j < pr->pp->n_processors; j++)
            inst_free(&pr->procs[j]);
        free(pr->procs);
        ot_fanout_free(pr->exp_fan);
    }
    for (size_t i = 0; i < g->n_fans; i++)
        ot_fanout_free(g->fans[i]);
    free(g->fans);
    free(g->pipes);
    ot_plan_unref(g->plan);
    free(g);
}

static generation *gen_build(ot_plan *plan, inst *exp, size_t n_exp, ot_host *host,
                             ot_service_stats *st, ot_err *err)
{
    generation *g = calloc(1, sizeof *g);
    if (!g) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    g->plan = ot_plan_ref(plan);
    g->pipes = calloc(plan->n_pipes + 1, sizeof *g->pipes);
    /* a receiver's targets are looked up once when it is made and once more
     * when a reload rewires it or its predecessor */
    g->cap_fans = (plan->n_comps + 1) * OT_SIGNAL_COUNT * 3;
    g->fans = calloc(g->cap_fans, sizeof *g->fans);
    if (!g->pipes || !g->fans)
        goto oom;
    for (size_t i = 0; i < plan->n_pipes; i++) {
        ot_plan_pipe *pp = &plan->pipes[i];
        pipe_run *pr = &g->pipes[g->n_pipes++];
        pr->pp = pp;
        ot_consumer *targets[64];
        size_t nt = 0;
        for (size_t j = 0; j < pp->n_exporters && nt < 64; j++) {
            inst *e = find_inst(exp, n_exp, pp->exporters[j]->id);
            targets[nt++] = e->comp->factory->consumer(e->self, pp->signal);
        }
        ot_consumer *tail = targets[0];
        if (nt > 1) {
            pr->exp_fan = ot_fanout_new(targets, nt);
            if (!pr->exp_fan)
                goto oom;
            tail = ot_fanout_consumer(pr->exp_fan);
        }
        pr->procs = calloc(pp->n_processors + 1, sizeof *pr->procs);
        if (!pr->procs)
            goto oom;
        for (size_t j = pp->n_processors; j-- > 0;) {
            ot_consumer *next[OT_SIGNAL_COUNT] = {0};
            next[pp->signal] = tail;
            if (inst_create(&pr->procs[j], plan, pp->processors[j], pp->signal, next, host, err) < 0)
                goto fail;
            st->processors_created++;
            tail = pp->processors[j]->factory->consumer(pr->procs[j].self, pp->signal);
        }
        pr->head = tail;
    }
    return g;
oom:
    ot_err_set(err, "out of memory");
fail:
    gen_free(g);
    return NULL;
}

static int gen_start(generation *g, ot_err *err)
{
    /* Tail to head: a processor never sees data before what follows it runs. */
    for (size_t i = 0; i < g->n_pipes; i++)
        for (size_t j = g->pipes[i].pp->n_processors; j-- > 0;)
            if (inst_start(&g->pipes[i].procs[j], err) < 0)
                return -1;
    return 0;
}

/* The consumer a receiver's signal feeds in this generation: the head of
 * the one pipeline that lists it, or a fan-out over several. */
static ot_consumer *gen_receiver_target(generation *g, const char *id, ot_signal sig, ot_err *err)
{
    ot_consumer *heads[64];
    size_t n = 0;
    for (size_t i = 0; i < g->n_pipes && n < 64; i++) {
        ot_plan_pipe *pp = g->pipes[i].pp;
        if (pp->signal != sig)
            continue;
        for (size_t j = 0; j < pp->n_receivers; j++)
            if (strcmp(pp->receivers[j]->id, id) == 0)
                heads[n++] = g->pipes[i].head;
    }
    if (n == 1)
        return heads[0];
    if (n == 0)
        return NULL;
    ot_fanout *f = g->n_fans < g->cap_fans ? ot_fanout_new(heads, n) : NULL;
    if (!f) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    g->fans[g->n_fans++] = f;
    return ot_fanout_consumer(f);
}

/* ---- exporters and receivers for a plan -------------------------------- */

/* Fills out[] with one instance per exporter (or extension) in plan: kept
 * from old when its settings are the same, else created. */
static int build_shared(ot_service *s, ot_kind kind, ot_plan *plan, inst *old_v, size_t n_old,
                        bool may_keep, inst *out, size_t *n_out, ot_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->n_comps; i++) {
        ot_plan_comp *c = &plan->comps[i];
        if (c->kind != kind || !c->used)
            continue;
        inst *old = find_inst(old_v, n_old, c->id);
        if (may_keep && old && old->self && strcmp(old->comp->yaml, c->yaml) == 0) {
            out[n] = *old;
            old->self = NULL; /* moved */
            out[n].kept = 1;
            out[n++].plan = ot_plan_ref(old->plan);
            if (kind == OT_EXPORTER)
                s->stats.exporters_kept++;
            continue;
        }
        if (inst_create(&out[n], plan, c, OT_TRACES, NULL, &s->host, err) < 0) {
            *n_out = n;
            return -1;
        }
        n++;
        if (kind == OT_EXPORTER)
            s->stats.exporters_created++;
    }
    *n_out = n;
    return 0;
}

/* Gives instances that were carried over back to the old list. */
static void give_back(inst *v, size_t n, inst *old_v, size_t n_old)
{
    for (size_t i = 0; i < n; i++) {
        inst *old = v[i].kept ? find_inst(old_v, n_old, v[i].comp->id) : NULL;
        if (!old)
            continue;
        for (int s = 0; s < OT_SIGNAL_COUNT; s++)
            if (v[i].fresh & OT_SIGBIT(s)) {
                ot_entry_free(v[i].entry[s]);
                v[i].entry[s] = NULL;
            }
        v[i].fresh = 0;
        old->self = v[i].self;
        memcpy(old->entry, v[i].entry, sizeof old->entry);
        v[i].self = NULL;
        v[i].started = 0;
        memset(v[i].entry, 0, sizeof v[i].entry);
    }
}

/* Gives a receiver an entry for each signal in sigs it has none for yet,
 * aimed at generation g. */
static int add_entries(inst *in, generation *g, unsigned sigs, ot_err *err)
{
    for (int sig = 0; sig < OT_SIGNAL_COUNT; sig++) {
        if (!(sigs & OT_SIGBIT(sig)) || in->entry[sig])
            continue;
        ot_consumer *t = gen_receiver_target(g, in->comp->id, (ot_signal)sig, err);
        in->entry[sig] = t ? ot_entry_new(t) : NULL;
        if (!in->entry[sig])
            return ot_err_set(err, "out of memory");
        in->fresh |= OT_SIGBIT(sig);
    }
    return 0;
}

/* Points a running receiver's entries at generation g. An entry of a
 * signal g does not wire is aimed at nothing but kept: a thread may be
 * about to enter it. When the wired signals change the receiver is handed
 * its new consumers. */
static void recv_aim(inst *r, generation *g)
{
    for (int sig = 0; sig < OT_SIGNAL_COUNT; sig++)
        if (r->entry[sig] && !(r->fresh & OT_SIGBIT(sig)))
            ot_entry_swap(r->entry[sig], gen_receiver_target(g, r->comp->id, (ot_signal)sig, NULL));
    r->fresh = 0;
    if (r->want == r->signals || !r->comp->factory->rewire)
        return;
    ot_consumer *next[OT_SIGNAL_COUNT] = {0};
    for (int sig = 0; sig < OT_SIGNAL_COUNT; sig++)
        if ((r->want & OT_SIGBIT(sig)) && r->entry[sig])
            next[sig] = ot_entry_consumer(r->entry[sig]);
    r->comp->factory->rewire(r->self, next);
    ot_info("service", "receiver rewired; its listeners stay open", "id=%s", r->comp->id);
    r->signals = r->want;
}

static int build_receivers(ot_service *s, ot_plan *plan, generation *g, bool ext_same, inst *out,
                           size_t *n_out, ot_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->n_comps; i++) {
        ot_plan_comp *c = &plan->comps[i];
        if (c->kind != OT_RECEIVER || !c->used)
            continue;
        inst *old = s ? find_inst(s->recv, s->n_recv, c->id) : NULL;
        /* a receiver may hold an authenticator: it goes when they change */
        if (old && old->self && ext_same && strcmp(old->comp->yaml, c->yaml) == 0 &&
            (old->signals == c->signals || c->factory->rewire)) {
            out[n] = *old; /* entries are swapped when the new generation commits */
            old->self = NULL;
            memset(old->entry, 0, sizeof old->entry);
            out[n].kept = 1;
            out[n].want = c->signals;
            out[n].fresh = 0;
            out[n].plan = ot_plan_ref(old->plan);
            s->stats.receivers_kept++;
            if (add_entries(&out[n++], g, c->signals, err) < 0) {
                *n_out = n;
                return -1;
            }
            continue;
        }
        inst *in = &out[n++];
        ot_consumer *next[OT_SIGNAL_COUNT] = {0};
        in->signals = in->want = c->signals;
        for (int sig = 0; sig < OT_SIGNAL_COUNT; sig++) {
            if (!(c->signals & OT_SIGBIT(sig)))
                continue;
            ot_consumer *t = gen_receiver_target(g, c->id, (ot_signal)sig, err);
            in->entry[sig] = t ? ot_entry_new(t) : NULL;
            if (!in->entry[sig]) {
                *n_out = n;
                return ot_err_set(err, "out of memory");
            }
            next[sig] = ot_entry_consumer(in->entry[sig]);
        }
        if (inst_create(in, plan, c, OT_TRACES, next, &s->host, err) < 0) {
            *n_out = n;
            return -1;
        }
        if (s)
            s->stats.receivers_created++;
    }
    *n_out = n;
    return 0;
}

static void stop_all(inst *v, size_t n, int64_t deadline)
{
    for (size_t i = 0; i < n; i++)
        inst_stop(&v[i], deadline);
}

static void free_all(inst *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].self || v[i].plan || v[i].entry[OT_TRACES] || v[i].entry[OT_METRICS] ||
            v[i].entry[OT_LOGS])
            inst_free(&v[i]);
    free(v);
}

static size_t count_kind(ot_plan *plan, ot_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->n_comps; i++)
        n += plan->comps[i].kind == k && plan->comps[i].used;
    return n;
}

/* Whether two instances of a receiver would listen on a common port, so
 * the old one must stop before the new one binds. Receivers that do not
 * say where they listen are taken to clash. */
static bool shares_endpoint(const inst *a, const inst *b)
{
    const ot_factory *fa = a->comp->factory, *fb = b->comp->factory;
    if (!fa->listens || !fb->listens)
        return true;
    const ot_endpoint *ea[8], *eb[8];
    size_t na = fa->listens(a->comp->cfg, ea, 8), nb = fb->listens(b->comp->cfg, eb, 8);
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (ea[i]->port == eb[j]->port && ea[i]->port != 0)
                return true;
    return false;
}

/* A new receiver n could not start: put back the one it replaced, in n's
 * slot and wired to generation g. A bridged one is still running on its
 * listener and is simply taken; a stopped one is made again from its own
 * settings and listens where it did. */
static int recv_roll_back(ot_service *s, inst *n, generation *g, ot_err *err)
{
    inst *o = find_inst(s->recv, s->n_recv, n->comp->id);
    if (!o || !o->self)
        return -1;
    if (o->bridge) {
        if (n->self && n->comp->factory->destroy)
            n->comp->factory->destroy(n->self);
        for (int sig = 0; sig < OT_SIGNAL_COUNT; sig++)
            ot_entry_free(n->entry[sig]);
        ot_plan_unref(n->plan);
        unsigned want = n->want;
        *n = *o;
        n->bridge = 0;
        n->want = want;
        o->self = NULL;
        o->plan = NULL;
        o->started = 0;
        memset(o->entry, 0, sizeof o->entry);
        if (n->comp->factory->rewire && add_entries(n, g, want, err) == 0) {
            n->fresh = 0;
            recv_aim(n, g);
        }
        return 0;
    }
    inst back;
    memset(&back, 0, sizeof back);
    ot_consumer *next[OT_SIGNAL_COUNT] = {0};
    for (int sig = 0; sig < OT_SIGNAL_COUNT; sig++)
        if (n->entry[sig])
            next[sig] = ot_entry_consumer(n->entry[sig]);
    if (inst_create(&back, o->plan, o->comp, OT_TRACES, next, &s->host, err) < 0)
        return -1;
    if (inst_start(&back, err) < 0) {
        inst_free(&back);
        return -1;
    }
    if (n->self && n->comp->factory->destroy)
        n->comp->factory->destroy(n->self);
    ot_plan_unref(n->plan);
    n->self = back.self;
    n->plan = back.plan;
    n->comp = back.comp;
    n->started = 1;
    return 0;
}

ot_service *ot_service_start(ot_plan *plan, ot_err *err)
{
    ot_service *s = calloc(1, sizeof *s);
    if (!s) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    int rc = ot_service_reload(s, plan, err);
    if (rc < 0) {
        free(s);
        return NULL;
    }
    if (rc > 0) {
        /* Something did not start: nothing is left running. */
        ot_service_shutdown(s, ot_now_ns());
        return NULL;
    }
    return s;
}

int ot_service_reload(ot_service *s, ot_plan *plan, ot_err *err)
{
    int64_t deadline = ot_now_ns() + plan->telemetry.shutdown_timeout_ns;
    inst *ext = calloc(count_kind(plan, OT_EXTENSION) + 1, sizeof *ext);
    inst *exp = calloc(count_kind(plan, OT_EXPORTER) + 1, sizeof *exp);
    inst *recv = calloc(count_kind(plan, OT_RECEIVER) + 1, sizeof *recv);
    size_t n_ext = 0, n_exp = 0, n_recv = 0;
    generation *g = NULL;
    if (!ext || !exp || !recv) {
        ot_err_set(err, "out of memory");
        goto undo;
    }
    /* Everything that can fail happens before the first swap, so a failed
     * reload leaves the old pipelines exactly as they were. Extensions come
     * first: components look them up through the host when created. */
    if (build_shared(s, OT_EXTENSION, plan, s->ext, s->n_ext, true, ext, &n_ext, err) < 0)
        goto undo;
    for (size_t i = 0; i < n_ext; i++)
        if (inst_start(&ext[i], err) < 0)
            goto undo;
    s->host.ext = ext;
    s->host.n_ext = n_ext;
    /* An exporter is kept only while the extensions it may use are too: a
     * persistent queue must move when its storage settings change. */
    bool ext_same = n_ext == s->n_ext;
    for (size_t i = 0; i < n_ext; i++)
        ext_same &= ext[i].kept;
    if (build_shared(s, OT_EXPORTER, plan, s->exp, s->n_exp, ext_same, exp, &n_exp, err) < 0)
        goto undo;
    /* A replacement for a running exporter of the same id starts only after
     * the old one stopped: both may want the same persistent queue. */
    for (size_t i = 0; i < n_exp; i++) {
        inst *old = find_inst(s->exp, s->n_exp, exp[i].comp->id);
        if (!(old && old->self) && inst_start(&exp[i], err) < 0)
            goto undo;
    }
    g = gen_build(plan, exp, n_exp, &s->host, &s->stats, err);
    if (!g || gen_start(g, err) < 0)
        goto undo;
    if (build_receivers(s, plan, g, ext_same, recv, &n_recv, err) < 0)
        goto undo;

    /* Commit. Kept receivers are pointed at the new generation; the swap
     * returns once no call is still inside the old one. From here a failure
     * no longer rolls back: it is reported as a reload applied with errors,
     * except for a receiver that cannot start, which goes back to its
     * previous listener. */
    for (size_t i = 0; i < n_recv; i++)
        if (recv[i].kept)
            recv_aim(&recv[i], g);
    /* A changed receiver that listens elsewhere than the one it replaces
     * lets the old one run on, fed into the new pipelines, until it has
     * started itself. The others stop before new ones bind, since a changed
     * receiver often listens on the same port. */
    for (size_t i = 0; i < n_recv && ext_same; i++) {
        inst *o = recv[i].kept ? NULL : find_inst(s->recv, s->n_recv, recv[i].comp->id);
        if (o && o->self && o->started && !shares_endpoint(o, &recv[i])) {
            o->bridge = 1;
            recv_aim(o, g);
        }
    }
    for (size_t i = 0; i < s->n_recv; i++)
        if (!s->recv[i].bridge)
            inst_stop(&s->recv[i], deadline);
    gen_stop(s->gen, deadline);
    /* An exporter replaced by one of the same id hands its memory queue on
     * rather than dropping it at the deadline (export/exphelper.h). */
    for (size_t i = 0; i < s->n_exp; i++)
        if (s->exp[i].self && find_inst(exp, n_exp, s->exp[i].comp->id))
            ot_exph_replacing(s->exp[i].comp->id);
    stop_all(s->exp, s->n_exp, deadline);
    stop_all(s->ext, s->n_ext, deadline);
    int rc = 0;
    ot_err e2 = {{0}};
    for (size_t i = 0; i < n_exp; i++)
        if (!exp[i].started && inst_start(&exp[i], &e2) < 0) {
            ot_error("service", "exporter failed to start", "id=%s error=\"%s\"", exp[i].comp->id,
                     e2.msg);
            rc = 1;
        }
    ot_exph_parked_drop();
    for (size_t i = 0; i < n_recv; i++)
        if (!recv[i].started && inst_start(&recv[i], &e2) < 0) {
            rc = 1;
            ot_err e3 = {{0}};
            if (recv_roll_back(s, &recv[i], g, &e3) == 0)
                ot_warn("service", "receiver failed to start; rolled back to its previous listener",
                        "id=%s error=\"%s\"", recv[i].comp->id, e2.msg);
            else
                ot_error("service", "receiver failed to start", "id=%s error=\"%s\"%s%s%s",
                         recv[i].comp->id, e2.msg, e3.msg[0] ? " rollback=\"" : "", e3.msg,
                         e3.msg[0] ? "\"" : "");
        }
    for (size_t i = 0; i < s->n_recv; i++)
        if (s->recv[i].bridge) {
            s->recv[i].bridge = 0;
            inst_stop(&s->recv[i], deadline);
        }
    if (rc && err)
        *err = e2;
    free_all(s->recv, s->n_recv);
    gen_free(s->gen);
    free_all(s->exp, s->n_exp);
    free_all(s->ext, s->n_ext);
    s->ext = ext;
    s->n_ext = n_ext;
    s->recv = recv;
    s->n_recv = n_recv;
    s->exp = exp;
    s->n_exp = n_exp;
    s->gen = g;
    return rc;

undo:
    /* Give kept instances back to the running service. */
    give_back(ext, n_ext, s->ext, s->n_ext);
    give_back(exp, n_exp, s->exp, s->n_exp);
    give_back(recv, n_recv, s->recv, s->n_recv);
    s->host.ext = s->ext;
    s->host.n_ext = s->n_ext;
    stop_all(recv, n_recv, deadline);
    gen_stop(g, deadline);
    stop_all(exp, n_exp, deadline);
    stop_all(ext, n_ext, deadline);
    free_all(recv, n_recv);
    gen_free(g);
    free_all(exp, n_exp);
    free_all(ext, n_ext);
    return -1;
}

void ot_service_shutdown(ot_service *s, int64_t deadline)
{
    if (!s)
        return;
    stop_all(s->recv, s->n_recv, deadline);
    gen_stop(s->gen, deadline);
    stop_all(s->exp, s->n_exp, deadline);
    stop_all(s->ext, s->n_ext, deadline);
    free_all(s->recv, s->n_recv);
    gen_free(s->gen);
    free_all(s->exp, s->n_exp);
    free_all(s->ext, s->n_ext);
    ot_exph_parked_drop();
    free(s);
}

void *ot_host_extension(ot_host *h, const char *id)
{
    inst *in = h ? find_inst(h->ext, h->n_ext, id) : NULL;
    return in ? in->self : NULL;
}

ot_auth *ot_host_authenticator(ot_host *h, const char *id, ot_err *err)
{
    if (!id || !*id)
        return NULL;
    inst *in = h ? find_inst(h->ext, h->n_ext, id) : NULL;
    if (!in || !in->self) {
        ot_err_set(err, "auth.authenticator: no extension \"%s\" is configured", id);
        return NULL;
    }
    if (!in->comp->factory->authenticator) {
        ot_err_set(err, "auth.authenticator: extension \"%s\" does not authenticate requests", id);
        return NULL;
    }
    return in->self;
}

ot_auth *ot_service_authenticator(ot_service *s, const char *id, ot_err *err)
{
    return ot_host_authenticator(s ? &s->host : NULL, id, err);
}

int ot_host_open_queue(ot_host *h, const char *storage, const char *id, ot_segment_log **out,
                       ot_err *err)
{
    *out = NULL;
    if (!storage || !*storage)
        return 0;
    const ot_segment_log_opts *o = ot_host_extension(h, storage);
    if (!o)
        return ot_err_set(err, "sending_queue.storage: no extension \"%s\" is configured", storage);
    *out = ot_segment_log_open(o, id, err);
    return *out ? 0 : ot_err_prefix(err, "sending_queue.storage");
}

int ot_host_storage_dir(ot_host *h, const char *storage, const char **dir, bool *sync,
                        ot_err *err)
{
    const ot_segment_log_opts *o = storage && *storage ? ot_host_extension(h, storage) : NULL;
    if (!o)
        return ot_err_set(err, "storage: no extension \"%s\" is configured",
                          storage ? storage : "");
    *dir = o->directory;
    *sync = o->fsync == OT_FSYNC_BATCH;
    return 0;
}

ot_service_stats ot_service_get_stats(const ot_service *s)
{
    return s->stats;
}
