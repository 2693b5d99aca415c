/* exporter.c: the `jaeger` exporter as a component, for Jaeger v1 fleets
 * that take only their own protocols: api_v2 gRPC (PostSpans) over the
 * project's gRPC client, or a Thrift Batch POSTed over the HTTP client.
 * direct.c makes the bytes (translate.c, then apiv2.c or thrift.c, for
 * what it leaves); this file holds the key table, the checks across keys, and the
 * glue behind the exporter helper
 * (queue, senders, retry): which answers are retryable or permanent, and
 * how a request with several resources is kept from being sent twice.
 *
 * Jaeger takes one process (resource) per call, so an OTLP request with N
 * resources is N calls. If call 2 of 3 failed and the helper retried the
 * whole batch, the spans of call 1 would arrive twice. So consume() splits
 * a batch into one batch per distinct resource before it is queued
 * (split.c): each queued batch is then exactly one call, retried alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/compress.h"
#include "base/log.h"
#include "export/exphelper.h"
#include "export/segment_log.h"
#include "export/senders.h"
#include "jaeger.h"
#include "net/grpc_client.h"
#include "net/grpc_wire.h"
#include "net/http_client.h"
#include "net/tls.h"
#include "pipeline/factory.h"

#define JG_GRPC_DEFAULT "127.0.0.1:14250"
#define JG_THRIFT_DEFAULT "http://127.0.0.1:14268/api/traces"
#define JG_POST_SPANS "/jaeger.api_v2.CollectorService/PostSpans"
#define RESP_KEEP (16u << 10) /* of a Thrift error body: enough for the log */

/* ---- configuration -------------------------------------------------------- */

enum { PROTO_GRPC = 0, PROTO_THRIFT_HTTP = 1 };
enum { COMP_NONE = 0, COMP_GZIP = 1 };

static const char *const protocols[] = {"grpc", "thrift_http", NULL};
static const char *const compressions[] = {"none", "gzip", NULL};

typedef struct jg_cfg {
    int protocol;
    const char *endpoint;
    ot_tls_client tls;
    ot_strmap headers;
    int compression;
    ot_exph_config helper;
} jg_cfg;

static const ot_key jg_keys[] = {
    {.name = "protocol", .type = OT_KT_ENUM, .offset = offsetof(jg_cfg, protocol), .def = "grpc",
     .choices = protocols,
     .help = "api_v2 gRPC (collector port 14250) or Thrift over HTTP (collector port 14268)"},
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(jg_cfg, endpoint),
     .help = "grpc: host:port (default " JG_GRPC_DEFAULT "; TLS unless tls.insecure or http://); "
             "thrift_http: URL (default " JG_THRIFT_DEFAULT ")"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(jg_cfg, tls),
     .sub = ot_tls_client_keys, .help = "TLS settings (insecure: plaintext gRPC)"},
    {.name = "headers", .type = OT_KT_STRMAP, .offset = offsetof(jg_cfg, headers),
     .flags = OT_KF_SECRET,
     .help = "gRPC metadata or HTTP headers sent with every call; names the transport sets itself "
             "(content-type, te, user-agent and grpc-* for gRPC; Content-Type and framing headers "
             "for Thrift) are warned about and not sent"},
    {.name = "compression", .type = OT_KT_ENUM, .offset = offsetof(jg_cfg, compression),
     .def = "none", .choices = compressions,
     .help = "gRPC message compression (Thrift bodies are never compressed)"},
    /* Spelled out rather than OT_EXPH_KEYS: that macro's parameter named
     * `type` also rewrites the `.type` designators inside it. */
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(jg_cfg, helper.timeout),
     .def = "5s", .min = 0, .max = 3600e9, .help = "time allowed for one call"},
    {.name = "sending_queue", .type = OT_KT_TABLE, .offset = offsetof(jg_cfg, helper.queue),
     .help = "queue between the pipeline and the sender threads", .sub = ot_exph_queue_keys},
    {.name = "retry_on_failure", .type = OT_KT_TABLE, .offset = offsetof(jg_cfg, helper.retry),
     .help = "retries with exponential backoff for retryable failures", .sub = ot_exph_retry_keys},
    {0},
};

