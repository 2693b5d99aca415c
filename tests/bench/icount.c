/* icount.c: the driver of `make bench-icount`. Wall-clock benchmarks on a
 * shared two-core machine move by several percent from run to run;
 * instruction counts under callgrind do not, so this is the number to
 * compare before and after a change to the hot path. It runs the agent's
 * per-item work on a fixed, deterministic corpus (the loadgen's content
 * with a fixed seed, time and run id) in phases, and asks callgrind to dump
 * the count of each phase separately:
 *
 *   walk             the receivers' fast-path check of protobuf bytes
 *   walk-check       the same with the item rules and the decoded-cost sum
 *   decode-protobuf  protobuf-c unpack into a batch arena
 *   decode-json      OTLP JSON into a batch
 *   batch            the batch processor joining requests (its factory,
 *                    send_batch_size 1000, flushed at shutdown)
 *   encode-protobuf  packing decoded requests again
 *   encode-json      OTLP JSON from the decoded structs (the reference)
 *   encode-json-wire the file exporter's OTLP JSON, from the protobuf bytes
 *   jaeger-split     the jaeger exporter's per-resource split of a batch
 *                    (the trace requests joined as the batch processor
 *                    joins them)
 *   jaeger-thrift    its requests written as Thrift Batches (direct.c)
 *   jaeger-proto     the same as api_v2 PostSpansRequests
 *
 * Outside valgrind it runs the same work and prints the item counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/factory.h"
#include "../../exporters/jaeger/jaeger.h"
#include "loadgen/loadgen.h"
#include "model/otlp_json.h"
#include "model/pbwalk.h"

#include "callgrind_marks.h"

#define WALL_NS 1700000000000000000LL

typedef struct corpus {
    ot_signal sig;
    size_t n_req;
    uint8_t **pb;
    size_t *pb_len;
    char **js;
    size_t *js_len;
    size_t items;
} corpus;

static corpus corpora[OT_SIGNAL_COUNT];
static const size_t reqs_per_signal[OT_SIGNAL_COUNT] = {20, 10, 10};

static int make_corpus(corpus *c, ot_signal sig, size_t n_req)
{
    lg_opts o;
    memset(&o, 0, sizeof o);
    o.sig = sig;
    o.target = LG_T_HTTP;
    o.batch = 100;
    o.attributes = 10;
    o.seed = 42;
    snprintf(o.run_id, sizeof o.run_id, "icount");
    c->sig = sig;
    c->n_req = n_req;
    c->pb = calloc(n_req, sizeof *c->pb);
    c->pb_len = calloc(n_req, sizeof *c->pb_len);
    c->js = calloc(n_req, sizeof *c->js);
    c->js_len = calloc(n_req, sizeof *c->js_len);
    if (!c->pb || !c->pb_len || !c->js || !c->js_len)
        return -1;
    for (size_t r = 0; r < n_req; r++) {
        ot_arena *a = ot_arena_new(0);
        lg_msg *m = lg_msg_build(&o, 42 + r, o.batch, a);
        if (!m)
            return -1;
        lg_msg_materialize(m, r * o.batch, WALL_NS, 7 + r);
        c->pb_len[r] = protobuf_c_message_get_packed_size(m->req);
        c->pb[r] = malloc(c->pb_len[r]);
        protobuf_c_message_pack(m->req, c->pb[r]);
        ot_buf js = OT_BUF_INIT;
        ot_err err = {{0}};
        if (ot_json_encode(m->req, &js, &err) < 0) {
            fprintf(stderr, "icount: %s\n", err.msg);
            return -1;
        }
        c->js[r] = js.data;
        c->js_len[r] = js.len;
        c->items += m->n;
        ot_arena_free(a);
    }
    return 0;
}

static size_t total_items(void)
{
    size_t n = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        n += corpora[s].items;
    return n;
}

static void phase_end(const char *name, size_t items)
{
    CALLGRIND_DUMP_STATS_AT(name);
    printf("phase %s: %zu items\n", name, items);
}

/* ---- a consumer at the end of the batch processor ------------------------ */

typedef struct counting {
    ot_consumer base;
    size_t batches, items;
} counting;

static ot_status count_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    counting *c = (counting *)self;
    c->batches++;
    c->items += b->items;
    ot_batch_unref(b);
    return OT_OK;
}

