/* sketch.c: one DDSketch as a Sketch message of /api/beta/sketches, in the
 * project's own dd_sketch.proto. A SketchPayload is nothing but its
 * sketches (field 1) one after another, so each sketch is written as that
 * field, tag and length included, and a request is those items
 * concatenated (payload.c) whatever way it is cut. */
#include <string.h>

#include "dd.h"
#include "dd_sketch.pb-c.h"

int dd_sketch_item(dd_items *items, const char *metric, const char *host, const dd_tags *tags,
                   int64_t ts_s, const dd_sketch *s, ot_arena *scratch, ot_err *err)
{
    Otelite__Datadog__DdSketch sk = OTELITE__DATADOG__DD_SKETCH__INIT;
    Otelite__Datadog__DdDogsketch ds = OTELITE__DATADOG__DD_DOGSKETCH__INIT;
    Otelite__Datadog__DdDogsketch *dsp = &ds;
    sk.metric = (char *)metric;
    sk.host = (char *)(host ? host : "");
    sk.n_tags = tags->n;
    sk.tags = ot_arena_alloc(scratch, (tags->n + 1) * sizeof(char *));
    int32_t *k = ot_arena_alloc(scratch, (s->nbins + 1) * sizeof *k);
    if (!sk.tags || !k)
        return ot_err_set(err, "out of memory");
    for (size_t i = 0; i < tags->n; i++) {
        size_t len;
        const char *t = dd_tag(tags, i, &len);
        if (!(sk.tags[i] = ot_arena_strndup(scratch, t, len)))
            return ot_err_set(err, "out of memory");
    }
    for (size_t i = 0; i < s->nbins; i++)
        k[i] = s->k[i];
    ds.ts = ts_s;
    ds.cnt = s->cnt;
    ds.min = s->min;
    ds.max = s->max;
    ds.sum = s->sum;
    ds.avg = s->cnt ? s->sum / (double)s->cnt : 0;
    ds.n_k = s->nbins;
    ds.k = k;
    ds.n_n = s->nbins;
    ds.n = s->n;
    sk.n_dogsketches = 1;
    sk.dogsketches = &dsp;
    size_t len = otelite__datadog__dd_sketch__get_packed_size(&sk);
    ot_buf *b = &items->data;
    ot_buf_putc(b, 0x0a); /* SketchPayload.sketches, length-delimited */
    dd_put_varint(b, len);
    if (ot_buf_reserve(b, len + 1) < 0)
        return ot_err_set(err, "out of memory");
    b->len += otelite__datadog__dd_sketch__pack(&sk, (uint8_t *)b->data + b->len);
    b->data[b->len] = '\0';
    if (dd_items_close(items) < 0)
        return ot_err_set(err, "out of memory");
    return 0;
}
