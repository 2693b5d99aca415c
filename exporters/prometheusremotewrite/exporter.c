/* exporter.c: the `prometheusremotewrite` exporter as a component, for
 * fleets whose metrics go to a horizontally scaled store (Prometheus,
 * Mimir, Thanos Receive, Cortex, VictoriaMetrics): the key table (the
 * collector's names and defaults), the checks across keys, and the glue
 * behind the exporter helper.
 *
 * Translation happens in consume(), before the queue, not in the sender:
 * it moves the stream store on (deltas added up, each series' last time
 * noted), so doing it again on a retry would add deltas twice and send
 * nothing the second time. What is queued is each finished request,
 * snappy-compressed, as the batch's bytes (their items: the samples), so
 * the persistent queue keeps exactly what goes on the wire and a retry
 * sends the same body again. One sender thread: requests leave in the
 * order they were made, so a series' samples reach the server in time
 * order (Prometheus refuses a whole request for one out-of-order sample). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/log.h"
#include "export/exphelper.h"
#include "export/segment_log.h"
#include "net/http_client.h"
#include "net/tls.h"
#include "pipeline/factory.h"
#include "prw.h"
#include "telemetry/telemetry.h"

#define RESP_KEEP (16u << 10) /* of an error body: enough for the log */
#define SWEEP_NS (30LL * 1000000000LL)

/* ---- configuration -------------------------------------------------------- */

typedef struct flag_cfg {
    bool enabled;
} flag_cfg;

/* The collector's older queue block; when written it overrides
 * sending_queue's enabled, queue_size and num_consumers. */
typedef struct rwq_cfg {
    bool present;
    bool enabled;
    int64_t queue_size;
    int64_t num_consumers;
} rwq_cfg;

typedef struct prw_cfg {
    const char *endpoint;
    ot_strmap headers;
    ot_tls_client tls;
    const char *ns;
    ot_strmap external_labels;
    flag_cfg resource_to_telemetry_conversion;
    bool add_metric_suffixes;
    flag_cfg target_info;
    uint64_t max_batch_size_bytes;
    bool send_metadata;
    int64_t metric_expiration;
    uint64_t max_series_bytes;
    rwq_cfg remote_write_queue;
    ot_exph_config helper;
} prw_cfg;

static const ot_key enabled_false_keys[] = {
    {.name = "enabled", .type = OT_KT_BOOL, .offset = offsetof(flag_cfg, enabled), .def = "false",
     .help = "every resource attribute also becomes a label of every series"},
    {0},
};

static const ot_key enabled_true_keys[] = {
    {.name = "enabled", .type = OT_KT_BOOL, .offset = offsetof(flag_cfg, enabled), .def = "true",
     .help = "send one target_info series per resource with its other attributes"},
    {0},
};

static const ot_key rwq_keys[] = {
    {.name = "enabled", .type = OT_KT_BOOL, .offset = offsetof(rwq_cfg, enabled), .def = "true",
     .help = "queue requests for the sender thread (false: send on the pipeline's thread)"},
    {.name = "queue_size", .type = OT_KT_INT, .offset = offsetof(rwq_cfg, queue_size),
     .def = "10000", .min = 1, .max = 1000000, .help = "requests held in the queue"},
    {.name = "num_consumers", .type = OT_KT_INT, .offset = offsetof(rwq_cfg, num_consumers),
     .def = "1", .min = 1, .max = 64,
     .help = "accepted for the collector's configs; one sender keeps samples in order"},
    {0},
};

