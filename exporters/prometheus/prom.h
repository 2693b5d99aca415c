/* prom.h: the parts of the prometheus exporter shared by its files and its
 * unit tests. The core (pm_core) is the exporter without its HTTP server:
 * OTLP in (ingest.c, which accumulates into the metric stream store), text
 * out (scrape.c, render.c), names and values as Prometheus spells them (names.c). The
 * component (prometheus.c) puts a scrape endpoint and a timer around it. */
#ifndef PM_PROM_H
#define PM_PROM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "model/otlp.h"
#include "store/mstore.h"

/* ---- names and values (names.c) ---------------------------------------- */

/* The Prometheus family name of an OTLP metric: tokens of the name joined
 * by '_', the unit's suffix (By → bytes, By/s → bytes_per_second, {x}
 * dropped), _total for monotonic sums and _ratio for gauges of unit 1 when
 * suffixes are on, the namespace first, '_' before a leading digit. unit_out
 * (may be NULL) gets the unit suffix that was added ("" if none), for
 * OpenMetrics' # UNIT. */
void pm_metric_name(ot_buf *out, const char *ns, const char *name, size_t name_len,
                    const char *unit, size_t unit_len, ot_mstore_type type, bool monotonic,
                    bool suffixes, ot_buf *unit_out);
/* A label name: invalid characters to '_', "key_" before a digit, "key"
 * before a single leading '_'. */
void pm_label_name(ot_buf *out, const char *p, size_t n);
/* A label value (or HELP text with help set) escaped for the text format. */
void pm_escape(ot_buf *out, const char *p, size_t n, bool help);
/* A sample value as Prometheus writes it: NaN, +Inf, -Inf, integers in
 * full, others in the shortest form that reads back the same. om: floats
 * that are integers get ".0" (OpenMetrics le and quantile values). */
void pm_value(ot_buf *out, double v, bool om);
/* An attribute value as a label value (strings as they are, the rest as
 * JSON would write them), unescaped. */
void pm_attr_text(ot_buf *out, const ot_mstore_val *v);

/* ---- per-stream state (ingest.c) ---------------------------------------- */

enum { PM_GAUGE = 1, PM_COUNTER = 2, PM_HISTOGRAM = 3, PM_SUMMARY = 4, PM_EXPHIST = 5 };
enum { PM_F_HAS_SUM = 1, PM_F_NO_VALUE = 2, PM_F_EXEMPLAR = 4 };

/* What the store keeps per stream. Histograms are followed by n bounds and
 * n+1 per-bucket counts (not cumulative); summaries by n quantiles and n
 * values; exponential histograms by a pm_exph and n = nneg + npos bucket
 * counts (negative first), kept native so the protobuf exposition can send
 * them as Prometheus native histograms. */
typedef struct pm_state {
    uint8_t kind;
    uint8_t flags;
    uint16_t pad;
    uint32_t n;
    int64_t start_ns; /* the point's start time (ns since epoch) */
    int64_t ts_ns;    /* the last point's time */
    double value;     /* gauge and counter value, histogram and summary sum */
    uint64_t count;   /* histograms and summaries only: see PM_NUMBER_STATE */
} pm_state;

/* The state of a gauge or counter without an exemplar stops before count,
 * which they never touch: 8 bytes less on most of a million streams. */
#define PM_NUMBER_STATE offsetof(pm_state, count)
_Static_assert(offsetof(pm_state, count) == 32, "a number state is 32 bytes");

typedef struct pm_exph {
    int32_t scale; /* at most 8, as Prometheus' schemas go */
    int32_t pos_off, neg_off;
    uint32_t npos, nneg;
    uint32_t pad;
    double zero_threshold;
    uint64_t zero_count;
} pm_exph;

static inline pm_exph *pm_exph_of(pm_state *s) { return (pm_exph *)(void *)(s + 1); }
static inline uint64_t *pm_exp_counts(pm_state *s)
{
    return (uint64_t *)(void *)(pm_exph_of(s) + 1);
}