static const char *endpoint_of(const jg_cfg *c)
{
    if (c->endpoint && *c->endpoint)
        return c->endpoint;
    return c->protocol == PROTO_GRPC ? JG_GRPC_DEFAULT : JG_THRIFT_DEFAULT;
}

/* Headers a Thrift POST sets itself: its Content-Type, and the framing
 * libcurl owns (a second Content-Length or a Transfer-Encoding would
 * change how the body is read). Left out of what is sent, as the gRPC
 * client leaves out the names it reserves (ot_grpc_client_reserved). */
static bool thrift_reserved(const char *k)
{
    static const char *const r[] = {"content-type", "content-length", "transfer-encoding",
                                    "connection", "expect", "te", "trailer", "upgrade",
                                    "keep-alive", "proxy-connection", NULL};
    for (size_t i = 0; r[i]; i++)
        if (strcasecmp(k, r[i]) == 0)
            return true;
    return false;
}

static bool header_reserved(const jg_cfg *c, const char *k)
{
    return c->protocol == PROTO_GRPC ? ot_grpc_client_reserved(k) : thrift_reserved(k);
}

static const ot_node *key_node(const ot_node *map, const char *key)
{
    const ot_node *n = ot_node_get(map, key);
    return n ? n : map;
}

static void jg_validate(const void *vcfg, const ot_node *node, const char *path, ot_diags *d)
{
    const jg_cfg *c = vcfg;
    char p[512];
    const char *ep = endpoint_of(c);
    snprintf(p, sizeof p, "%s.endpoint", path);
    if (c->protocol == PROTO_GRPC) {
        ot_err err = {{0}};
        ot_grpc_target t;
        if (ot_grpc_target_parse(ep, c->tls.insecure, &t, &err) < 0)
            ot_diag_add(d, OT_SEV_ERROR, key_node(node, "endpoint"), p, "%s", err.msg);
    } else {
        if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
            ot_diag_add(d, OT_SEV_ERROR, key_node(node, "endpoint"), p,
                        "thrift_http needs an http:// or https:// URL, not \"%s\"", ep);
        if (c->compression == COMP_GZIP) {
            snprintf(p, sizeof p, "%s.compression", path);
            ot_diag_add(d, OT_SEV_ERROR, key_node(node, "compression"), p,
                        "Jaeger's Thrift endpoint takes no compressed bodies; use protocol: grpc "
                        "or compression: none");
        }
    }
    for (size_t i = 0; i < c->headers.n; i++) {
        const char *k = c->headers.keys[i];
        bool bad = !*k || k[0] == ':';
        for (const char *ch = k; *ch && !bad; ch++)
            bad = *ch <= ' ' || *ch >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *ch);
        snprintf(p, sizeof p, "%s.headers", path);
        if (bad)
            ot_diag_add(d, OT_SEV_ERROR, key_node(ot_node_get(node, "headers"), k), p,
                        "\"%s\" is not a header name", k);
        else if (header_reserved(c, k))
            ot_diag_add(d, OT_SEV_WARNING, key_node(ot_node_get(node, "headers"), k), p,
                        "header \"%s\" is set by the %s transport itself and is not sent", k,
                        c->protocol == PROTO_GRPC ? "gRPC" : "Thrift/HTTP");
    }
    snprintf(p, sizeof p, "%s.tls", path);
    ot_tls_client_validate(&c->tls, key_node(node, "tls"), p, d);
    ot_exph_validate(&c->helper, node, path, d);
}

/* ---- the exporter ---------------------------------------------------------- */

/* What one sender thread reuses from batch to batch: the translation's
 * arena (reset per send, so the batch's own arena, which other exporters
 * may be reading, is never written), the encoded body, gzip's output and
 * the response (senders.h). */
