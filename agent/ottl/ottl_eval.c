/* ottl_eval.c: evaluation of a parsed OTTL condition against one span,
 * event, metric, data point or log record. It walks the tree, reads the
 * fields a path names straight from the protobuf-c structs and scans
 * attribute arrays, without allocating; the per-item hot path of the
 * filter and attributes processors, so it is one file of static calls. */
#include "ottl/ottl_int.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"

/* Scratch space a value may point into (hex of an id, a number as text). */
#define SCRATCH 128

/* ---- evaluation ---------------------------------------------------------- */

typedef struct ev {
    const ot_ottl_item *it;
    const ot_ottl_cond *c;
    ot_err *err;
} ev;

/* One match-data block per thread, kept across calls: pcre2_match needs
 * one, and making one per item would allocate per item. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static bool md_key_ok;

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void md_init(void)
{
    md_key_ok = pthread_key_create(&md_key, md_free) == 0;
}

static pcre2_match_data *thread_md(void)
{
    pthread_once(&md_once, md_init);
    if (!md_key_ok)
        return NULL;
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

static void any_to_val(const ot_anyvalue *a, val *v)
{
    v->t = T_NIL;
    if (!a)
        return;
    switch (a->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        v->t = T_STR;
        v->u.s.p = a->string_value ? a->string_value : "";
        v->u.s.n = strlen(v->u.s.p);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        v->t = T_BOOL;
        v->u.b = a->bool_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        v->t = T_INT;
        v->u.i = a->int_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        v->t = T_DBL;
        v->u.d = a->double_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        v->t = T_LIST;
        v->u.l.v = a->array_value ? a->array_value->values : NULL;
        v->u.l.n = a->array_value ? a->array_value->n_values : 0;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        v->t = T_MAP;
        v->u.m.kv = a->kvlist_value ? a->kvlist_value->values : NULL;
        v->u.m.n = a->kvlist_value ? a->kvlist_value->n_values : 0;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        v->t = T_BYTES;
        v->u.s.p = (const char *)a->bytes_value.data;
        v->u.s.n = a->bytes_value.len;
        break;
    default:
        break;
    }
}

static const ot_anyvalue *map_get(ot_keyvalue *const *kv, size_t n, const char *key, size_t kl)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i] ? kv[i]->key : NULL;
        if (k && k[0] == key[0] && strncmp(k, key, kl) == 0 && k[kl] == '\0')
            return kv[i]->value;
    }
    return NULL;
}

static void set_str(val *v, const char *s)
{
    v->t = T_STR;
    v->u.s.p = s ? s : "";
    v->u.s.n = strlen(v->u.s.p);
}

static void set_int(val *v, int64_t i)
{
    v->t = T_INT;
    v->u.i = i;
}

static void set_bytes(val *v, const ProtobufCBinaryData *b)
{
    v->t = T_BYTES;
    v->u.s.p = (const char *)b->data;
    v->u.s.n = b->len;
}

static void set_hex(val *v, const ProtobufCBinaryData *b, char *scratch)
{
    size_t n = b->len < SCRATCH / 2 ? b->len : SCRATCH / 2 - 1;
    v->t = T_STR;
    v->u.s.p = scratch;
    v->u.s.n = ot_hex_encode(b->data, n, scratch, false);
}

static int64_t metric_type(const ot_metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return 1;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return 2;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: return 3;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: return 4;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: return 5;
    default: return 0;
    }
}

static void metric_field(const ot_metric *m, int field, val *v)
{
    switch (field) {
    case F_NAME: set_str(v, m->name); break;
    case F_DESCRIPTION: set_str(v, m->description); break;
    case F_UNIT: set_str(v, m->unit); break;
    case F_TYPE: set_int(v, metric_type(m)); break;
    case F_TEMPORALITY:
        set_int(v, 0);
        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM && m->sum)
            set_int(v, m->sum->aggregation_temporality);
        else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM &&
                 m->histogram)
            set_int(v, m->histogram->aggregation_temporality);
        else if (m->data_case ==
                     OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM &&
                 m->exponential_histogram)
            set_int(v, m->exponential_histogram->aggregation_temporality);
        break;
    case F_MONOTONIC:
        v->t = T_BOOL;
        v->u.b = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM && m->sum &&
                 m->sum->is_monotonic;
        break;
    }
}

/* The fields every point type has, at a different place in each struct;
 * false when field is not one of them. count is NULL for number points. */
