/* bench_prw.c: what the prometheusremotewrite exporter costs per sample,
 * OTLP in to compressed remote-write bodies out, into a sink (no network:
 * the HTTP client is shared with every HTTP exporter and measured there):
 *
 *   1. translation into the stream store and WriteRequest bytes, then
 *      snappy, as consume() does it: samples/s and CPU seconds per million
 *      samples, in the steady state (series already known, every point a
 *      newer one), for a mix of every OTLP type (tests/unit/otlp_samples.c,
 *      3 attributes a point) over 100 resources;
 *   2. bytes on the wire per sample, before and after snappy;
 *   3. the hand-written encoder against protobuf-c building and packing
 *      the same WriteRequest (why wire.c exists).
 *
 * Built and run by `make bench` ($(BUILD)/bench-prw).
 * Run: bench-prw [rounds (20)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../exporters/prometheusremotewrite/prw.h"
#include "../unit/otlp_samples.h"
#include "base/arena.h"
#include "prw_remote_write.pb-c.h"

#define POINTS 1000
#define RESOURCES 100

static double secs(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct sink {
    ot_buf z;
    size_t samples, raw, wire, requests;
    ot_buf keep; /* one request kept for the encoder comparison */
} sink;

static int to_sink(void *ctx, const uint8_t *p, size_t n, size_t samples)
{
    sink *s = ctx;
    if (prw_snappy(&s->z, p, n) < 0)
        abort();
    s->samples += samples;
    s->raw += n;
    s->wire += s->z.len;
    s->requests++;
    if (!s->keep.len)
        ot_buf_append(&s->keep, p, n);
    return 0;
}

/* Sets every point's time: each round is newer than the last. */
static void set_time(ot_metrics_req *req, uint64_t t)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        ot_resource_metrics *rm = req->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            ot_scope_metrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                ot_metric *m = sm->metrics[k];
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    for (size_t p = 0; p < m->gauge->n_data_points; p++)
                        m->gauge->data_points[p]->time_unix_nano = t;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    for (size_t p = 0; p < m->sum->n_data_points; p++)
                        m->sum->data_points[p]->time_unix_nano = t;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    for (size_t p = 0; p < m->histogram->n_data_points; p++)
                        m->histogram->data_points[p]->time_unix_nano = t;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    for (size_t p = 0; p < m->exponential_histogram->n_data_points; p++)
                        m->exponential_histogram->data_points[p]->time_unix_nano = t;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    for (size_t p = 0; p < m->summary->n_data_points; p++)
                        m->summary->data_points[p]->time_unix_nano = t;
                    break;
                default:
                    break;
                }
            }
        }
    }
}

/* A resource attribute made different per resource, so each of the
 * RESOURCES requests is its own set of series. */
static void set_instance(ot_metrics_req *req, char *buf)
{
    ot_resource *r = req->resource_metrics[0]->resource;
    for (size_t i = 0; i < r->n_attributes; i++)
        if (!strcmp(r->attributes[i]->key, "k8s.pod.name"))
            r->attributes[i]->value->string_value = buf;
}

static int null_flush(void *ctx, const uint8_t *p, size_t n, size_t samples)
{
    (void)p, (void)samples;
    *(size_t *)ctx += n;
    return 0;
}

