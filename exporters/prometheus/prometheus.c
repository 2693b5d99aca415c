/* prometheus.c: the `prometheus` exporter as a component: its keys (the
 * collector's, plus max_series and basic_auth), the scrape endpoint (text
 * format 0.0.4, OpenMetrics 1.0 when asked and enabled, the protobuf
 * exposition when asked; gzip when the scraper takes it, compressed as the
 * response streams out) and the timer
 * that expires idle series whether or not anyone scrapes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/auth.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "pipeline/factory.h"
#include "prom.h"
#include "telemetry/telemetry.h"

typedef struct pm_basic {
    const char *username, *password;
} pm_basic;

typedef struct pm_rtc {
    bool enabled;
} pm_rtc;

typedef struct pm_cfg {
    ot_endpoint endpoint;
    const char *ns;
    ot_strmap const_labels;
    bool send_timestamps;
    int64_t metric_expiration;
    pm_rtc rtc;
    bool enable_open_metrics;
    bool add_metric_suffixes;
    ot_tls_server tls;
    int64_t max_series;
    pm_basic basic_auth;
    ot_auth_cfg auth;
} pm_cfg;

static const ot_key rtc_keys[] = {
    {.name = "enabled", .type = OT_KT_BOOL, .offset = offsetof(pm_rtc, enabled), .def = "false",
     .help = "every resource attribute as a label on every series"},
    {0},
};

static const ot_key basic_keys[] = {
    {.name = "username", .type = OT_KT_STRING, .offset = offsetof(pm_basic, username),
     .help = "scrapers must send this user"},
    {.name = "password", .type = OT_KT_STRING, .offset = offsetof(pm_basic, password),
     .flags = OT_KF_SECRET, .help = "and this password (use ${env:...})"},
    {0},
};

static const ot_key pm_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(pm_cfg, endpoint),
     .def = "127.0.0.1:9464", .help = "where scrapers connect; the path is /metrics"},
    {.name = "namespace", .type = OT_KT_STRING, .offset = offsetof(pm_cfg, ns),
     .help = "prefix of every metric name"},
    {.name = "const_labels", .type = OT_KT_STRMAP, .offset = offsetof(pm_cfg, const_labels),
     .help = "labels added to every series"},
    {.name = "send_timestamps", .type = OT_KT_BOOL, .offset = offsetof(pm_cfg, send_timestamps),
     .def = "false", .help = "write each point's time on its samples"},
    {.name = "metric_expiration", .type = OT_KT_DURATION,
     .offset = offsetof(pm_cfg, metric_expiration), .def = "5m", .min = 1e6, .max = 8.64e15,
     .help = "series not updated for this long are removed (on a timer, scraped or not)"},
    {.name = "resource_to_telemetry_conversion", .type = OT_KT_TABLE,
     .offset = offsetof(pm_cfg, rtc), .sub = rtc_keys, .help = "resource attributes as labels"},
    {.name = "enable_open_metrics", .type = OT_KT_BOOL,
     .offset = offsetof(pm_cfg, enable_open_metrics), .def = "false",
     .help = "answer OpenMetrics 1.0 text to scrapers that ask for it"},
    {.name = "add_metric_suffixes", .type = OT_KT_BOOL,
     .offset = offsetof(pm_cfg, add_metric_suffixes), .def = "true",
     .help = "unit suffixes, _total on counters, _ratio on unit-1 gauges"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(pm_cfg, tls),
     .sub = ot_tls_server_keys, .flags = OT_KF_PRESENCE,
     .help = "serve HTTPS; plain HTTP unless set"},
    {.name = "max_series", .type = OT_KT_INT, .offset = offsetof(pm_cfg, max_series),
     .def = "0", .min = 0, .max = 1e9,
     .help = "new series beyond this are refused and counted; 0: no cap"},
    {.name = "basic_auth", .type = OT_KT_TABLE, .offset = offsetof(pm_cfg, basic_auth),
     .sub = basic_keys, .help = "require HTTP basic auth on scrapes"},
    {.name = "auth", .type = OT_KT_TABLE, .offset = offsetof(pm_cfg, auth), .sub = ot_auth_keys,
     .help = "an authenticator extension every scrape must pass"},
    {0},
};

typedef struct pm_exp pm_exp;

typedef struct pm_consumer {
    ot_consumer base;
    pm_exp *pe;
} pm_consumer;

struct pm_exp {
    const pm_cfg *cfg;
    char *id;
    pm_core *core;
    const char **ckeys, **cvals;
    ot_http_server *http;
    ot_auth *auth;
    pm_consumer cons;
    pthread_t timer;
    bool timer_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    ot_gauge *series, *conflicts;
    ot_counter *refused, *expired, *scrapes, *scrape_us, *sent, *failed;
    uint64_t expired_seen;
};

static void pm_validate(const void *cfgp, const ot_node *node, const char *path, ot_diags *d)
{
    const pm_cfg *c = cfgp;
    if (c->tls.present)
        ot_tls_server_validate(&c->tls, ot_node_get(node, "tls"), path, d);
    bool u = c->basic_auth.username && *c->basic_auth.username;
    bool p = c->basic_auth.password && *c->basic_auth.password;
    if (u != p)
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(node, "basic_auth"), path,
                    "basic_auth needs both username and password");
}

static size_t pm_listens(const void *cfgp, const ot_endpoint **out, size_t max)
{
    const pm_cfg *c = cfgp;
    if (max < 1)
        return 0;
    out[0] = &c->endpoint;
    return 1;
}

/* ---- ingestion ------------------------------------------------------------ */

