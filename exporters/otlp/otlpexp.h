/* otlpexp.h: the parts of the `otlp` (gRPC) and `otlphttp` exporters that
 * are shared between their files and checked by unit tests: OTLP/gRPC and
 * OTLP/HTTP response rules (which failures are retryable, what the server
 * asked us to wait), URL building, and the OTLP sender over
 * net/http_client.h. The gRPC transport is net/grpc_client.h. Internal to
 * exporters/otlp/. */
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
#include "net/grpc_client.h"
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

/* The OTLP rule: OK, retryable (CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED only when the
 * server sent RetryInfo) or permanent. */
ot_status ot_otlpexp_grpc_outcome(int code, bool has_retry_info);
/* google.rpc.Status in its JSON form ({"code":..,"message":..}); -1 when it
 * does not decode. */
int ot_otlpexp_status_from_json(const char *buf, size_t len, ot_grpc_status *out);

/* ---- URLs --------------------------------------------------------------- */

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
