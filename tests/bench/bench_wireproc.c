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
 * With --icount it instead runs the loadgen's content (what the scenario
 * rows send: 100 items of 10 attributes per request, fixed seed) once
 * through each row on the wire path, with a callgrind dump per row, so
 * `valgrind --tool=callgrind build/bench-wireproc --icount` gives
 * deterministic instruction counts for before/after on a busy machine.
 *
 * With --loadgen the same content is timed instead: the fastest of
 * [rounds (200)] passes over the ten requests, per row, in ns per item
 * (the fastest, not the median: on a shared machine other work only ever
 * adds time).
 *
 * Built and run by `make bench` ($(BUILD)/bench-wireproc).
 * Run: build/bench-wireproc [rounds (300)] [signal] [--wire-only]
 *      build/bench-wireproc --icount
 *      build/bench-wireproc --loadgen [rounds] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/otlp_samples.h"
#include "../unit/wireproc_check.h"
#include "loadgen/loadgen.h"

#include "callgrind_marks.h"

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

/* The rows: the bytes-only batch alone ("copy", --icount only), then the
 * processors of the scenario rows. */
typedef struct row {
    const char *name;
    const char *specs[3];
    size_t n;
} row;

#define N_ROWS 4

static void rows_of(ot_signal s, row out[N_ROWS + 1])
{
    const char *f = filter_spec(s);
    const row rows[N_ROWS + 1] = {
        {"copy", {NULL}, 0},
        {"filter", {f}, 1},
        {"attributes", {ATTRS}, 1},
        {"resource", {RES}, 1},
        {"filter, attributes, resource", {f, ATTRS, RES}, 3},
    };
    memcpy(out, rows, sizeof rows);
}

#define IC_REQS 10

/* The loadgen's requests for signal s (what the scenario rows send: 100
 * items of 10 attributes per request, fixed seed). */
static int lg_requests(ot_signal s, uint8_t *req[IC_REQS], size_t len[IC_REQS],
                       size_t items[IC_REQS], size_t *total)
{
    lg_opts o;
    memset(&o, 0, sizeof o);
    o.sig = s;
    o.target = LG_T_HTTP;
    o.batch = 100;
    o.attributes = 10;
    o.seed = 1;
    snprintf(o.run_id, sizeof o.run_id, "wireproc");
    *total = 0;
    for (size_t r = 0; r < IC_REQS; r++) {
        ot_arena *a = ot_arena_new(0);
        lg_msg *m = lg_msg_build(&o, 1 + r, o.batch, a);
        if (!m)
            return -1;
        lg_msg_materialize(m, r * o.batch, 1700000000000000000LL, 7 + r);
        len[r] = protobuf_c_message_get_packed_size(m->req);
        req[r] = malloc(len[r]);
        protobuf_c_message_pack(m->req, req[r]);
        items[r] = m->n;
        *total += m->n;
        ot_arena_free(a);
    }
    return 0;
}

/* The rows on the loadgen's requests: with timed, each row `rounds` times
 * over the ten requests and the fastest round printed (ns per item, the
 * bytes-only batch made outside the clock); else once each, with a
 * callgrind dump per row ("SIGNAL-ROW"; "SIGNAL-copy" is the bytes-only
 * batch alone, the floor). */
static int lg_rows(bool timed, int rounds)
{
    if (timed)
        printf("| signal | processors | items | wire ns/item (fastest of %d) |\n"
               "|---|---|---:|---:|\n", rounds);
    else
        printf("| signal | processors | items | instructions: see callgrind dumps |\n"
               "|---|---|---:|---|\n");
    for (int si = 0; si < OT_SIGNAL_COUNT; si++) {
        ot_signal s = (ot_signal)si;
        uint8_t *req[IC_REQS];
        size_t len[IC_REQS], items[IC_REQS], total = 0;
        if (lg_requests(s, req, len, items, &total) < 0)
            return 1;
        row rows[N_ROWS + 1];
        rows_of(s, rows);
        for (size_t k = timed ? 1 : 0; k < N_ROWS + 1; k++) {
            wp_chain c;
            char why[300];
            if (rows[k].n &&
                wp_chain_make(&c, s, rows[k].specs, rows[k].n, false, why, sizeof why) < 0) {
                fprintf(stderr, "bench-wireproc: %s\n", why);
                return 1;
            }
            size_t out = 0;
            int64_t best = -1;
            CALLGRIND_ZERO_STATS;
            for (int round = 0; round < (timed ? rounds : 1); round++) {
                int64_t spent = 0;
                out = 0;
                for (size_t r = 0; r < IC_REQS; r++) {
                    ot_err err;
                    ot_batch *b = ot_batch_from_wire(s, req[r], len[r], items[r], &err);
                    if (!rows[k].n) {
                        out += b->items;
                        ot_batch_unref(b);
                        continue;
                    }
                    int64_t t0 = timed ? now_ns() : 0;
                    ot_consume(c.head, b, &err);
                    if (timed)
                        spent += now_ns() - t0;
                    if (c.rec.got) {
                        out += c.rec.got->items;
                        ot_batch_unref(c.rec.got);
                        c.rec.got = NULL;
                    }
                }
                if (best < 0 || spent < best)
                    best = spent;
            }
            char name[64];
            snprintf(name, sizeof name, "%s-%s", ot_signal_name(s),
                     k == N_ROWS ? "chain" : rows[k].name);
            if (timed) {
                printf("| %s | %s | %zu/%zu | %.1f |\n", ot_signal_name(s), rows[k].name, out,
                       total, (double)best / (double)total);
            } else {
                CALLGRIND_DUMP_STATS_AT(name);
                printf("| %s | %s | %zu/%zu | |\n", ot_signal_name(s), rows[k].name, out, total);
            }
            if (rows[k].n)
                wp_chain_free(&c);
        }
        for (size_t r = 0; r < IC_REQS; r++)
            free(req[r]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--icount") == 0)
        return lg_rows(false, 1);
    if (argc > 1 && strcmp(argv[1], "--loadgen") == 0)
        return lg_rows(true, argc > 2 ? atoi(argv[2]) : 200);
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
        row all[N_ROWS + 1], *rows = all + 1; /* without the "copy" row */
        rows_of(s, all);
        for (size_t k = 0; k < N_ROWS; k++) {
            double w = run(s, rows[k].specs, rows[k].n, false, req, len, items, rounds);
            double d = wire_only ? 0 : run(s, rows[k].specs, rows[k].n, true, req, len, items, rounds);
            printf("| %s | %s | %.0f | %.0f |\n", ot_signal_name(s), rows[k].name, w, d);
        }
        free(req);
    }
    ot_arena_free(a);
    return 0;
}
