/* main.c: the otelite-loadgen command line. Parses the options, checks the
 * target is reachable, runs the workers (one thread each) for the duration
 * or count asked, then merges their results into one report on stdout and,
 * with --json-out, a JSON file that the bench scripts read. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "loadgen.h"

#define EXIT_UNREACHABLE 1
#define EXIT_USAGE 2

static lg_run g_run;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: otelite-loadgen traces|metrics|logs TARGET [OPTIONS]\n"
            "       otelite-loadgen count FILE [--run ID] [--json]\n"
            "       otelite-loadgen sink --http PORT | --grpc PORT [--duration 10s] [--walk traces|metrics|logs]\n"
            "\n"
            "targets (one):\n"
            "  --otlp-grpc HOST:PORT   OTLP/gRPC (h2c, several streams per connection)\n"
            "  --otlp-http URL         OTLP/HTTP protobuf (http://HOST:PORT[/v1/SIGNAL]); --json for JSON\n"
            "  --dogstatsd HOST:PORT   DogStatsD lines over UDP (metrics)\n"
            "  --file PATH             logs: an application's JSON log lines; traces, metrics: OTLP JSON lines\n"
            "\n"
            "options:\n"
            "  --rate N[/s]        items per second over all workers; 0 = as fast as possible (default 0)\n"
            "  --duration D        how long to send: 10s, 500ms, 1m (default 10s)\n"
            "  --count N           stop after N items (whichever of duration and count comes first)\n"
            "  --workers N         sender threads (default 1)\n"
            "  --connections N     connections per worker (default 4 for HTTP, 1 for gRPC)\n"
            "  --streams N         gRPC: concurrent streams per connection (default 8)\n"
            "  --batch N           items per request (default 100)\n"
            "  --lines-per-datagram N  dogstatsd: at most N lines a datagram (default: as many as\n"
            "                      fit in 8 KiB); a request's datagrams still go in one sendmmsg\n"
            "  --attributes N      attributes per item, loadgen.seq and loadgen.run included (default 10)\n"
            "  --series N          dogstatsd: N distinct series, a `series` tag instead of loadgen.seq;\n"
            "                      metrics: loadgen.seq cycles through 0..N-1 (a multiple of --batch\n"
            "                      gives exactly N streams: each value keeps its metric and resource)\n"
            "  --point-type T      metrics: every point a gauge, sum, histogram, exponential_histogram\n"
            "                      or summary (default: the five in turn)\n"
            "  --payload-bytes N   add a string attribute of N bytes to every item\n"
            "  --seed N            content seed (default 1); the same seed gives the same bodies\n"
            "  --run-id ID         the loadgen.run value (default: random)\n"
            "  --json-out FILE     also write the report as JSON\n"
            "  --quiet             no report on stdout\n"
            "\n"
            "Every item carries loadgen.seq (unique, from 0) and loadgen.run, which `count` tallies.\n"
            "Exit status: 0 done, 1 the target was unreachable, 2 bad usage.\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    if (!strcmp(end, "ms"))
        v /= 1000.0;
    else if (!strcmp(end, "s") || !*end)
        ;
    else if (!strcmp(end, "m"))
        v *= 60;
    else if (!strcmp(end, "h"))
        v *= 3600;
    else
        return -1;
    *out = v;
    return 0;
}

/* host:port or [v6]:port */
static int parse_hostport(const char *s, char *host, size_t cap, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        snprintf(host, cap, "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        snprintf(host, cap, "%.*s", (int)(colon - s), s);
    }
    uint64_t p;
    if (parse_u64(colon + 1, &p) < 0 || p == 0 || p > 65535 || !*host)
        return -1;
    *port = (int)p;
    return 0;
}

static int parse_url(lg_opts *o, const char *url)
{
    const char *p = url;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://"))
        return -1; /* https is not what a loopback benchmark needs */
    const char *slash = strchr(p, '/');
    char hp[300];
    snprintf(hp, sizeof hp, "%.*s", (int)(slash ? slash - p : (long)strlen(p)), p);
    if (parse_hostport(hp, o->host, sizeof o->host, &o->port) < 0)
        return -1;
    snprintf(o->path, sizeof o->path, "%s", slash && strcmp(slash, "/") ? slash : "");
    return 0;
}

