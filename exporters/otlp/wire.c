/* wire.c: the protocol rules both OTLP exporters follow, kept free of I/O so
 * unit tests can check them one by one: which gRPC codes are worth
 * retrying, how long the server asked us to wait (RetryInfo in
 * grpc-status-details-bin), how endpoints become targets and URLs, and
 * partial success in responses. The generic HTTP rules (statuses,
 * Retry-After) are in net/http_client.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/codec.h"
#include "model/otlp_json.h"
#include "otlpexp.h"

/* ---- gRPC codes --------------------------------------------------------- */

static const char *const code_names[] = {
    "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",   "UNIMPLEMENTED",    "INTERNAL",
    "UNAVAILABLE", "DATA_LOSS",       "UNAUTHENTICATED",
};

const char *ot_otlpexp_grpc_code_name(int code)
{
    if (code >= 0 && (size_t)code < sizeof code_names / sizeof code_names[0])
        return code_names[code];
    return "UNKNOWN";
}

ot_status ot_otlpexp_grpc_outcome(int code, bool has_retry_info)
{
    switch (code) {
    case OT_GRPC_OK:
        return OT_OK;
    case OT_GRPC_CANCELLED:
    case OT_GRPC_DEADLINE_EXCEEDED:
    case OT_GRPC_ABORTED:
    case OT_GRPC_OUT_OF_RANGE:
    case OT_GRPC_UNAVAILABLE:
    case OT_GRPC_DATA_LOSS:
        return OT_RETRYABLE;
    case OT_GRPC_RESOURCE_EXHAUSTED:
        /* Without RetryInfo the server says the request itself is too big
         * for it, which no amount of waiting fixes. */
        return has_retry_info ? OT_RETRYABLE : OT_PERMANENT;
    default:
        return OT_PERMANENT;
    }
}

int ot_otlpexp_grpc_code_from_http(int st)
{
    switch (st) {
    case 400:
        return OT_GRPC_INTERNAL;
    case 401:
        return OT_GRPC_UNAUTHENTICATED;
    case 403:
        return OT_GRPC_PERMISSION_DENIED;
    case 404:
        return OT_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return OT_GRPC_UNAVAILABLE;
    default:
        return OT_GRPC_UNKNOWN;
    }
}

/* HTTP/2 error codes (RFC 9113 section 7) as gRPC clients read RST_STREAM. */
int ot_otlpexp_grpc_code_from_h2(uint32_t e)
{
    switch (e) {
    case 0x3: /* FLOW_CONTROL_ERROR */
    case 0xb: /* ENHANCE_YOUR_CALM */
        return OT_GRPC_RESOURCE_EXHAUSTED;
    case 0x7: /* REFUSED_STREAM: never processed, safe to send again */
        return OT_GRPC_UNAVAILABLE;
    case 0x8: /* CANCEL */
        return OT_GRPC_CANCELLED;
    case 0xc: /* INADEQUATE_SECURITY */
        return OT_GRPC_PERMISSION_DENIED;
    default:
        return OT_GRPC_INTERNAL;
    }
}

/* ---- google.rpc.Status -------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int ot_otlpexp_status_from_pb(const void *buf, size_t len, ot_otlpexp_rpc_status *out)
{
    memset(out, 0, sizeof *out);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, buf);
    if (!st)
        return -1;
    out->code = st->code;
    snprintf(out->msg, sizeof out->msg, "%s", st->message ? st->message : "");
    for (size_t i = 0; i < st->n_details; i++) {
        const Google__Rpc__Any *any = st->details[i];
        if (!any || !ends_with(any->type_url, "/google.rpc.RetryInfo"))
            continue;
        Google__Rpc__RetryInfo *ri =
            google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
        if (!ri)
            continue;
        out->has_retry_info = true;
        if (ri->retry_delay) {
            int64_t s = ri->retry_delay->seconds, ns = ri->retry_delay->nanos;
            if (s < 0 || ns < 0)
                s = ns = 0;
            if (s > 100LL * 365 * 86400) /* keep the product in range */
                s = 100LL * 365 * 86400;
            out->retry_delay_ns = s * 1000000000LL + ns;
        }
        google__rpc__retry_info__free_unpacked(ri, NULL);
    }
    google__rpc__status__free_unpacked(st, NULL);
    return 0;
}

