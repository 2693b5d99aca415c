/* translate.c: OTLP spans to Jaeger api_v2 structs, the one walk of the
 * OTLP request both Jaeger protocols start from (thrift.c writes the same
 * structs as Thrift). The mapping is the one the collector's Jaeger
 * translator used, so existing Jaeger dashboards and queries keep working:
 * the tag names below (span.kind, otel.status_code, ...) are what they
 * look for.
 *
 * Everything is allocated in the caller's arena; strings and bytes that
 * exist in the OTLP request are pointed at, not copied. */
#include "translate_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"

typedef Jaeger__ApiV2__Process jg_process;
typedef Jaeger__ApiV2__SpanRef jg_ref;
typedef Jaeger__ApiV2__Log jg_log;
typedef Jaeger__ApiV2__Duration jg_dur;

#define AV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define KIND(x) OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_##x
#define CODE(x) OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_##x

void *ot_jg_alloc(jg_ctx *c, size_t n)
{
    void *p = ot_arena_alloc(c->a, n ? n : 1);
    if (!p)
        c->oom = 1;
    return p;
}

/* ---- arrays and maps as JSON text ----------------------------------------
 * Jaeger tags have no list or map type. The collector wrote such values as
 * the JSON of their plain values ([1,"a"], {"k":true}), not as OTLP JSON's
 * typed wrappers; queries written against it expect that. */

