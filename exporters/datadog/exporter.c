/* exporter.c: the `datadog` exporter as a component. Metrics, logs and
 * traces go through one exporter helper (queue, senders, retry, persistent
 * queue); a sender thread translates a batch into items (series.c,
 * sketch.c, logs.c, traces.c) and payload.c cuts them into requests under
 * the intake's limits. Metrics pass delta.c first, on the thread that
 * hands the batch over, so what is queued and retried already holds
 * deltas. The API key goes in the DD-API-KEY header of every request and
 * nowhere else: not in a log line, not in an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "dd.h"
#include "export/senders.h"
#include "net/http_client.h"
#include "pipeline/factory.h"

#define RESP_KEEP (8u << 10)
/* Bounds of the delta state: a stream costs ~100-300 bytes with its
 * identity, so these keep it well inside the agent's 64 MiB. */
#define DELTA_MAX_STREAMS 100000
#define DELTA_MAX_BYTES (8u << 20)
#define DELTA_MAX_IDLE (3600ll * 1000000000ll)

/* What one sender thread reuses from batch to batch (senders.h). */
typedef struct sender_ctx {
    ot_arena *arena; /* resources and scopes of a batch; the decoded path */
    ot_arena *chunk; /* one leaf at a time */
    dd_items a, b;
    ot_buf body;
    ot_compressor comp;
    ot_buf resp;
} sender_ctx;

typedef struct dd_exp {
    ot_consumer cons[OT_SIGNAL_COUNT];
    char *id;
    const dd_cfg *c;
    ot_host *host;
    ot_senders snd;
    ot_http_client *http;
    dd_delta *delta;
    dd_urls urls;
    dd_opts opts;
    char hostname[256];
    char *key_header;
    ot_compression how;
    ot_counter *requests[DD_KIND_COUNT];
    ot_counter *splits, *dropped_items;
} dd_exp;

static int ctx_init(void *vx)
{
    sender_ctx *x = vx;
    return (x->arena = ot_arena_new(64u << 10)) && (x->chunk = ot_arena_new(16u << 10)) ? 0 : -1;
}

static void ctx_fini(void *vx)
{
    sender_ctx *x = vx;
    ot_arena_free(x->arena);
    ot_arena_free(x->chunk);
    dd_items_free(&x->a);
    dd_items_free(&x->b);
    ot_buf_free(&x->body);
    ot_compressor_free(&x->comp);
    ot_buf_free(&x->resp);
}

/* A rare huge batch should not pin its memory for good. */
static bool ctx_trim(void *vx)
{
    const sender_ctx *x = vx;
    return !(ot_arena_reserved(x->arena) > (16u << 20) || ot_arena_reserved(x->chunk) > (4u << 20) ||
             x->a.data.cap > (16u << 20) || x->b.data.cap > (16u << 20) ||
             x->body.cap > (16u << 20));
}

static const ot_senders_ops ctx_ops = {sizeof(sender_ctx), ctx_init, ctx_fini, ctx_trim};

/* ---- one request ------------------------------------------------------------ */

typedef struct post_ctx {
    dd_exp *e;
    sender_ctx *x;
    int64_t deadline_ns;
} post_ctx;

static const char *url_of(dd_exp *e, dd_kind k)
{
    switch (k) {
    case DD_SERIES:
        return e->urls.series;
    case DD_SKETCHES:
        return e->urls.sketches;
    case DD_LOGS:
        return e->urls.logs;
    default:
        return e->urls.traces;
    }
}

static void text_excerpt(const ot_buf *b, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < b->len && o + 1 < cap && o < 160; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    out[o] = '\0';
}

