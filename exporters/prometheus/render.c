/* render.c: what a scrape works out once rather than once per stream: its
 * families (HELP, TYPE and UNIT lines), what a stream's shared identity
 * comes to (its family, its resource's job, instance and scope labels)
 * and the target_info series of each target. A stream's own labels and
 * samples are text.c's; scrape.c decides what is written when. */
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "render_int.h"

typedef struct metric_ent {
    char *key; /* name \0 unit \0 type monotonic */
    size_t key_len;
    size_t fam; /* index into families; (size_t)-1: unused slot */
    bool used;
} metric_ent;

/* ---- small hash tables -------------------------------------------------- */

static void *slot_of(table *t, size_t esz, uint64_t h, const char *key, size_t len,
                     bool (*same)(const void *e, const char *key, size_t len),
                     bool (*used)(const void *e), bool *found)
{
    if ((t->n + 1) * 2 > t->cap)
        return NULL;
    size_t i = (size_t)h & (t->cap - 1);
    for (;;) {
        char *e = (char *)t->v + i * esz;
        if (!used(e)) {
            *found = false;
            return e;
        }
        if (same(e, key, len)) {
            *found = true;
            return e;
        }
        i = (i + 1) & (t->cap - 1);
    }
}

static int grow(table *t, size_t esz, uint64_t (*hash_of)(const void *e),
                bool (*used)(const void *e))
{
    if ((t->n + 1) * 2 <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 64;
    char *v = calloc(cap, esz);
    if (!v)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        char *e = (char *)t->v + i * esz;
        if (!used(e))
            continue;
        size_t j = (size_t)hash_of(e) & (cap - 1);
        while (used(v + j * esz))
            j = (j + 1) & (cap - 1);
        memcpy(v + j * esz, e, esz);
    }
    free(t->v);
    t->v = v;
    t->cap = cap;
    return 0;
}

static bool me_used(const void *e) { return ((const metric_ent *)e)->used; }
static bool me_same(const void *e, const char *k, size_t n)
{
    const metric_ent *m = e;
    return m->key_len == n && memcmp(m->key, k, n) == 0;
}
static uint64_t me_hash(const void *e)
{
    const metric_ent *m = e;
    return ot_mstore_hash(m->key, m->key_len, 1);
}
static bool re_used(const void *e) { return ((const res_ent *)e)->used; }
static bool re_same(const void *e, const char *k, size_t n)
{
    const res_ent *r = e;
    return r->key_len == n && memcmp(r->key, k, n) == 0;
}
static uint64_t re_hash(const void *e)
{
    const res_ent *r = e;
    return ot_mstore_hash(r->key, r->key_len, 2);
}

typedef struct fam_slot {
    size_t idx1; /* index + 1; 0: empty */
    uint64_t h;
} fam_slot;

/* ---- families ----------------------------------------------------------- */

void pm_header(rctx *r, const pm_fam *f, ot_buf *b)
{
    const char *type = f->kind == OT_PACC_COUNTER ? "counter"
                       : f->kind == OT_PACC_HISTOGRAM ? "histogram"
                       : f->kind == OT_PACC_SUMMARY ? "summary"
                                               : "gauge";
    size_t nl = strlen(f->name);
    if (r->fmt == PM_FMT_OPENMETRICS && f->kind == OT_PACC_COUNTER && nl > 6 &&
        strcmp(f->name + nl - 6, "_total") == 0)
        nl -= 6; /* the family is named without it; the sample keeps it */
    ot_buf_puts(b, "# HELP ");
    ot_buf_append(b, f->name, nl);
    ot_buf_putc(b, ' ');
    pm_escape(b, f->help, strlen(f->help), r->fmt != PM_FMT_OPENMETRICS);
    ot_buf_puts(b, "\n# TYPE ");
    ot_buf_append(b, f->name, nl);
    ot_buf_printf(b, " %s\n", type);
    size_t ul = strlen(f->unit);
    if (r->fmt == PM_FMT_OPENMETRICS && ul && nl > ul + 1 && f->name[nl - ul - 1] == '_' &&
        memcmp(f->name + nl - ul, f->unit, ul) == 0) {
        ot_buf_puts(b, "# UNIT ");
        ot_buf_append(b, f->name, nl);
        ot_buf_printf(b, " %s\n", f->unit);
    }
}

/* The family named name (created with kind when new); NULL when the name
 * belongs to a family of another kind, or on out-of-memory. */
