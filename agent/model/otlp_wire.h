/* otlp_wire.h: OTLP fields read straight from protobuf bytes, for the
 * processors that work on a batch's wire form (filter, attributes,
 * resource; issue 19). The bytes have passed ot_pbwalk, so they are
 * well-formed; what these readers cannot answer the way protobuf-c's
 * decoder would (a singular message sent twice, which protobuf-c merges)
 * they decline with -1, and the caller takes the decoded path for that
 * batch. The decoded path stays the reference: tests and fuzz_wireproc
 * compare the two item by item. */
#ifndef OT_OTLP_WIRE_H
#define OT_OTLP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "model/consumer.h"
#include "model/otlp.h"
#include "model/pbedit.h"

/* Field numbers shared by the three signals: the request holds resource
 * entries (1); each holds its resource (1) and scope entries (2); each of
 * those its scope (1) and items (2). */
enum {
    OT_WF_RESOURCE_ENTRIES = 1,
    OT_WF_RESOURCE = 1,
    OT_WF_SCOPE_ENTRIES = 2,
    OT_WF_SCOPE = 1,
    OT_WF_ITEMS = 2,
    OT_WF_RESOURCE_ATTRS = 1,
};

/* Where an item's attributes are: span 9, log record 6. */
uint32_t ot_wire_item_attr_field(ot_signal s);
/* Metric data: the field of the metric that holds the points (5 gauge,
 * 7 sum, 9 histogram, 10 exponential histogram, 11 summary) and the
 * attribute field of those points; 0 when num is not a data field. */
uint32_t ot_wire_point_attr_field(uint32_t data_field);

/* An AnyValue's content, by value_case numbers (1 string ... 7 bytes;
 * 0 when none is set). The last member sent wins, as in protobuf-c. */
typedef struct ot_wire_any {
    int kind;
    const uint8_t *p; /* string, bytes, array or kvlist content */
    size_t n;
    int64_t i;
    double d;
    bool b;
} ot_wire_any;

int ot_wire_any_read(const uint8_t *p, size_t n, ot_wire_any *out);

/* A KeyValue: its key bytes and its AnyValue's content (val NULL when
 * absent). */
typedef struct ot_wire_kv {
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
} ot_wire_kv;

int ot_wire_kv_read_slow(const uint8_t *p, size_t n, ot_wire_kv *kv);

/* The common case inline: as protobuf-c writes one, a short key then a
 * short value and nothing else. */
static inline int ot_wire_kv_read(const uint8_t *p, size_t n, ot_wire_kv *kv)
{
    if (n >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= n && p[2 + p[1]] == 0x12 &&
        p[3 + p[1]] < 0x80 && (size_t)p[1] + 4 + p[3 + p[1]] == n) {
        kv->key = p + 2;
        kv->klen = p[1];
        kv->val = p + 4 + p[1];
        kv->vlen = p[3 + p[1]];
        return 0;
    }
    return ot_wire_kv_read_slow(p, n, kv);
}

/* Whether key bytes k (kl long) name key (a C string of klen): compared as
 * protobuf-c's C string of them compares, up to a NUL. */
static inline bool ot_wire_key_is(const uint8_t *k, size_t kl, const char *key, size_t klen)
{
    if (kl < klen || (klen && k[0] != (uint8_t)key[0]) || (kl != klen && k[klen] != 0))
        return false;
    return memcmp(k, key, klen) == 0;
}

/* The first entry of repeated KeyValue field num of the message in
 * [msg, end) whose key is key: 1 found, 0 not, -1 declined. */
int ot_wire_attr_find(const uint8_t *msg, const uint8_t *end, uint32_t num, const char *key,
                      size_t klen, ot_wire_kv *kv);

/* The last occurrence of field num (protobuf's rule for a scalar sent
 * twice): 1 found, 0 not, -1 bad bytes. */
int ot_wire_field(const uint8_t *msg, const uint8_t *end, uint32_t num, ot_pbfield *f);

/* The single occurrence of message field num: 1 found (content in
 * *p..*pe), 0 not, -1 declined (sent twice: protobuf-c would merge). */
int ot_wire_submsg(const uint8_t *msg, const uint8_t *end, uint32_t num, const uint8_t **p,
                   const uint8_t **pe);

/* Data points of a metric message (of its last data field); -1 declined. */
int ot_wire_metric_points(const uint8_t *m, const uint8_t *end, size_t *n);