static void post(void *vctx, dd_kind k, const uint8_t *body, size_t len, ot_compression coding,
                 size_t items, dd_post_result *r)
{
    post_ctx *pc = vctx;
    dd_exp *e = pc->e;
    static const char *const types[] = {"Content-Type: application/json",
                                        "Content-Type: application/x-protobuf",
                                        "Content-Type: application/json",
                                        "Content-Type: application/msgpack"};
    char count[64], coding_line[64];
    const char *h[6];
    size_t n = 0;
    h[n++] = types[k];
    if (e->key_header)
        h[n++] = e->key_header;
    if (coding != OT_COMPRESS_NONE) {
        snprintf(coding_line, sizeof coding_line, "Content-Encoding: %s",
                 ot_compression_name(coding));
        h[n++] = coding_line;
    }
    if (k == DD_TRACES) {
        snprintf(count, sizeof count, "X-Datadog-Trace-Count: %zu", items);
        h[n++] = count;
        h[n++] = "Datadog-Meta-Lang: otlp";
    }
    const char *url = url_of(e, k);
    ot_http_request req = {
        .method = OT_HTTP_POST,
        .url = url,
        .headers = h,
        .n_headers = n,
        .body = body,
        .body_len = len,
        .compression = OT_COMPRESS_NONE, /* compressed by payload.c, to measure it */
        .deadline_ns = pc->deadline_ns,
        .max_body = RESP_KEEP,
    };
    ot_http_response resp = {.body = &pc->x->resp};
    ot_counter_add(e->requests[k], 1);
    if (ot_http_client_do(e->http, &req, &resp) < 0) {
        r->status = 0;
        r->permanent = resp.permanent;
        snprintf(r->msg, sizeof r->msg, "%s", resp.error);
        return;
    }
    r->status = resp.status;
    if (resp.has_retry_after)
        r->retry_after_ns = resp.retry_after_ns;
    if (resp.status < 200 || resp.status >= 300) {
        char detail[200];
        text_excerpt(&pc->x->resp, detail, sizeof detail);
        snprintf(r->msg, sizeof r->msg, "HTTP %d from %s%s%s", resp.status, url,
                 detail[0] ? ": " : "", detail);
    }
}

static void send_kind(dd_exp *e, post_ctx *pc, dd_kind k, const dd_items *it, ot_send_result *out)
{
    if (!it->n || out->status != OT_OK)
        return;
    dd_send_stats st = {0};
    ot_compression how = k == DD_TRACES ? OT_COMPRESS_NONE : e->how;
    dd_send_items(k, it, &dd_default_limits[k], how, &pc->x->comp, &pc->x->body, post, pc, out,
                  &st);
    ot_counter_add(e->splits, st.splits);
    ot_counter_add(e->dropped_items, st.dropped_items);
}

/* One list's streaming: what has been encoded goes out when it is about a
 * request's worth. */
typedef struct stream {
    dd_exp *e;
    post_ctx *pc;
    dd_kind k;
    ot_send_result *out;
} stream;

static int flush_items(void *vctx, dd_items *it)
{
    stream *s = vctx;
    send_kind(s->e, s->pc, s->k, it, s->out);
    dd_items_clear(it);
    return s->out->status != OT_OK;
}

static void stream_to(dd_items *it, stream *s, dd_exp *e, post_ctx *pc, dd_kind k,
                      ot_send_result *out)
{
    *s = (stream){e, pc, k, out};
    const dd_limits *lim = &dd_default_limits[k];
    it->flush = flush_items;
    it->flush_ctx = s;
    /* A request's worth: under the raw limit, and for series and sketches
     * about what compresses under 512 KB, so most flushes are one request
     * and a sender holds a few MB of items, not a batch's. */
    it->flush_at = k == DD_SERIES || k == DD_SKETCHES ? (2u << 20) : lim->max_raw - lim->max_raw / 8;
    it->flush_items = lim->max_items ? lim->max_items : SIZE_MAX;
}

/* One attempt at a batch. A batch that takes several requests and fails
 * part way is retried whole: what went before is sent again (Datadog
 * counts a count series twice then; the cut is by the intake's limits, so
 * it happens only to batches over about 4 MB or 1000 log records). */
