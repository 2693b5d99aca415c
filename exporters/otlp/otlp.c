/* otlp.c: the `otlp` (alias `otlp_grpc`) and `otlphttp` exporters as
 * components: their key tables (the collector's names and defaults), the
 * checks across keys, and the glue that puts each transport behind the
 * exporter helper (queue, sender threads, timeout, retry, persistent
 * queue). The helper calls one send function per attempt; this file turns
 * a transport's answer into OK / retryable / permanent, passes on the delay
 * a server asked for, and logs and counts partial success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "export/exphelper.h"
#include "pipeline/factory.h"
#include "base/log.h"
#include "otlpexp.h"
#include "export/segment_log.h"
#include "export/senders.h"
#include "telemetry/telemetry.h"

/* ---- configuration -------------------------------------------------------- */

static const char *const compressions[] = {"gzip", "none", NULL};
static const char *const encodings[] = {"proto", "json", NULL};
static const char *const balancers[] = {"pick_first", "round_robin", NULL};

typedef struct grpc_keepalive {
    bool present;
    int64_t time;
    int64_t timeout;
    bool permit_without_stream;
} grpc_keepalive;

typedef struct grpc_cfg {
    const char *endpoint;
    ot_tls_client tls;
    ot_strmap headers;
    int compression;
    const char *authority;
    int balancer_name;
    int64_t num_connections;
    bool wait_for_ready;
    grpc_keepalive keepalive;
    ot_exph_config helper;
} grpc_cfg;

typedef struct http_cfg {
    const char *endpoint;
    const char *traces_endpoint, *metrics_endpoint, *logs_endpoint;
    int encoding;
    int compression;
    ot_strmap headers;
    ot_tls_client tls;
    const char *proxy_url;
    ot_exph_config helper;
} http_cfg;

static const ot_key keepalive_keys[] = {
    {.name = "time", .type = OT_KT_DURATION, .offset = offsetof(grpc_keepalive, time), .def = "0",
     .min = 0, .max = 86400e9, .help = "ping the server after this long without a frame; 0 = never"},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(grpc_keepalive, timeout),
     .def = "20s", .min = 1e6, .max = 3600e9,
     .help = "close the connection when a ping is not answered in this time"},
    {.name = "permit_without_stream", .type = OT_KT_BOOL,
     .offset = offsetof(grpc_keepalive, permit_without_stream), .def = "false",
     .help = "ping also while no call is in flight"},
    {0},
};

static const ot_key grpc_keys[] = {
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(grpc_cfg, endpoint),
     .flags = OT_KF_REQUIRED,
     .help = "host:port of the OTLP/gRPC server; https:// means TLS, http:// plaintext"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(grpc_cfg, tls),
     .sub = ot_tls_client_keys, .help = "TLS settings; TLS is on unless insecure: true"},
    {.name = "headers", .type = OT_KT_STRMAP, .offset = offsetof(grpc_cfg, headers),
     .flags = OT_KF_SECRET, .help = "metadata sent with every call (e.g. authorization)"},
    {.name = "compression", .type = OT_KT_ENUM, .offset = offsetof(grpc_cfg, compression),
     .def = "gzip", .choices = compressions, .help = "message compression"},
    {.name = "authority", .type = OT_KT_STRING, .offset = offsetof(grpc_cfg, authority),
     .help = ":authority to send instead of the endpoint"},
    {.name = "balancer_name", .type = OT_KT_ENUM, .offset = offsetof(grpc_cfg, balancer_name),
     .def = "round_robin", .choices = balancers,
     .help = "spread connections over every address of the host, or use the first that works"},
    {.name = "num_connections", .type = OT_KT_INT, .offset = offsetof(grpc_cfg, num_connections),
     .def = "1", .min = 1, .max = 64, .help = "HTTP/2 connections; calls go to the least busy"},
    {.name = "wait_for_ready", .type = OT_KT_BOOL, .offset = offsetof(grpc_cfg, wait_for_ready),
     .def = "false",
     .help = "while no connection can be made, wait (until the timeout) instead of failing at once"},
    {.name = "keepalive", .type = OT_KT_TABLE, .offset = offsetof(grpc_cfg, keepalive),
     .sub = keepalive_keys, .flags = OT_KF_PRESENCE, .help = "HTTP/2 pings that find dead connections"},
    /* Spelled out rather than OT_EXPH_KEYS: that macro's parameter named
     * `type` also rewrites the `.type` designators inside it. */
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(grpc_cfg, helper.timeout),
     .def = "5s", .min = 0, .max = 3600e9, .help = "time allowed for one export call"},
    {.name = "sending_queue", .type = OT_KT_TABLE, .offset = offsetof(grpc_cfg, helper.queue),
     .help = "queue between the pipeline and the sender threads", .sub = ot_exph_queue_keys},
    {.name = "retry_on_failure", .type = OT_KT_TABLE, .offset = offsetof(grpc_cfg, helper.retry),
     .help = "retries with exponential backoff for retryable failures", .sub = ot_exph_retry_keys},
    {0},
};

