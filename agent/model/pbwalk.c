/* pbwalk.c: the protobuf wire walker behind the receivers' fast path (see
 * pbwalk.h).
 *
 * The schema comes from the protobuf-c descriptors generated from
 * agent/proto, turned once into dense per-message tables indexed by field
 * number, so the walker and the decoder can never disagree about the
 * schema. Each message also gets a table indexed by the first byte of a
 * field's tag (every OTLP field number below 16 fits one byte), which says
 * in one load both how to read the value and what to check, so the hot
 * loop dispatches once per field; the walk is a loop over an explicit stack
 * of messages, not a recursion, and what the item rules need is gathered by
 * the same dispatch (see act_of). */
#include "model/pbwalk.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "base/utf8.h"

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
 * are held to. CK_BUCKETS is no item: the buckets of an exponential
 * histogram point, whose counts go to the point's sum. */
enum { CK_NONE = 0, CK_SPAN, CK_LOG, CK_NUMBER, CK_EXPHIST, CK_BUCKETS };

/* What the walk does with a field, by its tag: read a value of the wire
 * type and, for some, note what an item rule needs. From A_LEN on the value
 * is length-delimited. */
enum {
    A_ERR = 0,  /* field number 0, groups, bad wire type, wrong type for the field */
    A_VARINT,   /* unknown or singular varint */
    A_RVARINT,  /* one element of a repeated varint */
    A_BUCKET,   /* one bucket count (CK_BUCKETS) */
    A_I64,      /* unknown or singular 64-bit */
    A_RI64,     /* one element of a repeated 64-bit scalar */
    A_VALUE,    /* number point: as_double or as_int */
    A_COUNT,    /* exponential histogram point: count */
    A_ZERO,     /* exponential histogram point: zero_count */
    A_I32,
    A_RI32,
    A_LEN,      /* unknown length-delimited: skipped */
    A_STRING,
    A_BYTES,
    A_ID1,      /* trace_id of a span or log record */
    A_ID2,      /* span_id */
    A_ID3,      /* parent_span_id of a span */
    A_MSG,
    A_PVARINT,  /* packed repeated varints */
    A_PBUCKETS, /* packed bucket counts (CK_BUCKETS) */
    A_PI64,
    A_PI32,
};

typedef struct wmsg {
    const ProtobufCMessageDescriptor *desc;
    wfield f[DENSE];
    uint8_t act[128]; /* by one-byte tag (field number < 16) */
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

/* The action for field fn sent with wire type wt in message m; fields the
 * item rules read get their own action (only in the checked messages, so
 * no other message pays for them). */
static uint8_t act_of(const wmsg *m, uint32_t fn, unsigned wt)
{
    if (fn == 0 || wt == 3 || wt == 4 || wt > 5)
        return A_ERR;
    unsigned kind = fn < DENSE ? m->f[fn].kind : K_UNKNOWN;
    int ck = m->check;
    switch (kind) {
    case K_UNKNOWN:
        return wt == 0 ? A_VARINT : wt == 1 ? A_I64 : wt == 5 ? A_I32 : A_LEN;
    case K_VARINT:
        return wt == 0 ? A_VARINT : A_ERR;
    case K_I64:
        if (wt != 1)
            return A_ERR;
        if (ck == CK_NUMBER && (fn == 4 || fn == 6))
            return A_VALUE;
        if (ck == CK_EXPHIST && fn == 4)
            return A_COUNT;
        if (ck == CK_EXPHIST && fn == 7)
            return A_ZERO;
        return A_I64;
    case K_I32:
        return wt == 5 ? A_I32 : A_ERR;
    case K_STRING:
        return wt == 2 ? A_STRING : A_ERR;
    case K_BYTES:
        if (wt != 2)
            return A_ERR;
        if ((ck == CK_SPAN && fn == 1) || (ck == CK_LOG && fn == 9))
            return A_ID1;
        if ((ck == CK_SPAN && fn == 2) || (ck == CK_LOG && fn == 10))
            return A_ID2;
        if (ck == CK_SPAN && fn == 4)
            return A_ID3;
        return A_BYTES;
    case K_MESSAGE:
        return wt == 2 ? A_MSG : A_ERR;
    case K_REP_VARINT:
        if (ck == CK_BUCKETS && fn == 2)
            return wt == 0 ? A_BUCKET : wt == 2 ? A_PBUCKETS : A_ERR;
        return wt == 0 ? A_RVARINT : wt == 2 ? A_PVARINT : A_ERR;
    case K_REP_I64:
        return wt == 1 ? A_RI64 : wt == 2 ? A_PI64 : A_ERR;
    case K_REP_I32:
        return wt == 5 ? A_RI32 : wt == 2 ? A_PI32 : A_ERR;
    }
    return A_ERR;
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
                      : d == &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor
                          ? CK_BUCKETS
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
    for (unsigned tag = 0; tag < 128; tag++)
        msgs[idx].act[tag] = act_of(&msgs[idx], tag >> 3, tag & 7);
    return idx;
}

/* The item rules keep what they gather in one place per walk, which is
 * right only while no checked message can hold another item: true of OTLP,
 * checked here so a schema change cannot make it silently wrong. */
static bool holds_item(const wmsg *m, int depth)
{
    if (depth > 8)
        return false;
    for (int fn = 0; fn < DENSE; fn++) {
        if (m->f[fn].kind != K_MESSAGE)
            continue;
        const wmsg *s = &msgs[m->f[fn].sub];
        if ((s->check && s->check != CK_BUCKETS) || holds_item(s, depth + 1))
            return true;
    }
    return false;
}

static void init_tables(void)
{
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        roots[s] = add_msg(ot_signal_request_desc((ot_signal)s));
        if (roots[s] < 0)
            return;
    }
    for (size_t i = 0; i < n_msgs; i++)
        if (msgs[i].check && msgs[i].check != CK_BUCKETS && holds_item(&msgs[i], 0))
            return;
    init_ok = true;
}

