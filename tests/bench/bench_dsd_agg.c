/* bench_dsd_agg.c: the DogStatsD aggregation without sockets, for the two
 * numbers issue 11 holds it to that the socket benchmarks measure only
 * through noise on a shared machine:
 *
 *   mem SERIES [ROUNDS]   memory per live series: SERIES series of the
 *                         loadgen's mix (c g h d ms, 5 tags) fed ROUNDS
 *                         times (3), a chunked flush after each round as an
 *                         interval would; prints the store's own bytes, the
 *                         key cache's, the heap in use and RSS per series.
 *   cpu SERIES LINES PER  instructions per line: LINES lines over SERIES
 *                         series, PER lines a datagram, parsed and added as
 *                         a reader does (begin/end per 256 datagrams). Under
 *                         callgrind the feeding is one dumped phase "feed".
 *
 * Build: make build/bench-dsd-agg. The lines are those of
 * `otelite-loadgen metrics --dogstatsd --series N` with fixed values. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../receivers/dogstatsd/dsdr.h"

#include "callgrind_marks.h"

static const char *const names[] = {"http.server.requests", "http.server.active",
                                    "http.server.duration", "db.query.duration",
                                    "queue.latency"};
static const char *const types[] = {"c", "g", "h", "d", "ms"};
static const char *const services[] = {"checkout", "cart", "payments", "search", "auth",
                                       "frontend"};

static size_t line_for(char *out, size_t cap, uint64_t idx, uint64_t v)
{
    size_t k = idx % 5;
    const char *svc = services[(idx / 5) % 6];
    int n;
    if (k == 0)
        n = snprintf(out, cap, "%s:1|c", names[k]);
    else if (k == 1)
        n = snprintf(out, cap, "%s:%u|g", names[k], (unsigned)(v % 200));
    else
        n = snprintf(out, cap, "%s:%.3f|%s", names[k], (double)(v % 100000) / 1000.0, types[k]);
    n += snprintf(out + n, cap - (size_t)n,
                  "|#service:%s,env:production,route:/api/v1/orders,series:%llu,loadgen.run:bench\n",
                  svc, (unsigned long long)idx);
    return (size_t)n;
}

static ot_dsd_iter iter;

/* Feeds lines [first, first + count) (line i is of series i % series) in
 * datagrams of per lines, a begin/end around every 256 datagrams. */
static uint64_t feed(dsdr_agg *a, uint64_t series, uint64_t first, uint64_t count, size_t per,
                     int64_t now)
{
    static char dg[65536];
    uint64_t added = 0, i = first, end = first + count;
    size_t in_batch = 0;
    ot_dsdr_agg_begin(a, 0, now, now);
    while (i < end) {
        size_t len = 0;
        for (size_t k = 0; k < per && i < end; k++, i++)
            len += line_for(dg + len, sizeof dg - len, i % series, i * 2654435761u);
        ot_dsd_iter_init(&iter, dg, len);
        ot_dsd_item it;
        while (ot_dsd_next(&iter, &it))
            if (it.kind == OT_DSD_METRIC)
                added += 1 - ot_dsdr_agg_push(a, 0, &it);
        if (++in_batch == 256) {
            added -= ot_dsdr_agg_end(a, 0);
            ot_dsdr_agg_begin(a, 0, now, now);
            in_batch = 0;
        }
    }
    added -= ot_dsdr_agg_end(a, 0);
    return added;
}

