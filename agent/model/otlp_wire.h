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

#include "base/err.h"
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

/* A KeyValue: its key as protobuf-c's C string would read (up to a NUL)
 * and its AnyValue's content (val NULL when absent). */
typedef struct ot_wire_kv {
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
} ot_wire_kv;

int ot_wire_kv_read(const uint8_t *p, size_t n, ot_wire_kv *kv);

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

/* ---- walking a request's items --------------------------------------- */

/* Where an item is: the content of its resource and scope (NULL when
 * absent). */
typedef struct ot_wire_pos {
    const uint8_t *resource, *resource_end;
    const uint8_t *scope, *scope_end;
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

/* False when OTELITE_DECODED_PROCESSORS is set in the environment: the
 * processors then take the decoded path always (benchmarks and tests
 * compare the two in one binary). */
bool ot_wire_processors_enabled(void);

/* Ends an edit of b's wire form: the edited bytes become the batch's (with
 * items items), e is freed. -1 with err set on out of memory. The caller
 * holds the only reference to b, whose arena e allocated from. */
struct ot_batch;
int ot_wire_commit(struct ot_batch *b, ot_pbedit *e, size_t items, ot_err *err);

#endif