static bool point_common(val *v, int field, ot_keyvalue **attrs, size_t n_attrs, uint64_t start,
                         uint64_t time, uint32_t flags, const uint64_t *count)
{
    switch (field) {
    case F_ATTRS: v->t = T_MAP, v->u.m.kv = attrs, v->u.m.n = n_attrs; return true;
    case F_START: set_int(v, (int64_t)start); return true;
    case F_TIME: set_int(v, (int64_t)time); return true;
    case F_FLAGS: set_int(v, flags); return true;
    case F_COUNT: /* number points have none: nil */
        if (count)
            set_int(v, (int64_t)*count);
        return true;
    default: return false;
    }
}

static void point_field(const ot_metric *m, const void *pt, int field, val *v)
{
    if (!m || !pt)
        return;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        const ot_number_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, NULL))
            break;
        switch (field) {
        case F_VALUE_DOUBLE:
            if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
                v->t = T_DBL, v->u.d = p->as_double;
            break;
        case F_VALUE_INT:
            if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
                set_int(v, p->as_int);
            break;
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        const ot_histogram_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, &p->count))
            break;
        switch (field) {
        case F_SUM:
            if (p->sum_present_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM)
                v->t = T_DBL, v->u.d = p->sum;
            break;
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        const ot_exphistogram_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, &p->count))
            break;
        switch (field) {
        case F_SUM:
            if (p->sum_present_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM)
                v->t = T_DBL, v->u.d = p->sum;
            break;
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: {
        const ot_summary_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, &p->count))
            break;
        switch (field) {
        case F_SUM: v->t = T_DBL, v->u.d = p->sum; break;
        }
        break;
    }
    default:
        break;
    }
}

static void span_field(const ot_span *s, int field, val *v, char *scratch)
{
    if (!s)
        return;
    switch (field) {
    case F_TRACE_ID: set_bytes(v, &s->trace_id); break;
    case F_SPAN_ID: set_bytes(v, &s->span_id); break;
    case F_PARENT_SPAN_ID: set_bytes(v, &s->parent_span_id); break;
    case F_TRACE_ID_STR: set_hex(v, &s->trace_id, scratch); break;
    case F_SPAN_ID_STR: set_hex(v, &s->span_id, scratch); break;
    case F_PARENT_SPAN_ID_STR: set_hex(v, &s->parent_span_id, scratch); break;
    case F_TRACE_STATE: set_str(v, s->trace_state); break;
    case F_NAME: set_str(v, s->name); break;
    case F_KIND: set_int(v, s->kind); break;
    case F_START: set_int(v, (int64_t)s->start_time_unix_nano); break;
    case F_END: set_int(v, (int64_t)s->end_time_unix_nano); break;
    case F_ATTRS: v->t = T_MAP, v->u.m.kv = s->attributes, v->u.m.n = s->n_attributes; break;
    case F_DROPPED_ATTRS: set_int(v, s->dropped_attributes_count); break;
    case F_DROPPED_EVENTS: set_int(v, s->dropped_events_count); break;
    case F_DROPPED_LINKS: set_int(v, s->dropped_links_count); break;
    case F_STATUS_CODE: set_int(v, s->status ? s->status->code : 0); break;
    case F_STATUS_MSG: set_str(v, s->status ? s->status->message : ""); break;
    case F_FLAGS: set_int(v, s->flags); break;
    }
}

static void log_field(const ot_log_record *l, int field, val *v, char *scratch)
{
    if (!l)
        return;
    switch (field) {
    case F_TIME: set_int(v, (int64_t)l->time_unix_nano); break;
    case F_OBSERVED: set_int(v, (int64_t)l->observed_time_unix_nano); break;
    case F_SEV_NUM: set_int(v, l->severity_number); break;
    case F_SEV_TEXT: set_str(v, l->severity_text); break;
    case F_BODY: any_to_val(l->body, v); break;
    case F_ATTRS: v->t = T_MAP, v->u.m.kv = l->attributes, v->u.m.n = l->n_attributes; break;
    case F_DROPPED_ATTRS: set_int(v, l->dropped_attributes_count); break;
    case F_FLAGS: set_int(v, l->flags); break;
    case F_TRACE_ID: set_bytes(v, &l->trace_id); break;
    case F_SPAN_ID: set_bytes(v, &l->span_id); break;
    case F_TRACE_ID_STR: set_hex(v, &l->trace_id, scratch); break;
    case F_SPAN_ID_STR: set_hex(v, &l->span_id, scratch); break;
    case F_EVENT_NAME: set_str(v, l->event_name); break;
    }
}

