/* bench_wireproc.c: what the filter, attributes and resource processors
 * cost per item in-process, on the wire form and on the decoded reference
 * path, without the network (issue 19; the scenario rows of `make bench`
 * measure the whole agent). The configs are the scenario rows': a filter
 * that matches nothing, one inserted attribute, one upserted resource
 * attribute, and the three chained. Each round hands a fresh bytes-only
 * copy of a 100-item request with 10 attributes per item to the chain;
 * the copy is made outside the timing. For the decoded path the time
 * includes the encode the exporter would do. Prints ns per item, the
 * median round (the machine is shared: a mean takes in other work).
 *
 * Built and run by `make bench` ($(BUILD)/bench-wireproc).
 * Run: build/bench-wireproc [rounds (300)] [signal] [--wire-only] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/otlp_samples.h"
#include "../unit/wireproc_check.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *filter_spec(ot_signal s)
{
    switch (s) {
    case OT_TRACES:
        return "filter: {traces: {span: ['name == \"bench.never\"', 'attributes[\"http.route\"] == "
               "\"/bench/never\"']}}";
    case OT_METRICS: return "filter: {metrics: {metric: ['name == \"bench.never\"']}}";
    default:
        return "filter: {logs: {log_record: ['severity_text == \"TRACE\"', 'attributes[\"http.route\"] "
               "== \"/bench/never\"']}}";
    }
}

#define ATTRS "attributes: {actions: [{key: bench.pipeline, value: edge, action: insert}]}"
#define RES "resource: {attributes: [{key: deployment.region, value: eu-west-1, action: upsert}]}"

static double run(ot_signal s, const char *const *specs, size_t n, bool decoded, const uint8_t *req,
                  size_t len, size_t items, int rounds)
{
    wp_chain c;
    char why[300];
    if (wp_chain_make(&c, s, specs, n, decoded, why, sizeof why) < 0) {
        fprintf(stderr, "bench-wireproc: %s\n", why);
        exit(1);
    }
    int64_t *t = malloc((size_t)rounds * sizeof *t);
    for (int r = 0; r < rounds; r++) {
        ot_err err;
        ot_batch *b = ot_batch_from_wire(s, req, len, items, &err);
        int64_t t0 = now_ns();
        ot_consume(c.head, b, &err);
        if (c.rec.got) {
            const uint8_t *w;
            size_t wl;
            ot_batch_wire(c.rec.got, &w, &wl, &err); /* what the exporter would send */
        }
        t[r] = now_ns() - t0;
        if (c.rec.got) {
            ot_batch_unref(c.rec.got);
            c.rec.got = NULL;
        }
    }
    wp_chain_free(&c);
    qsort(t, (size_t)rounds, sizeof *t, cmp_i64);
    double med = (double)t[rounds / 2];
    free(t);
    return med / (double)items;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 300;
    const char *only = argc > 2 ? argv[2] : NULL;
    bool wire_only = argc > 3 && strcmp(argv[3], "--wire-only") == 0;
    ot_arena *a = ot_arena_new(0);
    printf("| signal | processors | wire ns/item | decoded ns/item |\n|---|---|---:|---:|\n");
    for (int si = 0; si < OT_SIGNAL_COUNT; si++) {
        ot_signal s = (ot_signal)si;
        if (only && strcmp(only, ot_signal_name(s)) != 0)
            continue;
        ProtobufCMessage *m = ot_sample_request(a, s, 100, 10);
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *req = malloc(len);
        protobuf_c_message_pack(m, req);
        size_t items = ot_count_items(s, m);
        const char *f = filter_spec(s);
        struct {
            const char *name;
            const char *specs[3];
            size_t n;
        } rows[] = {
            {"filter", {f}, 1},
            {"attributes", {ATTRS}, 1},
            {"resource", {RES}, 1},
            {"filter, attributes, resource", {f, ATTRS, RES}, 3},
        };
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
            double w = run(s, rows[k].specs, rows[k].n, false, req, len, items, rounds);
            double d = wire_only ? 0 : run(s, rows[k].specs, rows[k].n, true, req, len, items, rounds);
            printf("| %s | %s | %.0f | %.0f |\n", ot_signal_name(s), rows[k].name, w, d);
        }
        free(req);
    }
    ot_arena_free(a);
    return 0;
}
