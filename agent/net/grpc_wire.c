/* grpc_wire.c: gRPC wire values shared by server and client (see
 * grpc_wire.h). */
#include "net/grpc_wire.h"

#include <stdio.h>
#include <string.h>

#include "base/codec.h"

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