/* ---- an item's fields, found once --------------------------------------
 * Several readers of one item (conditions, then attribute actions) would
 * each step over all its fields; the index does it once and says where
 * the first and last occurrence of each field number is. */
#define OT_WIRE_IDX 24

/* One KeyValue entry of an attribute list, as the index read it. */
typedef struct ot_wire_attr {
    const uint8_t *at, *end; /* the whole field, tag to end */
    const uint8_t *key, *val; /* val NULL: the entry has no value */
    uint32_t klen, vlen;
} ot_wire_attr;

#define OT_WIRE_ATTRS 64

typedef struct ot_wire_index {
    const uint8_t *of, *end; /* the item's content it describes; of NULL: none */
    uint32_t seen;           /* bit n: field n occurs (first[n], last[n] are set) */
    uint32_t kvok;           /* bit n: field n is one run of short KeyValues */
    uint32_t kv_fields;      /* bit n: kvok is noted for field n, one keys were looked up
                                in (set by the first lookup, for the walk's later items) */
    uint64_t kfirst[16];     /* for a field of kvok: bit b, a key starts with b modulo 64 */
    uint32_t first[OT_WIRE_IDX], last[OT_WIRE_IDX]; /* offset + 1 of the tag */
    uint32_t lend[OT_WIRE_IDX]; /* offset of the end of the last occurrence */
    uint32_t first_high; /* offset + 1 of the first field numbered OT_WIRE_IDX or more */
    /* The attribute entries of one field, read on first use for every
     * reader of the item that needs them all (an update, a delete):
     * storage the walk lends (NULL: none, readers step over the bytes
     * each). A lookup of one key steps over the entries instead. */
    ot_wire_attr *attrs;
    uint32_t attr_num; /* the field attrs holds; 0: not read for this item */
    int n_attrs;       /* entries, or -1: not usable (see ot_wire_index_attrs) */
} ot_wire_index;

/* The index of [item, end), built unless it is already that item's: 0, or
 * -1 on bytes that are not fields. */
int ot_wire_index_of(ot_wire_index *x, const uint8_t *item, const uint8_t *end);
/* Field num's last occurrence (protobuf's rule for a scalar sent twice):
 * 1 found, 0 not, -1 bad bytes. */
int ot_wire_index_field(const ot_wire_index *x, uint32_t num, ot_pbfield *f);
/* The single occurrence of message field num, as ot_wire_submsg. */
int ot_wire_index_submsg(const ot_wire_index *x, uint32_t num, const uint8_t **p,
                         const uint8_t **pe);
/* From field num's first occurrence to past its last (*p == *pe: none). */
void ot_wire_index_range(const ot_wire_index *x, uint32_t num, const uint8_t **p,
                         const uint8_t **pe);
/* Where a new field num goes: after its last occurrence, or before the
 * first field numbered above it, or at the end. */
const uint8_t *ot_wire_index_insert_at(const ot_wire_index *x, uint32_t num);
/* The entries of repeated KeyValue field num (wire type 2 only) of the
 * indexed item, read on the first call for that field and kept: their
 * count, with *out set; -1 when the index has no storage, the item has
 * more than OT_WIRE_ATTRS of them, or one is not what the fast reader
 * answers for (a KeyValue protobuf-c would merge, bad bytes). On -1 the
 * caller steps over the bytes itself, which gives its usual answer. */
int ot_wire_index_attrs(ot_wire_index *x, uint32_t num, const ot_wire_attr **out);
/* The first entry of repeated KeyValue field num of the indexed item whose
 * key is key (as ot_wire_attr_find): 1 found (*kv), 0 not, -1 declined.
 * Uses the entries ot_wire_index_attrs read if any; on a run of short
 * KeyValues the index checked (from the walk's second item on: the first
 * lookup notes the field), a key no entry starts like is absent at once
 * and otherwise only the keys are read; else it steps over the bytes. */
int ot_wire_index_key(ot_wire_index *x, uint32_t num, const char *key, size_t klen,
                      ot_wire_kv *kv);

/* ---- walking a request's items --------------------------------------- */

/* Where an item is: the content of its resource and scope (NULL when
 * absent), and the walk's index for the item (built on first use). */
typedef struct ot_wire_pos {
    const uint8_t *resource, *resource_end;
    const uint8_t *scope, *scope_end;
    ot_wire_index *idx;
} ot_wire_pos;

/* Called per item (span, metric, log record; f is its field). Sets *drop
 * to cut it; may edit inside it through e (entering f first). Returns 0 to
 * go on; anything else stops the walk and is returned. */
