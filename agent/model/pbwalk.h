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

/* Deepest nesting of messages accepted (protobuf's own default limit). */
#define OT_PBWALK_MAX_DEPTH 100

/* 0 with *items set when buf is a valid request of signal s; -1 with err
 * set ("offset N: Span.name (field 5): invalid UTF-8") otherwise. */
int ot_pbwalk(ot_signal s, const void *buf, size_t len, size_t *items, ot_err *err);

#endif
