/* bench_filter.c: what the filter processor costs per span with 5 typical
 * conditions (issue 5's "filter cost per span"), on realistic spans from
 * the shared sample builder. Each round filters a fresh decoded copy of
 * the same batch; only the consume call is timed, so decoding and copying
 * are not counted. Prints one line: ns/span.
 *
 * Built and run by `make bench` ($(BUILD)/bench-filter).
 * Run: build/bench_filter [spans per batch (1000)] [rounds (200)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/otlp_samples.h"
#include "model/batch.h"
#include "config/config.h"
#include "pipeline/factory.h"

extern const ot_factory ot_filter_processor;

static const char CONFIG[] =
    "traces:\n"
    "  span:\n"
    "    - 'attributes[\"http.route\"] == \"/healthz\"'\n"
    "    - 'IsMatch(name, \"^(redis|HTTP GET) \")'\n"
    "    - 'resource.attributes[\"k8s.pod.name\"] == \"canary-0\" and kind == "
    "SPAN_KIND_INTERNAL'\n"
    "    - 'attributes[\"http.response.status_code\"] >= 500 and attributes[\"cache.hit\"] == "
    "true'\n"
    "    - 'Len(attributes[\"client.address\"]) > 64 or attributes[\"sampler.ratio\"] < 0.001'\n";

/* Keeps what it gets, so freeing the batch is not timed as filtering. */
typedef struct sink {
    ot_consumer base;
    size_t spans_out;
    ot_batch *held;
} sink;

static ot_status sink_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    sink *s = (sink *)self;
    s->spans_out += b->items;
    s->held = b;
    return OT_OK;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t n_spans = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    if (!n_spans || rounds <= 0) {
        fprintf(stderr, "usage: bench_filter [spans] [rounds]\n");
        return 2;
    }

    /* the processor, configured as a user would */
    ot_arena *ca = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    const ot_node *node = ot_node_parse(ca, "bench", CONFIG, sizeof CONFIG - 1, &d);
    void *cfg = ot_arena_calloc(ca, ot_filter_processor.config_size);
    ot_keys_fill(ot_filter_processor.keys, node, cfg, ca, "processors.filter", &d);
    ot_filter_processor.validate(cfg, node, "processors.filter", &d);
    if (d.errors) {
        ot_diags_print(&d, stderr);
        return 1;
    }
    sink out = {{sink_consume, false}, 0, NULL};
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = "filter/bench";
    p.config = cfg;
    p.signal = OT_TRACES;
    p.next[OT_TRACES] = &out.base;
    ot_err err;
    void *self = ot_filter_processor.create(&p, &err);
    if (!self) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    ot_consumer *filter = ot_filter_processor.consumer(self, OT_TRACES);

    /* the batch: spans with 12 attributes of mixed types */
    ot_arena *ba = ot_arena_new(0);
    ot_batch *proto = ot_batch_adopt(OT_TRACES, ba,
                                     (ProtobufCMessage *)ot_sample_traces(ba, n_spans, 12));
    if (!proto)
        return 1;

    int64_t spent = 0;
    size_t in = 0;
    for (int r = 0; r < rounds; r++) {
        ot_batch *b = ot_batch_clone(proto, &err);
        if (!b || !ot_batch_msg(b, &err)) { /* decoded before the clock starts */
            fprintf(stderr, "clone: %s\n", err.msg);
            return 1;
        }
        in += b->items;
        int64_t t0 = now_ns();
        ot_status st = ot_consume(filter, b, &err);
        spent += now_ns() - t0;
        ot_batch_unref(out.held);
        out.held = NULL;
        if (st != OT_OK) {
            fprintf(stderr, "consume: %s\n", err.msg);
            return 1;
        }
    }
    printf("filter (5 conditions): %.1f ns/span  (%zu spans x %d rounds, %.1f%% dropped)\n",
           (double)spent / (double)in, n_spans, rounds,
           100.0 * (double)(in - out.spans_out) / (double)in);

    ot_batch_unref(proto);
    ot_filter_processor.destroy(self);
    ot_diags_free(&d);
    ot_arena_free(ca);
    return 0;
}
