/* pbwalk.c: the protobuf wire walker behind the receivers' fast path (see
 * pbwalk.h).
 *
 * The schema comes from the protobuf-c descriptors generated from
 * agent/proto, turned once into dense per-message tables indexed by field
 * number, so the walker and the decoder can never disagree about the
 * schema and the hot loop does one array load per field. */
#include "model/pbwalk.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

/* What the walker checks for a known field; the wire types it takes. */
enum {
    K_UNKNOWN = 0,
    K_VARINT,    /* wire 0 */
    K_I64,       /* wire 1 */
    K_I32,       /* wire 5 */
    K_STRING,    /* wire 2, UTF-8 */
    K_BYTES,     /* wire 2 */
    K_MESSAGE,   /* wire 2, walked */
    K_REP_VARINT, /* repeated varint scalar: wire 0, or 2 packed */
    K_REP_I64,   /* repeated 64-bit scalar: wire 1, or 2 packed */
    K_REP_I32,   /* repeated 32-bit scalar: wire 5, or 2 packed */
};

enum {
    FL_ITEM = 1,  /* each occurrence is one span / data point / log record */
    FL_ONEOF = 2, /* member of a oneof: protobuf-c keeps the last one only */
    /* A singular message field whose type has a oneof. protobuf-c merges a
     * second occurrence into the first, and that merge misreads its field
     * table when neither has the oneof set; such input is refused. */
    FL_ONCE = 4,
};

#define DENSE 32  /* field numbers below this are looked up by index */
#define MAX_MSGS 64

typedef struct wfield {
    uint8_t kind;
    uint8_t flags;
    uint16_t sub; /* K_MESSAGE: index into msgs */
    const char *name;
} wfield;

/* Which per-item rules (otlp_check.h) a message's occurrences as an item
 * are held to. */
enum { CK_NONE = 0, CK_SPAN, CK_LOG, CK_NUMBER, CK_EXPHIST };

typedef struct wmsg {
    const ProtobufCMessageDescriptor *desc;
    wfield f[DENSE];
    uint8_t check;
    uint32_t cost; /* what unpacking one occurrence allocates for the struct */
} wmsg;

static wmsg msgs[MAX_MSGS];
static size_t n_msgs;
static int roots[OT_SIGNAL_COUNT];
static bool init_ok;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The fields whose occurrences are the items of a signal. */
static const struct {
    const ProtobufCMessageDescriptor *desc;
    uint32_t field;
} item_fields[] = {
    {&opentelemetry__proto__trace__v1__scope_spans__descriptor, 2},
    {&opentelemetry__proto__logs__v1__scope_logs__descriptor, 2},
    {&opentelemetry__proto__metrics__v1__gauge__descriptor, 1},
    {&opentelemetry__proto__metrics__v1__sum__descriptor, 1},
    {&opentelemetry__proto__metrics__v1__histogram__descriptor, 1},
    {&opentelemetry__proto__metrics__v1__exponential_histogram__descriptor, 1},
    {&opentelemetry__proto__metrics__v1__summary__descriptor, 1},
};

static int msg_index(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n_msgs; i++)
        if (msgs[i].desc == d)
            return (int)i;
    return -1;
}

static bool has_oneof(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            return true;
    return false;
}

static uint8_t kind_of(const ProtobufCFieldDescriptor *fd)
{
    bool rep = fd->label == PROTOBUF_C_LABEL_REPEATED;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_ENUM:
        return rep ? K_REP_VARINT : K_VARINT;
    case PROTOBUF_C_TYPE_BOOL:
        /* protobuf-c refuses packed bools above 1; unpacked only, to stay
         * stricter than the decoder. */
        return K_VARINT;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return rep ? K_REP_I32 : K_I32;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return rep ? K_REP_I64 : K_I64;
    case PROTOBUF_C_TYPE_STRING:
        return K_STRING;
    case PROTOBUF_C_TYPE_BYTES:
        return K_BYTES;
    case PROTOBUF_C_TYPE_MESSAGE:
        return K_MESSAGE;
    }
    return K_UNKNOWN;
}