static int eval_path(ev *e, const node *n, val *v, char *scratch)
{
    const ot_ottl_item *it = e->it;
    v->t = T_NIL;
    if (it->wire)
        return ottl_wire_path(it->wire, e->c->ctx, n, v, scratch, e->err);
    switch (n->obj) {
    case O_RESOURCE:
        if (n->field == F_ATTRS) {
            v->t = T_MAP;
            v->u.m.kv = it->resource ? it->resource->attributes : NULL;
            v->u.m.n = it->resource ? it->resource->n_attributes : 0;
        } else {
            set_int(v, it->resource ? it->resource->dropped_attributes_count : 0);
        }
        break;
    case O_SCOPE: {
        const ot_scope *s = it->scope;
        switch (n->field) {
        case F_ATTRS:
            v->t = T_MAP;
            v->u.m.kv = s ? s->attributes : NULL;
            v->u.m.n = s ? s->n_attributes : 0;
            break;
        case F_NAME: set_str(v, s ? s->name : ""); break;
        case F_VERSION: set_str(v, s ? s->version : ""); break;
        case F_DROPPED_ATTRS: set_int(v, s ? s->dropped_attributes_count : 0); break;
        }
        break;
    }
    case O_SPAN:
        span_field(it->span, n->field, v, scratch);
        break;
    case O_EVENT: {
        const ot_span_event *ee = it->event;
        if (!ee)
            break;
        switch (n->field) {
        case F_NAME: set_str(v, ee->name); break;
        case F_TIME: set_int(v, (int64_t)ee->time_unix_nano); break;
        case F_ATTRS: v->t = T_MAP, v->u.m.kv = ee->attributes, v->u.m.n = ee->n_attributes; break;
        case F_DROPPED_ATTRS: set_int(v, ee->dropped_attributes_count); break;
        }
        break;
    }
    case O_METRIC:
        if (it->metric)
            metric_field(it->metric, n->field, v);
        break;
    case O_POINT:
        point_field(it->metric, it->point, n->field, v);
        if (n->field == F_ATTRS && v->t == T_NIL)
            v->t = T_MAP, v->u.m.kv = NULL, v->u.m.n = 0;
        break;
    case O_LOG:
        log_field(it->log, n->field, v, scratch);
        break;
    }
    for (size_t i = 0; i < n->nkeys; i++) {
        const pkey *k = &n->keys[i];
        if (v->t == T_NIL)
            return 0;
        if (v->t == T_MAP && !k->is_int) {
            any_to_val(map_get(v->u.m.kv, v->u.m.n, k->s, k->slen), v);
        } else if (v->t == T_LIST && k->is_int) {
            if ((uint64_t)k->i >= v->u.l.n)
                return ot_err_set(e->err, "%s: index %" PRId64 " out of range (%zu items)",
                                  n->path_name, k->i, v->u.l.n);
            any_to_val(v->u.l.v[k->i], v);
        } else if (k->is_int) {
            return ot_err_set(e->err, "%s: %s cannot be indexed by [%" PRId64 "]", n->path_name,
                              ottl_type_names[v->t], k->i);
        } else {
            return ot_err_set(e->err, "%s: %s cannot be indexed by [\"%s\"]", n->path_name,
                              ottl_type_names[v->t], k->s);
        }
    }
    return 0;
}

/* A float as OTTL prints one (Go's shortest 'f' format), for IsMatch. */
static size_t fmt_double(double d, char *out, size_t cap)
{
    if (isnan(d))
        return (size_t)snprintf(out, cap, "NaN");
    if (isinf(d))
        return (size_t)snprintf(out, cap, "%sInf", d > 0 ? "+" : "-");
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *ep = strchr(tmp, 'e');
    int ex = ep ? atoi(ep + 1) : 0;
    int dec = prec - 1 - ex;
    if (dec < 0 && ep) {
        /* An integer beyond the shortest digits: those digits, then zeros
         * (what %f would print is the binary value's exact expansion). */
        size_t n = 0;
        for (const char *p = tmp; p < ep && n + 1 < cap; p++)
            if (*p != '.')
                out[n++] = *p;
        for (int z = 0; z < -dec && n + 1 < cap; z++)
            out[n++] = '0';
        out[n] = '\0';
        return n;
    }
    int w = snprintf(out, cap, "%.*f", dec, d);
    return w < 0 ? 0 : (size_t)w >= cap ? cap - 1 : (size_t)w;
}

