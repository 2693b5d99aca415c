/* promname.c: the OpenTelemetry → Prometheus compatibility rules (name
 * tokens, unit and type suffixes, label sanitising, what a resource gives
 * its series) and Prometheus' own number formatting, shared by the
 * components that turn streams into Prometheus series. Kept apart so the
 * translation table can be tested on its own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/promname.h"

typedef struct unit_map {
    const char *otel, *prom;
} unit_map;

/* The main unit of a metric (before a '/'). */
static const unit_map main_units[] = {
    {"d", "days"},          {"h", "hours"},         {"min", "minutes"},   {"s", "seconds"},
    {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"},
    {"KiBy", "kibibytes"},  {"MiBy", "mebibytes"},  {"GiBy", "gibibytes"}, {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},   {"MBy", "megabytes"},   {"GBy", "gigabytes"}, {"TBy", "terabytes"},
    {"m", "meters"},        {"V", "volts"},         {"A", "amperes"},     {"J", "joules"},
    {"W", "watts"},         {"g", "grams"},         {"Cel", "celsius"},   {"Hz", "hertz"},
    {"1", ""},              {"%", "percent"},       {NULL, NULL},
};

/* The unit after a '/'. */
static const unit_map per_units[] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"}, {NULL, NULL},
};

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

typedef struct tok {
    const char *p;
    size_t n;
} tok;

#define MAX_TOKS 64

static size_t split(const char *p, size_t n, tok *t, size_t nt, size_t max)
{
    size_t i = 0;
    while (i < n && nt < max) {
        while (i < n && !is_alnum(p[i]) && p[i] != ':')
            i++;
        size_t s = i;
        while (i < n && (is_alnum(p[i]) || p[i] == ':'))
            i++;
        if (i > s)
            t[nt++] = (tok){p + s, i - s};
    }
    return nt;
}

static bool has_tok(const tok *t, size_t nt, const char *s)
{
    size_t sl = strlen(s);
    for (size_t i = 0; i < nt; i++)
        if (t[i].n == sl && memcmp(t[i].p, s, sl) == 0)
            return true;
    return false;
}

static size_t drop_tok(tok *t, size_t nt, const char *s)
{
    size_t sl = strlen(s), o = 0;
    for (size_t i = 0; i < nt; i++)
        if (!(t[i].n == sl && memcmp(t[i].p, s, sl) == 0))
            t[o++] = t[i];
    return o;
}

/* The Prometheus word of a unit: the table's, or the unit itself with its
 * invalid characters dropped; "" for annotations ({x}) and empty units. */
static void unit_word(const char *u, size_t n, const unit_map *map, char *out, size_t cap)
{
    out[0] = 0;
    while (n && u[0] == ' ')
        u++, n--;
    while (n && u[n - 1] == ' ')
        n--;
    if (!n || memchr(u, '{', n) || memchr(u, '}', n))
        return;
    for (size_t i = 0; map[i].otel; i++)
        if (strlen(map[i].otel) == n && memcmp(map[i].otel, u, n) == 0) {
            snprintf(out, cap, "%s", map[i].prom);
            return;
        }
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        if (is_alnum(u[i]) || u[i] == '_')
            out[o++] = u[i];
    out[o] = 0;
}

