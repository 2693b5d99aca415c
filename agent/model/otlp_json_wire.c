/* otlp_json_wire.c: OTLP JSON written straight from protobuf bytes (see
 * otlp_json.h), for the file exporter, whose batches mostly arrive as the
 * bytes a receiver walked. Decoding them into protobuf-c structs first cost
 * more than writing the JSON; this reads each field once and writes it.
 *
 * The output is, byte for byte, what ot_json_encode writes for the decoded
 * message (that encoder stays the reference; a unit test and a fuzz target
 * compare the two). That is easy where the bytes are in the order
 * protobuf-c packs them: fields by increasing number, a repeated field's
 * elements together, each singular field and oneof at most once. Anything
 * else (a singular field sent twice, which protobuf-c merges or replaces,
 * out-of-order fields, two members of one oneof, bytes that do not parse,
 * nesting past the limit) is answered with 1, and the caller takes the
 * decode-and-encode road, so such input never needs rules of its own here.
 *
 * Presence follows ot_json_encode's field_present: a proto3 scalar is
 * written when its decoded value is not zero, a string when it is not empty
 * up to its first NUL (protobuf-c strings end there), bytes when not empty,
 * a message and a oneof member whenever sent. */
#include "model/otlp_json_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/codec.h"

#define JDENSE 32    /* OTLP field numbers are below this */
#define JMAX_MSGS 64
#define JKEY 40      /* ,"lowerCamelName": */

enum { J_UNKNOWN = 0, J_PLAIN, J_ONEOF, J_REP };

typedef struct jfield {
    uint8_t type;  /* ProtobufCType */
    uint8_t mode;
    uint8_t hex;   /* trace and span ids */
    uint8_t group; /* bit of its oneof among the message's oneofs */
    uint8_t klen;
    uint8_t want;  /* the wire type of a value */
    uint16_t sub;  /* a message's table */
    char key[JKEY];
} jfield;

typedef struct jmsg {
    const ProtobufCMessageDescriptor *desc;
    jfield f[JDENSE];
    bool kv; /* KeyValue: see put_kv */
} jmsg;

static jmsg jmsgs[JMAX_MSGS];
static size_t n_jmsgs;
static int jroots[OT_SIGNAL_COUNT];
static bool jinit_ok;
static pthread_once_t jinit_once = PTHREAD_ONCE_INIT;

/* The key as enc_key writes it, with the comma that every key but the
 * first of an object takes. */
static int make_key(jfield *f, const char *name)
{
    size_t k = 0;
    f->key[k++] = ',';
    f->key[k++] = '"';
    bool up = false;
    for (const char *s = name; *s; s++) {
        if (k + 3 > JKEY)
            return -1;
        if (*s == '_') {
            up = true;
            continue;
        }
        f->key[k++] = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        up = false;
    }
    f->key[k++] = '"';
    f->key[k++] = ':';
    f->klen = (uint8_t)k;
    return 0;
}

static inline unsigned wire_of(unsigned type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    }
    return 0;
}

static int jadd(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n_jmsgs; i++)
        if (jmsgs[i].desc == d)
            return (int)i;
    if (n_jmsgs == JMAX_MSGS)
        return -1;
    int idx = (int)n_jmsgs++;
    jmsg *m = &jmsgs[idx];
    m->desc = d;
    m->kv = d == &opentelemetry__proto__common__v1__key_value__descriptor;
    unsigned offsets[8], n_off = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->id >= JDENSE || fd->label == PROTOBUF_C_LABEL_REQUIRED ||
            fd->label == PROTOBUF_C_LABEL_OPTIONAL)
            return -1; /* not proto3 as OTLP writes it: tables need a change */
        jfield *f = &m->f[fd->id];
        f->type = (uint8_t)fd->type;
        f->want = (uint8_t)wire_of(fd->type);
        f->hex = ojson_hex_id_len(fd) != 0;
        if (make_key(f, fd->name) < 0)
            return -1;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            f->mode = J_REP;
        } else if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* the members of one oneof share its case member */
            unsigned g = 0;
            while (g < n_off && offsets[g] != fd->quantifier_offset)
                g++;
            if (g == n_off) {
                if (n_off == 8)
                    return -1;
                offsets[n_off++] = fd->quantifier_offset;
            }
            f->mode = J_ONEOF;
            f->group = (uint8_t)g;
        } else {
            f->mode = J_PLAIN;
        }
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        int sub = jadd(fd->descriptor);
        if (sub < 0)
            return -1;
        jmsgs[idx].f[fd->id].sub = (uint16_t)sub;
    }
    return idx;
}