/* The same series through prw_sample and through protobuf-c structs. */
static void compare_encoders(const ot_buf *req)
{
    Otelite__Prw__WriteRequest *w =
        otelite__prw__write_request__unpack(NULL, req->len, (const uint8_t *)req->data);
    if (!w)
        abort();
    size_t n_samples = 0;
    for (size_t i = 0; i < w->n_timeseries; i++)
        n_samples += w->timeseries[i]->n_samples;
    const int reps = 50;
    size_t out = 0;
    prw_writer wr;
    prw_writer_init(&wr, SIZE_MAX, null_flush, &out);
    prw_label l[64];
    double t0 = secs(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < w->n_timeseries; i++) {
            Otelite__Prw__TimeSeries *ts = w->timeseries[i];
            if (!ts->n_samples)
                continue;
            size_t n = ts->n_labels < 64 ? ts->n_labels : 64;
            for (size_t j = 0; j < n; j++)
                l[j] = (prw_label){ts->labels[j]->name, ts->labels[j]->value,
                                   (uint32_t)strlen(ts->labels[j]->name),
                                   (uint32_t)strlen(ts->labels[j]->value)};
            prw_sample(&wr, l, n, ts->samples[0]->value, ts->samples[0]->timestamp);
        }
        prw_flush(&wr);
    }
    double hand = secs(CLOCK_PROCESS_CPUTIME_ID) - t0;
    prw_writer_free(&wr);
    /* protobuf-c: the structs a sender would build per sample (series,
     * label and sample messages pointing at the same strings), then
     * get_packed_size and pack. */
    uint8_t *buf = malloc(req->len * 2);
    t0 = secs(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 0; r < reps; r++) {
        Otelite__Prw__WriteRequest o = OTELITE__PRW__WRITE_REQUEST__INIT;
        Otelite__Prw__TimeSeries **tsv = malloc(w->n_timeseries * sizeof *tsv);
        size_t k = 0;
        for (size_t i = 0; i < w->n_timeseries; i++) {
            Otelite__Prw__TimeSeries *src = w->timeseries[i];
            if (!src->n_samples)
                continue;
            Otelite__Prw__TimeSeries *ts = malloc(sizeof *ts);
            otelite__prw__time_series__init(ts);
            ts->labels = malloc(src->n_labels * sizeof *ts->labels);
            for (size_t j = 0; j < src->n_labels; j++) {
                Otelite__Prw__Label *lb = malloc(sizeof *lb);
                otelite__prw__label__init(lb);
                lb->name = src->labels[j]->name;
                lb->value = src->labels[j]->value;
                ts->labels[j] = lb;
            }
            ts->n_labels = src->n_labels;
            Otelite__Prw__Sample *sm = malloc(sizeof *sm);
            otelite__prw__sample__init(sm);
            sm->value = src->samples[0]->value;
            sm->timestamp = src->samples[0]->timestamp;
            ts->samples = malloc(sizeof *ts->samples);
            ts->samples[0] = sm;
            ts->n_samples = 1;
            tsv[k++] = ts;
        }
        o.timeseries = tsv;
        o.n_timeseries = k;
        size_t len = otelite__prw__write_request__get_packed_size(&o);
        if (len > req->len * 2)
            abort();
        out += otelite__prw__write_request__pack(&o, buf);
        for (size_t i = 0; i < k; i++) {
            for (size_t j = 0; j < tsv[i]->n_labels; j++)
                free(tsv[i]->labels[j]);
            free(tsv[i]->labels);
            free(tsv[i]->samples[0]);
            free(tsv[i]->samples);
            free(tsv[i]);
        }
        free(tsv);
    }
    double pbc = secs(CLOCK_PROCESS_CPUTIME_ID) - t0;
    free(buf);
    double per = (double)n_samples * reps;
    printf("  encoder, per sample       hand-written %.0f ns, protobuf-c structs + pack %.0f ns "
           "(%.1fx)\n",
           hand / per * 1e9, pbc / per * 1e9, pbc / hand);
    otelite__prw__write_request__free_unpacked(w, NULL);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    ot_arena *a = ot_arena_new(0);
    ot_metrics_req *req = ot_sample_metrics(a, POINTS, 3);
    static char inst[RESOURCES][32];
    for (int i = 0; i < RESOURCES; i++)
        snprintf(inst[i], sizeof inst[i], "payments-6b8d9f-%04d", i);
    ot_err err = {0};
    prw_opts o = {.suffixes = true, .target_info = true, .max_bytes = 3000000,
                  .expiration_ns = 0, .max_store_bytes = 0};
    prw_core *c = prw_core_new(&o, &err);
    if (!c) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sink s = {0};
    uint64_t t = 1700000000000000000ULL;
    /* The first round makes every series; not measured. */
    set_time(req, t);
    for (int i = 0; i < RESOURCES; i++) {
        set_instance(req, inst[i]);
        prw_core_translate(c, req, 1, to_sink, &s, NULL);
    }
    size_t series = prw_core_series(c);
    s.samples = s.raw = s.wire = s.requests = 0;
    double w0 = secs(CLOCK_MONOTONIC), c0 = secs(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 1; r <= rounds; r++) {
        set_time(req, t + (uint64_t)r * 10000000000ULL);
        for (int i = 0; i < RESOURCES; i++) {
            set_instance(req, inst[i]);
            prw_core_translate(c, req, 1, to_sink, &s, NULL);
        }
    }
    double wall = secs(CLOCK_MONOTONIC) - w0, cpu = secs(CLOCK_PROCESS_CPUTIME_ID) - c0;
    double pts = (double)rounds * RESOURCES * POINTS;
    printf("prometheusremotewrite, %zu streams, every OTLP type, %d rounds "
           "(tests/bench/bench_prw.c):\n", series, rounds);
    printf("  OTLP points in             %.0f points/s\n", pts / wall);
    printf("  samples out                %.0f samples/s wall, %.0f per CPU-second "
           "(%.2f samples a point: histograms and summaries are several series)\n",
           (double)s.samples / wall, (double)s.samples / cpu, (double)s.samples / pts);
    printf("  CPU per million samples    %.3f s (translate, encode, snappy)\n",
           cpu / ((double)s.samples / 1e6));
    printf("  bytes per sample           %.1f in the request, %.1f on the wire (snappy), "
           "%zu requests\n",
           (double)s.raw / (double)s.samples, (double)s.wire / (double)s.samples, s.requests);
    compare_encoders(&s.keep);
    prw_core_free(c);
    ot_buf_free(&s.z);
    ot_buf_free(&s.keep);
    ot_arena_free(a);
    return 0;
}
