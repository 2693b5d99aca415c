/* grpc_wire.c: gRPC wire values shared by server and client (see
 * grpc_wire.h). */
#include "net/grpc_wire.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/codec.h"
#include "status.pb-c.h"

static const char *const paths[OT_SIGNAL_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

const char *ot_grpc_path(ot_signal s)
{
    return (unsigned)s < OT_SIGNAL_COUNT ? paths[s] : "/";
}

int ot_grpc_path_signal(const char *p, size_t n)
{
    for (int i = 0; i < OT_SIGNAL_COUNT; i++)
        if (strlen(paths[i]) == n && memcmp(paths[i], p, n) == 0)
            return i;
    return -1;
}

void ot_grpc_prefix(uint8_t out[5], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

uint32_t ot_grpc_prefix_len(const uint8_t p[5])
{
    return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
}

int ot_grpc_timeout_parse(const char *v, size_t n, int64_t *ns)
{
    if (n < 2 || n > 9)
        return -1;
    int64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    int64_t mul;
    switch (v[n - 1]) {
    case 'H':
        mul = 3600LL * 1000000000LL;
        break;
    case 'M':
        mul = 60LL * 1000000000LL;
        break;
    case 'S':
        mul = 1000000000LL;
        break;
    case 'm':
        mul = 1000000LL;
        break;
    case 'u':
        mul = 1000LL;
        break;
    case 'n':
        mul = 1;
        break;
    default:
        return -1;
    }
    /* 8 digits of hours is ~11 000 years in ns: past int64; saturate */
    if (x > INT64_MAX / mul)
        *ns = INT64_MAX;
    else
        *ns = x * mul;
    return 0;
}

void ot_grpc_timeout_format(int64_t ns, char out[16])
{
    /* At most 8 digits, rounded up. */
    if (ns < 1)
        ns = 1;
    if (ns > INT64_MAX / 2) /* keeps the rounding below in range */
        ns = INT64_MAX / 2;
    static const struct {
        int64_t unit;
        char c;
    } units[] = {
        {1, 'n'}, {1000, 'u'}, {1000000, 'm'}, {1000000000LL, 'S'},
        {60000000000LL, 'M'}, {3600000000000LL, 'H'},
    };
    /* Milliseconds are what servers log; finer only for tiny values. */
    size_t start = ns < 1000000 ? 0 : 2;
    for (size_t i = start; i < sizeof units / sizeof units[0]; i++) {
        int64_t v = (ns + units[i].unit - 1) / units[i].unit;
        if (v <= 99999999) {
            snprintf(out, 16, "%lld%c", (long long)v, units[i].c);
            return;
        }
    }
    snprintf(out, 16, "99999999H");
}

int ot_grpc_percent_encode(const char *msg, ot_buf *out)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            ot_buf_putc(out, (char)*p);
        } else {
            char e[3] = {'%'};
            ot_hex_encode(p, 1, e + 1, true);
            ot_buf_append(out, e, 3);
        }
    }
    return out->oom ? -1 : 0;
}

void ot_grpc_percent_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap)
        return;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len && (hi = ot_hex_digit((unsigned char)in[i + 1])) >= 0 &&
            (lo = ot_hex_digit((unsigned char)in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* ---- status codes ------------------------------------------------------- */

static const char *const code_names[] = {
    "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",   "UNIMPLEMENTED",    "INTERNAL",
    "UNAVAILABLE", "DATA_LOSS",       "UNAUTHENTICATED",
};

const char *ot_grpc_code_name(int code)
{
    if (code >= 0 && (size_t)code < sizeof code_names / sizeof code_names[0])
        return code_names[code];
    return "UNKNOWN";
}

int ot_grpc_code_from_http(int st)
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
int ot_grpc_code_from_h2(uint32_t e)
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

int ot_grpc_status_from_pb(const void *buf, size_t len, ot_grpc_status *out)
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

int ot_grpc_status_from_bin(const char *b64, size_t len, ot_grpc_status *out)
{
    memset(out, 0, sizeof *out);
    uint8_t stackbuf[1024];
    size_t max = ot_base64_decoded_max(len);
    uint8_t *raw = max <= sizeof stackbuf ? stackbuf : malloc(max);
    if (!raw)
        return -1;
    long n = ot_base64_decode(b64, len, raw);
    int rc = n < 0 ? -1 : ot_grpc_status_from_pb(raw, (size_t)n, out);
    if (raw != stackbuf)
        free(raw);
    return rc;
}

/* ---- targets ------------------------------------------------------------ */

static bool prefix_ci(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

int ot_grpc_target_parse(const char *endpoint, bool insecure, ot_grpc_target *out,
                           ot_err *err)
{
    memset(out, 0, sizeof *out);
    if (!endpoint || !*endpoint)
        return ot_err_set(err, "endpoint is empty");
    const char *p = endpoint;
    int scheme = 0; /* 0 none, 1 http, 2 https */
    if (prefix_ci(p, "https://")) {
        scheme = 2;
        p += 8;
    } else if (prefix_ci(p, "http://")) {
        scheme = 1;
        p += 7;
    } else if (prefix_ci(p, "dns:///") || prefix_ci(p, "passthrough:///")) {
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
