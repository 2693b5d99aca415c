/* promname.h: OTLP metrics as Prometheus names them, for every component
 * that turns the store's streams into Prometheus series (the prometheus
 * scrape endpoint, the prometheusremotewrite exporter). One place for the
 * OpenTelemetry → Prometheus compatibility rules: metric names with their
 * unit and type suffixes, label names, attribute values as label values,
 * the labels a resource and scope give every series (job, instance,
 * otel_scope_*) and the resource's target_info series, and a stream's own
 * attributes as sorted labels with colliding names joined. */
#ifndef OT_PROMNAME_H
#define OT_PROMNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "store/mstore.h"

/* The Prometheus family name of an OTLP metric: tokens of the name joined
 * by '_', the unit's suffix (By → bytes, By/s → bytes_per_second, {x}
 * dropped), _total for monotonic sums and _ratio for gauges of unit 1 when
 * suffixes are on, the namespace first, '_' before a leading digit. unit_out
 * (may be NULL) gets the unit suffix that was added ("" if none), for
 * OpenMetrics' # UNIT and remote write's metadata. Appends to out. */
void ot_prom_metric_name(ot_buf *out, const char *ns, const char *name, size_t name_len,
                         const char *unit, size_t unit_len, ot_mstore_type type, bool monotonic,
                         bool suffixes, ot_buf *unit_out);
/* A label name: invalid characters to '_', "key_" before a digit, "key"
 * before a single leading '_'. Appends to out. */
void ot_prom_label_name(ot_buf *out, const char *p, size_t n);
/* A sample value as Prometheus writes it: NaN, +Inf, -Inf, integers in
 * full, others in the shortest form that reads back the same. om: floats
 * that are integers get ".0" (OpenMetrics le and quantile values). */
void ot_prom_value(ot_buf *out, double v, bool om);
/* The same into out (OT_PROM_VALUE_MAX bytes of room, no NUL); its length. */
#define OT_PROM_VALUE_MAX 32
size_t ot_prom_value_str(char *out, double v, bool om);
/* An integer in decimal into out (20 bytes of room); its length. */
size_t ot_prom_i64_str(char *out, int64_t i);
/* An attribute value as a label value (strings as they are, the rest as
 * JSON would write them), unescaped. */
void ot_prom_attr_text(ot_buf *out, const ot_mstore_val *v);

/* One label handed to a caller, which writes it in its own format. */
typedef void (*ot_prom_label_fn)(void *ctx, const char *name, size_t nl, const char *val,
                                 size_t vl);

/* The labels of a stream's resource and scope (from its ot_mstore_info):
 * series() gets, in this order, job (service.namespace/service.name),
 * instance (service.instance.id), otel_scope_name, otel_scope_version and,
 * with to_labels (resource_to_telemetry_conversion), every other resource
 * attribute; target() gets target_info's: job, instance and the other
 * attributes. Either may be NULL. Returns how many other attributes there
 * are: a resource with none has no target_info series. tmp: scratch. */
size_t ot_prom_resource(const ot_mstore_info *in, bool to_labels, ot_prom_label_fn series,
                        ot_prom_label_fn target, void *ctx, ot_buf *tmp);

/* ---- a stream's own labels ----------------------------------------------- */

#define OT_PROM_MAX_LABELS 128

typedef struct ot_prom_plan_e {
    uint32_t src;       /* attribute index in canonical order */
    uint32_t off, len;  /* of the name in names */
    uint32_t group_end; /* sorted index past the names equal to this one */
    bool shadowed;      /* by one of the caller's own labels (its resource's) */
} ot_prom_plan_e;

/* The label names of the last key list seen (raw keys, in canonical
 * order): sanitised, sorted and checked against the shadowing names once,
 * so streams that share their keys (most of a family) skip that work.
 * Zero-initialise; ot_prom_plan_free. */
typedef struct ot_prom_plan {
    ot_buf keys;  /* each key: its length (size_t) then its bytes */
    ot_buf names; /* the sanitised names */
    /* A list kept apart from its values (shared_keys): its key bytes as
     * the iterator holds them, so a match is one compare, not one a key. */
    ot_buf raw;
    bool has_raw;
    uint64_t gen; /* bumped whenever the plan is worked out anew */
    const void *owner; /* shadowing was worked out for this owner of names */
    size_t n;
    ot_prom_plan_e e[OT_PROM_MAX_LABELS];
    bool valid;
} ot_prom_plan;

/* Makes pl the plan of the key list of it (its first OT_PROM_MAX_LABELS
 * keys), a point attribute whose name is one of shadow[0, n_shadow) giving
 * way; owner names that list (the plan is reused while it and the keys stay
 * the same). The values go to vals. false on out-of-memory. */
bool ot_prom_plan_for(ot_prom_plan *pl, ot_mstore_iter it, const void *owner,
                      char *const *shadow, size_t n_shadow, ot_mstore_val *vals, ot_buf *tmp);
/* Calls fn for each label of the plan in name order: colliding names once,
 * with their values joined by ';' in key order; shadowed names skipped. */
void ot_prom_plan_labels(const ot_prom_plan *pl, const ot_mstore_val *vals, ot_prom_label_fn fn,
                         void *ctx, ot_buf *tmp);
void ot_prom_plan_free(ot_prom_plan *pl);

#endif
