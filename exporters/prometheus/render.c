/* render.c: the text of a scrape: families' HELP and TYPE lines, labels
 * and samples, and what a stream's shared identity comes to (its family,
 * its resource's job, instance, scope labels and target_info series),
 * worked out once per identity per scrape rather than once per stream.
 * scrape.c decides what is written when. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/shortcopy.h"
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

/* ---- labels ------------------------------------------------------------- */

static inline char *wr(char *d, const char *p, size_t n)
{
    memcpy(d, p, n);
    return d + n;
}

/* Whether a word holds a byte a label value escapes ('\\', '"', '\n'):
 * the zero-byte test on the word xor each, exact for "any". */
static inline bool has_escape(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t a = x ^ (ones * '\\'), b = x ^ (ones * '"'), c = x ^ (ones * '\n');
    return (((a - ones) & ~a) | ((b - ones) & ~b) | ((c - ones) & ~c)) & highs;
}

/* Up to 8 bytes of p as a word, the rest zero (which escapes nothing):
 * two loads that may overlap, never a byte past p + n. */
static inline uint64_t load_short(const char *p, size_t n)
{
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        return a | (uint64_t)b << (8 * (n - 4));
    }
    if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, p, 2);
        memcpy(&b, p + n - 2, 2);
        return a | (uint64_t)b << (8 * (n - 2));
    }
    return n ? (uint8_t)p[0] : 0;
}

/* A label value escaped into d (room for 2 * n): most values have nothing
 * to escape, found a word at a time (the last word overlapping the one
 * before) and copied whole. */
static inline __attribute__((always_inline)) char *escape_value(char *d, const char *v, size_t n)
{
    bool clean = true;
    if (n >= 8) {
        uint64_t x;
        for (size_t i = 0; i + 8 <= n && clean; i += 8) {
            memcpy(&x, v + i, 8);
            clean = !has_escape(x);
        }
        if (clean && n % 8) {
            memcpy(&x, v + n - 8, 8);
            clean = !has_escape(x);
        }
    } else {
        clean = !has_escape(load_short(v, n));
    }
    if (clean)
        return ot_copy_short(d, v, n);
    for (size_t i = 0; i < n; i++) { /* pm_escape's rules, inline */
        char c = v[i];
        if (c == '\\' || c == '"' || c == '\n') {
            *d++ = '\\';
            c = c == '\n' ? 'n' : c;
        }
        *d++ = c;
    }
    return d;
}

/* One label: text (",name=\"value\"") or a protobuf LabelPair. */
static void put_label(bool pb, ot_buf *b, const char *name, size_t nl, const char *val, size_t vl)
{
    if (pb) {
        pm_pb_label(b, name, nl, val, vl);
        return;
    }
    if (b->cap - b->len <= nl + 2 * vl + 4 && ot_buf_reserve(b, nl + 2 * vl + 4) < 0)
        return; /* an escape doubles a byte at most */
    char *d = b->data + b->len;
    *d++ = ',';
    d = wr(d, name, nl);
    *d++ = '=';
    *d++ = '"';
    d = escape_value(d, val, vl);
    *d++ = '"';
    b->len = (size_t)(d - b->data);
}

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
    put_label(x->pb, &x->lb, name, nl, val, vl);
    x->names[x->nn++] = strndup(name, nl);
}

