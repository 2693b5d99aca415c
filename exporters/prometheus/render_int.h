/* render_int.h: what the files of a scrape share: the scrape's tables
 * (scrape.c walks the store and drives the response), what is worked out
 * once a scrape (families, resources: render.c), the text of labels and
 * samples (text.c) and the protobuf encoder (render_pb.c). */
#ifndef PM_RENDER_INT_H
#define PM_RENDER_INT_H

#include "prom.h"

/* Buffers an encode reuses from one metric to the next. */
typedef struct pm_pb_scratch {
    ot_buf m, sub, t;
} pm_pb_scratch;

void pm_pb_varint(ot_buf *b, uint64_t v);
/* One Metric.label (a LabelPair). */
void pm_pb_label(ot_buf *b, const char *name, size_t nl, const char *val, size_t vl);
/* One MetricFamily.metric field: labels (encoded LabelPairs) and s's
 * value; ts_ms 0: no timestamp. */
void pm_pb_metric(ot_buf *out, pm_pb_scratch *x, const ot_buf *labels, ot_pacc_state *s,
                  int64_t ts_ms);
/* Exactly n bytes (n >= 2) of MetricFamily fields that parsers skip (an
 * unknown field number): what stands for a series whose bytes changed
 * after its family's length was written. */
void pm_pb_filler(ot_buf *b, size_t n);
/* The length prefix, name, help and type of a MetricFamily whose metric
 * fields (body_len bytes) follow. */
void pm_pb_family_head(ot_buf *out, const char *name, const char *help, int kind,
                       size_t body_len);

/* ---- a scrape's tables -------------------------------------------------- */

/* A family: found by the first walk, written by the second. */
typedef struct pm_fam {
    char *name;
    size_t name_len;
    bool has_total; /* the name ends in _total (OpenMetrics names the family without) */
    int kind;
    char *help; /* the HELP text, unescaped */
    char *unit; /* the unit suffix the name got ("" if none), for # UNIT */
    ot_buf pre; /* series known before the second walk (target_info's) */
    size_t first, n; /* its stream hashes: rctx.hashes[first, first + n) */
} pm_fam;

/* The labels every stream of a resource and scope carries. */
typedef struct res_ent {
    char *key; /* resource bytes, scope name \0 version */
    size_t key_len;
    char *labels; /* ,job="…",… as they follow a stream's own labels */
    size_t labels_len;
    char **names; /* the label names in labels: a point attribute of the same name gives way */
    size_t n_names;
    bool used;
} res_ent;

/* What a shared identity (resource+scope+metric, by its store id) comes
 * to, worked out once per scrape: its family and its resource's labels
 * (a copy of the res_ent, whose strings the resource table owns). */
typedef struct base_ent {
    uint64_t id; /* 0: empty slot */
    int32_t fam; /* index into fams; BASE_HIDDEN, BASE_UNKNOWN */
    uint32_t tries; /* lookups of one of its streams that found it gone */
    uint32_t seq; /* order of insertion: 0, 1, ... (a scrape groups by it) */
    res_ent re;
} base_ent;

/* BASE_CONFLICT: its name is a family of another type in this scrape. */
enum { BASE_HIDDEN = -1, BASE_UNKNOWN = -2, BASE_CONFLICT = -3 };

typedef struct table {
    void *v;
    size_t n, cap;
} table;

#define MAX_LABELS OT_PROM_MAX_LABELS

typedef struct rctx {
    pm_core *c;
    int fmt;
    pm_fam *fams;
    size_t n_fams, cap_fams;
    table fam_by_name; /* fam_slot */
    table metrics;     /* metric_ent */
    table resources;   /* res_ent */
    table targets;     /* res_ent (labels: target_info's), by resource bytes */
    table bases;       /* base_ent, by id */
    ot_buf tmp, labels, name;
    ot_prom_plan plan;
    /* The plan's labels as text: each one's ",name=\"" worked out once a
     * plan (gen), when no name collides or gives way (simple). */
    struct {
        uint64_t gen;
        bool simple;
        ot_buf pre;
        uint32_t off[MAX_LABELS], len[MAX_LABELS];
    } tp;
    pm_pb_scratch pb;
    int err;
} rctx;

/* render.c */
/* The base_ent of id, inserted (fam BASE_UNKNOWN) when new; NULL on OOM. */
base_ent *pm_base(rctx *r, uint64_t id, bool insert);
/* Works out b's family and resource from a stream of it. */
void pm_resolve(rctx *r, base_ent *b, const ot_mstore_stream *st);
/* The HELP, TYPE (and UNIT) lines of f. */
void pm_header(rctx *r, const pm_fam *f, ot_buf *b);
void pm_tables_free(rctx *r);

/* text.c */
/* One label: text (",name=\"value\"", the value escaped) or a protobuf
 * LabelPair. */
void pm_put_label(bool pb, ot_buf *b, const char *name, size_t nl, const char *val, size_t vl);
/* The stream's labels (its own, then its resource's) into r->labels. */
void pm_stream_labels(rctx *r, const ot_mstore_stream *st, const res_ent *re);
/* A stream's samples, its labels worked out (pm_stream_labels) or, for
 * a plain counter or gauge line, written straight into b. */
void pm_series(rctx *r, const pm_fam *f, ot_buf *b, const ot_mstore_stream *st,
               const res_ent *re, ot_pacc_state *s);
/* The samples of a stream whose labels are in r->labels. */
void pm_samples(rctx *r, const pm_fam *f, ot_buf *b, ot_pacc_state *s);

#endif