void ot_prom_metric_name(ot_buf *out, const char *ns, const char *name, size_t name_len,
                    const char *unit, size_t unit_len, ot_mstore_type type, bool monotonic,
                    bool suffixes, ot_buf *unit_out)
{
    tok t[MAX_TOKS];
    size_t nt = 0;
    char mainw[64], perw[64];
    if (ns && *ns)
        nt = split(ns, strlen(ns), t, nt, MAX_TOKS);
    size_t name_start = nt;
    nt = split(name, name_len, t, nt, MAX_TOKS - 4);
    if (unit_out)
        ot_buf_reset(unit_out);
    if (suffixes) {
        const char *slash = memchr(unit, '/', unit_len);
        size_t main_n = slash ? (size_t)(slash - unit) : unit_len;
        unit_word(unit, main_n, main_units, mainw, sizeof mainw);
        perw[0] = 0;
        if (slash)
            unit_word(slash + 1, unit_len - main_n - 1, per_units, perw, sizeof perw);
        const tok *nm = t + name_start;
        size_t nn = nt - name_start;
        if (*mainw && !has_tok(nm, nn, mainw)) {
            t[nt++] = (tok){mainw, strlen(mainw)};
            if (unit_out)
                ot_buf_puts(unit_out, mainw);
        }
        if (*perw && !has_tok(nm, nn, perw)) {
            t[nt++] = (tok){"per", 3};
            t[nt++] = (tok){perw, strlen(perw)};
            if (unit_out) {
                if (unit_out->len)
                    ot_buf_putc(unit_out, '_');
                ot_buf_puts(unit_out, "per_");
                ot_buf_puts(unit_out, perw);
            }
        }
        if (type == OT_MSTORE_SUM && monotonic) {
            nt = drop_tok(t, nt, "total");
            t[nt++] = (tok){"total", 5};
        }
        if (type == OT_MSTORE_GAUGE && unit_len == 1 && unit[0] == '1') {
            nt = drop_tok(t, nt, "ratio");
            t[nt++] = (tok){"ratio", 5};
        }
    }
    size_t start = out->len;
    for (size_t i = 0; i < nt; i++) {
        if (i)
            ot_buf_putc(out, '_');
        ot_buf_append(out, t[i].p, t[i].n);
    }
    if (out->len == start)
        ot_buf_putc(out, '_');
    else if (!out->oom && out->data[start] >= '0' && out->data[start] <= '9') {
        ot_buf_putc(out, '_');
        if (!out->oom) {
            memmove(out->data + start + 1, out->data + start, out->len - start - 1);
            out->data[start] = '_';
        }
    }
}

void ot_prom_label_name(ot_buf *out, const char *p, size_t n)
{
    if (n == 0) {
        ot_buf_puts(out, "key_");
        return;
    }
    if (p[0] >= '0' && p[0] <= '9')
        ot_buf_puts(out, "key_");
    else if (p[0] == '_' && !(n > 1 && p[1] == '_'))
        ot_buf_puts(out, "key");
    if (ot_buf_reserve(out, n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        out->data[out->len++] = is_alnum(p[i]) || p[i] == '_' ? p[i] : '_';
}

/* u in decimal, written backwards ending at e; returns the first digit.
 * Two digits a step: a scrape writes one or two integers a series. */
static char *dec_u64(char *e, uint64_t u)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char *p = e;
    while (u >= 100) {
        const char *d = pairs + 2 * (u % 100);
        u /= 100;
        *--p = d[1];
        *--p = d[0];
    }
    if (u >= 10) {
        *--p = pairs[2 * u + 1];
        *--p = pairs[2 * u];
    } else {
        *--p = (char)('0' + u);
    }
    return p;
}

/* The digits of u: log10 from the bit length (1233/4096 is log10 2 a
 * little over), one less when u is under that power of ten. */
static inline size_t dec_len(uint64_t u)
{
    static const uint64_t p10[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull,
                                     1000000ull, 10000000ull, 100000000ull, 1000000000ull,
                                     10000000000ull, 100000000000ull, 1000000000000ull,
                                     10000000000000ull, 100000000000000ull, 1000000000000000ull,
                                     10000000000000000ull, 100000000000000000ull,
                                     1000000000000000000ull, 10000000000000000000ull};
    size_t t = (size_t)(64 - __builtin_clzll(u | 1)) * 1233 >> 12;
    return t + 1 - ((u | 1) < p10[t]);
}

/* u in decimal at out, sign first when neg (written in place, not through
 * a scratch copy); its length. */
static inline size_t dec_at(char *out, uint64_t u, bool neg)
{
    size_t n = dec_len(u) + neg;
    if (neg)
        out[0] = '-';
    dec_u64(out + n, u);
    return n;
}

size_t ot_prom_i64_str(char *out, int64_t i)
{
    return dec_at(out, i < 0 ? 0 - (uint64_t)i : (uint64_t)i, i < 0);
}

static void put_i64(ot_buf *out, int64_t i)
{
    char b[24];
    ot_buf_append(out, b, ot_prom_i64_str(b, i));
}

size_t ot_prom_value_str(char *out, double v, bool om)
{
    /* Integers first, the common case of a scrape, without printf or a
     * call to floor: NaN fails both range tests, -0 keeps its sign. */
    if (v > -9.007199254740992e15 && v < 9.007199254740992e15 && (double)(int64_t)v == v) {
        int64_t i = (int64_t)v;
        size_t n = dec_at(out, i < 0 ? 0 - (uint64_t)i : (uint64_t)i, signbit(v));
        if (om) {
            out[n++] = '.';
            out[n++] = '0';
        }
        return n;
    }
    if (isnan(v)) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 4);
        return 4;
    }
    /* %g drops trailing zeros, so the first precision that reads back the
     * same is the shortest form, as Go's 'g', -1 writes it. */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, OT_PROM_VALUE_MAX, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            break;
    }
    return n > 0 ? (size_t)n : 0;
}

