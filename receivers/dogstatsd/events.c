/* events.c: DogStatsD events (_e) and service checks (_sc) as OTLP log
 * records. They are not aggregated: each becomes one record with its
 * title/text or message as body, its fields as dogstatsd.event.* or
 * dogstatsd.service_check.* attributes, its tags as attributes (resource
 * tags to the resource, as for metrics) and a severity from the alert
 * type or status. */
#include <stdlib.h>
#include <string.h>

#include "dsdr.h"

#define L_(x) OPENTELEMETRY__PROTO__LOGS__V1__##x
#define C_(x) OPENTELEMETRY__PROTO__COMMON__V1__##x

static ot_anyvalue *str_val(ot_arena *ar, const char *p, size_t n)
{
    ot_anyvalue *v = ot_arena_alloc(ar, sizeof *v);
    if (!v)
        return NULL;
    *v = (ot_anyvalue)C_(ANY_VALUE__INIT);
    v->value_case = C_(ANY_VALUE__VALUE_STRING_VALUE);
    v->string_value = ot_arena_strndup(ar, p ? p : "", n);
    return v->string_value ? v : NULL;
}

static int add_kv(ot_arena *ar, ot_keyvalue **kv, size_t *n, const char *k, size_t kn,
                  ot_anyvalue *v)
{
    ot_keyvalue *e = ot_arena_alloc(ar, sizeof *e);
    if (!e || !v)
        return -1;
    *e = (ot_keyvalue)C_(KEY_VALUE__INIT);
    if (!(e->key = ot_arena_strndup(ar, k, kn)))
        return -1;
    e->value = v;
    kv[(*n)++] = e;
    return 0;
}

static int add_str(ot_arena *ar, ot_keyvalue **kv, size_t *n, const char *k, ot_dsd_str v)
{
    if (!v.n)
        return 0;
    return add_kv(ar, kv, n, k, strlen(k), str_val(ar, v.p, v.n));
}

static int add_z(ot_arena *ar, ot_keyvalue **kv, size_t *n, const char *k, const char *v)
{
    return add_kv(ar, kv, n, k, strlen(k), str_val(ar, v, strlen(v)));
}

static ot_dsd_str unescape(dsdr_logs *l, ot_dsd_str s)
{
    if (s.n + 1 > l->unesc_cap) {
        char *p = realloc(l->unesc, s.n + 1);
        if (!p)
            return (ot_dsd_str){NULL, 0};
        l->unesc = p;
        l->unesc_cap = s.n + 1;
    }
    return (ot_dsd_str){l->unesc, ot_dsd_unescape(s, l->unesc)};
}

