/* fuzz_prw_encode.c: the prometheusremotewrite exporter's request writer
 * (exporters/prometheusremotewrite/wire.c) and its snappy coding, round
 * trip: the input is a script of series (labels, a sample or a native
 * histogram) and metadata entries written under a size cap taken from the
 * input; every request the writer hands over is snappy-compressed,
 * decompressed, decoded with protobuf-c from the exporter's .proto, and
 * must hold exactly the items written, in order, and be under the cap
 * unless it holds one item alone. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/prometheusremotewrite/prw.h"
#include "prw_remote_write.pb-c.h"

#define MAX_ITEMS 256
#define MAX_LBL 4
#define MAX_BKT 8

typedef struct item {
    int kind; /* 0 sample, 1 histogram, 2 metadata */
    prw_label l[MAX_LBL];
    char text[MAX_LBL][2][8];
    size_t n;
    double v;
    int64_t ts;
    prw_nhist h;
    uint64_t neg[MAX_BKT], pos[MAX_BKT];
    int md_type;
} item;

typedef struct run {
    item it[MAX_ITEMS];
    size_t n_items, next_series, next_md;
    size_t max;
    ot_buf z, back;
} run;

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static uint64_t take(rd *r, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)(r->p < r->end ? *r->p++ : 0) << (8 * i);
    return v;
}