static void jinit(void)
{
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        jroots[s] = jadd(ot_signal_request_desc((ot_signal)s));
        if (jroots[s] < 0)
            return;
    }
    jinit_ok = true;
}

/* ---- output -------------------------------------------------------------- */

/* Room for n bytes and the NUL ot_buf keeps after its data; NULL on OOM. */
static inline char *room(ot_buf *b, size_t n)
{
    if (b->cap - b->len <= n && ot_buf_reserve(b, n + 1) < 0)
        return NULL;
    return b->data + b->len;
}

/* One byte; the NUL after the data is written once, at the end. */
static inline int putch(ot_buf *b, char c)
{
    char *o = room(b, 1);
    if (!o)
        return -1;
    *o = c;
    b->len++;
    return 0;
}

static const char digits2[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                 "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                 "8081828384858687888990919293949596979899";

/* v in decimal, negative when neg, quoted when q (64-bit integers). */
static inline char *put_int(char *o, uint64_t v, bool neg, bool q)
{
    char tmp[24], *e = tmp + sizeof tmp, *s = e;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        s -= 2;
        memcpy(s, digits2 + 2 * r, 2);
    }
    if (v >= 10) {
        s -= 2;
        memcpy(s, digits2 + 2 * v, 2);
    } else {
        *--s = (char)('0' + v);
    }
    if (neg)
        *--s = '-';
    if (q)
        *o++ = '"';
    memcpy(o, s, (size_t)(e - s));
    o += e - s;
    if (q)
        *o++ = '"';
    return o;
}

/* A double the way ojson_put_double writes it, without printf, for the
 * common case of a short decimal: v = m / 10^k exactly as IEEE division
 * rounds it, with |m| < 10^15 and 1e-3 <= |v| < 1e15, not an integer. Then
 * the shortest of %.15g..%.17g that reads back is %.15g (any decimal of at
 * most 15 significant digits survives a round trip through a double, so
 * v printed to 15 digits is m / 10^k again, and it reads back as v), and
 * %.15g writes it in fixed notation without trailing zeros: the digits of
 * m with the point k from the right. NULL when v is not such a number. */
static char *put_short_double(char *o, double v)
{
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12};
    static const uint64_t u10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
                                   1000000000, 10000000000ull, 100000000000ull, 1000000000000ull};
    double a = v < 0 ? -v : v;
    if (!(a >= 1e-3 && a < 1e15) || a == (double)(int64_t)a)
        return NULL;
    for (unsigned k = 1; k <= 12; k++) {
        double t = a * p10[k];
        if (t >= 1e15)
            return NULL;
        uint64_t m = (uint64_t)(t + 0.5);
        if ((double)m / p10[k] != a)
            continue;
        if (m % 10 == 0)
            return NULL; /* a shorter k would have matched: not expected, leave it to printf */
        uint64_t ip = m / u10[k], fp = m % u10[k];
        if (v < 0)
            *o++ = '-';
        o = put_int(o, ip, false, false);
        *o++ = '.';
        for (unsigned i = k; i-- > 0;) {
            o[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        return o + k;
    }
    return NULL;
}

/* Whether any of the 8 bytes needs escaping in JSON or is not ASCII. */
static inline uint64_t needs_escape(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
    return (x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high;
}

/* Whether the n bytes at s go into JSON as they are: ASCII, no control
 * byte (NUL among them), no quote or backslash. One OR over words that may
 * overlap at the end, no branch per byte. */
static inline bool plain_str(const uint8_t *s, size_t n)
{
    uint64_t bad = 0, x;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, s + i, 8);
            bad |= needs_escape(x);
        }
        memcpy(&x, s + n - 8, 8);
        bad |= needs_escape(x);
    } else {
        x = 0x2020202020202020ull; /* spaces need no escape */
        memcpy(&x, s, n);
        bad = needs_escape(x);
    }
    return !bad;
}

/* A string as the struct encoder writes it (ot_buf_json_str of the bytes
 * before the first NUL): plain ones copied, the rest left to
 * ot_buf_json_str. */
