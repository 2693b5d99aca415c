/* prom.h: the parts of the prometheus exporter shared by its files and its
 * unit tests. The core (pm_core) is the exporter without its HTTP server:
 * OTLP in (ingest.c, which accumulates into the metric stream store), text
 * out (scrape.c, render.c, text.c), names and values as Prometheus spells
 * them (store/promname.h, names.c). The component (prometheus.c) puts a
 * scrape endpoint and a timer around it. */
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
#include "store/pacc.h"
#include "store/promname.h"

/* ---- text escaping (names.c); the shared translation is store/promname.h */

/* A label value (or HELP text with help set) escaped for the text format. */
void pm_escape(ot_buf *out, const char *p, size_t n, bool help);

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
    /* Series the last scrape left out because their name was already a
     * family of another type (the first type met keeps the name; the
     * collector drops one of the two as well, logging each scrape). */
    atomic_size_t conflicts;
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

/* ---- a scrape (scrape.c, render.c, text.c) ------------------------------ */

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