void ot_prom_value(ot_buf *out, double v, bool om)
{
    char b[OT_PROM_VALUE_MAX];
    ot_buf_append(out, b, ot_prom_value_str(b, v, om));
}

static void json_str(ot_buf *out, const char *p, size_t n)
{
    ot_buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            ot_buf_putc(out, '\\'), ot_buf_putc(out, (char)c);
        else if (c < 0x20)
            ot_buf_printf(out, "\\u%04x", c);
        else
            ot_buf_putc(out, (char)c);
    }
    ot_buf_putc(out, '"');
}

static void attr_json(ot_buf *out, const ot_mstore_val *v);

static void attr_scalar(ot_buf *out, const ot_mstore_val *v, bool quote)
{
    switch (v->type) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        if (quote)
            json_str(out, v->s.p, v->s.n);
        else
            ot_buf_append(out, v->s.p, v->s.n);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        ot_buf_puts(out, v->b ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        put_i64(out, v->i);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        ot_prom_value(out, v->d, false);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        static const char hex[] = "0123456789abcdef";
        if (quote)
            ot_buf_putc(out, '"');
        for (size_t i = 0; i < v->s.n; i++) {
            ot_buf_putc(out, hex[(unsigned char)v->s.p[i] >> 4]);
            ot_buf_putc(out, hex[(unsigned char)v->s.p[i] & 15]);
        }
        if (quote)
            ot_buf_putc(out, '"');
        break;
    }
    default:
        attr_json(out, v);
    }
}

static void attr_json(ot_buf *out, const ot_mstore_val *v)
{
    ot_mstore_iter it = v->sub;
    bool first = true;
    if (v->type == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE) {
        ot_mstore_val e;
        ot_buf_putc(out, '[');
        while (ot_mstore_next_val(&it, &e)) {
            if (!first)
                ot_buf_putc(out, ',');
            first = false;
            attr_scalar(out, &e, true);
        }
        ot_buf_putc(out, ']');
    } else if (v->type == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE) {
        ot_mstore_str k;
        ot_mstore_val e;
        ot_buf_putc(out, '{');
        while (ot_mstore_next_kv(&it, &k, &e)) {
            if (!first)
                ot_buf_putc(out, ',');
            first = false;
            json_str(out, k.p, k.n);
            ot_buf_putc(out, ':');
            attr_scalar(out, &e, true);
        }
        ot_buf_putc(out, '}');
    } else {
        ot_buf_puts(out, "null");
    }
}

void ot_prom_attr_text(ot_buf *out, const ot_mstore_val *v)
{
    if (v->type == 0)
        return;
    attr_scalar(out, v, false);
}

/* ---- resources ------------------------------------------------------------ */

static bool key_is(const ot_mstore_str *k, const char *name)
{
    return k->n == strlen(name) && memcmp(k->p, name, k->n) == 0;
}

static bool is_identity(const ot_mstore_str *k, const ot_mstore_val *v)
{
    return v->type == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
           (key_is(k, "service.name") || key_is(k, "service.namespace") ||
            key_is(k, "service.instance.id"));
}

static void both(ot_prom_label_fn series, ot_prom_label_fn target, void *ctx, const char *name,
                 const char *val, size_t vl)
{
    if (series)
        series(ctx, name, strlen(name), val, vl);
    if (target)
        target(ctx, name, strlen(name), val, vl);
}