static const ot_key http_keys[] = {
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(http_cfg, endpoint),
     .help = "base URL; each signal goes to <endpoint>/v1/traces, /v1/metrics, /v1/logs"},
    {.name = "traces_endpoint", .type = OT_KT_STRING, .offset = offsetof(http_cfg, traces_endpoint),
     .help = "full URL for traces, instead of the one made from endpoint"},
    {.name = "metrics_endpoint", .type = OT_KT_STRING, .offset = offsetof(http_cfg, metrics_endpoint),
     .help = "full URL for metrics, instead of the one made from endpoint"},
    {.name = "logs_endpoint", .type = OT_KT_STRING, .offset = offsetof(http_cfg, logs_endpoint),
     .help = "full URL for logs, instead of the one made from endpoint"},
    {.name = "encoding", .type = OT_KT_ENUM, .offset = offsetof(http_cfg, encoding), .def = "proto",
     .choices = encodings, .help = "request body: protobuf or OTLP JSON"},
    {.name = "compression", .type = OT_KT_ENUM, .offset = offsetof(http_cfg, compression),
     .def = "gzip", .choices = compressions, .help = "request body compression"},
    {.name = "headers", .type = OT_KT_STRMAP, .offset = offsetof(http_cfg, headers),
     .flags = OT_KF_SECRET, .help = "HTTP headers sent with every request"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(http_cfg, tls),
     .sub = ot_tls_client_keys, .help = "TLS settings for https:// URLs"},
    {.name = "proxy_url", .type = OT_KT_STRING, .offset = offsetof(http_cfg, proxy_url),
     .help = "HTTP proxy (the usual *_proxy environment variables apply otherwise)"},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(http_cfg, helper.timeout),
     .def = "30s", .min = 0, .max = 3600e9, .help = "time allowed for one request"},
    {.name = "sending_queue", .type = OT_KT_TABLE, .offset = offsetof(http_cfg, helper.queue),
     .help = "queue between the pipeline and the sender threads", .sub = ot_exph_queue_keys},
    {.name = "retry_on_failure", .type = OT_KT_TABLE, .offset = offsetof(http_cfg, helper.retry),
     .help = "retries with exponential backoff for retryable failures", .sub = ot_exph_retry_keys},
    {0},
};

static char *join_path(char *buf, size_t cap, const char *path, const char *key)
{
    snprintf(buf, cap, "%s.%s", path, key);
    return buf;
}

static const ot_node *key_node(const ot_node *map, const char *key)
{
    const ot_node *n = ot_node_get(map, key);
    return n ? n : map;
}

