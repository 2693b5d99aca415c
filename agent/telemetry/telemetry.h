/* telemetry.h: the registry of the agent's own metrics.
 *
 * A process-wide registry of counters and gauges, keyed by name and labels,
 * that outlives reloads so counts never reset while the process runs.
 * Components fetch a cell once at create time and update it with one atomic
 * add on the hot path. ot_tel_render() writes the Prometheus text format
 * (clean under `promtool check metrics`) that pipeline/telemetry_server.c
 * serves on /metrics. */
#ifndef OT_TELEMETRY_H
#define OT_TELEMETRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct ot_counter {
    atomic_uint_fast64_t v;
} ot_counter;

typedef struct ot_gauge {
    atomic_int_fast64_t v;
} ot_gauge;

/* name: full metric name ("otelite_receiver_accepted_spans_total" for a
 * counter). labels: Prometheus label text without braces, e.g.
 * `receiver="otlp",transport="http"`, or "" . The same name+labels returns
 * the same cell, whatever the label order. Counter names end in _total,
 * gauge names do not, help is required, and the process_* and
 * otelite_build_info / otelite_uptime_seconds names are taken: a refused
 * registration is logged as a warning and, like out-of-memory, gets a
 * static sink that is never rendered. Never NULL. The first help text given
 * for a name is the one rendered. */
ot_counter *ot_tel_counter(const char *name, const char *help, const char *labels);
ot_gauge *ot_tel_gauge(const char *name, const char *help, const char *labels);

static inline void ot_counter_add(ot_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}
static inline void ot_gauge_set(ot_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}
static inline void ot_gauge_add(ot_gauge *g, int64_t d)
{
    atomic_fetch_add_explicit(&g->v, d, memory_order_relaxed);
}

/* Prometheus text exposition of every cell plus process metrics (RSS, CPU,
 * start time, open fds) and otelite_build_info. */
void ot_tel_render(ot_buf *out);

/* Readiness as /readyz reports it (pipelines started). */
void ot_tel_set_ready(bool ready);
bool ot_tel_ready(void);

/* Frees every cell; call once at process exit. */
void ot_tel_reset(void);

#endif
