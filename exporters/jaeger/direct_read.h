/* direct_read.h: the direct walk's reading side (direct.c): the
 * encoder's state, the field reader over a request's bytes, and the
 * readers of attributes and values, which the walk inlines into its one
 * loop (span_view is flattened), so they live here rather than behind
 * calls in another file. The short path for the commonest attributes
 * (tag_fast) writes them as it reads them. For direct.c only. */
#ifndef OT_JAEGER_DIRECT_READ_H
#define OT_JAEGER_DIRECT_READ_H

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "direct_int.h"
#include "model/pbedit.h"
#include "translate_int.h"

#define AVV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define CODE(x) OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_##x
#define VT(x) JAEGER__API_V2__VALUE_TYPE__##x

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct ot_jaeger_enc {
    jd_view v;
    jd_process p;
    ot_arena *arena; /* JSON text of array and map values, per call */
    ot_buf json;
    jd_str *links; /* the span's, until its trace id and parent are known */
    size_t n_links, cap_links;
    ot_jaeger_body *bodies;
    size_t n_bodies, cap_bodies;
    int thrift; /* the encoding being made: the span's tags are written in it as read */
    /* Tags every span of a scope, or of a kind, has the same: written once
     * and copied (otel.scope.name/version per scope; span.kind per kind,
     * for the encoding kind_for - 1). */
    ot_buf scope_tags;
    size_t n_scope_tags;
    uint8_t kind_b[6][48];
    size_t kind_n[6];
    int kind_for;
    /* Either stops the walk; `stop` reads both at once, in every field. */
    union {
        struct {
            uint8_t fallback, oom;
        };
        uint16_t stop;
    };
};

typedef struct ot_jaeger_enc jd_ctx;

/* ---- reading ------------------------------------------------------------ */

static inline __attribute__((always_inline)) int jd_next(jd_ctx *c, const uint8_t **p,
                                                         const uint8_t *end, ot_pbfield *f)
{
    /* Most of a span's fields: a one-byte tag of a length-delimited field
     * with a one-byte length (ids, names, attributes, events). Only what
     * this walk reads of a field is filled; the rest go to the shared
     * reader. */
    const uint8_t *q = *p;
    if (end - q >= 2 && (q[0] & 0x87) == 0x02 && q[0] >= 8 && q[1] < 0x80 &&
        q[1] <= (size_t)(end - q) - 2) {
        f->num = q[0] >> 3;
        f->wt = 2;
        f->val = q + 2;
        f->len = q[1];
        *p = q + 2 + q[1];
        return !c->stop;
    }

    int r = ot_pb_next(p, end, f);
    if (r < 0)
        c->fallback = 1;
    return r > 0 && !c->stop;
}