static void update_gauges(pm_exp *pe)
{
    ot_mstore_stats st;
    ot_mstore_stats_get(pe->core->store, &st);
    ot_gauge_set(pe->series, (int64_t)st.streams);
    ot_gauge_set(pe->conflicts, (int64_t)atomic_load(&pe->core->conflicts));
    uint64_t ex = atomic_load(&pe->core->expired);
    pthread_mutex_lock(&pe->mu);
    if (ex > pe->expired_seen) {
        ot_counter_add(pe->expired, ex - pe->expired_seen);
        pe->expired_seen = ex;
    }
    pthread_mutex_unlock(&pe->mu);
}

static ot_status pm_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    pm_exp *pe = ((pm_consumer *)self)->pe;
    const ot_metrics_req *req = (const ot_metrics_req *)ot_batch_msg(b, err);
    if (!req) {
        ot_counter_add(pe->failed, b->items);
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    size_t refused = pm_core_ingest(pe->core, req, ot_now_ns());
    ot_counter_add(pe->refused, refused);
    ot_counter_add(pe->sent, b->items - (refused < b->items ? refused : b->items));
    ot_counter_add(pe->failed, refused < b->items ? refused : b->items);
    update_gauges(pe);
    ot_batch_unref(b);
    return OT_OK;
}

/* ---- expiry timer ---------------------------------------------------------- */

static void *timer_main(void *arg)
{
    pm_exp *pe = arg;
    int64_t every = pe->cfg->metric_expiration / 10;
    if (every < 100000000)
        every = 100000000;
    if (every > 5000000000LL)
        every = 5000000000LL;
    pthread_mutex_lock(&pe->mu);
    while (!pe->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + every;
        ts.tv_sec = t / 1000000000LL;
        ts.tv_nsec = t % 1000000000LL;
        pthread_cond_timedwait(&pe->cv, &pe->mu, &ts);
        if (pe->stopping)
            break;
        pthread_mutex_unlock(&pe->mu);
        pm_core_expire(pe->core, ot_now_ns());
        update_gauges(pe);
        pthread_mutex_lock(&pe->mu);
    }
    pthread_mutex_unlock(&pe->mu);
    return NULL;
}

/* ---- the scrape ------------------------------------------------------------- */

/* A response up to this size is written whole before it is sent, so it
 * carries a Content-Length (a scraper can tell a cut-off body); a bigger
 * one goes chunked, each part written as the socket takes the last. */
#define WHOLE_MAX (4u << 20)

