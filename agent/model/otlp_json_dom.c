/* otlp_json_dom.c: the previous OTLP JSON decoder, kept only until the
 * streaming one (otlp_json_decode.c) is checked against it on the fuzz
 * corpus and the test samples (tests/fuzz/fuzz_otlp_json_cmp.c): a document
 * parsed by jansson and copied into a message in the caller's arena, with
 * every error naming the JSON path, what was expected and what was found.
 *
 * One generic walker over protobuf-c descriptors instead of hand-written code
 * per message, so every OTLP message (and any added later) is covered by the
 * same rules. Output is written straight into an ot_buf with no allocation
 * per field; input is parsed by jansson and copied into the caller's arena.
 *
 * Which fields are written mirrors what protobuf-c packs (the same "is this
 * field present" tests), so protobuf -> JSON -> protobuf gives the same
 * bytes.
 *
 * Apart from the encoder: the two share only the rules in otlp_json_int.h. */
#include "model/otlp_json_int.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"

/* ---------------------------------------------------------------- decode */

typedef struct dec {
    ot_arena *arena;
    ot_err *err;
    int depth;
    size_t plen;
    char path[1024]; /* key path of the value being decoded */
} dec;

/* Appends ".key" (or "key" at the root) to the path; returns the mark to
 * restore. A path too long for the buffer just stops growing. */
static size_t path_key(dec *d, const char *key, size_t klen)
{
    size_t mark = d->plen;
    size_t need = klen + (mark ? 1 : 0);
    if (mark + need + 1 < sizeof d->path) {
        if (mark)
            d->path[d->plen++] = '.';
        memcpy(d->path + d->plen, key, klen);
        d->plen += klen;
        d->path[d->plen] = '\0';
    }
    return mark;
}

static size_t path_index(dec *d, size_t i)
{
    size_t mark = d->plen;
    int n = snprintf(d->path + mark, sizeof d->path - mark, "[%zu]", i);
    if (n > 0 && mark + (size_t)n < sizeof d->path)
        d->plen += (size_t)n;
    else
        d->path[mark] = '\0';
    return mark;
}

static void path_restore(dec *d, size_t mark)
{
    d->plen = mark;
    d->path[mark] = '\0';
}

/* A short description of a JSON value for error messages. */
static void describe(const json_t *v, char *out, size_t n)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: snprintf(out, n, "an object"); break;
    case JSON_ARRAY: snprintf(out, n, "an array"); break;
    case JSON_TRUE: snprintf(out, n, "true"); break;
    case JSON_FALSE: snprintf(out, n, "false"); break;
    case JSON_NULL: snprintf(out, n, "null"); break;
    case JSON_INTEGER: snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: snprintf(out, n, "%.17g", json_real_value(v)); break;
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), o = 0, max = 40;
        out[o++] = '"';
        size_t i = 0;
        for (; i < len && o + 6 < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (i >= max && (c & 0xC0) != 0x80) /* stop on a character boundary */
                break;
            if (c < 0x20 || c == '"' || c == '\\')
                o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
            else
                out[o++] = (char)c;
        }
        if (i < len && o + 4 < n) {
            memcpy(out + o, "...", 3);
            o += 3;
        }
        out[o++] = '"';
        out[o] = '\0';
        break;
    }
    }
}

/* Error paths stay out of line so the recursive decoder's frames stay
 * small (deep nesting must not need a big stack). */
#define COLD __attribute__((noinline, cold))

static int fail(dec *d, const char *fmt, ...) OT_PRINTF(2, 3) COLD;
static int fail(dec *d, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *p = d->plen ? d->path : "(top level)";
    size_t pl = strlen(p);
    if (pl > 200) /* the innermost keys are the useful ones */
        return ot_err_set(d->err, "...%s: %s", p + pl - 200, msg);
    return ot_err_set(d->err, "%s: %s", p, msg);
}

static COLD int fail_type(dec *d, const char *expected, const json_t *v)
{
    char found[96];
    describe(v, found, sizeof found);
    return fail(d, "expected %s, found %s", expected, found);
}

static COLD int oom(dec *d)
{
    return fail(d, "out of memory");
}

static COLD int fail_enum(dec *d, const ProtobufCEnumDescriptor *ed, const json_t *v)
{
    char what[160];
    snprintf(what, sizeof what, "a number or a value name of %s", ed->short_name);
    return fail_type(d, what, v);
}

/* Integer with bounds, from a JSON integer, an integral real or a decimal
 * string (proto3 JSON allows all three for every integer type). */