/* The items of a batch into the streaming lists: from its bytes one leaf
 * at a time (wire.c), or, when that walk declines or the batch has no
 * bytes, from the decoded request. */
static int encode(dd_exp *e, sender_ctx *x, ot_batch *b, ot_err *err)
{
    const uint8_t *w;
    size_t wl;
    int rc = 1;
    if (b->wire) {
        if (ot_batch_wire(b, &w, &wl, err) < 0)
            return -1;
        if (b->signal == OT_METRICS)
            rc = dd_series_encode_wire(w, wl, &e->opts, &x->a, &x->b, x->arena, x->chunk, err);
        else if (b->signal == OT_LOGS)
            rc = dd_logs_encode_wire(w, wl, &e->opts, &x->a, x->arena, x->chunk, err);
        else
            rc = dd_traces_encode_wire(w, wl, &e->opts, &x->a, x->arena, x->chunk, err);
        if (rc != 1)
            return rc;
        ot_arena_reset(x->arena);
    }
    const ProtobufCMessage *m = ot_batch_msg(b, err);
    if (!m)
        return -2;
    if (b->signal == OT_METRICS)
        return dd_series_encode((const ot_metrics_req *)m, &e->opts, &x->a, &x->b, x->arena, err);
    if (b->signal == OT_LOGS)
        return dd_logs_encode((const ot_logs_req *)m, &e->opts, &x->a, err);
    return dd_traces_encode((const ot_trace_req *)m, &e->opts, &x->a, x->arena, err);
}

/* One attempt at a batch. Batches are queued in pieces of about one
 * request (queue_cut), so a retry rarely repeats a request that went: only
 * when a piece still needs two (a few very large items). */
static void dd_send(void *self, ot_batch *b, int64_t deadline_ns, ot_send_result *out)
{
    dd_exp *e = self;
    ot_err err = {{0}};
    sender_ctx *x = ot_senders_borrow(&e->snd, out);
    if (!x)
        return;
    ot_arena_reset(x->arena);
    ot_arena_reset(x->chunk);
    dd_items_reset(&x->a);
    dd_items_reset(&x->b);
    post_ctx pc = {e, x, deadline_ns};
    stream sa, sb;
    out->status = OT_OK;
    dd_kind ka = b->signal == OT_METRICS ? DD_SERIES : b->signal == OT_LOGS ? DD_LOGS : DD_TRACES;
    stream_to(&x->a, &sa, e, &pc, ka, out);
    stream_to(&x->b, &sb, e, &pc, DD_SKETCHES, out);
    int rc = encode(e, x, b, &err);
    if (rc == 0) {
        send_kind(e, &pc, ka, &x->a, out);
        send_kind(e, &pc, DD_SKETCHES, &x->b, out);
    } else if (rc == -2) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "cannot decode the batch: %s", err.msg);
    } else if (!x->a.stopped && !x->b.stopped) {
        out->status = OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "%s", err.msg);
    }
    x->a.flush = x->b.flush = NULL;
    ot_senders_return(&e->snd, x);
}

/* ---- the pipeline's side ------------------------------------------------------ */

/* The batch with cumulative data made deltas (delta.c), as bytes: one
 * metric at a time from the batch's bytes, or decoded whole when that walk
 * declines. NULL when nothing is left to send (err empty) or on failure
 * (err set); b is consumed either way. */