/* FOR_FIELDS(c, msg, f) { ... } over the fields of a jd_str. */
#define FOR_FIELDS(c, m, f)                                                                    \
    for (const uint8_t *it_##f = (m).p, *end_##f = (m).p + (m).n;                             \
         jd_next((c), &it_##f, end_##f, &(f));)

static inline jd_str val_of(const ot_pbfield *f) { return (jd_str){f->val, f->len}; }

/* A field whose wire type is not the schema's: protobuf-c refuses it, so
 * the reference path reports it. */
static inline int want(jd_ctx *c, const ot_pbfield *f, unsigned wt)
{
    if (f->wt == wt)
        return 1;
    c->fallback = 1;
    return 0;
}

/* A singular message field seen again: protobuf-c merges the two, which
 * this walk does not do. */
static void set_once(jd_ctx *c, jd_str *dst, int *seen, const ot_pbfield *f)
{
    if (*seen || !want(c, f, WT_LEN)) {
        c->fallback = 1;
        return;
    }
    *seen = 1;
    *dst = val_of(f);
}

/* Whether any of the 8 bytes at p is zero. */
static inline int zero8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return ((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull) != 0;
}

/* A string as the reference path's C string sees it: up to its first NUL.
 * Every key and value goes through here, so the common short string is
 * checked a word at a time (the last word overlapping) without a call. */
static inline jd_str cstr(jd_str s)
{
    if (s.n >= 8 && s.n <= 64) {
        size_t i = 0;
        for (; i + 8 < s.n; i += 8)
            if (zero8(s.p + i))
                goto slow;
        if (!zero8(s.p + s.n - 8))
            return s;
    } else if (s.n < 8) {
        for (size_t i = 0; i < s.n; i++)
            if (!s.p[i])
                return (jd_str){s.p, i};
        return s;
    }
slow:;
    const uint8_t *z = memchr(s.p, 0, s.n);
    return z ? (jd_str){s.p, (size_t)(z - s.p)} : s;
}

/* Whether s (8 to 128 bytes) has no zero byte: then no string inside it
 * is cut by cstr, and one check covers a KeyValue's key and value. SSE2
 * (the x86-64 baseline) takes sixteen bytes a step, the last step
 * overlapping; loads stay inside s. */
#if defined(__SSE2__)
static inline __m128i load16(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}
#endif

static inline int no_zero(jd_str s)
{
    if (s.n < 8 || s.n > 128)
        return 0;
#if defined(__SSE2__)
    if (s.n >= 16) {
        const __m128i z = _mm_setzero_si128();
        __m128i acc = _mm_cmpeq_epi8(load16(s.p + s.n - 16), z);
        for (size_t i = 0; i + 16 < s.n; i += 16)
            acc = _mm_or_si128(acc, _mm_cmpeq_epi8(load16(s.p + i), z));
        return _mm_movemask_epi8(acc) == 0;
    }
#endif
    for (size_t i = 0; i + 8 < s.n; i += 8)
        if (zero8(s.p + i))
            return 0;
    return !zero8(s.p + s.n - 8);
}

static int c_eq(jd_str s, const char *lit, size_t l)
{
    return s.n >= l && memcmp(s.p, lit, l) == 0 && (s.n == l || s.p[l] == 0);
}
#define C_EQ(s, lit) c_eq((s), lit, sizeof lit - 1)

static inline int c_nonempty(jd_str s) { return s.n > 0 && s.p[0] != 0; }

static jd_str lit(const char *s) { return (jd_str){(const uint8_t *)s, strlen(s)}; }
#define LIT(s) ((jd_str){(const uint8_t *)(s), sizeof(s) - 1})

/* Grows an array of the views to hold need elements. */
static void *grow(jd_ctx *c, void *v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return v;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *nv = realloc(v, nc * elem);
    if (!nv) {
        c->oom = 1;
        return v;
    }
    *cap = nc;
    return nv;
}

/* ---- attributes (translate.c's tag_attr) ------------------------------- */

/* A KeyValue's key and value bytes (the last key wins, as in protobuf-c). */
static inline void kv_parts(jd_ctx *c, jd_str kvb, jd_str *key, jd_str *val, int *has_val)
{
    /* What every encoder writes: the key, then the value, both short.
     * Read at once, it is what the loop below would find. */
    const uint8_t *p = kvb.p;
    if (kvb.n >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= kvb.n) {
        const uint8_t *q = p + 2 + p[1];
        if (q[0] == 0x12 && q[1] < 0x80 && (size_t)(q + 2 + q[1] - p) == kvb.n) {
            *key = (jd_str){p + 2, p[1]};
            *val = (jd_str){q + 2, q[1]};
            *has_val = 1;
            return;
        }
    }
    ot_pbfield f;
    *key = (jd_str){NULL, 0};
    *has_val = 0;
    FOR_FIELDS(c, kvb, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            *key = val_of(&f);
        else if (f.num == 2)
            set_once(c, val, has_val, &f);
    }
}

/* The one member of an AnyValue's oneof that is set (0: none) and its
 * field. Two members, or one sent twice, go to the reference path. */
static int av_member_slow(jd_ctx *c, jd_str val, ot_pbfield *out)
{
    static const unsigned char wt_of[8] = {0,       WT_LEN, WT_VARINT, WT_VARINT,
                                           WT_I64,  WT_LEN, WT_LEN,    WT_LEN};
    ot_pbfield f;
    int which = 0;
    FOR_FIELDS(c, val, f)
    {
        if (f.num < 1 || f.num > 7)
            continue;
        if (which || !want(c, &f, wt_of[f.num])) {
            c->fallback = 1;
            return 0;
        }
        which = (int)f.num;
        *out = f;
    }
    return which;
}

static inline int av_member(jd_ctx *c, jd_str val, ot_pbfield *out)
{
    /* One member, one-byte tag and length or value: most values. */
    const uint8_t *p = val.p;
    if (val.n == 9 && p[0] == 0x21) { /* double_value */
        out->wt = WT_I64;
        memcpy(&out->v, p + 1, 8);
        return AVV(DOUBLE_VALUE);
    }
    if (val.n >= 2 && p[1] < 0x80) {
        switch (p[0]) {
        case 0x0a: /* string_value */
        case 0x3a: /* bytes_value */
            if ((size_t)p[1] + 2 == val.n) {
                out->wt = WT_LEN;
                out->val = p + 2;
                out->len = p[1];
                return p[0] >> 3;
            }
            break;
        default: break;
        }
    }
    if ((p[0] == 0x10 || p[0] == 0x18) && val.n >= 2 && val.n <= 11) { /* bool_value, int_value */
        uint64_t v = 0;
        for (size_t i = 1; i < val.n; i++) {
            v |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
            if (!(p[i] & 0x80)) {
                if (i + 1 != val.n)
                    break;
                out->wt = WT_VARINT;
                out->v = v;
                return p[0] >> 3;
            }
        }
    }
    return av_member_slow(c, val, out);
}

/* Whether a KeyValue's value is a string, and that string. */
static int kv_string(jd_ctx *c, jd_str val, int has_val, jd_str *s)
{
    ot_pbfield f;
    f.val = NULL, f.len = 0; /* what the compiler cannot see av_member set */
    if (has_val && av_member(c, val, &f) == AVV(STRING_VALUE)) {
        *s = val_of(&f);
        return 1;
    }
    return 0;
}

static void tag_fixed(jd_tag *t, jd_str key, int type)
{
    t->key = key;
    t->s = (jd_str){NULL, 0};
    t->type = type;
    t->vbool = 0;
    t->vint = 0;
    t->vdbl = 0;
}

/* An array or map: protobuf-c unpacks just this value and translate.c's
 * writer turns it into JSON, kept in the call's arena until written. */
static void tag_json(jd_ctx *c, jd_tag *t, jd_str val)
{
    ot_anyvalue *av = opentelemetry__proto__common__v1__any_value__unpack(NULL, val.n, val.p);
    if (!av) {
        c->fallback = 1;
        return;
    }
    ot_buf_reset(&c->json);
    ot_jg_json_value(&c->json, av, 0);
    opentelemetry__proto__common__v1__any_value__free_unpacked(av, NULL);
    uint8_t *s = c->json.oom ? NULL : ot_arena_memdup(c->arena, c->json.data, c->json.len + 1);
    if (!s) {
        c->oom = 1;
        return;
    }
    t->s = cstr((jd_str){s, c->json.len});
}

/* One OTLP attribute as a tag of the same type where Jaeger has one. */
static void tag_wire(jd_ctx *c, jd_tag *t, jd_str kvb)
{
    jd_str key, val = {NULL, 0};
    int has_val;
    kv_parts(c, kvb, &key, &val, &has_val);
    int plain = no_zero(kvb);
    tag_fixed(t, plain ? key : cstr(key), VT(STRING));
    if (!has_val || c->fallback)
        return;
    ot_pbfield f;
    f.val = NULL, f.len = 0; /* what the compiler cannot see av_member set */
    switch (av_member(c, val, &f)) {
    case AVV(STRING_VALUE): t->s = plain ? val_of(&f) : cstr(val_of(&f)); break;
    case AVV(BOOL_VALUE):
        t->type = VT(BOOL);
        t->vbool = f.v != 0;
        break;
    case AVV(INT_VALUE):
        t->type = VT(INT64);
        t->vint = (int64_t)f.v;
        break;
    case AVV(DOUBLE_VALUE):
        t->type = VT(FLOAT64);
        memcpy(&t->vdbl, &f.v, sizeof t->vdbl);
        break;
    case AVV(BYTES_VALUE):
        t->type = VT(BINARY);
        t->s = val_of(&f);
        break;
    case AVV(ARRAY_VALUE):
    case AVV(KVLIST_VALUE): tag_json(c, t, val); break;
    default: break;
    }
}

/* The attribute most spans are made of, a short string or an int in the
 * shape every encoder writes (key, then a value of one member, lengths
 * below 128, no zero byte), written straight to the span's tags in this
 * call's encoding: what tag_wire and jd_put_tag give for it, without the
 * view in between. 0: not that shape, the caller takes the general path. */
static inline int tag_fast(jd_ctx *c, jd_str kvb)
{
    const uint8_t *p = kvb.p;
    size_t n = kvb.n;
    if (n < 8 || p[0] != 0x0a || p[1] >= 0x80 || (size_t)p[1] + 6 > n)
        return 0;
    size_t kl = p[1];
    const uint8_t *q = p + 2 + kl; /* the value: tag, length, AnyValue */
    size_t al = q[1];
    if (q[0] != 0x12 || al >= 0x80 || 2 + kl + 2 + al != n || al < 2 || !no_zero(kvb))
        return 0;
    const uint8_t *a = q + 2;
    ot_buf *b = &c->v.tagb;
    if (a[0] == 0x0a && (size_t)a[1] + 2 == al) { /* string_value */
        size_t vl = a[1];
        if (c->thrift) {
            unsigned char *o = jt_room(b, 22 + kl + vl);
            if (!o)
                return 1;
            o = jt_bytes_at(o, 1, p + 2, kl);
            o = jt_i32_at(o, 2, JTAG_STRING);
            o = jt_bytes_at(o, 3, a + 2, vl);
            *o = JT_STOP;
        } else {
            size_t size = (kl ? 2 + kl : 0) + (vl ? 2 + vl : 0);
            uint8_t *o = jt_room(b, 1 + jp_vlen(size) + size);
            if (!o)
                return 1;
            o = jp_len(o, JD_PROTO_SPAN_TAGS, size);
            o = jp_bytes(o, 1, p + 2, kl);
            jp_bytes(o, 3, a + 2, vl);
        }
        c->v.n_tags++;
        return 1;
    }
    if (a[0] != 0x18 || al > 11) /* int_value */
        return 0;
    uint64_t v = 0;
    size_t i = 1;
    for (;; i++) {
        v |= (uint64_t)(a[i] & 0x7f) << (7 * (i - 1));
        if (!(a[i] & 0x80))
            break;
        if (i + 1 == al)
            return 0;
    }
    if (i + 1 != al)
        return 0;
    if (c->thrift) {
        unsigned char *o = jt_room(b, 26 + kl);
        if (!o)
            return 1;
        o = jt_bytes_at(o, 1, p + 2, kl);
        o = jt_i32_at(o, 2, JTAG_LONG);
        o = jt_i64_at(o, 6, (int64_t)v);
        *o = JT_STOP;
    } else {
        size_t size = (kl ? 2 + kl : 0) + 2 + (v ? 1 + jp_vlen(v) : 0);
        uint8_t *o = jt_room(b, 1 + jp_vlen(size) + size);
        if (!o)
            return 1;
        o = jp_len(o, JD_PROTO_SPAN_TAGS, size);
        o = jp_bytes(o, 1, p + 2, kl);
        o = jp_int(o, 2, VT(INT64));
        jp_int(o, 5, (int64_t)v);
    }
    c->v.n_tags++;
    return 1;
}

#endif