static void headers_validate(const ot_strmap *h, const ot_node *node, const char *path, bool grpc,
                             ot_diags *d)
{
    char p[512];
    for (size_t i = 0; i < h->n; i++) {
        const char *k = h->keys[i];
        bool bad = !*k || k[0] == ':';
        for (const char *c = k; *c && !bad; c++)
            bad = *c <= ' ' || *c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *c);
        if (bad) {
            ot_diag_add(d, OT_SEV_ERROR, key_node(ot_node_get(node, "headers"), k),
                        join_path(p, sizeof p, path, "headers"), "\"%s\" is not a header name", k);
            continue;
        }
        if (grpc && ot_grpc_client_reserved(k)) /* what the client leaves out */
            ot_diag_add(d, OT_SEV_WARNING, key_node(ot_node_get(node, "headers"), k),
                        join_path(p, sizeof p, path, "headers"),
                        "header \"%s\" is set by the gRPC transport and is ignored here", k);
    }
}

static void grpc_validate(const void *vcfg, const ot_node *node, const char *path, ot_diags *d)
{
    const grpc_cfg *c = vcfg;
    char p[512];
    ot_err err = {{0}};
    ot_grpc_target t;
    if (c->endpoint && ot_grpc_target_parse(c->endpoint, c->tls.insecure, &t, &err) < 0)
        ot_diag_add(d, OT_SEV_ERROR, key_node(node, "endpoint"), join_path(p, sizeof p, path, "endpoint"),
                    "%s", err.msg);
    ot_tls_client_validate(&c->tls, key_node(node, "tls"), join_path(p, sizeof p, path, "tls"), d);
    headers_validate(&c->headers, node, path, true, d);
    ot_exph_validate(&c->helper, node, path, d);
}

static void http_validate(const void *vcfg, const ot_node *node, const char *path, ot_diags *d)
{
    const http_cfg *c = vcfg;
    char p[512], url[2048];
    const char *over[OT_SIGNAL_COUNT] = {c->traces_endpoint, c->metrics_endpoint, c->logs_endpoint};
    static const char *const over_keys[OT_SIGNAL_COUNT] = {"traces_endpoint", "metrics_endpoint",
                                                           "logs_endpoint"};
    bool base_set = c->endpoint && *c->endpoint, any = base_set;
    if (base_set) {
        ot_err err = {{0}};
        if (ot_otlpexp_signal_url(c->endpoint, NULL, OT_TRACES, url, sizeof url, &err) < 0)
            ot_diag_add(d, OT_SEV_ERROR, key_node(node, "endpoint"),
                        join_path(p, sizeof p, path, "endpoint"), "%s", err.msg);
    }
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        ot_err err = {{0}};
        if (!over[s] || !*over[s])
            continue;
        any = true;
        if (ot_otlpexp_signal_url(NULL, over[s], (ot_signal)s, url, sizeof url, &err) < 0)
            ot_diag_add(d, OT_SEV_ERROR, key_node(node, over_keys[s]),
                        join_path(p, sizeof p, path, over_keys[s]), "%s", err.msg);
    }
    /* Which signals reach this exporter is the pipelines' business; a
     * batch of a signal without a URL is refused when it comes. */
    if (!any)
        ot_diag_add(d, OT_SEV_ERROR, node, path,
                    "set endpoint (the base URL), or traces_endpoint, metrics_endpoint, logs_endpoint");
    ot_tls_client_validate(&c->tls, key_node(node, "tls"), join_path(p, sizeof p, path, "tls"), d);
    if (c->tls.server_name_override && *c->tls.server_name_override)
        ot_diag_add(d, OT_SEV_WARNING, key_node(ot_node_get(node, "tls"), "server_name_override"),
                    join_path(p, sizeof p, path, "tls.server_name_override"),
                    "not supported by otlphttp (libcurl verifies the URL's host); ignored");
    headers_validate(&c->headers, node, path, false, d);
    ot_exph_validate(&c->helper, node, path, d);
}

/* ---- the exporter ---------------------------------------------------------- */

typedef struct otlp_exp otlp_exp;

typedef struct exp_consumer {
    ot_consumer base;
    otlp_exp *e;
    ot_signal signal;
} exp_consumer;

