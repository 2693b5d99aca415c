/* render_pb.c: the protobuf exposition format of a scrape: length-delimited
 * io.prometheus.client.MetricFamily messages, written field by field (the
 * field numbers below are the format's wire facts), the one format that
 * carries native histograms, which is how exponential histograms go out
 * here. scrape.c, render.c and text.c decide what is written; this file
 * only encodes. */
#include <math.h>
#include <string.h>

#include "prom.h"
#include "render_int.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

/* MetricFamily; the filler's field numbers are ones it does not define,
 * one with a 1-byte tag and one with a 2-byte tag */
enum { MF_NAME = 1, MF_HELP = 2, MF_TYPE = 3, MF_METRIC = 4, MF_FILL1 = 15, MF_FILL2 = 16 };
/* Metric */
enum { M_LABEL = 1, M_GAUGE = 2, M_COUNTER = 3, M_SUMMARY = 4, M_TIMESTAMP = 6, M_HISTOGRAM = 7 };
/* Histogram */
enum {
    H_COUNT = 1, H_SUM = 2, H_BUCKET = 3, H_SCHEMA = 5, H_ZERO_THRESHOLD = 6, H_ZERO_COUNT = 7,
    H_NEG_SPAN = 9, H_NEG_DELTA = 10, H_POS_SPAN = 12, H_POS_DELTA = 13, H_EXEMPLARS = 16,
};
/* MetricType */
enum { T_COUNTER = 0, T_GAUGE = 1, T_SUMMARY = 2, T_HISTOGRAM = 4 };

void pm_pb_varint(ot_buf *b, uint64_t v)
{
    char t[10];
    size_t n = 0;
    do {
        t[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    ot_buf_append(b, t, n);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7f) {
        v >>= 7;
        n++;
    }
    return n;
}

static void tag(ot_buf *b, unsigned field, unsigned wt)
{
    pm_pb_varint(b, (uint64_t)field << 3 | wt);
}

static void f_uint(ot_buf *b, unsigned field, uint64_t v)
{
    tag(b, field, WT_VARINT);
    pm_pb_varint(b, v);
}

static void f_sint(ot_buf *b, unsigned field, int64_t v)
{
    tag(b, field, WT_VARINT);
    pm_pb_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void f_double(ot_buf *b, unsigned field, double v)
{
    uint64_t u;
    char t[8];
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++)
        t[i] = (char)(u >> (8 * i));
    tag(b, field, WT_I64);
    ot_buf_append(b, t, 8);
}

static void f_bytes(ot_buf *b, unsigned field, const void *p, size_t n)
{
    tag(b, field, WT_LEN);
    pm_pb_varint(b, n);
    ot_buf_append(b, p, n);
}

void pm_pb_label(ot_buf *b, const char *name, size_t nl, const char *val, size_t vl)
{
    tag(b, M_LABEL, WT_LEN);
    pm_pb_varint(b, 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl);
    f_bytes(b, 1, name, nl);
    f_bytes(b, 2, val, vl);
}

static void spans_deltas(ot_buf *b, unsigned span_f, unsigned delta_f, int32_t off,
                         const uint64_t *c, uint32_t n, ot_buf *tmp)
{
    if (!n)
        return;
    /* One span over the whole range (empty buckets inside are zeros);
     * Prometheus' bucket i is OTLP's i-1. */
    ot_buf_reset(tmp);
    f_sint(tmp, 1, (int64_t)off + 1);
    f_uint(tmp, 2, n);
    f_bytes(b, span_f, tmp->data, tmp->len);
    int64_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        f_sint(b, delta_f, (int64_t)c[i] - prev);
        prev = (int64_t)c[i];
    }
}

/* An Exemplar: trace_id and span_id labels, value, timestamp. */
static void f_exemplar(ot_buf *b, unsigned field, const ot_pacc_exemplar *e, ot_buf *tmp)
{
    static const char digits[] = "0123456789abcdef";
    char t[32], sp[16];
    for (int i = 0; i < 16; i++) {
        t[2 * i] = digits[e->trace_id[i] >> 4];
        t[2 * i + 1] = digits[e->trace_id[i] & 15];
    }
    for (int i = 0; i < 8; i++) {
        sp[2 * i] = digits[e->span_id[i] >> 4];
        sp[2 * i + 1] = digits[e->span_id[i] & 15];
    }
    ot_buf_reset(tmp);
    pm_pb_label(tmp, "trace_id", 8, t, 32);
    pm_pb_label(tmp, "span_id", 7, sp, 16);
    f_double(tmp, 2, e->value);
    if (e->ts_ns > 0) { /* google.protobuf.Timestamp */
        ot_buf ts = OT_BUF_INIT;
        f_uint(&ts, 1, (uint64_t)(e->ts_ns / 1000000000));
        f_uint(&ts, 2, (uint64_t)(e->ts_ns % 1000000000));
        f_bytes(tmp, 3, ts.data, ts.len);
        ot_buf_free(&ts);
    }
    f_bytes(b, field, tmp->data, tmp->len);
}

