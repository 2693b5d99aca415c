/* traces.c: OTLP spans as the trace-agent's /v0.4/traces payload, msgpack:
 * an array of traces, each an array of span maps {service, name, resource,
 * trace_id, span_id, parent_id, start, duration, error, meta, metrics,
 * type}. The spans of a batch are grouped by trace id, one item per trace,
 * so that a request cut anywhere between items holds whole traces (the
 * agent samples and computes stats per trace).
 *
 * The mapping is the one Datadog documents for OTLP spans: the service from
 * service.name; the operation name from the instrumentation scope and the
 * span kind; the resource from the HTTP route (with its method) or the span
 * name; ids from the low 64 bits, the high half of the trace id kept in
 * meta _dd.p.tid; string attributes in meta, numeric ones in metrics. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/msgpack.h"
#include "dd.h"

#define NO_SERVICE "otlpresourcenoservicename"

/* One span to place: decoded already, or its bytes (decoded when its
 * trace is written). */
typedef struct sref {
    ProtobufCBinaryData tid;
    const ot_span *span;
    const uint8_t *w;
    size_t wn;
    const ot_resource *rsc;
    const ot_scope *scope;
    uint32_t res;
    uint32_t order;
} sref;

static int cmp_sref(const void *a, const void *b)
{
    const sref *x = a, *y = b;
    if (x->tid.len != y->tid.len)
        return x->tid.len < y->tid.len ? -1 : 1;
    int c = x->tid.len ? memcmp(x->tid.data, y->tid.data, x->tid.len) : 0;
    if (c)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

static bool same_trace(const sref *a, const sref *b)
{
    size_t n = a->tid.len;
    return n == b->tid.len && (!n || memcmp(a->tid.data, b->tid.data, n) == 0);
}

static const char *kind_name(int k)
{
    switch (k) {
    case OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER:
        return "server";
    case OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT:
        return "client";
    case OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER:
        return "producer";
    case OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER:
        return "consumer";
    default:
        return "internal";
    }
}

static bool is_str(const ot_keyvalue *kv)
{
    return kv->value &&
           kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
}

static bool is_num(const ot_keyvalue *kv)
{
    return kv->value &&
           (kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE ||
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
}

static double num(const ot_keyvalue *kv)
{
    return kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
               ? (double)kv->value->int_value
               : kv->value->double_value;
}

static bool in(ot_keyvalue *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i]->key && strcmp(kv[i]->key, key) == 0)
            return true;
    return false;
}

typedef struct tenc {
    ot_buf *b;
    ot_buf tmp;
} tenc;

static void mp_kv_str(ot_buf *b, const char *k, const char *v)
{
    ot_mp_cstr(b, k);
    ot_mp_cstr(b, v);
}

/* meta entries from one attribute list (skipping keys in skip); returns
 * how many were written. */
static uint32_t meta_attrs(tenc *e, ot_keyvalue *const *kv, size_t n, ot_keyvalue *const *skip,
                           size_t n_skip)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (!kv[i]->key || is_num(kv[i]) || in(skip, n_skip, kv[i]->key))
            continue;
        ot_mp_cstr(e->b, kv[i]->key);
        if (is_str(kv[i])) {
            ot_mp_cstr(e->b, kv[i]->value->string_value);
        } else {
            ot_buf_reset(&e->tmp);
            dd_value_text(&e->tmp, kv[i]->value);
            ot_mp_str(e->b, e->tmp.data ? e->tmp.data : "", e->tmp.len);
        }
        c++;
    }
    return c;
}

static uint32_t metric_attrs(tenc *e, ot_keyvalue *const *kv, size_t n, ot_keyvalue *const *skip,
                             size_t n_skip)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (!kv[i]->key || !is_num(kv[i]) || in(skip, n_skip, kv[i]->key))
            continue;
        ot_mp_cstr(e->b, kv[i]->key);
        ot_mp_double(e->b, num(kv[i]));
        c++;
    }
    return c;
}

/* The operation name: "<scope>.<kind>", lower case, characters Datadog
 * does not keep in names made '_'. */
