/* otlpexp.h: the parts of the `otlp` (gRPC) and `otlphttp` exporters that
 * are shared between their files and checked by unit tests: OTLP/gRPC and
 * OTLP/HTTP response rules (which failures are retryable, what the server
 * asked us to wait), endpoint and URL building, and the two transports (an
 * nghttp2 gRPC client with its own event loop, and the OTLP sender over
 * net/http_client.h). Internal to exporters/otlp/. */
#ifndef OT_OTLPEXP_H
#define OT_OTLPEXP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "model/batch.h"
#include "base/buf.h"
#include "base/compress.h"
#include "config/config.h"
#include "model/consumer.h"
#include "base/err.h"
#include "net/grpc_wire.h"
#include "net/tls.h"
#include "model/otlp.h"

/* ---- what a send came to ------------------------------------------------ */

typedef struct ot_otlpexp_result {
    ot_status status;
    int64_t retry_after_ns; /* > 0: what the server asked for */
    char msg[256];
    int64_t rejected;       /* partial success: items the server refused */
    char partial_msg[256];
} ot_otlpexp_result;

/* ---- gRPC status rules (the codes: grpc_wire.h) ------------------------ */

const char *ot_otlpexp_grpc_code_name(int code);
/* The OTLP rule: OK, retryable (CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED only when the
 * server sent RetryInfo) or permanent. */
ot_status ot_otlpexp_grpc_outcome(int code, bool has_retry_info);
/* gRPC's mapping for a response that carries no grpc-status. */
int ot_otlpexp_grpc_code_from_http(int http_status);
int ot_otlpexp_grpc_code_from_h2(uint32_t h2_error);

/* A decoded google.rpc.Status. */
typedef struct ot_otlpexp_rpc_status {
    int code;
    char msg[256];
    bool has_retry_info;
    int64_t retry_delay_ns;
} ot_otlpexp_rpc_status;

/* Protobuf bytes of google.rpc.Status; -1 when they do not decode. */
int ot_otlpexp_status_from_pb(const void *buf, size_t len, ot_otlpexp_rpc_status *out);
/* The JSON form ({"code":..,"message":..}); -1 when it does not decode. */
int ot_otlpexp_status_from_json(const char *buf, size_t len, ot_otlpexp_rpc_status *out);
/* The grpc-status-details-bin header: base64 (padding optional) of the
 * Status bytes. */
int ot_otlpexp_status_from_bin_header(const char *b64, size_t len, ot_otlpexp_rpc_status *out);

/* ---- endpoints ---------------------------------------------------------- */

typedef struct ot_otlpexp_target {
    char host[256]; /* without brackets */
    int port;
    bool tls;
    char authority[300]; /* host:port as :authority, IPv6 bracketed */
} ot_otlpexp_target;

/* The gRPC endpoint: "host:port", "[v6]:port", with an optional http:// or
 * https:// scheme (stripped; https means TLS, http means plaintext) and an
 * optional trailing "/"; gRPC's "dns:///" and "passthrough:///" prefixes
 * are accepted and mean no scheme. Without a scheme, TLS unless insecure. A missing
 * port is 443 with TLS and 80 without, as gRPC clients do. */
int ot_otlpexp_grpc_target(const char *endpoint, bool insecure, ot_otlpexp_target *out,
                           ot_err *err);
/* The otlphttp URL of a signal: the override when set, else the base with
 * "/v1/<signal>" appended (one "/" between them). Both must be http(s). */
int ot_otlpexp_signal_url(const char *base, const char *override, ot_signal s, char *out,
                          size_t cap, ot_err *err);

/* ---- response bodies ---------------------------------------------------- */

/* The partial_success of an Export*ServiceResponse. rejected is 0 and msg
 * empty when there is none. -1 when the body does not decode. */
int ot_otlpexp_partial_from_pb(ot_signal s, const void *buf, size_t len, int64_t *rejected,
                               char *msg, size_t cap);
int ot_otlpexp_partial_from_json(ot_signal s, const char *buf, size_t len, int64_t *rejected,
                                 char *msg, size_t cap);

/* ---- the gRPC client (grpc_client.c) ------------------------------------ */

enum { OT_OTLPEXP_PICK_FIRST = 0, OT_OTLPEXP_ROUND_ROBIN = 1 };

typedef struct ot_otlpexp_grpc_cfg {
    const char *id; /* component id, for logs and metrics */
    ot_otlpexp_target target;
    const ot_tls_client *tls;
    const ot_strmap *headers;
    const char *authority; /* overrides :authority when set */
    int num_connections;
    int balancer;
    bool wait_for_ready;
    int64_t keepalive_time;    /* ns; 0 = no pings */
    int64_t keepalive_timeout; /* ns */
    bool keepalive_permit_without_stream;
} ot_otlpexp_grpc_cfg;

typedef struct ot_otlpexp_grpc ot_otlpexp_grpc;

/* The answer to one call. */
typedef struct ot_otlpexp_grpc_reply {
    int code;
    char msg[256];
    bool has_retry_info;
    int64_t retry_delay_ns;
    ot_buf *resp; /* the response message, decompressed, without its prefix */
} ot_otlpexp_grpc_reply;

/* Builds TLS context and resolves nothing yet. cfg must outlive the
 * client. */
ot_otlpexp_grpc *ot_otlpexp_grpc_new(const ot_otlpexp_grpc_cfg *cfg, ot_err *err);
/* Starts the event loop thread and begins connecting. */
int ot_otlpexp_grpc_start(ot_otlpexp_grpc *g, ot_err *err);
/* One unary call of the signal's Export method with an already serialized
 * (and, when compressed, gzipped) message. Blocks the calling thread until
 * the answer, the deadline (CLOCK_MONOTONIC ns) or stop. reply->resp must
 * point to the caller's buffer; it is reset first. Thread-safe. */
void ot_otlpexp_grpc_call(ot_otlpexp_grpc *g, ot_signal s, const uint8_t *msg, size_t len,
                          bool compressed, int64_t deadline_ns, ot_otlpexp_grpc_reply *reply);
/* Fails whatever is pending with UNAVAILABLE, closes connections, joins the
 * loop thread. Idempotent. */
void ot_otlpexp_grpc_stop(ot_otlpexp_grpc *g);
void ot_otlpexp_grpc_free(ot_otlpexp_grpc *g);
/* Connections in the READY state (for tests and the gauge). */
int ot_otlpexp_grpc_ready(ot_otlpexp_grpc *g);

/* ---- the OTLP/HTTP sender (http_send.c) --------------------------------- */

typedef struct ot_otlpexp_http_cfg {
    const char *id;
    const char *url[OT_SIGNAL_COUNT];
    bool json;
    bool gzip;
    const ot_strmap *headers;
    const ot_tls_client *tls;
    const char *proxy_url;
} ot_otlpexp_http_cfg;

typedef struct ot_otlpexp_http ot_otlpexp_http;

ot_otlpexp_http *ot_otlpexp_http_new(const ot_otlpexp_http_cfg *cfg, ot_err *err);
/* Sends one batch (encoded as configured) and reads the answer. Any number
 * of threads may call at once, each with its own json (the encoded body, when
 * JSON) and resp (the response body) buffers, reused from batch to batch. */
void ot_otlpexp_http_send(ot_otlpexp_http *h, ot_batch *b, int64_t deadline_ns, ot_buf *json,
                          ot_buf *resp, ot_otlpexp_result *out);
void ot_otlpexp_http_free(ot_otlpexp_http *h);

#endif
