/* prw.h: the parts of the prometheusremotewrite exporter shared by its
 * files and its tests. wire.c writes remote-write 1.0 WriteRequest bytes
 * by hand (one sizing step and one copy per series, no protobuf-c structs
 * per sample) and keeps each request under the size cap; translate.c turns
 * OTLP into series through the shared stream store (store/pacc.h: deltas
 * made cumulative, one point per series in time order) and the shared
 * name rules (store/promname.h); exporter.c is the component. */
#ifndef PRW_H
#define PRW_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "model/otlp.h"
#include "store/mstore.h"
#include "store/pacc.h"
#include "store/promname.h"

/* ---- WriteRequest bytes (wire.c) ----------------------------------------- */

typedef struct prw_label {
    const char *name, *val;
    uint32_t nl, vl;
} prw_label;

/* A native histogram with integer counts. Bucket index i of a side is
 * Prometheus bucket off + i (the upper bound base^(off + i)). */
typedef struct prw_nhist {
    uint64_t count, zero_count;
    double sum, zero_threshold;
    int32_t schema;
    int32_t neg_off, pos_off;
    const uint64_t *neg, *pos;
    uint32_t nneg, npos;
    int64_t ts_ms;
} prw_nhist;

/* MetricMetadata.type */
enum { PRW_MD_COUNTER = 1, PRW_MD_GAUGE = 2, PRW_MD_HISTOGRAM = 3, PRW_MD_SUMMARY = 5 };

/* Receives each finished WriteRequest (protobuf bytes, valid during the
 * call) and how many samples and histograms it carries. Nonzero is kept
 * in prw_writer.rc (the first one) and writing goes on. */
typedef int (*prw_flush_fn)(void *ctx, const uint8_t *req, size_t len, size_t samples);

/* Builds WriteRequests of at most max_bytes each: an item (a series or a
 * metadata entry) that would take the current request past the cap goes
 * to the next one, so a request is only over the cap when one series
 * alone is. Zero-initialise with prw_writer_init. */
typedef struct prw_writer {
    ot_buf req, tmp;
    size_t max_bytes;
    size_t samples;   /* in req */
    uint64_t gen;     /* bumped at each flush: a metadata entry goes once per request */
    prw_flush_fn flush;
    void *ctx;
    int rc;
    bool oom;
} prw_writer;

void prw_writer_init(prw_writer *w, size_t max_bytes, prw_flush_fn fn, void *ctx);
/* A series of one sample; labels sorted by name, none empty. -1 on OOM. */
int prw_sample(prw_writer *w, const prw_label *l, size_t n, double v, int64_t ts_ms);
/* A series of one native histogram. */
int prw_histogram(prw_writer *w, const prw_label *l, size_t n, const prw_nhist *h);
int prw_metadata(prw_writer *w, int type, const char *name, size_t nl, const char *help,
                 size_t hl, const char *unit, size_t ul);
/* Hands the current request (if any) to the flush function. */
int prw_flush(prw_writer *w);
void prw_writer_free(prw_writer *w);

/* Snappy block format (what Content-Encoding: snappy means here). */
int prw_snappy(ot_buf *out, const void *in, size_t n);
/* The reverse, refusing output over max (tests, the fuzz target). */
int prw_unsnappy(ot_buf *out, const void *in, size_t n, size_t max);

/* Prometheus' staleness marker: the NaN a series' end is written as. */
#define PRW_STALE_NAN_BITS 0x7ff0000000000002ull

/* ---- OTLP into series (translate.c) -------------------------------------- */

typedef struct prw_opts {
    const char *ns;
    bool suffixes;
    bool resource_to_labels;
    bool target_info;
    bool metadata;
    const char *const *ext_keys, *const *ext_vals; /* external_labels */
    size_t n_ext;
    size_t max_bytes;       /* per request */
    int64_t expiration_ns;  /* a series idle this long is forgotten; 0: never */
    size_t max_store_bytes; /* of the stream store; 0: no cap */
} prw_opts;

typedef struct prw_stats {
    uint64_t samples;  /* samples and histograms written */
    uint64_t stale;    /* points not newer than their series' last: not sent */
    uint64_t refused;  /* points of new series over the store's cap */
    uint64_t invalid;  /* points remote write cannot carry */
} prw_stats;

typedef struct prw_core prw_core;

prw_core *prw_core_new(const prw_opts *o, ot_err *err);
void prw_core_free(prw_core *c);
/* Turns req into WriteRequests handed to fn. One caller at a time (the
 * core has one lock). st (may be NULL) is added to. Returns the first
 * nonzero result of fn, or -1 on out-of-memory. */
int prw_core_translate(prw_core *c, const ot_metrics_req *req, int64_t now_ns, prw_flush_fn fn,
                       void *ctx, prw_stats *st);
/* Forgets series idle for the expiration; how many. */
size_t prw_core_expire(prw_core *c, int64_t now_ns);
size_t prw_core_series(prw_core *c);
/* Expires on a thread of the store's own every interval_ns. */
int prw_core_sweeper_start(prw_core *c, int64_t interval_ns, ot_err *err);

#endif
