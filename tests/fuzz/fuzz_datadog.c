/* fuzz_datadog.c: the datadog exporter's translation of whatever OTLP a
 * client may send (the receivers check only the wire form): the first
 * byte picks the signal and the modes, the rest is the Export*Request's
 * bytes. Every request protobuf-c decodes must translate without reading
 * outside its data or taking memory or time out of proportion, the delta
 * pass included (a request repeating a stream meets its own state); every
 * JSON item must parse (jansson) and every framed body must hold all
 * items; the bytes path must give what the decoded path gives; the cut
 * into queued pieces must keep every item. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/datadog/dd.h"
#include "base/arena.h"

static void check_json(const dd_items *it, dd_kind k)
{
    for (size_t i = 0; i < it->n; i++) {
        size_t s = dd_item_start(it, i);
        json_t *j = json_loadb(it->data.data + s, it->end[i] - s, JSON_ALLOW_NUL, NULL);
        if (!j)
            abort(); /* an item that is not JSON */
        json_decref(j);
    }
    ot_buf body = OT_BUF_INIT;
    if (dd_frame(k, it, 0, it->n, &body) < 0)
        abort();
    json_t *j = json_loadb(body.data, body.len, JSON_ALLOW_NUL, NULL);
    if (!j)
        abort();
    json_t *arr = k == DD_SERIES ? json_object_get(j, "series") : j;
    if (json_array_size(arr) != it->n)
        abort();
    json_decref(j);
    ot_buf_free(&body);
}

/* The bytes path (one leaf at a time) must give what the decoded path
 * gives, byte for byte, unless it declines. */
static void same_as_wire(ot_signal sig, const dd_opts *o, const uint8_t *w, size_t n,
                         const dd_items *x, const dd_items *y)
{
    dd_items c = {0}, d = {0};
    ot_arena *keep = ot_arena_new(0), *chunk = ot_arena_new(0);
    ot_err err;
    int rc = sig == OT_TRACES  ? dd_traces_encode_wire(w, n, o, &c, keep, chunk, &err)
             : sig == OT_LOGS ? dd_logs_encode_wire(w, n, o, &c, keep, chunk, &err)
                              : dd_series_encode_wire(w, n, o, &c, &d, keep, chunk, &err);
    if (rc == 0) {
        if (c.data.len != x->data.len || c.n != x->n ||
            (c.data.len && memcmp(c.data.data, x->data.data, c.data.len)))
            abort(); /* the two paths disagree */
        if (sig == OT_METRICS && (d.data.len != y->data.len ||
                                  (d.data.len && memcmp(d.data.data, y->data.data, d.data.len))))
            abort();
    } else if (rc != 1) {
        abort(); /* protobuf-c took the request, the walk did not */
    }
    dd_items_free(&c);
    dd_items_free(&d);
    ot_arena_free(keep);
    ot_arena_free(chunk);
}

typedef struct pieces {
    ot_signal s;
    size_t items;
} pieces;

static int piece(void *ctx, const uint8_t *req, size_t len, size_t items)
{
    pieces *p = ctx;
    ot_arena *a = ot_arena_new(0);
    ProtobufCMessage *m = protobuf_c_message_unpack(ot_signal_request_desc(p->s),
                                                    ot_arena_pb_allocator(a), len, req);
    if (!m || (items != SIZE_MAX && ot_count_items(p->s, m) != items))
        abort(); /* a piece that is not a request, or miscounted */
    p->items += ot_count_items(p->s, m);
    ot_arena_free(a);
    return 0;
}

/* The cut into queued pieces keeps every item (small pieces, to cut often). */
static void check_split(ot_signal sig, const uint8_t *w, size_t n, const ProtobufCMessage *m)
{
    pieces p = {sig, 0};
    ot_err err;
    if (dd_wire_split(sig, w, n, 3, 256, piece, &p, &err) != 0)
        abort();
    if (p.items != ot_count_items(sig, m))
        abort(); /* items lost or invented */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ot_err err;
    dd_delta *delta = dd_delta_new(10000, 4u << 20, 0, &err);
    if (!delta)
        abort();
    ot_signal sig = (ot_signal)(data[0] % 3);
    ot_counter nan = {0};
    dd_opts o = {.hostname = "fuzz", .dropped_nan = &nan, .now_s = 1700000000, .hist_mode = (data[0] >> 2) % 3,
                 .summary_mode = (data[0] >> 4) & 1};
    ot_arena *a = ot_arena_new(0);
    ProtobufCMessage *m = protobuf_c_message_unpack(ot_signal_request_desc(sig),
                                                    ot_arena_pb_allocator(a), size - 1, data + 1);
    if (m) {
        check_split(sig, data + 1, size - 1, m);
        dd_items x = {0}, y = {0};
        if (sig == OT_METRICS) {
            for (int round = 0; round < 2; round++) {
                dd_items_reset(&x);
                dd_items_reset(&y);
                if (round == 0) {
                    if (dd_series_encode((ot_metrics_req *)m, &o, &x, &y, a, &err) < 0)
                        abort();
                    same_as_wire(sig, &o, data + 1, size - 1, &x, &y);
                    dd_items_reset(&x);
                    dd_items_reset(&y);
                }
                if (round == 0 &&
                    dd_delta_apply(delta, (ot_metrics_req *)m, (data[0] >> 6) & 1, 0) < 0)
                    abort();
                if (dd_series_encode((ot_metrics_req *)m, &o, &x, &y, a, &err) < 0)
                    abort();
                check_json(&x, DD_SERIES);
            }
        } else if (sig == OT_LOGS) {
            if (dd_logs_encode((ot_logs_req *)m, &o, &x, &err) < 0)
                abort();
            check_json(&x, DD_LOGS);
            same_as_wire(sig, &o, data + 1, size - 1, &x, NULL);
        } else {
            if (dd_traces_encode((ot_trace_req *)m, &o, &x, a, &err) < 0)
                abort();
            size_t spans = 0;
            const ot_trace_req *r = (const ot_trace_req *)m;
            for (size_t i = 0; i < r->n_resource_spans; i++)
                for (size_t s = 0; s < r->resource_spans[i]->n_scope_spans; s++)
                    spans += r->resource_spans[i]->scope_spans[s]->n_spans;
            if (x.points != spans)
                abort(); /* a span lost or invented */
            same_as_wire(sig, &o, data + 1, size - 1, &x, NULL);
        }
        dd_items_free(&x);
        dd_items_free(&y);
    }
    ot_arena_free(a);
    dd_delta_free(delta);
    return 0;
}
