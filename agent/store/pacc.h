/* pacc.h: OTLP points accumulated per stream in the metric stream store
 * into the cumulative form Prometheus wants, for every component that turns
 * OTLP into Prometheus series (the prometheus scrape endpoint keeps the
 * state for scrapes; the remote-write exporter reads it back point by
 * point). Gauges and cumulative data keep their last point; delta sums
 * (monotonic or not) and delta histograms (while their bounds stay the
 * same) are added up from the first point seen; exponential histograms are
 * kept native, downscaled to schema 8 at most; summaries as they come.
 * A delta point not newer than the stream's last one is not added twice. */
#ifndef OT_PACC_H
#define OT_PACC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/otlp.h"
#include "store/mstore.h"

enum { OT_PACC_GAUGE = 1, OT_PACC_COUNTER = 2, OT_PACC_HISTOGRAM = 3, OT_PACC_SUMMARY = 4, OT_PACC_EXPHIST = 5 };
enum { OT_PACC_F_HAS_SUM = 1, OT_PACC_F_NO_VALUE = 2, OT_PACC_F_EXEMPLAR = 4 };

/* What the store keeps per stream. Histograms are followed by n bounds and
 * n+1 per-bucket counts (not cumulative); summaries by n quantiles and n
 * values; exponential histograms by a ot_pacc_exph and n = nneg + npos bucket
 * counts (negative first), kept native so the protobuf exposition can send
 * them as Prometheus native histograms. */
typedef struct ot_pacc_state {
    uint8_t kind;
    uint8_t flags;
    uint16_t pad;
    uint32_t n;
    int64_t start_ns; /* the point's start time (ns since epoch) */
    int64_t ts_ns;    /* the last point's time */
    double value;     /* gauge and counter value, histogram and summary sum */
    uint64_t count;   /* histograms and summaries only: see OT_PACC_NUMBER_STATE */
} ot_pacc_state;

/* The state of a gauge or counter without an exemplar stops before count,
 * which they never touch: 8 bytes less on most of a million streams. */
#define OT_PACC_NUMBER_STATE offsetof(ot_pacc_state, count)
_Static_assert(offsetof(ot_pacc_state, count) == 32, "a number state is 32 bytes");

typedef struct ot_pacc_exph {
    int32_t scale; /* at most 8, as Prometheus' schemas go */
    int32_t pos_off, neg_off;
    uint32_t npos, nneg;
    uint32_t pad;
    double zero_threshold;
    uint64_t zero_count;
} ot_pacc_exph;

static inline ot_pacc_exph *ot_pacc_exph_of(ot_pacc_state *s) { return (ot_pacc_exph *)(void *)(s + 1); }
static inline uint64_t *ot_pacc_exp_counts(ot_pacc_state *s)
{
    return (uint64_t *)(void *)(ot_pacc_exph_of(s) + 1);
}

/* The last exemplar of a counter or histogram, kept after the state when the
 * stream was made with room for it (its first point had exemplars). */
typedef struct ot_pacc_exemplar {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    double value;
    int64_t ts_ns;
} ot_pacc_exemplar;

/* Bytes of a state before its exemplar. */
static inline size_t ot_pacc_state_len(const ot_pacc_state *s)
{
    switch (s->kind) {
    case OT_PACC_HISTOGRAM:
        return sizeof *s + s->n * 16 + 8;
    case OT_PACC_SUMMARY:
        return sizeof *s + s->n * 16;
    case OT_PACC_EXPHIST:
        return sizeof *s + sizeof(ot_pacc_exph) + s->n * 8;
    default:
        return sizeof *s;
    }
}

static inline ot_pacc_exemplar *ot_pacc_ex(ot_pacc_state *s)
{
    return (s->flags & OT_PACC_F_EXEMPLAR) ? (ot_pacc_exemplar *)(void *)((char *)s + ot_pacc_state_len(s)) : NULL;
}

static inline double *ot_pacc_bounds(ot_pacc_state *s) { return (double *)(void *)(s + 1); }
static inline uint64_t *ot_pacc_counts(ot_pacc_state *s) { return (uint64_t *)(void *)(ot_pacc_bounds(s) + s->n); }

/* Called for each point once its stream holds it, with the stream still
 * held (writer thread; do not call into the store). fresh: the point is
 * newer than anything the stream had (or the stream is new), so a sender
 * of points in time order may send it. */
typedef void (*ot_pacc_fn)(void *ctx, const ot_mstore_stream *s, ot_pacc_state *st, int64_t ts_ns,
                           bool fresh);

/* Accumulates every point of m into st (k: the caller's key, its base part
 * already set by ot_mstore_key_otlp for m); fn (may be NULL) sees each
 * point's state. Sums and histograms of unspecified temporality are
 * skipped. Returns the points refused by the store's caps. */
size_t ot_pacc_metric(ot_mstore *st, ot_mstore_key *k, const ot_metric *m, int64_t now_ns,
                      ot_pacc_fn fn, void *ctx);

#endif