static int put_str(ot_buf *b, const uint8_t *s, size_t n)
{
    if (!plain_str(s, n)) {
        const uint8_t *nul = memchr(s, 0, n);
        return ot_buf_json_str(b, (const char *)s, nul ? (size_t)(nul - s) : n);
    }
    char *o = room(b, n + 2);
    if (!o)
        return -1;
    *o++ = '"';
    memcpy(o, s, n);
    o[n] = '"';
    b->len += n + 2;
    return 0;
}

/* ---- the walk ------------------------------------------------------------ */

#define FALLBACK 1

static inline const uint8_t *varint(const uint8_t *p, const uint8_t *end, unsigned max, uint64_t *v)
{
    if (p < end && !(*p & 0x80)) {
        *v = *p;
        return p + 1;
    }
    uint64_t r = 0;
    for (unsigned i = 0; i < max && p + i < end; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return p + i + 1;
        }
    }
    return NULL;
}

static inline uint64_t le(const uint8_t *p, unsigned n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
#endif
}


/* One scalar of type t from a varint or fixed value v (raw: the varint's
 * bytes, for bool): writes key (klen bytes, none for an array element)
 * and value when the value is present or always. 1 written, 0 not, -1 on
 * OOM. */
static int put_scalar(ot_buf *b, unsigned t, const char *key, size_t klen, bool always, uint64_t v,
                      const uint8_t *raw, size_t rawlen)
{
    uint64_t mag = v;
    bool neg = false, q = false, dbl = false, isf = false, bl = false;
    double d = 0;
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t i = (int32_t)(uint32_t)v;
        neg = i < 0;
        mag = neg ? (uint64_t)0 - (uint64_t)(int64_t)i : (uint64_t)i;
        break;
    }
    case PROTOBUF_C_TYPE_SINT32: {
        uint32_t u = (uint32_t)v;
        int32_t i = (int32_t)((u >> 1) ^ (0u - (u & 1)));
        neg = i < 0;
        mag = neg ? (uint64_t)0 - (uint64_t)(int64_t)i : (uint64_t)i;
        break;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        mag = (uint32_t)v;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        neg = (int64_t)v < 0;
        mag = neg ? (uint64_t)0 - v : v;
        q = true;
        break;
    case PROTOBUF_C_TYPE_SINT64: {
        int64_t i = (int64_t)((v >> 1) ^ (0 - (v & 1)));
        neg = i < 0;
        mag = neg ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        q = true;
        break;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        q = true;
        break;
    case PROTOBUF_C_TYPE_FLOAT: {
        float fl;
        uint32_t u = (uint32_t)v;
        memcpy(&fl, &u, 4);
        d = fl;
        dbl = isf = true;
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE:
        memcpy(&d, &v, 8);
        dbl = true;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        /* protobuf-c: true when any bit of the varint is set */
        for (size_t i = 0; i < rawlen; i++)
            if (raw[i] & 0x7f)
                bl = true;
        mag = bl;
        break;
    default:
        return 0;
    }
    if (!always && (dbl ? d == 0 : mag == 0))
        return 0;
    char *o = room(b, JKEY + 32);
    if (!o)
        return -1;
    if (klen) {
        memcpy(o, key, klen);
        o += klen;
    }
    if (dbl) {
        char *e = isf ? NULL : put_short_double(o, d);
        if (e) {
            b->len = (size_t)(e - b->data);
            return 1;
        }
        b->len = (size_t)(o - b->data);
        ojson_put_double(b, d, isf);
        return b->oom ? -1 : 1;
    }
    if (t == PROTOBUF_C_TYPE_BOOL) {
        memcpy(o, bl ? "true" : "false", bl ? 4 : 5);
        o += bl ? 4 : 5;
    } else {
        o = put_int(o, mag, neg, q);
    }
    b->len = (size_t)(o - b->data);
    return 1;
}

static int put_key(ot_buf *b, const jfield *f, bool first)
{
    size_t k = first ? 1 : 0;
    char *o = room(b, JKEY);
    if (!o)
        return -1;
    memcpy(o, f->key + k, JKEY - 1);
    b->len += f->klen - k;
    return 0;
}

static int put_bytes(ot_buf *b, const jfield *f, const uint8_t *v, size_t n)
{
    char *o = room(b, (f->hex ? 2 * n : ot_base64_len(n, 0)) + 2);
    if (!o)
        return -1;
    char *s = o;
    *o++ = '"';
    o += f->hex ? ot_hex_encode(v, n, o, false) : ot_base64_encode(v, n, o, 0);
    *o++ = '"';
    b->len += (size_t)(o - s);
    return 0;
}

/* The commonest message of OTLP, an attribute, when it is the KeyValue
 * {key, value: AnyValue{string_value or int_value}} protobuf-c packs, with
 * short plain strings: written in one go. FALLBACK (nothing written) for
 * any other shape, which the general loop then writes. */
static int put_kv(ot_buf *b, const uint8_t *p, size_t n)
{
    static const char k1[] = "{\"key\":\"", k2[] = "\",\"value\":{\"stringValue\":\"",
                      k3[] = "\",\"value\":{\"intValue\":\"";
    const uint8_t *e = p + n;
    if (n < 6 || p[0] != 0x0a || (p[1] & 0x80) || p[1] == 0 || (size_t)p[1] + 6 > n)
        return FALLBACK;
    const uint8_t *key = p + 2, *a = key + p[1];
    size_t kl = p[1];
    if (a[0] != 0x12 || (a[1] & 0x80) || a + 2 + a[1] != e || a[1] < 2)
        return FALLBACK;
    a += 2;
    const uint8_t *sv = a + 2;
    size_t sl = a[1];
    uint64_t iv = 0;
    if (a[0] == 0x0a) {
        if ((sl & 0x80) || sv + sl != e || !plain_str(sv, sl))
            return FALLBACK;
    } else if (a[0] == 0x18) {
        if (varint(a + 1, e, 10, &iv) != e)
            return FALLBACK;
    } else {
        return FALLBACK;
    }
    if (!plain_str(key, kl))
        return FALLBACK;
    char *o = room(b, kl + sl + 64);
    if (!o)
        return -1;
    char *o0 = o;
    memcpy(o, k1, sizeof k1 - 1);
    o += sizeof k1 - 1;
    memcpy(o, key, kl);
    o += kl;
    if (a[0] == 0x0a) {
        memcpy(o, k2, sizeof k2 - 1);
        o += sizeof k2 - 1;
        memcpy(o, sv, sl);
        o += sl;
        *o++ = '"';
    } else {
        memcpy(o, k3, sizeof k3 - 2);
        o += sizeof k3 - 2;
        bool neg = (int64_t)iv < 0;
        o = put_int(o, neg ? (uint64_t)0 - iv : iv, neg, true);
    }
    *o++ = '}';
    *o++ = '}';
    b->len += (size_t)(o - o0);
    return 0;
}

/* One message being written; the one on top is the innermost. */
typedef struct jframe {
    const jmsg *m;
    const uint8_t *end;
    uint32_t prev;   /* number of the last known field seen */
    uint32_t groups; /* oneofs seen */
    bool open;       /* the array of prev is open */
    bool first;      /* no key written yet */
} jframe;

/* Before an element of repeated field f: the key and [ for the first, a
 * comma for the others. */
static inline int open_elem(ot_buf *b, const jfield *f, jframe *top)
{
    if (top->open)
        return putch(b, ',');
    if (put_key(b, f, top->first) < 0 || putch(b, '[') < 0)
        return -1;
    top->open = true;
    top->first = false;
    return 0;
}

static int enc_msg(ot_buf *b, const jmsg *root, const uint8_t *p, const uint8_t *end)
{
    jframe st[MAX_DEPTH];
    jframe *top = st;
    *top = (jframe){root, end, 0, 0, false, true};
    const jmsg *m = root;
    if (putch(b, '{') < 0)
        return -1;
    for (;;) {
        if (p >= end) {
            char *o = room(b, 2);
            if (!o)
                return -1;
            if (top->open)
                *o++ = ']';
            *o = '}';
            b->len += (size_t)top->open + 1;
            if (top == st)
                return 0;
            top--;
            m = top->m;
            end = top->end;
            continue;
        }
        uint64_t tag, v = 0, l;
        if (!(*p & 0x80)) {
            tag = *p++;
        } else if (!(p = varint(p, end, 5, &tag))) {
            return FALLBACK;
        }
        uint64_t fn = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        const uint8_t *val = p, *raw = p;
        size_t vlen = 0;
        switch (wt) {
        case 0:
            if (!(p = varint(p, end, 10, &v)))
                return FALLBACK;
            vlen = (size_t)(p - raw);
            break;
        case 1:
        case 5: {
            unsigned sz = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < sz)
                return FALLBACK;
            v = le(p, sz);
            p += sz;
            break;
        }
        case 2:
            if (p < end && !(*p & 0x80))
                l = *p++;
            else if (!(p = varint(p, end, 5, &l)))
                return FALLBACK;
            if (l > (uint64_t)(end - p))
                return FALLBACK;
            val = p;
            vlen = (size_t)l;
            p += vlen;
            break;
        default:
            return FALLBACK;
        }
        if (fn == 0)
            return FALLBACK;
        const jfield *f = fn < JDENSE ? &m->f[fn] : NULL;
        if (!f || f->mode == J_UNKNOWN)
            continue; /* protobuf-c keeps it aside; the reference never writes it */
        if (fn <= top->prev) {
            if (fn < top->prev || f->mode != J_REP)
                return FALLBACK;
        } else {
            if (top->open && putch(b, ']') < 0)
                return -1;
            top->open = false;
            top->prev = (uint32_t)fn;
            if (f->mode == J_ONEOF) {
                if (top->groups & (1u << f->group))
                    return FALLBACK;
                top->groups |= 1u << f->group;
            }
        }
        unsigned want = f->want;
        if (f->mode != J_REP) {
            if (wt != want)
                return FALLBACK;
            bool always = f->mode == J_ONEOF;
            if (wt != 2) {
                int w = put_scalar(b, f->type, f->key + top->first, f->klen - top->first, always, v,
                                   raw, vlen);
                if (w < 0)
                    return -1;
                if (w)
                    top->first = false;
                continue;
            }
            if (!always && f->type != PROTOBUF_C_TYPE_MESSAGE && (vlen == 0 || (f->type == PROTOBUF_C_TYPE_STRING && val[0] == 0)))
                continue;
            if (put_key(b, f, top->first) < 0)
                return -1;
            top->first = false;
        } else if (wt != want) {
            /* packed repeated scalars */
            if (wt != 2 || want == 2 || f->type == PROTOBUF_C_TYPE_BOOL)
                return FALLBACK;
            unsigned sz = want == 1 ? 8 : want == 5 ? 4 : 0;
            if (sz && vlen % sz != 0)
                return FALLBACK;
            for (const uint8_t *q = val, *qe = val + vlen; q < qe;) {
                raw = q;
                if (!sz) {
                    if (!(q = varint(q, qe, 10, &v)))
                        return FALLBACK;
                } else {
                    v = le(q, sz);
                    q += sz;
                }
                if (open_elem(b, f, top) < 0 ||
                    put_scalar(b, f->type, NULL, 0, true, v, raw, (size_t)(q - raw)) < 0)
                    return -1;
            }
            continue;
        } else {
            /* one element of a repeated field */
            if (open_elem(b, f, top) < 0)
                return -1;
            if (wt != 2) {
                if (put_scalar(b, f->type, NULL, 0, true, v, raw, vlen) < 0)
                    return -1;
                continue;
            }
        }
        /* a length-delimited value, its key or comma written */
        int rc;
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING:
            rc = put_str(b, val, vlen);
            break;
        case PROTOBUF_C_TYPE_BYTES:
            rc = put_bytes(b, f, val, vlen);
            break;
        default:
            if (top - st + 1 >= MAX_DEPTH)
                return FALLBACK;
            if (jmsgs[f->sub].kv && top - st + 2 < MAX_DEPTH && (rc = put_kv(b, val, vlen)) != FALLBACK) {
                if (rc < 0)
                    return -1;
                continue;
            }
            if (putch(b, '{') < 0)
                return -1;
            m = &jmsgs[f->sub];
            *++top = (jframe){m, p, 0, 0, false, true};
            end = p;
            p = val;
            continue;
        }
        if (rc < 0)
            return -1;
    }
}

int ot_json_encode_wire(ot_signal s, const void *buf, size_t len, ot_buf *out, ot_err *err)
{
    pthread_once(&jinit_once, jinit);
    if (!jinit_ok || (unsigned)s >= OT_SIGNAL_COUNT)
        return FALLBACK;
    if (out->oom)
        return ot_err_set(err, "json encode: out of memory");
    size_t start = out->len;
    const uint8_t *p = buf;
    int rc = enc_msg(out, &jmsgs[jroots[s]], p, p + len);
    if (rc == 0 && !out->oom) {
        out->data[out->len] = '\0';
        return 0;
    }
    bool oom = rc < 0 || out->oom;
    out->oom = 0;
    if (out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return oom ? ot_err_set(err, "json encode: out of memory") : FALLBACK;
}