int ot_otlpexp_status_from_json(const char *buf, size_t len, ot_otlpexp_rpc_status *out)
{
    memset(out, 0, sizeof *out);
    ot_arena *a = ot_arena_new(1024);
    if (!a)
        return -1;
    ot_err err = {{0}};
    const Google__Rpc__Status *st =
        (const Google__Rpc__Status *)ot_json_decode(&google__rpc__status__descriptor, buf, len, a, &err);
    int rc = -1;
    if (st) {
        out->code = st->code;
        snprintf(out->msg, sizeof out->msg, "%s", st->message ? st->message : "");
        rc = 0;
    }
    ot_arena_free(a);
    return rc;
}

int ot_otlpexp_status_from_bin_header(const char *b64, size_t len, ot_otlpexp_rpc_status *out)
{
    memset(out, 0, sizeof *out);
    uint8_t stackbuf[1024];
    size_t max = ot_base64_decoded_max(len);
    uint8_t *raw = max <= sizeof stackbuf ? stackbuf : malloc(max);
    if (!raw)
        return -1;
    long n = ot_base64_decode(b64, len, raw);
    int rc = n < 0 ? -1 : ot_otlpexp_status_from_pb(raw, (size_t)n, out);
    if (raw != stackbuf)
        free(raw);
    return rc;
}

/* ---- endpoints ---------------------------------------------------------- */

static bool has_prefix_ci(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

int ot_otlpexp_grpc_target(const char *endpoint, bool insecure, ot_otlpexp_target *out,
                           ot_err *err)
{
    memset(out, 0, sizeof *out);
    if (!endpoint || !*endpoint)
        return ot_err_set(err, "endpoint is empty");
    const char *p = endpoint;
    int scheme = 0; /* 0 none, 1 http, 2 https */
    if (has_prefix_ci(p, "https://")) {
        scheme = 2;
        p += 8;
    } else if (has_prefix_ci(p, "http://")) {
        scheme = 1;
        p += 7;
    } else if (has_prefix_ci(p, "dns:///") || has_prefix_ci(p, "passthrough:///")) {
        /* gRPC resolver names, as collector configs sometimes carry them;
         * both mean "resolve this host" here. */
        p = strstr(p, ":///") + 4;
    } else if (strstr(p, "://")) {
        return ot_err_set(err, "endpoint \"%s\": expected host:port, optionally after http:// or https://",
                          endpoint);
    }
    size_t n = strlen(p);
    while (n && p[n - 1] == '/')
        n--;
    if (!n || memchr(p, '/', n))
        return ot_err_set(err, "endpoint \"%s\": expected host:port (a path is not allowed)", endpoint);
    out->tls = scheme == 2 || (scheme == 0 && !insecure);
    if (scheme == 1)
        out->tls = false;
    const char *host = p, *port = NULL;
    size_t hlen;
    if (*p == '[') {
        const char *rb = memchr(p, ']', n);
        if (!rb)
            return ot_err_set(err, "endpoint \"%s\": missing ']' after an IPv6 address", endpoint);
        host = p + 1;
        hlen = (size_t)(rb - host);
        if (rb + 1 < p + n) {
            if (rb[1] != ':')
                return ot_err_set(err, "endpoint \"%s\": expected ':' after ']'", endpoint);
            port = rb + 2;
        }
    } else {
        const char *colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (p[i] == ':') {
                if (colon)
                    return ot_err_set(err, "endpoint \"%s\": write an IPv6 address as [addr]:port",
                                      endpoint);
                colon = p + i;
            }
        hlen = colon ? (size_t)(colon - p) : n;
        if (colon)
            port = colon + 1;
    }
    if (!hlen || hlen >= sizeof out->host)
        return ot_err_set(err, "endpoint \"%s\": expected a host name or address", endpoint);
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (port) {
        size_t plen = (size_t)(p + n - port);
        long v = 0;
        if (!plen || plen > 5)
            return ot_err_set(err, "endpoint \"%s\": expected a port number 1-65535", endpoint);
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i]))
                return ot_err_set(err, "endpoint \"%s\": expected a port number 1-65535", endpoint);
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535)
            return ot_err_set(err, "endpoint \"%s\": expected a port number 1-65535", endpoint);
        out->port = (int)v;
    } else {
        out->port = out->tls ? 443 : 80;
    }
    if (strchr(out->host, ':'))
        snprintf(out->authority, sizeof out->authority, "[%s]:%d", out->host, out->port);
    else
        snprintf(out->authority, sizeof out->authority, "%s:%d", out->host, out->port);
    return 0;
}

