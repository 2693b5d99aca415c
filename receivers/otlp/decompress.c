/* decompress.c: request bodies compressed with gzip, deflate (zlib) or
 * zstd, inflated under a hard cap. The output buffer grows only as output
 * really appears and never past cap + 1 bytes, and each growth is taken
 * from the receiver's in-flight budget, so a small hostile body that
 * claims (or expands to) gigabytes costs at most the cap. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "otlp.h"

#define FIRST_GUESS 4096

typedef struct outbuf {
    uint8_t *p;
    size_t len, cap, limit; /* limit = max body + 1: one byte over says "too large" */
    otlpr_budget *budget;
    uint64_t *taken;
} outbuf;

/* Makes room for at least one more byte; OTLPR_DECOMP_* on failure. */
static int grow(outbuf *o, size_t hint)
{
    if (o->cap >= o->limit)
        return OTLPR_DECOMP_TOO_LARGE;
    size_t want = o->cap ? o->cap * 2 : (hint > FIRST_GUESS ? hint : FIRST_GUESS);
    if (want > o->limit || want < o->cap)
        want = o->limit;
    if (!ot_otlpr_budget_take(o->budget, want - o->cap))
        return OTLPR_DECOMP_BUSY;
    uint8_t *np = realloc(o->p, want);
    if (!np) {
        ot_otlpr_budget_give(o->budget, want - o->cap);
        return OTLPR_DECOMP_NOMEM;
    }
    *o->taken += want - o->cap;
    o->p = np;
    o->cap = want;
    return OTLPR_DECOMP_OK;
}

static int inflate_zlib(otlpr_enc enc, const uint8_t *in, size_t in_len, outbuf *o, bool raw,
                        ot_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int wbits = enc == OTLPR_ENC_GZIP ? 16 + MAX_WBITS : raw ? -MAX_WBITS : MAX_WBITS;
    if (inflateInit2(&zs, wbits) != Z_OK)
        return OTLPR_DECOMP_NOMEM;
    size_t hint = 0;
    /* gzip's trailer holds the size mod 2^32: a hint, never trusted past
     * the cap. */
    if (enc == OTLPR_ENC_GZIP && in_len >= 18) {
        const uint8_t *t = in + in_len - 4;
        hint = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        hint += 1; /* room to see the end without another growth */
    }
    int rc = OTLPR_DECOMP_OK;
    size_t pos = 0;
    for (;;) {
        if (o->len == o->cap && (rc = grow(o, hint)) != OTLPR_DECOMP_OK)
            break;
        /* zlib counts in uInt: feed at most 1 GiB per call */
        size_t in_avail = in_len - pos;
        zs.next_in = (Bytef *)(in + pos);
        zs.avail_in = (uInt)(in_avail > (1u << 30) ? (1u << 30) : in_avail);
        size_t out_avail = o->cap - o->len;
        zs.next_out = o->p + o->len;
        zs.avail_out = (uInt)(out_avail > (1u << 30) ? (1u << 30) : out_avail);
        uInt in_before = zs.avail_in, out_before = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        pos += in_before - zs.avail_in;
        o->len += out_before - zs.avail_out;
        if (z == Z_STREAM_END) {
            /* gzip allows members one after another; skip trailing zeros
             * some writers pad with */
            while (pos < in_len && in[pos] == 0 && enc == OTLPR_ENC_GZIP)
                pos++;
            if (pos == in_len)
                break;
            if (enc != OTLPR_ENC_GZIP || inflateReset(&zs) != Z_OK) {
                ot_err_set(err, "data after the end of the %s stream", ot_otlpr_encoding_name(enc));
                rc = OTLPR_DECOMP_INVALID;
                break;
            }
            continue;
        }
        if (z == Z_BUF_ERROR && zs.avail_out != 0) {
            ot_err_set(err, "truncated %s stream", ot_otlpr_encoding_name(enc));
            rc = OTLPR_DECOMP_INVALID;
            break;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            ot_err_set(err, "corrupt %s stream: %s", ot_otlpr_encoding_name(enc),
                       zs.msg ? zs.msg : "error");
            rc = z == Z_MEM_ERROR ? OTLPR_DECOMP_NOMEM : OTLPR_DECOMP_INVALID;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

/* A window wider than the largest body could ever be is never needed;
 * refusing it bounds the decoder's own memory. */
static int window_log_for(size_t cap)
{
    int log = 20;
    while (log < 27 && ((size_t)1 << log) < cap)
        log++;
    return log;
}

static int inflate_zstd(const uint8_t *in, size_t in_len, outbuf *o, ot_err *err)
{
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc)
        return OTLPR_DECOMP_NOMEM;
    ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, window_log_for(o->limit));
    size_t hint = 0;
    unsigned long long fcs = ZSTD_getFrameContentSize(in, in_len);
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR)
        hint = fcs < o->limit ? (size_t)fcs + 1 : o->limit;
    ZSTD_inBuffer ib = {in, in_len, 0};
    int rc = OTLPR_DECOMP_OK;
    size_t last = 1;
    for (;;) {
        if (o->len == o->cap && (rc = grow(o, hint)) != OTLPR_DECOMP_OK)
            break;
        ZSTD_outBuffer ob = {o->p, o->cap, o->len};
        size_t before_in = ib.pos, before_out = ob.pos;
        last = ZSTD_decompressStream(dc, &ob, &ib);
        o->len = ob.pos;
        if (ZSTD_isError(last)) {
            ot_err_set(err, "corrupt zstd stream: %s", ZSTD_getErrorName(last));
            rc = OTLPR_DECOMP_INVALID;
            break;
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            /* all input used and room left: the decoder is done or starved */
            if (last != 0) {
                ot_err_set(err, "truncated zstd stream");
                rc = OTLPR_DECOMP_INVALID;
            }
            break;
        }
        if (ib.pos == before_in && ob.pos == before_out && ob.pos < ob.size) {
            ot_err_set(err, "zstd stream makes no progress");
            rc = OTLPR_DECOMP_INVALID;
            break;
        }
    }
    ZSTD_freeDCtx(dc);
    return rc;
}

