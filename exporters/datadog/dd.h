/* dd.h: the parts of the datadog exporter shared by its files and its unit
 * tests. The exporter turns OTLP into Datadog's intake formats: metrics as
 * /api/v2/series JSON (series.c) and /api/beta/sketches protobuf (sketch.c,
 * ddsketch.c), logs as /api/v2/logs JSON (logs.c), traces as trace-agent
 * /v0.4/traces msgpack (traces.c). Each encoder writes a list of items (one
 * series, sketch, log or trace each) so that payload.c can cut them into
 * requests under the intake's limits and split again on a 413. delta.c
 * turns cumulative data into deltas before a batch is queued, so a retried
 * batch sends the same deltas; exporter.c is the component. */
#ifndef DD_H
#define DD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/compress.h"
#include "base/err.h"
#include "config/config.h"
#include "export/exphelper.h"
#include "model/otlp.h"
#include "net/tls.h"
#include "store/mstore.h"
#include "telemetry/telemetry.h"

/* ---- configuration (config.c) ------------------------------------------- */

enum { DD_HIST_DISTRIBUTIONS = 0, DD_HIST_COUNTERS = 1, DD_HIST_NOBUCKETS = 2 };
enum { DD_SUMS_TO_DELTA = 0, DD_SUMS_RAW = 1 };
enum { DD_SUMMARY_GAUGES = 0, DD_SUMMARY_NOQUANTILES = 1 };
enum { DD_COMP_GZIP = 0, DD_COMP_ZSTD = 1, DD_COMP_NONE = 2 };

typedef struct dd_api_cfg {
    const char *key;
    const char *site;
    bool fail_on_invalid_key;
} dd_api_cfg;

typedef struct dd_metrics_cfg {
    const char *endpoint;
    struct { int mode; } histograms;
    struct { int cumulative_monotonic_mode; } sums;
    struct { int mode; } summaries;
} dd_metrics_cfg;

typedef struct dd_endpoint_cfg {
    const char *endpoint;
} dd_endpoint_cfg;

typedef struct dd_cfg {
    dd_api_cfg api;
    dd_metrics_cfg metrics;
    dd_endpoint_cfg logs;
    dd_endpoint_cfg traces;
    const char *hostname;
    int compression;
    ot_tls_client tls;
    ot_exph_config helper;
} dd_cfg;

extern const ot_key dd_keys[];
extern const char *const dd_sites[];
void dd_validate(const void *cfg, const ot_node *node, const char *path, ot_diags *d);

/* The URLs the exporter posts to, from the endpoints or the site. */
typedef struct dd_urls {
    char series[512], sketches[512], validate[512], logs[512], traces[512];
} dd_urls;
void dd_urls_make(const dd_cfg *c, dd_urls *u);

/* ---- what every encoder shares (tags.c) --------------------------------- */

/* What the encoders need from the configuration, plus the counters they
 * add to. */
typedef struct dd_opts {
    const char *hostname; /* of data whose resource names none: the key, else the machine's */
    int hist_mode, sums_mode, summary_mode;
    ot_counter *dropped_nan; /* points with NaN or infinite values */
    int64_t now_s; /* the time of data without one; 0: the clock's (tests fix it) */
} dd_opts;

/* A list of items in one buffer: item i is data[end[i-1], end[i]).
 * Streaming: with flush set, once flush_at bytes or flush_items items are
 * closed, flush(flush_ctx, it) sends them and empties the list, so a
 * sender holds one request's worth of items, not a whole batch's; a
 * nonzero answer sets stopped and makes dd_items_close fail, which ends
 * the encoding (the caller then reads stopped, not "out of memory"). */
typedef struct dd_items {
    ot_buf data;
    size_t *end;
    size_t n, cap;
    size_t points; /* what the items carry, for counters and tests */
    int (*flush)(void *ctx, struct dd_items *it);
    void *flush_ctx;
    size_t flush_at, flush_items;
    bool stopped;
} dd_items;

void dd_items_reset(dd_items *it);
/* Empties the list, keeping points and the flush settings. */
void dd_items_clear(dd_items *it);
void dd_items_free(dd_items *it);
/* Closes the item written since the last one. -1 on out of memory. */
int dd_items_close(dd_items *it);
/* Drops what was written since the last closed item. */
void dd_items_abandon(dd_items *it);
static inline size_t dd_item_start(const dd_items *it, size_t i)
{
    return i ? it->end[i - 1] : 0;
}