void pm_pb_metric(ot_buf *out, pm_pb_scratch *x, const ot_buf *labels, ot_pacc_state *s,
                  int64_t ts_ms)
{
    ot_buf *m = &x->m, *sub = &x->sub, *t = &x->t;
    ot_buf_reset(m);
    ot_buf_reset(sub);
    ot_buf_append(m, labels->data ? labels->data : "", labels->len);
    switch (s->kind) {
    case OT_PACC_GAUGE:
    case OT_PACC_COUNTER:
        f_double(sub, 1, s->value);
        if (s->kind == OT_PACC_COUNTER && ot_pacc_ex(s))
            f_exemplar(sub, 2, ot_pacc_ex(s), t);
        f_bytes(m, s->kind == OT_PACC_GAUGE ? M_GAUGE : M_COUNTER, sub->data, sub->len);
        break;
    case OT_PACC_SUMMARY: {
        const double *qv = ot_pacc_bounds(s);
        f_uint(sub, 1, s->count);
        f_double(sub, 2, s->value);
        for (uint32_t i = 0; i < s->n; i++) {
            ot_buf_reset(t);
            f_double(t, 1, qv[2 * i]);
            f_double(t, 2, qv[2 * i + 1]);
            f_bytes(sub, 3, t->data, t->len);
        }
        f_bytes(m, M_SUMMARY, sub->data, sub->len);
        break;
    }
    case OT_PACC_HISTOGRAM: {
        const double *bd = ot_pacc_bounds(s);
        const uint64_t *cn = ot_pacc_counts(s);
        const ot_pacc_exemplar *ex = ot_pacc_ex(s);
        uint64_t cum = 0;
        f_uint(sub, H_COUNT, s->count);
        f_double(sub, H_SUM, (s->flags & OT_PACC_F_HAS_SUM) ? s->value : 0);
        for (uint32_t i = 0; i < s->n; i++) { /* +Inf is the count: not sent */
            cum += cn[i];
            ot_buf_reset(t);
            f_uint(t, 1, cum);
            f_double(t, 2, bd[i]);
            if (ex && ex->value <= bd[i]) {
                ot_buf et = OT_BUF_INIT;
                f_exemplar(t, 3, ex, &et);
                ot_buf_free(&et);
                ex = NULL;
            }
            f_bytes(sub, H_BUCKET, t->data, t->len);
        }
        if (ex) { /* above every bound: the (optional) +Inf bucket carries it */
            ot_buf et = OT_BUF_INIT;
            ot_buf_reset(t);
            f_uint(t, 1, s->count);
            f_double(t, 2, INFINITY);
            f_exemplar(t, 3, ex, &et);
            ot_buf_free(&et);
            f_bytes(sub, H_BUCKET, t->data, t->len);
        }
        f_bytes(m, M_HISTOGRAM, sub->data, sub->len);
        break;
    }
    case OT_PACC_EXPHIST: {
        ot_pacc_exph *e = ot_pacc_exph_of(s);
        const uint64_t *cn = ot_pacc_exp_counts(s);
        f_uint(sub, H_COUNT, s->count);
        f_double(sub, H_SUM, (s->flags & OT_PACC_F_HAS_SUM) ? s->value : 0);
        f_sint(sub, H_SCHEMA, e->scale);
        f_double(sub, H_ZERO_THRESHOLD, e->zero_threshold);
        f_uint(sub, H_ZERO_COUNT, e->zero_count);
        spans_deltas(sub, H_NEG_SPAN, H_NEG_DELTA, e->neg_off, cn, e->nneg, t);
        spans_deltas(sub, H_POS_SPAN, H_POS_DELTA, e->pos_off, cn + e->nneg, e->npos, t);
        if (!e->nneg && !e->npos && !e->zero_count) {
            /* An empty span still says "native" to the scraper. */
            ot_buf_reset(t);
            f_sint(t, 1, 0);
            f_bytes(sub, H_POS_SPAN, t->data, t->len);
        }
        const ot_pacc_exemplar *ex = ot_pacc_ex(s);
        if (ex && ex->ts_ns > 0) /* native exemplars must have a time */
            f_exemplar(sub, H_EXEMPLARS, ex, t);
        f_bytes(m, M_HISTOGRAM, sub->data, sub->len);
        break;
    }
    default:
        return;
    }
    if (ts_ms > 0) {
        tag(m, M_TIMESTAMP, WT_VARINT);
        pm_pb_varint(m, (uint64_t)ts_ms);
    }
    f_bytes(out, MF_METRIC, m->data, m->len);
}

void pm_pb_filler(ot_buf *b, size_t n)
{
    /* tag + length + payload = n: some tag size and length size fit every
     * n >= 2 (a length's varint grows by one byte where one tag byte more
     * makes up the difference) */
    for (unsigned field = MF_FILL1; field <= MF_FILL2; field++) {
        size_t tl = field == MF_FILL1 ? 1 : 2;
        for (size_t ll = 1; ll <= 5 && tl + ll <= n; ll++) {
            size_t v = n - tl - ll;
            if (varint_len(v) != ll)
                continue;
            tag(b, field, WT_LEN);
            pm_pb_varint(b, v);
            if (ot_buf_reserve(b, v) == 0) {
                memset(b->data + b->len, 0, v);
                b->len += v;
            }
            return;
        }
    }
}

void pm_pb_family_head(ot_buf *out, const char *name, const char *help, int kind,
                       size_t body_len)
{
    size_t nl = strlen(name), hl = help ? strlen(help) : 0;
    int type = kind == OT_PACC_COUNTER     ? T_COUNTER
               : kind == OT_PACC_SUMMARY   ? T_SUMMARY
               : kind == OT_PACC_HISTOGRAM ? T_HISTOGRAM
                                      : T_GAUGE;
    size_t len = 1 + varint_len(nl) + nl + 1 + varint_len(hl) + hl + 1 +
                 varint_len((uint64_t)type) + body_len;
    pm_pb_varint(out, len);
    f_bytes(out, MF_NAME, name, nl);
    f_bytes(out, MF_HELP, help ? help : "", hl);
    f_uint(out, MF_TYPE, (uint64_t)type);
}
