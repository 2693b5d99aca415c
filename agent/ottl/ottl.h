/* ottl.h: the condition subset of the OpenTelemetry Transformation Language
 * (OTTL), so collector configs with `filter` conditions and conditional
 * attribute actions run unchanged. A condition is parsed and type-checked
 * once, at config check time, into a tree that is evaluated per span,
 * event, metric, data point or log record without allocating.
 *
 * Supported: paths of the span, spanevent, metric, datapoint and log
 * contexts (with `resource.` and `instrumentation_scope.`), map and list
 * indexing, string/int/float/bool/nil/bytes literals, the usual enums,
 * == != < <= > >=, not / and / or with parentheses, and the converters
 * IsMatch, IsString, IsInt, IsDouble, IsBool, IsMap, IsList, Len, TraceID,
 * SpanID, IsRootSpan. Comparisons follow OTTL: values of different types
 * are "not equal" (only != is true), nil equals only nil, ints and floats
 * compare as numbers. */
#ifndef OT_OTTL_H
#define OT_OTTL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "base/err.h"
#include "model/otlp.h"
#include "model/otlp_wire.h"

typedef enum ot_ottl_ctx {
    OT_OTTL_SPAN = 0,
    OT_OTTL_SPANEVENT,
    OT_OTTL_METRIC,
    OT_OTTL_DATAPOINT,
    OT_OTTL_LOG,
    OT_OTTL_CTX_COUNT
} ot_ottl_ctx;

/* "span", "spanevent", "metric", "datapoint", "log" */
const char *ot_ottl_ctx_name(ot_ottl_ctx c);

/* A problem found while parsing: where (byte offset into the condition)
 * and what, e.g. `expected an operator, found "="`. */
typedef struct ot_ottl_diag {
    size_t offset;
    char msg[256];
} ot_ottl_diag;

typedef struct ot_ottl_cond ot_ottl_cond;

/* Parses and type-checks one condition for a context. NULL on error with
 * *err filled. warn (may be NULL) gets the first suspicious-but-valid
 * construct (a comparison that can never be true); warn->msg is "" when
 * there is none. The result owns its memory; free with ot_ottl_free. */
ot_ottl_cond *ot_ottl_parse(ot_ottl_ctx ctx, const char *text, size_t len, ot_ottl_diag *err,
                            ot_ottl_diag *warn);
void ot_ottl_free(ot_ottl_cond *c);
const char *ot_ottl_text(const ot_ottl_cond *c);

/* What a condition looks at. Fill what the context needs: span for span;
 * span and event for spanevent; metric for metric; metric and point for
 * datapoint (the point's type follows metric->data_case); log for log.
 * resource and scope may be NULL in every context. */
/* The same item as protobuf bytes (issue 19: processors on the wire
 * form): content ranges of the Resource, InstrumentationScope (NULL when
 * absent) and the span, metric or log record. When an item has one, the
 * condition reads from it and the structs are not looked at. A value the
 * bytes cannot give directly (a map or list, Len of a map) sets declined
 * and the evaluation fails: the caller decodes the batch and evaluates
 * again on the structs. */
typedef struct ot_ottl_wire {
    const uint8_t *resource, *resource_end;
    const uint8_t *scope, *scope_end;
    const uint8_t *item, *item_end;
    bool declined;
    /* Where the item's fields are (built on first use and shared with
     * whoever else reads the item, e.g. a walk's ot_wire_pos.idx); NULL:
     * the evaluator uses own. Either must not outlive the bytes: a new
     * batch can put a new item at an old item's address. */
    ot_wire_index *idx;
    ot_wire_index own;
} ot_ottl_wire;

/* Points w at the item in field f of a walk (model/otlp_wire.h), with
 * the walk's resource, scope and index. */
static inline void ot_ottl_wire_at(ot_ottl_wire *w, const ot_wire_pos *pos, const ot_pbfield *f)
{
    w->resource = pos->resource;
    w->resource_end = pos->resource_end;
    w->scope = pos->scope;
    w->scope_end = pos->scope_end;
    w->item = f->val;
    w->item_end = f->val + f->len;
    w->declined = false;
    w->idx = pos->idx;
}

typedef struct ot_ottl_item {
    ot_ottl_wire *wire; /* NULL: read the structs below */
    const ot_resource *resource;
    const ot_scope *scope;
    const ot_span *span;
    const ot_span_event *event;
    const ot_metric *metric;
    const void *point;
    const ot_log_record *log;
} ot_ottl_item;

/* True when every path the condition reads can be read from the wire
 * form (see ot_ottl_wire): fields of the span, log and metric contexts,
 * their resource and scope, attributes looked up by a key. */
bool ot_ottl_wire_ok(const ot_ottl_cond *c);

/* 1 when the condition holds, 0 when not, -1 on an error at run time (a
 * regex hit its match limit, Len of an int) with err set. Thread-safe. */
int ot_ottl_eval(const ot_ottl_cond *c, const ot_ottl_item *it, ot_err *err);

/* ---- lists of conditions, as components configure them ----------------- */

/* What happens when a condition fails at run time, as the collector's
 * `error_mode` says: propagate refuses the data, ignore logs and takes the
 * condition as false, silent takes it as false without a word. */
typedef enum ot_ottl_errmode {
    OT_OTTL_PROPAGATE = 0,
    OT_OTTL_IGNORE,
    OT_OTTL_SILENT,
} ot_ottl_errmode;

/* Choices for an OT_KT_ENUM `error_mode` key, in ot_ottl_errmode order. */
extern const char *const ot_ottl_errmode_names[];

/* Conditions ORed together: "the item matches any of these". */
typedef struct ot_ottl_set {
    ot_ottl_cond **conds;
    size_t n;
    ot_ottl_errmode mode;
    const char *who;            /* component id, for logs */
    atomic_int_fast64_t logged; /* last error log (ns), to rate-limit */
} ot_ottl_set;

/* Parses every condition of l for ctx into s. -1 with err set when one
 * does not parse (validation reports these first, so this is rare). An
 * empty list gives an empty set, which matches nothing. */
int ot_ottl_set_init(ot_ottl_set *s, ot_ottl_ctx ctx, const ot_strlist *l, ot_ottl_errmode mode,
                     const char *who, ot_err *err);
/* 1 when any condition holds, 0 when none does, -1 when one failed and the
 * mode is propagate (err set); OT_OTTL_DECLINED when the item's wire form
 * could not answer (decode and evaluate the structs). */
int ot_ottl_set_eval(ot_ottl_set *s, const ot_ottl_item *it, ot_err *err);
#define OT_OTTL_DECLINED (-2)
/* ot_ottl_wire_ok for every condition of the set. */
bool ot_ottl_set_wire_ok(const ot_ottl_set *s);
void ot_ottl_set_free(ot_ottl_set *s);

/* Config check of one condition, written as the scalar at (may be NULL):
 * an error or warning goes to d at file:line:col of the offending
 * character. Returns 1 when the condition does not parse, else 0. */
size_t ot_ottl_check(ot_ottl_ctx ctx, const char *text, size_t len, const ot_node *at,
                     const char *path, ot_diags *d);
/* Config check: parses each condition of l, and reports every error (and
 * warning) at its file:line:col, the column pointing at the offending
 * character inside the YAML string. Returns the number of errors. */
size_t ot_ottl_check_list(ot_ottl_ctx ctx, const ot_strlist *l, const char *path, ot_diags *d);

#endif
