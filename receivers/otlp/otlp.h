/* otlp.h: what the files of the OTLP receiver share (config layout, the
 * receiver object, the request path every transport ends in), and what the
 * receiver's tests and fuzz targets reach into. Nothing outside
 * receivers/otlp/ and its tests includes this. */
#ifndef OT_OTLPR_H
#define OT_OTLPR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compress.h"
#include "model/batch.h"
#include "model/otlp_check.h"
#include "config/config.h"
#include "model/consumer.h"
#include "net/auth.h"
#include "net/tls.h"
#include "pipeline/factory.h"
#include "telemetry/telemetry.h"

/* ---- config (filled by the key walker from the collector's layout) ------ */

typedef struct otlpr_keepalive_server {
    int64_t max_connection_idle;      /* ns; 0 = never */
    int64_t max_connection_age;       /* ns; 0 = never */
    int64_t max_connection_age_grace; /* ns; 0 = until the streams end */
    int64_t time;                     /* ns idle before we ping; 0 = never */
    int64_t timeout;                  /* ns to wait for the ping's ack */
} otlpr_keepalive_server;

typedef struct otlpr_enforcement {
    bool present;
    int64_t min_time; /* ns between client pings before they count as abuse */
    bool permit_without_stream;
} otlpr_enforcement;

typedef struct otlpr_keepalive {
    otlpr_keepalive_server server_parameters;
    otlpr_enforcement enforcement_policy;
} otlpr_keepalive;

typedef struct otlpr_grpc_cfg {
    bool present;
    ot_endpoint endpoint;
    int64_t max_recv_msg_size_mib;
    int64_t max_concurrent_streams;
    otlpr_keepalive keepalive;
    ot_tls_server tls;
    bool include_metadata;
    ot_auth_cfg auth;
} otlpr_grpc_cfg;

typedef struct otlpr_cors_cfg {
    ot_strlist allowed_origins;
    ot_strlist allowed_headers;
    int64_t max_age; /* seconds; 0 = not sent */
} otlpr_cors_cfg;

typedef struct otlpr_http_cfg {
    bool present;
    ot_endpoint endpoint;
    const char *traces_url_path;
    const char *metrics_url_path;
    const char *logs_url_path;
    uint64_t max_request_body_size;
    int64_t read_timeout; /* ns: whole request, first byte to last */
    otlpr_cors_cfg cors;
    ot_tls_server tls;
    bool include_metadata;
    ot_auth_cfg auth;
} otlpr_http_cfg;

typedef struct otlpr_protocols {
    otlpr_grpc_cfg grpc;
    otlpr_http_cfg http;
} otlpr_protocols;

typedef struct otlpr_cfg {
    otlpr_protocols protocols;
    uint64_t max_inflight_bytes;
} otlpr_cfg;

extern const ot_key ot_otlpr_keys[];

/* ---- admission control --------------------------------------------------
 * Bytes in flight across every request of one receiver. A transport takes
 * what a request will hold (its declared length) before it reads the body
 * and gives it back when the request is answered, so a flood is refused
 * before anything is allocated for it. */
typedef struct otlpr_budget {
    atomic_uint_fast64_t used;
    uint64_t max;
} otlpr_budget;

/* False (nothing taken) when n would push the total past max. A NULL
 * budget always succeeds. */
bool ot_otlpr_budget_take(otlpr_budget *b, uint64_t n);
void ot_otlpr_budget_give(otlpr_budget *b, uint64_t n);

/* ---- body formats and encodings ------------------------------------------ */

typedef enum otlpr_format { OTLPR_PROTOBUF = 0, OTLPR_JSON = 1 } otlpr_format;
typedef enum otlpr_enc {
    OTLPR_ENC_IDENTITY = OT_COMPRESS_NONE,
    OTLPR_ENC_GZIP = OT_COMPRESS_GZIP,
    OTLPR_ENC_DEFLATE = OT_COMPRESS_DEFLATE, /* zlib stream, as HTTP's "deflate" is meant */
    OTLPR_ENC_ZSTD = OT_COMPRESS_ZSTD,
} otlpr_enc;

