/* grpc_frame.c: gRPC message framing and header values (see grpc_frame.h). */
#include "grpc_frame.h"

#include <string.h>

void ot_grpcf_reader_init(ot_grpcf_reader *r, size_t max_len, ot_grpcf_alloc_fn alloc, void *ctx)
{
    memset(r, 0, sizeof *r);
    r->max_len = max_len;
    r->alloc = alloc;
    r->ctx = ctx;
}

bool ot_grpcf_complete(const ot_grpcf_reader *r)
{
    return r->have_len && r->got == r->len;
}

int ot_grpcf_feed(ot_grpcf_reader *r, const uint8_t *p, size_t n)
{
    while (n) {
        if (!r->have_len) {
            size_t take = 5 - r->hdr_got;
            if (take > n)
                take = n;
            memcpy(r->hdr + r->hdr_got, p, take);
            r->hdr_got += (uint8_t)take;
            p += take;
            n -= take;
            if (r->hdr_got < 5)
                return OT_GRPCF_OK;
            if (r->hdr[0] > 1)
                return OT_GRPCF_BAD_FLAG;
            r->compressed = r->hdr[0] == 1;
            r->len = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
                     (uint32_t)r->hdr[3] << 8 | r->hdr[4];
            if (r->len > r->max_len)
                return OT_GRPCF_TOO_LARGE;
            int why = OT_GRPCF_REFUSED;
            r->buf = r->alloc(r->ctx, r->len, r->compressed, &why);
            if (!r->buf)
                return why;
            r->have_len = true;
            r->got = 0;
            continue;
        }
        size_t want = r->len - r->got;
        if (want == 0)
            return OT_GRPCF_EXTRA;
        size_t take = want < n ? want : n;
        memcpy(r->buf + r->got, p, take);
        r->got += take;
        p += take;
        n -= take;
    }
    return OT_GRPCF_OK;
}

int ot_grpcf_finish(const ot_grpcf_reader *r)
{
    if (!r->have_len)
        return r->hdr_got ? OT_GRPCF_TRUNCATED : OT_GRPCF_NO_MESSAGE;
    return r->got == r->len ? OT_GRPCF_OK : OT_GRPCF_TRUNCATED;
}

void ot_grpcf_prefix(uint8_t out[5], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int ot_grpcf_parse_timeout(const char *v, size_t n, int64_t *ns)
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

int ot_grpcf_percent_encode(const char *msg, ot_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            ot_buf_putc(out, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ot_buf_append(out, e, 3);
        }
    }
    return out->oom ? -1 : 0;
}

int ot_grpcf_base64(const uint8_t *p, size_t n, ot_buf *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (ot_buf_reserve(out, (n + 2) / 3 * 4 + 1) < 0)
        return -1;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
        ot_buf_append(out, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[2] = {tbl[v >> 18], tbl[(v >> 12) & 63]};
        ot_buf_append(out, q, 2);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[3] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63]};
        ot_buf_append(out, q, 3);
    }
    return out->oom ? -1 : 0;
}
