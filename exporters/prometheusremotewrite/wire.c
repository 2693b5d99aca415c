/* wire.c: remote-write WriteRequest bytes written by hand. A request is a
 * list of TimeSeries, each its labels and one sample (or one native
 * histogram), and MetricMetadata entries; building protobuf-c structs for
 * every sample and packing them walks every descriptor again per field, so
 * a series is sized in one pass over its labels and written straight into
 * the request (field numbers: proto/prw_remote_write.proto; proto3 rules:
 * zero values left out). The size cap is kept here: a series that does not
 * fit ends the request. Snappy (Debian's libsnappy) is the body coding. */
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "prw.h"
#include "base/varint.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

/* WriteRequest */
enum { WR_TIMESERIES = 1, WR_METADATA = 3 };
/* TimeSeries */
enum { TS_LABELS = 1, TS_SAMPLES = 2, TS_HISTOGRAMS = 4 };
/* Histogram */
enum {
    H_COUNT_INT = 1, H_SUM = 3, H_SCHEMA = 4, H_ZERO_THRESHOLD = 5, H_ZERO_COUNT_INT = 6,
    H_NEG_SPANS = 8, H_NEG_DELTAS = 9, H_POS_SPANS = 11, H_POS_DELTAS = 12, H_TIMESTAMP = 15,
};
/* MetricMetadata */
enum { MD_TYPE = 1, MD_NAME = 2, MD_HELP = 4, MD_UNIT = 5 };

/* Every field number here is below 16: tags are one byte. */
static size_t len_field(size_t n) { return 1 + ot_varint_size(n) + n; }
static size_t str_field(size_t n) { return n ? len_field(n) : 0; }

static inline uint8_t *w_varint(uint8_t *p, uint64_t v) { return p + ot_varint_put(p, v); }

static uint8_t *w_len(uint8_t *p, int field, size_t n)
{
    *p++ = (uint8_t)(field << 3 | WT_LEN);
    return w_varint(p, n);
}

static uint8_t *w_str(uint8_t *p, int field, const char *s, size_t n)
{
    if (!n)
        return p;
    p = w_len(p, field, n);
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *w_double(uint8_t *p, int field, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    if (!u)
        return p;
    *p++ = (uint8_t)(field << 3 | WT_I64);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(u >> (8 * i));
    return p;
}

static uint8_t *w_uint(uint8_t *p, int field, uint64_t v)
{
    if (!v)
        return p;
    *p++ = (uint8_t)(field << 3 | WT_VARINT);
    return w_varint(p, v);
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static size_t double_size(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return u ? 9 : 0;
}

static size_t uint_size(uint64_t v) { return v ? 1 + ot_varint_size(v) : 0; }

static size_t label_size(const prw_label *l) { return str_field(l->nl) + str_field(l->vl); }

static size_t labels_size(const prw_label *l, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += len_field(label_size(&l[i]));
    return t;
}

static uint8_t *w_labels(uint8_t *p, const prw_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p = w_len(p, TS_LABELS, label_size(&l[i]));
        p = w_str(p, 1, l[i].name, l[i].nl);
        p = w_str(p, 2, l[i].val, l[i].vl);
    }
    return p;
}

void prw_writer_init(prw_writer *w, size_t max_bytes, prw_flush_fn fn, void *ctx)
{
    memset(w, 0, sizeof *w);
    w->max_bytes = max_bytes ? max_bytes : SIZE_MAX;
    w->flush = fn;
    w->ctx = ctx;
}

void prw_writer_free(prw_writer *w)
{
    ot_buf_free(&w->req);
    ot_buf_free(&w->tmp);
}

int prw_flush(prw_writer *w)
{
    if (!w->req.len)
        return 0;
    int rc = w->flush(w->ctx, (const uint8_t *)w->req.data, w->req.len, w->samples);
    if (rc && !w->rc)
        w->rc = rc;
    ot_buf_reset(&w->req);
    w->samples = 0;
    w->gen++;
    return rc;
}

/* Room for an item of n bytes (its tag and length prefix included) at the
 * end of the request, after flushing the request when it would not fit.
 * NULL on OOM. */
static uint8_t *room(prw_writer *w, size_t n)
{
    if (w->req.len && w->req.len + n > w->max_bytes)
        prw_flush(w);
    if (ot_buf_reserve(&w->req, n) < 0) {
        w->oom = true;
        return NULL;
    }
    return (uint8_t *)w->req.data + w->req.len;
}

int prw_sample(prw_writer *w, const prw_label *l, size_t n, double v, int64_t ts_ms)
{
    size_t ssz = double_size(v) + uint_size((uint64_t)ts_ms);
    size_t tsz = labels_size(l, n) + len_field(ssz);
    size_t item = len_field(tsz);
    uint8_t *p = room(w, item);
    if (!p)
        return -1;
    uint8_t *s = p;
    p = w_len(p, WR_TIMESERIES, tsz);
    p = w_labels(p, l, n);
    p = w_len(p, TS_SAMPLES, ssz);
    p = w_double(p, 1, v);
    p = w_uint(p, 2, (uint64_t)ts_ms);
    w->req.len += (size_t)(p - s);
    w->samples++;
    return 0;
}

/* ---- native histograms (into w->tmp, then copied) ------------------------ */

static void b_varint(ot_buf *b, uint64_t v)
{
    uint8_t t[10];
    ot_buf_append(b, t, (size_t)(w_varint(t, v) - t));
}

static void b_tag(ot_buf *b, int field, int wt) { ot_buf_putc(b, (char)(field << 3 | wt)); }

static void b_double(ot_buf *b, int field, double v)
{
    uint8_t t[9];
    ot_buf_append(b, t, (size_t)(w_double(t, field, v) - t));
}

static void b_uint(ot_buf *b, int field, uint64_t v)
{
    if (!v)
        return;
    b_tag(b, field, WT_VARINT);
    b_varint(b, v);
}

/* One side: a span of all its buckets (zeros inside a span are allowed) and
 * the count deltas, packed. */
static void b_side(ot_buf *b, int span_field, int delta_field, int32_t off, const uint64_t *c,
                   uint32_t n)
{
    if (!n)
        return;
    size_t span = uint_size(zigzag(off)) + uint_size(n);
    b_tag(b, span_field, WT_LEN);
    b_varint(b, span);
    b_uint(b, 1, zigzag(off));
    b_uint(b, 2, n);
    size_t dl = 0;
    uint64_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        dl += ot_varint_size(zigzag((int64_t)(c[i] - prev)));
        prev = c[i];
    }
    b_tag(b, delta_field, WT_LEN);
    b_varint(b, dl);
    prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        b_varint(b, zigzag((int64_t)(c[i] - prev)));
        prev = c[i];
    }
}

