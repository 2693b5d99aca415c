/* otlp_json_int.h: what the OTLP JSON encoders (from structs, from wire
 * bytes) and decoder share, and nothing else includes: the nesting limit
 * every path enforces and the two per-field descriptor helpers, inline
 * because the walkers call them for every field. */
#ifndef OT_OTLP_JSON_INT_H
#define OT_OTLP_JSON_INT_H

#include <stddef.h>
#include <string.h>

#include "model/otlp_json.h"

/* Message nesting allowed on both paths. An AnyValue inside an array costs
 * two levels (AnyValue, ArrayValue) and a request reaches its first
 * attribute value at about six, so this admits 64 nested AnyValues. The
 * same limit on both paths means whatever decodes also encodes. */
#define MAX_DEPTH 140

/* OTLP writes these bytes fields as hex; everything else is base64. Returns
 * the expected byte length, or 0 for a base64 field. */
static inline size_t ojson_hex_id_len(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_BYTES)
        return 0;
    const char *n = f->name;
    if (strcmp(n, "trace_id") == 0)
        return 16;
    if (strcmp(n, "span_id") == 0 || strcmp(n, "parent_span_id") == 0)
        return 8;
    return 0;
}

/* A double (or float) as the struct encoder writes it: shortest form that
 * reads back the same, NaN and infinities as strings. */
void ojson_put_double(ot_buf *b, double v, int is_float);

static inline size_t ojson_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

#endif