static double take_double(rd *r)
{
    uint64_t u = take(r, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void text(rd *r, char *out, uint32_t *len)
{
    *len = (uint32_t)(take(r, 1) % 8);
    for (uint32_t i = 0; i < *len; i++)
        out[i] = (char)('a' + take(r, 1) % 26);
}

static bool same_double(double a, double b) { return memcmp(&a, &b, 8) == 0; }

static bool same_str(const char *s, const char *p, size_t n)
{
    return strlen(s) == n && memcmp(s, p, n) == 0;
}

static void check_labels(Otelite__Prw__TimeSeries *t, const item *e)
{
    if (t->n_labels != e->n)
        abort();
    for (size_t i = 0; i < e->n; i++)
        if (!same_str(t->labels[i]->name, e->l[i].name, e->l[i].nl) ||
            !same_str(t->labels[i]->value, e->l[i].val, e->l[i].vl))
            abort();
}

static void check_side(const Otelite__Prw__BucketSpan *const *sp, size_t nsp, const int64_t *d,
                       size_t nd, int32_t off, const uint64_t *c, uint32_t n)
{
    if (!n) {
        if (nsp || nd)
            abort();
        return;
    }
    if (nsp != 1 || sp[0]->offset != off || sp[0]->length != n || nd != n)
        abort();
    uint64_t acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += (uint64_t)d[i];
        if (acc != c[i])
            abort();
    }
}

static int on_flush(void *ctx, const uint8_t *req, size_t len, size_t samples)
{
    run *r = ctx;
    if (prw_snappy(&r->z, req, len) < 0 || prw_unsnappy(&r->back, r->z.data, r->z.len, len) < 0)
        abort();
    if (r->back.len != len || memcmp(r->back.data, req, len) != 0)
        abort();
    Otelite__Prw__WriteRequest *w =
        otelite__prw__write_request__unpack(NULL, r->back.len, (const uint8_t *)r->back.data);
    if (!w)
        abort();
    if (w->n_timeseries != samples)
        abort();
    if (len > r->max && w->n_timeseries + w->n_metadata != 1)
        abort(); /* over the cap with more than one item */
    for (size_t i = 0; i < w->n_timeseries; i++) {
        while (r->next_series < r->n_items && r->it[r->next_series].kind == 2)
            r->next_series++;
        if (r->next_series >= r->n_items)
            abort();
        const item *e = &r->it[r->next_series++];
        Otelite__Prw__TimeSeries *t = w->timeseries[i];
        check_labels(t, e);
        if (e->kind == 0) {
            if (t->n_samples != 1 || t->n_histograms || !same_double(t->samples[0]->value, e->v) ||
                t->samples[0]->timestamp != e->ts)
                abort();
        } else {
            if (t->n_histograms != 1 || t->n_samples)
                abort();
            Otelite__Prw__Histogram *h = t->histograms[0];
            if (h->count_int != e->h.count || !same_double(h->sum, e->h.sum) ||
                h->schema != e->h.schema || !same_double(h->zero_threshold, e->h.zero_threshold) ||
                h->zero_count_int != e->h.zero_count || h->timestamp != e->h.ts_ms)
                abort();
            check_side((const Otelite__Prw__BucketSpan *const *)h->negative_spans,
                       h->n_negative_spans, h->negative_deltas, h->n_negative_deltas,
                       e->h.neg_off, e->neg, e->h.nneg);
            check_side((const Otelite__Prw__BucketSpan *const *)h->positive_spans,
                       h->n_positive_spans, h->positive_deltas, h->n_positive_deltas,
                       e->h.pos_off, e->pos, e->h.npos);
        }
    }
    for (size_t i = 0; i < w->n_metadata; i++) {
        while (r->next_md < r->n_items && r->it[r->next_md].kind != 2)
            r->next_md++;
        if (r->next_md >= r->n_items)
            abort();
        const item *e = &r->it[r->next_md++];
        Otelite__Prw__MetricMetadata *m = w->metadata[i];
        if ((int)m->type != e->md_type || !same_str(m->metric_family_name, e->l[0].name, e->l[0].nl) ||
            !same_str(m->help, e->l[0].val, e->l[0].vl) ||
            !same_str(m->unit, e->l[1].name, e->l[1].nl))
            abort();
    }
    otelite__prw__write_request__free_unpacked(w, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static run r;
    rd in = {data, data + size};
    r.n_items = r.next_series = r.next_md = 0;
    r.max = 16 + take(&in, 2) % 4096;
    prw_writer w;
    prw_writer_init(&w, r.max, on_flush, &r);
    while (in.p < in.end && r.n_items < MAX_ITEMS) {
        item *e = &r.it[r.n_items++];
        memset(e, 0, sizeof *e);
        e->kind = (int)(take(&in, 1) % 3);
        e->n = e->kind == 2 ? 2 : take(&in, 1) % (MAX_LBL + 1);
        for (size_t i = 0; i < e->n; i++) {
            text(&in, e->text[i][0], &e->l[i].nl);
            text(&in, e->text[i][1], &e->l[i].vl);
            e->l[i].name = e->text[i][0];
            e->l[i].val = e->text[i][1];
        }
        int rc;
        if (e->kind == 0) {
            e->v = take_double(&in);
            e->ts = (int64_t)take(&in, 8);
            rc = prw_sample(&w, e->l, e->n, e->v, e->ts);
        } else if (e->kind == 1) {
            prw_nhist *h = &e->h;
            h->count = take(&in, 8);
            h->sum = take_double(&in);
            h->schema = (int8_t)take(&in, 1);
            h->zero_threshold = take_double(&in);
            h->zero_count = take(&in, 4);
            h->neg_off = (int32_t)take(&in, 4);
            h->pos_off = (int32_t)take(&in, 4);
            h->nneg = (uint32_t)(take(&in, 1) % (MAX_BKT + 1));
            h->npos = (uint32_t)(take(&in, 1) % (MAX_BKT + 1));
            for (uint32_t i = 0; i < h->nneg; i++)
                e->neg[i] = take(&in, 4);
            for (uint32_t i = 0; i < h->npos; i++)
                e->pos[i] = take(&in, 4);
            h->neg = e->neg;
            h->pos = e->pos;
            h->ts_ms = (int64_t)take(&in, 8);
            rc = prw_histogram(&w, e->l, e->n, h);
        } else {
            e->md_type = (int)(take(&in, 1) % 8);
            rc = prw_metadata(&w, e->md_type, e->l[0].name, e->l[0].nl, e->l[0].val, e->l[0].vl,
                              e->l[1].name, e->l[1].nl);
        }
        if (rc < 0)
            abort();
    }
    prw_flush(&w);
    /* every item came out */
    while (r.next_series < r.n_items && r.it[r.next_series].kind == 2)
        r.next_series++;
    while (r.next_md < r.n_items && r.it[r.next_md].kind != 2)
        r.next_md++;
    if (r.next_series != r.n_items || r.next_md != r.n_items)
        abort();
    prw_writer_free(&w);
    return 0;
}
