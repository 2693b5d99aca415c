/* direct.c: a queued batch's protobuf bytes straight to the bytes Jaeger
 * is sent (Thrift or api_v2), the exporter's hot path. The reference path
 * (wire.c or translate.c, then thrift.c or apiv2.c) builds an api_v2
 * struct per span, tag, log and time, copies every string into an arena
 * and measures it again in each encoder; on realistic spans that was most
 * of the exporter's CPU, and at saturation the arenas of the senders held
 * tens of MiB. This walk reads each span into small reusable views
 * (direct_int.h) that point into the request, and direct_out.c writes
 * them out at once: nothing per span is allocated.
 *
 * It reads every field where it lies, and declines what it is not sure to
 * read exactly as protobuf-c would (a singular message sent twice, which
 * protobuf-c merges; two members of a value's oneof; a wire type the
 * schema does not have; bytes that do not parse): the caller then decodes
 * and takes the reference path (translate.c). Unit tests and a fuzz target
 * compare the two byte for byte. Fields are read with the agent's shared
 * reader (model/pbedit.h). (It replaced wire.c, which read the bytes the
 * same way into the api_v2 structs.) */
#include "direct_int.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "enc_int.h"
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

/* ---- ids ------------------------------------------------------------------ */

/* ot_jg_id's fixed-size id: a short one right-aligned, a long one keeps
 * its last bytes. */
static inline void id_fix(uint8_t *dst, size_t size, jd_str id)
{
    if (id.n == size) {
        memcpy(dst, id.p, size);
        return;
    }
    memset(dst, 0, size);
    size_t n = id.n < size ? id.n : size;
    if (n)
        memcpy(dst + size - n, id.p + id.n - n, n);
}

static int all_zero(jd_str s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i])
            return 0;
    return 1;
}

/* ---- one span (translate.c's span_one) ----------------------------------- */

/* A span's scalars, as its one pass over the fields leaves them. */
typedef struct spanv {
    jd_str trace_id, span_id, trace_state, parent, name, status;
    int has_status;
    int32_t kind;
    uint64_t start, end;
    uint32_t d_attrs, d_events, d_links, flags;
} spanv;

/* A link as a reference; 0 when it only repeats the parent reference. */
static int link_ref(jd_ctx *c, jd_str link, const jd_view *v, const jd_ref *parent, jd_ref *r)
{
    ot_pbfield f;
    jd_str tid = {NULL, 0}, sid = {NULL, 0};
    int child_of = 0, seen_rt = 0;
    FOR_FIELDS(c, link, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            tid = val_of(&f);
        else if (f.num == 2 && want(c, &f, WT_LEN))
            sid = val_of(&f);
        else if (f.num == 4 && want(c, &f, WT_LEN) && !seen_rt) {
            jd_str key, val = {NULL, 0}, s;
            int has_val;
            kv_parts(c, val_of(&f), &key, &val, &has_val);
            if (C_EQ(key, "opentracing.ref_type")) {
                seen_rt = 1;
                child_of = kv_string(c, val, has_val, &s) && C_EQ(s, "child_of");
            }
        }
    }
    id_fix(r->tid, 16, tid);
    id_fix(r->sid, 8, sid);
    int same_trace = memcmp(r->tid, v->tid, 16) == 0;
    r->type = child_of && same_trace ? JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF
                                     : JAEGER__API_V2__SPAN_REF_TYPE__FOLLOWS_FROM;
    return !(parent && r->type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF && same_trace &&
             memcmp(r->sid, parent->sid, 8) == 0);
}

/* An event as a log: `event` carries its name unless an attribute has
 * that key, then its attributes. */