/* Registers d and every message reachable from it; -1 when the tables are
 * too small (a schema change that needs a bigger MAX_MSGS or DENSE). */
static int add_msg(const ProtobufCMessageDescriptor *d)
{
    int idx = msg_index(d);
    if (idx >= 0)
        return idx;
    if (n_msgs == MAX_MSGS)
        return -1;
    idx = (int)n_msgs++;
    msgs[idx].desc = d;
    msgs[idx].check = d == &opentelemetry__proto__trace__v1__span__descriptor         ? CK_SPAN
                      : d == &opentelemetry__proto__logs__v1__log_record__descriptor ? CK_LOG
                      : d == &opentelemetry__proto__metrics__v1__number_data_point__descriptor
                          ? CK_NUMBER
                      : d == &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor
                          ? CK_EXPHIST
                          : CK_NONE;
    msgs[idx].cost = (uint32_t)(((d->sizeof_message + 15) & ~(size_t)15) + sizeof(void *));
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->id >= DENSE)
            return -1;
        wfield *w = &msgs[idx].f[fd->id];
        w->kind = kind_of(fd);
        w->name = fd->name;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            w->flags |= FL_ONEOF;
        else if (fd->type == PROTOBUF_C_TYPE_MESSAGE && fd->label != PROTOBUF_C_LABEL_REPEATED &&
                 has_oneof(fd->descriptor))
            w->flags |= FL_ONCE;
        for (size_t k = 0; k < sizeof item_fields / sizeof item_fields[0]; k++)
            if (item_fields[k].desc == d && item_fields[k].field == fd->id)
                w->flags |= FL_ITEM;
    }
    /* Sub-messages after the parent's own fields, so the recursion never
     * sees a half-filled table of its own. */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        int sub = add_msg(fd->descriptor);
        if (sub < 0)
            return -1;
        msgs[idx].f[fd->id].sub = (uint16_t)sub;
    }
    return idx;
}

static void init_tables(void)
{
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        roots[s] = add_msg(ot_signal_request_desc((ot_signal)s));
        if (roots[s] < 0)
            return;
    }
    init_ok = true;
}

/* ---- the walk ----------------------------------------------------------- */

typedef struct walker {
    const uint8_t *base;
    ot_err *err;
    ot_rejects *rej; /* NULL: items are not checked, nor costs summed */
    size_t decoded;  /* what unpacking allocates, so far */
    int why;         /* the rule the message just walked broke, or -1 */
} walker;

/* protobuf-c's unpack keeps a record of every field occurrence of the
 * message it is reading (32 bytes each), the first 16 on its stack, the
 * rest in slabs of doubling size from the same allocator (the arena, which
 * frees nothing); strings and bytes get their own allocation, a repeated
 * scalar a slot. */
#define COST_FIELD 32
#define COST_STACK_FIELDS 16
#define COST_STRING 16
#define COST_SCALAR 8

static int fail(walker *w, const uint8_t *at, const wmsg *m, uint32_t fn, const char *what)
{
    const char *mname = m->desc->short_name;
    const char *fname = fn < DENSE && m->f[fn].kind ? m->f[fn].name : NULL;
    if (fname)
        return ot_err_set(w->err, "offset %zu: %s.%s (field %u): %s", (size_t)(at - w->base), mname,
                          fname, fn, what);
    if (fn)
        return ot_err_set(w->err, "offset %zu: %s field %u: %s", (size_t)(at - w->base), mname, fn,
                          what);
    return ot_err_set(w->err, "offset %zu: %s: %s", (size_t)(at - w->base), mname, what);
}

/* Reads a varint of at most maxlen bytes; returns bytes used, 0 when it is
 * longer or runs past end. */
