/* otlp_json_decode.c: the OTLP JSON decoder (see otlp_json.h), one pass
 * over the text straight into a message in the caller's arena.
 *
 * Browser and Node SDKs send OTLP/HTTP JSON by default, so this is a hot
 * path. Building a DOM first (jansson) and copying it into the structs cost
 * about 14x protobuf; a general streaming parser (yajl) spends more on its
 * tokens alone than this whole decoder does, because it cannot know which
 * bytes only need skipping. So the tokenizer is written here, driven by the
 * protobuf-c descriptors: one generic walker serves every OTLP message.
 *
 * The rules are the ones the DOM decoder had (and the fuzz target compared
 * both before it went): strict JSON (RFC 8259 grammar, UTF-8 validated,
 * no NUL in strings, integers that overflow 64 bits refused, nesting of
 * values up to 2048), camelCase or snake_case keys, unknown keys skipped
 * (but still validated), null meaning "not set", 64-bit integers as numbers
 * or strings, enums by name or number, ids in hex (of any even length: a
 * wrong length is the receiver's item check), other bytes in base64.
 * Errors name the key path, what was expected and what was found; a syntax
 * error gives line and column. A key given twice takes the later value.
 *
 * Arrays are not counted before they are read: elements are collected on a
 * scratch stack (nested arrays stack above their parent's) and copied into
 * the arena once the array closes, so no element is allocated twice. */
#include "model/otlp_json_dec_int.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- messages */

static int dec_message(jd *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg,
                       const pframe *pf);