static void drop_chunk(void *ctx, ot_batch *b)
{
    *(size_t *)ctx += 1;
    ot_batch_unref(b);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

static dsdr_agg *mk(void)
{
    dsdr_agg_opts o = {.readers = 1, .interval_ns = 10000000000LL, .start_unix_ns = 1,
                       .max_series = 0};
    ot_err err = {{0}};
    dsdr_agg *a = ot_dsdr_agg_new(&o, &err);
    if (!a) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    return a;
}

static int mem(uint64_t series, int rounds)
{
    long rss0 = rss_kib();
    size_t heap0 = mallinfo2().uordblks;
    dsdr_agg *a = mk();
    size_t heap_empty = mallinfo2().uordblks;
    size_t chunks = 0, pts = 0;
    int64_t t = 1000000000LL;
    for (int r = 0; r < rounds; r++) {
        feed(a, series, 0, series, 50, t);
        size_t n = 0;
        ot_err err = {{0}};
        if (r + 1 < rounds &&
            ot_dsdr_agg_flush_chunks(a, t, t, 4096, drop_chunk, &chunks, &n, &err) < 0) {
            fprintf(stderr, "bench: flush: %s\n", err.msg);
            return 1;
        }
        pts += n;
        t += 1000000000LL;
    }
    size_t store = 0, kc = 0;
    for (unsigned i = 0; i < a->n; i++) {
        for (int k = 0; k < 2; k++)
            store += ot_mstore_bytes(a->sh[i].st[k]);
        kc += DSDR_KCACHE / DSDR_KCACHE_WAYS * sizeof(dsdr_kset);
        for (size_t k = 0; k < DSDR_KCACHE / DSDR_KCACHE_WAYS; k++)
            for (int w = 0; w < DSDR_KCACHE_WAYS; w++)
                if (a->sh[i].ks[k].e[w])
                    kc += malloc_usable_size(a->sh[i].ks[k].e[w]) + 8;
    }
    dsdr_agg_stats st;
    ot_dsdr_agg_stats(a, &st);
    size_t heap = mallinfo2().uordblks;
    long rss = rss_kib();
    double n = (double)st.series;
    printf("dogstatsd aggregation memory, %llu series (loadgen mix c g h d ms, 5 tags), "
           "%d rounds, %zu points flushed in %zu chunks:\n",
           (unsigned long long)series, rounds, pts, chunks);
    printf("  store (ot_mstore_bytes)   %8.1f MiB  %6.0f B/series\n", store / 1048576.0,
           store / n);
    printf("  key cache                 %8.1f MiB  %6.0f B/series\n", kc / 1048576.0, kc / n);
    printf("  heap in use, all          %8.1f MiB  %6.0f B/series (empty aggregator %.1f MiB)\n",
           (heap - heap0) / 1048576.0, (heap - heap_empty) / n, (heap_empty - heap0) / 1048576.0);
    printf("  RSS growth                %8.1f MiB  %6.0f B/series\n", (rss - rss0) / 1024.0,
           (rss - rss0) * 1024.0 / n);
    ot_dsdr_agg_free(a);
    return 0;
}

/* Datagrams of per lines each, one pass over the series, made before the
 * count starts so that only parsing and adding are counted. */
typedef struct dgrams {
    char *buf;
    size_t *start, n; /* datagram i is buf[start[i], start[i + 1]) */
} dgrams;

static void make_dgrams(dgrams *d, uint64_t series, size_t per)
{
    size_t cap = (size_t)series * 160 + 65536;
    d->buf = malloc(cap);
    d->start = malloc(((size_t)series / per + 2) * sizeof *d->start);
    size_t len = 0;
    d->n = 0;
    for (uint64_t i = 0; i < series; i++) {
        if (i % per == 0)
            d->start[d->n++] = len;
        len += line_for(d->buf + len, cap - len, i, i * 2654435761u);
    }
    d->start[d->n] = len;
}

static uint64_t feed_dgrams(dsdr_agg *a, const dgrams *d, uint64_t lines)
{
    uint64_t added = 0;
    size_t in_batch = 0, i = 0;
    ot_dsdr_agg_begin(a, 0, 1000, 1000);
    while (added < lines) {
        ot_dsd_iter_init(&iter, d->buf + d->start[i], d->start[i + 1] - d->start[i]);
        ot_dsd_item it;
        while (ot_dsd_next(&iter, &it))
            if (it.kind == OT_DSD_METRIC)
                added += 1 - ot_dsdr_agg_push(a, 0, &it);
        if (++i == d->n)
            i = 0;
        if (++in_batch == 256) {
            added -= ot_dsdr_agg_end(a, 0);
            ot_dsdr_agg_begin(a, 0, 1000, 1000);
            in_batch = 0;
        }
    }
    added -= ot_dsdr_agg_end(a, 0);
    return added;
}

static int cpu(uint64_t series, uint64_t lines, size_t per)
{
    dsdr_agg *a = mk();
    dgrams d;
    make_dgrams(&d, series, per);
    /* warm: every series inserted and its key cached, as in steady state */
    feed_dgrams(a, &d, series);
    struct timespec t0, t1;
    CALLGRIND_ZERO_STATS;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    uint64_t added = feed_dgrams(a, &d, lines);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    CALLGRIND_DUMP_STATS_AT("feed");
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("dogstatsd aggregation: %llu lines added over %llu series, %zu a datagram; "
           "%.0f ns of CPU a line\n",
           (unsigned long long)added, (unsigned long long)series, per, ns / (double)lines);
    ot_dsdr_agg_free(a);
    free(d.buf);
    free(d.start);
    return added >= lines ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "mem") == 0)
        return mem(strtoull(argv[2], NULL, 10), argc > 3 ? atoi(argv[3]) : 3);
    if (argc >= 5 && strcmp(argv[1], "cpu") == 0)
        return cpu(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10),
                   (size_t)atoi(argv[4]));
    fprintf(stderr, "usage: bench-dsd-agg mem SERIES [ROUNDS] | cpu SERIES LINES PER_DGRAM\n");
    return 2;
}
