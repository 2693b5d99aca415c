/* pbwalk.h: checks an Export*ServiceRequest in its protobuf wire form
 * without building structs, for the receivers' fast path (see batch.h).
 *
 * One pass over the bytes, no allocation: field numbers, wire types,
 * varint and length bounds, nesting depth and the UTF-8 of string fields
 * are checked against the OTLP schema of the signal, and the items (spans,
 * data points, log records) are counted as protobuf-c would count them
 * after unpacking. Unknown fields are skipped, as protobuf requires for
 * forward compatibility.
 *
 * The walker is never more lenient than protobuf-c: whatever it accepts,
 * protobuf_c_message_unpack accepts too (so a lazy decode later cannot
 * fail). Where protobuf-c refuses what other protobuf libraries accept
 * (a known field sent with another wire type, groups), so does the walker. */
#ifndef OT_PBWALK_H
#define OT_PBWALK_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/otlp.h"
#include "model/otlp_check.h"

/* Deepest nesting of messages accepted (protobuf's own default limit). */
#define OT_PBWALK_MAX_DEPTH 100

/* 0 with *items set when buf is a valid request of signal s; -1 with err
 * set ("offset N: Span.name (field 5): invalid UTF-8") otherwise. */
int ot_pbwalk(ot_signal s, const void *buf, size_t len, size_t *items, ot_err *err);

/* What ot_pbwalk_check learns about a request besides its validity. */
typedef struct ot_pbwalk_info {
    size_t items;   /* spans / data points / log records, rejected ones too */
    size_t decoded; /* bytes unpacking it with protobuf-c would allocate, at
                       most (what decoding costs, for memory accounting) */
    ot_rejects rej; /* items that break a rule of otlp_check.h */
} ot_pbwalk_info;

/* ot_pbwalk that also checks each item against the rules of otlp_check.h
 * (ids of the right length, a value in every number point, exponential
 * histogram counts that add up), tallying in info->rej the items that
 * break one, and sums what decoding would allocate. Items that break a
 * rule do not fail the walk: they are to be dropped, the rest of the
 * request is good. */
int ot_pbwalk_check(ot_signal s, const void *buf, size_t len, ot_pbwalk_info *info, ot_err *err);

#endif