/* Tags as "key:value" strings, kept in one buffer. */
typedef struct dd_tags {
    ot_buf text;
    size_t *end;
    size_t n, cap;
} dd_tags;

void dd_tags_reset(dd_tags *t);
void dd_tags_free(dd_tags *t);
/* Adds "key:value" (value may be NULL: "key" alone). */
int dd_tags_add(dd_tags *t, const char *key, size_t klen, const char *val, size_t vlen);
int dd_tags_add_attrs(dd_tags *t, ot_keyvalue *const *kv, size_t n);
/* Truncates to n tags (drops what a point added to the resource's). */
void dd_tags_truncate(dd_tags *t, size_t n);
static inline const char *dd_tag(const dd_tags *t, size_t i, size_t *len)
{
    size_t s = i ? t->end[i - 1] : 0;
    *len = t->end[i] - s;
    return t->text.data + s;
}

/* The unified service attributes and host of one resource. */
typedef struct dd_res {
    const char *host;
    const char *service, *env, *version; /* NULL when absent */
    dd_tags tags; /* env:, service:, version:, then the other attributes */
} dd_res;

/* Fills r from res (NULL: no attributes); strings point into res or opts.
 * -1 on out of memory. */
int dd_res_load(dd_res *r, const ot_resource *res, const dd_opts *o);
void dd_res_free(dd_res *r);

/* The value as text: strings as they are, numbers and booleans as JSON
 * writes them, arrays and maps as JSON. */
void dd_value_text(ot_buf *out, const ot_anyvalue *v);
/* An integer in decimal (printf is a tenth of a series' cost). */
void dd_put_int(ot_buf *out, int64_t v);
void dd_put_uint(ot_buf *out, uint64_t v);
/* A double as the shortest JSON number that reads back the same. */
void dd_json_double(ot_buf *out, double v);
/* The string value of key in kv, or NULL. */
const char *dd_attr_str(ot_keyvalue *const *kv, size_t n, const char *key);
/* Low 64 bits (bytes 8-15, big-endian) of a 16-byte trace id, or of an
 * 8-byte span id; 0 for any other length. */
uint64_t dd_id64(const ProtobufCBinaryData *id, bool high);

/* ---- metrics ------------------------------------------------------------- */

/* Points of a metrics request as series items (series.c) and, for
 * histograms in distributions mode, sketch items (sketch.c). The request
 * has been through dd_delta_apply (cumulative data already deltas).
 * scratch: the caller's arena for the sketches' structs. */
int dd_series_encode(const ot_metrics_req *req, const dd_opts *o, dd_items *series,
                     dd_items *sketches, ot_arena *scratch, ot_err *err);

/* A DDSketch in Datadog's mapping: bins of relative accuracy 1/128. */
typedef struct dd_sketch {
    int16_t *k;
    uint32_t *n;
    size_t nbins, cap;
    int64_t cnt;
    double min, max, sum;
    bool unsorted; /* a key came below the one before it: finish sorts */
} dd_sketch;

/* The key of a value (ddsketch.c) and the lower bound of a key's bin. */
int16_t dd_sketch_key(double v);
double dd_sketch_lower(int16_t k);
/* Adds count values spread over [lo, hi] (lo == hi: all at one key). */
int dd_sketch_add_range(dd_sketch *s, double lo, double hi, uint64_t count);
/* Sorts and merges the bins, caps them at 4096 (merging the lowest). */
int dd_sketch_finish(dd_sketch *s);
void dd_sketch_reset(dd_sketch *s);
void dd_sketch_free(dd_sketch *s);
/* From an OTLP point; count, sum, min and max are the point's own (min
 * and max estimated from the buckets when the point has none). */
int dd_sketch_from_hist(dd_sketch *s, const ot_histogram_point *p);
int dd_sketch_from_exphist(dd_sketch *s, const ot_exphistogram_point *p);
/* A rank query on the bins (tests): the value at quantile q. */
double dd_sketch_quantile(const dd_sketch *s, double q);