/* The last exemplar of a counter or histogram, kept after the state when the
 * stream was made with room for it (its first point had exemplars). */
typedef struct pm_exemplar {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    double value;
    int64_t ts_ns;
} pm_exemplar;

/* Bytes of a state before its exemplar. */
static inline size_t pm_state_len(const pm_state *s)
{
    switch (s->kind) {
    case PM_HISTOGRAM:
        return sizeof *s + s->n * 16 + 8;
    case PM_SUMMARY:
        return sizeof *s + s->n * 16;
    case PM_EXPHIST:
        return sizeof *s + sizeof(pm_exph) + s->n * 8;
    default:
        return sizeof *s;
    }
}

static inline pm_exemplar *pm_ex(pm_state *s)
{
    return (s->flags & PM_F_EXEMPLAR) ? (pm_exemplar *)(void *)((char *)s + pm_state_len(s)) : NULL;
}

static inline double *pm_bounds(pm_state *s) { return (double *)(void *)(s + 1); }
static inline uint64_t *pm_counts(pm_state *s) { return (uint64_t *)(void *)(pm_bounds(s) + s->n); }

/* ---- the core ------------------------------------------------------------ */

typedef struct pm_opts {
    const char *ns;            /* namespace; NULL or "" for none */
    const char *const *const_keys, *const *const_vals;
    size_t n_const;
    bool send_timestamps;
    bool resource_to_labels;
    bool suffixes;
    int64_t expiration_ns;     /* 0: never */
    size_t max_series;         /* 0: no cap */
} pm_opts;

/* Descriptions by metric name (HELP), which are not part of a stream's
 * identity; pruned with the streams. */
typedef struct pm_help {
    char *name;
    char *desc;
    int64_t last_ns;
} pm_help;

typedef struct pm_core {
    pm_opts o;
    ot_mstore *store;
    pthread_mutex_t ingest; /* the store has one writer: receivers take turns */
    ot_mstore_key key;
    atomic_uint_fast64_t expired;
    pthread_mutex_t help_mu;
    pm_help *help;
    size_t n_help, cap_help;
} pm_core;

pm_core *pm_core_new(const pm_opts *o, ot_err *err);
void pm_core_free(pm_core *c);
/* Accumulates every point of req; now_ns on ot_now_ns's clock. Returns the
 * points refused by the series cap. */
size_t pm_core_ingest(pm_core *c, const ot_metrics_req *req, int64_t now_ns);
/* Removes series idle for the expiration; returns how many. */
size_t pm_core_expire(pm_core *c, int64_t now_ns);
/* The description last sent for a metric name, copied into out. */
void pm_core_help(pm_core *c, const char *name, size_t n, ot_buf *out);

/* ---- a scrape (scrape.c, render.c) --------------------------------------- */

enum { PM_FMT_TEXT = 0, PM_FMT_OPENMETRICS = 1, PM_FMT_PROTOBUF = 2 };

/* A scrape written while it is sent. pm_stream_new finds every series'
 * family (a cheap walk of the store); each pm_stream_next writes the next
 * part (about 256 KiB), valid until the next call: 1 with a part, 0 at
 * the end, -1 on out-of-memory. NULL on out-of-memory. */
typedef struct pm_stream pm_stream;
pm_stream *pm_stream_new(pm_core *c, int fmt);
int pm_stream_next(pm_stream *s, const char **p, size_t *n);
void pm_stream_free(pm_stream *s);

/* A whole scrape as its parts (tests, benchmarks). */
typedef struct pm_scrape {
    ot_buf *parts;
    size_t n;
} pm_scrape;

int pm_render(pm_core *c, int fmt, pm_scrape *out);
void pm_scrape_free(pm_scrape *s);
/* The same, joined into one buffer (tests). */
int pm_render_text(pm_core *c, int fmt, ot_buf *out);

#endif