/* ---- the walk ----------------------------------------------------------- */

typedef struct walker {
    const uint8_t *base;
    ot_err *err;
    ot_rejects *rej; /* NULL: items are not checked */
    size_t decoded;  /* what unpacking allocates */
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

static bool utf8_slow(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = ot_utf8_seq(p + i, p + n);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* UTF-8 as protobuf defines it for strings (see base/utf8.h). Names, keys
 * and most values are ASCII: one OR of the whole string, in words that may
 * overlap at the end, says so without a branch per byte. */
static inline bool utf8_ok(const uint8_t *p, size_t n)
{
    uint64_t acc = 0, x;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, p + i, 8);
            acc |= x;
        }
        memcpy(&x, p + n - 8, 8);
        acc |= x;
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        acc = a | b;
    } else if (n) {
        acc = (uint64_t)(p[0] | p[n / 2] | p[n - 1]);
    }
    return !(acc & 0x8080808080808080ull) || utf8_slow(p, n);
}

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* What the item rules need from the item being walked, gathered as the
 * walk passes its fields: the last occurrence of a field wins and repeated
 * Buckets merge, as protobuf-c decodes them. */
typedef struct icheck {
    size_t id1, id2, id3;
    bool value, overflow;
    uint64_t count, zero, sum;
} icheck;

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

/* The error of a field whose action is A_ERR, as one field at a time would
 * find it: a value that does not fit comes before a type that does not. p
 * is past the tag. */
static int field_error(walker *w, const uint8_t *at, const wmsg *m, uint32_t fn, unsigned wt,
                       const uint8_t *p, const uint8_t *end)
{
    uint64_t v;
    if (fn == 0)
        return fail(w, at, m, 0, "invalid field number");
    switch (wt) {
    case 0:
        if (!read_varint(p, end, 10, &v))
            return fail(w, at, m, fn, "truncated or overlong varint");
        break;
    case 1:
        if (end - p < 8)
            return fail(w, at, m, fn, "truncated 64-bit value");
        break;
    case 5:
        if (end - p < 4)
            return fail(w, at, m, fn, "truncated 32-bit value");
        break;
    case 2: {
        size_t used = read_varint(p, end, 5, &v);
        if (!used)
            return fail(w, at, m, fn, "truncated or overlong length");
        if (v > (uint64_t)(end - p - used))
            return fail(w, at, m, fn, "length runs past the end of the message");
        break;
    }
    case 3:
    case 4:
        return fail(w, at, m, fn, "groups are not supported");
    default:
        return fail(w, at, m, fn, "invalid wire type");
    }
    switch (fn < DENSE ? m->f[fn].kind : K_UNKNOWN) {
    case K_VARINT:
        return fail(w, at, m, fn, "wire type must be varint");
    case K_I64:
        return fail(w, at, m, fn, "wire type must be 64-bit");
    case K_I32:
        return fail(w, at, m, fn, "wire type must be 32-bit");
    case K_STRING:
    case K_BYTES:
    case K_MESSAGE:
        return fail(w, at, m, fn, "wire type must be length-delimited");
    case K_REP_VARINT:
        return fail(w, at, m, fn, "wire type must be varint or packed");
    case K_REP_I64:
        return fail(w, at, m, fn,
                    wt == 2 ? "packed length is not a multiple of 8" : "wire type must be 64-bit or packed");
    case K_REP_I32:
        return fail(w, at, m, fn,
                    wt == 2 ? "packed length is not a multiple of 4" : "wire type must be 32-bit or packed");
    }
    return fail(w, at, m, fn, "invalid wire type");
}