static bool is_http_url(const char *u)
{
    return (has_prefix_ci(u, "http://") && u[7]) || (has_prefix_ci(u, "https://") && u[8]);
}

int ot_otlpexp_signal_url(const char *base, const char *override, ot_signal s, char *out,
                          size_t cap, ot_err *err)
{
    int n;
    if (override && *override) {
        if (!is_http_url(override))
            return ot_err_set(err, "%s_endpoint \"%s\": expected an http:// or https:// URL",
                              ot_signal_name(s), override);
        n = snprintf(out, cap, "%s", override);
    } else {
        if (!base || !*base)
            return ot_err_set(err, "either endpoint or %s_endpoint must be set", ot_signal_name(s));
        if (!is_http_url(base))
            return ot_err_set(err, "endpoint \"%s\": expected an http:// or https:// URL", base);
        size_t bl = strlen(base);
        n = snprintf(out, cap, "%s%sv1/%s", base, base[bl - 1] == '/' ? "" : "/", ot_signal_name(s));
    }
    if (n < 0 || (size_t)n >= cap)
        return ot_err_set(err, "URL for %s is too long", ot_signal_name(s));
    return 0;
}

/* ---- partial success ---------------------------------------------------- */

/* The three responses share one shape: field 1 holds a message whose field
 * 1 is the rejected count and field 2 the error message. */
static int partial_of(ot_signal s, const ProtobufCMessage *m, int64_t *rejected, char *msg,
                      size_t cap)
{
    const char *em = NULL;
    *rejected = 0;
    if (s == OT_TRACES) {
        const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r = (const void *)m;
        if (r->partial_success) {
            *rejected = r->partial_success->rejected_spans;
            em = r->partial_success->error_message;
        }
    } else if (s == OT_METRICS) {
        const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *r = (const void *)m;
        if (r->partial_success) {
            *rejected = r->partial_success->rejected_data_points;
            em = r->partial_success->error_message;
        }
    } else {
        const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *r = (const void *)m;
        if (r->partial_success) {
            *rejected = r->partial_success->rejected_log_records;
            em = r->partial_success->error_message;
        }
    }
    if (cap)
        snprintf(msg, cap, "%s", em ? em : "");
    return 0;
}

static const ProtobufCMessageDescriptor *response_desc(ot_signal s)
{
    switch (s) {
    case OT_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor;
    case OT_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor;
    default:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor;
    }
}

int ot_otlpexp_partial_from_pb(ot_signal s, const void *buf, size_t len, int64_t *rejected,
                               char *msg, size_t cap)
{
    *rejected = 0;
    if (cap)
        msg[0] = '\0';
    if (!len)
        return 0;
    ProtobufCMessage *m = protobuf_c_message_unpack(response_desc(s), NULL, len, buf);
    if (!m)
        return -1;
    partial_of(s, m, rejected, msg, cap);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

int ot_otlpexp_partial_from_json(ot_signal s, const char *buf, size_t len, int64_t *rejected,
                                 char *msg, size_t cap)
{
    *rejected = 0;
    if (cap)
        msg[0] = '\0';
    /* Most answers are "{}"; only pay for a decode when there is more. */
    if (len < 3 || !memmem(buf, len, "artial", 6))
        return 0;
    ot_arena *a = ot_arena_new(2048);
    if (!a)
        return -1;
    ot_err err = {{0}};
    ProtobufCMessage *m = ot_json_decode(response_desc(s), buf, len, a, &err);
    int rc = m ? partial_of(s, m, rejected, msg, cap) : -1;
    ot_arena_free(a);
    return rc;
}