/* One value of field f (one element when repeated) at d->p into out. */
static int dec_value(jd *d, const ProtobufCFieldDescriptor *f, void *out, const pframe *pf)
{
    jv v;
    int64_t x;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        if (d->p >= d->end || *d->p != '{') {
            if (ojd_read_scalar(d, pf, &v) < 0)
                return -1;
            return ojd_fail_type(d, pf, "an object", &v);
        }
        if (ot_arena_reserved(d->arena) > d->max_bytes) {
            d->over = 1;
            return ojd_fail(d, pf, "the decoded request would take more than %zu bytes", d->max_bytes);
        }
        ProtobufCMessage *sub = ot_arena_alloc(d->arena, sd->sizeof_message);
        if (!sub)
            return ojd_oom(d, pf);
        if (dec_message(d, sd, sub, pf) < 0)
            return -1;
        *(ProtobufCMessage **)out = sub;
        return 0;
    }
    if (ojd_read_scalar(d, pf, &v) < 0)
        return -1;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (ojd_get_i64(d, pf, &v, INT32_MIN, INT32_MAX, "a 32-bit integer", &x) < 0)
            return -1;
        *(int32_t *)out = (int32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (ojd_get_i64(d, pf, &v, 0, UINT32_MAX, "an unsigned 32-bit integer", &x) < 0)
            return -1;
        *(uint32_t *)out = (uint32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (ojd_get_i64(d, pf, &v, INT64_MIN, INT64_MAX, "a 64-bit integer (string or number)", &x) < 0)
            return -1;
        *(int64_t *)out = x;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return ojd_get_u64(d, pf, &v, out);
    case PROTOBUF_C_TYPE_FLOAT: {
        double r;
        if (ojd_get_double(d, pf, &v, &r) < 0)
            return -1;
        if (isfinite(r) && fabs(r) > FLT_MAX)
            return ojd_fail_type(d, pf, "a number in float range", &v);
        *(float *)out = (float)r;
        return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE:
        return ojd_get_double(d, pf, &v, out);
    case PROTOBUF_C_TYPE_BOOL:
        if (v.kind != JV_TRUE && v.kind != JV_FALSE)
            return ojd_fail_type(d, pf, "true or false", &v);
        *(protobuf_c_boolean *)out = v.kind == JV_TRUE;
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return ojd_get_enum(d, pf, f->descriptor, &v, out);
    case PROTOBUF_C_TYPE_STRING: {
        if (v.kind != JV_STR)
            return ojd_fail_type(d, pf, "a string", &v);
        char *s = v.owned ? (char *)v.s : ot_arena_strndup(d->arena, v.s, v.len);
        if (!s)
            return ojd_oom(d, pf);
        *(char **)out = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t want = ojson_hex_id_len(f);
        if (want)
            return ojd_get_hex(d, pf, &v, want, out);
        return ojd_get_base64(d, pf, &v, out);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    return ojd_fail(d, pf, "unsupported field type");
}

/* Room for one more element of sz bytes on the scratch stack. */
static void *stk_push(jd *d, size_t sz)
{
    if (d->stk_len + sz > d->stk_cap) {
        size_t cap = d->stk_cap ? d->stk_cap * 2 : 4096;
        while (cap < d->stk_len + sz)
            cap *= 2;
        char *n = realloc(d->stk, cap);
        if (!n)
            return NULL;
        d->stk = n;
        d->stk_cap = cap;
    }
    void *p = d->stk + d->stk_len;
    d->stk_len += sz;
    return p;
}

static int dec_repeated(jd *d, const ProtobufCFieldDescriptor *f, char *base, const pframe *pf)
{
    if (d->p >= d->end || *d->p != '[') {
        jv v;
        if (ojd_read_scalar(d, pf, &v) < 0)
            return -1;
        return ojd_fail_type(d, pf, "an array", &v);
    }
    d->p++;
    ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        return 0;
    }
    size_t sz = ojson_elem_size(f->type), mark = d->stk_len, n = 0;
    d->jdepth++;
    for (;;) {
        pframe fr = {pf, NULL, 0, n};
        void *slot = stk_push(d, sz);
        if (!slot)
            return ojd_oom(d, &fr);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            /* the element's own arrays stack above; write the pointer after */
            ProtobufCMessage *sub = NULL;
            if (dec_value(d, f, &sub, &fr) < 0)
                return -1;
            memcpy(d->stk + mark + n * sz, &sub, sizeof sub);
        } else {
            char tmp[sizeof(ProtobufCBinaryData)];
            if (dec_value(d, f, tmp, &fr) < 0)
                return -1;
            memcpy(d->stk + mark + n * sz, tmp, sz);
        }
        n++;
        ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            ws(d);
            continue;
        }
        if (d->p < d->end && *d->p == ']') {
            d->p++;
            break;
        }
        return ojd_syntax(d, "expected ',' or ']'");
    }
    d->jdepth--;
    void *arr = ot_arena_alloc(d->arena, n * sz);
    if (!arr)
        return ojd_oom(d, pf);
    memcpy(arr, d->stk + mark, n * sz);
    d->stk_len = mark;
    *(size_t *)(base + f->quantifier_offset) = n;
    *(void **)(base + f->offset) = arr;
    return 0;
}

/* Does key equal the lowerCamelCase form of the snake_case name? */
static int camel_eq(const char *name, const char *key, size_t klen)
{
    size_t j = 0;
    int up = 0;
    for (const char *s = name; *s; s++) {
        if (*s == '_') {
            up = 1;
            continue;
        }
        char c = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        up = 0;
        if (j >= klen || key[j] != c)
            return 0;
        j++;
    }
    return j == klen;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key, size_t klen)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->name[0] != key[0] && f->name[0] != '_')
            continue;
        if ((strncmp(f->name, key, klen) == 0 && f->name[klen] == '\0') ||
            camel_eq(f->name, key, klen))
            return f;
    }
    return NULL;
}

