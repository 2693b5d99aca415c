/* dogstatsd.c: the `dogstatsd` receiver (also `statsd`): its config, its
 * sockets (UDP, Unix datagram, Unix stream), the reader callback that
 * parses datagrams into the aggregator, events and service checks turned
 * into log records at once, the flush thread that sends one metrics batch
 * per aggregation_interval, and its self-telemetry. Aggregation itself is
 * agg.c and flush.c. */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "dsdr.h"
#include "net/dgram.h"
#include "net/ustream.h"
#include "pipeline/factory.h"
#include "telemetry/telemetry.h"

/* ---- config ------------------------------------------------------------- */

static const char *const transports[] = {"udp", "unixgram", "unix", NULL};
static const char *const temporalities[] = {"delta", "cumulative", NULL};
static const char *const mappings[] = {"summary", "histogram", "exponential_histogram", NULL};

static const ot_key dsdr_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(dsdr_cfg, endpoint),
     .def = "127.0.0.1:8125", .help = "UDP address to listen on (host:port)"},
    {.name = "transport", .type = OT_KT_ENUM, .offset = offsetof(dsdr_cfg, transport),
     .def = "udp", .choices = transports,
     .help = "udp, unixgram (Unix datagram) or unix (Unix stream, 4-byte LE length prefix)"},
    {.name = "socket_path", .type = OT_KT_STRING, .offset = offsetof(dsdr_cfg, socket_path),
     .help = "the socket file for unixgram and unix"},
    {.name = "socket_permissions", .type = OT_KT_STRING,
     .offset = offsetof(dsdr_cfg, socket_permissions_text), .def = "0666",
     .help = "octal mode of the socket file (pods on the node must be able to write)"},
    {.name = "readers", .type = OT_KT_INT, .offset = offsetof(dsdr_cfg, readers), .def = "1",
     .min = 1, .max = 64,
     .help = "reader threads (UDP: each on its own SO_REUSEPORT socket)"},
    {.name = "receive_buffer_bytes", .type = OT_KT_SIZE,
     .offset = offsetof(dsdr_cfg, receive_buffer_bytes), .def = "0", .min = 0,
     .max = 2147483647.0, .help = "SO_RCVBUF per socket (0: the kernel default)"},
    {.name = "max_packet_size", .type = OT_KT_INT, .offset = offsetof(dsdr_cfg, max_packet_size),
     .def = "8192", .min = 64, .max = 65535,
     .help = "longest datagram; a longer one keeps its whole lines before the cut"},
    {.name = "aggregation_interval", .type = OT_KT_DURATION,
     .offset = offsetof(dsdr_cfg, aggregation_interval), .def = "10s", .min = 1e6, .max = 3.6e12,
     .help = "how often aggregated metrics are sent"},
    {.name = "counter_temporality", .type = OT_KT_ENUM,
     .offset = offsetof(dsdr_cfg, counter_temporality), .def = "delta", .choices = temporalities,
     .help = "counters as delta or cumulative sums"},
    {.name = "timer_histogram_mapping", .type = OT_KT_ENUM,
     .offset = offsetof(dsdr_cfg, timer_histogram_mapping), .def = "summary", .choices = mappings,
     .help = "what ms and h become (d is always an exponential histogram)"},
    {.name = "explicit_bounds", .type = OT_KT_STRLIST,
     .offset = offsetof(dsdr_cfg, explicit_bounds),
     .help = "ascending bucket bounds for timer_histogram_mapping: histogram"},
    {.name = "relative_gauges", .type = OT_KT_BOOL, .offset = offsetof(dsdr_cfg, relative_gauges),
     .def = "false",
     .help = "etsy statsd: a gauge written +3 or -3 adjusts the last value (with readers > 1, the "
             "last value its reader saw)"},
    {.name = "enable_metric_type_attribute", .type = OT_KT_BOOL,
     .offset = offsetof(dsdr_cfg, enable_metric_type_attribute), .def = "false",
     .help = "add a metric_type attribute (counter, gauge, set, timing, histogram, distribution)"},
    {.name = "max_series", .type = OT_KT_INT, .offset = offsetof(dsdr_cfg, max_series),
     .def = "1000000", .min = 0, .max = 1e9,
     .help = "live series held, over all readers (a series several readers see is held by each); "
             "new ones beyond it are refused and counted (0: no cap)"},
    {.name = "max_sample_bytes", .type = OT_KT_SIZE,
     .offset = offsetof(dsdr_cfg, max_sample_bytes), .def = "16MiB", .min = 0,
     .max = 1099511627776.0,
     .help = "bytes of ms/h/d samples kept for quantiles over all series, the flush's merged "
             "copy included; past it a series keeps a uniform sample of its values (count, sum, "
             "min, max stay exact; 0: no bound)"},
    {0},
};

