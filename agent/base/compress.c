/* compress.c: gzip, deflate and zstd bodies both ways (see compress.h).
 * The decompressor's output grows only as output really appears, under a
 * hard cap and a caller's budget, so a small hostile body that expands to
 * gigabytes costs at most the cap. */
#include "base/compress.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define FIRST_GUESS 4096
#define FAST_LEVEL 1

const char *ot_compression_name(ot_compression c)
{
    static const char *const names[] = {"identity", "gzip", "deflate", "zstd"};
    return (unsigned)c < 4 ? names[c] : "unknown";
}

/* ---- compressing ---------------------------------------------------------- */

static int zlib_run(ot_compressor *c, ot_compression how, const void *in, size_t len, ot_err *err)
{
    const char *name = ot_compression_name(how);
    z_stream *zs = c->z;
    if (zs && c->z_kind != how) {
        deflateEnd(zs);
        free(zs);
        c->z = zs = NULL;
    }
    if (!zs) {
        zs = calloc(1, sizeof *zs);
        if (!zs)
            return ot_err_set(err, "%s: out of memory", name);
        /* 15+16 asks zlib for the gzip wrapper, 15 for the zlib one. */
        int wbits = how == OT_COMPRESS_GZIP ? 15 + 16 : 15;
        if (deflateInit2(zs, FAST_LEVEL, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(zs);
            return ot_err_set(err, "%s: cannot initialise", name);
        }
        c->z = zs;
        c->z_kind = how;
    } else if (deflateReset(zs) != Z_OK) {
        return ot_err_set(err, "%s: cannot reset", name);
    }
    if (len > UINT32_MAX)
        return ot_err_set(err, "%s: body of %zu bytes is too large", name, len);
    ot_buf_reset(&c->out);
    size_t bound = deflateBound(zs, (uLong)len);
    if (ot_buf_reserve(&c->out, bound) < 0)
        return ot_err_set(err, "%s: out of memory", name);
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)len;
    zs->next_out = (Bytef *)c->out.data;
    zs->avail_out = (uInt)(c->out.cap - 1);
    int rc = deflate(zs, Z_FINISH);
    if (rc != Z_STREAM_END)
        return ot_err_set(err, "%s: deflate failed (%d)", name, rc);
    c->out.len = zs->total_out;
    c->out.data[c->out.len] = '\0';
    return 0;
}

static int zstd_run(ot_compressor *c, const void *in, size_t len, ot_err *err)
{
    if (!c->zstd) {
        c->zstd = ZSTD_createCCtx();
        if (!c->zstd)
            return ot_err_set(err, "zstd: out of memory");
        ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_compressionLevel, FAST_LEVEL);
    }
    ot_buf_reset(&c->out);
    if (ot_buf_reserve(&c->out, ZSTD_compressBound(len)) < 0)
        return ot_err_set(err, "zstd: out of memory");
    size_t n = ZSTD_compress2(c->zstd, c->out.data, c->out.cap - 1, in, len);
    if (ZSTD_isError(n)) {
        ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_only);
        return ot_err_set(err, "zstd: %s", ZSTD_getErrorName(n));
    }
    c->out.len = n;
    c->out.data[n] = '\0';
    return 0;
}

int ot_compress(ot_compressor *c, ot_compression how, const void *in, size_t len, ot_err *err)
{
    if (!in)
        in = "";
    switch (how) {
    case OT_COMPRESS_GZIP:
    case OT_COMPRESS_DEFLATE:
        return zlib_run(c, how, in, len, err);
    case OT_COMPRESS_ZSTD:
        return zstd_run(c, in, len, err);
    default:
        return ot_err_set(err, "no compression to apply");
    }
}

void ot_compressor_free(ot_compressor *c)
{
    if (c->z) {
        deflateEnd(c->z);
        free(c->z);
        c->z = NULL;
    }
    ZSTD_freeCCtx(c->zstd);
    c->zstd = NULL;
    ot_buf_free(&c->out);
}

/* ---- decompressing -------------------------------------------------------- */

typedef struct outbuf {
    uint8_t *p;
    size_t len, cap, limit; /* limit = max body + 1: one byte over says "too large" */
    const ot_decomp_budget *budget;
    uint64_t *taken;
} outbuf;

static bool budget_take(const ot_decomp_budget *b, uint64_t n)
{
    return !b || !b->take || b->take(b->ud, n);
}

static void budget_give(const ot_decomp_budget *b, uint64_t n)
{
    if (b && b->give && n)
        b->give(b->ud, n);
}

/* Makes room for at least one more byte; OT_DECOMP_* on failure. */
static int grow(outbuf *o, size_t hint)
{
    if (o->cap >= o->limit)
        return OT_DECOMP_TOO_LARGE;
    size_t want = o->cap ? o->cap * 2 : (hint > FIRST_GUESS ? hint : FIRST_GUESS);
    if (want > o->limit || want < o->cap)
        want = o->limit;
    if (!budget_take(o->budget, want - o->cap))
        return OT_DECOMP_BUSY;
    uint8_t *np = realloc(o->p, want);
    if (!np) {
        budget_give(o->budget, want - o->cap);
        return OT_DECOMP_NOMEM;
    }
    *o->taken += want - o->cap;
    o->p = np;
    o->cap = want;
    return OT_DECOMP_OK;
}