static pm_fam *family(rctx *r, const char *name, int kind, const char *otel_name,
                      size_t otel_len, const char *unit, size_t *idx)
{
    table *t = &r->fam_by_name;
    size_t nl = strlen(name);
    uint64_t h = ot_mstore_hash(name, nl, 3);
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        fam_slot *v = calloc(cap, sizeof *v);
        if (!v)
            return NULL;
        for (size_t i = 0; i < t->cap; i++) {
            fam_slot *e = (fam_slot *)t->v + i;
            if (!e->idx1)
                continue;
            size_t j = (size_t)e->h & (cap - 1);
            while (v[j].idx1)
                j = (j + 1) & (cap - 1);
            v[j] = *e;
        }
        free(t->v);
        t->v = v;
        t->cap = cap;
    }
    fam_slot *v = t->v;
    size_t i = (size_t)h & (t->cap - 1);
    while (v[i].idx1) {
        pm_fam *f = &r->fams[v[i].idx1 - 1];
        if (v[i].h == h && strcmp(f->name, name) == 0) {
            *idx = v[i].idx1 - 1;
            return f->kind == kind ? f : NULL;
        }
        i = (i + 1) & (t->cap - 1);
    }
    if (r->n_fams == r->cap_fams) {
        size_t cap = r->cap_fams ? r->cap_fams * 2 : 32;
        pm_fam *nf = realloc(r->fams, cap * sizeof *nf);
        if (!nf)
            return NULL;
        r->fams = nf;
        r->cap_fams = cap;
    }
    ot_buf_reset(&r->tmp);
    if (otel_name)
        pm_core_help(r->c, otel_name, otel_len, &r->tmp);
    if (!r->tmp.len && otel_name)
        ot_buf_append(&r->tmp, otel_name, otel_len);
    else if (!otel_name)
        ot_buf_puts(&r->tmp, "Target metadata");
    pm_fam *f = &r->fams[r->n_fams];
    *f = (pm_fam){strdup(name), nl, nl > 6 && !strcmp(name + nl - 6, "_total"), kind,
                  strndup(r->tmp.data ? r->tmp.data : "", r->tmp.len), strdup(unit ? unit : ""),
                  OT_BUF_INIT, 0, 0};
    if (!f->name || !f->help || !f->unit || r->tmp.oom) {
        free(f->name);
        free(f->help);
        free(f->unit);
        return NULL;
    }
    v[i] = (fam_slot){++r->n_fams, h};
    t->n++;
    *idx = r->n_fams - 1;
    return f;
}

/* ---- resources ---------------------------------------------------------- */

/* The labels ot_prom_resource hands over, in the scrape's format. */
typedef struct res_build {
    bool pb;
    ot_buf lb, tl; /* every series' labels; target_info's */
    ot_buf sig;    /* job \0 instance: the target's, as target_info is keyed */
    bool job, instance;
    char *names[MAX_LABELS + 8]; /* lb's label names, owned */
    size_t nn;
} res_build;

static void res_series(void *ctx, const char *name, size_t nl, const char *val, size_t vl)
{
    res_build *x = ctx;
    if (x->nn >= MAX_LABELS)
        return;
    pm_put_label(x->pb, &x->lb, name, nl, val, vl);
    x->names[x->nn++] = strndup(name, nl);
}

static void res_target(void *ctx, const char *name, size_t nl, const char *val, size_t vl)
{
    res_build *x = ctx;
    pm_put_label(x->pb, &x->tl, name, nl, val, vl);
    /* job and instance come first and only from the service attributes
     * (a resource attribute of either name gives way to them) */
    bool job = !x->job && !x->instance && nl == 3 && !memcmp(name, "job", 3);
    bool inst = !x->instance && nl == 8 && !memcmp(name, "instance", 8);
    if (job || inst) {
        if (inst)
            ot_buf_putc(&x->sig, 0);
        ot_buf_append(&x->sig, val, vl);
        x->job |= job && vl;
        x->instance |= inst && vl;
    }
}

/* target_info's name: the namespace goes before it as the collector puts
 * it there, sanitised as a label name is, then "_" (a metric's own name
 * takes the namespace as one more name token). */
static const char *target_name(rctx *r)
{
    const char *ns = r->c->o.ns;
    if (!ns || !*ns)
        return "target_info";
    ot_buf_reset(&r->name);
    ot_prom_label_name(&r->name, ns, strlen(ns));
    ot_buf_puts(&r->name, "_target_info");
    ot_buf_putc(&r->name, 0);
    return r->name.oom ? "target_info" : r->name.data;
}

/* The labels every stream of a resource and scope carries, and the
 * resource's target_info series. */