typedef struct sender_ctx {
    ot_jaeger_enc *enc; /* the direct encoder's views */
    ot_arena *arena;    /* the reference path's structs, when it is taken */
    ot_buf body;
    ot_compressor gz;
    ot_buf resp;
} sender_ctx;

typedef struct jg_exp {
    ot_consumer cons;
    char *id;
    const jg_cfg *c;
    ot_host *host;
    ot_senders snd;

    ot_grpc_client_cfg grpc_cfg;
    ot_grpc_client *grpc;
    ot_http_client *http;
    const char *url;
} jg_exp;

static int ctx_init(void *vx)
{
    sender_ctx *x = vx;
    return (x->arena = ot_arena_new(64u << 10)) && (x->enc = ot_jaeger_enc_new()) ? 0 : -1;
}

static void ctx_fini(void *vx)
{
    sender_ctx *x = vx;
    ot_jaeger_enc_free(x->enc);
    ot_arena_free(x->arena);
    ot_buf_free(&x->body);
    ot_compressor_free(&x->gz);
    ot_buf_free(&x->resp);
}

/* A rare huge batch should not pin its memory for good. */
static bool ctx_trim(void *vx)
{
    sender_ctx *x = vx;
    if (ot_arena_reserved(x->arena) > (4u << 20))
        return false;
    if (x->body.cap > (16u << 20))
        ot_buf_free(&x->body);
    if (x->gz.out.cap > (16u << 20))
        ot_buf_free(&x->gz.out);
    return true;
}

static const ot_senders_ops ctx_ops = {sizeof(sender_ctx), ctx_init, ctx_fini, ctx_trim};

/* Jaeger's collector answers RESOURCE_EXHAUSTED when its queue is full,
 * with or without RetryInfo, so unlike OTLP it is always retried. */
static ot_status grpc_outcome(int code)
{
    switch (code) {
    case OT_GRPC_OK:
        return OT_OK;
    case OT_GRPC_CANCELLED:
    case OT_GRPC_DEADLINE_EXCEEDED:
    case OT_GRPC_RESOURCE_EXHAUSTED:
    case OT_GRPC_ABORTED:
    case OT_GRPC_OUT_OF_RANGE:
    case OT_GRPC_UNAVAILABLE:
    case OT_GRPC_DATA_LOSS:
        return OT_RETRYABLE;
    default:
        return OT_PERMANENT;
    }
}

/* Jaeger answers 500 when its span queue is full ("Cannot submit Jaeger
 * batch"): every 5xx is worth another try, unlike the generic rule. */
static ot_status thrift_outcome(int status)
{
    if (status >= 200 && status < 300)
        return OT_OK;
    if (status == 429 || status == 408 || (status >= 500 && status < 600))
        return OT_RETRYABLE;
    return OT_PERMANENT;
}

/* One PostSpans call with msg (a PostSpansRequest) as its message. */
static void send_grpc(jg_exp *e, sender_ctx *x, const uint8_t *msg, size_t len, int64_t deadline_ns,
                      ot_send_result *out)
{
    ot_err err = {{0}};
    bool gz = e->c->compression == COMP_GZIP;
    if (gz) {
        if (ot_compress(&x->gz, OT_COMPRESS_GZIP, msg, len, &err) < 0) {
            out->status = OT_RETRYABLE;
            snprintf(out->msg, sizeof out->msg, "%s", err.msg);
            return;
        }
        msg = (const uint8_t *)x->gz.out.data;
        len = x->gz.out.len;
    }
    ot_grpc_reply r;
    memset(&r, 0, sizeof r);
    r.resp = &x->resp;
    ot_grpc_client_call(e->grpc, JG_POST_SPANS, msg, len, gz, deadline_ns, NULL, &r);
    out->status = grpc_outcome(r.code);
    if (out->status == OT_OK)
        return;
    if (out->status == OT_RETRYABLE && r.has_details && r.details.has_retry_info)
        out->retry_after_ns = r.details.retry_delay_ns;
    snprintf(out->msg, sizeof out->msg, "rpc error: %s: %s", ot_grpc_code_name(r.code),
             r.msg[0] ? r.msg : "(no message)");
}

