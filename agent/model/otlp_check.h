/* otlp_check.h: the rules a single item (span, data point, log record) must
 * keep that the schema alone does not say, and the tally of items refused
 * for them. A receiver rejects the items that break one, not the request:
 * the rest go on and the client hears partial_success with the count and
 * the first reason. The same rules are checked on the decoded structs
 * (here, for OTLP/JSON and for rebuilding a request) and on the protobuf
 * bytes (ot_pbwalk_check, the fast path); both name the same reasons. */
#ifndef OT_OTLP_CHECK_H
#define OT_OTLP_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "model/otlp.h"

typedef enum ot_reject_reason {
    OT_REJ_TRACE_ID = 0,   /* span: not 16 bytes; log record: neither empty nor 16 */
    OT_REJ_SPAN_ID,        /* span: not 8 bytes; log record: neither empty nor 8 */
    OT_REJ_PARENT_SPAN_ID, /* neither empty nor 8 bytes */
    OT_REJ_NO_VALUE,       /* a number data point with neither as_int nor as_double */
    OT_REJ_BUCKET_COUNTS,  /* exponential histogram: zero_count + buckets != count */
    OT_REJ_REASONS
} ot_reject_reason;

typedef struct ot_rejects {
    uint64_t n;                         /* items rejected */
    uint64_t by_reason[OT_REJ_REASONS];
    int first;                          /* reason of the first rejected item; -1 none */
} ot_rejects;

#define OT_REJECTS_INIT {0, {0}, -1}

/* Label value of a reason for counters: "trace_id", "no_value", ... */
const char *ot_reject_name(ot_reject_reason r);
/* What the client is told about a reason. */
const char *ot_reject_text(ot_reject_reason r);
void ot_rejects_add(ot_rejects *r, ot_reject_reason why);
/* partial_success.error_message: "2 spans rejected; first reason: invalid
 * trace_id (...)". Empty when nothing was rejected. */
void ot_rejects_message(const ot_rejects *r, ot_signal s, char *out, size_t cap);

/* Removes from msg (a request of signal s, changed in place) every item
 * that breaks a rule, tallying each in r. Returns how many were removed. */
size_t ot_drop_invalid(ot_signal s, ProtobufCMessage *msg, ot_rejects *r);

/* The reason a decoded item breaks, or -1 when it keeps every rule. */
int ot_check_span(const ot_span *sp);
int ot_check_log_record(const ot_log_record *lr);
int ot_check_number_point(const ot_number_point *p);
int ot_check_exphistogram_point(const ot_exphistogram_point *p);

#endif
