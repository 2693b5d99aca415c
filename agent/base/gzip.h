/* gzip.h: whole-message gzip in memory. A sender keeps one ot_gzip (a
 * deflate state and its output buffer) and reuses it message after
 * message; gunzip is one call. */
#ifndef OT_GZIP_H
#define OT_GZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/err.h"

/* Used by one thread at a time; zero-initialised is ready to use. */
typedef struct ot_gzip {
    z_stream zs;
    bool ready;
    ot_buf out;
} ot_gzip;

/* Replaces g->out with the gzip of in (level 1). */
int ot_gzip_run(ot_gzip *g, const void *in, size_t len, ot_err *err);
/* Gunzips (or zlib-inflates) in, appending to out, at most max bytes. */
int ot_gunzip(const void *in, size_t len, ot_buf *out, size_t max, ot_err *err);
void ot_gzip_free(ot_gzip *g);

#endif
