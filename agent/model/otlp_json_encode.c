/* otlp_json_encode.c: the OTLP JSON encoder (see otlp_json.h): a message
 * written as compact JSON straight into an ot_buf.
 *
 * One generic walker over protobuf-c descriptors instead of hand-written code
 * per message, so every OTLP message (and any added later) is covered by the
 * same rules. Output is written straight into an ot_buf with no allocation
 * per field.
 *
 * Which fields are written mirrors what protobuf-c packs (the same "is this
 * field present" tests), so protobuf -> JSON -> protobuf gives the same
 * bytes.
 *
 * Apart from the decoder: the two share only the rules in otlp_json_int.h. */
#include "model/otlp_json_int.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"

/* ---------------------------------------------------------------- encode */

typedef struct enc {
    ot_buf *b;
    int depth;
    int too_deep;
} enc;

/* Room for n more bytes plus the NUL that ot_buf keeps after the data. */
static char *enc_room(enc *e, size_t n)
{
    if (ot_buf_reserve(e->b, n + 1) < 0)
        return NULL;
    return e->b->data + e->b->len;
}

static void enc_done(enc *e, char *end)
{
    e->b->len = (size_t)(end - e->b->data);
    e->b->data[e->b->len] = '\0';
}

static void enc_raw(enc *e, const char *s, size_t n)
{
    ot_buf_append(e->b, s, n);
}

/* ,"lowerCamelName": written in place from the proto field name. */
static void enc_key(enc *e, const char *name, int first)
{
    size_t n = strlen(name);
    char *p = enc_room(e, n + 4);
    if (!p)
        return;
    if (!first)
        *p++ = ',';
    *p++ = '"';
    int up = 0;
    for (const char *s = name; *s; s++) {
        if (*s == '_') {
            up = 1;
            continue;
        }
        *p++ = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        up = 0;
    }
    *p++ = '"';
    *p++ = ':';
    enc_done(e, p);
}

/* Decimal digits of v, right-aligned ending at end; returns the start. */
static char *u64_digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* An integer in decimal, negative when neg, in quotes when quoted (as
 * OTLP JSON writes 64-bit integers). */
static void enc_int(enc *e, uint64_t magnitude, bool neg, int quoted)
{
    char tmp[24], *end = tmp + sizeof tmp;
    char *s = u64_digits(magnitude, end);
    if (neg)
        *--s = '-';
    char *p = enc_room(e, 24);
    if (!p)
        return;
    if (quoted)
        *p++ = '"';
    memcpy(p, s, (size_t)(end - s));
    p += end - s;
    if (quoted)
        *p++ = '"';
    enc_done(e, p);
}

static void enc_u64(enc *e, uint64_t v, int quoted)
{
    enc_int(e, v, false, quoted);
}

static void enc_i64(enc *e, int64_t v, int quoted)
{
    enc_int(e, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0, quoted);
}

/* Shortest of %.15g..%.17g (or %.6g..%.9g for float) that reads back as the
 * same value, so output stays readable and round-trips exactly. */
static void enc_double(enc *e, double v, int is_float)
{
    if (isnan(v)) {
        enc_raw(e, "\"NaN\"", 5);
        return;
    }
    if (isinf(v)) {
        if (v > 0)
            enc_raw(e, "\"Infinity\"", 10);
        else
            enc_raw(e, "\"-Infinity\"", 11);
        return;
    }
    if (v == 0) {
        /* "-0" would read back as the integer 0 and lose the sign. */
        if (signbit(v))
            enc_raw(e, "-0.0", 4);
        else
            enc_raw(e, "0", 1);
        return;
    }
    if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
        enc_i64(e, (int64_t)v, 0);
        return;
    }
    char tmp[40];
    int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17, n = 0;
    for (int prec = lo; prec <= hi; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        double back = strtod(tmp, NULL);
        if (is_float ? (float)back == (float)v : back == v)
            break;
    }
    enc_raw(e, tmp, (size_t)n);
}

