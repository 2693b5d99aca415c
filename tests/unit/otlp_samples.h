/* otlp_samples.h: deterministic, realistic OTLP export requests for tests
 * and benchmarks, so every suite exercises the same shapes of data instead
 * of each hand-building its own. Everything is allocated in the given
 * arena; the same arguments always give the same request, byte for byte.
 *
 * These are test helpers: on out-of-memory they abort. */
#ifndef OT_SAMPLES_H
#define OT_SAMPLES_H

#include <stddef.h>

#include "base/arena.h"
#include "model/otlp.h"

/* One service (resource) and one scope; n_spans spans in traces of up to 4
 * spans (parent chains), n_attrs attributes each of mixed value types
 * (string, int, double, bool). Every 5th span has an exception event,
 * every 7th a link, every 10th an error status. */
ot_trace_req *ot_sample_traces(ot_arena *a, size_t n_spans, size_t n_attrs);

/* Every feature of the trace model in a small request: two resources with
 * schema URLs, scope attributes, span flags and trace state, events, links,
 * status, dropped counts, and attributes holding every AnyValue kind
 * (including nested arrays and kvlists, bytes, empty and unset values). */
ot_trace_req *ot_sample_traces_rich(ot_arena *a);

/* n_points data points in metrics of up to 4 points each, cycling through
 * gauge (double and int), sum (cumulative monotonic int, delta double),
 * histogram (with and without sum/min/max, with exemplars), exponential
 * histogram (positive and negative buckets) and summary. Each point has
 * n_attrs attributes. With n_points >= 32 every kind appears. */
ot_metrics_req *ot_sample_metrics(ot_arena *a, size_t n_points, size_t n_attrs);

/* n_records log records cycling severities; bodies mostly strings, also
 * kvlist, int, double, bool, bytes and array bodies; every other record
 * carries trace and span ids. With n_records >= 8 every body kind appears. */
ot_logs_req *ot_sample_logs(ot_arena *a, size_t n_records, size_t n_attrs);

/* The sample of signal s with n_items spans / points / records. */
ProtobufCMessage *ot_sample_request(ot_arena *a, ot_signal s, size_t n_items, size_t n_attrs);

#endif
