/* wire.c: OTLP spans to Jaeger api_v2 structs straight from the request's
 * protobuf bytes. The batches the exporter queues are still in wire form
 * (split.c), and unpacking them with protobuf-c only to read each field
 * once was a fifth of the agent's CPU on the jaeger path: it builds an
 * OTLP struct per span, attribute and value, most of which translate.c
 * then copies again. This walk reads each field where it lies and fills
 * the same api_v2 structs translate.c fills, with the same helpers
 * (translate_int.h), so both encoders are unchanged.
 *
 * translate.c stays the reference: whatever this walk is not sure to read
 * exactly as protobuf-c would (a singular message sent twice, which
 * protobuf-c merges; two members of a value's oneof; a wire type the
 * schema does not have; bytes that do not parse) is left to it, and a unit
 * test compares the two paths' encoded output byte for byte.
 *
 * Ids, trace ids and binary values point into the request's bytes, which
 * must outlive the structs (the batch does, for the whole send); strings
 * are copied into the arena, as the encoders want them NUL-terminated. */
#include "translate_int.h"

#include <string.h>

#define AVV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define CODE(x) OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_##x

typedef Jaeger__ApiV2__Process jg_process;
typedef Jaeger__ApiV2__SpanRef jg_ref;
typedef Jaeger__ApiV2__Log jg_log;
typedef Jaeger__ApiV2__Duration jg_dur;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* A byte range of the request. */
typedef struct sl {
    const uint8_t *p;
    size_t n;
} sl;

/* One field: its number, wire type and value (v for numbers, b for
 * length-delimited payloads). */
typedef struct fld {
    uint64_t num;
    int wt;
    uint64_t v;
    sl b;
} fld;

/* The walk reads every field of every span twice, so the readers are
 * inline with a fast path for the one-byte varints most keys and lengths
 * are (the generic loop, called per field, was a sixth of the CPU). */