static int parse_args(int argc, char **argv, lg_opts *o)
{
    memset(o, 0, sizeof *o);
    o->duration_s = 10;
    o->workers = 1;
    o->conns = 0;
    o->streams = 8;
    o->batch = 100;
    o->attributes = 10;
    o->seed = 1;
    int s = ot_signal_parse(argv[1], strlen(argv[1]));
    if (s < 0)
        return fprintf(stderr, "otelite-loadgen: unknown command \"%s\" (see --help)\n", argv[1]), -1;
    o->sig = (ot_signal)s;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
#define NEED()                                                                            \
    do {                                                                                  \
        if (!v)                                                                           \
            return fprintf(stderr, "otelite-loadgen: %s needs a value\n", a), -1;         \
        i++;                                                                              \
    } while (0)
#define BAD() return fprintf(stderr, "otelite-loadgen: %s: bad value \"%s\"\n", a, v), -1
        if (!strcmp(a, "--otlp-grpc")) {
            NEED();
            if (parse_hostport(v, o->host, sizeof o->host, &o->port) < 0)
                BAD();
            o->target = LG_T_GRPC;
        } else if (!strcmp(a, "--otlp-http")) {
            NEED();
            if (parse_url(o, v) < 0)
                BAD();
            o->target = LG_T_HTTP;
        } else if (!strcmp(a, "--dogstatsd")) {
            NEED();
            if (parse_hostport(v, o->host, sizeof o->host, &o->port) < 0)
                BAD();
            o->target = LG_T_STATSD;
        } else if (!strcmp(a, "--file")) {
            NEED();
            o->file = v;
            o->target = LG_T_FILE;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--rate")) {
            NEED();
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%s", v);
            char *sl = strstr(tmp, "/s");
            if (sl && !sl[2])
                *sl = '\0';
            char *end;
            o->rate = strtod(tmp, &end);
            if (end == tmp || *end || o->rate < 0)
                BAD();
        } else if (!strcmp(a, "--duration")) {
            NEED();
            if (parse_duration(v, &o->duration_s) < 0)
                BAD();
        } else if (!strcmp(a, "--count")) {
            NEED();
            if (parse_u64(v, &o->count) < 0)
                BAD();
        } else if (!strcmp(a, "--workers")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u < 1 || u > 256)
                BAD();
            o->workers = (int)u;
        } else if (!strcmp(a, "--connections")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u < 1 || u > 1024)
                BAD();
            o->conns = (int)u;
        } else if (!strcmp(a, "--streams")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u < 1 || u > 1024)
                BAD();
            o->streams = (int)u;
        } else if (!strcmp(a, "--batch")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u < 1 || u > 1000000)
                BAD();
            o->batch = (size_t)u;
        } else if (!strcmp(a, "--lines-per-datagram")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u < 1 || u > 100000)
                BAD();
            o->dgram_lines = (size_t)u;
        } else if (!strcmp(a, "--attributes")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u > 1000)
                BAD();
            o->attributes = (int)u;
        } else if (!strcmp(a, "--series")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u > 100000000)
                BAD();
            o->series = u;
        } else if (!strcmp(a, "--payload-bytes")) {
            NEED();
            if (parse_u64(v, &u) < 0 || u > (64u << 20))
                BAD();
            o->payload_bytes = (size_t)u;
        } else if (!strcmp(a, "--point-type")) {
            NEED();
            static const char *const types[] = {"gauge", "sum", "histogram",
                                                "exponential_histogram", "summary"};
            o->point_type = 0;
            for (int t = 0; t < 5; t++)
                if (!strcmp(v, types[t]))
                    o->point_type = t + 1;
            if (!o->point_type)
                BAD();
        } else if (!strcmp(a, "--seed")) {
            NEED();
            if (parse_u64(v, &o->seed) < 0)
                BAD();
        } else if (!strcmp(a, "--run-id")) {
            NEED();
            if (!*v || strlen(v) >= sizeof o->run_id || strpbrk(v, "\"\\,|#: \n"))
                BAD();
            snprintf(o->run_id, sizeof o->run_id, "%s", v);
        } else if (!strcmp(a, "--json-out")) {
            NEED();
            o->json_out = v;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else {
            return fprintf(stderr, "otelite-loadgen: unknown option \"%s\" (see --help)\n", a), -1;
        }
#undef NEED
#undef BAD
    }
    if (o->target == LG_T_NONE)
        return fprintf(stderr, "otelite-loadgen: give a target: --otlp-grpc, --otlp-http, --dogstatsd or --file\n"), -1;
    if (o->target == LG_T_STATSD && o->sig != OT_METRICS)
        return fprintf(stderr, "otelite-loadgen: --dogstatsd sends metrics only\n"), -1;
    if (o->dgram_lines && o->batch > o->dgram_lines * 255)
        /* a request's datagrams go in one sendmmsg of at most 256 */
        return fprintf(stderr, "otelite-loadgen: --batch over 255 datagrams of "
                               "--lines-per-datagram lines\n"), -1;
    if (o->json && o->target != LG_T_HTTP)
        return fprintf(stderr, "otelite-loadgen: --json goes with --otlp-http\n"), -1;
    if (!o->conns)
        o->conns = o->target == LG_T_GRPC ? 1 : 4;
    if (o->target == LG_T_HTTP && !o->path[0])
        snprintf(o->path, sizeof o->path, "/v1/%s", ot_signal_name(o->sig));
    if (!o->run_id[0]) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = (uint64_t)lg_wall_ns() ^ (uint64_t)getpid();
        snprintf(o->run_id, sizeof o->run_id, "%016llx", (unsigned long long)r);
    }
    return 0;
}