/* Printable start of an error body, for the log. */
static void text_excerpt(const ot_buf *b, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < b->len && o + 1 < cap && o < 160; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* One POST with body (a Thrift Batch). */
static void send_thrift(jg_exp *e, sender_ctx *x, const uint8_t *body, size_t len,
                        int64_t deadline_ns, ot_send_result *out)
{
    static const char *const ct[] = {"Content-Type: application/x-thrift"};
    ot_http_request req = {
        .method = OT_HTTP_POST,
        .url = e->url,
        .headers = ct,
        .n_headers = 1,
        .body = (const char *)body,
        .body_len = len,
        .compression = OT_COMPRESS_NONE,
        .deadline_ns = deadline_ns,
        .max_body = RESP_KEEP,
    };
    ot_http_response r = {.body = &x->resp};
    if (ot_http_client_do(e->http, &req, &r) < 0) {
        out->status = r.permanent ? OT_PERMANENT : OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "%s", r.error);
        return;
    }
    out->status = thrift_outcome(r.status);
    if (out->status == OT_OK)
        return;
    char detail[200];
    text_excerpt(&x->resp, detail, sizeof detail);
    snprintf(out->msg, sizeof out->msg, "HTTP %d from %s%s%s", r.status, e->url,
             detail[0] ? ": " : "", detail);
    if (out->status == OT_RETRYABLE && r.has_retry_after)
        out->retry_after_ns = r.retry_after_ns;
}

static void send_body(jg_exp *e, sender_ctx *x, const uint8_t *body, size_t len,
                      int64_t deadline_ns, ot_send_result *out)
{
    if (e->grpc)
        send_grpc(e, x, body, len, deadline_ns, out);
    else
        send_thrift(e, x, body, len, deadline_ns, out);
}

/* The reference path, for the bytes the direct encoder leaves to it:
 * the batch decoded, translated to api_v2 structs, each Jaeger batch
 * encoded and sent in turn. */
static void send_structs(jg_exp *e, sender_ctx *x, ot_batch *b, int64_t deadline_ns,
                         ot_send_result *out)
{
    ot_err err = {{0}};
    ot_arena_reset(x->arena);
    ot_jaeger_out jo;
    const ot_trace_req *req = (const ot_trace_req *)ot_batch_msg(b, &err);
    if (!req) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "cannot decode the batch: %s", err.msg);
        return;
    }
    int rc = ot_jaeger_translate(req, x->arena, &jo, &err);
    out->status = OT_OK;
    for (size_t i = 0; rc == 0 && i < jo.n_batches && out->status == OT_OK; i++) {
        ot_buf_reset(&x->body);
        rc = e->grpc ? ot_jaeger_proto_pack(jo.batches[i], &x->body, &err)
                     : ot_jaeger_thrift_batch(jo.batches[i], &x->body, &err);
        if (rc == 0)
            send_body(e, x, (const uint8_t *)x->body.data, x->body.len, deadline_ns, out);
    }
    if (rc < 0) {
        out->status = OT_RETRYABLE; /* only out of memory */
        snprintf(out->msg, sizeof out->msg, "%s", err.msg);
    }
}

/* One attempt. After split_resources a batch holds one resource with
 * spans, so this is one call; the loop stops at the first failure so a
 * batch that still held several (none should) is at worst sent again
 * from its first resource. */