size_t ot_prom_resource(const ot_mstore_info *in, bool to_labels, ot_prom_label_fn series,
                        ot_prom_label_fn target, void *ctx, ot_buf *tmp)
{
    ot_mstore_iter it = in->resource;
    ot_mstore_str k, svc = {0}, ns = {0}, inst = {0};
    ot_mstore_val v;
    while (ot_mstore_next_kv(&it, &k, &v)) {
        if (!is_identity(&k, &v))
            continue;
        if (key_is(&k, "service.name"))
            svc = v.s;
        else if (key_is(&k, "service.namespace"))
            ns = v.s;
        else
            inst = v.s;
    }
    if (svc.n) {
        ot_buf_reset(tmp);
        if (ns.n) {
            ot_buf_append(tmp, ns.p, ns.n);
            ot_buf_putc(tmp, '/');
        }
        ot_buf_append(tmp, svc.p, svc.n);
        if (!tmp->oom)
            both(series, target, ctx, "job", tmp->data, tmp->len);
    }
    if (inst.n)
        both(series, target, ctx, "instance", inst.p, inst.n);
    if (series && in->scope_name.n)
        series(ctx, "otel_scope_name", 15, in->scope_name.p, in->scope_name.n);
    if (series && in->scope_version.n)
        series(ctx, "otel_scope_version", 18, in->scope_version.p, in->scope_version.n);
    size_t n_other = 0;
    ot_buf name = OT_BUF_INIT;
    it = in->resource;
    while (ot_mstore_next_kv(&it, &k, &v)) {
        if (is_identity(&k, &v))
            continue;
        ot_buf_reset(&name);
        ot_prom_label_name(&name, k.p, k.n);
        if (name.oom || !name.len || (name.len == 3 && !memcmp(name.data, "job", 3)) ||
            (name.len == 8 && !memcmp(name.data, "instance", 8)))
            continue;
        ot_buf_reset(tmp);
        ot_prom_attr_text(tmp, &v);
        if (tmp->oom)
            continue;
        const char *val = tmp->data ? tmp->data : "";
        if (target)
            target(ctx, name.data, name.len, val, tmp->len);
        n_other++;
        if (to_labels && series)
            series(ctx, name.data, name.len, val, tmp->len);
    }
    ot_buf_free(&name);
    return n_other;
}

/* ---- a stream's own labels ---------------------------------------------- */

/* Whether it's keys are pl's, reading the values into vals meanwhile: the
 * check most streams of a scrape take, with nothing copied. */
static bool plan_matches(const ot_prom_plan *pl, ot_mstore_iter it, ot_mstore_val *vals)
{
    const char *p = pl->keys.data ? pl->keys.data : "", *end = p + pl->keys.len;
    ot_mstore_str k;
    size_t n = 0, kl;
    while (n < OT_PROM_MAX_LABELS && ot_mstore_next_kv(&it, &k, &vals[n])) {
        if ((size_t)(end - p) < sizeof kl)
            return false;
        memcpy(&kl, p, sizeof kl);
        p += sizeof kl;
        if (kl != k.n || (size_t)(end - p) < kl || memcmp(p, k.p, kl) != 0)
            return false;
        p += kl;
        n++;
    }
    return n == pl->n && p == end;
}

/* The same for a list kept apart from its values: its keys compared
 * whole, then only the values read. */
static bool plan_matches_raw(const ot_prom_plan *pl, ot_mstore_iter it, ot_mstore_val *vals)
{
    size_t kl = (size_t)(it.kend - it.kp);
    return it.left == pl->n && kl == pl->raw.len && memcmp(it.kp, pl->raw.data, kl) == 0 &&
           ot_mstore_next_vals(&it, vals, pl->n);
}

