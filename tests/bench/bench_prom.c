/* bench_prom.c: what the prometheus exporter costs at many series, the
 * numbers the issue sets targets for:
 *
 *   1. ingestion of N series (a cumulative counter, 3 point attributes, one
 *      resource of 4 attributes) in requests of 1000 points: points/s;
 *   2. memory per series: the store's bytes and the process RSS growth;
 *   3. one text scrape of all N: render time and bytes (the time to walk
 *      the store and write every part of the streamed response; sending
 *      is the server's), and how much the process grows meanwhile (peak
 *      RSS over the RSS before it);
 *   4. ingestion again while another thread scrapes once a second: how much
 *      slower it is, and each request's time in the exporter (p99 and the
 *      slowest, idle and scraped: a scrape holding a lock the writer needs
 *      would show as a slow request).
 *
 * Built and run by `make bench` ($(BUILD)/bench-prom).
 * Run: bench-prom [series (100000)] [ingest|scrape]
 * "ingest" stops after the first two ingestion passes (new series, then
 * updates of each), "scrape" after one text scrape more: the parts to
 * count instructions of on a busy machine:
 *   valgrind --tool=callgrind --toggle-collect=ingest_all bench-prom 20000 ingest
 *   valgrind --tool=callgrind --toggle-collect=scrape_once bench-prom 20000 scrape */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../exporters/prometheus/prom.h"
#include "base/clock.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256], fmt[32];
    long v = -1;
    snprintf(fmt, sizeof fmt, "%s: %%ld", key);
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static long rss_kib(void) { return status_kib("VmRSS"); }

/* Starts a new peak-RSS window (VmHWM); false where Linux cannot. */
static bool hwm_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* A streamed text scrape, each part dropped as a socket would take it.
 * Returns the bytes. */
static size_t scrape_once(pm_core *c)
{
    pm_stream *st = pm_stream_new(c, PM_FMT_TEXT);
    size_t out = 0, n;
    const char *p;
    while (st && pm_stream_next(st, &p, &n) > 0)
        out += n;
    pm_stream_free(st);
    return out;
}

#define BATCH 1000

typedef struct req_build {
    ot_metrics_req req;
    ot_resource_metrics rm, *rmp;
    ot_resource res;
    ot_keyvalue rkv[4], *rkvp[4];
    ot_anyvalue rval[4];
    ot_scope_metrics sm, *smp;
    ot_scope scope;
    ot_metric m, *mp;
    Opentelemetry__Proto__Metrics__V1__Sum sum;
    ot_number_point pts[BATCH], *ptp[BATCH];
    ot_keyvalue kv[BATCH][3], *kvp[BATCH][3];
    ot_anyvalue av[BATCH][3];
    char vals[BATCH][3][24];
} req_build;