static int get_i64(dec *d, const json_t *v, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double r = json_real_value(v);
        if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0) || r != trunc(r))
            return fail_type(d, what, v);
        x = (int64_t)r;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), i = 0;
        int neg = 0;
        if (len && s[0] == '-')
            neg = 1, i = 1;
        if (i == len)
            return fail_type(d, what, v);
        uint64_t u = 0;
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return fail_type(d, what, v);
            unsigned dg = (unsigned)(s[i] - '0');
            if (u > (UINT64_MAX - dg) / 10)
                return fail_type(d, what, v);
            u = u * 10 + dg;
        }
        if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
            return fail_type(d, what, v);
        x = neg ? (int64_t)(0 - u) : (int64_t)u;
    } else {
        return fail_type(d, what, v);
    }
    if (x < lo || x > hi)
        return fail_type(d, what, v);
    *out = x;
    return 0;
}

static int get_u64(dec *d, const json_t *v, const char *what, uint64_t *out)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len == 0)
            return fail_type(d, what, v);
        uint64_t u = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return fail_type(d, what, v);
            unsigned dg = (unsigned)(s[i] - '0');
            if (u > (UINT64_MAX - dg) / 10)
                return fail_type(d, what, v);
            u = u * 10 + dg;
        }
        *out = u;
        return 0;
    }
    if (json_is_real(v)) {
        double r = json_real_value(v);
        if (!(r >= 0 && r < 18446744073709551616.0) || r != trunc(r))
            return fail_type(d, what, v);
        *out = (uint64_t)r;
        return 0;
    }
    int64_t x;
    if (get_i64(d, v, 0, INT64_MAX, what, &x) < 0)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

static int get_double(dec *d, const json_t *v, double *out)
{
    static const char what[] = "a number (or \"NaN\", \"Infinity\", \"-Infinity\")";
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return fail_type(d, what, v);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcmp(s, "Infinity") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Infinity") == 0) {
        *out = -INFINITY;
        return 0;
    }
    /* A number in a string: only JSON number characters, so strtod's
     * extras (hex, "inf", spaces) are not let in. */
    if (len == 0 || len > 64 || strspn(s, "0123456789+-.eE") != len)
        return fail_type(d, what, v);
    char *end;
    double r = strtod(s, &end);
    if (end != s + len || isinf(r))
        return fail_type(d, what, v);
    *out = r;
    return 0;
}

static COLD int fail_hex(dec *d, size_t want, const json_t *v)
{
    char what[40];
    snprintf(what, sizeof what, "%zu hex digits", want * 2);
    return fail_type(d, what, v);
}

static int get_hex(dec *d, const json_t *v, size_t want, ProtobufCBinaryData *out)
{
    if (!json_is_string(v))
        return fail_hex(d, want, v);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0) { /* an empty id is the same as no id */
        out->len = 0;
        out->data = NULL;
        return 0;
    }
    if (len != want * 2)
        return fail_hex(d, want, v);
    uint8_t *p = ot_arena_alloc(d->arena, want);
    if (!p)
        return oom(d);
    if (ot_hex_decode(s, len, p) != want)
        return fail_hex(d, want, v);
    out->data = p;
    out->len = want;
    return 0;
}

/* Standard or URL-safe base64, padding optional. */
static int get_base64(dec *d, const json_t *v, ProtobufCBinaryData *out)
{
    static const char what[] = "a base64 string";
    if (!json_is_string(v))
        return fail_type(d, what, v);
    size_t len = json_string_length(v), max = ot_base64_decoded_max(len);
    uint8_t *p = max ? ot_arena_alloc(d->arena, max) : NULL;
    if (max && !p)
        return oom(d);
    long n = ot_base64_decode(json_string_value(v), len, p);
    if (n < 0)
        return fail_type(d, what, v);
    out->data = p;
    out->len = (size_t)n;
    return 0;
}

static int dec_message(dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
                       ProtobufCMessage *msg);