static void op_name(ot_buf *out, const ot_scope *scope, int kind)
{
    const char *s = scope && scope->name && *scope->name ? scope->name : "opentelemetry";
    ot_buf_reset(out);
    ot_buf_puts(out, s);
    ot_buf_putc(out, '.');
    ot_buf_puts(out, kind_name(kind));
    for (size_t i = 0; i < out->len; i++) {
        char c = out->data[i];
        if (c >= 'A' && c <= 'Z')
            out->data[i] = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'))
            out->data[i] = '_';
    }
}

static const char *span_type(const ot_span *s)
{
    switch (s->kind) {
    case OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER:
        return "web";
    case OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT: {
        const char *db = dd_attr_str(s->attributes, s->n_attributes, "db.system");
        if (!db)
            return "http";
        if (strcmp(db, "redis") == 0 || strcmp(db, "memcached") == 0)
            return "cache";
        return "db";
    }
    default:
        return "custom";
    }
}

static void span(tenc *e, const ot_span *s, const ot_resource *rsc, const dd_res *res,
                 const ot_scope *scope)
{
    ot_buf *b = e->b;
    ot_keyvalue *const *sa = s->attributes;
    size_t ns = s->n_attributes;
    ot_keyvalue *const *ra = rsc ? rsc->attributes : NULL;
    size_t nr = rsc ? rsc->n_attributes : 0;
    ot_mp_map(b, 12);
    mp_kv_str(b, "service", res->service ? res->service : NO_SERVICE);
    op_name(&e->tmp, scope, s->kind);
    ot_mp_cstr(b, "name");
    ot_mp_str(b, e->tmp.data, e->tmp.len);
    ot_mp_cstr(b, "resource");
    const char *route = dd_attr_str(sa, ns, "http.route");
    if (route) {
        const char *m = dd_attr_str(sa, ns, "http.request.method");
        if (!m)
            m = dd_attr_str(sa, ns, "http.method");
        ot_buf_reset(&e->tmp);
        if (m) {
            ot_buf_puts(&e->tmp, m);
            ot_buf_putc(&e->tmp, ' ');
        }
        ot_buf_puts(&e->tmp, route);
        ot_mp_str(b, e->tmp.data, e->tmp.len);
    } else {
        ot_mp_cstr(b, s->name);
    }
    ot_mp_cstr(b, "trace_id");
    ot_mp_uint(b, dd_id64(&s->trace_id, false));
    ot_mp_cstr(b, "span_id");
    ot_mp_uint(b, dd_id64(&s->span_id, false));
    ot_mp_cstr(b, "parent_id");
    uint64_t parent = dd_id64(&s->parent_span_id, false);
    ot_mp_uint(b, parent);
    ot_mp_cstr(b, "start");
    ot_mp_int(b, (int64_t)s->start_time_unix_nano);
    ot_mp_cstr(b, "duration");
    ot_mp_int(b, s->end_time_unix_nano > s->start_time_unix_nano
                     ? (int64_t)(s->end_time_unix_nano - s->start_time_unix_nano)
                     : 0);
    bool error = s->status && s->status->code ==
                                  OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    ot_mp_cstr(b, "error");
    ot_mp_int(b, error ? 1 : 0);
    mp_kv_str(b, "type", span_type(s));

    ot_mp_cstr(b, "meta");
    size_t at = ot_mp_map32(b);
    uint32_t n = meta_attrs(e, sa, ns, NULL, 0);
    n += meta_attrs(e, ra, nr, sa, ns);
    if (res->env && !in(sa, ns, "env") && !in(ra, nr, "env")) {
        mp_kv_str(b, "env", res->env);
        n++;
    }
    if (res->version && !in(sa, ns, "version") && !in(ra, nr, "version")) {
        mp_kv_str(b, "version", res->version);
        n++;
    }
    mp_kv_str(b, "span.kind", kind_name(s->kind));
    n++;
    if (scope && scope->name && *scope->name) {
        mp_kv_str(b, "otel.scope.name", scope->name);
        n++;
    }
    /* The last exception event of a failed span is its error, as
     * Datadog's error tracking reads it. */
    const ot_span_event *exc = NULL;
    for (size_t i = 0; error && i < s->n_events; i++)
        if (s->events[i]->name && strcmp(s->events[i]->name, "exception") == 0)
            exc = s->events[i];
    const char *emsg = exc ? dd_attr_str(exc->attributes, exc->n_attributes, "exception.message")
                           : NULL;
    if (!emsg && error && s->status->message && *s->status->message)
        emsg = s->status->message;
    if (s->status && s->status->code) {
        mp_kv_str(b, "otel.status_code", error ? "Error" : "Ok");
        n++;
    }
    if (emsg) {
        mp_kv_str(b, "error.msg", emsg);
        n++;
    }
    static const char *const exc_keys[][2] = {{"exception.type", "error.type"},
                                              {"exception.stacktrace", "error.stack"}};
    for (size_t i = 0; exc && i < 2; i++) {
        const char *v = dd_attr_str(exc->attributes, exc->n_attributes, exc_keys[i][0]);
        if (v && !in(sa, ns, exc_keys[i][1])) {
            mp_kv_str(b, exc_keys[i][1], v);
            n++;
        }
    }
    if (s->n_events) {
        /* the span's events as Datadog keeps them in meta: one JSON array */
        ot_buf_reset(&e->tmp);
        ot_buf_putc(&e->tmp, '[');
        for (size_t i = 0; i < s->n_events; i++) {
            const ot_span_event *ev = s->events[i];
            const char *nm = ev->name ? ev->name : "";
            ot_buf_puts(&e->tmp, i ? ",{\"name\":" : "{\"name\":");
            ot_buf_json_str(&e->tmp, nm, strlen(nm));
            ot_buf_puts(&e->tmp, ",\"time_unix_nano\":");
            dd_put_int(&e->tmp, (int64_t)ev->time_unix_nano);
            ot_buf_puts(&e->tmp, ",\"attributes\":{");
            for (size_t j = 0; j < ev->n_attributes; j++) {
                const ot_keyvalue *kv = ev->attributes[j];
                const char *k = kv->key ? kv->key : "";
                if (j)
                    ot_buf_putc(&e->tmp, ',');
                ot_buf_json_str(&e->tmp, k, strlen(k));
                ot_buf_putc(&e->tmp, ':');
                ot_buf vt = OT_BUF_INIT;
                dd_value_text(&vt, kv->value);
                ot_buf_json_str(&e->tmp, vt.data ? vt.data : "", vt.len);
                ot_buf_free(&vt);
            }
            ot_buf_puts(&e->tmp, "}}");
        }
        ot_buf_putc(&e->tmp, ']');
        ot_mp_cstr(b, "events");
        ot_mp_str(b, e->tmp.data, e->tmp.len);
        n++;
    }
    uint64_t hi = dd_id64(&s->trace_id, true);
    if (hi) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, hi);
        mp_kv_str(b, "_dd.p.tid", hex);
        n++;
    }
    ot_mp_patch32(b, at, n);

    ot_mp_cstr(b, "metrics");
    at = ot_mp_map32(b);
    n = metric_attrs(e, sa, ns, NULL, 0);
    n += metric_attrs(e, ra, nr, sa, ns);
    if (!parent) {
        /* a root: keep it, as a tracer's automatic sampling would */
        ot_mp_cstr(b, "_sampling_priority_v1");
        ot_mp_double(b, 1);
        n++;
    }
    ot_mp_patch32(b, at, n);
}