static void event_log(jd_ctx *c, jd_str ev, jd_log *l)
{
    jd_view *v = &c->v;
    ot_pbfield f;
    uint64_t time = 0;
    jd_str name = {NULL, 0};
    size_t n_attrs = 0;
    int has_event_key = 0;
    FOR_FIELDS(c, ev, f)
    {
        if (f.num == 1 && want(c, &f, WT_I64))
            time = f.v;
        else if (f.num == 2 && want(c, &f, WT_LEN))
            name = val_of(&f);
        else if (f.num == 3 && want(c, &f, WT_LEN)) {
            n_attrs++;
            jd_str key, val;
            int has_val;
            kv_parts(c, val_of(&f), &key, &val, &has_val);
            has_event_key |= C_EQ(key, "event");
        } else if (f.num == 4)
            want(c, &f, WT_VARINT);
    }
    l->time = time;
    l->tag0 = v->n_ltags;
    l->n_tags = 0;
    int named = c_nonempty(name) && !has_event_key;
    v->ltags = grow(c, v->ltags, &v->cap_ltags, v->n_ltags + (size_t)named + n_attrs,
                    sizeof *v->ltags);
    if (c->oom)
        return;
    if (named)
        tag_fixed(&v->ltags[v->n_ltags++], LIT("event"), VT(STRING)),
            v->ltags[v->n_ltags - 1].s = cstr(name);
    FOR_FIELDS(c, ev, f)
        if (f.num == 3 && v->n_ltags - l->tag0 < (size_t)named + n_attrs)
            tag_wire(c, &v->ltags[v->n_ltags++], val_of(&f));
    l->n_tags = v->n_ltags - l->tag0;
}

static void put_tag(jd_ctx *c, const jd_tag *t)
{
    jd_put_tag(&c->v.tagb, c->thrift, t);
    c->v.n_tags++;
}

/* Not inlined: with constant keys the compiler warns about the copy
 * branches they never take. */
static void put_encoded(jd_ctx *c, const void *b, size_t n, size_t tags)
{
    unsigned char *p = jt_room(&c->v.tagb, n);
    if (p)
        memcpy(p, b, n);
    c->v.n_tags += tags;
}

__attribute__((noinline)) static void add_str(jd_ctx *c, jd_str key, jd_str s)
{
    jd_tag t;
    tag_fixed(&t, key, VT(STRING));
    t.s = s;
    put_tag(c, &t);
}

__attribute__((noinline)) static void add_int(jd_ctx *c, jd_str key, int type, int64_t x)
{
    jd_tag t;
    tag_fixed(&t, key, type);
    if (type == VT(BOOL))
        t.vbool = x != 0;
    else
        t.vint = x;
    put_tag(c, &t);
}

/* Fills c->v with one span; the scope's name and version have a NULL p
 * when empty. One pass: the views grow as the lists come, and links, which need
 * the span's trace id and parent, are kept aside until the pass is done. */
/* flatten: everything it calls inlined into its one loop (the field
 * reader, the tag readers and writers); a call per field or tag was a
 * sixth of the encoder's instructions (bench-icount jaeger-*). */