static int eval_val(ev *e, const node *n, val *v, char *scratch);

static bool vals_equal(const val *a, const val *b, int depth);

static bool any_equal(const ot_anyvalue *x, const ot_anyvalue *y, int depth)
{
    val a, b;
    any_to_val(x, &a);
    any_to_val(y, &b);
    return vals_equal(&a, &b, depth + 1);
}

static bool vals_equal(const val *a, const val *b, int depth)
{
    if (depth > 16)
        return false;
    if (ottl_numeric(a->t) && ottl_numeric(b->t)) {
        if (a->t == T_INT && b->t == T_INT)
            return a->u.i == b->u.i;
        double x = a->t == T_INT ? (double)a->u.i : a->u.d;
        double y = b->t == T_INT ? (double)b->u.i : b->u.d;
        return x == y;
    }
    if (a->t != b->t)
        return (a->t == T_NIL && b->t == T_BYTES && b->u.s.n == 0) ||
               (b->t == T_NIL && a->t == T_BYTES && a->u.s.n == 0);
    switch (a->t) {
    case T_NIL: return true;
    case T_BOOL: return a->u.b == b->u.b;
    case T_STR:
    case T_BYTES:
        return a->u.s.n == b->u.s.n && (!a->u.s.n || memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0);
    case T_LIST:
        if (a->u.l.n != b->u.l.n)
            return false;
        for (size_t i = 0; i < a->u.l.n; i++)
            if (!any_equal(a->u.l.v[i], b->u.l.v[i], depth))
                return false;
        return true;
    case T_MAP:
        if (a->u.m.n != b->u.m.n)
            return false;
        for (size_t i = 0; i < a->u.m.n; i++) {
            const ot_keyvalue *kv = a->u.m.kv[i];
            if (!kv || !kv->key)
                return false;
            const ot_anyvalue *o = map_get(b->u.m.kv, b->u.m.n, kv->key, strlen(kv->key));
            if (!o || !any_equal(kv->value, o, depth))
                return false;
        }
        return true;
    }
    return false;
}

static int compare(int op, const val *a, const val *b)
{
    if (op == OP_EQ || op == OP_NE) {
        bool eq = vals_equal(a, b, 0);
        /* NaN is not equal to itself, as in Go */
        return op == OP_EQ ? eq : !eq;
    }
    int c;
    if (ottl_numeric(a->t) && ottl_numeric(b->t)) {
        if (a->t == T_INT && b->t == T_INT) {
            c = a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
        } else {
            double x = a->t == T_INT ? (double)a->u.i : a->u.d;
            double y = b->t == T_INT ? (double)b->u.i : b->u.d;
            if (isnan(x) || isnan(y))
                return 0;
            c = x < y ? -1 : x > y;
        }
    } else if (a->t != b->t) {
        return 0;
    } else if (a->t == T_STR || a->t == T_BYTES) {
        size_t m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        c = m ? memcmp(a->u.s.p, b->u.s.p, m) : 0;
        if (c == 0)
            c = a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
        c = c < 0 ? -1 : c > 0;
    } else if (a->t == T_BOOL) {
        c = (int)a->u.b - (int)b->u.b;
    } else {
        return 0; /* nil, maps and lists have no order */
    }
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    }
    return 0;
}

static int eval_ismatch(ev *e, const node *n, char *scratch)
{
    /* Doubles print in full decimal as OTTL does: 1e-300 needs ~330 chars,
     * more than the scratch space. */
    char dbl[400];
    val v;
    if (eval_val(e, n->kids[0], &v, scratch) < 0)
        return -1;
    const char *s;
    size_t len;
    switch (v.t) {
    case T_STR: s = v.u.s.p, len = v.u.s.n; break;
    case T_INT: len = (size_t)snprintf(scratch, SCRATCH, "%" PRId64, v.u.i), s = scratch; break;
    case T_DBL: len = fmt_double(v.u.d, dbl, sizeof dbl), s = dbl; break;
    case T_BOOL: s = v.u.b ? "true" : "false", len = strlen(s); break;
    case T_BYTES: {
        if (v.u.s.n > SCRATCH / 2 - 1)
            return ot_err_set(e->err, "IsMatch: a %zu-byte value is too long to match as hex",
                              v.u.s.n);
        len = ot_hex_encode((const uint8_t *)v.u.s.p, v.u.s.n, scratch, false);
        s = scratch;
        break;
    }
    default: return 0; /* nil, and maps and lists (which OTTL would match as JSON) */
    }
    pcre2_match_data *md = thread_md();
    if (!md)
        return ot_err_set(e->err, "IsMatch: out of memory");
    int rc = pcre2_match(n->re, (PCRE2_SPTR)s, len, 0, 0, md, e->c->mctx);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    PCRE2_UCHAR msg[120];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return ot_err_set(e->err, "IsMatch: %s", (const char *)msg);
}

