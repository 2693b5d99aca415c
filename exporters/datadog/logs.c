/* logs.c: OTLP log records as /api/v2/logs items, one JSON object each:
 * message (the body), status (from the severity), timestamp (ms),
 * hostname, service, ddsource, ddtags (the resource's tags), the trace
 * correlation ids Datadog joins on (dd.trace_id, dd.span_id: the low 64
 * bits in decimal), and every record and resource attribute at the top
 * level, nested maps flattened with dots. An entry over Datadog's 1 MB is
 * cut in its message. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/codec.h"
#include "dd.h"

/* Names the fields above own: an attribute of the same name is not
 * written a second time. */
static const char *const reserved[] = {"message", "status", "timestamp", "hostname", "service",
                                       "ddsource", "ddtags", "dd.trace_id", "dd.span_id",
                                       "otel.trace_id", "otel.span_id", "otel.severity_number",
                                       "otel.severity_text", NULL};

static bool is_reserved(const char *k, size_t n)
{
    for (size_t i = 0; reserved[i]; i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], k, n) == 0)
            return true;
    return false;
}

static const char *status_of(const ot_log_record *r)
{
    int s = (int)r->severity_number;
    if (s >= 1 && s <= 4)
        return "trace";
    if (s >= 5 && s <= 8)
        return "debug";
    if (s >= 9 && s <= 12)
        return "info";
    if (s >= 13 && s <= 16)
        return "warn";
    if (s >= 17 && s <= 20)
        return "error";
    if (s >= 21 && s <= 24)
        return "fatal";
    return NULL;
}

typedef struct lenc {
    const dd_opts *o;
    ot_buf *b;
    ot_buf path;  /* the dotted name being written */
    ot_buf value; /* scratch for a value's text */
    ot_buf msg;
    int fields;   /* attributes written, for the key check of resource ones */
} lenc;

static void field(lenc *e, const ot_anyvalue *v, int depth)
{
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE &&
        v->kvlist_value && depth < 16) {
        size_t at = e->path.len;
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            const ot_keyvalue *kv = v->kvlist_value->values[i];
            if (!kv->key)
                continue;
            e->path.len = at;
            ot_buf_putc(&e->path, '.');
            ot_buf_puts(&e->path, kv->key);
            field(e, kv->value, depth + 1);
        }
        e->path.len = at;
        if (e->path.data)
            e->path.data[at] = '\0';
        return;
    }
    if (!e->path.data || is_reserved(e->path.data, e->path.len))
        return;
    ot_buf_putc(e->b, ',');
    ot_buf_json_str(e->b, e->path.data, e->path.len);
    ot_buf_putc(e->b, ':');
    if (!v) {
        ot_buf_puts(e->b, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        dd_put_int(e->b, v->int_value);
        return;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        ot_buf_puts(e->b, v->bool_value ? "true" : "false");
        return;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (v->double_value == v->double_value && v->double_value - v->double_value == 0) {
            dd_json_double(e->b, v->double_value);
            return;
        }
        break; /* NaN and infinities as text */
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        ot_buf_reset(&e->value);
        dd_value_text(&e->value, v); /* JSON already */
        ot_buf_append(e->b, e->value.data ? e->value.data : "[]", e->value.data ? e->value.len : 2);
        return;
    default:
        break;
    }
    ot_buf_reset(&e->value);
    dd_value_text(&e->value, v);
    ot_buf_json_str(e->b, e->value.data ? e->value.data : "", e->value.len);
}

static void attrs(lenc *e, ot_keyvalue *const *kv, size_t n, ot_keyvalue *const *skip,
                  size_t n_skip)
{
    for (size_t i = 0; i < n; i++) {
        if (!kv[i]->key)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n_skip && !dup; j++)
            dup = skip[j]->key && strcmp(skip[j]->key, kv[i]->key) == 0;
        if (dup)
            continue;
        ot_buf_reset(&e->path);
        ot_buf_puts(&e->path, kv[i]->key);
        field(e, kv[i]->value, 0);
    }
}

static void str_field(ot_buf *b, const char *name, const char *v, size_t n)
{
    ot_buf_puts(b, ",\"");
    ot_buf_puts(b, name);
    ot_buf_puts(b, "\":");
    ot_buf_json_str(b, v, n);
}