static int parse_bounds(const ot_strlist *l, double *out, char *bad, size_t badn)
{
    for (size_t i = 0; i < l->n; i++) {
        char *end;
        errno = 0;
        double v = strtod(l->v[i], &end);
        if (errno || end == l->v[i] || *end || (i > 0 && v <= out[i - 1])) {
            snprintf(bad, badn, "%s", l->v[i]);
            return -1;
        }
        out[i] = v;
    }
    return 0;
}

static int parse_mode(const char *s, unsigned *mode)
{
    char *end;
    long v = strtol(s ? s : "", &end, 8);
    if (!s || !*s || *end || v < 0 || v > 0777)
        return -1;
    *mode = (unsigned)v;
    return 0;
}

static void dsdr_validate(const void *cfgp, const ot_node *node, const char *path, ot_diags *d)
{
    const dsdr_cfg *c = cfgp;
    if (c->transport != DSDR_UDP && (!c->socket_path || !*c->socket_path))
        ot_diag_add(d, OT_SEV_ERROR, node, path, "transport %s needs socket_path",
                    transports[c->transport]);
    unsigned mode;
    if (parse_mode(c->socket_permissions_text, &mode) < 0) {
        const ot_node *at = ot_node_get(node, "socket_permissions");
        ot_diag_add(d, OT_SEV_ERROR, at ? at : node, path,
                    "socket_permissions must be an octal mode like 0666, found \"%s\"",
                    c->socket_permissions_text ? c->socket_permissions_text : "");
    }
    const ot_node *bn = ot_node_get(node, "explicit_bounds");
    if (c->explicit_bounds.n) {
        double *b = malloc(c->explicit_bounds.n * sizeof *b);
        char bad[64];
        if (b && parse_bounds(&c->explicit_bounds, b, bad, sizeof bad) < 0)
            ot_diag_add(d, OT_SEV_ERROR, bn ? bn : node, path,
                        "explicit_bounds must be ascending numbers, found \"%s\"", bad);
        free(b);
    }
    if (c->timer_histogram_mapping == DSDR_HISTOGRAM && !c->explicit_bounds.n)
        ot_diag_add(d, OT_SEV_ERROR, node, path,
                    "timer_histogram_mapping: histogram needs explicit_bounds");
    else if (c->timer_histogram_mapping != DSDR_HISTOGRAM && c->explicit_bounds.n)
        ot_diag_add(d, OT_SEV_WARNING, bn ? bn : node, path,
                    "explicit_bounds is used only with timer_histogram_mapping: histogram");
}

static size_t dsdr_listens(const void *cfgp, const ot_endpoint **out, size_t max)
{
    const dsdr_cfg *c = cfgp;
    if (c->transport != DSDR_UDP || max == 0)
        return 0;
    out[0] = &c->endpoint;
    return 1;
}

/* ---- the receiver -------------------------------------------------------- */

/* Per reader thread: its parser and the log records of one callback. */
typedef struct dsdr_reader {
    ot_dsd_iter it;
    dsdr_logs logs;
    int64_t unix_ns; /* of the callback */
} dsdr_reader;