static int eval_fn_bool(ev *e, const node *n, char *scratch)
{
    if (n->op == FN_ISMATCH)
        return eval_ismatch(e, n, scratch);
    if (n->op == FN_ISROOTSPAN) {
        if (e->it->wire)
            return ottl_wire_is_root(e->it->wire, e->err);
        const ot_span *s = e->it->span;
        if (!s)
            return 0;
        for (size_t i = 0; i < s->parent_span_id.len; i++)
            if (s->parent_span_id.data[i])
                return 0;
        return 1;
    }
    val v;
    if (eval_val(e, n->kids[0], &v, scratch) < 0)
        return -1;
    switch (n->op) {
    case FN_ISSTRING: return v.t == T_STR;
    case FN_ISINT: return v.t == T_INT;
    case FN_ISDOUBLE: return v.t == T_DBL;
    case FN_ISBOOL: return v.t == T_BOOL;
    case FN_ISMAP: return v.t == T_MAP;
    case FN_ISLIST: return v.t == T_LIST;
    }
    return 0;
}

static int eval_val(ev *e, const node *n, val *v, char *scratch)
{
    switch (n->kind) {
    case K_LIT:
        *v = n->lit;
        return 0;
    case K_PATH:
        return eval_path(e, n, v, scratch);
    case K_FN:
        if (n->op == FN_LEN) {
            val a;
            if (eval_val(e, n->kids[0], &a, scratch) < 0)
                return -1;
            switch (a.t) {
            case T_STR: set_int(v, (int64_t)a.u.s.n); return 0;
            case T_MAP: set_int(v, (int64_t)a.u.m.n); return 0;
            case T_LIST: set_int(v, (int64_t)a.u.l.n); return 0;
            default:
                return ot_err_set(e->err, "Len: expected a string, a list or a map, found %s",
                                  ottl_type_names[a.t]);
            }
        }
        {
            int r = eval_fn_bool(e, n, scratch);
            if (r < 0)
                return -1;
            v->t = T_BOOL;
            v->u.b = r;
            return 0;
        }
    }
    v->t = T_NIL;
    return 0;
}

static int eval_bool(ev *e, const node *n)
{
    char sa[SCRATCH], sb[SCRATCH];
    switch (n->kind) {
    case K_OR:
        for (size_t i = 0; i < n->n; i++) {
            int r = eval_bool(e, n->kids[i]);
            if (r != 0)
                return r;
        }
        return 0;
    case K_AND:
        for (size_t i = 0; i < n->n; i++) {
            int r = eval_bool(e, n->kids[i]);
            if (r <= 0)
                return r;
        }
        return 1;
    case K_NOT: {
        int r = eval_bool(e, n->kids[0]);
        return r < 0 ? r : !r;
    }
    case K_CMP: {
        if (n->wire_cmp && e->it->wire) {
            int r = ottl_wire_cmp(e->it->wire, e->c->ctx, n);
            if (r >= 0)
                return r;
        }
        val a, b;
        if (eval_val(e, n->kids[0], &a, sa) < 0 || eval_val(e, n->kids[1], &b, sb) < 0)
            return -1;
        return compare(n->op, &a, &b);
    }
    case K_TEST: {
        const node *k = n->kids[0];
        if (k->kind == K_LIT)
            return k->lit.u.b;
        return eval_fn_bool(e, k, sa);
    }
    }
    return 0;
}

int ot_ottl_eval(const ot_ottl_cond *c, const ot_ottl_item *it, ot_err *err)
{
    ev e = {it, c, err};
    return eval_bool(&e, c->root);
}