typedef struct scrape_out {
    ot_counter *scrape_us;
    int64_t t0;
    pm_stream *st;  /* NULL once every part is written */
    pm_scrape held; /* parts written before the response started */
    size_t part;    /* held parts handed out */
    const char *p;  /* the part being sent */
    size_t n, off;
    bool gzip, zin_done, zdone;
    z_stream z;
} scrape_out;

/* The next part to send: 1, 0 at the end, -1 on out-of-memory. A held
 * part is freed once the next is asked for: it has been sent. */
static int next_part(scrape_out *o, const char **p, size_t *n)
{
    if (o->part > 0 && o->part <= o->held.n)
        ot_buf_free(&o->held.parts[o->part - 1]);
    if (o->part < o->held.n) {
        ot_buf *b = &o->held.parts[o->part++];
        *p = b->data;
        *n = b->len;
        return 1;
    }
    o->part = o->held.n + 1;
    return o->st ? pm_stream_next(o->st, p, n) : 0;
}

static ssize_t scrape_read(void *ctx, char *buf, size_t cap)
{
    scrape_out *o = ctx;
    if (!o->gzip) {
        while (o->off == o->n) {
            int rc = next_part(o, &o->p, &o->n);
            if (rc <= 0)
                return rc < 0 ? -1 : 0;
            o->off = 0;
        }
        size_t n = o->n - o->off < cap ? o->n - o->off : cap;
        memcpy(buf, o->p + o->off, n);
        o->off += n;
        return (ssize_t)n;
    }
    if (o->zdone)
        return 0;
    o->z.next_out = (Bytef *)buf;
    o->z.avail_out = (uInt)(cap > (1u << 30) ? 1u << 30 : cap);
    while (o->z.avail_out) {
        if (o->z.avail_in == 0 && !o->zin_done) {
            const char *p;
            size_t n;
            int rc = next_part(o, &p, &n);
            if (rc < 0)
                return -1;
            if (rc == 0) {
                o->zin_done = true;
            } else {
                o->z.next_in = (Bytef *)p; /* parts are at most a few MiB */
                o->z.avail_in = (uInt)n;
            }
        }
        int rc = deflate(&o->z, o->zin_done ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            o->zdone = true;
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return -1;
    }
    return (ssize_t)(cap - o->z.avail_out);
}

static void scrape_release(void *ctx)
{
    scrape_out *o = ctx;
    if (o->scrape_us) /* from the request to the last byte handed to the socket */
        ot_counter_add(o->scrape_us, (uint64_t)((ot_now_ns() - o->t0) / 1000));
    pm_stream_free(o->st);
    pm_scrape_free(&o->held);
    if (o->gzip)
        deflateEnd(&o->z);
    free(o);
}

/* Writes the first parts, up to WHOLE_MAX: 1 when that was all of it,
 * 0 when more follows, -1 on out-of-memory. */
static int hold_first(scrape_out *o, size_t *len)
{
    size_t cap = 0;
    const char *p;
    size_t n;
    int rc;
    *len = 0;
    while (*len < WHOLE_MAX && (rc = pm_stream_next(o->st, &p, &n)) > 0) {
        if (o->held.n == cap) {
            cap = cap ? cap * 2 : 4;
            ot_buf *np = realloc(o->held.parts, cap * sizeof *np);
            if (!np)
                return -1;
            o->held.parts = np;
        }
        ot_buf *b = &o->held.parts[o->held.n++];
        *b = (ot_buf)OT_BUF_INIT;
        if (ot_buf_append(b, p, n) < 0)
            return -1;
        *len += n;
    }
    if (*len < WHOLE_MAX) {
        if (rc < 0)
            return -1;
        pm_stream_free(o->st);
        o->st = NULL;
        return 1;
    }
    return 0;
}

/* Whether an Accept or Accept-Encoding header lists token with a q above 0. */
static bool accepts(const char *h, const char *token)
{
    if (!h)
        return false;
    size_t tl = strlen(token);
    for (const char *p = h; (p = strcasestr(p, token)); p += tl) {
        const char *end = strchr(p, ',');
        const char *q = strstr(p, "q=");
        if (q && (!end || q < end) && strtod(q + 2, NULL) <= 0)
            continue;
        return true;
    }
    return false;
}

static void pm_scrape_fn(ot_http_req *q, void *arg)
{
    pm_exp *pe = arg;
    int64_t t0 = ot_now_ns();
    const char *accept = ot_http_header(q, "Accept");
    int fmt = PM_FMT_TEXT;
    if (accepts(accept, "application/vnd.google.protobuf") &&
        strstr(accept, "io.prometheus.client.MetricFamily") && strstr(accept, "delimited"))
        fmt = PM_FMT_PROTOBUF; /* what a scraper asks for only when it wants it first */
    else if (pe->cfg->enable_open_metrics && accepts(accept, "application/openmetrics-text"))
        fmt = PM_FMT_OPENMETRICS;
    static const char *const ctypes[] = {
        "text/plain; version=0.0.4; charset=utf-8",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited",
    };
    scrape_out *o = calloc(1, sizeof *o);
    if (!o) {
        ot_http_reply(q, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    o->gzip = accepts(ot_http_header(q, "Accept-Encoding"), "gzip");
    if (o->gzip && deflateInit2(&o->z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        o->gzip = false;
    }
    size_t held = 0;
    int whole = (o->st = pm_stream_new(pe->core, fmt)) ? hold_first(o, &held) : -1;
    if (whole < 0) {
        scrape_release(o);
        ot_http_reply(q, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    int64_t len = whole && !o->gzip ? (int64_t)held : -1;
    ot_http_resp *r = ot_http_resp_stream(len, scrape_read, scrape_release, o);
    if (r) {
        ot_http_resp_header(r, "Content-Type", ctypes[fmt]);
        if (o->gzip)
            ot_http_resp_header(r, "Content-Encoding", "gzip");
        ot_http_resp_header(r, "Vary", "Accept-Encoding");
    }
    if (r) {
        o->scrape_us = pe->scrape_us;
        o->t0 = t0;
    }
    ot_http_send(q, 200, r);
    ot_counter_add(pe->scrapes, 1);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void *pm_create(const ot_create_params *p, ot_err *err)
{
    const pm_cfg *cfg = p->config;
    ot_auth *auth = ot_host_authenticator(p->host, cfg->auth.authenticator, err);
    if (!auth && cfg->auth.authenticator && *cfg->auth.authenticator)
        return NULL;
    pm_exp *pe = calloc(1, sizeof *pe);
    size_t nc = cfg->const_labels.n;
    if (!pe || !(pe->id = strdup(p->id)) ||
        !(pe->ckeys = calloc(nc + 1, sizeof *pe->ckeys)) ||
        !(pe->cvals = calloc(nc + 1, sizeof *pe->cvals))) {
        if (pe) {
            free(pe->id);
            free(pe->ckeys);
        }
        free(pe);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nc; i++) {
        pe->ckeys[i] = cfg->const_labels.keys[i];
        pe->cvals[i] = cfg->const_labels.vals[i] ? cfg->const_labels.vals[i] : "";
    }
    pe->cfg = cfg;
    pe->auth = auth;
    pm_opts o = {
        .ns = cfg->ns,
        .const_keys = pe->ckeys,
        .const_vals = pe->cvals,
        .n_const = nc,
        .send_timestamps = cfg->send_timestamps,
        .resource_to_labels = cfg->rtc.enabled,
        .suffixes = cfg->add_metric_suffixes,
        .expiration_ns = cfg->metric_expiration,
        .max_series = (size_t)cfg->max_series,
    };
    if (!(pe->core = pm_core_new(&o, err))) {
        free(pe->ckeys);
        free(pe->cvals);
        free(pe->id);
        free(pe);
        return NULL;
    }
    pthread_mutex_init(&pe->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pe->cv, &ca);
    pthread_condattr_destroy(&ca);
    pe->cons = (pm_consumer){{pm_consume, false}, pe};
    char labels[256];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", p->id);
    pe->series = ot_tel_gauge("otelite_exporter_prometheus_series",
                              "Series the prometheus exporter holds.", labels);
    pe->conflicts = ot_tel_gauge("otelite_exporter_prometheus_series_type_conflicts",
                                 "Series the last scrape left out: their name was a family of "
                                 "another type (the first type met keeps it).", labels);
    pe->refused = ot_tel_counter("otelite_exporter_prometheus_series_refused_total",
                                 "Points of new series refused by max_series.", labels);
    pe->expired = ot_tel_counter("otelite_exporter_prometheus_series_expired_total",
                                 "Series removed after metric_expiration without an update.",
                                 labels);
    pe->scrapes = ot_tel_counter("otelite_exporter_prometheus_scrapes_total",
                                 "Scrapes answered.", labels);
    pe->scrape_us = ot_tel_counter("otelite_exporter_prometheus_scrape_microseconds_total",
                                   "Time from scrape request to the last byte sent.", labels);
    pe->sent = ot_tel_counter("otelite_exporter_sent_metric_points_total",
                              "Items an exporter delivered.", labels);
    pe->failed = ot_tel_counter("otelite_exporter_send_failed_metric_points_total",
                                "Items an exporter failed to deliver.", labels);
    return pe;
}

static const ot_http_route pm_routes_tmpl[] = {{"GET", "/metrics", pm_scrape_fn}};

static int pm_start(void *self, ot_err *err)
{
    pm_exp *pe = self;
    const pm_cfg *c = pe->cfg;
    ot_http_server_opts so = {
        .log_component = "prometheus",
        .threads = 1,
        .tls = &c->tls,
        .basic_auth_user = c->basic_auth.username && *c->basic_auth.username
                               ? c->basic_auth.username
                               : NULL,
        .basic_auth_password = c->basic_auth.password,
        .auth = pe->auth,
        .routes = pm_routes_tmpl,
        .n_routes = 1,
        .arg = pe,
    };
    if (!(pe->http = ot_http_server_start(&c->endpoint, &so, err)))
        return -1;
    if (c->metric_expiration > 0) {
        if (pthread_create(&pe->timer, NULL, timer_main, pe) != 0) {
            ot_http_server_stop(pe->http, 0);
            pe->http = NULL;
            return ot_err_set(err, "prometheus: cannot start the expiry timer");
        }
        pe->timer_on = true;
    }
    ot_info("prometheus", "serving scrapes", "exporter=%s endpoint=%s port=%d", pe->id,
            c->endpoint.text ? c->endpoint.text : "", ot_http_server_port(pe->http));
    return 0;
}

static void pm_shutdown(void *self, int64_t deadline)
{
    pm_exp *pe = self;
    ot_http_server_stop(pe->http, deadline);
    pe->http = NULL;
    if (pe->timer_on) {
        pthread_mutex_lock(&pe->mu);
        pe->stopping = true;
        pthread_cond_signal(&pe->cv);
        pthread_mutex_unlock(&pe->mu);
        pthread_join(pe->timer, NULL);
        pe->timer_on = false;
    }
}

static void pm_destroy(void *self)
{
    pm_exp *pe = self;
    if (pe->http || pe->timer_on)
        pm_shutdown(pe, 0);
    pm_core_free(pe->core);
    pthread_mutex_destroy(&pe->mu);
    pthread_cond_destroy(&pe->cv);
    free(pe->ckeys);
    free(pe->cvals);
    free(pe->id);
    free(pe);
}

static ot_consumer *pm_consumer_for(void *self, ot_signal s)
{
    return s == OT_METRICS ? &((pm_exp *)self)->cons.base : NULL;
}

const ot_factory ot_prometheus_exporter = {
    .type = "prometheus",
    .kind = OT_EXPORTER,
    .signals = OT_SIGBIT(OT_METRICS),
    .help = "serves the metrics it is sent on a Prometheus scrape endpoint",
    .keys = pm_keys,
    .config_size = sizeof(pm_cfg),
    .validate = pm_validate,
    .listens = pm_listens,
    .create = pm_create,
    .start = pm_start,
    .shutdown = pm_shutdown,
    .destroy = pm_destroy,
    .consumer = pm_consumer_for,
};