/* Content-Type value → format; parameters (charset=…) are ignored. -1 when
 * it is neither protobuf nor JSON. */
int ot_otlpr_content_type(const char *value);
/* Content-Encoding / grpc-encoding value → encoding; NULL or "" is
 * identity. -1 when unsupported. */
int ot_otlpr_encoding(const char *value);
const char *ot_otlpr_encoding_name(otlpr_enc e);

enum {
    OTLPR_DECOMP_OK = OT_DECOMP_OK,
    OTLPR_DECOMP_INVALID = OT_DECOMP_INVALID,     /* corrupt or truncated stream */
    OTLPR_DECOMP_TOO_LARGE = OT_DECOMP_TOO_LARGE, /* output would pass the cap */
    OTLPR_DECOMP_BUSY = OT_DECOMP_BUSY,           /* the budget refused the output buffer */
    OTLPR_DECOMP_NOMEM = OT_DECOMP_NOMEM,
};

/* Decompresses in into a malloc'd buffer of at most cap bytes. Memory for
 * the output is taken from budget (may be NULL) as it grows; *taken says
 * how much, for the caller to give back. No allocation passes cap + a few
 * bytes whatever the input claims, so compression bombs cost nothing.
 * Returns OTLPR_DECOMP_*; on success *out (free()) and *out_len are set. */
int ot_otlpr_decompress(otlpr_enc enc, const uint8_t *in, size_t in_len, size_t cap,
                        otlpr_budget *budget, uint64_t *taken, uint8_t **out, size_t *out_len,
                        ot_err *err);

/* ---- the request path ------------------------------------------------------ */

typedef enum otlpr_transport { OTLPR_HTTP = 0, OTLPR_GRPC = 1, OTLPR_TRANSPORTS = 2 } otlpr_transport;

/* How a request ended; each transport maps it to its own status. */
typedef enum otlpr_outcome {
    OTLPR_OK = 0,
    OTLPR_INVALID,     /* undecodable body: 400 / INVALID_ARGUMENT */
    OTLPR_NOT_WIRED,   /* no pipeline takes this signal: 404 / UNIMPLEMENTED */
    OTLPR_RETRY,       /* pipeline said RETRYABLE: 503 / UNAVAILABLE + RetryInfo */
    OTLPR_PERMANENT,   /* pipeline said PERMANENT: 400 / INVALID_ARGUMENT */
    OTLPR_TOO_LARGE,   /* over the size limits: 413 / RESOURCE_EXHAUSTED */
    OTLPR_BUSY,        /* in-flight budget spent: 503 / UNAVAILABLE + RetryInfo */
    OTLPR_INTERNAL,    /* out of memory: 500 / INTERNAL */
} otlpr_outcome;

#define OTLPR_CODES 10 /* status codes counted without a registry lookup */

typedef struct otlpr_http otlpr_http;
typedef struct otlpr_grpc otlpr_grpc;

typedef struct otlpr {
    const otlpr_cfg *cfg;
    char *id;
    /* NULL: the signal is in no pipeline. A reload that changes only the
     * wiring replaces these while requests run (rewire), hence atomic. */
    _Atomic(ot_consumer *) next[OT_SIGNAL_COUNT];
    otlpr_budget budget;
    otlpr_http *http;
    otlpr_grpc *grpc;
    ot_auth *auth[OTLPR_TRANSPORTS]; /* auth.authenticator of each server, or NULL */
    ot_counter *accepted[OTLPR_TRANSPORTS][OT_SIGNAL_COUNT];
    ot_counter *refused[OTLPR_TRANSPORTS][OT_SIGNAL_COUNT];
    ot_counter *requests[OTLPR_TRANSPORTS][OTLPR_CODES];
} otlpr;

/* What one request costs beyond the wire bytes its transport reserved, and
 * what was dropped from it. */
typedef struct otlpr_req {
    otlpr_budget *budget; /* in: charged for what decoding allocates; NULL: not charged */
    uint64_t charged;     /* out: taken from budget, to give back when answered */
    ot_rejects rej;       /* out: items dropped for breaking a rule of otlp_check.h */
} otlpr_req;