/* One value of field f (one element when repeated) into out. */
static int dec_value(dec *d, const ProtobufCFieldDescriptor *f, const json_t *v, void *out)
{
    int64_t x;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (get_i64(d, v, INT32_MIN, INT32_MAX, "a 32-bit integer", &x) < 0)
            return -1;
        *(int32_t *)out = (int32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (get_i64(d, v, 0, UINT32_MAX, "an unsigned 32-bit integer", &x) < 0)
            return -1;
        *(uint32_t *)out = (uint32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (get_i64(d, v, INT64_MIN, INT64_MAX, "a 64-bit integer (string or number)", &x) < 0)
            return -1;
        *(int64_t *)out = x;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return get_u64(d, v, "an unsigned 64-bit integer (string or number)", out);
    case PROTOBUF_C_TYPE_FLOAT: {
        double r;
        if (get_double(d, v, &r) < 0)
            return -1;
        if (isfinite(r) && fabs(r) > FLT_MAX)
            return fail_type(d, "a number in float range", v);
        *(float *)out = (float)r;
        return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE:
        return get_double(d, v, out);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return fail_type(d, "true or false", v);
        *(protobuf_c_boolean *)out = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (json_is_string(v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
            if (ev && strlen(json_string_value(v)) == json_string_length(v)) {
                *(int32_t *)out = ev->value;
                return 0;
            }
            /* a number in a string is still a number */
            const char *s = json_string_value(v);
            if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
                return fail_enum(d, ed, v);
        }
        if (get_i64(d, v, INT32_MIN, INT32_MAX, "an enum number or value name", &x) < 0)
            return -1;
        *(int32_t *)out = (int32_t)x;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return fail_type(d, "a string", v);
        char *s = ot_arena_strndup(d->arena, json_string_value(v), json_string_length(v));
        if (!s)
            return oom(d);
        *(char **)out = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t want = ojson_hex_id_len(f);
        if (want)
            return get_hex(d, v, want, out);
        return get_base64(d, v, out);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        if (!json_is_object(v))
            return fail_type(d, "an object", v);
        ProtobufCMessage *sub = ot_arena_alloc(d->arena, sd->sizeof_message);
        if (!sub)
            return oom(d);
        if (dec_message(d, sd, v, sub) < 0)
            return -1;
        *(ProtobufCMessage **)out = sub;
        return 0;
    }
    }
    return fail(d, "unsupported field type");
}

static int dec_repeated(dec *d, const ProtobufCFieldDescriptor *f, const json_t *v, char *base)
{
    if (!json_is_array(v))
        return fail_type(d, "an array", v);
    size_t n = json_array_size(v);
    if (n == 0)
        return 0;
    size_t sz = ojson_elem_size(f->type);
    if (n > SIZE_MAX / 2 / sz)
        return oom(d);
    char *arr = ot_arena_alloc(d->arena, n * sz);
    if (!arr)
        return oom(d);
    /* Sub-messages of one array share one block instead of n allocations. */
    char *block = NULL;
    size_t msz = 0;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        msz = ((const ProtobufCMessageDescriptor *)f->descriptor)->sizeof_message;
        msz = (msz + 15) & ~(size_t)15;
        if (n > SIZE_MAX / 2 / msz)
            return oom(d);
        block = ot_arena_alloc(d->arena, n * msz);
        if (!block)
            return oom(d);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *el = json_array_get(v, i);
        size_t mark = path_index(d, i);
        int rc;
        if (block) {
            if (!json_is_object(el)) {
                rc = fail_type(d, "an object", el);
            } else {
                ProtobufCMessage *sub = (ProtobufCMessage *)(block + i * msz);
                rc = dec_message(d, f->descriptor, el, sub);
                ((ProtobufCMessage **)arr)[i] = sub;
            }
        } else {
            rc = dec_value(d, f, el, arr + i * sz);
        }
        if (rc < 0)
            return -1;
        path_restore(d, mark);
    }
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

static int dec_message(dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
                       ProtobufCMessage *msg)
{
    if (d->depth >= MAX_DEPTH)
        return fail(d, "messages nested deeper than %d levels", MAX_DEPTH);
    d->depth++;
    desc->message_init(msg);
    char *base = (char *)msg;
    for (void *it = json_object_iter((json_t *)obj); it;
         it = json_object_iter_next((json_t *)obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        const json_t *v = json_object_iter_value(it);
        const ProtobufCFieldDescriptor *f = klen ? find_field(desc, key, klen) : NULL;
        if (!f || json_is_null(v))
            continue; /* unknown keys are ignored; null means not set */
        size_t mark = path_key(d, key, klen);
        int rc;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = dec_repeated(d, f, v, base);
        } else {
            rc = dec_value(d, f, v, base + f->offset);
            if (rc == 0 && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(uint32_t *)(base + f->quantifier_offset) = f->id;
            else if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                     f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        }
        if (rc < 0)
            return -1;
        path_restore(d, mark);
    }
    d->depth--;
    return 0;
}

ProtobufCMessage *ot_json_decode_dom(const ProtobufCMessageDescriptor *desc, const char *json,
                                 size_t len, ot_arena *arena, ot_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        ot_err_set(err, "invalid JSON at line %d, column %d (offset %d): %s", je.line,
                   je.column, je.position, je.text);
        return NULL;
    }
    dec dd, *d = &dd;
    d->arena = arena;
    d->err = err;
    d->depth = 0;
    d->plen = 0;
    d->path[0] = '\0';
    ProtobufCMessage *msg = NULL;
    if (!json_is_object(root)) {
        fail_type(d, "a JSON object", root);
    } else {
        msg = ot_arena_alloc(arena, desc->sizeof_message);
        if (!msg)
            oom(d);
        else if (dec_message(d, desc, root, msg) < 0)
            msg = NULL;
    }
    json_decref(root);
    return msg;
}