static inline __attribute__((always_inline)) int rd_varint(const uint8_t **p, const uint8_t *end,
                                                           uint64_t *v)
{
    if (*p < end && **p < 0x80) {
        *v = *(*p)++;
        return 0;
    }
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        r |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* The next field of [*p, end): 1 with f filled, 0 at the end, -1 when the
 * bytes do not parse. */
static inline __attribute__((always_inline)) int next(const uint8_t **p, const uint8_t *end,
                                                      fld *f)
{
    /* Set on every path, so that no reader sees stale or unset values. */
    f->v = 0;
    f->b = (sl){NULL, 0};
    if (*p >= end)
        return 0;
    uint64_t key;
    if (rd_varint(p, end, &key) < 0)
        return -1;
    f->num = key >> 3;
    f->wt = (int)(key & 7);
    switch (f->wt) {
    case WT_VARINT: return rd_varint(p, end, &f->v) < 0 ? -1 : 1;
    case WT_I64:
        if (end - *p < 8)
            return -1;
        memcpy(&f->v, *p, 8);
        if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
            f->v = __builtin_bswap64(f->v);
        *p += 8;
        return 1;
    case WT_I32: {
        if (end - *p < 4)
            return -1;
        uint32_t v32;
        memcpy(&v32, *p, 4);
        if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
            v32 = __builtin_bswap32(v32);
        f->v = v32;
        *p += 4;
        return 1;
    }
    case WT_LEN: {
        uint64_t l;
        if (rd_varint(p, end, &l) < 0 || l > (uint64_t)(end - *p))
            return -1;
        f->b = (sl){*p, (size_t)l};
        *p += l;
        return 1;
    }
    default: return -1;
    }
}

/* Iterates the fields of a message: FOR_FIELDS(c, msg, f) { ... }. Bytes
 * that do not parse send the request to the reference path. */
typedef struct it {
    const uint8_t *p, *end;
} it;

static inline __attribute__((always_inline)) int it_next(jg_ctx *c, it *i, fld *f)
{
    int r = next(&i->p, i->end, f);
    if (r < 0)
        c->fallback = 1;
    return r > 0 && !c->fallback && !c->oom;
}

#define FOR_FIELDS(c, m, f) for (it it_##f = {(m).p, (m).p + (m).n}; it_next((c), &it_##f, &(f));)

/* A field whose wire type is not the schema's: protobuf-c refuses it, so
 * the reference path reports it. */
static inline int want(jg_ctx *c, const fld *f, int wt)
{
    if (f->wt == wt)
        return 1;
    c->fallback = 1;
    return 0;
}

/* A singular message field seen again: protobuf-c merges the two, which
 * this walk does not do. */
static void set_once(jg_ctx *c, sl *dst, int *seen, const fld *f)
{
    if (*seen || !want(c, f, WT_LEN)) {
        c->fallback = 1;
        return;
    }
    *seen = 1;
    *dst = f->b;
}

/* protobuf-c's strings are C strings: code comparing them stops at the
 * first NUL, and so do these. */
static int c_eq(sl s, const char *lit)
{
    size_t l = strlen(lit);
    return s.n >= l && memcmp(s.p, lit, l) == 0 && (s.n == l || s.p[l] == 0);
}

static int c_nonempty(sl s) { return s.n > 0 && s.p[0] != 0; }

static char *str_of(jg_ctx *c, sl s)
{
    if (!s.n)
        return (char *)protobuf_c_empty_string;
    char *r = ot_arena_strndup(c->a, (const char *)s.p, s.n);
    if (!r) {
        c->oom = 1;
        return (char *)protobuf_c_empty_string;
    }
    return r;
}

static ProtobufCBinaryData bin(sl s) { return (ProtobufCBinaryData){s.n, (uint8_t *)s.p}; }

/* ---- attributes --------------------------------------------------------- */

/* A KeyValue's key and value bytes (last key wins, as in protobuf-c). */
static void kv_parts(jg_ctx *c, sl kvb, sl *key, sl *val, int *has_val)
{
    fld f;
    *key = (sl){NULL, 0};
    *has_val = 0;
    FOR_FIELDS(c, kvb, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            *key = f.b;
        else if (f.num == 2)
            set_once(c, val, has_val, &f);
    }
}

/* The one member of an AnyValue's oneof that is set (0: none), its field
 * and bytes. Two members, or one sent twice, go to the reference path. */
static int av_member(jg_ctx *c, sl val, fld *out)
{
    fld f;
    int which = 0;
    FOR_FIELDS(c, val, f)
    {
        if (f.num < 1 || f.num > 7)
            continue;
        static const int wt_of[8] = {0, WT_LEN, WT_VARINT, WT_VARINT, WT_I64, WT_LEN, WT_LEN, WT_LEN};
        if (which || !want(c, &f, wt_of[f.num])) {
            c->fallback = 1;
            return 0;
        }
        which = (int)f.num;
        *out = f;
    }
    return which;
}

/* Whether a KeyValue's value is a string, and that string. */
static int kv_string(jg_ctx *c, sl val, int has_val, sl *s)
{
    fld f;
    if (has_val && av_member(c, val, &f) == AVV(STRING_VALUE)) {
        *s = f.b;
        return 1;
    }
    return 0;
}

/* One OTLP attribute as a tag of the same type where Jaeger has one (as
 * translate.c's tag_attr does). */
static void tag_wire(jg_ctx *c, jg_tags *t, sl kvb)
{
    sl key, val = {NULL, 0};
    int has_val;
    kv_parts(c, kvb, &key, &val, &has_val);
    ot_jaeger_kv *kv = ot_jg_tag_add(t, str_of(c, key));
    kv->v_type = JAEGER__API_V2__VALUE_TYPE__STRING;
    if (!has_val || c->fallback)
        return;
    fld f;
    switch (av_member(c, val, &f)) {
    case AVV(STRING_VALUE): kv->v_str = str_of(c, f.b); break;
    case AVV(BOOL_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__BOOL;
        kv->v_bool = f.v != 0;
        break;
    case AVV(INT_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__INT64;
        kv->v_int64 = (int64_t)f.v;
        break;
    case AVV(DOUBLE_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__FLOAT64;
        memcpy(&kv->v_float64, &f.v, sizeof kv->v_float64);
        break;
    case AVV(BYTES_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__BINARY;
        kv->v_binary = bin(f.b);
        break;
    case AVV(ARRAY_VALUE):
    case AVV(KVLIST_VALUE): {
        /* Rare, nested and written as JSON: protobuf-c unpacks just this
         * value and translate.c's writer turns it into text. */
        ot_anyvalue *av = opentelemetry__proto__common__v1__any_value__unpack(NULL, val.n, val.p);
        if (!av) {
            c->fallback = 1;
            return;
        }
        ot_buf_reset(&c->json);
        ot_jg_json_value(&c->json, av, 0);
        opentelemetry__proto__common__v1__any_value__free_unpacked(av, NULL);
        if (c->json.oom) {
            c->oom = 1;
            return;
        }
        char *s = ot_arena_strndup(c->a, c->json.data, c->json.len);
        if (!s)
            c->oom = 1;
        else
            kv->v_str = s;
        break;
    }
    default: break;
    }
}

/* ---- one span ----------------------------------------------------------- */

typedef struct spanv {
    sl trace_id, span_id, trace_state, parent, name, status;
    int has_status;
    int32_t kind;
    uint64_t start, end;
    uint32_t d_attrs, d_events, d_links, flags;
    size_t n_attrs, n_events, n_links;
} spanv;

/* The first pass over a span: its scalars, and how many of each list. */
static void span_scan(jg_ctx *c, sl span, spanv *v)
{
    fld f;
    memset(v, 0, sizeof *v);
    FOR_FIELDS(c, span, f)
    {
        switch (f.num) {
        case 1: if (want(c, &f, WT_LEN)) v->trace_id = f.b; break;
        case 2: if (want(c, &f, WT_LEN)) v->span_id = f.b; break;
        case 3: if (want(c, &f, WT_LEN)) v->trace_state = f.b; break;
        case 4: if (want(c, &f, WT_LEN)) v->parent = f.b; break;
        case 5: if (want(c, &f, WT_LEN)) v->name = f.b; break;
        case 6: if (want(c, &f, WT_VARINT)) v->kind = (int32_t)(uint32_t)f.v; break;
        case 7: if (want(c, &f, WT_I64)) v->start = f.v; break;
        case 8: if (want(c, &f, WT_I64)) v->end = f.v; break;
        case 9: if (want(c, &f, WT_LEN)) v->n_attrs++; break;
        case 10: if (want(c, &f, WT_VARINT)) v->d_attrs = (uint32_t)f.v; break;
        case 11: if (want(c, &f, WT_LEN)) v->n_events++; break;
        case 12: if (want(c, &f, WT_VARINT)) v->d_events = (uint32_t)f.v; break;
        case 13: if (want(c, &f, WT_LEN)) v->n_links++; break;
        case 14: if (want(c, &f, WT_VARINT)) v->d_links = (uint32_t)f.v; break;
        case 15: set_once(c, &v->status, &v->has_status, &f); break;
        case 16: if (want(c, &f, WT_I32)) v->flags = (uint32_t)f.v; break;
        default: break;
        }
    }
}

/* A link as a reference (translate.c's span_refs, one link). Returns 0
 * when it only repeats the parent reference. */
static int link_ref(jg_ctx *c, sl link, const ot_jaeger_span *js, const jg_ref *parent, jg_ref *r)
{
    fld f;
    sl tid = {NULL, 0}, sid = {NULL, 0};
    int child_of = 0, seen_rt = 0;
    FOR_FIELDS(c, link, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            tid = f.b;
        else if (f.num == 2 && want(c, &f, WT_LEN))
            sid = f.b;
        else if (f.num == 4 && want(c, &f, WT_LEN) && !seen_rt) {
            sl key, val = {NULL, 0}, s;
            int has_val;
            kv_parts(c, f.b, &key, &val, &has_val);
            if (c_eq(key, "opentracing.ref_type")) {
                seen_rt = 1; /* the first such attribute decides */
                child_of = kv_string(c, val, has_val, &s) && c_eq(s, "child_of");
            }
        }
    }
    *r = (jg_ref)JAEGER__API_V2__SPAN_REF__INIT;
    ProtobufCBinaryData t = bin(tid), s = bin(sid);
    r->trace_id = ot_jg_id(c, &t, 16);
    r->span_id = ot_jg_id(c, &s, 8);
    int same_trace = ot_jg_same_bytes(&r->trace_id, &js->trace_id);
    r->ref_type = child_of && same_trace ? JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF
                                         : JAEGER__API_V2__SPAN_REF_TYPE__FOLLOWS_FROM;
    return !(parent && r->ref_type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF && same_trace &&
             ot_jg_same_bytes(&r->span_id, &parent->span_id));
}

/* An event as a log: `event` carries its name unless an attribute has
 * that key, then its attributes. */
static void event_log(jg_ctx *c, sl ev, jg_log *l)
{
    fld f;
    uint64_t time = 0;
    sl name = {NULL, 0};
    size_t n_attrs = 0;
    int has_event_key = 0;
    FOR_FIELDS(c, ev, f)
    {
        if (f.num == 1 && want(c, &f, WT_I64))
            time = f.v;
        else if (f.num == 2 && want(c, &f, WT_LEN))
            name = f.b;
        else if (f.num == 3 && want(c, &f, WT_LEN)) {
            n_attrs++;
            sl key, val;
            int has_val;
            kv_parts(c, f.b, &key, &val, &has_val);
            has_event_key |= c_eq(key, "event");
        } else if (f.num == 4)
            want(c, &f, WT_VARINT);
    }
    *l = (jg_log)JAEGER__API_V2__LOG__INIT;
    l->timestamp = ot_jg_time(c, time);
    int named = c_nonempty(name) && !has_event_key;
    jg_tags t;
    if (ot_jg_tags_init(c, &t, (size_t)named + n_attrs) < 0)
        return;
    if (named)
        ot_jg_tag_str(&t, "event", str_of(c, name));
    FOR_FIELDS(c, ev, f)
        if (f.num == 3)
            tag_wire(c, &t, f.b);
    l->fields = t.v;
    l->n_fields = t.n;
}

static void span_wire(jg_ctx *c, sl span, const char *sname, const char *sver, ot_jaeger_span *js)
{
    spanv v;
    span_scan(c, span, &v);
    if (c->fallback)
        return;
    *js = (ot_jaeger_span)JAEGER__API_V2__SPAN__INIT;
    ProtobufCBinaryData tid = bin(v.trace_id), sid = bin(v.span_id), pid = bin(v.parent);
    js->trace_id = ot_jg_id(c, &tid, 16);
    js->span_id = ot_jg_id(c, &sid, 8);
    js->operation_name = str_of(c, v.name);
    js->flags = v.flags & 0xffu; /* W3C trace-flags: bit 0 is sampled in both */
    js->start_time = ot_jg_time(c, v.start);
    jg_dur *d = ot_jg_alloc(c, sizeof *d);
    if (d) {
        *d = (jg_dur)JAEGER__API_V2__DURATION__INIT;
        uint64_t ns = v.end > v.start ? v.end - v.start : 0; /* no negative bars */
        d->seconds = (int64_t)(ns / 1000000000u);
        d->nanos = (int32_t)(ns % 1000000000u);
    }
    js->duration = d;

    /* Status and the fixed tags, counted before the list is allocated. */
    int code = CODE(UNSET);
    sl desc = {NULL, 0};
    fld f;
    FOR_FIELDS(c, v.status, f)
    {
        if (f.num == 2 && want(c, &f, WT_LEN))
            desc = f.b;
        else if (f.num == 3 && want(c, &f, WT_VARINT))
            code = (int32_t)(uint32_t)f.v;
    }
    const char *kind = ot_jg_kind_name(v.kind);
    const char *code_name = code == CODE(OK) ? "OK" : code == CODE(ERROR) ? "ERROR" : NULL;
    int has_desc = c_nonempty(desc), has_ts = c_nonempty(v.trace_state);
    size_t cap = v.n_attrs + (sname != NULL) + (sver != NULL) + (kind != NULL) +
                 (code_name != NULL) + (code == CODE(ERROR)) + (size_t)has_desc + (size_t)has_ts +
                 (v.d_attrs != 0) + (v.d_events != 0) + (v.d_links != 0);
    jg_tags t;
    if (ot_jg_tags_init(c, &t, cap) < 0)
        return;

    int has_parent = v.parent.n > 0 && !ot_jg_id_is_zero(&pid);
    size_t n_refs_cap = (size_t)has_parent + v.n_links, n_refs = 0;
    jg_ref **refs = NULL, *rslab = NULL;
    if (n_refs_cap) {
        refs = ot_jg_alloc(c, n_refs_cap * sizeof *refs);
        rslab = ot_jg_alloc(c, n_refs_cap * sizeof *rslab);
        if (!refs || !rslab)
            return;
    }
    if (has_parent) {
        jg_ref *r = &rslab[n_refs];
        *r = (jg_ref)JAEGER__API_V2__SPAN_REF__INIT;
        r->trace_id = js->trace_id;
        r->span_id = ot_jg_id(c, &pid, 8);
        r->ref_type = JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF;
        refs[n_refs++] = r;
    }
    jg_log **logs = NULL, *lslab = NULL;
    size_t n_logs = 0;
    if (v.n_events) {
        logs = ot_jg_alloc(c, v.n_events * sizeof *logs);
        lslab = ot_jg_alloc(c, v.n_events * sizeof *lslab);
        if (!logs || !lslab)
            return;
    }

    /* The second pass: the lists, each in the order it came. */
    FOR_FIELDS(c, span, f)
    {
        if (f.num == 9)
            tag_wire(c, &t, f.b);
        else if (f.num == 11) {
            event_log(c, f.b, &lslab[n_logs]);
            logs[n_logs] = &lslab[n_logs];
            n_logs++;
        } else if (f.num == 13) {
            if (link_ref(c, f.b, js, has_parent ? &rslab[0] : NULL, &rslab[n_refs]))
                refs[n_refs] = &rslab[n_refs], n_refs++;
        }
    }
    if (sname)
        ot_jg_tag_str(&t, "otel.scope.name", sname);
    if (sver)
        ot_jg_tag_str(&t, "otel.scope.version", sver);
    if (kind)
        ot_jg_tag_str(&t, "span.kind", kind);
    if (code_name)
        ot_jg_tag_str(&t, "otel.status_code", code_name);
    if (code == CODE(ERROR))
        ot_jg_tag_bool(&t, "error", 1);
    if (has_desc)
        ot_jg_tag_str(&t, "otel.status_description", str_of(c, desc));
    if (has_ts)
        ot_jg_tag_str(&t, "w3c.tracestate", str_of(c, v.trace_state));
    if (v.d_attrs)
        ot_jg_tag_int(&t, "otel.dropped_attributes_count", v.d_attrs);
    if (v.d_events)
        ot_jg_tag_int(&t, "otel.dropped_events_count", v.d_events);
    if (v.d_links)
        ot_jg_tag_int(&t, "otel.dropped_links_count", v.d_links);
    js->tags = t.v;
    js->n_tags = t.n;
    if (n_refs_cap) {
        js->references = refs;
        js->n_references = n_refs;
    }
    js->logs = logs;
    js->n_logs = n_logs;
}

/* ---- one resource ------------------------------------------------------- */

static jg_process *process_wire(jg_ctx *c, sl res)
{
    jg_process *p = ot_jg_alloc(c, sizeof *p);
    if (!p)
        return NULL;
    *p = (jg_process)JAEGER__API_V2__PROCESS__INIT;
    p->service_name = OT_JAEGER_UNKNOWN_SERVICE;
    fld f;
    size_t n = 0, svc = (size_t)-1;
    sl svc_name = {NULL, 0};
    FOR_FIELDS(c, res, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN)) {
            sl key, val = {NULL, 0}, s;
            int has_val;
            kv_parts(c, f.b, &key, &val, &has_val);
            if (c_eq(key, "service.name") && kv_string(c, val, has_val, &s) && c_nonempty(s))
                svc = n, svc_name = s; /* the last one wins, as in translate.c */
            n++;
        }
    }
    if (svc != (size_t)-1)
        p->service_name = str_of(c, svc_name);
    jg_tags t;
    if (ot_jg_tags_init(c, &t, n - (svc != (size_t)-1)) < 0)
        return p;
    size_t i = 0;
    FOR_FIELDS(c, res, f)
        if (f.num == 1 && i++ != svc)
            tag_wire(c, &t, f.b);
    p->tags = t.v;
    p->n_tags = t.n;
    return p;
}

/* A ScopeSpans' scope name and version (NULL when empty). */
static void scope_of(jg_ctx *c, sl ss, const char **name, const char **version)
{
    fld f;
    sl scope = {NULL, 0}, nm = {NULL, 0}, ver = {NULL, 0};
    int has_scope = 0;
    FOR_FIELDS(c, ss, f)
        if (f.num == 1)
            set_once(c, &scope, &has_scope, &f);
    FOR_FIELDS(c, scope, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            nm = f.b;
        else if (f.num == 2 && want(c, &f, WT_LEN))
            ver = f.b;
    }
    *name = c_nonempty(nm) ? str_of(c, nm) : NULL;
    *version = c_nonempty(ver) ? str_of(c, ver) : NULL;
}

static void batch_wire(jg_ctx *c, sl rs, sl res, size_t n_spans, ot_jaeger_out *out)
{
    ot_jaeger_batch *b = ot_jg_alloc(c, sizeof *b);
    ot_jaeger_span **v = ot_jg_alloc(c, n_spans * sizeof *v);
    ot_jaeger_span *slab = ot_jg_alloc(c, n_spans * sizeof *slab);
    if (!b || !v || !slab)
        return;
    *b = (ot_jaeger_batch)JAEGER__API_V2__BATCH__INIT;
    b->process = process_wire(c, res);
    size_t n = 0;
    fld f, g;
    FOR_FIELDS(c, rs, f)
    {
        if (f.num != 2)
            continue;
        const char *sname, *sver;
        scope_of(c, f.b, &sname, &sver);
        FOR_FIELDS(c, f.b, g)
        {
            if (g.num == 2 && n < n_spans) {
                span_wire(c, g.b, sname, sver, &slab[n]);
                v[n] = &slab[n];
                n++;
            }
        }
    }
    b->spans = v;
    b->n_spans = n;
    out->batches[out->n_batches++] = b;
    out->n_spans += n;
}

int ot_jaeger_translate_wire(const uint8_t *wire, size_t len, ot_arena *arena, ot_jaeger_out *out,
                             ot_err *err)
{
    jg_ctx c = {.a = arena, .json = OT_BUF_INIT, .oom = 0, .fallback = 0};
    memset(out, 0, sizeof *out);
    sl req = {wire, len};
    fld f, g, h;
    size_t n_rs = 0;
    FOR_FIELDS(&c, req, f)
        if (f.num == 1 && want(&c, &f, WT_LEN))
            n_rs++;
    out->batches = ot_jg_alloc(&c, n_rs * sizeof *out->batches);
    FOR_FIELDS(&c, req, f)
    {
        if (f.num != 1)
            continue;
        /* The resource, and the spans to allocate for. */
        sl res = {NULL, 0};
        int has_res = 0;
        size_t n_spans = 0;
        FOR_FIELDS(&c, f.b, g)
        {
            if (g.num == 1)
                set_once(&c, &res, &has_res, &g);
            else if (g.num == 2 && want(&c, &g, WT_LEN)) {
                FOR_FIELDS(&c, g.b, h)
                    if (h.num == 2 && want(&c, &h, WT_LEN))
                        n_spans++;
            }
        }
        if (n_spans && !c.fallback)
            batch_wire(&c, f.b, res, n_spans, out);
    }
    ot_buf_free(&c.json);
    if (c.fallback) {
        memset(out, 0, sizeof *out);
        return 1;
    }
    if (c.oom) {
        memset(out, 0, sizeof *out);
        return ot_err_set(err, "jaeger: out of memory translating %zu resources", n_rs);
    }
    return 0;
}