int prw_histogram(prw_writer *w, const prw_label *l, size_t n, const prw_nhist *h)
{
    ot_buf *b = &w->tmp;
    ot_buf_reset(b);
    b_uint(b, H_COUNT_INT, h->count);
    b_double(b, H_SUM, h->sum);
    b_uint(b, H_SCHEMA, zigzag(h->schema));
    b_double(b, H_ZERO_THRESHOLD, h->zero_threshold);
    b_uint(b, H_ZERO_COUNT_INT, h->zero_count);
    b_side(b, H_NEG_SPANS, H_NEG_DELTAS, h->neg_off, h->neg, h->nneg);
    b_side(b, H_POS_SPANS, H_POS_DELTAS, h->pos_off, h->pos, h->npos);
    b_uint(b, H_TIMESTAMP, (uint64_t)h->ts_ms);
    if (b->oom) {
        w->oom = true;
        return -1;
    }
    size_t tsz = labels_size(l, n) + len_field(b->len);
    uint8_t *p = room(w, len_field(tsz));
    if (!p)
        return -1;
    uint8_t *s = p;
    p = w_len(p, WR_TIMESERIES, tsz);
    p = w_labels(p, l, n);
    p = w_len(p, TS_HISTOGRAMS, b->len);
    memcpy(p, b->data, b->len);
    p += b->len;
    w->req.len += (size_t)(p - s);
    w->samples++;
    return 0;
}

int prw_metadata(prw_writer *w, int type, const char *name, size_t nl, const char *help,
                 size_t hl, const char *unit, size_t ul)
{
    size_t msz = uint_size((uint64_t)type) + str_field(nl) + str_field(hl) + str_field(ul);
    uint8_t *p = room(w, len_field(msz));
    if (!p)
        return -1;
    uint8_t *s = p;
    p = w_len(p, WR_METADATA, msz);
    p = w_uint(p, MD_TYPE, (uint64_t)type);
    p = w_str(p, MD_NAME, name, nl);
    p = w_str(p, MD_HELP, help, hl);
    p = w_str(p, MD_UNIT, unit, ul);
    w->req.len += (size_t)(p - s);
    return 0;
}

/* ---- snappy ---------------------------------------------------------------- */

int prw_snappy(ot_buf *out, const void *in, size_t n)
{
    ot_buf_reset(out);
    size_t cap = snappy_max_compressed_length(n);
    if (ot_buf_reserve(out, cap) < 0)
        return -1;
    size_t len = cap;
    if (snappy_compress(in, n, out->data, &len) != SNAPPY_OK)
        return -1;
    out->len = len;
    return 0;
}

int prw_unsnappy(ot_buf *out, const void *in, size_t n, size_t max)
{
    ot_buf_reset(out);
    size_t len;
    if (snappy_uncompressed_length(in, n, &len) != SNAPPY_OK || len > max)
        return -1;
    if (ot_buf_reserve(out, len ? len : 1) < 0)
        return -1;
    if (snappy_uncompress(in, n, out->data, &len) != SNAPPY_OK)
        return -1;
    out->len = len;
    return 0;
}