static void json_double(ot_buf *b, double v)
{
    if (isnan(v)) {
        ot_buf_puts(b, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        ot_buf_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char tmp[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    ot_buf_append(b, tmp, (size_t)n);
}

static void json_kvlist(ot_buf *b, const ot_kvlist *l, int depth)
{
    ot_buf_putc(b, '{');
    for (size_t i = 0; l && i < l->n_values; i++) {
        const ot_keyvalue *kv = l->values[i];
        if (i)
            ot_buf_putc(b, ',');
        const char *k = kv->key ? kv->key : "";
        ot_buf_json_str(b, k, strlen(k));
        ot_buf_putc(b, ':');
        ot_jg_json_value(b, kv->value, depth + 1);
    }
    ot_buf_putc(b, '}');
}

void ot_jg_json_value(ot_buf *b, const ot_anyvalue *v, int depth)
{
    /* protobuf-c unpacks nesting without limit; a hostile request must not
     * turn into deep recursion here. */
    if (!v || depth > 64) {
        ot_buf_puts(b, "null");
        return;
    }
    switch (v->value_case) {
    case AV(STRING_VALUE): {
        const char *s = v->string_value ? v->string_value : "";
        ot_buf_json_str(b, s, strlen(s));
        break;
    }
    case AV(BOOL_VALUE): ot_buf_puts(b, v->bool_value ? "true" : "false"); break;
    case AV(INT_VALUE): ot_buf_printf(b, "%lld", (long long)v->int_value); break;
    case AV(DOUBLE_VALUE): json_double(b, v->double_value); break;
    case AV(BYTES_VALUE): {
        size_t n = ot_base64_len(v->bytes_value.len, 0);
        if (ot_buf_reserve(b, n + 2) < 0)
            return;
        ot_buf_putc(b, '"');
        b->len += ot_base64_encode(v->bytes_value.data, v->bytes_value.len, b->data + b->len, 0);
        ot_buf_putc(b, '"');
        break;
    }
    case AV(ARRAY_VALUE):
        ot_buf_putc(b, '[');
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
            if (i)
                ot_buf_putc(b, ',');
            ot_jg_json_value(b, v->array_value->values[i], depth + 1);
        }
        ot_buf_putc(b, ']');
        break;
    case AV(KVLIST_VALUE): json_kvlist(b, v->kvlist_value, depth); break;
    default: ot_buf_puts(b, "null"); break;
    }
}

/* ---- tags ------------------------------------------------------------- */

int ot_jg_tags_init(jg_ctx *c, jg_tags *t, size_t cap)
{
    t->n = 0;
    t->cap = cap;
    t->v = NULL;
    t->slab = NULL;
    if (!cap)
        return 0;
    t->v = ot_jg_alloc(c, cap * sizeof *t->v);
    t->slab = ot_jg_alloc(c, cap * sizeof *t->slab);
    return t->v && t->slab ? 0 : -1;
}

ot_jaeger_kv *ot_jg_tag_add(jg_tags *t, const char *key)
{
    ot_jaeger_kv *kv = &t->slab[t->n];
    *kv = (ot_jaeger_kv)JAEGER__API_V2__KEY_VALUE__INIT;
    kv->key = (char *)(key ? key : "");
    t->v[t->n++] = kv;
    return kv;
}

void ot_jg_tag_str(jg_tags *t, const char *key, const char *s)
{
    ot_jaeger_kv *kv = ot_jg_tag_add(t, key);
    kv->v_type = JAEGER__API_V2__VALUE_TYPE__STRING;
    kv->v_str = (char *)(s ? s : "");
}

void ot_jg_tag_bool(jg_tags *t, const char *key, int v)
{
    ot_jaeger_kv *kv = ot_jg_tag_add(t, key);
    kv->v_type = JAEGER__API_V2__VALUE_TYPE__BOOL;
    kv->v_bool = v != 0;
}

void ot_jg_tag_int(jg_tags *t, const char *key, int64_t v)
{
    ot_jaeger_kv *kv = ot_jg_tag_add(t, key);
    kv->v_type = JAEGER__API_V2__VALUE_TYPE__INT64;
    kv->v_int64 = v;
}

/* One OTLP attribute as a tag of the same type where Jaeger has one. */
static void tag_attr(jg_ctx *c, jg_tags *t, const ot_keyvalue *attr)
{
    const ot_anyvalue *v = attr->value;
    ot_jaeger_kv *kv = ot_jg_tag_add(t, attr->key);
    kv->v_type = JAEGER__API_V2__VALUE_TYPE__STRING;
    if (!v)
        return; /* an unset value: the empty string */
    switch (v->value_case) {
    case AV(STRING_VALUE): kv->v_str = v->string_value ? v->string_value : (char *)""; break;
    case AV(BOOL_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__BOOL;
        kv->v_bool = v->bool_value;
        break;
    case AV(INT_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__INT64;
        kv->v_int64 = v->int_value;
        break;
    case AV(DOUBLE_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__FLOAT64;
        kv->v_float64 = v->double_value;
        break;
    case AV(BYTES_VALUE):
        kv->v_type = JAEGER__API_V2__VALUE_TYPE__BINARY;
        kv->v_binary = v->bytes_value;
        break;
    case AV(ARRAY_VALUE):
    case AV(KVLIST_VALUE): {
        ot_buf_reset(&c->json);
        ot_jg_json_value(&c->json, v, 0);
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

/* ---- ids and times ---------------------------------------------------- */

/* Jaeger ids are fixed-size: 16-byte trace ids, 8-byte span ids. A short
 * OTLP id is right-aligned (its bytes become the low end), a long one keeps
 * its last bytes; a well-formed id is pointed at as it is. */
ProtobufCBinaryData ot_jg_id(jg_ctx *c, const ProtobufCBinaryData *id, size_t size)
{
    if (id->len == size)
        return *id;
    ProtobufCBinaryData r = {size, ot_jg_alloc(c, size)};
    if (!r.data)
        return (ProtobufCBinaryData){0, NULL};
    memset(r.data, 0, size);
    size_t n = id->len < size ? id->len : size;
    if (n)
        memcpy(r.data + size - n, id->data + id->len - n, n);
    return r;
}

int ot_jg_id_is_zero(const ProtobufCBinaryData *id)
{
    for (size_t i = 0; i < id->len; i++)
        if (id->data[i])
            return 0;
    return 1;
}

int ot_jg_same_bytes(const ProtobufCBinaryData *x, const ProtobufCBinaryData *y)
{
    return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
}

jg_ts *ot_jg_time(jg_ctx *c, uint64_t ns)
{
    jg_ts *t = ot_jg_alloc(c, sizeof *t);
    if (!t)
        return NULL;
    *t = (jg_ts)JAEGER__API_V2__TIMESTAMP__INIT;
    t->seconds = (int64_t)(ns / 1000000000u);
    t->nanos = (int32_t)(ns % 1000000000u);
    return t;
}

/* ---- one span --------------------------------------------------------- */

const char *ot_jg_kind_name(int kind)
{
    switch (kind) {
    case KIND(SERVER): return "server";
    case KIND(CLIENT): return "client";
    case KIND(PRODUCER): return "producer";
    case KIND(CONSUMER): return "consumer";
    default: return NULL; /* internal and unspecified are Jaeger's default */
    }
}

static const char *link_ref_type(const ot_span_link *l)
{
    for (size_t i = 0; i < l->n_attributes; i++) {
        const ot_keyvalue *kv = l->attributes[i];
        if (kv->key && strcmp(kv->key, "opentracing.ref_type") == 0)
            return kv->value && kv->value->value_case == AV(STRING_VALUE) ? kv->value->string_value
                                                                          : NULL;
    }
    return NULL;
}

static void span_refs(jg_ctx *c, const ot_span *s, ot_jaeger_span *js)
{
    int has_parent = s->parent_span_id.len > 0 && !ot_jg_id_is_zero(&s->parent_span_id);
    size_t cap = (size_t)has_parent + s->n_links;
    if (!cap)
        return;
    jg_ref **v = ot_jg_alloc(c, cap * sizeof *v);
    jg_ref *slab = ot_jg_alloc(c, cap * sizeof *slab);
    if (!v || !slab)
        return;
    size_t n = 0;
    if (has_parent) {
        jg_ref *r = &slab[n];
        *r = (jg_ref)JAEGER__API_V2__SPAN_REF__INIT;
        r->trace_id = js->trace_id;
        r->span_id = ot_jg_id(c, &s->parent_span_id, 8);
        r->ref_type = JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF;
        v[n++] = r;
    }
    for (size_t i = 0; i < s->n_links; i++) {
        const ot_span_link *l = s->links[i];
        jg_ref *r = &slab[n];
        *r = (jg_ref)JAEGER__API_V2__SPAN_REF__INIT;
        r->trace_id = ot_jg_id(c, &l->trace_id, 16);
        r->span_id = ot_jg_id(c, &l->span_id, 8);
        const char *rt = link_ref_type(l);
        int same_trace = ot_jg_same_bytes(&r->trace_id, &js->trace_id);
        r->ref_type = rt && strcmp(rt, "child_of") == 0 && same_trace
                          ? JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF
                          : JAEGER__API_V2__SPAN_REF_TYPE__FOLLOWS_FROM;
        /* A child_of link to the parent says what the parent reference
         * already says; Jaeger would show it twice. */
        if (has_parent && r->ref_type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF && same_trace &&
            ot_jg_same_bytes(&r->span_id, &slab[0].span_id))
            continue;
        v[n++] = r;
    }
    js->references = v;
    js->n_references = n;
}

static void span_tags(jg_ctx *c, const ot_span *s, const ot_scope *scope, ot_jaeger_span *js)
{
    const char *kind = ot_jg_kind_name(s->kind);
    const ot_span_status *st = s->status;
    int code = st ? (int)st->code : CODE(UNSET);
    const char *code_name = code == CODE(OK) ? "OK" : code == CODE(ERROR) ? "ERROR" : NULL;
    const char *desc = st && st->message && st->message[0] ? st->message : NULL;
    const char *sname = scope && scope->name && scope->name[0] ? scope->name : NULL;
    const char *sver = scope && scope->version && scope->version[0] ? scope->version : NULL;
    const char *tstate = s->trace_state && s->trace_state[0] ? s->trace_state : NULL;

    size_t cap = s->n_attributes + (sname != NULL) + (sver != NULL) + (kind != NULL) +
                 (code_name != NULL) + (code == CODE(ERROR)) + (desc != NULL) +
                 (tstate != NULL) + (s->dropped_attributes_count != 0) +
                 (s->dropped_events_count != 0) + (s->dropped_links_count != 0);
    jg_tags t;
    if (ot_jg_tags_init(c, &t, cap) < 0)
        return;
    for (size_t i = 0; i < s->n_attributes; i++)
        tag_attr(c, &t, s->attributes[i]);
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
    if (desc)
        ot_jg_tag_str(&t, "otel.status_description", desc);
    if (tstate)
        ot_jg_tag_str(&t, "w3c.tracestate", tstate);
    if (s->dropped_attributes_count)
        ot_jg_tag_int(&t, "otel.dropped_attributes_count", s->dropped_attributes_count);
    if (s->dropped_events_count)
        ot_jg_tag_int(&t, "otel.dropped_events_count", s->dropped_events_count);
    if (s->dropped_links_count)
        ot_jg_tag_int(&t, "otel.dropped_links_count", s->dropped_links_count);
    js->tags = t.v;
    js->n_tags = t.n;
}

/* An event becomes a log: `event` carries its name (unless an attribute
 * already has that key), then its attributes. */
static void span_logs(jg_ctx *c, const ot_span *s, ot_jaeger_span *js)
{
    if (!s->n_events)
        return;
    jg_log **v = ot_jg_alloc(c, s->n_events * sizeof *v);
    jg_log *slab = ot_jg_alloc(c, s->n_events * sizeof *slab);
    if (!v || !slab)
        return;
    for (size_t i = 0; i < s->n_events; i++) {
        const ot_span_event *e = s->events[i];
        jg_log *l = &slab[i];
        *l = (jg_log)JAEGER__API_V2__LOG__INIT;
        l->timestamp = ot_jg_time(c, e->time_unix_nano);
        int named = e->name && e->name[0];
        for (size_t k = 0; named && k < e->n_attributes; k++)
            if (e->attributes[k]->key && strcmp(e->attributes[k]->key, "event") == 0)
                named = 0;
        jg_tags t;
        if (ot_jg_tags_init(c, &t, (size_t)named + e->n_attributes) < 0)
            return;
        if (named)
            ot_jg_tag_str(&t, "event", e->name);
        for (size_t k = 0; k < e->n_attributes; k++)
            tag_attr(c, &t, e->attributes[k]);
        l->fields = t.v;
        l->n_fields = t.n;
        v[i] = l;
    }
    js->logs = v;
    js->n_logs = s->n_events;
}

static void span_one(jg_ctx *c, const ot_span *s, const ot_scope *scope, ot_jaeger_span *js)
{
    *js = (ot_jaeger_span)JAEGER__API_V2__SPAN__INIT;
    js->trace_id = ot_jg_id(c, &s->trace_id, 16);
    js->span_id = ot_jg_id(c, &s->span_id, 8);
    js->operation_name = s->name ? s->name : "";
    /* The low byte of OTLP's flags is W3C trace-flags, whose bit 0
     * (sampled) is Jaeger's bit 0 too. */
    js->flags = s->flags & 0xffu;
    js->start_time = ot_jg_time(c, s->start_time_unix_nano);
    jg_dur *d = ot_jg_alloc(c, sizeof *d);
    if (d) {
        *d = (jg_dur)JAEGER__API_V2__DURATION__INIT;
        /* An end before the start is a clock step on the client; Jaeger
         * cannot draw a negative bar, so the span gets no length. */
        uint64_t ns = s->end_time_unix_nano > s->start_time_unix_nano
                          ? s->end_time_unix_nano - s->start_time_unix_nano
                          : 0;
        d->seconds = (int64_t)(ns / 1000000000u);
        d->nanos = (int32_t)(ns % 1000000000u);
    }
    js->duration = d;
    span_refs(c, s, js);
    span_tags(c, s, scope, js);
    span_logs(c, s, js);
}

/* ---- one resource ----------------------------------------------------- */

static jg_process *process_of(jg_ctx *c, const ot_resource *res)
{
    jg_process *p = ot_jg_alloc(c, sizeof *p);
    if (!p)
        return NULL;
    *p = (jg_process)JAEGER__API_V2__PROCESS__INIT;
    p->service_name = OT_JAEGER_UNKNOWN_SERVICE;
    size_t n = res ? res->n_attributes : 0;
    const ot_keyvalue *svc = NULL;
    for (size_t i = 0; i < n; i++) {
        const ot_keyvalue *kv = res->attributes[i];
        if (kv->key && strcmp(kv->key, "service.name") == 0 && kv->value &&
            kv->value->value_case == AV(STRING_VALUE) && kv->value->string_value &&
            kv->value->string_value[0]) {
            svc = kv;
            p->service_name = kv->value->string_value;
        }
    }
    jg_tags t;
    if (ot_jg_tags_init(c, &t, n - (svc != NULL)) < 0)
        return p;
    for (size_t i = 0; i < n; i++)
        if (res->attributes[i] != svc)
            tag_attr(c, &t, res->attributes[i]);
    p->tags = t.v;
    p->n_tags = t.n;
    return p;
}

static ot_jaeger_batch *batch_of(jg_ctx *c, const ot_resource_spans *rs, size_t n_spans)
{
    ot_jaeger_batch *b = ot_jg_alloc(c, sizeof *b);
    ot_jaeger_span **v = ot_jg_alloc(c, n_spans * sizeof *v);
    ot_jaeger_span *slab = ot_jg_alloc(c, n_spans * sizeof *slab);
    if (!b || !v || !slab)
        return NULL;
    *b = (ot_jaeger_batch)JAEGER__API_V2__BATCH__INIT;
    b->process = process_of(c, rs->resource);
    size_t n = 0;
    for (size_t i = 0; i < rs->n_scope_spans; i++) {
        const ot_scope_spans *ss = rs->scope_spans[i];
        for (size_t k = 0; k < ss->n_spans && !c->oom; k++) {
            span_one(c, ss->spans[k], ss->scope, &slab[n]);
            v[n] = &slab[n];
            n++;
        }
    }
    b->spans = v;
    b->n_spans = n;
    return b;
}

int ot_jaeger_translate(const ot_trace_req *req, ot_arena *arena, ot_jaeger_out *out,
                        ot_err *err)
{
    jg_ctx c = {.a = arena, .json = OT_BUF_INIT, .oom = 0};
    memset(out, 0, sizeof *out);
    size_t n_rs = req ? req->n_resource_spans : 0;
    out->batches = ot_jg_alloc(&c, n_rs * sizeof *out->batches);
    for (size_t i = 0; i < n_rs && !c.oom; i++) {
        const ot_resource_spans *rs = req->resource_spans[i];
        size_t n_spans = 0;
        for (size_t k = 0; k < rs->n_scope_spans; k++)
            n_spans += rs->scope_spans[k]->n_spans;
        if (!n_spans)
            continue;
        ot_jaeger_batch *b = batch_of(&c, rs, n_spans);
        if (!b)
            break;
        out->batches[out->n_batches++] = b;
        out->n_spans += b->n_spans;
    }
    ot_buf_free(&c.json);
    if (c.oom) {
        memset(out, 0, sizeof *out);
        return ot_err_set(err, "jaeger: out of memory translating %zu resources", n_rs);
    }
    return 0;
}