static void jg_send(void *self, ot_batch *b, int64_t deadline_ns, ot_send_result *out)
{
    jg_exp *e = self;
    ot_err err = {{0}};
    sender_ctx *x = ot_senders_borrow(&e->snd, out);
    if (!x)
        return;
    /* Queued batches are in wire form (queue_one): their bytes become
     * Jaeger's directly (direct.c); what that leaves goes through the
     * structs. */
    const uint8_t *wire = NULL;
    size_t wlen = 0;
    const ot_jaeger_body *bodies = NULL;
    size_t n = 0;
    ot_buf_reset(&x->body);
    int rc = ot_batch_wire(b, &wire, &wlen, &err) < 0
                 ? (wire = NULL, 1)
                 : ot_jaeger_encode_wire(x->enc, e->grpc == NULL, wire, wlen, &x->body, &bodies,
                                         &n, &err);
    if (rc == 1)
        send_structs(e, x, b, deadline_ns, out);
    else if (rc < 0) {
        out->status = OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "%s", err.msg);
    } else {
        out->status = OT_OK;
        for (size_t i = 0; i < n && out->status == OT_OK; i++)
            send_body(e, x, (const uint8_t *)x->body.data + bodies[i].off, bodies[i].len,
                      deadline_ns, out);
    }
    ot_senders_return(&e->snd, x);
}

/* ---- one queued batch per resource ------------------------------------- */

typedef struct split_ctx {
    ot_consumer *next;
    ot_err *err;
    ot_status st;
    ot_batch *b;         /* the batch being split */
    const uint8_t *wire; /* its bytes */
    ot_arena *arena;     /* the request being written, until a batch owns it */
} split_ctx;

/* Each request is written straight into the arena of the batch that will
 * queue it: one copy of the spans, not a scratch copy and another. */
static uint8_t *queue_dst(void *vctx, size_t n)
{
    split_ctx *c = vctx;
    ot_arena_free(c->arena);
    c->arena = ot_arena_new(n + 64);
    uint8_t *p = c->arena ? ot_arena_alloc(c->arena, n) : NULL;
    if (!p)
        c->st = OT_RETRYABLE; /* out of memory: the split says so */
    return p;
}

/* The batch stays in wire form: it is translated from its bytes by the
 * sender thread, and is a third of the decoded size while it waits. */
static int queue_one(void *vctx, const uint8_t *req, size_t len, size_t spans)
{
    split_ctx *c = vctx;
    if (spans == 0) /* a resource without spans gives no Jaeger batch */
        return 0;
    ot_batch *one;
    if (req == c->wire) /* one resource already: the batch as it is */
        one = ot_batch_ref(c->b);
    else {
        one = ot_batch_adopt_wire(OT_TRACES, c->arena, req, len, spans);
        c->arena = NULL; /* the batch's now, or freed */
        if (!one) {
            ot_err_set(c->err, "out of memory");
            c->st = OT_RETRYABLE;
            return 1;
        }
    }
    c->st = ot_consume(c->next, one, c->err);
    return c->st == OT_OK ? 0 : 1;
}

/* Hands b to the helper as one batch per distinct resource (split.c says
 * why). When the queue fills part way, what is already queued stays queued
 * and the caller gets OT_RETRYABLE: a sender that retries repeats those
 * resources (at least once), as any exporter's queue-full answer means. */
static ot_status split_resources(jg_exp *e, ot_batch *b, ot_err *err)
{
    ot_consumer *next = ot_exph_consumer(e->snd.exph, OT_TRACES);
    const uint8_t *wire;
    size_t len;
    if (ot_batch_wire(b, &wire, &len, err) < 0) {
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    split_ctx c = {next, err, OT_OK, b, wire, NULL};
    int rc = ot_jaeger_split_to(wire, len, queue_dst, queue_one, &c, err);
    ot_arena_free(c.arena);
    ot_batch_unref(b);
    if (rc < 0)
        return c.st != OT_OK ? c.st : OT_PERMANENT; /* bytes the receiver checked: not expected */
    return c.st;
}

static ot_status jg_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    jg_exp *e = (jg_exp *)self;
    if (!ot_senders_running(&e->snd, e->id, b, err))
        return OT_RETRYABLE;
    return split_resources(e, b, err);
}

static void jg_destroy(void *self);

