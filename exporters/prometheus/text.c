/* text.c: a stream's own labels and its samples, the text of nearly every
 * byte of a scrape and so the hottest code of one: label values are
 * checked for escapes a word at a time and copied whole, a plan's label
 * names are turned into their ",name=\"" text once a plan, and a counter's
 * or gauge's line is written straight into the part. render.c works out
 * what is shared (families, resources); scrape.c drives the response. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/shortcopy.h"
#include "prom.h"
#include "render_int.h"

/* ---- label text ----------------------------------------------------------- */

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
void pm_put_label(bool pb, ot_buf *b, const char *name, size_t nl, const char *val, size_t vl)
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

typedef struct label_out {
    bool pb;
    ot_buf *b;
} label_out;

static void put_own(void *ctx, const char *name, size_t nl, const char *val, size_t vl)
{
    label_out *o = ctx;
    pm_put_label(o->pb, o->b, name, nl, val, vl);
}

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

/* The stream's own labels, sanitised, sorted, names that collide joined
 * with ';' in key order; then the resource's. Appended to b, each label
 * after a ','. */
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
