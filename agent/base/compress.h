/* compress.h: the body codings every transport speaks (HTTP's
 * Content-Encoding, gRPC's grpc-encoding): gzip, deflate (a zlib stream)
 * and zstd. One compressor that keeps its state and output buffer from one
 * body to the next, so a sender allocates nothing in the steady state, and
 * one decompressor that never holds more than a cap, whatever the input
 * claims, with its memory optionally charged to a caller's budget. */
#ifndef OT_COMPRESS_H
#define OT_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef enum ot_compression {
    OT_COMPRESS_NONE = 0,
    OT_COMPRESS_GZIP,
    OT_COMPRESS_DEFLATE, /* zlib stream, as HTTP's "deflate" is meant */
    OT_COMPRESS_ZSTD,
} ot_compression;

/* The Content-Encoding token: "identity", "gzip", "deflate", "zstd". */
const char *ot_compression_name(ot_compression c);

/* ---- compressing ---------------------------------------------------------- */

/* Zero-initialise; one user at a time. Levels are the fast ones (gzip and
 * deflate 1, zstd 1): an exporter runs out of CPU long before the wire. */
typedef struct ot_compressor {
    ot_buf out; /* the last result */
    void *z;    /* private: a z_stream for z_kind */
    ot_compression z_kind;
    void *zstd; /* private: a ZSTD_CCtx */
} ot_compressor;

/* Replaces c->out with in compressed as how (NONE is refused). */
int ot_compress(ot_compressor *c, ot_compression how, const void *in, size_t len, ot_err *err);
void ot_compressor_free(ot_compressor *c);

/* ---- decompressing -------------------------------------------------------- */

enum {
    OT_DECOMP_OK = 0,
    OT_DECOMP_INVALID = -1,   /* corrupt or truncated stream */
    OT_DECOMP_TOO_LARGE = -2, /* output would pass the cap */
    OT_DECOMP_BUSY = -3,      /* the budget refused the output buffer */
    OT_DECOMP_NOMEM = -4,
};

/* Memory the output buffer may take; take returns false to refuse. */
typedef struct ot_decomp_budget {
    bool (*take)(void *ud, uint64_t n);
    void (*give)(void *ud, uint64_t n);
    void *ud;
} ot_decomp_budget;

/* Decompresses in into a malloc'd buffer of at most cap bytes (NONE
 * copies). The buffer grows only as output appears and never past cap + 1
 * bytes; each growth is taken from budget (may be NULL) and *taken says how
 * much the caller holds and gives back when it frees *out. gzip may be
 * several members; deflate without a valid zlib header is read as raw
 * deflate, as some clients send it. Returns OT_DECOMP_*, with err set on
 * failure (and nothing held). */
int ot_decompress(ot_compression how, const uint8_t *in, size_t in_len, size_t cap,
                  const ot_decomp_budget *budget, uint64_t *taken, uint8_t **out,
                  size_t *out_len, ot_err *err);

#endif