/* What one sender thread reuses from batch to batch (senders.h). */
typedef struct sender_ctx {
    ot_compressor gz;
    ot_buf json; /* otlphttp's body when encoding is json */
    ot_buf resp;
} sender_ctx;

struct otlp_exp {
    bool http;
    char *id;
    const ot_exph_config *hcfg;
    ot_host *host;
    ot_senders snd;
    exp_consumer cons[OT_SIGNAL_COUNT];
    ot_counter *rejected[OT_SIGNAL_COUNT];

    const grpc_cfg *gc;
    ot_grpc_client_cfg grpc_cfg;
    ot_grpc_client *grpc;

    const http_cfg *hc;
    ot_otlpexp_http_cfg http_cfg;
    char urls[OT_SIGNAL_COUNT][2048];
    ot_otlpexp_http *httpc;
};

static ot_status exp_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    exp_consumer *c = (exp_consumer *)self;
    if (!ot_senders_running(&c->e->snd, c->e->id, b, err))
        return OT_RETRYABLE;
    return ot_consume(ot_exph_consumer(c->e->snd.exph, c->signal), b, err);
}

static void note_partial(otlp_exp *e, ot_signal s, int64_t rejected, const char *msg)
{
    if (rejected <= 0 && !*msg)
        return;
    if (rejected > 0)
        ot_counter_add(e->rejected[s], (uint64_t)rejected);
    ot_warn(e->http ? "otlphttp" : "otlp", "partial success",
            "exporter=%s signal=%s rejected_%s=%lld message=\"%s\"", e->id, ot_signal_name(s),
            ot_signal_item_name(s), (long long)rejected, msg);
}

static void ctx_fini(void *vx)
{
    sender_ctx *x = vx;
    ot_compressor_free(&x->gz);
    ot_buf_free(&x->json);
    ot_buf_free(&x->resp);
}

static bool ctx_trim(void *vx)
{
    sender_ctx *x = vx;
    if (x->gz.out.cap > (16u << 20))
        ot_buf_free(&x->gz.out);
    if (x->json.cap > (16u << 20))
        ot_buf_free(&x->json);
    return true;
}

static const ot_senders_ops ctx_ops = {sizeof(sender_ctx), NULL, ctx_fini, ctx_trim};

/* "rpc error: UNAVAILABLE: ..." — the code first, as people grep for it. */
static void grpc_send(void *self, ot_batch *b, int64_t deadline_ns, ot_send_result *out)
{
    otlp_exp *e = self;
    ot_err err = {{0}};
    const uint8_t *msg = NULL;
    size_t len = 0;
    if (ot_batch_wire(b, &msg, &len, &err) < 0) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "cannot encode the batch: %s", err.msg);
        return;
    }
    sender_ctx *x = ot_senders_borrow(&e->snd, out);
    if (!x)
        return;
    bool gz = e->gc->compression == 0;
    if (gz) {
        if (ot_compress(&x->gz, OT_COMPRESS_GZIP, msg, len, &err) < 0) {
            out->status = OT_RETRYABLE;
            snprintf(out->msg, sizeof out->msg, "%s", err.msg);
            ot_senders_return(&e->snd, x);
            return;
        }
        msg = (const uint8_t *)x->gz.out.data;
        len = x->gz.out.len;
    }
    ot_grpc_reply r;
    memset(&r, 0, sizeof r);
    r.resp = &x->resp;
    ot_grpc_client_call(e->grpc, ot_grpc_path(b->signal), msg, len, gz, deadline_ns, NULL, &r);
    bool retry_info = r.has_details && r.details.has_retry_info;
    out->status = ot_otlpexp_grpc_outcome(r.code, retry_info);
    if (out->status == OT_OK) {
        int64_t rej = 0;
        char pm[256];
        if (ot_otlpexp_partial_from_pb(b->signal, x->resp.data, x->resp.len, &rej, pm, sizeof pm) == 0)
            note_partial(e, b->signal, rej, pm);
    } else {
        if (out->status == OT_RETRYABLE && retry_info)
            out->retry_after_ns = r.details.retry_delay_ns;
        snprintf(out->msg, sizeof out->msg, "rpc error: %s: %s", ot_grpc_code_name(r.code),
                 r.msg[0] ? r.msg : "(no message)");
    }
    ot_senders_return(&e->snd, x);
}

