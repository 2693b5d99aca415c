/* names.c: OTLP names and values as Prometheus spells them, following the
 * OpenTelemetry → Prometheus compatibility rules (name tokens, unit and type
 * suffixes, label sanitising) and Prometheus' own number formatting. Kept
 * apart so the translation table can be tested on its own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

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

void pm_metric_name(ot_buf *out, const char *ns, const char *name, size_t name_len,
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

void pm_label_name(ot_buf *out, const char *p, size_t n)
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

void pm_escape(ot_buf *out, const char *p, size_t n, bool help)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        if (p[i] == '\\')
            rep = "\\\\";
        else if (p[i] == '\n')
            rep = "\\n";
        else if (p[i] == '"' && !help)
            rep = "\\\"";
        if (rep) {
            ot_buf_append(out, p + s, i - s);
            ot_buf_puts(out, rep);
            s = i + 1;
        }
    }
    ot_buf_append(out, p + s, n - s);
}

void pm_value(ot_buf *out, double v, bool om)
{
    if (isnan(v)) {
        ot_buf_puts(out, "NaN");
        return;
    }
    if (isinf(v)) {
        ot_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char b[40];
    if (v == floor(v) && fabs(v) < 9.007199254740992e15) {
        /* Integers, the common case of a scrape, without printf. */
        char *e = b + sizeof b, *p = e;
        if (om) {
            *--p = '0';
            *--p = '.';
        }
        uint64_t u = (uint64_t)fabs(v);
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (signbit(v))
            *--p = '-';
        ot_buf_append(out, p, (size_t)(e - p));
        return;
    }
    /* %g drops trailing zeros, so the first precision that reads back the
     * same is the shortest form, as Go's 'g', -1 writes it. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (prec == 17 || strtod(b, NULL) == v)
            break;
    }
    ot_buf_puts(out, b);
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
        ot_buf_printf(out, "%lld", (long long)v->i);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        pm_value(out, v->d, false);
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

void pm_attr_text(ot_buf *out, const ot_mstore_val *v)
{
    if (v->type == 0)
        return;
    attr_scalar(out, v, false);
}
