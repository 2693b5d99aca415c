/* tags.c: what every Datadog encoder needs from an OTLP resource and its
 * attributes: the host, the unified service tags (env, service, version),
 * attributes as "key:value" tags, values as text, ids as Datadog's 64-bit
 * integers; and the item lists the encoders write into. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "dd.h"

/* ---- item lists ------------------------------------------------------------ */

void dd_items_clear(dd_items *it)
{
    ot_buf_reset(&it->data);
    it->n = 0;
}

void dd_items_reset(dd_items *it)
{
    dd_items_clear(it);
    it->points = 0;
    it->stopped = false;
}

void dd_items_free(dd_items *it)
{
    ot_buf_free(&it->data);
    free(it->end);
    memset(it, 0, sizeof *it);
}

int dd_items_close(dd_items *it)
{
    if (it->data.oom || it->stopped)
        return -1;
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 64;
        size_t *e = realloc(it->end, cap * sizeof *e);
        if (!e)
            return -1;
        it->end = e;
        it->cap = cap;
    }
    it->end[it->n++] = it->data.len;
    if (it->flush && (it->data.len >= it->flush_at || it->n >= it->flush_items) &&
        it->flush(it->flush_ctx, it) != 0) {
        it->stopped = true;
        return -1;
    }
    return 0;
}

void dd_items_abandon(dd_items *it)
{
    it->data.len = dd_item_start(it, it->n);
}

/* ---- tags -------------------------------------------------------------------- */

void dd_tags_reset(dd_tags *t)
{
    ot_buf_reset(&t->text);
    t->n = 0;
}

void dd_tags_free(dd_tags *t)
{
    ot_buf_free(&t->text);
    free(t->end);
    memset(t, 0, sizeof *t);
}

void dd_tags_truncate(dd_tags *t, size_t n)
{
    if (n >= t->n)
        return;
    t->n = n;
    t->text.len = n ? t->end[n - 1] : 0;
}

/* Datadog keeps 200 characters of a tag. */
#define TAG_MAX 200

int dd_tags_add(dd_tags *t, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        size_t *e = realloc(t->end, cap * sizeof *e);
        if (!e)
            return -1;
        t->end = e;
        t->cap = cap;
    }
    size_t start = t->text.len;
    ot_buf_append(&t->text, key, klen);
    if (val) {
        ot_buf_putc(&t->text, ':');
        ot_buf_append(&t->text, val, vlen);
    }
    if (t->text.oom)
        return -1;
    if (t->text.len - start > TAG_MAX) {
        size_t cut = start + TAG_MAX;
        while (cut > start && ((unsigned char)t->text.data[cut] & 0xc0) == 0x80)
            cut--; /* not inside a UTF-8 sequence */
        t->text.len = cut;
    }
    t->end[t->n++] = t->text.len;
    return 0;
}

int dd_tags_add_attrs(dd_tags *t, ot_keyvalue *const *kv, size_t n)
{
    ot_buf v = OT_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!kv[i]->key)
            continue;
        ot_buf_reset(&v);
        dd_value_text(&v, kv[i]->value);
        if (v.oom)
            rc = -1;
        else
            rc = dd_tags_add(t, kv[i]->key, strlen(kv[i]->key), v.data ? v.data : "", v.len);
    }
    ot_buf_free(&v);
    return rc;
}

/* ---- values ------------------------------------------------------------------ */

static void put_u(ot_buf *out, uint64_t u, bool neg)
{
    char t[24];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        t[--i] = '-';
    ot_buf_append(out, t + i, sizeof t - i);
}

void dd_put_uint(ot_buf *out, uint64_t v)
{
    put_u(out, v, false);
}