typedef struct dsdr {
    char *id;
    const dsdr_cfg *cfg;
    /* a reload that changes the wired signals replaces these (rewire) */
    ot_consumer *_Atomic next_metrics, *_Atomic next_logs;
    double *bounds;
    unsigned readers;
    dsdr_agg *agg;
    dsdr_reader *rd;
    ot_dgram *dgram;
    ot_ustream *ustream;
    pthread_t flusher;
    bool flusher_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    /* set by shutdown before it stops the flusher: a flush waiting out
     * backpressure then gives up at the shutdown's deadline */
    atomic_bool stop_requested;
    _Atomic int64_t stop_deadline;
    uint64_t refused_seen;
    /* self-telemetry */
    ot_counter *packets, *bytes, *truncated, *kernel_drops, *lines, *metrics, *events, *checks;
    ot_counter *errors[OT_DSD_REASON_COUNT], *err_skipped, *err_refused, *err_cut;
    ot_counter *samples_sampled;
    ot_gauge *sample_bytes;
    uint64_t sampled_seen;
    ot_counter *series_refused, *points_sent, *points_dropped, *logs_sent, *logs_dropped;
    ot_gauge *series;
} dsdr;

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Hands a logs batch on, with the caller's reference. */
static ot_status send_batch(dsdr *r, ot_consumer *c, ot_batch *b)
{
    ot_err e = {{0}};
    ot_status st = ot_consume(c, b, &e);
    /* refusals are counted by the callers; a pipeline under pressure
     * would otherwise log once per flush */
    if (st == OT_PERMANENT)
        ot_warn("dogstatsd", "pipeline refused a batch", "receiver=%s error=\"%s\"", r->id, e.msg);
    else if (st != OT_OK)
        ot_debug("dogstatsd", "pipeline refused a batch", "receiver=%s status=%s error=\"%s\"",
                 r->id, ot_status_name(st), e.msg);
    return st;
}

/* The callback's events and service checks, sent at once: they are not
 * aggregated, and a short wait would only delay them. */
static void flush_logs(dsdr *r, dsdr_reader *rd)
{
    size_t n = 0;
    ot_batch *b = ot_dsdr_logs_take(&rd->logs, &n);
    if (!b)
        return;
    ot_consumer *next = atomic_load_explicit(&r->next_logs, memory_order_acquire);
    if (!next) { /* unwired by a reload since the records were read */
        ot_batch_unref(b);
        ot_counter_add(r->logs_dropped, n);
        return;
    }
    ot_counter_add(send_batch(r, next, b) == OT_OK ? r->logs_sent : r->logs_dropped, n);
}

static void handle(dsdr *r, unsigned ri, const uint8_t *data, size_t len, bool truncated,
                   uint64_t *counts)
{
    dsdr_reader *rd = &r->rd[ri];
    if (truncated) {
        /* keep the whole lines before the cut; the cut one is lost */
        while (len && data[len - 1] != '\n')
            len--;
        counts[3]++;
    }
    ot_dsd_iter_init(&rd->it, data, len);
    ot_dsd_item item;
    while (ot_dsd_next(&rd->it, &item)) {
        counts[0]++;
        if (item.skipped_fields)
            counts[5] += item.skipped_fields;
        switch (item.kind) {
        case OT_DSD_METRIC:
            counts[1]++;
            counts[6] += ot_dsdr_agg_push(r->agg, ri, &item);
            break;
        case OT_DSD_EVENT:
        case OT_DSD_SERVICE_CHECK:
            counts[item.kind == OT_DSD_EVENT ? 2 : 4]++;
            if (atomic_load_explicit(&r->next_logs, memory_order_relaxed) &&
                ot_dsdr_logs_add(&rd->logs, &item, rd->unix_ns) < 0)
                counts[7]++;
            break;
        default:
            counts[8 + item.reason]++;
            break;
        }
    }
}

enum { NCOUNTS = 8 + OT_DSD_REASON_COUNT };