static int dec_message(jd *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg,
                       const pframe *pf)
{
    if (d->depth >= MAX_DEPTH)
        return ojd_fail(d, pf, "messages nested deeper than %d levels", MAX_DEPTH);
    d->depth++;
    d->jdepth++;
    desc->message_init(msg);
    char *base = (char *)msg;
    d->p++; /* '{' */
    ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        d->depth--;
        d->jdepth--;
        return 0;
    }
    for (;;) {
        const char *key;
        size_t klen;
        int esc;
        char kbuf[64];
        if (d->p >= d->end || *d->p != '"')
            return ojd_syntax(d, "expected a string key");
        if (ojd_str_scan(d, &key, &klen, &esc) < 0)
            return -1;
        if (esc) { /* an escaped key longer than any field name matches none */
            if (klen < sizeof kbuf) {
                klen = ojd_unescape(key, klen, kbuf);
                key = kbuf;
            } else {
                klen = 0;
            }
        }
        ws(d);
        if (d->p >= d->end || *d->p != ':')
            return ojd_syntax(d, "expected ':'");
        d->p++;
        ws(d);
        const ProtobufCFieldDescriptor *f = klen ? find_field(desc, key, klen) : NULL;
        int rc;
        if (!f || (d->p < d->end && *d->p == 'n')) {
            /* unknown keys are ignored; null means not set */
            rc = ojd_skip_value(d, d->jdepth + 1);
        } else {
            pframe fr = {pf, key, klen, 0};
            if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                rc = dec_repeated(d, f, base, &fr);
            } else {
                rc = dec_value(d, f, base + f->offset, &fr);
                if (rc == 0 && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                    *(uint32_t *)(base + f->quantifier_offset) = f->id;
                else if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                         f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
                    *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
            }
        }
        if (rc < 0)
            return -1;
        ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            ws(d);
            continue;
        }
        if (d->p < d->end && *d->p == '}') {
            d->p++;
            break;
        }
        return ojd_syntax(d, "expected ',' or '}'");
    }
    d->depth--;
    d->jdepth--;
    return 0;
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *desc, const char *json,
                                size_t len, ot_arena *arena, size_t max_bytes, int *over,
                                ot_err *err)
{
    jd dd = {json, json, json + len, arena, err, 0, 0, NULL, 0, 0, max_bytes, 0}, *d = &dd;
    ProtobufCMessage *msg = NULL;
    ws(d);
    if (d->p >= d->end || (*d->p != '{' && *d->p != '[')) {
        ojd_syntax(d, "'[' or '{' expected");
        return NULL;
    }
    if (*d->p == '[') {
        jv v = {.kind = JV_ARR};
        ojd_fail_type(d, NULL, "a JSON object", &v);
        return NULL;
    }
    msg = ot_arena_alloc(arena, desc->sizeof_message);
    if (!msg) {
        ojd_oom(d, NULL);
    } else if (dec_message(d, desc, msg, NULL) < 0) {
        msg = NULL;
    } else {
        ws(d);
        if (d->p != d->end) {
            ojd_syntax(d, "end of input expected");
            msg = NULL;
        }
    }
    free(d->stk);
    if (over)
        *over = d->over;
    return msg;
}

ProtobufCMessage *ot_json_decode(const ProtobufCMessageDescriptor *desc, const char *json,
                                 size_t len, ot_arena *arena, ot_err *err)
{
    return decode(desc, json, len, arena, SIZE_MAX, NULL, err);
}

ot_batch *ot_batch_from_json(ot_signal s, const char *json, size_t len, ot_err *err)
{
    return ot_batch_from_json_max(s, json, len, SIZE_MAX, NULL, err);
}

ot_batch *ot_batch_from_json_max(ot_signal s, const char *json, size_t len, size_t max_bytes,
                                 int *over, ot_err *err)
{
    if (over)
        *over = 0;
    const ProtobufCMessageDescriptor *desc = ot_signal_request_desc(s);
    if (!desc) {
        ot_err_set(err, "json decode: unknown signal %d", (int)s);
        return NULL;
    }
    /* The decoded form is a little smaller than its JSON; start near it. */
    size_t hint = len < 4096 ? 4096 : len > (1u << 20) ? (1u << 20) : len;
    ot_arena *a = ot_arena_new(hint);
    if (!a) {
        ot_err_set(err, "json decode: out of memory");
        return NULL;
    }
    ProtobufCMessage *msg = decode(desc, json, len, a, max_bytes, over, err);
    if (!msg) {
        ot_arena_free(a);
        return NULL;
    }
    ot_batch *b = ot_batch_adopt(s, a, msg);
    if (!b)
        ot_err_set(err, "json decode: out of memory");
    return b;
}