static inline size_t read_varint(const uint8_t *p, const uint8_t *end, size_t maxlen, uint64_t *v)
{
    if (p < end && !(*p & 0x80)) { /* one byte: most tags and lengths */
        *v = *p;
        return 1;
    }
    size_t avail = (size_t)(end - p);
    if (avail > maxlen)
        avail = maxlen;
    uint64_t r = 0;
    for (size_t i = 0; i < avail; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

/* UTF-8 as protobuf defines it for strings: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Eight ASCII bytes at a time: the common case for names and keys. */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (x & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

/* One field of a message the walk already accepted (so it cannot run
 * past end): number, wire type, value (varint or fixed bits) or content. */
static const uint8_t *next_field(const uint8_t *p, const uint8_t *end, uint32_t *fn, unsigned *wt,
                                 uint64_t *v, const uint8_t **val, size_t *vlen)
{
    uint64_t tag = 0, l = 0;
    p += read_varint(p, end, 5, &tag);
    *fn = (uint32_t)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    *vlen = 0;
    *v = 0;
    switch (*wt) {
    case 0:
        p += read_varint(p, end, 10, v);
        break;
    case 1:
        for (int i = 7; i >= 0; i--)
            *v = *v << 8 | p[i];
        p += 8;
        break;
    case 5:
        p += 4;
        break;
    default: /* 2 */
        p += read_varint(p, end, 5, &l);
        *val = p;
        *vlen = (size_t)l;
        p += l;
        break;
    }
    return p;
}

/* Adds the bucket counts of one Buckets message to *sum; -1 on overflow. */
static int add_buckets(const uint8_t *p, const uint8_t *end, uint64_t *sum)
{
    while (p < end) {
        uint32_t fn;
        unsigned wt;
        uint64_t v;
        const uint8_t *val = NULL;
        size_t vlen;
        p = next_field(p, end, &fn, &wt, &v, &val, &vlen);
        if (fn != 2)
            continue;
        if (wt == 0) {
            if (__builtin_add_overflow(*sum, v, sum))
                return -1;
        } else if (wt == 2) {
            for (const uint8_t *q = val, *qe = val + vlen; q < qe;) {
                q += read_varint(q, qe, 10, &v);
                if (__builtin_add_overflow(*sum, v, sum))
                    return -1;
            }
        }
    }
    return 0;
}

/* What the item rules need from one item's own fields, gathered while the
 * walk passes them: the last occurrence of a field wins and repeated
 * Buckets merge, as protobuf-c decodes them. */
typedef struct icheck {
    size_t id1, id2, id3;
    bool value, overflow;
    uint64_t count, zero, sum;
} icheck;

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void note(icheck *ic, int ck, uint32_t fn, unsigned wt, const uint8_t *val, size_t vlen)
{
    switch (ck) {
    case CK_SPAN:
        if (wt == 2) {
            if (fn == 1)
                ic->id1 = vlen;
            else if (fn == 2)
                ic->id2 = vlen;
            else if (fn == 4)
                ic->id3 = vlen;
        }
        break;
    case CK_LOG:
        if (wt == 2) {
            if (fn == 9)
                ic->id1 = vlen;
            else if (fn == 10)
                ic->id2 = vlen;
        }
        break;
    case CK_NUMBER:
        if ((fn == 4 || fn == 6) && wt == 1)
            ic->value = true;
        break;
    case CK_EXPHIST:
        if (fn == 4 && wt == 1)
            ic->count = le64(val);
        else if (fn == 7 && wt == 1)
            ic->zero = le64(val);
        else if ((fn == 8 || fn == 9) && wt == 2 && add_buckets(val, val + vlen, &ic->sum) < 0)
            ic->overflow = true;
        break;
    }
}

/* The rule of otlp_check.h the item broke, or -1. */
static int verdict(int ck, icheck *ic)
{
    switch (ck) {
    case CK_SPAN:
        if (ic->id1 != 16)
            return OT_REJ_TRACE_ID;
        if (ic->id2 != 8)
            return OT_REJ_SPAN_ID;
        if (ic->id3 != 0 && ic->id3 != 8)
            return OT_REJ_PARENT_SPAN_ID;
        return -1;
    case CK_LOG:
        if (ic->id1 != 0 && ic->id1 != 16)
            return OT_REJ_TRACE_ID;
        if (ic->id2 != 0 && ic->id2 != 8)
            return OT_REJ_SPAN_ID;
        return -1;
    case CK_NUMBER:
        return ic->value ? -1 : OT_REJ_NO_VALUE;
    case CK_EXPHIST:
        if (ic->overflow || __builtin_add_overflow(ic->sum, ic->zero, &ic->sum) ||
            ic->sum != ic->count)
            return OT_REJ_BUCKET_COUNTS;
        return -1;
    }
    return -1;
}

static int walk(walker *w, const wmsg *m, const uint8_t *p, const uint8_t *end, int depth,
                size_t *items)
{
    size_t n = 0, oneof_n = 0, nf = 0, cost = 0;
    uint32_t seen_once = 0;
    int ck = w->rej ? m->check : CK_NONE;
    icheck ic;
    if (ck)
        memset(&ic, 0, sizeof ic);
    while (p < end) {
        const uint8_t *field_at = p;
        uint64_t tag;
        size_t used = read_varint(p, end, 5, &tag);
        if (!used)
            return fail(w, p, m, 0, "truncated or overlong field tag");
        p += used;
        uint64_t fn64 = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (fn64 == 0 || fn64 > 0x1fffffff)
            return fail(w, field_at, m, 0, "invalid field number");
        uint32_t fn = (uint32_t)fn64;
        const wfield *f = fn < DENSE ? &m->f[fn] : NULL;
        unsigned kind = f ? f->kind : K_UNKNOWN;

        const uint8_t *val = p;
        size_t vlen = 0;
        switch (wt) {
        case 0: {
            uint64_t v;
            used = read_varint(p, end, 10, &v);
            if (!used)
                return fail(w, field_at, m, fn, "truncated or overlong varint");
            p += used;
            break;
        }
        case 1:
            if (end - p < 8)
                return fail(w, field_at, m, fn, "truncated 64-bit value");
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return fail(w, field_at, m, fn, "truncated 32-bit value");
            p += 4;
            break;
        case 2: {
            uint64_t l;
            /* protobuf-c reads at most 5 length bytes. */
            used = read_varint(p, end, 5, &l);
            if (!used)
                return fail(w, field_at, m, fn, "truncated or overlong length");
            p += used;
            if (l > (uint64_t)(end - p))
                return fail(w, field_at, m, fn, "length runs past the end of the message");
            val = p;
            vlen = (size_t)l;
            p += vlen;
            break;
        }
        case 3:
        case 4:
            return fail(w, field_at, m, fn, "groups are not supported");
        default:
            return fail(w, field_at, m, fn, "invalid wire type");
        }

        nf++;
        if (ck)
            note(&ic, ck, fn, wt, val, vlen);
        switch (kind) {
        case K_UNKNOWN:
            break; /* skipped: forward compatibility */
        case K_VARINT:
            if (wt != 0)
                return fail(w, field_at, m, fn, "wire type must be varint");
            break;
        case K_I64:
            if (wt != 1)
                return fail(w, field_at, m, fn, "wire type must be 64-bit");
            break;
        case K_I32:
            if (wt != 5)
                return fail(w, field_at, m, fn, "wire type must be 32-bit");
            break;
        case K_STRING:
            if (wt != 2)
                return fail(w, field_at, m, fn, "wire type must be length-delimited");
            if (!utf8_ok(val, vlen))
                return fail(w, field_at, m, fn, "invalid UTF-8 in string");
            cost += vlen + COST_STRING;
            break;
        case K_BYTES:
            if (wt != 2)
                return fail(w, field_at, m, fn, "wire type must be length-delimited");
            cost += vlen + COST_STRING;
            break;
        case K_MESSAGE: {
            if (wt != 2)
                return fail(w, field_at, m, fn, "wire type must be length-delimited");
            if (depth >= OT_PBWALK_MAX_DEPTH)
                return fail(w, field_at, m, fn, "messages nested too deeply");
            if (f->flags & FL_ONCE) {
                if (seen_once & (1u << fn))
                    return fail(w, field_at, m, fn, "singular field sent more than once");
                seen_once |= 1u << fn;
            }
            size_t sub_items = 0;
            if (walk(w, &msgs[f->sub], val, val + vlen, depth + 1, &sub_items) < 0)
                return -1;
            cost += msgs[f->sub].cost;
            if (w->why >= 0 && (f->flags & FL_ITEM))
                ot_rejects_add(w->rej, (ot_reject_reason)w->why);
            if (f->flags & FL_ONEOF)
                oneof_n = sub_items;
            else
                n += sub_items;
            if (f->flags & FL_ITEM)
                n++;
            break;
        }
        case K_REP_VARINT:
            if (wt == 2) {
                const uint8_t *q = val, *qe = val + vlen;
                while (q < qe) {
                    uint64_t v;
                    size_t u = read_varint(q, qe, 10, &v);
                    if (!u)
                        return fail(w, q, m, fn, "bad varint in packed field");
                    q += u;
                }
            } else if (wt != 0) {
                return fail(w, field_at, m, fn, "wire type must be varint or packed");
            }
            cost += wt == 2 ? vlen * COST_SCALAR : COST_SCALAR;
            break;
        case K_REP_I64:
            if (wt == 2 ? vlen % 8 != 0 : wt != 1)
                return fail(w, field_at, m, fn,
                            wt == 2 ? "packed length is not a multiple of 8"
                                    : "wire type must be 64-bit or packed");
            cost += wt == 2 ? vlen * COST_SCALAR : COST_SCALAR;
            break;
        case K_REP_I32:
            if (wt == 2 ? vlen % 4 != 0 : wt != 5)
                return fail(w, field_at, m, fn,
                            wt == 2 ? "packed length is not a multiple of 4"
                                    : "wire type must be 32-bit or packed");
            cost += wt == 2 ? vlen * COST_SCALAR : COST_SCALAR;
            break;
        }
    }
    if (nf > COST_STACK_FIELDS)
        cost += 2 * (nf - COST_STACK_FIELDS) * COST_FIELD;
    w->decoded += cost;
    w->why = ck ? verdict(ck, &ic) : -1;
    *items = n + oneof_n;
    return 0;
}

static int run(ot_signal s, const void *buf, size_t len, size_t *items, walker *w)
{
    ot_err *err = w->err;
    pthread_once(&init_once, init_tables);
    if (!init_ok)
        return ot_err_set(err, "pbwalk: schema does not fit the walker's tables");
    if ((unsigned)s >= OT_SIGNAL_COUNT)
        return ot_err_set(err, "pbwalk: unknown signal %d", (int)s);
    const uint8_t *p = buf;
    if (!p && len)
        return ot_err_set(err, "pbwalk: no buffer");
    w->base = p;
    size_t n = 0;
    if (len && walk(w, &msgs[roots[s]], p, p + len, 1, &n) < 0)
        return -1;
    if (items)
        *items = n;
    return 0;
}

int ot_pbwalk(ot_signal s, const void *buf, size_t len, size_t *items, ot_err *err)
{
    walker w = {NULL, err, NULL, 0, -1};
    return run(s, buf, len, items, &w);
}

int ot_pbwalk_check(ot_signal s, const void *buf, size_t len, ot_pbwalk_info *info, ot_err *err)
{
    ot_rejects none = OT_REJECTS_INIT;
    info->rej = none;
    walker w = {NULL, err, &info->rej, 0, -1};
    int rc = run(s, buf, len, &info->items, &w);
    /* the request message itself, and the arena's first chunk */
    info->decoded = w.decoded + 4096;
    return rc;
}