static void finish_callback(dsdr *r, unsigned ri, uint64_t *counts)
{
    counts[6] += ot_dsdr_agg_end(r->agg, ri);
    ot_counter_add(r->lines, counts[0]);
    ot_counter_add(r->metrics, counts[1]);
    ot_counter_add(r->events, counts[2]);
    ot_counter_add(r->err_cut, counts[3]);
    ot_counter_add(r->checks, counts[4]);
    ot_counter_add(r->err_skipped, counts[5]);
    ot_counter_add(r->err_refused, counts[6]);
    ot_counter_add(r->logs_dropped, counts[7]);
    for (int i = 1; i < OT_DSD_REASON_COUNT; i++)
        if (counts[8 + i])
            ot_counter_add(r->errors[i], counts[8 + i]);
    flush_logs(r, &r->rd[ri]);
}

static void on_dgrams(void *ud, unsigned reader, const ot_dgram_msg *msgs, size_t n)
{
    dsdr *r = ud;
    uint64_t counts[NCOUNTS] = {0};
    r->rd[reader].unix_ns = wall_ns();
    ot_dsdr_agg_begin(r->agg, reader, r->rd[reader].unix_ns, ot_now_ns());
    for (size_t i = 0; i < n; i++)
        handle(r, reader, msgs[i].data, msgs[i].len, msgs[i].truncated, counts);
    finish_callback(r, reader, counts);
}

static void on_stream(void *ud, const ot_ustream_msg *msgs, size_t n)
{
    dsdr *r = ud;
    uint64_t counts[NCOUNTS] = {0};
    r->rd[0].unix_ns = wall_ns();
    ot_dsdr_agg_begin(r->agg, 0, r->rd[0].unix_ns, ot_now_ns());
    for (size_t i = 0; i < n; i++)
        handle(r, 0, msgs[i].data, msgs[i].len, false, counts);
    finish_callback(r, 0, counts);
}

/* Points per batch a flush hands on: 100k series are not one batch of
 * ~90 MiB in the flush, then again in an exporter's encoding, but chunks
 * of a few MiB, each sent before the next is built. */
#define DSDR_FLUSH_CHUNK 4096

typedef struct flush_send {
    dsdr *r;
    int64_t retry_until; /* CLOCK_MONOTONIC ns: retry refused chunks until then */
} flush_send;

static void nap_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    nanosleep(&ts, NULL);
}

/* One chunk to the pipeline. Backpressure (RETRYABLE: a full queue) is
 * waited out, with a growing pause, until the flush's retry deadline: the
 * readers meanwhile write the next interval's slots, so waiting loses
 * nothing, it only makes that interval longer. Past the deadline (an
 * interval after the flush began, or the shutdown deadline once the
 * receiver stops), a chunk gets one try and is dropped, counted, if
 * refused. */
static void send_chunk(void *ctx, ot_batch *b)
{
    flush_send *fs = ctx;
    dsdr *r = fs->r;
    size_t items = b->items;
    ot_consumer *next = atomic_load_explicit(&r->next_metrics, memory_order_acquire);
    if (!next) {
        ot_batch_unref(b);
        return;
    }
    int64_t pause = 1000000;
    for (;;) {
        ot_err e = {{0}};
        ot_status st = ot_consume(next, ot_batch_ref(b), &e);
        if (st == OT_OK) {
            ot_counter_add(r->points_sent, items);
            break;
        }
        int64_t until = fs->retry_until;
        if (atomic_load(&r->stop_requested)) {
            int64_t d = atomic_load(&r->stop_deadline);
            if (d < until)
                until = d;
        }
        int64_t left = until - ot_now_ns();
        if (st != OT_RETRYABLE || left <= 0) {
            /* refusals are counted; a pipeline under pressure would
             * otherwise log once per chunk */
            if (st == OT_PERMANENT)
                ot_warn("dogstatsd", "pipeline refused a batch", "receiver=%s error=\"%s\"",
                        r->id, e.msg);
            else
                ot_debug("dogstatsd", "pipeline refused a batch",
                         "receiver=%s status=%s error=\"%s\"", r->id, ot_status_name(st), e.msg);
            ot_counter_add(r->points_dropped, items);
            break;
        }
        /* short naps, so a shutdown that comes meanwhile is seen */
        int64_t nap = pause < left ? pause : left;
        nap_ns(nap < 10000000 ? nap : 10000000);
        if (pause < 100000000)
            pause *= 2;
    }
    ot_batch_unref(b);
}