/* A bytes field: hex for the ids OTLP writes so, else padded base64. */
static void enc_bytes(enc *e, const ProtobufCBinaryData *bd, bool hex)
{
    char *p = enc_room(e, (hex ? bd->len * 2 : ot_base64_len(bd->len, 0)) + 2);
    if (!p)
        return;
    *p++ = '"';
    if (hex)
        p += ot_hex_encode(bd->data, bd->len, p, false);
    else
        p += ot_base64_encode(bd->data, bd->len, p, 0);
    *p++ = '"';
    enc_done(e, p);
}

void ojson_put_double(ot_buf *b, double v, int is_float)
{
    enc e = {b, 0, 0};
    enc_double(&e, v, is_float);
}

static void enc_message(enc *e, const ProtobufCMessage *m);

static void enc_value(enc *e, const ProtobufCFieldDescriptor *f, const void *v)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        enc_i64(e, *(const int32_t *)v, 0);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        enc_u64(e, *(const uint32_t *)v, 0);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        enc_i64(e, *(const int64_t *)v, 1);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        enc_u64(e, *(const uint64_t *)v, 1);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        enc_double(e, *(const float *)v, 1);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        enc_double(e, *(const double *)v, 0);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (*(const protobuf_c_boolean *)v)
            enc_raw(e, "true", 4);
        else
            enc_raw(e, "false", 5);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        if (!s)
            s = "";
        ot_buf_json_str(e->b, s, strlen(s));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        enc_bytes(e, v, ojson_hex_id_len(f) != 0);
        break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)v;
        if (sub)
            enc_message(e, sub);
        else
            enc_raw(e, "{}", 2);
        break;
    }
    }
}

/* Would protobuf-c put this singular field on the wire? */
static int field_present(const ProtobufCFieldDescriptor *f, const char *base)
{
    const void *member = base + f->offset;
    int ptr_type = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
            return 0;
        if (ptr_type) {
            const void *p = *(const void *const *)member;
            return p && p != f->default_value;
        }
        return 1;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL || f->label == PROTOBUF_C_LABEL_REQUIRED) {
        if (ptr_type) {
            const void *p = *(const void *const *)member;
            return p && (f->label == PROTOBUF_C_LABEL_REQUIRED || p != f->default_value);
        }
        if (f->label == PROTOBUF_C_LABEL_REQUIRED)
            return 1;
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    }
    /* proto3 singular: only non-default values. */
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)member != 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member != 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)member != 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)member != 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)member != 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)member;
        return s && *s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len != 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)member != NULL;
    }
    return 0;
}

static void enc_message(enc *e, const ProtobufCMessage *m)
{
    if (e->depth >= MAX_DEPTH) {
        e->too_deep = 1;
        return;
    }
    e->depth++;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int first = 1;
    ot_buf_putc(e->b, '{');
    for (unsigned i = 0; i < d->n_fields && !e->too_deep; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
            const char *arr = *(const char *const *)(base + f->offset);
            size_t sz = ojson_elem_size(f->type);
            enc_key(e, f->name, first);
            first = 0;
            ot_buf_putc(e->b, '[');
            for (size_t j = 0; j < n && !e->too_deep; j++) {
                if (j)
                    ot_buf_putc(e->b, ',');
                enc_value(e, f, arr + j * sz);
            }
            ot_buf_putc(e->b, ']');
        } else if (field_present(f, base)) {
            enc_key(e, f->name, first);
            first = 0;
            enc_value(e, f, base + f->offset);
        }
    }
    ot_buf_putc(e->b, '}');
    e->depth--;
}

int ot_json_encode(const ProtobufCMessage *msg, ot_buf *out, ot_err *err)
{
    if (!msg)
        return ot_err_set(err, "json encode: no message");
    if (out->oom)
        return ot_err_set(err, "json encode: out of memory");
    size_t start = out->len;
    enc e = {out, 0, 0};
    enc_message(&e, msg);
    if (e.too_deep || out->oom) {
        int oom = out->oom;
        out->oom = 0;
        if (out->data) {
            out->len = start;
            out->data[start] = '\0';
        }
        if (oom)
            return ot_err_set(err, "json encode: out of memory");
        return ot_err_set(err, "json encode: messages nested deeper than %d levels", MAX_DEPTH);
    }
    return 0;
}