int ot_otlpr_decompress(otlpr_enc enc, const uint8_t *in, size_t in_len, size_t cap,
                        otlpr_budget *budget, uint64_t *taken, uint8_t **out, size_t *out_len,
                        ot_err *err)
{
    *out = NULL;
    *out_len = 0;
    *taken = 0;
    outbuf o = {NULL, 0, 0, cap + 1, budget, taken};
    int rc;
    switch (enc) {
    case OTLPR_ENC_GZIP:
        rc = inflate_zlib(enc, in, in_len, &o, false, err);
        break;
    case OTLPR_ENC_DEFLATE:
        /* "deflate" should be a zlib stream, but some clients send raw
         * deflate: a zlib header that does not check out means raw. */
        if (in_len >= 2 && (in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0)
            rc = inflate_zlib(enc, in, in_len, &o, false, err);
        else
            rc = inflate_zlib(enc, in, in_len, &o, true, err);
        break;
    case OTLPR_ENC_ZSTD:
        rc = inflate_zstd(in, in_len, &o, err);
        break;
    default:
        /* identity: a copy, under the same cap */
        if (in_len > cap) {
            rc = OTLPR_DECOMP_TOO_LARGE;
        } else if ((rc = grow(&o, in_len ? in_len : 1)) == OTLPR_DECOMP_OK) {
            memcpy(o.p, in, in_len);
            o.len = in_len;
        }
        break;
    }
    if (rc == OTLPR_DECOMP_OK && o.len > cap)
        rc = OTLPR_DECOMP_TOO_LARGE;
    if (rc == OTLPR_DECOMP_TOO_LARGE)
        ot_err_set(err, "decompressed body exceeds the limit of %zu bytes", cap);
    else if (rc == OTLPR_DECOMP_BUSY)
        ot_err_set(err, "too many request bytes in flight");
    else if (rc == OTLPR_DECOMP_NOMEM)
        ot_err_set(err, "out of memory");
    if (rc != OTLPR_DECOMP_OK) {
        free(o.p);
        ot_otlpr_budget_give(budget, *taken);
        *taken = 0;
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return OTLPR_DECOMP_OK;
}