static void res_target(void *ctx, const char *name, size_t nl, const char *val, size_t vl)
{
    res_build *x = ctx;
    put_label(x->pb, &x->tl, name, nl, val, vl);
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
        put_label(pb, &lb, r->name.data, r->name.len, r->c->o.const_vals[i],
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

typedef struct label_out {
    bool pb;
    ot_buf *b;
} label_out;

static void put_own(void *ctx, const char *name, size_t nl, const char *val, size_t vl)
{
    label_out *o = ctx;
    put_label(o->pb, o->b, name, nl, val, vl);
}

/* The stream's own labels, sanitised, sorted, names that collide joined
 * with ';' in key order; then the resource's. Appended to b, each label
 * after a ','. */
/* The text prefixes of a new plan. */
static void text_plan(rctx *r)
{
    const ot_prom_plan *pl = &r->plan;
    r->tp.gen = pl->gen;
    r->tp.simple = true;
    ot_buf_reset(&r->tp.pre);
    for (size_t i = 0; i < pl->n; i++) {
        if (pl->e[i].shadowed || pl->e[i].group_end != i + 1)
            r->tp.simple = false;
        r->tp.off[i] = (uint32_t)r->tp.pre.len;
        ot_buf_putc(&r->tp.pre, ',');
        ot_buf_append(&r->tp.pre, pl->names.data + pl->e[i].off, pl->e[i].len);
        ot_buf_append(&r->tp.pre, "=\"", 2);
        r->tp.len[i] = (uint32_t)(r->tp.pre.len - r->tp.off[i]);
    }
    if (r->tp.pre.oom)
        r->tp.simple = false;
}

/* A stream's own labels as text from its plan's prefixes: false when the
 * plan is not simple (ot_prom_plan_labels then joins and skips). */
static bool text_labels(rctx *r, ot_buf *b, const ot_mstore_val *vals)
{
    const ot_prom_plan *pl = &r->plan;
    if (r->tp.gen != pl->gen)
        text_plan(r);
    if (!r->tp.simple)
        return false;
    for (size_t i = 0; i < pl->n; i++) {
        const ot_mstore_val *v = &vals[pl->e[i].src];
        char num[24];
        const char *vp = num;
        size_t vl;
        if (v->type == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            vp = v->s.p;
            vl = v->s.n;
        } else if (v->type == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE) {
            vl = ot_prom_i64_str(num, v->i);
        } else {
            ot_buf_reset(&r->tmp);
            ot_prom_attr_text(&r->tmp, v);
            vp = r->tmp.data ? r->tmp.data : "";
            vl = r->tmp.len;
        }
        size_t pn = r->tp.len[i], need = pn + 2 * vl + 2; /* an escape doubles a byte at most */
        if (b->cap - b->len <= need && ot_buf_reserve(b, need) < 0)
            return true;
        char *d = ot_copy_short(b->data + b->len, r->tp.pre.data + r->tp.off[i], pn);
        d = escape_value(d, vp, vl);
        *d++ = '"';
        b->len = (size_t)(d - b->data);
    }
    return true;
}

static void labels_into(rctx *r, const ot_mstore_stream *st, const res_ent *re, ot_buf *b)
{
    ot_mstore_iter it;
    ot_mstore_stream_attrs(st, &it);
    ot_mstore_val vals[MAX_LABELS];
    if (ot_prom_plan_for(&r->plan, it, re, re->names, re->n_names, vals, &r->tmp) &&
        (r->fmt == PM_FMT_PROTOBUF || !text_labels(r, b, vals))) {
        label_out o = {r->fmt == PM_FMT_PROTOBUF, b};
        ot_prom_plan_labels(&r->plan, vals, put_own, &o, &r->tmp);
    }
    if (b->cap - b->len > re->labels_len || ot_buf_reserve(b, re->labels_len) == 0) {
        memcpy(b->data + b->len, re->labels, re->labels_len);
        b->len += re->labels_len;
    }
}

void pm_stream_labels(rctx *r, const ot_mstore_stream *st, const res_ent *re)
{
    ot_buf_reset(&r->labels);
    labels_into(r, st, re, &r->labels);
}

/* ---- samples ------------------------------------------------------------- */

static void hex(ot_buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        ot_buf_putc(b, digits[p[i] >> 4]);
        ot_buf_putc(b, digits[p[i] & 15]);
    }
}

/* OpenMetrics: " # {trace_id=…,span_id=…} value timestamp". */
static void exemplar(ot_buf *b, const ot_pacc_exemplar *e)
{
    static const uint8_t zero[16];
    bool t = memcmp(e->trace_id, zero, 16) != 0, sp = memcmp(e->span_id, zero, 8) != 0;
    ot_buf_puts(b, " # {");
    if (t) {
        ot_buf_puts(b, "trace_id=\"");
        hex(b, e->trace_id, 16);
        ot_buf_putc(b, '"');
    }
    if (sp) {
        ot_buf_puts(b, t ? ",span_id=\"" : "span_id=\"");
        hex(b, e->span_id, 8);
        ot_buf_putc(b, '"');
    }
    ot_buf_puts(b, "} ");
    ot_prom_value(b, e->value, false);
    if (e->ts_ns > 0)
        ot_buf_printf(b, " %lld.%09lld", (long long)(e->ts_ns / 1000000000),
                      (long long)(e->ts_ns % 1000000000));
}

/* One sample line; the hottest code of a scrape, so written with one
 * reserve and plain copies. */
static void sample(rctx *r, ot_buf *b, const char *name, const char *suffix, const char *xname,
                   const char *xval, double v, const ot_pacc_state *s, const ot_pacc_exemplar *ex)
{
    const ot_buf *l = &r->labels;
    size_t nl = strlen(name), sl = strlen(suffix), xl = xname ? strlen(xname) : 0;
    size_t vl = xname ? strlen(xval) : 0;
    if (ot_buf_reserve(b, nl + sl + l->len + xl + vl + 8 + OT_PROM_VALUE_MAX) < 0)
        return;
    char *d = wr(b->data + b->len, name, nl);
    d = wr(d, suffix, sl);
    if (l->len || xname) {
        *d++ = '{';
        if (l->len)
            d = wr(d, l->data + 1, l->len - 1);
        if (xname) {
            if (l->len)
                *d++ = ',';
            d = wr(d, xname, xl);
            *d++ = '=';
            *d++ = '"';
            d = wr(d, xval, vl);
            *d++ = '"';
        }
        *d++ = '}';
    }
    *d++ = ' ';
    d += ot_prom_value_str(d, v, false);
    b->len = (size_t)(d - b->data);
    if (!r->c->o.send_timestamps && !(ex && r->fmt == PM_FMT_OPENMETRICS)) {
        b->data[b->len++] = '\n'; /* room: the reserve's 8 */
        return;
    }
    if (r->c->o.send_timestamps && s->ts_ns > 0) {
        if (r->fmt == PM_FMT_OPENMETRICS)
            ot_buf_printf(b, " %lld.%03lld", (long long)(s->ts_ns / 1000000000),
                          (long long)(s->ts_ns / 1000000 % 1000));
        else
            ot_buf_printf(b, " %lld", (long long)(s->ts_ns / 1000000));
    }
    if (ex && r->fmt == PM_FMT_OPENMETRICS)
        exemplar(b, ex);
    ot_buf_putc(b, '\n');
}

/* An exponential histogram's classic buckets: one per exponential bucket,
 * at its upper bound (negative bucket i holds [-base^(i+1), -base^i), so
 * its bound is -base^i; the zero bucket's is the zero threshold; positive
 * bucket i's is base^(i+1)). Nothing is lost that classic buckets can
 * say. */
static void exp_as_classic(rctx *r, ot_buf *b, const char *nm, ot_pacc_state *s, bool om)
{
    ot_pacc_exph *e = ot_pacc_exph_of(s);
    const uint64_t *cn = ot_pacc_exp_counts(s);
    double lg = ldexp(1.0, -e->scale); /* log2 of the base */
    uint64_t cum = 0;
    char lv[48];
    ot_buf vb = OT_BUF_INIT;
    for (uint32_t i = 0; i <= e->nneg + e->npos; i++) {
        double bound;
        if (i < e->nneg) { /* most negative first */
            uint32_t k = e->nneg - 1 - i;
            cum += cn[k];
            bound = -exp2((double)(e->neg_off + (int32_t)k) * lg);
        } else if (i == e->nneg) {
            cum += e->zero_count;
            bound = e->zero_threshold;
        } else {
            uint32_t k = i - e->nneg - 1;
            cum += cn[e->nneg + k];
            bound = exp2((double)(e->pos_off + (int32_t)k + 1) * lg);
        }
        ot_buf_reset(&vb);
        ot_prom_value(&vb, bound, om);
        snprintf(lv, sizeof lv, "%.*s", (int)vb.len, vb.data ? vb.data : "");
        sample(r, b, nm, "_bucket", "le", lv, (double)cum, s, NULL);
    }
    ot_buf_free(&vb);
    sample(r, b, nm, "_bucket", "le", "+Inf", (double)s->count, s, NULL);
    if (s->flags & OT_PACC_F_HAS_SUM)
        sample(r, b, nm, "_sum", NULL, NULL, s->value, s, NULL);
    sample(r, b, nm, "_count", NULL, NULL, (double)s->count, s, NULL);
}

/* A counter's or gauge's one line written straight into b, labels and
 * all (no copy of them through r->labels): most series of most scrapes. */
static void line_direct(rctx *r, const pm_fam *f, ot_buf *b, const ot_mstore_stream *st,
                        const res_ent *re, const ot_pacc_state *s)
{
    bool total = r->fmt == PM_FMT_OPENMETRICS && s->kind == OT_PACC_COUNTER && !f->has_total;
    if (b->cap - b->len <= f->name_len + 7 && ot_buf_reserve(b, f->name_len + 7) < 0)
        return;
    memcpy(b->data + b->len, f->name, f->name_len);
    b->len += f->name_len;
    if (total) {
        memcpy(b->data + b->len, "_total", 6);
        b->len += 6;
    }
    size_t open = b->len;
    labels_into(r, st, re, b);
    if (b->cap - b->len <= OT_PROM_VALUE_MAX + 4 && ot_buf_reserve(b, OT_PROM_VALUE_MAX + 4) < 0)
        return;
    if (b->len > open) { /* the first label's ',' opens the braces */
        b->data[open] = '{';
        b->data[b->len++] = '}';
    }
    b->data[b->len++] = ' ';
    b->len += ot_prom_value_str(b->data + b->len, s->value, false);
    b->data[b->len++] = '\n';
}

void pm_series(rctx *r, const pm_fam *f, ot_buf *b, const ot_mstore_stream *st,
               const res_ent *re, ot_pacc_state *s)
{
    if (r->fmt != PM_FMT_PROTOBUF && !r->c->o.send_timestamps &&
        (s->kind == OT_PACC_GAUGE ||
         (s->kind == OT_PACC_COUNTER && (r->fmt != PM_FMT_OPENMETRICS || !ot_pacc_ex(s))))) {
        line_direct(r, f, b, st, re, s);
        return;
    }
    pm_stream_labels(r, st, re);
    pm_samples(r, f, b, s);
}

void pm_samples(rctx *r, const pm_fam *f, ot_buf *b, ot_pacc_state *s)
{
    if (r->fmt == PM_FMT_PROTOBUF) {
        pm_pb_metric(b, &r->pb, &r->labels, s,
                     r->c->o.send_timestamps ? s->ts_ns / 1000000 : 0);
        return;
    }
    const char *nm = f->name;
    bool om = r->fmt == PM_FMT_OPENMETRICS;
    char lv[48];
    ot_buf vb = OT_BUF_INIT;
    switch (s->kind) {
    case OT_PACC_GAUGE:
    case OT_PACC_COUNTER: {
        size_t nl = strlen(nm);
        bool add_total = om && s->kind == OT_PACC_COUNTER && !(nl > 6 && !strcmp(nm + nl - 6, "_total"));
        sample(r, b, nm, add_total ? "_total" : "", NULL, NULL, s->value, s,
               s->kind == OT_PACC_COUNTER ? ot_pacc_ex(s) : NULL);
        break;
    }
    case OT_PACC_HISTOGRAM: {
        const double *bd = ot_pacc_bounds(s);
        const uint64_t *cn = ot_pacc_counts(s);
        const ot_pacc_exemplar *ex = ot_pacc_ex(s); /* on the first bucket that holds its value */
        uint64_t cum = 0;
        for (uint32_t i = 0; i < s->n; i++) {
            cum += cn[i];
            ot_buf_reset(&vb);
            ot_prom_value(&vb, bd[i], om);
            snprintf(lv, sizeof lv, "%.*s", (int)vb.len, vb.data ? vb.data : "");
            bool here = ex && ex->value <= bd[i];
            sample(r, b, nm, "_bucket", "le", lv, (double)cum, s, here ? ex : NULL);
            if (here)
                ex = NULL;
        }
        sample(r, b, nm, "_bucket", "le", "+Inf", (double)s->count, s, ex);
        if (s->flags & OT_PACC_F_HAS_SUM)
            sample(r, b, nm, "_sum", NULL, NULL, s->value, s, NULL);
        sample(r, b, nm, "_count", NULL, NULL, (double)s->count, s, NULL);
        break;
    }
    case OT_PACC_EXPHIST:
        exp_as_classic(r, b, nm, s, om);
        break;
    case OT_PACC_SUMMARY: {
        const double *qv = ot_pacc_bounds(s);
        for (uint32_t i = 0; i < s->n; i++) {
            ot_buf_reset(&vb);
            ot_prom_value(&vb, qv[2 * i], om);
            snprintf(lv, sizeof lv, "%.*s", (int)vb.len, vb.data ? vb.data : "");
            sample(r, b, nm, "", "quantile", lv, qv[2 * i + 1], s, NULL);
        }
        sample(r, b, nm, "_sum", NULL, NULL, s->value, s, NULL);
        sample(r, b, nm, "_count", NULL, NULL, (double)s->count, s, NULL);
        break;
    }
    default:
        break;
    }
    ot_buf_free(&vb);
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