static void build_init(req_build *b)
{
    static const char *rk[] = {"service.name", "service.instance.id", "host.name", "cloud.region"};
    static const char *rv[] = {"bench", "i-0123456789", "node-17", "eu-west-1"};
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&b->req);
    opentelemetry__proto__metrics__v1__resource_metrics__init(&b->rm);
    opentelemetry__proto__resource__v1__resource__init(&b->res);
    for (int i = 0; i < 4; i++) {
        opentelemetry__proto__common__v1__key_value__init(&b->rkv[i]);
        opentelemetry__proto__common__v1__any_value__init(&b->rval[i]);
        b->rkv[i].key = (char *)rk[i];
        b->rval[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        b->rval[i].string_value = (char *)rv[i];
        b->rkv[i].value = &b->rval[i];
        b->rkvp[i] = &b->rkv[i];
    }
    b->res.attributes = b->rkvp;
    b->res.n_attributes = 4;
    b->rm.resource = &b->res;
    opentelemetry__proto__metrics__v1__scope_metrics__init(&b->sm);
    opentelemetry__proto__common__v1__instrumentation_scope__init(&b->scope);
    b->scope.name = "bench";
    b->sm.scope = &b->scope;
    opentelemetry__proto__metrics__v1__metric__init(&b->m);
    opentelemetry__proto__metrics__v1__sum__init(&b->sum);
    b->m.name = "http.server.requests";
    b->m.description = "Requests served.";
    b->m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    b->m.sum = &b->sum;
    b->sum.aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    b->sum.is_monotonic = 1;
    b->sum.data_points = b->ptp;
    b->mp = &b->m;
    b->sm.metrics = &b->mp;
    b->sm.n_metrics = 1;
    b->smp = &b->sm;
    b->rm.scope_metrics = &b->smp;
    b->rm.n_scope_metrics = 1;
    b->rmp = &b->rm;
    b->req.resource_metrics = &b->rmp;
    b->req.n_resource_metrics = 1;
    static const char *pk[] = {"http.route", "http.status_code", "worker"};
    for (int i = 0; i < BATCH; i++) {
        opentelemetry__proto__metrics__v1__number_data_point__init(&b->pts[i]);
        b->pts[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        b->ptp[i] = &b->pts[i];
        for (int k = 0; k < 3; k++) {
            opentelemetry__proto__common__v1__key_value__init(&b->kv[i][k]);
            opentelemetry__proto__common__v1__any_value__init(&b->av[i][k]);
            b->kv[i][k].key = (char *)pk[k];
            b->av[i][k].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            b->av[i][k].string_value = b->vals[i][k];
            b->kv[i][k].value = &b->av[i][k];
            b->kvp[i][k] = &b->kv[i][k];
        }
        b->pts[i].attributes = b->kvp[i];
        b->pts[i].n_attributes = 3;
    }
}

/* Points for series [first, first+n), value v. */
static void build_fill(req_build *b, size_t first, size_t n, int64_t v)
{
    for (size_t i = 0; i < n; i++) {
        size_t s = first + i;
        snprintf(b->vals[i][0], 24, "/api/v1/items/%zu", s % 1000);
        snprintf(b->vals[i][1], 24, "%zu", 200 + (s / 1000) % 50);
        snprintf(b->vals[i][2], 24, "w%zu", s / 50000);
        b->pts[i].as_int = v;
        b->pts[i].time_unix_nano = (uint64_t)v;
    }
    b->sum.n_data_points = n;
}

/* Each request's time in pm_core_ingest, kept to find the slowest: a
 * scrape that held a lock the writer needs shows there, not in the mean. */
typedef struct lat_log {
    int64_t *v;
    size_t n, cap;
} lat_log;

static void lat_add(lat_log *l, int64_t ns)
{
    if (!l)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        int64_t *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = ns;
}

static int by_ns(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q quantile (0..1) of the logged times, in ms. */
static double lat_q(lat_log *l, double q)
{
    if (!l->n)
        return 0;
    qsort(l->v, l->n, sizeof *l->v, by_ns);
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    return (double)l->v[i] / 1e6;
}

static double ingest_all(pm_core *c, req_build *b, size_t series, int64_t v, lat_log *lat)
{
    int64_t t0 = now_ns();
    for (size_t f = 0; f < series; f += BATCH) {
        size_t n = series - f < BATCH ? series - f : BATCH;
        build_fill(b, f, n, v);
        int64_t t1 = now_ns();
        pm_core_ingest(c, &b->req, ot_now_ns());
        lat_add(lat, now_ns() - t1);
    }
    return (double)(now_ns() - t0) / 1e9;
}

typedef struct scraper {
    pm_core *c;
    atomic_bool stop;
    int scrapes;
    double worst_s;
} scraper;

static void *scrape_loop(void *arg)
{
    scraper *s = arg;
    while (!atomic_load(&s->stop)) {
        int64_t t0 = now_ns();
        scrape_once(s->c);
        double d = (double)(now_ns() - t0) / 1e9;
        if (d > s->worst_s)
            s->worst_s = d;
        s->scrapes++;
        for (int i = 0; i < 100 && !atomic_load(&s->stop); i++) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    size_t series = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    ot_err err = {{0}};
    pm_opts o = {.suffixes = true};
    long rss0 = rss_kib();
    pm_core *c = pm_core_new(&o, &err);
    req_build *b = calloc(1, sizeof *b);
    if (!c || !b)
        return 1;
    build_init(b);
    double t_new = ingest_all(c, b, series, 1, NULL);
    double t_upd = ingest_all(c, b, series, 2, NULL);
    long rss1 = rss_kib();
    size_t bytes = ot_mstore_bytes(c->store);
    printf("prometheus exporter, %zu series (tests/bench/bench_prom.c):\n", series);
    printf("  ingest new series      %10.0f points/s\n", (double)series / t_new);
    printf("  store bytes per series %10.1f (state %zu of it)\n", (double)bytes / (double)series,
           (size_t)OT_PACC_NUMBER_STATE);
    printf("  RSS growth per series  %10.1f bytes\n", (double)(rss1 - rss0) * 1024 / (double)series);
    if (argc > 2 && !strcmp(argv[2], "scrape"))
        printf("  one text scrape          %zu bytes\n", scrape_once(c));
    if (argc > 2 && (!strcmp(argv[2], "ingest") || !strcmp(argv[2], "scrape"))) {
        pm_core_free(c);
        free(b);
        return 0;
    }
    double best = 1e9;
    size_t out = 0;
    long peak = -1;
    for (int i = 0; i < 3; i++) {
        long before = rss_kib();
        bool hwm = hwm_reset();
        int64_t t0 = now_ns();
        out = scrape_once(c);
        double d = (double)(now_ns() - t0) / 1e9;
        if (d < best)
            best = d;
        long grew = hwm ? status_kib("VmHWM") - before : -1;
        if (grew > peak)
            peak = grew;
    }
    printf("  text scrape            %10.3f s, %zu bytes (%.1f per series)\n", best, out,
           (double)out / (double)series);
    printf("  RSS peak during scrape %10.1f MiB over the RSS before it\n", (double)peak / 1024);
    /* Idle and scraped rounds of the same length, after the same warm-up. */
    double t_idle = 0;
    int idle_rounds = 0;
    lat_log li = {0}, lb = {0};
    ot_mstore_waits w0, w1, w2;
    ot_mstore_waits_get(&w0);
    for (; idle_rounds < 3 || t_idle < 2.5; idle_rounds++)
        t_idle += ingest_all(c, b, series, 100 + idle_rounds, &li);
    ot_mstore_waits_get(&w1);
    t_upd = t_idle / idle_rounds;
    printf("  ingest updates, idle   %10.0f points/s\n", (double)series / t_upd);
    scraper s = {.c = c};
    pthread_t th;
    pthread_create(&th, NULL, scrape_loop, &s);
    double t_busy = 0;
    int rounds = 0;
    for (; rounds < 3 || t_busy < 2.5; rounds++)
        t_busy += ingest_all(c, b, series, 1000 + rounds, &lb);
    ot_mstore_waits_get(&w2);
    atomic_store(&s.stop, true);
    pthread_join(th, NULL);
    double slow = (t_busy / rounds) / t_upd;
    printf("  ingest while scraped   %10.0f points/s (%.0f%% of idle; %d scrapes, slowest %.3f s)\n",
           (double)series / (t_busy / rounds), 100.0 / slow, s.scrapes, s.worst_s);
    printf("  a request of %d points   idle p99 %.2f ms, slowest %.2f; scraped p99 %.2f ms, "
           "slowest %.2f\n", BATCH, lat_q(&li, 0.99), lat_q(&li, 1), lat_q(&lb, 0.99),
           lat_q(&lb, 1));
    /* Only the scrape and the writer take this store's locks, so the
     * writer's waits are the scrape's holds (the slowest includes any
     * time the holder was preempted meanwhile). */
    printf("  writer waits on a stripe  idle %llu; scraped %llu, %.3f ms in all, slowest %.3f ms\n",
           (unsigned long long)(w1.n - w0.n), (unsigned long long)(w2.n - w1.n),
           (double)(w2.total_ns - w1.total_ns) / 1e6,
           (double)(w2.max_ns > w1.max_ns ? w2.max_ns : 0) / 1e6);
    free(li.v);
    free(lb.v);
    pm_core_free(c);
    free(b);
    return 0;
}