/* One interval's points to the pipeline, in chunks. */
static void flush_once(dsdr *r, int64_t retry_until)
{
    size_t n = 0;
    ot_err err = {{0}};
    flush_send fs = {r, retry_until};
    if (ot_dsdr_agg_flush_chunks(r->agg, wall_ns(), ot_now_ns(), DSDR_FLUSH_CHUNK, send_chunk,
                                 &fs, &n, &err) < 0)
        ot_error("dogstatsd", "flush failed", "receiver=%s error=\"%s\"", r->id, err.msg);
    /* The chunks were built here and freed by the exporters' threads, in
     * this thread's malloc arena: hand the pages back rather than keep the
     * flush's peak as resident memory until the next one. */
    malloc_trim(0);
    dsdr_agg_stats s;
    ot_dsdr_agg_stats(r->agg, &s);
    ot_gauge_set(r->series, (int64_t)s.series);
    ot_counter_add(r->series_refused, s.refused - r->refused_seen);
    r->refused_seen = s.refused;
    ot_counter_add(r->samples_sampled, s.sampled - r->sampled_seen);
    r->sampled_seen = s.sampled;
    ot_gauge_set(r->sample_bytes, s.sample_bytes);
    if (r->dgram) {
        ot_dgram_stats ds;
        ot_dgram_get_stats(r->dgram, &ds); /* brings kernel drops up to date */
    }
}

