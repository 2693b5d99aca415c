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

typedef struct sref {
    const ot_span *span;
    uint32_t res, scope;
    uint32_t order;
} sref;

static int cmp_sref(const void *a, const void *b)
{
    const sref *x = a, *y = b;
    int c = 0;
    size_t lx = x->span->trace_id.len, ly = y->span->trace_id.len;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    if (lx)
        c = memcmp(x->span->trace_id.data, y->span->trace_id.data, lx);
    if (c)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

static bool same_trace(const ot_span *a, const ot_span *b)
{
    size_t n = a->trace_id.len;
    return n == b->trace_id.len && (!n || memcmp(a->trace_id.data, b->trace_id.data, n) == 0);
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
    if (s->status && s->status->code) {
        mp_kv_str(b, "otel.status_code", error ? "Error" : "Ok");
        n++;
        if (error && s->status->message && *s->status->message) {
            mp_kv_str(b, "error.msg", s->status->message);
            n++;
        }
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

int dd_traces_encode(const ot_trace_req *req, const dd_opts *o, dd_items *traces,
                     ot_arena *scratch, ot_err *err)
{
    size_t total = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
            total += req->resource_spans[r]->scope_spans[s]->n_spans;
    if (!total)
        return 0;
    sref *v = ot_arena_alloc(scratch, total * sizeof *v);
    dd_res *res = ot_arena_calloc(scratch, req->n_resource_spans * sizeof *res);
    if (!v || !res)
        return ot_err_set(err, "out of memory");
    size_t n = 0;
    int rc = 0;
    for (size_t r = 0; r < req->n_resource_spans && rc == 0; r++) {
        const ot_resource_spans *rs = req->resource_spans[r];
        rc = dd_res_load(&res[r], rs->resource, o);
        for (size_t s = 0; s < rs->n_scope_spans; s++)
            for (size_t i = 0; i < rs->scope_spans[s]->n_spans; i++) {
                v[n] = (sref){rs->scope_spans[s]->spans[i], (uint32_t)r, (uint32_t)s, (uint32_t)n};
                n++;
            }
    }
    if (rc == 0) {
        qsort(v, n, sizeof *v, cmp_sref);
        tenc e = {.b = &traces->data};
        for (size_t i = 0; i < n && rc == 0;) {
            size_t j = i + 1;
            while (j < n && same_trace(v[j].span, v[i].span))
                j++;
            ot_mp_array(e.b, (uint32_t)(j - i));
            for (size_t k = i; k < j; k++) {
                const ot_resource_spans *rs = req->resource_spans[v[k].res];
                span(&e, v[k].span, rs->resource, &res[v[k].res],
                     rs->scope_spans[v[k].scope]->scope);
            }
            if (dd_items_close(traces) < 0)
                rc = -1;
            traces->points += j - i;
            i = j;
        }
        ot_buf_free(&e.tmp);
    }
    for (size_t r = 0; r < req->n_resource_spans; r++)
        dd_res_free(&res[r]);
    if (rc < 0)
        ot_err_set(err, "out of memory");
    return rc;
}