static res_ent *resource(rctx *r, const ot_mstore_info *in)
{
    bool pb = r->fmt == PM_FMT_PROTOBUF;
    ot_buf *key = &r->tmp;
    ot_buf_reset(key);
    ot_buf_append(key, in->resource.p, (size_t)(in->resource.end - in->resource.p));
    ot_buf_append(key, in->scope_name.p, in->scope_name.n);
    ot_buf_putc(key, 0);
    ot_buf_append(key, in->scope_version.p, in->scope_version.n);
    if (key->oom || grow(&r->resources, sizeof(res_ent), re_hash, re_used) < 0)
        return NULL;
    bool found = false;
    res_ent *e = slot_of(&r->resources, sizeof(res_ent), ot_mstore_hash(key->data, key->len, 2),
                         key->data, key->len, re_same, re_used, &found);
    if (!e)
        return NULL;
    if (found)
        return e;
    res_build x = {.pb = pb};
    ot_prom_resource(in, r->c->o.resource_to_labels, res_series, res_target, &x, &r->name);
    char **names = x.names;
    size_t nn = x.nn;
    ot_buf lb = x.lb, tl = x.tl;
    for (size_t i = 0; i < r->c->o.n_const && nn < MAX_LABELS + 8; i++) {
        ot_buf_reset(&r->name);
        ot_prom_label_name(&r->name, r->c->o.const_keys[i], strlen(r->c->o.const_keys[i]));
        pm_put_label(pb, &lb, r->name.data, r->name.len, r->c->o.const_vals[i],
                  strlen(r->c->o.const_vals[i]));
        names[nn++] = strndup(r->name.data, r->name.len);
    }
    *e = (res_ent){malloc(key->len ? key->len : 1), key->len, NULL, 0, NULL, nn, true};
    if (e->key)
        memcpy(e->key, key->data, key->len);
    e->labels = lb.data ? lb.data : strdup("");
    e->labels_len = lb.len;
    e->names = malloc((nn ? nn : 1) * sizeof *e->names);
    for (size_t i = 0; i < nn; i++) {
        if (e->names)
            e->names[i] = names[i];
        else
            free(names[i]);
    }
    if (!e->names)
        e->n_names = 0;
    r->resources.n++;
    /* One target_info per target, as the collector's exporter has it: a
     * resource with both a job and an instance gives the series of its
     * job and instance (the first resource of a target met gives the
     * other labels), even when it has no other attribute; a resource
     * without both gives none. */
    if (x.job && x.instance && !x.sig.oom &&
        grow(&r->targets, sizeof(res_ent), re_hash, re_used) == 0) {
        res_ent *t = slot_of(&r->targets, sizeof(res_ent),
                             ot_mstore_hash(x.sig.data, x.sig.len, 2), x.sig.data, x.sig.len,
                             re_same, re_used, &found);
        if (!found && t) {
            *t = (res_ent){malloc(x.sig.len), x.sig.len, NULL, 0, NULL, 0, true};
            if (t->key)
                memcpy(t->key, x.sig.data, x.sig.len);
            r->targets.n++;
            size_t idx;
            pm_fam *f = family(r, target_name(r), OT_PACC_GAUGE, NULL, 0, NULL, &idx);
            if (f && r->fmt == PM_FMT_PROTOBUF) {
                ot_pacc_state one = {.kind = OT_PACC_GAUGE, .value = 1};
                pm_pb_metric(&f->pre, &r->pb, &tl, &one, 0);
            } else if (f) {
                ot_buf_puts(&f->pre, f->name);
                ot_buf_putc(&f->pre, '{');
                ot_buf_append(&f->pre, tl.data + 1, tl.len - 1);
                ot_buf_puts(&f->pre, "} 1\n");
            }
        }
    }
    ot_buf_free(&x.sig);
    ot_buf_free(&tl);
    return e;
}

/* ---- shared identities ------------------------------------------------- */