static int run_batch_phase(void)
{
    const ot_factory *f = ot_factory_find(OT_PROCESSOR, "batch", 5);
    if (!f) {
        printf("phase batch: skipped (no batch processor in this build)\n");
        return 0;
    }
    static const char yaml[] = "send_batch_size: 1000\ntimeout: 1h\n";
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    const ot_node *node = ot_node_parse(a, "icount", yaml, sizeof yaml - 1, &d);
    void *cfg = ot_arena_calloc(a, f->config_size ? f->config_size : 1);
    if (!node || ot_keys_fill(f->keys, node, cfg, a, "processors.batch", &d) != 0) {
        ot_diags_print(&d, stderr);
        return -1;
    }
    counting sink[OT_SIGNAL_COUNT];
    void *proc[OT_SIGNAL_COUNT];
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        sink[s] = (counting){{count_consume, false}, 0, 0};
        ot_create_params p;
        memset(&p, 0, sizeof p);
        p.id = "batch";
        p.config = cfg;
        p.signal = (ot_signal)s;
        p.next[s] = &sink[s].base;
        ot_err err = {{0}};
        proc[s] = f->create(&p, &err);
        if (!proc[s] || (f->start && f->start(proc[s], &err) < 0)) {
            fprintf(stderr, "icount: batch processor: %s\n", err.msg);
            return -1;
        }
    }
    /* let the timer threads reach their wait, so the phase never races them */
    struct timespec nap = {0, 200000000};
    nanosleep(&nap, NULL);
    CALLGRIND_ZERO_STATS;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        corpus *c = &corpora[s];
        ot_consumer *in = f->consumer(proc[s], (ot_signal)s);
        for (size_t r = 0; r < c->n_req; r++) {
            ot_err err = {{0}};
            ot_batch *b = ot_batch_from_wire((ot_signal)s, c->pb[r], c->pb_len[r], 100, &err);
            if (!b || ot_consume(in, b, &err) != OT_OK) {
                fprintf(stderr, "icount: batch consume: %s\n", err.msg);
                return -1;
            }
        }
    }
    /* Every signal's items are a multiple of send_batch_size, so all
     * flushes happened by size inside the phase; shutdown (thread joins,
     * whose cost depends on timing) stays outside it. */
    phase_end("batch", total_items());
    size_t out = 0, batches = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        f->shutdown(proc[s], ot_now_ns() + 1000000000LL);
        f->destroy(proc[s]);
        out += sink[s].items;
        batches += sink[s].batches;
    }
    printf("  batch: %zu items out in %zu batches\n", out, batches);
    ot_diags_free(&d);
    ot_arena_free(a);
    return out == total_items() ? 0 : -1;
}

/* ---- the jaeger exporter's work per batch ------------------------------- */

typedef struct jsplit {
    ot_buf reqs; /* every request the split wrote, one after another (room
                  * for them all reserved first, so they never move) */
    const uint8_t *req[64];
    size_t len[64], spans[64];
    size_t n;
} jsplit;

static uint8_t *jsplit_dst(void *vctx, size_t n)
{
    jsplit *j = vctx;
    if (j->n == 64 || j->reqs.cap - j->reqs.len < n)
        return NULL;
    uint8_t *p = (uint8_t *)j->reqs.data + j->reqs.len;
    j->reqs.len += n;
    return p;
}

static int jsplit_emit(void *vctx, const uint8_t *req, size_t len, size_t spans)
{
    jsplit *j = vctx;
    if (j->n == 64)
        return 1;
    j->req[j->n] = req;
    j->len[j->n] = len;
    j->spans[j->n++] = spans;
    return 0;
}

/* The traces corpus as one batch (its requests' bytes joined), split per
 * resource, then each request encoded both ways. */
static int run_jaeger_phases(void)
{
    corpus *c = &corpora[OT_TRACES];
    ot_buf joined = OT_BUF_INIT;
    for (size_t r = 0; r < c->n_req; r++)
        if (ot_buf_append(&joined, c->pb[r], c->pb_len[r]) < 0)
            return -1;
    jsplit j;
    memset(&j, 0, sizeof j);
    ot_buf_reserve(&j.reqs, joined.len + 4096);
    ot_err err = {{0}};
    CALLGRIND_ZERO_STATS;
    int rc = ot_jaeger_split_to((const uint8_t *)joined.data, joined.len, jsplit_dst, jsplit_emit, &j,
                                &err);
    size_t split = 0;
    for (size_t i = 0; i < j.n; i++)
        split += j.spans[i];
    phase_end("jaeger-split", split);
    if (rc < 0)
        return fprintf(stderr, "icount: jaeger split: %s\n", err.msg), -1;
    ot_jaeger_enc *enc = ot_jaeger_enc_new();
    ot_buf out = OT_BUF_INIT;
    ot_buf_reserve(&out, 4 * joined.len);
    size_t done[2] = {0, 0};
    for (int thrift = 1; thrift >= 0; thrift--) {
        /* once outside the phase, so the views have grown to their size */
        const ot_jaeger_body *bodies;
        size_t nb;
        ot_buf_reset(&out);
        ot_jaeger_encode_wire(enc, thrift, j.req[0], j.len[0], &out,
                              &bodies, &nb, &err);
        CALLGRIND_ZERO_STATS;
        for (size_t i = 0; i < j.n; i++) {
            ot_buf_reset(&out);
            if (ot_jaeger_encode_wire(enc, thrift, j.req[i], j.len[i],
                                      &out, &bodies, &nb, &err) == 0)
                for (size_t k = 0; k < nb; k++)
                    done[thrift] += bodies[k].spans;
        }
        phase_end(thrift ? "jaeger-thrift" : "jaeger-proto", done[thrift]);
    }
    ot_jaeger_enc_free(enc);
    ot_buf_free(&out);
    ot_buf_free(&j.reqs);
    ot_buf_free(&joined);
    return split == c->items && done[0] == c->items && done[1] == c->items ? 0 : -1;
}

