/* mkey.c: stream identities as canonical bytes and their hash, and reading
 * them back. The bytes are what the store compares on a hash hit, so two
 * identities are the same stream exactly when their bytes are equal; the
 * hash is only a fast way to find candidates.
 *
 * Encoding (all lengths and counts LEB128 varints):
 *   str   = len, bytes
 *   value = tag (the OTLP AnyValue value_case number), then
 *           string/bytes: str; bool: 1 byte; int, double: 8 bytes little
 *           endian (doubles bit for bit); array: count, values in order;
 *           kvlist: attrs; none: nothing
 *   attrs = count, then each entry (str key, value), the entries sorted by
 *           their encoded bytes, so the order they came in does not matter
 *   base  = attrs(resource), str scope name, str scope version, str name,
 *           str unit, type, temporality, monotonic (one byte each)
 *   point = attrs(point attributes)
 * Sorting by encoded bytes rather than by key is a total order on entries
 * (duplicate keys included) and needs no decoding to compare. */
#include "base/shortcopy.h"
#include "base/varint.h"
#include "store/mstore.h"
#include "store/mstore_int.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#define P0 0x9e3779b97f4a7c15ull
#define P1 0xbf58476d1ce4e5b9ull
#define P2 0x94d049bb133111ebull

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 64x64->128 multiply folded to 64 bits: one instruction on x86-64 and
 * arm64, and every input bit reaches every output bit. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t ot_mstore_hash(const void *vp, size_t n, uint64_t seed)
{
    const uint8_t *p = vp;
    size_t len = n;
    uint64_t h = mum(seed ^ P0, (uint64_t)len ^ P1);
    while (n > 16) {
        h = mum(rd64(p) ^ P1 ^ h, rd64(p + 8) ^ P2);
        p += 16;
        n -= 16;
    }
    uint64_t a = 0, b = 0;
    if (n >= 8) { /* 8..16 left: two reads that may overlap */
        a = rd64(p);
        b = rd64(p + n - 8);
    } else if (n >= 4) {
        a = rd32(p);
        b = rd32(p + n - 4);
    } else if (n > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
    }
    h = mum(a ^ P1 ^ h, b ^ P2 ^ (uint64_t)len);
    return mum(h ^ P0, h ^ P2);
}

/* ---- writing ------------------------------------------------------------ */

static inline int reserve(ot_buf *b, size_t n)
{
    return b->cap - b->len > n ? 0 : ot_buf_reserve(b, n);
}

static int put_varint(ot_buf *b, uint64_t v)
{
    if (reserve(b, 10) < 0)
        return -1;
    b->len += ot_varint_put((uint8_t *)b->data + b->len, v);
    return 0;
}

static int put_u8(ot_buf *b, uint8_t c)
{
    return ot_buf_append(b, &c, 1);
}

static int put_str(ot_buf *b, const char *s, size_t n)
{
    if (reserve(b, n + 10) < 0)
        return -1;
    uint8_t *o = (uint8_t *)b->data + b->len;
    size_t w = ot_varint_put(o, n);
    if (n)
        memcpy(o + w, s, n);
    b->len += w + n;
    return 0;
}

static int put_cstr(ot_buf *b, const char *s)
{
    return put_str(b, s ? s : "", s ? strlen(s) : 0);
}

static int put_u64(ot_buf *b, uint8_t tag, uint64_t v)
{
    uint8_t o[9];
    o[0] = tag;
    for (int i = 0; i < 8; i++)
        o[1 + i] = (uint8_t)(v >> (8 * i));
    return ot_buf_append(b, o, 9);
}

/* Entries of one attribute list, for sorting. */
typedef struct span {
    size_t off, len;
} span;