/* What both ways in share: the spans to place, and each resource's
 * unified tags (by resource index). */
typedef struct tset {
    sref *v;
    size_t n, cap;
    dd_res *res;
    size_t n_res, cap_res;
    const dd_opts *o;
} tset;

static int tset_add(tset *t, sref r)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        sref *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    r.order = (uint32_t)t->n;
    t->v[t->n++] = r;
    if (r.res >= t->n_res) {
        if (r.res >= t->cap_res) {
            size_t cap = t->cap_res ? t->cap_res * 2 : 8;
            while (cap <= r.res)
                cap *= 2;
            dd_res *nr = realloc(t->res, cap * sizeof *nr);
            if (!nr)
                return -1;
            memset(nr + t->cap_res, 0, (cap - t->cap_res) * sizeof *nr);
            t->res = nr;
            t->cap_res = cap;
        }
        while (t->n_res <= r.res) {
            if (dd_res_load(&t->res[t->n_res], r.res == t->n_res ? r.rsc : NULL, t->o) < 0)
                return -1;
            t->n_res++;
        }
    }
    return 0;
}

static void tset_free(tset *t)
{
    for (size_t i = 0; i < t->cap_res; i++)
        dd_res_free(&t->res[i]);
    free(t->res);
    free(t->v);
}