/* Cuts n bytes to at most max without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

static void record(lenc *e, const dd_res *res, const ot_resource *rsc, const ot_log_record *r,
                   size_t msg_max, bool with_attrs)
{
    ot_buf *b = e->b;
    size_t mlen = utf8_cut(e->msg.data ? e->msg.data : "", e->msg.len, msg_max);
    ot_buf_puts(b, "{\"message\":");
    ot_buf_json_str(b, e->msg.data ? e->msg.data : "", mlen);
    const char *st = status_of(r);
    if (st)
        str_field(b, "status", st, strlen(st));
    else if (r->severity_text && *r->severity_text)
        str_field(b, "status", r->severity_text, strlen(r->severity_text));
    else
        ot_buf_puts(b, ",\"status\":\"info\"");
    uint64_t t = r->time_unix_nano ? r->time_unix_nano : r->observed_time_unix_nano;
    long long ms = t ? (long long)(t / 1000000ull)
                     : (long long)(e->o->now_s ? e->o->now_s : (int64_t)time(NULL)) * 1000;
    ot_buf_puts(b, ",\"timestamp\":");
    dd_put_int(b, ms);
    if (res->host)
        str_field(b, "hostname", res->host, strlen(res->host));
    const char *svc = res->service ? res->service
                                   : dd_attr_str(r->attributes, r->n_attributes, "service.name");
    if (svc)
        str_field(b, "service", svc, strlen(svc));
    const char *src = dd_attr_str(r->attributes, r->n_attributes, "ddsource");
    if (!src && rsc)
        src = dd_attr_str(rsc->attributes, rsc->n_attributes, "ddsource");
    if (!src)
        src = "otlp_log_ingestion";
    str_field(b, "ddsource", src, strlen(src));
    ot_buf_puts(b, ",\"ddtags\":\"");
    for (size_t i = 0; i < res->tags.n; i++) {
        size_t len;
        const char *tg = dd_tag(&res->tags, i, &len);
        if (i)
            ot_buf_putc(b, ',');
        /* inside the quotes already: escape without the quotes */
        ot_buf tmp = OT_BUF_INIT;
        ot_buf_json_str(&tmp, tg, len);
        if (tmp.len >= 2)
            ot_buf_append(b, tmp.data + 1, tmp.len - 2);
        ot_buf_free(&tmp);
    }
    ot_buf_putc(b, '"');
    if (r->trace_id.len == 16) {
        char hex[33];
        ot_buf_puts(b, ",\"dd.trace_id\":\"");
        dd_put_uint(b, dd_id64(&r->trace_id, false));
        ot_buf_putc(b, '"');
        ot_hex_encode(r->trace_id.data, 16, hex, false);
        hex[32] = '\0';
        str_field(b, "otel.trace_id", hex, 32);
    }
    if (r->span_id.len == 8) {
        char hex[17];
        ot_buf_puts(b, ",\"dd.span_id\":\"");
        dd_put_uint(b, dd_id64(&r->span_id, false));
        ot_buf_putc(b, '"');
        ot_hex_encode(r->span_id.data, 8, hex, false);
        hex[16] = '\0';
        str_field(b, "otel.span_id", hex, 16);
    }
    if (r->severity_number) {
        ot_buf_puts(b, ",\"otel.severity_number\":\"");
        dd_put_int(b, r->severity_number);
        ot_buf_putc(b, '"');
    }
    if (r->severity_text && *r->severity_text)
        str_field(b, "otel.severity_text", r->severity_text, strlen(r->severity_text));
    if (with_attrs) {
        attrs(e, r->attributes, r->n_attributes, NULL, 0);
        if (rsc)
            attrs(e, rsc->attributes, rsc->n_attributes, r->attributes, r->n_attributes);
    }
    ot_buf_putc(b, '}');
}

/* Bytes a message prefix takes inside a JSON string (invalid UTF-8 is
 * not counted as the 3 bytes of its U+FFFD: the loop below catches it). */
static size_t escaped_prefix(const char *s, size_t n, size_t budget)
{
    size_t used = 0, i = 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t cost = c < 0x20 ? 6 : (c == '"' || c == '\\') ? 2 : 1;
        if (used + cost > budget)
            break;
        used += cost;
    }
    return i;
}

/* Writes the record again with its message cut so the entry fits in
 * DD_LOG_MAX_BYTES; without its attributes if even that is not enough. */