static ot_batch *deltas(dd_exp *e, ot_batch *b, ot_err *err)
{
    int mode = e->c->metrics.sums.cumulative_monotonic_mode;
    err->msg[0] = '\0'; /* what tells "nothing left" from a failure */
    const uint8_t *w;
    size_t wl;
    if (b->wire && ot_batch_wire(b, &w, &wl, err) == 0) {
        ot_arena *scratch = ot_arena_new(16u << 10);
        ot_buf out = OT_BUF_INIT;
        size_t points = 0;
        int rc = scratch ? dd_delta_apply_wire(e->delta, w, wl, mode, ot_now_ns(), scratch, &out,
                                               &points, err)
                         : ot_err_set(err, "out of memory");
        ot_arena_free(scratch);
        if (rc != 1) {
            ot_batch_unref(b);
            ot_batch *nb = rc == 0 && points ? ot_batch_from_wire(OT_METRICS, out.data, out.len,
                                                                  points, err)
                                             : NULL;
            ot_buf_free(&out);
            if (rc == 0 && !points)
                err->msg[0] = '\0';
            else if (!nb && !err->msg[0])
                ot_err_set(err, "out of memory");
            return nb;
        }
        ot_buf_free(&out);
    }
    /* deltas are taken from a copy this exporter owns: other exporters
     * of the pipeline may read the same batch */
    if (!(b = ot_batch_writable(b, err)))
        return NULL;
    ot_metrics_req *req = (ot_metrics_req *)ot_batch_msg_mut(b, err);
    long left = req ? dd_delta_apply(e->delta, req, mode, ot_now_ns()) : -1;
    if (left <= 0) {
        ot_batch_unref(b);
        if (left == 0)
            err->msg[0] = '\0';
        else if (!err->msg[0])
            ot_err_set(err, "out of memory");
        return NULL;
    }
    ot_batch_recount(b);
    /* What waits in the queue is the bytes again: a seventh of the
     * decoded structs, which the sender reads one metric at a time. */
    ot_batch *nb = ot_batch_wire(b, &w, &wl, err) < 0
                       ? NULL
                       : ot_batch_from_wire(OT_METRICS, w, wl, b->items, err);
    ot_batch_unref(b);
    return nb;
}

/* How much of a batch one queued piece holds: about one request's worth
 * (OTLP bytes are about half the size of what they become), so a retry
 * repeats one request, not the requests of a batch that went before. */
static const struct { size_t leaves, bytes; } piece_max[OT_SIGNAL_COUNT] = {
    [OT_TRACES] = {SIZE_MAX, 1u << 20},
    [OT_METRICS] = {SIZE_MAX, 512u << 10},
    [OT_LOGS] = {1000, 1536u << 10},
};

typedef struct queue_ctx {
    ot_consumer *next;
    ot_signal s;
    ot_status st;
    ot_err *err;
} queue_ctx;

static int queue_piece(void *vctx, const uint8_t *req, size_t len, size_t items)
{
    queue_ctx *q = vctx;
    if (!items)
        return 0;
    ot_batch *one = ot_batch_from_wire(q->s, req, len, items, q->err);
    if (!one) {
        q->st = OT_RETRYABLE;
        return 1;
    }
    q->st = ot_consume(q->next, one, q->err);
    return q->st == OT_OK ? 0 : 1;
}

/* Queues b, cut into pieces when it is bigger than one. When the queue
 * fills part way, what is queued stays queued and the caller hears
 * OT_RETRYABLE: a client that retries repeats those pieces (at least
 * once), as any exporter's queue-full answer means. */
static ot_status queue_cut(dd_exp *e, ot_signal s, ot_batch *b, ot_err *err)
{
    ot_consumer *next = ot_exph_consumer(e->snd.exph, s);
    const uint8_t *w;
    size_t wl;
    bool small = b->items <= piece_max[s].leaves &&
                 (b->wire ? b->wire_len <= piece_max[s].bytes
                          : ot_batch_bytes(b) <= 4 * piece_max[s].bytes);
    if (small || ot_batch_wire(b, &w, &wl, err) < 0 ||
        (wl <= piece_max[s].bytes && b->items <= piece_max[s].leaves))
        return ot_consume(next, b, err);
    queue_ctx q = {next, s, OT_OK, err};
    int rc = dd_wire_split(s, w, wl, piece_max[s].leaves, piece_max[s].bytes, queue_piece, &q, err);
    ot_batch_unref(b);
    return rc < 0 ? OT_PERMANENT : q.st;
}

