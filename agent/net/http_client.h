/* http_client.h: outbound HTTP for every exporter that speaks it (OTLP/HTTP,
 * Datadog, Prometheus remote write). A client is a pool of libcurl handles
 * that keep their connections alive: each concurrent request borrows one,
 * so any number of sender threads may call at once and the steady state
 * allocates nothing. HTTP/2 is offered over TLS by ALPN, HTTP/1.1 else.
 * What a status means to a backend is the caller's business; the generic
 * rules every HTTP exporter shares (which statuses to retry, Retry-After)
 * are here. */
#ifndef OT_HTTP_CLIENT_H
#define OT_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "base/compress.h"
#include "base/err.h"
#include "config/config.h"
#include "model/consumer.h"
#include "net/tls.h"

typedef struct ot_http_client_cfg {
    const char *id;           /* the component, for logs */
    const ot_tls_client *tls; /* NULL: the library's defaults */
    const char *proxy_url;    /* NULL or "": the environment's proxy, if any */
    const ot_strmap *headers; /* sent with every request; copied */
} ot_http_client_cfg;

typedef struct ot_http_client ot_http_client;

/* One handle is made up front, so a bad TLS file or option fails here.
 * The strings and tls block of cfg must outlive the client. */
ot_http_client *ot_http_client_new(const ot_http_client_cfg *cfg, ot_err *err);
void ot_http_client_free(ot_http_client *c);

typedef enum ot_http_method { OT_HTTP_POST = 0, OT_HTTP_PUT, OT_HTTP_GET } ot_http_method;

typedef struct ot_http_request {
    ot_http_method method;
    const char *url;
    const char *const *headers; /* n_headers "Name: value" lines, before the defaults */
    size_t n_headers;
    const void *body; /* sent from here, not copied (ignored by GET) */
    size_t body_len;
    ot_compression compression; /* applied by the client; sets Content-Encoding */
    int64_t deadline_ns;        /* CLOCK_MONOTONIC (ot_now_ns) */
    size_t max_body;            /* response body bytes kept; the rest is read and dropped */
    /* A streamed answer (a watch): when set, the body goes to on_data as it
     * arrives instead of to resp->body; a non-zero return ends the request.
     * cancel, when set, is asked about once a second even while nothing
     * arrives; true ends the request. Either way the call returns -1. */
    int (*on_data)(void *ctx, const char *p, size_t n);
    bool (*cancel)(void *ctx);
    void *stream_ctx;
} ot_http_request;

typedef struct ot_http_response {
    ot_buf *body;              /* in: the caller's buffer or NULL; reset, then filled */
    int status;                /* the HTTP status; 0 when there was no response */
    bool truncated;            /* the body was longer than max_body */
    bool has_retry_after;      /* a Retry-After header that parsed */
    int64_t retry_after_ns;    /* its delay from now */
    char content_type[128];    /* "" when the server sent none */
    /* No response: why, as "POST <url>: <reason>". permanent is set when
     * trying again cannot help (a malformed URL, an unsupported scheme). */
    char error[256];
    bool permanent;
} ot_http_response;

/* Sends one request and reads the answer: 0 with resp->status set, or -1
 * with resp->error (refused, reset, timed out, TLS, deadline already past,
 * compression failed). Thread-safe. */
int ot_http_client_do(ot_http_client *c, const ot_http_request *req, ot_http_response *resp);

/* ---- the rules every HTTP exporter shares ------------------------------- */

/* 2xx OK; 429, 502, 503, 504 retryable; everything else permanent. */
ot_status ot_http_status_outcome(int status);
/* Retry-After: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850,
 * asctime), against now (Unix seconds). A date in the past gives 0. -1 when
 * the value is neither. */
int ot_http_parse_retry_after(const char *v, time_t now, int64_t *ns);

#endif