static void *worker_main(void *arg)
{
    lg_worker *w = arg;
    int rc;
    switch (w->o->target) {
    case LG_T_GRPC: rc = lg_grpc_worker(w); break;
    case LG_T_HTTP: rc = lg_http_worker(w); break;
    case LG_T_STATSD: rc = lg_statsd_worker(w); break;
    default: rc = lg_file_worker(w); break;
    }
    if (rc < 0)
        w->fatal = true;
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_run.stop, true);
}

static const char *target_name(const lg_opts *o)
{
    switch (o->target) {
    case LG_T_GRPC: return "otlp-grpc";
    case LG_T_HTTP: return o->json ? "otlp-http-json" : "otlp-http-protobuf";
    case LG_T_STATSD: return "dogstatsd";
    default: return "file";
    }
}

static void code_name(int code, char *out, size_t cap)
{
    if (code == 0)
        snprintf(out, cap, "transport");
    else if (code >= LG_CODE_GRPC)
        snprintf(out, cap, "grpc_%d", code - LG_CODE_GRPC);
    else
        snprintf(out, cap, "http_%d", code);
}

static void report(const lg_opts *o, lg_stats *t, double secs, int fatal, const char *fatal_msg)
{
    double ms = 1e6;
    double p50 = (double)lg_hist_quantile(&t->lat, 0.50) / ms;
    double p99 = (double)lg_hist_quantile(&t->lat, 0.99) / ms;
    double mx = (double)lg_hist_quantile(&t->lat, 1.0) / ms;
    double rate = secs > 0 ? (double)t->items_ok / secs : 0;
    char where[600];
    if (o->target == LG_T_FILE)
        snprintf(where, sizeof where, "%s", o->file);
    else if (o->target == LG_T_HTTP)
        snprintf(where, sizeof where, "http://%s:%d%s", o->host, o->port, o->path);
    else
        snprintf(where, sizeof where, "%s:%d", o->host, o->port);
    if (!o->quiet) {
        printf("otelite-loadgen: %s -> %s %s, run %s\n", ot_signal_name(o->sig), target_name(o), where,
               o->run_id);
        if (o->target == LG_T_GRPC)
            printf("  workers %d x %d connections x %d streams", o->workers, o->conns, o->streams);
        else if (o->target == LG_T_HTTP)
            printf("  workers %d x %d connections", o->workers, o->conns);
        else
            printf("  workers %d", o->workers);
        printf(", batch %zu, offered %s\n", o->batch, o->rate > 0 ? "rate-limited" : "as fast as possible");
        if (o->rate > 0)
            printf("  offered rate   %.0f items/s\n", o->rate);
        printf("  elapsed        %.3f s\n", secs);
        printf("  items sent     %llu accepted in %llu requests (%.1f MB)\n",
               (unsigned long long)t->items_ok, (unsigned long long)t->req_ok, (double)t->bytes / 1e6);
        printf("  items refused  %llu in %llu requests\n", (unsigned long long)t->items_failed,
               (unsigned long long)t->req_failed);
        for (int c = 0; c < LG_NCODES; c++) {
            if (!t->req_by_code[c] || (c >= 200 && c < 300) || c == LG_CODE_GRPC)
                continue;
            char n[32];
            code_name(c, n, sizeof n);
            printf("    %-12s %llu items, %llu requests\n", n, (unsigned long long)t->items_by_code[c],
                   (unsigned long long)t->req_by_code[c]);
        }
        if (t->connect_failures)
            printf("  connect errors %llu (of %llu connections made)\n",
                   (unsigned long long)t->connect_failures, (unsigned long long)t->connects);
        if (t->connect_failures)
            printf("  connect errors %llu (%llu connections made)\n",
                   (unsigned long long)t->connect_failures, (unsigned long long)t->connects);
        printf("  achieved rate  %.0f items/s, %.1f MB/s\n", rate,
               secs > 0 ? (double)t->bytes / 1e6 / secs : 0);
        printf("  latency        p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", p50, p99, mx);
        if (fatal)
            printf("  error          %s\n", fatal_msg);
        fflush(stdout);
    }
    if (o->json_out) {
        FILE *f = fopen(o->json_out, "w");
        if (!f) {
            fprintf(stderr, "otelite-loadgen: %s: %s\n", o->json_out, strerror(errno));
            return;
        }
        fprintf(f, "{\"signal\":\"%s\",\"target\":\"%s\",\"endpoint\":\"%s\",\"run_id\":\"%s\",",
                ot_signal_name(o->sig), target_name(o), where, o->run_id);
        fprintf(f, "\"workers\":%d,\"connections\":%d,\"batch\":%zu,\"offered_rate\":%.1f,", o->workers,
                o->conns, o->batch, o->rate);
        fprintf(f, "\"elapsed_s\":%.6f,\"requests_ok\":%llu,\"items_sent\":%llu,", secs,
                (unsigned long long)t->req_ok, (unsigned long long)t->items_ok);
        fprintf(f, "\"requests_refused\":%llu,\"items_refused\":%llu,\"refused_by_code\":{",
                (unsigned long long)t->req_failed, (unsigned long long)t->items_failed);
        int first = 1;
        for (int c = 0; c < LG_NCODES; c++) {
            if (!t->req_by_code[c] || (c >= 200 && c < 300) || c == LG_CODE_GRPC)
                continue;
            char n[32];
            code_name(c, n, sizeof n);
            fprintf(f, "%s\"%s\":%llu", first ? "" : ",", n, (unsigned long long)t->items_by_code[c]);
            first = 0;
        }
        fprintf(f, "},\"bytes\":%llu,\"achieved_rate\":%.1f,", (unsigned long long)t->bytes, rate);
        fprintf(f, "\"connects\":%llu,\"connect_failures\":%llu,", (unsigned long long)t->connects,
                (unsigned long long)t->connect_failures);
        fprintf(f, "\"latency_ms\":{\"p50\":%.4f,\"p99\":%.4f,\"max\":%.4f},", p50, p99, mx);
        fprintf(f, "\"reachable\":%s}\n", fatal ? "false" : "true");
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "count"))
        return lg_count_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "selftest"))
        return lg_selftest_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sink"))
        return lg_sink_main(argc - 1, argv + 1);
    lg_opts o;
    if (parse_args(argc, argv, &o) < 0)
        return EXIT_USAGE;
    signal(SIGPIPE, SIG_IGN);
    /* Pacing sleeps are often < 1 ms; the default 50 us slack would blur them. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    char msg[256] = "";
    if (o.target == LG_T_GRPC || o.target == LG_T_HTTP) {
        if (lg_tcp_probe(o.host, o.port, 2000, msg, sizeof msg) < 0) {
            fprintf(stderr, "otelite-loadgen: cannot reach %s:%d: %s\n", o.host, o.port, msg);
            lg_stats none;
            memset(&none, 0, sizeof none);
            snprintf(msg, sizeof msg, "cannot reach %s:%d", o.host, o.port);
            report(&o, &none, 0, 1, msg);
            return EXIT_UNREACHABLE;
        }
    }

    lg_run *r = &g_run;
    r->o = &o;
    r->total_reqs = o.count ? (o.count + o.batch - 1) / o.batch : UINT64_MAX;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    lg_worker *ws = calloc((size_t)o.workers, sizeof *ws);
    pthread_t *th = calloc((size_t)o.workers, sizeof *th);
    if (!ws || !th)
        return fprintf(stderr, "otelite-loadgen: out of memory\n"), 1;
    int64_t t0 = lg_now();
    r->t_start = t0;
    r->t_end = o.duration_s > 0 ? t0 + (int64_t)(o.duration_s * 1e9) : 0;
    for (int i = 0; i < o.workers; i++) {
        lg_worker *w = &ws[i];
        w->id = i;
        w->run = r;
        w->o = &o;
        ot_err err = {{0}};
        w->content = lg_content_new(&o, i, &err);
        if (!w->content)
            return fprintf(stderr, "otelite-loadgen: %s\n", err.msg), 1;
        if (o.rate > 0) {
            double per_worker = o.rate / o.workers;
            w->interval_ns = (int64_t)(1e9 * (double)o.batch / per_worker);
            if (w->interval_ns < 1)
                w->interval_ns = 1;
            /* stagger workers so their requests interleave */
            w->next_due = t0 + w->interval_ns * i / o.workers;
        }
    }
    for (int i = 0; i < o.workers; i++)
        if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0)
            return fprintf(stderr, "otelite-loadgen: cannot start a thread\n"), 1;
    for (int i = 0; i < o.workers; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(lg_now() - t0) / 1e9;

    lg_stats *tot = calloc(1, sizeof *tot);
    int fatal = 0;
    for (int i = 0; i < o.workers; i++) {
        lg_stats *s = &ws[i].st;
        tot->req_ok += s->req_ok;
        tot->items_ok += s->items_ok;
        tot->req_failed += s->req_failed;
        tot->items_failed += s->items_failed;
        tot->bytes += s->bytes;
        tot->connects += s->connects;
        tot->connect_failures += s->connect_failures;
        for (int c = 0; c < LG_NCODES; c++) {
            tot->items_by_code[c] += s->items_by_code[c];
            tot->req_by_code[c] += s->req_by_code[c];
        }
        lg_hist_merge(&tot->lat, &s->lat);
        if (ws[i].fatal) {
            fatal = 1;
            snprintf(msg, sizeof msg, "%s", ws[i].fatal_msg);
        }
        lg_content_free(ws[i].content);
    }
    if (!fatal && (o.target == LG_T_GRPC || o.target == LG_T_HTTP) && tot->connects == 0) {
        fatal = 1;
        snprintf(msg, sizeof msg, "no connection to %s:%d succeeded", o.host, o.port);
    }
    if (fatal)
        fprintf(stderr, "otelite-loadgen: %s\n", msg);
    report(&o, tot, secs, fatal, msg);
    free(tot);
    free(ws);
    free(th);
    return fatal ? EXIT_UNREACHABLE : 0;
}
