/* otlp_json.h: the OTLP JSON encoding (OTLP/HTTP with application/json,
 * and the file exporter's lines).
 *
 * Walks protobuf-c descriptors, so one codec serves every OTLP message.
 * Per the OTLP specification: trace_id/span_id/parent_span_id as lowercase
 * hex (other bytes base64), 64-bit integers as decimal strings, enums as
 * numbers, lowerCamelCase keys on output; on input both lowerCamelCase and
 * snake_case keys are accepted, enums by number or name, 64-bit integers as
 * strings or numbers, and unknown keys are ignored. */
#ifndef OT_OTLP_JSON_H
#define OT_OTLP_JSON_H

#include <stddef.h>

#include "base/arena.h"
#include "model/batch.h"
#include "base/buf.h"
#include "base/err.h"

/* Appends msg as compact JSON (no newline). */
int ot_json_encode(const ProtobufCMessage *msg, ot_buf *out, ot_err *err);

/* Appends, from the protobuf bytes of an export request of signal s,
 * exactly what ot_json_encode appends for the decoded request, without
 * decoding it. 0 done; 1 when the bytes are not laid out as protobuf-c
 * packs them (see otlp_json_wire.c) or do not parse: nothing appended, use
 * ot_json_encode; -1 with err set on OOM. */
int ot_json_encode_wire(ot_signal s, const void *buf, size_t len, ot_buf *out, ot_err *err);

/* Decodes a JSON document into a message of type desc allocated in arena.
 * NULL with err set ("offset N: expected ..., found ...") when the JSON is
 * malformed or a value has the wrong type. */
ProtobufCMessage *ot_json_decode(const ProtobufCMessageDescriptor *desc, const char *json,
                                 size_t len, ot_arena *arena, ot_err *err);

/* A batch from an OTLP JSON export request body. */
ot_batch *ot_batch_from_json(ot_signal s, const char *json, size_t len, ot_err *err);

/* The same, refusing (NULL, *over = 1) once the decoded request would
 * hold more than max_bytes of arena: what a receiver's budget allows, so
 * a body of empty objects cannot make the agent allocate 80x its size. */
ot_batch *ot_batch_from_json_max(ot_signal s, const char *json, size_t len, size_t max_bytes,
                                 int *over, ot_err *err);

#endif