static void http_send(void *self, ot_batch *b, int64_t deadline_ns, ot_send_result *out)
{
    otlp_exp *e = self;
    sender_ctx *x = ot_senders_borrow(&e->snd, out);
    if (!x)
        return;
    ot_otlpexp_result r;
    ot_otlpexp_http_send(e->httpc, b, deadline_ns, &x->json, &x->resp, &r);
    ot_senders_return(&e->snd, x);
    out->status = r.status;
    out->retry_after_ns = r.status == OT_RETRYABLE ? r.retry_after_ns : 0;
    snprintf(out->msg, sizeof out->msg, "%s", r.msg);
    if (r.status == OT_OK)
        note_partial(e, b->signal, r.rejected, r.partial_msg);
}

static otlp_exp *exp_new(const ot_create_params *p, bool http, ot_err *err)
{
    otlp_exp *e = calloc(1, sizeof *e);
    if (!e || !(e->id = strdup(p->id))) {
        free(e);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    e->http = http;
    e->host = p->host;
    ot_senders_init(&e->snd, &ctx_ops);
    char labels[300], name[128];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", p->id);
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        e->cons[s] = (exp_consumer){{exp_consume, false}, e, (ot_signal)s};
        snprintf(name, sizeof name, "otelite_exporter_partial_rejected_%s_total",
                 ot_signal_item_name((ot_signal)s));
        e->rejected[s] = ot_tel_counter(
            name, "Items a backend refused in a partially successful export.", labels);
    }
    return e;
}

static void exp_destroy(void *self);

static void *grpc_create(const ot_create_params *p, ot_err *err)
{
    otlp_exp *e = exp_new(p, false, err);
    if (!e)
        return NULL;
    const grpc_cfg *c = p->config;
    e->gc = c;
    e->hcfg = &c->helper;
    ot_grpc_client_cfg *g = &e->grpc_cfg;
    g->id = e->id;
    g->log_module = "otlp";
    if (ot_grpc_target_parse(c->endpoint, c->tls.insecure, &g->target, err) < 0)
        goto fail;
    g->tls = &c->tls;
    g->metadata = &c->headers;
    g->authority = c->authority;
    g->num_connections = (int)c->num_connections;
    g->balancer = c->balancer_name == 1 ? OT_GRPC_ROUND_ROBIN : OT_GRPC_PICK_FIRST;
    g->wait_for_ready = c->wait_for_ready;
    if (c->keepalive.present) {
        g->keepalive_time = c->keepalive.time;
        g->keepalive_timeout = c->keepalive.timeout;
        g->keepalive_permit_without_stream = c->keepalive.permit_without_stream;
    }
    e->grpc = ot_grpc_client_new(g, err);
    if (!e->grpc)
        goto fail;
    return e;
fail:
    exp_destroy(e);
    return NULL;
}

static void *http_create(const ot_create_params *p, ot_err *err)
{
    otlp_exp *e = exp_new(p, true, err);
    if (!e)
        return NULL;
    const http_cfg *c = p->config;
    e->hc = c;
    e->hcfg = &c->helper;
    const char *over[OT_SIGNAL_COUNT] = {c->traces_endpoint, c->metrics_endpoint, c->logs_endpoint};
    ot_otlpexp_http_cfg *h = &e->http_cfg;
    h->id = e->id;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        /* A signal without a URL is refused at validation only if a
         * pipeline sends it; here it just has none. */
        if (ot_otlpexp_signal_url(c->endpoint, over[s], (ot_signal)s, e->urls[s], sizeof e->urls[s],
                                  NULL) == 0)
            h->url[s] = e->urls[s];
    }
    h->json = c->encoding == 1;
    h->gzip = c->compression == 0;
    h->headers = &c->headers;
    h->tls = &c->tls;
    h->proxy_url = c->proxy_url;
    e->httpc = ot_otlpexp_http_new(h, err);
    if (!e->httpc) {
        exp_destroy(e);
        return NULL;
    }
    return e;
}