#define OTLPR_REQ_INIT(b) {(b), 0, OT_REJECTS_INIT}

/* A decoded, checked request as a batch, before it is handed on. For
 * protobuf, arena (may be NULL) owns body and the batch adopts both (no
 * copy); otherwise arena is freed here. On failure *outcome says why
 * (INVALID, TOO_LARGE, BUSY or INTERNAL) and err the detail. meta: request
 * headers to copy into the batch (include_metadata), keys already
 * lower-case. Items that break a rule are dropped and tallied in req->rej
 * (bytes pass through untouched when there are none; otherwise the request
 * is rebuilt without them); the result may then hold no items. What
 * decoding allocates or would allocate (the fast path decodes later, if a
 * stage needs fields) is charged to req->budget: a request that would cost
 * more than the whole budget and eight times its own size is refused
 * (TOO_LARGE) before anything is allocated for it. req may be NULL. */
ot_batch *ot_otlpr_batch(ot_signal s, otlpr_format f, ot_arena *arena, const uint8_t *body,
                         size_t len, const ot_meta_kv *meta, size_t n_meta, otlpr_req *req,
                         otlpr_outcome *outcome, ot_err *err);

/* Counts the items dropped from one request: otelite_receiver_rejected_*_total{reason}. */
void ot_otlpr_count_rejects(otlpr *r, otlpr_transport t, ot_signal s, const ot_rejects *rej);

/* The HTTP body path without sockets (what fuzz_http_body drives): content
 * type and encoding as the headers say, decompression capped at max_body,
 * then decode. body is copied when it must be. */
ot_batch *ot_otlpr_http_body(ot_signal s, const char *content_type, const char *content_encoding,
                             const uint8_t *body, size_t len, size_t max_body,
                             otlpr_budget *budget, otlpr_outcome *outcome, ot_err *err);

/* Hands a batch to the next consumer of its signal and counts it. Takes
 * the batch. items: the count reported as accepted or refused. */
otlpr_outcome ot_otlpr_consume(otlpr *r, otlpr_transport t, ot_batch *b, ot_err *err);

/* Counts one answered request: otelite_receiver_requests_total{code}. */
void ot_otlpr_count_request(otlpr *r, otlpr_transport t, int code);

const char *ot_otlpr_outcome_name(otlpr_outcome o);

/* Export*ServiceResponse / google.rpc.Status bodies. */
/* The success response: protobuf (empty message) or JSON "{}". rejected > 0
 * adds partialSuccess. */
int ot_otlpr_success_body(ot_signal s, otlpr_format f, int64_t rejected, const char *msg,
                          ot_buf *out);
/* google.rpc.Status{code, message}; with retry_delay_s > 0 also a RetryInfo
 * detail. */
int ot_otlpr_status_body(otlpr_format f, int grpc_code, const char *msg, int retry_delay_s,
                         ot_buf *out);
/* The success response for a request some items were dropped from. */
int ot_otlpr_partial_body(ot_signal s, otlpr_format f, const ot_rejects *rej, ot_buf *out);

/* ---- listening ---------------------------------------------------------- */

/* A non-blocking listening TCP socket on ep (port 0 picks one). */

/* ---- transports ---------------------------------------------------------- */

otlpr_http *ot_otlpr_http_start(otlpr *r, const otlpr_http_cfg *cfg, ot_err *err);
int ot_otlpr_http_port(const otlpr_http *h);
/* Stops accepting, waits for requests in flight until deadline, frees. */
void ot_otlpr_http_stop(otlpr_http *h, int64_t deadline_ns);

otlpr_grpc *ot_otlpr_grpc_start(otlpr *r, const otlpr_grpc_cfg *cfg, ot_err *err);
int ot_otlpr_grpc_port(const otlpr_grpc *g);
void ot_otlpr_grpc_stop(otlpr_grpc *g, int64_t deadline_ns);

/* The bound ports of a started receiver (0 when that protocol is off), for
 * tests that listen on port 0. */
int ot_otlpr_http_bound_port(void *receiver);
int ot_otlpr_grpc_bound_port(void *receiver);

#endif