__attribute__((flatten)) static void span_view(jd_ctx *c, jd_str span)
{
    jd_view *v = &c->v;
    spanv s;
    memset(&s, 0, sizeof s);
    v->n_tags = v->n_ltags = v->n_refs = v->n_logs = 0;
    ot_buf_reset(&v->tagb);
    c->n_links = 0;
    ot_pbfield f;
    FOR_FIELDS(c, span, f)
    {
        switch (f.num) {
        case 1: if (want(c, &f, WT_LEN)) s.trace_id = val_of(&f); break;
        case 2: if (want(c, &f, WT_LEN)) s.span_id = val_of(&f); break;
        case 3: if (want(c, &f, WT_LEN)) s.trace_state = val_of(&f); break;
        case 4: if (want(c, &f, WT_LEN)) s.parent = val_of(&f); break;
        case 5: if (want(c, &f, WT_LEN)) s.name = val_of(&f); break;
        case 6: if (want(c, &f, WT_VARINT)) s.kind = (int32_t)(uint32_t)f.v; break;
        case 7: if (want(c, &f, WT_I64)) s.start = f.v; break;
        case 8: if (want(c, &f, WT_I64)) s.end = f.v; break;
        case 9:
            if (want(c, &f, WT_LEN) && !tag_fast(c, val_of(&f))) {
                jd_tag t;
                tag_wire(c, &t, val_of(&f));
                put_tag(c, &t);
            }
            break;
        case 10: if (want(c, &f, WT_VARINT)) s.d_attrs = (uint32_t)f.v; break;
        case 11:
            if (!want(c, &f, WT_LEN))
                break;
            if (v->n_logs == v->cap_logs &&
                !(v->logs = grow(c, v->logs, &v->cap_logs, v->n_logs + 1, sizeof *v->logs), !c->oom))
                break;
            event_log(c, val_of(&f), &v->logs[v->n_logs++]);
            break;
        case 12: if (want(c, &f, WT_VARINT)) s.d_events = (uint32_t)f.v; break;
        case 13:
            if (!want(c, &f, WT_LEN))
                break;
            if (c->n_links == c->cap_links &&
                !(c->links = grow(c, c->links, &c->cap_links, c->n_links + 1, sizeof *c->links),
                  !c->oom))
                break;
            c->links[c->n_links++] = val_of(&f);
            break;
        case 14: if (want(c, &f, WT_VARINT)) s.d_links = (uint32_t)f.v; break;
        case 15: set_once(c, &s.status, &s.has_status, &f); break;
        case 16: if (want(c, &f, WT_I32)) s.flags = (uint32_t)f.v; break;
        default: break;
        }
    }
    if (v->tagb.oom)
        c->oom = 1;
    if (c->fallback || c->oom)
        return;
    id_fix(v->tid, 16, s.trace_id);
    id_fix(v->sid, 8, s.span_id);
    v->name = cstr(s.name);
    v->flags = s.flags & 0xffu;
    v->start = s.start;
    v->dur = s.end > s.start ? s.end - s.start : 0;

    int has_parent = s.parent.n > 0 && !all_zero(s.parent);
    v->refs = grow(c, v->refs, &v->cap_refs, (size_t)has_parent + c->n_links, sizeof *v->refs);
    if (c->oom)
        return;
    if (has_parent) {
        jd_ref *r = &v->refs[v->n_refs++];
        memcpy(r->tid, v->tid, 16);
        id_fix(r->sid, 8, s.parent);
        r->type = JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF;
    }
    for (size_t i = 0; i < c->n_links; i++)
        if (link_ref(c, c->links[i], v, has_parent ? &v->refs[0] : NULL, &v->refs[v->n_refs]))
            v->n_refs++;

    int code = CODE(UNSET);
    jd_str desc = {NULL, 0};
    FOR_FIELDS(c, s.status, f)
    {
        if (f.num == 2 && want(c, &f, WT_LEN))
            desc = val_of(&f);
        else if (f.num == 3 && want(c, &f, WT_VARINT))
            code = (int32_t)(uint32_t)f.v;
    }
    const char *code_name = code == CODE(OK) ? "OK" : code == CODE(ERROR) ? "ERROR" : NULL;
    if (c->scope_tags.len)
        put_encoded(c, c->scope_tags.data, c->scope_tags.len, c->n_scope_tags);
    if (s.kind >= 0 && s.kind < 6 && c->kind_n[s.kind])
        put_encoded(c, c->kind_b[s.kind], c->kind_n[s.kind], 1);
    if (code_name)
        add_str(c, LIT("otel.status_code"), lit(code_name));
    if (code == CODE(ERROR))
        add_int(c, LIT("error"), VT(BOOL), 1);
    if (c_nonempty(desc))
        add_str(c, LIT("otel.status_description"), cstr(desc));
    if (c_nonempty(s.trace_state))
        add_str(c, LIT("w3c.tracestate"), cstr(s.trace_state));
    if (s.d_attrs)
        add_int(c, LIT("otel.dropped_attributes_count"), VT(INT64), s.d_attrs);
    if (s.d_events)
        add_int(c, LIT("otel.dropped_events_count"), VT(INT64), s.d_events);
    if (s.d_links)
        add_int(c, LIT("otel.dropped_links_count"), VT(INT64), s.d_links);
    if (v->tagb.oom)
        c->oom = 1;
}

/* ---- one resource ------------------------------------------------------- */

