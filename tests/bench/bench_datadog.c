/* bench_datadog.c: what the datadog exporter costs per item between a
 * batch's bytes and the bodies it posts: the cumulative-to-delta pass
 * (metrics; the exporter runs it before the queue), the translation one
 * leaf at a time from the bytes (wire.c), the framing of requests and
 * their gzip (traces are sent uncompressed), on realistic items from the
 * shared sample builder. The HTTP round trip is not in it: the scenario run by
 * tests/bench/bench_datadog.py measures the whole agent.
 *
 * Built and run by `make bench` ($(BUILD)/bench-datadog).
 * Run: build/bench-datadog [items per batch (1000)] [rounds (200)] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../exporters/datadog/dd.h"
#include "../unit/otlp_samples.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/compress.h"

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Moves every point's times on by d so the delta pass sees a new point of
 * each stream, as it would one interval later. */
static void advance(ot_metrics_req *r, uint64_t d)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++)
        for (size_t s = 0; s < r->resource_metrics[i]->n_scope_metrics; s++) {
            ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[s];
            for (size_t m = 0; m < sm->n_metrics; m++) {
                ot_metric *mt = sm->metrics[m];
                switch (mt->data_case) { /* the data is a oneof: one pointer */
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    for (size_t p = 0; p < mt->sum->n_data_points; p++)
                        mt->sum->data_points[p]->time_unix_nano += d;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    for (size_t p = 0; p < mt->histogram->n_data_points; p++)
                        mt->histogram->data_points[p]->time_unix_nano += d;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    for (size_t p = 0; p < mt->exponential_histogram->n_data_points; p++)
                        mt->exponential_histogram->data_points[p]->time_unix_nano += d;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    for (size_t p = 0; p < mt->summary->n_data_points; p++)
                        mt->summary->data_points[p]->time_unix_nano += d;
                    break;
                default:
                    break;
                }
            }
        }
}

static const char *const NAMES[] = {"spans -> /v0.4/traces msgpack",
                                    "metric points -> series JSON + sketches, gzip",
                                    "log records -> /api/v2/logs JSON, gzip"};

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    if (!n || rounds <= 0) {
        fprintf(stderr, "usage: bench-datadog [items] [rounds]\n");
        return 2;
    }
    ot_counter nan = {0};
    dd_opts o = {.hostname = "bench-host", .dropped_nan = &nan};
    ot_err err = {{0}};
    dd_delta *delta = dd_delta_new(1000000, 0, 0, &err);
    ot_arena *scratch = ot_arena_new(1 << 20), *batch = ot_arena_new(1 << 20);
    dd_items a = {0}, b = {0};
    ot_buf body = OT_BUF_INIT, dwire = OT_BUF_INIT;
    ot_compressor comp = {0};
    printf("datadog exporter, %zu items per batch, %d rounds (CPU of this process):\n", n, rounds);
    for (int sig = 0; sig < 3; sig++) {
        ot_arena *ra = ot_arena_new(0);
        ProtobufCMessage *req = ot_sample_request(ra, (ot_signal)sig, n, 10);
        size_t wlen = protobuf_c_message_get_packed_size(req);
        uint8_t *wire = malloc(wlen);
        if (!wire || !delta)
            return 1;
        size_t bytes = 0, items = 0;
        int64_t spent = 0;
        for (int r = -1; r < rounds; r++) { /* round -1: the delta pass meets its streams */
            if (sig == OT_METRICS)
                advance((ot_metrics_req *)req, 10000000000ull);
            protobuf_c_message_pack(req, wire);
            ot_arena_reset(batch);
            ot_arena_reset(scratch);
            dd_items_reset(&a);
            dd_items_reset(&b);
            int64_t t0 = cpu_ns();
            int rc;
            /* what the exporter does: the batch's bytes, one leaf at a time */
            if (sig == OT_TRACES) {
                rc = dd_traces_encode_wire(wire, wlen, &o, &a, batch, scratch, &err);
                dd_frame(DD_TRACES, &a, 0, a.n, &body);
            } else if (sig == OT_METRICS) {
                ot_buf_reset(&dwire);
                size_t pts;
                rc = dd_delta_apply_wire(delta, wire, wlen, DD_SUMS_TO_DELTA, 0, batch, &dwire,
                                         &pts, &err);
                if (rc == 0)
                    rc = dd_series_encode_wire((const uint8_t *)dwire.data, dwire.len, &o, &a, &b,
                                               batch, scratch, &err);
                dd_frame(DD_SERIES, &a, 0, a.n, &body);
                ot_compress(&comp, OT_COMPRESS_GZIP, body.data, body.len, &err);
                dd_frame(DD_SKETCHES, &b, 0, b.n, &body);
                ot_compress(&comp, OT_COMPRESS_GZIP, body.data, body.len, &err);
            } else {
                rc = dd_logs_encode_wire(wire, wlen, &o, &a, batch, scratch, &err);
                dd_frame(DD_LOGS, &a, 0, a.n, &body);
                ot_compress(&comp, OT_COMPRESS_GZIP, body.data, body.len, &err);
            }
            int64_t t1 = cpu_ns();
            if (rc < 0) {
                fprintf(stderr, "encode failed: %s\n", err.msg);
                return 1;
            }
            if (r >= 0) {
                spent += t1 - t0;
                bytes += a.data.len + b.data.len;
                items += n;
            }
        }
        printf("  %-48s %7.3f CPU-s per million, %6.0f ns each, %5.0f bytes of items each\n",
               NAMES[sig], (double)spent / (double)items * 1e6 / 1e9,
               (double)spent / (double)items, (double)bytes / (double)items);
        free(wire);
        ot_arena_free(ra);
    }
    dd_delta_free(delta);
    dd_items_free(&a);
    dd_items_free(&b);
    ot_buf_free(&body);
    ot_buf_free(&dwire);
    ot_compressor_free(&comp);
    ot_arena_free(scratch);
    ot_arena_free(batch);
    return 0;
}