void dd_put_int(ot_buf *out, int64_t v)
{
    put_u(out, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void dd_json_double(ot_buf *out, double v)
{
    if (!isfinite(v)) { /* JSON has no NaN; callers drop such points first */
        ot_buf_puts(out, "0");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        if (v == 0 && signbit(v))
            ot_buf_puts(out, "-0");
        else
            dd_put_int(out, (int64_t)v);
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    ot_buf_puts(out, tmp);
}

static void json_value(ot_buf *out, const ot_anyvalue *v);

static void json_kvlist(ot_buf *out, ot_keyvalue *const *kv, size_t n)
{
    ot_buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            ot_buf_putc(out, ',');
        const char *k = kv[i]->key ? kv[i]->key : "";
        ot_buf_json_str(out, k, strlen(k));
        ot_buf_putc(out, ':');
        json_value(out, kv[i]->value);
    }
    ot_buf_putc(out, '}');
}

static void json_value(ot_buf *out, const ot_anyvalue *v)
{
    if (!v) {
        ot_buf_puts(out, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        ot_buf_json_str(out, v->string_value, strlen(v->string_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        ot_buf_putc(out, '[');
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
            if (i)
                ot_buf_putc(out, ',');
            json_value(out, v->array_value->values[i]);
        }
        ot_buf_putc(out, ']');
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (v->kvlist_value)
            json_kvlist(out, v->kvlist_value->values, v->kvlist_value->n_values);
        else
            ot_buf_puts(out, "{}");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        /* as OTLP JSON writes bytes: base64 */
        size_t n = ot_base64_len(v->bytes_value.len, 0);
        ot_buf_putc(out, '"');
        if (ot_buf_reserve(out, n + 1) == 0) {
            out->len += ot_base64_encode(v->bytes_value.data, v->bytes_value.len,
                                         out->data + out->len, 0);
            out->data[out->len] = '\0';
        }
        ot_buf_putc(out, '"');
        break;
    }
    default: {
        ot_buf tmp = OT_BUF_INIT;
        dd_value_text(&tmp, v);
        ot_buf_append(out, tmp.data ? tmp.data : "null", tmp.data ? tmp.len : 4);
        ot_buf_free(&tmp);
    }
    }
}

void dd_value_text(ot_buf *out, const ot_anyvalue *v)
{
    if (!v)
        return;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        ot_buf_puts(out, v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        ot_buf_puts(out, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        dd_put_int(out, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value))
            ot_buf_puts(out, "NaN");
        else if (isinf(v->double_value))
            ot_buf_puts(out, v->double_value > 0 ? "Infinity" : "-Infinity");
        else
            dd_json_double(out, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
        break;
    default:
        json_value(out, v);
    }
}

const char *dd_attr_str(ot_keyvalue *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i]->key && strcmp(kv[i]->key, key) == 0 && kv[i]->value &&
            kv[i]->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            return kv[i]->value->string_value;
    return NULL;
}

uint64_t dd_id64(const ProtobufCBinaryData *id, bool high)
{
    size_t at;
    if (id->len == 16)
        at = high ? 0 : 8;
    else if (id->len == 8 && !high)
        at = 0;
    else
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | id->data[at + i];
    return v;
}

/* ---- resources ------------------------------------------------------------- */

/* Resource attributes that name the host, in the order Datadog documents
 * for OTLP (its own conventions first); `hostname` is the fallback. */
static const char *const host_keys[] = {"host", "datadog.host.name", "host.name", "k8s.node.name",
                                        NULL};

static bool is_host_key(const char *k)
{
    for (size_t i = 0; host_keys[i]; i++)
        if (strcmp(k, host_keys[i]) == 0)
            return true;
    return false;
}

int dd_res_load(dd_res *r, const ot_resource *res, const dd_opts *o)
{
    dd_tags_reset(&r->tags);
    ot_keyvalue *const *kv = res ? res->attributes : NULL;
    size_t n = res ? res->n_attributes : 0;
    r->host = NULL;
    for (size_t i = 0; host_keys[i] && !r->host; i++) {
        const char *h = dd_attr_str(kv, n, host_keys[i]);
        if (h && *h)
            r->host = h;
    }
    if (!r->host)
        r->host = o->hostname;
    r->service = dd_attr_str(kv, n, "service.name");
    r->env = dd_attr_str(kv, n, "deployment.environment.name");
    if (!r->env)
        r->env = dd_attr_str(kv, n, "deployment.environment");
    r->version = dd_attr_str(kv, n, "service.version");
    if (r->env && dd_tags_add(&r->tags, "env", 3, r->env, strlen(r->env)) < 0)
        return -1;
    if (r->service && dd_tags_add(&r->tags, "service", 7, r->service, strlen(r->service)) < 0)
        return -1;
    if (r->version && dd_tags_add(&r->tags, "version", 7, r->version, strlen(r->version)) < 0)
        return -1;
    ot_buf v = OT_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *k = kv[i]->key;
        if (!k || is_host_key(k) || strcmp(k, "service.name") == 0 ||
            strcmp(k, "service.version") == 0 || strcmp(k, "deployment.environment") == 0 ||
            strcmp(k, "deployment.environment.name") == 0)
            continue;
        ot_buf_reset(&v);
        dd_value_text(&v, kv[i]->value);
        rc = v.oom ? -1 : dd_tags_add(&r->tags, k, strlen(k), v.data ? v.data : "", v.len);
    }
    ot_buf_free(&v);
    return rc;
}

void dd_res_free(dd_res *r)
{
    dd_tags_free(&r->tags);
}