static void *jg_create(const ot_create_params *p, ot_err *err)
{
    jg_exp *e = calloc(1, sizeof *e);
    if (!e || !(e->id = strdup(p->id))) {
        free(e);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    ot_senders_init(&e->snd, &ctx_ops);
    e->cons = (ot_consumer){jg_consume, false};
    e->host = p->host;
    const jg_cfg *c = p->config;
    e->c = c;
    if (c->protocol == PROTO_GRPC) {
        ot_grpc_client_cfg *g = &e->grpc_cfg;
        g->id = e->id;
        g->log_module = "jaeger";
        if (ot_grpc_target_parse(endpoint_of(c), c->tls.insecure, &g->target, err) < 0)
            goto fail;
        g->tls = &c->tls;
        g->metadata = &c->headers;
        g->num_connections = 1;
        g->balancer = OT_GRPC_ROUND_ROBIN;
        if (!(e->grpc = ot_grpc_client_new(g, err)))
            goto fail;
    } else {
        e->url = endpoint_of(c);
        /* The headers without the reserved ones (the client copies them). */
        size_t n = c->headers.n;
        const char **kv = calloc(2 * n + 1, sizeof *kv);
        if (!kv) {
            ot_err_set(err, "out of memory");
            goto fail;
        }
        ot_strmap sent = {kv, kv + n, 0};
        for (size_t i = 0; i < n; i++)
            if (!thrift_reserved(c->headers.keys[i])) {
                sent.keys[sent.n] = c->headers.keys[i];
                sent.vals[sent.n++] = c->headers.vals[i];
            }
        ot_http_client_cfg hc = {.id = e->id, .tls = &c->tls, .headers = &sent};
        e->http = ot_http_client_new(&hc, err);
        free(kv);
        if (!e->http)
            goto fail;
    }
    return e;
fail:
    jg_destroy(e);
    return NULL;
}

static int jg_start(void *self, ot_err *err)
{
    jg_exp *e = self;
    if (e->grpc && ot_grpc_client_start(e->grpc, err) < 0)
        return -1;
    ot_segment_log *log = NULL; /* the helper's from here on */
    if (ot_host_open_queue(e->host, e->c->helper.queue.storage, e->id, &log, err) < 0)
        return -1;
    /* Made here, not at create: the persistent queue opens only once its
     * extension has started (receivers start after exporters). */
    if (ot_senders_start(&e->snd, e->id, &e->c->helper, jg_send, e, log, err) < 0)
        return -1;
    if (e->grpc)
        ot_info("jaeger", "exporting", "exporter=%s protocol=grpc endpoint=%s tls=%s compression=%s",
                e->id, e->grpc_cfg.target.authority, e->grpc_cfg.target.tls ? "true" : "false",
                compressions[e->c->compression]);
    else
        ot_info("jaeger", "exporting", "exporter=%s protocol=thrift_http url=%s", e->id, e->url);
    return 0;
}

static void jg_shutdown(void *self, int64_t deadline_ns)
{
    jg_exp *e = self;
    ot_senders_shutdown(&e->snd, deadline_ns);
    if (e->grpc)
        ot_grpc_client_stop(e->grpc);
}

static void jg_destroy(void *self)
{
    jg_exp *e = self;
    if (!e)
        return;
    ot_senders_fini(&e->snd);
    ot_grpc_client_free(e->grpc);
    ot_http_client_free(e->http);
    free(e->id);
    free(e);
}

static ot_consumer *jg_consumer_for(void *self, ot_signal s)
{
    return s == OT_TRACES ? &((jg_exp *)self)->cons : NULL;
}

const ot_factory ot_jaeger_exporter = {
    .type = "jaeger",
    .kind = OT_EXPORTER,
    .signals = OT_SIGBIT(OT_TRACES),
    .help = "sends traces to a Jaeger v1 collector: api_v2 gRPC or Thrift over HTTP",
    .keys = jg_keys,
    .config_size = sizeof(jg_cfg),
    .validate = jg_validate,
    .create = jg_create,
    .start = jg_start,
    .shutdown = jg_shutdown,
    .destroy = jg_destroy,
    .consumer = jg_consumer_for,
};