static int inflate_zlib(ot_compression how, const uint8_t *in, size_t in_len, outbuf *o, bool raw,
                        ot_err *err)
{
    const char *name = ot_compression_name(how);
    bool gzip = how == OT_COMPRESS_GZIP;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int wbits = gzip ? 16 + MAX_WBITS : raw ? -MAX_WBITS : MAX_WBITS;
    if (inflateInit2(&zs, wbits) != Z_OK)
        return OT_DECOMP_NOMEM;
    size_t hint = 0;
    /* gzip's trailer holds the size mod 2^32: a hint, never trusted past
     * the cap. */
    if (gzip && in_len >= 18) {
        const uint8_t *t = in + in_len - 4;
        hint = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        hint += 1; /* room to see the end without another growth */
    }
    int rc = OT_DECOMP_OK;
    size_t pos = 0;
    for (;;) {
        if (o->len == o->cap && (rc = grow(o, hint)) != OT_DECOMP_OK)
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
            while (pos < in_len && in[pos] == 0 && gzip)
                pos++;
            if (pos == in_len)
                break;
            if (!gzip || inflateReset(&zs) != Z_OK) {
                ot_err_set(err, "data after the end of the %s stream", name);
                rc = OT_DECOMP_INVALID;
                break;
            }
            continue;
        }
        if (z == Z_BUF_ERROR && zs.avail_out != 0) {
            ot_err_set(err, "truncated %s stream", name);
            rc = OT_DECOMP_INVALID;
            break;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            ot_err_set(err, "corrupt %s stream: %s", name, zs.msg ? zs.msg : "error");
            rc = z == Z_MEM_ERROR ? OT_DECOMP_NOMEM : OT_DECOMP_INVALID;
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
        return OT_DECOMP_NOMEM;
    ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, window_log_for(o->limit));
    size_t hint = 0;
    unsigned long long fcs = ZSTD_getFrameContentSize(in, in_len);
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR) {
        if (fcs >= o->limit) {
            /* the frame says so itself: nothing to inflate to know */
            ZSTD_freeDCtx(dc);
            ot_err_set(err, "zstd frame of %llu bytes exceeds the limit of %zu", fcs, o->limit - 1);
            return OT_DECOMP_TOO_LARGE;
        }
        hint = (size_t)fcs + 1;
    }
    ZSTD_inBuffer ib = {in, in_len, 0};
    int rc = OT_DECOMP_OK;
    size_t last = 1;
    for (;;) {
        if (o->len == o->cap && (rc = grow(o, hint)) != OT_DECOMP_OK)
            break;
        ZSTD_outBuffer ob = {o->p, o->cap, o->len};
        size_t before_in = ib.pos, before_out = ob.pos;
        last = ZSTD_decompressStream(dc, &ob, &ib);
        o->len = ob.pos;
        if (ZSTD_isError(last)) {
            /* a window wider than the limit is a body larger than it */
            bool wide = ZSTD_getErrorCode(last) == ZSTD_error_frameParameter_windowTooLarge;
            ot_err_set(err, "%s zstd stream: %s", wide ? "oversized" : "corrupt",
                       ZSTD_getErrorName(last));
            rc = wide ? OT_DECOMP_TOO_LARGE : OT_DECOMP_INVALID;
            break;
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            /* all input used and room left: the decoder is done or starved */
            if (last != 0) {
                ot_err_set(err, "truncated zstd stream");
                rc = OT_DECOMP_INVALID;
            }
            break;
        }
        if (ib.pos == before_in && ob.pos == before_out && ob.pos < ob.size) {
            ot_err_set(err, "zstd stream makes no progress");
            rc = OT_DECOMP_INVALID;
            break;
        }
    }
    ZSTD_freeDCtx(dc);
    return rc;
}

int ot_decompress(ot_compression how, const uint8_t *in, size_t in_len, size_t cap,
                  const ot_decomp_budget *budget, uint64_t *taken, uint8_t **out,
                  size_t *out_len, ot_err *err)
{
    *out = NULL;
    *out_len = 0;
    *taken = 0;
    outbuf o = {NULL, 0, 0, cap + 1, budget, taken};
    int rc;
    switch (how) {
    case OT_COMPRESS_GZIP:
        rc = inflate_zlib(how, in, in_len, &o, false, err);
        break;
    case OT_COMPRESS_DEFLATE:
        /* A zlib header that does not check out means raw deflate. */
        if (in_len >= 2 && (in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0)
            rc = inflate_zlib(how, in, in_len, &o, false, err);
        else
            rc = inflate_zlib(how, in, in_len, &o, true, err);
        break;
    case OT_COMPRESS_ZSTD:
        rc = inflate_zstd(in, in_len, &o, err);
        break;
    default:
        /* identity: a copy, under the same cap */
        if (in_len > cap) {
            rc = OT_DECOMP_TOO_LARGE;
        } else if ((rc = grow(&o, in_len ? in_len : 1)) == OT_DECOMP_OK) {
            memcpy(o.p, in, in_len);
            o.len = in_len;
        }
        break;
    }
    if (rc == OT_DECOMP_OK && o.len > cap)
        rc = OT_DECOMP_TOO_LARGE;
    if (rc == OT_DECOMP_TOO_LARGE)
        ot_err_set(err, "decompressed body exceeds the limit of %zu bytes", cap);
    else if (rc == OT_DECOMP_BUSY)
        ot_err_set(err, "too many request bytes in flight");
    else if (rc == OT_DECOMP_NOMEM)
        ot_err_set(err, "out of memory");
    if (rc != OT_DECOMP_OK) {
        free(o.p);
        budget_give(budget, *taken);
        *taken = 0;
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return OT_DECOMP_OK;
}