int ot_dsdr_logs_add(dsdr_logs *l, const ot_dsd_item *it, int64_t now_unix_ns)
{
    if (!l->ar && !(l->ar = ot_arena_new(16 * 1024)))
        return -1;
    if (!l->res && (!(l->res = malloc((OT_DSD_MAX_TAGS + 2) * sizeof *l->res)) ||
                    !(l->attrs = malloc((OT_DSD_MAX_TAGS + 1) * sizeof *l->attrs))))
        return -1;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        void **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    ot_arena *ar = l->ar;
    size_t nres, nat;
    ot_dsdr_split_tags(it, l->res, &nres, l->attrs, &nat);
    ot_resource_logs *rl = ot_arena_alloc(ar, sizeof *rl);
    ot_resource *res = ot_arena_alloc(ar, sizeof *res);
    ot_scope_logs *sl = ot_arena_alloc(ar, sizeof *sl);
    ot_scope_logs **sls = ot_arena_alloc(ar, sizeof *sls);
    ot_scope *scope = ot_arena_alloc(ar, sizeof *scope);
    ot_log_record *rec = ot_arena_alloc(ar, sizeof *rec);
    ot_log_record **recs = ot_arena_alloc(ar, sizeof *recs);
    ot_keyvalue **ra = ot_arena_alloc(ar, (nres + 1) * sizeof *ra);
    ot_keyvalue **at = ot_arena_alloc(ar, (nat + 8) * sizeof *at);
    if (!rl || !res || !sl || !sls || !scope || !rec || !recs || !ra || !at)
        return -1;
    *rl = (ot_resource_logs)L_(RESOURCE_LOGS__INIT);
    *res = (ot_resource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    *sl = (ot_scope_logs)L_(SCOPE_LOGS__INIT);
    *scope = (ot_scope)C_(INSTRUMENTATION_SCOPE__INIT);
    *rec = (ot_log_record)L_(LOG_RECORD__INIT);
    scope->name = "otelite/dogstatsd";
    /* h: is the host the event is about: the resource's host.name */
    bool host_done = false;
    for (size_t i = 0; i < nres; i++) {
        ot_dsd_str v = l->res[i].v;
        if (it->host.n && l->res[i].k.n == 9 && memcmp(l->res[i].k.p, "host.name", 9) == 0) {
            v = it->host;
            host_done = true;
        }
        if (add_kv(ar, ra, &res->n_attributes, l->res[i].k.p, l->res[i].k.n,
                   str_val(ar, v.p, v.n)) < 0)
            return -1;
    }
    if (it->host.n && !host_done && add_str(ar, ra, &res->n_attributes, "host.name", it->host) < 0)
        return -1;
    res->attributes = ra;
    size_t na = 0;
    for (size_t i = 0; i < nat; i++)
        if (add_kv(ar, at, &na, l->attrs[i].k.p, l->attrs[i].k.n,
                   str_val(ar, l->attrs[i].v.p, l->attrs[i].v.n)) < 0)
            return -1;
    rec->observed_time_unix_nano = (uint64_t)now_unix_ns;
    rec->time_unix_nano =
        it->has_timestamp ? (uint64_t)it->timestamp * 1000000000ull : (uint64_t)now_unix_ns;
    if (it->kind == OT_DSD_EVENT) {
        const ot_dsd_event *e = &it->u.event;
        ot_dsd_str text = unescape(l, e->text);
        if (e->text.n && !text.p)
            return -1;
        /* the body is what a person reads: the title, then the text */
        char *body = ot_arena_alloc(ar, e->title.n + 1 + text.n + 1);
        if (!body)
            return -1;
        memcpy(body, e->title.p, e->title.n);
        size_t bn = e->title.n;
        if (text.n) {
            body[bn++] = '\n';
            memcpy(body + bn, text.p, text.n);
            bn += text.n;
        }
        body[bn] = 0;
        if (!(rec->body = str_val(ar, body, bn)))
            return -1;
        static const char *const alerts[] = {"info", "info", "warning", "error", "success"};
        static const int sev[] = {L_(SEVERITY_NUMBER__SEVERITY_NUMBER_INFO),
                                  L_(SEVERITY_NUMBER__SEVERITY_NUMBER_INFO),
                                  L_(SEVERITY_NUMBER__SEVERITY_NUMBER_WARN),
                                  L_(SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR),
                                  L_(SEVERITY_NUMBER__SEVERITY_NUMBER_INFO)};
        rec->severity_number = sev[e->alert_type];
        rec->severity_text = (char *)alerts[e->alert_type];
        if (add_str(ar, at, &na, "dogstatsd.event.title", e->title) < 0 ||
            add_z(ar, at, &na, "dogstatsd.event.alert_type", alerts[e->alert_type]) < 0 ||
            add_z(ar, at, &na, "dogstatsd.event.priority",
                  e->priority == OT_DSD_PRIO_LOW ? "low" : "normal") < 0 ||
            add_str(ar, at, &na, "dogstatsd.event.aggregation_key", e->aggregation_key) < 0 ||
            add_str(ar, at, &na, "dogstatsd.event.source_type", e->source_type) < 0)
            return -1;
    } else {
        const ot_dsd_service_check *sc = &it->u.sc;
        static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
        static const int sev[] = {L_(SEVERITY_NUMBER__SEVERITY_NUMBER_INFO),
                                  L_(SEVERITY_NUMBER__SEVERITY_NUMBER_WARN),
                                  L_(SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR),
                                  L_(SEVERITY_NUMBER__SEVERITY_NUMBER_UNSPECIFIED)};
        int s = sc->status >= 0 && sc->status <= 3 ? sc->status : 3;
        ot_dsd_str msg = unescape(l, sc->message);
        if (sc->message.n && !msg.p)
            return -1;
        if (!(rec->body = str_val(ar, msg.p, msg.n)))
            return -1;
        rec->severity_number = sev[s];
        rec->severity_text = (char *)names[s];
        ot_anyvalue *st = ot_arena_alloc(ar, sizeof *st);
        if (!st)
            return -1;
        *st = (ot_anyvalue)C_(ANY_VALUE__INIT);
        st->value_case = C_(ANY_VALUE__VALUE_INT_VALUE);
        st->int_value = s;
        if (add_str(ar, at, &na, "dogstatsd.service_check.name", sc->name) < 0 ||
            add_kv(ar, at, &na, "dogstatsd.service_check.status", 30, st) < 0 ||
            add_z(ar, at, &na, "dogstatsd.service_check.status_text", names[s]) < 0)
            return -1;
    }
    rec->attributes = at;
    rec->n_attributes = na;
    recs[0] = rec;
    sl->scope = scope;
    sl->n_log_records = 1;
    sl->log_records = recs;
    sls[0] = sl;
    rl->resource = res;
    rl->n_scope_logs = 1;
    rl->scope_logs = sls;
    l->v[l->n++] = rl;
    return 0;
}

ot_batch *ot_dsdr_logs_take(dsdr_logs *l, size_t *n)
{
    *n = 0;
    if (!l->n)
        return NULL;
    ot_arena *ar = l->ar;
    size_t cnt = l->n;
    l->ar = NULL;
    l->n = 0;
    ot_logs_req *req = ot_arena_alloc(ar, sizeof *req);
    ot_resource_logs **v = ot_arena_memdup(ar, l->v, cnt * sizeof *v);
    if (!req || !v) {
        ot_arena_free(ar);
        return NULL;
    }
    *req = (ot_logs_req)OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req->resource_logs = v;
    req->n_resource_logs = cnt;
    ot_batch *b = ot_batch_adopt(OT_LOGS, ar, &req->base);
    if (b)
        *n = cnt;
    return b;
}

void ot_dsdr_logs_free(dsdr_logs *l)
{
    ot_arena_free(l->ar);
    free(l->v);
    free(l->unesc);
    free(l->res);
    free(l->attrs);
    memset(l, 0, sizeof *l);
}
