/* gzip.c: gzip and gunzip of whole messages in memory, for the transports
 * that compress bodies themselves (the OTLP exporters' requests, gRPC
 * responses). */
#include "base/gzip.h"

#include <string.h>

int ot_gzip_run(ot_gzip *g, const void *in, size_t len, ot_err *err)
{
    if (!g->ready) {
        memset(&g->zs, 0, sizeof g->zs);
        /* Level 1, as the collector: exporters are CPU-bound long before
         * the wire is. 15+16 asks zlib for the gzip wrapper. */
        if (deflateInit2(&g->zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return ot_err_set(err, "gzip: cannot initialise");
        g->ready = true;
    } else if (deflateReset(&g->zs) != Z_OK) {
        return ot_err_set(err, "gzip: cannot reset");
    }
    ot_buf_reset(&g->out);
    size_t bound = deflateBound(&g->zs, (uLong)len);
    if (ot_buf_reserve(&g->out, bound) < 0)
        return ot_err_set(err, "gzip: out of memory");
    g->zs.next_in = (Bytef *)(uintptr_t)in;
    g->zs.avail_in = (uInt)len;
    g->zs.next_out = (Bytef *)g->out.data;
    g->zs.avail_out = (uInt)(g->out.cap - 1);
    int rc = deflate(&g->zs, Z_FINISH);
    if (rc != Z_STREAM_END)
        return ot_err_set(err, "gzip: deflate failed (%d)", rc);
    g->out.len = g->zs.total_out;
    g->out.data[g->out.len] = '\0';
    return 0;
}

int ot_gunzip(const void *in, size_t len, ot_buf *out, size_t max, ot_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 32+15: zlib or gzip header, detected. */
    if (inflateInit2(&zs, 32 + 15) != Z_OK)
        return ot_err_set(err, "gunzip: cannot initialise");
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (out->len >= max) {
            inflateEnd(&zs);
            return ot_err_set(err, "gunzip: more than %zu bytes", max);
        }
        if (ot_buf_reserve(out, len * 2 + 256) < 0) {
            inflateEnd(&zs);
            return ot_err_set(err, "gunzip: out of memory");
        }
        zs.next_out = (Bytef *)out->data + out->len;
        zs.avail_out = (uInt)(out->cap - 1 - out->len);
        rc = inflate(&zs, Z_NO_FLUSH);
        out->len = out->cap - 1 - zs.avail_out;
        out->data[out->len] = '\0';
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            return ot_err_set(err, "gunzip: corrupt data (%d)", rc);
        }
        if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            inflateEnd(&zs);
            return ot_err_set(err, "gunzip: truncated data");
        }
    }
    inflateEnd(&zs);
    return 0;
}

void ot_gzip_free(ot_gzip *g)
{
    if (g->ready)
        deflateEnd(&g->zs);
    g->ready = false;
    ot_buf_free(&g->out);
}
