/* wire.c: the protocol rules both OTLP exporters follow, kept free of I/O so
 * unit tests can check them one by one: which gRPC codes are worth
 * retrying (RESOURCE_EXHAUSTED only with RetryInfo), the JSON form of
 * google.rpc.Status, how endpoints become URLs, and partial success in
 * responses. The generic gRPC rules (code names, google.rpc.Status in
 * protobuf, targets) are in net/grpc_wire.h, the HTTP ones (statuses,
 * Retry-After) in net/http_client.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/codec.h"
#include "model/otlp_json.h"
#include "otlpexp.h"

/* ---- gRPC codes --------------------------------------------------------- */

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

/* ---- google.rpc.Status, JSON (the protobuf forms: net/grpc_wire.h) ------ */

int ot_otlpexp_status_from_json(const char *buf, size_t len, ot_grpc_status *out)
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

/* ---- URLs --------------------------------------------------------------- */

static bool has_prefix_ci(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
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