/* One Sketch message (field 1 of SketchPayload, tag and length included)
 * appended to items as an item. */
int dd_sketch_item(dd_items *items, const char *metric, const char *host, const dd_tags *tags,
                   int64_t ts_s, const dd_sketch *s, ot_arena *scratch, ot_err *err);

/* ---- cumulative to delta (delta.c) --------------------------------------- */

/* Summary points whose count and sum are deltas carry this flag after
 * dd_delta_apply; DD_FLAG_NO_DELTA marks a first point (no count or sum to
 * send yet). Bits OTLP does not define, so they survive the queue. */
#define DD_FLAG_DELTA (1u << 30)
#define DD_FLAG_NO_DELTA (1u << 29)

typedef struct dd_delta dd_delta;
/* Streams over max_streams or max_bytes (0: no cap) are not kept: their
 * cumulative points are dropped (no delta can be made), and counted by the
 * store. Idle streams go after max_idle_ns (0: never). */
dd_delta *dd_delta_new(size_t max_streams, size_t max_bytes, int64_t max_idle_ns, ot_err *err);
/* Adds one to c for each point of a stream the caps kept out. */
void dd_delta_count_refused(dd_delta *d, ot_counter *c);
void dd_delta_free(dd_delta *d);
/* Rewrites req in place: cumulative monotonic sums (to_delta mode),
 * cumulative histograms and exponential histograms become deltas against
 * the previous point of their stream; the first point of a stream, and a
 * point whose stream restarted (start time moved, a value went down,
 * buckets changed), is kept as the new base and not sent. Summaries get
 * DD_FLAG_DELTA. Points and metrics left empty are removed. Thread-safe
 * (one lock). Returns the points left, -1 on out of memory. */
long dd_delta_apply(dd_delta *d, ot_metrics_req *req, int sums_mode, int64_t now_ns);
/* The same on a request's bytes, one metric at a time (wire.c rewrites
 * the request): the new request in out, its points in *points. 1 when
 * the walk declines (use dd_delta_apply), -1 with err. */
int dd_delta_apply_wire(dd_delta *d, const uint8_t *wire, size_t len, int sums_mode,
                        int64_t now_ns, ot_arena *scratch, ot_buf *out, size_t *points,
                        ot_err *err);

/* ---- logs and traces ----------------------------------------------------- */

#define DD_LOG_MAX_BYTES (1000u * 1000u) /* one log entry; its message is cut to fit */

int dd_logs_encode(const ot_logs_req *req, const dd_opts *o, dd_items *logs, ot_err *err);
/* Traces: one item per trace id (a msgpack array of its spans). */
int dd_traces_encode(const ot_trace_req *req, const dd_opts *o, dd_items *traces,
                     ot_arena *scratch, ot_err *err);

/* ---- leaf by leaf, from the bytes (wire.c) ------------------------------- */

/* Calls fn for every leaf (Span, Metric, LogRecord: field 2 of each
 * Scope<X>) of a request's bytes, in order, with its resource (res_index
 * counts the Resource<X> entries) and scope decoded into keep (NULL when
 * absent). fn returns 0 to go on, nonzero to stop. Returns 0 when done;
 * 1, with fn never called, when the bytes hold what only a full decode
 * merges exactly (a resource or scope written twice); 2 when fn stopped
 * it; -1 with err when the bytes do not parse. */
typedef int (*dd_leaf_fn)(void *ctx, const ot_resource *res, size_t res_index,
                          const ot_scope *scope, const uint8_t *leaf, size_t len);
int dd_wire_leaves(ot_signal s, const uint8_t *wire, size_t len, ot_arena *keep, dd_leaf_fn fn,
                   void *ctx, ot_err *err);
/* A request's bytes again with each leaf as fn rewrites it: fn appends
 * the leaf's new bytes to out (nothing: the leaf goes) and returns 0, or
 * -1 to fail. Other fields are copied as they came; a scope or resource
 * left without leaves goes. *leaves: how many were kept. 0, or 1 (nothing
 * written) when dd_wire_leaves would decline, or -1 with err. */
typedef int (*dd_rewrite_fn)(void *ctx, const ot_resource *res, const ot_scope *scope,
                             const uint8_t *leaf, size_t len, ot_buf *out);