static void *flush_main(void *arg)
{
    dsdr *r = arg;
    int64_t next = ot_now_ns() + r->cfg->aggregation_interval;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        int64_t now = ot_now_ns();
        if (now < next) {
            struct timespec ts = {next / 1000000000LL, next % 1000000000LL};
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&r->lock);
        flush_once(r, ot_now_ns() + r->cfg->aggregation_interval);
        next += r->cfg->aggregation_interval;
        if (next < ot_now_ns()) /* a slow pipeline: do not flush in a burst */
            next = ot_now_ns() + r->cfg->aggregation_interval;
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static ot_counter *cnt(const char *id, const char *name, const char *help, const char *extra)
{
    char labels[400], full[128];
    snprintf(labels, sizeof labels, "receiver=\"%s\"%s", id, extra ? extra : "");
    snprintf(full, sizeof full, "otelite_dogstatsd_%s_total", name);
    return ot_tel_counter(full, help, labels);
}

/* The sockets stay; what is read from now on goes to the new consumers
 * (NULL: the signal is no longer wired, and its items are dropped). */
static void dsdr_rewire(void *self, ot_consumer *const next[OT_SIGNAL_COUNT])
{
    dsdr *r = self;
    atomic_store_explicit(&r->next_metrics, next[OT_METRICS], memory_order_release);
    atomic_store_explicit(&r->next_logs, next[OT_LOGS], memory_order_release);
}

static void *dsdr_create(const ot_create_params *p, ot_err *err)
{
    dsdr *r = calloc(1, sizeof *r);
    if (!r || !(r->id = strdup(p->id))) {
        free(r);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    r->cfg = p->config;
    atomic_init(&r->next_metrics, p->next[OT_METRICS]);
    atomic_init(&r->next_logs, p->next[OT_LOGS]);
    r->readers = r->cfg->transport == DSDR_UNIX ? 1 : (unsigned)r->cfg->readers;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    const char *id = p->id;
    r->packets = cnt(id, "packets", "Datagrams (or stream messages) a DogStatsD receiver read.", NULL);
    r->bytes = cnt(id, "bytes", "Bytes a DogStatsD receiver read.", NULL);
    r->truncated = cnt(id, "truncated_packets", "Datagrams longer than max_packet_size.", NULL);
    r->kernel_drops = cnt(id, "kernel_drops", "Datagrams the kernel dropped: receive queue full.", NULL);
    r->lines = cnt(id, "lines", "Lines a DogStatsD receiver parsed.", NULL);
    r->metrics = cnt(id, "metrics", "Metric lines a DogStatsD receiver aggregated.", NULL);
    r->events = cnt(id, "events", "Events a DogStatsD receiver read.", NULL);
    r->checks = cnt(id, "service_checks", "Service checks a DogStatsD receiver read.", NULL);
    for (int i = 1; i < OT_DSD_REASON_COUNT; i++) {
        char extra[96];
        snprintf(extra, sizeof extra, ",reason=\"%s\"", ot_dsd_reason_name((ot_dsd_reason)i));
        r->errors[i] = cnt(id, "errors", "Lines or fields a DogStatsD receiver could not take, by reason.", extra);
    }
    r->err_skipped = cnt(id, "errors", "Lines or fields a DogStatsD receiver could not take, by reason.", ",reason=\"unknown_field\"");
    r->err_refused = cnt(id, "errors", "Lines or fields a DogStatsD receiver could not take, by reason.", ",reason=\"series_refused\"");
    r->err_cut = cnt(id, "errors", "Lines or fields a DogStatsD receiver could not take, by reason.", ",reason=\"truncated\"");
    r->series_refused = cnt(id, "series_refused", "New series refused by max_series.", NULL);
    r->points_sent = cnt(id, "points_sent", "Aggregated points handed to the pipeline.", NULL);
    r->points_dropped = cnt(id, "points_dropped", "Aggregated points the pipeline refused, dropped.", NULL);
    r->logs_dropped = cnt(id, "log_records_dropped", "Event and service check records dropped.", NULL);
    r->logs_sent = cnt(id, "log_records_sent", "Event and service check records handed to the pipeline.", NULL);
    char labels[300];
    snprintf(labels, sizeof labels, "receiver=\"%s\"", id);
    r->series = ot_tel_gauge("otelite_dogstatsd_series", "Live series a DogStatsD receiver holds.", labels);
    r->samples_sampled = cnt(id, "samples_sampled",
                             "Timer, histogram and distribution samples past max_sample_bytes or a "
                             "series' sample cap, kept by reservoir sampling in place of another.",
                             NULL);
    r->sample_bytes = ot_tel_gauge("otelite_dogstatsd_sample_bytes",
                                   "Bytes of timer, histogram and distribution samples held.", labels);
    if (r->cfg->explicit_bounds.n) {
        char bad[64];
        r->bounds = malloc(r->cfg->explicit_bounds.n * sizeof *r->bounds);
        if (!r->bounds || parse_bounds(&r->cfg->explicit_bounds, r->bounds, bad, sizeof bad) < 0) {
            ot_err_set(err, "%s: bad explicit_bounds", p->id);
            free(r->bounds);
            free(r->id);
            free(r);
            return NULL;
        }
    }
    return r;
}

static int dsdr_start(void *self, ot_err *err)
{
    dsdr *r = self;
    const dsdr_cfg *c = r->cfg;
    dsdr_agg_opts ao = {
        .readers = r->readers,
        .interval_ns = c->aggregation_interval,
        .temporality = c->counter_temporality,
        .mapping = c->timer_histogram_mapping,
        .bounds = r->bounds,
        .n_bounds = c->explicit_bounds.n,
        .relative_gauges = c->relative_gauges,
        .metric_type_attr = c->enable_metric_type_attribute,
        .max_series = (size_t)c->max_series,
        .max_sample_bytes = c->max_sample_bytes,
        .start_unix_ns = wall_ns(),
    };
    r->agg = ot_dsdr_agg_new(&ao, err);
    r->rd = calloc(r->readers, sizeof *r->rd);
    if (!r->agg || !r->rd)
        return ot_err_prefix(err, "%s", r->id);
    if (pthread_create(&r->flusher, NULL, flush_main, r) != 0)
        return ot_err_set(err, "%s: cannot start the flush thread", r->id);
    r->flusher_started = true;
    unsigned mode = 0666;
    parse_mode(c->socket_permissions_text, &mode);
    if (c->transport == DSDR_UNIX) {
        ot_ustream_opts uo = {.socket_path = c->socket_path, .socket_permissions = mode,
                              .max_packet_size = (size_t)c->max_packet_size, .fn = on_stream,
                              .ud = r, .messages_total = r->packets, .bytes_total = r->bytes};
        if (!(r->ustream = ot_ustream_start(&uo, err)))
            return ot_err_prefix(err, "%s", r->id);
    } else {
        ot_dgram_opts o = {
            .endpoint = c->transport == DSDR_UDP ? &c->endpoint : NULL,
            .socket_path = c->transport == DSDR_UDP ? NULL : c->socket_path,
            .socket_permissions = mode,
            .readers = r->readers,
            .receive_buffer_bytes = (int)c->receive_buffer_bytes,
            .max_packet_size = (size_t)c->max_packet_size,
            .fn = on_dgrams,
            .ud = r,
            .packets_total = r->packets,
            .bytes_total = r->bytes,
            .truncated_total = r->truncated,
            .kernel_drops_total = r->kernel_drops,
            /* a syscall per 64 datagrams cost more than the lines in them at one
             * metric per datagram; 256 is 2 MiB of buffers per reader */
            .batch = 256,
        };
        if (!(r->dgram = ot_dgram_start(&o, err)))
            return ot_err_prefix(err, "%s", r->id);
    }
    ot_info("dogstatsd", "listening", "receiver=%s transport=%s endpoint=%s port=%d", r->id,
            transports[c->transport],
            c->transport == DSDR_UDP ? (c->endpoint.text ? c->endpoint.text : "") : c->socket_path,
            r->dgram ? ot_dgram_port(r->dgram) : 0);
    return 0;
}

static void dsdr_shutdown(void *self, int64_t deadline_ns)
{
    dsdr *r = self;
    atomic_store(&r->stop_deadline, deadline_ns);
    atomic_store(&r->stop_requested, true);
    ot_dgram_stop(r->dgram);
    r->dgram = NULL;
    ot_ustream_stop(r->ustream);
    r->ustream = NULL;
    if (r->flusher_started) {
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->flusher, NULL);
        r->flusher_started = false;
        /* what the readers held when they stopped, retried until the
         * deadline and no longer */
        flush_once(r, deadline_ns);
    }
}

static void dsdr_destroy(void *self)
{
    dsdr *r = self;
    if (!r)
        return;
    dsdr_shutdown(r, 0);
    ot_dsdr_agg_free(r->agg);
    for (unsigned i = 0; r->rd && i < r->readers; i++) {
        ot_dsdr_logs_free(&r->rd[i].logs);
    }
    free(r->rd);
    free(r->bounds);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r->id);
    free(r);
}

#define DSDR_FACTORY(sym, name)                                                                \
    const ot_factory sym = {                                                                   \
        .type = name,                                                                          \
        .kind = OT_RECEIVER,                                                                   \
        .signals = OT_SIGBIT(OT_METRICS) | OT_SIGBIT(OT_LOGS),                                 \
        .help = "receives DogStatsD (and etsy statsd) over UDP or Unix sockets, aggregated "   \
                "into OTLP metrics; events and service checks as logs",                        \
        .keys = dsdr_keys,                                                                     \
        .config_size = sizeof(dsdr_cfg),                                                       \
        .validate = dsdr_validate,                                                             \
        .listens = dsdr_listens,                                                               \
        .create = dsdr_create,                                                                 \
        .start = dsdr_start,                                                                   \
        .shutdown = dsdr_shutdown,                                                             \
        .destroy = dsdr_destroy,                                                               \
        .rewire = dsdr_rewire,                                                                 \
    }

DSDR_FACTORY(ot_dogstatsd_receiver, "dogstatsd");
DSDR_FACTORY(ot_statsd_receiver, "statsd");