static const ot_key prw_keys[] = {
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(prw_cfg, endpoint),
     .flags = OT_KF_REQUIRED, .help = "remote-write URL, e.g. http://127.0.0.1:9090/api/v1/write"},
    {.name = "headers", .type = OT_KT_STRMAP, .offset = offsetof(prw_cfg, headers),
     .flags = OT_KF_SECRET, .help = "HTTP headers sent with every request (e.g. X-Scope-OrgID)"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(prw_cfg, tls),
     .sub = ot_tls_client_keys, .help = "TLS settings for https:// URLs"},
    {.name = "namespace", .type = OT_KT_STRING, .offset = offsetof(prw_cfg, ns),
     .help = "prefix of every metric name"},
    {.name = "external_labels", .type = OT_KT_STRMAP, .offset = offsetof(prw_cfg, external_labels),
     .help = "labels added to every series (a series' own label of the name wins)"},
    {.name = "resource_to_telemetry_conversion", .type = OT_KT_TABLE,
     .offset = offsetof(prw_cfg, resource_to_telemetry_conversion), .sub = enabled_false_keys,
     .help = "resource attributes as labels of every series"},
    {.name = "add_metric_suffixes", .type = OT_KT_BOOL,
     .offset = offsetof(prw_cfg, add_metric_suffixes), .def = "true",
     .help = "unit and type suffixes (_seconds, _bytes, _total, _ratio) on metric names"},
    {.name = "target_info", .type = OT_KT_TABLE, .offset = offsetof(prw_cfg, target_info),
     .sub = enabled_true_keys, .help = "the target_info series of each resource"},
    {.name = "max_batch_size_bytes", .type = OT_KT_SIZE,
     .offset = offsetof(prw_cfg, max_batch_size_bytes), .def = "3000000", .min = 1024,
     .max = 256e6, .help = "largest request body before compression; bigger batches are split"},
    {.name = "send_metadata", .type = OT_KT_BOOL, .offset = offsetof(prw_cfg, send_metadata),
     .def = "false", .help = "send each metric's type, help and unit (MetricMetadata)"},
    {.name = "metric_expiration", .type = OT_KT_DURATION,
     .offset = offsetof(prw_cfg, metric_expiration), .def = "5m", .min = 0, .max = 86400e9 * 30,
     .help = "a series not updated this long is forgotten (its delta total restarts); 0 = never"},
    {.name = "max_series_bytes", .type = OT_KT_SIZE, .offset = offsetof(prw_cfg, max_series_bytes),
     .def = "16MiB", .min = 0, .max = 64e9,
     .help = "memory for per-series state (about 180 bytes a series; the default keeps a saturated "
             "agent under 64 MiB); points of new series beyond it are dropped and counted"},
    {.name = "remote_write_queue", .type = OT_KT_TABLE,
     .offset = offsetof(prw_cfg, remote_write_queue), .sub = rwq_keys, .flags = OT_KF_PRESENCE,
     .help = "the collector's queue block; overrides sending_queue's enabled and queue_size"},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(prw_cfg, helper.timeout),
     .def = "5s", .min = 0, .max = 3600e9, .help = "time allowed for one request"},
    {.name = "sending_queue", .type = OT_KT_TABLE, .offset = offsetof(prw_cfg, helper.queue),
     .help = "queue between the pipeline and the sender thread (storage: persistent queue)",
     .sub = ot_exph_queue_keys},
    {.name = "retry_on_failure", .type = OT_KT_TABLE, .offset = offsetof(prw_cfg, helper.retry),
     .help = "retries with exponential backoff for 5xx, 429 and network errors",
     .sub = ot_exph_retry_keys},
    {0},
};

static const ot_node *key_node(const ot_node *map, const char *key)
{
    const ot_node *n = map ? ot_node_get(map, key) : NULL;
    return n ? n : map;
}

/* The helper's settings with remote_write_queue applied and one sender. */
static void effective_helper(const prw_cfg *c, ot_exph_config *h)
{
    *h = c->helper;
    if (c->remote_write_queue.present) {
        h->queue.enabled = c->remote_write_queue.enabled;
        h->queue.queue_size = c->remote_write_queue.queue_size;
    }
    h->queue.num_consumers = 1;
}

static void warn_consumers(const ot_node *node, const char *block, const char *path, ot_diags *d)
{
    const ot_node *q = node ? ot_node_get(node, block) : NULL;
    const ot_node *n = q ? ot_node_get(q, "num_consumers") : NULL;
    if (!n)
        return;
    char p[512];
    snprintf(p, sizeof p, "%s.%s.num_consumers", path, block);
    ot_diag_add(d, OT_SEV_WARNING, n, p,
                "one sender is used: requests sent in parallel would reach the server out of "
                "order, and Prometheus refuses a whole request for one out-of-order sample");
}

static void prw_validate(const void *vcfg, const ot_node *node, const char *path, ot_diags *d)
{
    const prw_cfg *c = vcfg;
    char p[512];
    if (c->endpoint && strncasecmp(c->endpoint, "http://", 7) != 0 &&
        strncasecmp(c->endpoint, "https://", 8) != 0) {
        snprintf(p, sizeof p, "%s.endpoint", path);
        ot_diag_add(d, OT_SEV_ERROR, key_node(node, "endpoint"), p,
                    "\"%s\" is not an http:// or https:// URL", c->endpoint);
    }
    snprintf(p, sizeof p, "%s.tls", path);
    ot_tls_client_validate(&c->tls, key_node(node, "tls"), p, d);
    for (size_t i = 0; i < c->external_labels.n; i++) {
        const char *v = c->external_labels.vals[i];
        if (!v || !*v) {
            snprintf(p, sizeof p, "%s.external_labels", path);
            ot_diag_add(d, OT_SEV_ERROR, key_node(key_node(node, "external_labels"),
                                                  c->external_labels.keys[i]),
                        p, "external label \"%s\" has an empty value", c->external_labels.keys[i]);
        }
    }
    warn_consumers(node, "sending_queue", path, d);
    warn_consumers(node, "remote_write_queue", path, d);
    ot_exph_config h;
    effective_helper(c, &h);
    ot_exph_validate(&h, node, path, d);
}