static void refit(lenc *e, dd_items *logs, size_t start, const dd_res *res,
                  const ot_resource *rsc, const ot_log_record *r)
{
    dd_items_abandon(logs);
    record(e, res, rsc, r, 0, true);
    size_t other = logs->data.len - start;
    bool attrs_too = other + 64 < DD_LOG_MAX_BYTES;
    if (!attrs_too) {
        dd_items_abandon(logs);
        record(e, res, rsc, r, 0, false);
        other = logs->data.len - start;
    }
    size_t budget = other + 64 < DD_LOG_MAX_BYTES ? DD_LOG_MAX_BYTES - other - 64 : 0;
    size_t keep = escaped_prefix(e->msg.data ? e->msg.data : "", e->msg.len, budget);
    for (int tries = 0; tries < 16; tries++) {
        dd_items_abandon(logs);
        record(e, res, rsc, r, keep, attrs_too);
        if (logs->data.len - start <= DD_LOG_MAX_BYTES || keep == 0)
            return;
        keep = keep / 4 * 3;
    }
}

static int one(lenc *e, dd_items *logs, const dd_res *res, const ot_resource *rsc,
               const ot_log_record *r)
{
    ot_buf_reset(&e->msg);
    dd_value_text(&e->msg, r->body);
    size_t start = logs->data.len;
    record(e, res, rsc, r, SIZE_MAX, true);
    if (logs->data.len - start > DD_LOG_MAX_BYTES)
        refit(e, logs, start, res, rsc, r);
    if (logs->data.oom || dd_items_close(logs) < 0)
        return -1;
    logs->points++;
    return 0;
}

static void lenc_free(lenc *e)
{
    ot_buf_free(&e->path);
    ot_buf_free(&e->value);
    ot_buf_free(&e->msg);
}

int dd_logs_encode(const ot_logs_req *req, const dd_opts *o, dd_items *logs, ot_err *err)
{
    lenc e = {.o = o, .b = &logs->data};
    dd_res res = {0};
    int rc = 0;
    for (size_t i = 0; i < req->n_resource_logs && rc == 0; i++) {
        const ot_resource_logs *rl = req->resource_logs[i];
        if (dd_res_load(&res, rl->resource, o) < 0) {
            rc = -1;
            break;
        }
        for (size_t s = 0; s < rl->n_scope_logs && rc == 0; s++) {
            const ot_scope_logs *sl = rl->scope_logs[s];
            for (size_t j = 0; j < sl->n_log_records && rc == 0; j++)
                rc = one(&e, logs, &res, rl->resource, sl->log_records[j]);
        }
    }
    dd_res_free(&res);
    lenc_free(&e);
    if (rc < 0)
        ot_err_set(err, "out of memory");
    return rc;
}

typedef struct wlogs {
    lenc e;
    dd_items *logs;
    dd_res res;
    size_t ri;
    bool loaded;
    ot_arena *chunk;
    ot_err *err;
} wlogs;

static int wire_record(void *ctx, const ot_resource *rsc, size_t ri, const ot_scope *scope,
                       const uint8_t *leaf, size_t len)
{
    (void)scope;
    wlogs *w = ctx;
    if (!w->loaded || ri != w->ri) {
        if (dd_res_load(&w->res, rsc, w->e.o) < 0)
            return ot_err_set(w->err, "out of memory");
        w->ri = ri;
        w->loaded = true;
    }
    ot_arena_reset(w->chunk);
    const ot_log_record *r =
        opentelemetry__proto__logs__v1__log_record__unpack(ot_arena_pb_allocator(w->chunk), len, leaf);
    if (!r)
        return ot_err_set(w->err, "a log record does not decode");
    if (one(&w->e, w->logs, &w->res, rsc, r) < 0)
        return ot_err_set(w->err, "out of memory");
    return 0;
}

int dd_logs_encode_wire(const uint8_t *wire, size_t len, const dd_opts *o, dd_items *logs,
                        ot_arena *keep, ot_arena *chunk, ot_err *err)
{
    wlogs w = {.e = {.o = o, .b = &logs->data}, .logs = logs, .chunk = chunk, .err = err};
    int rc = dd_wire_leaves(OT_LOGS, wire, len, keep, wire_record, &w, err);
    dd_res_free(&w.res);
    lenc_free(&w.e);
    return rc == 2 ? -1 : rc;
}