/* Sorts by trace and writes one item per trace; spans given as bytes are
 * decoded into chunk, which is reset after each trace. */
static int tset_write(tset *t, dd_items *traces, ot_arena *chunk, ot_err *err)
{
    if (t->n)
        qsort(t->v, t->n, sizeof *t->v, cmp_sref);
    tenc e = {.b = &traces->data};
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0;) {
        size_t j = i + 1;
        while (j < t->n && same_trace(&t->v[j], &t->v[i]))
            j++;
        ot_mp_array(e.b, (uint32_t)(j - i));
        for (size_t k = i; k < j && rc == 0; k++) {
            const sref *r = &t->v[k];
            const ot_span *sp = r->span;
            if (!sp && !(sp = opentelemetry__proto__trace__v1__span__unpack(
                             ot_arena_pb_allocator(chunk), r->wn, r->w))) {
                rc = ot_err_set(err, "a span does not decode");
                break;
            }
            span(&e, sp, r->rsc, &t->res[r->res], r->scope);
        }
        if (rc == 0 && dd_items_close(traces) < 0)
            rc = ot_err_set(err, "out of memory");
        traces->points += j - i;
        if (chunk)
            ot_arena_reset(chunk);
        i = j;
    }
    ot_buf_free(&e.tmp);
    return rc;
}

int dd_traces_encode(const ot_trace_req *req, const dd_opts *o, dd_items *traces,
                     ot_arena *scratch, ot_err *err)
{
    (void)scratch;
    tset t = {.o = o};
    int rc = 0;
    for (size_t r = 0; r < req->n_resource_spans && rc == 0; r++) {
        const ot_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans && rc == 0; s++)
            for (size_t i = 0; i < rs->scope_spans[s]->n_spans && rc == 0; i++) {
                const ot_span *sp = rs->scope_spans[s]->spans[i];
                rc = tset_add(&t, (sref){.tid = sp->trace_id, .span = sp, .rsc = rs->resource,
                                         .scope = rs->scope_spans[s]->scope, .res = (uint32_t)r});
            }
    }
    if (rc < 0)
        ot_err_set(err, "out of memory");
    else
        rc = tset_write(&t, traces, NULL, err);
    tset_free(&t);
    return rc;
}

static int wire_span(void *ctx, const ot_resource *res, size_t ri, const ot_scope *scope,
                     const uint8_t *leaf, size_t len)
{
    return tset_add(ctx, (sref){.tid = dd_wire_trace_id(leaf, len), .w = leaf, .wn = len,
                                .rsc = res, .scope = scope, .res = (uint32_t)ri});
}

int dd_traces_encode_wire(const uint8_t *wire, size_t len, const dd_opts *o, dd_items *traces,
                          ot_arena *keep, ot_arena *chunk, ot_err *err)
{
    tset t = {.o = o};
    int rc = dd_wire_leaves(OT_TRACES, wire, len, keep, wire_span, &t, err);
    if (rc == 2 || rc == -1) {
        if (!err->msg[0])
            ot_err_set(err, "out of memory");
        rc = -1;
    } else if (rc == 0) {
        rc = tset_write(&t, traces, chunk, err);
    }
    tset_free(&t);
    return rc;
}