static void process_view(jd_ctx *c, jd_str res)
{
    jd_process *p = &c->p;
    ot_pbfield f;
    size_t n = 0, svc = (size_t)-1;
    jd_str svc_name = {NULL, 0};
    FOR_FIELDS(c, res, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN)) {
            jd_str key, val = {NULL, 0}, s;
            int has_val;
            kv_parts(c, val_of(&f), &key, &val, &has_val);
            if (C_EQ(key, "service.name") && kv_string(c, val, has_val, &s) && c_nonempty(s))
                svc = n, svc_name = s;
            n++;
        }
    }
    p->service = svc != (size_t)-1 ? cstr(svc_name) : LIT(OT_JAEGER_UNKNOWN_SERVICE);
    p->n_tags = 0;
    p->tags = grow(c, p->tags, &p->cap_tags, n, sizeof *p->tags);
    if (c->oom)
        return;
    size_t i = 0;
    FOR_FIELDS(c, res, f)
        if (f.num == 1 && i < n && i++ != svc)
            tag_wire(c, &p->tags[p->n_tags++], val_of(&f));
}

static void scope_of(jd_ctx *c, jd_str ss, jd_str *name, jd_str *version)
{
    ot_pbfield f;
    jd_str scope = {NULL, 0}, nm = {NULL, 0}, ver = {NULL, 0};
    int has_scope = 0;
    FOR_FIELDS(c, ss, f)
        if (f.num == 1)
            set_once(c, &scope, &has_scope, &f);
    FOR_FIELDS(c, scope, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            nm = val_of(&f);
        else if (f.num == 2 && want(c, &f, WT_LEN))
            ver = val_of(&f);
    }
    *name = c_nonempty(nm) ? cstr(nm) : (jd_str){NULL, 0};
    *version = c_nonempty(ver) ? cstr(ver) : (jd_str){NULL, 0};
}

/* The scope's tags, written once for all its spans (span_view copies
 * them where it would have added them). */
static void scope_tags(jd_ctx *c, jd_str name, jd_str version)
{
    jd_tag t;
    ot_buf_reset(&c->scope_tags);
    c->n_scope_tags = 0;
    if (name.p) {
        tag_fixed(&t, LIT("otel.scope.name"), VT(STRING));
        t.s = name;
        jd_put_tag(&c->scope_tags, c->thrift, &t);
        c->n_scope_tags++;
    }
    if (version.p) {
        tag_fixed(&t, LIT("otel.scope.version"), VT(STRING));
        t.s = version;
        jd_put_tag(&c->scope_tags, c->thrift, &t);
        c->n_scope_tags++;
    }
    if (c->scope_tags.oom)
        c->oom = 1;
}

/* The span.kind tag of every kind that has one, in this call's encoding. */
static void kind_tags(jd_ctx *c)
{
    if (c->kind_for == c->thrift + 1)
        return;
    for (int k = 0; k < 6; k++) {
        const char *name = ot_jg_kind_name(k);
        c->kind_n[k] = 0;
        if (!name)
            continue;
        jd_tag t;
        tag_fixed(&t, LIT("span.kind"), VT(STRING));
        t.s = lit(name);
        ot_buf b = OT_BUF_INIT;
        jd_put_tag(&b, c->thrift, &t);
        if (b.oom || b.len > sizeof c->kind_b[k]) {
            ot_buf_free(&b);
            c->oom = 1;
            return;
        }
        memcpy(c->kind_b[k], b.data, b.len);
        c->kind_n[k] = b.len;
        ot_buf_free(&b);
    }
    c->kind_for = c->thrift + 1;
}

/* One ResourceSpans as one body. The spans are walked once: Thrift's
 * span count is a fixed-width number, written when the spans are, and a
 * resource that had none is taken back out (it gives no Jaeger batch). */