static ot_status consume_signal(dd_exp *e, ot_signal s, ot_batch *b, ot_err *err)
{
    if (!ot_senders_running(&e->snd, e->id, b, err))
        return OT_RETRYABLE;
    if (s == OT_METRICS && !(b = deltas(e, b, err)))
        return err->msg[0] ? OT_RETRYABLE : OT_OK;
    return queue_cut(e, s, b, err);
}

static ot_status consume_traces(ot_consumer *self, ot_batch *b, ot_err *err)
{
    dd_exp *e = (dd_exp *)((char *)self - offsetof(dd_exp, cons[OT_TRACES]));
    return consume_signal(e, OT_TRACES, b, err);
}

static ot_status consume_metrics(ot_consumer *self, ot_batch *b, ot_err *err)
{
    dd_exp *e = (dd_exp *)((char *)self - offsetof(dd_exp, cons[OT_METRICS]));
    return consume_signal(e, OT_METRICS, b, err);
}

static ot_status consume_logs(ot_consumer *self, ot_batch *b, ot_err *err)
{
    dd_exp *e = (dd_exp *)((char *)self - offsetof(dd_exp, cons[OT_LOGS]));
    return consume_signal(e, OT_LOGS, b, err);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void dd_destroy(void *self);

static void *dd_create(const ot_create_params *p, ot_err *err)
{
    dd_exp *e = calloc(1, sizeof *e);
    if (!e || !(e->id = strdup(p->id))) {
        free(e);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    ot_senders_init(&e->snd, &ctx_ops);
    /* the metrics consumer changes its copy of a batch: it says so */
    e->cons[OT_TRACES] = (ot_consumer){consume_traces, false};
    e->cons[OT_METRICS] = (ot_consumer){consume_metrics, false};
    e->cons[OT_LOGS] = (ot_consumer){consume_logs, false};
    e->host = p->host;
    const dd_cfg *c = p->config;
    e->c = c;
    dd_urls_make(c, &e->urls);
    if (c->hostname && *c->hostname) {
        snprintf(e->hostname, sizeof e->hostname, "%s", c->hostname);
    } else if (gethostname(e->hostname, sizeof e->hostname - 1) < 0) {
        snprintf(e->hostname, sizeof e->hostname, "localhost");
    }
    e->opts.hostname = e->hostname;
    e->opts.hist_mode = c->metrics.histograms.mode;
    e->opts.sums_mode = c->metrics.sums.cumulative_monotonic_mode;
    e->opts.summary_mode = c->metrics.summaries.mode;
    e->how = c->compression == DD_COMP_ZSTD   ? OT_COMPRESS_ZSTD
             : c->compression == DD_COMP_NONE ? OT_COMPRESS_NONE
                                              : OT_COMPRESS_GZIP;
    char labels[300];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", e->id);
    e->opts.dropped_nan = ot_tel_counter("otelite_datadog_dropped_points_total",
                                         "metric points not sent: NaN or infinite values", labels);
    e->splits = ot_tel_counter("otelite_datadog_payload_splits_total",
                               "requests halved: over the compressed limit or refused with 413",
                               labels);
    e->dropped_items = ot_tel_counter("otelite_datadog_dropped_items_total",
                                      "single items the intake refused as too large (413)", labels);
    static const char *const kinds[] = {"series", "sketches", "logs", "traces"};
    for (int k = 0; k < DD_KIND_COUNT; k++) {
        snprintf(labels, sizeof labels, "exporter=\"%s\",endpoint=\"%s\"", e->id, kinds[k]);
        e->requests[k] = ot_tel_counter("otelite_datadog_requests_total",
                                        "requests made to the Datadog intake", labels);
    }
    if (c->api.key && *c->api.key) {
        size_t n = strlen(c->api.key) + 16;
        if (!(e->key_header = malloc(n))) {
            ot_err_set(err, "out of memory");
            goto fail;
        }
        snprintf(e->key_header, n, "DD-API-KEY: %s", c->api.key);
    }
    if (!(e->delta = dd_delta_new(DELTA_MAX_STREAMS, DELTA_MAX_BYTES, DELTA_MAX_IDLE, err)))
        goto fail;
    snprintf(labels, sizeof labels, "exporter=\"%s\"", e->id);
    dd_delta_count_refused(
        e->delta, ot_tel_counter("otelite_datadog_delta_refused_points_total",
                                 "cumulative points not sent: their stream did not fit the "
                                 "delta state (100000 streams, 8 MiB)",
                                 labels));
    ot_http_client_cfg hc = {.id = e->id, .tls = &c->tls};
    if (!(e->http = ot_http_client_new(&hc, err)))
        goto fail;
    return e;
fail:
    dd_destroy(e);
    return NULL;
}

/* GET /api/v1/validate: 403 is a refused key; anything else (no answer, a
 * compatible backend without the path) is not the key's fault. */
static int check_key(dd_exp *e, ot_err *err)
{
    const char *h[1] = {e->key_header};
    ot_buf body = OT_BUF_INIT;
    ot_http_request req = {.method = OT_HTTP_GET, .url = e->urls.validate, .headers = h,
                           .n_headers = e->key_header ? 1 : 0,
                           .deadline_ns = ot_now_ns() + 10000000000ll, .max_body = 4096};
    ot_http_response r = {.body = &body};
    int rc = ot_http_client_do(e->http, &req, &r);
    ot_buf_free(&body);
    if (rc < 0) {
        ot_warn("datadog", "cannot check the API key", "exporter=%s error=\"%s\"", e->id, r.error);
        return 0;
    }
    if (r.status == 403 || r.status == 401)
        return ot_err_set(err, "the Datadog API key was refused (HTTP %d from %s): check api.key "
                               "and api.site",
                          r.status, e->urls.validate);
    return 0;
}

static int dd_start(void *self, ot_err *err)
{
    dd_exp *e = self;
    if (e->c->api.fail_on_invalid_key && check_key(e, err) < 0)
        return -1;
    ot_segment_log *log = NULL; /* the helper's from here on */
    if (ot_host_open_queue(e->host, e->c->helper.queue.storage, e->id, &log, err) < 0)
        return -1;
    if (ot_senders_start(&e->snd, e->id, &e->c->helper, dd_send, e, log, err) < 0)
        return -1;
    ot_info("datadog", "exporting", "exporter=%s series=%s logs=%s traces=%s compression=%s",
            e->id, e->urls.series, e->urls.logs, e->urls.traces, ot_compression_name(e->how));
    return 0;
}

static void dd_shutdown(void *self, int64_t deadline_ns)
{
    ot_senders_shutdown(&((dd_exp *)self)->snd, deadline_ns);
}

static void dd_destroy(void *self)
{
    dd_exp *e = self;
    if (!e)
        return;
    ot_senders_fini(&e->snd);
    ot_http_client_free(e->http);
    dd_delta_free(e->delta);
    free(e->key_header);
    free(e->id);
    free(e);
}

static ot_consumer *dd_consumer_for(void *self, ot_signal s)
{
    return &((dd_exp *)self)->cons[s];
}

const ot_factory ot_datadog_exporter = {
    .type = "datadog",
    .kind = OT_EXPORTER,
    .signals = OT_SIG_ALL,
    .help = "sends metrics (series, sketches), logs and traces to Datadog or a Datadog-compatible "
            "endpoint",
    .keys = dd_keys,
    .config_size = sizeof(dd_cfg),
    .validate = dd_validate,
    .create = dd_create,
    .start = dd_start,
    .shutdown = dd_shutdown,
    .destroy = dd_destroy,
    .consumer = dd_consumer_for,
};