bool ot_prom_plan_for(ot_prom_plan *pl, ot_mstore_iter it, const void *owner,
                      char *const *shadow, size_t n_shadow, ot_mstore_val *vals, ot_buf *keys)
{
    if (pl->valid && pl->owner == owner &&
        (it.kp && pl->has_raw ? plan_matches_raw(pl, it, vals) : plan_matches(pl, it, vals)))
        return true;
    pl->has_raw = false;
    if (it.kp && it.left <= OT_PROM_MAX_LABELS) {
        ot_buf_reset(&pl->raw);
        ot_buf_append(&pl->raw, it.kp, (size_t)(it.kend - it.kp));
        pl->has_raw = !pl->raw.oom && pl->raw.data;
    }
    pl->gen++;
    ot_buf_reset(keys);
    ot_mstore_str k;
    size_t n = 0;
    while (n < OT_PROM_MAX_LABELS && ot_mstore_next_kv(&it, &k, &vals[n])) {
        n++;
        ot_buf_append(keys, &k.n, sizeof k.n);
        ot_buf_append(keys, k.p, k.n);
    }
    if (keys->oom)
        return false;
    pl->valid = false;
    ot_buf_reset(&pl->keys);
    ot_buf_append(&pl->keys, keys->data ? keys->data : "", keys->len);
    ot_buf_reset(&pl->names);
    const char *p = keys->data;
    for (size_t i = 0; i < n; i++) {
        size_t kl;
        memcpy(&kl, p, sizeof kl);
        p += sizeof kl;
        size_t off = pl->names.len;
        ot_prom_label_name(&pl->names, p, kl);
        p += kl;
        pl->e[i].src = (uint32_t)i;
        pl->e[i].off = (uint32_t)off;
        pl->e[i].len = (uint32_t)(pl->names.len - off);
    }
    if (pl->keys.oom || pl->names.oom)
        return false;
    const char *nm = pl->names.data;
    for (size_t i = 1; i < n; i++) { /* insertion sort: stable, and n is small */
        ot_prom_plan_e x = pl->e[i];
        size_t j = i;
        while (j > 0) {
            ot_prom_plan_e *q = &pl->e[j - 1];
            size_t m = q->len < x.len ? q->len : x.len;
            int c = memcmp(nm + q->off, nm + x.off, m);
            if (c < 0 || (c == 0 && q->len <= x.len))
                break;
            pl->e[j] = *q;
            j--;
        }
        pl->e[j] = x;
    }
    for (size_t i = 0; i < n;) {
        bool shadowed = false;
        for (size_t j = 0; j < n_shadow; j++)
            if (strlen(shadow[j]) == pl->e[i].len &&
                memcmp(shadow[j], nm + pl->e[i].off, pl->e[i].len) == 0)
                shadowed = true;
        size_t e = i + 1;
        while (e < n && pl->e[e].len == pl->e[i].len &&
               memcmp(nm + pl->e[e].off, nm + pl->e[i].off, pl->e[i].len) == 0)
            e++;
        for (size_t j = i; j < e; j++) {
            pl->e[j].group_end = (uint32_t)e;
            pl->e[j].shadowed = shadowed;
        }
        i = e;
    }
    pl->n = n;
    pl->owner = owner;
    pl->valid = true;
    return true;
}

void ot_prom_plan_labels(const ot_prom_plan *pl, const ot_mstore_val *vals, ot_prom_label_fn fn,
                         void *ctx, ot_buf *tmp)
{
    const char *nm = pl->names.data;
    for (size_t i = 0; i < pl->n;) {
        size_t e = pl->e[i].group_end;
        const ot_mstore_val *v = &vals[pl->e[i].src];
        if (!pl->e[i].shadowed && e == i + 1 &&
            v->type == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            fn(ctx, nm + pl->e[i].off, pl->e[i].len, v->s.p, v->s.n);
        } else if (!pl->e[i].shadowed) {
            ot_buf_reset(tmp);
            for (size_t j = i; j < e; j++) {
                if (j > i)
                    ot_buf_putc(tmp, ';');
                ot_prom_attr_text(tmp, &vals[pl->e[j].src]);
            }
            fn(ctx, nm + pl->e[i].off, pl->e[i].len, tmp->data ? tmp->data : "", tmp->len);
        }
        i = e;
    }
}

void ot_prom_plan_free(ot_prom_plan *pl)
{
    ot_buf_free(&pl->keys);
    ot_buf_free(&pl->names);
    ot_buf_free(&pl->raw);
    pl->has_raw = false;
    pl->valid = false;
}
