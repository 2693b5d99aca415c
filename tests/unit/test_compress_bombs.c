/* Decompression bombs against base/compress.c: each coding's bomb stops at
 * the cap as TOO_LARGE and holds no more than the cap, including zstd
 * frames that declare a size or a window beyond it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "base/compress.h"

#define BIG (64u << 20)
#define CAP (1u << 20)

static uint8_t *zeros(void)
{
    uint8_t *z = calloc(1, BIG);
    cr_assert(z);
    return z;
}

static void refused(ot_compression how, const void *p, size_t n)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    uint64_t taken = 0;
    ot_err err = {{0}};
    int rc = ot_decompress(how, p, n, CAP, NULL, &taken, &out, &out_len, &err);
    cr_assert_eq(rc, OT_DECOMP_TOO_LARGE, "rc %d: %s", rc, err.msg);
    cr_assert_null(out);
    cr_assert_leq(taken, CAP + 1);
}

Test(compress_bombs, gzip_and_deflate_stop_at_the_cap)
{
    uint8_t *z = zeros();
    ot_compressor c = {0};
    ot_err err = {{0}};
    cr_assert_eq(ot_compress(&c, OT_COMPRESS_GZIP, z, BIG, &err), 0);
    cr_assert_lt(c.out.len, CAP);
    refused(OT_COMPRESS_GZIP, c.out.data, c.out.len);
    cr_assert_eq(ot_compress(&c, OT_COMPRESS_DEFLATE, z, BIG, &err), 0);
    refused(OT_COMPRESS_DEFLATE, c.out.data, c.out.len);
    ot_compressor_free(&c);
    free(z);
}

Test(compress_bombs, zstd_declared_size_is_refused_before_inflating)
{
    uint8_t *z = zeros();
    ot_compressor c = {0};
    ot_err err = {{0}};
    cr_assert_eq(ot_compress(&c, OT_COMPRESS_ZSTD, z, BIG, &err), 0);
    cr_assert_eq(ZSTD_getFrameContentSize(c.out.data, c.out.len), BIG);
    refused(OT_COMPRESS_ZSTD, c.out.data, c.out.len);
    ot_compressor_free(&c);
    free(z);
}

Test(compress_bombs, zstd_wide_window_without_size_is_too_large)
{
    uint8_t *z = zeros();
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 27);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
    size_t cap = ZSTD_compressBound(BIG);
    uint8_t *out = malloc(cap);
    ZSTD_inBuffer ib = {z, BIG, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    size_t left = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
    cr_assert_eq(left, 0);
    cr_assert_eq(ZSTD_getFrameContentSize(out, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    refused(OT_COMPRESS_ZSTD, out, ob.pos);
    ZSTD_freeCCtx(cc);
    free(out);
    free(z);
}

Test(compress_bombs, zstd_small_window_without_size_stops_at_the_cap)
{
    uint8_t *z = zeros();
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 17);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t cap = ZSTD_compressBound(BIG);
    uint8_t *out = malloc(cap);
    ZSTD_inBuffer ib = {z, BIG, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    cr_assert_eq(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end), 0);
    refused(OT_COMPRESS_ZSTD, out, ob.pos);
    ZSTD_freeCCtx(cc);
    free(out);
    free(z);
}