int main(void)
{
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        if (make_corpus(&corpora[s], (ot_signal)s, reqs_per_signal[s]) < 0)
            return fprintf(stderr, "icount: cannot build the corpus\n"), 1;
    size_t bytes = 0, jbytes = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            bytes += corpora[s].pb_len[r];
            jbytes += corpora[s].js_len[r];
        }
    printf("corpus: %zu items (%zu spans, %zu points, %zu log records), %zu protobuf bytes, %zu JSON bytes\n",
           total_items(), corpora[0].items, corpora[1].items, corpora[2].items, bytes, jbytes);

    /* walk */
    CALLGRIND_ZERO_STATS;
    size_t walked = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            size_t it = 0;
            ot_err err = {{0}};
            if (ot_pbwalk((ot_signal)s, corpora[s].pb[r], corpora[s].pb_len[r], &it, &err) == 0)
                walked += it;
        }
    phase_end("walk", walked);

    /* walk-check: what the receivers run now (the walk, the item rules of
     * otlp_check.h and the decoded-cost estimate) */
    CALLGRIND_ZERO_STATS;
    size_t checked = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            ot_pbwalk_info wi;
            ot_err err = {{0}};
            if (ot_pbwalk_check((ot_signal)s, corpora[s].pb[r], corpora[s].pb_len[r], &wi, &err) == 0 &&
                wi.rej.n == 0)
                checked += wi.items;
        }
    phase_end("walk-check", checked);

    /* decode-protobuf: the batches are kept for the encode phases */
    ot_batch **dec[OT_SIGNAL_COUNT];
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        dec[s] = calloc(corpora[s].n_req, sizeof *dec[s]);
    CALLGRIND_ZERO_STATS;
    size_t decoded = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            ot_err err = {{0}};
            dec[s][r] = ot_batch_decode((ot_signal)s, corpora[s].pb[r], corpora[s].pb_len[r], &err);
            if (dec[s][r])
                decoded += dec[s][r]->items;
        }
    phase_end("decode-protobuf", decoded);

    CALLGRIND_ZERO_STATS;
    size_t jdecoded = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            ot_err err = {{0}};
            ot_batch *b = ot_batch_from_json((ot_signal)s, corpora[s].js[r], corpora[s].js_len[r], &err);
            if (b) {
                jdecoded += b->items;
                ot_batch_unref(b);
            }
        }
    phase_end("decode-json", jdecoded);

    if (run_batch_phase() < 0)
        return 1;

    uint8_t *out = malloc(1 << 22);
    CALLGRIND_ZERO_STATS;
    size_t encoded = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            const ProtobufCMessage *m = dec[s][r] ? ot_batch_msg(dec[s][r], NULL) : NULL;
            if (m && protobuf_c_message_get_packed_size(m) <= (1u << 22)) {
                protobuf_c_message_pack(m, out);
                encoded += dec[s][r]->items;
            }
        }
    phase_end("encode-protobuf", encoded);

    ot_buf js = OT_BUF_INIT;
    ot_buf_reserve(&js, 1 << 22);
    CALLGRIND_ZERO_STATS;
    size_t jencoded = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            const ProtobufCMessage *m = dec[s][r] ? ot_batch_msg(dec[s][r], NULL) : NULL;
            ot_buf_reset(&js);
            if (m && ot_json_encode(m, &js, NULL) == 0)
                jencoded += dec[s][r]->items;
        }
    phase_end("encode-json", jencoded);

    CALLGRIND_ZERO_STATS;
    size_t wencoded = 0;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            ot_buf_reset(&js);
            if (ot_json_encode_wire((ot_signal)s, corpora[s].pb[r], corpora[s].pb_len[r], &js, NULL) == 0)
                wencoded += corpora[s].items / corpora[s].n_req;
        }
    phase_end("encode-json-wire", wencoded);

    ot_buf_free(&js);
    free(out);
    if (run_jaeger_phases() < 0)
        return fprintf(stderr, "icount: the jaeger phases did not handle every span\n"), 1;
    int ok = walked == total_items() && checked == total_items() && decoded == total_items() && jdecoded == total_items() &&
             encoded == total_items() && jencoded == total_items() && wencoded == total_items();
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        for (size_t r = 0; r < corpora[s].n_req; r++) {
            if (dec[s][r])
                ot_batch_unref(dec[s][r]);
            free(corpora[s].pb[r]);
            free(corpora[s].js[r]);
        }
        free(dec[s]);
        free(corpora[s].pb);
        free(corpora[s].pb_len);
        free(corpora[s].js);
        free(corpora[s].js_len);
    }
    if (!ok)
        fprintf(stderr, "icount: a phase did not handle every item\n");
    return ok ? 0 : 1;
}