typedef int (*ot_wire_item_fn)(void *ctx, ot_pbedit *e, const ot_wire_pos *pos,
                               const ot_pbfield *f, bool *drop);

#define OT_WIRE_DECLINED 1

/* Walks every item of the request e edits, in order, entering its resource
 * and scope entries; with drop_empty a scope or resource entry left
 * without items is cut (what the decoded filter does). *n_res and *kept_res
 * (may be NULL) count resource entries before and after. Returns 0,
 * OT_WIRE_DECLINED for bytes protobuf-c would read differently than a walk
 * can (a resource or scope sent twice), or fn's return. */
int ot_wire_walk_items(ot_pbedit *e, ot_wire_item_fn fn, void *ctx, bool drop_empty,
                       size_t *n_res, size_t *kept_res);

/* As ot_wire_walk_items, and res (may be NULL) is called for each resource
 * entry rf when the walk meets its Resource (res), or first thing when the
 * entry has none (res NULL), so an edit there stays in buffer order. */
typedef int (*ot_wire_res_fn)(void *ctx, ot_pbedit *e, const ot_pbfield *rf,
                              const ot_pbfield *res);
int ot_wire_walk_items_res(ot_pbedit *e, ot_wire_res_fn res, ot_wire_item_fn fn, void *ctx,
                           bool drop_empty, size_t *n_res, size_t *kept_res);

/* ---- several processors in one walk ------------------------------------
 * A run of processors that all work on the wire form would each walk the
 * request and copy it once. When none of them reads what an earlier one
 * writes, one walk can do all of their work per resource and per item, in
 * pipeline order, with one edit list and one copy: the first processor of
 * the run calls ot_wire_chain, which finds the run by following each
 * stage's next consumer. What a stage reads and writes: */
enum {
    OT_WIRE_RES_ATTRS = 1,  /* resource attributes */
    OT_WIRE_ITEM_ATTRS = 2, /* attributes of spans, log records, data points */
    OT_WIRE_FIELDS = 4,     /* every other field of items, scopes, resources */
};

#define OT_WIRE_SCRATCH 1024 /* per stage and batch, for its walk state */

struct ot_batch;

/* A processor that can take part puts one of these where its consumer
 * would be: base.consume is ot_wire_stage_consume (which is how the run
 * recognises a stage among consumers) and calls consume, the processor's
 * own function. */
typedef struct ot_wire_stage ot_wire_stage;
struct ot_wire_stage {
    ot_consumer base;
    ot_status (*consume)(ot_wire_stage *self, struct ot_batch *b, ot_err *err);
    bool on;                  /* takes part (its config works on the wire form) */
    unsigned reads, writes;
    bool drops;               /* a filter: drops items, and scopes left empty */
    ot_consumer *next;        /* the consumer after this processor */
    void *self;
    /* Per batch, before the walk: 0 ready, else the run ends before it. */
    int (*begin)(void *self, struct ot_batch *b, void *scratch, ot_err *err);
    ot_wire_res_fn resource; /* may be NULL */
    ot_wire_item_fn item;    /* may be NULL */
    /* Items it dropped in this walk (may be NULL). */
    size_t (*dropped)(void *scratch);
    /* After the walk was committed (counters). */
    void (*done)(void *scratch);
};

ot_status ot_wire_stage_consume(ot_consumer *self, struct ot_batch *b, ot_err *err);

/* Runs the run of stages that starts at first on b's bytes and hands the
 * result to the consumer after the run: 0 with *st its answer (b was
 * consumed), or OT_WIRE_DECLINED with b untouched (fewer than two stages
 * fit, or one declined: the processors run one by one). -1 with err set
 * when a stage failed (b released; *st OT_PERMANENT). */
int ot_wire_chain(ot_wire_stage *first, struct ot_batch *b, ot_status *st, ot_err *err);

/* False when OTELITE_DECODED_PROCESSORS is set in the environment: the
 * processors then take the decoded path always (benchmarks and tests
 * compare the two in one binary). */
bool ot_wire_processors_enabled(void);

/* Ends an edit of b's wire form: the edited bytes become the batch's (with
 * items items), e is freed. -1 with err set on out of memory. The caller
 * holds the only reference to b, whose arena e allocated from. */
int ot_wire_commit(struct ot_batch *b, ot_pbedit *e, size_t items, ot_err *err);

#endif