/* One message being walked; the one on top is the innermost. */
typedef struct frame {
    const wmsg *m;
    const uint8_t *end;
    size_t n, oneof_n;   /* items below it, in fields that add up / in its oneof */
    uint32_t nf;         /* fields seen, saved while a sub-message is walked */
    uint32_t seen_once;  /* FL_ONCE fields seen */
    uint8_t flags;       /* of the field that holds it in its parent */
} frame;

static int walk(walker *w, const wmsg *root, const uint8_t *p, const uint8_t *end, size_t *items)
{
    frame st[OT_PBWALK_MAX_DEPTH];
    frame *top = st;
    const wmsg *m = root;
    uint32_t nf = 0;
    size_t cost = 0;
    icheck ic;
    memset(&ic, 0, sizeof ic);
    *top = (frame){root, end, 0, 0, 0, 0, 0};
    for (;;) {
        if (p >= end) {
            /* the end of a message: hand what it holds to its parent */
            if (nf > COST_STACK_FIELDS)
                cost += 2 * (nf - COST_STACK_FIELDS) * COST_FIELD;
            size_t sub = top->n + top->oneof_n;
            if (top == st) {
                *items = sub;
                break;
            }
            unsigned fl = top->flags;
            if ((fl & FL_ITEM) && m->check && w->rej) {
                int why = verdict(m->check, &ic);
                if (why >= 0)
                    ot_rejects_add(w->rej, (ot_reject_reason)why);
            }
            top--;
            m = top->m;
            end = top->end;
            nf = top->nf;
            if (fl & FL_ONEOF)
                top->oneof_n = sub;
            else
                top->n += sub;
            if (fl & FL_ITEM)
                top->n++;
            continue;
        }

        const uint8_t *field_at = p;
        uint32_t fn;
        unsigned act;
        if (!(*p & 0x80)) {
            fn = *p >> 3;
            act = m->act[*p++];
        } else {
            uint64_t tag;
            size_t used = read_varint(p, end, 5, &tag);
            if (!used)
                return fail(w, p, m, 0, "truncated or overlong field tag");
            p += used;
            if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
                return fail(w, field_at, m, 0, "invalid field number");
            fn = (uint32_t)(tag >> 3);
            act = act_of(m, fn, (unsigned)(tag & 7));
        }
        nf++;

        if (act < A_LEN) {
            uint64_t v;
            switch (act) {
            case A_ERR:
                return field_error(w, field_at, m, fn, (unsigned)(*field_at & 7), p, end);
            case A_VARINT:
            case A_RVARINT:
            case A_BUCKET:
                if (p < end && !(*p & 0x80)) {
                    v = *p++;
                } else {
                    size_t used = read_varint(p, end, 10, &v);
                    if (!used)
                        return fail(w, field_at, m, fn, "truncated or overlong varint");
                    p += used;
                }
                if (act == A_RVARINT) {
                    cost += COST_SCALAR;
                } else if (act == A_BUCKET) {
                    cost += COST_SCALAR;
                    if (__builtin_add_overflow(ic.sum, v, &ic.sum))
                        ic.overflow = true;
                }
                break;
            case A_I32:
            case A_RI32:
                if (end - p < 4)
                    return fail(w, field_at, m, fn, "truncated 32-bit value");
                p += 4;
                if (act == A_RI32)
                    cost += COST_SCALAR;
                break;
            default: /* 64-bit */
                if (end - p < 8)
                    return fail(w, field_at, m, fn, "truncated 64-bit value");
                if (act == A_RI64)
                    cost += COST_SCALAR;
                else if (act == A_VALUE)
                    ic.value = true;
                else if (act == A_COUNT)
                    ic.count = le64(p);
                else if (act == A_ZERO)
                    ic.zero = le64(p);
                p += 8;
                break;
            }
            continue;
        }

        /* length-delimited */
        uint64_t l;
        if (p < end && !(*p & 0x80)) {
            l = *p++;
        } else {
            /* protobuf-c reads at most 5 length bytes. */
            size_t used = read_varint(p, end, 5, &l);
            if (!used)
                return fail(w, field_at, m, fn, "truncated or overlong length");
            p += used;
        }
        if (l > (uint64_t)(end - p))
            return fail(w, field_at, m, fn, "length runs past the end of the message");
        const uint8_t *val = p;
        size_t vlen = (size_t)l;
        p += vlen;
        switch (act) {
        case A_LEN:
            break; /* skipped: forward compatibility */
        case A_STRING:
            if (!utf8_ok(val, vlen))
                return fail(w, field_at, m, fn, "invalid UTF-8 in string");
            cost += vlen + COST_STRING;
            break;
        case A_BYTES:
            cost += vlen + COST_STRING;
            break;
        case A_ID1:
            ic.id1 = vlen;
            cost += vlen + COST_STRING;
            break;
        case A_ID2:
            ic.id2 = vlen;
            cost += vlen + COST_STRING;
            break;
        case A_ID3:
            ic.id3 = vlen;
            cost += vlen + COST_STRING;
            break;
        case A_MSG: {
            const wfield *f = &m->f[fn];
            if (top - st + 1 >= OT_PBWALK_MAX_DEPTH)
                return fail(w, field_at, m, fn, "messages nested too deeply");
            if (f->flags & FL_ONCE) {
                if (top->seen_once & (1u << fn))
                    return fail(w, field_at, m, fn, "singular field sent more than once");
                top->seen_once |= 1u << fn;
            }
            m = &msgs[f->sub];
            cost += m->cost;
            top->nf = nf;
            top++;
            *top = (frame){m, p, 0, 0, 0, 0, f->flags};
            end = p;
            p = val;
            nf = 0;
            if (m->check && m->check != CK_BUCKETS)
                memset(&ic, 0, sizeof ic);
            break;
        }
        case A_PVARINT:
        case A_PBUCKETS:
            for (const uint8_t *q = val; q < p;) {
                uint64_t v;
                size_t u = read_varint(q, p, 10, &v);
                if (!u)
                    return fail(w, q, m, fn, "bad varint in packed field");
                q += u;
                if (act == A_PBUCKETS && __builtin_add_overflow(ic.sum, v, &ic.sum))
                    ic.overflow = true;
            }
            cost += vlen * COST_SCALAR;
            break;
        case A_PI64:
            if (vlen % 8 != 0)
                return fail(w, field_at, m, fn, "packed length is not a multiple of 8");
            cost += vlen * COST_SCALAR;
            break;
        case A_PI32:
            if (vlen % 4 != 0)
                return fail(w, field_at, m, fn, "packed length is not a multiple of 4");
            cost += vlen * COST_SCALAR;
            break;
        }
    }
    w->decoded += cost;
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
    if (len && walk(w, &msgs[roots[s]], p, p + len, &n) < 0)
        return -1;
    if (items)
        *items = n;
    return 0;
}

int ot_pbwalk(ot_signal s, const void *buf, size_t len, size_t *items, ot_err *err)
{
    walker w = {NULL, err, NULL, 0};
    return run(s, buf, len, items, &w);
}

int ot_pbwalk_check(ot_signal s, const void *buf, size_t len, ot_pbwalk_info *info, ot_err *err)
{
    ot_rejects none = OT_REJECTS_INIT;
    info->rej = none;
    walker w = {NULL, err, &info->rej, 0};
    int rc = run(s, buf, len, &info->items, &w);
    /* the request message itself, and the arena's first chunk */
    info->decoded = w.decoded + 4096;
    return rc;
}