static void batch_out(jd_ctx *c, int thrift, jd_str rs, jd_str res, ot_buf *out)
{
    c->bodies = grow(c, c->bodies, &c->cap_bodies, c->n_bodies + 1, sizeof *c->bodies);
    if (c->oom)
        return;
    process_view(c, res);
    if (c->fallback || c->oom)
        return;
    size_t head = out->len;
    if (thrift)
        ot_jd_thrift_process(out, &c->p, 0);
    else if (ot_buf_reserve(out, OT_JD_PROTO_HEAD) == 0)
        out->len += OT_JD_PROTO_HEAD;
    size_t count_at = out->len - 4; /* Thrift: the span list's count */
    size_t n = 0;
    ot_pbfield f, g;
    FOR_FIELDS(c, rs, f)
    {
        if (f.num != 2)
            continue;
        jd_str sname, sver;
        scope_of(c, val_of(&f), &sname, &sver);
        scope_tags(c, sname, sver);
        FOR_FIELDS(c, val_of(&f), g)
        {
            if (g.num != 2 || !want(c, &g, WT_LEN))
                continue;
            span_view(c, val_of(&g));
            if (c->fallback || c->oom)
                break;
            if (thrift)
                ot_jd_thrift_span(out, &c->v);
            else
                ot_jd_proto_span(out, &c->v);
            n++;
        }
    }
    if (c->fallback || c->oom || out->oom)
        return;
    if (!n) {
        out->len = head;
        return;
    }
    ot_jaeger_body *b = &c->bodies[c->n_bodies++];
    if (thrift) {
        jt_put32((unsigned char *)out->data + count_at, (uint32_t)n);
        ot_jd_thrift_end(out);
        b->off = head;
    } else
        b->off = ot_jd_proto_end(out, &c->p, head);
    b->len = out->len - b->off;
    b->spans = n;
}

ot_jaeger_enc *ot_jaeger_enc_new(void)
{
    jd_ctx *c = calloc(1, sizeof *c);
    if (c && !(c->arena = ot_arena_new(4096))) {
        free(c);
        c = NULL;
    }
    return c;
}

void ot_jaeger_enc_free(ot_jaeger_enc *c)
{
    if (!c)
        return;
    ot_buf_free(&c->v.tagb);
    ot_buf_free(&c->scope_tags);
    free(c->v.ltags);
    free(c->v.refs);
    free(c->v.logs);
    free(c->p.tags);
    free(c->links);
    free(c->bodies);
    ot_buf_free(&c->json);
    ot_arena_free(c->arena);
    free(c);
}

int ot_jaeger_encode_wire(ot_jaeger_enc *c, int thrift, const uint8_t *wire, size_t len,
                          ot_buf *out, const ot_jaeger_body **bodies, size_t *n_bodies,
                          ot_err *err)
{
    c->fallback = c->oom = 0;
    c->thrift = thrift;
    kind_tags(c);
    c->n_bodies = 0;
    ot_arena_reset(c->arena);
    size_t start = out->len;
    jd_str req = {wire, len};
    ot_pbfield f, g;
    FOR_FIELDS(c, req, f)
    {
        if (f.num != 1 || !want(c, &f, WT_LEN))
            continue;
        /* The resource first: it may come after the spans, and Thrift
         * writes it before them. */
        jd_str res = {NULL, 0};
        int has_res = 0, has_ss = 0;
        FOR_FIELDS(c, val_of(&f), g)
        {
            if (g.num == 1)
                set_once(c, &res, &has_res, &g);
            else if (g.num == 2 && want(c, &g, WT_LEN))
                has_ss = 1;
        }
        if (has_ss && !c->fallback)
            batch_out(c, thrift, val_of(&f), res, out);
    }
    /* The views may hold a huge span's worth; a later small batch need
     * not keep that. */
    if (c->v.cap_ltags > 4096) {
        free(c->v.ltags);
        c->v.ltags = NULL;
        c->v.cap_ltags = 0;
    }
    if (c->v.tagb.cap > (1u << 20))
        ot_buf_free(&c->v.tagb);
    if (c->fallback || c->oom || out->oom) {
        out->len = start;
        c->n_bodies = 0;
        if (c->fallback)
            return 1;
        out->oom = 0;
        return ot_err_set(err, "jaeger: out of memory encoding a %zu-byte request", len);
    }
    *bodies = c->bodies;
    *n_bodies = c->n_bodies;
    return 0;
}