static inline int span_cmp(const uint8_t *base, const span *a, const span *b)
{
    const uint8_t *x = base + a->off, *y = base + b->off;
    /* Keys of different lengths differ in their first (length) byte. */
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(x, y, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int span_cmp_r(const void *a, const void *b, void *base)
{
    return span_cmp(base, a, b);
}

/* Puts the n entries written at sp[] (in b, in input order) in canonical
 * order. Already sorted, the common case for a repeating sender, costs
 * n-1 compares and no copy. */
static int sort_entries(ot_mstore_key *k, ot_buf *b, span *sp, size_t n)
{
    const uint8_t *d = (const uint8_t *)b->data;
    size_t i = 1;
    while (i < n && span_cmp(d, &sp[i - 1], &sp[i]) <= 0)
        i++;
    if (i >= n)
        return 0;
    if (n <= 32) {
        for (; i < n; i++) {
            span x = sp[i];
            size_t j = i;
            for (; j > 0 && span_cmp(d, &sp[j - 1], &x) > 0; j--)
                sp[j] = sp[j - 1];
            sp[j] = x;
        }
    } else {
        qsort_r(sp, n, sizeof *sp, span_cmp_r, (void *)d);
    }
    size_t start = sp[0].off, total = 0;
    for (i = 0; i < n; i++)
        if (sp[i].off < start)
            start = sp[i].off;
    k->tmp.len = 0;
    for (i = 0; i < n; i++)
        if (ot_buf_append(&k->tmp, d + sp[i].off, sp[i].len) < 0)
            return -1;
    total = k->tmp.len;
    memcpy(b->data + start, k->tmp.data, total);
    return 0;
}

static int enc_kvs(ot_mstore_key *k, ot_buf *b, ot_keyvalue *const *kv, size_t n);

static int enc_value(ot_mstore_key *k, ot_buf *b, const ot_anyvalue *v)
{
    uint64_t bits;
    switch (v ? v->value_case : 0) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        if (put_u8(b, 1) < 0)
            return -1;
        return put_cstr(b, v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: {
        uint8_t o[2] = {2, v->bool_value ? 1 : 0};
        return ot_buf_append(b, o, 2);
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return put_u64(b, 3, (uint64_t)v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        memcpy(&bits, &v->double_value, 8);
        return put_u64(b, 4, bits);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const ot_arrayvalue *a = v->array_value;
        size_t n = a ? a->n_values : 0;
        if (put_u8(b, 5) < 0 || put_varint(b, n) < 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (enc_value(k, b, a->values[i]) < 0)
                return -1;
        return 0;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const ot_kvlist *l = v->kvlist_value;
        if (put_u8(b, 6) < 0)
            return -1;
        return enc_kvs(k, b, l ? l->values : NULL, l ? l->n_values : 0);
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        if (put_u8(b, 7) < 0)
            return -1;
        return put_str(b, (const char *)v->bytes_value.data, v->bytes_value.len);
    default:
        return put_u8(b, 0);
    }
}

/* The fast cases of an entry, a string key with a string or int value,
 * are written with one reserve and no calls but memcpy. */
static inline int enc_str_kv(ot_buf *b, const char *key, size_t kn, const char *val, size_t vn)
{
    if (reserve(b, kn + vn + 21) < 0)
        return -1;
    uint8_t *o = (uint8_t *)b->data + b->len, *s = o;
    o += ot_varint_put(o, kn);
    memcpy(o, key, kn);
    o += kn;
    *o++ = 1;
    o += ot_varint_put(o, vn);
    memcpy(o, val, vn);
    o += vn;
    b->len += (size_t)(o - s);
    return 0;
}

static inline int enc_int_kv(ot_buf *b, const char *key, size_t kn, uint64_t v)
{
    if (reserve(b, kn + 19) < 0)
        return -1;
    uint8_t *o = (uint8_t *)b->data + b->len, *s = o;
    o += ot_varint_put(o, kn);
    memcpy(o, key, kn);
    o += kn;
    *o++ = 3;
    for (int i = 0; i < 8; i++)
        o[i] = (uint8_t)(v >> (8 * i));
    o += 8;
    b->len += (size_t)(o - s);
    return 0;
}

static int enc_kvs(ot_mstore_key *k, ot_buf *b, ot_keyvalue *const *kv, size_t n)
{
    span stack[32], *sp = n <= 32 ? stack : malloc(n * sizeof *sp);
    int rc = -1;
    if (!sp || put_varint(b, n) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const ot_keyvalue *e = kv[i];
        const char *key = e && e->key ? e->key : "";
        const ot_anyvalue *v = e ? e->value : NULL;
        sp[i].off = b->len;
        int vc = v ? (int)v->value_case : 0;
        if (vc == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            const char *s = v->string_value ? v->string_value : "";
            if (enc_str_kv(b, key, strlen(key), s, strlen(s)) < 0)
                goto out;
        } else if (vc == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE) {
            if (enc_int_kv(b, key, strlen(key), (uint64_t)v->int_value) < 0)
                goto out;
        } else if (put_cstr(b, key) < 0 || enc_value(k, b, v) < 0) {
            goto out;
        }
        sp[i].len = b->len - sp[i].off;
    }
    rc = sort_entries(k, b, sp, n);
out:
    if (sp != stack)
        free(sp);
    return rc;
}

static int enc_strs(ot_mstore_key *k, ot_buf *b, const char *const *keys,
                    const char *const *vals, size_t n)
{
    span stack[32], *sp = n <= 32 ? stack : malloc(n * sizeof *sp);
    int rc = -1;
    if (!sp || put_varint(b, n) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *key = keys[i] ? keys[i] : "", *s = vals[i] ? vals[i] : "";
        sp[i].off = b->len;
        if (enc_str_kv(b, key, strlen(key), s, strlen(s)) < 0)
            goto out;
        sp[i].len = b->len - sp[i].off;
    }
    rc = sort_entries(k, b, sp, n);
out:
    if (sp != stack)
        free(sp);
    return rc;
}

/* A buffer that ran out of memory once stays failed; a new metric gets a
 * fresh one. */
static void key_restart(ot_mstore_key *k)
{
    if (k->buf.oom) {
        ot_buf_free(&k->buf);
        k->buf = (ot_buf)OT_BUF_INIT;
    }
    if (k->tmp.oom) {
        ot_buf_free(&k->tmp);
        k->tmp = (ot_buf)OT_BUF_INIT;
    }
    k->buf.len = 0;
    k->base_len = 0;
    k->base_id = 0;
}

static int key_base_tail(ot_mstore_key *k, const char *sname, const char *sver,
                         const ot_mstore_metric *m)
{
    ot_buf *b = &k->buf;
    uint8_t t[3] = {(uint8_t)m->type, (uint8_t)m->temporality,
                    (uint8_t)(m->type == OT_MSTORE_SUM && m->monotonic)};
    if (put_cstr(b, sname) < 0 || put_cstr(b, sver) < 0 || put_cstr(b, m->name) < 0 ||
        put_cstr(b, m->unit) < 0 || ot_buf_append(b, t, 3) < 0)
        return -1;
    k->base_len = b->len;
    k->base_hash = ot_mstore_hash(b->data, b->len, 0);
    k->base_id = 0;
    k->hash = k->base_hash;
    return 0;
}

int ot_mstore_key_otlp(ot_mstore_key *k, const ot_resource *res, const ot_scope *scope,
                       const ot_metric *m)
{
    key_restart(k);
    ot_mstore_metric d = {0};
    if (m) {
        d.name = m->name;
        d.unit = m->unit;
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
            d.type = OT_MSTORE_GAUGE;
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
            d.type = OT_MSTORE_SUM;
            if (m->sum) {
                d.temporality = (int)m->sum->aggregation_temporality;
                d.monotonic = m->sum->is_monotonic;
            }
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
            d.type = OT_MSTORE_HISTOGRAM;
            if (m->histogram)
                d.temporality = (int)m->histogram->aggregation_temporality;
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
            d.type = OT_MSTORE_EXP_HISTOGRAM;
            if (m->exponential_histogram)
                d.temporality = (int)m->exponential_histogram->aggregation_temporality;
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
            d.type = OT_MSTORE_SUMMARY;
            break;
        default:
            break;
        }
    }
    if (enc_kvs(k, &k->buf, res ? res->attributes : NULL, res ? res->n_attributes : 0) < 0)
        return -1;
    return key_base_tail(k, scope ? scope->name : NULL, scope ? scope->version : NULL, &d);
}

int ot_mstore_key_base(ot_mstore_key *k, const char *const *res_keys,
                       const char *const *res_vals, size_t n_res, const ot_mstore_metric *m)
{
    key_restart(k);
    if (enc_strs(k, &k->buf, res_keys, res_vals, n_res) < 0)
        return -1;
    return key_base_tail(k, m->scope_name, m->scope_version, m);
}

static int key_point_done(ot_mstore_key *k)
{
    k->hash = ot_mstore_hash(k->buf.data + k->base_len, k->buf.len - k->base_len, k->base_hash);
    return 0;
}

int ot_mstore_key_point(ot_mstore_key *k, ot_keyvalue *const *attrs, size_t n)
{
    k->buf.len = k->base_len;
    if (enc_kvs(k, &k->buf, attrs, n) < 0)
        return -1;
    return key_point_done(k);
}

int ot_mstore_key_point_strs(ot_mstore_key *k, const char *const *keys,
                             const char *const *vals, size_t n)
{
    k->buf.len = k->base_len;
    if (enc_strs(k, &k->buf, keys, vals, n) < 0)
        return -1;
    return key_point_done(k);
}

void ot_mstore_key_free(ot_mstore_key *k)
{
    ot_buf_free(&k->buf);
    ot_buf_free(&k->tmp);
    *k = (ot_mstore_key)OT_MSTORE_KEY_INIT;
}

/* ---- reading ------------------------------------------------------------ */

/* The bytes were written by this file and are never corrupted, but the
 * reader still stops at the end rather than trust a count. */
static bool get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int s = 0; *pp < end && s < 64; s += 7) {
        uint8_t c = *(*pp)++;
        v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static bool get_str(const uint8_t **pp, const uint8_t *end, ot_mstore_str *s)
{
    uint64_t n;
    if (!get_varint(pp, end, &n) || n > (uint64_t)(end - *pp))
        return false;
    s->p = (const char *)*pp;
    s->n = (size_t)n;
    *pp += n;
    return true;
}

static bool get_val(const uint8_t **pp, const uint8_t *end, ot_mstore_val *v);

static bool skip_kvs(const uint8_t **pp, const uint8_t *end, uint64_t n)
{
    ot_mstore_str key;
    ot_mstore_val v;
    for (uint64_t i = 0; i < n; i++)
        if (!get_str(pp, end, &key) || !get_val(pp, end, &v))
            return false;
    return true;
}

static bool get_val(const uint8_t **pp, const uint8_t *end, ot_mstore_val *v)
{
    memset(v, 0, sizeof *v);
    if (*pp >= end)
        return false;
    v->type = *(*pp)++;
    uint64_t n, bits = 0;
    switch (v->type) {
    case 0:
        return true;
    case 1:
    case 7:
        return get_str(pp, end, &v->s);
    case 2:
        if (*pp >= end)
            return false;
        v->b = *(*pp)++ != 0;
        return true;
    case 3:
    case 4:
        if (end - *pp < 8)
            return false;
        for (int i = 0; i < 8; i++)
            bits |= (uint64_t)(*pp)[i] << (8 * i);
        *pp += 8;
        v->i = (int64_t)bits;
        memcpy(&v->d, &bits, 8);
        if (v->type == 4)
            v->i = 0;
        else
            v->d = 0;
        return true;
    case 5:
        if (!get_varint(pp, end, &n))
            return false;
        v->sub = (ot_mstore_iter){*pp, end, (size_t)n, NULL, NULL};
        for (uint64_t i = 0; i < n; i++) {
            ot_mstore_val e;
            if (!get_val(pp, end, &e))
                return false;
        }
        v->sub.end = *pp;
        return true;
    case 6:
        if (!get_varint(pp, end, &n))
            return false;
        v->sub = (ot_mstore_iter){*pp, end, (size_t)n, NULL, NULL};
        if (!skip_kvs(pp, end, n))
            return false;
        v->sub.end = *pp;
        return true;
    default:
        return false;
    }
}

bool ot_mstore_next_kv(ot_mstore_iter *it, ot_mstore_str *key, ot_mstore_val *v)
{
    if (!it->left ||
        !(it->kp ? get_str(&it->kp, it->kend, key) : get_str(&it->p, it->end, key)) ||
        !get_val(&it->p, it->end, v)) {
        it->left = 0;
        return false;
    }
    it->left--;
    return true;
}

bool ot_mstore_next_val(ot_mstore_iter *it, ot_mstore_val *v)
{
    if (!it->left || !get_val(&it->p, it->end, v)) {
        it->left = 0;
        return false;
    }
    it->left--;
    return true;
}

bool ot_mstore_next_vals(ot_mstore_iter *it, ot_mstore_val *v, size_t n)
{
    if (!it->kp || it->left < n)
        return false;
    const uint8_t *p = it->p, *end = it->end;
    for (size_t i = 0; i < n; i++) {
        /* Short strings and integers, nearly every label value, without
         * get_val's switch and clearing. */
        if (end - p >= 2 && p[0] == 1 && p[1] < 0x80 && (size_t)(end - p - 2) >= p[1]) {
            v[i].type = 1;
            v[i].s = (ot_mstore_str){(const char *)p + 2, p[1]};
            p += 2 + p[1];
        } else if (end - p >= 9 && p[0] == 3) {
            uint64_t bits;
            memcpy(&bits, p + 1, 8); /* little-endian, as written */
            v[i].type = 3;
            v[i].i = (int64_t)le64toh(bits);
            p += 9;
        } else if (!get_val(&p, end, &v[i])) {
            it->left = 0;
            return false;
        }
    }
    it->p = p;
    it->left -= n;
    return true;
}

static bool get_attrs(const uint8_t **pp, const uint8_t *end, ot_mstore_iter *it)
{
    uint64_t n;
    if (!get_varint(pp, end, &n))
        return false;
    *it = (ot_mstore_iter){*pp, end, (size_t)n, NULL, NULL};
    if (!skip_kvs(pp, end, n))
        return false;
    it->end = *pp;
    return true;
}

void ot_mstore_decode_(const uint8_t *base, size_t blen, const uint8_t *pt, size_t plen,
                       ot_mstore_info *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = base, *end = base + blen;
    if (!get_attrs(&p, end, &out->resource) || !get_str(&p, end, &out->scope_name) ||
        !get_str(&p, end, &out->scope_version) || !get_str(&p, end, &out->name) ||
        !get_str(&p, end, &out->unit) || end - p < 3)
        return;
    out->type = (ot_mstore_type)p[0];
    out->temporality = p[1];
    out->monotonic = p[2] != 0;
    p = pt;
    get_attrs(&p, pt + plen, &out->attrs);
}

void ot_mstore_decode_attrs_(const uint8_t *pt, size_t plen, ot_mstore_iter *out)
{
    /* The point part is the list alone, so its end is known without
     * walking it as get_attrs does. */
    const uint8_t *p = pt;
    uint64_t n;
    if (!get_varint(&p, pt + plen, &n))
        n = 0;
    *out = (ot_mstore_iter){p, pt + plen, (size_t)n, NULL, NULL};
}

/* A varint whose first byte is the whole of it (lengths and counts under
 * 128, nearly all) without get_varint's loop. */
static inline bool varint_fast(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    if (*pp < end && **pp < 0x80) {
        *out = *(*pp)++;
        return true;
    }
    return get_varint(pp, end, out);
}

/* Past one value: the common types without get_val's decoding (a lookup
 * of a store with shared key lists does this for every attribute). */
static inline bool skip_val(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint64_t n;
    if (p >= end)
        return false;
    switch (*p) {
    case 0:
        n = 1;
        break;
    case 1:
    case 7:
        p++;
        if (!varint_fast(&p, end, &n))
            return false;
        break;
    case 2:
        n = 2;
        break;
    case 3:
    case 4:
        n = 9;
        break;
    default: {
        ot_mstore_val v;
        return get_val(pp, end, &v);
    }
    }
    if ((uint64_t)(end - p) < n)
        return false;
    *pp = p + n;
    return true;
}

int ot_mstore_split_(const uint8_t *pt, size_t plen, ot_buf *keys, ot_buf *vals)
{
    const uint8_t *p = pt, *end = pt + plen;
    uint64_t n;
    keys->len = vals->len = 0;
    if (!varint_fast(&p, end, &n))
        return -1;
    if ((keys->cap <= plen && ot_buf_reserve(keys, plen) < 0) ||
        (vals->cap <= plen && ot_buf_reserve(vals, plen) < 0))
        return -1;
    /* Both parts are no longer than the whole, so plain copies follow. */
    uint8_t *ko = (uint8_t *)keys->data, *vo = (uint8_t *)vals->data;
    memcpy(ko, pt, (size_t)(p - pt));
    ko += p - pt;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k0 = p;
        uint64_t kn;
        if (!varint_fast(&p, end, &kn) || kn > (uint64_t)(end - p))
            return -1;
        p += kn;
        ko = ot_copy_short(ko, k0, (size_t)(p - k0));
        const uint8_t *v0 = p;
        if (!skip_val(&p, end))
            return -1;
        vo = ot_copy_short(vo, v0, (size_t)(p - v0));
    }
    keys->len = (size_t)(ko - (uint8_t *)keys->data);
    vals->len = (size_t)(vo - (uint8_t *)vals->data);
    return 0;
}

void ot_mstore_decode_split_(const uint8_t *keys, size_t klen, const uint8_t *vals, size_t vlen,
                             ot_mstore_iter *out)
{
    const uint8_t *p = keys;
    uint64_t n;
    if (!get_varint(&p, keys + klen, &n))
        n = 0;
    *out = (ot_mstore_iter){vals, vals + vlen, (size_t)n, p, keys + klen};
}

/* ---- a stream's identity (layouts as mstore.c keeps them) --------------- */

void ot_mstore_stream_info(const ot_mstore_stream *s, ot_mstore_info *out)
{
    static const uint8_t no_attrs[1] = {0};
    if (!s->base->split) {
        ot_mstore_decode_(s->base->bytes, s->base->len, s->state + s->state_size, s->id_len, out);
        return;
    }
    ot_mstore_decode_(s->base->bytes, s->base->len, no_attrs, sizeof no_attrs, out);
    ot_mstore_stream_attrs(s, &out->attrs);
}

uint64_t ot_mstore_stream_base_id(const ot_mstore_stream *s)
{
    return s->base->id;
}

/* Split: the key list's address, then the values. */
void ot_mstore_stream_attrs(const ot_mstore_stream *s, ot_mstore_iter *out)
{
    const uint8_t *id = s->state + s->state_size;
    if (!s->base->split) {
        ot_mstore_decode_attrs_(id, s->id_len, out);
        return;
    }
    const ot_mstore_klist *l;
    memcpy(&l, id, sizeof l);
    ot_mstore_decode_split_(l->bytes, l->len, id + sizeof l, s->id_len - sizeof l, out);
}