static int exp_start(void *self, ot_err *err)
{
    otlp_exp *e = self;
    if (!e->http && ot_grpc_client_start(e->grpc, err) < 0)
        return -1;
    ot_segment_log *log = NULL; /* the helper's from here on */
    if (ot_host_open_queue(e->host, e->hcfg->queue.storage, e->id, &log, err) < 0)
        return -1;
    /* The helper is made here, not at create: the persistent queue can only
     * be opened once its extension has started. Receivers start after
     * exporters, so nothing arrives in between. */
    if (ot_senders_start(&e->snd, e->id, e->hcfg, e->http ? http_send : grpc_send, e, log, err) < 0)
        return -1;
    if (e->http)
        ot_info("otlphttp", "exporting", "exporter=%s traces=%s metrics=%s logs=%s encoding=%s",
                e->id, e->urls[0][0] ? e->urls[0] : "-", e->urls[1][0] ? e->urls[1] : "-",
                e->urls[2][0] ? e->urls[2] : "-", e->http_cfg.json ? "json" : "proto");
    else
        ot_info("otlp", "exporting", "exporter=%s endpoint=%s tls=%s compression=%s", e->id,
                e->grpc_cfg.target.authority, e->grpc_cfg.target.tls ? "true" : "false",
                compressions[e->gc->compression]);
    return 0;
}

static void exp_shutdown(void *self, int64_t deadline_ns)
{
    otlp_exp *e = self;
    ot_senders_shutdown(&e->snd, deadline_ns);
    if (e->grpc)
        ot_grpc_client_stop(e->grpc);
}

static void exp_destroy(void *self)
{
    otlp_exp *e = self;
    if (!e)
        return;
    ot_senders_fini(&e->snd);
    ot_grpc_client_free(e->grpc);
    ot_otlpexp_http_free(e->httpc);
    free(e->id);
    free(e);
}

static ot_consumer *exp_consumer_for(void *self, ot_signal s)
{
    return &((otlp_exp *)self)->cons[s].base;
}

#define GRPC_FACTORY(sym, name)                                                                   \
    const ot_factory sym = {                                                                      \
        .type = name,                                                                             \
        .kind = OT_EXPORTER,                                                                      \
        .signals = OT_SIG_ALL,                                                                    \
        .help = "sends OTLP over gRPC (HTTP/2, TLS or plaintext) to a collector or backend",     \
        .keys = grpc_keys,                                                                        \
        .config_size = sizeof(grpc_cfg),                                                          \
        .validate = grpc_validate,                                                                \
        .create = grpc_create,                                                                    \
        .start = exp_start,                                                                       \
        .shutdown = exp_shutdown,                                                                 \
        .destroy = exp_destroy,                                                                   \
        .consumer = exp_consumer_for,                                                             \
    }

GRPC_FACTORY(ot_otlp_exporter, "otlp");
GRPC_FACTORY(ot_otlp_grpc_exporter, "otlp_grpc");

const ot_factory ot_otlphttp_exporter = {
    .type = "otlphttp",
    .kind = OT_EXPORTER,
    .signals = OT_SIG_ALL,
    .help = "sends OTLP over HTTP (protobuf or JSON, HTTP/1.1 or HTTP/2) to a collector or backend",
    .keys = http_keys,
    .config_size = sizeof(http_cfg),
    .validate = http_validate,
    .create = http_create,
    .start = exp_start,
    .shutdown = exp_shutdown,
    .destroy = exp_destroy,
    .consumer = exp_consumer_for,
};