base_ent *pm_base(rctx *r, uint64_t id, bool insert)
{
    table *t = &r->bases;
    if (insert && (t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        base_ent *v = calloc(cap, sizeof *v);
        if (!v)
            return NULL;
        for (size_t i = 0; i < t->cap; i++) {
            base_ent *e = (base_ent *)t->v + i;
            if (!e->id)
                continue;
            size_t j = (size_t)ot_mstore_hash(&e->id, 8, 4) & (cap - 1);
            while (v[j].id)
                j = (j + 1) & (cap - 1);
            v[j] = *e;
        }
        free(t->v);
        t->v = v;
        t->cap = cap;
    }
    if (!t->cap)
        return NULL;
    base_ent *v = t->v;
    size_t i = (size_t)ot_mstore_hash(&id, 8, 4) & (t->cap - 1);
    for (; v[i].id; i = (i + 1) & (t->cap - 1))
        if (v[i].id == id)
            return &v[i];
    if (!insert)
        return NULL;
    v[i] = (base_ent){id, BASE_UNKNOWN, 0, (uint32_t)t->n, {0}};
    t->n++;
    return &v[i];
}

/* The family kind of a metric identity (exponential histograms are shown
 * as histograms). */
static int kind_of(const ot_mstore_info *in)
{
    switch (in->type) {
    case OT_MSTORE_SUM:
        return in->monotonic ? OT_PACC_COUNTER : OT_PACC_GAUGE;
    case OT_MSTORE_HISTOGRAM:
    case OT_MSTORE_EXP_HISTOGRAM:
        return OT_PACC_HISTOGRAM;
    case OT_MSTORE_SUMMARY:
        return OT_PACC_SUMMARY;
    default:
        return OT_PACC_GAUGE;
    }
}

void pm_resolve(rctx *r, base_ent *b, const ot_mstore_stream *st)
{
    ot_mstore_info in;
    ot_mstore_stream_info(st, &in);
    int kind = kind_of(&in);
    ot_buf *key = &r->tmp;
    ot_buf_reset(key);
    ot_buf_append(key, in.name.p, in.name.n);
    ot_buf_putc(key, 0);
    ot_buf_append(key, in.unit.p, in.unit.n);
    ot_buf_putc(key, 0);
    ot_buf_putc(key, (char)in.type);
    ot_buf_putc(key, (char)in.monotonic);
    ot_buf_putc(key, (char)kind);
    if (key->oom || grow(&r->metrics, sizeof(metric_ent), me_hash, me_used) < 0) {
        r->err = -1;
        return;
    }
    bool found = false;
    metric_ent *me = slot_of(&r->metrics, sizeof(metric_ent),
                             ot_mstore_hash(key->data, key->len, 1), key->data, key->len, me_same,
                             me_used, &found);
    if (!me) {
        r->err = -1;
        return;
    }
    if (!found) {
        *me = (metric_ent){malloc(key->len), key->len, (size_t)-1, true};
        if (!me->key) {
            r->err = -1;
            return;
        }
        memcpy(me->key, key->data, key->len);
        r->metrics.n++;
        ot_buf unit = OT_BUF_INIT;
        ot_buf_reset(&r->name);
        ot_prom_metric_name(&r->name, r->c->o.ns, in.name.p, in.name.n, in.unit.p, in.unit.n, in.type,
                       in.monotonic, r->c->o.suffixes, &unit);
        ot_buf_putc(&r->name, 0);
        ot_buf_putc(&unit, 0);
        char *nm = r->name.data ? strdup(r->name.data) : NULL;
        size_t idx;
        if (nm && !unit.oom && family(r, nm, kind, in.name.p, in.name.n, unit.data, &idx))
            me->fam = idx;
        free(nm);
        ot_buf_free(&unit);
    }
    size_t fi = me->fam;
    if (fi == (size_t)-1) {
        b->fam = BASE_CONFLICT; /* its name is a family of another type: not shown */
        return;
    }
    res_ent *re = resource(r, &in);
    if (!re) {
        r->err = -1;
        return;
    }
    b->re = *re;
    b->fam = (int32_t)fi;
}

void pm_tables_free(rctx *r)
{
    for (size_t i = 0; i < r->metrics.cap; i++)
        free(((metric_ent *)r->metrics.v)[i].key);
    for (size_t i = 0; i < r->resources.cap; i++) {
        res_ent *e = &((res_ent *)r->resources.v)[i];
        free(e->key);
        free(e->labels);
        for (size_t j = 0; e->names && j < e->n_names; j++)
            free(e->names[j]);
        free(e->names);
    }
    for (size_t i = 0; i < r->targets.cap; i++)
        free(((res_ent *)r->targets.v)[i].key);
    for (size_t i = 0; i < r->n_fams; i++) {
        free(r->fams[i].name);
        free(r->fams[i].help);
        free(r->fams[i].unit);
        ot_buf_free(&r->fams[i].pre);
    }
    free(r->fams);
    free(r->metrics.v);
    free(r->resources.v);
    free(r->targets.v);
    free(r->bases.v);
    free(r->fam_by_name.v);
    ot_buf_free(&r->tmp);
    ot_buf_free(&r->labels);
    ot_buf_free(&r->name);
    ot_prom_plan_free(&r->plan);
    ot_buf_free(&r->tp.pre);
    ot_buf_free(&r->pb.m);
    ot_buf_free(&r->pb.sub);
    ot_buf_free(&r->pb.t);
}