/* ---- the exporter ---------------------------------------------------------- */

typedef struct prw_exp {
    ot_consumer cons;
    char *id;
    const prw_cfg *c;
    ot_exph_config hcfg;
    ot_host *host;
    ot_exph *exph;
    ot_http_client *http;
    prw_core *core;
    ot_buf snap; /* a request compressed; used under the core's lock */
    ot_counter *out_of_order, *stale, *refused, *invalid, *requests;
} prw_exp;

/* Prometheus' answers for samples it will never take (the whole request is
 * refused): retrying cannot help. */
static bool is_order_error(const ot_buf *b)
{
    static const char *const words[] = {"out of order", "duplicate sample", "out of bounds",
                                        "too old", NULL};
    for (size_t i = 0; words[i]; i++)
        if (b->len && memmem(b->data, b->len, words[i], strlen(words[i])))
            return true;
    return false;
}

static void excerpt(const ot_buf *b, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < b->len && o + 1 < cap && o < 160; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

static void prw_send(void *self, ot_batch *b, int64_t deadline_ns, ot_send_result *out)
{
    prw_exp *e = self;
    static const char *const hdrs[] = {
        "Content-Type: application/x-protobuf",
        "Content-Encoding: snappy",
        "X-Prometheus-Remote-Write-Version: 0.1.0",
    };
    const uint8_t *body;
    size_t len;
    ot_err err = {{0}};
    if (ot_batch_wire(b, &body, &len, &err) < 0) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "%s", err.msg);
        return;
    }
    ot_buf resp = OT_BUF_INIT;
    ot_http_request req = {
        .method = OT_HTTP_POST, .url = e->c->endpoint, .headers = hdrs, .n_headers = 3,
        .body = body, .body_len = len, .deadline_ns = deadline_ns, .max_body = RESP_KEEP,
    };
    ot_http_response r = {.body = &resp};
    ot_counter_add(e->requests, 1);
    if (ot_http_client_do(e->http, &req, &r) < 0) {
        out->status = r.permanent ? OT_PERMANENT : OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "%s", r.error);
        ot_buf_free(&resp);
        return;
    }
    if (r.status >= 200 && r.status < 300) {
        out->status = OT_OK;
        ot_buf_free(&resp);
        return;
    }
    char detail[200];
    excerpt(&resp, detail, sizeof detail);
    snprintf(out->msg, sizeof out->msg, "HTTP %d from %s%s%s", r.status, e->c->endpoint,
             detail[0] ? ": " : "", detail);
    if (r.status == 429 || r.status >= 500) {
        out->status = OT_RETRYABLE;
        if (r.has_retry_after)
            out->retry_after_ns = r.retry_after_ns;
    } else {
        out->status = OT_PERMANENT;
        if (is_order_error(&resp))
            ot_counter_add(e->out_of_order, b->items);
    }
    ot_buf_free(&resp);
}

typedef struct queue_ctx {
    prw_exp *e;
    ot_err *err;
    ot_status st;
} queue_ctx;

/* One finished request: compressed and queued. Called under the core's
 * lock, so e->snap has one user. */
static int queue_one(void *ctx, const uint8_t *req, size_t len, size_t samples)
{
    queue_ctx *q = ctx;
    prw_exp *e = q->e;
    if (prw_snappy(&e->snap, req, len) < 0) {
        ot_err_set(q->err, "out of memory compressing a request");
        q->st = OT_RETRYABLE;
        return -1;
    }
    ot_batch *one = ot_batch_from_wire(OT_METRICS, e->snap.data, e->snap.len, samples, q->err);
    if (e->snap.cap > (8u << 20))
        ot_buf_free(&e->snap);
    if (!one) {
        q->st = OT_RETRYABLE;
        return -1;
    }
    ot_status st = ot_consume(ot_exph_consumer(e->exph, OT_METRICS), one, q->err);
    if (st > q->st)
        q->st = st;
    return 0;
}

/* When the queue fills part way through a batch, the requests already
 * queued stay queued and the caller hears OT_RETRYABLE; the points of the
 * refused requests are then lost, as a sender's retry finds them no newer
 * than what the store already holds. */
static ot_status prw_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    prw_exp *e = (prw_exp *)self;
    if (!e->exph) {
        ot_batch_unref(b);
        ot_err_set(err, "exporter %s is not running", e->id);
        return OT_RETRYABLE;
    }
    const ot_metrics_req *req = (const ot_metrics_req *)ot_batch_msg(b, err);
    if (!req) {
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    queue_ctx q = {e, err, OT_OK};
    prw_stats st = {0};
    int rc = prw_core_translate(e->core, req, ot_now_ns(), queue_one, &q, &st);
    ot_batch_unref(b);
    ot_counter_add(e->stale, st.stale);
    ot_counter_add(e->refused, st.refused);
    ot_counter_add(e->invalid, st.invalid);
    if (rc < 0 && q.st == OT_OK) {
        ot_err_set(err, "out of memory translating a batch");
        return OT_RETRYABLE;
    }
    return q.st;
}