int dd_wire_rewrite(const uint8_t *wire, size_t len, ot_arena *keep, dd_rewrite_fn fn, void *ctx,
                    ot_buf *out, size_t *leaves, ot_err *err);
/* Cuts a request's bytes into pieces of at most max_leaves leaves and
 * about max_bytes of leaf bytes (a single bigger leaf is a piece of its
 * own), each a valid request of signal s holding its leaves' resource and
 * scope; emit gets each (valid only during the call) with its items
 * (spans, log records, or data points; SIZE_MAX when a metric's bytes
 * leave that to a decode), and returns 0 to go on or a
 * positive value to stop, which is returned. -1 with err when the bytes do
 * not parse. Unknown fields of the request itself are not kept. */
typedef int (*dd_piece_fn)(void *ctx, const uint8_t *req, size_t len, size_t items);
int dd_wire_split(ot_signal s, const uint8_t *wire, size_t len, size_t max_leaves,
                  size_t max_bytes, dd_piece_fn emit, void *ctx, ot_err *err);
/* A protobuf varint. */
void dd_put_varint(ot_buf *b, uint64_t v);
/* Span.trace_id from a span's bytes; empty when absent. */
ProtobufCBinaryData dd_wire_trace_id(const uint8_t *span, size_t len);

/* The encoders above from a request's bytes, one leaf decoded at a time
 * into chunk (reset as they go): the same items as the decoded path. 1
 * (nothing written) when dd_wire_leaves declines: decode and use the
 * other. Items point into wire only while they are written. */
int dd_traces_encode_wire(const uint8_t *wire, size_t len, const dd_opts *o, dd_items *traces,
                          ot_arena *keep, ot_arena *chunk, ot_err *err);
int dd_logs_encode_wire(const uint8_t *wire, size_t len, const dd_opts *o, dd_items *logs,
                        ot_arena *keep, ot_arena *chunk, ot_err *err);
int dd_series_encode_wire(const uint8_t *wire, size_t len, const dd_opts *o, dd_items *series,
                          dd_items *sketches, ot_arena *keep, ot_arena *chunk, ot_err *err);

/* ---- requests (payload.c) ------------------------------------------------ */

typedef enum dd_kind { DD_SERIES = 0, DD_SKETCHES, DD_LOGS, DD_TRACES, DD_KIND_COUNT } dd_kind;

typedef struct dd_limits {
    size_t max_items;      /* per request; 0 = none */
    size_t max_raw;        /* body bytes before compression */
    size_t max_compressed; /* 0 = none */
} dd_limits;

extern const dd_limits dd_default_limits[DD_KIND_COUNT];

/* The body of items [from, to) of a kind, framed (the JSON object or
 * array, the msgpack array header). */
int dd_frame(dd_kind k, const dd_items *it, size_t from, size_t to, ot_buf *out);

/* What sends one framed body: fills status (HTTP status, 0 when there was
 * no answer) and retry_after_ns; msg for the log. */
typedef struct dd_post_result {
    int status;
    bool permanent; /* no answer, and none will come (bad URL) */
    int64_t retry_after_ns;
    char msg[256];
} dd_post_result;
typedef void (*dd_post_fn)(void *ctx, dd_kind k, const uint8_t *body, size_t len,
                           ot_compression coding, size_t items, dd_post_result *r);

typedef struct dd_send_stats {
    size_t requests;       /* posts made */
    size_t splits;         /* halvings after a 413 or an over-limit compressed body */
    size_t dropped_items;  /* items refused for good (a 413 of one item) */
} dd_send_stats;

/* Sends every item in requests that meet lim: cut by count and raw size,
 * compressed with how (unless NONE) and halved while the compressed body is
 * over its limit, halved and sent again on a 413 (a single item refused
 * with 413 is dropped and counted). Stops at the first retryable or
 * permanent answer and says so in out (403: permanent, naming the API
 * key). body and comp: the caller's reusable buffers. */
void dd_send_items(dd_kind k, const dd_items *it, const dd_limits *lim, ot_compression how,
                   ot_compressor *comp, ot_buf *body, dd_post_fn post, void *ctx,
                   ot_send_result *out, dd_send_stats *st);

#endif