static void prw_destroy(void *self);

static void *prw_create(const ot_create_params *p, ot_err *err)
{
    prw_exp *e = calloc(1, sizeof *e);
    if (!e || !(e->id = strdup(p->id))) {
        free(e);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    const prw_cfg *c = p->config;
    e->c = c;
    e->host = p->host;
    e->cons = (ot_consumer){prw_consume, false};
    effective_helper(c, &e->hcfg);
    prw_opts o = {
        .ns = c->ns,
        .suffixes = c->add_metric_suffixes,
        .resource_to_labels = c->resource_to_telemetry_conversion.enabled,
        .target_info = c->target_info.enabled,
        .metadata = c->send_metadata,
        .ext_keys = c->external_labels.keys,
        .ext_vals = c->external_labels.vals,
        .n_ext = c->external_labels.n,
        .max_bytes = c->max_batch_size_bytes,
        .expiration_ns = c->metric_expiration,
        .max_store_bytes = c->max_series_bytes,
    };
    if (!(e->core = prw_core_new(&o, err)))
        goto fail;
    ot_http_client_cfg hc = {.id = e->id, .tls = &c->tls, .headers = &c->headers};
    if (!(e->http = ot_http_client_new(&hc, err)))
        goto fail;
    char labels[300];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", p->id);
    e->out_of_order = ot_tel_counter(
        "otelite_exporter_prw_refused_samples_total",
        "Samples in requests the server refused as out of order, duplicate or too old (not "
        "retried).", labels);
    e->stale = ot_tel_counter("otelite_exporter_prw_stale_points_total",
                              "Points not newer than their series' last one, not sent.", labels);
    e->refused = ot_tel_counter("otelite_exporter_prw_series_refused_points_total",
                                "Points of new series refused by max_series_bytes.", labels);
    e->invalid = ot_tel_counter("otelite_exporter_prw_invalid_points_total",
                                "Points remote write cannot carry (dropped).", labels);
    e->requests = ot_tel_counter("otelite_exporter_prw_requests_total",
                                 "Remote-write requests sent (attempts).", labels);
    return e;
fail:
    prw_destroy(e);
    return NULL;
}

static int prw_start(void *self, ot_err *err)
{
    prw_exp *e = self;
    if (e->c->metric_expiration > 0 &&
        prw_core_sweeper_start(e->core, e->c->metric_expiration < SWEEP_NS ? e->c->metric_expiration
                                                                           : SWEEP_NS,
                               err) < 0)
        return -1;
    ot_segment_log *log = NULL; /* the helper's from here on */
    if (ot_host_open_queue(e->host, e->hcfg.queue.storage, e->id, &log, err) < 0)
        return -1;
    /* Made here, not at create: the persistent queue opens only once its
     * extension has started. */
    e->exph = ot_exph_new(e->id, &e->hcfg, prw_send, e, log, err);
    if (!e->exph || ot_exph_start(e->exph, err) < 0)
        return -1;
    ot_info("prometheusremotewrite", "exporting", "exporter=%s url=%s persistent=%s", e->id,
            e->c->endpoint, log ? "true" : "false");
    return 0;
}

static void prw_shutdown(void *self, int64_t deadline_ns)
{
    prw_exp *e = self;
    if (e->exph)
        ot_exph_shutdown(e->exph, deadline_ns);
}

static void prw_destroy(void *self)
{
    prw_exp *e = self;
    if (!e)
        return;
    ot_exph_free(e->exph);
    ot_http_client_free(e->http);
    prw_core_free(e->core);
    ot_buf_free(&e->snap);
    free(e->id);
    free(e);
}

static ot_consumer *prw_consumer_for(void *self, ot_signal s)
{
    return s == OT_METRICS ? &((prw_exp *)self)->cons : NULL;
}

const ot_factory ot_prometheusremotewrite_exporter = {
    .type = "prometheusremotewrite",
    .kind = OT_EXPORTER,
    .signals = OT_SIGBIT(OT_METRICS),
    .help = "pushes metrics with Prometheus remote write 1.0 (Prometheus, Mimir, Thanos, Cortex)",
    .keys = prw_keys,
    .config_size = sizeof(prw_cfg),
    .validate = prw_validate,
    .create = prw_create,
    .start = prw_start,
    .shutdown = prw_shutdown,
    .destroy = prw_destroy,
    .consumer = prw_consumer_for,
};
